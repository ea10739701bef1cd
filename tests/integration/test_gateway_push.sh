#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Push + pull end to end (issue #6): otagw sends a push SMS over CMPP to the
# simulator, whose wallet role (--wallet-url) calls otagw's pull API with the
# push serial and answers as the card over SCP02 (security level 03); the
# task is done only when the wallet session ends. Asserts: a bare push (info
# sync over the session) and an app lock over push reach done and the
# simulator counts the sessions done; an SE without SD keys fails no-keys;
# the serial is one-shot (a replayed pull is refused); bad input on the SD
# key route gives 4xx; an SCP80 task's result callback is signed
# (HMAC-SHA256), retried after a 500 and acknowledged once. Loopback only;
# bounded waits; every process stopped.
set -euo pipefail
# shellcheck source=lib_gateway.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_gateway.sh"
gw_init "$1"
show_sim_err() {
  [ -f "$tmp/sim.err" ] && tail -n 10 "$tmp/sim.err" | sed 's/^/  sim: /'
}
gw_fail_hook=show_sim_err
gw_need otagw otagw-sim otatool
pop=$src/tests/sim/sample-population.jsonl

# API tokens (issue #7), made in the auth file next to the engine database before either
# process starts: an admin for the calls below, a client for the simulator's wallet.
gw_make_token push-admin admin admin.tok
gw_make_token push-wallet client wallet.tok

# otagw's port must be known before the simulator starts (its wallet calls it).
port=$(gw_free_port)
gw_start_ismg "$pop" --wallet-url "http://127.0.0.1:$port" --wallet-token "@$tmp/wallet.tok" \
  --counts-file "$tmp/counts.json"

{
  gw_conf_gateway "$port" debug "callback_secret = 00112233445566778899aabbccddeeff"
  gw_conf_engine "pull_timeout = 30s" "session_timeout = 30s"
  gw_conf_clear_import
  gw_conf_section wallet "scp02_level = 03" "wait_pull = yes"
  gw_conf_link_cmpp "$ismg" "rate = 0"
} > "$tmp/otagw.conf"
gw_launch_otagw
gw_wait_listening "otagw did not start"

# The business platform: records signed result callbacks (answers 500 once, then 200).
gw_start_receiver "$tmp/platform.port" "$tmp/callbacks.jsonl"

API_TOKEN=$(cat "$tmp/admin.tok") WALLET_TOKEN=$(cat "$tmp/wallet.tok") \
python3 -W ignore - "$port" "$pop" "$(cat "$tmp/platform.port")" "$tmp/callbacks.jsonl" <<'PYEOF' || fail "push/pull checks"
import json, os, sys, time
from gwapi import make_call
port, pop, plat_port, cb_log = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ses = [json.loads(l) for l in open(pop) if l.strip()]
call = make_call(port, os.environ["API_TOKEN"])

def kcv3des(key):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    e = Cipher(algorithms.TripleDES(bytes.fromhex(key)), modes.ECB()).encryptor()
    return (e.update(b"\x00" * 8) + e.finalize())[:3].hex()

for _ in range(100):
    st, h = call("GET", "/v1/health")
    if st == 200 and all(l["state"] == "up" for l in h["links"]):
        break
    time.sleep(0.1)
else:
    sys.exit(f"link not up: {h}")

ISD = "A000000151000000"
for s in ses:
    st, b = call("POST", "/v1/ses", {"seid": s["seid"], "msisdn": s["msisdn"]})
    assert st == 201, (st, b)
# SD keys for the SEs whose cards have SCP02 keys; a push to one without must fail no-keys.
keyed = [s for s in ses if "scp02" in s]
unkeyed = [s for s in ses if "scp02" not in s]
assert len(keyed) >= 2 and unkeyed, "sample population changed"
for s in keyed:
    k = s["scp02"][0]
    body = {"sd_aid": ISD, "kvn": k["kvn"], "enc": k["enc"], "mac": k["mac"], "dek": k["dek"],
            "kcv": kcv3des(k["enc"]) + kcv3des(k["mac"]) + kcv3des(k["dek"])}
    st, b = call("POST", f"/v1/ses/{s['seid']}/keys/sd", body)
    assert st == 201 and set(b) <= {"seid", "sd_aid", "kvn", "current"}, (st, b)  # no key bytes

# Bad input on the SD key route: refused, nothing stored.
s0, k0 = ses[0], ses[0]["scp02"][0]
good = {"sd_aid": ISD, "kvn": 1, "enc": k0["enc"], "mac": k0["mac"], "dek": k0["dek"]}
for what, body, status, code in [
    ("bad hex", dict(good, enc="XY" * 16), 400, "bad-hex"),
    ("short key", dict(good, mac=k0["mac"][:30]), 400, "bad-hex"),
    ("kvn 0", dict(good, kvn=0), 400, "bad-kvn"),
    ("unknown member", dict(good, extra=1), 400, "unknown-field"),
    ("wrong kcv", dict(good, kcv="000000" * 3), 400, "bad-kcv"),
]:
    st, b = call("POST", f"/v1/ses/{s0['seid']}/keys/sd", body)
    assert st == status and b["error"]["code"] == code, (what, st, b)
