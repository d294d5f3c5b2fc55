#!/usr/bin/env python3
"""odmr_customer.py - fast ODMR (RFC 2645) customer for the drain benchmark.

Used by bench/bench_drain.sh when contrib/odmr-customer is not built (that
C tool takes -H -p -u -P DOMAINS and prints "messages=N ... rate=R msg/s";
bench_drain.sh reads both).  This one:

  odmr_customer.py --host H --port P --user U --password-file F --domains D
                   [--mech CRAM-MD5] [--store DIR] [--timeout 60]

Connects, EHLO, AUTH (CRAM-MD5 by default, like fetchmail), ATRN D, and after
the 250 becomes the SMTP server on the same socket: sends its 220, accepts
every MAIL/RCPT, reads DATA, until the provider's QUIT.  Time is measured
from the ATRN command to the 221.  Prints one line:
  messages N bytes B seconds S msg/s R
Exit: 0 ok, 1 = 453 (no mail), 2 = other error, 3 = AUTH failed.
Stdlib only; reads with a large buffer and writes each reply at once.
"""
import argparse
import base64
import hmac
import os
import socket
import sys
import time


class Conn:
    """Conn - line-buffered socket with a read deadline per call."""

    def __init__(self, sock, timeout):
        self.s = sock
        self.s.settimeout(timeout)
        self.buf = b""

    def line(self):
        """line - one CRLF-terminated line without the CRLF; EOFError at EOF."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + 1:]
                return out.rstrip(b"\r")
            chunk = self.s.recv(262144)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
            if len(self.buf) > 1 << 20 and b"\n" not in self.buf:
                raise ValueError("line too long")

    def reply(self):
        """reply - (code, [lines]) of a possibly multi-line reply."""
        lines = []
        while True:
            ln = self.line().decode("utf-8", "replace")
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]) if ln[:3].isdigit() else 0, lines

    def send(self, text):
        """send - text (str) as-is."""
        self.s.sendall(text.encode())


def auth(c, user, password, mech):
    """auth - AUTH mech; returns the final reply code."""
    if mech == "CRAM-MD5":
        c.send("AUTH CRAM-MD5\r\n")
        code, lines = c.reply()
        if code != 334:
            return code
        chal = base64.b64decode(lines[-1][4:])
        dig = hmac.new(password.encode(), chal, "md5").hexdigest()
        c.send(base64.b64encode(("%s %s" % (user, dig)).encode()).decode() + "\r\n")
    elif mech == "PLAIN":
        tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        c.send("AUTH PLAIN %s\r\n" % tok)
    else:
        raise ValueError("unsupported mechanism %s" % mech)
    return c.reply()[0]


def serve(c, store):
    """serve - the reversed session; returns (messages, bytes)."""
    msgs = nbytes = 0
    c.send("220 customer.test ESMTP bench\r\n")
    while True:
        ln = c.line()
        verb = ln[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            c.send("250-customer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n")
        elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            c.send("250 2.0.0 Ok\r\n")
        elif verb == b"DATA":
            c.send("354 go ahead\r\n")
            size, body = 0, []
            while True:
                d = c.line()
                if d == b".":
                    break
                size += len(d) + 2
                if store:
                    body.append(d[1:] if d.startswith(b".") else d)
            msgs += 1
            nbytes += size
            if store:
                with open(os.path.join(store, "%06d.eml" % msgs), "wb") as f:
                    f.write(b"\r\n".join(body) + b"\r\n")
            c.send("250 2.0.0 Ok: %d\r\n" % msgs)
        elif verb == b"QUIT":
            c.send("221 2.0.0 Bye\r\n")
            return msgs, nbytes
        else:
            c.send("502 5.5.2 Command not recognized\r\n")


def main():
    """main - the whole ODMR exchange, then the result line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--domains", required=True)
    p.add_argument("--mech", default="CRAM-MD5", choices=["CRAM-MD5", "PLAIN"])
    p.add_argument("--store", default=None)
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    with open(a.password_file) as f:
        password = f.read().rstrip("\r\n")
    if a.store:
        os.makedirs(a.store, exist_ok=True)
    try:
        c = Conn(socket.create_connection((a.host, a.port), timeout=a.timeout), a.timeout)
        c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if c.reply()[0] != 220:
            return 2
        c.send("EHLO customer.test\r\n")
        if c.reply()[0] != 250:
            return 2
        code = auth(c, a.user, password, a.mech)
        if code != 235:
            print("AUTH failed: %d" % code, file=sys.stderr)
            return 3
        t0 = time.monotonic()
        c.send("ATRN %s\r\n" % a.domains)
        code, lines = c.reply()
        if code == 453:
            print("messages 0 bytes 0 seconds 0 msg/s 0")
            return 1
        if code != 250:
            print("ATRN refused: %s" % lines[-1], file=sys.stderr)
            return 2
        msgs, nbytes = serve(c, a.store)
        dt = time.monotonic() - t0
    except (OSError, EOFError, ValueError) as e:
        print("odmr_customer: %s" % e, file=sys.stderr)
        return 2
    print("messages %d bytes %d seconds %.3f msg/s %.0f" % (msgs, nbytes, dt, msgs / dt if dt > 0 else 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
