# shellcheck shell=bash
# bench_lib.sh - helpers shared by bench/bench_*.sh (holdmx against stock
# Postfix on the same box, in the same run).  Builds on tests/e2e/lib.sh
# (workdir, PID tracking, ports, private Postfix, holdmx start/stop) so
# that everything started is stopped by PID at the end.
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${HOLDMX_SRC:=$(cd "$BENCH_DIR/.." && pwd)}"
# shellcheck source=../tests/e2e/lib.sh
. "$HOLDMX_SRC/tests/e2e/lib.sh"
: "${N:=20000}" "${SESSIONS:=20}" "${SIZE:=4096}"
E2E_LOG_LINES=15

# bench_now - wall clock with nanoseconds.
bench_now() { date +%s.%N; }

# bench_secs T0 T1 - elapsed seconds, 3 decimals.
bench_secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }

# bench_rate N T0 T1 - messages per second.
bench_rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN{d=b-a; printf "%.0f", (d > 0 ? n/d : 0)}'; }

# bench_ratio A B - A/B with 2 decimals ("n/a" when B is 0 or empty).
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (b+0>0) printf "%.2f", a/b; else print "n/a"}'; }

# bench_header TITLE - machine facts and parameters.
bench_header() {
    echo "== $1"
    echo "machine: nproc=$(nproc) mem=$(free -g | awk '/Mem/{print $2}')G kernel=$(uname -r)" \
        "postfix=$(postconf -d -h mail_version 2>/dev/null || echo '?')"
    echo "params : N=$N sessions=$SESSIONS size=$SIZE (override: N=... SESSIONS=... SIZE=...)"
}

# bench_source PORT ADDR RCPT [smtp-source options] - N x SIZE messages;
# returns smtp-source's status.
bench_source() {
    local port=$1 addr=$2 rcpt=$3
    shift 3
    timeout "${BENCH_TIMEOUT:-1800}" smtp-source "$@" -m "$N" -l "$SIZE" -f sender@example.org \
        -t "$rcpt" "$addr:$port" >>"$W/logs/smtp-source" 2>&1
}

# bench_holdmx_start - holdmx with its two sites (turnd only if built).
bench_holdmx_start() {
    [ -x "$TURND" ] || HM_NEED_TURND=0
    # shellcheck disable=SC2086 # "user password" pairs
    [ -n "${SASL_DIR:-}" ] || make_sasldb ${BENCH_USERS:-}
    [ -n "${PF_PORT:-}" ] || e2e_ports PF_PORT PF_SINK_PORT
    [ -n "${DLV_PORT:-}" ] || e2e_ports DLV_PORT
    holdmx_setup
    start_holdmx
}

# bench_pf_start DOMAIN NEXTHOP - fresh stock Postfix holding DOMAIN
# (defer_transports = hold, fast_flush) with NEXTHOP for the flush.
bench_pf_start() {
    PF_NO_DSN_SINK=1
    PF_FAST_RETRY=0
    postfix_setup "$1=hold:$2"
    start_postfix
}

# bench_pf_settled - nothing in Postfix's incoming/ or active/ any more.
bench_pf_settled() {
    [ -z "$(find "$PF/spool/incoming" "$PF/spool/active" -type f -print -quit)" ]
}

# bench_pf_deferred - number of deferred (held) queue files.
bench_pf_deferred() { find "$PF/spool/deferred" -type f | wc -l; }

# bench_pf_all_deferred - all N messages sit in deferred/ (readdir may miss
# files that qmgr renames meanwhile, so callers poll this).
bench_pf_all_deferred() { [ "$(bench_pf_deferred)" -ge "$N" ]; }

# bench_pf_settle SECS - wait until qmgr has deferred all N messages (or
# nothing is in flight any more after SECS).
bench_pf_settle() {
    bench_wait_secs "$1" bench_pf_all_deferred || bench_pf_settled
}

# bench_wait_secs SECS CMD... - like e2e_wait but polls every 0.05 s.
bench_wait_secs() {
    local t=$1 i=0
    shift
    while [ $i -lt $((t * 20)) ]; do
        "$@" && return 0
        sleep 0.05
        i=$((i + 1))
    done
    "$@"
}

# bench_etrn PORT DOMAIN - send one ETRN with smtplib; 0 when answered 25x.
bench_etrn() {
    "$PY" - "$1" "$2" >>"$W/logs/etrn" 2>&1 <<'PYEOF'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.ehlo("bench.test")
code, msg = s.docmd("ETRN", sys.argv[2])
print("ETRN", sys.argv[2], "->", code, msg.decode(errors="replace"))
s.quit()
sys.exit(0 if 250 <= code <= 253 else 1)
PYEOF
}

# bench_mem PID... - "RSS PSS" in KiB summed over the PIDs and their
# children (PSS shares pages fairly between the processes of one system).
bench_mem() {
    local p all="" rss=0 pss=0 v
    for p in "$@"; do all="$all $p $(ps -o pid= --ppid "$p" 2>/dev/null | tr '\n' ' ')"; done
    for p in $all; do
        v=$(awk '/^Rss:/{r=$2} /^Pss:/{s=$2} END{print r+0, s+0}' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
        rss=$((rss + ${v% *}))
        pss=$((pss + ${v#* }))
    done
    echo "$rss $pss"
}
