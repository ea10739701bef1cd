/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key store (see gateway/keys.h): one SQLite file of its own holding
 * per-version key set records and the current-version table, with the key
 * material either sealed under the master key (local backend, AES-256-GCM)
 * or left inside a PKCS#11 token (pkcs11 backend, the rows name labels).
 * Validation of a set (SPI, KIc, KID, key lengths per algorithm, CC length,
 * KCV) lives here so that both backends refuse the same inputs.
 */
#include "gateway/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "gateway/api_util.h"
#include "gateway/p11.h"
#include "gateway/platform.h"

#define MASTER_LEN 32 /* AES-256 */
#define GCM_NONCE 12
#define GCM_TAG 16
#define SEAL_MAX (3 * OTA_KEY_MAX) /* the largest plaintext: an SD set's three keys */
#define AAD_MAX 256
#define KEYFILE_MAX 256 /* octets read from a key or PIN file */

/*
 * The page-locked arena: the master key, the transport key and the scratch
 * space where records are decrypted and keys unwrapped. One mapping, locked
 * and kept out of core dumps, cleansed before it is unmapped.
 */
#define ARENA_LEN 4096
#define AR_MASTER 0
#define AR_TRANSPORT 64 /* struct ota_key */
#define AR_SCRATCH 512  /* plaintexts, unwrapped keys */
#define AR_SCRATCH_LEN (ARENA_LEN - AR_SCRATCH)

enum st {
    ST_PUT80,
    ST_GET80,
    ST_MAX80,
    ST_HAS80,
    ST_PUTSD,
    ST_GETSD,
    ST_MAXSD,
    ST_HASSD,
    ST_CUR_GET,
    ST_CUR_PUT,
    ST_CUR_INIT,
    ST_META_GET,
    ST_META_PUT,
    ST_PUTKEK,
    ST_GETKEK,
    ST_MAXKEK,
    ST_HASKEK,
    ST__COUNT
};

static const char *const st_sql[ST__COUNT] = {
    [ST_PUT80] = "INSERT OR REPLACE INTO ks_scp80 (seid, tar, kvn, spi, kic_octet, kid_octet,"
                 " cc_len, kic_cipher, kic_len, kid_cipher, kid_len, sealed, kic_label, kid_label,"
                 " created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
                 " ?15)",
    [ST_GET80] = "SELECT spi, kic_octet, kid_octet, cc_len, kic_cipher, kic_len, kid_cipher,"
                 " kid_len, sealed, kic_label, kid_label FROM ks_scp80"
                 " WHERE seid = ?1 AND tar = ?2 AND kvn = ?3",
    [ST_MAX80] = "SELECT max(kvn) FROM ks_scp80 WHERE seid = ?1 AND tar = ?2",
    [ST_HAS80] = "SELECT 1 FROM ks_scp80 WHERE seid = ?1 AND tar = ?2 AND kvn = ?3",
    [ST_PUTSD] = "INSERT OR REPLACE INTO ks_sd (seid, sd_aid, kvn, sealed, enc_label, mac_label,"
                 " dek_label, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_GETSD] = "SELECT sealed, enc_label, mac_label, dek_label FROM ks_sd"
                 " WHERE seid = ?1 AND sd_aid = ?2 AND kvn = ?3",
    [ST_MAXSD] = "SELECT max(kvn) FROM ks_sd WHERE seid = ?1 AND sd_aid = ?2",
    [ST_HASSD] = "SELECT 1 FROM ks_sd WHERE seid = ?1 AND sd_aid = ?2 AND kvn = ?3",
    [ST_CUR_GET] = "SELECT kvn FROM ks_current WHERE seid = ?1 AND kind = ?2 AND ref = ?3",
    [ST_CUR_PUT] = "INSERT OR REPLACE INTO ks_current (seid, kind, ref, kvn, updated_ms)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)",
    /* the first set imported for a key set is what the card holds */
    [ST_CUR_INIT] = "INSERT OR IGNORE INTO ks_current (seid, kind, ref, kvn, updated_ms)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_META_GET] = "SELECT value FROM ks_meta WHERE name = ?1",
    [ST_META_PUT] = "INSERT OR REPLACE INTO ks_meta (name, value) VALUES (?1, ?2)",
    [ST_PUTKEK] = "INSERT OR REPLACE INTO ks_kek (name, kvn, owner, cipher, len, sealed, label,"
                  " created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_GETKEK] =
        "SELECT owner, cipher, len, sealed, label FROM ks_kek WHERE name = ?1 AND kvn = ?2",
    [ST_MAXKEK] = "SELECT max(kvn) FROM ks_kek WHERE name = ?1",
    [ST_HASKEK] = "SELECT 1 FROM ks_kek WHERE name = ?1 AND kvn = ?2",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS ks_scp80 ("
    " seid TEXT NOT NULL, tar TEXT NOT NULL, kvn INTEGER NOT NULL, spi BLOB NOT NULL,"
    " kic_octet INTEGER NOT NULL, kid_octet INTEGER NOT NULL, cc_len INTEGER NOT NULL,"
    " kic_cipher INTEGER NOT NULL, kic_len INTEGER NOT NULL,"
    " kid_cipher INTEGER NOT NULL, kid_len INTEGER NOT NULL,"
    " sealed BLOB, kic_label TEXT, kid_label TEXT, created_ms INTEGER NOT NULL,"
    " PRIMARY KEY (seid, tar, kvn)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS ks_sd ("
    " seid TEXT NOT NULL, sd_aid TEXT NOT NULL, kvn INTEGER NOT NULL,"
    " sealed BLOB, enc_label TEXT, mac_label TEXT, dek_label TEXT, created_ms INTEGER NOT NULL,"
    " PRIMARY KEY (seid, sd_aid, kvn)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS ks_current ("
    " seid TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL, kvn INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, PRIMARY KEY (seid, kind, ref)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS ks_meta (name TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS ks_kek ("
    " name TEXT NOT NULL, kvn INTEGER NOT NULL, owner TEXT NOT NULL, cipher INTEGER NOT NULL,"
    " len INTEGER NOT NULL, sealed BLOB, label TEXT, created_ms INTEGER NOT NULL,"
    " PRIMARY KEY (name, kvn)) WITHOUT ROWID;";

struct gw_keys {
    enum gw_keys_backend backend;
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];
    struct ota_crypto *cx;
    uint8_t *arena; /* ARENA_LEN, mmap'd */
    bool locked;
    bool have_transport;
    struct p11 *p11;
    char transport_label[P11_LABEL_MAX + 1];
};

static uint8_t *ar_master(struct gw_keys *k)
{
    return k->arena + AR_MASTER;
}

static struct ota_key *ar_transport(struct gw_keys *k)
{
    return (struct ota_key *)(void *)(k->arena + AR_TRANSPORT);
}

static uint8_t *ar_scratch(struct gw_keys *k)
{
    return k->arena + AR_SCRATCH;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int db_fail(struct gw_keys *k, struct ota_err *err, int src, const char *what)
{
    int rc = (src == SQLITE_BUSY || src == SQLITE_LOCKED) ? -EBUSY : -EIO;
    return ota_fail(err, rc, OTA_ERR_STATE, "key store: %s: %s", what,
                    k && k->db ? sqlite3_errmsg(k->db) : sqlite3_errstr(src));
}

static void st_done(sqlite3_stmt *q)
{
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
}

/* The text a TAR is stored under: 6 hex digits, or "*" for the any-TAR set. */
static void tar_text(const uint8_t *tar, char out[7])
{
    if (!tar) {
        snprintf(out, 7, "*");
    } else {
        api_hex_encode(tar, 3, true, out);
    }
}

/* ---- key files ------------------------------------------------------------------------ */

/*
 * Open a secret file and check it is ours alone: a regular file (no
 * symlink), owned by our effective uid, no group/other permission bits.
 * Returns the fd or a negative errno.
 */
static int secret_open(const char *path, const char *what, struct ota_err *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP) {
            return ota_fail(err, -EACCES, OTA_ERR_ARG, "%s %s: a symbolic link (must be a file)",
                            what, path);
        }
        return ota_fail(err, -e, e == ENOENT ? OTA_ERR_MISSING : OTA_ERR_ARG, "%s %s: %s", what,
                        path, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        close(fd);
        return ota_fail(err, -e, OTA_ERR_ARG, "%s %s: %s", what, path, strerror(e));
    }
    const char *why = NULL;
    if (!S_ISREG(sb.st_mode)) {
        why = "not a regular file";
    } else if (sb.st_uid != geteuid()) {
        why = "not owned by the user otagw runs as";
    } else if (sb.st_mode & 077) {
        why = "readable or writable by group or others";
    }
    if (why) {
        close(fd);
        return ota_fail(err, -EACCES, OTA_ERR_ARG, "%s %s: mode %04o: %s (chmod 600 it)", what,
                        path, (unsigned)(sb.st_mode & 07777), why);
    }
    return fd;
}

/* Read a whole (small) secret file into buf; the length or a negative errno. */
static int secret_read(const char *path, const char *what, uint8_t *buf, size_t cap,
                       struct ota_err *err)
{
    int fd = secret_open(path, what, err);
    if (fd < 0) {
        return fd;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            close(fd);
            return ota_fail(err, -e, OTA_ERR_ARG, "%s %s: %s", what, path, strerror(e));
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
        if (n == cap) {
            close(fd);
            return ota_fail(err, -EINVAL, OTA_ERR_OVERSIZE, "%s %s: longer than %zu octets", what,
                            path, cap - 1);
        }
    }
    close(fd);
    return (int)n;
}

/* Create path with 0600 holding len random octets as hex (operators can paste it). */
static int key_file_create(const char *path, uint8_t *out, size_t len, struct ota_err *err)
{
    char hex[2 * OTA_KEY_MAX + 2];
    if (len > OTA_KEY_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key file: %zu octets asked", len);
    }
    if (RAND_bytes(out, (int)len) != 1) {
        return ota_fail(err, -EIO, OTA_ERR_CRYPTO, "key file %s: no random octets", path);
    }
    api_hex_encode(out, len, true, hex);
    hex[2 * len] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        OPENSSL_cleanse(hex, sizeof(hex));
        OPENSSL_cleanse(out, len);
        return ota_fail(err, -e, OTA_ERR_ARG, "key file %s: cannot create: %s", path, strerror(e));
    }
    /* the umask may have taken bits away, never added: still set exactly 0600 */
    int rc = fchmod(fd, 0600) == 0 && write(fd, hex, 2 * len + 1) == (ssize_t)(2 * len + 1) &&
                     fsync(fd) == 0
                 ? 0
                 : -errno;
    OPENSSL_cleanse(hex, sizeof(hex));
    if (close(fd) < 0 && rc == 0) {
        rc = -errno;
    }
    if (rc < 0) {
        unlink(path);
        OPENSSL_cleanse(out, len);
        return ota_fail(err, rc, OTA_ERR_ARG, "key file %s: cannot write: %s", path, strerror(-rc));
    }
    return (int)len;
}

