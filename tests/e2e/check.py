#!/usr/bin/env python3
"""check.py - comparison helpers for the holdmx end-to-end tests (stdlib only).

Works on the store directories written by sink.py (NNNNNN-PID.eml + .json
envelope sidecar) and on the output of `queuectl ... --json`.

  check.py count STORE                       number of stored messages
  check.py verify STORE TAG ORIG RCPTS       exactly one message tagged TAG
        (header X-E2E-Tag), byte-identical to ORIG apart from trace headers
        (Received, Return-Path, X-Original-To, Delivered-To) and line
        endings, envelope recipients exactly the comma list RCPTS
  check.py tag-count STORE TAG               messages tagged TAG
  check.py only-domains STORE D1,D2          every envelope recipient in STORE
        belongs to one of the domains (nothing for domains not owned)
  check.py dsn STORE ACTION RCPT [SENDER]    count of DSNs (null sender,
        multipart/report) with "Action: ACTION" for Final-Recipient RCPT,
        sent to SENDER when given
  check.py queue-count JSONFILE              messages in a queuectl JSON listing
  check.py queue-rcpts JSONFILE              pending recipients in a queuectl JSON
        listing (entries whose state is delivered/failed/... are left out)

Exit status 0 = the check holds, 1 = it does not (a reason on stderr),
2 = usage or unreadable input.
"""
import glob
import json
import os
import re
import sys

TRACE = ("received", "return-path", "x-original-to", "delivered-to")


def messages(store):
    """messages - [(envelope dict, raw bytes)] for every stored message."""
    out = []
    for eml in sorted(glob.glob(os.path.join(store, "*.eml"))):
        side = eml[:-4] + ".json"
        try:
            with open(side) as f:
                env = json.load(f)
        except (OSError, ValueError):
            env = {"mail_from": None, "rcpt_to": []}
        with open(eml, "rb") as f:
            out.append((env, f.read()))
    return out


def strip_trace(raw):
    """strip_trace - lines of raw without trace headers, LF/CRLF-neutral."""
    lines = re.split(rb"\r?\n", raw)
    if lines and lines[-1] == b"":
        lines.pop()
    out, in_header, skipping = [], True, False
    for line in lines:
        if in_header:
            if line == b"":
                in_header = False
                out.append(line)
                continue
            if line[:1] in (b" ", b"\t"):
                if not skipping:
                    out.append(line)
                continue
            name = line.split(b":", 1)[0].strip().lower().decode("ascii", "replace")
            skipping = name in TRACE
            if not skipping:
                out.append(line)
        else:
            out.append(line)
    return out


def header(raw, name):
    """header - first value of header name in raw (unfolded), or None."""
    m = re.search(rb"(?im)^" + re.escape(name.encode()) + rb":[ \t]*(.*(?:\r?\n[ \t].*)*)", raw.split(b"\r\n\r\n", 1)[0])
    return m.group(1).decode("utf-8", "replace").strip() if m else None


def fail(msg):
    """fail - print the reason, return exit status 1."""
    print(msg, file=sys.stderr)
    return 1


def cmd_count(store):
    """cmd_count - print the number of messages."""
    print(len(messages(store)))
    return 0


def tagged(store, tag):
    """tagged - stored messages whose X-E2E-Tag is tag."""
    return [(e, r) for e, r in messages(store) if header(r, "X-E2E-Tag") == tag]


def cmd_tag_count(store, tag):
    """cmd_tag_count - print the number of messages tagged tag."""
    print(len(tagged(store, tag)))
    return 0


