/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the native CMPP link (smpp/cmpp_link.c) against an in-process
 * fake ISMG on 127.0.0.1 (ephemeral port), built on the CMPP codec and run on
 * the same libev loop. Covers login (good and wrong secret, 2.0 and 3.0),
 * the SUBMIT fields [cmpp.md §4, §7], window 16 over 200 submits, Result 8
 * flow control without loss or reorder [§6], status reports matched by
 * canonical Msg_Id [§5], MO answered only after the callback returned 0,
 * ACTIVE_TEST both ways and a dead peer detected by T/N [§6], a
 * connection dropped mid-window (reconnect, resend, nothing lost), and
 * DELIVER_RESP held for BEARER_ACK_LATER until bearer_release_acks (never
 * sent after a discard or a drop: the ISMG's redelivery is taken again).
 */
#include "smpp/bearer.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smpp/cmpp.h"

#define SECRET "s3cret"
#define SP_ID "901234"
#define MAX_TOK 512
#define MAX_PEND 256

struct pend {
    uint32_t seq;
    uint64_t msg_id;
    uint32_t result;
    bool dlr;
    char dest[CMPP_TERM30_LEN + 1];
};

/* The fake ISMG: one connection at a time. */
struct ismg {
    struct ev_loop *loop;
    enum cmpp_version ver;
    int lfd, cfd;
    uint16_t port;
    ev_io accept_w, rio;
    ev_timer flush_w;
    uint8_t rbuf[65536];
    size_t rlen;
    /* behaviour */
    bool defer;              /* answer SUBMITs from a 2 ms timer (window visible) */
    unsigned throttle_every; /* Result 8 to every Nth SUBMIT (0: never) */
    bool send_dlr;           /* a DELIVRD report for each accepted SUBMIT */
    bool answer_at;          /* answer ACTIVE_TEST */
    unsigned drop_after;     /* close the connection at this many SUBMITs (0: never) */
    unsigned ignore;         /* leave this many SUBMITs unanswered */
    uint32_t seq_seen[8];    /* Sequence_Ids of the first SUBMITs */
    /* what it saw */
    unsigned n_connect, n_connect_ok, n_submit, n_throttled, n_at, n_at_resp, n_term;
    unsigned n_deliver_resp;
    uint64_t deliver_resp_id;
    uint32_t dr_seq[16]; /* the first DELIVER_RESPs: Sequence_Id, Msg_Id, Result */
    uint64_t dr_id[16];
    uint32_t dr_result[16];
    struct pend pend[MAX_PEND];
    unsigned n_pend, max_pend;
    uint64_t next_id;
    unsigned seen_tok[MAX_TOK];       /* SUBMIT copies per token (resends included) */
    uint64_t accepted_order[MAX_TOK]; /* tokens in acceptance order */
    unsigned n_accepted;
    struct cmpp_submit last_submit;
    struct cmpp_pdu scratch;
};

static void ismg_write(struct ismg *s, const struct cmpp_pdu *pdu)
{
    uint8_t buf[CMPP_PDU_MAX_LEN];
    struct ota_err e;
    int n = cmpp_encode(pdu, buf, sizeof(buf), &e);
    assert_true(n > 0);
    if (s->cfd >= 0) {
        assert_int_equal(send(s->cfd, buf, (size_t)n, MSG_NOSIGNAL), n);
    }
}

static void ismg_close(struct ismg *s)
{
    ev_io_stop(s->loop, &s->rio);
    if (s->cfd >= 0) {
        close(s->cfd);
        s->cfd = -1;
    }
    s->rlen = 0;
    s->n_pend = 0;
}

static void ismg_resp(struct ismg *s, const struct pend *p)
{
    struct cmpp_pdu *o = &s->scratch;
    memset(o, 0, sizeof(*o));
    o->ver = s->ver;
    o->cmd_id = CMPP_SUBMIT_RESP;
    o->seq = p->seq;
    o->u.resp.msg_id = p->msg_id;
    o->u.resp.result = p->result;
    ismg_write(s, o);
    if (p->dlr) {
        memset(o, 0, sizeof(*o));
        o->ver = s->ver;
        o->cmd_id = CMPP_DELIVER;
        o->seq = 90000 + (uint32_t)p->msg_id;
        o->u.deliver.msg_id = 0x7000000000000000ull + p->msg_id;
        snprintf(o->u.deliver.dest_id, sizeof(o->u.deliver.dest_id), "10658");
        snprintf(o->u.deliver.src_terminal_id, sizeof(o->u.deliver.src_terminal_id), "%s", p->dest);
        o->u.deliver.msg_fmt = CMPP_FMT_ASCII;
        o->u.deliver.registered_delivery = 1;
        o->u.deliver.report.msg_id = p->msg_id;
        snprintf(o->u.deliver.report.stat, sizeof(o->u.deliver.report.stat), "DELIVRD");
        snprintf(o->u.deliver.report.submit_time, sizeof(o->u.deliver.report.submit_time),
                 "2611251200");
        snprintf(o->u.deliver.report.done_time, sizeof(o->u.deliver.report.done_time),
                 "2611251201");
        snprintf(o->u.deliver.report.dest_terminal_id, sizeof(o->u.deliver.report.dest_terminal_id),
                 "%s", p->dest);
        ismg_write(s, o);
    }
}

static void ismg_flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct ismg *s = (struct ismg *)((char *)w - offsetof(struct ismg, flush_w));
    for (unsigned i = 0; i < s->n_pend; i++) {
        ismg_resp(s, &s->pend[i]);
    }
    s->n_pend = 0;
}

