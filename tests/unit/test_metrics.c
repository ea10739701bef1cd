/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the metrics and the dashboard (gateway/metrics.c,
 * gateway/dashboard.c) over loopback HTTP, with a hand-built struct gw (the
 * task engine on a temp database with a fake bearer, the HTTP server on
 * 127.0.0.1 port 0): the /metrics text parses as the Prometheus exposition
 * format 0.0.4 line by line; counters, reasons and the latency histogram
 * move when tasks are accepted, fail and are cancelled, and agree with
 * /v1/stats; HTTP answers are counted; the role sets of the routes; the
 * dashboard page, script and style with their types and security headers,
 * referring only to same-origin paths; the dashboard's JSON digest; the
 * quantile estimate and label escaping.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "gateway/auth.h"
#include "gateway/gw.h"
#include "gateway/metrics.h"
#include "tests/support/ts_http.h"
#include "tests/support/tsupport.h"

#define MAX_SENT 16

struct fx {
    struct ev_loop *loop;
    char dir[64], db[96];
    struct gw g;
    uint16_t port;
    uint64_t tokens[MAX_SENT];
    unsigned n_sent;
    unsigned finals;
};

static int fb_submit(void *arg, const struct bearer_msg *m, struct ota_err *err)
{
    (void)err;
    struct fx *f = arg;
    if (f->n_sent < MAX_SENT) {
        f->tokens[f->n_sent] = m->token;
    }
    f->n_sent++;
    return 0;
}

static void fb_noop(void *arg)
{
    (void)arg;
}

static void hook_final(void *arg, const struct eng_task_view *t)
{
    struct fx *f = arg;
    f->finals++;
    gw_metrics_task_final(&f->g, t);
}

static int setup_with(void **state, bool auth)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/otagw-metrics-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/q.db", f->dir);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    f->g.loop = f->loop;
    f->g.log = stderr;
    struct eng_conf c;
    eng_conf_defaults(&c);
    c.db_path = f->db;
    c.durable = false;
    c.commit_interval_ms = 0;
    struct eng_hooks hooks = {.final = hook_final, .arg = f};
    struct ota_err err;
    assert_int_equal(eng_open(f->loop, &c, &hooks, &f->g.eng, &err), 0);
    struct eng_bearer_ops ops = {
        .submit = fb_submit, .release_acks = fb_noop, .discard_acks = fb_noop, .arg = f};
    eng_set_bearer(f->g.eng, &ops);
    struct http_conf hc = {.bind_addr = "127.0.0.1", .port = 0, .idle_timeout_s = 5};
    assert_int_equal(http_server_new(f->loop, &hc, &f->g.http, &err), 0);
    f->port = http_server_port(f->g.http);
    if (auth) {
        /* routes registered after this are wrapped with the token and role check */
        snprintf(f->g.conf.db_path, sizeof(f->g.conf.db_path), "%s", f->db);
        if (gw_auth_start(&f->g, &err) < 0) {
            fail_msg("gw_auth_start: %s", err.msg);
        }
    }
    assert_int_equal(gw_api_tasks_routes(&f->g, &err), 0);
    if (gw_metrics_start(&f->g, &err) < 0) {
        fail_msg("gw_metrics_start: %s", err.msg);
    }
    static const char *const ses[] = {"SE-A", "SE-B", "SE-C"};
    for (size_t i = 0; i < 3; i++) {
        char msisdn[16];
        snprintf(msisdn, sizeof(msisdn), "861390000000%zu", i);
        assert_int_equal(eng_se_register(f->g.eng, ses[i], msisdn, "b1", &err), 0);
    }
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, false);
}

static int setup_auth(void **state)
{
    return setup_with(state, true);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    eng_close(f->g.eng);
    http_server_free(f->g.http);
    f->g.http = NULL;
    gw_metrics_stop(&f->g);
    assert_null(f->g.metrics);
    gw_auth_stop(&f->g);
    ev_loop_destroy(f->loop);
    (void)ts_rmdir_tree(f->dir);
    free(f);
    return 0;
}

static void pump(struct fx *f, int n)
{
    for (int i = 0; i < n; i++) {
        ts_http_pump(f->loop);
    }
}

static void get(struct fx *f, const char *path, struct ts_http_resp *r)
{
    ts_http_do(f->loop, f->port, "GET", path, NULL, NULL, true, r);
}

