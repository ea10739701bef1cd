/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon context (gateway/gw.h): builds the engine, the key store, the
 * bearer and its links and the HTTP listener from a struct gw_conf, in that
 * order, and tears them down in the reverse one so that nothing acknowledged
 * is lost: the HTTP listener goes first (no new work), the engine commits,
 * the bearer sends the acks of that commit, then closes its links. Also the
 * structured log (issue #6 "Structured logs") and GET /v1/health.
 */
#include "gateway/gw.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gateway/audit.h"
#include "gateway/auth.h"
#include "gateway/keys.h"
#include "gateway/metrics.h"
#include "gateway/platform.h"
#include "gateway/tls.h"

/* ---- structured log ------------------------------------------------------------------ */

/* One line: ts, level, msg (quoted), then pairs as given (already key=value text) or nothing. */
static void log_emit(struct gw *g, int level, const char *msg, const char *pairs)
{
    if (g && level > (int)g->conf.log_level) {
        return;
    }
    FILE *f = g && g->log ? g->log : stderr;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(f, "ts=%s.%03ldZ level=%s msg=", when, ts.tv_nsec / 1000000L,
            gw_conf_log_level_name((enum gw_conf_log_level)level));
    fputc('"', f);
    /* msg always quoted so that readers find its end the same way every time. */
    for (const char *p = msg; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c < ' ') {
            fputc(' ', f);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
    if (pairs && pairs[0]) {
        fputc(' ', f);
        fputs(pairs, f);
    }
    fputc('\n', f);
    fflush(f);
}

/* True when p starts a "key=" token: [a-z_][a-z0-9_.]*= */
static bool is_pair_start(const char *p)
{
    if (!((*p >= 'a' && *p <= 'z') || *p == '_')) {
        return false;
    }
    for (p++; *p; p++) {
        if (*p == '=') {
            return true;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.')) {
            return false;
        }
    }
    return false;
}

void gw_log(struct gw *g, int level, const char *fmt, ...)
{
    if (g && level > (int)g->conf.log_level) {
        return;
    }
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* The message is the text before the first " key=" token; the rest are the pairs. */
    char *pairs = NULL;
    for (char *p = buf; *p; p++) {
        if ((p == buf || p[-1] == ' ') && is_pair_start(p)) {
            pairs = p;
            if (p > buf) {
                p[-1] = '\0';
            }
            break;
        }
    }
    log_emit(g, level, pairs == buf ? "" : buf, pairs);
}

static int log_open(struct gw *g, struct ota_err *err)
{
    if (!g->conf.log_file[0]) {
        g->log = stderr;
        return 0;
    }
    FILE *f = fopen(g->conf.log_file, "a");
    if (!f) {
        int e = errno;
        return ota_fail(err, -e, OTA_ERR_ARG, "log_file %s: %s", g->conf.log_file, strerror(e));
    }
    setvbuf(f, NULL, _IOLBF, 0);
    g->log = f;
    return 0;
}

int gw_reopen_log(struct gw *g, struct ota_err *err)
{
    if (!g || !g->conf.log_file[0]) {
        return 0;
    }
    FILE *f = fopen(g->conf.log_file, "a");
    if (!f) {
        int e = errno;
        /* Keep writing to the old file rather than losing lines. */
        return ota_fail(err, -e, OTA_ERR_ARG, "log_file %s: %s", g->conf.log_file, strerror(e));
    }
    setvbuf(f, NULL, _IOLBF, 0);
    if (g->log && g->log != stderr) {
        fclose(g->log);
    }
    g->log = f;
    gw_log(g, GW_CONF_LOG_NOTICE, "log reopened");
    return 0;
}

/* ---- errors ------------------------------------------------------------------------- */

void gw_respond_err(struct http_req *req, int rc, const char *code, const struct ota_err *err)
{
    int status;
    switch (rc) {
    case -EINVAL:
        status = 400;
        break;
    case -ENOENT:
        status = 404;
        break;
    case -EEXIST:
    case -EBUSY:
    case -EALREADY:
        status = 409;
        break;
    case -ENOLINK: /* spec 5.5.2 refusals keep their own codes */
        status = 409;
        code = "se-unbound";
        break;
    case -EACCES:
        status = 409;
        code = "loss-listed";
        break;
    case -ESHUTDOWN:
        status = 503;
        break;
    default:
        status = 500;
        break;
    }
    const char *msg = err && err->msg[0] ? err->msg : strerror(rc < 0 ? -rc : rc);
    (void)http_respond_error(req, status, code ? code : "error", "%s", msg);
}

/* ---- engine hooks ------------------------------------------------------------------- */

static int hook_keys(void *arg, const char *seid, const uint8_t tar[3], struct eng_scp80_keys *out,
                     struct ota_err *err)
{
    struct gw *g = arg;
    return gw_keys_get_scp80(g->keys, seid, tar, out, err);
}

/*
 * plat_engine_build_script takes a struct plat_ctx * as arg, not the hooks' arg (struct gw *):
 * the SE model's context, so that a download resumes from what the model records.
 */
static int hook_build_script(void *arg, const struct eng_task_view *t, uint8_t tar[3],
                             uint8_t *script, size_t cap, size_t *len, struct ota_err *err)
{
    struct gw *g = arg;
    /* PUT KEY (sd-key-update) takes the SE's own keys: the key store knows them by SEID */
    struct gw_keys_plat_arg ka = {.k = g->keys, .seid = t->seid};
    struct plat_keys_cb kcb = {
        .keys = gw_keys_plat_material, .translate = gw_keys_plat_translate, .arg = &ka};
    const struct plat_ctx *base = gw_ses_plat_ctx(g);
    struct plat_ctx ctx = {0};
    if (base) {
        ctx = *base;
    }
    ctx.keys = g->keys ? &kcb : NULL;
    return plat_engine_build_script(&ctx, t, tar, script, cap, len, err);
}

/* A key update that reached done moves the SE to the new key version (gateway/keys.h). */
static void keys_task_final(struct gw *g, const struct eng_task_view *t)
{
    struct ota_err err;
    bool moved = false;
    if (!g->keys || t->op != TASK_OP_SD_KEY_UPDATE || t->state != TASK_DONE) {
        return;
    }
    if (gw_keys_task_final(g->keys, t, &moved, &err) < 0) {
        gw_log(g, GW_CONF_LOG_ERR, "key version not moved task=%lld se=%s err=\"%s\"",
               (long long)t->id, t->seid ? t->seid : "", err.msg);
        return;
    }
    if (moved) {
        char target[GW_KEYS_SEID_MAX + 4];
        snprintf(target, sizeof(target), "se:%s", t->seid);
        gw_log(g, GW_CONF_LOG_NOTICE, "key version moved task=%lld se=%s", (long long)t->id,
               t->seid);
        (void)gw_audit(g, "system", "key.version", target, "task=%lld", (long long)t->id);
    }
}

static void hook_final(void *arg, const struct eng_task_view *t)
{
    struct gw *g = arg;
    gw_log(g, GW_CONF_LOG_INFO, "task final task=%lld job=%lld se=%s op=%s state=%s reason=%s",
           (long long)t->id, (long long)t->job, t->seid ? t->seid : "", task_op_name(t->op),
           task_state_name(t->state), task_reason_name(t->reason));
    keys_task_final(g, t);
    gw_metrics_task_final(g, t);
    gw_callbacks_task_final(g, t);
    gw_antitheft_task_final(g, t);
}

/* Before the commit: the SE's platform model changes in the batch of the task's outcome. */
static void hook_final_staged(void *arg, const struct eng_task_view *t)
{
    gw_ses_task_final(arg, t);
}

static void hook_log(void *arg, int level, const char *msg)
{
    log_emit(arg, level, msg, "src=engine");
}

static void on_link_state(void *arg, const char *link, enum bearer_link_state from,
                          enum bearer_link_state to, const char *why)
{
    struct gw *g = arg;
    int level = to == BEARER_LINK_UP     ? GW_CONF_LOG_NOTICE
                : to == BEARER_LINK_DOWN ? GW_CONF_LOG_WARNING
                                         : GW_CONF_LOG_INFO;
    gw_log(g, level, "link state link=%s from=%s to=%s why=\"%s\"", link,
           bearer_link_state_name(from), bearer_link_state_name(to), why ? why : "");
}

static void on_submit_result(void *arg, const struct bearer_submit_result *r)
{
    struct gw *g = arg;
    if (!g->eng) {
        return;
    }
    eng_on_submit_result(g->eng, r);
}

static int on_dlr(void *arg, const struct bearer_dlr *d)
{
    struct gw *g = arg;
    if (!g->eng) {
        return -ESHUTDOWN;
    }
    return eng_on_dlr(g->eng, d);
}

static int on_mo(void *arg, const struct bearer_mo *m)
{
    struct gw *g = arg;
    if (!g->eng) {
        return -ESHUTDOWN;
    }
    return eng_on_mo(g->eng, m);
}

static void on_ready(void *arg)
{
    struct gw *g = arg;
    if (!g->eng) {
        return;
    }
    eng_on_ready(g->eng);
}

/* ---- GET /v1/health ---------------------------------------------------------------- */

static void route_health(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    json_t *links = json_array();
    for (size_t i = 0;; i++) {
        const char *name = NULL;
        struct bearer_link_stats st;
        if (!bearer_link_stats(g->bearer, i, &name, &st)) {
            break;
        }
        json_array_append_new(links,
                              json_pack("{s:s, s:s, s:I, s:I}", "name", name ? name : "", "state",
                                        bearer_link_state_name(st.state), "in_flight",
                                        (json_int_t)st.in_flight, "held", (json_int_t)st.held));
    }
    struct eng_stats es;
    eng_stats(g->eng, &es);
    json_t *eng =
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "run",
                  es.run == ENG_RUNNING ? "running" : "stopped-error", "queued",
                  (json_int_t)es.queued, "active", (json_int_t)es.active, "waiting_bearer",
                  (json_int_t)es.waiting_bearer, "accepted", (json_int_t)es.accepted, "done",
                  (json_int_t)es.done, "failed", (json_int_t)es.failed, "expired",
                  (json_int_t)es.expired, "cancelled", (json_int_t)es.cancelled, "retries",
                  (json_int_t)es.retries, "commits", (json_int_t)es.commits);
    const char *status = es.run == ENG_RUNNING && !g->stopping ? "ok" : "degraded";
    json_t *body = json_pack("{s:s, s:o, s:o}", "status", status, "links", links, "engine", eng);
    (void)http_respond_json(req, es.run == ENG_RUNNING ? 200 : 503, body);
}

/* ---- start / stop ------------------------------------------------------------------ */

/*
 * The listeners' certificate (generated on a fresh machine when [tls]
 * self_signed allows) and the callbacks' CA bundle, checked before anything
 * listens so that start-up fails naming the file.
 */
static int gw_tls_start(struct gw *g, struct ota_err *err)
{
    int rc = gw_tls_check_ca(g->conf.tls_ca_file, err);
    if (rc < 0 || g->conf.plain_http) {
        if (rc == 0) {
            gw_log(g, GW_CONF_LOG_WARNING, "plain HTTP (plain_http = yes): loopback tests only");
        }
        return rc;
    }
    bool generated = false;
    char fp[GW_TLS_FP_LEN];
    rc = gw_tls_prepare(g->conf.tls_cert, g->conf.tls_key, g->conf.tls_self_signed, &generated, fp,
                        err);
    if (rc < 0) {
        return rc;
    }
    gw_log(g, generated ? GW_CONF_LOG_NOTICE : GW_CONF_LOG_INFO, "%s cert=%s key=%s sha256=%s",
           generated ? "tls self-signed certificate generated" : "tls certificate loaded",
           g->conf.tls_cert, g->conf.tls_key, fp);
    struct stat st;
    if (stat(g->conf.tls_key, &st) == 0 && (st.st_mode & 077)) {
        gw_log(g, GW_CONF_LOG_WARNING, "tls key readable by other users key=%s mode=%03o",
               g->conf.tls_key, (unsigned)(st.st_mode & 0777));
    }
    if (generated &&
        (!gw_tls_is_loopback(g->conf.listen_host) || !gw_tls_is_loopback(g->conf.pull_host))) {
        /* Its names are localhost / 127.0.0.1 / ::1: remote clients must pin the file. */
        gw_log(g, GW_CONF_LOG_WARNING,
               "tls self-signed certificate on a non-loopback listener listen=%s pull_listen=%s",
               g->conf.listen_host, g->conf.pull_host);
    }
    return 0;
}

/* The key store ([keys]); key files it had to create are logged, never their content. */
static int keys_start(struct gw *g, bool durable, struct ota_err *err)
{
    const struct gw_conf *c = &g->conf;
    bool p11 = c->keys_backend == GW_CONF_KEYS_PKCS11;
    struct gw_keys_conf kc = {
        .backend = p11 ? GW_KEYS_PKCS11 : GW_KEYS_LOCAL,
        .db_path = c->keys_db,
        .durable = durable,
        .master_key_file = c->keys_master_file,
        .transport_key_file = c->keys_transport_file,
        .p11_module = c->keys_p11_module,
        .p11_token = c->keys_p11_token,
        .p11_pin_file = c->keys_p11_pin_file,
        .transport_label = c->keys_transport_label,
    };
    unsigned made = 0;
    int rc = gw_keys_open_conf(&kc, &g->keys, &made, err);
    if (rc < 0) {
        return rc;
    }
    if (made & GW_KEYS_CREATED_MASTER) {
        gw_log(g, GW_CONF_LOG_NOTICE, "key store master key created file=%s mode=0600",
               c->keys_master_file);
    }
    if (made & GW_KEYS_CREATED_TRANSPORT) {
        gw_log(g, GW_CONF_LOG_NOTICE, "key store transport key created file=%s mode=0600",
               c->keys_transport_file);
    }
    if (made & GW_KEYS_NOT_LOCKED) {
        gw_log(g, GW_CONF_LOG_WARNING,
               "key store memory not locked (mlock refused: raise RLIMIT_MEMLOCK)");
    }
    gw_log(g, GW_CONF_LOG_INFO, "key store open backend=%s db=%s clear_import=%s",
           p11 ? "pkcs11" : "local", c->keys_db, c->keys_clear_import ? "yes" : "no");
    return 0;
}

int gw_start(struct ev_loop *loop, const struct gw_conf *conf, struct gw **out, struct ota_err *err)
{
    if (!loop || !conf || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "gw_start: NULL argument");
    }
    struct gw *g = calloc(1, sizeof(*g));
    if (!g) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
    }
    g->loop = loop;
    g->conf = *conf;
    const struct eng_conf *ec = gw_conf_eng(&g->conf);
    int rc = log_open(g, err);
    if (rc < 0) {
        goto fail;
    }
    /* First: a bad certificate stops start-up before the database or a link is touched. */
    rc = gw_tls_start(g, err);
    if (rc < 0) {
        goto fail;
    }

    rc = gw_ses_start(g, err);
    if (rc < 0) {
        goto fail;
    }
    struct eng_hooks hooks = {
        .scp80_keys = hook_keys,
        .build_script = hook_build_script,
        .final = hook_final,
        .final_staged = hook_final_staged,
        .log = hook_log,
        .arg = g,
    };
    rc = eng_open(loop, ec, &hooks, &g->eng, err);
    if (rc < 0) {
        goto fail;
    }
    rc = keys_start(g, ec->durable, err);
    if (rc < 0) {
        goto fail;
    }

    /*
     * Our own callbacks forwarding to the engine's eng_on_* (what
     * eng_bearer_cbs would install), so that link state changes can be logged
     * with the daemon's context as arg.
     */
    struct bearer_cbs cbs = {
        .submit_result = on_submit_result,
        .dlr = on_dlr,
        .mo = on_mo,
        .link_state = on_link_state,
        .ready = on_ready,
        .arg = g,
    };
    rc = bearer_new(loop, &cbs, &g->bearer, err);
    if (rc < 0) {
        goto fail;
    }
    for (size_t i = 0; i < g->conf.n_links; i++) {
        rc = bearer_add_link(g->bearer, &g->conf.links[i], err);
        if (rc < 0) {
            goto fail;
        }
    }
    eng_use_bearer(g->eng, g->bearer);

    /* Every listener gets the same TLS settings (NULL cert and key = plain_http). */
    struct http_conf hc = {
        .bind_addr = g->conf.listen_host,
        .port = g->conf.listen_port,
        .max_body = g->conf.max_body,
        .tls_cert = g->conf.plain_http ? NULL : g->conf.tls_cert,
        .tls_key = g->conf.plain_http ? NULL : g->conf.tls_key,
    };
    rc = http_server_new(loop, &hc, &g->http, err);
    if (rc < 0) {
        goto fail;
    }
    /* A separate wallet listener: the pull API reachable where the business API is not. */
    if (g->conf.pull_host[0] && (strcmp(g->conf.pull_host, g->conf.listen_host) != 0 ||
                                 g->conf.pull_port != g->conf.listen_port)) {
        struct http_conf pc = hc;
        pc.bind_addr = g->conf.pull_host;
        pc.port = g->conf.pull_port;
        rc = http_server_new(loop, &pc, &g->pull_http, err);
        if (rc < 0) {
            goto fail;
        }
        gw_log(g, GW_CONF_LOG_NOTICE, "pull listener listen=%s:%u", g->conf.pull_host,
               (unsigned)http_server_port(g->pull_http));
    }
    rc = gw_audit_start(g, err);
    if (rc == 0) {
        rc = gw_auth_start(g, err);
    }
    if (rc == 0) {
        rc = gw_route(g, "GET", "/v1/health", GW_ROLES_PUBLIC, route_health, g, err);
    }
    if (rc == 0) {
        rc = gw_api_ses_routes(g, err);
    }
    if (rc == 0) {
        rc = gw_api_keys_routes(g, err);
    }
    if (rc == 0) {
        rc = gw_api_tasks_routes(g, err);
    }
    if (rc == 0) {
        rc = gw_antitheft_start(g, err);
    }
    if (rc == 0) {
        rc = gw_wallet_start(g, err);
    }
    if (rc == 0) {
        rc = gw_callbacks_start(g, err);
    }
    if (rc == 0) {
        rc = gw_metrics_start(g, err); /* GET /metrics and the dashboard */
    }
    if (rc < 0) {
        goto fail;
    }
    gw_log(g, GW_CONF_LOG_NOTICE, "otagw started listen=%s:%u scheme=%s links=%zu db=%s",
           g->conf.listen_host, (unsigned)http_server_port(g->http),
           http_server_tls(g->http) ? "https" : "http", g->conf.n_links, g->conf.db_path);
    *out = g;
    return 0;
