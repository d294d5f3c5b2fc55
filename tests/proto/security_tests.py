#!/usr/bin/env python3
"""security_tests.py - adversarial scenarios (run by tests/proto/test_security_*.sh).

  security_tests.py turnd|smtpd

turnd: AUTH ordering and state tricks, SASL authzid and realm tricks, ATRN
domain-list tricks (case, trailing dot, blanks, empty elements, duplicates,
subdomains of an owned domain), "ETRN @domain" reaching domains the account
does not own, ETRN through turnd and the per-client rate, secrets and AUTH
payloads in the daemons' logs (also stray payloads pipelined past a refused
AUTH), state_dir and control socket modes, queuectl --password-stdin never
echoing (pipe and terminal).

smtpd: relay tricks on RCPT (source routes, percent hack, quoted local
parts, trailing dot, case, address literals, 8-bit bytes, over-long
addresses), a domain held on one site offered to another site's listener,
ETRN naming another site or a domain that is not held, SMTP smuggling in
DATA, and PLAIN/LOGIN refused without TLS on the ODMR port.

Each scenario builds its own Env (odmr_harness.py) on loopback with
OS-chosen ports and stops only the processes it started.
"""
import base64
import json
import os
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hm_harness import Client, free_port  # noqa: E402
from odmr_harness import PASSWORD, Env  # noqa: E402

BOB_PW = "bob-pw"


