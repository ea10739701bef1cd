/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Principals, API tokens and roles (issue #7, spec 7.1).
 *
 * A principal is a named caller with one role. It authenticates with an API
 * token ("Authorization: Bearer <token>"): random, at least 256 bits, stored
 * only as a hash. Every route is registered through gw_route() with the set
 * of roles allowed on it; the wrapper authenticates the request, refuses it
 * (401 no or bad token, 403 role not allowed) before the handler runs, and
 * keeps the principal with the request for the handler (gw_req_principal()).
 *
 * Ownership: a platform principal sees and acts only on its own tasks, jobs
 * and callbacks; the owner is the principal's name, kept with the task.
 *
 * Prefix gw_auth_ / gw_route / gw_req_. One thread (the loop's).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gateway/http.h"
#include "ota/ota_common.h"

struct gw;

/* Roles, as bits so a route names the set it allows. */
enum gw_role {
    GW_ROLE_ADMIN = 1u << 0,     /* tokens, keys, config: everything */
    GW_ROLE_OPERATOR = 1u << 1,  /* ops staff: every task and job, dashboard, SE view */
    GW_ROLE_PLATFORM = 1u << 2,  /* a business platform: its own tasks, jobs, callbacks */
    GW_ROLE_CLIENT = 1u << 3,    /* a wallet client: the pull API */
    GW_ROLE_ANTITHEFT = 1u << 4, /* an authorisation server (ITU-T X.1127): lock/unlock/wipe */
};

/* No token asked (health, the OpenAPI document). Use sparingly. */
#define GW_ROLES_PUBLIC 0u
#define GW_ROLES_STAFF (GW_ROLE_ADMIN | GW_ROLE_OPERATOR)

#define GW_AUTH_NAME_MAX 64 /* principal names: 1..64 of [A-Za-z0-9._-] */

struct gw_principal {
    int64_t id;
    char name[GW_AUTH_NAME_MAX + 1];
    enum gw_role role; /* exactly one bit */
};

/* "admin", "operator", "platform", "client", "anti-theft"; "?" otherwise. */
const char *gw_role_name(enum gw_role r);

/* Parse a role name; 0 or -EINVAL. */
int gw_role_parse(const char *s, enum gw_role *out);

/*
 * Register a route that only principals with a role in roles may call
 * (GW_ROLES_PUBLIC: anyone, no token read). Same errors as http_route().
 */
int gw_route(struct gw *g, const char *method, const char *pattern, unsigned roles, http_handler h,
             void *arg, struct ota_err *err) OTA_MUST_CHECK;

/*
 * The authenticated principal of a request routed by gw_route(); NULL on a
 * public route. Valid until the request is answered.
 */
const struct gw_principal *gw_req_principal(struct http_req *req);

/*
 * May p see / act on something owned by owner (a principal name, or NULL /
 * "" for things with no owner)? Admin and operator: always. Platform and
 * anti-theft: only their own. Client: never through the business API.
 */
bool gw_principal_owns(const struct gw_principal *p, const char *owner);

/* Open the principal/token tables, register the token routes. */
int gw_auth_start(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;
void gw_auth_stop(struct gw *g);
