/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Anti-theft lock, unlock and wipe (ITU-T X.1127 (09/2017) figure 3 and
 * appendix I; issue #7): an authorisation server (role anti-theft) asks for
 * one of them on an SE bound to the owner's MSISDN; otagw sends it to the
 * card as one SCP80 secured packet (the "kill switch message" of figure 3,
 * TS 22.048 family) and reports the request's life: requested -> sent ->
 * PoR verified (proof of receipt: the card's PoR, checksum verified) ->
 * executed (proof of execution: every status word 9000) or failed.
 *
 *   POST /v1/antitheft/lock | unlock | wipe   {seid, msisdn, request_id, callback_url?}
 *   GET  /v1/antitheft/{id}
 *
 * Security that configuration cannot lower (X.1127 7.4.1): the SE's key set
 * must already ask for ciphering, a cryptographic checksum, a counter higher
 * than the last, PoR always and a CC-protected PoR, with algorithms of 112
 * bits or more (eng_spi_antitheft); otherwise 409 keyset-too-weak. The
 * engine forces the same bits again when it builds the packet.
 *
 * The request is bound to the owner: msisdn must be the SE's bound MSISDN
 * (409 msisdn-mismatch). request_id is the authorisation server's id and
 * makes the request idempotent (per principal), through the engine's
 * Idempotency-Key records staged in the batch of the task.
 *
 * The task has the urgent priority (TASK_PRIO_MAX): first in the scheduler,
 * past the engine's pre-built backlog and first to the bearer. An active
 * non-anti-theft task holding the SE's one link (spec 5.8.8) is terminated
 * so the lock does not wait for its PoR timeout (spec 5.8.8 lets the
 * platform abandon the waiting command for a new one).
 *
 * Request -> verified PoR is measured (task created -> final with a
 * verified PoR) against X.1127 I.2's 15 minutes: in the GET answer, in
 * GET /v1/stats ("antitheft") and in a log line. Every request (accepted
 * or refused), PoR and result is audited (gateway/audit.h).
 *
 * Scripts (docs/antitheft.md), to the SD of [antitheft] tar (the ISD by
 * default), expanded format (TS 102 226):
 *   lock:   SET STATUS 80 F0 40 80 <aid> per app, then the card 80 F0 80 7F
 *   unlock: the card 80 F0 80 0F, then SET STATUS 80 F0 40 00 <aid> per app
 *   wipe:   DELETE 80 E4 00 80 4F <aid> per app (with related objects)
 */
#include "gateway/gw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api_util.h"
#include "gateway/audit.h"
#include "gateway/auth.h"
#include "gateway/keys.h"
#include "ota/ota.h"

#define AT_BOUND_MS (15LL * 60 * 1000) /* X.1127 I.2: disabled within 15 minutes */
#define AT_REQ_ID_MAX 64
#define AT_APDUS_MAX (GW_CONF_AT_APPS_MAX + 1)
#define AT_SCRIPT_MAX 1024 /* the engine's SCP80 script budget */

enum at_action { AT_LOCK = 0, AT_UNLOCK = 1, AT_WIPE = 2, AT__COUNT };

static const struct {
    const char *name;
    enum task_op op;
} at_actions[AT__COUNT] = {
    [AT_LOCK] = {"lock", TASK_OP_AT_LOCK},
    [AT_UNLOCK] = {"unlock", TASK_OP_AT_UNLOCK},
    [AT_WIPE] = {"wipe", TASK_OP_AT_WIPE},
};

/* The life of a request as the API names it. */
enum at_life {
    AT_L_REQUESTED = 0, /* queued or being built */
    AT_L_SENT = 1,      /* accepted by the network, PoR awaited */
    AT_L_EXECUTED = 2,  /* verified PoR, every command answered 9000 / 61xx */
    AT_L_FAILED = 3,    /* no verified PoR, or a command failed: reason says which */
    AT_L_CANCELLED = 4, /* cancelled or terminated by staff */
    AT_L__COUNT
};

static const char *const at_life_names[AT_L__COUNT] = {
    [AT_L_REQUESTED] = "requested", [AT_L_SENT] = "sent",           [AT_L_EXECUTED] = "executed",
    [AT_L_FAILED] = "failed",       [AT_L_CANCELLED] = "cancelled",
};

struct gw_antitheft {
    struct {
        uint64_t requested, refused, executed, failed;
    } per[AT__COUNT];
    uint64_t por_n, por_over_bound;
    int64_t por_sum_ms, por_max_ms, por_last_ms;
};

/*
 * Requests between eng_submit and their commit. Per process, as in
 * api_tasks.c: it only answers "is this request_id in flight", and the
 * accept callback must not depend on struct gw_antitheft (it may run while
 * the daemon stops).
 */
struct at_pend {
    struct at_pend *next;
    struct http_req *req;
    char key[STORE_IDEM_KEY_MAX + 1];
    json_t *body;
};

static struct at_pend *at_pend_head;

static bool pend_has(const char *key)
{
    for (struct at_pend *p = at_pend_head; p; p = p->next) {
        if (strcmp(p->key, key) == 0) {
            return true;
        }
    }
    return false;
}

static void pend_unlink(struct at_pend *x)
{
    for (struct at_pend **pp = &at_pend_head; *pp; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            return;
        }
    }
}

static void on_accept(void *arg, int64_t id, int rc)
{
    struct at_pend *p = arg;
    (void)id;
    pend_unlink(p);
    if (rc == 0) {
        http_respond_json(p->req, 202, p->body);
        p->body = NULL;
    } else {
        http_respond_error(p->req, 503, "commit-failed",
                           "the batch holding the request failed (%d); nothing was created", rc);
    }
    json_decref(p->body);
    free(p);
}

/* ---- small helpers ------------------------------------------------------------------ */

static const char *actor_of(const struct gw_principal *p)
{
    return p ? p->name : "anonymous";
}

/* ---- the scripts ------------------------------------------------------------------- */

/*
 * The action's C-APDUs as a TS 102 226 expanded-format command script (AA
 * template), in hex. -ENOENT (OTA_ERR_MISSING) when the configuration gives
 * the action nothing to act on.
 */
static int at_script(const struct gw_conf *c, enum at_action act, char *hex, size_t hex_cap,
                     size_t *n_apdus, struct ota_err *err)
{
    uint8_t raw[AT_APDUS_MAX][OTA_APDU_MAX_LEN];
    struct ota_apdu apdus[AT_APDUS_MAX];
    size_t n = 0;
    int len;
    bool card = c->at_card_lock && act != AT_WIPE;
    if (act == AT_WIPE ? c->at_n_apps == 0 : (c->at_n_apps == 0 && !card)) {
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "[antitheft] names nothing to %s (apps%s)",
                        at_actions[act].name, act == AT_WIPE ? "" : ", card_lock");
    }
    /* unlock opens the card first: a locked card may refuse the applications' commands */
    if (card && act == AT_UNLOCK) {
        len = ota_gp_set_status(OTA_GP_STATUS_SCOPE_ISD, OTA_GP_CARD_SECURED, NULL, 0, raw[n],
                                sizeof(raw[n]), err);
        if (len < 0) {
            return len;
        }
        if (ota_apdu_parse(raw[n], (size_t)len, &apdus[n], err) < 0) {
            return -EINVAL;
        }
        n++;
    }
    for (size_t i = 0; i < c->at_n_apps && i < GW_CONF_AT_APPS_MAX; i++) {
        const uint8_t *aid = c->at_apps[i].b;
        size_t aid_len = c->at_apps[i].len;
        if (act == AT_WIPE) {
            len = ota_gp_delete(aid, aid_len, true, NULL, 0, raw[n], sizeof(raw[n]), err);
        } else {
            len = ota_gp_set_status(OTA_GP_STATUS_SCOPE_APP,
                                    act == AT_LOCK ? OTA_GP_SET_STATUS_LOCK
                                                   : OTA_GP_SET_STATUS_UNLOCK,
                                    aid, aid_len, raw[n], sizeof(raw[n]), err);
        }
        if (len < 0) {
            return len;
        }
        if (ota_apdu_parse(raw[n], (size_t)len, &apdus[n], err) < 0) {
            return -EINVAL;
        }
        n++;
    }
    /* lock closes the card last, once the applications are locked */
    if (card && act == AT_LOCK) {
        len = ota_gp_set_status(OTA_GP_STATUS_SCOPE_ISD, OTA_GP_CARD_LOCKED, NULL, 0, raw[n],
                                sizeof(raw[n]), err);
        if (len < 0) {
            return len;
        }
        if (ota_apdu_parse(raw[n], (size_t)len, &apdus[n], err) < 0) {
            return -EINVAL;
        }
        n++;
    }
    uint8_t script[AT_SCRIPT_MAX];
    len = ota_rapdu_exp_cmd_build_apdus(apdus, n, false, script, sizeof(script), err);
    if (len < 0) {
        return len;
    }
    if ((size_t)len * 2 + 1 > hex_cap) {
        return ota_fail(err, -E2BIG, OTA_ERR_OVERSIZE, "script of %d octets", len);
    }
    api_hex_encode(script, (size_t)len, false, hex);
    *n_apdus = n;
    return 0;
}

