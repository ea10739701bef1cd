/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dispatch: turn the scheduler's next due task into SMS parts for the bearer.
 *   - push channel: one push SMS (spec 5.8.5.3, ota/ota_push.h) with a fresh
 *     128-bit serial from the OpenSSL DRBG;
 *   - SCP80 channel: the remote-APDU script (params of op scp80, or the
 *     build_script hook for platform operations) in one command packet (TS
 *     102 225 5.1, TS 31.115 4.2) under the SE's keys from the scp80_keys
 *     hook, with the next counter of (SE, KVN) reserved in the same batch,
 *     then segmented with the CPI IE in the first part (TS 31.115 4.2).
 * The parts stay in memory until the batch holding the counter and the
 * dispatched state is committed; only then are they handed to the bearer.
 * Key bytes are wiped before this file returns; only the coded SPI / KIc /
 * KID, TAR and counter are kept (the PoR is checked with keys asked again).
 */
#include "queue/eng_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "ota/ota.h"

#define SCRIPT_MAX 1024
/* Parts urgent tasks may add past the backlog bound: anti-theft is rare, memory stays bounded. */
#define URGENT_EXTRA_PARTS 256

/* ---- hex ------------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int eng_hex_decode(const char *h, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(h);
    if (n % 2 || n / 2 > cap) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -EINVAL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return 0;
}

void eng_hex_encode(const uint8_t *p, size_t len, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * len] = '\0';
}

/* ---- SCP80 params ---------------------------------------------------------------- */

int eng_scp80_params_check(const char *params, uint8_t tar[3], uint8_t *script, size_t cap,
                           size_t *len, struct ota_err *err)
{
    return eng_scp80_params_read(params, true, tar, script, cap, len, err);
}

int eng_scp80_params_read(const char *params, bool strict, uint8_t tar[3], uint8_t *script,
                          size_t cap, size_t *len, struct ota_err *err)
{
    json_error_t je;
    json_t *j = json_loads(params ? params : "", JSON_REJECT_DUPLICATES, &je);
    int rc = 0;
    if (!j || !json_is_object(j)) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "params: not a JSON object");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        /* callback_url belongs to the daemon (result callbacks); the engine only carries it. */
        if (strcmp(key, "callback_url") == 0 && json_is_string(v)) {
            continue;
        }
        if (strict && strcmp(key, "tar") != 0 && strcmp(key, "script") != 0) {
            rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "params: unknown key \"%.32s\"", key);
            goto out;
        }
    }
    json_t *jt = json_object_get(j, "tar"), *js = json_object_get(j, "script");
    size_t n;
    if (!json_is_string(jt) || strlen(json_string_value(jt)) != 6 ||
        eng_hex_decode(json_string_value(jt), tar, 3, &n) < 0) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "params.tar: not 6 hex digits");
        goto out;
    }
    if (!json_is_string(js) || eng_hex_decode(json_string_value(js), script, cap, len) < 0) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "params.script: not hex of 1..%d octets",
                      SCRIPT_MAX);
        goto out;
    }
    if (*len == 0 || *len > SCRIPT_MAX) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "params.script: %zu octets, not 1..%d", *len,
                      SCRIPT_MAX);
        goto out;
    }
out:
    json_decref(j);
    return rc;
}

/* ---- anti-theft minimum security ------------------------------------------------------ */

int eng_spi_antitheft(const uint8_t in[2], uint8_t kic, uint8_t kid, uint8_t out[2], bool *weaker,
                      struct ota_err *err)
{
    struct ota_scp80_spi spi;
    enum ota_scp80_alg ka, da;
    struct ota_err e2;
    if (ota_scp80_spi_decode(in, 2, &spi, &e2) < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "SPI %02x%02x: %s", in[0], in[1], e2.msg);
    }
    if (ota_scp80_kic_decode(kic, NULL, &ka, &e2) < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "KIc %02x: %s", kic, e2.msg);
    }
    if (ota_scp80_kid_decode(kid, OTA_SCP80_INTEGRITY_CC, NULL, &da, &e2) < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "KID %02x: %s", kid, e2.msg);
    }
    /* 112 bits at least (X.1127 V.2 asks it of TLS; the same bar here): no DES, no implicit */
    if (ka != OTA_SCP80_ALG_3DES2_CBC && ka != OTA_SCP80_ALG_3DES3_CBC &&
        ka != OTA_SCP80_ALG_AES_CBC) {
        return ota_fail(err, -EPERM, OTA_ERR_KEY,
                        "KIc %02x: %s is not a cipher of 112 bits or more", kic,
                        ota_scp80_alg_name(ka));
    }
    if (da != OTA_SCP80_ALG_3DES2_CBC_MAC && da != OTA_SCP80_ALG_3DES3_CBC_MAC &&
        da != OTA_SCP80_ALG_AES_CMAC) {
        return ota_fail(err, -EPERM, OTA_ERR_KEY,
                        "KID %02x: %s is not a checksum of 112 bits or more", kid,
                        ota_scp80_alg_name(da));
    }
    struct ota_scp80_spi f = spi;
    f.integrity = OTA_SCP80_INTEGRITY_CC;
    f.ciphered = true;
    if (f.cntr_mode != OTA_SCP80_CNTR_PLUS1) {
        f.cntr_mode = OTA_SCP80_CNTR_HIGHER; /* 11 (exactly one higher) is stricter: kept */
    }
    f.por = OTA_SCP80_POR_ALWAYS;
    f.por_integrity = OTA_SCP80_INTEGRITY_CC;
    uint8_t tmp[2];
    if (ota_scp80_spi_encode(&f, tmp, sizeof(tmp), &e2) < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "SPI: %s", e2.msg);
    }
    if (weaker) {
        *weaker = memcmp(tmp, in, 2) != 0;
    }
    memcpy(out, tmp, 2);
    return 0;
}

