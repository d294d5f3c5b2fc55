#!/usr/bin/env python3
"""odmr_tests.py - turnd protocol scenarios (run by tests/proto/test_turnd_*.sh).

  odmr_tests.py atrn|failures|auth|tls|fetchmail|supervise

Each scenario builds its own Env (odmr_harness.py), talks to the real
daemons over loopback and checks replies, delivered messages and logs.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from odmr_harness import Env, port_open, wait_until  # noqa: E402


def strip_trace(body):
    """strip_trace - drop leading Received:/Return-Path: fields (with continuations)."""
    lines = body.split(b"\r\n")
    i, in_trace = 0, False
    while i < len(lines):
        if re.match(rb"(?i)^(received|return-path):", lines[i]):
            in_trace = True
        elif not (in_trace and lines[i][:1] in (b" ", b"\t")):
            break
        i += 1
    return b"\r\n".join(lines[i:])


def rcpt_sets(res):
    """rcpt_sets - sorted recipient lists of the delivered messages."""
    return sorted(sorted(m["rcpts"]) for m in res.get("messages", []))


def setup_accounts(env):
    """setup_accounts - a.test, b.test for alice; c.test for bob."""
    for d in ("a.test", "b.test", "c.test"):
        env.ctl("domain", "add", d, "--site", "default")
    env.ctl("account", "add", "alice", "--domains", "a.test,b.test")
    env.ctl("account", "add", "bob", "--domains", "c.test")
    with open(os.path.join(env.dir, "bob.pw"), "w") as f:
        f.write("bob-pw\n")


def bob(env, *args):
    """bob - customer authenticated as bob."""
    return env.customer("--user", "bob", "--password-file", os.path.join(env.dir, "bob.pw"), *args)


def scenario_atrn(env):
    """scenario_atrn - codes before/after AUTH, multi-domain reversal, TURN."""
    env.start()
    setup_accounts(env)
    r = env.customer("--atrn", "a.test")
    ehlo = " ".join(r.get("ehlo", []))
    env.check(r.get("greeting", "").startswith("220 mx.test ESMTP holdmx ODMR"), "greeting", r)
    env.check("250-ATRN" in ehlo and "AUTH CRAM-MD5" in ehlo, "EHLO lists AUTH CRAM-MD5 and ATRN", ehlo)
    env.check("PLAIN" not in ehlo, "no PLAIN advertised without TLS", ehlo)
    env.check(r.get("atrn") == 530, "ATRN before AUTH -> 530", r)
    r = env.customer("--turn")
    env.check(r.get("atrn") == 502, "plain TURN -> 502", r)
    r = env.alice("--mech", "PLAIN", "--atrn", "a.test")
    env.check(r.get("auth") in (504, 538), "AUTH PLAIN without TLS refused", r)
    r = env.alice("--atrn", "c.test")
    env.check(r.get("auth") == 235 and r.get("atrn") == 450, "someone else's domain -> 450", r)
    env.check("domain=c.test" in env.log("turnd"), "refusal logged")
    r = env.alice("--atrn", "a.test,b.test")
    env.check(r.get("atrn") == 453, "nothing held -> 453", r)
    r = env.alice("--atrn", "localhost")
    env.check(r.get("atrn") == 501, "single-label domain -> 501", r)
    r = env.alice("--cmd", "VRFY alice", "--cmd", "MAIL FROM:<a@b.test>", "--cmd", "AUTH CRAM-MD5")
    env.check([c[0] for c in r.get("cmds", [])] == [502, 502, 503],
              "VRFY/MAIL -> 502, second AUTH -> 503", r)

    b1 = env.inject(["u1@a.test"], "one")
    b2 = env.inject(["u2@b.test", "x@c.test"], "two")
    b3 = env.inject(["u3@a.test", "u4@b.test"], "three")
    store = os.path.join(env.dir, "got1")
    os.mkdir(store)
    r = env.alice("--atrn", "a.test, B.test", "--store", store, "--pipeline", "NOOP\\r\\n")
    env.check(r.get("atrn") == 250 and r.get("atrn_lines") == ["250 OK now reversing the connection"],
              "multi-domain ATRN -> single-line 250", r)
    env.check(rcpt_sets(r) == [["u1@a.test"], ["u2@b.test"], ["u3@a.test", "u4@b.test"]],
              "all messages of both domains, only their recipients", rcpt_sets(r))
    env.check(r.get("quit") is True and (r.get("got_ehlo") or "").startswith("EHLO mx.test"),
              "provider sent EHLO after our 220 and ended with QUIT", r)
    env.check("pipelined after ATRN" in env.log("turnd"), "pipelined bytes discarded and logged")
    bodies = sorted(strip_trace(open(m["file"], "rb").read()) for m in r.get("messages", []))
    env.check(bodies == sorted([b1, b2, b3]), "bodies identical apart from trace headers")
    r = env.alice("--atrn", "a.test,b.test")
    env.check(r.get("atrn") == 453, "second ATRN -> 453", r)
    r = bob(env, "--atrn", "c.test")
    env.check(r.get("atrn") == 250 and rcpt_sets(r) == [["x@c.test"]],
              "other account gets only its recipient of the shared message", r)

    env.inject(["u5@a.test"], "four")
    r = env.alice("--turn")
    env.check(r.get("atrn") == 250 and rcpt_sets(r) == [["u5@a.test"]], "AUTH+TURN delivers", r)
    r = env.alice("--turn")
    env.check(r.get("atrn") == 250 and r.get("messages") == [] and r.get("quit") is True,
              "AUTH+TURN with nothing held: 250, EHLO, QUIT", r)
    r = env.alice("--atrn", "")
    env.check(r.get("atrn") == 453, "bare ATRN (all domains), nothing held -> 453", r)

    tool = os.path.join(env.build, "contrib", "odmr-customer")
    if os.access(tool, os.X_OK):
        for i in range(20):
            env.inject(["bench%d@a.test" % i], "bench %d" % i)
        p = subprocess.run([tool, "-p", str(env.odmr_port), "-u", "alice", "-P", env.pwfile,
                            "-t", "60", "a.test,b.test"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        out = p.stdout.decode("utf-8", "replace")
        env.check(p.returncode == 0 and "messages=20 " in out, "contrib/odmr-customer drains 20", out)
        p = subprocess.run([tool, "-p", str(env.odmr_port), "-u", "alice", "-P", env.pwfile,
                            "a.test"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        env.check(p.returncode == 1, "odmr-customer: nothing left -> exit 1 (453)", p.stdout)


def scenario_failures(env):
    """scenario_failures - 4xx stays held, 5xx bounces, drop mid-DATA loses nothing."""
    env.start()
    setup_accounts(env)
    env.inject(["u1@a.test", "u2@a.test"], "soft")
    r = env.alice("--atrn", "a.test", "--rcpt-reply", "u2@a.test=450")
    env.check(r.get("atrn") == 250 and rcpt_sets(r) == [["u1@a.test"]], "4xx: first run", r)
    r = env.alice("--atrn", "a.test")
    env.check(r.get("atrn") == 250 and rcpt_sets(r) == [["u2@a.test"]],
              "4xx recipient stayed held, second ATRN gets it", r)

    env.inject(["u3@a.test"], "hard", sender="bounce-me@example.org")
    r = env.alice("--atrn", "a.test", "--rcpt-reply", "u3@a.test=550")
    env.check(r.get("atrn") == 250 and r.get("messages") == [], "5xx recipient refused", r)

    def dsn():
        for j in glob.glob(os.path.join(env.sink_dir, "*.json")):
            if "bounce-me@example.org" in json.load(open(j))["rcpts"]:
                return j
        return None
    j = wait_until(dsn, 90, 0.5)
    env.check(j is not None, "DSN for the 5xx arrived at bounce_relay")
    if j:
        env.check(b"u3@a.test" in open(j[:-5] + ".eml", "rb").read(), "DSN names the recipient")
    r = env.alice("--atrn", "a.test")
    env.check(r.get("atrn") == 453, "failed recipient is not held any more", r)

    env.inject(["u4@a.test"], "drop1")
    env.inject(["u5@a.test"], "drop2")
    r = env.alice("--atrn", "a.test", "--drop-in-data", "1")
    env.check(r.get("atrn") == 250 and r.get("dropped_in_message") == 1, "dropped during DATA", r)
    got = {}

    def again():
        got["r"] = env.alice("--atrn", "a.test")
        return got["r"].get("atrn") == 250
    wait_until(again, 20, 0.5)
    r = got["r"]
    env.check(rcpt_sets(r) == [["u4@a.test"], ["u5@a.test"]],
              "after the drop, a second ATRN gets everything", r)


def scenario_auth(env):
    """scenario_auth - 535 slowed per address, AUTH syntax errors, ETRN."""
    env.start()
    setup_accounts(env)
    bad = os.path.join(env.dir, "bad.pw")
    with open(bad, "w") as f:
        f.write("wrong-password\n")
    times = []
    for _ in range(3):
        r = env.customer("--user", "alice", "--password-file", bad, "--atrn", "a.test")
        env.check(r.get("auth") == 535, "wrong password -> 535", r)
        times.append(r.get("auth_seconds", 0))
    env.check(times[0] >= 0.9 and times[1] >= times[0] + 0.7 and times[2] >= times[1] + 1.5,
              "failure delay grows per address", times)
    env.check("wrong-password" not in env.log("turnd"), "password never logged")
    r = env.customer("--cmd", "AUTH CRAM-MD5", "--cmd", "%%%%", "--cmd", "AUTH CRAM-MD5",
                     "--cmd", "*", "--cmd", "AUTH FOO", "--cmd", "AUTH CRAM-MD5 AAAA")
    env.check([c[0] for c in r.get("cmds", [])] == [334, 501, 334, 501, 504, 501],
              "bad base64 501, cancel 501, unknown mech 504, CRAM initial response 501", r)
    r = env.customer("--cmd", "ETRN a.test")
    env.check(r["cmds"][0][0] == 530, "ETRN before AUTH -> 530", r)
    r = env.alice("--cmd", "ETRN c.test", "--cmd", "ETRN a.test", "--cmd", "ETRN #q")
    codes = [c[0] for c in r.get("cmds", [])]
    env.check(r.get("auth") == 235 and codes == [459, 250, 459],
              "ETRN: other's domain 459, own domain forwarded to queued (250), #queue 459", r)
    long_line = "ATRN " + ",".join("d%d.a.test" % i for i in range(600))
    r = env.alice("--cmd", long_line)
    env.check(r["cmds"][0][0] == 450, "8 KiB ATRN line is parsed (450, not 500)", r["cmds"])


def scenario_tls(env):
    """scenario_tls - STARTTLS, AUTH PLAIN, ATRN; the reversed session stays encrypted."""
    env.start()
    setup_accounts(env)
    r = env.customer("--cmd", "NOOP")
    env.check(any("STARTTLS" in ln for ln in r.get("ehlo", [])), "STARTTLS advertised", r)
    body = env.inject(["t1@a.test"], "tls")
    store = os.path.join(env.dir, "gottls")
    os.mkdir(store)
    r = env.alice("--starttls", "--mech", "PLAIN", "--atrn", "a.test", "--store", store,
                  "--cmd", "STARTTLS")
    ehlo = " ".join(r.get("ehlo", []))
    env.check(r.get("starttls") == 220 and r.get("tls", "").startswith("TLS"), "STARTTLS", r)
    env.check("PLAIN" in ehlo and "STARTTLS" not in ehlo, "after TLS: PLAIN offered, no STARTTLS", ehlo)
    env.check(r.get("auth") == 235, "AUTH PLAIN under TLS", r)
    env.check(r.get("cmds", [[0]])[0][0] == 503, "second STARTTLS -> 503", r)
    env.check(r.get("atrn") == 250 and rcpt_sets(r) == [["t1@a.test"]] and r.get("quit") is True,
              "reversed session over the same TLS connection", r)
    if r.get("messages"):
        env.check(strip_trace(open(r["messages"][0]["file"], "rb").read()) == body, "body intact")

    import ssl
    c = Raw(env)
    c.cmd(b"EHLO inject.test")
    c.s.sendall(b"STARTTLS\r\nQUIT\r\n")  # plaintext injection after STARTTLS
    env.check(c.reply().startswith("220"), "STARTTLS with pipelined plaintext: 220")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        t = ctx.wrap_socket(c.s)
        t.settimeout(10)
        t.sendall(b"NOOP\r\n")
        first = t.recv(1000).decode("utf-8", "replace")
    except (OSError, ssl.SSLError) as e:
        first = "error %r" % e
    env.check(first.startswith("250 "), "pipelined plaintext discarded (not answered inside TLS)",
              first)
    env.check("pipelined after STARTTLS" in env.log("turnd"), "discard logged")


def scenario_fetchmail(env):
    """scenario_fetchmail - stock fetchmail in ODMR mode into a local sink."""
    if shutil.which("fetchmail") is None:
        print("SKIP: fetchmail missing")
        env.cleanup()
        sys.exit(77)
    env.start()
    setup_accounts(env)
    sink = os.path.join(env.dir, "mta")
    os.mkdir(sink)
    port = env.start_sink(sink)
    bodies = [env.inject(["f1@a.test"], "fm one"), env.inject(["f2@b.test"], "fm two"),
              env.inject(["f3@a.test", "f4@b.test"], "fm three", extra=("x" * 900 + "\r\n") * 6)]
    home = os.path.join(env.dir, "fmhome")
    os.mkdir(home, 0o700)
    rc = os.path.join(env.dir, "fetchmailrc")
    with open(rc, "w") as f:
        f.write('poll 127.0.0.1 service %d protocol ODMR user "alice" password "%s"\n'
                '    fetchdomains a.test,b.test smtphost 127.0.0.1/%d\n'
                % (env.odmr_port, open(env.pwfile).read().strip(), port))
    os.chmod(rc, 0o600)
    envv = dict(os.environ, FETCHMAILHOME=home)

    def run():
        return subprocess.run(["fetchmail", "-f", rc, "--nosyslog", "-v"], env=envv,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                              stdin=subprocess.DEVNULL)
    p = run()
    out = p.stdout.decode("utf-8", "replace")
    env.check(p.returncode == 0, "fetchmail exit 0", out[-2000:])
    wait_until(lambda: len(glob.glob(os.path.join(sink, "*.eml"))) >= 3, 10)
    got = sorted(strip_trace(open(f, "rb").read()) for f in glob.glob(os.path.join(sink, "*.eml")))
    env.check(got == sorted(bodies), "3 messages byte-identical apart from trace headers",
              [len(g) for g in got])
    p = run()
    out = p.stdout.decode("utf-8", "replace")
    env.check(p.returncode == 0 and "453" in out, "second fetchmail run: 453, exit 0", out[-2000:])


class Raw:
    """Raw - a hand-driven ODMR connection for edge cases."""

    def __init__(self, env):
        import socket
        self.s = socket.create_connection(("127.0.0.1", env.odmr_port), timeout=30)
        self.f = self.s.makefile("rb")
        self.greeting = self.reply()

    def reply(self):
        """reply - last line of one reply ('' at EOF)."""
        for _ in range(1000):
            ln = self.f.readline(100000).decode("utf-8", "replace").rstrip("\r\n")
            if len(ln) < 4 or ln[3] != "-":
                return ln
        return ""

    def cmd(self, data):
        """cmd - send raw bytes (CRLF added) and read the reply."""
        self.s.sendall(data + b"\r\n")
        return self.reply()

    def auth(self, user, password):
        """auth - AUTH CRAM-MD5; returns the final reply line."""
        import base64
        import hashlib
        import hmac
        ch = base64.b64decode(self.cmd(b"AUTH CRAM-MD5")[4:])
        dig = hmac.new(password.encode(), ch, hashlib.md5).hexdigest()
        return self.cmd(base64.b64encode(("%s %s" % (user, dig)).encode()))

    def close(self):
        """close - close the file object and the socket (both hold the fd)."""
        self.f.close()
        self.s.close()

    def eof(self):
        """eof - True when the server closed the connection."""
        try:
            return self.f.read(1) == b""
        except OSError:
            return True


def scenario_robust(env):
    """scenario_robust - limits, bad input, concurrency, SIGTERM and SIGHUP."""
    from odmr_harness import PASSWORD
    env.start()
    setup_accounts(env)
    c = Raw(env)
    env.check(c.cmd(b"NOOP\0junk").startswith("500"), "NUL byte -> 500")
    env.check(c.cmd(b"EHLO " + b"x" * 9000).startswith("500") and c.eof(),
              "9000-byte line -> 500 and close")
    c = Raw(env)
    r1 = c.cmd(b"AUTH PLAIN AGFsaWNlAHg=")
    c.close()
    env.check(r1.startswith("235") or r1.startswith("535"),
              "auth_plain = loopback allows PLAIN without TLS on loopback", r1)
    c = Raw(env)
    got = [c.auth("alice", "bad%d" % i) for i in range(3)]
    env.check([g[:3] for g in got] == ["535"] * 3 and c.reply().startswith("421") and c.eof(),
              "three failures on one connection: 535 x3, then 421 and close", got)
    conns = [Raw(env) for _ in range(3)]
    extra = Raw(env)
    env.check(all(x.greeting.startswith("220") for x in conns) and extra.greeting.startswith("421"),
              "max_connections_per_ip = 3: the 4th gets 421", extra.greeting)
    for x in conns + [extra]:
        x.close()
    time.sleep(0.3)

    env.inject(["h1@a.test"], "held by a hanging customer")
    hang = Raw(env)
    hang.cmd(b"EHLO hang.test")
    env.check(hang.auth("alice", PASSWORD).startswith("235"), "hanging customer authenticated")
    env.check(hang.cmd(b"ATRN a.test").startswith("250 "), "hanging customer got 250")
    r = env.alice("--atrn", "a.test")
    env.check(r.get("atrn") == 451, "second ATRN while another run holds the domain -> 451", r)
    env.td.send_signal(signal.SIGTERM)
    env.check(env.td.wait(timeout=20) == 0, "turnd exits 0 on SIGTERM during a reversal")
    env.check(hang.eof(), "reversed session closed at shutdown")
    env.start_turnd()
    r = env.alice("--atrn", "a.test")
    env.check(r.get("atrn") == 250 and rcpt_sets(r) == [["h1@a.test"]],
              "mail of the aborted reversal stayed held", r)

    with open(env.conf) as f:
        text = f.read()
    with open(env.conf, "w") as f:
        f.write(text.replace("hostname = mx.test", "hostname = mx2.test"))
    env.td.send_signal(signal.SIGHUP)
    def greets(host):
        x = Raw(env)
        x.close()
        return x.greeting.startswith("220 " + host)
    ok = wait_until(lambda: greets("mx2.test"), 10)
    env.check(ok, "SIGHUP reload: new hostname in the greeting")
    with open(env.conf, "a") as f:
        f.write("no_such_key = 1\n")
    env.td.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    env.check(greets("mx2.test") and env.td.poll() is None,
              "invalid configuration on SIGHUP: refused, turnd keeps running")
    env.check("reload refused" in env.log("turnd"), "refused reload logged")

    import random
    rnd = random.Random(2645)
    words = [b"EHLO", b"AUTH", b"ATRN", b"TURN", b"ETRN", b"STARTTLS", b"RSET", b"\r\n", b"*", b"="]
    for i in range(150):  # junk, half-commands, NULs, bare LFs, huge tokens
        x = Raw(env)
        junk = b"".join(rnd.choice(words) if rnd.random() < 0.3 else
                        bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 40)))
                        for _ in range(rnd.randrange(1, 60)))
        try:
            x.s.sendall(junk + (b"\n" if i % 2 else b"\r\n"))
            x.s.settimeout(0.2)
            x.s.recv(65536)
        except OSError:
            pass
        x.close()
    env.check(env.td.poll() is None and greets("mx2.test"), "150 sessions of junk: turnd alive")

    env.qd.send_signal(signal.SIGTERM)  # queued gone: its control socket too
    env.qd.wait(timeout=30)
    r = env.alice("--cmd", "ETRN a.test")
    env.check(r.get("cmds", [[0]])[0][0] == 458, "ETRN with queued down -> 458", r)


def children(pid):
    """children - PIDs whose parent is pid (from /proc)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def scenario_supervise(env):
    """scenario_supervise - queued starts turnd, restarts it, stops it."""
    env.start(turnd=False)
    qpid = env.qd.pid
    kids = wait_until(lambda: children(qpid), 10)
    env.check(len(kids) == 1, "queued started one turnd", kids)
    if not kids:
        return
    first = kids[0]
    os.kill(first, signal.SIGKILL)  # the child of a process this test started
    again = wait_until(lambda: [k for k in children(qpid) if k != first], 15)
    env.check(bool(again), "turnd restarted after it died", again)
    env.check(wait_until(lambda: port_open(env.odmr_port), 15), "restarted turnd listens")
    r = env.customer("--cmd", "NOOP")
    env.check(r.get("greeting", "").startswith("220 "), "restarted turnd answers", r)
    env.check(re.search(r"turnd pid=%d ended: killed by signal 9" % first, env.log("queued")) is not None,
              "exit status logged")
    env.qd.send_signal(signal.SIGTERM)
    env.qd.wait(timeout=30)
    alive = [k for k in again if os.path.exists("/proc/%d" % k)
             and "zombie" not in open("/proc/%d/status" % k).read()]
    env.check(not alive, "turnd stopped with queued", alive)


def main():
    name = sys.argv[1]
    opts = {"tls": {"tls": True}, "supervise": {"supervised": True},
            "robust": {"auth_plain": "loopback", "extra": ["max_connections_per_ip = 3"]}}.get(name, {})
    env = Env(name, **opts)
    try:
        globals()["scenario_" + name](env)
    except Exception as e:  # report, clean up, fail
        import traceback
        traceback.print_exc()
        env.check(False, "scenario raised %r" % e)
    env.finish()


if __name__ == "__main__":
    main()