class Raw:
    """Raw - a hand-driven line connection (ODMR or SMTP) returning last reply lines."""

    def __init__(self, port, src=None):
        """src: a loopback source address, so AUTH failure delays stay per test."""
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20,
                                          source_address=(src, 0) if src else None)
        self.f = self.s.makefile("rb")
        self.greeting = self.reply()

    def reply(self):
        """reply - last line of one reply ('' at EOF)."""
        for _ in range(1000):
            ln = self.f.readline(100000).decode("latin-1").rstrip("\r\n")
            if len(ln) < 4 or ln[3] != "-":
                return ln
        return ""

    def cmd(self, data):
        """cmd - send a line (str or bytes, CRLF added) and read the reply."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.s.sendall(data + b"\r\n")
        return self.reply()

    def plain(self, authzid, authcid, password):
        """plain - AUTH PLAIN with an initial response; the reply line."""
        blob = ("%s\0%s\0%s" % (authzid, authcid, password)).encode()
        return self.cmd(b"AUTH PLAIN " + base64.b64encode(blob))

    def close(self):
        """close - close the file object and the socket."""
        self.f.close()
        self.s.close()


SRC = [0]


def fresh_src():
    """fresh_src - a new 127.0.0.x source (each failed AUTH is delayed per address)."""
    SRC[0] += 1
    return "127.0.%d.%d" % (os.getpid() % 200 + 20, SRC[0] % 250 + 2)


def code(line):
    """code - the three-digit code of a reply line ('' when none)."""
    return line[:3]


def setup_turnd(env):
    """setup_turnd - alice: cust1.test; bob: cust2.test and sub.cust1.test."""
    for d in ("cust1.test", "cust2.test", "sub.cust1.test"):
        env.ctl("domain", "add", d, "--site", "default")
    env.ctl("account", "add", "alice", "--domains", "cust1.test")
    env.ctl("account", "add", "bob", "--domains", "cust2.test,sub.cust1.test")
    with open(os.path.join(env.dir, "bob.pw"), "w") as f:
        f.write(BOB_PW + "\n")


def alice_conn(env):
    """alice_conn - a Raw ODMR connection authenticated as alice (PLAIN)."""
    c = Raw(env.odmr_port)
    c.cmd("EHLO client.test")
    r = c.plain("", "alice", PASSWORD)
    env.check(code(r) == "235", "alice authenticates with PLAIN", r)
    return c


def turnd_order(env):
    """turnd_order - commands before AUTH, AUTH twice, cancel, failure."""
    c = Raw(env.odmr_port, fresh_src())
    c.cmd("EHLO client.test")
    env.check(code(c.cmd("ATRN cust2.test")) == "530", "ATRN before AUTH -> 530")
    env.check(code(c.cmd("ATRN")) == "530", "bare ATRN before AUTH -> 530")
    env.check(code(c.cmd("TURN")) == "502", "TURN before AUTH -> 502")
    env.check(code(c.cmd("ETRN cust2.test")) == "530", "ETRN before AUTH -> 530")
    r = c.cmd("AUTH PLAIN")
    env.check(code(r) == "334", "AUTH PLAIN without initial response -> 334", r)
    env.check(code(c.cmd("*")) == "501", "AUTH cancelled with * -> 501")
    env.check(code(c.cmd("ATRN cust1.test")) == "530", "ATRN after a cancelled AUTH -> 530")
    r = c.plain("", "alice", "wrong")
    env.check(code(r) == "535", "AUTH with a wrong password -> 535", r)
    env.check(code(c.cmd("ATRN cust1.test")) == "530", "ATRN after a failed AUTH -> 530")
    c.close()
    c = alice_conn(env)
    r = c.plain("", "bob", BOB_PW)
    env.check(code(r) == "503", "second AUTH (as bob) after success -> 503", r)
    env.check(code(c.cmd("ATRN cust2.test")) == "450", "still alice after the second AUTH: 450")
    c.close()


def turnd_identity(env):
    """turnd_identity - authzid naming another user, foreign realms."""
    c = Raw(env.odmr_port, fresh_src())
    c.cmd("EHLO client.test")
    r = c.plain("bob", "alice", PASSWORD)
    if code(r) == "235":
        r2 = c.cmd("ATRN cust2.test")
        env.check(code(r2) == "450", "PLAIN authzid=bob as alice must not grant bob's domains", r2)
    else:
        env.check(code(r) == "535", "PLAIN authzid=bob authcid=alice refused", r)
    c.close()
    for who in ("alice@otherrealm", "bob@otherrealm", "alice@holdmx@otherrealm", "alice@"):
        c = Raw(env.odmr_port, fresh_src())
        c.cmd("EHLO client.test")
        r = c.plain("", who, PASSWORD)
        env.check(code(r) == "535", "PLAIN as %r refused" % who, r)
        c.close()
    # a real user of another realm in the same sasldb (another service's users)
    subprocess.run(["saslpasswd2", "-p", "-c", "-f", os.path.join(env.dir, "sasldb2"), "-u",
                    "otherrealm", "alice"], input=b"other-pw", check=True, timeout=30)
    for authz in ("", "alice", "alice@holdmx"):
        c = Raw(env.odmr_port, fresh_src())
        c.cmd("EHLO client.test")
        r = c.plain(authz, "alice@otherrealm", "other-pw")
        env.check(code(r) == "535", "alice@otherrealm (authzid %r) is not account alice" % authz,
                  r)
        if code(r) == "235":
            env.check(code(c.cmd("ATRN cust1.test")) != "250", "... and cannot collect")
        c.close()
    c = Raw(env.odmr_port, fresh_src())
    c.cmd("EHLO client.test")
    r = c.plain("alice@otherrealm", "alice", PASSWORD)
    if code(r) == "235":
        env.check(code(c.cmd("ATRN cust2.test")) == "450", "authzid alice@otherrealm: no gain")
    else:
        env.check(code(r) == "535", "PLAIN authzid=alice@otherrealm refused", r)
    c.close()


def turnd_atrn_lists(env):
    """turnd_atrn_lists - domain-list tricks must never reach bob's domains."""
    c = alice_conn(env)
    cases = [
        ("cust1.test,,cust2.test", ("501",)),
        ("cust1.test,", ("501",)),
        (",cust2.test", ("501",)),
        ("CUST2.TEST", ("450",)),
        ("Cust2.Test", ("450",)),
        ("cust2.test.", ("501", "450")),
        ("cust1.test, cust2.test", ("450",)),
        ("cust1.test,cust1.test,cust2.test", ("450",)),
        ("cust1.test cust2.test", ("501", "450")),
        ("cust1.test\tcust2.test", ("501", "450")),
        ("sub.cust1.test", ("450",)),
        ("SUB.cust1.test", ("450",)),
        ("x.sub.cust1.test", ("450",)),
        ("test", ("501",)),
        ("@cust1.test", ("501",)),
        ("*.cust1.test", ("501",)),
        ("cust1.test,c\xfcst2.test", ("501",)),
        ("cust1.test,xn--cst2-0ra.test", ("450",)),
        ("cust1.test" + ",cust2.test" * 50, ("450",)),
    ]
    for arg, want in cases:
        r = c.cmd("ATRN " + arg)
        env.check(code(r) in want, "ATRN %r -> %s" % (arg[:60], "/".join(want)), r)
    c.close()
    c = alice_conn(env)
    r = c.cmd("ATRN  cust2.test")
    env.check(code(r) == "450", "ATRN with leading blanks -> 450", r)
    c.close()