static void header_is(const struct ts_http_resp *r, const char *name, const char *want)
{
    char v[512];
    if (!ts_http_header(r->head, name, v, sizeof(v))) {
        fail_msg("no header %s", name);
    }
    assert_string_equal(v, want);
}

/* ---- a strict reader of the exposition format ---- */

struct series {
    char key[512]; /* name{labels} as written */
    double v;
};

struct expo {
    struct series s[1024];
    size_t n;
    char typed[256][128]; /* families with a # TYPE */
    char types[256][32];
    size_t n_typed;
};

static bool name_ok(const char *p, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)p[0]) || p[0] == '_' || p[0] == ':')) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == ':')) {
            return false;
        }
    }
    return true;
}

/* The family a sample belongs to: histogram samples carry _bucket / _sum / _count. */
static const char *family_of(struct expo *e, const char *name, size_t n)
{
    for (size_t i = 0; i < e->n_typed; i++) {
        size_t l = strlen(e->typed[i]);
        if (l == n && !strncmp(name, e->typed[i], n)) {
            return e->types[i];
        }
        if (!strcmp(e->types[i], "histogram") && n > l && !strncmp(name, e->typed[i], l)) {
            const char *suf = name + l;
            size_t sl = n - l;
            if ((sl == 7 && !strncmp(suf, "_bucket", 7)) || (sl == 4 && !strncmp(suf, "_sum", 4)) ||
                (sl == 6 && !strncmp(suf, "_count", 6))) {
                return e->types[i];
            }
        }
    }
    return NULL;
}

/* Labels: name="value"(,name="value")* with \\ \" \n escapes only. */
static bool labels_ok(const char *p, const char *end)
{
    while (p < end) {
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || !name_ok(p, (size_t)(eq - p)) || eq + 1 >= end || eq[1] != '"') {
            return false;
        }
        p = eq + 2;
        while (p < end && *p != '"') {
            if (*p == '\\') {
                if (p + 1 >= end || !(p[1] == '\\' || p[1] == '"' || p[1] == 'n')) {
                    return false;
                }
                p++;
            } else if (*p == '\n') {
                return false;
            }
            p++;
        }
        if (p >= end) {
            return false;
        }
        p++; /* the closing quote */
        if (p < end) {
            if (*p != ',') {
                return false;
            }
            p++;
        }
    }
    return true;
}

static void parse_expo(const char *text, struct expo *e)
{
    memset(e, 0, sizeof(*e));
    const char *line = text;
    size_t lineno = 0;
    while (*line) {
        lineno++;
        const char *nl = strchr(line, '\n');
        if (!nl) {
            fail_msg("line %zu: not terminated by a newline", lineno);
        }
        char buf[512];
        size_t len = (size_t)(nl - line);
        assert_true(len < sizeof(buf));
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = nl + 1;
        if (buf[0] == '#') {
            char name[128], type[32];
            if (!strncmp(buf, "# HELP ", 7)) {
                assert_int_equal(sscanf(buf + 7, "%127s", name), 1);
                assert_true(name_ok(name, strlen(name)));
                continue;
            }
            if (!strncmp(buf, "# TYPE ", 7)) {
                assert_int_equal(sscanf(buf + 7, "%127s %31s", name, type), 2);
                assert_true(name_ok(name, strlen(name)));
                if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram")) {
                    fail_msg("line %zu: type %s", lineno, type);
                }
                for (size_t i = 0; i < e->n_typed; i++) {
                    if (!strcmp(e->typed[i], name)) {
                        fail_msg("line %zu: %s typed twice", lineno, name);
                    }
                }
                assert_true(e->n_typed < 256);
                snprintf(e->typed[e->n_typed], sizeof(e->typed[0]), "%s", name);
                snprintf(e->types[e->n_typed], sizeof(e->types[0]), "%s", type);
                e->n_typed++;
                continue;
            }
            fail_msg("line %zu: a comment that is neither HELP nor TYPE: %s", lineno, buf);
        }
        /* name{labels} value */
        char *sp = strrchr(buf, ' ');
        if (!sp) {
            fail_msg("line %zu: no value: %s", lineno, buf);
        }
        *sp = '\0';
        const char *val = sp + 1;
        char *end = NULL;
        double v = strtod(val, &end);
        if (strcmp(val, "+Inf") && strcmp(val, "-Inf") && strcmp(val, "NaN") &&
            (end == val || *end)) {
            fail_msg("line %zu: value '%s'", lineno, val);
        }
        char *brace = strchr(buf, '{');
        size_t nlen = brace ? (size_t)(brace - buf) : strlen(buf);
        if (!name_ok(buf, nlen)) {
            fail_msg("line %zu: metric name in '%s'", lineno, buf);
        }
        if (brace) {
            size_t bl = strlen(buf);
            if (buf[bl - 1] != '}' || !labels_ok(brace + 1, buf + bl - 1)) {
                fail_msg("line %zu: labels in '%s'", lineno, buf);
            }
        }
        const char *type = family_of(e, buf, nlen);
        if (!type) {
            fail_msg("line %zu: %s has no # TYPE before it", lineno, buf);
        }
        if (!strcmp(type, "counter") && v < 0) {
            fail_msg("line %zu: negative counter", lineno);
        }
        for (size_t i = 0; i < e->n; i++) {
            if (!strcmp(e->s[i].key, buf)) {
                fail_msg("line %zu: series %s twice", lineno, buf);
            }
        }
        assert_true(e->n < 1024);
        snprintf(e->s[e->n].key, sizeof(e->s[0].key), "%s", buf);
        e->s[e->n].v = v;
        e->n++;
    }
}

