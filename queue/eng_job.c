/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Jobs: batches over listed SEs (LIST), over registered SEs matching a
 * SEID range and/or batch (FILTER), and composite sequences on one SE
 * (SEQUENCE). Batches expand lazily, job_chunk tasks at a time, when the
 * job's queued tasks fall under half a chunk: a ten-million-SE campaign
 * never holds more than ~1.5 chunks in the scheduler. The expansion cursor
 * and count are written in the same batch as the tasks they created, so a
 * restart continues exactly where the last commit left off.
 *
 * Cursor text (ours, opaque to the store): LIST "next_index/total",
 * FILTER the last SEID expanded, SEQUENCE "first_task_id[/failed_task_id]".
 *
 * Cancelling a job cancels its queued tasks at once: the engine keeps, per
 * open job, the id ranges each expansion created (ids of one expansion are
 * consecutive) and asks the scheduler which of them are still queued.
 * Dispatch also refuses any task of a cancelled job (belt and braces).
 */
#include "queue/eng_int.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX 1000000
#define SEQ_MAX 64

struct eng_job *eng_job_find(struct eng *e, int64_t id)
{
    for (struct eng_job *j = e->jobs; j; j = j->next) {
        if (j->j.id == id) {
            return j;
        }
    }
    return NULL;
}

static void job_unlink_free(struct eng *e, struct eng_job *jb)
{
    for (struct eng_job **pp = &e->jobs; *pp; pp = &(*pp)->next) {
        if (*pp == jb) {
            *pp = jb->next;
            break;
        }
    }
    sched_flow_forget(e->sc, (uint64_t)jb->j.id);
    store_job_fini(&jb->j);
    free(jb->ranges);
    free(jb);
}

void eng_jobs_free(struct eng *e)
{
    while (e->jobs) {
        struct eng_job *jb = e->jobs;
        e->jobs = jb->next;
        store_job_fini(&jb->j);
        free(jb->ranges);
        free(jb);
    }
}

bool eng_job_cancelled(struct eng *e, int64_t job)
{
    struct eng_job *jb = eng_job_find(e, job);
    return jb && jb->j.state == STORE_JOB_CANCELLED;
}

static int job_save(struct eng *e, struct eng_job *jb)
{
    struct ota_err err;
    int rc = store_job_update(e->st, &jb->j, &err);
    if (rc < 0) {
        eng_stop(e, rc, &err);
    }
    return rc;
}

/* Forget the job once nothing of it can run any more; DONE when it completed. */
static void job_check_done(struct eng *e, struct eng_job *jb)
{
    if (jb->open > 0 || jb->busy) {
        return;
    }
    if (jb->j.state == STORE_JOB_CANCELLED) {
        job_unlink_free(e, jb);
        return;
    }
    if (!jb->j.expanded) {
        return;
    }
    jb->j.state = STORE_JOB_DONE;
    if (job_save(e, jb) == 0) {
        eng_log(e, 6, "job=%lld done (%" PRIu64 " tasks)", (long long)jb->j.id, jb->j.n_expanded);
    }
    job_unlink_free(e, jb);
}

static void parse_cursor(struct eng_job *jb)
{
    unsigned long long a = 0, b = 0;
    if (jb->j.kind == STORE_JOB_LIST) {
        if (sscanf(jb->j.cursor, "%llu/%llu", &a, &b) == 2) {
            jb->total = b;
        }
    } else if (jb->j.kind == STORE_JOB_SEQUENCE) {
        long long first = 0, failed = 0;
        int n = sscanf(jb->j.cursor, "%lld/%lld", &first, &failed);
        jb->first_task = n >= 1 ? first : 0;
        jb->failed_step_task = n == 2 ? failed : 0;
        jb->total = jb->j.n_expanded;
    } else if (jb->j.expanded) {
        jb->total = jb->j.n_expanded;
    }
}

static int job_add(struct eng *e, const struct store_job *src, struct eng_job **out)
{
    struct eng_job *jb = calloc(1, sizeof(*jb));
    if (!jb) {
        return -ENOMEM;
    }
    jb->j = *src;
    jb->j.params = strdup(src->params ? src->params : "{}");
    if (!jb->j.params) {
        free(jb);
        return -ENOMEM;
    }
    parse_cursor(jb);
    jb->next = e->jobs;
    e->jobs = jb;
    *out = jb;
    return 0;
}

struct jobs_rb {
    struct eng *e;
    struct ota_err *err;
};

