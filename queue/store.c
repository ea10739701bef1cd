/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The durable store of the task engine (queue/store.h) on SQLite 3 in WAL
 * mode: schema v1 and its migration table, group commit (one write
 * transaction per batch, begun by the first staged write), and every
 * statement prepared once at open so the hot paths only bind, step and
 * reset. Text arguments are validated before SQLite sees them and bound
 * SQLITE_STATIC: the caller's buffer outlives the step, and nothing is
 * allocated per call except the params/result copies of the get functions.
 */
#include "queue/store.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#define STORE_APP_MARKER "otagw"
#define STORE_CNTR_TOP 0xFFFFFFFFFFull /* TS 102 225 5.1.1: the counter is 5 octets */
#define STORE_CACHE_KB_DEFAULT 16384
#define STORE_BUSY_MS_DEFAULT 5000
/* Greater than every valid SEID (printable ASCII): the open upper end of a range scan. */
#define STORE_SEID_TOP "\x7f"

/*
 * Schema migrations: steps[v] takes user_version v to v + 1. Applied in one
 * transaction at open, together with the new user_version. Never edit a
 * shipped step; append one.
 */
static const char *const schema_steps[STORE_SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta (k, v) VALUES ('app', '" STORE_APP_MARKER "');"
    "CREATE TABLE se ("
    " id INTEGER PRIMARY KEY, seid TEXT NOT NULL UNIQUE, msisdn TEXT NOT NULL,"
    " batch TEXT NOT NULL);"
    "CREATE INDEX se_msisdn ON se (msisdn);"
    "CREATE INDEX se_batch ON se (batch, seid);"
    "CREATE TABLE se_counter ("
    " se INTEGER NOT NULL, kvn INTEGER NOT NULL, cntr INTEGER NOT NULL,"
    " PRIMARY KEY (se, kvn)) WITHOUT ROWID;"
    "CREATE TABLE task ("
    " id INTEGER PRIMARY KEY, job INTEGER NOT NULL, step INTEGER NOT NULL,"
    " se INTEGER NOT NULL, op INTEGER NOT NULL, channel INTEGER NOT NULL,"
    " prio INTEGER NOT NULL, attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL,"
    " state INTEGER NOT NULL, reason INTEGER NOT NULL, reason_text TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " not_before_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
    " wait_until_ms INTEGER NOT NULL, cntr INTEGER NOT NULL, kvn INTEGER NOT NULL,"
    " tar INTEGER NOT NULL, serial BLOB, n_parts INTEGER NOT NULL,"
    " params TEXT, result TEXT);"
    /* TASK_DONE = 4: the open tasks are few, the final ones pile up. */
    "CREATE INDEX task_open ON task (id) WHERE state < 4;"
    "CREATE INDEX task_se ON task (se, id);"
    "CREATE INDEX task_job ON task (job, state);"
    "CREATE TABLE task_part ("
    " task INTEGER NOT NULL, part INTEGER NOT NULL, msg_id TEXT NOT NULL,"
    " dlr INTEGER NOT NULL, PRIMARY KEY (task, part)) WITHOUT ROWID;"
    "CREATE INDEX task_part_msg ON task_part (msg_id);"
    "CREATE TABLE task_event ("
    " seq INTEGER PRIMARY KEY, task INTEGER NOT NULL, se INTEGER NOT NULL,"
    " t INTEGER NOT NULL, from_state INTEGER NOT NULL, to_state INTEGER NOT NULL,"
    " reason INTEGER NOT NULL, detail TEXT);"
    "CREATE TABLE report ("
    " seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL, disp INTEGER NOT NULL,"
    " task INTEGER NOT NULL, t INTEGER NOT NULL, detail TEXT);"
    "CREATE TABLE job ("
    " id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, state INTEGER NOT NULL,"
    " prio INTEGER NOT NULL, max_attempts INTEGER NOT NULL, op INTEGER NOT NULL,"
    " channel INTEGER NOT NULL, rate_per_s REAL NOT NULL, created_ms INTEGER NOT NULL,"
    " not_before_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
    " seid_lo TEXT NOT NULL, seid_hi TEXT NOT NULL, batch TEXT NOT NULL,"
    " cursor TEXT NOT NULL, expanded INTEGER NOT NULL, n_expanded INTEGER NOT NULL,"
    " params TEXT);"
    "CREATE TABLE job_member ("
    " job INTEGER NOT NULL, idx INTEGER NOT NULL, se INTEGER NOT NULL,"
    " PRIMARY KEY (job, idx)) WITHOUT ROWID;",
    /* 1 -> 2: the business API's Idempotency-Key records */
    "CREATE TABLE idem ("
    " k TEXT PRIMARY KEY, hash BLOB NOT NULL, status INTEGER NOT NULL,"
    " response TEXT NOT NULL, t INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX idem_t ON idem (t);",
    /*
     * 2 -> 3: the result callback outbox (gateway/callbacks.c). IF NOT EXISTS:
     * a store whose user_version was set back by hand may hold them already.
     */
    "CREATE TABLE IF NOT EXISTS cb_outbox ("
    " id INTEGER PRIMARY KEY, task INTEGER NOT NULL UNIQUE, url TEXT NOT NULL,"
    " body TEXT NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    " next_at INTEGER NOT NULL, created INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS cb_outbox_due ON cb_outbox (state, next_at);"
    "CREATE INDEX IF NOT EXISTS cb_outbox_created ON cb_outbox (created);"
    /* The start-up catch-up walks final tasks by update time, not the whole table. */
    "CREATE INDEX IF NOT EXISTS task_final_upd ON task (updated_ms) WHERE state >= 4;",
    /*
     * 3 -> 4 (spec 5.5.2, 5.8.7): the binding state of an SE (unbound_ms 0 =
     * bound; an unbound SE keeps its row, its model and its history), the
     * loss list, and the per-SE platform model as JSON text.
     */
    "ALTER TABLE se ADD COLUMN unbound_ms INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE se_model ("
    " se INTEGER PRIMARY KEY, model TEXT NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE TABLE loss_list ("
    " id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, value TEXT NOT NULL,"
    " reason TEXT NOT NULL, created_ms INTEGER NOT NULL, UNIQUE (kind, value));",
    /*
     * 4 -> 5: one task's history without a scan of every event
     * (store_task_events: the anti-theft "sent" time). IF NOT EXISTS: a store
     * whose user_version was set back by hand may hold it already.
     * Priority 3 became the anti-theft lane (TASK_PRIO_MAX, strictly first):
     * platform tasks and jobs stored at 3 before would share it, so they drop
     * to 2, the highest the business API now accepts. The op ids are
     * TASK_OP_AT_LOCK, _UNLOCK, _WIPE (queue/task.h; stored values, never
     * renumbered); jobs never carry them.
     */
    "CREATE INDEX IF NOT EXISTS task_event_task ON task_event (task);"
    "UPDATE task SET prio = 2 WHERE prio = 3 AND op NOT IN (12, 13, 14);"
    "UPDATE job SET prio = 2 WHERE prio = 3;",
};
_Static_assert(TASK_OP_AT_LOCK == 12 && TASK_OP_AT_UNLOCK == 13 && TASK_OP_AT_WIPE == 14,
               "schema step 4 -> 5 names the anti-theft op ids as numbers");

#define SE_COLS "id, seid, msisdn, batch, unbound_ms"
#define TASK_COLS_BASE                                                                             \
    "id, job, step, se, op, channel, prio, attempts, max_attempts, state, reason, reason_text, "   \
    "created_ms, updated_ms, not_before_ms, deadline_ms, wait_until_ms, cntr, kvn, tar, serial, "  \
    "n_parts"
#define JOB_COLS_BASE                                                                              \
    "id, kind, state, prio, max_attempts, op, channel, rate_per_s, created_ms, not_before_ms, "    \
    "deadline_ms, seid_lo, seid_hi, batch, cursor, expanded, n_expanded"

#define CB_COLS "id, task, state, attempts, next_at, created, url, body"
#define LOSS_COLS "id, kind, value, reason, created_ms"
/*
 * Batch jobs expand only over SEs that may get tasks (spec 5.5.2): bound and
 * on no loss-list entry, by SEID or by MSISDN.
 */
#define SE_SCAN_ELIGIBLE                                                                           \
    " AND unbound_ms = 0 AND NOT EXISTS (SELECT 1 FROM loss_list l WHERE l.kind = 0"               \
    " AND l.value = se.seid) AND NOT EXISTS (SELECT 1 FROM loss_list l WHERE l.kind = 1"           \
    " AND l.value = se.msisdn)"

#define TASKS_LIST_REST                                                                            \
    " AND (?2 = 0 OR se = ?2) AND (?4 < 0 OR state = ?4) AND created_ms >= ?5"                     \
    " AND created_ms <= ?6 ORDER BY id DESC LIMIT ?7"

enum st {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SE_PUT,
    ST_SE_ID,
    ST_SE_SET_MSISDN,
    ST_SE_GET,
    ST_SE_FIND,
    ST_SE_BY_MSISDN,
    ST_SE_COUNT,
    ST_SE_SCAN_GT,
    ST_SE_SCAN_GE,
    ST_SE_SCANB_GT,
    ST_SE_SCANB_GE,
    ST_CNTR_GET,
    ST_CNTR_PUT,
    ST_TASK_INSERT,
    ST_TASK_UPDATE,
    ST_TASK_SET_STATE,
    ST_TASK_GET,
    ST_TASK_MAX,
    ST_TASKS_OPEN,
    ST_TASKS_OF_SE,
    ST_TASK_COUNTS_ALL,
    ST_TASK_COUNTS_JOB,
    ST_REASON_COUNTS,
    ST_PART_PUT,
    ST_PART_DLR,
    ST_PART_FIND,
    ST_PARTS_OF,
    ST_EVENT_ADD,
    ST_EVENTS,
    ST_TASK_EVENTS,
    ST_REPORT_ADD,
    ST_REPORT_COUNTS,
    ST_JOB_INSERT,
    ST_JOB_UPDATE,
    ST_JOB_GET,
    ST_JOB_MAX,
    ST_JOBS_OPEN,
    ST_MEMBER_ADD,
    ST_MEMBERS,
    ST_IDEM_PUT,
    ST_IDEM_GET,
    ST_IDEM_PRUNE,
    ST_TASKS_LIST_JOB,
    ST_TASKS_LIST_SE,
    ST_TASKS_LIST_ALL,
    ST_CB_PUT,
    ST_CB_SET,
    ST_CB_GET_TASK,
    ST_CB_DUE,
    ST_CB_MARK,
    ST_CB_PENDING,
    ST_CB_UNSTAGED,
    ST_SE_BIND,
    ST_LOSS_PUT,
    ST_LOSS_ID,
    ST_LOSS_DEL,
    ST_LOSS_GET,
    ST_LOSS_LIST,
    ST_LOSS_MATCH,
    ST_MODEL_PUT,
    ST_MODEL_GET,
    ST__COUNT
};

