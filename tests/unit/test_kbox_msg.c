/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smpp/kbox_msg.c: Kannel box frames are built by hand here from the field
 * order of gw/msg-decl.h (kannel-dev 1.4.5), so a codec with a field out of
 * place fails; every type round-trips; NULL and empty strings stay apart;
 * every truncation, lying length, oversize frame and unknown type is refused
 * with its own code and leaves the output untouched.
 */
#include "smpp/kbox.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <osmocom/core/utils.h>

/* ---- a hand-written frame builder, independent of the codec ------------------ */

struct wr {
    uint8_t b[2048];
    size_t n;
};

static void w_int(struct wr *w, int32_t v)
{
    uint32_t u = (uint32_t)v;

    assert_true(w->n + 4 <= sizeof(w->b));
    w->b[w->n++] = (uint8_t)(u >> 24);
    w->b[w->n++] = (uint8_t)(u >> 16);
    w->b[w->n++] = (uint8_t)(u >> 8);
    w->b[w->n++] = (uint8_t)u;
}

static void w_bytes(struct wr *w, const void *p, size_t len)
{
    w_int(w, (int32_t)len);
    assert_true(w->n + len <= sizeof(w->b));
    memcpy(w->b + w->n, p, len);
    w->n += len;
}

static void w_str(struct wr *w, const char *s)
{
    w_bytes(w, s, strlen(s));
}

static void w_null(struct wr *w)
{
    w_int(w, -1);
}

/* Prefix the payload written so far with its length (conn_write_withlen). */
static void w_frame(struct wr *w)
{
    assert_true(w->n + 4 <= sizeof(w->b));
    memmove(w->b + 4, w->b, w->n);
    uint32_t u = (uint32_t)w->n;
    w->b[0] = (uint8_t)(u >> 24);
    w->b[1] = (uint8_t)(u >> 16);
    w->b[2] = (uint8_t)(u >> 8);
    w->b[3] = (uint8_t)u;
    w->n += 4;
}

static const uint8_t test_id[KBOX_UUID_LEN] = {
    0x1b, 0x4e, 0x28, 0xba, 0x2f, 0xa1, 0x41, 0xd2, 0x88, 0x3f, 0x0e, 0x9a, 0x6b, 0x2c, 0x57, 0x10,
};
static const char test_id_text[] = "1b4e28ba-2fa1-41d2-883f-0e9a6b2c5710";

/* Encode m and compare with the hand-built frame, then decode it back. */
static void expect_frame(const struct kbox_msg *m, const struct wr *want)
{
    uint8_t out[2048];
    struct kbox_msg back;
    struct ota_err e;
    int n = kbox_msg_encode(m, out, sizeof(out), &e);

    assert_int_equal(n, (int)want->n);
    assert_memory_equal(out, want->b, want->n);
    assert_int_equal(kbox_msg_packed_len(m, NULL), n - 4);
    assert_int_equal(kbox_msg_decode(want->b, want->n, &back, &e), 0);
    assert_int_equal(back.type, m->type);
    /* Re-encoding the decoded form must give the same octets. */
    assert_int_equal(kbox_msg_encode(&back, out, sizeof(out), NULL), n);
    assert_memory_equal(out, want->b, want->n);
}

/* ---- exact bytes --------------------------------------------------------------------- */

static void test_heartbeat_bytes(void **state)
{
    struct kbox_msg m;
    struct wr w = {.n = 0};
    (void)state;

    kbox_msg_heartbeat(&m, 7);
    w_int(&w, 0); /* heartbeat */
    w_int(&w, 7); /* load */
    w_frame(&w);
    assert_int_equal(w.n, 12);
    expect_frame(&m, &w);
}

static void test_identify_bytes(void **state)
{
    struct kbox_msg m;
    struct wr w = {.n = 0};
    (void)state;

    kbox_msg_identify(&m, KBOX_STR_LIT("otagw"));
    w_int(&w, 1); /* admin */
    w_int(&w, 3); /* cmd_identify */
    w_str(&w, "otagw");
    w_frame(&w);
    expect_frame(&m, &w);

    /* smsbox identifies even without an id: boxc_id NULL is length -1. */
    uint8_t want[16];
    int n = osmo_hexparse("0000000c 00000001 00000003 ffffffff", want, sizeof(want));
    uint8_t out[16];
    kbox_msg_identify(&m, KBOX_STR_NULL);
    assert_int_equal(kbox_msg_encode(&m, out, sizeof(out), NULL), n);
    assert_memory_equal(out, want, (size_t)n);
}

static void test_ack_bytes(void **state)
{
    struct kbox_msg m;
    struct wr w = {.n = 0};
    (void)state;

    kbox_msg_ack(&m, KBOX_ACK_SUCCESS, 1700000000, test_id);
    w_int(&w, 3);            /* ack */
    w_int(&w, 0);            /* nack */
    w_int(&w, 1700000000);   /* time */
    w_str(&w, test_id_text); /* id as 36-char text */
    w_frame(&w);
    expect_frame(&m, &w);
}

