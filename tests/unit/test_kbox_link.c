/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smpp/kbox_link.c against an in-process fake bearerbox on 127.0.0.1 (libev
 * and the kbox codec, one loop for both sides): identify with boxc_id, MT
 * fields exactly as Kannel needs them (udhdata/msgdata split at the UDHL,
 * coding 1, mclass 2, pid 127, dlr_url = token, boxc_id, smsc_id), every ack
 * status, DLRs matched by token, MO and DLR acknowledged only after the
 * callback returned 0 (a refusal becomes ack_failed_tmp), bearerbox shutdown,
 * a disconnect mid-flight (unacked parts resent once, acked ones never), an
 * ack timeout and heartbeats, and acks held for BEARER_ACK_LATER: sent at
 * bearer_release_acks only, never after a discard, a drop or at shutdown
 * (bearerbox's redelivery reaches the callback again).
 */
#include "smpp/bearer_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "smpp/kbox.h"

#define MAX_REC 64
#define TXT 64

/* ---- the fake bearerbox -------------------------------------------------------- */

struct fb_mt {
    uint8_t udh[160], data[160];
    size_t udh_len, data_len;
    bool udh_null;
    char receiver[TXT], dlr_url[TXT], boxc_id[TXT], smsc_id[TXT];
    bool dlr_url_null, smsc_id_null;
    int32_t sms_type, coding, mclass, pid, dlr_mask, time;
    uint8_t id[KBOX_UUID_LEN];
};

struct fb_ack {
    int32_t nack, time;
    uint8_t id[KBOX_UUID_LEN];
};

struct fb {
    struct ev_loop *loop;
    int lfd, cfd;
    uint16_t port;
    ev_io accept_w, read_w;
    uint8_t in[70000];
    size_t in_len;
    int n_conns, n_identify, n_heartbeats;
    char boxc_id[TXT];
    struct fb_mt mt[MAX_REC];
    int n_mt;
    struct fb_ack ack[MAX_REC];
    int n_ack;
    int ack_plan[MAX_REC]; /* status for the i-th MT (-1: no ack) */
    int n_plan;
    bool auto_ack; /* ack MTs beyond the plan with success */
};

static void copy_str(char *dst, struct kbox_str s, bool *is_null)
{
    assert_true(s.len < TXT);
    if (is_null) {
        *is_null = s.p == NULL;
    }
    if (s.len) {
        memcpy(dst, s.p, s.len);
    }
    dst[s.len] = '\0';
}

static void fb_send(struct fb *f, const struct kbox_msg *m)
{
    uint8_t buf[4096];
    struct ota_err e;
    int n = kbox_msg_encode(m, buf, sizeof(buf), &e);
    assert_true(n > 0);
    assert_true(f->cfd >= 0);
    assert_int_equal(write(f->cfd, buf, (size_t)n), n);
}

static void fb_ack_mt(struct fb *f, int i, int32_t nack)
{
    struct kbox_msg m;
    kbox_msg_ack(&m, nack, f->mt[i].time, f->mt[i].id);
    fb_send(f, &m);
}

static void fb_close_conn(struct fb *f)
{
    if (f->cfd >= 0) {
        ev_io_stop(f->loop, &f->read_w);
        close(f->cfd);
        f->cfd = -1;
        f->in_len = 0;
    }
}

static void fb_on_msg(struct fb *f, const struct kbox_msg *m)
{
    switch (m->type) {
    case KBOX_MSG_ADMIN:
        assert_int_equal(m->admin.command, KBOX_CMD_IDENTIFY);
        copy_str(f->boxc_id, m->admin.boxc_id, NULL);
        f->n_identify++;
        break;
    case KBOX_MSG_HEARTBEAT:
        f->n_heartbeats++;
        break;
    case KBOX_MSG_ACK:
        assert_true(f->n_ack < MAX_REC);
        f->ack[f->n_ack].nack = m->ack.nack;
        f->ack[f->n_ack].time = m->ack.time;
        memcpy(f->ack[f->n_ack].id, m->ack.id, KBOX_UUID_LEN);
        f->n_ack++;
        break;
    case KBOX_MSG_SMS: {
        assert_true(f->n_mt < MAX_REC);
        struct fb_mt *t = &f->mt[f->n_mt];
        const struct kbox_sms *s = &m->sms;
        memset(t, 0, sizeof(*t));
        t->udh_null = s->udhdata.p == NULL;
        assert_true(s->udhdata.len <= sizeof(t->udh) && s->msgdata.len <= sizeof(t->data));
        if (s->udhdata.len) {
            memcpy(t->udh, s->udhdata.p, s->udhdata.len);
        }
        if (s->msgdata.len) {
            memcpy(t->data, s->msgdata.p, s->msgdata.len);
        }
        t->udh_len = s->udhdata.len;
        t->data_len = s->msgdata.len;
        copy_str(t->receiver, s->receiver, NULL);
        copy_str(t->dlr_url, s->dlr_url, &t->dlr_url_null);
        copy_str(t->boxc_id, s->boxc_id, NULL);
        copy_str(t->smsc_id, s->smsc_id, &t->smsc_id_null);
        t->sms_type = s->sms_type;
        t->coding = s->coding;
        t->mclass = s->mclass;
        t->pid = s->pid;
        t->dlr_mask = s->dlr_mask;
        t->time = s->time;
        memcpy(t->id, s->id, KBOX_UUID_LEN);
        int i = f->n_mt++;
        int plan = i < f->n_plan ? f->ack_plan[i] : (f->auto_ack ? KBOX_ACK_SUCCESS : -1);
        if (plan >= 0) {
            fb_ack_mt(f, i, plan);
        }
        break;
    }
    default:
        fail_msg("unexpected message type %d from the box", (int)m->type);
    }
}

static void fb_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct fb *f = (struct fb *)((char *)w - offsetof(struct fb, read_w));
    ssize_t n = read(f->cfd, f->in + f->in_len, sizeof(f->in) - f->in_len);
    if (n <= 0) {
        fb_close_conn(f);
        return;
    }
    f->in_len += (size_t)n;
    size_t off = 0;
    for (;;) {
        size_t flen = 0;
        struct ota_err e;
        int rc = kbox_frame_check(f->in + off, f->in_len - off, KBOX_FRAME_MAX_DEFAULT, &flen, &e);
        assert_true(rc >= 0);
        if (rc == 0) {
            break;
        }
        struct kbox_msg m;
        assert_int_equal(kbox_msg_decode(f->in + off, flen, &m, &e), 0);
        fb_on_msg(f, &m);
        if (f->cfd < 0) {
            return;
        }
        off += flen;
    }
    memmove(f->in, f->in + off, f->in_len - off);
    f->in_len -= off;
}

