/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log (gateway/audit.h, issue #7, spec 7.2): appends hash-chained
 * entries (gateway/audit_chain.h) to their own SQLite file,
 * "<db_path>.audit", through this module's own connection, one transaction
 * with a full fsync per entry, before gw_audit() returns.
 *
 * Why a file of its own and not a table in the engine's: the engine keeps
 * its write transaction open while it stages a batch, so a write on the
 * same file would have to wait for a commit that cannot happen while the
 * loop waits (a deadlock, broken only by the busy timeout), or force one
 * with eng_flush() at every entry, so a burst of failed logins would cost
 * the engine its group commit. With two files neither waits for the other.
 *
 * Start: the tail entry's hash and link and the row count are checked; a
 * broken tail refuses the start (an operator runs otatool audit-verify).
 * The daemon's own start and stop are audited here ("daemon.start",
 * "daemon.stop"), and the head (seq, hash) is logged at both so that a log
 * kept elsewhere anchors the chain against a cut tail.
 */
#include "gateway/audit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gateway/audit_chain.h"
#include "gateway/gw.h"

#define AUDIT_PATH_MAX 4096
#define TRUNC_MARK "...(truncated)"

struct gw_audit {
    sqlite3 *db;
    char path[AUDIT_PATH_MAX];
    int64_t head_seq;
    uint8_t head[GW_AUDIT_HASH_LEN];
};

static void audit_free(struct gw_audit *a)
{
    if (!a) {
        return;
    }
    sqlite3_close(a->db);
    free(a);
}

/*
 * A field as it may go into the key=value log line: quote, backslash and
 * control characters escaped, so that a caller's text (a reason typed by a
 * platform) cannot end the value or forge a line. The entry keeps the text as given.
 */
static const char *log_safe(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return out;
}

/* Largest n <= max that does not split a UTF-8 sequence of s (a cut field stays valid text). */
static size_t utf8_cut(const char *s, size_t max)
{
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    return max;
}

/*
 * Copy s into dst (cap octets) or, when too long, as much as fits with a
 * visible marker: a cut field is recorded as cut, never silently.
 */
static void field_copy(char *dst, size_t cap, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < cap) {
        memcpy(dst, s ? s : "", n + 1);
        return;
    }
    size_t keep = utf8_cut(s, cap - sizeof(TRUNC_MARK));
    memcpy(dst, s, keep);
    memcpy(dst + keep, TRUNC_MARK, sizeof(TRUNC_MARK));
}

static int audit_vappend(struct gw *g, const char *actor, const char *action, const char *target,
                         const char *fmt, va_list ap) OTA_PRINTF(5, 0);

static int audit_vappend(struct gw *g, const char *actor, const char *action, const char *target,
                         const char *fmt, va_list ap)
{
    char f_actor[GW_AUDIT_ACTOR_MAX + 1], f_action[GW_AUDIT_ACTION_MAX + 1];
    char f_target[GW_AUDIT_TARGET_MAX + 1], detail[GW_AUDIT_DETAIL_MAX + 1] = "";
    field_copy(f_actor, sizeof(f_actor), actor && actor[0] ? actor : "anonymous");
    field_copy(f_action, sizeof(f_action), action);
    field_copy(f_target, sizeof(f_target), target);
    if (fmt) {
        int n = vsnprintf(detail, sizeof(detail), fmt, ap);
        if (n < 0) {
            snprintf(detail, sizeof(detail), "(detail could not be formatted)");
        } else if ((size_t)n >= sizeof(detail)) {
            size_t keep = utf8_cut(detail, sizeof(detail) - sizeof(TRUNC_MARK));
            memcpy(detail + keep, TRUNC_MARK, sizeof(TRUNC_MARK));
        }
    }
    /* for the log line only; static: one thread, and too big for the stack next to detail */
    static char l_actor[4 * GW_AUDIT_ACTOR_MAX + 1], l_action[4 * GW_AUDIT_ACTION_MAX + 1];
    static char l_target[4 * GW_AUDIT_TARGET_MAX + 1], l_detail[4 * GW_AUDIT_DETAIL_MAX + 1];
    log_safe(f_actor, l_actor, sizeof(l_actor));
    log_safe(f_action, l_action, sizeof(l_action));
    log_safe(f_target[0] ? f_target : "-", l_target, sizeof(l_target));
    log_safe(detail, l_detail, sizeof(l_detail));
    if (!g->audit) {
        /* No log open: a hand-built context (unit tests) or after gw_audit_stop. */
        gw_log(g, GW_CONF_LOG_NOTICE,
               "audit (not stored) actor=\"%s\" action=%s target=\"%s\" detail=\"%s\"", l_actor,
               l_action, l_target, l_detail);
        return 0;
    }
    struct ota_err err;
    int64_t seq = 0;
    int rc = gw_audit_db_append(g->audit->db, f_actor, f_action, f_target, detail, &seq,
                                g->audit->head, &err);
    if (rc < 0) {
        gw_log(g, GW_CONF_LOG_ERR,
               "audit write failed actor=\"%s\" action=%s target=\"%s\" err=\"%s\"", l_actor,
               l_action, l_target, err.msg);
        return rc;
    }
    g->audit->head_seq = seq;
    gw_log(g, GW_CONF_LOG_NOTICE,
           "audit seq=%lld actor=\"%s\" action=%s target=\"%s\" detail=\"%s\"", (long long)seq,
           l_actor, l_action, l_target, l_detail);
    return 0;
}

