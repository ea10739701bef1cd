/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of gateway/p11.c, the key store's PKCS#11 backend, against a SoftHSM2
 * token this test creates in a temporary directory (tests/support/ts_p11.h).
 * Skipped only when the SoftHSM2 module is not installed (failed instead
 * under OTAGW_REQUIRE_P11=1).
 *
 * What is proved: open/login errors; import, lookup, generate, destroy;
 * token keys cannot be read (CKR_ATTRIBUTE_SENSITIVE); every ota_crypto
 * primitive on a token key equals the raw-key result (3DES2, 3DES3,
 * AES-128/192/256); transport import with right and wrong KCV (the object
 * is gone after a refusal); a whole SCP02 session with keys derived in the
 * token gives the same bytes as with raw keys and the card accepts them;
 * derived session objects are destroyed by the session's wipe; PUT KEY key
 * data under a token DEK equal the raw result.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "gateway/p11.h"
#include "ota/ota.h"
#include "tests/support/ts_p11.h"
#include "tests/support/tsupport.h"

#define MODULE TS_P11_MODULE
#define TOKEN "otagw-test"
#define PIN "1234"

static char dir[64];
static bool have_module;
static struct p11 *p;
static struct ota_crypto *cx;

static int group_setup(void **state)
{
    struct ota_err e;

    (void)state;
    if (ota_crypto_new(&cx, NULL) < 0) {
        return -1;
    }
    int rc = ts_p11_token(TOKEN, PIN, dir, sizeof(dir));
    if (rc == 0) {
        return 0; /* no module: every test skips (or fails, TS_P11_SKIP) */
    }
    if (rc < 0) {
        fprintf(stderr, "ts_p11_token: %s\n", strerror(-rc));
        return -1;
    }
    struct p11_conf c = {.module = MODULE, .token_label = TOKEN, .pin = PIN};
    if (p11_open(&c, &p, &e) < 0) {
        fprintf(stderr, "p11_open: %s\n", e.msg);
        return -1;
    }
    have_module = true;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    p11_close(p);
    ota_crypto_free(cx);
    if (dir[0] && ts_p11_token_rm(dir) < 0) {
        return -1;
    }
    return 0;
}

#define NEED_MODULE()                                                                              \
    do {                                                                                           \
        if (!have_module) {                                                                        \
            TS_P11_SKIP();                                                                         \
        }                                                                                          \
    } while (0)

/* Import raw k under label and return the token reference. */
static void import(const struct ota_key *k, const char *label, unsigned flags, struct ota_key *out)
{
    struct ota_err e;
    int rc = p11_import_clear_ex(p, k, label, flags, &e);
    if (rc < 0) {
        fail_msg("import %s: %s", label, e.msg);
    }
    assert_int_equal(p11_key(p, label, out, &e), 0);
    assert_true(ota_key_is_ext(out));
    assert_int_equal(out->cipher, k->cipher);
    assert_int_equal(out->len, k->len);
    assert_true(ts_all_zero(out->bytes, sizeof(out->bytes)));
}

static void test_open_errors(void **state)
{
    struct p11 *q = NULL;
    struct ota_err e;
    (void)state;
    NEED_MODULE();

    struct p11_conf bad_pin = {.module = MODULE, .token_label = TOKEN, .pin = "9999"};
    /* Login state is per process and p is logged in: a second session in this
     * process would inherit it, so probe the PIN from a child process. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        p11_close(p);
        int rc = p11_open(&bad_pin, &q, &e);
        _exit(rc == -EACCES && strstr(e.msg, "CKR_PIN_INCORRECT") ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    struct p11_conf no_tok = {.module = MODULE, .token_label = "no-such-token", .pin = PIN};
    assert_int_equal(p11_open(&no_tok, &q, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "no-such-token"));
    assert_null(q);

    struct p11_conf no_mod = {
        .module = "/nonexistent/libnone.so", .token_label = TOKEN, .pin = PIN};
    assert_int_equal(p11_open(&no_mod, &q, &e), -ENOENT);
    assert_int_equal(p11_open(NULL, &q, &e), -EINVAL);

    /* A second handle on the same token works beside the first and closes cleanly. */
    struct p11_conf good = {.module = MODULE, .token_label = TOKEN, .pin = PIN};
    assert_int_equal(p11_open(&good, &q, &e), 0);
    p11_close(q);
    p11_close(NULL);
}

