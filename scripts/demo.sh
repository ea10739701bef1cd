#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the dependencies, builds otagw and runs its main job as far as it
# exists today (the daemon and its API come with issue #6):
#  1. otatool's demo encodes a wallet push SMS and an SCP80 command packet,
#     plays the card (decrypts, verifies, answers with a PoR) and decodes the
#     PoR again, printing every step;
#  2. the durable task engine runs 500 SCP80 tasks over 200 simulated SEs:
#     SQLite store (fsync per commit), per-SE queues, CMPP to the bundled
#     ISMG simulator on loopback, DLRs and verified PoRs -> done.
# SKIP_DEPS=1 skips the apt-get stage.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SKIP_DEPS:-}" ]; then
  bash scripts/install-deps.sh
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${JOBS:-2}"
build/bin/otatool demo
echo
echo "== the task engine: 500 SCP80 tasks -> CMPP -> simulated cards -> PoR -> done =="
build/bin/bench-engine --tasks 500 --ses 200 --sim build/bin/otagw-sim |
  python3 -c 'import json,sys
r = json.load(sys.stdin)
print("tasks %d: done %d, failed %d %s" % (r["tasks"], r["done"], r["failed"], r["failed_reasons"] or ""))
print("accept -> done: p50 %.1f ms, p99 %.1f ms; %d durable commits (fsync)" % (r["p50_ms"], r["p99_ms"], r["commits"]))
s = r.get("sim", {})
print("simulated cards: %s commands ran, %s counters reused" % (s.get("commands_ok", "?"), s.get("counter_reused", "?")))
sys.exit(0 if r["done"] == r["tasks"] else 1)'
