#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Results and callbacks survive kill -9 of the daemon (issue #6 "Restart
# test"). otagw-sim plays the ISMG; otagw (port 0, --port-file) gets SEs and
# push tasks with a callback_url (push is done on its DLR: wait_pull = no).
# The business platform (a small Python receiver) answers 500 to every
# callback at first, so every task becomes final while its callback keeps
# failing; otagw is then killed with SIGKILL, the receiver switches to 200,
# otagw restarts on the same files. Asserted: every task is final (done)
# after the restart with its result; every callback was acknowledged exactly
# once (one 2xx per task, none sent after it), each POST carries the right
# HMAC-SHA256 signature and the same body and delivery id on every retry;
# tasks accepted (delayed) just before the kill run after the restart and
# call back once; the SEs registered before the kill are still there, and
# so is the platform model an info-sync task (SCP80) read from the card.
# Loopback only; every wait is bounded; every process started is stopped on exit.
#
# Security settings for a loopback test: plain_http = yes (no TLS), an admin
# token from `otatool token create` (every API call sends "Authorization:
# Bearer ..."; OTAGW_TOKEN overrides), [keys] clear_import = yes.
set -euo pipefail
# shellcheck source=lib_gateway.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_gateway.sh"
gw_init "$1"
gw_need otagw otagw-sim otatool
pop=$src/tests/sim/sample-population.jsonl
secret=00112233445566778899aabbccddeeff

gw_start_ismg "$pop"

# The business platform: logs every callback with the status it answered; the status comes
# from the file "mode" (500 until the test writes 200).
echo 500 > "$tmp/mode"
gw_start_receiver "$tmp/rcv.port" "$tmp/callbacks.jsonl" "$tmp/mode"
rcv_port=$(cat "$tmp/rcv.port")

{
  gw_conf_gateway 0 debug "callback_secret = $secret"
  gw_conf_engine "backoff = 1s" "dlr_timeout = 60s"
  gw_conf_section wallet "wait_pull = no"
  gw_conf_clear_import
  gw_conf_link_cmpp "$ismg" "rate = 0"
} > "$tmp/otagw.conf"

# An admin API token for the calls below (issue #7): made once in the auth file next to the
# engine database, before the daemon starts; OTAGW_TOKEN overrides it.
mint_token() {
  if [ -n "${OTAGW_TOKEN:-}" ]; then
    echo "$OTAGW_TOKEN"
  elif [ -s "$tmp/token" ]; then
    cat "$tmp/token"
  fi
}
gw_make_token restart-test admin token

cat > "$tmp/api.py" <<'PYEOF'
import hashlib, hmac, json, os, sys, time
from gwapi import make_call
port, cmd, pop, rcv_port, cb_log, state = sys.argv[1:7]
token = os.environ.get("API_TOKEN", "")
secret = bytes.fromhex(os.environ["CB_SECRET"])
ses = [json.loads(l) for l in open(pop) if l.strip()][:4]
call = make_call(port, token, down_ok=True)

def wait_link():
    h = {}
    for _ in range(100):
        st, h = call("GET", "/v1/health")
        if st == 200 and h.get("links") and all(l["state"] == "up" for l in h["links"]):
            return
        time.sleep(0.1)
    sys.exit(f"link not up within 10 s: {h}")

def callbacks():
    if not os.path.exists(cb_log):
        return []
    return [json.loads(l) for l in open(cb_log) if l.strip()]

def wait_until(what, pred, limit_s):
    t0 = time.time()
    while time.time() - t0 < limit_s:
        if pred():
            return
        time.sleep(0.1)
    sys.exit(f"{what}: not within {limit_s} s")

