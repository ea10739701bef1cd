/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the task model (queue/task.c): the state transition table
 * checked pair by pair against a table written out here, independently,
 * from the diagram in queue/task.h (every legal change true, every other of
 * the 8 x 8 pairs false, out-of-range states false), the final / active
 * predicates, the stored enum values (never renumbered), the name tables
 * (never NULL, distinct, "unknown" out of range) and the parse functions
 * (round trips; bad, empty, NULL and differently spelled names -> -EINVAL,
 * output untouched).
 */
#include "queue/task.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* Shorter names for the expected table below. */
#define QU TASK_QUEUED
#define DI TASK_DISPATCHED
#define SU TASK_SUBMITTED
#define DE TASK_DELIVERED
#define DO TASK_DONE
#define FA TASK_FAILED
#define EX TASK_EXPIRED
#define CA TASK_CANCELLED

/*
 * The legal changes, from the diagram of queue/task.h:
 *   queued -> dispatched -> submitted -> delivered -> done (the main line)
 *   dispatched | submitted | delivered -> queued (retry)
 *   every non-final state -> failed | expired | cancelled
 *   submitted -> done (a verified PoR may overtake its DLR)
 * Everything else (self loops, skipping ahead, going backwards other than a
 * retry to queued, leaving a final state) is illegal.
 */
#define Y true
#define N false
/* clang-format off */
static const bool legal[TASK_STATE__COUNT][TASK_STATE__COUNT] = {
    /* from \ to  QU DI SU DE DO FA EX CA */
    [QU] =       { N, Y, N, N, N, Y, Y, Y },
    [DI] =       { Y, N, Y, N, N, Y, Y, Y },
    [SU] =       { Y, N, N, Y, Y, Y, Y, Y },
    [DE] =       { Y, N, N, N, Y, Y, Y, Y },
    [DO] =       { N, N, N, N, N, N, N, N },
    [FA] =       { N, N, N, N, N, N, N, N },
    [EX] =       { N, N, N, N, N, N, N, N },
    [CA] =       { N, N, N, N, N, N, N, N },
};
/* clang-format on */
#undef Y
#undef N

static bool expected_legal(enum task_state from, enum task_state to)
{
    return legal[from][to];
}

static void test_enum_values_stable(void **state)
{
    (void)state;
    /* stored in the database: a renumbering would corrupt every existing store */
    assert_int_equal(TASK_QUEUED, 0);
    assert_int_equal(TASK_DISPATCHED, 1);
    assert_int_equal(TASK_SUBMITTED, 2);
    assert_int_equal(TASK_DELIVERED, 3);
    assert_int_equal(TASK_DONE, 4);
    assert_int_equal(TASK_FAILED, 5);
    assert_int_equal(TASK_EXPIRED, 6);
    assert_int_equal(TASK_CANCELLED, 7);
    assert_int_equal(TASK_STATE__COUNT, 8);
    assert_int_equal(TASK_R_NONE, 0);
    assert_int_equal(TASK_R_BEARER_REJECTED, 1);
    assert_int_equal(TASK_R_DLR_FAILED, 3);
    assert_int_equal(TASK_R_POR_BAD_CC, 8);
    assert_int_equal(TASK_R_NOT_PULLED, 12);
    assert_int_equal(TASK_R_TERMINATED, 15);
    assert_int_equal(TASK_R_STEP_FAILED, 20);
    assert_int_equal(TASK_R_JOB_CANCELLED, 23);
    assert_int_equal(TASK_REASON__COUNT, 24);
    assert_int_equal(TASK_OP_PUSH, 0);
    assert_int_equal(TASK_OP_SCP80, 1);
    assert_int_equal(TASK_OP_APP_LOCK, 4);
    assert_int_equal(TASK_OP_CUSTOM, 11);
    assert_int_equal(TASK_OP_AT_LOCK, 12);
    assert_int_equal(TASK_OP_AT_UNLOCK, 13);
    assert_int_equal(TASK_OP_AT_WIPE, 14);
    assert_int_equal(TASK_OP__COUNT, 15);
    assert_int_equal(TASK_CH_SCP80, 0);
    assert_int_equal(TASK_CH_PUSH, 1);
    assert_int_equal(TASK_CH__COUNT, 2);
    assert_int_equal(TASK_PRIO_MAX, 3);
}