/* ---- building ---------------------------------------------------------------------- */

struct build_fail {
    enum task_reason reason;
    char text[STORE_REASON_TEXT_MAX];
};

/* Record why the build failed: prefix then detail (either may be NULL). */
static int fail_build(struct build_fail *f, enum task_reason r, const char *prefix,
                      const char *detail)
{
    f->reason = r;
    /* cut to the column's size: the text is for humans */
    size_t n = 0;
    for (const char *p = prefix ? prefix : ""; *p && n + 1 < sizeof(f->text); p++) {
        f->text[n++] = *p;
    }
    for (const char *p = detail ? detail : ""; *p && n + 1 < sizeof(f->text); p++) {
        f->text[n++] = *p;
    }
    f->text[n] = '\0';
    return -1;
}

/* The SEID octets a push carries: hex SEIDs travel decoded, others as their ASCII octets. */
static int push_seid(const char *seid, uint8_t *out, uint8_t *len)
{
    size_t n;
    if (eng_hex_decode(seid, out, OTA_PUSH_SEID_MAX, &n) == 0 && n > 0) {
        *len = (uint8_t)n;
        return 0;
    }
    n = strlen(seid);
    if (n == 0 || n > OTA_PUSH_SEID_MAX) {
        return -EINVAL;
    }
    memcpy(out, seid, n);
    *len = (uint8_t)n;
    return 0;
}

static int build_push(struct eng *e, struct eng_atask *a, struct build_fail *f)
{
    struct ota_push p = {.dst_port = e->conf.push_dst_port, .src_port = e->conf.push_src_port};
    struct ota_err err;
    if (push_seid(a->seid, p.seid, &p.seid_len) < 0) {
        return fail_build(f, TASK_R_BUILD, "SEID does not fit a push (1..32 octets)", NULL);
    }
    /* a fresh serial per attempt, unique among the active ones (the pull's key) */
    for (int tries = 0;; tries++) {
        if (RAND_bytes(p.serial, sizeof(p.serial)) != 1 || tries > 4) {
            return fail_build(f, TASK_R_BUILD, "no random serial", NULL);
        }
        if (!eng_map_get(&e->by_serial, p.serial, sizeof(p.serial))) {
            break;
        }
    }
    a->enc = calloc(1, sizeof(*a->enc));
    if (!a->enc) {
        return fail_build(f, TASK_R_BUILD, "out of memory", NULL);
    }
    int n = ota_push_encode(&p, a->enc[0].ud, sizeof(a->enc[0].ud), &err);
    if (n < 0) {
        return fail_build(f, TASK_R_BUILD, "push encode: ", err.msg);
    }
    a->enc[0].len = (uint8_t)n;
    a->enc[0].udhi = true;
    ota_push_sms_params(&a->pid, &a->dcs);
    a->parts = calloc(1, sizeof(*a->parts));
    if (!a->parts) {
        return fail_build(f, TASK_R_BUILD, "out of memory", NULL);
    }
    a->has_serial = true;
    memcpy(a->serial, p.serial, sizeof(a->serial));
    a->n_parts = 1;
    return 0;
}

