/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log (issue #7, spec 7.2): an append-only record of every
 * security-relevant action (login failures, token and key operations, lock /
 * unlock / wipe, cancel / terminate, config reload), each entry hash-chained
 * to the one before and stored durably before gw_audit() returns.
 * `otatool audit-verify` walks the chain and names the first broken entry.
 *
 * Never pass key bytes, tokens or other secrets in any field.
 *
 * Prefix gw_audit. One thread (the loop's).
 */
#pragma once

#include "ota/ota_common.h"

struct gw;

/*
 * Append one entry: actor (a principal name, "system", or "anonymous"),
 * action (a stable dotted name: "auth.fail", "token.create", "key.import",
 * "task.cancel", "antitheft.lock", "config.reload", ...), target (what it acted
 * on: "se:ABC", "task:42", "token:7"; may be NULL), and a printf detail (may
 * be NULL). A failure to write is logged at error level and returned; callers
 * on a request path refuse the action when the audit entry cannot be written.
 */
int gw_audit(struct gw *g, const char *actor, const char *action, const char *target,
             const char *fmt, ...) OTA_PRINTF(5, 6);

/*
 * Seq of the last entry written (0: none, or no log open). For /metrics: a
 * series kept elsewhere anchors the chain against entries cut from its end.
 */
int64_t gw_audit_head_seq(const struct gw *g);

/* Open (create) the audit table. */
int gw_audit_start(struct gw *g, struct ota_err *err) OTA_MUST_CHECK;
void gw_audit_stop(struct gw *g);
