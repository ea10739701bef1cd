/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the audit log (gateway/audit.c, gateway/audit_chain.c):
 * a chain of entries verifies; every kind of tampering done with SQL after
 * dropping the guard triggers (a field changed, a row deleted, two rows
 * swapped, a hash replaced, a hash recomputed to hide a change) is caught
 * with the first broken seq named; UPDATE / DELETE / out-of-chain INSERT
 * refused by the triggers; a restart continues the chain; a broken tail
 * refuses the start; the hashed encoding is pinned; a sample of entries as
 * the API writes them holds no secret.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "gateway/audit.h"
#include "gateway/audit_chain.h"
#include "gateway/gw.h"
#include "tests/support/ts_http.h"
#include "tests/support/tsupport.h"

#define ZERO_HEX "0000000000000000000000000000000000000000000000000000000000000000"

struct fx {
    char dir[64], db[96], audit[128], logpath[128];
    struct gw g;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/otagw-audit-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/q.db", f->dir);
    snprintf(f->logpath, sizeof(f->logpath), "%s/log.txt", f->dir);
    snprintf(f->g.conf.db_path, sizeof(f->g.conf.db_path), "%s", f->db);
    assert_int_equal(gw_audit_path(f->db, f->audit, sizeof(f->audit)), 0);
    f->g.conf.log_level = GW_CONF_LOG_DEBUG;
    f->g.log = fopen(f->logpath, "w");
    assert_non_null(f->g.log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gw_audit_stop(&f->g);
    fclose(f->g.log);
    (void)ts_rmdir_tree(f->dir);
    free(f);
    return 0;
}

static void start(struct fx *f)
{
    struct ota_err err;
    int rc = gw_audit_start(&f->g, &err);
    if (rc < 0) {
        fail_msg("gw_audit_start: %d %s", rc, err.msg);
    }
    assert_non_null(f->g.audit);
}

/* daemon.start, n entries, daemon.stop: n + 2 entries on disk. */
static void make_chain(struct fx *f, int n)
{
    start(f);
    for (int i = 0; i < n; i++) {
        char target[32];
        snprintf(target, sizeof(target), "task:%d", 100 + i);
        assert_int_equal(
            gw_audit(&f->g, "op1", "task.cancel", target, "reason=test i=%d state=queued", i), 0);
    }
    gw_audit_stop(&f->g);
    assert_null(f->g.audit);
}

static sqlite3 *raw_open(struct fx *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->audit, &db), SQLITE_OK);
    return db;
}

static void raw_exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fail_msg("%s: %s", sql, msg ? msg : "?");
    }
}

/* Drop the guards (what someone editing the file with the sqlite3 shell would do) and run sql. */
static void tamper(struct fx *f, const char *sql)
{
    sqlite3 *db = raw_open(f);
    raw_exec_ok(db, "DROP TRIGGER IF EXISTS audit_log_no_update;"
                    " DROP TRIGGER IF EXISTS audit_log_no_delete;"
                    " DROP TRIGGER IF EXISTS audit_log_append;");
    raw_exec_ok(db, sql);
    sqlite3_close(db);
}

/* Verify the file; returns the rc, fills rep. */
static int verify(struct fx *f, struct gw_audit_report *rep)
{
    sqlite3 *db = NULL;
    struct ota_err err;
    assert_int_equal(gw_audit_db_open(f->audit, true, &db, NULL, &err), 0);
    int rc = gw_audit_verify(db, NULL, NULL, rep, &err);
    sqlite3_close(db);
    return rc;
}

static void assert_broken(struct fx *f, int64_t seq, enum gw_audit_break why)
{
    struct gw_audit_report rep;
    int rc = verify(f, &rep);
    if (rc != -EBADMSG || rep.bad_seq != seq || rep.why != why) {
        fail_msg("verify rc=%d bad_seq=%lld why=%s (%s); wanted seq %lld why %s", rc,
                 (long long)rep.bad_seq, gw_audit_break_name(rep.why), rep.what, (long long)seq,
                 gw_audit_break_name(why));
    }
    assert_int_equal(rep.n_ok, (uint64_t)(seq - 1));
    assert_true(rep.what[0] != '\0');
}

/* ---- chain ---- */