/* The OTA MT, field by field in msg-decl.h order. */
static void build_ota_mt(struct kbox_msg *m)
{
    static const uint8_t udh[] = {0x02, 0x70, 0x00};
    static const uint8_t data[] = {
        0x00, 0x0d, 0x15, 0x16, 0x19, 0x12, 0x12, 0xb0, 0x00, 0x10,
    };
    struct kbox_mt mt = {
        .sender = KBOX_STR_LIT("otagw"),
        .receiver = KBOX_STR_LIT("+8613800000001"),
        .udh = {udh, sizeof(udh)},
        .data = {data, sizeof(data)},
        .mclass = 2,
        .pid = 0x7f,
        .dlr_mask = KBOX_DLR_SUCCESS | KBOX_DLR_FAIL | KBOX_DLR_BUFFERED | KBOX_DLR_SMSC_SUCCESS |
                    KBOX_DLR_SMSC_FAIL,
        .priority = KBOX_UNDEF,
        .validity = 1700086400,
        .time = 1700000000,
        .boxc_id = KBOX_STR_LIT("otagw"),
        .correlation = KBOX_STR_LIT("otagw:81234"),
        .smsc_id = KBOX_STR_NULL,
    };
    memcpy(mt.id, test_id, sizeof(mt.id));
    assert_int_equal(kbox_sms_build_mt(&mt, m, NULL), 0);
}

static void test_ota_mt_bytes(void **state)
{
    struct kbox_msg m;
    struct wr w = {.n = 0};
    (void)state;

    build_ota_mt(&m);
    w_int(&w, 2);                                                /* sms */
    w_str(&w, "otagw");                                          /* sender */
    w_str(&w, "+8613800000001");                                 /* receiver */
    w_bytes(&w, "\x02\x70\x00", 3);                              /* udhdata */
    w_bytes(&w, "\x00\x0d\x15\x16\x19\x12\x12\xb0\x00\x10", 10); /* msgdata */
    w_int(&w, 1700000000);                                       /* time */
    w_null(&w);                                                  /* smsc_id */
    w_null(&w);                                                  /* smsc_number */
    w_null(&w);                                                  /* foreign_id */
    w_null(&w);                                                  /* service */
    w_null(&w);                                                  /* account */
    w_str(&w, test_id_text);                                     /* id */
    w_int(&w, 2);                                                /* sms_type mt_push */
    w_int(&w, 2);                                                /* mclass */
    w_int(&w, -1);                                               /* mwi */
    w_int(&w, 1);                                                /* coding DC_8BIT */
    w_int(&w, -1);                                               /* compress */
    w_int(&w, 1700086400);                                       /* validity */
    w_int(&w, -1);                                               /* deferred */
    w_int(&w, 0x1f);                                             /* dlr_mask */
    w_str(&w, "otagw:81234");                                    /* dlr_url */
    w_int(&w, 0x7f);                                             /* pid */
    w_int(&w, -1);                                               /* alt_dcs */
    w_int(&w, -1);                                               /* rpi */
    w_null(&w);                                                  /* charset */
    w_str(&w, "otagw");                                          /* boxc_id */
    w_null(&w);                                                  /* binfo */
    w_int(&w, -1);                                               /* msg_left */
    /* split_parts is VOID: not on the wire */
    w_int(&w, -1); /* priority */
    w_int(&w, -1); /* resend_try */
    w_int(&w, -1); /* resend_time */
    w_null(&w);    /* meta_data */
    w_frame(&w);
    expect_frame(&m, &w);
}

/*
 * Payload produced by Kannel's own msg_pack() (libgw.a of kannel-dev
 * 1.4.5-12 on Debian 12) for an sms with every field set; our encoder
 * produced the same octets, and Kannel's msg_unpack() accepted ours.
 */
static const char kannel_sms_hex[] =
    "0000000200000004736e6472000000082b343931323334350000000302700000000000"
    "6553f100ffffffff000000016e0000000366696400000003737663000000046163637400"
    "00002461306131613261332d613461352d613661372d613861392d616161626163616461"
    "656166000000020000000200000003000000010000000400000005000000060000001f00"
    "0000076f746167773a310000007f0000000700000008000000055554462d38000000056f"
    "74616777000000016200000009000000010000000a0000000b0000000a3f736d70703f61"
    "3d6226";

static void test_kannel_vector(void **state)
{
    uint8_t in[512], out[512];
    struct kbox_msg m;
    (void)state;

    int n = osmo_hexparse(kannel_sms_hex, in, sizeof(in));
    assert_true(n > 0);
    assert_int_equal(kbox_msg_unpack(in, (size_t)n, &m, NULL), 0);
    assert_int_equal(m.type, KBOX_MSG_SMS);
    assert_int_equal(m.sms.sender.len, 4);
    assert_memory_equal(m.sms.sender.p, "sndr", 4);
    assert_non_null(m.sms.msgdata.p); /* empty, not NULL */
    assert_int_equal(m.sms.msgdata.len, 0);
    assert_null(m.sms.smsc_id.p);
    assert_int_equal(m.sms.time, 1700000000);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(m.sms.id[i], 0xa0 + i);
    }
    assert_int_equal(m.sms.sms_type, KBOX_SMS_MT_PUSH);
    assert_int_equal(m.sms.mclass, 2);
    assert_int_equal(m.sms.mwi, 3);
    assert_int_equal(m.sms.coding, 1);
    assert_int_equal(m.sms.compress, 4);
    assert_int_equal(m.sms.validity, 5);
    assert_int_equal(m.sms.deferred, 6);
    assert_int_equal(m.sms.dlr_mask, 31);
    assert_memory_equal(m.sms.dlr_url.p, "otagw:1", 7);
    assert_int_equal(m.sms.pid, 127);
    assert_int_equal(m.sms.alt_dcs, 7);
    assert_int_equal(m.sms.rpi, 8);
    assert_memory_equal(m.sms.charset.p, "UTF-8", 5);
    assert_memory_equal(m.sms.boxc_id.p, "otagw", 5);
    assert_memory_equal(m.sms.binfo.p, "b", 1);
    assert_int_equal(m.sms.msg_left, 9);
    assert_int_equal(m.sms.priority, 1);
    assert_int_equal(m.sms.resend_try, 10);
    assert_int_equal(m.sms.resend_time, 11);
    assert_int_equal(m.sms.meta_data.len, 10);
    assert_int_equal(kbox_msg_pack(&m, out, sizeof(out), NULL), n);
    assert_memory_equal(out, in, (size_t)n);
}

