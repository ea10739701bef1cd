#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# otatool token create / list / revoke (issue #7, docs/auth.md) on an auth
# file made from nothing: the token is printed once, 47 characters "otk_...";
# the file holds its SHA-256 and never its text; --out writes it with mode
# 0600 and never over an existing file; a principal keeps its role; list
# shows the hash tail, never a token; revoke twice exits 1; bad usage exits 2.
# Every change is in the audit chain next to the engine database (actor
# otatool, the OS user in the detail, no token text), audit-verify passes;
# when the audit entry cannot be written the change is refused (exit 2) and
# nothing changes.
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

# the audit chain: the two creates (one with its principal) and the revocation, nothing for
# the refused ones; it verifies, and holds names and ids, never a token
expect 0 "$T" audit-verify --db "$db"
grep -Eq "^ok 4 entries head=4:[0-9a-f]{64}$" <<<"$out" || fail "audit-verify: $out"
"$T" audit-list --db "$db" --json > "$tmp/audit.json"
python3 - "$tmp/audit.json" "$(id -un)" "$(id -u)" <<'PYEOF' || fail "audit entries: $(cat "$tmp/audit.json")"
import json, sys
path, user, uid = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(path)]
got = [(r["actor"], r["action"], r["target"]) for r in rows]
assert got == [("otatool", "principal.create", "principal:ops"),
               ("otatool", "token.create", "token:1"),
               ("otatool", "token.create", "token:2"),
               ("otatool", "token.revoke", "token:1")], got
assert rows[0]["detail"].startswith("role=admin "), rows[0]
assert rows[1]["detail"].startswith("principal=ops role=admin "), rows[1]
for r in rows:
    assert r["detail"].endswith("os_user=%s uid=%s" % (user, uid)), r
PYEOF
expect 0 "$T" audit-list --db "$db"
grep -q '^1 .* actor=otatool action=principal.create target=principal:ops detail="role=admin os_user=' <<<"$out" \
  || fail "audit-list: $out"
for f in "$db.audit" "$db.audit-wal"; do
  [ -e "$f" ] || continue
  for t in "$tok" "$(cat "$tmp/t2")"; do
    grep -qF "${t:4}" "$f" && fail "a token in $f"
  done
done

# no audit entry, no change: create refused (no token stored, no --out file), revoke refused
mkdir "$tmp/b.db.audit"   # a log that cannot be opened
expect 2 "$T" token create --db "$tmp/b.db" --name x --role admin --out "$tmp/t3"
grep -q "audit log" <<<"$out" || fail "create refusal: $out"
grep -q "nothing changed" <<<"$out" || fail "create refusal: $out"
[ ! -e "$tmp/t3" ] || fail "--out written for a refused create"
expect 0 "$T" token list --db "$tmp/b.db"
[ -z "$out" ] || fail "a token made without its audit entry: $out"
cp "$db.auth" "$tmp/c.db.auth"
mkdir "$tmp/c.db.audit"
expect 2 "$T" token revoke --db "$tmp/c.db" --id 2
grep -q "nothing changed" <<<"$out" || fail "revoke refusal: $out"
"$T" token list --db "$tmp/c.db" --json > "$tmp/c.json"
python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; assert r[1]["id"] == 2 and r[1]["revoked"] is None, r' \
  "$tmp/c.json" || fail "revoked without its audit entry: $(cat "$tmp/c.json")"
expect 0 "$T" audit-verify --db "$db"
grep -Eq "^ok 4 entries" <<<"$out" || fail "audit grew: $out"
echo "otatool token: ok"
