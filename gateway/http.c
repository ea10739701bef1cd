/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP server layer over libwebsockets 4.1 (h1) on a foreign libev loop.
 *
 * lws owns the wire: request line and header parsing, percent-decoding of the
 * path and query, keep-alive, partial writes and discarding the unread rest of
 * a body we refused. This file owns the route table, whole-body buffering,
 * the request object that outlives the lws callback when a handler answers
 * later, and the one JSON error shape.
 *
 * TLS (docs/tls.md): the vhost gets the certificate files, the cipher lists
 * and options of gateway/tls.h and ALPN "http/1.1" only; the protocol floor
 * (TLS 1.2) is set on lws's SSL_CTX from LOAD_EXTRA_SERVER_VERIFY_CERTS. The
 * files are checked with gw_tls_check_pair first so a bad one is named.
 * Without a certificate the listener is plain HTTP, loopback only.
 *
 * Request states (struct http_req.st):
 *   REQ_BODY    -> reading the body; no handler has seen the request yet
 *   REQ_HANDLER -> handed to the handler; waits for its http_respond_*()
 *   REQ_WRITING -> answer given; written from HTTP_WRITEABLE, then freed
 * A connection closing detaches the request: in REQ_HANDLER it is kept
 * (marked gone) because the handler still holds it, in the other states it is
 * freed at once. Every live request is also on the server's list so that
 * http_server_free() can free the ones a handler never answered.
 */
#include "gateway/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "gateway/tls.h"

#define HTTP_WRITE_CHUNK 16384u
#define HTTP_MAX_OUT_HEADERS 32
#define HTTP_MAX_QUERY_ARGS 64

struct http_kv {
    char *name;
    char *value; /* NULL in the header cache = looked up, absent */
};

struct http_route_ent {
    char method[8];
    char *pattern;
    char **segs; /* literal text, or the parameter name when is_param */
    bool *is_param;
    size_t nsegs;
    http_handler h;
    void *arg;
};

enum http_req_state {
    REQ_BODY = 0,
    REQ_HANDLER = 1,
    REQ_WRITING = 2,
};

struct http_req {
    struct http_server *srv;
    struct http_req *prev, *next; /* the server's list of live requests */
    struct lws *wsi;              /* NULL once the connection is gone */
    enum http_req_state st;
    bool gone;
    bool close_after; /* framing we cannot trust: answer, then close */
    http_handler h;   /* copied from the route: the table may grow while we wait for the body */
    void *harg;
    char method[8];
    char *path;
    struct http_kv params[HTTP_MAX_PARAMS];
    size_t nparams;
    struct http_kv *query;
    size_t nquery;
    struct http_kv *hdrs; /* header lookups so far (values copied out of lws) */
    size_t nhdrs;
    struct http_kv out_hdrs[HTTP_MAX_OUT_HEADERS];
    size_t nout;
    uint8_t *body;
    size_t body_len;
    size_t body_expect;
    json_t *json;
    char peer[64];
    void *user; /* http_req_set_user(): e.g. the authenticated principal */
    double t0;  /* monotonic seconds at the request line, for the observer */
    /* the answer */
    int status;
    char *ctype;
    uint8_t *resp; /* body bytes */
    size_t resp_len, resp_off;
    bool hdr_sent;
};

/* lws per-connection data: only the request in progress on that connection. */
struct http_pss {
    struct http_req *req;
};

struct http_server {
    struct ev_loop *loop;
    struct lws_context *ctx;
    struct lws_protocols protocols[2];
    size_t max_body;
    uint16_t port;
    struct http_route_ent *routes;
    size_t nroutes;
    struct http_req *reqs;
    uint8_t *wbuf; /* LWS_PRE + HTTP_WRITE_CHUNK scratch for body writes */
    bool tls;
    /* http_server_observe(): told of every answer (metrics) */
    void (*obs)(void *arg, const char *method, int status, double seconds);
    void *obs_arg;
    /*
     * Given to lws as the vhost's client context so that it creates none of
     * its own (it would load the system CA store and log about a missing
     * "../share" directory for a listener that never connects out). Freed
     * after the lws context.
     */
    SSL_CTX *client_ctx;
};

/* ---- small helpers ---- */

static double http_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *http_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void http_kv_free(struct http_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
}

