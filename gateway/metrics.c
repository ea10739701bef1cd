/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Operations metrics (gateway/metrics.h): the snapshot, the histograms fed
 * by the engine's final hook and the HTTP server's observer, the rate
 * samples, and GET /metrics in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): "# HELP"
 * and "# TYPE" per family, then "name{label="value"} number" lines, label
 * values escaped (\\, \", \n). Text, not JSON: built with a small growing
 * buffer. Every family is written even when zero, so that dashboards and
 * alerts see a series from the first scrape.
 */
#include "gateway/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gateway/audit.h"
#include "gateway/auth.h"

#define RING (GW_METRICS_RATE_WINDOW_S / GW_METRICS_SAMPLE_S + 1)
/*
 * The store's per-state and per-reason counts scan the task table: at ten
 * million tasks a scan takes about a second of the loop. Reused while the
 * store has not changed (same commit count and staged writes), and while it
 * has, for COUNTS_COST_FACTOR times what the last scan cost (at most
 * COUNTS_MAX_AGE_S): a dashboard polling every 2 s then costs the loop at
 * most 1/COUNTS_COST_FACTOR of its time. A fast scan is always fresh.
 */
#define COUNTS_COST_FACTOR 20.0
#define COUNTS_MAX_AGE_S 60.0
#define COUNTS_FAST_S 0.01
#define PROM_CTYPE "text/plain; version=0.0.4; charset=utf-8"

/* accept -> final: seconds (a DLR wait is minutes, a wallet pull up to 10 min by default) */
static const double task_bounds[GW_METRICS_TASK_BUCKETS] = {0.1, 0.25, 0.5, 1,   2.5, 5,    10,
                                                            30,  60,   120, 300, 600, 1800, 3600};
/* request line -> answer: an answer waits for a commit (ms) */
static const double http_bounds[GW_METRICS_HTTP_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1,   0.25,   0.5,   1,    2.5,   5};

struct sample {
    double t; /* ev_now */
    uint64_t mt, mo, dlr;
};

struct gw_metrics {
    struct gw *g;
    ev_timer tick;
    struct sample ring[RING];
    size_t next, n; /* ring write position, samples held */
    struct gw_metrics_hist task, http;
    uint64_t http_by_class[6];
    double start_time_s;
    /* the cache of the store's counts (see COUNTS_COST_FACTOR) */
    bool have_counts;
    uint64_t counts_commits;
    size_t counts_staged;
    double counts_at, counts_cost_s; /* monotonic seconds */
    uint64_t states[TASK_STATE__COUNT], reasons[TASK_REASON__COUNT];
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hist_init(struct gw_metrics_hist *h, const double *bounds, size_t n)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->n = n;
}

static void hist_add(struct gw_metrics_hist *h, double v)
{
    size_t i = 0;
    while (i < h->n && v > h->bounds[i]) {
        i++;
    }
    h->counts[i]++;
    h->total++;
    h->sum_s += v;
}

double gw_metrics_quantile(const struct gw_metrics_hist *h, double q)
{
    if (!h || h->total == 0) {
        return 0;
    }
    double rank = q * (double)h->total;
    uint64_t below = 0;
    for (size_t i = 0; i <= h->n; i++) {
        if (h->counts[i] && (double)(below + h->counts[i]) >= rank) {
            double lo = i == 0 ? 0 : h->bounds[i - 1];
            if (i == h->n) {
                return lo; /* beyond the last bound: all we can say is "above it" */
            }
            double frac = (rank - (double)below) / (double)h->counts[i];
            return lo + (h->bounds[i] - lo) * (frac < 0 ? 0 : frac);
        }
        below += h->counts[i];
    }
    return h->n ? h->bounds[h->n - 1] : 0;
}

/* ---- counters ---------------------------------------------------------------------- */

int gw_metrics_counts(struct gw *g, struct gw_metrics_counts *out, struct ota_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!g || !g->eng) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "metrics: no engine");
    }
    eng_stats(g->eng, &out->eng);
    struct store *st = eng_store(g->eng);
    struct gw_metrics *m = g->metrics;
    double now = mono_s();
    size_t staged = store_staged(st);
    if (m && m->have_counts) {
        bool same = m->counts_commits == out->eng.commits && m->counts_staged == staged;
        double max_age = COUNTS_COST_FACTOR * m->counts_cost_s;
        bool slow = m->counts_cost_s > COUNTS_FAST_S;
        if (same || (slow && now - m->counts_at <
                                 (max_age < COUNTS_MAX_AGE_S ? max_age : COUNTS_MAX_AGE_S))) {
            memcpy(out->states, m->states, sizeof(out->states));
            memcpy(out->reasons, m->reasons, sizeof(out->reasons));
            return 0;
        }
    }
    int rc = store_task_counts(st, 0, out->states, err);
    if (rc == 0) {
        rc = store_reason_counts(st, out->reasons, err);
    }
    if (rc == 0 && m) {
        m->have_counts = true;
        m->counts_commits = out->eng.commits;
        m->counts_staged = staged;
        m->counts_at = now;
        m->counts_cost_s = mono_s() - now;
        memcpy(m->states, out->states, sizeof(m->states));
        memcpy(m->reasons, out->reasons, sizeof(m->reasons));
    }
    return rc;
}

