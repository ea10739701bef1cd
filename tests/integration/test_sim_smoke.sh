#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Smoke test of otagw-sim's network roles: start it on ephemeral ports with the
# sample population (or 100 generated SEs), read the port file, log in over
# CMPP 3.0 and send one push SUBMIT (expect SUBMIT_RESP Result 0 and a DELIVRD
# report carrying the same Msg_Id), a wrong-secret CONNECT (refused), bind over
# SMPP and send one submit_sm (expect a message_id and a receipt with the same
# id in the text and in TLV 0x001E), then SIGUSR1 for the counts and SIGTERM
# for a clean exit. The peer is a short Python script using only socket and
# struct. Every wait is bounded; the simulator is killed on any exit.
# Usage: test_sim_smoke.sh BINDIR
set -euo pipefail

BINDIR=${1:?usage: $0 BINDIR}
SIM="$BINDIR/otagw-sim"
HERE=$(cd "$(dirname "$0")" && pwd)
POP="$HERE/../sim/sample-population.jsonl"
WORK=$(mktemp -d)
SIM_PID=""

cleanup() {
    if [[ -n "$SIM_PID" ]] && kill -0 "$SIM_PID" 2>/dev/null; then
        kill -KILL "$SIM_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "--- simulator stderr ---" >&2
    cat "$WORK/sim.err" >&2 || true
    exit 1
}

[[ -x "$SIM" ]] || fail "no simulator at $SIM"
command -v python3 >/dev/null || fail "python3 missing"

if [[ -f "$POP" ]]; then
    POPARGS=(--population "$POP")
    MSISDN=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["msisdn"])' "$POP")
else
    POPARGS=(--generate 100)
    MSISDN=8613800000001
fi

# Strict fault parsing: an unknown key is a usage error (exit 2).
set +e
"$SIM" --ismg 127.0.0.1:0 --generate 1 --faults "nonsense=1" 2>"$WORK/bad.err"
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "unknown fault key gave exit $rc, want 2"
grep -q "nonsense" "$WORK/bad.err" || fail "fault error does not name the key"

"$SIM" --ismg 127.0.0.1:0 --smsc 127.0.0.1:0 --sp-id 901234 --secret s3cret \
    --system-id otagw --password pw "${POPARGS[@]}" \
    --port-file "$WORK/ports.json" --counts-file "$WORK/counts.json" --duration 60 \
    2>"$WORK/sim.err" &
SIM_PID=$!

for _ in $(seq 1 100); do
    [[ -s "$WORK/ports.json" ]] && break
    kill -0 "$SIM_PID" 2>/dev/null || fail "simulator exited early"
    sleep 0.1
done
[[ -s "$WORK/ports.json" ]] || fail "no port file after 10 s"
grep -q "ready" "$WORK/sim.err" || fail "no ready line on stderr"

timeout 30 python3 - "$WORK/ports.json" "$MSISDN" <<'PY' || fail "protocol exchange"
import hashlib, json, socket, struct, sys, time

ports = json.load(open(sys.argv[1]))
msisdn = sys.argv[2].encode()

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit("connection closed")
        b += c
    return b

def pad(b, n):
    assert len(b) <= n
    return b + b"\0" * (n - len(b))

# ---- CMPP 3.0 ----
def cmpp_pdu(cmd, seq, body):
    return struct.pack(">III", 12 + len(body), cmd, seq) + body

def cmpp_read(s):
    total, cmd, seq = struct.unpack(">III", recv_exact(s, 12))
    return cmd, seq, recv_exact(s, total - 12)

def cmpp_connect(secret):
    s = socket.create_connection(("127.0.0.1", ports["ismg"]), timeout=10)
    ts = time.strftime("%m%d%H%M%S")
    auth = hashlib.md5(pad(b"901234", 6) + b"\0" * 9 + secret + ts.encode()).digest()
    s.sendall(cmpp_pdu(1, 1, pad(b"901234", 6) + auth + bytes([0x30]) + struct.pack(">I", int(ts))))
    cmd, seq, body = cmpp_read(s)
    assert cmd == 0x80000001 and seq == 1, (hex(cmd), seq)
    status = struct.unpack(">I", body[:4])[0]
    return s, status, auth, body

s, status, _, _ = cmpp_connect(b"wrong")
assert status == 3, "wrong secret must give Status 3, got %d" % status
s.close()

