/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The durable store of the task engine, on SQLite 3 in WAL mode: SEs and
 * their SCP80 counters, tasks, the message ids of their SMS parts, jobs,
 * the task state history and the log of reports that matched nothing.
 *
 * Group commit: every write function stages its change in one open write
 * transaction (begun by the first write after a commit); nothing is durable
 * until store_commit() returns 0. The engine commits once per loop turn or
 * batch and only then acknowledges what the batch holds (a submitter's
 * reply, a packet handed to the bearer, a DLR/MO ack to the network). Reads
 * see the staged writes (same connection).
 *
 * durable = true: PRAGMA synchronous=FULL, so a commit is fsync'ed (power
 * loss safe); false: NORMAL (survives kill -9, not power loss).
 *
 * Schema versions: PRAGMA user_version; store_open() applies every missing
 * migration in one transaction, and refuses a database written by a newer
 * otagw (OTA_ERR_VERSION) or one that is not an otagw store. Every
 * statement is prepared once at open.
 *
 * Errors: SQLite's code becomes a negative errno (SQLITE_BUSY/LOCKED ->
 * -EBUSY, SQLITE_FULL -> -ENOSPC, SQLITE_CONSTRAINT -> -EEXIST,
 * SQLITE_NOMEM -> -ENOMEM, anything else -> -EIO) with SQLite's message and
 * the operation in err->msg. A failed store_commit() rolls the whole batch
 * back: the store is as it was at the previous commit. err->code: -EEXIST
 * OTA_ERR_DUPLICATE, -ENOENT OTA_ERR_MISSING, -ENOSPC/-ENOMEM OTA_ERR_LIMIT,
 * -EBUSY/-EIO OTA_ERR_STATE; bad arguments -EINVAL with OTA_ERR_ARG (text,
 * ids, NULL) or OTA_ERR_VALUE (enum out of range).
 *
 * Walkers (store_tasks_open, store_events, ...) may call other store
 * functions from their callback, but not the same walker again.
 *
 * Times are ms since the epoch (int64). Text fields are NUL-terminated; the
 * fixed arrays below are the limits the API enforces (-EINVAL beyond).
 * Prefix store_. One connection, one thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/ota_common.h"
#include "queue/task.h"

#define STORE_SCHEMA_VERSION 5
#define STORE_SEID_MAX 64   /* SEID text (hex or printable), without NUL */
#define STORE_MSISDN_MAX 21 /* digits */
#define STORE_BATCH_MAX 32  /* SE batch label */
#define STORE_MSGID_MAX 64  /* canonical bearer message id, NUL included */
#define STORE_CURSOR_MAX 80 /* job expansion cursor text */
#define STORE_REASON_TEXT_MAX 160
#define STORE_IDEM_KEY_MAX 128 /* Idempotency-Key text, without NUL */
#define STORE_CB_URL_MAX 2048  /* callback URL text, without NUL */

struct store;

struct store_opts {
    const char *path; /* database file; created when missing */
    bool durable;     /* fsync on commit (synchronous=FULL) */
    int cache_kb;     /* page cache; 0 = 16384 KiB */
    int busy_ms;      /* busy timeout; 0 = 5000 */
};

/*
 * 0, -EINVAL (bad opts; not an otagw store: OTA_ERR_VALUE; newer schema:
 * OTA_ERR_VERSION), -EBUSY (another writer held the lock past busy_ms while
 * migrating), -EIO, -ENOMEM. A refused file is left as it was.
 */
int store_open(const struct store_opts *o, struct store **out, struct ota_err *err) OTA_MUST_CHECK;

/* Rolls back anything not committed, then closes. NULL is fine. */
void store_close(struct store *s);

/* The schema version of the open database (STORE_SCHEMA_VERSION after open). */
int store_schema_version(struct store *s);

/*
 * Commit the open batch (no-op, 0, when none). On failure the batch is rolled back.
 *
 * A staged write that fails with -EBUSY, -ENOSPC, -ENOMEM or -EIO (SQLite could
 * not write) rolls the whole batch back too, as a failed commit does:
 * store_staged() is then 0 and the store is as of the previous commit. A write
 * refused for its input (-EINVAL, -EEXIST, -ENOENT, -ERANGE) changes nothing
 * and leaves the batch as it was.
 */