static void req_free(struct http_req *req)
{
    struct http_server *s = req->srv;
    if (req->prev) {
        req->prev->next = req->next;
    } else if (s->reqs == req) {
        s->reqs = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    }
    free(req->path);
    http_kv_free(req->params, req->nparams);
    http_kv_free(req->query, req->nquery);
    free(req->query);
    http_kv_free(req->hdrs, req->nhdrs);
    free(req->hdrs);
    http_kv_free(req->out_hdrs, req->nout);
    free(req->body);
    json_decref(req->json);
    free(req->ctype);
    free(req->resp);
    free(req);
}

/* ---- answers ---- */

/*
 * Queue the answer; takes ownership of data (malloc'd, may be NULL when len
 * is 0) on every path.
 */
static int req_answer(struct http_req *req, int status, const char *ctype, uint8_t *data,
                      size_t len)
{
    if (req->st == REQ_WRITING) {
        free(data);
        return -EALREADY;
    }
    if (req->gone || !req->wsi) {
        free(data);
        req_free(req);
        return -ENOTCONN;
    }
    char *ct = strdup(ctype ? ctype : "application/octet-stream");
    if (!ct) {
        free(data);
        return -ENOMEM;
    }
    /* A status outside 2xx..5xx is a programming error; never send it. */
    req->status = (status >= 200 && status <= 599) ? status : 500;
    req->ctype = ct;
    req->resp = data;
    req->resp_len = len;
    req->resp_off = 0;
    req->hdr_sent = false;
    req->st = REQ_WRITING;
    lws_callback_on_writable(req->wsi);
    if (req->srv->obs) {
        req->srv->obs(req->srv->obs_arg, req->method, req->status, http_mono_s() - req->t0);
    }
    return 0;
}

static const char http_fallback_500[] =
    "{\"error\":{\"code\":\"internal\",\"message\":\"response could not be encoded\","
    "\"status\":500}}";

int http_respond_json(struct http_req *req, int status, json_t *body)
{
    if (!body) {
        body = json_object();
    }
    char *txt = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!txt) {
        /* Out of memory or an unencodable value: the client still gets an answer. */
        char *fb = strdup(http_fallback_500);
        if (!fb) {
            return -ENOMEM;
        }
        int rc = req_answer(req, 500, "application/json", (uint8_t *)fb, strlen(fb));
        return rc ? rc : -EIO;
    }
    return req_answer(req, status, "application/json", (uint8_t *)txt, strlen(txt));
}

/* The error body; bytes jansson refuses (invalid UTF-8 from client input) become '?'. */
static json_t *http_error_body(int status, const char *code, char *msg)
{
    json_t *m = json_string(msg);
    if (!m) {
        for (char *p = msg; *p; p++) {
            if ((unsigned char)*p >= 0x80) {
                *p = '?';
            }
        }
        m = json_string(msg);
    }
    if (!m) {
        return NULL;
    }
    return json_pack("{s:{s:s,s:o,s:i}}", "error", "code", code ? code : "error", "message", m,
                     "status", status);
}

int http_respond_error(struct http_req *req, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return http_respond_json(req, status, http_error_body(status, code, msg));
}

int http_respond_raw(struct http_req *req, int status, const char *content_type, const void *bytes,
                     size_t len)
{
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) {
            return -ENOMEM;
        }
        memcpy(copy, bytes, len);
    }
    return req_answer(req, status, content_type, copy, len);
}

int http_req_set_header(struct http_req *req, const char *name, const char *value)
{
    if (!name || !value || !*name || req->nout >= HTTP_MAX_OUT_HEADERS) {
        return -EINVAL;
    }
    for (const char *p = name; *p; p++) {
        /* RFC 9110 token characters only. */
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p)) {
            return -EINVAL;
        }
    }
    for (const char *p = value; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            return -EINVAL;
        }
    }
    char *n = strdup(name);
    char *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -ENOMEM;
    }
    req->out_hdrs[req->nout].name = n;
    req->out_hdrs[req->nout].value = v;
    req->nout++;
    return 0;
}

/* ---- accessors ---- */

const char *http_req_method(const struct http_req *req)
{
    return req->method;
}

const char *http_req_path(const struct http_req *req)
{
    return req->path;
}

const char *http_req_param(const struct http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++) {
        if (!strcmp(req->params[i].name, name)) {
            return req->params[i].value;
        }
    }
    return NULL;
}

const char *http_req_query(const struct http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nquery; i++) {
        if (!strcmp(req->query[i].name, name)) {
            return req->query[i].value;
        }
    }
    return NULL;
}

const uint8_t *http_req_body(const struct http_req *req, size_t *len)
{
    if (len) {
        *len = req->body_len;
    }
    return req->body ? req->body : (const uint8_t *)"";
}

