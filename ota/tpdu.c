/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SMS TPDU helpers: parse the header of an SMS-DELIVER (TS 23.040 9.2.2.1)
 * or SMS-SUBMIT (9.2.2.2) up to the user data, with the address of 9.1.2.5,
 * TP-VPF/TP-VP of 9.2.3.3/9.2.3.12, TP-UDL of 9.2.3.16 and the DCS alphabet
 * rules of TS 23.038 4; and build an SMS-DELIVER carrying 8-bit user data,
 * as the card simulator hands SMS-PP downloads to a simulated UICC.
 */
#include "ota/ota_udh.h"

#include <string.h>

#include <osmocom/gsm/gsm_utils.h>

/* TS 23.040 9.2.3.1-9.2.3.27: first-octet bits */
#define FO_MTI_MASK 0x03
#define FO_MMS 0x04    /* DELIVER: TP-MMS */
#define FO_VPF_SHIFT 3 /* SUBMIT: TP-VPF b4..b3 */
#define FO_SRI 0x20    /* DELIVER: TP-SRI */
#define FO_UDHI 0x40
#define FO_RP 0x80
#define SCTS_LEN 7
#define UD_SEPTETS_MAX 160

/* TS 23.040 9.1.2.3 semi-octet digits; 0xF is the filler of an odd count */
static const char bcd_digits[] = "0123456789*#abc";

static const char *const mti_names[] = {
    [OTA_TPDU_DELIVER] = "sms-deliver",
    [OTA_TPDU_SUBMIT] = "sms-submit",
};
static const char *const alpha_names[] = {
    [OTA_TPDU_ALPHA_7BIT] = "gsm7",
    [OTA_TPDU_ALPHA_8BIT] = "8bit",
    [OTA_TPDU_ALPHA_UCS2] = "ucs2",
};
static const char *const vpf_names[] = {
    [OTA_TPDU_VPF_NONE] = "none",
    [OTA_TPDU_VPF_ENHANCED] = "enhanced",
    [OTA_TPDU_VPF_RELATIVE] = "relative",
    [OTA_TPDU_VPF_ABSOLUTE] = "absolute",
};

const char *ota_tpdu_mti_name(enum ota_tpdu_mti m)
{
    return (unsigned)m < OTA_ARRAY_SIZE(mti_names) ? mti_names[m] : "unknown";
}

const char *ota_tpdu_alphabet_name(enum ota_tpdu_alphabet a)
{
    return (unsigned)a < OTA_ARRAY_SIZE(alpha_names) ? alpha_names[a] : "unknown";
}

const char *ota_tpdu_vpf_name(enum ota_tpdu_vpf v)
{
    return (unsigned)v < OTA_ARRAY_SIZE(vpf_names) ? vpf_names[v] : "unknown";
}

/* TS 23.038 4: which alphabet a DCS selects; reserved groups fail. */
static int dcs_alphabet(uint8_t dcs, enum ota_tpdu_alphabet *a, struct ota_err *err)
{
    switch (dcs >> 4) {
    case 0x0:
    case 0x1:
    case 0x2:
    case 0x3: /* general data coding */
    case 0x4:
    case 0x5:
    case 0x6:
    case 0x7: /* automatic deletion group */
        if (dcs & 0x20) {
            /* compressed text: UDL counts octets */
            *a = OTA_TPDU_ALPHA_8BIT;
            return 0;
        }
        switch ((dcs >> 2) & 3) {
        case 0:
            *a = OTA_TPDU_ALPHA_7BIT;
            return 0;
        case 1:
            *a = OTA_TPDU_ALPHA_8BIT;
            return 0;
        case 2:
            *a = OTA_TPDU_ALPHA_UCS2;
            return 0;
        default:
            break;
        }
        break;
    case 0xc:
    case 0xd: /* message waiting, GSM 7-bit */
        *a = OTA_TPDU_ALPHA_7BIT;
        return 0;
    case 0xe: /* message waiting, UCS-2 */
        *a = OTA_TPDU_ALPHA_UCS2;
        return 0;
    case 0xf: /* data coding / message class: b2 selects 8-bit */
        *a = (dcs & 0x04) ? OTA_TPDU_ALPHA_8BIT : OTA_TPDU_ALPHA_7BIT;
        return 0;
    default:
        break;
    }
    return ota_fail(err, -EBADMSG, OTA_ERR_VALUE, "tpdu: TP-DCS %02x is a reserved coding", dcs);
}

