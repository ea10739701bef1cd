/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the key store (gateway/keys.c) and its import routes
 * (gateway/api_keys.c):
 * - local backend: AES-256-GCM records round-trip across a reopen; a
 *   tampered record, a record moved to another row and a wrong master key
 *   are refused; key files with mode 0644 (or a symlink) are refused, a
 *   missing one is created 0600;
 * - versions side by side, the current-version record, its move by a done
 *   sd-key-update task and the PUT KEY material (new keys + current DEK);
 * - wrapped import under 3DES / AES transport keys (ECB and AES key wrap)
 *   with KCVs; a wrong KCV stores nothing;
 * - the API: clear import refused unless clear_import = yes, bad-kcv, and no
 *   key (clear or wrapped hex) in any answer or log line;
 * - the pkcs11 backend on a SoftHSM2 token made in a temporary directory
 *   (skipped only when the module is not installed).
 */
#define _GNU_SOURCE /* memmem */
#include "gateway/keys.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "gateway/audit.h"
#include "gateway/gw.h"
#include "gateway/p11.h"
#include "gateway/platform.h"
#include "tests/support/ts_http.h"
#include "tests/support/ts_keys_fx.h"
#include "tests/support/ts_p11.h"
#include "tests/support/tsupport.h"

#define MODULE TS_P11_MODULE
#define SD_AID "A000000151000000"

static const char *const K_ENC = "404142434445464748494A4B4C4D4E4F";
static const char *const K_MAC = "505152535455565758595A5B5C5D5E5F";
static const char *const K_DEK = "606162636465666768696A6B6C6D6E6F";
static const char *const K_ENC2 = "11223344556677881122334455667788";
static const char *const K_MAC2 = "2233445566778899AABBCCDDEEFF0011";
static const char *const K_DEK2 = "0F0E0D0C0B0A09080706050403020100";

static int setup(void **state)
{
    return ts_keys_fx_setup(state, "/tmp/test_keys.XXXXXX");
}

static int teardown(void **state)
{
    return ts_keys_fx_teardown(state);
}

static void sd_set(struct gw_keys_sd *s, uint8_t kvn, const char *enc, const char *mac,
                   const char *dek)
{
    memset(s, 0, sizeof(*s));
    s->aid_len = ts_hex(SD_AID, s->aid, sizeof(s->aid));
    s->kvn = kvn;
    ts_mkkey(&s->enc, OTA_CIPHER_3DES2, enc);
    ts_mkkey(&s->mac, OTA_CIPHER_3DES2, mac);
    ts_mkkey(&s->dek, OTA_CIPHER_3DES2, dek);
}

/* An AES set (KIc/KID 12 | kvn << 4, SPI 16 39, CC 8) with key bytes from fill. */
static void aes_set(struct gw_keys_scp80 *s, const char *tar, uint8_t kvn, uint8_t fill)
{
    memset(s, 0, sizeof(*s));
    if (strcmp(tar, "*") == 0) {
        s->any_tar = true;
    } else {
        ts_hex(tar, s->tar, 3);
    }
    s->kvn = kvn;
    s->spi[0] = 0x16;
    s->spi[1] = 0x39;
    s->kic = (uint8_t)(0x02 | kvn << 4);
    s->kid = (uint8_t)(0x02 | kvn << 4);
    s->cc_len = 8;
    uint8_t b[16];
    memset(b, fill, sizeof(b));
    struct ota_err err;
    assert_int_equal(ota_key_set(&s->kic_key, OTA_CIPHER_AES, b, 16, &err), 0);
    b[0] ^= 0xff;
    assert_int_equal(ota_key_set(&s->kid_key, OTA_CIPHER_AES, b, 16, &err), 0);
}

static void kcv_of(struct ota_crypto *cx, const struct ota_key *k, uint8_t out[3])
{
    struct ota_err err;
    assert_int_equal(ota_crypto_kcv(cx, k, out, &err), 0);
}

/* ECB under the transport key (what otatool wrap-key does). */
static void wrap_ecb(struct ota_crypto *cx, const struct ota_key *tk, const struct ota_key *k,
                     struct gw_keys_wrapped *w)
{
    struct ota_err err;
    memset(w, 0, sizeof(*w));
    w->wrap = GW_KEYS_WRAP_ECB;
    w->len = k->len;
    assert_int_equal(
        ota_crypto_cipher(cx, tk, OTA_MODE_ECB, true, NULL, k->bytes, k->len, w->data, &err), 0);
    kcv_of(cx, k, w->kcv);
}

/* RFC 3394 under an AES key of kek_len octets. */
static void wrap_kw(struct ota_crypto *cx, const uint8_t *kek, size_t kek_len,
                    const struct ota_key *k, struct gw_keys_wrapped *w)
{
    memset(w, 0, sizeof(*w));
    w->wrap = GW_KEYS_WRAP_AES_KW;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_non_null(c);
    EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    int a = 0, b = 0;
    assert_int_equal(EVP_EncryptInit_ex(c, kek_len == 32 ? EVP_aes_256_wrap() : EVP_aes_128_wrap(),
                                        NULL, kek, NULL),
                     1);
    assert_int_equal(EVP_EncryptUpdate(c, w->data, &a, k->bytes, k->len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, w->data + a, &b), 1);
    EVP_CIPHER_CTX_free(c);
    w->len = (size_t)(a + b);
    assert_int_equal(w->len, k->len + 8);
    kcv_of(cx, k, w->kcv);
}

static int sql(const char *db, const char *q)
{
    sqlite3 *h = NULL;
    int rc = sqlite3_open(db, &h);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(h, q, NULL, NULL, NULL);
    }
    sqlite3_close(h);
    return rc;
}

/* ---- key files ---------------------------------------------------------------------- */

static void test_master_created_0600(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    unsigned made = 0;
    assert_int_equal(ts_keys_open_local(f, true, &made, &err), 0);
    assert_true(made & GW_KEYS_CREATED_MASTER);
    assert_true(made & GW_KEYS_CREATED_TRANSPORT);
    struct stat sb;
    assert_int_equal(stat(f->master, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(sb.st_size, 65); /* 64 hex digits and a newline */
    assert_int_equal(stat(f->transport, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    /* what was created reads back as 32 octets; a second open creates nothing */
    uint8_t key[32];
    bool created = true;
    assert_int_equal(gw_keys_read_key_file(f->master, false, 0, key, sizeof(key), &created, &err),
                     32);
    assert_false(created);
    gw_keys_close(f->k);
    f->k = NULL;
    made = 0xff;
    assert_int_equal(ts_keys_open_local(f, true, &made, &err), 0);
    assert_int_equal(made & (GW_KEYS_CREATED_MASTER | GW_KEYS_CREATED_TRANSPORT), 0);
}

static void test_master_mode_0644_refused(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    ts_write_file(f->master, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
                  0644);
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), -EACCES);
    assert_non_null(strstr(err.msg, "0644"));
    assert_non_null(strstr(err.msg, "master_key_file"));
    assert_null(f->k);
    /* the same file at 0600 is accepted; 0640 again refused */
    assert_int_equal(chmod(f->master, 0600), 0);
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), 0);
    gw_keys_close(f->k);
    f->k = NULL;
    assert_int_equal(chmod(f->master, 0640), 0);
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), -EACCES);
    /* a symbolic link to a good file is refused too */
    assert_int_equal(chmod(f->master, 0600), 0);
    char link[160];
    snprintf(link, sizeof(link), "%s/link.key", f->dir);
    assert_int_equal(symlink(f->master, link), 0);
    uint8_t key[32];
    assert_int_equal(gw_keys_read_key_file(link, false, 0, key, sizeof(key), NULL, &err), -EACCES);
}

static void test_key_file_content(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    /* 16 octets of hex: a fine transport key, not a master key (AES-256 needs 32) */
    ts_write_file(f->master, "00112233445566778899aabbccddeeff", 0600);
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "32"));
    ts_write_file(f->master, "not a key", 0600);
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), -EINVAL);
    /* a missing file is not created when the caller does not ask */
    uint8_t key[32];
    char path[160];
    snprintf(path, sizeof(path), "%s/none.key", f->dir);
    assert_int_equal(gw_keys_read_key_file(path, false, 32, key, sizeof(key), NULL, &err), -ENOENT);
    assert_int_not_equal(access(path, F_OK), 0);
}

