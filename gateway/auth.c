/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Principals, API tokens and roles in the daemon (gateway/auth.h, issue #7,
 * spec 7.1 "access control": each role reaches only what its business
 * needs; spec 7.4: administrators' operations on users are audited).
 *
 * Every route goes through gw_route(), which wraps its handler: read the
 * Bearer token, hash it, find the hash in memory, check the role, keep the
 * principal with the request. A request costs no SQL: the live and revoked
 * token hashes are all held in memory (a sorted array; principals and their
 * tokens are few), reloaded when the API changes them and, at most once a
 * GW_AUTH_RECHECK_S, when another connection (otatool) has changed the file
 * (PRAGMA data_version). Revoked hashes stay in memory so that a refusal
 * can say "revoked" in the audit log.
 *
 * Principal objects are never freed before gw_auth_stop: a request keeps a
 * pointer to its principal until answered, possibly after a reload.
 *
 * Failures are audited ("auth.fail"), at most GW_AUTH_AUDIT_PER_S entries a
 * second: a flood of bad tokens must not turn into a flood of fsyncs. What
 * the limit holds back is counted and written as one entry when the next
 * second's first failure comes (or at stop).
 *
 * The admin routes (/v1/principals, /v1/tokens) change the file in a
 * transaction that also holds the audit write: no change without its entry.
 */
#include "gateway/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "gateway/api_util.h"
#include "gateway/audit.h"
#include "gateway/gw.h"

#define AUTH_PATH_MAX 4096
#define BEARER_MAX 256 /* longer Authorization values are refused before hashing */

struct auth_route {
    struct auth_route *next;
    struct gw *g;
    char *method, *pattern;
    unsigned roles;
    bool pull;
    http_handler h;
    void *arg;
};

struct auth_pnode {
    struct auth_pnode *next;
    struct gw_principal p;
};

struct auth_tok {
    uint8_t hash[GW_AUTH_HASH_LEN];
    int64_t id;
    bool revoked;
    const struct gw_principal *p;
};

struct gw_auth {
    struct gw *g;
    sqlite3 *db;
    sqlite3_stmt *data_version;
    char path[AUTH_PATH_MAX];
    struct auth_pnode *principals; /* stable until stop, see the file comment */
    struct auth_tok *toks;         /* sorted by hash */
    size_t n_toks;
    int64_t seen_version;
    double checked_at; /* ev_now of the last data_version check */
    struct auth_route *routes, **routes_tail;
    /* auth.fail audit rate limit */
    double win_start;
    unsigned win_n;
    uint64_t held_back;
    struct gw_auth_stats st;
};

/* ---- roles --------------------------------------------------------------------------- */

static const struct {
    enum gw_role r;
    const char *name;
} roles[] = {{GW_ROLE_ADMIN, "admin"},
             {GW_ROLE_OPERATOR, "operator"},
             {GW_ROLE_PLATFORM, "platform"},
             {GW_ROLE_CLIENT, "client"},
             {GW_ROLE_ANTITHEFT, "anti-theft"}};

const char *gw_role_name(enum gw_role r)
{
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (roles[i].r == r) {
            return roles[i].name;
        }
    }
    return "?";
}

int gw_role_parse(const char *s, enum gw_role *out)
{
    for (size_t i = 0; s && i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(roles[i].name, s) == 0) {
            *out = roles[i].r;
            return 0;
        }
    }
    return -EINVAL;
}

const struct gw_principal *gw_req_principal(struct http_req *req)
{
    return http_req_user(req);
}

bool gw_principal_owns(const struct gw_principal *p, const char *owner)
{
    if (!p) {
        return true;
    }
    if (p->role == GW_ROLE_ADMIN || p->role == GW_ROLE_OPERATOR) {
        return true;
    }
    if (p->role == GW_ROLE_CLIENT) {
        return false;
    }
    return owner && strcmp(owner, p->name) == 0;
}

const char *gw_principal_owner(const struct gw_principal *p)
{
    if (!p || p->role == GW_ROLE_ADMIN || p->role == GW_ROLE_OPERATOR) {
        return NULL;
    }
    return p->name;
}

/* ---- the in-memory token table -------------------------------------------------------- */

static int tok_cmp(const void *a, const void *b)
{
    return memcmp(((const struct auth_tok *)a)->hash, ((const struct auth_tok *)b)->hash,
                  GW_AUTH_HASH_LEN);
}

