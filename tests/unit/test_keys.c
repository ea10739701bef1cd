/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the temporary local key store (gateway/keys.c): SCP80 sets
 * round-trip with their SPI, KIc, KID and CC length; the exact TAR wins over
 * a "*" set, which serves every other TAR; invalid sets (key length vs
 * algorithm, KVN vs KIc/KID, CC length, SPI without CC, bad SEID) and KCV
 * mismatches are refused and leave nothing stored; SD sets by KVN and by
 * highest KVN; everything survives a reopen of the file.
 */
#include "gateway/keys.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "tests/support/tsupport.h"

struct fx {
    char dir[64];
    char path[96];
    struct gw_keys *k;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/test_keys.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/k.db", f->dir);
    struct ota_err err;
    assert_int_equal(gw_keys_open(f->path, false, &f->k, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gw_keys_close(f->k);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* An AES set (KIc/KID 12, SPI 16 39, CC 8) with key bytes derived from fill. */
static void aes_set(struct gw_keys_scp80 *s, const char *tar, uint8_t fill)
{
    memset(s, 0, sizeof(*s));
    if (strcmp(tar, "*") == 0) {
        s->any_tar = true;
    } else {
        ts_hex(tar, s->tar, 3);
    }
    s->kvn = 1;
    s->spi[0] = 0x16;
    s->spi[1] = 0x39;
    s->kic = 0x12;
    s->kid = 0x12;
    s->cc_len = 8;
    uint8_t b[16];
    memset(b, fill, sizeof(b));
    struct ota_err err;
    assert_int_equal(ota_key_set(&s->kic_key, OTA_CIPHER_AES, b, 16, &err), 0);
    b[0] ^= 0xff;
    assert_int_equal(ota_key_set(&s->kid_key, OTA_CIPHER_AES, b, 16, &err), 0);
}

static void test_put_get_roundtrip(void **state)
{
    struct fx *f = *state;
    struct gw_keys_scp80 s;
    struct ota_err err;
    aes_set(&s, "000000", 0x11);
    s.cc_len = 4;
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, NULL, &err), 0);
    struct eng_scp80_keys out;
    const uint8_t tar[3] = {0, 0, 0};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar, &out, &err), 0);
    assert_int_equal(out.spi[0], 0x16);
    assert_int_equal(out.spi[1], 0x39);
    assert_int_equal(out.kic, 0x12);
    assert_int_equal(out.kid, 0x12);
    assert_int_equal(out.cc_len, 4);
    assert_int_equal(out.kic_key.cipher, OTA_CIPHER_AES);
    assert_int_equal(out.kic_key.len, 16);
    assert_memory_equal(out.kic_key.bytes, s.kic_key.bytes, 16);
    assert_memory_equal(out.kid_key.bytes, s.kid_key.bytes, 16);
    ota_key_wipe(&out.kic_key);
    ota_key_wipe(&out.kid_key);

    /* Other SE, other TAR: nothing. */
    assert_int_equal(gw_keys_get_scp80(f->k, "SE2", tar, &out, &err), -ENOENT);
    const uint8_t tar_b[3] = {0xb0, 0, 0};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar_b, &out, &err), -ENOENT);

    /* A second put for the same TAR replaces the set. */
    aes_set(&s, "000000", 0x22);
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, NULL, &err), 0);
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar, &out, &err), 0);
    assert_memory_equal(out.kic_key.bytes, s.kic_key.bytes, 16);
    assert_int_equal(out.cc_len, 8);
    gw_keys_scp80_wipe(&s);
    assert_true(ts_all_zero(s.kic_key.bytes, sizeof(s.kic_key.bytes)));
}

static void test_tar_wildcard(void **state)
{
    struct fx *f = *state;
    struct gw_keys_scp80 any, exact;
    struct ota_err err;
    aes_set(&any, "*", 0x33);
    aes_set(&exact, "B00000", 0x44);
    /* Wildcard first, exact second: the order of puts must not matter. */
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &any, NULL, &err), 0);
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &exact, NULL, &err), 0);
    struct eng_scp80_keys out;
    const uint8_t tar_b[3] = {0xb0, 0, 0}, tar_0[3] = {0, 0, 0}, tar_f[3] = {0xff, 0xff, 0xff};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar_b, &out, &err), 0);
    assert_memory_equal(out.kic_key.bytes, exact.kic_key.bytes, 16);
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar_0, &out, &err), 0);
    assert_memory_equal(out.kic_key.bytes, any.kic_key.bytes, 16);
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar_f, &out, &err), 0);
    assert_memory_equal(out.kic_key.bytes, any.kic_key.bytes, 16);
    /* The wildcard is per SE. */
    assert_int_equal(gw_keys_get_scp80(f->k, "SE9", tar_0, &out, &err), -ENOENT);
}