static double val(const struct expo *e, const char *key)
{
    for (size_t i = 0; i < e->n; i++) {
        if (!strcmp(e->s[i].key, key)) {
            return e->s[i].v;
        }
    }
    fail_msg("no series %s", key);
    return NAN;
}

static void scrape(struct fx *f, struct expo *e)
{
    struct ts_http_resp r;
    get(f, "/metrics", &r);
    assert_int_equal(r.status, 200);
    header_is(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    parse_expo(r.body, e);
    ts_http_resp_free(&r);
}

/* ---- tests ---- */

static void test_exposition_parses(void **state)
{
    struct fx *f = *state;
    static struct expo e;
    scrape(f, &e);
    assert_true(e.n > 100);
    /* every state and every one of the reasons has its series from the start */
    char key[128];
    for (int i = 0; i < TASK_STATE__COUNT; i++) {
        snprintf(key, sizeof(key), "otagw_tasks{state=\"%s\"}",
                 task_state_name((enum task_state)i));
        assert_true(val(&e, key) == 0);
    }
    for (int i = 1; i < TASK_REASON__COUNT; i++) {
        snprintf(key, sizeof(key), "otagw_task_failures{reason=\"%s\"}",
                 task_reason_name((enum task_reason)i));
        assert_true(val(&e, key) == 0);
    }
    assert_true(val(&e, "otagw_engine_running") == 1);
    assert_true(val(&e, "otagw_task_latency_seconds_count") == 0);
    assert_true(val(&e, "otagw_task_latency_seconds_bucket{le=\"+Inf\"}") == 0);
    assert_true(val(&e, "process_resident_memory_bytes") > 0);
    assert_true(val(&e, "process_start_time_seconds") > 1.6e9);
    /* the histogram's buckets are cumulative and end at +Inf = count */
    assert_true(val(&e, "otagw_http_request_duration_seconds_bucket{le=\"5\"}") <=
                val(&e, "otagw_http_request_duration_seconds_bucket{le=\"+Inf\"}"));
}

static void submit_push(struct fx *f, const char *seid, int64_t *id)
{
    struct eng_task_spec sp = {
        .seid = seid, .op = TASK_OP_PUSH, .channel = TASK_CH_PUSH, .params = "{}"};
    struct ota_err err;
    if (eng_submit(f->g.eng, &sp, NULL, NULL, id, &err) < 0) {
        fail_msg("submit: %s", err.msg);
    }
}

static void test_counters_move(void **state)
{
    struct fx *f = *state;
    static struct expo e0, e1;
    scrape(f, &e0);
    int64_t t1, t2, t3;
    submit_push(f, "SE-A", &t1); /* dispatched */
    submit_push(f, "SE-A", &t2); /* queued behind t1 */
    submit_push(f, "SE-B", &t3); /* dispatched */
    struct ota_err err;
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    pump(f, 5);
    assert_true(f->n_sent >= 2);
    /* t2 cancelled while queued; t1's part refused for good: failed */
    assert_int_equal(eng_task_cancel(f->g.eng, t2, &err), 0);
    struct eng_task_view v;
    assert_int_equal(eng_task_get(f->g.eng, t1, &v, &err), 0);
    assert_int_equal(v.state, TASK_DISPATCHED);
    struct bearer_submit_result r = {.token = f->tokens[0], .status = BEARER_SUBMIT_FINAL};
    eng_on_submit_result(f->g.eng, &r);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    pump(f, 5);
    assert_int_equal(eng_task_get(f->g.eng, t1, &v, &err), 0);
    assert_int_equal(v.state, TASK_FAILED);
    assert_int_equal(f->finals, 2);

    scrape(f, &e1);
    assert_true(val(&e1, "otagw_tasks_accepted_total") - val(&e0, "otagw_tasks_accepted_total") ==
                3);
    assert_true(val(&e1, "otagw_tasks_failed_total") == 1);
    assert_true(val(&e1, "otagw_tasks_cancelled_total") == 1);
    assert_true(val(&e1, "otagw_task_failures{reason=\"bearer-rejected\"}") == 1);
    assert_true(val(&e1, "otagw_task_failures{reason=\"cancelled\"}") == 1);
    assert_true(val(&e1, "otagw_task_failures{reason=\"dlr-failed\"}") == 0);
    assert_true(val(&e1, "otagw_tasks{state=\"failed\"}") == 1);
    assert_true(val(&e1, "otagw_tasks{state=\"cancelled\"}") == 1);
    assert_true(val(&e1, "otagw_tasks{state=\"dispatched\"}") == 1); /* t3 */
    assert_true(val(&e1, "otagw_task_latency_seconds_count") == 2);
    assert_true(val(&e1, "otagw_task_latency_seconds_bucket{le=\"+Inf\"}") == 2);
    assert_true(val(&e1, "otagw_mt_submitted_total") >= 2);

    /* /v1/stats reads the same collector: it agrees */
    struct ts_http_resp s;
    get(f, "/v1/stats", &s);
    assert_int_equal(s.status, 200);
    json_t *eng = json_object_get(s.json, "engine");
    assert_int_equal(json_integer_value(json_object_get(eng, "failed")), 1);
    assert_int_equal(json_integer_value(json_object_get(eng, "accepted")),
                     (json_int_t)val(&e1, "otagw_tasks_accepted_total"));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(s.json, "reasons"), "bearer-rejected")),
        1);
    ts_http_resp_free(&s);

    /* the dashboard digest ranks the reasons and shows the latency */
    get(f, "/v1/dashboard/state", &s);
    assert_int_equal(s.status, 200);
    header_is(&s, "Cache-Control", "no-store");
    json_t *rs = json_object_get(s.json, "reasons");
    assert_int_equal(json_array_size(rs), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rs, 0), "count")), 1);
    json_t *lt = json_object_get(json_object_get(s.json, "latency"), "task");
    assert_int_equal(json_integer_value(json_object_get(lt, "count")), 2);
    assert_true(json_real_value(json_object_get(lt, "p99_s")) >=
                json_real_value(json_object_get(lt, "p50_s")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(s.json, "tasks"), "dispatched")), 1);
    assert_true(json_is_true(json_object_get(json_object_get(s.json, "engine"), "running")));
    ts_http_resp_free(&s);
}