/* The stable principal object for p (added when new). NULL out of memory. */
static const struct gw_principal *principal_keep(struct gw_auth *a, const struct gw_principal *p)
{
    for (struct auth_pnode *n = a->principals; n; n = n->next) {
        /* Name and role never change for an id; a restored file could still differ. */
        if (n->p.id == p->id && n->p.role == p->role && strcmp(n->p.name, p->name) == 0) {
            return &n->p;
        }
    }
    struct auth_pnode *n = calloc(1, sizeof(*n));
    if (!n) {
        return NULL;
    }
    n->p = *p;
    n->next = a->principals;
    a->principals = n;
    return &n->p;
}

struct load {
    struct gw_auth *a;
    struct auth_tok *v;
    size_t n, cap;
};

static int load_one(void *arg, const struct gw_auth_token_info *t)
{
    struct load *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct auth_tok *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            return -ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    const struct gw_principal *p = principal_keep(l->a, &t->principal);
    if (!p) {
        return -ENOMEM;
    }
    struct auth_tok *k = &l->v[l->n++];
    memcpy(k->hash, t->hash, GW_AUTH_HASH_LEN);
    k->id = t->id;
    k->revoked = t->revoked_ms != 0;
    k->p = p;
    return 0;
}

static int version_read(struct gw_auth *a, int64_t *v)
{
    sqlite3_reset(a->data_version);
    int rc = sqlite3_step(a->data_version);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(a->data_version);
        return -EIO;
    }
    *v = sqlite3_column_int64(a->data_version, 0);
    sqlite3_reset(a->data_version);
    return 0;
}

/* Replace the table from the file; on failure the old one stays (and err says why). */
static int cache_reload(struct gw_auth *a, struct ota_err *err)
{
    struct load l = {.a = a};
    /* The version before the read: a commit in between makes the next check reload again. */
    int64_t version = a->seen_version;
    (void)version_read(a, &version);
    int rc = gw_auth_db_tokens(a->db, load_one, &l, err);
    if (rc == -ENOMEM) {
        rc = ota_fail(err, rc, OTA_ERR_LIMIT, "out of memory loading tokens");
    }
    if (rc < 0) {
        free(l.v);
        return rc;
    }
    if (l.n > 1) {
        qsort(l.v, l.n, sizeof(*l.v), tok_cmp);
    }
    free(a->toks);
    a->toks = l.v;
    a->n_toks = l.n;
    a->st.reloads++;
    a->seen_version = version;
    return 0;
}

/*
 * Outside writers (otatool on a running daemon) are seen within
 * min_interval_s: GW_AUTH_RECHECK_S for every request (a revocation), a
 * tenth of that after an unknown token (one just made should work at once;
 * a flood of bad tokens still costs at most ten cheap reads a second).
 */
static void cache_check(struct gw_auth *a, double min_interval_s)
{
    double now = ev_now(a->g->loop);
    if (now - a->checked_at < min_interval_s && now >= a->checked_at) {
        return;
    }
    a->checked_at = now;
    int64_t v;
    if (version_read(a, &v) < 0 || v == a->seen_version) {
        return;
    }
    struct ota_err err;
    if (cache_reload(a, &err) < 0) {
        gw_log(a->g, GW_CONF_LOG_ERR, "auth token reload failed err=\"%s\"", err.msg);
    } else {
        gw_log(a->g, GW_CONF_LOG_NOTICE, "auth tokens reloaded tokens=%zu", a->n_toks);
    }
}

static const struct auth_tok *cache_find(const struct gw_auth *a,
                                         const uint8_t hash[GW_AUTH_HASH_LEN])
{
    struct auth_tok key;
    memcpy(key.hash, hash, GW_AUTH_HASH_LEN);
    const struct auth_tok *t =
        a->n_toks ? bsearch(&key, a->toks, a->n_toks, sizeof(key), tok_cmp) : NULL;
    /*
     * The search orders by hash, which tells nothing about the token; the
     * equality that decides is made in constant time all the same.
     */
    if (t && CRYPTO_memcmp(t->hash, hash, GW_AUTH_HASH_LEN) == 0) {
        return t;
    }
    return NULL;
}

/* ---- the request wrapper --------------------------------------------------------------- */

static double mono_now(const struct gw_auth *a)
{
    return ev_now(a->g->loop);
}

