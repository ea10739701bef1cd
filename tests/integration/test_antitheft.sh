#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Anti-theft end to end (issue #7, ITU-T X.1127): otagw-sim plays the ISMG
# and the cards; otagw gets N SEs (default 20000, ANTITHEFT_SES overrides)
# with AES SCP80 keys over HTTP, a rate-capped job over all of them starts
# first and fills the engine's backlog behind a 100 parts/s link, then a
# lock for another SE must reach a verified PoR (and its status words) within
# seconds while most of the batch is still waiting. Also: msisdn mismatch and
# a key set below the anti-theft minimum are refused (409), bad input is 400,
# the stats route and the log show the request -> PoR time against 15 min.
# Loopback only; every wait is bounded; every process is stopped on exit.
set -euo pipefail
# shellcheck source=lib_gateway.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_gateway.sh"
gw_init "$1"
gw_need otagw otagw-sim otatool
N=${ANTITHEFT_SES:-20000}
# below ~3000 the engine's pre-built backlog (~1000 parts) is most of the campaign: no proof
[ "$N" -ge 3000 ] || fail "ANTITHEFT_SES=$N: at least 3000"

# N campaign SEs (batch bulk), the SE to lock (an application on it) and one with weak keys.
python3 - "$tmp/pop.jsonl" "$N" <<'PYEOF'
import json, os, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"seid": "5345B2%014d" % i, "msisdn": "86137%08d" % i, "scp80": [
            {"kvn": 1, "tar": "000000", "kic_alg": "AES", "kic": os.urandom(16).hex(),
             "kid_alg": "AES", "kid": os.urandom(16).hex()}]}) + "\n")
    for j, seid in enumerate(("5345A0000000000000000001", "5345A0000000000000000002")):
        f.write(json.dumps({"seid": seid, "msisdn": "8613500000%03d" % j, "scp80": [
            {"kvn": 1, "tar": "000000", "kic_alg": "AES", "kic": os.urandom(16).hex(),
             "kid_alg": "AES", "kid": os.urandom(16).hex()}], "free_nv": 65536,
            "apps": [{"aid": "A0000000041010", "state": "selectable"}]}) + "\n")
PYEOF

gw_start_ismg "$tmp/pop.jsonl" --window 256 --counts-file "$tmp/counts.json"

{
  gw_conf_gateway 0 info
  gw_conf_engine "durable = no" "por_timeout = 120s" "dlr_timeout = 120s" "max_attempts = 1"
  gw_conf_section wallet "wait_pull = no"
  gw_conf_clear_import
  gw_conf_section antitheft "tar = 000000" "apps = A0000000041010" "card_lock = yes"
  gw_conf_link_cmpp "$ismg" "rate = 100" "window = 16" "resp_timeout = 30s"
} > "$tmp/otagw.conf"
"$bin/otagw" -c "$tmp/otagw.conf" --check-config > "$tmp/dump.conf" || fail "--check-config"
grep -q "apps = a0000000041010" "$tmp/dump.conf" || fail "--check-config does not show [antitheft]"
# API tokens (issue #7): an admin for the set-up, an authorisation server for the requests.
gw_make_token at-admin admin admin.tok
gw_make_token x1127-as anti-theft at.tok
gw_start_otagw

cat > "$tmp/api.py" <<'PYEOF'
import http.client, json, sys, time

port, pop, admin_tok, at_tok = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ses = [json.loads(l) for l in open(pop) if l.strip()]
bulk = [s for s in ses if s["seid"].startswith("5345B2")]
at, weak = [s for s in ses if s["seid"].startswith("5345A0")]

from gwapi import Conn, register_all

def Api(tok=None):
    return Conn(port, tok if tok is not None else admin_tok,
                retry_on=(ConnectionError, http.client.HTTPException))

api = Api()
asrv = Api(at_tok)

def expect(what, got, status, code=None):
    st, body = got
    if st != status or (code and body.get("error", {}).get("code") != code):
        sys.exit(f"{what}: got {st} {body}, want {status} {code or ''}")
    return body

for _ in range(100):
    st, h = api.call("GET", "/v1/health")
    if st == 200 and h["links"] and all(l["state"] == "up" for l in h["links"]):
        break
    time.sleep(0.1)
else:
    sys.exit(f"link not up: {h}")

def keys(s, spi="1639"):
    ks = s["scp80"][0]
    return {"tar": "000000", "kvn": 1, "spi": spi, "kic": "12", "kid": "12",
            "kic_key": ks["kic"], "kid_key": ks["kid"], "cc_len": 8}

# Register everything with keys, 8 connections.
t0 = time.time()
# the second anti-theft SE gets a key set without ciphering: below the minimum
err = register_all(Api, ses, lambda s: {"seid": s["seid"], "msisdn": s["msisdn"],
                                        "batch": "bulk" if s in bulk else "at"},
                   lambda s: keys(s, "1239" if s is weak else "1639"))
if err:
    sys.exit(err)
print(f"registered {len(ses)} SEs with keys in {time.time() - t0:.1f} s")

