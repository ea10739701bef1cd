/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the SE routes and the per-SE platform model
 * (gateway/api_ses.c; spec 5.5.1, 5.5.2, 5.8.7, 5.8.8) over loopback HTTP:
 * a struct gw built by hand (libev loop, the task engine on a temp database
 * with a fake bearer, the HTTP server on 127.0.0.1 port 0, the SE and task
 * routes) and the raw-socket client of tests/support/ts_http.h.
 * Registration (one, a list, the binding rules, bad input changing
 * nothing), commits shared by concurrent registrations, unbind / rebind and
 * the task refusals, the loss list, the model persisted from a task result
 * across an engine restart, and the separate pull listener of gw_start.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "gateway/api_util.h"
#include "gateway/audit.h"
#include "gateway/auth.h"
#include "gateway/keys.h"
#include "gateway/gw.h"
#include "gateway/platform.h"
#include "tests/support/ts_http.h"
#include "tests/support/tsupport.h"

#define MAX_BODY (256 * 1024)

struct fx {
    struct ev_loop *loop;
    char dir[64], db[96];
    struct gw g;
    uint16_t port;
    unsigned commit_interval_ms;
};

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

static void eng_up(struct fx *f)
{
    struct eng_conf c;
    eng_conf_defaults(&c);
    c.db_path = f->db;
    c.durable = false;
    c.commit_interval_ms = f->commit_interval_ms;
    struct eng_hooks hooks = {0};
    struct ota_err err;
    if (eng_open(f->loop, &c, &hooks, &f->g.eng, &err) < 0) {
        fail_msg("eng_open: %s", err.msg);
    }
    struct eng_bearer_ops ops = {
        .submit = fb_submit, .release_acks = fb_noop, .discard_acks = fb_noop, .arg = f};
    eng_set_bearer(f->g.eng, &ops);
    assert_int_equal(gw_ses_start(&f->g, &err), 0);
}

/* A restart as the daemon sees it: engine and model cache gone, rebuilt from the file. */
static void eng_restart(struct fx *f)
{
    eng_close(f->g.eng);
    gw_ses_stop(&f->g);
    eng_up(f);
}

static int setup_with(void **state, unsigned commit_interval_ms)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->commit_interval_ms = commit_interval_ms;
    snprintf(f->dir, sizeof(f->dir), "/tmp/otagw-ses-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/q.db", f->dir);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    f->g.loop = f->loop;
    f->g.log = stderr;
    f->g.conf.log_level = GW_CONF_LOG_ERR;
    eng_up(f);
    struct http_conf hc = {
        .bind_addr = "127.0.0.1", .port = 0, .max_body = MAX_BODY, .idle_timeout_s = 5};
    struct ota_err err;
    assert_int_equal(http_server_new(f->loop, &hc, &f->g.http, &err), 0);
    f->port = http_server_port(f->g.http);
    assert_int_equal(gw_api_ses_routes(&f->g, &err), 0);
    assert_int_equal(gw_api_tasks_routes(&f->g, &err), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0);
}

static int setup_coalesced(void **state)
{
    return setup_with(state, 50);
}

