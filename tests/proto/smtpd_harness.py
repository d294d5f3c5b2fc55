#!/usr/bin/env python3
"""smtpd_harness.py - protocol tests of queued's SMTP server (Python 3 stdlib).

Usage: smtpd_harness.py GROUP...   (groups: basic abuse tls etrn config delivery)

Each run makes a temp dir with a holdmx.conf (two sites on random loopback
ports, a self-signed certificate for site "default"), starts the real
`queued -f` from $HOLDMX_BUILD, adds held domains with `queuectl`, and talks
SMTP to it over 127.0.0.1 with raw sockets (so pipelining, NUL bytes, bare
LF and over-long lines can be sent exactly).  Only processes started here
are signalled (by recorded pid).  Every wait is bounded in time.

Exit status: 0 all checks passed, 1 a check failed, 77 skipped (a binary
this test needs is not built yet).
"""
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

from hm_harness import (FAILS, QUEUECTL, QUEUED, Client, QueuedBase, Sink, check, free_port,
                        log, make_cert, need_exec, port_open, smtp_transaction)


class Env(QueuedBase):
    """Env - temp dir, config, certificate, the queued process."""

    def __init__(self, tls=True, smtp_timeout="2s", extra="", verbose=False, per_ip=3):
        super().__init__("holdmx-smtpd.")
        self.verbose = verbose
        self.per_ip = per_ip
        self.port = free_port()
        self.port2 = free_port()
        self.odmr = free_port()
        self.odmr2 = free_port()
        self.sink = None
        self.tls = tls
        if tls:
            make_cert(os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem"))
        self.write_conf(smtp_timeout, extra)

    def write_conf(self, smtp_timeout, extra, drop_branch2=False):
        """write_conf - the test holdmx.conf."""
        tls = ""
        if self.tls:
            tls = "tls_cert = %s/cert.pem\ntls_key = %s/key.pem\n" % (self.dir, self.dir)
        branch2 = ("[site branch2]\nhostname = mx2.test\nsmtp_listen = 127.0.0.1:%d\n"
                   "odmr_listen = 127.0.0.1:%d\n" % (self.port2, self.odmr2))
        with open(self.conf, "w") as f:
            f.write("state_dir = %s/state\n" % self.dir)
            f.write("bounce_relay = [127.0.0.1]:%d\n" % free_port())
            f.write("start_turnd = no\n")
            f.write("max_message_size = 2000000\n")
            f.write("max_connections_per_ip = %d\n" % self.per_ip)
            f.write("max_errors = 5\n")
            f.write("max_recipients = 3\n")
            f.write("smtp_timeout = %s\n" % smtp_timeout)
            f.write("data_timeout = 5s\n")
            f.write(extra)
            f.write("\n[site default]\nhostname = mx.test\nsmtp_listen = 127.0.0.1:%d\n"
                    "odmr_listen = 127.0.0.1:%d\n%s\n" % (self.port, self.odmr, tls))
            if not drop_branch2:
                f.write(branch2)

    def start(self):
        """start - queued -f in the background; wait until it accepts."""
        self.start_queued(lambda: port_open(self.port, 1), ["-v"] if self.verbose else [])

    def ctl(self, *args):
        """ctl - run queuectl against our config."""
        return super().ctl(*args, timeout=30)

    def domain_add(self, name, *opts):
        """domain_add - queuectl domain add name opts..., or RuntimeError."""
        self.ctl_ok("domain", "add", name, *opts)

    def cleanup(self):
        """cleanup - stop queued and the sink, remove the work dir."""
        self.stop()
        if self.sink:
            self.sink.close()
        self.remove_dir()


def send_message(port, sender, rcpts, body, ehlo="client.test"):
    """send_message - one plain transaction; returns the final reply."""
    return smtp_transaction(port, sender, rcpts, body, ehlo)


def open_tx(port, sender, rcpt):
    """open_tx - a Client after EHLO, MAIL FROM:<sender> and RCPT TO:<rcpt>."""
    c = Client(port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<%s>" % sender)
    c.cmd("RCPT TO:<%s>" % rcpt)
    return c


def check_conn_cap(port, n, what):
    """check_conn_cap - with n connections held open, one more is greeted 421 4.7.0."""
    held = [Client(port) for _ in range(n)]
    extra = Client(port)
    check(extra.greeting[0] == 421 and "4.7.0" in extra.greeting[1][0], what, extra.greeting)
    extra.close()
    for h in held:
        h.close()


QID = re.compile(r"queued as ([0-9A-F]+)")

# ---------------------------------------------------------------- groups


def group_basic(env):
    """basic - EHLO, acceptance, relay rules, sizes, quotas, pipelining, restart, swaks."""
    env.domain_add("held.test", "--site", "default")
    env.domain_add("other.test", "--site", "branch2")
    env.domain_add("full.test", "--site", "default", "--max-queue", "1")

    c = Client(env.port)
    check(c.greeting[0] == 220 and "mx.test ESMTP holdmx" in c.greeting[1][0],
          "greeting 220 <hostname> ESMTP holdmx", c.greeting)
    code, lines = c.cmd("EHLO client.test")
    kw = [ln[4:] for ln in lines]
    check(code == 250 and lines[0].startswith("250-mx.test"), "EHLO 250", lines)
    for k in ("PIPELINING", "SIZE 2000000", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN", "ETRN",
              "STARTTLS"):
        check(k in kw, "EHLO advertises %s" % k, kw)
    check(c.cmd("NOOP")[0] == 250, "NOOP 250")
    check(c.cmd("VRFY someone")[0] == 252, "VRFY 252")
    check(c.cmd("HELP")[0] == 214, "HELP 214")
    check(c.cmd("RCPT TO:<u@held.test>")[0] == 503, "RCPT before MAIL 503")
    code, lines = c.cmd("MAIL FROM:<a@sender.example> SIZE=99999999")
    check(code == 552 and "5.3.4" in lines[0], "SIZE over the limit 552 5.3.4", lines)
    code, lines = c.cmd("MAIL FROM:<a@sender.example> FOO=BAR")
    check(code == 555, "unknown MAIL parameter 555", lines)
    c.close()
    # max_errors = 5: at most four error replies per connection from here on
    c = Client(env.port)
    c.cmd("EHLO client.test")
    code, lines = c.cmd("MAIL FROM:<a@sender.example> SIZE=1000 BODY=8BITMIME RET=HDRS "
                        "ENVID=abc+2B1 AUTH=<>")
    check(code == 250, "MAIL with SIZE BODY RET ENVID AUTH 250", lines)
    check(c.cmd("MAIL FROM:<x@y.example>")[0] == 503, "nested MAIL 503")
    code, lines = c.cmd("RCPT TO:<u@nowhere.test>")
    check(code == 550 and "5.7.1" in lines[0] and "Relay access denied" in lines[0],
          "RCPT unknown domain 550 5.7.1", lines)
    code, lines = c.cmd("RCPT TO:<u@other.test>")
    check(code == 550 and "5.7.1" in lines[0], "RCPT domain of another site 550", lines)
    c.close()
    c = Client(env.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<a@sender.example> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=abc+2B1")
    code, lines = c.cmd("RCPT TO:<%s@held.test>" % ("x" * 70))
    check(code in (501, 553), "local part over 64 octets refused", lines)
    code, lines = c.cmd("RCPT TO:<u@HELD.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u+40held.test")
    check(code == 250, "RCPT held domain (mixed case) with NOTIFY/ORCPT 250", lines)
    check(c.cmd("RCPT TO:<v@held.test> NOTIFY=NEVER,SUCCESS")[0] == 501, "bad NOTIFY 501")
    check(c.cmd("RCPT TO:<v@held.test>")[0] == 250, "second RCPT 250")
    check(c.cmd("RCPT TO:<w@held.test>")[0] == 250, "third RCPT 250")
    code, lines = c.cmd("RCPT TO:<z@held.test>")
    check(code == 452 and "4.5.3" in lines[0], "max_recipients 452 4.5.3", lines)
    check(c.cmd("DATA")[0] == 354, "DATA 354")
    c.send("Subject: basic\r\n\r\nhello\r\n.\r\n")
    code, lines = c.reply()
    m = QID.search(lines[0]) if lines else None
    check(code == 250 and m is not None, "message accepted: 250 queued as ID", lines)
    qid = m.group(1) if m else "none"
    check(env.wait_log(r"%s: from=<a@sender.example>, size=\d+, nrcpt=3, site=default" % qid),
          "log line QUEUEID: from=<...>, size=N, nrcpt=N, site=NAME")
    check(env.wait_log(r"%s: to=<u@HELD.test>, status=held" % qid), "log line to=<>, status=held")
    check(c.cmd("QUIT")[0] == 221, "QUIT 221")
    check(c.eof(), "connection closed after QUIT")
    c.close()
    check(env.wait_log(r"disconnect from \[127.0.0.1\] ehlo=1 .*mail=\d+ rcpt=\d+ data=1 quit=1"),
          "disconnect line with counters")

    # HELO fallback, no ESMTP parameters
    c = Client(env.port)
    check(c.cmd("MAIL FROM:<a@b.example>")[0] == 503, "MAIL before HELO 503")
    check(c.cmd("HELO client.test")[0] == 250, "HELO 250")
    check(c.cmd("MAIL FROM:<a@b.example> SIZE=10")[0] == 555, "ESMTP parameter after HELO 555")
    check(c.cmd("MAIL FROM:<>")[0] == 250, "null sender 250")
    check(c.cmd("RSET")[0] == 250, "RSET 250")
    check(c.cmd("MAIL FROM:<bad address>")[0] == 501, "bad sender syntax 501")
    c.cmd("QUIT")
    c.close()

    # pipelined group as Postfix sends it
    c = Client(env.port)
    c.cmd("EHLO client.test")
    c.send("MAIL FROM:<p@sender.example>\r\nRCPT TO:<u@held.test>\r\n"
           "RCPT TO:<u@nowhere.test>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(4)]
    check(codes == [250, 250, 550, 354], "pipelined MAIL/RCPT/RCPT/DATA replies", codes)
    c.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    r1, r2 = c.reply(), c.reply()
    check(r1[0] == 250 and r2[0] == 221, "pipelined end-of-data + QUIT: 250 then 221",
          (r1, r2))
    c.close()

    # oversize content (declared size not given) -> 552 after the dot, stream in sync
    c = open_tx(env.port, "big@sender.example", "u@held.test")
    c.cmd("DATA")
    chunk = ("x" * 998 + "\r\n") * 1024
    for _ in range(3):
        c.send(chunk)
    c.send(".\r\n")
    code, lines = c.reply()
    check(code == 552 and "5.3.4" in lines[0], "content over max_message_size 552 5.3.4", lines)
    check(c.cmd("NOOP")[0] == 250, "session usable after 552")
    c.close()

    # a large message that is spilled to disk is accepted
    body = "Subject: large\r\n\r\n" + ("y" * 500 + "\r\n") * 1200 + ".\r\n"
    code, lines = send_message(env.port, "large@sender.example", ["big@held.test"], body)
    check(code == 250, "600 KB message (spilled body) accepted", lines)

    # full domain: --max-queue 1
    code, lines = send_message(env.port, "f@sender.example", ["one@full.test"], "x\r\n.\r\n")
    check(code == 250, "first message for full.test accepted", lines)
    c = Client(env.port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<f@sender.example>")
    code, lines = c.cmd("RCPT TO:<two@full.test>")
    check(code == 452 and "4.3.1" in lines[0], "full domain 452 4.3.1", lines)
    c.close()

    # the other site accepts its own domain
    code, lines = send_message(env.port2, "o@sender.example", ["u@other.test"], "x\r\n.\r\n")
    check(code == 250, "site branch2 accepts other.test", lines)

    # swaks
    if shutil.which("swaks"):
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(env.port), "--from",
                            "swaks@sender.example", "--to", "swaks@held.test", "--helo",
                            "client.test", "--body", "swaks test"], capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 0 and "queued as" in r.stdout, "swaks plain message",
              r.stdout[-500:])

    # restart: the message is still there
    rc = env.stop()
    check(rc == 0, "queued exits 0 on SIGTERM", rc)
    check("stopping" in env.log_text(), "log says stopping")
    env.start()
    r = env.ctl("queue", "list")
    listed = r.returncode == 0 and qid in r.stdout
    if r.returncode != 0:
        dump = subprocess.run(["mdb_dump", "-a", "-p", os.path.join(env.dir, "state")],
                              capture_output=True, text=True, timeout=30)
        listed = "a@sender.example" in dump.stdout
    check(listed, "accepted message still queued after a restart", r.stdout[-300:])

    # SIGHUP that would drop branch2 (holds mail) is refused
    env.write_conf("2s", "", drop_branch2=True)
    os.kill(env.proc.pid, signal.SIGHUP)
    check(env.wait_log(r"reload refused: site branch2 still holds 1 messages"),
          "reload dropping a site with mail refused, naming site and count")
    code, _ = send_message(env.port2, "o2@sender.example", ["u@other.test"], "x\r\n.\r\n")
    check(code == 250, "branch2 still served after the refused reload")

    # SIGHUP with an invalid file keeps the running configuration
    with open(env.conf, "a") as f:
        f.write("no_such_key = 1\n")
    os.kill(env.proc.pid, signal.SIGHUP)
    check(env.wait_log(r"reload refused: .* is invalid"), "invalid reload refused and logged")
    code, _ = send_message(env.port, "r@sender.example", ["u@held.test"], "x\r\n.\r\n")
    check(code == 250 and env.proc.poll() is None, "still serving after the invalid reload")

    # SIGHUP with a valid file (branch2 kept) is applied
    env.write_conf("2s", "")
    os.kill(env.proc.pid, signal.SIGHUP)
    check(env.wait_log(r"configuration reloaded: 2 sites"), "valid reload applied")
    code, _ = send_message(env.port2, "o3@sender.example", ["u@other.test"], "x\r\n.\r\n")
    check(code == 250, "listeners kept across the reload")


def group_abuse(env):
    """abuse - line limits, NUL, bare LF, error limit, caps, timeout, pipelining."""
    env.domain_add("held.test", "--site", "default")
    c = Client(env.port)
    c.cmd("EHLO client.test")
    code, lines = c.cmd("NOOP " + "a" * 600)
    check(code == 500 and "5.5.2" in lines[0], "command line over 512 octets 500 5.5.2", lines)
    code, lines = c.cmd("NOOP\x00junk")
    check(code == 500, "NUL in command 500", lines)
    check(c.cmd("RSET")[0] == 250, "session in sync after bad lines")
    c.start_data("a@sender.example", "u@held.test")
    c.send("Subject: long\r\n\r\n" + "z" * 1200 + "\r\nafter\r\n.\r\n")
    code, lines = c.reply()
    check(code == 500 and "Line too long" in lines[0], "text line over 1000 octets 500 after dot",
          lines)
    check(c.cmd("RSET")[0] == 250, "in sync after over-long text line")
    c.start_data("a@sender.example", "u@held.test")
    c.send(b"Subject: nul\r\n\r\na\x00b\r\n.\r\n")
    code, lines = c.reply()
    check(code == 550, "NUL in content 550 after dot", lines)
    # bare LF: "\n.\n" does not end the data; only CRLF.CRLF does
    c.start_data("a@sender.example", "u@held.test")
    c.send(b"Subject: bare\r\n\r\nline1\n.\nline2\r\n.\r\n")
    code, lines = c.reply()
    check(code == 250, "bare LF dot is content; CRLF.CRLF ends data (250)", lines)
    c.send("NOOP\r\n")
    code, lines = c.reply()
    check(code == 250 and "Ok" in lines[0] and "queued" not in lines[0],
          "exactly one reply for the bare-LF message", lines)
    c.close()

    # pipelining violation: more input after a last-in-group command
    c = Client(env.port)
    c.send("EHLO client.test\r\nMAIL FROM:<a@b.example>\r\n")
    code, lines = c.reply()
    check(code == 554 and "pipelining" in lines[0], "command after EHLO in the same group 554",
          lines)
    check(c.eof(), "connection closed after pipelining violation")
    c.close()
    c = open_tx(env.port, "a@sender.example", "u@held.test")
    c.send("DATA\r\nSubject: early\r\n")
    code, lines = c.reply()
    check(code == 554, "content sent before 354 gets 554", lines)
    c.close()

    # error limit (max_errors = 5)
    c = Client(env.port)
    codes = []
    for i in range(8):
        try:
            code, _ = c.cmd("BOGUS%d" % i)
        except OSError:
            break
        codes.append(code)
        if code in (0, 421):
            break
    if codes and codes[-1] == 500:  # the 421 may follow the fifth 500 directly
        codes.append(c.reply()[0])
    check(421 in codes and codes.index(421) <= 6, "junk/error limit 421", codes)
    check(c.eof(), "closed after 421")
    c.close()

    # random binary garbage: the session may end, the daemon must not
    rnd = random.Random(1985)
    c = Client(env.port)
    try:
        for _ in range(16):
            c.send(bytes(rnd.getrandbits(8) for _ in range(4096)))
    except OSError:
        pass
    c.close()
    time.sleep(0.3)
    c = Client(env.port)
    check(c.greeting[0] == 220 and env.proc.poll() is None, "daemon alive after random garbage",
          c.greeting)
    c.close()

    # per-IP connection cap (max_connections_per_ip = 3)
    check_conn_cap(env.port, 3, "connection over the per-IP cap 421 4.7.0")

    # idle timeout (smtp_timeout = 2s)
    time.sleep(0.5)
    c = Client(env.port)
    t0 = time.time()
    code, lines = c.reply(timeout=8)
    check(code == 421 and "4.4.2" in lines[0] and time.time() - t0 < 7,
          "idle timeout 421 4.4.2", lines)
    check(c.eof(), "closed after timeout")
    c.close()

    # DATA timeout (data_timeout = 5s): a client that stops in the middle of the content
    c = open_tx(env.port, "slow@sender.example", "u@held.test")
    c.cmd("DATA")
    c.send("Subject: slow\r\n")
    t0 = time.time()
    code, lines = c.reply(timeout=12)
    check(code == 421 and "4.4.2" in lines[0] and 4 <= time.time() - t0 < 11,
          "data_timeout 421 4.4.2", lines)
    c.close()

    # SIGTERM while a client is inside DATA: 421, clean exit 0
    c = open_tx(env.port, "term@sender.example", "u@held.test")
    c.cmd("DATA")
    c.send("Subject: interrupted\r\n")
    time.sleep(0.2)
    os.kill(env.proc.pid, signal.SIGTERM)
    code, lines = c.reply(timeout=10)
    check(code == 421 and "4.3.2" in lines[0], "SIGTERM during DATA: 421 4.3.2", lines)
    c.close()
    try:
        rc = env.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, "queued exits 0 after SIGTERM with a session open", rc)
    check(env.wait_log(r"stopped"), "log says stopped")


def group_tls(env):
    """tls - STARTTLS, discard of pipelined bytes, state reset, ESMTPS."""
    env.domain_add("held.test", "--site", "default")
    c = Client(env.port)
    check(c.cmd("STARTTLS")[0] == 503, "STARTTLS before EHLO 503")
    c.cmd("EHLO client.test")
    check(c.cmd("STARTTLS now")[0] == 501, "STARTTLS with argument 501")
    c.send("STARTTLS\r\nNOOP\r\n")  # the NOOP must be thrown away
    code, lines = c.reply()
    check(code == 220 and "2.0.0" in lines[0], "STARTTLS 220 2.0.0", lines)
    c.buf = b""
    try:
        c.starttls()
        ok = True
    except (ssl.SSLError, OSError) as e:
        ok = False
        log("handshake: %s" % e)
    check(ok, "TLS handshake with the site certificate")
    if not ok:
        return
    check(c.cmd("MAIL FROM:<a@sender.example>")[0] == 503,
          "state reset after TLS: MAIL needs a new EHLO (pipelined NOOP was discarded)")
    code, lines = c.cmd("EHLO client.test")
    kw = [ln[4:] for ln in lines]
    check(code == 250 and "STARTTLS" not in kw, "no STARTTLS advertised under TLS", kw)
    check(c.cmd("STARTTLS")[0] == 503, "second STARTTLS 503")
    c.start_data("tls@sender.example", "tls@held.test")
    c.send("Subject: over tls\r\n\r\nsecret\r\n.\r\n")
    code, lines = c.reply()
    check(code == 250, "message over TLS accepted", lines)
    c.cmd("QUIT")
    c.close()
    check(env.wait_log(r"STARTTLS from \[127.0.0.1\]: TLSv1"), "TLS logged with protocol")


def group_notls(env):
    """notls - no STARTTLS without a certificate (502); the total connection cap."""
    c = Client(env.port)
    code, lines = c.cmd("EHLO client.test")
    check("STARTTLS" not in [ln[4:] for ln in lines], "no STARTTLS without a certificate")
    code, lines = c.cmd("STARTTLS")
    check(code == 502 and "5.5.1" in lines[0], "STARTTLS without certificate 502 5.5.1", lines)
    c.close()
    time.sleep(0.3)
    # total cap (max_connections = 2; per IP 3)
    check_conn_cap(env.port, 2, "connection over max_connections 421 4.7.0")


def group_etrn(env):
    """etrn - RFC 1985 reply codes."""
    env.domain_add("held.test", "--site", "default", "--route",
                   "[127.0.0.1]:%d" % free_port())
    env.domain_add("other.test", "--site", "branch2")
    c = Client(env.port)
    check(c.cmd("ETRN held.test")[0] == 503, "ETRN before EHLO 503")
    c.cmd("EHLO client.test")
    code, lines = c.cmd("ETRN")
    check(code == 500 and "5.5.2" in lines[0], "bare ETRN 500 5.5.2", lines)
    code, lines = c.cmd("ETRN localname")
    check(code == 501 and "5.5.4" in lines[0], "ETRN unqualified name 501", lines)
    code, lines = c.cmd("ETRN bad..name.test")
    check(code == 501, "ETRN malformed name 501", lines)
    c.close()
    c = Client(env.port)  # max_errors = 5: a fresh connection
    c.cmd("EHLO client.test")
    code, lines = c.cmd("ETRN unknown.test")
    check(code == 459 and "4.7.1" in lines[0], "ETRN domain not held 459", lines)
    code, lines = c.cmd("ETRN other.test")
    check(code == 459, "ETRN domain of another site 459", lines)
    code, lines = c.cmd("ETRN #branch2")
    check(code == 459, "ETRN #other-site 459", lines)
    c.close()
    c = Client(env.port)
    c.cmd("EHLO client.test")
    code, lines = c.cmd("ETRN held.test")
    check(code == 250 and lines[0].startswith("250 2.0.0") and "held.test" in lines[0],
          "ETRN held domain 250", lines)
    code, lines = c.cmd("ETRN @held.test")
    check(code in (250, 458), "ETRN @domain answered (250 or 458 rate)", lines)
    code, lines = c.cmd("ETRN #default")
    check(code in (250, 458), "ETRN #own-site answered", lines)
    c.cmd("MAIL FROM:<a@sender.example>")
    code, lines = c.cmd("ETRN held.test")
    check(code == 503, "ETRN inside a transaction 503", lines)
    c.close()


def group_delivery(env):
    """delivery - dot-stuffing and bare-LF policy verified by an ETRN delivery."""
    env.sink = Sink()
    env.domain_add("held.test", "--site", "default", "--route",
                   "[127.0.0.1]:%d" % env.sink.port)
    body = (b"Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\nline1\n.\nline2\r\n"
            b"end\r\n.\r\n")
    code, lines = send_message(env.port, "d@sender.example", ["u@held.test"], body)
    check(code == 250, "message with dot lines accepted", lines)
    big = b"Subject: big\r\n\r\n" + b"".join(b"%06d %s\r\n" % (i, b"b" * 480)
                                             for i in range(1300))
    code, lines = send_message(env.port, "big@sender.example", ["v@held.test"], big + b".\r\n")
    check(code == 250, "650 KB message (spilled to disk) accepted", lines)
    c = Client(env.port)
    c.cmd("EHLO client.test")
    c.cmd("STARTTLS")
    c.starttls()
    c.cmd("EHLO client.test")
    c.start_data("tls@sender.example", "w@held.test")
    c.send("Subject: tls\r\n\r\nover tls\r\n.\r\n")
    code, lines = c.reply()
    check(code == 250, "message over TLS accepted", lines)
    c.close()
    c = Client(env.port)
    c.cmd("EHLO client.test")
    code, lines = c.cmd("ETRN held.test")
    check(code == 250, "ETRN 250", lines)
    c.close()
    got = env.sink.wait(3, 30)
    check(got, "ETRN delivered the three messages to the route")
    if not got:
        return
    bysender = {re.sub(r"^MAIL FROM:<([^>]*)>.*$", r"\1", m[0]): m[2]
                for m in env.sink.messages}
    data = bysender.get("big@sender.example", b"")
    check(data.endswith(big), "spilled message delivered intact", len(data))
    tls = bysender.get("tls@sender.example", b"")
    check(b"with ESMTPS" in tls.split(b"\r\n\r\n")[0], "Received: with ESMTPS after STARTTLS",
          tls[:300])
    data = bysender.get("d@sender.example", b"")
    check(data.startswith(b"Received: from client.test ([127.0.0.1])"),
          "Received header prepended", data[:120])
    check(b"with ESMTP" in data.split(b"\r\n\r\n")[0] and b"for <u@held.test>" in data,
          "Received: with ESMTP ... for <rcpt>")
    want = b".leading dot\r\n..two dots\r\nline1\r\n.\r\nline2\r\nend\r\n"
    check(data.endswith(want), "dot-stuffing round trip and bare LF normalised to CRLF",
          data[-80:])


def group_etrncount(env):
    """etrncount - etrn_reply = count: 251 when nothing waits, 253 with the count."""
    env.domain_add("held.test", "--site", "default", "--route",
                   "[127.0.0.1]:%d" % free_port())
    c = Client(env.port)
    c.cmd("EHLO client.test")
    code, lines = c.cmd("ETRN held.test")
    check(code == 251 and "no messages waiting for node held.test" in lines[0],
          "ETRN with nothing waiting 251", lines)
    c.close()
    code, lines = send_message(env.port, "a@sender.example", ["u@held.test"], "x\r\n.\r\n")
    check(code == 250, "message accepted", lines)
    c = Client(env.port)
    c.cmd("EHLO client.test")
    code, lines = c.cmd("ETRN held.test")
    check(code == 253 and "1 pending messages for node held.test started" in lines[0],
          "ETRN with one message waiting 253", lines)
    c.close()


def group_commit(env):
    """commit - concurrent sessions share commits; a client gone before its 250 is harmless."""
    env.domain_add("held.test", "--site", "default")
    clients = []
    for i in range(10):
        c = Client(env.port)
        c.cmd("EHLO client%d.test" % i)
        c.cmd("MAIL FROM:<c%d@sender.example>" % i)
        c.cmd("RCPT TO:<u%d@held.test>" % i)
        c.cmd("DATA")
        c.send("Subject: concurrent %d\r\n\r\nbody\r\n" % i)
        clients.append(c)
    for c in clients:  # all final dots back to back: one loop turn, one commit
        c.send(".\r\n")
    ids = []
    for c in clients:
        code, lines = c.reply()
        m = QID.search(lines[0]) if lines else None
        if code == 250 and m:
            ids.append(m.group(1))
        c.close()
    check(len(ids) == 10 and len(set(ids)) == 10, "10 concurrent messages: 250 with distinct ids",
          ids)
    m = re.findall(r"group commit: (\d+) messages", env.log_text())
    check(any(int(x) >= 2 for x in m), "several sessions' messages shared one commit", m)
    # a client that vanishes right after its final dot
    for i in range(5):
        c = Client(env.port)
        c.cmd("EHLO gone.test")
        c.start_data("gone@sender.example", "g@held.test")
        c.send("Subject: gone\r\n\r\nx\r\n.\r\n")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()  # RST at once
    time.sleep(0.5)
    code, lines = send_message(env.port, "after@sender.example", ["a@held.test"], "x\r\n.\r\n")
    check(code == 250 and env.proc.poll() is None,
          "daemon healthy after clients vanished while waiting for the commit", lines)


def group_config(env):
    """config - queued -t exit codes."""
    r = subprocess.run([QUEUED, "-t", "-c", env.conf], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "queued -t valid config exits 0", r.stderr)
    bad = os.path.join(env.dir, "bad.conf")
    with open(bad, "w") as f:
        f.write("state_dir = %s/state\n[site default]\nhostname = a.test\n"
                "smtp_listen = 127.0.0.1:%d\nodmr_listen = 127.0.0.1:%d\n"
                "[site twin]\nhostname = b.test\nsmtp_listen = 127.0.0.1:%d\n"
                "odmr_listen = 127.0.0.1:%d\n" % (env.dir, env.port, env.odmr, env.port,
                                                   env.odmr2))
    r = subprocess.run([QUEUED, "-t", "-c", bad], capture_output=True, text=True, timeout=30)
    check(r.returncode == 78, "queued -t two sites on one address exits 78", r.returncode)
    check("default" in r.stderr and "twin" in r.stderr, "error names both sites", r.stderr)
    r = subprocess.run([QUEUED, "-h"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "usage" in r.stdout, "queued -h prints usage")


GROUPS = {
    "basic": (group_basic, {}),
    "abuse": (group_abuse, {}),
    "tls": (group_tls, {}),
    "notls": (group_notls, {"tls": False, "extra": "max_connections = 2\n"}),
    "etrn": (group_etrn, {}),
    "delivery": (group_delivery, {"smtp_timeout": "30s"}),
    "etrncount": (group_etrncount, {"tls": False, "extra": "etrn_reply = count\n"}),
    "commit": (group_commit, {"tls": False, "verbose": True, "per_ip": 20}),
    "config": (group_config, {"tls": False}),
}


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the finally: blocks
    need_exec(QUEUED)
    groups = sys.argv[1:] or list(GROUPS)
    for name in groups:
        fn, kw = GROUPS[name]
        log("== %s" % name)
        env = Env(**kw)
        nfails = len(FAILS)
        try:
            if name != "config":
                need_exec(QUEUECTL)
                env.start()
            fn(env)
        except (RuntimeError, OSError, TimeoutError, subprocess.SubprocessError) as e:
            check(False, "%s: no exception" % name, repr(e))
        finally:
            env.stop()
            text = env.log_text()
            check(not re.search(r"Sanitizer|runtime error:|panic:", text),
                  "%s: no sanitizer report or panic in the queued log" % name)
            if len(FAILS) > nfails:
                log("---- queued log ----\n" + env.log_text()[-6000:])
            env.cleanup()
    if FAILS:
        log("%d check(s) failed: %s" % (len(FAILS), ", ".join(FAILS)))
        sys.exit(1)
    log("all checks passed")


if __name__ == "__main__":
    main()
