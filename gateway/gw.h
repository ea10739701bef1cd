/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's context: what every part of gateway/ reaches through one
 * pointer. gateway/gw.c builds it from a struct gw_conf (open the engine,
 * the bearer and its links, the key store, the HTTP listener, register the
 * routes) and tears it down; gateway/main.c is the program around it
 * (command line, signals, logs). Routes live in gateway/api_*.c, each file
 * registering its own with one gw_api_*_routes() call.
 *
 * Ownership: struct gw owns every object it points to; routes borrow them
 * for the duration of a call (or until their deferred answer).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "gateway/conf.h"
#include "gateway/http.h"
#include "ota/ota.h"
#include "queue/engine.h"
#include "smpp/bearer.h"

struct gw_keys;      /* gateway/keys.h */
struct gw_wallet;    /* gateway/wallet.c: the wallet pull API and its SCP02 sessions */
struct gw_callbacks; /* gateway/callbacks.c: result callbacks to business platforms */
struct gw_auth;      /* gateway/auth.c: principals, tokens, roles */
struct gw_audit;     /* gateway/audit.c: the hash-chained audit log */
struct gw_metrics;   /* gateway/metrics.c: counters and histograms for /metrics */
struct gw_antitheft; /* gateway/api_antitheft.c: X.1127 lock / unlock / wipe */
struct plat_ctx;     /* gateway/platform.h */
struct gw_ses;       /* gateway/api_ses.c: the per-SE platform model cache */

struct gw {
    struct ev_loop *loop; /* borrowed from main */
    struct gw_conf conf;
    struct eng *eng;
    struct bearer *bearer;
    struct http_server *http;
    /*
     * The wallet pull listener ([gateway] pull_listen) when it differs from
     * listen, else NULL (the pull routes then share http). gw_route puts the
     * /v1/wallet/ routes on it.
     */
    struct http_server *pull_http;
    struct gw_keys *keys;
    struct gw_wallet *wallet;
    struct gw_callbacks *callbacks;
    struct gw_auth *auth;
    struct gw_audit *audit;
    struct gw_metrics *metrics;
    struct gw_antitheft *antitheft;
    struct gw_ses *ses;
    FILE *log; /* stderr or conf.log_file (reopened on SIGHUP) */
    bool stopping;
};

/*
 * Structured log line: "ts=... level=... msg=..." plus the caller's
 * key=value pairs in fmt. Never pass key bytes or secrets.
 */
void gw_log(struct gw *g, int level, const char *fmt, ...) OTA_PRINTF(3, 4);

/* Start everything from conf (copied). 0 or negative errno with err naming the part. */
int gw_start(struct ev_loop *loop, const struct gw_conf *conf, struct gw **out,
             struct ota_err *err) OTA_MUST_CHECK;

/* Stop taking requests, commit, close links in order, free. NULL is fine. */
void gw_stop(struct gw *g);

/* Reopen the log file (SIGHUP). */
int gw_reopen_log(struct gw *g, struct ota_err *err);

/* Route registration, one per API file; called by gw_start. */
int gw_api_ses_routes(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;   /* api_ses.c */
int gw_api_keys_routes(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;  /* api_keys.c */
int gw_api_tasks_routes(struct gw *g, struct ota_err *err) OTA_MUST_CHECK; /* api_tasks.c, jobs */

/* Cleanse the key members of req's JSON body and the body text (api_keys.c answers call it). */
void gw_api_keys_scrub(struct http_req *req);

/*
 * The SE side of the platform (gateway/api_ses.c, spec 5.5, 5.8.7): each
 * SE's platform model (gateway/platform.h) persisted in the engine's store
 * (se_model) with a small LRU cache in front. gw_ses_start before the
 * engine hooks can fire (NULL g->ses works, uncached). gw_ses_task_final is
 * the engine's final_staged hook: a platform operation's result updates the
 * SE's model, staged in the batch that makes the task final (both durable
 * together). gw_ses_plat_ctx: the build context of the engine's
 * build_script hook (it reads the SE's model, so downloads resume).
 */
int gw_ses_start(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;
void gw_ses_stop(struct gw *g);
void gw_ses_task_final(struct gw *g, const struct eng_task_view *t);
const struct plat_ctx *gw_ses_plat_ctx(struct gw *g);

/*
 * Anti-theft (ITU-T X.1127, docs/antitheft.md): registers /v1/antitheft/...
 * (role anti-theft only). task_final is called from the engine's final hook
 * for every task (it ignores the others): it logs and audits the PoR and
 * the result and measures request -> verified PoR against 15 minutes.
 * stats_json: counters and timings for GET /v1/stats (an object even when
 * not started; NULL only out of memory).
 */
int gw_antitheft_start(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;
void gw_antitheft_stop(struct gw *g);
void gw_antitheft_task_final(struct gw *g, const struct eng_task_view *t);
json_t *gw_antitheft_stats_json(const struct gw *g);

/*
 * The wallet pull API (spec 5.8.5.2): registers its routes on g->http and
 * runs SCP02 sessions for pulled tasks. Started after the engine and the
 * HTTP server, stopped before them.
 */
int gw_wallet_start(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;
void gw_wallet_stop(struct gw *g);
/* SCP02 sessions running now (metrics); 0 without a wallet. */
size_t gw_wallet_sessions_live(const struct gw *g);

/*
 * Result callbacks to business platforms: POSTed with an HMAC-SHA256
 * signature, retried with back-off until acknowledged, kept across
 * restarts. gw_callbacks_task_final is called from the engine's final hook
 * (after the commit that made the task final).
 */
int gw_callbacks_start(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;
void gw_callbacks_stop(struct gw *g);
void gw_callbacks_task_final(struct gw *g, const struct eng_task_view *t);

/*
 * Answer an engine/store error as the one JSON error shape with the status
 * that fits rc (-EINVAL 400, -ENOENT 404, -EEXIST/-EBUSY/-EALREADY 409,
 * -ESHUTDOWN 503, other 500) and code (a stable short text).
 */
void gw_respond_err(struct http_req *req, int rc, const char *code, const struct ota_err *err);