int gw_keys_read_key_file(const char *path, bool create, size_t create_len, uint8_t *out,
                          size_t cap, bool *created, struct ota_err *err)
{
    if (created) {
        *created = false;
    }
    if (!path || !path[0] || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key file: no path");
    }
    uint8_t buf[KEYFILE_MAX];
    int n = secret_read(path, "key file", buf, sizeof(buf), err);
    if (n == -ENOENT && create) {
        if (create_len > cap) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key file: %zu octets do not fit",
                            create_len);
        }
        n = key_file_create(path, out, create_len, err);
        if (n >= 0 && created) {
            *created = true;
        }
        return n;
    }
    if (n < 0) {
        return n;
    }
    size_t len = (size_t)n;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) {
        len--;
    }
    char txt[KEYFILE_MAX + 1]; /* the trimmed text, NUL-terminated for api_hex_decode */
    memcpy(txt, buf, len);
    txt[len] = '\0';
    bool hex = len > 0 && len % 2 == 0 && strspn(txt, "0123456789abcdefABCDEF") == len;
    int rc;
    if (hex && len / 2 <= cap && len / 2 <= OTA_KEY_MAX) {
        rc = api_hex_decode(txt, out, len / 2, len / 2);
    } else if (!hex && (size_t)n <= cap && (size_t)n <= OTA_KEY_MAX && n > 0) {
        /* raw octets: the whole file, a trailing newline being key material too */
        memcpy(out, buf, (size_t)n);
        rc = n;
    } else {
        rc = ota_fail(err, -EINVAL, OTA_ERR_KEY,
                      "key file %s: expected 16, 24 or 32 raw octets or as many hex digit pairs",
                      path);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(txt, sizeof(txt));
    return rc;
}

/* ---- sealing (local backend) -------------------------------------------------------- */

/* blob = nonce | ciphertext | tag, under the master key, AAD aad. */
static int seal(struct gw_keys *k, const char *aad, const uint8_t *pt, size_t n, uint8_t *blob,
                struct ota_err *err)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, rc = -EIO;
    if (!c) {
        return ota_fail(err, -ENOMEM, OTA_ERR_CRYPTO, "key store: no cipher context");
    }
    if (RAND_bytes(blob, GCM_NONCE) != 1) {
        goto out;
    }
    if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE, NULL) != 1 ||
        EVP_EncryptInit_ex(c, NULL, NULL, ar_master(k), blob) != 1 ||
        EVP_EncryptUpdate(c, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(c, blob + GCM_NONCE, &len, pt, (int)n) != 1 || (size_t)len != n ||
        EVP_EncryptFinal_ex(c, blob + GCM_NONCE + n, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG, blob + GCM_NONCE + n) != 1) {
        goto out;
    }
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    if (rc < 0) {
        return ota_fail(err, rc, OTA_ERR_CRYPTO, "key store: sealing failed");
    }
    return 0;
}

/*
 * Open a blob into pt (n = blob_len - 28 octets). -EBADMSG when it does
 * not authenticate: tampered, moved to another row, or another master key.
 */
static int unseal(struct gw_keys *k, const char *aad, const uint8_t *blob, size_t blob_len,
                  uint8_t *pt, size_t cap, size_t *n, struct ota_err *err)
{
    if (blob_len < GCM_NONCE + GCM_TAG || blob_len - GCM_NONCE - GCM_TAG > cap) {
        return ota_fail(err, -EBADMSG, OTA_ERR_KEY, "key store: record of %zu octets malformed",
                        blob_len);
    }
    size_t ct = blob_len - GCM_NONCE - GCM_TAG;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, rc = -EBADMSG;
    uint8_t tag[GCM_TAG];
    if (!c) {
        return ota_fail(err, -ENOMEM, OTA_ERR_CRYPTO, "key store: no cipher context");
    }
    memcpy(tag, blob + GCM_NONCE + ct, GCM_TAG);
    if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE, NULL) == 1 &&
        EVP_DecryptInit_ex(c, NULL, NULL, ar_master(k), blob) == 1 &&
        EVP_DecryptUpdate(c, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
        EVP_DecryptUpdate(c, pt, &len, blob + GCM_NONCE, (int)ct) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) == 1 &&
        EVP_DecryptFinal_ex(c, pt + len, &len) == 1) {
        rc = 0;
    }
    EVP_CIPHER_CTX_free(c);
    if (rc < 0) {
        OPENSSL_cleanse(pt, ct);
        return ota_fail(err, rc, OTA_ERR_KEY,
                        "key store: a record failed authentication (tampered, moved, or another "
                        "master key)");
    }
    *n = ct;
    return 0;
}

/*
 * What a record is bound to. Fields are length-prefixed so that no SEID
 * (any printable text) can make two different rows spell the same AAD.
 */
static void aad_scp80(char out[AAD_MAX], const char *seid, const char *tar, uint8_t kvn,
                      const struct gw_keys_scp80 *in)
{
    snprintf(out, AAD_MAX, "otagw-ks1|scp80|%zu:%s|%s|%u|%02X%02X|%02X|%02X|%u|%d/%u|%d/%u",
             strlen(seid), seid, tar, (unsigned)kvn, in->spi[0], in->spi[1], in->kic, in->kid,
             (unsigned)in->cc_len, (int)in->kic_key.cipher, (unsigned)in->kic_key.len,
             (int)in->kid_key.cipher, (unsigned)in->kid_key.len);
}

static void aad_sd(char out[AAD_MAX], const char *seid, const char *aid, uint8_t kvn)
{
    snprintf(out, AAD_MAX, "otagw-ks1|sd|%zu:%s|%s|%u", strlen(seid), seid, aid, (unsigned)kvn);
}

/* ---- open / close ------------------------------------------------------------------- */

static int meta_get(struct gw_keys *k, const char *name, uint8_t *v, size_t cap, size_t *n,
                    struct ota_err *err)
{
    sqlite3_stmt *q = k->st[ST_META_GET];
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(q, 0);
        if (len > cap) {
            rc = ota_fail(err, -EIO, OTA_ERR_STATE, "key store: meta %s too long", name);
        } else {
            memcpy(v, sqlite3_column_blob(q, 0), len);
            *n = len;
            rc = 0;
        }
    } else if (rc == SQLITE_DONE) {
        rc = -ENOENT;
    } else {
        rc = db_fail(k, err, rc, "meta");
    }
    st_done(q);
    return rc;
}

static int meta_put(struct gw_keys *k, const char *name, const void *v, size_t n,
                    struct ota_err *err)
{
    sqlite3_stmt *q = k->st[ST_META_PUT];
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, v, (int)n, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    st_done(q);
    return rc == SQLITE_DONE ? 0 : db_fail(k, err, rc, "meta");
}

/*
 * One store, one backend, one master key: the first open records them; a
 * later open with another backend or master key is refused at start-up,
 * rather than failing on every lookup.
 */
static int meta_check(struct gw_keys *k, bool check_master, struct ota_err *err)
{
    const char *be = k->backend == GW_KEYS_PKCS11 ? "pkcs11" : "local";
    uint8_t v[64];
    size_t n = 0;
    int rc = meta_get(k, "backend", v, sizeof(v), &n, err);
    if (rc == -ENOENT) {
        rc = meta_put(k, "backend", be, strlen(be), err);
    } else if (rc == 0 && (n != strlen(be) || memcmp(v, be, n) != 0)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "key store: the file was made by the %.*s backend, [keys] backend is %s",
                        (int)n, (const char *)v, be);
    }
    if (rc < 0 || !check_master) {
        return rc;
    }
    static const char aad[] = "otagw-ks1|master-check";
    uint8_t zero[16] = {0};
    rc = meta_get(k, "master_check", v, sizeof(v), &n, err);
    if (rc == -ENOENT) {
        uint8_t blob[GCM_NONCE + sizeof(zero) + GCM_TAG];
        rc = seal(k, aad, zero, sizeof(zero), blob, err);
        return rc < 0 ? rc : meta_put(k, "master_check", blob, sizeof(blob), err);
    }
    if (rc < 0) {
        return rc;
    }
    size_t got = 0;
    rc = unseal(k, aad, v, n, ar_scratch(k), AR_SCRATCH_LEN, &got, err);
    OPENSSL_cleanse(ar_scratch(k), sizeof(zero));
    if (rc < 0) {
        return ota_fail(err, -EACCES, OTA_ERR_KEY,
                        "key store: the master key does not open this store (another "
                        "master_key_file?)");
    }
    return 0;
}

static int arena_new(struct gw_keys *k, struct ota_err *err)
{
    void *p = mmap(NULL, ARENA_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "key store: no memory for the key arena");
    }
    k->arena = p;
    /* Swap would write keys to disk; a core dump would too. */
    k->locked = mlock(p, ARENA_LEN) == 0;
