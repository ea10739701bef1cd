#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# otatool token create / list / revoke (issue #7, docs/auth.md) on an auth
# file made from nothing: the token is printed once, 47 characters "otk_...";
# the file holds its SHA-256 and never its text; --out writes it with mode
# 0600 and never over an existing file; a principal keeps its role; list
# shows the hash tail, never a token; revoke twice exits 1; bad usage exits 2.
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
db=$tmp/otagw.db

tok=$("$T" token create --db "$db" --name ops --role admin 2> "$tmp/err")
[[ "$tok" =~ ^otk_[A-Za-z0-9_-]{43}$ ]] || fail "token format: $tok"
grep -q "new principal ops (admin), token id 1" "$tmp/err" || fail "stderr: $(cat "$tmp/err")"
[ -f "$db.auth" ] || fail "no $db.auth"
[ ! -e "$db" ] || fail "the engine database was created"
python3 - "$db.auth" "$tok" <<'PYEOF' || fail "stored hash"
import hashlib, sqlite3, sys
path, tok = sys.argv[1], sys.argv[2]
rows = sqlite3.connect(path).execute("SELECT hash FROM auth_token").fetchall()
assert rows == [(hashlib.sha256(tok.encode()).digest(),)], rows
for f in (path, path + "-wal"):
    try:
        assert tok[4:].encode() not in open(f, "rb").read(), f
    except FileNotFoundError:
        pass
PYEOF

# a second token of the same principal, into a file; the .auth path works as --db too
"$T" token create --db "$db.auth" --name ops --role admin --out "$tmp/t2" 2> /dev/null
[ "$(stat -c %a "$tmp/t2")" = 600 ] || fail "--out mode $(stat -c %a "$tmp/t2")"
[ "$(cat "$tmp/t2")" != "$tok" ] || fail "two tokens alike"
expect 2 "$T" token create --db "$db" --name ops --role admin --out "$tmp/t2"
expect 2 "$T" token create --db "$db" --name ops --role platform
expect 2 "$T" token create --db "$db" --name ops --role root
expect 2 "$T" token create --db "$db" --name "a b" --role admin
expect 2 "$T" token create --db "$db" --name ops
expect 2 "$T" token frobnicate --db "$db"
expect 2 "$T" token list --db "$tmp/nothing.db"
[ ! -e "$tmp/nothing.db.auth" ] || fail "list created an auth file"

"$T" token list --db "$db" > "$tmp/list"
[ "$(wc -l < "$tmp/list")" -eq 2 ] || fail "list: $(cat "$tmp/list")"
tail=$(printf %s "$tok" | sha256sum | cut -c57-64)
grep -q "hash_tail=$tail" "$tmp/list" || fail "hash tail $tail not listed: $(cat "$tmp/list")"
grep -q "${tok:4}" "$tmp/list" && fail "a token in the list"

expect 0 "$T" token revoke --db "$db" --id 1
expect 1 "$T" token revoke --db "$db" --id 1
expect 1 "$T" token revoke --db "$db" --id 99
expect 2 "$T" token revoke --db "$db" --id x
"$T" token list --db "$db" --json > "$tmp/list.json"
python3 - "$tmp/list.json" <<'PYEOF' || fail "json list"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["id"] for r in rows] == [1, 2], rows
assert rows[0]["revoked"] is not None and rows[1]["revoked"] is None, rows
assert all(r["principal"] == "ops" and r["role"] == "admin" and "token" not in r for r in rows)
PYEOF
echo "otatool token: ok"
