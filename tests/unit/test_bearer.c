/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the bearer core (smpp/bearer.c) through an in-memory link
 * kind: the fake link records every part put on the wire and answers by a
 * per-test policy from an ev_idle watcher (as a peer's I/O would wake the loop). Covers the
 * promises of smpp/bearer.h: order kept through a throttle (issue #4 "Lessons"), one result per
 * part, rate counting every part, back-pressure and the ready callback, hold expiry, priority,
 * resend in order after a link drop, argument checks and message id canonicalisation, and
 * deferred acknowledgements (BEARER_ACK_LATER): held until release, forgotten on discard, drop and
 * shutdown, bounded per link.
 */
#include "smpp/bearer.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smpp/bearer_int.h"

#define MAX_WIRE 512
#define MAX_TOK 256
#define MAX_ACKS (BEARER_HELD_ACKS_MAX + 64)

enum policy {
    POL_NONE = 0,     /* the test answers by hand */
    POL_OK = 1,       /* accept everything */
    POL_THROTTLE = 2, /* throttle token throttle_tok while throttles_left > 0, else accept */
};

struct wire {
    uint32_t seq;
    uint64_t token;
    char dest[BEARER_ADDR_MAX + 1];
    bool answered;
};

struct fx;

struct fake {
    struct bearer_link *lk;
    struct fx *fx;
    ev_idle answer_w; /* answers what is on the wire, like a peer's I/O would */
    uint32_t next_seq;
};

struct fx {
    struct ev_loop *loop;
    struct bearer *b;
    struct fake *fk;
    bool up_on_connect;
    enum policy pol;
    uint64_t throttle_tok;
    unsigned throttles_left;
    struct wire wire[MAX_WIRE];
    unsigned n_wire;
    uint64_t accepted[MAX_TOK]; /* tokens in the order the network accepted them */
    unsigned n_accepted;
    unsigned n_results;
    unsigned per_tok[MAX_TOK];
    struct bearer_submit_result last[MAX_TOK];
    char msg_id[MAX_TOK][BEARER_MSGID_MAX];
    unsigned n_ready;
    uint64_t ready_next, ready_last; /* on_ready submits these tokens when set */
    unsigned n_throttled_states, n_up_states;
    /* reports and the acks the fake link sent for them */
    int dlr_rc, mo_rc;
    unsigned n_dlr, n_mo;
    bool drop_in_cb;      /* the report callback reports the link lost first */
    uint32_t drop_on_ack; /* send_ack of this ack id drops the link (0: never) */
    uint32_t acks_sent[MAX_ACKS];
    unsigned n_acks_sent;
};

static struct fx *cur_fx; /* the fixture the fake link kind attaches to (test only) */

/* ---- fake link kind -------------------------------------------------------- */

static void fake_answer(struct fx *f, unsigned i, enum bearer_resp r)
{
    char id[24];
    struct wire *w = &f->wire[i];
    w->answered = true;
    if (r == BEARER_RESP_OK) {
        f->accepted[f->n_accepted++] = w->token;
    }
    /* 19 decimal digits: the core must canonicalise to 16 hex digits */
    snprintf(id, sizeof(id), "%llu", (unsigned long long)((1ull << 63) + w->seq));
    assert_int_equal(bearer_link_resp(f->fk->lk, w->seq, r, id, (int)r, bearer_resp_name(r)), 0);
}

static void fake_answer_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w);
    struct fake *fk = (struct fake *)((char *)w - offsetof(struct fake, answer_w));
    struct fx *f = fk->fx;
    if (f->pol == POL_NONE) {
        return;
    }
    for (unsigned i = 0; i < f->n_wire; i++) {
        if (f->wire[i].answered) {
            continue;
        }
        enum bearer_resp r = BEARER_RESP_OK;
        if (f->pol == POL_THROTTLE && f->wire[i].token == f->throttle_tok &&
            f->throttles_left > 0) {
            f->throttles_left--;
            r = BEARER_RESP_THROTTLED;
        }
        fake_answer(f, i, r);
    }
}

static int fake_init(struct bearer_link *lk, struct ota_err *err)
{
    (void)err;
    struct fake *fk = calloc(1, sizeof(*fk));
    assert_non_null(fk);
    fk->lk = lk;
    fk->fx = cur_fx;
    fk->next_seq = 100;
    cur_fx->fk = fk;
    ev_idle_init(&fk->answer_w, fake_answer_cb);
    lk->impl = fk;
    return 0;
}

static void fake_connect(struct bearer_link *lk)
{
    struct fake *fk = lk->impl;
    if (fk->fx->up_on_connect) {
        bearer_link_up(lk, "fake up");
    }
}

static int fake_send(struct bearer_link *lk, const struct bearer_part *p, uint32_t *wire_seq,
                     struct ota_err *err)
{
    (void)err;
    struct fake *fk = lk->impl;
    struct fx *f = fk->fx;
    assert_true(f->n_wire < MAX_WIRE);
    struct wire *w = &f->wire[f->n_wire++];
    w->seq = fk->next_seq++;
    w->token = p->msg.token;
    snprintf(w->dest, sizeof(w->dest), "%s", p->msg.dest);
    w->answered = false;
    *wire_seq = w->seq;
    ev_idle_start(f->loop, &fk->answer_w);
    return 0;
}

static void fake_close(struct bearer_link *lk)
{
    struct fake *fk = lk->impl;
    ev_idle_stop(fk->fx->loop, &fk->answer_w);
}

