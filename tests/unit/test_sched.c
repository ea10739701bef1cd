/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the dispatch order (queue/sched.c): single link per SE, FIFO
 * by priority then age, head-of-line blocking by a head not yet due, strict
 * priority levels, round robin between flows, pause and rate caps, deadlines,
 * the wake-up instant, argument checks; a long randomized run cross-checked
 * against an O(n) reference model, and a million-task drain.
 */
#include "queue/sched.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "queue/task.h"

static struct sched *mk(void)
{
    struct sched *s = NULL;
    struct ota_err err;
    assert_int_equal(sched_new(&s, &err), 0);
    assert_non_null(s);
    return s;
}

static void add(struct sched *s, int64_t task, uint64_t se, uint64_t flow, uint8_t prio, int64_t nb,
                int64_t dl)
{
    struct sched_item it = {
        .task = task, .se = se, .flow = flow, .prio = prio, .not_before_ms = nb, .deadline_ms = dl};
    struct ota_err err;
    assert_int_equal(sched_add(s, &it, &err), 0);
}

/* The task sched_next returns at now, or 0 for -EAGAIN. */
static int64_t next(struct sched *s, int64_t now)
{
    struct sched_item it;
    memset(&it, 0, sizeof(it));
    int rc = sched_next(s, now, &it);
    if (rc == -EAGAIN) {
        return 0;
    }
    assert_int_equal(rc, 0);
    assert_true(it.task > 0);
    assert_int_equal(sched_active(s, it.se), it.task);
    return it.task;
}

static void test_single_link(void **state)
{
    struct sched *s = mk();
    add(s, 1, 10, 0, 1, 0, 0);
    add(s, 2, 10, 0, 1, 0, 0);
    add(s, 3, 11, 0, 1, 0, 0);
    assert_int_equal(next(s, 100), 1);
    assert_int_equal(next(s, 100), 3);
    /* Task 2's SE is busy with 1: nothing else may go, however often asked. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(next(s, 100 + i), 0);
    }
    assert_int_equal(sched_active(s, 10), 1);
    assert_int_equal(sched_release(s, 10, 2), -ENOENT); /* wrong task */
    assert_int_equal(sched_release(s, 99, 1), -ENOENT); /* unknown SE */
    assert_int_equal(sched_active(s, 10), 1);
    assert_int_equal(next(s, 200), 0);
    assert_int_equal(sched_release(s, 10, 1), 0);
    assert_int_equal(sched_release(s, 10, 1), -ENOENT); /* twice */
    assert_int_equal(sched_active(s, 10), 0);
    assert_int_equal(next(s, 200), 2);
    assert_int_equal(next(s, 200), 0);
    struct sched_stats st;
    sched_stats(s, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.active, 2);
    assert_int_equal(st.ses, 2);
    assert_int_equal(sched_release(s, 10, 2), 0);
    assert_int_equal(sched_release(s, 11, 3), 0);
    sched_stats(s, &st);
    assert_int_equal(st.active, 0);
    assert_int_equal(st.ses, 0);
    sched_free(s);
}

static void test_fifo_order(void **state)
{
    struct sched *s = mk();
    /* Added out of age order; a later higher-priority task goes first. */
    add(s, 5, 1, 0, 0, 0, 0);
    add(s, 3, 1, 0, 0, 0, 0);
    add(s, 9, 1, 0, 2, 0, 0);
    add(s, 4, 1, 0, 0, 0, 0);
    add(s, 7, 1, 0, 2, 0, 0);
    const int64_t want[] = {7, 9, 3, 4, 5};
    for (size_t i = 0; i < 5; i++) {
        int64_t t = next(s, 10);
        assert_int_equal(t, want[i]);
        assert_int_equal(next(s, 10), 0);
        assert_int_equal(sched_release(s, 1, t), 0);
    }
    assert_int_equal(next(s, 10), 0);
    sched_free(s);
}

