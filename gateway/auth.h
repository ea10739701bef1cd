/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Principals, API tokens and roles (issue #7, spec 7.1, docs/auth.md).
 *
 * A principal is a named caller with one role. It authenticates with an API
 * token ("Authorization: Bearer <token>"): "otk_" + 256 random bits in
 * base64url, shown once when made, stored only as its SHA-256. Every route
 * is registered through gw_route() with the set of roles allowed on it; the
 * wrapper authenticates the request, refuses it (401 no or bad token, 403
 * role not allowed; both audited, rate-limited) before the handler runs, and
 * keeps the principal with the request for the handler (gw_req_principal()).
 *
 * Ownership: a platform principal sees and acts only on its own tasks, jobs
 * and callbacks; the owner is the principal's name, kept in the task's (and
 * job's) params as "owner".
 *
 * Storage: the tables live in a SQLite file of their own, "<[engine] db>.auth"
 * (gw_auth_db_path), for the reason gateway/audit.c gives: the engine keeps
 * its write transaction open while it stages a batch. The gw_auth_db_*
 * functions (gateway/auth_db.c) work on that file without a running daemon:
 * otatool's token commands use them.
 *
 * Prefix gw_auth_ / gw_route / gw_req_ / gw_role_. One thread (the loop's).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/http.h"
#include "ota/ota_common.h"

struct gw;
struct sqlite3;

/* Roles, as bits so a route names the set it allows. */
enum gw_role {
    GW_ROLE_ADMIN = 1u << 0,     /* tokens, keys, config: everything */
    GW_ROLE_OPERATOR = 1u << 1,  /* ops staff: every task and job, dashboard, SE view */
    GW_ROLE_PLATFORM = 1u << 2,  /* a business platform: its own tasks, jobs, callbacks */
    GW_ROLE_CLIENT = 1u << 3,    /* a wallet client: the pull API */
    GW_ROLE_ANTITHEFT = 1u << 4, /* an authorisation server (ITU-T X.1127): lock/unlock/wipe */
};
#define GW_ROLES_ALL                                                                               \
    (GW_ROLE_ADMIN | GW_ROLE_OPERATOR | GW_ROLE_PLATFORM | GW_ROLE_CLIENT | GW_ROLE_ANTITHEFT)

/* No token asked (health, the OpenAPI document). Use sparingly. */
#define GW_ROLES_PUBLIC 0u
#define GW_ROLES_STAFF (GW_ROLE_ADMIN | GW_ROLE_OPERATOR)

#define GW_AUTH_NAME_MAX 64 /* principal names: 1..64 of [A-Za-z0-9._-] */
#define GW_AUTH_TOKEN_PREFIX "otk_"
#define GW_AUTH_TOKEN_LEN 47    /* "otk_" + base64url(32 octets), no padding */
#define GW_AUTH_HASH_LEN 32     /* SHA-256 */
#define GW_AUTH_HINT_LEN 8      /* hex digits of the hash's tail shown in lists */
#define GW_AUTH_AUDIT_PER_S 10u /* auth.fail audit entries per second; the rest counted */
#define GW_AUTH_RECHECK_S 1.0   /* how often a request checks the file for outside changes */

struct gw_principal {
    int64_t id;
    char name[GW_AUTH_NAME_MAX + 1];
    enum gw_role role; /* exactly one bit */
};

/* "admin", "operator", "platform", "client", "anti-theft"; "?" otherwise. */
const char *gw_role_name(enum gw_role r);

/* Parse a role name; 0 or -EINVAL. */
int gw_role_parse(const char *s, enum gw_role *out);

/* True for a valid principal name (1..GW_AUTH_NAME_MAX of [A-Za-z0-9._-]). */
bool gw_auth_name_ok(const char *name);

/*
 * Register a route that only principals with a role in roles may call
 * (GW_ROLES_PUBLIC: anyone, no token read). Patterns starting "/v1/wallet/"
 * go on g->pull_http when there is one. Same errors as http_route().
 *
 * Without gw_auth_start (g->auth NULL: a struct gw built by hand in a unit
 * test) the route is registered without any check and its handler sees no
 * principal. gw_start always starts auth before registering routes.
 */
int gw_route(struct gw *g, const char *method, const char *pattern, unsigned roles, http_handler h,
             void *arg, struct ota_err *err) OTA_MUST_CHECK;

/*
 * The authenticated principal of a request routed by gw_route(); NULL on a
 * public route (or without auth, see gw_route). Valid until the request is
 * answered (principals are kept until gw_auth_stop).
 */
const struct gw_principal *gw_req_principal(struct http_req *req);

/*
 * May p see / act on something owned by owner (a principal name, or NULL /
 * "" for things with no owner)? Admin and operator: always. Platform and
 * anti-theft: only their own. Client: never through the business API.
 * NULL p (no auth, see gw_route): always.
 */
bool gw_principal_owns(const struct gw_principal *p, const char *owner);

/*
 * The owner to record on what p creates: its name for a platform or
 * anti-theft principal, NULL for staff (admin / operator: no owner, seen by
 * staff only) and for NULL p.
 */
const char *gw_principal_owner(const struct gw_principal *p);

/* Open the principal/token tables, load the token cache, register the token routes. */
int gw_auth_start(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;
/* Write the count of auth.fail entries the rate limit held back, free everything. */
void gw_auth_stop(struct gw *g);

/* One route registered through gw_route, as gw_auth_route_at reports it. */
struct gw_auth_route_info {
    const char *method, *pattern; /* valid until gw_auth_stop */
    unsigned roles;               /* GW_ROLES_PUBLIC or a set of enum gw_role */
    bool pull;                    /* on g->pull_http */
};

/* Route i (0-based, registration order); false past the last one or without auth. */
bool gw_auth_route_at(const struct gw *g, size_t i, struct gw_auth_route_info *out);

/*
 * Make a token for principal name, creating the principal with role when
 * it does not exist (an existing one must have that role: else -EEXIST).
 * token gets the text (GW_AUTH_TOKEN_LEN + 1 octets), shown once; *id the
 * token's id. actor: who asked (audited as token.create / principal.create).
 * The cache is updated before it returns. 0, -EINVAL, -EEXIST, -EIO.
 */
int gw_auth_token_create(struct gw *g, const char *actor, const char *name, enum gw_role role,
                         char token[GW_AUTH_TOKEN_LEN + 1], int64_t *id,
                         struct ota_err *err) OTA_MUST_CHECK;

/* Revoke token id (audited token.revoke); the cache forgets it at once. 0, -ENOENT, -EALREADY. */
int gw_auth_token_revoke(struct gw *g, const char *actor, int64_t id,
                         struct ota_err *err) OTA_MUST_CHECK;

/*
 * Counters (tests, /metrics): requests refused (401 unauthorized, 403
 * forbidden), the 401s by kind (they add up to unauthorized), auth.fail
 * entries written and held back, reloads of the token cache, and the
 * tokens in that cache (as of its last reload: a change by otatool is seen
 * within GW_AUTH_RECHECK_S of the next request).
 */
struct gw_auth_stats {
    uint64_t unauthorized, forbidden, audited, audit_suppressed, reloads;
    uint64_t no_token, malformed, unknown_token, revoked_token; /* unauthorized by kind */
    uint64_t tokens_live, tokens_revoked;
};
void gw_auth_stats(const struct gw *g, struct gw_auth_stats *out);

/* ---- the tables, without a daemon (gateway/auth_db.c; otatool uses these) ---------------- */

/* "<db_path>.auth" into out. 0 or -ENAMETOOLONG. */
int gw_auth_db_path(const char *db_path, char *out, size_t cap) OTA_MUST_CHECK;

/*
 * Open (create) the auth file at path: WAL, synchronous=FULL, the tables
 * created when missing. 0 or -EIO; *out closed with sqlite3_close.
 */
int gw_auth_db_open(const char *path, struct sqlite3 **out, struct ota_err *err) OTA_MUST_CHECK;

/* SHA-256 of the token text as stored. */
int gw_auth_token_hash(const char *token, size_t len, uint8_t out[GW_AUTH_HASH_LEN]) OTA_MUST_CHECK;

/* Principal name; 0, -ENOENT, -EIO. */
int gw_auth_db_principal_get(struct sqlite3 *db, const char *name, struct gw_principal *out,
                             struct ota_err *err) OTA_MUST_CHECK;

/* A new principal; 0, -EINVAL (name, role), -EEXIST, -EIO. */
int gw_auth_db_principal_add(struct sqlite3 *db, const char *name, enum gw_role role,
                             struct gw_principal *out, struct ota_err *err) OTA_MUST_CHECK;

/*
 * A new token for principal_id: 256 bits from RAND_bytes, its text into
 * token (shown once, never stored), its SHA-256 stored. 0, -EIO.
 */
int gw_auth_db_token_add(struct sqlite3 *db, int64_t principal_id,
                         char token[GW_AUTH_TOKEN_LEN + 1], int64_t *id,
                         struct ota_err *err) OTA_MUST_CHECK;

/* Mark token id revoked now. 0, -ENOENT, -EALREADY (revoked before), -EIO. */
int gw_auth_db_token_revoke(struct sqlite3 *db, int64_t id, struct ota_err *err) OTA_MUST_CHECK;

/* A token as listed: never its text, only the tail of its hash. */
struct gw_auth_token_info {
    int64_t id;
    struct gw_principal principal;
    int64_t created_ms, revoked_ms; /* revoked_ms 0: live */
    uint8_t hash[GW_AUTH_HASH_LEN];
    char hint[GW_AUTH_HINT_LEN + 1]; /* the hash's last GW_AUTH_HINT_LEN hex digits */
};

/* Every token (revoked ones too), in id order; cb's non-zero return stops and is returned. */
int gw_auth_db_tokens(struct sqlite3 *db, int (*cb)(void *arg, const struct gw_auth_token_info *t),
                      void *arg, struct ota_err *err) OTA_MUST_CHECK;

/* Every principal in id order with its count of live tokens. */
int gw_auth_db_principals(struct sqlite3 *db,
                          int (*cb)(void *arg, const struct gw_principal *p, int64_t created_ms,
                                    unsigned live_tokens),
                          void *arg, struct ota_err *err) OTA_MUST_CHECK;