/* ---- the life of a request -------------------------------------------------------------- */

struct at_view {
    enum at_life life;
    bool por_seen, por_verified, executed;
    int64_t por_ms; /* request -> verified PoR; -1 unknown */
    int64_t n_executed;
    size_t n_sent, n_sw;
    uint16_t sw[AT_APDUS_MAX];
    char por_status[3];
    int64_t cntr;
};

/* What the task row tells about the request. Can't fail: unreadable parts stay unknown. */
static void at_view_of(const struct eng_task_view *t, struct at_view *o)
{
    memset(o, 0, sizeof(*o));
    o->por_ms = -1;
    o->n_executed = -1;
    o->cntr = -1;
    json_t *res = t->result ? json_loads(t->result, 0, NULL) : NULL;
    const char *st = json_string_value(json_object_get(res, "por_status"));
    const char *data = json_string_value(json_object_get(res, "data"));
    json_t *jc = json_object_get(res, "cntr");
    if (st && strlen(st) == 2) {
        o->por_seen = true;
        memcpy(o->por_status, st, 3);
    }
    if (json_is_integer(jc)) {
        o->cntr = json_integer_value(jc);
    }
    /*
     * The engine makes a task done, or failed card-sw, only from a PoR of
     * status 00 whose checksum verified (eng_recon.c): that is the proof of
     * receipt. Error PoRs may come unprotected: they prove nothing.
     */
    o->por_verified =
        o->por_seen && strcmp(o->por_status, "00") == 0 &&
        (t->state == TASK_DONE || (t->state == TASK_FAILED && t->reason == TASK_R_CARD_SW));
    if (o->por_verified) {
        o->por_ms = t->updated_ms - t->created_ms;
    }
    /* proof of execution: every command of the script answered 9000 / 61xx */
    json_t *par = t->params ? json_loads(t->params, 0, NULL) : NULL;
    const char *script = json_string_value(json_object_get(par, "script"));
    uint8_t cmd[AT_SCRIPT_MAX], rsp[1024];
    size_t cl = 0, rl = 0;
    struct ota_rapdu_cmd_tlv tlvs[AT_APDUS_MAX * 2];
    size_t n_tlvs = 0;
    bool indef;
    if (script && api_hex_decode(script, cmd, 1, sizeof(cmd)) > 0) {
        cl = strlen(script) / 2;
        if (ota_rapdu_exp_cmd_parse(cmd, cl, tlvs, OTA_ARRAY_SIZE(tlvs), &n_tlvs, &indef, NULL) ==
            0) {
            o->n_sent = n_tlvs;
        }
    }
    if (o->por_verified && data && strlen(data) > 0 && strlen(data) / 2 <= sizeof(rsp) &&
        api_hex_decode(data, rsp, 1, sizeof(rsp)) > 0) {
        rl = strlen(data) / 2;
        struct ota_rapdu_exp_rsp r;
        struct ota_rapdu_rapdu ra[AT_APDUS_MAX];
        if (ota_rapdu_exp_rsp_parse(rsp, rl, &r, ra, OTA_ARRAY_SIZE(ra), NULL) == 0) {
            o->n_sw = r.n_rapdus;
            for (size_t i = 0; i < r.n_rapdus; i++) {
                o->sw[i] = ra[i].sw;
            }
            o->n_executed = r.has_n_executed ? r.n_executed : (int64_t)r.n_rapdus;
            o->executed = o->n_sent > 0 && ota_rapdu_exp_rsp_ok(&r, ra, o->n_sent);
        }
    }
    json_decref(res);
    json_decref(par);
    if (task_state_active(t->state)) {
        o->life = t->state == TASK_DISPATCHED ? AT_L_REQUESTED : AT_L_SENT;
    } else if (t->state == TASK_QUEUED) {
        o->life = AT_L_REQUESTED;
    } else if (t->state == TASK_DONE && o->executed) {
        o->life = AT_L_EXECUTED;
    } else if (t->state == TASK_CANCELLED) {
        o->life = AT_L_CANCELLED;
    } else {
        o->life = AT_L_FAILED;
    }
}

