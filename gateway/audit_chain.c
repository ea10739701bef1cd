/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log's hash chain (gateway/audit_chain.h): schema and guard
 * triggers, the canonical hash of an entry, the full verifier and the
 * start-up tail check. Linked into both otagw and otatool so that the
 * daemon and the operator's tool agree on every octet that is hashed.
 */
#include "gateway/audit_chain.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#define AUDIT_BUSY_MS 1000
#define AUDIT_DOMAIN "otagw-audit-v1" /* hashed with its NUL: versions the encoding */

#define ZERO_HASH_HEX "0000000000000000000000000000000000000000000000000000000000000000"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS audit_log ("
    " seq INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
    " actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL,"
    " prev_hash TEXT NOT NULL, hash TEXT NOT NULL);";

/*
 * The guards. INSERT OR REPLACE would delete without firing the DELETE
 * trigger (recursive_triggers is off), which is why the INSERT trigger
 * insists on seq = max + 1 and a prev_hash that links.
 */
static const char *const guard_names[] = {"audit_log_no_update", "audit_log_no_delete",
                                          "audit_log_append"};
static const char guards[] =
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_log_append BEFORE INSERT ON audit_log"
    " WHEN NEW.seq IS NOT (SELECT IFNULL(MAX(seq), 0) + 1 FROM audit_log)"
    "  OR NEW.prev_hash IS NOT IFNULL((SELECT hash FROM audit_log WHERE seq = NEW.seq - 1),"
    "  '" ZERO_HASH_HEX "')"
    " BEGIN SELECT RAISE(ABORT, 'audit_log: an insert must extend the chain'); END;";

#define COLS "seq, ts_ms, actor, action, target, detail, prev_hash, hash"

static const char *const break_names[] = {"intact", "seq", "link", "hash", "format", "count"};

const char *gw_audit_break_name(enum gw_audit_break b)
{
    return ota_enum_name(break_names, OTA_ARRAY_SIZE(break_names), b);
}

int gw_audit_path(const char *db_path, char *out, size_t cap)
{
    if (!db_path || !db_path[0] || !out) {
        return -EINVAL;
    }
    int n = snprintf(out, cap, "%s.audit", db_path);
    if (n < 0 || (size_t)n >= cap) {
        return -ENAMETOOLONG;
    }
    return 0;
}

static int db_fail(sqlite3 *db, struct ota_err *err, int src, const char *what)
{
    int rc = src == SQLITE_CANTOPEN ? -ENOENT : -EIO;
    return ota_fail(err, rc, OTA_ERR_STATE, "audit log: %s: %s", what,
                    db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
}

static int count_guards(sqlite3 *db, int *n, struct ota_err *err)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
                                " AND tbl_name = 'audit_log' AND name IN (?1, ?2, ?3)",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        for (int i = 0; i < 3; i++) {
            sqlite3_bind_text(q, i + 1, guard_names[i], -1, SQLITE_STATIC);
        }
        rc = sqlite3_step(q);
    }
    if (rc != SQLITE_ROW) {
        rc = db_fail(db, err, rc, "triggers");
        sqlite3_finalize(q);
        return rc;
    }
    *n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return 0;
}

static int table_rows(sqlite3 *db, int64_t *n, struct ota_err *err)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM audit_log", -1, &q, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(q);
    }
    if (rc != SQLITE_ROW) {
        rc = db_fail(db, err, rc, "count");
        sqlite3_finalize(q);
        return rc;
    }
    *n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return 0;
}

int gw_audit_db_open(const char *path, bool readonly, struct sqlite3 **out, bool *guards_restored,
                     struct ota_err *err)
{
    if (!path || !path[0] || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "audit log: path missing");
    }
    if (guards_restored) {
        *guards_restored = false;
    }
    sqlite3 *db = NULL;
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = db_fail(db, err, rc, path);
        goto fail;
    }
    sqlite3_busy_timeout(db, AUDIT_BUSY_MS);
    if (readonly) {
        sqlite3_stmt *q = NULL;
        rc = sqlite3_prepare_v2(db, "SELECT 1 FROM audit_log LIMIT 1", -1, &q, NULL);
        sqlite3_finalize(q);
        if (rc != SQLITE_OK) {
            rc = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "audit log: %s: no audit_log table (%s)",
                          path, sqlite3_errmsg(db));
            goto fail;
        }
        *out = db;
        return 0;
    }
    /* Durable before gw_audit returns: a full fsync per commit, whatever the engine does. */
    rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        rc = db_fail(db, err, rc, "schema");
        goto fail;
    }
    int n_guards = 0;
    int64_t n_rows = 0;
    rc = count_guards(db, &n_guards, err);
    if (rc == 0) {
        rc = table_rows(db, &n_rows, err);
    }
    if (rc < 0) {
        goto fail;
    }
    rc = sqlite3_exec(db, guards, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = db_fail(db, err, rc, "triggers");
        goto fail;
    }
    if (guards_restored && n_rows > 0 && n_guards < (int)OTA_ARRAY_SIZE(guard_names)) {
        *guards_restored = true;
    }
    *out = db;
    return 0;
