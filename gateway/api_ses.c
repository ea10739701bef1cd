/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SE routes of the business API and the per-SE platform model (issue #6
 * "SEs"; spec 5.5.1, 5.5.2, 5.8.7.1, 5.8.7.2, 5.8.8; docs/ses.md):
 *   POST   /v1/ses                    register one SE, or a list {"ses":[...]} (<= 1000)
 *   GET    /v1/ses/{seid}             the SE: binding, batch, apps, SDs, free space, tasks
 *   POST   /v1/ses/{seid}/unbind      release the SE from its MSISDN
 *   POST   /v1/loss-list              list an SEID or an MSISDN as lost
 *   GET    /v1/loss-list              the entries, in id order (paged)
 *   DELETE /v1/loss-list/{id}         remove an entry
 *
 * Binding rules (5.5.2): one SE binds to one MSISDN, an MSISDN may hold
 * several SEs. A registered SE bound to another MSISDN is refused (409
 * se-msisdn-conflict); an unbound SE is bound again by registering it with
 * any MSISDN. An unbound SE or one on the loss list (by SEID or MSISDN)
 * gets no new task (the engine refuses: store_se_admit), and an SE or
 * MSISDN on the loss list cannot be registered or bound (409 loss-listed).
 *
 * Writes are staged in the engine's batch (eng_store) and answered from
 * eng_after_commit: every request waiting on the same commit shares its
 * fsync, a list of 1000 registrations costs one commit. Unbind and loss
 * list changes are audited before they are staged (refused when the audit
 * entry cannot be written).
 *
 * Input is validated strictly: unknown members, wrong types, SEID outside
 * 1..64 printable, MSISDN outside 1..21 digits -> 400 in the one error
 * shape; nothing is written on any error.
 *
 * The platform model of each SE (gateway/platform.h) lives in the store's
 * se_model table as JSON, with an LRU cache of SES_CACHE models in front.
 * The engine's final_staged hook updates it from a platform operation's
 * result, staged in the same batch as the task's final state: both become
 * durable together or not at all.
 */
#include "gateway/gw.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api_util.h"
#include "gateway/audit.h"
#include "gateway/auth.h"
#include "gateway/keys.h"
#include "gateway/platform.h"

#define SES_QUEUED_MAX 64 /* queued task ids shown by GET /v1/ses/{seid} */
#define SES_LIST_MAX 1000 /* items of one bulk registration */
#define SES_CACHE 128     /* models kept in memory (about 3 KiB each) */
#define SES_LOSS_PAGE 100 /* default page of GET /v1/loss-list */
#define SES_LOSS_PAGE_MAX 1000
#define SES_REASON_MAX 159 /* loss-list reason text */
#define SES_RAPDUS_MAX PLAT_MAX_APDUS

/* ---- the model cache ---------------------------------------------------------------- */

struct ses_ent {
    int64_t se; /* 0 = free slot */
    uint64_t used;
    bool stored; /* a row exists (else the model is the empty one) */
    int64_t updated_ms;
    struct plat_model m;
};

struct gw_ses {
    struct gw *g;
    uint64_t tick;
    struct ses_ent ents[SES_CACHE];
    struct plat_ctx pctx;
};

static struct ses_ent *cache_find(struct gw_ses *c, int64_t se)
{
    for (size_t i = 0; c && i < SES_CACHE; i++) {
        if (c->ents[i].se == se) {
            c->ents[i].used = ++c->tick;
            return &c->ents[i];
        }
    }
    return NULL;
}

/* The slot for se: its own, a free one, or the least recently used one. */
static struct ses_ent *cache_slot(struct gw_ses *c, int64_t se)
{
    struct ses_ent *victim = &c->ents[0];
    for (size_t i = 0; i < SES_CACHE; i++) {
        struct ses_ent *e = &c->ents[i];
        if (e->se == se || e->se == 0) {
            return e;
        }
        if (e->used < victim->used) {
            victim = e;
        }
    }
    return victim;
}

static void cache_put(struct gw_ses *c, int64_t se, const struct plat_model *m, bool stored,
                      int64_t updated_ms)
{
    if (!c) {
        return;
    }
    struct ses_ent *e = cache_slot(c, se);
    e->se = se;
    e->used = ++c->tick;
    e->stored = stored;
    e->updated_ms = updated_ms;
    e->m = *m;
}

/*
 * The model of SE row se: cached, else stored, else the empty model
 * (*stored false). 0, -EIO (stored text unreadable: err says why), store errors.
 */
static int model_load(struct gw *g, int64_t se, struct plat_model *out, bool *stored,
                      int64_t *updated_ms, struct ota_err *err)
{
    struct ses_ent *e = cache_find(g->ses, se);
    if (e) {
        *out = e->m;
        *stored = e->stored;
        *updated_ms = e->updated_ms;
        return 0;
    }
    char *txt = NULL;
    int64_t upd = 0;
    int rc = store_se_model_get(eng_store(g->eng), se, &txt, &upd, err);
    if (rc == -ENOENT) {
        plat_model_init(out);
        *stored = false;
        *updated_ms = 0;
        cache_put(g->ses, se, out, false, 0);
        return 0;
    }
    if (rc < 0) {
        return rc;
    }
    json_error_t je;
    json_t *j = json_loads(txt, JSON_REJECT_DUPLICATES, &je);
    free(txt);
    if (!j) {
        return ota_fail(err, -EIO, OTA_ERR_VALUE, "stored model of SE %lld: %s", (long long)se,
                        je.text);
    }
    rc = plat_model_from_json(j, out, err);
    json_decref(j);
    if (rc < 0) {
        return ota_fail(err, -EIO, OTA_ERR_VALUE, "stored model of SE %lld: %s", (long long)se,
                        err->msg);
    }
    *stored = true;
    *updated_ms = upd;
    cache_put(g->ses, se, out, true, upd);
    return 0;
}

