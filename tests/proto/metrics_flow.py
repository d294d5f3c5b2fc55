#!/usr/bin/env python3
"""metrics_flow.py - end-to-end check of the metrics wiring (stdlib only).

Starts the real queued from $HOLDMX_BUILD with metrics_listen set and
start_turnd = yes (so queued starts and supervises turnd), then:

  1. injects three messages over SMTP (two for etrn.test, one for atrn.test);
  2. ETRN etrn.test: queued delivers to an SMTP sink run here, which accepts
     a@ and b@, refuses reject@ with 550 and defer@ with 451;
  3. "queuectl queue bounce ID" of the message still holding defer@
     (store_msg_bounce; queuectl reports the count to queued with STATS);
  4. on turnd: ATRN before AUTH (530), AUTH CRAM-MD5 with a wrong password
     (535, one auth failure), then a good AUTH and ATRN: the reversed
     session delivers u@ and v@ to the customer side run here (250); a
     second session's ATRN finds nothing (453);
  5. reads /metrics until turnd's pushed values arrive (bounded wait) and
     checks every counter's value, that promtool accepts the page, and that
     malformed STATS lines get ERR without changing anything or hurting
     queued.

Only processes started here are signalled (queued by its pid; queued stops
its own turnd).  Every wait is bounded in time and count.  Exit: 0 pass,
1 fail, 77 skipped (binaries or saslpasswd2 missing).
"""
import base64
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import hm_harness
from hm_harness import FAILS, check, control_request, free_port, log, port_open, wait_for

BUILD = os.environ.get("HOLDMX_BUILD", "")
QUEUED = os.path.join(BUILD, "queued", "queued")
QUEUECTL = os.path.join(BUILD, "queued", "queuectl")
TURND = os.path.join(BUILD, "turnd", "turnd")
PASSWORD = "metrics-Secr3t"
IO_TIMEOUT = 15.0

class Lines:
    """Lines - CRLF line I/O with SMTP replies on one socket."""

    def __init__(self, sock):
        self.sock = sock
        self.f = sock.makefile("rb")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def line(self):
        ln = self.f.readline(8192)
        if not ln:
            raise OSError("connection closed")
        return ln.decode(errors="replace").rstrip("\r\n")

    def reply(self):
        """reply - (code, last line) of one possibly multi-line reply."""
        for _ in range(100):
            ln = self.line()
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]) if ln[:3].isdigit() else 0, ln
        raise OSError("reply too long")

    def cmd(self, text):
        self.send(text)
        return self.reply()


def sink_session(io, rcpt_code, got, lock):
    """sink_session - the server side of one SMTP session (sink or reversed ATRN)."""
    io.send("220 sink.test ESMTP")
    rcpts = []
    for _ in range(10000):
        ln = io.line()
        verb = ln[:4].upper()
        if verb in ("EHLO", "HELO"):
            io.send("250-sink.test")
            io.send("250 8BITMIME")
        elif verb == "MAIL":
            rcpts = []
            io.send("250 2.1.0 ok")
        elif verb == "RCPT":
            addr = ln[ln.find("<") + 1:ln.find(">")]
            code = rcpt_code(addr)
            if code == 250:
                rcpts.append(addr)
            io.send("%d %s" % (code, "2.1.5 ok" if code == 250 else "x.0.0 not now"))
        elif verb == "DATA":
            io.send("354 go ahead")
            for _ in range(100000):
                if io.line() == ".":
                    break
            with lock:
                got.extend(rcpts)
            io.send("250 2.0.0 stored")
        elif verb == "QUIT":
            io.send("221 2.0.0 bye")
            return
        else:
            io.send("250 ok")


class Sink(hm_harness.Sink):
    """Sink - the customer's MTA for ETRN deliveries (and the bounce relay):
    hm_harness's accept loop with per-recipient replies (sink_session)."""

    def __init__(self):
        super().__init__(start=False)
        self.got = []
        self.start()

    @staticmethod
    def code(addr):
        """code - reject@ gets 550, defer@ 451, everything else 250."""
        return 550 if addr.startswith("reject@") else 451 if addr.startswith("defer@") else 250

    def session(self, conn):
        """session - one SMTP dialogue with per-recipient replies."""
        conn.settimeout(IO_TIMEOUT)
        sink_session(Lines(conn), self.code, self.got, self.lock)

    def rcpts(self):
        with self.lock:
            return list(self.got)


