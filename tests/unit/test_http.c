/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the HTTP server layer (gateway/http.c): a server on
 * 127.0.0.1, port 0, on an ev loop of the test, and a small client on raw
 * sockets in the test itself. The client writes a request and then runs the
 * loop one step at a time (with a 5 ms guard timer) while reading the
 * answer without blocking, until Content-Length is satisfied or a 3 s
 * deadline passes. Covers routing (params, query, percent-decoding, 404,
 * 405 + Allow), JSON in and out, strict JSON refusals, the body limit (with
 * and without keep-alive after it), framing refusals and what lws refuses on
 * its own, keep-alive and pipelining, custom headers, large answers, deferred
 * answers, clients leaving mid-body and before a deferred answer, the idle
 * timeout, IPv6, and freeing the server with a request outstanding.
 */
#include "gateway/http.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "tests/support/ts_http.h"

struct fx {
    struct ev_loop *loop;
    struct http_server *srv;
    uint16_t port;
    int calls;             /* handler invocations */
    struct http_req *held; /* a request whose answer is deferred */
    ev_timer later;
    ev_tstamp held_at;
    int later_rc; /* what the deferred respond returned */
    bool later_fired;
    bool gone_seen;
};

struct resp {
    int status;
    char head[4096];
    char *body;
    size_t body_len;
    bool closed; /* the server closed the connection after (or instead of) the answer */
};

static void resp_clear(struct resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* ---- handlers ---- */

static void h_ses_tasks(struct http_req *req, void *arg)
{
    struct fx *f = arg;
    f->calls++;
    const char *state = http_req_query(req, "state");
    json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:s}", "seid", http_req_param(req, "seid"), "method",
                          http_req_method(req), "path", http_req_path(req), "no_param",
                          http_req_param(req, "nope") == NULL, "peer", http_req_peer(req));
    json_object_set_new(o, "state", state ? json_string(state) : json_null());
    json_object_set_new(o, "missing", http_req_query(req, "missing") ? json_true() : json_false());
    const char *flag = http_req_query(req, "flag");
    json_object_set_new(o, "flag", flag ? json_string(flag) : json_null());
    assert_int_equal(http_respond_json(req, 200, o), 0);
}

static void h_echo(struct http_req *req, void *arg)
{
    struct fx *f = arg;
    f->calls++;
    struct ota_err err;
    json_t *j = http_req_json(req, &err);
    if (!j) {
        assert_int_equal(err.code != OTA_OK, 1);
        assert_int_equal(http_respond_error(req, 400, "bad-json", "%s", err.msg), 0);
        return;
    }
    assert_ptr_equal(http_req_json(req, &err), j); /* kept with the request */
    const char *key = http_req_header(req, "idempotency-key");
    const char *auth = http_req_header(req, "authorization");
    json_t *o = json_pack("{s:O}", "echo", j);
    json_object_set_new(o, "key", key ? json_string(key) : json_null());
    json_object_set_new(o, "auth", auth ? json_string(auth) : json_null());
    json_object_set_new(o, "no_hdr", json_boolean(http_req_header(req, "x-not-sent") == NULL));
    assert_int_equal(http_req_set_header(req, "X-Echo", "yes"), 0);
    assert_int_equal(http_req_set_header(req, "Bad Name", "x"), -EINVAL);
    assert_int_equal(http_req_set_header(req, "X-Inject", "a\r\nb: c"), -EINVAL);
    assert_int_equal(http_respond_json(req, 201, o), 0);
}

static void later_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct fx *f = w->data;
    f->later_fired = true;
    struct http_req *req = f->held;
    f->held = NULL;
    const char *key = http_req_header(req, "idempotency-key");
    json_t *o = json_pack("{s:b,s:f}", "deferred", 1, "waited", ev_now(f->loop) - f->held_at);
    json_object_set_new(o, "key", key ? json_string(key) : json_null());
    f->later_rc = http_respond_json(req, 202, o);
}

