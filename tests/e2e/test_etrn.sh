#!/bin/bash
# test_etrn.sh - static-IP customers: fetchmail -p ETRN, holdmx delivers on
# new connections to the targets c-ares finds in the private dnsmasq zone,
# on delivery_port, each target told apart by its 127.0.0.x address.
#
#   static.test    MX 10 -> 127.0.0.3 (sink)
#   multimx.test   MX 10 -> 127.0.0.4 (nothing listens), MX 20 -> 127.0.0.5 (sink)
#   implicit.test  no MX, A 127.0.0.6 (sink)
#   routed.test    --route [127.0.0.7]:DLV_PORT (sink), no DNS
#   selfmx.test    only MX is holdmx itself: never delivered to itself
#                  (a trap sink on 127.0.0.1:DLV_PORT must stay empty), stays held
#   nullmx.test    RFC 7505 null MX: no delivery attempt anywhere; held or
#                  bounced with 5.1.10, never a crash
. "$(dirname "$0")/lib.sh"
e2e_need_root
e2e_need_cmd dnsmasq dig postfix swaks fetchmail saslpasswd2 ss
e2e_need_holdmx queued queuectl
[ -x "$TURND" ] || HM_NEED_TURND=0
e2e_workdir

# DLV_PORT must be free on every address we use; e2e_alloc_port checks all.
e2e_ports PF_PORT PF_SINK_PORT HM_SMTP1 HM_ODMR1 HM_SMTP2 HM_ODMR2 DLV_PORT
HM_DOMAIN_OPTS_routed_test="--route [127.0.0.7]:$DLV_PORT"
world_start static.test:default multimx.test:default implicit.test:default \
    routed.test:default selfmx.test:default nullmx.test:default
start_sink static 127.0.0.3 "$DLV_PORT"
start_sink mx2 127.0.0.5 "$DLV_PORT"
start_sink implicit 127.0.0.6 "$DLV_PORT"
start_sink routed 127.0.0.7 "$DLV_PORT"
start_sink trap 127.0.0.1 "$DLV_PORT"
e2e_check "nothing listens on 127.0.0.4:$DLV_PORT (the dead MX)" eval '! e2e_listening 127.0.0.4 "$DLV_PORT"'

S=sender@sender.test
inject s1 "$S" a@static.test,b@static.test
inject m1 "$S" a@multimx.test
inject i1 "$S" a@implicit.test
inject r1 "$S" a@routed.test
inject x1 "$S" a@selfmx.test
inject z1 "$S" a@nullmx.test
e2e_wait 30 pf_empty
e2e_check "Postfix relayed everything to holdmx" pf_empty
hm_wait_held 6 20
e2e_check "holdmx holds 6 messages" hm_held 6
sleep 1
e2e_check "nothing delivered before ETRN" [ "$(find "$W/store" -path '*/dsn' -prune -o -name '*.eml' -print | wc -l)" = 0 ]

e2e_check "fetchmail -p ETRN for four domains exits 0" \
    [ "$(fm_etrn etrn 127.0.0.1 "$HM_SMTP1" static.test,multimx.test,implicit.test,routed.test)" = 0 ]
e2e_check "fetchmail saw 250 for every domain" [ "$(grep -c 'ETRN< 25[0-9]' "$W/logs/fetchmail-etrn")" = 4 ]
for s in static mx2 implicit routed; do e2e_wait 30 sink_at_least $s 1; done
e2e_check "static.test: one copy to MX 127.0.0.3, both recipients" verify_delivery static s1 a@static.test,b@static.test
e2e_check "multimx.test: fell back to MX 20 on 127.0.0.5" verify_delivery mx2 m1 a@multimx.test
e2e_check "implicit.test: delivered to its A record 127.0.0.6" verify_delivery implicit i1 a@implicit.test
e2e_check "routed.test: delivered to the configured route" verify_delivery routed r1 a@routed.test
e2e_wait 10 hm_held 2
e2e_check "delivered mail left the queue (selfmx + nullmx remain)" hm_held 2

# ---- holdmx as its own MX, and a null MX
e2e_check "ETRN selfmx.test,nullmx.test answered (fetchmail exit 0)" \
    [ "$(fm_etrn etrn2 127.0.0.1 "$HM_SMTP1" selfmx.test,nullmx.test)" = 0 ]
sleep 5
e2e_check "selfmx.test never delivered to holdmx itself (trap sink empty)" sink_has trap 0
e2e_check "selfmx.test message still held" hm_held 1 --domain selfmx.test
e2e_check "nullmx.test: no delivery anywhere" \
    [ "$(find "$W/store" -path '*/dsn' -prune -o -name '*.eml' -print | wc -l)" = 4 ]
e2e_wait 20 eval 'hm_held 1 --domain nullmx.test || [ "$(dsn_count dsn failed a@nullmx.test)" = 1 ]'
e2e_check "nullmx.test: held, or bounced with one DSN" \
    eval 'hm_held 1 --domain nullmx.test || [ "$(dsn_count dsn failed a@nullmx.test)" = 1 ]'
if [ "$(sink_count dsn)" -gt 0 ]; then
    e2e_check "a null-MX DSN says 5.1.10" grep -rqi "5\.1\.10" "$W/store/dsn"
fi
e2e_check "ETRN for a domain holdmx does not hold is not 250" \
    "$PY" -c "import smtplib,sys; s=smtplib.SMTP('127.0.0.1', $HM_SMTP1, timeout=20); s.ehlo('c.test'); c,m=s.docmd('ETRN','nosuch.test'); print('ETRN nosuch.test ->', c, m); sys.exit(c == 250 or c < 400)"
e2e_check "queued still running" hm_alive
e2e_finish
