#!/usr/bin/env python3
"""hm_harness.py - shared pieces of holdmx's protocol test harnesses
(Python 3 stdlib only); imported by smtpd_harness.py, ctl_harness.py and
odmr_harness.py, which run from this directory.

What lives here, once:
  - paths of the binaries under test ($HOLDMX_BUILD) and the I/O timeout;
  - check()/log()/skip() reporting (FAILS collects failed checks; exit 77
    is ctest's "skipped");
  - bounded polling (wait_for), loopback port picking (free_port: the OS
    chooses), port_open, a self-signed test certificate (make_cert);
  - Daemon: one process we started, recorded by pid, stopped by that pid
    only (SIGTERM, bounded wait, SIGKILL as a last resort);
  - QueuedBase: temp dir + queued -f + queuectl plumbing that the queued
    harnesses extend with their own configuration;
  - Client: a raw SMTP client (exact bytes: pipelining, NUL, bare LF);
    smtp_transaction(): one plain MAIL/RCPT/DATA transaction;
  - Sink: a threaded minimal SMTP receiver (customer MTA or bounce relay).

Every loop is bounded in count and time; only loopback addresses are used.
"""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("HOLDMX_BUILD", "")
SRC = os.environ.get("HOLDMX_SRC", "")
QUEUED = os.path.join(BUILD, "queued", "queued")
QUEUECTL = os.path.join(BUILD, "queued", "queuectl")
TURND = os.path.join(BUILD, "turnd", "turnd")
IO_TIMEOUT = 10.0
FAILS = []

# ---------------------------------------------------------------- reporting


def log(msg):
    """log - progress line on stdout (ctest shows it on failure)."""
    print(msg, flush=True)


def check(cond, what, detail=""):
    """check - record one expectation; returns cond."""
    if cond:
        log("ok   - %s" % what)
    else:
        log("FAIL - %s %s" % (what, str(detail)[:1500]))
        FAILS.append(what)
    return cond


def skip(why):
    """skip - exit 77 (ctest SKIP_RETURN_CODE)."""
    log("SKIP: %s" % why)
    sys.exit(77)


def need_exec(*paths):
    """need_exec - skip unless every path is an executable file."""
    for p in paths:
        if not os.access(p, os.X_OK):
            skip("%s not built" % p)


# ---------------------------------------------------------------- waiting, ports


def wait_for(fn, timeout=15.0, step=0.2):
    """wait_for - poll fn() until true or timeout (bounded in count too); the last value."""
    deadline = time.monotonic() + timeout
    val = fn()
    for _ in range(int(timeout / step) + 2):
        if val or time.monotonic() >= deadline:
            break
        time.sleep(step)
        val = fn()
    return val


def free_port():
    """free_port - a loopback port the OS just handed out (then released)."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def control_request(path, line, timeout=5.0):
    """control_request - one request line on queued's control socket at path; the reply line."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        data = b""
        for _ in range(1000):  # the socket timeout bounds the time
            if b"\n" in data:
                break
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return data.decode(errors="replace").strip()


def port_open(port, timeout=0.5):
    """port_open - something accepts on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def make_cert(crt, key, cn="mx.test"):
    """make_cert - a self-signed RSA certificate and key for cn (openssl req)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=" + cn, "-keyout", key, "-out", crt],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return crt, key


def read_text(path):
    """read_text - a log file's text ("" when missing)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ---------------------------------------------------------------- processes


class Daemon:
    """Daemon - one process started here, output appended to a log file."""

    def __init__(self, argv, logpath):
        self.logpath = logpath
        self.logfp = open(logpath, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.logfp, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid

    def poll(self):
        """poll - exit status, or None while running."""
        return self.proc.poll()

    def signal(self, sig):
        """signal - send sig to our process (by its recorded pid) if it still runs."""
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, timeout=15):
        """stop - SIGTERM (by pid), bounded wait, SIGKILL as a last resort; the exit status."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if not self.logfp.closed:
            self.logfp.close()
        return self.proc.returncode


