/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The principal and token tables (gateway/auth.h, issue #7, spec 7.1) in
 * their own SQLite file, usable with or without a running daemon: the
 * daemon's gateway/auth.c and otatool's token commands both go through
 * here, so the schema and the token format have one definition.
 *
 * Tokens: 32 octets from RAND_bytes, "otk_" + base64url without padding;
 * only SHA-256 of that text is stored. Token ids come from AUTOINCREMENT so
 * that the id of a revoked token never names a later one.
 */
#include "gateway/auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#define AUTH_BUSY_MS 2000
#define TOKEN_RAW_LEN 32

static const char schema[] = "CREATE TABLE IF NOT EXISTS auth_principal ("
                             " id INTEGER PRIMARY KEY,"
                             " name TEXT NOT NULL UNIQUE,"
                             " role TEXT NOT NULL,"
                             " created_ms INTEGER NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS auth_token ("
                             " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                             " principal INTEGER NOT NULL REFERENCES auth_principal(id),"
                             " hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
                             " created_ms INTEGER NOT NULL,"
                             " revoked_ms INTEGER);";

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int gw_auth_db_path(const char *db_path, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s.auth", db_path ? db_path : "");
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int gw_auth_db_open(const char *path, struct sqlite3 **out, struct ota_err *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = ota_fail(err, -EIO, OTA_ERR_ARG, "auth db %s: %s", path,
                      db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return rc;
    }
    /* otatool and the daemon may write the same file; neither holds it for long. */
    sqlite3_busy_timeout(db, AUTH_BUSY_MS);
    /* Revocations must survive a crash: a revoked token that comes back is a hole. */
    rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        rc = ota_fail(err, -EIO, OTA_ERR_STATE, "auth db %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

int gw_auth_token_hash(const char *token, size_t len, uint8_t out[GW_AUTH_HASH_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(token, len, out, &n, EVP_sha256(), NULL) != 1 || n != GW_AUTH_HASH_LEN) {
        return -EIO;
    }
    return 0;
}

bool gw_auth_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > GW_AUTH_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

static int db_fail(sqlite3 *db, struct ota_err *err, const char *what)
{
    return ota_fail(err, -EIO, OTA_ERR_STATE, "auth db: %s: %s", what, sqlite3_errmsg(db));
}

/* Fill p from columns id, name, role at col..col+2; false when the role text is unknown. */
static bool row_principal(sqlite3_stmt *st, int col, struct gw_principal *p)
{
    const char *name = (const char *)sqlite3_column_text(st, col + 1);
    const char *role = (const char *)sqlite3_column_text(st, col + 2);
    memset(p, 0, sizeof(*p));
    p->id = sqlite3_column_int64(st, col);
    snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
    return role && gw_role_parse(role, &p->role) == 0;
}

int gw_auth_db_principal_get(sqlite3 *db, const char *name, struct gw_principal *out,
                             struct ota_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id, name, role FROM auth_principal WHERE name = ?1", -1, &st,
                           NULL) != SQLITE_OK) {
        return db_fail(db, err, "principal get");
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct gw_principal p;
        if (!row_principal(st, 0, &p)) {
            rc = ota_fail(err, -EIO, OTA_ERR_VALUE, "auth db: principal %s has an unknown role",
                          name);
        } else {
            *out = p;
            rc = 0;
        }
    } else if (rc == SQLITE_DONE) {
        rc = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "no principal %s", name);
    } else {
        rc = db_fail(db, err, "principal get");
    }
    sqlite3_finalize(st);
    return rc;
}

int gw_auth_db_principal_add(sqlite3 *db, const char *name, enum gw_role role,
                             struct gw_principal *out, struct ota_err *err)
{
    if (!gw_auth_name_ok(name)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "name: 1..%d of [A-Za-z0-9._-]",
                        GW_AUTH_NAME_MAX);
    }
    if (strcmp(gw_role_name(role), "?") == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "role: one of admin, operator, platform, client,"
                        " anti-theft");
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            db, "INSERT INTO auth_principal (name, role, created_ms) VALUES (?1, ?2, ?3)", -1, &st,
            NULL) != SQLITE_OK) {
        return db_fail(db, err, "principal add");
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, gw_role_name(role), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, wall_ms());
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        struct gw_principal p = {.id = sqlite3_last_insert_rowid(db), .role = role};
        snprintf(p.name, sizeof(p.name), "%s", name);
        if (out) {
            *out = p;
        }
        rc = 0;
    } else if (rc == SQLITE_CONSTRAINT) {
        rc = ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE, "principal %s exists", name);
    } else {
        rc = db_fail(db, err, "principal add");
    }
    sqlite3_finalize(st);
    return rc;
}

/* base64url without padding (RFC 4648 section 5): token text safe in headers and shells. */
static void b64url(const uint8_t *in, size_t len, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t k = len - i;
        if (k > 1) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (k > 2) {
            v |= in[i + 2];
        }
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (k > 1) {
            out[o++] = a[(v >> 6) & 63];
        }
        if (k > 2) {
            out[o++] = a[v & 63];
        }
    }
    out[o] = '\0';
}