/* plat_ctx.model_for: the engine's build_script hook reads the SE's model (download resume). */
static const struct plat_model *model_for(void *arg, const char *seid)
{
    struct gw_ses *c = arg;
    struct ota_err err;
    struct store_se se;
    if (!c->g->eng || store_se_find(eng_store(c->g->eng), seid, &se, &err) < 0) {
        return NULL;
    }
    struct plat_model m;
    bool stored;
    int64_t upd;
    if (model_load(c->g, se.id, &m, &stored, &upd, &err) < 0) {
        return NULL;
    }
    struct ses_ent *e = cache_find(c, se.id);
    return e ? &e->m : NULL;
}

int gw_ses_start(struct gw *g, struct ota_err *err)
{
    if (!g) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "gw_ses_start: NULL");
    }
    if (g->ses) {
        return 0;
    }
    struct gw_ses *c = calloc(1, sizeof(*c));
    if (!c) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
    }
    c->g = g;
    c->pctx.model_for = model_for;
    c->pctx.model_arg = c;
    g->ses = c;
    return 0;
}

void gw_ses_stop(struct gw *g)
{
    if (g) {
        free(g->ses);
        g->ses = NULL;
    }
}

const struct plat_ctx *gw_ses_plat_ctx(struct gw *g)
{
    return g && g->ses ? &g->ses->pctx : NULL;
}

/* ---- model updates from results ---------------------------------------------------- */

static bool plat_op(enum task_op op)
{
    /* anti-theft scripts are built from [antitheft], not from platform params */
    return op != TASK_OP_PUSH && op != TASK_OP_SCP80 && op != TASK_OP_CUSTOM &&
           !task_op_antitheft(op) && (unsigned)op < TASK_OP__COUNT;
}

/*
 * What ran of the task's script. SCP80: the PoR's expanded response (its
 * R-APDUs, info-sync reads them); push + SCP02: the wallet session's
 * "script_done" count (no R-APDUs kept). Without either, a done task ran
 * everything and any other ran nothing.
 */
static void result_of(const struct eng_task_view *t, const struct plat_model *m, uint8_t *data,
                      size_t cap, struct ota_rapdu_rapdu *rapdus, struct plat_result *r)
{
    memset(r, 0, sizeof(*r));
    r->n_done = t->state == TASK_DONE ? SIZE_MAX : 0;
    json_t *j = t->result ? json_loads(t->result, 0, NULL) : NULL;
    if (!j) {
        return;
    }
    json_t *sd = json_object_get(j, "script_done");
    const char *hex = json_string_value(json_object_get(j, "data"));
    if (json_is_integer(sd) && json_integer_value(sd) >= 0) {
        r->n_done = (size_t)json_integer_value(sd);
    } else if (t->channel == TASK_CH_SCP80 && hex && hex[0]) {
        int n = api_hex_decode(hex, data, 1, cap);
        struct plat_ctx ctx = {.model = m};
        struct plat_script s = {0};
        struct ota_err err;
        if (n > 0 && plat_build_ex(t->op, t->params, &ctx, &s, &err) == 0) {
            struct plat_result pr;
            if (plat_result_from_exp(&s, data, (size_t)n, rapdus, SES_RAPDUS_MAX, &pr, &err) == 0) {
                *r = pr;
            }
        }
        plat_script_fini(&s);
    }
    json_decref(j);
}

struct final_work {
    struct plat_model before, after;
    uint8_t data[4096];
    struct ota_rapdu_rapdu rapdus[SES_RAPDUS_MAX];
};

