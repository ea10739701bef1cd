/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of principals, tokens and roles (gateway/auth.c, auth_db.c;
 * issue #7, spec 7.1) on a whole gateway (gw_start, plain HTTP on
 * loopback, a pull listener of its own) and the raw-socket client of
 * tests/support/ts_http.h:
 * - every route the live server registered, called with each role's token
 *   and with none: allowed ones reach their handler, others get 403 / 401;
 *   every route is pinned to docs/auth.md's role set (unpinned ones fail);
 * - refusals on /v1/wallet/sessions/{session} keep the session id (a
 *   bearer secret) out of the audit log and the log file;
 * - no token, a malformed header, an unknown token, a revoked one: 401 with
 *   WWW-Authenticate, audited; a flood is audited at a bounded rate;
 * - platform A cannot see, list, cancel or terminate platform B's tasks
 *   and jobs (404), but can its own; staff see everything;
 * - the file keeps the token's SHA-256, never the token;
 * - revoking (API, or another connection like otatool) empties the cache;
 * - the admin routes (principals, tokens) and their errors.
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
#include "gateway/auth.h"
#include "gateway/gw.h"
#include "tests/support/ts_http.h"
#include "tests/support/tsupport.h"

#define N_ROLES 5

static const enum gw_role all_roles[N_ROLES] = {GW_ROLE_ADMIN, GW_ROLE_OPERATOR, GW_ROLE_PLATFORM,
                                                GW_ROLE_CLIENT, GW_ROLE_ANTITHEFT};

struct fx {
    struct ev_loop *loop;
    char dir[64], db[128];
    struct gw *g;
    uint16_t port, pull_port;
    char tok[N_ROLES][GW_AUTH_TOKEN_LEN + 1]; /* one principal per role, "r-<role>" */
    int64_t tok_id[N_ROLES];
    char log_path[160]; /* set: gw_up logs at notice level to this file */
};

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