/* ---- sealing ------------------------------------------------------------------------ */

static void test_gcm_roundtrip_reopen(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), 0);
    struct gw_keys_sd sd;
    sd_set(&sd, 1, K_ENC, K_MAC, K_DEK);
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &sd, &err), 0);
    struct gw_keys_scp80 s;
    aes_set(&s, "B00000", 1, 0x11);
    s.cc_len = 4;
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, NULL, &err), 0);
    gw_keys_close(f->k);
    f->k = NULL;

    /* the file holds no key in clear */
    FILE *fp = fopen(f->db, "rb");
    assert_non_null(fp);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    uint8_t k_enc[16];
    ts_hex(K_ENC, k_enc, 16);
    assert_null(memmem(buf, n, k_enc, 16));
    assert_null(memmem(buf, n, s.kic_key.bytes, 16));

    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), 0);
    struct gw_keys_sd out;
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", sd.aid, sd.aid_len, 0, &out, &err), 0);
    assert_int_equal(out.kvn, 1);
    assert_memory_equal(out.enc.bytes, sd.enc.bytes, 16);
    assert_memory_equal(out.mac.bytes, sd.mac.bytes, 16);
    assert_memory_equal(out.dek.bytes, sd.dek.bytes, 16);
    gw_keys_sd_wipe(&out);
    assert_true(ts_all_zero(out.enc.bytes, sizeof(out.enc.bytes)));
    struct eng_scp80_keys e;
    const uint8_t tar[3] = {0xb0, 0, 0};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar, &e, &err), 0);
    assert_int_equal(e.spi[0], 0x16);
    assert_int_equal(e.kic, 0x12);
    assert_int_equal(e.cc_len, 4);
    assert_memory_equal(e.kic_key.bytes, s.kic_key.bytes, 16);
    assert_memory_equal(e.kid_key.bytes, s.kid_key.bytes, 16);
    ota_key_wipe(&e.kic_key);
    ota_key_wipe(&e.kid_key);
    /* other SE / other TAR: nothing */
    assert_int_equal(gw_keys_get_scp80(f->k, "SE2", tar, &e, &err), -ENOENT);
    const uint8_t tar2[3] = {0, 0, 0};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar2, &e, &err), -ENOENT);
    gw_keys_sd_wipe(&sd);
    gw_keys_scp80_wipe(&s);
}

static void test_tampered_and_moved_refused(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), 0);
    struct gw_keys_sd sd;
    sd_set(&sd, 1, K_ENC, K_MAC, K_DEK);
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &sd, &err), 0);
    sd.kvn = 2;
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &sd, &err), 0);
    sd.kvn = 1;
    assert_int_equal(gw_keys_put_sd(f->k, "SE2", &sd, &err), 0);
    struct gw_keys_scp80 s;
    aes_set(&s, "B00000", 1, 0x22);
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, NULL, &err), 0);
    gw_keys_close(f->k);
    f->k = NULL;

    /* SE2's record moved onto SE1's row (same AID and KVN): the AAD names SE1 */
    assert_int_equal(sql(f->db, "UPDATE ks_sd SET sealed = (SELECT sealed FROM ks_sd WHERE"
                                " seid = 'SE2') WHERE seid = 'SE1' AND kvn = 1"),
                     SQLITE_OK);
    /* one bit of SE1 kvn 2 flipped */
    assert_int_equal(sql(f->db, "UPDATE ks_sd SET sealed = substr(sealed, 1, 20) ||"
                                " (CASE WHEN substr(sealed, 21, 1) = x'00' THEN x'01' ELSE x'00'"
                                " END) || substr(sealed, 22) WHERE seid = 'SE1' AND kvn = 2"),
                     SQLITE_OK);
    /* the SCP80 row's parameters changed (SPI): the AAD binds them too */
    assert_int_equal(sql(f->db, "UPDATE ks_scp80 SET spi = x'1621'"), SQLITE_OK);

    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), 0);
    struct gw_keys_sd out;
    memset(&out, 0, sizeof(out));
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", sd.aid, sd.aid_len, 1, &out, &err), -EBADMSG);
    assert_true(ts_all_zero(&out, sizeof(out)));
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", sd.aid, sd.aid_len, 2, &out, &err), -EBADMSG);
    /* the untouched record still opens */
    assert_int_equal(gw_keys_get_sd(f->k, "SE2", sd.aid, sd.aid_len, 0, &out, &err), 0);
    gw_keys_sd_wipe(&out);
    struct eng_scp80_keys e;
    const uint8_t tar[3] = {0xb0, 0, 0};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar, &e, &err), -EBADMSG);
    gw_keys_sd_wipe(&sd);
    gw_keys_scp80_wipe(&s);
}

static void test_wrong_master_refused(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), 0);
    struct gw_keys_sd sd;
    sd_set(&sd, 1, K_ENC, K_MAC, K_DEK);
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &sd, &err), 0);
    gw_keys_sd_wipe(&sd);
    gw_keys_close(f->k);
    f->k = NULL;
    ts_write_file(f->master, "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
                  0600);
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), -EACCES);
    assert_non_null(strstr(err.msg, "master key"));
    assert_null(f->k);
    /* and a pkcs11 open of a local store is refused before any token is touched */
    struct gw_keys_conf c = {.backend = GW_KEYS_PKCS11, .db_path = f->db};
    assert_int_equal(gw_keys_open_conf(&c, &f->k, NULL, &err), -EINVAL);
}

/* ---- versions ----------------------------------------------------------------------- */

static void test_versions_side_by_side(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), 0);
    struct gw_keys_sd v1, v2, out;
    sd_set(&v1, 1, K_ENC, K_MAC, K_DEK);
    sd_set(&v2, 2, K_ENC2, K_MAC2, K_DEK2);
    uint8_t kvn = 0;
    assert_int_equal(gw_keys_current(f->k, "SE1", GW_KEYS_KIND_SD, v1.aid, v1.aid_len, &kvn, &err),
                     -ENOENT);
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &v1, &err), 0);
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &v2, &err), 0);
    /* the first import is what the card holds; the second waits for a key update */
    assert_int_equal(gw_keys_current(f->k, "SE1", GW_KEYS_KIND_SD, v1.aid, v1.aid_len, &kvn, &err),
                     0);
    assert_int_equal(kvn, 1);
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", v1.aid, v1.aid_len, 0, &out, &err), 0);
    assert_int_equal(out.kvn, 1);
    assert_memory_equal(out.enc.bytes, v1.enc.bytes, 16);
    gw_keys_sd_wipe(&out);
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", v1.aid, v1.aid_len, 2, &out, &err), 0);
    assert_memory_equal(out.enc.bytes, v2.enc.bytes, 16);
    gw_keys_sd_wipe(&out);
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", v1.aid, v1.aid_len, 3, &out, &err), -ENOENT);
    /* no version that is not stored can become current */
    assert_int_equal(gw_keys_set_current(f->k, "SE1", GW_KEYS_KIND_SD, v1.aid, v1.aid_len, 3, &err),
                     -ENOENT);
    assert_int_equal(gw_keys_set_current(f->k, "SE1", GW_KEYS_KIND_SD, v1.aid, v1.aid_len, 2, &err),
                     0);
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", v1.aid, v1.aid_len, 0, &out, &err), 0);
    assert_int_equal(out.kvn, 2);
    assert_memory_equal(out.mac.bytes, v2.mac.bytes, 16);
    gw_keys_sd_wipe(&out);

    /* SCP80: kvn 1 and 2 for one TAR; lookups use the SE's current one */
    struct gw_keys_scp80 s1, s2;
    aes_set(&s1, "B00000", 1, 0x31);
    aes_set(&s2, "B00000", 2, 0x32);
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s1, NULL, &err), 0);
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s2, NULL, &err), 0);
    struct eng_scp80_keys e;
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", s1.tar, &e, &err), 0);
    assert_int_equal(e.kic, 0x12);
    assert_memory_equal(e.kic_key.bytes, s1.kic_key.bytes, 16);
    ota_key_wipe(&e.kic_key);
    ota_key_wipe(&e.kid_key);
    assert_int_equal(gw_keys_set_current(f->k, "SE1", GW_KEYS_KIND_SCP80, s1.tar, 3, 2, &err), 0);
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", s1.tar, &e, &err), 0);
    assert_int_equal(e.kic, 0x22);
    assert_memory_equal(e.kid_key.bytes, s2.kid_key.bytes, 16);
    ota_key_wipe(&e.kic_key);
    ota_key_wipe(&e.kid_key);
    /* a "*" set serves the other TARs; the exact TAR still wins */
    struct gw_keys_scp80 any;
    aes_set(&any, "*", 1, 0x40);
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &any, NULL, &err), 0);
    const uint8_t other[3] = {1, 2, 3};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", other, &e, &err), 0);
    assert_memory_equal(e.kic_key.bytes, any.kic_key.bytes, 16);
    ota_key_wipe(&e.kic_key);
    ota_key_wipe(&e.kid_key);
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", s1.tar, &e, &err), 0);
    assert_memory_equal(e.kic_key.bytes, s2.kic_key.bytes, 16);
    ota_key_wipe(&e.kic_key);
    ota_key_wipe(&e.kid_key);
    gw_keys_scp80_wipe(&s1);
    gw_keys_scp80_wipe(&s2);
    gw_keys_scp80_wipe(&any);
    gw_keys_sd_wipe(&v1);
    gw_keys_sd_wipe(&v2);
}

