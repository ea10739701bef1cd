/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The task engine: the one object the daemon (and bench-engine, and the
 * crash test's runner) drives. It owns the store (queue/store.h) and the
 * dispatch order (queue/sched.h), runs on the caller's libev loop, turns due
 * tasks into SMS parts (ota/: push SMS, SCP80 packets, concatenation) for a
 * bearer, and reconciles what comes back (submit results, DLRs, PoRs,
 * wallet pulls) into task outcomes.
 *
 * Durability (group commit): every change is staged in the store's open
 * batch; the engine commits once per loop turn (ev_prepare), at most once
 * per commit_interval_ms (later turns' writes join the batch), or when
 * commit_max_staged writes are staged, and only after that commit does it
 *   - tell a submitter its task / job is accepted (the accept callback),
 *   - hand a dispatched task's parts to the bearer (its SCP80 counter is on
 *     disk before the packet leaves),
 *   - release the bearer's deferred acknowledgements of DLRs and MOs
 *     (bearer_release_acks), so a report is acked to the network only once
 *     its effect is on disk,
 *   - call the final hook for tasks that reached a final state.
 * A failed commit stops the engine (ENG_STOPPED_ERROR): nothing of that
 * batch was acknowledged, the store is as of the previous commit, and a
 * restart rebuilds everything from it (crash-only: the same path as kill -9).
 *
 * Restart: eng_open() rebuilds the scheduler (queued tasks), the active SE
 * set, the correlation maps (message ids, PoR keys, push serials) and the
 * wait timers from the store. Tasks that were dispatched but whose parts
 * may not all have been accepted are retried with a new counter (the
 * attempt is not counted when the network accepted none of its parts);
 * DLRs and PoRs of the old attempt that come later are recorded as late.
 *
 * Reports: every report is either applied to exactly one task or logged
 * (store_report) as late / duplicate / unknown / mismatched and counted; it
 * never crashes or corrupts a task. A PoR is trusted only when its checksum
 * verifies with the SE's keys, its TAR and counter match the packet sent.
 *
 * Prefix eng_. One loop thread. Strings passed in are copied.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ota/ota.h"
#include "queue/store.h"
#include "queue/task.h"
#include "smpp/bearer.h"

struct eng;

/* What the engine needs from a bearer; eng_use_bearer() fills it for a real one. */
struct eng_bearer_ops {
    /* bearer_submit(): 0, -EAGAIN (back-pressure: wait for eng_on_ready), other < 0 */
    int (*submit)(void *arg, const struct bearer_msg *m, struct ota_err *err);
    /* Send the DLR/MO acknowledgements deferred so far (their effect is committed). */
    void (*release_acks)(void *arg);
    /* Forget the deferred acknowledgements (their batch failed): the network redelivers. */
    void (*discard_acks)(void *arg);
    void *arg;
};

/* SCP80 keys and security parameters of one SE for one TAR (from the key store). */
struct eng_scp80_keys {
    uint8_t spi[2];   /* e.g. 16 39: CC, cipher, counter higher, PoR always, CC'd + ciphered */
    uint8_t kic, kid; /* coded octets (algorithm + KVN) */
    uint8_t cc_len;   /* AES-CMAC 4 or 8 (0 = 8) */
    struct ota_key kic_key; /* wiped by the engine after use */
    struct ota_key kid_key;
};

/*
 * The minimum SCP80 security of anti-theft tasks (ITU-T X.1127 7.4.1 and
 * figure 3, after TS 22.048; issue #7), which no key set can lower:
 * ciphering, a cryptographic checksum, counter "higher than the last" (SPI
 * b5b4 10, or the stricter 11), PoR always, the PoR itself CC-protected.
 * The KIc / KID octets must name real algorithms of at least 112 bits
 * (3DES two / three keys, AES): implicit and single DES are refused.
 * out gets in with every missing bit forced (a PoR ciphered on request
 * stays so); *weaker (may be NULL) says whether anything had to be forced.
 * 0, or -EPERM (OTA_ERR_KEY: the key set's algorithms cannot give it) /
 * -EINVAL (OTA_ERR_VALUE: undecodable SPI, KIc or KID). out set only on success.
 */
int eng_spi_antitheft(const uint8_t in[2], uint8_t kic, uint8_t kid, uint8_t out[2], bool *weaker,
                      struct ota_err *err) OTA_MUST_CHECK;

struct eng_task_view; /* a final or running task as hooks see it; see below */

/*
 * Hooks into the daemon (all optional except scp80_keys for SCP80 tasks).
 * Called on the loop thread; arguments borrowed for the call.
 */
struct eng_hooks {
    /* Keys for (seid, tar). 0, -ENOENT (task fails no-keys), other < 0 (fails no-keys too). */
    int (*scp80_keys)(void *arg, const char *seid, const uint8_t tar[3], struct eng_scp80_keys *out,
                      struct ota_err *err);
    /*
     * Platform operations on the SCP80 channel (app lock, delete, ...): the
     * remote-APDU script and its TAR for the task. NULL, or -ENOTSUP, fails
     * the task "unsupported"; other errors fail it "build".
     */
    int (*build_script)(void *arg, const struct eng_task_view *t, uint8_t tar[3], uint8_t *script,
                        size_t cap, size_t *len, struct ota_err *err);
    /* A task reached a final state (after its commit). */
    void (*final)(void *arg, const struct eng_task_view *t);
    /*
     * A task that ran (was active) reaches a final state, before the commit
     * that holds it: writes the hook stages into eng_store() become durable
     * in the same batch as the task's outcome (the daemon's per-SE model).
     * params / result are NULL when not known in memory (after a restart):
     * read the task's row then (the store shows the staged state). The hook
     * must not call the engine, except eng_fail_stop when its own staging
     * failed (the engine then stops as on a failed commit).
     */
    void (*final_staged)(void *arg, const struct eng_task_view *t);
    /*
     * A PoR of an SCP80 task verified: its status octet and the additional
     * response data (R-APDUs). Return a task_reason (TASK_R_NONE = done,
     * TASK_R_CARD_SW = a status word failed...). NULL: done when the PoR
     * status is 00 and the last R-APDU's SW is 9000 / 61xx (when present).
     */
    enum task_reason (*por_result)(void *arg, const struct eng_task_view *t, uint8_t status,
                                   const uint8_t *data, size_t len);
    /* Log lines (level as syslog: 3 err, 4 warning, 6 info, 7 debug). NULL = stderr for <= 4. */
    void (*log)(void *arg, int level, const char *msg);
    void *arg;
};

/* A task as hooks and queries see it. Pointers borrowed. */
struct eng_task_view {
    int64_t id, job;
    int32_t step;
    const char *seid;
    const char *msisdn;
    enum task_op op;
    enum task_channel channel;
    enum task_state state;
    enum task_reason reason;
    const char *reason_text;
    uint8_t prio, attempts;
    const char *params; /* JSON */
    const char *result; /* JSON or NULL */
    int64_t created_ms, updated_ms;
};

struct eng_conf {
    const char *db_path;                   /* SQLite file */
    bool durable;                          /* fsync every commit (default true in the daemon) */
    char src_addr[BEARER_ADDR_MAX + 1];    /* source address of MTs ("" = link default) */
    uint16_t push_dst_port, push_src_port; /* wallet port; default 2948 / 2948 */
    bool push_wait_pull;        /* push tasks wait for the wallet pull; false: done on DLR */
    bool want_dlr;              /* ask for delivery reports (default true) */
    unsigned dlr_timeout_s;     /* submitted -> delivered; default 600 */
    unsigned por_timeout_s;     /* -> PoR after the last part's submit result; default 300 */
    unsigned pull_timeout_s;    /* delivered push -> wallet pull; default 600 */
    unsigned session_timeout_s; /* pulled -> eng_task_complete; default 120 */
    uint8_t max_attempts;       /* default per task when the spec gives 0; default 3 */
    unsigned backoff_s;         /* first retry delay, doubled per attempt; default 30 */
    unsigned backoff_max_s;     /* default 3600 */
    unsigned commit_max_staged; /* commit early above this many staged writes; default 4096 */
    /*
     * Commit coalescing: commits start at least this many ms apart (default
     * 2). A loop turn that finds staged writes sooner arms a one-shot timer
     * for the rest of the spacing instead of committing, so the reports of
     * several turns share one fsync. 0 = commit every loop turn. Nothing is
     * acknowledged before its commit either way: coalescing delays accept
     * callbacks, parts to the bearer, DLR/MO acks and final hooks by up to
     * this much. commit_max_staged, eng_flush and eng_close commit at once.
     * At most 1000 (eng_open: -EINVAL above).
     */
    unsigned commit_interval_ms;
    /*
     * ... but commit at once when the batch holds this many reports (DLRs,
     * MOs) whose network ack waits for it (default 8; 0 = no limit). The
     * network sends no more reports once its window is full of unacked
     * ones, so keep this below that window (CMPP commonly 16): above it,
     * every batch would sit idle for the rest of the spacing.
     */
    unsigned commit_max_acks;
    unsigned dispatch_max_turn; /* tasks dispatched per loop turn at most; default 512 */
    unsigned job_chunk;         /* tasks a job expands at a time; default 1000 */
    bool keep_history;          /* store_event per transition (default true) */
};

/* Defaults as documented above (db_path "otagw.db"). */
void eng_conf_defaults(struct eng_conf *c);

/*
 * Open the store, apply migrations, rebuild in-memory state, arm timers on
 * loop (borrowed, must outlive the engine). hooks copied; ops set later
 * with eng_set_bearer / eng_use_bearer before tasks can go. 0, -EINVAL,
 * -EIO, -ENOMEM (err says which and why).
 */
int eng_open(struct ev_loop *loop, const struct eng_conf *conf, const struct eng_hooks *hooks,
             struct eng **out, struct ota_err *err) OTA_MUST_CHECK;

/* Commit what is staged, stop timers, close the store. Parts with the bearer stay its business. */
void eng_close(struct eng *e);

void eng_set_bearer(struct eng *e, const struct eng_bearer_ops *ops);

/*
 * Wire a real bearer: fills cbs with callbacks that forward to the eng_on_*
 * functions below (pass them to bearer_new) ... and, once the bearer
 * exists, eng_use_bearer() sets the ops to bearer_submit /
 * bearer_release_acks / bearer_discard_acks.
 */
void eng_bearer_cbs(struct eng *e, struct bearer_cbs *cbs);
void eng_use_bearer(struct eng *e, struct bearer *b);

/*
 * Bearer callbacks (what eng_bearer_cbs installs). dlr/mo return
 * BEARER_ACK_LATER when they staged something (acked after the commit), 0
 * when nothing needed storing (intermediate DLR), or a negative errno when
 * the report was not taken (engine stopped, out of memory: redelivered).
 */
void eng_on_submit_result(struct eng *e, const struct bearer_submit_result *r);
int eng_on_dlr(struct eng *e, const struct bearer_dlr *d);
int eng_on_mo(struct eng *e, const struct bearer_mo *m);
void eng_on_ready(struct eng *e);

/* ---- SEs ---------------------------------------------------------------------------- */

/*
 * Register (or look up) an SE; staged, durable at the next commit. -EEXIST with another MSISDN.
 * Tasks (eng_submit, list and sequence jobs) for an SE that is unbound are refused with
 * -ENOLINK, for one on the loss list with -EACCES (store_se_admit); batch jobs skip them.
 */
int eng_se_register(struct eng *e, const char *seid, const char *msisdn, const char *batch,
                    struct ota_err *err) OTA_MUST_CHECK;

/* ---- submitting ----------------------------------------------------------------------- */

struct eng_task_spec {
    const char *seid;
    enum task_op op;
    enum task_channel channel;
    /*
     * JSON object. TASK_OP_SCP80: {"tar":"000000","script":"<hex remote
     * APDUs>"} (script 1..1024 octets, expanded format per TS 102 226: the
     * concatenated C-APDUs). TASK_OP_PUSH: {} (the work runs over the pull
     * API). Others: whatever build_script understands (checked there).
     */
    const char *params;
    uint8_t prio;          /* 0..3 */
    int64_t not_before_ms; /* 0 = now (absolute epoch ms; delays are now + delay) */
    int64_t deadline_ms;   /* 0 = none; must be after not_before */
    uint8_t max_attempts;  /* 0 = conf default */
};

/*
 * Called once per submit: rc 0 when the task/job is durable (ids final),
 * negative when the batch holding it failed (nothing of it exists).
 */
typedef void (*eng_accept_cb)(void *arg, int64_t id, int rc);

/*
 * Validate and stage a task. *id is its id (usable at once; durable when cb
 * says 0; cb may be NULL). -EINVAL (bad spec: OTA_ERR_ARG / _VALUE with the
 * field named), -ENOENT (SE not registered), -ESHUTDOWN (engine stopped).
 * Nothing is staged on error.
 */
int eng_submit(struct eng *e, const struct eng_task_spec *spec, eng_accept_cb cb, void *cb_arg,
               int64_t *id, struct ota_err *err) OTA_MUST_CHECK;

enum eng_job_kind {
    ENG_JOB_LIST = 0,     /* the same operation on each listed SE */
    ENG_JOB_FILTER = 1,   /* ... on every registered SE in a SEID range and/or batch */
    ENG_JOB_SEQUENCE = 2, /* steps on one SE, in order; a failed step cancels the rest */
};

struct eng_job_spec {
    enum eng_job_kind kind;
    /* LIST / FILTER: the per-task operation; seid of tmpl is ignored */
    struct eng_task_spec tmpl;
    const char *const *seids; /* LIST: n_seids registered SEIDs (unknown ones: -ENOENT) */
    size_t n_seids;
    const char *seid_lo, *seid_hi, *batch; /* FILTER: NULL = open */
    double rate_per_s;                     /* 0 = no cap */
    /* SEQUENCE: every step on steps[0].seid */
    const struct eng_task_spec *steps;
    size_t n_steps;
};

/* Stage a job. Batches expand lazily, job_chunk tasks at a time. */
int eng_job_submit(struct eng *e, const struct eng_job_spec *spec, eng_accept_cb cb, void *cb_arg,
                   int64_t *id, struct ota_err *err) OTA_MUST_CHECK;

int eng_job_pause(struct eng *e, int64_t job, bool paused, struct ota_err *err) OTA_MUST_CHECK;
int eng_job_rate(struct eng *e, int64_t job, double rate_per_s, struct ota_err *err) OTA_MUST_CHECK;
/* Cancel a job: its queued tasks and those not yet expanded become cancelled (job-cancelled). */
int eng_job_cancel(struct eng *e, int64_t job, struct ota_err *err) OTA_MUST_CHECK;

struct eng_job_progress {
    enum store_job_state state;
    uint64_t total; /* tasks the job will have (known once expanded) */
    bool expanded;
    uint64_t counts[TASK_STATE__COUNT]; /* created tasks per state */
    int64_t failed_step_task;           /* SEQUENCE: the step that failed, 0 = none */
};

int eng_job_progress(struct eng *e, int64_t job, struct eng_job_progress *out,
                     struct ota_err *err) OTA_MUST_CHECK;

/* ---- operating on tasks ---------------------------------------------------------------- */

/* A queued task -> cancelled. -EBUSY (it is active: terminate it), -EALREADY (final), -ENOENT. */
int eng_task_cancel(struct eng *e, int64_t task, struct ota_err *err) OTA_MUST_CHECK;

/* The active task -> cancelled (terminated); its late reports are recorded only. -EINVAL if not
 * active. */
int eng_task_terminate(struct eng *e, int64_t task, struct ota_err *err) OTA_MUST_CHECK;

/* The stored task (view strings valid until the next call on e). -ENOENT. */
int eng_task_get(struct eng *e, int64_t task, struct eng_task_view *out,
                 struct ota_err *err) OTA_MUST_CHECK;

/* An SE's active task (0 = none) and its queued ones in dispatch order (up to cap). */
int eng_se_tasks(struct eng *e, const char *seid, int64_t *active, int64_t *queued, size_t cap,
                 size_t *n_queued, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Wallet pull (spec 5.8.5.2): the client woken by the push names its SE and
 * the push serial. On success the task is the caller's to run (SCP02
 * session): *task gets its id and the session timer starts. -ENOENT
 * (unknown serial or SE mismatch), -EALREADY (serial used), -ETIMEDOUT
 * (the task is no longer waiting). One use only. Serials of ended
 * attempts are remembered in memory only (the last 65536): after a restart
 * such a serial gives -ENOENT.
 */
int eng_pull(struct eng *e, const char *seid, const uint8_t serial[16], int64_t *task,
             struct ota_err *err) OTA_MUST_CHECK;

/* The pulled task's session ended: done (reason NONE) or failed with reason; result JSON or NULL.
 */
int eng_task_complete(struct eng *e, int64_t task, enum task_reason reason, const char *result,
                      struct ota_err *err) OTA_MUST_CHECK;

/* ---- state ----------------------------------------------------------------------------- */

enum eng_run_state {
    ENG_RUNNING = 0,
    ENG_STOPPED_ERROR = 1, /* a commit failed: no more work; restart the process */
};

struct eng_stats {
    enum eng_run_state run;
    uint64_t accepted, dispatched, parts_sent, done, failed, expired, cancelled, retries;
    uint64_t dlrs, pors, pulls;
    uint64_t late, duplicate, unknown, mismatched; /* reports that changed nothing */
    uint64_t illegal_transitions;                  /* refused by task_transition_ok */
    uint64_t commits;
    double commit_s; /* total time in store_commit */
    size_t queued, active, waiting_bearer;
};

void eng_stats(const struct eng *e, struct eng_stats *out);

/*
 * The engine's store (borrowed), for the daemon's own durable records that
 * must commit in the engine's batch (idempotency keys, the callback outbox)
 * and for read-only queries the engine API does not offer.
 */
struct store *eng_store(struct eng *e);

/*
 * A write the caller staged into the engine's batch failed (the store then
 * dropped the batch): stop the engine as a failed commit does
 * (ENG_STOPPED_ERROR), so nothing of that batch is acknowledged.
 */
void eng_fail_stop(struct eng *e, int rc, const struct ota_err *err);

/*
 * Call cb once after the next commit with its result: 0 when everything
 * staged before this call is durable, negative when that batch failed
 * (nothing of it exists; the engine is stopped). For the daemon's own
 * writes staged through eng_store() (SE registrations, the loss list), so
 * that many requests answered after one fsync. cb runs on the loop, never
 * from inside this call; eng_close runs it too (after its final commit).
 * 0, -EINVAL (cb NULL), -ESHUTDOWN (engine stopped: cb is not called),
 * -ENOMEM.
 */
int eng_after_commit(struct eng *e, void (*cb)(void *arg, int rc), void *arg,
                     struct ota_err *err) OTA_MUST_CHECK;

/* Commit now (tests, shutdown); 0 or the commit's error. */
int eng_flush(struct eng *e, struct ota_err *err) OTA_MUST_CHECK;
