/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SE routes of the business API (issue #6 "SEs"; spec
 * 5.5.1, 5.5.2, 5.8.8):
 *   POST /v1/ses                       register an SE bound to one MSISDN
 *   GET  /v1/ses/{seid}                the SE with its active and queued tasks
 * Input is validated strictly: unknown members, wrong types, SEID outside
 * 1..64 printable, MSISDN outside 1..21 digits, bad hex or key lengths -> 400
 * in the one error shape; nothing is written on any error.
 *
 * Registration answers only after the engine's commit (eng_flush for now:
 * the engine offers no post-commit hook for SEs yet).
 */
#include "gateway/gw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gateway/api_util.h"
#include "gateway/auth.h"
#include "gateway/keys.h"

#define SES_QUEUED_MAX 64 /* queued task ids shown by GET /v1/ses/{seid} */

/* ---- POST /v1/ses ------------------------------------------------------------------ */

static void route_se_register(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    json_t *body = http_req_json(req, &err);
    if (!body) {
        (void)http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const allowed[] = {"seid", "msisdn", "batch", NULL};
    const char *bad = api_unknown_member(body, allowed);
    if (bad) {
        (void)http_respond_error(req, 400, "unknown-field", "%s: unknown member", bad);
        return;
    }
    bool answered = false;
    const char *seid = api_str_member(req, body, "seid", true, &answered);
    const char *msisdn = answered ? NULL : api_str_member(req, body, "msisdn", true, &answered);
    const char *batch = answered ? NULL : api_str_member(req, body, "batch", false, &answered);
    if (answered) {
        return;
    }
    if (!api_seid_ok(seid)) {
        (void)http_respond_error(req, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    if (!api_digits_ok(msisdn, 1, 21)) {
        (void)http_respond_error(req, 400, "bad-msisdn", "msisdn: 1..21 digits");
        return;
    }
    if (!batch) {
        batch = "";
    }
    if (!api_batch_ok(batch)) {
        (void)http_respond_error(req, 400, "bad-batch", "batch: 0..32 printable ASCII characters");
        return;
    }
    int rc = eng_se_register(g->eng, seid, msisdn, batch, &err);
    if (rc == -EEXIST) {
        (void)http_respond_error(req, 409, "se-msisdn-conflict",
                                 "seid %s is registered with another MSISDN", seid);
        return;
    }
    if (rc < 0) {
        gw_respond_err(req, rc, "se-register", &err);
        return;
    }
    /* TODO: answer from a post-commit hook once the engine has one; flush = commit now. */
    rc = eng_flush(g->eng, &err);
    if (rc < 0) {
        gw_log(g, GW_CONF_LOG_ERR, "se register commit failed se=%s err=\"%s\"", seid, err.msg);
        gw_respond_err(req, -EIO, "commit-failed", &err);
        return;
    }
    /* The batch echoed is the stored one (a repeated registration keeps the first). */
    char m[22], b[33];
    if (gw_keys_se_find(g->keys, seid, m, b, &err) == 0) {
        batch = b;
    }
    gw_log(g, GW_CONF_LOG_INFO, "se registered se=%s msisdn=%s", seid, msisdn);
    char loc[96];
    snprintf(loc, sizeof(loc), "/v1/ses/%s", seid);
    (void)http_req_set_header(req, "Location", loc);
    (void)http_respond_json(
        req, 201, json_pack("{s:s, s:s, s:s}", "seid", seid, "msisdn", msisdn, "batch", batch));
}

/* ---- GET /v1/ses/{seid} ------------------------------------------------------------ */

static json_t *task_json(struct gw *g, int64_t id)
{
    struct eng_task_view v;
    struct ota_err err;
    if (eng_task_get(g->eng, id, &v, &err) < 0) {
        return json_pack("{s:I}", "id", (json_int_t)id);
    }
    return json_pack("{s:I, s:s, s:s, s:i, s:i}", "id", (json_int_t)v.id, "op", task_op_name(v.op),
                     "state", task_state_name(v.state), "prio", (int)v.prio, "attempts",
                     (int)v.attempts);
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
    char msisdn[22], batch[33];
    int rc = gw_keys_se_find(g->keys, seid, msisdn, batch, &err);
    if (rc == -ENOENT) {
        (void)http_respond_error(req, 404, "se-not-found", "SE %s is not registered", seid);
        return;
    }
    if (rc < 0) {
        gw_respond_err(req, rc, "se-lookup", &err);
        return;
    }
    int64_t active = 0, queued[SES_QUEUED_MAX];
    size_t n_queued = 0;
    rc = eng_se_tasks(g->eng, seid, &active, queued, SES_QUEUED_MAX, &n_queued, &err);
    if (rc < 0) {
        gw_respond_err(req, rc, "se-tasks", &err);
        return;
    }
    json_t *q = json_array();
    for (size_t i = 0; i < n_queued && i < SES_QUEUED_MAX; i++) {
        json_array_append_new(q, task_json(g, queued[i]));
    }
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:I}", "seid", seid, "msisdn", msisdn, "batch", batch,
                  "active_task", active ? task_json(g, active) : json_null(), "queued_tasks", q,
                  "queued_total", (json_int_t)n_queued);
    (void)http_respond_json(req, 200, body);
}

int gw_api_ses_routes(struct gw *g, struct ota_err *err)
{
    int rc = gw_route(g, "POST", "/v1/ses", GW_ROLES_STAFF | GW_ROLE_PLATFORM, route_se_register, g,
                      err);
    if (rc == 0) {
        rc = gw_route(g, "GET", "/v1/ses/{seid}", GW_ROLES_STAFF | GW_ROLE_PLATFORM, route_se_get,
                      g, err);
    }
    return rc;
}
