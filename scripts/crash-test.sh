#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The task engine's crash test (issue #5): kill -9 the engine at random
# moments while it submits, dispatches and reconciles, against one simulator
# that lives across the restarts (its cards remember every SCP80 counter ever
# used), then let a last run finish and judge what the store holds.
#
#   scripts/crash-test.sh [BINDIR]
#
# BINDIR holds otagw-sim and bench-engine (default build-benchrel/bin, else
# build/bin). Knobs (environment):
#   TASKS=20000 SES=5000   the plan: tasks over SEs (a share of SEs get 2-3 tasks)
#   ROUNDS=20              kill -9 rounds before the last run
#   MIN_MS=300 MAX_MS=2500 each round lives a random time in this range
#   SEED=<n>               seeds the kill times (default $RANDOM; printed)
#   RATE=800               SMS parts per second on the engine's CMPP link (0 = unlimited):
#                          slows the work down so the kills land in every phase (submission,
#                          parts held by the bearer, waits for DLR and PoR), not after the end
#   FINAL_TIMEOUT=600      seconds for the last run to bring every task to a final state
#   FAULTS=""              otagw-sim --faults for the whole test (docs/simulator.md)
#   DURABLE=true           the engine's durable flag (false: no fsync; kill -9 safe still)
#   KEEP=1                 keep the work directory
# Checks: the last run ends with every task final; bench-engine --check finds
# no violation (accepted tasks present and final, one final transition each,
# single link per SE, one counter per SCP80 dispatch); the simulator's cards
# saw no counter reused and no bad checksum. Every process started here is
# stopped on exit. Loopback only.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${1:-}
if [ -z "$bin" ]; then
  if [ -x "$root/build-benchrel/bin/bench-engine" ]; then bin=$root/build-benchrel/bin; else bin=$root/build/bin; fi
fi
TASKS=${TASKS:-20000}
SES=${SES:-5000}
ROUNDS=${ROUNDS:-20}
MIN_MS=${MIN_MS:-300}
MAX_MS=${MAX_MS:-2500}
FINAL_TIMEOUT=${FINAL_TIMEOUT:-600}
RATE=${RATE:-800}
FAULTS=${FAULTS:-}
DURABLE=${DURABLE:-true}
SEED=${SEED:-$RANDOM}
SIM_SEED=000102030405060708090a0b0c0d0e0f # bench-engine derives the cards' keys from it

tmp=$(mktemp -d "${TMPDIR:-/tmp}/engine-crash.XXXXXX")
dir=$tmp/run
mkdir -p "$dir"
sim_pid=
run_pid=
cleanup() {
  if [ -n "$run_pid" ]; then kill -9 "$run_pid" 2>/dev/null || true; wait "$run_pid" 2>/dev/null || true; fi
  if [ -n "$sim_pid" ]; then kill -9 "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-}" = 1 ]; then echo "files kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$dir"/final.err "$dir"/sim.err; do
    [ -s "$f" ] && { echo "--- $f (tail)"; tail -n 20 "$f"; }
  done
  exit 1
}

[ -x "$bin/otagw-sim" ] || fail "no $bin/otagw-sim"
[ -x "$bin/bench-engine" ] || fail "no $bin/bench-engine"
case "$TASKS$SES$ROUNDS$MIN_MS$MAX_MS$FINAL_TIMEOUT$SEED$RATE" in *[!0-9]*) fail "numeric knobs only" ;; esac
[ "$MAX_MS" -ge "$MIN_MS" ] || fail "MAX_MS < MIN_MS"
echo "crash test: $TASKS tasks over $SES SEs at $RATE parts/s, $ROUNDS kill rounds of ${MIN_MS}..${MAX_MS} ms, seed $SEED"
RANDOM=$SEED

printf '{"tasks":%d,"ses":%d,"rate":%d,"durable":%s,"seed":"%s"}\n' "$TASKS" "$SES" "$RATE" "$DURABLE" "$SIM_SEED" \
  > "$dir/plan.json"
sim_args=(--ismg 127.0.0.1:0 --generate "$SES" --msisdn-base 8613800000000 --seed "$SIM_SEED"
  --sp-id 901234 --secret otagw-test --port-file "$dir/ports.json" --counts-file "$dir/counts.json")
[ -n "$FAULTS" ] && sim_args+=(--faults "$FAULTS")
"$bin/otagw-sim" "${sim_args[@]}" 2> "$dir/sim.err" &
sim_pid=$!
for _ in $(seq 1 200); do
  [ -s "$dir/ports.json" ] && break
  kill -0 "$sim_pid" 2>/dev/null || fail "otagw-sim exited at start"
  sleep 0.05
done
[ -s "$dir/ports.json" ] || fail "otagw-sim wrote no port file in 10 s"

