#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The otagw daemon end to end (issue #6): otagw-sim plays the ISMG and the
# cards of tests/sim/sample-population.jsonl; otagw (port 0, --port-file)
# gets its SEs and SCP80 keys over HTTP, then SCP80 tasks go API -> engine
# -> CMPP -> simulated card -> PoR -> done. Also: bad input on the SE and key
# routes gives the right 4xx and changes nothing; SIGTERM stops otagw with
# status 0 within 10 s; a task accepted right before kill -9 is done after
# the restart. The task steps run only when POST /v1/tasks is served (it
# comes from gateway/api_tasks.c); without it they are reported as skipped.
# Loopback only; every wait is bounded; every process is stopped on exit.
set -euo pipefail
# shellcheck source=lib_gateway.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_gateway.sh"
gw_init "$1"
gw_need otagw otagw-sim otatool
pop=$src/tests/sim/sample-population.jsonl

gw_start_ismg "$pop" --counts-file "$tmp/counts.json"

{
  gw_conf_gateway 0 debug
  gw_conf_engine "backoff = 1s" "por_timeout = 30s" "dlr_timeout = 60s"
  gw_conf_clear_import
  gw_conf_section wallet \
    "# The simulator records push SMS but plays no wallet yet: push is done on its DLR." \
    "wait_pull = no"
  gw_conf_link_cmpp "$ismg" "rate = 0"
} > "$tmp/otagw.conf"
"$bin/otagw" -c "$tmp/otagw.conf" --check-config > "$tmp/dump.conf" || fail "--check-config"
grep -q "port = $ismg" "$tmp/dump.conf" || fail "--check-config does not show the link port"
printf '[gateway]\nlisten = 127.0.0.1:0\nbogus = 1\n' > "$tmp/bad.conf"
rc=0
"$bin/otagw" -c "$tmp/bad.conf" 2> "$tmp/bad.err" || rc=$?
[ "$rc" -eq 2 ] || fail "bad config: status $rc, want 2"
grep -q "bad.conf:3: " "$tmp/bad.err" || fail "bad config message: $(cat "$tmp/bad.err")"

start_gw() {
  gw_start_otagw
  gw_wait_listening "no listening line"
}

cat > "$tmp/api.py" <<'PYEOF'
import json, os, sys, time, warnings
warnings.simplefilter("ignore")

from gwapi import make_call

port, cmd, pop = sys.argv[1], sys.argv[2], sys.argv[3]
ses = [json.loads(l) for l in open(pop) if l.strip()]
call = make_call(port, os.environ["API_TOKEN"])

def expect(what, got, status, code=None):
    st, body = got
    if st != status or (code and body.get("error", {}).get("code") != code):
        sys.exit(f"{what}: got {st} {body}, want {status} {code or ''}")
    if st >= 400:
        e = body.get("error", {})
        if e.get("status") != st or not e.get("message"):
            sys.exit(f"{what}: error shape {body}")
    return body

ALG = {"AES": 0x2, "DES": 0x1, "3DES2": 0x5, "3DES3": 0x9}
def keyset(s, ks):
    return {"tar": ks["tar"], "kvn": ks["kvn"], "spi": "1639",
            "kic": "%02X" % (ks["kvn"] << 4 | ALG[ks["kic_alg"]]),
            "kid": "%02X" % (ks["kvn"] << 4 | ALG[ks["kid_alg"]]),
            "kic_key": ks["kic"], "kid_key": ks["kid"], "cc_len": 8}

def kcv(alg, key):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    k = bytes.fromhex(key)
    if alg == "AES":
        e = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
        return (e.update(b"\x01" * 16) + e.finalize())[:3].hex()
    e = Cipher(algorithms.TripleDES(k), modes.ECB()).encryptor()
    return (e.update(b"\x00" * 8) + e.finalize())[:3].hex()

