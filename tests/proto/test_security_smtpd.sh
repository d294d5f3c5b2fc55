#!/bin/bash
# test_security_smtpd.sh - adversarial scenario "smtpd" (see security_tests.py).
# Needs HOLDMX_BUILD (queued, queuectl, turnd); exit 77 = skipped.
set -u
exec python3 "${HOLDMX_SRC:-$(dirname "$0")/../..}/tests/proto/security_tests.py" smtpd