const char *http_req_peer(const struct http_req *req)
{
    return req->peer;
}

void http_req_set_user(struct http_req *req, void *user)
{
    req->user = user;
}

void *http_req_user(const struct http_req *req)
{
    return req->user;
}

bool http_req_gone(const struct http_req *req)
{
    return req->gone;
}

/* The lws header token whose name is exactly "<name>:", or -1 (then it is a custom header). */
static int http_known_token(const char *lname, size_t nlen)
{
    for (int t = 0; t < (int)WSI_TOKEN_COUNT; t++) {
        const char *ts = (const char *)lws_token_to_string((enum lws_token_indexes)t);
        if (ts && ts[0] != ':' && strlen(ts) == nlen + 1 && ts[nlen] == ':' &&
            !memcmp(ts, lname, nlen)) {
            return t;
        }
    }
    return -1;
}

const char *http_req_header(struct http_req *req, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < req->nhdrs; i++) {
        if (!strcmp(req->hdrs[i].name, name)) {
            return req->hdrs[i].value;
        }
    }
    /* lws keeps the headers only while the connection lives. */
    if (!req->wsi || nlen == 0 || nlen > 200) {
        return NULL;
    }
    char lname[204];
    for (size_t i = 0; i < nlen; i++) {
        lname[i] = (char)tolower((unsigned char)name[i]);
    }
    lname[nlen] = ':';
    lname[nlen + 1] = '\0';

    char *val = NULL;
    int tok = http_known_token(lname, nlen);
    if (tok >= 0) {
        int n = lws_hdr_total_length(req->wsi, (enum lws_token_indexes)tok);
        if (n > 0 && (val = malloc((size_t)n + 1)) != NULL &&
            lws_hdr_copy(req->wsi, val, n + 1, (enum lws_token_indexes)tok) < 0) {
            free(val);
            val = NULL;
        }
    } else {
        int n = lws_hdr_custom_length(req->wsi, lname, (int)nlen + 1);
        if (n >= 0 && (val = malloc((size_t)n + 1)) != NULL &&
            lws_hdr_custom_copy(req->wsi, val, n + 1, lname, (int)nlen + 1) < 0) {
            free(val);
            val = NULL;
        }
    }
    struct http_kv *nh = realloc(req->hdrs, (req->nhdrs + 1) * sizeof(*nh));
    char *nm = strdup(name);
    if (!nh || !nm) {
        /* Cannot cache: still a correct answer would dangle, so report absent. */
        if (nh) {
            req->hdrs = nh;
        }
        free(nm);
        free(val);
        return NULL;
    }
    req->hdrs = nh;
    req->hdrs[req->nhdrs].name = nm;
    req->hdrs[req->nhdrs].value = val;
    req->nhdrs++;
    return val;
}

/*
 * jansson has no depth flag (its limit is a compile-time 2048), so bound the
 * nesting with a lexical pre-scan: brackets outside strings.
 */
