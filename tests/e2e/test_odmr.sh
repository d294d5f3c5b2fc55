#!/bin/bash
# test_odmr.sh - customers collect with fetchmail -p ODMR.
#
# Two customers on site "default" (alice: cust1.test, bob: cust2.test) and
# one on site "branch2" (carol: cust3.test); other.test is held but nobody
# collects it.  Mail enters through the private Postfix (swaks), which relays
# each domain to its site's smtp_listen.  One message spans every domain.
# Checks: each customer gets exactly its own recipients, bodies identical
# apart from trace headers, one copy each; a foreign domain is refused and
# the wrong password fails with nothing delivered; the rest stays held; a
# second collection finds nothing.
. "$(dirname "$0")/lib.sh"
e2e_need_root
e2e_need_cmd dnsmasq dig postfix swaks fetchmail saslpasswd2 ss
e2e_need_holdmx queued turnd queuectl
e2e_workdir

HM_USERS="alice Alice-pw1 bob Bob-pw2 carol Carol-pw3"
world_start cust1.test:default cust2.test:default cust3.test:branch2 other.test:default
hm_account_add alice Alice-pw1 cust1.test
hm_account_add bob Bob-pw2 cust2.test
hm_account_add carol Carol-pw3 cust3.test

e2e_ports SINK_A SINK_B SINK_C
start_sink alice 127.0.0.1 "$SINK_A"
start_sink bob 127.0.0.1 "$SINK_B"
start_sink carol 127.0.0.1 "$SINK_C"

S=sender@sender.test
inject a1 "$S" u1@cust1.test
inject b1 "$S" u2@cust2.test
inject c1 "$S" u3@cust3.test
inject all "$S" u1@cust1.test,v1@cust1.test,u2@cust2.test,u3@cust3.test,w@other.test
e2e_wait 30 pf_empty
e2e_check "Postfix relayed everything to holdmx" pf_empty
# a message spanning sites may be stored once or per site: count recipients
e2e_wait 20 hm_held_rcpts 8
e2e_check "holdmx holds the 8 recipients" hm_held_rcpts 8
e2e_check "site branch2 holds 2 of them" hm_held_rcpts 2 --site branch2
e2e_check "holdmx logged the arrivals" grep -q "from=<$S>" "$W/logs/queued"

# negative cases first, while everything is still held
e2e_check "alice asking for cust2.test is refused (fetchmail exit != 0)" \
    [ "$(odmr_collect alice-foreign default alice Alice-pw1 cust2.test "$SINK_A")" != 0 ]
e2e_check "refusal is a 450 (protocols.md 7.4)" grep -q "ODMR< 450" "$W/logs/fetchmail-alice-foreign"
e2e_check "alice with a wrong password fails" \
    [ "$(odmr_collect alice-badpw default alice wrong-pw cust1.test "$SINK_A")" != 0 ]
e2e_check "nothing delivered by the refused sessions" sink_has alice 0
e2e_check "still 8 recipients held" hm_held_rcpts 8

# alice and bob on site default, carol on branch2
e2e_check "alice collects (fetchmail exit 0)" \
    [ "$(odmr_collect alice default alice Alice-pw1 cust1.test "$SINK_A")" = 0 ]
e2e_check "alice got 2 messages" sink_has alice 2
e2e_check "alice: a1 identical, rcpt u1" verify_delivery alice a1 u1@cust1.test
e2e_check "alice: multi-domain message with only her two recipients" \
    verify_delivery alice all u1@cust1.test,v1@cust1.test
e2e_check "alice got nothing for other domains" e2e_py only-domains "$W/store/alice" cust1.test

e2e_check "bob collects (fetchmail exit 0)" \
    [ "$(odmr_collect bob default bob Bob-pw2 cust2.test "$SINK_B")" = 0 ]
e2e_check "bob got 2 messages" sink_has bob 2
e2e_check "bob: b1 identical" verify_delivery bob b1 u2@cust2.test
e2e_check "bob: multi-domain message, only u2" verify_delivery bob all u2@cust2.test
e2e_check "bob got nothing for other domains" e2e_py only-domains "$W/store/bob" cust2.test

e2e_check "carol collects from site branch2 (fetchmail exit 0)" \
    [ "$(odmr_collect carol branch2 carol Carol-pw3 cust3.test "$SINK_C")" = 0 ]
e2e_check "carol got 2 messages" sink_has carol 2
e2e_check "carol: c1 identical" verify_delivery carol c1 u3@cust3.test
e2e_check "carol: multi-domain message, only u3" verify_delivery carol all u3@cust3.test
e2e_check "carol got nothing for other domains" e2e_py only-domains "$W/store/carol" cust3.test

# what is left: the multi-domain message, for other.test only
e2e_wait 5 hm_held_rcpts 1
e2e_check "only w@other.test stays held" hm_held_rcpts 1
e2e_check "  ... one message listed under other.test" hm_held 1 --domain other.test
e2e_check "  ... and nothing under cust1.test" hm_held 0 --domain cust1.test
e2e_check "alice again: no mail, fetchmail exit 0" \
    [ "$(odmr_collect alice-again default alice Alice-pw1 cust1.test "$SINK_A")" = 0 ]
e2e_check "  ... and no duplicate" sink_has alice 2
e2e_check "no DSN was sent" sink_has dsn 0
e2e_check "queued still running" hm_alive
e2e_finish