void gw_ses_task_final(struct gw *g, const struct eng_task_view *t)
{
    if (!g || !g->eng || !t || !plat_op(t->op) || !t->seid || !t->seid[0]) {
        return;
    }
    struct ota_err err;
    struct store *st = eng_store(g->eng);
    struct store_se se;
    if (store_se_find(st, t->seid, &se, &err) < 0) {
        return;
    }
    /* not kept in memory (after a restart): the row as staged in this batch */
    struct store_task row = {0};
    struct eng_task_view view = *t;
    if (!t->params || !t->result) {
        if (store_task_get(st, t->id, &row, &err) == 0) {
            view.params = t->params ? t->params : row.params ? row.params : "{}";
            view.result = t->result ? t->result : row.result;
        } else if (!t->params) {
            gw_log(g, GW_CONF_LOG_ERR, "se model not updated task=%lld se=%s err=\"%s\"",
                   (long long)t->id, t->seid, err.msg);
            return;
        }
    }
    t = &view;
    struct final_work *w = malloc(sizeof(*w));
    if (!w) {
        gw_log(g, GW_CONF_LOG_ERR, "se model not updated task=%lld se=%s err=\"out of memory\"",
               (long long)t->id, t->seid);
        store_task_fini(&row);
        return;
    }
    bool stored = false;
    int64_t upd = 0;
    int rc = model_load(g, se.id, &w->before, &stored, &upd, &err);
    if (rc < 0) {
        gw_log(g, GW_CONF_LOG_ERR, "se model unreadable task=%lld se=%s err=\"%s\"",
               (long long)t->id, t->seid, err.msg);
        free(w);
        store_task_fini(&row);
        return;
    }
    w->after = w->before;
    struct plat_result r;
    result_of(t, &w->before, w->data, sizeof(w->data), w->rapdus, &r);
    rc = plat_model_apply_result(&w->after, t->op, t->params, &r, &err);
    if (rc < 0 && rc != -EPERM) {
        /* -EPERM: the card did what the model thought illegal; the rest is applied */
        gw_log(g, GW_CONF_LOG_WARNING, "se model not updated task=%lld se=%s op=%s err=\"%s\"",
               (long long)t->id, t->seid, task_op_name(t->op), err.msg);
        free(w);
        store_task_fini(&row);
        return;
    }
    if (rc == -EPERM) {
        gw_log(g, GW_CONF_LOG_WARNING, "se model out of step task=%lld se=%s err=\"%s\"",
               (long long)t->id, t->seid, err.msg);
    }
    json_t *mj = plat_model_to_json(&w->after);
    json_t *bj = stored ? plat_model_to_json(&w->before) : NULL;
    bool same = bj && mj && json_equal(mj, bj);
    char *txt = mj && !same ? json_dumps(mj, JSON_COMPACT) : NULL;
    json_decref(mj);
    json_decref(bj);
    if (same) {
        free(w);
        store_task_fini(&row);
        return;
    }
    int64_t now = api_now_ms();
    rc = txt ? store_se_model_put(st, se.id, txt, now, &err)
             : ota_fail(&err, -ENOMEM, OTA_ERR_LIMIT, "model text: out of memory");
    if (rc < 0) {
        gw_log(g, GW_CONF_LOG_ERR, "se model not stored task=%lld se=%s err=\"%s\"",
               (long long)t->id, t->seid, err.msg);
        if (txt && rc != -EINVAL) {
            /* the store dropped the whole batch: nothing of it may be acknowledged */
            eng_fail_stop(g->eng, rc, &err);
        }
        free(txt);
        free(w);
        store_task_fini(&row);
        return;
    }
    free(txt);
    cache_put(g->ses, se.id, &w->after, true, now);
    free(w);
    store_task_fini(&row);
}

/* ---- common ------------------------------------------------------------------------ */

static const char *actor_of(struct http_req *req)
{
    const struct gw_principal *p = gw_req_principal(req);
    return p && p->name[0] ? p->name : "anonymous";
}

/* A staged write failed for a reason other than its input: the batch is gone, stop the engine. */
static bool write_broke(int rc)
{
    return rc < 0 && rc != -EINVAL && rc != -EEXIST && rc != -ENOENT && rc != -ERANGE;
}

/*
 * Writes go into the engine's batch: a stopped engine (a failed commit)
 * takes none, the daemon must restart. Answers 503 and returns true then.
 */
static bool engine_down(struct gw *g, struct http_req *req)
{
    struct eng_stats st;
    eng_stats(g->eng, &st);
    if (st.run == ENG_RUNNING) {
        return false;
    }
    (void)http_respond_error(req, 503, "engine-stopped", "the engine stopped; restart otagw");
    return true;
}

/* One request waiting for the commit of what it staged. */
struct pend {
    struct http_req *req;
    int status;
    json_t *body;
    char loc[96];
};

static void pend_committed(void *arg, int rc)
{
    struct pend *p = arg;
    if (rc < 0) {
        json_decref(p->body);
        (void)http_respond_error(p->req, 503, "commit-failed", "not stored: %s", strerror(-rc));
    } else {
        if (p->loc[0]) {
            (void)http_req_set_header(p->req, "Location", p->loc);
        }
        (void)http_respond_json(p->req, p->status, p->body);
    }
    free(p);
}

