/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP server layer every API route sits on: libwebsockets (h1) on the
 * one libev loop of the process, a small route table with {name} path
 * parameters, whole-body requests, JSON in and out through jansson, and
 * answers that may come later than the handler call (docs/http.md).
 *
 * Lifecycle of a request:
 *   1. lws parses the request line and headers (malformed ones never reach
 *      us). The route is chosen; no route -> 404, wrong method -> 405 with
 *      Allow; a body over max_body -> 413. None of these reach a handler.
 *   2. The whole body is read, then the handler is called once.
 *   3. The handler answers with one http_respond_*() call, at once or later
 *      from any callback on the same loop. Until then the request is valid.
 *      After that call the request belongs to the server again: do not touch
 *      it (it is freed once written).
 *   4. If the client goes away before the answer, http_req_gone() turns true
 *      and the answer, when it comes, is dropped: http_respond_*() then
 *      returns -ENOTCONN and frees the request.
 *
 * One request at a time per connection; HTTP/1.1 keep-alive works across
 * requests. Everything caused by the client is a 4xx, never a 500.
 *
 * Threading: everything runs on the loop's thread; nothing here is
 * thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <jansson.h>

#include "ota/ota_common.h"

#define HTTP_DEFAULT_MAX_BODY (1024u * 1024u)
#define HTTP_DEFAULT_MAX_HEADER 8192u
#define HTTP_DEFAULT_IDLE_S 30u
#define HTTP_DEFAULT_MAX_CONNS 256u
#define HTTP_JSON_MAX_DEPTH 32 /* nesting of arrays/objects http_req_json() accepts */
#define HTTP_MAX_PARAMS 8      /* {name} segments per pattern */

/* Server settings. Zero / NULL fields take the defaults named beside them. */
struct http_conf {
    const char *bind_addr;   /* numeric IPv4 or IPv6 address; NULL = "127.0.0.1" */
    uint16_t port;           /* 0 = ephemeral, see http_server_port() */
    size_t max_body;         /* request body bytes; 0 = HTTP_DEFAULT_MAX_BODY */
    unsigned max_header;     /* bytes of request line + headers (<= 65535); 0 = 8 KiB */
    unsigned idle_timeout_s; /* keep-alive idle and header read timeout; 0 = 30 s */
    const char *server_name; /* Server: header; NULL = "otagw" */
    unsigned max_conns;      /* connections parsing headers at once; 0 = 256 */
    int lws_log_levels;      /* lws LLL_* mask (process-global!); 0 = errors + warnings */
    /*
     * TLS (docs/tls.md): with tls_cert and tls_key set the listener speaks
     * only TLS 1.2/1.3 (gateway/tls.h floor, ALPN http/1.1 only: h2 would
     * hide custom request headers from the handlers). Both NULL = plain
     * HTTP, which is refused unless bind_addr is a loopback address.
     */
    const char *tls_cert; /* PEM certificate (chain) file */
    const char *tls_key;  /* PEM private key file, unencrypted */
};

struct http_server;
struct http_req;

/*
 * A route handler. Called once per request, with the whole body read. It
 * must answer (now or later) with exactly one http_respond_*() call.
 */
typedef void (*http_handler)(struct http_req *req, void *arg);

/*
 * Create a server listening on c->bind_addr:c->port, serviced by loop (which
 * the caller runs). Fails with -EINVAL (bad settings; plain HTTP on a
 * non-loopback address; an unreadable, non-PEM, expired or mismatched
 * certificate or key, err naming the file), -EADDRINUSE /
 * -EADDRNOTAVAIL / -EACCES (the address or port cannot be bound; err names
 * them), or -EIO (lws refused to start for another reason).
 */
int http_server_new(struct ev_loop *loop, const struct http_conf *c, struct http_server **out,
                    struct ota_err *err) OTA_MUST_CHECK;

/*
 * Close every connection and free the server, including requests still
 * waiting for an answer: any struct http_req * a handler kept is invalid
 * afterwards. NULL is allowed.
 */
void http_server_free(struct http_server *s);

/*
 * Be told of every answer as it is queued (metrics): the method, the status
 * sent and the seconds from the request line to the answer (404/405/413
 * included). One observer; NULL cb removes it. cb must not answer requests.
 */
