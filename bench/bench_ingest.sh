#!/bin/bash
# bench_ingest.sh - accept rate: smtp-source (SESSIONS parallel sessions,
# SIZE-byte messages, N messages, one connection per message as in
# smtp-source's default) into holdmx's queued holding the domain, then the
# same into a stock private Postfix holding it (defer_transports = hold +
# fast_flush, peers.md section 8), in the same run.  Prints msg/s for each
# and the ratio holdmx/Postfix, and checks that holdmx holds exactly N.
#   N=20000 SESSIONS=20 SIZE=4096 bash bench/bench_ingest.sh      (as root)
# Extra smtp-source options (both sides): SRC_OPTS=-d (reuse connections).
. "$(dirname "$0")/bench_lib.sh"
: "${SRC_OPTS:=}"
e2e_need_root
e2e_need_cmd postfix smtp-source ss saslpasswd2
e2e_need_holdmx queued queuectl
e2e_workdir
bench_header "ingest: smtp-source -s $SESSIONS -l $SIZE -m $N $SRC_OPTS"
fail=0

# ---- holdmx
bench_holdmx_start
hm_domain_add bench.test default
t0=$(bench_now)
# shellcheck disable=SC2086
bench_source "$HM_SMTP1" 127.0.0.1 user@bench.test -s "$SESSIONS" $SRC_OPTS || {
    echo "smtp-source into holdmx failed:"
    tail -5 "$W/logs/smtp-source"
    fail=1
}
t1=$(bench_now)
hm_rate=$(bench_rate "$N" "$t0" "$t1")
e2e_wait 30 hm_held "$N" --domain bench.test
hm_count=$(hm_queue_count --domain bench.test)
[ "$hm_count" = "$N" ] || {
    echo "holdmx holds $hm_count messages, expected $N"
    fail=1
}
hm_mem=$(bench_mem "$HM_PID")
stop_holdmx

# ---- stock Postfix
e2e_ports SINK_PORT
bench_pf_start bench.test "[127.0.0.1]:$SINK_PORT"
t2=$(bench_now)
# shellcheck disable=SC2086
bench_source "$PF_PORT" 127.0.0.1 user@bench.test -s "$SESSIONS" $SRC_OPTS || {
    echo "smtp-source into Postfix failed"
    fail=1
}
t3=$(bench_now)
bench_pf_settle 300
t3s=$(bench_now)
pf_rate=$(bench_rate "$N" "$t2" "$t3")
pf_count=$(bench_pf_deferred)
[ "$pf_count" = "$N" ] || echo "WARNING: Postfix holds $pf_count, expected $N"
stop_postfix

printf '\n%-26s %10s %10s %10s %10s\n' system accept_s msg/s held note
printf '%-26s %10s %10s %10s %10s\n' "holdmx queued" "$(bench_secs "$t0" "$t1")" "$hm_rate" "$hm_count" "pss ${hm_mem#* }K"
printf '%-26s %10s %10s %10s %10s\n' "postfix 3.7 (stock)" "$(bench_secs "$t2" "$t3")" "$pf_rate" "$pf_count" "settle $(bench_secs "$t3" "$t3s")s"
echo "ratio holdmx/postfix accept: $(bench_ratio "$hm_rate" "$pf_rate")"
[ $fail = 0 ] || e2e_dump_logs
exit $fail
