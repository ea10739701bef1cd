/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TEMPORARY PASS-THROUGH (issue #7 in progress): routes are registered with
 * their role sets but no token is checked yet and every request runs without
 * a principal. The real implementation replaces this file.
 */
#include "gateway/auth.h"

#include <errno.h>
#include <string.h>

#include "gateway/gw.h"

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
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(roles[i].name, s) == 0) {
            *out = roles[i].r;
            return 0;
        }
    }
    return -EINVAL;
}

int gw_route(struct gw *g, const char *method, const char *pattern, unsigned allowed,
             http_handler h, void *arg, struct ota_err *err)
{
    (void)allowed;
    return http_route(g->http, method, pattern, h, arg, err);
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

int gw_auth_start(struct gw *g, struct ota_err *err)
{
    (void)g;
    (void)err;
    return 0;
}

void gw_auth_stop(struct gw *g)
{
    (void)g;
}
