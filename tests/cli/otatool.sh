#!/usr/bin/env bash
# otatool as an operator uses it: help, encode/decode round trips, a PoR that
# verifies and one that does not, and clear errors with exit status 2 for bad
# input. Keys are also passed as @FILE.
set -euo pipefail
T=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# expect STATUS CMD...: run, capture stdout+stderr in $out, check the status
expect() {
  local want=$1; shift
  set +e; out=$("$@" 2>&1); local rc=$?; set -e
  [ "$rc" -eq "$want" ] || fail "exit $rc (wanted $want): $* -> $out"
}

expect 0 "$T" --help;          grep -q "scp80-encode" <<<"$out" || fail "help lists commands"
expect 2 "$T";                 grep -q "usage" <<<"$out" || fail "no-arg usage"
expect 2 "$T" frobnicate;      grep -q "unknown command 'frobnicate'" <<<"$out" || fail "unknown command"
for c in demo vectors push-encode push-decode ud-decode scp80-encode por-decode; do
  expect 0 "$T" "$c" --help
  grep -q "usage: otatool $c" <<<"$out" || fail "$c --help"
done

# push: exact bytes of our version-1 layout, and back
expect 0 "$T" push-encode --seid 0102030405060708 --serial 00112233445566778899aabbccddeeff --dport 9204 --sport 9200
ud=$(head -n 1 <<<"$out")
[ "$ud" = "06050423f423f0010801020304050607080011223344556677889900aabbccddeeff" ] && fail "self-check of the test"
[ "$ud" = "06050423f423f001080102030405060708""00112233445566778899aabbccddeeff" ] || fail "push bytes: $ud"
expect 0 "$T" push-decode "$ud"
grep -q "ports:   9200 -> 9204" <<<"$out" || fail "push ports: $out"
grep -q "serial:  00112233445566778899aabbccddeeff" <<<"$out" || fail "push serial"
expect 2 "$T" push-encode --seid 01 --serial 0011;           grep -q "16 expected" <<<"$out" || fail "short serial: $out"
expect 2 "$T" push-encode --seid 0g --serial 00112233445566778899aabbccddeeff
grep -q "not a hex digit" <<<"$out" || fail "bad hex: $out"
expect 2 "$T" push-encode --seid 01 --serial 00112233445566778899aabbccddeeff --dport 70000
grep -q "above the maximum" <<<"$out" || fail "port range: $out"
expect 2 "$T" push-decode 0605040b840b     # UDHL 6, five octets follow
grep -q "truncated" <<<"$out" || fail "truncated push: $out"
expect 2 "$T" push-decode 0605040b840b8402   # a layout version we do not know
grep -q "bad-version" <<<"$out" || fail "push version: $out"

# ud-decode names the IEs
expect 0 "$T" ud-decode 0b050423f423f4000301020142
grep -q "concat: ref 1 (8-bit) part 1 of 2" <<<"$out" || fail "ud concat: $out"
grep -q "ports:  9204 -> 9204" <<<"$out" || fail "ud ports: $out"

# SCP80: the pySim-generated AES vector, keys from files
printf '000102030405060708090a0b0c0d0e0f\n' > "$tmp/kic"
printf '0f0e0d0c0b0a09080706050403020100\n' > "$tmp/kid"
sec=(--spi 1639 --kic 12 --kid 12 --kic-key @"$tmp/kic" --kid-key @"$tmp/kid")
expect 0 "$T" scp80-encode "${sec[@]}" --tar b00010 --cntr 1 --data 00a40004023f0000a40004022fe200b000000a
grep -q "^sms 1/1 user data (61 octets): 02700000381516391212b00010fbb430c5ee6fa48c424f454d1182fdce7e73e2ddf4df0d4db9cceb2aadbc331dc56413f9be37d072a0165b672ea16149$" <<<"$out" \
  || fail "scp80 bytes: $out"
# a 300-octet script needs three SMS: concat IE first, CPI in part 1 only
data=$(python3 -c "print('80e29000ff' + '00'*255 + '80e28001' + '28' + '11'*40)")
expect 0 "$T" scp80-encode "${sec[@]}" --tar b00010 --cntr 2 --ref 7 --data "$data"
grep -q "^sms 1/3 user data (140 octets): 0700030703017000" <<<"$out" || fail "concat part 1: $out"
grep -q "^sms 2/3 user data (140 octets): 050003070302" <<<"$out" || fail "concat part 2: $out"
grep -q "^sms 3/3 user data" <<<"$out" || fail "concat part 3"
expect 2 "$T" scp80-encode "${sec[@]}" --tar b00010 --cntr 1099511627776 --data 00
grep -q "above the maximum" <<<"$out" || fail "counter range: $out"
expect 2 "$T" scp80-encode --spi 1639 --kic 12 --kid 12 --tar b00010 --cntr 1 --data 00
grep -q "kic-key is required" <<<"$out" || fail "missing key: $out"
expect 2 "$T" scp80-encode "${sec[@]}" --kic 19 --tar b00010 --cntr 1 --data 00
grep -q "is not a 3DES-3key key" <<<"$out" || fail "key/KIc mismatch: $out"

por=027100002412b000109864f78c696345ac773b04f31130c81f34b8198bddd1a61ec46fe8cede791d1e
expect 0 "$T" por-decode "$por" "${sec[@]}" --tar b00010 --cntr 1
grep -q "checksum: valid 2d703e2013f59128" <<<"$out" || fail "por cc: $out"
grep -q "additional response data (13 octets): 03900098103254769810325476" <<<"$out" || fail "por data"
expect 1 "$T" por-decode "$por" "${sec[@]}" --tar b00010 --cntr 2
grep -q "MISMATCH" <<<"$out" || fail "por counter mismatch: $out"
expect 1 "$T" por-decode "$por" "${sec[@]}" --tar b00011 --cntr 1
grep -q "tar-mismatch" <<<"$out" || fail "por tar mismatch: $out"
expect 1 "$T" por-decode "${por%??}00" "${sec[@]}"
grep -q "PoR rejected: .*(bad-cc)" <<<"$out" || fail "tampered por: $out"
# an unprotected PoR where the SPI asked for CC and ciphering is flagged
expect 1 "$T" por-decode 027100000b0ab0001000000000010002 "${sec[@]}"
grep -q "WARNING: the SPI asked for protection" <<<"$out" || fail "unprotected por: $out"
echo "otatool cli: ok"
