/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the result callbacks (gateway/callbacks.c): a struct gw
 * built by hand (libev loop, the task engine on a temp database with a fake
 * bearer, the callbacks started on it) and a receiving business platform:
 * a gateway/http.h server on 127.0.0.1 port 0 in the same loop that records
 * what it gets and answers from a script. Signed delivery retried after a
 * 500 and acknowledged exactly once; no callback_url -> nothing; an
 * unreachable platform -> counted retries; delivery after a restart, also
 * when the outbox row was lost in a crash after the final commit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gateway/api_util.h"
#include "gateway/callbacks.h"
#include "gateway/gw.h"
#include "tests/support/ts_http.h"
#include "tests/support/tsupport.h"

#define RX_MAX 16
#define SECRET "platform-secret-1"

struct rx_rec {
    char *body;
    char sig[80], ts[32], delivery[32], ctype[64];
    bool has_sig;
    int64_t t_ms;
};

struct fx {
    struct ev_loop *loop;
    char dir[64], db[96];
    struct gw g;
    struct http_server *rx;
    uint16_t rx_port;
    int answers[RX_MAX]; /* status per request; 0 past the script = 200 */
    struct rx_rec recs[RX_MAX];
    unsigned n_rx;
};

/* ---- fake bearer: takes every part, never reports ---- */

static int fb_submit(void *arg, const struct bearer_msg *m, struct ota_err *err)
{
    (void)arg;
    (void)m;
    (void)err;
    return 0;
}

static void fb_noop(void *arg)
{
    (void)arg;
}

static void hook_final(void *arg, const struct eng_task_view *t)
{
    struct fx *f = arg;
    gw_callbacks_task_final(&f->g, t);
}

static void fast_knobs(struct fx *f, unsigned timeout_ms)
{
    struct gw_callbacks_knobs k = {.tick_ms = 10,
                                   .backoff_ms = 60,
                                   .backoff_max_ms = 240,
                                   .timeout_ms = timeout_ms,
                                   .max_age_ms = 3600 * 1000,
                                   .max_inflight = 4};
    assert_int_equal(gw_callbacks_set_knobs(&f->g, &k), 0);
}

static void up(struct fx *f)
{
    struct eng_conf c;
    eng_conf_defaults(&c);
    c.db_path = f->db;
    c.durable = false;
    struct eng_hooks hooks = {.final = hook_final, .arg = f};
    struct ota_err err;
    if (eng_open(f->loop, &c, &hooks, &f->g.eng, &err) < 0) {
        fail_msg("eng_open: %s", err.msg);
    }
    struct eng_bearer_ops ops = {
        .submit = fb_submit, .release_acks = fb_noop, .discard_acks = fb_noop, .arg = f};
    eng_set_bearer(f->g.eng, &ops);
    if (gw_callbacks_start(&f->g, &err) < 0) {
        fail_msg("gw_callbacks_start: %s", err.msg);
    }
    fast_knobs(f, 1000);
}

static void down(struct fx *f)
{
    gw_callbacks_stop(&f->g);
    assert_null(f->g.callbacks);
    eng_close(f->g.eng);
    f->g.eng = NULL;
}