static void test_import_lookup_destroy(void **state)
{
    struct ota_key raw, tk, des;
    struct ota_err e;
    unsigned long rv = 0;
    (void)state;
    NEED_MODULE();

    ts_mkkey(&raw, OTA_CIPHER_3DES2, "404142434445464748494a4b4c4d4e4f");
    /* no companion unless asked: it would be a single-DES oracle on K1 */
    import(&raw, "ild-nok1", 0, &tk);
    assert_int_equal(tk.ext_k1, 0);
    assert_int_equal(p11_key(p, "ild-nok1#k1", &tk, &e), -ENOENT);
    uint8_t rm[8], blk[16] = {0};
    assert_int_equal(p11_key(p, "ild-nok1", &tk, &e), 0);
    assert_true(ota_crypto_retail_mac(cx, &tk, NULL, blk, 16, rm, &e) < 0);
    assert_int_equal(p11_destroy(p, "ild-nok1", &e), 0);

    import(&raw, "ild-a", P11_F_K1, &tk);
    assert_int_not_equal(tk.ext_k1, 0);
    assert_int_equal(p11_import_clear(p, &raw, "ild-a", &e), -EEXIST);
    assert_int_equal(p11_key(p, "ild-missing", &tk, &e), -ENOENT);
    assert_int_equal(p11_key(p, "", &tk, &e), -EINVAL);

    /* The value cannot be read back: sensitive, and p11 never asks. */
    assert_int_equal(p11_key(p, "ild-a", &tk, &e), 0);
    assert_int_equal(p11_attr_value_rv(p, &tk, &rv), 0);
    assert_int_equal(rv, 0x11 /* CKR_ATTRIBUTE_SENSITIVE */);

    /* Wiping a borrowed reference releases nothing. */
    ota_key_wipe(&tk);
    assert_int_equal(p11_key(p, "ild-a", &tk, &e), 0);
    uint8_t kcv[3];
    assert_int_equal(ota_crypto_kcv(cx, &tk, kcv, &e), 0);
    ts_assert_bytes(kcv, 3, "8baf47");

    assert_int_equal(p11_destroy(p, "ild-a", &e), 0);
    assert_int_equal(p11_destroy(p, "ild-a", &e), -ENOENT);
    assert_int_equal(p11_key(p, "ild-a", &tk, &e), -ENOENT);
    assert_int_equal(p11_key(p, "ild-a#k1", &tk, &e), -ENOENT); /* companion gone too */

    /*
     * Single DES (old SIMs' KIc/KID) lives as a K|K 3DES2 object: the token
     * reference says DES, 8 octets, and computes exactly like the raw key.
     * It is never generated, and never imported wrapped (K|K cannot be built
     * in the token from one wrapped key).
     */
    struct ota_key tdes;
    uint8_t in[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, a[16], b[16], mk[8], mt[8], kd[3];
    ts_mkkey(&des, OTA_CIPHER_DES, "0123456789abcdef");
    assert_int_equal(p11_import_clear(p, &des, "ild-des", &e), 0);
    assert_int_equal(p11_key(p, "ild-des", &tdes, &e), 0);
    assert_int_equal(tdes.cipher, OTA_CIPHER_DES);
    assert_int_equal(tdes.len, 8);
    assert_int_equal(ota_crypto_cipher(cx, &des, OTA_MODE_CBC, true, NULL, in, 16, a, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &tdes, OTA_MODE_CBC, true, NULL, in, 16, b, &e), 0);
    assert_memory_equal(a, b, 16);
    assert_int_equal(ota_crypto_cbc_mac(cx, &des, NULL, in, 13, mk, &e), 0);
    assert_int_equal(ota_crypto_cbc_mac(cx, &tdes, NULL, in, 13, mt, &e), 0);
    assert_memory_equal(mk, mt, 8);
    assert_int_equal(ota_crypto_kcv(cx, &tdes, kd, &e), 0);
    ts_assert_bytes(kd, 3, "d5d44f"); /* DES(0123456789abcdef, 0^8) = d5d44ff720683d0d */
    assert_int_equal(p11_destroy(p, "ild-des", &e), 0);
    assert_int_equal(p11_generate(p, OTA_CIPHER_DES, 8, "ild-des", &e), -EOPNOTSUPP);
    assert_non_null(strstr(e.msg, "single DES"));
    /* A token reference is not a raw key to import. */
    assert_int_equal(p11_import_clear(p, &tk, "ild-b", &e), -EINVAL);
}

/* Every primitive on the token copy of raw equals the raw result. */
static void same_results(const struct ota_key *raw, const char *label)
{
    struct ota_key tk;
    struct ota_err e;
    uint8_t in[64], iv[16], a[64], b[64];
    size_t bl = ota_cipher_block_len(raw->cipher), na = 0, nb = 0;

    for (size_t i = 0; i < sizeof(in); i++) {
        in[i] = (uint8_t)(i * 7 + 3);
    }
    for (size_t i = 0; i < sizeof(iv); i++) {
        iv[i] = (uint8_t)(0xF0 - i);
    }
    import(raw, label, P11_F_K1, &tk); /* the retail MAC below runs on the key itself */
    for (int mode = OTA_MODE_CBC; mode <= OTA_MODE_ECB; mode++) {
        for (int enc = 0; enc <= 1; enc++) {
            for (int use_iv = 0; use_iv <= 1; use_iv++) {
                assert_int_equal(ota_crypto_cipher(cx, raw, (enum ota_mode)mode, enc,
                                                   use_iv ? iv : NULL, in, 48, a, &e),
                                 0);
                assert_int_equal(ota_crypto_cipher(cx, &tk, (enum ota_mode)mode, enc,
                                                   use_iv ? iv : NULL, in, 48, b, &e),
                                 0);
                assert_memory_equal(a, b, 48);
            }
        }
    }
    /* in place, as the SCP80 and SCP02 codecs call it */
    memcpy(b, in, 32);
    assert_int_equal(ota_crypto_cipher(cx, &tk, OTA_MODE_CBC, true, NULL, b, 32, b, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, raw, OTA_MODE_CBC, true, NULL, in, 32, a, &e), 0);
    assert_memory_equal(a, b, 32);
    /* unaligned input is refused before the token sees it */
    assert_int_equal(ota_crypto_cipher(cx, &tk, OTA_MODE_ECB, true, NULL, in, bl + 1, b, &e),
                     -EINVAL);
    assert_int_equal(e.code, OTA_ERR_PADDING);

    uint8_t ka[3], kb[3];
    assert_int_equal(ota_crypto_kcv(cx, raw, ka, &e), 0);
    assert_int_equal(ota_crypto_kcv(cx, &tk, kb, &e), 0);
    assert_memory_equal(ka, kb, 3);

    if (bl == 8) {
        for (size_t len = 0; len <= 21; len += 7) {
            assert_int_equal(ota_crypto_cbc_mac(cx, raw, iv, in, len, a, &e), 0);
            assert_int_equal(ota_crypto_cbc_mac(cx, &tk, iv, in, len, b, &e), 0);
            assert_memory_equal(a, b, 8);
        }
    }
    int ra = ota_crypto_cmac(cx, raw, in, 37, a, &na, &e);
    int rb = ota_crypto_cmac(cx, &tk, in, 37, b, &nb, &e);
    assert_int_equal(ra, 0);
    if (raw->cipher == OTA_CIPHER_AES || rb == 0) {
        assert_int_equal(rb, 0);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
    } else {
        assert_int_equal(rb, -EOPNOTSUPP); /* a token without CKM_DES3_CMAC says so */
    }
    if (raw->cipher == OTA_CIPHER_3DES2) {
        for (size_t len = 8; len <= 32; len += 8) {
            assert_int_equal(ota_crypto_retail_mac(cx, raw, iv, in, len, a, &e), 0);
            assert_int_equal(ota_crypto_retail_mac(cx, &tk, iv, in, len, b, &e), 0);
            assert_memory_equal(a, b, 8);
        }
        assert_int_equal(ota_crypto_des_k1_ecb(cx, raw, in, a, &e), 0);
        assert_int_equal(ota_crypto_des_k1_ecb(cx, &tk, in, b, &e), 0);
        assert_memory_equal(a, b, 8);
        /* without its companion a token 3DES2 key refuses single DES, never guesses */
        struct ota_key nok1 = tk;
        nok1.ext_k1 = 0;
        assert_int_equal(ota_crypto_des_k1_ecb(cx, &nok1, in, b, &e), -ENOKEY);
    }
    /* derivation in ECB and CBC: the derived token key encrypts like the raw-derived one */
    if (raw->cipher != OTA_CIPHER_AES || raw->len == 16) {
        enum ota_cipher oc = bl == 8 ? OTA_CIPHER_3DES2 : OTA_CIPHER_AES;
        for (int mode = OTA_MODE_CBC; mode <= OTA_MODE_ECB; mode++) {
            struct ota_key da, db;
            assert_int_equal(ota_crypto_derive(cx, raw, (enum ota_mode)mode, in, 16, oc, &da, &e),
                             0);
            assert_int_equal(ota_crypto_derive(cx, &tk, (enum ota_mode)mode, in, 16, oc, &db, &e),
                             0);
            assert_int_equal(db.owned, OTA_KEY_OWNED);
            assert_int_equal(ota_crypto_cipher(cx, &da, OTA_MODE_CBC, true, NULL, in, 32, a, &e),
                             0);
            assert_int_equal(ota_crypto_cipher(cx, &db, OTA_MODE_CBC, true, NULL, in, 32, b, &e),
                             0);
            assert_memory_equal(a, b, 32);
            unsigned long rv = 0;
            assert_int_equal(p11_attr_value_rv(p, &db, &rv), 0);
            assert_int_equal(rv, 0x11 /* CKR_ATTRIBUTE_SENSITIVE */);
            /* the owner's wipe destroys the session object */
            struct ota_key gone;
            ota_key_borrow(&gone, &db);
            ota_key_wipe(&db);
            assert_int_equal(ota_crypto_cipher(cx, &gone, OTA_MODE_ECB, true, NULL, in, bl, b, &e),
                             -ENOENT);
            ota_key_wipe(&da);
        }
    }
    assert_int_equal(p11_destroy(p, label, &e), 0);
}

static void test_primitives_equal(void **state)
{
    struct ota_key k;
    (void)state;
    NEED_MODULE();

    ts_mkkey(&k, OTA_CIPHER_3DES2, "0123456789abcdeffedcba9876543210");
    same_results(&k, "prim-3des2");
    ts_mkkey(&k, OTA_CIPHER_3DES3, "0123456789abcdeffedcba987654321089abcdef01234567");
    same_results(&k, "prim-3des3");
    ts_mkkey(&k, OTA_CIPHER_AES, "2b7e151628aed2a6abf7158809cf4f3c");
    same_results(&k, "prim-aes128");
    ts_mkkey(&k, OTA_CIPHER_AES, "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b");
    same_results(&k, "prim-aes192");
    ts_mkkey(&k, OTA_CIPHER_AES,
             "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
    same_results(&k, "prim-aes256");
    ota_key_wipe(&k);
}

static void test_generate(void **state)
{
    struct ota_key k;
    struct ota_err e;
    uint8_t in[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    uint8_t a[16], b[16], x[8];
    (void)state;
    NEED_MODULE();

    assert_int_equal(p11_generate_ex(p, OTA_CIPHER_3DES2, 16, "gen-d2", P11_F_K1, &e), 0);
    assert_int_equal(p11_generate(p, OTA_CIPHER_3DES2, 16, "gen-d2", &e), -EEXIST);
    assert_int_equal(p11_key(p, "gen-d2", &k, &e), 0);
    assert_int_equal(k.cipher, OTA_CIPHER_3DES2);
    assert_int_not_equal(k.ext_k1, 0);
    /* The companion belongs to this key: one-block retail MAC = 3DES ECB, and a
     * two-block one = 3DES(DES_K1(B1) ^ B2). */
    assert_int_equal(ota_crypto_retail_mac(cx, &k, NULL, in, 8, a, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &k, OTA_MODE_ECB, true, NULL, in, 8, b, &e), 0);
    assert_memory_equal(a, b, 8);
    assert_int_equal(ota_crypto_retail_mac(cx, &k, NULL, in, 16, a, &e), 0);
    assert_int_equal(ota_crypto_des_k1_ecb(cx, &k, in, x, &e), 0);
    for (int i = 0; i < 8; i++) {
        x[i] ^= in[8 + i];
    }
    assert_int_equal(ota_crypto_cipher(cx, &k, OTA_MODE_ECB, true, NULL, x, 8, b, &e), 0);
    assert_memory_equal(a, b, 8);
    unsigned long rv = 0;
    assert_int_equal(p11_attr_value_rv(p, &k, &rv), 0);
    assert_int_equal(rv, 0x11);

    assert_int_equal(p11_generate(p, OTA_CIPHER_AES, 32, "gen-aes", &e), 0);
    assert_int_equal(p11_key(p, "gen-aes", &k, &e), 0);
    assert_int_equal(k.len, 32);
    assert_int_equal(ota_crypto_cipher(cx, &k, OTA_MODE_CBC, true, NULL, in, 16, a, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &k, OTA_MODE_CBC, false, NULL, a, 16, b, &e), 0);
    assert_memory_equal(b, in, 16);
    assert_int_equal(p11_generate(p, OTA_CIPHER_3DES3, 24, "gen-d3", &e), 0);
    assert_int_equal(p11_generate(p, OTA_CIPHER_AES, 20, "gen-bad", &e), -EINVAL);
    assert_int_equal(p11_destroy(p, "gen-d2", &e), 0);
    assert_int_equal(p11_destroy(p, "gen-aes", &e), 0);
    assert_int_equal(p11_destroy(p, "gen-d3", &e), 0);
}

/* RFC 3394 wrap of key under kek with OpenSSL, the transport custodian's side. */
static size_t kw_wrap(const struct ota_key *kek, const struct ota_key *key, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    EVP_CIPHER *ciph = EVP_CIPHER_fetch(NULL, "AES-128-WRAP", NULL);
    int n = 0, fin = 0;

    assert_non_null(ctx);
    assert_non_null(ciph);
    assert_int_equal(EVP_EncryptInit_ex2(ctx, ciph, kek->bytes, NULL, NULL), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, out, &n, key->bytes, key->len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, out + n, &fin), 1);
    EVP_CIPHER_free(ciph);
    EVP_CIPHER_CTX_free(ctx);
    return (size_t)(n + fin);
}

static void test_import_wrapped(void **state)
{
    struct ota_key kek, d2, tk, ttk;
    struct ota_err e;
    uint8_t w[48], kcv[3], bad[3], a[16], b[16], in[16] = {0x55};
    (void)state;
    NEED_MODULE();

    ts_mkkey(&kek, OTA_CIPHER_AES, "000102030405060708090a0b0c0d0e0f");
    /* a transport key that also wraps: it stands for the DEK in the P11_F_WRAPPABLE case below */
    import(&kek, "imp-tk", P11_U_TRANSPORT | P11_U_WRAP, &ttk);
    ts_mkkey(&d2, OTA_CIPHER_3DES2, "00112233445566778899aabbccddeeff");
    size_t wl = kw_wrap(&kek, &d2, w);
    assert_int_equal(wl, 24);
    assert_int_equal(ota_crypto_kcv(cx, &d2, kcv, NULL), 0);

    /* wrong KCV: refused and the object does not stay */
    memcpy(bad, kcv, 3);
    bad[2] ^= 1;
    assert_int_equal(p11_import_wrapped_kw(p, "imp-tk", OTA_CIPHER_3DES2, w, wl, bad, "imp-k", &e),
                     -EINVAL);
    assert_int_equal(e.code, OTA_ERR_BAD_CC);
    assert_int_equal(p11_key(p, "imp-k", &tk, &e), -ENOENT);
    /* tampered blob: the token's RFC 3394 integrity check refuses it */
    w[5] ^= 0x40;
    assert_true(p11_import_wrapped_kw(p, "imp-tk", OTA_CIPHER_3DES2, w, wl, kcv, "imp-k", &e) < 0);
    w[5] ^= 0x40;
    assert_int_equal(p11_key(p, "imp-k", &tk, &e), -ENOENT);
    /* unknown transport key, bad length */
    assert_int_equal(
        p11_import_wrapped_kw(p, "imp-none", OTA_CIPHER_3DES2, w, wl, kcv, "imp-k", &e), -ENOENT);
    assert_int_equal(p11_import_wrapped_kw(p, "imp-tk", OTA_CIPHER_3DES2, w, 20, kcv, "imp-k", &e),
                     -EINVAL);
    /* right KCV: imported, and it computes like the raw key */
    assert_int_equal(p11_import_wrapped_kw(p, "imp-tk", OTA_CIPHER_3DES2, w, wl, kcv, "imp-k", &e),
                     0);
    assert_int_equal(p11_import_wrapped_kw(p, "imp-tk", OTA_CIPHER_3DES2, w, wl, kcv, "imp-k", &e),
                     -EEXIST);
    assert_int_equal(p11_key(p, "imp-k", &tk, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &d2, OTA_MODE_CBC, true, NULL, in, 16, a, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &tk, OTA_MODE_CBC, true, NULL, in, 16, b, &e), 0);
    assert_memory_equal(a, b, 16);

    /* ECB transport import: works where the token unwraps in ECB, else a clear refusal. */
    struct ota_key zmk, ztk;
    uint8_t ew[16];
    ts_mkkey(&zmk, OTA_CIPHER_3DES2, "0f0e0d0c0b0a09080706050403020100");
    import(&zmk, "imp-zmk", P11_U_TRANSPORT, &ztk);
    assert_int_equal(ota_crypto_cipher(cx, &zmk, OTA_MODE_ECB, true, NULL, d2.bytes, 16, ew, &e),
                     0);
    int rc = p11_import_wrapped(p, "imp-zmk", OTA_CIPHER_3DES2, ew, 16, kcv, "imp-e", &e);
    if (rc == -EOPNOTSUPP) {
        assert_non_null(strstr(e.msg, "CKM_DES3_ECB"));
        assert_int_equal(p11_key(p, "imp-e", &tk, &e), -ENOENT);
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(
            p11_import_wrapped(p, "imp-zmk", OTA_CIPHER_3DES2, ew, 16, bad, "imp-e2", &e), -EINVAL);
        assert_int_equal(p11_key(p, "imp-e2", &tk, &e), -ENOENT);
        assert_int_equal(p11_destroy(p, "imp-e", &e), 0);
    }
    /* An AES key (an SCP80 AES set) imported by key wrap: same results as the raw key. */
    struct ota_key aes, ta;
    uint8_t aw[48], akcv[3];
    ts_mkkey(&aes, OTA_CIPHER_AES, "2b7e151628aed2a6abf7158809cf4f3c");
    size_t awl = kw_wrap(&kek, &aes, aw);
    assert_int_equal(awl, 24);
    assert_int_equal(ota_crypto_kcv(cx, &aes, akcv, NULL), 0);
    assert_int_equal(
        p11_import_wrapped_kw(p, "imp-tk", OTA_CIPHER_AES, aw, awl, akcv, "imp-aes", &e), 0);
    if (p11_key(p, "imp-aes", &ta, &e) != 0) {
        fail_msg("p11_key imp-aes: %s", e.msg);
    }
    assert_int_equal(ta.cipher, OTA_CIPHER_AES);
    assert_int_equal(ta.len, 16);
    assert_int_equal(ota_crypto_cipher(cx, &aes, OTA_MODE_CBC, true, NULL, in, 16, a, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &ta, OTA_MODE_CBC, true, NULL, in, 16, b, &e), 0);
    assert_memory_equal(a, b, 16);

    /* P11_F_WRAPPABLE: a DEK can wrap it (PUT KEY), still never readable in clear. */
    unsigned long rv = 0;
    assert_int_equal(p11_import_wrapped_kw_ex(p, "imp-tk", OTA_CIPHER_3DES2, w, wl, kcv, "imp-w",
                                              P11_F_WRAPPABLE, &e),
                     0);
    struct ota_key tw, dek;
    assert_int_equal(p11_key(p, "imp-w", &tw, &e), 0);
    assert_int_equal(p11_attr_value_rv(p, &tw, &rv), 0);
    assert_int_equal(rv, 0x11 /* CKR_ATTRIBUTE_SENSITIVE */);
    assert_int_equal(p11_key(p, "imp-tk", &dek, &e), 0);
    uint8_t wrapped_w[64], wrapped_k[64];
    assert_int_equal(ota_crypto_wrap(cx, &dek, OTA_MODE_CBC, &tw, wrapped_w, sizeof(wrapped_w), &e),
                     16);
    /* ... while the same key imported without the flag refuses to leave */
    assert_true(ota_crypto_wrap(cx, &dek, OTA_MODE_CBC, &tk, wrapped_k, sizeof(wrapped_k), &e) < 0);

    assert_int_equal(p11_destroy(p, "imp-w", &e), 0);
    assert_int_equal(p11_destroy(p, "imp-aes", &e), 0);
    assert_int_equal(p11_destroy(p, "imp-k", &e), 0);
    assert_int_equal(p11_destroy(p, "imp-tk", &e), 0);
    assert_int_equal(p11_destroy(p, "imp-zmk", &e), 0);
}

/*
 * Each role's object does only what its usage says (p11.h P11_U_*): a DEK
 * wraps and encrypts but never decrypts (else it opens what it wraps), a
 * transport key only unwraps (else it opens every captured import blob), a
 * work key never wraps or unwraps.
 */
static void test_key_usage(void **state)
{
    struct ota_key raw_dek, raw_tk, raw_k, raw_w, dek, tk, work, wk, got;
    struct ota_err e;
    uint8_t in[32] = {0x11, 0x22, 0x33}, a[64], b[64], kcv[3];
    (void)state;
    NEED_MODULE();

    ts_mkkey(&raw_dek, OTA_CIPHER_AES, "00112233445566778899aabbccddeeff");
    ts_mkkey(&raw_tk, OTA_CIPHER_AES, "000102030405060708090a0b0c0d0e0f");
    ts_mkkey(&raw_k, OTA_CIPHER_3DES2, "0123456789abcdeffedcba9876543210");
    ts_mkkey(&raw_w, OTA_CIPHER_AES, "f0e0d0c0b0a090807060504030201000");
    import(&raw_dek, "use-dek", P11_U_DEK, &dek);
    import(&raw_tk, "use-tk", P11_U_TRANSPORT, &tk);
    import(&raw_k, "use-work", 0, &work);
    import(&raw_w, "use-wrappable", P11_F_WRAPPABLE, &wk);

    /* DEK: encrypts (PUT KEY key data of clear keys) and wraps, never decrypts */
    assert_int_equal(ota_crypto_cipher(cx, &dek, OTA_MODE_ECB, true, NULL, in, 32, a, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &raw_dek, OTA_MODE_ECB, true, NULL, in, 32, b, &e), 0);
    assert_memory_equal(a, b, 32);
    assert_int_equal(ota_crypto_cipher(cx, &dek, OTA_MODE_ECB, false, NULL, a, 32, b, &e), -EPERM);
    assert_non_null(strstr(e.msg, "CKR_KEY_FUNCTION_NOT_PERMITTED"));
    assert_int_equal(ota_crypto_cipher(cx, &dek, OTA_MODE_CBC, false, NULL, a, 32, b, &e), -EPERM);
    assert_int_equal(ota_crypto_wrap(cx, &dek, OTA_MODE_CBC, &wk, a, sizeof(a), &e), 16);
    /* its derived (session) key inherits that: encrypts, never decrypts */
    struct ota_key sd;
    assert_int_equal(ota_crypto_derive(cx, &dek, OTA_MODE_CBC, in, 16, OTA_CIPHER_AES, &sd, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &sd, OTA_MODE_ECB, true, NULL, in, 16, a, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &sd, OTA_MODE_ECB, false, NULL, a, 16, b, &e), -EPERM);
    ota_key_wipe(&sd);

    /* transport key: neither encrypts nor decrypts, and computes no KCV; it unwraps */
    assert_int_equal(ota_crypto_cipher(cx, &tk, OTA_MODE_ECB, true, NULL, in, 16, a, &e), -EPERM);
    assert_int_equal(ota_crypto_cipher(cx, &tk, OTA_MODE_ECB, false, NULL, in, 16, a, &e), -EPERM);
    assert_true(ota_crypto_kcv(cx, &tk, kcv, &e) < 0);
    assert_true(ota_crypto_wrap(cx, &tk, OTA_MODE_CBC, &wk, a, sizeof(a), &e) < 0);
    size_t wl = kw_wrap(&raw_tk, &raw_k, a);
    assert_int_equal(ota_crypto_kcv(cx, &raw_k, kcv, &e), 0);
    if (p11_import_wrapped_kw_ex(p, "use-tk", OTA_CIPHER_3DES2, a, wl, kcv, "use-kic", P11_U_KIC,
                                 &e) < 0) {
        fail_msg("unwrap under the transport key: %s", e.msg);
    }
    assert_int_equal(p11_key(p, "use-kic", &got, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &got, OTA_MODE_CBC, true, NULL, in, 16, b, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &got, OTA_MODE_CBC, false, NULL, b, 16, b, &e), 0);
    assert_memory_equal(b, in, 16);
    /* an import whose usage cannot encrypt could not have its KCV checked: refused up front */
    assert_int_equal(p11_import_wrapped_kw_ex(p, "use-tk", OTA_CIPHER_3DES2, a, wl, kcv, "use-x",
                                              P11_U_UNWRAP, &e),
                     -EINVAL);
    assert_int_equal(p11_key(p, "use-x", &got, &e), -ENOENT);

    /* work key: ciphers both ways, but neither wraps nor unwraps (AES: SoftHSM2 wraps in CBC) */
    struct ota_key awork;
    import(&raw_dek, "use-work-aes", 0, &awork);
    assert_int_equal(ota_crypto_cipher(cx, &work, OTA_MODE_ECB, false, NULL, in, 16, a, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &awork, OTA_MODE_CBC, false, NULL, in, 16, a, &e), 0);
    assert_int_equal(ota_crypto_wrap(cx, &awork, OTA_MODE_CBC, &wk, a, sizeof(a), &e), -EPERM);
    wl = kw_wrap(&raw_dek, &raw_k, b);
    assert_int_equal(p11_import_wrapped_kw_ex(p, "use-work-aes", OTA_CIPHER_3DES2, b, wl, kcv,
                                              "use-y", P11_U_KIC, &e),
                     -EPERM);
    assert_int_equal(p11_key(p, "use-y", &got, &e), -ENOENT);

    /* generated keys take a usage too */
    assert_int_equal(p11_generate_ex(p, OTA_CIPHER_AES, 32, "use-gen-tk", P11_U_TRANSPORT, &e), 0);
    assert_int_equal(p11_key(p, "use-gen-tk", &got, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &got, OTA_MODE_ECB, true, NULL, in, 16, a, &e), -EPERM);
    assert_int_equal(p11_generate_ex(p, OTA_CIPHER_3DES2, 16, "use-gen-dek", P11_U_DEK, &e), 0);
    assert_int_equal(p11_key(p, "use-gen-dek", &got, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &got, OTA_MODE_ECB, true, NULL, in, 16, a, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &got, OTA_MODE_ECB, false, NULL, a, 16, b, &e), -EPERM);

    const char *labels[] = {"use-dek", "use-tk",     "use-work",    "use-wrappable",
                            "use-kic", "use-gen-tk", "use-gen-dek", "use-work-aes"};
    for (size_t i = 0; i < OTA_ARRAY_SIZE(labels); i++) {
        assert_int_equal(p11_destroy(p, labels[i], &e), 0);
    }
    ota_key_wipe(&raw_dek);
    ota_key_wipe(&raw_tk);
    ota_key_wipe(&raw_k);
    ota_key_wipe(&raw_w);
}

static const uint8_t K_ENC[16] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                  0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F};
static const uint8_t K_MAC[16] = {0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98,
                                  0xA9, 0xBA, 0xCB, 0xDC, 0xED, 0xFE, 0x0F, 0x10};
static const uint8_t K_DEK[16] = {0x31, 0x42, 0x53, 0x64, 0x75, 0x86, 0x97, 0xA8,
                                  0xB9, 0xCA, 0xDB, 0xEC, 0xFD, 0x0E, 0x1F, 0x20};
static const uint8_t HC[8] = {0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7};
static const uint8_t CC[6] = {0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5};
static const uint8_t KDD[10] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19};