static void gw_up(struct fx *f)
{
    char text[1024], log[200] = "log_level = err\n";
    if (f->log_path[0]) {
        snprintf(log, sizeof(log), "log_level = notice\nlog_file = %s\n", f->log_path);
    }
    snprintf(text, sizeof(text),
             "[gateway]\nlisten = 127.0.0.1:0\npull_listen = 127.0.0.1:%u\nplain_http = yes\n"
             "%s[engine]\ndb = %s\n[link sim]\nkind = cmpp\n"
             "host = 127.0.0.1\nport = 1\nsp_id = 901234\nsecret = otagw-test\n",
             (unsigned)free_port(), log, f->db);
    struct gw_conf c;
    struct ota_err err;
    if (gw_conf_parse(text, strlen(text), "t.conf", &c, &err) < 0) {
        fail_msg("conf: %s", err.msg);
    }
    if (gw_start(f->loop, &c, &f->g, &err) < 0) {
        fail_msg("gw_start: %s", err.msg);
    }
    gw_conf_fini(&c);
    f->port = http_server_port(f->g->http);
    assert_non_null(f->g->pull_http);
    f->pull_port = http_server_port(f->g->pull_http);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/otagw-auth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/gw.db", f->dir);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    gw_up(f);
    struct ota_err err;
    for (int i = 0; i < N_ROLES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "r-%s", gw_role_name(all_roles[i]));
        if (gw_auth_token_create(f->g, "test", name, all_roles[i], f->tok[i], &f->tok_id[i], &err) <
            0) {
            fail_msg("token create: %s", err.msg);
        }
    }
    static const char *const ses[] = {"SE-A", "SE-B"};
    for (size_t i = 0; i < 2; i++) {
        char msisdn[16];
        snprintf(msisdn, sizeof(msisdn), "861380000000%zu", i);
        assert_int_equal(eng_se_register(f->g->eng, ses[i], msisdn, "b1", &err), 0);
    }
    assert_int_equal(eng_flush(f->g->eng, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gw_stop(f->g);
    ev_loop_destroy(f->loop);
    (void)ts_rmdir_tree(f->dir);
    free(f);
    return 0;
}

/* ---- client ---- */

static const char *tok_of(struct fx *f, enum gw_role r)
{
    for (int i = 0; i < N_ROLES; i++) {
        if (all_roles[i] == r) {
            return f->tok[i];
        }
    }
    fail();
    return NULL;
}

/* One request with "Authorization: Bearer token" (token NULL: no header; raw_auth: the value). */
static void req_as(struct fx *f, uint16_t port, const char *token, const char *raw_auth,
                   const char *method, const char *path, const char *body, struct ts_http_resp *r)
{
    char hdr[640] = ""; /* room for the longest raw value a test sends (512) */
    if (token) {
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    } else if (raw_auth) {
        snprintf(hdr, sizeof(hdr), "Authorization: %s\r\n", raw_auth);
    }
    ts_http_do(f->loop, port, method, path, hdr[0] ? hdr : NULL, body, false, r);
}

static int call(struct fx *f, const char *token, const char *method, const char *path,
                const char *body)
{
    struct ts_http_resp r;
    req_as(f, f->port, token, NULL, method, path, body, &r);
    int st = r.status;
    ts_http_resp_free(&r);
    return st;
}

/* The path of pattern with every {param} replaced by "999999" (nothing has that id or name). */
static void fill_pattern(const char *pattern, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 8 < cap;) {
        if (*p == '{') {
            memcpy(out + o, "999999", 6);
            o += 6;
            while (*p && *p != '}') {
                p++;
            }
            p += *p == '}';
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

static uint64_t audit_count(struct fx *f, const char *action, const char *detail_like)
{
    char path[160];
    snprintf(path, sizeof(path), "%s.audit", f->db);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM audit_log WHERE action = ?1"
                                        " AND detail LIKE ?2",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, detail_like ? detail_like : "%", -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    uint64_t n = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* ---- every route, every role ---- */

/*
 * Every route with the role set docs/auth.md's table gives it. The live
 * server is checked against this list both ways: a route registered with
 * another set, a route not listed here (a new one must be added here and to
 * the doc's table, deliberately) and a listed route no longer registered
 * all fail. Taking the expected roles from the live route would prove
 * nothing.
 */
#define BIZ (GW_ROLES_STAFF | GW_ROLE_PLATFORM)
static const struct {
    const char *method, *pattern;
    unsigned roles;
} pinned[] = {
    {"GET", "/v1/health", GW_ROLES_PUBLIC},
    {"GET", "/v1/openapi.json", GW_ROLES_PUBLIC},
    {"GET", "/dashboard", GW_ROLES_PUBLIC},
    {"GET", "/dashboard.js", GW_ROLES_PUBLIC},
    {"GET", "/dashboard.css", GW_ROLES_PUBLIC},
    {"POST", "/v1/principals", GW_ROLE_ADMIN},
    {"GET", "/v1/principals", GW_ROLE_ADMIN},
    {"POST", "/v1/principals/{name}/tokens", GW_ROLE_ADMIN},
    {"GET", "/v1/tokens", GW_ROLE_ADMIN},
    {"POST", "/v1/tokens/{id}/revoke", GW_ROLE_ADMIN},
    {"POST", "/v1/ses/{seid}/keys/scp80", GW_ROLE_ADMIN},
    {"POST", "/v1/ses/{seid}/keys/sd", GW_ROLE_ADMIN},
    {"POST", "/v1/keks/{name}", GW_ROLE_ADMIN},
    {"POST", "/v1/tasks", BIZ},
    {"GET", "/v1/tasks", BIZ},
    {"GET", "/v1/tasks/{id}", BIZ},
    {"POST", "/v1/tasks/{id}/cancel", BIZ},
    {"POST", "/v1/tasks/{id}/terminate", BIZ},
    {"POST", "/v1/jobs", BIZ},
    {"GET", "/v1/jobs/{id}", BIZ},
    {"POST", "/v1/jobs/{id}/pause", BIZ},
    {"POST", "/v1/jobs/{id}/resume", BIZ},
    {"POST", "/v1/jobs/{id}/cancel", BIZ},
    {"PUT", "/v1/jobs/{id}/rate", BIZ},
    {"POST", "/v1/ses", BIZ},
    {"GET", "/v1/ses/{seid}", BIZ},
    {"POST", "/v1/ses/{seid}/unbind", GW_ROLES_STAFF}, /* SEs have no owner: see docs/auth.md */
    {"POST", "/v1/loss-list", GW_ROLES_STAFF},
    {"GET", "/v1/loss-list", GW_ROLES_STAFF},
    {"DELETE", "/v1/loss-list/{id}", GW_ROLES_STAFF},
    {"GET", "/v1/stats", GW_ROLES_STAFF},
    {"GET", "/metrics", GW_ROLES_STAFF},
    {"GET", "/v1/dashboard/state", GW_ROLES_STAFF},
    {"POST", "/v1/wallet/pull", GW_ROLE_CLIENT},
    {"POST", "/v1/wallet/sessions/{session}", GW_ROLE_CLIENT},
    {"POST", "/v1/antitheft/lock", GW_ROLE_ANTITHEFT},
    {"POST", "/v1/antitheft/unlock", GW_ROLE_ANTITHEFT},
    {"POST", "/v1/antitheft/wipe", GW_ROLE_ANTITHEFT},
    {"GET", "/v1/antitheft/{id}", GW_ROLE_ANTITHEFT},
};
#define N_PINNED (sizeof(pinned) / sizeof(pinned[0]))

static void test_every_route_every_role(void **state)
{
    struct fx *f = *state;
    size_t n = 0;
    bool seen[N_PINNED] = {false};
    bool saw_wallet = false;
    struct gw_auth_route_info ri;
    for (; gw_auth_route_at(f->g, n, &ri); n++) {
        char path[256];
        fill_pattern(ri.pattern, path, sizeof(path));
        uint16_t port = ri.pull ? f->pull_port : f->port;
        bool body = strcmp(ri.method, "GET") != 0 && strcmp(ri.method, "DELETE") != 0;
        size_t k = 0;
        while (k < N_PINNED && (strcmp(ri.method, pinned[k].method) != 0 ||
                                strcmp(ri.pattern, pinned[k].pattern) != 0)) {
            k++;
        }
        if (k == N_PINNED) {
            fail_msg("%s %s (roles 0x%x) is not pinned: add it here and to docs/auth.md", ri.method,
                     ri.pattern, ri.roles);
        }
        if (seen[k]) {
            fail_msg("%s %s registered twice", ri.method, ri.pattern);
        }
        seen[k] = true;
        if (ri.roles != pinned[k].roles) {
            fail_msg("%s %s: roles 0x%x, expected 0x%x", ri.method, ri.pattern, ri.roles,
                     pinned[k].roles);
        }
        if (strncmp(ri.pattern, "/v1/wallet/", 11) == 0) {
            saw_wallet = true;
            assert_true(ri.pull); /* the pull listener exists: wallet routes live there */
        }
        /* no token */
        struct ts_http_resp r;
        req_as(f, port, NULL, NULL, ri.method, path, body ? "{}" : NULL, &r);
        if (ri.roles == GW_ROLES_PUBLIC) {
            if (r.status == 401 || r.status == 403 || r.status == 404 || r.status == 405) {
                fail_msg("public %s %s: %d", ri.method, ri.pattern, r.status);
            }
        } else {
            if (r.status != 401) {
                fail_msg("%s %s without token: %d, not 401", ri.method, ri.pattern, r.status);
            }
            ts_http_assert_error(&r, 401, "unauthorized");
            char v[128];
            assert_true(ts_http_header(r.head, "WWW-Authenticate", v, sizeof(v)));
            assert_non_null(strstr(v, "Bearer"));
        }
        ts_http_resp_free(&r);
        for (int i = 0; i < N_ROLES; i++) {
            req_as(f, port, f->tok[i], NULL, ri.method, path, body ? "{}" : NULL, &r);
            bool allowed = ri.roles == GW_ROLES_PUBLIC || (ri.roles & all_roles[i]);
            /* allowed: the handler's own answer (400 for "{}", 404 for id 999999, 200...) */
            if (allowed &&
                (r.status == 401 || r.status == 403 || r.status == 405 || r.status >= 500)) {
                fail_msg("%s %s as %s: %d (allowed) %s", ri.method, ri.pattern,
                         gw_role_name(all_roles[i]), r.status, r.body ? r.body : "");
            }
            if (!allowed) {
                if (r.status != 403) {
                    fail_msg("%s %s as %s: %d, not 403", ri.method, ri.pattern,
                             gw_role_name(all_roles[i]), r.status);
                }
                ts_http_assert_error(&r, 403, "forbidden");
            }
            ts_http_resp_free(&r);
        }
    }
    print_message("%zu routes x %d roles + no token\n", n, N_ROLES);
    for (size_t k = 0; k < N_PINNED; k++) {
        if (!seen[k]) {
            fail_msg("%s %s is pinned but not registered", pinned[k].method, pinned[k].pattern);
        }
    }
    assert_int_equal(n, N_PINNED);
    assert_true(saw_wallet);
    struct gw_auth_stats st;
    gw_auth_stats(f->g, &st);
    assert_true(st.unauthorized > 0);
    assert_true(st.forbidden > 0);
    /* the wallet routes are not on the business listener */
    assert_int_equal(call(f, tok_of(f, GW_ROLE_CLIENT), "POST", "/v1/wallet/pull", "{}"), 404);
}

/* ---- 401 in all its forms ---- */

/* invalid_token: 1 the challenge says invalid_token, 0 it does not, -1 either. */
static void expect_401(struct fx *f, const char *raw_auth, int invalid_token)
{
    struct ts_http_resp r;
    req_as(f, f->port, NULL, raw_auth, "GET", "/v1/stats", NULL, &r);
    if (r.status != 401) {
        fail_msg("Authorization \"%s\": %d", raw_auth ? raw_auth : "(none)", r.status);
    }
    ts_http_assert_error(&r, 401, "unauthorized");
    char v[128];
    assert_true(ts_http_header(r.head, "WWW-Authenticate", v, sizeof(v)));
    assert_non_null(strstr(v, "Bearer"));
    if (invalid_token >= 0) {
        assert_int_equal(strstr(v, "invalid_token") != NULL, invalid_token);
    }
    ts_http_resp_free(&r);
}

static void test_unauthorized(void **state)
{
    struct fx *f = *state;
    const char *adm = tok_of(f, GW_ROLE_ADMIN);
    uint64_t before = audit_count(f, "auth.fail", "%");
    expect_401(f, NULL, 0);
    expect_401(f, "", -1); /* an empty header may read as none */
    expect_401(f, "Bearer", 1);
    expect_401(f, "Bearer ", 1);
    expect_401(f, "Basic YWRtaW46YWRtaW4=", 1);
    expect_401(f, "Bearer otk_\"x\"", 1);
    expect_401(f, "Bearer a b", 1);
    char v[512];
    snprintf(v, sizeof(v), "Bearer %sX", adm); /* one character more */
    expect_401(f, v, 1);
    snprintf(v, sizeof(v), "Bearer %.*s", GW_AUTH_TOKEN_LEN - 1, adm); /* one fewer */
    expect_401(f, v, 1);
    snprintf(v, sizeof(v), "Token %s", adm); /* another scheme */
    expect_401(f, v, 1);
    expect_401(f, "Bearer otk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1);
    char longv[400];
    memset(longv, 'A', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    memcpy(longv, "Bearer ", 7);
    expect_401(f, longv, 1);
    /* scheme case-insensitive (RFC 7235 2.1), surrounding blanks tolerated */
    snprintf(v, sizeof(v), "bearer %s", adm);
    struct ts_http_resp r;
    req_as(f, f->port, NULL, v, "GET", "/v1/stats", NULL, &r);
    assert_int_equal(r.status, 200);
    ts_http_resp_free(&r);
    snprintf(v, sizeof(v), "BEARER   %s  ", adm);
    req_as(f, f->port, NULL, v, "GET", "/v1/stats", NULL, &r);
    assert_int_equal(r.status, 200);
    ts_http_resp_free(&r);
    /* every failure is in the audit log (12 < the per-second limit... or counted) */
    struct gw_auth_stats st;
    gw_auth_stats(f->g, &st);
    assert_int_equal(st.unauthorized, 12);
    uint64_t after = audit_count(f, "auth.fail", "%");
    assert_int_equal(after - before, st.audited);
    /* 12, or 13 when a slow run crossed a second after holding some back (the count entry) */
    assert_true(st.audited + st.audit_suppressed >= 12 && st.audited + st.audit_suppressed <= 13);
    assert_true(audit_count(f, "auth.fail", "reason=no-token%") >= 1);
    /* the token itself is never in the audit log */
    char like[80];
    snprintf(like, sizeof(like), "%%%s%%", adm + 4);
    assert_int_equal(audit_count(f, "auth.fail", like), 0);
}

static void test_audit_flood_bounded(void **state)
{
    struct fx *f = *state;
    uint64_t before = audit_count(f, "auth.fail", "%");
    for (int i = 0; i < 40; i++) {
        assert_int_equal(call(f, "otk_nope", "GET", "/v1/stats", NULL), 401);
    }
    struct gw_auth_stats st;
    gw_auth_stats(f->g, &st);
    assert_int_equal(st.unauthorized, 40);
    uint64_t written = audit_count(f, "auth.fail", "%") - before;
    /* 40 failures in well under 4 s: at most GW_AUTH_AUDIT_PER_S a second written one by one */
    assert_true(written < 40);
    assert_true(written >= 1);
    assert_true(st.audit_suppressed > 0);
    assert_int_equal(written, st.audited);
    /* what was held back is written as a count at stop */
    gw_stop(f->g);
    f->g = NULL;
    assert_true(audit_count(f, "auth.fail", "rate-limited:%") >= 1);
    gw_up(f);
}

/* ---- ownership ---- */

static int64_t make_task(struct fx *f, const char *token, const char *seid)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"seid\":\"%s\",\"op\":\"push\",\"schedule\":{\"delay_s\":3600}}", seid);
    struct ts_http_resp r;
    req_as(f, f->port, token, NULL, "POST", "/v1/tasks", body, &r);
    if (r.status != 201 && r.status != 202) {
        fail_msg("POST /v1/tasks: %d %s", r.status, r.body ? r.body : "");
    }
    int64_t id = json_integer_value(json_object_get(r.json, "id"));
    assert_true(id > 0);
    ts_http_resp_free(&r);
    return id;
}

static bool list_has(struct fx *f, const char *token, const char *query, int64_t id)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/tasks%s", query);
    struct ts_http_resp r;
    req_as(f, f->port, token, NULL, "GET", path, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *arr = json_object_get(r.json, "tasks");
    if (!arr) {
        arr = json_object_get(r.json, "queued");
    }
    assert_non_null(arr);
    bool has = false;
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t)
    {
        has = has || json_integer_value(json_object_get(t, "id")) == id;
    }
    ts_http_resp_free(&r);
    return has;
}

static void test_platform_sees_only_its_own(void **state)
{
    struct fx *f = *state;
    char ta[GW_AUTH_TOKEN_LEN + 1], tb[GW_AUTH_TOKEN_LEN + 1];
    int64_t ida, idb;
    struct ota_err err;
    assert_int_equal(gw_auth_token_create(f->g, "test", "plat-a", GW_ROLE_PLATFORM, ta, &ida, &err),
                     0);
    assert_int_equal(gw_auth_token_create(f->g, "test", "plat-b", GW_ROLE_PLATFORM, tb, &idb, &err),
                     0);
    const char *op = tok_of(f, GW_ROLE_OPERATOR);
    int64_t a1 = make_task(f, ta, "SE-A");
    int64_t b1 = make_task(f, tb, "SE-A");
    char p[96];
    /* the owner is recorded from the token */
    snprintf(p, sizeof(p), "/v1/tasks/%lld", (long long)a1);
    struct ts_http_resp r;
    req_as(f, f->port, ta, NULL, "GET", p, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(ts_jstr(json_object_get(r.json, "params"), "owner"), "plat-a");
    ts_http_resp_free(&r);
    /* B: 404 on A's task, like a missing one */
    req_as(f, f->port, tb, NULL, "GET", p, NULL, &r);
    ts_http_assert_error(&r, 404, "not-found");
    ts_http_resp_free(&r);
    snprintf(p, sizeof(p), "/v1/tasks/%lld/terminate", (long long)a1);
    assert_int_equal(call(f, tb, "POST", p, NULL), 404);
    snprintf(p, sizeof(p), "/v1/tasks/%lld/cancel", (long long)a1);
    assert_int_equal(call(f, tb, "POST", p, NULL), 404);
    /* the refused cancel changed nothing */
    snprintf(p, sizeof(p), "/v1/tasks/%lld", (long long)a1);
    req_as(f, f->port, ta, NULL, "GET", p, NULL, &r);
    assert_string_equal(ts_jstr(r.json, "state"), "queued");
    ts_http_resp_free(&r);
    /* lists: each platform its own; staff all */
    assert_true(list_has(f, ta, "?limit=100", a1));
    assert_false(list_has(f, ta, "?limit=100", b1));
    assert_true(list_has(f, tb, "?limit=100", b1));
    assert_false(list_has(f, tb, "?limit=100", a1));
    assert_true(list_has(f, ta, "?seid=SE-A", a1));
    assert_false(list_has(f, ta, "?seid=SE-A", b1));
    req_as(f, f->port, ta, NULL, "GET", "/v1/tasks?seid=SE-A", NULL, &r);
    assert_int_equal(json_integer_value(json_object_get(r.json, "queued_total")), 1);
    ts_http_resp_free(&r);
    req_as(f, f->port, op, NULL, "GET", "/v1/tasks?seid=SE-A", NULL, &r);
    assert_int_equal(json_integer_value(json_object_get(r.json, "queued_total")), 2);
    ts_http_resp_free(&r);
    assert_true(list_has(f, op, "?limit=100", a1));
    assert_true(list_has(f, op, "?limit=100", b1));
    /* staff see it; B cannot cancel, A can */
    assert_int_equal(call(f, op, "GET", p, NULL), 200);
    snprintf(p, sizeof(p), "/v1/tasks/%lld/cancel", (long long)a1);
    assert_int_equal(call(f, ta, "POST", p, NULL), 200);
    /* a platform cannot name another owner */
    struct ts_http_resp r2;
    req_as(f, f->port, tb, NULL, "POST", "/v1/tasks",
           "{\"seid\":\"SE-B\",\"op\":\"push\",\"params\":{\"owner\":\"plat-a\"}}", &r2);
    assert_int_equal(r2.status, 400);
    assert_non_null(strstr(r2.body, "params.owner"));
    ts_http_resp_free(&r2);
    /* jobs: the same rules */
    req_as(f, f->port, ta, NULL, "POST", "/v1/jobs",
           "{\"kind\":\"list\",\"seids\":[\"SE-A\",\"SE-B\"],\"op\":\"push\","
           "\"schedule\":{\"delay_s\":3600}}",
           &r2);
    if (r2.status != 201 && r2.status != 202) {
        fail_msg("POST /v1/jobs: %d %s", r2.status, r2.body);
    }
    int64_t job = json_integer_value(json_object_get(r2.json, "id"));
    ts_http_resp_free(&r2);
    req_as(f, f->port, ta, NULL, "POST", "/v1/jobs",
           "{\"kind\":\"sequence\",\"seid\":\"SE-B\",\"steps\":[{\"op\":\"push\"}],"
           "\"schedule\":{\"delay_s\":3600}}",
           &r2);
    if (r2.status != 201 && r2.status != 202) {
        fail_msg("POST /v1/jobs (sequence): %d %s", r2.status, r2.body);
    }
    int64_t seq = json_integer_value(json_object_get(r2.json, "id"));
    ts_http_resp_free(&r2);
    static const char *const acts[] = {"", "/pause", "/resume", "/cancel"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "/v1/jobs/%lld%s", (long long)job, acts[i]);
        assert_int_equal(call(f, tb, i ? "POST" : "GET", p, NULL), 404);
    }
    snprintf(p, sizeof(p), "/v1/jobs/%lld/rate", (long long)job);
    assert_int_equal(call(f, tb, "PUT", p, "{\"rate_per_s\":5}"), 404);
    snprintf(p, sizeof(p), "/v1/jobs/%lld", (long long)seq);
    assert_int_equal(call(f, tb, "GET", p, NULL), 404);
    assert_int_equal(call(f, ta, "GET", p, NULL), 200);
    snprintf(p, sizeof(p), "/v1/jobs/%lld", (long long)job);
    assert_int_equal(call(f, ta, "GET", p, NULL), 200);
    assert_int_equal(call(f, op, "GET", p, NULL), 200);
    snprintf(p, sizeof(p), "/v1/jobs/%lld/pause", (long long)job);
    assert_int_equal(call(f, ta, "POST", p, NULL), 200);
    /* job tasks carry the owner: B's list by job shows none of them, A's and staff's the same */
    size_t n_job[3];
    const char *who[3] = {ta, tb, op};
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof(p), "/v1/tasks?job=%lld", (long long)job);
        req_as(f, f->port, who[k], NULL, "GET", p, NULL, &r2);
        assert_int_equal(r2.status, 200);
        json_t *arr = json_object_get(r2.json, "tasks");
        n_job[k] = json_array_size(arr);
        size_t i;
        json_t *t;
        json_array_foreach(arr, i, t)
        {
            assert_string_equal(ts_jstr(json_object_get(t, "params"), "owner"), "plat-a");
        }
        ts_http_resp_free(&r2);
    }
    print_message("list job: %zu tasks seen by its platform and by staff, 0 by another\n",
                  n_job[0]);
    assert_int_equal(n_job[1], 0);
    assert_int_equal(n_job[0], n_job[2]);
    /* another platform's Idempotency-Key is another key */
    const char *body = "{\"seid\":\"SE-B\",\"op\":\"push\",\"schedule\":{\"delay_s\":3600}}";
    ts_http_do(f->loop, f->port, "POST", "/v1/tasks", "Idempotency-Key: k1\r\n", body, false, &r2);
    assert_int_equal(r2.status, 401);
    ts_http_resp_free(&r2);
    char hdr[160];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nIdempotency-Key: k1\r\n", ta);
    ts_http_do(f->loop, f->port, "POST", "/v1/tasks", hdr, body, false, &r2);
    int64_t ka = json_integer_value(json_object_get(r2.json, "id"));
    ts_http_resp_free(&r2);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nIdempotency-Key: k1\r\n", tb);
    ts_http_do(f->loop, f->port, "POST", "/v1/tasks", hdr, body, false, &r2);
    assert_true(r2.status == 201 || r2.status == 202);
    assert_false(ts_http_header(r2.head, "Idempotent-Replayed", hdr, sizeof(hdr)));
    assert_true(json_integer_value(json_object_get(r2.json, "id")) != ka);
    ts_http_resp_free(&r2);
}

/* ---- storage: the hash, never the token ---- */

static bool file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        return false;
    }
    static char buf[4 << 20];
    size_t n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        if (memcmp(buf + i, needle, k) == 0) {
            return true;
        }
    }
    return false;
}

