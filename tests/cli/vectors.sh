#!/usr/bin/env bash
# The vector runner must fail on a wrong expectation, on an unknown vector
# type and on an unreadable file, and pass the shared vectors: a runner that
# cannot fail proves nothing.
set -euo pipefail
otatool=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
shared=$src/../shared/vectors/ota-vectors.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

out=$("$otatool" vectors "$shared")
echo "$out" | tail -n 1 | grep -qx "40 passed, 0 failed"

# One flipped nibble in an expected command packet, one unknown type.
python3 - "$shared" "$tmp/bad.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
v = d["vectors"]
cp = v[0]["expected"]["command_packet"]
v[0]["expected"]["command_packet"] = cp[:-1] + ("0" if cp[-1] != "0" else "1")
v[1]["type"] = "no_such_type"
v[2]["expected"]["cc"] = None          # a CC where none is expected
rd = next(x for x in v if x["type"] == "scp80_response_decode" and x["expected"]["cc"])
rd["inputs"]["sms_user_data"] = rd["inputs"]["sms_user_data"][:-2] + "00"  # breaks the CC
json.dump(d, open(sys.argv[2], "w"))
PY
set +e
out=$("$otatool" vectors "$tmp/bad.json")
rc=$?
set -e
echo "$out"
test "$rc" -eq 1
echo "$out" | tail -n 1 | grep -qx "36 passed, 4 failed"
echo "$out" | grep -q "^FAIL pysim-3des-ciph-cc .*command_packet: 34 octets expected, 34 got, first difference at octet 33"
echo "$out" | grep -q "unknown vector type 'no_such_type'"

# Unreadable and malformed files fail too.
echo '{"vectors": 5}' > "$tmp/shape.json"
set +e
"$otatool" vectors "$tmp/missing.json" "$tmp/shape.json" > "$tmp/o2"
rc=$?
set -e
test "$rc" -eq 1
grep -qx "0 passed, 2 failed" "$tmp/o2"
echo "vectors runner: ok"
