/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TEMPORARY local key store (see gateway/keys.h): SCP80 and SD key sets
 * in two tables of the engine's SQLite file, keys in clear until issue #7's
 * encrypted / HSM store replaces this file. Validation of a set (SPI, KIc,
 * KID, key lengths per algorithm, CC length, KCV) lives here so that every
 * backend refuses the same inputs.
 */
#include "gateway/keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

struct gw_keys {
    sqlite3 *db;
    sqlite3_stmt *put80, *get80, *putsd, *getsd, *getsd_any, *sefind;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS keys_scp80 ("
    " seid TEXT NOT NULL, tar TEXT NOT NULL, kvn INTEGER NOT NULL, spi BLOB NOT NULL,"
    " kic_octet INTEGER NOT NULL, kid_octet INTEGER NOT NULL,"
    " kic_alg INTEGER NOT NULL, kic_key BLOB NOT NULL,"
    " kid_alg INTEGER NOT NULL, kid_key BLOB NOT NULL, cc_len INTEGER NOT NULL,"
    " PRIMARY KEY (seid, tar)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS keys_sd ("
    " seid TEXT NOT NULL, sd_aid BLOB NOT NULL, kvn INTEGER NOT NULL,"
    " enc BLOB NOT NULL, mac BLOB NOT NULL, dek BLOB NOT NULL,"
    " PRIMARY KEY (seid, sd_aid, kvn)) WITHOUT ROWID;";

static int db_fail(struct gw_keys *k, struct ota_err *err, int src, const char *what)
{
    int rc = (src == SQLITE_BUSY || src == SQLITE_LOCKED) ? -EBUSY : -EIO;
    return ota_fail(err, rc, OTA_ERR_STATE, "key store: %s: %s", what,
                    k && k->db ? sqlite3_errmsg(k->db) : sqlite3_errstr(src));
}

static bool seid_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > GW_KEYS_SEID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static void tar_text(const uint8_t tar[3], char out[7])
{
    snprintf(out, 7, "%02X%02X%02X", tar[0], tar[1], tar[2]);
}

int gw_keys_open(const char *path, bool durable, struct gw_keys **out, struct ota_err *err)
{
    if (!path || !path[0] || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: path missing");
    }
    struct gw_keys *k = calloc(1, sizeof(*k));
    if (!k) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "key store: out of memory");
    }
    int rc = sqlite3_open_v2(
        path, &k->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = db_fail(k, err, rc, path);
        goto fail;
    }
    sqlite3_busy_timeout(k->db, GW_KEYS_BUSY_MS);
    /* The engine's file is in WAL mode already; set it for a fresh file (unit tests) too. */
    rc = sqlite3_exec(k->db,
                      durable ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                              : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                      NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(k->db, schema, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        rc = db_fail(k, err, rc, "schema");
        goto fail;
    }
    struct {
        sqlite3_stmt **q;
        const char *sql;
    } st[] = {
        {&k->put80, "INSERT OR REPLACE INTO keys_scp80 (seid, tar, kvn, spi, kic_octet, kid_octet,"
                    " kic_alg, kic_key, kid_alg, kid_key, cc_len)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
        /* Exact TAR sorts before "*" ('*' < '0'), hence ORDER BY tar DESC. */
        {&k->get80, "SELECT spi, kic_octet, kid_octet, kic_alg, kic_key, kid_alg, kid_key, cc_len"
                    " FROM keys_scp80 WHERE seid = ?1 AND tar IN (?2, '*')"
                    " ORDER BY tar DESC LIMIT 1"},
        {&k->putsd, "INSERT OR REPLACE INTO keys_sd (seid, sd_aid, kvn, enc, mac, dek)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
        {&k->getsd, "SELECT kvn, enc, mac, dek FROM keys_sd"
                    " WHERE seid = ?1 AND sd_aid = ?2 AND kvn = ?3"},
        {&k->getsd_any, "SELECT kvn, enc, mac, dek FROM keys_sd"
                        " WHERE seid = ?1 AND sd_aid = ?2 ORDER BY kvn DESC LIMIT 1"},
    };
    for (size_t i = 0; i < OTA_ARRAY_SIZE(st); i++) {
        rc = sqlite3_prepare_v3(k->db, st[i].sql, -1, SQLITE_PREPARE_PERSISTENT, st[i].q, NULL);
        if (rc != SQLITE_OK) {
            rc = db_fail(k, err, rc, "prepare");
            goto fail;
        }
    }
    *out = k;
    return 0;
fail:
    gw_keys_close(k);
    return rc;
}

void gw_keys_close(struct gw_keys *k)
{
    if (!k) {
        return;
    }
    sqlite3_finalize(k->put80);
    sqlite3_finalize(k->get80);
    sqlite3_finalize(k->putsd);
    sqlite3_finalize(k->getsd);
    sqlite3_finalize(k->getsd_any);
    sqlite3_finalize(k->sefind);
    sqlite3_close(k->db);
    free(k);
}

/* The cipher an SCP80 algorithm keys with; NONE for those the store does not take. */
static enum ota_cipher alg_cipher(enum ota_scp80_alg a)
{
    switch (a) {
    case OTA_SCP80_ALG_DES_CBC:
    case OTA_SCP80_ALG_DES_ECB:
    case OTA_SCP80_ALG_DES_CBC_MAC:
        return OTA_CIPHER_DES;
    case OTA_SCP80_ALG_3DES2_CBC:
    case OTA_SCP80_ALG_3DES2_CBC_MAC:
        return OTA_CIPHER_3DES2;
    case OTA_SCP80_ALG_3DES3_CBC:
    case OTA_SCP80_ALG_3DES3_CBC_MAC:
        return OTA_CIPHER_3DES3;
    case OTA_SCP80_ALG_AES_CBC:
    case OTA_SCP80_ALG_AES_CMAC:
        return OTA_CIPHER_AES;
    default:
        return OTA_CIPHER_NONE;
    }
}

static bool key_len_ok(enum ota_cipher c, size_t len)
{
    switch (c) {
    case OTA_CIPHER_DES:
        return len == 8;
    case OTA_CIPHER_3DES2:
        return len == 16;
    case OTA_CIPHER_3DES3:
        return len == 24;
    case OTA_CIPHER_AES:
        return len == 16 || len == 24 || len == 32;
    default:
        return false;
    }
}

static int check_kcv(const struct ota_key *key, const uint8_t want[3], const char *name,
                     struct ota_err *err)
{
    struct ota_crypto *c = NULL;
    uint8_t got[3];
    int rc = ota_crypto_new(&c, err);
    if (rc < 0) {
        return rc;
    }
    rc = ota_crypto_kcv(c, key, got, err);
    ota_crypto_free(c);
    if (rc < 0) {
        return rc;
    }
    if (CRYPTO_memcmp(got, want, 3) != 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_BAD_CC, "%s: key check value mismatch", name);
    }
    return 0;
}

static int check_scp80(const char *seid, const struct gw_keys_scp80 *in, const uint8_t *kcv,
                       struct ota_err *err)
{
    if (!seid_ok(seid)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "seid: 1..64 printable characters");
    }
    if (!in) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key set: NULL");
    }
    if (in->kvn < 1 || in->kvn > 15) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kvn: %u not in 1..15", in->kvn);
    }
    struct ota_scp80_spi spi;
    struct ota_err e2;
    if (ota_scp80_spi_decode(in->spi, 2, &spi, &e2) < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "spi: %s", e2.msg);
    }
    if (spi.integrity != OTA_SCP80_INTEGRITY_CC) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "spi: must ask for a cryptographic checksum (b2b1 = 10)");
    }
    uint8_t kvn_c, kvn_i;
    enum ota_scp80_alg a_c, a_i;
    if (ota_scp80_kic_decode(in->kic, &kvn_c, &a_c, &e2) < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kic: %s", e2.msg);
    }
    if (ota_scp80_kid_decode(in->kid, spi.integrity, &kvn_i, &a_i, &e2) < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kid: %s", e2.msg);
    }
    if (kvn_c != in->kvn || kvn_i != in->kvn) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kvn: %u differs from kic (%u) or kid (%u)",
                        in->kvn, kvn_c, kvn_i);
    }
    enum ota_cipher c_c = alg_cipher(a_c), c_i = alg_cipher(a_i);
    if (c_c == OTA_CIPHER_NONE || a_c == OTA_SCP80_ALG_DES_ECB) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kic: algorithm %s not supported",
                        ota_scp80_alg_name(a_c));
    }
    if (c_i == OTA_CIPHER_NONE) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kid: algorithm %s not supported",
                        ota_scp80_alg_name(a_i));
    }
    if (in->kic_key.cipher != c_c || !key_len_ok(c_c, in->kic_key.len)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "kic_key: %s needs %s octets",
                        ota_scp80_alg_name(a_c),
                        c_c == OTA_CIPHER_AES     ? "16, 24 or 32"
                        : c_c == OTA_CIPHER_DES   ? "8"
                        : c_c == OTA_CIPHER_3DES2 ? "16"
                                                  : "24");
    }
    if (in->kid_key.cipher != c_i || !key_len_ok(c_i, in->kid_key.len)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "kid_key: %s needs %s octets",
                        ota_scp80_alg_name(a_i),
                        c_i == OTA_CIPHER_AES     ? "16, 24 or 32"
                        : c_i == OTA_CIPHER_DES   ? "8"
                        : c_i == OTA_CIPHER_3DES2 ? "16"
                                                  : "24");
    }
    bool cc_ok =
        a_i == OTA_SCP80_ALG_AES_CMAC ? (in->cc_len == 4 || in->cc_len == 8) : in->cc_len == 8;
    if (!cc_ok) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "cc_len: %u not allowed for %s (%s)",
                        in->cc_len, ota_scp80_alg_name(a_i),
                        a_i == OTA_SCP80_ALG_AES_CMAC ? "4 or 8" : "8");
    }
    if (kcv) {
        int rc = check_kcv(&in->kic_key, kcv, "kcv (kic_key)", err);
        if (rc == 0) {
            rc = check_kcv(&in->kid_key, kcv + 3, "kcv (kid_key)", err);
        }
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

/* Run a bound write statement to completion; the statement is reset (and its bindings cleared). */
static int step_write(struct gw_keys *k, sqlite3_stmt *q, struct ota_err *err)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    /* The bound key blobs were copied by SQLite (TRANSIENT); clear the bindings anyway. */
    sqlite3_clear_bindings(q);
    if (rc != SQLITE_DONE) {
        return db_fail(k, err, rc, "write");
    }
    return 0;
}

