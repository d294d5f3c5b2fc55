#!/bin/bash
# test_metrics_flow.sh - metrics wiring end to end: queued (+ supervised turnd)
# with metrics_listen, an ETRN delivery, an operator bounce, ATRN with a failed
# and a good AUTH; /metrics must show every outcome with the right value
# (turnd's pushed over the control socket STATS verb) and pass promtool.
# See metrics_flow.py.  Needs HOLDMX_BUILD; exit 77 = skipped.
set -u
: "${HOLDMX_BUILD:?}"
exec timeout 300 python3 -B "${HOLDMX_SRC:-$(dirname "$0")/../..}/tests/proto/metrics_flow.py"
