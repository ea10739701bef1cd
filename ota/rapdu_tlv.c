/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The BER-TLV walker the remote APDU templates (TS 102 226 5.2, TS 101 220
 * 7.2) and the GlobalPlatform responses (GP Card Spec 2.2 11.4.2 GET STATUS,
 * 11.3 GET DATA) share: ISO/IEC 8825-1 tags of 1 or 2 octets and lengths in
 * the forms xx, 81 xx, 82 xx xx. Nothing on these paths needs more: SMS
 * secured data is under 64 KiB and GP tags stay within 2 octets.
 */
#include "ota/ota_rapdu.h"

#include <string.h>

int ota_rapdu_tlv_get(const uint8_t *p, size_t len, bool nested, struct ota_rapdu_tlv *t,
                      struct ota_err *err)
{
    struct ota_rapdu_tlv r = {0};
    size_t o = 1;

    if (len < 1) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "tlv: no tag octet");
    }
    r.tag = p[0];
    /* 8825-1 8.1.2: tag 00 is not a tag (it is end-of-contents or padding). */
    if (p[0] == 0x00) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TAG, "tlv: tag 00");
    }
    if ((p[0] & 0x1F) == 0x1F) {
        if (len < 2) {
            return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                            "tlv: tag %02X announces a second tag octet, input ends", p[0]);
        }
        /* b8 of the second octet set: a third octet follows; none of ours has one. */
        if (p[1] & 0x80) {
            return ota_fail(err, -EBADMSG, OTA_ERR_TAG, "tlv: tag %02X%02X.. longer than 2 octets",
                            p[0], p[1]);
        }
        r.tag = (uint16_t)(p[0] << 8 | p[1]);
        o = 2;
    }
    if (len < o + 1) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "tlv: tag %X has no length octet", r.tag);
    }
    uint8_t l0 = p[o++];
    if (l0 < 0x80) {
        r.len = l0;
    } else if (l0 == 0x80) {
        return ota_fail(
            err, -EBADMSG, OTA_ERR_LENGTH,
            "tlv: tag %X has indefinite length (80), only allowed for the AE/AF templates", r.tag);
    } else if (l0 == 0x81 || l0 == 0x82) {
        size_t nl = l0 & 0x7F;
        if (len < o + nl) {
            return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                            "tlv: tag %X length field %02X needs %zu more octets, %zu left", r.tag,
                            l0, nl, len - o);
        }
        r.len = nl == 1 ? p[o] : ota_get_u16(p + o);
        o += nl;
    } else {
        return ota_fail(err, -EBADMSG, OTA_ERR_OVERSIZE,
                        "tlv: tag %X length field %02X (%u octets), at most 82 xx xx supported",
                        r.tag, l0, l0 & 0x7Fu);
    }
    if (r.len > len - o) {
        return ota_fail(err, -EBADMSG, nested ? OTA_ERR_LENGTH : OTA_ERR_TRUNCATED,
                        "tlv: tag %X length %zu, only %zu octets %s", r.tag, r.len, len - o,
                        nested ? "left in its template" : "follow");
    }
    r.value = r.len ? p + o : NULL;
    r.size = o + r.len;
    *t = r;
    return 0;
}

size_t ota_rapdu_tlv_hdr_len(uint16_t tag, size_t vlen)
{
    size_t n = tag > 0xFF ? 2 : 1;

    if (vlen > OTA_RAPDU_TLV_MAX_LEN) {
        return 0;
    }
    return n + (vlen < 0x80 ? 1 : vlen <= 0xFF ? 2 : 3);
}

int ota_rapdu_tlv_put(uint16_t tag, const uint8_t *value, size_t vlen, uint8_t *dst, size_t cap,
                      struct ota_err *err)
{
    size_t o = 0, hl;

    if (tag > 0xFF ? ((tag >> 8) & 0x1F) != 0x1F || (tag & 0x80)
                   : (tag & 0x1F) == 0x1F || tag == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "tlv: %X is no 1- or 2-octet BER tag", tag);
    }
    if (vlen && !value) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "tlv: tag %X length %zu without value", tag,
                        vlen);
    }
    hl = ota_rapdu_tlv_hdr_len(tag, vlen);
    if (hl == 0) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "tlv: tag %X value of %zu octets, at most %u", tag, vlen,
                        OTA_RAPDU_TLV_MAX_LEN);
    }
    if (hl + vlen > cap) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE,
                        "tlv: tag %X needs %zu octets, %zu available", tag, hl + vlen, cap);
    }
    /* Move the value first: it may overlap the place the header goes. */
    if (vlen) {
        memmove(dst + hl, value, vlen);
    }
    if (tag > 0xFF) {
        dst[o++] = (uint8_t)(tag >> 8);
    }
    dst[o++] = (uint8_t)tag;
    if (vlen < 0x80) {
        dst[o++] = (uint8_t)vlen;
    } else if (vlen <= 0xFF) {
        dst[o++] = 0x81;
        dst[o++] = (uint8_t)vlen;
    } else {
        dst[o++] = 0x82;
        ota_put_u16(dst + o, (uint16_t)vlen);
        o += 2;
    }
    return (int)(o + vlen);
}