/* What a host session produced, for comparison between the raw and token runs. */
struct run {
    uint8_t ea[21];
    uint8_t wrapped[4][300];
    int wlen[4];
    uint8_t sens[16];
    uint64_t enc_handle;
};

/* One full session against the card model (raw keys) with host keys hk. */
static void session_run(const struct ota_scp02_keys *hk, const struct ota_scp02_keys *card_keys,
                        enum ota_scp02_div div, struct run *out)
{
    static const char *const apdus[4] = {
        "80F28000024F00",                             /* case 3 */
        "80CA006600",                                 /* case 2 */
        "80E2900010000102030405060708090A0B0C0D0E0F", /* case 3, two blocks */
        "80F0800700",                                 /* case 1-ish short */
    };
    struct ota_scp02_session s;
    struct ota_scp02_card cd;
    struct ota_err e;
    uint8_t iu[14], r[30], ap[260], un[300];
    uint8_t key[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                       0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10};

    assert_int_equal(ota_scp02_card_init(&cd, cx, card_keys, KDD, 0x0042, CC, &e), 0);
    assert_int_equal(ota_scp02_session_init(&s, cx, hk, 0x00, 0x03, HC, &e), 0);
    if (div != OTA_SCP02_DIV_NONE) {
        assert_int_equal(ota_scp02_session_set_div(&s, div, &e), 0);
    }
    assert_int_equal(ota_scp02_init_update(&s, iu, 14, &e), 14);
    assert_int_equal(ota_scp02_card_on_init_update(&cd, iu, 14, r, sizeof(r), &e), 30);
    if (ota_scp02_on_init_update_resp(&s, r, 30, &e) < 0) {
        fail_msg("init update resp: %s", e.msg);
    }
    out->enc_handle = s.skeys.enc.ext_handle;
    assert_int_equal(ota_scp02_external_authenticate(&s, out->ea, 21, &e), 21);
    assert_int_equal(ota_scp02_card_on_ext_auth(&cd, out->ea, 21, &e), 0);
    assert_int_equal(ota_scp02_on_ext_auth_resp(&s, 0x9000, &e), 0);
    for (int i = 0; i < 4; i++) {
        size_t n = ts_hex(apdus[i], ap, sizeof(ap));
        out->wlen[i] = ota_scp02_wrap(&s, ap, n, out->wrapped[i], sizeof(out->wrapped[i]), &e);
        if (out->wlen[i] < 0) {
            fail_msg("wrap %d: %s", i, e.msg);
        }
        int m =
            ota_scp02_card_unwrap(&cd, out->wrapped[i], (size_t)out->wlen[i], un, sizeof(un), &e);
        if (m < 0) {
            fail_msg("card unwrap %d: %s", i, e.msg);
        }
        assert_int_equal((size_t)m, n);
        assert_memory_equal(un, ap, n);
    }
    assert_int_equal(ota_scp02_encrypt_sensitive(&s, key, 16, out->sens, &e), 0);
    uint8_t pt[16];
    assert_int_equal(ota_scp02_card_decrypt_sensitive(&cd, out->sens, 16, pt, &e), 0);
    assert_memory_equal(pt, key, 16);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);
}