static int jobs_open_cb(void *arg, const struct store_job *j)
{
    struct jobs_rb *rb = arg;
    struct eng *e = rb->e;
    struct store_job full;
    int rc = store_job_get(e->st, j->id, &full, rb->err);
    if (rc < 0) {
        return rc;
    }
    struct eng_job *jb;
    rc = job_add(e, &full, &jb);
    store_job_fini(&full);
    if (rc < 0) {
        return ota_fail(rb->err, rc, OTA_ERR_LIMIT, "jobs: out of memory");
    }
    return sched_flow_set(e->sc, (uint64_t)jb->j.id, jb->j.state == STORE_JOB_PAUSED,
                          jb->j.rate_per_s, rb->err);
}

int eng_jobs_rebuild(struct eng *e, struct ota_err *err)
{
    struct jobs_rb rb = {e, err};
    return store_jobs_open(e->st, jobs_open_cb, &rb, err);
}

void eng_job_task_created(struct eng *e, int64_t job, int64_t task)
{
    struct eng_job *jb = eng_job_find(e, job);
    if (!jb) {
        return;
    }
    jb->open++;
    if (jb->n_ranges > 0 && jb->ranges[jb->n_ranges - 1].hi + 1 == task) {
        jb->ranges[jb->n_ranges - 1].hi = task;
        return;
    }
    if (jb->n_ranges == jb->cap_ranges) {
        size_t cap = jb->cap_ranges ? jb->cap_ranges * 2 : 8;
        struct eng_range *r = realloc(jb->ranges, cap * sizeof(*r));
        if (!r) {
            eng_log(e, 3, "job=%lld: out of memory tracking task ids", (long long)job);
            return;
        }
        jb->ranges = r;
        jb->cap_ranges = cap;
    }
    jb->ranges[jb->n_ranges++] = (struct eng_range){task, task};
}

/* Cancel the job's queued tasks among ids lo..hi. */
static void cancel_queued(struct eng *e, struct eng_job *jb, int64_t lo, int64_t hi,
                          enum task_reason r, const char *text, int32_t step0)
{
    for (int64_t id = lo; id <= hi && e->run == ENG_RUNNING; id++) {
        struct sched_item it;
        if (!sched_get(e->sc, id, &it)) {
            continue;
        }
        sched_remove(e->sc, id);
        struct eng_tr tr = {.id = id,
                            .se = (int64_t)it.se,
                            .job = jb->j.id,
                            .step = step0 >= 0 ? (int32_t)(step0 + (id - lo)) : 0,
                            .from = TASK_QUEUED};
        eng_transition(e, &tr, TASK_CANCELLED, r, text);
        eng_maybe_commit(e);
    }
}

void eng_job_task_final(struct eng *e, int64_t job, int32_t step, int64_t task, enum task_state to)
{
    struct eng_job *jb = eng_job_find(e, job);
    if (!jb) {
        return;
    }
    if (jb->open > 0) {
        jb->open--;
    }
    if (jb->j.kind == STORE_JOB_SEQUENCE && to != TASK_DONE && !jb->busy) {
        /* a failed step cancels the later ones, which wait behind it in the SE's FIFO */
        if (jb->failed_step_task == 0) {
            jb->failed_step_task = task;
            snprintf(jb->j.cursor, sizeof(jb->j.cursor), "%lld/%lld", (long long)jb->first_task,
                     (long long)task);
            job_save(e, jb);
        }
        char text[STORE_REASON_TEXT_MAX];
        snprintf(text, sizeof(text), "step %d (task %lld) %s", step, (long long)task,
                 task_state_name(to));
        int64_t last = task - step + (int64_t)jb->total - 1;
        jb->busy = true;
        cancel_queued(e, jb, task + 1, last, TASK_R_STEP_FAILED, text, step + 1);
        jb->busy = false;
    }
    job_check_done(e, jb);
}

/* ---- expansion ------------------------------------------------------------------------ */

static void row_from_job(struct eng *e, const struct eng_job *jb, int64_t se,
                         struct store_task *row)
{
    int64_t now = eng_now_ms(e);
    memset(row, 0, sizeof(*row));
    row->job = jb->j.id;
    row->se = se;
    row->op = jb->j.op;
    row->channel = jb->j.channel;
    row->prio = jb->j.prio;
    row->max_attempts = jb->j.max_attempts ? jb->j.max_attempts : e->conf.max_attempts;
    row->state = TASK_QUEUED;
    row->created_ms = now;
    row->updated_ms = now;
    row->not_before_ms = jb->j.not_before_ms;
    row->deadline_ms = jb->j.deadline_ms;
    row->params = jb->j.params;
}

