/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small raw-socket HTTP/1.1 client for the unit tests that talk to a
 * gateway/http.h server in their own libev loop: one request per fresh
 * loopback connection, the answer read up to its Content-Length while the
 * loop is stepped (the server runs in the same thread, so the client must
 * drive it). Every helper checks with cmocka assertions.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct ev_loop;

struct ts_http_resp {
    int status;
    char head[8192]; /* status line and headers, each line ending in CRLF */
    char *body;      /* NUL-terminated, body_len octets */
    size_t body_len;
    json_t *json; /* the body parsed (JSON_DECODE_ANY), NULL if it is not JSON */
};

/* One loop iteration that never blocks longer than 5 ms. */
void ts_http_pump(struct ev_loop *loop);

/* A blocking TCP socket connected to 127.0.0.1:port; asserts success. */
int ts_http_connect(uint16_t port);

/*
 * The value of header name (case-insensitive) in head (as ts_http_resp.head)
 * copied into out (truncated to cap - 1); false if absent.
 */
bool ts_http_header(const char *head, const char *name, char *out, size_t cap);

/*
 * Connect and write one request: the method, path, headers (whole lines with
 * CRLF, NULL for none) and a JSON body (NULL for none; POST / PUT then send
 * Content-Length: 0), stepping loop between writes. If must_send_all, every
 * octet must be written; otherwise a write failure stops sending (the server
 * may close early, e.g. 413) and the answer is read anyway. Returns the socket.
 */
int ts_http_send(struct ev_loop *loop, uint16_t port, const char *method, const char *path,
                 const char *headers, const char *body, bool must_send_all);

/*
 * Read one answer on fd into r (stepping loop, at most 2000 steps), then
 * close fd. Asserts that a whole answer with Content-Length arrived.
 */
void ts_http_recv(struct ev_loop *loop, int fd, struct ts_http_resp *r);

/* ts_http_send then ts_http_recv. */
void ts_http_do(struct ev_loop *loop, uint16_t port, const char *method, const char *path,
                const char *headers, const char *body, bool must_send_all, struct ts_http_resp *r);

/*
 * Assert that r is the gateway's error answer: this status, and a JSON
 * "error" object with this code, the same status and a message.
 */
void ts_http_assert_error(const struct ts_http_resp *r, int status, const char *code);

/* Free what r holds and zero it. */
void ts_http_resp_free(struct ts_http_resp *r);