static void test_hol_blocking(void **state)
{
    struct sched *s = mk();
    add(s, 1, 1, 0, 1, 1000, 0); /* head, not due until 1000 */
    add(s, 2, 1, 0, 1, 0, 0);    /* due, but behind the head */
    add(s, 3, 2, 0, 0, 0, 0);    /* another SE, lower priority: free to go */
    assert_int_equal(next(s, 500), 3);
    assert_int_equal(next(s, 500), 0);
    assert_int_equal(sched_next_wake_ms(s, 500), 1000);
    assert_int_equal(next(s, 999), 0);
    assert_int_equal(next(s, 1000), 1);
    assert_int_equal(sched_release(s, 1, 1), 0);
    assert_int_equal(next(s, 1000), 2);
    /* A higher-priority arrival replaces a blocking head and unblocks the SE. */
    add(s, 10, 5, 0, 1, 5000, 0);
    add(s, 11, 5, 0, 2, 0, 0);
    assert_int_equal(next(s, 1000), 11);
    assert_int_equal(sched_release(s, 5, 11), 0);
    assert_int_equal(next(s, 1000), 0);
    /* Removing the blocking head lets the next one go. */
    add(s, 12, 5, 0, 1, 0, 0);
    assert_int_equal(next(s, 1000), 0);
    assert_int_equal(sched_remove(s, 10), 0);
    assert_int_equal(next(s, 1000), 12);
    sched_free(s);
}

static void test_delay_and_wake(void **state)
{
    struct sched *s = mk();
    assert_int_equal(sched_next_wake_ms(s, 0), INT64_MAX);
    add(s, 1, 1, 0, 1, 2000, 0);
    add(s, 2, 2, 0, 1, 1500, 0);
    add(s, 3, 3, 0, 1, 3000, 2500);
    assert_int_equal(next(s, 1000), 0);
    assert_int_equal(sched_next_wake_ms(s, 1000), 1500);
    assert_int_equal(next(s, 1499), 0);
    assert_int_equal(next(s, 1500), 2);
    assert_int_equal(sched_next_wake_ms(s, 1500), 2000);
    assert_int_equal(next(s, 2000), 1);
    /* Task 3's deadline (2500) comes before its not_before (3000). */
    assert_int_equal(sched_next_wake_ms(s, 2000), 2500);
    assert_int_equal(sched_expire(s, 2500, NULL, NULL), 1);
    assert_int_equal(sched_next_wake_ms(s, 2500), INT64_MAX);
    /* A busy SE's head does not wake anybody: only its release can. */
    add(s, 4, 1, 0, 1, 2100, 0);
    assert_int_equal(sched_next_wake_ms(s, 2000), INT64_MAX);
    assert_int_equal(sched_release(s, 1, 1), 0);
    assert_int_equal(sched_next_wake_ms(s, 2000), 2100);
    /* Something due but not yet taken: wake now. */
    assert_int_equal(sched_next_wake_ms(s, 2200), 2200);
    assert_int_equal(next(s, 2200), 4);
    assert_int_equal(sched_next_wake_ms(s, 2200), INT64_MAX);
    sched_free(s);
}

static void test_urgent_first(void **state)
{
    struct sched *s = mk();
    for (int i = 0; i < 100; i++) {
        add(s, 1 + i, 1000 + (uint64_t)i, 7, 0, 0, 0);
    }
    for (int i = 0; i < 50; i++) {
        add(s, 200 + i, 2000 + (uint64_t)i, 8, 1, 0, 0);
    }
    add(s, 900, 3000, 0, TASK_PRIO_MAX, 0, 0);
    add(s, 901, 3001, 9, TASK_PRIO_MAX, 0, 0);
    add(s, 800, 3002, 0, 2, 0, 0);
    int64_t a = next(s, 0), b = next(s, 0);
    assert_true((a == 900 && b == 901) || (a == 901 && b == 900));
    assert_int_equal(next(s, 0), 800);
    for (int i = 0; i < 50; i++) {
        int64_t t = next(s, 0);
        assert_true(t >= 200 && t < 250);
    }
    for (int i = 0; i < 100; i++) {
        assert_int_equal(next(s, 0), 1 + i); /* within a flow: age */
    }
    assert_int_equal(next(s, 0), 0);
    sched_free(s);
}

static void test_rr_standalone(void **state)
{
    struct sched *s = mk();
    for (int i = 0; i < 10000; i++) {
        add(s, 1 + i, 1 + (uint64_t)i, 7, 1, 0, 0);
    }
    for (int i = 0; i < 10; i++) {
        add(s, 100000 + i, 50000 + (uint64_t)i, 0, 1, 0, 0);
    }
    int lone = 0, picks = 0;
    while (lone < 10) {
        int64_t t = next(s, 0);
        assert_true(t > 0);
        picks++;
        if (t >= 100000) {
            lone++;
        }
        assert_true(picks <= 21);
    }
    assert_int_equal(sched_flow_queued(s, 7), 10000 - (size_t)(picks - 10));
    sched_free(s);
}

