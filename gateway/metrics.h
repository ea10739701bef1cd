/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Operations metrics (issue #6, DESIGN 1 "ops staff"): one snapshot of what
 * the daemon knows (engine counters, tasks per state and failure reason from
 * the store, bearer links, latency histograms, callbacks outbox, wallet
 * sessions, process RSS / CPU), rendered three ways: GET /metrics
 * (Prometheus text exposition 0.0.4, staff roles), GET /v1/stats (JSON,
 * gateway/api_tasks.c, through gw_metrics_counts) and the dashboard's
 * GET /v1/dashboard/state (gateway/dashboard.c). docs/dashboard.md lists
 * every metric.
 *
 * Rates (MT / MO / DLR per second) are taken over the last minute from a
 * sample of the counters every GW_METRICS_SAMPLE_S, so every reader sees the
 * same rate whoever else scrapes.
 *
 * Prefix gw_metrics_. One thread (the loop's). Every reader tolerates a
 * context without metrics, bearer, callbacks or wallet (hand-built tests).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/auth.h"
#include "gateway/callbacks.h"
#include "gateway/gw.h"

#define GW_METRICS_SAMPLE_S 5
#define GW_METRICS_RATE_WINDOW_S 60
#define GW_METRICS_TASK_BUCKETS 14 /* + Inf */
#define GW_METRICS_HTTP_BUCKETS 12 /* + Inf */

/* What GET /v1/stats shows: the engine's counters, stored tasks per state and per reason. */
struct gw_metrics_counts {
    struct eng_stats eng;
    uint64_t states[TASK_STATE__COUNT];   /* stored tasks per state (queue depth per state) */
    uint64_t reasons[TASK_REASON__COUNT]; /* final tasks not done, per reason */
};

/*
 * 0, or the store's error (-EIO). The store's counts scan the task table:
 * with metrics started they are reused while the store is unchanged, and
 * after a slow scan (> 10 ms) for 20 times its cost (at most 60 s), so
 * pollers cannot keep the loop busy. eng is always fresh.
 */
int gw_metrics_counts(struct gw *g, struct gw_metrics_counts *out,
                      struct ota_err *err) OTA_MUST_CHECK;

/* Tests: pretend the last scan of the store took cost_s. No-op without metrics. */
void gw_metrics_set_counts_cost(struct gw *g, double cost_s);

/* A histogram: counts per upper bound (not cumulative), the +Inf bucket last. */
struct gw_metrics_hist {
    const double *bounds; /* n bounds, seconds, increasing */
    size_t n;
    uint64_t counts[GW_METRICS_TASK_BUCKETS + 1];
    uint64_t total;
    double sum_s;
};

/* The q-quantile (0..1) estimated by interpolation within its bucket; 0 when empty. */
double gw_metrics_quantile(const struct gw_metrics_hist *h, double q);

struct gw_metrics_link {
    const char *name; /* borrowed from the bearer */
    struct bearer_link_stats st;
};

struct gw_metrics_snap {
    struct gw_metrics_counts c;
    size_t n_links;
    struct gw_metrics_link links[GW_CONF_LINKS_MAX];
    /* MT parts the engine handed to the bearer, MOs the links received, DLRs applied */
    uint64_t mt_total, mo_total, dlr_total;
    double mt_rate, mo_rate, dlr_rate;   /* per second over the last minute (or since start) */
    struct gw_metrics_hist task_latency; /* accept -> final */
    struct gw_metrics_hist http_latency; /* request line -> answer */
    uint64_t http_by_class[6];           /* [2] = 2xx ... [5] = 5xx; [0] other */
    bool callbacks_on;
    struct gw_callbacks_stats cb;
    uint64_t cb_pending; /* outbox rows still to deliver */
    size_t wallet_sessions;
    struct gw_auth_stats auth; /* refused requests, auth.fail entries */
    int64_t audit_head_seq;    /* last audit entry (0: none or no log) */
    uint64_t rss_bytes;
    double cpu_s;        /* user + system */
    double start_time_s; /* epoch seconds of gw_metrics_start (0: not started) */
};

/* Fill out. 0, or the store's error. */
int gw_metrics_snapshot(struct gw *g, struct gw_metrics_snap *out,
                        struct ota_err *err) OTA_MUST_CHECK;

/*
 * The exposition text of out (malloc'ed, NUL-terminated, *len without the
 * NUL; the caller frees). 0 or -ENOMEM.
 */
int gw_metrics_render(const struct gw_metrics_snap *s, char **text, size_t *len) OTA_MUST_CHECK;

/*
 * Start counting (histograms, rate samples, the HTTP observer on g->http)
 * and register GET /metrics (GW_ROLES_STAFF) and the dashboard's routes
 * (gateway/dashboard.c). After the engine and the HTTP server.
 */
int gw_metrics_start(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;
void gw_metrics_stop(struct gw *g);

/* The engine's final hook: one task's accept -> final time. No-op without metrics. */
void gw_metrics_task_final(struct gw *g, const struct eng_task_view *t);

/* GET /metrics with its role set (tests check it); the dashboard's: gw_dashboard_route_list. */
struct gw_metrics_route {
    const char *method, *pattern;
    unsigned roles;
};
const struct gw_metrics_route *gw_metrics_routes(size_t *n);

/* gateway/dashboard.c: the page, its script and style, and GET /v1/dashboard/state. */
int gw_dashboard_routes(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;
const struct gw_metrics_route *gw_dashboard_route_list(size_t *n);
