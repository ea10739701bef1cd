/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otatool token create / list / revoke (issue #7, spec 7.1): manage API
 * tokens directly in the daemon's auth file (gateway/auth.h), with or
 * without otagw running, so that the first admin token exists before the
 * first start. A running otagw sees the change within GW_AUTH_RECHECK_S.
 *
 * --db takes the engine database named by [engine] db (the tokens live in
 * "<db>.auth" next to it) or the ".auth" file itself.
 *
 * Changes made here go into the daemon's hash-chained audit log
 * ("<db>.audit", gateway/audit_chain.h) as the API's do (principal.create,
 * token.create, token.revoke), actor "otatool", with the OS user in the
 * detail: gw_audit_db_append is safe next to a running daemon. The entry
 * is written inside the change's transaction on the auth file, before its
 * commit: when it cannot be written the change is rolled back and refused,
 * so no change goes unaudited (spec 7.2). The price is the daemon's: an
 * entry for a change whose commit then failed.
 */
#include "otatool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "gateway/audit_chain.h"
#include "gateway/auth.h"

#define PATH_CAP 4096

static void usage(FILE *f)
{
    fputs("usage: otatool token create --db FILE --name NAME --role ROLE [--out PATH]\n"
          "       otatool token list --db FILE [--json]\n"
          "       otatool token revoke --db FILE --id N\n"
          "  FILE: the engine database ([engine] db; tokens are kept in FILE.auth) or the\n"
          "  .auth file itself. ROLE: admin, operator, platform, client, anti-theft.\n"
          "  create makes the principal when it does not exist and prints the token once\n"
          "  (stdout, or PATH created with mode 0600); only its SHA-256 is stored.\n"
          "  create and revoke are audited in the log next to the engine database\n"
          "  (FILE.audit, actor otatool, the OS user in the detail) before they commit;\n"
          "  when that entry cannot be written nothing changes.\n",
          f);
}

/* create: the file and its tables are made when missing; list and revoke want them there. */
static int open_db(const char *arg, bool create, sqlite3 **db)
{
    char path[PATH_CAP];
    size_t n = strlen(arg);
    int rc = n > 5 && strcmp(arg + n - 5, ".auth") == 0
                 ? (snprintf(path, sizeof(path), "%s", arg) < (int)sizeof(path) ? 0 : -1)
                 : gw_auth_db_path(arg, path, sizeof(path));
    if (rc < 0) {
        return die("--db: path too long");
    }
    if (!create && access(path, F_OK) != 0) {
        return die("%s: %s", path, strerror(errno));
    }
    struct ota_err err;
    if (gw_auth_db_open(path, db, &err) < 0) {
        return die("%s", err.msg);
    }
    return TOOL_OK;
}

/*
 * The audit log next to the auth file: "<db>.audit", db being the engine
 * database --db names or whose ".auth" file it names. Opened (created when
 * missing, as the daemon does) before the change, so that a log that cannot
 * be written refuses it before the auth file is locked.
 */
static int open_audit(const char *arg, sqlite3 **adb)
{
    char base[PATH_CAP], path[PATH_CAP];
    size_t n = strlen(arg);
    size_t bl = n > 5 && strcmp(arg + n - 5, ".auth") == 0 ? n - 5 : n;
    if (bl >= sizeof(base)) {
        return die("--db: path too long");
    }
    memcpy(base, arg, bl);
    base[bl] = '\0';
    if (gw_audit_path(base, path, sizeof(path)) < 0) {
        return die("--db: path too long");
    }
    struct ota_err err;
    bool restored = false;
    if (gw_audit_db_open(path, false, adb, &restored, &err) < 0) {
        return die("audit log: %s; nothing changed", err.msg);
    }
    if (restored) {
        /* as the daemon does at start (docs/audit.md): say it, and leave a trace in the chain */
        fprintf(stderr, "otatool: audit log %s had lost guard triggers: restored\n", path);
        if (gw_audit_db_append(*adb, "otatool", "audit.guards-restored", "", "by otatool", NULL,
                               NULL, &err) < 0) {
            sqlite3_close(*adb);
            *adb = NULL;
            return die("audit log: %s; nothing changed", err.msg);
        }
    }
    return TOOL_OK;
}