static void fake_free(struct bearer_link *lk)
{
    free(lk->impl);
    lk->impl = NULL;
}

static void fake_drop(struct fx *f);

/* The fake's acks are a 32-bit report number. */
static struct bearer_ack fake_ack(uint32_t id)
{
    struct bearer_ack a;
    memset(&a, 0, sizeof(a));
    memcpy(a.data, &id, sizeof(id));
    a.len = sizeof(id);
    return a;
}

static void fake_send_ack(struct bearer_link *lk, const struct bearer_ack *a)
{
    struct fake *fk = lk->impl;
    struct fx *f = fk->fx;
    uint32_t id;
    assert_int_equal(a->len, sizeof(id));
    memcpy(&id, a->data, sizeof(id));
    assert_true(lk->state == BEARER_LINK_UP || lk->state == BEARER_LINK_THROTTLED);
    if (f->drop_on_ack && id == f->drop_on_ack) {
        fake_drop(f); /* could not queue it: the connection goes, with this ack */
        return;
    }
    assert_true(f->n_acks_sent < MAX_ACKS);
    f->acks_sent[f->n_acks_sent++] = id;
}

static const struct bearer_link_ops fake_ops = {
    .kind_name = "fake",
    .init = fake_init,
    .connect = fake_connect,
    .send = fake_send,
    .close = fake_close,
    .free = fake_free,
    .send_ack = fake_send_ack,
};

/* The link dropped: unanswered wire entries are dead. */
static void fake_drop(struct fx *f)
{
    for (unsigned i = 0; i < f->n_wire; i++) {
        f->wire[i].answered = true;
    }
    bearer_link_lost(f->fk->lk, "test drop");
}

/* ---- fixture -------------------------------------------------------------------- */

static void on_result(void *arg, const struct bearer_submit_result *r)
{
    struct fx *f = arg;
    assert_true(r->token < MAX_TOK);
    f->per_tok[r->token]++;
    f->last[r->token] = *r;
    snprintf(f->msg_id[r->token], BEARER_MSGID_MAX, "%s", r->msg_id);
    f->n_results++;
}

static struct bearer_msg mk(const char *dest, uint64_t token);

static int fx_dlr(void *arg, const struct bearer_dlr *d)
{
    struct fx *f = arg;
    (void)d;
    f->n_dlr++;
    if (f->drop_in_cb) {
        fake_drop(f);
    }
    return f->dlr_rc;
}

static int fx_mo(void *arg, const struct bearer_mo *m)
{
    struct fx *f = arg;
    (void)m;
    f->n_mo++;
    return f->mo_rc;
}

static void on_ready(void *arg)
{
    struct fx *f = arg;
    struct ota_err e;
    f->n_ready++;
    while (f->ready_next && f->ready_next <= f->ready_last) {
        char dest[16];
        snprintf(dest, sizeof(dest), "861380000%04u", (unsigned)f->ready_next);
        struct bearer_msg m = mk(dest, f->ready_next);
        if (bearer_submit(f->b, &m, &e) == -EAGAIN) {
            return;
        }
        f->ready_next++;
    }
}

static void on_state(void *arg, const char *link, enum bearer_link_state from,
                     enum bearer_link_state to, const char *why)
{
    (void)link;
    (void)from;
    (void)why;
    struct fx *f = arg;
    if (to == BEARER_LINK_THROTTLED) {
        f->n_throttled_states++;
    }
    if (to == BEARER_LINK_UP) {
        f->n_up_states++;
    }
}

static void fx_start(struct fx *f, unsigned window, double rate, unsigned pause_ms)
{
    struct ota_err e;
    memset(f, 0, sizeof(*f));
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    f->up_on_connect = true;
    cur_fx = f;
    struct bearer_cbs cbs = {.submit_result = on_result,
                             .dlr = fx_dlr,
                             .mo = fx_mo,
                             .ready = on_ready,
                             .link_state = on_state,
                             .arg = f};
    assert_int_equal(bearer_new(f->loop, &cbs, &f->b, &e), 0);
    struct bearer_link_conf c;
    bearer_link_conf_defaults(&c, BEARER_KIND_CMPP);
    snprintf(c.name, sizeof(c.name), "fake1");
    snprintf(c.host, sizeof(c.host), "127.0.0.1");
    c.port = 1;
    c.window = window;
    c.rate_per_s = rate;
    c.throttle_pause_ms = pause_ms;
    c.reconnect_min_ms = 10;
    c.reconnect_max_ms = 40;
    assert_int_equal(bearer_add_link_ops(f->b, &c, &fake_ops, &e), 0);
}

