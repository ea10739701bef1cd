/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ota/udh.c: the shared udh_parse vectors decode exactly, every truncation
 * and lying length is refused with its own code, the IE list survives a
 * build/parse round trip, and ota_udh_info() flags inconsistent known IEs.
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

/* Check a parsed UDH against the vector's expected udhl/ies(/payload). */
static void check_exp(const struct ota_udh *u, json_t *exp)
{
    uint8_t b[OTA_SMS_UD_MAX];
    json_t *ies = json_object_get(exp, "ies"), *ie, *pl;
    size_t i;

    assert_int_equal(u->udhl, json_integer_value(json_object_get(exp, "udhl")));
    assert_int_equal(u->n_ies, json_array_size(ies));
    json_array_foreach(ies, i, ie)
    {
        size_t n = ts_hex(json_string_value(json_object_get(ie, "iei")), b, sizeof(b));
        assert_int_equal(n, 1);
        assert_int_equal(u->ies[i].iei, b[0]);
        assert_int_equal(u->ies[i].len, json_integer_value(json_object_get(ie, "len")));
        n = ts_hex(json_string_value(json_object_get(ie, "value")), b, sizeof(b));
        assert_int_equal(n, u->ies[i].len);
        if (n) {
            assert_memory_equal(u->ies[i].val, b, n);
        }
    }
    pl = json_object_get(exp, "payload_after_udh");
    if (pl) {
        size_t n = ts_hex(json_string_value(pl), b, sizeof(b));
        assert_int_equal(u->payload_len, n);
        assert_memory_equal(u->payload, b, n);
    }
}

/* Every prefix shorter than 1 + UDHL fails TRUNCATED and leaves *out alone. */
static void check_truncations(const uint8_t *ud, size_t len)
{
    struct ota_udh u, keep;
    struct ota_err e;

    memset(&keep, 0xa5, sizeof(keep));
    for (size_t n = 0; n < len; n++) {
        u = keep;
        int rc = ota_udh_parse(ud, n, &u, &e);
        if (n < 1 + (size_t)ud[0]) {
            assert_int_equal(rc, -EBADMSG);
            assert_int_equal(e.code, OTA_ERR_TRUNCATED);
            assert_memory_equal(&u, &keep, sizeof(u));
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(u.payload_len, n - 1 - ud[0]);
        }
    }
}

/* Build from the parsed IE list and payload; bytes must be identical. */
static void check_roundtrip(const uint8_t *ud, size_t len)
{
    struct ota_udh u, u2;
    uint8_t out[OTA_SMS_UD_MAX];

    assert_int_equal(ota_udh_parse(ud, len, &u, NULL), 0);
    assert_int_equal(
        ota_udh_build(u.ies, u.n_ies, u.payload, u.payload_len, out, sizeof(out), NULL), (int)len);
    assert_memory_equal(out, ud, len);
    assert_int_equal(ota_udh_parse(out, len, &u2, NULL), 0);
    assert_int_equal(u2.n_ies, u.n_ies);
    assert_int_equal(u2.udhl, u.udhl);
}

