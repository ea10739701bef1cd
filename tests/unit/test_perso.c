/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of application personalization mode three (spec 5.8.4.6.3):
 * platform KEKs in the key store (gateway/keys.c), the KEK to DEK
 * translation, the app-personalize builder's sensitive blocks
 * (gateway/platform.c) and the KEK import route (gateway/api_keys.c):
 * - translation equals decrypt-then-encrypt done here with OpenSSL EVP, for
 *   3DES and AES KEKs, clear and wrapped imports, latest and given versions;
 * - refusals: unknown KEK, unaligned or oversize block, another platform's
 *   KEK, a row whose owner was edited, a wrong KCV (nothing stored);
 * - STORE DATA carries the translated bytes with P1 b7b6 = 11, the other
 *   blocks untouched, and no clear sensitive byte in the script;
 * - POST /v1/keks/{name}: admin only, bad KCV / cipher / clear import
 *   refused with nothing stored, no key or data in answers or log lines;
 * - the pkcs11 backend on a SoftHSM2 token in a temporary directory
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "gateway/audit.h"
#include "gateway/auth.h"
#include "gateway/gw.h"
#include "gateway/p11.h"
#include "gateway/platform.h"
#include "tests/sim/gpmodel.h"
#include "tests/support/ts_http.h"
#include "tests/support/ts_keys_fx.h"
#include "tests/support/ts_p11.h"
#include "tests/support/tsupport.h"

#define MODULE TS_P11_MODULE
#define ISD_AID "A000000151000000"
#define APP_AID "A0000000041010AA"

static const char *const K_ENC = "404142434445464748494A4B4C4D4E4F";
static const char *const K_MAC = "505152535455565758595A5B5C5D5E5F";
static const char *const K_DEK = "606162636465666768696A6B6C6D6E6F";
static const char *const KEK_3DES = "0123456789ABCDEFFEDCBA98765432100123456789ABCDEF";
static const char *const KEK_3DES2 = "1F2E3D4C5B6A79880011223344556677";
static const char *const KEK_AES = "2B7E151628AED2A6ABF7158809CF4F3C";
static const char *const KEK_AES256 =
    "603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4";
/* a PIN block and a key as the application wants them: the clear sensitive data */
static const char *const CLEAR32 =
    "241234FFFFFFFFFFC0FFEE00112233445566778899AABBCCDDEEFF0011223344";

static int setup(void **state)
{
    return ts_keys_fx_setup(state, "/tmp/test_perso.XXXXXX");
}

static int teardown(void **state)
{
    return ts_keys_fx_teardown(state);
}

static void open_local(struct ts_keys_fx *f)
{
    struct ota_err err;
    assert_int_equal(ts_keys_open_local(f, true, NULL, &err), 0);
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

static void hexs(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02X", b[i]);
    }
    out[2 * n] = '\0';
}

/* The reference: plain OpenSSL EVP, ECB, no padding, independent of ota_crypto. */
static const EVP_CIPHER *evp_ecb(const char *key_hex)
{
    switch (strlen(key_hex) / 2) {
    case 16:
        return EVP_des_ede_ecb();
    case 24:
        return EVP_des_ede3_ecb();
    default:
        return EVP_aes_256_ecb();
    }
}

static void ref_ecb(const EVP_CIPHER *ci, const char *key_hex, bool enc, const uint8_t *in,
                    size_t len, uint8_t *out)
{
    uint8_t key[32];
    ts_hex(key_hex, key, sizeof(key));
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_non_null(c);
    int a = 0, b = 0;
    assert_int_equal(EVP_CipherInit_ex(c, ci, NULL, key, NULL, enc ? 1 : 0), 1);
    EVP_CIPHER_CTX_set_padding(c, 0);
    assert_int_equal(EVP_CipherUpdate(c, out, &a, in, (int)len), 1);
    assert_int_equal(EVP_CipherFinal_ex(c, out + a, &b), 1);
    assert_int_equal((size_t)(a + b), len);
    EVP_CIPHER_CTX_free(c);
}

/* [clear]KEK as the business platform sends it. */
static void under_kek(const EVP_CIPHER *ci, const char *kek_hex, const uint8_t *clear, size_t len,
                      uint8_t *out)
{
    ref_ecb(ci, kek_hex, true, clear, len, out);
}

/* What the card's SD gets: decrypt under the KEK, encrypt under the DEK (3DES-ECB). */
static void expected(const EVP_CIPHER *ci, const char *kek_hex, const uint8_t *in, size_t len,
                     uint8_t *out)
{
    uint8_t clear[256];
    ref_ecb(ci, kek_hex, false, in, len, clear);
    ref_ecb(EVP_des_ede_ecb(), K_DEK, true, clear, len, out);
}

static void put_kek(struct ts_keys_fx *f, const char *name, const char *owner, uint8_t kvn,
                    enum ota_cipher c, const char *hex)
{
    struct ota_err err;
    struct gw_keys_kek in = {.name = name, .owner = owner, .kvn = kvn};
    ts_mkkey(&in.key, c, hex);
    uint8_t kcv[3];
    assert_int_equal(ota_crypto_kcv(f->cx, &in.key, kcv, &err), 0);
    if (gw_keys_put_kek(f->k, &in, kcv, &err) < 0) {
        fail_msg("put_kek %s: %s", name, err.msg);
    }
    ota_key_wipe(&in.key);
}

static void put_isd(struct ts_keys_fx *f, const char *seid)
{
    struct ota_err err;
    struct gw_keys_sd s;
    memset(&s, 0, sizeof(s));
    s.aid_len = ts_hex(ISD_AID, s.aid, sizeof(s.aid));
    s.kvn = 1;
    ts_mkkey(&s.enc, OTA_CIPHER_3DES2, K_ENC);
    ts_mkkey(&s.mac, OTA_CIPHER_3DES2, K_MAC);
    ts_mkkey(&s.dek, OTA_CIPHER_3DES2, K_DEK);
    assert_int_equal(gw_keys_put_sd(f->k, seid, &s, &err), 0);
    gw_keys_sd_wipe(&s);
}

/* ---- the translation primitive ------------------------------------------------------- */