st, b = call("POST", "/v1/ses/NOSUCHSE/keys/sd", good)
assert st == 404, (st, b)

def submit(seid, op, params):
    st, b = call("POST", "/v1/tasks", {"seid": seid, "op": op, "channel": "push", "params": params})
    assert st == 201, (op, st, b)
    return b["id"]

ids = {
    "info": submit(keyed[1]["seid"], "push", {}),
    "lock": submit(keyed[0]["seid"], "app-lock", {"aid": "A0000000871002FF86"}),
    "nokeys": submit(unkeyed[0]["seid"], "push", {}),
}
final = {}
t0 = time.time()
while len(final) < len(ids) and time.time() - t0 < 60:
    for name, i in ids.items():
        if name not in final:
            st, t = call("GET", f"/v1/tasks/{i}")
            assert st == 200, (st, t)
            if t["state"] in ("done", "failed", "expired", "cancelled"):
                final[name] = t
    time.sleep(0.1)
assert len(final) == len(ids), f"not final in 60 s: {set(ids) - set(final)}"
for name in ("info", "lock"):
    t = final[name]
    assert t["state"] == "done", (name, t)
    r = t.get("result") or {}
    assert r.get("last_sw") in ("9000", None) or r.get("last_sw", "").startswith("61"), (name, r)
assert final["nokeys"]["state"] == "failed" and final["nokeys"]["reason"] == "no-keys", final["nokeys"]
# The lock ran on the card over SCP02: the app's task result names the steps done.
print("push/pull ok:", {n: (t["state"], t["reason"]) for n, t in final.items()})

# A result callback: an SCP80 task with a callback_url; the platform refuses the first POST
# (500), otagw retries, and the second is acknowledged; the HMAC verifies.
import hashlib, hmac, os
ALG = {"AES": 0x2, "DES": 0x1, "3DES2": 0x5, "3DES3": 0x9}
k = keyed[0]["scp80"][0]
st, b = call("POST", f"/v1/ses/{keyed[0]['seid']}/keys/scp80", {
    "tar": k["tar"], "kvn": k["kvn"], "spi": "1639",
    "kic": "%02X" % (k["kvn"] << 4 | ALG[k["kic_alg"]]),
    "kid": "%02X" % (k["kvn"] << 4 | ALG[k["kid_alg"]]),
    "kic_key": k["kic"], "kid_key": k["kid"], "cc_len": 8})
assert st == 201, (st, b)
st, b = call("POST", "/v1/tasks", {"seid": keyed[0]["seid"], "op": "scp80",
             "params": {"tar": "000000", "script": "80CA006600"},
             "callback_url": f"http://127.0.0.1:{plat_port}/otagw"})
assert st == 201, (st, b)
cb_task = b["id"]
secret = bytes.fromhex("00112233445566778899aabbccddeeff")
got = []
t0 = time.time()
while time.time() - t0 < 30:
    if os.path.exists(cb_log):
        got = [json.loads(l) for l in open(cb_log) if l.strip()]
        if len(got) >= 2:
            break
    time.sleep(0.1)
assert len(got) >= 2, f"callbacks seen: {got}"
for g in got[:2]:
    want = "sha256=" + hmac.new(secret, g["body"].encode(), hashlib.sha256).hexdigest()
    assert g["sig"] == want, ("bad signature", g)
    t = json.loads(g["body"])["task"]
    assert t["id"] == cb_task and t["state"] == "done", t
assert got[0]["delivery"] == got[1]["delivery"] and got[0]["body"] == got[1]["body"], got
time.sleep(1.5)
n = len([l for l in open(cb_log) if l.strip()])
assert n == 2, f"{n} callbacks after the acknowledgement, want 2"
print("callback ok: signed, retried once after a 500, acknowledged, not repeated")

# A pull with an unknown serial is refused (the real ones were used by the simulator).
st, b = call("POST", "/v1/wallet/pull", {"seid": keyed[1]["seid"], "serial": "00" * 16},
            token=os.environ["WALLET_TOKEN"])
assert st == 404 and b["error"]["code"] == "unknown-serial", (st, b)
PYEOF

# The simulator's wallet counted the sessions; nothing went wrong on the cards.
gw_stop_otagw
kill -TERM "$sim_pid"
for _ in $(seq 50); do kill -0 "$sim_pid" 2>/dev/null || break; sleep 0.1; done
wait "$sim_pid" 2>/dev/null || true
sim_pid=
python3 - "$tmp/counts.json" <<'PYEOF' || fail "simulator counts"
import json, sys
c = json.load(open(sys.argv[1]))
w = c["wallet"]
print("wallet counts:", w)
# 3 pulls: info and lock done, the SE without SD keys ended failed (no-keys).
assert w["wallet_pulls"] == 3 and w["wallet_sessions_done"] == 2, w
assert w["wallet_sessions_failed"] == 1 and w["wallet_http_errors"] == 0, w
k = c["cards"]
assert k["bad_cc"] == 0 and k["counter_reused"] == 0, k
PYEOF
echo "PASS: push -> wallet pull -> SCP02 session -> done"
