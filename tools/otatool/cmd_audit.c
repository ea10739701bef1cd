/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otatool audit-verify / audit-list (issue #7, spec 7.2): read the daemon's
 * hash-chained audit log (gateway/audit_chain.h) read-only. verify walks
 * the whole chain and names the first broken entry; list prints entries as
 * stored, one per line, or as JSON lines.
 *
 * --db takes the audit file itself ("<db_path>.audit") or the engine's
 * database, in which case its audit file next to it is used.
 */
#include "otatool.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "gateway/audit_chain.h"

#define PATH_CAP 4096

/* The audit file for what --db named: itself when it holds the table, else "<it>.audit". */
static int open_log(const char *db_path, sqlite3 **db, char *used, size_t cap)
{
    struct ota_err err;
    int rc = gw_audit_db_open(db_path, true, db, NULL, &err);
    if (rc == 0) {
        snprintf(used, cap, "%s", db_path);
        return 0;
    }
    char alt[PATH_CAP];
    if (gw_audit_path(db_path, alt, sizeof(alt)) == 0 && access(alt, R_OK) == 0 &&
        gw_audit_db_open(alt, true, db, NULL, &err) == 0) {
        snprintf(used, cap, "%s", alt);
        return 0;
    }
    return die("%s: %s", db_path, err.msg);
}

static void put_time(FILE *f, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32] = "?";
    if (gmtime_r(&s, &tm)) {
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    }
    fprintf(f, "%s.%03dZ", buf, (int)(ms % 1000 < 0 ? 0 : ms % 1000));
}

/* Printable text only: a tampered field could hold terminal escapes. */
static void put_safe(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\x%02x", *p);
        } else {
            fputc(*p, f);
        }
    }
}

static void verify_usage(FILE *f)
{
    fputs("usage: otatool audit-verify --db FILE [--quiet]\n"
          "  FILE is the audit log (<db>.audit) or the engine database next to it.\n"
          "  Prints \"ok N entries head=SEQ:HASH\" and exits 0 when the chain is intact;\n"
          "  else the first broken entry (its seq and what broke) and exits 1.\n",
          f);
}

int cmd_audit_verify(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    bool quiet = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            path = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            verify_usage(stdout);
            return TOOL_OK;
        default:
            verify_usage(stderr);
            return TOOL_USAGE;
        }
    }
    if (!path || optind != argc) {
        verify_usage(stderr);
        return TOOL_USAGE;
    }
    sqlite3 *db = NULL;
    char used[PATH_CAP];
    if (open_log(path, &db, used, sizeof(used)) != 0) {
        return TOOL_USAGE;
    }
    struct gw_audit_report rep;
    struct ota_err err;
    int rc = gw_audit_verify(db, NULL, NULL, &rep, &err);
    sqlite3_close(db);
    if (rc == -EBADMSG) {
        printf("broken at entry %" PRId64 " (%s): %s; %" PRIu64 " entries before it verify\n",
               rep.bad_seq, gw_audit_break_name(rep.why), rep.what, rep.n_ok);
        return TOOL_FAIL;
    }
    if (rc < 0) {
        return die("%s: %s", used, err.msg);
    }
    char hx[2 * GW_AUDIT_HASH_LEN + 1];
    gw_audit_hash_hex(rep.head_hash, hx);
    if (!quiet) {
        printf("ok %" PRIu64 " entries head=%" PRId64 ":%s\n", rep.n_ok, rep.head_seq, hx);
    }
    return TOOL_OK;
}

struct list_ctx {
    bool json;
    int rc;
};

static int list_one(void *arg, const struct gw_audit_entry *e)
{
    struct list_ctx *l = arg;
    if (l->json) {
        char ph[2 * GW_AUDIT_HASH_LEN + 1], h[2 * GW_AUDIT_HASH_LEN + 1];
        gw_audit_hash_hex(e->prev_hash, ph);
        gw_audit_hash_hex(e->hash, h);
        json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "seq", (json_int_t)e->seq,
                              "ts_ms", (json_int_t)e->ts_ms, "actor", e->actor, "action", e->action,
                              "target", e->target, "detail", e->detail, "prev_hash", ph, "hash", h);
        char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!txt) {
            l->rc = die("entry %" PRId64 " cannot be printed as JSON (not UTF-8?)", e->seq);
            return -EINVAL;
        }
        puts(txt);
        free(txt);
        return 0;
    }
    printf("%" PRId64 " ", e->seq);
    put_time(stdout, e->ts_ms);
    fputs(" actor=", stdout);
    put_safe(stdout, e->actor);
    fputs(" action=", stdout);
    put_safe(stdout, e->action);
    fputs(" target=", stdout);
    put_safe(stdout, e->target[0] ? e->target : "-");
    if (e->detail[0]) {
        fputs(" detail=\"", stdout);
        put_safe(stdout, e->detail);
        fputc('"', stdout);
    }
    fputc('\n', stdout);
    return 0;
}

static void list_usage(FILE *f)
{
    fputs("usage: otatool audit-list --db FILE [--from SEQ] [--limit N] [--json]\n"
          "  Entries as stored (not verified: run audit-verify), oldest first.\n",
          f);
}

int cmd_audit_list(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},    {"from", required_argument, NULL, 'f'},
        {"limit", required_argument, NULL, 'n'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *path = NULL;
    uint64_t from = 1, limit = 0;
    struct list_ctx l = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:f:n:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            path = optarg;
            break;
        case 'f':
            if (parse_uint("--from", optarg, INT64_MAX, &from) < 0) {
                return TOOL_USAGE;
            }
            break;
        case 'n':
            if (parse_uint("--limit", optarg, 1000000000, &limit) < 0) {
                return TOOL_USAGE;
            }
            break;
        case 'j':
            l.json = true;
            break;
        case 'h':
            list_usage(stdout);
            return TOOL_OK;
        default:
            list_usage(stderr);
            return TOOL_USAGE;
        }
    }
    if (!path || optind != argc) {
        list_usage(stderr);
        return TOOL_USAGE;
    }
    sqlite3 *db = NULL;
    char used[PATH_CAP];
    if (open_log(path, &db, used, sizeof(used)) != 0) {
        return TOOL_USAGE;
    }
    struct ota_err err;
    int rc = gw_audit_list(db, (int64_t)from, (size_t)limit, list_one, &l, &err);
    sqlite3_close(db);
    if (rc < 0) {
        return l.rc ? l.rc : die("%s: %s", used, err.msg);
    }
    return TOOL_OK;
}