for r in $(seq 1 "$ROUNDS"); do
  "$bin/bench-engine" --run "$dir" > "$dir/run$r.json" 2> "$dir/run$r.err" &
  run_pid=$!
  ms=$((MIN_MS + RANDOM % (MAX_MS - MIN_MS + 1)))
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  if kill -9 "$run_pid" 2>/dev/null; then how=killed; else how=exited; fi
  rc=0
  { wait "$run_pid"; } 2>/dev/null || rc=$? # no "Killed" line from the shell
  run_pid=
  accepted=$(wc -l < "$dir/accepted.log" 2>/dev/null || echo 0)
  echo "round $r: $how after $ms ms (status $rc), $accepted ids in accepted.log"
  if [ "$how" = exited ] && [ "$rc" -ne 0 ]; then
    tail -n 20 "$dir/run$r.err"
    fail "round $r: bench-engine --run failed on its own (status $rc)"
  fi
done

echo "last run (at most $FINAL_TIMEOUT s)"
rc=0
timeout -s KILL "$((FINAL_TIMEOUT + 10))" "$bin/bench-engine" --run "$dir" --timeout "$FINAL_TIMEOUT" \
  > "$dir/final.json" 2> "$dir/final.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$dir/final.json"; fail "the last run did not bring every task to a final state (status $rc)"; }
python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
print('last run: %d tasks in the store, states %s' % (r['in_store'], {k: v for k, v in r['states'].items() if v}))
" "$dir/final.json"

rc=0
"$bin/bench-engine" --check "$dir" > "$dir/check.json" 2> "$dir/check.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$dir/check.json" "$dir/check.err"; fail "bench-engine --check found violations (status $rc)"; }
python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
print('check: %d tasks, %d events, %d accepted ids logged, no violation' % (r['tasks'], r['events'], r['accepted_logged']))
print('check: final states %s, reasons of the tasks not done %s' % ({k: v for k, v in r['states'].items() if v}, r['not_done_reasons']))
" "$dir/check.json"

# The judge must catch what it looks for: tamper with copies of the store and the log,
# one fault each, and expect --check to fail naming it.
judge_selftest() {
  command -v sqlite3 >/dev/null || { echo "judge self-test skipped (no sqlite3)"; return 0; }
  local n=0 name sql extra
  while IFS='|' read -r name sql extra; do
    n=$((n + 1))
    local bad=$tmp/bad$n
    mkdir -p "$bad"
    cp "$dir/plan.json" "$dir/accepted.log" "$bad/"
    sqlite3 "$dir/engine.db" ".backup '$bad/engine.db'"
    [ -n "$sql" ] && sqlite3 "$bad/engine.db" "$sql"
    [ -n "$extra" ] && echo "$extra" >> "$bad/accepted.log"
    local rc=0
    "$bin/bench-engine" --check "$bad" > "$bad/check.json" 2> "$bad/check.err" || rc=$?
    [ "$rc" -eq 1 ] || fail "judge self-test $name: --check exited $rc, not 1"
    python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
sys.exit(0 if r['violations'].get(sys.argv[2], 0) > 0 else 'not named: %s' % r['violations'])
" "$bad/check.json" "$name" || fail "judge self-test $name"
    rm -rf "$bad"
  done <<'CASES'
counter_differs_from_dispatches|UPDATE se_counter SET cntr = cntr + 1 WHERE se = (SELECT min(se) FROM se_counter);|
accepted_missing||999999999
not_final|UPDATE task SET state = 2 WHERE id = 1;|
transition_after_final|INSERT INTO task_event (task, se, t, from_state, to_state, reason) SELECT id, se, 0, state, state, 0 FROM task WHERE id = 1;|
two_active_on_one_se|INSERT INTO task_event (task, se, t, from_state, to_state, reason) SELECT id, se, 0, state, 1, 0 FROM task WHERE se = (SELECT se FROM task GROUP BY se HAVING count(*) > 1 LIMIT 1) ORDER BY id LIMIT 2;|
counter_used_by_two_tasks|UPDATE task SET cntr = (SELECT cntr FROM task t2 WHERE t2.se = task.se AND t2.id < task.id AND t2.op = 1 AND t2.cntr > 0 ORDER BY t2.id LIMIT 1) WHERE id = (SELECT max(id) FROM task t3 WHERE t3.op = 1 AND t3.cntr > 0 AND EXISTS (SELECT 1 FROM task t4 WHERE t4.se = t3.se AND t4.id < t3.id AND t4.op = 1 AND t4.cntr > 0));|
CASES
  echo "judge self-test: $n tampered copies, each caught"
}
judge_selftest

kill -TERM "$sim_pid"
for _ in $(seq 1 100); do
  kill -0 "$sim_pid" 2>/dev/null || break
  sleep 0.05
done
rc=0
wait "$sim_pid" || rc=$?
sim_pid=
[ "$rc" -eq 0 ] || fail "otagw-sim exited with status $rc"
python3 -c "
import json,sys; s=json.load(open(sys.argv[1])); c=s.get('cards') or {}
print('simulator cards:', {k: c.get(k) for k in ('mt_complete','commands_ok','pushes','por_sent','counter_reused','counter_refused','bad_cc','invalid_sms')})
bad=[k for k in ('counter_reused','bad_cc') if c.get(k, -1) != 0]
sys.exit('the cards counted %s' % ', '.join('%s=%s' % (k, c.get(k)) for k in bad) if bad else 0)
" "$dir/counts.json" || fail "simulator counts"
echo "engine crash test: ok (seed $SEED)"
