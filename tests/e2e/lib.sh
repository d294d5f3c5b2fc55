# shellcheck shell=bash
# lib.sh - helpers for the holdmx end-to-end scenarios with real peers.
#
# Source it from tests/e2e/test_*.sh:   . "$(dirname "$0")/lib.sh"
# Everything a scenario creates lives in one temp dir ($W, mode 0755 so that
# daemons dropping to postfix/nobody can traverse it) that the EXIT trap
# removes (KEEP_WORK=1 keeps it).  Every process we start is recorded in
# $W/pids and stopped by PID only (never by name); Postfix is stopped with
# "postfix -c DIR stop".  Ports are random high ports checked with ss, so
# scenarios can run beside colleagues' tests.  Every wait is bounded.
#
# Peers: dnsmasq (private *.test zone), Cyrus sasldb, a private Postfix
# instance in front of holdmx (swaks injects into it; DSNs from holdmx come
# back through it to a sink), fetchmail (ODMR and ETRN), sink.py as the
# customers' MTAs.  Exit 77 = skipped (a binary, verb or peer is missing).

: "${HOLDMX_BUILD:=/work/main/build}"
: "${HOLDMX_SRC:=/work/main}"
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=$(basename "${0%.sh}")
QUEUED=$HOLDMX_BUILD/queued/queued
TURND=$HOLDMX_BUILD/turnd/turnd
QUEUECTL=$HOLDMX_BUILD/queued/queuectl
PY=${PYTHON:-python3}
E2E_FAILS=0
E2E_PORTS=" "
E2E_HOOKS=()

# ---------------------------------------------------------------- reporting

# e2e_log - progress line with the scenario name and elapsed seconds.
e2e_log() { echo "[$E2E_NAME +${SECONDS}s] $*"; }

# e2e_skip - explain why and exit 77 (ctest: skipped).
e2e_skip() {
    echo "SKIP $E2E_NAME: $*"
    exit 77
}

# e2e_die - a setup step failed: show why and exit 1.
e2e_die() {
    echo "FAIL $E2E_NAME: $*" >&2
    e2e_dump_logs
    exit 1
}

# e2e_check DESC CMD... - run a check; record and print ok/FAIL.
e2e_check() {
    local desc=$1
    shift
    if "$@"; then
        echo "ok   $desc"
    else
        echo "FAIL $desc"
        E2E_FAILS=$((E2E_FAILS + 1))
    fi
}

# e2e_finish - final verdict: exit 0 when every check held, else 1.
e2e_finish() {
    if [ "$E2E_FAILS" -gt 0 ]; then
        echo "$E2E_NAME: $E2E_FAILS check(s) failed"
        e2e_dump_logs
        exit 1
    fi
    echo "$E2E_NAME: all checks passed (${SECONDS}s)"
    exit 0
}

# e2e_dump_logs - tails of the daemon logs, to route a failure.
e2e_dump_logs() {
    local f
    [ -n "${W:-}" ] && [ -d "$W" ] || return 0
    for f in "$W"/logs/*; do
        [ -s "$f" ] || continue
        case $f in *.queries | *.wire | */swaks | */queuectl) continue ;; esac
        echo "----- tail of ${f#"$W"/}"
        tail -n "${E2E_LOG_LINES:-40}" "$f" | cut -c1-400
    done
}

# --------------------------------------------------------- requirements

# e2e_need_root - Postfix's master and dnsmasq's port handling need root.
e2e_need_root() { [ "$(id -u)" = 0 ] || e2e_skip "needs root (Postfix master must start as root)"; }

# e2e_need_cmd CMD... - skip unless every peer program is installed.
e2e_need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || e2e_skip "peer program '$c' not installed (sh contrib/install-deps.sh)"
    done
}

# e2e_need_holdmx [queued] [turnd] [queuectl] - skip while a binary is not built.
e2e_need_holdmx() {
    local b path
    for b in "$@"; do
        case $b in
        queued) path=$QUEUED ;;
        turnd) path=$TURND ;;
        queuectl) path=$QUEUECTL ;;
        *) e2e_die "e2e_need_holdmx: unknown binary $b" ;;
        esac
        [ -x "$path" ] || e2e_skip "$b not built yet ($path missing)"
    done
}