static void fb_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct fb *f = (struct fb *)((char *)w - offsetof(struct fb, accept_w));
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0) {
        return;
    }
    fb_close_conn(f); /* one box connection at a time */
    f->cfd = fd;
    f->n_conns++;
    ev_io_init(&f->read_w, fb_read_cb, fd, EV_READ);
    ev_io_start(loop, &f->read_w);
}

static void fb_start(struct fb *f, struct ev_loop *loop)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop;
    f->cfd = -1;
    f->auto_ack = true;
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    socklen_t sl = sizeof(a);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &sl), 0);
    f->port = ntohs(a.sin_port);
    ev_io_init(&f->accept_w, fb_accept_cb, f->lfd, EV_READ);
    ev_io_start(loop, &f->accept_w);
}

static void fb_stop(struct fb *f)
{
    fb_close_conn(f);
    ev_io_stop(f->loop, &f->accept_w);
    close(f->lfd);
}

/* ---- the bearer side ------------------------------------------------------------ */

struct rec_res {
    uint64_t token;
    enum bearer_submit_status status;
    char msg_id[BEARER_MSGID_MAX];
    int code;
    uint8_t attempts;
};

struct rec_dlr {
    uint64_t token;
    bool has_token, final;
    char msg_id[BEARER_MSGID_MAX];
    char stat[8];
    int err;
    enum bearer_dlr_state state;
    char dest[TXT];
    int acks_at_call; /* acks the fake bearerbox had seen when the callback ran */
};

struct rec_mo {
    char orig[TXT], dest[TXT];
    uint8_t ud[200];
    size_t ud_len;
    bool udhi;
    uint8_t pid, dcs;
    int acks_at_call;
};

struct ctx {
    struct ev_loop *loop;
    struct fb fb;
    struct bearer *b;
    struct rec_res res[MAX_REC];
    int n_res;
    struct rec_dlr dlr[MAX_REC];
    int n_dlr;
    struct rec_mo mo[MAX_REC];
    int n_mo;
    int cb_rc; /* what the dlr and mo callbacks return */
    int n_up, n_down;
    ev_timer tick;
};

static void on_result(void *arg, const struct bearer_submit_result *r)
{
    struct ctx *c = arg;
    assert_true(c->n_res < MAX_REC);
    struct rec_res *x = &c->res[c->n_res++];
    x->token = r->token;
    x->status = r->status;
    snprintf(x->msg_id, sizeof(x->msg_id), "%s", r->msg_id);
    x->code = r->code;
    x->attempts = r->attempts;
}

static int on_dlr(void *arg, const struct bearer_dlr *d)
{
    struct ctx *c = arg;
    assert_true(c->n_dlr < MAX_REC);
    struct rec_dlr *x = &c->dlr[c->n_dlr++];
    x->token = d->token;
    x->has_token = d->has_token;
    x->final = d->final;
    snprintf(x->msg_id, sizeof(x->msg_id), "%s", d->msg_id);
    snprintf(x->stat, sizeof(x->stat), "%s", d->stat);
    x->err = d->err;
    x->state = d->state;
    snprintf(x->dest, sizeof(x->dest), "%s", d->dest);
    x->acks_at_call = c->fb.n_ack;
    return c->cb_rc;
}

