/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ota/rapdu_tlv.c: the BER-TLV walker refuses every cut header, lying
 * length, long tag and long length field with its own code, and writes the
 * three length forms byte-exact.
 */
#include "ota/ota.h"
#include "tests/support/tsupport.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static void expect_get_err(const char *h, bool nested, enum ota_errc code)
{
    uint8_t b[300];
    size_t n = ts_hex(h, b, sizeof(b));
    struct ota_rapdu_tlv t = {.tag = 0x1234};
    struct ota_err err;

    assert_int_equal(ota_rapdu_tlv_get(b, n, nested, &t, &err), -EBADMSG);
    assert_int_equal(err.code, code);
    assert_int_equal(t.tag, 0x1234); /* untouched */
}

static void test_bad(void **state)
{
    (void)state;
    expect_get_err("", false, OTA_ERR_TRUNCATED);
    expect_get_err("4f", false, OTA_ERR_TRUNCATED);
    expect_get_err("9f", false, OTA_ERR_TRUNCATED);
    expect_get_err("9f70", false, OTA_ERR_TRUNCATED);
    expect_get_err("4f81", false, OTA_ERR_TRUNCATED);
    expect_get_err("4f8201", false, OTA_ERR_TRUNCATED);
    expect_get_err("0001aa", false, OTA_ERR_TAG);
    expect_get_err("9f8101", false, OTA_ERR_TAG);
    expect_get_err("4f80", false, OTA_ERR_LENGTH);
    expect_get_err("4f830000ff", false, OTA_ERR_OVERSIZE);
    expect_get_err("4fff", false, OTA_ERR_OVERSIZE);
    /* A value past the end: cut at the top level, a lie inside a template. */
    expect_get_err("4f0301", false, OTA_ERR_TRUNCATED);
    expect_get_err("4f0301", true, OTA_ERR_LENGTH);
    expect_get_err("4f820100aa", false, OTA_ERR_TRUNCATED);
}

static void test_good(void **state)
{
    uint8_t b[300];
    struct ota_rapdu_tlv t;
    size_t n;

    (void)state;
    n = ts_hex("9f700107ff", b, sizeof(b));
    assert_int_equal(ota_rapdu_tlv_get(b, n, false, &t, NULL), 0);
    assert_int_equal(t.tag, 0x9f70);
    assert_int_equal(t.len, 1);
    assert_int_equal(t.size, 4);
    assert_ptr_equal(t.value, b + 3);

    n = ts_hex("c400", b, sizeof(b));
    assert_int_equal(ota_rapdu_tlv_get(b, n, false, &t, NULL), 0);
    assert_null(t.value);
    assert_int_equal(t.size, 2);

    /* Non-minimal 81 form is BER and accepted. */
    n = ts_hex("4f8101aa", b, sizeof(b));
    assert_int_equal(ota_rapdu_tlv_get(b, n, false, &t, NULL), 0);
    assert_int_equal(t.len, 1);
    assert_int_equal(t.value[0], 0xaa);

    memset(b, 0x11, sizeof(b));
    b[0] = 0xc4;
    b[1] = 0x82;
    b[2] = 0x01;
    b[3] = 0x00;
    assert_int_equal(ota_rapdu_tlv_get(b, 260, false, &t, NULL), 0);
    assert_int_equal(t.len, 256);
    assert_int_equal(t.size, 260);
}

static void test_put(void **state)
{
    uint8_t v[300], out[300];
    struct ota_err err;

    (void)state;
    memset(v, 0x5a, sizeof(v));
    assert_int_equal(ota_rapdu_tlv_put(0x4f, v, 5, out, sizeof(out), NULL), 7);
    assert_memory_equal(out, "\x4f\x05\x5a\x5a\x5a\x5a\x5a", 7);
    assert_int_equal(ota_rapdu_tlv_put(0x9f70, v, 1, out, sizeof(out), NULL), 4);
    assert_memory_equal(out, "\x9f\x70\x01\x5a", 4);
    assert_int_equal(ota_rapdu_tlv_put(0xc4, v, 0x80, out, sizeof(out), NULL), 0x83);
    assert_memory_equal(out, "\xc4\x81\x80\x5a", 4);
    assert_int_equal(ota_rapdu_tlv_put(0xc4, v, 256, out, sizeof(out), NULL), 260);
    assert_memory_equal(out, "\xc4\x82\x01\x00\x5a", 5);
    assert_int_equal(ota_rapdu_tlv_hdr_len(0xc4, 0x7f), 2);
    assert_int_equal(ota_rapdu_tlv_hdr_len(0xc4, 0xff), 3);
    assert_int_equal(ota_rapdu_tlv_hdr_len(0x9f70, 0x100), 5);
    assert_int_equal(ota_rapdu_tlv_hdr_len(0xc4, 0x10000), 0);

    /* In place: value already where the header goes. */
    memcpy(out, "\x01\x02\x03", 3);
    assert_int_equal(ota_rapdu_tlv_put(0x23, out, 3, out, sizeof(out), NULL), 5);
    assert_memory_equal(out, "\x23\x03\x01\x02\x03", 5);

    assert_int_equal(ota_rapdu_tlv_put(0x4f, v, 5, out, 6, &err), -ENOSPC);
    assert_int_equal(err.code, OTA_ERR_NOSPACE);
    assert_int_equal(ota_rapdu_tlv_put(0x1f, v, 1, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_ARG);
    assert_int_equal(ota_rapdu_tlv_put(0x4f70, v, 1, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_rapdu_tlv_put(0x9f81, v, 1, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_rapdu_tlv_put(0x00, v, 1, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_rapdu_tlv_put(0x4f, NULL, 1, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_rapdu_tlv_put(0x4f, v, 0x10000, out, sizeof(out), &err), -EMSGSIZE);
    assert_int_equal(err.code, OTA_ERR_OVERSIZE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_put),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
