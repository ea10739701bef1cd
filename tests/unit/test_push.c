/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ota/push.c: the version-1 wallet push layout encodes to the documented
 * bytes, decodes back, and every malformed push (truncated, wrong version,
 * bad SEID length, trailing octets, no port IE, concatenated) is refused
 * with its own code.
 */
#include "ota/ota.h"
#include "tests/support/tsupport.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <osmocom/core/utils.h>

/* The example of docs/push-sms.md. */
#define EXAMPLE                                                                                    \
    "06050423f4c350"                                                                               \
    "01"                                                                                           \
    "08"                                                                                           \
    "a000000151000000"                                                                             \
    "00112233445566778899aabbccddeeff"

static void example(struct ota_push *p)
{
    memset(p, 0, sizeof(*p));
    p->dst_port = 0x23f4;
    p->src_port = 0xc350;
    p->seid_len = 8;
    osmo_hexparse("a000000151000000", p->seid, sizeof(p->seid));
    osmo_hexparse("00112233445566778899aabbccddeeff", p->serial, sizeof(p->serial));
}

static void expect_err(const char *h, int rc, enum ota_errc code)
{
    uint8_t ud[OTA_SMS_UD_MAX];
    struct ota_push p, keep;
    struct ota_err e;
    size_t n = ts_hex(h, ud, sizeof(ud));

    memset(&keep, 0x4d, sizeof(keep));
    p = keep;
    assert_int_equal(ota_push_decode(ud, n, &p, &e), rc);
    assert_int_equal(e.code, code);
    assert_memory_equal(&p, &keep, sizeof(p));
}