static void ismg_on_submit(struct ismg *s, const struct cmpp_pdu *pdu)
{
    const struct cmpp_submit *sub = &pdu->u.submit;
    s->last_submit = *sub;
    s->n_submit++;
    assert_true(sub->msg_len >= 2);
    unsigned tok = (unsigned)(sub->msg_content[0] << 8 | sub->msg_content[1]);
    assert_true(tok < MAX_TOK);
    s->seen_tok[tok]++;
    if (s->n_submit <= 8) {
        s->seq_seen[s->n_submit - 1] = pdu->seq;
    }
    if (s->ignore > 0) {
        s->ignore--;
        return;
    }
    if (s->drop_after && s->n_submit == s->drop_after) {
        s->drop_after = 0;
        ismg_close(s); /* pending answers are lost with the connection */
        return;
    }
    struct pend p = {.seq = pdu->seq, .result = CMPP_RES_OK};
    snprintf(p.dest, sizeof(p.dest), "%s", sub->dest_terminal_id[0]);
    if (s->throttle_every && s->n_submit % s->throttle_every == 0) {
        p.result = CMPP_RES_FLOW_CONTROL;
        s->n_throttled++;
    } else {
        p.msg_id = ++s->next_id + 0x1000000000000000ull;
        p.dlr = s->send_dlr && sub->registered_delivery;
        s->accepted_order[s->n_accepted++] = tok;
    }
    if (!s->defer) {
        ismg_resp(s, &p);
        return;
    }
    assert_true(s->n_pend < MAX_PEND);
    s->pend[s->n_pend++] = p;
    if (s->n_pend > s->max_pend) {
        s->max_pend = s->n_pend;
    }
}

static void ismg_on_pdu(struct ismg *s, const uint8_t *p, size_t len)
{
    struct ota_err e;
    struct cmpp_pdu *in = calloc(1, sizeof(*in));
    assert_non_null(in);
    assert_int_equal(cmpp_decode(p, len, s->ver, in, &e), 0);
    struct cmpp_pdu *o = &s->scratch;
    switch (in->cmd_id) {
    case CMPP_CONNECT: {
        s->n_connect++;
        uint32_t st = CMPP_CONN_OK;
        if (cmpp_connect_verify(&in->u.connect, (const uint8_t *)SECRET, strlen(SECRET), &e) < 0) {
            st = CMPP_CONN_AUTH_FAILED;
        } else if (in->u.connect.version != s->ver) {
            st = CMPP_CONN_VERSION_TOO_HIGH;
        } else {
            s->n_connect_ok++;
        }
        memset(o, 0, sizeof(*o));
        o->ver = s->ver;
        o->cmd_id = CMPP_CONNECT_RESP;
        o->seq = in->seq;
        o->u.connect_resp.status = st;
        o->u.connect_resp.version = (uint8_t)s->ver;
        assert_int_equal(cmpp_auth_ismg(s->ver, st, in->u.connect.auth_source,
                                        (const uint8_t *)SECRET, strlen(SECRET),
                                        o->u.connect_resp.auth_ismg, &e),
                         0);
        ismg_write(s, o);
        break;
    }
    case CMPP_SUBMIT:
        ismg_on_submit(s, in);
        break;
    case CMPP_DELIVER_RESP:
        if (s->n_deliver_resp < 16) {
            s->dr_seq[s->n_deliver_resp] = in->seq;
            s->dr_id[s->n_deliver_resp] = in->u.resp.msg_id;
            s->dr_result[s->n_deliver_resp] = in->u.resp.result;
        }
        s->n_deliver_resp++;
        s->deliver_resp_id = in->u.resp.msg_id;
        break;
    case CMPP_ACTIVE_TEST:
        s->n_at++;
        if (s->answer_at) {
            memset(o, 0, sizeof(*o));
            o->ver = s->ver;
            o->cmd_id = CMPP_ACTIVE_TEST_RESP;
            o->seq = in->seq;
            ismg_write(s, o);
        }
        break;
    case CMPP_ACTIVE_TEST_RESP:
        s->n_at_resp++;
        break;
    case CMPP_TERMINATE:
        s->n_term++;
        break;
    default:
        fail_msg("fake ISMG: unexpected %s", cmpp_cmd_name(in->cmd_id));
    }
    free(in);
}