struct seen {
    int n;
    char actions[64][32];
    int64_t seqs[64];
};

static void collect(void *arg, const struct gw_audit_entry *e)
{
    struct seen *s = arg;
    if (s->n < 64) {
        snprintf(s->actions[s->n], sizeof(s->actions[0]), "%s", e->action);
        s->seqs[s->n] = e->seq;
        s->n++;
    }
}

static void test_chain_verifies(void **state)
{
    struct fx *f = *state;
    make_chain(f, 20);
    sqlite3 *db = NULL;
    struct ota_err err;
    assert_int_equal(gw_audit_db_open(f->audit, true, &db, NULL, &err), 0);
    struct gw_audit_report rep;
    struct seen s = {0};
    assert_int_equal(gw_audit_verify(db, collect, &s, &rep, &err), 0);
    assert_int_equal(rep.n_ok, 22);
    assert_int_equal(rep.head_seq, 22);
    assert_int_equal(rep.bad_seq, 0);
    assert_int_equal(rep.why, GW_AUDIT_INTACT);
    assert_int_equal(s.n, 22);
    assert_string_equal(s.actions[0], "daemon.start");
    assert_string_equal(s.actions[1], "task.cancel");
    assert_string_equal(s.actions[21], "daemon.stop");
    for (int i = 0; i < s.n; i++) {
        assert_int_equal(s.seqs[i], i + 1);
    }
    /* the tail check agrees, and names the same head */
    struct gw_audit_report tail;
    assert_int_equal(gw_audit_check_tail(db, &tail, &err), 0);
    assert_int_equal(tail.head_seq, 22);
    assert_memory_equal(tail.head_hash, rep.head_hash, GW_AUDIT_HASH_LEN);
    sqlite3_close(db);
}

static void test_empty_and_missing(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = NULL;
    struct ota_err err;
    /* no file: the verifier does not create one */
    assert_int_equal(gw_audit_db_open(f->audit, true, &db, NULL, &err), -ENOENT);
    assert_int_equal(access(f->audit, F_OK), -1);
    /* an empty log is intact */
    assert_int_equal(gw_audit_db_open(f->audit, false, &db, NULL, &err), 0);
    struct gw_audit_report rep;
    assert_int_equal(gw_audit_verify(db, NULL, NULL, &rep, &err), 0);
    assert_int_equal(rep.n_ok, 0);
    assert_int_equal(gw_audit_check_tail(db, &rep, &err), 0);
    assert_int_equal(rep.head_seq, 0);
    sqlite3_close(db);
    /* a file without the table is refused read-only */
    char other[160];
    snprintf(other, sizeof(other), "%s/other.db", f->dir);
    assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
    raw_exec_ok(db, "CREATE TABLE t (x)");
    sqlite3_close(db);
    assert_int_equal(gw_audit_db_open(other, true, &db, NULL, &err), -ENOENT);
    /* bad arguments */
    char p[8];
    assert_int_equal(gw_audit_path("", p, sizeof(p)), -EINVAL);
    assert_int_equal(gw_audit_path("/a/long/path.db", p, sizeof(p)), -ENAMETOOLONG);
    assert_int_equal(gw_audit(&f->g, "x", NULL, NULL, NULL), -EINVAL);
    assert_int_equal(gw_audit(NULL, "x", "a.b", NULL, NULL), -EINVAL);
}

/* ---- the guards ---- */

static void test_guards_refuse(void **state)
{
    struct fx *f = *state;
    make_chain(f, 3);
    sqlite3 *db = raw_open(f);
    static const char *const refused[] = {
        "UPDATE audit_log SET detail = 'x' WHERE seq = 2",
        "UPDATE audit_log SET hash = hash",
        "DELETE FROM audit_log WHERE seq = 5",
        "DELETE FROM audit_log",
        /* not the next seq */
        "INSERT INTO audit_log VALUES (9, 0, 'a', 'b', '', '', '" ZERO_HEX "', '" ZERO_HEX "')",
        /* the next seq, but not linked */
        "INSERT INTO audit_log VALUES (6, 0, 'a', 'b', '', '', '" ZERO_HEX "', '" ZERO_HEX "')",
        /* REPLACE deletes without the DELETE trigger: the INSERT one stops it */
        "INSERT OR REPLACE INTO audit_log VALUES (3, 0, 'a', 'b', '', '', '" ZERO_HEX
        "', '" ZERO_HEX "')",
        "REPLACE INTO audit_log SELECT * FROM audit_log WHERE seq = 4",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int rc = sqlite3_exec(db, refused[i], NULL, NULL, NULL);
        if (rc != SQLITE_CONSTRAINT) {
            fail_msg("%s: rc %d (%s), wanted a constraint error", refused[i], rc,
                     sqlite3_errmsg(db));
        }
    }
    sqlite3_close(db);
    struct gw_audit_report rep;
    assert_int_equal(verify(f, &rep), 0);
    assert_int_equal(rep.n_ok, 5);
}

