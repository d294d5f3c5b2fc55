#!/bin/bash
# test_turnd_robust.sh - turnd scenario "robust": limits, bad input, 451, SIGTERM, SIGHUP.
# Needs HOLDMX_BUILD (queued, queuectl, turnd); exit 77 = skipped.
set -u
exec python3 "${HOLDMX_SRC:-$(dirname "$0")/../..}/tests/proto/odmr_tests.py" robust