static const char *const st_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SE_PUT] = "INSERT INTO se (seid, msisdn, batch) VALUES (?1, ?2, ?3)"
                  " ON CONFLICT (seid) DO NOTHING",
    [ST_SE_ID] = "SELECT id FROM se WHERE seid = ?1",
    [ST_SE_SET_MSISDN] = "UPDATE se SET msisdn = ?2 WHERE id = ?1",
    [ST_SE_GET] = "SELECT " SE_COLS " FROM se WHERE id = ?1",
    [ST_SE_FIND] = "SELECT " SE_COLS " FROM se WHERE seid = ?1",
    [ST_SE_BY_MSISDN] = "SELECT " SE_COLS " FROM se WHERE msisdn = ?1 ORDER BY id",
    [ST_SE_COUNT] = "SELECT count(*) FROM se",
    /* Separate > and >= forms so each scan has one plain range on its index. */
    [ST_SE_SCAN_GT] = "SELECT " SE_COLS " FROM se WHERE seid > ?1 AND seid <= ?2" SE_SCAN_ELIGIBLE
                      " ORDER BY seid LIMIT ?3",
    [ST_SE_SCAN_GE] = "SELECT " SE_COLS " FROM se WHERE seid >= ?1 AND seid <= ?2" SE_SCAN_ELIGIBLE
                      " ORDER BY seid LIMIT ?3",
    [ST_SE_SCANB_GT] = "SELECT " SE_COLS " FROM se WHERE batch = ?4 AND seid > ?1"
                       " AND seid <= ?2" SE_SCAN_ELIGIBLE " ORDER BY seid LIMIT ?3",
    [ST_SE_SCANB_GE] = "SELECT " SE_COLS " FROM se WHERE batch = ?4 AND seid >= ?1"
                       " AND seid <= ?2" SE_SCAN_ELIGIBLE " ORDER BY seid LIMIT ?3",
    [ST_CNTR_GET] = "SELECT cntr FROM se_counter WHERE se = ?1 AND kvn = ?2",
    [ST_CNTR_PUT] = "INSERT INTO se_counter (se, kvn, cntr) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT (se, kvn) DO UPDATE SET cntr = excluded.cntr",
    [ST_TASK_INSERT] = "INSERT INTO task (" TASK_COLS_BASE ", params, result) VALUES (?1, ?2, ?3,"
                       " ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
                       " ?19, ?20, ?21, ?22, ?23, ?24)",
    [ST_TASK_UPDATE] = "UPDATE task SET state = ?2, reason = ?3, reason_text = ?4, attempts = ?5,"
                       " updated_ms = ?6, not_before_ms = ?7, wait_until_ms = ?8, cntr = ?9,"
                       " kvn = ?10, tar = ?11, serial = ?12, n_parts = ?13,"
                       " result = coalesce(?14, result) WHERE id = ?1",
    [ST_TASK_SET_STATE] = "UPDATE task SET state = ?2, reason = ?3, reason_text = ?4,"
                          " updated_ms = ?5 WHERE id = ?1",
    [ST_TASK_GET] = "SELECT " TASK_COLS_BASE ", params, result FROM task WHERE id = ?1",
    [ST_TASK_MAX] = "SELECT coalesce(max(id), 0) FROM task",
    [ST_TASKS_OPEN] = "SELECT " TASK_COLS_BASE " FROM task WHERE state < 4 ORDER BY id",
    [ST_TASKS_OF_SE] = "SELECT " TASK_COLS_BASE " FROM task WHERE se = ?1"
                       " ORDER BY id DESC LIMIT ?2",
    [ST_TASK_COUNTS_ALL] = "SELECT state, count(*) FROM task GROUP BY state",
    [ST_TASK_COUNTS_JOB] = "SELECT state, count(*) FROM task WHERE job = ?1 GROUP BY state",
    [ST_REASON_COUNTS] = "SELECT reason, count(*) FROM task WHERE state >= 5 GROUP BY reason",
    [ST_PART_PUT] = "INSERT OR REPLACE INTO task_part (task, part, msg_id, dlr)"
                    " VALUES (?1, ?2, ?3, 0)",
    [ST_PART_DLR] = "UPDATE task_part SET dlr = ?3 WHERE task = ?1 AND part = ?2",
    [ST_PART_FIND] = "SELECT task, part, dlr FROM task_part WHERE msg_id = ?1"
                     " ORDER BY task DESC LIMIT 1",
    [ST_PARTS_OF] = "SELECT part, msg_id, dlr FROM task_part WHERE task = ?1 ORDER BY part",
    [ST_EVENT_ADD] = "INSERT INTO task_event (task, se, t, from_state, to_state, reason, detail)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_EVENTS] = "SELECT seq, task, se, t, from_state, to_state, reason FROM task_event"
                  " ORDER BY seq",
    [ST_TASK_EVENTS] = "SELECT seq, task, se, t, from_state, to_state, reason FROM task_event"
                       " WHERE task = ?1 ORDER BY seq",
    [ST_REPORT_ADD] = "INSERT INTO report (kind, disp, task, t, detail)"
                      " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_REPORT_COUNTS] = "SELECT kind, disp, count(*) FROM report GROUP BY kind, disp",
    [ST_JOB_INSERT] = "INSERT INTO job (" JOB_COLS_BASE ", params) VALUES (?1, ?2, ?3, ?4, ?5,"
                      " ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    [ST_JOB_UPDATE] = "UPDATE job SET state = ?2, rate_per_s = ?3, cursor = ?4, expanded = ?5,"
                      " n_expanded = ?6 WHERE id = ?1",
    [ST_JOB_GET] = "SELECT " JOB_COLS_BASE ", params FROM job WHERE id = ?1",
    [ST_JOB_MAX] = "SELECT coalesce(max(id), 0) FROM job",
    [ST_JOBS_OPEN] = "SELECT " JOB_COLS_BASE " FROM job WHERE state IN (0, 1) ORDER BY id",
    [ST_MEMBER_ADD] = "INSERT INTO job_member (job, idx, se) VALUES (?1, ?2, ?3)",
    [ST_MEMBERS] = "SELECT se FROM job_member WHERE job = ?1 AND idx >= ?2"
                   " ORDER BY idx LIMIT ?3",
    [ST_IDEM_PUT] = "INSERT INTO idem (k, hash, status, response, t) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_IDEM_GET] = "SELECT hash, status, response, t FROM idem WHERE k = ?1",
    [ST_IDEM_PRUNE] = "DELETE FROM idem WHERE t < ?1",
    /* One form per index: the leading equality picks it (task_job, task_se, primary key). */
    [ST_TASKS_LIST_JOB] =
        "SELECT " TASK_COLS_BASE " FROM task WHERE job = ?1 AND id < ?3" TASKS_LIST_REST,
    [ST_TASKS_LIST_SE] = "SELECT " TASK_COLS_BASE " FROM task WHERE se = ?2 AND id < ?3"
                         " AND (?1 = 0 OR job = ?1)" TASKS_LIST_REST,
    [ST_TASKS_LIST_ALL] = "SELECT " TASK_COLS_BASE " FROM task WHERE id < ?3" TASKS_LIST_REST,
    [ST_CB_PUT] = "INSERT INTO cb_outbox (task, url, body, state, attempts, next_at, created)"
                  " VALUES (?1, ?2, ?3, 0, 0, ?4, ?4)",
    [ST_CB_SET] = "UPDATE cb_outbox SET state = ?2, attempts = ?3, next_at = ?4 WHERE id = ?1",
    [ST_CB_GET_TASK] = "SELECT " CB_COLS " FROM cb_outbox WHERE task = ?1",
    [ST_CB_DUE] = "SELECT " CB_COLS " FROM cb_outbox WHERE state = 0 AND next_at <= ?1"
                  " ORDER BY next_at LIMIT ?2",
    [ST_CB_MARK] = "SELECT coalesce(max(created), 0) FROM cb_outbox",
    [ST_CB_PENDING] = "SELECT count(*) FROM cb_outbox WHERE state = 0",
    /* state >= 4 repeats the partial index's condition so SQLite may use it. */
    [ST_CB_UNSTAGED] = "SELECT t.id FROM task t WHERE t.state >= 4 AND t.updated_ms >= ?1"
                       " AND instr(t.params, '\"callback_url\"') > 0"
                       " AND NOT EXISTS (SELECT 1 FROM cb_outbox c WHERE c.task = t.id)"
                       " ORDER BY t.updated_ms",
    [ST_SE_BIND] = "UPDATE se SET msisdn = ?2, unbound_ms = ?3 WHERE id = ?1",
    [ST_LOSS_PUT] = "INSERT INTO loss_list (kind, value, reason, created_ms)"
                    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (kind, value) DO NOTHING",
    [ST_LOSS_ID] = "SELECT id FROM loss_list WHERE kind = ?1 AND value = ?2",
    [ST_LOSS_DEL] = "DELETE FROM loss_list WHERE id = ?1",
    [ST_LOSS_GET] = "SELECT " LOSS_COLS " FROM loss_list WHERE id = ?1",
    [ST_LOSS_LIST] = "SELECT " LOSS_COLS " FROM loss_list WHERE id > ?1 ORDER BY id LIMIT ?2",
    /* Two equalities on the (kind, value) index: SQLite's OR optimisation uses it twice. */
    [ST_LOSS_MATCH] = "SELECT " LOSS_COLS " FROM loss_list WHERE (kind = 0 AND value = ?1)"
                      " OR (kind = 1 AND value = ?2) ORDER BY id LIMIT 1",
    [ST_MODEL_PUT] = "INSERT INTO se_model (se, model, updated_ms) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT (se) DO UPDATE SET model = excluded.model,"
                     " updated_ms = excluded.updated_ms",
    [ST_MODEL_GET] = "SELECT model, updated_ms FROM se_model WHERE se = ?1",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];
    bool in_tx;    /* our BEGIN IMMEDIATE is open */
    size_t staged; /* writes staged in it */
    int version;
    uint64_t commits;
    double commit_s;
};

/* ---- errors ------------------------------------------------------------------------- */

static int errno_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    case SQLITE_NOMEM:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

static enum ota_errc errc_of(int e)
{
    switch (e) {
    case -EEXIST:
        return OTA_ERR_DUPLICATE;
    case -ENOSPC:
    case -ENOMEM:
        return OTA_ERR_LIMIT;
    default:
        return OTA_ERR_STATE;
    }
}

/* SQLite failed: errno plus the operation and SQLite's own words. */
static int db_fail(struct store *s, int rc, const char *op, struct ota_err *err)
{
    int e = errno_of(rc);
    return ota_fail(err, e, errc_of(e), "store %s: %s", op, sqlite3_errmsg(s->db));
}

static int arg_fail(struct ota_err *err, const char *op, const char *what)
{
    return ota_fail(err, -EINVAL, OTA_ERR_ARG, "store %s: bad %s", op, what);
}

static int value_fail(struct ota_err *err, const char *op, const char *what)
{
    return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "store %s: %s out of range", op, what);
}