/* Dropped guards come back at the next start, and that is itself audited. */
static void test_guards_restored(void **state)
{
    struct fx *f = *state;
    make_chain(f, 1);
    tamper(f, "SELECT 1");
    start(f);
    gw_audit_stop(&f->g);
    sqlite3 *db = raw_open(f);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM audit_log WHERE seq = 1", NULL, NULL, NULL),
                     SQLITE_CONSTRAINT);
    sqlite3_close(db);
    struct gw_audit_report rep;
    struct seen s = {0};
    assert_int_equal(gw_audit_db_open(f->audit, true, &db, NULL, &(struct ota_err){0}), 0);
    assert_int_equal(gw_audit_verify(db, collect, &s, &rep, NULL), 0);
    sqlite3_close(db);
    assert_int_equal(s.n, 6);
    assert_string_equal(s.actions[3], "audit.guards-restored");
    assert_string_equal(s.actions[4], "daemon.start");
}

/* ---- tampering caught ---- */

static void test_tamper_fields(void **state)
{
    struct fx *f = *state;
    make_chain(f, 10); /* 12 entries */
    static const struct {
        const char *sql;
        int64_t seq;
        enum gw_audit_break why;
    } cases[] = {
        {"UPDATE audit_log SET detail = 'reason=other' WHERE seq = 5", 5, GW_AUDIT_BREAK_HASH},
        {"UPDATE audit_log SET actor = 'admin' WHERE seq = 3", 3, GW_AUDIT_BREAK_HASH},
        {"UPDATE audit_log SET action = 'task.terminate' WHERE seq = 8", 8, GW_AUDIT_BREAK_HASH},
        {"UPDATE audit_log SET target = 'task:1' WHERE seq = 2", 2, GW_AUDIT_BREAK_HASH},
        {"UPDATE audit_log SET ts_ms = ts_ms + 1 WHERE seq = 12", 12, GW_AUDIT_BREAK_HASH},
        {"UPDATE audit_log SET detail = detail || ' ' WHERE seq = 1", 1, GW_AUDIT_BREAK_HASH},
        /* a type change is not hidden by SQLite's affinity */
        {"UPDATE audit_log SET detail = x'41' WHERE seq = 6", 6, GW_AUDIT_BREAK_FORMAT},
        {"UPDATE audit_log SET hash = upper(hash) WHERE seq = 4", 4, GW_AUDIT_BREAK_FORMAT},
        {"UPDATE audit_log SET prev_hash = (SELECT hash FROM audit_log WHERE seq = 7)"
         " WHERE seq = 9",
         9, GW_AUDIT_BREAK_LINK},
    };
    char backup[160];
    snprintf(backup, sizeof(backup), "%s/clean.audit", f->dir);
    sqlite3 *db = raw_open(f);
    char sql[256];
    snprintf(sql, sizeof(sql), "VACUUM INTO '%s'", backup);
    raw_exec_ok(db, sql);
    sqlite3_close(db);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* each case on a clean copy */
        unlink(f->audit);
        db = NULL;
        assert_int_equal(sqlite3_open(backup, &db), SQLITE_OK);
        snprintf(sql, sizeof(sql), "VACUUM INTO '%s'", f->audit);
        raw_exec_ok(db, sql);
        sqlite3_close(db);
        struct gw_audit_report rep;
        assert_int_equal(verify(f, &rep), 0);
        tamper(f, cases[i].sql);
        assert_broken(f, cases[i].seq, cases[i].why);
    }
}

