/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The operations dashboard (DESIGN 1 "ops staff", docs/dashboard.md): one
 * static page with its script and style (gateway/dashboard/, turned into
 * byte arrays at build time by CMakeLists.txt like the OpenAPI document)
 * and its one data call, GET /v1/dashboard/state, a JSON digest of the
 * metrics snapshot (gateway/metrics.h) with rates, quantiles, ranked
 * failure reasons and the open jobs' progress already worked out.
 *
 * The page, script and style are public: they hold no data. Everything the
 * page shows comes from calls carrying the operator's token, which the
 * script keeps in sessionStorage (gone with the tab). The page loads no
 * script or style inline or from elsewhere, and says so in its
 * Content-Security-Policy, so an injected string cannot run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api_util.h"
#include "gateway/auth.h"
#include "gateway/metrics.h"

/* gen/dashboard_assets.c (CMakeLists.txt), NUL-terminated; the lengths exclude the NUL. */
extern const unsigned char gw_dashboard_index_html[];
extern const size_t gw_dashboard_index_html_len;
extern const unsigned char gw_dashboard_dashboard_js[];
extern const size_t gw_dashboard_dashboard_js_len;
extern const unsigned char gw_dashboard_dashboard_css[];
extern const size_t gw_dashboard_dashboard_css_len;

#define DASH_JOBS_MAX 50
#define DASH_CSP                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src "        \
    "'self'; "                                                                                     \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static void security_headers(struct http_req *req)
{
    (void)http_req_set_header(req, "Content-Security-Policy", DASH_CSP);
    (void)http_req_set_header(req, "X-Content-Type-Options", "nosniff");
    (void)http_req_set_header(req, "X-Frame-Options", "DENY");
    (void)http_req_set_header(req, "Referrer-Policy", "no-referrer");
    (void)http_req_set_header(req, "Cache-Control", "no-cache");
}

static void h_page(struct http_req *req, void *arg)
{
    (void)arg;
    security_headers(req);
    (void)http_respond_raw(req, 200, "text/html; charset=utf-8", gw_dashboard_index_html,
                           gw_dashboard_index_html_len);
}

static void h_js(struct http_req *req, void *arg)
{
    (void)arg;
    security_headers(req);
    (void)http_respond_raw(req, 200, "text/javascript; charset=utf-8", gw_dashboard_dashboard_js,
                           gw_dashboard_dashboard_js_len);
}

static void h_css(struct http_req *req, void *arg)
{
    (void)arg;
    security_headers(req);
    (void)http_respond_raw(req, 200, "text/css; charset=utf-8", gw_dashboard_dashboard_css,
                           gw_dashboard_dashboard_css_len);
}

/* ---- GET /v1/dashboard/state ------------------------------------------------------------ */

static const char *const job_state_names[] = {"running", "paused", "cancelled", "done"};

struct jobs_ctx {
    int64_t ids[DASH_JOBS_MAX];
    enum task_op ops[DASH_JOBS_MAX];
    size_t n;
};

/* Ids first, progress after the walk: the progress query must not run inside the store's walk. */
static int job_one(void *arg, const struct store_job *j)
{
    struct jobs_ctx *c = arg;
    if (c->n >= DASH_JOBS_MAX) {
        return -ECANCELED; /* enough for one screen */
    }
    c->ids[c->n] = j->id;
    c->ops[c->n] = j->op;
    c->n++;
    return 0;
}

static json_t *jobs_json(struct gw *g)
{
    json_t *arr = json_array();
    struct jobs_ctx c = {.n = 0};
    struct ota_err err;
    int rc = store_jobs_open(eng_store(g->eng), job_one, &c, &err);
    if (!arr || (rc < 0 && rc != -ECANCELED)) {
        return arr; /* the rest of the digest is still worth showing */
    }
    for (size_t i = 0; i < c.n; i++) {
        struct eng_job_progress pr;
        if (eng_job_progress(g->eng, c.ids[i], &pr, &err) < 0) {
            continue;
        }
        json_t *counts = json_object();
        uint64_t final = 0;
        for (int s = 0; s < TASK_STATE__COUNT; s++) {
            json_object_set_new(counts, task_state_name((enum task_state)s),
                                json_integer((json_int_t)pr.counts[s]));
            if (s >= TASK_DONE) {
                final += pr.counts[s];
            }
        }
        json_t *o = json_pack(
            "{s:I, s:s, s:s, s:I, s:b, s:I, s:o, s:f}", "id", (json_int_t)c.ids[i], "state",
            ota_enum_name(job_state_names, 4, pr.state), "op", task_op_name(c.ops[i]), "total",
            (json_int_t)pr.total, "expanded", pr.expanded, "final", (json_int_t) final, "counts",
            counts, "progress", pr.total ? (double) final / (double)pr.total : 0.0);
        if (o) {
            json_array_append_new(arr, o);
        }
    }
    return arr;
}

static json_t *hist_json(const struct gw_metrics_hist *h)
{
    return json_pack("{s:I, s:f, s:f, s:f}", "count", (json_int_t)h->total, "p50_s",
                     gw_metrics_quantile(h, 0.5), "p99_s", gw_metrics_quantile(h, 0.99), "mean_s",
                     h->total ? h->sum_s / (double)h->total : 0.0);
}

struct ranked {
    int reason;
    uint64_t n;
};

static int by_count_desc(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->n != y->n) {
        return x->n < y->n ? 1 : -1;
    }
    return x->reason - y->reason;
}