static int corrupt(struct ota_err *err, const char *op, const char *what)
{
    return ota_fail(err, -EIO, OTA_ERR_VALUE, "store %s: stored %s is invalid", op, what);
}

/* ---- validation ---------------------------------------------------------------------- */

static bool printable_text(const char *p, size_t lo, size_t hi)
{
    if (!p) {
        return false;
    }
    size_t n = strnlen(p, hi + 1);
    if (n < lo || n > hi) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static bool valid_seid(const char *p)
{
    return printable_text(p, 1, STORE_SEID_MAX);
}

static bool valid_batch(const char *p)
{
    return printable_text(p, 0, STORE_BATCH_MAX);
}

static bool valid_msisdn(const char *p, size_t lo)
{
    if (!p) {
        return false;
    }
    size_t n = strnlen(p, STORE_MSISDN_MAX + 1);
    if (n < lo || n > STORE_MSISDN_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
    }
    return true;
}

static bool valid_msgid(const char *p)
{
    return printable_text(p, 1, STORE_MSGID_MAX - 1);
}

/* A fixed array holding a NUL-terminated string (not read past its end). */
static bool terminated(const char *a, size_t cap)
{
    return memchr(a, '\0', cap) != NULL;
}

/* ---- statements and transactions ----------------------------------------------------- */

static sqlite3_stmt *stmt(struct store *s, enum st i)
{
    return s->st[i];
}

/*
 * The batch broke under us (I/O, full disk, lock): roll it back so the
 * store is as of the last commit, as a failed commit leaves it.
 */
static void batch_abort(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_stmt *rb = stmt(s, ST_ROLLBACK);
        (void)sqlite3_step(rb);
        sqlite3_reset(rb);
    }
    s->in_tx = false;
    s->staged = 0;
}

/*
 * A write was refused after BEGIN took the write lock: when nothing is
 * staged yet, give the lock back now rather than at the next commit (other
 * processes, e.g. otatool, would wait on it meanwhile).
 */
static void release_if_empty(struct store *s)
{
    if (s->in_tx && s->staged == 0) {
        batch_abort(s);
    }
}

/* A staged write failed with rc: keep the batch for caller errors, drop it for the rest. */
static int write_fail(struct store *s, int rc, const char *op, struct ota_err *err)
{
    int e = db_fail(s, rc, op, err);
    if (e != -EEXIST || sqlite3_get_autocommit(s->db)) {
        batch_abort(s);
    } else {
        release_if_empty(s);
    }
    return e;
}

/* The first staged write of a batch takes the write lock (BEGIN IMMEDIATE). */
static int stage_begin(struct store *s, const char *op, struct ota_err *err)
{
    if (s->in_tx) {
        return 0;
    }
    sqlite3_stmt *b = stmt(s, ST_BEGIN);
    int rc = sqlite3_step(b);
    sqlite3_reset(b);
    if (rc != SQLITE_DONE) {
        int e = db_fail(s, rc, op, err);
        batch_abort(s);
        return e;
    }
    s->in_tx = true;
    s->staged = 0;
    return 0;
}

/* Step a bound write statement to completion; the caller has run stage_begin. */
static int write_step(struct store *s, sqlite3_stmt *q, const char *op, struct ota_err *err)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) {
        return write_fail(s, rc, op, err);
    }
    return 0;
}

static void bind_text(sqlite3_stmt *q, int i, const char *p)
{
    if (p) {
        sqlite3_bind_text(q, i, p, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(q, i);
    }
}

/* Copy a text column into a fixed array; -EIO when the stored text does not fit. */
static int col_text(sqlite3_stmt *q, int i, char *dst, size_t cap)
{
    const unsigned char *p = sqlite3_column_text(q, i);
    int n = sqlite3_column_bytes(q, i);
    if (!p) {
        dst[0] = '\0';
        return 0;
    }
    if (n < 0 || (size_t)n >= cap) {
        return -EIO;
    }
    memcpy(dst, p, (size_t)n);
    dst[n] = '\0';
    return 0;
}

static char *col_dup(sqlite3_stmt *q, int i, bool *oom)
{
    const unsigned char *p = sqlite3_column_text(q, i);
    if (!p) {
        return NULL;
    }
    size_t n = (size_t)sqlite3_column_bytes(q, i);
    char *d = malloc(n + 1);
    if (!d) {
        *oom = true;
        return NULL;
    }
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- open / close -------------------------------------------------------------------- */

static int pragma_int(sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
    if (rc != SQLITE_OK) {
        return rc;
    }
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(q, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *v = 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    return rc;
}

/* Whether the otagw marker row is there (false too when the meta table is not). */
static bool has_marker(sqlite3 *db)
{
    sqlite3_stmt *q = NULL;
    bool ok = false;
    if (sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k = 'app'", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(q, 0);
        ok = v && strcmp((const char *)v, STORE_APP_MARKER) == 0;
    }
    sqlite3_finalize(q);
    return ok;
}

/*
 * Refuse what is not ours before changing anything (WAL mode rewrites the
 * file header): a newer schema, or a non-empty database without our marker.
 */
static int check_ours(struct store *s, int64_t *version, struct ota_err *err)
{
    int64_t objects = 0;
    int rc = pragma_int(s->db, "PRAGMA user_version", version);
    if (rc == SQLITE_OK) {
        rc = pragma_int(s->db, "SELECT count(*) FROM sqlite_master", &objects);
    }
    if ((rc & 0xff) == SQLITE_NOTADB) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "store open: not an SQLite database");
    }
    if (rc != SQLITE_OK) {
        return db_fail(s, rc, "open", err);
    }
    if (*version > STORE_SCHEMA_VERSION) {
        return ota_fail(err, -EINVAL, OTA_ERR_VERSION,
                        "store open: schema version %lld is newer than %d", (long long)*version,
                        STORE_SCHEMA_VERSION);
    }
    if (*version < 0 || (objects > 0 && (*version == 0 || !has_marker(s->db)))) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "store open: not an otagw store");
    }
    return 0;
}

static int migrate(struct store *s, struct ota_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        return db_fail(s, rc, "migrate", err);
    }
    /* Another process may have migrated between our check and the lock. */
    int64_t v = 0;
    int r = check_ours(s, &v, err);
    if (r < 0) {
        goto fail;
    }
    for (; v < STORE_SCHEMA_VERSION; v++) {
        rc = sqlite3_exec(s->db, schema_steps[v], NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            r = ota_fail(err, errno_of(rc), OTA_ERR_STATE, "store migrate to %lld: %s",
                         (long long)v + 1, msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            goto fail;
        }
    }
    char sql[48];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
    rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        r = db_fail(s, rc, "migrate", err);
        goto fail;
    }
    return 0;
fail:
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return r;
}

static int configure(struct store *s, const struct store_opts *o, struct ota_err *err)
{
    char sql[96];
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &q, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(q);
        const unsigned char *mode = rc == SQLITE_ROW ? sqlite3_column_text(q, 0) : NULL;
        rc = mode && strcmp((const char *)mode, "wal") == 0 ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_OK) {
        return ota_fail(err, -EIO, OTA_ERR_STATE, "store open: cannot enter WAL mode: %s",
                        sqlite3_errmsg(s->db));
    }
    int cache_kb = o->cache_kb > 0 ? o->cache_kb : STORE_CACHE_KB_DEFAULT;
    snprintf(sql, sizeof(sql),
             "PRAGMA synchronous = %s; PRAGMA cache_size = -%d; PRAGMA temp_store = MEMORY",
             o->durable ? "FULL" : "NORMAL", cache_kb);
    rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        return db_fail(s, rc, "open", err);
    }
    return 0;
}

int store_open(const struct store_opts *o, struct store **out, struct ota_err *err)
{
    if (!o || !out || !o->path || !o->path[0] || o->cache_kb < 0 || o->busy_ms < 0) {
        return arg_fail(err, "open", "options");
    }
    struct store *s = calloc(1, sizeof(*s));
    if (!s) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "store open: out of memory");
    }
    int r;
    int rc = sqlite3_open_v2(
        o->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = s->db ? db_fail(s, rc, "open", err)
                  : ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "store open: out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, o->busy_ms > 0 ? o->busy_ms : STORE_BUSY_MS_DEFAULT);
    int64_t v = 0;
    r = check_ours(s, &v, err);
    if (r < 0) {
        goto fail;
    }
    r = configure(s, o, err);
    if (r < 0) {
        goto fail;
    }
    if (v < STORE_SCHEMA_VERSION) {
        r = migrate(s, err);
        if (r < 0) {
            goto fail;
        }
    }
    s->version = STORE_SCHEMA_VERSION;
    for (int i = 0; i < ST__COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, st_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            r = db_fail(s, rc, "prepare", err);
            goto fail;
        }
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return r;
}

void store_close(struct store *s)
{
    if (!s) {
        return;
    }
    if (s->db && s->st[ST_ROLLBACK]) {
        batch_abort(s);
    }
    for (int i = 0; i < ST__COUNT; i++) {
        sqlite3_finalize(s->st[i]);
    }
    sqlite3_close(s->db);
    free(s);
}

int store_schema_version(struct store *s)
{
    return s->version;
}

int store_commit(struct store *s, struct ota_err *err)
{
    if (!s->in_tx) {
        return 0;
    }
    double t0 = now_s();
    sqlite3_stmt *c = stmt(s, ST_COMMIT);
    int rc = sqlite3_step(c);
    sqlite3_reset(c);
    if (rc != SQLITE_DONE) {
        int e = db_fail(s, rc, "commit", err);
        batch_abort(s);
        return e;
    }
    s->in_tx = false;
    s->staged = 0;
    s->commits++;
    s->commit_s += now_s() - t0;
    return 0;
}

void store_rollback(struct store *s)
{
    if (s && s->in_tx) {
        batch_abort(s);
    }
}

size_t store_staged(const struct store *s)
{
    return s->staged;
}

void store_commit_stats(const struct store *s, uint64_t *commits, double *total_s)
{
    if (commits) {
        *commits = s->commits;
    }
    if (total_s) {
        *total_s = s->commit_s;
    }
}

int store_test_exec(struct store *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    sqlite3_free(msg);
    return rc == SQLITE_OK ? 0 : errno_of(rc);
}

/* ---- SEs ------------------------------------------------------------------------------ */

static int se_row(sqlite3_stmt *q, struct store_se *out)
{
    out->id = sqlite3_column_int64(q, 0);
    if (col_text(q, 1, out->seid, sizeof(out->seid)) < 0 ||
        col_text(q, 2, out->msisdn, sizeof(out->msisdn)) < 0 ||
        col_text(q, 3, out->batch, sizeof(out->batch)) < 0) {
        return -EIO;
    }
    out->unbound_ms = sqlite3_column_int64(q, 4);
    return 0;
}

