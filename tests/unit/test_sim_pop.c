/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the simulator's SE population (tests/sim/pop.c): the JSON Lines
 * file (every kind of bad line refused with its line number, the sample file
 * loaded), the generator (identity and keys deterministic and equal to what
 * a gateway derives on its own with AES-CMAC, NIST SP 800-38B), MSISDN
 * lookup, and the O(1)-memory promise for ten million SEs: creation costs
 * nothing per SE, and touching 1000 SEs creates exactly 1000 states.
 */
#include "tests/sim/sim.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define SAMPLE OTAGW_SOURCE_DIR "/tests/sim/sample-population.jsonl"

#define GOOD                                                                                       \
    "{\"seid\":\"0102\",\"msisdn\":\"861\",\"scp80\":[{\"kvn\":1,\"tar\":\"000000\","              \
    "\"kic_alg\":\"AES\",\"kic\":\"00112233445566778899AABBCCDDEEFF\",\"kid_alg\":\"AES\","        \
    "\"kid\":\"00112233445566778899AABBCCDDEEFF\"}]}"

static const uint8_t tar_isd[3] = {0x00, 0x00, 0x00};
static const uint8_t tar_rfm[3] = {0xB0, 0x00, 0x00};

/* Write "GOOD\n" + line 2 into a temporary file and try to load it. */
static int load_with(const char *line2, struct ota_err *e)
{
    char path[] = "/tmp/test_sim_pop_XXXXXX";
    struct sim_pop *p = NULL;
    int fd = mkstemp(path);
    FILE *f;
    int rc;

    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f, "%s\n%s\n", GOOD, line2);
    fclose(f);
    rc = sim_pop_load(path, &p, e);
    unlink(path);
    if (rc == 0) {
        sim_pop_free(p);
    } else {
        assert_null(p);
    }
    return rc;
}

static void test_file_bad_lines(void **state)
{
    static const struct {
        const char *line;
        const char *why;
    } bad[] = {
        {"{", "not JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"colour\":\"red\"}", "unknown key \"colour\""},
        {"{\"msisdn\":\"862\"}", "\"seid\" missing"},
        {"{\"seid\":\"0G\",\"msisdn\":\"862\"}", "not hex"},
        {"{\"seid\":\"012\",\"msisdn\":\"862\"}", "hex digits"},
        {"{\"seid\":\"01\",\"msisdn\":\"86a\"}", "\"msisdn\" must be"},
        {"{\"seid\":\"01\",\"msisdn\":\"8612345678901234567890\"}", "\"msisdn\" must be"},
        {"{\"seid\":\"01\",\"msisdn\":\"861\"}", "already used"},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"scp80\":[{\"kvn\":0}]}", "\"kvn\" must be"},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"scp80\":[{\"kvn\":16}]}", "\"kvn\" must be"},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"scp80\":[{\"kvn\":1,\"tar\":\"0000\"}]}",
         "\"tar\""},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"scp80\":[{\"kvn\":1,\"tar\":\"000000\","
         "\"kic_alg\":\"RC4\",\"kic\":\"00\"}]}",
         "\"kic_alg\" must be"},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"scp80\":[{\"kvn\":1,\"tar\":\"000000\","
         "\"kic_alg\":\"AES\",\"kic\":\"00112233445566778899AABBCCDDEE\",\"kid_alg\":\"AES\","
         "\"kid\":\"00112233445566778899AABBCCDDEEFF\"}]}",
         "do not fit AES"},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"scp80\":[{\"kvn\":1,\"tar\":\"000000\","
         "\"kic_alg\":\"DES\",\"kic\":\"0011223344556677\",\"kid_alg\":\"3DES2\","
         "\"kid\":\"0011223344556677\"}]}",
         "do not fit 3DES2"},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"scp80\":[{\"kvn\":1,\"tar\":\"000000\",\"x\":1}]}",
         "unknown key \"x\""},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"scp80\":{}}", "must be an array"},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"scp02\":[{\"kvn\":32,\"enc\":\"00\"}]}", "\"enc\""},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"free_nv\":-1}", "\"free_nv\" must be"},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"apps\":[{\"aid\":\"A000\",\"state\":\"selectable\"}"
         "]}",
         "\"aid\""},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"apps\":[{\"aid\":\"A000000001\",\"state\":\"ok\"}]"
         "}",
         "\"state\" must be"},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"apps\":[{\"aid\":\"A000000001\","
         "\"state\":\"installed\",\"locked\":1}]}",
         "booleans"},
        {"{\"seid\":\"01\",\"msisdn\":\"862\",\"seid\":\"02\"}", "not JSON"},
    };
    struct ota_err e;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ota_err_clear(&e);
        assert_int_equal(load_with(bad[i].line, &e), -EINVAL);
        if (!strstr(e.msg, bad[i].why)) {
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.msg, bad[i].why);
        }
        /* the duplicate MSISDN names SE numbers, everything else the line */
        if (!strstr(e.msg, "already used") && strncmp(e.msg, "line 2: ", 8) != 0) {
            fail_msg("case %zu: \"%s\" does not name line 2", i, e.msg);
        }
    }
}