# ------------------------------------------------------ workdir and PIDs

# e2e_workdir - create $W (0755), the logs dir, and the cleanup trap.
e2e_workdir() {
    W=$(mktemp -d "${TMPDIR:-/tmp}/holdmx-e2e.XXXXXX") || exit 1
    chmod 755 "$W"
    mkdir -p "$W/logs"
    : >"$W/pids"
    trap e2e_cleanup EXIT
    trap 'exit 130' INT TERM
    e2e_log "workdir $W"
}

# e2e_on_cleanup CMD - run CMD (a function name) first at cleanup.
e2e_on_cleanup() { E2E_HOOKS+=("$1"); }

# e2e_track PID NAME - remember a process we started.
e2e_track() { echo "$1 $2" >>"$W/pids"; }

# e2e_untrack PID - forget a process (it was stopped on purpose).
e2e_untrack() {
    local tmp=$W/pids.tmp
    awk -v p="$1" '$1 != p' "$W/pids" >"$tmp" && mv "$tmp" "$W/pids"
}

# e2e_stop_pid PID [SECS] - TERM, wait up to SECS (5), then KILL; our PIDs only.
e2e_stop_pid() {
    local pid=$1 t=${2:-5} i=0
    kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null
    while [ $i -lt $((t * 10)) ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$pid did not stop in ${t}s, sending KILL" >&2
        kill -9 "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# e2e_cleanup - EXIT trap: hooks, then recorded PIDs newest first, then $W.
e2e_cleanup() {
    local rc=$? h pid name
    [ -n "${W:-}" ] && [ -d "$W" ] || return $rc
    for h in "${E2E_HOOKS[@]}"; do "$h"; done
    if [ -f "$W/pids" ]; then
        tac "$W/pids" | while read -r pid name; do
            [ -n "$pid" ] && e2e_stop_pid "$pid" 5
        done
        : >"$W/pids"
    fi
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "kept $W"
    else
        rm -rf "$W"
    fi
    return $rc
}

# ----------------------------------------------------------- ports, waits

# e2e_port_free PORT - nothing listens on PORT (TCP or UDP, any address).
e2e_port_free() {
    [ -z "$(ss -Hltun "sport = :$1" 2>/dev/null)" ]
}

# e2e_alloc_port - print a free random port below the ephemeral range.
e2e_alloc_port() {
    local p i
    for i in $(seq 1 200); do
        p=$(((RANDOM * 32768 + RANDOM) % 21000 + 11000))
        case $E2E_PORTS in *" $p "*) continue ;; esac
        e2e_port_free "$p" || continue
        E2E_PORTS="$E2E_PORTS$p "
        echo "$p"
        return 0
    done
    e2e_die "no free port found after $i tries"
}

# e2e_ports VAR... - allocate one port per variable name (no subshell, so
# the allocation list is kept).
e2e_ports() {
    local v p
    for v in "$@"; do
        p=$(e2e_alloc_port) || exit 1
        E2E_PORTS="$E2E_PORTS$p "
        printf -v "$v" '%s' "$p"
    done
}

# e2e_listening ADDR PORT [tcp|udp] - something listens on exactly ADDR:PORT.
e2e_listening() {
    local flag=-Hltn
    [ "${3:-tcp}" = udp ] && flag=-Hlun
    ss $flag 2>/dev/null | awk '{print $4}' | grep -qxF "$1:$2"
}

# e2e_wait SECS CMD... - poll CMD every 0.2 s until it succeeds or SECS pass.
e2e_wait() {
    local t=$1 i=0
    shift
    while [ $i -lt $((t * 5)) ]; do
        "$@" && return 0
        sleep 0.2
        i=$((i + 1))
    done
    "$@"
}

# e2e_wait_listen ADDR PORT SECS [PID] - listener up (and PID alive).
e2e_wait_listen() {
    local addr=$1 port=$2 t=$3 pid=${4:-} i=0
    while [ $i -lt $((t * 10)) ]; do
        e2e_listening "$addr" "$port" && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            echo "process $pid exited before listening on $addr:$port" >&2
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    echo "nothing listening on $addr:$port after ${t}s" >&2
    return 1
}

# e2e_bg NAME CMD... - start CMD in the background, output in logs/NAME,
# record the PID in $E2E_PID.
e2e_bg() {
    local name=$1
    shift
    "$@" >"$W/logs/$name" 2>&1 &
    E2E_PID=$!
    e2e_track "$E2E_PID" "$name"
}

# ------------------------------------------------------------------- DNS

# e2e_dns_conf - the private zone: MX at several preferences, null MX, an
# MX pointing at holdmx itself, an implicit MX (A only).
e2e_dns_conf() {
    cat <<CONF
port=$DNS_PORT
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
no-poll
local=/test/
# holdmx's own sites
host-record=mx.holdmx.test,127.0.0.1
host-record=mx2.holdmx.test,127.0.0.2
# static.test: one MX (the customer's server on 127.0.0.3)
mx-host=static.test,mx.static.test,10
host-record=mx.static.test,127.0.0.3
# multimx.test: preference 10 on 127.0.0.4 (down), 20 on 127.0.0.5 (up)
mx-host=multimx.test,mx1.multimx.test,10
mx-host=multimx.test,mx2.multimx.test,20
host-record=mx1.multimx.test,127.0.0.4
host-record=mx2.multimx.test,127.0.0.5
# nullmx.test: RFC 7505 null MX (preference 0, exchange ".")
dns-rr=nullmx.test,15,000000
# selfmx.test: the only MX is holdmx's default site itself
mx-host=selfmx.test,mx.holdmx.test,10
# implicit.test: no MX, A record only (RFC 5321 implicit MX)
host-record=implicit.test,127.0.0.6
log-queries
log-facility=$W/logs/dnsmasq.queries
pid-file=
CONF
}

# start_dnsmasq - dnsmasq on 127.0.0.1:$DNS_PORT (allocated here), foreground (-k).
start_dnsmasq() {
    e2e_ports DNS_PORT
    e2e_dns_conf >"$W/dnsmasq.conf"
    e2e_bg dnsmasq dnsmasq -k --conf-file="$W/dnsmasq.conf" --user=nobody --group=nogroup
    e2e_wait_listen 127.0.0.1 "$DNS_PORT" 10 "$E2E_PID" || e2e_die "dnsmasq did not start"
    e2e_wait 5 e2e_listening 127.0.0.1 "$DNS_PORT" udp || e2e_die "dnsmasq: no UDP listener"
}

# e2e_dig TYPE NAME - short answer from our dnsmasq, sorted, one line.
e2e_dig() {
    dig @127.0.0.1 -p "$DNS_PORT" +short +time=2 +tries=1 "$2" "$1" | sort | tr '\n' ' ' | sed 's/ $//'
}

# e2e_dig_status TYPE NAME - the rcode (NOERROR, NXDOMAIN, ...).
e2e_dig_status() {
    dig @127.0.0.1 -p "$DNS_PORT" +time=2 +tries=1 "$2" "$1" | sed -n 's/.*status: \([A-Z]*\).*/\1/p'
}

# ------------------------------------------------------------------ SASL

# make_sasldb USER PASSWORD... - sasldb (realm holdmx) + holdmx.conf for libsasl2.
make_sasldb() {
    SASL_DIR=$W/sasl
    mkdir -p "$SASL_DIR"
    while [ $# -ge 2 ]; do
        printf '%s' "$2" | saslpasswd2 -p -c -f "$SASL_DIR/sasldb2" -a holdmx -u holdmx "$1" ||
            e2e_die "saslpasswd2 failed for $1"
        shift 2
    done
    cat >"$SASL_DIR/holdmx.conf" <<CONF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $SASL_DIR/sasldb2
mech_list: CRAM-MD5 PLAIN LOGIN SCRAM-SHA-256
CONF
}

# ---------------------------------------------------------------- sinks

# start_sink NAME ADDR PORT [sink.py options...] - receiving SMTP server
# storing into $W/store/NAME; waits for its "ready" line.
start_sink() {
    local name=$1 addr=$2 port=$3 i=0
    shift 3
    mkdir -p "$W/store/$name"
    e2e_listening "$addr" "$port" && e2e_die "sink $name: $addr:$port already in use"
    e2e_bg "sink-$name" "$PY" "$E2E_DIR/sink.py" --addr "$addr" --port "$port" \
        --store "$W/store/$name" --log "$W/logs/sink-$name.wire" "$@"
    while [ $i -lt 100 ] && ! grep -q '^ready' "$W/logs/sink-$name"; do
        kill -0 "$E2E_PID" 2>/dev/null || e2e_die "sink $name exited: $(cat "$W/logs/sink-$name")"
        sleep 0.1
        i=$((i + 1))
    done
    grep -q '^ready' "$W/logs/sink-$name" || e2e_die "sink $name not ready"
}

# sink_count NAME - messages stored by sink NAME.
sink_count() { find "$W/store/$1" -name '*.eml' 2>/dev/null | wc -l; }

# sink_has NAME N - true when sink NAME stored exactly N messages.
sink_has() { [ "$(sink_count "$1")" -eq "$2" ]; }

# sink_at_least NAME N - true when sink NAME stored N or more messages.
sink_at_least() { [ "$(sink_count "$1")" -ge "$2" ]; }

# e2e_py CHECK ARGS... - run check.py.
e2e_py() { "$PY" "$E2E_DIR/check.py" "$@"; }

# ------------------------------------------------------------- holdmx

# holdmx_conf - write $HM_CONF (two sites, on 127.0.0.1 and 127.0.0.2).
# Tunables: HM_HOLD_TIME, HM_DELAY_WARNING, HM_EXTRA_GLOBAL (extra lines).
holdmx_conf() {
    cat >"$HM_CONF" <<CONF
; holdmx.conf written by tests/e2e/lib.sh
state_dir = $HM_DIR/state
sasl_app = holdmx
sasl_conf_dir = $SASL_DIR
sasl_realm = holdmx
bounce_relay = [127.0.0.1]:${PF_PORT:-25}
dns_servers = 127.0.0.1:${DNS_PORT:-53}
delivery_port = ${DLV_PORT:-25}
hold_time = ${HM_HOLD_TIME:-7d}
delay_warning = ${HM_DELAY_WARNING:-1d}
max_message_size = 10M
${HM_EXTRA_GLOBAL:-}

[site default]
hostname = mx.holdmx.test
smtp_listen = 127.0.0.1:$HM_SMTP1
odmr_listen = 127.0.0.1:$HM_ODMR1
auth_plain = loopback

[site branch2]
hostname = mx2.holdmx.test
smtp_listen = 127.0.0.2:$HM_SMTP2
odmr_listen = 127.0.0.2:$HM_ODMR2
auth_plain = loopback
CONF
}

# holdmx_setup - allocate ports, copy queued+turnd side by side (queued
# finds turnd next to itself), write the config and check it with queued -t.
holdmx_setup() {
    HM_DIR=$W/holdmx
    HM_CONF=$HM_DIR/holdmx.conf
    mkdir -p "$HM_DIR/state" "$HM_DIR/bin"
    [ -n "${SASL_DIR:-}" ] || make_sasldb
    [ -n "${HM_SMTP1:-}" ] || e2e_ports HM_SMTP1 HM_ODMR1 HM_SMTP2 HM_ODMR2
    cp "$QUEUED" "$HM_DIR/bin/queued" || e2e_die "cannot copy $QUEUED"
    [ -x "$TURND" ] && cp "$TURND" "$HM_DIR/bin/turnd"
    holdmx_conf
    "$HM_DIR/bin/queued" -t -c "$HM_CONF" >"$W/logs/queued-t" 2>&1 ||
        e2e_die "queued -t rejects the test configuration: $(cat "$W/logs/queued-t")"
}

# start_holdmx - queued -f (which starts turnd); wait for all four listeners.
start_holdmx() {
    local n=${HM_STARTS:-0}
    HM_STARTS=$((n + 1))
    "$HM_DIR/bin/queued" -f -c "$HM_CONF" >>"$W/logs/queued" 2>&1 &
    HM_PID=$!
    e2e_track "$HM_PID" queued
    e2e_wait_listen 127.0.0.1 "$HM_SMTP1" 15 "$HM_PID" || e2e_die "queued: no SMTP listener on site default"
    e2e_wait_listen 127.0.0.2 "$HM_SMTP2" 15 "$HM_PID" || e2e_die "queued: no SMTP listener on site branch2"
    if [ "${HM_NEED_TURND:-1}" = 1 ]; then
        e2e_wait_listen 127.0.0.1 "$HM_ODMR1" 15 "$HM_PID" || e2e_die "turnd (started by queued): no ODMR listener on site default"
        e2e_wait_listen 127.0.0.2 "$HM_ODMR2" 15 "$HM_PID" || e2e_die "turnd (started by queued): no ODMR listener on site branch2"
    fi
    hm_track_children
    e2e_log "holdmx up (queued pid $HM_PID): smtp 127.0.0.1:$HM_SMTP1 127.0.0.2:$HM_SMTP2, odmr 127.0.0.1:$HM_ODMR1 127.0.0.2:$HM_ODMR2"
}

# hm_track_children - record queued's children (turnd) by parent PID, so
# cleanup stops them even if queued dies without doing it.
hm_track_children() {
    local c
    HM_CHILDREN=$(ps -o pid= --ppid "$HM_PID" 2>/dev/null | tr -d ' ' | tr '\n' ' ')
    for c in $HM_CHILDREN; do e2e_track "$c" queued-child; done
}

# hm_nexthop SITE - the Postfix next hop for a site's smtp_listen.
hm_nexthop() {
    case $1 in
    default) echo "[127.0.0.1]:$HM_SMTP1" ;;
    branch2) echo "[127.0.0.2]:$HM_SMTP2" ;;
    *) e2e_die "hm_nexthop: unknown site $1" ;;
    esac
}