class QueuedBase:
    """QueuedBase - temp dir, holdmx.conf path, our queued -f and queuectl."""

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.conf = os.path.join(self.dir, "holdmx.conf")
        self.logf = os.path.join(self.dir, "queued.log")
        self.daemon = None

    @property
    def proc(self):
        """proc - the queued Popen object (None before start)."""
        return self.daemon.proc if self.daemon else None

    def start_queued(self, ready, extra_args=(), timeout=15):
        """start_queued - queued -f -c conf; wait until ready() or it exits."""
        self.daemon = Daemon([QUEUED, "-f", "-c", self.conf] + list(extra_args), self.logf)
        ok = wait_for(lambda: self.daemon.poll() is not None or ready(), timeout, 0.1)
        if self.daemon.poll() is not None:
            raise RuntimeError("queued exited with %s:\n%s" % (self.daemon.poll(),
                                                               self.log_text()))
        if not ok:
            raise RuntimeError("queued did not start:\n" + self.log_text())

    def stop(self):
        """stop - stop our queued (by pid); its exit status (None if never started)."""
        return self.daemon.stop() if self.daemon else None

    def log_text(self):
        """log_text - the queued log so far."""
        return read_text(self.logf)

    def wait_log(self, pattern, timeout=10):
        """wait_log - until the queued log matches pattern (bounded)."""
        return bool(wait_for(lambda: re.search(pattern, self.log_text()), timeout, 0.1))

    def ctl(self, *args, conf=None, timeout=120):
        """ctl - run queuectl against our config (text output)."""
        return subprocess.run([QUEUECTL, "-c", conf or self.conf] + list(args),
                              capture_output=True, text=True, timeout=timeout)

    def ctl_ok(self, *args):
        """ctl_ok - run queuectl; raise RuntimeError unless it exits 0."""
        r = self.ctl(*args)
        if r.returncode != 0:
            raise RuntimeError("queuectl %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def remove_dir(self, keep=False):
        """remove_dir - delete the work dir unless keep or $KEEP_WORK."""
        if keep or os.environ.get("KEEP_WORK"):
            log("work dir kept: %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- SMTP client


class Client:
    """Client - a raw SMTP client on one socket."""

    def __init__(self, port, greet=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.buf = b""
        self.greeting = self.reply() if greet else None

    def send(self, data):
        """send - raw bytes (str is encoded)."""
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self, timeout=IO_TIMEOUT):
        """line - one reply line, or None at EOF."""
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no reply line")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r").decode("latin-1")

    def reply(self, timeout=IO_TIMEOUT):
        """reply - (code, [lines]) of one possibly multi-line reply; (0, []) at EOF."""
        lines = []
        for _ in range(1000):
            ln = self.line(timeout)
            if ln is None:
                return (0, lines)
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return (int(ln[:3]) if ln[:3].isdigit() else -1, lines)
        raise ValueError("reply longer than 1000 lines")

    def cmd(self, text):
        """cmd - send one command line, return its reply."""
        self.send(text + "\r\n")
        return self.reply()

    def start_data(self, sender, rcpt):
        """start_data - MAIL FROM:<sender>, RCPT TO:<rcpt>, DATA; the DATA reply."""
        self.cmd("MAIL FROM:<%s>" % sender)
        self.cmd("RCPT TO:<%s>" % rcpt)
        return self.cmd("DATA")

    def eof(self, timeout=IO_TIMEOUT):
        """eof - True when the server closes the connection within timeout."""
        try:
            return self.line(timeout) is None
        except (TimeoutError, OSError):
            return False

    def starttls(self):
        """starttls - wrap the socket (no verification: self-signed test cert)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname="mx.test")

    def close(self):
        """close - close the socket, ignoring errors."""
        try:
            self.sock.close()
        except OSError:
            pass


def smtp_transaction(port, sender, rcpts, data, ehlo="client.test", stop_on_error=False):
    """smtp_transaction - EHLO, MAIL, RCPTs, DATA with data (dot-terminated by the
    caller), QUIT.  Returns (code, [lines]) of the last reply that mattered: the
    end-of-data reply, or the failing one when stop_on_error (else DATA's)."""
    c = Client(port)
    try:
        c.cmd("EHLO " + ehlo)
        res = c.cmd("MAIL FROM:<%s>" % sender)
        for r in rcpts:
            if stop_on_error and res[0] >= 400:
                break
            res = c.cmd("RCPT TO:<%s>" % r)
        if stop_on_error and res[0] >= 400:
            c.cmd("QUIT")
            return res
        res = c.cmd("DATA")
        if res[0] != 354:
            return (res[0], [] if not stop_on_error else res[1])
        c.send(data)
        res = c.reply()
        c.cmd("QUIT")
        return res
    finally:
        c.close()


# ---------------------------------------------------------------- SMTP sink


class Sink(threading.Thread):
    """Sink - a minimal SMTP receiver (customer MTA or bounce relay); one thread
    per connection; messages are (MAIL line, [RCPT lines], body bytes)."""

    def __init__(self, dsn=False, start=True):
        super().__init__(daemon=True)
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.srv.settimeout(0.5)
        self.port = self.srv.getsockname()[1]
        self.ehlo = b"250-sink.test\r\n250-8BITMIME\r\n" + (b"250-DSN\r\n" if dsn else b"") + \
            b"250 PIPELINING\r\n"
        self.messages = []
        self.lock = threading.Lock()
        self.stopping = False
        if start:
            self.start()

    def run(self):
        """run - accept loop until close()."""
        while not self.stopping:
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        """serve - one connection; errors end it quietly."""
        try:
            self.session(conn)
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def data(self, f):
        """data - read a dot-terminated body, undoing dot-stuffing (bounded)."""
        body = b""
        for _ in range(1000000):  # the socket timeout bounds the time
            dl = f.readline(65536)
            if not dl or dl == b".\r\n":
                break
            body += dl[1:] if dl.startswith(b".") else dl
        return body

    def session(self, conn):
        """session - the SMTP dialogue: everything is accepted."""
        conn.settimeout(IO_TIMEOUT)
        f = conn.makefile("rb")
        conn.sendall(b"220 sink.test ESMTP\r\n")
        mail, rcpts = None, []
        for _ in range(100000):
            ln = f.readline(4096)
            if not ln:
                return
            verb = ln[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(self.ehlo)
            elif verb == b"MAIL":
                mail, rcpts = ln.strip().decode(errors="replace"), []
                conn.sendall(b"250 ok\r\n")
            elif verb == b"RCPT":
                rcpts.append(ln.strip().decode(errors="replace"))
                conn.sendall(b"250 ok\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go\r\n")
                body = self.data(f)
                with self.lock:
                    self.messages.append((mail, rcpts, body))
                conn.sendall(b"250 stored\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")

    def count(self):
        """count - messages received so far."""
        with self.lock:
            return len(self.messages)

    def bodies(self):
        """bodies - the bodies received so far."""
        with self.lock:
            return [m[2] for m in self.messages]

    def wait(self, n, timeout):
        """wait - until n messages arrived (bounded)."""
        return bool(wait_for(lambda: self.count() >= n, timeout, 0.1))

    def close(self):
        """close - stop accepting."""
        self.stopping = True
        self.srv.close()
