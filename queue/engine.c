/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The task engine's core (queue/engine.h): open / close / start-up rebuild,
 * the per-turn cycle (expire, job top-ups, dispatch, group commit,
 * post-commit actions), the one state transition function, the send queue
 * to the bearer, submission and the task/SE queries.
 *
 * Turn cycle: an ev_prepare watcher (highest priority, so it runs before the
 * bearer's own pump in the same iteration) runs once per loop iteration,
 * i.e. once per batch of I/O: that is the natural group commit, coalesced
 * further by commit_interval_ms (a one-shot timer ends the spacing). Post-commit
 * order: accept callbacks, parts to the bearer, release of the bearer's held
 * acks, final hooks. Dispatch, reconciliation and jobs live in
 * eng_dispatch.c, eng_recon.c and eng_job.c.
 */
#include "queue/engine.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "queue/eng_int.h"

#define DAY_MS (86400LL * 1000)
#define NOT_BEFORE_MAX_MS (366 * DAY_MS)

/* ---- small helpers ---------------------------------------------------------------- */

void eng_conf_defaults(struct eng_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->db_path = "otagw.db";
    c->durable = true;
    c->push_dst_port = 2948;
    c->push_src_port = 2948;
    c->push_wait_pull = true;
    c->want_dlr = true;
    c->dlr_timeout_s = 600;
    c->por_timeout_s = 300;
    c->pull_timeout_s = 600;
    c->session_timeout_s = 120;
    c->max_attempts = 3;
    c->backoff_s = 30;
    c->backoff_max_s = 3600;
    c->commit_max_staged = 4096;
    c->commit_interval_ms = 2;
    c->commit_max_acks = 8;
    c->dispatch_max_turn = 512;
    c->job_chunk = 1000;
    c->keep_history = true;
}

int64_t eng_now_ms(const struct eng *e)
{
    return (int64_t)(ev_now(e->loop) * 1000.0);
}

void eng_log(struct eng *e, int level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    if (!e->hooks.log && level > 4) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (e->hooks.log) {
        e->hooks.log(e->hooks.arg, level, buf);
    } else {
        fprintf(stderr, "otagw engine: %s\n", buf);
    }
}

int eng_vec_id_push(struct eng_vec_id *v, int64_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int64_t *p = realloc(v->v, cap * sizeof(*p));
        if (!p) {
            return -ENOMEM;
        }
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = id;
    return 0;
}

static int vec_acc_push(struct eng_vec_accept *v, const struct eng_accept *a)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        struct eng_accept *p = realloc(v->v, cap * sizeof(*p));
        if (!p) {
            return -ENOMEM;
        }
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = *a;
    return 0;
}

/* Append src to dst, leaving src empty. */
static int vec_acc_move(struct eng_vec_accept *dst, struct eng_vec_accept *src)
{
    for (size_t i = 0; i < src->n; i++) {
        if (vec_acc_push(dst, &src->v[i]) < 0) {
            return -ENOMEM;
        }
    }
    src->n = 0;
    return 0;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static void finrec_free(struct eng_finrec *r)
{
    if (r) {
        free(r->params);
        free(r->result);
        free(r);
    }
}

static int vec_fin_push(struct eng_vec_fin *v, const struct eng_fin *f)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        struct eng_fin *p = realloc(v->v, cap * sizeof(*p));
        if (!p) {
            return -ENOMEM;
        }
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = *f;
    return 0;
}

/* Append src to dst, leaving src empty (records dropped on failure: hooks read the store). */
static int vec_fin_move(struct eng_vec_fin *dst, struct eng_vec_fin *src)
{
    int rc = 0;
    for (size_t i = 0; i < src->n; i++) {
        if (rc == 0 && vec_fin_push(dst, &src->v[i]) < 0) {
            rc = -ENOMEM;
        }
        if (rc < 0) {
            finrec_free(src->v[i].rec);
        }
    }
    src->n = 0;
    return rc;
}

static void vec_fin_free(struct eng_vec_fin *v)
{
    for (size_t i = 0; i < v->n; i++) {
        finrec_free(v->v[i].rec);
    }
    free(v->v);
    memset(v, 0, sizeof(*v));
}

/* Replace *dst by a copy of src (NULL stays NULL); false when out of memory (*dst NULL). */
static bool dup_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? strdup(src) : NULL;
    return !src || *dst;
}

/* ---- active tasks ------------------------------------------------------------------ */

struct eng_atask *eng_active_get(const struct eng *e, int64_t id)
{
    struct eng_map_ent *ent = eng_map_get(&e->by_id, &id, sizeof(id));
    return ent ? ent->val : NULL;
}

/* Take a out of every map (keys that were never put are skipped). */
static void maps_del(struct eng *e, struct eng_atask *a)
{
    eng_map_del(&e->by_id, &a->id, sizeof(a->id), a);
    if (a->msisdn[0]) {
        eng_map_del(&e->by_msisdn, a->msisdn, strlen(a->msisdn), a);
    }
    if (a->has_serial) {
        eng_map_del(&e->by_serial, a->serial, 16, a);
    }
    for (unsigned i = 0; i < a->n_parts; i++) {
        if (a->parts[i].msg_id[0]) {
            eng_map_del(&e->by_msgid, a->parts[i].msg_id, strlen(a->parts[i].msg_id), a);
        }
    }
}

int eng_active_add(struct eng *e, struct eng_atask *a)
{
    a->e = e;
    ev_init(&a->timer, eng_timer_cb);
    a->timer.data = a;
    bool ok = eng_map_put(&e->by_id, &a->id, sizeof(a->id), a, 0) == 0;
    if (ok && a->msisdn[0]) {
        ok = eng_map_put(&e->by_msisdn, a->msisdn, strlen(a->msisdn), a, 0) == 0;
    }
    if (ok && a->has_serial) {
        ok = eng_map_put(&e->by_serial, a->serial, 16, a, 0) == 0;
    }
    for (unsigned i = 0; ok && i < a->n_parts; i++) {
        if (a->parts[i].msg_id[0]) {
            ok = eng_map_put(&e->by_msgid, a->parts[i].msg_id, strlen(a->parts[i].msg_id), a, i) ==
                 0;
        }
    }
    if (!ok) {
        maps_del(e, a);
        return -ENOMEM;
    }
    e->n_active++;
    return 0;
}

void eng_atask_free(struct eng_atask *a)
{
    if (a) {
        free(a->enc);
        free(a->parts);
        free(a->params);
        free(a->result);
        free(a);
    }
}

static void dirty_unlink(struct eng *e, struct eng_atask *a)
{
    if (!a->dirty) {
        return;
    }
    if (a->dirty_prev) {
        a->dirty_prev->dirty_next = a->dirty_next;
    } else {
        e->dirty_head = a->dirty_next;
    }
    if (a->dirty_next) {
        a->dirty_next->dirty_prev = a->dirty_prev;
    }
    a->dirty = false;
    a->dirty_prev = a->dirty_next = NULL;
}

static void dirty_mark(struct eng *e, struct eng_atask *a)
{
    if (a->dirty) {
        return;
    }
    a->dirty = true;
    a->dirty_prev = NULL;
    a->dirty_next = e->dirty_head;
    if (e->dirty_head) {
        e->dirty_head->dirty_prev = a;
    }
    e->dirty_head = a;
}

int eng_dirty_flush(struct eng *e)
{
    while (e->dirty_head) {
        struct eng_atask *a = e->dirty_head;
        struct store_task row;
        struct ota_err err;
        eng_atask_row(a, &row);
        row.reason = a->reason;
        copy_str(row.reason_text, sizeof(row.reason_text), a->reason_text);
        row.updated_ms = a->updated_ms;
        dirty_unlink(e, a);
        int rc = store_task_update(e->st, &row, &err);
        if (rc < 0) {
            eng_stop(e, rc, &err);
            return rc;
        }
    }
    return 0;
}