static void test_invalid_sets_refused(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    assert_int_equal(gw_keys_open(f->db, false, &f->k, &err), 0);
    struct gw_keys_scp80 s;
    aes_set(&s, "B00000", 1, 0x11);
    s.kvn = 2; /* differs from KIc / KID */
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, NULL, &err), -EINVAL);
    s.kvn = 1;
    s.cc_len = 5;
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, NULL, &err), -EINVAL);
    s.cc_len = 8;
    s.spi[0] = 0x00; /* no CC */
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, NULL, &err), -EINVAL);
    s.spi[0] = 0x16;
    s.kic_key.len = 15;
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, NULL, &err), -EINVAL);
    s.kic_key.len = 16;
    assert_int_equal(gw_keys_put_scp80(f->k, "bad seid", &s, NULL, &err), -EINVAL);
    uint8_t kcv[6] = {0};
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, kcv, &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_BAD_CC);
    struct eng_scp80_keys e;
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", s.tar, &e, &err), -ENOENT);
    /* with the right KCVs it goes in */
    kcv_of(f->cx, &s.kic_key, kcv);
    kcv_of(f->cx, &s.kid_key, kcv + 3);
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, kcv, &err), 0);
    gw_keys_scp80_wipe(&s);
}

/* ---- key-update campaign ------------------------------------------------------------ */

static void test_key_update_material_and_move(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), 0);
    struct gw_keys_sd v1, v2;
    sd_set(&v1, 1, K_ENC, K_MAC, K_DEK);
    sd_set(&v2, 2, K_ENC2, K_MAC2, K_DEK2);
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &v1, &err), 0);
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &v2, &err), 0);
    struct gw_keys_scp80 s2;
    aes_set(&s2, "000000", 2, 0x52);
    struct gw_keys_scp80 s1;
    aes_set(&s1, "000000", 1, 0x51);
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s1, NULL, &err), 0);
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s2, NULL, &err), 0);

    struct gw_keys_plat_arg a = {.k = f->k, .seid = "SE1"};
    struct plat_key_material km;
    memset(&km, 0, sizeof(km));
    assert_int_equal(gw_keys_plat_material(&a, v1.aid, v1.aid_len, 1, 2, &km, &err), 0);
    assert_int_equal(km.n_keys, 3);
    assert_memory_equal(km.keys[0].bytes, v2.enc.bytes, 16);
    assert_memory_equal(km.keys[1].bytes, v2.mac.bytes, 16);
    assert_memory_equal(km.keys[2].bytes, v2.dek.bytes, 16);
    assert_memory_equal(km.dek.bytes, v1.dek.bytes, 16); /* the DEK of what the card holds */
    for (int i = 0; i < 3; i++) {
        ota_key_wipe(&km.keys[i]);
    }
    ota_key_wipe(&km.dek);
    /* the task believes the card holds 3: refused */
    assert_int_equal(gw_keys_plat_material(&a, v1.aid, v1.aid_len, 3, 2, &km, &err), -ESTALE);
    /* a version never imported */
    assert_int_equal(gw_keys_plat_material(&a, v1.aid, v1.aid_len, 1, 5, &km, &err), -ENOENT);

    /* a failed key update moves nothing; a done one moves SD and SCP80 set of its TAR */
    struct eng_task_view t = {.id = 7,
                              .seid = "SE1",
                              .op = TASK_OP_SD_KEY_UPDATE,
                              .state = TASK_FAILED,
                              .params = "{\"tar\":\"000000\",\"sd_aid\":\"" SD_AID
                                        "\",\"old_kvn\":1,\"new_kvn\":2}"};
    bool moved = true;
    assert_int_equal(gw_keys_task_final(f->k, &t, &moved, &err), 0);
    assert_false(moved);
    uint8_t kvn = 0;
    assert_int_equal(gw_keys_current(f->k, "SE1", GW_KEYS_KIND_SD, v1.aid, v1.aid_len, &kvn, &err),
                     0);
    assert_int_equal(kvn, 1);
    t.state = TASK_DONE;
    t.op = TASK_OP_APP_LOCK; /* another op: nothing */
    assert_int_equal(gw_keys_task_final(f->k, &t, &moved, &err), 0);
    assert_false(moved);
    t.op = TASK_OP_SD_KEY_UPDATE;
    /* the SCP80 move fails after the SD one: both roll back, the SE stays on one version */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TRIGGER fail80 BEFORE INSERT ON ks_current"
                                  " WHEN NEW.kind = 'scp80' BEGIN SELECT RAISE(ABORT, 'no'); END",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_true(gw_keys_task_final(f->k, &t, &moved, &err) < 0);
    assert_false(moved);
    assert_int_equal(gw_keys_current(f->k, "SE1", GW_KEYS_KIND_SD, v1.aid, v1.aid_len, &kvn, &err),
                     0);
    assert_int_equal(kvn, 1);
    assert_int_equal(gw_keys_current(f->k, "SE1", GW_KEYS_KIND_SCP80, s1.tar, 3, &kvn, &err), 0);
    assert_int_equal(kvn, 1);
    assert_int_equal(sqlite3_exec(db, "DROP TRIGGER fail80", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(gw_keys_task_final(f->k, &t, &moved, &err), 0);
    assert_true(moved);
    assert_int_equal(gw_keys_current(f->k, "SE1", GW_KEYS_KIND_SD, v1.aid, v1.aid_len, &kvn, &err),
                     0);
    assert_int_equal(kvn, 2);
    assert_int_equal(gw_keys_current(f->k, "SE1", GW_KEYS_KIND_SCP80, s1.tar, 3, &kvn, &err), 0);
    assert_int_equal(kvn, 2);
    struct gw_keys_sd out;
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", v1.aid, v1.aid_len, 0, &out, &err), 0);
    assert_memory_equal(out.enc.bytes, v2.enc.bytes, 16);
    gw_keys_sd_wipe(&out);
    /* the next campaign (2 -> 1 back) takes the DEK of version 2 now */
    assert_int_equal(gw_keys_plat_material(&a, v1.aid, v1.aid_len, 2, 1, &km, &err), 0);
    assert_memory_equal(km.dek.bytes, v2.dek.bytes, 16);
    for (int i = 0; i < 3; i++) {
        ota_key_wipe(&km.keys[i]);
    }
    ota_key_wipe(&km.dek);
    /* bad params of a done task: an error, nothing moved */
    t.params = "{\"new_kvn\":\"x\"}";
    assert_int_equal(gw_keys_task_final(f->k, &t, &moved, &err), -EINVAL);
    assert_false(moved);
    gw_keys_sd_wipe(&v1);
    gw_keys_sd_wipe(&v2);
    gw_keys_scp80_wipe(&s1);
    gw_keys_scp80_wipe(&s2);
}

/*
 * The engine's build_script path with the store as key source (what gw.c's
 * hook wires): the PUT KEY of an sd-key-update carries version 2's keys
 * encrypted under the DEK of version 1, the SE's current set.
 */
static void test_key_update_script(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), 0);
    struct gw_keys_sd v1, v2;
    sd_set(&v1, 1, K_ENC, K_MAC, K_DEK);
    sd_set(&v2, 2, K_ENC2, K_MAC2, K_DEK2);
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &v1, &err), 0);
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &v2, &err), 0);
    struct gw_keys_plat_arg ka = {.k = f->k, .seid = "SE1"};
    struct plat_keys_cb kcb = {.keys = gw_keys_plat_material, .arg = &ka};
    struct plat_ctx ctx = {.keys = &kcb};
    struct eng_task_view t = {.id = 1,
                              .seid = "SE1",
                              .op = TASK_OP_SD_KEY_UPDATE,
                              .channel = TASK_CH_SCP80,
                              .state = TASK_DISPATCHED,
                              .params = "{\"tar\":\"000000\",\"sd_aid\":\"" SD_AID
                                        "\",\"old_kvn\":1,\"new_kvn\":2}"};
    uint8_t tar[3], script[512];
    size_t len = 0;
    if (plat_engine_build_script(&ctx, &t, tar, script, sizeof(script), &len, &err) < 0) {
        fail_msg("build: %s", err.msg);
    }
    uint8_t want[16];
    assert_int_equal(
        ota_crypto_cipher(f->cx, &v1.dek, OTA_MODE_ECB, true, NULL, v2.enc.bytes, 16, want, &err),
        0);
    assert_non_null(memmem(script, len, want, 16));
    assert_null(memmem(script, len, v2.enc.bytes, 16));
    /* the SE of another task has no such keys: the build fails, no script */
    t.seid = "SE2";
    ka.seid = "SE2";
    assert_true(plat_engine_build_script(&ctx, &t, tar, script, sizeof(script), &len, &err) < 0);
    gw_keys_sd_wipe(&v1);
    gw_keys_sd_wipe(&v2);
}