static void test_decode_bad(void **state)
{
    uint8_t ud[OTA_SMS_UD_MAX];
    struct ota_push p, keep;
    struct ota_err e;
    size_t n = ts_hex(EXAMPLE, ud, sizeof(ud));
    (void)state;

    /* every truncation */
    memset(&keep, 0x4d, sizeof(keep));
    for (size_t k = 0; k < n; k++) {
        p = keep;
        assert_int_equal(ota_push_decode(ud, k, &p, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_TRUNCATED);
        assert_memory_equal(&p, &keep, sizeof(p));
    }
    /* unknown versions */
    expect_err("06050423f4c350"
               "02"
               "08"
               "a000000151000000"
               "00112233445566778899aabbccddeeff",
               -EBADMSG, OTA_ERR_VERSION);
    expect_err("06050423f4c350"
               "00",
               -EBADMSG, OTA_ERR_VERSION);
    /* SEID length 0 and 33 */
    expect_err("06050423f4c350"
               "01"
               "00"
               "00112233445566778899aabbccddeeff",
               -EBADMSG, OTA_ERR_VALUE);
    expect_err("06050423f4c350"
               "01"
               "21",
               -EBADMSG, OTA_ERR_VALUE);
    /* SEID length larger than the body */
    expect_err("06050423f4c350"
               "01"
               "09"
               "a000000151000000"
               "00112233445566778899aabbccddeeff",
               -EBADMSG, OTA_ERR_TRUNCATED);
    /* one octet after the serial */
    expect_err(EXAMPLE "00", -EBADMSG, OTA_ERR_LENGTH);
    /* no port IE */
    expect_err("027100"
               "01"
               "08"
               "a000000151000000"
               "00112233445566778899aabbccddeeff",
               -EBADMSG, OTA_ERR_MISSING);
    expect_err("00"
               "01"
               "08"
               "a000000151000000"
               "00112233445566778899aabbccddeeff",
               -EBADMSG, OTA_ERR_MISSING);
    /* concatenated push */
    expect_err("0b050423f4c350000301020101"
               "08"
               "a000000151000000"
               "00112233445566778899aabbccddeeff",
               -EBADMSG, OTA_ERR_VALUE);
    /* port IE of the wrong length, two port IEs */
    expect_err("05050323f4c3"
               "01"
               "08"
               "a000000151000000"
               "00112233445566778899aabbccddeeff",
               -EBADMSG, OTA_ERR_VALUE);
    expect_err("0a050423f4c350040210200108a000000151000000"
               "00112233445566778899aabbccddeeff",
               -EBADMSG, OTA_ERR_DUPLICATE);
    /* lying UDHL */
    expect_err("07050423f4c350", -EBADMSG, OTA_ERR_TRUNCATED);
    expect_err("06050523f4c350"
               "01",
               -EBADMSG, OTA_ERR_LENGTH);
    assert_int_equal(ota_push_decode(NULL, 3, &p, &e), -EINVAL);
    assert_int_equal(ota_push_decode(ud, n, NULL, &e), -EINVAL);
}

static void test_example(void **state)
{
    uint8_t want[OTA_SMS_UD_MAX], out[OTA_SMS_UD_MAX];
    struct ota_push p, q;
    size_t n = ts_hex(EXAMPLE, want, sizeof(want));
    (void)state;

    example(&p);
    assert_int_equal(n, 33);
    assert_int_equal(ota_push_encode(&p, out, sizeof(out), NULL), (int)n);
    assert_memory_equal(out, want, n);
    assert_int_equal(ota_push_decode(out, n, &q, NULL), 0);
    assert_int_equal(q.dst_port, 0x23f4);
    assert_int_equal(q.src_port, 0xc350);
    assert_false(q.ports8);
    assert_int_equal(q.seid_len, 8);
    assert_memory_equal(q.seid, p.seid, 8);
    assert_memory_equal(q.serial, p.serial, 16);
}

static void test_roundtrip(void **state)
{
    uint8_t out[OTA_SMS_UD_MAX];
    struct ota_push p, q;
    (void)state;

    for (unsigned len = 1; len <= OTA_PUSH_SEID_MAX; len++) {
        memset(&p, 0, sizeof(p));
        p.dst_port = (uint16_t)(len * 1000);
        p.src_port = (uint16_t)~len;
        p.seid_len = (uint8_t)len;
        for (unsigned i = 0; i < len; i++) {
            p.seid[i] = (uint8_t)(i * 13 + len);
        }
        for (unsigned i = 0; i < OTA_PUSH_SERIAL_LEN; i++) {
            p.serial[i] = (uint8_t)(0xf0 ^ i ^ len);
        }
        int n = ota_push_encode(&p, out, sizeof(out), NULL);
        assert_int_equal(n, 25 + len);
        assert_int_equal(ota_push_decode(out, (size_t)n, &q, NULL), 0);
        assert_memory_equal(&p, &q, sizeof(p));
    }
    assert_int_equal(ota_push_encode(&p, out, OTA_PUSH_UD_MAX, NULL), OTA_PUSH_UD_MAX);
}

static void test_tolerant(void **state)
{
    uint8_t ud[OTA_SMS_UD_MAX];
    struct ota_push p;
    size_t n;
    (void)state;

    /* 8-bit ports */
    n = ts_hex("0404021020"
               "01"
               "01"
               "55"
               "00112233445566778899aabbccddeeff",
               ud, sizeof(ud));
    assert_int_equal(ota_push_decode(ud, n, &p, NULL), 0);
    assert_true(p.ports8);
    assert_int_equal(p.dst_port, 0x10);
    assert_int_equal(p.src_port, 0x20);
    assert_int_equal(p.seid_len, 1);
    assert_int_equal(p.seid[0], 0x55);
    /* unknown IEs around the port IE are ignored */
    n = ts_hex("0d2402aabb050423f4c350a0017f"
               "01"
               "01"
               "55"
               "00112233445566778899aabbccddeeff",
               ud, sizeof(ud));
    assert_int_equal(ota_push_decode(ud, n, &p, NULL), 0);
    assert_int_equal(p.dst_port, 0x23f4);
}

static void test_encode_bad(void **state)
{
    uint8_t out[OTA_SMS_UD_MAX], keep[OTA_SMS_UD_MAX];
    struct ota_push p;
    struct ota_err e;
    uint8_t pid = 0xaa, dcs = 0xaa;
    (void)state;

    example(&p);
    memset(keep, 0x99, sizeof(keep));
    for (size_t cap = 0; cap < 33; cap++) {
        memcpy(out, keep, sizeof(out));
        assert_int_equal(ota_push_encode(&p, out, cap, &e), -ENOSPC);
        assert_int_equal(e.code, OTA_ERR_NOSPACE);
        assert_memory_equal(out, keep, sizeof(out));
    }
    p.seid_len = 0;
    assert_int_equal(ota_push_encode(&p, out, sizeof(out), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    p.seid_len = OTA_PUSH_SEID_MAX + 1;
    assert_int_equal(ota_push_encode(&p, out, sizeof(out), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    assert_int_equal(ota_push_encode(NULL, out, sizeof(out), &e), -EINVAL);

    ota_push_sms_params(&pid, &dcs);
    assert_int_equal(pid, 0x00);
    assert_int_equal(dcs, 0xf5);
    ota_push_sms_params(NULL, NULL);
    assert_int_equal(OTA_PUSH_TP_DCS_PLAIN, 0x04);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_bad), cmocka_unit_test(test_encode_bad),
        cmocka_unit_test(test_example),    cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_tolerant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