/* The digest the page polls; NULL when out of memory. */
static json_t *state_json(struct gw *g, const struct gw_metrics_snap *s)
{
    const struct eng_stats *e = &s->c.eng;
    json_t *tasks = json_object();
    for (int i = 0; i < TASK_STATE__COUNT; i++) {
        json_object_set_new(tasks, task_state_name((enum task_state)i),
                            json_integer((json_int_t)s->c.states[i]));
    }
    struct ranked r[TASK_REASON__COUNT];
    size_t nr = 0;
    for (int i = 1; i < TASK_REASON__COUNT; i++) {
        if (s->c.reasons[i]) {
            r[nr++] = (struct ranked){i, s->c.reasons[i]};
        }
    }
    qsort(r, nr, sizeof(r[0]), by_count_desc);
    json_t *reasons = json_array();
    for (size_t i = 0; i < nr; i++) {
        json_array_append_new(reasons, json_pack("{s:s, s:I}", "reason",
                                                 task_reason_name((enum task_reason)r[i].reason),
                                                 "count", (json_int_t)r[i].n));
    }
    json_t *links = json_array();
    for (size_t i = 0; i < s->n_links; i++) {
        const struct bearer_link_stats *st = &s->links[i].st;
        json_array_append_new(
            links, json_pack("{s:s, s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "name",
                             s->links[i].name ? s->links[i].name : "", "state",
                             bearer_link_state_name(st->state), "up",
                             st->state == BEARER_LINK_UP || st->state == BEARER_LINK_THROTTLED,
                             "throttled", st->state == BEARER_LINK_THROTTLED, "in_flight",
                             (json_int_t)st->in_flight, "held", (json_int_t)st->held, "submitted",
                             (json_int_t)st->submitted, "mos", (json_int_t)st->mos, "dlrs",
                             (json_int_t)st->dlrs, "reconnects", (json_int_t)st->reconnects));
    }
    double now_s = (double)api_now_ms() / 1000.0;
    json_t *o = json_pack(
        "{s:I, s:{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:o,"
        " s:{s:f, s:f, s:f, s:i}, s:{s:I, s:I, s:I}, s:{s:o, s:o}, s:{s:b, s:I, s:i},"
        " s:I, s:{s:I, s:f, s:f}, s:o}",
        "time_ms", (json_int_t)api_now_ms(), "engine", "running", e->run == ENG_RUNNING, "queued",
        (json_int_t)e->queued, "active", (json_int_t)e->active, "waiting_bearer",
        (json_int_t)e->waiting_bearer, "accepted", (json_int_t)e->accepted, "done",
        (json_int_t)e->done, "failed", (json_int_t)e->failed, "expired", (json_int_t)e->expired,
        "cancelled", (json_int_t)e->cancelled, "retries", (json_int_t)e->retries, "tasks", tasks,
        "reasons", reasons, "links", links, "rates", "mt", s->mt_rate, "mo", s->mo_rate, "dlr",
        s->dlr_rate, "window_s", GW_METRICS_RATE_WINDOW_S, "totals", "mt", (json_int_t)s->mt_total,
        "mo", (json_int_t)s->mo_total, "dlr", (json_int_t)s->dlr_total, "latency", "task",
        hist_json(&s->task_latency), "http", hist_json(&s->http_latency), "callbacks", "enabled",
        s->callbacks_on, "pending", (json_int_t)s->cb_pending, "inflight", (int)s->cb.inflight,
        "wallet_sessions", (json_int_t)s->wallet_sessions, "process", "rss_bytes",
        (json_int_t)s->rss_bytes, "cpu_s", s->cpu_s, "uptime_s",
        s->start_time_s > 0 ? now_s - s->start_time_s : 0.0, "jobs", jobs_json(g));
    return o;
}

static void h_state(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct gw_metrics_snap s;
    struct ota_err err;
    int rc = gw_metrics_snapshot(g, &s, &err);
    if (rc < 0) {
        gw_respond_err(req, rc, "internal", &err);
        return;
    }
    json_t *o = state_json(g, &s);
    if (!o) {
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    (void)http_req_set_header(req, "Cache-Control", "no-store");
    (void)http_respond_json(req, 200, o);
}

static const struct {
    struct gw_metrics_route r;
    http_handler h;
} dash_routes[] = {
    {{"GET", "/dashboard", GW_ROLES_PUBLIC}, h_page},
    {{"GET", "/dashboard.js", GW_ROLES_PUBLIC}, h_js},
    {{"GET", "/dashboard.css", GW_ROLES_PUBLIC}, h_css},
    {{"GET", "/v1/dashboard/state", GW_ROLES_STAFF}, h_state},
};

const struct gw_metrics_route *gw_dashboard_route_list(size_t *n)
{
    static struct gw_metrics_route list[OTA_ARRAY_SIZE(dash_routes)];
    for (size_t i = 0; i < OTA_ARRAY_SIZE(dash_routes); i++) {
        list[i] = dash_routes[i].r;
    }
    *n = OTA_ARRAY_SIZE(dash_routes);
    return list;
}

int gw_dashboard_routes(struct gw *g, struct ota_err *err)
{
    for (size_t i = 0; i < OTA_ARRAY_SIZE(dash_routes); i++) {
        const struct gw_metrics_route *r = &dash_routes[i].r;
        int rc = gw_route(g, r->method, r->pattern, r->roles, dash_routes[i].h, g, err);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}
