#!/usr/bin/env python3
"""odmr_customer.py - scripted ODMR (RFC 2645) customer for turnd's tests.

Speaks to turnd as the customer: EHLO, optional STARTTLS, optional AUTH,
optional raw commands, then ATRN or TURN.  On a 250 it turns the same socket
(TLS included) around and acts as the SMTP *server*: sends 220, answers
EHLO/MAIL/RCPT/DATA/RSET/QUIT, stores each message in its own file, and can
inject failures (a reply code per recipient, a disconnect in the middle of
DATA).  Prints one JSON object with what happened.  Every wait is bounded.

  odmr_customer.py --port P [--user U --password-file F --mech CRAM-MD5]
                   [--starttls] [--cmd "LINE"]... [--atrn "a.test,b.test" | --turn]
                   [--store DIR] [--rcpt-reply ADDR=CODE]... [--drop-in-data N]
                   [--pipeline "EXTRA"] [--timeout S]
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import ssl
import sys
import time


class Conn:
    """Conn - a line-oriented socket (plain or TLS) with a bounded reader."""

    def __init__(self, sock, timeout):
        self.sock = sock
        self.buf = b""
        self.sock.settimeout(timeout)

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        for _ in range(100000):
            i = self.buf.find(b"\n")
            if i >= 0:
                out, self.buf = self.buf[: i + 1], self.buf[i + 1:]
                return out
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        raise EOFError("line too long")

    def reply(self):
        """reply - (code, [lines]) of one possibly multi-line reply."""
        lines = []
        for _ in range(1000):
            ln = self.line().decode("utf-8", "replace").rstrip("\r\n")
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]) if ln[:3].isdigit() else 0, lines
        raise EOFError("reply too long")

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.reply()


def do_auth(c, mech, user, password, res):
    """do_auth - AUTH with CRAM-MD5, PLAIN or LOGIN; returns the final code."""
    t0 = time.monotonic()
    if mech == "PLAIN":
        tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        code, lines = c.cmd("AUTH PLAIN " + tok)
    elif mech == "LOGIN":
        code, lines = c.cmd("AUTH LOGIN")
        if code == 334:
            code, lines = c.cmd(base64.b64encode(user.encode()).decode())
        if code == 334:
            code, lines = c.cmd(base64.b64encode(password.encode()).decode())
    else:
        code, lines = c.cmd("AUTH " + mech)
        if code == 334:
            chal = base64.b64decode(lines[-1][4:])
            dig = hmac.new(password.encode(), chal, hashlib.md5).hexdigest()
            code, lines = c.cmd(base64.b64encode((user + " " + dig).encode()).decode())
    res["auth"] = code
    res["auth_text"] = lines[-1]
    res["auth_seconds"] = round(time.monotonic() - t0, 3)
    return code


def serve(c, a, res):
    """serve - the reversed session: we are the SMTP server now."""
    replies = dict(x.split("=", 1) for x in a.rcpt_reply)
    msgs, rcpts, mail_from, n = [], [], None, 0
    c.send(b"220 customer.test ESMTP odmr_customer\r\n")
    res["got_ehlo"] = None
    for _ in range(100000):
        raw = c.line()
        ln = raw.decode("utf-8", "replace").rstrip("\r\n")
        verb = ln.split(" ", 1)[0].upper()
        res.setdefault("commands", []).append(verb)
        if verb in ("EHLO", "HELO"):
            res["got_ehlo"] = ln
            c.send(b"250-customer.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
        elif verb == "MAIL":
            mail_from, rcpts = ln[10:].strip(), []
            c.send(b"250 2.1.0 Ok\r\n")
        elif verb == "RCPT":
            addr = ln[8:].strip().split(" ")[0].strip("<>")
            code = replies.get(addr, "250")
            if code.startswith("2"):
                rcpts.append(addr)
            c.send(("%s %s.0.0 rcpt %s\r\n" % (code, code[0], addr)).encode())
        elif verb == "DATA" and not rcpts:
            c.send(b"554 5.5.1 No valid recipients\r\n")
        elif verb == "DATA":
            n += 1
            c.send(b"354 go ahead\r\n")
            body = b""
            for _ in range(10000000):
                l2 = c.line()
                if a.drop_in_data == n and len(body) > 0:
                    res["dropped_in_message"] = n
                    return msgs
                if l2 == b".\r\n":
                    break
                body += l2[1:] if l2.startswith(b".") else l2
            name = None
            if a.store:
                name = os.path.join(a.store, "msg-%d-%d.eml" % (os.getpid(), n))
                with open(name, "wb") as f:
                    f.write(body)
                with open(name + ".json", "w") as f:
                    json.dump({"from": mail_from, "rcpts": rcpts}, f)
            msgs.append({"from": mail_from, "rcpts": rcpts, "size": len(body), "file": name})
            c.send(("250 2.0.0 Ok: message %d\r\n" % n).encode())
        elif verb in ("RSET", "NOOP"):
            c.send(b"250 2.0.0 Ok\r\n")
        elif verb == "QUIT":
            c.send(b"221 2.0.0 Bye\r\n")
            res["quit"] = True
            return msgs
        elif verb == "STARTTLS":
            c.send(b"454 4.7.0 not here\r\n")
        else:
            c.send(b"502 5.5.2 what\r\n")
    return msgs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user")
    p.add_argument("--password-file")
    p.add_argument("--mech", default="CRAM-MD5")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--cmd", action="append", default=[])
    p.add_argument("--atrn")
    p.add_argument("--turn", action="store_true")
    p.add_argument("--pipeline", default=None, help="bytes sent in the same write as ATRN/TURN")
    p.add_argument("--store")
    p.add_argument("--rcpt-reply", action="append", default=[])
    p.add_argument("--drop-in-data", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    res = {}
    sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
    c = Conn(sock, a.timeout)
    try:
        code, lines = c.reply()
        res["greeting"] = lines[0]
        code, lines = c.cmd("EHLO customer.test")
        res["ehlo"] = lines
        if a.starttls:
            code, lines = c.cmd("STARTTLS")
            res["starttls"] = code
            if code == 220:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                c = Conn(ctx.wrap_socket(sock), a.timeout)
                res["tls"] = c.sock.version()
                code, lines = c.cmd("EHLO customer.test")
                res["ehlo"] = lines
        if a.user:
            with open(a.password_file) as f:
                password = f.read().strip()
            do_auth(c, a.mech, a.user, password, res)
        res["cmds"] = []
        for line in a.cmd:
            code, lines = c.cmd(line)
            res["cmds"].append([code, lines[-1]])
        if a.atrn is None and not a.turn:
            c.cmd("QUIT")
            print(json.dumps(res))
            return 0
        verb = "TURN" if a.turn else ("ATRN " + a.atrn if a.atrn else "ATRN")
        extra = a.pipeline.encode().decode("unicode_escape").encode() if a.pipeline else b""
        c.send(verb.encode() + b"\r\n" + extra)
        code, lines = c.reply()
        res["atrn"] = code
        res["atrn_lines"] = lines
        if code == 250:
            res["messages"] = serve(c, a, res)
        else:
            c.cmd("QUIT")
    except (EOFError, OSError, ValueError) as e:
        res["error"] = str(e)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