static void test_rr_two_jobs(void **state)
{
    struct sched *s = mk();
    for (int i = 0; i < 1000; i++) {
        add(s, 1 + i, 1 + (uint64_t)i, 41, 1, 0, 0);
        add(s, 5000 + i, 10000 + (uint64_t)i, 42, 1, 0, 0);
    }
    int a = 0, b = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t t = next(s, 0);
        if (t < 5000) {
            a++;
        } else {
            b++;
        }
        assert_true(abs(a - b) <= 1);
    }
    assert_int_equal(a, 500);
    assert_int_equal(b, 500);
    sched_free(s);
}

static void test_pause_resume(void **state)
{
    struct sched *s = mk();
    struct ota_err err;
    assert_int_equal(sched_flow_set(s, 5, true, 0, &err), 0);
    for (int i = 0; i < 5; i++) {
        add(s, 1 + i, 1 + (uint64_t)i, 5, 2, 0, 0);
    }
    add(s, 10, 10, 6, 1, 0, 0);
    add(s, 11, 11, 0, 0, 0, 0);
    assert_int_equal(next(s, 0), 10);
    assert_int_equal(next(s, 0), 11);
    assert_int_equal(next(s, 0), 0);
    assert_int_equal(sched_next_wake_ms(s, 0), INT64_MAX);
    assert_int_equal(sched_flow_queued(s, 5), 5);
    /* Pause while its tasks are ready too. */
    assert_int_equal(sched_flow_set(s, 5, false, 0, &err), 0);
    assert_int_equal(next(s, 0), 1);
    assert_int_equal(sched_flow_set(s, 5, true, 0, &err), 0);
    assert_int_equal(next(s, 0), 0);
    sched_flow_forget(s, 5); /* forgetting the settings resumes it */
    for (int i = 1; i < 5; i++) {
        assert_int_equal(next(s, 0), 1 + i);
    }
    assert_int_equal(next(s, 0), 0);
    assert_int_equal(sched_flow_queued(s, 5), 0);
    struct sched_stats st;
    sched_stats(s, &st);
    assert_int_equal(st.flows, 0);
    assert_int_equal(sched_flow_set(s, 5, false, -1.0, &err), -EINVAL);
    assert_int_equal(sched_flow_set(s, 5, false, NAN, &err), -EINVAL);
    assert_int_equal(sched_flow_set(s, 5, false, INFINITY, &err), -EINVAL);
    sched_free(s);
}

static void test_rate_cap(void **state)
{
    struct sched *s = mk();
    struct ota_err err;
    assert_int_equal(sched_flow_set(s, 3, false, 5.0, &err), 0);
    for (int i = 0; i < 20; i++) {
        add(s, 1 + i, 1 + (uint64_t)i, 3, 1, 0, 0);
    }
    add(s, 100, 100, 0, 0, 0, 0); /* another flow, lower level: not held up */
    int got = 0;
    for (int64_t now = 0; now < 1000; now += 1) {
        int64_t t;
        while ((t = next(s, now)) != 0) {
            if (t != 100) {
                got++;
            }
        }
        if (now == 0) {
            assert_int_equal(got, 5); /* the burst */
            assert_int_equal(sched_next_wake_ms(s, 0), 200);
        }
    }
    /* Burst of 5 at 0, then one token per 200 ms: 200, 400, 600, 800. */
    assert_int_equal(got, 9);
    assert_int_equal(sched_next_wake_ms(s, 999), 1000);
    assert_int_equal(next(s, 999), 0);
    assert_int_equal(next(s, 1000), 10);
    /* Raising the cap takes effect; removing it frees the flow. */
    assert_int_equal(sched_flow_set(s, 3, false, 0, &err), 0);
    for (int i = 10; i < 20; i++) {
        assert_int_equal(next(s, 1000), 1 + i);
    }
    /* A cap below one per second still has a burst of one. */
    assert_int_equal(sched_flow_set(s, 4, false, 0.5, &err), 0);
    add(s, 200, 200, 4, 1, 0, 0);
    add(s, 201, 201, 4, 1, 0, 0);
    assert_int_equal(next(s, 5000), 200);
    assert_int_equal(next(s, 5000), 0);
    assert_int_equal(sched_next_wake_ms(s, 5000), 7000);
    assert_int_equal(next(s, 7000), 201);
    sched_free(s);
}

