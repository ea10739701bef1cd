/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smpp/cmpp_msgid.c: Msg_Id bit layout (../shared/reference/cmpp.md §8) and
 * the canonical text form that every DLR match goes through (issue #4
 * "Lessons": hex vs decimal, dropped leading zeros). The composed value
 * 0xbb9ed00030390001 was computed independently with Python from the §8
 * formula: month 11, day 23, 07:45:00, gateway 12345, sequence 1.
 */
#include "smpp/cmpp.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#define ID1 0xbb9ed00030390001ull
#define ID1_CANON "bb9ed00030390001"

static void assert_parts(const struct cmpp_msgid_parts *a, const struct cmpp_msgid_parts *b)
{
    assert_int_equal(a->month, b->month);
    assert_int_equal(a->day, b->day);
    assert_int_equal(a->hour, b->hour);
    assert_int_equal(a->minute, b->minute);
    assert_int_equal(a->second, b->second);
    assert_int_equal(a->gateway, b->gateway);
    assert_int_equal(a->seq, b->seq);
}

static void test_layout(void **state)
{
    struct cmpp_msgid_parts m = {11, 23, 7, 45, 0, 12345, 1}, back;
    uint64_t id = 0;
    uint8_t raw[8];
    struct ota_err e;
    (void)state;

    assert_int_equal(cmpp_msgid_compose(&m, &id, NULL), 0);
    assert_true(id == ID1);
    cmpp_msgid_split(id, &back);
    assert_parts(&m, &back);
    cmpp_msgid_put(raw, id);
    assert_int_equal(raw[0], 0xbb);
    assert_int_equal(raw[7], 0x01);
    assert_true(cmpp_msgid_get(raw) == ID1);

    /* extremes of every field survive the round trip */
    struct cmpp_msgid_parts hi = {12, 31, 23, 59, 59, (1u << 22) - 1, 0xffff};
    assert_int_equal(cmpp_msgid_compose(&hi, &id, NULL), 0);
    cmpp_msgid_split(id, &back);
    assert_parts(&hi, &back);

    /* each field out of range is refused and *id is left alone */
    const struct cmpp_msgid_parts bad[] = {
        {0, 1, 0, 0, 0, 0, 0},  {13, 1, 0, 0, 0, 0, 0},       {1, 0, 0, 0, 0, 0, 0},
        {1, 32, 0, 0, 0, 0, 0}, {1, 1, 24, 0, 0, 0, 0},       {1, 1, 0, 60, 0, 0, 0},
        {1, 1, 0, 0, 60, 0, 0}, {1, 1, 0, 0, 0, 1u << 22, 0},
    };
    for (size_t i = 0; i < OTA_ARRAY_SIZE(bad); i++) {
        id = 7;
        assert_int_equal(cmpp_msgid_compose(&bad[i], &id, &e), -EINVAL);
        assert_int_equal(e.code, OTA_ERR_VALUE);
        assert_true(id == 7);
    }
}

/* Every way the same id reaches us normalises to one string. */
static void test_normalize_table(void **state)
{
    static const struct {
        const char *in;
        enum cmpp_msgid_fmt fmt;
        const char *canon;
    } ok[] = {
        {ID1_CANON, CMPP_MSGID_AUTO, ID1_CANON},
        {"BB9ED00030390001", CMPP_MSGID_AUTO, ID1_CANON},
        {"0xBB9ed00030390001", CMPP_MSGID_AUTO, ID1_CANON},
        {"13519471830640427009", CMPP_MSGID_AUTO, ID1_CANON}, /* decimal u64 */
        {"13519471830640427009", CMPP_MSGID_DEC, ID1_CANON},
        {"1152921504606846976", CMPP_MSGID_AUTO, "1000000000000000"},  /* 2^60 */
        {"00000000000000001234", CMPP_MSGID_AUTO, "00000000000004d2"}, /* padded */
        {"1234", CMPP_MSGID_AUTO, "0000000000001234"},                 /* hex, zeros dropped */
        {"1234", CMPP_MSGID_DEC, "00000000000004d2"},
        {"4d2", CMPP_MSGID_AUTO, "00000000000004d2"},
        {"0x4D2", CMPP_MSGID_HEX, "00000000000004d2"},
        {"1234567890123456", CMPP_MSGID_AUTO, "1234567890123456"}, /* 16 digits: hex */
        {"18446744073709551615", CMPP_MSGID_AUTO, "ffffffffffffffff"},
        {"0", CMPP_MSGID_AUTO, "0000000000000000"},
    };
    static const struct {
        const char *in;
        enum cmpp_msgid_fmt fmt;
        enum ota_errc code;
    } bad[] = {
        {"", CMPP_MSGID_AUTO, OTA_ERR_VALUE},
        {"0x", CMPP_MSGID_AUTO, OTA_ERR_VALUE},
        {"xyz", CMPP_MSGID_AUTO, OTA_ERR_VALUE},
        {" 1234", CMPP_MSGID_AUTO, OTA_ERR_VALUE},
        {"12-34", CMPP_MSGID_DEC, OTA_ERR_VALUE},
        {"4d2", CMPP_MSGID_DEC, OTA_ERR_VALUE},
        {"bb9ed000303900010", CMPP_MSGID_AUTO, OTA_ERR_OVERSIZE},     /* 17 hex digits */
        {"18446744073709551616", CMPP_MSGID_AUTO, OTA_ERR_OVERSIZE},  /* 2^64 */
        {"000000000000000000001", CMPP_MSGID_AUTO, OTA_ERR_OVERSIZE}, /* 21 digits */
        {"12", (enum cmpp_msgid_fmt)9, OTA_ERR_ARG},
    };
    char out[CMPP_MSGID_TEXT_SIZE];
    struct ota_err e;
    (void)state;

    for (size_t i = 0; i < OTA_ARRAY_SIZE(ok); i++) {
        memset(out, 'z', sizeof(out));
        if (cmpp_msgid_normalize(ok[i].in, strlen(ok[i].in), ok[i].fmt, out, &e) != 0) {
            fail_msg("%s: %s", ok[i].in, e.msg);
        }
        assert_string_equal(out, ok[i].canon);
    }
    for (size_t i = 0; i < OTA_ARRAY_SIZE(bad); i++) {
        memset(out, 'z', sizeof(out));
        assert_int_equal(cmpp_msgid_normalize(bad[i].in, strlen(bad[i].in), bad[i].fmt, out, &e),
                         -EINVAL);
        assert_int_equal(e.code, bad[i].code);
        assert_int_equal(out[0], 'z');
    }
    /* the 8 raw octets of a DELIVER report give the same canonical text */
    const uint8_t raw[8] = {0xbb, 0x9e, 0xd0, 0x00, 0x30, 0x39, 0x00, 0x01};
    cmpp_msgid_canon(cmpp_msgid_get(raw), out);
    assert_string_equal(out, ID1_CANON);
    assert_string_equal(cmpp_msgid_fmt_name(CMPP_MSGID_DEC), "dec");
    /* len bounds the text: no NUL needed */
    uint64_t id;
    assert_int_equal(cmpp_msgid_parse("12345678", 4, CMPP_MSGID_DEC, &id, NULL), 0);
    assert_true(id == 1234);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_normalize_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
