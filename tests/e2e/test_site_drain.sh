#!/bin/bash
# test_site_drain.sh - "queuectl site drain branch2 --move-to default" moves
# the mail held on site branch2 to site default; the customer then collects
# it with fetchmail -p ODMR from default's odmr_listen.
. "$(dirname "$0")/lib.sh"
e2e_need_root
e2e_need_cmd dnsmasq dig postfix swaks fetchmail saslpasswd2 ss
e2e_need_holdmx queued turnd queuectl
e2e_workdir

HM_USERS="carol Carol-pw3 alice Alice-pw1"
world_start cust3.test:branch2 cust1.test:default
hm_account_add carol Carol-pw3 cust3.test
hm_account_add alice Alice-pw1 cust1.test
e2e_ports SINK_C
start_sink carol 127.0.0.1 "$SINK_C"

S=sender@sender.test
for i in 1 2 3; do inject "d$i" "$S" "u$i@cust3.test"; done
inject a1 "$S" u@cust1.test
e2e_wait 30 pf_empty
e2e_check "Postfix relayed everything to holdmx" pf_empty
hm_wait_held 3 20 --site branch2
e2e_check "branch2 holds 3" hm_held 3 --site branch2
e2e_check "default holds 1" hm_held 1 --site default

hm_ctl site drain branch2 --move-to default </dev/null
e2e_check "queuectl site drain branch2 --move-to default exits 0" [ $? = 0 ]
e2e_check "branch2 holds nothing after the drain" hm_held 0 --site branch2
e2e_check "default holds all 4" hm_held 4 --site default

e2e_check "carol collects from site default (fetchmail exit 0)" \
    [ "$(odmr_collect carol default carol Carol-pw3 cust3.test "$SINK_C")" = 0 ]
e2e_check "carol got 3" sink_has carol 3
for i in 1 2 3; do
    e2e_check "d$i delivered once, identical" verify_delivery carol "d$i" "u$i@cust3.test"
done
e2e_check "carol got nothing for cust1.test" e2e_py only-domains "$W/store/carol" cust3.test
e2e_check "alice's message untouched" hm_held 1 --domain cust1.test
e2e_check "queued still running" hm_alive
e2e_finish