static void fx_stop(struct fx *f)
{
    bearer_free(f->b);
    ev_loop_destroy(f->loop);
    cur_fx = NULL;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Run the loop until *counter >= want or max_s passed; returns the elapsed seconds. */
static double run_until_tick(struct fx *f, const unsigned *counter, unsigned want, double max_s,
                             double tick_s)
{
    ev_timer tick;
    ev_timer_init(&tick, tick_cb, tick_s, tick_s);
    ev_timer_start(f->loop, &tick);
    ev_now_update(f->loop);
    ev_tstamp t0 = ev_now(f->loop);
    while ((!counter || *counter < want) && ev_now(f->loop) - t0 < max_s) {
        ev_run(f->loop, EVRUN_ONCE);
    }
    ev_timer_stop(f->loop, &tick);
    return ev_now(f->loop) - t0;
}

static double run_until(struct fx *f, const unsigned *counter, unsigned want, double max_s)
{
    return run_until_tick(f, counter, want, max_s, 0.005);
}

static struct bearer_msg mk(const char *dest, uint64_t token)
{
    struct bearer_msg m;
    memset(&m, 0, sizeof(m));
    snprintf(m.dest, sizeof(m.dest), "%s", dest);
    m.ud[0] = 0x42;
    m.ud_len = 1;
    m.pid = 0x7f;
    m.dcs = 0xf6;
    m.part = 1;
    m.n_parts = 1;
    m.token = token;
    return m;
}

/* ---- tests: bad arguments first --------------------------------------------------- */

static void test_bad_args(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    struct bearer *b = NULL;
    struct bearer_cbs nocb = {0};
    fx_start(&f, 16, 0, 100);
    assert_int_equal(bearer_new(NULL, &nocb, &b, &e), -EINVAL);
    assert_int_equal(bearer_new(f.loop, &nocb, &b, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    assert_null(b);

    struct bearer_msg m = mk("8613800000001", 1);
    snprintf(m.dest, sizeof(m.dest), "86138x");
    assert_int_equal(bearer_submit(f.b, &m, &e), -EINVAL);
    m = mk("", 1);
    assert_int_equal(bearer_submit(f.b, &m, &e), -EINVAL);
    m = mk("8613800000001", 1);
    m.ud_len = BEARER_UD_MAX + 1;
    assert_int_equal(bearer_submit(f.b, &m, &e), -EINVAL);
    m = mk("8613800000001", 1);
    m.part = 3;
    m.n_parts = 2;
    assert_int_equal(bearer_submit(f.b, &m, &e), -EINVAL);
    m = mk("8613800000001", 1);
    m.priority = 4;
    assert_int_equal(bearer_submit(f.b, &m, &e), -EINVAL);

    struct bearer_link_conf c;
    bearer_link_conf_defaults(&c, BEARER_KIND_CMPP);
    snprintf(c.name, sizeof(c.name), "fake1"); /* duplicate name */
    snprintf(c.host, sizeof(c.host), "127.0.0.1");
    c.port = 1;
    assert_int_equal(bearer_add_link_ops(f.b, &c, &fake_ops, &e), -EINVAL);
    snprintf(c.name, sizeof(c.name), "other");
    snprintf(c.host, sizeof(c.host), "ismg.example.com"); /* no DNS on the loop */
    assert_int_equal(bearer_add_link_ops(f.b, &c, &fake_ops, &e), -EINVAL);
    snprintf(c.host, sizeof(c.host), "127.0.0.1");
    c.window = 0;
    assert_int_equal(bearer_add_link_ops(f.b, &c, &fake_ops, &e), -EINVAL);
    assert_int_equal(f.n_results, 0);
    fx_stop(&f);
}

static void test_no_link_is_backpressure(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    memset(&f, 0, sizeof(f));
    f.loop = ev_loop_new(EVFLAG_AUTO);
    struct bearer_cbs cbs = {.submit_result = on_result, .arg = &f};
    assert_int_equal(bearer_new(f.loop, &cbs, &f.b, &e), 0);
    struct bearer_msg m = mk("8613800000001", 1);
    assert_int_equal(bearer_room(f.b), 0);
    assert_int_equal(bearer_submit(f.b, &m, &e), -EAGAIN);
    assert_false(bearer_link_stats(f.b, 0, NULL, NULL));
    bearer_free(f.b);
    ev_loop_destroy(f.loop);
}

static void test_msgid_canon(void **state)
{
    (void)state;
    char out[BEARER_MSGID_MAX];
    struct ota_err e;
    /* CMPP: hex any case, 0x, decimal -> 16 lowercase hex digits */
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_CMPP, "0x1A2B", out, &e), 0);
    assert_string_equal(out, "0000000000001a2b");
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_CMPP, "8000000000000001", out, &e), 0);
    assert_string_equal(out, "8000000000000001");
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_CMPP, "9223372036854775809", out, &e), 0);
    assert_string_equal(out, "8000000000000001");
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_CMPP, "0000000000001A2B", out, &e), 0);
    assert_string_equal(out, "0000000000001a2b");
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_CMPP, "12g4", out, &e), -EINVAL);
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_CMPP, "", out, &e), -EINVAL);
    /* KBOX: lower case, leading zeros of a number dropped */
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_KBOX, "000ABC", out, &e), 0);
    assert_string_equal(out, "abc");
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_KBOX, "000", out, &e), 0);
    assert_string_equal(out, "0");
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_KBOX, "00Ab-12", out, &e), 0);
    assert_string_equal(out, "00ab-12");
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_KBOX, "a b", out, &e), -EINVAL);
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_KBOX, "", out, &e), -EINVAL);
    char longid[BEARER_MSGID_MAX + 2];
    memset(longid, '1', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(bearer_msgid_canon(BEARER_KIND_KBOX, longid, out, &e), -EINVAL);
}

/* ---- tests: behaviour ------------------------------------------------------------- */