#ifdef MADV_DONTDUMP
    (void)madvise(p, ARENA_LEN, MADV_DONTDUMP);
#endif
    return 0;
}

static enum ota_cipher transport_cipher(size_t len)
{
    switch (len) {
    case 16:
        return OTA_CIPHER_3DES2;
    case 24:
        return OTA_CIPHER_3DES3;
    case 32:
        return OTA_CIPHER_AES;
    default:
        return OTA_CIPHER_NONE;
    }
}

/* err->msg prefixed with what (a copy first: the message is rewritten in place). */
static int prefix_fail(struct ota_err *err, int rc, const char *what)
{
    char msg[sizeof(err->msg)];
    snprintf(msg, sizeof(msg), "%s", err->msg);
    return ota_fail(err, rc, err->code, "%s: %s", what, msg);
}

static int open_local(struct gw_keys *k, const struct gw_keys_conf *c, unsigned *created,
                      struct ota_err *err)
{
    bool made = false;
    int n;
    if (!c->master_key_file) {
        if (RAND_bytes(ar_master(k), MASTER_LEN) != 1) {
            return ota_fail(err, -EIO, OTA_ERR_CRYPTO, "key store: no random master key");
        }
    } else {
        n = gw_keys_read_key_file(c->master_key_file, true, MASTER_LEN, ar_master(k), MASTER_LEN,
                                  &made, err);
        if (n < 0) {
            return prefix_fail(err, n, "[keys] master_key_file");
        }
        if (n != MASTER_LEN) {
            return ota_fail(err, -EINVAL, OTA_ERR_KEY,
                            "[keys] master_key_file %s: %d octets, 32 needed (AES-256)",
                            c->master_key_file, n);
        }
        *created |= made ? GW_KEYS_CREATED_MASTER : 0;
    }
    if (c->transport_key_file) {
        uint8_t *tmp = ar_scratch(k);
        n = gw_keys_read_key_file(c->transport_key_file, true, 32, tmp, OTA_KEY_MAX, &made, err);
        if (n < 0) {
            return prefix_fail(err, n, "[keys] transport_key_file");
        }
        enum ota_cipher tc = transport_cipher((size_t)n);
        int rc =
            tc == OTA_CIPHER_NONE ? -EINVAL : ota_key_set(ar_transport(k), tc, tmp, (size_t)n, err);
        OPENSSL_cleanse(tmp, OTA_KEY_MAX);
        if (rc < 0) {
            return ota_fail(err, -EINVAL, OTA_ERR_KEY,
                            "[keys] transport_key_file %s: %d octets; 16 (3DES 2-key), 24 (3DES "
                            "3-key) or 32 (AES-256) needed",
                            c->transport_key_file, n);
        }
        k->have_transport = true;
        *created |= made ? GW_KEYS_CREATED_TRANSPORT : 0;
    }
    return meta_check(k, c->master_key_file != NULL, err);
}

static int open_p11(struct gw_keys *k, const struct gw_keys_conf *c, struct ota_err *err)
{
    if (!c->p11_module || !c->p11_module[0] || !c->p11_token || !c->p11_token[0] ||
        !c->p11_pin_file || !c->p11_pin_file[0]) {
        return ota_fail(err, -EINVAL, OTA_ERR_MISSING,
                        "[keys] backend = pkcs11 needs pkcs11_module, pkcs11_token and "
                        "pkcs11_pin_file");
    }
    char *pin = (char *)ar_scratch(k);
    int n = secret_read(c->p11_pin_file, "pkcs11_pin_file", (uint8_t *)pin, 256, err);
    if (n < 0) {
        return n;
    }
    while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r')) {
        n--;
    }
    pin[n] = '\0';
    struct p11_conf pc = {.module = c->p11_module, .token_label = c->p11_token, .pin = pin};
    int rc = p11_open(&pc, &k->p11, err);
    OPENSSL_cleanse(pin, 256);
    if (rc < 0) {
        return rc;
    }
    if (c->transport_label && c->transport_label[0]) {
        if (strlen(c->transport_label) > P11_LABEL_MAX) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "[keys] transport_key_label: too long");
        }
        snprintf(k->transport_label, sizeof(k->transport_label), "%s", c->transport_label);
        k->have_transport = true;
    }
    return meta_check(k, false, err);
}

int gw_keys_open_conf(const struct gw_keys_conf *c, struct gw_keys **out, unsigned *created,
                      struct ota_err *err)
{
    unsigned made = 0;
    if (!c || !c->db_path || !c->db_path[0] || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: db path missing");
    }
    if (c->backend != GW_KEYS_LOCAL && c->backend != GW_KEYS_PKCS11) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: unknown backend");
    }
    struct gw_keys *k = calloc(1, sizeof(*k));
    if (!k) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "key store: out of memory");
    }
    k->backend = c->backend;
    int rc = arena_new(k, err);
    if (rc == 0) {
        rc = ota_crypto_new(&k->cx, err);
    }
    if (rc < 0) {
        goto fail;
    }
    rc = sqlite3_open_v2(c->db_path, &k->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = db_fail(k, err, rc, c->db_path);
        goto fail;
    }
    /* sealed or not, the rows are nobody else's business (SQLite copies this to -wal / -shm) */
    (void)chmod(c->db_path, 0600);
    sqlite3_busy_timeout(k->db, GW_KEYS_BUSY_MS);
    rc = sqlite3_exec(k->db,
                      c->durable ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                 : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                      NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(k->db, schema, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        rc = db_fail(k, err, rc, "schema");
        goto fail;
    }
    for (int i = 0; i < ST__COUNT; i++) {
        rc = sqlite3_prepare_v3(k->db, st_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &k->st[i], NULL);
        if (rc != SQLITE_OK) {
            rc = db_fail(k, err, rc, "prepare");
            goto fail;
        }
    }
    rc = c->backend == GW_KEYS_LOCAL ? open_local(k, c, &made, err) : open_p11(k, c, err);
    if (rc < 0) {
        goto fail;
    }
    if (!k->locked) {
        made |= GW_KEYS_NOT_LOCKED;
    }
    if (created) {
        *created = made;
    }
    *out = k;
    return 0;
fail:
    gw_keys_close(k);
    return rc;
}

int gw_keys_open(const char *path, bool durable, struct gw_keys **out, struct ota_err *err)
{
    struct gw_keys_conf c = {.backend = GW_KEYS_LOCAL, .db_path = path, .durable = durable};
    return gw_keys_open_conf(&c, out, NULL, err);
}

void gw_keys_close(struct gw_keys *k)
{
    if (!k) {
        return;
    }
    for (int i = 0; i < ST__COUNT; i++) {
        sqlite3_finalize(k->st[i]);
    }
    sqlite3_close(k->db);
    p11_close(k->p11);
    ota_crypto_free(k->cx);
    if (k->arena) {
        OPENSSL_cleanse(k->arena, ARENA_LEN);
        if (k->locked) {
            munlock(k->arena, ARENA_LEN);
        }
        munmap(k->arena, ARENA_LEN);
    }
    free(k);
}

enum gw_keys_backend gw_keys_backend(const struct gw_keys *k)
{
    return k ? k->backend : GW_KEYS_LOCAL;
}

/* ---- validation --------------------------------------------------------------------- */

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

static const char *len_hint(enum ota_cipher c)
{
    return c == OTA_CIPHER_AES     ? "16, 24 or 32"
           : c == OTA_CIPHER_DES   ? "8"
           : c == OTA_CIPHER_3DES2 ? "16"
                                   : "24";
}

static int check_kcv(struct gw_keys *k, const struct ota_key *key, const uint8_t want[3],
                     const char *name, struct ota_err *err)
{
    uint8_t got[3];
    int rc = ota_crypto_kcv(k->cx, key, got, err);
    if (rc < 0) {
        return rc;
    }
    if (CRYPTO_memcmp(got, want, 3) != 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_BAD_CC, "%s: key check value mismatch", name);
    }
    return 0;
}

/* Everything but the keys: *c_c / *c_i get the ciphers kic / kid need. */
static int check_scp80_params(const char *seid, const struct gw_keys_scp80 *in,
                              enum ota_cipher *c_c, enum ota_cipher *c_i, struct ota_err *err)
{
    if (!api_seid_ok(seid)) {
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
    *c_c = alg_cipher(a_c);
    *c_i = alg_cipher(a_i);
    if (*c_c == OTA_CIPHER_NONE || a_c == OTA_SCP80_ALG_DES_ECB) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kic: algorithm %s not supported",
                        ota_scp80_alg_name(a_c));
    }
    if (*c_i == OTA_CIPHER_NONE) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kid: algorithm %s not supported",
                        ota_scp80_alg_name(a_i));
    }
    bool cc_ok =
        a_i == OTA_SCP80_ALG_AES_CMAC ? (in->cc_len == 4 || in->cc_len == 8) : in->cc_len == 8;
    if (!cc_ok) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "cc_len: %u not allowed for %s (%s)",
                        in->cc_len, ota_scp80_alg_name(a_i),
                        a_i == OTA_SCP80_ALG_AES_CMAC ? "4 or 8" : "8");
    }
    return 0;
}

static int check_key(const struct ota_key *key, enum ota_cipher want, const char *name,
                     struct ota_err *err)
{
    if (key->cipher != want || !key_len_ok(want, key->len)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "%s: %s needs %s octets", name,
                        ota_cipher_name(want), len_hint(want));
    }
    return 0;
}

static bool sd_key_ok(const struct ota_key *key)
{
    return key->cipher == OTA_CIPHER_3DES2 && key->len == 16;
}

