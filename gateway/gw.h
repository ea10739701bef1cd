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

struct gw {
    struct ev_loop *loop; /* borrowed from main */
    struct gw_conf conf;
    struct eng *eng;
    struct bearer *bearer;
    struct http_server *http;
    struct gw_keys *keys;
    struct gw_wallet *wallet;
    struct gw_callbacks *callbacks;
    struct gw_auth *auth;
    struct gw_audit *audit;
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

/*
 * The wallet pull API (spec 5.8.5.2): registers its routes on g->http and
 * runs SCP02 sessions for pulled tasks. Started after the engine and the
 * HTTP server, stopped before them.
 */
int gw_wallet_start(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;
void gw_wallet_stop(struct gw *g);

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