int gw_keys_put_scp80(struct gw_keys *k, const char *seid, const struct gw_keys_scp80 *in,
                      const uint8_t *kcv, struct ota_err *err)
{
    if (!k) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL");
    }
    int rc = check_scp80(seid, in, kcv, err);
    if (rc < 0) {
        return rc;
    }
    char tar[7];
    if (in->any_tar) {
        strcpy(tar, "*");
    } else {
        tar_text(in->tar, tar);
    }
    sqlite3_stmt *q = k->put80;
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, tar, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 3, in->kvn);
    sqlite3_bind_blob(q, 4, in->spi, 2, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 5, in->kic);
    sqlite3_bind_int(q, 6, in->kid);
    sqlite3_bind_int(q, 7, (int)in->kic_key.cipher);
    sqlite3_bind_blob(q, 8, in->kic_key.bytes, in->kic_key.len, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 9, (int)in->kid_key.cipher);
    sqlite3_bind_blob(q, 10, in->kid_key.bytes, in->kid_key.len, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 11, in->cc_len);
    return step_write(k, q, err);
}

/* Column col of q as a key of cipher c; -EIO when the stored row is not a valid key. */
static int col_key(sqlite3_stmt *q, int col, int cipher, struct ota_key *out, struct ota_err *err)
{
    const void *p = sqlite3_column_blob(q, col);
    int n = sqlite3_column_bytes(q, col);
    if (!p || n <= 0 || n > OTA_KEY_MAX) {
        return ota_fail(err, -EIO, OTA_ERR_KEY, "key store: stored key malformed");
    }
    struct ota_err e2;
    if (ota_key_set(out, (enum ota_cipher)cipher, p, (size_t)n, &e2) < 0) {
        return ota_fail(err, -EIO, OTA_ERR_KEY, "key store: stored key malformed");
    }
    return 0;
}