int store_se_put(struct store *s, const char *seid, const char *msisdn, const char *batch,
                 int64_t *id, struct ota_err *err)
{
    static const char op[] = "se_put";
    if (!valid_seid(seid)) {
        return arg_fail(err, op, "seid");
    }
    if (!valid_msisdn(msisdn, 0)) {
        return arg_fail(err, op, "msisdn");
    }
    if (!valid_batch(batch)) {
        return arg_fail(err, op, "batch");
    }
    if (!id) {
        return arg_fail(err, op, "id pointer");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_SE_PUT);
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, batch, -1, SQLITE_STATIC);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    if (sqlite3_changes(s->db) == 1) {
        *id = sqlite3_last_insert_rowid(s->db);
        s->staged++;
        return 0;
    }
    q = stmt(s, ST_SE_ID);
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return rc == SQLITE_DONE ? corrupt(err, op, "seid index") : db_fail(s, rc, op, err);
    }
    *id = sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    release_if_empty(s);
    return ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE, "store %s: SEID %s is registered (id %lld)",
                    op, seid, (long long)*id);
}

int store_se_set_msisdn(struct store *s, int64_t id, const char *msisdn, struct ota_err *err)
{
    static const char op[] = "se_set_msisdn";
    if (id <= 0) {
        return arg_fail(err, op, "id");
    }
    if (!valid_msisdn(msisdn, 0)) {
        return arg_fail(err, op, "msisdn");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_SE_SET_MSISDN);
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_text(q, 2, msisdn, -1, SQLITE_STATIC);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    if (sqlite3_changes(s->db) == 0) {
        release_if_empty(s);
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no SE %lld", op, (long long)id);
    }
    s->staged++;
    return 0;
}

