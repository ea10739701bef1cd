/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the durable store (queue/store.c) on real SQLite files in a
 * temporary directory: schema creation and the refusal of newer or foreign
 * databases, group commit and rollback (also by closing without a commit),
 * injected faults (SQLITE_FULL through max_page_count, SQLITE_BUSY from a
 * second connection holding the write lock, kill -9 of a writer mid-batch),
 * counters across reopen and at their top, SE registry scans with cursor
 * paging, tasks, parts, history, reports, jobs, and argument checks of every
 * function (STYLE 9).
 */
#include "queue/store.h"
#include "tests/support/tsupport.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

struct fx {
    char dir[64];
    char path[96];
    struct store *s;
    struct ota_err err;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/otagw-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/q.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    assert_int_equal(ts_rmdir_tree(f->dir), 0);
    free(f);
    return 0;
}

static int open_busy(struct fx *f, int busy_ms)
{
    struct store_opts o = {.path = f->path, .durable = false, .busy_ms = busy_ms};
    return store_open(&o, &f->s, &f->err);
}

static void open_ok(struct fx *f)
{
    assert_int_equal(open_busy(f, 0), 0);
    assert_non_null(f->s);
}

static void reopen(struct fx *f)
{
    store_close(f->s);
    f->s = NULL;
    open_ok(f);
}

static void commit_ok(struct fx *f)
{
    assert_int_equal(store_commit(f->s, &f->err), 0);
}

static int64_t put_se(struct fx *f, const char *seid, const char *msisdn, const char *batch)
{
    int64_t id = 0;
    assert_int_equal(store_se_put(f->s, seid, msisdn, batch, &id, &f->err), 0);
    assert_true(id > 0);
    return id;
}

/* What schema 4 added: dropped to turn a fresh store into an older one. */
#define UNDO_V4 "DROP TABLE se_model; DROP TABLE loss_list; ALTER TABLE se DROP COLUMN unbound_ms; "

/* Run sql on a second connection (the test plays another process). */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static struct store_task mktask(int64_t id, int64_t se, enum task_state st)
{
    struct store_task t;
    memset(&t, 0, sizeof(t));
    t.id = id;
    t.se = se;
    t.op = TASK_OP_SCP80;
    t.channel = TASK_CH_SCP80;
    t.prio = 1;
    t.max_attempts = 3;
    t.state = st;
    t.created_ms = 1000 + id;
    t.updated_ms = 1000 + id;
    t.params = "{\"tar\":\"B00000\"}";
    return t;
}

static uint64_t total_tasks(struct fx *f)
{
    uint64_t c[TASK_STATE__COUNT];
    assert_int_equal(store_task_counts(f->s, 0, c, &f->err), 0);
    uint64_t n = 0;
    for (int i = 0; i < TASK_STATE__COUNT; i++) {
        n += c[i];
    }
    return n;
}

/* ---- open, schema, refusal ------------------------------------------------------------ */

static void test_open_fresh(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    assert_int_equal(store_schema_version(f->s), STORE_SCHEMA_VERSION);
    assert_int_equal(store_staged(f->s), 0);
    assert_int_equal(store_commit(f->s, &f->err), 0); /* nothing open: no-op */
    uint64_t commits = 9;
    double secs = -1;
    store_commit_stats(f->s, &commits, &secs);
    assert_int_equal(commits, 0);
    assert_true(secs == 0.0);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM meta WHERE v = 'otagw'"), 1);
    /* Indexes the hot paths rely on. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                      " AND name IN ('se_msisdn', 'se_batch', 'task_open',"
                                      " 'task_se', 'task_job', 'task_part_msg')"),
                     6);
    struct store *s2 = NULL;
    struct store_opts o = {.path = f->path};
    assert_int_equal(store_open(&o, &s2, &f->err), 0); /* a second open of a v1 store */
    store_close(s2);
    store_close(NULL);
}

static void test_bad_opts(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct store_opts o = {.path = NULL};
    assert_int_equal(store_open(NULL, &s, &f->err), -EINVAL);
    assert_int_equal(store_open(&o, &s, &f->err), -EINVAL);
    o.path = "";
    assert_int_equal(store_open(&o, &s, &f->err), -EINVAL);
    o.path = f->path;
    o.cache_kb = -1;
    assert_int_equal(store_open(&o, &s, &f->err), -EINVAL);
    assert_int_equal(f->err.code, OTA_ERR_ARG);
    o.cache_kb = 0;
    assert_int_equal(store_open(&o, NULL, &f->err), -EINVAL);
    o.path = "/nonexistent-dir-otagw/q.db";
    assert_int_equal(store_open(&o, &s, &f->err), -EIO);
    assert_null(s);
}

static void test_reopen_keeps_data(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t id = put_se(f, "SE-A", "8613800000001", "b1");
    commit_ok(f);
    reopen(f);
    struct store_se se;
    assert_int_equal(store_se_find(f->s, "SE-A", &se, &f->err), 0);
    assert_int_equal(se.id, id);
    assert_string_equal(se.msisdn, "8613800000001");
    assert_string_equal(se.batch, "b1");
    assert_int_equal(store_schema_version(f->s), STORE_SCHEMA_VERSION);
}

static void test_newer_version_refused(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    store_close(f->s);
    f->s = NULL;
    raw_exec(f->path, "PRAGMA user_version = 99");
    struct store *s = NULL;
    struct store_opts o = {.path = f->path};
    assert_int_equal(store_open(&o, &s, &f->err), -EINVAL);
    assert_int_equal(f->err.code, OTA_ERR_VERSION);
    assert_null(s);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 99); /* untouched */
}

static void test_foreign_refused(void **state)
{
    struct fx *f = *state;
    raw_exec(f->path, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT);"
                      "INSERT INTO accounts VALUES (1, 'x')");
    struct store *s = NULL;
    struct store_opts o = {.path = f->path};
    assert_int_equal(store_open(&o, &s, &f->err), -EINVAL);
    assert_int_equal(f->err.code, OTA_ERR_VALUE);
    assert_null(s);
    /* Refused before anything changed: not switched to WAL, no tables of ours. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master"), 1);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "delete");
    sqlite3_finalize(q);
    sqlite3_close(db);

    /* user_version set but no marker: also foreign. */
    raw_exec(f->path, "PRAGMA user_version = 1");
    assert_int_equal(store_open(&o, &s, &f->err), -EINVAL);

    /* Not SQLite at all. */
    char p2[128];
    snprintf(p2, sizeof(p2), "%s/junk.db", f->dir);
    FILE *fp = fopen(p2, "w");
    assert_non_null(fp);
    for (int i = 0; i < 256; i++) {
        fputs("this is not a database file ", fp);
    }
    fclose(fp);
    o.path = p2;
    assert_int_equal(store_open(&o, &s, &f->err), -EINVAL);
    assert_null(s);
}

/* ---- group commit ---------------------------------------------------------------------- */