/* The MT rate over the window moves once parts went out. */
static void test_rates(void **state)
{
    struct fx *f = *state;
    int64_t id;
    submit_push(f, "SE-C", &id);
    struct ota_err err;
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    pump(f, 5);
    assert_true(f->n_sent >= 1);
    usleep(700 * 1000);
    ev_now_update(f->loop);
    struct gw_metrics_snap s;
    assert_int_equal(gw_metrics_snapshot(&f->g, &s, &err), 0);
    assert_true(s.mt_total >= 1);
    assert_true(s.mt_rate > 0);
    assert_true(s.mt_rate <= (double)s.mt_total / 0.5);
    assert_true(s.mo_rate == 0);
}

static void test_http_counted(void **state)
{
    struct fx *f = *state;
    struct gw_metrics_snap s0, s1;
    struct ota_err err;
    assert_int_equal(gw_metrics_snapshot(&f->g, &s0, &err), 0);
    struct ts_http_resp r;
    get(f, "/no/such/thing", &r);
    assert_int_equal(r.status, 404);
    ts_http_resp_free(&r);
    get(f, "/v1/stats", &r);
    assert_int_equal(r.status, 200);
    ts_http_resp_free(&r);
    assert_int_equal(gw_metrics_snapshot(&f->g, &s1, &err), 0);
    assert_int_equal(s1.http_latency.total - s0.http_latency.total, 2);
    assert_int_equal(s1.http_by_class[4] - s0.http_by_class[4], 1);
    assert_int_equal(s1.http_by_class[2] - s0.http_by_class[2], 1);
}