int gw_auth_db_token_add(sqlite3 *db, int64_t principal_id, char token[GW_AUTH_TOKEN_LEN + 1],
                         int64_t *id, struct ota_err *err)
{
    uint8_t raw[TOKEN_RAW_LEN], hash[GW_AUTH_HASH_LEN];
    char text[GW_AUTH_TOKEN_LEN + 1];
    int rc;
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        rc = ota_fail(err, -EIO, OTA_ERR_CRYPTO, "RAND_bytes failed");
        goto out;
    }
    memcpy(text, GW_AUTH_TOKEN_PREFIX, sizeof(GW_AUTH_TOKEN_PREFIX) - 1);
    b64url(raw, sizeof(raw), text + sizeof(GW_AUTH_TOKEN_PREFIX) - 1);
    if (strlen(text) != GW_AUTH_TOKEN_LEN ||
        gw_auth_token_hash(text, GW_AUTH_TOKEN_LEN, hash) < 0) {
        rc = ota_fail(err, -EIO, OTA_ERR_CRYPTO, "token hash failed");
        goto out;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO auth_token (principal, hash, created_ms)"
                           " SELECT id, ?2, ?3 FROM auth_principal WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, "token add");
        goto out;
    }
    sqlite3_bind_int64(st, 1, principal_id);
    sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, wall_ms());
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE && sqlite3_changes(db) == 1) {
        *id = sqlite3_last_insert_rowid(db);
        memcpy(token, text, sizeof(text));
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "no principal id %lld",
                      (long long)principal_id);
    } else {
        rc = db_fail(db, err, "token add");
    }
    sqlite3_finalize(st);
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}

int gw_auth_db_token_revoke(sqlite3 *db, int64_t id, struct ota_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT revoked_ms FROM auth_token WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        return db_fail(db, err, "token revoke");
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    bool revoked = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "no token %lld", (long long)id);
    }
    if (rc != SQLITE_ROW) {
        return db_fail(db, err, "token revoke");
    }
    if (revoked) {
        return ota_fail(err, -EALREADY, OTA_ERR_STATE, "token %lld already revoked", (long long)id);
    }
    if (sqlite3_prepare_v2(db,
                           "UPDATE auth_token SET revoked_ms = ?2 WHERE id = ?1"
                           " AND revoked_ms IS NULL",
                           -1, &st, NULL) != SQLITE_OK) {
        return db_fail(db, err, "token revoke");
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, wall_ms());
    rc = sqlite3_step(st);
    int changed = sqlite3_changes(db);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return db_fail(db, err, "token revoke");
    }
    if (changed != 1) {
        /* Revoked by another writer between our two statements. */
        return ota_fail(err, -EALREADY, OTA_ERR_STATE, "token %lld already revoked", (long long)id);
    }
    return 0;
}

int gw_auth_db_tokens(sqlite3 *db, int (*cb)(void *arg, const struct gw_auth_token_info *t),
                      void *arg, struct ota_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT t.id, t.hash, t.created_ms, t.revoked_ms, p.id, p.name, p.role"
                           " FROM auth_token t JOIN auth_principal p ON p.id = t.principal"
                           " ORDER BY t.id",
                           -1, &st, NULL) != SQLITE_OK) {
        return db_fail(db, err, "tokens");
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct gw_auth_token_info t = {.id = sqlite3_column_int64(st, 0)};
        if (sqlite3_column_bytes(st, 1) != GW_AUTH_HASH_LEN ||
            !row_principal(st, 4, &t.principal)) {
            continue; /* a damaged row authenticates nobody; listing it would mislead */
        }
        memcpy(t.hash, sqlite3_column_blob(st, 1), GW_AUTH_HASH_LEN);
        t.created_ms = sqlite3_column_int64(st, 2);
        t.revoked_ms = sqlite3_column_type(st, 3) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 3);
        for (size_t i = 0; i < GW_AUTH_HINT_LEN / 2; i++) {
            snprintf(t.hint + 2 * i, 3, "%02x",
                     t.hash[GW_AUTH_HASH_LEN - GW_AUTH_HINT_LEN / 2 + i]);
        }
        rc = cb(arg, &t);
        if (rc != 0) {
            sqlite3_finalize(st);
            return rc;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, err, "tokens");
}

int gw_auth_db_principals(sqlite3 *db,
                          int (*cb)(void *arg, const struct gw_principal *p, int64_t created_ms,
                                    unsigned live_tokens),
                          void *arg, struct ota_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT p.id, p.name, p.role, p.created_ms,"
                           " (SELECT count(*) FROM auth_token t WHERE t.principal = p.id"
                           "  AND t.revoked_ms IS NULL)"
                           " FROM auth_principal p ORDER BY p.id",
                           -1, &st, NULL) != SQLITE_OK) {
        return db_fail(db, err, "principals");
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct gw_principal p;
        if (!row_principal(st, 0, &p)) {
            continue;
        }
        rc = cb(arg, &p, sqlite3_column_int64(st, 3), (unsigned)sqlite3_column_int64(st, 4));
        if (rc != 0) {
            sqlite3_finalize(st);
            return rc;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, err, "principals");
}