static void active_remove(struct eng *e, struct eng_atask *a)
{
    ev_timer_stop(e->loop, &a->timer);
    dirty_unlink(e, a);
    eng_sq_remove(e, a);
    maps_del(e, a);
    if (a->has_serial) {
        eng_serial_retire(e, a->serial, a->id, a->pulled);
    }
    free(a->enc);
    a->enc = NULL;
    e->n_active--;
}

void eng_serial_retire(struct eng *e, const uint8_t serial[16], int64_t task, bool pulled)
{
    if (!e->old_ring) {
        e->old_ring = calloc(ENG_OLD_SERIALS, sizeof(*e->old_ring));
        if (!e->old_ring) {
            return; /* only the error code of a stale pull suffers */
        }
    }
    if (e->old_n == ENG_OLD_SERIALS) {
        const uint8_t *oldest = e->old_ring[e->old_head];
        struct eng_map_ent *ent = eng_map_get(&e->old_serial, oldest, 16);
        if (ent) {
            eng_map_del(&e->old_serial, oldest, 16, ent->val);
        }
        e->old_n--;
        e->old_head = (e->old_head + 1) % ENG_OLD_SERIALS;
    }
    if (eng_map_put(&e->old_serial, serial, 16, (void *)(uintptr_t)task, pulled) < 0) {
        return;
    }
    memcpy(e->old_ring[(e->old_head + e->old_n) % ENG_OLD_SERIALS], serial, 16);
    e->old_n++;
}

void eng_atask_row(const struct eng_atask *a, struct store_task *row)
{
    memset(row, 0, sizeof(*row));
    row->id = a->id;
    row->job = a->job;
    row->step = a->step;
    row->se = a->se;
    row->op = a->op;
    row->channel = a->channel;
    row->prio = a->prio;
    row->attempts = a->attempts;
    row->max_attempts = a->max_attempts;
    row->state = a->state;
    row->created_ms = a->created_ms;
    row->not_before_ms = a->not_before_ms;
    row->deadline_ms = a->deadline_ms;
    row->wait_until_ms = a->wait_until_ms;
    row->cntr = a->cntr;
    row->kvn = a->kvn;
    memcpy(row->tar, a->tar, 3);
    row->has_serial = a->has_serial;
    memcpy(row->serial, a->serial, 16);
    row->n_parts = a->n_parts;
}

int eng_atask_save(struct eng *e, struct eng_atask *a, const char *result)
{
    struct store_task row;
    struct ota_err err;
    eng_atask_row(a, &row);
    row.updated_ms = eng_now_ms(e);
    row.result = (char *)result;
    dirty_unlink(e, a); /* this row supersedes the pending one, as its write did before */
    int rc = store_task_update(e->st, &row, &err);
    if (rc < 0) {
        eng_stop(e, rc, &err);
    } else if (result && !dup_str(&a->result, result)) {
        a->result_known = false;
    }
    return rc;
}

void eng_timer_rearm(struct eng *e, struct eng_atask *a)
{
    int64_t at = a->wait == ENG_W_NONE ? 0 : a->wait_until_ms;
    if (a->deadline_ms > 0 && (at == 0 || a->deadline_ms < at)) {
        at = a->deadline_ms;
    }
    ev_timer_stop(e->loop, &a->timer);
    if (at == 0 || e->run != ENG_RUNNING) {
        return;
    }
    double d = (double)(at - eng_now_ms(e)) / 1000.0;
    if (d < 0.001) {
        d = 0.001;
    }
    ev_timer_set(&a->timer, d, 0.0);
    ev_timer_start(e->loop, &a->timer);
}

void eng_arm_wait(struct eng *e, struct eng_atask *a, enum eng_wait w, unsigned s)
{
    a->wait = w;
    a->wait_until_ms = w == ENG_W_NONE ? 0 : eng_now_ms(e) + (int64_t)s * 1000;
    eng_timer_rearm(e, a);
}

/* ---- send queue -------------------------------------------------------------------- */

void eng_sq_append(struct eng *e, struct eng_atask *a, int which)
{
    struct eng_atask **head = which == 1 ? &e->staged_head : &e->send_head;
    struct eng_atask **tail = which == 1 ? &e->staged_tail : &e->send_tail;
    a->sq = which;
    e->waiting_parts += (size_t)(a->n_parts - a->n_handed);
    a->sq_next = NULL;
    a->sq_prev = *tail;
    if (*tail) {
        (*tail)->sq_next = a;
    } else {
        *head = a;
    }
    *tail = a;
}

void eng_sq_remove(struct eng *e, struct eng_atask *a)
{
    if (a->sq == 0) {
        return;
    }
    struct eng_atask **head = a->sq == 1 ? &e->staged_head : &e->send_head;
    struct eng_atask **tail = a->sq == 1 ? &e->staged_tail : &e->send_tail;
    if (a->sq_prev) {
        a->sq_prev->sq_next = a->sq_next;
    } else {
        *head = a->sq_next;
    }
    if (a->sq_next) {
        a->sq_next->sq_prev = a->sq_prev;
    } else {
        *tail = a->sq_prev;
    }
    e->waiting_parts -= (size_t)(a->n_parts - a->n_handed);
    a->sq = 0;
    a->sq_prev = a->sq_next = NULL;
}

/*
 * An urgent task (anti-theft) goes before every non-urgent one still
 * waiting for the bearer, behind earlier urgent ones: it must not wait
 * behind the parts a campaign built ahead (issue #7; the 15 minutes of
 * ITU-T X.1127 I.2). Tasks go to different handsets, so no per-handset
 * order is changed.
 */
static void sq_put_urgent(struct eng *e, struct eng_atask *a)
{
    struct eng_atask *at = e->send_head;
    while (at && at->prio >= TASK_PRIO_MAX) {
        at = at->sq_next;
    }
    if (!at) {
        eng_sq_append(e, a, 2);
        return;
    }
    a->sq = 2;
    e->waiting_parts += (size_t)(a->n_parts - a->n_handed);
    a->sq_next = at;
    a->sq_prev = at->sq_prev;
    if (at->sq_prev) {
        at->sq_prev->sq_next = a;
    } else {
        e->send_head = a;
    }
    at->sq_prev = a;
}

static void sq_commit(struct eng *e)
{
    while (e->staged_head) {
        struct eng_atask *a = e->staged_head;
        eng_sq_remove(e, a);
        if (a->prio >= TASK_PRIO_MAX) {
            sq_put_urgent(e, a);
        } else {
            eng_sq_append(e, a, 2);
        }
    }
}

static uint64_t part_token(const struct eng_atask *a, unsigned part)
{
    return (uint64_t)a->id << 16 | (uint64_t)(a->attempts & 0xff) << 8 | (part & 0xff);
}