/* Who ran otatool, for the audit detail: the OS user name and uid (the uid alone without one). */
static void os_user(char *out, size_t cap)
{
    uid_t uid = geteuid();
    const struct passwd *pw = getpwuid(uid);
    if (pw && pw->pw_name && pw->pw_name[0]) {
        snprintf(out, cap, "os_user=%.64s uid=%u", pw->pw_name, (unsigned)uid);
    } else {
        snprintf(out, cap, "os_user=? uid=%u", (unsigned)uid);
    }
}

/* The token file: created 0600, never over an existing file (an old token file is not ours). */
static int open_out(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        die("--out %s: %s", path, strerror(errno));
    }
    return fd;
}

static bool write_token(int fd, const char *token)
{
    size_t n = strlen(token);
    bool ok = write(fd, token, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    return close(fd) == 0 && ok;
}

static int token_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},   {"name", required_argument, NULL, 'n'},
        {"role", required_argument, NULL, 'r'}, {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    const char *dbp = NULL, *name = NULL, *role_s = NULL, *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:n:r:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dbp = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'r':
            role_s = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            usage(stdout);
            return TOOL_OK;
        default:
            usage(stderr);
            return TOOL_USAGE;
        }
    }
    if (!dbp || !name || !role_s || optind != argc) {
        usage(stderr);
        return TOOL_USAGE;
    }
    enum gw_role role;
    if (gw_role_parse(role_s, &role) < 0) {
        return die("--role %s: one of admin, operator, platform, client, anti-theft", role_s);
    }
    if (!gw_auth_name_ok(name)) {
        return die("--name: 1..%d of [A-Za-z0-9._-]", GW_AUTH_NAME_MAX);
    }
    sqlite3 *db = NULL, *adb = NULL;
    if (open_db(dbp, true, &db) != TOOL_OK) {
        return TOOL_USAGE;
    }
    if (open_audit(dbp, &adb) != TOOL_OK) {
        sqlite3_close(db);
        return TOOL_USAGE;
    }
    /* The file first: a token nobody can read must not be left live in the table. */
    int fd = out ? open_out(out) : -1;
    if (out && fd < 0) {
        sqlite3_close(adb);
        sqlite3_close(db);
        return TOOL_USAGE;
    }
    struct ota_err err;
    struct gw_principal p;
    char token[GW_AUTH_TOKEN_LEN + 1] = "";
    int64_t id = 0;
    int ret = TOOL_OK;
    bool created = false;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
                 ? gw_auth_db_principal_get(db, name, &p, &err)
                 : ota_fail(&err, -EIO, OTA_ERR_STATE, "begin: %s", sqlite3_errmsg(db));
    if (rc == -ENOENT) {
        rc = gw_auth_db_principal_add(db, name, role, &p, &err);
        created = rc == 0;
    } else if (rc == 0 && p.role != role) {
        rc = ota_fail(&err, -EEXIST, OTA_ERR_DUPLICATE, "principal %s exists with role %s", name,
                      gw_role_name(p.role));
    }
    if (rc == 0) {
        rc = gw_auth_db_token_add(db, p.id, token, &id, &err);
    }
    if (rc == 0 && fd >= 0) {
        bool ok = write_token(fd, token);
        fd = -1;
        if (!ok) {
            rc = ota_fail(&err, -EIO, OTA_ERR_STATE, "--out %s: write failed", out);
        }
    }
    /* audited before the commit, names only (never the token): no entry, no change */
    char who[96], target[GW_AUTH_NAME_MAX + 32], detail[GW_AUTH_NAME_MAX + 160];
    os_user(who, sizeof(who));
    if (rc == 0 && created) {
        snprintf(target, sizeof(target), "principal:%s", p.name);
        snprintf(detail, sizeof(detail), "role=%s %s", gw_role_name(p.role), who);
        rc = gw_audit_db_append(adb, "otatool", "principal.create", target, detail, NULL, NULL,
                                &err);
    }
    if (rc == 0) {
        snprintf(target, sizeof(target), "token:%" PRId64, id);
        snprintf(detail, sizeof(detail), "principal=%s role=%s %s", p.name, gw_role_name(p.role),
                 who);
        rc = gw_audit_db_append(adb, "otatool", "token.create", target, detail, NULL, NULL, &err);
    }
    if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = ota_fail(&err, -EIO, OTA_ERR_STATE, "commit: %s", sqlite3_errmsg(db));
    }
    if (rc < 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        if (fd >= 0) {
            close(fd);
        }
        if (out) {
            unlink(out);
        }
        ret = die("%s; nothing changed", err.msg);
    } else {
        fprintf(stderr, "otatool: %sprincipal %s (%s), token id %" PRId64 "\n",
                created ? "new " : "", p.name, gw_role_name(p.role), id);
        if (!out) {
            printf("%s\n", token);
        }
    }
    OPENSSL_cleanse(token, sizeof(token));
    sqlite3_close(adb);
    sqlite3_close(db);
    return ret;
}