static void test_hash_stored_not_token(void **state)
{
    struct fx *f = *state;
    const char *adm = tok_of(f, GW_ROLE_ADMIN);
    struct ts_http_resp r;
    req_as(f, f->port, adm, NULL, "POST", "/v1/principals",
           "{\"name\":\"plat-x\",\"role\":\"platform\"}", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(ts_jstr(r.json, "role"), "platform");
    ts_http_resp_free(&r);
    req_as(f, f->port, adm, NULL, "POST", "/v1/principals/plat-x/tokens", NULL, &r);
    assert_int_equal(r.status, 201);
    char v[64];
    assert_true(ts_http_header(r.head, "Cache-Control", v, sizeof(v)));
    assert_string_equal(v, "no-store");
    const char *tok = ts_jstr(r.json, "token");
    assert_non_null(tok);
    assert_int_equal(strlen(tok), GW_AUTH_TOKEN_LEN);
    assert_memory_equal(tok, GW_AUTH_TOKEN_PREFIX, 4);
    char token[GW_AUTH_TOKEN_LEN + 1];
    snprintf(token, sizeof(token), "%s", tok);
    int64_t id = json_integer_value(json_object_get(r.json, "id"));
    ts_http_resp_free(&r);
    /* two tokens of one principal differ */
    req_as(f, f->port, adm, NULL, "POST", "/v1/principals/plat-x/tokens", "{}", &r);
    assert_int_equal(r.status, 201);
    assert_string_not_equal(ts_jstr(r.json, "token"), token);
    ts_http_resp_free(&r);
    assert_int_equal(call(f, token, "GET", "/v1/tasks", NULL), 200);
    /* the row holds SHA-256(token) */
    char path[160];
    snprintf(path, sizeof(path), "%s.auth", f->db);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT hash FROM auth_token WHERE id = ?1", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    uint8_t h[32];
    assert_int_equal(api_sha256(token, strlen(token), h), 0);
    assert_int_equal(sqlite3_column_bytes(st, 0), 32);
    assert_memory_equal(sqlite3_column_blob(st, 0), h, 32);
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* the token text is nowhere in the file, its journal, the audit log or the list */
    char wal[176], aud[160];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    snprintf(aud, sizeof(aud), "%s.audit", f->db);
    assert_false(file_contains(path, token + 4));
    assert_false(file_contains(wal, token + 4));
    assert_false(file_contains(aud, token + 4));
    snprintf(aud, sizeof(aud), "%s.audit-wal", f->db);
    assert_false(file_contains(aud, token + 4));
    req_as(f, f->port, adm, NULL, "GET", "/v1/tokens", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, token + 4));
    assert_non_null(strstr(r.body, "\"principal\":\"plat-x\""));
    char tail[9];
    snprintf(tail, sizeof(tail), "%02x%02x%02x%02x", h[28], h[29], h[30], h[31]);
    assert_non_null(strstr(r.body, tail));
    ts_http_resp_free(&r);
    assert_int_equal(audit_count(f, "token.create", "principal=plat-x%"), 2);
    /* r-platform (setup) and plat-x */
    assert_int_equal(audit_count(f, "principal.create", "role=platform"), 2);
}