/* As setup, with the audit log and the auth layer on (routes registered after gw_auth_start). */
static int setup_auth(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/otagw-ses-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/q.db", f->dir);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    f->g.loop = f->loop;
    f->g.log = stderr;
    f->g.conf.log_level = GW_CONF_LOG_ERR;
    snprintf(f->g.conf.db_path, sizeof(f->g.conf.db_path), "%s", f->db);
    eng_up(f);
    struct http_conf hc = {
        .bind_addr = "127.0.0.1", .port = 0, .max_body = MAX_BODY, .idle_timeout_s = 5};
    struct ota_err err;
    assert_int_equal(http_server_new(f->loop, &hc, &f->g.http, &err), 0);
    f->port = http_server_port(f->g.http);
    if (gw_audit_start(&f->g, &err) < 0 || gw_auth_start(&f->g, &err) < 0) {
        fail_msg("audit/auth: %s", err.msg);
    }
    assert_int_equal(gw_api_ses_routes(&f->g, &err), 0);
    assert_int_equal(gw_api_tasks_routes(&f->g, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    /* engine first: its last commit answers requests still waiting, while the server exists */
    eng_close(f->g.eng);
    http_server_free(f->g.http);
    gw_ses_stop(&f->g);
    ev_loop_destroy(f->loop);
    (void)ts_rmdir_tree(f->dir);
    free(f);
    return 0;
}

static int teardown_auth(void **state)
{
    struct fx *f = *state;
    gw_auth_stop(&f->g);
    gw_audit_stop(&f->g);
    return teardown(state);
}

/* ---- client ---- */

static void http_do(struct fx *f, const char *method, const char *path, const char *body,
                    struct ts_http_resp *r)
{
    ts_http_do(f->loop, f->port, method, path, NULL, body, false, r);
}

static void assert_status(const struct ts_http_resp *r, int status)
{
    if (r->status != status) {
        fail_msg("status %d, wanted %d: %s", r->status, status, r->body);
    }
    assert_non_null(r->json);
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (!s) {
        fail_msg("member %s is not a string", k);
    }
    return s;
}

static int64_t jint(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* POST body to path and assert the status (and the error code when code is set). */
static void expect(struct fx *f, const char *method, const char *path, const char *body, int status,
                   const char *code)
{
    struct ts_http_resp r;
    http_do(f, method, path, body, &r);
    if (code) {
        ts_http_assert_error(&r, status, code);
    } else {
        assert_status(&r, status);
    }
    ts_http_resp_free(&r);
}

static uint64_t se_count(struct fx *f)
{
    uint64_t n = 0;
    struct ota_err err;
    assert_int_equal(store_se_count(eng_store(f->g.eng), &n, &err), 0);
    return n;
}

static uint64_t commits(struct fx *f)
{
    struct eng_stats st;
    eng_stats(f->g.eng, &st);
    return st.commits;
}

static void reg(struct fx *f, const char *seid, const char *msisdn, const char *result)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"seid\":\"%s\",\"msisdn\":\"%s\",\"batch\":\"b1\"}", seid,
             msisdn);
    struct ts_http_resp r;
    http_do(f, "POST", "/v1/ses", body, &r);
    assert_status(&r, 201);
    assert_string_equal(jstr(r.json, "seid"), seid);
    assert_string_equal(jstr(r.json, "msisdn"), msisdn);
    assert_null(json_object_get(r.json, "result")); /* the single form's shape is fixed */
    ts_http_resp_free(&r);
    /* what happened shows in the list form's result: a repeat says unchanged */
    snprintf(body, sizeof(body), "{\"ses\":[{\"seid\":\"%s\",\"msisdn\":\"%s\"}]}", seid, msisdn);
    http_do(f, "POST", "/v1/ses", body, &r);
    assert_status(&r, 200);
    assert_string_equal(
        jstr(json_array_get(json_object_get(r.json, "results"), 0), "result"),
        strcmp(result, "registered") == 0 || strcmp(result, "rebound") == 0 ? "unchanged" : result);
    ts_http_resp_free(&r);
}

static int64_t last_task;

static int submit(struct fx *f, const char *seid)
{
    struct eng_task_spec s = {
        .seid = seid, .op = TASK_OP_PUSH, .channel = TASK_CH_PUSH, .params = "{}"};
    struct ota_err err;
    return eng_submit(f->g.eng, &s, NULL, NULL, &last_task, &err);
}

/* ---- registration --------------------------------------------------------------------- */

static void test_register_rules(void **state)
{
    struct fx *f = *state;
    struct ts_http_resp r;
    http_do(f, "POST", "/v1/ses",
            "{\"seid\":\"SE-1\",\"msisdn\":\"8613800000001\",\"batch\":\"b1\"}", &r);
    assert_status(&r, 201);
    assert_string_equal(jstr(r.json, "batch"), "b1");
    char loc[96];
    assert_true(ts_http_header(r.head, "location", loc, sizeof(loc)));
    assert_string_equal(loc, "/v1/ses/SE-1");
    ts_http_resp_free(&r);
    /* durable when answered: a restart keeps it */
    eng_restart(f);
    assert_int_equal(se_count(f), 1);

    /* the same binding again changes nothing and keeps the first batch */
    http_do(f, "POST", "/v1/ses",
            "{\"seid\":\"SE-1\",\"msisdn\":\"8613800000001\",\"batch\":\"x\"}", &r);
    assert_status(&r, 201);
    assert_string_equal(jstr(r.json, "batch"), "b1");
    ts_http_resp_free(&r);
    /* one SE binds to one MSISDN */
    expect(f, "POST", "/v1/ses", "{\"seid\":\"SE-1\",\"msisdn\":\"8613800000009\"}", 409,
           "se-msisdn-conflict");
    /* an MSISDN may hold several SEs */
    reg(f, "SE-2", "8613800000001", "registered");
    assert_int_equal(se_count(f), 2);

    http_do(f, "GET", "/v1/ses/SE-2", NULL, &r);
    assert_status(&r, 200);
    assert_string_equal(jstr(r.json, "msisdn"), "8613800000001");
    assert_string_equal(jstr(r.json, "binding"), "bound");
    assert_string_equal(jstr(r.json, "batch"), "b1");
    assert_true(json_is_null(json_object_get(r.json, "loss_listed")));
    assert_true(json_is_false(json_object_get(r.json, "model_known")));
    assert_int_equal(json_array_size(json_object_get(r.json, "apps")), 0);
    assert_true(json_is_false(json_object_get(json_object_get(r.json, "space"), "known")));
    assert_true(json_is_null(json_object_get(r.json, "active_task")));
    ts_http_resp_free(&r);
    expect(f, "GET", "/v1/ses/NOPE", NULL, 404, "se-not-found");
    expect(f, "GET", "/v1/ses/bad%20seid", NULL, 400, "bad-seid");
}

/*
 * One SEID rule (api_seid_ok) for registration, the key routes, tasks and
 * anti-theft: printable without space, '/', '?', '#', '%' -- an SEID travels
 * as a URL path segment. And one callback-URL rule (api_url_ok).
 */
static void test_seid_one_rule(void **state)
{
    struct fx *f = *state;
    static const char *const bad[] = {"SE/1", "/SE", "SE?1", "SE#1", "SE%1", "SE 1", ""};
    char body[160];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(api_seid_ok(bad[i]));
        snprintf(body, sizeof(body), "{\"seid\":\"%s\",\"msisdn\":\"8613800000001\"}", bad[i]);
        expect(f, "POST", "/v1/ses", body, 400, "bad-seid");
        snprintf(body, sizeof(body), "{\"ses\":[{\"seid\":\"%s\",\"msisdn\":\"1\"}]}", bad[i]);
        struct ts_http_resp r;
        http_do(f, "POST", "/v1/ses", body, &r);
        /* a list answers per item: this one refused with the same code */
        assert_status(&r, 200);
        json_t *item = json_array_get(json_object_get(r.json, "results"), 0);
        assert_int_equal(jint(item, "status"), 400);
        assert_string_equal(jstr(json_object_get(item, "error"), "code"), "bad-seid");
        ts_http_resp_free(&r);
        snprintf(body, sizeof(body), "{\"seid\":\"%s\",\"op\":\"push\"}", bad[i]);
        expect(f, "POST", "/v1/tasks", body, 400, "bad-seid");
    }
    assert_int_equal(se_count(f), 0);
    assert_false(api_seid_ok(NULL));
    assert_true(api_seid_ok("SE-1"));
    assert_true(api_seid_ok("89860012345678901234!~+=:;@&$"));
    char longest[65];
    memset(longest, 'A', 64);
    longest[64] = '\0';
    assert_true(api_seid_ok(longest));
    char too_long[66];
    memset(too_long, 'A', 65);
    too_long[65] = '\0';
    assert_false(api_seid_ok(too_long));
    assert_false(api_seid_ok("SE\x7f"));
    assert_false(api_seid_ok("SE\xc3\xa9"));

    assert_true(api_url_ok("https://h/cb"));
    assert_true(api_url_ok("http://127.0.0.1:9/cb"));
    assert_false(api_url_ok(NULL));
    assert_false(api_url_ok("ftp://h/cb"));
    assert_false(api_url_ok("https://"));
    assert_false(api_url_ok("https:///cb"));
    assert_false(api_url_ok("https://:80/cb"));
    assert_false(api_url_ok("https://h/c b"));
}

static void test_register_bad_input(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *body, *code;
    } cases[] = {
        {"{", "bad-json"},
        {"[]", "bad-json"},
        {"{\"seid\":\"A\",\"msisdn\":\"1\",\"x\":1}", "unknown-field"},
        {"{\"msisdn\":\"1\"}", "missing-field"},
        {"{\"seid\":\"A\"}", "missing-field"},
        {"{\"seid\":7,\"msisdn\":\"1\"}", "bad-type"},
        {"{\"seid\":\"A\",\"msisdn\":\"1\",\"batch\":null}", "bad-type"},
        {"{\"seid\":\"has space\",\"msisdn\":\"1\"}", "bad-seid"},
        {"{\"seid\":\"A\",\"msisdn\":\"12a\"}", "bad-msisdn"},
        {"{\"seid\":\"A\",\"msisdn\":\"1234567890123456789012\"}", "bad-msisdn"},
        {"{\"seid\":\"A\",\"msisdn\":\"1\",\"batch\":\"012345678901234567890123456789012\"}",
         "bad-batch"},
        {"{\"ses\":[]}", "invalid-field"},
        {"{\"ses\":{}}", "invalid-field"},
        {"{\"ses\":[{\"seid\":\"A\",\"msisdn\":\"1\"}],\"x\":1}", "unknown-field"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ts_http_resp r;
        http_do(f, "POST", "/v1/ses", cases[i].body, &r);
        if (r.status != 400) {
            fail_msg("case %zu: %d %s", i, r.status, r.body);
        }
        ts_http_assert_error(&r, 400, cases[i].code);
        ts_http_resp_free(&r);
    }
    /* 1001 items: refused whole */
    size_t cap = 64 + 1001 * 40;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t n = (size_t)snprintf(big, cap, "{\"ses\":[");
    for (int i = 0; i < 1001; i++) {
        n += (size_t)snprintf(big + n, cap - n, "%s{\"seid\":\"S%d\",\"msisdn\":\"1\"}",
                              i ? "," : "", i);
    }
    snprintf(big + n, cap - n, "]}");
    expect(f, "POST", "/v1/ses", big, 400, "invalid-field");
    free(big);
    assert_int_equal(se_count(f), 0);
    assert_int_equal(store_staged(eng_store(f->g.eng)), 0);
}