static void put_time(char *buf, size_t cap, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&s, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        snprintf(buf, cap, "-");
    }
}

static int list_one(void *arg, const struct gw_auth_token_info *t)
{
    bool json = *(bool *)arg;
    char cr[32], rv[32];
    put_time(cr, sizeof(cr), t->created_ms);
    put_time(rv, sizeof(rv), t->revoked_ms);
    if (json) {
        json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:o, s:s}", "id", (json_int_t)t->id,
                              "principal", t->principal.name, "role",
                              gw_role_name(t->principal.role), "created", cr, "revoked",
                              t->revoked_ms ? json_string(rv) : json_null(), "hash_tail", t->hint);
        char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!txt) {
            return -ENOMEM;
        }
        puts(txt);
        free(txt);
    } else {
        printf("%-6" PRId64 " %-24s %-10s created=%s revoked=%s hash_tail=%s\n", t->id,
               t->principal.name, gw_role_name(t->principal.role), cr, rv, t->hint);
    }
    return 0;
}

static int token_list(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *dbp = NULL;
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dbp = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return TOOL_OK;
        default:
            usage(stderr);
            return TOOL_USAGE;
        }
    }
    if (!dbp || optind != argc) {
        usage(stderr);
        return TOOL_USAGE;
    }
    sqlite3 *db = NULL;
    if (open_db(dbp, false, &db) != TOOL_OK) {
        return TOOL_USAGE;
    }
    struct ota_err err;
    int rc = gw_auth_db_tokens(db, list_one, &json, &err);
    sqlite3_close(db);
    return rc < 0 ? die("%s", err.msg) : TOOL_OK;
}

static int token_revoke(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"id", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *dbp = NULL;
    uint64_t id = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dbp = optarg;
            break;
        case 'i':
            if (parse_uint("--id", optarg, INT64_MAX, &id) < 0) {
                return TOOL_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return TOOL_OK;
        default:
            usage(stderr);
            return TOOL_USAGE;
        }
    }
    if (!dbp || id == 0 || optind != argc) {
        usage(stderr);
        return TOOL_USAGE;
    }
    sqlite3 *db = NULL, *adb = NULL;
    if (open_db(dbp, false, &db) != TOOL_OK) {
        return TOOL_USAGE;
    }
    if (open_audit(dbp, &adb) != TOOL_OK) {
        sqlite3_close(db);
        return TOOL_USAGE;
    }
    struct ota_err err;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
                 ? gw_auth_db_token_revoke(db, (int64_t)id, &err)
                 : ota_fail(&err, -EIO, OTA_ERR_STATE, "begin: %s", sqlite3_errmsg(db));
    if (rc == 0) {
        /* audited before the commit, as create: a revocation nobody can trace is refused */
        char target[32], who[96];
        snprintf(target, sizeof(target), "token:%" PRIu64, id);
        os_user(who, sizeof(who));
        rc = gw_audit_db_append(adb, "otatool", "token.revoke", target, who, NULL, NULL, &err);
    }
    if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = ota_fail(&err, -EIO, OTA_ERR_STATE, "commit: %s", sqlite3_errmsg(db));
    }
    if (rc < 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_close(adb);
    sqlite3_close(db);
    if (rc < 0) {
        return rc == -ENOENT || rc == -EALREADY ? (die("%s", err.msg), TOOL_FAIL)
                                                : die("%s; nothing changed", err.msg);
    }
    fprintf(stderr, "otatool: token %" PRIu64 " revoked\n", id);
    return TOOL_OK;
}

int cmd_token(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TOOL_USAGE;
    }
    if (strcmp(argv[1], "create") == 0) {
        return token_create(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "list") == 0) {
        return token_list(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "revoke") == 0) {
        return token_revoke(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return TOOL_OK;
    }
    usage(stderr);
    return TOOL_USAGE;
}
