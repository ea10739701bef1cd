#!/usr/bin/env bash
# The key store end to end (issue #7, docs/keys.md), on loopback against the
# bundled simulator: otagw starts with clear_import = no and creates its
# master key file (0600, logged); the sample SE's keys are imported wrapped
# under a 3DES transport key made by `otatool keys-gen-master` with KCVs
# from `otatool wrap-key`; a clear import is refused (403) and a wrong KCV
# too (400 bad-kcv), both audited; an SCP80 task runs with the imported
# keys; a key-update campaign (sd-key-update over SCP80: PUT KEY of version
# 33 under the DEK of the current version 32) completes and moves the SE to
# version 33 (logged, audited), while a task naming a stale old_kvn fails to
# build; after a restart the sealed keys still open. Finally no key, clear or
# wrapped, is in any API answer, the log, or the store's file.
set -euo pipefail
# shellcheck source=lib_gateway.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_gateway.sh"
gw_init "$1"
gw_need otagw otagw-sim otatool
pop=$src/tests/sim/sample-population.jsonl

gw_start_ismg "$pop"

"$bin/otatool" keys-gen-master "$tmp/transport.key" --len 16 > /dev/null ||
  fail "keys-gen-master"
{
  gw_conf_gateway 0 debug
  gw_conf_engine "backoff = 1s" "por_timeout = 30s" "dlr_timeout = 60s" "max_attempts = 1"
  gw_conf_section keys "transport_key_file = $tmp/transport.key"
  gw_conf_link_cmpp "$ismg"
} > "$tmp/otagw.conf"
gw_make_token keys-test admin token

stop_gw() {
  gw_term_otagw
  gw_pid=
}

gw_start_otagw
grep -q 'msg="key store master key created"' "$tmp/gw.log" || fail "master key creation not logged"
[ "$(stat -c %a "$tmp/otagw.db.master.key")" = 600 ] || fail "master key file mode"
grep -q 'transport key created' "$tmp/gw.log" && fail "the given transport key was replaced"

cat > "$tmp/api.py" <<'PYEOF'
import json, os, subprocess, sys, time
from gwapi import make_call
port, pop, otatool, tk, phase, out = sys.argv[1:7]
token = open(os.path.join(os.path.dirname(tk), "token")).read().strip()
answers = open(out, "a")
call = make_call(port, token, answers=answers)

def expect(what, got, status, code=None):
    if got[0] != status or (code and got[1].get("error", {}).get("code") != code):
        sys.exit(f"{what}: got {got[0]} {got[1]}, want {status} {code or ''}")
    return got[1]

def wrap(cipher, key):
    r = subprocess.run([otatool, "wrap-key", "--transport-key-file", tk, "--cipher", cipher,
                        "--key", key], check=True, capture_output=True, text=True)
    w = json.loads(r.stdout)
    return w["wrapped"], w["kcv"]

def wait_final(tid):
    for _ in range(600):
        t = expect("get task", call("GET", f"/v1/tasks/{tid}"), 200)
        if t["state"] in ("done", "failed", "expired", "cancelled"):
            return t
        time.sleep(0.05)
    sys.exit(f"task {tid} not final: {t}")

se = [json.loads(l) for l in open(pop) if l.strip()][0]
seid = se["seid"]
ISD = "A000000151000000"
NEW = {"enc": "0F1E2D3C4B5A69788796A5B4C3D2E1F0", "mac": "00112233445566778899AABBCCDDEEFF",
       "dek": "F0E1D2C3B4A5968778695A4B3C2D1E0F"}
CIPHER = {"AES": "aes", "DES": "des", "3DES2": "3des2", "3DES3": "3des3"}
ALG = {"AES": 0x2, "DES": 0x1, "3DES2": 0x5, "3DES3": 0x9}
secrets = [NEW[n] for n in NEW]

def scp80_body(k, clear=False):
    b = {"tar": k["tar"], "kvn": k["kvn"], "spi": "1639", "cc_len": 8,
         "kic": "%02X" % (k["kvn"] << 4 | ALG[k["kic_alg"]]),
         "kid": "%02X" % (k["kvn"] << 4 | ALG[k["kid_alg"]])}
    if clear:
        b.update(kic_key=k["kic"], kid_key=k["kid"])
        return b
    wc, cc = wrap(CIPHER[k["kic_alg"]], k["kic"])
    wi, ci = wrap(CIPHER[k["kid_alg"]], k["kid"])
    secrets.extend([wc, wi])
    b.update(kic_key_wrapped=wc, kid_key_wrapped=wi, kcv=cc + ci)
    return b

def sd_body(kvn, keys):
    w = [wrap("3des2", keys[n]) for n in ("enc", "mac", "dek")]
    secrets.extend(x[0] for x in w)
    return {"sd_aid": ISD, "kvn": kvn, "enc_wrapped": w[0][0], "mac_wrapped": w[1][0],
            "dek_wrapped": w[2][0], "kcv": "".join(x[1] for x in w)}

