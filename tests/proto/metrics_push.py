#!/usr/bin/env python3
"""metrics_push.py - turnd's STATS push when queued is away and at shutdown.

Uses metrics_flow.py's environment with a standalone turnd (start_turnd =
no) so the two daemons can be started and stopped separately:

  1. only turnd runs: a failed AUTH is counted while queued is down (the
     push fails and the delta is kept; turnd logs it once);
  2. queued starts: /metrics shows the kept failure within ~12 s;
  3. another failed AUTH, then SIGTERM to turnd at once: the push turnd
     makes when it stops brings the second failure to /metrics without
     waiting for a timer, and the ODMR session gauge is back to 0.

Only processes started here are signalled, by pid.  Exit: 0 pass, 1 fail,
77 skipped.
"""
import os
import shutil
import socket
import subprocess
import sys

import metrics_flow as mf


def failed_auth(port):
    """failed_auth - one connection with a wrong CRAM-MD5 password; the reply code."""
    s = socket.create_connection(("127.0.0.1", port), timeout=mf.IO_TIMEOUT)
    io = mf.Lines(s)
    try:
        io.reply()
        io.cmd("EHLO customer.test")
        code = mf.cram(io, "alice", "not-the-password")
        io.cmd("QUIT")
    finally:
        s.close()
    return code


def auth_failures(env):
    """auth_failures - holdmx_auth_failures_total on /metrics (None if absent)."""
    return mf.sample(env.metrics(), "holdmx_auth_failures_total")


def scenario(env):
    """scenario - steps 1 to 3 of the module text."""
    env.ctl("domain", "add", "atrn.test", "--site", "default")
    env.ctl("account", "add", "alice", "--domains", "atrn.test")
    env.start_turnd()
    mf.check(failed_auth(env.odmr_port) == 535, "wrong password gets 535 (queued down)")
    mf.check(mf.wait_for(lambda: "metrics push" in env.log_text("turnd"), 12),
             "turnd notes that the push failed", env.log_text("turnd")[-800:])
    env.start()
    mf.check(mf.wait_for(lambda: auth_failures(env) == 1, 12),
             "the failure counted while queued was down reaches /metrics", auth_failures(env))
    mf.check(failed_auth(env.odmr_port) == 535, "second wrong password gets 535")
    rc = env.stop_turnd()
    mf.check(rc == 0, "turnd stops cleanly on SIGTERM", rc)
    text = env.metrics()
    mf.check(mf.sample(text, "holdmx_auth_failures_total") == 2,
             "the shutdown push delivered the second failure at once",
             mf.sample(text, "holdmx_auth_failures_total"))
    mf.check(mf.sample(text, 'holdmx_sessions_open{proto="odmr"}') == 0,
             "ODMR session gauge is 0 after turnd stopped")
    mf.check(env.log_text("turnd").count("metrics push") == 1,
             "the unreachable queued was logged once, not at every try")


def main():
    """main - run the scenario; exit status for ctest."""
    for b in (mf.QUEUED, mf.QUEUECTL, mf.TURND):
        if not os.access(b, os.X_OK):
            mf.log("SKIP: %s not built" % b)
            return 77
    if shutil.which("saslpasswd2") is None:
        mf.log("SKIP: saslpasswd2 missing")
        return 77
    env = mf.Env(supervised=False)
    try:
        scenario(env)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        mf.check(False, "scenario ran to the end", e)
    finally:
        env.cleanup()
    mf.log("%d failure(s)" % len(mf.FAILS))
    return 1 if mf.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
