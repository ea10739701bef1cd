/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ota/rapdu.c: TS 102 226 compact scripts split by the case-2 rule and
 * rebuilt byte-exact (vector secured data), compact responses, expanded
 * Command / Response Scripting templates in both length codings; every
 * truncation, lying length and unknown tag refused with its own code.
 */
#include "ota/ota.h"
#include "tests/support/tsupport.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* ---- compact ---- */

/* Vector pysim-3des-ciph-cc family / gsm0348: SELECT, SELECT, READ BINARY Le 0A. */
static const char script_usim[] = "00a40004023f0000a40004022fe200b000000a";
/* Vector gsm0348-test023 style GSM script: 3 x SELECT, READ RECORD 1 mode 04 Le 05. */
static const char script_gsm[] = "a0a40000023f00a0a40000027f10a0a40000026f3ca0b2010405";

static void test_compact_split_vectors(void **state)
{
    uint8_t b[100], out[100];
    struct ota_apdu a[8];
    size_t n = 0, len;

    (void)state;
    len = ts_hex(script_usim, b, sizeof(b));
    assert_int_equal(ota_rapdu_compact_split(b, len, a, 8, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(a[0].ins, 0xa4);
    assert_int_equal(a[0].lc, 2);
    assert_false(a[0].has_le);
    assert_memory_equal(a[0].data, "\x3f\x00", 2);
    assert_memory_equal(a[1].data, "\x2f\xe2", 2);
    assert_int_equal(a[2].ins, 0xb0);
    assert_int_equal(a[2].lc, 0);
    assert_true(a[2].has_le);
    assert_int_equal(a[2].le, 0x0a);
    assert_int_equal(ota_rapdu_compact_build(a, n, out, sizeof(out), NULL), (int)len);
    assert_memory_equal(out, b, len);

    len = ts_hex(script_gsm, b, sizeof(b));
    assert_int_equal(ota_rapdu_compact_split(b, len, a, 8, &n, NULL), 0);
    assert_int_equal(n, 4);
    assert_int_equal(a[0].cla, 0xa0);
    assert_memory_equal(a[1].data, "\x7f\x10", 2);
    assert_memory_equal(a[2].data, "\x6f\x3c", 2);
    assert_int_equal(a[3].ins, 0xb2);
    assert_int_equal(a[3].p1, 0x01);
    assert_int_equal(a[3].p2, 0x04);
    assert_true(a[3].has_le);
    assert_int_equal(a[3].le, 0x05);
    assert_int_equal(ota_rapdu_compact_build(a, n, out, sizeof(out), NULL), (int)len);
    assert_memory_equal(out, b, len);
}

static void test_compact_split_truncations(void **state)
{
    uint8_t b[100];
    struct ota_apdu a[8];
    size_t len = ts_hex(script_usim, b, sizeof(b));

    (void)state;
    /* Valid prefixes end on a command, or leave a 4-octet case-1 tail. */
    for (size_t k = 0; k < len; k++) {
        struct ota_err err = {0};
        size_t n = 99;
        int rc = ota_rapdu_compact_split(b, k, a, 8, &n, &err);
        bool valid = k == 4 || k == 7 || k == 11 || k == 14 || k == 18;

        if (valid) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -EBADMSG);
            assert_int_equal(err.code, OTA_ERR_TRUNCATED);
            assert_int_equal(n, 99);
        }
    }
}

