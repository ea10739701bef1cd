/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Known-answer tests for ota/crypto.c: DES as EDE with K|K|K (FIPS 46 worked
 * example), 2-key 3DES KCV of the GP test key, AES-CMAC (SP 800-38B D.1),
 * the TS 102 225 zero-filled CBC-MAC, the ISO 9797-1 retail MAC against a
 * construction from single-DES steps, ISO padding, CRC-16/X.25, CRC-32, and
 * the bad paths (wrong key lengths, unaligned input, small output).
 */
#include "ota/ota.h"
#include "tests/support/tsupport.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <osmocom/core/utils.h>

static struct ota_crypto *cx;

static int setup(void **state)
{
    (void)state;
    return ota_crypto_new(&cx, NULL);
}

static int teardown(void **state)
{
    (void)state;
    ota_crypto_free(cx);
    return 0;
}

static void test_des_single(void **state)
{
    struct ota_key k;
    uint8_t in[8], out[8], back[8], exp[8];
    (void)state;
    ts_mkkey(&k, OTA_CIPHER_DES, "133457799bbcdff1");
    ts_hex("0123456789abcdef", in, 8);
    ts_hex("85e813540f0ab405", exp, 8);
    assert_int_equal(ota_crypto_cipher(cx, &k, OTA_MODE_ECB, true, NULL, in, 8, out, NULL), 0);
    assert_memory_equal(out, exp, 8);
    assert_int_equal(ota_crypto_cipher(cx, &k, OTA_MODE_ECB, false, NULL, out, 8, back, NULL), 0);
    assert_memory_equal(back, in, 8);
}

static void test_kcv(void **state)
{
    struct ota_key k;
    uint8_t kcv[3], exp[3];
    (void)state;
    ts_mkkey(&k, OTA_CIPHER_3DES2, "404142434445464748494a4b4c4d4e4f");
    assert_int_equal(ota_crypto_kcv(cx, &k, kcv, NULL), 0);
    ts_hex("8baf47", exp, 3);
    assert_memory_equal(kcv, exp, 3);
}

static void test_cmac_sp800_38b(void **state)
{
    struct ota_key k;
    uint8_t msg[64], tag[16], exp[16];
    size_t n = 0;
    (void)state;
    ts_mkkey(&k, OTA_CIPHER_AES, "2b7e151628aed2a6abf7158809cf4f3c");
    assert_int_equal(ota_crypto_cmac(cx, &k, msg, 0, tag, &n, NULL), 0);
    assert_int_equal(n, 16);
    ts_hex("bb1d6929e95937287fa37d129b756746", exp, 16);
    assert_memory_equal(tag, exp, 16);
    size_t ml = ts_hex("6bc1bee22e409f96e93d7e117393172a", msg, sizeof(msg));
    assert_int_equal(ota_crypto_cmac(cx, &k, msg, ml, tag, &n, NULL), 0);
    ts_hex("070a16b46b4d4144f79bdd9dd04a287c", exp, 16);
    assert_memory_equal(tag, exp, 16);
}

static void test_cbc_mac_zero_fill(void **state)
{
    struct ota_key k;
    uint8_t msg[13], padded[16] = {0}, enc[16], mac[8];
    (void)state;
    ts_mkkey(&k, OTA_CIPHER_3DES2, "0123456789abcdeffedcba9876543210");
    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t)(i * 7 + 1);
    }
    memcpy(padded, msg, sizeof(msg));
    assert_int_equal(ota_crypto_cipher(cx, &k, OTA_MODE_CBC, true, NULL, padded, 16, enc, NULL), 0);
    assert_int_equal(ota_crypto_cbc_mac(cx, &k, NULL, msg, sizeof(msg), mac, NULL), 0);
    assert_memory_equal(mac, enc + 8, 8);
    /* An aligned input gets no extra block. */
    assert_int_equal(ota_crypto_cbc_mac(cx, &k, NULL, padded, 16, mac, NULL), 0);
    assert_memory_equal(mac, enc + 8, 8);
    /* Long input crosses the internal chunking. */
    uint8_t big[1000], bigenc[1000];
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t)i;
    }
    assert_int_equal(ota_crypto_cipher(cx, &k, OTA_MODE_CBC, true, NULL, big, 1000, bigenc, NULL),
                     0);
    assert_int_equal(ota_crypto_cbc_mac(cx, &k, NULL, big, 1000, mac, NULL), 0);
    assert_memory_equal(mac, bigenc + 992, 8);
}