void eng_send_pump(struct eng *e)
{
    if (!e->have_ops || !e->ops.submit || e->run != ENG_RUNNING) {
        return;
    }
    e->bearer_full = false;
    while (e->send_head) {
        struct eng_atask *a = e->send_head;
        while (a->n_handed < a->n_parts) {
            unsigned i = a->n_handed;
            struct bearer_msg m;
            struct ota_err err;
            memset(&m, 0, sizeof(m));
            copy_str(m.dest, sizeof(m.dest), a->msisdn);
            copy_str(m.src, sizeof(m.src), e->conf.src_addr);
            memcpy(m.ud, a->enc[i].ud, a->enc[i].len);
            m.ud_len = a->enc[i].len;
            m.udhi = a->enc[i].udhi;
            m.pid = a->pid;
            m.dcs = a->dcs;
            m.want_report = e->conf.want_dlr;
            m.priority = a->prio;
            m.part = (uint8_t)(i + 1);
            m.n_parts = a->n_parts;
            m.token = part_token(a, i + 1);
            int rc = e->ops.submit(e->ops.arg, &m, &err);
            if (rc == -EAGAIN) {
                e->bearer_full = true;
                return;
            }
            if (rc < 0) {
                eng_log(e, 4, "task=%lld se=%s part=%u bearer refused the part: %s",
                        (long long)a->id, a->seid, i + 1, err.msg);
                if (rc == -EINVAL) {
                    /* a bad part (address, length) never gets better */
                    struct eng_tr tr = {.a = a};
                    eng_transition(e, &tr, TASK_FAILED, TASK_R_BEARER_REJECTED,
                                   "bearer refused the part as invalid");
                } else {
                    /* shut down, out of memory: may pass later */
                    eng_retry_or_fail(e, a, TASK_R_BEARER_TIMEOUT, "bearer refused the part");
                }
                if (e->run != ENG_RUNNING) {
                    return;
                }
                struct eng_atask *still = eng_active_get(e, (int64_t)(m.token >> 16));
                if (still && still->sq) {
                    eng_sq_remove(e, still); /* the change was refused: never spin on it */
                }
                a = NULL; /* freed or requeued: take the next head */
                break;
            }
            a->parts[i].handed = true;
            /*
             * The bearer puts parts on the wire from its own prepare watcher;
             * started from inside ours it would not run before the loop blocks:
             * make the loop spin once more.
             */
            ev_idle_start(e->loop, &e->kick);
            a->n_handed++;
            e->waiting_parts--;
            e->stats.parts_sent++;
        }
        if (a && e->send_head == a) {
            /* every part handed: the encoded copies are not needed any more */
            eng_sq_remove(e, a);
            free(a->enc);
            a->enc = NULL;
        }
    }
}

/* ---- commit and post-commit actions ------------------------------------------------ */

void eng_stop(struct eng *e, int rc, const struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return;
    }
    e->run = ENG_STOPPED_ERROR;
    e->stats.run = ENG_STOPPED_ERROR;
    e->stop_rc = rc;
    eng_log(e, 3, "engine stopped: store error %d: %s", rc, err ? err->msg : "");
    store_rollback(e->st);
    if (e->have_ops && e->ops.discard_acks) {
        e->ops.discard_acks(e->ops.arg);
    }
    while (e->dirty_head) {
        dirty_unlink(e, e->dirty_head); /* their batch is gone too */
    }
    /* the batch holding them is gone: the parts must never leave */
    while (e->staged_head) {
        eng_sq_remove(e, e->staged_head);
    }
    if (ev_is_active(&e->prep)) {
        ev_ref(e->loop); /* balance the ev_unref of eng_open */
        ev_prepare_stop(e->loop, &e->prep);
    }
    ev_timer_stop(e->loop, &e->wake);
    ev_timer_stop(e->loop, &e->ctimer);
    ev_idle_stop(e->loop, &e->kick);
    for (size_t i = 0; i < e->by_id.nb; i++) {
        for (struct eng_map_ent *m = e->by_id.b[i]; m; m = m->next) {
            struct eng_atask *a = m->val;
            ev_timer_stop(e->loop, &a->timer);
        }
    }
    struct eng_vec_accept pend = e->acc_pending, ready = e->acc_ready;
    memset(&e->acc_pending, 0, sizeof(e->acc_pending));
    memset(&e->acc_ready, 0, sizeof(e->acc_ready));
    for (size_t i = 0; i < ready.n; i++) {
        if (ready.v[i].cb) {
            ready.v[i].cb(ready.v[i].arg, ready.v[i].id, 0);
        }
    }
    for (size_t i = 0; i < pend.n; i++) {
        if (pend.v[i].cb) {
            pend.v[i].cb(pend.v[i].arg, pend.v[i].id, rc < 0 ? rc : -EIO);
        }
    }
    free(pend.v);
    free(ready.v);
}

int eng_commit(struct eng *e, struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
    }
    if (eng_dirty_flush(e) < 0) {
        return ota_fail(err, e->stop_rc, OTA_ERR_STATE, "engine stopped: row write failed");
    }
    if (store_staged(e->st) > 0) {
        double t0 = ev_time();
        int rc = store_commit(e->st, err);
        if (rc < 0) {
            eng_stop(e, rc, err);
            return rc;
        }
        e->last_commit_t = t0;
    }
    ev_timer_stop(e->loop, &e->ctimer);
    e->commit_due = false;
    e->acks_held = 0;
    store_commit_stats(e->st, &e->stats.commits, &e->stats.commit_s);
    if (vec_acc_move(&e->acc_ready, &e->acc_pending) < 0 ||
        vec_fin_move(&e->fin_ready, &e->fin_pending) < 0) {
        eng_log(e, 3, "out of memory moving post-commit actions");
    }
    sq_commit(e);
    if (e->acks_pending) {
        e->acks_ready = true;
        e->acks_pending = false;
    }
    return 0;
}

int eng_maybe_commit(struct eng *e)
{
    if (store_staged(e->st) < e->conf.commit_max_staged) {
        return 0;
    }
    struct ota_err err;
    return eng_commit(e, &err);
}

static void view_fill(struct eng_task_view *v, const struct store_task *t,
                      const struct store_se *se)
{
    memset(v, 0, sizeof(*v));
    v->id = t->id;
    v->job = t->job;
    v->step = t->step;
    v->seid = se ? se->seid : "";
    v->msisdn = se ? se->msisdn : "";
    v->op = t->op;
    v->channel = t->channel;
    v->state = t->state;
    v->reason = t->reason;
    v->reason_text = t->reason_text;
    v->prio = t->prio;
    v->attempts = t->attempts;
    v->params = t->params ? t->params : "{}";
    v->result = t->result;
    v->created_ms = t->created_ms;
    v->updated_ms = t->updated_ms;
}

static void run_ready(struct eng *e)
{
    struct eng_vec_accept acc = e->acc_ready;
    memset(&e->acc_ready, 0, sizeof(e->acc_ready));
    for (size_t i = 0; i < acc.n; i++) {
        if (acc.v[i].cb) {
            acc.v[i].cb(acc.v[i].arg, acc.v[i].id, 0);
        }
    }
    free(acc.v);
    if (e->run != ENG_RUNNING) {
        return;
    }
    eng_send_pump(e);
    if (e->acks_ready) {
        e->acks_ready = false;
        if (e->have_ops && e->ops.release_acks) {
            e->ops.release_acks(e->ops.arg);
            ev_idle_start(e->loop, &e->kick); /* as for parts: let the bearer's pump run */
        }
    }
    struct eng_vec_fin fin = e->fin_ready;
    memset(&e->fin_ready, 0, sizeof(e->fin_ready));
    for (size_t i = 0; i < fin.n && e->hooks.final; i++) {
        struct eng_finrec *r = fin.v[i].rec;
        if (r) {
            /* the task's view as it was committed, from memory */
            r->v.seid = r->seid;
            r->v.msisdn = r->msisdn;
            r->v.reason_text = r->reason_text;
            r->v.params = r->params ? r->params : "{}";
            r->v.result = r->result;
            e->hooks.final(e->hooks.arg, &r->v);
            continue;
        }
        struct store_task t;
        struct store_se se;
        struct ota_err err;
        if (store_task_get(e->st, fin.v[i].id, &t, &err) < 0) {
            continue;
        }
        bool have_se = store_se_get(e->st, t.se, &se, &err) == 0;
        struct eng_task_view v;
        view_fill(&v, &t, have_se ? &se : NULL);
        e->hooks.final(e->hooks.arg, &v);
        store_task_fini(&t);
    }
    vec_fin_free(&fin);
}

