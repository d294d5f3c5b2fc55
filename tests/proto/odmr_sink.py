#!/usr/bin/env python3
"""odmr_sink.py - receiving SMTP server for turnd's tests (stdlib only).

Listens on 127.0.0.1 (port 0 = let the OS choose; the port is written to
--port-file), accepts any mail and stores each message in its own file
DIR/<n>.eml with the envelope in DIR/<n>.json.  Serves connections one at a
time (fetchmail, bounce relay); every read has a timeout.  Stops on SIGTERM.

  odmr_sink.py --dir DIR --port-file F [--port P]
"""
import argparse
import json
import os
import signal
import socket
import sys


def handle(conn, a, counter):
    """handle - one SMTP session."""
    conn.settimeout(120)
    f = conn.makefile("rb")
    conn.sendall(b"220 sink.test ESMTP odmr_sink\r\n")
    mail_from, rcpts = None, []
    for _ in range(1000000):
        raw = f.readline(100000)
        if not raw:
            return
        ln = raw.decode("utf-8", "replace").rstrip("\r\n")
        verb = ln.split(" ", 1)[0].upper()
        if verb in ("EHLO", "HELO", "LHLO"):
            conn.sendall(b"250-sink.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
        elif verb == "MAIL":
            mail_from, rcpts = ln[10:].strip(), []
            conn.sendall(b"250 2.1.0 Ok\r\n")
        elif verb == "RCPT":
            rcpts.append(ln[8:].strip().split(" ")[0].strip("<>"))
            conn.sendall(b"250 2.1.5 Ok\r\n")
        elif verb == "DATA":
            conn.sendall(b"354 go ahead\r\n")
            body = b""
            for _ in range(100000000):
                l2 = f.readline(1000000)
                if not l2:
                    return
                if l2 == b".\r\n":
                    break
                body += l2[1:] if l2.startswith(b".") else l2
            counter[0] += 1
            base = os.path.join(a.dir, "%d" % counter[0])
            with open(base + ".eml", "wb") as out:
                out.write(body)
            with open(base + ".json", "w") as out:
                json.dump({"from": mail_from, "rcpts": rcpts}, out)
            conn.sendall(b"250 2.0.0 Ok: stored\r\n")
        elif verb in ("RSET", "NOOP"):
            conn.sendall(b"250 2.0.0 Ok\r\n")
        elif verb == "QUIT":
            conn.sendall(b"221 2.0.0 Bye\r\n")
            return
        else:
            conn.sendall(b"502 5.5.2 what\r\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *x: sys.exit(0))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", a.port))
    s.listen(16)
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(a.port_file + ".tmp", a.port_file)
    counter = [0]
    while True:
        conn, _ = s.accept()
        try:
            handle(conn, a, counter)
        except OSError:
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    main()