static void test_transition_table(void **state)
{
    (void)state;
    unsigned n_true = 0;
    for (int f = 0; f < TASK_STATE__COUNT; f++) {
        for (int t = 0; t < TASK_STATE__COUNT; t++) {
            bool want = expected_legal((enum task_state)f, (enum task_state)t);
            bool got = task_transition_ok((enum task_state)f, (enum task_state)t);
            if (want != got) {
                fail_msg("transition %s -> %s: expected %s, got %s",
                         task_state_name((enum task_state)f), task_state_name((enum task_state)t),
                         want ? "legal" : "illegal", got ? "legal" : "illegal");
            }
            n_true += got;
        }
    }
    /* 4 main line + 3 retries + 1 PoR-first + 4 x 3 give-ups */
    assert_int_equal(n_true, 20);
}

static void test_transition_spot_checks(void **state)
{
    (void)state;
    /* a few pairs spelled out, so a table typo cannot hide behind the loop above */
    assert_true(task_transition_ok(TASK_QUEUED, TASK_DISPATCHED));
    assert_false(task_transition_ok(TASK_QUEUED, TASK_SUBMITTED));
    assert_false(task_transition_ok(TASK_QUEUED, TASK_DONE));
    assert_false(task_transition_ok(TASK_QUEUED, TASK_QUEUED));
    assert_true(task_transition_ok(TASK_SUBMITTED, TASK_DONE));
    assert_false(task_transition_ok(TASK_DISPATCHED, TASK_DONE));
    assert_false(task_transition_ok(TASK_DISPATCHED, TASK_DELIVERED));
    assert_false(task_transition_ok(TASK_DELIVERED, TASK_SUBMITTED));
    assert_false(task_transition_ok(TASK_SUBMITTED, TASK_DISPATCHED));
    assert_true(task_transition_ok(TASK_DELIVERED, TASK_QUEUED));
    assert_false(task_transition_ok(TASK_DONE, TASK_QUEUED));
    assert_false(task_transition_ok(TASK_FAILED, TASK_QUEUED));
    assert_false(task_transition_ok(TASK_CANCELLED, TASK_DONE));
    assert_false(task_transition_ok(TASK_EXPIRED, TASK_FAILED));
}

static void test_final_states_have_no_exit(void **state)
{
    (void)state;
    for (int f = 0; f < TASK_STATE__COUNT; f++) {
        bool any = false;
        for (int t = 0; t < TASK_STATE__COUNT; t++) {
            any |= task_transition_ok((enum task_state)f, (enum task_state)t);
        }
        if (task_state_final((enum task_state)f)) {
            assert_false(any);
        } else {
            /* every non-final state can at least fail, expire and be cancelled */
            assert_true(any);
            assert_true(task_transition_ok((enum task_state)f, TASK_FAILED));
            assert_true(task_transition_ok((enum task_state)f, TASK_EXPIRED));
            assert_true(task_transition_ok((enum task_state)f, TASK_CANCELLED));
        }
        /* no state is its own successor */
        assert_false(task_transition_ok((enum task_state)f, (enum task_state)f));
    }
}

static void test_transition_out_of_range(void **state)
{
    (void)state;
    const int bad[] = {-1, TASK_STATE__COUNT, TASK_STATE__COUNT + 1, 255, 1 << 20};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (int s = 0; s < TASK_STATE__COUNT; s++) {
            assert_false(task_transition_ok((enum task_state)bad[i], (enum task_state)s));
            assert_false(task_transition_ok((enum task_state)s, (enum task_state)bad[i]));
        }
        assert_false(task_transition_ok((enum task_state)bad[i], (enum task_state)bad[i]));
    }
}