/* Answers 50 ms later from a timer, like the engine after its commit. */
static void h_defer(struct http_req *req, void *arg)
{
    struct fx *f = arg;
    f->calls++;
    f->held = req;
    f->held_at = ev_now(f->loop);
    ev_timer_init(&f->later, later_cb, 0.05, 0.);
    f->later.data = f;
    ev_timer_start(f->loop, &f->later);
}

/* Keeps the request and never answers (the test decides). */
static void h_hold(struct http_req *req, void *arg)
{
    struct fx *f = arg;
    f->calls++;
    f->held = req;
}

static void h_get_task(struct http_req *req, void *arg)
{
    struct fx *f = arg;
    f->calls++;
    assert_int_equal(
        http_respond_json(req, 200, json_pack("{s:s}", "id", http_req_param(req, "id"))), 0);
}

static void h_big(struct http_req *req, void *arg)
{
    struct fx *f = arg;
    f->calls++;
    size_t n = 100000;
    char *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) {
        b[i] = (char)('a' + i % 26);
    }
    assert_int_equal(http_respond_raw(req, 200, "text/plain", b, n), 0);
    free(b);
}

/* ---- fixture ---- */

static void fx_start(struct fx *f, size_t max_body)
{
    memset(f, 0, sizeof(*f));
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    struct http_conf c = {.bind_addr = "127.0.0.1",
                          .port = 0,
                          .max_body = max_body,
                          .idle_timeout_s = 5,
                          .server_name = "otagw-test"};
    struct ota_err err;
    assert_int_equal(http_server_new(f->loop, &c, &f->srv, &err), 0);
    f->port = http_server_port(f->srv);
    assert_true(f->port > 0);
    assert_int_equal(http_route(f->srv, "GET", "/v1/ses/{seid}/tasks", h_ses_tasks, f, &err), 0);
    assert_int_equal(http_route(f->srv, "POST", "/v1/echo", h_echo, f, &err), 0);
    assert_int_equal(http_route(f->srv, "POST", "/v1/defer", h_defer, f, &err), 0);
    assert_int_equal(http_route(f->srv, "POST", "/v1/hold", h_hold, f, &err), 0);
    assert_int_equal(http_route(f->srv, "GET", "/v1/tasks/{id}", h_get_task, f, &err), 0);
    assert_int_equal(http_route(f->srv, "DELETE", "/v1/tasks/{id}", h_get_task, f, &err), 0);
    assert_int_equal(http_route(f->srv, "GET", "/big", h_big, f, &err), 0);
}

static void fx_stop(struct fx *f)
{
    if (ev_is_active(&f->later)) {
        ev_timer_stop(f->loop, &f->later);
    }
    http_server_free(f->srv);
    ev_loop_destroy(f->loop);
}

/* One loop iteration, never blocking longer than 5 ms. */
static void pump(struct fx *f)
{
    ts_http_pump(f->loop);
}

static void pump_for(struct fx *f, double secs)
{
    ev_now_update(f->loop);
    ev_tstamp end = ev_now(f->loop) + secs;
    while (ev_now(f->loop) < end) {
        pump(f);
        ev_now_update(f->loop);
    }
}

static int cli_connect(struct fx *f)
{
    return ts_http_connect(f->port);
}

static void cli_send(int fd, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        assert_true(n > 0);
        off += (size_t)n;
    }
}

/* The value of response header name (case-insensitive) copied into out; false if absent. */
static bool resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
    return ts_http_header(r->head, name, out, cap);
}

/*
 * Read one response on fd while pumping the loop. Returns true when a whole
 * response (headers + Content-Length bytes) arrived before the deadline.
 */