struct expired {
    int64_t tasks[16];
    size_t n;
    struct sched *s;
};

static void on_expire(void *arg, const struct sched_item *it)
{
    struct expired *e = arg;
    assert_true(e->n < 16);
    e->tasks[e->n++] = it->task;
    /* Gone already, and the callback may use the scheduler. */
    assert_false(sched_get(e->s, it->task, NULL));
    assert_int_equal(sched_remove(e->s, it->task), -ENOENT);
}

static void test_expire(void **state)
{
    struct sched *s = mk();
    add(s, 1, 1, 0, 1, 0, 100);  /* will be active: untouched */
    add(s, 2, 1, 0, 1, 0, 100);  /* queued behind it: expires */
    add(s, 3, 2, 0, 1, 500, 50); /* not due, expires */
    add(s, 4, 3, 0, 1, 0, 101);  /* one ms too late to expire */
    add(s, 5, 4, 0, 1, 0, 0);    /* no deadline */
    assert_int_equal(next(s, 0), 1);
    struct expired e = {.s = s};
    assert_int_equal(sched_expire(s, 100, on_expire, &e), 2);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.tasks[0], 3); /* earliest deadline first */
    assert_int_equal(e.tasks[1], 2);
    assert_int_equal(sched_active(s, 1), 1);
    assert_true(sched_get(s, 4, NULL));
    assert_true(sched_get(s, 5, NULL));
    assert_int_equal(sched_expire(s, 100, on_expire, &e), 0);
    struct sched_stats st;
    sched_stats(s, &st);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.queued, 2);
    assert_int_equal(sched_expire(s, 101, NULL, NULL), 1);
    assert_int_equal(sched_release(s, 1, 1), 0);
    assert_int_equal(next(s, 200), 5);
    assert_int_equal(next(s, 200), 0);
    sched_free(s);
}

static void test_remove_get(void **state)
{
    struct sched *s = mk();
    add(s, 1, 1, 9, 2, 10, 20);
    add(s, 2, 1, 9, 1, 0, 0);
    struct sched_item it;
    assert_true(sched_get(s, 1, &it));
    assert_int_equal(it.task, 1);
    assert_int_equal(it.se, 1);
    assert_int_equal(it.flow, 9);
    assert_int_equal(it.prio, 2);
    assert_int_equal(it.not_before_ms, 10);
    assert_int_equal(it.deadline_ms, 20);
    assert_false(sched_get(s, 77, &it));
    assert_int_equal(sched_remove(s, 77), -ENOENT);
    assert_int_equal(sched_remove(s, 0), -ENOENT);
    assert_int_equal(sched_remove(s, 1), 0);
    assert_int_equal(sched_remove(s, 1), -ENOENT);
    assert_false(sched_get(s, 1, &it));
    assert_int_equal(sched_flow_queued(s, 9), 1);
    assert_int_equal(next(s, 0), 2);
    /* Active tasks are not queued: not removable, not visible. */
    assert_int_equal(sched_remove(s, 2), -ENOENT);
    assert_false(sched_get(s, 2, &it));
    assert_int_equal(sched_expire(s, 1000, NULL, NULL), 0);
    sched_free(s);
}

static void test_set_active(void **state)
{
    struct sched *s = mk();
    struct ota_err err;
    add(s, 10, 1, 0, 1, 0, 0);
    assert_int_equal(sched_set_active(s, 1, 5, &err), 0);
    assert_int_equal(sched_set_active(s, 1, 5, &err), 0); /* idempotent */
    assert_int_equal(sched_set_active(s, 1, 6, &err), -EBUSY);
    assert_int_equal(err.code, OTA_ERR_STATE);
    assert_int_equal(sched_set_active(s, 2, 5, &err), -EBUSY); /* task active elsewhere */
    assert_int_equal(sched_set_active(s, 0, 5, &err), -EINVAL);
    assert_int_equal(sched_set_active(s, 3, 0, &err), -EINVAL);
    assert_int_equal(sched_active(s, 1), 5);
    assert_int_equal(next(s, 0), 0);
    /* An active task's id cannot be queued on another SE. */
    struct sched_item it = {.task = 5, .se = 2, .prio = 1};
    assert_int_equal(sched_add(s, &it, &err), -EEXIST);
    assert_int_equal(sched_release(s, 1, 5), 0);
    assert_int_equal(next(s, 0), 10);
    sched_free(s);
}

