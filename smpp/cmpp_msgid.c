/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CMPP Msg_Id: the 64-bit layout (month, day, hour, minute, second, ISMG code,
 * sequence; ../shared/reference/cmpp.md §8) and the one canonical text form
 * used to match delivery reports. Issue #4 "Lessons": reports get lost when
 * one side writes the id in decimal and the other in hex, or drops leading
 * zeros; every id therefore passes through cmpp_msgid_normalize() before it
 * is stored or compared.
 */
#include "smpp/cmpp.h"

#include <ctype.h>
#include <string.h>

#include <osmocom/core/utils.h>

/* Bit widths and shifts of §8, least significant field first. */
#define MSGID_SEQ_BITS 16
#define MSGID_GW_BITS 22
#define MSGID_SEC_BITS 6
#define MSGID_MIN_BITS 6
#define MSGID_HOUR_BITS 5
#define MSGID_DAY_BITS 5

#define MSGID_GW_SHIFT MSGID_SEQ_BITS
#define MSGID_SEC_SHIFT (MSGID_GW_SHIFT + MSGID_GW_BITS)
#define MSGID_MIN_SHIFT (MSGID_SEC_SHIFT + MSGID_SEC_BITS)
#define MSGID_HOUR_SHIFT (MSGID_MIN_SHIFT + MSGID_MIN_BITS)
#define MSGID_DAY_SHIFT (MSGID_HOUR_SHIFT + MSGID_HOUR_BITS)
#define MSGID_MON_SHIFT (MSGID_DAY_SHIFT + MSGID_DAY_BITS)

#define MSGID_MASK(bits) ((1u << (bits)) - 1u)

/* Longest decimal rendering of a u64 (18446744073709551615). */
#define MSGID_DEC_MAX_DIGITS 20
#define MSGID_HEX_DIGITS 16

int cmpp_msgid_compose(const struct cmpp_msgid_parts *m, uint64_t *id, struct ota_err *err)
{
    if (m->month < 1 || m->month > 12) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "cmpp msg_id: month %u not 1..12", m->month);
    }
    if (m->day < 1 || m->day > 31) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "cmpp msg_id: day %u not 1..31", m->day);
    }
    if (m->hour > 23 || m->minute > 59 || m->second > 59) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "cmpp msg_id: time %u:%u:%u out of range",
                        m->hour, m->minute, m->second);
    }
    if (m->gateway > MSGID_MASK(MSGID_GW_BITS)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "cmpp msg_id: gateway %u does not fit 22 bits",
                        m->gateway);
    }
    *id = (uint64_t)m->month << MSGID_MON_SHIFT | (uint64_t)m->day << MSGID_DAY_SHIFT |
          (uint64_t)m->hour << MSGID_HOUR_SHIFT | (uint64_t)m->minute << MSGID_MIN_SHIFT |
          (uint64_t)m->second << MSGID_SEC_SHIFT | (uint64_t)m->gateway << MSGID_GW_SHIFT | m->seq;
    return 0;
}

void cmpp_msgid_split(uint64_t id, struct cmpp_msgid_parts *m)
{
    m->month = (unsigned)(id >> MSGID_MON_SHIFT) & 0xfu;
    m->day = (unsigned)(id >> MSGID_DAY_SHIFT) & MSGID_MASK(MSGID_DAY_BITS);
    m->hour = (unsigned)(id >> MSGID_HOUR_SHIFT) & MSGID_MASK(MSGID_HOUR_BITS);
    m->minute = (unsigned)(id >> MSGID_MIN_SHIFT) & MSGID_MASK(MSGID_MIN_BITS);
    m->second = (unsigned)(id >> MSGID_SEC_SHIFT) & MSGID_MASK(MSGID_SEC_BITS);
    m->gateway = (uint32_t)(id >> MSGID_GW_SHIFT) & MSGID_MASK(MSGID_GW_BITS);
    m->seq = (uint16_t)id;
}

uint64_t cmpp_msgid_get(const uint8_t raw[8])
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | raw[i];
    }
    return v;
}

