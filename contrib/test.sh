#!/bin/sh
# test.sh - the README's test command: install packages, build with
# -Werror, run the unit tests under ASan+UBSan, then every test (unit,
# protocol, end-to-end with real peers) under CTest.  Ends with CTest's
# summary line.  Run as root on Debian 12:  sh contrib/test.sh
set -eu
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh
JOBS=$(nproc 2>/dev/null || echo 2)

echo "== sanitizer build (ASan+UBSan): unit tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHOLDMX_WERROR=ON \
      -DHOLDMX_ASAN=ON -DHOLDMX_UBSAN=ON >/dev/null
cmake --build build-asan -j "$JOBS" >/dev/null
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan -L unit --output-on-failure -j "$JOBS" || asan_failed=1

echo "== release build: every test"
cmake -S . -B build -DHOLDMX_WERROR=ON >/dev/null
cmake --build build -j "$JOBS" >/dev/null
if [ "${asan_failed:-0}" = 1 ]; then
    echo "sanitizer unit tests FAILED (see above)"
fi
ctest --test-dir build --output-on-failure
[ "${asan_failed:-0}" = 0 ]
