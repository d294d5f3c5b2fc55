#!/bin/sh
# install-deps.sh - install every Debian package holdmx needs to build, run
# and test.  Idempotent: quiet and quick when everything is present already.
# Usage (as root):  sh contrib/install-deps.sh
set -eu

PKGS="build-essential cmake pkg-config
liblmdb-dev lmdb-utils libevent-dev libsasl2-dev libsasl2-modules sasl2-bin
libc-ares-dev libssl-dev libinih-dev libcmocka-dev
postfix fetchmail swaks dnsmasq dnsutils openssl python3 iproute2 curl
prometheus"

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run this script as root (it uses apt-get)" >&2
    exit 77
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix is only a test peer: no system-wide configuration, no service.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "install-deps: installing:$missing"
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends $missing >/dev/null