static void test_requeue_active(void **state)
{
    struct sched *s = mk();
    struct ota_err err;
    add(s, 1, 1, 0, 1, 0, 0);
    assert_int_equal(next(s, 0), 1);
    /* A retry requeues the active task on its SE before its release. */
    add(s, 1, 1, 0, 1, 50, 0);
    assert_true(sched_get(s, 1, NULL));
    struct sched_item it = {.task = 1, .se = 1, .prio = 1};
    assert_int_equal(sched_add(s, &it, &err), -EEXIST); /* now queued */
    assert_int_equal(next(s, 100), 0);                  /* still active */
    assert_int_equal(sched_release(s, 1, 1), 0);
    assert_int_equal(next(s, 100), 1);
    /* Requeue after the release. */
    assert_int_equal(sched_release(s, 1, 1), 0);
    add(s, 1, 1, 0, 1, 0, 0);
    assert_int_equal(next(s, 100), 1);
    /* Cancel a requeued copy while still active: the active part stays. */
    add(s, 1, 1, 0, 1, 0, 0);
    assert_int_equal(sched_remove(s, 1), 0);
    it.se = 2;
    assert_int_equal(sched_add(s, &it, &err), -EEXIST);
    assert_int_equal(sched_release(s, 1, 1), 0);
    struct sched_stats st;
    sched_stats(s, &st);
    assert_int_equal(st.ses, 0);
    assert_int_equal(st.queued, 0);
    sched_free(s);
}

static void test_se_queue(void **state)
{
    struct sched *s = mk();
    const int64_t tasks[] = {8, 3, 12, 5, 1, 20, 15};
    const uint8_t prios[] = {0, 1, 3, 1, 0, 2, 3};
    for (size_t i = 0; i < 7; i++) {
        add(s, tasks[i], 4, 0, prios[i], 0, 0);
    }
    add(s, 99, 5, 0, 3, 0, 0);
    assert_int_equal(sched_remove(s, 5), 0);
    struct sched_item out[8];
    assert_int_equal(sched_se_queue(s, 4, out, 8), 6);
    const int64_t want[] = {12, 15, 20, 3, 1, 8};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(out[i].task, want[i]);
        assert_int_equal(out[i].se, 4);
    }
    assert_int_equal(sched_se_queue(s, 4, out, 2), 6);
    assert_int_equal(out[1].task, 15);
    assert_int_equal(sched_se_queue(s, 4, NULL, 0), 6);
    assert_int_equal(sched_se_queue(s, 77, out, 8), 0);
    sched_free(s);
}

static void test_flow_queued(void **state)
{
    struct sched *s = mk();
    for (int i = 0; i < 30; i++) {
        add(s, 1 + i, 1 + (uint64_t)(i % 7), (uint64_t)(i % 3), 1, 0, 0);
    }
    assert_int_equal(sched_flow_queued(s, 0), 10);
    assert_int_equal(sched_flow_queued(s, 1), 10);
    assert_int_equal(sched_flow_queued(s, 2), 10);
    assert_int_equal(sched_flow_queued(s, 3), 0);
    assert_int_equal(sched_remove(s, 2), 0); /* flow 1 */
    int64_t t = next(s, 0);
    assert_int_equal(sched_flow_queued(s, 0) + sched_flow_queued(s, 1) + sched_flow_queued(s, 2),
                     28);
    assert_true(t > 0);
    struct sched_stats st;
    sched_stats(s, &st);
    assert_int_equal(st.queued, 28);
    assert_int_equal(st.flows, 3);
    assert_int_equal(st.ses, 7);
    sched_free(s);
}