static void audit_held_back(struct gw_auth *a)
{
    if (a->held_back == 0) {
        return;
    }
    (void)gw_audit(a->g, "system", "auth.fail", NULL,
                   "rate-limited: %llu more failures not recorded one by one (limit %u/s)",
                   (unsigned long long)a->held_back, GW_AUTH_AUDIT_PER_S);
    a->st.audited++;
    a->held_back = 0;
}

static void audit_fail(struct gw_auth *a, struct http_req *req, const struct auth_route *r,
                       const char *actor, const char *reason)
{
    double now = mono_now(a);
    if (now - a->win_start >= 1.0 || now < a->win_start) {
        audit_held_back(a);
        a->win_start = now;
        a->win_n = 0;
    }
    if (a->win_n >= GW_AUTH_AUDIT_PER_S) {
        a->held_back++;
        a->st.audit_suppressed++;
        return;
    }
    a->win_n++;
    a->st.audited++;
    /*
     * The route's pattern, never the path: a path segment can be a bearer
     * secret (the wallet's session id), and the audit log is read by more
     * people than the session's client. The token itself is never passed.
     */
    (void)gw_audit(a->g, actor, "auth.fail", NULL, "reason=%s method=%s route=%s peer=%s", reason,
                   http_req_method(req), r->pattern, http_req_peer(req));
}

/*
 * The token of "Bearer <token>" (scheme case-insensitive, RFC 7235 2.1;
 * token68, RFC 6750 2.1). NULL with *why set when absent or malformed.
 */
static const char *bearer_token(const char *h, size_t *len, const char **why)
{
    if (!h) {
        *why = "no-token";
        return NULL;
    }
    if (strlen(h) > BEARER_MAX || strncasecmp(h, "Bearer ", 7) != 0) {
        *why = "malformed";
        return NULL;
    }
    const char *t = h + 7;
    while (*t == ' ') {
        t++;
    }
    size_t n = 0;
    while (t[n] && t[n] != ' ' && t[n] != '\t') {
        char c = t[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=')) {
            *why = "malformed";
            return NULL;
        }
        n++;
    }
    for (const char *r = t + n; *r; r++) {
        if (*r != ' ' && *r != '\t') {
            *why = "malformed";
            return NULL;
        }
    }
    if (n == 0) {
        *why = "malformed";
        return NULL;
    }
    *len = n;
    return t;
}

static void refuse_401(struct http_req *req, const char *why)
{
    /* RFC 6750 3: the challenge; invalid_token when one was given but not accepted. */
    (void)http_req_set_header(req, "WWW-Authenticate",
                              strcmp(why, "no-token") == 0
                                  ? "Bearer realm=\"otagw\""
                                  : "Bearer realm=\"otagw\", error=\"invalid_token\"");
    (void)http_respond_error(req, 401, "unauthorized", "a valid Bearer token is required");
}

static void auth_wrap(struct http_req *req, void *arg)
{
    struct auth_route *r = arg;
    struct gw_auth *a = r->g->auth;
    if (!a) {
        /* Stopped under a request that was already routed: answer, never run unchecked. */
        (void)http_respond_error(req, 503, "unavailable", "shutting down");
        return;
    }
    cache_check(a, GW_AUTH_RECHECK_S);
    const char *why = NULL;
    size_t len = 0;
    const char *tok = bearer_token(http_req_header(req, "authorization"), &len, &why);
    const struct auth_tok *t = NULL;
    if (tok) {
        uint8_t hash[GW_AUTH_HASH_LEN];
        if (gw_auth_token_hash(tok, len, hash) < 0) {
            why = "hash-failed";
        } else {
            t = cache_find(a, hash);
            if (!t) {
                cache_check(a, GW_AUTH_RECHECK_S / 10); /* made a moment ago by otatool? */
                t = cache_find(a, hash);
            }
            why = !t ? "unknown-token" : t->revoked ? "revoked-token" : NULL;
        }
        OPENSSL_cleanse(hash, sizeof(hash));
    }
    if (!t || t->revoked) {
        a->st.unauthorized++;
        /* by kind, for /metrics: a flood of unknown tokens is not a client without one */
        if (t) {
            a->st.revoked_token++;
        } else if (!tok && strcmp(why, "no-token") == 0) {
            a->st.no_token++;
        } else if (!tok) {
            a->st.malformed++;
        } else {
            a->st.unknown_token++; /* "hash-failed" too: never seen, still counted */
        }
        audit_fail(a, req, r, "anonymous", why);
        refuse_401(req, why);
        return;
    }
    if (!(t->p->role & r->roles)) {
        a->st.forbidden++;
        char reason[96];
        snprintf(reason, sizeof(reason), "forbidden role=%s token=%lld", gw_role_name(t->p->role),
                 (long long)t->id);
        audit_fail(a, req, r, t->p->name, reason);
        (void)http_respond_error(req, 403, "forbidden", "role %s may not call %s %s",
                                 gw_role_name(t->p->role), r->method, r->pattern);
        return;
    }
    http_req_set_user(req, (void *)t->p);
    r->h(req, r->arg);
}

