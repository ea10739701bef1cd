/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ISO/IEC 7816-4 5.1 short command APDUs: the four cases split from bytes and
 * joined back. A short APDU is unambiguous given its total length, which is
 * what separates this from the compact remote-APDU script (TS 102 226 5.1.1),
 * where commands run together and the split needs more knowledge.
 */
#include "ota/ota_apdu.h"

#include <string.h>

int ota_apdu_parse(const uint8_t *p, size_t len, struct ota_apdu *a, struct ota_err *err)
{
    struct ota_apdu r = {0};

    if (len < 4) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "apdu: %zu octets, header needs 4", len);
    }
    r.cla = p[0];
    r.ins = p[1];
    r.p1 = p[2];
    r.p2 = p[3];
    if (len == 4) {
        goto done;
    }
    if (len == 5) {
        r.has_le = true;
        r.le = p[4];
        goto done;
    }
    r.lc = p[4];
    if (r.lc == 0) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "apdu: Lc 00 followed by %zu octets (extended length is not supported)",
                        len - 5);
    }
    if (len < 5u + r.lc) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "apdu: Lc %u but only %zu data octets",
                        r.lc, len - 5);
    }
    r.data = p + 5;
    if (len == 5u + r.lc + 1) {
        r.has_le = true;
        r.le = p[5 + r.lc];
    } else if (len != 5u + r.lc) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "apdu: Lc %u leaves %zu octets after the data, at most 1 (Le) allowed",
                        r.lc, len - 5 - r.lc);
    }
done:
    *a = r;
    return 0;
}

size_t ota_apdu_len(const struct ota_apdu *a)
{
    return 4 + (a->lc ? 1u + a->lc : 0u) + (a->has_le ? 1u : 0u);
}

int ota_apdu_build(const struct ota_apdu *a, uint8_t *dst, size_t cap, struct ota_err *err)
{
    size_t n = ota_apdu_len(a), o = 4;

    if (a->lc && !a->data) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "apdu: Lc %u without data", a->lc);
    }
    if (n > cap) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "apdu: %zu octets do not fit in %zu", n,
                        cap);
    }
    dst[0] = a->cla;
    dst[1] = a->ins;
    dst[2] = a->p1;
    dst[3] = a->p2;
    if (a->lc) {
        dst[o++] = a->lc;
        memmove(dst + o, a->data, a->lc);
        o += a->lc;
    }
    if (a->has_le) {
        dst[o++] = a->le;
    }
    return (int)o;
}