static void test_commit_rollback(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t a = put_se(f, "SE-A", "", "");
    assert_int_equal(store_staged(f->s), 1);
    struct store_task t = mktask(1, a, TASK_QUEUED);
    assert_int_equal(store_task_insert(f->s, &t, &f->err), 0);
    assert_int_equal(store_staged(f->s), 2);
    /* Visible on the same handle before the commit, not to another connection. */
    struct store_se se;
    assert_int_equal(store_se_get(f->s, a, &se, &f->err), 0);
    assert_int_equal(total_tasks(f), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM se"), 0);
    commit_ok(f);
    assert_int_equal(store_staged(f->s), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM se"), 1);
    uint64_t commits = 0;
    double secs = -1;
    store_commit_stats(f->s, &commits, &secs);
    assert_int_equal(commits, 1);
    assert_true(secs >= 0.0);

    put_se(f, "SE-B", "", "");
    t = mktask(2, a, TASK_QUEUED);
    assert_int_equal(store_task_insert(f->s, &t, &f->err), 0);
    store_rollback(f->s);
    assert_int_equal(store_staged(f->s), 0);
    assert_int_equal(store_se_find(f->s, "SE-B", &se, &f->err), -ENOENT);
    assert_int_equal(f->err.code, OTA_ERR_MISSING);
    assert_int_equal(total_tasks(f), 1);
    store_rollback(f->s); /* no batch: no-op */

    /* Closing without a commit drops the batch. */
    put_se(f, "SE-C", "", "");
    reopen(f);
    assert_int_equal(store_se_find(f->s, "SE-C", &se, &f->err), -ENOENT);
    assert_int_equal(store_se_find(f->s, "SE-A", &se, &f->err), 0);
    uint64_t n = 0;
    assert_int_equal(store_se_count(f->s, &n, &f->err), 0);
    assert_int_equal(n, 1);
}

static void test_full_disk(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t a = put_se(f, "SE-A", "", "");
    struct store_task t = mktask(1, a, TASK_QUEUED);
    assert_int_equal(store_task_insert(f->s, &t, &f->err), 0);
    commit_ok(f);
    /* Room for a few big tasks: the batch stages some, then runs out of pages. */
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
             (long long)raw_int(f->path, "PRAGMA page_count") + 12);
    assert_int_equal(store_test_exec(f->s, sql), 0);
    static char big[8192];
    memset(big, 'x', sizeof(big) - 1);
    int rc = 0;
    int64_t id = 2;
    for (; id < 200 && rc == 0; id++) {
        t = mktask(id, a, TASK_QUEUED);
        t.params = big;
        rc = store_task_insert(f->s, &t, &f->err);
    }
    assert_true(id > 4); /* several writes were staged before the failure */
    if (rc == 0) {
        rc = store_commit(f->s, &f->err);
    }
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(f->err.code, OTA_ERR_LIMIT);
    assert_non_null(strstr(f->err.msg, "task_insert") ? f->err.msg : strstr(f->err.msg, "commit"));
    /* The whole batch is gone; the store is as of the last commit. */
    assert_int_equal(store_staged(f->s), 0);
    assert_int_equal(total_tasks(f), 1);
    int64_t max = 0;
    assert_int_equal(store_task_max_id(f->s, &max, &f->err), 0);
    assert_int_equal(max, 1);
    /* Space again: writes work. */
    assert_int_equal(store_test_exec(f->s, "PRAGMA max_page_count = 1000000"), 0);
    t = mktask(2, a, TASK_QUEUED);
    t.params = big;
    assert_int_equal(store_task_insert(f->s, &t, &f->err), 0);
    commit_ok(f);
    reopen(f);
    assert_int_equal(total_tasks(f), 2);
    assert_int_equal(store_test_exec(f->s, "SELECT * FROM no_such_table"), -EIO);
}

/* kill -9 between writes (STYLE 9): committed batches survive, the open one is gone. */
static void test_kill_between_writes(void **state)
{
    struct fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store *s = NULL;
        struct store_opts o = {.path = f->path};
        int64_t id = 0;
        uint64_t c = 0;
        if (store_open(&o, &s, NULL) != 0 || store_se_put(s, "SE-A", "", "", &id, NULL) != 0 ||
            store_cntr_next(s, id, 1, &c, NULL) != 0 || store_commit(s, NULL) != 0 ||
            store_se_put(s, "SE-B", "", "", &id, NULL) != 0 ||
            store_cntr_next(s, 1, 1, &c, NULL) != 0) {
            _exit(3);
        }
        raise(SIGKILL);
        _exit(4);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    open_ok(f);
    struct store_se se;
    assert_int_equal(store_se_find(f->s, "SE-A", &se, &f->err), 0);
    assert_int_equal(store_se_find(f->s, "SE-B", &se, &f->err), -ENOENT);
    uint64_t c = 0;
    assert_int_equal(store_cntr_get(f->s, 1, 1, &c, &f->err), 0);
    assert_int_equal(c, 1);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_busy(void **state)
{
    struct fx *f = *state;
    assert_int_equal(open_busy(f, 100), 0);
    put_se(f, "SE-A", "", "");
    commit_ok(f);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    double t0 = mono_s();
    int64_t id = 0;
    assert_int_equal(store_se_put(f->s, "SE-B", "", "", &id, &f->err), -EBUSY);
    double dt = mono_s() - t0;
    assert_true(dt >= 0.05 && dt < 3.0);
    assert_int_equal(f->err.code, OTA_ERR_STATE);
    assert_non_null(strstr(f->err.msg, "se_put"));
    assert_int_equal(store_staged(f->s), 0);
    uint64_t cntr = 0;
    assert_int_equal(store_cntr_next(f->s, 1, 1, &cntr, &f->err), -EBUSY);
    /* Reads need no write lock. */
    uint64_t n = 0;
    assert_int_equal(store_se_count(f->s, &n, &f->err), 0);
    assert_int_equal(n, 1);

    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    put_se(f, "SE-B", "", "");
    commit_ok(f);
    assert_int_equal(store_se_count(f->s, &n, &f->err), 0);
    assert_int_equal(n, 2);
}

/* ---- SEs and counters ----------------------------------------------------------------- */

static void test_counters(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    uint64_t c = 99;
    assert_int_equal(store_cntr_get(f->s, 5, 1, &c, &f->err), 0);
    assert_int_equal(c, 0);
    for (uint64_t want = 1; want <= 3; want++) {
        assert_int_equal(store_cntr_next(f->s, 5, 1, &c, &f->err), 0);
        assert_int_equal(c, want);
    }
    assert_int_equal(store_cntr_next(f->s, 5, 2, &c, &f->err), 0);
    assert_int_equal(c, 1);
    assert_int_equal(store_cntr_next(f->s, 6, 1, &c, &f->err), 0);
    assert_int_equal(c, 1);
    assert_int_equal(store_staged(f->s), 5);
    commit_ok(f);
    reopen(f);
    assert_int_equal(store_cntr_get(f->s, 5, 1, &c, &f->err), 0);
    assert_int_equal(c, 3);
    assert_int_equal(store_cntr_next(f->s, 5, 1, &c, &f->err), 0);
    assert_int_equal(c, 4);
    store_rollback(f->s); /* an uncommitted reservation is not kept... */
    assert_int_equal(store_cntr_next(f->s, 5, 1, &c, &f->err), 0);
    assert_int_equal(c, 4); /* ...and so never reached the wire */
    commit_ok(f);

    assert_int_equal(store_test_exec(f->s, "UPDATE se_counter SET cntr = 1099511627773"
                                           " WHERE se = 5 AND kvn = 1"),
                     0);
    assert_int_equal(store_cntr_next(f->s, 5, 1, &c, &f->err), 0);
    assert_int_equal(c, 0xFFFFFFFFFEull);
    assert_int_equal(store_cntr_next(f->s, 5, 1, &c, &f->err), 0);
    assert_int_equal(c, 0xFFFFFFFFFFull);
    c = 7;
    assert_int_equal(store_cntr_next(f->s, 5, 1, &c, &f->err), -ERANGE);
    assert_int_equal(f->err.code, OTA_ERR_COUNTER);
    assert_int_equal(c, 7);
    commit_ok(f);
    assert_int_equal(store_cntr_get(f->s, 5, 1, &c, &f->err), 0);
    assert_int_equal(c, 0xFFFFFFFFFFull);
    assert_int_equal(store_cntr_get(f->s, 5, 2, &c, &f->err), 0);
    assert_int_equal(c, 1);
}

static void test_se_put_get(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t a = put_se(f, "89860000000000000001", "8613800000001", "lot-7");
    size_t staged = store_staged(f->s);
    int64_t id = 0;
    assert_int_equal(store_se_put(f->s, "89860000000000000001", "", "", &id, &f->err), -EEXIST);
    assert_int_equal(f->err.code, OTA_ERR_DUPLICATE);
    assert_int_equal(id, a);
    assert_int_equal(store_staged(f->s), staged);
    commit_ok(f);
    assert_int_equal(store_se_put(f->s, "89860000000000000001", "", "", &id, &f->err), -EEXIST);
    assert_int_equal(id, a);
    /* A refusal with nothing staged gives the write lock back at once. */
    assert_int_equal(store_staged(f->s), 0);
    raw_exec(f->path, "BEGIN IMMEDIATE; ROLLBACK");
    uint64_t c = 0;
    assert_int_equal(store_test_exec(f->s, "INSERT INTO se_counter VALUES (9, 1, 1099511627775)"),
                     0);
    assert_int_equal(store_cntr_next(f->s, 9, 1, &c, &f->err), -ERANGE);
    raw_exec(f->path, "BEGIN IMMEDIATE; ROLLBACK");
    assert_int_equal(store_se_set_msisdn(f->s, 999, "1", &f->err), -ENOENT);
    raw_exec(f->path, "BEGIN IMMEDIATE; ROLLBACK");
    uint64_t n = 0;
    assert_int_equal(store_se_count(f->s, &n, &f->err), 0);
    assert_int_equal(n, 1);

    struct store_se se;
    assert_int_equal(store_se_get(f->s, a, &se, &f->err), 0);
    assert_string_equal(se.seid, "89860000000000000001");
    assert_int_equal(store_se_set_msisdn(f->s, a, "8613900000002", &f->err), 0);
    assert_int_equal(store_se_find(f->s, "89860000000000000001", &se, &f->err), 0);
    assert_string_equal(se.msisdn, "8613900000002");
    assert_int_equal(store_se_set_msisdn(f->s, a, "", &f->err), 0);
    assert_int_equal(store_se_get(f->s, a, &se, &f->err), 0);
    assert_string_equal(se.msisdn, "");
    assert_string_equal(se.batch, "lot-7");
    assert_int_equal(store_se_set_msisdn(f->s, a + 100, "1", &f->err), -ENOENT);
    assert_int_equal(store_se_get(f->s, a + 100, &se, &f->err), -ENOENT);

    /* Limits: 64-char SEID, 21-digit MSISDN, 32-char batch are fine; one more is not. */
    char seid[STORE_SEID_MAX + 2];
    memset(seid, 'S', sizeof(seid));
    seid[STORE_SEID_MAX] = '\0';
    char batch[STORE_BATCH_MAX + 2];
    memset(batch, 'b', sizeof(batch));
    batch[STORE_BATCH_MAX] = '\0';
    put_se(f, seid, "123456789012345678901", batch);
    seid[STORE_SEID_MAX] = 'S';
    seid[STORE_SEID_MAX + 1] = '\0';
    assert_int_equal(store_se_put(f->s, seid, "", "", &id, &f->err), -EINVAL);
    batch[STORE_BATCH_MAX] = 'b';
    batch[STORE_BATCH_MAX + 1] = '\0';
    assert_int_equal(store_se_put(f->s, "SE-X", "", batch, &id, &f->err), -EINVAL);
    assert_int_equal(store_se_put(f->s, "SE-X", "1234567890123456789012", "", &id, &f->err),
                     -EINVAL);
}

static void test_se_scan(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    char seid[16];
    int64_t ids[50];
    for (int i = 49; i >= 0; i--) { /* registered out of SEID order */
        snprintf(seid, sizeof(seid), "SE%03d", i);
        ids[i] = put_se(f, seid, "", i % 2 ? "odd" : "even");
    }
    commit_ok(f);

    /* Paging over everything: each SE exactly once, in SEID order. */
    struct store_se out[7];
    char after[STORE_SEID_MAX + 1] = "";
    struct store_se_filter all = {0};
    int seen = 0;
    size_t n = 0;
    for (int page = 0; page < 20; page++) {
        assert_int_equal(store_se_scan(f->s, &all, after, 7, out, &n, &f->err), 0);
        if (n == 0) {
            break;
        }
        for (size_t k = 0; k < n; k++) {
            snprintf(seid, sizeof(seid), "SE%03d", seen);
            assert_string_equal(out[k].seid, seid);
            assert_int_equal(out[k].id, ids[seen]);
            seen++;
        }
        strcpy(after, out[n - 1].seid);
    }
    assert_int_equal(seen, 50);

    /* A range: SE010..SE029 inclusive; "after" below lo starts at lo. */
    struct store_se_filter r = {.seid_lo = "SE010", .seid_hi = "SE029"};
    struct store_se big[40];
    assert_int_equal(store_se_scan(f->s, &r, "SE002", 40, big, &n, &f->err), 0);
    assert_int_equal(n, 20);
    assert_string_equal(big[0].seid, "SE010");
    assert_string_equal(big[19].seid, "SE029");
    assert_int_equal(store_se_scan(f->s, &r, "SE027", 40, big, &n, &f->err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(big[0].seid, "SE028");

    /* A batch inside a range, paged by 3. */
    struct store_se_filter b = {.seid_lo = "SE010", .seid_hi = "SE029", .batch = "odd"};
    after[0] = '\0';
    seen = 0;
    int expect = 11;
    for (int page = 0; page < 20; page++) {
        assert_int_equal(store_se_scan(f->s, &b, after, 3, out, &n, &f->err), 0);
        if (n == 0) {
            break;
        }
        for (size_t k = 0; k < n; k++) {
            snprintf(seid, sizeof(seid), "SE%03d", expect);
            assert_string_equal(out[k].seid, seid);
            assert_string_equal(out[k].batch, "odd");
            expect += 2;
            seen++;
        }
        strcpy(after, out[n - 1].seid);
    }
    assert_int_equal(seen, 10);

    /* Only a batch, open range. */
    struct store_se_filter ev = {.batch = "even"};
    assert_int_equal(store_se_scan(f->s, &ev, "", 40, big, &n, &f->err), 0);
    assert_int_equal(n, 25);
    struct store_se_filter none = {.batch = "nope"};
    assert_int_equal(store_se_scan(f->s, &none, "", 40, big, &n, &f->err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_se_scan(f->s, &all, "", 0, NULL, &n, &f->err), 0);
    assert_int_equal(n, 0);

    n = 77;
    assert_int_equal(store_se_scan(f->s, &all, "bad\nseid", 3, out, &n, &f->err), -EINVAL);
    assert_int_equal(n, 77);
    assert_int_equal(store_se_scan(f->s, &all, NULL, 3, out, &n, &f->err), -EINVAL);
    assert_int_equal(store_se_scan(f->s, NULL, "", 3, out, &n, &f->err), -EINVAL);
    assert_int_equal(store_se_scan(f->s, &all, "", 3, NULL, &n, &f->err), -EINVAL);
    struct store_se_filter badlo = {.seid_lo = ""};
    assert_int_equal(store_se_scan(f->s, &badlo, "", 3, out, &n, &f->err), -EINVAL);
}

static void test_se_by_msisdn(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t a = put_se(f, "SE-A", "8613800000001", "");
    put_se(f, "SE-B", "8613800000002", "");
    int64_t c = put_se(f, "SE-C", "8613800000001", "");
    int64_t d = put_se(f, "SE-D", "8613800000001", "");
    commit_ok(f);
    struct store_se out[4];
    size_t n = 0;
    assert_int_equal(store_se_by_msisdn(f->s, "8613800000001", out, 2, &n, &f->err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id, a);
    assert_int_equal(out[1].id, c);
    assert_int_equal(store_se_by_msisdn(f->s, "8613800000001", out, 4, &n, &f->err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[2].id, d);
    assert_int_equal(store_se_by_msisdn(f->s, "8613800000001", NULL, 0, &n, &f->err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(store_se_by_msisdn(f->s, "8613800000009", out, 4, &n, &f->err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_se_by_msisdn(f->s, "", out, 4, &n, &f->err), -EINVAL);
    assert_int_equal(store_se_by_msisdn(f->s, "86138a", out, 4, &n, &f->err), -EINVAL);
    assert_int_equal(store_se_by_msisdn(f->s, "1", NULL, 4, &n, &f->err), -EINVAL);
}

/* ---- tasks ---------------------------------------------------------------------------- */

struct walk {
    int64_t ids[32];
    size_t n;
    int stop_after; /* 0 = never */
    bool params_null;
};

static int walk_cb(void *arg, const struct store_task *t)
{
    struct walk *w = arg;
    if (t->params || t->result) {
        w->params_null = false;
    }
    if (w->n < 32) {
        w->ids[w->n++] = t->id;
    }
    return w->stop_after && (int)w->n >= w->stop_after ? -42 : 0;
}

static void test_tasks(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    struct store_task t = mktask(7, 3, TASK_QUEUED);
    t.job = 11;
    t.step = 2;
    t.op = TASK_OP_APP_LOCK;
    t.channel = TASK_CH_PUSH;
    t.prio = TASK_PRIO_MAX;
    t.not_before_ms = 5000;
    t.deadline_ms = 9000;
    strcpy(t.reason_text, "first");
    assert_int_equal(store_task_insert(f->s, &t, &f->err), 0);
    struct store_task g;
    assert_int_equal(store_task_get(f->s, 7, &g, &f->err), 0);
    assert_int_equal(g.job, 11);
    assert_int_equal(g.step, 2);
    assert_int_equal(g.se, 3);
    assert_int_equal(g.op, TASK_OP_APP_LOCK);
    assert_int_equal(g.channel, TASK_CH_PUSH);
    assert_int_equal(g.prio, TASK_PRIO_MAX);
    assert_int_equal(g.max_attempts, 3);
    assert_int_equal(g.not_before_ms, 5000);
    assert_int_equal(g.deadline_ms, 9000);
    assert_string_equal(g.reason_text, "first");
    assert_false(g.has_serial);
    assert_string_equal(g.params, t.params);
    assert_null(g.result);
    store_task_fini(&g);
    store_task_fini(&g); /* idempotent */

    /* Duplicate id: refused, the batch keeps what it had. */
    size_t staged = store_staged(f->s);
    assert_int_equal(store_task_insert(f->s, &t, &f->err), -EEXIST);
    assert_int_equal(f->err.code, OTA_ERR_DUPLICATE);
    assert_non_null(strstr(f->err.msg, "task_insert"));
    assert_int_equal(store_staged(f->s), staged);
    commit_ok(f);
    assert_int_equal(total_tasks(f), 1);

    /* Update every mutable field. */
    t.state = TASK_SUBMITTED;
    t.reason = TASK_R_BEARER_TIMEOUT;
    strcpy(t.reason_text, "retry 1");
    t.attempts = 2;
    t.updated_ms = 7777;
    t.not_before_ms = 6000;
    t.wait_until_ms = 8888;
    t.cntr = 0xFFFFFFFFFFull;
    t.kvn = 0x21;
    t.tar[0] = 0xB2;
    t.tar[1] = 0x01;
    t.tar[2] = 0xFF;
    t.has_serial = true;
    for (int i = 0; i < 16; i++) {
        t.serial[i] = (uint8_t)(0xF0 + i);
    }
    t.n_parts = 3;
    t.result = "{\"sw\":\"9000\"}";
    t.op = TASK_OP_PUSH; /* not mutable: ignored */
    assert_int_equal(store_task_update(f->s, &t, &f->err), 0);
    t.result = NULL; /* NULL keeps the stored result */
    assert_int_equal(store_task_update(f->s, &t, &f->err), 0);
    commit_ok(f);
    reopen(f);
    assert_int_equal(store_task_get(f->s, 7, &g, &f->err), 0);
    assert_int_equal(g.state, TASK_SUBMITTED);
    assert_int_equal(g.reason, TASK_R_BEARER_TIMEOUT);
    assert_string_equal(g.reason_text, "retry 1");
    assert_int_equal(g.attempts, 2);
    assert_int_equal(g.updated_ms, 7777);
    assert_int_equal(g.not_before_ms, 6000);
    assert_int_equal(g.wait_until_ms, 8888);
    assert_int_equal(g.cntr, 0xFFFFFFFFFFull);
    assert_int_equal(g.kvn, 0x21);
    assert_memory_equal(g.tar, t.tar, 3);
    assert_true(g.has_serial);
    assert_memory_equal(g.serial, t.serial, 16);
    assert_int_equal(g.n_parts, 3);
    assert_string_equal(g.result, "{\"sw\":\"9000\"}");
    assert_int_equal(g.op, TASK_OP_APP_LOCK);
    assert_int_equal(g.created_ms, 1007);
    store_task_fini(&g);

    t.has_serial = false;
    assert_int_equal(store_task_update(f->s, &t, &f->err), 0);
    assert_int_equal(store_task_get(f->s, 7, &g, &f->err), 0);
    assert_false(g.has_serial);
    store_task_fini(&g);
    t.id = 8;
    assert_int_equal(store_task_update(f->s, &t, &f->err), -ENOENT);
    assert_int_equal(f->err.code, OTA_ERR_MISSING);
    assert_int_equal(store_task_get(f->s, 8, &g, &f->err), -ENOENT);

    assert_int_equal(
        store_task_set_state(f->s, 7, TASK_FAILED, TASK_R_POR_MISSING, "no PoR", 9999, &f->err), 0);
    assert_int_equal(store_task_get(f->s, 7, &g, &f->err), 0);
    assert_int_equal(g.state, TASK_FAILED);
    assert_int_equal(g.reason, TASK_R_POR_MISSING);
    assert_string_equal(g.reason_text, "no PoR");
    assert_int_equal(g.updated_ms, 9999);
    assert_int_equal(g.attempts, 2);
    store_task_fini(&g);
    assert_int_equal(store_task_set_state(f->s, 70, TASK_FAILED, TASK_R_NONE, NULL, 1, &f->err),
                     -ENOENT);
    commit_ok(f);
}

static void test_task_queries(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t max = -1;
    assert_int_equal(store_task_max_id(f->s, &max, &f->err), 0);
    assert_int_equal(max, 0);
    /* id: se, state, job, reason */
    static const struct {
        int64_t id, se;
        enum task_state st;
        int64_t job;
        enum task_reason r;
    } rows[] = {
        {9, 1, TASK_QUEUED, 0, TASK_R_NONE},        {2, 1, TASK_DONE, 4, TASK_R_NONE},
        {5, 2, TASK_SUBMITTED, 4, TASK_R_NONE},     {3, 1, TASK_DISPATCHED, 4, TASK_R_NONE},
        {12, 2, TASK_FAILED, 4, TASK_R_DLR_FAILED}, {13, 2, TASK_FAILED, 0, TASK_R_DLR_FAILED},
        {14, 1, TASK_EXPIRED, 0, TASK_R_DEADLINE},  {15, 1, TASK_CANCELLED, 4, TASK_R_CANCELLED},
        {4, 3, TASK_DELIVERED, 0, TASK_R_NONE},
    };
    for (size_t i = 0; i < OTA_ARRAY_SIZE(rows); i++) {
        struct store_task t = mktask(rows[i].id, rows[i].se, rows[i].st);
        t.job = rows[i].job;
        t.reason = rows[i].r;
        t.result = "{}";
        assert_int_equal(store_task_insert(f->s, &t, &f->err), 0);
    }
    commit_ok(f);
    assert_int_equal(store_task_max_id(f->s, &max, &f->err), 0);
    assert_int_equal(max, 15);

    struct walk w = {.params_null = true};
    assert_int_equal(store_tasks_open(f->s, walk_cb, &w, &f->err), 0);
    assert_int_equal(w.n, 4);
    assert_int_equal(w.ids[0], 3);
    assert_int_equal(w.ids[1], 4);
    assert_int_equal(w.ids[2], 5);
    assert_int_equal(w.ids[3], 9);
    assert_true(w.params_null);
    struct walk stop = {.stop_after = 2, .params_null = true};
    assert_int_equal(store_tasks_open(f->s, walk_cb, &stop, &f->err), -42);
    assert_int_equal(stop.n, 2);
    /* The statement was reset: a second walk starts over. */
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_tasks_open(f->s, walk_cb, &w, &f->err), 0);
    assert_int_equal(w.n, 4);

    memset(&w, 0, sizeof(w));
    assert_int_equal(store_tasks_of_se(f->s, 1, 3, walk_cb, &w, &f->err), 0);
    assert_int_equal(w.n, 3);
    assert_int_equal(w.ids[0], 15);
    assert_int_equal(w.ids[1], 14);
    assert_int_equal(w.ids[2], 9);
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_tasks_of_se(f->s, 3, 100, walk_cb, &w, &f->err), 0);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.ids[0], 4);
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_tasks_of_se(f->s, 99, 100, walk_cb, &w, &f->err), 0);
    assert_int_equal(w.n, 0);

    uint64_t c[TASK_STATE__COUNT];
    memset(c, 0xff, sizeof(c));
    assert_int_equal(store_task_counts(f->s, 0, c, &f->err), 0);
    assert_int_equal(c[TASK_QUEUED], 1);
    assert_int_equal(c[TASK_DISPATCHED], 1);
    assert_int_equal(c[TASK_SUBMITTED], 1);
    assert_int_equal(c[TASK_DELIVERED], 1);
    assert_int_equal(c[TASK_DONE], 1);
    assert_int_equal(c[TASK_FAILED], 2);
    assert_int_equal(c[TASK_EXPIRED], 1);
    assert_int_equal(c[TASK_CANCELLED], 1);
    assert_int_equal(store_task_counts(f->s, 4, c, &f->err), 0);
    assert_int_equal(c[TASK_QUEUED], 0);
    assert_int_equal(c[TASK_DONE], 1);
    assert_int_equal(c[TASK_SUBMITTED], 1);
    assert_int_equal(c[TASK_DISPATCHED], 1);
    assert_int_equal(c[TASK_FAILED], 1);
    assert_int_equal(c[TASK_CANCELLED], 1);
    assert_int_equal(c[TASK_EXPIRED], 0);
    assert_int_equal(store_task_counts(f->s, 77, c, &f->err), 0);
    for (int i = 0; i < TASK_STATE__COUNT; i++) {
        assert_int_equal(c[i], 0);
    }

    uint64_t rc[TASK_REASON__COUNT];
    memset(rc, 0xff, sizeof(rc));
    assert_int_equal(store_reason_counts(f->s, rc, &f->err), 0);
    assert_int_equal(rc[TASK_R_DLR_FAILED], 2);
    assert_int_equal(rc[TASK_R_DEADLINE], 1);
    assert_int_equal(rc[TASK_R_CANCELLED], 1);
    assert_int_equal(rc[TASK_R_NONE], 0); /* the done task is not a failure */
    assert_int_equal(rc[TASK_R_POR_MISSING], 0);
}

/* ---- parts ---------------------------------------------------------------------------- */

struct parts_seen {
    uint8_t part[8];
    char msg[8][STORE_MSGID_MAX];
    enum store_dlr dlr[8];
    size_t n;
};

static int parts_cb(void *arg, uint8_t part, const char *msg_id, enum store_dlr dlr)
{
    struct parts_seen *p = arg;
    if (p->n < 8) {
        p->part[p->n] = part;
        snprintf(p->msg[p->n], sizeof(p->msg[0]), "%s", msg_id);
        p->dlr[p->n] = dlr;
        p->n++;
    }
    return 0;
}

static void test_parts(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    assert_int_equal(store_part_put(f->s, 7, 2, "msg-72", &f->err), 0);
    assert_int_equal(store_part_put(f->s, 7, 1, "msg-71", &f->err), 0);
    assert_int_equal(store_part_put(f->s, 8, 1, "msg-81", &f->err), 0);
    commit_ok(f);
    int64_t task = 0;
    uint8_t part = 0;
    enum store_dlr dlr = STORE_DLR_FAILED;
    assert_int_equal(store_part_find(f->s, "msg-72", &task, &part, &dlr, &f->err), 0);
    assert_int_equal(task, 7);
    assert_int_equal(part, 2);
    assert_int_equal(dlr, STORE_DLR_NONE);
    assert_int_equal(store_part_dlr(f->s, 7, 2, STORE_DLR_DELIVERED, &f->err), 0);
    assert_int_equal(store_part_find(f->s, "msg-72", &task, &part, NULL, &f->err), 0);
    assert_int_equal(store_part_find(f->s, "msg-72", &task, &part, &dlr, &f->err), 0);
    assert_int_equal(dlr, STORE_DLR_DELIVERED);
    assert_int_equal(store_part_dlr(f->s, 7, 3, STORE_DLR_DELIVERED, &f->err), -ENOENT);
    assert_int_equal(store_part_find(f->s, "msg-99", &task, &part, &dlr, &f->err), -ENOENT);

    struct parts_seen p = {0};
    assert_int_equal(store_parts_of(f->s, 7, parts_cb, &p, &f->err), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.part[0], 1);
    assert_string_equal(p.msg[0], "msg-71");
    assert_int_equal(p.part[1], 2);
    assert_int_equal(p.dlr[1], STORE_DLR_DELIVERED);

    /* A new attempt replaces part 2: new id, no report yet; the old id is gone. */
    assert_int_equal(store_part_put(f->s, 7, 2, "msg-72b", &f->err), 0);
    commit_ok(f);
    assert_int_equal(store_part_find(f->s, "msg-72", &task, &part, &dlr, &f->err), -ENOENT);
    memset(&p, 0, sizeof(p));
    assert_int_equal(store_parts_of(f->s, 7, parts_cb, &p, &f->err), 0);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.msg[1], "msg-72b");
    assert_int_equal(p.dlr[1], STORE_DLR_NONE);
    memset(&p, 0, sizeof(p));
    assert_int_equal(store_parts_of(f->s, 99, parts_cb, &p, &f->err), 0);
    assert_int_equal(p.n, 0);

    /* Longest message id accepted, one more refused. */
    char id[STORE_MSGID_MAX + 1];
    memset(id, 'm', sizeof(id));
    id[STORE_MSGID_MAX - 1] = '\0';
    assert_int_equal(store_part_put(f->s, 9, 1, id, &f->err), 0);
    id[STORE_MSGID_MAX - 1] = 'm';
    id[STORE_MSGID_MAX] = '\0';
    assert_int_equal(store_part_put(f->s, 9, 2, id, &f->err), -EINVAL);
}

/* ---- events and reports ----------------------------------------------------------------- */

struct ev_seen {
    int64_t seq[8], task[8], t[8];
    enum task_state from[8], to[8];
    size_t n;
};

static int ev_cb(void *arg, int64_t seq, int64_t task, int64_t se, enum task_state from,
                 enum task_state to, enum task_reason reason, int64_t t_ms)
{
    struct ev_seen *e = arg;
    if (e->n < 8) {
        e->seq[e->n] = seq;
        e->task[e->n] = task;
        e->from[e->n] = from;
        e->to[e->n] = to;
        e->t[e->n] = t_ms;
        e->n++;
    }
    return 0;
}

static void test_events_reports(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    assert_int_equal(
        store_event(f->s, 5, 1, TASK_QUEUED, TASK_DISPATCHED, TASK_R_NONE, 100, NULL, &f->err), 0);
    assert_int_equal(store_event(f->s, 6, 2, TASK_QUEUED, TASK_CANCELLED, TASK_R_CANCELLED, 101,
                                 "by operator", &f->err),
                     0);
    assert_int_equal(
        store_event(f->s, 5, 1, TASK_DISPATCHED, TASK_SUBMITTED, TASK_R_NONE, 102, "", &f->err), 0);
    commit_ok(f);
    struct ev_seen e = {0};
    assert_int_equal(store_events(f->s, ev_cb, &e, &f->err), 0);
    assert_int_equal(e.n, 3);
    assert_true(e.seq[0] < e.seq[1] && e.seq[1] < e.seq[2]);
    assert_int_equal(e.task[1], 6);
    assert_int_equal(e.to[1], TASK_CANCELLED);
    assert_int_equal(e.from[2], TASK_DISPATCHED);
    assert_int_equal(e.t[2], 102);
    /* one task's history only, in order, staged events included; none for another */
    assert_int_equal(
        store_event(f->s, 5, 1, TASK_SUBMITTED, TASK_DONE, TASK_R_NONE, 103, "", &f->err), 0);
    memset(&e, 0, sizeof(e));
    assert_int_equal(store_task_events(f->s, 5, ev_cb, &e, &f->err), 0);
    assert_int_equal(e.n, 3);
    assert_true(e.task[0] == 5 && e.task[1] == 5 && e.task[2] == 5);
    assert_int_equal(e.to[1], TASK_SUBMITTED);
    assert_int_equal(e.t[1], 102);
    assert_int_equal(e.to[2], TASK_DONE);
    memset(&e, 0, sizeof(e));
    assert_int_equal(store_task_events(f->s, 7, ev_cb, &e, &f->err), 0);
    assert_int_equal(e.n, 0);
    assert_int_equal(store_task_events(f->s, 5, NULL, NULL, &f->err), -EINVAL);
    commit_ok(f);
    /* by the index, not a scan of every event */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master"
                                      " WHERE name = 'task_event_task'"),
                     1);

    assert_int_equal(store_report(f->s, STORE_REP_DLR, STORE_DISP_LATE, 5, 200, "x", &f->err), 0);
    assert_int_equal(store_report(f->s, STORE_REP_DLR, STORE_DISP_LATE, 6, 201, NULL, &f->err), 0);
    assert_int_equal(store_report(f->s, STORE_REP_POR, STORE_DISP_UNKNOWN, 0, 202, "tar?", &f->err),
                     0);
    uint64_t c[STORE_REP__COUNT][STORE_DISP__COUNT];
    memset(c, 0xff, sizeof(c));
    assert_int_equal(store_report_counts(f->s, c, &f->err), 0);
    assert_int_equal(c[STORE_REP_DLR][STORE_DISP_LATE], 2);
    assert_int_equal(c[STORE_REP_POR][STORE_DISP_UNKNOWN], 1);
    assert_int_equal(c[STORE_REP_SUBMIT][STORE_DISP_DUPLICATE], 0);
    assert_int_equal(c[STORE_REP_PULL][STORE_DISP_MISMATCHED], 0);
}

/* ---- jobs ----------------------------------------------------------------------------- */

static struct store_job mkjob(int64_t id, enum store_job_state st)
{
    struct store_job j;
    memset(&j, 0, sizeof(j));
    j.id = id;
    j.kind = STORE_JOB_FILTER;
    j.state = st;
    j.prio = 2;
    j.max_attempts = 4;
    j.op = TASK_OP_APP_DELETE;
    j.channel = TASK_CH_SCP80;
    j.rate_per_s = 12.5;
    j.created_ms = 10;
    j.not_before_ms = 20;
    j.deadline_ms = 30;
    strcpy(j.seid_lo, "SE000");
    strcpy(j.seid_hi, "SE999");
    strcpy(j.batch, "lot-1");
    j.params = "{\"aid\":\"A000000151\"}";
    return j;
}

struct jwalk {
    int64_t ids[8];
    size_t n;
};

static int job_cb(void *arg, const struct store_job *j)
{
    struct jwalk *w = arg;
    assert_null(j->params);
    if (w->n < 8) {
        w->ids[w->n++] = j->id;
    }
    return 0;
}

static void test_jobs(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t max = -1;
    assert_int_equal(store_job_max_id(f->s, &max, &f->err), 0);
    assert_int_equal(max, 0);
    struct store_job j = mkjob(3, STORE_JOB_RUNNING);
    assert_int_equal(store_job_insert(f->s, &j, &f->err), 0);
    assert_int_equal(store_job_insert(f->s, &j, &f->err), -EEXIST);
    struct store_job k = mkjob(1, STORE_JOB_PAUSED);
    k.seid_lo[0] = '\0';
    k.seid_hi[0] = '\0';
    k.batch[0] = '\0';
    k.params = NULL;
    assert_int_equal(store_job_insert(f->s, &k, &f->err), 0);
    struct store_job d = mkjob(2, STORE_JOB_DONE);
    assert_int_equal(store_job_insert(f->s, &d, &f->err), 0);
    struct store_job c = mkjob(4, STORE_JOB_CANCELLED);
    assert_int_equal(store_job_insert(f->s, &c, &f->err), 0);
    commit_ok(f);
    reopen(f);

    struct store_job g;
    assert_int_equal(store_job_get(f->s, 3, &g, &f->err), 0);
    assert_int_equal(g.kind, STORE_JOB_FILTER);
    assert_int_equal(g.state, STORE_JOB_RUNNING);
    assert_int_equal(g.prio, 2);
    assert_int_equal(g.max_attempts, 4);
    assert_int_equal(g.op, TASK_OP_APP_DELETE);
    assert_true(g.rate_per_s == 12.5);
    assert_int_equal(g.created_ms, 10);
    assert_int_equal(g.not_before_ms, 20);
    assert_int_equal(g.deadline_ms, 30);
    assert_string_equal(g.seid_lo, "SE000");
    assert_string_equal(g.seid_hi, "SE999");
    assert_string_equal(g.batch, "lot-1");
    assert_string_equal(g.cursor, "");
    assert_false(g.expanded);
    assert_string_equal(g.params, j.params);
    store_job_fini(&g);
    store_job_fini(&g);
    assert_int_equal(store_job_get(f->s, 1, &g, &f->err), 0);
    assert_null(g.params);
    assert_string_equal(g.seid_lo, "");
    store_job_fini(&g);
    assert_int_equal(store_job_get(f->s, 9, &g, &f->err), -ENOENT);

    j.state = STORE_JOB_PAUSED;
    j.rate_per_s = 0;
    strcpy(j.cursor, "SE123");
    j.expanded = true;
    j.n_expanded = 123456789012ull;
    j.prio = 0; /* not mutable */
    assert_int_equal(store_job_update(f->s, &j, &f->err), 0);
    commit_ok(f);
    assert_int_equal(store_job_get(f->s, 3, &g, &f->err), 0);
    assert_int_equal(g.state, STORE_JOB_PAUSED);
    assert_true(g.rate_per_s == 0.0);
    assert_string_equal(g.cursor, "SE123");
    assert_true(g.expanded);
    assert_int_equal(g.n_expanded, 123456789012ull);
    assert_int_equal(g.prio, 2);
    store_job_fini(&g);
    j.id = 99;
    assert_int_equal(store_job_update(f->s, &j, &f->err), -ENOENT);

    assert_int_equal(store_job_max_id(f->s, &max, &f->err), 0);
    assert_int_equal(max, 4);
    struct jwalk w = {0};
    assert_int_equal(store_jobs_open(f->s, job_cb, &w, &f->err), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.ids[0], 1);
    assert_int_equal(w.ids[1], 3);

    /* Members: paging by idx. */
    for (uint64_t i = 0; i < 10; i++) {
        assert_int_equal(store_job_member_add(f->s, 1, i, (int64_t)(100 + i), &f->err), 0);
    }
    assert_int_equal(store_job_member_add(f->s, 2, 0, 555, &f->err), 0);
    assert_int_equal(store_job_member_add(f->s, 1, 3, 999, &f->err), -EEXIST);
    commit_ok(f);
    int64_t ses[4];
    size_t n = 0;
    uint64_t from = 0;
    int64_t want = 100;
    for (int page = 0; page < 10; page++) {
        assert_int_equal(store_job_members(f->s, 1, from, 4, ses, &n, &f->err), 0);
        if (n == 0) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(ses[i], want++);
        }
        from += n;
    }
    assert_int_equal(want, 110);
    assert_int_equal(store_job_members(f->s, 1, 8, 4, ses, &n, &f->err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ses[0], 108);
    assert_int_equal(store_job_members(f->s, 3, 0, 4, ses, &n, &f->err), 0);
    assert_int_equal(n, 0);
}

/* ---- argument checks ------------------------------------------------------------------- */

static int never_cb(void *arg, const struct store_task *t)
{
    fail();
    return 0;
}

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t se = put_se(f, "SE-A", "1", "");
    commit_ok(f);
    int64_t id = 0;
    struct ota_err *e = &f->err;
    struct store *s = f->s;
    char ctl[] = "SE\x01X";
    char hi8[] = "SE\xc3\xa9";

    assert_int_equal(store_se_put(s, NULL, "", "", &id, e), -EINVAL);
    assert_int_equal(e->code, OTA_ERR_ARG);
    assert_int_equal(store_se_put(s, "", "", "", &id, e), -EINVAL);
    assert_int_equal(store_se_put(s, ctl, "", "", &id, e), -EINVAL);
    assert_int_equal(store_se_put(s, hi8, "", "", &id, e), -EINVAL);
    assert_int_equal(store_se_put(s, "SE-B", "+8613", "", &id, e), -EINVAL);
    assert_int_equal(store_se_put(s, "SE-B", NULL, "", &id, e), -EINVAL);
    assert_int_equal(store_se_put(s, "SE-B", "", "b\n", &id, e), -EINVAL);
    assert_int_equal(store_se_put(s, "SE-B", "", NULL, &id, e), -EINVAL);
    assert_int_equal(store_se_put(s, "SE-B", "", "", NULL, e), -EINVAL);
    assert_int_equal(store_se_set_msisdn(s, 0, "1", e), -EINVAL);
    assert_int_equal(store_se_set_msisdn(s, se, "12x", e), -EINVAL);
    struct store_se sev;
    assert_int_equal(store_se_get(s, -1, &sev, e), -EINVAL);
    assert_int_equal(store_se_get(s, se, NULL, e), -EINVAL);
    assert_int_equal(store_se_find(s, "", &sev, e), -EINVAL);
    assert_int_equal(store_se_count(s, NULL, e), -EINVAL);
    uint64_t c = 0;
    assert_int_equal(store_cntr_next(s, 0, 1, &c, e), -EINVAL);
    assert_int_equal(store_cntr_next(s, se, 1, NULL, e), -EINVAL);
    assert_int_equal(store_cntr_get(s, -5, 1, &c, e), -EINVAL);

    struct store_task t = mktask(1, se, TASK_QUEUED);
    struct store_task b = t;
    b.id = 0;
    assert_int_equal(store_task_insert(s, &b, e), -EINVAL);
    b = t;
    b.se = 0;
    assert_int_equal(store_task_insert(s, &b, e), -EINVAL);
    b = t;
    b.job = -1;
    assert_int_equal(store_task_insert(s, &b, e), -EINVAL);
    b = t;
    b.state = TASK_STATE__COUNT;
    assert_int_equal(store_task_insert(s, &b, e), -EINVAL);
    assert_int_equal(e->code, OTA_ERR_VALUE);
    b = t;
    b.reason = (enum task_reason)(-1);
    assert_int_equal(store_task_insert(s, &b, e), -EINVAL);
    b = t;
    b.op = TASK_OP__COUNT;
    assert_int_equal(store_task_insert(s, &b, e), -EINVAL);
    b = t;
    b.channel = TASK_CH__COUNT;
    assert_int_equal(store_task_insert(s, &b, e), -EINVAL);
    b = t;
    b.prio = TASK_PRIO_MAX + 1;
    assert_int_equal(store_task_insert(s, &b, e), -EINVAL);
    b = t;
    b.cntr = 0x10000000000ull;
    assert_int_equal(store_task_insert(s, &b, e), -EINVAL);
    b = t;
    memset(b.reason_text, 'r', sizeof(b.reason_text)); /* unterminated */
    assert_int_equal(store_task_insert(s, &b, e), -EINVAL);
    assert_int_equal(store_task_update(s, &b, e), -EINVAL);
    assert_int_equal(store_task_insert(s, NULL, e), -EINVAL);
    assert_int_equal(store_task_update(s, NULL, e), -EINVAL);
    b = t;
    b.state = (enum task_state)99;
    assert_int_equal(store_task_update(s, &b, e), -EINVAL);
    assert_int_equal(store_task_set_state(s, 1, TASK_STATE__COUNT, TASK_R_NONE, "", 1, e), -EINVAL);
    assert_int_equal(store_task_set_state(s, 1, TASK_DONE, TASK_REASON__COUNT, "", 1, e), -EINVAL);
    assert_int_equal(store_task_set_state(s, 0, TASK_DONE, TASK_R_NONE, "", 1, e), -EINVAL);
    char longtxt[STORE_REASON_TEXT_MAX + 1];
    memset(longtxt, 'x', sizeof(longtxt) - 1);
    longtxt[STORE_REASON_TEXT_MAX] = '\0';
    assert_int_equal(store_task_set_state(s, 1, TASK_DONE, TASK_R_NONE, longtxt, 1, e), -EINVAL);
    struct store_task g;
    assert_int_equal(store_task_get(s, 0, &g, e), -EINVAL);
    assert_int_equal(store_task_get(s, 1, NULL, e), -EINVAL);
    assert_int_equal(store_task_max_id(s, NULL, e), -EINVAL);
    assert_int_equal(store_tasks_open(s, NULL, NULL, e), -EINVAL);
    assert_int_equal(store_tasks_of_se(s, 0, 5, never_cb, NULL, e), -EINVAL);
    uint64_t counts[TASK_STATE__COUNT];
    assert_int_equal(store_task_counts(s, -1, counts, e), -EINVAL);
    assert_int_equal(store_task_counts(s, 0, NULL, e), -EINVAL);
    assert_int_equal(store_reason_counts(s, NULL, e), -EINVAL);

    assert_int_equal(store_part_put(s, 0, 1, "m", e), -EINVAL);
    assert_int_equal(store_part_put(s, 1, 0, "m", e), -EINVAL);
    assert_int_equal(store_part_put(s, 1, 1, "", e), -EINVAL);
    assert_int_equal(store_part_put(s, 1, 1, NULL, e), -EINVAL);
    assert_int_equal(store_part_put(s, 1, 1, "a\tb", e), -EINVAL);
    assert_int_equal(store_part_dlr(s, 1, 1, (enum store_dlr)3, e), -EINVAL);
    assert_int_equal(store_part_dlr(s, 1, 0, STORE_DLR_DELIVERED, e), -EINVAL);
    int64_t tk;
    uint8_t pt;
    assert_int_equal(store_part_find(s, "", &tk, &pt, NULL, e), -EINVAL);
    assert_int_equal(store_part_find(s, "m", NULL, &pt, NULL, e), -EINVAL);
    assert_int_equal(store_parts_of(s, 0, NULL, NULL, e), -EINVAL);

    assert_int_equal(store_event(s, 0, se, TASK_QUEUED, TASK_DONE, TASK_R_NONE, 1, NULL, e),
                     -EINVAL);
    assert_int_equal(store_event(s, 1, -1, TASK_QUEUED, TASK_DONE, TASK_R_NONE, 1, NULL, e),
                     -EINVAL);
    assert_int_equal(store_event(s, 1, se, TASK_STATE__COUNT, TASK_DONE, TASK_R_NONE, 1, NULL, e),
                     -EINVAL);
    assert_int_equal(store_event(s, 1, se, TASK_QUEUED, TASK_STATE__COUNT, TASK_R_NONE, 1, NULL, e),
                     -EINVAL);
    assert_int_equal(store_event(s, 1, se, TASK_QUEUED, TASK_DONE, TASK_REASON__COUNT, 1, NULL, e),
                     -EINVAL);
    assert_int_equal(store_events(s, NULL, NULL, e), -EINVAL);
    assert_int_equal(store_report(s, STORE_REP__COUNT, STORE_DISP_LATE, 0, 1, NULL, e), -EINVAL);
    assert_int_equal(store_report(s, STORE_REP_DLR, STORE_DISP__COUNT, 0, 1, NULL, e), -EINVAL);
    assert_int_equal(store_report(s, STORE_REP_DLR, STORE_DISP_LATE, -1, 1, NULL, e), -EINVAL);
    assert_int_equal(store_report_counts(s, NULL, e), -EINVAL);

    struct store_job j = mkjob(1, STORE_JOB_RUNNING);
    struct store_job bj = j;
    bj.id = 0;
    assert_int_equal(store_job_insert(s, &bj, e), -EINVAL);
    bj = j;
    bj.kind = (enum store_job_kind)3;
    assert_int_equal(store_job_insert(s, &bj, e), -EINVAL);
    bj = j;
    bj.state = (enum store_job_state)4;
    assert_int_equal(store_job_insert(s, &bj, e), -EINVAL);
    assert_int_equal(store_job_update(s, &bj, e), -EINVAL);
    bj = j;
    bj.rate_per_s = -1;
    assert_int_equal(store_job_insert(s, &bj, e), -EINVAL);
    bj = j;
    bj.rate_per_s = NAN;
    assert_int_equal(store_job_update(s, &bj, e), -EINVAL);
    bj = j;
    bj.prio = 9;
    assert_int_equal(store_job_insert(s, &bj, e), -EINVAL);
    bj = j;
    bj.op = TASK_OP__COUNT;
    assert_int_equal(store_job_insert(s, &bj, e), -EINVAL);
    bj = j;
    bj.channel = TASK_CH__COUNT;
    assert_int_equal(store_job_insert(s, &bj, e), -EINVAL);
    bj = j;
    memset(bj.seid_hi, 'h', sizeof(bj.seid_hi));
    assert_int_equal(store_job_insert(s, &bj, e), -EINVAL);
    bj = j;
    memset(bj.batch, 'b', sizeof(bj.batch));
    assert_int_equal(store_job_insert(s, &bj, e), -EINVAL);
    bj = j;
    memset(bj.cursor, 'c', sizeof(bj.cursor));
    assert_int_equal(store_job_insert(s, &bj, e), -EINVAL);
    assert_int_equal(store_job_update(s, &bj, e), -EINVAL);
    bj = j;
    bj.seid_lo[0] = '\n';
    assert_int_equal(store_job_insert(s, &bj, e), -EINVAL);
    assert_int_equal(store_job_insert(s, NULL, e), -EINVAL);
    assert_int_equal(store_job_get(s, 0, NULL, e), -EINVAL);
    assert_int_equal(store_job_max_id(s, NULL, e), -EINVAL);
    assert_int_equal(store_jobs_open(s, NULL, NULL, e), -EINVAL);
    assert_int_equal(store_job_member_add(s, 0, 0, se, e), -EINVAL);
    assert_int_equal(store_job_member_add(s, 1, 0, 0, e), -EINVAL);
    assert_int_equal(store_job_member_add(s, 1, UINT64_MAX, se, e), -EINVAL);
    int64_t ses[2];
    size_t n = 0;
    assert_int_equal(store_job_members(s, 0, 0, 2, ses, &n, e), -EINVAL);
    assert_int_equal(store_job_members(s, 1, 0, 2, NULL, &n, e), -EINVAL);
    assert_int_equal(store_job_members(s, 1, 0, 2, ses, NULL, e), -EINVAL);

    /* Nothing of the above was stored or staged. */
    assert_int_equal(store_staged(s), 0);
    commit_ok(f);
    reopen(f);
    uint64_t count = 0;
    assert_int_equal(store_se_count(f->s, &count, e), 0);
    assert_int_equal(count, 1);
    assert_int_equal(total_tasks(f), 0);
    int64_t max = 0;
    assert_int_equal(store_job_max_id(f->s, &max, e), 0);
    assert_int_equal(max, 0);
    struct ev_seen ev = {0};
    assert_int_equal(store_events(f->s, ev_cb, &ev, e), 0);
    assert_int_equal(ev.n, 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM task_part"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM report"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM se_counter"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM job_member"), 0);
}

/* ---- idempotency keys (schema 2) ----------------------------------------------------- */

static void test_idem_put_get(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    struct ota_err *e = &f->err;
    uint8_t h1[32], h2[32], got[32];
    memset(h1, 0xa5, sizeof(h1));
    memset(h2, 0x5a, sizeof(h2));
    int status = 0;
    char *body = NULL;
    int64_t t = 0;
    assert_int_equal(store_idem_get(f->s, "k1", got, &status, &body, &t, e), -ENOENT);
    assert_int_equal(e->code, OTA_ERR_MISSING);

    assert_int_equal(store_idem_put(f->s, "k1", h1, 201, "{\"id\":7}", 1000, e), 0);
    assert_int_equal(store_staged(f->s), 1);
    /* Staged records are visible to the same connection (a retry within the batch). */
    assert_int_equal(store_idem_get(f->s, "k1", got, &status, &body, &t, e), 0);
    assert_memory_equal(got, h1, 32);
    assert_int_equal(status, 201);
    assert_string_equal(body, "{\"id\":7}");
    assert_int_equal(t, 1000);
    free(body);
    body = NULL;
    /* The same key again: refused, the first record and the batch stay. */
    assert_int_equal(store_idem_put(f->s, "k1", h2, 200, "{}", 2000, e), -EEXIST);
    assert_int_equal(e->code, OTA_ERR_DUPLICATE);
    assert_int_equal(store_staged(f->s), 1);
    commit_ok(f);

    /* Durable across a reopen. */
    reopen(f);
    assert_int_equal(store_idem_get(f->s, "k1", got, &status, &body, NULL, e), 0);
    assert_memory_equal(got, h1, 32);
    assert_int_equal(status, 201);
    assert_string_equal(body, "{\"id\":7}");
    free(body);
    body = NULL;
    assert_int_equal(store_idem_put(f->s, "k1", h2, 200, "{}", 2000, e), -EEXIST);
    assert_int_equal(store_staged(f->s), 0); /* refused first write gives the lock back */

    /* A rolled-back record is gone. */
    assert_int_equal(store_idem_put(f->s, "k2", h2, 200, "[]", 3000, e), 0);
    store_rollback(f->s);
    assert_int_equal(store_idem_get(f->s, "k2", got, &status, &body, NULL, e), -ENOENT);

    /* Prune by age. */
    assert_int_equal(store_idem_put(f->s, "k3", h2, 200, "[]", 5000, e), 0);
    commit_ok(f);
    uint64_t n = 9;
    assert_int_equal(store_idem_prune(f->s, 4000, &n, e), 0);
    assert_int_equal(n, 1);
    commit_ok(f);
    assert_int_equal(store_idem_get(f->s, "k1", got, &status, &body, NULL, e), -ENOENT);
    assert_int_equal(store_idem_get(f->s, "k3", got, &status, &body, NULL, e), 0);
    free(body);
    assert_int_equal(store_idem_prune(f->s, 4000, &n, e), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_staged(f->s), 0);
}

static void test_idem_bad_input(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    struct ota_err *e = &f->err;
    uint8_t h[32] = {0};
    int status = 0;
    char *body = NULL;
    char big[STORE_IDEM_KEY_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(store_idem_put(f->s, "", h, 200, "{}", 1, e), -EINVAL);
    assert_int_equal(store_idem_put(f->s, NULL, h, 200, "{}", 1, e), -EINVAL);
    assert_int_equal(store_idem_put(f->s, big, h, 200, "{}", 1, e), -EINVAL);
    big[STORE_IDEM_KEY_MAX] = '\0'; /* exactly the limit is fine */
    assert_int_equal(store_idem_put(f->s, big, h, 200, "{}", 1, e), 0);
    store_rollback(f->s);
    assert_int_equal(store_idem_put(f->s, "a\nb", h, 200, "{}", 1, e), -EINVAL);
    assert_int_equal(store_idem_put(f->s, "k", NULL, 200, "{}", 1, e), -EINVAL);
    assert_int_equal(store_idem_put(f->s, "k", h, 200, NULL, 1, e), -EINVAL);
    assert_int_equal(store_idem_put(f->s, "k", h, 99, "{}", 1, e), -EINVAL);
    assert_int_equal(store_idem_put(f->s, "k", h, 600, "{}", 1, e), -EINVAL);
    assert_int_equal(store_idem_get(f->s, "", h, &status, &body, NULL, e), -EINVAL);
    assert_int_equal(store_idem_get(f->s, "k", NULL, &status, &body, NULL, e), -EINVAL);
    assert_int_equal(store_idem_get(f->s, "k", h, NULL, &body, NULL, e), -EINVAL);
    assert_int_equal(store_idem_get(f->s, "k", h, &status, NULL, NULL, e), -EINVAL);
    assert_int_equal(store_staged(f->s), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM idem"), 0);
}

/* A version 1 database (no idem table) is migrated to 2 at open, its data kept. */
static void test_migrate_v1_to_v2(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t id = 0;
    assert_int_equal(store_se_put(f->s, "SE-MIG", "8613800000001", "", &id, &f->err), 0);
    commit_ok(f);
    store_close(f->s);
    f->s = NULL;
    /* Make it what otagw 1 left: step 1 only. */
    raw_exec(f->path, UNDO_V4 "DROP TABLE idem; PRAGMA user_version = 1");
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
    open_ok(f);
    assert_int_equal(store_schema_version(f->s), STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    struct store_se se;
    assert_int_equal(store_se_find(f->s, "SE-MIG", &se, &f->err), 0);
    assert_int_equal(se.id, id);
    uint8_t h[32] = {1};
    assert_int_equal(store_idem_put(f->s, "after-migration", h, 201, "{}", 1, &f->err), 0);
    commit_ok(f);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM idem"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                      " AND name = 'idem_t'"),
                     1);
}

/* The task listing of the business API: filters, order, paging, the index each form uses. */
static void test_tasks_list(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    struct ota_err *e = &f->err;
    static const struct {
        int64_t id, se;
        enum task_state st;
        int64_t job;
    } rows[] = {
        {1, 1, TASK_DONE, 0},   {2, 2, TASK_QUEUED, 7},    {3, 1, TASK_QUEUED, 7},
        {4, 1, TASK_FAILED, 0}, {5, 2, TASK_CANCELLED, 7}, {6, 1, TASK_QUEUED, 0},
    };
    for (size_t i = 0; i < OTA_ARRAY_SIZE(rows); i++) {
        struct store_task t = mktask(rows[i].id, rows[i].se, rows[i].st);
        t.job = rows[i].job;
        assert_int_equal(store_task_insert(f->s, &t, e), 0);
    }
    commit_ok(f);
    struct store_task_filter all = {.state = -1};
    struct walk w = {.params_null = true};
    assert_int_equal(store_tasks_list(f->s, &all, 10, walk_cb, &w, e), 0);
    assert_int_equal(w.n, 6);
    assert_int_equal(w.ids[0], 6); /* newest first */
    assert_int_equal(w.ids[5], 1);
    assert_true(w.params_null);

    /* paging: 2 at a time with before_id */
    struct store_task_filter pg = {.state = -1};
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_tasks_list(f->s, &pg, 2, walk_cb, &w, e), 0);
    assert_int_equal(w.n, 2);
    pg.before_id = w.ids[1];
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_tasks_list(f->s, &pg, 2, walk_cb, &w, e), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.ids[0], 4);
    assert_int_equal(w.ids[1], 3);

    /* by job (+ state), by SE (+ job), by state, by creation time */
    struct store_task_filter fj = {.job = 7, .state = TASK_QUEUED};
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_tasks_list(f->s, &fj, 10, walk_cb, &w, e), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.ids[0], 3);
    assert_int_equal(w.ids[1], 2);
    struct store_task_filter fs = {.se = 2, .job = 7, .state = -1};
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_tasks_list(f->s, &fs, 10, walk_cb, &w, e), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.ids[0], 5);
    struct store_task_filter fse = {.se = 1, .state = TASK_QUEUED};
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_tasks_list(f->s, &fse, 10, walk_cb, &w, e), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.ids[0], 6);
    assert_int_equal(w.ids[1], 3);
    struct store_task_filter ft = {.state = -1, .created_from = 1002, .created_to = 1004};
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_tasks_list(f->s, &ft, 10, walk_cb, &w, e), 0);
    assert_int_equal(w.n, 3);
    assert_int_equal(w.ids[0], 4);
    assert_int_equal(w.ids[2], 2);
    struct store_task_filter none = {.job = 99, .state = -1};
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_tasks_list(f->s, &none, 10, walk_cb, &w, e), 0);
    assert_int_equal(w.n, 0);
    /* the callback can stop the walk */
    struct walk stop = {.stop_after = 1};
    assert_int_equal(store_tasks_list(f->s, &all, 10, walk_cb, &stop, e), -42);

    /* bad arguments */
    struct store_task_filter bad = {.state = TASK_STATE__COUNT};
    assert_int_equal(store_tasks_list(f->s, &bad, 10, walk_cb, &w, e), -EINVAL);
    bad.state = -2;
    assert_int_equal(store_tasks_list(f->s, &bad, 10, walk_cb, &w, e), -EINVAL);
    struct store_task_filter neg = {.job = -1, .state = -1};
    assert_int_equal(store_tasks_list(f->s, &neg, 10, walk_cb, &w, e), -EINVAL);
    assert_int_equal(store_tasks_list(f->s, NULL, 10, walk_cb, &w, e), -EINVAL);
    assert_int_equal(store_tasks_list(f->s, &all, 10, NULL, &w, e), -EINVAL);
    assert_int_equal(store_staged(f->s), 0);
}