fail:
    sqlite3_close(db);
    return rc;
}

static bool hash_update_u64(EVP_MD_CTX *c, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    }
    return EVP_DigestUpdate(c, b, sizeof(b)) == 1;
}

static bool hash_update_str(EVP_MD_CTX *c, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    uint8_t b[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    return EVP_DigestUpdate(c, b, sizeof(b)) == 1 && (n == 0 || EVP_DigestUpdate(c, s, n) == 1);
}

int gw_audit_entry_hash(const struct gw_audit_entry *e, uint8_t out[GW_AUDIT_HASH_LEN],
                        struct ota_err *err)
{
    if (!e || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "audit hash: NULL argument");
    }
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int len = 0;
    uint8_t md[EVP_MAX_MD_SIZE];
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(c, AUDIT_DOMAIN, sizeof(AUDIT_DOMAIN)) == 1 &&
              hash_update_u64(c, (uint64_t)e->seq) && hash_update_u64(c, (uint64_t)e->ts_ms) &&
              hash_update_str(c, e->actor) && hash_update_str(c, e->action) &&
              hash_update_str(c, e->target) && hash_update_str(c, e->detail) &&
              EVP_DigestUpdate(c, e->prev_hash, GW_AUDIT_HASH_LEN) == 1 &&
              EVP_DigestFinal_ex(c, md, &len) == 1 && len == GW_AUDIT_HASH_LEN;
    EVP_MD_CTX_free(c);
    if (!ok) {
        return ota_fail(err, -EIO, OTA_ERR_CRYPTO, "audit hash: SHA-256 failed");
    }
    memcpy(out, md, GW_AUDIT_HASH_LEN);
    return 0;
}

void gw_audit_hash_hex(const uint8_t h[GW_AUDIT_HASH_LEN], char out[2 * GW_AUDIT_HASH_LEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < GW_AUDIT_HASH_LEN; i++) {
        out[2 * i] = hx[h[i] >> 4];
        out[2 * i + 1] = hx[h[i] & 15];
    }
    out[2 * GW_AUDIT_HASH_LEN] = '\0';
}

/* Exactly 64 lower-case hex digits (what the writer stores); anything else is a format break. */
static bool hash_unhex(const unsigned char *s, int n, uint8_t out[GW_AUDIT_HASH_LEN])
{
    if (!s || n != 2 * GW_AUDIT_HASH_LEN) {
        return false;
    }
    for (int i = 0; i < n; i++) {
        int v = (s[i] >= '0' && s[i] <= '9')   ? s[i] - '0'
                : (s[i] >= 'a' && s[i] <= 'f') ? s[i] - 'a' + 10
                                               : -1;
        if (v < 0) {
            return false;
        }
        if (i % 2 == 0) {
            out[i / 2] = (uint8_t)(v << 4);
        } else {
            out[i / 2] |= (uint8_t)v;
        }
    }
    return true;
}

bool gw_audit_hash_unhex(const char *s, uint8_t out[GW_AUDIT_HASH_LEN])
{
    return s &&
           hash_unhex((const unsigned char *)s, (int)strnlen(s, 2 * GW_AUDIT_HASH_LEN + 1), out);
}

/*
 * Fill e from the current row of q (COLS order). Column types are checked:
 * a tampered row may hold anything. Returns GW_AUDIT_INTACT or
 * GW_AUDIT_BREAK_FORMAT with what filled; e->seq is set whenever column 0
 * is an integer.
 */