static int on_mo(void *arg, const struct bearer_mo *m)
{
    struct ctx *c = arg;
    assert_true(c->n_mo < MAX_REC);
    struct rec_mo *x = &c->mo[c->n_mo++];
    snprintf(x->orig, sizeof(x->orig), "%s", m->orig);
    snprintf(x->dest, sizeof(x->dest), "%s", m->dest);
    assert_true(m->ud_len <= sizeof(x->ud));
    memcpy(x->ud, m->ud, m->ud_len);
    x->ud_len = m->ud_len;
    x->udhi = m->udhi;
    x->pid = m->pid;
    x->dcs = m->dcs;
    x->acks_at_call = c->fb.n_ack;
    return c->cb_rc;
}

static void on_state(void *arg, const char *link, enum bearer_link_state from,
                     enum bearer_link_state to, const char *why)
{
    (void)link;
    (void)from;
    (void)why;
    struct ctx *c = arg;
    if (to == BEARER_LINK_UP && from != BEARER_LINK_THROTTLED) {
        c->n_up++;
    }
    if (to == BEARER_LINK_DOWN) {
        c->n_down++;
    }
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Run the loop until *flag reaches want or timeout_s passes; true on success. */
static bool run_until(struct ctx *c, const int *flag, int want, double timeout_s)
{
    ev_now_update(c->loop);
    ev_tstamp end = ev_now(c->loop) + timeout_s;
    while (*flag < want) {
        if (ev_now(c->loop) > end) {
            return false;
        }
        ev_run(c->loop, EVRUN_ONCE);
    }
    return true;
}

static void run_for(struct ctx *c, double s)
{
    ev_now_update(c->loop);
    ev_tstamp end = ev_now(c->loop) + s;
    while (ev_now(c->loop) < end) {
        ev_run(c->loop, EVRUN_ONCE);
    }
}

static void ctx_start(struct ctx *c, void (*tune)(struct bearer_link_conf *))
{
    memset(c, 0, sizeof(*c));
    c->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(c->loop);
    ev_timer_init(&c->tick, tick_cb, 0.02, 0.02); /* EVRUN_ONCE never sleeps long */
    ev_timer_start(c->loop, &c->tick);
    fb_start(&c->fb, c->loop);
    struct bearer_cbs cbs = {
        .submit_result = on_result, .dlr = on_dlr, .mo = on_mo, .link_state = on_state, .arg = c};
    struct ota_err e;
    assert_int_equal(bearer_new(c->loop, &cbs, &c->b, &e), 0);
    struct bearer_link_conf lc;
    bearer_link_conf_defaults(&lc, BEARER_KIND_KBOX);
    snprintf(lc.name, sizeof(lc.name), "kbox-test");
    snprintf(lc.host, sizeof(lc.host), "127.0.0.1");
    lc.port = c->fb.port;
    lc.rate_per_s = 0;
    lc.reconnect_min_ms = 50;
    lc.reconnect_max_ms = 200;
    lc.throttle_pause_ms = 50;
    snprintf(lc.u.kbox.boxc_id, sizeof(lc.u.kbox.boxc_id), "otagw-test");
    snprintf(lc.u.kbox.smsc_id, sizeof(lc.u.kbox.smsc_id), "simsmsc");
    if (tune) {
        tune(&lc);
    }
    assert_int_equal(bearer_add_link(c->b, &lc, &e), 0);
    assert_true(run_until(c, &c->n_up, 1, 5));
    assert_true(run_until(c, &c->fb.n_identify, 1, 5));
    assert_string_equal(c->fb.boxc_id, "otagw-test");
}

static void ctx_stop(struct ctx *c)
{
    bearer_free(c->b);
    fb_stop(&c->fb);
    ev_timer_stop(c->loop, &c->tick);
    ev_loop_destroy(c->loop);
}

/* SCP80-like part: UDH 02 70 00 (CPI, TS 31.115) + command packet octets. */
static void make_scp80(struct bearer_msg *m, const char *dest, uint64_t token)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->dest, sizeof(m->dest), "%s", dest);
    static const uint8_t ud[] = {0x02, 0x70, 0x00, 0x00, 0x10, 0x0d, 0x00, 0x00,
                                 0x00, 0xb0, 0x00, 0x10, 0x01, 0x02, 0x03, 0x04};
    memcpy(m->ud, ud, sizeof(ud));
    m->ud_len = sizeof(ud);
    m->udhi = true;
    m->pid = 0x7F;
    m->dcs = 0xF6;
    m->want_report = true;
    m->part = m->n_parts = 1;
    m->token = token;
}

static void submit(struct ctx *c, const struct bearer_msg *m)
{
    struct ota_err e;
    assert_int_equal(bearer_submit(c->b, m, &e), 0);
}

static const struct rec_res *result_of(const struct ctx *c, uint64_t token)
{
    const struct rec_res *r = NULL;
    for (int i = 0; i < c->n_res; i++) {
        if (c->res[i].token == token) {
            assert_null(r); /* exactly one result per part */
            r = &c->res[i];
        }
    }
    return r;
}