/* ---- round trips ----------------------------------------------------------------------- */

static void full_sms(struct kbox_msg *m)
{
    kbox_msg_init(m, KBOX_MSG_SMS);
    m->sms.sender = KBOX_STR_LIT("a");
    m->sms.receiver = KBOX_STR_LIT("bb");
    m->sms.udhdata = KBOX_STR_LIT("\x05\x00\x03\x01\x02\x01");
    m->sms.msgdata = KBOX_STR_LIT("\x00\xff\x00");
    m->sms.time = INT32_MIN;
    m->sms.smsc_id = KBOX_STR_LIT("smsc1");
    m->sms.smsc_number = KBOX_STR_LIT("");
    m->sms.foreign_id = KBOX_STR_LIT("00ab12");
    m->sms.service = KBOX_STR_LIT("svc");
    m->sms.account = KBOX_STR_LIT("acct");
    memcpy(m->sms.id, test_id, KBOX_UUID_LEN);
    m->sms.sms_type = KBOX_SMS_REPORT_MO;
    m->sms.mclass = 1;
    m->sms.mwi = 2;
    m->sms.coding = 3;
    m->sms.compress = 4;
    m->sms.validity = 5;
    m->sms.deferred = 6;
    m->sms.dlr_mask = 7;
    m->sms.dlr_url = KBOX_STR_LIT("u");
    m->sms.pid = 8;
    m->sms.alt_dcs = 9;
    m->sms.rpi = 10;
    m->sms.charset = KBOX_STR_LIT("");
    m->sms.boxc_id = KBOX_STR_LIT("box");
    m->sms.binfo = KBOX_STR_LIT("bi");
    m->sms.msg_left = 11;
    m->sms.priority = 12;
    m->sms.resend_try = 13;
    m->sms.resend_time = INT32_MAX;
    m->sms.meta_data = KBOX_STR_LIT("?smpp?dlr_err=000&");
}

static void assert_str_same(struct kbox_str a, struct kbox_str b)
{
    assert_int_equal(a.p == NULL, b.p == NULL);
    assert_int_equal(a.len, b.len);
    if (a.len) {
        assert_memory_equal(a.p, b.p, a.len);
    }
}

static void test_roundtrip_sms(void **state)
{
    struct kbox_msg m, back;
    uint8_t buf[1024];
    (void)state;

    full_sms(&m);
    int n = kbox_msg_encode(&m, buf, sizeof(buf), NULL);
    assert_true(n > 0);
    assert_int_equal(kbox_msg_decode(buf, (size_t)n, &back, NULL), 0);
    assert_int_equal(back.type, KBOX_MSG_SMS);
    assert_str_same(back.sms.sender, m.sms.sender);
    assert_str_same(back.sms.receiver, m.sms.receiver);
    assert_str_same(back.sms.udhdata, m.sms.udhdata);
    assert_str_same(back.sms.msgdata, m.sms.msgdata);
    assert_str_same(back.sms.smsc_id, m.sms.smsc_id);
    assert_str_same(back.sms.smsc_number, m.sms.smsc_number);
    assert_str_same(back.sms.foreign_id, m.sms.foreign_id);
    assert_str_same(back.sms.service, m.sms.service);
    assert_str_same(back.sms.account, m.sms.account);
    assert_str_same(back.sms.dlr_url, m.sms.dlr_url);
    assert_str_same(back.sms.charset, m.sms.charset);
    assert_str_same(back.sms.boxc_id, m.sms.boxc_id);
    assert_str_same(back.sms.binfo, m.sms.binfo);
    assert_str_same(back.sms.meta_data, m.sms.meta_data);
    assert_memory_equal(back.sms.id, m.sms.id, KBOX_UUID_LEN);
    assert_int_equal(back.sms.time, INT32_MIN);
    assert_int_equal(back.sms.resend_time, INT32_MAX);
    assert_int_equal(back.sms.sms_type, KBOX_SMS_REPORT_MO);
    assert_int_equal(back.sms.mclass, 1);
    assert_int_equal(back.sms.mwi, 2);
    assert_int_equal(back.sms.coding, 3);
    assert_int_equal(back.sms.compress, 4);
    assert_int_equal(back.sms.validity, 5);
    assert_int_equal(back.sms.deferred, 6);
    assert_int_equal(back.sms.dlr_mask, 7);
    assert_int_equal(back.sms.pid, 8);
    assert_int_equal(back.sms.alt_dcs, 9);
    assert_int_equal(back.sms.rpi, 10);
    assert_int_equal(back.sms.msg_left, 11);
    assert_int_equal(back.sms.priority, 12);
    assert_int_equal(back.sms.resend_try, 13);
}

