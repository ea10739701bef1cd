/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the task engine (queue/engine.c, eng_dispatch.c, eng_recon.c,
 * eng_job.c, eng_map.c): the engine object, the in-memory record of an
 * ACTIVE task (queued tasks live only in the scheduler and the store), the
 * correlation maps and the post-commit action lists. Not a public header.
 *
 * Memory rule: nothing per queued task here; one struct eng_atask per
 * active task (at most one per SE), one struct eng_job per open job.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "queue/engine.h"
#include "queue/sched.h"
#include "queue/store.h"

/* ---- hash map (eng_map.c): byte-string keys, duplicates allowed ---------------------- */

struct eng_map_ent {
    struct eng_map_ent *next;
    uint64_t hash;
    void *val;
    uint32_t aux;
    uint8_t klen;
    uint8_t key[];
};

struct eng_map {
    struct eng_map_ent **b;
    size_t nb, n;
};

/* 0 or -ENOMEM. Keys of at most 255 octets; the key is copied. */
int eng_map_put(struct eng_map *m, const void *k, size_t klen, void *val, uint32_t aux);
/* First entry with this key, or NULL. */
struct eng_map_ent *eng_map_get(const struct eng_map *m, const void *k, size_t klen);
/* Next entry after ent with the same key, or NULL. */
struct eng_map_ent *eng_map_next_same(const struct eng_map_ent *ent);
/* Remove the entry (k, val); 0 or -ENOENT. */
int eng_map_del(struct eng_map *m, const void *k, size_t klen, const void *val);
void eng_map_fini(struct eng_map *m);

/* ---- active tasks -------------------------------------------------------------------- */

/* What the wait timer of an active task waits for. */
enum eng_wait {
    ENG_W_NONE = 0,    /* dispatched: the bearer's hold time covers it (deadline only) */
    ENG_W_DLR = 1,     /* submitted, want_dlr: every part's final DLR */
    ENG_W_POR = 2,     /* SCP80: the PoR */
    ENG_W_PULL = 3,    /* push: the wallet pull */
    ENG_W_SESSION = 4, /* push pulled: eng_task_complete */
};

#define ENG_MAX_PARTS 20
#define ENG_OLD_SERIALS 65536 /* 2048-octet SCP80 packet in 8-bit SMS: 16 parts */

struct eng_part {
    char msg_id[STORE_MSGID_MAX];
    bool accepted;
    bool handed; /* given to ops.submit */
    enum store_dlr dlr;
};

struct eng_atask {
    int64_t id, job, se;
    int32_t step;
    char seid[STORE_SEID_MAX + 1];
    char msisdn[STORE_MSISDN_MAX + 1];
    enum task_op op;
    enum task_channel channel;
    enum task_state state;
    uint8_t prio, attempts, max_attempts;
    int64_t created_ms, not_before_ms, deadline_ms;
    /* SCP80 of the current attempt; never key bytes */
    bool have_spi; /* spi/kic/kid/cc_len known (lost at restart: asked again) */
    uint8_t spi[2], kic, kid, cc_len, kvn, tar[3];
    uint64_t cntr;
    /* push */
    bool has_serial, pulled;
    uint8_t serial[16];
    uint8_t n_parts, n_handed;
    struct eng_part *parts;   /* n_parts of them (malloc) */
    struct ota_sms_part *enc; /* encoded parts waiting for the bearer; NULL once handed */
    uint8_t pid, dcs;
    /* send queue (doubly linked): staged (dispatch not yet committed) or ready */
    struct eng_atask *sq_prev, *sq_next;
    int sq;                   /* 0 none, 1 staged list, 2 send list */
    enum task_reason por_bad; /* last bad PoR seen (timeout reason), NONE */
    enum eng_wait wait;
    int64_t wait_until_ms;
    ev_timer timer;
    struct eng *e;
    /*
     * The stored params and result, when known (the final hook's view is
     * then built without reading the store): params up to ENG_PARAMS_KEEP
     * octets kept from the dispatch's read, the result followed through
     * every write. Not known after a restart (read from the store then).
     */
    char *params, *result; /* owned; NULL = none stored */
    bool params_known, result_known;
    /*
     * Row not written yet (an active -> active transition of this batch):
     * written once, just before the commit or before a read of task rows,
     * so several transitions of one task in a batch cost one row write.
     * reason / reason_text / updated_ms are those of that transition.
     */
    bool dirty;
    struct eng_atask *dirty_prev, *dirty_next;
    enum task_reason reason;
    char reason_text[STORE_REASON_TEXT_MAX];
    int64_t updated_ms;
};

#define ENG_PARAMS_KEEP 512

/* ---- jobs ------------------------------------------------------------------------------ */

struct eng_range {
    int64_t lo, hi; /* task ids lo..hi (inclusive) created by one expansion */
};