static bool http_json_depth_ok(const uint8_t *p, size_t n, int max)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (in_str) {
            if (esc) {
                esc = false;
            } else if (c == '\\') {
                esc = true;
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max) {
                return false;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

json_t *http_req_json(struct http_req *req, struct ota_err *err)
{
    if (req->json) {
        return req->json;
    }
    if (req->body_len == 0) {
        ota_fail(err, -EINVAL, OTA_ERR_MISSING, "request body is empty; a JSON object is required");
        return NULL;
    }
    if (!http_json_depth_ok(req->body, req->body_len, HTTP_JSON_MAX_DEPTH)) {
        ota_fail(err, -EINVAL, OTA_ERR_VALUE, "JSON nested deeper than %d levels",
                 HTTP_JSON_MAX_DEPTH);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        ota_fail(err, -EINVAL, OTA_ERR_VALUE, "invalid JSON at line %d column %d: %s", je.line,
                 je.column, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        ota_fail(err, -EINVAL, OTA_ERR_VALUE, "the body must be a JSON object");
        return NULL;
    }
    req->json = j;
    return j;
}

/* ---- routes ---- */

static const char *const http_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

/* Split "/a/b/c" into segments; "/" alone is one empty segment. */
static int http_split(const char *path, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (path[0] != '/') {
        return -EINVAL;
    }
    size_t cnt = 1;
    for (const char *p = path + 1; *p; p++) {
        cnt += (*p == '/');
    }
    char **segs = calloc(cnt, sizeof(*segs));
    if (!segs) {
        return -ENOMEM;
    }
    const char *start = path + 1;
    for (size_t i = 0; i < cnt; i++) {
        const char *e = strchr(start, '/');
        size_t l = e ? (size_t)(e - start) : strlen(start);
        segs[i] = http_strndup(start, l);
        if (!segs[i]) {
            for (size_t k = 0; k < i; k++) {
                free(segs[k]);
            }
            free(segs);
            return -ENOMEM;
        }
        start = e ? e + 1 : start + l;
    }
    *out = segs;
    *n = cnt;
    return 0;
}

static void http_segs_free(char **segs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(segs[i]);
    }
    free(segs);
}

int http_route(struct http_server *s, const char *method, const char *pattern, http_handler h,
               void *arg, struct ota_err *err)
{
    if (!s || !method || !pattern || !h) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "http_route: NULL argument");
    }
    bool mok = false;
    for (size_t i = 0; i < OTA_ARRAY_SIZE(http_methods); i++) {
        mok |= !strcmp(method, http_methods[i]);
    }
    if (!mok) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "http_route: unsupported method '%s'", method);
    }
    char **segs;
    size_t nsegs;
    int rc = http_split(pattern, &segs, &nsegs);
    if (rc) {
        return ota_fail(err, rc, OTA_ERR_ARG, "http_route: pattern '%s' must start with '/'",
                        pattern);
    }
    bool *isp = calloc(nsegs, sizeof(*isp));
    if (!isp) {
        http_segs_free(segs, nsegs);
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "http_route: out of memory");
    }
    size_t nparams = 0;
    for (size_t i = 0; i < nsegs; i++) {
        size_t l = strlen(segs[i]);
        bool brace = strchr(segs[i], '{') || strchr(segs[i], '}');
        if (l == 0 && !(nsegs == 1)) {
            rc = -EINVAL;
        } else if (brace) {
            if (l < 3 || segs[i][0] != '{' || segs[i][l - 1] != '}' || strchr(segs[i] + 1, '{') ||
                strchr(segs[i], '}') != segs[i] + l - 1 || ++nparams > HTTP_MAX_PARAMS) {
                rc = -EINVAL;
            } else {
                memmove(segs[i], segs[i] + 1, l - 2);
                segs[i][l - 2] = '\0';
                isp[i] = true;
            }
        }
        if (rc) {
            free(isp);
            http_segs_free(segs, nsegs);
            return ota_fail(err, rc, OTA_ERR_ARG, "http_route: bad pattern '%s'", pattern);
        }
    }
    for (size_t r = 0; r < s->nroutes; r++) {
        if (!strcmp(s->routes[r].method, method) && !strcmp(s->routes[r].pattern, pattern)) {
            free(isp);
            http_segs_free(segs, nsegs);
            return ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE, "http_route: %s %s already routed",
                            method, pattern);
        }
    }
    struct http_route_ent *nr = realloc(s->routes, (s->nroutes + 1) * sizeof(*nr));
    char *pat = strdup(pattern);
    if (!nr || !pat) {
        if (nr) {
            s->routes = nr;
        }
        free(pat);
        free(isp);
        http_segs_free(segs, nsegs);
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "http_route: out of memory");
    }
    s->routes = nr;
    struct http_route_ent *e = &s->routes[s->nroutes++];
    memset(e, 0, sizeof(*e));
    snprintf(e->method, sizeof(e->method), "%s", method);
    e->pattern = pat;
    e->segs = segs;
    e->is_param = isp;
    e->nsegs = nsegs;
    e->h = h;
    e->arg = arg;
    return 0;
}

static bool http_route_match(const struct http_route_ent *r, char **segs, size_t n)
{
    if (r->nsegs != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (r->is_param[i] ? segs[i][0] == '\0' : strcmp(r->segs[i], segs[i]) != 0) {
            return false;
        }
    }
    return true;
}

/*
 * Pick the route for req. Returns 0 (req->h and params set), 404, 405
 * (allow filled), or -ENOMEM.
 */
