/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ota/gp_status.c: GET STATUS responses in the TLV (E3) and legacy formats,
 * hand-assembled per GP 2.2 11.4.3; every truncation, lying length, missing
 * or repeated tag refused with its own code and no entry written.
 */
#include "ota/ota.h"
#include "tests/support/tsupport.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define E_ISD                                                                                      \
    "e313"                                                                                         \
    "4f08a000000151000000"                                                                         \
    "9f70010f"                                                                                     \
    "c5039efe80"
#define E_APP                                                                                      \
    "e324"                                                                                         \
    "4f08a000000151534101"                                                                         \
    "9f700107"                                                                                     \
    "c50100"                                                                                       \
    "c407a0000001515341"                                                                           \
    "cc08a000000151000000"
#define E_ELF                                                                                      \
    "e325"                                                                                         \
    "4f07a0000001515341"                                                                           \
    "9f700101"                                                                                     \
    "ce020100"                                                                                     \
    "8408a000000151534101"                                                                         \
    "8408a000000151534102"

static const char tlv_rsp[] = E_ISD E_APP E_ELF;

static void expect_tlv_err(const char *h, enum ota_errc code)
{
    uint8_t b[300];
    struct ota_gp_status_entry e[4];
    struct ota_err err;
    size_t n = 66, len = ts_hex(h, b, sizeof(b));

    memset(e, 0xee, sizeof(e));
    assert_true(ota_gp_status_parse_tlv(b, len, e, 4, &n, &err) < 0);
    assert_int_equal(err.code, code);
    assert_int_equal(n, 66);
    assert_int_equal(e[0].lcs, 0xee);
}

static void test_tlv_bad(void **state)
{
    uint8_t b[300];
    size_t len = ts_hex(tlv_rsp, b, sizeof(b));

    (void)state;
    for (size_t k = 0; k < len; k++) {
        struct ota_gp_status_entry e[4];
        struct ota_err err;
        size_t n;
        int rc = ota_gp_status_parse_tlv(b, k, e, 4, &n, &err);

        if (k == 0 || k == 21 || k == 21 + 38) {
            assert_int_equal(rc, 0);
            assert_int_equal(n, k == 0 ? 0 : k == 21 ? 1 : 2);
        } else {
            assert_int_equal(rc, -EBADMSG);
            assert_int_equal(err.code, OTA_ERR_TRUNCATED);
        }
    }
    expect_tlv_err("e3054f08a0000001", OTA_ERR_LENGTH);                   /* 4F past E3 */
    expect_tlv_err("e3094f05a0000001519f7001", OTA_ERR_TRUNCATED);        /* 9F70 header cut */
    expect_tlv_err("e30c4f05a0000001519f70020101", OTA_ERR_LENGTH);       /* 9F70 of 2 */
    expect_tlv_err("e30f4f05a0000001519f700101c5020000", OTA_ERR_LENGTH); /* C5 of 2 */
    expect_tlv_err("e30d4f05a0000001519f700101c5020000", OTA_ERR_LENGTH); /* C5 past E3 */
    expect_tlv_err("e3049f700101", OTA_ERR_MISSING);
    expect_tlv_err("e3074f05a000000151", OTA_ERR_MISSING);
    expect_tlv_err("e3124f05a0000001514f05a0000001519f700101", OTA_ERR_DUPLICATE);
    expect_tlv_err("4f00", OTA_ERR_TAG); /* top-level 4F */
    expect_tlv_err("e300", OTA_ERR_MISSING);
    expect_tlv_err("e2034f0101", OTA_ERR_TAG);
    expect_tlv_err("e3094f00c5010000000000", OTA_ERR_LENGTH); /* AID of 0 */
    expect_tlv_err("e3834f", OTA_ERR_OVERSIZE);
    expect_tlv_err("e30a4f05a0000001519f7080", OTA_ERR_LENGTH); /* indefinite inside */

    /* More entries than room. */
    struct ota_gp_status_entry e[2];
    struct ota_err err;
    size_t n;
    assert_int_equal(ota_gp_status_parse_tlv(b, len, e, 2, &n, &err), -ENOSPC);
    assert_int_equal(err.code, OTA_ERR_LIMIT);
}

