/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The error record of ota/: names for enum ota_errc and the helper that fills
 * struct ota_err on a failing path.
 */
#include "ota/ota_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const errc_names[OTA_ERR__COUNT] = {
    [OTA_OK] = "ok",
    [OTA_ERR_TRUNCATED] = "truncated",
    [OTA_ERR_OVERSIZE] = "oversize",
    [OTA_ERR_LENGTH] = "bad-length",
    [OTA_ERR_VALUE] = "bad-value",
    [OTA_ERR_NOSPACE] = "no-space",
    [OTA_ERR_ARG] = "bad-argument",
    [OTA_ERR_KEY] = "bad-key",
    [OTA_ERR_CRYPTO] = "crypto-failure",
    [OTA_ERR_BAD_CC] = "bad-cc",
    [OTA_ERR_PADDING] = "bad-padding",
    [OTA_ERR_TAR] = "tar-mismatch",
    [OTA_ERR_COUNTER] = "counter-refused",
    [OTA_ERR_CRYPTOGRAM] = "bad-cryptogram",
    [OTA_ERR_STATE] = "bad-state",
    [OTA_ERR_TAG] = "bad-tag",
    [OTA_ERR_VERSION] = "bad-version",
    [OTA_ERR_DUPLICATE] = "duplicate",
    [OTA_ERR_MISSING] = "missing",
    [OTA_ERR_LIMIT] = "limit-reached",
    [OTA_ERR_SW] = "status-word",
    [OTA_ERR_PROTECTION] = "protection-missing",
};

const char *ota_enum_name(const char *const *names, size_t n_names, int64_t v)
{
    if (v < 0 || (uint64_t)v >= n_names || !names[v]) {
        return "unknown";
    }
    return names[v];
}

const char *ota_errc_name(enum ota_errc code)
{
    return ota_enum_name(errc_names, OTA_ERR__COUNT, code);
}

int ota_fail(struct ota_err *err, int rc, enum ota_errc code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return rc;
}

void ota_err_clear(struct ota_err *err)
{
    if (err) {
        err->code = OTA_OK;
        err->msg[0] = '\0';
    }
}