/* Parts 1..20 (two handsets, alternating), #5 throttled twice: order per handset kept. */
static void test_throttle_keeps_order(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    fx_start(&f, 16, 0, 20);
    f.pol = POL_THROTTLE;
    f.throttle_tok = 5;
    f.throttles_left = 2;
    for (uint64_t t = 1; t <= 20; t++) {
        struct bearer_msg m = mk(t % 2 ? "8613800000001" : "8613800000002", t);
        assert_int_equal(bearer_submit(f.b, &m, &e), 0);
    }
    assert_int_equal(f.n_results, 0); /* never from inside bearer_submit */
    run_until(&f, &f.n_results, 20, 5.0);
    assert_int_equal(f.n_results, 20);
    assert_int_equal(f.n_accepted, 20);
    for (uint64_t t = 1; t <= 20; t++) {
        assert_int_equal(f.per_tok[t], 1);
        assert_int_equal(f.last[t].status, BEARER_SUBMIT_OK);
    }
    assert_int_equal(f.last[5].attempts, 3);
    assert_int_equal(f.last[6].attempts, 1);
    /* per handset, the network accepted the tokens in increasing order */
    uint64_t prev[2] = {0, 0};
    for (unsigned i = 0; i < f.n_accepted; i++) {
        uint64_t t = f.accepted[i];
        assert_true(t > prev[t % 2]);
        prev[t % 2] = t;
    }
    assert_int_equal(f.n_throttled_states, 2);
    struct bearer_link_stats st;
    const char *name = NULL;
    assert_true(bearer_link_stats(f.b, 0, &name, &st));
    assert_string_equal(name, "fake1");
    assert_int_equal(st.throttled, 2);
    assert_int_equal(st.accepted, 20);
    assert_int_equal(st.submitted, 22);
    assert_int_equal(st.state, BEARER_LINK_UP);
    fx_stop(&f);
}

/* The message id in the result is canonical (decimal from the fake -> 16 hex). */
static void test_result_msgid_canonical(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    fx_start(&f, 16, 0, 20);
    f.pol = POL_OK;
    struct bearer_msg m = mk("8613800000001", 1);
    assert_int_equal(bearer_submit(f.b, &m, &e), 0);
    run_until(&f, &f.n_results, 1, 2.0);
    assert_int_equal(f.n_results, 1);
    /* wire seq 100 -> "9223372036854775908" -> 0x8000000000000064 */
    assert_string_equal(f.msg_id[1], "8000000000000064");
    fx_stop(&f);
}

/* 4 messages x 3 parts at 20 parts/s: 12 tokens, not 4. */
static void test_rate_counts_parts(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    fx_start(&f, 16, 20, 20);
    f.pol = POL_OK;
    uint64_t tok = 1;
    for (int msg = 0; msg < 4; msg++) {
        char dest[16];
        snprintf(dest, sizeof(dest), "86138000000%02d", msg);
        for (uint8_t p = 1; p <= 3; p++) {
            struct bearer_msg m = mk(dest, tok++);
            m.part = p;
            m.n_parts = 3;
            assert_int_equal(bearer_submit(f.b, &m, &e), 0);
        }
    }
    double t = run_until(&f, &f.n_results, 12, 5.0);
    assert_int_equal(f.n_results, 12);
    /* first part on the initial token, 11 more at 20/s: >= 0.55 s */
    assert_true(t >= 0.5);
    assert_true(t < 1.5);
    fx_stop(&f);
}

/* Window 2 -> 8 parts accepted, then -EAGAIN; one answer -> one ready callback. */
static void test_backpressure_ready(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    fx_start(&f, 2, 0, 20);
    f.pol = POL_NONE;
    assert_int_equal(bearer_room(f.b), 8);
    uint64_t t = 1;
    for (; t <= 8; t++) {
        char dest[16];
        snprintf(dest, sizeof(dest), "861380000%04u", (unsigned)t);
        struct bearer_msg m = mk(dest, t);
        assert_int_equal(bearer_submit(f.b, &m, &e), 0);
    }
    assert_int_equal(bearer_room(f.b), 0);
    struct bearer_msg m9 = mk("8613899999999", 9);
    assert_int_equal(bearer_submit(f.b, &m9, &e), -EAGAIN);
    run_until(&f, NULL, 0, 0.05);
    assert_int_equal(f.n_wire, 2); /* window */
    assert_int_equal(f.n_ready, 0);
    fake_answer(&f, 0, BEARER_RESP_OK);
    run_until(&f, &f.n_ready, 1, 1.0);
    assert_int_equal(f.n_ready, 1);
    assert_int_equal(bearer_room(f.b), 1);
    assert_int_equal(f.n_wire, 3); /* the freed window slot was used */
    assert_int_equal(bearer_submit(f.b, &m9, &e), 0);
    run_until(&f, NULL, 0, 0.05);
    assert_int_equal(f.n_ready, 1); /* once per -EAGAIN */
    fx_stop(&f);
    /* bearer_free reported the 8 unanswered parts RETRYABLE, each once */
    assert_int_equal(f.n_results, 9);
    for (uint64_t k = 2; k <= 9; k++) {
        assert_int_equal(f.per_tok[k], 1);
        assert_int_equal(f.last[k].status, BEARER_SUBMIT_RETRYABLE);
    }
}

/*
 * Parts submitted from the ready callback go out at once, with no other event
 * to wake the loop (regression: libev runs prepare watchers once per block).
 */
static void up_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    bearer_link_up(cur_fx->fk->lk, "test up");
}

static void test_submit_from_ready(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    fx_start(&f, 1, 0, 20);
    f.pol = POL_OK;
    f.up_on_connect = false;
    fake_drop(&f); /* down; the reconnect stays "connecting" */
    struct bearer_msg m1 = mk("8613800000001", 1);
    assert_int_equal(bearer_submit(f.b, &m1, &e), -EAGAIN);
    f.ready_next = 1;
    f.ready_last = 40;
    ev_timer up;
    ev_timer_init(&up, up_cb, 0.05, 0.);
    ev_timer_start(f.loop, &up);
    double took = run_until_tick(&f, &f.n_results, 40, 3.0, 2.0); /* the tick never fires */
    assert_int_equal(f.n_results, 40);
    assert_true(took < 1.0);
    fx_stop(&f);
}