static void test_retail_mac(void **state)
{
    struct ota_key k, k1, k2;
    uint8_t msg[24], icv[8], mac[8], h[8], t[8];
    (void)state;
    ts_mkkey(&k, OTA_CIPHER_3DES2, "c6713f31b8dc1f8905dfecb4065cb81e");
    ts_mkkey(&k1, OTA_CIPHER_DES, "c6713f31b8dc1f89");
    ts_mkkey(&k2, OTA_CIPHER_DES, "05dfecb4065cb81e");
    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t)(0xa5 ^ i);
    }
    ts_hex("1122334455667788", icv, 8);
    assert_int_equal(ota_crypto_retail_mac(cx, &k, icv, msg, sizeof(msg), mac, NULL), 0);
    /* Reference: single DES CBC under K1 for every block, then D(K2), E(K1). */
    uint8_t enc[24];
    assert_int_equal(ota_crypto_cipher(cx, &k1, OTA_MODE_CBC, true, icv, msg, 24, enc, NULL), 0);
    assert_int_equal(ota_crypto_cipher(cx, &k2, OTA_MODE_ECB, false, NULL, enc + 16, 8, h, NULL),
                     0);
    assert_int_equal(ota_crypto_cipher(cx, &k1, OTA_MODE_ECB, true, NULL, h, 8, t, NULL), 0);
    assert_memory_equal(mac, t, 8);
    /* One block only. */
    assert_int_equal(ota_crypto_retail_mac(cx, &k, NULL, msg, 8, mac, NULL), 0);
    assert_int_equal(ota_crypto_cipher(cx, &k, OTA_MODE_ECB, true, NULL, msg, 8, t, NULL), 0);
    assert_memory_equal(mac, t, 8);
}

static void test_pad_m2(void **state)
{
    uint8_t in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, out[32];
    (void)state;
    assert_int_equal(ota_pad_m2(in, 9, 8, out, sizeof(out)), 16);
    assert_int_equal(out[9], 0x80);
    assert_int_equal(out[15], 0x00);
    assert_int_equal(ota_pad_m2(in, 8, 8, out, sizeof(out)), 16);
    assert_int_equal(out[8], 0x80);
    assert_int_equal(ota_pad_m2(in, 0, 8, out, sizeof(out)), 8);
    assert_int_equal(out[0], 0x80);
    assert_int_equal(ota_pad_m2(in, 8, 8, out, 15), -ENOSPC);
}

static void test_crc(void **state)
{
    (void)state;
    const uint8_t s[] = "123456789";
    assert_int_equal(ota_crc16(s, 9), 0x906e);
    assert_int_equal(ota_crc32(s, 9), 0xcbf43926u);
    assert_int_equal(ota_crc32(s, 0), 0);
}