static void view_of(const struct eng_atask *a, const struct store_task *row,
                    struct eng_task_view *v)
{
    memset(v, 0, sizeof(*v));
    v->id = row->id;
    v->job = row->job;
    v->step = row->step;
    v->seid = a->seid;
    v->msisdn = a->msisdn;
    v->op = row->op;
    v->channel = row->channel;
    v->state = row->state;
    v->prio = row->prio;
    v->attempts = row->attempts;
    v->params = row->params ? row->params : "{}";
    v->result = row->result;
    v->created_ms = row->created_ms;
    v->updated_ms = row->updated_ms;
}

static int build_scp80(struct eng *e, struct eng_atask *a, const struct store_task *row,
                       struct build_fail *f)
{
    struct ota_err err;
    uint8_t script[SCRIPT_MAX];
    size_t sl = 0;
    uint8_t tar[3];
    int rc;

    ota_err_clear(&err);
    bool at = task_op_antitheft(row->op);
    if (row->op == TASK_OP_SCP80 || at) {
        if (eng_scp80_params_read(row->params, !at, tar, script, sizeof(script), &sl, &err) < 0) {
            return fail_build(f, TASK_R_BUILD, NULL, err.msg);
        }
    } else {
        if (!e->hooks.build_script) {
            return fail_build(f, TASK_R_UNSUPPORTED, "no script builder for this operation", NULL);
        }
        struct eng_task_view v;
        view_of(a, row, &v);
        rc = e->hooks.build_script(e->hooks.arg, &v, tar, script, sizeof(script), &sl, &err);
        if (rc == -ENOTSUP) {
            return fail_build(f, TASK_R_UNSUPPORTED, NULL, err.msg);
        }
        if (rc < 0 || sl == 0 || sl > sizeof(script)) {
            return fail_build(f, TASK_R_BUILD, "script builder: ", rc < 0 ? err.msg : "empty");
        }
    }
    if (!e->hooks.scp80_keys) {
        return fail_build(f, TASK_R_NO_KEYS, "no key hook", NULL);
    }
    struct eng_scp80_keys k;
    memset(&k, 0, sizeof(k));
    rc = e->hooks.scp80_keys(e->hooks.arg, a->seid, tar, &k, &err);
    if (rc < 0) {
        ota_key_wipe(&k.kic_key);
        ota_key_wipe(&k.kid_key);
        return fail_build(f, TASK_R_NO_KEYS, "keys: ", err.msg);
    }
    struct ota_scp80_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    uint8_t pkt[OTA_SCP80_MAX_PACKET];
    int n = -1;
    /* anti-theft: the minimum security is forced whatever the key set says (X.1127 7.4.1) */
    if (at && eng_spi_antitheft(k.spi, k.kic, k.kid, k.spi, NULL, &err) < 0) {
        fail_build(f, TASK_R_BUILD, "anti-theft minimum security: ", err.msg);
        goto wipe;
    }
    if (ota_scp80_spi_decode(k.spi, 2, &cmd.spi, &err) < 0) {
        fail_build(f, TASK_R_BUILD, "SPI: ", err.msg);
        goto wipe;
    }
    cmd.kic = k.kic;
    cmd.kid = k.kid;
    memcpy(cmd.tar, tar, 3);
    cmd.cc_len = k.cc_len;
    uint8_t kvn = (uint8_t)(k.kic >> 4);
    rc = store_cntr_next(e->st, a->se, kvn, &cmd.cntr, &err);
    if (rc < 0) {
        fail_build(f, TASK_R_BUILD, "counter: ", err.msg);
        if (rc != -ERANGE) {
            eng_stop(e, rc, &err);
        }
        goto wipe;
    }
    struct ota_scp80_keys keys = {&k.kic_key, &k.kid_key};
    n = ota_scp80_cmd_encode(e->cx, &cmd, &keys, script, sl, pkt, sizeof(pkt), NULL, &err);
    if (n < 0) {
        fail_build(f, TASK_R_BUILD, "packet: ", err.msg);
    }
wipe:
    ota_key_wipe(&k.kic_key);
    ota_key_wipe(&k.kid_key);
    if (n < 0) {
        return -1;
    }
    a->enc = calloc(ENG_MAX_PARTS, sizeof(*a->enc));
    if (!a->enc) {
        return fail_build(f, TASK_R_BUILD, "out of memory", NULL);
    }
    static const uint8_t none = 0;
    struct ota_udh_ie cpi = {.iei = OTA_IEI_CPI, .len = 0, .val = &none};
    /* the reference only has to differ between consecutive packets to one handset */
    struct ota_concat_opts o = {.first = &cpi, .n_first = 1, .ref = (uint16_t)(cmd.cntr & 0xff)};
    int np = ota_concat_segment(pkt, (size_t)n, &o, a->enc, ENG_MAX_PARTS, &err);
    if (np < 0) {
        return fail_build(f, TASK_R_BUILD, "segment: ", err.msg);
    }
    a->n_parts = (uint8_t)np;
    a->parts = calloc((size_t)np, sizeof(*a->parts));
    if (!a->parts) {
        return fail_build(f, TASK_R_BUILD, "out of memory", NULL);
    }
    a->pid = 0x7f; /* TS 31.111 / 23.040: SIM data download */
    a->dcs = 0xf6; /* 8-bit, class 2 (SIM specific) */
    a->have_spi = true;
    memcpy(a->spi, k.spi, 2);
    a->kic = k.kic;
    a->kid = k.kid;
    a->cc_len = k.cc_len;
    a->kvn = kvn;
    memcpy(a->tar, tar, 3);
    a->cntr = cmd.cntr;
    return 0;
}