/* Held parts expire RETRYABLE; the part on the wire waits for its answer. */
static void test_hold_expiry(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    fx_start(&f, 1, 0, 20);
    f.pol = POL_NONE;
    for (uint64_t t = 1; t <= 3; t++) {
        char dest[16];
        snprintf(dest, sizeof(dest), "86138000000%02u", (unsigned)t);
        struct bearer_msg m = mk(dest, t);
        m.hold_ms = 50;
        assert_int_equal(bearer_submit(f.b, &m, &e), 0);
    }
    run_until(&f, &f.n_results, 2, 2.0);
    assert_int_equal(f.n_results, 2);
    assert_int_equal(f.per_tok[1], 0);
    assert_int_equal(f.last[2].status, BEARER_SUBMIT_RETRYABLE);
    assert_int_equal(f.last[2].code, -ETIMEDOUT);
    assert_int_equal(f.last[2].attempts, 0);
    assert_int_equal(f.last[3].status, BEARER_SUBMIT_RETRYABLE);
    fake_answer(&f, 0, BEARER_RESP_OK);
    run_until(&f, &f.n_results, 3, 1.0);
    assert_int_equal(f.last[1].status, BEARER_SUBMIT_OK);
    assert_int_equal(f.n_results, 3);
    fx_stop(&f);
    assert_int_equal(f.n_results, 3);
}

/* Urgent first; FIFO within one priority. */
static void test_priority(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    fx_start(&f, 2, 0, 20);
    f.pol = POL_OK;
    const uint8_t prio[5] = {0, 0, 3, 1, 3};
    for (uint64_t t = 1; t <= 5; t++) {
        char dest[16];
        snprintf(dest, sizeof(dest), "86138000000%02u", (unsigned)t);
        struct bearer_msg m = mk(dest, t);
        m.priority = prio[t - 1];
        assert_int_equal(bearer_submit(f.b, &m, &e), 0);
    }
    run_until(&f, &f.n_results, 5, 2.0);
    assert_int_equal(f.n_wire, 5);
    const uint64_t want[5] = {3, 5, 4, 1, 2};
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(f.wire[i].token, want[i]);
    }
    fx_stop(&f);
}

/* Final refusal: one FINAL result with the network's code, nothing resent. */
static void test_final(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    fx_start(&f, 4, 0, 20);
    f.pol = POL_NONE;
    struct bearer_msg m = mk("8613800000001", 7);
    assert_int_equal(bearer_submit(f.b, &m, &e), 0);
    run_until(&f, NULL, 0, 0.05);
    assert_int_equal(f.n_wire, 1);
    fake_answer(&f, 0, BEARER_RESP_FINAL);
    run_until(&f, &f.n_results, 1, 1.0);
    assert_int_equal(f.last[7].status, BEARER_SUBMIT_FINAL);
    assert_int_equal(f.last[7].code, BEARER_RESP_FINAL);
    assert_string_equal(f.msg_id[7], "");
    /* a late or duplicate answer is refused, not a second result */
    assert_int_equal(bearer_link_resp(f.fk->lk, f.wire[0].seq, BEARER_RESP_OK, "1", 0, "x"),
                     -ENOENT);
    assert_int_equal(f.n_results, 1);
    fx_stop(&f);
}

/* Link drops with 4 on the wire: after reconnect 1..10 go out in order, none lost. */
static void test_drop_resends_in_order(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    fx_start(&f, 4, 0, 20);
    f.pol = POL_NONE;
    for (uint64_t t = 1; t <= 10; t++) {
        char dest[16];
        snprintf(dest, sizeof(dest), "86138000000%02u", (unsigned)t);
        struct bearer_msg m = mk(dest, t);
        assert_int_equal(bearer_submit(f.b, &m, &e), 0);
    }
    run_until(&f, NULL, 0, 0.05);
    assert_int_equal(f.n_wire, 4);
    fake_answer(&f, 1, BEARER_RESP_OK); /* token 2 accepted before the drop */
    unsigned before = f.n_wire;
    fake_drop(&f);
    assert_int_equal(bearer_room(f.b), 0); /* down: back-pressure */
    f.pol = POL_OK;
    run_until(&f, &f.n_results, 10, 3.0);
    assert_int_equal(f.n_results, 10);
    uint64_t prev = 0;
    for (unsigned i = before; i < f.n_wire; i++) {
        assert_true(f.wire[i].token > prev);
        prev = f.wire[i].token;
    }
    assert_int_equal(f.n_wire - before, 9);
    for (uint64_t t = 1; t <= 10; t++) {
        assert_int_equal(f.per_tok[t], 1);
        assert_int_equal(f.last[t].status, BEARER_SUBMIT_OK);
    }
    assert_int_equal(f.last[1].attempts, 2);
    assert_int_equal(f.last[2].attempts, 1);
    assert_int_equal(f.last[5].attempts, 1);
    struct bearer_link_stats st;
    assert_true(bearer_link_stats(f.b, 0, NULL, &st));
    assert_int_equal(st.reconnects, 1);
    assert_int_equal(st.resent, 3);
    assert_int_equal(f.n_up_states, 2);
    fx_stop(&f);
}

/* Concatenated MO is reassembled; the link acks parts per the callback's answer. */
static int mo_calls;
static int mo_rc;
static size_t mo_len;