void cmpp_msgid_put(uint8_t raw[8], uint64_t id)
{
    for (int i = 7; i >= 0; i--, id >>= 8) {
        raw[i] = (uint8_t)id;
    }
}

void cmpp_msgid_canon(uint64_t id, char out[CMPP_MSGID_TEXT_SIZE])
{
    static const char hex[] = "0123456789abcdef";

    for (int i = MSGID_HEX_DIGITS - 1; i >= 0; i--, id >>= 4) {
        out[i] = hex[id & 0xf];
    }
    out[MSGID_HEX_DIGITS] = '\0';
}

const char *cmpp_msgid_fmt_name(enum cmpp_msgid_fmt fmt)
{
    switch (fmt) {
    case CMPP_MSGID_AUTO:
        return "auto";
    case CMPP_MSGID_HEX:
        return "hex";
    case CMPP_MSGID_DEC:
        return "dec";
    }
    return "unknown";
}

static int parse_hex(const char *s, size_t len, uint64_t *id, struct ota_err *err)
{
    uint64_t v = 0;

    if (len == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "cmpp msg_id: no hex digits");
    }
    if (len > MSGID_HEX_DIGITS) {
        return ota_fail(err, -EINVAL, OTA_ERR_OVERSIZE, "cmpp msg_id: %zu hex digits, at most 16",
                        len);
    }
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)s[i])) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                            "cmpp msg_id: character 0x%02x at %zu is not a hex digit",
                            (unsigned char)s[i], i);
        }
        v = v << 4 | osmo_char2bcd(s[i]);
    }
    *id = v;
    return 0;
}

static int parse_dec(const char *s, size_t len, uint64_t *id, struct ota_err *err)
{
    uint64_t v = 0;

    if (len == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "cmpp msg_id: no decimal digits");
    }
    if (len > MSGID_DEC_MAX_DIGITS) {
        /* Leading zeros beyond 20 digits are refused too: nobody writes them. */
        return ota_fail(err, -EINVAL, OTA_ERR_OVERSIZE,
                        "cmpp msg_id: %zu decimal digits, at most 20", len);
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                            "cmpp msg_id: character 0x%02x at %zu is not a digit",
                            (unsigned char)s[i], i);
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return ota_fail(err, -EINVAL, OTA_ERR_OVERSIZE,
                            "cmpp msg_id: decimal %.*s exceeds 64 bits", (int)len, s);
        }
        v = v * 10 + d;
    }
    *id = v;
    return 0;
}

int cmpp_msgid_parse(const char *s, size_t len, enum cmpp_msgid_fmt fmt, uint64_t *id,
                     struct ota_err *err)
{
    bool prefixed = len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');

    switch (fmt) {
    case CMPP_MSGID_HEX:
        return prefixed ? parse_hex(s + 2, len - 2, id, err) : parse_hex(s, len, id, err);
    case CMPP_MSGID_DEC:
        return parse_dec(s, len, id, err);
    case CMPP_MSGID_AUTO:
        break;
    default:
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cmpp msg_id: format %d unknown", (int)fmt);
    }
    if (prefixed) {
        return parse_hex(s + 2, len - 2, id, err);
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return parse_hex(s, len, id, err);
        }
    }
    /*
     * Digits only. A valid id (month >= 1, §8) is at least 2^60: 19 or 20
     * decimal digits but exactly 16 hex ones, so the digit count decides;
     * shorter strings are hex with their leading zeros dropped.
     */
    if (len > MSGID_HEX_DIGITS) {
        return parse_dec(s, len, id, err);
    }
    return parse_hex(s, len, id, err);
}

int cmpp_msgid_normalize(const char *s, size_t len, enum cmpp_msgid_fmt fmt,
                         char out[CMPP_MSGID_TEXT_SIZE], struct ota_err *err)
{
    uint64_t id;
    int rc = cmpp_msgid_parse(s, len, fmt, &id, err);

    if (rc < 0) {
        return rc;
    }
    cmpp_msgid_canon(id, out);
    return 0;
}