static void test_roundtrip_small(void **state)
{
    struct kbox_msg m, back;
    uint8_t buf[256];
    (void)state;

    kbox_msg_init(&m, KBOX_MSG_ADMIN);
    m.admin.command = 77; /* unknown commands are kept as sent */
    m.admin.boxc_id = KBOX_STR_LIT("");
    int n = kbox_msg_encode(&m, buf, sizeof(buf), NULL);
    assert_int_equal(kbox_msg_decode(buf, (size_t)n, &back, NULL), 0);
    assert_int_equal(back.admin.command, 77);
    assert_str_same(back.admin.boxc_id, m.admin.boxc_id);

    kbox_msg_init(&m, KBOX_MSG_WDP_DATAGRAM);
    m.wdp.source_address = KBOX_STR_LIT("127.0.0.1");
    m.wdp.source_port = 9200;
    m.wdp.destination_port = 2948;
    m.wdp.user_data = KBOX_STR_LIT("\x01\x06");
    n = kbox_msg_encode(&m, buf, sizeof(buf), NULL);
    assert_int_equal(kbox_msg_decode(buf, (size_t)n, &back, NULL), 0);
    assert_int_equal(back.type, KBOX_MSG_WDP_DATAGRAM);
    assert_str_same(back.wdp.source_address, m.wdp.source_address);
    assert_null(back.wdp.destination_address.p);
    assert_int_equal(back.wdp.source_port, 9200);
    assert_int_equal(back.wdp.destination_port, 2948);
    assert_str_same(back.wdp.user_data, m.wdp.user_data);

    kbox_msg_ack(&m, KBOX_ACK_BUFFERED, -1, test_id);
    n = kbox_msg_encode(&m, buf, sizeof(buf), NULL);
    assert_int_equal(kbox_msg_decode(buf, (size_t)n, &back, NULL), 0);
    assert_int_equal(back.ack.nack, KBOX_ACK_BUFFERED);
    assert_int_equal(back.ack.time, -1);
    assert_memory_equal(back.ack.id, test_id, KBOX_UUID_LEN);

    kbox_msg_heartbeat(&m, INT32_MIN);
    n = kbox_msg_encode(&m, buf, sizeof(buf), NULL);
    assert_int_equal(kbox_msg_decode(buf, (size_t)n, &back, NULL), 0);
    assert_int_equal(back.heartbeat.load, INT32_MIN);
}

static void test_null_vs_empty(void **state)
{
    struct kbox_msg m, back;
    uint8_t buf[64];
    (void)state;

    kbox_msg_identify(&m, KBOX_STR_LIT(""));
    int n = kbox_msg_encode(&m, buf, sizeof(buf), NULL);
    assert_int_equal(n, 16);
    assert_memory_equal(buf + 12, "\x00\x00\x00\x00", 4);
    assert_int_equal(kbox_msg_decode(buf, (size_t)n, &back, NULL), 0);
    assert_non_null(back.admin.boxc_id.p);
    assert_int_equal(back.admin.boxc_id.len, 0);

    kbox_msg_identify(&m, KBOX_STR_NULL);
    n = kbox_msg_encode(&m, buf, sizeof(buf), NULL);
    assert_memory_equal(buf + 12, "\xff\xff\xff\xff", 4);
    assert_int_equal(kbox_msg_decode(buf, (size_t)n, &back, NULL), 0);
    assert_null(back.admin.boxc_id.p);
    assert_true(kbox_str_is_null(back.admin.boxc_id));
}

/* ---- bad input ------------------------------------------------------------------------- */

static void check_all_truncations(const struct kbox_msg *m)
{
    uint8_t buf[1024];
    struct kbox_msg out, keep;
    struct ota_err e;
    int n = kbox_msg_encode(m, buf, sizeof(buf), NULL);

    assert_true(n > 4);
    memset(&keep, 0x5a, sizeof(keep));
    for (int i = 0; i < n; i++) {
        /* A frame cut anywhere: the prefix no longer matches. */
        out = keep;
        assert_int_equal(kbox_msg_decode(buf, (size_t)i, &out, &e), -EBADMSG);
        assert_int_equal(e.code, OTA_ERR_TRUNCATED);
        assert_memory_equal(&out, &keep, sizeof(out));
    }
    for (int i = 0; i < n - 4; i++) {
        /* A payload cut anywhere: a word is cut off or a string overruns. */
        out = keep;
        assert_int_equal(kbox_msg_unpack(buf + 4, (size_t)i, &out, &e), -EBADMSG);
        assert_true(e.code == OTA_ERR_TRUNCATED || e.code == OTA_ERR_LENGTH);
        assert_memory_equal(&out, &keep, sizeof(out));
    }
    /* Also with a prefix that claims exactly what is there. */
    for (int i = 4; i < n; i++) {
        uint8_t cut[1024];
        memcpy(cut, buf, (size_t)i);
        uint32_t pl = (uint32_t)(i - 4);
        cut[0] = (uint8_t)(pl >> 24);
        cut[1] = (uint8_t)(pl >> 16);
        cut[2] = (uint8_t)(pl >> 8);
        cut[3] = (uint8_t)pl;
        assert_true(kbox_msg_decode(cut, (size_t)i, &out, &e) < 0);
    }
}

