/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smpp/cmpp_pdu.c: CMPP 2.0 / 3.0 framing, PDU encode/decode, authenticators
 * and code tables. Expected octets were built independently with Python's
 * struct and hashlib from ../shared/reference/cmpp.md (§3 CONNECT, §4 SUBMIT
 * 195 + L in 3.0 / 159 + L in 2.0, §5 report DELIVER 180 / 145 octets); the
 * authenticator is recomputed here with EVP. Bad paths: every truncation and
 * every lying Total_Length of every PDU type in both versions; the fuzz seeds
 * in tests/fuzz/corpus/cmpp/ (same Python builder) must decode.
 */
#include "smpp/cmpp.h"
#include "tests/support/tsupport.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <osmocom/core/utils.h>

/* ---- expected octets (Python struct.pack, see file comment) ---------------- */

/* 3.0 SUBMIT, push: Msg_Fmt 4, TP_udhi 1, UDH 06 05 04 0b 84 23 f0, L = 12. */
static const char submit30_hex[] =
    "000000cf"
    "00000004"
    "00000007"         /* Total_Length 207, SUBMIT, seq 7 */
    "0000000000000000" /* Msg_Id */
    "01"
    "01"
    "01"
    "00"                   /* Pk_total Pk_number Reg_Delivery Msg_level */
    "4f544150555348000000" /* Service_Id "OTAPUSH" */
    "02"                   /* Fee_UserType */
    "0000000000000000000000000000000000000000000000000000000000000000" /* Fee_terminal_Id */
    "00"
    "00"
    "01"
    "04"           /* Fee_terminal_type TP_pId TP_udhi Msg_Fmt */
    "393031323334" /* Msg_src "901234" */
    "3031"
    "303030303030"                               /* FeeType "01", FeeCode "000000" */
    "0000000000000000000000000000000000"         /* ValId_Time */
    "0000000000000000000000000000000000"         /* At_Time */
    "313036353031323334350000000000000000000000" /* Src_Id "1065012345" */
    "01"                                         /* DestUsr_tl */
    "3133383030313338303030000000000000000000000000000000000000000000" /* Dest "13800138000" */
    "00"
    "0c"                                        /* Dest_terminal_type, Msg_Length 12 */
    "0605040b8423f0010603c4af"                  /* Msg_Content */
    "0000000000000000000000000000000000000000"; /* LinkID */

static const char submit20_hex[] =
    "000000ab00000004000000080000000000000000010101004f5441505553480000000200"
    "000000000000000000000000000000000000000000010439303132333430313030303030"
    "300000000000000000000000000000000000000000000000000000000000000000000031"
    "303635303132333435000000000000000000000001313338303031333830303000000000"
    "0000000000000c0605040b8423f0010603c4af0000000000000000";

static const char deliver30_report_hex[] =
    "000000b40000000500000009000000000000123431303635303132333435000000000000"
    "00000000004f544150555348000000000000313338303031333830303000000000000000"
    "0000000000000000000000000000000147b5c1e8a00c0e000144454c4956524432353131"
    "323330373435323531313233303734363133383030313338303030000000000000000000"
    "0000000000000000000000000000004d0000000000000000000000000000000000000000";

static const char deliver20_report_hex[] =
    "00000091000000050000000a000000000000123431303635303132333435000000000000"
    "00000000004f544150555348000000000000313338303031333830303000000000000000"
    "000000013cb5c1e8a00c0e000144454c4956524432353131323330373435323531313233"
    "303734363133383030313338303030000000000000000000000000004d00000000000000"
    "00";

static const char connect30_hex[] =
    "000000270000000100000001393031323334b71d7de79a55071a717265380fcae4473042f0c1c4";

static const uint8_t push_content[] = {0x06, 0x05, 0x04, 0x0b, 0x84, 0x23,
                                       0xf0, 0x01, 0x06, 0x03, 0xc4, 0xaf};

static size_t hex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = ts_hex(h, out, cap);

    assert_true(n > 0);
    return n;
}

/* ---- sample PDUs of every type ------------------------------------------------ */

static struct cmpp_pdu *pdu_new(void)
{
    struct cmpp_pdu *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    return p;
}

static void fill_submit(struct cmpp_pdu *p, enum cmpp_version ver, unsigned n_dest)
{
    struct cmpp_submit *s = &p->u.submit;

    memset(p, 0, sizeof(*p));
    p->ver = ver;
    p->cmd_id = CMPP_SUBMIT;
    p->seq = ver == CMPP_V30 ? 7 : 8;
    s->pk_total = 1;
    s->pk_number = 1;
    s->registered_delivery = 1;
    strcpy(s->service_id, "OTAPUSH");
    s->fee_user_type = 2;
    s->tp_udhi = 1;
    s->msg_fmt = CMPP_FMT_BINARY;
    strcpy(s->msg_src, "901234");
    strcpy(s->fee_type, "01");
    strcpy(s->fee_code, "000000");
    strcpy(s->src_id, "1065012345");
    s->n_dest = (uint8_t)n_dest;
    for (unsigned i = 0; i < n_dest; i++) {
        snprintf(s->dest_terminal_id[i], sizeof(s->dest_terminal_id[i]), "%llu",
                 13800138000ull + i);
    }
    s->msg_len = sizeof(push_content);
    memcpy(s->msg_content, push_content, sizeof(push_content));
}