static int check_sd_params(const char *seid, const uint8_t *aid, size_t aid_len, uint8_t kvn,
                           struct ota_err *err)
{
    if (!api_seid_ok(seid)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "seid: 1..64 printable characters");
    }
    if (!aid || aid_len < 5 || aid_len > GW_KEYS_AID_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "sd_aid: %zu octets, 5..16 allowed", aid_len);
    }
    if (kvn < 1 || kvn > 127) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kvn: %u not in 1..127", kvn);
    }
    return 0;
}

/* ---- PKCS#11 labels ------------------------------------------------------------------ */

/*
 * The token object of one key: "otagw/<kind>/<ref>/<kvn>/<role>@<seid>" when
 * it fits (operators can read it in the token's listing), else a SHA-256 of
 * that text (long SEIDs and AIDs).
 */
static void p11_label(char out[P11_LABEL_MAX + 1], const char *kind, const char *ref, uint8_t kvn,
                      const char *role, const char *seid)
{
    char full[256];
    int n =
        snprintf(full, sizeof(full), "otagw/%s/%s/%u/%s@%s", kind, ref, (unsigned)kvn, role, seid);
    /* room for p11.c's "#k1" companion suffix */
    if (n > 0 && (size_t)n + 4 <= P11_LABEL_MAX) {
        memcpy(out, full, (size_t)n + 1);
        return;
    }
    uint8_t md[32];
    char hex[65];
    unsigned int mdl = 0;
    EVP_Digest(full, strlen(full), md, &mdl, EVP_sha256(), NULL);
    api_hex_encode(md, 32, true, hex);
    snprintf(out, P11_LABEL_MAX + 1, "otagw/h/%s/%s", hex, role);
}

/* ---- writes ------------------------------------------------------------------------- */

static int tx(struct gw_keys *k, const char *sql, struct ota_err *err)
{
    int rc = sqlite3_exec(k->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_fail(k, err, rc, sql);
}

static int step_write(struct gw_keys *k, sqlite3_stmt *q, struct ota_err *err)
{
    int rc = sqlite3_step(q);
    st_done(q);
    return rc == SQLITE_DONE ? 0 : db_fail(k, err, rc, "write");
}

static int current_init(struct gw_keys *k, const char *seid, const char *kind, const char *ref,
                        uint8_t kvn, struct ota_err *err)
{
    sqlite3_stmt *q = k->st[ST_CUR_INIT];
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, ref, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 4, kvn);
    sqlite3_bind_int64(q, 5, now_ms());
    return step_write(k, q, err);
}

/* Row and first-version record in one transaction: both or neither. */
static int write_row(struct gw_keys *k, sqlite3_stmt *q, const char *seid, const char *kind,
                     const char *ref, uint8_t kvn, struct ota_err *err)
{
    int rc = tx(k, "BEGIN IMMEDIATE", err);
    if (rc < 0) {
        st_done(q);
        return rc;
    }
    rc = step_write(k, q, err);
    if (rc == 0) {
        rc = current_init(k, seid, kind, ref, kvn, err);
    }
    if (rc == 0) {
        rc = tx(k, "COMMIT", err);
    }
    if (rc < 0) {
        (void)sqlite3_exec(k->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

/* Row exists? 1, 0 or a negative errno. */
static int has_row(struct gw_keys *k, enum st which, const char *seid, const char *ref, uint8_t kvn,
                   struct ota_err *err)
{
    sqlite3_stmt *q = k->st[which];
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, ref, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 3, kvn);
    int rc = sqlite3_step(q);
    rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_fail(k, err, rc, "read");
    st_done(q);
    return rc;
}

static void p11_destroy_quiet(struct gw_keys *k, const char *label)
{
    struct ota_err e;
    (void)p11_destroy(k->p11, label, &e);
}

/*
 * The token refuses a label twice: a re-import of the same version would
 * need the old objects gone first, and a half-failed replacement would lose
 * the set the card holds. So the PKCS#11 backend refuses it (-EEXIST).
 */
static int p11_fresh(struct gw_keys *k, enum st has, const char *seid, const char *ref, uint8_t kvn,
                     struct ota_err *err)
{
    int rc = has_row(k, has, seid, ref, kvn, err);
    if (rc == 1) {
        return ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE,
                        "kvn %u: this key set version is already in the token", (unsigned)kvn);
    }
    return rc;
}

/*
 * Store a validated SCP80 set: clear keys in in (wrapped == NULL), or
 * (PKCS#11) wrapped ones to unwrap in the token.
 */
static int store_scp80(struct gw_keys *k, const char *seid, const struct gw_keys_scp80 *in,
                       const struct gw_keys_wrapped *w, struct ota_err *err)
{
    char tar[7], aad[AAD_MAX];
    char l_c[P11_LABEL_MAX + 1] = "", l_i[P11_LABEL_MAX + 1] = "";
    uint8_t blob[GCM_NONCE + 2 * OTA_KEY_MAX + GCM_TAG];
    size_t blob_len = 0;
    int rc = 0;
    tar_text(in->any_tar ? NULL : in->tar, tar);
    if (k->backend == GW_KEYS_LOCAL) {
        uint8_t *pt = ar_scratch(k);
        memcpy(pt, in->kic_key.bytes, in->kic_key.len);
        memcpy(pt + in->kic_key.len, in->kid_key.bytes, in->kid_key.len);
        size_t n = (size_t)in->kic_key.len + in->kid_key.len;
        aad_scp80(aad, seid, tar, in->kvn, in);
        rc = seal(k, aad, pt, n, blob, err);
        OPENSSL_cleanse(pt, n);
        blob_len = GCM_NONCE + n + GCM_TAG;
    } else {
        rc = p11_fresh(k, ST_HAS80, seid, tar, in->kvn, err);
        p11_label(l_c, "scp80", tar, in->kvn, "kic", seid);
        p11_label(l_i, "scp80", tar, in->kvn, "kid", seid);
        if (rc == 0 && !w) {
            rc = p11_import_clear_ex(k->p11, &in->kic_key, l_c, P11_U_KIC, err);
            if (rc == 0) {
                rc = p11_import_clear_ex(k->p11, &in->kid_key, l_i, P11_U_KID, err);
                if (rc < 0) {
                    p11_destroy_quiet(k, l_c);
                }
            }
        } else if (rc == 0) {
            for (int i = 0; rc == 0 && i < 2; i++) {
                const struct gw_keys_wrapped *x = &w[i];
                const char *l = i == 0 ? l_c : l_i;
                unsigned use = i == 0 ? P11_U_KIC : P11_U_KID;
                rc = x->wrap == GW_KEYS_WRAP_AES_KW
                         ? p11_import_wrapped_kw_ex(k->p11, k->transport_label, x->cipher, x->data,
                                                    x->len, x->kcv, l, use, err)
                         : p11_import_wrapped_ex(k->p11, k->transport_label, x->cipher, x->data,
                                                 x->len, x->kcv, l, use, err);
                if (rc < 0 && i == 1) {
                    p11_destroy_quiet(k, l_c);
                }
            }
        }
    }
    if (rc < 0) {
        return rc;
    }
    sqlite3_stmt *q = k->st[ST_PUT80];
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, tar, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 3, in->kvn);
    sqlite3_bind_blob(q, 4, in->spi, 2, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 5, in->kic);
    sqlite3_bind_int(q, 6, in->kid);
    sqlite3_bind_int(q, 7, in->cc_len);
    sqlite3_bind_int(q, 8, (int)in->kic_key.cipher);
    sqlite3_bind_int(q, 9, in->kic_key.len);
    sqlite3_bind_int(q, 10, (int)in->kid_key.cipher);
    sqlite3_bind_int(q, 11, in->kid_key.len);
    if (blob_len) {
        sqlite3_bind_blob(q, 12, blob, (int)blob_len, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(q, 12);
        sqlite3_bind_text(q, 13, l_c, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 14, l_i, -1, SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64(q, 15, now_ms());
    rc = write_row(k, q, seid, "scp80", tar, in->kvn, err);
    if (rc < 0 && k->backend == GW_KEYS_PKCS11) {
        p11_destroy_quiet(k, l_c);
        p11_destroy_quiet(k, l_i);
    }
    return rc;
}

int gw_keys_put_scp80(struct gw_keys *k, const char *seid, const struct gw_keys_scp80 *in,
                      const uint8_t *kcv, struct ota_err *err)
{
    enum ota_cipher c_c = OTA_CIPHER_NONE, c_i = OTA_CIPHER_NONE;
    if (!k) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL");
    }
    int rc = check_scp80_params(seid, in, &c_c, &c_i, err);
    if (rc == 0) {
        rc = check_key(&in->kic_key, c_c, "kic_key", err);
    }
    if (rc == 0) {
        rc = check_key(&in->kid_key, c_i, "kid_key", err);
    }
    if (rc == 0 && kcv) {
        rc = check_kcv(k, &in->kic_key, kcv, "kcv (kic_key)", err);
        if (rc == 0) {
            rc = check_kcv(k, &in->kid_key, kcv + 3, "kcv (kid_key)", err);
        }
    }
    return rc < 0 ? rc : store_scp80(k, seid, in, NULL, err);
}

/* ---- wrapped import ----------------------------------------------------------------- */

/* The clear length of a wrapped key, 0 when the wrapping cannot hold one. */
static size_t wrapped_key_len(const struct gw_keys_wrapped *w)
{
    size_t n = w->wrap == GW_KEYS_WRAP_AES_KW ? (w->len >= 16 ? w->len - 8 : 0) : w->len;
    return w->key_len && w->key_len != n ? 0 : n;
}

/* AES key unwrap (RFC 3394) under the AES transport key into out. */
static int aes_kw_unwrap(const struct ota_key *tk, const uint8_t *in, size_t len, uint8_t *out,
                         struct ota_err *err)
{
    const EVP_CIPHER *ci = tk->len == 16   ? EVP_aes_128_wrap()
                           : tk->len == 24 ? EVP_aes_192_wrap()
                                           : EVP_aes_256_wrap();
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int a = 0, b = 0, rc = -EINVAL;
    if (!c) {
        return ota_fail(err, -ENOMEM, OTA_ERR_CRYPTO, "key store: no cipher context");
    }
    EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_DecryptInit_ex(c, ci, NULL, tk->bytes, NULL) == 1 &&
        EVP_DecryptUpdate(c, out, &a, in, (int)len) == 1 &&
        EVP_DecryptFinal_ex(c, out + a, &b) == 1 && (size_t)(a + b) == len - 8) {
        rc = 0;
    }
    EVP_CIPHER_CTX_free(c);
    if (rc < 0) {
        /* the integrity check of RFC 3394 failed: another transport key, or a damaged value */
        return ota_fail(err, -EINVAL, OTA_ERR_BAD_CC, "aes key wrap: integrity check failed");
    }
    return 0;
}

/*
 * Unwrap w under the local transport key into *out (cipher want) and check
 * its KCV. The clear value passes only through the locked arena.
 */
static int unwrap_local(struct gw_keys *k, const struct gw_keys_wrapped *w, enum ota_cipher want,
                        const char *name, struct ota_key *out, struct ota_err *err)
{
    const struct ota_key *tk = ar_transport(k);
    size_t n = wrapped_key_len(w);
    uint8_t *pt = ar_scratch(k) + 2 * OTA_KEY_MAX;
    int rc;
    if (!key_len_ok(want, n)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "%s: a wrapped %s key of %s octets expected",
                        name, ota_cipher_name(want), len_hint(want));
    }
    if (w->wrap == GW_KEYS_WRAP_AES_KW) {
        if (tk->cipher != OTA_CIPHER_AES) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                            "%s: aes-kw needs an AES transport key (this one is %s)", name,
                            ota_cipher_name(tk->cipher));
        }
        rc = aes_kw_unwrap(tk, w->data, w->len, pt, err);
    } else {
        size_t bl = ota_cipher_block_len(tk->cipher);
        if (n % bl) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                            "%s: a %zu-octet key cannot travel in %s-ECB (use aes-kw or a 3DES "
                            "transport key)",
                            name, n, ota_cipher_name(tk->cipher));
        }
        rc = ota_crypto_cipher(k->cx, tk, OTA_MODE_ECB, false, NULL, w->data, n, pt, err);
    }
    if (rc == 0) {
        rc = ota_key_set(out, want, pt, n, err);
    }
    OPENSSL_cleanse(pt, OTA_KEY_MAX);
    if (rc == 0) {
        rc = check_kcv(k, out, w->kcv, name, err);
        if (rc < 0) {
            ota_key_wipe(out);
        }
    }
    if (rc < 0 && err->code == OTA_ERR_BAD_CC) {
        return ota_fail(err, -EINVAL, OTA_ERR_BAD_CC, "%s: key check value mismatch", name);
    }
    return rc;
}

