/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ota/tpdu.c: the shared SMS-SUBMIT prefix (pysim-submit-port16-concat8) and
 * SMS-DELIVER (pysim-3des-ciph-cc) vectors parse and build byte-exact; every
 * truncation, reserved value and lying UDL is refused with its own code.
 */
#include "ota/ota.h"
#include "tests/support/tsupport.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <osmocom/core/utils.h>

static const char *sget(json_t *o, const char *a, const char *b)
{
    const char *s = json_string_value(json_object_get(json_object_get(o, a), b));
    assert_non_null(s);
    return s;
}

static void expect_err(const uint8_t *p, size_t len, bool prefix, int rc, enum ota_errc code)
{
    struct ota_tpdu t, keep;
    struct ota_err e;

    memset(&keep, 0x6b, sizeof(keep));
    t = keep;
    assert_int_equal(ota_tpdu_parse(p, len, prefix, &t, &e), rc);
    assert_int_equal(e.code, code);
    assert_memory_equal(&t, &keep, sizeof(t));
}

static void test_submit_vector(void **state)
{
    json_t *root = ts_vectors_load(), *v, *ies, *ie;
    uint8_t p[64], b[16];
    struct ota_tpdu t;
    struct ota_udh u;
    size_t n, i;
    (void)state;

    assert_non_null(root);
    v = ts_vector_by_id(root, "pysim-submit-port16-concat8");
    n = ts_hex(sget(v, "inputs", "sms_submit_tpdu_prefix"), p, sizeof(p));
    /* UD is cut: only prefix mode accepts it */
    expect_err(p, n, false, -EBADMSG, OTA_ERR_TRUNCATED);
    assert_int_equal(ota_tpdu_parse(p, n, true, &t, NULL), 0);
    assert_int_equal(t.mti, OTA_TPDU_SUBMIT);
    assert_true(t.udhi);
    assert_int_equal(t.udhi,
                     json_is_true(json_object_get(json_object_get(v, "expected"), "tp_udhi")));
    assert_int_equal(t.mr, 0x0d);
    assert_int_equal(t.addr.ton_npi, 0x91);
    assert_int_equal(t.addr.n_semi, 11);
    assert_string_equal(t.addr.digits, "61416271170");
    ts_hex(sget(v, "expected", "tp_pid"), b, 1);
    assert_int_equal(t.pid, b[0]);
    ts_hex(sget(v, "expected", "tp_dcs"), b, 1);
    assert_int_equal(t.dcs, b[0]);
    assert_int_equal(t.alphabet, OTA_TPDU_ALPHA_8BIT);
    assert_int_equal(t.vpf, OTA_TPDU_VPF_RELATIVE);
    assert_int_equal(t.vp_len, 1);
    assert_int_equal(t.vp[0], 0xa7);
    assert_int_equal(t.udl,
                     json_integer_value(json_object_get(json_object_get(v, "expected"), "tp_udl")));
    assert_true(t.ud_partial);
    assert_int_equal(t.ud_len, 13);
    /* the UDH inside the partial UD */
    assert_int_equal(ota_udh_parse(t.ud, t.ud_len, &u, NULL), 0);
    ies = json_object_get(json_object_get(v, "expected"), "ies");
    assert_int_equal(u.udhl,
                     json_integer_value(json_object_get(json_object_get(v, "expected"), "udhl")));
    assert_int_equal(u.n_ies, json_array_size(ies));
    json_array_foreach(ies, i, ie)
    {
        ts_hex(json_string_value(json_object_get(ie, "iei")), b, 1);
        assert_int_equal(u.ies[i].iei, b[0]);
        size_t vl = ts_hex(json_string_value(json_object_get(ie, "value")), b, sizeof(b));
        assert_int_equal(u.ies[i].len, vl);
        assert_memory_equal(u.ies[i].val, b, vl);
    }
    /* every cut inside the header fails even in prefix mode (UDL at offset 13) */
    for (size_t k = 0; k < 14; k++) {
        expect_err(p, k, true, -EBADMSG, OTA_ERR_TRUNCATED);
    }
    for (size_t k = 14; k <= n; k++) {
        assert_int_equal(ota_tpdu_parse(p, k, true, &t, NULL), 0);
        assert_int_equal(t.ud_len, k - 14);
    }
    json_decref(root);
}