/* ---- refusals name the route, not the path ---- */

/*
 * A wallet session id is a bearer secret in the path. Refused calls on it
 * (no token, a bad one, another role) are audited and logged with the
 * route's pattern: the id is in neither the audit log nor the log file.
 */
static void test_fail_audit_hides_path_secret(void **state)
{
    struct fx *f = *state;
    gw_stop(f->g);
    f->g = NULL;
    snprintf(f->log_path, sizeof(f->log_path), "%s/gw.log", f->dir);
    gw_up(f);
    static const char secret[] = "c0ffee5ec2e7d00dfeedfacecafe4242";
    char path[96];
    snprintf(path, sizeof(path), "/v1/wallet/sessions/%s", secret);
    uint64_t before = audit_count(f, "auth.fail", "%");
    struct ts_http_resp r;
    req_as(f, f->pull_port, NULL, NULL, "POST", path, "{}", &r);
    assert_int_equal(r.status, 401);
    ts_http_resp_free(&r);
    req_as(f, f->pull_port, "otk_unknown", NULL, "POST", path, "{}", &r);
    assert_int_equal(r.status, 401);
    ts_http_resp_free(&r);
    req_as(f, f->pull_port, tok_of(f, GW_ROLE_PLATFORM), NULL, "POST", path, "{}", &r);
    assert_int_equal(r.status, 403);
    ts_http_resp_free(&r);
    assert_int_equal(audit_count(f, "auth.fail", "%") - before, 3);
    assert_int_equal(
        audit_count(f, "auth.fail", "%method=POST route=/v1/wallet/sessions/{session} %"), 3);
    char like[64];
    snprintf(like, sizeof(like), "%%%.8s%%", secret + 12); /* not even a part of it */
    assert_int_equal(audit_count(f, "auth.fail", like), 0);
    gw_stop(f->g); /* flushes and closes the log */
    f->g = NULL;
    char aud[176];
    snprintf(aud, sizeof(aud), "%s.audit", f->db);
    assert_false(file_contains(aud, secret));
    snprintf(aud, sizeof(aud), "%s.audit-wal", f->db);
    assert_false(file_contains(aud, secret));
    assert_true(file_contains(f->log_path, "route=/v1/wallet/sessions/{session}"));
    assert_false(file_contains(f->log_path, secret));
    assert_false(file_contains(f->log_path, secret + 8));
    f->log_path[0] = '\0';
    gw_up(f);
}