static void test_add_errors(void **state)
{
    struct sched *s = mk();
    struct ota_err err;
    struct sched_item it = {.task = 1, .se = 1, .prio = 1};
    assert_int_equal(sched_add(s, &it, &err), 0);
    assert_int_equal(sched_add(s, &it, &err), -EEXIST);
    assert_int_equal(err.code, OTA_ERR_DUPLICATE);
    it.se = 2;
    assert_int_equal(sched_add(s, &it, &err), -EEXIST);
    it = (struct sched_item){.task = 0, .se = 1, .prio = 1};
    assert_int_equal(sched_add(s, &it, &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_ARG);
    it = (struct sched_item){.task = -4, .se = 1, .prio = 1};
    assert_int_equal(sched_add(s, &it, &err), -EINVAL);
    it = (struct sched_item){.task = 2, .se = 0, .prio = 1};
    assert_int_equal(sched_add(s, &it, &err), -EINVAL);
    it = (struct sched_item){.task = 2, .se = 1, .prio = TASK_PRIO_MAX + 1};
    assert_int_equal(sched_add(s, &it, &err), -EINVAL);
    struct sched_stats st;
    sched_stats(s, &st);
    assert_int_equal(st.queued, 1);
    assert_int_equal(st.ses, 1);
    sched_free(s);
    sched_free(NULL);
}

/* ---- randomized run against an O(n) reference model ------------------------------- */

#define M_SES 40
#define M_FLOWS 4
#define M_TASKS 60000

struct model {
    struct sched_item it[M_TASKS + 1];
    bool queued[M_TASKS + 1];
    int64_t list[M_TASKS + 1]; /* queued task ids */
    size_t pos[M_TASKS + 1];
    size_t n;
    int64_t active[M_SES + 1];
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void m_add(struct model *m, const struct sched_item *it)
{
    m->it[it->task] = *it;
    m->queued[it->task] = true;
    m->pos[it->task] = m->n;
    m->list[m->n++] = it->task;
}

static void m_del(struct model *m, int64_t t)
{
    size_t p = m->pos[t];
    m->list[p] = m->list[--m->n];
    m->pos[m->list[p]] = p;
    m->queued[t] = false;
}

static bool m_before(const struct sched_item *a, const struct sched_item *b)
{
    return a->prio != b->prio ? a->prio > b->prio : a->task < b->task;
}

/* heads[se] = the FIFO head task of every SE (0 if none). */
static void m_heads(const struct model *m, int64_t *heads)
{
    memset(heads, 0, sizeof(int64_t) * (M_SES + 1));
    for (size_t i = 0; i < m->n; i++) {
        const struct sched_item *x = &m->it[m->list[i]];
        int64_t h = heads[x->se];
        if (h == 0 || m_before(x, &m->it[h])) {
            heads[x->se] = x->task;
        }
    }
}

static void assert_item_eq(const struct sched_item *a, const struct sched_item *b)
{
    assert_int_equal(a->task, b->task);
    assert_int_equal(a->se, b->se);
    assert_int_equal(a->flow, b->flow);
    assert_int_equal(a->prio, b->prio);
    assert_int_equal(a->not_before_ms, b->not_before_ms);
    assert_int_equal(a->deadline_ms, b->deadline_ms);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

struct exp_ctx {
    struct model *m;
    int64_t now;
    size_t n;
};

static void m_on_expire(void *arg, const struct sched_item *it)
{
    struct exp_ctx *c = arg;
    assert_true(it->task > 0 && it->task <= M_TASKS);
    assert_true(c->m->queued[it->task]);
    assert_true(c->m->it[it->task].deadline_ms != 0);
    assert_true(c->m->it[it->task].deadline_ms <= c->now);
    m_del(c->m, it->task);
    c->n++;
}

static void test_random_model(void **state)
{
    struct model *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    struct sched *s = mk();
    struct ota_err err;
    int64_t now = 1000, next_id = 1;
    int64_t heads[M_SES + 1];
    size_t dispatched = 0, eagain = 0, expired = 0;
    for (int op = 0; op < 200000; op++) {
        uint32_t r = rnd(100);
        if (r < 30 && next_id <= M_TASKS && m->n < 400) {
            struct sched_item it = {.task = next_id,
                                    .se = 1 + rnd(M_SES),
                                    .flow = rnd(M_FLOWS),
                                    .prio = (uint8_t)rnd(TASK_PRIO_MAX + 1),
                                    .not_before_ms = rnd(4) == 0 ? now + rnd(300) : 0,
                                    .deadline_ms = rnd(5) == 0 ? now + 50 + rnd(500) : 0};
            /* Sometimes requeue a task that is active (allowed only on its SE). */
            if (rnd(10) == 0) {
                uint64_t se = 1 + rnd(M_SES);
                if (m->active[se] != 0 && !m->queued[m->active[se]]) {
                    it.task = m->active[se];
                    it.se = rnd(2) ? se : 1 + rnd(M_SES);
                    bool ok = it.se == se;
                    assert_int_equal(sched_add(s, &it, &err), ok ? 0 : -EEXIST);
                    if (ok) {
                        m_add(m, &it);
                    }
                    continue;
                }
            }
            assert_int_equal(sched_add(s, &it, &err), 0);
            m_add(m, &it);
            next_id++;
        } else if (r < 33 && next_id > 1) {
            /* Duplicate of a queued task. */
            int64_t t = 1 + (int64_t)rnd((uint32_t)(next_id - 1));
            if (m->queued[t]) {
                struct sched_item it = m->it[t];
                assert_int_equal(sched_add(s, &it, &err), -EEXIST);
            }
        } else if (r < 63) {
            struct sched_item out;
            int rc = sched_next(s, now, &out);
            m_heads(m, heads);
            int best = -1;
            for (int se = 1; se <= M_SES; se++) {
                if (heads[se] && m->active[se] == 0 && m->it[heads[se]].not_before_ms <= now &&
                    m->it[heads[se]].prio > best) {
                    best = m->it[heads[se]].prio;
                }
            }
            if (rc == -EAGAIN) {
                assert_int_equal(best, -1);
                eagain++;
                /* The wake-up: earliest head of an idle SE, or deadline. */
                int64_t w = INT64_MAX;
                for (int se = 1; se <= M_SES; se++) {
                    if (heads[se] && m->active[se] == 0 && m->it[heads[se]].not_before_ms < w) {
                        w = m->it[heads[se]].not_before_ms;
                    }
                }
                for (size_t i = 0; i < m->n; i++) {
                    int64_t d = m->it[m->list[i]].deadline_ms;
                    if (d != 0 && d < w) {
                        w = d;
                    }
                }
                if (w < now) {
                    w = now;
                }
                assert_int_equal(sched_next_wake_ms(s, now), w);
            } else {
                assert_int_equal(rc, 0);
                assert_true(out.task > 0 && out.task <= M_TASKS);
                assert_true(m->queued[out.task]);
                assert_int_equal(heads[out.se], out.task); /* FIFO head only */
                assert_int_equal(m->active[out.se], 0);    /* single link */
                assert_true(out.not_before_ms <= now);
                assert_int_equal(out.prio, best); /* strict levels */
                assert_item_eq(&out, &m->it[out.task]);
                m_del(m, out.task);
                m->active[out.se] = out.task;
                dispatched++;
            }
        } else if (r < 83) {
            uint64_t se = 1 + rnd(M_SES);
            int64_t a = m->active[se];
            if (a == 0) {
                assert_int_equal(sched_release(s, se, 1 + rnd(M_TASKS)), -ENOENT);
            } else {
                assert_int_equal(sched_release(s, se, a + 1), -ENOENT);
                assert_int_equal(sched_release(s, se, a), 0);
                m->active[se] = 0;
            }
        } else if (r < 90 && next_id > 1) {
            int64_t t = 1 + (int64_t)rnd((uint32_t)(next_id - 1));
            bool q = m->queued[t];
            assert_int_equal(sched_remove(s, t), q ? 0 : -ENOENT);
            if (q) {
                m_del(m, t);
            }
        } else if (r < 93) {
            struct exp_ctx c = {.m = m, .now = now};
            size_t want = 0;
            for (size_t i = 0; i < m->n; i++) {
                int64_t d = m->it[m->list[i]].deadline_ms;
                want += d != 0 && d <= now;
            }
            assert_int_equal(sched_expire(s, now, m_on_expire, &c), want);
            assert_int_equal(c.n, want);
            expired += want;
        } else if (r < 95) {
            uint64_t se = 1 + rnd(M_SES);
            struct sched_item out[64];
            int64_t want[64];
            size_t k = 0;
            for (size_t i = 0; i < m->n && k < 64; i++) {
                if (m->it[m->list[i]].se == se) {
                    want[k++] = m->list[i];
                }
            }
            size_t got = sched_se_queue(s, se, out, 64);
            assert_int_equal(got, k);
            for (size_t i = 1; i < got && got <= 64; i++) {
                assert_true(m_before(&out[i - 1], &out[i]));
            }
            int64_t have[64];
            for (size_t i = 0; i < got && i < 64; i++) {
                have[i] = out[i].task;
            }
            qsort(want, k, sizeof(*want), cmp_i64);
            qsort(have, got < 64 ? got : 64, sizeof(*have), cmp_i64);
            assert_memory_equal(want, have, k * sizeof(*want));
        } else {
            now += rnd(40);
        }
        if (op % 997 == 0) {
            struct sched_stats st;
            sched_stats(s, &st);
            assert_int_equal(st.queued, m->n);
            size_t act = 0, per_flow[M_FLOWS] = {0};
            bool known[M_SES + 1] = {false};
            for (int se = 1; se <= M_SES; se++) {
                act += m->active[se] != 0;
                known[se] = m->active[se] != 0;
            }
            for (size_t i = 0; i < m->n; i++) {
                per_flow[m->it[m->list[i]].flow]++;
                known[m->it[m->list[i]].se] = true;
            }
            size_t n_known = 0;
            for (int se = 1; se <= M_SES; se++) {
                n_known += known[se];
            }
            assert_int_equal(st.active, act);
            assert_int_equal(st.ses, n_known);
            assert_int_equal(st.expired, expired);
            for (uint64_t f = 0; f < M_FLOWS; f++) {
                assert_int_equal(sched_flow_queued(s, f), per_flow[f]);
            }
            int64_t t = 1 + (int64_t)rnd(M_TASKS);
            struct sched_item g;
            assert_int_equal(sched_get(s, t, &g), m->queued[t]);
            if (m->queued[t]) {
                assert_item_eq(&g, &m->it[t]);
            }
        }
    }
    /* Sanity that the mix exercised every path. */
    assert_true(dispatched > 10000);
    assert_true(eagain > 1000);
    assert_true(expired > 100);
    sched_free(s);
    free(m);
}

/* ---- scale ------------------------------------------------------------------------------ */

static void test_scale(void **state)
{
    enum { N_TASKS = 1000000, N_SES = 500000 };
    struct sched *s = mk();
    for (int64_t t = 1; t <= N_TASKS; t++) {
        add(s, t, 1 + (uint64_t)(t % N_SES), (uint64_t)(t % 5), (uint8_t)(t % 3), 0,
            t % 10 == 0 ? 1000000 : 0);
    }
    struct sched_stats st;
    sched_stats(s, &st);
    assert_int_equal(st.queued, N_TASKS);
    assert_int_equal(st.ses, N_SES);
    uint8_t *seen = calloc(N_TASKS + 1, 1);
    assert_non_null(seen);
    size_t out_n = 0;
    while (out_n < N_TASKS) {
        struct sched_item it;
        int rc = sched_next(s, 10, &it);
        if (rc == -EAGAIN) {
            break;
        }
        assert_int_equal(rc, 0);
        assert_true(it.task >= 1 && it.task <= N_TASKS);
        assert_int_equal(seen[it.task], 0);
        seen[it.task] = 1;
        out_n++;
        assert_int_equal(sched_release(s, it.se, it.task), 0);
    }
    assert_int_equal(out_n, N_TASKS);
    sched_stats(s, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.ses, 0);
    assert_int_equal(st.active, 0);
    free(seen);
    sched_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_link),    cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_hol_blocking),   cmocka_unit_test(test_delay_and_wake),
        cmocka_unit_test(test_urgent_first),   cmocka_unit_test(test_rr_standalone),
        cmocka_unit_test(test_rr_two_jobs),    cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_rate_cap),       cmocka_unit_test(test_expire),
        cmocka_unit_test(test_remove_get),     cmocka_unit_test(test_set_active),
        cmocka_unit_test(test_requeue_active), cmocka_unit_test(test_se_queue),
        cmocka_unit_test(test_flow_queued),    cmocka_unit_test(test_add_errors),
        cmocka_unit_test(test_random_model),   cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