int gw_route(struct gw *g, const char *method, const char *pattern, unsigned allowed,
             http_handler h, void *arg, struct ota_err *err)
{
    if (!g || !method || !pattern || !h) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "gw_route: NULL argument");
    }
    bool pull = g->pull_http && strncmp(pattern, "/v1/wallet/", 11) == 0;
    struct http_server *s = pull ? g->pull_http : g->http;
    struct gw_auth *a = g->auth;
    if (!a) {
        return http_route(s, method, pattern, h, arg, err);
    }
    if (allowed & ~(unsigned)GW_ROLES_ALL) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "%s %s: unknown role bits", method, pattern);
    }
    struct auth_route *r = calloc(1, sizeof(*r));
    if (!r || !(r->method = strdup(method)) || !(r->pattern = strdup(pattern))) {
        if (r) {
            free(r->method);
        }
        free(r);
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
    }
    r->g = g;
    r->roles = allowed;
    r->pull = pull;
    r->h = h;
    r->arg = arg;
    /* Public routes run their handler directly: no header is read, nobody is named. */
    int rc = allowed == GW_ROLES_PUBLIC ? http_route(s, method, pattern, h, arg, err)
                                        : http_route(s, method, pattern, auth_wrap, r, err);
    if (rc < 0) {
        free(r->method);
        free(r->pattern);
        free(r);
        return rc;
    }
    *a->routes_tail = r;
    a->routes_tail = &r->next;
    return 0;
}

bool gw_auth_route_at(const struct gw *g, size_t i, struct gw_auth_route_info *out)
{
    if (!g || !g->auth) {
        return false;
    }
    const struct auth_route *r = g->auth->routes;
    for (; r && i > 0; i--) {
        r = r->next;
    }
    if (!r) {
        return false;
    }
    *out = (struct gw_auth_route_info){
        .method = r->method, .pattern = r->pattern, .roles = r->roles, .pull = r->pull};
    return true;
}

void gw_auth_stats(const struct gw *g, struct gw_auth_stats *out)
{
    *out = g && g->auth ? g->auth->st : (struct gw_auth_stats){0};
    if (g && g->auth) {
        /* counted here, not kept: the cache is replaced whole on every reload */
        for (size_t i = 0; i < g->auth->n_toks; i++) {
            if (g->auth->toks[i].revoked) {
                out->tokens_revoked++;
            } else {
                out->tokens_live++;
            }
        }
    }
}

/* ---- changes: each in one transaction with its audit entry ---------------------------- */

static int tx_begin(struct gw_auth *a, struct ota_err *err)
{
    if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        return ota_fail(err, -EIO, OTA_ERR_STATE, "auth db: begin: %s", sqlite3_errmsg(a->db));
    }
    return 0;
}

/* Commit when rc is 0, else roll back; then reload the table either way (the file is the truth). */
static int tx_end(struct gw_auth *a, int rc, struct ota_err *err)
{
    if (rc == 0 && sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = ota_fail(err, -EIO, OTA_ERR_STATE, "auth db: commit: %s", sqlite3_errmsg(a->db));
    }
    if (rc < 0) {
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    }
    struct ota_err rerr;
    if (cache_reload(a, &rerr) < 0) {
        gw_log(a->g, GW_CONF_LOG_ERR, "auth token reload failed err=\"%s\"", rerr.msg);
        if (rc == 0) {
            /* A revoke the cache does not know of must not look done. */
            rc = ota_fail(err, -EIO, OTA_ERR_STATE, "auth: token table reload: %s", rerr.msg);
        }
    }
    return rc;
}