static void expect_refused(struct fx *f, const char *seid, const struct gw_keys_scp80 *s,
                           const uint8_t *kcv, enum ota_errc code, const char *field)
{
    struct ota_err err;
    assert_int_equal(gw_keys_put_scp80(f->k, seid, s, kcv, &err), -EINVAL);
    assert_int_equal(err.code, code);
    if (field) {
        assert_non_null(strstr(err.msg, field));
    }
    /* Nothing stored. */
    struct eng_scp80_keys out;
    const uint8_t tar[3] = {0, 0, 0};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar, &out, &err), -ENOENT);
}

static void test_bad_sets(void **state)
{
    struct fx *f = *state;
    struct gw_keys_scp80 s;
    struct ota_err err;

    /* AES KIc with a 3DES key. */
    aes_set(&s, "000000", 1);
    ts_mkkey(&s.kic_key, OTA_CIPHER_3DES2, "00112233445566778899AABBCCDDEEFF");
    expect_refused(f, "SE1", &s, NULL, OTA_ERR_KEY, "kic_key");

    /* 3DES2 KID (0x15) with a 24-octet 3DES3 key. */
    aes_set(&s, "000000", 1);
    s.kid = 0x15;
    ts_mkkey(&s.kid_key, OTA_CIPHER_3DES3, "00112233445566778899AABBCCDDEEFF0011223344556677");
    expect_refused(f, "SE1", &s, NULL, OTA_ERR_KEY, "kid_key");

    /* A key struct claiming AES with 15 octets (never valid). */
    aes_set(&s, "000000", 1);
    s.kid_key.len = 15;
    expect_refused(f, "SE1", &s, NULL, OTA_ERR_KEY, "kid_key");

    /* KVN differs from the one coded in KIc / KID. */
    aes_set(&s, "000000", 1);
    s.kvn = 2;
    expect_refused(f, "SE1", &s, NULL, OTA_ERR_VALUE, "kvn");
    aes_set(&s, "000000", 1);
    s.kvn = 0;
    expect_refused(f, "SE1", &s, NULL, OTA_ERR_VALUE, "kvn");

    /* CC length: AES-CMAC allows 4 or 8 only; DES CBC-MAC 8 only. */
    aes_set(&s, "000000", 1);
    s.cc_len = 6;
    expect_refused(f, "SE1", &s, NULL, OTA_ERR_VALUE, "cc_len");
    aes_set(&s, "000000", 1);
    s.kid = 0x15;
    s.cc_len = 4;
    ts_mkkey(&s.kid_key, OTA_CIPHER_3DES2, "00112233445566778899AABBCCDDEEFF");
    expect_refused(f, "SE1", &s, NULL, OTA_ERR_VALUE, "cc_len");

    /* SPI asking for no checksum (RC only): the engine needs CC-verified PoRs. */
    aes_set(&s, "000000", 1);
    s.spi[0] = 0x01;
    expect_refused(f, "SE1", &s, NULL, OTA_ERR_VALUE, "spi");

    /* Bad SEIDs. */
    aes_set(&s, "000000", 1);
    expect_refused(f, "", &s, NULL, OTA_ERR_ARG, "seid");
    expect_refused(f, "SE 1", &s, NULL, OTA_ERR_ARG, "seid");
    char long_seid[70];
    memset(long_seid, 'A', 65);
    long_seid[65] = '\0';
    expect_refused(f, long_seid, &s, NULL, OTA_ERR_ARG, "seid");

    /* A valid 3DES2 set is accepted (the refusals above were for their reason only). */
    aes_set(&s, "000000", 1);
    s.kic = 0x15;
    s.kid = 0x15;
    ts_mkkey(&s.kic_key, OTA_CIPHER_3DES2, "00112233445566778899AABBCCDDEEFF");
    ts_mkkey(&s.kid_key, OTA_CIPHER_3DES2, "FFEEDDCCBBAA99887766554433221100");
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, NULL, &err), 0);
}

