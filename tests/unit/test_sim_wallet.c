/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's wallet role against a fake otagw pull server (gateway/http.h
 * on 127.0.0.1, port 0) that plays the gateway's side with a real SCP02 host
 * session: INITIALIZE UPDATE, cryptogram check, EXTERNAL AUTHENTICATE (C-MAC +
 * C-ENC), one wrapped SET STATUS lock. The wallet answers as SE 3 of a
 * generated population; the test checks the session completes and the SE's
 * GP model changed. Bad paths: 404, 409, garbage JSON, nobody listening, a
 * server whose keys are wrong (the session ends "failed"). Over https (issue
 * #7) the session runs when the wallet trusts the server's certificate and
 * the pull never reaches a server it does not trust.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>
#include <jansson.h>

#include "gateway/http.h"
#include "gateway/tls.h"
#include "ota/ota.h"
#include "tests/sim/gpmodel.h"
#include "tests/sim/sim_int.h"
#include "tests/sim/wallet.h"
#include "tests/support/tsupport.h"

#define SE_IDX 3u
#define SESSION_ID "00112233445566778899aabbccddeeff"

static const uint8_t app_aid[] = {0xA0, 0x00, 0x00, 0x00, 0x77, 0x01, 0x02};

enum mode {
    M_OK = 0,
    M_404,
    M_409,
    M_GARBAGE,
    M_WRONG_KEYS, /* the server's keys differ: the card cryptogram fails */
    M_STEP_GARBAGE,
};

struct fx {
    struct ev_loop *loop;
    struct http_server *srv;
    struct sim_pop *pop;
    struct sim_wallet *w;
    enum mode mode;
    struct ota_scp02_session host;
    bool host_init;
    int step;
    char seid_seen[80], serial_seen[80];
    unsigned pulls_seen, steps_seen;
    uint16_t last_sw;
};

static void hexs(const uint8_t *b, size_t n, char *dst)
{
    for (size_t i = 0; i < n; i++) {
        sprintf(dst + 2 * i, "%02x", b[i]);
    }
    dst[2 * n] = '\0';
}

static void answer_apdu(struct http_req *req, const uint8_t *apdu, size_t n)
{
    char hex[600];
    hexs(apdu, n, hex);
    assert_int_equal(
        http_respond_json(req, 200, json_pack("{s:s, s:[s]}", "session", SESSION_ID, "apdus", hex)),
        0);
}

static void answer_done(struct http_req *req, const char *state, const char *reason)
{
    assert_int_equal(http_respond_json(req, 200,
                                       json_pack("{s:s, s:b, s:s, s:s}", "session", SESSION_ID,
                                                 "done", 1, "state", state, "reason", reason)),
                     0);
}

static void h_pull(struct http_req *req, void *arg)
{
    struct fx *f = arg;
    struct ota_err e;
    json_t *j = http_req_json(req, &e);
    f->pulls_seen++;
    if (j) {
        snprintf(f->seid_seen, sizeof(f->seid_seen), "%s", ts_jstr(j, "seid"));
        snprintf(f->serial_seen, sizeof(f->serial_seen), "%s", ts_jstr(j, "serial"));
    }
    switch (f->mode) {
    case M_404:
        (void)http_respond_error(req, 404, "unknown-serial", "no such serial");
        return;
    case M_409:
        (void)http_respond_error(req, 409, "serial-used", "used");
        return;
    case M_GARBAGE:
        (void)http_respond_raw(req, 200, "application/json", "{nope", 5);
        return;
    default:
        break;
    }
    struct sim_scp02_keyset ks;
    assert_int_equal(sim_pop_scp02_keys(f->pop, SE_IDX, 0, &ks, &e), 0);
    if (f->mode == M_WRONG_KEYS) {
        ks.keys.enc.bytes[0] ^= 0x80; /* not a DES parity bit */
    }
    static const uint8_t hc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    if (f->host_init) { /* sessions run one after the other here (max_sessions 1) */
        ota_scp02_session_fini(&f->host);
    }
    assert_int_equal(ota_scp02_session_init(&f->host, f->pop->crypto, &ks.keys, ks.kvn,
                                            OTA_SCP02_SL_CMAC_CDEC, hc, &e),
                     0);
    f->host_init = true;
    f->step = 0;
    uint8_t iu[32];
    int n = ota_scp02_init_update(&f->host, iu, sizeof(iu), &e);
    assert_int_equal(n, OTA_SCP02_IU_CMD_LEN);
    answer_apdu(req, iu, (size_t)n);
}

static void h_step(struct http_req *req, void *arg)
{
    struct fx *f = arg;
    struct ota_err e;
    uint8_t rsp[300], cmd[300];
    f->steps_seen++;
    json_t *j = http_req_json(req, &e);
    const char *sid = http_req_param(req, "session");
    json_t *arr = j ? json_object_get(j, "responses") : NULL;
    if (!sid || strcmp(sid, SESSION_ID) != 0) {
        (void)http_respond_error(req, 404, "unknown-session", "no");
        return;
    }
    if (!json_is_array(arr) || json_array_size(arr) != 1) {
        (void)http_respond_error(req, 409, "bad-sequence", "count");
        return;
    }
    if (f->mode == M_STEP_GARBAGE) {
        (void)http_respond_raw(req, 200, "application/json", "[1,2]", 5);
        return;
    }
    size_t n = ts_hex(json_string_value(json_array_get(arr, 0)), rsp, sizeof(rsp));
    assert_true(n >= 2);
    f->last_sw = (uint16_t)(rsp[n - 2] << 8 | rsp[n - 1]);
    int k;
    switch (f->step++) {
    case 0:
        if (ota_scp02_on_init_update_resp(&f->host, rsp, n, &e)) {
            answer_done(req, "failed", "client");
            return;
        }
        k = ota_scp02_external_authenticate(&f->host, cmd, sizeof(cmd), &e);
        assert_int_equal(k, OTA_SCP02_EA_CMD_LEN);
        answer_apdu(req, cmd, (size_t)k);
        return;
    case 1: {
        if (ota_scp02_on_ext_auth_resp(&f->host, f->last_sw, &e)) {
            answer_done(req, "failed", "card-sw");
            return;
        }
        uint8_t plain[5 + sizeof(app_aid)] = {0x80, 0xF0, OTA_GP_STATUS_SCOPE_APP,
                                              OTA_GP_SET_STATUS_LOCK, sizeof(app_aid)};
        memcpy(plain + 5, app_aid, sizeof(app_aid));
        k = ota_scp02_wrap(&f->host, plain, sizeof(plain), cmd, sizeof(cmd), &e);
        assert_true(k > (int)sizeof(plain));
        answer_apdu(req, cmd, (size_t)k);
        return;
    }
    default:
        answer_done(req, f->last_sw == 0x9000 ? "done" : "failed",
                    f->last_sw == 0x9000 ? "none" : "card-sw");
        return;
    }
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct ota_err e;
    uint8_t seed[16] = {0x42};
    assert_non_null(f);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    struct http_conf hc = {.bind_addr = "127.0.0.1", .port = 0};
    assert_int_equal(http_server_new(f->loop, &hc, &f->srv, &e), 0);
    assert_int_equal(http_route(f->srv, "POST", "/v1/wallet/pull", h_pull, f, &e), 0);
    assert_int_equal(http_route(f->srv, "POST", "/v1/wallet/sessions/{session}", h_step, f, &e), 0);
    assert_int_equal(sim_pop_generate(10, 8613800000000ull, seed, &f->pop, &e), 0);
    /* SE 3 gets an application to lock (generated SEs start with the ISD only) */
    struct sim_se_state *st = NULL;
    assert_int_equal(sim_pop_state(f->pop, SE_IDX, &st, &e), 0);
    assert_int_equal(sim_pop_ota(f->pop, st, &e), 0);
    assert_int_equal(sim_gp_add_app(&st->ota->card, app_aid, sizeof(app_aid), 0x07, false, &e), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sim_wallet_free(f->w);
    if (f->host_init) {
        ota_scp02_session_fini(&f->host);
    }
    http_server_free(f->srv);
    sim_pop_free(f->pop);
    ev_loop_destroy(f->loop);
    free(f);
    return 0;
}

static void new_wallet_bounded(struct fx *f, uint16_t port, unsigned timeout_ms,
                               unsigned max_sessions, unsigned max_queue)
{
    char url[64];
    struct ota_err e;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    struct sim_wallet_conf c = {
        .url = url, .timeout_ms = timeout_ms, .max_sessions = max_sessions, .max_queue = max_queue};
    assert_int_equal(sim_wallet_new(f->loop, f->pop, &c, &f->w, &e), 0);
}

static void new_wallet(struct fx *f, uint16_t port, unsigned timeout_ms)
{
    new_wallet_bounded(f, port, timeout_ms, 0, 0);
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
}

/* Run the loop until the wallet is idle; bounded by 10 s. */
static void run_idle(struct fx *f)
{
    ev_timer tick;
    ev_timer_init(&tick, tick_cb, 0.02, 0.02);
    ev_timer_start(f->loop, &tick);
    ev_tstamp until = ev_time() + 10.0;
    while (sim_wallet_busy(f->w) > 0 && ev_time() < until) {
        ev_run(f->loop, EVRUN_ONCE);
    }
    /* let closing connections finish */
    for (int i = 0; i < 5; i++) {
        ev_run(f->loop, EVRUN_ONCE);
    }
    ev_timer_stop(f->loop, &tick);
    assert_int_equal(sim_wallet_busy(f->w), 0);
}

/* Deliver a push SMS for SE_IDX through the card, as the network roles do. */
static void deliver_push(struct fx *f)
{
    struct ota_push push;
    struct ota_err e;
    char msisdn[SIM_MSISDN_MAX + 1];
    size_t seid_len = 0;
    uint8_t ud[OTA_PUSH_UD_MAX];
    struct sim_mo mo;
    enum sim_outcome out;
    memset(&push, 0, sizeof(push));
    assert_int_equal(sim_pop_identity(f->pop, SE_IDX, msisdn, push.seid, &seid_len), 0);
    push.seid_len = (uint8_t)seid_len;
    push.dst_port = 0x1F00;
    push.src_port = 0x1F00;
    for (int i = 0; i < OTA_PUSH_SERIAL_LEN; i++) {
        push.serial[i] = (uint8_t)(0xA0 + i);
    }
    int n = ota_push_encode(&push, ud, sizeof(ud), &e);
    assert_true(n > 0);
    assert_int_equal(sim_card_deliver(f->pop, msisdn, ud, (size_t)n, true, 0, 4, 0, &out, &mo, &e),
                     0);
    assert_int_equal(out, SIM_OUT_PUSH);
}

static const struct sim_gp_app *the_app(struct fx *f)
{
    struct sim_se_state *st = NULL;
    struct ota_err e;
    assert_int_equal(sim_pop_state(f->pop, SE_IDX, &st, &e), 0);
    return sim_gp_find_app(&st->ota->card, app_aid, sizeof(app_aid));
}

static void test_session_locks_app(void **state)
{
    struct fx *f = *state;
    struct sim_wallet_counts k;
    new_wallet(f, http_server_port(f->srv), 0);
    assert_false(the_app(f)->lcs & OTA_GP_LOCKED_BIT);
    deliver_push(f);
    run_idle(f);
    sim_wallet_counts(f->w, &k);
    assert_int_equal(k.wallet_pulls, 1);
    assert_int_equal(k.wallet_sessions_done, 1);
    assert_int_equal(k.wallet_sessions_failed, 0);
    assert_int_equal(k.wallet_http_errors, 0);
    assert_int_equal(k.wallet_apdus, 3);
    assert_string_equal(f->seid_seen, "SE00000000000003");
    assert_string_equal(f->serial_seen, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    assert_int_equal(f->steps_seen, 3);
    assert_int_equal(f->last_sw, 0x9000);
    assert_true(the_app(f)->lcs & OTA_GP_LOCKED_BIT);
}

static void check_http_error(struct fx *f, enum mode m, unsigned steps)
{
    struct sim_wallet_counts k;
    f->mode = m;
    new_wallet(f, http_server_port(f->srv), 0);
    deliver_push(f);
    run_idle(f);
    sim_wallet_counts(f->w, &k);
    assert_int_equal(k.wallet_pulls, 1);
    assert_int_equal(k.wallet_http_errors, 1);
    assert_int_equal(k.wallet_sessions_done + k.wallet_sessions_failed, 0);
    assert_int_equal(f->steps_seen, steps);
    assert_false(the_app(f)->lcs & OTA_GP_LOCKED_BIT);
}

static void test_404(void **state)
{
    check_http_error(*state, M_404, 0);
}

static void test_409(void **state)
{
    check_http_error(*state, M_409, 0);
}

static void test_garbage(void **state)
{
    check_http_error(*state, M_GARBAGE, 0);
}

static void test_step_garbage(void **state)
{
    check_http_error(*state, M_STEP_GARBAGE, 1);
}

static void test_wrong_keys_fail(void **state)
{
    struct fx *f = *state;
    struct sim_wallet_counts k;
    f->mode = M_WRONG_KEYS;
    new_wallet(f, http_server_port(f->srv), 0);
    deliver_push(f);
    run_idle(f);
    sim_wallet_counts(f->w, &k);
    assert_int_equal(k.wallet_sessions_failed, 1);
    assert_int_equal(k.wallet_sessions_done, 0);
    assert_int_equal(k.wallet_http_errors, 0);
    assert_false(the_app(f)->lcs & OTA_GP_LOCKED_BIT);
}

static void test_nobody_listening(void **state)
{
    struct fx *f = *state;
    struct sim_wallet_counts k;
    uint16_t port = http_server_port(f->srv);
    http_server_free(f->srv); /* the port is now closed */
    f->srv = NULL;
    new_wallet(f, port, 2000);
    deliver_push(f);
    run_idle(f);
    sim_wallet_counts(f->w, &k);
    assert_int_equal(k.wallet_pulls, 1);
    assert_int_equal(k.wallet_http_errors, 1);
}

/* One session at a time, two pushes may wait (not yet started), the third is dropped. */
static void test_bounded(void **state)
{
    struct fx *f = *state;
    struct sim_wallet_counts k;
    new_wallet_bounded(f, http_server_port(f->srv), 0, 1, 2);
    deliver_push(f);
    deliver_push(f);
    deliver_push(f);
    assert_int_equal(sim_wallet_busy(f->w), 2);
    run_idle(f);
    sim_wallet_counts(f->w, &k);
    assert_int_equal(k.wallet_pulls, 2);
    assert_int_equal(k.wallet_sessions_done, 2);
    assert_int_equal(k.wallet_dropped, 1);
    assert_int_equal(k.wallet_http_errors, 0);
    assert_int_equal(f->pulls_seen, 2);
}

/* A server that never answers: the request times out and is counted. */
static void h_silent(struct http_req *req, void *arg)
{
    struct http_req **held = arg;
    *held = req; /* freed by http_server_free */
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    struct sim_wallet_counts k;
    struct ota_err e;
    struct http_req *held = NULL;
    struct http_server *srv = NULL;
    struct http_conf hc = {.bind_addr = "127.0.0.1", .port = 0};
    assert_int_equal(http_server_new(f->loop, &hc, &srv, &e), 0);
    assert_int_equal(http_route(srv, "POST", "/v1/wallet/pull", h_silent, &held, &e), 0);
    new_wallet(f, http_server_port(srv), 200);
    deliver_push(f);
    run_idle(f);
    sim_wallet_counts(f->w, &k);
    assert_non_null(held);
    assert_int_equal(k.wallet_http_errors, 1);
    http_server_free(srv);
}

/* A file population's SEID goes out as upper-case hex, whatever case the file used. */
static void test_file_seid_hex(void **state)
{
    struct fx *f = *state;
    struct ota_err e;
    struct sim_pop *pop = NULL;
    struct sim_wallet *w = NULL;
    struct sim_wallet_counts k;
    char path[] = "/tmp/test_sim_wallet_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    assert_non_null(fp);
    fputs("{\"seid\":\"5345be0a\",\"msisdn\":\"8613900000001\"}\n", fp);
    fclose(fp);
    int rc = sim_pop_load(path, &pop, &e);
    unlink(path);
    assert_int_equal(rc, 0);
    f->mode = M_404;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)http_server_port(f->srv));
    struct sim_wallet_conf c = {.url = url};
    assert_int_equal(sim_wallet_new(f->loop, pop, &c, &w, &e), 0);
    struct ota_push push = {
        .dst_port = 0x1F00, .src_port = 0x1F00, .seid_len = 4, .seid = {0x53, 0x45, 0xBE, 0x0A}};
    uint8_t ud[OTA_PUSH_UD_MAX];
    struct sim_mo mo;
    enum sim_outcome out;
    int n = ota_push_encode(&push, ud, sizeof(ud), &e);
    assert_true(n > 0);
    assert_int_equal(
        sim_card_deliver(pop, "8613900000001", ud, (size_t)n, true, 0, 4, 0, &out, &mo, &e), 0);
    assert_int_equal(out, SIM_OUT_PUSH);
    struct fx tmp = *f;
    tmp.w = w;
    run_idle(&tmp);
    sim_wallet_counts(w, &k);
    assert_int_equal(k.wallet_http_errors, 1);
    assert_string_equal(f->seid_seen, "5345BE0A");
    assert_string_equal(f->serial_seen, "00000000000000000000000000000000");
    sim_wallet_free(w);
    sim_pop_free(pop);
}

/*
 * The pull server on TLS (issue #7) with a fresh self-signed certificate; the
 * wallet trusts ca (the server's certificate, or another one). Files in dir.
 */
static void https_wallet(struct fx *f, char dir[32], bool right_ca)
{
    struct ota_err e;
    char cert[64], key[64], other[64], okey[64], url[64];
    snprintf(dir, 32, "/tmp/otagw-simw-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    snprintf(other, sizeof(other), "%s/o.pem", dir);
    snprintf(okey, sizeof(okey), "%s/ok.pem", dir);
    assert_int_equal(gw_tls_self_signed(cert, key, &e), 0);
    assert_int_equal(gw_tls_self_signed(other, okey, &e), 0);
    http_server_free(f->srv);
    struct http_conf hc = {.bind_addr = "127.0.0.1", .tls_cert = cert, .tls_key = key};
    assert_int_equal(http_server_new(f->loop, &hc, &f->srv, &e), 0);
    assert_int_equal(http_route(f->srv, "POST", "/v1/wallet/pull", h_pull, f, &e), 0);
    assert_int_equal(http_route(f->srv, "POST", "/v1/wallet/sessions/{session}", h_step, f, &e), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", (unsigned)http_server_port(f->srv));
    struct sim_wallet_conf c = {.url = url, .ca_file = right_ca ? cert : other};
    assert_int_equal(sim_wallet_new(f->loop, f->pop, &c, &f->w, &e), 0);
}

static void test_https_verified(void **state)
{
    struct fx *f = *state;
    struct sim_wallet_counts k;
    char dir[32];
    https_wallet(f, dir, true);
    deliver_push(f);
    run_idle(f);
    sim_wallet_counts(f->w, &k);
    assert_int_equal(k.wallet_sessions_done, 1);
    assert_int_equal(k.wallet_http_errors, 0);
    assert_int_equal(f->steps_seen, 3);
    assert_true(the_app(f)->lcs & OTA_GP_LOCKED_BIT);
    (void)ts_rmdir_tree(dir);
}

/* A server whose certificate does not chain to the wallet's CA never sees the pull. */
static void test_https_wrong_ca(void **state)
{
    struct fx *f = *state;
    struct sim_wallet_counts k;
    char dir[32];
    https_wallet(f, dir, false);
    deliver_push(f);
    run_idle(f);
    sim_wallet_counts(f->w, &k);
    assert_int_equal(k.wallet_pulls, 1);
    assert_int_equal(k.wallet_http_errors, 1);
    assert_int_equal(k.wallet_sessions_done, 0);
    assert_int_equal(f->pulls_seen, 0);
    assert_false(the_app(f)->lcs & OTA_GP_LOCKED_BIT);
    (void)ts_rmdir_tree(dir);
}

static void test_bad_url(void **state)
{
    struct fx *f = *state;
    struct ota_err e;
    struct sim_wallet *w = NULL;
    struct sim_wallet_conf c = {.url = "ftp://127.0.0.1:1"};
    assert_int_equal(sim_wallet_new(f->loop, f->pop, &c, &w, &e), -EINVAL);
    c.url = "http://127.0.0.1:99999";
    assert_int_equal(sim_wallet_new(f->loop, f->pop, &c, &w, &e), -EINVAL);
    c.url = "http://:80";
    assert_int_equal(sim_wallet_new(f->loop, f->pop, &c, &w, &e), -EINVAL);
    c.url = "https://127.0.0.1:1";
    c.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(sim_wallet_new(f->loop, f->pop, &c, &w, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "/nonexistent/ca.pem"));
    assert_null(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_session_locks_app, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_409, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_step_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_keys_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nobody_listening, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_seid_hex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https_wrong_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_url, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