static void test_predicates(void **state)
{
    (void)state;
    static const struct {
        enum task_state s;
        bool final, active;
    } want[] = {
        {TASK_QUEUED, false, false},   {TASK_DISPATCHED, false, true},
        {TASK_SUBMITTED, false, true}, {TASK_DELIVERED, false, true},
        {TASK_DONE, true, false},      {TASK_FAILED, true, false},
        {TASK_EXPIRED, true, false},   {TASK_CANCELLED, true, false},
    };
    assert_int_equal(sizeof(want) / sizeof(want[0]), TASK_STATE__COUNT);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(task_state_final(want[i].s), want[i].final);
        assert_int_equal(task_state_active(want[i].s), want[i].active);
        /* never both */
        assert_false(task_state_final(want[i].s) && task_state_active(want[i].s));
    }
    assert_false(task_state_final(TASK_STATE__COUNT));
    assert_false(task_state_active(TASK_STATE__COUNT));
    assert_false(task_state_final((enum task_state) - 1));
    assert_false(task_state_active((enum task_state) - 1));
    assert_false(task_state_final((enum task_state)100));
}

/* Names of 0..n-1 never NULL, never empty, not "unknown", pairwise distinct; out of range
 * "unknown". */
static void check_names(const char *(*name)(int), int n)
{
    for (int i = 0; i < n; i++) {
        const char *a = name(i);
        assert_non_null(a);
        assert_true(a[0] != '\0');
        assert_string_not_equal(a, "unknown");
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(a, name(j));
        }
    }
    const int bad[] = {-1, n, n + 1, 1000};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *a = name(bad[i]);
        assert_non_null(a);
        assert_string_equal(a, "unknown");
    }
}

static const char *state_name_i(int v)
{
    return task_state_name((enum task_state)v);
}
static const char *reason_name_i(int v)
{
    return task_reason_name((enum task_reason)v);
}
static const char *op_name_i(int v)
{
    return task_op_name((enum task_op)v);
}
static const char *channel_name_i(int v)
{
    return task_channel_name((enum task_channel)v);
}

static void test_names(void **state)
{
    (void)state;
    check_names(state_name_i, TASK_STATE__COUNT);
    check_names(reason_name_i, TASK_REASON__COUNT);
    check_names(op_name_i, TASK_OP__COUNT);
    check_names(channel_name_i, TASK_CH__COUNT);
    /* the spellings the header documents (logs, JSON, metrics) */
    assert_string_equal(task_state_name(TASK_QUEUED), "queued");
    assert_string_equal(task_state_name(TASK_DISPATCHED), "dispatched");
    assert_string_equal(task_state_name(TASK_SUBMITTED), "submitted");
    assert_string_equal(task_state_name(TASK_DELIVERED), "delivered");
    assert_string_equal(task_state_name(TASK_DONE), "done");
    assert_string_equal(task_state_name(TASK_FAILED), "failed");
    assert_string_equal(task_state_name(TASK_EXPIRED), "expired");
    assert_string_equal(task_state_name(TASK_CANCELLED), "cancelled");
    assert_string_equal(task_reason_name(TASK_R_DLR_FAILED), "dlr-failed");
    assert_string_equal(task_reason_name(TASK_R_NONE), "none");
    assert_string_equal(task_reason_name(TASK_R_POR_BAD_CC), "por-bad-cc");
    assert_string_equal(task_reason_name(TASK_R_NOT_PULLED), "not-pulled");
    assert_string_equal(task_reason_name(TASK_R_TERMINATED), "terminated");
    assert_string_equal(task_reason_name(TASK_R_STEP_FAILED), "step-failed");
    assert_string_equal(task_reason_name(TASK_R_JOB_CANCELLED), "job-cancelled");
    assert_string_equal(task_op_name(TASK_OP_APP_LOCK), "app-lock");
    assert_string_equal(task_op_name(TASK_OP_PUSH), "push");
    assert_string_equal(task_op_name(TASK_OP_SCP80), "scp80");
    assert_string_equal(task_op_name(TASK_OP_AT_LOCK), "antitheft-lock");
    assert_string_equal(task_op_name(TASK_OP_AT_UNLOCK), "antitheft-unlock");
    assert_string_equal(task_op_name(TASK_OP_AT_WIPE), "antitheft-wipe");
    /* only the three anti-theft operations get the anti-theft treatment */
    for (int i = 0; i < TASK_OP__COUNT; i++) {
        bool at = i == TASK_OP_AT_LOCK || i == TASK_OP_AT_UNLOCK || i == TASK_OP_AT_WIPE;
        assert_int_equal(task_op_antitheft((enum task_op)i), at);
    }
    assert_false(task_op_antitheft(TASK_OP__COUNT));
    assert_string_equal(task_channel_name(TASK_CH_SCP80), "scp80");
    assert_string_equal(task_channel_name(TASK_CH_PUSH), "push");
}