struct eng_job {
    struct store_job j; /* params owned */
    uint64_t total;     /* LIST: members; SEQUENCE: steps; FILTER: known once expanded */
    uint64_t open;      /* created tasks not final */
    struct eng_range *ranges;
    size_t n_ranges, cap_ranges;
    int64_t first_task;       /* SEQUENCE: task id of step 0 */
    int64_t failed_step_task; /* SEQUENCE: the step that failed first, 0 = none */
    bool busy;                /* cancelling / creating: no cascade, no free */
    struct eng_job *next;
};

/* ---- post-commit actions ----------------------------------------------------------------- */

struct eng_accept {
    eng_accept_cb cb;
    void *arg;
    int64_t id;
};

struct eng_vec_accept {
    struct eng_accept *v;
    size_t n, cap;
};

struct eng_vec_id {
    int64_t *v;
    size_t n, cap;
};

/* A final task's view taken from memory at its transition (pointers into the record). */
struct eng_finrec {
    struct eng_task_view v;
    char seid[STORE_SEID_MAX + 1];
    char msisdn[STORE_MSISDN_MAX + 1];
    char reason_text[STORE_REASON_TEXT_MAX];
    char *params, *result; /* owned */
};

/* A final hook to call: from rec, or (rec NULL) from the store's row. */
struct eng_fin {
    int64_t id;
    struct eng_finrec *rec;
};

struct eng_vec_fin {
    struct eng_fin *v;
    size_t n, cap;
};

/* ---- the engine -------------------------------------------------------------------------- */

struct eng {
    struct ev_loop *loop;
    struct eng_conf conf;
    char db_path[4096];
    struct eng_hooks hooks;
    struct eng_bearer_ops ops;
    bool have_ops;
    struct bearer *bearer;
    struct store *st;
    struct sched *sc;
    struct ota_crypto *cx;
    enum eng_run_state run;
    int stop_rc;

    int64_t next_task_id, next_job_id;

    struct eng_map by_id;     /* task id (8 octets) -> atask */
    struct eng_map by_msgid;  /* canonical msg id -> atask, aux = part index */
    struct eng_map by_msisdn; /* MSISDN -> atask (several) */
    struct eng_map by_serial; /* push serial (16) -> atask */
    /*
     * Serials of push attempts that ended (serial -> task id, aux = pulled):
     * a pull naming one learns -ETIMEDOUT / -EALREADY rather than -ENOENT.
     * A ring of the last ENG_OLD_SERIALS, in memory only.
     */
    struct eng_map old_serial;
    uint8_t (*old_ring)[16];
    size_t old_head, old_n;
    size_t n_active;

    struct eng_job *jobs; /* open jobs */

    /* send queue: staged (not committed yet) and committed */
    struct eng_atask *staged_head, *staged_tail;
    struct eng_atask *send_head, *send_tail;
    struct eng_atask *dirty_head; /* active tasks whose row is not written yet */
    size_t waiting_parts;         /* parts in both lists not yet handed */
    bool bearer_full;             /* ops.submit said -EAGAIN; eng_on_ready resumes */
    /*
     * Standalone urgent tasks (TASK_PRIO_MAX: anti-theft) noted when queued;
     * ids that left the queue are dropped lazily (eng_dispatch.c). They may
     * be dispatched past the pre-built backlog bound.
     */
    struct eng_vec_id urgent;

    /* post-commit actions: pending (this batch) and ready (committed) */
    struct eng_vec_accept acc_pending, acc_ready;
    struct eng_vec_fin fin_pending, fin_ready;
    bool acks_pending, acks_ready;

    ev_prepare prep;
    ev_timer wake;
    /* commit coalescing: fires when commit_interval_ms after the last commit has passed */
    ev_timer ctimer;
    double last_commit_t; /* ev_time() when the last commit began */
    bool commit_due;      /* ctimer fired: the next turn commits whatever the clock says */
    unsigned acks_held;   /* reports in the open batch whose network ack the bearer holds */
    ev_idle kick;
    bool in_turn;

    struct eng_stats stats;

    /* eng_task_get view storage */
    struct store_task view_row;
    struct store_se view_se;
};

/* engine.c */
int64_t eng_now_ms(const struct eng *e);
void eng_log(struct eng *e, int level, const char *fmt, ...) OTA_PRINTF(3, 4);
/* Commit the open batch now; on failure the engine stops. Actions become ready. */
int eng_commit(struct eng *e, struct ota_err *err);
/* Commit early when the batch is big (inside long operations). */
int eng_maybe_commit(struct eng *e);
int eng_vec_id_push(struct eng_vec_id *v, int64_t id);

/* A task being moved. For an active task set a; for a queued one set id/se/job/step/prio/
 * not_before/deadline/attempts/max_attempts as known (row may carry the full row to write). */
