/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Business API, tasks and jobs (/v1/tasks, /v1/jobs, /v1/stats,
 * /v1/openapi.json) over the task engine. Request bodies are validated
 * strictly (unknown fields refused, types exact, the field named in the
 * 400) before anything reaches the engine; the engine's own checks (params
 * of SCP80 tasks, SE registered) come back as 400 / 404 with its message.
 *
 * A submit is answered from the engine's accept callback, i.e. only after
 * the batch holding the task is committed. The Idempotency-Key record is
 * staged in that same batch, so the task and the record that names it
 * become durable together or not at all.
 *
 * GET /v1/tasks: with seid= alone, the SE's active and queued tasks (spec
 * 5.8.8, from the engine); with any other filter (state, job, created_from,
 * created_to, before, limit) or without seid, the general list from the
 * store, newest first, paged by id (next_before).
 *
 * Operator actions (cancel, terminate, job pause / resume / cancel / rate)
 * are committed (eng_flush) before they are answered.
 *
 * callback_url is validated and kept in the task's params; when the task is
 * final, gateway/callbacks.c POSTs its result there (docs/callbacks.md).
 *
 * Idempotency-Key (1..128 printable ASCII): the request is identified by
 * SHA-256 over "METHOD path\n" + the body re-serialised canonically (keys
 * sorted, compact), so whitespace and key order do not matter. A key seen
 * with the same request: the stored answer is replayed (same status and
 * body, header Idempotent-Replayed: true), nothing is created. With another
 * request: 409 idempotency-conflict. While the first request with a key
 * waits for its commit, a retry gets 409 idempotency-in-progress (the
 * answer it would replay is not durable yet). Only successful submits are
 * recorded; a refused request may be retried with the same key. Records
 * are kept 7 days (pruned at most hourly from a submit).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api_util.h"
#include "gateway/audit.h"
#include "gateway/auth.h"
#include "gateway/gw.h"
#include "gateway/metrics.h"

#define SE_TASKS_CAP 1000
#define SCHEDULE_MAX_S (366LL * 86400) /* as far ahead as the engine accepts */
#define DEADLINE_MAX_S (366LL * 86400 * 2)
#define RATE_MAX 1e6
#define STEPS_MAX 64
#define IDEM_KEEP_MS (7LL * 86400 * 1000) /* Idempotency-Key records older than this go */
#define IDEM_PRUNE_EVERY_MS (3600LL * 1000)

/* ---- route table ---------------------------------------------------------------------- */

static void h_task_post(struct http_req *req, void *arg);
static void h_task_list(struct http_req *req, void *arg);
static void h_task_get(struct http_req *req, void *arg);
static void h_task_cancel(struct http_req *req, void *arg);
static void h_task_terminate(struct http_req *req, void *arg);
static void h_job_post(struct http_req *req, void *arg);
static void h_job_get(struct http_req *req, void *arg);
static void h_job_pause(struct http_req *req, void *arg);
static void h_job_resume(struct http_req *req, void *arg);
static void h_job_cancel(struct http_req *req, void *arg);
static void h_job_rate(struct http_req *req, void *arg);
static void h_stats(struct http_req *req, void *arg);
static void h_openapi(struct http_req *req, void *arg);

struct route {
    const char *method, *pattern, *name; /* name: "METHOD pattern" for the list */
    http_handler h;
    unsigned roles; /* enum gw_role bits allowed (gateway/auth.h) */
};

#define ROUTE(m, p, h, r)                                                                          \
    {                                                                                              \
        m, p, m " " p, h, r                                                                        \
    }