static int http_dispatch_route(struct http_server *s, struct http_req *req, char *allow,
                               size_t allow_cap)
{
    char **segs;
    size_t n;
    int rc = http_split(req->path, &segs, &n);
    if (rc == -ENOMEM) {
        return rc;
    }
    if (rc) {
        return 404;
    }
    allow[0] = '\0';
    const struct http_route_ent *hit = NULL;
    for (size_t r = 0; r < s->nroutes && !hit; r++) {
        const struct http_route_ent *e = &s->routes[r];
        if (!http_route_match(e, segs, n)) {
            continue;
        }
        if (!strcmp(e->method, req->method)) {
            hit = e;
            break;
        }
        /* The same method may be listed by two patterns matching this path. */
        char m[12];
        snprintf(m, sizeof(m), "%s", e->method);
        bool dup = false;
        for (const char *p = allow; (p = strstr(p, m)) != NULL; p += strlen(m)) {
            size_t ml = strlen(m);
            if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0')) {
                dup = true;
            }
        }
        if (!dup && strlen(allow) + strlen(m) + 3 < allow_cap) {
            if (allow[0]) {
                strcat(allow, ", ");
            }
            strcat(allow, m);
        }
    }
    if (hit) {
        for (size_t i = 0; i < n; i++) {
            if (hit->is_param[i]) {
                req->params[req->nparams].name = strdup(hit->segs[i]);
                req->params[req->nparams].value = strdup(segs[i]);
                req->nparams++;
                if (!req->params[req->nparams - 1].name || !req->params[req->nparams - 1].value) {
                    http_segs_free(segs, n);
                    return -ENOMEM;
                }
            }
        }
        req->h = hit->h;
        req->harg = hit->arg;
    }
    http_segs_free(segs, n);
    return hit ? 0 : (allow[0] ? 405 : 404);
}

/* ---- lws side ---- */

static const struct {
    enum lws_token_indexes tok;
    const char *name;
} http_method_toks[] = {
    {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PUT_URI, "PUT"},       {WSI_TOKEN_PATCH_URI, "PATCH"},
    {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},
};

/* Snapshot the query arguments: lws has already percent-decoded each "name=value" fragment. */
static int http_read_query(struct http_req *req, struct lws *wsi)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (total <= 0) {
        return 0;
    }
    char *buf = malloc((size_t)total + 1);
    req->query = calloc(HTTP_MAX_QUERY_ARGS, sizeof(*req->query));
    if (!buf || !req->query) {
        free(buf);
        return -ENOMEM;
    }
    for (int i = 0; i < HTTP_MAX_QUERY_ARGS; i++) {
        int n = lws_hdr_copy_fragment(wsi, buf, total + 1, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) {
            break;
        }
        if (n == 0) {
            continue;
        }
        char *eq = strchr(buf, '=');
        size_t nl = eq ? (size_t)(eq - buf) : (size_t)n;
        struct http_kv *kv = &req->query[req->nquery];
        kv->name = http_strndup(buf, nl);
        kv->value = strdup(eq ? eq + 1 : "");
        req->nquery++;
        if (!kv->name || !kv->value) {
            free(buf);
            return -ENOMEM;
        }
    }
    free(buf);
    return 0;
}

/* Strict Content-Length: digits only, no sign, no list. -1 when unusable. */
static long long http_parse_clen(const char *v)
{
    if (!*v || strlen(v) > 15) {
        return -1;
    }
    long long x = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        x = x * 10 + (*p - '0');
    }
    return x;
}

static void http_dispatch(struct http_req *req)
{
    req->st = REQ_HANDLER;
    if (!req->body) {
        req->body_len = 0;
    }
    req->h(req, req->harg);
    /* req may already be answered (REQ_WRITING) here; it is freed only after the write. */
}

/* Answer before any handler: the framing checks, 404/405/413. */
static int http_early_error(struct http_req *req, int status, const char *code, bool close,
                            const char *msg)
{
    req->st = REQ_HANDLER; /* the answer path expects a request a handler could hold */
    req->close_after = close;
    if (http_respond_error(req, status, code, "%s", msg)) {
        req->st = REQ_BODY; /* so that the close frees it */
        return -1;
    }
    return 0;
}