def wait_link():
    for _ in range(100):
        st, h = call("GET", "/v1/health")
        if st == 200 and h["status"] == "ok" and all(l["state"] == "up" for l in h["links"]):
            return h
        time.sleep(0.1)
    sys.exit(f"link not up within 10 s: {h}")

def tasks_served():
    st, body = call("POST", "/v1/tasks", raw=b"{}")
    return not (st == 404 and body.get("error", {}).get("code") == "not-found")

def submit(seid, tar="000000", script="80CA006600"):
    st, body = call("POST", "/v1/tasks", {"seid": seid, "op": "scp80",
                                          "params": {"tar": tar, "script": script}})
    if st not in (200, 201, 202):
        sys.exit(f"submit {seid}: {st} {body}")
    return body["id"]

def wait_final(ids, limit_s=60):
    final = {}
    t0 = time.time()
    while time.time() - t0 < limit_s and len(final) < len(ids):
        for i in ids:
            if i in final:
                continue
            st, t = call("GET", f"/v1/tasks/{i}")
            if st != 200:
                sys.exit(f"GET task {i}: {st} {t}")
            if t["state"] in ("done", "failed", "expired", "cancelled"):
                final[i] = t
        time.sleep(0.1)
    if len(final) < len(ids):
        sys.exit(f"tasks not final within {limit_s} s: {sorted(set(ids) - set(final))}")
    return final

if cmd == "setup":
    h = wait_link()
    assert "queued" in h["engine"] and "active" in h["engine"], h
    # The last SE gets no keys: its task must fail without keys.
    for s in ses:
        b = expect("register " + s["seid"], call("POST", "/v1/ses", {"seid": s["seid"],
                   "msisdn": s["msisdn"], "batch": "sample"}), 201)
        assert b == {"seid": s["seid"], "msisdn": s["msisdn"], "batch": "sample"}, b
    for s in ses[:-1]:
        for ks in s["scp80"]:
            body = keyset(s, ks)
            try:
                body["kcv"] = kcv(ks["kic_alg"], ks["kic"]) + kcv(ks["kid_alg"], ks["kid"])
            except ImportError:
                pass
            b = expect("keys " + s["seid"], call("POST", f"/v1/ses/{s['seid']}/keys/scp80", body), 201)
            assert set(b) <= {"seid", "tar", "kvn", "current"}, b   # never key bytes
            assert ks["kic"] not in json.dumps(b)
    # Registering again with the same MSISDN is fine (idempotent).
    expect("re-register", call("POST", "/v1/ses", {"seid": ses[0]["seid"], "msisdn": ses[0]["msisdn"]}), 201)
    print("setup ok: %d SEs, keys for %d" % (len(ses), len(ses) - 1))