static void ismg_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct ismg *s = (struct ismg *)((char *)w - offsetof(struct ismg, rio));
    ssize_t n = recv(s->cfd, s->rbuf + s->rlen, sizeof(s->rbuf) - s->rlen, 0);
    if (n <= 0) {
        ismg_close(s);
        return;
    }
    s->rlen += (size_t)n;
    size_t off = 0;
    while (s->cfd >= 0) {
        struct cmpp_hdr h;
        struct ota_err e;
        int fl = cmpp_frame(s->rbuf + off, s->rlen - off, 0, &h, &e);
        assert_true(fl >= 0);
        if (fl == 0) {
            break;
        }
        ismg_on_pdu(s, s->rbuf + off, (size_t)fl);
        off += (size_t)fl;
    }
    if (s->cfd < 0) {
        return;
    }
    memmove(s->rbuf, s->rbuf + off, s->rlen - off);
    s->rlen -= off;
}

static void ismg_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct ismg *s = (struct ismg *)((char *)w - offsetof(struct ismg, accept_w));
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) {
        return;
    }
    ismg_close(s);
    s->cfd = fd;
    ev_io_init(&s->rio, ismg_read_cb, fd, EV_READ);
    ev_io_start(loop, &s->rio);
}

static void ismg_start(struct ismg *s, struct ev_loop *loop, enum cmpp_version ver)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->ver = ver;
    s->cfd = -1;
    s->answer_at = true;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(listen(s->lfd, 4), 0);
    ev_io_init(&s->accept_w, ismg_accept_cb, s->lfd, EV_READ);
    ev_io_start(loop, &s->accept_w);
    ev_timer_init(&s->flush_w, ismg_flush_cb, 0.002, 0.002);
    ev_timer_start(loop, &s->flush_w);
}

static void ismg_stop(struct ismg *s)
{
    ismg_close(s);
    ev_io_stop(s->loop, &s->accept_w);
    ev_timer_stop(s->loop, &s->flush_w);
    close(s->lfd);
}

/* ---- the SP side --------------------------------------------------------------- */

struct sp {
    struct ev_loop *loop;
    struct bearer *b;
    struct ismg ismg;
    unsigned n_results, n_ok, n_dlr, n_mo, n_up, n_down, n_ready;
    unsigned per_tok[MAX_TOK];
    char msg_id[MAX_TOK][BEARER_MSGID_MAX];
    char dlr_id[MAX_TOK][BEARER_MSGID_MAX];
    int mo_rc, dlr_rc;
    char last_why[96];
    /* submit driver */
    unsigned next_tok, total, n_dests;
};

static void sp_pump(struct sp *p);

static void on_result(void *arg, const struct bearer_submit_result *r)
{
    struct sp *p = arg;
    assert_true(r->token < MAX_TOK);
    p->per_tok[r->token]++;
    p->n_results++;
    if (r->status == BEARER_SUBMIT_OK) {
        p->n_ok++;
        snprintf(p->msg_id[r->token], BEARER_MSGID_MAX, "%s", r->msg_id);
    }
}

static int on_dlr(void *arg, const struct bearer_dlr *d)
{
    struct sp *p = arg;
    assert_true(p->n_dlr < MAX_TOK);
    assert_int_equal(d->state, BEARER_DLR_DELIVERED);
    assert_true(d->final);
    snprintf(p->dlr_id[p->n_dlr++], BEARER_MSGID_MAX, "%s", d->msg_id);
    return p->dlr_rc;
}

static int on_mo(void *arg, const struct bearer_mo *m)
{
    struct sp *p = arg;
    p->n_mo++;
    assert_string_equal(m->orig, "8613800000009");
    assert_int_equal(m->ud_len, 3);
    return p->mo_rc;
}

static void on_state(void *arg, const char *link, enum bearer_link_state from,
                     enum bearer_link_state to, const char *why)
{
    (void)link;
    (void)from;
    struct sp *p = arg;
    if (to == BEARER_LINK_UP) {
        p->n_up++;
    }
    if (to == BEARER_LINK_DOWN) {
        p->n_down++;
        snprintf(p->last_why, sizeof(p->last_why), "%s", why);
    }
}

static void on_ready(void *arg)
{
    struct sp *p = arg;
    p->n_ready++;
    sp_pump(p);
}