/* TS 23.040 9.1.2.5: length in semi-octets, TON/NPI, the digits. */
static int parse_addr(const uint8_t *p, size_t len, size_t *pos, const char *what,
                      struct ota_tpdu_addr *a, struct ota_err *err)
{
    size_t at = *pos, n_oct;
    uint8_t n_semi;

    if (len - at < 2) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                        "tpdu: %s header needs 2 octets at %zu, %zu left", what, at, len - at);
    }
    n_semi = p[at];
    if (n_semi > OTA_TPDU_ADDR_DIGITS_MAX) {
        return ota_fail(err, -EBADMSG, OTA_ERR_OVERSIZE, "tpdu: %s length %u, max %u", what, n_semi,
                        OTA_TPDU_ADDR_DIGITS_MAX);
    }
    n_oct = ((size_t)n_semi + 1) / 2;
    if (len - at - 2 < n_oct) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                        "tpdu: %s of %u semi-octets needs %zu octets, %zu left", what, n_semi,
                        n_oct, len - at - 2);
    }
    memset(a, 0, sizeof(*a));
    a->n_semi = n_semi;
    a->ton_npi = p[at + 1];
    const uint8_t *d = &p[at + 2];
    if ((a->ton_npi & 0x70) == 0x50) {
        /* 9.1.2.5: alphanumeric, GSM 7-bit packed; n_semi*4 bits hold n_semi*4/7 septets */
        gsm_7bit_decode_n(a->digits, sizeof(a->digits), d, (uint8_t)(n_semi * 4 / 7));
    } else {
        for (size_t i = 0; i < n_semi; i++) {
            uint8_t nib = (i & 1) ? d[i / 2] >> 4 : d[i / 2] & 0x0f;

            if (nib == 0x0f) {
                return ota_fail(err, -EBADMSG, OTA_ERR_VALUE, "tpdu: %s digit %zu is the filler F",
                                what, i);
            }
            a->digits[i] = bcd_digits[nib];
        }
    }
    *pos = at + 2 + n_oct;
    return 0;
}

int ota_tpdu_parse(const uint8_t *p, size_t len, bool prefix, struct ota_tpdu *out,
                   struct ota_err *err)
{
    struct ota_tpdu t;
    size_t pos = 0, ud_max, ud_want;
    int rc;

    if (!p || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "tpdu: NULL argument");
    }
    if (len < 1) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "tpdu: empty");
    }
    memset(&t, 0, sizeof(t));
    t.first_octet = p[pos++];
    t.udhi = t.first_octet & FO_UDHI;
    switch (t.first_octet & FO_MTI_MASK) {
    case 0:
        t.mti = OTA_TPDU_DELIVER;
        break;
    case 1:
        t.mti = OTA_TPDU_SUBMIT;
        break;
    default:
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                        "tpdu: TP-MTI %u is neither DELIVER nor SUBMIT",
                        t.first_octet & FO_MTI_MASK);
    }
    if (t.mti == OTA_TPDU_SUBMIT) {
        if (len - pos < 1) {
            return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "tpdu: no TP-MR");
        }
        t.mr = p[pos++];
        t.vpf = (enum ota_tpdu_vpf)((t.first_octet >> FO_VPF_SHIFT) & 3);
    }
    rc = parse_addr(p, len, &pos, t.mti == OTA_TPDU_SUBMIT ? "TP-DA" : "TP-OA", &t.addr, err);
    if (rc) {
        return rc;
    }
    if (len - pos < 2) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                        "tpdu: TP-PID/TP-DCS need 2 octets at %zu, %zu left", pos, len - pos);
    }
    t.pid = p[pos++];
    t.dcs = p[pos++];
    rc = dcs_alphabet(t.dcs, &t.alphabet, err);
    if (rc) {
        return rc;
    }
    if (t.mti == OTA_TPDU_SUBMIT) {
        /* 9.2.3.12: relative 1 octet, absolute and enhanced 7 */
        t.vp_len = t.vpf == OTA_TPDU_VPF_NONE ? 0 : t.vpf == OTA_TPDU_VPF_RELATIVE ? 1 : 7;
        if (len - pos < t.vp_len) {
            return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                            "tpdu: TP-VP (%s) needs %u octets, %zu left", ota_tpdu_vpf_name(t.vpf),
                            t.vp_len, len - pos);
        }
        t.vp = t.vp_len ? &p[pos] : NULL;
        pos += t.vp_len;
    } else {
        if (len - pos < SCTS_LEN) {
            return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                            "tpdu: TP-SCTS needs %u octets, %zu left", SCTS_LEN, len - pos);
        }
        memcpy(t.scts, &p[pos], SCTS_LEN);
        pos += SCTS_LEN;
    }
    if (len - pos < 1) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "tpdu: no TP-UDL at %zu", pos);
    }
    t.udl = p[pos++];
    /* 9.2.3.16: UDL counts septets for GSM 7-bit, octets otherwise */
    if (t.alphabet == OTA_TPDU_ALPHA_7BIT) {
        ud_max = UD_SEPTETS_MAX;
        ud_want = ((size_t)t.udl * 7 + 7) / 8;
    } else {
        ud_max = OTA_SMS_UD_MAX;
        ud_want = t.udl;
    }
    if (t.udl > ud_max) {
        return ota_fail(err, -EBADMSG, OTA_ERR_OVERSIZE, "tpdu: TP-UDL %u (%s), max %zu", t.udl,
                        ota_tpdu_alphabet_name(t.alphabet), ud_max);
    }
    if (len - pos < ud_want && !prefix) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                        "tpdu: TP-UDL %u needs %zu UD octets, %zu present", t.udl, ud_want,
                        len - pos);
    }
    if (len - pos > ud_want) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "tpdu: %zu octets after the %zu UD octets of TP-UDL %u",
                        len - pos - ud_want, ud_want, t.udl);
    }
    t.ud = &p[pos];
    t.ud_len = len - pos;
    t.ud_partial = t.ud_len < ud_want;
    *out = t;
    return 0;
}