void gw_metrics_set_counts_cost(struct gw *g, double cost_s)
{
    if (g && g->metrics) {
        g->metrics->counts_cost_s = cost_s;
    }
}

static void now_totals(struct gw *g, const struct eng_stats *es, uint64_t *mt, uint64_t *mo,
                       uint64_t *dlr)
{
    *mt = es->parts_sent;
    *dlr = es->dlrs;
    *mo = 0;
    for (size_t i = 0; g->bearer; i++) {
        const char *name = NULL;
        struct bearer_link_stats st;
        if (!bearer_link_stats(g->bearer, i, &name, &st)) {
            break;
        }
        *mo += st.mos;
    }
}

static void take_sample(struct gw_metrics *m)
{
    struct eng_stats es;
    eng_stats(m->g->eng, &es);
    struct sample *s = &m->ring[m->next];
    s->t = ev_now(m->g->loop);
    now_totals(m->g, &es, &s->mt, &s->mo, &s->dlr);
    m->next = (m->next + 1) % RING;
    if (m->n < RING) {
        m->n++;
    }
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    take_sample(w->data);
}

static double per_s(uint64_t now, uint64_t then, double dt)
{
    return dt > 0.5 && now >= then ? (double)(now - then) / dt : 0;
}

static void process_stats(struct gw_metrics_snap *s)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long size = 0, res = 0;
        if (fscanf(f, "%lu %lu", &size, &res) == 2) {
            long page = sysconf(_SC_PAGESIZE);
            s->rss_bytes = (uint64_t)res * (uint64_t)(page > 0 ? page : 4096);
        }
        fclose(f);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        s->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    }
}

int gw_metrics_snapshot(struct gw *g, struct gw_metrics_snap *out, struct ota_err *err)
{
    memset(out, 0, sizeof(*out));
    int rc = gw_metrics_counts(g, &out->c, err);
    if (rc < 0) {
        return rc;
    }
    for (size_t i = 0; g->bearer && i < GW_CONF_LINKS_MAX; i++) {
        if (!bearer_link_stats(g->bearer, i, &out->links[i].name, &out->links[i].st)) {
            break;
        }
        out->n_links++;
    }
    now_totals(g, &out->c.eng, &out->mt_total, &out->mo_total, &out->dlr_total);
    struct gw_metrics *m = g->metrics;
    if (m) {
        out->task_latency = m->task;
        out->http_latency = m->http;
        memcpy(out->http_by_class, m->http_by_class, sizeof(out->http_by_class));
        out->start_time_s = m->start_time_s;
        if (m->n) {
            /* the oldest sample still in the window */
            const struct sample *old = &m->ring[m->n < RING ? 0 : m->next];
            double dt = ev_now(g->loop) - old->t;
            out->mt_rate = per_s(out->mt_total, old->mt, dt);
            out->mo_rate = per_s(out->mo_total, old->mo, dt);
            out->dlr_rate = per_s(out->dlr_total, old->dlr, dt);
        }
    } else {
        hist_init(&out->task_latency, task_bounds, GW_METRICS_TASK_BUCKETS);
        hist_init(&out->http_latency, http_bounds, GW_METRICS_HTTP_BUCKETS);
    }
    if (g->callbacks) {
        out->callbacks_on = true;
        gw_callbacks_get_stats(g, &out->cb);
        rc = store_cb_pending(eng_store(g->eng), &out->cb_pending, err);
        if (rc < 0) {
            return rc;
        }
    }
    out->wallet_sessions = gw_wallet_sessions_live(g);
    gw_auth_stats(g, &out->auth);
    out->audit_head_seq = gw_audit_head_seq(g);
    process_stats(out);
    return 0;
}