static void rx_handler(struct http_req *req, void *arg)
{
    struct fx *f = arg;
    unsigned i = f->n_rx;
    if (i < RX_MAX) {
        struct rx_rec *r = &f->recs[i];
        size_t len = 0;
        const uint8_t *b = http_req_body(req, &len);
        r->body = strndup((const char *)b, len);
        const char *h = http_req_header(req, "x-otagw-signature");
        r->has_sig = h != NULL;
        snprintf(r->sig, sizeof(r->sig), "%s", h ? h : "");
        h = http_req_header(req, "x-otagw-timestamp");
        snprintf(r->ts, sizeof(r->ts), "%s", h ? h : "");
        h = http_req_header(req, "x-otagw-delivery");
        snprintf(r->delivery, sizeof(r->delivery), "%s", h ? h : "");
        h = http_req_header(req, "content-type");
        snprintf(r->ctype, sizeof(r->ctype), "%s", h ? h : "");
        r->t_ms = api_now_ms();
        f->n_rx++;
    }
    int status = i < RX_MAX && f->answers[i] ? f->answers[i] : 200;
    (void)http_respond_json(req, status, NULL);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/otagw-cb-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/q.db", f->dir);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    f->g.loop = f->loop;
    f->g.log = stderr;
    memcpy(f->g.conf.callback_secret, SECRET, strlen(SECRET));
    f->g.conf.callback_secret_len = strlen(SECRET);
    f->g.conf.plain_http = true; /* the receiver below is plain http on loopback */
    struct http_conf hc = {.bind_addr = "127.0.0.1", .port = 0, .idle_timeout_s = 5};
    struct ota_err err;
    assert_int_equal(http_server_new(f->loop, &hc, &f->rx, &err), 0);
    f->rx_port = http_server_port(f->rx);
    assert_int_equal(http_route(f->rx, "POST", "/hook", rx_handler, f, &err), 0);
    up(f);
    assert_int_equal(eng_se_register(f->g.eng, "SE-A", "8613800000001", "b1", &err), 0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->g.eng) {
        down(f);
    }
    http_server_free(f->rx);
    ev_loop_destroy(f->loop);
    for (unsigned i = 0; i < RX_MAX; i++) {
        free(f->recs[i].body);
    }
    (void)ts_rmdir_tree(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static void pump(struct fx *f)
{
    ts_http_pump(f->loop);
}

static void pump_ms(struct fx *f, int64_t ms)
{
    int64_t end = api_now_ms() + ms;
    while (api_now_ms() < end) {
        pump(f);
    }
}

static struct gw_callbacks_stats stats(struct fx *f)
{
    struct gw_callbacks_stats s;
    gw_callbacks_get_stats(&f->g, &s);
    return s;
}

#define WAIT_FOR(f, cond, ms)                                                                      \
    do {                                                                                           \
        int64_t end_ = api_now_ms() + (ms);                                                        \
        while (!(cond) && api_now_ms() < end_) {                                                   \
            pump(f);                                                                               \
        }                                                                                          \
        assert_true(cond);                                                                         \
    } while (0)

/* A push task with callback_url (NULL: none), queued for later, then cancelled: final. */
static int64_t task_final(struct fx *f, const char *url)
{
    char params[256];
    if (url) {
        snprintf(params, sizeof(params), "{\"callback_url\":\"%s\"}", url);
    } else {
        snprintf(params, sizeof(params), "{}");
    }
    struct eng_task_spec sp = {.seid = "SE-A",
                               .op = TASK_OP_PUSH,
                               .channel = TASK_CH_PUSH,
                               .params = params,
                               .not_before_ms = api_now_ms() + 3600 * 1000};
    struct ota_err err;
    int64_t id = 0;
    if (eng_submit(f->g.eng, &sp, NULL, NULL, &id, &err) < 0) {
        fail_msg("eng_submit: %s", err.msg);
    }
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    assert_int_equal(eng_task_cancel(f->g.eng, id, &err), 0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    return id;
}

static void url_of(struct fx *f, char *out, size_t cap)
{
    snprintf(out, cap, "http://127.0.0.1:%u/hook", (unsigned)f->rx_port);
}

static void expect_sig(const struct rx_rec *r)
{
    unsigned char mac[32];
    unsigned int ml = 0;
    assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)r->body,
                         strlen(r->body), mac, &ml));
    assert_int_equal(ml, 32);
    char want[80] = "sha256=";
    for (unsigned i = 0; i < 32; i++) {
        snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
    }
    assert_true(r->has_sig);
    assert_string_equal(r->sig, want);
}

static void row_of(struct fx *f, int64_t task, struct store_cb *out)
{
    struct ota_err err;
    assert_int_equal(store_cb_get_task(eng_store(f->g.eng), task, out, &err), 0);
}

/* ---- tests ---- */

