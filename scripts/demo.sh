#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# README command 1: installs the dependencies, builds otagw and shows its
# main job on loopback, in well under a minute:
#  1. otatool's demo encodes a wallet push SMS and an SCP80 command packet,
#     plays the card (decrypts, verifies, answers with a PoR) and decodes the
#     PoR again, printing every step;
#  2. the daemon: the bundled simulator (CMPP ISMG + the SIM cards of
#     tests/sim/sample-population.jsonl) and otagw start on loopback; the
#     sample SEs and their SCP80 keys are registered over the HTTP API; a few
#     SCP80 tasks (a GET DATA script, an app lock built by the platform
#     core) and a batch job go API -> task engine (SQLite, fsync per
#     commit) -> CMPP -> simulated cards -> verified PoR -> done; a push and
#     an app lock over push go push SMS -> the simulator's wallet pulls ->
#     SCP02 session (security level 03) with the card -> done. Results are
#     printed.
# SKIP_DEPS=1 skips the apt-get stage; BUILD=dir builds elsewhere than build/;
# SKIP_BUILD=1 uses what is built already. Every process is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
if [ -z "${SKIP_DEPS:-}" ]; then
  bash scripts/install-deps.sh
fi
if [ -z "${SKIP_BUILD:-}" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j"${JOBS:-2}"
fi
"$build/bin/otatool" demo
echo

tmp=$(mktemp -d)
sim_pid=
gw_pid=
cleanup() {
  for p in $gw_pid $sim_pid; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in $gw_pid $sim_pid; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
wait_file() {
  for _ in $(seq 100); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  echo "demo: $1 did not appear" >&2
  return 1
}

echo "== the otagw daemon: HTTP API -> task engine -> CMPP -> simulated cards -> PoR -> done =="
pop=tests/sim/sample-population.jsonl
# otagw's port is chosen first: the simulator's wallet calls it after a push.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/bin/otagw-sim" --ismg 127.0.0.1:0 --secret otagw-test --population "$pop" \
  --wallet-url "http://127.0.0.1:$port" --port-file "$tmp/sim.json" --counts-file "$tmp/counts.json" 2> "$tmp/sim.err" &
sim_pid=$!
wait_file "$tmp/sim.json"
ismg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ismg"])' "$tmp/sim.json")
cat > "$tmp/otagw.conf" <<EOF
[gateway]
listen = 127.0.0.1:$port
log_file = $tmp/otagw.log
[engine]
db = $tmp/otagw.db
[wallet]
wait_pull = yes
scp02_level = 03
[link sim]
kind = cmpp
host = 127.0.0.1
port = $ismg
sp_id = 901234
secret = otagw-test
EOF
"$build/bin/otagw" -c "$tmp/otagw.conf" --port-file "$tmp/port" > "$tmp/otagw.out" 2>&1 &
gw_pid=$!
wait_file "$tmp/port"
cat "$tmp/otagw.out"
echo "simulator: ISMG on 127.0.0.1:$ismg, $(wc -l < "$pop") sample SEs"

python3 - "$(cat "$tmp/port")" "$pop" <<'EOF'
import json, sys, time, urllib.request, urllib.error

base = f"http://127.0.0.1:{sys.argv[1]}"
ses = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")

def must(what, got, ok=(200, 201, 202)):
    if got[0] not in ok:
        sys.exit(f"demo: {what}: {got[0]} {got[1]}")
    return got[1]

for _ in range(100):
    st, h = call("GET", "/v1/health")
    if st == 200 and all(l["state"] == "up" for l in h["links"]):
        break
    time.sleep(0.1)
print("health:", json.dumps(h["links"]))

ALG = {"AES": 0x2, "DES": 0x1, "3DES2": 0x5, "3DES3": 0x9}
for s in ses:
    must("register", call("POST", "/v1/ses", {"seid": s["seid"], "msisdn": s["msisdn"],
                                              "batch": "sample"}))
    for k in s["scp80"]:
        must("keys", call("POST", f"/v1/ses/{s['seid']}/keys/scp80", {
            "tar": k["tar"], "kvn": k["kvn"], "spi": "1639",
            "kic": "%02X" % (k["kvn"] << 4 | ALG[k["kic_alg"]]),
            "kid": "%02X" % (k["kvn"] << 4 | ALG[k["kid_alg"]]),
            "kic_key": k["kic"], "kid_key": k["kid"], "cc_len": 8}))
    for k in s.get("scp02", []):
        must("sd keys", call("POST", f"/v1/ses/{s['seid']}/keys/sd", {
            "sd_aid": "A000000151000000", "kvn": k["kvn"], "enc": k["enc"], "mac": k["mac"],
            "dek": k["dek"]}))
    print(f"registered SE {s['seid'][:24]:24} MSISDN {s['msisdn']}, "
          f"{len(s['scp80'])} SCP80 + {len(s.get('scp02', []))} SCP02 key set(s) imported")

t0 = time.time()
tasks = []
def submit(seid, op, params, what, channel=None):
    body = {"seid": seid, "op": op, "params": params}
    if channel:
        body["channel"] = channel
    b = must(f"submit {what}", call("POST", "/v1/tasks", body))
    tasks.append((b["id"], what))

submit(ses[0]["seid"], "scp80", {"tar": "000000", "script": "80CA006600"}, "SCP80 GET DATA (AES)")
submit(ses[1]["seid"], "scp80", {"tar": "000000", "script": "80CA006600"}, "SCP80 GET DATA (3DES)")
submit(ses[0]["seid"], "scp80", {"tar": "B00000", "script": "80CA006600"}, "SCP80 to TAR B00000")
submit(ses[0]["seid"], "app-lock", {"aid": ses[0]["apps"][0]["aid"]}, "app lock over SCP80")
submit(ses[1]["seid"], "push", {}, "push -> wallet pull -> SCP02")
submit(ses[0]["seid"], "app-unlock", {"aid": ses[0]["apps"][0]["aid"]},
       "app unlock over push + SCP02", "push")
job = must("job", call("POST", "/v1/jobs", {"kind": "filter", "batch": "sample", "op": "scp80",
                                            "params": {"tar": "000000", "script": "80CA006600"}}))

final = {}
while time.time() - t0 < 40 and len(final) < len(tasks):
    for i, what in tasks:
        if i not in final:
            t = must("get", call("GET", f"/v1/tasks/{i}"))
            if t["state"] in ("done", "failed", "expired", "cancelled"):
                final[i] = t
    time.sleep(0.05)
for _ in range(400):
    j = must("job", call("GET", f"/v1/jobs/{job['id']}"))
    if j["expanded"] and sum(j["counts"][s] for s in ("done", "failed", "expired", "cancelled")) >= j["total"]:
        break
    time.sleep(0.05)

ok = True
for i, what in tasks:
    t = final.get(i)
    state = t["state"] if t else "not final"
    ok &= state == "done"
    extra = f" ({t['reason']}: {t.get('reason_text')})" if t and t.get("reason") else ""
    print(f"task {i:3} {what:30} SE {t['seid'][:20] if t else '':20} -> {state}{extra}")
print(f"job {job['id']}: SCP80 on batch 'sample', {j['total']} tasks: "
      f"done {j['counts']['done']}, failed {j['counts']['failed']}")
ok &= j["counts"]["done"] == j["total"]
h = must("health", call("GET", "/v1/health"))
print(f"engine: {h['engine']['done']} done, {h['engine']['failed']} failed, "
      f"{h['engine']['commits']} durable commits; {time.time() - t0:.1f} s from first submit")
sys.exit(0 if ok else 1)
EOF
kill -TERM "$gw_pid"
rc=0
wait "$gw_pid" || rc=$?
gw_pid=
echo "otagw stopped (status $rc); its log: $(grep -c '' "$tmp/otagw.log") structured lines, e.g.:"
grep 'msg="task final"' "$tmp/otagw.log" | head -n 2
kill -USR1 "$sim_pid"
wait_file "$tmp/counts.json"
python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
c, w = j["cards"], j["wallet"]
print("simulated cards: %d commands ran, %d push SMS received, %d bad checksums, %d counters reused"
      % (c["commands_ok"], c["pushes"], c["bad_cc"], c["counter_reused"]))
print("simulated wallet: %d pulls, %d SCP02 sessions done, %d failed"
      % (w["wallet_pulls"], w["wallet_sessions_done"], w["wallet_sessions_failed"]))' "$tmp/counts.json"