static enum gw_audit_break row_entry(sqlite3_stmt *q, struct gw_audit_entry *e, char *what,
                                     size_t what_cap)
{
    static const char *const names[] = {"seq",    "ts_ms",  "actor",     "action",
                                        "target", "detail", "prev_hash", "hash"};
    static const int types[] = {SQLITE_INTEGER, SQLITE_INTEGER, SQLITE_TEXT, SQLITE_TEXT,
                                SQLITE_TEXT,    SQLITE_TEXT,    SQLITE_TEXT, SQLITE_TEXT};
    memset(e, 0, sizeof(*e));
    /* Types first: a column_text() call converts the value and column_type() no longer tells. */
    int bad = -1;
    for (int i = 0; i < 8 && bad < 0; i++) {
        if (sqlite3_column_type(q, i) != types[i]) {
            bad = i;
        }
    }
    e->seq = sqlite3_column_type(q, 0) == SQLITE_INTEGER ? sqlite3_column_int64(q, 0) : 0;
    e->ts_ms = sqlite3_column_int64(q, 1);
    const char **strs[] = {&e->actor, &e->action, &e->target, &e->detail};
    for (int i = 0; i < 4; i++) {
        const char *s = (const char *)sqlite3_column_text(q, 2 + i);
        *strs[i] = s ? s : "";
    }
    if (bad >= 0) {
        snprintf(what, what_cap, "column %s is not %s", names[bad],
                 types[bad] == SQLITE_INTEGER ? "an integer" : "text");
        return GW_AUDIT_BREAK_FORMAT;
    }
    if (!hash_unhex(sqlite3_column_text(q, 6), sqlite3_column_bytes(q, 6), e->prev_hash)) {
        snprintf(what, what_cap, "prev_hash is not 64 lower-case hex digits");
        return GW_AUDIT_BREAK_FORMAT;
    }
    if (!hash_unhex(sqlite3_column_text(q, 7), sqlite3_column_bytes(q, 7), e->hash)) {
        snprintf(what, what_cap, "hash is not 64 lower-case hex digits");
        return GW_AUDIT_BREAK_FORMAT;
    }
    return GW_AUDIT_INTACT;
}

static void rep_break(struct gw_audit_report *rep, int64_t seq, enum gw_audit_break why,
                      const char *what)
{
    rep->bad_seq = seq;
    rep->why = why;
    snprintf(rep->what, sizeof(rep->what), "%s", what);
}

/*
 * Check e against the entry before it (prev_seq 0 / prev zeros for the
 * first) and against its own hash; GW_AUDIT_INTACT or the break, with what.
 */
static int check_one(const struct gw_audit_entry *e, int64_t prev_seq,
                     const uint8_t prev[GW_AUDIT_HASH_LEN], struct gw_audit_report *rep,
                     struct ota_err *err)
{
    char what[200];
    if (e->seq != prev_seq + 1) {
        snprintf(what, sizeof(what), "entry %lld is missing (the next stored entry is %lld)",
                 (long long)(prev_seq + 1), (long long)e->seq);
        rep_break(rep, prev_seq + 1, GW_AUDIT_BREAK_SEQ, what);
        return -EBADMSG;
    }
    if (CRYPTO_memcmp(e->prev_hash, prev, GW_AUDIT_HASH_LEN) != 0) {
        if (prev_seq == 0) {
            snprintf(what, sizeof(what), "prev_hash of the first entry is not all zeros");
        } else {
            snprintf(what, sizeof(what), "prev_hash is not the hash of entry %lld",
                     (long long)prev_seq);
        }
        rep_break(rep, e->seq, GW_AUDIT_BREAK_LINK, what);
        return -EBADMSG;
    }
    uint8_t h[GW_AUDIT_HASH_LEN];
    int rc = gw_audit_entry_hash(e, h, err);
    if (rc < 0) {
        return rc;
    }
    if (CRYPTO_memcmp(h, e->hash, GW_AUDIT_HASH_LEN) != 0) {
        rep_break(rep, e->seq, GW_AUDIT_BREAK_HASH,
                  "hash does not match the entry's fields (time, actor, action, target or detail "
                  "changed)");
        return -EBADMSG;
    }
    return 0;
}