/* ---- result callback outbox (schema 3) ---- */

struct cb_walk {
    int64_t ids[16];
    size_t n;
    int stop_at; /* return -ECANCELED on this call (1-based), 0 = never */
};

static int cb_walk_cb(void *arg, const struct store_cb *c)
{
    struct cb_walk *w = arg;
    assert_non_null(c->url);
    assert_non_null(c->body);
    w->ids[w->n++] = c->task;
    return w->stop_at && (int)w->n == w->stop_at ? -ECANCELED : 0;
}

static int cb_task_cb(void *arg, int64_t task)
{
    struct cb_walk *w = arg;
    w->ids[w->n++] = task;
    return 0;
}

static void test_cb_outbox(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    struct ota_err *e = &f->err;
    int64_t id1 = 0, id2 = 0;
    assert_int_equal(store_cb_put(f->s, 11, "http://a/x", "{\"task\":{}}", 5000, &id1, e), 0);
    assert_int_equal(store_cb_put(f->s, 12, "http://b/y", "{}", 6000, &id2, e), 0);
    assert_true(id1 > 0 && id2 > id1);
    /* one row per task */
    assert_int_equal(store_cb_put(f->s, 11, "http://c/z", "{}", 7000, NULL, e), -EEXIST);
    commit_ok(f);
    reopen(f);
    struct store_cb c;
    assert_int_equal(store_cb_get_task(f->s, 11, &c, e), 0);
    assert_int_equal(c.id, id1);
    assert_string_equal(c.url, "http://a/x");
    assert_string_equal(c.body, "{\"task\":{}}");
    assert_int_equal(c.state, STORE_CB_PENDING);
    assert_int_equal(c.attempts, 0);
    assert_int_equal(c.next_at_ms, 5000);
    assert_int_equal(c.created_ms, 5000);
    store_cb_fini(&c);
    assert_int_equal(store_cb_get_task(f->s, 99, &c, e), -ENOENT);

    /* due: by next_at, only pending, up to max */
    struct cb_walk w = {0};
    assert_int_equal(store_cb_due(f->s, 4999, 10, cb_walk_cb, &w, e), 0);
    assert_int_equal(w.n, 0);
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_cb_due(f->s, 10000, 10, cb_walk_cb, &w, e), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.ids[0], 11);
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_cb_due(f->s, 10000, 1, cb_walk_cb, &w, e), 0);
    assert_int_equal(w.n, 1);
    memset(&w, 0, sizeof(w));
    w.stop_at = 1;
    assert_int_equal(store_cb_due(f->s, 10000, 10, cb_walk_cb, &w, e), -ECANCELED);
    assert_int_equal(store_cb_set(f->s, id1, STORE_CB_PENDING, 1, 20000, e), 0);
    assert_int_equal(store_cb_set(f->s, id2, STORE_CB_DONE, 1, 0, e), 0);
    commit_ok(f);
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_cb_due(f->s, 10000, 10, cb_walk_cb, &w, e), 0);
    assert_int_equal(w.n, 0);
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_cb_due(f->s, 20000, 10, cb_walk_cb, &w, e), 0);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.ids[0], 11);
    assert_int_equal(store_cb_get_task(f->s, 11, &c, e), 0);
    assert_int_equal(c.attempts, 1);
    assert_int_equal(c.next_at_ms, 20000);
    store_cb_fini(&c);

    /* bad input changes nothing */
    assert_int_equal(store_cb_set(f->s, 12345, STORE_CB_DONE, 1, 0, e), -ENOENT);
    assert_int_equal(store_staged(f->s), 0);
    assert_int_equal(store_cb_set(f->s, id1, (enum store_cb_state)7, 1, 0, e), -EINVAL);
    assert_int_equal(store_cb_put(f->s, 0, "http://a/", "{}", 1, NULL, e), -EINVAL);
    assert_int_equal(store_cb_put(f->s, 13, "", "{}", 1, NULL, e), -EINVAL);
    assert_int_equal(store_cb_put(f->s, 13, "http://a/\n", "{}", 1, NULL, e), -EINVAL);
    assert_int_equal(store_cb_put(f->s, 13, "http://a/", NULL, 1, NULL, e), -EINVAL);
    assert_int_equal(store_staged(f->s), 0);
    int64_t mark = 0;
    assert_int_equal(store_cb_watermark(f->s, &mark, e), 0);
    assert_int_equal(mark, 6000);
}