static int at_action_of(enum task_op op)
{
    for (int i = 0; i < AT__COUNT; i++) {
        if (at_actions[i].op == op) {
            return i;
        }
    }
    return -1;
}

/* Whether the packet reached the network: a state past dispatch, or a reason only a sent packet
 * has. */
static bool was_sent(const struct eng_task_view *t, const struct at_view *v)
{
    switch (t->reason) {
    case TASK_R_DLR_FAILED:
    case TASK_R_DLR_EXPIRED:
    case TASK_R_DLR_REJECTED:
    case TASK_R_DLR_MISSING:
    case TASK_R_POR_MISSING:
    case TASK_R_POR_BAD_CC:
    case TASK_R_POR_STALE_COUNTER:
    case TASK_R_POR_STATUS:
    case TASK_R_POR_MISMATCH:
    case TASK_R_CARD_SW:
        return true;
    default:
        return v->por_seen || t->state == TASK_SUBMITTED || t->state == TASK_DELIVERED ||
               t->state == TASK_DONE;
    }
}

struct sent_at {
    int64_t submitted_ms, dispatched_ms; /* of the last attempt; 0: none */
};

static int sent_ev(void *arg, int64_t seq, int64_t task, int64_t se, enum task_state from,
                   enum task_state to, enum task_reason reason, int64_t t_ms)
{
    struct sent_at *s = arg;
    (void)seq;
    (void)task;
    (void)se;
    (void)from;
    (void)reason;
    if (to == TASK_DISPATCHED) {
        /* a new attempt: an earlier attempt's acceptance is not this packet's */
        s->dispatched_ms = t_ms;
        s->submitted_ms = 0;
    } else if (to == TASK_SUBMITTED) {
        s->submitted_ms = t_ms;
    }
    return 0;
}

/*
 * When the packet went out, from the task's history (the engine's
 * task_event rows, [engine] keep_history): the network's acceptance
 * (-> submitted) of the last attempt, else, when it was sent but its
 * acceptance never came (a DLR or PoR before the submit result, then
 * failure), the hand-over to the bearer (-> dispatched). -1 when unknown
 * (no history kept, or the store failed: the answer shows null).
 */