static void test_signed_retry_then_ack_once(void **state)
{
    struct fx *f = *state;
    f->answers[0] = 500;
    f->answers[1] = 200;
    char url[96];
    url_of(f, url, sizeof(url));
    int64_t id = task_final(f, url);
    WAIT_FOR(f, stats(f).acked == 1, 5000);
    assert_int_equal(f->n_rx, 2);
    assert_int_equal(stats(f).failed, 1);
    for (unsigned i = 0; i < 2; i++) {
        const struct rx_rec *r = &f->recs[i];
        expect_sig(r);
        assert_string_equal(r->ctype, "application/json");
        assert_true(r->ts[0] != '\0');
        json_t *j = json_loads(r->body, 0, NULL);
        assert_non_null(j);
        json_t *t = json_object_get(j, "task");
        assert_int_equal(json_integer_value(json_object_get(t, "id")), id);
        assert_string_equal(json_string_value(json_object_get(t, "state")), "cancelled");
        assert_string_equal(json_string_value(json_object_get(t, "seid")), "SE-A");
        assert_string_equal(json_string_value(json_object_get(t, "op")), "push");
        assert_non_null(json_object_get(t, "reason"));
        assert_non_null(json_object_get(t, "updated"));
        json_decref(j);
    }
    /* the same delivery, the same bytes, after the back-off */
    assert_string_equal(f->recs[0].body, f->recs[1].body);
    assert_string_equal(f->recs[0].delivery, f->recs[1].delivery);
    assert_true(f->recs[1].t_ms - f->recs[0].t_ms >= 50);
    struct store_cb row;
    row_of(f, id, &row);
    assert_int_equal(row.state, STORE_CB_DONE);
    assert_int_equal(row.attempts, 2);
    char d[32];
    snprintf(d, sizeof(d), "%lld", (long long)row.id);
    assert_string_equal(f->recs[0].delivery, d);
    store_cb_fini(&row);
    /* nothing after the acknowledgement, also not after a restart */
    pump_ms(f, 400);
    assert_int_equal(f->n_rx, 2);
    down(f);
    up(f);
    pump_ms(f, 300);
    assert_int_equal(f->n_rx, 2);
    assert_int_equal(stats(f).recovered, 0);
}

static void test_no_url_nothing_sent(void **state)
{
    struct fx *f = *state;
    int64_t id = task_final(f, NULL);
    pump_ms(f, 300);
    assert_int_equal(f->n_rx, 0);
    assert_int_equal(stats(f).staged, 0);
    assert_int_equal(stats(f).sent, 0);
    struct store_cb row;
    struct ota_err err;
    assert_int_equal(store_cb_get_task(eng_store(f->g.eng), id, &row, &err), -ENOENT);
}

static void test_unreachable_retries(void **state)
{
    struct fx *f = *state;
    /* a port nobody listens on: bound, then closed */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", (unsigned)ntohs(sa.sin_port));
    int64_t id = task_final(f, url);
    WAIT_FOR(f, stats(f).failed >= 3, 5000);
    assert_int_equal(stats(f).acked, 0);
    assert_int_equal(f->n_rx, 0);
    struct store_cb row;
    row_of(f, id, &row);
    assert_int_equal(row.state, STORE_CB_PENDING);
    assert_true(row.attempts >= 3);
    assert_true(row.next_at_ms > api_now_ms() - 1000);
    store_cb_fini(&row);
}

/* URLs lws refuses at once (port 0): the error may come inside the connect call. */
static void test_connect_refused_at_once(void **state)
{
    struct fx *f = *state;
    int64_t id = task_final(f, "http://127.0.0.1:0/hook");
    WAIT_FOR(f, stats(f).failed >= 2, 3000);
    struct store_cb row;
    row_of(f, id, &row);
    assert_int_equal(row.state, STORE_CB_PENDING);
    assert_true(row.attempts >= 2);
    store_cb_fini(&row);
    assert_int_equal(stats(f).acked, 0);
}

/* A platform that takes the connection and never answers: the POST times out and is retried. */
static void test_silent_platform_times_out(void **state)
{
    struct fx *f = *state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0); /* the kernel completes connects; nobody reads */
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    fast_knobs(f, 150);
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", (unsigned)ntohs(sa.sin_port));
    int64_t t0 = api_now_ms();
    int64_t id = task_final(f, url);
    WAIT_FOR(f, stats(f).failed >= 2, 5000);
    assert_true(api_now_ms() - t0 >= 2 * 150);
    assert_int_equal(stats(f).acked, 0);
    struct store_cb row;
    row_of(f, id, &row);
    assert_int_equal(row.state, STORE_CB_PENDING);
    assert_true(row.attempts >= 2);
    store_cb_fini(&row);
    close(fd);
}

/*
 * Without plain_http an http:// row (staged before a config change) is never
 * sent in clear: abandoned. https delivery is in test_tls.
 */