int gw_keys_get_scp80(struct gw_keys *k, const char *seid, const uint8_t tar[3],
                      struct eng_scp80_keys *out, struct ota_err *err)
{
    if (!k || !seid || !tar || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL argument");
    }
    char t[7];
    tar_text(tar, t);
    sqlite3_stmt *q = k->get80;
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, t, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        rc = ota_fail(err, -ENOENT, OTA_ERR_KEY, "no SCP80 keys for SE %s TAR %s", seid, t);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        rc = db_fail(k, err, rc, "read");
        goto out;
    }
    struct eng_scp80_keys r;
    memset(&r, 0, sizeof(r));
    const uint8_t *spi = sqlite3_column_blob(q, 0);
    if (!spi || sqlite3_column_bytes(q, 0) != 2) {
        rc = ota_fail(err, -EIO, OTA_ERR_KEY, "key store: stored spi malformed");
        goto out;
    }
    memcpy(r.spi, spi, 2);
    r.kic = (uint8_t)sqlite3_column_int(q, 1);
    r.kid = (uint8_t)sqlite3_column_int(q, 2);
    r.cc_len = (uint8_t)sqlite3_column_int(q, 7);
    rc = col_key(q, 4, sqlite3_column_int(q, 3), &r.kic_key, err);
    if (rc == 0) {
        rc = col_key(q, 6, sqlite3_column_int(q, 5), &r.kid_key, err);
    }
    if (rc == 0) {
        *out = r;
    }
    OPENSSL_cleanse(&r, sizeof(r));