static unsigned route_roles(const struct gw_metrics_route *rs, size_t n, const char *pattern)
{
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(rs[i].pattern, pattern)) {
            assert_string_equal(rs[i].method, "GET");
            return rs[i].roles;
        }
    }
    fail_msg("no route %s", pattern);
    return 0;
}

/* Data routes: staff only (no platform, client or anti-theft); the page and its assets: public. */
static void test_roles(void **state)
{
    (void)state;
    size_t n = 0, nd = 0;
    const struct gw_metrics_route *m = gw_metrics_routes(&n);
    const struct gw_metrics_route *d = gw_dashboard_route_list(&nd);
    assert_int_equal(route_roles(m, n, "/metrics"), GW_ROLES_STAFF);
    assert_int_equal(route_roles(d, nd, "/v1/dashboard/state"), GW_ROLES_STAFF);
    assert_int_equal(route_roles(d, nd, "/dashboard"), GW_ROLES_PUBLIC);
    assert_int_equal(route_roles(d, nd, "/dashboard.js"), GW_ROLES_PUBLIC);
    assert_int_equal(route_roles(d, nd, "/dashboard.css"), GW_ROLES_PUBLIC);
    assert_false(GW_ROLES_STAFF & (GW_ROLE_PLATFORM | GW_ROLE_CLIENT | GW_ROLE_ANTITHEFT));
    assert_int_equal(nd, 4);
    assert_int_equal(n, 1);
}

static int status_as(struct fx *f, const char *path, const char *token)
{
    char hdr[256] = "";
    if (token) {
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    }
    struct ts_http_resp r;
    ts_http_do(f->loop, f->port, "GET", path, token ? hdr : NULL, NULL, true, &r);
    int st = r.status;
    ts_http_resp_free(&r);
    return st;
}

