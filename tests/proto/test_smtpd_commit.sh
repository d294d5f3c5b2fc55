#!/bin/bash
# test_smtpd_commit.sh - queued SMTP ingress protocol tests, group "commit"
# (see smtpd_harness.py for what the group checks).  Needs HOLDMX_BUILD and
# HOLDMX_SRC (set by ctest); exits 77 when queued or queuectl is not built.
set -u
: "${HOLDMX_BUILD:?}" "${HOLDMX_SRC:?}"
exec timeout 300 python3 "$HOLDMX_SRC/tests/proto/smtpd_harness.py" commit