static void test_file_bad_files(void **state)
{
    char path[] = "/tmp/test_sim_pop_XXXXXX";
    struct sim_pop *p = NULL;
    struct ota_err e;
    int fd;
    FILE *f;
    char *big;

    (void)state;
    assert_int_equal(sim_pop_load("/nonexistent/pop.jsonl", &p, &e), -ENOENT);
    assert_int_equal(sim_pop_load(NULL, &p, &e), -EINVAL);
    /* empty file */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(sim_pop_load(path, &p, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "no SE"));
    /* a line over 64 KiB */
    big = malloc(70000);
    assert_non_null(big);
    memset(big, ' ', 69999);
    big[69999] = '\0';
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n%s\n", GOOD, big);
    fclose(f);
    assert_int_equal(sim_pop_load(path, &p, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "line 2: longer than"));
    free(big);
    /* blank lines are skipped */
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "\n%s\n\n", GOOD);
    fclose(f);
    assert_int_equal(sim_pop_load(path, &p, &e), 0);
    assert_int_equal(sim_pop_size(p), 1);
    sim_pop_free(p);
    unlink(path);
    sim_pop_free(NULL);
}

static void test_file_sample(void **state)
{
    struct sim_pop *p = NULL;
    struct sim_scp80_keyset ks;
    struct sim_scp02_keyset k2;
    char msisdn[SIM_MSISDN_MAX + 1];
    uint8_t seid[SIM_SEID_MAX];
    size_t seid_len = 0;
    struct ota_err e;

    (void)state;
    assert_int_equal(sim_pop_load(SAMPLE, &p, &e), 0);
    assert_int_equal(sim_pop_size(p), 4);
    assert_int_equal(sim_pop_identity(p, 0, msisdn, seid, &seid_len), 0);
    assert_string_equal(msisdn, "8613800000001");
    assert_int_equal(seid_len, 10);
    assert_memory_equal(seid, "\x53\x45\x00\x00\x00\x00\x00\x00\x00\x01", 10);
    assert_int_equal(sim_pop_identity(p, 3, msisdn, seid, &seid_len), 0);
    assert_int_equal(seid_len, 32);
    assert_int_equal(sim_pop_identity(p, 4, msisdn, seid, &seid_len), -ENOENT);
    assert_int_equal(sim_pop_scp80_keys(p, 0, tar_isd, &ks, &e), 0);
    assert_int_equal(ks.kvn, 1);
    assert_int_equal(ks.kic.cipher, OTA_CIPHER_AES);
    assert_int_equal(ks.kic.len, 16);
    assert_int_equal(sim_pop_scp80_keys(p, 0, tar_rfm, &ks, &e), 0);
    assert_int_equal(ks.kvn, 2);
    assert_int_equal(ks.kid.cipher, OTA_CIPHER_3DES2);
    assert_int_equal(sim_pop_scp80_keys(p, 2, tar_rfm, &ks, &e), -ENOENT);
    assert_int_equal(e.code, OTA_ERR_TAR);
    assert_int_equal(sim_pop_scp80_keys(p, 2, tar_isd, &ks, &e), 0);
    assert_int_equal(ks.kic.cipher, OTA_CIPHER_3DES3);
    assert_int_equal(sim_pop_scp80_keys(p, 3, tar_isd, &ks, &e), 0);
    assert_int_equal(ks.kic.len, 32);
    assert_int_equal(sim_pop_scp80_keys(p, 9, tar_isd, &ks, &e), -ENOENT);
    assert_int_equal(sim_pop_scp02_keys(p, 0, 0x20, &k2, &e), 0);
    assert_int_equal(k2.kvn, 0x20);
    assert_int_equal(sim_pop_scp02_keys(p, 2, 0, &k2, &e), -ENOENT);
    assert_int_equal(sim_pop_n_touched(p), 0);
    sim_pop_free(p);
}