#define BIZ (GW_ROLES_STAFF | GW_ROLE_PLATFORM)
static const struct route routes[] = {
    ROUTE("POST", "/v1/tasks", h_task_post, BIZ),
    ROUTE("GET", "/v1/tasks", h_task_list, BIZ),
    ROUTE("GET", "/v1/tasks/{id}", h_task_get, BIZ),
    ROUTE("POST", "/v1/tasks/{id}/cancel", h_task_cancel, BIZ),
    ROUTE("POST", "/v1/tasks/{id}/terminate", h_task_terminate, BIZ),
    ROUTE("POST", "/v1/jobs", h_job_post, BIZ),
    ROUTE("GET", "/v1/jobs/{id}", h_job_get, BIZ),
    ROUTE("POST", "/v1/jobs/{id}/pause", h_job_pause, BIZ),
    ROUTE("POST", "/v1/jobs/{id}/resume", h_job_resume, BIZ),
    ROUTE("POST", "/v1/jobs/{id}/cancel", h_job_cancel, BIZ),
    ROUTE("PUT", "/v1/jobs/{id}/rate", h_job_rate, BIZ),
    ROUTE("GET", "/v1/stats", h_stats, GW_ROLES_STAFF),
    ROUTE("GET", "/v1/openapi.json", h_openapi, GW_ROLES_PUBLIC),
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

const char *const *gw_api_tasks_route_list(size_t *n)
{
    static const char *names[N_ROUTES];
    for (size_t i = 0; i < N_ROUTES; i++) {
        names[i] = routes[i].name;
    }
    *n = N_ROUTES;
    return names;
}

int gw_api_tasks_routes(struct gw *g, struct ota_err *err)
{
    for (size_t i = 0; i < N_ROUTES; i++) {
        int rc =
            gw_route(g, routes[i].method, routes[i].pattern, routes[i].roles, routes[i].h, g, err);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- submits waiting for their commit ---------------------------------------------------- */

/*
 * One per submit between eng_submit and its accept callback. The list is
 * per process (struct gw has no slot for it): it only answers "is this
 * Idempotency-Key in flight", and one process runs one gateway.
 */
struct pend {
    struct pend *next;
    struct gw *g;
    struct http_req *req;
    char key[STORE_IDEM_KEY_MAX + 1]; /* "" = none */
    json_t *body;                     /* the 201 answer */
};

static struct pend *pend_head;

static bool pend_has_key(const char *key)
{
    for (struct pend *p = pend_head; p; p = p->next) {
        if (p->key[0] && strcmp(p->key, key) == 0) {
            return true;
        }
    }
    return false;
}

static void pend_unlink(struct pend *x)
{
    for (struct pend **pp = &pend_head; *pp; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            return;
        }
    }
}

static void on_accept(void *arg, int64_t id, int rc)
{
    struct pend *p = arg;
    pend_unlink(p);
    (void)id;
    if (rc == 0) {
        http_respond_json(p->req, 201, p->body);
        p->body = NULL;
    } else {
        http_respond_error(p->req, 503, "commit-failed",
                           "the batch holding the submit failed (%d); nothing was created", rc);
    }
    json_decref(p->body);
    free(p);
}

/* ---- idempotency ------------------------------------------------------------------------- */

struct idem {
    bool on;
    char key[STORE_IDEM_KEY_MAX + 1];
    uint8_t hash[32];
};

static void pend_link(struct pend *p, struct gw *g, struct http_req *req, const struct idem *id)
{
    p->g = g;
    p->req = req;
    snprintf(p->key, sizeof(p->key), "%s", id->on ? id->key : "");
    p->next = pend_head;
    pend_head = p;
}

/*
 * Read the key and check it against the store. Returns true when the
 * request was answered here (bad key, replay, conflict, in progress).
 */
static bool idem_begin(struct gw *g, struct http_req *req, json_t *body, const char *what,
                       struct idem *id)
{
    memset(id, 0, sizeof(*id));
    const char *k = http_req_header(req, "idempotency-key");
    if (!k) {
        return false;
    }
    if (!api_printable(k, 1, STORE_IDEM_KEY_MAX)) {
        http_respond_error(req, 400, "bad-idempotency-key",
                           "Idempotency-Key: 1..%d printable ASCII characters", STORE_IDEM_KEY_MAX);
        return true;
    }
    /* staff keys are stored as given: they must not be able to name a derived record */
    if (api_idem_key_reserved(k)) {
        http_respond_error(req, 400, "bad-idempotency-key",
                           "Idempotency-Key: may not start with \"" API_IDEM_PLATFORM_PREFIX
                           "\" or \"" API_IDEM_ANTITHEFT_PREFIX "\" (reserved)");
        return true;
    }
    id->on = true;
    snprintf(id->key, sizeof(id->key), "%s", k);
    /* issue #7: each platform its own key space, so another's key neither replays nor conflicts */
    const char *owner = gw_principal_owner(gw_req_principal(req));
    if (owner &&
        api_idem_key_derive(API_IDEM_PLATFORM_PREFIX, owner, k, id->key, sizeof(id->key)) < 0) {
        http_respond_error(req, 500, "internal", "hash failed");
        return true;
    }
    char *canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (!canon) {
        http_respond_error(req, 500, "internal", "out of memory");
        return true;
    }
    size_t wl = strlen(what), cl = strlen(canon);
    char *buf = malloc(wl + 1 + cl);
    if (!buf) {
        free(canon);
        http_respond_error(req, 500, "internal", "out of memory");
        return true;
    }
    memcpy(buf, what, wl);
    buf[wl] = '\n';
    memcpy(buf + wl + 1, canon, cl);
    int hr = api_sha256(buf, wl + 1 + cl, id->hash);
    free(buf);
    free(canon);
    if (hr < 0) {
        http_respond_error(req, 500, "internal", "hash failed");
        return true;
    }
    if (pend_has_key(id->key)) {
        http_req_set_header(req, "Retry-After", "1");
        http_respond_error(req, 409, "idempotency-in-progress",
                           "a request with this Idempotency-Key is still being committed");
        return true;
    }
    uint8_t stored[32];
    int status = 0;
    char *resp = NULL;
    struct ota_err err;
    int rc = store_idem_get(eng_store(g->eng), id->key, stored, &status, &resp, NULL, &err);
    if (rc == -ENOENT) {
        return false;
    }
    if (rc < 0) {
        api_respond_rc(req, rc, "internal", &err);
        return true;
    }
    if (memcmp(stored, id->hash, 32) != 0) {
        free(resp);
        http_respond_error(req, 409, "idempotency-conflict",
                           "Idempotency-Key was used with a different request");
        return true;
    }
    http_req_set_header(req, "Idempotent-Replayed", "true");
    http_respond_raw(req, status, "application/json", resp, strlen(resp));
    free(resp);
    return true;
}

/*
 * Stage the record next to the submit (same batch). A failure here leaves
 * a batch we cannot vouch for: stop the engine (crash-only, as the engine
 * does for its own staging failures) so nothing of it is acknowledged.
 */
static int idem_stage(struct gw *g, const struct idem *id, json_t *answer, struct ota_err *err)
{
    if (!id->on) {
        return 0;
    }
    char *txt = json_dumps(answer, JSON_COMPACT);
    if (!txt) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
    }
    int rc = store_idem_put(eng_store(g->eng), id->key, id->hash, 201, txt, api_now_ms(), err);
    free(txt);
    if (rc < 0) {
        eng_fail_stop(g->eng, rc, err);
    }
    return rc;
}

/*
 * Drop old Idempotency-Key records, at most once an hour, from a submit
 * (staged in its batch; no timer of our own to tear down). A failure stops
 * the engine for the same reason as in idem_stage.
 */
static int idem_prune(struct gw *g, struct ota_err *err)
{
    static int64_t last_ms;
    int64_t now = api_now_ms();
    if (now - last_ms < IDEM_PRUNE_EVERY_MS) {
        return 0;
    }
    last_ms = now;
    int rc = store_idem_prune(eng_store(g->eng), now - IDEM_KEEP_MS, NULL, err);
    if (rc < 0) {
        eng_fail_stop(g->eng, rc, err);
    }
    return rc;
}

/* ---- JSON input ---------------------------------------------------------------------------- */

static int bad(struct ota_err *err, const char *field, const char *what)
{
    return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s: %s", field, what);
}

/*
 * The parsers below tag their errors with an ota_errc that field_code()
 * turns into the stable error code (the same codes as gateway/api_ses.c):
 * TAG unknown-field, MISSING missing-field, ARG bad-type, LENGTH bad-seid,
 * everything else invalid-field.
 */
static int bad_type(struct ota_err *err, const char *field, const char *what)
{
    return ota_fail(err, -EINVAL, OTA_ERR_ARG, "%s: must be %s", field, what);
}

static int missing(struct ota_err *err, const char *field)
{
    return ota_fail(err, -EINVAL, OTA_ERR_MISSING, "%s: required", field);
}

static const char *field_code(const struct ota_err *err)
{
    switch (err->code) {
    case OTA_ERR_TAG:
        return "unknown-field";
    case OTA_ERR_MISSING:
        return "missing-field";
    case OTA_ERR_ARG:
        return "bad-type";
    case OTA_ERR_LENGTH:
        return "bad-seid";
    default:
        return "invalid-field";
    }
}

static bool in_list(const char *k, const char *const *allowed)
{
    for (; *allowed; allowed++) {
        if (strcmp(k, *allowed) == 0) {
            return true;
        }
    }
    return false;
}

static int only_fields(json_t *o, const char *where, const char *const *allowed,
                       struct ota_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!in_list(k, allowed)) {
            return ota_fail(err, -EINVAL, OTA_ERR_TAG, "%s%.64s: unknown field", where, k);
        }
    }
    return 0;
}

/* Optional integer field in lo..hi; *present tells whether it was there. */
static int get_int(json_t *o, const char *k, int64_t lo, int64_t hi, int64_t *out, bool *present,
                   struct ota_err *err)
{
    json_t *v = json_object_get(o, k);
    *present = v != NULL;
    if (!v) {
        return 0;
    }
    if (!json_is_integer(v)) {
        return bad_type(err, k, "an integer");
    }
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s: %lld not in %lld..%lld", k, (long long)x,
                        (long long)lo, (long long)hi);
    }
    *out = x;
    return 0;
}

/* Optional string field; NULL when absent. */
static int get_str(json_t *o, const char *k, const char **out, struct ota_err *err)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v) {
        return 0;
    }
    if (!json_is_string(v)) {
        return bad_type(err, k, "a string");
    }
    *out = json_string_value(v);
    return 0;
}