static void test_translate_matches_openssl(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    open_local(f);
    put_kek(f, "plat-a", "plat-a", 1, OTA_CIPHER_3DES3, KEK_3DES);
    put_kek(f, "plat-b", "plat-b", 1, OTA_CIPHER_AES, KEK_AES256);
    struct ota_key dek;
    ts_mkkey(&dek, OTA_CIPHER_3DES2, K_DEK);
    uint8_t clear[32], in[32], out[32], want[32];
    ts_hex(CLEAR32, clear, sizeof(clear));

    /* 3DES KEK, 8-aligned: 24 octets */
    under_kek(evp_ecb(KEK_3DES), KEK_3DES, clear, 24, in);
    expected(evp_ecb(KEK_3DES), KEK_3DES, in, 24, want);
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 1, "plat-a", &dek, in, 24, out, &err), 0);
    assert_memory_equal(out, want, 24);
    /* AES KEK, 16-aligned: 32 octets; in place; staff (no owner) may use any KEK */
    under_kek(evp_ecb(KEK_AES256), KEK_AES256, clear, 32, in);
    expected(evp_ecb(KEK_AES256), KEK_AES256, in, 32, want);
    assert_int_equal(gw_keys_translate(f->k, "plat-b", 0, NULL, &dek, in, 32, in, &err), 0);
    assert_memory_equal(in, want, 32);
    assert_null(memmem(in, 32, clear, 8));

    /* the latest version without a kvn, the one asked with it */
    put_kek(f, "plat-a", "plat-a", 2, OTA_CIPHER_3DES2, KEK_3DES2);
    under_kek(evp_ecb(KEK_3DES2), KEK_3DES2, clear, 16, in);
    expected(evp_ecb(KEK_3DES2), KEK_3DES2, in, 16, want);
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 0, "plat-a", &dek, in, 16, out, &err), 0);
    assert_memory_equal(out, want, 16);
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 1, "plat-a", &dek, in, 16, out, &err), 0);
    assert_memory_not_equal(out, want, 16);

    /* survives a reopen (sealed under the master key) */
    gw_keys_close(f->k);
    f->k = NULL;
    open_local(f);
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 2, "plat-a", &dek, in, 16, out, &err), 0);
    assert_memory_equal(out, want, 16);
    ota_key_wipe(&dek);
}

static void test_translate_refusals(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    open_local(f);
    put_kek(f, "plat-a", "plat-a", 1, OTA_CIPHER_AES, KEK_AES);
    struct ota_key dek;
    ts_mkkey(&dek, OTA_CIPHER_3DES2, K_DEK);
    uint8_t in[240] = {0}, out[240];
    memset(out, 0xA5, sizeof(out));

    /* unknown KEK, unknown version, a bad name */
    assert_int_equal(gw_keys_translate(f->k, "nosuch", 0, NULL, &dek, in, 16, out, &err), -ENOENT);
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 9, NULL, &dek, in, 16, out, &err), -ENOENT);
    assert_int_equal(gw_keys_translate(f->k, "a/b", 0, NULL, &dek, in, 16, out, &err), -EINVAL);
    /* another platform's KEK */
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 1, "plat-b", &dek, in, 16, out, &err),
                     -EACCES);
    assert_non_null(strstr(err.msg, "not usable by platform plat-b"));
    /* 8 octets is a 3DES block, not an AES one; 0 and oversize */
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 1, NULL, &dek, in, 8, out, &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_LENGTH);
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 1, NULL, &dek, in, 0, out, &err), -EINVAL);
    assert_int_equal(
        gw_keys_translate(f->k, "plat-a", 1, NULL, &dek, in, GW_KEYS_TRANSLATE_MAX + 8, out, &err),
        -EINVAL);
    /* nothing was written on any refusal */
    for (size_t i = 0; i < sizeof(out); i++) {
        assert_int_equal(out[i], 0xA5);
    }

    /* editing a row's owner hands it to nobody: the record no longer authenticates */
    assert_int_equal(sql(f->db, "UPDATE ks_kek SET owner = 'plat-b' WHERE name = 'plat-a'"),
                     SQLITE_OK);
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 1, "plat-b", &dek, in, 16, out, &err),
                     -EBADMSG);

    /* a wrong KCV, a bad cipher, a bad owner or kvn: refused, nothing stored */
    struct gw_keys_kek kk = {.name = "plat-c", .owner = "plat-c", .kvn = 1};
    ts_mkkey(&kk.key, OTA_CIPHER_AES, KEK_AES);
    const uint8_t bad_kcv[3] = {0, 0, 0};
    assert_int_equal(gw_keys_put_kek(f->k, &kk, bad_kcv, &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_BAD_CC);
    kk.kvn = 0;
    assert_int_equal(gw_keys_put_kek(f->k, &kk, NULL, &err), -EINVAL);
    kk.kvn = 1;
    kk.owner = "";
    assert_int_equal(gw_keys_put_kek(f->k, &kk, NULL, &err), -EINVAL);
    kk.owner = "plat-c";
    ota_key_wipe(&kk.key);
    ts_mkkey(&kk.key, OTA_CIPHER_DES, "0123456789ABCDEF");
    assert_int_equal(gw_keys_put_kek(f->k, &kk, NULL, &err), -EINVAL);
    assert_int_equal(gw_keys_translate(f->k, "plat-c", 0, NULL, &dek, in, 16, out, &err), -ENOENT);
    ota_key_wipe(&kk.key);
    ota_key_wipe(&dek);
}

