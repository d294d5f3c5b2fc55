#!/bin/bash
# test_ctl_metrics.sh - operations tests, group "metrics" (queuectl / control socket /
# metrics against the real queued; see ctl_harness.py for what it checks).
# Needs HOLDMX_BUILD and HOLDMX_SRC (set by ctest); exits 77 when queued or
# queuectl is not built.
set -u
: "${HOLDMX_BUILD:?}" "${HOLDMX_SRC:?}"
exec timeout 580 python3 "$HOLDMX_SRC/tests/proto/ctl_harness.py" metrics