static void test_deliver_vector(void **state)
{
    json_t *root = ts_vectors_load(), *v;
    uint8_t want[200], ud[OTA_SMS_UD_MAX], out[200], keep[200], pkt[OTA_SMS_UD_MAX];
    struct ota_tpdu_deliver_params prm = {0};
    struct ota_tpdu t;
    struct ota_udh u;
    struct ota_err e;
    size_t n, n_ud, n_pkt;
    (void)state;

    assert_non_null(root);
    v = ts_vector_by_id(root, "pysim-3des-ciph-cc");
    n = ts_hex(sget(v, "expected", "sms_deliver_tpdu_ts23040"), want, sizeof(want));
    n_ud = ts_hex(sget(v, "expected", "sms_user_data_single"), ud, sizeof(ud));
    n_pkt = ts_hex(sget(v, "expected", "command_packet"), pkt, sizeof(pkt));

    prm.oa = "12345678";
    prm.oa_ton_npi = OTA_TPDU_TON_NPI_UNKNOWN;
    prm.pid = 0x7f;
    prm.dcs = 0xf6;
    ts_hex("22705200000000", prm.scts, sizeof(prm.scts));
    prm.udhi = true;
    prm.ud = ud;
    prm.ud_len = n_ud;
    assert_int_equal(ota_tpdu_build_deliver(&prm, out, sizeof(out), NULL), (int)n);
    assert_memory_equal(out, want, n);
    /* every short cap: NOSPACE, dst untouched */
    memset(keep, 0x5e, sizeof(keep));
    for (size_t cap = 0; cap < n; cap++) {
        memcpy(out, keep, sizeof(out));
        assert_int_equal(ota_tpdu_build_deliver(&prm, out, cap, &e), -ENOSPC);
        assert_int_equal(e.code, OTA_ERR_NOSPACE);
        assert_memory_equal(out, keep, sizeof(out));
    }

    assert_int_equal(ota_tpdu_parse(want, n, false, &t, NULL), 0);
    assert_int_equal(t.mti, OTA_TPDU_DELIVER);
    assert_true(t.udhi);
    assert_int_equal(t.addr.ton_npi, 0x81);
    assert_string_equal(t.addr.digits, "12345678");
    assert_int_equal(t.pid, 0x7f);
    assert_int_equal(t.dcs, 0xf6);
    assert_memory_equal(t.scts, prm.scts, 7);
    assert_int_equal(t.udl, 0x25);
    assert_int_equal(t.ud_len, n_ud);
    assert_false(t.ud_partial);
    assert_int_equal(t.vpf, OTA_TPDU_VPF_NONE);
    assert_int_equal(ota_udh_parse(t.ud, t.ud_len, &u, NULL), 0);
    assert_int_equal(u.n_ies, 1);
    assert_int_equal(u.ies[0].iei, OTA_IEI_CPI);
    assert_int_equal(u.payload_len, n_pkt);
    assert_memory_equal(u.payload, pkt, n_pkt);
    /* every truncation: TRUNCATED; one octet more: LENGTH */
    for (size_t k = 0; k < n; k++) {
        expect_err(want, k, false, -EBADMSG, OTA_ERR_TRUNCATED);
    }
    want[n] = 0;
    expect_err(want, n + 1, false, -EBADMSG, OTA_ERR_LENGTH);
    expect_err(want, n + 1, true, -EBADMSG, OTA_ERR_LENGTH);

    /* odd digit count gets the F filler and parses back */
    prm.oa = "12345";
    int m = ota_tpdu_build_deliver(&prm, out, sizeof(out), NULL);
    assert_true(m > 0);
    assert_int_equal(out[1], 5);
    assert_int_equal(out[5], 0xf5);
    assert_int_equal(ota_tpdu_parse(out, (size_t)m, false, &t, NULL), 0);
    assert_string_equal(t.addr.digits, "12345");
    json_decref(root);
}