static void test_wrapped_import(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    static const char *const tk_hex = "0123456789ABCDEFFEDCBA9876543210";
    ts_write_file(f->transport, tk_hex, 0600);
    open_local(f);
    struct ota_key tk, kek;
    ts_mkkey(&tk, OTA_CIPHER_3DES2, tk_hex);
    ts_mkkey(&kek, OTA_CIPHER_AES, KEK_AES);
    struct gw_keys_wrapped w;
    memset(&w, 0, sizeof(w));
    w.wrap = GW_KEYS_WRAP_ECB;
    w.cipher = OTA_CIPHER_AES;
    w.len = 16;
    assert_int_equal(
        ota_crypto_cipher(f->cx, &tk, OTA_MODE_ECB, true, NULL, kek.bytes, 16, w.data, &err), 0);
    assert_int_equal(ota_crypto_kcv(f->cx, &kek, w.kcv, &err), 0);
    struct gw_keys_kek in = {.name = "plat-w", .owner = "plat-w", .kvn = 3};
    /* a wrong KCV: nothing stored */
    w.kcv[0] ^= 1;
    assert_int_equal(gw_keys_import_kek(f->k, &in, &w, &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_BAD_CC);
    struct ota_key dek;
    ts_mkkey(&dek, OTA_CIPHER_3DES2, K_DEK);
    uint8_t clear[32], in16[16], out[16], want[16];
    ts_hex(CLEAR32, clear, sizeof(clear));
    assert_int_equal(gw_keys_translate(f->k, "plat-w", 0, NULL, &dek, clear, 16, out, &err),
                     -ENOENT);
    w.kcv[0] ^= 1;
    /* a cipher the store does not take for a KEK */
    w.cipher = OTA_CIPHER_DES;
    assert_int_equal(gw_keys_import_kek(f->k, &in, &w, &err), -EINVAL);
    w.cipher = OTA_CIPHER_AES;
    assert_int_equal(gw_keys_import_kek(f->k, &in, &w, &err), 0);
    under_kek(EVP_aes_128_ecb(), KEK_AES, clear, 16, in16);
    uint8_t c2[16];
    ref_ecb(EVP_aes_128_ecb(), KEK_AES, false, in16, 16, c2);
    ref_ecb(EVP_des_ede_ecb(), K_DEK, true, c2, 16, want);
    assert_int_equal(gw_keys_translate(f->k, "plat-w", 3, "plat-w", &dek, in16, 16, out, &err), 0);
    assert_memory_equal(out, want, 16);
    ota_key_wipe(&tk);
    ota_key_wipe(&kek);
    ota_key_wipe(&dek);
}

/* ---- the app-personalize builder --------------------------------------------------------- */

static const struct plat_apdu *nth(const struct plat_script *s, size_t i)
{
    assert_true(i < s->n);
    return &s->apdus[i];
}

static void test_build_store_data(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    open_local(f);
    put_isd(f, "SE1");
    put_kek(f, "plat-a", "plat-a", 1, OTA_CIPHER_3DES3, KEK_3DES);
    put_kek(f, "plat-b", "plat-b", 1, OTA_CIPHER_AES, KEK_AES256);
    uint8_t clear[32], in[32], want[32];
    ts_hex(CLEAR32, clear, sizeof(clear));
    under_kek(evp_ecb(KEK_3DES), KEK_3DES, clear, 16, in);
    expected(evp_ecb(KEK_3DES), KEK_3DES, in, 16, want);
    char in_hex[65], clear_hex[65];
    hexs(in, 16, in_hex);
    hexs(clear, 16, clear_hex);

    struct gw_keys_plat_arg ka = {.k = f->k, .seid = "SE1"};
    struct plat_keys_cb kcb = {.translate = gw_keys_plat_translate, .arg = &ka};
    struct plat_ctx ctx = {.keys = &kcb};
    char params[512];
    snprintf(params, sizeof(params),
             "{\"aid\":\"%s\",\"owner\":\"plat-a\",\"structure\":\"dgi\",\"callback_url\":"
             "\"http://x/\",\"data\":[\"0101020304\",{\"data\":\"%s\",\"kek\":\"plat-a\","
             "\"kek_kvn\":1},\"9F0102\"]}",
             APP_AID, in_hex);
    struct plat_script s = {0};
    if (plat_build_ex(TASK_OP_APP_PERSONALIZE, params, &ctx, &s, &err) < 0) {
        fail_msg("build: %s", err.msg);
    }
    assert_int_equal(s.n, 4);
    assert_int_equal(nth(&s, 0)->step, PLAT_STEP_INSTALL_PERSO);
    /* block 0: as given, DGI, not encrypted */
    const struct plat_apdu *a = nth(&s, 1);
    assert_int_equal(a->step, PLAT_STEP_STORE_DATA);
    assert_int_equal(a->b[1], 0xE2);
    assert_int_equal(a->b[2], OTA_GP_STORE_STRUCT_DGI);
    assert_int_equal(a->b[3], 0);
    /* block 1: the translated bytes, P1 b7b6 = 11 (GP 2.2 11.11.2.1), block number 1 */
    a = nth(&s, 2);
    assert_int_equal(a->b[2], OTA_GP_STORE_ENC_ENCRYPTED | OTA_GP_STORE_STRUCT_DGI);
    assert_int_equal(a->b[3], 1);
    assert_int_equal(a->b[4], 16);
    assert_memory_equal(a->b + 5, want, 16);
    /* block 2: last, not encrypted */
    a = nth(&s, 3);
    assert_int_equal(a->b[2], OTA_GP_STORE_LAST | OTA_GP_STORE_STRUCT_DGI);
    assert_int_equal(a->b[3], 2);
    /* neither the clear data nor its KEK form reached the script */
    for (size_t i = 0; i < s.n; i++) {
        assert_null(memmem(s.apdus[i].b, s.apdus[i].len, clear, 8));
        assert_null(memmem(s.apdus[i].b, s.apdus[i].len, in, 8));
    }
    plat_script_fini(&s);

    /* a staff task (no owner) may use any KEK; the last block sensitive gets b8 too */
    snprintf(params, sizeof(params),
             "{\"aid\":\"%s\",\"data\":[{\"data\":\"%s\",\"kek\":\"plat-a\"}]}", APP_AID, in_hex);
    assert_int_equal(plat_build_ex(TASK_OP_APP_PERSONALIZE, params, &ctx, &s, &err), 0);
    assert_int_equal(nth(&s, 1)->b[2], OTA_GP_STORE_LAST | OTA_GP_STORE_ENC_ENCRYPTED);
    assert_memory_equal(nth(&s, 1)->b + 5, want, 16);
    plat_script_fini(&s);

    /* SCP80 (the engine's adapter): the expanded script carries the same translated block */
    struct eng_task_view t = {.id = 1, .seid = "SE1", .op = TASK_OP_APP_PERSONALIZE};
    t.params = params;
    uint8_t tar[3], script[PLAT_SCP80_SCRIPT_MAX];
    size_t slen = 0;
    assert_int_equal(plat_engine_build_script(&ctx, &t, tar, script, sizeof(script), &slen, &err),
                     0);
    assert_non_null(memmem(script, slen, want, 16));
    assert_null(memmem(script, slen, clear, 8));

    /* another platform's KEK: the build fails with the reason, naming no data */
    snprintf(
        params, sizeof(params),
        "{\"aid\":\"%s\",\"owner\":\"plat-a\",\"data\":[{\"data\":\"%s\",\"kek\":\"plat-b\"}]}",
        APP_AID, in_hex);
    assert_int_equal(plat_build_ex(TASK_OP_APP_PERSONALIZE, params, &ctx, &s, &err), -EACCES);
    assert_non_null(strstr(err.msg, "not usable by platform plat-a"));
    assert_null(strstr(err.msg, in_hex));
    assert_int_equal(s.n, 0);
    /* an unknown KEK */
    snprintf(params, sizeof(params),
             "{\"aid\":\"%s\",\"data\":[{\"data\":\"%s\",\"kek\":\"nosuch\"}]}", APP_AID, in_hex);
    assert_int_equal(plat_build_ex(TASK_OP_APP_PERSONALIZE, params, &ctx, &s, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "nosuch"));
    /* an AES KEK with 8-octet-aligned, not 16-aligned data */
    snprintf(params, sizeof(params),
             "{\"aid\":\"%s\",\"data\":[{\"data\":\"%s\",\"kek\":\"plat-b\"}]}", APP_AID,
             "0011223344556677");
    assert_int_equal(plat_build_ex(TASK_OP_APP_PERSONALIZE, params, &ctx, &s, &err), -EINVAL);
    /* no SD keys for the SE: no DEK */
    ka.seid = "SE2";
    snprintf(params, sizeof(params),
             "{\"aid\":\"%s\",\"data\":[{\"data\":\"%s\",\"kek\":\"plat-a\"}]}", APP_AID, in_hex);
    assert_int_equal(plat_build_ex(TASK_OP_APP_PERSONALIZE, params, &ctx, &s, &err), -ENOENT);
    /* no key source at all */
    assert_int_equal(plat_build(TASK_OP_APP_PERSONALIZE, params, &s, &err), -ENOKEY);
    struct plat_keys_cb none = {0};
    struct plat_ctx nctx = {.keys = &none};
    assert_int_equal(plat_build_ex(TASK_OP_APP_PERSONALIZE, params, &nctx, &s, &err), -ENOKEY);
    assert_int_equal(s.n, 0);
    (void)clear_hex;
}

static void test_params_refused(void **state)
{
    (void)state;
    struct ota_err err;
    struct plat_script s = {0};
    static const char *const bad[] = {
        /* unaligned sensitive data (12 octets) */
        "{\"aid\":\"" APP_AID
        "\",\"data\":[{\"data\":\"001122334455667788990011\",\"kek\":\"k\"}]}",
        /* too short, too long */
        "{\"aid\":\"" APP_AID "\",\"data\":[{\"data\":\"0011\",\"kek\":\"k\"}]}",
        /* no kek, kek not a string, empty kek */
        "{\"aid\":\"" APP_AID "\",\"data\":[{\"data\":\"0011223344556677\"}]}",
        "{\"aid\":\"" APP_AID "\",\"data\":[{\"data\":\"0011223344556677\",\"kek\":5}]}",
        "{\"aid\":\"" APP_AID "\",\"data\":[{\"data\":\"0011223344556677\",\"kek\":\"\"}]}",
        /* no data, bad hex, bad kek_kvn, an unknown member */
        "{\"aid\":\"" APP_AID "\",\"data\":[{\"kek\":\"k\"}]}",
        "{\"aid\":\"" APP_AID "\",\"data\":[{\"data\":\"00112233445566ZZ\",\"kek\":\"k\"}]}",
        "{\"aid\":\"" APP_AID "\",\"data\":[{\"data\":\"0011223344556677\",\"kek\":\"k\","
        "\"kek_kvn\":0}]}",
        "{\"aid\":\"" APP_AID "\",\"data\":[{\"data\":\"0011223344556677\",\"kek\":\"k\","
        "\"kek_kvn\":128}]}",
        "{\"aid\":\"" APP_AID "\",\"data\":[{\"data\":\"0011223344556677\",\"kek\":\"k\","
        "\"dek\":\"x\"}]}",
        /* owner must be a name */
        "{\"aid\":\"" APP_AID "\",\"owner\":7,\"data\":[\"00\"]}",
    };
    for (size_t i = 0; i < OTA_ARRAY_SIZE(bad); i++) {
        int rc = plat_build(TASK_OP_APP_PERSONALIZE, bad[i], &s, &err);
        if (rc != -EINVAL) {
            fail_msg("params %zu: %d (%s)", i, rc, err.msg);
        }
        assert_int_equal(s.n, 0);
    }
    /* the plain form still builds without any key source, owner included */
    assert_int_equal(plat_build(TASK_OP_APP_PERSONALIZE,
                                "{\"aid\":\"" APP_AID "\",\"owner\":\"p\",\"data\":[\"00\"]}", &s,
                                &err),
                     0);
    assert_int_equal(s.n, 2);
    plat_script_fini(&s);
    /* owner and callback_url (set by the task API on any task) pass every op, at the top only */
    assert_int_equal(plat_build(TASK_OP_APP_LOCK,
                                "{\"aid\":\"" APP_AID
                                "\",\"owner\":\"p\",\"callback_url\":\"http://x/\"}",
                                &s, &err),
                     0);
    plat_script_fini(&s);
    assert_int_equal(plat_build(TASK_OP_APP_PERSONALIZE,
                                "{\"aid\":\"" APP_AID
                                "\",\"data\":[{\"data\":\"0011223344556677\",\"kek\":\"k\","
                                "\"owner\":\"p\"}]}",
                                &s, &err),
                     -EINVAL);
}

/* The model's bookkeeping builds dry: a sensitive block needs no key there. */
static void test_model_dry_build(void **state)
{
    (void)state;
    struct ota_err err;
    struct plat_model m;
    plat_model_init(&m);
    const char *params =
        "{\"aid\":\"" APP_AID "\",\"data\":[{\"data\":\"0011223344556677\",\"kek\":\"k\"}]}";
    int b = plat_model_begin(&m, TASK_OP_APP_PERSONALIZE, params, &err);
    assert_int_not_equal(b, -ENOKEY);
    ota_err_clear(&err);
    struct plat_result r = {.n_done = 2};
    int rc = plat_model_apply_result(&m, TASK_OP_APP_PERSONALIZE, params, &r, &err);
    /* the app is unknown to this empty model (a state error at most): never a key error */
    assert_int_not_equal(rc, -ENOKEY);
    assert_int_not_equal(err.code, OTA_ERR_KEY);
}

/* ---- POST /v1/keks/{name} ---------------------------------------------------------------- */

struct api {
    struct ev_loop *loop;
    struct gw g;
    uint16_t port;
    char logpath[160];
    char *seen;
    size_t seen_len;
    char adm[GW_AUTH_TOKEN_LEN + 1], op[GW_AUTH_TOKEN_LEN + 1], plat[GW_AUTH_TOKEN_LEN + 1];
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

static void api_up(struct ts_keys_fx *f, struct api *a)
{
    struct ota_err err;
    memset(a, 0, sizeof(*a));
    a->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(a->loop);
    a->g.loop = a->loop;
    snprintf(a->logpath, sizeof(a->logpath), "%s/gw.log", f->dir);
    a->g.log = fopen(a->logpath, "a");
    assert_non_null(a->g.log);
    gw_conf_defaults(&a->g.conf);
    char edb[160];
    snprintf(edb, sizeof(edb), "%s/q.db", f->dir);
    snprintf(a->g.conf.db_path, sizeof(a->g.conf.db_path), "%s", edb);
    a->g.conf.plain_http = true;
    a->g.conf.log_level = GW_CONF_LOG_DEBUG;
    struct eng_conf c;
    eng_conf_defaults(&c);
    c.db_path = edb;
    c.durable = false;
    c.commit_interval_ms = 0;
    struct eng_hooks hooks = {0};
    assert_int_equal(eng_open(a->loop, &c, &hooks, &a->g.eng, &err), 0);
    struct eng_bearer_ops ops = {
        .submit = fb_submit, .release_acks = fb_noop, .discard_acks = fb_noop, .arg = a};
    eng_set_bearer(a->g.eng, &ops);
    open_local(f);
    a->g.keys = f->k;
    struct http_conf hc = {.bind_addr = "127.0.0.1", .port = 0, .idle_timeout_s = 5};
    assert_int_equal(http_server_new(a->loop, &hc, &a->g.http, &err), 0);
    a->port = http_server_port(a->g.http);
    assert_int_equal(gw_audit_start(&a->g, &err), 0);
    assert_int_equal(gw_auth_start(&a->g, &err), 0);
    assert_int_equal(gw_api_keys_routes(&a->g, &err), 0);
    int64_t id = 0;
    assert_int_equal(gw_auth_token_create(&a->g, "test", "adm", GW_ROLE_ADMIN, a->adm, &id, &err),
                     0);
    assert_int_equal(
        gw_auth_token_create(&a->g, "test", "oper", GW_ROLE_OPERATOR, a->op, &id, &err), 0);
    assert_int_equal(
        gw_auth_token_create(&a->g, "test", "plat-a", GW_ROLE_PLATFORM, a->plat, &id, &err), 0);
}

static void api_down(struct api *a)
{
    eng_close(a->g.eng);
    http_server_free(a->g.http);
    gw_auth_stop(&a->g);
    gw_audit_stop(&a->g);
    gw_conf_fini(&a->g.conf);
    fclose(a->g.log);
    ev_loop_destroy(a->loop);
    free(a->seen);
}

static int api_post(struct api *a, const char *tok, const char *path, json_t *body,
                    const char *code)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char h[200];
    snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok);
    struct ts_http_resp r;
    ts_http_do(a->loop, a->port, "POST", path, h, text, true, &r);
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

static void assert_absent(const char *text, const char *hex)
{
    char lower[128];
    size_t n = strlen(hex);
    assert_true(n < sizeof(lower));
    for (size_t i = 0; i <= n; i++) {
        lower[i] = (char)((hex[i] >= 'A' && hex[i] <= 'F') ? hex[i] + 32 : hex[i]);
    }
    if (strstr(text, hex) || strstr(text, lower)) {
        fail_msg("secret %s found", hex);
    }
}

static void test_api_kek_import(void **state)
{
    struct ts_keys_fx *f = *state;
    struct ota_err err;
    static const char *const tk_hex = "00112233445566778899AABBCCDDEEFF";
    ts_write_file(f->transport, tk_hex, 0600);
    struct api a;
    api_up(f, &a);
    struct ota_key tk, kek, dek;
    ts_mkkey(&tk, OTA_CIPHER_3DES2, tk_hex);
    ts_mkkey(&kek, OTA_CIPHER_3DES2, KEK_3DES2);
    ts_mkkey(&dek, OTA_CIPHER_3DES2, K_DEK);
    uint8_t wrapped[16], kcv[3];
    assert_int_equal(
        ota_crypto_cipher(f->cx, &tk, OTA_MODE_ECB, true, NULL, kek.bytes, 16, wrapped, &err), 0);
    assert_int_equal(ota_crypto_kcv(f->cx, &kek, kcv, &err), 0);
    char wh[33], kh[7], badk[7];
    hexs(wrapped, 16, wh);
    hexs(kcv, 3, kh);
    memcpy(badk, kh, sizeof(kh));
    badk[5] = badk[5] == '0' ? '1' : '0';
    uint8_t probe[16] = {0}, out[16];
#define BODY(kcvh)                                                                                 \
    json_pack("{s:i, s:s, s:s, s:s}", "kvn", 1, "cipher", "3des2", "key_wrapped", wh, "kcv", kcvh)

    /* roles: operator and platform refused, before anything is parsed or stored */
    assert_int_equal(api_post(&a, a.plat, "/v1/keks/plat-a", BODY(kh), NULL), 403);
    assert_int_equal(api_post(&a, a.op, "/v1/keks/plat-a", BODY(kh), NULL), 403);
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 0, NULL, &dek, probe, 16, out, &err),
                     -ENOENT);
    /* a wrong KCV: 400 bad-kcv, audited, nothing stored */
    int64_t seq0 = gw_audit_head_seq(&a.g);
    assert_int_equal(api_post(&a, a.adm, "/v1/keks/plat-a", BODY(badk), "bad-kcv"), 400);
    assert_true(gw_audit_head_seq(&a.g) > seq0);
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 0, NULL, &dek, probe, 16, out, &err),
                     -ENOENT);
    /* bad inputs */
    assert_int_equal(api_post(&a, a.adm, "/v1/keks/plat-a",
                              json_pack("{s:i, s:s, s:s, s:s}", "kvn", 1, "cipher", "des",
                                        "key_wrapped", wh, "kcv", kh),
                              "bad-cipher"),
                     400);
    assert_int_equal(
        api_post(&a, a.adm, "/v1/keks/plat-a",
                 json_pack("{s:i, s:s, s:s}", "kvn", 1, "cipher", "3des2", "key_wrapped", wh),
                 NULL),
        400);
    assert_int_equal(api_post(&a, a.adm, "/v1/keks/plat-a",
                              json_pack("{s:i, s:s, s:s, s:s}", "kvn", 0, "cipher", "3des2",
                                        "key_wrapped", wh, "kcv", kh),
                              "bad-kvn"),
                     400);
    assert_int_equal(api_post(&a, a.adm, "/v1/keks/plat-a",
                              json_pack("{s:i, s:s, s:s, s:s, s:s}", "kvn", 1, "cipher", "3des2",
                                        "key_wrapped", wh, "kcv", kh, "owner", "no/such"),
                              "bad-owner"),
                     400);
    assert_int_equal(api_post(&a, a.adm, "/v1/keks/a%20b", BODY(kh), "bad-name"), 400);
    assert_int_equal(api_post(&a, a.adm, "/v1/keks/plat-a",
                              json_pack("{s:i, s:s, s:s, s:s, s:s}", "kvn", 1, "cipher", "3des2",
                                        "key_wrapped", wh, "kcv", kh, "iv", "00"),
                              "unknown-field"),
                     400);
    /* clear without clear_import: 403, nothing stored */
    assert_int_equal(
        api_post(&a, a.adm, "/v1/keks/plat-a",
                 json_pack("{s:i, s:s, s:s}", "kvn", 1, "cipher", "3des2", "key", KEK_3DES2),
                 "clear-import-disabled"),
        403);
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 0, NULL, &dek, probe, 16, out, &err),
                     -ENOENT);
    /* the good one: 201, owner defaults to the name */
    assert_int_equal(api_post(&a, a.adm, "/v1/keks/plat-a", BODY(kh), NULL), 201);
    assert_non_null(strstr(a.seen, "\"owner\":\"plat-a\""));
    uint8_t in[16], want[16];
    uint8_t clear32[32];
    ts_hex(CLEAR32, clear32, sizeof(clear32));
    memcpy(probe, clear32, sizeof(probe));
    under_kek(EVP_des_ede_ecb(), KEK_3DES2, probe, 16, in);
    expected(EVP_des_ede_ecb(), KEK_3DES2, in, 16, want);
    assert_int_equal(gw_keys_translate(f->k, "plat-a", 1, "plat-a", &dek, in, 16, out, &err), 0);
    assert_memory_equal(out, want, 16);
    /* clear with clear_import = yes, for another owner */
    a.g.conf.keys_clear_import = true;
    assert_int_equal(api_post(&a, a.adm, "/v1/keks/shared",
                              json_pack("{s:i, s:s, s:s, s:s}", "kvn", 2, "cipher", "aes", "key",
                                        KEK_AES, "owner", "plat-z"),
                              NULL),
                     201);
    assert_int_equal(gw_keys_translate(f->k, "shared", 2, "plat-a", &dek, in, 16, out, &err),
                     -EACCES);
    assert_int_equal(gw_keys_translate(f->k, "shared", 2, "plat-z", &dek, in, 16, out, &err), 0);