int store_commit(struct store *s, struct ota_err *err) OTA_MUST_CHECK;

/* Roll the open batch back (no-op when none). */
void store_rollback(struct store *s);

/* Writes staged since the last commit (0 = no open batch). */
size_t store_staged(const struct store *s);

/* Commits done and their total time, for benchmarks and metrics. */
void store_commit_stats(const struct store *s, uint64_t *commits, double *total_s);

/*
 * Tests only: run sql (one or more statements) on the store's connection,
 * e.g. "PRAGMA max_page_count = 20" to provoke SQLITE_FULL or an UPDATE to
 * set up a state. 0 or the mapped negative errno. Not for production code.
 */
int store_test_exec(struct store *s, const char *sql) OTA_MUST_CHECK;

/* ---- SEs ------------------------------------------------------------------------------ */

struct store_se {
    int64_t id; /* row id, > 0 */
    char seid[STORE_SEID_MAX + 1];
    char msisdn[STORE_MSISDN_MAX + 1]; /* "" = none bound */
    char batch[STORE_BATCH_MAX + 1];   /* "" = none */
    int64_t unbound_ms;                /* 0 = bound; else when it was unbound (schema 4) */
};

/*
 * Register an SE (staged). seid 1..64 printable ASCII, msisdn 0..21 digits,
 * batch 0..32 printable. *id gets the new row id. -EEXIST when the SEID is
 * registered already (*id then holds its row id; nothing is staged), -EINVAL.
 * A write refused this way (or with -ENOENT / -ERANGE) as the first write of
 * a batch releases the write lock again: store_staged() stays 0.
 */
int store_se_put(struct store *s, const char *seid, const char *msisdn, const char *batch,
                 int64_t *id, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Change an SE's MSISDN (staged; the binding state stays as it is: see
 * store_se_unbind / store_se_bind for the rules of spec 5.5.2). -ENOENT, -EINVAL.
 */
int store_se_set_msisdn(struct store *s, int64_t id, const char *msisdn,
                        struct ota_err *err) OTA_MUST_CHECK;

/* By row id / by SEID. 0 or -ENOENT. */
int store_se_get(struct store *s, int64_t id, struct store_se *out,
                 struct ota_err *err) OTA_MUST_CHECK;
int store_se_find(struct store *s, const char *seid, struct store_se *out,
                  struct ota_err *err) OTA_MUST_CHECK;

/*
 * SEs bound to an MSISDN (spec 5.5.2: an MSISDN may hold several SEs), up to
 * cap in id order; *n gets how many exist. Served by an index.
 */
int store_se_by_msisdn(struct store *s, const char *msisdn, struct store_se *out, size_t cap,
                       size_t *n, struct ota_err *err) OTA_MUST_CHECK;