/* A list: one answer per item, valid ones stored, bad ones refused alone; one commit. */
static void test_register_list(void **state)
{
    struct fx *f = *state;
    reg(f, "DUP", "861", "registered");
    size_t cap = 200 * 64 + 256;
    char *body = malloc(cap);
    assert_non_null(body);
    size_t n = (size_t)snprintf(body, cap, "{\"ses\":[");
    for (int i = 0; i < 200; i++) {
        n += (size_t)snprintf(body + n, cap - n,
                              "%s{\"seid\":\"L-%03d\",\"msisdn\":\"8613900%05d\",\"batch\":\"lb\"}",
                              i ? "," : "", i, i / 2);
    }
    n += (size_t)snprintf(body + n, cap - n,
                          ",{\"seid\":\"bad seid\",\"msisdn\":\"1\"},{\"seid\":\"DUP\",\"msisdn\":"
                          "\"862\"},7,{\"seid\":\"L-000\",\"msisdn\":\"861390000000\"}]}");
    uint64_t c0 = commits(f);
    struct ts_http_resp r;
    http_do(f, "POST", "/v1/ses", body, &r);
    free(body);
    assert_status(&r, 200);
    assert_int_equal(commits(f) - c0, 1); /* 200 registrations, one commit */
    assert_int_equal(jint(r.json, "registered"), 201);
    assert_int_equal(jint(r.json, "refused"), 3);
    json_t *res = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(res), 204);
    assert_int_equal(jint(json_array_get(res, 0), "status"), 201);
    assert_string_equal(jstr(json_array_get(res, 0), "result"), "registered");
    json_t *bad = json_array_get(res, 200);
    assert_int_equal(jint(bad, "status"), 400);
    assert_string_equal(jstr(json_object_get(bad, "error"), "code"), "bad-seid");
    bad = json_array_get(res, 201);
    assert_int_equal(jint(bad, "status"), 409);
    assert_string_equal(jstr(json_object_get(bad, "error"), "code"), "se-msisdn-conflict");
    assert_int_equal(jint(json_array_get(res, 202), "status"), 400);
    /* a repeat inside the list sees the item staged before it */
    assert_string_equal(jstr(json_array_get(res, 203), "result"), "unchanged");
    ts_http_resp_free(&r);
    eng_restart(f);
    assert_int_equal(se_count(f), 201);
    struct store_se by[4];
    size_t nb = 0;
    struct ota_err err;
    assert_int_equal(store_se_by_msisdn(eng_store(f->g.eng), "861390000099", by, 4, &nb, &err), 0);
    assert_int_equal(nb, 2); /* L-198, L-199: one MSISDN, two SEs */
}

/* 200 single registrations in flight at once share commits (eng_after_commit). */
static void test_register_concurrent_commits(void **state)
{
    struct fx *f = *state;
    enum { N = 200 };
    int fds[N];
    uint64_t c0 = commits(f);
    for (int i = 0; i < N; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"seid\":\"C-%03d\",\"msisdn\":\"8613700%05d\"}", i, i);
        fds[i] = ts_http_send(f->loop, f->port, "POST", "/v1/ses", NULL, body, true);
    }
    for (int i = 0; i < N; i++) {
        struct ts_http_resp r;
        ts_http_recv(f->loop, fds[i], &r);
        assert_status(&r, 201);
        ts_http_resp_free(&r);
    }
    uint64_t used = commits(f) - c0;
    assert_true(used >= 1);
    if (used > N / 10) {
        fail_msg("%d registrations took %llu commits", N, (unsigned long long)used);
    }
    assert_int_equal(se_count(f), N);
    eng_restart(f);
    assert_int_equal(se_count(f), N);
}

/*
 * The store runs out of room (SQLITE_FULL, injected through max_page_count)
 * under a list of registrations: the client hears 503 commit-failed, the
 * engine stops, and nothing of that batch exists after a restart.
 */
static void test_register_store_full(void **state)
{
    struct fx *f = *state;
    reg(f, "OK-1", "1", "registered");
    /* clamped to the current size: any growth fails */
    assert_int_equal(store_test_exec(eng_store(f->g.eng), "PRAGMA max_page_count = 1"), 0);
    size_t cap = 1000 * 100 + 64;
    char *body = malloc(cap);
    assert_non_null(body);
    size_t n = (size_t)snprintf(body, cap, "{\"ses\":[");
    for (int i = 0; i < 1000; i++) {
        n += (size_t)snprintf(body + n, cap - n,
                              "%s{\"seid\":\"FULL-%04d-0123456789012345678901234567890123456789\","
                              "\"msisdn\":\"1\"}",
                              i ? "," : "", i);
    }
    snprintf(body + n, cap - n, "]}");
    struct ts_http_resp r;
    http_do(f, "POST", "/v1/ses", body, &r);
    free(body);
    ts_http_assert_error(&r, 503, "commit-failed");
    ts_http_resp_free(&r);
    struct eng_stats st;
    eng_stats(f->g.eng, &st);
    assert_int_equal(st.run, ENG_STOPPED_ERROR);
    expect(f, "POST", "/v1/ses", "{\"seid\":\"LATE\",\"msisdn\":\"1\"}", 503, "engine-stopped");
    eng_restart(f);
    assert_int_equal(se_count(f), 1);
}

/* ---- unbind / rebind and task refusals ------------------------------------------------------ */