static bool cli_read(struct fx *f, int fd, struct resp *r)
{
    resp_clear(r);
    char buf[200000];
    size_t have = 0;
    ev_now_update(f->loop);
    ev_tstamp end = ev_now(f->loop) + 3.0;
    while (ev_now(f->loop) < end) {
        ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, MSG_DONTWAIT);
        if (n > 0) {
            have += (size_t)n;
            buf[have] = '\0';
        } else if (n == 0) {
            r->closed = true;
        }
        char *eoh = strstr(buf, "\r\n\r\n");
        if (have && eoh) {
            size_t hl = (size_t)(eoh - buf) + 2;
            assert_true(hl < sizeof(r->head));
            memcpy(r->head, buf, hl);
            r->head[hl] = '\0';
            char cl[32];
            if (resp_header(r, "content-length", cl, sizeof(cl))) {
                size_t want = strtoul(cl, NULL, 10);
                size_t got = have - (hl + 2);
                if (got >= want) {
                    assert_int_equal(got, want); /* nothing unasked-for after the body */
                    assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &r->status), 1);
                    r->body = malloc(want + 1);
                    memcpy(r->body, eoh + 4, want);
                    r->body[want] = '\0';
                    r->body_len = want;
                    return true;
                }
            }
        }
        if (r->closed) {
            return false;
        }
        pump(f);
        ev_now_update(f->loop);
    }
    return false;
}

/* Send a request and read its response on an open connection. */
static void cli_do(struct fx *f, int fd, const char *req, struct resp *r)
{
    cli_send(fd, req, strlen(req));
    assert_true(cli_read(f, fd, r));
}

/* Wait (pumping) until the server closed fd; true if it did within 3 s. */
static bool cli_wait_closed(struct fx *f, int fd)
{
    char b[4096];
    for (int i = 0; i < 600; i++) {
        ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            return true;
        }
        pump(f);
    }
    return false;
}

static json_t *resp_json(const struct resp *r)
{
    json_error_t je;
    json_t *j = json_loads(r->body, 0, &je);
    assert_non_null(j);
    return j;
}

/* Assert the one error shape with this status and code. */
static void assert_error_shape(const struct resp *r, int status, const char *code)
{
    assert_int_equal(r->status, status);
    char ct[64];
    assert_true(resp_header(r, "content-type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json");
    json_t *j = resp_json(r);
    assert_int_equal(json_object_size(j), 1);
    json_t *e = json_object_get(j, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_object_size(e), 3);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    assert_true(json_string_length(json_object_get(e, "message")) > 0);
    assert_int_equal(json_integer_value(json_object_get(e, "status")), status);
    json_decref(j);
}

static char *post_req(const char *path, const char *extra_headers, const char *body)
{
    size_t n = strlen(body) + 512 + strlen(extra_headers);
    char *r = malloc(n);
    snprintf(r, n,
             "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n%s"
             "Content-Length: %zu\r\n\r\n%s",
             path, extra_headers, strlen(body), body);
    return r;
}

/* ---- tests ---- */

static void test_get_param_query(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    struct resp r = {0};
    cli_do(&f, fd, "GET /v1/ses/SE-0001/tasks?state=queued&flag&x=1 HTTP/1.1\r\nHost: t\r\n\r\n",
           &r);
    assert_int_equal(r.status, 200);
    char v[64];
    assert_true(resp_header(&r, "server", v, sizeof(v)));
    assert_string_equal(v, "otagw-test");
    json_t *j = resp_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "seid")), "SE-0001");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "queued");
    assert_string_equal(json_string_value(json_object_get(j, "flag")), "");
    assert_true(json_is_false(json_object_get(j, "missing")));
    assert_true(json_is_true(json_object_get(j, "no_param")));
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/v1/ses/SE-0001/tasks");
    assert_string_equal(json_string_value(json_object_get(j, "peer")), "127.0.0.1");
    json_decref(j);
    /* No query at all: the argument is NULL, not "". */
    cli_do(&f, fd, "GET /v1/ses/X/tasks HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    j = resp_json(&r);
    assert_true(json_is_null(json_object_get(j, "state")));
    json_decref(j);
    assert_int_equal(f.calls, 2);
    resp_clear(&r);
    close(fd);
    fx_stop(&f);
}

