#!/usr/bin/env bash
# otatool keys-gen-master / wrap-key (docs/keys.md), checked against an
# independent implementation (the openssl command line) and RFC 3394's own
# vector: the file is made 0600 and never overwritten; 3DES-ECB and AES-ECB
# wrapping and the KCVs (E(8 x 00) for 3DES, E(16 x 01) for AES) match
# openssl enc; AES key wrap gives RFC 3394 4.3; a transport key file of mode
# 0644 and impossible wrappings are refused with exit 2.
set -euo pipefail
T=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
expect() {
  local want=$1; shift
  set +e; out=$("$@" 2>&1); local rc=$?; set -e
  [ "$rc" -eq "$want" ] || fail "exit $rc (wanted $want): $* -> $out"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
# ECB encryption of hex $3 with cipher $1 and key $2 by the openssl CLI, upper-case hex
ecb() {
  printf '%s' "$3" | xxd -r -p | openssl enc "-$1" -K "$2" -nosalt -nopad 2>/dev/null |
    xxd -p -c 256 | tr a-f A-F
}

# keys-gen-master: 0600, hex of --len octets, never overwritten
expect 0 "$T" keys-gen-master "$tmp/tk" --len 16
[ "$(stat -c %a "$tmp/tk")" = 600 ] || fail "mode $(stat -c %a "$tmp/tk")"
[ "$(tr -d '\n' < "$tmp/tk" | wc -c)" -eq 32 ] || fail "not 32 hex digits"
before=$(cat "$tmp/tk")
expect 2 "$T" keys-gen-master "$tmp/tk"
[ "$(cat "$tmp/tk")" = "$before" ] || fail "overwritten"
expect 2 "$T" keys-gen-master "$tmp/x" --len 20
expect 0 "$T" keys-gen-master "$tmp/master"
[ "$(tr -d '\n' < "$tmp/master" | wc -c)" -eq 64 ] || fail "master not 64 hex digits"

# 3DES 2-key transport key from the file: 3DES-ECB, KCV of the GP test key is 8BAF47
tk=$(tr -d '\n' < "$tmp/tk")
key=404142434445464748494A4B4C4D4E4F
expect 0 "$T" wrap-key --transport-key-file "$tmp/tk" --cipher 3des2 --key $key
w=$(field "$out" wrapped)
[ "$w" = "$(ecb des-ede3 "$tk${tk:0:16}" $key)" ] || fail "3des ecb: $w"
[ "$(field "$out" kcv)" = 8BAF47 ] || fail "kcv $(field "$out" kcv)"
# a DES key and a 3-key 3DES key travel too (8-octet blocks)
expect 0 "$T" wrap-key --transport-key-file "$tmp/tk" --cipher des --key 0123456789ABCDEF
[ "$(field "$out" wrapped)" = "$(ecb des-ede3 "$tk${tk:0:16}" 0123456789ABCDEF)" ] || fail "des"
kcv=$(ecb des-ede3 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF 0000000000000000)
[ "$(field "$out" kcv)" = "${kcv:0:6}" ] || fail "des kcv"

# AES-256 transport key as hex: AES-ECB, AES KCV = E(16 x 01)
atk=000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F
akey=00112233445566778899AABBCCDDEEFF
expect 0 "$T" wrap-key --transport-key $atk --cipher aes --key $akey
[ "$(field "$out" wrapped)" = "$(ecb aes-256-ecb $atk $akey)" ] || fail "aes ecb"
kcv=$(ecb aes-128-ecb $akey 01010101010101010101010101010101)
[ "$(field "$out" kcv)" = "${kcv:0:6}" ] || fail "aes kcv"
# RFC 3394 4.3: 128 bits of key data with a 256-bit KEK
expect 0 "$T" wrap-key --transport-key $atk --cipher aes --key $akey --wrapping aes-kw
[ "$(field "$out" wrapped)" = 64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7 ] ||
  fail "aes-kw $(field "$out" wrapped)"
[ "$(field "$out" wrapping)" = aes-kw ] || fail "wrapping name"

# refusals: a readable transport key file, impossible wrappings, bad usage
chmod 644 "$tmp/tk"
expect 2 "$T" wrap-key --transport-key-file "$tmp/tk" --cipher 3des2 --key $key
case "$out" in *0644*) ;; *) fail "no mode in: $out" ;; esac
expect 2 "$T" wrap-key --transport-key $atk --cipher des --key 0123456789ABCDEF
expect 2 "$T" wrap-key --transport-key "$tk" --cipher aes --key $akey --wrapping aes-kw
expect 2 "$T" wrap-key --transport-key $atk --cipher aes --key $akey --wrapping cbc
expect 2 "$T" wrap-key --transport-key $atk --cipher aes
expect 2 "$T" wrap-key --transport-key $atk --transport-key-file "$tmp/tk" --cipher aes --key $akey
expect 2 "$T" wrap-key --transport-key 0011 --cipher aes --key $akey
expect 2 "$T" wrap-key --transport-key $atk --cipher 3des2 --key 0011
echo "otatool keys: ok"