/* One-row SE lookup on a bound statement. */
static int se_one(struct store *s, sqlite3_stmt *q, const char *op, struct store_se *out,
                  struct ota_err *err)
{
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        struct store_se tmp;
        r = se_row(q, &tmp);
        if (r < 0) {
            r = corrupt(err, op, "SE");
        } else {
            *out = tmp;
        }
    } else if (rc == SQLITE_DONE) {
        r = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no such SE", op);
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_se_get(struct store *s, int64_t id, struct store_se *out, struct ota_err *err)
{
    if (id <= 0 || !out) {
        return arg_fail(err, "se_get", "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_SE_GET);
    sqlite3_bind_int64(q, 1, id);
    return se_one(s, q, "se_get", out, err);
}

int store_se_find(struct store *s, const char *seid, struct store_se *out, struct ota_err *err)
{
    if (!valid_seid(seid) || !out) {
        return arg_fail(err, "se_find", "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_SE_FIND);
    sqlite3_bind_text(q, 1, seid, -1, SQLITE_STATIC);
    return se_one(s, q, "se_find", out, err);
}

int store_se_by_msisdn(struct store *s, const char *msisdn, struct store_se *out, size_t cap,
                       size_t *n, struct ota_err *err)
{
    static const char op[] = "se_by_msisdn";
    if (!valid_msisdn(msisdn, 1) || !n || (cap > 0 && !out)) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_SE_BY_MSISDN);
    sqlite3_bind_text(q, 1, msisdn, -1, SQLITE_STATIC);
    size_t k = 0;
    int rc;
    int r = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (k < cap && se_row(q, &out[k]) < 0) {
            r = corrupt(err, op, "SE");
            break;
        }
        k++;
    }
    if (r == 0 && rc != SQLITE_DONE) {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    if (r == 0) {
        *n = k;
    }
    return r;
}

int store_se_count(struct store *s, uint64_t *n, struct ota_err *err)
{
    if (!n) {
        return arg_fail(err, "se_count", "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_SE_COUNT);
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        *n = (uint64_t)sqlite3_column_int64(q, 0);
    } else {
        r = db_fail(s, rc, "se_count", err);
    }
    sqlite3_reset(q);
    return r;
}

int store_se_scan(struct store *s, const struct store_se_filter *f, const char *after, size_t max,
                  struct store_se *out, size_t *n, struct ota_err *err)
{
    static const char op[] = "se_scan";
    if (!f || !n || (max > 0 && !out) || !after || (after[0] && !valid_seid(after)) ||
        (f->seid_lo && !valid_seid(f->seid_lo)) || (f->seid_hi && !valid_seid(f->seid_hi)) ||
        (f->batch && !valid_batch(f->batch))) {
        return arg_fail(err, op, "argument");
    }
    if (max == 0) {
        *n = 0;
        return 0;
    }
    /* The lower bound is the larger of "after" (exclusive) and lo (inclusive). */
    const char *lo = f->seid_lo ? f->seid_lo : "";
    bool gt = after[0] && strcmp(after, lo) >= 0;
    enum st which =
        f->batch ? (gt ? ST_SE_SCANB_GT : ST_SE_SCANB_GE) : (gt ? ST_SE_SCAN_GT : ST_SE_SCAN_GE);
    sqlite3_stmt *q = stmt(s, which);
    sqlite3_bind_text(q, 1, gt ? after : lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, f->seid_hi ? f->seid_hi : STORE_SEID_TOP, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    if (f->batch) {
        sqlite3_bind_text(q, 4, f->batch, -1, SQLITE_STATIC);
    }
    size_t k = 0;
    int rc = SQLITE_DONE;
    int r = 0;
    while (k < max && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (se_row(q, &out[k]) < 0) {
            r = corrupt(err, op, "SE");
            break;
        }
        k++;
    }
    if (r == 0 && k < max && rc != SQLITE_DONE) {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    if (r == 0) {
        *n = k;
    }
    return r;
}

static int cntr_read(struct store *s, int64_t se, uint8_t kvn, uint64_t *v, const char *op,
                     struct ota_err *err)
{
    sqlite3_stmt *q = stmt(s, ST_CNTR_GET);
    sqlite3_bind_int64(q, 1, se);
    sqlite3_bind_int(q, 2, kvn);
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        int64_t c = sqlite3_column_int64(q, 0);
        if (c < 0 || (uint64_t)c > STORE_CNTR_TOP) {
            r = corrupt(err, op, "counter");
        } else {
            *v = (uint64_t)c;
        }
    } else if (rc == SQLITE_DONE) {
        *v = 0;
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_cntr_next(struct store *s, int64_t se, uint8_t kvn, uint64_t *cntr, struct ota_err *err)
{
    static const char op[] = "cntr_next";
    if (se <= 0 || !cntr) {
        return arg_fail(err, op, "argument");
    }
    /* Read inside the write transaction: no other writer can reserve the same value. */
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    uint64_t v = 0;
    r = cntr_read(s, se, kvn, &v, op, err);
    if (r < 0) {
        return r;
    }
    if (v >= STORE_CNTR_TOP) {
        release_if_empty(s);
        return ota_fail(err, -ERANGE, OTA_ERR_COUNTER,
                        "store %s: counter of SE %lld KVN %u is exhausted", op, (long long)se, kvn);
    }
    sqlite3_stmt *q = stmt(s, ST_CNTR_PUT);
    sqlite3_bind_int64(q, 1, se);
    sqlite3_bind_int(q, 2, kvn);
    sqlite3_bind_int64(q, 3, (int64_t)(v + 1));
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    s->staged++;
    *cntr = v + 1;
    return 0;
}

int store_cntr_get(struct store *s, int64_t se, uint8_t kvn, uint64_t *cntr, struct ota_err *err)
{
    if (se <= 0 || !cntr) {
        return arg_fail(err, "cntr_get", "argument");
    }
    return cntr_read(s, se, kvn, cntr, "cntr_get", err);
}

/* ---- tasks ---------------------------------------------------------------------------- */

void store_task_fini(struct store_task *t)
{
    if (!t) {
        return;
    }
    free(t->params);
    free(t->result);
    t->params = NULL;
    t->result = NULL;
}

static uint32_t tar_int(const uint8_t tar[3])
{
    return (uint32_t)tar[0] << 16 | (uint32_t)tar[1] << 8 | tar[2];
}

/* Checks shared by insert and update: the mutable fields. */
static int task_check_mutable(const struct store_task *t, const char *op, struct ota_err *err)
{
    if (t->id <= 0) {
        return arg_fail(err, op, "task id");
    }
    if ((unsigned)t->state >= TASK_STATE__COUNT) {
        return value_fail(err, op, "state");
    }
    if ((unsigned)t->reason >= TASK_REASON__COUNT) {
        return value_fail(err, op, "reason");
    }
    if (!terminated(t->reason_text, sizeof(t->reason_text))) {
        return arg_fail(err, op, "reason_text");
    }
    if (t->cntr > STORE_CNTR_TOP) {
        return value_fail(err, op, "counter");
    }
    return 0;
}

int store_task_insert(struct store *s, const struct store_task *t, struct ota_err *err)
{
    static const char op[] = "task_insert";
    if (!t) {
        return arg_fail(err, op, "task");
    }
    int r = task_check_mutable(t, op, err);
    if (r < 0) {
        return r;
    }
    if (t->job < 0 || t->step < 0 || t->se <= 0) {
        return arg_fail(err, op, "job/step/se");
    }
    if ((unsigned)t->op >= TASK_OP__COUNT) {
        return value_fail(err, op, "op");
    }
    if ((unsigned)t->channel >= TASK_CH__COUNT) {
        return value_fail(err, op, "channel");
    }
    if (t->prio > TASK_PRIO_MAX) {
        return value_fail(err, op, "prio");
    }
    r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_TASK_INSERT);
    sqlite3_bind_int64(q, 1, t->id);
    sqlite3_bind_int64(q, 2, t->job);
    sqlite3_bind_int(q, 3, t->step);
    sqlite3_bind_int64(q, 4, t->se);
    sqlite3_bind_int(q, 5, t->op);
    sqlite3_bind_int(q, 6, t->channel);
    sqlite3_bind_int(q, 7, t->prio);
    sqlite3_bind_int(q, 8, t->attempts);
    sqlite3_bind_int(q, 9, t->max_attempts);
    sqlite3_bind_int(q, 10, t->state);
    sqlite3_bind_int(q, 11, t->reason);
    sqlite3_bind_text(q, 12, t->reason_text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 13, t->created_ms);
    sqlite3_bind_int64(q, 14, t->updated_ms);
    sqlite3_bind_int64(q, 15, t->not_before_ms);
    sqlite3_bind_int64(q, 16, t->deadline_ms);
    sqlite3_bind_int64(q, 17, t->wait_until_ms);
    sqlite3_bind_int64(q, 18, (int64_t)t->cntr);
    sqlite3_bind_int(q, 19, t->kvn);
    sqlite3_bind_int(q, 20, (int)tar_int(t->tar));
    if (t->has_serial) {
        sqlite3_bind_blob(q, 21, t->serial, sizeof(t->serial), SQLITE_STATIC);
    } else {
        sqlite3_bind_null(q, 21);
    }
    sqlite3_bind_int(q, 22, t->n_parts);
    bind_text(q, 23, t->params);
    bind_text(q, 24, t->result);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    s->staged++;
    return 0;
}

int store_task_update(struct store *s, const struct store_task *t, struct ota_err *err)
{
    static const char op[] = "task_update";
    if (!t) {
        return arg_fail(err, op, "task");
    }
    int r = task_check_mutable(t, op, err);
    if (r < 0) {
        return r;
    }
    r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_TASK_UPDATE);
    sqlite3_bind_int64(q, 1, t->id);
    sqlite3_bind_int(q, 2, t->state);
    sqlite3_bind_int(q, 3, t->reason);
    sqlite3_bind_text(q, 4, t->reason_text, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 5, t->attempts);
    sqlite3_bind_int64(q, 6, t->updated_ms);
    sqlite3_bind_int64(q, 7, t->not_before_ms);
    sqlite3_bind_int64(q, 8, t->wait_until_ms);
    sqlite3_bind_int64(q, 9, (int64_t)t->cntr);
    sqlite3_bind_int(q, 10, t->kvn);
    sqlite3_bind_int(q, 11, (int)tar_int(t->tar));
    if (t->has_serial) {
        sqlite3_bind_blob(q, 12, t->serial, sizeof(t->serial), SQLITE_STATIC);
    } else {
        sqlite3_bind_null(q, 12);
    }
    sqlite3_bind_int(q, 13, t->n_parts);
    bind_text(q, 14, t->result);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    if (sqlite3_changes(s->db) == 0) {
        release_if_empty(s);
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no task %lld", op,
                        (long long)t->id);
    }
    s->staged++;
    return 0;
}

int store_task_set_state(struct store *s, int64_t id, enum task_state st, enum task_reason reason,
                         const char *reason_text, int64_t now_ms, struct ota_err *err)
{
    static const char op[] = "task_set_state";
    if (id <= 0) {
        return arg_fail(err, op, "task id");
    }
    if ((unsigned)st >= TASK_STATE__COUNT) {
        return value_fail(err, op, "state");
    }
    if ((unsigned)reason >= TASK_REASON__COUNT) {
        return value_fail(err, op, "reason");
    }
    if (!reason_text) {
        reason_text = "";
    }
    if (strnlen(reason_text, STORE_REASON_TEXT_MAX) >= STORE_REASON_TEXT_MAX) {
        return arg_fail(err, op, "reason_text");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_TASK_SET_STATE);
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int(q, 2, st);
    sqlite3_bind_int(q, 3, reason);
    sqlite3_bind_text(q, 4, reason_text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, now_ms);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    if (sqlite3_changes(s->db) == 0) {
        release_if_empty(s);
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no task %lld", op, (long long)id);
    }
    s->staged++;
    return 0;
}

/* A task row (TASK_COLS_BASE order) into t; params/result are left NULL. */
static int task_row(sqlite3_stmt *q, struct store_task *t)
{
    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(q, 0);
    t->job = sqlite3_column_int64(q, 1);
    t->step = sqlite3_column_int(q, 2);
    t->se = sqlite3_column_int64(q, 3);
    int op = sqlite3_column_int(q, 4);
    int ch = sqlite3_column_int(q, 5);
    int prio = sqlite3_column_int(q, 6);
    int att = sqlite3_column_int(q, 7);
    int maxatt = sqlite3_column_int(q, 8);
    int st = sqlite3_column_int(q, 9);
    int reason = sqlite3_column_int(q, 10);
    if (op < 0 || op >= TASK_OP__COUNT || ch < 0 || ch >= TASK_CH__COUNT || prio < 0 ||
        prio > TASK_PRIO_MAX || att < 0 || att > UINT8_MAX || maxatt < 0 || maxatt > UINT8_MAX ||
        st < 0 || st >= TASK_STATE__COUNT || reason < 0 || reason >= TASK_REASON__COUNT) {
        return -EIO;
    }
    t->op = (enum task_op)op;
    t->channel = (enum task_channel)ch;
    t->prio = (uint8_t)prio;
    t->attempts = (uint8_t)att;
    t->max_attempts = (uint8_t)maxatt;
    t->state = (enum task_state)st;
    t->reason = (enum task_reason)reason;
    if (col_text(q, 11, t->reason_text, sizeof(t->reason_text)) < 0) {
        return -EIO;
    }
    t->created_ms = sqlite3_column_int64(q, 12);
    t->updated_ms = sqlite3_column_int64(q, 13);
    t->not_before_ms = sqlite3_column_int64(q, 14);
    t->deadline_ms = sqlite3_column_int64(q, 15);
    t->wait_until_ms = sqlite3_column_int64(q, 16);
    t->cntr = (uint64_t)sqlite3_column_int64(q, 17);
    t->kvn = (uint8_t)sqlite3_column_int(q, 18);
    uint32_t tar = (uint32_t)sqlite3_column_int(q, 19);
    t->tar[0] = (uint8_t)(tar >> 16);
    t->tar[1] = (uint8_t)(tar >> 8);
    t->tar[2] = (uint8_t)tar;
    if (sqlite3_column_type(q, 20) == SQLITE_BLOB) {
        if (sqlite3_column_bytes(q, 20) != (int)sizeof(t->serial)) {
            return -EIO;
        }
        memcpy(t->serial, sqlite3_column_blob(q, 20), sizeof(t->serial));
        t->has_serial = true;
    }
    t->n_parts = (uint8_t)sqlite3_column_int(q, 21);
    return 0;
}

int store_task_get(struct store *s, int64_t id, struct store_task *out, struct ota_err *err)
{
    static const char op[] = "task_get";
    if (id <= 0 || !out) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_TASK_GET);
    sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        struct store_task t;
        bool oom = false;
        if (task_row(q, &t) < 0) {
            r = corrupt(err, op, "task");
        } else {
            t.params = col_dup(q, 22, &oom);
            t.result = col_dup(q, 23, &oom);
            if (oom) {
                store_task_fini(&t);
                r = ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "store %s: out of memory", op);
            } else {
                *out = t;
            }
        }
    } else if (rc == SQLITE_DONE) {
        r = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no task %lld", op, (long long)id);
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

/* SELECT coalesce(max(id), 0) on a prepared statement. */
static int max_id(struct store *s, enum st which, const char *op, int64_t *id, struct ota_err *err)
{
    if (!id) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, which);
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(q, 0);
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_task_max_id(struct store *s, int64_t *id, struct ota_err *err)
{
    return max_id(s, ST_TASK_MAX, "task_max_id", id, err);
}

/* Walk task rows of a bound statement through cb. */
static int task_walk(struct store *s, sqlite3_stmt *q, const char *op,
                     int (*cb)(void *arg, const struct store_task *t), void *arg,
                     struct ota_err *err)
{
    int rc;
    int r = 0;
    struct store_task t;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (task_row(q, &t) < 0) {
            r = corrupt(err, op, "task");
            break;
        }
        r = cb(arg, &t);
        if (r < 0) {
            break;
        }
        r = 0;
    }
    if (r == 0 && rc != SQLITE_DONE) {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_tasks_open(struct store *s, int (*cb)(void *arg, const struct store_task *t), void *arg,
                     struct ota_err *err)
{
    if (!cb) {
        return arg_fail(err, "tasks_open", "callback");
    }
    return task_walk(s, stmt(s, ST_TASKS_OPEN), "tasks_open", cb, arg, err);
}

int store_tasks_of_se(struct store *s, int64_t se, size_t max,
                      int (*cb)(void *arg, const struct store_task *t), void *arg,
                      struct ota_err *err)
{
    if (se <= 0 || !cb) {
        return arg_fail(err, "tasks_of_se", "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_TASKS_OF_SE);
    sqlite3_bind_int64(q, 1, se);
    sqlite3_bind_int64(q, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    return task_walk(s, q, "tasks_of_se", cb, arg, err);
}

#define GROUP_MAX                                                                                  \
    ((int)TASK_REASON__COUNT > (int)TASK_STATE__COUNT ? (int)TASK_REASON__COUNT                    \
                                                      : (int)TASK_STATE__COUNT)

/* GROUP BY value, count(*) into counts[n] (values outside 0..n-1 are corrupt). */
static int group_counts(struct store *s, sqlite3_stmt *q, const char *op, uint64_t *counts,
                        size_t n, struct ota_err *err)
{
    uint64_t tmp[GROUP_MAX] = {0};
    int rc;
    int r = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(q, 0);
        if (v < 0 || (uint64_t)v >= n) {
            r = corrupt(err, op, "enum value");
            break;
        }
        tmp[v] = (uint64_t)sqlite3_column_int64(q, 1);
    }
    if (r == 0 && rc != SQLITE_DONE) {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    if (r == 0) {
        memcpy(counts, tmp, n * sizeof(*counts));
    }
    return r;
}

int store_task_counts(struct store *s, int64_t job, uint64_t counts[TASK_STATE__COUNT],
                      struct ota_err *err)
{
    if (job < 0 || !counts) {
        return arg_fail(err, "task_counts", "argument");
    }
    sqlite3_stmt *q = stmt(s, job ? ST_TASK_COUNTS_JOB : ST_TASK_COUNTS_ALL);
    if (job) {
        sqlite3_bind_int64(q, 1, job);
    }
    return group_counts(s, q, "task_counts", counts, TASK_STATE__COUNT, err);
}

int store_reason_counts(struct store *s, uint64_t counts[TASK_REASON__COUNT], struct ota_err *err)
{
    if (!counts) {
        return arg_fail(err, "reason_counts", "argument");
    }
    return group_counts(s, stmt(s, ST_REASON_COUNTS), "reason_counts", counts, TASK_REASON__COUNT,
                        err);
}

/* ---- SMS parts ------------------------------------------------------------------------ */

int store_part_put(struct store *s, int64_t task, uint8_t part, const char *msg_id,
                   struct ota_err *err)
{
    static const char op[] = "part_put";
    if (task <= 0 || part == 0) {
        return arg_fail(err, op, "task/part");
    }
    if (!valid_msgid(msg_id)) {
        return arg_fail(err, op, "message id");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_PART_PUT);
    sqlite3_bind_int64(q, 1, task);
    sqlite3_bind_int(q, 2, part);
    sqlite3_bind_text(q, 3, msg_id, -1, SQLITE_STATIC);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    s->staged++;
    return 0;
}

int store_part_dlr(struct store *s, int64_t task, uint8_t part, enum store_dlr dlr,
                   struct ota_err *err)
{
    static const char op[] = "part_dlr";
    if (task <= 0 || part == 0) {
        return arg_fail(err, op, "task/part");
    }
    if ((unsigned)dlr > STORE_DLR_FAILED) {
        return value_fail(err, op, "dlr");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_PART_DLR);
    sqlite3_bind_int64(q, 1, task);
    sqlite3_bind_int(q, 2, part);
    sqlite3_bind_int(q, 3, dlr);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    if (sqlite3_changes(s->db) == 0) {
        release_if_empty(s);
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no part %u of task %lld", op,
                        part, (long long)task);
    }
    s->staged++;
    return 0;
}

static int dlr_of(int v, enum store_dlr *out)
{
    if (v < STORE_DLR_NONE || v > STORE_DLR_FAILED) {
        return -EIO;
    }
    *out = (enum store_dlr)v;
    return 0;
}

int store_part_find(struct store *s, const char *msg_id, int64_t *task, uint8_t *part,
                    enum store_dlr *dlr, struct ota_err *err)
{
    static const char op[] = "part_find";
    if (!valid_msgid(msg_id) || !task || !part) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_PART_FIND);
    sqlite3_bind_text(q, 1, msg_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        int p = sqlite3_column_int(q, 1);
        enum store_dlr d;
        if (p < 1 || p > UINT8_MAX || dlr_of(sqlite3_column_int(q, 2), &d) < 0) {
            r = corrupt(err, op, "part");
        } else {
            *task = sqlite3_column_int64(q, 0);
            *part = (uint8_t)p;
            if (dlr) {
                *dlr = d;
            }
        }
    } else if (rc == SQLITE_DONE) {
        r = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: unknown message id %s", op, msg_id);
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_parts_of(struct store *s, int64_t task,
                   int (*cb)(void *arg, uint8_t part, const char *msg_id, enum store_dlr dlr),
                   void *arg, struct ota_err *err)
{
    static const char op[] = "parts_of";
    if (task <= 0 || !cb) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_PARTS_OF);
    sqlite3_bind_int64(q, 1, task);
    int rc;
    int r = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int p = sqlite3_column_int(q, 0);
        const char *m = (const char *)sqlite3_column_text(q, 1);
        enum store_dlr d;
        if (p < 1 || p > UINT8_MAX || !m || dlr_of(sqlite3_column_int(q, 2), &d) < 0) {
            r = corrupt(err, op, "part");
            break;
        }
        r = cb(arg, (uint8_t)p, m, d);
        if (r < 0) {
            break;
        }
        r = 0;
    }
    if (r == 0 && rc != SQLITE_DONE) {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

/* ---- history and reports -------------------------------------------------------------- */

int store_event(struct store *s, int64_t task, int64_t se, enum task_state from, enum task_state to,
                enum task_reason reason, int64_t t_ms, const char *detail, struct ota_err *err)
{
    static const char op[] = "event";
    if (task <= 0 || se < 0) {
        return arg_fail(err, op, "task/se");
    }
    if ((unsigned)from >= TASK_STATE__COUNT || (unsigned)to >= TASK_STATE__COUNT) {
        return value_fail(err, op, "state");
    }
    if ((unsigned)reason >= TASK_REASON__COUNT) {
        return value_fail(err, op, "reason");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_EVENT_ADD);
    sqlite3_bind_int64(q, 1, task);
    sqlite3_bind_int64(q, 2, se);
    sqlite3_bind_int64(q, 3, t_ms);
    sqlite3_bind_int(q, 4, from);
    sqlite3_bind_int(q, 5, to);
    sqlite3_bind_int(q, 6, reason);
    bind_text(q, 7, detail);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    s->staged++;
    return 0;
}

typedef int (*event_cb)(void *arg, int64_t seq, int64_t task, int64_t se, enum task_state from,
                        enum task_state to, enum task_reason reason, int64_t t_ms);

/* Step q (bound by the caller) over task_event rows, checking the stored enums. */
static int events_walk(struct store *s, sqlite3_stmt *q, const char *op, event_cb cb, void *arg,
                       struct ota_err *err)
{
    int rc;
    int r = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int from = sqlite3_column_int(q, 4);
        int to = sqlite3_column_int(q, 5);
        int reason = sqlite3_column_int(q, 6);
        if (from < 0 || from >= TASK_STATE__COUNT || to < 0 || to >= TASK_STATE__COUNT ||
            reason < 0 || reason >= TASK_REASON__COUNT) {
            r = corrupt(err, op, "event");
            break;
        }
        r = cb(arg, sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1),
               sqlite3_column_int64(q, 2), (enum task_state)from, (enum task_state)to,
               (enum task_reason)reason, sqlite3_column_int64(q, 3));
        if (r < 0) {
            break;
        }
        r = 0;
    }
    if (r == 0 && rc != SQLITE_DONE) {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_events(struct store *s, event_cb cb, void *arg, struct ota_err *err)
{
    if (!cb) {
        return arg_fail(err, "events", "callback");
    }
    return events_walk(s, stmt(s, ST_EVENTS), "events", cb, arg, err);
}

int store_task_events(struct store *s, int64_t task, event_cb cb, void *arg, struct ota_err *err)
{
    if (!cb) {
        return arg_fail(err, "task events", "callback");
    }
    sqlite3_stmt *q = stmt(s, ST_TASK_EVENTS);
    sqlite3_bind_int64(q, 1, task);
    return events_walk(s, q, "task events", cb, arg, err);
}

int store_report(struct store *s, enum store_report_kind kind, enum store_report_disp disp,
                 int64_t task, int64_t t_ms, const char *detail, struct ota_err *err)
{
    static const char op[] = "report";
    if ((unsigned)kind >= STORE_REP__COUNT || (unsigned)disp >= STORE_DISP__COUNT) {
        return value_fail(err, op, "kind/disposition");
    }
    if (task < 0) {
        return arg_fail(err, op, "task");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_REPORT_ADD);
    sqlite3_bind_int(q, 1, kind);
    sqlite3_bind_int(q, 2, disp);
    sqlite3_bind_int64(q, 3, task);
    sqlite3_bind_int64(q, 4, t_ms);
    bind_text(q, 5, detail);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    s->staged++;
    return 0;
}

int store_report_counts(struct store *s, uint64_t counts[STORE_REP__COUNT][STORE_DISP__COUNT],
                        struct ota_err *err)
{
    static const char op[] = "report_counts";
    if (!counts) {
        return arg_fail(err, op, "argument");
    }
    uint64_t tmp[STORE_REP__COUNT][STORE_DISP__COUNT] = {{0}};
    sqlite3_stmt *q = stmt(s, ST_REPORT_COUNTS);
    int rc;
    int r = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int k = sqlite3_column_int(q, 0);
        int d = sqlite3_column_int(q, 1);
        if (k < 0 || k >= STORE_REP__COUNT || d < 0 || d >= STORE_DISP__COUNT) {
            r = corrupt(err, op, "report");
            break;
        }
        tmp[k][d] = (uint64_t)sqlite3_column_int64(q, 2);
    }
    if (r == 0 && rc != SQLITE_DONE) {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    if (r == 0) {
        memcpy(counts, tmp, sizeof(tmp));
    }
    return r;
}

/* ---- jobs ----------------------------------------------------------------------------- */

void store_job_fini(struct store_job *j)
{
    if (j) {
        free(j->params);
        j->params = NULL;
    }
}

static bool valid_opt_seid(const char *a)
{
    return terminated(a, STORE_SEID_MAX + 1) && (a[0] == '\0' || valid_seid(a));
}

/* Checks shared by insert and update. */
static int job_check_mutable(const struct store_job *j, const char *op, struct ota_err *err)
{
    if (j->id <= 0) {
        return arg_fail(err, op, "job id");
    }
    if ((unsigned)j->state > STORE_JOB_DONE) {
        return value_fail(err, op, "state");
    }
    if (!isfinite(j->rate_per_s) || j->rate_per_s < 0) {
        return value_fail(err, op, "rate");
    }
    if (!terminated(j->cursor, sizeof(j->cursor)) ||
        !printable_text(j->cursor, 0, sizeof(j->cursor) - 1)) {
        return arg_fail(err, op, "cursor");
    }
    if (j->n_expanded > INT64_MAX) {
        return value_fail(err, op, "n_expanded");
    }
    return 0;
}

int store_job_insert(struct store *s, const struct store_job *j, struct ota_err *err)
{
    static const char op[] = "job_insert";
    if (!j) {
        return arg_fail(err, op, "job");
    }
    int r = job_check_mutable(j, op, err);
    if (r < 0) {
        return r;
    }
    if ((unsigned)j->kind > STORE_JOB_SEQUENCE) {
        return value_fail(err, op, "kind");
    }
    if (j->prio > TASK_PRIO_MAX) {
        return value_fail(err, op, "prio");
    }
    if ((unsigned)j->op >= TASK_OP__COUNT) {
        return value_fail(err, op, "op");
    }
    if ((unsigned)j->channel >= TASK_CH__COUNT) {
        return value_fail(err, op, "channel");
    }
    if (!valid_opt_seid(j->seid_lo) || !valid_opt_seid(j->seid_hi)) {
        return arg_fail(err, op, "SEID range");
    }
    if (!terminated(j->batch, sizeof(j->batch)) || !valid_batch(j->batch)) {
        return arg_fail(err, op, "batch");
    }
    r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_JOB_INSERT);
    sqlite3_bind_int64(q, 1, j->id);
    sqlite3_bind_int(q, 2, j->kind);
    sqlite3_bind_int(q, 3, j->state);
    sqlite3_bind_int(q, 4, j->prio);
    sqlite3_bind_int(q, 5, j->max_attempts);
    sqlite3_bind_int(q, 6, j->op);
    sqlite3_bind_int(q, 7, j->channel);
    sqlite3_bind_double(q, 8, j->rate_per_s);
    sqlite3_bind_int64(q, 9, j->created_ms);
    sqlite3_bind_int64(q, 10, j->not_before_ms);
    sqlite3_bind_int64(q, 11, j->deadline_ms);
    sqlite3_bind_text(q, 12, j->seid_lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 13, j->seid_hi, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 14, j->batch, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 15, j->cursor, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 16, j->expanded);
    sqlite3_bind_int64(q, 17, (int64_t)j->n_expanded);
    bind_text(q, 18, j->params);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    s->staged++;
    return 0;
}

int store_job_update(struct store *s, const struct store_job *j, struct ota_err *err)
{
    static const char op[] = "job_update";
    if (!j) {
        return arg_fail(err, op, "job");
    }
    int r = job_check_mutable(j, op, err);
    if (r < 0) {
        return r;
    }
    r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_JOB_UPDATE);
    sqlite3_bind_int64(q, 1, j->id);
    sqlite3_bind_int(q, 2, j->state);
    sqlite3_bind_double(q, 3, j->rate_per_s);
    sqlite3_bind_text(q, 4, j->cursor, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 5, j->expanded);
    sqlite3_bind_int64(q, 6, (int64_t)j->n_expanded);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    if (sqlite3_changes(s->db) == 0) {
        release_if_empty(s);
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no job %lld", op,
                        (long long)j->id);
    }
    s->staged++;
    return 0;
}

/* A job row (JOB_COLS_BASE order) into j; params left NULL. */
static int job_row(sqlite3_stmt *q, struct store_job *j)
{
    memset(j, 0, sizeof(*j));
    j->id = sqlite3_column_int64(q, 0);
    int kind = sqlite3_column_int(q, 1);
    int st = sqlite3_column_int(q, 2);
    int prio = sqlite3_column_int(q, 3);
    int maxatt = sqlite3_column_int(q, 4);
    int op = sqlite3_column_int(q, 5);
    int ch = sqlite3_column_int(q, 6);
    int64_t nexp = sqlite3_column_int64(q, 16);
    if (kind < 0 || kind > STORE_JOB_SEQUENCE || st < 0 || st > STORE_JOB_DONE || prio < 0 ||
        prio > TASK_PRIO_MAX || maxatt < 0 || maxatt > UINT8_MAX || op < 0 ||
        op >= TASK_OP__COUNT || ch < 0 || ch >= TASK_CH__COUNT || nexp < 0) {
        return -EIO;
    }
    j->kind = (enum store_job_kind)kind;
    j->state = (enum store_job_state)st;
    j->prio = (uint8_t)prio;
    j->max_attempts = (uint8_t)maxatt;
    j->op = (enum task_op)op;
    j->channel = (enum task_channel)ch;
    j->rate_per_s = sqlite3_column_double(q, 7);
    j->created_ms = sqlite3_column_int64(q, 8);
    j->not_before_ms = sqlite3_column_int64(q, 9);
    j->deadline_ms = sqlite3_column_int64(q, 10);
    if (col_text(q, 11, j->seid_lo, sizeof(j->seid_lo)) < 0 ||
        col_text(q, 12, j->seid_hi, sizeof(j->seid_hi)) < 0 ||
        col_text(q, 13, j->batch, sizeof(j->batch)) < 0 ||
        col_text(q, 14, j->cursor, sizeof(j->cursor)) < 0) {
        return -EIO;
    }
    j->expanded = sqlite3_column_int(q, 15) != 0;
    j->n_expanded = (uint64_t)nexp;
    return 0;
}

int store_job_get(struct store *s, int64_t id, struct store_job *out, struct ota_err *err)
{
    static const char op[] = "job_get";
    if (id <= 0 || !out) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_JOB_GET);
    sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        struct store_job j;
        bool oom = false;
        if (job_row(q, &j) < 0) {
            r = corrupt(err, op, "job");
        } else {
            j.params = col_dup(q, 17, &oom);
            if (oom) {
                r = ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "store %s: out of memory", op);
            } else {
                *out = j;
            }
        }
    } else if (rc == SQLITE_DONE) {
        r = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no job %lld", op, (long long)id);
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_job_max_id(struct store *s, int64_t *id, struct ota_err *err)
{
    return max_id(s, ST_JOB_MAX, "job_max_id", id, err);
}

int store_jobs_open(struct store *s, int (*cb)(void *arg, const struct store_job *j), void *arg,
                    struct ota_err *err)
{
    static const char op[] = "jobs_open";
    if (!cb) {
        return arg_fail(err, op, "callback");
    }
    sqlite3_stmt *q = stmt(s, ST_JOBS_OPEN);
    int rc;
    int r = 0;
    struct store_job j;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (job_row(q, &j) < 0) {
            r = corrupt(err, op, "job");
            break;
        }
        r = cb(arg, &j);
        if (r < 0) {
            break;
        }
        r = 0;
    }
    if (r == 0 && rc != SQLITE_DONE) {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_job_member_add(struct store *s, int64_t job, uint64_t idx, int64_t se,
                         struct ota_err *err)
{
    static const char op[] = "job_member_add";
    if (job <= 0 || se <= 0 || idx > INT64_MAX) {
        return arg_fail(err, op, "job/idx/se");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_MEMBER_ADD);
    sqlite3_bind_int64(q, 1, job);
    sqlite3_bind_int64(q, 2, (int64_t)idx);
    sqlite3_bind_int64(q, 3, se);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    s->staged++;
    return 0;
}

int store_job_members(struct store *s, int64_t job, uint64_t from, size_t max, int64_t *ses,
                      size_t *n, struct ota_err *err)
{
    static const char op[] = "job_members";
    if (job <= 0 || from > INT64_MAX || !n || (max > 0 && !ses)) {
        return arg_fail(err, op, "argument");
    }
    if (max == 0) {
        *n = 0;
        return 0;
    }
    sqlite3_stmt *q = stmt(s, ST_MEMBERS);
    sqlite3_bind_int64(q, 1, job);
    sqlite3_bind_int64(q, 2, (int64_t)from);
    sqlite3_bind_int64(q, 3, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    size_t k = 0;
    int rc = SQLITE_DONE;
    while (k < max && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        ses[k++] = sqlite3_column_int64(q, 0);
    }
    int r = 0;
    if (k < max && rc != SQLITE_DONE) {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    if (r == 0) {
        *n = k;
    }
    return r;
}

/* ---- idempotency keys ------------------------------------------------------------------ */

static bool valid_idem_key(const char *p)
{
    return printable_text(p, 1, STORE_IDEM_KEY_MAX);
}

int store_idem_put(struct store *s, const char *key, const uint8_t hash[32], int status,
                   const char *response, int64_t t_ms, struct ota_err *err)
{
    static const char op[] = "idem_put";
    if (!valid_idem_key(key)) {
        return arg_fail(err, op, "key");
    }
    if (!hash || !response) {
        return arg_fail(err, op, "hash/response");
    }
    if (status < 100 || status > 599) {
        return value_fail(err, op, "status");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_IDEM_PUT);
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, hash, 32, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, status);
    sqlite3_bind_text(q, 4, response, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, t_ms);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    s->staged++;
    return 0;
}

int store_idem_get(struct store *s, const char *key, uint8_t hash[32], int *status, char **response,
                   int64_t *t_ms, struct ota_err *err)
{
    static const char op[] = "idem_get";
    if (!valid_idem_key(key)) {
        return arg_fail(err, op, "key");
    }
    if (!hash || !status || !response) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_IDEM_GET);
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        bool oom = false;
        if (sqlite3_column_bytes(q, 0) != 32 || sqlite3_column_type(q, 2) != SQLITE_TEXT) {
            r = corrupt(err, op, "idem");
        } else {
            char *body = col_dup(q, 2, &oom);
            if (!body) {
                r = ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "store %s: out of memory", op);
            } else {
                memcpy(hash, sqlite3_column_blob(q, 0), 32);
                *status = sqlite3_column_int(q, 1);
                *response = body;
                if (t_ms) {
                    *t_ms = sqlite3_column_int64(q, 3);
                }
            }
        }
    } else if (rc == SQLITE_DONE) {
        r = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no key %s", op, key);
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_idem_prune(struct store *s, int64_t before_ms, uint64_t *n, struct ota_err *err)
{
    static const char op[] = "idem_prune";
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_IDEM_PRUNE);
    sqlite3_bind_int64(q, 1, before_ms);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    int changed = sqlite3_changes(s->db);
    if (n) {
        *n = (uint64_t)changed;
    }
    if (changed > 0) {
        s->staged++;
    } else {
        release_if_empty(s);
    }
    return 0;
}

/* ---- task listing (after the idempotency records: schema 2 work) ------------------------ */

int store_tasks_list(struct store *s, const struct store_task_filter *f, size_t max,
                     int (*cb)(void *arg, const struct store_task *t), void *arg,
                     struct ota_err *err)
{
    static const char op[] = "tasks_list";
    if (!f || !cb || f->job < 0 || f->se < 0 || f->before_id < 0 || f->created_from < 0 ||
        f->created_to < 0) {
        return arg_fail(err, op, "argument");
    }
    if (f->state < -1 || f->state >= TASK_STATE__COUNT) {
        return value_fail(err, op, "state");
    }
    sqlite3_stmt *q = stmt(s, f->job  ? ST_TASKS_LIST_JOB
                              : f->se ? ST_TASKS_LIST_SE
                                      : ST_TASKS_LIST_ALL);
    sqlite3_bind_int64(q, 1, f->job);
    sqlite3_bind_int64(q, 2, f->se);
    sqlite3_bind_int64(q, 3, f->before_id ? f->before_id : INT64_MAX);
    sqlite3_bind_int(q, 4, f->state);
    sqlite3_bind_int64(q, 5, f->created_from);
    sqlite3_bind_int64(q, 6, f->created_to ? f->created_to : INT64_MAX);
    sqlite3_bind_int64(q, 7, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    return task_walk(s, q, op, cb, arg, err);
}

/* ---- result callback outbox (schema 3) ---------------------------------------------------- */

void store_cb_fini(struct store_cb *c)
{
    if (c) {
        free(c->url);
        free(c->body);
        c->url = NULL;
        c->body = NULL;
    }
}

int store_cb_put(struct store *s, int64_t task, const char *url, const char *body, int64_t now_ms,
                 int64_t *id, struct ota_err *err)
{
    static const char op[] = "cb_put";
    if (task <= 0 || !printable_text(url, 1, STORE_CB_URL_MAX) || !body || now_ms < 0) {
        return arg_fail(err, op, "task/url/body/time");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_CB_PUT);
    sqlite3_bind_int64(q, 1, task);
    sqlite3_bind_text(q, 2, url, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, now_ms);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    s->staged++;
    if (id) {
        *id = sqlite3_last_insert_rowid(s->db);
    }
    return 0;
}

int store_cb_set(struct store *s, int64_t id, enum store_cb_state st, uint32_t attempts,
                 int64_t next_at_ms, struct ota_err *err)
{
    static const char op[] = "cb_set";
    if (id <= 0) {
        return arg_fail(err, op, "id");
    }
    if ((int)st < 0 || st > STORE_CB_ABANDONED) {
        return value_fail(err, op, "state");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_CB_SET);
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int(q, 2, (int)st);
    sqlite3_bind_int64(q, 3, attempts);
    sqlite3_bind_int64(q, 4, next_at_ms);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    if (sqlite3_changes(s->db) == 0) {
        release_if_empty(s);
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no callback %lld", op,
                        (long long)id);
    }
    s->staged++;
    return 0;
}

/* Row of CB_COLS -> out (url/body malloc'ed). */
static int cb_row(sqlite3_stmt *q, struct store_cb *out, const char *op, struct ota_err *err)
{
    bool oom = false;
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(q, 0);
    out->task = sqlite3_column_int64(q, 1);
    int st = sqlite3_column_int(q, 2);
    if (st < 0 || st > STORE_CB_ABANDONED) {
        return corrupt(err, op, "callback state");
    }
    out->state = (enum store_cb_state)st;
    out->attempts = (uint32_t)sqlite3_column_int64(q, 3);
    out->next_at_ms = sqlite3_column_int64(q, 4);
    out->created_ms = sqlite3_column_int64(q, 5);
    out->url = col_dup(q, 6, &oom);
    out->body = col_dup(q, 7, &oom);
    if (oom || !out->url || !out->body) {
        store_cb_fini(out);
        return oom ? ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "store %s: out of memory", op)
                   : corrupt(err, op, "callback");
    }
    return 0;
}

int store_cb_get_task(struct store *s, int64_t task, struct store_cb *out, struct ota_err *err)
{
    static const char op[] = "cb_get";
    if (task <= 0 || !out) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_CB_GET_TASK);
    sqlite3_bind_int64(q, 1, task);
    int rc = sqlite3_step(q);
    int r;
    if (rc == SQLITE_ROW) {
        r = cb_row(q, out, op, err);
    } else if (rc == SQLITE_DONE) {
        r = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no callback for task %lld", op,
                     (long long)task);
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_cb_due(struct store *s, int64_t now_ms, size_t max,
                 int (*cb)(void *arg, const struct store_cb *c), void *arg, struct ota_err *err)
{
    static const char op[] = "cb_due";
    if (!cb) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_CB_DUE);
    sqlite3_bind_int64(q, 1, now_ms);
    sqlite3_bind_int64(q, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    int r = 0;
    for (;;) {
        int rc = sqlite3_step(q);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            r = db_fail(s, rc, op, err);
            break;
        }
        struct store_cb c;
        r = cb_row(q, &c, op, err);
        if (r < 0) {
            break;
        }
        r = cb(arg, &c);
        store_cb_fini(&c);
        if (r < 0) {
            break;
        }
    }
    sqlite3_reset(q);
    return r;
}

int store_cb_watermark(struct store *s, int64_t *ms, struct ota_err *err)
{
    static const char op[] = "cb_watermark";
    if (!ms) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_CB_MARK);
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        *ms = sqlite3_column_int64(q, 0);
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_cb_pending(struct store *s, uint64_t *n, struct ota_err *err)
{
    static const char op[] = "cb_pending";
    if (!n) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_CB_PENDING);
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        *n = (uint64_t)sqlite3_column_int64(q, 0);
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_cb_unstaged(struct store *s, int64_t since_ms, int (*cb)(void *arg, int64_t task),
                      void *arg, struct ota_err *err)
{
    static const char op[] = "cb_unstaged";
    if (!cb) {
        return arg_fail(err, op, "argument");
    }
    /*
     * Collected first: cb stages outbox rows, and inserting while this
     * statement's NOT EXISTS is still being evaluated would be fragile.
     */
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *q = stmt(s, ST_CB_UNSTAGED);
    sqlite3_bind_int64(q, 1, since_ms);
    int r = 0;
    for (;;) {
        int rc = sqlite3_step(q);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            r = db_fail(s, rc, op, err);
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            int64_t *p = realloc(ids, nc * sizeof(*p));
            if (!p) {
                r = ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "store %s: out of memory", op);
                break;
            }
            ids = p;
            cap = nc;
        }
        ids[n++] = sqlite3_column_int64(q, 0);
    }
    sqlite3_reset(q);
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = cb(arg, ids[i]);
    }
    free(ids);
    return r;
}

