/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reconciliation: what comes back from the network and the wallet, matched
 * to exactly one active task or logged (store_report) as late / duplicate /
 * unknown / mismatched.
 *   - submit results by token (task id, attempt, part): an older attempt's
 *     result is late;
 *   - DLRs by canonical message id (active map, else the store: late);
 *   - PoRs (MO SMS) by the originating MSISDN's active SCP80 tasks, trusted
 *     only when they decode with the SE's keys (CC verified) and repeat the
 *     TAR and counter of the packet sent (TS 102 225 5.2);
 *   - wallet pulls by push serial (spec 5.8.5.2), one use;
 *   - wait timers (DLR, PoR, pull, session) and deadlines.
 * Retry policy: bearer and DLR reasons retry while attempts remain; PoR
 * reasons never do (the card may have run the script).
 */
#include "queue/eng_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ota/ota.h"

#define RAPDU_MAX 64

static int acks_later(struct eng *e)
{
    e->acks_pending = true;
    e->acks_held++;
    return BEARER_ACK_LATER;
}

static int report(struct eng *e, enum store_report_kind kind, enum store_report_disp disp,
                  int64_t task, const char *detail)
{
    struct ota_err err;
    switch (disp) {
    case STORE_DISP_LATE:
        e->stats.late++;
        break;
    case STORE_DISP_DUPLICATE:
        e->stats.duplicate++;
        break;
    case STORE_DISP_UNKNOWN:
        e->stats.unknown++;
        break;
    default:
        e->stats.mismatched++;
        break;
    }
    eng_log(e, 6, "report kind=%d disp=%d task=%lld: %s", (int)kind, (int)disp, (long long)task,
            detail);
    int rc = store_report(e->st, kind, disp, task, eng_now_ms(e), detail, &err);
    if (rc < 0) {
        eng_stop(e, rc, &err);
    }
    return rc;
}

int eng_retry_or_fail(struct eng *e, struct eng_atask *a, enum task_reason r, const char *text)
{
    struct eng_tr tr = {.a = a};
    if (a->attempts < a->max_attempts) {
        return eng_transition(e, &tr, TASK_QUEUED, r, text);
    }
    return eng_transition(e, &tr, TASK_FAILED, r, text);
}

/*
 * What PoR the task's SPI asks for (TS 102 225 5.1.1, second octet b2b1).
 * After a restart the coding is asked from the key hook again; when that
 * fails, "always" (the task then waits and fails por-missing at worst).
 */
static enum ota_scp80_por_req por_req_of(struct eng *e, struct eng_atask *a)
{
    struct ota_scp80_spi spi;
    uint8_t raw[2];
    if (a->have_spi) {
        memcpy(raw, a->spi, 2);
    } else {
        struct eng_scp80_keys k;
        struct ota_err err;
        memset(&k, 0, sizeof(k));
        int rc = e->hooks.scp80_keys ? e->hooks.scp80_keys(e->hooks.arg, a->seid, a->tar, &k, &err)
                                     : -ENOENT;
        ota_key_wipe(&k.kic_key);
        ota_key_wipe(&k.kid_key);
        if (rc < 0) {
            return OTA_SCP80_POR_ALWAYS;
        }
        memcpy(raw, k.spi, 2);
    }
    if (ota_scp80_spi_decode(raw, 2, &spi, NULL) < 0) {
        return OTA_SCP80_POR_ALWAYS;
    }
    return spi.por;
}

/* Every part accepted: wait for the DLRs, or for what follows delivery. */
static void all_accepted(struct eng *e, struct eng_atask *a)
{
    struct eng_tr tr = {.a = a};
    if (e->conf.want_dlr) {
        eng_arm_wait(e, a, ENG_W_DLR, e->conf.dlr_timeout_s);
    } else if (a->channel == TASK_CH_SCP80 && por_req_of(e, a) == OTA_SCP80_POR_NONE) {
        /* no PoR asked for: acceptance by the network is all we will learn */
        if (eng_transition(e, &tr, TASK_SUBMITTED, TASK_R_NONE, "") == 0) {
            eng_transition(e, &tr, TASK_DONE, TASK_R_NONE, "submitted, no PoR requested");
        }
        return;
    } else if (a->channel == TASK_CH_SCP80) {
        eng_arm_wait(e, a, ENG_W_POR, e->conf.por_timeout_s);
    } else if (e->conf.push_wait_pull) {
        eng_arm_wait(e, a, ENG_W_PULL, e->conf.pull_timeout_s);
    } else {
        if (eng_transition(e, &tr, TASK_SUBMITTED, TASK_R_NONE, "") == 0) {
            eng_transition(e, &tr, TASK_DONE, TASK_R_NONE, "push submitted");
        }
        return;
    }
    eng_transition(e, &tr, TASK_SUBMITTED, TASK_R_NONE, "");
}