static size_t expand_chunk(struct eng *e, struct eng_job *jb)
{
    struct ota_err err;
    size_t chunk = e->conf.job_chunk;
    size_t n = 0, made = 0;
    int rc;
    if (jb->j.kind == STORE_JOB_LIST) {
        int64_t *ses = malloc(chunk * sizeof(*ses));
        if (!ses) {
            return 0;
        }
        rc = store_job_members(e->st, jb->j.id, jb->j.n_expanded, chunk, ses, &n, &err);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            struct store_task row;
            row_from_job(e, jb, ses[i], &row);
            rc = eng_task_create(e, &row, &err);
            made += rc == 0;
        }
        free(ses);
        if (rc < 0) {
            eng_stop(e, rc, &err);
            return made;
        }
        jb->j.n_expanded += made;
        snprintf(jb->j.cursor, sizeof(jb->j.cursor), "%" PRIu64 "/%" PRIu64, jb->j.n_expanded,
                 jb->total);
        jb->j.expanded = n < chunk || jb->j.n_expanded >= jb->total;
    } else if (jb->j.kind == STORE_JOB_FILTER) {
        struct store_se *out = malloc(chunk * sizeof(*out));
        if (!out) {
            return 0;
        }
        struct store_se_filter f = {.seid_lo = jb->j.seid_lo[0] ? jb->j.seid_lo : NULL,
                                    .seid_hi = jb->j.seid_hi[0] ? jb->j.seid_hi : NULL,
                                    .batch = jb->j.batch[0] ? jb->j.batch : NULL};
        rc = store_se_scan(e->st, &f, jb->j.cursor, chunk, out, &n, &err);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            struct store_task row;
            row_from_job(e, jb, out[i].id, &row);
            rc = eng_task_create(e, &row, &err);
            made += rc == 0;
        }
        if (rc == 0 && n > 0) {
            snprintf(jb->j.cursor, sizeof(jb->j.cursor), "%s", out[n - 1].seid);
        }
        free(out);
        if (rc < 0) {
            eng_stop(e, rc, &err);
            return made;
        }
        jb->j.n_expanded += made;
        jb->j.expanded = n < chunk;
        if (jb->j.expanded) {
            jb->total = jb->j.n_expanded;
        }
    } else {
        return 0;
    }
    if (job_save(e, jb) < 0) {
        return made;
    }
    eng_log(e, 7, "job=%lld expanded %zu tasks (%" PRIu64 " so far)%s", (long long)jb->j.id, made,
            jb->j.n_expanded, jb->j.expanded ? ", complete" : "");
    return made;
}

size_t eng_jobs_topup(struct eng *e)
{
    size_t made = 0;
    size_t low = e->conf.job_chunk / 2 ? e->conf.job_chunk / 2 : 1;
    struct eng_job *jb = e->jobs;
    while (jb && e->run == ENG_RUNNING) {
        struct eng_job *next = jb->next;
        if (jb->j.state == STORE_JOB_RUNNING && !jb->j.expanded &&
            sched_flow_queued(e->sc, (uint64_t)jb->j.id) < low) {
            made += expand_chunk(e, jb);
            eng_maybe_commit(e);
            job_check_done(e, jb); /* an empty filter is done at once */
        }
        jb = next;
    }
    return made;
}

/* ---- API ------------------------------------------------------------------------------- */

static int job_stopped(struct eng *e, struct ota_err *err)
{
    return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "engine stopped");
}