/* [keys] in the configuration: derived paths, backend, clear_import, refusals. */
static void test_conf_keys(void **state)
{
    (void)state;
    static const char link[] = "[link s]\nkind = cmpp\nhost = 127.0.0.1\nport = 1\n"
                               "sp_id = 901234\nsecret = x\n";
    struct gw_conf *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    struct ota_err err;
    char text[512];
    snprintf(text, sizeof(text), "[engine]\ndb = /var/x/q.db\n%s", link);
    assert_int_equal(gw_conf_parse(text, strlen(text), "t", c, &err), 0);
    assert_int_equal(c->keys_backend, GW_CONF_KEYS_LOCAL);
    assert_string_equal(c->keys_db, "/var/x/q.db.keys");
    assert_string_equal(c->keys_master_file, "/var/x/q.db.master.key");
    assert_string_equal(c->keys_transport_file, "/var/x/q.db.transport.key");
    assert_false(c->keys_clear_import);
    snprintf(text, sizeof(text),
             "[keys]\nclear_import = yes\nmaster_key_file = /k/m\n[engine]\ndb = q.db\n%s", link);
    assert_int_equal(gw_conf_parse(text, strlen(text), "t", c, &err), 0);
    assert_true(c->keys_clear_import);
    assert_string_equal(c->keys_master_file, "/k/m");
    assert_string_equal(c->keys_db, "q.db.keys");
    snprintf(text, sizeof(text), "[keys]\nbackend = pkcs11\n%s", link);
    assert_int_equal(gw_conf_parse(text, strlen(text), "t", c, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "pkcs11_module"));
    snprintf(text, sizeof(text),
             "[keys]\nbackend = pkcs11\npkcs11_module = /m.so\npkcs11_token = t\n"
             "pkcs11_pin_file = /p\n%s",
             link);
    assert_int_equal(gw_conf_parse(text, strlen(text), "t", c, &err), 0);
    assert_int_equal(c->keys_backend, GW_CONF_KEYS_PKCS11);
    snprintf(text, sizeof(text), "[keys]\nbackend = vault\n%s", link);
    assert_int_equal(gw_conf_parse(text, strlen(text), "t", c, &err), -EINVAL);
    snprintf(text, sizeof(text), "[keys]\nmaster_key = 00\n%s", link);
    assert_int_equal(gw_conf_parse(text, strlen(text), "t", c, &err), -EINVAL);
    gw_conf_fini(c);
    free(c);
}

/* ---- wrapped import ----------------------------------------------------------------- */