void eng_on_submit_result(struct eng *e, const struct bearer_submit_result *r)
{
    if (e->run != ENG_RUNNING || !r) {
        return;
    }
    int64_t id = (int64_t)(r->token >> 16);
    unsigned attempt = (unsigned)(r->token >> 8) & 0xff;
    unsigned part = (unsigned)r->token & 0xff;
    struct eng_atask *a = eng_active_get(e, id);
    char detail[160];
    snprintf(detail, sizeof(detail), "submit %s part %u attempt %u code %d id %s",
             bearer_submit_status_name(r->status), part, attempt, r->code, r->msg_id);
    if (!a || (a->attempts & 0xff) != attempt || a->state != TASK_DISPATCHED || part < 1 ||
        part > a->n_parts || a->parts[part - 1].accepted) {
        report(e, STORE_REP_SUBMIT, a || id > 0 ? STORE_DISP_LATE : STORE_DISP_UNKNOWN, id, detail);
        return;
    }
    struct eng_part *p = &a->parts[part - 1];
    struct ota_err err;
    switch (r->status) {
    case BEARER_SUBMIT_OK: {
        if (!r->msg_id[0]) {
            eng_retry_or_fail(e, a, TASK_R_BEARER_REJECTED, "accepted without a message id");
            return;
        }
        snprintf(p->msg_id, sizeof(p->msg_id), "%.*s", (int)sizeof(p->msg_id) - 1, r->msg_id);
        int rc = store_part_put(e->st, a->id, (uint8_t)part, p->msg_id, &err);
        if (rc == -EINVAL) {
            /* no DLR could ever be matched to it: treat as a refusal of the part */
            p->msg_id[0] = '\0';
            eng_log(e, 4, "task=%lld se=%s part %u: unusable message id: %s", (long long)a->id,
                    a->seid, part, err.msg);
            eng_retry_or_fail(e, a, TASK_R_BEARER_REJECTED, "unusable message id");
            return;
        }
        if (rc < 0) {
            eng_stop(e, rc, &err);
            return;
        }
        p->accepted = true;
        if (eng_map_put(&e->by_msgid, p->msg_id, strlen(p->msg_id), a, part - 1) < 0) {
            eng_stop(e, -ENOMEM, NULL);
            return;
        }
        for (unsigned i = 0; i < a->n_parts; i++) {
            if (!a->parts[i].accepted) {
                return;
            }
        }
        all_accepted(e, a);
        return;
    }
    case BEARER_SUBMIT_RETRYABLE:
        eng_log(e, 4, "task=%lld se=%s part %u not accepted: %s", (long long)a->id, a->seid, part,
                r->reason ? r->reason : "");
        eng_retry_or_fail(e, a, TASK_R_BEARER_TIMEOUT, r->reason ? r->reason : "retryable");
        return;
    default: {
        struct eng_tr tr = {.a = a};
        char text[STORE_REASON_TEXT_MAX];
        snprintf(text, sizeof(text), "code %d %s", r->code, r->reason ? r->reason : "");
        eng_transition(e, &tr, TASK_FAILED, TASK_R_BEARER_REJECTED, text);
        return;
    }
    }
}