/* ---- revoke and the cache ---- */

static void test_revoke(void **state)
{
    struct fx *f = *state;
    const char *adm = tok_of(f, GW_ROLE_ADMIN);
    const char *opt = tok_of(f, GW_ROLE_OPERATOR);
    char t2[GW_AUTH_TOKEN_LEN + 1];
    int64_t id2;
    struct ota_err err;
    /* a second token of the operator: revoking one leaves the other working */
    assert_int_equal(
        gw_auth_token_create(f->g, "test", "r-operator", GW_ROLE_OPERATOR, t2, &id2, &err), 0);
    assert_int_equal(call(f, opt, "GET", "/v1/stats", NULL), 200);
    assert_int_equal(call(f, t2, "GET", "/v1/stats", NULL), 200);
    char p[64];
    snprintf(p, sizeof(p), "/v1/tokens/%lld/revoke", (long long)f->tok_id[1]);
    assert_int_equal(call(f, opt, "POST", p, NULL), 403); /* operators do not revoke */
    assert_int_equal(call(f, adm, "POST", p, NULL), 200);
    /* at once: no waiting for a cache to expire */
    assert_int_equal(call(f, opt, "GET", "/v1/stats", NULL), 401);
    assert_int_equal(call(f, t2, "GET", "/v1/stats", NULL), 200);
    assert_int_equal(call(f, adm, "POST", p, NULL), 409);
    assert_int_equal(call(f, adm, "POST", "/v1/tokens/424242/revoke", NULL), 404);
    assert_int_equal(call(f, adm, "POST", "/v1/tokens/abc/revoke", NULL), 404);
    assert_true(audit_count(f, "token.revoke", "%") == 1);
    assert_true(audit_count(f, "auth.fail", "reason=revoked-token%") >= 1);
    /* revoked through another connection (otatool): seen within GW_AUTH_RECHECK_S */
    char path[160];
    snprintf(path, sizeof(path), "%s.auth", f->db);
    sqlite3 *db = NULL;
    assert_int_equal(gw_auth_db_open(path, &db, &err), 0);
    assert_int_equal(gw_auth_db_token_revoke(db, id2, &err), 0);
    assert_int_equal(gw_auth_db_token_revoke(db, id2, &err), -EALREADY);
    assert_int_equal(gw_auth_db_token_revoke(db, 999999, &err), -ENOENT);
    /* and a token made offline works without a restart */
    struct gw_principal pp;
    char t3[GW_AUTH_TOKEN_LEN + 1];
    int64_t id3;
    assert_int_equal(gw_auth_db_principal_add(db, "ops-2", GW_ROLE_OPERATOR, &pp, &err), 0);
    assert_int_equal(gw_auth_db_principal_add(db, "ops-2", GW_ROLE_OPERATOR, &pp, &err), -EEXIST);
    assert_int_equal(gw_auth_db_principal_add(db, "bad name", GW_ROLE_OPERATOR, &pp, &err),
                     -EINVAL);
    assert_int_equal(gw_auth_db_token_add(db, pp.id, t3, &id3, &err), 0);
    sqlite3_close(db);
    bool gone = false, seen = false;
    for (int i = 0; i < 60 && !(gone && seen); i++) {
        usleep(50 * 1000);
        ev_now_update(f->loop);
        gone = call(f, t2, "GET", "/v1/stats", NULL) == 401;
        seen = call(f, t3, "GET", "/v1/stats", NULL) == 200;
    }
    assert_true(gone);
    assert_true(seen);
}