int eng_job_submit(struct eng *e, const struct eng_job_spec *spec, eng_accept_cb cb, void *cb_arg,
                   int64_t *id, struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return job_stopped(e, err);
    }
    if (!spec) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "job: NULL spec");
    }
    if (!isfinite(spec->rate_per_s) || spec->rate_per_s < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "rate_per_s: negative or not finite");
    }
    int rc;
    int64_t *ses = NULL;
    int64_t seq_se = 0;
    struct store_se se;
    const struct eng_task_spec *tmpl = &spec->tmpl;
    switch (spec->kind) {
    case ENG_JOB_LIST:
        if (spec->n_seids == 0 || spec->n_seids > LIST_MAX || !spec->seids) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "seids: 1..%d SEIDs", LIST_MAX);
        }
        rc = eng_check_spec(e, tmpl, false, err);
        if (rc < 0) {
            return rc;
        }
        ses = malloc(spec->n_seids * sizeof(*ses));
        if (!ses) {
            return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
        }
        for (size_t i = 0; i < spec->n_seids; i++) {
            if (!spec->seids[i]) {
                free(ses);
                return ota_fail(err, -EINVAL, OTA_ERR_ARG, "seids[%zu]: NULL", i);
            }
            rc = store_se_find(e->st, spec->seids[i], &se, err);
            if (rc < 0) {
                free(ses);
                return rc == -ENOENT
                           ? ota_fail(err, -ENOENT, OTA_ERR_MISSING,
                                      "seids[%zu]: %.64s not registered", i, spec->seids[i])
                           : rc;
            }
            rc = store_se_admit(e->st, &se, err); /* spec 5.5.2: unbound / loss-listed */
            if (rc < 0) {
                free(ses);
                return rc;
            }
            ses[i] = se.id;
        }
        break;
    case ENG_JOB_FILTER:
        rc = eng_check_spec(e, tmpl, false, err);
        if (rc < 0) {
            return rc;
        }
        if ((spec->seid_lo && strlen(spec->seid_lo) > STORE_SEID_MAX) ||
            (spec->seid_hi && strlen(spec->seid_hi) > STORE_SEID_MAX) ||
            (spec->batch && strlen(spec->batch) > STORE_BATCH_MAX)) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "filter: field too long");
        }
        break;
    case ENG_JOB_SEQUENCE:
        if (spec->n_steps == 0 || spec->n_steps > SEQ_MAX || !spec->steps) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "steps: 1..%d steps", SEQ_MAX);
        }
        for (size_t i = 0; i < spec->n_steps; i++) {
            struct eng_task_spec s = spec->steps[i];
            s.seid = spec->steps[0].seid;
            rc = eng_check_spec(e, &s, true, err);
            if (rc < 0) {
                return rc;
            }
        }
        rc = store_se_find(e->st, spec->steps[0].seid, &se, err);
        if (rc < 0) {
            return rc == -ENOENT ? ota_fail(err, -ENOENT, OTA_ERR_MISSING,
                                            "seid: %.64s not registered", spec->steps[0].seid)
                                 : rc;
        }
        rc = store_se_admit(e->st, &se, err); /* spec 5.5.2: unbound / loss-listed */
        if (rc < 0) {
            return rc;
        }
        seq_se = se.id;
        tmpl = &spec->steps[0];
        break;
    default:
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kind: unknown (%d)", (int)spec->kind);
    }

    /* validated: stage everything (a staging failure stops the engine: crash-only) */
    int64_t now = eng_now_ms(e);
    struct store_job j;
    memset(&j, 0, sizeof(j));
    j.id = e->next_job_id;
    j.kind = (enum store_job_kind)spec->kind;
    j.state = STORE_JOB_RUNNING;
    j.prio = tmpl->prio;
    j.max_attempts = tmpl->max_attempts ? tmpl->max_attempts : e->conf.max_attempts;
    j.op = tmpl->op;
    j.channel = tmpl->channel;
    j.rate_per_s = spec->rate_per_s;
    j.created_ms = now;
    j.not_before_ms = tmpl->not_before_ms;
    j.deadline_ms = tmpl->deadline_ms;
    if (spec->kind == ENG_JOB_FILTER) {
        snprintf(j.seid_lo, sizeof(j.seid_lo), "%s", spec->seid_lo ? spec->seid_lo : "");
        snprintf(j.seid_hi, sizeof(j.seid_hi), "%s", spec->seid_hi ? spec->seid_hi : "");
        snprintf(j.batch, sizeof(j.batch), "%s", spec->batch ? spec->batch : "");
    }
    if (spec->kind == ENG_JOB_LIST) {
        snprintf(j.cursor, sizeof(j.cursor), "0/%zu", spec->n_seids);
    }
    if (spec->kind == ENG_JOB_SEQUENCE) {
        snprintf(j.cursor, sizeof(j.cursor), "%lld", (long long)e->next_task_id);
        j.expanded = true;
        j.n_expanded = spec->n_steps;
    }
    j.params =
        (char *)(spec->kind == ENG_JOB_SEQUENCE ? "{}" : (tmpl->params ? tmpl->params : "{}"));
    struct eng_job *jb = NULL;
    rc = store_job_insert(e->st, &j, err);
    if (rc == 0) {
        rc = job_add(e, &j, &jb);
        if (rc < 0) {
            ota_fail(err, rc, OTA_ERR_LIMIT, "out of memory");
        }
    }
    if (rc == 0) {
        rc = sched_flow_set(e->sc, (uint64_t)j.id, false, spec->rate_per_s, err);
    }
    for (size_t i = 0; rc == 0 && spec->kind == ENG_JOB_LIST && i < spec->n_seids; i++) {
        rc = store_job_member_add(e->st, j.id, i, ses[i], err);
    }
    free(ses);
    if (rc == 0 && spec->kind == ENG_JOB_SEQUENCE) {
        jb->busy = true; /* no cascade while the steps are being created */
        for (size_t i = 0; rc == 0 && i < spec->n_steps; i++) {
            struct store_task row;
            eng_row_from_spec(e, &spec->steps[i], seq_se, j.id, (int32_t)i, &row);
            rc = eng_task_create(e, &row, err);
        }
        jb->busy = false;
    }
    if (rc < 0) {
        eng_stop(e, rc, err);
        return rc;
    }
    e->next_job_id++;
    eng_accept_add(e, cb, cb_arg, j.id);
    eng_log(e, 6, "job=%lld %s accepted", (long long)j.id,
            spec->kind == ENG_JOB_LIST     ? "list"
            : spec->kind == ENG_JOB_FILTER ? "filter"
                                           : "sequence");
    if (id) {
        *id = j.id;
    }
    return 0;
}