/* Every part delivered: SCP80 waits for the PoR, a push for the pull (or is done). */
static void all_delivered(struct eng *e, struct eng_atask *a)
{
    struct eng_tr tr = {.a = a};
    if (a->channel == TASK_CH_SCP80 && por_req_of(e, a) == OTA_SCP80_POR_NONE) {
        if (eng_transition(e, &tr, TASK_DELIVERED, TASK_R_NONE, "") == 0) {
            eng_transition(e, &tr, TASK_DONE, TASK_R_NONE, "delivered, no PoR requested");
        }
    } else if (a->channel == TASK_CH_SCP80) {
        eng_arm_wait(e, a, ENG_W_POR, e->conf.por_timeout_s);
        eng_transition(e, &tr, TASK_DELIVERED, TASK_R_NONE, "");
    } else if (e->conf.push_wait_pull) {
        eng_arm_wait(e, a, ENG_W_PULL, e->conf.pull_timeout_s);
        eng_transition(e, &tr, TASK_DELIVERED, TASK_R_NONE, "");
    } else {
        if (eng_transition(e, &tr, TASK_DELIVERED, TASK_R_NONE, "") == 0) {
            eng_transition(e, &tr, TASK_DONE, TASK_R_NONE, "push delivered");
        }
    }
}

int eng_on_dlr(struct eng *e, const struct bearer_dlr *d)
{
    if (e->run != ENG_RUNNING) {
        return -ESHUTDOWN; /* not taken: the network redelivers after the restart */
    }
    if (!d) {
        return 0;
    }
    e->stats.dlrs++;
    char detail[160];
    snprintf(detail, sizeof(detail), "dlr %s id %s stat %s err %d", bearer_dlr_state_name(d->state),
             d->msg_id, d->stat, d->err);
    /*
     * Kannel carries our part token back (dlr_url) and names the SMSC's own
     * message id, not the one bearerbox acked: the token is the match there,
     * checked against the current attempt like a submit result.
     */
    struct eng_map_ent *ent = NULL;
    if (d->has_token) {
        unsigned tatt = (unsigned)(d->token >> 8) & 0xff;
        unsigned tp = (unsigned)d->token & 0xff;
        struct eng_atask *ta = eng_active_get(e, (int64_t)(d->token >> 16));
        if (ta && (ta->attempts & 0xff) == tatt && tp >= 1 && tp <= ta->n_parts &&
            ta->parts[tp - 1].msg_id[0]) {
            ent = eng_map_get(&e->by_msgid, ta->parts[tp - 1].msg_id,
                              strlen(ta->parts[tp - 1].msg_id));
        }
    }
    if (!ent) {
        ent = eng_map_get(&e->by_msgid, d->msg_id, strnlen(d->msg_id, sizeof(d->msg_id)));
    }
    struct ota_err err;
    if (!ent) {
        int64_t task = 0;
        uint8_t part = 0;
        enum store_dlr sd;
        int rc = store_part_find(e->st, d->msg_id, &task, &part, &sd, &err);
        if (rc == -EINVAL) {
            rc = -ENOENT; /* a message id we could never have stored */
        }
        if (rc < 0 && rc != -ENOENT) {
            eng_stop(e, rc, &err);
            return rc;
        }
        if (!d->final) {
            return 0; /* an intermediate report of a task we no longer wait for */
        }
        report(e, STORE_REP_DLR, rc == 0 ? STORE_DISP_LATE : STORE_DISP_UNKNOWN, task, detail);
        return acks_later(e);
    }
    struct eng_atask *a = ent->val;
    unsigned i = ent->aux;
    struct eng_part *p = &a->parts[i];
    if (!d->final) {
        eng_log(e, 7, "task=%lld part %u: intermediate dlr %s", (long long)a->id, i + 1,
                bearer_dlr_state_name(d->state));
        return 0;
    }
    if (p->dlr != STORE_DLR_NONE) {
        report(e, STORE_REP_DLR, STORE_DISP_DUPLICATE, a->id, detail);
        return acks_later(e);
    }
    bool ok = d->state == BEARER_DLR_DELIVERED;
    p->dlr = ok ? STORE_DLR_DELIVERED : STORE_DLR_FAILED;
    int rc = store_part_dlr(e->st, a->id, (uint8_t)(i + 1), p->dlr, &err);
    if (rc < 0) {
        eng_stop(e, rc, &err);
        return rc;
    }
    if (!ok) {
        enum task_reason r = d->state == BEARER_DLR_EXPIRED    ? TASK_R_DLR_EXPIRED
                             : d->state == BEARER_DLR_REJECTED ? TASK_R_DLR_REJECTED
                                                               : TASK_R_DLR_FAILED;
        char text[STORE_REASON_TEXT_MAX];
        snprintf(text, sizeof(text), "part %u: %s stat %s err %d", i + 1,
                 bearer_dlr_state_name(d->state), d->stat, d->err);
        eng_retry_or_fail(e, a, r, text);
        return acks_later(e);
    }
    if (a->state != TASK_SUBMITTED) {
        return acks_later(e); /* dispatched: the remaining submit results decide */
    }
    for (unsigned k = 0; k < a->n_parts; k++) {
        if (a->parts[k].dlr != STORE_DLR_DELIVERED) {
            return acks_later(e);
        }
    }
    all_delivered(e, a);
    return acks_later(e);
}

