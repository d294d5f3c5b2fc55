#!/bin/sh
# test.sh - the README's test command: install packages, build with
# -Werror, run the unit and protocol tests under ASan+UBSan, then every test (unit,
# protocol, end-to-end with real peers) under CTest.  Ends with CTest's
# summary line.  Run as root on Debian 12:  sh contrib/test.sh
set -eu
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh
JOBS=$(nproc 2>/dev/null || echo 2)

echo "== sanitizer build (ASan+UBSan): unit and protocol tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHOLDMX_WERROR=ON \
      -DHOLDMX_ASAN=ON -DHOLDMX_UBSAN=ON >/dev/null
cmake --build build-asan -j "$JOBS" >/dev/null
# Every sanitized process (tests, and the daemons and tools they start)
# writes any report to $SANLOG; a report fails the run even when the test
# that provoked it did not notice.
SANLOG=$(mktemp -d "${TMPDIR:-/tmp}/holdmx-sanitizer.XXXXXX")
ASAN_OPTIONS="detect_leaks=1:log_path=$SANLOG/asan" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$SANLOG/ubsan" \
    ctest --test-dir build-asan -L "unit|proto" --output-on-failure -j "$JOBS" || asan_failed=1
if [ -n "$(ls -A "$SANLOG")" ]; then
    echo "sanitizer reports:"
    cat "$SANLOG"/*
    asan_failed=1
fi
rm -rf "$SANLOG"

echo "== release build: every test"
cmake -S . -B build -DHOLDMX_WERROR=ON >/dev/null
cmake --build build -j "$JOBS" >/dev/null
if [ "${asan_failed:-0}" = 1 ]; then
    echo "sanitizer run FAILED (see above)"
fi
ctest --test-dir build --output-on-failure
[ "${asan_failed:-0}" = 0 ]
