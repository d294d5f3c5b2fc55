#!/usr/bin/env python3
"""sink.py - receiving SMTP server for the holdmx end-to-end tests.

Stands in for a customer's MTA (behind fetchmail, or reached by holdmx's ETRN
delivery) and for the final destination of DSNs relayed by Postfix.  Python
stdlib only (asyncio).

Every accepted message is stored in its own file in --store:
    NNNNNN-PID.eml    the message exactly as received (dot-unstuffed, CRLF)
    NNNNNN-PID.json   envelope sidecar: mail_from, rcpt_to, helo, peer, time
The .json is written first and the .eml is renamed into place last, so a
reader that counts *.eml never sees a half-written message.

Per-recipient replies are configurable:  --rcpt-reply 'PATTERN=CODE TEXT'
(fnmatch pattern on the lower-cased address, first match wins), for example
--rcpt-reply 'reject*@cust1.test=550 5.1.1 no such user'.

Prints "ready ADDR PORT" on stdout once listening (--port 0 lets the OS pick).
Every byte exchanged goes to --log as C:/S: lines when --log is given.
Bounded: idle timeout per command, line length limit, message size limit.
"""
import argparse
import asyncio
import fnmatch
import json
import os
import sys
import time

MAX_LINE = 4096
SEQ = [0]


def parse_rcpt_reply(spec):
    """parse_rcpt_reply - 'PATTERN=CODE TEXT' -> (pattern, code, line)."""
    pat, sep, reply = spec.partition("=")
    if not sep or len(reply) < 3 or not reply[:3].isdigit():
        raise argparse.ArgumentTypeError("expected PATTERN=CODE TEXT: %r" % spec)
    return (pat.lower(), int(reply[:3]), reply)


def extract_path(arg, keyword):
    """extract_path - the <address> after FROM:/TO:, or None when malformed."""
    if not arg.upper().startswith(keyword):
        return None
    rest = arg[len(keyword):].strip()
    if not rest.startswith("<"):
        return None
    end = rest.find(">")
    if end < 0:
        return None
    return rest[1:end]