#undef BODY

    /* no KEK (clear or wrapped), transport key or data in any answer or log line */
    fflush(a.g.log);
    FILE *lf = fopen(a.logpath, "r");
    assert_non_null(lf);
    static char logbuf[1 << 16];
    size_t ln = fread(logbuf, 1, sizeof(logbuf) - 1, lf);
    fclose(lf);
    logbuf[ln] = '\0';
    assert_non_null(strstr(logbuf, "kek imported"));
    assert_non_null(strstr(logbuf, "name=plat-a owner=plat-a kvn=1"));
    char clear_hex[33];
    hexs(probe, 16, clear_hex);
    const char *secrets[] = {KEK_3DES2, KEK_AES, wh, tk_hex, clear_hex};
    for (size_t i = 0; i < OTA_ARRAY_SIZE(secrets); i++) {
        assert_absent(logbuf, secrets[i]);
        assert_absent(a.seen, secrets[i]);
    }
    ota_key_wipe(&tk);
    ota_key_wipe(&kek);
    ota_key_wipe(&dek);
    api_down(&a);
}

/* ---- pkcs11 ------------------------------------------------------------------------------ */

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

/* RFC 3394 under an AES-256 key (what SoftHSM2 unwraps). */
static void wrap_kw(struct ota_crypto *cx, const uint8_t kek[32], const struct ota_key *k,
                    enum ota_cipher c, struct gw_keys_wrapped *w)
{
    struct ota_err err;
    memset(w, 0, sizeof(*w));
    w->wrap = GW_KEYS_WRAP_AES_KW;
    w->cipher = c;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    assert_non_null(x);
    EVP_CIPHER_CTX_set_flags(x, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    int a = 0, b = 0;
    assert_int_equal(EVP_EncryptInit_ex(x, EVP_aes_256_wrap(), NULL, kek, NULL), 1);
    assert_int_equal(EVP_EncryptUpdate(x, w->data, &a, k->bytes, k->len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(x, w->data + a, &b), 1);
    EVP_CIPHER_CTX_free(x);
    w->len = (size_t)(a + b);
    assert_int_equal(ota_crypto_kcv(cx, k, w->kcv, &err), 0);
}

static void test_pkcs11_translate(void **state)
{
    struct ts_keys_fx *f = *state;
    char pinfile[160];
    if (!p11_token(f, pinfile)) {
        TS_P11_SKIP(); /* fails instead under OTAGW_REQUIRE_P11=1 */
    }
    struct ota_err err;
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
    struct gw_keys_conf c = {.backend = GW_KEYS_PKCS11,
                             .db_path = f->db,
                             .p11_module = MODULE,
                             .p11_token = "t",
                             .p11_pin_file = pinfile,
                             .transport_label = "otagw-transport"};
    if (gw_keys_open_conf(&c, &f->k, NULL, &err) < 0) {
        fail_msg("open pkcs11: %s", err.msg);
    }
    /* the SD set (its DEK a token object) */
    struct gw_keys_sd v;
    memset(&v, 0, sizeof(v));
    v.aid_len = ts_hex(ISD_AID, v.aid, sizeof(v.aid));
    ts_mkkey(&v.enc, OTA_CIPHER_3DES2, K_ENC);
    ts_mkkey(&v.mac, OTA_CIPHER_3DES2, K_MAC);
    ts_mkkey(&v.dek, OTA_CIPHER_3DES2, K_DEK);
    struct gw_keys_wrapped w[3];
    wrap_kw(f->cx, tkb, &v.enc, OTA_CIPHER_3DES2, &w[0]);
    wrap_kw(f->cx, tkb, &v.mac, OTA_CIPHER_3DES2, &w[1]);
    wrap_kw(f->cx, tkb, &v.dek, OTA_CIPHER_3DES2, &w[2]);
    if (gw_keys_import_sd(f->k, "SE1", v.aid, v.aid_len, 1, w, &err) < 0) {
        fail_msg("import sd: %s", err.msg);
    }
    gw_keys_sd_wipe(&v);

    /* KEKs unwrapped inside the token: an AES-256 one and a 3DES one */
    struct ota_key ka, k3;
    ts_mkkey(&ka, OTA_CIPHER_AES, KEK_AES256);
    ts_mkkey(&k3, OTA_CIPHER_3DES2, KEK_3DES2);
    struct gw_keys_wrapped wa, w3;
    wrap_kw(f->cx, tkb, &ka, OTA_CIPHER_AES, &wa);
    wrap_kw(f->cx, tkb, &k3, OTA_CIPHER_3DES2, &w3);
    struct gw_keys_kek in = {.name = "plat-a", .owner = "plat-a", .kvn = 1};
    /* a wrong KCV: the token object is gone again, nothing recorded */
    wa.kcv[1] ^= 4;
    assert_int_equal(gw_keys_import_kek(f->k, &in, &wa, &err), -EINVAL);
    wa.kcv[1] ^= 4;
    if (gw_keys_import_kek(f->k, &in, &wa, &err) < 0) {
        fail_msg("import kek: %s", err.msg);
    }
    /* the same version again: the token keeps the first */
    assert_int_equal(gw_keys_import_kek(f->k, &in, &wa, &err), -EEXIST);
    in.name = "plat-3";
    in.owner = "plat-3";
    if (gw_keys_import_kek(f->k, &in, &w3, &err) < 0) {
        fail_msg("import kek 3des: %s", err.msg);
    }

    struct gw_keys_plat_arg pa = {.k = f->k, .seid = "SE1"};
    uint8_t aid[16], clear[32], inb[32], out[32], want[32];
    size_t aid_len = ts_hex(ISD_AID, aid, sizeof(aid));
    ts_hex(CLEAR32, clear, sizeof(clear));
    under_kek(EVP_aes_256_ecb(), KEK_AES256, clear, 32, inb);
    expected(EVP_aes_256_ecb(), KEK_AES256, inb, 32, want);
    int rc = gw_keys_plat_translate(&pa, "plat-a", 0, "plat-a", aid, aid_len, inb, 32, out, &err);
    if (rc < 0) {
        fail_msg("translate (pkcs11, AES KEK): %s", err.msg);
    }
    assert_memory_equal(out, want, 32);
    under_kek(EVP_des_ede_ecb(), KEK_3DES2, clear, 24, inb);
    expected(EVP_des_ede_ecb(), KEK_3DES2, inb, 24, want);
    rc = gw_keys_plat_translate(&pa, "plat-3", 1, NULL, aid, aid_len, inb, 24, out, &err);
    if (rc < 0) {
        fail_msg("translate (pkcs11, 3DES KEK): %s", err.msg);
    }
    assert_memory_equal(out, want, 24);
    /* owner and alignment rules hold in this backend too */
    assert_int_equal(
        gw_keys_plat_translate(&pa, "plat-a", 0, "plat-3", aid, aid_len, inb, 32, out, &err),
        -EACCES);
    assert_int_equal(
        gw_keys_plat_translate(&pa, "plat-a", 0, "plat-a", aid, aid_len, inb, 24, out, &err),
        -EINVAL);
    /* and through the builder */
    struct plat_keys_cb kcb = {.translate = gw_keys_plat_translate, .arg = &pa};
    struct plat_ctx ctx = {.keys = &kcb};
    char params[256], ih[65];
    hexs(inb, 24, ih);
    snprintf(
        params, sizeof(params),
        "{\"aid\":\"%s\",\"owner\":\"plat-3\",\"data\":[{\"data\":\"%s\",\"kek\":\"plat-3\"}]}",
        APP_AID, ih);
    struct plat_script s = {0};
    assert_int_equal(plat_build_ex(TASK_OP_APP_PERSONALIZE, params, &ctx, &s, &err), 0);
    assert_memory_equal(s.apdus[1].b + 5, want, 24);
    plat_script_fini(&s);
    ota_key_wipe(&tk);
    ota_key_wipe(&ka);
    ota_key_wipe(&k3);
}

/* ---- push + SCP02: the session DEK ------------------------------------------------------ */

#define WSEID "SE-W1"
#define WKVN 0x21

struct card {
    struct ota_scp02_card sc;
    bool sc_up;
    struct sim_gp_card gp;
    uint8_t last_plain[OTA_APDU_MAX_LEN];
    size_t last_plain_len;
};

struct wfx {
    struct ev_loop *loop;
    struct gw g;
    uint16_t port;
    struct bearer_msg sent[4];
    unsigned n_sent, n_msgid;
    struct card card;
};

static int wb_submit(void *arg, const struct bearer_msg *m, struct ota_err *err)
{
    (void)err;
    struct wfx *w = arg;
    assert_true(w->n_sent < OTA_ARRAY_SIZE(w->sent));
    w->sent[w->n_sent++] = *m;
    return 0;
}

static void wal_up(struct ts_keys_fx *f, struct wfx *w)
{
    struct ota_err err;
    memset(w, 0, sizeof(*w));
    w->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(w->loop);
    w->g.loop = w->loop;
    w->g.log = stderr;
    w->g.conf.log_level = GW_CONF_LOG_WARNING;
    w->g.conf.scp02_level = OTA_SCP02_SL_CMAC_CDEC;
    struct eng_conf c;
    eng_conf_defaults(&c);
    char edb[160];
    snprintf(edb, sizeof(edb), "%s/q.db", f->dir);
    c.db_path = edb;
    c.durable = false;
    c.commit_interval_ms = 0;
    c.push_wait_pull = true;
    w->g.conf.eng = c;
    struct eng_hooks hooks = {0};
    assert_int_equal(eng_open(w->loop, &c, &hooks, &w->g.eng, &err), 0);
    struct eng_bearer_ops ops = {
        .submit = wb_submit, .release_acks = fb_noop, .discard_acks = fb_noop, .arg = w};
    eng_set_bearer(w->g.eng, &ops);
    open_local(f);
    w->g.keys = f->k;
    struct http_conf hc = {.bind_addr = "127.0.0.1", .port = 0, .idle_timeout_s = 5};
    assert_int_equal(http_server_new(w->loop, &hc, &w->g.http, &err), 0);
    w->port = http_server_port(w->g.http);
    assert_int_equal(gw_wallet_start(&w->g, &err), 0);
    assert_int_equal(eng_se_register(w->g.eng, WSEID, "8613800000001", "b1", &err), 0);
    assert_int_equal(eng_flush(w->g.eng, &err), 0);
    struct gw_keys_sd sd;
    memset(&sd, 0, sizeof(sd));
    sd.aid_len = ts_hex(ISD_AID, sd.aid, sizeof(sd.aid));
    sd.kvn = WKVN;
    ts_mkkey(&sd.enc, OTA_CIPHER_3DES2, K_ENC);
    ts_mkkey(&sd.mac, OTA_CIPHER_3DES2, K_MAC);
    ts_mkkey(&sd.dek, OTA_CIPHER_3DES2, K_DEK);
    assert_int_equal(gw_keys_put_sd(f->k, WSEID, &sd, &err), 0);
    gw_keys_sd_wipe(&sd);
    sim_gp_init(&w->card.gp, 100000);
}

static void wal_down(struct wfx *w)
{
    gw_wallet_stop(&w->g);
    eng_close(w->g.eng);
    http_server_free(w->g.http);
    if (w->card.sc_up) {
        ota_scp02_card_fini(&w->card.sc);
    }
    ev_loop_destroy(w->loop);
}

/* A push task driven to delivered; serial_hex gets the serial its SMS carries. */
static int64_t wal_push(struct wfx *w, const char *params, char serial_hex[33])
{
    struct eng_task_spec s = {
        .seid = WSEID, .op = TASK_OP_APP_PERSONALIZE, .channel = TASK_CH_PUSH, .params = params};
    struct ota_err err;
    int64_t id = 0;
    assert_int_equal(eng_submit(w->g.eng, &s, NULL, NULL, &id, &err), 0);
    unsigned before = w->n_sent;
    for (int i = 0; i < 200 && w->n_sent == before; i++) {
        ts_http_pump(w->loop);
    }
    assert_int_equal(w->n_sent, before + 1);
    const struct bearer_msg *m = &w->sent[before];
    struct ota_push p;
    assert_int_equal(ota_push_decode(m->ud, m->ud_len, &p, &err), 0);
    for (size_t i = 0; i < 16; i++) {
        snprintf(serial_hex + 2 * i, 3, "%02x", p.serial[i]); /* the pull wants lower case */
    }
    struct bearer_submit_result r = {.token = m->token, .status = BEARER_SUBMIT_OK};
    snprintf(r.msg_id, sizeof(r.msg_id), "m%u", ++w->n_msgid);
    eng_on_submit_result(w->g.eng, &r);
    struct bearer_dlr d = {.state = BEARER_DLR_DELIVERED, .final = true};
    snprintf(d.msg_id, sizeof(d.msg_id), "%s", r.msg_id);
    assert_int_equal(eng_on_dlr(w->g.eng, &d), BEARER_ACK_LATER);
    assert_int_equal(eng_flush(w->g.eng, &err), 0);
    return id;
}

/* The card: SCP02 card end in front of the simulator's GP model. */
static size_t card_answer(struct card *c, struct ota_crypto *cx, const uint8_t *capdu, size_t len,
                          uint8_t *out)
{
    struct ota_err err;
    uint8_t plain[OTA_APDU_MAX_LEN];
    if (len >= 2 && capdu[0] == 0x80 && capdu[1] == OTA_SCP02_INS_INIT_UPDATE) {
        if (c->sc_up) {
            ota_scp02_card_fini(&c->sc);
        }
        struct ota_scp02_keys k;
        uint8_t e[16], m[16], d[16];
        ts_hex(K_ENC, e, 16);
        ts_hex(K_MAC, m, 16);
        ts_hex(K_DEK, d, 16);
        assert_int_equal(ota_scp02_keys_set(&k, e, 16, m, 16, d, 16, WKVN, &err), 0);
        static const uint8_t cc[6] = {1, 2, 3, 4, 5, 6};
        assert_int_equal(ota_scp02_card_init(&c->sc, cx, &k, NULL, 0x0007, cc, &err), 0);
        ota_scp02_keys_wipe(&k);
        c->sc_up = true;
        int n = ota_scp02_card_on_init_update(&c->sc, capdu, len, out, 64, &err);
        assert_true(n > 0);
        return (size_t)n;
    }
    if (len >= 2 && capdu[0] == 0x84 && capdu[1] == OTA_SCP02_INS_EXT_AUTH) {
        int rc = ota_scp02_card_on_ext_auth(&c->sc, capdu, len, &err);
        out[0] = rc == 0 ? 0x90 : 0x63;
        out[1] = 0x00;
        return 2;
    }
    size_t n = len;
    if (capdu[0] & OTA_SCP02_CLA_SM) {
        int k = ota_scp02_card_unwrap(&c->sc, capdu, len, plain, sizeof(plain), &err);
        if (k < 0) {
            fail_msg("card unwrap: %s", err.msg);
        }
        n = (size_t)k;
    } else {
        memcpy(plain, capdu, len);
    }
    struct ota_apdu a;
    size_t rl = 0;
    assert_int_equal(ota_apdu_parse(plain, n, &a, &err), 0);
    memcpy(c->last_plain, plain, n);
    c->last_plain_len = n;
    uint16_t sw = sim_gp_run(&c->gp, &a, out, 256, &rl);
    out[rl] = (uint8_t)(sw >> 8);
    out[rl + 1] = (uint8_t)sw;
    return rl + 2;
}

/* Pull, then relay every C-APDU to the card until the session ends. */
static void wal_session(struct ts_keys_fx *f, struct wfx *w, const char *serial)
{
    char body[800], path[96];
    snprintf(body, sizeof(body), "{\"seid\":\"%s\",\"serial\":\"%s\"}", WSEID, serial);
    struct ts_http_resp r;
    ts_http_do(w->loop, w->port, "POST", "/v1/wallet/pull", NULL, body, true, &r);
    assert_int_equal(r.status, 200);
    for (int rounds = 0; r.status == 200 && !json_is_true(json_object_get(r.json, "done"));
         rounds++) {
        assert_true(rounds < 50);
        json_t *apdus = json_object_get(r.json, "apdus");
        assert_int_equal(json_array_size(apdus), 1);
        uint8_t c[300], rsp[300];
        size_t n = ts_hex(json_string_value(json_array_get(apdus, 0)), c, sizeof(c));
        size_t rl = card_answer(&w->card, f->cx, c, n, rsp);
        char rh[700];
        hexs(rsp, rl, rh);
        snprintf(path, sizeof(path), "/v1/wallet/sessions/%s",
                 json_string_value(json_object_get(r.json, "session")));
        snprintf(body, sizeof(body), "{\"responses\":[\"%s\"]}", rh);
        ts_http_resp_free(&r);
        ts_http_do(w->loop, w->port, "POST", path, NULL, body, true, &r);
    }
    ts_http_resp_free(&r);
}

static void wal_final(struct wfx *w, int64_t id, enum task_state st, enum task_reason why)
{
    struct eng_task_view v;
    struct ota_err err;
    assert_int_equal(eng_task_get(w->g.eng, id, &v, &err), 0);
    if (v.state != st || v.reason != why) {
        fail_msg("task %lld: %s/%s (%s)", (long long)id, task_state_name(v.state),
                 task_reason_name(v.reason), v.reason_text ? v.reason_text : "-");
    }
}

/*
 * app-personalize over push + SCP02 (C-MAC + C-DECRYPTION): the sensitive
 * block reaches the card under this session's DEK, which the card end
 * decrypts (here with plain EVP) back to the platform's clear data.
 */
static void test_wallet_session_dek(void **state)
{
    struct ts_keys_fx *f = *state;
    struct wfx w;
    wal_up(f, &w);
    put_kek(f, "plat-a", "plat-a", 1, OTA_CIPHER_AES, KEK_AES256);
    uint8_t aid[16];
    size_t aid_len = ts_hex(APP_AID, aid, sizeof(aid));
    struct ota_err err;
    assert_int_equal(sim_gp_add_app(&w.card.gp, aid, aid_len, OTA_GP_APP_INSTALLED, false, &err),
                     0);
    uint8_t clear[32], in[32];
    ts_hex(CLEAR32, clear, sizeof(clear));
    under_kek(EVP_aes_256_ecb(), KEK_AES256, clear, 32, in);
    char ih[65], params[300], serial[33];
    hexs(in, 32, ih);
    snprintf(params, sizeof(params),
             "{\"aid\":\"%s\",\"owner\":\"plat-a\",\"data\":[\"0102\",{\"data\":\"%s\","
             "\"kek\":\"plat-a\"}]}",
             APP_AID, ih);
    int64_t id = wal_push(&w, params, serial);
    wal_session(f, &w, serial);
    wal_final(&w, id, TASK_DONE, TASK_R_NONE);
    /* the last STORE DATA: P1 80 | 60, block 1, the data under the session DEK */
    const uint8_t *sd = w.card.last_plain;
    assert_int_equal(sd[1], 0xE2);
    assert_int_equal(sd[2], OTA_GP_STORE_LAST | OTA_GP_STORE_ENC_ENCRYPTED);
    assert_int_equal(sd[3], 1);
    assert_int_equal(sd[4], 32);
    assert_true(w.card.sc.skeys.dek.len == 16 && !ota_key_is_ext(&w.card.sc.skeys.dek));
    char sdek[33];
    hexs(w.card.sc.skeys.dek.bytes, 16, sdek);
    uint8_t got[32];
    ref_ecb(EVP_des_ede_ecb(), sdek, false, sd + 5, 32, got);
    assert_memory_equal(got, clear, 32);
    /* under the static DEK it would not decrypt: the session DEK was used */
    ref_ecb(EVP_des_ede_ecb(), K_DEK, false, sd + 5, 32, got);
    assert_memory_not_equal(got, clear, 32);

    /* another platform's task naming that KEK: fails to build, nothing reaches the card */
    snprintf(
        params, sizeof(params),
        "{\"aid\":\"%s\",\"owner\":\"plat-b\",\"data\":[{\"data\":\"%s\",\"kek\":\"plat-a\"}]}",
        APP_AID, ih);
    id = wal_push(&w, params, serial);
    memset(w.card.last_plain, 0, sizeof(w.card.last_plain));
    wal_session(f, &w, serial);
    wal_final(&w, id, TASK_FAILED, TASK_R_BUILD);
    assert_int_equal(w.card.last_plain[1], 0);
    wal_down(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_translate_matches_openssl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_translate_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrapped_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_store_data, setup, teardown),
        cmocka_unit_test(test_params_refused),
        cmocka_unit_test(test_model_dry_build),
        cmocka_unit_test_setup_teardown(test_api_kek_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pkcs11_translate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wallet_session_dek, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