static int audit_or_fail(int arc, struct ota_err *err)
{
    return arc < 0 ? ota_fail(err, -EIO, OTA_ERR_STATE, "audit log write failed: not done") : 0;
}

static int principal_create(struct gw *g, const char *actor, const char *name, enum gw_role role,
                            struct gw_principal *out, struct ota_err *err)
{
    struct gw_auth *a = g->auth;
    int rc = tx_begin(a, err);
    if (rc < 0) {
        return rc;
    }
    rc = gw_auth_db_principal_add(a->db, name, role, out, err);
    if (rc == 0) {
        char target[GW_AUTH_NAME_MAX + 16];
        snprintf(target, sizeof(target), "principal:%s", name);
        rc = audit_or_fail(
            gw_audit(g, actor, "principal.create", target, "role=%s", gw_role_name(role)), err);
    }
    return tx_end(a, rc, err);
}

int gw_auth_token_create(struct gw *g, const char *actor, const char *name, enum gw_role role,
                         char token[GW_AUTH_TOKEN_LEN + 1], int64_t *id, struct ota_err *err)
{
    if (!g || !g->auth) {
        return ota_fail(err, -EINVAL, OTA_ERR_STATE, "auth not started");
    }
    struct gw_auth *a = g->auth;
    int rc = tx_begin(a, err);
    if (rc < 0) {
        return rc;
    }
    struct gw_principal p;
    char target[GW_AUTH_NAME_MAX + 16];
    snprintf(target, sizeof(target), "principal:%s", name ? name : "");
    rc = gw_auth_db_principal_get(a->db, name ? name : "", &p, err);
    if (rc == -ENOENT) {
        rc = gw_auth_db_principal_add(a->db, name, role, &p, err);
        if (rc == 0) {
            rc = audit_or_fail(
                gw_audit(g, actor, "principal.create", target, "role=%s", gw_role_name(role)), err);
        }
    } else if (rc == 0 && p.role != role) {
        rc = ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE, "principal %s exists with role %s", name,
                      gw_role_name(p.role));
    }
    char text[GW_AUTH_TOKEN_LEN + 1];
    int64_t tid = 0;
    if (rc == 0) {
        rc = gw_auth_db_token_add(a->db, p.id, text, &tid, err);
    }
    if (rc == 0) {
        char tt[32];
        snprintf(tt, sizeof(tt), "token:%lld", (long long)tid);
        rc = audit_or_fail(gw_audit(g, actor, "token.create", tt, "principal=%s role=%s", p.name,
                                    gw_role_name(p.role)),
                           err);
    }
    rc = tx_end(a, rc, err);
    if (rc == 0) {
        memcpy(token, text, sizeof(text));
        if (id) {
            *id = tid;
        }
    }
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}

int gw_auth_token_revoke(struct gw *g, const char *actor, int64_t id, struct ota_err *err)
{
    if (!g || !g->auth) {
        return ota_fail(err, -EINVAL, OTA_ERR_STATE, "auth not started");
    }
    struct gw_auth *a = g->auth;
    int rc = tx_begin(a, err);
    if (rc < 0) {
        return rc;
    }
    rc = gw_auth_db_token_revoke(a->db, id, err);
    if (rc == 0) {
        char tt[32];
        snprintf(tt, sizeof(tt), "token:%lld", (long long)id);
        rc = audit_or_fail(gw_audit(g, actor, "token.revoke", tt, NULL), err);
    }
    return tx_end(a, rc, err);
}

/* ---- admin routes ------------------------------------------------------------------------ */

static const char *actor_of(struct http_req *req)
{
    const struct gw_principal *p = gw_req_principal(req);
    return p ? p->name : "anonymous";
}

/* The body as a JSON object with only the allowed members. NULL: answered (400). */
static json_t *body_object(struct http_req *req, const char *const *allowed)
{
    struct ota_err err;
    json_t *o = http_req_json(req, &err);
    if (!o) {
        (void)http_respond_error(req, 400, "invalid-json", "%s", err.msg);
        return NULL;
    }
    const char *unk = api_unknown_member(o, allowed);
    if (unk) {
        (void)http_respond_error(req, 400, "invalid-field", "%s: unknown field", unk);
        return NULL;
    }
    return o;
}