/* ---- the transition function ------------------------------------------------------- */

static int64_t backoff_ms(const struct eng *e, uint8_t attempts)
{
    int64_t d = (int64_t)e->conf.backoff_s * 1000;
    int64_t cap = (int64_t)e->conf.backoff_max_s * 1000;
    for (unsigned i = 1; i < attempts && d < cap; i++) {
        d *= 2;
    }
    return d < cap ? d : cap;
}

/*
 * The final hook's view of an active task reaching a final state, from
 * memory: NULL (the hook then reads the store) when its params or result
 * are not known here, or out of memory.
 */
static struct eng_finrec *finrec_of(struct eng_atask *a, const struct store_task *row)
{
    if (!a->params_known || !a->result_known) {
        return NULL;
    }
    struct eng_finrec *r = calloc(1, sizeof(*r));
    if (!r) {
        return NULL;
    }
    /* the record takes the strings: the active record is freed right after */
    r->params = a->params;
    r->result = a->result;
    a->params = a->result = NULL;
    a->params_known = a->result_known = false;
    copy_str(r->seid, sizeof(r->seid), a->seid);
    copy_str(r->msisdn, sizeof(r->msisdn), a->msisdn);
    copy_str(r->reason_text, sizeof(r->reason_text), row->reason_text);
    struct eng_task_view *v = &r->v;
    v->id = row->id;
    v->job = row->job;
    v->step = row->step;
    v->op = row->op;
    v->channel = row->channel;
    v->state = row->state;
    v->reason = row->reason;
    v->prio = row->prio;
    v->attempts = row->attempts;
    v->created_ms = row->created_ms;
    v->updated_ms = row->updated_ms;
    return r;
}

int eng_transition(struct eng *e, const struct eng_tr *tr, enum task_state to, enum task_reason r,
                   const char *text)
{
    struct eng_atask *a = tr->a;
    struct store_task row;
    struct ota_err err;
    int rc;
    int64_t now = eng_now_ms(e);

    if (a) {
        eng_atask_row(a, &row);
        row.result = (char *)tr->result;
    } else if (tr->row) {
        row = *tr->row;
        row.result = NULL; /* leave the stored result */
    } else {
        memset(&row, 0, sizeof(row));
        row.id = tr->id;
        row.se = tr->se;
        row.job = tr->job;
        row.step = tr->step;
        row.state = tr->from;
    }
    enum task_state from = row.state;
    if (!task_transition_ok(from, to)) {
        e->stats.illegal_transitions++;
        eng_log(e, 3, "task=%lld illegal transition %s -> %s (%s) refused", (long long)row.id,
                task_state_name(from), task_state_name(to), task_reason_name(r));
        return -EPERM;
    }
    row.state = to;
    row.reason = r;
    copy_str(row.reason_text, sizeof(row.reason_text), text);
    row.updated_ms = now;
    if (to == TASK_QUEUED) {
        row.not_before_ms = now + (tr->row && !a ? 0 : backoff_ms(e, row.attempts));
        row.wait_until_ms = 0;
    } else if (!task_state_active(to)) {
        row.wait_until_ms = 0;
    }
    if (a && task_state_active(to) && !tr->result) {
        /* still active: the row is written once per batch (eng_dirty_flush) */
        a->reason = r;
        copy_str(a->reason_text, sizeof(a->reason_text), row.reason_text);
        a->updated_ms = now;
        dirty_mark(e, a);
        rc = 0;
    } else if (a || tr->row) {
        if (a) {
            dirty_unlink(e, a); /* this write carries everything */
        }
        rc = store_task_update(e->st, &row, &err);
    } else {
        rc = store_task_set_state(e->st, row.id, to, r, row.reason_text, now, &err);
    }
    if (rc == 0 && e->conf.keep_history) {
        rc = store_event(e->st, row.id, row.se, from, to, r, now, row.reason_text, &err);
    }
    if (rc < 0) {
        eng_stop(e, rc, &err);
        return rc;
    }
    /* the SEID when the active record has it, else the SE's row id */
    char se_txt[STORE_SEID_MAX + 2];
    if (a) {
        copy_str(se_txt, sizeof(se_txt), a->seid);
    } else {
        snprintf(se_txt, sizeof(se_txt), "#%lld", (long long)row.se);
    }
    eng_log(e, to == TASK_FAILED ? 4 : 6, "task=%lld se=%s %s -> %s reason=%s%s%s",
            (long long)row.id, se_txt, task_state_name(from), task_state_name(to),
            task_reason_name(r), row.reason_text[0] ? " " : "", row.reason_text);

    switch (to) {
    case TASK_DISPATCHED:
        e->stats.dispatched++;
        break;
    case TASK_DONE:
        e->stats.done++;
        break;
    case TASK_FAILED:
        e->stats.failed++;
        break;
    case TASK_EXPIRED:
        e->stats.expired++;
        break;
    case TASK_CANCELLED:
        e->stats.cancelled++;
        break;
    case TASK_QUEUED:
        e->stats.retries++;
        break;
    default:
        break;
    }

    if (a) {
        a->state = to;
        a->wait_until_ms = row.wait_until_ms;
        if (tr->result && !dup_str(&a->result, tr->result)) {
            a->result_known = false;
        }
    }
    if (task_state_final(to) && e->hooks.final_staged && a) {
        const char *res = tr->result ? tr->result : a->result_known ? a->result : NULL;
        struct eng_task_view sv = {.id = row.id,
                                   .job = row.job,
                                   .step = row.step,
                                   .seid = a->seid,
                                   .msisdn = a->msisdn,
                                   .op = row.op,
                                   .channel = row.channel,
                                   .state = to,
                                   .reason = r,
                                   .reason_text = row.reason_text,
                                   .prio = row.prio,
                                   .attempts = row.attempts,
                                   .params = a->params_known ? a->params : NULL,
                                   .result = res,
                                   .created_ms = row.created_ms,
                                   .updated_ms = row.updated_ms};
        if (a->params_known && !a->params) {
            sv.params = "{}";
        }
        e->hooks.final_staged(e->hooks.arg, &sv);
        if (e->run != ENG_RUNNING) {
            return e->stop_rc < 0 ? e->stop_rc : -EIO; /* its staging broke the batch */
        }
    }
    struct eng_fin fin = {.id = row.id, .rec = NULL};
    if (task_state_final(to) && e->hooks.final && a) {
        fin.rec = finrec_of(a, &row);
    }
    if (task_state_active(from) && !task_state_active(to)) {
        sched_release(e->sc, (uint64_t)row.se, row.id);
        if (a) {
            active_remove(e, a);
            eng_atask_free(a);
        }
    }
    if (to == TASK_QUEUED) {
        struct sched_item it = {.task = row.id,
                                .se = (uint64_t)row.se,
                                .flow = (uint64_t)row.job,
                                .prio = row.prio,
                                .not_before_ms = row.not_before_ms,
                                .deadline_ms = row.deadline_ms};
        rc = sched_add(e->sc, &it, &err);
        if (rc < 0) {
            eng_stop(e, rc, &err);
            return rc;
        }
        eng_urgent_note(e, &it);
    }
    if (task_state_final(to)) {
        if (e->hooks.final && vec_fin_push(&e->fin_pending, &fin) < 0) {
            finrec_free(fin.rec);
            eng_log(e, 3, "task=%lld final hook dropped: out of memory", (long long)row.id);
        }
        if (row.job) {
            eng_job_task_final(e, row.job, row.step, row.id, to);
        }
    }
    return 0;
}

/* ---- the turn ---------------------------------------------------------------------- */

