#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The daemon's TLS defaults end to end (issue #7, docs/tls.md): started with
# no plain_http and no certificate, otagw generates a self-signed pair (key
# mode 0600, fingerprint logged = the file's), answers HTTPS for a client
# that trusts that file (TLS 1.3, ALPN http/1.1), gives no HTTP answer to
# plain HTTP, refuses a TLS 1.1 client, and reuses the pair after a restart
# (warning about a key file others may read).
# Start-up refusals: plain_http = yes on a non-loopback listener (exit 2,
# names the key), a key that is not the certificate's and a missing file
# with self_signed = no (exit 1, name the files). Loopback only; bounded
# waits; every process stopped.
set -euo pipefail
# shellcheck source=lib_gateway.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib_gateway.sh"
gw_init "$1"
gw_need otagw
command -v openssl >/dev/null || fail "no openssl CLI"

# Nothing listens on the link's port: the link retries, the API still answers.
dead=$(gw_free_port)
conf() { # $1 = extra [gateway] lines, $2 = [tls] lines
  gw_conf_section gateway "listen = 127.0.0.1:0" "log_file = $tmp/gw.log" "$1"
  gw_conf_section tls "$2"
  gw_conf_engine
  gw_conf_link_cmpp "$dead"
}
stop() {
  gw_stop_otagw
  if grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error' "$tmp/gw.err"; then
    fail "sanitizer report"
  fi
}

cert=$tmp/otagw-cert.pem
key=$tmp/otagw-key.pem
conf "" "cert = $cert
key = $key" > "$tmp/otagw.conf"
gw_start_otagw
{ [ -f "$cert" ] && [ -f "$key" ]; } || fail "no self-signed pair generated"
[ "$(stat -c %a "$key")" = 600 ] || fail "key mode $(stat -c %a "$key"), want 600"
grep -q "otagw listening on https://127.0.0.1:$port" "$tmp/gw.out" || fail "no https listening line"
fp=$(openssl x509 -in "$cert" -noout -fingerprint -sha256 | sed 's/.*=//')
grep -q "msg=\"tls self-signed certificate generated\".*sha256=$fp" "$tmp/gw.log" ||
  fail "fingerprint $fp not logged"
openssl x509 -in "$cert" -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1' ||
  fail "no IP:127.0.0.1 in the SAN"

# A client trusting the generated file: verified, TLS 1.3, ALPN http/1.1, the API answers.
python3 - "$port" "$cert" <<'EOF' || fail "https client"
import json, socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
ctx.set_alpn_protocols(["h2", "http/1.1"])
with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        ver = s.version()
        assert ver == "TLSv1.3", ver
        assert s.selected_alpn_protocol() == "http/1.1", s.selected_alpn_protocol()
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
head, _, body = data.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 200"), head[:40]
assert "engine" in json.loads(body)
print("https ok:", ver, "verified against the generated file, alpn http/1.1, /v1/health 200")
EOF

# Plain HTTP on the TLS port: no HTTP answer.
python3 - "$port" <<'EOF' || fail "plain http got an answer"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
try:
    data = s.recv(4096)
except (ConnectionResetError, socket.timeout):
    data = b""
assert b"HTTP/" not in data, data[:60]
print("plain http on the TLS port: no HTTP answer")
EOF

# TLS 1.1 (and a client that does not trust the certificate) refused.
if openssl s_client -connect "127.0.0.1:$port" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
  < /dev/null > "$tmp/s11.out" 2>&1; then
  fail "a TLS 1.1 handshake succeeded"
fi
grep -qi 'alert protocol version\|no protocols available\|wrong version' "$tmp/s11.out" ||
  fail "TLS 1.1: unexpected failure: $(tail -n 3 "$tmp/s11.out")"
openssl s_client -connect "127.0.0.1:$port" -verify_return_error -CAfile /dev/null \
  < /dev/null > "$tmp/sv.out" 2>&1 && fail "an untrusting client completed the handshake"
echo "TLS 1.1 refused; an untrusting client stops at verification"
stop

# Restart: the same pair is reused (a key others may read is warned about).
chmod 0644 "$key"
gw_start_otagw
grep -q "msg=\"tls certificate loaded\".*sha256=$fp" "$tmp/gw.log" || fail "pair not reused"
grep -q "msg=\"tls key readable by other users\" key=$key mode=644" "$tmp/gw.log" ||
  fail "no warning about the key's mode"
[ "$(openssl x509 -in "$cert" -noout -fingerprint -sha256 | sed 's/.*=//')" = "$fp" ] ||
  fail "certificate changed"
stop
echo "restart: the generated pair is reused"

# Start-up refusals.
conf "plain_http = yes
pull_listen = 0.0.0.0:0" "" > "$tmp/otagw.conf"
rc=0
"$bin/otagw" -c "$tmp/otagw.conf" 2> "$tmp/bad.err" || rc=$?
[ "$rc" -eq 2 ] || fail "plain_http with 0.0.0.0: exit $rc, want 2"
grep -q 'plain_http = yes is allowed only when every listener is on loopback; pull_listen 0.0.0.0' \
  "$tmp/bad.err" || fail "plain_http refusal: $(cat "$tmp/bad.err")"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other \
  -keyout "$tmp/other.key" -out "$tmp/other.pem" -days 1 2> /dev/null
conf "" "cert = $cert
key = $tmp/other.key" > "$tmp/otagw.conf"
rc=0
"$bin/otagw" -c "$tmp/otagw.conf" 2> "$tmp/bad.err" || rc=$?
[ "$rc" -eq 1 ] || fail "mismatched key: exit $rc, want 1"
grep -q "tls key $tmp/other.key does not belong to certificate $cert" "$tmp/bad.err" ||
  fail "mismatch message: $(tail -n 1 "$tmp/bad.err")"

conf "" "cert = $tmp/none.pem
key = $tmp/none.key
self_signed = no" > "$tmp/otagw.conf"
rc=0
"$bin/otagw" -c "$tmp/otagw.conf" 2> "$tmp/bad.err" || rc=$?
[ "$rc" -eq 1 ] || fail "missing files: exit $rc, want 1"
grep -q "tls certificate $tmp/none.pem: cannot open" "$tmp/bad.err" ||
  fail "missing-file message: $(tail -n 1 "$tmp/bad.err")"
[ -e "$tmp/none.pem" ] && fail "self_signed = no generated a certificate"
echo "refused: plain_http off loopback, a foreign key, missing files with self_signed = no"
echo "gateway TLS: ok"