/* ---- PoR ----------------------------------------------------------------------------- */

static bool sw_ok(uint16_t sw)
{
    return sw == 0x9000 || (sw & 0xff00) == 0x6100;
}

/* Default rule: the last R-APDU's status word, when the response carries any. */
static enum task_reason default_por_rule(const uint8_t *data, size_t len, char *text, size_t cap)
{
    if (len == 0) {
        return TASK_R_NONE;
    }
    enum ota_rapdu_format fmt;
    struct ota_err err;
    if (ota_rapdu_rsp_format(data, len, &fmt, &err) < 0) {
        snprintf(text, cap, "response data unreadable");
        return TASK_R_CARD_SW;
    }
    if (fmt == OTA_RAPDU_COMPACT) {
        struct ota_rapdu_compact_rsp r;
        if (ota_rapdu_compact_rsp_parse(data, len, &r, &err) < 0) {
            snprintf(text, cap, "response data: %.100s", err.msg);
            return TASK_R_CARD_SW;
        }
        if (!sw_ok(r.sw)) {
            snprintf(text, cap, "SW %04x after %u commands", r.sw, r.n_executed);
            return TASK_R_CARD_SW;
        }
        return TASK_R_NONE;
    }
    struct ota_rapdu_exp_rsp r;
    struct ota_rapdu_rapdu ra[RAPDU_MAX];
    if (ota_rapdu_exp_rsp_parse(data, len, &r, ra, RAPDU_MAX, &err) < 0) {
        snprintf(text, cap, "response data: %.100s", err.msg);
        return TASK_R_CARD_SW;
    }
    if (r.has_bad_format || r.has_immediate_rsp || r.has_chaining_rsp) {
        snprintf(text, cap, "script error TLV");
        return TASK_R_CARD_SW;
    }
    if (r.n_rapdus > 0 && !sw_ok(ra[r.n_rapdus - 1].sw)) {
        snprintf(text, cap, "SW %04x at R-APDU %zu", ra[r.n_rapdus - 1].sw, r.n_rapdus);
        return TASK_R_CARD_SW;
    }
    return TASK_R_NONE;
}