static int64_t sent_ms_of(struct gw *g, int64_t id)
{
    struct sent_at s = {0, 0};
    struct ota_err err;
    if (store_task_events(eng_store(g->eng), id, sent_ev, &s, &err) < 0) {
        gw_log(g, GW_CONF_LOG_WARNING, "antitheft task=%lld history unreadable err=\"%s\"",
               (long long)id, err.msg);
        return -1;
    }
    return s.submitted_ms > 0 ? s.submitted_ms : s.dispatched_ms > 0 ? s.dispatched_ms : -1;
}

/*
 * The stages reached, in order: requested, sent, por-verified (proof of
 * receipt), then executed (proof of execution) / failed / cancelled.
 * sent_ms: see sent_ms_of (-1: at is null).
 */
static json_t *life_json(const struct eng_task_view *t, const struct at_view *v, int64_t sent_ms)
{
    json_t *a = json_array();
    json_array_append_new(
        a, json_pack("{s:s, s:o}", "stage", "requested", "at", api_time_json(t->created_ms)));
    if (was_sent(t, v)) {
        json_array_append_new(a, json_pack("{s:s, s:o}", "stage", "sent", "at",
                                           sent_ms > 0 ? api_time_json(sent_ms) : json_null()));
    }
    if (v->por_verified) {
        json_array_append_new(a, json_pack("{s:s, s:o}", "stage", "por-verified", "at",
                                           api_time_json(t->updated_ms)));
    }
    if (task_state_final(t->state)) {
        json_array_append_new(a, json_pack("{s:s, s:o}", "stage", at_life_names[v->life], "at",
                                           api_time_json(t->updated_ms)));
    }
    return a;
}

static json_t *at_view_json(const struct eng_task_view *t, const struct at_view *v, int64_t sent_ms)
{
    json_t *par = t->params ? json_loads(t->params, 0, NULL) : NULL;
    int act = at_action_of(t->op);
    json_t *o = json_object();
    char loc[64];
    snprintf(loc, sizeof(loc), "/v1/antitheft/%lld", (long long)t->id);
    json_object_set_new(o, "id", json_integer(t->id));
    json_object_set_new(o, "action", json_string(act >= 0 ? at_actions[act].name : "?"));
    json_object_set_new(o, "seid", json_string(t->seid ? t->seid : ""));
    json_t *m = json_object_get(par, "msisdn");
    json_object_set(o, "msisdn", json_is_string(m) ? m : json_null());
    json_t *rid = json_object_get(par, "request_id");
    json_object_set(o, "request_id", json_is_string(rid) ? rid : json_null());
    json_object_set_new(o, "state", json_string(at_life_names[v->life]));
    json_object_set_new(o, "task_state", json_string(task_state_name(t->state)));
    json_object_set_new(o, "reason", json_string(task_reason_name(t->reason)));
    json_object_set_new(o, "reason_text", json_string(t->reason_text ? t->reason_text : ""));
    json_object_set_new(o, "attempts", json_integer(t->attempts));
    json_object_set_new(o, "requested_at", api_time_json(t->created_ms));
    json_object_set_new(o, "updated_at", api_time_json(t->updated_ms));
    json_t *sec = json_object_get(par, "security");
    json_object_set(o, "security", json_is_object(sec) ? sec : json_null());

    json_t *por = json_object();
    json_object_set_new(por, "verified", json_boolean(v->por_verified));
    json_object_set_new(por, "status", v->por_seen ? json_string(v->por_status) : json_null());
    json_object_set_new(por, "cntr", v->cntr >= 0 ? json_integer(v->cntr) : json_null());
    json_object_set_new(por, "at", v->por_verified ? api_time_json(t->updated_ms) : json_null());
    json_object_set_new(por, "ms", v->por_ms >= 0 ? json_integer(v->por_ms) : json_null());
    json_object_set_new(por, "bound_ms", json_integer(AT_BOUND_MS));
    /* still open: the bound is already lost once 15 minutes have passed */
    bool within = v->por_ms >= 0
                      ? v->por_ms <= AT_BOUND_MS
                      : api_now_ms() - t->created_ms <= AT_BOUND_MS && !task_state_final(t->state);
    json_object_set_new(por, "within_bound", json_boolean(within));
    json_object_set_new(o, "proof_of_receipt", por);

    json_t *ex = json_object();
    json_t *sws = json_array();
    for (size_t i = 0; i < v->n_sw; i++) {
        char w[5];
        snprintf(w, sizeof(w), "%04x", v->sw[i]);
        json_array_append_new(sws, json_string(w));
    }
    json_object_set_new(ex, "executed", json_boolean(v->executed));
    json_object_set_new(ex, "commands", json_integer((json_int_t)v->n_sent));
    json_object_set_new(ex, "commands_executed",
                        v->n_executed >= 0 ? json_integer(v->n_executed) : json_null());
    json_object_set_new(ex, "status_words", sws);
    json_object_set_new(o, "proof_of_execution", ex);
    json_object_set_new(o, "life", life_json(t, v, sent_ms));
    json_t *cb = json_object_get(par, "callback_url");
    json_object_set(o, "callback_url", json_is_string(cb) ? cb : json_null());
    json_object_set_new(o, "location", json_string(loc));
    json_decref(par);
    return o;
}

/* ---- POST /v1/antitheft/{action} ---------------------------------------------------------- */