/* The sets enforced through gw_route with the real token check. */
static void test_roles_enforced(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *name;
        enum gw_role role;
    } who[] = {{"adm1", GW_ROLE_ADMIN},
               {"ops1", GW_ROLE_OPERATOR},
               {"bank1", GW_ROLE_PLATFORM},
               {"wal1", GW_ROLE_CLIENT},
               {"at1", GW_ROLE_ANTITHEFT}};
    char tok[5][GW_AUTH_TOKEN_LEN + 1];
    int64_t id[5];
    for (size_t i = 0; i < 5; i++) {
        struct ota_err err;
        if (gw_auth_token_create(&f->g, "test", who[i].name, who[i].role, tok[i], &id[i], &err) <
            0) {
            fail_msg("token: %s", err.msg);
        }
    }
    static const char *const staff_paths[] = {"/metrics", "/v1/dashboard/state"};
    for (size_t p = 0; p < 2; p++) {
        assert_int_equal(status_as(f, staff_paths[p], NULL), 401);
        assert_int_equal(status_as(f, staff_paths[p], "not-a-token"), 401);
        assert_int_equal(status_as(f, staff_paths[p], tok[0]), 200);
        assert_int_equal(status_as(f, staff_paths[p], tok[1]), 200);
        assert_int_equal(status_as(f, staff_paths[p], tok[2]), 403);
        assert_int_equal(status_as(f, staff_paths[p], tok[3]), 403);
        assert_int_equal(status_as(f, staff_paths[p], tok[4]), 403);
    }
    /* the page and its assets ask for nothing */
    assert_int_equal(status_as(f, "/dashboard", NULL), 200);
    assert_int_equal(status_as(f, "/dashboard.js", NULL), 200);
    assert_int_equal(status_as(f, "/dashboard.css", NULL), 200);
    /* ... and the refusals are counted */
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok[1]);
    struct ts_http_resp r;
    ts_http_do(f->loop, f->port, "GET", "/metrics", hdr, NULL, true, &r);
    assert_int_equal(r.status, 200);
    static struct expo e;
    parse_expo(r.body, &e);
    ts_http_resp_free(&r);
    assert_true(val(&e, "otagw_auth_refused_total{code=\"401\"}") == 4);
    assert_true(val(&e, "otagw_auth_refused_total{code=\"403\"}") == 6);
    /* the 401s by kind, and the tokens, before and after a revocation */
    assert_true(val(&e, "otagw_auth_unauthorized_total{kind=\"no-token\"}") == 2);
    assert_true(val(&e, "otagw_auth_unauthorized_total{kind=\"unknown-token\"}") == 2);
    assert_true(val(&e, "otagw_auth_unauthorized_total{kind=\"malformed\"}") == 0);
    assert_true(val(&e, "otagw_auth_unauthorized_total{kind=\"revoked-token\"}") == 0);
    assert_true(val(&e, "otagw_auth_tokens{state=\"live\"}") == 5);
    assert_true(val(&e, "otagw_auth_tokens{state=\"revoked\"}") == 0);
    double reloads = val(&e, "otagw_auth_token_reloads_total");
    struct ota_err err;
    assert_int_equal(gw_auth_token_revoke(&f->g, "test", id[2], &err), 0);
    assert_int_equal(status_as(f, "/metrics", tok[2]), 401);
    assert_int_equal(status_as(f, "/metrics", "two words"), 401);
    ts_http_do(f->loop, f->port, "GET", "/metrics", hdr, NULL, true, &r);
    assert_int_equal(r.status, 200);
    parse_expo(r.body, &e);
    ts_http_resp_free(&r);
    assert_true(val(&e, "otagw_auth_refused_total{code=\"401\"}") == 6);
    assert_true(val(&e, "otagw_auth_unauthorized_total{kind=\"malformed\"}") == 1);
    assert_true(val(&e, "otagw_auth_unauthorized_total{kind=\"revoked-token\"}") == 1);
    assert_true(val(&e, "otagw_auth_tokens{state=\"live\"}") == 4);
    assert_true(val(&e, "otagw_auth_tokens{state=\"revoked\"}") == 1);
    assert_true(val(&e, "otagw_auth_token_reloads_total") > reloads);
}

/* Every src= / href= in the page is a same-origin absolute path. */
static void assert_same_origin_refs(const char *html)
{
    static const char *const attrs[] = {" src=\"", " href=\"", " action=\""};
    for (size_t a = 0; a < 3; a++) {
        for (const char *p = strstr(html, attrs[a]); p; p = strstr(p + 1, attrs[a])) {
            const char *v = p + strlen(attrs[a]);
            if (v[0] != '/' || v[1] == '/') {
                fail_msg("not a same-origin path: %.40s", p);
            }
        }
    }
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
}

static void test_dashboard_assets(void **state)
{
    struct fx *f = *state;
    struct ts_http_resp r;
    get(f, "/dashboard", &r);
    assert_int_equal(r.status, 200);
    header_is(&r, "Content-Type", "text/html; charset=utf-8");
    header_is(&r, "X-Content-Type-Options", "nosniff");
    char csp[512];
    assert_true(ts_http_header(r.head, "Content-Security-Policy", csp, sizeof(csp)));
    assert_non_null(strstr(csp, "default-src 'none'"));
    assert_non_null(strstr(csp, "script-src 'self'"));
    assert_non_null(strstr(csp, "connect-src 'self'"));
    assert_non_null(strstr(csp, "frame-ancestors 'none'"));
    assert_null(strstr(csp, "unsafe-inline"));
    assert_null(strstr(csp, "unsafe-eval"));
    assert_non_null(strstr(r.body, "<script src=\"/dashboard.js\""));
    assert_non_null(strstr(r.body, "href=\"/dashboard.css\""));
    assert_same_origin_refs(r.body);
    /* no inline script, style or event handler (the CSP would block them anyway) */
    assert_null(strstr(r.body, "<script>"));
    assert_null(strstr(r.body, "<style"));
    assert_null(strstr(r.body, " style="));
    assert_null(strstr(r.body, " onclick="));
    assert_null(strstr(r.body, " onload="));
    ts_http_resp_free(&r);

    get(f, "/dashboard.js", &r);
    assert_int_equal(r.status, 200);
    header_is(&r, "Content-Type", "text/javascript; charset=utf-8");
    header_is(&r, "X-Content-Type-Options", "nosniff");
    assert_null(strstr(r.body, "http://"));
    assert_null(strstr(r.body, "https://"));
    assert_null(strstr(r.body, "innerHTML"));
    assert_null(strstr(r.body, "eval("));
    assert_null(strstr(r.body, "localStorage")); /* the token lives in sessionStorage only */
    assert_non_null(strstr(r.body, "sessionStorage"));
    assert_non_null(strstr(r.body, "'/v1/dashboard/state'"));
    assert_non_null(strstr(r.body, "'/v1/ses/'"));
    assert_non_null(strstr(r.body, "/terminate'"));
    assert_non_null(strstr(r.body, "'Bearer '"));
    ts_http_resp_free(&r);

    get(f, "/dashboard.css", &r);
    assert_int_equal(r.status, 200);
    header_is(&r, "Content-Type", "text/css; charset=utf-8");
    assert_null(strstr(r.body, "url("));
    assert_null(strstr(r.body, "@import"));
    ts_http_resp_free(&r);

    /* only GET */
    ts_http_do(f->loop, f->port, "POST", "/dashboard", NULL, NULL, true, &r);
    assert_int_equal(r.status, 405);
    ts_http_resp_free(&r);
}