static void test_tamper_delete(void **state)
{
    struct fx *f = *state;
    make_chain(f, 6); /* 8 entries */
    tamper(f, "DELETE FROM audit_log WHERE seq = 4");
    assert_broken(f, 4, GW_AUDIT_BREAK_SEQ);
    /* the start-up check sees the count */
    struct ota_err err;
    assert_int_equal(gw_audit_start(&f->g, &err), -EBADMSG);
    assert_null(f->g.audit);
    assert_non_null(strstr(err.msg, "audit-verify"));
}

static void test_tamper_delete_first(void **state)
{
    struct fx *f = *state;
    make_chain(f, 2);
    tamper(f, "DELETE FROM audit_log WHERE seq = 1");
    assert_broken(f, 1, GW_AUDIT_BREAK_SEQ);
}

static void test_tamper_reorder(void **state)
{
    struct fx *f = *state;
    make_chain(f, 6);
    tamper(f, "UPDATE audit_log SET seq = -1 WHERE seq = 3;"
              "UPDATE audit_log SET seq = 3 WHERE seq = 4;"
              "UPDATE audit_log SET seq = 4 WHERE seq = -1;");
    assert_broken(f, 3, GW_AUDIT_BREAK_LINK);
}

static void set_hex(struct fx *f, int64_t seq, const char *col, const uint8_t h[32])
{
    char hx[65], sql[200];
    gw_audit_hash_hex(h, hx);
    snprintf(sql, sizeof(sql), "UPDATE audit_log SET %s = '%s' WHERE seq = %lld", col, hx,
             (long long)seq);
    tamper(f, sql);
}

static void test_tamper_hash(void **state)
{
    struct fx *f = *state;
    make_chain(f, 6);
    uint8_t h[32];
    memset(h, 0xA5, sizeof(h));
    set_hex(f, 6, "hash", h);
    assert_broken(f, 6, GW_AUDIT_BREAK_HASH);
}