struct old_parts {
    uint8_t part[256];
    unsigned n;
};

static int old_part_cb(void *arg, uint8_t part, const char *msg_id, enum store_dlr dlr)
{
    struct old_parts *o = arg;
    if (msg_id && msg_id[0] && dlr != STORE_DLR_FAILED && o->n < sizeof(o->part)) {
        o->part[o->n++] = part;
    }
    return 0;
}

/*
 * A new attempt of a task that went before: mark the part rows an earlier
 * attempt left failed, in the batch of the dispatch. A restart then tells
 * the current attempt's accepted parts (store_part_put resets the mark)
 * from older ones, and retries an attempt nothing of which was accepted
 * without counting it. Late DLRs still find the old message ids (late).
 */
static int retire_old_parts(struct eng *e, int64_t task)
{
    struct old_parts o = {.n = 0};
    struct ota_err err;
    int rc = store_parts_of(e->st, task, old_part_cb, &o, &err);
    for (unsigned i = 0; rc == 0 && i < o.n; i++) {
        rc = store_part_dlr(e->st, task, o.part[i], STORE_DLR_FAILED, &err);
    }
    if (rc < 0) {
        eng_stop(e, rc, &err);
    }
    return rc;
}

/* Finish a task that could not be built (its SE was marked busy by sched_next). */
static void dispatch_fail(struct eng *e, const struct store_task *row, enum task_reason r,
                          const char *text)
{
    sched_release(e->sc, (uint64_t)row->se, row->id);
    struct eng_tr tr = {
        .id = row->id, .se = row->se, .job = row->job, .step = row->step, .from = TASK_QUEUED};
    eng_log(e, 4, "task=%lld se=%lld not built: %s %s", (long long)row->id, (long long)row->se,
            task_reason_name(r), text);
    eng_transition(e, &tr, r == TASK_R_JOB_CANCELLED ? TASK_CANCELLED : TASK_FAILED, r, text);
}