class SinkSession:
    """SinkSession - one SMTP server session (state: greeted/mail/rcpt)."""

    def __init__(self, reader, writer, args, logf):
        self.r, self.w, self.a, self.logf = reader, writer, args, logf
        self.helo = None
        self.mail_from = None
        self.rcpts = []
        self.peer = "%s:%d" % writer.get_extra_info("peername")[:2]

    def log(self, tag, data):
        """log - transcript line (only with --log)."""
        if self.logf:
            self.logf.write("%.3f %s %s %r\n" % (time.time(), self.peer, tag, data))
            self.logf.flush()

    async def send(self, line):
        """send - one reply line, CRLF added."""
        data = line.encode() + b"\r\n"
        self.log("S:", data)
        self.w.write(data)
        await self.w.drain()

    async def readline(self):
        """readline - one line with timeout and length limit; b'' on EOF."""
        try:
            data = await asyncio.wait_for(self.r.readuntil(b"\n"), self.a.timeout)
        except asyncio.IncompleteReadError as e:
            data = e.partial
            if data:
                self.log("C:", data)
            return b""
        except asyncio.LimitOverrunError:
            raise ValueError("line too long")
        self.log("C:", data)
        return data

    def reset(self):
        """reset - forget the current transaction."""
        self.mail_from = None
        self.rcpts = []

    def rcpt_reply(self, addr):
        """rcpt_reply - configured reply for this recipient, default 250."""
        for pat, code, line in self.a.rcpt_reply:
            if fnmatch.fnmatchcase(addr.lower(), pat):
                return code, line
        return 250, "250 2.1.5 Ok"

    def store(self, body):
        """store - write sidecar then message file (renamed into place)."""
        SEQ[0] += 1
        base = os.path.join(self.a.store, "%06d-%d" % (SEQ[0], os.getpid()))
        env = {"mail_from": self.mail_from, "rcpt_to": self.rcpts, "helo": self.helo,
               "peer": self.peer, "time": time.time(), "size": len(body)}
        with open(base + ".json", "w") as f:
            json.dump(env, f)
        with open(base + ".tmp", "wb") as f:
            f.write(body)
        os.rename(base + ".tmp", base + ".eml")

    async def data(self):
        """data - read the DATA block, unstuff, store; returns the reply."""
        await self.send("354 End data with <CR><LF>.<CR><LF>")
        chunks, size, too_big = [], 0, False
        while True:
            line = await self.readline()
            if not line:
                raise EOFError
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size > self.a.max_size:
                too_big = True
                chunks = []
            if not too_big:
                chunks.append(line)
        if too_big:
            return "552 5.3.4 Message too big"
        if self.a.store:
            self.store(b"".join(chunks))
        return "250 2.0.0 Ok: queued as %d" % SEQ[0]

    async def command(self, verb, arg):
        """command - dispatch one command; returns False to end the session."""
        if verb == "EHLO":
            self.helo = arg
            self.reset()
            for ext in ["sink.test", "PIPELINING", "SIZE %d" % self.a.max_size, "8BITMIME"]:
                await self.send("250-" + ext)
            await self.send("250 ENHANCEDSTATUSCODES")
        elif verb == "HELO":
            self.helo = arg
            self.reset()
            await self.send("250 sink.test")
        elif verb == "MAIL":
            addr = extract_path(arg, "FROM:")
            if addr is None:
                await self.send("501 5.5.4 Syntax: MAIL FROM:<address>")
            elif self.mail_from is not None:
                await self.send("503 5.5.1 Nested MAIL command")
            else:
                self.mail_from = addr
                await self.send("250 2.1.0 Ok")
        elif verb == "RCPT":
            addr = extract_path(arg, "TO:")
            if self.mail_from is None:
                await self.send("503 5.5.1 Need MAIL command")
            elif not addr:
                await self.send("501 5.5.4 Syntax: RCPT TO:<address>")
            else:
                code, line = self.rcpt_reply(addr)
                if code < 300:
                    self.rcpts.append(addr)
                await self.send(line)
        elif verb == "DATA":
            if not self.rcpts:
                await self.send("554 5.5.1 No valid recipients")
            else:
                await self.send(await self.data())
                self.reset()
        elif verb == "RSET":
            self.reset()
            await self.send("250 2.0.0 Ok")
        elif verb == "NOOP":
            await self.send("250 2.0.0 Ok")
        elif verb == "QUIT":
            await self.send("221 2.0.0 Bye")
            return False
        else:
            await self.send("502 5.5.2 Command not recognized")
        return True

    async def run(self):
        """run - greeting, then the command loop."""
        await self.send("220 sink.test ESMTP e2e-sink")
        while True:
            line = await self.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = text.partition(" ")
            if not await self.command(verb.upper(), arg):
                return


async def main():
    """main - parse options, listen, serve until killed."""
    p = argparse.ArgumentParser(description="e2e receiving SMTP server")
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--store", default=None, help="directory for .eml/.json files")
    p.add_argument("--log", default=None, help="transcript file")
    p.add_argument("--rcpt-reply", type=parse_rcpt_reply, action="append", default=[])
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--max-size", type=int, default=64 * 1024 * 1024)
    a = p.parse_args()
    if a.store:
        os.makedirs(a.store, exist_ok=True)
    logf = open(a.log, "a") if a.log else None

    async def handle(r, w):
        s = SinkSession(r, w, a, logf)
        try:
            await s.run()
        except (EOFError, ValueError, ConnectionError, asyncio.TimeoutError) as e:
            s.log("--", "ended: %r" % e)
        finally:
            w.close()

    srv = await asyncio.start_server(handle, a.addr, a.port, limit=MAX_LINE * 16)
    port = srv.sockets[0].getsockname()[1]
    print("ready %s %d" % (a.addr, port), flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
