#!/usr/bin/env python3
"""ctl_harness.py - operations tests: queuectl queue/stats/site, the control
socket and /metrics, against the real `queued -f` (Python 3 stdlib only).

Usage: ctl_harness.py GROUP     (groups: queue control metrics drain reload)

Each run makes a temp dir with a holdmx.conf (sites "default" and "branch2"
on random loopback ports, bounce_relay and held domains' routes pointing at
SMTP sinks run here, metrics_listen on a free port), starts queued from
$HOLDMX_BUILD, injects mail over SMTP and checks what queuectl, the control
socket and /metrics report.  Only processes started here are signalled (by
recorded pid).  Every wait is bounded in time.

Exit status: 0 all checks passed, 1 a check failed, 77 skipped (queued or
queuectl not built, or smtp-source missing for the drain group).
"""
import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request

from hm_harness import (FAILS, QUEUECTL, QUEUED, QueuedBase, Sink, check, control_request,
                        free_port, log, need_exec, port_open, skip, smtp_transaction, wait_for)


class Env(QueuedBase):
    """Env - temp dir, config, sinks and the queued process."""

    def __init__(self, tag):
        super().__init__("holdmx-ctl-%s." % tag)
        os.chmod(self.dir, 0o755)
        self.port, self.port2, self.mport = free_port(), free_port(), free_port()
        self.cust = Sink(dsn=True)
        self.bounce = Sink(dsn=True)
        self.write_conf()

    def write_conf(self, branch2=True, path=None):
        """write_conf - holdmx.conf with two sites (branch2 optional)."""
        with open(path or self.conf, "w") as f:
            f.write("state_dir = %s/state\n" % self.dir)
            f.write("bounce_relay = [127.0.0.1]:%d\n" % self.bounce.port)
            f.write("metrics_listen = 127.0.0.1:%d\n" % self.mport)
            f.write("start_turnd = no\nmax_connections_per_ip = 50\nmax_connections = 100\n")
            f.write("\n[site default]\nhostname = mx.test\nsmtp_listen = 127.0.0.1:%d\n"
                    % self.port)
            if branch2:
                f.write("\n[site branch2]\nhostname = mx2.test\nsmtp_listen = 127.0.0.1:%d\n"
                        % self.port2)

    def start(self):
        """start - queued -f in the background; wait for SMTP and the control socket."""
        self.start_queued(lambda: os.path.exists(self.sock()) and self.listening(self.port))

    def sock(self):
        """sock - path of the control socket."""
        return os.path.join(self.dir, "state", "control")

    @staticmethod
    def listening(port):
        """listening - something accepts on 127.0.0.1:port."""
        return port_open(port, 1)

    def ctl_json(self, *args):
        """ctl_json - run a listing verb with --json and parse it (None if invalid)."""
        r = self.ctl(*args, "--json")
        try:
            return json.loads(r.stdout)
        except ValueError:
            log("invalid JSON from queuectl %s: %r %r" % (" ".join(args), r.stdout[:300],
                                                          r.stderr[:300]))
            return None

    def count(self, *filters):
        """count - messages queue list --json reports (-1 on failure)."""
        doc = self.ctl_json("queue", "list", *filters)
        return len(doc["messages"]) if doc else -1

    def domain_add(self, name, site, route=None):
        """domain_add - a held domain on site, optionally routed to a local port."""
        args = ["domain", "add", name, "--site", site]
        if route:
            args += ["--route", "[127.0.0.1]:%d" % route]
        self.ctl_ok(*args)

    def control(self, line, timeout=5):
        """control - one request on the control socket; the reply line."""
        return control_request(self.sock(), line, timeout)

    def control_raw(self, data, timeout=5):
        """control_raw - send raw bytes on a fresh control connection; all bytes until EOF."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.sock())
            s.sendall(data)
            out = b""
            for _ in range(100):
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    def cleanup(self):
        """cleanup - stop queued and both sinks; keep the work dir after a failure."""
        self.stop()
        self.cust.close()
        self.bounce.close()
        self.remove_dir(keep=bool(FAILS))


def smtp(port, sender, rcpts, subject, body="hello\r\n"):
    """smtp - one transaction with a small header; (code, text) of the last reply."""
    msg = "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n%s.\r\n" % (sender, rcpts[0], subject,
                                                                   body)
    code, lines = smtp_transaction(port, sender, rcpts, msg, stop_on_error=True)
    return code, "\n".join(lines)


def ids_of(doc):
    """ids_of - queue ids of a queue list JSON document."""
    return [m["id"] for m in (doc or {}).get("messages", [])]


def subject_ids(env, domain):
    """subject_ids - {subject: id} for a domain, read with queue show."""
    out = {}
    for qid in ids_of(env.ctl_json("queue", "list", "--domain", domain)):
        r = env.ctl("queue", "show", qid)
        m = re.search(r"^Subject: (.*)$", r.stdout, re.M)
        if m:
            out[m.group(1).strip()] = qid
    return out


# ---------------------------------------------------------------- groups


def group_queue(env):
    """queue - list/show/JSON, hold+release, delete, bounce, flush, export, stats, site verbs."""
    env.domain_add("a.test", "default", env.cust.port)
    env.domain_add("b.test", "branch2", env.cust.port)
    env.domain_add("c.test", "default", env.cust.port)
    env.domain_add("e.test", "default")
    env.start()
    for i in (1, 2, 3):
        check(smtp(env.port, "s@sender.test", ["u@a.test"], "a%d" % i)[0] == 250,
              "message a%d accepted" % i)
    check(smtp(env.port2, "s@sender.test", ["u@b.test"], "b1")[0] == 250, "b1 accepted")
    for i in (1, 2):
        smtp(env.port, "s@sender.test", ["u@c.test"], "c%d" % i)
        smtp(env.port, "s@sender.test", ["x@e.test", "y@e.test"], "e%d" % i, "body e%d\r\n" % i)

    doc = env.ctl_json("queue", "list")
    check(doc is not None and len(doc["messages"]) == 8, "queue list --json: 8 messages",
          doc and len(doc["messages"]))
    m0 = doc["messages"][0] if doc and doc["messages"] else {}
    check(all(k in m0 for k in ("id", "sender", "size", "age_seconds", "recipients")) and
          all("address" in r and "state" in r for r in m0.get("recipients", [])),
          "JSON message has id/sender/size/age/recipients(address,state)", m0)
    check(env.count("--domain", "a.test") == 3, "queue list --domain a.test: 3")
    check(env.count("--site", "branch2") == 1, "queue list --site branch2: 1")
    r = env.ctl("queue", "list")
    check(r.returncode == 0 and all(q in r.stdout for q in ids_of(doc)) and
          "u@a.test" in r.stdout and "held" in r.stdout,
          "human listing shows every id, recipient and state", r.stdout[:500])

    a = subject_ids(env, "a.test")
    check(len(a) == 3, "queue show prints the Subject header of each message", a)
    r = env.ctl("queue", "show", a.get("a1", "0"))
    check(r.returncode == 0 and "<s@sender.test>" in r.stdout and "u@a.test" in r.stdout and
          "hello" not in r.stdout, "queue show: envelope, recipient, headers only", r.stdout)
    check(env.ctl("queue", "show", "ZZZ").returncode == 64, "queue show bad id exits 64")
    check(env.ctl("queue", "show", "FFFFFFFF").returncode in (65, 66),
          "queue show unknown id exits 66")

    # hold a1, flush: a2 and a3 arrive, a1 stays
    check(env.ctl("queue", "hold", a["a1"]).returncode == 0, "queue hold ID exits 0")
    held = env.ctl_json("queue", "show", a["a1"])
    check(held is not None and held.get("hold") is True, "show --json says hold: true", held)
    r = env.ctl("queue", "flush", "a.test")
    check(r.returncode == 0 and "started" in r.stdout, "queue flush a.test: started", r)
    wait_for(lambda: env.cust.count() >= 2, 30)
    time.sleep(2)
    bodies = env.cust.bodies()
    check(len(bodies) == 2 and not any(b"Subject: a1" in b for b in bodies),
          "flush delivered a2 and a3 only, held a1 stayed", [b[:80] for b in bodies])
    check(env.count("--domain", "a.test") == 1, "a1 still queued while on hold")
    check(env.ctl("queue", "release", a["a1"]).returncode == 0, "queue release ID exits 0")
    env.ctl("queue", "flush", "a.test")
    check(wait_for(lambda: env.cust.count() >= 3, 30), "after release + flush a1 arrives")
    check(wait_for(lambda: env.count("--domain", "a.test") == 0, 10), "a.test queue empty")

    # delete
    b1 = ids_of(env.ctl_json("queue", "list", "--site", "branch2"))
    r = env.ctl("queue", "delete", b1[0] if b1 else "0")
    check(r.returncode == 0 and env.count("--site", "branch2") == 0, "queue delete ID", r)
    check(env.ctl("queue", "show", b1[0] if b1 else "0").returncode == 66,
          "deleted message is gone (show exits 66)")

    # bounce one by id, then the domain
    c = subject_ids(env, "c.test")
    r = env.ctl("queue", "bounce", c.get("c1", "0"))
    check(r.returncode == 0 and "1 recipient" in r.stdout, "queue bounce ID: 1 recipient", r)
    check(env.count("--domain", "c.test") <= 1, "bounced c1 left the pending queue")
    got = wait_for(lambda: any(b"bounced by the operator" in b for b in env.bounce.bodies()), 40)
    check(got, "DSN with \"bounced by the operator\" reached bounce_relay",
          [b[:200] for b in env.bounce.bodies()])
    r = env.ctl("queue", "bounce", "--domain", "c.test")
    check(r.returncode == 0 and "1 recipient" in r.stdout, "queue bounce --domain c.test", r)
    check(wait_for(lambda: env.bounce.count() >= 2, 40), "second DSN sent")
    check(wait_for(lambda: env.count("--domain", "c.test") == 0, 10), "c.test empty")

    # export
    xdir = os.path.join(env.dir, "export")
    r = env.ctl("queue", "export", "--domain", "e.test", xdir)
    check(r.returncode == 0, "queue export --domain e.test exits 0", r)
    emls = sorted(f for f in os.listdir(xdir) if f.endswith(".eml")) if r.returncode == 0 else []
    check(len(emls) == 2, "two .eml files", emls)
    for name in emls:
        with open(os.path.join(xdir, name), "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        with open(os.path.join(xdir, name[:-4] + ".env")) as f:
            env_doc = json.load(f)
        check(msg["Return-Path"] == "<s@sender.test>" and
              sorted(msg.get_all("X-Envelope-To")) == ["<x@e.test>", "<y@e.test>"] and
              msg["Subject"].startswith("e"), "%s parses and keeps the envelope" % name,
              dict(msg.items()))
        check(env_doc.get("sender") == "s@sender.test" and
              len(env_doc.get("recipients", [])) == 2 and "notify" in env_doc["recipients"][0],
              "%s.env JSON has sender and recipients with DSN params" % name[:-4], env_doc)
    with open(os.path.join(xdir, "MANIFEST")) as f:
        man = [ln for ln in f if not ln.startswith("#")]
    check(len(man) == 2, "MANIFEST lists 2 messages", man)
    check(env.count("--domain", "e.test") == 2, "export without --delete keeps the queue")
    r = env.ctl("queue", "export", "--domain", "e.test", xdir, "--delete")
    with open(os.path.join(xdir, "MANIFEST")) as f:
        man = [ln for ln in f if not ln.startswith("#")]
    check(r.returncode == 0 and len(man) == 2 and env.count("--domain", "e.test") == 0,
          "re-export with --delete: nothing written twice, queue emptied", (r, man))

    # stats and site list
    smtp(env.port2, "s@sender.test", ["u@b.test"], "b2")
    st = env.ctl_json("stats")
    sites = {s["name"]: s for s in (st or {}).get("sites", [])}
    check(st is not None and sites.get("branch2", {}).get("messages") == 1 and
          sites.get("default", {}).get("messages") == 0, "stats --json per site", st)
    r = env.ctl("stats")
    check(r.returncode == 0 and "branch2" in r.stdout and "b.test" in r.stdout,
          "stats human output lists site and domain", r.stdout)
    sl = env.ctl_json("site", "list")
    names = [s.get("name") for s in (sl or {}).get("sites", [])]
    check(names == ["default", "branch2"], "site list --json names both sites", sl)

    # pause / resume through the running daemon
    r = env.ctl("site", "pause", "branch2")
    check(r.returncode == 0 and "not running" not in r.stdout, "site pause via queued", r)
    code, text = smtp(env.port2, "s@sender.test", ["u@b.test"], "paused")
    check(400 <= code < 500, "paused site refuses new mail with 4xx", (code, text))
    check(env.ctl("site", "resume", "branch2").returncode == 0, "site resume")
    code, text = smtp(env.port2, "s@sender.test", ["u@b.test"], "b3")
    check(code == 250, "resumed site accepts mail", (code, text))

    # default drain (ETRN runs through queued) empties branch2 into the sink
    before = env.cust.count()
    r = env.ctl("site", "drain", "branch2", timeout=200)
    check(r.returncode == 0 and env.count("--site", "branch2") == 0,
          "site drain branch2 (ETRN mode) empties the site", r)
    check(env.cust.count() == before + 2, "both branch2 messages delivered",
          env.cust.count() - before)

    # delete: refused while holding mail, then after --move-to
    env.ctl("site", "resume", "branch2")
    smtp(env.port2, "s@sender.test", ["u@b.test"], "b4")
    r = env.ctl("site", "delete", "branch2")
    check(r.returncode == 75 and "1 message" in r.stderr and "site drain branch2" in r.stderr,
          "site delete refused while the site holds mail (names count and drain)", r)
    check(env.ctl("site", "delete", "default").returncode == 64, "site default cannot be deleted")
    r = env.ctl("site", "drain", "branch2", "--move-to", "default")
    check(r.returncode == 0 and env.count("--site", "branch2") == 0 and
          env.count("--site", "default") == 1, "drain --move-to default moves the message", r)
    dom = env.ctl("domain", "show", "b.test")
    check("default" in dom.stdout, "b.test re-homed to site default", dom.stdout)
    r = env.ctl("site", "delete", "branch2")
    check(r.returncode == 0 and "[site branch2]" in r.stdout,
          "site delete succeeds on an empty site and says to remove its section", r)


def group_control(env):
    """control - control socket protocol, limits, permissions, single instance."""
    env.domain_add("a.test", "default", env.cust.port)
    env.start()
    mode = stat.S_IMODE(os.stat(env.sock()).st_mode)
    check(stat.S_ISSOCK(os.stat(env.sock()).st_mode) and mode == 0o600,
          "control socket is a socket with mode 0600", oct(mode))
    check(env.control("PING") == "OK pong", "PING -> OK pong")
    check(env.control("ping") == "OK pong", "verbs are case-insensitive")
    check(env.control("BOGUS x").startswith("ERR"), "unknown request -> ERR")
    check(env.control("FLUSH").startswith("ERR"), "FLUSH without argument -> ERR")
    check(env.control("PAUSE nosuchsite").startswith("ERR"), "PAUSE unknown site -> ERR")
    r = env.control("ETRN a.test")
    check(re.fullmatch(r"[a-z_]+ \d+", r) is not None, "ETRN -> '<status> <pending>'", r)
    r = env.control("ETRN #default")
    check(re.fullmatch(r"[a-z_]+ \d+", r) is not None, "ETRN #site -> '<status> <pending>'", r)
    r = env.control("ETRN nosuch.test")
    check(r.split()[0] in ("unknown", "UNKNOWN"), "ETRN of a domain not held -> unknown", r)

    # over-long line: ERR then close; NUL byte: ERR; connection stays usable otherwise
    data = env.control_raw(b"PING " + b"x" * 5000 + b"\n")
    check(data.startswith(b"ERR") and b"too long" in data, "over-long line -> ERR, closed", data)
    data = env.control_raw(b"PI\x00NG\nPING\nQUIT\n")
    check(data.split(b"\n")[:3] == [b"ERR NUL byte in request", b"OK pong", b"OK bye"],
          "NUL -> ERR; pipelined PING and QUIT answered in order", data)

    # a client that pipelines many requests before reading: all answered, in order
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(env.sock())
    sender = threading.Thread(target=lambda: s.sendall(b"PING\n" * 20000 + b"QUIT\n"),
                              daemon=True)
    sender.start()
    data = b""
    for _ in range(100000):
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    lines = data.split(b"\n")
    check(lines.count(b"OK pong") == 20000 and lines[20000] == b"OK bye",
          "20000 pipelined requests answered in order (output backlog bounded)",
          (lines.count(b"OK pong"), lines[-3:]))

    # connection cap: hold 40 idle connections, the extra ones are refused
    conns = []
    for _ in range(40):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(5)
        c.connect(env.sock())
        conns.append(c)
    time.sleep(0.5)
    refused = 0
    for c in conns:
        c.setblocking(False)
        try:
            if c.recv(256).startswith(b"ERR too many"):
                refused += 1
        except (BlockingIOError, OSError):
            pass
    for c in conns:
        c.close()
    check(refused >= 8, "connections beyond the cap get 'ERR too many'", refused)
    check(wait_for(lambda: env.control("PING") == "OK pong", 5), "still serving after that")

    # slowloris: an idle connection is closed by the server (idle timeout 30 s)
    # (checked cheaply: a partial line does not block other clients)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(env.sock())
    s.sendall(b"PIN")
    check(env.control("PING") == "OK pong", "a partial request does not block others")
    s.close()

    # a second queued on the same state_dir is refused; the first keeps serving
    other = subprocess.run([QUEUED, "-f", "-c", env.conf], capture_output=True, text=True,
                           timeout=30)
    check(other.returncode != 0, "a second queued on the same state_dir exits non-zero",
          other.returncode)
    check(env.control("PING") == "OK pong" and env.proc.poll() is None,
          "the first queued still answers on the control socket")
    # stale socket: kill -9 leaves the file; a new queued removes it and starts
    env.daemon.signal(signal.SIGKILL)
    env.proc.wait(timeout=10)
    env.stop()  # reaped already: only closes the log
    check(os.path.exists(env.sock()), "SIGKILL leaves a stale control socket")
    try:
        env.start()
        check(env.control("PING") == "OK pong", "queued starts over a stale socket")
    except RuntimeError as e:
        check(False, "queued starts over a stale socket", e)
    r = env.ctl("queue", "flush", "a.test")
    check(r.returncode == 0 and "flush a.test:" in r.stdout, "queue flush via queuectl", r)
    env.stop()
    r = env.ctl("queue", "flush", "a.test")
    check(r.returncode == 69 and "not running" in r.stderr, "flush with queued down exits 69",
          r)
    r = env.ctl("site", "pause", "branch2")
    check(r.returncode == 0 and "not running" in r.stdout, "pause with queued down: store", r)
    sl = env.ctl_json("site", "list")
    b2 = [s for s in (sl or {}).get("sites", []) if s["name"] == "branch2"]
    check(b2 and b2[0]["paused"] is True, "site list shows branch2 paused", sl)


PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"'
                       r'(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? (?P<value>\S+)$')


def prom_check(text):
    """prom_check - problems with a Prometheus text exposition (0.0.4); [] = valid."""
    problems, types, samples, seen_help = [], {}, [], set()
    for ln in text.split("\n"):
        if ln == "":
            continue
        if ln.startswith("# HELP ") or ln.startswith("# TYPE "):
            parts = ln.split(" ", 3)
            if len(parts) < 4:
                problems.append("short comment: " + ln)
            elif ln.startswith("# TYPE "):
                if parts[2] in types:
                    problems.append("TYPE twice: " + parts[2])
                types[parts[2]] = parts[3]
                if parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    problems.append("bad type: " + ln)
            else:
                if parts[2] in seen_help:
                    problems.append("HELP twice: " + parts[2])
                seen_help.add(parts[2])
            continue
        m = PROM_LINE.match(ln)
        if not m:
            problems.append("bad sample line: " + ln)
            continue
        name, value = m.group(1), m.group("value")
        try:
            fval = float(value)
        except ValueError:
            problems.append("bad value: " + ln)
            fval = 0.0
        fam = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in types and fam not in types:
            problems.append("sample before/without TYPE: " + ln)
        if types.get(name) == "counter" and not name.endswith("_total"):
            problems.append("counter without _total: " + name)
        if not name.startswith("holdmx_"):
            problems.append("missing holdmx_ prefix: " + name)
        samples.append((name, m.group(2) or "", fval))
    # histogram: cumulative buckets ending in +Inf == _count
    for fam, t in types.items():
        if t != "histogram":
            continue
        buckets = [v for n, l, v in samples if n == fam + "_bucket"]
        count = [v for n, l, v in samples if n == fam + "_count"]
        if not buckets or buckets != sorted(buckets) or not count or buckets[-1] != count[0]:
            problems.append("histogram %s buckets not cumulative or +Inf != _count" % fam)
        if not any('le="+Inf"' in l for n, l, v in samples if n == fam + "_bucket"):
            problems.append("histogram %s has no +Inf bucket" % fam)
    return problems


def group_metrics(env):
    """metrics - GET /metrics format and queue gauges."""
    env.domain_add("a.test", "default")
    env.domain_add("b.test", "branch2")
    env.start()
    smtp(env.port, "s@sender.test", ["u@a.test"], "m1")
    smtp(env.port, "s@sender.test", ["u@a.test"], "m2")
    smtp(env.port2, "s@sender.test", ["u@b.test"], "m3")
    url = "http://127.0.0.1:%d/metrics" % env.mport
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            ctype, text = r.headers.get("Content-Type", ""), r.read().decode()
    except OSError as e:
        check(False, "GET /metrics answers", e)
        return
    check(ctype.startswith("text/plain") and "version=0.0.4" in ctype,
          "Content-Type text/plain; version=0.0.4", ctype)
    problems = prom_check(text)
    check(problems == [], "exposition format valid (own checker)", problems[:10])
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        check(p.returncode == 0, "promtool check metrics", p.stdout + p.stderr)
    else:
        log("note: promtool not installed; only the Python format check ran")
    check('holdmx_queue_messages{site="default"} 2' in text, "queue gauge for default is 2")
    check('holdmx_queue_messages{site="branch2"} 1' in text, "queue gauge for branch2 is 1")
    check('holdmx_domain_messages{domain="a.test"} 2' in text, "domain gauge for a.test is 2")
    for fam in ("holdmx_etrn_requests_total", "holdmx_atrn_requests_total",
                "holdmx_auth_failures_total", "holdmx_sessions_open",
                "holdmx_commit_seconds_bucket", "holdmx_accepted_messages_total"):
        check(fam in text, "family %s present" % fam)
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/nope" % env.mport, timeout=10)
        check(False, "other paths get 404")
    except urllib.error.HTTPError as e:
        check(e.code == 404, "other paths get 404", e.code)
    s = socket.create_connection(("127.0.0.1", env.mport), timeout=10)
    s.sendall(b"GARBAGE \x00\x01\r\n\r\n")
    try:
        s.recv(1024)
    except OSError:
        pass
    s.close()
    check(wait_for(lambda: env.proc.poll() is None and env.listening(env.mport), 5),
          "garbage request does not hurt queued")


def inject_many(port, n, rcpt):
    """inject_many - n messages of 1 KiB with smtp-source (10 sessions); the exit code."""
    p = subprocess.run(["smtp-source", "-s", "10", "-m", str(n), "-l", "1024", "-f",
                        "s@x.test", "-t", rcpt, "127.0.0.1:%d" % port],
                       capture_output=True, text=True, timeout=500)
    if p.returncode != 0:
        log("smtp-source: %s %s" % (p.stdout[-300:], p.stderr[-300:]))
    return p.returncode


def site_count(env, site):
    """site_count - messages on site from stats --json (-1 on failure)."""
    st = env.ctl_json("stats")
    for s in (st or {}).get("sites", []):
        if s["name"] == site:
            return s["messages"]
    return -1


def interrupted_run(env, args, site, total):
    """interrupted_run - start queuectl, SIGINT it about halfway; returns (rc, stderr)."""
    p = subprocess.Popen([QUEUECTL, "-c", env.conf] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    # wait until roughly a third has moved (bounded), then interrupt
    wait_for(lambda: p.poll() is not None or 0 <= site_count(env, site) <= total * 2 // 3, 300,
             0.1)
    if p.poll() is None:
        os.kill(p.pid, signal.SIGINT)
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=10)
    return p.returncode, err


def group_drain(env, n=10000):
    """drain - 10,000 messages: --move-to and --export, each interrupted and resumed."""
    if shutil.which("smtp-source") is None:
        skip("smtp-source (postfix) not installed")
    env.domain_add("d.test", "branch2")
    env.start()
    t0 = time.time()
    rc = inject_many(env.port2, n, "u@d.test")
    check(rc == 0, "smtp-source injected %d messages (%.0fs)" % (n, time.time() - t0))
    check(wait_for(lambda: site_count(env, "branch2") == n, 60), "branch2 holds %d" % n,
          site_count(env, "branch2"))

    rc, err = interrupted_run(env, ["site", "drain", "branch2", "--move-to", "default"],
                              "branch2", n)
    b, d = site_count(env, "branch2"), site_count(env, "default")
    check(rc == 130 and "interrupted" in err, "SIGINT stops the move with exit 130",
          (rc, err[-400:]))
    check(b + d == n and 0 < b < n, "after the interruption: %d + %d = %d" % (b, d, n))
    check("drain: " in err and "msg/s" in err, "plain progress lines when not a terminal",
          err[-300:])
    r = env.ctl("site", "drain", "branch2", "--move-to", "default", timeout=500)
    check(r.returncode == 0, "re-run of the move completes", r.stderr[-400:])
    check(site_count(env, "branch2") == 0 and site_count(env, "default") == n,
          "all %d messages on default, none lost or duplicated" % n)
    check("default" in env.ctl("domain", "show", "d.test").stdout, "d.test re-homed to default")
    doc = env.ctl_json("queue", "list", "--site", "default")
    ids = ids_of(doc)
    check(len(ids) == n and len(set(ids)) == n, "queue list: %d distinct ids" % n, len(ids))

    xdir = os.path.join(env.dir, "drained")
    rc, err = interrupted_run(env, ["site", "drain", "default", "--export", xdir], "default", n)
    left = site_count(env, "default")
    with open(os.path.join(xdir, "MANIFEST")) as f:
        man = [ln.split()[0] for ln in f if not ln.startswith("#")]
    check(rc == 130 and 0 < left < n and len(man) + left in (n, n + 1),
          "export interrupted: manifest %d + queued %d covers %d" % (len(man), left, n),
          (rc, err[-300:]))
    r = env.ctl("site", "drain", "default", "--export", xdir, timeout=500)
    check(r.returncode == 0 and site_count(env, "default") == 0, "re-run of the export completes",
          r.stderr[-400:])
    with open(os.path.join(xdir, "MANIFEST")) as f:
        man = [ln.split()[0] for ln in f if not ln.startswith("#")]
    emls = [f for f in os.listdir(xdir) if f.endswith(".eml")]
    tmps = [f for f in os.listdir(xdir) if f.endswith(".tmp")]
    check(len(man) == n and len(set(man)) == n and set(man) == set(ids),
          "MANIFEST lists each of the %d messages exactly once" % n, (len(man), len(set(man))))
    check(len(emls) == n and not tmps, "%d .eml files, no temporaries" % n, (len(emls), tmps))
    with open(os.path.join(xdir, emls[0]), "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    check(msg["Return-Path"] == "<s@x.test>" and msg["X-Envelope-To"] == "<u@d.test>",
          "exported file keeps the envelope", dict(msg.items()))


def group_reload(env):
    """reload - SIGHUP with a config that drops a non-empty site is refused."""
    env.domain_add("b.test", "branch2")
    env.start()
    check(smtp(env.port2, "s@sender.test", ["u@b.test"], "b1")[0] == 250, "b1 on branch2")
    env.write_conf(branch2=False)
    os.kill(env.proc.pid, signal.SIGHUP)
    refused = wait_for(lambda: re.search(r"reload refused.*branch2", env.log_text()), 10)
    check(refused, "reload dropping non-empty branch2 refused, naming the site",
          env.log_text()[-600:])
    check(env.proc.poll() is None and env.control("PING") == "OK pong", "queued still serving")
    check(env.listening(env.port2), "branch2 still listening (old configuration kept)")
    code, _ = smtp(env.port, "s@sender.test", ["u@b.test"], "via default")
    check(code == 250 or 400 <= code < 600, "default site still answers SMTP")
    # empty branch2 with the old configuration, then the reload goes through
    old = os.path.join(env.dir, "old.conf")
    env.write_conf(branch2=True, path=old)
    r = env.ctl("site", "drain", "branch2", "--move-to", "default", conf=old)
    check(r.returncode == 0 and env.count("--site", "branch2") == 0, "drain --move-to default", r)
    os.kill(env.proc.pid, signal.SIGHUP)
    check(wait_for(lambda: not env.listening(env.port2), 10),
          "after draining, the reload drops branch2's listener", env.log_text()[-400:])
    check(env.proc.poll() is None, "queued running after the reload")


GROUPS = {"queue": group_queue, "control": group_control, "metrics": group_metrics,
          "drain": group_drain, "reload": group_reload}


def main(argv):
    """main - run one group in a fresh environment."""
    if len(argv) != 2 or argv[1] not in GROUPS:
        print(__doc__, file=sys.stderr)
        return 2
    need_exec(QUEUED, QUEUECTL)
    env = Env(argv[1])
    try:
        GROUPS[argv[1]](env)
    except Exception as e:  # a harness error is a failure, with the daemon log
        check(False, "group %s ran to the end" % argv[1], repr(e))
    finally:
        if FAILS:
            log("----- queued log (tail)\n" + env.log_text()[-3000:])
        env.cleanup()
    log("%d check(s) failed" % len(FAILS) if FAILS else "all checks passed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
