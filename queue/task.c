/* SPDX-License-Identifier: Apache-2.0 */
#include "queue/task.h"

#include <errno.h>
#include <string.h>

#include "ota/ota_common.h"

static const char *const state_names[TASK_STATE__COUNT] = {
    [TASK_QUEUED] = "queued",       [TASK_DISPATCHED] = "dispatched",
    [TASK_SUBMITTED] = "submitted", [TASK_DELIVERED] = "delivered",
    [TASK_DONE] = "done",           [TASK_FAILED] = "failed",
    [TASK_EXPIRED] = "expired",     [TASK_CANCELLED] = "cancelled",
};

static const char *const reason_names[TASK_REASON__COUNT] = {
    [TASK_R_NONE] = "none",
    [TASK_R_BEARER_REJECTED] = "bearer-rejected",
    [TASK_R_BEARER_TIMEOUT] = "bearer-timeout",
    [TASK_R_DLR_FAILED] = "dlr-failed",
    [TASK_R_DLR_EXPIRED] = "dlr-expired",
    [TASK_R_DLR_REJECTED] = "dlr-rejected",
    [TASK_R_DLR_MISSING] = "dlr-missing",
    [TASK_R_POR_MISSING] = "por-missing",
    [TASK_R_POR_BAD_CC] = "por-bad-cc",
    [TASK_R_POR_STALE_COUNTER] = "por-stale-counter",
    [TASK_R_POR_STATUS] = "por-status",
    [TASK_R_CARD_SW] = "card-sw",
    [TASK_R_NOT_PULLED] = "not-pulled",
    [TASK_R_DEADLINE] = "deadline",
    [TASK_R_CANCELLED] = "cancelled",
    [TASK_R_TERMINATED] = "terminated",
    [TASK_R_NO_KEYS] = "no-keys",
    [TASK_R_SE_UNKNOWN] = "se-unknown",
    [TASK_R_BUILD] = "build",
    [TASK_R_UNSUPPORTED] = "unsupported",
    [TASK_R_STEP_FAILED] = "step-failed",
    [TASK_R_CLIENT] = "client",
    [TASK_R_POR_MISMATCH] = "por-mismatch",
    [TASK_R_JOB_CANCELLED] = "job-cancelled",
};

static const char *const op_names[TASK_OP__COUNT] = {
    [TASK_OP_PUSH] = "push",
    [TASK_OP_SCP80] = "scp80",
    [TASK_OP_APP_DOWNLOAD] = "app-download",
    [TASK_OP_APP_DELETE] = "app-delete",
    [TASK_OP_APP_LOCK] = "app-lock",
    [TASK_OP_APP_UNLOCK] = "app-unlock",
    [TASK_OP_APP_PERSONALIZE] = "app-personalize",
    [TASK_OP_SD_CREATE] = "sd-create",
    [TASK_OP_SD_DELETE] = "sd-delete",
    [TASK_OP_SD_KEY_UPDATE] = "sd-key-update",
    [TASK_OP_INFO_SYNC] = "info-sync",
    [TASK_OP_CUSTOM] = "custom",
    [TASK_OP_AT_LOCK] = "antitheft-lock",
    [TASK_OP_AT_UNLOCK] = "antitheft-unlock",
    [TASK_OP_AT_WIPE] = "antitheft-wipe",
};

static const char *const channel_names[TASK_CH__COUNT] = {
    [TASK_CH_SCP80] = "scp80",
    [TASK_CH_PUSH] = "push",
};

/*
 * The transition table. Rows are "from", columns "to". Retries go back to
 * queued from any active state; submitted -> done is legal because a
 * verified PoR proves delivery even when the DLR is late or never comes.
 */
#define Y true
#define N_ false
static const bool table[TASK_STATE__COUNT][TASK_STATE__COUNT] = {
    /*                  queued dispat submit deliv done failed expired cancelled */
    [TASK_QUEUED] = {N_, Y, N_, N_, N_, Y, Y, Y},
    [TASK_DISPATCHED] = {Y, N_, Y, N_, N_, Y, Y, Y},
    [TASK_SUBMITTED] = {Y, N_, N_, Y, Y, Y, Y, Y},
    [TASK_DELIVERED] = {Y, N_, N_, N_, Y, Y, Y, Y},
    [TASK_DONE] = {N_, N_, N_, N_, N_, N_, N_, N_},
    [TASK_FAILED] = {N_, N_, N_, N_, N_, N_, N_, N_},
    [TASK_EXPIRED] = {N_, N_, N_, N_, N_, N_, N_, N_},
    [TASK_CANCELLED] = {N_, N_, N_, N_, N_, N_, N_, N_},
};
#undef Y
#undef N_

const char *task_state_name(enum task_state s)
{
    return ota_enum_name(state_names, OTA_ARRAY_SIZE(state_names), s);
}

const char *task_reason_name(enum task_reason r)
{
    return ota_enum_name(reason_names, OTA_ARRAY_SIZE(reason_names), r);
}

const char *task_op_name(enum task_op op)
{
    return ota_enum_name(op_names, OTA_ARRAY_SIZE(op_names), op);
}

const char *task_channel_name(enum task_channel ch)
{
    return ota_enum_name(channel_names, OTA_ARRAY_SIZE(channel_names), ch);
}

static int parse(const char *const *names, size_t n, const char *name, int *out)
{
    if (!name) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (names[i] && strcmp(names[i], name) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    return -EINVAL;
}

int task_state_parse(const char *name, enum task_state *out)
{
    int v;
    int rc = parse(state_names, OTA_ARRAY_SIZE(state_names), name, &v);
    if (rc == 0) {
        *out = (enum task_state)v;
    }
    return rc;
}

int task_op_parse(const char *name, enum task_op *out)
{
    int v;
    int rc = parse(op_names, OTA_ARRAY_SIZE(op_names), name, &v);
    if (rc == 0) {
        *out = (enum task_op)v;
    }
    return rc;
}

int task_channel_parse(const char *name, enum task_channel *out)
{
    int v;
    int rc = parse(channel_names, OTA_ARRAY_SIZE(channel_names), name, &v);
    if (rc == 0) {
        *out = (enum task_channel)v;
    }
    return rc;
}

bool task_transition_ok(enum task_state from, enum task_state to)
{
    if ((unsigned)from >= TASK_STATE__COUNT || (unsigned)to >= TASK_STATE__COUNT) {
        return false;
    }
    return table[from][to];
}