void http_server_observe(struct http_server *s,
                         void (*cb)(void *arg, const char *method, int status, double seconds),
                         void *arg);

/* The port the server listens on (the bound one when the conf said 0). */
uint16_t http_server_port(const struct http_server *s);

/* True when the server speaks TLS (a certificate was given). */
bool http_server_tls(const struct http_server *s);

/*
 * Add a route. method: "GET", "POST", "PUT", "PATCH", "DELETE" (upper
 * case). pattern: "/v1/tasks", "/v1/tasks/{id}", "/v1/ses/{seid}/tasks";
 * "{name}" is a whole segment and matches one non-empty path segment. The
 * first matching route wins. -EINVAL for a bad method or pattern, -EEXIST
 * for the same method + pattern twice.
 */
int http_route(struct http_server *s, const char *method, const char *pattern, http_handler h,
               void *arg, struct ota_err *err) OTA_MUST_CHECK;

/* ---- request accessors (valid until the request is answered) ---- */

const char *http_req_method(const struct http_req *req); /* "GET", "POST", ... */
const char *http_req_path(const struct http_req *req);   /* percent-decoded, no query */

/* The path parameter {name} of the matched pattern, percent-decoded; NULL if none. */
const char *http_req_param(const struct http_req *req, const char *name);

/* The query argument name, decoded ("+" is a space); "" for "?name"; NULL when absent. */
const char *http_req_query(const struct http_req *req, const char *name);

/*
 * A request header by its name, case-insensitive ("idempotency-key",
 * "authorization", "content-type", ...); NULL when absent. Read headers
 * before the client may have gone: a header not read before that is NULL.
 * The string lives as long as the request.
 */
const char *http_req_header(struct http_req *req, const char *name);

/* The body (NUL-terminated for convenience; *len excludes the NUL). */
const uint8_t *http_req_body(const struct http_req *req, size_t *len);

/*
 * The body parsed strictly as one JSON object: duplicate keys, trailing
 * data, NUL characters, nesting deeper than HTTP_JSON_MAX_DEPTH and
 * non-objects are refused. Returns a borrowed reference kept with the
 * request (same object on every call), or NULL with err filled (-EINVAL,
 * OTA_ERR_VALUE): the caller answers 400 with err->msg.
 */
json_t *http_req_json(struct http_req *req, struct ota_err *err);

/* The client's address as text ("127.0.0.1", "::1"). */
const char *http_req_peer(const struct http_req *req);

/*
 * One pointer the layers above keep with a request (the auth wrapper puts the
 * authenticated principal there before the route's handler runs). Not owned
 * by the server: whoever sets it keeps it alive until the request is answered.
 */
void http_req_set_user(struct http_req *req, void *user);
void *http_req_user(const struct http_req *req);

/* True once the client has closed the connection; the answer will be dropped. */
bool http_req_gone(const struct http_req *req);

/*
 * Add a response header (name without ':', e.g. "Location") to the answer
 * given later. Copied. -EINVAL for a name or value with CR/LF/':' trouble.
 */
int http_req_set_header(struct http_req *req, const char *name, const char *value);

/* ---- answers: exactly one per request; the request is not yours afterwards ---- */

/*
 * Answer with body serialised compactly by jansson (Content-Type
 * application/json). Steals body (NULL sends an empty object). Returns:
 *   0          queued; the request is no longer yours;
 *   -ENOTCONN  the client is gone; the request has been freed;
 *   -EIO       body could not be encoded; a 500 error was sent instead;
 *   -ENOMEM    nothing was sent; the request is still yours (try again or
 *              answer with something smaller);
 *   -EALREADY  the request was already answered (and may already be freed:
 *              do not rely on this).
 * The same codes apply to http_respond_error() and http_respond_raw().
 */
int http_respond_json(struct http_req *req, int status, json_t *body);

/*
 * Answer with the one error shape:
 * {"error":{"code":"<code>","message":"<printf text>","status":<status>}}.
 */
int http_respond_error(struct http_req *req, int status, const char *code, const char *fmt, ...)
    OTA_PRINTF(4, 5);

/* Answer with len raw bytes (copied) of content_type. */
int http_respond_raw(struct http_req *req, int status, const char *content_type, const void *bytes,
                     size_t len);
