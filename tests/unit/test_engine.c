/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Core paths of the task engine (queue/engine.h) against a fake bearer that
 * records every part, a temporary SQLite store and an ev loop stepped with
 * EVRUN_NOWAIT: submit validation, the push path through the wallet pull,
 * the SCP80 path with real PoRs (built with ota_scp80_por_encode_sms under
 * the keys the hook hands out), bad-CC and mismatched PoRs, retries with a
 * new counter, late and duplicate reports, restart rebuild (dispatched ->
 * retried, submitted -> waiting with its message ids), sequences (a failed
 * step cancels the rest), list jobs with lazy expansion and cancel.
 */
#include "queue/engine.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "ota/ota.h"
#include "queue/eng_int.h" /* the store handle, to inject a full disk */

#define MAX_SENT 256

struct sent {
    struct bearer_msg m;
};

struct fx {
    struct ev_loop *loop;
    struct eng *e;
    struct eng_conf conf;
    struct eng_hooks hooks;
    char dir[64];
    char db[128];
    struct sent sent[MAX_SENT];
    unsigned n_sent;
    bool full;        /* submit answers -EAGAIN */
    int submit_error; /* submit answers this when not 0 */
    unsigned releases, discards;
    unsigned finals;
    unsigned view_mismatch; /* final hook views that differ from the stored task */
    struct {
        int64_t id;
        enum task_state state;
        enum task_reason reason;
    } last_final;
    unsigned accepts;
    int last_accept_rc;
    int64_t last_accept_id;
    unsigned keys_calls;
    bool keys_fail;
    bool no_por; /* the hook's SPI asks for no PoR */
};

static const uint8_t k_kic[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};
static const uint8_t k_kid[16] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                                  0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20};

/* ---- fake bearer and hooks ------------------------------------------------------- */

static int fb_submit(void *arg, const struct bearer_msg *m, struct ota_err *err)
{
    struct fx *f = arg;
    if (f->full || f->n_sent == MAX_SENT) {
        return ota_fail(err, -EAGAIN, OTA_ERR_LIMIT, "full");
    }
    if (f->submit_error) {
        return ota_fail(err, f->submit_error, OTA_ERR_ARG, "refused");
    }
    f->sent[f->n_sent++].m = *m;
    return 0;
}

static void fb_release(void *arg)
{
    ((struct fx *)arg)->releases++;
}

static void fb_discard(void *arg)
{
    ((struct fx *)arg)->discards++;
}

static void fill_keys(struct eng_scp80_keys *out)
{
    memset(out, 0, sizeof(*out));
    out->spi[0] = 0x16; /* CC, ciphered, counter higher */
    out->spi[1] = 0x39; /* PoR always, CC'd, ciphered, via SMS-SUBMIT */
    out->kic = 0x12;    /* KVN 1, AES */
    out->kid = 0x12;    /* KVN 1, AES-CMAC */
    out->cc_len = 8;
    assert_int_equal(ota_key_set(&out->kic_key, OTA_CIPHER_AES, k_kic, 16, NULL), 0);
    assert_int_equal(ota_key_set(&out->kid_key, OTA_CIPHER_AES, k_kid, 16, NULL), 0);
}

static int h_keys(void *arg, const char *seid, const uint8_t tar[3], struct eng_scp80_keys *out,
                  struct ota_err *err)
{
    struct fx *f = arg;
    (void)seid;
    (void)tar;
    f->keys_calls++;
    if (f->keys_fail) {
        return ota_fail(err, -ENOENT, OTA_ERR_KEY, "no keys for this SE");
    }
    fill_keys(out);
    if (f->no_por) {
        out->spi[1] = 0x00;
    }
    return 0;
}

static void h_final(void *arg, const struct eng_task_view *t)
{
    struct fx *f = arg;
    f->finals++;
    f->last_final.id = t->id;
    f->last_final.state = t->state;
    f->last_final.reason = t->reason;
    /* the view (built from memory when the engine can) must be the committed row exactly */
    struct eng_task_view g;
    struct ota_err err;
    if (eng_task_get(f->e, t->id, &g, &err) != 0) {
        f->view_mismatch++;
        return;
    }
    bool same = g.id == t->id && g.job == t->job && g.step == t->step &&
                strcmp(g.seid, t->seid) == 0 && strcmp(g.msisdn, t->msisdn) == 0 && g.op == t->op &&
                g.channel == t->channel && g.state == t->state && g.reason == t->reason &&
                strcmp(g.reason_text, t->reason_text) == 0 && g.prio == t->prio &&
                g.attempts == t->attempts && strcmp(g.params, t->params) == 0 &&
                (g.result == NULL) == (t->result == NULL) &&
                (!g.result || strcmp(g.result, t->result) == 0) && g.created_ms == t->created_ms &&
                g.updated_ms == t->updated_ms;
    if (!same) {
        fprintf(stderr, "final view of task %lld differs from the store: %s/%s %s/%s\n",
                (long long)t->id, t->params, g.params, t->result ? t->result : "-",
                g.result ? g.result : "-");
        f->view_mismatch++;
    }
}

static void h_log(void *arg, int level, const char *msg)
{
    (void)arg;
    (void)level;
    (void)msg;
    if (getenv("ENG_TEST_LOG")) {
        fprintf(stderr, "log %d: %s\n", level, msg);
    }
}

static void on_accept(void *arg, int64_t id, int rc)
{
    struct fx *f = arg;
    f->accepts++;
    f->last_accept_rc = rc;
    f->last_accept_id = id;
}

/* ---- fixture --------------------------------------------------------------------- */

static void fx_open(struct fx *f)
{
    struct ota_err err;
    int rc = eng_open(f->loop, &f->conf, &f->hooks, &f->e, &err);
    if (rc != 0) {
        fail_msg("eng_open: %s", err.msg);
    }
    struct eng_bearer_ops ops = {
        .submit = fb_submit, .release_acks = fb_release, .discard_acks = fb_discard, .arg = f};
    eng_set_bearer(f->e, &ops);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/otagw-eng-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    eng_conf_defaults(&f->conf);
    f->conf.db_path = f->db;
    f->conf.durable = false;
    f->conf.backoff_s = 0; /* retries due at once */
    /* one commit per loop turn: the tests step the loop turn by turn (coalescing: its own test) */
    f->conf.commit_interval_ms = 0;
    f->hooks.scp80_keys = h_keys;
    f->hooks.final = h_final;
    f->hooks.log = h_log;
    f->hooks.arg = f;
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    eng_close(f->e);
    ev_loop_destroy(f->loop);
    unsigned mismatch = f->view_mismatch;
    char p[160];
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s%s", f->db, sfx[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    assert_int_equal(mismatch, 0);
    return 0;
}

static void step(struct fx *f, int n)
{
    for (int i = 0; i < n; i++) {
        ev_run(f->loop, EVRUN_NOWAIT);
    }
}

/* Run the loop until cond(f) or about limit_s seconds passed. */
static bool run_until(struct fx *f, bool (*cond)(struct fx *f), double limit_s)
{
    double t0 = ev_time();
    while (!cond(f)) {
        if (ev_time() - t0 > limit_s) {
            return false;
        }
        ev_run(f->loop, EVRUN_NOWAIT);
        usleep(2000);
    }
    return true;
}

static void reopen(struct fx *f)
{
    eng_close(f->e);
    f->n_sent = 0;
    fx_open(f);
}