# Roles, bad input and refusals first: nothing is created by them.
LOCK = "/v1/antitheft/lock"
body = {"seid": at["seid"], "msisdn": at["msisdn"], "request_id": "x1127-0001"}
expect("no token", Api("").call("POST", LOCK, body), 401, "unauthorized")
expect("admin may not lock", api.call("POST", LOCK, body), 403, "forbidden")
expect("anti-theft may not run jobs", asrv.call("POST", "/v1/jobs", {
    "kind": "filter", "batch": "bulk", "op": "scp80",
    "params": {"tar": "000000", "script": "80CA006600"}}), 403, "forbidden")
api = asrv
expect("missing msisdn", api.call("POST", LOCK, {"seid": at["seid"], "request_id": "b"}), 400,
       "missing-field")
expect("unknown field", api.call("POST", LOCK, {**body, "priority": 3}), 400, "unknown-field")
expect("bad msisdn", api.call("POST", LOCK, {**body, "msisdn": "+86"}), 400, "invalid-field")
expect("msisdn mismatch", api.call("POST", LOCK, {**body, "msisdn": weak["msisdn"]}), 409,
       "msisdn-mismatch")
expect("weak key set", api.call("POST", LOCK, {"seid": weak["seid"], "msisdn": weak["msisdn"],
                                               "request_id": "w"}), 409, "keyset-too-weak")
expect("unknown SE", api.call("POST", LOCK, {**body, "seid": "NOSUCHSE"}), 404, "se-not-found")
api = Api()
expect("antitheft op via /v1/tasks", api.call("POST", "/v1/tasks", {
    "seid": at["seid"], "op": "antitheft-lock",
    "params": {"tar": "000000", "script": "80CA006600"}}), 400)

# The campaign first: every bulk SE, rate cap above what the link takes.
job = expect("campaign", api.call("POST", "/v1/jobs", {
    "kind": "filter", "batch": "bulk", "op": "scp80", "rate_per_s": 2000,
    "params": {"tar": "000000", "script": "80CA006600"}}), 201)["id"]
deadline = time.time() + 30
while True:
    h = expect("health", api.call("GET", "/v1/health"), 200)
    if h["engine"]["waiting_bearer"] >= min(1000, len(bulk) // 4):
        break
    if time.time() > deadline:
        sys.exit(f"campaign backlog never built: {h}")
    time.sleep(0.2)
backlog = h["engine"]["waiting_bearer"]

api = asrv
t0 = time.time()
b = expect("lock", api.call("POST", LOCK, body), 202)
rid = b["id"]
assert b["state"] == "requested" and b["security"]["spi"] == "1639", b
while True:
    g = expect("GET lock", api.call("GET", f"/v1/antitheft/{rid}"), 200)
    if g["state"] in ("executed", "failed", "cancelled"):
        break
    if time.time() - t0 > 60:
        sys.exit(f"lock not final within 60 s: {g}")
    time.sleep(0.05)
took = time.time() - t0
if g["state"] != "executed":
    sys.exit(f"lock not executed: {g}")
por = g["proof_of_receipt"]
ex = g["proof_of_execution"]
assert por["verified"] and por["status"] == "00" and por["within_bound"], g
assert ex["executed"] and ex["status_words"] == ["9000", "9000"], g
if took > 10:
    sys.exit(f"lock took {took:.1f} s behind the campaign (backlog {backlog} parts)")
j = expect("job", Api().call("GET", f"/v1/jobs/{job}"), 200)
gone = sum(v for k, v in j["counts"].items() if k != "queued")
# most of it still waits (the pre-built backlog alone is ~1000 SEs: small N get a lower bar)
if len(bulk) - gone < (len(bulk) * 3 // 4 if len(bulk) >= 10000 else len(bulk) // 2):
    sys.exit(f"the campaign was mostly gone already ({gone} of {len(bulk)}): no proof")

# Idempotent: the same request again gives the same id, nothing new.
again = expect("lock again", api.call("POST", LOCK, body), 202)
assert again["id"] == rid, again
s = expect("stats", Api().call("GET", "/v1/stats"), 200)["antitheft"]
assert s["por"]["verified"] >= 1 and s["por"]["over_bound"] == 0, s
assert s["lock"]["refused"] >= 2, s
print(f"lock executed in {took * 1000:.0f} ms (PoR {por['ms']} ms) behind a backlog of "
      f"{backlog} parts; campaign: {gone} of {len(bulk)} SEs dispatched")
PYEOF
python3 "$tmp/api.py" "$port" "$tmp/pop.jsonl" "$(cat "$tmp/admin.tok")" "$(cat "$tmp/at.tok")" \
  || fail "api steps"
grep -q 'antitheft por verified' "$tmp/gw.log" || fail "no 'antitheft por verified' log line"
grep -q 'within_bound=yes' "$tmp/gw.log" || fail "no within_bound=yes in the log"
grep -q 'state=executed reason=none sw=9000,9000' "$tmp/gw.log" || fail "no result log line"
# audited: the request, the refusals, the PoR and the result, in a chain that verifies
for a in antitheft.lock antitheft.lock.refused antitheft.lock.por antitheft.lock.result; do
  grep -q "action=$a " "$tmp/gw.log" || fail "no audit entry $a"
done

gw_stop_otagw
"$bin/otatool" audit-verify --db "$tmp/otagw.db" > /dev/null || fail "audit chain does not verify"
echo "PASS test_antitheft"