def turnd_subdomain_mail(env):
    """turnd_subdomain_mail - alice's ATRN/TURN must not yield sub.cust1.test's mail."""
    env.inject(["u@cust1.test"], "alice own")
    env.inject(["u@sub.cust1.test"], "bob sub")
    env.inject(["u@cust2.test"], "bob own")
    res = env.alice("--mech", "PLAIN", "--atrn", "cust1.test")
    got = sorted(r for m in res.get("messages", []) for r in m.get("rcpts", []))
    env.check(got == ["u@cust1.test"], "alice's ATRN cust1.test yields only u@cust1.test", res)
    res = env.alice("--mech", "PLAIN", "--turn")
    got = sorted(r for m in res.get("messages", []) for r in m.get("rcpts", []))
    env.check(got == [], "alice's TURN yields none of bob's mail", res)
    out = env.ctl("queue", "list")
    env.check("sub.cust1.test" in out and "cust2.test" in out, "bob's mail is still held", out)


def turnd_etrn(env):
    """turnd_etrn - ETRN through turnd only for the account's own domains."""
    c = alice_conn(env)
    for arg in ("cust2.test", "CUST2.TEST", "sub.cust1.test", "@cust2.test", "#default"):
        r = c.cmd("ETRN " + arg)
        env.check(code(r) == "459", "turnd ETRN %s by alice -> 459" % arg, r)
    r = c.cmd("ETRN @cust1.test")
    env.check(code(r) == "459",
              "turnd ETRN @cust1.test by alice refused (sub.cust1.test is bob's)", r)
    r = c.cmd("ETRN cust1.test")
    env.check(code(r) in ("250", "251", "253", "458"), "turnd ETRN cust1.test by alice allowed", r)
    c.close()
    c = Raw(env.odmr_port)
    c.cmd("EHLO client.test")
    env.check(code(c.plain("", "bob", BOB_PW)) == "235", "bob authenticates")
    r = c.cmd("ETRN @cust2.test")
    env.check(code(r) in ("250", "251", "253", "458"),
              "turnd ETRN @cust2.test by bob allowed (he owns every subdomain)", r)
    c.close()
    time.sleep(0.5)
    qlog = env.log("queued")
    env.check("@cust1.test: started" not in qlog and "@cust1.test: running" not in qlog,
              "queued never started a run for @cust1.test")


def turnd_etrn_rate(env):
    """turnd_etrn_rate - ETRN through turnd counts against etrn_rate_per_client (3
    here) for the customer's address, as on queued's SMTP port."""
    c = Raw(env.odmr_port, fresh_src())
    c.cmd("EHLO client.test")
    env.check(code(c.plain("", "alice", PASSWORD)) == "235", "alice authenticates (rate)")
    got = [code(c.cmd("ETRN cust1.test")) for _ in range(4)]
    env.check(got[:3] != ["458"] * 3 and "458" not in got[:3] and got[3] == "458",
              "turnd ETRN: three allowed, the fourth rate-limited (458)", got)
    c.close()