static void h_principal_post(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    static const char *const allowed[] = {"name", "role", NULL};
    json_t *o = body_object(req, allowed);
    if (!o) {
        return;
    }
    bool answered = false;
    const char *name = api_str_member(req, o, "name", true, &answered);
    const char *role_s = name ? api_str_member(req, o, "role", true, &answered) : NULL;
    if (answered) {
        return;
    }
    enum gw_role role;
    if (!name || !role_s) {
        (void)http_respond_error(req, 400, "invalid-field", "name and role are required");
        return;
    }
    if (!gw_auth_name_ok(name)) {
        (void)http_respond_error(req, 400, "invalid-field", "name: 1..%d of [A-Za-z0-9._-]",
                                 GW_AUTH_NAME_MAX);
        return;
    }
    if (gw_role_parse(role_s, &role) < 0) {
        (void)http_respond_error(req, 400, "invalid-field",
                                 "role: admin, operator, platform, client or anti-theft");
        return;
    }
    struct gw_principal p;
    struct ota_err err;
    int rc = principal_create(g, actor_of(req), name, role, &p, &err);
    if (rc < 0) {
        gw_respond_err(req, rc, rc == -EEXIST ? "principal-exists" : "principal", &err);
        return;
    }
    char loc[GW_AUTH_NAME_MAX + 32];
    snprintf(loc, sizeof(loc), "/v1/principals/%s", p.name);
    (void)http_req_set_header(req, "Location", loc);
    (void)http_respond_json(req, 201,
                            json_pack("{s:I, s:s, s:s, s:i}", "id", (json_int_t)p.id, "name",
                                      p.name, "role", gw_role_name(p.role), "live_tokens", 0));
}

static int principal_collect(void *arg, const struct gw_principal *p, int64_t created_ms,
                             unsigned live)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:o, s:i}", "id", (json_int_t)p->id, "name", p->name,
                          "role", gw_role_name(p->role), "created", api_time_json(created_ms),
                          "live_tokens", (int)live);
    return o && json_array_append_new(arg, o) == 0 ? 0 : -ENOMEM;
}

static void h_principal_list(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    json_t *arr = json_array();
    struct ota_err err;
    int rc = arr ? gw_auth_db_principals(g->auth->db, principal_collect, arr, &err) : -ENOMEM;
    if (rc < 0) {
        json_decref(arr);
        if (rc == -ENOMEM) {
            ota_fail(&err, rc, OTA_ERR_LIMIT, "out of memory");
        }
        gw_respond_err(req, rc, "principals", &err);
        return;
    }
    (void)http_respond_json(req, 200, json_pack("{s:o}", "principals", arr));
}

static void h_token_post(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    static const char *const allowed[] = {NULL};
    size_t len = 0;
    (void)http_req_body(req, &len);
    if (len > 0 && !body_object(req, allowed)) {
        return; /* no body, or {}: nothing to choose yet */
    }
    const char *name = http_req_param(req, "name");
    struct gw_principal p;
    struct ota_err err;
    int rc = gw_auth_name_ok(name) ? gw_auth_db_principal_get(g->auth->db, name, &p, &err)
                                   : ota_fail(&err, -ENOENT, OTA_ERR_MISSING, "no such principal");
    if (rc < 0) {
        gw_respond_err(req, rc, rc == -ENOENT ? "not-found" : "principal", &err);
        return;
    }
    char token[GW_AUTH_TOKEN_LEN + 1];
    int64_t id = 0;
    rc = gw_auth_token_create(g, actor_of(req), p.name, p.role, token, &id, &err);
    if (rc < 0) {
        gw_respond_err(req, rc, "token", &err);
        return;
    }
    /* Shown once: nothing between us and the client may keep it. */
    (void)http_req_set_header(req, "Cache-Control", "no-store");
    json_t *body = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "principal", p.name,
                             "role", gw_role_name(p.role), "token", token);
    OPENSSL_cleanse(token, sizeof(token));
    (void)http_respond_json(req, 201, body);
}

static int token_collect(void *arg, const struct gw_auth_token_info *t)
{
    json_t *o = json_pack(
        "{s:I, s:s, s:s, s:o, s:o, s:s}", "id", (json_int_t)t->id, "principal", t->principal.name,
        "role", gw_role_name(t->principal.role), "created", api_time_json(t->created_ms), "revoked",
        t->revoked_ms ? api_time_json(t->revoked_ms) : json_null(), "hash_tail", t->hint);
    return o && json_array_append_new(arg, o) == 0 ? 0 : -ENOMEM;
}

