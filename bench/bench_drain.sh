#!/bin/bash
# bench_drain.sh - drain rates, holdmx against anchors measured in the same run:
#  1. ODMR: N held SIZE-byte messages drained over ONE ATRN connection by
#     contrib/odmr-customer (or bench/odmr_customer.py while that is not
#     built), against smtp-source -s 1 -m N into smtp-sink (the speed of one
#     plain SMTP session on this box).
#  2. ETRN: holdmx delivering N held messages to smtp-sink after one ETRN,
#     against stock Postfix flushing N held messages to smtp-sink after one
#     ETRN (peers.md section 8).  Time = from ETRN until the queue is empty.
#   N=20000 SIZE=4096 bash bench/bench_drain.sh     (as root)
. "$(dirname "$0")/bench_lib.sh"
e2e_need_root
e2e_need_cmd postfix smtp-source smtp-sink ss saslpasswd2
e2e_need_holdmx queued queuectl
e2e_workdir
bench_header "drain: ODMR (1 connection) and ETRN"
fail=0
e2e_ports SINK_PORT
e2e_bg smtp-sink smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1024
e2e_wait_listen 127.0.0.1 "$SINK_PORT" 10 "$E2E_PID" || e2e_die "smtp-sink did not start"

# ---- holdmx: fill two domains (ODMR and ETRN), untimed
BENCH_USERS="bench Bench-pw1"
bench_holdmx_start
hm_domain_add odmr.test default
hm_domain_add etrn.test default --route "[127.0.0.1]:$SINK_PORT"
bench_source "$HM_SMTP1" 127.0.0.1 user@odmr.test -s "$SESSIONS" || fail=1
bench_source "$HM_SMTP1" 127.0.0.1 user@etrn.test -s "$SESSIONS" || fail=1
e2e_wait 30 hm_held "$N" --domain odmr.test
e2e_wait 30 hm_held "$N" --domain etrn.test
e2e_log "holdmx holds $(hm_queue_count --domain odmr.test) + $(hm_queue_count --domain etrn.test)"

# ---- 1a. holdmx ODMR drain over one connection
odmr_rate=n/a odmr_secs=n/a
if [ -x "$TURND" ]; then
    hm_account_add bench Bench-pw1 odmr.test
    printf '%s' Bench-pw1 >"$W/pw"
    chmod 600 "$W/pw"
    CUSTOMER=$HOLDMX_BUILD/contrib/odmr-customer
    if [ -x "$CUSTOMER" ]; then
        # contrib/odmr-customer: -H -p -u -P DOMAINS; prints
        # "messages=N bytes=B elapsed=S rate=R msg/s (M MiB/s)"
        e2e_log "ODMR customer: $CUSTOMER"
        out=$(timeout "${BENCH_TIMEOUT:-1800}" "$CUSTOMER" -H 127.0.0.1 -p "$HM_ODMR1" -u bench \
            -P "$W/pw" odmr.test 2>>"$W/logs/odmr-customer")
    else
        # bench/odmr_customer.py prints "messages N bytes B seconds S msg/s R"
        e2e_log "ODMR customer: bench/odmr_customer.py (contrib/odmr-customer not built)"
        out=$(timeout "${BENCH_TIMEOUT:-1800}" "$PY" "$BENCH_DIR/odmr_customer.py" --host 127.0.0.1 \
            --port "$HM_ODMR1" --user bench --password-file "$W/pw" --domains odmr.test \
            2>>"$W/logs/odmr-customer")
    fi
    echo "$out" >>"$W/logs/odmr-customer"
    # both formats -> "messages N bytes B elapsed S rate R"
    norm=$(echo "$out" | sed -n 's/^messages[= ]\([0-9]*\) bytes[= ]\([0-9]*\) \(elapsed=\|seconds \)\([0-9.]*\) \(rate=\|msg\/s \)\([0-9.]*\).*/\1 \2 \4 \6/p')
    got=$(echo "$norm" | awk '{print $1}')
    odmr_secs=$(echo "$norm" | awk '{print $3}')
    odmr_rate=$(echo "$norm" | awk '{printf "%.0f", $4}')
    [ "$got" = "$N" ] || {
        echo "ODMR drain moved ${got:-0} messages, expected $N: $out"
        fail=1
    }
    e2e_wait 10 hm_held 0 --domain odmr.test || {
        echo "odmr.test still holds $(hm_queue_count --domain odmr.test) after the drain"
        fail=1
    }
else
    echo "turnd not built: ODMR drain skipped"
fi

# ---- 2a. holdmx ETRN drain to smtp-sink
t0=$(bench_now)
bench_etrn "$HM_SMTP1" etrn.test || {
    echo "ETRN etrn.test refused by holdmx"
    fail=1
}
e2e_wait "${BENCH_TIMEOUT:-1800}" hm_held 0 --domain etrn.test || fail=1
t1=$(bench_now)
hm_etrn_rate=$(bench_rate "$N" "$t0" "$t1")
hm_etrn_secs=$(bench_secs "$t0" "$t1")
stop_holdmx

# ---- 1b. anchor: one SMTP session smtp-source -> smtp-sink
t0=$(bench_now)
bench_source "$SINK_PORT" 127.0.0.1 user@sink.test -s 1 || fail=1
t1=$(bench_now)
one_rate=$(bench_rate "$N" "$t0" "$t1")
one_secs=$(bench_secs "$t0" "$t1")

# ---- 2b. anchor: stock Postfix ETRN flush to smtp-sink
bench_pf_start held.test "[127.0.0.1]:$SINK_PORT"
bench_source "$PF_PORT" 127.0.0.1 user@held.test -s "$SESSIONS" || fail=1
bench_pf_settle 300
held=$(bench_pf_deferred)
[ "$held" = "$N" ] || echo "WARNING: Postfix holds $held, expected $N"
t0=$(bench_now)
bench_etrn "$PF_PORT" held.test || fail=1
bench_wait_secs "${BENCH_TIMEOUT:-1800}" pf_empty
t1=$(bench_now)
pf_rate=$(bench_rate "$N" "$t0" "$t1")
pf_secs=$(bench_secs "$t0" "$t1")
sleep 0.5
pf_sent=$(grep -c "status=sent" "$W/logs/postfix.maillog")
stop_postfix

printf '\n%-44s %9s %8s   %-46s %9s %8s %6s\n' "holdmx" seconds msg/s anchor seconds msg/s ratio
printf '%-44s %9s %8s   %-46s %9s %8s %6s\n' "ODMR drain, 1 ATRN connection" "$odmr_secs" "$odmr_rate" \
    "smtp-source -s 1 -> smtp-sink" "$one_secs" "$one_rate" "$(bench_ratio "$odmr_rate" "$one_rate")"
printf '%-44s %9s %8s   %-46s %9s %8s %6s\n' "ETRN drain -> smtp-sink" "$hm_etrn_secs" "$hm_etrn_rate" \
    "postfix ETRN flush -> smtp-sink ($pf_sent sent)" "$pf_secs" "$pf_rate" "$(bench_ratio "$hm_etrn_rate" "$pf_rate")"
[ $fail = 0 ] || e2e_dump_logs
exit $fail