/* The operation part of a task, a job template or a step. */
struct op_in {
    struct eng_task_spec spec;
    char *params; /* owned JSON text */
    const char *callback_url;
};

static void op_fini(struct op_in *o)
{
    free(o->params);
    o->params = NULL;
}

/*
 * owner (issue #7): the platform principal asking, recorded as params.owner
 * so that only it (and staff) sees the task; NULL for staff, who may name
 * an owner themselves (acting for a platform).
 */
static int parse_op(json_t *o, const char *owner, struct op_in *out, struct ota_err *err)
{
    memset(out, 0, sizeof(*out));
    const char *op = NULL, *ch = NULL;
    int rc = get_str(o, "op", &op, err);
    if (rc < 0) {
        return rc;
    }
    if (!op) {
        return missing(err, "op");
    }
    if (task_op_parse(op, &out->spec.op) < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "op: unknown operation \"%.32s\"", op);
    }
    if (task_op_antitheft(out->spec.op)) {
        /* minimum security, MSISDN binding and audit live there (gateway/api_antitheft.c) */
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "op: %s only through /v1/antitheft", op);
    }
    rc = get_str(o, "channel", &ch, err);
    if (rc < 0) {
        return rc;
    }
    if (ch) {
        if (task_channel_parse(ch, &out->spec.channel) < 0) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "channel: \"%.32s\" is not scp80 or push",
                            ch);
        }
    } else {
        /* push wakes the wallet; everything else defaults to secured packets */
        out->spec.channel = out->spec.op == TASK_OP_PUSH ? TASK_CH_PUSH : TASK_CH_SCP80;
    }
    json_t *p = json_object_get(o, "params");
    if (p && !json_is_object(p)) {
        return bad_type(err, "params", "an object");
    }
    rc = get_str(o, "callback_url", &out->callback_url, err);
    if (rc < 0) {
        return rc;
    }
    json_t *params = p ? json_deep_copy(p) : json_object();
    if (!params) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
    }
    if (out->callback_url) {
        if (!api_url_ok(out->callback_url)) {
            json_decref(params);
            return bad(err, "callback_url",
                       "must be an http:// or https:// URL of at most 2048 characters");
        }
        if (json_object_get(params, "callback_url")) {
            json_decref(params);
            return bad(err, "params.callback_url", "give it once, outside params");
        }
        json_object_set_new(params, "callback_url", json_string(out->callback_url));
    }
    json_t *was = json_object_get(params, "owner");
    if (was && (!json_is_string(was) || !gw_auth_name_ok(json_string_value(was)) ||
                (owner && strcmp(json_string_value(was), owner) != 0))) {
        json_decref(params);
        return bad(err, "params.owner",
                   owner ? "set by the gateway to the caller" : "a principal name");
    }
    if (owner) {
        json_object_set_new(params, "owner", json_string(owner));
    }
    out->params = json_dumps(params, JSON_COMPACT);
    json_decref(params);
    if (!out->params) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
    }
    out->spec.params = out->params;
    int64_t v = 0;
    bool has = false;
    /* TASK_PRIO_MAX is anti-theft's alone: nothing else may share its urgent lane */
    rc = get_int(o, "priority", 0, TASK_PRIO_MAX - 1, &v, &has, err);
    if (rc < 0) {
        goto fail;
    }
    out->spec.prio = has ? (uint8_t)v : 1;
    rc = get_int(o, "max_attempts", 1, 10, &v, &has, err);
    if (rc < 0) {
        goto fail;
    }
    out->spec.max_attempts = has ? (uint8_t)v : 0;
    return 0;
fail:
    op_fini(out);
    return rc;
}

/* "schedule" and "deadline" / "deadline_s" into the spec's absolute times. */
static int parse_when(json_t *o, int64_t now, struct eng_task_spec *s, struct ota_err *err)
{
    json_t *sch = json_object_get(o, "schedule");
    s->not_before_ms = 0;
    s->deadline_ms = 0;
    if (sch) {
        if (!json_is_object(sch)) {
            return bad_type(err, "schedule", "an object");
        }
        static const char *const allowed[] = {"at", "delay_s", NULL};
        int rc = only_fields(sch, "schedule.", allowed, err);
        if (rc < 0) {
            return rc;
        }
        json_t *at = json_object_get(sch, "at"), *dl = json_object_get(sch, "delay_s");
        if ((at != NULL) == (dl != NULL)) {
            return bad(err, "schedule", "give exactly one of at, delay_s");
        }
        if (at) {
            if (!json_is_string(at)) {
                return bad_type(err, "schedule.at", "a string");
            }
            int64_t t = 0;
            rc = api_time_parse("schedule.at", json_string_value(at), &t, err);
            if (rc < 0) {
                return rc;
            }
            if (t > now + SCHEDULE_MAX_S * 1000) {
                return bad(err, "schedule.at", "more than 366 days ahead");
            }
            s->not_before_ms = t > now ? t : 0; /* a past time means now */
        } else {
            if (!json_is_integer(dl) || json_integer_value(dl) < 0 ||
                json_integer_value(dl) > SCHEDULE_MAX_S) {
                return bad(err, "schedule.delay_s", "integer 0..31622400 (366 days)");
            }
            json_int_t d = json_integer_value(dl);
            s->not_before_ms = d ? now + d * 1000 : 0;
        }
    }
    json_t *dt = json_object_get(o, "deadline"), *ds = json_object_get(o, "deadline_s");
    if (dt && ds) {
        return bad(err, "deadline", "give deadline or deadline_s, not both");
    }
    if (dt) {
        if (!json_is_string(dt)) {
            return bad_type(err, "deadline", "a string");
        }
        int rc = api_time_parse("deadline", json_string_value(dt), &s->deadline_ms, err);
        if (rc < 0) {
            return rc;
        }
        int64_t start = s->not_before_ms > now ? s->not_before_ms : now;
        if (s->deadline_ms <= start) {
            return bad(err, "deadline", "not after the schedule (or now)");
        }
        if (s->deadline_ms > now + DEADLINE_MAX_S * 1000) {
            return bad(err, "deadline", "more than 732 days ahead");
        }
    } else if (ds) {
        if (!json_is_integer(ds) || json_integer_value(ds) < 1 ||
            json_integer_value(ds) > DEADLINE_MAX_S) {
            return bad(err, "deadline_s", "integer 1..63244800 (732 days)");
        }
        int64_t start = s->not_before_ms > now ? s->not_before_ms : now;
        /* relative to when the task may first run, so a delayed task keeps its window */
        s->deadline_ms = start + json_integer_value(ds) * 1000;
    }
    return 0;
}

/* ---- JSON output ---------------------------------------------------------------------------- */

static json_t *json_text_or_string(const char *txt)
{
    if (!txt) {
        return json_null();
    }
    json_error_t je;
    json_t *j = json_loads(txt, JSON_DECODE_ANY, &je);
    return j ? j : json_string(txt);
}

