/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/support/ts_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

void ts_http_pump(struct ev_loop *loop)
{
    /* the guard wakes ev_run when nothing else is pending */
    ev_timer g;
    ev_timer_init(&g, guard_cb, 0.005, 0.);
    ev_timer_start(loop, &g);
    ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &g);
}

int ts_http_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* The listen queue takes the connect even before the loop runs. */
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

bool ts_http_header(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') {
                v++;
            }
            const char *e = strstr(v, "\r\n");
            size_t l = e ? (size_t)(e - v) : strlen(v);
            if (l >= cap) {
                l = cap - 1;
            }
            memcpy(out, v, l);
            out[l] = '\0';
            return true;
        }
    }
    return false;
}

int ts_http_send(struct ev_loop *loop, uint16_t port, const char *method, const char *path,
                 const char *headers, const char *body, bool must_send_all)
{
    int fd = ts_http_connect(port);
    size_t bl = body ? strlen(body) : 0;
    size_t cap = bl + 1024 + (headers ? strlen(headers) : 0);
    char *q = malloc(cap);
    assert_non_null(q);
    int n =
        snprintf(q, cap, "%s %s HTTP/1.1\r\nHost: t\r\n%s", method, path, headers ? headers : "");
    if (body) {
        n += snprintf(q + n, cap - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", bl, body);
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        n += snprintf(q + n, cap - (size_t)n, "Content-Length: 0\r\n\r\n");
    } else {
        n += snprintf(q + n, cap - (size_t)n, "\r\n");
    }
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t k = send(fd, q + off, (size_t)n - off, MSG_NOSIGNAL);
        if (must_send_all) {
            assert_true(k > 0);
        } else if (k <= 0) {
            break;
        }
        off += (size_t)k;
        ts_http_pump(loop);
    }
    free(q);
    return fd;
}

void ts_http_recv(struct ev_loop *loop, int fd, struct ts_http_resp *r)
{
    memset(r, 0, sizeof(*r));
    size_t bufcap = 262144, have = 0;
    char *buf = malloc(bufcap);
    assert_non_null(buf);
    bool done = false;
    for (int i = 0; i < 2000 && !done; i++) {
        ssize_t k = recv(fd, buf + have, bufcap - 1 - have, MSG_DONTWAIT);
        if (k > 0) {
            have += (size_t)k;
            buf[have] = '\0';
        }
        char *eoh = have ? strstr(buf, "\r\n\r\n") : NULL;
        if (eoh) {
            size_t hl = (size_t)(eoh - buf) + 2;
            assert_true(hl < sizeof(r->head));
            memcpy(r->head, buf, hl);
            r->head[hl] = '\0';
            char cl[32];
            assert_true(ts_http_header(r->head, "content-length", cl, sizeof(cl)));
            size_t want = strtoul(cl, NULL, 10);
            if (have - (hl + 2) >= want) {
                assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &r->status), 1);
                r->body = malloc(want + 1);
                assert_non_null(r->body);
                memcpy(r->body, eoh + 4, want);
                r->body[want] = '\0';
                r->body_len = want;
                json_error_t je;
                r->json = json_loads(r->body, JSON_DECODE_ANY, &je);
                done = true;
            }
        }
        if (!done) {
            ts_http_pump(loop);
        }
    }
    free(buf);
    close(fd);
    assert_true(done);
}

void ts_http_do(struct ev_loop *loop, uint16_t port, const char *method, const char *path,
                const char *headers, const char *body, bool must_send_all, struct ts_http_resp *r)
{
    ts_http_recv(loop, ts_http_send(loop, port, method, path, headers, body, must_send_all), r);
}

void ts_http_assert_error(const struct ts_http_resp *r, int status, const char *code)
{
    /* fail_msg with the body: a wrong answer is easier to read than a bare mismatch */
    if (r->status != status) {
        fail_msg("status %d, wanted %d: %s", r->status, status, r->body);
    }
    json_t *e = json_object_get(r->json, "error");
    assert_true(json_is_object(e));
    const char *c = json_string_value(json_object_get(e, "code"));
    if (!c || strcmp(c, code) != 0) {
        fail_msg("code %s, wanted %s: %s", c ? c : "(none)", code, r->body);
    }
    assert_int_equal(json_integer_value(json_object_get(e, "status")), status);
    assert_non_null(json_string_value(json_object_get(e, "message")));
}

void ts_http_resp_free(struct ts_http_resp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}