static void dispatch_one(struct eng *e, const struct sched_item *it)
{
    struct store_task row;
    struct ota_err err;
    int rc = store_task_get(e->st, it->task, &row, &err);
    if (rc < 0) {
        sched_release(e->sc, it->se, it->task);
        eng_log(e, 3, "task=%lld scheduled but not readable: %s", (long long)it->task, err.msg);
        if (rc != -ENOENT) {
            eng_stop(e, rc, &err);
        }
        return;
    }
    if (row.state != TASK_QUEUED) {
        sched_release(e->sc, it->se, it->task);
        e->stats.illegal_transitions++;
        eng_log(e, 3, "task=%lld scheduled while %s: dropped from the schedule", (long long)row.id,
                task_state_name(row.state));
        store_task_fini(&row);
        return;
    }
    if (row.job && eng_job_cancelled(e, row.job)) {
        dispatch_fail(e, &row, TASK_R_JOB_CANCELLED, "job cancelled");
        store_task_fini(&row);
        return;
    }
    struct store_se se;
    if (store_se_get(e->st, row.se, &se, &err) < 0 || !se.msisdn[0]) {
        dispatch_fail(e, &row, TASK_R_SE_UNKNOWN, "SE unknown or without MSISDN");
        store_task_fini(&row);
        return;
    }
    struct eng_atask *a = calloc(1, sizeof(*a));
    if (!a) {
        sched_release(e->sc, it->se, it->task);
        eng_stop(e, -ENOMEM, NULL);
        store_task_fini(&row);
        return;
    }
    a->id = row.id;
    a->job = row.job;
    a->se = row.se;
    a->step = row.step;
    snprintf(a->seid, sizeof(a->seid), "%s", se.seid);
    snprintf(a->msisdn, sizeof(a->msisdn), "%s", se.msisdn);
    a->op = row.op;
    a->channel = row.channel;
    a->prio = row.prio;
    a->attempts = (uint8_t)(row.attempts + 1);
    a->max_attempts = row.max_attempts;
    a->created_ms = row.created_ms;
    a->not_before_ms = row.not_before_ms;
    a->deadline_ms = row.deadline_ms;

    struct build_fail f = {TASK_R_NONE, ""};
    rc = row.channel == TASK_CH_PUSH ? build_push(e, a, &f) : build_scp80(e, a, &row, &f);
    if (rc < 0) {
        eng_atask_free(a);
        if (e->run == ENG_RUNNING) {
            dispatch_fail(e, &row, f.reason, f.text);
        }
        store_task_fini(&row);
        return;
    }
    if (row.attempts > 0 && retire_old_parts(e, row.id) < 0) {
        sched_release(e->sc, it->se, it->task);
        eng_atask_free(a);
        store_task_fini(&row);
        return;
    }
    row.attempts = a->attempts;
    row.cntr = a->cntr;
    row.kvn = a->kvn;
    memcpy(row.tar, a->tar, 3);
    row.has_serial = a->has_serial;
    memcpy(row.serial, a->serial, 16);
    row.n_parts = a->n_parts;
    row.wait_until_ms = 0;
    struct eng_tr tr = {.id = row.id, .se = row.se, .job = row.job, .step = row.step, .row = &row};
    rc = eng_transition(e, &tr, TASK_DISPATCHED, TASK_R_NONE,
                        row.channel == TASK_CH_PUSH ? "push" : "scp80");
    if (rc == 0) {
        /* kept for the final hook's view (the row's strings, taken over) */
        if (!row.params || strlen(row.params) <= ENG_PARAMS_KEEP) {
            a->params = row.params;
            row.params = NULL;
            a->params_known = true;
        }
        a->result = row.result;
        row.result = NULL;
        a->result_known = true;
    }
    store_task_fini(&row);
    if (rc < 0) {
        sched_release(e->sc, it->se, it->task);
        eng_atask_free(a);
        return;
    }
    a->state = TASK_DISPATCHED;
    if (eng_active_add(e, a) < 0) {
        eng_atask_free(a);
        eng_stop(e, -ENOMEM, NULL);
        return;
    }
    eng_sq_append(e, a, 1);
    eng_arm_wait(e, a, ENG_W_NONE, 0);
}

void eng_urgent_note(struct eng *e, const struct sched_item *it)
{
    if (it->prio >= TASK_PRIO_MAX && it->flow == 0 && eng_vec_id_push(&e->urgent, it->task) < 0) {
        /* only the backlog bypass is lost: the task still goes first once the backlog drains */
        eng_log(e, 4, "task=%lld urgent note dropped: out of memory", (long long)it->task);
    }
}

/*
 * Whether sched_next would hand out an urgent task now: one is queued, due,
 * its SE idle and it the head of the SE's FIFO (urgent goes strictly first
 * in the scheduler, so the next pick is urgent). Ids no longer queued are
 * dropped (a retry notes its task again).
 */
static bool urgent_ready(struct eng *e)
{
    int64_t now = eng_now_ms(e);
    bool ready = false;
    size_t i = 0;
    while (i < e->urgent.n) {
        struct sched_item it, head;
        int64_t id = e->urgent.v[i];
        if (!sched_get(e->sc, id, &it)) {
            e->urgent.v[i] = e->urgent.v[--e->urgent.n];
            continue;
        }
        i++;
        if (!ready && it.not_before_ms <= now && sched_active(e->sc, it.se) == 0 &&
            sched_se_queue(e->sc, it.se, &head, 1) > 0 && head.task == id) {
            ready = true;
        }
    }
    return ready;
}

unsigned eng_dispatch(struct eng *e, unsigned budget, bool *more)
{
    unsigned n = 0;
    size_t backlog_max = 2 * (size_t)e->conf.dispatch_max_turn;
    *more = false;
    while (n < budget && e->run == ENG_RUNNING) {
        /*
         * Parts built ahead are bounded; an urgent task is not held by that
         * bound (it would wait behind a campaign's whole backlog): it is
         * built now and put before the backlog (engine.c sq_put_urgent).
         */
        if (e->waiting_parts >= backlog_max &&
            (e->waiting_parts >= backlog_max + URGENT_EXTRA_PARTS || !urgent_ready(e))) {
            return n; /* the bearer's ready callback (or a commit) brings us back */
        }
        struct sched_item it;
        if (sched_next(e->sc, eng_now_ms(e), &it) < 0) {
            return n;
        }
        n++;
        dispatch_one(e, &it);
        eng_maybe_commit(e);
    }
    *more = n == budget;
    return n;
}