static int need_transport(struct gw_keys *k, struct ota_err *err)
{
    if (!k->have_transport) {
        return ota_fail(err, -ENOKEY, OTA_ERR_KEY,
                        "no transport key configured ([keys] transport_key_file / "
                        "transport_key_label)");
    }
    return 0;
}

/* PKCS#11: what p11 needs to know of a wrapped key before the token unwraps it. */
static int wrapped_for_p11(const struct gw_keys_wrapped *w, enum ota_cipher want, const char *name,
                           struct gw_keys_wrapped *out, struct ota_err *err)
{
    size_t n = wrapped_key_len(w);
    if (!key_len_ok(want, n)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "%s: a wrapped %s key of %s octets expected",
                        name, ota_cipher_name(want), len_hint(want));
    }
    *out = *w;
    out->cipher = want;
    out->key_len = (uint8_t)n;
    return 0;
}

int gw_keys_import_scp80(struct gw_keys *k, const char *seid, const struct gw_keys_scp80 *in,
                         const struct gw_keys_wrapped *kic, const struct gw_keys_wrapped *kid,
                         struct ota_err *err)
{
    enum ota_cipher c_c = OTA_CIPHER_NONE, c_i = OTA_CIPHER_NONE;
    if (!k || !kic || !kid) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL");
    }
    int rc = check_scp80_params(seid, in, &c_c, &c_i, err);
    if (rc == 0) {
        rc = need_transport(k, err);
    }
    if (rc < 0) {
        return rc;
    }
    /* the set's parameters with the unwrapped keys, in the locked arena */
    struct gw_keys_scp80 *s = (struct gw_keys_scp80 *)(void *)(ar_scratch(k) + 1024);
    memcpy(s, in, sizeof(*s));
    memset(&s->kic_key, 0, sizeof(s->kic_key));
    memset(&s->kid_key, 0, sizeof(s->kid_key));
    if (k->backend == GW_KEYS_LOCAL) {
        rc = unwrap_local(k, kic, c_c, "kic_key", &s->kic_key, err);
        if (rc == 0) {
            rc = unwrap_local(k, kid, c_i, "kid_key", &s->kid_key, err);
        }
        if (rc == 0) {
            rc = store_scp80(k, seid, s, NULL, err);
        }
    } else {
        struct gw_keys_wrapped w[2];
        /* a failed kic check leaves w[1] unwritten, yet its key_len is read below */
        memset(w, 0, sizeof(w));
        rc = wrapped_for_p11(kic, c_c, "kic_key", &w[0], err);
        if (rc == 0) {
            rc = wrapped_for_p11(kid, c_i, "kid_key", &w[1], err);
        }
        /* lengths recorded with the row; the token holds the values */
        s->kic_key.cipher = c_c;
        s->kic_key.len = w[0].key_len;
        s->kid_key.cipher = c_i;
        s->kid_key.len = w[1].key_len;
        if (rc == 0) {
            rc = store_scp80(k, seid, s, w, err);
        }
    }
    gw_keys_scp80_wipe(s);
    OPENSSL_cleanse(s, sizeof(*s));
    return rc;
}

/* ---- SD sets ------------------------------------------------------------------------ */

static int store_sd(struct gw_keys *k, const char *seid, const struct gw_keys_sd *in,
                    const struct gw_keys_wrapped *w, struct ota_err *err)
{
    static const char *const role[3] = {"enc", "mac", "dek"};
    char aid[2 * GW_KEYS_AID_MAX + 1], aad[AAD_MAX];
    char l[3][P11_LABEL_MAX + 1];
    uint8_t blob[GCM_NONCE + 48 + GCM_TAG];
    size_t blob_len = 0;
    int rc = 0;
    api_hex_encode(in->aid, in->aid_len, true, aid);
    if (k->backend == GW_KEYS_LOCAL) {
        uint8_t *pt = ar_scratch(k);
        memcpy(pt, in->enc.bytes, 16);
        memcpy(pt + 16, in->mac.bytes, 16);
        memcpy(pt + 32, in->dek.bytes, 16);
        aad_sd(aad, seid, aid, in->kvn);
        rc = seal(k, aad, pt, 48, blob, err);
        OPENSSL_cleanse(pt, 48);
        blob_len = sizeof(blob);
    } else {
        const struct ota_key *clear[3] = {&in->enc, &in->mac, &in->dek};
        rc = p11_fresh(k, ST_HASSD, seid, aid, in->kvn, err);
        int i = 0;
        for (; rc == 0 && i < 3; i++) {
            p11_label(l[i], "sd", aid, in->kvn, role[i], seid);
            /* PUT KEY sends these later wrapped under a DEK: the token must let them out so.
             * Only the DEK wraps, and it never decrypts (p11.h P11_U_DEK). */
            unsigned fl = P11_F_WRAPPABLE | (i == 2 ? P11_U_DEK : P11_U_SD);
            if (!w) {
                rc = p11_import_clear_ex(k->p11, clear[i], l[i], fl, err);
            } else if (w[i].wrap == GW_KEYS_WRAP_AES_KW) {
                rc = p11_import_wrapped_kw_ex(k->p11, k->transport_label, OTA_CIPHER_3DES2,
                                              w[i].data, w[i].len, w[i].kcv, l[i], fl, err);
            } else {
                rc = p11_import_wrapped_ex(k->p11, k->transport_label, OTA_CIPHER_3DES2, w[i].data,
                                           w[i].len, w[i].kcv, l[i], fl, err);
            }
        }
        if (rc < 0) {
            for (int j = 0; j < i - 1; j++) {
                p11_destroy_quiet(k, l[j]);
            }
            return rc;
        }
    }
    if (rc < 0) {
        return rc;
    }
    sqlite3_stmt *q = k->st[ST_PUTSD];
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, aid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 3, in->kvn);
    if (blob_len) {
        sqlite3_bind_blob(q, 4, blob, (int)blob_len, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(q, 4);
        for (int i = 0; i < 3; i++) {
            sqlite3_bind_text(q, 5 + i, l[i], -1, SQLITE_TRANSIENT);
        }
    }
    sqlite3_bind_int64(q, 8, now_ms());
    rc = write_row(k, q, seid, "sd", aid, in->kvn, err);
    if (rc < 0 && k->backend == GW_KEYS_PKCS11) {
        for (int i = 0; i < 3; i++) {
            p11_destroy_quiet(k, l[i]);
        }
    }
    return rc;
}

int gw_keys_put_sd(struct gw_keys *k, const char *seid, const struct gw_keys_sd *in,
                   struct ota_err *err)
{
    if (!k || !in) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL argument");
    }
    int rc = check_sd_params(seid, in->aid, in->aid_len, in->kvn, err);
    if (rc < 0) {
        return rc;
    }
    if (!sd_key_ok(&in->enc) || !sd_key_ok(&in->mac) || !sd_key_ok(&in->dek)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "enc/mac/dek: 3DES-2key, 16 octets each");
    }
    return store_sd(k, seid, in, NULL, err);
}