static void expire_cb(void *arg, const struct sched_item *it)
{
    struct eng *e = arg;
    struct eng_tr tr = {
        .id = it->task, .se = (int64_t)it->se, .job = (int64_t)it->flow, .from = TASK_QUEUED};
    /* the step of a sequence task matters for the job bookkeeping: read it */
    struct store_task t;
    struct ota_err err;
    if (it->flow && store_task_get(e->st, it->task, &t, &err) == 0) {
        tr.step = t.step;
        store_task_fini(&t);
    }
    eng_transition(e, &tr, TASK_EXPIRED, TASK_R_DEADLINE, "deadline passed while queued");
}

static void rearm_wake(struct eng *e)
{
    int64_t now = eng_now_ms(e);
    int64_t at = sched_next_wake_ms(e->sc, now);
    ev_timer_stop(e->loop, &e->wake);
    if (at == INT64_MAX || e->run != ENG_RUNNING) {
        return;
    }
    double d = (double)(at - now) / 1000.0;
    if (d < 0.001) {
        d = 0.001;
    }
    ev_timer_set(&e->wake, d, 0.0);
    ev_timer_start(e->loop, &e->wake);
}

/*
 * Whether this turn leaves the batch open (commit coalescing) and, if so,
 * arms the commit timer for the rest of the spacing. Commits at once when
 * something an early commit made ready waits to run (the bearer's held
 * acks are released all together, so they must never mix with the acks of
 * an open batch), when the batch is big, when it holds commit_max_acks
 * reports (the network stops sending once its window is full of unacked
 * reports: waiting would idle the link), or when the spacing has passed.
 */
static bool commit_defer(struct eng *e)
{
    size_t n = store_staged(e->st);
    if (n == 0 || e->conf.commit_interval_ms == 0 || n >= e->conf.commit_max_staged ||
        e->commit_due) {
        return false;
    }
    if (e->acc_ready.n || e->fin_ready.n || e->acks_ready || (e->send_head && !e->bearer_full)) {
        return false;
    }
    if (e->conf.commit_max_acks && e->acks_held >= e->conf.commit_max_acks) {
        return false;
    }
    double left = e->last_commit_t + e->conf.commit_interval_ms / 1000.0 - ev_time();
    if (left <= 0) {
        return false;
    }
    if (!ev_is_active(&e->ctimer)) {
        ev_timer_set(&e->ctimer, left, 0.0);
        ev_timer_start(e->loop, &e->ctimer);
    }
    return true;
}

static void turn(struct eng *e)
{
    struct ota_err err;
    if (e->run != ENG_RUNNING || e->in_turn) {
        return;
    }
    e->in_turn = true;
    int64_t now = eng_now_ms(e);
    sched_expire(e->sc, now, expire_cb, e);
    if (e->run == ENG_RUNNING) {
        eng_jobs_topup(e);
    }
    bool more = false;
    if (e->run == ENG_RUNNING) {
        eng_dispatch(e, e->conf.dispatch_max_turn, &more);
    }
    bool deferred = false;
    if (e->run == ENG_RUNNING) {
        deferred = commit_defer(e);
        if (!deferred && eng_commit(e, &err) == 0) {
            run_ready(e);
        }
    }
    if (e->run == ENG_RUNNING) {
        rearm_wake(e);
        /*
         * More to dispatch, or post-commit callbacks staged work: do not
         * block (a deferred batch has its timer instead).
         */
        if (more || (!deferred && store_staged(e->st) > 0)) {
            ev_idle_start(e->loop, &e->kick);
        }
    }
    e->in_turn = false;
}

static void prep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    turn(w->data);
}

static void wake_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    /* nothing: waking the loop makes the prepare watcher run a turn */
    (void)loop;
    (void)w;
    (void)revents;
}

static void ctimer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    /* the spacing has passed: the prepare watcher of this iteration commits */
    (void)loop;
    (void)revents;
    struct eng *e = w->data;
    e->commit_due = true;
}

static void kick_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w);
}

/* ---- open / rebuild / close -------------------------------------------------------- */

struct rebuild {
    struct eng *e;
    struct store_task *rows; /* non-queued open tasks, processed after the scan */
    size_t n, cap;
    int rc;
};

/*
 * The SPI of an anti-theft task is not stored: after a restart its PoR must
 * still be checked against the forced one (PoR CC-protected), never the
 * key set's own, possibly weaker, coding.
 */
static void rebuild_antitheft_spi(struct eng *e, struct eng_atask *a)
{
    struct eng_scp80_keys k;
    struct ota_err err;
    memset(&k, 0, sizeof(k));
    int rc = e->hooks.scp80_keys ? e->hooks.scp80_keys(e->hooks.arg, a->seid, a->tar, &k, &err)
                                 : -ENOENT;
    if (rc == 0) {
        rc = eng_spi_antitheft(k.spi, k.kic, k.kid, a->spi, NULL, &err);
    }
    if (rc == 0) {
        a->have_spi = true;
        a->kic = k.kic;
        a->kid = k.kid;
        a->cc_len = k.cc_len;
    } else {
        eng_log(e, 3, "task=%lld se=%s anti-theft SPI not rebuilt: %s", (long long)a->id, a->seid,
                err.msg);
    }
    ota_key_wipe(&k.kic_key);
    ota_key_wipe(&k.kid_key);
}

static int rebuild_cb(void *arg, const struct store_task *t)
{
    struct rebuild *rb = arg;
    struct eng *e = rb->e;
    struct ota_err err;
    if (t->job) {
        eng_job_task_created(e, t->job, t->id);
    }
    if (t->state == TASK_QUEUED) {
        struct sched_item it = {.task = t->id,
                                .se = (uint64_t)t->se,
                                .flow = (uint64_t)t->job,
                                .prio = t->prio,
                                .not_before_ms = t->not_before_ms,
                                .deadline_ms = t->deadline_ms};
        int rc = sched_add(e->sc, &it, &err);
        if (rc == 0) {
            eng_urgent_note(e, &it);
        }
        return rc == -EEXIST ? 0 : rc;
    }
    if (rb->n == rb->cap) {
        size_t cap = rb->cap ? rb->cap * 2 : 256;
        struct store_task *p = realloc(rb->rows, cap * sizeof(*p));
        if (!p) {
            return -ENOMEM;
        }
        rb->rows = p;
        rb->cap = cap;
    }
    rb->rows[rb->n] = *t;
    rb->rows[rb->n].params = NULL;
    rb->rows[rb->n].result = NULL;
    rb->n++;
    return 0;
}

static int parts_cb(void *arg, uint8_t part, const char *msg_id, enum store_dlr dlr)
{
    struct eng_atask *a = arg;
    if (part < 1 || part > a->n_parts || part > ENG_MAX_PARTS) {
        return 0;
    }
    struct eng_part *p = &a->parts[part - 1];
    copy_str(p->msg_id, sizeof(p->msg_id), msg_id);
    p->accepted = msg_id && msg_id[0];
    p->handed = true;
    p->dlr = dlr;
    return 0;
}

struct accepted_of {
    uint8_t n_parts;
    bool any;
};

static int accepted_cb(void *arg, uint8_t part, const char *msg_id, enum store_dlr dlr)
{
    struct accepted_of *ac = arg;
    /* rows above n_parts, and rows marked failed at this attempt's dispatch, are older */
    if (part >= 1 && part <= ac->n_parts && msg_id && msg_id[0] && dlr != STORE_DLR_FAILED) {
        ac->any = true;
    }
    return 0;
}