static void reg(struct fx *f, const char *seid, const char *msisdn)
{
    struct ota_err err;
    assert_int_equal(eng_se_register(f->e, seid, msisdn, "b1", &err), 0);
}

static int64_t submit(struct fx *f, const char *seid, enum task_op op, enum task_channel ch,
                      const char *params, uint8_t max_attempts)
{
    struct eng_task_spec s = {
        .seid = seid, .op = op, .channel = ch, .params = params, .max_attempts = max_attempts};
    struct ota_err err;
    int64_t id = 0;
    int rc = eng_submit(f->e, &s, on_accept, f, &id, &err);
    if (rc != 0) {
        fail_msg("eng_submit: %s", err.msg);
    }
    return id;
}

static enum task_state state_of(struct fx *f, int64_t id, enum task_reason *r, uint8_t *attempts)
{
    struct eng_task_view v;
    struct ota_err err;
    assert_int_equal(eng_task_get(f->e, id, &v, &err), 0);
    if (r) {
        *r = v.reason;
    }
    if (attempts) {
        *attempts = v.attempts;
    }
    return v.state;
}

static void result(struct fx *f, unsigned i, enum bearer_submit_status st, const char *msg_id)
{
    struct bearer_submit_result r = {.token = f->sent[i].m.token, .status = st, .code = 0};
    snprintf(r.msg_id, sizeof(r.msg_id), "%s", msg_id ? msg_id : "");
    eng_on_submit_result(f->e, &r);
}

static int dlr(struct fx *f, const char *msg_id, enum bearer_dlr_state st, bool final)
{
    struct bearer_dlr d = {.state = st, .final = final};
    snprintf(d.msg_id, sizeof(d.msg_id), "%s", msg_id);
    return eng_on_dlr(f->e, &d);
}

static const char *script_params = "{\"tar\":\"b00010\",\"script\":\"80ca006600\"}";

/* Build a PoR for the command with counter cntr; status, data as given. */
static size_t make_por(uint64_t cntr, uint8_t status, const uint8_t *data, size_t dlen,
                       bool protect, uint8_t *ud, size_t cap)
{
    struct ota_crypto *cx;
    assert_int_equal(ota_crypto_new(&cx, NULL), 0);
    struct eng_scp80_keys k;
    fill_keys(&k);
    struct ota_scp80_cmd cmd = {.kic = k.kic, .kid = k.kid, .cc_len = 8, .cntr = cntr};
    cmd.tar[0] = 0xb0;
    cmd.tar[1] = 0x00;
    cmd.tar[2] = 0x10;
    assert_int_equal(ota_scp80_spi_decode(k.spi, 2, &cmd.spi, NULL), 0);
    struct ota_scp80_keys keys = {&k.kic_key, &k.kid_key};
    struct ota_err err;
    int n = ota_scp80_por_encode_sms(cx, &cmd, &keys, protect, status, data, dlen, ud, cap, &err);
    if (n < 0) {
        fail_msg("por encode: %s", err.msg);
    }
    ota_key_wipe(&k.kic_key);
    ota_key_wipe(&k.kid_key);
    ota_crypto_free(cx);
    return (size_t)n;
}

static int mo(struct fx *f, const char *orig, const uint8_t *ud, size_t len)
{
    struct bearer_mo m = {.orig = orig, .dest = "10658", .ud = ud, .ud_len = len, .udhi = true};
    return eng_on_mo(f->e, &m);
}

/* Counter of the SCP80 part sent at index i: decode it as the card would. */
static uint64_t sent_cntr(struct fx *f, unsigned i)
{
    struct ota_crypto *cx;
    assert_int_equal(ota_crypto_new(&cx, NULL), 0);
    struct eng_scp80_keys k;
    fill_keys(&k);
    struct ota_scp80_keys keys = {&k.kic_key, &k.kid_key};
    const struct bearer_msg *m = &f->sent[i].m;
    assert_int_equal(m->pid, 0x7f);
    assert_int_equal(m->dcs, 0xf6);
    assert_true(m->udhi);
    /* single part: UDH 02 70 00 then the packet */
    assert_int_equal(m->ud[0], 2);
    assert_int_equal(m->ud[1], 0x70);
    uint8_t work[256];
    struct ota_scp80_cmd_rx rx;
    struct ota_err err;
    int rc =
        ota_scp80_cmd_decode(cx, &keys, m->ud + 3, m->ud_len - 3u, work, sizeof(work), &rx, &err);
    if (rc != 0) {
        fail_msg("cmd decode: %s", err.msg);
    }
    assert_memory_equal(rx.data, "\x80\xca\x00\x66\x00", 5);
    ota_key_wipe(&k.kic_key);
    ota_key_wipe(&k.kid_key);
    ota_crypto_free(cx);
    return rx.cntr;
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_submit_validation(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    int64_t id = 0;
    reg(f, "SE01", "8613800000001");
    struct eng_task_spec s = {.seid = "SE01", .op = TASK_OP_SCP80, .channel = TASK_CH_SCP80};

    s.params = "{\"tar\":\"b00010\",\"script\":\"80ca006600\",\"x\":1}";
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -EINVAL);
    s.params = "{\"tar\":\"b0001\",\"script\":\"80ca006600\"}";
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -EINVAL);
    s.params = "{\"tar\":\"b00010\",\"script\":\"80ca00660\"}";
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -EINVAL);
    s.params = "{\"tar\":\"b00010\",\"script\":\"\"}";
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -EINVAL);
    s.params = "[1]";
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -EINVAL);
    s.params = script_params;
    s.channel = TASK_CH_PUSH;
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -EINVAL);
    s.channel = TASK_CH_SCP80;
    s.prio = 4;
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -EINVAL);
    s.prio = 0;
    s.not_before_ms = (int64_t)(ev_time() * 1000) + 400LL * 86400 * 1000;
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -EINVAL);
    s.not_before_ms = (int64_t)(ev_time() * 1000) + 10000;
    s.deadline_ms = s.not_before_ms - 1;
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -EINVAL);
    s.not_before_ms = 0;
    s.deadline_ms = 0;
    s.seid = "NOPE";
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -ENOENT);
    s.seid = "SE01";
    s.op = TASK_OP_PUSH;
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -EINVAL);

    struct eng_stats st;
    eng_stats(f->e, &st);
    assert_int_equal(st.accepted, 0);
    assert_int_equal(st.queued, 0);

    /* a good one: accepted only after the commit */
    id = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    assert_true(id > 0);
    assert_int_equal(f->accepts, 0);
    f->full = true; /* keep it from going anywhere */
    step(f, 1);
    assert_int_equal(f->accepts, 1);
    assert_int_equal(f->last_accept_rc, 0);
    assert_int_equal(f->last_accept_id, id);
    /* re-registering with another MSISDN is refused; the same one is fine */
    assert_int_equal(eng_se_register(f->e, "SE01", "8613800000009", "", &err), -EEXIST);
    assert_int_equal(eng_se_register(f->e, "SE01", "8613800000001", "", &err), 0);
}

