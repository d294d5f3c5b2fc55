#!/bin/bash
# bench_memory.sh - memory and disk for N held SIZE-byte messages: RSS of
# queued (+ turnd) holding them against the RSS of all Postfix processes
# holding the same (stock private instance, defer_transports = hold), plus
# the on-disk size of the LMDB environment and of the Postfix spool.
#   N=20000 SIZE=4096 bash bench/bench_memory.sh     (as root)
. "$(dirname "$0")/bench_lib.sh"
e2e_need_root
e2e_need_cmd postfix smtp-source ss saslpasswd2
e2e_need_holdmx queued queuectl
e2e_workdir
bench_header "memory: N held messages"
fail=0

bench_holdmx_start
hm_idle=$(bench_mem "$HM_PID")
hm_domain_add bench.test default
bench_source "$HM_SMTP1" 127.0.0.1 user@bench.test -s "$SESSIONS" || fail=1
e2e_wait 30 hm_held "$N" --domain bench.test || fail=1
hm_held_n=$(hm_queue_count --domain bench.test)
sleep 1
hm_full=$(bench_mem "$HM_PID")
hm_disk=$(du -sk "$HM_DIR/state" | awk '{print $1}')
stop_holdmx

e2e_ports SINK_PORT
bench_pf_start bench.test "[127.0.0.1]:$SINK_PORT"
pf_idle=$(bench_mem "$PF_MASTER_PID")
bench_source "$PF_PORT" 127.0.0.1 user@bench.test -s "$SESSIONS" || fail=1
bench_pf_settle 300
sleep 1
pf_full=$(bench_mem "$PF_MASTER_PID")
pf_disk=$(du -sk "$PF/spool" | awk '{print $1}')
pf_held=$(bench_pf_deferred)
stop_postfix

printf '\n%-22s %10s %10s %12s %12s %10s\n' system "idle RSS" "idle PSS" "held RSS" "held PSS" "disk"
printf '%-22s %9sK %9sK %11sK %11sK %9sK\n' "holdmx (queued+turnd)" "${hm_idle% *}" "${hm_idle#* }" "${hm_full% *}" "${hm_full#* }" "$hm_disk"
printf '%-22s %9sK %9sK %11sK %11sK %9sK\n' "postfix (all procs)" "${pf_idle% *}" "${pf_idle#* }" "${pf_full% *}" "${pf_full#* }" "$pf_disk"
echo "held: holdmx $hm_held_n, postfix $pf_held deferred (N=$N)"
echo "ratio holdmx/postfix holding N: PSS $(bench_ratio "${hm_full#* }" "${pf_full#* }"), RSS $(bench_ratio "${hm_full% *}" "${pf_full% *}"), disk $(bench_ratio "$hm_disk" "$pf_disk")"
[ $fail = 0 ] || e2e_dump_logs
exit $fail