def turnd_stray_payloads(env):
    """turnd_stray_payloads - AUTH payloads pipelined after a refused AUTH end up
    as command lines; they must not be logged (turnd runs with -v)."""
    c = Raw(env.odmr_port, fresh_src())
    c.cmd("EHLO client.test")
    b64 = base64.b64encode(PASSWORD.encode())
    c.s.sendall(b"AUTH NOSUCH\r\n" + b64 + b"\r\n" + PASSWORD.encode() + b"\r\n")
    got = [c.reply() for _ in range(3)]
    env.check([code(g) for g in got] == ["504", "502", "502"],
              "refused AUTH, then the stray payloads are unknown commands", got)
    c.close()
    c = alice_conn(env)
    c.s.sendall(b"AUTH LOGIN\r\n" + base64.b64encode(b"bob") + b"\r\n" +
                base64.b64encode(BOB_PW.encode()) + b"\r\n")
    got = [c.reply() for _ in range(3)]
    env.check([code(g) for g in got] == ["503", "502", "502"],
              "AUTH LOGIN after success: 503, the payloads are unknown commands", got)
    c.close()


def pty_password(env, account, pw):
    """pty_password - queuectl account add --password-stdin on a terminal: the
    secret is typed after the prompt; returns everything the terminal showed."""
    import pty
    import select
    master, slave = pty.openpty()
    p = subprocess.Popen([env.queuectl, "-c", env.conf, "account", "add", account, "--domains",
                          account + ".test", "--password-stdin"],
                         stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    shown, typed, deadline = b"", False, time.time() + 20
    while time.time() < deadline:
        if not typed and (b"assword" in shown or time.time() > deadline - 17):
            os.write(master, pw.encode() + b"\n")
            time.sleep(0.3)
            if p.poll() is None:
                os.write(master, b"\x04")  # a reader that wants EOF gets it
            typed = True
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            shown += chunk
        elif p.poll() is not None and typed:
            break
    if p.poll() is None:
        p.kill()
    p.wait(timeout=10)
    os.close(master)
    return p.returncode, shown.decode("latin-1")


def turnd_secrets(env):
    """turnd_secrets - no password, no AUTH payload in any log; control socket 0600."""
    payloads = [base64.b64encode(("%s\0%s\0%s" % (z, u, p)).encode()).decode()
                for z, u, p in (("", "alice", PASSWORD), ("", "alice", "wrong"),
                                ("bob", "alice", PASSWORD), ("", "bob", BOB_PW))]
    secrets = [PASSWORD, BOB_PW] + payloads + [base64.b64encode(PASSWORD.encode()).decode(),
                                               base64.b64encode(BOB_PW.encode()).decode()]
    for name in ("queued", "turnd"):
        text = env.log(name)
        leaked = [s for s in secrets if s in text]
        env.check(not leaked, "%s log holds no password or AUTH payload" % name, leaked)
    for name, want in (("", 0o700), ("data.mdb", 0o600), ("lock.mdb", 0o600)):
        p = os.path.join(env.dir, "state", name)
        mode = stat.S_IMODE(os.stat(p).st_mode)
        env.check(mode & 0o077 == 0, "state_dir/%s is private (%o)" % (name, want), oct(mode))
    path = os.path.join(env.dir, "state", "control")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    env.check(mode == 0o600, "control socket mode is 0600", oct(mode))
    pw = "Echo-Me-Not-%d" % os.getpid()
    r = subprocess.run([env.queuectl, "-c", env.conf, "account", "add", "dave", "--domains",
                        "dave.test", "--password-stdin"], input=(pw + "\n").encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    both = r.stdout.decode("latin-1") + r.stderr.decode("latin-1")
    env.check(pw not in both, "queuectl --password-stdin does not echo the secret", both)
    rc, shown = pty_password(env, "erin", pw + "-tty")
    env.check(rc == 0 and pw + "-tty" not in shown,
              "queuectl --password-stdin on a terminal does not echo the secret", (rc, shown))
    c = Raw(env.odmr_port, fresh_src())
    c.cmd("EHLO client.test")
    r = c.plain("", "erin", pw + "-tty")
    env.check(code(r) == "235", "the secret typed on the terminal was stored", r)
    c.close()
    r = subprocess.run([env.queuectl, "-c", env.conf, "account", "show", "dave"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    env.check(pw not in r.stdout.decode("latin-1") + r.stderr.decode("latin-1"),
              "queuectl account show does not reveal the secret")
    env.check(pw not in env.log("queued") and pw not in env.log("turnd"),
              "daemon logs do not hold the new secret")


def scenario_turnd(env):
    """scenario_turnd - every turnd attack in turn."""
    env.start()
    setup_turnd(env)
    turnd_order(env)
    turnd_identity(env)
    turnd_atrn_lists(env)
    turnd_subdomain_mail(env)
    turnd_etrn(env)
    turnd_etrn_rate(env)
    turnd_stray_payloads(env)
    turnd_secrets(env)


def add_site_b(env):
    """add_site_b - a second site with its own SMTP listener; returns its port."""
    port = free_port()
    with open(env.conf, "a") as f:
        f.write("\n[site b]\nhostname = mx2.test\nsmtp_listen = 127.0.0.1:%d\n"
                "odmr_listen = 127.0.0.1:%d\n" % (port, free_port()))
    return port


def smtpd_rcpts(env, port):
    """smtpd_rcpts - relay tricks on RCPT TO."""
    long_local = "a" * 65
    long_dom = ".".join(["d" * 60] * 5) + ".test"
    cases = [
        ("<u@held.test>", "250"),
        ("<U@HELD.TEST>", "250"),
        ("<u%other.test@held.test>", "250"),  # held for held.test, goes only to its MX
        ('<"u@other.test"@held.test>', "250"),  # likewise
        ("<@other.test:u@held.test>", "250"),  # the route is ignored (RFC 5321 C)
        ("<@held.test:u@other.test>", "5"),
        ("<@held.test,@x.test:u@other.test>", "5"),
        ("<u@other.test>", "5"),
        ("<u%other.test@other.test>", "5"),
        ('<"u@held.test"@other.test>', "5"),
        ('<"u>@held.test"@other.test>', "5"),
        ("<u@other.test@held.test>", "5"),
        ("<u@held.test.>", "5"),
        ("<u@held.test..>", "5"),
        ("<u@[127.0.0.1]>", "5"),
        ("<u@[IPv6:::1]>", "5"),
        ("<u@held.test\xe9>", "5"),
        ("<u\xe9@other.test>", "5"),
        ("<u@sub.held.test>", "5"),
        ("<u@held.test.other.test>", "5"),
        ("<u@b-only.test>", "5"),
        ("<%s@held.test>" % long_local, "5"),
        ("<u@%s>" % long_dom, "5"),
        ("<u@held.test", "5"),
        ("u@held.test", "5"),
        ("<u@held.test> <v@other.test>", "5"),
        ("<u@held.test>\x00<v@other.test>", "5"),
    ]
    for arg, want in cases:  # one session each: errors are counted per session
        c = Raw(port)
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<s@example.org>")
        r = c.cmd(b"RCPT TO:" + arg.encode("latin-1"))
        env.check(r[:len(want)] == want, "RCPT TO:%r -> %sxx" % (arg[:70], want), r)
        env.check(code(c.cmd("QUIT")) == "221", "session alive after RCPT TO:%r" % arg[:40])
        c.close()


def smtpd_sites(env, port_b):
    """smtpd_sites - site A's domain through site B's listener; ETRN across sites."""
    c = Raw(port_b)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<s@example.org>")
    r = c.cmd("RCPT TO:<u@held.test>")
    env.check(code(r) == "550", "site A's domain refused on site B's listener", r)
    r = c.cmd("RCPT TO:<u@b-only.test>")
    env.check(code(r) == "250", "site B's domain accepted on site B's listener", r)
    c.cmd("RSET")
    r = c.cmd("ETRN #default")
    env.check(code(r) == "459", "ETRN #default on site B's listener -> 459", r)
    r = c.cmd("ETRN held.test")
    env.check(code(r) == "459", "ETRN held.test (site A) on site B's listener -> 459", r)
    r = c.cmd("ETRN @test")
    env.check(code(r) in ("459", "501"), "ETRN @test on site B does not reach site A", r)
    c.close()
    c = Raw(env.smtp_port)
    c.cmd("EHLO client.test")
    for arg in ("other.test", "#b", "#nosuch", "[127.0.0.1]", "held.test.", "@other.test",
                "sub.held.test", "#default/../b", "b-only.test"):
        r = c.cmd("ETRN " + arg)
        env.check(code(r) in ("459", "501"), "ETRN %s on site A -> 459/501" % arg, r)
    c.close()
    qlog = env.log("queued")
    env.check("b-only.test: started" not in qlog and "etrn: #b" not in qlog,
              "no run started for site B from site A's listener")


def smtpd_smuggling(env):
    """smtpd_smuggling - "\\n.\\n" inside DATA must not end the message early."""
    c = Raw(env.smtp_port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<s@example.org>")
    c.cmd("RCPT TO:<u@held.test>")
    env.check(code(c.cmd("DATA")) == "354", "DATA -> 354")
    for sep in (b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n"):
        c.s.sendall(b"Subject: x\r\n\r\nbody" + sep + b"MAIL FROM:<admin@held.test>\r\n"
                    b"RCPT TO:<u@held.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n")
    c.s.sendall(b".\r\n")
    r = c.reply()
    env.check(code(r) == "250", "the whole stream is one message: 250", r)
    r = c.cmd("QUIT")
    env.check(code(r) == "221", "no smuggled command was answered", r)
    c.close()


def odmr_plain_needs_tls(env):
    """odmr_plain_needs_tls - default auth_plain = tls: no PLAIN/LOGIN in clear text."""
    c = Raw(env.odmr_port, fresh_src())
    c.cmd("EHLO client.test")
    for mech in ("PLAIN", "plain", "LOGIN"):
        r = c.plain("", "alice", PASSWORD) if mech == "PLAIN" else c.cmd("AUTH " + mech)
        env.check(code(r) == "504", "AUTH %s without TLS -> 504" % mech, r)
    c.close()
    env.check(PASSWORD not in env.log("turnd"), "refused PLAIN left no password in the log")


def smtpd_rcpt_case(env, port):
    """smtpd_rcpt_case - local parts keep their case; only the domain folds."""
    c = Raw(port)
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<case@example.org>")
    for rcpt in ("<Case@held.test>", "<case@held.test>", "<case@HELD.TEST>"):
        env.check(code(c.cmd("RCPT TO:" + rcpt)) == "250", "RCPT TO:%s accepted" % rcpt)
    env.check(code(c.cmd("DATA")) == "354", "DATA for the case test")
    env.check(code(c.cmd("Subject: case\r\n\r\nbody\r\n.")) == "250", "case message queued")
    c.cmd("QUIT")
    c.close()
    msgs = json.loads(env.ctl("queue", "list", "--domain", "held.test", "--json"))
    if isinstance(msgs, dict):
        msgs = msgs.get("messages", [])
    mine = [m for m in msgs if m.get("sender") == "case@example.org"]
    addrs = sorted(r.get("address", r.get("addr", "")) for m in mine
                   for r in m.get("recipients", []))
    env.check(addrs == ["Case@held.test", "case@held.test"],
              "Case@ and case@ are two recipients, case@HELD.TEST a duplicate", addrs)


def scenario_smtpd(env):
    """scenario_smtpd - relay and cross-site attacks on queued's SMTP listeners."""
    port_b = add_site_b(env)
    env.start()
    env.ctl("domain", "add", "held.test", "--site", "default")
    env.ctl("domain", "add", "b-only.test", "--site", "b")
    smtpd_rcpts(env, env.smtp_port)
    smtpd_sites(env, port_b)
    smtpd_smuggling(env)
    smtpd_rcpt_case(env, env.smtp_port)
    odmr_plain_needs_tls(env)
    out = env.ctl("queue", "list")
    env.check("other.test" not in out, "nothing for other.test was queued", out)


def main():
    name = sys.argv[1]
    opts = {"turnd": {"auth_plain": "loopback", "extra": ["etrn_rate_per_client = 3"]}}.get(
        name, {})
    env = Env("security-" + name, **opts)
    deadline = time.time() + 55
    try:
        globals()["scenario_" + name](env)
    except Exception as e:  # report, clean up, fail
        import traceback
        traceback.print_exc()
        env.check(False, "scenario raised %r" % e)
    env.check(time.time() < deadline, "scenario finished within 55 s")
    env.finish()


if __name__ == "__main__":
    main()
