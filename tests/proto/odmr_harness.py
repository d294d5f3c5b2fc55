#!/usr/bin/env python3
"""odmr_harness.py - test environment for turnd's protocol tests (stdlib only).

Env() builds a private holdmx installation in a temp dir: holdmx.conf with
OS-chosen loopback ports, a sasldb made with saslpasswd2 (realm holdmx) and
sasl/holdmx.conf, an optional self-signed certificate, a receiving sink
(odmr_sink.py) as bounce_relay, then starts queued (mail in) and turnd
(standalone, or supervised by queued) and remembers every PID it started;
cleanup() stops exactly those.  Exits 77 (skip) when a binary is missing.
"""
import json
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile

from hm_harness import Daemon, free_port, make_cert, port_open, read_text, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "Secr3t-alice"

__all__ = ["Env", "PASSWORD", "free_port", "port_open", "wait_until"]


def wait_until(pred, timeout=15.0, step=0.05):
    """wait_until - hm_harness.wait_for with this harness's finer default step."""
    return wait_for(pred, timeout, step)


class Env:
    """Env - one private holdmx instance for a test scenario."""

    def __init__(self, name, supervised=False, tls=False, auth_plain="tls", extra=()):
        self.build = os.environ.get("HOLDMX_BUILD", os.path.join(HERE, "..", "..", "build"))
        self.queued = os.path.join(self.build, "queued", "queued")
        self.queuectl = os.path.join(self.build, "queued", "queuectl")
        self.turnd = os.path.join(self.build, "turnd", "turnd")
        for b in (self.queued, self.queuectl, self.turnd):
            if not os.access(b, os.X_OK):
                print("SKIP: %s not built" % b)
                sys.exit(77)
        for tool in ("saslpasswd2", "openssl"):
            if shutil.which(tool) is None:
                print("SKIP: %s missing" % tool)
                sys.exit(77)
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="turnd-%s." % name)
        self.procs = []
        self.failures = 0
        self.smtp_port, self.odmr_port = free_port(), free_port()
        self.sink_dir = os.path.join(self.dir, "bounces")
        os.mkdir(self.sink_dir)
        self.sink_port = self.start_sink(self.sink_dir)
        self.make_sasl()
        self.pwfile = os.path.join(self.dir, "alice.pw")
        with open(self.pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        self.conf = os.path.join(self.dir, "holdmx.conf")
        self.write_conf(supervised, tls, auth_plain, extra)

    # -- setup -------------------------------------------------------------
    def make_sasl(self):
        """make_sasl - sasldb with alice and bob (realm holdmx) + holdmx.conf."""
        os.mkdir(os.path.join(self.dir, "sasl"))
        db = os.path.join(self.dir, "sasldb2")
        for user, pw in (("alice", PASSWORD), ("bob", "bob-pw"), ("carol", "carol-pw")):
            subprocess.run(["saslpasswd2", "-p", "-c", "-f", db, "-u", "holdmx", user],
                           input=pw.encode(), check=True)
        with open(os.path.join(self.dir, "sasl", "holdmx.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    "sasldb_path: %s\nmech_list: CRAM-MD5 PLAIN LOGIN\n" % db)

    def make_cert(self):
        """make_cert - self-signed certificate for the default site."""
        return make_cert(os.path.join(self.dir, "site.crt"), os.path.join(self.dir, "site.key"))

    def write_conf(self, supervised, tls, auth_plain, extra=()):
        """write_conf - holdmx.conf for this instance (extra: more global keys)."""
        lines = list(extra) + [
            "state_dir = %s/state" % self.dir,
            "sasl_app = holdmx",
            "sasl_conf_dir = %s/sasl" % self.dir,
            "sasl_realm = holdmx",
            "bounce_relay = [127.0.0.1]:%d" % self.sink_port,
            "delivery_port = %d" % free_port(),
            "start_turnd = %s" % ("yes" if supervised else "no"),
            "atrn_total_timeout = 120",
            "",
            "[site default]",
            "hostname = mx.test",
            "smtp_listen = 127.0.0.1:%d" % self.smtp_port,
            "odmr_listen = 127.0.0.1:%d" % self.odmr_port,
            "auth_plain = %s" % auth_plain,
        ]
        if supervised:  # queued finds turnd itself (build tree: ../turnd/turnd)
            lines = [ln for ln in lines if not ln.startswith("turnd_path")]
        else:
            lines.insert(len(extra), "turnd_path = %s" % self.turnd)
        if tls:
            crt, key = self.make_cert()
            lines += ["tls_cert = %s" % crt, "tls_key = %s" % key]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def spawn(self, name, argv):
        """spawn - start a process with its output in DIR/name.log; remember it."""
        d = Daemon(argv, os.path.join(self.dir, name + ".log"))
        self.procs.append(d)
        return d.proc

    def start_sink(self, d):
        """start_sink - odmr_sink.py storing into d; returns its port."""
        pf = os.path.join(d, ".port")
        self.spawn("sink-" + os.path.basename(d), [sys.executable, os.path.join(HERE, "odmr_sink.py"),
                                                  "--dir", d, "--port-file", pf])
        if not wait_until(lambda: os.path.exists(pf), 10):
            self.die("sink did not start")
        with open(pf) as f:
            return int(f.read())

    def start(self, turnd=True):
        """start - queued, then turnd (unless supervised by queued)."""
        self.qd = self.spawn("queued", [self.queued, "-f", "-c", self.conf])
        if not wait_until(lambda: port_open(self.smtp_port), 20):
            self.die("queued does not listen on %d" % self.smtp_port)
        self.td = None
        if turnd:
            self.start_turnd()
        if not wait_until(lambda: port_open(self.odmr_port), 20):
            self.die("turnd does not listen on %d" % self.odmr_port)

    def start_turnd(self):
        """start_turnd - a standalone turnd (self.td); waits for its port."""
        self.td = self.spawn("turnd", [self.turnd, "-f", "-v", "-c", self.conf])
        if not wait_until(lambda: port_open(self.odmr_port), 20):
            self.die("turnd does not listen on %d" % self.odmr_port)

    def ctl(self, *args, check=True):
        """ctl - run queuectl; returns its stdout."""
        r = subprocess.run([self.queuectl, "-c", self.conf] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if check and r.returncode != 0:
            self.die("queuectl %s: %s %s" % (" ".join(args), r.stdout.decode(), r.stderr.decode()))
        return r.stdout.decode()

    def inject(self, rcpts, subject, sender="sender@example.org", extra=""):
        """inject - one message into queued's SMTP port; returns its body bytes."""
        body = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n"
                "Hello %s\r\n.leading dot line\r\n..two dots\r\n%send\r\n"
                % (sender, ", ".join(rcpts), subject, subject.replace(" ", "-"), subject, extra))
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as s:
            s.sendmail(sender, rcpts, body.encode())
        return body.encode()

    def customer(self, *args, timeout=120):
        """customer - run odmr_customer.py against turnd; returns its JSON."""
        argv = [sys.executable, os.path.join(HERE, "odmr_customer.py"), "--port",
                str(self.odmr_port)] + [str(a) for a in args]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        try:
            return json.loads(r.stdout.decode())
        except ValueError:
            self.die("customer output: %r %r" % (r.stdout, r.stderr))

    def alice(self, *args, **kw):
        """alice - customer authenticated as alice with CRAM-MD5."""
        return self.customer("--user", "alice", "--password-file", self.pwfile, *args, **kw)

    def log(self, name):
        """log - text of DIR/name.log."""
        return read_text(os.path.join(self.dir, name + ".log"))

    # -- checks ------------------------------------------------------------
    def check(self, cond, what, detail=None):
        """check - record one assertion."""
        print("%s: %s" % ("ok  " if cond else "FAIL", what))
        if not cond:
            self.failures += 1
            if detail is not None:
                print("      %s" % (detail,))
        return cond

    def die(self, why):
        """die - abort the scenario (with logs)."""
        print("FATAL: " + why)
        self.dump_logs()
        self.cleanup()
        sys.exit(1)

    def dump_logs(self):
        """dump_logs - tails of every daemon log, for failures."""
        for n in ("queued", "turnd"):
            print("---- %s.log (tail) ----" % n)
            print("\n".join(self.log(n).splitlines()[-40:]))

    def cleanup(self):
        """cleanup - stop exactly the processes we started (by pid); remove the dir."""
        for d in reversed(self.procs):
            d.signal(signal.SIGTERM)
        for d in reversed(self.procs):
            d.stop(timeout=10)
        self.procs = []
        if os.environ.get("KEEP_WORK"):
            print("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def finish(self):
        """finish - exit status of the scenario."""
        if self.failures:
            self.dump_logs()
        self.cleanup()
        print("%s: %d failure(s)" % (self.name, self.failures))
        sys.exit(1 if self.failures else 0)