static void test_plain_http_refused(void **state)
{
    struct fx *f = *state;
    f->g.conf.plain_http = false;
    char url[96];
    url_of(f, url, sizeof(url));
    int64_t id = task_final(f, url);
    WAIT_FOR(f, stats(f).abandoned == 1, 3000);
    struct store_cb row;
    row_of(f, id, &row);
    assert_int_equal(row.state, STORE_CB_ABANDONED);
    store_cb_fini(&row);
    assert_int_equal(stats(f).sent, 0);
    assert_int_equal(f->n_rx, 0);
}

/* Rows past max age are given up, logged, and not sent. */
/* Rows past max age are given up, logged, and not sent. */
static void test_max_age_abandoned(void **state)
{
    struct fx *f = *state;
    char url[96];
    url_of(f, url, sizeof(url));
    int64_t id = task_final(f, url); /* staged, not sent: the loop has not run */
    usleep(5000);
    struct gw_callbacks_knobs k = {.tick_ms = 10,
                                   .backoff_ms = 60,
                                   .backoff_max_ms = 240,
                                   .timeout_ms = 1000,
                                   .max_age_ms = 2,
                                   .max_inflight = 4};
    assert_int_equal(gw_callbacks_set_knobs(&f->g, &k), 0);
    WAIT_FOR(f, stats(f).abandoned == 1, 2000);
    struct store_cb row;
    row_of(f, id, &row);
    assert_int_equal(row.state, STORE_CB_ABANDONED);
    store_cb_fini(&row);
    pump_ms(f, 100);
    assert_int_equal(f->n_rx, 0);
    assert_int_equal(stats(f).sent, 0);
}

static void test_restart_delivers(void **state)
{
    struct fx *f = *state;
    for (unsigned i = 0; i < 3; i++) {
        f->answers[i] = 503;
    }
    char url[96];
    url_of(f, url, sizeof(url));
    int64_t id = task_final(f, url);
    WAIT_FOR(f, stats(f).failed >= 1, 3000);
    unsigned before = f->n_rx;
    down(f);
    for (unsigned i = 0; i < RX_MAX; i++) {
        f->answers[i] = 0;
    }
    up(f);
    WAIT_FOR(f, stats(f).acked == 1, 5000);
    assert_true(f->n_rx >= before + 1);
    struct store_cb row;
    row_of(f, id, &row);
    assert_int_equal(row.state, STORE_CB_DONE);
    store_cb_fini(&row);
    expect_sig(&f->recs[f->n_rx - 1]);
}

/* The row staged after the final commit lost with a crash: the start-up catch-up restores it. */
static void test_lost_row_recovered(void **state)
{
    struct fx *f = *state;
    char url[96];
    url_of(f, url, sizeof(url));
    /* the platform is down for now: nothing is acked before the "crash" */
    snprintf(url, sizeof(url), "http://127.0.0.1:1/hook");
    int64_t gone = task_final(f, url);
    url_of(f, url, sizeof(url));
    int64_t id = task_final(f, url);
    struct ota_err err;
    struct store *s = eng_store(f->g.eng);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    char sql[96];
    snprintf(sql, sizeof(sql), "DELETE FROM cb_outbox WHERE task = %lld", (long long)id);
    /* the catch-up window starts before the newest remaining row */
    assert_int_equal(store_test_exec(s, sql), 0);
    assert_int_equal(store_commit(s, &err), 0);
    unsigned before = f->n_rx;
    assert_int_equal(before, 0);
    down(f);
    up(f);
    assert_int_equal(stats(f).recovered, 1);
    WAIT_FOR(f, stats(f).acked == 1, 5000);
    struct store_cb row;
    row_of(f, id, &row);
    assert_int_equal(row.state, STORE_CB_DONE);
    store_cb_fini(&row);
    json_t *j = json_loads(f->recs[f->n_rx - 1].body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "task"), "id")), id);
    json_decref(j);
    row_of(f, gone, &row);
    assert_int_equal(row.state, STORE_CB_PENDING);
    store_cb_fini(&row);
}

static void test_unsigned_without_secret(void **state)
{
    struct fx *f = *state;
    f->g.conf.callback_secret_len = 0;
    char url[96];
    url_of(f, url, sizeof(url));
    (void)task_final(f, url);
    WAIT_FOR(f, stats(f).acked == 1, 5000);
    assert_int_equal(f->n_rx, 1);
    assert_false(f->recs[0].has_sig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signed_retry_then_ack_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_url_nothing_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_http_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_platform_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_age_abandoned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_delivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_row_recovered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsigned_without_secret, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