static int on_mo(void *arg, const struct bearer_mo *m)
{
    (void)arg;
    mo_calls++;
    mo_len = m->ud_len;
    return mo_rc;
}

static void test_mo_reassembly(void **state)
{
    (void)state;
    struct fx f;
    struct ota_err e;
    fx_start(&f, 4, 0, 20);
    /* replace the callbacks with an MO one: a second bearer on the same loop */
    struct bearer *b2 = NULL;
    struct bearer_cbs cbs = {.submit_result = on_result, .mo = on_mo, .arg = &f};
    assert_int_equal(bearer_new(f.loop, &cbs, &b2, &e), 0);
    struct fx *saved = cur_fx;
    struct bearer_link_conf c;
    bearer_link_conf_defaults(&c, BEARER_KIND_CMPP);
    snprintf(c.name, sizeof(c.name), "mo");
    snprintf(c.host, sizeof(c.host), "127.0.0.1");
    c.port = 1;
    assert_int_equal(bearer_add_link_ops(b2, &c, &fake_ops, &e), 0);
    struct bearer_link *lk = f.fk->lk;
    cur_fx = saved;
    /* part 1/2 and 2/2 of ref 0x42, 8-bit concat IE */
    uint8_t p1[] = {0x05, 0x00, 0x03, 0x42, 0x02, 0x01, 0xAA, 0xBB};
    uint8_t p2[] = {0x05, 0x00, 0x03, 0x42, 0x02, 0x02, 0xCC};
    struct bearer_mo m = {
        .orig = "8613800000001", .dest = "10658", .ud = p1, .ud_len = sizeof(p1), .udhi = true};
    mo_calls = 0;
    mo_rc = -EIO;
    assert_int_equal(bearer_link_mo(lk, &m, NULL), 0); /* held: ack */
    assert_int_equal(mo_calls, 0);
    m.ud = p2;
    m.ud_len = sizeof(p2);
    /*
     * Refused once complete: part 1 is acknowledged already, so the bearer
     * keeps the whole message (acks part 2) and offers it again later.
     */
    assert_int_equal(bearer_link_mo(lk, &m, NULL), 0);
    assert_int_equal(mo_calls, 1);
    assert_int_equal(mo_len, 3);
    mo_len = 0;
    ev_run(f.loop, EVRUN_NOWAIT);
    assert_int_equal(mo_calls, 1); /* not before the retry interval */
    mo_rc = 0;
    for (int i = 0; i < 200 && mo_calls < 2; i++) {
        ev_run(f.loop, EVRUN_ONCE);
    }
    assert_int_equal(mo_calls, 2); /* offered again and taken */
    assert_int_equal(mo_len, 3);
    /* a refused single SMS is simply not acknowledged: the network resends it */
    uint8_t one[] = {0x07};
    m.ud = one;
    m.ud_len = sizeof(one);
    m.udhi = false;
    mo_rc = -EIO;
    assert_int_equal(bearer_link_mo(lk, &m, NULL), -EIO);
    assert_int_equal(mo_calls, 3);
    mo_rc = 0;
    m.udhi = true;
    uint8_t single[] = {0x01, 0x02};
    m.ud = single;
    m.ud_len = sizeof(single);
    m.udhi = false;
    assert_int_equal(bearer_link_mo(lk, &m, NULL), 0);
    assert_int_equal(mo_calls, 4);
    /* malformed UDH: counted, acked, not delivered */
    uint8_t bad[] = {0x09, 0x00};
    m.ud = bad;
    m.ud_len = sizeof(bad);
    m.udhi = true;
    assert_int_equal(bearer_link_mo(lk, &m, NULL), 0);
    assert_int_equal(mo_calls, 4);
    struct bearer_link_stats st;
    assert_true(bearer_link_stats(b2, 0, NULL, &st));
    assert_int_equal(st.bad_pdus, 1);
    assert_int_equal(st.mos, 3);
    assert_int_equal(st.mos_lost, 0);
    bearer_free(b2);
    fx_stop(&f);
}

/* ---- tests: deferred acknowledgements --------------------------------------------- */

/* One report with a valid CMPP id through the fake link, acked by fake ack id. */
static int dlr_in(struct fx *f, uint32_t id)
{
    struct bearer_dlr d;
    memset(&d, 0, sizeof(d));
    snprintf(d.msg_id, sizeof(d.msg_id), "%x", id + 1);
    d.state = BEARER_DLR_DELIVERED;
    d.final = true;
    struct bearer_ack a = fake_ack(id);
    return bearer_link_dlr(f->fk->lk, &d, &a);
}

static int mo_in(struct fx *f, uint32_t id, const uint8_t *ud, size_t len, bool udhi)
{
    struct bearer_mo m = {
        .orig = "8613800000001", .dest = "10658", .ud = ud, .ud_len = len, .udhi = udhi};
    struct bearer_ack a = fake_ack(id);
    return bearer_link_mo(f->fk->lk, &m, &a);
}

static void assert_acks(const struct fx *f, const uint32_t *want, unsigned n)
{
    assert_int_equal(f->n_acks_sent, n);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(f->acks_sent[i], want[i]);
    }
}

