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
bin=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
sim_pid=
gw_pid=
rcv_pid=
cleanup() {
  for p in $gw_pid $sim_pid $rcv_pid; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in $gw_pid $sim_pid $rcv_pid; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  [ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -f "$tmp/gw.err" ] && tail -n 10 "$tmp/gw.err" | sed 's/^/  otagw stderr: /'
  [ -f "$tmp/gw.log" ] && grep -v level=debug "$tmp/gw.log" | tail -n 30 | sed 's/^/  otagw: /'
  exit 1
}

[ -x "$bin/otagw" ] || fail "no $bin/otagw"
[ -x "$bin/otagw-sim" ] || fail "no $bin/otagw-sim"
pop=$src/tests/sim/sample-population.jsonl
secret=00112233445566778899aabbccddeeff

# Wait (bounded, 10 s) until file $1 is non-empty.
wait_file() {
  for _ in $(seq 100); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  return 1
}

"$bin/otagw-sim" --ismg 127.0.0.1:0 --secret otagw-test --sp-id 901234 --population "$pop" \
  --port-file "$tmp/sim.json" > "$tmp/sim.out" 2> "$tmp/sim.err" &
sim_pid=$!
wait_file "$tmp/sim.json" || fail "simulator did not start: $(cat "$tmp/sim.err")"
ismg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ismg"])' "$tmp/sim.json")

# The business platform: logs every callback with the status it answered; the status comes
# from the file "mode" (500 until the test writes 200).
echo 500 > "$tmp/mode"
cat > "$tmp/receiver.py" <<'PYEOF'
import http.server, json, sys
port_file, log, mode = sys.argv[1], sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = int(open(mode).read().strip() or "500")
        with open(log, "a") as f:
            f.write(json.dumps({"sig": self.headers.get("X-Otagw-Signature"),
                                "delivery": self.headers.get("X-Otagw-Delivery"),
                                "status": status, "body": body.decode()}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(port_file, "w").write(str(s.server_address[1]))
s.serve_forever()
PYEOF
python3 "$tmp/receiver.py" "$tmp/rcv.port" "$tmp/callbacks.jsonl" "$tmp/mode" &
rcv_pid=$!
wait_file "$tmp/rcv.port" || fail "receiver did not start"
rcv_port=$(cat "$tmp/rcv.port")

cat > "$tmp/otagw.conf" <<EOF
[gateway]
listen = 127.0.0.1:0
plain_http = yes
log_level = debug
log_file = $tmp/gw.log
callback_secret = $secret
[engine]
db = $tmp/otagw.db
backoff = 1s
dlr_timeout = 60s
[wallet]
wait_pull = no
[keys]
# Test keys arrive in clear over loopback (the key store refuses that by default).
clear_import = yes
[link sim]
kind = cmpp
host = 127.0.0.1
port = $ismg
rate = 0
sp_id = 901234
secret = otagw-test
EOF

# An admin API token for the calls below (issue #7): made once in the auth file next to the
# engine database, before the daemon starts; OTAGW_TOKEN overrides it.
mint_token() {
  if [ -n "${OTAGW_TOKEN:-}" ]; then
    echo "$OTAGW_TOKEN"
  elif [ -s "$tmp/token" ]; then
    cat "$tmp/token"
  fi
}
[ -x "$bin/otatool" ] || fail "no $bin/otatool"
"$bin/otatool" token create --db "$tmp/otagw.db" --name restart-test --role admin \
  --out "$tmp/token" > /dev/null || fail "otatool token create"

start_gw() {
  rm -f "$tmp/port"
  "$bin/otagw" -c "$tmp/otagw.conf" --port-file "$tmp/port" > "$tmp/gw.out" 2>> "$tmp/gw.err" &
  gw_pid=$!
  wait_file "$tmp/port" || fail "otagw did not start"
  port=$(cat "$tmp/port")
}

cat > "$tmp/api.py" <<'PYEOF'
import hashlib, hmac, json, os, sys, time, urllib.request, urllib.error
port, cmd, pop, rcv_port, cb_log, state = sys.argv[1:7]
base = f"http://127.0.0.1:{port}"
token = os.environ.get("API_TOKEN", "")
secret = bytes.fromhex(os.environ["CB_SECRET"])
ses = [json.loads(l) for l in open(pop) if l.strip()][:4]

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except (urllib.error.URLError, ConnectionError):
        return 0, {}

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

start_gw
api before || fail "before the kill"
kill -KILL "$gw_pid"
wait "$gw_pid" 2>/dev/null || true
gw_pid=
echo 200 > "$tmp/mode"
start_gw
api after || fail "after the restart"
kill -TERM "$gw_pid"
rc=0
wait "$gw_pid" || rc=$?
gw_pid=
[ "$rc" -eq 0 ] || fail "otagw exit status $rc after SIGTERM"
echo "gateway restart: ok"
