/* SPDX-License-Identifier: Apache-2.0 */
/*
 * User Data Header codec: UDHL and the IEI/IEDL/IED list of TS 23.040
 * 9.2.3.24, kept generic (unknown IEs survive a parse/build round trip), and
 * the semantic helper that interprets the IEs otagw relies on: concatenation
 * (9.2.3.24.1, 9.2.3.24.8), application ports (9.2.3.24.3, 9.2.3.24.4) and
 * the SCP80 CPI/RPI (TS 31.115 4.2, 4.4).
 */
#include "ota/ota_udh.h"

#include <string.h>

const char *ota_iei_name(unsigned iei)
{
    switch (iei) {
    case OTA_IEI_CONCAT8:
        return "concat8";
    case OTA_IEI_PORT8:
        return "port8";
    case OTA_IEI_PORT16:
        return "port16";
    case OTA_IEI_CONCAT16:
        return "concat16";
    case OTA_IEI_CPI:
        return "cpi";
    case OTA_IEI_RPI:
        return "rpi";
    default:
        return "unknown";
    }
}

int ota_udh_parse(const uint8_t *ud, size_t len, struct ota_udh *out, struct ota_err *err)
{
    struct ota_udh u;
    size_t pos, end;

    if (!ud || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "udh: NULL argument");
    }
    if (len > OTA_SMS_UD_MAX) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "udh: UD %zu octets, max %u", len,
                        OTA_SMS_UD_MAX);
    }
    if (len == 0) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "udh: empty UD, no UDHL");
    }
    /* 9.2.3.24: UDHL counts the IE octets that follow it */
    if ((size_t)ud[0] > len - 1) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "udh: UDHL %u but only %zu octets follow",
                        ud[0], len - 1);
    }

    memset(&u, 0, sizeof(u));
    u.udhl = ud[0];
    end = 1 + (size_t)u.udhl;
    pos = 1;
    while (pos < end) {
        if (end - pos < 2) {
            return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                            "udh: IE %02x at offset %zu cut by UDHL %u (no IEDL)", ud[pos], pos,
                            u.udhl);
        }
        uint8_t iei = ud[pos], iedl = ud[pos + 1];
        if ((size_t)iedl > end - pos - 2) {
            return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                            "udh: IE %02x length %u but UDHL %u leaves %zu", iei, iedl, u.udhl,
                            end - pos - 2);
        }
        /* UDHL <= 139 and each IE >= 2 octets: n_ies never exceeds 69 */
        u.ies[u.n_ies].iei = iei;
        u.ies[u.n_ies].len = iedl;
        u.ies[u.n_ies].val = iedl ? &ud[pos + 2] : NULL;
        u.n_ies++;
        pos += 2 + (size_t)iedl;
    }
    u.payload = ud + end;
    u.payload_len = len - end;
    *out = u;
    return 0;
}

int ota_udh_build(const struct ota_udh_ie *ies, size_t n_ies, const uint8_t *payload,
                  size_t payload_len, uint8_t *dst, size_t cap, struct ota_err *err)
{
    size_t udhl = 0, total, pos;

    if (!dst || (n_ies && !ies) || (payload_len && !payload)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "udh build: NULL argument");
    }
    if (n_ies > OTA_UDH_MAX_IES) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "udh build: %zu IEs, max %u", n_ies,
                        OTA_UDH_MAX_IES);
    }
    for (size_t i = 0; i < n_ies; i++) {
        if (ies[i].len && !ies[i].val) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                            "udh build: IE %zu (%02x) has length %u and no value", i, ies[i].iei,
                            ies[i].len);
        }
        udhl += 2 + (size_t)ies[i].len;
    }
    total = 1 + udhl + payload_len;
    if (total > OTA_SMS_UD_MAX) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "udh build: UDH %zu + payload %zu octets exceed %u", 1 + udhl, payload_len,
                        OTA_SMS_UD_MAX);
    }
    if (total > cap) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "udh build: need %zu octets, cap %zu", total,
                        cap);
    }

    dst[0] = (uint8_t)udhl;
    pos = 1;
    for (size_t i = 0; i < n_ies; i++) {
        dst[pos++] = ies[i].iei;
        dst[pos++] = ies[i].len;
        if (ies[i].len) {
            memcpy(&dst[pos], ies[i].val, ies[i].len);
        }
        pos += ies[i].len;
    }
    if (payload_len) {
        memcpy(&dst[pos], payload, payload_len);
    }
    return (int)total;
}

