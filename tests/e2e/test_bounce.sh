#!/bin/bash
# test_bounce.sh - DSNs: a 5xx from the customer's server, hold expiry, and
# a delay warning, each arriving as an RFC 3464 report at the sender through
# bounce_relay (the private Postfix) and then at Postfix's DSN sink.
#
#   cust1.test   alice collects with fetchmail -p ODMR; her MTA refuses
#                reject@cust1.test with 550: ok@ is delivered, reject@ bounces
#   expire.test  --hold-time 3s --delay-warning 0: bounces on expiry; a
#                null-sender message there is dropped without a DSN
#   delay.test   --hold-time 1h --delay-warning 2s: exactly one "delayed"
#                DSN, the message stays held
. "$(dirname "$0")/lib.sh"
e2e_need_root
e2e_need_cmd dnsmasq dig postfix swaks fetchmail saslpasswd2 ss
e2e_need_holdmx queued turnd queuectl
e2e_workdir

HM_USERS="alice Alice-pw1"
HM_DOMAIN_OPTS_expire_test="--hold-time 3s --delay-warning 0"
HM_DOMAIN_OPTS_delay_test="--hold-time 1h --delay-warning 2s"
world_start cust1.test:default expire.test:default delay.test:default
hm_account_add alice Alice-pw1 cust1.test
e2e_ports SINK_A
start_sink alice 127.0.0.1 "$SINK_A" --rcpt-reply 'reject@cust1.test=550 5.1.1 <reject@cust1.test>: no such user'

inject r1 s1@sender.test ok@cust1.test,reject@cust1.test
inject e1 s2@sender.test u@expire.test
inject n1 "<>" nul@expire.test
inject d1 s3@sender.test u@delay.test
e2e_wait 30 pf_empty
e2e_check "Postfix relayed everything to holdmx" pf_empty

# ---- 5xx at the customer's server
e2e_check "alice collects (fetchmail exit 0)" \
    [ "$(odmr_collect alice default alice Alice-pw1 cust1.test "$SINK_A")" = 0 ]
e2e_check "ok@cust1.test delivered, identical, only that recipient" verify_delivery alice r1 ok@cust1.test
e2e_wait 30 eval '[ "$(dsn_count dsn failed reject@cust1.test s1@sender.test)" -ge 1 ]'
e2e_check "DSN (failed) for reject@cust1.test reached s1@sender.test via Postfix" \
    [ "$(dsn_count dsn failed reject@cust1.test s1@sender.test)" = 1 ]
e2e_check "the DSN went through Postfix (bounce_relay) to sender.test's sink" pf_sent_ge "$PF_SINK_PORT" 1
e2e_check "nothing left for cust1.test" hm_held 0 --domain cust1.test

# ---- hold expiry (3 s)
e2e_wait 60 eval '[ "$(dsn_count dsn failed u@expire.test s2@sender.test)" -ge 1 ]'
e2e_check "expiry DSN (failed) for u@expire.test reached s2@sender.test" \
    [ "$(dsn_count dsn failed u@expire.test s2@sender.test)" = 1 ]
e2e_wait 10 hm_held 0 --domain expire.test
e2e_check "expired messages are gone from the queue" hm_held 0 --domain expire.test
e2e_check "no DSN for the null-sender message" [ "$(dsn_count dsn failed nul@expire.test)" = 0 ]

# ---- delay warning (2 s), hold time 1 h
e2e_wait 60 eval '[ "$(dsn_count dsn delayed u@delay.test s3@sender.test)" -ge 1 ]'
e2e_check "delay DSN for u@delay.test reached s3@sender.test" \
    [ "$(dsn_count dsn delayed u@delay.test s3@sender.test)" = 1 ]
e2e_check "the delayed message is still held" hm_held 1 --domain delay.test
sleep 5
e2e_check "only one delay warning after 5 more seconds" \
    [ "$(dsn_count dsn delayed u@delay.test)" = 1 ]
e2e_check "no 'failed' DSN for delay.test" [ "$(dsn_count dsn failed u@delay.test)" = 0 ]
e2e_check "DSN count overall: 3" sink_has dsn 3
e2e_check "queued still running" hm_alive
e2e_finish