/* The start-up catch-up: final tasks with a callback_url and no row, updated since a time. */
static void test_cb_unstaged(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    struct ota_err *e = &f->err;
    int64_t mark = -1;
    assert_int_equal(store_cb_watermark(f->s, &mark, e), 0);
    assert_int_equal(mark, 0);
    static const struct {
        int64_t id;
        enum task_state st;
        const char *params;
    } rows[] = {
        {1, TASK_DONE, "{\"callback_url\":\"http://a/\"}"},    /* has a row */
        {2, TASK_FAILED, "{\"callback_url\":\"http://a/\"}"},  /* lost: found */
        {3, TASK_QUEUED, "{\"callback_url\":\"http://a/\"}"},  /* not final */
        {4, TASK_CANCELLED, "{}"},                             /* no url */
        {5, TASK_EXPIRED, "{\"callback_url\":\"http://a/\"}"}, /* lost: found */
    };
    for (size_t i = 0; i < OTA_ARRAY_SIZE(rows); i++) {
        struct store_task t = mktask(rows[i].id, 1, rows[i].st);
        t.params = (char *)rows[i].params;
        assert_int_equal(store_task_insert(f->s, &t, e), 0);
    }
    assert_int_equal(store_cb_put(f->s, 1, "http://a/", "{}", 9000, NULL, e), 0);
    commit_ok(f);
    struct cb_walk w = {0};
    assert_int_equal(store_cb_unstaged(f->s, 0, cb_task_cb, &w, e), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.ids[0], 2);
    assert_int_equal(w.ids[1], 5);
    /* since: updated_ms is 1000 + id */
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_cb_unstaged(f->s, 1003, cb_task_cb, &w, e), 0);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.ids[0], 5);
    /* the walk runs on the index of final tasks by update time */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                      " AND name IN ('task_final_upd', 'cb_outbox_due')"),
                     2);
}