s, status, auth, body = cmpp_connect(b"s3cret")
assert status == 0, "login refused: %d" % status
assert body[4:20] == hashlib.md5(struct.pack(">I", 0) + auth + b"s3cret").digest(), "AuthenticatorISMG"

ud = bytes.fromhex("0605040b8423f0") + b"\x01\x0a" + bytes.fromhex("53450000000000000001") + bytes(range(16))
body = (b"\0" * 8 + bytes([1, 1, 1, 0]) + pad(b"OTAPUSH", 10) + bytes([2]) + pad(b"", 32)
        + bytes([0, 0, 1, 4]) + b"901234" + b"01" + b"000000" + pad(b"", 17) + pad(b"", 17)
        + pad(b"1065012345", 21) + bytes([1]) + pad(msisdn, 32) + bytes([0, len(ud)]) + ud
        + pad(b"", 20))
s.sendall(cmpp_pdu(4, 7, body))
got_resp = got_report = False
msg_id = None
while not (got_resp and got_report):
    cmd, seq, b = cmpp_read(s)
    if cmd == 0x80000004:
        assert seq == 7
        msg_id, result = struct.unpack(">QI", b)
        assert result == 0, "SUBMIT_RESP Result %d" % result
        got_resp = True
    elif cmd == 0x00000005:
        assert got_resp, "report before SUBMIT_RESP"
        off = 8 + 21 + 10 + 3 + 32 + 1
        reg, mlen = b[off], b[off + 1]
        assert reg == 1 and mlen == 71, (reg, mlen)
        rep = b[off + 2: off + 2 + 71]
        rid = struct.unpack(">Q", rep[:8])[0]
        stat = rep[8:15].decode()
        assert rid == msg_id, "report Msg_Id %x != %x" % (rid, msg_id)
        assert stat == "DELIVRD", stat
        s.sendall(cmpp_pdu(0x80000005, seq, b[:8] + struct.pack(">I", 0)))
        got_report = True
    elif cmd == 0x00000008:
        s.sendall(cmpp_pdu(0x80000008, seq, b"\0"))
s.sendall(cmpp_pdu(2, 8, b""))
cmd, seq, _ = cmpp_read(s)
assert cmd == 0x80000002 and seq == 8
s.close()
print("cmpp ok msg_id=%016x" % msg_id)

# ---- SMPP 3.4 ----
def smpp_pdu(cmd, seq, body, status=0):
    return struct.pack(">IIII", 16 + len(body), cmd, status, seq) + body

def smpp_read(s):
    total, cmd, status, seq = struct.unpack(">IIII", recv_exact(s, 16))
    return cmd, status, seq, recv_exact(s, total - 16)

def cstr(b):
    return b + b"\0"

s = socket.create_connection(("127.0.0.1", ports["smsc"]), timeout=10)
s.sendall(smpp_pdu(9, 1, cstr(b"otagw") + cstr(b"pw") + cstr(b"") + bytes([0x34, 0, 0]) + cstr(b"")))
cmd, status, seq, b = smpp_read(s)
assert cmd == 0x80000009 and status == 0 and seq == 1, (hex(cmd), status)
sm = bytes.fromhex("0605040b8423f0") + b"\x01\x0a" + bytes.fromhex("53450000000000000001") + bytes(range(16))
body = (cstr(b"") + bytes([1, 1]) + cstr(b"10650") + bytes([1, 1]) + cstr(msisdn)
        + bytes([0x40, 0, 0]) + cstr(b"") + cstr(b"") + bytes([1, 0, 0x04, 0, len(sm)]) + sm)