int gw_audit_verify(struct sqlite3 *db, void (*each)(void *arg, const struct gw_audit_entry *e),
                    void *arg, struct gw_audit_report *rep, struct ota_err *err)
{
    if (!db || !rep) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "audit verify: NULL argument");
    }
    memset(rep, 0, sizeof(*rep));
    sqlite3_stmt *q = NULL;
    /* ORDER BY the rowid alias: the walk must see the stored order, not an index's. */
    int rc = sqlite3_prepare_v2(db, "SELECT " COLS " FROM audit_log ORDER BY seq", -1, &q, NULL);
    if (rc != SQLITE_OK) {
        return db_fail(db, err, rc, "verify");
    }
    int64_t prev_seq = 0;
    uint8_t prev[GW_AUDIT_HASH_LEN] = {0};
    int out = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct gw_audit_entry e;
        char what[200];
        if (row_entry(q, &e, what, sizeof(what)) != GW_AUDIT_INTACT) {
            rep_break(rep, e.seq ? e.seq : prev_seq + 1, GW_AUDIT_BREAK_FORMAT, what);
            out = -EBADMSG;
            break;
        }
        out = check_one(&e, prev_seq, prev, rep, err);
        if (out < 0) {
            break;
        }
        if (each) {
            each(arg, &e);
        }
        rep->n_ok++;
        rep->head_seq = e.seq;
        memcpy(rep->head_hash, e.hash, GW_AUDIT_HASH_LEN);
        prev_seq = e.seq;
        memcpy(prev, e.hash, GW_AUDIT_HASH_LEN);
    }
    if (out == 0 && rc != SQLITE_DONE) {
        out = db_fail(db, err, rc, "verify");
    }
    sqlite3_finalize(q);
    return out;
}

int gw_audit_check_tail(struct sqlite3 *db, struct gw_audit_report *rep, struct ota_err *err)
{
    if (!db || !rep) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "audit tail: NULL argument");
    }
    memset(rep, 0, sizeof(*rep));
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT " COLS " FROM audit_log ORDER BY seq DESC LIMIT 2", -1,
                                &q, NULL);
    if (rc != SQLITE_OK) {
        return db_fail(db, err, rc, "tail");
    }
    struct gw_audit_entry ent[2];
    int n = 0, out = 0;
    char what[200];
    /* Row strings die at the next step: the tail's are checked before the step to its parent. */
    uint8_t tail_prev[GW_AUDIT_HASH_LEN], tail_hash[GW_AUDIT_HASH_LEN];
    int64_t tail_seq = 0;
    while (n < 2 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (row_entry(q, &ent[n], what, sizeof(what)) != GW_AUDIT_INTACT) {
            rep_break(rep, ent[n].seq, GW_AUDIT_BREAK_FORMAT, what);
            out = -EBADMSG;
            goto done;
        }
        if (n == 0) {
            uint8_t h[GW_AUDIT_HASH_LEN];
            out = gw_audit_entry_hash(&ent[0], h, err);
            if (out < 0) {
                goto done;
            }
            if (CRYPTO_memcmp(h, ent[0].hash, GW_AUDIT_HASH_LEN) != 0) {
                rep_break(rep, ent[0].seq, GW_AUDIT_BREAK_HASH,
                          "hash of the last entry does not match its fields");
                out = -EBADMSG;
                goto done;
            }
            tail_seq = ent[0].seq;
            memcpy(tail_prev, ent[0].prev_hash, GW_AUDIT_HASH_LEN);
            memcpy(tail_hash, ent[0].hash, GW_AUDIT_HASH_LEN);
        }
        n++;
    }
    if (n == 0) {
        if (rc != SQLITE_DONE) {
            out = db_fail(db, err, rc, "tail");
        }
        goto done;
    }
    const uint8_t zeros[GW_AUDIT_HASH_LEN] = {0};
    int64_t parent_seq = n == 2 ? ent[1].seq : 0;
    const uint8_t *parent = n == 2 ? ent[1].hash : zeros;
    if (parent_seq != tail_seq - 1) {
        snprintf(what, sizeof(what), "entry %lld is missing (the last entry is %lld)",
                 (long long)(tail_seq - 1), (long long)tail_seq);
        rep_break(rep, tail_seq - 1, GW_AUDIT_BREAK_SEQ, what);
        out = -EBADMSG;
        goto done;
    }
    if (CRYPTO_memcmp(tail_prev, parent, GW_AUDIT_HASH_LEN) != 0) {
        snprintf(what, sizeof(what), "prev_hash of the last entry is not the hash of entry %lld",
                 (long long)parent_seq);
        rep_break(rep, tail_seq, GW_AUDIT_BREAK_LINK, what);
        out = -EBADMSG;
        goto done;
    }
    sqlite3_finalize(q);
    q = NULL;
    int64_t rows = 0;
    out = table_rows(db, &rows, err);
    if (out < 0) {
        goto done;
    }
    if (rows != tail_seq) {
        snprintf(what, sizeof(what), "%lld entries stored for a chain of %lld: entries removed",
                 (long long)rows, (long long)tail_seq);
        rep_break(rep, 0, GW_AUDIT_BREAK_COUNT, what);
        out = -EBADMSG;
        goto done;
    }
    rep->n_ok = (uint64_t)tail_seq;
    rep->head_seq = tail_seq;
    memcpy(rep->head_hash, tail_hash, GW_AUDIT_HASH_LEN);