static int http_on_request(struct http_server *s, struct lws *wsi, struct http_pss *pss,
                           const char *uri)
{
    struct http_req *req = calloc(1, sizeof(*req));
    if (!req) {
        return -1;
    }
    req->srv = s;
    req->wsi = wsi;
    req->t0 = http_mono_s();
    req->next = s->reqs;
    if (s->reqs) {
        s->reqs->prev = req;
    }
    s->reqs = req;
    pss->req = req;

    for (size_t i = 0; i < OTA_ARRAY_SIZE(http_method_toks); i++) {
        if (lws_hdr_total_length(wsi, http_method_toks[i].tok) > 0) {
            snprintf(req->method, sizeof(req->method), "%s", http_method_toks[i].name);
            break;
        }
    }
    req->path = strdup(uri ? uri : "/");
    lws_get_peer_simple(wsi, req->peer, sizeof(req->peer));
    if (!req->path || http_read_query(req, wsi)) {
        return -1;
    }

    /*
     * Framing first: lws reads a body only by Content-Length, and assumes
     * 100 MiB for a POST/PUT/PATCH without one, so those are refused and the
     * connection closed (we cannot know where the next request starts).
     */
    char clbuf[32];
    long long clen = 0;
    bool has_cl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    bool body_method = !strcmp(req->method, "POST") || !strcmp(req->method, "PUT") ||
                       !strcmp(req->method, "PATCH");
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        return http_early_error(req, 411, "length-required", true,
                                "chunked request bodies are not supported; send Content-Length");
    }
    if (has_cl) {
        if (lws_hdr_copy(wsi, clbuf, sizeof(clbuf), WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0 ||
            (clen = http_parse_clen(clbuf)) < 0) {
            return http_early_error(req, 400, "bad-content-length", true,
                                    "Content-Length is not a decimal number");
        }
    } else if (body_method) {
        return http_early_error(req, 411, "length-required", true,
                                "this method needs a Content-Length header");
    }
    if (!req->method[0]) {
        return http_early_error(req, 405, "method-not-allowed", clen > 0, "method not supported");
    }

    char allow[64];
    int r = http_dispatch_route(s, req, allow, sizeof(allow));
    if (r < 0) {
        return -1;
    }
    /*
     * For the answers below lws discards the unread rest of the body once the
     * transaction completes, so keep-alive survives; a body far beyond the
     * limit is not worth reading, so that connection is closed instead.
     */
    bool huge = (unsigned long long)clen > 16ull * s->max_body;
    /* A client sending HEAD would not expect the error body: close to stay in frame. */
    bool head = !strcmp(req->method, "HEAD");
    char msg[160];
    if (r == 404) {
        snprintf(msg, sizeof(msg), "no such resource: %.120s", req->path);
        return http_early_error(req, 404, "not-found", huge || head, msg);
    }
    if (r == 405) {
        if (http_req_set_header(req, "Allow", allow)) {
            return -1;
        }
        snprintf(msg, sizeof(msg), "%s is not allowed here; allowed: %s", req->method, allow);
        return http_early_error(req, 405, "method-not-allowed", huge || head, msg);
    }
    if ((unsigned long long)clen > s->max_body) {
        snprintf(msg, sizeof(msg), "request body of %lld bytes exceeds the limit of %zu bytes",
                 clen, s->max_body);
        return http_early_error(req, 413, "body-too-large", huge, msg);
    }
    if (clen > 0) {
        req->body = malloc((size_t)clen + 1);
        if (!req->body) {
            return -1;
        }
        req->body_expect = (size_t)clen;
        req->st = REQ_BODY;
        return 0;
    }
    http_dispatch(req);
    return 0;
}

static int http_on_body(struct http_pss *pss, const void *in, size_t len)
{
    struct http_req *req = pss ? pss->req : NULL;
    if (!req || req->st != REQ_BODY) {
        return 0; /* body of a request already answered: lws discards it */
    }
    if (len > req->body_expect - req->body_len) {
        return -1; /* lws delivers at most Content-Length; more means confusion */
    }
    memcpy(req->body + req->body_len, in, len);
    req->body_len += len;
    return 0;
}

static int http_on_body_done(struct http_pss *pss)
{
    struct http_req *req = pss ? pss->req : NULL;
    if (!req || req->st != REQ_BODY) {
        return 0;
    }
    req->body[req->body_len] = '\0';
    http_dispatch(req);
    return 0;
}