static void test_bad_paths(void **state)
{
    struct ota_key k, aes;
    struct ota_err e;
    uint8_t b[32] = {0}, out[32];
    size_t n;
    (void)state;
    memset(&k, 0x5a, sizeof(k));
    struct ota_key before = k;
    assert_int_equal(ota_key_set(&k, OTA_CIPHER_3DES2, b, 15, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_KEY);
    assert_memory_equal(&k, &before, sizeof(k)); /* unchanged on failure */
    assert_int_equal(ota_key_set(&k, OTA_CIPHER_AES, b, 20, &e), -EINVAL);
    assert_int_equal(ota_key_set(&k, OTA_CIPHER_NONE, b, 8, &e), -EINVAL);
    ts_mkkey(&k, OTA_CIPHER_3DES2, "404142434445464748494a4b4c4d4e4f");
    assert_int_equal(ota_crypto_cipher(cx, &k, OTA_MODE_CBC, true, NULL, b, 12, out, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_PADDING);
    ts_mkkey(&aes, OTA_CIPHER_AES, "000102030405060708090a0b0c0d0e0f");
    assert_int_equal(ota_crypto_cipher(cx, &aes, OTA_MODE_CBC, true, NULL, b, 8, out, &e), -EINVAL);
    assert_int_equal(ota_crypto_cbc_mac(cx, &aes, NULL, b, 8, out, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_KEY);
    assert_int_equal(ota_crypto_retail_mac(cx, &aes, NULL, b, 8, out, &e), -EINVAL);
    assert_int_equal(ota_crypto_retail_mac(cx, &k, NULL, b, 12, out, &e), -EINVAL);
    assert_int_equal(ota_crypto_retail_mac(cx, &k, NULL, b, 0, out, &e), -EINVAL);
    assert_int_equal(ota_crypto_cmac(cx, NULL, b, 8, out, &n, &e), -EINVAL);
    struct ota_key bad = k;
    bad.len = 7;
    assert_int_equal(ota_crypto_kcv(cx, &bad, out, &e), -EINVAL);
    ota_key_wipe(&k);
    for (size_t i = 0; i < sizeof(k); i++) {
        assert_int_equal(((uint8_t *)&k)[i], 0);
    }
}

static void test_aes_all_lengths(void **state)
{
    (void)state;
    static const char *keys[] = {
        "000102030405060708090a0b0c0d0e0f",
        "000102030405060708090a0b0c0d0e0f1011121314151617",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    };
    /* FIPS 197 C.1-C.3: plaintext 00112233..ff. */
    static const char *exp[] = {
        "69c4e0d86a7b0430d8cdb78070b4c55a",
        "dda97ca4864cdfe06eaf70a0ec0d7191",
        "8ea2b7ca516745bfeafc49904b496089",
    };
    uint8_t in[16], out[16], e[16];
    ts_hex("00112233445566778899aabbccddeeff", in, 16);
    for (int i = 0; i < 3; i++) {
        struct ota_key k;
        ts_mkkey(&k, OTA_CIPHER_AES, keys[i]);
        assert_int_equal(ota_crypto_cipher(cx, &k, OTA_MODE_CBC, true, NULL, in, 16, out, NULL), 0);
        ts_hex(exp[i], e, 16);
        assert_memory_equal(out, e, 16);
    }
}

/*
 * A fake external backend: "objects" are raw keys in a table, so the test can
 * check that ota_crypto dispatches every primitive to the ops, that derived
 * keys are owned and released exactly once, and that borrowed ones are not.
 */
struct fake {
    struct ota_key obj[16];
    unsigned n_obj, n_cipher, n_cmac, n_derive, n_wrap, n_release;
};

static const struct ota_key *fake_obj(void *ctx, uint64_t h)
{
    struct fake *f = ctx;
    assert_true(h >= 1 && h <= f->n_obj);
    return &f->obj[h - 1];
}

static int fake_cipher(void *ctx, const struct ota_key *k, enum ota_mode mode, bool encrypt,
                       const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out,
                       struct ota_err *err)
{
    ((struct fake *)ctx)->n_cipher++;
    return ota_crypto_cipher(cx, fake_obj(ctx, k->ext_handle), mode, encrypt, iv, in, len, out,
                             err);
}

static int fake_cmac(void *ctx, const struct ota_key *k, const uint8_t *in, size_t len,
                     uint8_t out[16], size_t *out_len, struct ota_err *err)
{
    ((struct fake *)ctx)->n_cmac++;
    return ota_crypto_cmac(cx, fake_obj(ctx, k->ext_handle), in, len, out, out_len, err);
}

static const struct ota_key_ext_ops fake_ops;

static uint64_t fake_add(struct fake *f, const struct ota_key *raw)
{
    assert_true(f->n_obj < 16);
    f->obj[f->n_obj++] = *raw;
    return f->n_obj;
}

static void fake_ref(struct fake *f, uint64_t h, struct ota_key *out)
{
    memset(out, 0, sizeof(*out));
    out->cipher = f->obj[h - 1].cipher;
    out->len = f->obj[h - 1].len;
    out->ext = &fake_ops;
    out->ext_ctx = f;
    out->ext_handle = h;
}

static int fake_derive(void *ctx, const struct ota_key *base, enum ota_mode mode,
                       const uint8_t *data, size_t len, enum ota_cipher oc, struct ota_key *out,
                       struct ota_err *err)
{
    struct fake *f = ctx;
    struct ota_key raw;
    f->n_derive++;
    int rc = ota_crypto_derive(cx, fake_obj(ctx, base->ext_handle), mode, data, len, oc, &raw, err);
    if (rc == 0) {
        fake_ref(f, fake_add(f, &raw), out);
        out->owned = OTA_KEY_OWNED;
    }
    return rc;
}

static int fake_wrap(void *ctx, const struct ota_key *kek, enum ota_mode mode,
                     const struct ota_key *key, uint8_t *out, size_t cap, struct ota_err *err)
{
    ((struct fake *)ctx)->n_wrap++;
    return ota_crypto_wrap(cx, fake_obj(ctx, kek->ext_handle), mode, fake_obj(ctx, key->ext_handle),
                           out, cap, err);
}

static void fake_release(void *ctx, const struct ota_key *k)
{
    (void)k;
    ((struct fake *)ctx)->n_release++;
}

static const struct ota_key_ext_ops fake_ops = {
    .name = "fake",
    .cipher = fake_cipher,
    .cmac = fake_cmac,
    .derive = fake_derive,
    .wrap = fake_wrap,
    .release = fake_release,
};

static void test_ext_dispatch(void **state)
{
    struct fake f = {0};
    struct ota_key raw, ek, d1, d2, tmp, aes, eaes;
    struct ota_err e;
    uint8_t in[32], a[32], b[32];
    size_t na, nb;
    (void)state;

    for (size_t i = 0; i < sizeof(in); i++) {
        in[i] = (uint8_t)(0x30 + i);
    }
    ts_mkkey(&raw, OTA_CIPHER_3DES2, "0123456789abcdeffedcba9876543210");
    fake_ref(&f, fake_add(&f, &raw), &ek);
    assert_true(ota_key_is_ext(&ek));
    assert_false(ota_key_is_ext(&raw));

    assert_int_equal(ota_crypto_cipher(cx, &raw, OTA_MODE_CBC, true, NULL, in, 32, a, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &ek, OTA_MODE_CBC, true, NULL, in, 32, b, &e), 0);
    assert_memory_equal(a, b, 32);
    assert_true(f.n_cipher > 0);
    /* unaligned input never reaches the backend */
    unsigned before = f.n_cipher;
    assert_int_equal(ota_crypto_cipher(cx, &ek, OTA_MODE_ECB, true, NULL, in, 9, b, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_PADDING);
    assert_int_equal(f.n_cipher, before);

    assert_int_equal(ota_crypto_cmac(cx, &raw, in, 20, a, &na, &e), 0);
    assert_int_equal(ota_crypto_cmac(cx, &ek, in, 20, b, &nb, &e), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    assert_int_equal(f.n_cmac, 1);

    /* retail MAC and single DES under K1 need the K1|K1 companion */
    assert_int_equal(ota_crypto_retail_mac(cx, &ek, NULL, in, 16, b, &e), -ENOKEY);
    assert_int_equal(ota_crypto_des_k1_ecb(cx, &ek, in, b, &e), -ENOKEY);
    struct ota_key k1k1;
    uint8_t kb[16];
    memcpy(kb, raw.bytes, 8);
    memcpy(kb + 8, raw.bytes, 8);
    assert_int_equal(ota_key_set(&k1k1, OTA_CIPHER_3DES2, kb, 16, &e), 0);
    ek.ext_k1 = fake_add(&f, &k1k1);
    assert_int_equal(ota_crypto_retail_mac(cx, &raw, in + 8, in, 24, a, &e), 0);
    assert_int_equal(ota_crypto_retail_mac(cx, &ek, in + 8, in, 24, b, &e), 0);
    assert_memory_equal(a, b, 8);
    assert_int_equal(ota_crypto_des_k1_ecb(cx, &raw, in, a, &e), 0);
    assert_int_equal(ota_crypto_des_k1_ecb(cx, &ek, in, b, &e), 0);
    assert_memory_equal(a, b, 8);
    /* des_k1 with a raw key = single DES under the first 8 octets */
    struct ota_key des;
    assert_int_equal(ota_key_set(&des, OTA_CIPHER_DES, raw.bytes, 8, &e), 0);
    assert_int_equal(ota_crypto_cipher(cx, &des, OTA_MODE_ECB, true, NULL, in, 8, b, &e), 0);
    assert_memory_equal(a, b, 8);
    assert_int_equal(ota_crypto_des_k1_ecb(cx, &des, in, b, &e), -EINVAL);

    /* derive: raw gives a raw key of the cipher output; ext gives an owned backend key */
    assert_int_equal(ota_crypto_derive(cx, &raw, OTA_MODE_CBC, in, 16, OTA_CIPHER_3DES2, &d1, &e),
                     0);
    assert_int_equal(ota_crypto_cipher(cx, &raw, OTA_MODE_CBC, true, NULL, in, 16, a, &e), 0);
    assert_memory_equal(d1.bytes, a, 16);
    assert_int_equal(d1.owned, 0);
    assert_int_equal(ota_crypto_derive(cx, &ek, OTA_MODE_CBC, in, 16, OTA_CIPHER_3DES2, &d2, &e),
                     0);
    assert_int_equal(d2.owned, OTA_KEY_OWNED);
    assert_int_equal(ota_crypto_kcv(cx, &d1, a, &e), 0);
    assert_int_equal(ota_crypto_kcv(cx, &d2, b, &e), 0);
    assert_memory_equal(a, b, 3);
    assert_int_equal(ota_crypto_derive(cx, &ek, OTA_MODE_ECB, in, 12, OTA_CIPHER_3DES2, &tmp, &e),
                     -EINVAL);
    assert_int_equal(ota_crypto_derive(cx, &ek, OTA_MODE_ECB, in, 16, OTA_CIPHER_3DES3, &tmp, &e),
                     -EINVAL);

    /* ownership: borrow never releases, move hands over, wipe of the owner releases once */
    ota_key_borrow(&tmp, &d2);
    assert_int_equal(tmp.owned, 0);
    ota_key_wipe(&tmp);
    assert_int_equal(f.n_release, 0);
    ota_key_move(&tmp, &d2);
    assert_true(ts_all_zero(&d2, sizeof(d2)));
    ota_key_wipe(&d2);
    assert_int_equal(f.n_release, 0);
    ota_key_wipe(&tmp);
    assert_int_equal(f.n_release, 1);
    assert_true(ts_all_zero(&tmp, sizeof(tmp)));
    ota_key_wipe(&ek); /* borrowed reference */
    assert_int_equal(f.n_release, 1);

    /* wrap: raw key under raw or ext KEK = cipher; ext key only under a KEK of its backend */
    fake_ref(&f, 1, &ek);
    ts_mkkey(&aes, OTA_CIPHER_AES, "000102030405060708090a0b0c0d0e0f");
    fake_ref(&f, fake_add(&f, &aes), &eaes);
    assert_int_equal(ota_crypto_wrap(cx, &raw, OTA_MODE_ECB, &d1, a, sizeof(a), &e), 16);
    assert_int_equal(ota_crypto_wrap(cx, &ek, OTA_MODE_ECB, &d1, b, sizeof(b), &e), 16);
    assert_memory_equal(a, b, 16);
    assert_int_equal(ota_crypto_cipher(cx, &raw, OTA_MODE_ECB, true, NULL, d1.bytes, 16, b, &e), 0);
    assert_memory_equal(a, b, 16);
    assert_int_equal(f.n_wrap, 0);
    assert_int_equal(ota_crypto_wrap(cx, &raw, OTA_MODE_ECB, &eaes, a, sizeof(a), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_KEY);
    assert_int_equal(ota_crypto_wrap(cx, &ek, OTA_MODE_ECB, &eaes, a, sizeof(a), &e), 16);
    assert_int_equal(f.n_wrap, 1);
    assert_int_equal(ota_crypto_wrap(cx, &ek, OTA_MODE_ECB, &eaes, a, 8, &e), -ENOSPC);
    ota_key_wipe(&d1);
    ota_key_wipe(&raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ext_dispatch),
        cmocka_unit_test(test_des_single),
        cmocka_unit_test(test_kcv),
        cmocka_unit_test(test_cmac_sp800_38b),
        cmocka_unit_test(test_cbc_mac_zero_fill),
        cmocka_unit_test(test_retail_mac),
        cmocka_unit_test(test_pad_m2),
        cmocka_unit_test(test_crc),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_aes_all_lengths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