static void test_build_bad(void **state)
{
    uint8_t out[200], ud[OTA_SMS_UD_MAX + 1] = {0};
    struct ota_tpdu_deliver_params prm = {
        .oa = "123", .oa_ton_npi = 0x91, .dcs = 0x04, .ud = ud, .ud_len = 10};
    struct ota_err e;
    (void)state;

    assert_int_equal(ota_tpdu_build_deliver(&prm, out, sizeof(out), NULL),
                     1 + 2 + 2 + 2 + 7 + 1 + 10);
    assert_int_equal(out[0], 0x00);
    prm.no_more_msgs = prm.sri = prm.rp = true;
    assert_true(ota_tpdu_build_deliver(&prm, out, sizeof(out), NULL) > 0);
    assert_int_equal(out[0], 0xa4);
    prm.dcs = 0x00; /* GSM 7-bit */
    assert_int_equal(ota_tpdu_build_deliver(&prm, out, sizeof(out), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    prm.dcs = 0x80; /* reserved group */
    assert_int_equal(ota_tpdu_build_deliver(&prm, out, sizeof(out), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    prm.dcs = 0x08; /* UCS-2 counts octets: fine */
    assert_true(ota_tpdu_build_deliver(&prm, out, sizeof(out), NULL) > 0);
    prm.ud_len = OTA_SMS_UD_MAX + 1;
    assert_int_equal(ota_tpdu_build_deliver(&prm, out, sizeof(out), &e), -EMSGSIZE);
    assert_int_equal(e.code, OTA_ERR_OVERSIZE);
    prm.ud_len = 1;
    prm.oa = "12x";
    assert_int_equal(ota_tpdu_build_deliver(&prm, out, sizeof(out), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    prm.oa = "";
    assert_int_equal(ota_tpdu_build_deliver(&prm, out, sizeof(out), &e), -EINVAL);
    prm.oa = "123456789012345678901";
    assert_int_equal(ota_tpdu_build_deliver(&prm, out, sizeof(out), &e), -EINVAL);
    prm.oa = "12345678901234567890";
    assert_true(ota_tpdu_build_deliver(&prm, out, sizeof(out), NULL) > 0);
    prm.oa = "*#abc";
    int m = ota_tpdu_build_deliver(&prm, out, sizeof(out), NULL);
    struct ota_tpdu t;
    assert_int_equal(ota_tpdu_parse(out, (size_t)m, false, &t, NULL), 0);
    assert_string_equal(t.addr.digits, "*#abc");
    prm.ud = NULL;
    assert_int_equal(ota_tpdu_build_deliver(&prm, out, sizeof(out), &e), -EINVAL);
}

static void test_parse_bad(void **state)
{
    uint8_t p[200];
    struct ota_tpdu t;
    size_t n;
    (void)state;

    /* MTI 10 (status report / command) and 11 (reserved) */
    n = ts_hex("02", p, sizeof(p));
    expect_err(p, n, false, -EBADMSG, OTA_ERR_VALUE);
    n = ts_hex("03", p, sizeof(p));
    expect_err(p, n, true, -EBADMSG, OTA_ERR_VALUE);
    expect_err(p, 0, true, -EBADMSG, OTA_ERR_TRUNCATED);
    /* reserved DCS group 1000 */
    n = ts_hex("000281210080"
               "22705200000000"
               "00",
               p, sizeof(p));
    expect_err(p, n, false, -EBADMSG, OTA_ERR_VALUE);
    /* general group, alphabet 11 reserved */
    n = ts_hex("00028121000c"
               "22705200000000"
               "00",
               p, sizeof(p));
    expect_err(p, n, false, -EBADMSG, OTA_ERR_VALUE);
    /* address of 21 semi-octets */
    n = ts_hex("0015911122334455667788990011", p, sizeof(p));
    expect_err(p, n, true, -EBADMSG, OTA_ERR_OVERSIZE);
    /* filler F inside the digits */
    n = ts_hex("000481f1210004"
               "22705200000000"
               "00",
               p, sizeof(p));
    expect_err(p, n, false, -EBADMSG, OTA_ERR_VALUE);
    /* 8-bit UDL 141 */
    n = ts_hex("000281210004"
               "22705200000000"
               "8d",
               p, sizeof(p));
    expect_err(p, n, true, -EBADMSG, OTA_ERR_OVERSIZE);
    /* 8-bit UDL 140 with 140 octets is fine */
    p[n - 1] = 140;
    memset(p + n, 0x55, 140);
    assert_int_equal(ota_tpdu_parse(p, n + 140, false, &t, NULL), 0);
    assert_int_equal(t.ud_len, 140);

    /* 7-bit: UDL counts septets; "Hello" is 5 septets in 5 octets */
    n = ts_hex("000281210000"
               "22705200000000"
               "05c8329bfd06",
               p, sizeof(p));
    assert_int_equal(ota_tpdu_parse(p, n, false, &t, NULL), 0);
    assert_int_equal(t.alphabet, OTA_TPDU_ALPHA_7BIT);
    assert_int_equal(t.udl, 5);
    assert_int_equal(t.ud_len, 5);
    expect_err(p, n - 1, false, -EBADMSG, OTA_ERR_TRUNCATED);
    /* 160 septets = 140 octets; 161 septets is too many */
    n = ts_hex("000281210000"
               "22705200000000"
               "a0",
               p, sizeof(p));
    memset(p + n, 0x55, 140);
    assert_int_equal(ota_tpdu_parse(p, n + 140, false, &t, NULL), 0);
    assert_int_equal(t.ud_len, 140);
    p[n - 1] = 161;
    expect_err(p, n + 141, false, -EBADMSG, OTA_ERR_OVERSIZE);
    /* 8 septets need 7 octets */
    p[n - 1] = 8;
    assert_int_equal(ota_tpdu_parse(p, n + 7, false, &t, NULL), 0);
    expect_err(p, n + 8, false, -EBADMSG, OTA_ERR_LENGTH);

    /* alphanumeric originator "Hello" (TON 101) */
    n = ts_hex("000ad0c8329bfd06"
               "00f6"
               "22705200000000"
               "00",
               p, sizeof(p));
    assert_int_equal(ota_tpdu_parse(p, n, false, &t, NULL), 0);
    assert_string_equal(t.addr.digits, "Hello");
    assert_int_equal(t.addr.ton_npi, 0xd0);
    assert_int_equal(t.ud_len, 0);

    /* SUBMIT with absolute VP (7 octets); cut inside the VP */
    n = ts_hex("1901028121"
               "0004"
               "22705200000000"
               "01aa",
               p, sizeof(p));
    assert_int_equal(ota_tpdu_parse(p, n, false, &t, NULL), 0);
    assert_int_equal(t.vpf, OTA_TPDU_VPF_ABSOLUTE);
    assert_int_equal(t.vp_len, 7);
    assert_int_equal(t.mr, 1);
    assert_int_equal(t.ud[0], 0xaa);
    expect_err(p, 10, true, -EBADMSG, OTA_ERR_TRUNCATED);
    /* SUBMIT without VP */
    n = ts_hex("0101028121"
               "0004"
               "01aa",
               p, sizeof(p));
    assert_int_equal(ota_tpdu_parse(p, n, false, &t, NULL), 0);
    assert_int_equal(t.vpf, OTA_TPDU_VPF_NONE);
    assert_null(t.vp);
    for (size_t k = 0; k < n; k++) {
        expect_err(p, k, false, -EBADMSG, OTA_ERR_TRUNCATED);
    }
    assert_int_equal(ota_tpdu_parse(NULL, 3, false, &t, NULL), -EINVAL);

    assert_string_equal(ota_tpdu_mti_name(OTA_TPDU_SUBMIT), "sms-submit");
    assert_string_equal(ota_tpdu_alphabet_name(OTA_TPDU_ALPHA_UCS2), "ucs2");
    assert_string_equal(ota_tpdu_vpf_name(OTA_TPDU_VPF_ENHANCED), "enhanced");
    assert_string_equal(ota_tpdu_vpf_name((enum ota_tpdu_vpf)7), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_build_bad),
        cmocka_unit_test(test_submit_vector),
        cmocka_unit_test(test_deliver_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