static int http_write_headers(struct lws *wsi, struct http_req *req)
{
    size_t cap = 1024;
    for (size_t i = 0; i < req->nout; i++) {
        cap += strlen(req->out_hdrs[i].name) + strlen(req->out_hdrs[i].value) + 8;
    }
    uint8_t *buf = malloc(LWS_PRE + cap);
    if (!buf) {
        return -1;
    }
    uint8_t *start = buf + LWS_PRE, *p = start, *end = start + cap;
    int rc = -1;
    if (lws_add_http_common_headers(wsi, (unsigned)req->status, req->ctype, req->resp_len, &p,
                                    end)) {
        goto out;
    }
    for (size_t i = 0; i < req->nout; i++) {
        char nm[256];
        int nl = snprintf(nm, sizeof(nm), "%s:", req->out_hdrs[i].name);
        if (nl <= 0 || (size_t)nl >= sizeof(nm) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)nm,
                                        (const unsigned char *)req->out_hdrs[i].value,
                                        (int)strlen(req->out_hdrs[i].value), &p, end)) {
            goto out;
        }
    }
    if (req->close_after &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end)) {
        goto out;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end)) {
        goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

static int http_on_writable(struct http_server *s, struct lws *wsi, struct http_pss *pss)
{
    struct http_req *req = pss ? pss->req : NULL;
    if (!req || req->st != REQ_WRITING) {
        return 0;
    }
    if (!req->hdr_sent) {
        if (http_write_headers(wsi, req)) {
            return -1;
        }
        req->hdr_sent = true;
        if (req->resp_len) {
            /* lws wants one write per writable callback. */
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else {
        size_t chunk = req->resp_len - req->resp_off;
        if (chunk > HTTP_WRITE_CHUNK) {
            chunk = HTTP_WRITE_CHUNK;
        }
        bool final = req->resp_off + chunk == req->resp_len;
        /* lws may use LWS_PRE bytes in front of what it writes: copy into headroom. */
        memcpy(s->wbuf + LWS_PRE, req->resp + req->resp_off, chunk);
        int n =
            lws_write(wsi, s->wbuf + LWS_PRE, chunk, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
        if (n < (int)chunk) {
            return -1;
        }
        req->resp_off += chunk;
        if (!final) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    bool close = req->close_after;
    pss->req = NULL;
    req_free(req);
    if (close || lws_http_transaction_completed(wsi)) {
        return -1;
    }
    return 0;
}

/* The connection is going away: forget it, but keep a request its handler still holds. */
static void http_detach(struct http_pss *pss)
{
    if (!pss || !pss->req) {
        return;
    }
    struct http_req *req = pss->req;
    pss->req = NULL;
    req->wsi = NULL;
    if (req->st == REQ_HANDLER) {
        req->gone = true;
    } else {
        req_free(req);
    }
}

static int http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    struct http_server *s = ctx ? lws_context_user(ctx) : NULL;
    struct http_pss *pss = user;

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        /* user is the vhost's SSL_CTX: lws sets options but no protocol floor. */
        return gw_tls_harden_ctx(user) < 0 ? -1 : 0;
    case LWS_CALLBACK_HTTP:
        if (!s || !pss) {
            return -1;
        }
        http_detach(pss); /* a request never completed on this connection */
        return http_on_request(s, wsi, pss, in);
    case LWS_CALLBACK_HTTP_BODY:
        return http_on_body(pss, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return http_on_body_done(pss);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return s ? http_on_writable(s, wsi, pss) : -1;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        http_detach(pss);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- server ---- */

/*
 * Try the bind ourselves first: lws 4.1 leaks part of a context it fails to
 * create, and cannot say why it failed. A wildcard or ephemeral port cannot
 * be taken, so only a fixed port is probed.
 */
static int http_probe_bind(bool v4, const struct in_addr *a4, const struct in6_addr *a6,
                           uint16_t port)
{
    if (port == 0) {
        return 0;
    }
    int fd = socket(v4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc;
    if (v4) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = *a4};
        rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    } else {
        struct sockaddr_in6 sa = {
            .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = *a6};
        rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    }
    rc = rc ? -errno : 0;
    close(fd);
    return rc;
}

int http_server_new(struct ev_loop *loop, const struct http_conf *c, struct http_server **out,
                    struct ota_err *err)
{
    *out = NULL;
    if (!loop || !c) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "http_server_new: NULL argument");
    }
    const char *addr = c->bind_addr ? c->bind_addr : "127.0.0.1";
    struct in_addr a4;
    struct in6_addr a6;
    bool v4 = inet_pton(AF_INET, addr, &a4) == 1;
    if (!v4 && inet_pton(AF_INET6, addr, &a6) != 1) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "http: bind address '%s' is not a numeric IPv4/IPv6 address", addr);
    }
    unsigned max_header = c->max_header ? c->max_header : HTTP_DEFAULT_MAX_HEADER;
    if (max_header < 512 || max_header > 65535) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "http: max_header %u outside 512..65535",
                        max_header);
    }
    unsigned max_conns = c->max_conns ? c->max_conns : HTTP_DEFAULT_MAX_CONNS;
    if (max_conns > 65535) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "http: max_conns %u above 65535", max_conns);
    }
    unsigned idle = c->idle_timeout_s ? c->idle_timeout_s : HTTP_DEFAULT_IDLE_S;
    bool tls = c->tls_cert || c->tls_key;
    if (!tls && !gw_tls_is_loopback(addr)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "http: plain HTTP on %s refused: only a loopback address may go without "
                        "TLS (give a certificate and key)",
                        addr);
    }
    if (tls) {
        /* Checked here so that the message names the file; lws would only fail. */
        int trc = gw_tls_check_pair(c->tls_cert, c->tls_key, NULL, err);
        if (trc < 0) {
            return trc;
        }
    }

    int prc = http_probe_bind(v4, &a4, &a6, c->port);
    if (prc) {
        return ota_fail(err, prc, OTA_ERR_STATE, "http: cannot bind %s port %u: %s", addr,
                        (unsigned)c->port, strerror(-prc));
    }

    struct http_server *s = calloc(1, sizeof(*s));
    if (!s || !(s->wbuf = malloc(LWS_PRE + HTTP_WRITE_CHUNK))) {
        free(s);
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "http: out of memory");
    }
    s->loop = loop;
    s->tls = tls;
    s->max_body = c->max_body ? c->max_body : HTTP_DEFAULT_MAX_BODY;
    if (tls && !(s->client_ctx = SSL_CTX_new(TLS_client_method()))) {
        free(s->wbuf);
        free(s);
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "http: out of memory (TLS context)");
    }
    s->protocols[0].name = "http";
    s->protocols[0].callback = http_cb;
    s->protocols[0].per_session_data_size = sizeof(struct http_pss);

    lws_set_log_level(c->lws_log_levels ? c->lws_log_levels : (LLL_ERR | LLL_WARN), NULL);

    void *foreign[1] = {loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_LIBEV;
    info.foreign_loops = foreign;
    info.port = c->port;
    /* lws binds "any" when iface is NULL; a wildcard given as text is not an interface. */
    bool any = v4 ? a4.s_addr == htonl(INADDR_ANY) : IN6_IS_ADDR_UNSPECIFIED(&a6);
    info.iface = any ? NULL : addr;
    if (v4) {
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    info.protocols = s->protocols;
    info.user = s;
    info.max_http_header_data = (unsigned short)max_header;
    info.max_http_header_pool = (unsigned short)max_conns;
    info.keepalive_timeout = (int)idle;
    info.timeout_secs = idle;
    info.timeout_secs_ah_idle = idle;
    info.server_string = c->server_name ? c->server_name : "otagw";
    info.gid = -1;
    info.uid = -1;
    if (tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = c->tls_cert;
        info.ssl_private_key_filepath = c->tls_key;
        info.ssl_cipher_list = GW_TLS_CIPHERS_TLS12;
        info.tls1_3_plus_cipher_list = GW_TLS_CIPHERS_TLS13;
        info.ssl_options_set = (long)GW_TLS_SSL_OPTIONS;
        info.ssl_options_clear = (long)SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION;
        /* h2 is never offered: lws hides custom headers (Authorization, Idempotency-Key) there. */
        info.alpn = "http/1.1";
        info.provided_client_ssl_ctx = s->client_ctx;
    }

    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        SSL_CTX_free(s->client_ctx);
        free(s->wbuf);
        free(s);
        return ota_fail(err, -EIO, OTA_ERR_STATE,
                        "http: cannot listen on %s port %u (address in use or not local?)", addr,
                        (unsigned)c->port);
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(s->ctx, "default");
    int port = vh ? lws_get_vhost_listen_port(vh) : -1;
    if (port <= 0 || port > 65535) {
        http_server_free(s);
        return ota_fail(err, -EIO, OTA_ERR_STATE, "http: no listening port after start");
    }
    s->port = (uint16_t)port;
    *out = s;
    return 0;
}

void http_server_observe(struct http_server *s,
                         void (*cb)(void *arg, const char *method, int status, double seconds),
                         void *arg)
{
    if (s) {
        s->obs = cb;
        s->obs_arg = arg;
    }
}

uint16_t http_server_port(const struct http_server *s)
{
    return s->port;
}

bool http_server_tls(const struct http_server *s)
{
    return s->tls;
}

void http_server_free(struct http_server *s)
{
    if (!s) {
        return;
    }
    if (s->ctx) {
        lws_context_destroy(s->ctx);
        s->ctx = NULL;
    }
    SSL_CTX_free(s->client_ctx); /* after the context: lws does not free one it was given */
    while (s->reqs) {
        req_free(s->reqs);
    }
    for (size_t r = 0; r < s->nroutes; r++) {
        free(s->routes[r].pattern);
        http_segs_free(s->routes[r].segs, s->routes[r].nsegs);
        free(s->routes[r].is_param);
    }
    free(s->routes);
    free(s->wbuf);
    free(s);
}
