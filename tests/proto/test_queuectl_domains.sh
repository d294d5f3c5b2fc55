#!/bin/bash
# test_queuectl_domains.sh - queuectl domain and account verbs end to end:
# a real configuration file, a real LMDB store in a temporary state_dir and
# the real libsasl2/sasldb backend (checked with sasldblistusers2).
#
# Covers: add/set/show/list/delete, --json output parsed by python3, every
# error path (unknown site, bad domain, duplicate, unknown domain, bad
# option values, bad config -> 78), export/import round trip (idempotent,
# all-or-nothing on a bad line), accounts with --password-stdin, account
# delete removing the secret.  No daemon and no network port is used.
#
# Env: HOLDMX_BUILD (build dir), HOLDMX_SRC (source dir).  Exit 77 = skipped.
set -u

BUILD=${HOLDMX_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
QUEUECTL=$BUILD/queued/queuectl
[ -x "$QUEUECTL" ] || { echo "SKIP: $QUEUECTL not built"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
command -v sasldblistusers2 >/dev/null || { echo "SKIP: sasl2-bin missing"; exit 77; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hm-queuectl.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
FAILS=0
CHECKS=0

mkdir -p "$WORK/sasl" "$WORK/etc"
cat > "$WORK/etc/holdmx.conf" <<'EOF'
; queuectl test configuration (paths relative to this file)
state_dir     = ../state
sasl_app      = holdmx
sasl_conf_dir = ../sasl
[site default]
hostname    = mx.test.example
smtp_listen = 127.0.0.1:2525
odmr_listen = 127.0.0.1:3366
[site branch2]
hostname    = mx2.test.example
smtp_listen = 127.0.0.2:2525   ; second site
EOF
cat > "$WORK/sasl/holdmx.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $WORK/sasl/sasldb2
mech_list: CRAM-MD5 PLAIN LOGIN
EOF

# q ARGS... - run queuectl; stdout in $WORK/out, stderr in $WORK/err, status in $RC.
q() {
    timeout 30 "$QUEUECTL" -c "$WORK/etc/holdmx.conf" "$@" >"$WORK/out" 2>"$WORK/err"
    RC=$?
}

# check NAME CONDITION-COMMAND... - one assertion.
check() {
    local name=$1
    shift
    CHECKS=$((CHECKS + 1))
    if "$@"; then
        echo "ok   $name"
    else
        echo "FAIL $name"
        echo "     rc=$RC stdout: $(head -c 600 "$WORK/out")"
        echo "     stderr: $(head -c 600 "$WORK/err")"
        FAILS=$((FAILS + 1))
    fi
}

rc_is() { [ "$RC" -eq "$1" ]; }
out_has() { grep -q -- "$1" "$WORK/out"; }
err_has() { grep -q -- "$1" "$WORK/err"; }
# json PYTHON-EXPR - evaluate EXPR with d = the parsed stdout; true when truthy.
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$WORK/out"; }

# ---- usage and configuration
q; check "no arguments -> 64" rc_is 64
"$QUEUECTL" -h >"$WORK/out" 2>"$WORK/err"; RC=$?
check "-h -> 0 with usage" eval 'rc_is 0 && out_has "queuectl domain add"'
q domain frobnicate; check "unknown verb -> 64" eval 'rc_is 64 && err_has "unknown verb"'
printf 'bogus_key = 1\n[site default]\nhostname = a.example\nsmtp_listen = 127.0.0.1:70000\n' \
    >"$WORK/etc/bad.conf"
timeout 30 "$QUEUECTL" -c "$WORK/etc/bad.conf" domain list >"$WORK/out" 2>"$WORK/err"; RC=$?
check "bad config -> 78 naming each line" \
    eval 'rc_is 78 && err_has "bad.conf:1: unknown key" && err_has "bad.conf:4: bad value for smtp_listen"'

# ---- domains
q domain list; check "empty list" eval 'rc_is 0 && out_has "no held domains"'
q domain list --json; check "empty list --json is []" eval 'rc_is 0 && json "d == []"'
q domain add customer.example --site default
check "add customer.example" eval 'rc_is 0 && out_has "customer.example added"'
q domain add Other.EXAMPLE --site branch2 --no-etrn --route '[203.0.113.7]:25' \
    --hold-time 14d --delay-warning 0 --max-queue 100
check "add with every option" rc_is 0
q domain add third.example
check "add without --site uses default" eval 'rc_is 0 && out_has "site default"'
q domain add x.example --site nosuch
check "unknown site -> 65 listing sites" \
    eval 'rc_is 65 && err_has "no site \"nosuch\"" && err_has "default, branch2"'
for bad in bad -x.example a..example 'a_b.example' "$(printf 'a%.0s' {1..64}).example" \
    "$(printf 'abcdefghi.%.0s' {1..26})example"; do
    q domain add --site default -- "$bad"
    check "bad domain '${bad:0:20}...' -> 65" eval 'rc_is 65 && err_has "bad domain name"'
done
q domain add customer.example --site default
check "duplicate add -> 65" eval 'rc_is 65 && err_has "exists already"'
q domain add y.example --hold-time 7x
check "bad --hold-time -> 65" eval 'rc_is 65 && err_has "bad --hold-time"'
q domain add y.example --route 'no port'
check "bad --route -> 65" eval 'rc_is 65 && err_has "bad --route"'
q domain add y.example --max-queue -4
check "bad --max-queue -> 65" eval 'rc_is 65 && err_has "bad --max-queue"'
q domain add y.example --bogus
check "unknown option -> 64 with usage" eval 'rc_is 64 && err_has "unknown option --bogus" && err_has "queuectl domain add"'
q domain show y.example
check "failed adds stored nothing" eval 'rc_is 65 && err_has "no domain y.example"'

q domain show other.example
check "show: name lower-cased, settings kept" \
    eval 'rc_is 0 && out_has "site: *branch2" && out_has "route: *\[203.0.113.7\]:25" && out_has "hold_time: *2w" && out_has "delay_warning: *never" && out_has "etrn: *no"'
q domain show other.example --json
check "show --json" eval 'rc_is 0 && json "d[\"name\"]==\"other.example\" and d[\"etrn\"] is False and d[\"hold_time\"]==1209600 and d[\"max_queue\"]==100 and d[\"messages\"]==0"'
q domain set other.example --etrn --route dns --hold-time default --site default
check "set" rc_is 0
q domain show other.example --json
check "set took effect" eval 'json "d[\"etrn\"] is True and d[\"route\"] is None and d[\"hold_time_default\"] is True and d[\"site\"]==\"default\""'
q domain set nosuch.example --etrn
check "set unknown domain -> 65" eval 'rc_is 65 && err_has "no domain nosuch.example"'
q domain list
check "list is a table" eval 'rc_is 0 && out_has "^DOMAIN *SITE" && out_has "^customer.example *default" && [ $(wc -l <"$WORK/out") -eq 5 ]'
q domain list --json
check "list --json" eval 'rc_is 0 && json "[x[\"name\"] for x in d]==[\"customer.example\",\"other.example\",\"third.example\"]"'

# ---- export / import
q domain export; cp "$WORK/out" "$WORK/export1"
check "export: one line per domain" eval 'rc_is 0 && [ $(grep -vc "^#" "$WORK/export1") -eq 3 ]'
for d in customer.example other.example third.example; do
    q domain delete "$d"; check "delete $d" rc_is 0
done
q domain delete customer.example
check "delete unknown -> 65" eval 'rc_is 65 && err_has "no domain customer.example"'
q domain import "$WORK/export1"
check "import restores" eval 'rc_is 0 && out_has "3 added, 0 changed, 0 unchanged"'
q domain import "$WORK/export1"
check "import again is a no-op" eval 'rc_is 0 && out_has "0 added, 0 changed, 3 unchanged"'
q domain export
check "round trip is exact" diff <(grep -v '^#' "$WORK/export1") <(grep -v '^#' "$WORK/out")
printf 'new.example site=default\nbad..example site=default\nx.example site=nosuch\nz.example colour=red\n' >"$WORK/badimport"
q domain import "$WORK/badimport"
check "bad import lines -> 65, each named" \
    eval 'rc_is 65 && err_has "badimport:2:" && err_has "badimport:3:" && err_has "badimport:4:" && err_has "nothing was imported"'
q domain show new.example
check "bad import changed nothing" rc_is 65
q domain import "$WORK/nonexistent"
check "import missing file -> 66" rc_is 66
printf 'stdin.example site=branch2 etrn=no\n' | timeout 30 "$QUEUECTL" -c "$WORK/etc/holdmx.conf" \
    domain import - >"$WORK/out" 2>"$WORK/err"; RC=$?
check "import from stdin" eval 'rc_is 0 && out_has "1 added"'

# ---- accounts and SASL secrets
printf 'S3cret pass\n' >"$WORK/pw"
timeout 30 "$QUEUECTL" -c "$WORK/etc/holdmx.conf" account add alice \
    --domains customer.example,Other.example --password-stdin <"$WORK/pw" >"$WORK/out" 2>"$WORK/err"; RC=$?
check "account add --password-stdin" eval 'rc_is 0 && ! grep -q "S3cret" "$WORK/out" "$WORK/err"'
sasldblistusers2 -f "$WORK/sasl/sasldb2" >"$WORK/out" 2>"$WORK/err"; RC=$?
check "sasldb has alice@holdmx" eval 'out_has "^alice@holdmx: userPassword"'
q account add alice --domains customer.example
check "duplicate account -> 65" eval 'rc_is 65 && err_has "exists already"'
q account add bob
check "account add without --domains -> 64" rc_is 64
q account add al@ice --domains customer.example
check "account name with @ -> 65" eval 'rc_is 65 && err_has "bad account name"'
q account add bob --domains single
check "account with bad domain -> 65" eval 'rc_is 65 && err_has "bad domain"'
printf '\n' | timeout 30 "$QUEUECTL" -c "$WORK/etc/holdmx.conf" account add carol \
    --domains customer.example --password-stdin >"$WORK/out" 2>"$WORK/err"; RC=$?
check "empty password -> 65, no account" eval 'rc_is 65 && err_has "empty"'
q account show carol; check "failed add left nothing" rc_is 65
q account add bob --domains notheld.example
check "account for a domain not held: warning" eval 'rc_is 0 && err_has "not a held domain"'
q account set bob --domains third.example
check "account set --domains" rc_is 0
q account show bob --json
check "account show --json" eval 'rc_is 0 && json "d[\"name\"]==\"bob\" and d[\"domains\"]==[\"third.example\"]"'
q account list --json
check "account list --json" eval 'rc_is 0 && json "[(a[\"name\"],a[\"domains\"]) for a in d]==[(\"alice\",[\"customer.example\",\"other.example\"]),(\"bob\",[\"third.example\"])]"'
q account list
check "account list table" eval 'rc_is 0 && out_has "^ACCOUNT" && out_has "^alice .*customer.example,other.example"'
printf 'another\n' | timeout 30 "$QUEUECTL" -c "$WORK/etc/holdmx.conf" account set bob \
    --password-stdin >"$WORK/out" 2>"$WORK/err"; RC=$?
check "account set --password-stdin" rc_is 0
sasldblistusers2 -f "$WORK/sasl/sasldb2" >"$WORK/out" 2>&1
check "sasldb has bob@holdmx" out_has "^bob@holdmx: userPassword"
q account set bob
check "account set with nothing -> 64" rc_is 64
q account delete alice
check "account delete" rc_is 0
sasldblistusers2 -f "$WORK/sasl/sasldb2" >"$WORK/out" 2>&1
check "secret deleted with the account" eval '! out_has "^alice@" && out_has "^bob@holdmx"'
q account delete alice
check "delete unknown account -> 65" rc_is 65

echo "$((CHECKS - FAILS))/$CHECKS checks passed"
[ "$FAILS" -eq 0 ]