static void test_kcv(void **state)
{
    struct fx *f = *state;
    struct gw_keys_scp80 s;
    struct ota_err err;
    aes_set(&s, "000000", 0x5a);
    uint8_t kcv[6];
    struct ota_crypto *c;
    assert_int_equal(ota_crypto_new(&c, &err), 0);
    assert_int_equal(ota_crypto_kcv(c, &s.kic_key, kcv, &err), 0);
    assert_int_equal(ota_crypto_kcv(c, &s.kid_key, kcv + 3, &err), 0);
    ota_crypto_free(c);

    uint8_t bad[6];
    memcpy(bad, kcv, 6);
    bad[5] ^= 1; /* KID's KCV wrong */
    expect_refused(f, "SE1", &s, bad, OTA_ERR_BAD_CC, "kid_key");
    memcpy(bad, kcv, 6);
    bad[0] ^= 0x80; /* KIc's KCV wrong */
    expect_refused(f, "SE1", &s, bad, OTA_ERR_BAD_CC, "kic_key");
    /* The message never carries key bytes or the KCVs. */
    char hex[8];
    snprintf(hex, sizeof(hex), "%02X%02X", s.kic_key.bytes[0], s.kic_key.bytes[1]);
    assert_null(strstr(err.msg, hex));

    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, kcv, &err), 0);
    struct eng_scp80_keys out;
    const uint8_t tar[3] = {0, 0, 0};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar, &out, &err), 0);
}

static void test_sd_and_reopen(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    struct gw_keys_sd sd;
    memset(&sd, 0, sizeof(sd));
    sd.aid_len = ts_hex("A000000151000000", sd.aid, sizeof(sd.aid));
    sd.kvn = 0x20;
    ts_mkkey(&sd.enc, OTA_CIPHER_3DES2, "404142434445464748494A4B4C4D4E4F");
    ts_mkkey(&sd.mac, OTA_CIPHER_3DES2, "404142434445464748494A4B4C4D4E4F");
    ts_mkkey(&sd.dek, OTA_CIPHER_3DES2, "404142434445464748494A4B4C4D4E4F");
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &sd, &err), 0);
    sd.kvn = 0x21;
    ts_mkkey(&sd.enc, OTA_CIPHER_3DES2, "505152535455565758595A5B5C5D5E5F");
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &sd, &err), 0);

    /* Bad SD sets. */
    struct gw_keys_sd bad = sd;
    bad.aid_len = 4;
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &bad, &err), -EINVAL);
    bad = sd;
    bad.kvn = 0;
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &bad, &err), -EINVAL);
    bad = sd;
    ts_mkkey(&bad.dek, OTA_CIPHER_AES, "505152535455565758595A5B5C5D5E5F");
    assert_int_equal(gw_keys_put_sd(f->k, "SE1", &bad, &err), -EINVAL);

    struct gw_keys_scp80 s;
    aes_set(&s, "*", 0x77);
    assert_int_equal(gw_keys_put_scp80(f->k, "SE1", &s, NULL, &err), 0);

    /* Reopen: everything is on disk. */
    gw_keys_close(f->k);
    f->k = NULL;
    assert_int_equal(gw_keys_open(f->path, true, &f->k, &err), 0);

    struct gw_keys_sd out;
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", sd.aid, sd.aid_len, 0, &out, &err), 0);
    assert_int_equal(out.kvn, 0x21);
    ts_assert_bytes(out.enc.bytes, out.enc.len, "505152535455565758595A5B5C5D5E5F");
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", sd.aid, sd.aid_len, 0x20, &out, &err), 0);
    ts_assert_bytes(out.enc.bytes, out.enc.len, "404142434445464748494A4B4C4D4E4F");
    gw_keys_sd_wipe(&out);
    assert_int_equal(gw_keys_get_sd(f->k, "SE1", sd.aid, sd.aid_len, 0x22, &out, &err), -ENOENT);
    assert_int_equal(gw_keys_get_sd(f->k, "SE2", sd.aid, sd.aid_len, 0, &out, &err), -ENOENT);

    struct eng_scp80_keys k80;
    const uint8_t tar[3] = {1, 2, 3};
    assert_int_equal(gw_keys_get_scp80(f->k, "SE1", tar, &k80, &err), 0);
    assert_memory_equal(k80.kic_key.bytes, s.kic_key.bytes, 16);

    /* No engine tables in this file: the SE lookup fails cleanly. */
    char m[22], b[33];
    assert_true(gw_keys_se_find(f->k, "SE1", m, b, &err) < 0);
}

static void test_open_bad(void **state)
{
    (void)state;
    struct gw_keys *k = NULL;
    struct ota_err err;
    assert_int_equal(gw_keys_open("", false, &k, &err), -EINVAL);
    assert_true(gw_keys_open("/nonexistent-dir/x/k.db", false, &k, &err) < 0);
    assert_null(k);
    gw_keys_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar_wildcard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_sets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kcv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sd_and_reopen, setup, teardown),
        cmocka_unit_test(test_open_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