if cmd == "before":
    wait_link()
    for s in ses:
        st, b = call("POST", "/v1/ses", {"seid": s["seid"], "msisdn": s["msisdn"], "batch": "rs"})
        assert st == 201, (st, b)
    # The platform model (spec 5.8.7): an info-sync over SCP80 reads the card's apps into the
    # SE's model, which must survive the kill too.
    s0, ks = ses[0], ses[0]["scp80"][0]
    alg = {"AES": 0x2, "DES": 0x1, "3DES2": 0x5, "3DES3": 0x9}
    st, b = call("POST", f"/v1/ses/{s0['seid']}/keys/scp80", {
        "tar": ks["tar"], "kvn": ks["kvn"], "spi": "1639",
        "kic": "%02X" % (ks["kvn"] << 4 | alg[ks["kic_alg"]]),
        "kid": "%02X" % (ks["kvn"] << 4 | alg[ks["kid_alg"]]),
        "kic_key": ks["kic"], "kid_key": ks["kid"], "cc_len": 8})
    assert st == 201, (st, b)
    st, b = call("POST", "/v1/tasks", {"seid": s0["seid"], "op": "info-sync",
                                       "params": {"scope": ["apps"]}})
    assert st == 201, (st, b)
    sync = b["id"]
    wait_until("info-sync final", lambda: call("GET", f"/v1/tasks/{sync}")[1].get("state")
               in ("done", "failed", "expired", "cancelled"), 60)
    st, t = call("GET", f"/v1/tasks/{sync}")
    assert t["state"] == "done", t
    st, se = call("GET", f"/v1/ses/{s0['seid']}")
    assert st == 200 and se["model_known"], (st, se)
    want = {a["aid"].upper() for a in s0.get("apps", [])}
    got = {a["aid"].upper() for a in se["apps"] + se["sds"]}  # SSDs show as SDs
    assert want and want <= got and se["apps"], (want, se["apps"], se["sds"])
    json.dump(se["apps"], open(state + ".apps", "w"))
    ids = []
    for i in range(10):
        s = ses[i % len(ses)]
        st, b = call("POST", "/v1/tasks", {"seid": s["seid"], "op": "push", "params": {},
                     "callback_url": f"http://127.0.0.1:{rcv_port}/cb/{i}"})
        assert st == 201, (st, b)
        ids.append(b["id"])
    json.dump(ids, open(state, "w"))
    # Every task final and its callback tried (and refused with 500) at least once.
    def all_tried():
        seen = {json.loads(c["body"])["task"]["id"] for c in callbacks()}
        return set(ids) <= seen
    wait_until("first callback attempts", all_tried, 60)
    assert all(c["status"] == 500 for c in callbacks())
    # Three more accepted but not yet run when the daemon dies (delayed 3 s).
    for i in range(3):
        s = ses[i]
        st, b = call("POST", "/v1/tasks", {"seid": s["seid"], "op": "push", "params": {},
                     "schedule": {"delay_s": 3},
                     "callback_url": f"http://127.0.0.1:{rcv_port}/late/{i}"})
        assert st == 201, (st, b)
        ids.append(b["id"])
        st, t = call("GET", f"/v1/tasks/{b['id']}")
        assert st == 200 and t["state"] == "queued", (st, t)
    json.dump(ids, open(state, "w"))
    print(f"before kill: 10 tasks final, {len(callbacks())} callback POSTs refused, 3 queued")

elif cmd == "after":
    ids = json.load(open(state))
    wait_link()
    def task(i):
        st, t = call("GET", f"/v1/tasks/{i}")
        assert st == 200, (i, st, t)
        return t
    wait_until("tasks final after the restart",
               lambda: all(task(i)["state"] in ("done", "failed", "expired", "cancelled")
                           for i in ids), 60)
    for i in ids:
        t = task(i)
        assert t["state"] == "done" and t["attempts"] >= 1, (i, t)
    def all_acked():
        acked = {json.loads(c["body"])["task"]["id"] for c in callbacks() if c["status"] == 200}
        return set(ids) <= acked
    wait_until("acknowledged callbacks after the restart", all_acked, 60)
    time.sleep(3)  # longer than the first back-off: a callback sent again would show by now
    got = callbacks()
    per_task = {}
    for c in got:
        want = "sha256=" + hmac.new(secret, c["body"].encode(), hashlib.sha256).hexdigest()
        assert c["sig"] == want, ("bad signature", c)
        t = json.loads(c["body"])["task"]
        assert t["state"] == "done", t
        per_task.setdefault(t["id"], []).append(c)
    assert set(per_task) == set(ids), (sorted(per_task), ids)
    for i, cs in per_task.items():
        oks = [c for c in cs if c["status"] == 200]
        assert len(oks) == 1, (i, len(oks), "acknowledged more than once")
        assert cs[-1]["status"] == 200, (i, "sent again after its acknowledgement")
        assert len({c["body"] for c in cs}) == 1, (i, "body changed between retries")
        assert len({c["delivery"] for c in cs}) == 1, (i, "delivery id changed")
        if i in ids[:10]:
            assert len(cs) >= 2, (i, "no failed attempt before the kill")
    for s in ses:
        st, b = call("GET", f"/v1/ses/{s['seid']}")
        assert st == 200 and b["msisdn"] == s["msisdn"], (st, b)
    st, b = call("GET", f"/v1/ses/{ses[0]['seid']}")
    assert b["model_known"] and b["apps"] == json.load(open(state + ".apps")), b
    print(f"after restart: {len(ids)} tasks done, each callback acknowledged once "
          f"({len(got)} POSTs in all, signatures ok)")
PYEOF

api() {
  API_TOKEN=$(mint_token) CB_SECRET=$secret python3 -W ignore "$tmp/api.py" "$port" "$1" "$pop" \
    "$rcv_port" "$tmp/callbacks.jsonl" "$tmp/state.json"
}

gw_start_otagw
api before || fail "before the kill"
gw_kill9_otagw
echo 200 > "$tmp/mode"
gw_start_otagw
api after || fail "after the restart"
gw_stop_otagw
echo "gateway restart: ok"
