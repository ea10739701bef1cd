/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Short command APDUs of ISO/IEC 7816-4 (5.1): the four cases, split from
 * bytes and joined back. Every GP builder, remote-APDU script and SCP02 wrap
 * goes through struct ota_apdu so that Lc/Le handling lives in one place.
 * Extended length (Lc 00 xx xx) is not used over SMS and is refused.
 * Part of the ota/ public face: users include "ota/ota.h".
 */
#pragma once

#include "ota/ota_common.h"

#define OTA_APDU_MAX_DATA 255
#define OTA_APDU_MAX_LEN (5 + OTA_APDU_MAX_DATA + 1)

/*
 * A command APDU. data is borrowed (not owned): it points into the buffer the
 * APDU was parsed from, or into the caller's storage when building.
 */
struct ota_apdu {
    uint8_t cla, ins, p1, p2;
    const uint8_t *data; /* NULL when lc == 0 */
    uint8_t lc;          /* 0 = no data field (case 1/2) */
    bool has_le;         /* case 2/4 */
    uint8_t le;          /* 00 means 256 */
};

/*
 * Split a short APDU: 4 octets = case 1; 5 = case 2 (P3 is Le); otherwise P3
 * is Lc and the rest is data, with one trailing octet as Le (case 4).
 * Returns 0, or -EBADMSG with OTA_ERR_TRUNCATED (under 4 octets, or Lc beyond
 * the end), OTA_ERR_LENGTH (Lc 00 with data, trailing octets after Le).
 * a->data points into p.
 */
int ota_apdu_parse(const uint8_t *p, size_t len, struct ota_apdu *a,
                   struct ota_err *err) OTA_MUST_CHECK;

/*
 * Write a's bytes into dst. Returns the length written (4..261), or
 * -ENOSPC (OTA_ERR_NOSPACE), -EINVAL (OTA_ERR_ARG: lc > 0 with NULL data).
 */
int ota_apdu_build(const struct ota_apdu *a, uint8_t *dst, size_t cap,
                   struct ota_err *err) OTA_MUST_CHECK;

/* Length ota_apdu_build() would write. */
size_t ota_apdu_len(const struct ota_apdu *a);

/* Status word helpers: the last two octets of a response. */
static inline bool ota_sw_ok(uint16_t sw)
{
    return sw == 0x9000 || (sw >> 8) == 0x61;
}