s.sendall(smpp_pdu(4, 2, body))
got_resp = got_dlr = False
mid = None
while not (got_resp and got_dlr):
    cmd, status, seq, b = smpp_read(s)
    if cmd == 0x80000004:
        assert status == 0 and seq == 2, (status, seq)
        mid = b.rstrip(b"\0").decode()
        assert mid.isdigit(), mid
        got_resp = True
    elif cmd == 0x00000005:
        assert got_resp, "receipt before submit_sm_resp"
        p = b.index(b"\0") + 1 + 2           # service_type, ton, npi
        src_end = b.index(b"\0", p)
        assert b[p:src_end] == msisdn, b[p:src_end]
        p = src_end + 1 + 2
        p = b.index(b"\0", p) + 1            # destination_addr
        esm = b[p]
        assert esm == 0x04, hex(esm)
        p += 3                               # esm_class, protocol_id, priority
        p = b.index(b"\0", p) + 1            # schedule_delivery_time
        p = b.index(b"\0", p) + 1            # validity_period
        p += 4                               # registered_delivery .. sm_default_msg_id
        n = b[p]
        text = b[p + 1:p + 1 + n].decode()
        assert ("id:%s " % mid) in text and "stat:DELIVRD" in text, text
        tlvs = b[p + 1 + n:]
        found = {}
        while tlvs:
            tag, ln = struct.unpack(">HH", tlvs[:4])
            found[tag] = tlvs[4:4 + ln]
            tlvs = tlvs[4 + ln:]
        assert found.get(0x001E) == cstr(mid.encode()), found
        assert found.get(0x0427) == b"\x02", found
        s.sendall(smpp_pdu(0x80000005, seq, b"\0"))
        got_dlr = True
    elif cmd == 0x00000015:
        s.sendall(smpp_pdu(0x80000015, seq, b""))
s.sendall(smpp_pdu(0x15, 3, b""))
cmd, status, seq, _ = smpp_read(s)
assert cmd == 0x80000015 and seq == 3
s.sendall(smpp_pdu(6, 4, b""))
cmd, status, seq, _ = smpp_read(s)
assert cmd == 0x80000006 and seq == 4
s.close()
print("smpp ok message_id=%s" % mid)
PY

kill -USR1 "$SIM_PID"
for _ in $(seq 1 50); do
    [[ -s "$WORK/counts.json" ]] && break
    sleep 0.1
done
[[ -s "$WORK/counts.json" ]] || fail "no counts after SIGUSR1"

python3 - "$WORK/counts.json" <<'PY' || fail "counts after SIGUSR1"
import json, sys
c = json.load(open(sys.argv[1]))
i, m, k = c["ismg"], c["smsc"], c["cards"]
assert i["logins_ok"] == 1 and i["logins_refused"] == 1, i
assert i["submits_ok"] == 1 and i["dlrs_sent"] == 1 and i["deliver_resps"] == 1, i
assert i["invalid_pdus"] == 0, i
assert m["binds_ok"] == 1 and m["submits_ok"] == 1 and m["dlrs_sent"] == 1, m
assert m["deliver_resps"] == 1 and m["invalid_pdus"] == 0, m
assert k["deliveries"] == 2, k
assert "counter_reused" in k and "invalid_sms" in k, k
print("counts ok")
PY

rm -f "$WORK/counts.json"
kill -TERM "$SIM_PID"
rc=0
for _ in $(seq 1 100); do
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$SIM_PID" 2>/dev/null && fail "simulator still running 10 s after SIGTERM"
wait "$SIM_PID" || rc=$?
SIM_PID=""
[[ $rc -eq 0 ]] || fail "exit status $rc after SIGTERM"
[[ -s "$WORK/counts.json" ]] || fail "no counts at exit"

# Phase 2: rate limit, dlr_fail and drop_every_s on both protocols.
rm -f "$WORK/ports.json" "$WORK/counts.json"
"$SIM" --ismg 127.0.0.1:0 --smsc 127.0.0.1:0 --sp-id 901234 --secret s3cret \
    --system-id otagw --password pw --generate 10 --rate 2 --seed 1 \
    --faults "dlr_fail=1,drop_every_s=3" \
    --port-file "$WORK/ports.json" --counts-file "$WORK/counts.json" --duration 60 \
    2>"$WORK/sim.err" &
SIM_PID=$!
for _ in $(seq 1 100); do
    [[ -s "$WORK/ports.json" ]] && break
    kill -0 "$SIM_PID" 2>/dev/null || fail "simulator (phase 2) exited early"
    sleep 0.1
done
[[ -s "$WORK/ports.json" ]] || fail "no port file after 10 s (phase 2)"

timeout 30 python3 - "$WORK/ports.json" <<'PY' || fail "phase 2 exchange"
import hashlib, json, socket, struct, sys, time

ports = json.load(open(sys.argv[1]))
msisdn = b"8613800000001"

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b

def pad(b, n):
    return b + b"\0" * (n - len(b))

def wait_closed(s, what):
    s.settimeout(5)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        raise SystemExit(what + ": not dropped within 5 s")

