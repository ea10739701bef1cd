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
  # Only what the demo runs: a newcomer waits for three programs, not the test suite.
  cmake --build "$build" -j"${JOBS:-2}" --target otagw otagw-sim otatool
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
# Both ports are chosen first: otagw starts first (it makes its TLS certificate, which the
# simulator's wallet then trusts), its CMPP link connects once the simulator listens.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
ismg=$(free_port)
cert=$tmp/otagw-cert.pem
# No plain_http: TLS is the default. [tls] self_signed = yes (the default) generates cert
# and key on first start; a real deployment names its own files there.
# The transport key the platforms wrap keys under: a 3DES 2-key key (3DES-ECB carries DES,
# 3DES and AES keys alike). The master key that seals the store is made by otagw itself.
"$build/bin/otatool" keys-gen-master "$tmp/transport.key" --len 16
cat > "$tmp/otagw.conf" <<EOF
[gateway]
listen = 127.0.0.1:$port
log_file = $tmp/otagw.log
[tls]
cert = $cert
key = $tmp/otagw-key.pem
[engine]
db = $tmp/otagw.db
[keys]
# Keys are imported wrapped under this transport key, with their KCVs (docs/keys.md).
transport_key_file = $tmp/transport.key
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
# API tokens (issue #7, docs/auth.md): made offline in the auth file next to the engine
# database, shown once, stored only as SHA-256: an admin for the calls below, a client for
# the simulator's wallet. Every API route but health and the OpenAPI document needs one.
"$build/bin/otatool" token create --db "$tmp/otagw.db" --name demo-admin --role admin \
  --out "$tmp/admin.tok" > /dev/null
"$build/bin/otatool" token create --db "$tmp/otagw.db" --name demo-wallet --role client \
  --out "$tmp/wallet.tok" > /dev/null
"$build/bin/otagw" -c "$tmp/otagw.conf" --port-file "$tmp/port" > "$tmp/otagw.out" 2>&1 &
gw_pid=$!
wait_file "$tmp/port"
"$build/bin/otagw-sim" --ismg "127.0.0.1:$ismg" --secret otagw-test --population "$pop" \
  --wallet-url "https://127.0.0.1:$port" --wallet-ca "$cert" --wallet-token "@$tmp/wallet.tok" \
  --port-file "$tmp/sim.json" --counts-file "$tmp/counts.json" 2> "$tmp/sim.err" &
sim_pid=$!
wait_file "$tmp/sim.json"
cat "$tmp/otagw.out"
echo "TLS (1.2/1.3 only): otagw generated a self-signed certificate, $(grep -o 'sha256=[0-9A-F:]*' "$tmp/otagw.log" | head -n 1)"
if command -v curl >/dev/null; then
  echo "  curl --cacert otagw-cert.pem https://127.0.0.1:$port/v1/health -> HTTP $(curl -sS -o /dev/null -w '%{http_code} over %{scheme}' --cacert "$cert" "https://127.0.0.1:$port/v1/health")"
  echo "  plain http://127.0.0.1:$port/v1/health -> $(curl -sS -m 3 -o /dev/null "http://127.0.0.1:$port/v1/health" 2>&1 | head -c 60 || true)"
fi
echo "simulator: ISMG on 127.0.0.1:$ismg, $(wc -l < "$pop") sample SEs"

API_TOKEN=$(cat "$tmp/admin.tok") \
python3 - "$(cat "$tmp/port")" "$pop" "$cert" "$build/bin/otatool" "$tmp/transport.key" <<'EOF'
import json, os, ssl, subprocess, sys, time, urllib.request, urllib.error

base = f"https://127.0.0.1:{sys.argv[1]}"
ses = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
tls = ssl.create_default_context(cafile=sys.argv[3])  # verifies chain and 127.0.0.1

def call(method, path, body=None, token=os.environ["API_TOKEN"]):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10, context=tls) as r:
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
print("auth: GET /v1/stats without a token ->", call("GET", "/v1/stats", token="")[0],
      "; with the admin token ->", call("GET", "/v1/stats")[0])

ALG = {"AES": 0x2, "DES": 0x1, "3DES2": 0x5, "3DES3": 0x9}
CIPHER = {"AES": "aes", "DES": "des", "3DES2": "3des2", "3DES3": "3des3"}

def wrap(cipher, key):
    # what a platform does before the import: otatool wrap-key under the shared transport key
    out = subprocess.run([sys.argv[4], "wrap-key", "--transport-key-file", sys.argv[5],
                          "--cipher", cipher, "--key", key], check=True, capture_output=True,
                         text=True).stdout
    w = json.loads(out)
    return w["wrapped"], w["kcv"]

for s in ses:
    must("register", call("POST", "/v1/ses", {"seid": s["seid"], "msisdn": s["msisdn"],
                                              "batch": "sample"}))
    for k in s["scp80"]:
        wc, cc = wrap(CIPHER[k["kic_alg"]], k["kic"])
        wi, ci = wrap(CIPHER[k["kid_alg"]], k["kid"])
        must("keys", call("POST", f"/v1/ses/{s['seid']}/keys/scp80", {
            "tar": k["tar"], "kvn": k["kvn"], "spi": "1639",
            "kic": "%02X" % (k["kvn"] << 4 | ALG[k["kic_alg"]]),
            "kid": "%02X" % (k["kvn"] << 4 | ALG[k["kid_alg"]]),
            "kic_key_wrapped": wc, "kid_key_wrapped": wi, "kcv": cc + ci, "cc_len": 8}))
    for k in s.get("scp02", []):
        w = [wrap("3des2", k[n]) for n in ("enc", "mac", "dek")]
        must("sd keys", call("POST", f"/v1/ses/{s['seid']}/keys/sd", {
            "sd_aid": "A000000151000000", "kvn": k["kvn"], "enc_wrapped": w[0][0],
            "mac_wrapped": w[1][0], "dek_wrapped": w[2][0], "kcv": "".join(x[1] for x in w)}))
    print(f"registered SE {s['seid'][:24]:24} MSISDN {s['msisdn']}, "
          f"{len(s['scp80'])} SCP80 + {len(s.get('scp02', []))} SCP02 key set(s) imported "
          "wrapped under the transport key, KCVs checked")

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