static void test_unbind_rebind(void **state)
{
    struct fx *f = *state;
    reg(f, "SE-U", "8613800000001", "registered");
    reg(f, "SE-V", "8613800000001", "registered");
    assert_int_equal(submit(f, "SE-U"), 0);
    int64_t pre = last_task;
    struct ts_http_resp r;
    http_do(f, "POST", "/v1/ses/SE-U/unbind", "{\"reason\":\"user request\"}", &r);
    assert_status(&r, 200);
    assert_string_equal(jstr(r.json, "binding"), "unbound");
    assert_string_equal(jstr(r.json, "former_msisdn"), "8613800000001");
    ts_http_resp_free(&r);
    expect(f, "POST", "/v1/ses/SE-U/unbind", NULL, 409, "se-unbound");
    expect(f, "POST", "/v1/ses/NOPE/unbind", NULL, 404, "se-not-found");
    expect(f, "POST", "/v1/ses/SE-V/unbind", "{\"reason\":7}", 400, "bad-type");
    expect(f, "POST", "/v1/ses/SE-V/unbind", "{\"why\":\"x\"}", 400, "unknown-field");
    expect(f, "POST", "/v1/ses/SE-V/unbind", "{", 400, "bad-json");

    /* durable, shown, and no new task for it; the other SE of the MSISDN is untouched */
    eng_restart(f);
    http_do(f, "GET", "/v1/ses/SE-U", NULL, &r);
    assert_status(&r, 200);
    assert_string_equal(jstr(r.json, "binding"), "unbound");
    assert_true(json_is_null(json_object_get(r.json, "msisdn")));
    assert_true(json_is_string(json_object_get(r.json, "unbound_at")));
    ts_http_resp_free(&r);
    /* the task queued before the unbind stays (not cancelled by it) */
    struct eng_task_view tv;
    struct ota_err err;
    assert_int_equal(eng_task_get(f->g.eng, pre, &tv, &err), 0);
    assert_int_not_equal(tv.state, TASK_CANCELLED);
    assert_int_equal(submit(f, "SE-U"), -ENOLINK);
    assert_int_equal(submit(f, "SE-V"), 0);
    expect(f, "POST", "/v1/tasks", "{\"seid\":\"SE-U\",\"op\":\"push\"}", 409, "se-unbound");
    expect(f, "POST", "/v1/jobs",
           "{\"kind\":\"list\",\"seids\":[\"SE-V\",\"SE-U\"],\"op\":\"push\"}", 409, "se-unbound");

    /* bound again by registering it with a new MSISDN */
    reg(f, "SE-U", "8613900000002", "rebound");
    http_do(f, "GET", "/v1/ses/SE-U", NULL, &r);
    assert_status(&r, 200);
    assert_string_equal(jstr(r.json, "binding"), "bound");
    assert_string_equal(jstr(r.json, "msisdn"), "8613900000002");
    ts_http_resp_free(&r);
    assert_int_equal(submit(f, "SE-U"), 0);
    expect(f, "POST", "/v1/ses", "{\"seid\":\"SE-U\",\"msisdn\":\"8613800000001\"}", 409,
           "se-msisdn-conflict");
}

/* ---- the loss list -------------------------------------------------------------------------- */

static void test_loss_list(void **state)
{
    struct fx *f = *state;
    reg(f, "SE-A", "8613800000001", "registered");
    reg(f, "SE-B", "8613800000002", "registered");
    struct ts_http_resp r;
    http_do(f, "POST", "/v1/loss-list", "{\"seid\":\"SE-A\",\"reason\":\"stolen\"}", &r);
    assert_status(&r, 201);
    int64_t id_a = jint(r.json, "id");
    assert_string_equal(jstr(r.json, "kind"), "seid");
    assert_string_equal(jstr(r.json, "reason"), "stolen");
    ts_http_resp_free(&r);
    http_do(f, "POST", "/v1/loss-list", "{\"msisdn\":\"8613800000002\"}", &r);
    assert_status(&r, 201);
    int64_t id_b = jint(r.json, "id");
    ts_http_resp_free(&r);
    /* an MSISDN entry blocks an SE never registered too */
    http_do(f, "POST", "/v1/loss-list", "{\"msisdn\":\"8613800000003\"}", &r);
    assert_status(&r, 201);
    int64_t id_c = jint(r.json, "id");
    ts_http_resp_free(&r);
    expect(f, "POST", "/v1/loss-list", "{\"seid\":\"SE-A\"}", 409, "already-listed");

    /* bad input: nothing added */
    expect(f, "POST", "/v1/loss-list", "{}", 400, "invalid-field");
    expect(f, "POST", "/v1/loss-list", "{\"seid\":\"X\",\"msisdn\":\"1\"}", 400, "invalid-field");
    expect(f, "POST", "/v1/loss-list", "{\"msisdn\":\"12a\"}", 400, "bad-msisdn");
    expect(f, "POST", "/v1/loss-list", "{\"seid\":\"a b\"}", 400, "bad-seid");
    expect(f, "POST", "/v1/loss-list", "{\"seid\":\"X\",\"reason\":\"\\u0001\"}", 400,
           "invalid-field");
    expect(f, "POST", "/v1/loss-list", "{\"seid\":\"X\",\"other\":1}", 400, "unknown-field");

    /* refusals: tasks, registration and binding */
    eng_restart(f);
    assert_int_equal(submit(f, "SE-A"), -EACCES);
    assert_int_equal(submit(f, "SE-B"), -EACCES);
    expect(f, "POST", "/v1/tasks", "{\"seid\":\"SE-A\",\"op\":\"push\"}", 409, "loss-listed");
    expect(f, "POST", "/v1/ses", "{\"seid\":\"SE-A\",\"msisdn\":\"8613800000001\"}", 409,
           "loss-listed");
    expect(f, "POST", "/v1/ses", "{\"seid\":\"SE-NEW\",\"msisdn\":\"8613800000003\"}", 409,
           "loss-listed");
    http_do(f, "GET", "/v1/ses/SE-B", NULL, &r);
    assert_status(&r, 200);
    assert_int_equal(jint(json_object_get(r.json, "loss_listed"), "id"), id_b);
    ts_http_resp_free(&r);

    /* listing and paging */
    http_do(f, "GET", "/v1/loss-list", NULL, &r);
    assert_status(&r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "entries")), 3);
    assert_true(json_is_null(json_object_get(r.json, "next_after")));
    ts_http_resp_free(&r);
    http_do(f, "GET", "/v1/loss-list?limit=2", NULL, &r);
    assert_status(&r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "entries")), 2);
    int64_t next = jint(r.json, "next_after");
    ts_http_resp_free(&r);
    char path[64];
    snprintf(path, sizeof(path), "/v1/loss-list?after=%lld", (long long)next);
    http_do(f, "GET", path, NULL, &r);
    assert_status(&r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "entries")), 1);
    assert_int_equal(jint(json_array_get(json_object_get(r.json, "entries"), 0), "id"), id_c);
    ts_http_resp_free(&r);
    expect(f, "GET", "/v1/loss-list?limit=0", NULL, 400, "invalid-query");
    expect(f, "GET", "/v1/loss-list?limit=1001", NULL, 400, "invalid-query");
    expect(f, "GET", "/v1/loss-list?after=x", NULL, 400, "invalid-query");

    /* removal lifts the refusal */
    snprintf(path, sizeof(path), "/v1/loss-list/%lld", (long long)id_a);
    http_do(f, "DELETE", path, NULL, &r);
    assert_status(&r, 200);
    assert_string_equal(jstr(r.json, "value"), "SE-A");
    ts_http_resp_free(&r);
    expect(f, "DELETE", path, NULL, 404, "not-found");
    expect(f, "DELETE", "/v1/loss-list/0", NULL, 400, "bad-id");
    expect(f, "DELETE", "/v1/loss-list/abc", NULL, 400, "bad-id");
    eng_restart(f);
    assert_int_equal(submit(f, "SE-A"), 0);
    assert_int_equal(submit(f, "SE-B"), -EACCES);
}

