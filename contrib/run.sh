#!/bin/sh
# run.sh - the README's run command: install packages, build, and start the
# whole service (queued, which starts turnd) in the foreground on the
# embedded default configuration contrib/holdmx.conf:
#   LMDB state in ./var/holdmx, SASL secrets in ./var/sasl/sasldb2,
#   site "default": SMTP on 127.0.0.1:2525, ODMR on 127.0.0.1:3366.
# Run as root on Debian 12:  sh contrib/run.sh      (stop with Ctrl-C)
set -eu
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh
JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build >/dev/null
cmake --build build -j "$JOBS" >/dev/null

# SASL application configuration for the example (sasldb in ./var/sasl).
mkdir -p var/holdmx var/sasl
chmod 700 var/holdmx
if [ ! -f var/sasl/holdmx.conf ]; then
    cat > var/sasl/holdmx.conf <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $(pwd)/var/sasl/sasldb2
mech_list: CRAM-MD5 PLAIN LOGIN
EOF
fi

build/queued/queued -t -c contrib/holdmx.conf
echo "holdmx: starting queued in the foreground (Ctrl-C stops it)"
echo "holdmx: add a domain:  build/queued/queuectl -c contrib/holdmx.conf domain add customer.example --site default"
exec build/queued/queued -f -c contrib/holdmx.conf