static char *por_result_json(const struct ota_scp80_por *por)
{
    char st[3];
    char *hex = malloc(por->data_len * 2 + 1);
    if (!hex) {
        return NULL;
    }
    eng_hex_encode(por->data, por->data_len, hex);
    eng_hex_encode(&por->status, 1, st);
    json_t *j = json_pack("{s:s,s:s,s:s,s:I}", "por_status", st, "por_status_name",
                          ota_scp80_por_status_name(por->status), "data", hex, "cntr",
                          (json_int_t)por->cntr);
    free(hex);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

static void task_view_active(const struct eng_atask *a, struct eng_task_view *v)
{
    memset(v, 0, sizeof(*v));
    v->id = a->id;
    v->job = a->job;
    v->step = a->step;
    v->seid = a->seid;
    v->msisdn = a->msisdn;
    v->op = a->op;
    v->channel = a->channel;
    v->state = a->state;
    v->prio = a->prio;
    v->attempts = a->attempts;
    v->params = "{}";
    v->created_ms = a->created_ms;
}

/* A verified PoR for a: apply it. */
static void por_apply(struct eng *e, struct eng_atask *a, const struct ota_scp80_por *por,
                      bool verified)
{
    struct eng_tr tr = {.a = a};
    char text[STORE_REASON_TEXT_MAX] = "";
    char *result = por_result_json(por);
    e->stats.pors++;
    if (por->status == OTA_SCP80_ST_CNTR_LOW) {
        /* the card answers a resent copy of a packet it already ran: keep waiting */
        a->por_bad = TASK_R_POR_STALE_COUNTER;
        report(e, STORE_REP_POR, STORE_DISP_DUPLICATE, a->id, "PoR counter low for our counter");
        free(result);
        return;
    }
    if (a->state == TASK_DISPATCHED) {
        /* a PoR proves the packet arrived before the last submit result did */
        if (eng_transition(e, &tr, TASK_SUBMITTED, TASK_R_NONE, "PoR before submit result") < 0) {
            free(result);
            return;
        }
    }
    /* the result is stored with the final transition below: one row write, not two */
    enum task_reason r;
    if (por->status == OTA_SCP80_ST_OK) {
        if (!verified) {
            /* cannot happen: callers pass unverified PoRs only with an error status */
            r = TASK_R_POR_BAD_CC;
        } else if (e->hooks.por_result) {
            struct eng_task_view v;
            struct store_task row;
            struct ota_err err;
            bool have_row =
                eng_dirty_flush(e) == 0 && store_task_get(e->st, a->id, &row, &err) == 0;
            task_view_active(a, &v);
            if (have_row) {
                v.params = row.params ? row.params : "{}";
                v.result = row.result;
                v.updated_ms = row.updated_ms;
            }
            if (result) {
                v.result = result; /* what the task's row will hold */
            }
            r = e->hooks.por_result(e->hooks.arg, &v, por->status, por->data, por->data_len);
            if (have_row) {
                store_task_fini(&row);
            }
            if ((unsigned)r >= TASK_REASON__COUNT) {
                r = TASK_R_CARD_SW; /* a hook bug must not store a nameless reason */
            }
            if (r != TASK_R_NONE) {
                snprintf(text, sizeof(text), "por_result hook: %s", task_reason_name(r));
            }
        } else {
            r = default_por_rule(por->data, por->data_len, text, sizeof(text));
        }
    } else if (por->status == OTA_SCP80_ST_CNTR_HIGH || por->status == OTA_SCP80_ST_CNTR_BLOCKED) {
        r = TASK_R_POR_STALE_COUNTER;
        snprintf(text, sizeof(text), "PoR status %02x %s", por->status,
                 ota_scp80_por_status_name(por->status));
    } else {
        r = TASK_R_POR_STATUS;
        snprintf(text, sizeof(text), "PoR status %02x %s", por->status,
                 ota_scp80_por_status_name(por->status));
    }
    tr.result = result;
    if (r == TASK_R_NONE) {
        eng_transition(e, &tr, TASK_DONE, TASK_R_NONE, "PoR ok");
    } else {
        eng_transition(e, &tr, TASK_FAILED, r, text);
    }
    free(result);
}

enum por_class {
    PC_MATCH = 0,
    PC_MISMATCH = 1,
    PC_BAD = 2,
    PC_NOKEYS = 3,
    PC_LATE = 4,
    PC_NOTPOR = 5
};

static enum por_class por_try(struct eng *e, struct eng_atask *a, const struct bearer_mo *m,
                              struct ota_scp80_por *por, uint8_t *work, size_t work_cap,
                              bool *verified, char *why, size_t why_cap)
{
    struct ota_err err;
    struct eng_scp80_keys k;
    memset(&k, 0, sizeof(k));
    if (!e->hooks.scp80_keys || e->hooks.scp80_keys(e->hooks.arg, a->seid, a->tar, &k, &err) < 0) {
        ota_key_wipe(&k.kic_key);
        ota_key_wipe(&k.kid_key);
        snprintf(why, why_cap, "no keys");
        return PC_NOKEYS;
    }
    struct ota_scp80_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    const uint8_t *spi = a->have_spi ? a->spi : k.spi;
    cmd.kic = a->have_spi ? a->kic : k.kic;
    cmd.kid = a->have_spi ? a->kid : k.kid;
    cmd.cc_len = a->have_spi ? a->cc_len : k.cc_len;
    memcpy(cmd.tar, a->tar, 3);
    cmd.cntr = a->cntr;
    enum por_class pc = PC_BAD;
    if (ota_scp80_spi_decode(spi, 2, &cmd.spi, &err) == 0) {
        struct ota_scp80_keys keys = {&k.kic_key, &k.kid_key};
        int rc = ota_scp80_por_decode_sms(e->cx, &cmd, &keys, m->ud, m->ud_len, work, work_cap, por,
                                          &err);
        if (rc < 0) {
            snprintf(why, why_cap, "undecodable: %.100s", err.msg);
            if (!m->udhi || err.code == OTA_ERR_MISSING) {
                pc = PC_NOTPOR; /* no RPI: an ordinary SMS from the handset */
            }
        } else if (ota_scp80_por_match(por, a->tar, a->cntr, &err) < 0) {
            snprintf(why, why_cap, "%.100s", err.msg);
            pc = PC_MISMATCH;
            bool checked = !por->protection_missing && por->cc_state == OTA_SCP80_CC_VALID;
            if (err.code == OTA_ERR_COUNTER && checked && por->cntr < a->cntr) {
                /* verified, our TAR, an earlier counter: the answer to an older packet */
                pc = PC_LATE;
            }
        } else {
            bool wants_cc = cmd.spi.por_integrity != OTA_SCP80_INTEGRITY_NONE;
            *verified =
                !por->protection_missing && (!wants_cc || por->cc_state == OTA_SCP80_CC_VALID);
            /*
             * X.1127 7.4.1 (docs/antitheft.md): an anti-theft PoR is required and
             * itself CC-protected, errors included, whatever SPI the task holds; an
             * unprotected error PoR could otherwise be forged to fail a lock.
             */
            bool at_cc = por->cc_state == OTA_SCP80_CC_VALID && !por->protection_missing;
            if (task_op_antitheft(a->op) && !at_cc) {
                snprintf(why, why_cap, "anti-theft PoR (status %02x) without a valid checksum",
                         por->status);
            } else if (!*verified && por->status == OTA_SCP80_ST_OK) {
                /* a success must be proven: an unprotected "ok" is never trusted */
                snprintf(why, why_cap, "status ok without the checksum the SPI asks for");
            } else {
                pc = PC_MATCH;
            }
        }
    } else {
        snprintf(why, why_cap, "SPI: %.100s", err.msg);
    }
    ota_key_wipe(&k.kic_key);
    ota_key_wipe(&k.kid_key);
    return pc;
}

int eng_on_mo(struct eng *e, const struct bearer_mo *m)
{
    if (e->run != ENG_RUNNING) {
        return -ESHUTDOWN;
    }
    if (!m || !m->orig) {
        return 0;
    }
    /* SMSCs (through bearerbox) write international originators with '+'; we store digits. */
    struct bearer_mo plain = *m;
    if (plain.orig[0] == '+') {
        plain.orig++;
    }
    m = &plain;
    struct ota_err err;
    struct eng_atask *cand[16];
    size_t n = 0;
    for (struct eng_map_ent *ent = eng_map_get(&e->by_msisdn, m->orig, strlen(m->orig));
         ent && n < OTA_ARRAY_SIZE(cand); ent = eng_map_next_same(ent)) {
        struct eng_atask *a = ent->val;
        if (a->channel == TASK_CH_SCP80 && a->cntr != 0) {
            cand[n++] = a;
        }
    }
    char detail[200];
    if (n == 0) {
        struct store_se se[1];
        size_t nse = 0;
        int rc = store_se_by_msisdn(e->st, m->orig, se, 1, &nse, &err);
        if (rc == -EINVAL) {
            rc = 0; /* not an MSISDN we could have registered */
            nse = 0;
        }
        if (rc < 0) {
            eng_stop(e, rc, &err);
            return rc;
        }
        snprintf(detail, sizeof(detail), "MO from %.21s (%zu octets): no task waits", m->orig,
                 m->ud_len);
        report(e, STORE_REP_POR, nse > 0 ? STORE_DISP_LATE : STORE_DISP_UNKNOWN, 0, detail);
        return acks_later(e);
    }
    size_t work_cap = OTA_SCP80_POR_WORK(m->ud_len);
    uint8_t *work = malloc(work_cap);
    if (!work) {
        return -ENOMEM; /* not taken: redelivered */
    }
    enum por_class cls[16];
    char why[120] = "";
    for (size_t i = 0; i < n; i++) {
        struct ota_scp80_por por;
        bool verified = false;
        cls[i] = por_try(e, cand[i], m, &por, work, work_cap, &verified, why, sizeof(why));
        if (cls[i] == PC_MATCH) {
            por_apply(e, cand[i], &por, verified);
            free(work);
            return acks_later(e);
        }
    }
    free(work);
    for (size_t i = 0; i < n; i++) {
        if (cls[i] == PC_LATE) {
            snprintf(detail, sizeof(detail), "PoR from %.21s for an earlier packet: %s", m->orig,
                     why);
            report(e, STORE_REP_POR, STORE_DISP_LATE, 0, detail);
            return acks_later(e);
        }
    }
    bool any_por = false;
    for (size_t i = 0; i < n; i++) {
        any_por = any_por || cls[i] != PC_NOTPOR;
    }
    if (!any_por) {
        snprintf(detail, sizeof(detail), "MO from %.21s is no PoR", m->orig);
        report(e, STORE_REP_POR, STORE_DISP_UNKNOWN, 0, detail);
        return acks_later(e);
    }
    /* nothing fits: remember why on the waiting tasks, so their timeout says it */
    for (size_t i = 0; i < n; i++) {
        if (cls[i] == PC_BAD) {
            cand[i]->por_bad = TASK_R_POR_BAD_CC;
        } else if (cls[i] == PC_MISMATCH && cand[i]->por_bad == TASK_R_NONE) {
            cand[i]->por_bad = TASK_R_POR_MISMATCH;
        }
    }
    snprintf(detail, sizeof(detail), "PoR from %.21s refused: %s", m->orig, why);
    eng_log(e, 4, "task=%lld se=%s %s", (long long)cand[0]->id, cand[0]->seid, detail);
    report(e, STORE_REP_POR, STORE_DISP_MISMATCHED, cand[0]->id, detail);
    return acks_later(e);
}

/* ---- timers -------------------------------------------------------------------------- */

void eng_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct eng_atask *a = w->data;
    struct eng *e = a->e;
    if (e->run != ENG_RUNNING) {
        return;
    }
    int64_t now = eng_now_ms(e);
    struct eng_tr tr = {.a = a};
    if (a->deadline_ms > 0 && now >= a->deadline_ms) {
        eng_transition(e, &tr, TASK_EXPIRED, TASK_R_DEADLINE, "deadline passed while active");
        return;
    }
    if (a->wait == ENG_W_NONE || now < a->wait_until_ms) {
        eng_timer_rearm(e, a); /* early wake (clock) or deadline only */
        return;
    }
    switch (a->wait) {
    case ENG_W_DLR:
        eng_retry_or_fail(e, a, TASK_R_DLR_MISSING, "no final DLR in time");
        break;
    case ENG_W_POR:
        if (a->por_bad == TASK_R_NONE && por_req_of(e, a) == OTA_SCP80_POR_ON_ERROR) {
            /* PoR on error only: silence means the script ran */
            eng_transition(e, &tr, TASK_DONE, TASK_R_NONE, "no error PoR in time");
            break;
        }
        eng_transition(e, &tr, TASK_FAILED,
                       a->por_bad != TASK_R_NONE ? a->por_bad : TASK_R_POR_MISSING,
                       "no valid PoR in time");
        break;
    case ENG_W_PULL:
        eng_transition(e, &tr, TASK_FAILED, TASK_R_NOT_PULLED, "no wallet pull in time");
        break;
    case ENG_W_SESSION:
        eng_transition(e, &tr, TASK_FAILED, TASK_R_CLIENT, "wallet session timed out");
        break;
    default:
        break;
    }
}