static void test_vectors(void **state)
{
    json_t *root = ts_vectors_load(), *v;
    uint8_t ud[OTA_SMS_UD_MAX];
    struct ota_udh u;
    size_t i, n_ud = 0;
    (void)state;

    assert_non_null(root);
    json_array_foreach(json_object_get(root, "vectors"), i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "type")), "udh_parse")) {
            continue;
        }
        json_t *in = json_object_get(json_object_get(v, "inputs"), "user_data");
        if (!in) {
            continue; /* the TPDU vector is covered by test_tpdu.c */
        }
        size_t n = ts_hex(json_string_value(in), ud, sizeof(ud));
        assert_int_equal(ota_udh_parse(ud, n, &u, NULL), 0);
        check_exp(&u, json_object_get(v, "expected"));
        check_truncations(ud, n);
        check_roundtrip(ud, n);
        n_ud++;
    }
    assert_true(n_ud >= 2);

    /* the two named ones, with their semantics */
    struct ota_udh_info in;
    size_t n = ts_hex("0571007001ffabcd", ud, sizeof(ud));
    assert_int_equal(ota_udh_parse(ud, n, &u, NULL), 0);
    check_exp(&u, json_object_get(ts_vector_by_id(root, "pysim-udh-two-ies"), "expected"));
    assert_int_equal(ota_udh_info(&u, &in, NULL), 0);
    assert_true(in.has_rpi);
    assert_true(in.has_cpi);
    assert_int_equal(in.cpi_len, 1);
    assert_int_equal(in.rpi_len, 0);
    assert_false(in.has_concat);
    assert_false(in.has_ports);
    n = ts_hex("027100abcdef", ud, sizeof(ud));
    assert_int_equal(ota_udh_parse(ud, n, &u, NULL), 0);
    check_exp(&u, json_object_get(ts_vector_by_id(root, "pysim-udh-rpi"), "expected"));
    assert_null(u.ies[0].val);
    json_decref(root);
}

static void expect_parse_err(const char *h, int rc, enum ota_errc code)
{
    uint8_t ud[200];
    struct ota_udh u, keep;
    struct ota_err e;
    size_t n = ts_hex(h, ud, sizeof(ud));

    memset(&keep, 0x5a, sizeof(keep));
    u = keep;
    assert_int_equal(ota_udh_parse(ud, n, &u, &e), rc);
    assert_int_equal(e.code, code);
    assert_true(strlen(e.msg) > 0);
    assert_memory_equal(&u, &keep, sizeof(u));
}