/* SEs registered. */
int store_se_count(struct store *s, uint64_t *n, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Binding (spec 5.5.2, schema 4; staged). unbind: the SE keeps its row, its
 * model and its tasks, loses its MSISDN and may get no new task
 * (store_se_admit) until bound again; now_ms > 0 is recorded as unbound_ms.
 * bind: MSISDN 1..21 digits, the SE bound again. -ENOENT, -EINVAL.
 */
int store_se_unbind(struct store *s, int64_t id, int64_t now_ms,
                    struct ota_err *err) OTA_MUST_CHECK;
int store_se_bind(struct store *s, int64_t id, const char *msisdn,
                  struct ota_err *err) OTA_MUST_CHECK;

/*
 * May se (as read by store_se_get / _find) get a new task? 0; -ENOLINK
 * (OTA_ERR_STATE) when it is unbound; -EACCES (OTA_ERR_STATE) when its SEID
 * or its MSISDN is on the loss list (the message names the entry).
 */
int store_se_admit(struct store *s, const struct store_se *se, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Which SEs a job covers: a SEID range (lexicographic, inclusive; NULL = open) and/or a batch.
 * Only SEs that may get tasks are scanned (bound, not loss-listed: spec 5.5.2).
 */
struct store_se_filter {
    const char *seid_lo, *seid_hi;
    const char *batch; /* NULL = any */
};

/*
 * Up to max SEs matching f with SEID > after (after "" = from the start),
 * in SEID order; *n gets how many were written to out. Served by an index:
 * the cost is O(max), not O(SEs registered).
 */
int store_se_scan(struct store *s, const struct store_se_filter *f, const char *after, size_t max,
                  struct store_se *out, size_t *n, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Reserve the next SCP80 counter of (se, kvn) (staged): the stored value
 * plus one (the first is 1), written back in the batch. The engine commits
 * before the packet leaves, so no counter is ever used twice. -ERANGE
 * (OTA_ERR_COUNTER) at 2^40 - 1: 0xFFFFFFFFFF is still handed out, the
 * call after it fails. Counters are not tied to a registered SE (se > 0).
 */
int store_cntr_next(struct store *s, int64_t se, uint8_t kvn, uint64_t *cntr,
                    struct ota_err *err) OTA_MUST_CHECK;

/* The last reserved counter of (se, kvn), 0 when none. */
int store_cntr_get(struct store *s, int64_t se, uint8_t kvn, uint64_t *cntr,
                   struct ota_err *err) OTA_MUST_CHECK;

/* ---- tasks ---------------------------------------------------------------------------- */

struct store_task {
    int64_t id;   /* > 0: chosen by the engine (max id + 1), not by SQLite */
    int64_t job;  /* 0 = standalone */
    int32_t step; /* composite job step (0-based), 0 otherwise */
    int64_t se;
    enum task_op op;
    enum task_channel channel;
    uint8_t prio;
    uint8_t attempts, max_attempts;
    enum task_state state;
    enum task_reason reason;
    char reason_text[STORE_REASON_TEXT_MAX]; /* detail for humans ("PoR status 0a") */
    int64_t created_ms, updated_ms;
    int64_t not_before_ms, deadline_ms; /* deadline 0 = none */
    int64_t wait_until_ms;              /* the running wait's timer (active states), 0 = none */
    uint64_t cntr;                      /* SCP80 counter of the current attempt, 0 = none */
    uint8_t kvn;                        /* its key version */
    uint8_t tar[3];                     /* SCP80 TAR of the current attempt */
    bool has_serial;
    uint8_t serial[16]; /* push serial of the current attempt */
    uint8_t n_parts;    /* SMS parts of the current attempt */
    char *params;       /* operation parameters, JSON text; owned (malloc) in results of get */
    char *result;       /* result JSON (status words, R-APDUs) or NULL; owned likewise */
};

/* Free params/result of a struct filled by store_task_get (NULL fields are fine). */
void store_task_fini(struct store_task *t);

/* Insert (staged). params/result are copied. -EEXIST (id taken), -EINVAL. */
int store_task_insert(struct store *s, const struct store_task *t,
                      struct ota_err *err) OTA_MUST_CHECK;

/*
 * Write every mutable field (staged): state, reason, reason_text, attempts,
 * updated, not_before, wait_until, cntr, kvn, tar, serial, n_parts, result
 * (NULL leaves the stored result). -ENOENT when no such task.
 */
int store_task_update(struct store *s, const struct store_task *t,
                      struct ota_err *err) OTA_MUST_CHECK;

/* Only state, reason, reason_text, updated (staged; cancel and expiry of queued tasks). */
int store_task_set_state(struct store *s, int64_t id, enum task_state st, enum task_reason r,
                         const char *reason_text, int64_t now_ms,
                         struct ota_err *err) OTA_MUST_CHECK;

/* The whole row; params and result are malloc'ed (store_task_fini). -ENOENT. */
int store_task_get(struct store *s, int64_t id, struct store_task *out,
                   struct ota_err *err) OTA_MUST_CHECK;

/* Largest task id in use (0 when none). */
int store_task_max_id(struct store *s, int64_t *id, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Call cb for every task not in a final state, in id order (start-up
 * rebuild), params and result left NULL. cb returns 0 to go on, negative
 * to stop (that value is returned).
 */
int store_tasks_open(struct store *s, int (*cb)(void *arg, const struct store_task *t), void *arg,
                     struct ota_err *err) OTA_MUST_CHECK;

/* Every task of an SE, newest first, up to max (params/result NULL). */
int store_tasks_of_se(struct store *s, int64_t se, size_t max,
                      int (*cb)(void *arg, const struct store_task *t), void *arg,
                      struct ota_err *err) OTA_MUST_CHECK;

/* Which tasks store_tasks_list returns; zero fields are open. */
struct store_task_filter {
    int64_t job;                      /* 0 = any */
    int64_t se;                       /* SE row id, 0 = any */
    int state;                        /* enum task_state, -1 = any */
    int64_t created_from, created_to; /* inclusive ms; 0 = open */
    int64_t before_id;                /* only ids below it (paging); 0 = from the newest */
};

/*
 * Tasks matching f, newest (highest id) first, up to max (params/result
 * NULL). Served by the job index when f->job is set, else the SE index when
 * f->se is set, else the primary key: state and time filters are applied
 * to the rows walked, so their cost grows with the rows they skip.
 */
int store_tasks_list(struct store *s, const struct store_task_filter *f, size_t max,
                     int (*cb)(void *arg, const struct store_task *t), void *arg,
                     struct ota_err *err) OTA_MUST_CHECK;

/* Tasks per state, overall (job 0 = all tasks) or of one job. counts[TASK_STATE__COUNT]. */
int store_task_counts(struct store *s, int64_t job, uint64_t counts[TASK_STATE__COUNT],
                      struct ota_err *err) OTA_MUST_CHECK;

/* Failed/expired/cancelled tasks per reason (spec 5.8.6 statistics). counts[TASK_REASON__COUNT]. */
int store_reason_counts(struct store *s, uint64_t counts[TASK_REASON__COUNT],
                        struct ota_err *err) OTA_MUST_CHECK;

/* ---- SMS parts: message ids and their delivery reports ------------------------------- */

enum store_dlr {
    STORE_DLR_NONE = 0, /* no report yet */
    STORE_DLR_DELIVERED = 1,
    STORE_DLR_FAILED = 2, /* failed, expired, rejected, unknown: see the task's reason */
};

/*
 * Record part (1-based) of the task's current attempt with the message id
 * the network gave it (staged; replaces the row of an earlier attempt, and
 * resets its report state to NONE). msg_id 1..STORE_MSGID_MAX-1 printable.
 * Rows of parts beyond the current attempt's n_parts (an earlier attempt
 * had more parts) stay: store_parts_of callers skip part > n_parts.
 */
int store_part_put(struct store *s, int64_t task, uint8_t part, const char *msg_id,
                   struct ota_err *err) OTA_MUST_CHECK;

/* Set a part's report state (staged). -ENOENT. */
int store_part_dlr(struct store *s, int64_t task, uint8_t part, enum store_dlr dlr,
                   struct ota_err *err) OTA_MUST_CHECK;

/*
 * Which task/part a message id belongs to (also for late reports of final
 * tasks); the newest task when an id was reused by the network. dlr may be
 * NULL. -ENOENT.
 */
int store_part_find(struct store *s, const char *msg_id, int64_t *task, uint8_t *part,
                    enum store_dlr *dlr, struct ota_err *err) OTA_MUST_CHECK;

/* Parts of a task in part order (rebuild of the correlation maps). */
int store_parts_of(struct store *s, int64_t task,
                   int (*cb)(void *arg, uint8_t part, const char *msg_id, enum store_dlr dlr),
                   void *arg, struct ota_err *err) OTA_MUST_CHECK;

/* ---- history and reports ------------------------------------------------------------- */

/* Append a state change to the task's history (staged). */
int store_event(struct store *s, int64_t task, int64_t se, enum task_state from, enum task_state to,
                enum task_reason reason, int64_t t_ms, const char *detail,
                struct ota_err *err) OTA_MUST_CHECK;

/*
 * Walk the history in order (the crash test checks single-link and
 * counters with it). cb's arguments are borrowed.
 */
int store_events(struct store *s,
                 int (*cb)(void *arg, int64_t seq, int64_t task, int64_t se, enum task_state from,
                           enum task_state to, enum task_reason reason, int64_t t_ms),
                 void *arg, struct ota_err *err) OTA_MUST_CHECK;

/*
 * The history of one task in order, as store_events (staged events
 * included), through the task_event_task index: cheap at any history size.
 * 0 also for a task without events; cb's negative return stops the walk and
 * is returned; -EINVAL (NULL cb), -EIO (also a stored value out of range).
 */
int store_task_events(struct store *s, int64_t task,
                      int (*cb)(void *arg, int64_t seq, int64_t task, int64_t se,
                                enum task_state from, enum task_state to, enum task_reason reason,
                                int64_t t_ms),
                      void *arg, struct ota_err *err) OTA_MUST_CHECK;

enum store_report_kind {
    STORE_REP_SUBMIT = 0, /* a submit result */
    STORE_REP_DLR = 1,
    STORE_REP_POR = 2,
    STORE_REP_PULL = 3,
    STORE_REP__COUNT
};

enum store_report_disp {
    STORE_DISP_LATE = 0,       /* for a task that is final or moved on (recorded only) */
    STORE_DISP_DUPLICATE = 1,  /* seen already (at-least-once networks) */
    STORE_DISP_UNKNOWN = 2,    /* matches no task */
    STORE_DISP_MISMATCHED = 3, /* names a task but does not fit it (TAR, counter, CC) */
    STORE_DISP__COUNT
};

/* Log a report that changed nothing (staged). task 0 = none. */
int store_report(struct store *s, enum store_report_kind kind, enum store_report_disp disp,
                 int64_t task, int64_t t_ms, const char *detail,
                 struct ota_err *err) OTA_MUST_CHECK;

/* Counts of that log: counts[kind][disp]. */
int store_report_counts(struct store *s, uint64_t counts[STORE_REP__COUNT][STORE_DISP__COUNT],
                        struct ota_err *err) OTA_MUST_CHECK;

/* ---- jobs ----------------------------------------------------------------------------- */

enum store_job_kind {
    STORE_JOB_LIST = 0,     /* a batch over listed SEs (store_job_member_add) */
    STORE_JOB_FILTER = 1,   /* a batch over registered SEs matching a filter (range / batch) */
    STORE_JOB_SEQUENCE = 2, /* composite steps on one SE (tasks created at once) */
};

enum store_job_state {
    STORE_JOB_RUNNING = 0,
    STORE_JOB_PAUSED = 1,
    STORE_JOB_CANCELLED = 2,
    STORE_JOB_DONE = 3, /* expanded and every task final */
};

struct store_job {
    int64_t id; /* > 0, chosen by the engine */
    enum store_job_kind kind;
    enum store_job_state state;
    uint8_t prio, max_attempts;
    enum task_op op;
    enum task_channel channel;
    double rate_per_s; /* 0 = none */
    int64_t created_ms, not_before_ms, deadline_ms;
    char seid_lo[STORE_SEID_MAX + 1], seid_hi[STORE_SEID_MAX + 1]; /* "" = open */
    char batch[STORE_BATCH_MAX + 1];                               /* "" = any */
    char cursor[STORE_CURSOR_MAX]; /* expansion cursor: last SEID / member index done */
    bool expanded;                 /* every task created */
    uint64_t n_expanded;           /* tasks created so far */
    char *params;                  /* JSON for every task of a batch; owned in get results */
};

void store_job_fini(struct store_job *j);

int store_job_insert(struct store *s, const struct store_job *j,
                     struct ota_err *err) OTA_MUST_CHECK;

/* Writes state, rate, cursor, expanded, n_expanded (staged). -ENOENT. */
int store_job_update(struct store *s, const struct store_job *j,
                     struct ota_err *err) OTA_MUST_CHECK;

int store_job_get(struct store *s, int64_t id, struct store_job *out,
                  struct ota_err *err) OTA_MUST_CHECK;

int store_job_max_id(struct store *s, int64_t *id, struct ota_err *err) OTA_MUST_CHECK;

/* Every job RUNNING or PAUSED, in id order (params NULL). */
int store_jobs_open(struct store *s, int (*cb)(void *arg, const struct store_job *j), void *arg,
                    struct ota_err *err) OTA_MUST_CHECK;

/* List jobs: member idx (0-based) is SE se (staged). */
int store_job_member_add(struct store *s, int64_t job, uint64_t idx, int64_t se,
                         struct ota_err *err) OTA_MUST_CHECK;

/* Up to max members with idx >= from, in idx order: ses[k] is member from+k's SE. */
int store_job_members(struct store *s, int64_t job, uint64_t from, size_t max, int64_t *ses,
                      size_t *n, struct ota_err *err) OTA_MUST_CHECK;

/* ---- idempotency keys (schema 2) -------------------------------------------------------- */

/*
 * The business API's Idempotency-Key records: the key, a hash of the
 * request it was first used with, and the answer given (status + body), so
 * a retried submit gets the same answer, also after a restart. Staged like
 * every write: put it in the batch of the task / job it answers for, so both
 * become durable together or not at all. Kept until store_idem_prune.
 */

/*
 * Stage key (1..STORE_IDEM_KEY_MAX printable ASCII) -> hash, status
 * (100..599), response (text, copied). -EEXIST (OTA_ERR_DUPLICATE) when the
 * key is stored already (staged or committed; nothing changes), -EINVAL.
 */
int store_idem_put(struct store *s, const char *key, const uint8_t hash[32], int status,
                   const char *response, int64_t t_ms, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Look key up (sees staged records). hash gets the stored hash, *status
 * the status, *response a malloc'ed copy of the body (free it), t_ms (may
 * be NULL) when it was stored. -ENOENT (OTA_ERR_MISSING) when unknown.
 */
int store_idem_get(struct store *s, const char *key, uint8_t hash[32], int *status, char **response,
                   int64_t *t_ms, struct ota_err *err) OTA_MUST_CHECK;

/* Delete records stored before before_ms (staged); *n (may be NULL) gets how many. */
int store_idem_prune(struct store *s, int64_t before_ms, uint64_t *n,
                     struct ota_err *err) OTA_MUST_CHECK;

/* ---- result callback outbox (schema 3) ---------------------------------------------------- */

/*
 * One row per task whose result is POSTed to a business platform
 * (gateway/callbacks.c): the URL, the body as sent, the delivery state and
 * the retry schedule. Staged like every write; the truth of what remains
 * to be delivered across restarts.
 */
enum store_cb_state {
    STORE_CB_PENDING = 0,   /* to be (re)sent at next_at */
    STORE_CB_DONE = 1,      /* acknowledged with a 2xx */
    STORE_CB_ABANDONED = 2, /* given up (too old) */
};

struct store_cb {
    int64_t id, task;
    enum store_cb_state state;
    uint32_t attempts; /* POSTs tried so far */
    int64_t next_at_ms, created_ms;
    char *url, *body; /* malloc'ed in get results (store_cb_fini); borrowed in walkers */
};

void store_cb_fini(struct store_cb *c);

/*
 * Stage a pending row for task (due at once, created now_ms). url
 * 1..STORE_CB_URL_MAX printable, body JSON text (copied). *id (may be NULL)
 * gets the row id. -EEXIST when the task has a row already, -EINVAL.
 */
int store_cb_put(struct store *s, int64_t task, const char *url, const char *body, int64_t now_ms,
                 int64_t *id, struct ota_err *err) OTA_MUST_CHECK;

/* Write state, attempts, next_at of row id (staged). -ENOENT, -EINVAL. */
int store_cb_set(struct store *s, int64_t id, enum store_cb_state st, uint32_t attempts,
                 int64_t next_at_ms, struct ota_err *err) OTA_MUST_CHECK;

/* The row of a task (url/body malloc'ed: store_cb_fini). -ENOENT. */
int store_cb_get_task(struct store *s, int64_t task, struct store_cb *out,
                      struct ota_err *err) OTA_MUST_CHECK;

/*
 * Pending rows with next_at <= now_ms, earliest first, up to max (index on
 * (state, next_at)). cb's row is borrowed for the call; cb returns 0 to go
 * on, negative to stop (returned).
 */
int store_cb_due(struct store *s, int64_t now_ms, size_t max,
                 int (*cb)(void *arg, const struct store_cb *c), void *arg,
                 struct ota_err *err) OTA_MUST_CHECK;

/* Rows still to be delivered (state pending): the outbox depth, for metrics. */
int store_cb_pending(struct store *s, uint64_t *n, struct ota_err *err) OTA_MUST_CHECK;

/* The newest row's created time (0 when the outbox is empty). */
int store_cb_watermark(struct store *s, int64_t *ms, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Final tasks updated at or after since_ms whose params name a
 * "callback_url" and that have no outbox row (their row was staged after
 * the commit that made them final, and lost in a crash). Walks the final
 * tasks' update-time index from since_ms. cb may stage rows.
 */
int store_cb_unstaged(struct store *s, int64_t since_ms, int (*cb)(void *arg, int64_t task),
                      void *arg, struct ota_err *err) OTA_MUST_CHECK;

/* ---- the loss list (schema 4, spec 5.5.2) ---------------------------------------------- */

/*
 * SEs reported lost, by SEID or by MSISDN (every SE bound to it). An SE on
 * the list cannot be registered, bound or given new tasks; its tasks
 * already queued stay (cancel them through the task API).
 */
enum store_loss_kind {
    STORE_LOSS_SEID = 0,
    STORE_LOSS_MSISDN = 1,
};

struct store_loss {
    int64_t id;
    enum store_loss_kind kind;
    char value[STORE_SEID_MAX + 1]; /* the SEID or the MSISDN */
    char reason[STORE_REASON_TEXT_MAX];
    int64_t created_ms;
};

/*
 * Add an entry (staged). value: a SEID (1..64 printable) or an MSISDN
 * (1..21 digits) per kind; reason 0..159 printable. *id gets its id.
 * -EEXIST when the same (kind, value) is listed (*id then holds that
 * entry's id; nothing staged), -EINVAL.
 */
int store_loss_put(struct store *s, enum store_loss_kind kind, const char *value,
                   const char *reason, int64_t now_ms, int64_t *id,
                   struct ota_err *err) OTA_MUST_CHECK;

/* Remove entry id (staged). -ENOENT. */
int store_loss_del(struct store *s, int64_t id, struct ota_err *err) OTA_MUST_CHECK;

/* Entry id. -ENOENT. */
int store_loss_get(struct store *s, int64_t id, struct store_loss *out,
                   struct ota_err *err) OTA_MUST_CHECK;

/* Up to max entries with id > after_id, in id order; cb returns 0 to go on, < 0 to stop. */
int store_loss_list(struct store *s, int64_t after_id, size_t max,
                    int (*cb)(void *arg, const struct store_loss *l), void *arg,
                    struct ota_err *err) OTA_MUST_CHECK;

/*
 * The oldest entry naming seid or msisdn (either may be NULL or ""). 0 with
 * *out (may be NULL) filled, -ENOENT when neither is listed.
 */
int store_loss_match(struct store *s, const char *seid, const char *msisdn, struct store_loss *out,
                     struct ota_err *err) OTA_MUST_CHECK;

/* ---- the per-SE platform model (schema 4, spec 5.8.7) ----------------------------------- */

/*
 * The SE's application / SD / space model as JSON text (gateway/platform.h
 * plat_model_to_json); the store only keeps the text. put replaces it
 * (staged); get gives a malloc'ed copy (free it) and when it was written
 * (updated_ms may be NULL). -ENOENT when none is stored, -EINVAL.
 */
int store_se_model_put(struct store *s, int64_t se, const char *json, int64_t now_ms,
                       struct ota_err *err) OTA_MUST_CHECK;
int store_se_model_get(struct store *s, int64_t se, char **json, int64_t *updated_ms,
                       struct ota_err *err) OTA_MUST_CHECK;
