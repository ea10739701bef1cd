/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TEMPORARY (issue #7 in progress): entries only go to the log; the
 * hash-chained durable table replaces this file.
 */
#include "gateway/audit.h"

#include <stdarg.h>
#include <stdio.h>

#include "gateway/gw.h"

int gw_audit(struct gw *g, const char *actor, const char *action, const char *target,
             const char *fmt, ...)
{
    char detail[512] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
    }
    gw_log(g, GW_CONF_LOG_NOTICE, "audit actor=%s action=%s target=%s detail=\"%s\"", actor, action,
           target ? target : "-", detail);
    return 0;
}

int gw_audit_start(struct gw *g, struct ota_err *err)
{
    (void)g;
    (void)err;
    return 0;
}

void gw_audit_stop(struct gw *g)
{
    (void)g;
}
