/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ota/concat.c: segmentation gives the exact UDH bytes and part sizes of
 * TS 23.040 9.2.3.24.1/8 and TS 31.115 4.2 (CPI in part 1 only); the
 * reassembler puts parts back together in any order, reports duplicates,
 * conflicts, total mismatches and expired sets with their missing seqs, and
 * refuses new work at its limits without changing state.
 */
#include "ota/ota.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <osmocom/core/utils.h>

static const struct ota_udh_ie cpi = {.iei = OTA_IEI_CPI, .len = 0, .val = NULL};
static const struct ota_udh_ie rpi = {.iei = OTA_IEI_RPI, .len = 0, .val = NULL};
static const uint8_t port_val[4] = {0x23, 0xf4, 0x23, 0xf5};
static const struct ota_udh_ie ports = {.iei = OTA_IEI_PORT16, .len = 4, .val = port_val};

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(seed + i * 7);
    }
}

static void expect_hdr(const struct ota_sms_part *p, const char *h, size_t payload_len)
{
    uint8_t want[32];
    int n = osmo_hexparse(h, want, sizeof(want));

    assert_true(n > 0);
    assert_true(p->udhi);
    assert_int_equal(p->len, (size_t)n + payload_len);
    assert_memory_equal(p->ud, want, (size_t)n);
}

static struct ota_sms_part parts[OTA_CONCAT_MAX_PARTS + 1];

static void test_segment_plain(void **state)
{
    uint8_t pl[400];
    (void)state;

    fill(pl, sizeof(pl), 1);
    /* no IEs and it fits: no UDH at all */
    assert_int_equal(ota_concat_segment(pl, 140, NULL, parts, 4, NULL), 1);
    assert_false(parts[0].udhi);
    assert_int_equal(parts[0].len, 140);
    assert_memory_equal(parts[0].ud, pl, 140);
    /* empty payload */
    assert_int_equal(ota_concat_segment(NULL, 0, NULL, parts, 4, NULL), 1);
    assert_int_equal(parts[0].len, 0);
    /* 141: two parts of 134 + 7 */
    struct ota_concat_opts o = {.ref = 0x42};
    assert_int_equal(ota_concat_segment(pl, 141, &o, parts, 4, NULL), 2);
    expect_hdr(&parts[0],
               "0500034202"
               "01",
               134);
    expect_hdr(&parts[1],
               "0500034202"
               "02",
               7);
    assert_memory_equal(parts[0].ud + 6, pl, 134);
    assert_memory_equal(parts[1].ud + 6, pl + 134, 7);
}

static void test_segment_scp80(void **state)
{
    uint8_t pl[600];
    struct ota_concat_opts o = {.first = &cpi, .n_first = 1, .ref = 0x07};
    (void)state;

    fill(pl, sizeof(pl), 3);
    /* 137: one SMS, 02 70 00 + packet, no concat IE */
    assert_int_equal(ota_concat_segment(pl, 137, &o, parts, 4, NULL), 1);
    expect_hdr(&parts[0], "027000", 137);
    assert_memory_equal(parts[0].ud + 3, pl, 137);
    /* 138: two parts; CPI after the concat IE in part 1 only */
    assert_int_equal(ota_concat_segment(pl, 138, &o, parts, 4, NULL), 2);
    expect_hdr(&parts[0], "0700030702017000", 132);
    expect_hdr(&parts[1], "050003070202", 6);
    assert_memory_equal(parts[0].ud + 8, pl, 132);
    assert_memory_equal(parts[1].ud + 6, pl + 132, 6);
    /* 132 + 134 + 134 = 400 exactly three full parts; 401 needs four */
    assert_int_equal(ota_concat_segment(pl, 400, &o, parts, 4, NULL), 3);
    expect_hdr(&parts[0], "0700030703017000", 132);
    expect_hdr(&parts[1], "050003070302", 134);
    expect_hdr(&parts[2], "050003070303", 134);
    assert_int_equal(ota_concat_segment(pl, 401, &o, parts, 4, NULL), 4);
    expect_hdr(&parts[3], "050003070404", 1);
    assert_memory_equal(parts[3].ud + 6, pl + 400, 1);

    /* 16-bit reference: 131 then 133 */
    o.ref16 = true;
    o.ref = 0xabcd;
    assert_int_equal(ota_concat_segment(pl, 137, &o, parts, 4, NULL), 1);
    expect_hdr(&parts[0], "027000", 137);
    assert_int_equal(ota_concat_segment(pl, 138, &o, parts, 4, NULL), 2);
    expect_hdr(&parts[0],
               "08"
               "0804abcd0201"
               "7000",
               131);
    expect_hdr(&parts[1],
               "06"
               "0804abcd0202",
               7);
    assert_int_equal(ota_concat_segment(pl, 131 + 133, &o, parts, 4, NULL), 2);
    assert_int_equal(ota_concat_segment(pl, 131 + 133 + 1, &o, parts, 4, NULL), 3);
}

