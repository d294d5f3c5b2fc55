#!/bin/bash
# test_peers.sh - self-test of the e2e harness against the real peers, with
# no holdmx binary involved: dnsmasq answers every record the scenarios rely
# on (null MX included), saslpasswd2 writes the sasldb, a private Postfix
# relays a held domain to sink.py (standing in for holdmx's smtp_listen) and
# sender.test to the DSN sink, comparison helpers see byte-identical bodies,
# and fetchmail -p ETRN flushes a domain Postfix holds.  If this fails, the
# other scenarios' failures are the harness's, not holdmx's.
. "$(dirname "$0")/lib.sh"
e2e_need_root
e2e_need_cmd dnsmasq dig postfix swaks fetchmail saslpasswd2 sasldblistusers2 ss
e2e_workdir

# ---- DNS
start_dnsmasq
e2e_check "MX multimx.test: two preferences" [ "$(e2e_dig MX multimx.test)" = "10 mx1.multimx.test. 20 mx2.multimx.test." ]
e2e_check "A mx2.multimx.test" [ "$(e2e_dig A mx2.multimx.test)" = "127.0.0.5" ]
e2e_check "MX static.test" [ "$(e2e_dig MX static.test)" = "10 mx.static.test." ]
e2e_check "MX nullmx.test is a null MX (0 .)" [ "$(e2e_dig MX nullmx.test)" = "0 ." ]
e2e_check "MX selfmx.test points at holdmx" [ "$(e2e_dig MX selfmx.test)" = "10 mx.holdmx.test." ]
e2e_check "A mx.holdmx.test" [ "$(e2e_dig A mx.holdmx.test)" = "127.0.0.1" ]
e2e_check "implicit.test: no MX, NOERROR" [ "$(e2e_dig MX implicit.test)" = "" ] && [ "$(e2e_dig_status MX implicit.test)" = NOERROR ]
e2e_check "A implicit.test" [ "$(e2e_dig A implicit.test)" = "127.0.0.6" ]
e2e_check "nosuch.test: NXDOMAIN" [ "$(e2e_dig_status MX nosuch.test)" = NXDOMAIN ]

# ---- SASL
make_sasldb alice 'Secr3t!' bob 'b0b-pw'
e2e_check "sasldb holds alice@holdmx and bob@holdmx" \
    [ "$(sasldblistusers2 -f "$SASL_DIR/sasldb2" | cut -d: -f1 | sort | tr '\n' ' ')" = "alice@holdmx bob@holdmx " ]

# ---- Postfix relaying to a stand-in for holdmx, and DSN routing
e2e_ports FAKE_HM_PORT HOLD_SINK_PORT
postfix_setup "cust1.test=[127.0.0.1]:$FAKE_HM_PORT" "cust2.test=[127.0.0.2]:$FAKE_HM_PORT"
echo "held.test hold:[127.0.0.1]:$HOLD_SINK_PORT" >>"$PF/etc/transport"
sed -i 's/^relay_domains = .*/& held.test/' "$PF/etc/main.cf"
start_postfix
start_sink fakehm 127.0.0.1 "$FAKE_HM_PORT" --rcpt-reply 'reject*@*=550 5.1.1 no such user'
start_sink fakehm2 127.0.0.2 "$FAKE_HM_PORT"
inject m1 someone@sender.test a@cust1.test,b@cust1.test
inject m2 someone@sender.test c@cust2.test
inject m3 someone@sender.test reject@cust1.test
e2e_wait 30 pf_empty
e2e_check "Postfix queue empty" pf_empty
e2e_check "m1 relayed once, identical, both recipients" verify_delivery fakehm m1 a@cust1.test,b@cust1.test
e2e_check "m2 relayed to 127.0.0.2" verify_delivery fakehm2 m2 c@cust2.test
e2e_check "fakehm only got cust1.test" e2e_py only-domains "$W/store/fakehm" cust1.test
e2e_wait 20 sink_at_least dsn 1
e2e_check "Postfix bounce for reject@cust1.test reached the DSN sink" \
    [ "$(dsn_count dsn failed reject@cust1.test)" = 1 ]
sed 's/line 0007/line 0o07/' "$W/msgs/m1.eml" >"$W/msgs/m1-altered.eml"
e2e_check "verify detects a changed body" \
    eval '! e2e_py verify "$W/store/fakehm" m1 "$W/msgs/m1-altered.eml" a@cust1.test,b@cust1.test'
e2e_check "verify detects a wrong recipient set" \
    eval '! e2e_py verify "$W/store/fakehm" m1 "$W/msgs/m1.eml" a@cust1.test'
e2e_check "only-domains detects a foreign recipient" eval '! e2e_py only-domains "$W/store/fakehm" cust2.test'

# ---- fetchmail ETRN against Postfix holding held.test
start_sink holdsink 127.0.0.1 "$HOLD_SINK_PORT"
inject h1 someone@sender.test u@held.test
e2e_wait 20 eval '[ "$(find "$PF/spool/deferred" -type f | wc -l)" -eq 1 ]'
e2e_check "Postfix holds h1 (deferred transport)" sink_has holdsink 0
e2e_check "fetchmail -p ETRN exits 0" [ "$(fm_etrn etrn 127.0.0.1 "$PF_PORT" held.test)" = 0 ]
e2e_wait 30 sink_has holdsink 1
e2e_check "ETRN flushed h1 to the sink, body identical" verify_delivery holdsink h1 u@held.test
e2e_finish
