#!/bin/bash
# test_turnd_atrn.sh - turnd protocol scenario "atrn" (see odmr_tests.py).
# Needs HOLDMX_BUILD (queued, queuectl, turnd); exit 77 = skipped.
set -u
exec python3 "${HOLDMX_SRC:-$(dirname "$0")/../..}/tests/proto/odmr_tests.py" atrn
