/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Result callbacks to business platforms (issue #6, docs/callbacks.md).
 *
 * Durability: the truth is the store's outbox (store_cb_*). When a task
 * becomes final and its params name a "callback_url", the final hook stages
 * an outbox row (task id, URL, the body as it will be sent); it is committed
 * by the next engine commit (our tick flushes it). The hook runs after the
 * commit that made the task final, so a kill -9 between that commit and the
 * next loses the row: at start-up, final tasks updated since shortly before
 * the newest outbox row that have a callback_url and no row get one (an
 * indexed walk, store_cb_unstaged). Delivery is therefore at least once:
 * the receiver deduplicates with X-Otagw-Delivery.
 *
 * Per row, an explicit state machine (enum store_cb_state):
 *   PENDING --2xx--> DONE
 *   PENDING --not 2xx / connect error / timeout--> PENDING (next_at = now + back-off)
 *   PENDING --older than max_age--> ABANDONED (logged)
 * Before a POST starts, next_at is pushed past its timeout plus back-off and
 * attempts counted (staged), so a crash mid-flight retries later instead of
 * at once, and every try is counted.
 *
 * Sending: libwebsockets' HTTP client on the process's libev loop (its own
 * client context). https:// URLs are verified (issue #7, docs/tls.md): the
 * chain against [tls] ca_file or the system store and the URL's host against
 * the certificate, TLS 1.2 minimum, ALPN http/1.1. A server that does not
 * verify is a failed attempt (retried with back-off, the reason logged);
 * the body never leaves. http:// URLs are sent only with plain_http = yes
 * (loopback tests); otherwise such a row (from before a config change) is
 * abandoned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>

#include "gateway/api_util.h"
#include "gateway/callbacks.h"
#include "gateway/gw.h"
#include "gateway/tls.h"

#define CB_ACK_READ_MAX 4096 /* answer body bytes we drain per read */
/* The catch-up starts this long before the newest row: the final commit and
 * the row's creation time are not ordered exactly (commit coalescing, clock). */
#define CB_CATCHUP_MARGIN_MS (10LL * 60 * 1000)

enum cb_req_phase {
    CBR_CONNECTING = 0, /* connect / handshake / body */
    CBR_ANSWERED = 1,   /* status line read */
    CBR_FINISHED = 2,   /* outcome recorded; only freeing left */
};

struct cb_req {
    struct gw_callbacks *cbs;
    struct cb_req *next;
    struct lws *wsi;
    ev_timer timeout;
    enum cb_req_phase phase;
    int status;
    int64_t id, task, created_ms;
    uint32_t attempts; /* including this one */
    char *url_buf;     /* lws_parse_uri cuts it up */
    char *path;        /* "/..." */
    char *body;
    size_t body_len;
    bool body_sent;
    bool dead;         /* finished while lws_client_connect_via_info was still running */
    char tls_why[160]; /* why the server's certificate was refused; lws's own text says nothing */
    char sig[7 + 2 * 32 + 1];
    char ts[24];
    char delivery[24];
};

struct gw_callbacks {
    struct gw *g;
    struct lws_context *ctx;
    SSL_CTX *ssl_ctx; /* the verifying client context lws is given; freed after ctx */
    struct lws_protocols protocols[2];
    ev_timer tick;
    struct cb_req *reqs;
    struct cb_req *connecting; /* inside lws_client_connect_via_info */
    struct gw_callbacks_knobs k;
    struct gw_callbacks_stats st;
};

static int64_t now_ms(void)
{
    return api_now_ms();
}

static struct store *cb_store(struct gw *g)
{
    return eng_store(g->eng);
}

/* Commit what we staged; the engine may be between its own commits. */
static void cb_flush(struct gw_callbacks *c)
{
    if (store_staged(cb_store(c->g)) == 0) {
        return;
    }
    struct ota_err err;
    if (eng_flush(c->g->eng, &err) < 0) {
        gw_log(c->g, GW_CONF_LOG_ERR, "callback outbox commit failed err=\"%s\"", err.msg);
    }
}

static int64_t backoff_ms(const struct gw_callbacks *c, uint32_t attempts)
{
    int64_t d = c->k.backoff_ms ? c->k.backoff_ms : 1;
    for (uint32_t i = 1; i < attempts && d < (int64_t)c->k.backoff_max_ms; i++) {
        d *= 2;
    }
    return d > (int64_t)c->k.backoff_max_ms ? (int64_t)c->k.backoff_max_ms : d;
}

/* ---- body and signature ------------------------------------------------------------------ */

static char *body_of(const struct eng_task_view *t)
{
    json_t *result = NULL;
    if (t->result) {
        result = json_loads(t->result, JSON_DECODE_ANY, NULL);
    }
    json_t *task =
        json_pack("{sI sI ss ss ss ss ss? so sI so}", "id", (json_int_t)t->id, "job",
                  (json_int_t)t->job, "seid", t->seid ? t->seid : "", "op", task_op_name(t->op),
                  "state", task_state_name(t->state), "reason", task_reason_name(t->reason),
                  "reason_text", t->reason_text, "result", result ? result : json_null(),
                  "attempts", (json_int_t)t->attempts, "updated", api_time_json(t->updated_ms));
    if (!task) {
        return NULL;
    }
    json_t *o = json_pack("{so}", "task", task);
    if (!o) {
        return NULL;
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* "sha256=<hex>" of HMAC-SHA256(secret, body); "" when no secret is configured. */
static int sign(const struct gw_conf *conf, const char *body, size_t len, char out[7 + 64 + 1])
{
    out[0] = '\0';
    if (conf->callback_secret_len == 0) {
        return 0;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    if (!HMAC(EVP_sha256(), conf->callback_secret, (int)conf->callback_secret_len,
              (const unsigned char *)body, len, mac, &mlen) ||
        mlen != 32) {
        return -EIO;
    }
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256=", 7);
    for (unsigned i = 0; i < mlen; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[8 + 2 * i] = hex[mac[i] & 15];
    }
    out[7 + 2 * mlen] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

/* ---- outbox staging ---------------------------------------------------------------------- */

/* The task's callback_url (malloc'ed) or NULL when it has none. */
static char *url_of(const char *params)
{
    if (!params) {
        return NULL;
    }
    json_t *p = json_loads(params, 0, NULL);
    const char *u = json_string_value(json_object_get(p, "callback_url"));
    char *r = u ? strdup(u) : NULL;
    json_decref(p);
    return r;
}

static void stage(struct gw_callbacks *c, const struct eng_task_view *t, bool recovered)
{
    char *url = url_of(t->params);
    if (!url) {
        return;
    }
    char *body = body_of(t);
    struct ota_err err;
    int rc = body ? store_cb_put(cb_store(c->g), t->id, url, body, now_ms(), NULL, &err)
                  : ota_fail(&err, -ENOMEM, OTA_ERR_LIMIT, "callback body: out of memory");
    if (rc == 0) {
        c->st.staged++;
        c->st.recovered += recovered;
        /* Commit and send from the loop soon, not from inside the engine's hook. */
        ev_timer_stop(c->g->loop, &c->tick);
        ev_timer_set(&c->tick, 0., c->k.tick_ms / 1000.);
        ev_timer_start(c->g->loop, &c->tick);
    } else if (rc != -EEXIST) {
        /* The start-up catch-up stages it again after the next restart. */
        gw_log(c->g, GW_CONF_LOG_ERR, "callback not staged task=%lld err=\"%s\"", (long long)t->id,
               err.msg);
    }
    free(body);
    free(url);
}

void gw_callbacks_task_final(struct gw *g, const struct eng_task_view *t)
{
    if (g && g->callbacks && t && task_state_final(t->state)) {
        stage(g->callbacks, t, false);
    }
}

static int catchup_one(void *arg, int64_t task)
{
    struct gw_callbacks *c = arg;
    struct eng_task_view v;
    struct ota_err err;
    if (eng_task_get(c->g->eng, task, &v, &err) == 0 && task_state_final(v.state)) {
        stage(c, &v, true);
    }
    return 0;
}

/* ---- sending ------------------------------------------------------------------------------ */

static void req_free(struct cb_req *r)
{
    struct gw_callbacks *c = r->cbs;
    for (struct cb_req **pp = &c->reqs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            c->st.inflight--;
            break;
        }
    }
    ev_timer_stop(c->g->loop, &r->timeout);
    if (r->wsi) {
        /* Detach: later lws callbacks of this connection see no user and are ignored. */
        lws_set_wsi_user(r->wsi, NULL);
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        r->wsi = NULL;
    }
    free(r->url_buf);
    free(r->path);
    free(r->body);
    free(r);
}

/* Record the outcome of one POST (2xx = acknowledged) and free the request. */
static void req_finish(struct cb_req *r, bool acked, const char *why)
{
    struct gw_callbacks *c = r->cbs;
    struct gw *g = c->g;
    struct ota_err err;
    int rc;
    if (acked) {
        c->st.acked++;
        rc = store_cb_set(cb_store(g), r->id, STORE_CB_DONE, r->attempts, 0, &err);
        gw_log(g, GW_CONF_LOG_INFO, "callback acknowledged task=%lld delivery=%lld status=%d",
               (long long)r->task, (long long)r->id, r->status);
    } else {
        c->st.failed++;
        int64_t next = now_ms() + backoff_ms(c, r->attempts);
        rc = store_cb_set(cb_store(g), r->id, STORE_CB_PENDING, r->attempts, next, &err);
        gw_log(g, GW_CONF_LOG_WARNING,
               "callback failed task=%lld delivery=%lld attempts=%u why=\"%s\" retry_in_ms=%lld",
               (long long)r->task, (long long)r->id, r->attempts, why,
               (long long)backoff_ms(c, r->attempts));
    }
    if (rc < 0) {
        gw_log(g, GW_CONF_LOG_ERR, "callback outbox update failed task=%lld err=\"%s\"",
               (long long)r->task, err.msg);
    }
    if (c->connecting == r) {
        /* lws may still write to r's memory on its way out: free it after the call. */
        r->dead = true;
        r->phase = CBR_FINISHED;
        ev_timer_stop(g->loop, &r->timeout);
        return;
    }
    req_free(r);
    cb_flush(c);
}

static void req_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct cb_req *r = (struct cb_req *)((char *)w - offsetof(struct cb_req, timeout));
    req_finish(r, false, "timeout");
}

static int lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct cb_req *r = user;
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION: {
        /* user is the X509_STORE_CTX here, not ours; 0 keeps OpenSSL's verdict. */
        struct cb_req *rq = lws_wsi_user(wsi);
        X509_STORE_CTX *xs = user;
        int e = xs ? X509_STORE_CTX_get_error(xs) : X509_V_OK;
        if (rq && !len && e != X509_V_OK && !rq->tls_why[0]) {
            snprintf(rq->tls_why, sizeof(rq->tls_why),
                     "tls: server certificate refused: %s (depth %d)",
                     X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(xs));
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!r) {
            return -1;
        }
        unsigned char **p = in, *end = *p + len;
        char cl[24];
        snprintf(cl, sizeof(cl), "%zu", r->body_len);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *)"application/json", 16, p, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                         (const unsigned char *)cl, (int)strlen(cl), p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"x-otagw-timestamp:",
                                        (const unsigned char *)r->ts, (int)strlen(r->ts), p, end) ||
            lws_add_http_header_by_name(
                wsi, (const unsigned char *)"x-otagw-delivery:", (const unsigned char *)r->delivery,
                (int)strlen(r->delivery), p, end)) {
            return -1;
        }
        if (r->sig[0] && lws_add_http_header_by_name(
                             wsi, (const unsigned char *)"x-otagw-signature:",
                             (const unsigned char *)r->sig, (int)strlen(r->sig), p, end)) {
            return -1;
        }
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
        if (!r || r->body_sent) {
            return 0;
        }
        unsigned char *buf = malloc(LWS_PRE + r->body_len + 1);
        if (!buf) {
            return -1;
        }
        memcpy(buf + LWS_PRE, r->body, r->body_len);
        int n = lws_write(wsi, buf + LWS_PRE, r->body_len, LWS_WRITE_HTTP_FINAL);
        free(buf);
        if (n < (int)r->body_len) {
            return -1;
        }
        r->body_sent = true;
        lws_client_http_body_pending(wsi, 0);
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (r) {
            r->status = (int)lws_http_client_http_response(wsi);
            r->phase = CBR_ANSWERED;
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + CB_ACK_READ_MAX];
        char *px = buf + LWS_PRE;
        int lenx = CB_ACK_READ_MAX;
        if (lws_http_client_read(wsi, &px, &lenx) < 0) {
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        return 0; /* the answer's body means nothing to us */
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (r && r->phase != CBR_FINISHED) {
            r->phase = CBR_FINISHED;
            r->wsi = wsi;
            req_finish(r, r->status >= 200 && r->status < 300, "status");
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (r && r->phase != CBR_FINISHED) {
            r->phase = CBR_FINISHED;
            r->wsi = NULL; /* lws closes it itself */
            req_finish(r, false,
                       r->tls_why[0] ? r->tls_why
                       : in          ? (const char *)in
                                     : "connect error");
        }
        return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (r && r->phase != CBR_FINISHED) {
            r->phase = CBR_FINISHED;
            r->wsi = NULL; /* closing now */
            req_finish(r, false, "closed before the answer");
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/*
 * Start one POST for row cb. 0, or -EINVAL for a URL we cannot send to or
 * -EPERM for http:// without plain_http (the caller abandons both), other
 * < 0 (retried at the next tick).
 */
static int send_one(struct gw_callbacks *c, const struct store_cb *cb)
{
    struct gw *g = c->g;
    struct cb_req *r = calloc(1, sizeof(*r));
    if (!r) {
        return -ENOMEM;
    }
    r->cbs = c;
    r->id = cb->id;
    r->task = cb->task;
    r->created_ms = cb->created_ms;
    r->attempts = cb->attempts + 1;
    r->url_buf = strdup(cb->url);
    r->body = strdup(cb->body);
    if (!r->url_buf || !r->body) {
        free(r->url_buf);
        free(r->body);
        free(r);
        return -ENOMEM;
    }
    r->body_len = strlen(r->body);
    const char *prot = NULL, *addr = NULL, *path = NULL;
    int port = 0;
    int bad = 0;
    bool tls = false;
    if (lws_parse_uri(r->url_buf, &prot, &addr, &port, &path) || !addr[0]) {
        bad = -EINVAL;
    } else if (strcmp(prot, "https") == 0) {
        tls = true;
    } else if (strcmp(prot, "http") != 0) {
        bad = -EINVAL;
    } else if (!g->conf.plain_http) {
        bad = -EPERM;
    }
    if (bad < 0) {
        free(r->url_buf);
        free(r->body);
        free(r);
        return bad;
    }
    size_t pl = strlen(path);
    r->path = malloc(pl + 2);
    if (!r->path) {
        free(r->url_buf);
        free(r->body);
        free(r);
        return -ENOMEM;
    }
    r->path[0] = '/';
    memcpy(r->path + 1, path, pl + 1);
    if (sign(&g->conf, r->body, r->body_len, r->sig) < 0) {
        free(r->url_buf);
        free(r->path);
        free(r->body);
        free(r);
        return -EIO;
    }
    snprintf(r->ts, sizeof(r->ts), "%lld", (long long)(now_ms() / 1000));
    snprintf(r->delivery, sizeof(r->delivery), "%lld", (long long)r->id);

    /* Counted and pushed back before it leaves: a crash mid-flight retries later. */
    struct ota_err err;
    int64_t later = now_ms() + c->k.timeout_ms + backoff_ms(c, r->attempts);
    int rc = store_cb_set(cb_store(g), r->id, STORE_CB_PENDING, r->attempts, later, &err);
    if (rc < 0) {
        gw_log(g, GW_CONF_LOG_ERR, "callback outbox update failed task=%lld err=\"%s\"",
               (long long)r->task, err.msg);
        free(r->url_buf);
        free(r->path);
        free(r->body);
        free(r);
        return rc;
    }
    r->next = c->reqs;
    c->reqs = r;
    c->st.inflight++;
    c->st.sent++;
    ev_timer_init(&r->timeout, req_timeout_cb, c->k.timeout_ms / 1000., 0.);
    ev_timer_start(g->loop, &r->timeout);

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = c->ctx;
    ci.address = addr;
    ci.port = port;
    ci.path = r->path;
    ci.host = addr;
    ci.origin = addr;
    ci.method = "POST";
    /* No ALLOW_SELFSIGNED / SKIP_SERVER_CERT_HOSTNAME_CHECK: chain and host are verified. */
    ci.ssl_connection = tls ? LCCSCF_USE_SSL : 0;
    ci.alpn = "http/1.1";
    ci.protocol = NULL;
    ci.local_protocol_name = c->protocols[0].name;
    ci.userdata = r;
    r->phase = CBR_CONNECTING;
    c->connecting = r;
    struct lws *wsi = lws_client_connect_via_info(&ci);
    c->connecting = NULL;
    if (r->dead) {
        req_free(r);
        cb_flush(c);
    } else if (wsi && !r->wsi) {
        r->wsi = wsi;
    }
    /* A NULL return without an error callback leaves r to its timeout. */
    return 0;
}

static bool in_flight(const struct gw_callbacks *c, int64_t id)
{
    for (const struct cb_req *r = c->reqs; r; r = r->next) {
        if (r->id == id) {
            return true;
        }
    }
    return false;
}

struct due_list {
    struct store_cb *v;
    size_t n, cap;
};

static int collect_due(void *arg, const struct store_cb *cb)
{
    struct due_list *d = arg;
    if (d->n == d->cap) {
        return -ENOSPC;
    }
    struct store_cb *o = &d->v[d->n];
    *o = *cb;
    o->url = strdup(cb->url);
    o->body = strdup(cb->body);
    if (!o->url || !o->body) {
        store_cb_fini(o);
        return -ENOMEM;
    }
    d->n++;
    return 0;
}

static void abandon(struct gw_callbacks *c, const struct store_cb *cb, const char *why)
{
    struct ota_err err;
    c->st.abandoned++;
    if (store_cb_set(cb_store(c->g), cb->id, STORE_CB_ABANDONED, cb->attempts, 0, &err) < 0) {
        gw_log(c->g, GW_CONF_LOG_ERR, "callback outbox update failed task=%lld err=\"%s\"",
               (long long)cb->task, err.msg);
    }
    gw_log(c->g, GW_CONF_LOG_ERR, "callback abandoned task=%lld delivery=%lld attempts=%u why=%s",
           (long long)cb->task, (long long)cb->id, cb->attempts, why);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct gw_callbacks *c =
        (struct gw_callbacks *)((char *)w - offsetof(struct gw_callbacks, tick));
    cb_flush(c);
    if (c->st.inflight >= c->k.max_inflight) {
        return;
    }
    /* In-flight rows are due again only after their timeout: the extra room skips them. */
    size_t want = c->k.max_inflight - c->st.inflight;
    size_t cap = want + c->st.inflight;
    struct due_list d = {.v = calloc(cap, sizeof(struct store_cb)), .cap = cap};
    if (!d.v) {
        return;
    }
    struct ota_err err;
    int rc = store_cb_due(cb_store(c->g), now_ms(), cap, collect_due, &d, &err);
    if (rc < 0 && rc != -ENOSPC) {
        gw_log(c->g, GW_CONF_LOG_ERR, "callback outbox read failed err=\"%s\"", err.msg);
    }
    int64_t now = now_ms();
    for (size_t i = 0; i < d.n; i++) {
        const struct store_cb *cb = &d.v[i];
        if (in_flight(c, cb->id) || c->st.inflight >= c->k.max_inflight) {
            continue;
        }
        if (now - cb->created_ms > c->k.max_age_ms) {
            abandon(c, cb, "max-age");
            continue;
        }
        int r = send_one(c, cb);
        if (r == -EINVAL) {
            abandon(c, cb, "bad-url");
        } else if (r == -EPERM) {
            abandon(c, cb, "plain-http-not-allowed");
        }
    }
    for (size_t i = 0; i < d.n; i++) {
        store_cb_fini(&d.v[i]);
    }
    free(d.v);
    cb_flush(c);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int gw_callbacks_start(struct gw *g, struct ota_err *err)
{
    struct gw_callbacks *c = calloc(1, sizeof(*c));
    if (!c) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "callbacks: out of memory");
    }
    c->g = g;
    c->k = (struct gw_callbacks_knobs){.tick_ms = 1000,
                                       .backoff_ms = 1000,
                                       .backoff_max_ms = 3600u * 1000u,
                                       .timeout_ms = 10000,
                                       .max_age_ms = 7LL * 24 * 3600 * 1000,
                                       .max_inflight = 16};
    c->protocols[0] = (struct lws_protocols){.name = "otagw-callback", .callback = lws_cb};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    /*
     * Our own SSL_CTX rather than lws's: lws 4.1 would only log a CA file it
     * cannot load, and without one it looks for CAs in "../share".
     */
    int rc = gw_tls_client_ctx_new(g->conf.tls_ca_file, &c->ssl_ctx, err);
    if (rc < 0) {
        free(c);
        return rc;
    }
    void *foreign[1] = {g->loop};
    info.options = LWS_SERVER_OPTION_LIBEV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = foreign;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = c->protocols;
    info.gid = -1;
    info.uid = -1;
    info.provided_client_ssl_ctx = c->ssl_ctx;
    c->ctx = lws_create_context(&info);
    if (!c->ctx) {
        SSL_CTX_free(c->ssl_ctx);
        free(c);
        return ota_fail(err, -EIO, OTA_ERR_STATE, "callbacks: lws client context failed");
    }
    ev_timer_init(&c->tick, tick_cb, 0., c->k.tick_ms / 1000.);
    g->callbacks = c;

    /* Rows lost with a crash between a final commit and the next one. */
    int64_t mark = 0;
    struct store *s = cb_store(g);
    rc = store_cb_watermark(s, &mark, err);
    if (rc == 0) {
        int64_t since = mark > CB_CATCHUP_MARGIN_MS ? mark - CB_CATCHUP_MARGIN_MS : 0;
        rc = store_cb_unstaged(s, since, catchup_one, c, err);
    }
    if (rc < 0) {
        g->callbacks = NULL;
        lws_context_destroy(c->ctx);
        SSL_CTX_free(c->ssl_ctx);
        free(c);
        return rc;
    }
    if (c->st.recovered) {
        gw_log(g, GW_CONF_LOG_WARNING, "callbacks recovered after a crash n=%llu",
               (unsigned long long)c->st.recovered);
    }
    cb_flush(c);
    ev_timer_start(g->loop, &c->tick);
    return 0;
}

void gw_callbacks_stop(struct gw *g)
{
    if (!g || !g->callbacks) {
        return;
    }
    struct gw_callbacks *c = g->callbacks;
    ev_timer_stop(g->loop, &c->tick);
    /* In-flight rows stay pending with next_at already pushed back: resent after restart. */
    while (c->reqs) {
        req_free(c->reqs);
    }
    lws_context_destroy(c->ctx);
    SSL_CTX_free(c->ssl_ctx); /* lws does not free a context it was given */
    g->callbacks = NULL;
    free(c);
}

int gw_callbacks_set_knobs(struct gw *g, const struct gw_callbacks_knobs *k)
{
    if (!g || !g->callbacks || !k || k->tick_ms == 0 || k->max_inflight == 0 ||
        k->timeout_ms == 0) {
        return -EINVAL;
    }
    struct gw_callbacks *c = g->callbacks;
    c->k = *k;
    ev_timer_stop(g->loop, &c->tick);
    ev_timer_set(&c->tick, 0., c->k.tick_ms / 1000.);
    ev_timer_start(g->loop, &c->tick);
    return 0;
}

void gw_callbacks_get_stats(const struct gw *g, struct gw_callbacks_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (g && g->callbacks) {
        *out = g->callbacks->st;
    }
}
