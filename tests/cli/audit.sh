#!/usr/bin/env bash
# otatool audit-verify / audit-list against an audit log written by an
# independent implementation of the chain (Python, from docs/audit.md alone):
# an intact log verifies with its head named; each tampering (a field, a
# deleted row, a swap, a rehashed entry) is named at the right seq with exit 1;
# --db also takes the engine database next to the log; bad usage exits 2.
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

# make DB N: a chain of N entries, hashed as docs/audit.md says
make() {
  python3 - "$1" "$2" <<'EOF'
import hashlib, sqlite3, struct, sys
path, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
db.execute("CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
           " actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,"
           " detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)")
prev = bytes(32)
for seq in range(1, n + 1):
    f = ["op%d" % seq, "task.cancel", "task:%d" % (100 + seq), "reason=test"]
    enc = b"otagw-audit-v1\0" + struct.pack(">Qq", seq, 1700000000000 + seq)
    for s in f:
        b = s.encode()
        enc += struct.pack(">I", len(b)) + b
    h = hashlib.sha256(enc + prev).digest()
    db.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?)",
               (seq, 1700000000000 + seq, *f, prev.hex(), h.hex()))
    prev = h
db.commit()
EOF
}
sql() { python3 -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.executescript(sys.argv[2]); d.commit()' "$1" "$2"; }

expect 0 "$T" audit-verify --help; grep -q "usage: otatool audit-verify" <<<"$out" || fail "help"
expect 0 "$T" audit-list --help;   grep -q "usage: otatool audit-list" <<<"$out" || fail "help"
expect 2 "$T" audit-verify;        grep -q "usage" <<<"$out" || fail "no --db"
expect 2 "$T" audit-verify --db "$tmp/none.db"
expect 2 "$T" audit-list --db "$tmp/none.db"

make "$tmp/a.db.audit" 7
expect 0 "$T" audit-verify --db "$tmp/a.db.audit"
grep -Eq "^ok 7 entries head=7:[0-9a-f]{64}$" <<<"$out" || fail "intact: $out"
# the engine database's name finds the log next to it
touch "$tmp/a.db"
expect 0 "$T" audit-verify --db "$tmp/a.db"; grep -q "^ok 7 entries" <<<"$out" || fail "via db: $out"
expect 0 "$T" audit-list --db "$tmp/a.db" --from 3 --limit 2
[ "$(wc -l <<<"$out")" -eq 2 ] || fail "list lines: $out"
grep -q "^3 2023-11-14T22:13:20.003Z actor=op3 action=task.cancel target=task:103 detail=\"reason=test\"$" <<<"$out" \
  || fail "list format: $out"
expect 0 "$T" audit-list --db "$tmp/a.db.audit" --json
python3 -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]; assert len(r)==7 and r[6]["seq"]==7 and len(r[6]["hash"])==64' <<<"$out" \
  || fail "json lines"

check() { # NAME SQL SEQ KIND
  cp "$tmp/a.db.audit" "$tmp/t.audit"
  sql "$tmp/t.audit" "$2"
  expect 1 "$T" audit-verify --db "$tmp/t.audit"
  grep -q "^broken at entry $3 ($4)" <<<"$out" || fail "$1: $out"
}
check field "UPDATE audit_log SET detail='reason=other' WHERE seq=5" 5 hash
check actor "UPDATE audit_log SET actor='admin' WHERE seq=1" 1 hash
check delete "DELETE FROM audit_log WHERE seq=4" 4 seq
check swap "UPDATE audit_log SET seq=-1 WHERE seq=2; UPDATE audit_log SET seq=2 WHERE seq=3; UPDATE audit_log SET seq=3 WHERE seq=-1" 2 link
check hash "UPDATE audit_log SET hash=(CASE WHEN substr(hash,1,1)='0' THEN '1' ELSE '0' END) || substr(hash,2) WHERE seq=6" 6 hash
check format "UPDATE audit_log SET hash=upper(hash) WHERE seq=3" 3 format
# a field changed and its hash recomputed: named at the next entry's link
cp "$tmp/a.db.audit" "$tmp/t.audit"
python3 - "$tmp/t.audit" <<'EOF'
import hashlib, sqlite3, struct, sys
db = sqlite3.connect(sys.argv[1])
seq, ts, a, ac, t, d, prev = db.execute("SELECT seq, ts_ms, actor, action, target, detail, prev_hash"
                                        " FROM audit_log WHERE seq=4").fetchone()
d = "nothing happened"
enc = b"otagw-audit-v1\0" + struct.pack(">Qq", seq, ts)
for s in (a, ac, t, d):
    b = s.encode()
    enc += struct.pack(">I", len(b)) + b
h = hashlib.sha256(enc + bytes.fromhex(prev)).hexdigest()
db.execute("UPDATE audit_log SET detail=?, hash=? WHERE seq=4", (d, h))
db.commit()
EOF
expect 1 "$T" audit-verify --db "$tmp/t.audit"
grep -q "^broken at entry 5 (link)" <<<"$out" || fail "rehash: $out"
echo "ok"