static void test_wrapped_import_3des_transport(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    static const char *const tk_hex = "0123456789ABCDEFFEDCBA9876543210";
    ts_write_file(f->transport, tk_hex, 0600);
    assert_int_equal(ts_keys_open_local(f, true, NULL, &err), 0);
    struct ota_key tk;
    ts_mkkey(&tk, OTA_CIPHER_3DES2, tk_hex);
    struct gw_keys_sd v;
    sd_set(&v, 1, K_ENC, K_MAC, K_DEK);
    struct gw_keys_wrapped w[3];
    wrap_ecb(f->cx, &tk, &v.enc, &w[0]);
    wrap_ecb(f->cx, &tk, &v.mac, &w[1]);
    wrap_ecb(f->cx, &tk, &v.dek, &w[2]);

    /* one wrong KCV (DEK's): refused as BAD_CC, nothing stored */
    w[2].kcv[1] ^= 1;
    assert_int_equal(gw_keys_import_sd(f->k, "SE1", v.aid, v.aid_len, 1, w, &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_BAD_CC);
    assert_non_null(strstr(err.msg, "dek"));
    struct gw_keys_sd out;
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", v.aid, v.aid_len, 0, &out, &err), -ENOENT);
    uint8_t kvn;
    assert_int_equal(gw_keys_current(f->k, "SE1", GW_KEYS_KIND_SD, v.aid, v.aid_len, &kvn, &err),
                     -ENOENT);
    w[2].kcv[1] ^= 1;
    /* a wrapped value of the wrong length */
    w[1].len = 8;
    assert_int_equal(gw_keys_import_sd(f->k, "SE1", v.aid, v.aid_len, 1, w, &err), -EINVAL);
    w[1].len = 16;
    assert_int_equal(gw_keys_import_sd(f->k, "SE1", v.aid, v.aid_len, 1, w, &err), 0);
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", v.aid, v.aid_len, 0, &out, &err), 0);
    assert_memory_equal(out.enc.bytes, v.enc.bytes, 16);
    assert_memory_equal(out.mac.bytes, v.mac.bytes, 16);
    assert_memory_equal(out.dek.bytes, v.dek.bytes, 16);
    gw_keys_sd_wipe(&out);

    /* SCP80 3DES set (KIc/KID 15: 3DES 2-key CBC / CBC-MAC, kvn 1) */
    struct gw_keys_scp80 s;
    memset(&s, 0, sizeof(s));
    ts_hex("B00010", s.tar, 3);
    s.kvn = 1;
    s.spi[0] = 0x16;
    s.spi[1] = 0x39;
    s.kic = 0x15;
    s.kid = 0x15;
    s.cc_len = 8;
    struct ota_key kic, kid;
    ts_mkkey(&kic, OTA_CIPHER_3DES2, K_ENC2);
    ts_mkkey(&kid, OTA_CIPHER_3DES2, K_MAC2);
    struct gw_keys_wrapped wc, wi;
    wrap_ecb(f->cx, &tk, &kic, &wc);
    wrap_ecb(f->cx, &tk, &kid, &wi);
    wi.kcv[0] ^= 0x80;
    assert_int_equal(gw_keys_import_scp80(f->k, "SE1", &s, &wc, &wi, &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_BAD_CC);
    struct eng_scp80_keys e;
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", s.tar, &e, &err), -ENOENT);
    wi.kcv[0] ^= 0x80;
    assert_int_equal(gw_keys_import_scp80(f->k, "SE1", &s, &wc, &wi, &err), 0);
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", s.tar, &e, &err), 0);
    assert_int_equal(e.kic_key.cipher, OTA_CIPHER_3DES2);
    assert_memory_equal(e.kic_key.bytes, kic.bytes, 16);
    assert_memory_equal(e.kid_key.bytes, kid.bytes, 16);
    ota_key_wipe(&e.kic_key);
    ota_key_wipe(&e.kid_key);
    /* aes-kw needs an AES transport key: refused here */
    wc.wrap = GW_KEYS_WRAP_AES_KW;
    wc.len = 24;
    s.kvn = 2;
    s.kic = s.kid = 0x25;
    assert_int_equal(gw_keys_import_scp80(f->k, "SE1", &s, &wc, &wi, &err), -EINVAL);
    ota_key_wipe(&kic);
    ota_key_wipe(&kid);
    ota_key_wipe(&tk);
    gw_keys_sd_wipe(&v);
}

static void test_wrapped_import_aes_transport(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    /* no transport key configured: refused */
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), 0);
    struct gw_keys_sd v;
    sd_set(&v, 1, K_ENC, K_MAC, K_DEK);
    struct gw_keys_wrapped w[3];
    memset(w, 0, sizeof(w));
    assert_int_equal(gw_keys_import_sd(f->k, "SE1", v.aid, v.aid_len, 1, w, &err), -ENOKEY);
    gw_keys_close(f->k);
    f->k = NULL;

    static const char *const tk_hex =
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
    ts_write_file(f->transport, tk_hex, 0600);
    assert_int_equal(ts_keys_open_local(f, true, NULL, &err), 0);
    uint8_t tkb[32];
    ts_hex(tk_hex, tkb, 32);
    struct ota_key tk;
    ts_mkkey(&tk, OTA_CIPHER_AES, tk_hex);
    /* ENC and MAC by AES-ECB (16 octets fit the block), DEK by AES key wrap */
    wrap_ecb(f->cx, &tk, &v.enc, &w[0]);
    wrap_ecb(f->cx, &tk, &v.mac, &w[1]);
    wrap_kw(f->cx, tkb, 32, &v.dek, &w[2]);
    assert_int_equal(gw_keys_import_sd(f->k, "SE1", v.aid, v.aid_len, 1, w, &err), 0);
    struct gw_keys_sd out;
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", v.aid, v.aid_len, 1, &out, &err), 0);
    assert_memory_equal(out.dek.bytes, v.dek.bytes, 16);
    assert_memory_equal(out.enc.bytes, v.enc.bytes, 16);
    gw_keys_sd_wipe(&out);
    /* a damaged key-wrap value fails RFC 3394's integrity check */
    wrap_kw(f->cx, tkb, 32, &v.enc, &w[0]);
    w[0].data[5] ^= 1;
    assert_int_equal(gw_keys_import_sd(f->k, "SE1", v.aid, v.aid_len, 2, w, &err), -EINVAL);
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", v.aid, v.aid_len, 2, &out, &err), -ENOENT);
    /* a 24-octet 3DES key cannot travel in AES-ECB */
    struct gw_keys_scp80 s;
    memset(&s, 0, sizeof(s));
    s.kvn = 1;
    s.spi[0] = 0x16;
    s.spi[1] = 0x39;
    s.kic = s.kid = 0x19; /* 3DES 3-key */
    s.cc_len = 8;
    struct ota_key k3;
    ts_mkkey(&k3, OTA_CIPHER_3DES3, "000102030405060708090A0B0C0D0E0F1011121314151617");
    struct gw_keys_wrapped a, b;
    memset(&a, 0, sizeof(a));
    a.len = 24;
    kcv_of(f->cx, &k3, a.kcv);
    b = a;
    assert_int_equal(gw_keys_import_scp80(f->k, "SE1", &s, &a, &b, &err), -EINVAL);
    /* ... but does by key wrap */
    wrap_kw(f->cx, tkb, 32, &k3, &a);
    b = a;
    assert_int_equal(gw_keys_import_scp80(f->k, "SE1", &s, &a, &b, &err), 0);
    struct eng_scp80_keys e;
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", s.tar, &e, &err), 0);
    assert_memory_equal(e.kic_key.bytes, k3.bytes, 24);
    ota_key_wipe(&e.kic_key);
    ota_key_wipe(&e.kid_key);
    ota_key_wipe(&k3);
    ota_key_wipe(&tk);
    gw_keys_sd_wipe(&v);
}

/* ---- the API ------------------------------------------------------------------------ */

struct api {
    struct ev_loop *loop;
    struct gw g;
    uint16_t port;
    char logpath[160];
    char *seen; /* every answer body, concatenated */
    size_t seen_len;
};

static int fb_submit(void *arg, const struct bearer_msg *m, struct ota_err *err)
{
    (void)arg;
    (void)m;
    (void)err;
    return 0;
}

static void fb_noop(void *arg)
{
    (void)arg;
}

static void api_up(struct ts_keys_fx *f, struct api *a, bool clear_import)
{
    memset(a, 0, sizeof(*a));
    a->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(a->loop);
    a->g.loop = a->loop;
    snprintf(a->logpath, sizeof(a->logpath), "%s/gw.log", f->dir);
    a->g.log = fopen(a->logpath, "a");
    assert_non_null(a->g.log);
    a->g.conf.log_level = GW_CONF_LOG_DEBUG;
    a->g.conf.keys_clear_import = clear_import;
    char edb[160];
    snprintf(edb, sizeof(edb), "%s/q.db", f->dir);
    struct eng_conf c;
    eng_conf_defaults(&c);
    c.db_path = edb;
    c.durable = false;
    c.commit_interval_ms = 0;
    struct eng_hooks hooks = {0};
    struct ota_err err;
    assert_int_equal(eng_open(a->loop, &c, &hooks, &a->g.eng, &err), 0);
    struct eng_bearer_ops ops = {
        .submit = fb_submit, .release_acks = fb_noop, .discard_acks = fb_noop, .arg = a};
    eng_set_bearer(a->g.eng, &ops);
    assert_int_equal(eng_se_register(a->g.eng, "SE1", "8613800000001", "b1", &err), 0);
    assert_int_equal(eng_flush(a->g.eng, &err), 0);
    assert_int_equal(ts_keys_open_local(f, true, NULL, &err), 0);
    a->g.keys = f->k;
    struct http_conf hc = {.bind_addr = "127.0.0.1", .port = 0, .idle_timeout_s = 5};
    assert_int_equal(http_server_new(a->loop, &hc, &a->g.http, &err), 0);
    a->port = http_server_port(a->g.http);
    assert_int_equal(gw_api_keys_routes(&a->g, &err), 0);
}

static void api_down(struct api *a)
{
    eng_close(a->g.eng);
    http_server_free(a->g.http);
    fclose(a->g.log);
    ev_loop_destroy(a->loop);
    free(a->seen);
}

static int api_post(struct api *a, const char *path, json_t *body, const char *code)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct ts_http_resp r;
    ts_http_do(a->loop, a->port, "POST", path, NULL, text, true, &r);
    free(text);
    a->seen = realloc(a->seen, a->seen_len + r.body_len + 1);
    assert_non_null(a->seen);
    memcpy(a->seen + a->seen_len, r.body, r.body_len);
    a->seen_len += r.body_len;
    a->seen[a->seen_len] = '\0';
    if (code) {
        ts_http_assert_error(&r, r.status, code);
    }
    int st = r.status;
    ts_http_resp_free(&r);
    return st;
}

static void hexs(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02X", b[i]);
    }
}

/* Neither the upper- nor the lower-case spelling of hex is in text. */
static void assert_absent(const char *text, const char *hex)
{
    char lower[128];
    size_t n = strlen(hex);
    assert_true(n < sizeof(lower));
    for (size_t i = 0; i <= n; i++) {
        lower[i] = (char)((hex[i] >= 'A' && hex[i] <= 'F') ? hex[i] + 32 : hex[i]);
    }
    if (strstr(text, hex) || strstr(text, lower)) {
        fail_msg("key material %s found", hex);
    }
}