static void test_scp80_por_done(void **state)
{
    struct fx *f = *state;
    reg(f, "SE01", "8613800000001");
    int64_t id = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    assert_int_equal(f->n_sent, 1);
    assert_string_equal(f->sent[0].m.dest, "8613800000001");
    assert_int_equal(f->sent[0].m.token >> 16, (uint64_t)id);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_DISPATCHED);
    assert_int_equal(sent_cntr(f, 0), 1);

    result(f, 0, BEARER_SUBMIT_OK, "abc1");
    step(f, 1);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_SUBMITTED);
    assert_int_equal(dlr(f, "abc1", BEARER_DLR_ACCEPTED, false), 0); /* intermediate */
    assert_int_equal(dlr(f, "abc1", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    unsigned rel = f->releases;
    step(f, 1);
    assert_true(f->releases > rel);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_DELIVERED);
    /* the same DLR again: duplicate, nothing changes */
    assert_int_equal(dlr(f, "abc1", BEARER_DLR_FAILED, true), BEARER_ACK_LATER);
    step(f, 1);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_DELIVERED);

    /* a PoR for another counter: mismatched, still waiting */
    uint8_t ud[160];
    static const uint8_t rsp[] = {0x01, 0x90, 0x00}; /* compact: 1 executed, 9000 */
    size_t n = make_por(7, 0x00, rsp, sizeof(rsp), true, ud, sizeof(ud));
    assert_int_equal(mo(f, "8613800000001", ud, n), BEARER_ACK_LATER);
    step(f, 1);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_DELIVERED);
    /* the right one */
    n = make_por(1, 0x00, rsp, sizeof(rsp), true, ud, sizeof(ud));
    assert_int_equal(mo(f, "8613800000001", ud, n), BEARER_ACK_LATER);
    step(f, 1);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_DONE);
    assert_int_equal(f->finals, 1);
    assert_int_equal(f->last_final.id, id);
    assert_int_equal(f->last_final.state, TASK_DONE);
    struct eng_task_view v;
    struct ota_err err;
    assert_int_equal(eng_task_get(f->e, id, &v, &err), 0);
    assert_non_null(v.result);
    assert_non_null(strstr(v.result, "\"por_status\":\"00\""));
    assert_non_null(strstr(v.result, "019000"));
    /* the PoR again: the task is final, the MSISDN known: late */
    assert_int_equal(mo(f, "8613800000001", ud, n), BEARER_ACK_LATER);
    /* from nobody we know: unknown */
    assert_int_equal(mo(f, "8613899999999", ud, n), BEARER_ACK_LATER);
    step(f, 1);
    struct eng_stats st;
    eng_stats(f->e, &st);
    assert_int_equal(st.done, 1);
    assert_int_equal(st.mismatched, 1);
    assert_int_equal(st.duplicate, 1);
    assert_true(st.late >= 1);
    assert_int_equal(st.unknown, 1);
    assert_int_equal(st.active, 0);
    assert_int_equal(st.illegal_transitions, 0);
}

static void test_scp80_card_sw_and_status(void **state)
{
    struct fx *f = *state;
    reg(f, "SE01", "8613800000001");
    reg(f, "SE02", "8613800000002");
    int64_t a = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    int64_t b = submit(f, "SE02", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    assert_int_equal(f->n_sent, 2);
    result(f, 0, BEARER_SUBMIT_OK, "m1");
    result(f, 1, BEARER_SUBMIT_OK, "m2");
    step(f, 1);
    uint8_t ud[160];
    static const uint8_t bad[] = {0x01, 0x6a, 0x82};
    size_t n = make_por(1, 0x00, bad, sizeof(bad), true, ud, sizeof(ud));
    /* a PoR overtaking its DLR is legal: submitted -> failed card-sw */
    assert_int_equal(mo(f, "8613800000001", ud, n), BEARER_ACK_LATER);
    /* unprotected error PoR (as cards send them): TAR unknown -> por-status */
    n = make_por(1, 0x09, NULL, 0, false, ud, sizeof(ud));
    assert_int_equal(mo(f, "8613800000002", ud, n), BEARER_ACK_LATER);
    step(f, 1);
    enum task_reason r;
    assert_int_equal(state_of(f, a, &r, NULL), TASK_FAILED);
    assert_int_equal(r, TASK_R_CARD_SW);
    assert_int_equal(state_of(f, b, &r, NULL), TASK_FAILED);
    assert_int_equal(r, TASK_R_POR_STATUS);
}

static bool no_active(struct fx *f)
{
    struct eng_stats st;
    eng_stats(f->e, &st);
    return st.active == 0;
}

static void test_por_bad_cc_timeout(void **state)
{
    struct fx *f = *state;
    eng_close(f->e);
    f->conf.por_timeout_s = 1;
    f->conf.want_dlr = false;
    fx_open(f);
    reg(f, "SE01", "8613800000001");
    int64_t id = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    result(f, 0, BEARER_SUBMIT_OK, "m1");
    step(f, 1);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_SUBMITTED);
    uint8_t ud[160];
    static const uint8_t rsp[] = {0x01, 0x90, 0x00};
    size_t n = make_por(1, 0x00, rsp, sizeof(rsp), true, ud, sizeof(ud));
    ud[n - 1] ^= 0x01; /* breaks the checksum (or the deciphering) */
    assert_int_equal(mo(f, "8613800000001", ud, n), BEARER_ACK_LATER);
    /* an unprotected "ok" is never trusted either */
    n = make_por(1, 0x00, rsp, sizeof(rsp), false, ud, sizeof(ud));
    assert_int_equal(mo(f, "8613800000001", ud, n), BEARER_ACK_LATER);
    step(f, 1);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_SUBMITTED);
    assert_true(run_until(f, no_active, 5.0));
    enum task_reason r;
    assert_int_equal(state_of(f, id, &r, NULL), TASK_FAILED);
    assert_int_equal(r, TASK_R_POR_BAD_CC);
    struct eng_stats st;
    eng_stats(f->e, &st);
    assert_int_equal(st.mismatched, 2);
}

static void test_retry_new_counter_then_reject(void **state)
{
    struct fx *f = *state;
    reg(f, "SE01", "8613800000001");
    int64_t id = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 3);
    step(f, 2);
    assert_int_equal(f->n_sent, 1);
    result(f, 0, BEARER_SUBMIT_RETRYABLE, NULL);
    step(f, 3);
    assert_int_equal(f->n_sent, 2);
    uint8_t att;
    assert_int_equal(state_of(f, id, NULL, &att), TASK_DISPATCHED);
    assert_int_equal(att, 2);
    assert_int_equal(sent_cntr(f, 1), 2); /* a new counter for the new attempt */
    /* the first attempt's result coming again is late */
    result(f, 0, BEARER_SUBMIT_OK, "old");
    result(f, 1, BEARER_SUBMIT_FINAL, NULL);
    step(f, 1);
    enum task_reason r;
    assert_int_equal(state_of(f, id, &r, NULL), TASK_FAILED);
    assert_int_equal(r, TASK_R_BEARER_REJECTED);
    struct eng_stats st;
    eng_stats(f->e, &st);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.failed, 1);
}