out:
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc;
}

static bool sd_key_ok(const struct ota_key *key)
{
    return key->cipher == OTA_CIPHER_3DES2 && key->len == 16;
}

int gw_keys_put_sd(struct gw_keys *k, const char *seid, const struct gw_keys_sd *in,
                   struct ota_err *err)
{
    if (!k || !in) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL argument");
    }
    if (!seid_ok(seid)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "seid: 1..64 printable characters");
    }
    if (in->aid_len < 5 || in->aid_len > GW_KEYS_AID_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "sd_aid: %zu octets, 5..16 allowed",
                        in->aid_len);
    }
    if (in->kvn < 1 || in->kvn > 127) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kvn: %u not in 1..127", in->kvn);
    }
    if (!sd_key_ok(&in->enc) || !sd_key_ok(&in->mac) || !sd_key_ok(&in->dek)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "enc/mac/dek: 3DES-2key, 16 octets each");
    }
    sqlite3_stmt *q = k->putsd;
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(q, 2, in->aid, (int)in->aid_len, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 3, in->kvn);
    sqlite3_bind_blob(q, 4, in->enc.bytes, in->enc.len, SQLITE_TRANSIENT);
    sqlite3_bind_blob(q, 5, in->mac.bytes, in->mac.len, SQLITE_TRANSIENT);
    sqlite3_bind_blob(q, 6, in->dek.bytes, in->dek.len, SQLITE_TRANSIENT);
    return step_write(k, q, err);
}

int gw_keys_get_sd(struct gw_keys *k, const char *seid, const uint8_t *aid, size_t aid_len,
                   uint8_t kvn, struct gw_keys_sd *out, struct ota_err *err)
{
    if (!k || !seid || !aid || !out || aid_len < 1 || aid_len > GW_KEYS_AID_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: bad argument");
    }
    sqlite3_stmt *q = kvn ? k->getsd : k->getsd_any;
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(q, 2, aid, (int)aid_len, SQLITE_TRANSIENT);
    if (kvn) {
        sqlite3_bind_int(q, 3, kvn);
    }
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        rc = ota_fail(err, -ENOENT, OTA_ERR_KEY, "no SD keys for SE %s", seid);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        rc = db_fail(k, err, rc, "read");
        goto out;
    }
    struct gw_keys_sd r;
    memset(&r, 0, sizeof(r));
    memcpy(r.aid, aid, aid_len);
    r.aid_len = aid_len;
    r.kvn = (uint8_t)sqlite3_column_int(q, 0);
    rc = col_key(q, 1, OTA_CIPHER_3DES2, &r.enc, err);
    if (rc == 0) {
        rc = col_key(q, 2, OTA_CIPHER_3DES2, &r.mac, err);
    }
    if (rc == 0) {
        rc = col_key(q, 3, OTA_CIPHER_3DES2, &r.dek, err);
    }
    if (rc == 0) {
        *out = r;
    }
    OPENSSL_cleanse(&r, sizeof(r));
out:
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc;
}

void gw_keys_scp80_wipe(struct gw_keys_scp80 *s)
{
    if (s) {
        ota_key_wipe(&s->kic_key);
        ota_key_wipe(&s->kid_key);
    }
}

void gw_keys_sd_wipe(struct gw_keys_sd *s)
{
    if (s) {
        ota_key_wipe(&s->enc);
        ota_key_wipe(&s->mac);
        ota_key_wipe(&s->dek);
    }
}

int gw_keys_se_find(struct gw_keys *k, const char *seid, char msisdn[22], char batch[33],
                    struct ota_err *err)
{
    if (!k || !seid) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL argument");
    }
    /* Prepared lazily: the engine's table exists only in the engine's file. */
    if (!k->sefind) {
        int rc = sqlite3_prepare_v3(k->db, "SELECT msisdn, batch FROM se WHERE seid = ?1", -1,
                                    SQLITE_PREPARE_PERSISTENT, &k->sefind, NULL);
        if (rc != SQLITE_OK) {
            return db_fail(k, err, rc, "se lookup");
        }
    }
    sqlite3_stmt *q = k->sefind;
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(q, 0);
        const char *b = (const char *)sqlite3_column_text(q, 1);
        snprintf(msisdn, 22, "%s", m ? m : "");
        snprintf(batch, 33, "%s", b ? b : "");
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "SE %s not registered", seid);
    } else {
        rc = db_fail(k, err, rc, "se lookup");
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc;
}