int gw_keys_import_sd(struct gw_keys *k, const char *seid, const uint8_t *aid, size_t aid_len,
                      uint8_t kvn, const struct gw_keys_wrapped w[3], struct ota_err *err)
{
    static const char *const names[3] = {"enc", "mac", "dek"};
    if (!k || !w) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL argument");
    }
    int rc = check_sd_params(seid, aid, aid_len, kvn, err);
    if (rc == 0) {
        rc = need_transport(k, err);
    }
    if (rc < 0) {
        return rc;
    }
    struct gw_keys_sd *s = (struct gw_keys_sd *)(void *)(ar_scratch(k) + 1024);
    memset(s, 0, sizeof(*s));
    memcpy(s->aid, aid, aid_len);
    s->aid_len = aid_len;
    s->kvn = kvn;
    if (k->backend == GW_KEYS_LOCAL) {
        struct ota_key *dst[3] = {&s->enc, &s->mac, &s->dek};
        for (int i = 0; rc == 0 && i < 3; i++) {
            rc = unwrap_local(k, &w[i], OTA_CIPHER_3DES2, names[i], dst[i], err);
        }
        if (rc == 0) {
            rc = store_sd(k, seid, s, NULL, err);
        }
    } else {
        struct gw_keys_wrapped x[3];
        for (int i = 0; rc == 0 && i < 3; i++) {
            rc = wrapped_for_p11(&w[i], OTA_CIPHER_3DES2, names[i], &x[i], err);
        }
        if (rc == 0) {
            rc = store_sd(k, seid, s, x, err);
        }
    }
    gw_keys_sd_wipe(s);
    OPENSSL_cleanse(s, sizeof(*s));
    return rc;
}

/* ---- current versions --------------------------------------------------------------- */

static const char *kind_text(enum gw_keys_kind kind)
{
    return kind == GW_KEYS_KIND_SD ? "sd" : "scp80";
}

static int ref_text(enum gw_keys_kind kind, const uint8_t *ref, size_t ref_len,
                    char out[2 * GW_KEYS_AID_MAX + 1], struct ota_err *err)
{
    if (kind == GW_KEYS_KIND_SCP80) {
        if (ref && ref_len != 3) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG, "tar: 3 octets");
        }
        tar_text(ref, out);
        return 0;
    }
    if (!ref || ref_len < 1 || ref_len > GW_KEYS_AID_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "sd_aid: 1..16 octets");
    }
    api_hex_encode(ref, ref_len, true, out);
    return 0;
}

/* The current KVN by text ref: 0 and *kvn, -ENOENT, -EIO. */
static int cur_get(struct gw_keys *k, const char *seid, const char *kind, const char *ref,
                   uint8_t *kvn, struct ota_err *err)
{
    sqlite3_stmt *q = k->st[ST_CUR_GET];
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, ref, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *kvn = (uint8_t)sqlite3_column_int(q, 0);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = ota_fail(err, -ENOENT, OTA_ERR_KEY, "no current %s key version for SE %s", kind, seid);
    } else {
        rc = db_fail(k, err, rc, "read");
    }
    st_done(q);
    return rc;
}

/* The version to use when none is asked: the current one, else (older stores) the highest. */
static int pick_kvn(struct gw_keys *k, const char *seid, const char *kind, const char *ref,
                    enum st max, uint8_t *kvn, struct ota_err *err)
{
    int rc = cur_get(k, seid, kind, ref, kvn, err);
    if (rc != -ENOENT) {
        return rc;
    }
    sqlite3_stmt *q = k->st[max];
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, ref, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
        *kvn = (uint8_t)sqlite3_column_int(q, 0);
        rc = 0;
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        rc = -ENOENT;
    } else {
        rc = db_fail(k, err, rc, "read");
    }
    st_done(q);
    return rc;
}

int gw_keys_current(struct gw_keys *k, const char *seid, enum gw_keys_kind kind, const uint8_t *ref,
                    size_t ref_len, uint8_t *kvn, struct ota_err *err)
{
    char r[2 * GW_KEYS_AID_MAX + 1];
    if (!k || !seid || !kvn) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL argument");
    }
    int rc = ref_text(kind, ref, ref_len, r, err);
    return rc < 0 ? rc : cur_get(k, seid, kind_text(kind), r, kvn, err);
}

int gw_keys_set_current(struct gw_keys *k, const char *seid, enum gw_keys_kind kind,
                        const uint8_t *ref, size_t ref_len, uint8_t kvn, struct ota_err *err)
{
    char r[2 * GW_KEYS_AID_MAX + 1];
    if (!k || !api_seid_ok(seid)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: bad argument");
    }
    int rc = ref_text(kind, ref, ref_len, r, err);
    if (rc < 0) {
        return rc;
    }
    rc = has_row(k, kind == GW_KEYS_KIND_SD ? ST_HASSD : ST_HAS80, seid, r, kvn, err);
    if (rc == 0) {
        return ota_fail(err, -ENOENT, OTA_ERR_KEY, "SE %s has no %s key set %s version %u", seid,
                        kind_text(kind), r, (unsigned)kvn);
    }
    if (rc < 0) {
        return rc;
    }
    sqlite3_stmt *q = k->st[ST_CUR_PUT];
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, kind_text(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, r, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 4, kvn);
    sqlite3_bind_int64(q, 5, now_ms());
    return step_write(k, q, err);
}

/* ---- lookups ------------------------------------------------------------------------ */

static int col_label_key(struct gw_keys *k, sqlite3_stmt *q, int col, struct ota_key *out,
                         struct ota_err *err)
{
    const char *l = (const char *)sqlite3_column_text(q, col);
    if (!l) {
        return ota_fail(err, -EIO, OTA_ERR_STATE, "key store: a PKCS#11 row without label");
    }
    return p11_key(k->p11, l, out, err);
}

/* One SCP80 row (seid, tar text, kvn) into *out. */
static int read_scp80(struct gw_keys *k, const char *seid, const char *tar, uint8_t kvn,
                      struct eng_scp80_keys *out, struct ota_err *err)
{
    sqlite3_stmt *q = k->st[ST_GET80];
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, tar, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 3, kvn);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        st_done(q);
        return ota_fail(err, -ENOENT, OTA_ERR_KEY, "no SCP80 keys for SE %s", seid);
    }
    if (rc != SQLITE_ROW) {
        rc = db_fail(k, err, rc, "read");
        st_done(q);
        return rc;
    }
    struct gw_keys_scp80 meta;
    struct eng_scp80_keys r;
    memset(&meta, 0, sizeof(meta));
    memset(&r, 0, sizeof(r));
    if (sqlite3_column_bytes(q, 0) == 2) {
        memcpy(r.spi, sqlite3_column_blob(q, 0), 2);
    }
    r.kic = (uint8_t)sqlite3_column_int(q, 1);
    r.kid = (uint8_t)sqlite3_column_int(q, 2);
    r.cc_len = (uint8_t)sqlite3_column_int(q, 3);
    enum ota_cipher c_c = (enum ota_cipher)sqlite3_column_int(q, 4);
    size_t l_c = (size_t)sqlite3_column_int(q, 5);
    enum ota_cipher c_i = (enum ota_cipher)sqlite3_column_int(q, 6);
    size_t l_i = (size_t)sqlite3_column_int(q, 7);
    if (k->backend == GW_KEYS_PKCS11) {
        rc = col_label_key(k, q, 9, &r.kic_key, err);
        if (rc == 0) {
            rc = col_label_key(k, q, 10, &r.kid_key, err);
        }
    } else if (!key_len_ok(c_c, l_c) || !key_len_ok(c_i, l_i)) {
        rc = ota_fail(err, -EIO, OTA_ERR_STATE, "key store: a row with bad key lengths");
    } else {
        char aad[AAD_MAX];
        memcpy(meta.spi, r.spi, 2);
        meta.kic = r.kic;
        meta.kid = r.kid;
        meta.cc_len = r.cc_len;
        meta.kic_key.cipher = c_c;
        meta.kic_key.len = (uint8_t)l_c;
        meta.kid_key.cipher = c_i;
        meta.kid_key.len = (uint8_t)l_i;
        aad_scp80(aad, seid, tar, kvn, &meta);
        uint8_t *pt = ar_scratch(k);
        size_t n = 0;
        rc = unseal(k, aad, sqlite3_column_blob(q, 8), (size_t)sqlite3_column_bytes(q, 8), pt,
                    2 * OTA_KEY_MAX, &n, err);
        if (rc == 0 && n != l_c + l_i) {
            rc = ota_fail(err, -EBADMSG, OTA_ERR_KEY, "key store: record length mismatch");
        }
        if (rc == 0) {
            rc = ota_key_set(&r.kic_key, c_c, pt, l_c, err);
        }
        if (rc == 0) {
            rc = ota_key_set(&r.kid_key, c_i, pt + l_c, l_i, err);
        }
        OPENSSL_cleanse(pt, 2 * OTA_KEY_MAX);
    }
    st_done(q);
    if (rc == 0) {
        *out = r;
    }
    OPENSSL_cleanse(&r, sizeof(r));
    return rc;
}

int gw_keys_get_scp80(struct gw_keys *k, const char *seid, const uint8_t tar[3],
                      struct eng_scp80_keys *out, struct ota_err *err)
{
    if (!k || !seid || !tar || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL argument");
    }
    char t[7];
    uint8_t kvn = 0;
    tar_text(tar, t);
    int rc = pick_kvn(k, seid, "scp80", t, ST_MAX80, &kvn, err);
    if (rc == -ENOENT) {
        snprintf(t, sizeof(t), "*");
        rc = pick_kvn(k, seid, "scp80", t, ST_MAX80, &kvn, err);
    }
    if (rc == -ENOENT) {
        return ota_fail(err, -ENOENT, OTA_ERR_KEY, "no SCP80 keys for SE %s", seid);
    }
    return rc < 0 ? rc : read_scp80(k, seid, t, kvn, out, err);
}