static void test_segment_ports(void **state)
{
    uint8_t pl[300];
    struct ota_concat_opts o = {.every = &ports, .n_every = 1, .ref = 0x99};
    (void)state;

    fill(pl, sizeof(pl), 5);
    assert_int_equal(ota_concat_segment(pl, 133, &o, parts, 4, NULL), 1);
    expect_hdr(&parts[0], "06050423f423f5", 133);
    /* ports in every part, before the concat IE: 12-octet UDH, 128 per part */
    assert_int_equal(ota_concat_segment(pl, 300, &o, parts, 4, NULL), 3);
    expect_hdr(&parts[0],
               "0b050423f423f5"
               "0003990301",
               128);
    expect_hdr(&parts[1],
               "0b050423f423f5"
               "0003990302",
               128);
    expect_hdr(&parts[2],
               "0b050423f423f5"
               "0003990303",
               44);
    assert_memory_equal(parts[2].ud + 12, pl + 256, 44);
}

static void test_segment_bad(void **state)
{
    static uint8_t big[OTA_CONCAT_MAX_PARTS * 134 + 1];
    struct ota_concat_opts o = {.ref = 1};
    struct ota_err e;
    uint8_t keep[sizeof(parts[0])];
    (void)state;

    /* 255 parts is the maximum */
    assert_int_equal(
        ota_concat_segment(big, sizeof(big) - 1, &o, parts, OTA_CONCAT_MAX_PARTS, NULL), 255);
    expect_hdr(&parts[254], "05000301ffff", 134);
    assert_int_equal(ota_concat_segment(big, sizeof(big), &o, parts, OTA_CONCAT_MAX_PARTS + 1, &e),
                     -EMSGSIZE);
    assert_int_equal(e.code, OTA_ERR_OVERSIZE);
    assert_int_equal(ota_concat_segment(big, SIZE_MAX, &o, parts, 4, &e), -EMSGSIZE);
    assert_int_equal(e.code, OTA_ERR_OVERSIZE);
    /* too few parts offered: NOSPACE, parts untouched */
    memset(parts, 0xcc, sizeof(parts));
    memcpy(keep, &parts[0], sizeof(keep));
    assert_int_equal(ota_concat_segment(big, 141, &o, parts, 1, &e), -ENOSPC);
    assert_int_equal(e.code, OTA_ERR_NOSPACE);
    assert_memory_equal(&parts[0], keep, sizeof(keep));
    assert_int_equal(ota_concat_segment(big, 1, &o, parts, 0, &e), -ENOSPC);
    /* 8-bit ref above 255 */
    o.ref = 256;
    assert_int_equal(ota_concat_segment(big, 10, &o, parts, 4, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    /* IE without its value */
    const struct ota_udh_ie bad = {.iei = 0x24, .len = 2, .val = NULL};
    struct ota_concat_opts ob = {.every = &bad, .n_every = 1};
    assert_int_equal(ota_concat_segment(big, 10, &ob, parts, 4, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    /* UDH that leaves no room once the concat IE is added */
    const struct ota_udh_ie huge = {.iei = 0x24, .len = 133, .val = big};
    struct ota_concat_opts oh = {.every = &huge, .n_every = 1};
    assert_int_equal(ota_concat_segment(big, 5, &oh, parts, 4, &e), -EMSGSIZE);
    assert_int_equal(e.code, OTA_ERR_OVERSIZE);
    assert_int_equal(ota_concat_segment(NULL, 5, &o, parts, 4, &e), -EINVAL);
}

/* ---- reassembly -------------------------------------------------------- */

static struct ota_reasm *mk(size_t sets, size_t n_parts, uint64_t timeout_ms)
{
    struct ota_reasm_limits lim = {
        .max_sets = sets, .max_parts = n_parts, .timeout_ms = timeout_ms};
    struct ota_reasm *r = NULL;

    assert_int_equal(ota_reasm_new(&r, &lim, NULL), 0);
    return r;
}

static int add(struct ota_reasm *r, const char *orig, const struct ota_sms_part *p, uint64_t now,
               enum ota_reasm_status *st, struct ota_reasm_msg *m, struct ota_err *e)
{
    return ota_reasm_add(r, orig, p->ud, p->len, p->udhi, now, st, m, e);
}

/* Segment with CPI/RPI in part 1, feed in the given order, check the result. */
static void roundtrip(const struct ota_udh_ie *first, size_t len, const size_t *order)
{
    uint8_t pl[700];
    struct ota_concat_opts o = {.first = first, .n_first = 1, .ref = 0x31};
    struct ota_reasm *r = mk(4, 16, 1000);
    struct ota_reasm_msg m = {0};
    enum ota_reasm_status st;
    int n;

    fill(pl, len, 9);
    n = ota_concat_segment(pl, len, &o, parts, 8, NULL);
    assert_true(n >= 2);
    for (int i = 0; i < n; i++) {
        assert_int_equal(add(r, "4912345", &parts[order[i]], 10, &st, &m, NULL), 0);
        if (i + 1 < n) {
            assert_int_equal(st, OTA_REASM_PENDING);
            assert_int_equal(ota_reasm_n_parts(r), (size_t)i + 1);
            assert_int_equal(ota_reasm_n_sets(r), 1);
        }
    }
    assert_int_equal(st, OTA_REASM_COMPLETE);
    assert_int_equal(ota_reasm_n_sets(r), 0);
    assert_int_equal(ota_reasm_n_parts(r), 0);
    assert_string_equal(m.orig, "4912345");
    assert_int_equal(m.n_parts, n);
    assert_true(m.udhi);
    /* part 1's UDH minus the concat IE: 02 7x 00 */
    assert_int_equal(m.ud_len, 3 + len);
    assert_int_equal(m.ud[0], 2);
    assert_int_equal(m.ud[1], first->iei);
    assert_int_equal(m.ud[2], 0);
    assert_int_equal(m.udh.n_ies, 1);
    assert_int_equal(m.udh.ies[0].iei, first->iei);
    assert_int_equal(m.udh.payload_len, len);
    assert_memory_equal(m.udh.payload, pl, len);
    ota_reasm_msg_fini(&m);
    assert_null(m.ud);
    ota_reasm_free(r);
}

static void test_reasm_orders(void **state)
{
    static const size_t fwd[] = {0, 1, 2, 3, 4}, rev[] = {4, 3, 2, 1, 0}, mix[] = {2, 0, 4, 1, 3},
                        two_rev[] = {1, 0};
    (void)state;

    roundtrip(&cpi, 132 + 134 * 3 + 1, fwd);
    roundtrip(&cpi, 132 + 134 * 3 + 1, rev);
    roundtrip(&rpi, 132 + 134 * 3 + 1, mix); /* a PoR keeps its RPI */
    roundtrip(&rpi, 138, two_rev);
}

static void test_reasm_single(void **state)
{
    struct ota_reasm *r = mk(1, 1, 1000);
    struct ota_reasm_msg m = {0};
    enum ota_reasm_status st;
    uint8_t ud[16];
    int n;
    (void)state;

    /* no UDH */
    n = osmo_hexparse("abcdef", ud, sizeof(ud));
    assert_int_equal(ota_reasm_add(r, "1", ud, (size_t)n, false, 0, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_SINGLE);
    assert_false(m.udhi);
    assert_int_equal(m.udh.payload_len, 3);
    assert_memory_equal(m.ud, ud, 3);
    ota_reasm_msg_fini(&m);
    /* UDH without concat: a PoR */
    n = osmo_hexparse("027100abcdef", ud, sizeof(ud));
    assert_int_equal(ota_reasm_add(r, "1", ud, (size_t)n, true, 0, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_SINGLE);
    assert_true(m.udhi);
    assert_int_equal(m.udh.n_ies, 1);
    assert_int_equal(m.udh.ies[0].iei, OTA_IEI_RPI);
    assert_int_equal(m.udh.payload_len, 3);
    assert_int_equal(m.ud_len, 6);
    ota_reasm_msg_fini(&m);
    /* concat with total 1: complete at once, no UDH left */
    n = osmo_hexparse("050003070101ab", ud, sizeof(ud));
    assert_int_equal(ota_reasm_add(r, "1", ud, (size_t)n, true, 0, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_COMPLETE);
    assert_false(m.udhi);
    assert_int_equal(m.ud_len, 1);
    assert_int_equal(m.ud[0], 0xab);
    ota_reasm_msg_fini(&m);
    ota_reasm_msg_fini(&m); /* twice is fine */
    ota_reasm_msg_fini(NULL);
    assert_int_equal(ota_reasm_n_sets(r), 0);
    ota_reasm_free(r);
    ota_reasm_free(NULL);
}

static void test_reasm_dup(void **state)
{
    struct ota_reasm *r = mk(4, 16, 1000);
    struct ota_reasm_msg m = {0}, keep;
    enum ota_reasm_status st = OTA_REASM_PENDING;
    struct ota_err e;
    uint8_t pl[300];
    struct ota_concat_opts o = {.ref = 5};
    (void)state;

    fill(pl, sizeof(pl), 1);
    assert_int_equal(ota_concat_segment(pl, 300, &o, parts, 4, NULL), 3);
    assert_int_equal(add(r, "A", &parts[0], 1, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_PENDING);
    /* same part again: ignored, reported */
    assert_int_equal(add(r, "A", &parts[0], 2, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_DUPLICATE);
    assert_int_equal(ota_reasm_n_parts(r), 1);
    /* same seq, other content: error, first copy kept */
    struct ota_sms_part other = parts[0];
    other.ud[10] ^= 0xff;
    memset(&keep, 0x11, sizeof(keep));
    m = keep;
    st = OTA_REASM_COMPLETE;
    assert_int_equal(add(r, "A", &other, 3, &st, &m, &e), -EEXIST);
    assert_int_equal(e.code, OTA_ERR_DUPLICATE);
    assert_int_equal(st, OTA_REASM_COMPLETE); /* untouched */
    assert_memory_equal(&m, &keep, sizeof(m));
    other.len--;
    assert_int_equal(add(r, "A", &other, 3, &st, &m, &e), -EEXIST);
    assert_int_equal(ota_reasm_n_parts(r), 1);
    /* a part saying total 4 for the ref-5 set of 3 */
    struct ota_sms_part mism = parts[1];
    mism.ud[4] = 4;
    assert_int_equal(add(r, "A", &mism, 3, &st, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_STATE);
    assert_int_equal(ota_reasm_n_parts(r), 1);
    /* the same ref from another originator is another set */
    assert_int_equal(add(r, "B", &parts[1], 3, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_PENDING);
    assert_int_equal(ota_reasm_n_sets(r), 2);
    /* finish A; the original part 1 content is used */
    m = (struct ota_reasm_msg){0};
    assert_int_equal(add(r, "A", &parts[2], 4, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_PENDING);
    assert_int_equal(add(r, "A", &parts[1], 4, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_COMPLETE);
    assert_int_equal(m.ud_len, 300);
    assert_memory_equal(m.ud, pl, 300);
    ota_reasm_msg_fini(&m);
    /* a bad UDH is refused, state unchanged */
    uint8_t bad[] = {0x05, 0x00, 0x03, 0x05, 0x03, 0x00, 0xaa};
    assert_int_equal(ota_reasm_add(r, "B", bad, sizeof(bad), true, 5, &st, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    assert_int_equal(ota_reasm_add(r, "B", bad, 3, true, 5, &st, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_TRUNCATED);
    assert_int_equal(ota_reasm_n_parts(r), 1);
    /* originator too long */
    char longo[OTA_REASM_ORIG_MAX + 2];
    memset(longo, '9', sizeof(longo) - 1);
    longo[sizeof(longo) - 1] = '\0';
    assert_int_equal(add(r, longo, &parts[0], 5, &st, &m, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    longo[OTA_REASM_ORIG_MAX] = '\0';
    assert_int_equal(add(r, longo, &parts[0], 5, &st, &m, &e), 0);
    /* freed with two incomplete sets held: ASan checks for leaks */
    ota_reasm_free(r);
}

struct seen {
    int calls;
    char orig[8];
    uint16_t ref;
    uint8_t total, n_missing, missing[8];
};

static void on_expired(const struct ota_reasm_expired *x, void *arg)
{
    struct seen *s = arg;

    s->calls++;
    assert_true(strlen(x->orig) < sizeof(s->orig));
    memcpy(s->orig, x->orig, strlen(x->orig) + 1);
    s->ref = x->ref;
    s->total = x->total;
    s->n_missing = x->n_missing;
    memcpy(s->missing, x->missing, x->n_missing);
}

static void test_reasm_expire(void **state)
{
    struct ota_reasm *r = mk(4, 16, 5000);
    struct ota_reasm_msg m = {0};
    enum ota_reasm_status st;
    struct seen s = {0};
    uint8_t pl[600];
    struct ota_concat_opts o = {.ref16 = true, .ref = 0x1234};
    (void)state;

    fill(pl, sizeof(pl), 2);
    assert_int_equal(ota_concat_segment(pl, 500, &o, parts, 8, NULL), 4);
    assert_int_equal(add(r, "C", &parts[0], 1000, &st, &m, NULL), 0);
    assert_int_equal(add(r, "C", &parts[2], 3000, &st, &m, NULL), 0);
    o.ref = 0x77;
    assert_int_equal(ota_concat_segment(pl, 200, &o, parts, 8, NULL), 2);
    assert_int_equal(add(r, "D", &parts[1], 2000, &st, &m, NULL), 0);
    /* age from the first part: 1000 + 5000 */
    assert_int_equal(ota_reasm_expire(r, 5999, on_expired, &s), 0);
    assert_int_equal(ota_reasm_expire(r, 500, on_expired, &s), 0); /* clock went back */
    assert_int_equal(s.calls, 0);
    assert_int_equal(ota_reasm_expire(r, 6000, on_expired, &s), 1);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.orig, "C");
    assert_int_equal(s.ref, 0x1234);
    assert_int_equal(s.total, 4);
    assert_int_equal(s.n_missing, 2);
    assert_int_equal(s.missing[0], 2);
    assert_int_equal(s.missing[1], 4);
    assert_int_equal(ota_reasm_n_sets(r), 1);
    assert_int_equal(ota_reasm_n_parts(r), 1);
    assert_int_equal(ota_reasm_expire(r, 7000, NULL, NULL), 1);
    assert_int_equal(ota_reasm_n_sets(r), 0);
    assert_int_equal(ota_reasm_n_parts(r), 0);
    ota_reasm_free(r);
}

static void test_reasm_limits(void **state)
{
    struct ota_reasm *r = mk(2, 3, 1000);
    struct ota_reasm_msg m = {0}, keep;
    enum ota_reasm_status st;
    struct ota_err e;
    uint8_t pl[300];
    struct ota_sms_part a[3], b[3], c[3];
    struct ota_concat_opts o = {.ref = 1};
    (void)state;

    fill(pl, sizeof(pl), 4);
    assert_int_equal(ota_concat_segment(pl, 300, &o, a, 3, NULL), 3);
    o.ref = 2;
    assert_int_equal(ota_concat_segment(pl, 300, &o, b, 3, NULL), 3);
    o.ref = 3;
    assert_int_equal(ota_concat_segment(pl, 300, &o, c, 3, NULL), 3);
    assert_int_equal(add(r, "X", &a[0], 1, &st, &m, NULL), 0);
    assert_int_equal(add(r, "X", &b[0], 1, &st, &m, NULL), 0);
    /* a third set: refused, nothing changes */
    memset(&keep, 0x22, sizeof(keep));
    m = keep;
    assert_int_equal(add(r, "X", &c[0], 1, &st, &m, &e), -ENOBUFS);
    assert_int_equal(e.code, OTA_ERR_LIMIT);
    assert_memory_equal(&m, &keep, sizeof(m));
    assert_int_equal(ota_reasm_n_sets(r), 2);
    assert_int_equal(ota_reasm_n_parts(r), 2);
    /* third part held: parts limit reached */
    assert_int_equal(add(r, "X", &a[1], 1, &st, &m, NULL), 0);
    assert_int_equal(ota_reasm_n_parts(r), 3);
    assert_int_equal(add(r, "X", &b[1], 1, &st, &m, &e), -ENOBUFS);
    assert_int_equal(e.code, OTA_ERR_LIMIT);
    assert_int_equal(ota_reasm_n_parts(r), 3);
    /* but a part that completes a set needs no room */
    m = (struct ota_reasm_msg){0};
    assert_int_equal(add(r, "X", &a[2], 1, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_COMPLETE);
    assert_memory_equal(m.ud, pl, 300);
    ota_reasm_msg_fini(&m);
    assert_int_equal(ota_reasm_n_sets(r), 1);
    assert_int_equal(ota_reasm_n_parts(r), 1);
    /* room again for a new set */
    assert_int_equal(add(r, "X", &c[0], 1, &st, &m, NULL), 0);
    assert_int_equal(ota_reasm_n_sets(r), 2);
    ota_reasm_free(r);

    struct ota_reasm_limits lim = {.max_sets = 0, .max_parts = 1};
    struct ota_reasm *z = NULL;
    assert_int_equal(ota_reasm_new(&z, &lim, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    assert_null(z);
    assert_string_equal(ota_reasm_status_name(OTA_REASM_DUPLICATE), "duplicate");
    assert_string_equal(ota_reasm_status_name(OTA_REASM_PENDING), "pending");
    assert_string_equal(ota_reasm_status_name((enum ota_reasm_status)9), "unknown");
}

/*
 * The network delivers at least once: a part that comes again after its set
 * completed is a duplicate, not the start of a set that would expire as
 * "missing"; the same reference with other bytes is a new message.
 */
static void test_reasm_late_duplicate(void **state)
{
    struct ota_reasm *r = mk(4, 16, 1000);
    struct ota_reasm_msg m = {0};
    enum ota_reasm_status st = OTA_REASM_PENDING;
    uint8_t pl[200];
    struct ota_concat_opts o = {.ref = 9};
    (void)state;

    fill(pl, sizeof(pl), 3);
    assert_int_equal(ota_concat_segment(pl, sizeof(pl), &o, parts, 4, NULL), 2);
    struct ota_sms_part p1 = parts[0], p2 = parts[1];
    assert_int_equal(add(r, "B", &p1, 10, &st, &m, NULL), 0);
    assert_int_equal(add(r, "B", &p2, 20, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_COMPLETE);
    ota_reasm_msg_fini(&m);
    /* both parts again, late: duplicates, nothing held */
    assert_int_equal(add(r, "B", &p1, 30, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_DUPLICATE);
    assert_int_equal(add(r, "B", &p2, 40, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_DUPLICATE);
    assert_int_equal(ota_reasm_n_sets(r), 0);
    assert_int_equal(ota_reasm_n_parts(r), 0);
    /* another sender with the same reference is not a duplicate */
    assert_int_equal(add(r, "C", &p1, 45, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_PENDING);
    /* a new message reusing the reference: other bytes, a new set */
    fill(pl, sizeof(pl), 77);
    assert_int_equal(ota_concat_segment(pl, sizeof(pl), &o, parts, 4, NULL), 2);
    assert_int_equal(add(r, "B", &parts[0], 50, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_PENDING);
    assert_int_equal(ota_reasm_n_sets(r), 2);
    assert_int_equal(add(r, "B", &parts[1], 60, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_COMPLETE);
    assert_memory_equal(m.udh.payload, pl, sizeof(pl));
    ota_reasm_msg_fini(&m);
    /* once the timeout has passed a copy is no longer recognised (memory is bounded) */
    assert_int_equal(ota_reasm_expire(r, 5000, NULL, NULL), 1); /* only C's incomplete set */
    assert_int_equal(add(r, "B", &parts[0], 5000, &st, &m, NULL), 0);
    assert_int_equal(st, OTA_REASM_PENDING);
    ota_reasm_free(r); /* frees the held part under ASan */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_bad),   cmocka_unit_test(test_segment_plain),
        cmocka_unit_test(test_segment_scp80), cmocka_unit_test(test_segment_ports),
        cmocka_unit_test(test_reasm_dup),     cmocka_unit_test(test_reasm_limits),
        cmocka_unit_test(test_reasm_expire),  cmocka_unit_test(test_reasm_single),
        cmocka_unit_test(test_reasm_orders),  cmocka_unit_test(test_reasm_late_duplicate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