/* A batch (filter) job skips unbound and loss-listed SEs instead of failing. */
static void test_filter_job_skips(void **state)
{
    struct fx *f = *state;
    reg(f, "F-1", "8613800000001", "registered");
    reg(f, "F-2", "8613800000002", "registered");
    reg(f, "F-3", "8613800000003", "registered");
    reg(f, "F-4", "8613800000004", "registered");
    expect(f, "POST", "/v1/ses/F-2/unbind", NULL, 200, NULL);
    expect(f, "POST", "/v1/loss-list", "{\"msisdn\":\"8613800000003\"}", 201, NULL);
    struct ts_http_resp r;
    http_do(f, "POST", "/v1/jobs",
            "{\"kind\":\"filter\",\"seid_from\":\"F-1\",\"seid_to\":\"F-9\",\"op\":\"push\","
            "\"schedule\":{\"delay_s\":60}}",
            &r);
    assert_status(&r, 201);
    int64_t job = jint(r.json, "id");
    ts_http_resp_free(&r);
    struct ota_err err;
    struct eng_job_progress pr;
    for (int i = 0; i < 50; i++) {
        ts_http_pump(f->loop);
        assert_int_equal(eng_job_progress(f->g.eng, job, &pr, &err), 0);
        if (pr.expanded) {
            break;
        }
    }
    assert_true(pr.expanded);
    assert_int_equal(pr.total, 2); /* F-1 and F-4 */
    int64_t active = 0, queued[4];
    size_t nq = 0;
    static const struct {
        const char *seid;
        size_t n;
    } want[] = {{"F-1", 1}, {"F-2", 0}, {"F-3", 0}, {"F-4", 1}};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(eng_se_tasks(f->g.eng, want[i].seid, &active, queued, 4, &nq, &err), 0);
        assert_int_equal(nq + (active != 0), want[i].n);
    }
}

static int after_calls, after_rc;

static void after_cb(void *arg, int rc)
{
    (void)arg;
    after_calls++;
    after_rc = rc;
}