/* The X.1127 security indication of the forced SPI, for the answer and the record. */
static json_t *security_json(const uint8_t spi_raw[2], uint8_t kic, uint8_t kid)
{
    struct ota_scp80_spi spi;
    enum ota_scp80_alg ka = OTA_SCP80_ALG_IMPLICIT, da = OTA_SCP80_ALG_IMPLICIT;
    char sh[5];
    api_hex_encode(spi_raw, 2, false, sh);
    if (ota_scp80_spi_decode(spi_raw, 2, &spi, NULL) < 0 ||
        ota_scp80_kic_decode(kic, NULL, &ka, NULL) < 0 ||
        ota_scp80_kid_decode(kid, OTA_SCP80_INTEGRITY_CC, NULL, &da, NULL) < 0) {
        return json_pack("{s:s}", "spi", sh);
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "spi", sh, "ciphering",
                     ota_scp80_alg_name(ka), "checksum", ota_scp80_alg_name(da), "counter",
                     ota_scp80_cntr_mode_name(spi.cntr_mode), "por",
                     ota_scp80_por_req_name(spi.por), "por_integrity",
                     ota_scp80_integrity_name(spi.por_integrity), "por_ciphered", spi.por_ciphered);
}

/* Refused: audited and counted, then answered. */
static void refuse(struct gw *g, struct http_req *req, enum at_action act, const char *actor,
                   const char *seid, int status, const char *code, const char *msg)
{
    char target[80];
    snprintf(target, sizeof(target), "se:%.64s", seid ? seid : "-");
    char action[40];
    snprintf(action, sizeof(action), "antitheft.%s.refused", at_actions[act].name);
    (void)gw_audit(g, actor, action, target, "code=%s", code);
    if (g->antitheft) {
        g->antitheft->per[act].refused++;
    }
    gw_log(g, GW_CONF_LOG_WARNING, "antitheft refused action=%s se=%s code=%s actor=%s",
           at_actions[act].name, seid ? seid : "-", code, actor);
    http_respond_error(req, status, code, "%s", msg);
}

/* A non-anti-theft task holding the SE's one link is ended: the request must not wait for it. */
static void preempt(struct gw *g, const char *seid, const char *actor)
{
    int64_t active = 0, q[1];
    size_t nq = 0;
    struct ota_err err;
    if (eng_se_tasks(g->eng, seid, &active, q, 1, &nq, &err) < 0 || active == 0) {
        return;
    }
    struct eng_task_view v;
    if (eng_task_get(g->eng, active, &v, &err) < 0 || task_op_antitheft(v.op)) {
        return;
    }
    if (eng_task_terminate(g->eng, active, &err) == 0) {
        char target[32];
        snprintf(target, sizeof(target), "task:%lld", (long long)active);
        (void)gw_audit(g, actor, "antitheft.preempt", target, "se=%s", seid);
        gw_log(g, GW_CONF_LOG_NOTICE, "antitheft preempted task=%lld se=%s", (long long)active,
               seid);
    }
}