static void sp_start(struct sp *p, enum cmpp_version ver, const char *secret)
{
    struct ota_err e;
    memset(p, 0, sizeof(*p));
    p->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(p->loop);
    ismg_start(&p->ismg, p->loop, ver);
    struct bearer_cbs cbs = {.submit_result = on_result,
                             .dlr = on_dlr,
                             .mo = on_mo,
                             .link_state = on_state,
                             .ready = on_ready,
                             .arg = p};
    assert_int_equal(bearer_new(p->loop, &cbs, &p->b, &e), 0);
    struct bearer_link_conf c;
    bearer_link_conf_defaults(&c, BEARER_KIND_CMPP);
    snprintf(c.name, sizeof(c.name), "ismg1");
    snprintf(c.host, sizeof(c.host), "127.0.0.1");
    c.port = p->ismg.port;
    c.rate_per_s = 0;
    c.reconnect_min_ms = 30;
    c.reconnect_max_ms = 100;
    c.throttle_pause_ms = 10;
    c.resp_timeout_ms = 300;
    c.heartbeat_s = 60;
    c.u.cmpp.version = (uint8_t)ver;
    snprintf(c.u.cmpp.sp_id, sizeof(c.u.cmpp.sp_id), SP_ID);
    snprintf(c.u.cmpp.secret, sizeof(c.u.cmpp.secret), "%s", secret);
    snprintf(c.u.cmpp.service_id, sizeof(c.u.cmpp.service_id), "OTA");
    snprintf(c.u.cmpp.src_id, sizeof(c.u.cmpp.src_id), "10658");
    p->next_tok = 1;
    assert_int_equal(bearer_add_link(p->b, &c, &e), 0);
}

static void sp_start_hb(struct sp *p, enum cmpp_version ver, unsigned heartbeat_s)
{
    struct ota_err e;
    /* restart the link with a short heartbeat: a second bearer on the same ISMG */
    bearer_free(p->b);
    struct bearer_cbs cbs = {.submit_result = on_result, .link_state = on_state, .arg = p};
    assert_int_equal(bearer_new(p->loop, &cbs, &p->b, &e), 0);
    struct bearer_link_conf c;
    bearer_link_conf_defaults(&c, BEARER_KIND_CMPP);
    snprintf(c.name, sizeof(c.name), "ismg-hb");
    snprintf(c.host, sizeof(c.host), "127.0.0.1");
    c.port = p->ismg.port;
    c.reconnect_min_ms = 30;
    c.resp_timeout_ms = 200;
    c.heartbeat_s = heartbeat_s;
    c.u.cmpp.version = (uint8_t)ver;
    snprintf(c.u.cmpp.sp_id, sizeof(c.u.cmpp.sp_id), SP_ID);
    snprintf(c.u.cmpp.secret, sizeof(c.u.cmpp.secret), SECRET);
    assert_int_equal(bearer_add_link(p->b, &c, &e), 0);
}