/* Held until release, then sent once each, in arrival order; 0 and refusals untouched. */
static void test_ack_later_release(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 4, 0, 20);
    run_until(&f, &f.n_up_states, 1, 1.0);
    f.dlr_rc = BEARER_ACK_LATER;
    for (uint32_t id = 1; id <= 3; id++) {
        assert_int_equal(dlr_in(&f, id), BEARER_ACK_LATER);
    }
    assert_int_equal(f.n_dlr, 3);
    assert_int_equal(bearer_held_acks(f.b), 3);
    run_until(&f, NULL, 0, 0.05);
    assert_int_equal(f.n_acks_sent, 0); /* nothing before the caller's commit */
    f.dlr_rc = 0;
    assert_int_equal(dlr_in(&f, 4), 0); /* the link acks this one itself */
    f.dlr_rc = -EIO;
    assert_int_equal(dlr_in(&f, 5), -EIO);
    f.dlr_rc = 7; /* any positive answer holds: the safe reading */
    assert_int_equal(dlr_in(&f, 6), BEARER_ACK_LATER);
    assert_int_equal(bearer_held_acks(f.b), 4);
    assert_int_equal(f.n_acks_sent, 0);
    bearer_release_acks(f.b);
    const uint32_t want[] = {1, 2, 3, 6};
    assert_acks(&f, want, 4);
    assert_int_equal(bearer_held_acks(f.b), 0);
    bearer_release_acks(f.b); /* each ack once */
    assert_acks(&f, want, 4);
    /* no ack record: nothing can be held, taken counts as ack now */
    f.dlr_rc = BEARER_ACK_LATER;
    struct bearer_dlr d;
    memset(&d, 0, sizeof(d));
    snprintf(d.msg_id, sizeof(d.msg_id), "1");
    assert_int_equal(bearer_link_dlr(f.fk->lk, &d, NULL), 0);
    /* an id that cannot be matched is acked at once, never offered or held */
    unsigned calls = f.n_dlr;
    snprintf(d.msg_id, sizeof(d.msg_id), "xyz");
    struct bearer_ack a = fake_ack(9);
    assert_int_equal(bearer_link_dlr(f.fk->lk, &d, &a), 0);
    assert_int_equal(f.n_dlr, calls);
    assert_int_equal(bearer_held_acks(f.b), 0);
    bearer_release_acks(NULL);
    bearer_discard_acks(NULL);
    assert_int_equal(bearer_held_acks(NULL), 0);
    assert_int_equal(bearer_acks_refused(f.b), 0);
    fx_stop(&f);
}

/* Discard and a link drop forget held acks: never sent, even after a reconnect. */
static void test_ack_later_discard_and_drop(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 4, 0, 20);
    run_until(&f, &f.n_up_states, 1, 1.0);
    f.dlr_rc = BEARER_ACK_LATER;
    assert_int_equal(dlr_in(&f, 1), BEARER_ACK_LATER);
    assert_int_equal(dlr_in(&f, 2), BEARER_ACK_LATER);
    bearer_discard_acks(f.b);
    assert_int_equal(bearer_held_acks(f.b), 0);
    bearer_release_acks(f.b);
    assert_int_equal(f.n_acks_sent, 0);
    /* the network redelivers: taken again, held again, released this time */
    assert_int_equal(dlr_in(&f, 1), BEARER_ACK_LATER);
    bearer_release_acks(f.b);
    const uint32_t want1[] = {1};
    assert_acks(&f, want1, 1);
    /* held on a connection that drops: gone with it */
    assert_int_equal(dlr_in(&f, 3), BEARER_ACK_LATER);
    assert_int_equal(dlr_in(&f, 4), BEARER_ACK_LATER);
    fake_drop(&f);
    assert_int_equal(bearer_held_acks(f.b), 0);
    run_until(&f, &f.n_up_states, 2, 2.0);
    assert_int_equal(f.n_up_states, 2);
    bearer_release_acks(f.b);
    assert_acks(&f, want1, 1);
    assert_int_equal(dlr_in(&f, 5), BEARER_ACK_LATER);
    bearer_release_acks(f.b);
    const uint32_t want2[] = {1, 5};
    assert_acks(&f, want2, 2);
    /* the connection goes inside the callback: its ack is not held */
    f.drop_in_cb = true;
    assert_true(dlr_in(&f, 6) < 0);
    f.drop_in_cb = false;
    assert_int_equal(bearer_held_acks(f.b), 0);
    run_until(&f, &f.n_up_states, 3, 2.0);
    /* a drop while releasing: the rest of that link's acks are not sent */
    for (uint32_t id = 7; id <= 9; id++) {
        assert_int_equal(dlr_in(&f, id), BEARER_ACK_LATER);
    }
    f.drop_on_ack = 8;
    bearer_release_acks(f.b);
    const uint32_t want3[] = {1, 5, 7};
    assert_acks(&f, want3, 3);
    assert_int_equal(bearer_held_acks(f.b), 0);
    run_until(&f, &f.n_up_states, 4, 2.0);
    f.drop_on_ack = 0;
    assert_int_equal(dlr_in(&f, 10), BEARER_ACK_LATER);
    bearer_release_acks(f.b); /* memory reused after the detached release */
    const uint32_t want4[] = {1, 5, 7, 10};
    assert_acks(&f, want4, 4);
    fx_stop(&f);
}