int gw_keys_get_sd(struct gw_keys *k, const char *seid, const uint8_t *aid, size_t aid_len,
                   uint8_t kvn, struct gw_keys_sd *out, struct ota_err *err)
{
    if (!k || !seid || !aid || !out || aid_len < 1 || aid_len > GW_KEYS_AID_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: bad argument");
    }
    char a[2 * GW_KEYS_AID_MAX + 1];
    api_hex_encode(aid, aid_len, true, a);
    int rc = kvn ? 0 : pick_kvn(k, seid, "sd", a, ST_MAXSD, &kvn, err);
    if (rc == -ENOENT) {
        return ota_fail(err, -ENOENT, OTA_ERR_KEY, "no SD keys for SE %s", seid);
    }
    if (rc < 0) {
        return rc;
    }
    sqlite3_stmt *q = k->st[ST_GETSD];
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, a, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 3, kvn);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        st_done(q);
        return ota_fail(err, -ENOENT, OTA_ERR_KEY, "no SD keys for SE %s version %u", seid,
                        (unsigned)kvn);
    }
    if (rc != SQLITE_ROW) {
        rc = db_fail(k, err, rc, "read");
        st_done(q);
        return rc;
    }
    struct gw_keys_sd r;
    memset(&r, 0, sizeof(r));
    memcpy(r.aid, aid, aid_len);
    r.aid_len = aid_len;
    r.kvn = kvn;
    if (k->backend == GW_KEYS_PKCS11) {
        rc = col_label_key(k, q, 1, &r.enc, err);
        if (rc == 0) {
            rc = col_label_key(k, q, 2, &r.mac, err);
        }
        if (rc == 0) {
            rc = col_label_key(k, q, 3, &r.dek, err);
        }
    } else {
        char aad[AAD_MAX];
        uint8_t *pt = ar_scratch(k);
        size_t n = 0;
        aad_sd(aad, seid, a, kvn);
        rc = unseal(k, aad, sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0), pt, 48,
                    &n, err);
        if (rc == 0 && n != 48) {
            rc = ota_fail(err, -EBADMSG, OTA_ERR_KEY, "key store: record length mismatch");
        }
        if (rc == 0) {
            rc = ota_key_set(&r.enc, OTA_CIPHER_3DES2, pt, 16, err);
        }
        if (rc == 0) {
            rc = ota_key_set(&r.mac, OTA_CIPHER_3DES2, pt + 16, 16, err);
        }
        if (rc == 0) {
            rc = ota_key_set(&r.dek, OTA_CIPHER_3DES2, pt + 32, 16, err);
        }
        OPENSSL_cleanse(pt, 48);
    }
    st_done(q);
    if (rc == 0) {
        *out = r;
    }
    OPENSSL_cleanse(&r, sizeof(r));
    return rc;
}

/* ---- key-update campaign ------------------------------------------------------------ */

int gw_keys_plat_material(void *arg, const uint8_t *sd_aid, size_t sd_aid_len, uint8_t old_kvn,
                          uint8_t new_kvn, struct plat_key_material *km, struct ota_err *err)
{
    struct gw_keys_plat_arg *a = arg;
    if (!a || !a->k || !a->seid || !km) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key material: NULL argument");
    }
    uint8_t cur = 0;
    char r[2 * GW_KEYS_AID_MAX + 1];
    int rc = ref_text(GW_KEYS_KIND_SD, sd_aid, sd_aid_len, r, err);
    if (rc == 0) {
        rc = cur_get(a->k, a->seid, "sd", r, &cur, err);
    }
    if (rc == -ENOENT && old_kvn) {
        cur = old_kvn; /* no record (an older store): trust the task */
        rc = 0;
    }
    if (rc < 0) {
        return rc;
    }
    if (old_kvn && old_kvn != cur) {
        return ota_fail(err, -ESTALE, OTA_ERR_STATE,
                        "SE %s holds key version %u of that SD, the task says old_kvn %u", a->seid,
                        (unsigned)cur, (unsigned)old_kvn);
    }
    if (new_kvn == cur) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "new_kvn %u is the version the SE holds",
                        (unsigned)new_kvn);
    }
    struct gw_keys_sd *nw = (struct gw_keys_sd *)(void *)(ar_scratch(a->k) + 1024);
    struct gw_keys_sd *old = nw + 1;
    memset(nw, 0, 2 * sizeof(*nw));
    rc = gw_keys_get_sd(a->k, a->seid, sd_aid, sd_aid_len, new_kvn, nw, err);
    if (rc == 0) {
        rc = gw_keys_get_sd(a->k, a->seid, sd_aid, sd_aid_len, cur, old, err);
    }
    if (rc == 0) {
        ota_key_move(&km->keys[0], &nw->enc);
        ota_key_move(&km->keys[1], &nw->mac);
        ota_key_move(&km->keys[2], &nw->dek);
        km->n_keys = 3;
        ota_key_move(&km->dek, &old->dek);
    }
    gw_keys_sd_wipe(nw);
    gw_keys_sd_wipe(old);
    OPENSSL_cleanse(nw, 2 * sizeof(*nw));
    return rc;
}

/* ---- platform KEKs (spec 5.8.4.6.3) -------------------------------------------------- */

/* Names go into token labels, audit targets and URLs: a plain character set keeps them so. */
static bool kek_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > GW_KEYS_KEK_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool kek_cipher_ok(enum ota_cipher c)
{
    return c == OTA_CIPHER_3DES2 || c == OTA_CIPHER_3DES3 || c == OTA_CIPHER_AES;
}

/* The owner is bound too: editing the owner column must not hand a KEK to another platform. */
static void aad_kek(char out[AAD_MAX], const char *name, uint8_t kvn, const char *owner,
                    enum ota_cipher c, size_t len)
{
    snprintf(out, AAD_MAX, "otagw-ks1|kek|%zu:%s|%u|%zu:%s|%d/%zu", strlen(name), name,
             (unsigned)kvn, strlen(owner), owner, (int)c, len);
}

static int check_kek(const struct gw_keys_kek *in, struct ota_err *err)
{
    if (!in || !kek_name_ok(in->name)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kek name: 1..64 of A-Z a-z 0-9 . _ -");
    }
    if (!api_seid_ok(in->owner)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kek owner: 1..64 printable characters");
    }
    if (in->kvn < 1 || in->kvn > 127) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kvn: %u not in 1..127", (unsigned)in->kvn);
    }
    return 0;
}

/* KEK (name, kvn) exists? 1, 0 or a negative errno. */
static int has_kek(struct gw_keys *k, const char *name, uint8_t kvn, struct ota_err *err)
{
    sqlite3_stmt *q = k->st[ST_HASKEK];
    sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 2, kvn);
    int rc = sqlite3_step(q);
    rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_fail(k, err, rc, "read");
    st_done(q);
    return rc;
}

/*
 * Store a validated KEK: key holds cipher and length (and, local backend,
 * the clear bytes); with w (pkcs11 only) the token unwraps it itself.
 */
static int store_kek(struct gw_keys *k, const struct gw_keys_kek *in, const struct ota_key *key,
                     const struct gw_keys_wrapped *w, struct ota_err *err)
{
    char aad[AAD_MAX], label[P11_LABEL_MAX + 1] = "";
    uint8_t blob[GCM_NONCE + OTA_KEY_MAX + GCM_TAG];
    size_t blob_len = 0;
    int rc = 0;
    if (k->backend == GW_KEYS_LOCAL) {
        aad_kek(aad, in->name, in->kvn, in->owner, key->cipher, key->len);
        rc = seal(k, aad, key->bytes, key->len, blob, err);
        blob_len = GCM_NONCE + (size_t)key->len + GCM_TAG;
    } else {
        rc = has_kek(k, in->name, in->kvn, err);
        if (rc == 1) {
            rc = ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE,
                          "kvn %u: this KEK version is already in the token", (unsigned)in->kvn);
        }
        p11_label(label, "kek", in->name, in->kvn, "kek", in->owner);
        if (rc == 0 && !w) {
            rc = p11_import_clear_ex(k->p11, key, label, P11_U_KEK, err);
        } else if (rc == 0) {
            rc = w->wrap == GW_KEYS_WRAP_AES_KW
                     ? p11_import_wrapped_kw_ex(k->p11, k->transport_label, w->cipher, w->data,
                                                w->len, w->kcv, label, P11_U_KEK, err)
                     : p11_import_wrapped_ex(k->p11, k->transport_label, w->cipher, w->data, w->len,
                                             w->kcv, label, P11_U_KEK, err);
        }
    }
    if (rc < 0) {
        return rc;
    }
    sqlite3_stmt *q = k->st[ST_PUTKEK];
    sqlite3_bind_text(q, 1, in->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 2, in->kvn);
    sqlite3_bind_text(q, 3, in->owner, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 4, (int)key->cipher);
    sqlite3_bind_int(q, 5, key->len);
    if (blob_len) {
        sqlite3_bind_blob(q, 6, blob, (int)blob_len, SQLITE_TRANSIENT);
        sqlite3_bind_null(q, 7);
    } else {
        sqlite3_bind_null(q, 6);
        sqlite3_bind_text(q, 7, label, -1, SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64(q, 8, now_ms());
    rc = step_write(k, q, err);
    if (rc < 0 && k->backend == GW_KEYS_PKCS11) {
        p11_destroy_quiet(k, label);
    }
    return rc;
}

int gw_keys_put_kek(struct gw_keys *k, const struct gw_keys_kek *in, const uint8_t *kcv,
                    struct ota_err *err)
{
    if (!k) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL");
    }
    int rc = check_kek(in, err);
    if (rc < 0) {
        return rc;
    }
    if (!kek_cipher_ok(in->key.cipher) || !key_len_ok(in->key.cipher, in->key.len) ||
        ota_key_is_ext(&in->key)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "kek: a 3DES 2/3-key or AES key");
    }
    if (kcv) {
        rc = check_kcv(k, &in->key, kcv, "kcv", err);
    }
    return rc < 0 ? rc : store_kek(k, in, &in->key, NULL, err);
}