/* ---- the exposition text ------------------------------------------------------------- */

struct mbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void OTA_PRINTF(2, 3) mb_printf(struct mbuf *b, const char *fmt, ...)
{
    if (b->oom) {
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 16384;
        while (cap - b->len <= (size_t)n) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void family(struct mbuf *b, const char *name, const char *type, const char *help)
{
    mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the format wants it: backslash, double quote and newline escaped. */
static const char *esc(const char *v, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = v ? v : ""; *p && o + 3 < cap; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return out;
}

static void u64_line(struct mbuf *b, const char *name, const char *labels, uint64_t v)
{
    mb_printf(b, "%s%s%s%s %llu\n", name, labels ? "{" : "", labels ? labels : "",
              labels ? "}" : "", (unsigned long long)v);
}

static void dbl_line(struct mbuf *b, const char *name, const char *labels, double v)
{
    mb_printf(b, "%s%s%s%s %.9g\n", name, labels ? "{" : "", labels ? labels : "",
              labels ? "}" : "", v);
}

static void counter(struct mbuf *b, const char *name, const char *help, uint64_t v)
{
    family(b, name, "counter", help);
    u64_line(b, name, NULL, v);
}

static void gauge(struct mbuf *b, const char *name, const char *help, double v)
{
    family(b, name, "gauge", help);
    dbl_line(b, name, NULL, v);
}

static void histogram(struct mbuf *b, const char *name, const char *help,
                      const struct gw_metrics_hist *h)
{
    family(b, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n; i++) {
        cum += h->counts[i];
        mb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    mb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->total);
    mb_printf(b, "%s_sum %.9g\n%s_count %llu\n", name, h->sum_s, name,
              (unsigned long long)h->total);
}

/* Per-link families: one line per link for each. */
#define LINK_FAMILY(b, s, fam, type, help, expr)                                                   \
    do {                                                                                           \
        family(b, fam, type, help);                                                                \
        for (size_t i_ = 0; i_ < (s)->n_links; i_++) {                                             \
            const struct bearer_link_stats *st = &(s)->links[i_].st;                               \
            char e_[160], l_[200];                                                                 \
            snprintf(l_, sizeof(l_), "link=\"%s\"", esc((s)->links[i_].name, e_, sizeof(e_)));     \
            u64_line(b, fam, l_, (uint64_t)(expr));                                                \
        }                                                                                          \
    } while (0)

int gw_metrics_render(const struct gw_metrics_snap *s, char **text, size_t *len)
{
    struct mbuf b = {0};
    const struct eng_stats *e = &s->c.eng;
    char l[256];

    gauge(&b, "otagw_engine_running", "1 while the task engine runs, 0 after a failed commit",
          e->run == ENG_RUNNING);
    family(&b, "otagw_tasks", "gauge", "stored tasks per state (queue depth per state)");
    for (int i = 0; i < TASK_STATE__COUNT; i++) {
        snprintf(l, sizeof(l), "state=\"%s\"", task_state_name((enum task_state)i));
        u64_line(&b, "otagw_tasks", l, s->c.states[i]);
    }
    family(&b, "otagw_task_failures", "gauge",
           "stored final tasks that did not complete, per reason (failed, expired, cancelled)");
    for (int i = 1; i < TASK_REASON__COUNT; i++) {
        snprintf(l, sizeof(l), "reason=\"%s\"", task_reason_name((enum task_reason)i));
        u64_line(&b, "otagw_task_failures", l, s->c.reasons[i]);
    }
    gauge(&b, "otagw_engine_queued", "tasks in the scheduler waiting to be due or for their SE",
          (double)e->queued);
    gauge(&b, "otagw_engine_active", "SEs with a task in progress", (double)e->active);
    gauge(&b, "otagw_engine_waiting_bearer", "dispatched tasks waiting for room on a link",
          (double)e->waiting_bearer);
    counter(&b, "otagw_tasks_accepted_total", "tasks accepted (durable) since start", e->accepted);
    counter(&b, "otagw_tasks_dispatched_total", "task attempts dispatched since start",
            e->dispatched);
    counter(&b, "otagw_tasks_done_total", "tasks completed since start", e->done);
    counter(&b, "otagw_tasks_failed_total", "tasks failed since start", e->failed);
    counter(&b, "otagw_tasks_expired_total", "tasks expired since start", e->expired);
    counter(&b, "otagw_tasks_cancelled_total", "tasks cancelled or terminated since start",
            e->cancelled);
    counter(&b, "otagw_task_retries_total", "task retries since start", e->retries);
    counter(&b, "otagw_pors_total", "verified proofs of receipt since start", e->pors);
    counter(&b, "otagw_pulls_total", "wallet pulls since start", e->pulls);
    family(&b, "otagw_reports_ignored_total", "counter",
           "reports that changed nothing, per kind (recorded in the report log)");
    static const char *const kinds[] = {"late", "duplicate", "unknown", "mismatched"};
    const uint64_t kv[] = {e->late, e->duplicate, e->unknown, e->mismatched};
    for (size_t i = 0; i < 4; i++) {
        snprintf(l, sizeof(l), "kind=\"%s\"", kinds[i]);
        u64_line(&b, "otagw_reports_ignored_total", l, kv[i]);
    }
    counter(&b, "otagw_illegal_transitions_total", "task transitions refused by the state table",
            e->illegal_transitions);
    counter(&b, "otagw_commits_total", "store commits since start", e->commits);
    family(&b, "otagw_commit_seconds_total", "counter", "time spent in store commits");
    dbl_line(&b, "otagw_commit_seconds_total", NULL, e->commit_s);

    counter(&b, "otagw_mt_submitted_total", "MT SMS parts handed to the bearer since start",
            s->mt_total);
    counter(&b, "otagw_mo_received_total", "MO SMS received by the links since start", s->mo_total);
    counter(&b, "otagw_dlr_received_total", "delivery reports applied since start", s->dlr_total);
    gauge(&b, "otagw_mt_rate", "MT parts per second over the last minute", s->mt_rate);
    gauge(&b, "otagw_mo_rate", "MO per second over the last minute", s->mo_rate);
    gauge(&b, "otagw_dlr_rate", "delivery reports per second over the last minute", s->dlr_rate);

    LINK_FAMILY(&b, s, "otagw_link_up", "gauge", "1 when the link takes submits (up or throttled)",
                st->state == BEARER_LINK_UP || st->state == BEARER_LINK_THROTTLED);
    family(&b, "otagw_link_state", "gauge", "1 for the link's current state");
    for (size_t i = 0; i < s->n_links; i++) {
        char en[160];
        esc(s->links[i].name, en, sizeof(en));
        for (int k = 0; k < BEARER_LINK__COUNT; k++) {
            snprintf(l, sizeof(l), "link=\"%s\",state=\"%s\"", en,
                     bearer_link_state_name((enum bearer_link_state)k));
            u64_line(&b, "otagw_link_state", l, s->links[i].st.state == (enum bearer_link_state)k);
        }
    }
    LINK_FAMILY(&b, s, "otagw_link_throttled", "gauge", "1 while paused by flow control",
                st->state == BEARER_LINK_THROTTLED);
    LINK_FAMILY(&b, s, "otagw_link_in_flight", "gauge", "parts awaiting a response (window used)",
                st->in_flight);
    LINK_FAMILY(&b, s, "otagw_link_held", "gauge", "parts accepted, waiting to be (re)sent",
                st->held);
    LINK_FAMILY(&b, s, "otagw_link_submitted_total", "counter", "parts sent to the network",
                st->submitted);
    LINK_FAMILY(&b, s, "otagw_link_accepted_total", "counter", "parts the network accepted",
                st->accepted);
    LINK_FAMILY(&b, s, "otagw_link_rejected_total", "counter", "parts the network refused",
                st->rejected);
    LINK_FAMILY(&b, s, "otagw_link_throttle_events_total", "counter", "flow-control answers",
                st->throttled);
    LINK_FAMILY(&b, s, "otagw_link_resent_total", "counter", "parts sent again", st->resent);
    LINK_FAMILY(&b, s, "otagw_link_timeouts_total", "counter", "responses that never came",
                st->timeouts);
    LINK_FAMILY(&b, s, "otagw_link_dlrs_total", "counter", "delivery reports received", st->dlrs);
    LINK_FAMILY(&b, s, "otagw_link_mos_total", "counter", "MO messages received", st->mos);
    LINK_FAMILY(&b, s, "otagw_link_mos_lost_total", "counter", "MOs refused or left at shutdown",
                st->mos_lost);
    LINK_FAMILY(&b, s, "otagw_link_reconnects_total", "counter", "reconnections", st->reconnects);
    LINK_FAMILY(&b, s, "otagw_link_bad_pdus_total", "counter", "undecodable or unexpected PDUs",
                st->bad_pdus);

    histogram(&b, "otagw_task_latency_seconds", "task accept to final state", &s->task_latency);
    histogram(&b, "otagw_http_request_duration_seconds", "HTTP request line to answer",
              &s->http_latency);
    family(&b, "otagw_http_responses_total", "counter", "HTTP answers per status class");
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (size_t i = 0; i < 6; i++) {
        snprintf(l, sizeof(l), "code=\"%s\"", classes[i]);
        u64_line(&b, "otagw_http_responses_total", l, s->http_by_class[i]);
    }

    gauge(&b, "otagw_callbacks_pending", "result callbacks still to deliver (outbox depth)",
          (double)s->cb_pending);
    gauge(&b, "otagw_callbacks_inflight", "callback POSTs under way", (double)s->cb.inflight);
    counter(&b, "otagw_callbacks_acked_total", "callbacks acknowledged with a 2xx", s->cb.acked);
    counter(&b, "otagw_callbacks_failed_total", "callback attempts that failed", s->cb.failed);
    counter(&b, "otagw_callbacks_abandoned_total", "callbacks given up", s->cb.abandoned);
    gauge(&b, "otagw_wallet_sessions", "wallet SCP02 sessions running", (double)s->wallet_sessions);

    family(&b, "otagw_auth_refused_total", "counter", "requests refused by the token check");
    u64_line(&b, "otagw_auth_refused_total", "code=\"401\"", s->auth.unauthorized);
    u64_line(&b, "otagw_auth_refused_total", "code=\"403\"", s->auth.forbidden);
    family(&b, "otagw_auth_unauthorized_total", "counter",
           "401 refusals by kind (no-token, malformed, unknown-token, revoked-token)");
    static const char *const akinds[] = {"no-token", "malformed", "unknown-token", "revoked-token"};
    const uint64_t av[] = {s->auth.no_token, s->auth.malformed, s->auth.unknown_token,
                           s->auth.revoked_token};
    for (size_t i = 0; i < 4; i++) {
        snprintf(l, sizeof(l), "kind=\"%s\"", akinds[i]);
        u64_line(&b, "otagw_auth_unauthorized_total", l, av[i]);
    }
    family(&b, "otagw_auth_tokens", "gauge",
           "API tokens in the daemon's cache, live or revoked (as of its last reload)");
    u64_line(&b, "otagw_auth_tokens", "state=\"live\"", s->auth.tokens_live);
    u64_line(&b, "otagw_auth_tokens", "state=\"revoked\"", s->auth.tokens_revoked);
    counter(&b, "otagw_auth_token_reloads_total",
            "reloads of the token cache (API changes, otatool on the file)", s->auth.reloads);
    counter(&b, "otagw_auth_fail_audited_total", "auth.fail entries written to the audit log",
            s->auth.audited);
    counter(&b, "otagw_auth_fail_suppressed_total", "auth.fail entries held back by the rate limit",
            s->auth.audit_suppressed);
    gauge(&b, "otagw_audit_head_seq", "seq of the last audit log entry (an outside anchor)",
          (double)s->audit_head_seq);

    gauge(&b, "process_resident_memory_bytes", "resident set size", (double)s->rss_bytes);
    family(&b, "process_cpu_seconds_total", "counter", "user and system CPU time");
    dbl_line(&b, "process_cpu_seconds_total", NULL, s->cpu_s);
    gauge(&b, "process_start_time_seconds", "start time, seconds since the epoch", s->start_time_s);
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *text = b.p;
    *len = b.len;
    return 0;
}

/* ---- routes ----------------------------------------------------------------------- */

static void h_metrics(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct gw_metrics_snap s;
    struct ota_err err;
    int rc = gw_metrics_snapshot(g, &s, &err);
    if (rc < 0) {
        gw_respond_err(req, rc, "internal", &err);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    if (gw_metrics_render(&s, &text, &len) < 0) {
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    (void)http_req_set_header(req, "Cache-Control", "no-store");
    (void)http_respond_raw(req, 200, PROM_CTYPE, text, len);
    free(text);
}

static const struct gw_metrics_route routes[] = {
    {"GET", "/metrics", GW_ROLES_STAFF},
};

const struct gw_metrics_route *gw_metrics_routes(size_t *n)
{
    *n = OTA_ARRAY_SIZE(routes);
    return routes;
}

static void on_http(void *arg, const char *method, int status, double seconds)
{
    struct gw_metrics *m = arg;
    (void)method;
    hist_add(&m->http, seconds < 0 ? 0 : seconds);
    m->http_by_class[status >= 100 && status < 600 ? status / 100 : 0]++;
}

void gw_metrics_task_final(struct gw *g, const struct eng_task_view *t)
{
    if (!g || !g->metrics || !t) {
        return;
    }
    int64_t ms = t->updated_ms - t->created_ms;
    hist_add(&g->metrics->task, ms > 0 ? (double)ms / 1000.0 : 0);
}

int gw_metrics_start(struct gw *g, struct ota_err *err)
{
    if (!g || !g->eng || !g->http) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "metrics: start after the engine and HTTP");
    }
    if (g->metrics) {
        return 0;
    }
    struct gw_metrics *m = calloc(1, sizeof(*m));
    if (!m) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "metrics: out of memory");
    }
    m->g = g;
    hist_init(&m->task, task_bounds, GW_METRICS_TASK_BUCKETS);
    hist_init(&m->http, http_bounds, GW_METRICS_HTTP_BUCKETS);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    int rc = gw_route(g, "GET", "/metrics", GW_ROLES_STAFF, h_metrics, g, err);
    if (rc == 0) {
        rc = gw_dashboard_routes(g, err);
    }
    if (rc < 0) {
        free(m);
        return rc;
    }
    g->metrics = m;
    take_sample(m);
    ev_timer_init(&m->tick, on_tick, GW_METRICS_SAMPLE_S, GW_METRICS_SAMPLE_S);
    m->tick.data = m;
    ev_timer_start(g->loop, &m->tick);
    ev_unref(g->loop); /* the sampler alone must not keep the loop running */
    http_server_observe(g->http, on_http, m);
    if (g->pull_http) {
        http_server_observe(g->pull_http, on_http, m); /* the wallet pull API counts too */
    }
    return 0;
}

void gw_metrics_stop(struct gw *g)
{
    if (!g || !g->metrics) {
        return;
    }
    struct gw_metrics *m = g->metrics;
    if (g->http) {
        http_server_observe(g->http, NULL, NULL);
    }
    if (g->pull_http) {
        http_server_observe(g->pull_http, NULL, NULL);
    }
    ev_ref(g->loop);
    ev_timer_stop(g->loop, &m->tick);
    free(m);
    g->metrics = NULL;
}