static void test_compact_split_limits(void **state)
{
    uint8_t b[100];
    struct ota_apdu a[8];
    struct ota_err err;
    size_t n = 77, len = ts_hex(script_usim, b, sizeof(b));

    (void)state;
    memset(a, 0xee, sizeof(a));
    assert_int_equal(ota_rapdu_compact_split(b, len, a, 2, &n, &err), -ENOSPC);
    assert_int_equal(err.code, OTA_ERR_LIMIT);
    assert_int_equal(n, 77);
    assert_int_equal(a[0].cla, 0xee); /* nothing written on failure */

    /* P3 00 of a non-case-2 command is case 1; a trailing 4-octet command too. */
    len = ts_hex("80f2200200"
                 "00a40004023f00"
                 "80e60c00",
                 b, sizeof(b));
    /* 80 F2 P1 20 is GET STATUS (data), so 00 = case 1. */
    assert_int_equal(ota_rapdu_compact_split(b, len, a, 8, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(a[0].lc, 0);
    assert_false(a[0].has_le);
    assert_int_equal(a[2].ins, 0xe6);
    assert_false(a[2].has_le);

    /* STATUS (F2, P1 00) and MANAGE CHANNEL open are case 2. */
    assert_true(ota_rapdu_is_case2(0x80, 0xf2, 0x00));
    assert_false(ota_rapdu_is_case2(0x80, 0xf2, 0x80));
    assert_true(ota_rapdu_is_case2(0x00, 0x70, 0x00));
    assert_false(ota_rapdu_is_case2(0x00, 0x70, 0x80));
    assert_true(ota_rapdu_is_case2(0x80, 0xca, 0x00));
    assert_false(ota_rapdu_is_case2(0x00, 0xa4, 0x04));
}

static void test_compact_build(void **state)
{
    static const uint8_t aid[] = {0xa0, 0x00, 0x00, 0x01, 0x51};
    struct ota_apdu a[3] = {
        {.cla = 0x80, .ins = 0xf2, .p1 = 0x80, .p2 = 0x02, .lc = 0}, /* case 1 */
        {.cla = 0x80,
         .ins = 0xe4,
         .p1 = 0x00,
         .p2 = 0x80,
         .data = aid,
         .lc = 5,
         .has_le = true},                                                   /* case 4 */
        {.cla = 0x80, .ins = 0xca, .p1 = 0x00, .p2 = 0x66, .has_le = true}, /* case 2 */
    };
    uint8_t out[64];
    struct ota_err err;
    int n;

    (void)state;
    n = ota_rapdu_compact_build(a, 3, out, sizeof(out), NULL);
    ts_assert_bytes(out, (size_t)n,
                    "80f2800200"
                    "80e4008005a000000151"
                    "80ca006600");
    for (size_t cap = 0; cap < (size_t)n; cap++) {
        uint8_t small[64];
        memset(small, 0xcc, sizeof(small));
        assert_int_equal(ota_rapdu_compact_build(a, 3, small, cap, &err), -ENOSPC);
        assert_int_equal(err.code, OTA_ERR_NOSPACE);
        assert_int_equal(small[0], 0xcc);
    }
    /* Forms the splitter would misread are refused. */
    struct ota_apdu bad = {.cla = 0x00, .ins = 0xa4, .p1 = 0x04, .has_le = true};
    assert_int_equal(ota_rapdu_compact_build(&bad, 1, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_ARG);
    bad = (struct ota_apdu){.cla = 0x00, .ins = 0xb0, .data = aid, .lc = 2};
    assert_int_equal(ota_rapdu_compact_build(&bad, 1, out, sizeof(out), &err), -EINVAL);
    bad = (struct ota_apdu){.cla = 0x00, .ins = 0xc0};
    assert_int_equal(ota_rapdu_compact_build(&bad, 1, out, sizeof(out), &err), -EINVAL);
    bad = (struct ota_apdu){.cla = 0x00, .ins = 0xd6, .lc = 2};
    assert_int_equal(ota_rapdu_compact_build(&bad, 1, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_rapdu_compact_build(a, 0, out, sizeof(out), &err), -EINVAL);
}

static void test_compact_rsp(void **state)
{
    uint8_t b[64], out[64];
    struct ota_rapdu_compact_rsp r;
    struct ota_err err;
    size_t len;

    (void)state;
    len = ts_hex("03900098103254769810325476", b, sizeof(b));
    assert_int_equal(ota_rapdu_compact_rsp_parse(b, len, &r, NULL), 0);
    assert_int_equal(r.n_executed, 3);
    assert_int_equal(r.sw, 0x9000);
    ts_assert_bytes(r.data, r.data_len, "98103254769810325476");
    assert_true(ota_rapdu_compact_rsp_ok(&r, 3));
    assert_false(ota_rapdu_compact_rsp_ok(&r, 4));
    assert_int_equal(ota_rapdu_compact_rsp_build(&r, out, sizeof(out), NULL), (int)len);
    assert_memory_equal(out, b, len);
    assert_int_equal(ota_rapdu_compact_rsp_build(&r, out, len - 1, &err), -ENOSPC);
    assert_int_equal(err.code, OTA_ERR_NOSPACE);

    len = ts_hex("016132", b, sizeof(b));
    assert_int_equal(ota_rapdu_compact_rsp_parse(b, len, &r, NULL), 0);
    assert_int_equal(r.n_executed, 1);
    assert_int_equal(r.sw, 0x6132);
    assert_int_equal(r.data_len, 0);
    assert_null(r.data);
    assert_true(ota_rapdu_compact_rsp_ok(&r, 1));

    len = ts_hex("026a82", b, sizeof(b));
    assert_int_equal(ota_rapdu_compact_rsp_parse(b, len, &r, NULL), 0);
    assert_false(ota_rapdu_compact_rsp_ok(&r, 2));

    for (size_t k = 0; k < 3; k++) {
        struct ota_rapdu_compact_rsp keep = {.n_executed = 42};
        assert_int_equal(ota_rapdu_compact_rsp_parse(b, k, &keep, &err), -EBADMSG);
        assert_int_equal(err.code, OTA_ERR_TRUNCATED);
        assert_int_equal(keep.n_executed, 42);
    }
}

/* ---- expanded command ---- */

static const char exp_def[] = "aa19"
                              "220700a40004023f00"
                              "220700a40004022fe2"
                              "220500b000000a";
static const char exp_indef[] = "ae80"
                                "220700a40004023f00"
                                "220700a40004022fe2"
                                "220500b000000a"
                                "0000";

static void test_exp_cmd_roundtrip(void **state)
{
    uint8_t b[100], out[100];
    struct ota_apdu a[8];
    struct ota_rapdu_cmd_tlv t[8];
    size_t n, len;
    bool indef;
    int rc;

    (void)state;
    len = ts_hex(script_usim, b, sizeof(b));
    assert_int_equal(ota_rapdu_compact_split(b, len, a, 8, &n, NULL), 0);

    rc = ota_rapdu_exp_cmd_build_apdus(a, n, false, out, sizeof(out), NULL);
    assert_true(rc > 0);
    ts_assert_bytes(out, (size_t)rc, exp_def);
    rc = ota_rapdu_exp_cmd_build_apdus(a, n, true, out, sizeof(out), NULL);
    assert_true(rc > 0);
    ts_assert_bytes(out, (size_t)rc, exp_indef);

    len = ts_hex(exp_def, b, sizeof(b));
    assert_int_equal(ota_rapdu_exp_cmd_parse(b, len, t, 8, &n, &indef, NULL), 0);
    assert_int_equal(n, 3);
    assert_false(indef);
    assert_int_equal(t[2].tag, 0x22);
    assert_int_equal(t[2].apdu.ins, 0xb0);
    assert_int_equal(t[2].apdu.le, 0x0a);
    rc = ota_rapdu_exp_cmd_build(t, n, false, out, sizeof(out), NULL);
    assert_int_equal(rc, (int)len);
    assert_memory_equal(out, b, len);

    len = ts_hex(exp_indef, b, sizeof(b));
    assert_int_equal(ota_rapdu_exp_cmd_parse(b, len, t, 8, &n, &indef, NULL), 0);
    assert_int_equal(n, 3);
    assert_true(indef);
    rc = ota_rapdu_exp_cmd_build(t, n, true, out, sizeof(out), NULL);
    assert_int_equal(rc, (int)len);
    assert_memory_equal(out, b, len);

    /* A single STORE DATA, both codings (as other RAM tools write them). */
    struct ota_apdu sd = {.cla = 0x80, .ins = 0xe2, .p1 = 0x90, .has_le = true};
    rc = ota_rapdu_exp_cmd_build_apdus(&sd, 1, false, out, sizeof(out), NULL);
    ts_assert_bytes(out, (size_t)rc, "aa07220580e2900000");
    rc = ota_rapdu_exp_cmd_build_apdus(&sd, 1, true, out, sizeof(out), NULL);
    ts_assert_bytes(out, (size_t)rc, "ae80220580e29000000000");

    /* Action TLVs travel with the C-APDUs. */
    static const uint8_t act[] = {0x01};
    struct ota_rapdu_cmd_tlv mix[2] = {
        {.tag = OTA_RAPDU_TAG_IMMEDIATE, .value = act, .len = 1},
        {.tag = OTA_RAPDU_TAG_C_APDU, .apdu = sd},
    };
    rc = ota_rapdu_exp_cmd_build(mix, 2, false, out, sizeof(out), NULL);
    ts_assert_bytes(out, (size_t)rc, "aa0a810101220580e2900000");
    assert_int_equal(ota_rapdu_exp_cmd_parse(out, (size_t)rc, t, 8, &n, &indef, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].tag, 0x81);
    assert_int_equal(t[0].len, 1);
    assert_int_equal(t[0].value[0], 0x01);
}

static void expect_cmd_err(const char *h, enum ota_errc code)
{
    uint8_t b[300];
    struct ota_rapdu_cmd_tlv t[8];
    struct ota_err err;
    size_t n = 55, len = ts_hex(h, b, sizeof(b));
    bool indef = true;

    assert_true(ota_rapdu_exp_cmd_parse(b, len, t, 8, &n, &indef, &err) < 0);
    assert_int_equal(err.code, code);
    assert_int_equal(n, 55);
    assert_true(indef);
}

static void test_exp_cmd_bad(void **state)
{
    uint8_t b[100];
    size_t len;

    (void)state;
    /* Every truncation of both codings. */
    len = ts_hex(exp_def, b, sizeof(b));
    for (size_t k = 0; k < len; k++) {
        char h[300] = "";
        for (size_t i = 0; i < k; i++) {
            sprintf(h + 2 * i, "%02x", b[i]);
        }
        expect_cmd_err(h, OTA_ERR_TRUNCATED);
    }
    len = ts_hex(exp_indef, b, sizeof(b));
    for (size_t k = 0; k < len; k++) {
        char h[300] = "";
        for (size_t i = 0; i < k; i++) {
            sprintf(h + 2 * i, "%02x", b[i]);
        }
        expect_cmd_err(h, OTA_ERR_TRUNCATED);
    }
    /* Lying lengths. */
    expect_cmd_err("aa05220580e29000", OTA_ERR_LENGTH);         /* inner runs past template */
    expect_cmd_err("aa07220580e2900000ff", OTA_ERR_LENGTH);     /* octet after the template */
    expect_cmd_err("ae81220580e29000000000", OTA_ERR_LENGTH);   /* AE not indefinite */
    expect_cmd_err("ae80220580e29000000001", OTA_ERR_LENGTH);   /* EOC 00 01 */
    expect_cmd_err("ae80220580e2900000000000", OTA_ERR_LENGTH); /* octet after EOC */
    expect_cmd_err("aa0122", OTA_ERR_TRUNCATED);                /* inner header cut */
    expect_cmd_err("aa03220180", OTA_ERR_TRUNCATED);            /* C-APDU of 1 octet */
    expect_cmd_err("aa8400000000", OTA_ERR_OVERSIZE);
    /* Unknown tags. */
    expect_cmd_err("ab07220580e2900000", OTA_ERR_TAG);
    expect_cmd_err("aa07240580e2900000", OTA_ERR_TAG);
    expect_cmd_err("aa0300", OTA_ERR_TRUNCATED);
    expect_cmd_err("aa020000", OTA_ERR_TAG);
    expect_cmd_err("", OTA_ERR_TRUNCATED);

    /* More TLVs than the caller has room for. */
    uint8_t in[100];
    struct ota_rapdu_cmd_tlv t[2];
    struct ota_err err;
    size_t n;
    bool indef;
    len = ts_hex(exp_def, in, sizeof(in));
    assert_int_equal(ota_rapdu_exp_cmd_parse(in, len, t, 2, &n, &indef, &err), -ENOSPC);
    assert_int_equal(err.code, OTA_ERR_LIMIT);

    /* Builder refusals. */
    struct ota_rapdu_cmd_tlv bad = {.tag = 0x23};
    assert_int_equal(ota_rapdu_exp_cmd_build(&bad, 1, false, b, sizeof(b), &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_ARG);
    struct ota_apdu sd = {.cla = 0x80, .ins = 0xe2, .p1 = 0x90, .has_le = true};
    for (size_t cap = 0; cap < 9; cap++) {
        assert_int_equal(ota_rapdu_exp_cmd_build_apdus(&sd, 1, false, b, cap, &err), -ENOSPC);
        assert_int_equal(err.code, OTA_ERR_NOSPACE);
    }
    assert_int_equal(ota_rapdu_exp_cmd_build_apdus(&sd, 0, false, b, sizeof(b), &err), -EINVAL);
}

static void test_exp_cmd_long(void **state)
{
    /* 200-octet data: C-APDU TLV and template both need the 81 form. */
    uint8_t data[200], out[300];
    struct ota_apdu a = {.cla = 0x80, .ins = 0xe8, .p1 = 0x80, .data = data, .lc = 200};
    struct ota_rapdu_cmd_tlv t[2];
    size_t n;
    bool indef;
    int rc;

    (void)state;
    memset(data, 0x42, sizeof(data));
    rc = ota_rapdu_exp_cmd_build_apdus(&a, 1, false, out, sizeof(out), NULL);
    assert_int_equal(rc, 3 + 3 + 205);
    assert_memory_equal(out, "\xaa\x81\xd0\x22\x81\xcd\x80\xe8\x80\x00\xc8", 11);
    assert_int_equal(ota_rapdu_exp_cmd_parse(out, (size_t)rc, t, 2, &n, &indef, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].apdu.lc, 200);
    assert_ptr_equal(t[0].apdu.data, out + 11);
}

/* ---- expanded response ---- */

static void test_exp_rsp(void **state)
{
    uint8_t b[100], out[100];
    struct ota_rapdu_exp_rsp r;
    struct ota_rapdu_rapdu ra[4];
    int rc;
    size_t len;

    (void)state;
    len = ts_hex("ab0d"
                 "800102"
                 "2304"
                 "3f009000"
                 "2302"
                 "6a82",
                 b, sizeof(b));
    assert_int_equal(ota_rapdu_exp_rsp_parse(b, len, &r, ra, 4, NULL), 0);
    assert_false(r.indefinite);
    assert_true(r.has_n_executed);
    assert_int_equal(r.n_executed, 2);
    assert_int_equal(r.n_rapdus, 2);
    ts_assert_bytes(ra[0].data, ra[0].data_len, "3f00");
    assert_int_equal(ra[0].sw, 0x9000);
    assert_int_equal(ra[1].data_len, 0);
    assert_null(ra[1].data);
    assert_int_equal(ra[1].sw, 0x6a82);
    assert_false(ota_rapdu_exp_rsp_ok(&r, ra, 2));
    rc = ota_rapdu_exp_rsp_build(&r, ra, out, sizeof(out), NULL);
    assert_int_equal(rc, (int)len);
    assert_memory_equal(out, b, len);

    /* Indefinite coding, as a card sends it over SCP81 / SMS. */
    len = ts_hex("af80"
                 "800101"
                 "2304"
                 "93059000"
                 "0000",
                 b, sizeof(b));
    assert_int_equal(ota_rapdu_exp_rsp_parse(b, len, &r, ra, 4, NULL), 0);
    assert_true(r.indefinite);
    assert_int_equal(r.n_executed, 1);
    assert_int_equal(r.n_rapdus, 1);
    ts_assert_bytes(ra[0].data, ra[0].data_len, "9305");
    assert_int_equal(ra[0].sw, 0x9000);
    assert_true(ota_rapdu_exp_rsp_ok(&r, ra, 1));
    assert_false(ota_rapdu_exp_rsp_ok(&r, ra, 2));
    rc = ota_rapdu_exp_rsp_build(&r, ra, out, sizeof(out), NULL);
    assert_int_equal(rc, (int)len);
    assert_memory_equal(out, b, len);

    /* Bad format TLV: the script failed even with a 9000 before it. */
    len = ts_hex("ab0a"
                 "800101"
                 "23029000"
                 "900101",
                 b, sizeof(b));
    assert_int_equal(ota_rapdu_exp_rsp_parse(b, len, &r, ra, 4, NULL), 0);
    assert_true(r.has_bad_format);
    assert_int_equal(r.bad_format, 1);
    assert_false(ota_rapdu_exp_rsp_ok(&r, ra, 1));
    rc = ota_rapdu_exp_rsp_build(&r, ra, out, sizeof(out), NULL);
    assert_int_equal(rc, (int)len);
    assert_memory_equal(out, b, len);

    /* 62F1 (data cut) is a failure; 61xx is fine. */
    len = ts_hex("ab08"
                 "2302"
                 "6110"
                 "2302"
                 "62f1",
                 b, sizeof(b));
    assert_int_equal(ota_rapdu_exp_rsp_parse(b, len, &r, ra, 4, NULL), 0);
    assert_false(r.has_n_executed);
    assert_false(ota_rapdu_exp_rsp_ok(&r, ra, 2));
    assert_true(ota_rapdu_exp_rsp_ok(&r, ra, 1) == false);

    /* Counts of 128 and over are 2-octet BER integers. */
    struct ota_rapdu_exp_rsp big = {.has_n_executed = true, .n_executed = 300};
    rc = ota_rapdu_exp_rsp_build(&big, NULL, out, sizeof(out), NULL);
    ts_assert_bytes(out, (size_t)rc, "ab048002012c");
    assert_int_equal(ota_rapdu_exp_rsp_parse(out, (size_t)rc, &r, ra, 4, NULL), 0);
    assert_int_equal(r.n_executed, 300);
}

static void expect_rsp_err(const char *h, enum ota_errc code)
{
    uint8_t b[300];
    struct ota_rapdu_exp_rsp r = {.n_rapdus = 99};
    struct ota_rapdu_rapdu ra[4];
    struct ota_err err;
    size_t len = ts_hex(h, b, sizeof(b));

    assert_true(ota_rapdu_exp_rsp_parse(b, len, &r, ra, 4, &err) < 0);
    assert_int_equal(err.code, code);
    assert_int_equal(r.n_rapdus, 99);
}

static void test_exp_rsp_bad(void **state)
{
    static const char *const good[] = {
        "ab0d8001022304"
        "3f009000"
        "23026a82",
        "af808001012304"
        "93059000"
        "0000",
    };
    uint8_t b[100];

    (void)state;
    for (size_t g = 0; g < OTA_ARRAY_SIZE(good); g++) {
        size_t len = ts_hex(good[g], b, sizeof(b));
        for (size_t k = 0; k < len; k++) {
            char h[300] = "";
            for (size_t i = 0; i < k; i++) {
                sprintf(h + 2 * i, "%02x", b[i]);
            }
            expect_rsp_err(h, OTA_ERR_TRUNCATED);
        }
    }
    expect_rsp_err("ab04230390", OTA_ERR_TRUNCATED);
    expect_rsp_err("ab0423039000", OTA_ERR_LENGTH); /* R-APDU past the template */
    expect_rsp_err("ab03230190", OTA_ERR_LENGTH);   /* R-APDU without SW */
    expect_rsp_err("ab06800101800101", OTA_ERR_DUPLICATE);
    expect_rsp_err("ab0690010190010a", OTA_ERR_DUPLICATE);
    expect_rsp_err("ab03800201", OTA_ERR_LENGTH); /* lying: 80 of 2, 1 left */
    expect_rsp_err("ab0080", OTA_ERR_LENGTH);     /* octet after the template */
    expect_rsp_err("ab0280", OTA_ERR_TRUNCATED);
    expect_rsp_err("ab028000", OTA_ERR_LENGTH);       /* 80 of 0 octets */
    expect_rsp_err("ab058003000001", OTA_ERR_LENGTH); /* 80 of 3 octets */
    expect_rsp_err("ab0490020101", OTA_ERR_LENGTH);   /* 90 of 2 octets */
    expect_rsp_err("ab048002ca00", OTA_ERR_VALUE);    /* negative count */
    expect_rsp_err("ab03910101", OTA_ERR_TAG);
    expect_rsp_err("aa03800101", OTA_ERR_TAG);
    expect_rsp_err("af808001010000ff", OTA_ERR_LENGTH);
    expect_rsp_err("af808001019101010000", OTA_ERR_TAG);
    expect_rsp_err("af80800101", OTA_ERR_TRUNCATED);

    /* More R-APDUs than room. */
    uint8_t in[64];
    struct ota_rapdu_exp_rsp r;
    struct ota_rapdu_rapdu ra[1];
    struct ota_err err;
    size_t len = ts_hex("ab0823029000"
                        "23029000",
                        in, sizeof(in));
    assert_int_equal(ota_rapdu_exp_rsp_parse(in, len, &r, ra, 1, &err), -ENOSPC);
    assert_int_equal(err.code, OTA_ERR_LIMIT);

    /* Builder: NOSPACE at every short cap. */
    assert_int_equal(ota_rapdu_exp_rsp_parse(in, len, &r, (struct ota_rapdu_rapdu[2]){0}, 2, NULL),
                     0);
    struct ota_rapdu_rapdu two[2] = {{.sw = 0x9000}, {.sw = 0x9000}};
    for (size_t cap = 0; cap < len; cap++) {
        assert_int_equal(ota_rapdu_exp_rsp_build(&r, two, b, cap, &err), -ENOSPC);
        assert_int_equal(err.code, OTA_ERR_NOSPACE);
    }
    struct ota_rapdu_exp_rsp big = {.has_n_executed = true, .n_executed = 0x8000};
    assert_int_equal(ota_rapdu_exp_rsp_build(&big, NULL, b, sizeof(b), &err), -EMSGSIZE);
}

static void test_format(void **state)
{
    enum ota_rapdu_format f = OTA_RAPDU_FORMAT__COUNT;
    struct ota_err err;

    (void)state;
    assert_int_equal(ota_rapdu_cmd_format((const uint8_t *)"\xaa", 1, &f, NULL), 0);
    assert_int_equal(f, OTA_RAPDU_EXPANDED_DEF);
    assert_int_equal(ota_rapdu_cmd_format((const uint8_t *)"\xae", 1, &f, NULL), 0);
    assert_int_equal(f, OTA_RAPDU_EXPANDED_INDEF);
    assert_int_equal(ota_rapdu_cmd_format((const uint8_t *)"\xa0", 1, &f, NULL), 0);
    assert_int_equal(f, OTA_RAPDU_COMPACT);
    assert_int_equal(ota_rapdu_rsp_format((const uint8_t *)"\xab", 1, &f, NULL), 0);
    assert_int_equal(f, OTA_RAPDU_EXPANDED_DEF);
    assert_int_equal(ota_rapdu_rsp_format((const uint8_t *)"\xaf", 1, &f, NULL), 0);
    assert_int_equal(f, OTA_RAPDU_EXPANDED_INDEF);
    assert_int_equal(ota_rapdu_rsp_format((const uint8_t *)"\x03", 1, &f, NULL), 0);
    assert_int_equal(f, OTA_RAPDU_COMPACT);
    assert_int_equal(ota_rapdu_rsp_format(NULL, 0, &f, &err), -EBADMSG);
    assert_int_equal(err.code, OTA_ERR_TRUNCATED);
    assert_string_equal(ota_rapdu_format_name(OTA_RAPDU_EXPANDED_INDEF), "expanded-indefinite");
    assert_string_equal(ota_rapdu_format_name(OTA_RAPDU_FORMAT__COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_split_truncations),
        cmocka_unit_test(test_compact_split_limits),
        cmocka_unit_test(test_exp_cmd_bad),
        cmocka_unit_test(test_exp_rsp_bad),
        cmocka_unit_test(test_compact_split_vectors),
        cmocka_unit_test(test_compact_build),
        cmocka_unit_test(test_compact_rsp),
        cmocka_unit_test(test_exp_cmd_roundtrip),
        cmocka_unit_test(test_exp_cmd_long),
        cmocka_unit_test(test_exp_rsp),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