static void test_tlv_good(void **state)
{
    uint8_t b[300];
    struct ota_gp_status_entry e[4];
    const uint8_t *aid;
    size_t n, al, len = ts_hex(tlv_rsp, b, sizeof(b));

    (void)state;
    assert_int_equal(ota_gp_status_parse_tlv(b, len, e, 4, &n, NULL), 0);
    assert_int_equal(n, 3);
    ts_assert_bytes(e[0].aid, e[0].aid_len, "a000000151000000");
    assert_int_equal(e[0].lcs, 0x0f);
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_SD, e[0].lcs), "PERSONALIZED");
    assert_int_equal(e[0].priv_len, 3);
    assert_memory_equal(e[0].priv, "\x9e\xfe\x80", 3);
    assert_int_equal(e[0].n_modules, 0);

    ts_assert_bytes(e[1].aid, e[1].aid_len, "a000000151534101");
    assert_int_equal(e[1].lcs, 0x07);
    assert_int_equal(e[1].priv_len, 1);
    ts_assert_bytes(e[1].elf_aid, e[1].elf_aid_len, "a0000001515341");
    ts_assert_bytes(e[1].sd_aid, e[1].sd_aid_len, "a000000151000000");

    assert_int_equal(e[2].lcs, 0x01);
    assert_int_equal(e[2].priv_len, 0);
    ts_assert_bytes(e[2].version, e[2].version_len, "0100");
    assert_int_equal(e[2].n_modules, 2);
    assert_int_equal(ota_gp_status_module(&e[2], 1, &aid, &al, NULL), 0);
    ts_assert_bytes(aid, al, "a000000151534102");
    assert_int_equal(ota_gp_status_module(&e[2], 0, &aid, &al, NULL), 0);
    ts_assert_bytes(aid, al, "a000000151534101");
    assert_int_equal(ota_gp_status_module(&e[2], 2, &aid, &al, NULL), -EINVAL);

    /* Unknown tags inside E3 are skipped, also between modules. */
    len = ts_hex("e31c"
                 "4f05a000000151"
                 "9f700101"
                 "8405a000000152"
                 "cf0101"
                 "8405a000000153",
                 b, sizeof(b));
    assert_int_equal(ota_gp_status_parse_tlv(b, len, e, 4, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].n_modules, 2);
    assert_int_equal(ota_gp_status_module(&e[0], 1, &aid, &al, NULL), 0);
    ts_assert_bytes(aid, al, "a000000153");
}

static const char legacy_apps[] = "08a0000001515341010700"
                                  "07a000000151534103"
                                  "02";
static const char legacy_mods[] = "07a00000015153410100"
                                  "02"
                                  "08a000000151534101"
                                  "08a000000151534102"
                                  "05a000000152"
                                  "01"
                                  "00"
                                  "00";

static void test_legacy(void **state)
{
    uint8_t b[300];
    struct ota_gp_status_entry e[4];
    const uint8_t *aid;
    struct ota_err err;
    size_t n, al, len;

    (void)state;
    len = ts_hex(legacy_apps, b, sizeof(b));
    assert_int_equal(ota_gp_status_parse_legacy(b, len, 0x40, e, 4, &n, NULL), 0);
    assert_int_equal(n, 2);
    ts_assert_bytes(e[0].aid, e[0].aid_len, "a000000151534101");
    assert_int_equal(e[0].lcs, 0x07);
    assert_int_equal(e[0].priv[0], 0x00);
    assert_int_equal(e[1].lcs, 0x03);
    assert_int_equal(e[1].priv[0], 0x02);
    for (size_t k = 0; k < len; k++) {
        int rc = ota_gp_status_parse_legacy(b, k, 0x40, e, 4, &n, &err);
        if (k == 0 || k == 11) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -EBADMSG);
            assert_int_equal(err.code, OTA_ERR_TRUNCATED);
        }
    }

    len = ts_hex(legacy_mods, b, sizeof(b));
    assert_int_equal(ota_gp_status_parse_legacy(b, len, 0x10, e, 4, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(e[0].n_modules, 2);
    assert_int_equal(ota_gp_status_module(&e[0], 1, &aid, &al, NULL), 0);
    ts_assert_bytes(aid, al, "a000000151534102");
    ts_assert_bytes(e[1].aid, e[1].aid_len, "a000000152");
    assert_int_equal(e[1].lcs, 0x01);
    assert_int_equal(e[1].n_modules, 0);
    for (size_t k = 0; k < len; k++) {
        int rc = ota_gp_status_parse_legacy(b, k, 0x10, e, 4, &n, &err);
        if (k == 0 || k == 29) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -EBADMSG);
            assert_int_equal(err.code, OTA_ERR_TRUNCATED);
        }
    }
    /* AID lengths 0 and 17 are lies. */
    len = ts_hex("000700", b, sizeof(b));
    assert_int_equal(ota_gp_status_parse_legacy(b, len, 0x40, e, 4, &n, &err), -EBADMSG);
    assert_int_equal(err.code, OTA_ERR_LENGTH);
    len = ts_hex("11a0", b, sizeof(b));
    assert_int_equal(ota_gp_status_parse_legacy(b, len, 0x40, e, 4, &n, &err), -EBADMSG);
    assert_int_equal(err.code, OTA_ERR_LENGTH);
    len = ts_hex("05a00000015201000100", b, sizeof(b));
    assert_int_equal(ota_gp_status_parse_legacy(b, len, 0x10, e, 4, &n, &err), -EBADMSG);
    assert_int_equal(err.code, OTA_ERR_LENGTH);
    len = ts_hex(legacy_apps, b, sizeof(b));
    assert_int_equal(ota_gp_status_parse_legacy(b, len, 0x40, e, 1, &n, &err), -ENOSPC);
    assert_int_equal(err.code, OTA_ERR_LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tlv_bad),
        cmocka_unit_test(test_tlv_good),
        cmocka_unit_test(test_legacy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