static int want_len(const struct ota_udh_ie *ie, uint8_t want, struct ota_err *err)
{
    if (ie->len != want) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE, "udh: IE %02x (%s) length %u, must be %u",
                        ie->iei, ota_iei_name(ie->iei), ie->len, want);
    }
    return 0;
}

int ota_udh_info(const struct ota_udh *u, struct ota_udh_info *out, struct ota_err *err)
{
    struct ota_udh_info in;
    int rc;

    if (!u || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "udh info: NULL argument");
    }
    memset(&in, 0, sizeof(in));
    for (size_t i = 0; i < u->n_ies; i++) {
        const struct ota_udh_ie *ie = &u->ies[i];

        switch (ie->iei) {
        case OTA_IEI_CONCAT8:
        case OTA_IEI_CONCAT16: {
            bool c16 = ie->iei == OTA_IEI_CONCAT16;
            rc = want_len(ie, c16 ? 4 : 3, err);
            if (rc) {
                return rc;
            }
            /* 9.2.3.24: a repeated concat IE makes the set ambiguous */
            if (in.has_concat) {
                return ota_fail(err, -EBADMSG, OTA_ERR_DUPLICATE,
                                "udh: second concat IE (%02x) at index %zu", ie->iei, i);
            }
            const uint8_t *v = ie->val;
            uint16_t ref = c16 ? ota_get_u16(v) : v[0];
            uint8_t total = v[c16 ? 2 : 1], seq = v[c16 ? 3 : 2];
            /* 9.2.3.24.1: total 0 is reserved; seq 0 or > total is ignored by receivers */
            if (total == 0) {
                return ota_fail(err, -EBADMSG, OTA_ERR_VALUE, "udh: concat ref %u total 0", ref);
            }
            if (seq == 0 || seq > total) {
                return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                                "udh: concat ref %u seq %u outside 1..%u", ref, seq, total);
            }
            in.has_concat = true;
            in.concat16 = c16;
            in.ref = ref;
            in.total = total;
            in.seq = seq;
            break;
        }
        case OTA_IEI_PORT8:
        case OTA_IEI_PORT16: {
            bool p16 = ie->iei == OTA_IEI_PORT16;
            rc = want_len(ie, p16 ? 4 : 2, err);
            if (rc) {
                return rc;
            }
            if (in.has_ports) {
                return ota_fail(err, -EBADMSG, OTA_ERR_DUPLICATE,
                                "udh: second port IE (%02x) at index %zu", ie->iei, i);
            }
            in.has_ports = true;
            in.ports16 = p16;
            in.dst_port = p16 ? ota_get_u16(ie->val) : ie->val[0];
            in.src_port = p16 ? ota_get_u16(ie->val + 2) : ie->val[1];
            break;
        }
        case OTA_IEI_CPI:
            /* TS 31.115 4.2 gives CPI length 0; pySim data carries 70 01 ff, kept */
            in.has_cpi = true;
            in.cpi_len = ie->len;
            break;
        case OTA_IEI_RPI:
            in.has_rpi = true;
            in.rpi_len = ie->len;
            break;
        default:
            break;
        }
    }
    *out = in;
    return 0;
}

int ota_udh_parse_info(const uint8_t *ud, size_t len, struct ota_udh *u, struct ota_udh_info *in,
                       struct ota_err *err)
{
    int rc = ota_udh_parse(ud, len, u, err);

    if (rc) {
        return rc;
    }
    return ota_udh_info(u, in, err);
}