static int64_t raw_se_count(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM se", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

/* eng_after_commit: never from inside the call, once, after what was staged is on disk. */
static void test_after_commit(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    after_calls = 0;
    after_rc = 1;
    assert_int_equal(eng_after_commit(f->g.eng, NULL, NULL, &err), -EINVAL);
    int64_t id;
    assert_int_equal(store_se_put(eng_store(f->g.eng), "AC-1", "1", "", &id, &err), 0);
    assert_int_equal(eng_after_commit(f->g.eng, after_cb, NULL, &err), 0);
    assert_int_equal(after_calls, 0);
    assert_int_equal(raw_se_count(f->db), 0); /* staged only */
    for (int i = 0; i < 20 && after_calls == 0; i++) {
        ts_http_pump(f->loop);
    }
    assert_int_equal(after_calls, 1);
    assert_int_equal(after_rc, 0);
    assert_int_equal(raw_se_count(f->db), 1); /* on disk when told */
    /* nothing staged: still answered (after the next turn's empty commit) */
    assert_int_equal(eng_after_commit(f->g.eng, after_cb, NULL, &err), 0);
    for (int i = 0; i < 20 && after_calls == 1; i++) {
        ts_http_pump(f->loop);
    }
    assert_int_equal(after_calls, 2);
    for (int i = 0; i < 5; i++) {
        ts_http_pump(f->loop);
    }
    assert_int_equal(after_calls, 2); /* once each */
    /* eng_close answers a waiter after its last commit */
    assert_int_equal(store_se_put(eng_store(f->g.eng), "AC-2", "1", "", &id, &err), 0);
    assert_int_equal(eng_after_commit(f->g.eng, after_cb, NULL, &err), 0);
    eng_restart(f);
    assert_int_equal(after_calls, 3);
    assert_int_equal(after_rc, 0);
    assert_int_equal(se_count(f), 2);
    /* a stopped engine takes no waiter; one waiting when it stops hears the error */
    assert_int_equal(store_se_put(eng_store(f->g.eng), "AC-3", "1", "", &id, &err), 0);
    assert_int_equal(eng_after_commit(f->g.eng, after_cb, NULL, &err), 0);
    struct ota_err why = {.msg = "injected"};
    eng_fail_stop(f->g.eng, -EIO, &why);
    assert_int_equal(after_calls, 4);
    assert_int_equal(after_rc, -EIO);
    assert_int_equal(eng_after_commit(f->g.eng, after_cb, NULL, &err), -ESHUTDOWN);
    eng_restart(f);
    assert_int_equal(after_calls, 4);
    assert_int_equal(se_count(f), 2);
}

/* The engine's build_script hook reads the SE's stored model through gw_ses_plat_ctx. */
static void test_model_for_build(void **state)
{
    struct fx *f = *state;
    reg(f, "SE-B", "1", "registered");
    struct store_se se;
    struct ota_err err;
    assert_int_equal(store_se_find(eng_store(f->g.eng), "SE-B", &se, &err), 0);
    const struct plat_ctx *ctx = gw_ses_plat_ctx(&f->g);
    assert_non_null(ctx);
    assert_non_null(ctx->model_for);
    const struct plat_model *m = ctx->model_for(ctx->model_arg, "SE-B");
    assert_non_null(m); /* the empty model of an SE without results */
    assert_int_equal(m->n_apps, 0);
    assert_null(ctx->model_for(ctx->model_arg, "NOPE"));
    assert_int_equal(store_se_model_put(eng_store(f->g.eng), se.id,
                                        "{\"free_nv\":100,\"free_v\":10,\"reserved_nv\":0,"
                                        "\"reserved_v\":0,\"apps\":[],\"elfs\":[{\"aid\":"
                                        "\"A000000003101001\",\"partial\":false,\"size\":9}],"
                                        "\"sds\":[]}",
                                        5, &err),
                     0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    gw_ses_stop(&f->g); /* the cache held the empty model: start cold */
    assert_int_equal(gw_ses_start(&f->g, &err), 0);
    ctx = gw_ses_plat_ctx(&f->g);
    m = ctx->model_for(ctx->model_arg, "SE-B");
    assert_non_null(m);
    assert_int_equal(m->n_elfs, 1);
    assert_true(m->space_known);
    assert_int_equal(m->free_nv, 100);
    assert_null(gw_ses_plat_ctx(NULL));
}

/* ---- audit ---------------------------------------------------------------------------------- */

static int64_t audit_rows(const char *path, const char *action, const char *target)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM audit_log WHERE action = ?1"
                                        " AND target = ?2",
                                        -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(q, 1, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, target, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

/* Unbind, rebind and loss-list changes are audited; no audit entry, no change. */
static void test_audit(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    snprintf(f->g.conf.db_path, sizeof(f->g.conf.db_path), "%s", f->db);
    if (gw_audit_start(&f->g, &err) < 0) {
        fail_msg("audit: %s", err.msg);
    }
    char apath[128];
    snprintf(apath, sizeof(apath), "%s.audit", f->db);
    reg(f, "SE-AU", "8613800000001", "registered");
    expect(f, "POST", "/v1/ses/SE-AU/unbind", NULL, 200, NULL);
    assert_int_equal(audit_rows(apath, "se.unbind", "se:SE-AU"), 1);
    reg(f, "SE-AU", "8613800000002", "rebound");
    assert_int_equal(audit_rows(apath, "se.bind", "se:SE-AU"), 1);
    expect(f, "POST", "/v1/loss-list", "{\"msisdn\":\"8613800000009\"}", 201, NULL);
    assert_int_equal(audit_rows(apath, "loss.add", "msisdn:8613800000009"), 1);
    expect(f, "DELETE", "/v1/loss-list/1", NULL, 200, NULL);
    assert_int_equal(audit_rows(apath, "loss.remove", "msisdn:8613800000009"), 1);

    /* another process holds the audit file's write lock: the change is refused */
    sqlite3 *lock = NULL;
    assert_int_equal(sqlite3_open(apath, &lock), SQLITE_OK);
    assert_int_equal(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    expect(f, "POST", "/v1/ses/SE-AU/unbind", NULL, 503, "audit-failed");
    expect(f, "POST", "/v1/loss-list", "{\"seid\":\"SE-AU\"}", 503, "audit-failed");
    sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(lock);
    assert_int_equal(store_staged(eng_store(f->g.eng)), 0);
    struct ts_http_resp r;
    http_do(f, "GET", "/v1/ses/SE-AU", NULL, &r);
    assert_status(&r, 200);
    assert_string_equal(jstr(r.json, "binding"), "bound");
    assert_true(json_is_null(json_object_get(r.json, "loss_listed")));
    ts_http_resp_free(&r);
    gw_audit_stop(&f->g);
}

/* ---- roles and ownership (issue #7) -------------------------------------------------------- */

struct tok {
    char hdr[GW_AUTH_TOKEN_LEN + 40];
};

static void mint(struct fx *f, const char *name, enum gw_role role, struct tok *t)
{
    char token[GW_AUTH_TOKEN_LEN + 1];
    int64_t id;
    struct ota_err err;
    if (gw_auth_token_create(&f->g, "test", name, role, token, &id, &err) < 0) {
        fail_msg("token %s: %s", name, err.msg);
    }
    snprintf(t->hdr, sizeof(t->hdr), "Authorization: Bearer %s\r\n", token);
}

static int as(struct fx *f, const struct tok *t, const char *method, const char *path,
              const char *body, struct ts_http_resp *r)
{
    ts_http_do(f->loop, f->port, method, path, t ? t->hdr : NULL, body, false, r);
    return r->status;
}

static void test_roles_ownership(void **state)
{
    struct fx *f = *state;
    struct tok admin, ops, p1, p2, client;
    mint(f, "admin1", GW_ROLE_ADMIN, &admin);
    mint(f, "ops1", GW_ROLE_OPERATOR, &ops);
    mint(f, "plat1", GW_ROLE_PLATFORM, &p1);
    mint(f, "plat2", GW_ROLE_PLATFORM, &p2);
    mint(f, "wallet1", GW_ROLE_CLIENT, &client);
    struct ts_http_resp r;
    const char *se = "{\"seid\":\"SE-R\",\"msisdn\":\"8613800000001\"}";
    assert_int_equal(as(f, NULL, "POST", "/v1/ses", se, &r), 401);
    ts_http_resp_free(&r);
    assert_int_equal(as(f, &client, "POST", "/v1/ses", se, &r), 403);
    ts_http_resp_free(&r);
    assert_int_equal(se_count(f), 0);
    assert_int_equal(as(f, &p1, "POST", "/v1/ses", se, &r), 201);
    ts_http_resp_free(&r);
    /* the loss list is staff only */
    assert_int_equal(as(f, &p1, "POST", "/v1/loss-list", "{\"seid\":\"X\"}", &r), 403);
    ts_http_resp_free(&r);
    assert_int_equal(as(f, &p1, "GET", "/v1/loss-list", NULL, &r), 403);
    ts_http_resp_free(&r);
    assert_int_equal(as(f, &ops, "POST", "/v1/loss-list", "{\"seid\":\"X\"}", &r), 201);
    ts_http_resp_free(&r);
    assert_int_equal(as(f, &ops, "DELETE", "/v1/loss-list/1", NULL, &r), 200);
    ts_http_resp_free(&r);

    /* each platform sees its own tasks on the SE, and how many others wait */
    const char *task = "{\"seid\":\"SE-R\",\"op\":\"push\",\"schedule\":{\"delay_s\":60}}";
    assert_int_equal(as(f, &p1, "POST", "/v1/tasks", task, &r), 201);
    int64_t t1 = jint(r.json, "id");
    ts_http_resp_free(&r);
    assert_int_equal(as(f, &p2, "POST", "/v1/tasks", task, &r), 201);
    ts_http_resp_free(&r);
    assert_int_equal(as(f, &p1, "GET", "/v1/ses/SE-R", NULL, &r), 200);
    json_t *q = json_object_get(r.json, "queued_tasks");
    assert_int_equal(json_array_size(q), 1);
    assert_int_equal(jint(json_array_get(q, 0), "id"), t1);
    assert_int_equal(jint(r.json, "queued_total"), 1);
    assert_int_equal(jint(r.json, "other_tasks"), 1);
    ts_http_resp_free(&r);
    assert_int_equal(as(f, &admin, "GET", "/v1/ses/SE-R", NULL, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "queued_tasks")), 2);
    assert_int_equal(jint(r.json, "other_tasks"), 0);
    ts_http_resp_free(&r);
    /*
     * unbind is staff only: SEs have no owner, and an unbound SE refuses
     * anti-theft lock / wipe, so a platform could disarm another's handset.
     * Refused before anything changes; staff unbind, audited by name.
     */
    assert_int_equal(as(f, &p2, "POST", "/v1/ses/SE-R/unbind", NULL, &r), 403);
    ts_http_resp_free(&r);
    assert_int_equal(as(f, &p1, "POST", "/v1/ses/SE-R/unbind", NULL, &r), 403);
    ts_http_resp_free(&r);
    assert_int_equal(as(f, &client, "POST", "/v1/ses/SE-R/unbind", NULL, &r), 403);
    ts_http_resp_free(&r);
    assert_int_equal(as(f, &admin, "GET", "/v1/ses/SE-R", NULL, &r), 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "binding")), "bound");
    ts_http_resp_free(&r);
    assert_int_equal(as(f, &ops, "POST", "/v1/ses/SE-R/unbind", NULL, &r), 200);
    ts_http_resp_free(&r);
    char apath[128];
    snprintf(apath, sizeof(apath), "%s.audit", f->db);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(apath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT actor FROM audit_log WHERE action = 'se.unbind'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ops1");
    assert_int_equal(sqlite3_step(st), SQLITE_DONE); /* the refused ones wrote nothing */
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* SDs show the key version the key store holds current (the ISD too); null without one. */
static void test_sd_key_versions(void **state)
{
    struct fx *f = *state;
    reg(f, "SE-K", "1", "registered");
    struct ts_http_resp r;
    http_do(f, "GET", "/v1/ses/SE-K", NULL, &r);
    assert_status(&r, 200);
    assert_true(json_is_null(json_object_get(r.json, "isd_key_version"))); /* no key store */
    ts_http_resp_free(&r);

    char kpath[128];
    snprintf(kpath, sizeof(kpath), "%s.keys", f->db);
    struct ota_err err;
    assert_int_equal(gw_keys_open(kpath, false, &f->g.keys, &err), 0);
    struct gw_keys_sd sd;
    memset(&sd, 0, sizeof(sd));
    memcpy(sd.aid, plat_isd_aid, sizeof(plat_isd_aid));
    sd.aid_len = sizeof(plat_isd_aid);
    sd.kvn = 32;
    struct ota_key *keys[] = {&sd.enc, &sd.mac, &sd.dek};
    for (size_t i = 0; i < 3; i++) {
        keys[i]->cipher = OTA_CIPHER_3DES2;
        keys[i]->len = 16;
        memset(keys[i]->bytes, 0x40 + (int)i, 16);
    }
    assert_int_equal(gw_keys_put_sd(f->g.keys, "SE-K", &sd, &err), 0);
    gw_keys_sd_wipe(&sd);
    /* the model knows the ISD and one SSD without keys */
    struct store_se se;
    assert_int_equal(store_se_find(eng_store(f->g.eng), "SE-K", &se, &err), 0);
    assert_int_equal(
        store_se_model_put(eng_store(f->g.eng), se.id,
                           "{\"free_nv\":null,\"free_v\":null,\"reserved_nv\":0,\"reserved_v\":0,"
                           "\"apps\":[],\"elfs\":[],\"sds\":[{\"aid\":\"A000000151000000\","
                           "\"lcs\":15,\"kvn\":0},{\"aid\":\"A00000015153534401\",\"lcs\":15,"
                           "\"kvn\":0}]}",
                           1, &err),
        0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    gw_ses_stop(&f->g); /* written behind the cache's back: start it cold */
    assert_int_equal(gw_ses_start(&f->g, &err), 0);
    http_do(f, "GET", "/v1/ses/SE-K", NULL, &r);
    assert_status(&r, 200);
    assert_int_equal(jint(r.json, "isd_key_version"), 32);
    json_t *sds = json_object_get(r.json, "sds");
    assert_int_equal(json_array_size(sds), 2);
    assert_int_equal(jint(json_array_get(sds, 0), "key_version"), 32);
    assert_true(json_is_null(json_object_get(json_array_get(sds, 1), "key_version")));
    /* never key bytes */
    assert_null(strstr(r.body, "4040404040"));
    ts_http_resp_free(&r);
    gw_keys_close(f->g.keys);
    f->g.keys = NULL;
}

/* ---- the model ------------------------------------------------------------------------------- */

static const uint8_t app_aid[] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10, 0x01};
static const uint8_t elf_aid[] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10};

/* A task result as the engine's final hook sees it. */
static void final_view(struct eng_task_view *v, const char *seid, enum task_op op,
                       enum task_state st, const char *params, const char *result)
{
    memset(v, 0, sizeof(*v));
    v->id = 42;
    v->seid = seid;
    v->msisdn = "";
    v->op = op;
    v->channel = TASK_CH_PUSH;
    v->state = st;
    v->reason = st == TASK_DONE ? TASK_R_NONE : TASK_R_CARD_SW;
    v->reason_text = "";
    v->params = params;
    v->result = result;
}

static json_t *app_of(json_t *se, size_t i)
{
    return json_array_get(json_object_get(se, "apps"), i);
}

static void test_model_from_results(void **state)
{
    struct fx *f = *state;
    reg(f, "SE-M", "8613800000001", "registered");
    struct store_se se;
    struct ota_err err;
    assert_int_equal(store_se_find(eng_store(f->g.eng), "SE-M", &se, &err), 0);
    /* a usable app with its load file and known free space, as an info sync would leave it */
    struct plat_model m;
    plat_model_init(&m);
    plat_model_set_space(&m, 50000, 2000);
    m.n_elfs = 1;
    m.elfs[0].aid.len = sizeof(elf_aid);
    memcpy(m.elfs[0].aid.b, elf_aid, sizeof(elf_aid));
    m.elfs[0].size = 1200;
    m.n_apps = 1;
    m.apps[0].aid.len = sizeof(app_aid);
    memcpy(m.apps[0].aid.b, app_aid, sizeof(app_aid));
    m.apps[0].elf = m.elfs[0].aid;
    m.apps[0].state = PLAT_APP_USABLE;
    m.apps[0].lcs = 0x07;
    m.apps[0].nv_reserved = 300;
    json_t *mj = plat_model_to_json(&m);
    char *txt = json_dumps(mj, JSON_COMPACT);
    json_decref(mj);
    assert_int_equal(store_se_model_put(eng_store(f->g.eng), se.id, txt, 1000, &err), 0);
    free(txt);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);

    struct ts_http_resp r;
    http_do(f, "GET", "/v1/ses/SE-M", NULL, &r);
    assert_status(&r, 200);
    assert_true(json_is_true(json_object_get(r.json, "model_known")));
    json_t *a = app_of(r.json, 0);
    assert_string_equal(jstr(a, "state"), "usable");
    assert_int_equal(jint(a, "size"), 1500); /* load file + instance data (5.8.7.1) */
    json_t *sp = json_object_get(r.json, "space");
    assert_true(json_is_true(json_object_get(sp, "known")));
    assert_int_equal(jint(sp, "free_nv"), 50000);
    assert_int_equal(jint(sp, "free_v"), 2000);
    ts_http_resp_free(&r);

    /* an app-lock that ran: the final hook moves the app to locked and persists it */
    char params[96];
    snprintf(params, sizeof(params), "{\"aid\":\"A0000000031010 01\"}");
    snprintf(params, sizeof(params), "{\"aid\":\"A000000003101001\"}");
    struct eng_task_view v;
    final_view(&v, "SE-M", TASK_OP_APP_LOCK, TASK_DONE, params, "{\"script_done\":1}");
    gw_ses_task_final(&f->g, &v);
    assert_true(store_staged(eng_store(f->g.eng)) > 0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    eng_restart(f); /* the cache is gone: what GET shows comes from the file */
    http_do(f, "GET", "/v1/ses/SE-M", NULL, &r);
    assert_status(&r, 200);
    assert_string_equal(jstr(app_of(r.json, 0), "state"), "locked");
    assert_true(json_is_string(json_object_get(r.json, "model_updated_at")));
    ts_http_resp_free(&r);

    /* an unlock that failed before any command ran changes nothing (and writes nothing) */
    final_view(&v, "SE-M", TASK_OP_APP_UNLOCK, TASK_FAILED, params, "{\"script_done\":0}");
    gw_ses_task_final(&f->g, &v);
    assert_int_equal(store_staged(eng_store(f->g.eng)), 0);
    /* an unlock that ran (no result JSON: done means the whole script ran) */
    final_view(&v, "SE-M", TASK_OP_APP_UNLOCK, TASK_DONE, params, NULL);
    gw_ses_task_final(&f->g, &v);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    http_do(f, "GET", "/v1/ses/SE-M", NULL, &r);
    assert_status(&r, 200);
    assert_string_equal(jstr(app_of(r.json, 0), "state"), "usable"); /* unlock done: usable */
    ts_http_resp_free(&r);

    /*
     * After a restart the engine does not hold params / result in memory: the hook gets NULL
     * and reads the task's row (here a real one: a lock submitted, its row staged).
     */
    struct eng_task_spec spec = {
        .seid = "SE-M", .op = TASK_OP_APP_LOCK, .channel = TASK_CH_PUSH, .params = params};
    int64_t tid = 0;
    assert_int_equal(eng_submit(f->g.eng, &spec, NULL, NULL, &tid, &err), 0);
    final_view(&v, "SE-M", TASK_OP_APP_LOCK, TASK_DONE, NULL, NULL);
    v.id = tid;
    gw_ses_task_final(&f->g, &v);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    http_do(f, "GET", "/v1/ses/SE-M", NULL, &r);
    assert_status(&r, 200);
    assert_string_equal(jstr(app_of(r.json, 0), "state"), "locked");
    ts_http_resp_free(&r);
    /* ... and with no such row, nothing happens */
    v.id = 9999;
    gw_ses_task_final(&f->g, &v);
    assert_int_equal(store_staged(eng_store(f->g.eng)), 0);

    /* ops without a model effect and unknown SEs are ignored */
    final_view(&v, "SE-M", TASK_OP_PUSH, TASK_DONE, "{}", NULL);
    gw_ses_task_final(&f->g, &v);
    final_view(&v, "NOPE", TASK_OP_APP_LOCK, TASK_DONE, params, NULL);
    gw_ses_task_final(&f->g, &v);
    final_view(&v, "SE-M", TASK_OP_APP_LOCK, TASK_DONE, "{\"aid\":\"zz\"}", NULL);
    gw_ses_task_final(&f->g, &v); /* bad params: logged, model unchanged */
    assert_int_equal(store_staged(eng_store(f->g.eng)), 0);

    /* a corrupt stored model: GET answers 500, never crashes */
    assert_int_equal(store_test_exec(eng_store(f->g.eng), "UPDATE se_model SET model = '{'"), 0);
    eng_restart(f);
    expect(f, "GET", "/v1/ses/SE-M", NULL, 500, "se-model");
}

/* ---- the separate pull listener (gw_start) ------------------------------------------------- */

/* A loopback port nobody listens on right now. */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_pull_listener(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/otagw-pull-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char text[1024];
    snprintf(text, sizeof(text),
             "[gateway]\nlisten = 127.0.0.1:0\npull_listen = 127.0.0.1:%u\nplain_http = yes\n"
             "log_level = err\n[engine]\ndb = %s/gw.db\n[link sim]\nkind = cmpp\n"
             "host = 127.0.0.1\nport = 1\nsp_id = 901234\nsecret = otagw-test\n",
             (unsigned)free_port(), dir);
    struct gw_conf c;
    struct ota_err err;
    if (gw_conf_parse(text, strlen(text), "t.conf", &c, &err) < 0) {
        fail_msg("conf: %s", err.msg);
    }
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(loop);
    struct gw *g = NULL;
    if (gw_start(loop, &c, &g, &err) < 0) {
        fail_msg("gw_start: %s", err.msg);
    }
    gw_conf_fini(&c);
    assert_non_null(g->pull_http);
    uint16_t main_port = http_server_port(g->http);
    uint16_t pull_port = http_server_port(g->pull_http);
    assert_true(main_port != pull_port);
    static const struct {
        const char *method, *path, *body;
        bool wallet;
    } probes[] = {
        {"GET", "/v1/loss-list", NULL, false},
        {"POST", "/v1/ses", "{", false},
        {"GET", "/v1/tasks", NULL, false},
        {"POST", "/v1/wallet/pull", "{", true},
    };
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        struct ts_http_resp on_main, on_pull;
        ts_http_do(loop, main_port, probes[i].method, probes[i].path, NULL, probes[i].body, false,
                   &on_main);
        ts_http_do(loop, pull_port, probes[i].method, probes[i].path, NULL, probes[i].body, false,
                   &on_pull);
        /*
         * A route's own answer (400, 401, 200...) vs the HTTP layer's 404 for no route; gw_route
         * (gateway/auth.c) puts the /v1/wallet/ routes on g->pull_http.
         */
        bool main_has = on_main.status != 404, pull_has = on_pull.status != 404;
        if (main_has != !probes[i].wallet || pull_has != probes[i].wallet) {
            fail_msg("%s %s: main %d, pull %d", probes[i].method, probes[i].path, on_main.status,
                     on_pull.status);
        }
        ts_http_resp_free(&on_main);
        ts_http_resp_free(&on_pull);
    }
    gw_stop(g);

    /* pull_listen not given (= listen): one listener serves both APIs */
    snprintf(text, sizeof(text),
             "[gateway]\nlisten = 127.0.0.1:0\nplain_http = yes\nlog_level = err\n[engine]\n"
             "db = %s/gw.db\n[link sim]\nkind = cmpp\nhost = 127.0.0.1\nport = 1\n"
             "sp_id = 901234\nsecret = otagw-test\n",
             dir);
    if (gw_conf_parse(text, strlen(text), "t.conf", &c, &err) < 0) {
        fail_msg("conf: %s", err.msg);
    }
    if (gw_start(loop, &c, &g, &err) < 0) {
        fail_msg("gw_start: %s", err.msg);
    }
    gw_conf_fini(&c);
    assert_null(g->pull_http);
    struct ts_http_resp r;
    ts_http_do(loop, http_server_port(g->http), "POST", "/v1/wallet/pull", NULL, "{", false, &r);
    assert_int_not_equal(r.status, 404);
    ts_http_resp_free(&r);
    gw_stop(g);
    ev_loop_destroy(loop);
    (void)ts_rmdir_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seid_one_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_concurrent_commits, setup_coalesced,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_register_store_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbind_rebind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loss_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roles_ownership, setup_auth, teardown_auth),
        cmocka_unit_test_setup_teardown(test_filter_job_skips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_for_build, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sd_key_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_from_results, setup, teardown),
        cmocka_unit_test(test_pull_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