/* ---- SE binding, loss list, platform model (schema 4) ------------------------------------ */

static int se_bind_write(struct store *s, const char *op, int64_t id, const char *msisdn,
                         int64_t unbound_ms, struct ota_err *err)
{
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_SE_BIND);
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_text(q, 2, msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, unbound_ms);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    if (sqlite3_changes(s->db) == 0) {
        release_if_empty(s);
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no SE %lld", op, (long long)id);
    }
    s->staged++;
    return 0;
}

int store_se_unbind(struct store *s, int64_t id, int64_t now_ms, struct ota_err *err)
{
    if (id <= 0 || now_ms <= 0) {
        return arg_fail(err, "se_unbind", "id/time");
    }
    return se_bind_write(s, "se_unbind", id, "", now_ms, err);
}

int store_se_bind(struct store *s, int64_t id, const char *msisdn, struct ota_err *err)
{
    if (id <= 0 || !valid_msisdn(msisdn, 1)) {
        return arg_fail(err, "se_bind", "id/msisdn");
    }
    return se_bind_write(s, "se_bind", id, msisdn, 0, err);
}

static int loss_row(sqlite3_stmt *q, struct store_loss *out)
{
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(q, 0);
    int kind = sqlite3_column_int(q, 1);
    if (kind != STORE_LOSS_SEID && kind != STORE_LOSS_MSISDN) {
        return -EIO;
    }
    out->kind = (enum store_loss_kind)kind;
    if (col_text(q, 2, out->value, sizeof(out->value)) < 0 ||
        col_text(q, 3, out->reason, sizeof(out->reason)) < 0) {
        return -EIO;
    }
    out->created_ms = sqlite3_column_int64(q, 4);
    return 0;
}