static void h_post(struct http_req *req, struct gw *g, enum at_action act)
{
    const struct gw_principal *pr = gw_req_principal(req);
    const char *actor = actor_of(pr);
    struct ota_err err;
    json_t *b = http_req_json(req, &err);
    if (!b) {
        http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    if (!json_is_object(b)) {
        http_respond_error(req, 400, "bad-json", "the body must be a JSON object");
        return;
    }
    static const char *const allowed[] = {"seid", "msisdn", "request_id", "callback_url", NULL};
    const char *unknown = api_unknown_member(b, allowed);
    if (unknown) {
        http_respond_error(req, 400, "unknown-field", "%.64s: unknown field", unknown);
        return;
    }
    bool answered = false;
    const char *seid = api_str_member(req, b, "seid", true, &answered);
    const char *msisdn = answered ? NULL : api_str_member(req, b, "msisdn", true, &answered);
    const char *rid = answered ? NULL : api_str_member(req, b, "request_id", true, &answered);
    const char *cb = answered ? NULL : api_str_member(req, b, "callback_url", false, &answered);
    if (answered) {
        return;
    }
    if (!api_seid_ok(seid)) {
        http_respond_error(req, 400, "invalid-field",
                           "seid: 1..64 printable characters (no space, '/', '?', '#', '%%')");
        return;
    }
    if (!api_digits_ok(msisdn, 1, STORE_MSISDN_MAX)) {
        http_respond_error(req, 400, "invalid-field", "msisdn: 1..%d digits", STORE_MSISDN_MAX);
        return;
    }
    if (!api_printable(rid, 1, AT_REQ_ID_MAX)) {
        http_respond_error(req, 400, "invalid-field", "request_id: 1..%d printable characters",
                           AT_REQ_ID_MAX);
        return;
    }
    if (cb && !api_url_ok(cb)) {
        http_respond_error(req, 400, "invalid-field", "callback_url: an http(s):// URL");
        return;
    }
    if (cb && !g->conf.plain_http && strncmp(cb, "https://", 8) != 0) {
        http_respond_error(req, 400, "invalid-field",
                           "callback_url: must be https:// (http:// only with plain_http = yes)");
        return;
    }

    /*
     * request_id: idempotent per principal (X.1127: the authorisation
     * server's request). Hashed, not spelled out: actor and request_id
     * together may exceed STORE_IDEM_KEY_MAX, and a cut key would make two
     * request_ids one; the prefix is refused as a raw Idempotency-Key.
     */
    char key[STORE_IDEM_KEY_MAX + 1];
    if (api_idem_key_derive(API_IDEM_ANTITHEFT_PREFIX, actor, rid, key, sizeof(key)) < 0) {
        http_respond_error(req, 500, "internal", "hash failed");
        return;
    }
    uint8_t hash[32];
    char *canon = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    size_t wl = canon ? strlen(canon) + 64 : 0;
    char *what = canon ? malloc(wl) : NULL;
    if (what) {
        snprintf(what, wl, "POST /v1/antitheft/%s\n%s", at_actions[act].name, canon);
    }
    free(canon);
    if (!what || api_sha256(what, strlen(what), hash) < 0) {
        free(what);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    free(what);
    if (pend_has(key)) {
        http_req_set_header(req, "Retry-After", "1");
        http_respond_error(req, 409, "request-in-progress",
                           "a request with this request_id is still being committed");
        return;
    }
    struct store *st = eng_store(g->eng);
    uint8_t stored[32];
    int status = 0;
    char *resp = NULL;
    int rc = store_idem_get(st, key, stored, &status, &resp, NULL, &err);
    if (rc == 0) {
        if (memcmp(stored, hash, 32) != 0) {
            free(resp);
            http_respond_error(req, 409, "request-id-conflict",
                               "request_id was used with a different request");
            return;
        }
        http_req_set_header(req, "Idempotent-Replayed", "true");
        http_respond_raw(req, status, "application/json", resp, strlen(resp));
        free(resp);
        return;
    }
    if (rc != -ENOENT) {
        api_respond_rc(req, rc, "internal", &err);
        return;
    }

    /* the SE, bound to the owner's MSISDN */
    struct store_se se;
    rc = store_se_find(st, seid, &se, &err);
    if (rc == -ENOENT) {
        refuse(g, req, act, actor, seid, 404, "se-not-found", "seid: not registered");
        return;
    }
    if (rc < 0) {
        api_respond_rc(req, rc, "internal", &err);
        return;
    }
    if (strcmp(se.msisdn, msisdn) != 0) {
        refuse(g, req, act, actor, seid, 409, "msisdn-mismatch",
               "msisdn: not the MSISDN the SE is bound to");
        return;
    }

    /* what goes to the card */
    char script[AT_SCRIPT_MAX * 2 + 1];
    size_t n_apdus = 0;
    rc = at_script(&g->conf, act, script, sizeof(script), &n_apdus, &err);
    if (rc < 0) {
        refuse(g, req, act, actor, seid, rc == -ENOENT ? 409 : 500,
               rc == -ENOENT ? "not-configured" : "internal", err.msg);
        return;
    }

    /* the SE's key set must already give the minimum (never lowered, X.1127 7.4.1) */
    struct eng_scp80_keys k;
    memset(&k, 0, sizeof(k));
    rc = g->keys ? gw_keys_get_scp80(g->keys, seid, g->conf.at_tar, &k, &err)
                 : ota_fail(&err, -ENOENT, OTA_ERR_KEY, "no key store");
    uint8_t spi[2] = {0, 0};
    bool weaker = false;
    int src = rc;
    if (rc == 0) {
        rc = eng_spi_antitheft(k.spi, k.kic, k.kid, spi, &weaker, &err);
    }
    uint8_t kic = k.kic, kid = k.kid;
    ota_key_wipe(&k.kic_key);
    ota_key_wipe(&k.kid_key);
    if (src == -ENOENT) {
        refuse(g, req, act, actor, seid, 409, "keyset-missing", "no SCP80 key set for the SE");
        return;
    }
    if (src < 0) {
        api_respond_rc(req, src, "internal", &err);
        return;
    }
    if (rc < 0 || weaker) {
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "the SE's key set (SPI %02x%02x, KIc %02x, KID %02x) is below the anti-theft "
                 "minimum: ciphering, CC, counter higher, PoR always and CC-protected, 112-bit "
                 "algorithms%s%.160s",
                 k.spi[0], k.spi[1], kic, kid, rc < 0 ? ": " : "", rc < 0 ? err.msg : "");
        refuse(g, req, act, actor, seid, 409, "keyset-too-weak", msg);
        return;
    }

    json_t *sec = security_json(spi, kic, kid);
    char tar[7];
    api_hex_encode(g->conf.at_tar, 3, false, tar);
    json_t *par =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "tar", tar, "script", script, "action",
                  at_actions[act].name, "request_id", rid, "msisdn", msisdn, "security", sec);
    /* params.owner as api_tasks.c records it: who may see the request (gw_principal_owns) */
    const char *owner = gw_principal_owner(pr);
    if (par && owner) {
        json_object_set_new(par, "owner", json_string(owner));
    }
    if (par && cb) {
        json_object_set_new(par, "callback_url", json_string(cb));
    }
    char *params = par ? json_dumps(par, JSON_COMPACT) : NULL;
    json_decref(par);
    if (!params || !sec) {
        free(params);
        json_decref(sec);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }

    /* audited before it exists: no audit entry, no lock (gateway/audit.h) */
    char target[80], action[32];
    snprintf(target, sizeof(target), "se:%s", seid);
    snprintf(action, sizeof(action), "antitheft.%s", at_actions[act].name);
    if (gw_audit(g, actor, action, target, "request_id=%s msisdn=%s spi=%s", rid, msisdn,
                 json_string_value(json_object_get(sec, "spi"))) < 0) {
        free(params);
        json_decref(sec);
        http_respond_error(req, 503, "audit-failed", "the audit entry could not be written");
        return;
    }

    struct eng_task_spec spec = {
        .seid = seid,
        .op = at_actions[act].op,
        .channel = TASK_CH_SCP80,
        .params = params,
        .prio = TASK_PRIO_MAX,
    };
    struct at_pend *p = calloc(1, sizeof(*p));
    json_t *ans = json_object();
    if (!p || !ans) {
        free(p);
        json_decref(ans);
        free(params);
        json_decref(sec);
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->req = req;
    p->next = at_pend_head;
    at_pend_head = p;
    int64_t id = 0;
    rc = eng_submit(g->eng, &spec, on_accept, p, &id, &err);
    free(params);
    if (rc < 0) {
        pend_unlink(p);
        free(p);
        json_decref(ans);
        json_decref(sec);
        api_respond_rc(req, rc, rc == -ENOENT ? "se-not-found" : "refused", &err);
        return;
    }
    /* once the request exists: a refused one must not have ended another task */
    preempt(g, seid, actor);
    char loc[64];
    snprintf(loc, sizeof(loc), "/v1/antitheft/%lld", (long long)id);
    json_object_set_new(ans, "id", json_integer(id));
    json_object_set_new(ans, "action", json_string(at_actions[act].name));
    json_object_set_new(ans, "seid", json_string(seid));
    json_object_set_new(ans, "msisdn", json_string(msisdn));
    json_object_set_new(ans, "request_id", json_string(rid));
    json_object_set_new(ans, "state", json_string(at_life_names[AT_L_REQUESTED]));
    json_object_set_new(ans, "requested_at", api_time_json(api_now_ms()));
    json_object_set_new(ans, "security", sec);
    json_object_set_new(ans, "callback_url", cb ? json_string(cb) : json_null());
    json_object_set_new(ans, "location", json_string(loc));
    p->body = ans;
    http_req_set_header(req, "Location", loc);
    if (g->antitheft) {
        g->antitheft->per[act].requested++;
    }
    gw_log(g, GW_CONF_LOG_NOTICE,
           "antitheft requested task=%lld action=%s se=%s request_id=%s actor=%s", (long long)id,
           at_actions[act].name, seid, rid, actor);
    /* the record goes in the task's batch: both durable or neither (as api_tasks.c) */
    char *txt = json_dumps(ans, JSON_COMPACT);
    rc = txt ? store_idem_put(st, key, hash, 202, txt, api_now_ms(), &err)
             : ota_fail(&err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
    free(txt);
    if (rc < 0) {
        eng_fail_stop(g->eng, rc, &err);
    }
}

static void h_lock(struct http_req *req, void *arg)
{
    h_post(req, arg, AT_LOCK);
}

static void h_unlock(struct http_req *req, void *arg)
{
    h_post(req, arg, AT_UNLOCK);
}

static void h_wipe(struct http_req *req, void *arg)
{
    h_post(req, arg, AT_WIPE);
}

/* ---- GET /v1/antitheft/{id} ------------------------------------------------------------ */

static void h_get(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    int64_t id;
    if (!api_parse_id(http_req_param(req, "id"), &id)) {
        http_respond_error(req, 400, "invalid-id", "id: a positive decimal number");
        return;
    }
    struct eng_task_view t;
    struct ota_err err;
    int rc = eng_task_get(g->eng, id, &t, &err);
    if (rc < 0) {
        api_respond_rc(req, rc, "not-found", &err);
        return;
    }
    json_t *par = t.params ? json_loads(t.params, 0, NULL) : NULL;
    const char *owner = json_string_value(json_object_get(par, "owner"));
    bool mine = gw_principal_owns(gw_req_principal(req), owner && owner[0] ? owner : NULL);
    json_decref(par);
    /* another principal's request, or no anti-theft task: the same answer */
    if (!task_op_antitheft(t.op) || !mine) {
        http_respond_error(req, 404, "not-found", "no anti-theft request %lld", (long long)id);
        return;
    }
    struct at_view v;
    at_view_of(&t, &v);
    json_t *o = at_view_json(&t, &v, was_sent(&t, &v) ? sent_ms_of(g, id) : -1);
    if (!o) {
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    http_respond_json(req, 200, o);
}

/* ---- the engine's final hook -------------------------------------------------------------- */

void gw_antitheft_task_final(struct gw *g, const struct eng_task_view *t)
{
    int act = t ? at_action_of(t->op) : -1;
    if (!g || act < 0) {
        return;
    }
    struct at_view v;
    at_view_of(t, &v);
    json_t *par = t->params ? json_loads(t->params, 0, NULL) : NULL;
    const char *owner = json_string_value(json_object_get(par, "owner"));
    const char *rid = json_string_value(json_object_get(par, "request_id"));
    char actor[GW_AUTH_NAME_MAX + 1];
    snprintf(actor, sizeof(actor), "%s", owner && owner[0] ? owner : "system");
    char req_id[AT_REQ_ID_MAX + 1];
    snprintf(req_id, sizeof(req_id), "%s", rid ? rid : "");
    json_decref(par);
    struct gw_antitheft *at = g->antitheft;
    char target[32];
    snprintf(target, sizeof(target), "task:%lld", (long long)t->id);
    char action[40];
    if (v.por_verified) {
        bool within = v.por_ms <= AT_BOUND_MS;
        if (at) {
            at->por_n++;
            at->por_sum_ms += v.por_ms;
            at->por_last_ms = v.por_ms;
            at->por_max_ms = v.por_ms > at->por_max_ms ? v.por_ms : at->por_max_ms;
            at->por_over_bound += within ? 0 : 1;
        }
        gw_log(g, within ? GW_CONF_LOG_NOTICE : GW_CONF_LOG_WARNING,
               "antitheft por verified task=%lld action=%s se=%s request_id=%s por_ms=%lld "
               "bound_ms=%lld within_bound=%s cntr=%lld",
               (long long)t->id, at_actions[act].name, t->seid ? t->seid : "", req_id,
               (long long)v.por_ms, (long long)AT_BOUND_MS, within ? "yes" : "no",
               (long long)v.cntr);
        snprintf(action, sizeof(action), "antitheft.%s.por", at_actions[act].name);
        (void)gw_audit(g, actor, action, target, "se=%s request_id=%s por_ms=%lld within_bound=%s",
                       t->seid ? t->seid : "", req_id, (long long)v.por_ms, within ? "yes" : "no");
    }
    if (at) {
        if (v.life == AT_L_EXECUTED) {
            at->per[act].executed++;
        } else {
            at->per[act].failed++;
        }
    }
    char sws[AT_APDUS_MAX * 5 + 1] = "";
    size_t sl = 0;
    for (size_t i = 0; i < v.n_sw && sl + 6 <= sizeof(sws); i++) {
        sl += (size_t)snprintf(sws + sl, sizeof(sws) - sl, "%s%04x", i ? "," : "", v.sw[i]);
    }
    gw_log(g, v.life == AT_L_EXECUTED ? GW_CONF_LOG_NOTICE : GW_CONF_LOG_WARNING,
           "antitheft result task=%lld action=%s se=%s request_id=%s state=%s reason=%s sw=%s",
           (long long)t->id, at_actions[act].name, t->seid ? t->seid : "", req_id,
           at_life_names[v.life], task_reason_name(t->reason), sws[0] ? sws : "-");
    snprintf(action, sizeof(action), "antitheft.%s.result", at_actions[act].name);
    (void)gw_audit(g, actor, action, target, "se=%s request_id=%s state=%s reason=%s sw=%s",
                   t->seid ? t->seid : "", req_id, at_life_names[v.life],
                   task_reason_name(t->reason), sws[0] ? sws : "-");
}

/* ---- stats ---------------------------------------------------------------------------------- */

json_t *gw_antitheft_stats_json(const struct gw *g)
{
    static const struct gw_antitheft zero;
    const struct gw_antitheft *at = g && g->antitheft ? g->antitheft : &zero;
    json_t *o = json_object();
    if (!o) {
        return NULL;
    }
    for (int i = 0; i < AT__COUNT; i++) {
        json_object_set_new(
            o, at_actions[i].name,
            json_pack("{s:I, s:I, s:I, s:I}", "requested", (json_int_t)at->per[i].requested,
                      "refused", (json_int_t)at->per[i].refused, "executed",
                      (json_int_t)at->per[i].executed, "failed", (json_int_t)at->per[i].failed));
    }
    json_object_set_new(
        o, "por",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "verified", (json_int_t)at->por_n, "last_ms",
                  (json_int_t)at->por_last_ms, "max_ms", (json_int_t)at->por_max_ms, "mean_ms",
                  (json_int_t)(at->por_n ? at->por_sum_ms / (int64_t)at->por_n : 0), "over_bound",
                  (json_int_t)at->por_over_bound, "bound_ms", (json_int_t)AT_BOUND_MS));
    return o;
}

/* ---- start / stop ------------------------------------------------------------------------- */

int gw_antitheft_start(struct gw *g, struct ota_err *err)
{
    if (!g->antitheft) {
        g->antitheft = calloc(1, sizeof(*g->antitheft));
        if (!g->antitheft) {
            return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
        }
    }
    static const struct {
        const char *method, *pattern;
        http_handler h;
    } routes[] = {
        {"POST", "/v1/antitheft/lock", h_lock},
        {"POST", "/v1/antitheft/unlock", h_unlock},
        {"POST", "/v1/antitheft/wipe", h_wipe},
        {"GET", "/v1/antitheft/{id}", h_get},
    };
    for (size_t i = 0; i < OTA_ARRAY_SIZE(routes); i++) {
        int rc = gw_route(g, routes[i].method, routes[i].pattern, GW_ROLE_ANTITHEFT, routes[i].h, g,
                          err);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

void gw_antitheft_stop(struct gw *g)
{
    if (!g) {
        return;
    }
    free(g->antitheft);
    g->antitheft = NULL;
}