static void test_bad(void **state)
{
    (void)state;
    expect_parse_err("", -EBADMSG, OTA_ERR_TRUNCATED);
    /* UDHL beyond the data */
    expect_parse_err("037100", -EBADMSG, OTA_ERR_TRUNCATED);
    expect_parse_err("ff", -EBADMSG, OTA_ERR_TRUNCATED);
    /* IE length beyond UDHL (value would run into the payload) */
    expect_parse_err("02050423f423f4", -EBADMSG, OTA_ERR_LENGTH);
    expect_parse_err("0b050523f423f4000301020142", -EBADMSG, OTA_ERR_LENGTH);
    /* IE cut by UDHL: IEI without IEDL */
    expect_parse_err("01710000", -EBADMSG, OTA_ERR_LENGTH);
    expect_parse_err("03710070aa", -EBADMSG, OTA_ERR_LENGTH);
    /* over 140 octets */
    char big[2 * 141 + 1];
    memset(big, '0', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_parse_err(big, -EMSGSIZE, OTA_ERR_OVERSIZE);
    assert_int_equal(ota_udh_parse(NULL, 3, NULL, NULL), -EINVAL);
}

static void test_edges(void **state)
{
    uint8_t ud[OTA_SMS_UD_MAX];
    struct ota_udh u;
    struct ota_err e;
    (void)state;

    /* UDHL 0: empty header, everything else is payload */
    size_t n = ts_hex("00abcd", ud, sizeof(ud));
    assert_int_equal(ota_udh_parse(ud, n, &u, NULL), 0);
    assert_int_equal(u.n_ies, 0);
    assert_int_equal(u.payload_len, 2);
    check_roundtrip(ud, n);
    /* UDH only, no payload */
    n = ts_hex("027000", ud, sizeof(ud));
    assert_int_equal(ota_udh_parse(ud, n, &u, NULL), 0);
    assert_int_equal(u.payload_len, 0);
    check_roundtrip(ud, n);

    /* the most IEs 140 octets can hold: UDHL 138 = 69 empty IEs, 1 payload octet */
    ud[0] = 138;
    for (size_t i = 0; i < 69; i++) {
        ud[1 + 2 * i] = (uint8_t)(0x20 + i);
        ud[2 + 2 * i] = 0;
    }
    ud[139] = 0x42;
    assert_int_equal(ota_udh_parse(ud, 140, &u, NULL), 0);
    assert_int_equal(u.n_ies, 69);
    assert_int_equal(u.ies[68].iei, 0x20 + 68);
    check_roundtrip(ud, 140);
    /* UDHL 139: the 70th IEI has no IEDL */
    ud[0] = 139;
    assert_int_equal(ota_udh_parse(ud, 140, &u, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);

    /* unknown IEs are kept in order, with their values */
    n = ts_hex("0a24020102a00170000100abcd", ud, sizeof(ud));
    assert_int_equal(ota_udh_parse(ud, n, &u, NULL), 0);
    assert_int_equal(u.n_ies, 3);
    assert_int_equal(u.ies[0].iei, 0x24);
    assert_int_equal(u.ies[1].iei, 0xa0);
    assert_int_equal(u.ies[1].val[0], 0x70);
    assert_int_equal(u.ies[2].iei, 0x00);
    assert_int_equal(u.ies[2].len, 1);
    check_roundtrip(ud, n);
    /* the generic parse keeps a concat IE of the wrong length; info refuses it */
    struct ota_udh_info in;
    assert_int_equal(ota_udh_info(&u, &in, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_VALUE);
}

static void expect_info(const char *h, int rc, enum ota_errc code, struct ota_udh_info *out)
{
    uint8_t ud[OTA_SMS_UD_MAX];
    struct ota_udh u;
    struct ota_udh_info in, keep;
    struct ota_err e = {0};
    size_t n = ts_hex(h, ud, sizeof(ud));

    assert_int_equal(ota_udh_parse(ud, n, &u, NULL), 0);
    memset(&keep, 0x3c, sizeof(keep));
    in = keep;
    assert_int_equal(ota_udh_info(&u, &in, &e), rc);
    if (rc) {
        assert_int_equal(e.code, code);
        assert_memory_equal(&in, &keep, sizeof(in));
    } else if (out) {
        *out = in;
    }
}

static void test_info(void **state)
{
    struct ota_udh_info in;
    (void)state;

    expect_info("0b050423f423f4000301020142", 0, OTA_OK, &in);
    assert_true(in.has_ports);
    assert_true(in.ports16);
    assert_int_equal(in.dst_port, 0x23f4);
    assert_int_equal(in.src_port, 0x23f4);
    assert_true(in.has_concat);
    assert_false(in.concat16);
    assert_int_equal(in.ref, 1);
    assert_int_equal(in.total, 2);
    assert_int_equal(in.seq, 1);

    expect_info("0c0804beef030370000402105f", 0, OTA_OK, &in);
    assert_true(in.concat16);
    assert_int_equal(in.ref, 0xbeef);
    assert_int_equal(in.seq, 3);
    assert_int_equal(in.total, 3);
    assert_true(in.has_cpi);
    assert_int_equal(in.cpi_len, 0);
    assert_false(in.ports16);
    assert_int_equal(in.dst_port, 0x10);
    assert_int_equal(in.src_port, 0x5f);

    /* unknown IEs do not bother the helper */
    expect_info("0424020102", 0, OTA_OK, &in);
    assert_false(in.has_concat);

    /* known IEs of the wrong length */
    expect_info("0400020102", -EBADMSG, OTA_ERR_VALUE, NULL);
    expect_info("050803010201", -EBADMSG, OTA_ERR_VALUE, NULL);
    expect_info("0405020102", -EBADMSG, OTA_ERR_VALUE, NULL);
    expect_info("050403010203", -EBADMSG, OTA_ERR_VALUE, NULL);
    /* seq 0, seq > total, total 0 */
    expect_info("0500030a0300", -EBADMSG, OTA_ERR_VALUE, NULL);
    expect_info("0500030a0304", -EBADMSG, OTA_ERR_VALUE, NULL);
    expect_info("0500030a0000", -EBADMSG, OTA_ERR_VALUE, NULL);
    expect_info("06080400010203", -EBADMSG, OTA_ERR_VALUE, NULL);
    /* duplicates */
    expect_info("0a0003010201000301020b", -EBADMSG, OTA_ERR_DUPLICATE, NULL);
    expect_info("0b0003010201080400010201", -EBADMSG, OTA_ERR_DUPLICATE, NULL);
    expect_info("0a0402010205040001000a", -EBADMSG, OTA_ERR_DUPLICATE, NULL);
    assert_int_equal(ota_udh_info(NULL, &in, NULL), -EINVAL);
}

static void test_build(void **state)
{
    static const uint8_t ports[4] = {0x23, 0xf4, 0x23, 0xf4}, cref[3] = {1, 2, 1};
    const struct ota_udh_ie ies[] = {
        {.iei = OTA_IEI_PORT16, .len = 4, .val = ports},
        {.iei = OTA_IEI_CONCAT8, .len = 3, .val = cref},
        {.iei = OTA_IEI_CPI, .len = 0, .val = NULL},
    };
    static const uint8_t pl[2] = {0xab, 0xcd};
    uint8_t want[32], out[OTA_SMS_UD_MAX], keep[OTA_SMS_UD_MAX];
    struct ota_err e;
    size_t n = ts_hex("0d050423f423f4000301020170"
                      "00abcd",
                      want, sizeof(want));
    (void)state;

    assert_int_equal(ota_udh_build(ies, 3, pl, 2, out, sizeof(out), &e), (int)n);
    assert_memory_equal(out, want, n);
    /* every cap below the size: NOSPACE, dst untouched */
    memset(keep, 0xee, sizeof(keep));
    for (size_t cap = 0; cap < n; cap++) {
        memcpy(out, keep, sizeof(out));
        assert_int_equal(ota_udh_build(ies, 3, pl, 2, out, cap, &e), -ENOSPC);
        assert_int_equal(e.code, OTA_ERR_NOSPACE);
        assert_memory_equal(out, keep, sizeof(out));
    }
    /* no IEs, no payload: just UDHL 00 */
    assert_int_equal(ota_udh_build(NULL, 0, NULL, 0, out, 1, NULL), 1);
    assert_int_equal(out[0], 0);
    /* UDH + payload over 140 */
    uint8_t big[OTA_SMS_UD_MAX] = {0};
    assert_int_equal(ota_udh_build(ies, 3, big, 140 - 13, out, sizeof(out), &e), -EMSGSIZE);
    assert_int_equal(e.code, OTA_ERR_OVERSIZE);
    assert_int_equal(ota_udh_build(ies, 3, big, 140 - 14, out, sizeof(out), &e), 140);
    /* value missing */
    const struct ota_udh_ie bad = {.iei = 0x24, .len = 1, .val = NULL};
    assert_int_equal(ota_udh_build(&bad, 1, NULL, 0, out, sizeof(out), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    assert_int_equal(ota_udh_build(ies, 71, NULL, 0, out, sizeof(out), &e), -EINVAL);
    assert_int_equal(ota_udh_build(ies, 1, NULL, 3, out, sizeof(out), &e), -EINVAL);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(ota_iei_name(OTA_IEI_CONCAT8), "concat8");
    assert_string_equal(ota_iei_name(OTA_IEI_CONCAT16), "concat16");
    assert_string_equal(ota_iei_name(OTA_IEI_PORT8), "port8");
    assert_string_equal(ota_iei_name(OTA_IEI_PORT16), "port16");
    assert_string_equal(ota_iei_name(OTA_IEI_CPI), "cpi");
    assert_string_equal(ota_iei_name(OTA_IEI_RPI), "rpi");
    assert_string_equal(ota_iei_name(0x24), "unknown");
    assert_string_equal(ota_iei_name(999), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad),     cmocka_unit_test(test_edges), cmocka_unit_test(test_info),
        cmocka_unit_test(test_vectors), cmocka_unit_test(test_build), cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