static void test_parse_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < TASK_STATE__COUNT; i++) {
        enum task_state s = TASK_STATE__COUNT;
        assert_int_equal(task_state_parse(task_state_name((enum task_state)i), &s), 0);
        assert_int_equal(s, i);
    }
    for (int i = 0; i < TASK_OP__COUNT; i++) {
        enum task_op op = TASK_OP__COUNT;
        assert_int_equal(task_op_parse(task_op_name((enum task_op)i), &op), 0);
        assert_int_equal(op, i);
    }
    for (int i = 0; i < TASK_CH__COUNT; i++) {
        enum task_channel ch = TASK_CH__COUNT;
        assert_int_equal(task_channel_parse(task_channel_name((enum task_channel)i), &ch), 0);
        assert_int_equal(ch, i);
    }
    /* "scp80" is both an op and a channel name: each parser maps it into its own enum */
    enum task_op op = TASK_OP__COUNT;
    enum task_channel ch = TASK_CH__COUNT;
    assert_int_equal(task_op_parse("scp80", &op), 0);
    assert_int_equal(op, TASK_OP_SCP80);
    assert_int_equal(task_channel_parse("scp80", &ch), 0);
    assert_int_equal(ch, TASK_CH_SCP80);
}

static void test_parse_bad(void **state)
{
    (void)state;
    const char *bad[] = {
        "",         "unknown",  "QUEUED",  "Queued", "queued ",
        " queued",  "queue",    "queuedx", "done\n", "dlr-failed",
        "app_lock", "APP-LOCK", "scp-80",  "pushx",  "cancelled\t",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum task_state s = TASK_CANCELLED;
        enum task_op op = TASK_OP_CUSTOM;
        enum task_channel ch = TASK_CH_PUSH;
        assert_int_equal(task_state_parse(bad[i], &s), -EINVAL);
        assert_int_equal(task_op_parse(bad[i], &op), -EINVAL);
        assert_int_equal(task_channel_parse(bad[i], &ch), -EINVAL);
        /* out is set only on success */
        assert_int_equal(s, TASK_CANCELLED);
        assert_int_equal(op, TASK_OP_CUSTOM);
        assert_int_equal(ch, TASK_CH_PUSH);
    }
    enum task_state s = TASK_DONE;
    enum task_op op = TASK_OP_PUSH;
    enum task_channel ch = TASK_CH_SCP80;
    assert_int_equal(task_state_parse(NULL, &s), -EINVAL);
    assert_int_equal(task_op_parse(NULL, &op), -EINVAL);
    assert_int_equal(task_channel_parse(NULL, &ch), -EINVAL);
    assert_int_equal(s, TASK_DONE);
    assert_int_equal(op, TASK_OP_PUSH);
    assert_int_equal(ch, TASK_CH_SCP80);
    /* a name of another table is not a name of this one */
    assert_int_equal(task_state_parse("app-lock", &s), -EINVAL);
    assert_int_equal(task_op_parse("queued", &op), -EINVAL);
    assert_int_equal(task_channel_parse("app-download", &ch), -EINVAL);
    assert_int_equal(task_channel_parse("dispatched", &ch), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enum_values_stable),
        cmocka_unit_test(test_transition_table),
        cmocka_unit_test(test_transition_spot_checks),
        cmocka_unit_test(test_final_states_have_no_exit),
        cmocka_unit_test(test_transition_out_of_range),
        cmocka_unit_test(test_predicates),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parse_round_trip),
        cmocka_unit_test(test_parse_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