static json_t *task_json(const struct eng_task_view *v)
{
    json_t *o = json_object();
    if (!o) {
        return NULL;
    }
    json_object_set_new(o, "id", json_integer(v->id));
    json_object_set_new(o, "job", v->job ? json_integer(v->job) : json_null());
    json_object_set_new(o, "step", json_integer(v->step));
    json_object_set_new(o, "seid", json_string(v->seid ? v->seid : ""));
    json_object_set_new(o, "op", json_string(task_op_name(v->op)));
    json_object_set_new(o, "channel", json_string(task_channel_name(v->channel)));
    json_object_set_new(o, "state", json_string(task_state_name(v->state)));
    json_object_set_new(o, "reason",
                        v->reason == TASK_R_NONE ? json_null()
                                                 : json_string(task_reason_name(v->reason)));
    json_object_set_new(o, "reason_text",
                        v->reason_text && v->reason_text[0] ? json_string(v->reason_text)
                                                            : json_null());
    json_object_set_new(o, "attempts", json_integer(v->attempts));
    json_object_set_new(o, "priority", json_integer(v->prio));
    json_object_set_new(o, "params", json_text_or_string(v->params ? v->params : "{}"));
    json_object_set_new(o, "result", json_text_or_string(v->result));
    json_object_set_new(o, "created", api_time_json(v->created_ms));
    json_object_set_new(o, "updated", api_time_json(v->updated_ms));
    return o;
}

static bool path_id(struct http_req *req, int64_t *id)
{
    if (!api_parse_id(http_req_param(req, "id"), id)) {
        http_respond_error(req, 400, "invalid-id", "id: not a positive decimal integer");
        return false;
    }
    return true;
}