static int job_get_open(struct eng *e, int64_t job, struct eng_job **out, struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return job_stopped(e, err);
    }
    struct eng_job *jb = eng_job_find(e, job);
    if (jb && jb->j.state != STORE_JOB_CANCELLED) {
        *out = jb;
        return 0;
    }
    struct store_job j;
    int rc = store_job_get(e->st, job, &j, err);
    if (rc < 0) {
        return rc == -ENOENT
                   ? ota_fail(err, -ENOENT, OTA_ERR_MISSING, "job %lld unknown", (long long)job)
                   : rc;
    }
    store_job_fini(&j);
    return ota_fail(err, -EALREADY, OTA_ERR_STATE, "job %lld is over", (long long)job);
}

int eng_job_pause(struct eng *e, int64_t job, bool paused, struct ota_err *err)
{
    struct eng_job *jb = NULL;
    int rc = job_get_open(e, job, &jb, err);
    if (rc < 0) {
        return rc;
    }
    rc = sched_flow_set(e->sc, (uint64_t)job, paused, jb->j.rate_per_s, err);
    if (rc < 0) {
        return rc;
    }
    jb->j.state = paused ? STORE_JOB_PAUSED : STORE_JOB_RUNNING;
    return job_save(e, jb);
}

int eng_job_rate(struct eng *e, int64_t job, double rate_per_s, struct ota_err *err)
{
    struct eng_job *jb = NULL;
    int rc = job_get_open(e, job, &jb, err);
    if (rc < 0) {
        return rc;
    }
    if (!isfinite(rate_per_s) || rate_per_s < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "rate_per_s: negative or not finite");
    }
    rc = sched_flow_set(e->sc, (uint64_t)job, jb->j.state == STORE_JOB_PAUSED, rate_per_s, err);
    if (rc < 0) {
        return rc;
    }
    jb->j.rate_per_s = rate_per_s;
    return job_save(e, jb);
}

int eng_job_cancel(struct eng *e, int64_t job, struct ota_err *err)
{
    struct eng_job *jb = NULL;
    int rc = job_get_open(e, job, &jb, err);
    if (rc < 0) {
        return rc;
    }
    jb->j.state = STORE_JOB_CANCELLED;
    rc = job_save(e, jb);
    if (rc < 0) {
        return rc;
    }
    jb->busy = true;
    for (size_t i = 0; i < jb->n_ranges && e->run == ENG_RUNNING; i++) {
        cancel_queued(e, jb, jb->ranges[i].lo, jb->ranges[i].hi, TASK_R_JOB_CANCELLED,
                      "job cancelled", -1);
    }
    jb->busy = false;
    eng_log(e, 6, "job=%lld cancelled", (long long)job);
    job_check_done(e, jb);
    return e->run == ENG_RUNNING ? 0 : job_stopped(e, err);
}

int eng_job_progress(struct eng *e, int64_t job, struct eng_job_progress *out, struct ota_err *err)
{
    if (e->run != ENG_RUNNING) {
        return job_stopped(e, err);
    }
    struct store_job j;
    int rc = eng_dirty_flush(e); /* the counts come from the task rows */
    if (rc < 0) {
        return job_stopped(e, err);
    }
    rc = store_job_get(e->st, job, &j, err);
    if (rc < 0) {
        return rc;
    }
    memset(out, 0, sizeof(*out));
    rc = store_task_counts(e->st, job, out->counts, err);
    if (rc == 0) {
        struct eng_job tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.j = j;
        parse_cursor(&tmp);
        out->state = j.state;
        out->expanded = j.expanded;
        out->total = tmp.total ? tmp.total : j.n_expanded;
        out->failed_step_task = tmp.failed_step_task;
    }
    store_job_fini(&j);
    return rc;
}