/* ---- wallet pull ---------------------------------------------------------------------- */

/* Whether task (an ended push attempt) belongs to the SE named seid. */
static bool old_serial_of_se(struct eng *e, int64_t task, const char *seid)
{
    struct store_task t;
    struct store_se se;
    struct ota_err err;
    if (store_task_get(e->st, task, &t, &err) < 0) {
        return false;
    }
    bool ok = store_se_get(e->st, t.se, &se, &err) == 0 && strcmp(se.seid, seid) == 0;
    store_task_fini(&t);
    return ok;
}

int eng_pull(struct eng *e, const char *seid, const uint8_t serial[16], int64_t *task,
             struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
    }
    if (!seid || !serial) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "pull: NULL argument");
    }
    struct eng_map_ent *ent = eng_map_get(&e->by_serial, serial, 16);
    struct eng_atask *a = ent ? ent->val : NULL;
    struct eng_map_ent *old = a ? NULL : eng_map_get(&e->old_serial, serial, 16);
    if (old && old_serial_of_se(e, (int64_t)(uintptr_t)old->val, seid)) {
        int64_t id = (int64_t)(uintptr_t)old->val;
        if (old->aux) {
            report(e, STORE_REP_PULL, STORE_DISP_DUPLICATE, id, "pull: serial used");
            return ota_fail(err, -EALREADY, OTA_ERR_DUPLICATE, "pull: serial used already");
        }
        report(e, STORE_REP_PULL, STORE_DISP_LATE, id, "pull: task no longer waiting");
        return ota_fail(err, -ETIMEDOUT, OTA_ERR_STATE, "pull: task %lld no longer waiting",
                        (long long)id);
    }
    if (!a || strcmp(a->seid, seid) != 0) {
        report(e, STORE_REP_PULL, STORE_DISP_UNKNOWN, a ? a->id : 0, "pull: unknown serial/SE");
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "pull: unknown serial for this SE");
    }
    if (a->pulled) {
        report(e, STORE_REP_PULL, STORE_DISP_DUPLICATE, a->id, "pull: serial used");
        return ota_fail(err, -EALREADY, OTA_ERR_DUPLICATE, "pull: serial used already");
    }
    struct eng_tr tr = {.a = a};
    if (a->state == TASK_DISPATCHED) {
        /* the push arrived before its submit result did: the pull proves it */
        if (eng_transition(e, &tr, TASK_SUBMITTED, TASK_R_NONE, "pulled before submit result") <
            0) {
            return ota_fail(err, -ETIMEDOUT, OTA_ERR_STATE, "pull: task not waiting");
        }
    }
    if (a->state == TASK_SUBMITTED) {
        /* the pull proves delivery even when the DLR is late */
        if (eng_transition(e, &tr, TASK_DELIVERED, TASK_R_NONE, "pulled before DLR") < 0) {
            return ota_fail(err, -ETIMEDOUT, OTA_ERR_STATE, "pull: task not waiting");
        }
    }
    a->pulled = true;
    e->stats.pulls++;
    eng_arm_wait(e, a, ENG_W_SESSION, e->conf.session_timeout_s);
    json_t *j = json_pack("{s:I}", "pulled_ms", (json_int_t)eng_now_ms(e));
    char *res = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    int rc = eng_atask_save(e, a, res);
    free(res);
    if (rc < 0) {
        return ota_fail(err, rc, OTA_ERR_STATE, "pull: store failed");
    }
    if (task) {
        *task = a->id;
    }
    return 0;
}

int eng_task_complete(struct eng *e, int64_t task, enum task_reason reason, const char *result,
                      struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
    }
    if ((unsigned)reason >= TASK_REASON__COUNT) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "reason: unknown");
    }
    struct eng_atask *a = eng_active_get(e, task);
    if (!a) {
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "task %lld not active", (long long)task);
    }
    if (!a->pulled) {
        return ota_fail(err, -EINVAL, OTA_ERR_STATE, "task %lld not pulled", (long long)task);
    }
    if (result) {
        json_t *j = json_loads(result, 0, NULL);
        bool ok = j != NULL;
        json_decref(j);
        if (!ok) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "result: not JSON");
        }
    }
    /* the result goes into the row with the transition */
    struct eng_tr tr = {.a = a, .result = result};
    int rc = reason == TASK_R_NONE
                 ? eng_transition(e, &tr, TASK_DONE, TASK_R_NONE, "wallet session done")
                 : eng_transition(e, &tr, TASK_FAILED, reason, "wallet session failed");
    if (rc < 0) {
        return ota_fail(err, rc, OTA_ERR_STATE, "task %lld: transition refused", (long long)task);
    }
    return 0;
}