static void test_percent_decoding(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    struct resp r = {0};
    cli_do(&f, fd, "GET /v1/ses/a%20b%C3%A9%3F/tasks?state=x%26y+z%3D HTTP/1.1\r\nHost: t\r\n\r\n",
           &r);
    assert_int_equal(r.status, 200);
    json_t *j = resp_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "seid")), "a b\xc3\xa9?");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "x&y z=");
    json_decref(j);
    /* lws decodes before routing: "+" is a space, and "%2F" a real slash (so no match). */
    cli_do(&f, fd, "GET /v1/tasks/a+b HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_string_equal(r.body, "{\"id\":\"a b\"}");
    cli_do(&f, fd, "GET /v1/tasks/a%2Fb HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_error_shape(&r, 404, "not-found");
    resp_clear(&r);
    close(fd);
    fx_stop(&f);
}

static void test_post_json_echo_headers(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    struct resp r = {0};
    char *req = post_req("/v1/echo", "Idempotency-Key: k-123\r\nAuthorization: Bearer tok\r\n",
                         "{\"a\":1,\"b\":[true,null,\"\xc3\xa9\"]}");
    cli_do(&f, fd, req, &r);
    free(req);
    assert_int_equal(r.status, 201);
    char v[64];
    assert_true(resp_header(&r, "x-echo", v, sizeof(v)));
    assert_string_equal(v, "yes");
    assert_true(resp_header(&r, "content-type", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    json_t *j = resp_json(&r);
    json_t *want = json_loads("{\"a\":1,\"b\":[true,null,\"\xc3\xa9\"]}", 0, NULL);
    assert_true(json_equal(json_object_get(j, "echo"), want));
    assert_string_equal(json_string_value(json_object_get(j, "key")), "k-123");
    assert_string_equal(json_string_value(json_object_get(j, "auth")), "Bearer tok");
    assert_true(json_is_true(json_object_get(j, "no_hdr")));
    json_decref(want);
    json_decref(j);
    resp_clear(&r);
    close(fd);
    fx_stop(&f);
}

static void test_bad_json(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    struct resp r = {0};
    char deep[200] = "";
    for (int i = 0; i < 40; i++) {
        strcat(deep, "[");
    }
    for (int i = 0; i < 40; i++) {
        strcat(deep, "]");
    }
    char deep_obj[256];
    snprintf(deep_obj, sizeof(deep_obj), "{\"a\":%s}", deep);
    const char *bodies[] = {
        "{\"a\":",           /* truncated */
        "{\"a\":1} x",       /* trailing data */
        "[1,2]",             /* not an object */
        "{\"a\":1,\"a\":2}", /* duplicate key */
        "{\"a\":\"\\u0000\"}",
        deep_obj,
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char *req = post_req("/v1/echo", "", bodies[i]);
        cli_do(&f, fd, req, &r); /* all on one keep-alive connection */
        free(req);
        assert_error_shape(&r, 400, "bad-json");
        if (i == 3) {
            assert_non_null(strstr(r.body, "duplicate"));
        }
        if (i == 5) {
            assert_non_null(strstr(r.body, "deeper"));
        }
    }
    /* An explicitly empty body reaches the handler too, and is refused by http_req_json. */
    cli_do(&f, fd, "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r);
    assert_error_shape(&r, 400, "bad-json");
    assert_int_equal(f.calls, 7);
    resp_clear(&r);
    close(fd);
    fx_stop(&f);
}

static void test_body_too_large(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 1024);
    int fd = cli_connect(&f);
    struct resp r = {0};
    char big[2001];
    memset(big, 'x', 2000);
    big[2000] = '\0';
    char *req = post_req("/v1/echo", "", big);
    cli_do(&f, fd, req, &r);
    free(req);
    assert_error_shape(&r, 413, "body-too-large");
    assert_int_equal(f.calls, 0); /* refused before the handler */
    /* The rest of the body was discarded; the connection carries on. */
    req = post_req("/v1/echo", "", "{\"ok\":true}");
    cli_do(&f, fd, req, &r);
    free(req);
    assert_int_equal(r.status, 201);
    assert_int_equal(f.calls, 1);
    /* Exactly at the limit is accepted. */
    char at[1025];
    memset(at, ' ', 1024);
    at[0] = '{';
    at[1023] = '}';
    at[1024] = '\0';
    req = post_req("/v1/echo", "", at);
    cli_do(&f, fd, req, &r);
    free(req);
    assert_int_equal(r.status, 201);
    resp_clear(&r);
    close(fd);
    fx_stop(&f);
}

static void test_framing_refusals(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    struct resp r = {0};
    /* POST without Content-Length: 411 and the connection closes. */
    int fd = cli_connect(&f);
    cli_do(&f, fd, "POST /v1/echo HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_error_shape(&r, 411, "length-required");
    assert_true(cli_wait_closed(&f, fd));
    close(fd);
    /* Content-Length that is not a number: 400 and close. */
    fd = cli_connect(&f);
    cli_do(&f, fd, "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n{}", &r);
    assert_error_shape(&r, 400, "bad-content-length");
    assert_true(cli_wait_closed(&f, fd));
    close(fd);
    /* Chunked request bodies are refused. */
    fd = cli_connect(&f);
    cli_do(&f, fd,
           "POST /v1/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
           "chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
           &r);
    assert_error_shape(&r, 411, "length-required");
    close(fd);
    assert_int_equal(f.calls, 0);
    resp_clear(&r);
    fx_stop(&f);
}

static void test_404_405(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    struct resp r = {0};
    cli_do(&f, fd, "GET /v1/nothing HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_error_shape(&r, 404, "not-found");
    /* An empty segment does not match {id}; neither does a trailing slash. */
    cli_do(&f, fd, "GET /v1/tasks/ HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_error_shape(&r, 404, "not-found");
    cli_do(&f, fd, "GET /v1/tasks/1/2 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_error_shape(&r, 404, "not-found");
    char *req = post_req("/v1/tasks/7", "", "{}");
    cli_do(&f, fd, req, &r);
    free(req);
    assert_error_shape(&r, 405, "method-not-allowed");
    char allow[64];
    assert_true(resp_header(&r, "allow", allow, sizeof(allow)));
    assert_string_equal(allow, "GET, DELETE");
    cli_do(&f, fd, "PUT /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}", &r);
    assert_error_shape(&r, 405, "method-not-allowed");
    assert_true(resp_header(&r, "allow", allow, sizeof(allow)));
    assert_string_equal(allow, "POST");
    /* The routed ones still work on the same connection afterwards. */
    cli_do(&f, fd, "DELETE /v1/tasks/t-9 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"t-9\""));
    assert_int_equal(f.calls, 1);
    close(fd);
    /* HEAD is not routed: 405, and the connection closes (the client expects no body). */
    fd = cli_connect(&f);
    cli_do(&f, fd, "HEAD /v1/tasks/h HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_error_shape(&r, 405, "method-not-allowed");
    assert_true(cli_wait_closed(&f, fd));
    assert_int_equal(f.calls, 1);
    resp_clear(&r);
    close(fd);
    fx_stop(&f);
}

static void test_keepalive_two_requests(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    struct resp r = {0};
    cli_do(&f, fd, "GET /v1/tasks/one HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_false(r.closed);
    assert_string_equal(r.body, "{\"id\":\"one\"}");
    cli_do(&f, fd, "GET /v1/tasks/two HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"id\":\"two\"}");
    /* Two requests in one write (pipelined) are answered in order. */
    cli_send(
        fd,
        "GET /v1/tasks/p1 HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/tasks/p2 HTTP/1.1\r\nHost: t\r\n\r\n",
        strlen("GET /v1/tasks/p1 HTTP/1.1\r\nHost: t\r\n\r\n") * 2);
    char buf[4096] = "";
    size_t have = 0;
    for (int i = 0; i < 600 && !strstr(buf, "\"p2\"}"); i++) {
        ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, MSG_DONTWAIT);
        if (n > 0) {
            have += (size_t)n;
        }
        buf[have] = '\0';
        pump(&f);
    }
    char *p1 = strstr(buf, "{\"id\":\"p1\"}");
    char *p2 = strstr(buf, "{\"id\":\"p2\"}");
    assert_non_null(p1);
    assert_non_null(p2);
    assert_true(p1 < p2);
    resp_clear(&r);
    assert_int_equal(f.calls, 4);
    close(fd);
    fx_stop(&f);
}

static void test_large_response(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    struct resp r = {0};
    cli_do(&f, fd, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 100000);
    for (size_t i = 0; i < r.body_len; i++) {
        if (r.body[i] != (char)('a' + i % 26)) {
            fail_msg("byte %zu differs", i);
        }
    }
    cli_do(&f, fd, "GET /v1/tasks/after HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    close(fd);
    fx_stop(&f);
}

static void test_deferred_answer(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    struct resp r = {0};
    char *req = post_req("/v1/defer", "Idempotency-Key: later-1\r\n", "{}");
    cli_do(&f, fd, req, &r);
    free(req);
    assert_true(f.later_fired);
    assert_int_equal(f.later_rc, 0);
    assert_int_equal(r.status, 202);
    json_t *j = resp_json(&r);
    assert_true(json_is_true(json_object_get(j, "deferred")));
    assert_true(json_real_value(json_object_get(j, "waited")) >= 0.045);
    /* Headers stay readable until the answer. */
    assert_string_equal(json_string_value(json_object_get(j, "key")), "later-1");
    json_decref(j);
    /* The connection is reusable after a deferred answer. */
    cli_do(&f, fd, "GET /v1/tasks/x HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    close(fd);
    fx_stop(&f);
}

static void test_client_gone_before_answer(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    char *req = post_req("/v1/hold", "Idempotency-Key: k\r\n", "{\"x\":1}");
    cli_send(fd, req, strlen(req));
    free(req);
    for (int i = 0; i < 600 && !f.held; i++) {
        pump(&f);
    }
    assert_non_null(f.held);
    assert_false(http_req_gone(f.held));
    close(fd);
    for (int i = 0; i < 600 && !http_req_gone(f.held); i++) {
        pump(&f);
    }
    assert_true(http_req_gone(f.held));
    /* Still readable; headers are gone with the connection. */
    size_t len;
    assert_string_equal((const char *)http_req_body(f.held, &len), "{\"x\":1}");
    assert_int_equal(len, 7);
    assert_string_equal(http_req_param(f.held, "nope") ? "?" : "", "");
    assert_null(http_req_header(f.held, "idempotency-key"));
    assert_int_equal(http_respond_json(f.held, 200, json_object()), -ENOTCONN);
    f.held = NULL;
    /* The server is fine afterwards. */
    fd = cli_connect(&f);
    struct resp r = {0};
    cli_do(&f, fd, "GET /v1/tasks/x HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    /* Same with an error answer and a raw one. */
    req = post_req("/v1/hold", "", "{}");
    cli_send(fd, req, strlen(req));
    free(req);
    for (int i = 0; i < 600 && !f.held; i++) {
        pump(&f);
    }
    assert_non_null(f.held);
    close(fd);
    for (int i = 0; i < 600 && !http_req_gone(f.held); i++) {
        pump(&f);
    }
    assert_int_equal(http_respond_error(f.held, 409, "conflict", "x %d", 1), -ENOTCONN);
    f.held = NULL;
    resp_clear(&r);
    fx_stop(&f);
}

static void test_free_with_request_outstanding(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    char *req = post_req("/v1/hold", "", "{\"pending\":true}");
    cli_send(fd, req, strlen(req));
    free(req);
    for (int i = 0; i < 600 && !f.held; i++) {
        pump(&f);
    }
    assert_non_null(f.held);
    /* A second connection mid-headers, and a third idle one. */
    int fd2 = cli_connect(&f);
    cli_send(fd2, "GET /v1/tas", 11);
    int fd3 = cli_connect(&f);
    pump_for(&f, 0.02);
    fx_stop(&f); /* frees the held request: ASan/LSan see no leak */
    char b[64];
    ssize_t n = recv(fd, b, sizeof(b), 0);
    assert_true(n <= 0); /* closed without an answer */
    close(fd);
    close(fd2);
    close(fd3);
}

static void test_route_and_conf_checks(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    struct ota_err err;
    assert_int_equal(http_route(f.srv, "FETCH", "/x", h_get_task, &f, &err), -EINVAL);
    assert_int_equal(http_route(f.srv, "get", "/x", h_get_task, &f, &err), -EINVAL);
    assert_int_equal(http_route(f.srv, "GET", "x", h_get_task, &f, &err), -EINVAL);
    assert_int_equal(http_route(f.srv, "GET", "/a//b", h_get_task, &f, &err), -EINVAL);
    assert_int_equal(http_route(f.srv, "GET", "/a/", h_get_task, &f, &err), -EINVAL);
    assert_int_equal(http_route(f.srv, "GET", "/a/{", h_get_task, &f, &err), -EINVAL);
    assert_int_equal(http_route(f.srv, "GET", "/a/{}", h_get_task, &f, &err), -EINVAL);
    assert_int_equal(http_route(f.srv, "GET", "/a/x{id}", h_get_task, &f, &err), -EINVAL);
    assert_int_equal(http_route(f.srv, "GET", "/a/{i{d}", h_get_task, &f, &err), -EINVAL);
    assert_int_equal(http_route(f.srv, "GET", "/v1/tasks/{id}", h_get_task, &f, &err), -EEXIST);
    assert_int_equal(err.code, OTA_ERR_DUPLICATE);
    assert_int_equal(http_route(f.srv, "GET", "/", h_get_task, &f, &err), 0);
    fx_stop(&f);

    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct http_server *s = NULL;
    struct http_conf c = {.bind_addr = "localhost"};
    assert_int_equal(http_server_new(loop, &c, &s, &err), -EINVAL);
    assert_null(s);
    c.bind_addr = "127.0.0.1";
    c.max_header = 100;
    assert_int_equal(http_server_new(loop, &c, &s, &err), -EINVAL);
    /* A port already taken is refused, not silently shared. */
    c.max_header = 0;
    struct http_server *s1 = NULL;
    assert_int_equal(http_server_new(loop, &c, &s1, &err), 0);
    c.port = http_server_port(s1);
    assert_int_equal(http_server_new(loop, &c, &s, &err), -EADDRINUSE);
    assert_null(s);
    assert_non_null(strstr(err.msg, "127.0.0.1"));
    http_server_free(s1);
    http_server_free(NULL);
    ev_loop_destroy(loop);
}

static void test_client_gone_mid_body(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    cli_send(fd, "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"a\":", 61);
    pump_for(&f, 0.02);
    close(fd);
    pump_for(&f, 0.02);
    assert_int_equal(f.calls, 0); /* never dispatched; the partial request was freed */
    fd = cli_connect(&f);
    struct resp r = {0};
    cli_do(&f, fd, "GET /v1/tasks/z HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    close(fd);
    fx_stop(&f);
}

static void test_header_too_large(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    int fd = cli_connect(&f);
    size_t n = 12000;
    char *req = malloc(n + 200);
    int l = snprintf(req, 200, "GET /v1/tasks/h HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(req + l, 'b', n);
    strcpy(req + l + n, "\r\n\r\n");
    cli_send(fd, req, strlen(req));
    free(req);
    struct resp r = {0};
    /*
     * lws 4.1 refuses it by closing the connection ("Ran out of header data
     * space"); a 4xx would be fine too. Never the handler.
     */
    if (cli_read(&f, fd, &r)) {
        assert_true(r.status >= 400 && r.status < 500);
    } else {
        assert_true(r.closed || cli_wait_closed(&f, fd));
    }
    assert_int_equal(f.calls, 0);
    resp_clear(&r);
    close(fd);
    fx_stop(&f);
}

static void test_ipv6(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct http_server *s = NULL;
    struct http_conf c = {.bind_addr = "::1"};
    struct ota_err err;
    int rc = http_server_new(loop, &c, &s, &err);
    if (rc == -EADDRNOTAVAIL) {
        ev_loop_destroy(loop);
        skip(); /* no IPv6 loopback in this sandbox */
    }
    assert_int_equal(rc, 0);
    struct fx f = {.loop = loop, .srv = s, .port = http_server_port(s)};
    assert_int_equal(http_route(s, "GET", "/v1/ses/{seid}/tasks", h_ses_tasks, &f, &err), 0);
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(f.port)};
    sa.sin6_addr = in6addr_loopback;
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct resp r = {0};
    cli_do(&f, fd, "GET /v1/ses/six/tasks HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    json_t *j = resp_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "peer")), "::1");
    json_decref(j);
    resp_clear(&r);
    close(fd);
    http_server_free(s);
    ev_loop_destroy(loop);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct http_server *s = NULL;
    struct http_conf c = {.bind_addr = "127.0.0.1", .idle_timeout_s = 1};
    struct ota_err err;
    assert_int_equal(http_server_new(loop, &c, &s, &err), 0);
    struct fx f = {.loop = loop, .srv = s, .port = http_server_port(s)};
    assert_int_equal(http_route(s, "GET", "/v1/tasks/{id}", h_get_task, &f, &err), 0);
    int fd = cli_connect(&f);
    struct resp r = {0};
    cli_do(&f, fd, "GET /v1/tasks/i HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    /* An idle keep-alive connection is closed after about the idle timeout (lws ticks in s). */
    ev_now_update(loop);
    ev_tstamp t0 = ev_now(loop);
    assert_true(cli_wait_closed(&f, fd) || cli_wait_closed(&f, fd));
    ev_now_update(loop);
    assert_true(ev_now(loop) - t0 >= 0.5);
    resp_clear(&r);
    close(fd);
    http_server_free(s);
    ev_loop_destroy(loop);
}

/* A body over 16 x max_body: 413, then the connection closes (lws does not read the rest). */
static void test_huge_body(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 1024);
    int fd = cli_connect(&f);
    size_t n = 100000;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = 0;
    char *req = post_req("/v1/echo", "", big);
    cli_send(fd, req, strlen(req));
    free(req);
    free(big);
    struct resp r = {0};
    assert_true(cli_read(&f, fd, &r));
    assert_error_shape(&r, 413, "body-too-large");
    /* Far beyond the limit the rest is not read: the answer says close, and it does. */
    char v[32];
    assert_true(resp_header(&r, "connection", v, sizeof(v)));
    assert_string_equal(v, "close");
    assert_true(cli_wait_closed(&f, fd));
    assert_int_equal(f.calls, 0);
    resp_clear(&r);
    close(fd);
    fx_stop(&f);
}

/* Requests refused before any handler: by this layer (JSON 400) or by lws itself (403 / close). */
static void test_malformed_requests(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, 0);
    static const struct {
        const char *req;
        int status; /* 0: lws just closes */
        bool json;  /* our error shape (else lws's own page) */
    } cases[] = {
        {"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} ",
         400, true},
        {"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: -2\r\n\r\n", 400, true},
        {"GET /v1/tasks/a%zz HTTP/1.1\r\nHost: t\r\n\r\n", 403, false},
        {"GET /v1/tasks/a%00 HTTP/1.1\r\nHost: t\r\n\r\n", 0, false},
        {"FOO /v1/tasks/a HTTP/1.1\r\nHost: t\r\n\r\n", 403, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = cli_connect(&f);
        struct resp r = {0};
        cli_send(fd, cases[i].req, strlen(cases[i].req));
        bool got = cli_read(&f, fd, &r);
        if (cases[i].status) {
            assert_true(got);
            if (cases[i].json) {
                assert_error_shape(&r, cases[i].status, "bad-content-length");
            } else {
                assert_int_equal(r.status, cases[i].status);
            }
        } else {
            assert_false(got);
        }
        assert_true(r.closed || cli_wait_closed(&f, fd));
        resp_clear(&r);
        close(fd);
    }
    assert_int_equal(f.calls, 0);
    fx_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_param_query),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_post_json_echo_headers),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_framing_refusals),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_404_405),
        cmocka_unit_test(test_keepalive_two_requests),
        cmocka_unit_test(test_large_response),
        cmocka_unit_test(test_deferred_answer),
        cmocka_unit_test(test_client_gone_before_answer),
        cmocka_unit_test(test_free_with_request_outstanding),
        cmocka_unit_test(test_route_and_conf_checks),
        cmocka_unit_test(test_client_gone_mid_body),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_huge_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