/* ---- the admin routes ---- */

static void test_admin_routes(void **state)
{
    struct fx *f = *state;
    const char *adm = tok_of(f, GW_ROLE_ADMIN);
    struct ts_http_resp r;
    static const struct {
        const char *body;
        int status;
    } bad[] = {
        {"{\"name\":\"x\"}", 400},
        {"{\"role\":\"admin\"}", 400},
        {"{\"name\":\"x\",\"role\":\"root\"}", 400},
        {"{\"name\":\"a b\",\"role\":\"admin\"}", 400},
        {"{\"name\":\"\",\"role\":\"admin\"}", 400},
        {"{\"name\":7,\"role\":\"admin\"}", 400},
        {"{\"name\":\"x\",\"role\":\"admin\",\"extra\":1}", 400},
        {"[1]", 400},
        {"{", 400},
        {"{\"name\":\"r-admin\",\"role\":\"admin\"}", 409},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req_as(f, f->port, adm, NULL, "POST", "/v1/principals", bad[i].body, &r);
        if (r.status != bad[i].status) {
            fail_msg("%s: %d", bad[i].body, r.status);
        }
        ts_http_resp_free(&r);
    }
    char longname[80];
    memset(longname, 'n', sizeof(longname));
    longname[GW_AUTH_NAME_MAX + 1] = '\0';
    char body[160];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"role\":\"client\"}", longname);
    assert_int_equal(call(f, adm, "POST", "/v1/principals", body), 400);
    longname[GW_AUTH_NAME_MAX] = '\0';
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"role\":\"client\"}", longname);
    assert_int_equal(call(f, adm, "POST", "/v1/principals", body), 201);
    assert_int_equal(call(f, adm, "POST", "/v1/principals/nobody/tokens", NULL), 404);
    assert_int_equal(call(f, adm, "POST", "/v1/principals/r-client/tokens", "{\"x\":1}"), 400);
    req_as(f, f->port, adm, NULL, "GET", "/v1/principals", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *arr = json_object_get(r.json, "principals");
    assert_int_equal(json_array_size(arr), N_ROLES + 1);
    size_t i;
    json_t *p;
    json_array_foreach(arr, i, p)
    {
        if (strcmp(ts_jstr(p, "name"), "r-client") == 0) {
            assert_string_equal(ts_jstr(p, "role"), "client");
            assert_int_equal(json_integer_value(json_object_get(p, "live_tokens")), 1);
        }
    }
    ts_http_resp_free(&r);
    /* the API's token create refuses another role for an existing principal */
    char t[GW_AUTH_TOKEN_LEN + 1];
    int64_t id;
    struct ota_err err;
    assert_int_equal(gw_auth_token_create(f->g, "test", "r-client", GW_ROLE_ADMIN, t, &id, &err),
                     -EEXIST);
    assert_int_equal(gw_auth_token_create(f->g, "test", "bad/name", GW_ROLE_ADMIN, t, &id, &err),
                     -EINVAL);
    assert_int_equal(audit_count(f, "principal.create", "%"), N_ROLES + 1);
}

