#!/bin/bash
# test_restart.sh - nothing acknowledged is lost across restarts of holdmx
# between ingest and collection: a clean stop (SIGTERM; queued stops turnd),
# and a crash (SIGKILL of queued and of its children), then fetchmail -p ODMR
# collects every message exactly once.
. "$(dirname "$0")/lib.sh"
e2e_need_root
e2e_need_cmd dnsmasq dig postfix swaks fetchmail saslpasswd2 ss
e2e_need_holdmx queued turnd queuectl
e2e_workdir

HM_USERS="alice Alice-pw1"
world_start cust1.test:default
hm_account_add alice Alice-pw1 cust1.test
e2e_ports SINK_A
start_sink alice 127.0.0.1 "$SINK_A"

S=sender@sender.test
for i in 1 2 3 4 5; do inject "t$i" "$S" "u$i@cust1.test"; done
e2e_wait 30 pf_empty
e2e_check "Postfix relayed 5 messages to holdmx" [ "$(pf_sent_to "$HM_SMTP1")" = 5 ]
hm_wait_held 5 20
e2e_check "holdmx holds 5" hm_held 5

# ---- clean restart
stop_holdmx
e2e_check "queued exited on SIGTERM and closed every listener" eval '! e2e_listening 127.0.0.1 "$HM_ODMR1"'
for c in $HM_CHILDREN; do
    e2e_check "child $c (turnd) exited with queued" eval "! kill -0 $c 2>/dev/null"
done
start_holdmx
e2e_check "after the restart still 5 held" hm_held 5

# ---- crash: SIGKILL queued and its children, more mail first
for i in 6 7 8; do inject "t$i" "$S" "u$i@cust1.test"; done
e2e_wait 30 pf_empty
e2e_check "Postfix relayed 3 more" [ "$(pf_sent_to "$HM_SMTP1")" = 8 ]
kill -9 "$HM_PID"
wait "$HM_PID" 2>/dev/null
for c in $HM_CHILDREN; do e2e_stop_pid "$c" 5; done
e2e_untrack "$HM_PID"
e2e_wait 10 eval '! e2e_listening 127.0.0.1 "$HM_ODMR1" && ! e2e_listening 127.0.0.1 "$HM_SMTP1"'
start_holdmx
e2e_check "after the crash all 8 acknowledged messages are held" hm_held 8

e2e_check "alice collects (fetchmail exit 0)" \
    [ "$(odmr_collect alice default alice Alice-pw1 cust1.test "$SINK_A")" = 0 ]
e2e_check "alice got exactly 8" sink_has alice 8
for i in 1 2 3 4 5 6 7 8; do
    e2e_check "t$i delivered once, identical" verify_delivery alice "t$i" "u$i@cust1.test"
done
e2e_wait 5 hm_held 0
e2e_check "queue empty afterwards" hm_held 0
e2e_check "queued still running" hm_alive
e2e_finish