static void test_truncations(void **state)
{
    struct kbox_msg m;
    (void)state;

    kbox_msg_heartbeat(&m, 1);
    check_all_truncations(&m);
    kbox_msg_identify(&m, KBOX_STR_LIT("otagw"));
    check_all_truncations(&m);
    kbox_msg_ack(&m, KBOX_ACK_FAILED, 5, test_id);
    check_all_truncations(&m);
    full_sms(&m);
    check_all_truncations(&m);
    build_ota_mt(&m);
    check_all_truncations(&m);
    kbox_msg_init(&m, KBOX_MSG_WDP_DATAGRAM);
    check_all_truncations(&m);
}

static void test_lying_lengths(void **state)
{
    struct kbox_msg m;
    struct ota_err e;
    uint8_t in[64];
    int n;
    (void)state;

    /* boxc_id claims 6 octets, 5 follow. */
    n = osmo_hexparse("00000001 00000003 00000006 6f74616777", in, sizeof(in));
    assert_int_equal(kbox_msg_unpack(in, (size_t)n, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    assert_non_null(strstr(e.msg, "boxc_id"));
    /* Huge positive length. */
    n = osmo_hexparse("00000001 00000003 7fffffff 6f74616777", in, sizeof(in));
    assert_int_equal(kbox_msg_unpack(in, (size_t)n, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    /* Negative lengths other than -1. */
    n = osmo_hexparse("00000001 00000003 fffffffe", in, sizeof(in));
    assert_int_equal(kbox_msg_unpack(in, (size_t)n, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    n = osmo_hexparse("00000001 00000003 80000000", in, sizeof(in));
    assert_int_equal(kbox_msg_unpack(in, (size_t)n, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    /* Trailing octets after the last field. */
    n = osmo_hexparse("00000000 00000001 00", in, sizeof(in));
    assert_int_equal(kbox_msg_unpack(in, (size_t)n, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    /* Frame prefix smaller than what follows, and negative. */
    n = osmo_hexparse("00000007 00000000 00000001 00", in, sizeof(in));
    assert_int_equal(kbox_msg_decode(in, (size_t)n, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    n = osmo_hexparse("ffffffff 00000000 00000001", in, sizeof(in));
    assert_int_equal(kbox_msg_decode(in, (size_t)n, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
}

static void test_uuid_bad(void **state)
{
    struct kbox_msg m;
    struct ota_err e;
    struct wr w = {.n = 0};
    uint8_t id[KBOX_UUID_LEN];
    (void)state;

    /* ack with id NULL */
    w_int(&w, 3);
    w_int(&w, 0);
    w_int(&w, 0);
    w_null(&w);
    assert_int_equal(kbox_msg_unpack(w.b, w.n, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_MISSING);
    /* 35 octets */
    w.n = 0;
    w_int(&w, 3);
    w_int(&w, 0);
    w_int(&w, 0);
    w_bytes(&w, test_id_text, 35);
    assert_int_equal(kbox_msg_unpack(w.b, w.n, &m, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    assert_non_null(strstr(e.msg, "ack.id"));
    /* Uppercase, a misplaced dash, a non-hex octet. */
    assert_int_equal(
        kbox_uuid_parse((const uint8_t *)"1B4E28BA-2FA1-41D2-883F-0E9A6B2C5710", 36, id, &e),
        -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    assert_int_equal(
        kbox_uuid_parse((const uint8_t *)"1b4e28ba2-fa1-41d2-883f-0e9a6b2c5710", 36, id, &e),
        -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    assert_int_equal(
        kbox_uuid_parse((const uint8_t *)"1b4e28ba-2fa1-41d2-883f-0e9a6b2c571g", 36, id, &e),
        -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    assert_int_equal(kbox_uuid_parse((const uint8_t *)test_id_text, 36, id, NULL), 0);
    assert_memory_equal(id, test_id, KBOX_UUID_LEN);

    char txt[KBOX_UUID_STR_LEN];
    kbox_uuid_format(test_id, txt);
    assert_memory_equal(txt, test_id_text, KBOX_UUID_STR_LEN);
    memset(id, 0xff, sizeof(id));
    kbox_uuid_make_v4(id);
    assert_int_equal(id[6], 0x4f);
    assert_int_equal(id[8], 0xbf);
}

static void test_unknown_type(void **state)
{
    struct kbox_msg m;
    struct ota_err e;
    uint8_t in[16];
    int32_t type = 0;
    int n;
    (void)state;

    n = osmo_hexparse("00000005 00000000", in, sizeof(in));
    assert_int_equal(kbox_msg_unpack(in, (size_t)n, &m, &e), -EOPNOTSUPP);
    assert_int_equal(e.code, OTA_ERR_TAG);
    assert_non_null(strstr(e.msg, "type 5"));
    assert_int_equal(kbox_msg_peek_type(in, (size_t)n, &type, NULL), 0);
    assert_int_equal(type, 5);
    n = osmo_hexparse("ffffffff", in, sizeof(in));
    assert_int_equal(kbox_msg_unpack(in, (size_t)n, &m, &e), -EOPNOTSUPP);
    assert_non_null(strstr(e.msg, "type -1"));
    n = osmo_hexparse("00000008 7fffffff 00000000", in, sizeof(in));
    assert_int_equal(kbox_msg_decode(in, (size_t)n, &m, &e), -EOPNOTSUPP);
    assert_non_null(strstr(e.msg, "2147483647"));
    assert_int_equal(kbox_msg_peek_type(in, 3, &type, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_TRUNCATED);

    /* Encoding an unknown type is the caller's mistake. */
    kbox_msg_heartbeat(&m, 0);
    m.type = KBOX_MSG__COUNT;
    assert_int_equal(kbox_msg_encode(&m, in, sizeof(in), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
}

static void test_frame_check(void **state)
{
    uint8_t in[32] = {0};
    size_t fl = 0;
    struct ota_err e;
    (void)state;

    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(kbox_frame_check(in, i, 100, &fl, NULL), 0);
        assert_int_equal(fl, 4);
    }
    int n = osmo_hexparse("00000008 00000000 00000005 00000000", in, sizeof(in));
    for (size_t i = 4; i < 12; i++) {
        fl = 0;
        assert_int_equal(kbox_frame_check(in, i, 100, &fl, NULL), 0);
        assert_int_equal(fl, 12);
    }
    assert_int_equal(kbox_frame_check(in, 12, 100, &fl, NULL), 1);
    assert_int_equal(fl, 12);
    assert_int_equal(kbox_frame_check(in, (size_t)n, 100, &fl, NULL), 1);
    assert_int_equal(fl, 12);
    assert_int_equal(kbox_frame_check(in, 12, 8, &fl, NULL), 1);
    /* Oversize is refused from the 4-octet prefix alone. */
    fl = 99;
    assert_int_equal(kbox_frame_check(in, 4, 7, &fl, &e), -EMSGSIZE);
    assert_int_equal(e.code, OTA_ERR_OVERSIZE);
    assert_int_equal(fl, 99);
    n = osmo_hexparse("7fffffff", in, sizeof(in));
    assert_int_equal(kbox_frame_check(in, 4, KBOX_FRAME_MAX_DEFAULT, &fl, &e), -EMSGSIZE);
    n = osmo_hexparse("fffffffe", in, sizeof(in));
    assert_int_equal(kbox_frame_check(in, 4, KBOX_FRAME_MAX_DEFAULT, &fl, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    (void)n;
}

static void test_encode_nospace(void **state)
{
    struct kbox_msg m;
    struct ota_err e;
    uint8_t buf[512], guard[512];
    (void)state;

    build_ota_mt(&m);
    int need = kbox_msg_encode(&m, buf, sizeof(buf), NULL);
    assert_true(need > 0);
    for (int cap = 0; cap < need; cap++) {
        memset(buf, 0xee, sizeof(buf));
        memset(guard, 0xee, sizeof(guard));
        assert_int_equal(kbox_msg_encode(&m, buf, (size_t)cap, &e), -ENOSPC);
        assert_int_equal(e.code, OTA_ERR_NOSPACE);
        assert_memory_equal(buf, guard, sizeof(buf));
        if (cap < need - 4) {
            assert_int_equal(kbox_msg_pack(&m, buf, (size_t)cap, &e), -ENOSPC);
        }
    }
    assert_int_equal(kbox_msg_pack(&m, buf, (size_t)need - 4, NULL), need - 4);
    /* A NULL string with a length is a programmer error reported as such. */
    m.sms.service = (struct kbox_str){NULL, 3};
    assert_int_equal(kbox_msg_encode(&m, buf, sizeof(buf), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    assert_non_null(strstr(e.msg, "service"));
}

/* ---- helpers ----------------------------------------------------------------------------- */

static void test_mt_builder_errors(void **state)
{
    static const uint8_t big[141] = {0};
    struct kbox_mt mt = {
        .receiver = KBOX_STR_LIT("123"),
        .data = KBOX_STR_LIT("x"),
        .mclass = KBOX_UNDEF,
        .pid = 0,
        .dlr_mask = KBOX_UNDEF,
        .priority = KBOX_UNDEF,
        .validity = KBOX_UNDEF,
    };
    struct kbox_mt bad;
    struct kbox_msg m, keep;
    struct ota_err e;
    (void)state;

    assert_int_equal(kbox_sms_build_mt(&mt, &m, NULL), 0);
    assert_null(m.sms.udhdata.p);
    assert_null(m.sms.dlr_url.p);
    assert_int_equal(m.sms.coding, KBOX_DC_8BIT);
    assert_int_equal(m.sms.sms_type, KBOX_SMS_MT_PUSH);
    memset(&keep, 0x11, sizeof(keep));

#define BAD(field, value, rc, errc)                                                                \
    do {                                                                                           \
        bad = mt;                                                                                  \
        bad.field = value;                                                                         \
        m = keep;                                                                                  \
        assert_int_equal(kbox_sms_build_mt(&bad, &m, &e), rc);                                     \
        assert_int_equal(e.code, errc);                                                            \
        assert_memory_equal(&m, &keep, sizeof(m));                                                 \
    } while (0)

    BAD(receiver, KBOX_STR_NULL, -EINVAL, OTA_ERR_MISSING);
    BAD(receiver, KBOX_STR_LIT(""), -EINVAL, OTA_ERR_MISSING);
    BAD(udh, KBOX_STR_LIT("\x05\x00\x03\x01\x02"), -EINVAL, OTA_ERR_LENGTH);
    BAD(udh, ((struct kbox_str){NULL, 3}), -EINVAL, OTA_ERR_ARG);
    BAD(data, ((struct kbox_str){NULL, 1}), -EINVAL, OTA_ERR_ARG);
    BAD(data, ((struct kbox_str){big, 141}), -EMSGSIZE, OTA_ERR_OVERSIZE);
    BAD(mclass, 4, -EINVAL, OTA_ERR_VALUE);
    BAD(pid, 256, -EINVAL, OTA_ERR_VALUE);
    BAD(priority, 4, -EINVAL, OTA_ERR_VALUE);
    BAD(dlr_mask, 0x80, -EINVAL, OTA_ERR_VALUE);
    BAD(dlr_mask, KBOX_DLR_SUCCESS, -EINVAL, OTA_ERR_MISSING);
#undef BAD
    /* 140 octets in all is allowed. */
    bad = mt;
    bad.udh = KBOX_STR_LIT("\x02\x70\x00");
    bad.data = (struct kbox_str){big, 137};
    assert_int_equal(kbox_sms_build_mt(&bad, &m, NULL), 0);
    assert_int_equal(m.sms.udhdata.len, 3);
}

static void dlr_sms(struct kbox_msg *m, int32_t mask)
{
    kbox_msg_init(m, KBOX_MSG_SMS);
    m->sms.sms_type = KBOX_SMS_REPORT_MO;
    m->sms.dlr_mask = mask;
    m->sms.dlr_url = KBOX_STR_LIT("otagw:81234");
    m->sms.foreign_id = KBOX_STR_LIT("0a1b2c");
    m->sms.msgdata = KBOX_STR_LIT("id:0a1b2c sub:001 dlvrd:001 stat:DELIVRD err:000");
    m->sms.time = 42;
    memcpy(m->sms.id, test_id, KBOX_UUID_LEN);
}

static void test_dlr(void **state)
{
    static const struct {
        int32_t mask;
        enum kbox_dlr_event ev;
        bool final;
    } cases[] = {
        {0x01, KBOX_DLR_EV_DELIVERED, true},     {0x02, KBOX_DLR_EV_FAILED, true},
        {0x22, KBOX_DLR_EV_EXPIRED, true},       {0x42, KBOX_DLR_EV_UNDETERMINED, true},
        {0x04, KBOX_DLR_EV_BUFFERED, false},     {0x08, KBOX_DLR_EV_SMSC_ACCEPTED, false},
        {0x10, KBOX_DLR_EV_SMSC_REJECTED, true},
    };
    struct kbox_msg m, back;
    struct kbox_dlr d;
    struct ota_err e;
    uint8_t buf[512];
    (void)state;

    for (size_t i = 0; i < OTA_ARRAY_SIZE(cases); i++) {
        dlr_sms(&m, cases[i].mask);
        /* Through the wire, so the strings borrow from the frame. */
        int n = kbox_msg_encode(&m, buf, sizeof(buf), NULL);
        assert_int_equal(kbox_msg_decode(buf, (size_t)n, &back, NULL), 0);
        assert_int_equal(kbox_sms_read_dlr(&back.sms, &d, &e), 0);
        assert_int_equal(d.event, cases[i].ev);
        assert_int_equal(d.final, cases[i].final);
        assert_int_equal(d.mask, cases[i].mask);
        assert_int_equal(d.correlation.len, 11);
        assert_memory_equal(d.correlation.p, "otagw:81234", 11);
        assert_memory_equal(d.foreign_id.p, "0a1b2c", 6);
        assert_int_equal(d.time, 42);
        assert_memory_equal(d.id, test_id, KBOX_UUID_LEN);
        assert_string_not_equal(kbox_dlr_event_name(d.event), "unknown");
    }
    memset(&d, 0x33, sizeof(d));
    struct kbox_dlr keep = d;
    dlr_sms(&m, 0);
    assert_int_equal(kbox_sms_read_dlr(&m.sms, &d, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    dlr_sms(&m, KBOX_UNDEF);
    assert_int_equal(kbox_sms_read_dlr(&m.sms, &d, &e), -EBADMSG);
    dlr_sms(&m, 0x80);
    assert_int_equal(kbox_sms_read_dlr(&m.sms, &d, &e), -EBADMSG);
    dlr_sms(&m, 1);
    m.sms.sms_type = KBOX_SMS_MO;
    assert_int_equal(kbox_sms_read_dlr(&m.sms, &d, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    assert_memory_equal(&d, &keep, sizeof(d));
    /* Without dlr_url the DLR is still read, for a foreign_id fallback. */
    dlr_sms(&m, 2);
    m.sms.dlr_url = KBOX_STR_NULL;
    assert_int_equal(kbox_sms_read_dlr(&m.sms, &d, &e), 0);
    assert_null(d.correlation.p);
    assert_int_equal(d.event, KBOX_DLR_EV_FAILED);
}

static void test_mo(void **state)
{
    struct kbox_msg m;
    struct kbox_mo mo, keep;
    struct ota_err e;
    (void)state;

    kbox_msg_init(&m, KBOX_MSG_SMS);
    m.sms.sms_type = KBOX_SMS_MO;
    m.sms.sender = KBOX_STR_LIT("+8613800000001");
    m.sms.receiver = KBOX_STR_LIT("10086");
    m.sms.udhdata = KBOX_STR_LIT("\x02\x71\x00");
    m.sms.msgdata = KBOX_STR_LIT("\x02\x71\x00\x00\x0e");
    m.sms.coding = KBOX_DC_8BIT;
    m.sms.pid = 0x7f;
    m.sms.time = 9;
    memcpy(m.sms.id, test_id, KBOX_UUID_LEN);
    assert_int_equal(kbox_sms_read_mo(&m.sms, &mo, NULL), 0);
    assert_int_equal(mo.udh.len, 3);
    assert_int_equal(mo.data.len, 5);
    assert_int_equal(mo.coding, 1);
    assert_int_equal(mo.pid, 0x7f);
    assert_int_equal(mo.time, 9);
    assert_memory_equal(mo.id, test_id, KBOX_UUID_LEN);

    memset(&keep, 0x44, sizeof(keep));
    mo = keep;
    m.sms.udhdata = KBOX_STR_LIT("\x03\x71\x00");
    assert_int_equal(kbox_sms_read_mo(&m.sms, &mo, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    m.sms.udhdata = KBOX_STR_NULL;
    m.sms.sender = KBOX_STR_NULL;
    assert_int_equal(kbox_sms_read_mo(&m.sms, &mo, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_MISSING);
    m.sms.sender = KBOX_STR_LIT("1");
    m.sms.sms_type = KBOX_SMS_REPORT_MO;
    assert_int_equal(kbox_sms_read_mo(&m.sms, &mo, &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    assert_memory_equal(&mo, &keep, sizeof(mo));
}

static void test_ack_classes_and_names(void **state)
{
    (void)state;

    assert_int_equal(kbox_ack_classify(KBOX_ACK_SUCCESS), KBOX_ACK_CLASS_ACCEPTED);
    assert_int_equal(kbox_ack_classify(KBOX_ACK_BUFFERED), KBOX_ACK_CLASS_ACCEPTED);
    assert_int_equal(kbox_ack_classify(KBOX_ACK_FAILED_TMP), KBOX_ACK_CLASS_RETRY);
    assert_int_equal(kbox_ack_classify(KBOX_ACK_FAILED), KBOX_ACK_CLASS_FINAL);
    assert_int_equal(kbox_ack_classify(4), KBOX_ACK_CLASS_FINAL);
    assert_int_equal(kbox_ack_classify(-1), KBOX_ACK_CLASS_FINAL);

    assert_string_equal(kbox_ack_status_name(KBOX_ACK_FAILED_TMP), "failed_tmp");
    assert_string_equal(kbox_ack_status_name(99), "unknown");
    assert_string_equal(kbox_ack_class_name(KBOX_ACK_CLASS_RETRY), "retry");
    assert_string_equal(kbox_msg_type_name(KBOX_MSG_WDP_DATAGRAM), "wdp_datagram");
    assert_string_equal(kbox_msg_type_name(-1), "unknown");
    assert_string_equal(kbox_admin_cmd_name(KBOX_CMD_IDENTIFY), "identify");
    assert_string_equal(kbox_sms_type_name(KBOX_SMS_REPORT_MO), "report_mo");
    assert_string_equal(kbox_dlr_event_name(KBOX_DLR_EV__COUNT), "unknown");
    for (int i = 0; i < KBOX_MSG__COUNT; i++) {
        assert_string_not_equal(kbox_msg_type_name(i), "unknown");
    }
    for (int i = 0; i < KBOX_CMD__COUNT; i++) {
        assert_string_not_equal(kbox_admin_cmd_name(i), "unknown");
    }
    for (int i = 0; i < KBOX_SMS__COUNT; i++) {
        assert_string_not_equal(kbox_sms_type_name(i), "unknown");
    }
    for (int i = 0; i < KBOX_ACK__COUNT; i++) {
        assert_string_not_equal(kbox_ack_status_name(i), "unknown");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heartbeat_bytes),
        cmocka_unit_test(test_identify_bytes),
        cmocka_unit_test(test_ack_bytes),
        cmocka_unit_test(test_ota_mt_bytes),
        cmocka_unit_test(test_kannel_vector),
        cmocka_unit_test(test_roundtrip_sms),
        cmocka_unit_test(test_roundtrip_small),
        cmocka_unit_test(test_null_vs_empty),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_lying_lengths),
        cmocka_unit_test(test_uuid_bad),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_frame_check),
        cmocka_unit_test(test_encode_nospace),
        cmocka_unit_test(test_mt_builder_errors),
        cmocka_unit_test(test_dlr),
        cmocka_unit_test(test_mo),
        cmocka_unit_test(test_ack_classes_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
