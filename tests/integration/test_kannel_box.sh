#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Kannel path end to end, against the real Debian bearerbox (1.4.5):
#   otatool send (otagw's box link) -> bearerbox -> SMPP -> otagw-sim (SMSC role)
# on loopback ports, with a generated bearerbox config (lib_kannel.sh).
#
# Wave 1: N_WAVE push and SCP80-like (UDH CPI 02 70 00, PID 7F, DCS F6) parts,
# each one otatool process with its own boxc-id so bearerbox routes every DLR
# back to the process that sent the MT (kannel-box.md §3). Each part must be
# acked (submit_result ok) and get its final DLR, about its own destination.
# Wave 2: the same, with bearerbox restarted while the parts are in flight:
# the links reconnect, parts without an ack are sent again, acked ones not.
# At the end the simulator's counts must show exactly 2 * N_WAVE submits and
# as many receipts: nothing lost, nothing duplicated.
#
# Usage: bash test_kannel_box.sh BINDIR   (ctest passes build/bin)
# Prints "SKIP: reason" and exits 0 only when a needed program is missing.
set -u

BIN=${1:?usage: test_kannel_box.sh BINDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/lib_kannel.sh
source "$HERE/lib_kannel.sh"

N_WAVE=${N_WAVE:-12}
WAIT_DLR_S=${WAIT_DLR_S:-15}
MSISDN_BASE=8613800000000

skip() {
    echo "SKIP: $*"
    exit 0
}

[ -x "$KANNEL_BIN" ] || skip "no bearerbox at $KANNEL_BIN (apt-get install kannel)"
[ -x "$BIN/otagw-sim" ] || skip "no $BIN/otagw-sim (simulator not built)"
[ -x "$BIN/otatool" ] || skip "no $BIN/otatool"
"$BIN/otatool" send --help >/dev/null 2>&1 || skip "otatool has no send command yet"
command -v python3 >/dev/null || skip "no python3 to read the JSON outputs"

TMP=$(mktemp -d /tmp/otagw-kannel.XXXXXX)
SIM_PID=
SEND_PIDS=()

cleanup() {
    local p
    for p in "${SEND_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    kannel_stop
    if [ -n "$SIM_PID" ]; then
        kill -TERM "$SIM_PID" 2>/dev/null
        wait "$SIM_PID" 2>/dev/null
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    if [ -n "$KANNEL_DIR" ]; then
        echo "--- bearerbox log tail"
        tail -n 30 "$KANNEL_DIR/bearerbox.log" 2>/dev/null
    fi
    echo "--- simulator"
    tail -n 10 "$TMP/sim.out" 2>/dev/null
    exit 1
}

json_get() { # FILE PYTHON-EXPR-ON-d
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# ---- simulator (SMSC role) --------------------------------------------------
"$BIN/otagw-sim" --smsc 127.0.0.1:0 --system-id otagw --password secret \
    --generate $((2 * N_WAVE + 10)) --msisdn-base "$MSISDN_BASE" \
    --port-file "$TMP/ports.json" --counts-file "$TMP/counts.json" >"$TMP/sim.out" 2>&1 &
SIM_PID=$!
for _ in $(seq 1 100); do
    [ -s "$TMP/ports.json" ] && break
    kill -0 "$SIM_PID" 2>/dev/null || fail "otagw-sim exited at start"
    sleep 0.1
done
[ -s "$TMP/ports.json" ] || fail "otagw-sim wrote no port file in 10 s"
SMSC_PORT=$(json_get "$TMP/ports.json" 'd["smsc"]')

# ---- bearerbox bound to it ----------------------------------------------------
# With its DLR map in SQLite, a receipt that reaches the restarted bearerbox
# for an MT the old one submitted still matches (internal storage forgets it).
if command -v sqlite3 >/dev/null; then
    export KANNEL_DLR_STORAGE=sqlite3
fi
kannel_init "$TMP/kannel"
kannel_config "$SMSC_PORT" otagw secret || fail "cannot write the bearerbox config"
kannel_start || fail "bearerbox did not start"
kannel_wait_smsc_online 20 || fail "bearerbox's SMPP link did not bind to the simulator"

# ---- sending ------------------------------------------------------------------
PUSH_UD=0605040b8423f0 # port addressing 2948 -> 61440 (WAP push)
SCP80_UD=027000        # command packet identifier (TS 31.115)

# send_one I: part I in the background, output in $TMP/send.I.out
send_one() {
    local i=$1 dest=$((MSISDN_BASE + $1)) args
    if ((i % 2)); then
        args=(--ud "${SCP80_UD}00160d000000b00010010203040506070809" --udhi --pid 7f --dcs f6)
    else
        args=(--ud "${PUSH_UD}01062f1fa0b4" --udhi --pid 00 --dcs 04)
    fi
    "$BIN/otatool" send --link "kbox://127.0.0.1:$KANNEL_BOX_PORT" --boxc-id "otagw-it-$i" \
        --dest "$dest" "${args[@]}" --wait-dlr "$WAIT_DLR_S" --timeout 60 \
        >"$TMP/send.$i.out" 2>"$TMP/send.$i.err" &
    SEND_PIDS+=($!)
}

# check_one I: exactly one submit_result, ok; exactly one final delivered DLR
# that otatool matched to its own message (by the token Kannel carries back in
# dlr_url) and that is about I's destination.
check_one() {
    local i=$1 dest=$((MSISDN_BASE + $1))
    python3 - "$TMP/send.$i.out" "$dest" <<'EOF' || return 1
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
res = [e for e in ev if e.get("event") == "submit_result"]
dlr = [e for e in ev if e.get("event") == "dlr" and e.get("final")]
if len(res) != 1 or res[0]["status"] != "ok":
    sys.exit("submit results %r" % res)
mine = [e for e in dlr if e["ours"] and e["dest"] == sys.argv[2]]
if len(mine) != 1 or mine[0]["state"] != "delivered":
    sys.exit("final DLRs %r" % dlr)
EOF
}

wait_sends() {
    local p
    for p in "${SEND_PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    SEND_PIDS=()
}

# Wave 1: no disturbance.
for i in $(seq 0 $((N_WAVE - 1))); do
    send_one "$i"
done
wait_sends
for i in $(seq 0 $((N_WAVE - 1))); do
    check_one "$i" || fail "part $i (wave 1): $(cat "$TMP/send.$i.out" "$TMP/send.$i.err")"
done
echo "wave 1: $N_WAVE parts acked, every DLR matched"

# Wave 2: bearerbox restarts while parts are on their way: the first half is
# sent before the SIGTERM, the second half while bearerbox shuts down (answers
# ack_failed_tmp, then closes) and while it is down (connect refused).
HALF=$((N_WAVE / 2))
for i in $(seq "$N_WAVE" $((N_WAVE + HALF - 1))); do
    send_one "$i"
done
sleep 0.3
kannel_stop_begin
for i in $(seq $((N_WAVE + HALF)) $((2 * N_WAVE - 1))); do
    send_one "$i"
    sleep 0.05
done
kannel_restart || fail "bearerbox did not restart"
kannel_wait_smsc_online 30 || fail "SMPP link not back after the restart"
wait_sends
reconnected=0
for i in $(seq "$N_WAVE" $((2 * N_WAVE - 1))); do
    check_one "$i" || fail "part $i (wave 2): $(cat "$TMP/send.$i.out" "$TMP/send.$i.err")"
    grep -q '"from":"down","to":"connecting"' "$TMP/send.$i.err" &&
        [ "$(grep -c '"to":"connecting"' "$TMP/send.$i.err")" -gt 1 ] &&
        reconnected=$((reconnected + 1))
done
echo "wave 2: $N_WAVE parts acked, every DLR matched; $reconnected links reconnected"
[ "$reconnected" -gt 0 ] || fail "no link saw the restart: it came too late to test anything"

# ---- the simulator's view: nothing lost, nothing duplicated --------------------
kill -USR1 "$SIM_PID"
for _ in $(seq 1 50); do
    [ -s "$TMP/counts.json" ] && break
    sleep 0.1
done
sleep 0.3
submits=$(json_get "$TMP/counts.json" 'd["smsc"]["submits"]')
dlrs=$(json_get "$TMP/counts.json" 'd["smsc"]["dlrs_sent"]')
deliveries=$(json_get "$TMP/counts.json" 'd["cards"]["deliveries"]')
echo "simulator: submits=$submits dlrs_sent=$dlrs deliveries=$deliveries"
[ "$submits" -eq $((2 * N_WAVE)) ] || fail "simulator saw $submits submits, want $((2 * N_WAVE))"
[ "$dlrs" -eq $((2 * N_WAVE)) ] || fail "simulator sent $dlrs receipts, want $((2 * N_WAVE))"
echo "PASS"