struct eng_tr {
    int64_t id, se, job;
    int32_t step;
    enum task_state from;
    struct eng_atask *a;
    struct store_task *row; /* full row to write (dispatch), or NULL */
    const char *result;     /* active task: result JSON to store with the row, NULL = keep */
};

/*
 * The one function that changes a task's state: checks the table (illegal:
 * logged, counted, -EPERM, nothing changes), stages the store write (an
 * active task staying active: marked dirty, written by eng_dirty_flush) and the
 * history event, keeps the scheduler in step (SE released when leaving an
 * active state; requeued with back-off when going back to queued), frees
 * the active record when it leaves the active states, queues the final hook
 * and the job bookkeeping. tr->a is freed when the task leaves the active states.
 */
int eng_transition(struct eng *e, const struct eng_tr *tr, enum task_state to, enum task_reason r,
                   const char *text);
/* Build the store row of an active task (params/result NULL). */
void eng_atask_row(const struct eng_atask *a, struct store_task *row);
/* Write the rows of the active tasks changed in this batch (before a commit, before reads). */
int eng_dirty_flush(struct eng *e);
/* Stage the row of an active task (no state change: timers, result). */
int eng_atask_save(struct eng *e, struct eng_atask *a, const char *result);
/* Arm the task's wait timer for kind, now + s seconds (0 kind = deadline only). */
void eng_arm_wait(struct eng *e, struct eng_atask *a, enum eng_wait w, unsigned s);
void eng_timer_rearm(struct eng *e, struct eng_atask *a);
struct eng_atask *eng_active_get(const struct eng *e, int64_t id);
int eng_active_add(struct eng *e, struct eng_atask *a);
/* Free an active record that is in no map (NULL is fine). */
void eng_atask_free(struct eng_atask *a);
void eng_sq_append(struct eng *e, struct eng_atask *a, int which);
void eng_sq_remove(struct eng *e, struct eng_atask *a);
/* Remember the serial of a push attempt that ended. */
void eng_serial_retire(struct eng *e, const uint8_t serial[16], int64_t task, bool pulled);
/* Hand committed parts to the bearer. */
void eng_send_pump(struct eng *e);
void eng_stop(struct eng *e, int rc, const struct ota_err *err);

/* eng_dispatch.c */
/* Dispatch up to budget tasks; returns how many went (or were finished at build). */
unsigned eng_dispatch(struct eng *e, unsigned budget, bool *more);
int eng_scp80_params_check(const char *params, uint8_t tar[3], uint8_t *script, size_t cap,
                           size_t *len, struct ota_err *err);
/* As eng_scp80_params_check; strict false ignores keys other than tar and script. */
int eng_scp80_params_read(const char *params, bool strict, uint8_t tar[3], uint8_t *script,
                          size_t cap, size_t *len, struct ota_err *err);
/* A task was queued (sched_add): remember it when it is a standalone urgent one. */
void eng_urgent_note(struct eng *e, const struct sched_item *it);
int eng_hex_decode(const char *h, uint8_t *out, size_t cap, size_t *len);
void eng_hex_encode(const uint8_t *p, size_t len, char *out);

/* eng_recon.c */
void eng_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
/* Retry (when attempts remain and retry allowed) or fail with r. */
int eng_retry_or_fail(struct eng *e, struct eng_atask *a, enum task_reason r, const char *text);

/* eng_job.c */
struct eng_job *eng_job_find(struct eng *e, int64_t id);
int eng_jobs_rebuild(struct eng *e, struct ota_err *err);
/* A task was created for job (counted open) / reached a final state. */
void eng_job_task_created(struct eng *e, int64_t job, int64_t task);
void eng_job_task_final(struct eng *e, int64_t job, int32_t step, int64_t task, enum task_state to);
/* Expand running jobs that are short of queued tasks; returns tasks created. */
size_t eng_jobs_topup(struct eng *e);
/* Whether the job's tasks must not go (cancelled job). */
bool eng_job_cancelled(struct eng *e, int64_t job);
void eng_jobs_free(struct eng *e);

/* engine.c: creating tasks (submit and jobs) */
void eng_row_from_spec(struct eng *e, const struct eng_task_spec *s, int64_t se, int64_t job,
                       int32_t step, struct store_task *row);
/* Insert row (id assigned: e->next_task_id) and queue it. On error the engine is stopped. */
int eng_task_create(struct eng *e, struct store_task *row, struct ota_err *err);
int eng_accept_add(struct eng *e, eng_accept_cb cb, void *arg, int64_t id);
/* Validate a task spec (need_seid false for job templates). Nothing staged. */
int eng_check_spec(struct eng *e, const struct eng_task_spec *s, bool need_seid,
                   struct ota_err *err);