int store_se_admit(struct store *s, const struct store_se *se, struct ota_err *err)
{
    if (!se) {
        return arg_fail(err, "se_admit", "argument");
    }
    if (se->unbound_ms) {
        return ota_fail(err, -ENOLINK, OTA_ERR_STATE, "SE %s is unbound from its MSISDN", se->seid);
    }
    struct store_loss l;
    int r = store_loss_match(s, se->seid, se->msisdn, &l, err);
    if (r == -ENOENT) {
        return 0;
    }
    if (r < 0) {
        return r;
    }
    return ota_fail(err, -EACCES, OTA_ERR_STATE, "SE %s is on the loss list (entry %lld, %s %s)",
                    se->seid, (long long)l.id, l.kind == STORE_LOSS_SEID ? "seid" : "msisdn",
                    l.value);
}

static bool valid_loss_value(enum store_loss_kind kind, const char *v)
{
    return kind == STORE_LOSS_SEID     ? valid_seid(v)
           : kind == STORE_LOSS_MSISDN ? valid_msisdn(v, 1)
                                       : false;
}

int store_loss_put(struct store *s, enum store_loss_kind kind, const char *value,
                   const char *reason, int64_t now_ms, int64_t *id, struct ota_err *err)
{
    static const char op[] = "loss_put";
    if (kind != STORE_LOSS_SEID && kind != STORE_LOSS_MSISDN) {
        return value_fail(err, op, "kind");
    }
    if (!valid_loss_value(kind, value) || !printable_text(reason, 0, STORE_REASON_TEXT_MAX - 1) ||
        !id || now_ms < 0) {
        return arg_fail(err, op, "value/reason/id/time");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_LOSS_PUT);
    sqlite3_bind_int(q, 1, (int)kind);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, now_ms);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    if (sqlite3_changes(s->db) == 1) {
        *id = sqlite3_last_insert_rowid(s->db);
        s->staged++;
        return 0;
    }
    q = stmt(s, ST_LOSS_ID);
    sqlite3_bind_int(q, 1, (int)kind);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        release_if_empty(s);
        return rc == SQLITE_DONE ? corrupt(err, op, "loss index") : db_fail(s, rc, op, err);
    }
    *id = sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    release_if_empty(s);
    return ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE, "store %s: %s is listed already (entry %lld)",
                    op, value, (long long)*id);
}