class Env:
    """Env - temp dir, sasldb, configuration and the queued process (which runs turnd)."""

    def __init__(self, supervised=True):
        self.supervised = supervised
        self.turnd = None
        self.dir = tempfile.mkdtemp(prefix="holdmx-metrics.")
        os.chmod(self.dir, 0o755)
        self.smtp_port, self.odmr_port, self.mport = free_port(), free_port(), free_port()
        self.sink = Sink()
        self.proc = None
        self.conf = os.path.join(self.dir, "holdmx.conf")
        self.make_sasl()
        self.write_conf()

    def make_sasl(self):
        """make_sasl - sasldb with alice (realm holdmx) and the libsasl2 app config."""
        os.mkdir(os.path.join(self.dir, "sasl"))
        db = os.path.join(self.dir, "sasldb2")
        subprocess.run(["saslpasswd2", "-p", "-c", "-f", db, "-u", "holdmx", "alice"],
                       input=PASSWORD.encode(), check=True, timeout=30)
        with open(os.path.join(self.dir, "sasl", "holdmx.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    "sasldb_path: %s\nmech_list: CRAM-MD5 PLAIN LOGIN\n" % db)

    def write_conf(self):
        """write_conf - one site with SMTP and ODMR listeners, metrics on."""
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "state_dir = %s/state" % self.dir,
                "sasl_app = holdmx",
                "sasl_conf_dir = %s/sasl" % self.dir,
                "sasl_realm = holdmx",
                "bounce_relay = [127.0.0.1]:%d" % self.sink.port,
                "metrics_listen = 127.0.0.1:%d" % self.mport,
                "delivery_port = %d" % self.sink.port,
                "start_turnd = %s" % ("yes" if self.supervised else "no"),
                "turnd_path = %s" % TURND,
                "atrn_total_timeout = 60",
                "",
                "[site default]",
                "hostname = mx.test",
                "smtp_listen = 127.0.0.1:%d" % self.smtp_port,
                "odmr_listen = 127.0.0.1:%d" % self.odmr_port,
                "auth_plain = loopback",
            ]) + "\n")

    def ctl(self, *args, check_rc=True):
        """ctl - run queuectl against our configuration."""
        r = subprocess.run([QUEUECTL, "-c", self.conf] + list(args), capture_output=True,
                           text=True, timeout=60)
        if check_rc and r.returncode != 0:
            raise RuntimeError("queuectl %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def start(self):
        """start - queued -f (it starts turnd when supervised); wait for its listeners."""
        self.logfp = open(os.path.join(self.dir, "queued.log"), "ab")
        self.proc = subprocess.Popen([QUEUED, "-f", "-c", self.conf], stdout=self.logfp,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        ok = wait_for(lambda: self.proc.poll() is not None or (
            port_open(self.smtp_port) and port_open(self.mport) and os.path.exists(self.sock())
            and (port_open(self.odmr_port) or not self.supervised)), 20)
        if self.proc.poll() is not None or not ok:
            raise RuntimeError("queued/turnd did not start:\n" + self.log_text())

    def start_turnd(self):
        """start_turnd - a standalone turnd -f (not supervised); wait for its port."""
        self.turnd_log = open(os.path.join(self.dir, "turnd.log"), "ab")
        self.turnd = subprocess.Popen([TURND, "-f", "-c", self.conf], stdout=self.turnd_log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not wait_for(lambda: self.turnd.poll() is not None or port_open(self.odmr_port), 20) \
                or self.turnd.poll() is not None:
            raise RuntimeError("turnd did not start")

    def stop_turnd(self):
        """stop_turnd - SIGTERM our standalone turnd (by pid); its exit status."""
        if self.turnd is None or self.turnd.poll() is not None:
            return self.turnd.returncode if self.turnd else None
        os.kill(self.turnd.pid, signal.SIGTERM)
        try:
            return self.turnd.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.turnd.pid, signal.SIGKILL)
            return self.turnd.wait(timeout=5)

    def sock(self):
        return os.path.join(self.dir, "state", "control")

    def control(self, line):
        """control - one request line on queued's control socket; the reply line."""
        return control_request(self.sock(), line, IO_TIMEOUT)

    def metrics(self):
        """metrics - the /metrics page text ("" when it cannot be read)."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.mport,
                                        timeout=IO_TIMEOUT) as r:
                return r.read().decode()
        except OSError:
            return ""

    def log_text(self, name="queued"):
        try:
            with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """stop - SIGTERM our queued (by pid; it stops its turnd), bounded wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def cleanup(self):
        self.stop_turnd()
        self.stop()
        self.sink.close()
        for name in ("queued", "turnd") if FAILS else ():
            log("---- %s.log (tail) ----\n" % name +
                "\n".join(self.log_text(name).splitlines()[-60:]))
        if os.environ.get("KEEP_WORK") or FAILS:
            log("work dir kept: %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def inject(port, rcpts, subject):
    """inject - one message over SMTP; the final reply code."""
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    io = Lines(s)
    try:
        io.reply()
        io.cmd("EHLO client.test")
        code, _ = io.cmd("MAIL FROM:<sender@example.org>")
        for r in rcpts:
            if code < 400:
                code, _ = io.cmd("RCPT TO:<%s>" % r)
        if code < 400:
            code, _ = io.cmd("DATA")
        if code == 354:
            io.sock.sendall(("Subject: %s\r\n\r\nhello\r\n.\r\n" % subject).encode())
            code, _ = io.reply()
        io.cmd("QUIT")
    finally:
        s.close()
    return code


def smtp_etrn(port, domain):
    """smtp_etrn - ETRN on queued's SMTP port; the reply code."""
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    io = Lines(s)
    try:
        io.reply()
        io.cmd("EHLO client.test")
        code, _ = io.cmd("ETRN %s" % domain)
        io.cmd("QUIT")
    finally:
        s.close()
    return code


def cram(io, user, password):
    """cram - AUTH CRAM-MD5; the final reply code."""
    code, text = io.cmd("AUTH CRAM-MD5")
    if code != 334:
        return code
    challenge = base64.b64decode(text[4:].strip())
    digest = hmac.new(password.encode(), challenge, "md5").hexdigest()
    io.send(base64.b64encode(("%s %s" % (user, digest)).encode()).decode())
    return io.reply()[0]


def odmr_bad_then_good(port):
    """odmr_bad_then_good - 530, a failed AUTH, then AUTH + ATRN + the reversed session."""
    codes, got = {}, []
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    io = Lines(s)
    try:
        io.reply()
        io.cmd("EHLO customer.test")
        codes["atrn_noauth"] = io.cmd("ATRN atrn.test")[0]
        codes["auth_bad"] = cram(io, "alice", "wrong-password")
        codes["auth_good"] = cram(io, "alice", PASSWORD)
        codes["atrn"] = io.cmd("ATRN atrn.test")[0]
        if codes["atrn"] == 250:  # reversed: we are the SMTP server now
            sink_session(io, lambda a: 250, got, threading.Lock())
    finally:
        s.close()
    codes["reversed_rcpts"] = sorted(got)
    return codes


def odmr_nothing(port):
    """odmr_nothing - a good AUTH and an ATRN with nothing held: 453."""
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    io = Lines(s)
    try:
        io.reply()
        io.cmd("EHLO customer.test")
        auth = cram(io, "alice", PASSWORD)
        code = io.cmd("ATRN atrn.test")[0]
        io.cmd("QUIT")
    finally:
        s.close()
    return auth, code


def sample(text, name):
    """sample - value of the sample line "name value" (None when absent)."""
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


EXPECTED = {
    "holdmx_accepted_messages_total": 3,
    "holdmx_delivered_recipients_total": 4,  # a@, b@ by ETRN; u@, v@ by ATRN
    "holdmx_deferred_recipients_total": 1,   # defer@ (451)
    "holdmx_bounced_recipients_total": 2,    # reject@ (550) + defer@ by queue bounce
    'holdmx_etrn_requests_total{outcome="started"}': 1,
    'holdmx_atrn_requests_total{code="250"}': 1,
    'holdmx_atrn_requests_total{code="453"}': 1,
    'holdmx_atrn_requests_total{code="530"}': 1,
    'holdmx_atrn_requests_total{code="450"}': 0,
    "holdmx_auth_failures_total": 1,
    'holdmx_sessions_open{proto="odmr"}': 0,
}


def expected_now(text):
    """expected_now - the EXPECTED lines that differ in text (name -> value seen)."""
    return {k: sample(text, k) for k, v in EXPECTED.items() if sample(text, k) != v}


def step_etrn(env):
    """step_etrn - ETRN delivery of etrn.test to the sink, then the operator bounce."""
    check(smtp_etrn(env.smtp_port, "etrn.test") in (250, 253), "ETRN etrn.test accepted")
    check(wait_for(lambda: sorted(r for r in env.sink.rcpts() if r.endswith("@etrn.test"))
                   == ["a@etrn.test", "b@etrn.test"], 20),
          "ETRN run delivered a@ and b@ to the sink", env.sink.rcpts())
    check(wait_for(lambda: "run for etrn.test finished" in env.log_text(), 20),
          "the ETRN run finished")
    doc = json.loads(env.ctl("queue", "list", "--domain", "etrn.test", "--json").stdout)
    held = [m["id"] for m in doc["messages"]
            if any(r["address"] == "defer@etrn.test" and r["state"] == "held"
                   for r in m["recipients"])]
    if not check(len(held) == 1, "defer@'s message is still held", doc):
        return
    r = env.ctl("queue", "bounce", held[0], check_rc=False)
    check(r.returncode == 0 and "1 recipient failed" in r.stdout,
          "queue bounce ID fails the one pending recipient", r.stdout + r.stderr)
    r = env.ctl("queue", "show", held[0], check_rc=False)
    check(r.returncode == 66 or "state=held" not in r.stdout,
          "nothing of that message is held any more", r.stdout)
    r = env.ctl("queue", "bounce", "FFFFFFFFFFFF", check_rc=False)
    check(r.returncode == 66, "queue bounce of an unknown id exits 66", r.returncode)


def step_atrn(env):
    """step_atrn - turnd: 530, failed AUTH, good ATRN with reversal, then 453."""
    c = odmr_bad_then_good(env.odmr_port)
    check(c.get("atrn_noauth") == 530, "ATRN before AUTH gets 530", c)
    check(c.get("auth_bad") == 535, "wrong password gets 535", c)
    check(c.get("auth_good") == 235, "right password gets 235", c)
    check(c.get("atrn") == 250, "ATRN atrn.test gets 250 and reverses", c)
    check(c.get("reversed_rcpts") == ["u@atrn.test", "v@atrn.test"],
          "the reversed session delivered u@ and v@", c)
    auth, code = odmr_nothing(env.odmr_port)
    check(auth == 235 and code == 453, "second ATRN finds nothing: 453", (auth, code))


def step_metrics(env):
    """step_metrics - values (turnd's within ~12 s), promtool, STATS validation."""
    text = wait_for(lambda: (lambda t: t if t and not expected_now(t) else "")(env.metrics()),
                    12, 0.5)
    if not text:
        last = env.metrics()
        check(False, "metrics reach the expected values", expected_now(last))
        text = last
    else:
        for k, v in EXPECTED.items():
            check(True, "%s = %s" % (k, v))
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        check(p.returncode == 0, "promtool check metrics accepts /metrics", p.stdout + p.stderr)
    else:
        log("note: promtool not installed; format not checked")
    step_stats_verb(env)


def step_stats_verb(env):
    """step_stats_verb - malformed STATS lines get ERR and change nothing."""
    before = env.metrics()
    for bad in ("STATS", "STATS bogus_metric=1", "STATS auth_failures=abc",
                "STATS auth_failures=-1", "STATS auth_failures=99999999999999999999999",
                "STATS auth_failures=1 auth_failures=1", "STATS sessions_smtp=5",
                "STATS sessions_odmr=9999999", "STATS auth_failures=1 nope=2",
                "STATS auth_failures", "STATS =1", "STATS auth_failures=1\x01"):
        r = env.control(bad)
        check(r.startswith("ERR"), "%r -> ERR" % bad, r)
    check(env.control("STATS " + "x" * 600).startswith("ERR"), "over-long STATS -> ERR")
    after = env.metrics()
    check(sample(after, "holdmx_auth_failures_total") == sample(before,
                                                                "holdmx_auth_failures_total"),
          "rejected STATS lines changed nothing")
    check(env.control("STATS etrn_rate=2") == "OK", "valid STATS -> OK")
    check(sample(env.metrics(), 'holdmx_etrn_requests_total{outcome="rate"}') == 2,
          "valid STATS adds its delta")
    check(env.proc.poll() is None and env.control("PING") == "OK pong",
          "queued still answers after the bad lines")


def main():
    """main - run the scenario; exit status for ctest."""
    for b in (QUEUED, QUEUECTL, TURND):
        if not os.access(b, os.X_OK):
            log("SKIP: %s not built" % b)
            return 77
    if shutil.which("saslpasswd2") is None:
        log("SKIP: saslpasswd2 missing")
        return 77
    env = Env()
    try:
        env.ctl("domain", "add", "etrn.test", "--site", "default", "--route",
                "[127.0.0.1]:%d" % env.sink.port)
        env.ctl("domain", "add", "atrn.test", "--site", "default")
        env.ctl("account", "add", "alice", "--domains", "atrn.test")
        env.start()
        check(inject(env.smtp_port, ["a@etrn.test", "b@etrn.test"], "m1") == 250, "m1 accepted")
        check(inject(env.smtp_port, ["reject@etrn.test", "defer@etrn.test"], "m2") == 250,
              "m2 accepted")
        check(inject(env.smtp_port, ["u@atrn.test", "v@atrn.test"], "m3") == 250, "m3 accepted")
        step_etrn(env)
        step_atrn(env)
        step_metrics(env)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        check(False, "scenario ran to the end", e)
    finally:
        env.cleanup()
    log("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
