#!/bin/bash
# test_metrics_push.sh - turnd keeps its metric deltas while queued is down and
# pushes them once queued is back, and pushes once more when it stops (STATS on
# the control socket).  See metrics_push.py.  Needs HOLDMX_BUILD; 77 = skipped.
set -u
: "${HOLDMX_BUILD:?}"
exec timeout 300 python3 -B "${HOLDMX_SRC:-$(dirname "$0")/../..}/tests/proto/metrics_push.py"