elif cmd == "bad":
    s0 = ses[0]
    k = keyset(s0, s0["scp80"][0])
    cases = [
        ("malformed JSON", call("POST", "/v1/ses", raw=b'{"seid": "X1", '), 400, "bad-json"),
        ("not an object", call("POST", "/v1/ses", raw=b'[1]'), 400, "bad-json"),
        ("duplicate key", call("POST", "/v1/ses", raw=b'{"seid":"X1","seid":"X2","msisdn":"1"}'), 400, "bad-json"),
        ("wrong type", call("POST", "/v1/ses", {"seid": 5, "msisdn": "1"}), 400, "bad-type"),
        ("unknown member", call("POST", "/v1/ses", {"seid": "X1", "msisdn": "1", "x": 1}), 400, "unknown-field"),
        ("missing msisdn", call("POST", "/v1/ses", {"seid": "X1"}), 400, "missing-field"),
        ("bad msisdn", call("POST", "/v1/ses", {"seid": "X1", "msisdn": "+8613"}), 400, "bad-msisdn"),
        ("long msisdn", call("POST", "/v1/ses", {"seid": "X1", "msisdn": "1" * 22}), 400, "bad-msisdn"),
        ("bad seid", call("POST", "/v1/ses", {"seid": "X 1", "msisdn": "1"}), 400, "bad-seid"),
        ("long seid", call("POST", "/v1/ses", {"seid": "A" * 65, "msisdn": "1"}), 400, "bad-seid"),
        ("dup SE other MSISDN", call("POST", "/v1/ses", {"seid": s0["seid"], "msisdn": "999"}), 409, "se-msisdn-conflict"),
        ("unknown SE", call("GET", "/v1/ses/NOSUCHSE"), 404, "se-not-found"),
        ("keys unknown SE", call("POST", "/v1/ses/NOSUCHSE/keys/scp80", k), 404, "se-not-found"),
        ("keys bad hex", call("POST", f"/v1/ses/{s0['seid']}/keys/scp80", {**k, "kic_key": "ZZ" * 16}), 400, "bad-hex"),
        ("keys odd hex", call("POST", f"/v1/ses/{s0['seid']}/keys/scp80", {**k, "tar": "00000"}), 400, "bad-hex"),
        ("keys short AES", call("POST", f"/v1/ses/{s0['seid']}/keys/scp80", {**k, "kid_key": "00" * 15}), 400, "bad-key"),
        ("keys kvn mismatch", call("POST", f"/v1/ses/{s0['seid']}/keys/scp80", {**k, "kvn": 2}), 400, "bad-key-set"),
        ("keys kvn type", call("POST", f"/v1/ses/{s0['seid']}/keys/scp80", {**k, "kvn": "1"}), 400, "bad-kvn"),
        ("keys cc_len", call("POST", f"/v1/ses/{s0['seid']}/keys/scp80", {**k, "cc_len": 5}), 400, "bad-key-set"),
        ("keys kcv mismatch", call("POST", f"/v1/ses/{s0['seid']}/keys/scp80", {**k, "kic_key": "00" * 16, "kcv": "000000000000"}), 400, "bad-kcv"),
        ("keys unknown member", call("POST", f"/v1/ses/{s0['seid']}/keys/scp80", {**k, "key": "00"}), 400, "unknown-field"),
    ]
    for what, got, st, code in cases:
        expect(what, got, st, code)
    # Nothing changed: the SE keeps its MSISDN, X1 does not exist.
    b = expect("SE after bad input", call("GET", f"/v1/ses/{s0['seid']}"), 200)
    assert b["msisdn"] == s0["msisdn"] and b["batch"] == "sample", b
    expect("X1 absent", call("GET", "/v1/ses/X1"), 404, "se-not-found")
    print("bad input ok: %d cases" % len(cases))

elif cmd == "tasks":
    if not tasks_served():
        print("SKIP: POST /v1/tasks not served by this build (gateway/api_tasks.c missing)")
        sys.exit(0)
    ids = {}
    for s in ses:
        for ks in s.get("scp80", [])[:2]:
            ids[submit(s["seid"], ks["tar"])] = (s["seid"], ks["tar"])
    ids[submit(ses[0]["seid"])] = (ses[0]["seid"], "000000")   # a second task queued behind
    # A platform operation over SCP80 (SET STATUS lock of an app the card has) and a push SMS.
    for seid, op, params in ((ses[0]["seid"], "app-lock", {"aid": ses[0]["apps"][0]["aid"]}),
                             (ses[1]["seid"], "push", {})):
        st, body = call("POST", "/v1/tasks", {"seid": seid, "op": op, "params": params})
        if st not in (200, 201, 202):
            sys.exit(f"submit {op}: {st} {body}")
        ids[body["id"]] = (seid, op)
    final = wait_final(list(ids))
    nokeys = ses[-1]["seid"]
    for i, (seid, tar) in ids.items():
        t = final[i]
        want = "failed" if seid == nokeys else "done"
        if t["state"] != want:
            sys.exit(f"task {i} ({seid} TAR {tar}): {t['state']} {t.get('reason')}, want {want}")
        if seid == nokeys and "key" not in (t.get("reason") or ""):
            sys.exit(f"task {i}: reason {t.get('reason')}, want no-keys")
    b = expect("SE after tasks", call("GET", f"/v1/ses/{ses[0]['seid']}"), 200)
    assert b["active_task"] is None and b["queued_tasks"] == [], b
    h = expect("health", call("GET", "/v1/health"), 200)
    assert h["engine"]["done"] >= len(ids) - 1, h
    print("tasks ok: %d final (%d done)" % (len(ids), sum(t["state"] == "done" for t in final.values())))