static void fill_report(struct cmpp_pdu *p, enum cmpp_version ver)
{
    struct cmpp_deliver *d = &p->u.deliver;

    memset(p, 0, sizeof(*p));
    p->ver = ver;
    p->cmd_id = CMPP_DELIVER;
    p->seq = ver == CMPP_V30 ? 9 : 10;
    d->msg_id = 0x1234;
    strcpy(d->dest_id, "1065012345");
    strcpy(d->service_id, "OTAPUSH");
    strcpy(d->src_terminal_id, "13800138000");
    d->registered_delivery = 1;
    d->report.msg_id = 0xb5c1e8a00c0e0001ull;
    strcpy(d->report.stat, "DELIVRD");
    strcpy(d->report.submit_time, "2511230745");
    strcpy(d->report.done_time, "2511230746");
    strcpy(d->report.dest_terminal_id, "13800138000");
    d->report.smsc_sequence = 77;
}

/* Number of sample kinds; sample() fills kind k and returns its expected size. */
#define N_KINDS 13

static size_t sample(struct cmpp_pdu *p, enum cmpp_version ver, int k)
{
    bool v3 = ver == CMPP_V30;

    memset(p, 0, sizeof(*p));
    p->ver = ver;
    p->seq = 1000u + (unsigned)k;
    switch (k) {
    case 0:
        p->cmd_id = CMPP_CONNECT;
        strcpy(p->u.connect.source_addr, "901234");
        memset(p->u.connect.auth_source, 0xa5, CMPP_AUTH_LEN);
        p->u.connect.version = (uint8_t)ver;
        p->u.connect.timestamp = 1123074500;
        return 39;
    case 1:
        p->cmd_id = CMPP_CONNECT_RESP;
        p->u.connect_resp.status = 3;
        memset(p->u.connect_resp.auth_ismg, 0x5a, CMPP_AUTH_LEN);
        p->u.connect_resp.version = (uint8_t)ver;
        return v3 ? 33 : 30;
    case 2:
        fill_submit(p, ver, 1);
        return (v3 ? 195 : 159) + sizeof(push_content);
    case 3:
        fill_submit(p, ver, 3);
        strcpy(p->u.submit.link_id, "LINK-1");
        strcpy(p->u.submit.fee_terminal_id, "+8613900000000");
        p->u.submit.fee_user_type = 3;
        memset(p->u.submit.reserve, 0, sizeof(p->u.submit.reserve));
        return (v3 ? 163 + 96 : 138 + 63) + sizeof(push_content);
    case 4:
        p->cmd_id = CMPP_SUBMIT_RESP;
        p->u.resp.msg_id = 0xb5c1e8a00c0e0001ull;
        p->u.resp.result = CMPP_RES_FLOW_CONTROL;
        return v3 ? 24 : 21;
    case 5: {
        struct cmpp_deliver *d = &p->u.deliver;
        p->cmd_id = CMPP_DELIVER;
        d->msg_id = 42;
        strcpy(d->dest_id, "1065012345");
        strcpy(d->service_id, "OTAPUSH");
        d->tp_udhi = 1;
        d->msg_fmt = CMPP_FMT_BINARY;
        strcpy(d->src_terminal_id, "13800138000");
        d->msg_len = sizeof(push_content);
        memcpy(d->msg_content, push_content, sizeof(push_content));
        if (v3) {
            strcpy(d->link_id, "L");
        } else {
            memcpy(d->reserved, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
        }
        return 12 + (v3 ? 97 : 73) + sizeof(push_content);
    }
    case 6: {
        uint32_t seq = p->seq;
        fill_report(p, ver);
        p->seq = seq;
        return v3 ? 180 : 145;
    }
    case 7:
        p->cmd_id = CMPP_DELIVER_RESP;
        p->u.resp.msg_id = 42;
        p->u.resp.result = 0;
        return v3 ? 24 : 21;
    case 8:
        p->cmd_id = CMPP_ACTIVE_TEST;
        return 12;
    case 9:
        p->cmd_id = CMPP_ACTIVE_TEST_RESP;
        return 13;
    case 10:
        p->cmd_id = CMPP_TERMINATE;
        return 12;
    case 11:
        p->cmd_id = CMPP_TERMINATE_RESP;
        return 12;
    case 12:
        /* Msg_Fmt 0 allows 160 octets [ref §4 field 22] */
        fill_submit(p, ver, 1);
        p->u.submit.tp_udhi = 0;
        p->u.submit.msg_fmt = CMPP_FMT_ASCII;
        p->u.submit.msg_len = CMPP_CONTENT_ASCII_MAX;
        memset(p->u.submit.msg_content, 'A', CMPP_CONTENT_ASCII_MAX);
        return (v3 ? 195 : 159) + CMPP_CONTENT_ASCII_MAX;
    }
    fail();
    return 0;
}

static const enum cmpp_version versions[] = {CMPP_V20, CMPP_V30};

/* ---- tests ---------------------------------------------------------------- */

static void test_submit30_push_exact(void **state)
{
    uint8_t want[300], out[300];
    struct cmpp_pdu *p = pdu_new(), *q = pdu_new();
    size_t n = hex(submit30_hex, want, sizeof(want));
    (void)state;

    assert_int_equal(n, 195 + sizeof(push_content));
    fill_submit(p, CMPP_V30, 1);
    assert_int_equal(cmpp_encoded_len(p), n);
    assert_int_equal(cmpp_encode(p, out, sizeof(out), NULL), (int)n);
    assert_memory_equal(out, want, n);
    assert_int_equal(cmpp_decode(want, n, CMPP_V30, q, NULL), 0);
    assert_true(cmpp_pdu_equal(p, q));
    assert_int_equal(q->u.submit.tp_udhi, 1);
    assert_int_equal(q->u.submit.msg_fmt, 4);
    assert_string_equal(q->u.submit.dest_terminal_id[0], "13800138000");

    n = hex(submit20_hex, want, sizeof(want));
    assert_int_equal(n, 159 + sizeof(push_content));
    fill_submit(p, CMPP_V20, 1);
    assert_int_equal(cmpp_encode(p, out, sizeof(out), NULL), (int)n);
    assert_memory_equal(out, want, n);
    assert_int_equal(cmpp_decode(want, n, CMPP_V20, q, NULL), 0);
    assert_true(cmpp_pdu_equal(p, q));
    free(p);
    free(q);
}

static void test_report_exact(void **state)
{
    uint8_t want[300], out[300];
    struct cmpp_pdu *p = pdu_new(), *q = pdu_new();
    (void)state;

    for (int v = 0; v < 2; v++) {
        enum cmpp_version ver = versions[v];
        size_t n =
            hex(ver == CMPP_V30 ? deliver30_report_hex : deliver20_report_hex, want, sizeof(want));
        assert_int_equal(n, ver == CMPP_V30 ? 180 : 145);
        fill_report(p, ver);
        assert_int_equal(cmpp_encode(p, out, sizeof(out), NULL), (int)n);
        assert_memory_equal(out, want, n);
        assert_int_equal(cmpp_decode(want, n, ver, q, NULL), 0);
        assert_true(cmpp_pdu_equal(p, q));
        assert_int_equal(q->u.deliver.msg_len, ver == CMPP_V30 ? 71 : 60);
        assert_true(q->u.deliver.report.msg_id == 0xb5c1e8a00c0e0001ull);
        assert_string_equal(q->u.deliver.report.stat, "DELIVRD");
        assert_int_equal(cmpp_stat_classify(q->u.deliver.report.stat), CMPP_SC_DELIVERED);
        assert_int_equal(q->u.deliver.report.smsc_sequence, 77);
    }
    free(p);
    free(q);
}

static void test_roundtrip_all(void **state)
{
    uint8_t buf[CMPP_PDU_MAX_LEN], buf2[CMPP_PDU_MAX_LEN];
    struct cmpp_pdu *p = pdu_new(), *q = pdu_new();
    (void)state;

    for (int v = 0; v < 2; v++) {
        for (int k = 0; k < N_KINDS; k++) {
            struct ota_err e;
            size_t want = sample(p, versions[v], k);
            int n = cmpp_encode(p, buf, sizeof(buf), &e);
            if (n < 0) {
                fail_msg("kind %d v%x: %s", k, versions[v], e.msg);
            }
            assert_int_equal((size_t)n, want);
            assert_int_equal(cmpp_encoded_len(p), want);
            memset(q, 0x77, sizeof(*q));
            if (cmpp_decode(buf, (size_t)n, versions[v], q, &e) != 0) {
                fail_msg("kind %d v%x: %s", k, versions[v], e.msg);
            }
            assert_true(cmpp_pdu_equal(p, q));
            assert_int_equal(cmpp_encode(q, buf2, sizeof(buf2), NULL), n);
            assert_memory_equal(buf, buf2, (size_t)n);
            /* too small a buffer: refused, nothing written */
            memset(buf2, 0xee, sizeof(buf2));
            assert_int_equal(cmpp_encode(p, buf2, (size_t)n - 1, &e), -ENOSPC);
            assert_int_equal(e.code, OTA_ERR_NOSPACE);
            assert_int_equal(buf2[0], 0xee);
        }
    }
    free(p);
    free(q);
}

/* Every prefix is truncated; *out is left alone. */
static void test_truncations(void **state)
{
    uint8_t buf[CMPP_PDU_MAX_LEN];
    struct cmpp_pdu *p = pdu_new(), *q = pdu_new(), *keep = pdu_new();
    (void)state;

    memset(keep, 0x77, sizeof(*keep));
    for (int v = 0; v < 2; v++) {
        for (int k = 0; k < N_KINDS; k++) {
            sample(p, versions[v], k);
            int n = cmpp_encode(p, buf, sizeof(buf), NULL);
            assert_true(n > 0);
            for (size_t len = 0; len < (size_t)n; len++) {
                struct ota_err e;
                memcpy(q, keep, sizeof(*q));
                int rc = cmpp_decode(buf, len, versions[v], q, &e);
                assert_int_equal(rc, -EBADMSG);
                assert_int_equal(e.code, OTA_ERR_TRUNCATED);
                assert_memory_equal(q, keep, sizeof(*q));
            }
        }
    }
    free(p);
    free(q);
    free(keep);
}

static void put_total(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

/*
 * Every lying Total_Length: (a) the octets agree with Total_Length but the
 * fields need more or fewer (prefixes and zero-extended copies, patched);
 * (b) the field says less than 12, or less than the octets given; (c) it says
 * more than given (truncated).
 */
static void test_lying_lengths(void **state)
{
    uint8_t buf[CMPP_PDU_MAX_LEN + 64], lie[CMPP_PDU_MAX_LEN + 64];
    struct cmpp_pdu *p = pdu_new(), *q = pdu_new();
    struct ota_err e;
    (void)state;

    for (int v = 0; v < 2; v++) {
        for (int k = 0; k < N_KINDS; k++) {
            sample(p, versions[v], k);
            int n = cmpp_encode(p, buf, sizeof(buf), NULL);
            assert_true(n > 0);
            for (size_t t = CMPP_HDR_LEN; t < (size_t)n + 48; t++) {
                if (t == (size_t)n) {
                    continue;
                }
                memset(lie, 0, sizeof(lie));
                memcpy(lie, buf, t < (size_t)n ? t : (size_t)n);
                put_total(lie, (uint32_t)t);
                int rc = cmpp_decode(lie, t, versions[v], q, &e);
                if (rc != -EBADMSG || e.code != OTA_ERR_LENGTH) {
                    fail_msg("kind %d v%x Total_Length %zu of %d: rc %d %s", k, versions[v], t, n,
                             rc, e.msg);
                }
            }
            for (uint32_t t = 0; t < CMPP_HDR_LEN; t++) {
                memcpy(lie, buf, (size_t)n);
                put_total(lie, t);
                assert_int_equal(cmpp_decode(lie, (size_t)n, versions[v], q, &e), -EBADMSG);
                assert_int_equal(e.code, OTA_ERR_LENGTH);
            }
            /* octets after the PDU */
            memcpy(lie, buf, (size_t)n);
            lie[n] = 0;
            int rc = cmpp_decode(lie, (size_t)n + 1, versions[v], q, &e);
            assert_int_equal(rc, -EBADMSG);
            assert_int_equal(e.code, OTA_ERR_LENGTH);
            /* claims more than given */
            put_total(lie, (uint32_t)n + 1);
            assert_int_equal(cmpp_decode(lie, (size_t)n, versions[v], q, &e), -EBADMSG);
            assert_int_equal(e.code, OTA_ERR_TRUNCATED);
        }
    }
    free(p);
    free(q);
}

/* Offset of Msg_Length in a 1-recipient SUBMIT, and of DestUsr_tl. */
static size_t submit_off_msglen(enum cmpp_version ver)
{
    return ver == CMPP_V30 ? 12 + 130 + 32 : 12 + 117 + 21;
}

static size_t submit_off_ndest(enum cmpp_version ver)
{
    return ver == CMPP_V30 ? 12 + 128 : 12 + 116;
}

static void test_field_lengths(void **state)
{
    uint8_t buf[CMPP_PDU_MAX_LEN], lie[CMPP_PDU_MAX_LEN];
    struct cmpp_pdu *p = pdu_new(), *q = pdu_new();
    struct ota_err e;
    (void)state;

    for (int v = 0; v < 2; v++) {
        enum cmpp_version ver = versions[v];
        fill_submit(p, ver, 1);
        int n = cmpp_encode(p, buf, sizeof(buf), NULL);
        assert_true(n > 0);
        size_t ml = submit_off_msglen(ver), nd = submit_off_ndest(ver);
        assert_int_equal(buf[ml], sizeof(push_content));
        assert_int_equal(buf[nd], 1);
        /* Msg_Length one more / one less than the content present */
        for (int d = -1; d <= 1; d += 2) {
            memcpy(lie, buf, (size_t)n);
            lie[ml] = (uint8_t)(lie[ml] + d);
            assert_int_equal(cmpp_decode(lie, (size_t)n, ver, q, &e), -EBADMSG);
            assert_int_equal(e.code, OTA_ERR_LENGTH);
        }
        /* DestUsr_tl lying: 2 with one recipient is a length error, 0 / 101 a value */
        memcpy(lie, buf, (size_t)n);
        lie[nd] = 2;
        assert_int_equal(cmpp_decode(lie, (size_t)n, ver, q, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_LENGTH);
        lie[nd] = 0;
        assert_int_equal(cmpp_decode(lie, (size_t)n, ver, q, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_VALUE);
        lie[nd] = 101;
        assert_int_equal(cmpp_decode(lie, (size_t)n, ver, q, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_VALUE);

        /* a DELIVER refused for a value still yields its Msg_Id for the answer */
        sample(p, ver, 5);
        p->u.deliver.tp_udhi = 0;
        n = cmpp_encode(p, buf, sizeof(buf), NULL);
        assert_true(n > 0);
        memcpy(lie, buf, (size_t)n);
        lie[12 + 8 + 21 + 10 + 1] = 2; /* TP_udhi 2 */
        assert_int_equal(cmpp_decode(lie, (size_t)n, ver, q, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_VALUE);
        uint64_t mid = 0;
        assert_int_equal(cmpp_peek_msg_id(lie, (size_t)n, &mid, &e), 0);
        assert_true(mid == 42);
        assert_int_equal(cmpp_peek_msg_id(lie, 19, &mid, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_TRUNCATED);
        sample(p, ver, 8);
        n = cmpp_encode(p, lie, sizeof(lie), NULL);
        assert_int_equal(cmpp_peek_msg_id(lie, (size_t)n, &mid, &e), -EINVAL);
        assert_int_equal(e.code, OTA_ERR_TAG);

        /* a report DELIVER whose Msg_Length is not 60 / 71 */
        sample(p, ver, 5);
        p->u.deliver.registered_delivery = 0;
        p->u.deliver.tp_udhi = 0;
        p->u.deliver.msg_len = ver == CMPP_V30 ? 70 : 59;
        n = cmpp_encode(p, buf, sizeof(buf), NULL);
        assert_true(n > 0);
        size_t rd_off = 12 + 8 + 21 + 10 + 3 + (ver == CMPP_V30 ? 33 : 21);
        assert_int_equal(buf[rd_off], 0);
        buf[rd_off] = 1;
        assert_int_equal(cmpp_decode(buf, (size_t)n, ver, q, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_LENGTH);
    }
    free(p);
    free(q);
}

static void test_oversize_and_values(void **state)
{
    uint8_t buf[CMPP_PDU_MAX_LEN];
    struct cmpp_pdu *p = pdu_new(), *q = pdu_new();
    struct ota_err e;
    (void)state;

    for (int v = 0; v < 2; v++) {
        enum cmpp_version ver = versions[v];

        /* binary content of 141 octets: refused by encode and by decode */
        fill_submit(p, ver, 1);
        p->u.submit.msg_len = CMPP_CONTENT_MAX + 1;
        assert_int_equal(cmpp_encode(p, buf, sizeof(buf), &e), -EINVAL);
        assert_int_equal(e.code, OTA_ERR_OVERSIZE);
        p->u.submit.msg_fmt = CMPP_FMT_ASCII;
        p->u.submit.tp_udhi = 0;
        int n = cmpp_encode(p, buf, sizeof(buf), NULL);
        assert_true(n > 0);
        size_t fmt_off = ver == CMPP_V30 ? 12 + 58 : 12 + 46;
        assert_int_equal(buf[fmt_off], CMPP_FMT_ASCII);
        buf[fmt_off] = CMPP_FMT_BINARY;
        assert_int_equal(cmpp_decode(buf, (size_t)n, ver, q, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_OVERSIZE);
        /* 161 octets even for ASCII */
        fill_submit(p, ver, 1);
        p->u.submit.msg_fmt = CMPP_FMT_ASCII;
        p->u.submit.tp_udhi = 0;
        p->u.submit.msg_len = CMPP_CONTENT_ASCII_MAX + 1;
        assert_int_equal(cmpp_encode(p, buf, sizeof(buf), &e), -EINVAL);
        assert_int_equal(e.code, OTA_ERR_OVERSIZE);

        /* bad values, each on encode (-EINVAL) and on decode (-EBADMSG) */
        for (int t = 0; t < 11; t++) {
            fill_submit(p, ver, 1);
            struct cmpp_submit *s = &p->u.submit;
            switch (t) {
            case 0:
                s->msg_fmt = 5;
                break;
            case 1:
                s->tp_udhi = 2;
                break;
            case 2:
                s->pk_number = 2;
                break;
            case 3:
                s->pk_total = 0;
                s->pk_number = 0;
                break;
            case 4:
                strcpy(s->dest_terminal_id[0], "1380013800A");
                break;
            case 5:
                s->dest_terminal_id[0][0] = 0;
                break;
            case 6:
                s->msg_content[0] = 12;
                break; /* UDHL beyond Msg_Length */
            case 7:
                s->fee_user_type = 4;
                break;
            case 8:
                strcpy(s->fee_code, "12a");
                break;
            case 9:
                s->registered_delivery = 3;
                break;
            case 10:
                s->service_id[2] = 0x01;
                break;
            }
            assert_int_equal(cmpp_encode(p, buf, sizeof(buf), &e), -EINVAL);
            assert_int_equal(e.code, OTA_ERR_VALUE);
        }
        /* decode side: a control character in Dest_terminal_Id, junk after 0x00 ignored */
        fill_submit(p, ver, 1);
        n = cmpp_encode(p, buf, sizeof(buf), NULL);
        size_t dst_off = submit_off_ndest(ver) + 1;
        buf[dst_off + 3] = 0x07;
        assert_int_equal(cmpp_decode(buf, (size_t)n, ver, q, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_VALUE);
        buf[dst_off + 3] = '0';
        buf[dst_off + 20] = 0x07; /* after the terminating 0x00: padding */
        assert_int_equal(cmpp_decode(buf, (size_t)n, ver, q, &e), 0);
        assert_string_equal(q->u.submit.dest_terminal_id[0], "13800138000");
        /* Registered_Delivery 2 only exists in 2.0 */
        fill_submit(p, ver, 1);
        p->u.submit.registered_delivery = 2;
        assert_int_equal(cmpp_encode(p, buf, sizeof(buf), NULL) > 0, ver == CMPP_V20);
        /* 2.0 terminal ids are 21 octets; pseudo-codes only with type 1 in 3.0 */
        fill_submit(p, ver, 1);
        strcpy(p->u.submit.dest_terminal_id[0], "1234567890123456789012");
        assert_int_equal(cmpp_encode(p, buf, sizeof(buf), &e) > 0, ver == CMPP_V30);
        fill_submit(p, ver, 1);
        strcpy(p->u.submit.dest_terminal_id[0], "pseudoABC");
        p->u.submit.dest_terminal_type = 1;
        assert_int_equal(cmpp_encode(p, buf, sizeof(buf), &e) > 0, ver == CMPP_V30);
        /* 2.0 Result / Status must fit one octet */
        sample(p, ver, 4);
        p->u.resp.result = 256;
        assert_int_equal(cmpp_encode(p, buf, sizeof(buf), &e) > 0, ver == CMPP_V30);
        sample(p, ver, 1);
        p->u.connect_resp.status = 300;
        assert_int_equal(cmpp_encode(p, buf, sizeof(buf), &e) > 0, ver == CMPP_V30);
        /* a text field filling its whole width has no 0x00 and still decodes */
        fill_submit(p, ver, 1);
        strcpy(p->u.submit.service_id, "0123456789");
        n = cmpp_encode(p, buf, sizeof(buf), NULL);
        assert_true(n > 0);
        assert_int_equal(cmpp_decode(buf, (size_t)n, ver, q, NULL), 0);
        assert_string_equal(q->u.submit.service_id, "0123456789");
        strcpy(p->u.submit.service_id, "01234567890");
        assert_int_equal(cmpp_encode(p, buf, sizeof(buf), &e), -EINVAL);
        assert_int_equal(e.code, OTA_ERR_OVERSIZE);
    }
    /* unknown layout version */
    sample(p, CMPP_V30, 8);
    p->ver = (enum cmpp_version)0x21;
    assert_int_equal(cmpp_encode(p, buf, sizeof(buf), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_VERSION);
    assert_int_equal(cmpp_decode(buf, 12, (enum cmpp_version)0x21, q, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_VERSION);
    free(p);
    free(q);
}

static void test_unknown_command(void **state)
{
    /* CMPP_QUERY (known, not decoded here) and 0x00000003 (not in §2), seq 0x1234 */
    static const uint32_t ids[] = {CMPP_QUERY, 0x00000003, 0x80000010, 0xffffffff};
    uint8_t b[20] = {0x00, 0x00, 0x00, 0x14, 0, 0, 0, 0, 0x00, 0x00, 0x12, 0x34};
    struct cmpp_pdu *q = pdu_new();
    struct ota_err e;
    struct cmpp_hdr h;
    (void)state;

    for (size_t i = 0; i < OTA_ARRAY_SIZE(ids); i++) {
        b[4] = (uint8_t)(ids[i] >> 24);
        b[5] = (uint8_t)(ids[i] >> 16);
        b[6] = (uint8_t)(ids[i] >> 8);
        b[7] = (uint8_t)ids[i];
        assert_int_equal(cmpp_decode(b, sizeof(b), CMPP_V30, q, &e), -EOPNOTSUPP);
        assert_int_equal(e.code, OTA_ERR_TAG);
        assert_non_null(strstr(e.msg, "seq 4660"));
        assert_int_equal(cmpp_frame(b, sizeof(b), 0, &h, NULL), 20);
        assert_int_equal(h.cmd_id, ids[i]);
        assert_int_equal(h.seq, 0x1234);
    }
    sample(q, CMPP_V30, 8);
    q->cmd_id = CMPP_QUERY;
    assert_int_equal(cmpp_encode(q, b, sizeof(b), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_TAG);
    free(q);
}

static void test_frame(void **state)
{
    uint8_t b[64] = {0};
    struct cmpp_hdr h = {1, 2, 3}, keep = h;
    struct ota_err e;
    (void)state;

    put_total(b, 13);
    b[7] = 8;
    b[11] = 5;
    for (size_t len = 0; len < 13; len++) {
        assert_int_equal(cmpp_frame(b, len, 0, &h, &e), 0);
        assert_memory_equal(&h, &keep, sizeof(h));
    }
    assert_int_equal(cmpp_frame(b, 13, 0, &h, NULL), 13);
    assert_int_equal(h.total_len, 13);
    assert_int_equal(h.cmd_id, 8);
    assert_int_equal(h.seq, 5);
    assert_int_equal(cmpp_frame(b, 40, 0, &h, NULL), 13); /* next PDU follows */
    for (uint32_t t = 0; t < 12; t++) {
        put_total(b, t);
        assert_int_equal(cmpp_frame(b, 4, 0, &h, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_LENGTH);
    }
    /* oversize refused with only 4 octets in hand */
    put_total(b, CMPP_PDU_MAX_LEN + 1);
    assert_int_equal(cmpp_frame(b, 4, 0, &h, &e), -EMSGSIZE);
    assert_int_equal(e.code, OTA_ERR_OVERSIZE);
    put_total(b, 0xffffffffu);
    assert_int_equal(cmpp_frame(b, 4, 0, &h, &e), -EMSGSIZE);
    put_total(b, 1001);
    assert_int_equal(cmpp_frame(b, 4, 1000, &h, &e), -EMSGSIZE);
    put_total(b, CMPP_PDU_MAX_LEN);
    assert_int_equal(cmpp_frame(b, 4, 0, &h, &e), 0);
    assert_int_equal(cmpp_frame(b, 4, 8, &h, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    assert_int_equal(cmpp_hdr_parse(b, 11, &h, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_TRUNCATED);
}

/* MD5 recomputed here with EVP, and against Python hashlib's value. */
static void test_auth(void **state)
{
    static const char secret[] = "secret";
    const uint8_t *sec = (const uint8_t *)secret;
    uint8_t want[16], got[16], ismg[16], buf[64], pdu_bytes[64];
    unsigned int olen;
    struct cmpp_pdu *p = pdu_new();
    struct ota_err e;
    size_t o = 0;
    (void)state;

    assert_int_equal(cmpp_timestamp(11, 23, 7, 45, 0), 1123074500u);
    assert_int_equal(cmpp_timestamp(13, 1, 0, 0, 0), 0);
    memcpy(buf, "901234", 6);
    o = 6;
    memset(buf + o, 0, 9);
    o += 9;
    memcpy(buf + o, secret, 6);
    o += 6;
    memcpy(buf + o, "1123074500", 10);
    o += 10;
    assert_int_equal(EVP_Digest(buf, o, want, &olen, EVP_md5(), NULL), 1);
    assert_int_equal(cmpp_auth_source("901234", sec, 6, 1123074500, got, &e), 0);
    assert_memory_equal(got, want, 16);
    hex("b71d7de79a55071a717265380fcae447", buf, sizeof(buf));
    assert_memory_equal(got, buf, 16);

    /* the CONNECT of connect30_hex carries it; the ISMG side verifies it */
    size_t n = hex(connect30_hex, pdu_bytes, sizeof(pdu_bytes));
    assert_int_equal(cmpp_decode(pdu_bytes, n, CMPP_V30, p, NULL), 0);
    assert_int_equal(p->u.connect.version, 0x30);
    assert_int_equal(p->u.connect.timestamp, 1123074500u);
    assert_int_equal(cmpp_connect_verify(&p->u.connect, sec, 6, &e), 0);
    assert_int_equal(cmpp_connect_verify(&p->u.connect, (const uint8_t *)"secreT", 6, &e), -EACCES);
    assert_int_equal(e.code, OTA_ERR_BAD_CC);
    p->u.connect.timestamp++;
    assert_int_equal(cmpp_connect_verify(&p->u.connect, sec, 6, &e), -EACCES);

    /* AuthenticatorISMG = MD5(Status || AuthenticatorSource || secret), Status wire width */
    assert_int_equal(cmpp_auth_ismg(CMPP_V30, 0, got, sec, 6, ismg, NULL), 0);
    hex("790a372b3b264a2530dc6af40e43e320", buf, sizeof(buf));
    assert_memory_equal(ismg, buf, 16);
    assert_int_equal(cmpp_auth_ismg(CMPP_V20, 0, got, sec, 6, ismg, NULL), 0);
    hex("8d7e24b78406dd491e4e082f3a8f7ca6", buf, sizeof(buf));
    assert_memory_equal(ismg, buf, 16);
    struct cmpp_connect_resp r = {.status = 0, .version = 0x20};
    memcpy(r.auth_ismg, ismg, 16);
    assert_int_equal(cmpp_connect_resp_verify(CMPP_V20, &r, got, sec, 6, &e), 0);
    assert_int_equal(cmpp_connect_resp_verify(CMPP_V30, &r, got, sec, 6, &e), -EACCES);
    assert_int_equal(e.code, OTA_ERR_BAD_CC);
    r.status = 256;
    assert_int_equal(cmpp_connect_resp_verify(CMPP_V20, &r, got, sec, 6, &e), -EINVAL);

    /* argument limits */
    assert_int_equal(cmpp_auth_source("9012345", sec, 6, 1, got, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    uint8_t big[65] = {0};
    assert_int_equal(cmpp_auth_source("901234", big, sizeof(big), 1, got, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_KEY);
    /* short Source_Addr is 0x00-padded to 6 octets like the field */
    memset(buf, 0, sizeof(buf));
    memcpy(buf, "9012", 4);
    memcpy(buf + 15, "1123074500", 10);
    assert_int_equal(EVP_Digest(buf, 25, want, &olen, EVP_md5(), NULL), 1);
    assert_int_equal(cmpp_auth_source("9012", NULL, 0, 1123074500, got, NULL), 0);
    assert_memory_equal(got, want, 16);
    /* January: the timestamp text keeps its leading zero ("0101000000") */
    memcpy(buf + 15, "0101000000", 10);
    assert_int_equal(EVP_Digest(buf, 25, want, &olen, EVP_md5(), NULL), 1);
    assert_int_equal(cmpp_auth_source("9012", NULL, 0, cmpp_timestamp(1, 1, 0, 0, 0), got, NULL),
                     0);
    assert_memory_equal(got, want, 16);
    free(p);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(cmpp_cmd_name(CMPP_SUBMIT), "submit");
    assert_string_equal(cmpp_cmd_name(CMPP_ACTIVE_TEST_RESP), "active_test_resp");
    assert_string_equal(cmpp_cmd_name(3), "unknown");
    assert_string_equal(cmpp_version_name(CMPP_V20), "2.0");
    assert_string_equal(cmpp_version_name((enum cmpp_version)0x21), "unknown");
    for (uint32_t r = 0; r <= 13; r++) {
        assert_string_not_equal(cmpp_result_name(r), "other-error");
        assert_int_equal(cmpp_result_classify(r), r == 0   ? CMPP_RC_OK
                                                  : r == 8 ? CMPP_RC_RETRY
                                                           : CMPP_RC_FINAL);
    }
    assert_string_equal(cmpp_result_name(8), "flow-control");
    assert_string_equal(cmpp_result_name(14), "other-error");
    assert_int_equal(cmpp_result_classify(0xffffffffu), CMPP_RC_FINAL);
    assert_string_equal(cmpp_result_class_name(CMPP_RC_RETRY), "retry");
    assert_string_equal(cmpp_connect_status_name(3), "auth-failed");
    assert_string_equal(cmpp_connect_status_name(9), "other-error");
    for (unsigned s = CMPP_STAT_DELIVRD; s < CMPP_STAT__COUNT; s++) {
        assert_int_equal(cmpp_stat_parse(cmpp_stat_name((enum cmpp_stat)s)), s);
    }
    assert_int_equal(cmpp_stat_parse("MA:0001"), CMPP_STAT_OTHER);
    assert_int_equal(cmpp_stat_parse("delivrd"), CMPP_STAT_OTHER);
    assert_int_equal(cmpp_stat_classify("DELIVRD"), CMPP_SC_DELIVERED);
    assert_int_equal(cmpp_stat_classify("ACCEPTD"), CMPP_SC_PENDING);
    assert_int_equal(cmpp_stat_classify("EXPIRED"), CMPP_SC_FAILED);
    assert_int_equal(cmpp_stat_classify("MB:0008"), CMPP_SC_FAILED);
    assert_string_equal(cmpp_stat_class_name(CMPP_SC_PENDING), "pending");
}

/* The fuzz seeds (built with Python's struct) decode in their version. */
static void test_corpus(void **state)
{
    static const struct {
        const char *name;
        enum cmpp_version ver;
        uint32_t cmd;
    } seeds[] = {
        {"active_test_resp", CMPP_V30, CMPP_ACTIVE_TEST_RESP},
        {"connect30", CMPP_V30, CMPP_CONNECT},
        {"connect_resp20", CMPP_V20, CMPP_CONNECT_RESP},
        {"deliver20_report", CMPP_V20, CMPP_DELIVER},
        {"deliver30_mo_udh", CMPP_V30, CMPP_DELIVER},
        {"deliver30_report", CMPP_V30, CMPP_DELIVER},
        {"submit20_push", CMPP_V20, CMPP_SUBMIT},
        {"submit30_push", CMPP_V30, CMPP_SUBMIT},
        {"submit_resp20_flow", CMPP_V20, CMPP_SUBMIT_RESP},
        {"submit_resp30", CMPP_V30, CMPP_SUBMIT_RESP},
        {"terminate", CMPP_V20, CMPP_TERMINATE},
    };
    uint8_t buf[CMPP_PDU_MAX_LEN];
    struct cmpp_pdu *p = pdu_new();
    struct ota_err e;
    (void)state;

    for (size_t i = 0; i < OTA_ARRAY_SIZE(seeds); i++) {
        char path[512];
        int w = snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/cmpp/%s.bin", OTAGW_SOURCE_DIR,
                         seeds[i].name);
        assert_true(w > 0 && (size_t)w < sizeof(path));
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        if (cmpp_decode(buf, n, seeds[i].ver, p, &e) != 0) {
            fail_msg("%s: %s", seeds[i].name, e.msg);
        }
        assert_int_equal(p->cmd_id, seeds[i].cmd);
    }
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_lying_lengths),
        cmocka_unit_test(test_field_lengths),
        cmocka_unit_test(test_oversize_and_values),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_submit30_push_exact),
        cmocka_unit_test(test_report_exact),
        cmocka_unit_test(test_roundtrip_all),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