# hm_odmr_addr SITE - "ADDR PORT" of a site's odmr_listen.
hm_odmr_addr() {
    case $1 in
    default) echo "127.0.0.1 $HM_ODMR1" ;;
    branch2) echo "127.0.0.2 $HM_ODMR2" ;;
    *) e2e_die "hm_odmr_addr: unknown site $1" ;;
    esac
}

# world_start DOMAIN:SITE... - the whole stage: dnsmasq, sasldb for
# HM_USERS ("name password" pairs), holdmx config, Postfix routing each
# DOMAIN to its site's smtp_listen (sender.test to the DSN sink), Postfix and
# holdmx started, and every DOMAIN added with queuectl domain add (extra
# options per domain from HM_DOMAIN_OPTS_<domain with dots as _>).
world_start() {
    local ds d s routes=() opts v
    for v in PF_PORT PF_SINK_PORT HM_SMTP1 HM_ODMR1 HM_SMTP2 HM_ODMR2 DLV_PORT; do
        [ -n "${!v:-}" ] || e2e_ports "$v"
    done
    start_dnsmasq
    # shellcheck disable=SC2086 # "user password" pairs, split on purpose
    make_sasldb ${HM_USERS:-}
    holdmx_setup
    for ds in "$@"; do routes+=("${ds%%:*}=$(hm_nexthop "${ds#*:}")"); done
    postfix_setup "${routes[@]}"
    start_postfix
    start_holdmx
    for ds in "$@"; do
        d=${ds%%:*}
        s=${ds#*:}
        opts=HM_DOMAIN_OPTS_${d//./_}
        # shellcheck disable=SC2086
        hm_domain_add "$d" "$s" ${!opts:-}
    done
}

# hm_wait_held N SECS [filters] - wait until holdmx holds N messages.
hm_wait_held() {
    local n=$1 t=$2
    shift 2
    e2e_wait "$t" hm_held "$n" "$@"
}

# odmr_collect NAME SITE USER PASSWORD DOMAINS SINKPORT - fetchmail -p ODMR
# against a site's odmr_listen; prints fetchmail's exit code.
odmr_collect() {
    local a
    a=$(hm_odmr_addr "$2")
    fm_odmr "$1" "${a% *}" "${a#* }" "$3" "$4" "$5" "$6"
}

# stop_holdmx - SIGTERM queued (it stops turnd); wait for the listeners to go.
stop_holdmx() {
    [ -n "${HM_PID:-}" ] || return 0
    e2e_stop_pid "$HM_PID" 15
    e2e_untrack "$HM_PID"
    HM_PID=
    e2e_wait 10 eval '! e2e_listening 127.0.0.1 "$HM_ODMR1" && ! e2e_listening 127.0.0.1 "$HM_SMTP1"' ||
        e2e_die "holdmx listeners still open after queued stopped (turnd left behind?)"
}

# hm_ctl ARGS... - queuectl -c $HM_CONF ARGS; a verb queuectl does not know
# yet (exit 64 and not in its usage) makes the scenario skip.
hm_ctl() {
    local rc out=$W/logs/queuectl.last
    "$QUEUECTL" -c "$HM_CONF" "$@" >"$out" 2>&1
    rc=$?
    cat "$out" >>"$W/logs/queuectl"
    if [ $rc = 64 ] && ! "$QUEUECTL" -h 2>&1 | grep -qw -- "$1 $2"; then
        e2e_skip "queuectl does not implement '$1 $2' yet: $(head -c 300 "$out")"
    fi
    [ $rc = 0 ] || echo "queuectl $* -> exit $rc: $(head -c 500 "$out")" >&2
    return $rc
}

# hm_ctl_out ARGS... - like hm_ctl, output on stdout.
hm_ctl_out() { hm_ctl "$@" && cat "$W/logs/queuectl.last"; }

# hm_domain_add DOMAIN SITE [options] - queuectl domain add, or die.
hm_domain_add() {
    local d=$1 s=$2
    shift 2
    hm_ctl domain add "$d" --site "$s" "$@" || e2e_die "queuectl domain add $d failed"
}

# hm_account_add NAME PASSWORD DOMAINS - queuectl account add --password-stdin.
hm_account_add() {
    printf '%s\n' "$2" | "$QUEUECTL" -c "$HM_CONF" account add "$1" --domains "$3" --password-stdin \
        >>"$W/logs/queuectl" 2>&1 || {
        local rc=$?
        [ $rc = 64 ] && e2e_skip "queuectl account add not implemented (exit 64)"
        e2e_die "queuectl account add $1 failed (exit $rc)"
    }
}

# hm_queue_count [--domain D | --site S] - messages holdmx holds (queue list --json).
hm_queue_count() {
    hm_ctl queue list "$@" --json >/dev/null 2>&1 || {
        echo -1
        return 1
    }
    e2e_py queue-count "$W/logs/queuectl.last" || echo -1
}

# hm_held N [filters] - true when holdmx holds exactly N messages.
hm_held() {
    local n=$1
    shift
    [ "$(hm_queue_count "$@")" = "$n" ]
}

# hm_rcpt_count [--domain D | --site S] - recipients holdmx holds.
hm_rcpt_count() {
    hm_ctl queue list "$@" --json >/dev/null 2>&1 || {
        echo -1
        return 1
    }
    e2e_py queue-rcpts "$W/logs/queuectl.last" | grep -c @
}

# hm_held_rcpts N [filters] - true when holdmx holds exactly N recipients.
hm_held_rcpts() {
    local n=$1
    shift
    [ "$(hm_rcpt_count "$@")" = "$n" ]
}

# hm_alive - queued is still running.
hm_alive() { [ -n "${HM_PID:-}" ] && kill -0 "$HM_PID" 2>/dev/null; }

# --------------------------------------------------------------- Postfix

# postfix_setup ROUTES - private instance in $W/pf; ROUTES is a list of
# "domain=nexthop" (nexthop like [127.0.0.1]:2525 for smtp, or a full
# "transport:nexthop" such as hold:[127.0.0.1]:2526).  sender.test goes to the
# "dsn" sink on $PF_SINK_PORT so bounces from holdmx can be checked.
postfix_setup() {
    local r doms="sender.test"
    PF=$W/pf
    [ -n "${PF_PORT:-}" ] || e2e_ports PF_PORT PF_SINK_PORT
    mkdir -p "$PF/etc" "$PF/spool" "$PF/data"
    chown postfix:postfix "$PF/data"
    : >"$PF/etc/transport"
    for r in "$@"; do
        case ${r#*=} in
        \[*) echo "${r%%=*} smtp:${r#*=}" >>"$PF/etc/transport" ;;
        *) echo "${r%%=*} ${r#*=}" >>"$PF/etc/transport" ;;
        esac
        doms="$doms ${r%%=*}"
    done
    echo "sender.test smtp:[127.0.0.1]:$PF_SINK_PORT" >>"$PF/etc/transport"
    cat >"$PF/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $W/logs/postfix.maillog
maillog_file_prefixes = $W
myhostname = provider.test
mydomain = provider.test
myorigin = \$myhostname
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
biff = no
relay_domains = $doms
transport_maps = texthash:$PF/etc/transport
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
fast_flush_domains = \$relay_domains
smtpd_etrn_restrictions = permit_mynetworks, reject
defer_transports = hold
CONF
    # retry fast (a test never waits minutes for a deferred message), except
    # for the benchmarks' stock anchor (PF_FAST_RETRY=0): with a held domain
    # these timers would make qmgr re-scan deferred/ all the time
    [ "${PF_FAST_RETRY:-1}" = 1 ] && cat >>"$PF/etc/main.cf" <<CONF
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
CONF
    cat >"$PF/etc/master.cf" <<CONF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
hold      unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
CONF
}

# start_postfix - postfix check + start; records the master PID; starts
# the DSN sink (unless PF_NO_DSN_SINK=1); registers stop_postfix for cleanup.
start_postfix() {
    [ "${PF_NO_DSN_SINK:-0}" = 1 ] || start_sink dsn 127.0.0.1 "$PF_SINK_PORT"
    /usr/sbin/postfix -c "$PF/etc" check >>"$W/logs/postfix.ctl" 2>&1 || e2e_die "postfix check failed: $(cat "$W/logs/postfix.ctl")"
    /usr/sbin/postfix -c "$PF/etc" start >>"$W/logs/postfix.ctl" 2>&1 || e2e_die "postfix start failed: $(cat "$W/logs/postfix.ctl")"
    e2e_on_cleanup stop_postfix
    e2e_wait_listen 127.0.0.1 "$PF_PORT" 15 || e2e_die "postfix smtpd not listening"
    PF_MASTER_PID=$(tr -d ' ' <"$PF/spool/pid/master.pid")
    e2e_track "$PF_MASTER_PID" postfix-master
}

# stop_postfix - postfix -c DIR stop; wait (bounded) for the master to exit.
stop_postfix() {
    [ -n "${PF:-}" ] && [ -f "$PF/spool/pid/master.pid" ] || return 0
    /usr/sbin/postfix -c "$PF/etc" stop >>"$W/logs/postfix.ctl" 2>&1
    e2e_wait 10 eval '! kill -0 "${PF_MASTER_PID:-0}" 2>/dev/null'
    e2e_untrack "${PF_MASTER_PID:-0}"
}

# pf_queue_count - messages anywhere in the Postfix queue.
pf_queue_count() {
    find "$PF/spool/incoming" "$PF/spool/active" "$PF/spool/deferred" \
        "$PF/spool/maildrop" "$PF/spool/hold" -type f 2>/dev/null | wc -l
}

# pf_empty - the Postfix queue is empty.
pf_empty() { [ "$(pf_queue_count)" -eq 0 ]; }

# pf_sent_to PORT - deliveries Postfix made to a next hop on PORT.
pf_sent_to() { grep -c "relay=[^ ]*:$1, .*status=sent" "$W/logs/postfix.maillog" 2>/dev/null; }

# pf_sent_ge PORT N - Postfix delivered at least N messages to PORT.
pf_sent_ge() { [ "$(pf_sent_to "$1")" -ge "$2" ]; }

# pf_wait_sent PORT N SECS - wait until Postfix delivered N messages to PORT.
pf_wait_sent() { e2e_wait "$3" pf_sent_ge "$1" "$2"; }

# ---------------------------------------------------------- injection

# make_msg TAG FROM RCPTS [BODYLINES] - write $W/msgs/TAG.eml (LF endings;
# swaks sends CRLF), with a leading-dot line to exercise dot-stuffing.
make_msg() {
    local tag=$1 from=$2 rcpts=$3 lines=${4:-20} i hfrom=$2
    [ "$from" = "<>" ] && hfrom=mailer-daemon@sender.test
    mkdir -p "$W/msgs"
    {
        echo "From: <$hfrom>"
        echo "To: ${rcpts//,/, }"
        echo "Subject: e2e $tag"
        echo "Date: $(date -R)"
        echo "Message-ID: <$tag.$$@e2e.test>"
        echo "X-E2E-Tag: $tag"
        echo "MIME-Version: 1.0"
        echo "Content-Type: text/plain; charset=us-ascii"
        echo
        echo "Message $tag for $rcpts."
        echo ".a line starting with a dot"
        echo ".."
        for i in $(seq 1 "$lines"); do
            printf 'line %04d of %s: the quick brown fox jumps over the lazy dog\n' "$i" "$tag"
        done
        echo "end of $tag"
    } >"$W/msgs/$tag.eml"
    # no final newline: swaks ends the data with CRLF . CRLF itself
    truncate -s -1 "$W/msgs/$tag.eml"
}

# inject TAG FROM RCPTS - (FROM "<>" = null sender) make_msg (unless it exists) and send it with swaks
# into the Postfix instance (never directly into holdmx).
inject() {
    local tag=$1 from=$2 rcpts=$3
    [ -f "$W/msgs/$tag.eml" ] || make_msg "$tag" "$from" "$rcpts"
    timeout 60 swaks --server "127.0.0.1:$PF_PORT" --helo client.test --from "$from" \
        --to "$rcpts" --data "@$W/msgs/$tag.eml" >>"$W/logs/swaks" 2>&1 ||
        e2e_die "swaks could not inject $tag into Postfix (see logs/swaks)"
}

# verify_delivery SINK TAG RCPTS - exactly one copy of TAG in SINK,
# body identical apart from trace headers, envelope recipients RCPTS.
verify_delivery() { e2e_py verify "$W/store/$1" "$2" "$W/msgs/$2.eml" "$3"; }

# dsn_count SINK ACTION RCPT [SENDER] - DSNs in SINK (null sender, sent to
# SENDER when given) with that action for RCPT.
dsn_count() { e2e_py dsn "$W/store/$1" "$2" "$3" ${4:+"$4"}; }

# ------------------------------------------------------------- fetchmail

# fm_run NAME RCBODY... - one fetchmail poll with its own FETCHMAILHOME
# and rc file (0600); output in logs/fetchmail-NAME; prints the exit code.
fm_run() {
    local name=$1 rc home=$W/fm/home-$1
    shift
    mkdir -p "$W/fm"
    mkdir -p "$home"
    chmod 700 "$home"
    rc=$W/fm/$name.rc
    printf '%s\n' "$@" >"$rc"
    chmod 600 "$rc"
    # as root fetchmail's lock is /var/run/fetchmail.pid whatever
    # FETCHMAILHOME says: give each run its own, or concurrent tests collide
    FETCHMAILHOME=$home timeout 90 fetchmail -f "$rc" --pidfile "$home/fetchmail.pid" \
        --nosyslog -v >"$W/logs/fetchmail-$name" 2>&1
    echo $?
}

# fm_odmr NAME HOST PORT USER PASSWORD DOMAINS SMTPPORT - fetchmail -p ODMR
# collecting DOMAINS and relaying to the customer MTA on 127.0.0.1:SMTPPORT.
fm_odmr() {
    fm_run "$1" "poll $2 service $3 protocol ODMR" \
        "    user \"$4\" password \"$5\"" \
        "    fetchdomains $6" \
        "    smtphost 127.0.0.1/$7"
}

# fm_etrn NAME HOST PORT DOMAINS - fetchmail -p ETRN.
fm_etrn() {
    fm_run "$1" "poll $2 service $3 protocol ETRN" "    fetchdomains $4"
}