static void test_api_import_and_no_leak(void **state)
{
    struct ts_keys_fx *f = *state;
    static const char *const tk_hex = "0123456789ABCDEFFEDCBA9876543210";
    ts_write_file(f->transport, tk_hex, 0600);
    struct api a;
    api_up(f, &a, false);
    struct ota_key tk, enc, mac, dek;
    ts_mkkey(&tk, OTA_CIPHER_3DES2, tk_hex);
    ts_mkkey(&enc, OTA_CIPHER_3DES2, K_ENC);
    ts_mkkey(&mac, OTA_CIPHER_3DES2, K_MAC);
    ts_mkkey(&dek, OTA_CIPHER_3DES2, K_DEK);
    struct gw_keys_wrapped w[3];
    wrap_ecb(f->cx, &tk, &enc, &w[0]);
    wrap_ecb(f->cx, &tk, &mac, &w[1]);
    wrap_ecb(f->cx, &tk, &dek, &w[2]);
    char wh[3][40], kcv[19], badkcv[19];
    for (int i = 0; i < 3; i++) {
        hexs(w[i].data, 16, wh[i]);
        hexs(w[i].kcv, 3, kcv + 6 * i);
    }
    memcpy(badkcv, kcv, sizeof(kcv));
    badkcv[17] = badkcv[17] == '0' ? '1' : '0';

    /* clear values with clear_import = no: 403, audited, nothing stored */
    assert_int_equal(api_post(&a, "/v1/ses/SE1/keys/sd",
                              json_pack("{s:s, s:i, s:s, s:s, s:s}", "sd_aid", SD_AID, "kvn", 1,
                                        "enc", K_ENC, "mac", K_MAC, "dek", K_DEK),
                              "clear-import-disabled"),
                     403);
    struct gw_keys_sd out;
    struct ota_err err;
    uint8_t aid[16];
    size_t aid_len = ts_hex(SD_AID, aid, sizeof(aid));
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", aid, aid_len, 0, &out, &err), -ENOENT);
    /* wrapped without its KCVs: 400 */
    assert_int_equal(
        api_post(&a, "/v1/ses/SE1/keys/sd",
                 json_pack("{s:s, s:i, s:s, s:s, s:s}", "sd_aid", SD_AID, "kvn", 1, "enc_wrapped",
                           wh[0], "mac_wrapped", wh[1], "dek_wrapped", wh[2]),
                 NULL),
        400);
    /* a wrong KCV: 400 bad-kcv, nothing stored */
    assert_int_equal(api_post(&a, "/v1/ses/SE1/keys/sd",
                              json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}", "sd_aid", SD_AID, "kvn",
                                        1, "enc_wrapped", wh[0], "mac_wrapped", wh[1],
                                        "dek_wrapped", wh[2], "kcv", badkcv),
                              "bad-kcv"),
                     400);
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", aid, aid_len, 0, &out, &err), -ENOENT);
    /* both forms at once, an unknown SE, a bad wrapping name */
    assert_int_equal(api_post(&a, "/v1/ses/SE1/keys/sd",
                              json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "sd_aid", SD_AID,
                                        "kvn", 1, "enc_wrapped", wh[0], "mac_wrapped", wh[1],
                                        "dek_wrapped", wh[2], "kcv", kcv, "enc", K_ENC),
                              "bad-key-set"),
                     400);
    assert_int_equal(api_post(&a, "/v1/ses/NOSUCH/keys/sd",
                              json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}", "sd_aid", SD_AID, "kvn",
                                        1, "enc_wrapped", wh[0], "mac_wrapped", wh[1],
                                        "dek_wrapped", wh[2], "kcv", kcv),
                              "se-not-found"),
                     404);
    assert_int_equal(api_post(&a, "/v1/ses/SE1/keys/sd",
                              json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "sd_aid", SD_AID,
                                        "kvn", 1, "enc_wrapped", wh[0], "mac_wrapped", wh[1],
                                        "dek_wrapped", wh[2], "kcv", kcv, "wrapping", "cbc"),
                              "bad-wrapping"),
                     400);
    /* the good one: 201, current */
    assert_int_equal(api_post(&a, "/v1/ses/SE1/keys/sd",
                              json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}", "sd_aid", SD_AID, "kvn",
                                        1, "enc_wrapped", wh[0], "mac_wrapped", wh[1],
                                        "dek_wrapped", wh[2], "kcv", kcv),
                              NULL),
                     201);
    assert_non_null(strstr(a.seen, "\"current\":true"));
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", aid, aid_len, 0, &out, &err), 0);
    assert_memory_equal(out.dek.bytes, dek.bytes, 16);
    gw_keys_sd_wipe(&out);

    /* SCP80 wrapped: KIc/KID 15 (3DES 2-key), kvn 1 */
    struct gw_keys_wrapped c80, i80;
    wrap_ecb(f->cx, &tk, &enc, &c80);
    wrap_ecb(f->cx, &tk, &mac, &i80);
    char ch[40], ih[40], k80[13];
    hexs(c80.data, 16, ch);
    hexs(i80.data, 16, ih);
    hexs(c80.kcv, 3, k80);
    hexs(i80.kcv, 3, k80 + 6);
    assert_int_equal(
        api_post(&a, "/v1/ses/SE1/keys/scp80",
                 json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s}", "tar", "B00000", "kvn", 1,
                           "spi", "1639", "kic", "15", "kid", "15", "kic_key_wrapped", ch,
                           "kid_key_wrapped", ih, "kcv", "000000000000"),
                 "bad-kcv"),
        400);
    assert_int_equal(api_post(&a, "/v1/ses/SE1/keys/scp80",
                              json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s}", "tar", "B00000",
                                        "kvn", 1, "spi", "1639", "kic", "15", "kid", "15",
                                        "kic_key_wrapped", ch, "kid_key_wrapped", ih, "kcv", k80),
                              NULL),
                     201);
    struct eng_scp80_keys e;
    const uint8_t tar[3] = {0xb0, 0, 0};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar, &e, &err), 0);
    assert_memory_equal(e.kic_key.bytes, enc.bytes, 16);
    ota_key_wipe(&e.kic_key);
    ota_key_wipe(&e.kid_key);
    /* clear SCP80 values refused too */
    assert_int_equal(
        api_post(&a, "/v1/ses/SE1/keys/scp80",
                 json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "tar", "B00001", "kvn", 1, "spi",
                           "1639", "kic", "15", "kid", "15", "kic_key", K_ENC2, "kid_key", K_MAC2),
                 "clear-import-disabled"),
        403);

    /* now with clear_import = yes: the clear form goes in (a second version, not current) */
    a.g.conf.keys_clear_import = true;
    assert_int_equal(api_post(&a, "/v1/ses/SE1/keys/sd",
                              json_pack("{s:s, s:i, s:s, s:s, s:s}", "sd_aid", SD_AID, "kvn", 2,
                                        "enc", K_ENC2, "mac", K_MAC2, "dek", K_DEK2),
                              NULL),
                     201);
    assert_non_null(strstr(a.seen, "\"current\":false"));
    assert_int_equal(
        api_post(&a, "/v1/ses/SE1/keys/sd",
                 json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}", "sd_aid", SD_AID, "kvn", 3, "enc",
                           K_ENC2, "mac", K_MAC2, "dek", K_DEK2, "kcv", "000000000000000000"),
                 "bad-kcv"),
        400);

    /* every answer and every log line: no key, clear or wrapped */
    fflush(a.g.log);
    FILE *lf = fopen(a.logpath, "r");
    assert_non_null(lf);
    static char logbuf[1 << 16];
    size_t ln = fread(logbuf, 1, sizeof(logbuf) - 1, lf);
    fclose(lf);
    logbuf[ln] = '\0';
    /* the refusals and imports were audited (no audit file here: logged "not stored") */
    assert_non_null(strstr(logbuf, "action=key.import_refused"));
    assert_non_null(strstr(logbuf, "reason=bad-kcv"));
    assert_non_null(strstr(logbuf, "reason=clear-import-disabled"));
    assert_non_null(strstr(logbuf, "action=key.import "));
    const char *secrets[] = {K_ENC, K_MAC, K_DEK, K_ENC2, K_MAC2, K_DEK2,
                             wh[0], wh[1], wh[2], ch,     ih,     tk_hex};
    for (size_t i = 0; i < OTA_ARRAY_SIZE(secrets); i++) {
        assert_absent(logbuf, secrets[i]);
        assert_absent(a.seen, secrets[i]);
    }
    ota_key_wipe(&tk);
    ota_key_wipe(&enc);
    ota_key_wipe(&mac);
    ota_key_wipe(&dek);
    api_down(&a);
}

