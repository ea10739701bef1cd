/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ota/apdu.c: the four ISO 7816-4 cases parse and rebuild byte-exact, and
 * every malformed length is refused with its own code.
 */
#include "ota/ota.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <osmocom/core/utils.h>

static void roundtrip(const char *h, uint8_t lc, bool has_le, uint8_t le)
{
    uint8_t in[300], out[300];
    struct ota_apdu a;
    int n = osmo_hexparse(h, in, sizeof(in));
    assert_true(n >= 4);
    assert_int_equal(ota_apdu_parse(in, (size_t)n, &a, NULL), 0);
    assert_int_equal(a.lc, lc);
    assert_int_equal(a.has_le, has_le);
    assert_int_equal(a.le, le);
    assert_int_equal(ota_apdu_len(&a), (size_t)n);
    assert_int_equal(ota_apdu_build(&a, out, sizeof(out), NULL), n);
    assert_memory_equal(in, out, (size_t)n);
}

static void test_cases(void **state)
{
    (void)state;
    roundtrip("80f22002", 0, false, 0);
    roundtrip("80ca006600", 0, true, 0);
    roundtrip("80f220020a4f0212345c054f9f70c5", 10, false, 0);
    roundtrip("80f28002024f0000", 2, true, 0);
    roundtrip("00a4040007a0000000030000ff", 7, true, 0xff);
}

static void test_bad(void **state)
{
    uint8_t in[16], out[8];
    struct ota_apdu a, keep;
    struct ota_err e;
    (void)state;
    memset(&keep, 0x77, sizeof(keep));
    for (size_t n = 0; n < 4; n++) {
        a = keep;
        assert_int_equal(ota_apdu_parse(in, n, &a, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_TRUNCATED);
        assert_memory_equal(&a, &keep, sizeof(a));
    }
    int n = osmo_hexparse("80f220020a4f0212345c054f9f70", in, sizeof(in)); /* Lc 10, 9 data */
    assert_int_equal(ota_apdu_parse(in, (size_t)n, &a, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_TRUNCATED);
    n = osmo_hexparse("80f28002024f000000", in, sizeof(in)); /* two octets after data */
    assert_int_equal(ota_apdu_parse(in, (size_t)n, &a, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    n = osmo_hexparse("80f2800200010203", in, sizeof(in)); /* extended length */
    assert_int_equal(ota_apdu_parse(in, (size_t)n, &a, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    n = osmo_hexparse("80f28002024f0000", in, sizeof(in));
    assert_int_equal(ota_apdu_parse(in, (size_t)n, &a, NULL), 0);
    assert_int_equal(ota_apdu_build(&a, out, 7, &e), -ENOSPC);
    assert_int_equal(e.code, OTA_ERR_NOSPACE);
    a.data = NULL;
    assert_int_equal(ota_apdu_build(&a, out, 8, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