static void test_scp02_session(void **state)
{
    struct ota_scp02_keys raw, tok, card_keys;
    struct ota_key te, tm, td, x;
    struct ota_err e;
    struct run a, b;
    uint8_t in[8] = {0};
    (void)state;
    NEED_MODULE();

    assert_int_equal(ota_scp02_keys_set(&raw, K_ENC, 16, K_MAC, 16, K_DEK, 16, 0x21, &e), 0);
    /* the key store's usage for SD keys: the whole session runs with no more than that */
    import(&raw.enc, "s02-enc", P11_F_WRAPPABLE | P11_U_SD, &te);
    import(&raw.mac, "s02-mac", P11_F_WRAPPABLE | P11_U_SD, &tm);
    import(&raw.dek, "s02-dek", P11_F_WRAPPABLE | P11_U_DEK, &td);
    assert_int_equal(ota_scp02_keys_from(&tok, &te, &tm, &td, 0x21, &e), 0);
    assert_true(ota_key_is_ext(&tok.enc));
    assert_int_equal(tok.enc.owned, 0);
    struct ota_key aes;
    ts_mkkey(&aes, OTA_CIPHER_AES, "000102030405060708090a0b0c0d0e0f");
    assert_int_equal(ota_scp02_keys_from(&tok, &aes, &tm, &td, 0x21, &e), -EINVAL);

    for (int div = OTA_SCP02_DIV_NONE; div <= OTA_SCP02_DIV_VISA2; div++) {
        if (div == OTA_SCP02_DIV_NONE) {
            card_keys = raw;
        } else {
            assert_int_equal(
                ota_scp02_diversify(cx, (enum ota_scp02_div)div, &raw, KDD, &card_keys, &e), 0);
        }
        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        session_run(&raw, &card_keys, (enum ota_scp02_div)div, &a);
        session_run(&tok, &card_keys, (enum ota_scp02_div)div, &b);
        /* Same cryptogram and C-MAC in EXTERNAL AUTHENTICATE, same C-MAC + C-DEC bytes. */
        assert_memory_equal(a.ea, b.ea, 21);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(a.wlen[i], b.wlen[i]);
            assert_memory_equal(a.wrapped[i], b.wrapped[i], (size_t)a.wlen[i]);
        }
        assert_memory_equal(a.sens, b.sens, 16);
        /* The session's S-ENC was a token object; the session's wipe destroyed it. */
        assert_int_not_equal(b.enc_handle, 0);
        ota_key_borrow(&x, &te);
        x.ext_handle = b.enc_handle;
        x.ext_k1 = 0;
        assert_int_equal(ota_crypto_cipher(cx, &x, OTA_MODE_ECB, true, NULL, in, 8, in, &e),
                         -ENOENT);
        if (div != OTA_SCP02_DIV_NONE) {
            ota_scp02_keys_wipe(&card_keys);
        }
    }
    /* The static token keys are still there: the sessions only borrowed them. */
    assert_int_equal(p11_key(p, "s02-enc", &x, &e), 0);
    ota_scp02_keys_wipe(&tok);
    assert_int_equal(p11_key(p, "s02-mac", &x, &e), 0);

    /* Session keys derived directly equal the raw ones (compared by their output). */
    struct ota_scp02_session_keys sa, sb;
    uint8_t o1[16], o2[16], blk[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
    assert_int_equal(ota_scp02_keys_from(&tok, &te, &tm, &td, 0x21, &e), 0);
    assert_int_equal(ota_scp02_derive_session_keys(cx, &raw, 0x0042, &sa, &e), 0);
    assert_int_equal(ota_scp02_derive_session_keys(cx, &tok, 0x0042, &sb, &e), 0);
    const struct ota_key *pa[4] = {&sa.enc, &sa.cmac, &sa.rmac, &sa.dek};
    const struct ota_key *pb[4] = {&sb.enc, &sb.cmac, &sb.rmac, &sb.dek};
    for (int i = 0; i < 4; i++) {
        assert_true(ota_key_is_ext(pb[i]));
        assert_int_equal(ota_crypto_cipher(cx, pa[i], OTA_MODE_ECB, true, NULL, blk, 16, o1, &e),
                         0);
        assert_int_equal(ota_crypto_cipher(cx, pb[i], OTA_MODE_ECB, true, NULL, blk, 16, o2, &e),
                         0);
        assert_memory_equal(o1, o2, 16);
        assert_int_equal(ota_crypto_retail_mac(cx, pa[i], NULL, blk, 16, o1, &e), 0);
        assert_int_equal(ota_crypto_retail_mac(cx, pb[i], NULL, blk, 16, o2, &e), 0);
        assert_memory_equal(o1, o2, 8);
        /* the host never decrypts with a session key, and the token keeps it so */
        assert_int_equal(ota_crypto_cipher(cx, pb[i], OTA_MODE_ECB, false, NULL, blk, 16, o2, &e),
                         -EPERM);
    }
    ota_scp02_session_keys_wipe(&sa);
    ota_scp02_session_keys_wipe(&sb);
    ota_scp02_keys_wipe(&tok);
    ota_scp02_keys_wipe(&raw);
    assert_int_equal(p11_destroy(p, "s02-enc", &e), 0);
    assert_int_equal(p11_destroy(p, "s02-mac", &e), 0);
    assert_int_equal(p11_destroy(p, "s02-dek", &e), 0);
}