int gw_keys_import_kek(struct gw_keys *k, const struct gw_keys_kek *in,
                       const struct gw_keys_wrapped *w, struct ota_err *err)
{
    if (!k || !w) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL");
    }
    int rc = check_kek(in, err);
    if (rc == 0 && !kek_cipher_ok(w->cipher)) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_KEY, "kek: a 3DES 2/3-key or AES key");
    }
    if (rc == 0) {
        rc = need_transport(k, err);
    }
    if (rc < 0) {
        return rc;
    }
    struct ota_key *key = (struct ota_key *)(void *)(ar_scratch(k) + 1024);
    memset(key, 0, sizeof(*key));
    if (k->backend == GW_KEYS_LOCAL) {
        rc = unwrap_local(k, w, w->cipher, "kek", key, err);
        if (rc == 0) {
            rc = store_kek(k, in, key, NULL, err);
        }
    } else {
        struct gw_keys_wrapped x;
        rc = wrapped_for_p11(w, w->cipher, "kek", &x, err);
        key->cipher = x.cipher;
        key->len = x.key_len;
        if (rc == 0) {
            rc = store_kek(k, in, key, &x, err);
        }
    }
    ota_key_wipe(key);
    OPENSSL_cleanse(key, sizeof(*key));
    return rc;
}

/* The KEK row (name, kvn) into *kek (the caller wipes it), checking its owner. */
static int read_kek(struct gw_keys *k, const char *name, uint8_t kvn, const char *owner,
                    struct ota_key *kek, struct ota_err *err)
{
    sqlite3_stmt *q = k->st[ST_GETKEK];
    sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 2, kvn);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        st_done(q);
        return ota_fail(err, -ENOENT, OTA_ERR_KEY, "no KEK %s version %u", name, (unsigned)kvn);
    }
    if (rc != SQLITE_ROW) {
        rc = db_fail(k, err, rc, "read");
        st_done(q);
        return rc;
    }
    const char *row_owner = (const char *)sqlite3_column_text(q, 0);
    enum ota_cipher c = (enum ota_cipher)sqlite3_column_int(q, 1);
    size_t len = (size_t)sqlite3_column_int(q, 2);
    if (!row_owner || (owner && strcmp(row_owner, owner) != 0)) {
        /* a KEK is shared with one business platform: another one must not decrypt with it */
        rc = ota_fail(err, -EACCES, OTA_ERR_KEY, "KEK %s: not usable by platform %s", name,
                      owner ? owner : "?");
    } else if (k->backend == GW_KEYS_PKCS11) {
        rc = col_label_key(k, q, 4, kek, err);
    } else if (!kek_cipher_ok(c) || !key_len_ok(c, len)) {
        rc = ota_fail(err, -EIO, OTA_ERR_STATE, "key store: a KEK row with a bad key length");
    } else {
        char aad[AAD_MAX];
        uint8_t *pt = ar_scratch(k);
        size_t n = 0;
        aad_kek(aad, name, kvn, row_owner, c, len);
        rc = unseal(k, aad, sqlite3_column_blob(q, 3), (size_t)sqlite3_column_bytes(q, 3), pt,
                    OTA_KEY_MAX, &n, err);
        if (rc == 0 && n != len) {
            rc = ota_fail(err, -EBADMSG, OTA_ERR_KEY, "key store: record length mismatch");
        }
        if (rc == 0) {
            rc = ota_key_set(kek, c, pt, len, err);
        }
        OPENSSL_cleanse(pt, OTA_KEY_MAX);
    }
    st_done(q);
    return rc;
}

int gw_keys_translate(struct gw_keys *k, const char *name, uint8_t kvn, const char *owner,
                      const struct ota_key *dek, const uint8_t *in, size_t len, uint8_t *out,
                      struct ota_err *err)
{
    if (!k || !dek || !in || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "key store: NULL argument");
    }
    if (!kek_name_ok(name)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kek: not a KEK name");
    }
    size_t bd = ota_cipher_block_len(dek->cipher);
    if (bd == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "translate: no usable DEK");
    }
    if (len == 0 || len > GW_KEYS_TRANSLATE_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_LENGTH, "kek %s: %zu octets, 1..%d allowed", name,
                        len, GW_KEYS_TRANSLATE_MAX);
    }
    int rc = 0;
    if (!kvn) {
        sqlite3_stmt *q = k->st[ST_MAXKEK];
        sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
            kvn = (uint8_t)sqlite3_column_int(q, 0);
            rc = 0;
        } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
            rc = ota_fail(err, -ENOENT, OTA_ERR_KEY, "no KEK %s", name);
        } else {
            rc = db_fail(k, err, rc, "read");
        }
        st_done(q);
        if (rc < 0) {
            return rc;
        }
    }
    /* the KEK and the clear data only ever sit in the locked arena */
    struct ota_key *kek = (struct ota_key *)(void *)(ar_scratch(k) + 2048);
    uint8_t *clear = ar_scratch(k) + 2304;
    memset(kek, 0, sizeof(*kek));
    rc = read_kek(k, name, kvn, owner, kek, err);
    if (rc == 0) {
        size_t bk = ota_cipher_block_len(kek->cipher);
        if (bk == 0 || len % bk || len % bd) {
            rc = ota_fail(err, -EINVAL, OTA_ERR_LENGTH,
                          "kek %s: %zu octets is not a multiple of the KEK's (%zu) and the DEK's "
                          "(%zu) block",
                          name, len, bk, bd);
        }
    }
    if (rc == 0) {
        rc = ota_crypto_cipher(k->cx, kek, OTA_MODE_ECB, false, NULL, in, len, clear, err);
    }
    if (rc == 0) {
        /* the mode PUT KEY uses for key data under this DEK (ota/gp.c) */
        enum ota_mode m = dek->cipher == OTA_CIPHER_AES ? OTA_MODE_CBC : OTA_MODE_ECB;
        rc = ota_crypto_cipher(k->cx, dek, m, true, NULL, clear, len, out, err);
    }
    OPENSSL_cleanse(clear, GW_KEYS_TRANSLATE_MAX);
    ota_key_wipe(kek);
    OPENSSL_cleanse(kek, sizeof(*kek));
    return rc;
}

int gw_keys_plat_translate(void *arg, const char *kek, uint8_t kek_kvn, const char *owner,
                           const uint8_t *sd_aid, size_t sd_aid_len, const uint8_t *in, size_t len,
                           uint8_t *out, struct ota_err *err)
{
    struct gw_keys_plat_arg *a = arg;
    if (!a || !a->k || !a->seid) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "translate: NULL argument");
    }
    struct gw_keys_sd *sd = (struct gw_keys_sd *)(void *)(ar_scratch(a->k) + 1024);
    memset(sd, 0, sizeof(*sd));
    int rc = gw_keys_get_sd(a->k, a->seid, sd_aid, sd_aid_len, 0, sd, err);
    if (rc == 0) {
        rc = gw_keys_translate(a->k, kek, kek_kvn, owner, &sd->dek, in, len, out, err);
    }
    gw_keys_sd_wipe(sd);
    OPENSSL_cleanse(sd, sizeof(*sd));
    return rc;
}

int gw_keys_task_final(struct gw_keys *k, const struct eng_task_view *t, bool *moved,
                       struct ota_err *err)
{
    if (moved) {
        *moved = false;
    }
    if (!k || !t || t->op != TASK_OP_SD_KEY_UPDATE || t->state != TASK_DONE || !t->seid) {
        return 0;
    }
    json_t *p = json_loads(t->params ? t->params : "{}", 0, NULL);
    if (!p) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "task %lld: params are not JSON",
                        (long long)t->id);
    }
    uint8_t aid[GW_KEYS_AID_MAX], tar[3] = {0, 0, 0};
    json_int_t nk = json_integer_value(json_object_get(p, "new_kvn"));
    int alen = json_object_get(p, "sd_aid")
                   ? api_hex_decode(json_string_value(json_object_get(p, "sd_aid")), aid, 5,
                                    GW_KEYS_AID_MAX)
                   : (int)sizeof(plat_isd_aid);
    if (!json_object_get(p, "sd_aid")) {
        memcpy(aid, plat_isd_aid, sizeof(plat_isd_aid));
    }
    int tl = json_object_get(p, "tar")
                 ? api_hex_decode(json_string_value(json_object_get(p, "tar")), tar, 3, 3)
                 : 3;
    json_decref(p);
    if (alen < 0 || tl < 0 || nk < 1 || nk > 127) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "task %lld: sd_aid / tar / new_kvn unusable",
                        (long long)t->id);
    }
    /* One transaction: the card got SD and SCP80 keys in one PUT KEY, so the store must never
     * record one set moved and the other not. */
    int rc = tx(k, "BEGIN IMMEDIATE", err);
    if (rc < 0) {
        return rc;
    }
    rc = gw_keys_set_current(k, t->seid, GW_KEYS_KIND_SD, aid, (size_t)alen, (uint8_t)nk, err);
    /* KVNs 1..15 are also the SCP80 key sets (TS 102 225 KIc/KID): move the TAR's set too */
    if (rc == 0 && nk <= 15) {
        char r[7];
        tar_text(tar, r);
        rc = has_row(k, ST_HAS80, t->seid, r, (uint8_t)nk, err);
        if (rc == 1) {
            rc = gw_keys_set_current(k, t->seid, GW_KEYS_KIND_SCP80, tar, 3, (uint8_t)nk, err);
        }
    }
    if (rc >= 0) {
        rc = tx(k, "COMMIT", err);
    }
    if (rc < 0) {
        (void)sqlite3_exec(k->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    if (moved) {
        *moved = true;
    }
    return 0;
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