def cmd_verify(store, tag, orig, rcpts):
    """cmd_verify - one copy, identical body, exact envelope recipients."""
    found = tagged(store, tag)
    if len(found) != 1:
        return fail("%s: %d copies of %s (want 1)" % (store, len(found), tag))
    env, raw = found[0]
    with open(orig, "rb") as f:
        want = strip_trace(f.read())
    got = strip_trace(raw)
    if got != want:
        for i, (a, b) in enumerate(zip(got, want)):
            if a != b:
                return fail("%s: line %d differs: got %r want %r" % (tag, i + 1, a, b))
        return fail("%s: %d lines, want %d" % (tag, len(got), len(want)))
    want_rcpts = sorted(r.lower() for r in rcpts.split(",") if r)
    got_rcpts = sorted(r.lower() for r in env.get("rcpt_to", []))
    if got_rcpts != want_rcpts:
        return fail("%s: envelope recipients %s, want %s" % (tag, got_rcpts, want_rcpts))
    return 0


def cmd_only_domains(store, domains):
    """cmd_only_domains - every recipient is in one of domains."""
    allowed = {d.lower() for d in domains.split(",") if d}
    for env, _ in messages(store):
        for r in env.get("rcpt_to", []):
            if r.rpartition("@")[2].lower() not in allowed:
                return fail("%s: recipient %s not in %s" % (store, r, sorted(allowed)))
    return 0


def cmd_dsn(store, action, rcpt, sender=None):
    """cmd_dsn - print how many matching DSNs the store holds."""
    n = 0
    act = re.compile(rb"(?im)^Action:[ \t]*" + re.escape(action.encode()) + rb"[ \t]*\r?$")
    fin = re.compile(rb"(?im)^Final-Recipient:[ \t]*rfc822;[ \t]*<?" + re.escape(rcpt.encode()) + rb">?[ \t]*\r?$")
    for env, raw in messages(store):
        if env.get("mail_from") not in ("", None):
            continue
        if sender and sender.lower() not in [r.lower() for r in env.get("rcpt_to", [])]:
            continue
        ctype = (header(raw, "Content-Type") or "").lower()
        if "multipart/report" not in ctype or not act.search(raw) or not fin.search(raw):
            continue
        n += 1
    print(n)
    return 0


def queue_items(path):
    """queue_items - the message objects of a queuectl JSON listing."""
    with open(path) as f:
        doc = json.load(f)
    if isinstance(doc, dict):
        for key in ("messages", "queue", "items"):
            if isinstance(doc.get(key), list):
                return doc[key]
        raise ValueError("no message list in %s" % path)
    if isinstance(doc, list):
        return doc
    raise ValueError("unexpected JSON in %s" % path)


def cmd_queue_count(path):
    """cmd_queue_count - print the number of queued messages."""
    print(len(queue_items(path)))
    return 0


DONE_STATES = {"delivered", "sent", "done", "failed", "bounced", "expired", "relayed"}


def cmd_queue_rcpts(path):
    """cmd_queue_rcpts - print every still-pending recipient, one a line
    (a listing may keep delivered/failed recipients with their state)."""
    for m in queue_items(path):
        rl = m.get("recipients") or m.get("rcpts") or m.get("rcpt_to") or []
        for r in rl:
            if isinstance(r, dict):
                if str(r.get("state", "held")).lower() in DONE_STATES:
                    continue
                r = r.get("address") or r.get("rcpt") or r.get("to")
            print(r)
    return 0


def main(argv):
    """main - dispatch the sub-command."""
    table = {"count": (cmd_count, 1), "verify": (cmd_verify, 4),
             "tag-count": (cmd_tag_count, 2), "only-domains": (cmd_only_domains, 2),
             "dsn": (cmd_dsn, 3), "queue-count": (cmd_queue_count, 1),
             "queue-rcpts": (cmd_queue_rcpts, 1)}
    if len(argv) < 2 or argv[1] not in table:
        print(__doc__, file=sys.stderr)
        return 2
    fn, nargs = table[argv[1]]
    args = argv[2:]
    if len(args) < nargs or len(args) > nargs + (1 if argv[1] == "dsn" else 0):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return fn(*args)
    except (OSError, ValueError) as e:
        print("check.py: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