/* Answer body with status once the engine's next commit is done (steals body). */
static void answer_after_commit(struct gw *g, struct http_req *req, int status, json_t *body,
                                const char *loc)
{
    struct ota_err err;
    struct pend *p = calloc(1, sizeof(*p));
    if (!p || !body) {
        free(p);
        json_decref(body);
        (void)http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    p->req = req;
    p->status = status;
    p->body = body;
    if (loc) {
        snprintf(p->loc, sizeof(p->loc), "%s", loc);
    }
    int rc = eng_after_commit(g->eng, pend_committed, p, &err);
    if (rc < 0) {
        json_decref(body);
        free(p);
        gw_respond_err(req, rc, "commit-failed", &err);
    }
}

/* ---- POST /v1/ses ------------------------------------------------------------------ */

struct reg_out {
    int status;         /* 201 done, 4xx refused, 500/503 the store broke */
    const char *code;   /* error code when status >= 400 */
    const char *result; /* "registered", "unchanged", "rebound" */
    char msg[200];
    struct store_se se;
};

static void reg_fail(struct reg_out *o, int status, const char *code, const char *fmt, ...)
    OTA_PRINTF(4, 5);

static void reg_fail(struct reg_out *o, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
    va_end(ap);
    o->status = status;
    o->code = code;
}

/* A string member: NULL when absent; *bad when present but not a string. */
static const char *str_of(json_t *o, const char *name, bool *bad)
{
    json_t *v = json_object_get(o, name);
    if (!v) {
        return NULL;
    }
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

/*
 * Validate and stage one registration (spec 5.5.2). On a store failure that
 * dropped the batch, *broke gets the errno (the caller stops the engine).
 */
static void reg_one(struct gw *g, struct http_req *req, json_t *item, struct reg_out *o, int *broke,
                    struct ota_err *berr)
{
    struct ota_err err;
    struct store *st = eng_store(g->eng);
    memset(o, 0, sizeof(*o));
    if (!json_is_object(item)) {
        reg_fail(o, 400, "bad-json", "an SE is a JSON object");
        return;
    }
    static const char *const allowed[] = {"seid", "msisdn", "batch", NULL};
    const char *unk = api_unknown_member(item, allowed);
    if (unk) {
        reg_fail(o, 400, "unknown-field", "%.64s: unknown member", unk);
        return;
    }
    /* the codes of api_str_member, which the single-SE form has always answered with */
    static const char *const names[] = {"seid", "msisdn", "batch"};
    const char *vals[3];
    for (size_t i = 0; i < 3; i++) {
        bool bad = false;
        vals[i] = str_of(item, names[i], &bad);
        if (bad) {
            reg_fail(o, 400, "bad-type", "%s: must be a string", names[i]);
            return;
        }
        if (!vals[i] && i < 2) {
            reg_fail(o, 400, "missing-field", "%s: required", names[i]);
            return;
        }
    }
    const char *seid = vals[0], *msisdn = vals[1], *batch = vals[2];
    if (!api_seid_ok(seid)) {
        reg_fail(o, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    snprintf(o->se.seid, sizeof(o->se.seid), "%s", seid);
    if (!api_digits_ok(msisdn, 1, 21)) {
        reg_fail(o, 400, "bad-msisdn", "msisdn: 1..21 digits");
        return;
    }
    if (!batch) {
        batch = "";
    }
    if (!api_batch_ok(batch)) {
        reg_fail(o, 400, "bad-batch", "batch: 0..32 printable ASCII characters");
        return;
    }
    struct store_loss l;
    int rc = store_loss_match(st, seid, msisdn, &l, &err);
    if (rc == 0) {
        reg_fail(o, 409, "loss-listed", "%s %s is on the loss list (entry %lld)",
                 l.kind == STORE_LOSS_SEID ? "seid" : "msisdn", l.value, (long long)l.id);
        return;
    }
    if (rc != -ENOENT) {
        reg_fail(o, 500, "internal", "%s", err.msg);
        return;
    }
    rc = store_se_find(st, seid, &o->se, &err);
    if (rc == -ENOENT) {
        int64_t id = 0;
        rc = store_se_put(st, seid, msisdn, batch, &id, &err);
        if (rc < 0) {
            if (write_broke(rc)) {
                *broke = rc;
                *berr = err;
            }
            reg_fail(o, write_broke(rc) ? 503 : 400,
                     write_broke(rc) ? "commit-failed" : "se-register", "%s", err.msg);
            return;
        }
        o->se.id = id;
        snprintf(o->se.msisdn, sizeof(o->se.msisdn), "%s", msisdn);
        snprintf(o->se.batch, sizeof(o->se.batch), "%s", batch);
        o->se.unbound_ms = 0;
        o->status = 201;
        o->result = "registered";
        return;
    }
    if (rc < 0) {
        reg_fail(o, 500, "internal", "%s", err.msg);
        return;
    }
    if (o->se.unbound_ms == 0) {
        if (strcmp(o->se.msisdn, msisdn) != 0) {
            reg_fail(o, 409, "se-msisdn-conflict", "seid %s is bound to another MSISDN", seid);
            return;
        }
        o->status = 201;
        o->result = "unchanged"; /* a repeated registration keeps the first batch */
        return;
    }
    /* unbound: bound again to the MSISDN given (spec 5.5.2 flow 3b) */
    char target[80];
    snprintf(target, sizeof(target), "se:%s", seid);
    if (gw_audit(g, actor_of(req), "se.bind", target, "msisdn=%s", msisdn) < 0) {
        reg_fail(o, 503, "audit-failed", "the audit entry could not be written");
        return;
    }
    rc = store_se_bind(st, o->se.id, msisdn, &err);
    if (rc < 0) {
        if (write_broke(rc)) {
            *broke = rc;
            *berr = err;
        }
        reg_fail(o, write_broke(rc) ? 503 : 400, write_broke(rc) ? "commit-failed" : "se-register",
                 "%s", err.msg);
        return;
    }
    snprintf(o->se.msisdn, sizeof(o->se.msisdn), "%s", msisdn);
    o->se.unbound_ms = 0;
    o->status = 201;
    o->result = "rebound";
    gw_log(g, GW_CONF_LOG_INFO, "se rebound se=%s msisdn=%s", seid, msisdn);
}

/* The single form answers {seid, msisdn, batch} as it always has; list items add status, result. */
static json_t *reg_json(const struct reg_out *o, bool list_item)
{
    json_t *j;
    if (o->status >= 400) {
        j = json_pack("{s:s, s:{s:s, s:s, s:i}}", "seid", o->se.seid, "error", "code", o->code,
                      "message", o->msg, "status", o->status);
    } else {
        j = json_pack("{s:s, s:s, s:s}", "seid", o->se.seid, "msisdn", o->se.msisdn, "batch",
                      o->se.batch);
        if (j && list_item) {
            json_object_set_new(j, "result", json_string(o->result));
        }
    }
    if (j && list_item) {
        json_object_set_new(j, "status", json_integer(o->status));
    }
    return j;
}

static void route_se_register(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    json_t *body = http_req_json(req, &err);
    if (!body) {
        (void)http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    if (engine_down(g, req)) {
        return;
    }
    int broke = 0;
    struct ota_err berr = {0};
    json_t *list = json_object_get(body, "ses");
    if (!list) {
        struct reg_out o;
        reg_one(g, req, body, &o, &broke, &berr);
        if (broke) {
            eng_fail_stop(g->eng, broke, &berr);
        }
        if (o.status >= 400) {
            (void)http_respond_error(req, o.status, o.code, "%s", o.msg);
            return;
        }
        char loc[96];
        snprintf(loc, sizeof(loc), "/v1/ses/%s", o.se.seid);
        answer_after_commit(g, req, 201, reg_json(&o, false), loc);
        return;
    }
    if (json_object_size(body) != 1) {
        (void)http_respond_error(req, 400, "unknown-field", "a list request has only \"ses\"");
        return;
    }
    size_t n = json_array_size(list);
    if (!json_is_array(list) || n < 1 || n > SES_LIST_MAX) {
        (void)http_respond_error(req, 400, "invalid-field", "ses: an array of 1..%d SEs",
                                 SES_LIST_MAX);
        return;
    }
    json_t *results = json_array();
    size_t ok = 0;
    for (size_t i = 0; i < n && results; i++) {
        struct reg_out o;
        if (broke) {
            /* the batch is gone: nothing after the failure is tried */
            memset(&o, 0, sizeof(o));
            reg_fail(&o, 503, "commit-failed", "not tried: the store failed");
        } else {
            reg_one(g, req, json_array_get(list, i), &o, &broke, &berr);
        }
        ok += o.status < 400;
        json_array_append_new(results, reg_json(&o, true));
    }
    if (broke) {
        eng_fail_stop(g->eng, broke, &berr);
        json_decref(results);
        (void)http_respond_error(req, 503, "commit-failed", "%s", berr.msg);
        return;
    }
    json_t *ans = json_pack("{s:o, s:I, s:I}", "results", results, "registered", (json_int_t)ok,
                            "refused", (json_int_t)(n - ok));
    /* 200: the per-item statuses tell; answered after the commit that holds them */
    answer_after_commit(g, req, 200, ans, NULL);
}

/* ---- GET /v1/ses/{seid} ------------------------------------------------------------ */

/*
 * A task of the SE as the caller may see it (issue #7 ownership, as in
 * api_tasks.c): staff see every task; a platform only those whose
 * params.owner names it. NULL for one the caller may not see.
 */
static json_t *task_json(struct gw *g, struct http_req *req, int64_t id)
{
    struct eng_task_view v;
    struct ota_err err;
    if (eng_task_get(g->eng, id, &v, &err) < 0) {
        return json_pack("{s:I}", "id", (json_int_t)id);
    }
    const struct gw_principal *p = gw_req_principal(req);
    if (!gw_principal_owns(p, NULL)) {
        json_t *o = v.params ? json_loads(v.params, 0, NULL) : NULL;
        json_t *ow = json_object_get(o, "owner");
        bool mine = json_is_string(ow) && gw_principal_owns(p, json_string_value(ow));
        json_decref(o);
        if (!mine) {
            return NULL;
        }
    }
    return json_pack("{s:I, s:s, s:s, s:s, s:i, s:i, s:o}", "id", (json_int_t)v.id, "op",
                     task_op_name(v.op), "channel", v.channel == TASK_CH_PUSH ? "push" : "scp80",
                     "state", task_state_name(v.state), "prio", (int)v.prio, "attempts",
                     (int)v.attempts, "created_at", api_time_json(v.created_ms));
}

static json_t *loss_json(const struct store_loss *l)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:o}", "id", (json_int_t)l->id, "kind",
                     l->kind == STORE_LOSS_SEID ? "seid" : "msisdn", "value", l->value, "reason",
                     l->reason, "created_at", api_time_json(l->created_ms));
}

/*
 * The model as the SE view shows it (spec 5.5.1, 5.8.7.1): apps with their
 * 5.8.7.2 state and the space recorded for them (load file + instance
 * data), load files, SDs with the key version last put, and the free space.
 */
/* The key version the key store records as current on the SE for an SD; JSON null when none. */
static json_t *sd_kvn_json(struct gw *g, const char *seid, const uint8_t *aid, size_t aid_len)
{
    uint8_t kvn = 0;
    struct ota_err err;
    if (!g->keys || gw_keys_current(g->keys, seid, GW_KEYS_KIND_SD, aid, aid_len, &kvn, &err) < 0) {
        return json_null();
    }
    return json_integer(kvn);
}

static json_t *model_view(struct gw *g, const char *seid, const struct plat_model *m, bool stored,
                          int64_t updated_ms)
{
    json_t *mj = plat_model_to_json(m);
    if (!mj) {
        return NULL;
    }
    /* "kvn": the last PUT KEY the model saw; "key_version": what the key store holds current */
    json_t *sds = json_object_get(mj, "sds");
    for (size_t k = 0; k < m->n_sds && k < json_array_size(sds); k++) {
        json_object_set_new(json_array_get(sds, k), "key_version",
                            sd_kvn_json(g, seid, m->sds[k].aid.b, m->sds[k].aid.len));
    }
    json_t *apps = json_object_get(mj, "apps");
    size_t i;
    json_t *a;
    uint64_t recorded = 0;
    json_array_foreach(apps, i, a)
    {
        uint64_t size = i < m->n_apps ? m->apps[i].nv_reserved : 0;
        if (i < m->n_apps) {
            const struct plat_model_elf *e =
                plat_model_elf(m, m->apps[i].elf.b, m->apps[i].elf.len);
            size += e && m->apps[i].elf.len ? e->size : 0;
        }
        recorded += size;
        json_object_set_new(a, "size", json_integer((json_int_t)size));
    }
    json_t *space = json_pack(
        "{s:b, s:O, s:O, s:O, s:O, s:I}", "known", m->space_known, "free_nv",
        json_object_get(mj, "free_nv") ? json_object_get(mj, "free_nv") : json_null(), "free_v",
        json_object_get(mj, "free_v") ? json_object_get(mj, "free_v") : json_null(), "reserved_nv",
        json_object_get(mj, "reserved_nv"), "reserved_v", json_object_get(mj, "reserved_v"),
        "recorded_apps", (json_int_t)recorded);
    json_t *v = json_pack("{s:O, s:O, s:O, s:o, s:o, s:b, s:o}", "apps", apps, "load_files",
                          json_object_get(mj, "elfs"), "sds", sds, "isd_key_version",
                          sd_kvn_json(g, seid, plat_isd_aid, sizeof(plat_isd_aid)), "space", space,
                          "model_known", stored, "model_updated_at", api_time_json(updated_ms));
    json_decref(mj);
    return v;
}

static void route_se_get(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    const char *seid = http_req_param(req, "seid");
    if (!seid || !api_seid_ok(seid)) {
        (void)http_respond_error(req, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    struct store *st = eng_store(g->eng);
    struct store_se se;
    int rc = store_se_find(st, seid, &se, &err);
    if (rc == -ENOENT) {
        (void)http_respond_error(req, 404, "se-not-found", "SE %s is not registered", seid);
        return;
    }
    if (rc < 0) {
        gw_respond_err(req, rc, "se-lookup", &err);
        return;
    }
    struct plat_model *m = malloc(sizeof(*m));
    if (!m) {
        (void)http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    bool stored = false;
    int64_t upd = 0;
    rc = model_load(g, se.id, m, &stored, &upd, &err);
    if (rc < 0) {
        free(m);
        gw_respond_err(req, rc, "se-model", &err);
        return;
    }
    json_t *model = model_view(g, se.seid, m, stored, upd);
    free(m);
    int64_t active = 0, queued[SES_QUEUED_MAX];
    size_t n_queued = 0;
    rc = eng_se_tasks(g->eng, seid, &active, queued, SES_QUEUED_MAX, &n_queued, &err);
    if (rc < 0 || !model) {
        json_decref(model);
        gw_respond_err(req, rc < 0 ? rc : -ENOMEM, "se-tasks", rc < 0 ? &err : NULL);
        return;
    }
    /* other owners' tasks are counted, not shown: they still run before the caller's */
    json_t *q = json_array();
    size_t hidden_queued = 0;
    for (size_t i = 0; i < n_queued && i < SES_QUEUED_MAX; i++) {
        json_t *t = task_json(g, req, queued[i]);
        if (t) {
            json_array_append_new(q, t);
        } else {
            hidden_queued++;
        }
    }
    json_t *act = active ? task_json(g, req, active) : json_null();
    size_t others = hidden_queued + (active && !act);
    struct store_loss l;
    json_t *loss =
        store_loss_match(st, se.seid, se.msisdn, &l, &err) == 0 ? loss_json(&l) : json_null();
    json_t *body = json_pack(
        "{s:s, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:I}", "seid", se.seid, "msisdn",
        se.unbound_ms ? json_null() : json_string(se.msisdn), "batch", se.batch, "binding",
        se.unbound_ms ? "unbound" : "bound", "unbound_at", api_time_json(se.unbound_ms),
        "loss_listed", loss, "active_task", act ? act : json_null(), "queued_tasks", q,
        "queued_total", (json_int_t)(n_queued - hidden_queued), "other_tasks", (json_int_t)others);
    if (body) {
        json_object_update(body, model);
    }
    json_decref(model);
    (void)http_respond_json(req, 200, body);
}

/* ---- POST /v1/ses/{seid}/unbind -------------------------------------------------------- */

/* An optional JSON object body with only an optional "reason"; answers 400 itself. */
static bool reason_body(struct http_req *req, const char **reason)
{
    size_t len = 0;
    (void)http_req_body(req, &len);
    *reason = "";
    if (len == 0) {
        return true;
    }
    struct ota_err err;
    json_t *b = http_req_json(req, &err);
    if (!b) {
        (void)http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return false;
    }
    static const char *const allowed[] = {"reason", NULL};
    const char *unk = api_unknown_member(b, allowed);
    if (unk) {
        (void)http_respond_error(req, 400, "unknown-field", "%.64s: unknown member", unk);
        return false;
    }
    bool answered = false;
    const char *r = api_str_member(req, b, "reason", false, &answered);
    if (answered) {
        return false;
    }
    if (r && !api_printable(r, 0, SES_REASON_MAX)) {
        (void)http_respond_error(req, 400, "invalid-field", "reason: 0..%d printable characters",
                                 SES_REASON_MAX);
        return false;
    }
    *reason = r ? r : "";
    return true;
}

static void route_se_unbind(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    const char *seid = http_req_param(req, "seid");
    if (!seid || !api_seid_ok(seid)) {
        (void)http_respond_error(req, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    const char *reason;
    if (!reason_body(req, &reason)) {
        return;
    }
    struct store *st = eng_store(g->eng);
    struct store_se se;
    int rc = store_se_find(st, seid, &se, &err);
    if (rc < 0) {
        if (rc == -ENOENT) {
            (void)http_respond_error(req, 404, "se-not-found", "SE %s is not registered", seid);
        } else {
            gw_respond_err(req, rc, "se-lookup", &err);
        }
        return;
    }
    if (se.unbound_ms) {
        (void)http_respond_error(req, 409, "se-unbound", "SE %s is unbound already", seid);
        return;
    }
    if (engine_down(g, req)) {
        return;
    }
    char target[80];
    snprintf(target, sizeof(target), "se:%s", seid);
    if (gw_audit(g, actor_of(req), "se.unbind", target, "msisdn=%s reason=\"%s\"", se.msisdn,
                 reason) < 0) {
        (void)http_respond_error(req, 503, "audit-failed", "the audit entry could not be written");
        return;
    }
    int64_t now = api_now_ms();
    rc = store_se_unbind(st, se.id, now, &err);
    if (rc < 0) {
        if (write_broke(rc)) {
            eng_fail_stop(g->eng, rc, &err);
        }
        gw_respond_err(req, write_broke(rc) ? -EIO : rc, "se-unbind", &err);
        return;
    }
    gw_log(g, GW_CONF_LOG_NOTICE, "se unbound se=%s msisdn=%s", seid, se.msisdn);
    answer_after_commit(g, req, 200,
                        json_pack("{s:s, s:s, s:s, s:o}", "seid", seid, "binding", "unbound",
                                  "former_msisdn", se.msisdn, "unbound_at", api_time_json(now)),
                        NULL);
}

/* ---- the loss list ------------------------------------------------------------------- */

static void route_loss_add(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    json_t *body = http_req_json(req, &err);
    if (!body) {
        (void)http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const allowed[] = {"seid", "msisdn", "reason", NULL};
    const char *unk = api_unknown_member(body, allowed);
    if (unk) {
        (void)http_respond_error(req, 400, "unknown-field", "%.64s: unknown member", unk);
        return;
    }
    bool answered = false;
    const char *seid = api_str_member(req, body, "seid", false, &answered);
    const char *msisdn = answered ? NULL : api_str_member(req, body, "msisdn", false, &answered);
    const char *reason = answered ? NULL : api_str_member(req, body, "reason", false, &answered);
    if (answered) {
        return;
    }
    if (!seid == !msisdn) {
        (void)http_respond_error(req, 400, "invalid-field", "exactly one of seid, msisdn");
        return;
    }
    if (seid && !api_seid_ok(seid)) {
        (void)http_respond_error(req, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    if (msisdn && !api_digits_ok(msisdn, 1, 21)) {
        (void)http_respond_error(req, 400, "bad-msisdn", "msisdn: 1..21 digits");
        return;
    }
    if (!reason) {
        reason = "";
    }
    if (!api_printable(reason, 0, SES_REASON_MAX)) {
        (void)http_respond_error(req, 400, "invalid-field", "reason: 0..%d printable characters",
                                 SES_REASON_MAX);
        return;
    }
    struct store *st = eng_store(g->eng);
    enum store_loss_kind kind = seid ? STORE_LOSS_SEID : STORE_LOSS_MSISDN;
    const char *value = seid ? seid : msisdn;
    struct store_loss l;
    int rc = store_loss_match(st, seid, msisdn, &l, &err);
    if (rc == 0 && l.kind == kind) {
        (void)http_respond_error(req, 409, "already-listed", "%s is listed already (entry %lld)",
                                 value, (long long)l.id);
        return;
    }
    if (engine_down(g, req)) {
        return;
    }
    char target[80];
    snprintf(target, sizeof(target), "%s:%s", seid ? "se" : "msisdn", value);
    if (gw_audit(g, actor_of(req), "loss.add", target, "reason=\"%s\"", reason) < 0) {
        (void)http_respond_error(req, 503, "audit-failed", "the audit entry could not be written");
        return;
    }
    int64_t now = api_now_ms(), id = 0;
    rc = store_loss_put(st, kind, value, reason, now, &id, &err);
    if (rc == -EEXIST) {
        (void)http_respond_error(req, 409, "already-listed", "%s", err.msg);
        return;
    }
    if (rc < 0) {
        if (write_broke(rc)) {
            eng_fail_stop(g->eng, rc, &err);
        }
        gw_respond_err(req, write_broke(rc) ? -EIO : rc, "loss-add", &err);
        return;
    }
    gw_log(g, GW_CONF_LOG_NOTICE, "loss list add id=%lld kind=%s value=%s", (long long)id,
           seid ? "seid" : "msisdn", value);
    struct store_loss nl = {.id = id, .kind = kind, .created_ms = now};
    snprintf(nl.value, sizeof(nl.value), "%s", value);
    snprintf(nl.reason, sizeof(nl.reason), "%s", reason);
    char loc[64];
    snprintf(loc, sizeof(loc), "/v1/loss-list/%lld", (long long)id);
    answer_after_commit(g, req, 201, loss_json(&nl), loc);
}

static void route_loss_del(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    int64_t id = 0;
    const char *ids = http_req_param(req, "id");
    if (!ids || !api_parse_id(ids, &id)) {
        (void)http_respond_error(req, 400, "bad-id", "id: a positive decimal integer");
        return;
    }
    struct store *st = eng_store(g->eng);
    struct store_loss l;
    int rc = store_loss_get(st, id, &l, &err);
    if (rc == -ENOENT) {
        (void)http_respond_error(req, 404, "not-found", "no loss-list entry %lld", (long long)id);
        return;
    }
    if (rc < 0) {
        gw_respond_err(req, rc, "loss-get", &err);
        return;
    }
    if (engine_down(g, req)) {
        return;
    }
    char target[80];
    snprintf(target, sizeof(target), "%s:%s", l.kind == STORE_LOSS_SEID ? "se" : "msisdn", l.value);
    if (gw_audit(g, actor_of(req), "loss.remove", target, "entry=%lld", (long long)id) < 0) {
        (void)http_respond_error(req, 503, "audit-failed", "the audit entry could not be written");
        return;
    }
    rc = store_loss_del(st, id, &err);
    if (rc < 0) {
        if (write_broke(rc)) {
            eng_fail_stop(g->eng, rc, &err);
        }
        gw_respond_err(req, write_broke(rc) ? -EIO : rc, "loss-remove", &err);
        return;
    }
    gw_log(g, GW_CONF_LOG_NOTICE, "loss list remove id=%lld value=%s", (long long)id, l.value);
    answer_after_commit(g, req, 200, loss_json(&l), NULL);
}

static int loss_collect(void *arg, const struct store_loss *l)
{
    json_t *arr = arg;
    return json_array_append_new(arr, loss_json(l)) == 0 ? 0 : -ENOMEM;
}

static void route_loss_list(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    int64_t after = 0, limit = SES_LOSS_PAGE;
    const char *a = http_req_query(req, "after");
    const char *lim = http_req_query(req, "limit");
    if (a && !api_parse_id(a, &after)) {
        (void)http_respond_error(req, 400, "invalid-query", "after: a positive decimal integer");
        return;
    }
    if (lim && (!api_parse_id(lim, &limit) || limit > SES_LOSS_PAGE_MAX)) {
        (void)http_respond_error(req, 400, "invalid-query", "limit: 1..%d", SES_LOSS_PAGE_MAX);
        return;
    }
    json_t *arr = json_array();
    if (!arr) {
        (void)http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    int rc = store_loss_list(eng_store(g->eng), after, (size_t)limit, loss_collect, arr, &err);
    if (rc < 0) {
        json_decref(arr);
        gw_respond_err(req, rc, "loss-list", &err);
        return;
    }
    size_t n = json_array_size(arr);
    json_t *next = n == (size_t)limit && n > 0
                       ? json_incref(json_object_get(json_array_get(arr, n - 1), "id"))
                       : json_null();
    (void)http_respond_json(req, 200, json_pack("{s:o, s:o}", "entries", arr, "next_after", next));
}

int gw_api_ses_routes(struct gw *g, struct ota_err *err)
{
    static const struct {
        const char *method, *pattern;
        unsigned roles;
        http_handler h;
    } routes[] = {
        {"POST", "/v1/ses", GW_ROLES_STAFF | GW_ROLE_PLATFORM, route_se_register},
        {"GET", "/v1/ses/{seid}", GW_ROLES_STAFF | GW_ROLE_PLATFORM, route_se_get},
        {"POST", "/v1/ses/{seid}/unbind", GW_ROLES_STAFF, route_se_unbind},
        {"POST", "/v1/loss-list", GW_ROLES_STAFF, route_loss_add},
        {"GET", "/v1/loss-list", GW_ROLES_STAFF, route_loss_list},
        {"DELETE", "/v1/loss-list/{id}", GW_ROLES_STAFF, route_loss_del},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int rc =
            gw_route(g, routes[i].method, routes[i].pattern, routes[i].roles, routes[i].h, g, err);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}