static void derive(struct ota_crypto *c, const uint8_t seed[16], const char *label, uint64_t i,
                   uint8_t out[16])
{
    struct ota_key k;
    uint8_t in[11];
    size_t n = 0;
    struct ota_err e;

    memcpy(in, label, 3);
    for (int b = 0; b < 8; b++) {
        in[3 + b] = (uint8_t)(i >> (56 - 8 * b));
    }
    assert_int_equal(ota_key_set(&k, OTA_CIPHER_AES, seed, 16, &e), 0);
    assert_int_equal(ota_crypto_cmac(c, &k, in, sizeof(in), out, &n, &e), 0);
    assert_int_equal(n, 16);
    ota_key_wipe(&k);
}

static void test_generate_bad(void **state)
{
    static const uint8_t seed[16] = {0};
    struct sim_pop *p = NULL;
    struct ota_err e;

    (void)state;
    assert_int_equal(sim_pop_generate(0, 1, seed, &p, &e), -EINVAL);
    assert_int_equal(sim_pop_generate(100000000000001ull, 1, seed, &p, &e), -EINVAL);
    assert_int_equal(sim_pop_generate(10, UINT64_MAX - 5, seed, &p, &e), -EINVAL);
    assert_int_equal(sim_pop_generate(10, 1, NULL, &p, &e), -EINVAL);
    assert_null(p);
}