int ota_tpdu_build_deliver(const struct ota_tpdu_deliver_params *prm, uint8_t *dst, size_t cap,
                           struct ota_err *err)
{
    enum ota_tpdu_alphabet alpha;
    size_t n_dig, need, pos = 0;
    int rc;

    if (!prm || !dst || !prm->oa || (prm->ud_len && !prm->ud)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "tpdu build: NULL argument");
    }
    n_dig = strnlen(prm->oa, OTA_TPDU_ADDR_DIGITS_MAX + 1);
    if (n_dig == 0 || n_dig > OTA_TPDU_ADDR_DIGITS_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "tpdu build: OA has %zu digits, 1..%u", n_dig,
                        OTA_TPDU_ADDR_DIGITS_MAX);
    }
    for (size_t i = 0; i < n_dig; i++) {
        if (!memchr(bcd_digits, prm->oa[i], sizeof(bcd_digits) - 1)) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG, "tpdu build: OA digit %zu is 0x%02x", i,
                            (unsigned char)prm->oa[i]);
        }
    }
    rc = dcs_alphabet(prm->dcs, &alpha, err);
    if (rc) {
        return -EINVAL;
    }
    if (alpha == OTA_TPDU_ALPHA_7BIT) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "tpdu build: TP-DCS %02x is GSM 7-bit, UDL would count septets", prm->dcs);
    }
    if (prm->ud_len > OTA_SMS_UD_MAX) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "tpdu build: UD %zu octets, max %u",
                        prm->ud_len, OTA_SMS_UD_MAX);
    }
    need = 1 + 2 + (n_dig + 1) / 2 + 2 + SCTS_LEN + 1 + prm->ud_len;
    if (need > cap) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "tpdu build: need %zu octets, cap %zu", need,
                        cap);
    }

    /* 9.2.2.1: MTI 00 | MMS | LP 0 | SRI | UDHI | RP */
    dst[pos++] = (uint8_t)((prm->no_more_msgs ? FO_MMS : 0) | (prm->sri ? FO_SRI : 0) |
                           (prm->udhi ? FO_UDHI : 0) | (prm->rp ? FO_RP : 0));
    dst[pos++] = (uint8_t)n_dig;
    dst[pos++] = prm->oa_ton_npi;
    for (size_t i = 0; i < n_dig; i += 2) {
        uint8_t lo = (uint8_t)((const char *)memchr(bcd_digits, prm->oa[i], 15) - bcd_digits);
        uint8_t hi = 0x0f;

        if (i + 1 < n_dig) {
            hi = (uint8_t)((const char *)memchr(bcd_digits, prm->oa[i + 1], 15) - bcd_digits);
        }
        dst[pos++] = (uint8_t)(hi << 4 | lo);
    }
    dst[pos++] = prm->pid;
    dst[pos++] = prm->dcs;
    memcpy(&dst[pos], prm->scts, SCTS_LEN);
    pos += SCTS_LEN;
    dst[pos++] = (uint8_t)prm->ud_len; /* 8-bit/UCS-2: octets, UDH included */
    if (prm->ud_len) {
        memcpy(&dst[pos], prm->ud, prm->ud_len);
    }
    pos += prm->ud_len;
    return (int)pos;
}
