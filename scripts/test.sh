#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the dependencies, builds otagw with AddressSanitizer + UBSan and
# runs every test (cmocka unit tests, the shared OTA vectors through otatool,
# CLI tests), then builds the libFuzzer harnesses with clang and runs each for
# a bounded time, then prints the OTA benchmark from a release build.
#   scripts/test.sh            everything
#   FUZZ_SECONDS=60 scripts/test.sh    longer fuzzing (default 20 s per harness)
#   SKIP_DEPS=1 / SKIP_FUZZ=1 / SKIP_BENCH=1 to leave a stage out
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

if [ -z "${SKIP_DEPS:-}" ]; then
  bash scripts/install-deps.sh
fi

echo "== format (clang-format, STYLE.md section 11) =="
# shellcheck disable=SC2046
clang-format --dry-run -Werror $(git ls-files '*.c' '*.h' 2>/dev/null || find ota smpp queue gateway tools tests -name '*.[ch]')

echo "== build (ASan + UBSan) =="
cmake -S . -B build-asan -DOTAGW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$JOBS"

if [ -z "${SKIP_FUZZ:-}" ]; then
  echo "== fuzz (clang libFuzzer, ${FUZZ_SECONDS}s per harness) =="
  cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DOTAGW_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-fuzz -j"$JOBS"
  for f in build-fuzz/bin/fuzz_*; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    corpus=tests/fuzz/corpus/${name#fuzz_}
    work=$(mktemp -d)
    seeds=()
    [ -d "$corpus" ] && seeds=("$corpus")
    echo "-- $name"
    # A crash or sanitizer report makes libFuzzer exit non-zero and fails the run.
    if ! "$f" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -artifact_prefix="$work/" \
         "$work" "${seeds[@]}" >"$work.log" 2>&1; then
      tail -n 60 "$work.log"
      echo "FUZZ FAILURE in $name (reproducer under $work/)"
      exit 1
    fi
    grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$work.log" || true
    rm -f "$work.log"
    rm -rf "$work"
  done
fi

if [ -z "${SKIP_BENCH:-}" ]; then
  echo "== bench (release build, quick run; figures only, not pass/fail) =="
  cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DOTAGW_TESTS=OFF >/dev/null
  # otagw and otatool too: -O3 finds maybe-uninitialized paths -O0/-O2 miss, and -Werror holds.
  cmake --build build-rel -j"$JOBS" --target bench-ota bench-bearer bench-engine otagw-sim otagw otatool
  build-rel/bin/bench-ota --quick
  # CMPP, Kannel box link and Kannel's sendsms on loopback; correctness of these
  # paths is asserted by the integration tests, this prints the figures.
  build-rel/bin/bench-bearer --all --push 1000 --scp80 1000 \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({k: r[k] for k in ("cmpp_msgs_per_s", "kannel_box_msgs_per_s", "kannel_sendsms_msgs_per_s", "kannel_box_vs_sendsms_ratio")}, indent=1))' \
    || echo "bench-bearer: no figures this run (see the integration tests)"
  # The task engine end to end (durable commits, CMPP, simulated cards, PoRs), and the
  # memory of queued work (CI size: 100,000 queued over 1,000,000 SEs; the issue's
  # 1,000,000 over 10,000,000 is `bench-engine --queued-rss` with its defaults).
  build-rel/bin/bench-engine --tasks 20000 --sim build-rel/bin/otagw-sim 2>/dev/null \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({k: r[k] for k in ("tasks", "done", "tasks_per_s", "p50_ms", "p99_ms", "durable", "tasks_per_commit", "rss_mb")}, indent=1))' \
    || echo "bench-engine: no figures this run (see it_test_engine_sim)"
  build-rel/bin/bench-engine --queued-rss --ses 1000000 --queued 100000 2>/dev/null \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({k: v for k, v in r.items() if k.endswith(("_mb", "_s"))}, indent=1))' \
    || echo "bench-engine --queued-rss: no figures this run"
fi

echo "== tests (ASan + UBSan) =="
cd build-asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# install-deps.sh installs SoftHSM2: the HSM tests must run, never skip quietly.
export OTAGW_REQUIRE_P11=1
ctest --output-on-failure -j"$JOBS"