/* Change a field and recompute its hash: the next entry's link names the change. */
static void test_tamper_rehash(void **state)
{
    struct fx *f = *state;
    make_chain(f, 6);
    tamper(f, "UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 5");
    sqlite3 *db = raw_open(f);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT ts_ms, actor, action, target, detail, prev_hash"
                                        " FROM audit_log WHERE seq = 5",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    struct gw_audit_entry e = {
        .seq = 5,
        .ts_ms = sqlite3_column_int64(q, 0),
        .actor = (const char *)sqlite3_column_text(q, 1),
        .action = (const char *)sqlite3_column_text(q, 2),
        .target = (const char *)sqlite3_column_text(q, 3),
        .detail = (const char *)sqlite3_column_text(q, 4),
    };
    assert_true(gw_audit_hash_unhex((const char *)sqlite3_column_text(q, 5), e.prev_hash));
    uint8_t h[32];
    assert_int_equal(gw_audit_entry_hash(&e, h, NULL), 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    set_hex(f, 5, "hash", h);
    assert_broken(f, 6, GW_AUDIT_BREAK_LINK);
    /* ... and the start-up check alone would not see it (only the tail): the full walk must */
    start(f);
    assert_int_equal(gw_audit(&f->g, "op1", "task.terminate", "task:9", NULL), 0);
    gw_audit_stop(&f->g);
    assert_broken(f, 6, GW_AUDIT_BREAK_LINK);
}

/* A change to the last entry is caught at start: the daemon refuses to run on it. */
static void test_tail_broken_refuses_start(void **state)
{
    struct fx *f = *state;
    make_chain(f, 2);
    tamper(f, "UPDATE audit_log SET detail = 'pid=1' WHERE seq = 4");
    struct ota_err err;
    assert_int_equal(gw_audit_start(&f->g, &err), -EBADMSG);
    assert_null(f->g.audit);
    assert_non_null(strstr(err.msg, "entry 4"));
    assert_broken(f, 4, GW_AUDIT_BREAK_HASH);
}

/* ---- restart, durability of what was written ---- */

static void test_restart_continues(void **state)
{
    struct fx *f = *state;
    make_chain(f, 3); /* 1..5 */
    start(f);         /* 6: daemon.start */
    assert_int_equal(f->g.audit != NULL, 1);
    assert_int_equal(gw_audit(&f->g, "adm", "token.revoke", "token:7", "principal=p1"), 0);
    assert_int_equal(gw_audit(&f->g, "adm", "config.reload", NULL, NULL), 0);
    /* an entry is on disk before gw_audit returns: another connection sees it now */
    sqlite3 *db = NULL;
    struct ota_err err;
    assert_int_equal(gw_audit_db_open(f->audit, true, &db, NULL, &err), 0);
    struct gw_audit_report rep;
    assert_int_equal(gw_audit_verify(db, NULL, NULL, &rep, &err), 0);
    assert_int_equal(rep.head_seq, 8);
    sqlite3_close(db);
    gw_audit_stop(&f->g);
    struct seen s = {0};
    assert_int_equal(gw_audit_db_open(f->audit, true, &db, NULL, &err), 0);
    assert_int_equal(gw_audit_verify(db, collect, &s, &rep, &err), 0);
    sqlite3_close(db);
    assert_int_equal(rep.n_ok, 9);
    assert_string_equal(s.actions[4], "daemon.stop");
    assert_string_equal(s.actions[5], "daemon.start");
    assert_string_equal(s.actions[6], "token.revoke");
    assert_string_equal(s.actions[7], "config.reload");
}

/* otatool writing offline token operations while the daemon runs: one chain. */
static void test_two_writers(void **state)
{
    struct fx *f = *state;
    start(f);
    sqlite3 *other = NULL;
    struct ota_err err;
    assert_int_equal(gw_audit_db_open(f->audit, false, &other, NULL, &err), 0);
    for (int i = 0; i < 5; i++) {
        int64_t seq = 0;
        uint8_t h[GW_AUDIT_HASH_LEN];
        assert_int_equal(gw_audit(&f->g, "op1", "task.cancel", "task:1", "i=%d", i), 0);
        assert_int_equal(gw_audit_db_append(other, "cli", "token.create", "token:9",
                                            "role=operator", &seq, h, &err),
                         0);
        assert_int_equal(seq, 2 + 2 * i + 1);
    }
    /* refused: no action, an over-long field; nothing written */
    char big[GW_AUDIT_TARGET_MAX + 2];
    memset(big, 't', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(gw_audit_db_append(other, "cli", "", NULL, NULL, NULL, NULL, &err), -EINVAL);
    assert_int_equal(gw_audit_db_append(other, "cli", "x.y", big, NULL, NULL, NULL, &err), -EINVAL);
    sqlite3_close(other);
    assert_int_equal(gw_audit(&f->g, "op1", "task.terminate", "task:2", NULL), 0);
    assert_int_equal(gw_audit_head_seq(&f->g), 12);
    gw_audit_stop(&f->g);
    struct gw_audit_report rep;
    assert_int_equal(verify(f, &rep), 0);
    assert_int_equal(rep.n_ok, 13);
}

/* ---- fields ---- */

struct one {
    char actor[256], target[300], detail[4096];
};

static int grab(void *arg, const struct gw_audit_entry *e)
{
    struct one *o = arg;
    snprintf(o->actor, sizeof(o->actor), "%s", e->actor);
    snprintf(o->target, sizeof(o->target), "%s", e->target);
    snprintf(o->detail, sizeof(o->detail), "%s", e->detail);
    return 0;
}

/* ---- operator actions through the API ---- */

static int fb_submit(void *arg, const struct bearer_msg *m, struct ota_err *err)
{
    (void)arg;
    (void)m;
    (void)err;
    return 0;
}

static void fb_noop(void *arg)
{
    (void)arg;
}

static int post_status(struct ev_loop *loop, uint16_t port, const char *path)
{
    struct ts_http_resp r;
    ts_http_do(loop, port, "POST", path, NULL, NULL, true, &r);
    int st = r.status;
    ts_http_resp_free(&r);
    return st;
}

static int64_t n_entries(struct fx *f)
{
    sqlite3 *db = NULL;
    struct gw_audit_report rep;
    assert_int_equal(gw_audit_db_open(f->audit, true, &db, NULL, NULL), 0);
    assert_int_equal(gw_audit_verify(db, NULL, NULL, &rep, NULL), 0);
    sqlite3_close(db);
    return (int64_t)rep.n_ok;
}

/*
 * Cancel and terminate are recorded before they are made; refused requests
 * leave no entry; with the log unwritable the action is refused (503) and
 * the task is untouched.
 */
static void test_api_actions_audited(void **state)
{
    struct fx *f = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(loop);
    f->g.loop = loop;
    struct eng_conf c;
    eng_conf_defaults(&c);
    c.db_path = f->db;
    c.durable = false;
    c.commit_interval_ms = 0;
    struct eng_hooks hooks = {0};
    struct ota_err err;
    assert_int_equal(eng_open(loop, &c, &hooks, &f->g.eng, &err), 0);
    struct eng_bearer_ops ops = {
        .submit = fb_submit, .release_acks = fb_noop, .discard_acks = fb_noop, .arg = f};
    eng_set_bearer(f->g.eng, &ops);
    struct http_conf hc = {.bind_addr = "127.0.0.1", .port = 0, .idle_timeout_s = 5};
    assert_int_equal(http_server_new(loop, &hc, &f->g.http, &err), 0);
    uint16_t port = http_server_port(f->g.http);
    assert_int_equal(gw_api_tasks_routes(&f->g, &err), 0);
    start(f);
    assert_int_equal(eng_se_register(f->g.eng, "SE-A", "8613800000001", "b1", &err), 0);
    int64_t t[3];
    for (int i = 0; i < 3; i++) {
        struct eng_task_spec sp = {
            .seid = "SE-A", .op = TASK_OP_PUSH, .channel = TASK_CH_PUSH, .params = "{}"};
        assert_int_equal(eng_submit(f->g.eng, &sp, NULL, NULL, &t[i], &err), 0);
    }
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    for (int i = 0; i < 5; i++) {
        ts_http_pump(loop);
    }
    int64_t n0 = n_entries(f); /* daemon.start */
    char path[64];
    /* t[1] queued: cancelled, recorded */
    snprintf(path, sizeof(path), "/v1/tasks/%lld/cancel", (long long)t[1]);
    assert_int_equal(post_status(loop, port, path), 200);
    assert_int_equal(n_entries(f), n0 + 1);
    /* again: 409, nothing recorded */
    assert_int_equal(post_status(loop, port, path), 409);
    /* t[2] queued: terminate refused (not active), nothing recorded */
    snprintf(path, sizeof(path), "/v1/tasks/%lld/terminate", (long long)t[2]);
    assert_int_equal(post_status(loop, port, path), 409);
    assert_int_equal(n_entries(f), n0 + 1);
    /* the log cannot be written (another writer holds it past the busy timeout): refused */
    sqlite3 *lock = raw_open(f);
    raw_exec_ok(lock, "BEGIN IMMEDIATE");
    snprintf(path, sizeof(path), "/v1/tasks/%lld/terminate", (long long)t[0]);
    struct ts_http_resp r;
    ts_http_do(loop, port, "POST", path, NULL, NULL, true, &r);
    ts_http_assert_error(&r, 503, "audit-unavailable");
    ts_http_resp_free(&r);
    raw_exec_ok(lock, "ROLLBACK");
    sqlite3_close(lock);
    struct eng_task_view v;
    assert_int_equal(eng_task_get(f->g.eng, t[0], &v, &err), 0);
    assert_int_equal(v.state, TASK_DISPATCHED);
    /* writable again: terminated and recorded */
    assert_int_equal(post_status(loop, port, path), 200);
    assert_int_equal(n_entries(f), n0 + 2);
    gw_audit_stop(&f->g);
    struct seen s = {0};
    sqlite3 *db = NULL;
    struct gw_audit_report rep;
    assert_int_equal(gw_audit_db_open(f->audit, true, &db, NULL, NULL), 0);
    assert_int_equal(gw_audit_verify(db, collect, &s, &rep, NULL), 0);
    struct one o;
    assert_int_equal(gw_audit_list(db, 3, 1, grab, &o, NULL), 0);
    sqlite3_close(db);
    assert_string_equal(s.actions[1], "task.cancel");
    assert_string_equal(s.actions[2], "task.terminate");
    snprintf(path, sizeof(path), "task:%lld", (long long)t[0]);
    assert_string_equal(o.target, path);
    assert_string_equal(o.detail, "se=SE-A state=dispatched");
    eng_close(f->g.eng);
    f->g.eng = NULL;
    http_server_free(f->g.http);
    f->g.http = NULL;
    ev_loop_destroy(loop);
}

static void test_fields(void **state)
{
    struct fx *f = *state;
    start(f);
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* an over-long detail is cut visibly, not refused (the action must still be recorded) */
    assert_int_equal(gw_audit(&f->g, NULL, "auth.fail", NULL, "%s", big), 0);
    gw_audit_stop(&f->g);
    sqlite3 *db = NULL;
    assert_int_equal(gw_audit_db_open(f->audit, true, &db, NULL, NULL), 0);
    struct one o;
    assert_int_equal(gw_audit_list(db, 2, 1, grab, &o, NULL), 0);
    assert_string_equal(o.actor, "anonymous");
    assert_string_equal(o.target, "");
    assert_int_equal(strlen(o.detail), GW_AUDIT_DETAIL_MAX);
    assert_non_null(strstr(o.detail, "(truncated)"));
    /* a cut never splits a UTF-8 sequence: the entry stays valid text */
    start(f);
    char utf[GW_AUDIT_TARGET_MAX + 40] = "x"; /* odd: the cut would fall inside a pair */
    while (strlen(utf) + 2 < sizeof(utf)) {
        strcat(utf, "\xc3\xa9"); /* U+00E9, two octets */
    }
    assert_int_equal(gw_audit(&f->g, "op", "se.note", utf, NULL), 0);
    gw_audit_stop(&f->g);
    assert_int_equal(gw_audit_list(db, 5, 1, grab, &o, NULL), 0);
    assert_true(strlen(o.target) <= GW_AUDIT_TARGET_MAX);
    assert_non_null(strstr(o.target, "(truncated)"));
    json_t *js = json_string(o.target); /* NULL for invalid UTF-8 */
    assert_non_null(js);
    json_decref(js);
    struct gw_audit_report rep;
    assert_int_equal(gw_audit_verify(db, NULL, NULL, &rep, NULL), 0);
    sqlite3_close(db);
}

/* Without an open log (hand-built contexts) an entry is logged, not stored, and not refused. */
static void test_no_log_open(void **state)
{
    struct fx *f = *state;
    assert_int_equal(gw_audit(&f->g, "op", "task.cancel", "task:1", "x=%d", 1), 0);
    fflush(f->g.log);
    assert_int_equal(access(f->audit, F_OK), -1);
}

/* A caller's text cannot forge a log line; the entry keeps it as given. */
static void test_log_injection(void **state)
{
    struct fx *f = *state;
    start(f);
    assert_int_equal(gw_audit(&f->g, "bank\"1", "loss.add", "se:X\ny",
                              "reason=\"x\"\nts=2020-01-01T00:00:00.000Z level=err msg=\"forged\""),
                     0);
    gw_audit_stop(&f->g);
    fflush(f->g.log);
    FILE *fp = fopen(f->logpath, "r");
    assert_non_null(fp);
    char line[4096];
    int audit_lines = 0;
    while (fgets(line, sizeof(line), fp)) {
        assert_true(strncmp(line, "ts=2020", 7) != 0);
        if (strstr(line, "action=loss.add")) {
            audit_lines++;
            assert_non_null(strstr(line, "actor=\"bank\\\"1\""));
            assert_non_null(strstr(line, "\\x0ats=2020"));
        }
    }
    fclose(fp);
    assert_int_equal(audit_lines, 1);
    sqlite3 *db = NULL;
    assert_int_equal(gw_audit_db_open(f->audit, true, &db, NULL, NULL), 0);
    struct one o;
    assert_int_equal(gw_audit_list(db, 2, 1, grab, &o, NULL), 0);
    sqlite3_close(db);
    assert_string_equal(o.actor, "bank\"1");
    assert_string_equal(o.target, "se:X\ny");
}

/* ---- the encoding, pinned (otagw and otatool must agree on every octet) ---- */

static void put_str(uint8_t *b, size_t *n, const char *s)
{
    size_t l = strlen(s);
    b[(*n)++] = (uint8_t)(l >> 24);
    b[(*n)++] = (uint8_t)(l >> 16);
    b[(*n)++] = (uint8_t)(l >> 8);
    b[(*n)++] = (uint8_t)l;
    memcpy(b + *n, s, l);
    *n += l;
}

static void test_encoding(void **state)
{
    (void)state;
    struct gw_audit_entry e = {.seq = 0x0102,
                               .ts_ms = 1700000000123LL,
                               .actor = "adm",
                               .action = "key.import",
                               .target = "se:A",
                               .detail = "kvn=1"};
    memset(e.prev_hash, 0x11, 32);
    uint8_t b[512];
    size_t n = 0;
    memcpy(b, "otagw-audit-v1", 15); /* with its NUL */
    n = 15;
    for (int i = 0; i < 8; i++) {
        b[n++] = (uint8_t)((uint64_t)e.seq >> (56 - 8 * i));
    }
    for (int i = 0; i < 8; i++) {
        b[n++] = (uint8_t)((uint64_t)e.ts_ms >> (56 - 8 * i));
    }
    put_str(b, &n, e.actor);
    put_str(b, &n, e.action);
    put_str(b, &n, e.target);
    put_str(b, &n, e.detail);
    memcpy(b + n, e.prev_hash, 32);
    n += 32;
    uint8_t want[32], got[32];
    unsigned int wl = 0;
    assert_int_equal(EVP_Digest(b, n, want, &wl, EVP_sha256(), NULL), 1);
    assert_int_equal(gw_audit_entry_hash(&e, got, NULL), 0);
    assert_memory_equal(got, want, 32);
    /* field boundaries count: "ad" + "mkey.import" is another entry */
    struct gw_audit_entry e2 = e;
    e2.actor = "ad";
    e2.action = "mkey.import";
    assert_int_equal(gw_audit_entry_hash(&e2, want, NULL), 0);
    assert_memory_not_equal(got, want, 32);
    /* hex round trip, strict */
    char hx[65];
    uint8_t back[32];
    gw_audit_hash_hex(got, hx);
    assert_true(gw_audit_hash_unhex(hx, back));
    assert_memory_equal(back, got, 32);
    hx[3] = 'A';
    assert_false(gw_audit_hash_unhex(hx, back));
    assert_false(gw_audit_hash_unhex("00", back));
    assert_false(gw_audit_hash_unhex(NULL, back));
}

/* ---- no secret in entries ---- */

static bool file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        return false;
    }
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    size_t l = strlen(needle);
    for (size_t i = 0; i + l <= n; i++) {
        if (strncasecmp(buf + i, needle, l) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * A sample as the API writes it (key import, token create, lock): the
 * secrets the request carried (key bytes, the token) appear nowhere in the
 * audit file, its WAL or the log; what identifies the action does.
 */
static void test_no_secret(void **state)
{
    struct fx *f = *state;
    static const char key_hex[] = "404142434445464748494a4b4c4d4e4f";
    static const char token[] = "otagw_tok_Zq3v9RkYbW2mXc8TnP4sLd7HfJ1gKa6E";
    start(f);
    assert_int_equal(gw_audit(&f->g, "admin1", "key.import", "se:SE-A",
                              "tar=B00010 kvn=1 kic=12 kid=12 kcv=8baf47"),
                     0);
    assert_int_equal(
        gw_audit(&f->g, "admin1", "token.create", "token:7", "principal=bank1 role=platform"), 0);
    assert_int_equal(gw_audit(&f->g, "at-server", "antitheft.lock", "se:SE-A", "task=42"), 0);
    assert_int_equal(
        gw_audit(&f->g, "anonymous", "auth.fail", NULL, "peer=127.0.0.1 why=bad-token"), 0);
    fflush(f->g.log);
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", f->audit);
    const char *files[] = {f->audit, wal, f->logpath};
    bool found_action = false;
    for (size_t i = 0; i < 3; i++) {
        assert_false(file_contains(files[i], key_hex));
        assert_false(file_contains(files[i], token));
        assert_false(file_contains(files[i], "Bearer"));
        found_action |= file_contains(files[i], "principal=bank1");
    }
    assert_true(found_action); /* the check looks where the entries are */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guards_refuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guards_restored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_delete_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_reorder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_rehash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tail_broken_refuses_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_actions_audited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_log_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_injection, setup, teardown),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test_setup_teardown(test_no_secret, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
