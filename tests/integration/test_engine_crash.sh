#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The task engine survives kill -9 (issue #5): ~3000 tasks (SCP80 single and
# two-part, push; 400 SMS parts/s, so about 8 s of work) over 2000 simulated SEs, five rounds of bench-engine --run
# killed after a random 0.3-2.5 s (seed printed; ENGINE_CRASH_SEED replays
# one), a last run to completion, then bench-engine --check on the store and
# the simulator's card counts (no counter reused, no bad checksum).
# scripts/crash-test.sh does the work; this is its short version for ctest.
set -euo pipefail
bin=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TASKS=3000 SES=2000 RATE=400 ROUNDS=5 MIN_MS=300 MAX_MS=2500 FINAL_TIMEOUT=120 \
  SEED=${ENGINE_CRASH_SEED:-$RANDOM} \
  exec bash "$here/../../scripts/crash-test.sh" "$bin"