fail:
    gw_stop(g);
    return rc;
}

void gw_stop(struct gw *g)
{
    if (!g) {
        return;
    }
    g->stopping = true;
    gw_wallet_stop(g);
    /*
     * Commit before closing HTTP: the commit answers submits still waiting
     * for their accept callback, which hold requests the server would free.
     */
    if (g->eng) {
        struct ota_err err;
        if (eng_flush(g->eng, &err) < 0) {
            gw_log(g, GW_CONF_LOG_ERR, "final commit failed err=\"%s\"", err.msg);
        }
    }
    http_server_free(g->pull_http);
    g->pull_http = NULL;
    http_server_free(g->http);
    g->http = NULL;
    gw_metrics_stop(g);
    gw_callbacks_stop(g);
    /* Acks of what the last commit holds go out before the links close (else redelivered). */
    if (g->bearer) {
        bearer_release_acks(g->bearer);
        bearer_shutdown(g->bearer);
    }
    eng_close(g->eng);
    g->eng = NULL;
    gw_antitheft_stop(g); /* after the engine: its last final hooks still count */
    gw_ses_stop(g);
    bearer_free(g->bearer);
    g->bearer = NULL;
    gw_keys_close(g->keys);
    g->keys = NULL;
    /*
     * Audit last: the final hooks run while the engine closes (anti-theft
     * results, key version moves) and auth's stop writes its rate-limited
     * failure count; all of them append entries.
     */
    gw_auth_stop(g);
    gw_audit_stop(g);
    if (g->log) {
        gw_log(g, GW_CONF_LOG_NOTICE, "otagw stopped");
    }
    if (g->log && g->log != stderr) {
        fclose(g->log);
    }
    g->log = NULL;
    gw_conf_fini(&g->conf);
    free(g);
}