static int mts_with_token(const struct ctx *c, const char *tok)
{
    int n = 0;
    for (int i = 0; i < c->fb.n_mt; i++) {
        n += strcmp(c->fb.mt[i].dlr_url, tok) == 0;
    }
    return n;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_mt_fields(void **state)
{
    (void)state;
    struct ctx c;
    ctx_start(&c, NULL);
    struct bearer_msg m;
    make_scp80(&m, "8613800000001", 12345);
    submit(&c, &m);
    /* a WAP-push-like part without report: no dlr_url, no mask, no class */
    struct bearer_msg p;
    memset(&p, 0, sizeof(p));
    snprintf(p.dest, sizeof(p.dest), "8613800000002");
    snprintf(p.src, sizeof(p.src), "10086");
    static const uint8_t pud[] = {0x06, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0, 0xaa, 0xbb};
    memcpy(p.ud, pud, sizeof(pud));
    p.ud_len = sizeof(pud);
    p.udhi = true;
    p.dcs = 0x04;
    p.part = p.n_parts = 1;
    p.token = 9;
    submit(&c, &p);
    assert_true(run_until(&c, &c.n_res, 2, 5));

    const struct fb_mt *t = &c.fb.mt[0];
    assert_int_equal(t->sms_type, KBOX_SMS_MT_PUSH);
    assert_string_equal(t->receiver, "8613800000001");
    assert_int_equal(t->udh_len, 3);
    assert_memory_equal(t->udh, m.ud, 3);
    assert_int_equal(t->data_len, m.ud_len - 3);
    assert_memory_equal(t->data, m.ud + 3, m.ud_len - 3);
    assert_int_equal(t->coding, KBOX_DC_8BIT);
    assert_int_equal(t->mclass, 2);
    assert_int_equal(t->pid, 127);
    assert_string_equal(t->dlr_url, "12345");
    assert_int_equal(t->dlr_mask, KBOX_DLR_SUCCESS | KBOX_DLR_FAIL | KBOX_DLR_SMSC_FAIL);
    assert_string_equal(t->boxc_id, "otagw-test");
    assert_string_equal(t->smsc_id, "simsmsc");

    t = &c.fb.mt[1];
    assert_int_equal(t->udh_len, 7);
    assert_memory_equal(t->udh, pud, 7);
    assert_int_equal(t->data_len, 2);
    assert_int_equal(t->mclass, KBOX_UNDEF);
    assert_int_equal(t->pid, 0);
    assert_true(t->dlr_url_null);
    assert_int_equal(t->dlr_mask, KBOX_UNDEF);
    assert_string_equal(t->boxc_id, "otagw-test");

    /* the submit result carries the MT UUID as its id */
    const struct rec_res *r = result_of(&c, 12345);
    assert_non_null(r);
    assert_int_equal(r->status, BEARER_SUBMIT_OK);
    char uuid[KBOX_UUID_STR_LEN + 1];
    kbox_uuid_format(c.fb.mt[0].id, uuid);
    uuid[KBOX_UUID_STR_LEN] = '\0';
    assert_string_equal(r->msg_id, uuid);
    assert_int_equal(r->attempts, 1);
    /* v4 UUIDs, not equal */
    assert_int_equal(c.fb.mt[0].id[6] >> 4, 4);
    assert_memory_not_equal(c.fb.mt[0].id, c.fb.mt[1].id, KBOX_UUID_LEN);
    ctx_stop(&c);
}

static void test_bad_udhl_final(void **state)
{
    (void)state;
    struct ctx c;
    ctx_start(&c, NULL);
    struct bearer_msg m;
    make_scp80(&m, "8613800000003", 5);
    m.ud[0] = 40; /* UDHL beyond the UD */
    submit(&c, &m);
    assert_true(run_until(&c, &c.n_res, 1, 5));
    assert_int_equal(c.res[0].status, BEARER_SUBMIT_FINAL);
    assert_int_equal(c.fb.n_mt, 0);
    ctx_stop(&c);
}

static void test_ack_statuses(void **state)
{
    (void)state;
    struct ctx c;
    ctx_start(&c, NULL);
    c.fb.ack_plan[0] = KBOX_ACK_SUCCESS;
    c.fb.ack_plan[1] = KBOX_ACK_BUFFERED;
    c.fb.ack_plan[2] = KBOX_ACK_FAILED;
    c.fb.ack_plan[3] = KBOX_ACK_FAILED_TMP;
    c.fb.ack_plan[4] = 77; /* unknown status: final */
    c.fb.n_plan = 5;
    const char *dests[] = {"8613800000011", "8613800000012", "8613800000013", "8613800000014",
                           "8613800000015"};
    for (int i = 0; i < 5; i++) {
        struct bearer_msg m;
        make_scp80(&m, dests[i], (uint64_t)(100 + i));
        submit(&c, &m);
        /* one at a time so the plan lines up with the tokens */
        assert_true(run_until(&c, &c.fb.n_mt, i + 1, 5));
    }
    assert_true(run_until(&c, &c.n_res, 5, 5));
    assert_int_equal(result_of(&c, 100)->status, BEARER_SUBMIT_OK);
    assert_int_equal(result_of(&c, 101)->status, BEARER_SUBMIT_OK);
    assert_int_equal(result_of(&c, 101)->code, KBOX_ACK_BUFFERED);
    assert_int_equal(result_of(&c, 102)->status, BEARER_SUBMIT_FINAL);
    assert_int_equal(result_of(&c, 104)->status, BEARER_SUBMIT_FINAL);
    /* failed_tmp: held, resent after the pause, then accepted */
    const struct rec_res *r = result_of(&c, 103);
    assert_non_null(r);
    assert_int_equal(r->status, BEARER_SUBMIT_OK);
    assert_int_equal(r->attempts, 2);
    assert_int_equal(mts_with_token(&c, "103"), 2);
    assert_int_equal(mts_with_token(&c, "100"), 1);
    ctx_stop(&c);
}

static void fb_send_dlr(struct fb *f, const char *url, const char *foreign, int32_t mask,
                        const char *text, uint8_t id0)
{
    struct kbox_msg m;
    kbox_msg_init(&m, KBOX_MSG_SMS);
    m.sms.sms_type = KBOX_SMS_REPORT_MO;
    m.sms.sender = KBOX_STR_LIT("10086");
    m.sms.receiver = KBOX_STR_LIT("8613800000021");
    m.sms.dlr_url = (struct kbox_str){(const uint8_t *)url, strlen(url)};
    m.sms.foreign_id = (struct kbox_str){(const uint8_t *)foreign, strlen(foreign)};
    m.sms.msgdata = (struct kbox_str){(const uint8_t *)text, strlen(text)};
    m.sms.boxc_id = KBOX_STR_LIT("otagw-test");
    m.sms.smsc_id = KBOX_STR_LIT("sim");
    m.sms.dlr_mask = mask;
    m.sms.time = 1700000000;
    memset(m.sms.id, id0, KBOX_UUID_LEN);
    kbox_uuid_make_v4(m.sms.id);
    fb_send(f, &m);
}

static void test_dlr(void **state)
{
    (void)state;
    struct ctx c;
    ctx_start(&c, NULL);
    fb_send_dlr(&c.fb, "777", "00AB12", KBOX_DLR_SUCCESS,
                "id:00AB12 sub:001 dlvrd:001 submit date:2601010000 done date:2601010000 "
                "stat:DELIVRD err:000 text:",
                0x11);
    assert_true(run_until(&c, &c.n_dlr, 1, 5));
    assert_true(run_until(&c, &c.fb.n_ack, 1, 5));
    const struct rec_dlr *d = &c.dlr[0];
    assert_true(d->has_token);
    assert_int_equal(d->token, 777);
    assert_string_equal(d->msg_id, "ab12");
    assert_int_equal(d->state, BEARER_DLR_DELIVERED);
    assert_true(d->final);
    assert_string_equal(d->stat, "DELIVRD");
    assert_string_equal(d->dest, "8613800000021");
    assert_int_equal(d->acks_at_call, 0);
    assert_int_equal(c.fb.ack[0].nack, KBOX_ACK_SUCCESS);
    assert_int_equal(c.fb.ack[0].time, 1700000000);
    assert_int_equal(c.fb.ack[0].id[1], 0x11);

    /* failure receipt with an error code; SMSC NACK without an SMSC id */
    fb_send_dlr(&c.fb, "778", "ab13", KBOX_DLR_FAIL, "id:ab13 stat:UNDELIV err:042 text:", 0x12);
    fb_send_dlr(&c.fb, "779", "", KBOX_DLR_SMSC_FAIL, "NACK/0x00000045/Submit failed", 0x13);
    assert_true(run_until(&c, &c.n_dlr, 3, 5));
    assert_true(run_until(&c, &c.fb.n_ack, 3, 5));
    assert_int_equal(c.dlr[1].state, BEARER_DLR_FAILED);
    assert_int_equal(c.dlr[1].err, 42);
    assert_string_equal(c.dlr[1].stat, "UNDELIV");
    assert_int_equal(c.dlr[2].state, BEARER_DLR_REJECTED);
    assert_true(c.dlr[2].final);
    assert_int_equal(c.dlr[2].token, 779);
    assert_string_equal(c.dlr[2].stat, "NACK");

    /* the callback refuses: no ack now, ack_failed_tmp after the pause */
    c.cb_rc = -EIO;
    fb_send_dlr(&c.fb, "780", "ab14", KBOX_DLR_SUCCESS, "id:ab14 stat:DELIVRD err:000", 0x14);
    assert_true(run_until(&c, &c.n_dlr, 4, 5));
    run_for(&c, 0.3);
    assert_int_equal(c.fb.n_ack, 3);
    assert_true(run_until(&c, &c.fb.n_ack, 4, 5));
    assert_int_equal(c.fb.ack[3].nack, KBOX_ACK_FAILED_TMP);
    assert_int_equal(c.fb.ack[3].id[1], 0x14);
    ctx_stop(&c);
}

static void test_mo(void **state)
{
    (void)state;
    struct ctx c;
    ctx_start(&c, NULL);
    static const uint8_t udh[] = {0x02, 0x71, 0x00};
    static const uint8_t data[] = {0x00, 0x0e, 0x0a, 0xb0, 0x00, 0x01, 0x90, 0x00};
    struct kbox_msg m;
    kbox_msg_init(&m, KBOX_MSG_SMS);
    m.sms.sms_type = KBOX_SMS_MO;
    m.sms.sender = KBOX_STR_LIT("8613800000031");
    m.sms.receiver = KBOX_STR_LIT("10086");
    m.sms.udhdata = (struct kbox_str){udh, sizeof(udh)};
    m.sms.msgdata = (struct kbox_str){data, sizeof(data)};
    m.sms.coding = KBOX_DC_8BIT;
    m.sms.mclass = 2;
    m.sms.pid = 0x7F;
    m.sms.time = 1700000001;
    memset(m.sms.id, 0x21, KBOX_UUID_LEN);
    kbox_uuid_make_v4(m.sms.id);
    fb_send(&c.fb, &m);
    assert_true(run_until(&c, &c.n_mo, 1, 5));
    assert_true(run_until(&c, &c.fb.n_ack, 1, 5));
    const struct rec_mo *r = &c.mo[0];
    assert_string_equal(r->orig, "8613800000031");
    assert_string_equal(r->dest, "10086");
    assert_true(r->udhi);
    assert_int_equal(r->ud_len, sizeof(udh) + sizeof(data));
    assert_memory_equal(r->ud, udh, sizeof(udh));
    assert_memory_equal(r->ud + sizeof(udh), data, sizeof(data));
    assert_int_equal(r->pid, 0x7F);
    assert_int_equal(r->dcs, 0xF6);
    assert_int_equal(r->acks_at_call, 0);
    assert_int_equal(c.fb.ack[0].nack, KBOX_ACK_SUCCESS);
    assert_int_equal(c.fb.ack[0].time, 1700000001);
    assert_memory_equal(c.fb.ack[0].id, m.sms.id, KBOX_UUID_LEN);

    /* refused by the callback: not acknowledged as taken */
    c.cb_rc = -ENOSPC;
    memset(m.sms.id, 0x22, KBOX_UUID_LEN);
    kbox_uuid_make_v4(m.sms.id);
    fb_send(&c.fb, &m);
    assert_true(run_until(&c, &c.n_mo, 2, 5));
    assert_true(run_until(&c, &c.fb.n_ack, 2, 5));
    assert_int_equal(c.fb.ack[1].nack, KBOX_ACK_FAILED_TMP);
    assert_memory_equal(c.fb.ack[1].id, m.sms.id, KBOX_UUID_LEN);
    ctx_stop(&c);
}

static void fb_send_mo(struct fb *f, uint8_t id0, int32_t time)
{
    static const uint8_t data[] = {0x01, 0x02, 0x03};
    struct kbox_msg m;
    kbox_msg_init(&m, KBOX_MSG_SMS);
    m.sms.sms_type = KBOX_SMS_MO;
    m.sms.sender = KBOX_STR_LIT("8613800000031");
    m.sms.receiver = KBOX_STR_LIT("10086");
    m.sms.msgdata = (struct kbox_str){data, sizeof(data)};
    m.sms.coding = KBOX_DC_8BIT;
    m.sms.time = time;
    memset(m.sms.id, id0, KBOX_UUID_LEN);
    kbox_uuid_make_v4(m.sms.id);
    fb_send(f, &m);
}

/* Acks the fake bearerbox got for the sms whose id was made from id0. */
static int acks_for(const struct ctx *c, uint8_t id0)
{
    int n = 0;
    for (int i = 0; i < c->fb.n_ack; i++) {
        n += c->fb.ack[i].id[1] == id0;
    }
    return n;
}

static void test_ack_later(void **state)
{
    (void)state;
    struct ctx c;
    ctx_start(&c, NULL);
    c.cb_rc = BEARER_ACK_LATER;
    fb_send_dlr(&c.fb, "801", "ab31", KBOX_DLR_SUCCESS, "id:ab31 stat:DELIVRD err:000", 0x31);
    fb_send_mo(&c.fb, 0x32, 1700000002);
    assert_true(run_until(&c, &c.n_mo, 1, 5));
    assert_true(run_until(&c, &c.n_dlr, 1, 5));
    run_for(&c, 0.2);
    assert_int_equal(c.fb.n_ack, 0); /* not before the caller's commit */
    assert_int_equal(bearer_held_acks(c.b), 2);
    bearer_release_acks(c.b);
    assert_int_equal(bearer_held_acks(c.b), 0);
    assert_true(run_until(&c, &c.fb.n_ack, 2, 5));
    run_for(&c, 0.1);
    assert_int_equal(c.fb.n_ack, 2); /* exactly one each, in arrival order */
    assert_int_equal(c.fb.ack[0].nack, KBOX_ACK_SUCCESS);
    assert_int_equal(c.fb.ack[0].id[1], 0x31);
    assert_int_equal(c.fb.ack[0].time, 1700000000);
    assert_int_equal(c.fb.ack[1].nack, KBOX_ACK_SUCCESS);
    assert_int_equal(c.fb.ack[1].id[1], 0x32);
    assert_int_equal(c.fb.ack[1].time, 1700000002);
    bearer_release_acks(c.b);
    run_for(&c, 0.1);
    assert_int_equal(c.fb.n_ack, 2);

    /* discarded: no ack of any kind (no ack_failed_tmp either); the redelivery is taken */
    fb_send_dlr(&c.fb, "802", "ab33", KBOX_DLR_SUCCESS, "id:ab33 stat:DELIVRD err:000", 0x33);
    assert_true(run_until(&c, &c.n_dlr, 2, 5));
    bearer_discard_acks(c.b);
    bearer_release_acks(c.b);
    run_for(&c, 1.3); /* past the refusal pause */
    assert_int_equal(c.fb.n_ack, 2);
    fb_send_dlr(&c.fb, "802", "ab33", KBOX_DLR_SUCCESS, "id:ab33 stat:DELIVRD err:000", 0x33);
    assert_true(run_until(&c, &c.n_dlr, 3, 5));
    assert_int_equal(c.dlr[2].token, 802);
    bearer_release_acks(c.b);
    assert_true(run_until(&c, &c.fb.n_ack, 3, 5));
    assert_int_equal(acks_for(&c, 0x33), 1);
    assert_int_equal(c.fb.ack[2].nack, KBOX_ACK_SUCCESS);

    /* held when the connection drops: forgotten, bearerbox delivers it again */
    fb_send_mo(&c.fb, 0x34, 1700000004);
    assert_true(run_until(&c, &c.n_mo, 2, 5));
    assert_int_equal(bearer_held_acks(c.b), 1);
    fb_close_conn(&c.fb);
    assert_true(run_until(&c, &c.n_down, 1, 5));
    assert_int_equal(bearer_held_acks(c.b), 0);
    assert_true(run_until(&c, &c.fb.n_identify, 2, 5));
    bearer_release_acks(c.b);
    run_for(&c, 0.2);
    assert_int_equal(c.fb.n_ack, 3);
    c.cb_rc = 0;
    fb_send_mo(&c.fb, 0x34, 1700000004);
    assert_true(run_until(&c, &c.n_mo, 3, 5));
    assert_true(run_until(&c, &c.fb.n_ack, 4, 5));
    assert_int_equal(acks_for(&c, 0x34), 1);

    /*
     * Shutdown: the close flushes queued acks (0x37, taken with 0) but not
     * the held ones (0x35, 0x36: never committed).
     */
    c.cb_rc = BEARER_ACK_LATER;
    fb_send_dlr(&c.fb, "803", "ab35", KBOX_DLR_SUCCESS, "id:ab35 stat:DELIVRD err:000", 0x35);
    fb_send_mo(&c.fb, 0x36, 1700000006);
    assert_true(run_until(&c, &c.n_mo, 4, 5));
    assert_true(run_until(&c, &c.n_dlr, 4, 5));
    c.cb_rc = 0;
    fb_send_mo(&c.fb, 0x37, 1700000007);
    assert_true(run_until(&c, &c.n_mo, 5, 5));
    assert_int_equal(bearer_held_acks(c.b), 2);
    bearer_shutdown(c.b);
    assert_int_equal(bearer_held_acks(c.b), 0);
    run_for(&c, 0.2);
    assert_int_equal(acks_for(&c, 0x37), 1);
    assert_int_equal(acks_for(&c, 0x35), 0);
    assert_int_equal(acks_for(&c, 0x36), 0);
    assert_int_equal(c.fb.n_ack, 5);
    assert_int_equal(bearer_acks_refused(c.b), 0);
    ctx_stop(&c);
}

static void test_reconnect_no_loss_no_dup(void **state)
{
    (void)state;
    struct ctx c;
    ctx_start(&c, NULL);
    c.fb.auto_ack = false;
    const char *dests[] = {"8613800000041", "8613800000042", "8613800000043", "8613800000044",
                           "8613800000045"};
    for (int i = 0; i < 5; i++) {
        struct bearer_msg m;
        make_scp80(&m, dests[i], (uint64_t)(200 + i));
        submit(&c, &m);
    }
    assert_true(run_until(&c, &c.fb.n_mt, 5, 5));
    /* bearerbox acks the first two, then the connection drops */
    int acked = 0;
    for (int i = 0; i < 5; i++) {
        if (strcmp(c.fb.mt[i].dlr_url, "200") == 0 || strcmp(c.fb.mt[i].dlr_url, "201") == 0) {
            fb_ack_mt(&c.fb, i, KBOX_ACK_SUCCESS);
            acked++;
        }
    }
    assert_int_equal(acked, 2);
    assert_true(run_until(&c, &c.n_res, 2, 5));
    fb_close_conn(&c.fb);
    c.fb.auto_ack = true;
    assert_true(run_until(&c, &c.n_down, 1, 5));
    assert_true(run_until(&c, &c.fb.n_identify, 2, 5));
    assert_true(run_until(&c, &c.n_res, 5, 5));
    run_for(&c, 0.2);
    assert_int_equal(c.fb.n_conns, 2);
    assert_int_equal(c.n_res, 5);
    for (int i = 0; i < 5; i++) {
        char tok[8];
        snprintf(tok, sizeof(tok), "%d", 200 + i);
        const struct rec_res *r = result_of(&c, (uint64_t)(200 + i));
        assert_non_null(r);
        assert_int_equal(r->status, BEARER_SUBMIT_OK);
        /* acked before the drop: sent once; unacked: resent exactly once */
        assert_int_equal(mts_with_token(&c, tok), i < 2 ? 1 : 2);
        assert_int_equal(r->attempts, i < 2 ? 1 : 2);
    }
    assert_int_equal(c.fb.n_mt, 8);
    ctx_stop(&c);
}

static void test_bearerbox_shutdown(void **state)
{
    (void)state;
    struct ctx c;
    ctx_start(&c, NULL);
    c.fb.auto_ack = false;
    struct bearer_msg m;
    make_scp80(&m, "8613800000051", 300);
    submit(&c, &m);
    make_scp80(&m, "8613800000052", 301);
    submit(&c, &m);
    assert_true(run_until(&c, &c.fb.n_mt, 2, 5));
    struct kbox_msg a;
    kbox_msg_init(&a, KBOX_MSG_ADMIN);
    a.admin.command = KBOX_CMD_SHUTDOWN;
    fb_send(&c.fb, &a);
    run_for(&c, 0.2);
    assert_int_equal(c.n_down, 0); /* two MTs still wait for their acks */
    int i300 = strcmp(c.fb.mt[0].dlr_url, "300") == 0 ? 0 : 1;
    fb_ack_mt(&c.fb, i300, KBOX_ACK_SUCCESS);
    run_for(&c, 0.1);
    assert_int_equal(c.n_down, 0);
    c.fb.auto_ack = true;
    fb_ack_mt(&c.fb, 1 - i300, KBOX_ACK_FAILED_TMP); /* bearerbox while shutting down */
    /* the last ack is in: the box closes, reconnects, resends only the refused one */
    assert_true(run_until(&c, &c.n_down, 1, 5));
    assert_true(run_until(&c, &c.n_res, 2, 5));
    assert_int_equal(result_of(&c, 300)->status, BEARER_SUBMIT_OK);
    assert_int_equal(result_of(&c, 301)->status, BEARER_SUBMIT_OK);
    assert_int_equal(c.fb.n_identify, 2);
    assert_int_equal(mts_with_token(&c, "300"), 1);
    assert_int_equal(mts_with_token(&c, "301"), 2);

    /* shutdown with nothing on the wire: the box closes at once */
    fb_send(&c.fb, &a);
    assert_true(run_until(&c, &c.n_down, 2, 5));
    assert_true(run_until(&c, &c.fb.n_identify, 3, 5));
    ctx_stop(&c);
}

static void tune_timeouts(struct bearer_link_conf *lc)
{
    lc->resp_timeout_ms = 300;
    lc->heartbeat_s = 1;
}

static void test_ack_timeout_and_heartbeat(void **state)
{
    (void)state;
    struct ctx c;
    ctx_start(&c, tune_timeouts);
    assert_true(run_until(&c, &c.fb.n_heartbeats, 1, 3));
    c.fb.auto_ack = false;
    struct bearer_msg m;
    make_scp80(&m, "8613800000061", 400);
    submit(&c, &m);
    assert_true(run_until(&c, &c.fb.n_mt, 1, 5));
    c.fb.auto_ack = true;
    /* no ack: the link gives up on the connection, reconnects, resends */
    assert_true(run_until(&c, &c.n_down, 1, 5));
    assert_true(run_until(&c, &c.n_res, 1, 5));
    assert_int_equal(c.res[0].status, BEARER_SUBMIT_OK);
    assert_int_equal(c.res[0].attempts, 2);
    struct bearer_link_stats st;
    assert_true(bearer_link_stats(c.b, 0, NULL, &st));
    assert_int_equal(st.timeouts, 1);
    ctx_stop(&c);
}

static void test_connect_refused_retries(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct ctx c;
    memset(&c, 0, sizeof(c));
    c.loop = loop;
    ev_timer_init(&c.tick, tick_cb, 0.02, 0.02);
    ev_timer_start(loop, &c.tick);
    /* a port that was free a moment ago: nothing listens */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t sl = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
    close(fd);
    struct bearer_cbs cbs = {.submit_result = on_result, .link_state = on_state, .arg = &c};
    struct ota_err e;
    assert_int_equal(bearer_new(loop, &cbs, &c.b, &e), 0);
    struct bearer_link_conf lc;
    bearer_link_conf_defaults(&lc, BEARER_KIND_KBOX);
    snprintf(lc.name, sizeof(lc.name), "kbox-refused");
    snprintf(lc.host, sizeof(lc.host), "127.0.0.1");
    lc.port = ntohs(a.sin_port);
    lc.reconnect_min_ms = 20;
    lc.reconnect_max_ms = 40;
    assert_int_equal(bearer_add_link(c.b, &lc, &e), 0);
    assert_true(run_until(&c, &c.n_down, 3, 5));
    assert_int_equal(c.n_up, 0);
    bearer_free(c.b);
    ev_timer_stop(loop, &c.tick);
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mt_fields),
        cmocka_unit_test(test_bad_udhl_final),
        cmocka_unit_test(test_ack_statuses),
        cmocka_unit_test(test_dlr),
        cmocka_unit_test(test_mo),
        cmocka_unit_test(test_reconnect_no_loss_no_dup),
        cmocka_unit_test(test_bearerbox_shutdown),
        cmocka_unit_test(test_ack_timeout_and_heartbeat),
        cmocka_unit_test(test_connect_refused_retries),
        cmocka_unit_test(test_ack_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