elif cmd == "submit1":
    if not tasks_served():
        print("skip")
        sys.exit(0)
    print(submit(ses[0]["seid"]))

elif cmd == "wait":
    wait_link()
    i = int(sys.argv[4])
    t = wait_final([i])[i]
    if t["state"] != "done":
        sys.exit(f"task {i} after restart: {t['state']} {t.get('reason')}")
    print(f"task {i} accepted before kill -9: done after restart")

elif cmd == "stored":
    # SEs and keys survived the restarts (the daemon re-opened the same file).
    for s in ses:
        b = expect("SE after restart", call("GET", f"/v1/ses/{s['seid']}"), 200)
        assert b["msisdn"] == s["msisdn"], b
    print("stored ok")
PYEOF

# An admin API token (issue #7), made in the auth file next to the engine database.
gw_make_token scp80-admin admin admin.tok
API_TOKEN=$(cat "$tmp/admin.tok")
export API_TOKEN
start_gw
python3 "$tmp/api.py" "$port" setup "$pop" || fail "setup"
python3 "$tmp/api.py" "$port" bad "$pop" || fail "bad input"
python3 "$tmp/api.py" "$port" tasks "$pop" || fail "tasks"
gw_stop_otagw  # SIGTERM: exit 0 within 10 s
echo "SIGTERM: exit 0 ok"

start_gw
python3 "$tmp/api.py" "$port" stored "$pop" || fail "stored after restart"
id=$(python3 "$tmp/api.py" "$port" submit1 "$pop") || fail "submit before kill -9"
if [ "$id" != skip ]; then
  gw_kill9_otagw
  start_gw
  python3 "$tmp/api.py" "$port" wait "$pop" "$id" || fail "task after kill -9 restart"
else
  echo "SKIP: kill -9 restart check needs POST /v1/tasks"
fi
# SIGHUP reopens the log file (rotation): lines go to a new file at the same path.
mv "$tmp/gw.log" "$tmp/gw.log.1"
kill -HUP "$gw_pid"
gw_wait_file "$tmp/gw.log" || fail "no new log file after SIGHUP"
for _ in $(seq 50); do grep -q 'msg="log reopened"' "$tmp/gw.log" && break; sleep 0.1; done
grep -q 'msg="log reopened"' "$tmp/gw.log" || fail "log not reopened"
python3 "$tmp/api.py" "$port" stored "$pop" > /dev/null || fail "API after SIGHUP"
gw_stop_otagw
grep -Eq '^ts=[0-9-]+T[0-9:.]+Z level=(info|notice) msg="' "$tmp/gw.log.1" ||
  fail "no structured log lines"
grep -q 'msg="otagw stopped"' "$tmp/gw.log" || fail "stop not logged to the reopened file"
# No key bytes in any log (SE 1's KIc key, upper and lower case).
key=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["scp80"][0]["kic"])' "$pop")
! grep -qi "$key" "$tmp"/gw.log* "$tmp/gw.err" || fail "a key appears in the log"

# The cards never saw a bad checksum or a reused counter, and every command ran.
gw_sim_counts
python3 - "$tmp/counts.json" <<'PYEOF' || fail "simulator counts"
import json, sys
c = json.load(open(sys.argv[1]))["cards"]
bad = {k: c[k] for k in ("bad_cc", "counter_reused", "apdus_failed", "unknown_tar") if c[k]}
if bad:
    sys.exit(f"cards: {bad}")
print(f"cards: {c['commands_ok']} commands ok, {c['pushes']} push SMS")
PYEOF
echo "gateway SCP80: ok"