int gw_audit(struct gw *g, const char *actor, const char *action, const char *target,
             const char *fmt, ...)
{
    if (!g || !action || !action[0]) {
        return -EINVAL;
    }
    va_list ap;
    va_start(ap, fmt);
    int rc = audit_vappend(g, actor, action, target, fmt, ap);
    va_end(ap);
    return rc;
}

int64_t gw_audit_head_seq(const struct gw *g)
{
    return g && g->audit ? g->audit->head_seq : 0;
}

static void log_head(struct gw *g, const char *when)
{
    char hx[2 * GW_AUDIT_HASH_LEN + 1];
    gw_audit_hash_hex(g->audit->head, hx);
    gw_log(g, GW_CONF_LOG_NOTICE, "audit head at=%s seq=%lld hash=%s file=%s", when,
           (long long)g->audit->head_seq, hx, g->audit->path);
}

int gw_audit_start(struct gw *g, struct ota_err *err)
{
    if (!g) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "audit: NULL context");
    }
    if (g->audit) {
        return 0;
    }
    struct gw_audit *a = calloc(1, sizeof(*a));
    if (!a) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "audit: out of memory");
    }
    int rc = gw_audit_path(g->conf.db_path, a->path, sizeof(a->path));
    if (rc < 0) {
        audit_free(a);
        return ota_fail(err, rc, OTA_ERR_ARG, "audit: no file name from db_path");
    }
    bool restored = false;
    rc = gw_audit_db_open(a->path, false, &a->db, &restored, err);
    if (rc < 0) {
        audit_free(a);
        return rc;
    }
    struct gw_audit_report rep;
    rc = gw_audit_check_tail(a->db, &rep, err);
    if (rc == -EBADMSG) {
        rc = ota_fail(err, rc, OTA_ERR_BAD_CC,
                      "audit log %s is broken (%s) at entry %lld: %s; run otatool audit-verify",
                      a->path, gw_audit_break_name(rep.why), (long long)rep.bad_seq, rep.what);
    }
    if (rc < 0) {
        audit_free(a);
        return rc;
    }
    a->head_seq = rep.head_seq;
    memcpy(a->head, rep.head_hash, GW_AUDIT_HASH_LEN);
    g->audit = a;
    log_head(g, "start");
    if (restored) {
        gw_log(g, GW_CONF_LOG_ERR, "audit log guard triggers were missing and are restored file=%s",
               a->path);
        rc = gw_audit(g, "system", "audit.guards-restored", NULL,
                      "append-only triggers were missing from %s", a->path);
    }
    if (rc == 0) {
        rc = gw_audit(g, "system", "daemon.start", NULL, "pid=%ld", (long)getpid());
    }
    if (rc < 0) {
        g->audit = NULL;
        audit_free(a);
        return ota_fail(err, rc, OTA_ERR_STATE, "audit log: first entry could not be written");
    }
    return 0;
}

void gw_audit_stop(struct gw *g)
{
    if (!g || !g->audit) {
        return;
    }
    (void)gw_audit(g, "system", "daemon.stop", NULL, "pid=%ld", (long)getpid());
    log_head(g, "stop");
    audit_free(g->audit);
    g->audit = NULL;
}
