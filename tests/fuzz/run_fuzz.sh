#!/bin/sh
# run_fuzz.sh - a bounded libFuzzer session over the tests/fuzz targets.
#
# Usage: sh tests/fuzz/run_fuzz.sh [SECONDS [TARGET...]]
# Builds the fuzz_* targets with clang -fsanitize=fuzzer,address,undefined
# (-DHOLDMX_LIBFUZZER, so libFuzzer supplies main) in build-fuzz-clang/,
# then runs each target for SECONDS (default 240) on a scratch copy of its
# seed corpus under $WORK (default /tmp/hm-fuzz-run).  Crash inputs are
# left in $WORK/<name>/artifacts; copy the ones worth keeping into
# tests/fuzz/corpus/<name>/ so every ctest run replays them.
# FUZZ_NO_BUILD=1 skips the build (parallel runs of already built targets).
# libsasl2's LOGIN plugin leaks on some failed logins; tests/fuzz/lsan.supp
# keeps that known third-party leak from stopping the turn target.  Not part of
# CTest: it needs clang and libclang-rt and takes minutes.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-240}
[ $# -gt 0 ] && shift
targets=${*:-"line smtpd conf store dlv"}
bld=$src/build-fuzz-clang
work=${WORK:-/tmp/hm-fuzz-run}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

command -v clang >/dev/null || { echo "run_fuzz.sh: clang not installed" >&2; exit 77; }
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
cmake -S "$src" -B "$bld" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY \
    -DCMAKE_C_FLAGS="-O1 -g -DHOLDMX_LIBFUZZER -fsanitize=fuzzer-no-link $san" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=fuzzer $san" >/dev/null
for t in $targets; do
    cmake --build "$bld" --target "fuzz_$t" -j2 >/dev/null
done
fi
mkdir -p "$work"
for t in $targets; do
    d=$work/$t
    mkdir -p "$d/corpus" "$d/artifacts"
    cp "$src/tests/fuzz/corpus/$t/"* "$d/corpus/" 2>/dev/null || :
    echo "== fuzz_$t for ${secs}s"
    LSAN_OPTIONS="suppressions=$src/tests/fuzz/lsan.supp" TMPDIR=/dev/shm "$bld/tests/fuzz_$t" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -max_len=4096 -close_fd_mask=3 \
        -artifact_prefix="$d/artifacts/" "$d/corpus" >"$d/log" 2>&1 || :
    tail -n 3 "$d/log"
    ls "$d/artifacts" 2>/dev/null | sed 's/^/   artifact: /'
done