done:
    sqlite3_finalize(q);
    return out;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int gw_audit_db_append(struct sqlite3 *db, const char *actor, const char *action,
                       const char *target, const char *detail, int64_t *seq,
                       uint8_t hash[GW_AUDIT_HASH_LEN], struct ota_err *err)
{
    struct gw_audit_entry e = {.seq = 1,
                               .ts_ms = wall_ms(),
                               .actor = actor ? actor : "",
                               .action = action ? action : "",
                               .target = target ? target : "",
                               .detail = detail ? detail : ""};
    if (!db || !e.action[0]) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "audit append: no log or no action");
    }
    if (strlen(e.actor) > GW_AUDIT_ACTOR_MAX || strlen(e.action) > GW_AUDIT_ACTION_MAX ||
        strlen(e.target) > GW_AUDIT_TARGET_MAX || strlen(e.detail) > GW_AUDIT_DETAIL_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_OVERSIZE, "audit append: a field is too long");
    }
    sqlite3_stmt *tail = NULL, *ins = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        return db_fail(db, err, rc, "begin");
    }
    /* The stored tail, read inside the write transaction: another writer cannot interleave. */
    rc = sqlite3_prepare_v2(db, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", -1,
                            &tail, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(tail);
    }
    if (rc == SQLITE_ROW) {
        e.seq = sqlite3_column_int64(tail, 0) + 1;
        if (!gw_audit_hash_unhex((const char *)sqlite3_column_text(tail, 1), e.prev_hash)) {
            rc = ota_fail(err, -EIO, OTA_ERR_VALUE, "audit log: hash of entry %lld is malformed",
                          (long long)(e.seq - 1));
            goto rollback;
        }
    } else if (rc != SQLITE_DONE) {
        rc = db_fail(db, err, rc, "tail");
        goto rollback;
    }
    rc = gw_audit_entry_hash(&e, e.hash, err);
    if (rc < 0) {
        goto rollback;
    }
    char prev_hex[2 * GW_AUDIT_HASH_LEN + 1], hash_hex[2 * GW_AUDIT_HASH_LEN + 1];
    gw_audit_hash_hex(e.prev_hash, prev_hex);
    gw_audit_hash_hex(e.hash, hash_hex);
    rc = sqlite3_prepare_v2(
        db, "INSERT INTO audit_log (" COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &ins,
        NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(ins, 1, e.seq);
        sqlite3_bind_int64(ins, 2, e.ts_ms);
        sqlite3_bind_text(ins, 3, e.actor, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, e.action, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 5, e.target, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 6, e.detail, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 7, prev_hex, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 8, hash_hex, -1, SQLITE_STATIC);
        rc = sqlite3_step(ins);
    }
    if (rc != SQLITE_DONE) {
        rc = db_fail(db, err, rc, "insert");
        goto rollback;
    }
    sqlite3_finalize(tail);
    sqlite3_finalize(ins);
    tail = ins = NULL;
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = db_fail(db, err, rc, "commit");
        goto rollback;
    }
    if (seq) {
        *seq = e.seq;
    }
    if (hash) {
        memcpy(hash, e.hash, GW_AUDIT_HASH_LEN);
    }
    return 0;
rollback:
    sqlite3_finalize(tail);
    sqlite3_finalize(ins);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int gw_audit_list(struct sqlite3 *db, int64_t from_seq, size_t max,
                  int (*cb)(void *arg, const struct gw_audit_entry *e), void *arg,
                  struct ota_err *err)
{
    if (!db || !cb) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "audit list: NULL argument");
    }
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(
        db, "SELECT " COLS " FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2", -1, &q, NULL);
    if (rc != SQLITE_OK) {
        return db_fail(db, err, rc, "list");
    }
    sqlite3_bind_int64(q, 1, from_seq);
    sqlite3_bind_int64(q, 2, max ? (sqlite3_int64)max : -1);
    int out = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct gw_audit_entry e;
        char what[200];
        (void)row_entry(q, &e, what, sizeof(what)); /* listed as stored; verify judges */
        out = cb(arg, &e);
        if (out < 0) {
            break;
        }
    }
    if (out == 0 && rc != SQLITE_DONE) {
        out = db_fail(db, err, rc, "list");
    }
    sqlite3_finalize(q);
    return out;
}