/* Requeue (or fail) a task found dispatched at restart. */
static int rebuild_dispatched(struct eng *e, struct store_task *t, struct ota_err *err)
{
    struct accepted_of ac = {.n_parts = t->n_parts, .any = false};
    int rc = store_parts_of(e->st, t->id, accepted_cb, &ac, err);
    if (rc < 0) {
        return rc;
    }
    /*
     * Its parts may or may not have gone: retry it with a new counter
     * (reserved at its next dispatch); reports of this attempt are late.
     * When the network accepted none of its parts, the attempt is not
     * counted: an engine killed again and again must not use up the
     * attempts of a task that never left.
     */
    struct eng_tr tr = {.id = t->id, .se = t->se, .job = t->job, .row = t};
    if (!ac.any) {
        if (t->attempts > 0) {
            t->attempts--;
        }
        rc = eng_transition(e, &tr, TASK_QUEUED, TASK_R_BEARER_TIMEOUT,
                            "restart while dispatched, no part accepted: retried, not counted");
    } else if (t->attempts >= t->max_attempts) {
        rc = eng_transition(e, &tr, TASK_FAILED, TASK_R_BEARER_TIMEOUT,
                            "restart while dispatched, attempts used up");
    } else {
        rc = eng_transition(e, &tr, TASK_QUEUED, TASK_R_BEARER_TIMEOUT,
                            "restart while dispatched: retried");
    }
    if (rc < 0) {
        return ota_fail(err, rc, OTA_ERR_STATE, "rebuild: requeue of task %lld failed",
                        (long long)t->id);
    }
    return 0;
}

static bool result_pulled(const char *result)
{
    if (!result) {
        return false;
    }
    json_t *j = json_loads(result, 0, NULL);
    bool pulled = j && json_is_object(j) && json_object_get(j, "pulled_ms") != NULL;
    json_decref(j);
    return pulled;
}

/* Rebuild one submitted / delivered task (its parts are known and accepted). */
static int rebuild_active(struct eng *e, const struct store_task *t, struct ota_err *err)
{
    struct store_se se;
    int rc = store_se_get(e->st, t->se, &se, err);
    if (rc < 0) {
        return rc;
    }
    struct eng_atask *a = calloc(1, sizeof(*a));
    if (!a) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "rebuild: out of memory");
    }
    a->id = t->id;
    a->job = t->job;
    a->se = t->se;
    a->step = t->step;
    copy_str(a->seid, sizeof(a->seid), se.seid);
    copy_str(a->msisdn, sizeof(a->msisdn), se.msisdn);
    a->op = t->op;
    a->channel = t->channel;
    a->state = t->state;
    a->prio = t->prio;
    a->attempts = t->attempts;
    a->max_attempts = t->max_attempts;
    a->created_ms = t->created_ms;
    a->not_before_ms = t->not_before_ms;
    a->deadline_ms = t->deadline_ms;
    a->kvn = t->kvn;
    memcpy(a->tar, t->tar, 3);
    a->cntr = t->cntr;
    if (task_op_antitheft(a->op) && a->cntr) {
        rebuild_antitheft_spi(e, a);
    }
    a->has_serial = t->has_serial;
    memcpy(a->serial, t->serial, 16);
    a->n_parts = t->n_parts > ENG_MAX_PARTS ? ENG_MAX_PARTS : t->n_parts;
    a->n_handed = a->n_parts;
    a->parts = calloc(a->n_parts ? a->n_parts : 1, sizeof(*a->parts));
    if (!a->parts) {
        free(a);
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "rebuild: out of memory");
    }
    rc = store_parts_of(e->st, t->id, parts_cb, a, err);
    if (rc < 0) {
        eng_atask_free(a);
        return rc;
    }
    if (a->channel == TASK_CH_PUSH && a->state == TASK_DELIVERED) {
        struct store_task full;
        if (store_task_get(e->st, t->id, &full, err) == 0) {
            a->pulled = result_pulled(full.result);
            store_task_fini(&full);
        }
    }
    if (a->state == TASK_SUBMITTED) {
        a->wait = e->conf.want_dlr              ? ENG_W_DLR
                  : a->channel == TASK_CH_SCP80 ? ENG_W_POR
                                                : ENG_W_PULL;
    } else {
        a->wait = a->channel == TASK_CH_SCP80 ? ENG_W_POR : a->pulled ? ENG_W_SESSION : ENG_W_PULL;
    }
    a->wait_until_ms = t->wait_until_ms ? t->wait_until_ms : eng_now_ms(e);
    rc = eng_active_add(e, a);
    if (rc < 0) {
        eng_atask_free(a);
        return ota_fail(err, rc, OTA_ERR_LIMIT, "rebuild: out of memory");
    }
    rc = sched_set_active(e->sc, (uint64_t)a->se, a->id, err);
    if (rc == -EBUSY) {
        /* cannot happen with this engine; refusing to start would be worse than going on */
        eng_log(e, 3, "task=%lld se=%s: SE busy with task %lld at rebuild", (long long)a->id,
                a->seid, (long long)sched_active(e->sc, (uint64_t)a->se));
    } else if (rc < 0) {
        return rc;
    }
    eng_timer_rearm(e, a);
    return 0;
}

static int rebuild(struct eng *e, struct ota_err *err)
{
    int64_t max_id = 0;
    int rc = store_task_max_id(e->st, &max_id, err);
    if (rc < 0) {
        return rc;
    }
    e->next_task_id = max_id + 1;
    rc = store_job_max_id(e->st, &max_id, err);
    if (rc < 0) {
        return rc;
    }
    e->next_job_id = max_id + 1;
    rc = eng_jobs_rebuild(e, err);
    if (rc < 0) {
        return rc;
    }
    struct rebuild rb = {.e = e};
    rc = store_tasks_open(e->st, rebuild_cb, &rb, err);
    for (size_t i = 0; rc == 0 && i < rb.n; i++) {
        struct store_task *t = &rb.rows[i];
        if (t->state == TASK_DISPATCHED) {
            rc = rebuild_dispatched(e, t, err);
        } else {
            rc = rebuild_active(e, t, err);
        }
    }
    free(rb.rows);
    if (rc < 0) {
        return rc;
    }
    return eng_commit(e, err);
}

int eng_open(struct ev_loop *loop, const struct eng_conf *conf, const struct eng_hooks *hooks,
             struct eng **out, struct ota_err *err)
{
    if (!loop || !conf || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "eng_open: NULL argument");
    }
    if (conf->job_chunk == 0 || conf->dispatch_max_turn == 0 || conf->max_attempts == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "eng_open: job_chunk, dispatch_max_turn and max_attempts must be > 0");
    }
    if (conf->commit_interval_ms > 1000) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "eng_open: commit_interval_ms above 1000");
    }
    struct eng *e = calloc(1, sizeof(*e));
    if (!e) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "eng_open: out of memory");
    }
    e->loop = loop;
    e->conf = *conf;
    copy_str(e->db_path, sizeof(e->db_path), conf->db_path ? conf->db_path : "otagw.db");
    e->conf.db_path = e->db_path;
    if (e->conf.commit_max_staged == 0) {
        e->conf.commit_max_staged = 4096;
    }
    if (hooks) {
        e->hooks = *hooks;
    }
    e->run = ENG_RUNNING;
    ev_prepare_init(&e->prep, prep_cb);
    e->prep.data = e;
    ev_set_priority(&e->prep, EV_MAXPRI);
    ev_timer_init(&e->wake, wake_cb, 1.0, 0.0);
    ev_timer_init(&e->ctimer, ctimer_cb, 0.001, 0.0);
    e->ctimer.data = e;
    ev_idle_init(&e->kick, kick_cb);

    struct store_opts so = {.path = e->db_path, .durable = conf->durable};
    int rc = store_open(&so, &e->st, err);
    if (rc < 0) {
        free(e);
        return rc;
    }
    rc = sched_new(&e->sc, err);
    if (rc == 0) {
        rc = ota_crypto_new(&e->cx, err);
    }
    if (rc == 0) {
        rc = rebuild(e, err);
    }
    if (rc < 0 || e->run != ENG_RUNNING) {
        if (rc == 0) {
            rc = ota_fail(err, -EIO, OTA_ERR_STATE, "eng_open: rebuild commit failed");
        }
        e->run = ENG_STOPPED_ERROR;
        eng_close(e);
        return rc;
    }
    ev_prepare_start(loop, &e->prep);
    ev_unref(loop); /* the turn watcher alone must not keep the loop running */
    rearm_wake(e);
    *out = e;
    return 0;
}