static void test_put_key_wrap(void **state)
{
    struct ota_key dek, tdek, keys[3], aes_dek, taes_dek, aes_k, taes_k, tnx;
    struct ota_err e;
    uint8_t a[128], b[128];
    int na, nb;
    (void)state;
    NEED_MODULE();

    /* 3DES DEK in the token, new keys given in clear (the key-update campaign's values). */
    ts_mkkey(&dek, OTA_CIPHER_3DES2, "404142434445464748494a4b4c4d4e4f");
    import(&dek, "pk-dek", P11_U_DEK, &tdek);
    ts_mkkey(&keys[0], OTA_CIPHER_3DES2, "0123456789abcdeffedcba9876543210");
    ts_mkkey(&keys[1], OTA_CIPHER_3DES2, "1123456789abcdeffedcba9876543211");
    ts_mkkey(&keys[2], OTA_CIPHER_3DES2, "2123456789abcdeffedcba9876543212");
    na = ota_gp_put_key(cx, 0x20, 0x21, 0x01, keys, 3, &dek, a, sizeof(a), &e);
    nb = ota_gp_put_key(cx, 0x20, 0x21, 0x01, keys, 3, &tdek, b, sizeof(b), &e);
    assert_true(na > 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na);

    /* AES DEK and an AES key, both in the token: C_WrapKey with CKM_AES_CBC, IV 0. */
    ts_mkkey(&aes_dek, OTA_CIPHER_AES, "000102030405060708090a0b0c0d0e0f");
    ts_mkkey(&aes_k, OTA_CIPHER_AES, "f0e0d0c0b0a090807060504030201000");
    import(&aes_dek, "pk-aesdek", P11_U_DEK, &taes_dek);
    import(&aes_k, "pk-aesk", P11_F_WRAPPABLE, &taes_k);
    na = ota_gp_put_key(cx, 0x30, 0x31, 0x01, &aes_k, 1, &aes_dek, a, sizeof(a), &e);
    nb = ota_gp_put_key(cx, 0x30, 0x31, 0x01, &taes_k, 1, &taes_dek, b, sizeof(b), &e);
    assert_true(na > 0);
    if (nb < 0) {
        fail_msg("token put key: %s", e.msg);
    }
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na);
    /* A non-extractable token key cannot leave, even wrapped. */
    ts_mkkey(&aes_k, OTA_CIPHER_AES, "e0e0d0c0b0a090807060504030201000");
    import(&aes_k, "pk-aesnx", 0, &tnx);
    assert_int_equal(ota_gp_put_key(cx, 0x30, 0x31, 0x01, &tnx, 1, &taes_dek, b, sizeof(b), &e),
                     -EPERM);
    /* A token key under a raw DEK would need its bytes: refused. */
    assert_int_equal(ota_gp_put_key(cx, 0x30, 0x31, 0x01, &taes_k, 1, &aes_dek, b, sizeof(b), &e),
                     -EINVAL);
    assert_int_equal(e.code, OTA_ERR_KEY);
    /* 3DES token key under the 3DES token DEK: SoftHSM2 has no 3DES wrap. */
    struct ota_key t3;
    import(&keys[0], "pk-d2w", P11_F_WRAPPABLE, &t3);
    nb = ota_gp_put_key(cx, 0x20, 0x21, 0x01, &t3, 1, &tdek, b, sizeof(b), &e);
    na = ota_gp_put_key(cx, 0x20, 0x21, 0x01, &keys[0], 1, &dek, a, sizeof(a), &e);
    if (nb == -EOPNOTSUPP) {
        assert_non_null(strstr(e.msg, "C_WrapKey"));
    } else {
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, (size_t)na);
    }
    const char *labels[] = {"pk-dek", "pk-aesdek", "pk-aesk", "pk-aesnx", "pk-d2w"};
    for (size_t i = 0; i < OTA_ARRAY_SIZE(labels); i++) {
        assert_int_equal(p11_destroy(p, labels[i], &e), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_errors),      cmocka_unit_test(test_import_lookup_destroy),
        cmocka_unit_test(test_primitives_equal), cmocka_unit_test(test_generate),
        cmocka_unit_test(test_import_wrapped),   cmocka_unit_test(test_scp02_session),
        cmocka_unit_test(test_put_key_wrap),     cmocka_unit_test(test_key_usage),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
