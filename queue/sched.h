/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dispatch order, in memory: which queued task goes next. No I/O, no
 * clock of its own (the caller passes now in ms), no SQLite; the engine
 * (queue/engine.c) keeps it in step with the store and rebuilds it at start.
 *
 * Rules (spec 5.8.8 and issue #5):
 *   - Single link per SE: at most one task per SE is active. sched_next()
 *     marks the SE busy with the task it returns; sched_release() frees it.
 *   - Each SE has a FIFO ordered by priority (higher first), then age (lower
 *     task id first). Only the FIFO's head may go, and only once it is due
 *     (not_before <= now). A head that is not yet due blocks the SE's later
 *     tasks: a retried step or a delayed task keeps its place (composite
 *     sequences rely on it).
 *   - Among SEs whose head is dispatchable: priority TASK_PRIO_MAX (urgent)
 *     strictly first, then strictly by priority level; within one level,
 *     round robin between flows (flow 0 = standalone tasks, otherwise the
 *     job id), so a ten-million-SE campaign never starves a lone task of the
 *     same level. Within a flow: priority, then age.
 *   - A flow may be paused (none of its tasks go) and rate-capped (token
 *     bucket, burst of one second's worth, at least 1).
 *   - Deadlines: sched_expire() removes queued tasks whose deadline passed.
 *
 * Memory: at most ~200 octets per queued task, SE entry included (a million
 * queued tasks in well under 512 MB). Only SEs with queued or active tasks
 * are known here. Prefix sched_. Not thread-safe (the loop thread only).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/ota_common.h"

struct sched_item {
    int64_t task;          /* task id, > 0, unique; also the age order */
    uint64_t se;           /* SE key (the store's SE row id), > 0 */
    uint64_t flow;         /* 0 = standalone task, else its job id */
    uint8_t prio;          /* 0..TASK_PRIO_MAX */
    int64_t not_before_ms; /* due time (0 = now) */
    int64_t deadline_ms;   /* 0 = none */
};

struct sched_stats {
    size_t queued;  /* tasks in FIFOs */
    size_t active;  /* SEs busy */
    size_t ses;     /* SEs known (queued or active) */
    size_t flows;   /* flows with queued tasks or settings */
    size_t expired; /* removed by sched_expire, total */
};

struct sched;

/* 0 or -ENOMEM. Free with sched_free(). */
int sched_new(struct sched **out, struct ota_err *err) OTA_MUST_CHECK;
void sched_free(struct sched *s);

/*
 * Queue a task (copied). Returns 0, -EINVAL (OTA_ERR_ARG: task or se 0,
 * prio above TASK_PRIO_MAX), -EEXIST (OTA_ERR_DUPLICATE: the task id is
 * queued or active already), -ENOMEM.
 */
int sched_add(struct sched *s, const struct sched_item *it, struct ota_err *err) OTA_MUST_CHECK;

/* Remove a queued task (cancel). 0, or -ENOENT (not queued; active tasks are not here). */
int sched_remove(struct sched *s, int64_t task);

/* The queued item of a task; false when it is not queued. */
bool sched_get(const struct sched *s, int64_t task, struct sched_item *out);

/*
 * The next task to dispatch at now_ms by the rules above: copies it to *out,
 * removes it from its FIFO and marks its SE busy with it. Returns 0, or
 * -EAGAIN when nothing may go now (everything blocked, not due, paused,
 * rate-capped, or empty).
 */
int sched_next(struct sched *s, int64_t now_ms, struct sched_item *out);

/*
 * Mark se busy with task without taking it from a FIFO (start-up rebuild of
 * an active task). 0, -EBUSY (the SE is busy with another task), -ENOMEM.
 */
int sched_set_active(struct sched *s, uint64_t se, int64_t task,
                     struct ota_err *err) OTA_MUST_CHECK;

/* The SE's active task id, or 0. */
int64_t sched_active(const struct sched *s, uint64_t se);

/*
 * The active task of se has ended (final, or requeued by sched_add before
 * or after this call): the SE is idle. 0, or -ENOENT when se is not busy
 * with task (nothing changes).
 */
int sched_release(struct sched *s, uint64_t se, int64_t task);

/*
 * The earliest time after now_ms at which sched_next() may return a task
 * that it cannot return now (a head becoming due, a rate-capped flow's next
 * token, a deadline to expire), or INT64_MAX when nothing is pending. The
 * caller arms one timer with it.
 */
int64_t sched_next_wake_ms(const struct sched *s, int64_t now_ms);

/*
 * Remove every queued task whose deadline is <= now_ms, calling cb for
 * each (after its removal; cb may call sched_* except sched_free). Returns
 * how many were removed.
 */
size_t sched_expire(struct sched *s, int64_t now_ms,
                    void (*cb)(void *arg, const struct sched_item *it), void *arg);

/*
 * Flow settings: paused, and a rate cap in tasks per second (0 = none).
 * Flow 0 may be capped too. 0, -EINVAL (negative or non-finite rate), -ENOMEM.
 */
int sched_flow_set(struct sched *s, uint64_t flow, bool paused, double rate_per_s,
                   struct ota_err *err) OTA_MUST_CHECK;

/* Forget a flow's settings once its job is over (its queued tasks stay). */
void sched_flow_forget(struct sched *s, uint64_t flow);

/* Queued tasks of a flow (for lazy job expansion). */
size_t sched_flow_queued(const struct sched *s, uint64_t flow);

/* Queued tasks of se in dispatch order, up to cap; returns how many exist. */
size_t sched_se_queue(const struct sched *s, uint64_t se, struct sched_item *out, size_t cap);

void sched_stats(const struct sched *s, struct sched_stats *out);