static void test_generate_keys(void **state)
{
    static const uint8_t seed[16] = {0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6,
                                     0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C};
    static const uint8_t seed2[16] = {0x01};
    struct sim_pop *p = NULL, *q = NULL, *r = NULL;
    struct ota_crypto *c = NULL;
    struct sim_scp80_keyset ks, ks2, ks3;
    struct sim_scp02_keyset k2;
    char msisdn[SIM_MSISDN_MAX + 1];
    uint8_t seid[SIM_SEID_MAX], want[16];
    size_t seid_len = 0;
    struct ota_err e;

    (void)state;
    assert_int_equal(ota_crypto_new(&c, &e), 0);
    assert_int_equal(sim_pop_generate(1000, 8613900000000ull, seed, &p, &e), 0);
    assert_int_equal(sim_pop_generate(1000, 8613900000000ull, seed, &q, &e), 0);
    assert_int_equal(sim_pop_generate(1000, 8613900000000ull, seed2, &r, &e), 0);
    assert_int_equal(sim_pop_size(p), 1000);
    assert_int_equal(sim_pop_identity(p, 42, msisdn, seid, &seid_len), 0);
    assert_string_equal(msisdn, "8613900000042");
    assert_int_equal(seid_len, 16);
    assert_memory_equal(seid, "SE00000000000042", 16);
    assert_int_equal(sim_pop_identity(p, 1000, msisdn, seid, &seid_len), -ENOENT);

    assert_int_equal(sim_pop_scp80_keys(p, 42, tar_isd, &ks, &e), 0);
    assert_int_equal(ks.kvn, 1);
    assert_memory_equal(ks.tar, tar_isd, 3);
    derive(c, seed, "KIC", 42, want);
    assert_int_equal(ks.kic.cipher, OTA_CIPHER_AES);
    assert_int_equal(ks.kic.len, 16);
    assert_memory_equal(ks.kic.bytes, want, 16);
    derive(c, seed, "KID", 42, want);
    assert_memory_equal(ks.kid.bytes, want, 16);
    /* RFM TAR: same keys */
    assert_int_equal(sim_pop_scp80_keys(p, 42, tar_rfm, &ks2, &e), 0);
    assert_memory_equal(ks2.kic.bytes, ks.kic.bytes, 16);
    assert_memory_equal(ks2.tar, tar_rfm, 3);
    /* deterministic across instances, different per seed and per index */
    assert_int_equal(sim_pop_scp80_keys(q, 42, tar_isd, &ks2, &e), 0);
    assert_memory_equal(ks2.kic.bytes, ks.kic.bytes, 16);
    assert_int_equal(sim_pop_scp80_keys(r, 42, tar_isd, &ks3, &e), 0);
    assert_memory_not_equal(ks3.kic.bytes, ks.kic.bytes, 16);
    assert_int_equal(sim_pop_scp80_keys(p, 43, tar_isd, &ks3, &e), 0);
    assert_memory_not_equal(ks3.kic.bytes, ks.kic.bytes, 16);
    assert_memory_not_equal(ks.kic.bytes, ks.kid.bytes, 16);
    /* SCP02 */
    assert_int_equal(sim_pop_scp02_keys(p, 42, 0x20, &k2, &e), 0);
    assert_int_equal(k2.kvn, 0x20);
    assert_int_equal(k2.keys.enc.cipher, OTA_CIPHER_3DES2);
    derive(c, seed, "ENC", 42, want);
    assert_memory_equal(k2.keys.enc.bytes, want, 16);
    derive(c, seed, "MAC", 42, want);
    assert_memory_equal(k2.keys.mac.bytes, want, 16);
    derive(c, seed, "DEK", 42, want);
    assert_memory_equal(k2.keys.dek.bytes, want, 16);
    assert_int_equal(sim_pop_scp02_keys(p, 42, 0x21, &k2, &e), -ENOENT);
    sim_pop_free(p);
    sim_pop_free(q);
    sim_pop_free(r);
    ota_crypto_free(c);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_generate_ten_million(void **state)
{
    static const uint8_t seed[16] = {9};
    const uint64_t n = 10000000, base = 8613000000000ull;
    struct sim_pop *p = NULL;
    struct ota_push push = {0}, got;
    uint8_t ud[OTA_PUSH_UD_MAX];
    char msisdn[SIM_MSISDN_MAX + 1];
    uint8_t seid[SIM_SEID_MAX];
    size_t seid_len = 0;
    enum sim_outcome out = SIM_OUT_INVALID;
    struct sim_counts cnt;
    struct sim_mo mo;
    struct ota_err e;
    double t0;
    int len;

    (void)state;
    t0 = now_s();
    assert_int_equal(sim_pop_generate(n, base, seed, &p, &e), 0);
    /* nothing per SE: creation is instant whatever n is */
    assert_true(now_s() - t0 < 0.5);
    assert_int_equal(sim_pop_size(p), n);
    assert_int_equal(sim_pop_n_touched(p), 0);
    assert_int_equal(sim_pop_identity(p, n - 1, msisdn, seid, &seid_len), 0);
    assert_string_equal(msisdn, "8613009999999");
    push.dst_port = 8000;
    push.seid_len = 16;
    for (uint64_t k = 0; k < 1000; k++) {
        uint64_t i = (k * 9973u) % n;

        assert_int_equal(sim_pop_identity(p, i, msisdn, push.seid, &seid_len), 0);
        memcpy(push.serial, &k, sizeof(k));
        len = ota_push_encode(&push, ud, sizeof(ud), &e);
        assert_true(len > 0);
        assert_int_equal(
            sim_card_deliver(p, msisdn, ud, (size_t)len, true, 0x00, 0xF5, 0, &out, &mo, &e), 0);
        assert_int_equal(out, SIM_OUT_PUSH);
    }
    /* again the same SEs: no new state */
    assert_int_equal(sim_pop_identity(p, 9973, msisdn, seid, &seid_len), 0);
    assert_int_equal(
        sim_card_deliver(p, msisdn, ud, (size_t)len, true, 0x00, 0xF5, 0, &out, &mo, &e), 0);
    assert_int_equal(sim_pop_n_touched(p), 1000);
    assert_int_equal(sim_pop_last_push(p, "+8613000019946", &got), 0);
    assert_memory_equal(got.seid, "SE00000000019946", 16);
    assert_int_equal(got.serial[0], 2);
    assert_int_equal(sim_pop_last_push(p, "8613000000002", &got), -ENOENT);
    /* outside the range, or not digits */
    assert_int_equal(
        sim_card_deliver(p, "8613010000000", ud, (size_t)len, true, 0, 0xF5, 0, &out, &mo, &e), 0);
    assert_int_equal(out, SIM_OUT_UNKNOWN_SE);
    assert_int_equal(
        sim_card_deliver(p, "8612999999999", ud, (size_t)len, true, 0, 0xF5, 0, &out, &mo, &e), 0);
    assert_int_equal(out, SIM_OUT_UNKNOWN_SE);
    assert_int_equal(
        sim_card_deliver(p, "86130000x0001", ud, (size_t)len, true, 0, 0xF5, 0, &out, &mo, &e), 0);
    assert_int_equal(out, SIM_OUT_UNKNOWN_SE);
    assert_int_equal(sim_card_deliver(p, "", ud, (size_t)len, true, 0, 0xF5, 0, &out, &mo, &e), 0);
    assert_int_equal(out, SIM_OUT_UNKNOWN_SE);
    sim_pop_counts(p, &cnt);
    assert_int_equal(cnt.pushes, 1001);
    assert_int_equal(cnt.unknown_se, 4);
    assert_int_equal(sim_pop_n_touched(p), 1000);
    sim_pop_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_bad_lines), cmocka_unit_test(test_file_bad_files),
        cmocka_unit_test(test_file_sample),    cmocka_unit_test(test_generate_bad),
        cmocka_unit_test(test_generate_keys),  cmocka_unit_test(test_generate_ten_million),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