for k in se["scp80"]:
    secrets.extend([k["kic"], k["kid"]])
for k in se.get("scp02", []):
    secrets.extend([k["enc"], k["mac"], k["dek"]])

if phase == "import":
    expect("register", call("POST", "/v1/ses", {"seid": seid, "msisdn": se["msisdn"],
                                                "batch": "keys"}), 201)
    k0 = se["scp80"][0]
    expect("clear refused", call("POST", f"/v1/ses/{seid}/keys/scp80", scp80_body(k0, True)),
           403, "clear-import-disabled")
    bad = scp80_body(k0)
    bad["kcv"] = "000000" + bad["kcv"][6:]
    expect("wrong kcv", call("POST", f"/v1/ses/{seid}/keys/scp80", bad), 400, "bad-kcv")
    for k in se["scp80"]:
        b = expect("scp80 keys", call("POST", f"/v1/ses/{seid}/keys/scp80", scp80_body(k)), 201)
        assert b["current"] is True, b
    cur = se["scp02"][0]
    b = expect("sd keys", call("POST", f"/v1/ses/{seid}/keys/sd", sd_body(cur["kvn"], cur)), 201)
    assert b["current"] is True, b
    b = expect("sd keys v+1", call("POST", f"/v1/ses/{seid}/keys/sd",
                                   sd_body(cur["kvn"] + 1, NEW)), 201)
    assert b["current"] is False, b  # waits for the key update
    t = expect("scp80 task", call("POST", "/v1/tasks", {
        "seid": seid, "op": "scp80", "params": {"tar": "000000", "script": "80CA006600"}}), 201)
    t = wait_final(t["id"])
    assert t["state"] == "done", t
    # the campaign: a stale old_kvn cannot build; the right one runs and moves the version
    stale = expect("stale", call("POST", "/v1/tasks", {
        "seid": seid, "op": "sd-key-update", "channel": "scp80",
        "params": {"sd_aid": ISD, "old_kvn": cur["kvn"] + 5, "new_kvn": cur["kvn"] + 1}}), 201)
    stale = wait_final(stale["id"])
    assert stale["state"] == "failed", stale
    upd = expect("key update", call("POST", "/v1/tasks", {
        "seid": seid, "op": "sd-key-update", "channel": "scp80",
        "params": {"sd_aid": ISD, "old_kvn": cur["kvn"], "new_kvn": cur["kvn"] + 1}}), 201)
    upd = wait_final(upd["id"])
    assert upd["state"] == "done", upd
    print(f"key update task {upd['id']} done; stale one {stale['id']} {stale['reason']}")
    # importing the old version again after the move is allowed, and it does not become current
    b = expect("re-import", call("POST", f"/v1/ses/{seid}/keys/sd", sd_body(cur["kvn"], cur)), 201)
    assert b["current"] is False, b
elif phase == "after-restart":
    t = expect("scp80 task", call("POST", "/v1/tasks", {
        "seid": seid, "op": "scp80", "params": {"tar": "000000", "script": "80CA006600"}}), 201)
    t = wait_final(t["id"])
    assert t["state"] == "done", t
with open(out + ".secrets", "a") as f:
    f.write("\n".join(sorted(set(s.upper() for s in secrets))) + "\n")
PYEOF

python3 "$tmp/api.py" "$port" "$pop" "$bin/otatool" "$tmp/transport.key" import \
  "$tmp/answers.txt" || fail "import phase"
grep -q 'msg="key version moved"' "$tmp/gw.log" || fail "key version move not logged"
grep -q 'action=key.version' "$tmp/gw.log" || fail "key version move not audited"
grep -q 'action=key.import_refused.*reason=clear-import-disabled' "$tmp/gw.log" ||
  fail "clear import refusal not audited"
grep -q 'action=key.import_refused.*reason=bad-kcv' "$tmp/gw.log" || fail "bad kcv not audited"

stop_gw
gw_start_otagw
python3 "$tmp/api.py" "$port" "$pop" "$bin/otatool" "$tmp/transport.key" after-restart \
  "$tmp/answers.txt" || fail "after restart"
stop_gw

# no key, clear or wrapped, in the answers, the logs or the store's files
python3 - "$tmp" <<'PYEOF' || fail "key material leaked"
import glob, sys
tmp = sys.argv[1]
secrets = sorted(set(s for s in open(tmp + "/answers.txt.secrets").read().split() if s))
texts = {p: open(p, "rb").read() for p in [tmp + "/answers.txt", tmp + "/gw.log", tmp + "/gw.out",
                                             tmp + "/gw.err"] + glob.glob(tmp + "/otagw.db*")
         if not p.endswith(".key")}
bad = []
for p, b in texts.items():
    up = b.upper()
    hx = b.hex().upper()
    for s in secrets:
        if s.encode() in up or s in hx:
            bad.append((p, s[:8] + "..."))
if bad:
    sys.exit(f"found: {bad}")
print(f"{len(secrets)} keys (clear and wrapped) absent from {len(texts)} files")
PYEOF
echo "gateway keys: ok"