int store_loss_del(struct store *s, int64_t id, struct ota_err *err)
{
    static const char op[] = "loss_del";
    if (id <= 0) {
        return arg_fail(err, op, "id");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_LOSS_DEL);
    sqlite3_bind_int64(q, 1, id);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    if (sqlite3_changes(s->db) == 0) {
        release_if_empty(s);
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no entry %lld", op,
                        (long long)id);
    }
    s->staged++;
    return 0;
}

/* One-row loss-list lookup on a bound statement. */
static int loss_one(struct store *s, sqlite3_stmt *q, const char *op, struct store_loss *out,
                    struct ota_err *err)
{
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        struct store_loss tmp;
        if (loss_row(q, &tmp) < 0) {
            r = corrupt(err, op, "loss entry");
        } else if (out) {
            *out = tmp;
        }
    } else if (rc == SQLITE_DONE) {
        r = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no such entry", op);
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}

int store_loss_get(struct store *s, int64_t id, struct store_loss *out, struct ota_err *err)
{
    if (id <= 0 || !out) {
        return arg_fail(err, "loss_get", "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_LOSS_GET);
    sqlite3_bind_int64(q, 1, id);
    return loss_one(s, q, "loss_get", out, err);
}

int store_loss_match(struct store *s, const char *seid, const char *msisdn, struct store_loss *out,
                     struct ota_err *err)
{
    static const char op[] = "loss_match";
    bool has_seid = seid && seid[0], has_msisdn = msisdn && msisdn[0];
    if ((has_seid && !valid_seid(seid)) || (has_msisdn && !valid_msisdn(msisdn, 1))) {
        return arg_fail(err, op, "seid/msisdn");
    }
    if (!has_seid && !has_msisdn) {
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: nothing to match", op);
    }
    sqlite3_stmt *q = stmt(s, ST_LOSS_MATCH);
    bind_text(q, 1, has_seid ? seid : NULL);
    bind_text(q, 2, has_msisdn ? msisdn : NULL);
    return loss_one(s, q, op, out, err);
}

int store_loss_list(struct store *s, int64_t after_id, size_t max,
                    int (*cb)(void *arg, const struct store_loss *l), void *arg,
                    struct ota_err *err)
{
    static const char op[] = "loss_list";
    if (!cb || after_id < 0) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_LOSS_LIST);
    sqlite3_bind_int64(q, 1, after_id);
    sqlite3_bind_int64(q, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    int r = 0;
    for (;;) {
        int rc = sqlite3_step(q);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            r = db_fail(s, rc, op, err);
            break;
        }
        struct store_loss l;
        if (loss_row(q, &l) < 0) {
            r = corrupt(err, op, "loss entry");
            break;
        }
        r = cb(arg, &l);
        if (r < 0) {
            break;
        }
    }
    sqlite3_reset(q);
    return r;
}

int store_se_model_put(struct store *s, int64_t se, const char *json, int64_t now_ms,
                       struct ota_err *err)
{
    static const char op[] = "se_model_put";
    if (se <= 0 || !json || !json[0] || now_ms < 0) {
        return arg_fail(err, op, "se/json/time");
    }
    int r = stage_begin(s, op, err);
    if (r < 0) {
        return r;
    }
    sqlite3_stmt *q = stmt(s, ST_MODEL_PUT);
    sqlite3_bind_int64(q, 1, se);
    sqlite3_bind_text(q, 2, json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, now_ms);
    r = write_step(s, q, op, err);
    if (r < 0) {
        return r;
    }
    s->staged++;
    return 0;
}

int store_se_model_get(struct store *s, int64_t se, char **json, int64_t *updated_ms,
                       struct ota_err *err)
{
    static const char op[] = "se_model_get";
    if (se <= 0 || !json) {
        return arg_fail(err, op, "argument");
    }
    sqlite3_stmt *q = stmt(s, ST_MODEL_GET);
    sqlite3_bind_int64(q, 1, se);
    int rc = sqlite3_step(q);
    int r = 0;
    if (rc == SQLITE_ROW) {
        bool oom = false;
        char *t = col_dup(q, 0, &oom);
        if (!t) {
            r = oom ? ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "store %s: out of memory", op)
                    : corrupt(err, op, "model");
        } else {
            *json = t;
            if (updated_ms) {
                *updated_ms = sqlite3_column_int64(q, 1);
            }
        }
    } else if (rc == SQLITE_DONE) {
        r = ota_fail(err, -ENOENT, OTA_ERR_MISSING, "store %s: no model for SE %lld", op,
                     (long long)se);
    } else {
        r = db_fail(s, rc, op, err);
    }
    sqlite3_reset(q);
    return r;
}