static int64_t audit_rows(const char *path, const char *action)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT count(*) FROM audit_log WHERE action = ?1", -1, &q, NULL),
        SQLITE_OK);
    sqlite3_bind_text(q, 1, action, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

/*
 * The key.import entry comes first: when the audit log cannot be written
 * (another writer holds it) the import is answered 503 audit-unavailable
 * and nothing is stored; a refusal by the store after the entry adds a
 * key.import_refused entry.
 */
static void test_api_import_audit_first(void **state)
{
    struct ts_keys_fx *f = *state;
    struct api a;
    struct ota_err err;
    api_up(f, &a, true);
    snprintf(a.g.conf.db_path, sizeof(a.g.conf.db_path), "%s/q.db", f->dir);
    if (gw_audit_start(&a.g, &err) < 0) {
        fail_msg("audit: %s", err.msg);
    }
    char apath[200];
    snprintf(apath, sizeof(apath), "%s/q.db.audit", f->dir);
    uint8_t aid[16];
    size_t aid_len = ts_hex(SD_AID, aid, sizeof(aid));
    struct gw_keys_sd out;

    sqlite3 *lock = NULL;
    assert_int_equal(sqlite3_open(apath, &lock), SQLITE_OK);
    assert_int_equal(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(api_post(&a, "/v1/ses/SE1/keys/sd",
                              json_pack("{s:s, s:i, s:s, s:s, s:s}", "sd_aid", SD_AID, "kvn", 1,
                                        "enc", K_ENC, "mac", K_MAC, "dek", K_DEK),
                              "audit-unavailable"),
                     503);
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", aid, aid_len, 0, &out, &err), -ENOENT);
    assert_int_equal(
        api_post(&a, "/v1/ses/SE1/keys/scp80",
                 json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "tar", "B00000", "kvn", 1, "spi",
                           "1639", "kic", "15", "kid", "15", "kic_key", K_ENC2, "kid_key", K_MAC2),
                 "audit-unavailable"),
        503);
    struct eng_scp80_keys e80;
    const uint8_t tar[3] = {0xb0, 0, 0};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar, &e80, &err), -ENOENT);
    assert_int_equal(
        api_post(&a, "/v1/keks/plat1",
                 json_pack("{s:i, s:s, s:s}", "kvn", 1, "cipher", "3des2", "key", K_ENC),
                 "audit-unavailable"),
        503);
    uint8_t blk[16] = {0};
    struct ota_key dk;
    ts_mkkey(&dk, OTA_CIPHER_3DES2, K_DEK);
    assert_int_equal(gw_keys_translate(f->k, "plat1", 0, NULL, &dk, blk, 16, blk, &err), -ENOENT);
    ota_key_wipe(&dk);
    assert_int_equal(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(lock);
    assert_int_equal(audit_rows(apath, "key.import"), 0);

    /* writable again: stored, and its entry is there */
    assert_int_equal(api_post(&a, "/v1/ses/SE1/keys/sd",
                              json_pack("{s:s, s:i, s:s, s:s, s:s}", "sd_aid", SD_AID, "kvn", 1,
                                        "enc", K_ENC, "mac", K_MAC, "dek", K_DEK),
                              NULL),
                     201);
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", aid, aid_len, 0, &out, &err), 0);
    gw_keys_sd_wipe(&out);
    assert_int_equal(audit_rows(apath, "key.import"), 1);
    assert_int_equal(audit_rows(apath, "key.import_refused"), 0);
    /* the store refuses after the entry (kvn 1 of the KEK twice is fine locally: use a bad KCV) */
    assert_int_equal(api_post(&a, "/v1/keks/plat1",
                              json_pack("{s:i, s:s, s:s, s:s}", "kvn", 1, "cipher", "3des2", "key",
                                        K_ENC, "kcv", "000000"),
                              "bad-kcv"),
                     400);
    assert_int_equal(audit_rows(apath, "key.import"), 2);
    assert_int_equal(audit_rows(apath, "key.import_refused"), 1);
    gw_audit_stop(&a.g);
    api_down(&a);
}

/* What gw_api_keys_scrub() left of a request, checked inside the handler. */
struct scrub_seen {
    bool ran, key_zero, body_zero, aid_kept;
};

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i]) {
            return false;
        }
    }
    return true;
}

static void scrub_probe(struct http_req *req, void *arg)
{
    struct scrub_seen *s = arg;
    json_t *body = http_req_json(req, NULL);
    assert_non_null(body);
    gw_api_keys_scrub(req);
    json_t *enc = json_object_get(body, "enc");
    json_t *kw = json_object_get(body, "key_wrapped");
    size_t n = 0;
    const uint8_t *raw = http_req_body(req, &n);
    s->ran = true;
    s->key_zero = all_zero(json_string_value(enc), json_string_length(enc)) &&
                  all_zero(json_string_value(kw), json_string_length(kw));
    s->body_zero = n > 0 && all_zero(raw, n);
    s->aid_kept = strcmp(json_string_value(json_object_get(body, "sd_aid")), SD_AID) == 0;
    (void)http_respond_json(req, 200, NULL);
}

/* Clear key hex does not outlive the answer in the body or in jansson's strings. */
static void test_api_scrub(void **state)
{
    struct ts_keys_fx *f = *state;
    struct api a;
    struct ota_err err;
    struct scrub_seen seen = {0};
    api_up(f, &a, true);
    assert_int_equal(http_route(a.g.http, "POST", "/t/scrub", scrub_probe, &seen, &err), 0);
    assert_int_equal(
        api_post(&a, "/t/scrub",
                 json_pack("{s:s, s:s, s:s}", "sd_aid", SD_AID, "enc", K_ENC, "key_wrapped", K_MAC),
                 NULL),
        200);
    assert_true(seen.ran);
    assert_true(seen.key_zero);
    assert_true(seen.body_zero);
    assert_true(seen.aid_kept);
    api_down(&a);
}

/* ---- pkcs11 ------------------------------------------------------------------------- */

/* The token "t" (PIN 1234) in the fixture's directory; false when SoftHSM2 is missing. */
static bool p11_token(struct ts_keys_fx *f, char pinfile[160])
{
    int rc = ts_p11_token("t", "1234", f->dir, sizeof(f->dir));
    if (rc == 0) {
        return false;
    }
    assert_int_equal(rc, 1);
    snprintf(pinfile, 160, "%s/pin", f->dir);
    ts_write_file(pinfile, "1234\n", 0600);
    return true;
}