/* A store of schema 2 (before the outbox) gets it at open, data kept. */
static void test_migrate_v2_to_v3(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t id = put_se(f, "SE-MIG3", "8613800000003", "");
    struct store_task t = mktask(1, id, TASK_DONE);
    assert_int_equal(store_task_insert(f->s, &t, &f->err), 0);
    commit_ok(f);
    store_close(f->s);
    f->s = NULL;
    raw_exec(f->path,
             UNDO_V4 "DROP TABLE cb_outbox; DROP INDEX task_final_upd; PRAGMA user_version = 2");
    open_ok(f);
    assert_int_equal(store_schema_version(f->s), STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    struct store_se se;
    assert_int_equal(store_se_find(f->s, "SE-MIG3", &se, &f->err), 0);
    assert_int_equal(store_cb_put(f->s, 1, "http://a/", "{}", 1, NULL, &f->err), 0);
    commit_ok(f);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM cb_outbox"), 1);
}

/* A version 3 database (no binding state, loss list or models) migrates to 4, its data kept. */
static void test_migrate_v3_to_v4(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t id = put_se(f, "SE-MIG4", "8613800000004", "b4");
    struct store_task t = mktask(1, id, TASK_QUEUED);
    assert_int_equal(store_task_insert(f->s, &t, &f->err), 0);
    commit_ok(f);
    store_close(f->s);
    f->s = NULL;
    raw_exec(f->path, UNDO_V4 "PRAGMA user_version = 3");
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'se_model'"),
                     0);
    open_ok(f);
    assert_int_equal(store_schema_version(f->s), STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    struct store_se se;
    assert_int_equal(store_se_find(f->s, "SE-MIG4", &se, &f->err), 0);
    assert_string_equal(se.msisdn, "8613800000004");
    assert_string_equal(se.batch, "b4");
    assert_int_equal(se.unbound_ms, 0); /* existing SEs are bound */
    assert_int_equal(store_se_admit(f->s, &se, &f->err), 0);
    struct store_task g;
    assert_int_equal(store_task_get(f->s, 1, &g, &f->err), 0);
    store_task_fini(&g);
    assert_int_equal(store_se_model_put(f->s, id, "{\"apps\":[]}", 5, &f->err), 0);
    int64_t lid = 0;
    assert_int_equal(store_loss_put(f->s, STORE_LOSS_SEID, "SE-X", "", 5, &lid, &f->err), 0);
    commit_ok(f);
    reopen(f);
    char *js = NULL;
    assert_int_equal(store_se_model_get(f->s, id, &js, NULL, &f->err), 0);
    assert_string_equal(js, "{\"apps\":[]}");
    free(js);
}

/*
 * A version 4 database: platform tasks and jobs stored at priority 3 leave
 * the anti-theft lane (down to 2) when it migrates; anti-theft tasks keep 3.
 */
static void test_migrate_v4_to_v5_prio(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t id = put_se(f, "SE-MIG5", "8613800000005", "b5");
    struct store_task plat = mktask(1, id, TASK_QUEUED);
    plat.prio = 3;
    struct store_task lock = mktask(2, id, TASK_QUEUED);
    lock.op = TASK_OP_AT_LOCK;
    lock.prio = 3;
    struct store_task wipe = mktask(3, id, TASK_DONE);
    wipe.op = TASK_OP_AT_WIPE;
    wipe.prio = 3;
    struct store_task low = mktask(4, id, TASK_QUEUED);
    low.prio = 1;
    assert_int_equal(store_task_insert(f->s, &plat, &f->err), 0);
    assert_int_equal(store_task_insert(f->s, &lock, &f->err), 0);
    assert_int_equal(store_task_insert(f->s, &wipe, &f->err), 0);
    assert_int_equal(store_task_insert(f->s, &low, &f->err), 0);
    struct store_job j3 = mkjob(7, STORE_JOB_RUNNING);
    j3.prio = 3;
    struct store_job j1 = mkjob(8, STORE_JOB_RUNNING);
    j1.prio = 1;
    assert_int_equal(store_job_insert(f->s, &j3, &f->err), 0);
    assert_int_equal(store_job_insert(f->s, &j1, &f->err), 0);
    commit_ok(f);
    store_close(f->s);
    f->s = NULL;
    raw_exec(f->path, "DROP INDEX task_event_task; PRAGMA user_version = 4");
    open_ok(f);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    static const struct {
        int64_t id;
        int prio;
    } want[] = {{1, 2}, {2, 3}, {3, 3}, {4, 1}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct store_task g;
        assert_int_equal(store_task_get(f->s, want[i].id, &g, &f->err), 0);
        if ((int)g.prio != want[i].prio) {
            fail_msg("task %lld: prio %d, expected %d", (long long)want[i].id, (int)g.prio,
                     want[i].prio);
        }
        store_task_fini(&g);
    }
    struct store_job g;
    assert_int_equal(store_job_get(f->s, 7, &g, &f->err), 0);
    assert_int_equal(g.prio, 2);
    store_job_fini(&g);
    assert_int_equal(store_job_get(f->s, 8, &g, &f->err), 0);
    assert_int_equal(g.prio, 1);
    store_job_fini(&g);
    /* a store already at 5 is not touched again: a new prio-3 row stays */
    struct store_task later = mktask(5, id, TASK_QUEUED);
    later.prio = 3;
    assert_int_equal(store_task_insert(f->s, &later, &f->err), 0);
    commit_ok(f);
    reopen(f);
    struct store_task t5;
    assert_int_equal(store_task_get(f->s, 5, &t5, &f->err), 0);
    assert_int_equal(t5.prio, 3);
    store_task_fini(&t5);
}

/* Unbind / bind (spec 5.5.2) and what store_se_admit says. */
static void test_se_binding(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t a = put_se(f, "SE-BA", "8613800000001", "");
    int64_t b = put_se(f, "SE-BB", "8613800000001", ""); /* an MSISDN holds several SEs */
    commit_ok(f);
    assert_int_equal(store_se_unbind(f->s, a, 1234, &f->err), 0);
    commit_ok(f);
    struct store_se se;
    assert_int_equal(store_se_get(f->s, a, &se, &f->err), 0);
    assert_string_equal(se.msisdn, "");
    assert_int_equal(se.unbound_ms, 1234);
    assert_int_equal(store_se_admit(f->s, &se, &f->err), -ENOLINK);
    assert_int_equal(f->err.code, OTA_ERR_STATE);
    /* the other SE of that MSISDN stays bound */
    size_t n = 0;
    struct store_se by[4];
    assert_int_equal(store_se_by_msisdn(f->s, "8613800000001", by, 4, &n, &f->err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(by[0].id, b);
    /* an unbound SE is skipped by batch scans */
    struct store_se_filter flt = {0};
    struct store_se out[4];
    assert_int_equal(store_se_scan(f->s, &flt, "", 4, out, &n, &f->err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].seid, "SE-BB");
    /* bound again with another MSISDN */
    assert_int_equal(store_se_bind(f->s, a, "8613900000002", &f->err), 0);
    commit_ok(f);
    assert_int_equal(store_se_get(f->s, a, &se, &f->err), 0);
    assert_string_equal(se.msisdn, "8613900000002");
    assert_int_equal(se.unbound_ms, 0);
    assert_int_equal(store_se_admit(f->s, &se, &f->err), 0);
    assert_int_equal(store_se_scan(f->s, &flt, "", 4, out, &n, &f->err), 0);
    assert_int_equal(n, 2);
    /* bad input changes nothing */
    assert_int_equal(store_se_unbind(f->s, 0, 1, &f->err), -EINVAL);
    assert_int_equal(store_se_unbind(f->s, a, 0, &f->err), -EINVAL);
    assert_int_equal(store_se_unbind(f->s, 999, 1, &f->err), -ENOENT);
    assert_int_equal(store_se_bind(f->s, a, "", &f->err), -EINVAL);
    assert_int_equal(store_se_bind(f->s, a, "12ab", &f->err), -EINVAL);
    assert_int_equal(store_se_bind(f->s, 999, "1", &f->err), -ENOENT);
    assert_int_equal(store_se_admit(f->s, NULL, &f->err), -EINVAL);
    assert_int_equal(store_staged(f->s), 0);
    assert_int_equal(store_se_get(f->s, a, &se, &f->err), 0);
    assert_string_equal(se.msisdn, "8613900000002");
}

static int collect_loss(void *arg, const struct store_loss *l)
{
    int64_t *ids = arg;
    for (int i = 0; i < 8; i++) {
        if (ids[i] == 0) {
            ids[i] = l->id;
            return 0;
        }
    }
    return -ENOSPC;
}

static void test_loss_list(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t a = put_se(f, "SE-LA", "8613800000001", "");
    int64_t b = put_se(f, "SE-LB", "8613800000002", "");
    (void)put_se(f, "SE-LC", "8613800000003", "");
    commit_ok(f);
    int64_t l1 = 0, l2 = 0, dup = 0;
    assert_int_equal(store_loss_put(f->s, STORE_LOSS_SEID, "SE-LA", "stolen", 10, &l1, &f->err), 0);
    assert_int_equal(
        store_loss_put(f->s, STORE_LOSS_MSISDN, "8613800000002", "lost phone", 11, &l2, &f->err),
        0);
    commit_ok(f);
    assert_true(l1 > 0 && l2 > l1);
    /* the same entry twice: -EEXIST with the existing id, nothing staged */
    assert_int_equal(store_loss_put(f->s, STORE_LOSS_SEID, "SE-LA", "again", 12, &dup, &f->err),
                     -EEXIST);
    assert_int_equal(dup, l1);
    assert_int_equal(store_staged(f->s), 0);
    /* the same text under the other kind is another entry */
    int64_t l3 = 0;
    assert_int_equal(store_loss_put(f->s, STORE_LOSS_SEID, "8613800000002", "", 13, &l3, &f->err),
                     0);
    assert_int_equal(store_loss_del(f->s, l3, &f->err), 0);
    commit_ok(f);

    struct store_se se;
    assert_int_equal(store_se_get(f->s, a, &se, &f->err), 0);
    assert_int_equal(store_se_admit(f->s, &se, &f->err), -EACCES);
    assert_non_null(strstr(f->err.msg, "loss list"));
    assert_int_equal(store_se_get(f->s, b, &se, &f->err), 0);
    assert_int_equal(store_se_admit(f->s, &se, &f->err), -EACCES); /* by its MSISDN */
    struct store_loss l;
    assert_int_equal(store_loss_match(f->s, "SE-LC", "8613800000002", &l, &f->err), 0);
    assert_int_equal(l.id, l2);
    assert_int_equal(l.kind, STORE_LOSS_MSISDN);
    assert_string_equal(l.reason, "lost phone");
    assert_int_equal(l.created_ms, 11);
    assert_int_equal(store_loss_match(f->s, "SE-LC", "8613800000003", &l, &f->err), -ENOENT);
    assert_int_equal(store_loss_match(f->s, NULL, "", &l, &f->err), -ENOENT);
    assert_int_equal(store_loss_match(f->s, "bad\tseid", NULL, &l, &f->err), -EINVAL);
    /* scans skip both listed SEs */
    struct store_se_filter flt = {0};
    struct store_se out[4];
    size_t n = 0;
    assert_int_equal(store_se_scan(f->s, &flt, "", 4, out, &n, &f->err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].seid, "SE-LC");

    int64_t ids[8] = {0};
    assert_int_equal(store_loss_list(f->s, 0, 10, collect_loss, ids, &f->err), 0);
    assert_int_equal(ids[0], l1);
    assert_int_equal(ids[1], l2);
    assert_int_equal(ids[2], 0);
    memset(ids, 0, sizeof(ids));
    assert_int_equal(store_loss_list(f->s, l1, 10, collect_loss, ids, &f->err), 0);
    assert_int_equal(ids[0], l2);
    assert_int_equal(ids[1], 0);
    memset(ids, 0, sizeof(ids));
    assert_int_equal(store_loss_list(f->s, 0, 1, collect_loss, ids, &f->err), 0);
    assert_int_equal(ids[1], 0);

    assert_int_equal(store_loss_get(f->s, l1, &l, &f->err), 0);
    assert_string_equal(l.value, "SE-LA");
    assert_int_equal(store_loss_del(f->s, l1, &f->err), 0);
    commit_ok(f);
    assert_int_equal(store_loss_get(f->s, l1, &l, &f->err), -ENOENT);
    assert_int_equal(store_loss_del(f->s, l1, &f->err), -ENOENT);
    assert_int_equal(store_se_get(f->s, a, &se, &f->err), 0);
    assert_int_equal(store_se_admit(f->s, &se, &f->err), 0);

    /* bad input: nothing staged */
    int64_t id = 0;
    assert_int_equal(store_loss_put(f->s, (enum store_loss_kind)7, "x", "", 1, &id, &f->err),
                     -EINVAL);
    assert_int_equal(f->err.code, OTA_ERR_VALUE);
    assert_int_equal(store_loss_put(f->s, STORE_LOSS_MSISDN, "86x", "", 1, &id, &f->err), -EINVAL);
    assert_int_equal(store_loss_put(f->s, STORE_LOSS_SEID, "", "", 1, &id, &f->err), -EINVAL);
    assert_int_equal(store_loss_put(f->s, STORE_LOSS_SEID, "SE", "bad\nreason", 1, &id, &f->err),
                     -EINVAL);
    assert_int_equal(store_loss_put(f->s, STORE_LOSS_SEID, "SE", "", 1, NULL, &f->err), -EINVAL);
    assert_int_equal(store_loss_del(f->s, 0, &f->err), -EINVAL);
    assert_int_equal(store_loss_get(f->s, 1, NULL, &f->err), -EINVAL);
    assert_int_equal(store_loss_list(f->s, -1, 1, collect_loss, ids, &f->err), -EINVAL);
    assert_int_equal(store_loss_list(f->s, 0, 1, NULL, ids, &f->err), -EINVAL);
    assert_int_equal(store_staged(f->s), 0);
}

static void test_se_model(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t a = put_se(f, "SE-MA", "8613800000001", "");
    commit_ok(f);
    char *js = NULL;
    assert_int_equal(store_se_model_get(f->s, a, &js, NULL, &f->err), -ENOENT);
    assert_int_equal(store_se_model_put(f->s, a, "{\"v\":1}", 100, &f->err), 0);
    assert_int_equal(store_se_model_put(f->s, a, "{\"v\":2}", 200, &f->err), 0); /* replaces */
    /* staged writes are visible on the same connection, gone on rollback */
    int64_t upd = 0;
    assert_int_equal(store_se_model_get(f->s, a, &js, &upd, &f->err), 0);
    assert_string_equal(js, "{\"v\":2}");
    free(js);
    store_rollback(f->s);
    assert_int_equal(store_se_model_get(f->s, a, &js, NULL, &f->err), -ENOENT);
    assert_int_equal(store_se_model_put(f->s, a, "{\"v\":3}", 300, &f->err), 0);
    commit_ok(f);
    reopen(f);
    assert_int_equal(store_se_model_get(f->s, a, &js, &upd, &f->err), 0);
    assert_string_equal(js, "{\"v\":3}");
    assert_int_equal(upd, 300);
    free(js);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM se_model"), 1);
    /* bad input */
    assert_int_equal(store_se_model_put(f->s, 0, "{}", 1, &f->err), -EINVAL);
    assert_int_equal(store_se_model_put(f->s, a, "", 1, &f->err), -EINVAL);
    assert_int_equal(store_se_model_put(f->s, a, NULL, 1, &f->err), -EINVAL);
    assert_int_equal(store_se_model_put(f->s, a, "{}", -1, &f->err), -EINVAL);
    assert_int_equal(store_se_model_get(f->s, a, NULL, NULL, &f->err), -EINVAL);
    assert_int_equal(store_se_model_get(f->s, -1, &js, NULL, &f->err), -EINVAL);
    assert_int_equal(store_staged(f->s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_fresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_opts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_between_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_se_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_se_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_se_by_msisdn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_reports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1_to_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cb_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cb_unstaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v2_to_v3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v3_to_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v4_to_v5_prio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_se_binding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loss_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_se_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