static void h_token_list(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    json_t *arr = json_array();
    struct ota_err err;
    int rc = arr ? gw_auth_db_tokens(g->auth->db, token_collect, arr, &err) : -ENOMEM;
    if (rc < 0) {
        json_decref(arr);
        if (rc == -ENOMEM) {
            ota_fail(&err, rc, OTA_ERR_LIMIT, "out of memory");
        }
        gw_respond_err(req, rc, "tokens", &err);
        return;
    }
    (void)http_respond_json(req, 200, json_pack("{s:o}", "tokens", arr));
}

static void h_token_revoke(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    int64_t id;
    if (!api_parse_id(http_req_param(req, "id"), &id)) {
        (void)http_respond_error(req, 404, "not-found", "no such token");
        return;
    }
    struct ota_err err;
    int rc = gw_auth_token_revoke(g, actor_of(req), id, &err);
    if (rc < 0) {
        gw_respond_err(req, rc,
                       rc == -ENOENT     ? "not-found"
                       : rc == -EALREADY ? "already-revoked"
                                         : "token",
                       &err);
        return;
    }
    (void)http_respond_json(req, 200, json_pack("{s:I, s:b}", "id", (json_int_t)id, "revoked", 1));
}

/* ---- start / stop ------------------------------------------------------------------------ */

static void auth_free(struct gw_auth *a)
{
    if (!a) {
        return;
    }
    for (struct auth_route *r = a->routes, *n; r; r = n) {
        n = r->next;
        free(r->method);
        free(r->pattern);
        free(r);
    }
    for (struct auth_pnode *p = a->principals, *n; p; p = n) {
        n = p->next;
        free(p);
    }
    free(a->toks);
    sqlite3_finalize(a->data_version);
    sqlite3_close(a->db);
    free(a);
}

int gw_auth_start(struct gw *g, struct ota_err *err)
{
    struct gw_auth *a = calloc(1, sizeof(*a));
    if (!a) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "out of memory");
    }
    a->g = g;
    a->routes_tail = &a->routes;
    int rc = gw_auth_db_path(g->conf.db_path, a->path, sizeof(a->path));
    if (rc < 0) {
        auth_free(a);
        return ota_fail(err, rc, OTA_ERR_ARG, "auth db path too long");
    }
    rc = gw_auth_db_open(a->path, &a->db, err);
    if (rc == 0 &&
        sqlite3_prepare_v2(a->db, "PRAGMA data_version", -1, &a->data_version, NULL) != SQLITE_OK) {
        rc = ota_fail(err, -EIO, OTA_ERR_STATE, "auth db: %s", sqlite3_errmsg(a->db));
    }
    if (rc == 0) {
        rc = cache_reload(a, err);
    }
    if (rc < 0) {
        auth_free(a);
        return rc;
    }
    a->checked_at = ev_now(g->loop);
    a->win_start = ev_now(g->loop);
    g->auth = a;
    static const struct {
        const char *method, *pattern;
        http_handler h;
    } routes[] = {
        {"POST", "/v1/principals", h_principal_post},
        {"GET", "/v1/principals", h_principal_list},
        {"POST", "/v1/principals/{name}/tokens", h_token_post},
        {"GET", "/v1/tokens", h_token_list},
        {"POST", "/v1/tokens/{id}/revoke", h_token_revoke},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        rc = gw_route(g, routes[i].method, routes[i].pattern, GW_ROLE_ADMIN, routes[i].h, g, err);
        if (rc < 0) {
            return rc; /* gw_start's failure path calls gw_auth_stop */
        }
    }
    size_t live = 0;
    for (size_t i = 0; i < a->n_toks; i++) {
        live += !a->toks[i].revoked;
    }
    gw_log(g, live ? GW_CONF_LOG_INFO : GW_CONF_LOG_WARNING, "auth started db=%s live_tokens=%zu%s",
           a->path, live,
           live ? ""
                : " hint=\"no token yet: otatool token create --db <db> --name admin "
                  "--role admin\"");
    return 0;
}

void gw_auth_stop(struct gw *g)
{
    if (!g || !g->auth) {
        return;
    }
    audit_held_back(g->auth);
    auth_free(g->auth);
    g->auth = NULL;
}