static void respond_json_or_oom(struct http_req *req, int status, json_t *o)
{
    if (!o) {
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    http_respond_json(req, status, o);
}

/* Commit an operator action before saying it happened (it must survive a crash). */
static bool flush_or_answer(struct gw *g, struct http_req *req)
{
    struct ota_err err;
    int rc = eng_flush(g->eng, &err);
    if (rc < 0) {
        http_respond_error(req, 503, "commit-failed", "%s", err.msg);
        return false;
    }
    return true;
}

/* ---- ownership (issue #7) ------------------------------------------------------------------ */

/*
 * May the caller see this task (its params)? Staff: always, without
 * parsing. A platform: only tasks whose params.owner names it; others are
 * answered 404 like a missing one, so that their existence is not told.
 */
static bool may_see(struct http_req *req, const char *params)
{
    const struct gw_principal *p = gw_req_principal(req);
    if (gw_principal_owns(p, NULL)) {
        return true;
    }
    json_t *o = params ? json_loads(params, 0, NULL) : NULL;
    json_t *ow = json_object_get(o, "owner");
    bool ok = json_is_string(ow) && gw_principal_owns(p, json_string_value(ow));
    json_decref(o);
    return ok;
}

static int first_task(void *arg, const struct store_task *t)
{
    *(int64_t *)arg = t->id;
    return 1; /* one is enough */
}

/* The same for a job: its params, or for a sequence (whose job row has none) a task of it. */
static bool may_see_job(struct http_req *req, struct gw *g, int64_t id)
{
    if (gw_principal_owns(gw_req_principal(req), NULL)) {
        return true;
    }
    struct store_job sj;
    struct ota_err err;
    if (store_job_get(eng_store(g->eng), id, &sj, &err) < 0) {
        return false;
    }
    bool ok = may_see(req, sj.params);
    bool seq = sj.kind == STORE_JOB_SEQUENCE;
    store_job_fini(&sj);
    if (ok || !seq) {
        return ok;
    }
    struct store_task_filter f = {.job = id, .state = -1};
    int64_t tid = 0;
    struct eng_task_view v;
    if (store_tasks_list(eng_store(g->eng), &f, 1, first_task, &tid, &err) < 0 || tid == 0 ||
        eng_task_get(g->eng, tid, &v, &err) < 0) {
        return false;
    }
    return may_see(req, v.params);
}

static void not_found(struct http_req *req, const char *what, int64_t id)
{
    http_respond_error(req, 404, "not-found", "%s %lld unknown", what, (long long)id);
}

/* ---- tasks ---------------------------------------------------------------------------------- */

static void h_task_post(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    json_t *b = http_req_json(req, &err);
    if (!b) {
        http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    struct idem idem;
    if (idem_begin(g, req, b, "POST /v1/tasks", &idem)) {
        return;
    }
    if (idem_prune(g, &err) < 0) {
        http_respond_error(req, 503, "engine-stopped", "%s", err.msg);
        return;
    }
    static const char *const allowed[] = {"seid",         "op",           "channel",  "params",
                                          "priority",     "schedule",     "deadline", "deadline_s",
                                          "max_attempts", "callback_url", NULL};
    int rc = only_fields(b, "", allowed, &err);
    const char *seid = NULL;
    if (rc == 0) {
        rc = get_str(b, "seid", &seid, &err);
    }
    if (rc == 0 && !seid) {
        rc = missing(&err, "seid");
    }
    if (rc == 0 && !api_seid_ok(seid)) {
        rc = ota_fail(&err, -EINVAL, OTA_ERR_LENGTH,
                      "seid: 1..64 printable characters (no space, '/', '?', '#', '%%')");
    }
    struct op_in op = {0};
    if (rc == 0) {
        rc = parse_op(b, gw_principal_owner(gw_req_principal(req)), &op, &err);
    }
    int64_t now = api_now_ms();
    if (rc == 0) {
        rc = parse_when(b, now, &op.spec, &err);
    }
    /* Results go to the platform over verified TLS; plain http only in loopback tests. */
    if (rc == 0 && op.callback_url && !g->conf.plain_http &&
        strncmp(op.callback_url, "https://", 8) != 0) {
        rc = ota_fail(&err, -EINVAL, OTA_ERR_VALUE,
                      "callback_url: must be https:// (http:// only with plain_http = yes)");
    }
    if (rc < 0) {
        op_fini(&op);
        api_respond_rc(req, rc, field_code(&err), &err);
        return;
    }
    op.spec.seid = seid;
    struct pend *p = calloc(1, sizeof(*p));
    json_t *ans = json_object();
    if (!p || !ans) {
        free(p);
        json_decref(ans);
        op_fini(&op);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    /* listed before the submit: from here on the key is in flight */
    pend_link(p, g, req, &idem);
    int64_t id = 0;
    rc = eng_submit(g->eng, &op.spec, on_accept, p, &id, &err);
    if (rc < 0) {
        pend_unlink(p);
        free(p);
        json_decref(ans);
        op_fini(&op);
        api_respond_rc(req, rc, rc == -ENOENT ? "se-not-found" : "invalid-field", &err);
        return;
    }
    char loc[64];
    snprintf(loc, sizeof(loc), "/v1/tasks/%lld", (long long)id);
    json_object_set_new(ans, "id", json_integer(id));
    json_object_set_new(ans, "state", json_string(task_state_name(TASK_QUEUED)));
    json_object_set_new(ans, "seid", json_string(seid));
    json_object_set_new(ans, "op", json_string(task_op_name(op.spec.op)));
    json_object_set_new(ans, "channel", json_string(task_channel_name(op.spec.channel)));
    json_object_set_new(ans, "priority", json_integer(op.spec.prio));
    json_object_set_new(ans, "not_before", api_time_json(op.spec.not_before_ms));
    json_object_set_new(ans, "deadline", api_time_json(op.spec.deadline_ms));
    json_object_set_new(ans, "max_attempts",
                        op.spec.max_attempts ? json_integer(op.spec.max_attempts) : json_null());
    json_object_set_new(ans, "callback_url",
                        op.callback_url ? json_string(op.callback_url) : json_null());
    json_object_set_new(ans, "location", json_string(loc));
    op_fini(&op);
    /* the engine calls on_accept once the batch commits, or with rc < 0 when it fails */
    p->body = ans;
    http_req_set_header(req, "Location", loc);
    (void)idem_stage(g, &idem, ans, &err);
}

static void h_task_get(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    int64_t id;
    if (!path_id(req, &id)) {
        return;
    }
    struct eng_task_view v;
    struct ota_err err;
    int rc = eng_task_get(g->eng, id, &v, &err);
    if (rc < 0) {
        api_respond_rc(req, rc, "not-found", &err);
        return;
    }
    if (!may_see(req, v.params)) {
        not_found(req, "task", id);
        return;
    }
    respond_json_or_oom(req, 200, task_json(&v));
}

#define LIST_DEFAULT 100
#define LIST_MAX 1000

struct id_vec {
    int64_t ids[LIST_MAX];
    size_t n;
};

static int collect_id(void *arg, const struct store_task *t)
{
    struct id_vec *v = arg;
    if (v->n < LIST_MAX) {
        v->ids[v->n++] = t->id;
    }
    return 0;
}

static bool query_id(struct http_req *req, const char *name, int64_t *out)
{
    const char *v = http_req_query(req, name);
    *out = 0;
    if (!v) {
        return true;
    }
    if (!api_parse_id(v, out)) {
        http_respond_error(req, 400, "invalid-query", "%s: not a positive decimal integer", name);
        return false;
    }
    return true;
}

static bool query_time(struct http_req *req, const char *name, int64_t *out)
{
    const char *v = http_req_query(req, name);
    struct ota_err err;
    *out = 0;
    if (v && api_time_parse(name, v, out, &err) < 0) {
        http_respond_error(req, 400, "invalid-query", "%s", err.msg);
        return false;
    }
    return true;
}

/*
 * The general list: newest first, filtered by seid, state, job, creation
 * time; paged with before=<id> (next_before in the answer).
 */
static void task_list_general(struct http_req *req, struct gw *g, const char *seid)
{
    struct store_task_filter flt = {.state = -1};
    struct ota_err err;
    const char *st = http_req_query(req, "state");
    if (st) {
        enum task_state s;
        if (task_state_parse(st, &s) < 0) {
            http_respond_error(req, 400, "invalid-query", "state: unknown state \"%.32s\"", st);
            return;
        }
        flt.state = (int)s;
    }
    int64_t limit = LIST_DEFAULT;
    const char *lim = http_req_query(req, "limit");
    if (lim && (!api_parse_id(lim, &limit) || limit > LIST_MAX)) {
        http_respond_error(req, 400, "invalid-query", "limit: 1..%d", LIST_MAX);
        return;
    }
    if (!query_id(req, "job", &flt.job) || !query_id(req, "before", &flt.before_id) ||
        !query_time(req, "created_from", &flt.created_from) ||
        !query_time(req, "created_to", &flt.created_to)) {
        return;
    }
    struct store *sto = eng_store(g->eng);
    if (seid) {
        struct store_se se;
        int rc = store_se_find(sto, seid, &se, &err);
        if (rc < 0) {
            api_respond_rc(req, rc, "se-not-found", &err);
            return;
        }
        flt.se = se.id;
    }
    struct id_vec *v = calloc(1, sizeof(*v));
    json_t *o = json_object(), *arr = json_array();
    if (!v || !o || !arr) {
        free(v);
        json_decref(o);
        json_decref(arr);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    int rc = store_tasks_list(sto, &flt, (size_t)limit, collect_id, v, &err);
    if (rc < 0) {
        free(v);
        json_decref(o);
        json_decref(arr);
        api_respond_rc(req, rc, "invalid-query", &err);
        return;
    }
    struct eng_task_view tv;
    /*
     * A platform's page holds only its own tasks: filtered after the read,
     * so a page may be shorter than limit while next_before (the last id
     * read) still pages on correctly.
     */
    for (size_t i = 0; i < v->n; i++) {
        if (eng_task_get(g->eng, v->ids[i], &tv, &err) == 0 && may_see(req, tv.params)) {
            json_array_append_new(arr, task_json(&tv));
        }
    }
    bool full = v->n == (size_t)limit;
    json_object_set_new(o, "tasks", arr);
    json_object_set_new(o, "next_before",
                        full && v->n ? json_integer(v->ids[v->n - 1]) : json_null());
    free(v);
    http_respond_json(req, 200, o);
}

static void h_task_list(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    const char *seid = http_req_query(req, "seid");
    if (seid && !api_seid_ok(seid)) {
        http_respond_error(req, 400, "invalid-query", "seid: 1..64 printable characters");
        return;
    }
    static const char *const filters[] = {"state",      "job",    "created_from",
                                          "created_to", "before", "limit"};
    bool general = !seid;
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        general = general || http_req_query(req, filters[i]) != NULL;
    }
    if (general) {
        task_list_general(req, g, seid);
        return;
    }
    if (!api_seid_ok(seid)) {
        http_respond_error(req, 400, "invalid-query", "seid: 1..64 printable characters");
        return;
    }
    struct store_se se;
    struct ota_err err;
    int rc = store_se_find(eng_store(g->eng), seid, &se, &err);
    if (rc < 0) {
        api_respond_rc(req, rc, "se-not-found", &err);
        return;
    }
    int64_t *queued = malloc(SE_TASKS_CAP * sizeof(*queued));
    json_t *o = json_object(), *arr = json_array();
    if (!queued || !o || !arr) {
        free(queued);
        json_decref(o);
        json_decref(arr);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    int64_t active = 0;
    size_t nq = 0;
    rc = eng_se_tasks(g->eng, seid, &active, queued, SE_TASKS_CAP, &nq, &err);
    if (rc < 0) {
        free(queued);
        json_decref(o);
        json_decref(arr);
        api_respond_rc(req, rc, "not-found", &err);
        return;
    }
    struct eng_task_view v;
    json_t *a = json_null();
    if (active && eng_task_get(g->eng, active, &v, &err) == 0 && may_see(req, v.params)) {
        json_decref(a);
        a = task_json(&v);
    }
    size_t shown = nq < SE_TASKS_CAP ? nq : SE_TASKS_CAP;
    for (size_t i = 0; i < shown; i++) {
        if (eng_task_get(g->eng, queued[i], &v, &err) == 0 && may_see(req, v.params)) {
            json_array_append_new(arr, task_json(&v));
        }
    }
    free(queued);
    json_object_set_new(o, "seid", json_string(seid));
    json_object_set_new(o, "active", a);
    json_object_set_new(o, "queued", arr);
    /* a platform counts only its own: the SE's queue of others' tasks is not its business */
    json_object_set_new(o, "queued_total",
                        json_integer(gw_principal_owns(gw_req_principal(req), NULL)
                                         ? (json_int_t)nq
                                         : (json_int_t)json_array_size(arr)));
    json_object_set_new(o, "truncated", json_boolean(nq > shown));
    http_respond_json(req, 200, o);
}

static void task_state_answer(struct http_req *req, struct gw *g, int64_t id)
{
    struct eng_task_view v;
    struct ota_err err;
    if (eng_task_get(g->eng, id, &v, &err) < 0) {
        api_respond_rc(req, -ENOENT, "not-found", &err);
        return;
    }
    respond_json_or_oom(req, 200, task_json(&v));
}

/*
 * Spec 7.2: an operator action is recorded before it is made, and refused
 * (503) when the record cannot be written. Called only once the action is
 * known to go ahead, so that refused requests leave no entry.
 */
static bool audited(struct http_req *req, struct gw *g, const char *action, const char *what,
                    int64_t id, const char *detail)
{
    const struct gw_principal *p = gw_req_principal(req);
    char target[48];
    snprintf(target, sizeof(target), "%s:%lld", what, (long long)id);
    if (gw_audit(g, p ? p->name : "anonymous", action, target, "%s", detail) < 0) {
        http_respond_error(req, 503, "audit-unavailable",
                           "the audit log cannot be written: %s refused", action);
        return false;
    }
    return true;
}

static bool task_audited(struct http_req *req, struct gw *g, const char *action,
                         const struct eng_task_view *v)
{
    char detail[160];
    snprintf(detail, sizeof(detail), "se=%.64s state=%s", v->seid ? v->seid : "",
             task_state_name(v->state));
    return audited(req, g, action, "task", v->id, detail);
}

static void h_task_cancel(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    int64_t id;
    if (!path_id(req, &id)) {
        return;
    }
    struct ota_err err;
    struct eng_task_view v;
    int got = eng_task_get(g->eng, id, &v, &err);
    if (got == 0 && !may_see(req, v.params)) {
        not_found(req, "task", id);
        return;
    }
    /* only a queued task can be cancelled: the others get their 409 below, unrecorded */
    if (got == 0 && v.state == TASK_QUEUED && !task_audited(req, g, "task.cancel", &v)) {
        return;
    }
    int rc = eng_task_cancel(g->eng, id, &err);
    if (rc == -EBUSY) {
        http_respond_error(req, 409, "task-active", "%s (POST /v1/tasks/%lld/terminate)", err.msg,
                           (long long)id);
        return;
    }
    if (rc < 0) {
        api_respond_rc(req, rc, rc == -ENOENT ? "not-found" : "task-final", &err);
        return;
    }
    if (flush_or_answer(g, req)) {
        task_state_answer(req, g, id);
    }
}

static void h_task_terminate(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    int64_t id;
    if (!path_id(req, &id)) {
        return;
    }
    struct eng_task_view v;
    struct ota_err err;
    int rc = eng_task_get(g->eng, id, &v, &err);
    if (rc < 0) {
        api_respond_rc(req, rc, "not-found", &err);
        return;
    }
    if (!may_see(req, v.params)) {
        not_found(req, "task", id);
        return;
    }
    if (task_state_final(v.state)) {
        http_respond_error(req, 409, "task-final", "task %lld is %s already", (long long)id,
                           task_state_name(v.state));
        return;
    }
    if (!task_state_active(v.state)) {
        http_respond_error(req, 409, "task-not-active",
                           "task %lld is %s: cancel it (POST /v1/tasks/%lld/cancel)", (long long)id,
                           task_state_name(v.state), (long long)id);
        return;
    }
    if (!task_audited(req, g, "task.terminate", &v)) {
        return;
    }
    rc = eng_task_terminate(g->eng, id, &err);
    if (rc < 0) {
        api_respond_rc(req, rc == -EINVAL ? -EBUSY : rc, "task-not-active", &err);
        return;
    }
    if (flush_or_answer(g, req)) {
        task_state_answer(req, g, id);
    }
}

/* ---- jobs ------------------------------------------------------------------------------------ */

static const char *const job_kind_names[] = {"list", "filter", "sequence"};
static const char *const job_state_names[] = {"running", "paused", "cancelled", "done"};

static const char *job_state_name(enum store_job_state s)
{
    return (unsigned)s < 4 ? job_state_names[s] : "unknown";
}

struct job_in {
    struct eng_job_spec spec;
    struct op_in tmpl;
    const char **seids;
    struct op_in *steps;
    struct eng_task_spec *step_specs;
    size_t n_steps;
    const char *owner; /* see parse_op */
};

static void job_fini(struct job_in *j)
{
    op_fini(&j->tmpl);
    for (size_t i = 0; i < j->n_steps; i++) {
        op_fini(&j->steps[i]);
    }
    free(j->steps);
    free(j->step_specs);
    free(j->seids);
}

static int parse_rate(json_t *b, double *rate, struct ota_err *err)
{
    json_t *r = json_object_get(b, "rate_per_s");
    *rate = 0;
    if (!r) {
        return 0;
    }
    if (!json_is_number(r)) {
        return bad_type(err, "rate_per_s", "a number");
    }
    double v = json_number_value(r);
    if (!isfinite(v) || v < 0 || v > RATE_MAX) {
        return bad(err, "rate_per_s", "0 (no cap) .. 1000000");
    }
    *rate = v;
    return 0;
}

static int parse_job(json_t *b, int64_t now, struct job_in *j, struct ota_err *err)
{
    const char *kind = NULL;
    int rc = get_str(b, "kind", &kind, err);
    if (rc < 0) {
        return rc;
    }
    if (!kind) {
        return missing(err, "kind");
    }
    rc = parse_rate(b, &j->spec.rate_per_s, err);
    if (rc < 0) {
        return rc;
    }
    if (strcmp(kind, "list") == 0 || strcmp(kind, "filter") == 0) {
        bool list = kind[0] == 'l';
        static const char *const list_f[] = {"kind",       "seids",        "op",         "channel",
                                             "params",     "priority",     "schedule",   "deadline",
                                             "deadline_s", "max_attempts", "rate_per_s", NULL};
        static const char *const filter_f[] = {
            "kind",       "seid_from",    "seid_to",    "batch",    "op",
            "channel",    "params",       "priority",   "schedule", "deadline",
            "deadline_s", "max_attempts", "rate_per_s", NULL};
        rc = only_fields(b, "", list ? list_f : filter_f, err);
        if (rc == 0) {
            rc = parse_op(b, j->owner, &j->tmpl, err);
        }
        if (rc == 0) {
            rc = parse_when(b, now, &j->tmpl.spec, err);
        }
        if (rc < 0) {
            return rc;
        }
        j->spec.tmpl = j->tmpl.spec;
        if (list) {
            j->spec.kind = ENG_JOB_LIST;
            json_t *a = json_object_get(b, "seids");
            if (!json_is_array(a) || json_array_size(a) == 0) {
                return bad(err, "seids", "a non-empty array of SEIDs");
            }
            size_t n = json_array_size(a);
            j->seids = calloc(n, sizeof(*j->seids));
            if (!j->seids) {
                return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
            }
            for (size_t i = 0; i < n; i++) {
                json_t *s = json_array_get(a, i);
                if (!json_is_string(s) || !api_seid_ok(json_string_value(s))) {
                    return ota_fail(err, -EINVAL, OTA_ERR_LENGTH,
                                    "seids[%zu]: 1..64 printable characters", i);
                }
                j->seids[i] = json_string_value(s);
            }
            j->spec.seids = j->seids;
            j->spec.n_seids = n;
        } else {
            j->spec.kind = ENG_JOB_FILTER;
            const char *lo = NULL, *hi = NULL, *batch = NULL;
            if ((rc = get_str(b, "seid_from", &lo, err)) < 0 ||
                (rc = get_str(b, "seid_to", &hi, err)) < 0 ||
                (rc = get_str(b, "batch", &batch, err)) < 0) {
                return rc;
            }
            if (!lo && !hi && !batch) {
                /* a job over every registered SE must be asked for explicitly */
                return bad(err, "filter", "give seid_from, seid_to and/or batch");
            }
            if ((lo && !api_seid_ok(lo)) || (hi && !api_seid_ok(hi))) {
                return bad(err, "seid_from/seid_to", "1..64 printable characters");
            }
            if (lo && hi && strcmp(lo, hi) > 0) {
                return bad(err, "seid_from", "after seid_to");
            }
            if (batch && !api_printable(batch, 1, STORE_BATCH_MAX)) {
                return bad(err, "batch", "1..32 printable characters");
            }
            j->spec.seid_lo = lo;
            j->spec.seid_hi = hi;
            j->spec.batch = batch;
        }
        return 0;
    }
    if (strcmp(kind, "sequence") != 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "kind: \"%.32s\" is not list, filter or sequence", kind);
    }
    j->spec.kind = ENG_JOB_SEQUENCE;
    static const char *const seq_f[] = {"kind",       "seid",     "steps",      "priority",
                                        "schedule",   "deadline", "deadline_s", "max_attempts",
                                        "rate_per_s", NULL};
    rc = only_fields(b, "", seq_f, err);
    if (rc < 0) {
        return rc;
    }
    const char *seid = NULL;
    if ((rc = get_str(b, "seid", &seid, err)) < 0) {
        return rc;
    }
    if (!seid) {
        return missing(err, "seid");
    }
    if (!api_seid_ok(seid)) {
        return ota_fail(err, -EINVAL, OTA_ERR_LENGTH, "seid: 1..64 printable characters");
    }
    /* priority, max_attempts, schedule and deadline apply to every step */
    int64_t prio = 1, maxa = 0;
    bool has = false;
    if ((rc = get_int(b, "priority", 0, TASK_PRIO_MAX - 1, &prio, &has, err)) < 0) {
        return rc;
    }
    if (!has) {
        prio = 1;
    }
    if ((rc = get_int(b, "max_attempts", 1, 10, &maxa, &has, err)) < 0) {
        return rc;
    }
    struct eng_task_spec when = {0};
    if ((rc = parse_when(b, now, &when, err)) < 0) {
        return rc;
    }
    json_t *a = json_object_get(b, "steps");
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > STEPS_MAX) {
        return bad(err, "steps", "an array of 1..64 steps");
    }
    size_t n = json_array_size(a);
    j->steps = calloc(n, sizeof(*j->steps));
    j->step_specs = calloc(n, sizeof(*j->step_specs));
    if (!j->steps || !j->step_specs) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
    }
    static const char *const step_f[] = {"op", "channel", "params", NULL};
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(a, i);
        char where[32];
        snprintf(where, sizeof(where), "steps[%zu].", i);
        if (!json_is_object(s)) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG, "steps[%zu]: must be an object", i);
        }
        if ((rc = only_fields(s, where, step_f, err)) < 0) {
            return rc;
        }
        rc = parse_op(s, j->owner, &j->steps[i], err);
        if (rc < 0) {
            /* name the step: parse_op's message names the field only */
            struct ota_err e2 = *err;
            return ota_fail(err, rc, e2.code, "steps[%zu].%s", i, e2.msg);
        }
        j->n_steps = i + 1;
        struct eng_task_spec *ss = &j->step_specs[i];
        *ss = j->steps[i].spec;
        ss->seid = seid;
        ss->prio = (uint8_t)prio;
        ss->max_attempts = (uint8_t)maxa;
        ss->not_before_ms = when.not_before_ms;
        ss->deadline_ms = when.deadline_ms;
    }
    j->spec.steps = j->step_specs;
    j->spec.n_steps = n;
    return 0;
}