static void test_dashboard_jobs(void **state)
{
    struct fx *f = *state;
    static const char *const seids[] = {"SE-B", "SE-C"};
    struct eng_job_spec js = {
        .kind = ENG_JOB_LIST,
        .tmpl = {.op = TASK_OP_PUSH, .channel = TASK_CH_PUSH, .params = "{}"},
        .seids = seids,
        .n_seids = 2,
    };
    int64_t job;
    struct ota_err err;
    if (eng_job_submit(f->g.eng, &js, NULL, NULL, &job, &err) < 0) {
        fail_msg("job: %s", err.msg);
    }
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    pump(f, 5);
    struct ts_http_resp r;
    get(f, "/v1/dashboard/state", &r);
    assert_int_equal(r.status, 200);
    json_t *jobs = json_object_get(r.json, "jobs");
    assert_int_equal(json_array_size(jobs), 1);
    json_t *j = json_array_get(jobs, 0);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), job);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
    assert_string_equal(json_string_value(json_object_get(j, "op")), "push");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "final")), 0);
    assert_true(json_real_value(json_object_get(j, "progress")) == 0.0);
    assert_true(json_is_array(json_object_get(r.json, "links")));
    assert_non_null(json_object_get(json_object_get(r.json, "rates"), "mt"));
    ts_http_resp_free(&r);
    /* cancelled: final, off the open list */
    assert_int_equal(eng_job_cancel(f->g.eng, job, &err), 0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    get(f, "/v1/dashboard/state", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "jobs")), 0);
    ts_http_resp_free(&r);
}

static void test_quantile(void **state)
{
    (void)state;
    static const double b[3] = {1, 2, 4};
    struct gw_metrics_hist h = {.bounds = b, .n = 3};
    assert_true(gw_metrics_quantile(&h, 0.5) == 0);
    assert_true(gw_metrics_quantile(NULL, 0.5) == 0);
    /* 4 in (0,1], 4 in (1,2]: the median is the top of the first bucket */
    h.counts[0] = 4;
    h.counts[1] = 4;
    h.total = 8;
    assert_true(fabs(gw_metrics_quantile(&h, 0.5) - 1.0) < 1e-9);
    assert_true(fabs(gw_metrics_quantile(&h, 0.75) - 1.5) < 1e-9);
    assert_true(fabs(gw_metrics_quantile(&h, 1.0) - 2.0) < 1e-9);
    /* beyond the last bound: all that is known is "above 4" */
    h.counts[3] = 100;
    h.total = 108;
    assert_true(gw_metrics_quantile(&h, 0.99) == 4);
}