# CMPP: two accepted, the third over --rate 2 gets Result 8; reports say UNDELIV
s = socket.create_connection(("127.0.0.1", ports["ismg"]), timeout=10)
ts = time.strftime("%m%d%H%M%S")
auth = hashlib.md5(b"901234" + b"\0" * 9 + b"s3cret" + ts.encode()).digest()
s.sendall(struct.pack(">III", 39, 1, 1) + b"901234" + auth + b"\x30" + struct.pack(">I", int(ts)))
total, cmd, seq = struct.unpack(">III", recv_exact(s, 12))
assert cmd == 0x80000001 and struct.unpack(">I", recv_exact(s, total - 12)[:4])[0] == 0
ud = bytes.fromhex("0605040b8423f0") + b"\x01\x02\x53\x45" + bytes(16)
body = (b"\0" * 8 + bytes([1, 1, 1, 0]) + pad(b"OTAPUSH", 10) + bytes([2]) + pad(b"", 32)
        + bytes([0, 0, 1, 4]) + b"901234" + b"01" + b"000000" + pad(b"", 34)
        + pad(b"1065012345", 21) + bytes([1]) + pad(msisdn, 32) + bytes([0, len(ud)]) + ud
        + pad(b"", 20))
for q in (11, 12, 13):
    s.sendall(struct.pack(">III", 12 + len(body), 4, q) + body)
results, stats = {}, []
while len(results) < 3 or len(stats) < 2:
    total, cmd, seq = struct.unpack(">III", recv_exact(s, 12))
    b = recv_exact(s, total - 12)
    if cmd == 0x80000004:
        results[seq] = struct.unpack(">I", b[8:12])[0]
    elif cmd == 5:
        stats.append(b[8 + 21 + 10 + 3 + 32 + 3 + 8:][:7].decode())
        s.sendall(struct.pack(">III", 24, 0x80000005, seq) + b[:8] + b"\0\0\0\0")
assert results == {11: 0, 12: 0, 13: 8}, results
assert stats == ["UNDELIV", "UNDELIV"], stats

# SMPP: same with ESME_RTHROTTLED (0x58) and message_state 5
m = socket.create_connection(("127.0.0.1", ports["smsc"]), timeout=10)
bind = b"otagw\0pw\0\0\x34\0\0\0"
m.sendall(struct.pack(">IIII", 16 + len(bind), 9, 0, 1) + bind)
total, cmd, st, seq = struct.unpack(">IIII", recv_exact(m, 16))
recv_exact(m, total - 16)
assert cmd == 0x80000009 and st == 0, (hex(cmd), st)
sm = (b"\0" + bytes([1, 1]) + b"10650\0" + bytes([1, 1]) + msisdn + b"\0"
      + bytes([0x40, 0, 0]) + b"\0\0" + bytes([1, 0, 4, 0, len(ud)]) + ud)
for q in (21, 22, 23):
    m.sendall(struct.pack(">IIII", 16 + len(sm), 4, 0, q) + sm)
statuses, states = {}, []
while len(statuses) < 3 or len(states) < 2:
    total, cmd, st, seq = struct.unpack(">IIII", recv_exact(m, 16))
    b = recv_exact(m, total - 16)
    if cmd == 0x80000004:
        statuses[seq] = st
    elif cmd == 5:
        assert b"stat:UNDELIV" in b, b
        assert b[-5:-1] == b"\x04\x27\x00\x01", b[-5:]
        states.append(b[-1])
        m.sendall(struct.pack(">IIII", 17, 0x80000005, 0, seq) + b"\0")
assert statuses == {21: 0, 22: 0, 23: 0x58}, statuses
assert states == [5, 5], states

wait_closed(s, "CMPP link")
wait_closed(m, "SMPP link")
print("phase 2 ok")
PY

kill -TERM "$SIM_PID"
rc=0
wait "$SIM_PID" || rc=$?
SIM_PID=""
[[ $rc -eq 0 ]] || fail "exit status $rc after SIGTERM (phase 2)"
python3 - "$WORK/counts.json" <<'PY' || fail "counts (phase 2)"
import json, sys
c = json.load(open(sys.argv[1]))
for role in ("ismg", "smsc"):
    r = c[role]
    assert r["flow_control"] == 1 and r["submits_ok"] == 2, (role, r)
    assert r["dlrs_undeliv"] == 2 and r["link_drops"] >= 1, (role, r)
    assert r["invalid_pdus"] == 0 and r["pending"] == 0, (role, r)
print("phase 2 counts ok")
PY
echo "PASS test_sim_smoke"