static void h_job_post(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    json_t *b = http_req_json(req, &err);
    if (!b) {
        http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    struct idem idem;
    if (idem_begin(g, req, b, "POST /v1/jobs", &idem)) {
        return;
    }
    if (idem_prune(g, &err) < 0) {
        http_respond_error(req, 503, "engine-stopped", "%s", err.msg);
        return;
    }
    struct job_in j;
    memset(&j, 0, sizeof(j));
    j.owner = gw_principal_owner(gw_req_principal(req));
    int rc = parse_job(b, api_now_ms(), &j, &err);
    if (rc < 0) {
        job_fini(&j);
        api_respond_rc(req, rc, field_code(&err), &err);
        return;
    }
    struct pend *p = calloc(1, sizeof(*p));
    json_t *ans = json_object();
    if (!p || !ans) {
        free(p);
        json_decref(ans);
        job_fini(&j);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    pend_link(p, g, req, &idem);
    int64_t id = 0;
    rc = eng_job_submit(g->eng, &j.spec, on_accept, p, &id, &err);
    job_fini(&j);
    if (rc < 0) {
        pend_unlink(p);
        free(p);
        json_decref(ans);
        api_respond_rc(req, rc, rc == -ENOENT ? "se-not-found" : "invalid-field", &err);
        return;
    }
    char loc[64];
    snprintf(loc, sizeof(loc), "/v1/jobs/%lld", (long long)id);
    json_object_set_new(ans, "id", json_integer(id));
    json_object_set_new(ans, "kind", json_string(job_kind_names[j.spec.kind]));
    json_object_set_new(ans, "state", json_string("running"));
    json_object_set_new(ans, "location", json_string(loc));
    p->body = ans;
    http_req_set_header(req, "Location", loc);
    (void)idem_stage(g, &idem, ans, &err);
}

static void h_job_get(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    int64_t id;
    if (!path_id(req, &id)) {
        return;
    }
    struct ota_err err;
    struct eng_job_progress pr;
    if (!may_see_job(req, g, id)) {
        not_found(req, "job", id);
        return;
    }
    int rc = eng_job_progress(g->eng, id, &pr, &err);
    if (rc < 0) {
        api_respond_rc(req, rc, "not-found", &err);
        return;
    }
    struct store_job sj;
    rc = store_job_get(eng_store(g->eng), id, &sj, &err);
    if (rc < 0) {
        api_respond_rc(req, rc, "not-found", &err);
        return;
    }
    json_t *o = json_object(), *c = json_object();
    if (!o || !c) {
        store_job_fini(&sj);
        json_decref(o);
        json_decref(c);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    uint64_t created = 0;
    for (int s = 0; s < TASK_STATE__COUNT; s++) {
        json_object_set_new(c, task_state_name((enum task_state)s),
                            json_integer((json_int_t)pr.counts[s]));
        created += pr.counts[s];
    }
    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "kind",
                        json_string((unsigned)sj.kind < 3 ? job_kind_names[sj.kind] : "unknown"));
    json_object_set_new(o, "state", json_string(job_state_name(pr.state)));
    json_object_set_new(o, "op", json_string(task_op_name(sj.op)));
    json_object_set_new(o, "channel", json_string(task_channel_name(sj.channel)));
    json_object_set_new(o, "priority", json_integer(sj.prio));
    json_object_set_new(o, "rate_per_s", json_real(sj.rate_per_s));
    json_object_set_new(o, "created", api_time_json(sj.created_ms));
    json_object_set_new(o, "total", json_integer((json_int_t)pr.total));
    json_object_set_new(o, "created_tasks", json_integer((json_int_t)created));
    json_object_set_new(o, "expanded", json_boolean(pr.expanded));
    json_object_set_new(o, "counts", c);
    json_object_set_new(o, "failed_step_task",
                        pr.failed_step_task ? json_integer(pr.failed_step_task) : json_null());
    store_job_fini(&sj);
    http_respond_json(req, 200, o);
}

enum job_act { JOB_PAUSE, JOB_RESUME, JOB_CANCEL };

static void job_action(struct http_req *req, struct gw *g, enum job_act act)
{
    int64_t id;
    if (!path_id(req, &id)) {
        return;
    }
    struct ota_err err;
    if (!may_see_job(req, g, id)) {
        not_found(req, "job", id);
        return;
    }
    struct eng_job_progress pr;
    if (act == JOB_CANCEL && eng_job_progress(g->eng, id, &pr, &err) == 0 &&
        (pr.state == STORE_JOB_RUNNING || pr.state == STORE_JOB_PAUSED) &&
        !audited(req, g, "job.cancel", "job", id,
                 pr.state == STORE_JOB_RUNNING ? "state=running" : "state=paused")) {
        return;
    }
    int rc = act == JOB_CANCEL ? eng_job_cancel(g->eng, id, &err)
                               : eng_job_pause(g->eng, id, act == JOB_PAUSE, &err);
    if (rc < 0) {
        api_respond_rc(req, rc, rc == -ENOENT ? "not-found" : "job-over", &err);
        return;
    }
    if (flush_or_answer(g, req)) {
        h_job_get(req, g);
    }
}

static void h_job_pause(struct http_req *req, void *arg)
{
    job_action(req, arg, JOB_PAUSE);
}

static void h_job_resume(struct http_req *req, void *arg)
{
    job_action(req, arg, JOB_RESUME);
}

static void h_job_cancel(struct http_req *req, void *arg)
{
    job_action(req, arg, JOB_CANCEL);
}

static void h_job_rate(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    int64_t id;
    if (!path_id(req, &id)) {
        return;
    }
    struct ota_err err;
    json_t *b = http_req_json(req, &err);
    if (!b) {
        http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const allowed[] = {"rate_per_s", NULL};
    double rate = 0;
    int rc = only_fields(b, "", allowed, &err);
    if (rc == 0 && !json_object_get(b, "rate_per_s")) {
        rc = missing(&err, "rate_per_s");
    }
    if (rc == 0) {
        rc = parse_rate(b, &rate, &err);
    }
    if (rc < 0) {
        api_respond_rc(req, rc, field_code(&err), &err);
        return;
    }
    if (!may_see_job(req, g, id)) {
        not_found(req, "job", id);
        return;
    }
    rc = eng_job_rate(g->eng, id, rate, &err);
    if (rc < 0) {
        api_respond_rc(req, rc,
                       rc == -ENOENT   ? "not-found"
                       : rc == -EINVAL ? "invalid-field"
                                       : "job-over",
                       &err);
        return;
    }
    if (flush_or_answer(g, req)) {
        h_job_get(req, g);
    }
}

/* ---- stats and the document ------------------------------------------------------------------ */

static void h_stats(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    /* the same collector as GET /metrics and the dashboard (gateway/metrics.c) */
    struct gw_metrics_counts mc;
    struct ota_err err;
    int rc = gw_metrics_counts(g, &mc, &err);
    const struct eng_stats s = mc.eng;
    const uint64_t *states = mc.states, *reasons = mc.reasons;
    if (rc < 0) {
        api_respond_rc(req, rc, "internal", &err);
        return;
    }
    json_t *o = json_object(), *e = json_object(), *ts = json_object(), *rs = json_object();
    if (!o || !e || !ts || !rs) {
        json_decref(o);
        json_decref(e);
        json_decref(ts);
        json_decref(rs);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    json_object_set_new(e, "running", json_boolean(s.run == ENG_RUNNING));
#define STAT(f) json_object_set_new(e, #f, json_integer((json_int_t)s.f))
    STAT(accepted);
    STAT(dispatched);
    STAT(parts_sent);
    STAT(done);
    STAT(failed);
    STAT(expired);
    STAT(cancelled);
    STAT(retries);
    STAT(dlrs);
    STAT(pors);
    STAT(pulls);
    STAT(late);
    STAT(duplicate);
    STAT(unknown);
    STAT(mismatched);
    STAT(illegal_transitions);
    STAT(commits);
    STAT(queued);
    STAT(active);
    STAT(waiting_bearer);
#undef STAT
    json_object_set_new(e, "commit_s", json_real(s.commit_s));
    for (int i = 0; i < TASK_STATE__COUNT; i++) {
        json_object_set_new(ts, task_state_name((enum task_state)i),
                            json_integer((json_int_t)states[i]));
    }
    for (int i = 1; i < TASK_REASON__COUNT; i++) {
        if (reasons[i]) {
            json_object_set_new(rs, task_reason_name((enum task_reason)i),
                                json_integer((json_int_t)reasons[i]));
        }
    }
    json_object_set_new(o, "engine", e);
    json_object_set_new(o, "tasks", ts);
    json_object_set_new(o, "reasons", rs);
    json_object_set_new(o, "antitheft", gw_antitheft_stats_json(g));
    http_respond_json(req, 200, o);
}

static void h_openapi(struct http_req *req, void *arg)
{
    (void)arg;
    http_respond_raw(req, 200, "application/json", gw_openapi_json, gw_openapi_json_len);
}