static void test_dlr_failed_exhausts(void **state)
{
    struct fx *f = *state;
    reg(f, "SE01", "8613800000001");
    int64_t id = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 2);
    step(f, 2);
    result(f, 0, BEARER_SUBMIT_OK, "a1");
    assert_int_equal(dlr(f, "a1", BEARER_DLR_EXPIRED, true), BEARER_ACK_LATER);
    step(f, 3);
    assert_int_equal(f->n_sent, 2);
    result(f, 1, BEARER_SUBMIT_OK, "a2");
    assert_int_equal(dlr(f, "a2", BEARER_DLR_FAILED, true), BEARER_ACK_LATER);
    step(f, 2);
    enum task_reason r;
    uint8_t att;
    assert_int_equal(state_of(f, id, &r, &att), TASK_FAILED);
    assert_int_equal(r, TASK_R_DLR_FAILED);
    assert_int_equal(att, 2);
    assert_int_equal(f->n_sent, 2);
    /*
     * A report for the final task: late. The store keeps the message ids of
     * the current attempt only, so the first attempt's id is unknown by now.
     */
    assert_int_equal(dlr(f, "a2", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    assert_int_equal(dlr(f, "a1", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    assert_int_equal(dlr(f, "zz", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    step(f, 1);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_FAILED);
    struct eng_stats st;
    eng_stats(f->e, &st);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.unknown, 2);
}

static void test_push_pull_complete(void **state)
{
    struct fx *f = *state;
    reg(f, "a000000151000000", "8613800000003");
    int64_t id = submit(f, "a000000151000000", TASK_OP_PUSH, TASK_CH_PUSH, "{}", 0);
    step(f, 2);
    assert_int_equal(f->n_sent, 1);
    struct ota_push p;
    struct ota_err err;
    assert_int_equal(ota_push_decode(f->sent[0].m.ud, f->sent[0].m.ud_len, &p, &err), 0);
    assert_int_equal(p.dst_port, 2948);
    assert_int_equal(p.seid_len, 8);
    assert_int_equal(f->sent[0].m.pid, OTA_PUSH_TP_PID);
    result(f, 0, BEARER_SUBMIT_OK, "p1");
    assert_int_equal(dlr(f, "p1", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    step(f, 1);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_DELIVERED);

    int64_t t = 0;
    uint8_t wrong[16] = {0};
    assert_int_equal(eng_pull(f->e, "a000000151000000", wrong, &t, &err), -ENOENT);
    assert_int_equal(eng_pull(f->e, "other", p.serial, &t, &err), -ENOENT);
    assert_int_equal(eng_task_complete(f->e, id, TASK_R_NONE, NULL, &err), -EINVAL);
    assert_int_equal(eng_pull(f->e, "a000000151000000", p.serial, &t, &err), 0);
    assert_int_equal(t, id);
    assert_int_equal(eng_pull(f->e, "a000000151000000", p.serial, &t, &err), -EALREADY);
    assert_int_equal(eng_task_complete(f->e, id, TASK_R_NONE, "not json", &err), -EINVAL);
    assert_int_equal(eng_task_complete(f->e, id, TASK_R_NONE, "{\"sw\":\"9000\"}", &err), 0);
    step(f, 1);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_DONE);
    assert_int_equal(f->last_final.state, TASK_DONE);
    /* the serial stays used after the task ended; another SE naming it learns nothing */
    assert_int_equal(eng_pull(f->e, "a000000151000000", p.serial, &t, &err), -EALREADY);
    assert_int_equal(eng_pull(f->e, "other", p.serial, &t, &err), -ENOENT);
}

static void test_cancel_terminate(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    reg(f, "SE01", "8613800000001");
    int64_t a = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    int64_t b = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    assert_int_equal(f->n_sent, 1); /* single link per SE: b waits */
    int64_t act = 0, q[4];
    size_t nq = 0;
    assert_int_equal(eng_se_tasks(f->e, "SE01", &act, q, 4, &nq, &err), 0);
    assert_int_equal(act, a);
    assert_int_equal(nq, 1);
    assert_int_equal(q[0], b);
    assert_int_equal(eng_task_cancel(f->e, a, &err), -EBUSY);
    assert_int_equal(eng_task_terminate(f->e, b, &err), -EINVAL);
    assert_int_equal(eng_task_cancel(f->e, b, &err), 0);
    assert_int_equal(eng_task_cancel(f->e, b, &err), -EALREADY);
    assert_int_equal(eng_task_cancel(f->e, 999, &err), -ENOENT);
    assert_int_equal(eng_task_terminate(f->e, a, &err), 0);
    step(f, 1);
    enum task_reason r;
    assert_int_equal(state_of(f, a, &r, NULL), TASK_CANCELLED);
    assert_int_equal(r, TASK_R_TERMINATED);
    assert_int_equal(state_of(f, b, &r, NULL), TASK_CANCELLED);
    assert_int_equal(r, TASK_R_CANCELLED);
    /* the terminated task's submit result: late, nothing changes */
    result(f, 0, BEARER_SUBMIT_OK, "x");
    step(f, 1);
    assert_int_equal(state_of(f, a, NULL, NULL), TASK_CANCELLED);
    struct eng_stats st;
    eng_stats(f->e, &st);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.cancelled, 2);
}

static void test_no_keys_and_backpressure(void **state)
{
    struct fx *f = *state;
    reg(f, "SE01", "8613800000001");
    reg(f, "SE02", "8613800000002");
    reg(f, "SE03", "");
    f->keys_fail = true;
    int64_t a = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    int64_t c = submit(f, "SE03", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    int64_t d = submit(f, "SE02", TASK_OP_APP_LOCK, TASK_CH_SCP80, "{}", 0);
    step(f, 2);
    enum task_reason r;
    assert_int_equal(state_of(f, a, &r, NULL), TASK_FAILED);
    assert_int_equal(r, TASK_R_NO_KEYS);
    assert_int_equal(state_of(f, c, &r, NULL), TASK_FAILED);
    assert_int_equal(r, TASK_R_SE_UNKNOWN);
    assert_int_equal(state_of(f, d, &r, NULL), TASK_FAILED);
    assert_int_equal(r, TASK_R_UNSUPPORTED); /* no build_script hook */
    f->keys_fail = false;
    f->full = true;
    int64_t b = submit(f, "SE02", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    assert_int_equal(f->n_sent, 0);
    struct eng_stats st;
    eng_stats(f->e, &st);
    assert_int_equal(st.waiting_bearer, 1);
    f->full = false;
    eng_on_ready(f->e);
    assert_int_equal(f->n_sent, 1);
    eng_stats(f->e, &st);
    assert_int_equal(st.waiting_bearer, 0);
    assert_int_equal(state_of(f, b, NULL, NULL), TASK_DISPATCHED);
}

static void test_bearer_refuses_part(void **state)
{
    struct fx *f = *state;
    reg(f, "SE01", "8613800000001");
    reg(f, "SE02", "8613800000002");
    f->submit_error = -EINVAL;
    int64_t a = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 3);
    step(f, 3);
    enum task_reason r;
    uint8_t att;
    assert_int_equal(state_of(f, a, &r, &att), TASK_FAILED); /* invalid: no retry */
    assert_int_equal(r, TASK_R_BEARER_REJECTED);
    assert_int_equal(att, 1);
    f->submit_error = -ENOMEM;
    int64_t b = submit(f, "SE02", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 2);
    step(f, 6);
    assert_int_equal(state_of(f, b, &r, &att), TASK_FAILED); /* retried, then given up */
    assert_int_equal(r, TASK_R_BEARER_TIMEOUT);
    assert_int_equal(att, 2);
    assert_int_equal(f->n_sent, 0);
}

static void test_spi_without_por(void **state)
{
    struct fx *f = *state;
    f->no_por = true;
    reg(f, "SE01", "8613800000001");
    int64_t a = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    result(f, 0, BEARER_SUBMIT_OK, "n1");
    assert_int_equal(dlr(f, "n1", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    step(f, 1);
    assert_int_equal(state_of(f, a, NULL, NULL), TASK_DONE); /* delivery is all there is */
}

static void test_garbage_reports(void **state)
{
    struct fx *f = *state;
    reg(f, "SE01", "8613800000001");
    int64_t a = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    /* a submit result naming no task of ours, a DLR with an id no bearer gives, MOs from
     * nowhere and a truncated PoR from the SE's own number: recorded, never fatal */
    struct bearer_submit_result r = {.token = 0xffff, .status = BEARER_SUBMIT_OK};
    snprintf(r.msg_id, sizeof(r.msg_id), "x");
    eng_on_submit_result(f->e, &r);
    struct bearer_dlr d = {.state = BEARER_DLR_DELIVERED, .final = true};
    memset(d.msg_id, 'z', sizeof(d.msg_id) - 1);
    assert_int_equal(eng_on_dlr(f->e, &d), BEARER_ACK_LATER);
    d.msg_id[0] = '\0';
    assert_int_equal(eng_on_dlr(f->e, &d), BEARER_ACK_LATER);
    static const uint8_t junk[] = {0x02, 0x71, 0x00, 0x00, 0x05, 0x01};
    char longorig[64];
    memset(longorig, '9', sizeof(longorig) - 1);
    longorig[sizeof(longorig) - 1] = '\0';
    assert_int_equal(mo(f, longorig, junk, sizeof(junk)), BEARER_ACK_LATER);
    assert_int_equal(mo(f, "not-digits", junk, sizeof(junk)), BEARER_ACK_LATER);
    assert_int_equal(mo(f, "8613800000001", junk, sizeof(junk)), BEARER_ACK_LATER);
    assert_int_equal(mo(f, "8613800000001", junk, 1), BEARER_ACK_LATER);
    step(f, 2);
    struct eng_stats st;
    eng_stats(f->e, &st);
    assert_int_equal(st.run, ENG_RUNNING);
    assert_int_equal(st.illegal_transitions, 0);
    assert_int_equal(state_of(f, a, NULL, NULL), TASK_DISPATCHED);
    assert_true(st.unknown + st.late + st.mismatched >= 6);
}

static void test_restart_rebuild(void **state)
{
    struct fx *f = *state;
    reg(f, "SE01", "8613800000001");
    reg(f, "SE02", "8613800000002");
    int64_t a = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    int64_t b = submit(f, "SE02", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    assert_int_equal(f->n_sent, 2);
    unsigned ia = (f->sent[0].m.token >> 16) == (uint64_t)a ? 0 : 1;
    result(f, ia, BEARER_SUBMIT_OK, "ma");
    step(f, 1);
    assert_int_equal(state_of(f, a, NULL, NULL), TASK_SUBMITTED);
    assert_int_equal(state_of(f, b, NULL, NULL), TASK_DISPATCHED);
    reopen(f);
    /* b: parts may have gone; retried with a new counter. a: waits with its message id */
    step(f, 2);
    assert_int_equal(f->n_sent, 1);
    uint8_t att;
    assert_int_equal(state_of(f, b, NULL, &att), TASK_DISPATCHED);
    assert_int_equal(att, 1); /* nothing of the first attempt was accepted: not counted */
    assert_int_equal(sent_cntr(f, 0), 2);
    assert_int_equal(state_of(f, a, NULL, NULL), TASK_SUBMITTED);
    assert_int_equal(dlr(f, "ma", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    step(f, 1);
    assert_int_equal(state_of(f, a, NULL, NULL), TASK_DELIVERED);
    uint8_t ud[160];
    static const uint8_t rsp[] = {0x01, 0x90, 0x00};
    size_t n = make_por(1, 0x00, rsp, sizeof(rsp), true, ud, sizeof(ud));
    assert_int_equal(mo(f, "8613800000001", ud, n), BEARER_ACK_LATER);
    step(f, 1);
    assert_int_equal(state_of(f, a, NULL, NULL), TASK_DONE);
    /* new ids continue after the old ones */
    int64_t c = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    assert_true(c > b);
}

static void test_sequence_step_failed(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    reg(f, "SE01", "8613800000001");
    struct eng_task_spec steps[3];
    for (int i = 0; i < 3; i++) {
        steps[i] = (struct eng_task_spec){.seid = "SE01",
                                          .op = TASK_OP_SCP80,
                                          .channel = TASK_CH_SCP80,
                                          .params = script_params,
                                          .max_attempts = 1};
    }
    struct eng_job_spec js = {.kind = ENG_JOB_SEQUENCE, .steps = steps, .n_steps = 3};
    int64_t job = 0;
    assert_int_equal(eng_job_submit(f->e, &js, on_accept, f, &job, &err), 0);
    step(f, 2);
    assert_int_equal(f->accepts, 1);
    assert_int_equal(f->n_sent, 1);
    int64_t first = (int64_t)(f->sent[0].m.token >> 16);
    result(f, 0, BEARER_SUBMIT_FINAL, NULL);
    step(f, 2);
    assert_int_equal(f->n_sent, 1);
    enum task_reason r;
    assert_int_equal(state_of(f, first, &r, NULL), TASK_FAILED);
    assert_int_equal(state_of(f, first + 1, &r, NULL), TASK_CANCELLED);
    assert_int_equal(r, TASK_R_STEP_FAILED);
    assert_int_equal(state_of(f, first + 2, &r, NULL), TASK_CANCELLED);
    assert_int_equal(r, TASK_R_STEP_FAILED);
    struct eng_job_progress pr;
    assert_int_equal(eng_job_progress(f->e, job, &pr, &err), 0);
    assert_int_equal(pr.total, 3);
    assert_int_equal(pr.counts[TASK_CANCELLED], 2);
    assert_int_equal(pr.counts[TASK_FAILED], 1);
    assert_int_equal(pr.failed_step_task, first);
    assert_int_equal(pr.state, STORE_JOB_DONE);
}

static void test_list_job_expand_cancel(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    eng_close(f->e);
    f->conf.job_chunk = 4;
    fx_open(f);
    char seids[10][8], msisdn[16];
    const char *list[10];
    for (int i = 0; i < 10; i++) {
        snprintf(seids[i], sizeof(seids[i]), "L%02d", i);
        snprintf(msisdn, sizeof(msisdn), "86138000001%02d", i);
        reg(f, seids[i], msisdn);
        list[i] = seids[i];
    }
    struct eng_job_spec js = {
        .kind = ENG_JOB_LIST,
        .tmpl = {.op = TASK_OP_SCP80, .channel = TASK_CH_SCP80, .params = script_params},
        .seids = list,
        .n_seids = 10};
    const char *bad[] = {"L00", "nope"};
    js.seids = bad;
    js.n_seids = 2;
    int64_t job = 0;
    assert_int_equal(eng_job_submit(f->e, &js, NULL, NULL, &job, &err), -ENOENT);
    js.seids = list;
    js.n_seids = 10;
    /* not due for a minute: the expanded tasks stay queued */
    js.tmpl.not_before_ms = (int64_t)(ev_time() * 1000) + 60000;
    assert_int_equal(eng_job_submit(f->e, &js, on_accept, f, &job, &err), 0);
    step(f, 3);
    struct eng_job_progress pr;
    assert_int_equal(eng_job_progress(f->e, job, &pr, &err), 0);
    assert_int_equal(pr.total, 10);
    assert_false(pr.expanded);
    assert_int_equal(pr.counts[TASK_QUEUED], 4); /* one chunk, lazily */
    assert_int_equal(eng_job_pause(f->e, job, true, &err), 0);
    assert_int_equal(eng_job_rate(f->e, job, 5.0, &err), 0);
    assert_int_equal(eng_job_rate(f->e, job, -1.0, &err), -EINVAL);
    assert_int_equal(eng_job_pause(f->e, job, false, &err), 0);
    assert_int_equal(eng_job_cancel(f->e, job, &err), 0);
    assert_int_equal(eng_job_cancel(f->e, job, &err), -EALREADY);
    assert_int_equal(eng_job_pause(f->e, job, true, &err), -EALREADY);
    step(f, 3);
    assert_int_equal(eng_job_progress(f->e, job, &pr, &err), 0);
    assert_int_equal(pr.state, STORE_JOB_CANCELLED);
    assert_int_equal(pr.counts[TASK_QUEUED], 0);
    assert_int_equal(pr.counts[TASK_CANCELLED], 4); /* the rest is never created */
    assert_int_equal(f->n_sent, 0);
    assert_int_equal(eng_job_progress(f->e, 12345, &pr, &err), -ENOENT);
}

static void test_list_job_runs_to_done(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    eng_close(f->e);
    f->conf.job_chunk = 2;
    f->conf.want_dlr = false;
    fx_open(f);
    char seids[5][8], msisdn[16];
    const char *list[5];
    for (int i = 0; i < 5; i++) {
        snprintf(seids[i], sizeof(seids[i]), "D%02d", i);
        snprintf(msisdn, sizeof(msisdn), "86138000002%02d", i);
        reg(f, seids[i], msisdn);
        list[i] = seids[i];
    }
    struct eng_job_spec js = {.kind = ENG_JOB_LIST,
                              .tmpl = {.op = TASK_OP_PUSH, .channel = TASK_CH_PUSH, .params = "{}"},
                              .seids = list,
                              .n_seids = 5};
    eng_close(f->e);
    f->conf.push_wait_pull = false;
    fx_open(f);
    int64_t job = 0;
    assert_int_equal(eng_job_submit(f->e, &js, NULL, NULL, &job, &err), 0);
    unsigned answered = 0;
    for (int round = 0; round < 50 && answered < 5; round++) {
        step(f, 1);
        while (answered < f->n_sent) {
            char id[16];
            snprintf(id, sizeof(id), "j%u", answered);
            result(f, answered, BEARER_SUBMIT_OK, id);
            answered++;
        }
    }
    step(f, 2);
    struct eng_job_progress pr;
    assert_int_equal(eng_job_progress(f->e, job, &pr, &err), 0);
    assert_int_equal(answered, 5);
    assert_int_equal(pr.counts[TASK_DONE], 5);
    assert_true(pr.expanded);
    assert_int_equal(pr.state, STORE_JOB_DONE);
}

static void test_commit_failure_stops(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    reg(f, "SE01", "8613800000001");
    int64_t a = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    assert_int_equal(f->n_sent, 1);
    assert_int_equal(f->accepts, 1);
    /* no page may be added any more: the next batch cannot be committed */
    assert_int_equal(store_test_exec(f->e->st, "PRAGMA max_page_count = 1"), 0);
    static char big[6000];
    char params[6100];
    memset(big, 'a', sizeof(big) - 1);
    snprintf(params, sizeof(params), "{\"pad\":\"%s\"}", big);
    unsigned accepts = f->accepts;
    int rc = 0;
    unsigned staged = 0; /* submits staged before the disk ran full */
    for (int i = 0; i < 20 && rc == 0; i++, staged += rc == 0) {
        struct eng_task_spec s = {
            .seid = "SE01", .op = TASK_OP_APP_LOCK, .channel = TASK_CH_SCP80, .params = params};
        int64_t id;
        rc = eng_submit(f->e, &s, on_accept, f, &id, &err);
    }
    /* the MO's effect is in the same failing batch: its ack must never be released */
    uint8_t ud[160];
    static const uint8_t rsp[] = {0x01, 0x90, 0x00};
    size_t n = make_por(1, 0x00, rsp, sizeof(rsp), true, ud, sizeof(ud));
    if (rc == 0) {
        assert_int_equal(mo(f, "8613800000001", ud, n), BEARER_ACK_LATER);
    }
    unsigned rel = f->releases;
    step(f, 2);
    struct eng_stats st;
    eng_stats(f->e, &st);
    assert_int_equal(st.run, ENG_STOPPED_ERROR);
    assert_int_equal(f->discards, 1);
    assert_int_equal(f->releases, rel);
    /* every staged submit learns that its batch failed */
    assert_int_equal(f->accepts, accepts + staged);
    if (staged) {
        assert_true(f->last_accept_rc < 0);
    }
    int64_t id;
    struct eng_task_spec s = {
        .seid = "SE01", .op = TASK_OP_SCP80, .channel = TASK_CH_SCP80, .params = script_params};
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), -ESHUTDOWN);
    assert_int_equal(eng_task_terminate(f->e, a, &err), -ESHUTDOWN);
    assert_true(eng_flush(f->e, &err) < 0);
    assert_int_equal(mo(f, "8613800000001", ud, n), -ESHUTDOWN);
    /* restart: the store is as of the last commit; the task still waits for its PoR */
    assert_int_equal(store_test_exec(f->e->st, "PRAGMA max_page_count = 1000000"), 0);
    reopen(f);
    uint8_t att;
    assert_int_equal(state_of(f, a, NULL, &att), TASK_QUEUED); /* dispatched: retried */
    assert_int_equal(att, 0); /* no part was accepted: the attempt is not counted */
}

static void test_not_a_por_and_active_deadline(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    reg(f, "SE01", "8613800000001");
    struct eng_task_spec s = {.seid = "SE01",
                              .op = TASK_OP_SCP80,
                              .channel = TASK_CH_SCP80,
                              .params = script_params,
                              .deadline_ms = (int64_t)(ev_time() * 1000) + 1200};
    int64_t id;
    assert_int_equal(eng_submit(f->e, &s, NULL, NULL, &id, &err), 0);
    step(f, 2);
    result(f, 0, BEARER_SUBMIT_OK, "d1");
    step(f, 1);
    /* an ordinary text from the handset: no RPI, not counted against the task */
    static const uint8_t text[] = {'h', 'i'};
    struct bearer_mo m = {.orig = "8613800000001", .ud = text, .ud_len = 2, .udhi = false};
    assert_int_equal(eng_on_mo(f->e, &m), BEARER_ACK_LATER);
    step(f, 1);
    struct eng_stats st;
    eng_stats(f->e, &st);
    assert_int_equal(st.unknown, 1);
    assert_int_equal(st.mismatched, 0);
    assert_true(run_until(f, no_active, 5.0));
    enum task_reason r;
    assert_int_equal(state_of(f, id, &r, NULL), TASK_EXPIRED);
    assert_int_equal(r, TASK_R_DEADLINE);
}

static enum task_reason h_por_result(void *arg, const struct eng_task_view *t, uint8_t status,
                                     const uint8_t *data, size_t len)
{
    (void)arg;
    (void)status;
    /* this platform insists on response data naming the script's TAR */
    assert_string_equal(t->params, script_params);
    return len >= 3 && data[1] == 0x90 ? TASK_R_NONE : TASK_R_CARD_SW;
}

static void test_counter_low_then_timeout_and_hook(void **state)
{
    struct fx *f = *state;
    eng_close(f->e);
    f->conf.por_timeout_s = 1;
    f->conf.want_dlr = false;
    f->hooks.por_result = h_por_result;
    fx_open(f);
    reg(f, "SE01", "8613800000001");
    reg(f, "SE02", "8613800000002");
    int64_t a = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    int64_t b = submit(f, "SE02", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    result(f, 0, BEARER_SUBMIT_OK, "c1");
    result(f, 1, BEARER_SUBMIT_OK, "c2");
    step(f, 1);
    uint8_t ud[160];
    /* the card answers "counter low" for our counter: it ran a copy already; keep waiting */
    size_t n = make_por(1, 0x02, NULL, 0, false, ud, sizeof(ud));
    assert_int_equal(mo(f, "8613800000001", ud, n), BEARER_ACK_LATER);
    /* b: a verified PoR the hook refuses */
    static const uint8_t bad[] = {0x01, 0x6a, 0x82};
    n = make_por(1, 0x00, bad, sizeof(bad), true, ud, sizeof(ud));
    assert_int_equal(mo(f, "8613800000002", ud, n), BEARER_ACK_LATER);
    step(f, 1);
    enum task_reason r;
    assert_int_equal(state_of(f, a, NULL, NULL), TASK_SUBMITTED);
    assert_int_equal(state_of(f, b, &r, NULL), TASK_FAILED);
    assert_int_equal(r, TASK_R_CARD_SW);
    struct eng_stats st;
    eng_stats(f->e, &st);
    assert_int_equal(st.duplicate, 1);
    assert_true(run_until(f, no_active, 5.0));
    assert_int_equal(state_of(f, a, &r, NULL), TASK_FAILED);
    assert_int_equal(r, TASK_R_POR_STALE_COUNTER);
}

static void test_filter_job_and_sequence_done(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    eng_close(f->e);
    f->conf.job_chunk = 2;
    f->conf.want_dlr = false;
    f->conf.push_wait_pull = false;
    fx_open(f);
    const char *ids[] = {"F1", "F2", "F3", "G1", "F4"};
    for (int i = 0; i < 5; i++) {
        char msisdn[16];
        snprintf(msisdn, sizeof(msisdn), "86138000003%02d", i);
        assert_int_equal(eng_se_register(f->e, ids[i], msisdn, i == 1 ? "other" : "b1", &err), 0);
    }
    /* F1..F9 in batch b1: F1, F3, F4 (F2 is in another batch, G1 out of range) */
    struct eng_job_spec js = {.kind = ENG_JOB_FILTER,
                              .tmpl = {.op = TASK_OP_PUSH, .channel = TASK_CH_PUSH, .params = "{}"},
                              .seid_lo = "F1",
                              .seid_hi = "F9",
                              .batch = "b1"};
    int64_t job = 0;
    assert_int_equal(eng_job_submit(f->e, &js, NULL, NULL, &job, &err), 0);
    /* a sequence of two pushes on G1, in order */
    struct eng_task_spec steps[2] = {
        {.seid = "G1", .op = TASK_OP_PUSH, .channel = TASK_CH_PUSH, .params = "{}"},
        {.seid = "ignored", .op = TASK_OP_PUSH, .channel = TASK_CH_PUSH, .params = "{}"}};
    struct eng_job_spec seq = {.kind = ENG_JOB_SEQUENCE, .steps = steps, .n_steps = 2};
    int64_t sj = 0;
    assert_int_equal(eng_job_submit(f->e, &seq, NULL, NULL, &sj, &err), 0);
    unsigned answered = 0;
    char dests[8][BEARER_ADDR_MAX + 1];
    for (int round = 0; round < 50; round++) {
        step(f, 1);
        while (answered < f->n_sent && answered < 8) {
            snprintf(dests[answered], sizeof(dests[answered]), "%s", f->sent[answered].m.dest);
            char id[16];
            snprintf(id, sizeof(id), "f%u", answered);
            result(f, answered, BEARER_SUBMIT_OK, id);
            answered++;
        }
    }
    assert_int_equal(answered, 5);
    struct eng_job_progress pr;
    assert_int_equal(eng_job_progress(f->e, job, &pr, &err), 0);
    assert_int_equal(pr.total, 3);
    assert_int_equal(pr.counts[TASK_DONE], 3);
    assert_int_equal(pr.state, STORE_JOB_DONE);
    for (unsigned i = 0; i < answered; i++) {
        assert_string_not_equal(dests[i], "8613800000301"); /* F2: other batch */
    }
    assert_int_equal(eng_job_progress(f->e, sj, &pr, &err), 0);
    assert_int_equal(pr.counts[TASK_DONE], 2);
    assert_int_equal(pr.state, STORE_JOB_DONE);
    assert_int_equal(pr.failed_step_task, 0);
}

static void test_restart_dispatched_not_counted(void **state)
{
    struct fx *f = *state;
    reg(f, "SE01", "8613800000001");
    int64_t a = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 2);
    uint8_t att;
    /* killed again and again while dispatched, no part accepted: attempts stay unused */
    for (int i = 0; i < 5; i++) {
        step(f, 2);
        assert_int_equal(f->n_sent, 1);
        assert_int_equal(state_of(f, a, NULL, &att), TASK_DISPATCHED);
        assert_int_equal(att, 1);
        reopen(f);
        enum task_reason r;
        assert_int_equal(state_of(f, a, &r, &att), TASK_QUEUED);
        assert_int_equal(r, TASK_R_BEARER_TIMEOUT);
        assert_int_equal(att, 0);
    }
    step(f, 2);
    assert_int_equal(f->n_sent, 1);
    uint64_t cntr = sent_cntr(f, 0);
    assert_int_equal(cntr, 6); /* a new counter each time */
    result(f, 0, BEARER_SUBMIT_OK, "m1");
    assert_int_equal(dlr(f, "m1", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    uint8_t ud[160];
    static const uint8_t rsp[] = {0x01, 0x90, 0x00};
    size_t n = make_por(cntr, 0x00, rsp, sizeof(rsp), true, ud, sizeof(ud));
    assert_int_equal(mo(f, "8613800000001", ud, n), BEARER_ACK_LATER);
    step(f, 2);
    assert_int_equal(state_of(f, a, NULL, &att), TASK_DONE);
    assert_int_equal(att, 1);
    assert_int_equal(f->last_final.id, a);
    assert_int_equal(f->last_final.state, TASK_DONE);
}

static void test_restart_dispatched_counted(void **state)
{
    struct fx *f = *state;
    reg(f, "SE01", "8613800000001");
    reg(f, "SE02", "8613800000002");
    /* long scripts: several parts each */
    char params[700];
    char script[601];
    memset(script, 'a', sizeof(script) - 1);
    script[sizeof(script) - 1] = '\0';
    snprintf(params, sizeof(params), "{\"tar\":\"b00010\",\"script\":\"%s\"}", script);
    /* a: part 1 accepted, the others not when the engine dies */
    int64_t a = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, params, 1);
    /* b: part 1 accepted, part 2 retryable: attempt 2 inherits attempt 1's row of part 1 */
    int64_t b = submit(f, "SE02", TASK_OP_SCP80, TASK_CH_SCP80, params, 3);
    step(f, 2);
    unsigned ia = UINT_MAX, ib1 = UINT_MAX, ib2 = UINT_MAX;
    for (unsigned i = 0; i < f->n_sent; i++) {
        uint64_t t = f->sent[i].m.token >> 16;
        uint8_t part = f->sent[i].m.part;
        if (t == (uint64_t)a && part == 1) {
            ia = i;
        } else if (t == (uint64_t)b && part == 1) {
            ib1 = i;
        } else if (t == (uint64_t)b && part == 2) {
            ib2 = i;
        }
    }
    assert_true(ia != UINT_MAX && ib1 != UINT_MAX && ib2 != UINT_MAX);
    result(f, ia, BEARER_SUBMIT_OK, "a1");
    result(f, ib1, BEARER_SUBMIT_OK, "b1");
    result(f, ib2, BEARER_SUBMIT_RETRYABLE, NULL);
    step(f, 2); /* b: retried at once (backoff 0) and dispatched again */
    uint8_t att;
    assert_int_equal(state_of(f, a, NULL, &att), TASK_DISPATCHED);
    assert_int_equal(state_of(f, b, NULL, &att), TASK_DISPATCHED);
    assert_int_equal(att, 2);
    reopen(f);
    /* a: a part was accepted, the attempt counts and was the last */
    enum task_reason r;
    assert_int_equal(state_of(f, a, &r, &att), TASK_FAILED);
    assert_int_equal(r, TASK_R_BEARER_TIMEOUT);
    assert_int_equal(att, 1);
    /* b: attempt 1's accepted part is no part of attempt 2 */
    assert_int_equal(state_of(f, b, &r, &att), TASK_QUEUED);
    assert_int_equal(r, TASK_R_BEARER_TIMEOUT);
    assert_int_equal(att, 1);
    /* a late DLR for attempt 1's message id is still known */
    struct eng_stats st0, st1;
    eng_stats(f->e, &st0);
    assert_int_equal(dlr(f, "b1", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    eng_stats(f->e, &st1);
    assert_int_equal(st1.late, st0.late + 1);
}

/* Several transitions of one active task in one batch: one row write, done before reads. */
static void test_batch_row_writes(void **state)
{
    struct fx *f = *state;
    reg(f, "SE01", "8613800000001");
    int64_t id = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    assert_int_equal(f->n_sent, 1);
    size_t st0 = store_staged(f->e->st);
    assert_int_equal(st0, 0);
    result(f, 0, BEARER_SUBMIT_OK, "w1");        /* dispatched -> submitted */
    assert_int_equal(store_staged(f->e->st), 2); /* part row, history event: no task row yet */
    assert_int_equal(dlr(f, "w1", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    assert_int_equal(store_staged(f->e->st), 4);
    /* a read writes the pending row first: one row for both transitions */
    enum task_reason r;
    assert_int_equal(state_of(f, id, &r, NULL), TASK_DELIVERED);
    assert_int_equal(r, TASK_R_NONE);
    assert_int_equal(store_staged(f->e->st), 5);
    step(f, 1);
    assert_int_equal(store_staged(f->e->st), 0);
    /* the committed row is what a restart sees: the task waits for its PoR */
    reopen(f);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_DELIVERED);
    uint8_t ud[160];
    static const uint8_t rsp[] = {0x01, 0x90, 0x00};
    size_t n = make_por(1, 0x00, rsp, sizeof(rsp), true, ud, sizeof(ud));
    assert_int_equal(mo(f, "8613800000001", ud, n), BEARER_ACK_LATER);
    step(f, 1);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_DONE);
    assert_int_equal(f->last_final.id, id);
    /* submitted and delivered in the batch of a commit, no read in between */
    int64_t id2 = submit(f, "SE01", TASK_OP_SCP80, TASK_CH_SCP80, script_params, 0);
    step(f, 2);
    assert_int_equal(f->n_sent, 1);
    result(f, 0, BEARER_SUBMIT_OK, "w2");
    assert_int_equal(dlr(f, "w2", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    step(f, 1);
    reopen(f);
    assert_int_equal(state_of(f, id2, NULL, NULL), TASK_DELIVERED);
}

/* Commit coalescing: a second batch within commit_interval_ms waits for its timer. */
static void test_commit_coalescing(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    eng_close(f->e);
    f->conf.commit_interval_ms = 80;
    f->conf.commit_max_acks = 3;
    fx_open(f);
    reg(f, "SE01", "8613800000001");
    assert_int_equal(eng_flush(f->e, &err), 0);
    double t_commit = ev_time();
    struct eng_stats st0, st;
    eng_stats(f->e, &st0);
    int64_t id = submit(f, "SE01", TASK_OP_PUSH, TASK_CH_PUSH, "{}", 0);
    step(f, 3);
    eng_stats(f->e, &st);
    if (ev_time() - t_commit < 0.06) {
        /* within the spacing: nothing committed, nothing acknowledged, nothing sent */
        assert_int_equal(st.commits, st0.commits);
        assert_int_equal(f->accepts, 0);
        assert_int_equal(f->n_sent, 0);
    }
    /* the timer commits without anything else happening on the loop */
    for (int i = 0; i < 100 && f->accepts == 0; i++) {
        ev_run(f->loop, EVRUN_ONCE);
    }
    t_commit = ev_time();
    assert_int_equal(f->accepts, 1);
    assert_int_equal(f->last_accept_rc, 0);
    assert_int_equal(f->n_sent, 1);
    /* reports: held acks are released only after their commit; enough of them commit at once */
    result(f, 0, BEARER_SUBMIT_OK, "p1");
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_SUBMITTED);
    unsigned rel = f->releases;
    eng_stats(f->e, &st0);
    assert_int_equal(dlr(f, "zz1", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER); /* unknown */
    step(f, 1);
    eng_stats(f->e, &st);
    bool in_spacing = ev_time() - t_commit < 0.06;
    if (in_spacing) {
        assert_int_equal(f->releases, rel);
        assert_int_equal(st.commits, st0.commits);
    }
    assert_int_equal(dlr(f, "zz2", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    assert_int_equal(dlr(f, "zz3", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    in_spacing = in_spacing && ev_time() - t_commit < 0.06;
    step(f, 1); /* three acks held: commit_max_acks commits at once */
    eng_stats(f->e, &st);
    if (in_spacing) {
        assert_int_equal(st.commits, st0.commits + 1);
    }
    assert_true(st.commits > st0.commits);
    assert_true(f->releases > rel);
    /* eng_flush commits at once, whatever the spacing */
    rel = f->releases;
    assert_int_equal(dlr(f, "zz4", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    assert_int_equal(eng_flush(f->e, &err), 0);
    eng_stats(f->e, &st0);
    assert_int_equal(st0.commits, st.commits + 1);
    assert_true(f->releases > rel);
    /* and so does eng_close: the held ack is released after the closing commit */
    rel = f->releases;
    assert_int_equal(dlr(f, "zz5", BEARER_DLR_DELIVERED, true), BEARER_ACK_LATER);
    reopen(f);
    assert_true(f->releases > rel);
    assert_int_equal(state_of(f, id, NULL, NULL), TASK_SUBMITTED);
    /* a spacing above a second is refused */
    eng_close(f->e);
    f->e = NULL;
    f->conf.commit_interval_ms = 1001;
    assert_int_equal(eng_open(f->loop, &f->conf, &f->hooks, &f->e, &err), -EINVAL);
    assert_null(f->e);
    f->conf.commit_interval_ms = 0;
    fx_open(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scp80_por_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scp80_card_sw_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_por_bad_cc_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_new_counter_then_reject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlr_failed_exhausts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_pull_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_terminate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_keys_and_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_refuses_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spi_without_por, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_reports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_rebuild, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequence_step_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_job_expand_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_job_runs_to_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_failure_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_por_and_active_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_low_then_timeout_and_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_job_and_sequence_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_dispatched_not_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_dispatched_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_coalescing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_row_writes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