static void sp_stop(struct sp *p)
{
    bearer_free(p->b);
    ismg_stop(&p->ismg);
    ev_loop_destroy(p->loop);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

static void run_until(struct sp *p, const unsigned *counter, unsigned want, double max_s)
{
    ev_timer tick;
    ev_timer_init(&tick, tick_cb, 0.005, 0.005);
    ev_timer_start(p->loop, &tick);
    ev_now_update(p->loop);
    ev_tstamp t0 = ev_now(p->loop);
    while ((!counter || *counter < want) && ev_now(p->loop) - t0 < max_s) {
        ev_run(p->loop, EVRUN_ONCE);
    }
    ev_timer_stop(p->loop, &tick);
}

/* Submit parts next_tok..total until back-pressure; dests cycle over n_dests. */
static void sp_pump(struct sp *p)
{
    struct ota_err e;
    while (p->next_tok <= p->total) {
        struct bearer_msg m;
        memset(&m, 0, sizeof(m));
        snprintf(m.dest, sizeof(m.dest), "86138%08u", p->next_tok % p->n_dests);
        m.ud[0] = (uint8_t)(p->next_tok >> 8);
        m.ud[1] = (uint8_t)p->next_tok;
        m.ud[2] = 0x55;
        m.ud_len = 3;
        m.pid = 0x7f;
        m.dcs = 0xf6;
        m.want_report = true;
        m.part = 1;
        m.n_parts = 1;
        m.token = p->next_tok;
        int rc = bearer_submit(p->b, &m, &e);
        if (rc == -EAGAIN) {
            return;
        }
        assert_int_equal(rc, 0);
        p->next_tok++;
    }
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_wrong_secret(void **state)
{
    (void)state;
    struct sp p;
    sp_start(&p, CMPP_V30, "wrong");
    run_until(&p, &p.ismg.n_connect, 2, 3.0);
    assert_true(p.ismg.n_connect >= 2); /* refused, then retried with back-off */
    assert_int_equal(p.ismg.n_connect_ok, 0);
    assert_int_equal(p.n_up, 0);
    assert_non_null(strstr(p.last_why, "auth"));
    struct bearer_link_stats st;
    assert_true(bearer_link_stats(p.b, 0, NULL, &st));
    assert_true(st.reconnects >= 1);
    assert_int_equal(bearer_room(p.b), 0);
    sp_stop(&p);
}

static void test_bad_conf(void **state)
{
    (void)state;
    struct sp p;
    struct ota_err e;
    sp_start(&p, CMPP_V30, SECRET);
    struct bearer_link_conf c;
    bearer_link_conf_defaults(&c, BEARER_KIND_CMPP);
    snprintf(c.name, sizeof(c.name), "bad");
    snprintf(c.host, sizeof(c.host), "127.0.0.1");
    c.port = 7890;
    c.u.cmpp.version = 0x21;
    assert_int_equal(bearer_add_link(p.b, &c, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    sp_stop(&p);
}

static void run_window(enum cmpp_version ver)
{
    struct sp p;
    sp_start(&p, ver, SECRET);
    p.ismg.defer = true;
    p.ismg.send_dlr = true;
    p.total = 200;
    p.n_dests = 200;
    run_until(&p, &p.n_up, 1, 3.0);
    assert_int_equal(p.n_up, 1);
    sp_pump(&p);
    run_until(&p, &p.n_dlr, 200, 8.0);
    assert_int_equal(p.n_ok, 200);
    assert_int_equal(p.n_results, 200);
    assert_int_equal(p.n_dlr, 200);
    assert_true(p.ismg.max_pend <= 16);
    assert_true(p.ismg.max_pend >= 8); /* the window was used */
    run_until(&p, &p.ismg.n_deliver_resp, 200, 2.0);
    assert_int_equal(p.ismg.n_deliver_resp, 200);
    /* every report matches a submit result by its canonical id */
    for (unsigned i = 0; i < 200; i++) {
        bool found = false;
        for (unsigned t = 1; t <= 200 && !found; t++) {
            found = strcmp(p.dlr_id[i], p.msg_id[t]) == 0;
        }
        assert_true(found);
        assert_int_equal(strlen(p.dlr_id[i]), 16);
    }
    /* SUBMIT fields [cmpp.md §4, §7] */
    const struct cmpp_submit *s = &p.ismg.last_submit;
    assert_int_equal(s->msg_fmt, CMPP_FMT_BINARY);
    assert_int_equal(s->tp_pid, 0x7f);
    assert_int_equal(s->tp_udhi, 0);
    assert_int_equal(s->registered_delivery, 1);
    assert_int_equal(s->pk_total, 1);
    assert_int_equal(s->pk_number, 1);
    assert_string_equal(s->msg_src, SP_ID);
    assert_string_equal(s->service_id, "OTA");
    assert_string_equal(s->src_id, "10658");
    for (unsigned t = 1; t <= 200; t++) {
        assert_int_equal(p.per_tok[t], 1);
    }
    sp_stop(&p);
}

static void test_window_dlr_v30(void **state)
{
    (void)state;
    run_window(CMPP_V30);
}

static void test_window_dlr_v20(void **state)
{
    (void)state;
    run_window(CMPP_V20);
}

/* Every 7th SUBMIT gets Result 8: all 200 accepted once, order per handset kept. */
static void test_flow_control(void **state)
{
    (void)state;
    struct sp p;
    sp_start(&p, CMPP_V30, SECRET);
    p.ismg.defer = true;
    p.ismg.throttle_every = 7;
    p.total = 200;
    p.n_dests = 10;
    run_until(&p, &p.n_up, 1, 3.0);
    sp_pump(&p);
    run_until(&p, &p.n_results, 200, 9.0);
    assert_int_equal(p.n_results, 200);
    assert_int_equal(p.n_ok, 200);
    assert_true(p.ismg.n_throttled > 0);
    assert_int_equal(p.ismg.n_accepted, 200);
    uint64_t last[10] = {0};
    for (unsigned i = 0; i < p.ismg.n_accepted; i++) {
        uint64_t t = p.ismg.accepted_order[i];
        assert_true(t > last[t % 10]);
        last[t % 10] = t;
    }
    for (unsigned t = 1; t <= 200; t++) {
        assert_int_equal(p.per_tok[t], 1);
    }
    struct bearer_link_stats st;
    assert_true(bearer_link_stats(p.b, 0, NULL, &st));
    assert_int_equal(st.throttled, p.ismg.n_throttled);
    sp_stop(&p);
}

/* The ISMG closes the link at the 40th SUBMIT: reconnect, resend, nothing lost. */
static void test_drop_mid_window(void **state)
{
    (void)state;
    struct sp p;
    sp_start(&p, CMPP_V30, SECRET);
    p.ismg.defer = true;
    p.ismg.drop_after = 40;
    p.total = 100;
    p.n_dests = 100;
    run_until(&p, &p.n_up, 1, 3.0);
    sp_pump(&p);
    run_until(&p, &p.n_results, 100, 8.0);
    assert_int_equal(p.n_results, 100);
    assert_int_equal(p.n_ok, 100);
    assert_int_equal(p.n_up, 2);
    assert_true(p.ismg.n_connect_ok == 2);
    for (unsigned t = 1; t <= 100; t++) {
        assert_int_equal(p.per_tok[t], 1);
        assert_true(p.ismg.seen_tok[t] >= 1);
    }
    sp_stop(&p);
}

/* No SUBMIT_RESP: resent after T with the same Sequence_Id; after N tries, reconnect. */
static void test_resp_timeout(void **state)
{
    (void)state;
    struct sp p;
    sp_start(&p, CMPP_V30, SECRET);
    p.ismg.ignore = 1;
    p.total = 1;
    p.n_dests = 1;
    run_until(&p, &p.n_up, 1, 3.0);
    sp_pump(&p);
    run_until(&p, &p.n_results, 1, 3.0);
    assert_int_equal(p.n_ok, 1);
    assert_int_equal(p.ismg.n_submit, 2);
    assert_int_equal(p.ismg.seq_seen[0], p.ismg.seq_seen[1]);
    struct bearer_link_stats st;
    assert_true(bearer_link_stats(p.b, 0, NULL, &st));
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(p.n_down, 0);
    /* three unanswered copies: the connection is broken, the part survives */
    p.ismg.ignore = 3;
    p.total = 2;
    sp_pump(&p);
    run_until(&p, &p.n_results, 2, 4.0);
    assert_int_equal(p.n_ok, 2);
    assert_int_equal(p.per_tok[2], 1);
    assert_int_equal(p.ismg.n_submit, 6);
    assert_int_equal(p.n_down, 1);
    assert_non_null(strstr(p.last_why, "SUBMIT_RESP"));
    assert_int_equal(p.n_up, 2);
    sp_stop(&p);
}

/* MO: no DELIVER_RESP while the callback refuses; answered once it returns 0. */
static void test_mo_ack_after_callback(void **state)
{
    (void)state;
    struct sp p;
    sp_start(&p, CMPP_V20, SECRET);
    run_until(&p, &p.n_up, 1, 3.0);
    struct cmpp_pdu *o = calloc(1, sizeof(*o));
    assert_non_null(o);
    o->ver = CMPP_V20;
    o->cmd_id = CMPP_DELIVER;
    o->seq = 777;
    o->u.deliver.msg_id = 0x1234567890abcdefull;
    snprintf(o->u.deliver.dest_id, sizeof(o->u.deliver.dest_id), "10658");
    snprintf(o->u.deliver.src_terminal_id, sizeof(o->u.deliver.src_terminal_id), "8613800000009");
    o->u.deliver.msg_fmt = CMPP_FMT_BINARY;
    o->u.deliver.tp_pid = 0x7f;
    o->u.deliver.msg_len = 3;
    memcpy(o->u.deliver.msg_content, "\x01\x02\x03", 3);
    p.mo_rc = -EIO;
    ismg_write(&p.ismg, o);
    run_until(&p, &p.n_mo, 1, 2.0);
    run_until(&p, NULL, 0, 0.1);
    assert_int_equal(p.n_mo, 1);
    assert_int_equal(p.ismg.n_deliver_resp, 0);
    p.mo_rc = 0;
    ismg_write(&p.ismg, o); /* the ISMG delivers it again */
    run_until(&p, &p.ismg.n_deliver_resp, 1, 2.0);
    assert_int_equal(p.n_mo, 2);
    assert_int_equal(p.ismg.n_deliver_resp, 1);
    assert_true(p.ismg.deliver_resp_id == 0x1234567890abcdefull);
    free(o);
    sp_stop(&p);
}

/* The ISMG delivers an MO (report false) or a DELIVRD report for report_of. */
static void ismg_deliver(struct ismg *s, uint32_t seq, uint64_t msg_id, bool report,
                         uint64_t report_of)
{
    struct cmpp_pdu *o = calloc(1, sizeof(*o));
    assert_non_null(o);
    o->ver = s->ver;
    o->cmd_id = CMPP_DELIVER;
    o->seq = seq;
    o->u.deliver.msg_id = msg_id;
    snprintf(o->u.deliver.dest_id, sizeof(o->u.deliver.dest_id), "10658");
    snprintf(o->u.deliver.src_terminal_id, sizeof(o->u.deliver.src_terminal_id), "8613800000009");
    if (report) {
        o->u.deliver.msg_fmt = CMPP_FMT_ASCII;
        o->u.deliver.registered_delivery = 1;
        o->u.deliver.report.msg_id = report_of;
        snprintf(o->u.deliver.report.stat, sizeof(o->u.deliver.report.stat), "DELIVRD");
        snprintf(o->u.deliver.report.submit_time, sizeof(o->u.deliver.report.submit_time),
                 "2611251200");
        snprintf(o->u.deliver.report.done_time, sizeof(o->u.deliver.report.done_time),
                 "2611251201");
        snprintf(o->u.deliver.report.dest_terminal_id, sizeof(o->u.deliver.report.dest_terminal_id),
                 "8613800000009");
    } else {
        o->u.deliver.msg_fmt = CMPP_FMT_BINARY;
        o->u.deliver.tp_pid = 0x7f;
        o->u.deliver.msg_len = 3;
        memcpy(o->u.deliver.msg_content, "\x01\x02\x03", 3);
    }
    ismg_write(s, o);
    free(o);
}

/*
 * BEARER_ACK_LATER: no DELIVER_RESP until bearer_release_acks, then exactly
 * one per report (Result 0, its Sequence_Id and Msg_Id, arrival order); none
 * after a discard or a drop, and the ISMG's redelivery reaches the callback.
 */
static void test_deliver_ack_later(void **state)
{
    (void)state;
    struct sp p;
    sp_start(&p, CMPP_V30, SECRET);
    run_until(&p, &p.n_up, 1, 3.0);
    p.mo_rc = BEARER_ACK_LATER;
    p.dlr_rc = BEARER_ACK_LATER;
    ismg_deliver(&p.ismg, 801, 0x1111000000000001ull, false, 0);
    ismg_deliver(&p.ismg, 802, 0x1111000000000002ull, true, 0x2222000000000002ull);
    run_until(&p, &p.n_dlr, 1, 2.0);
    run_until(&p, NULL, 0, 0.1);
    assert_int_equal(p.n_mo, 1);
    assert_int_equal(p.n_dlr, 1);
    assert_string_equal(p.dlr_id[0], "2222000000000002");
    assert_int_equal(bearer_held_acks(p.b), 2);
    assert_int_equal(p.ismg.n_deliver_resp, 0);
    bearer_release_acks(p.b);
    assert_int_equal(bearer_held_acks(p.b), 0);
    run_until(&p, &p.ismg.n_deliver_resp, 2, 2.0);
    run_until(&p, NULL, 0, 0.1);
    assert_int_equal(p.ismg.n_deliver_resp, 2);
    assert_int_equal(p.ismg.dr_seq[0], 801);
    assert_true(p.ismg.dr_id[0] == 0x1111000000000001ull);
    assert_int_equal(p.ismg.dr_result[0], CMPP_RES_OK);
    assert_int_equal(p.ismg.dr_seq[1], 802);
    assert_true(p.ismg.dr_id[1] == 0x1111000000000002ull);
    assert_int_equal(p.ismg.dr_result[1], CMPP_RES_OK);
    bearer_release_acks(p.b);
    run_until(&p, NULL, 0, 0.05);
    assert_int_equal(p.ismg.n_deliver_resp, 2); /* once each */

    /* discarded (the caller's commit failed): never answered, redelivery taken again */
    ismg_deliver(&p.ismg, 803, 0x1111000000000003ull, false, 0);
    run_until(&p, &p.n_mo, 2, 2.0);
    assert_int_equal(bearer_held_acks(p.b), 1);
    bearer_discard_acks(p.b);
    bearer_release_acks(p.b);
    run_until(&p, NULL, 0, 0.1);
    assert_int_equal(p.ismg.n_deliver_resp, 2);
    ismg_deliver(&p.ismg, 803, 0x1111000000000003ull, false, 0);
    run_until(&p, &p.n_mo, 3, 2.0);
    assert_int_equal(p.n_mo, 3);
    bearer_release_acks(p.b);
    run_until(&p, &p.ismg.n_deliver_resp, 3, 2.0);
    assert_int_equal(p.ismg.n_deliver_resp, 3);
    assert_int_equal(p.ismg.dr_seq[2], 803);

    /* held when the connection drops: forgotten, the ISMG delivers it again */
    ismg_deliver(&p.ismg, 804, 0x1111000000000004ull, false, 0);
    run_until(&p, &p.n_mo, 4, 2.0);
    assert_int_equal(bearer_held_acks(p.b), 1);
    ismg_close(&p.ismg);
    run_until(&p, &p.n_down, 1, 2.0);
    assert_int_equal(p.n_down, 1);
    assert_int_equal(bearer_held_acks(p.b), 0);
    run_until(&p, &p.n_up, 2, 3.0);
    assert_int_equal(p.n_up, 2);
    bearer_release_acks(p.b);
    run_until(&p, NULL, 0, 0.1);
    assert_int_equal(p.ismg.n_deliver_resp, 3);
    p.mo_rc = 0;
    ismg_deliver(&p.ismg, 804, 0x1111000000000004ull, false, 0);
    run_until(&p, &p.ismg.n_deliver_resp, 4, 2.0);
    assert_int_equal(p.n_mo, 5);
    assert_int_equal(p.ismg.n_deliver_resp, 4);
    assert_int_equal(p.ismg.dr_seq[3], 804);
    assert_int_equal(bearer_acks_refused(p.b), 0);

    /* shutdown with an ack held: TERMINATE goes, the DELIVER_RESP does not */
    p.mo_rc = BEARER_ACK_LATER;
    ismg_deliver(&p.ismg, 805, 0x1111000000000005ull, false, 0);
    run_until(&p, &p.n_mo, 6, 2.0);
    assert_int_equal(bearer_held_acks(p.b), 1);
    bearer_shutdown(p.b);
    assert_int_equal(bearer_held_acks(p.b), 0);
    run_until(&p, &p.ismg.n_term, 1, 1.0);
    assert_int_equal(p.ismg.n_term, 1);
    assert_int_equal(p.ismg.n_deliver_resp, 4);
    sp_stop(&p);
}

/*
 * A release larger than the link's output buffer (3000 DELIVER_RESPs of 24
 * octets > 64 KiB): handed to the socket on the way, none lost, link kept.
 */
static void test_release_many_acks(void **state)
{
    (void)state;
    struct sp p;
    sp_start(&p, CMPP_V30, SECRET);
    run_until(&p, &p.n_up, 1, 3.0);
    p.mo_rc = BEARER_ACK_LATER;
    const unsigned n = 3000;
    for (unsigned i = 0; i < n; i += 100) {
        for (unsigned k = i; k < i + 100; k++) {
            ismg_deliver(&p.ismg, 10000 + k, 0x3000000000000000ull + k, false, 0);
        }
        run_until(&p, &p.n_mo, i + 100, 2.0);
    }
    assert_int_equal(p.n_mo, n);
    assert_int_equal(bearer_held_acks(p.b), n);
    assert_int_equal(p.ismg.n_deliver_resp, 0);
    bearer_release_acks(p.b);
    run_until(&p, &p.ismg.n_deliver_resp, n, 4.0);
    assert_int_equal(p.ismg.n_deliver_resp, n);
    assert_int_equal(p.ismg.dr_seq[0], 10000);
    assert_int_equal(p.ismg.dr_seq[15], 10015);
    assert_true(p.ismg.deliver_resp_id == 0x3000000000000000ull + n - 1);
    assert_int_equal(p.n_down, 0);
    sp_stop(&p);
}

/* ACTIVE_TEST both ways; an ISMG that stops answering is dropped after N tries. */
static void test_heartbeat(void **state)
{
    (void)state;
    struct sp p;
    sp_start(&p, CMPP_V30, SECRET);
    sp_start_hb(&p, CMPP_V30, 1);
    p.n_up = 0;
    p.n_down = 0;
    run_until(&p, &p.n_up, 1, 3.0);
    assert_int_equal(p.n_up, 1);
    /* the ISMG's heartbeat is answered */
    struct cmpp_pdu at;
    memset(&at, 0, sizeof(at));
    at.ver = CMPP_V30;
    at.cmd_id = CMPP_ACTIVE_TEST;
    at.seq = 4242;
    ismg_write(&p.ismg, &at);
    run_until(&p, &p.ismg.n_at_resp, 1, 1.0);
    assert_int_equal(p.ismg.n_at_resp, 1);
    /* ours after 1 s of silence */
    run_until(&p, &p.ismg.n_at, 1, 2.5);
    assert_int_equal(p.ismg.n_at, 1);
    assert_int_equal(p.n_down, 0);
    /* now the ISMG goes silent: 3 ACTIVE_TESTs T apart, then a drop and a reconnect */
    p.ismg.answer_at = false;
    unsigned at0 = p.ismg.n_at;
    run_until(&p, &p.n_down, 1, 4.0);
    assert_int_equal(p.n_down, 1);
    assert_int_equal(p.ismg.n_at - at0, 3);
    assert_non_null(strstr(p.last_why, "ACTIVE_TEST"));
    run_until(&p, &p.n_up, 2, 2.0);
    assert_int_equal(p.n_up, 2);
    sp_stop(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_secret),      cmocka_unit_test(test_bad_conf),
        cmocka_unit_test(test_window_dlr_v30),    cmocka_unit_test(test_window_dlr_v20),
        cmocka_unit_test(test_flow_control),      cmocka_unit_test(test_drop_mid_window),
        cmocka_unit_test(test_resp_timeout),      cmocka_unit_test(test_mo_ack_after_callback),
        cmocka_unit_test(test_heartbeat),         cmocka_unit_test(test_deliver_ack_later),
        cmocka_unit_test(test_release_many_acks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