static void test_pkcs11_backend(void **state)
{
    struct ts_keys_fx *f = *state;
    char pinfile[160];
    if (!p11_token(f, pinfile)) {
        TS_P11_SKIP(); /* fails instead under OTAGW_REQUIRE_P11=1 */
    }
    struct ota_err err;
    /* the transport key: an AES-256 token object (here made from known bytes to wrap with) */
    static const char *const tk_hex =
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
    uint8_t tkb[32];
    ts_hex(tk_hex, tkb, 32);
    struct ota_key tk;
    ts_mkkey(&tk, OTA_CIPHER_AES, tk_hex);
    struct p11 *p = NULL;
    struct p11_conf pc = {.module = MODULE, .token_label = "t", .pin = "1234"};
    if (p11_open(&pc, &p, &err) < 0) {
        fail_msg("p11_open: %s", err.msg);
    }
    assert_int_equal(p11_import_clear_ex(p, &tk, "otagw-transport", P11_U_TRANSPORT, &err), 0);
    p11_close(p);

    /* a PIN file readable by others is refused */
    assert_int_equal(chmod(pinfile, 0644), 0);
    struct gw_keys_conf c = {.backend = GW_KEYS_PKCS11,
                             .db_path = f->db,
                             .p11_module = MODULE,
                             .p11_token = "t",
                             .p11_pin_file = pinfile,
                             .transport_label = "otagw-transport"};
    assert_int_equal(gw_keys_open_conf(&c, &f->k, NULL, &err), -EACCES);
    assert_int_equal(chmod(pinfile, 0600), 0);
    if (gw_keys_open_conf(&c, &f->k, NULL, &err) < 0) {
        fail_msg("open pkcs11: %s", err.msg);
    }
    assert_int_equal(gw_keys_backend(f->k), GW_KEYS_PKCS11);

    /* SD set by AES key wrap (what SoftHSM2 unwraps) */
    struct gw_keys_sd v;
    sd_set(&v, 1, K_ENC, K_MAC, K_DEK);
    struct gw_keys_wrapped w[3];
    wrap_kw(f->cx, tkb, 32, &v.enc, &w[0]);
    wrap_kw(f->cx, tkb, 32, &v.mac, &w[1]);
    wrap_kw(f->cx, tkb, 32, &v.dek, &w[2]);
    uint8_t want[3];
    memcpy(want, w[1].kcv, 3);
    w[1].kcv[2] ^= 0x10;
    assert_int_equal(gw_keys_import_sd(f->k, "SE1", v.aid, v.aid_len, 1, w, &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_BAD_CC);
    struct gw_keys_sd out;
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", v.aid, v.aid_len, 0, &out, &err), -ENOENT);
    w[1].kcv[2] ^= 0x10;
    if (gw_keys_import_sd(f->k, "SE1", v.aid, v.aid_len, 1, w, &err) < 0) {
        fail_msg("import_sd (aes-kw): %s", err.msg);
    }
    /* the same version again: refused by this backend */
    assert_int_equal(gw_keys_import_sd(f->k, "SE1", v.aid, v.aid_len, 1, w, &err), -EEXIST);
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", v.aid, v.aid_len, 0, &out, &err), 0);
    /* references, no bytes: the token computes the KCV */
    assert_true(ota_key_is_ext(&out.mac));
    assert_true(ts_all_zero(out.mac.bytes, sizeof(out.mac.bytes)));
    uint8_t got[3];
    kcv_of(f->cx, &out.mac, got);
    assert_memory_equal(got, want, 3);
    /* each role's usage (p11.h): no SD key decrypts, so a wrapped SD key cannot be opened */
    uint8_t blk[16] = {1, 2, 3}, res[16];
    const struct ota_key *sdk[3] = {&out.enc, &out.mac, &out.dek};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            ota_crypto_cipher(f->cx, sdk[i], OTA_MODE_ECB, true, NULL, blk, 16, res, &err), 0);
        assert_int_equal(
            ota_crypto_cipher(f->cx, sdk[i], OTA_MODE_ECB, false, NULL, blk, 16, res, &err),
            -EPERM);
    }
    gw_keys_sd_wipe(&out);

    /* ECB unwrap: SoftHSM2 lacks it (p11.h); another token may have it */
    struct gw_keys_wrapped e3[3];
    for (int i = 0; i < 3; i++) {
        wrap_ecb(f->cx, &tk, i == 0 ? &v.enc : i == 1 ? &v.mac : &v.dek, &e3[i]);
    }
    int rc = gw_keys_import_sd(f->k, "SE1", v.aid, v.aid_len, 2, e3, &err);
    assert_true(rc == 0 || rc == -EOPNOTSUPP);
    if (rc < 0) {
        assert_int_equal(gw_keys_get_sd(f->k, "SE1", v.aid, v.aid_len, 2, &out, &err), -ENOENT);
    }

    /* a clear SD set (migration path) and the PUT KEY material from the token */
    struct gw_keys_sd v3;
    sd_set(&v3, 3, K_ENC2, K_MAC2, K_DEK2);
    if (gw_keys_put_sd(f->k, "SE1", &v3, &err) < 0) {
        fail_msg("put_sd: %s", err.msg);
    }
    struct gw_keys_plat_arg pa = {.k = f->k, .seid = "SE1"};
    struct plat_key_material km;
    memset(&km, 0, sizeof(km));
    assert_int_equal(gw_keys_plat_material(&pa, v.aid, v.aid_len, 1, 3, &km, &err), 0);
    assert_true(ota_key_is_ext(&km.keys[0]));
    assert_true(ota_key_is_ext(&km.dek));
    kcv_of(f->cx, &km.dek, got);
    kcv_of(f->cx, &v.dek, want);
    assert_memory_equal(got, want, 3);
    for (int i = 0; i < 3; i++) {
        ota_key_wipe(&km.keys[i]);
    }
    ota_key_wipe(&km.dek);

    /*
     * SCP80 3DES set by key wrap; the lookup hands token references to the
     * engine. (An AES set is not unwrapped by SoftHSM2 2.6: p11.c's unwrap
     * template names CKA_VALUE_LEN, which that token refuses as read-only.)
     */
    struct gw_keys_scp80 s;
    memset(&s, 0, sizeof(s));
    ts_hex("B00000", s.tar, 3);
    s.kvn = 1;
    s.spi[0] = 0x16;
    s.spi[1] = 0x39;
    s.kic = s.kid = 0x15;
    s.cc_len = 8;
    ts_mkkey(&s.kic_key, OTA_CIPHER_3DES2, K_ENC2);
    ts_mkkey(&s.kid_key, OTA_CIPHER_3DES2, K_MAC2);
    struct gw_keys_wrapped wc, wi;
    wrap_kw(f->cx, tkb, 32, &s.kic_key, &wc);
    wrap_kw(f->cx, tkb, 32, &s.kid_key, &wi);
    if (gw_keys_import_scp80(f->k, "SE1", &s, &wc, &wi, &err) < 0) {
        fail_msg("import_scp80: %s", err.msg);
    }
    struct eng_scp80_keys ek;
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", s.tar, &ek, &err), 0);
    assert_true(ota_key_is_ext(&ek.kic_key));
    assert_int_equal(ek.kic_key.cipher, OTA_CIPHER_3DES2);
    kcv_of(f->cx, &ek.kid_key, got);
    assert_memory_equal(got, wi.kcv, 3);
    /* KIc deciphers PoRs; KID only MACs */
    assert_int_equal(
        ota_crypto_cipher(f->cx, &ek.kic_key, OTA_MODE_CBC, false, NULL, blk, 16, res, &err), 0);
    assert_int_equal(
        ota_crypto_cipher(f->cx, &ek.kid_key, OTA_MODE_CBC, false, NULL, blk, 16, res, &err),
        -EPERM);
    ota_key_wipe(&ek.kic_key);
    ota_key_wipe(&ek.kid_key);
    /* no key byte in the store's file */
    gw_keys_close(f->k);
    f->k = NULL;
    FILE *fp = fopen(f->db, "rb");
    assert_non_null(fp);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    assert_null(memmem(buf, n, v.enc.bytes, 16));
    assert_null(memmem(buf, n, s.kic_key.bytes, 16));
    /* a local open of a pkcs11 store is refused */
    assert_int_equal(ts_keys_open_local(f, false, NULL, &err), -EINVAL);
    gw_keys_scp80_wipe(&s);
    gw_keys_sd_wipe(&v);
    gw_keys_sd_wipe(&v3);
    ota_key_wipe(&tk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_master_created_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_mode_0644_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gcm_roundtrip_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_and_moved_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_master_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions_side_by_side, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_sets_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_update_material_and_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_update_script, setup, teardown),
        cmocka_unit_test(test_conf_keys),
        cmocka_unit_test_setup_teardown(test_wrapped_import_3des_transport, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrapped_import_aes_transport, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_import_and_no_leak, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_import_audit_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_scrub, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pkcs11_backend, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