/* ---- a restart keeps principals and tokens; roles and names parse ---- */

static void test_durable_and_names(void **state)
{
    struct fx *f = *state;
    const char *adm = tok_of(f, GW_ROLE_ADMIN);
    char p[64];
    snprintf(p, sizeof(p), "/v1/tokens/%lld/revoke", (long long)f->tok_id[3]);
    assert_int_equal(call(f, adm, "POST", p, NULL), 200);
    gw_stop(f->g);
    f->g = NULL;
    gw_up(f);
    assert_int_equal(call(f, adm, "GET", "/v1/tokens", NULL), 200);
    assert_int_equal(call(f, tok_of(f, GW_ROLE_CLIENT), "GET", "/v1/tokens", NULL), 401);
    for (int i = 0; i < N_ROLES; i++) {
        enum gw_role r;
        assert_int_equal(gw_role_parse(gw_role_name(all_roles[i]), &r), 0);
        assert_int_equal(r, all_roles[i]);
    }
    enum gw_role r;
    assert_int_equal(gw_role_parse("Admin", &r), -EINVAL);
    assert_int_equal(gw_role_parse("", &r), -EINVAL);
    assert_string_equal(gw_role_name((enum gw_role)0), "?");
    assert_true(gw_auth_name_ok("a.b_c-9"));
    assert_false(gw_auth_name_ok("a/b"));
    assert_false(gw_auth_name_ok(""));
    assert_false(gw_auth_name_ok(NULL));
    struct gw_principal plat = {.name = "p1", .role = GW_ROLE_PLATFORM};
    struct gw_principal cli = {.name = "c1", .role = GW_ROLE_CLIENT};
    struct gw_principal op = {.name = "o1", .role = GW_ROLE_OPERATOR};
    assert_true(gw_principal_owns(&plat, "p1"));
    assert_false(gw_principal_owns(&plat, "p2"));
    assert_false(gw_principal_owns(&plat, NULL));
    assert_false(gw_principal_owns(&cli, "c1"));
    assert_true(gw_principal_owns(&op, "p2"));
    assert_true(gw_principal_owns(&op, NULL));
    assert_null(gw_principal_owner(&op));
    assert_string_equal(gw_principal_owner(&plat), "p1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_route_every_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauthorized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_flood_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_platform_sees_only_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_stored_not_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_audit_hides_path_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_and_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