/* Full: refused before the callback (not acked, counted), room again after release. */
static void test_ack_later_cap(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 4, 0, 20);
    run_until(&f, &f.n_up_states, 1, 1.0);
    f.dlr_rc = BEARER_ACK_LATER;
    for (uint32_t id = 1; id <= BEARER_HELD_ACKS_MAX; id++) {
        assert_int_equal(dlr_in(&f, id), BEARER_ACK_LATER);
    }
    assert_int_equal(bearer_held_acks(f.b), BEARER_HELD_ACKS_MAX);
    unsigned calls = f.n_dlr;
    assert_int_equal(dlr_in(&f, 99999), -ENOBUFS);
    assert_int_equal(f.n_dlr, calls); /* the user never saw it */
    uint8_t one[] = {0x07};
    f.mo_rc = 0;
    assert_int_equal(mo_in(&f, 99998, one, sizeof(one), false), -ENOBUFS);
    assert_int_equal(f.n_mo, 0);
    assert_int_equal(bearer_acks_refused(f.b), 2);
    struct bearer_link_stats st;
    assert_true(bearer_link_stats(f.b, 0, NULL, &st));
    assert_int_equal(st.dlrs, BEARER_HELD_ACKS_MAX);
    bearer_release_acks(f.b);
    assert_int_equal(f.n_acks_sent, BEARER_HELD_ACKS_MAX);
    for (unsigned i = 0; i < BEARER_HELD_ACKS_MAX; i++) {
        assert_int_equal(f.acks_sent[i], i + 1);
    }
    assert_int_equal(dlr_in(&f, 99999), BEARER_ACK_LATER);
    assert_int_equal(bearer_held_acks(f.b), 1);
    fx_stop(&f);
}

/* MO: single and reassembled MO hold their ack; a parked MO answered later is taken. */
static void test_ack_later_mo(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 4, 0, 20);
    run_until(&f, &f.n_up_states, 1, 1.0);
    f.mo_rc = BEARER_ACK_LATER;
    uint8_t one[] = {0x07};
    assert_int_equal(mo_in(&f, 1, one, sizeof(one), false), BEARER_ACK_LATER);
    assert_int_equal(f.n_mo, 1);
    uint8_t p1[] = {0x05, 0x00, 0x03, 0x42, 0x02, 0x01, 0xAA};
    uint8_t p2[] = {0x05, 0x00, 0x03, 0x42, 0x02, 0x02, 0xBB};
    assert_int_equal(mo_in(&f, 2, p1, sizeof(p1), true), 0); /* kept for reassembly: ack now */
    assert_int_equal(f.n_mo, 1);
    assert_int_equal(mo_in(&f, 3, p2, sizeof(p2), true), BEARER_ACK_LATER);
    assert_int_equal(f.n_mo, 2);
    assert_int_equal(bearer_held_acks(f.b), 2);
    bearer_release_acks(f.b);
    const uint32_t want[] = {1, 3};
    assert_acks(&f, want, 2);
    /* refused once complete: parked (the last part acked now), then taken for later */
    uint8_t q1[] = {0x05, 0x00, 0x03, 0x43, 0x02, 0x01, 0xAA};
    uint8_t q2[] = {0x05, 0x00, 0x03, 0x43, 0x02, 0x02, 0xBB};
    f.mo_rc = -EIO;
    assert_int_equal(mo_in(&f, 4, q1, sizeof(q1), true), 0);
    assert_int_equal(mo_in(&f, 5, q2, sizeof(q2), true), 0);
    assert_int_equal(f.n_mo, 3);
    assert_int_equal(bearer_held_acks(f.b), 0);
    f.mo_rc = BEARER_ACK_LATER;
    run_until(&f, &f.n_mo, 4, 2.0);
    assert_int_equal(f.n_mo, 4);
    run_until(&f, NULL, 0, 0.6);
    assert_int_equal(f.n_mo, 4); /* taken: not offered again */
    assert_int_equal(bearer_held_acks(f.b), 0);
    struct bearer_link_stats st;
    assert_true(bearer_link_stats(f.b, 0, NULL, &st));
    assert_int_equal(st.mos_lost, 0);
    assert_int_equal(st.mos, 3);
    /* a refused single MO is not held either */
    f.mo_rc = -EIO;
    assert_int_equal(mo_in(&f, 6, one, sizeof(one), false), -EIO);
    assert_int_equal(bearer_held_acks(f.b), 0);
    assert_acks(&f, want, 2);
    fx_stop(&f);
}

/* Shutdown forgets held acks (close never sends them) and later answers hold nothing. */
static void test_ack_later_shutdown(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 4, 0, 20);
    run_until(&f, &f.n_up_states, 1, 1.0);
    f.dlr_rc = BEARER_ACK_LATER;
    assert_int_equal(dlr_in(&f, 1), BEARER_ACK_LATER);
    assert_int_equal(dlr_in(&f, 2), BEARER_ACK_LATER);
    bearer_shutdown(f.b);
    assert_int_equal(bearer_held_acks(f.b), 0);
    bearer_release_acks(f.b);
    assert_int_equal(f.n_acks_sent, 0);
    fx_stop(&f);
    assert_int_equal(f.n_acks_sent, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_no_link_is_backpressure),
        cmocka_unit_test(test_msgid_canon),
        cmocka_unit_test(test_throttle_keeps_order),
        cmocka_unit_test(test_result_msgid_canonical),
        cmocka_unit_test(test_rate_counts_parts),
        cmocka_unit_test(test_backpressure_ready),
        cmocka_unit_test(test_submit_from_ready),
        cmocka_unit_test(test_hold_expiry),
        cmocka_unit_test(test_priority),
        cmocka_unit_test(test_final),
        cmocka_unit_test(test_drop_resends_in_order),
        cmocka_unit_test(test_mo_reassembly),
        cmocka_unit_test(test_ack_later_release),
        cmocka_unit_test(test_ack_later_discard_and_drop),
        cmocka_unit_test(test_ack_later_cap),
        cmocka_unit_test(test_ack_later_mo),
        cmocka_unit_test(test_ack_later_shutdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