void eng_close(struct eng *e)
{
    if (!e) {
        return;
    }
    struct ota_err err;
    if (e->run == ENG_RUNNING) {
        if (eng_commit(e, &err) == 0) {
            run_ready(e);
        }
    }
    if (ev_is_active(&e->prep)) {
        ev_ref(e->loop);
        ev_prepare_stop(e->loop, &e->prep);
    }
    ev_timer_stop(e->loop, &e->wake);
    ev_timer_stop(e->loop, &e->ctimer);
    ev_idle_stop(e->loop, &e->kick);
    for (size_t i = 0; i < e->by_id.nb; i++) {
        struct eng_map_ent *m = e->by_id.b[i];
        while (m) {
            struct eng_map_ent *next = m->next;
            struct eng_atask *a = m->val;
            ev_timer_stop(e->loop, &a->timer);
            eng_atask_free(a);
            m = next;
        }
    }
    eng_map_fini(&e->by_id);
    eng_map_fini(&e->by_msgid);
    eng_map_fini(&e->by_msisdn);
    eng_map_fini(&e->by_serial);
    eng_map_fini(&e->old_serial);
    free(e->old_ring);
    eng_jobs_free(e);
    free(e->acc_pending.v);
    free(e->acc_ready.v);
    free(e->urgent.v);
    vec_fin_free(&e->fin_pending);
    vec_fin_free(&e->fin_ready);
    store_task_fini(&e->view_row);
    sched_free(e->sc);
    ota_crypto_free(e->cx);
    store_close(e->st);
    free(e);
}

/* ---- bearer wiring ----------------------------------------------------------------- */

void eng_set_bearer(struct eng *e, const struct eng_bearer_ops *ops)
{
    if (ops) {
        e->ops = *ops;
        e->have_ops = true;
    } else {
        memset(&e->ops, 0, sizeof(e->ops));
        e->have_ops = false;
    }
}

static void cb_submit_result(void *arg, const struct bearer_submit_result *r)
{
    eng_on_submit_result(arg, r);
}

static int cb_dlr(void *arg, const struct bearer_dlr *d)
{
    return eng_on_dlr(arg, d);
}

static int cb_mo(void *arg, const struct bearer_mo *m)
{
    return eng_on_mo(arg, m);
}

static void cb_ready(void *arg)
{
    eng_on_ready(arg);
}

void eng_bearer_cbs(struct eng *e, struct bearer_cbs *cbs)
{
    memset(cbs, 0, sizeof(*cbs));
    cbs->submit_result = cb_submit_result;
    cbs->dlr = cb_dlr;
    cbs->mo = cb_mo;
    cbs->ready = cb_ready;
    cbs->arg = e;
}

static int ops_submit(void *arg, const struct bearer_msg *m, struct ota_err *err)
{
    return bearer_submit(arg, m, err);
}

static void ops_release(void *arg)
{
    bearer_release_acks(arg);
}

static void ops_discard(void *arg)
{
    bearer_discard_acks(arg);
}

void eng_use_bearer(struct eng *e, struct bearer *b)
{
    struct eng_bearer_ops ops = {
        .submit = ops_submit, .release_acks = ops_release, .discard_acks = ops_discard, .arg = b};
    e->bearer = b;
    eng_set_bearer(e, &ops);
}

void eng_on_ready(struct eng *e)
{
    if (e->run != ENG_RUNNING) {
        return;
    }
    eng_send_pump(e);
    /* room again: more tasks may be dispatched in the next turn */
    ev_idle_start(e->loop, &e->kick);
}

/* ---- SEs and submitting ------------------------------------------------------------ */

int eng_se_register(struct eng *e, const char *seid, const char *msisdn, const char *batch,
                    struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
    }
    int64_t id;
    int rc = store_se_put(e->st, seid, msisdn ? msisdn : "", batch ? batch : "", &id, err);
    if (rc == -EEXIST) {
        struct store_se se;
        if (store_se_get(e->st, id, &se, err) == 0 &&
            strcmp(se.msisdn, msisdn ? msisdn : "") == 0) {
            return 0;
        }
        return ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE, "seid %s registered with another MSISDN",
                        seid);
    }
    return rc;
}

int eng_check_spec(struct eng *e, const struct eng_task_spec *s, bool need_seid,
                   struct ota_err *err)
{
    int64_t now = eng_now_ms(e);
    if (!s) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "spec: NULL");
    }
    if (need_seid && (!s->seid || !s->seid[0])) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "seid: missing");
    }
    if ((unsigned)s->op >= TASK_OP__COUNT) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "op: unknown (%d)", (int)s->op);
    }
    if ((unsigned)s->channel >= TASK_CH__COUNT) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "channel: unknown (%d)", (int)s->channel);
    }
    if (s->op == TASK_OP_PUSH && s->channel != TASK_CH_PUSH) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "channel: op push needs channel push");
    }
    if ((s->op == TASK_OP_SCP80 || task_op_antitheft(s->op)) && s->channel != TASK_CH_SCP80) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "channel: op %s needs channel scp80",
                        task_op_name(s->op));
    }
    if (s->prio > TASK_PRIO_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "prio: %u above %d", s->prio, TASK_PRIO_MAX);
    }
    if (s->not_before_ms < 0 || s->deadline_ms < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "not_before/deadline: negative");
    }
    if (s->not_before_ms > now + NOT_BEFORE_MAX_MS) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "not_before: more than 366 days ahead");
    }
    if (s->deadline_ms) {
        int64_t start = s->not_before_ms > now ? s->not_before_ms : now;
        if (s->deadline_ms <= start) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "deadline: not after not_before (or now)");
        }
    }
    const char *params = s->params ? s->params : "{}";
    json_error_t je;
    json_t *j = json_loads(params, JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "params: not a JSON object");
    }
    json_decref(j);
    if (s->op == TASK_OP_SCP80 || task_op_antitheft(s->op)) {
        uint8_t tar[3], script[1024];
        size_t len;
        /* anti-theft params also carry the request's record (gateway/api_antitheft.c) */
        int rc = eng_scp80_params_read(params, !task_op_antitheft(s->op), tar, script,
                                       sizeof(script), &len, err);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

int eng_task_create(struct eng *e, struct store_task *row, struct ota_err *err)
{
    row->id = e->next_task_id;
    int rc = store_task_insert(e->st, row, err);
    if (rc < 0) {
        eng_stop(e, rc, err);
        return rc;
    }
    struct sched_item it = {.task = row->id,
                            .se = (uint64_t)row->se,
                            .flow = (uint64_t)row->job,
                            .prio = row->prio,
                            .not_before_ms = row->not_before_ms,
                            .deadline_ms = row->deadline_ms};
    rc = sched_add(e->sc, &it, err);
    if (rc < 0) {
        eng_stop(e, rc, err);
        return rc;
    }
    eng_urgent_note(e, &it);
    e->next_task_id++;
    e->stats.accepted++;
    if (row->job) {
        eng_job_task_created(e, row->job, row->id);
    }
    return 0;
}

void eng_row_from_spec(struct eng *e, const struct eng_task_spec *s, int64_t se, int64_t job,
                       int32_t step, struct store_task *row)
{
    int64_t now = eng_now_ms(e);
    memset(row, 0, sizeof(*row));
    row->job = job;
    row->step = step;
    row->se = se;
    row->op = s->op;
    row->channel = s->channel;
    row->prio = s->prio;
    row->max_attempts = s->max_attempts ? s->max_attempts : e->conf.max_attempts;
    row->state = TASK_QUEUED;
    row->created_ms = now;
    row->updated_ms = now;
    row->not_before_ms = s->not_before_ms;
    row->deadline_ms = s->deadline_ms;
    row->params = (char *)(s->params ? s->params : "{}");
}

int eng_accept_add(struct eng *e, eng_accept_cb cb, void *arg, int64_t id)
{
    struct eng_accept a = {.cb = cb, .arg = arg, .id = id};
    if (!cb) {
        return 0;
    }
    return vec_acc_push(&e->acc_pending, &a);
}

int eng_submit(struct eng *e, const struct eng_task_spec *spec, eng_accept_cb cb, void *cb_arg,
               int64_t *id, struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
    }
    int rc = eng_check_spec(e, spec, true, err);
    if (rc < 0) {
        return rc;
    }
    struct store_se se;
    rc = store_se_find(e->st, spec->seid, &se, err);
    if (rc < 0) {
        return rc == -ENOENT ? ota_fail(err, -ENOENT, OTA_ERR_MISSING, "seid: %.64s not registered",
                                        spec->seid)
                             : rc;
    }
    rc = store_se_admit(e->st, &se, err); /* spec 5.5.2: unbound / loss-listed */
    if (rc == -EACCES && task_op_antitheft(spec->op)) {
        /* a lost SE is what anti-theft acts on (spec 5.5.2: a loss-listed SE gets app lock) */
        rc = 0;
    }
    if (rc < 0) {
        return rc;
    }
    struct store_task row;
    eng_row_from_spec(e, spec, se.id, 0, 0, &row);
    if (cb && e->acc_pending.n == e->acc_pending.cap) {
        /* reserve first: nothing may be staged without its accept callback */
        struct eng_accept dummy = {0};
        if (vec_acc_push(&e->acc_pending, &dummy) < 0) {
            return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
        }
        e->acc_pending.n--;
    }
    rc = eng_task_create(e, &row, err);
    if (rc < 0) {
        return rc;
    }
    eng_accept_add(e, cb, cb_arg, row.id);
    if (id) {
        *id = row.id;
    }
    return 0;
}