static void test_render_escaping(void **state)
{
    struct fx *f = *state;
    struct gw_metrics_snap *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    struct ota_err err;
    assert_int_equal(gw_metrics_snapshot(&f->g, s, &err), 0);
    s->n_links = 2;
    s->links[0].name = "ismg\"1\\x\ny";
    s->links[0].st.state = BEARER_LINK_THROTTLED;
    s->links[0].st.in_flight = 7;
    s->links[1].name = "box";
    s->links[1].st.state = BEARER_LINK_DOWN;
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(gw_metrics_render(s, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    static struct expo e;
    parse_expo(text, &e);
    assert_true(val(&e, "otagw_link_in_flight{link=\"ismg\\\"1\\\\x\\ny\"}") == 7);
    assert_true(val(&e, "otagw_link_up{link=\"ismg\\\"1\\\\x\\ny\"}") == 1);
    assert_true(val(&e, "otagw_link_throttled{link=\"ismg\\\"1\\\\x\\ny\"}") == 1);
    assert_true(val(&e, "otagw_link_up{link=\"box\"}") == 0);
    assert_true(val(&e, "otagw_link_state{link=\"box\",state=\"down\"}") == 1);
    assert_true(val(&e, "otagw_link_state{link=\"box\",state=\"up\"}") == 0);
    free(text);
    free(s);
}

/* The store's counts are reused after a slow scan, never after a fast one. */
static void test_counts_cache(void **state)
{
    struct fx *f = *state;
    struct gw_metrics_counts c;
    struct ota_err err;
    assert_int_equal(gw_metrics_counts(&f->g, &c, &err), 0);
    assert_int_equal(c.states[TASK_QUEUED] + c.states[TASK_DISPATCHED], 0);
    int64_t id;
    submit_push(f, "SE-A", &id);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    assert_int_equal(gw_metrics_counts(&f->g, &c, &err), 0);
    assert_int_equal(c.states[TASK_QUEUED] + c.states[TASK_DISPATCHED], 1); /* fast: fresh */
    /* a scan that cost 1 s: the next 20 s reuse it, even though the store changed */
    gw_metrics_set_counts_cost(&f->g, 1.0);
    submit_push(f, "SE-B", &id);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    assert_int_equal(gw_metrics_counts(&f->g, &c, &err), 0);
    assert_int_equal(c.states[TASK_QUEUED] + c.states[TASK_DISPATCHED], 1);
    assert_int_equal(c.eng.accepted, 2); /* the engine's own counters are always fresh */
    /* ... and a cheap one again: fresh at once */
    gw_metrics_set_counts_cost(&f->g, 0.001);
    assert_int_equal(gw_metrics_counts(&f->g, &c, &err), 0);
    assert_int_equal(c.states[TASK_QUEUED] + c.states[TASK_DISPATCHED], 2);
}

/* The outbox depth behind otagw_callbacks_pending: pending rows only. */
static void test_outbox_depth(void **state)
{
    struct fx *f = *state;
    struct store *st = eng_store(f->g.eng);
    struct ota_err err;
    uint64_t n = 99;
    assert_int_equal(store_cb_pending(st, &n, &err), 0);
    assert_int_equal(n, 0);
    int64_t id1, id2, t1, t2;
    submit_push(f, "SE-A", &t1);
    submit_push(f, "SE-B", &t2);
    assert_int_equal(store_cb_put(st, t1, "https://p.example/cb", "{}", 1, &id1, &err), 0);
    assert_int_equal(store_cb_put(st, t2, "https://p.example/cb", "{}", 1, &id2, &err), 0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    assert_int_equal(store_cb_pending(st, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(store_cb_set(st, id1, STORE_CB_DONE, 1, 0, &err), 0);
    assert_int_equal(store_cb_set(st, id2, STORE_CB_ABANDONED, 9, 0, &err), 0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    assert_int_equal(store_cb_pending(st, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_cb_pending(st, NULL, &err), -EINVAL);
}

/* Without an engine there is nothing to show: an error, not a crash. */
static void test_no_engine(void **state)
{
    (void)state;
    struct gw g = {0};
    struct gw_metrics_snap s;
    struct ota_err err;
    assert_int_equal(gw_metrics_snapshot(&g, &s, &err), -ESHUTDOWN);
    assert_int_equal(gw_metrics_start(&g, &err), -EINVAL);
    gw_metrics_task_final(&g, NULL);
    gw_metrics_stop(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exposition_parses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_counted, setup, teardown),
        cmocka_unit_test(test_roles),
        cmocka_unit_test_setup_teardown(test_roles_enforced, setup_auth, teardown),
        cmocka_unit_test_setup_teardown(test_dashboard_assets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dashboard_jobs, setup, teardown),
        cmocka_unit_test(test_quantile),
        cmocka_unit_test_setup_teardown(test_render_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_cache, setup, teardown),
        cmocka_unit_test(test_no_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
