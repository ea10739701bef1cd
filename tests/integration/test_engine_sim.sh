#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The task engine end to end against the simulator (issue #5): 2000 SCP80
# tasks (every tenth in two SMS) over 1000 SEs through the CMPP bearer, each
# SE's tasks in FIFO on its single link. Every task must be done (verified
# PoR), none failed, the final hook called once per task, and the cards must
# never see a counter twice nor a bad checksum.
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

[ -x "$bin/otagw-sim" ] || fail "no $bin/otagw-sim"
[ -x "$bin/bench-engine" ] || fail "no $bin/bench-engine"
rc=0
"$bin/bench-engine" --tasks 2000 --ses 1000 --concat-every 10 --timeout 200 \
  > "$tmp/run.json" 2> "$tmp/run.err" || rc=$?
[ -s "$tmp/run.json" ] || { tail -n 30 "$tmp/run.err"; fail "no report (status $rc)"; }
python3 - "$tmp/run.json" <<'EOF' || { tail -n 30 "$tmp/run.err"; fail "engine run"; }
import json, sys
r = json.load(open(sys.argv[1]))
sim = r.get("sim") or {}
problems = []
if r["done"] != r["tasks"]:
    problems.append(f"{r['done']} of {r['tasks']} tasks done")
if r["failed"] != 0:
    problems.append(f"{r['failed']} failed: {r['failed_reasons']}")
if r["final_hook_twice"] != 0 or r["final_hook_unknown"] != 0:
    problems.append("final hook called twice or for an unknown task")
if sim.get("counter_reused") != 0:
    problems.append(f"counter_reused {sim.get('counter_reused')}")
if sim.get("bad_cc") != 0:
    problems.append(f"bad_cc {sim.get('bad_cc')}")
if (sim.get("commands_ok") or 0) < r["tasks"]:
    problems.append(f"the cards ran {sim.get('commands_ok')} commands for {r['tasks']} tasks")
if problems:
    print(json.dumps(r, indent=1)[:4000])
    sys.exit("; ".join(problems))
print(f"ok: {r['done']} tasks done, {r['tasks_per_s']:.0f} tasks/s, p50 {r['p50_ms']:.0f} ms, "
      f"p99 {r['p99_ms']:.0f} ms, {r['commits']} commits")
EOF
[ "$rc" -eq 0 ] || { tail -n 30 "$tmp/run.err"; fail "bench-engine exited with status $rc"; }
echo "engine ↔ simulator: ok"