/* ---- operating on tasks ------------------------------------------------------------ */

int eng_task_cancel(struct eng *e, int64_t task, struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
    }
    struct sched_item it;
    if (sched_get(e->sc, task, &it)) {
        struct store_task t;
        int32_t step = 0;
        if (it.flow && store_task_get(e->st, task, &t, err) == 0) {
            step = t.step;
            store_task_fini(&t);
        }
        sched_remove(e->sc, task);
        struct eng_tr tr = {.id = task,
                            .se = (int64_t)it.se,
                            .job = (int64_t)it.flow,
                            .step = step,
                            .from = TASK_QUEUED};
        return eng_transition(e, &tr, TASK_CANCELLED, TASK_R_CANCELLED, "cancelled while queued");
    }
    if (eng_active_get(e, task)) {
        return ota_fail(err, -EBUSY, OTA_ERR_STATE, "task %lld is active: terminate it",
                        (long long)task);
    }
    struct store_task t;
    int rc = store_task_get(e->st, task, &t, err);
    if (rc < 0) {
        return rc == -ENOENT
                   ? ota_fail(err, -ENOENT, OTA_ERR_MISSING, "task %lld unknown", (long long)task)
                   : rc;
    }
    enum task_state st = t.state;
    store_task_fini(&t);
    if (task_state_final(st)) {
        return ota_fail(err, -EALREADY, OTA_ERR_STATE, "task %lld is %s already", (long long)task,
                        task_state_name(st));
    }
    return ota_fail(err, -EBUSY, OTA_ERR_STATE, "task %lld is %s", (long long)task,
                    task_state_name(st));
}

int eng_task_terminate(struct eng *e, int64_t task, struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
    }
    struct eng_atask *a = eng_active_get(e, task);
    if (!a) {
        return ota_fail(err, -EINVAL, OTA_ERR_STATE, "task %lld is not active", (long long)task);
    }
    struct eng_tr tr = {.a = a};
    return eng_transition(e, &tr, TASK_CANCELLED, TASK_R_TERMINATED, "terminated by operator");
}

int eng_task_get(struct eng *e, int64_t task, struct eng_task_view *out, struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
    }
    store_task_fini(&e->view_row);
    memset(&e->view_row, 0, sizeof(e->view_row));
    if (eng_dirty_flush(e) < 0) {
        return ota_fail(err, e->stop_rc, OTA_ERR_STATE, "engine stopped: row write failed");
    }
    int rc = store_task_get(e->st, task, &e->view_row, err);
    if (rc < 0) {
        memset(&e->view_row, 0, sizeof(e->view_row));
        return rc;
    }
    bool have_se = store_se_get(e->st, e->view_row.se, &e->view_se, err) == 0;
    view_fill(out, &e->view_row, have_se ? &e->view_se : NULL);
    return 0;
}

int eng_se_tasks(struct eng *e, const char *seid, int64_t *active, int64_t *queued, size_t cap,
                 size_t *n_queued, struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
    }
    struct store_se se;
    int rc = store_se_find(e->st, seid, &se, err);
    if (rc < 0) {
        return rc;
    }
    if (active) {
        *active = sched_active(e->sc, (uint64_t)se.id);
    }
    struct sched_item *items = NULL;
    if (cap && queued) {
        items = calloc(cap, sizeof(*items));
        if (!items) {
            return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
        }
    }
    size_t n = sched_se_queue(e->sc, (uint64_t)se.id, items, items ? cap : 0);
    for (size_t i = 0; items && i < n && i < cap; i++) {
        queued[i] = items[i].task;
    }
    free(items);
    if (n_queued) {
        *n_queued = n;
    }
    return 0;
}

void eng_stats(const struct eng *e, struct eng_stats *out)
{
    *out = e->stats;
    out->run = e->run;
    struct sched_stats ss;
    sched_stats(e->sc, &ss);
    out->queued = ss.queued;
    out->active = e->n_active;
    out->waiting_bearer = e->waiting_parts;
    store_commit_stats(e->st, &out->commits, &out->commit_s);
}

int eng_flush(struct eng *e, struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return ota_fail(err, e->stop_rc ? e->stop_rc : -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
    }
    int rc = eng_commit(e, err);
    if (rc == 0) {
        run_ready(e);
    }
    return rc;
}

struct store *eng_store(struct eng *e)
{
    return e->st;
}

/* An eng_after_commit waiter riding on the accept list (called exactly once, as accepts are). */
struct eng_after {
    void (*cb)(void *arg, int rc);
    void *arg;
};

static void after_commit_run(void *arg, int64_t id, int rc)
{
    (void)id;
    struct eng_after *w = arg;
    w->cb(w->arg, rc);
    free(w);
}

int eng_after_commit(struct eng *e, void (*cb)(void *arg, int rc), void *arg, struct ota_err *err)
{
    if (!cb) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "eng_after_commit: NULL callback");
    }
    if (e->run != ENG_RUNNING) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
    }
    struct eng_after *w = malloc(sizeof(*w));
    if (!w) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
    }
    w->cb = cb;
    w->arg = arg;
    if (eng_accept_add(e, after_commit_run, w, 0) < 0) {
        free(w);
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
    }
    /* nothing staged may still need a turn to run the waiter */
    ev_idle_start(e->loop, &e->kick);
    return 0;
}

void eng_fail_stop(struct eng *e, int rc, const struct ota_err *err)
{
    eng_stop(e, rc, err);
}
