/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wallet push SMS (platform spec 5.8.5.3): a single 8-bit SMS whose UDH
 * addresses the wallet client's registered application port (TS 23.040
 * 9.2.3.24.4) and whose body names the SE and a push serial. The spec fixes
 * only the port header and leaves the SEID/serial encoding to the platform;
 * this file defines that encoding (version 1) byte by byte:
 *
 *   off  len  value
 *   0    1    06      UDHL
 *   1    1    05      IEI application port addressing, 16-bit
 *   2    1    04      IEDL
 *   3    2    dddd    destination port (the wallet's registered port), big-endian
 *   5    2    ssss    source port, big-endian
 *   7    1    01      layout version (OTA_PUSH_VERSION)
 *   8    1    n       SEID length, 1..32
 *   9    n    ...     SEID octets
 *   9+n  16   ...     push serial: 128 random bits from the caller (one-shot)
 *
 * Total 25 + n octets (26..57), always one SMS. The decoder also accepts the
 * 8-bit port IE (04 02 dd ss) and extra unknown IEs in the UDH.
 * Part of the ota/ public face: users include "ota/ota.h". See docs/push-sms.md.
 */
#pragma once

#include "ota/ota_common.h"

#define OTA_PUSH_VERSION 0x01
#define OTA_PUSH_SEID_MAX 32
#define OTA_PUSH_SERIAL_LEN 16
/* Encoded size: UDH 7 + version 1 + SEID length 1 + SEID + serial 16 */
#define OTA_PUSH_UD_MAX (7 + 2 + OTA_PUSH_SEID_MAX + OTA_PUSH_SERIAL_LEN)

/* SMS parameters of a push (reference 1.2): ordinary MS-bound SMS, 8-bit data. */
#define OTA_PUSH_TP_PID 0x00       /* TS 23.040 9.2.3.9: default, no interworking */
#define OTA_PUSH_TP_DCS 0xF5       /* TS 23.038 4: 8-bit, message class 1 (ME) */
#define OTA_PUSH_TP_DCS_PLAIN 0x04 /* TS 23.038 4: 8-bit, no class */
#define OTA_PUSH_ESM_UDHI 0x40     /* SMPP esm_class: short_message starts with a UDH */

struct ota_push {
    uint16_t dst_port; /* the wallet's registered port */
    uint16_t src_port;
    bool ports8;      /* decode: the SMS used the 8-bit port IE; encode ignores it */
    uint8_t seid_len; /* 1..OTA_PUSH_SEID_MAX */
    uint8_t seid[OTA_PUSH_SEID_MAX];
    uint8_t serial[OTA_PUSH_SERIAL_LEN];
};

/*
 * The TP-PID and TP-DCS to send a push with (OTA_PUSH_TP_PID, OTA_PUSH_TP_DCS).
 * Either pointer may be NULL. Cannot fail.
 */
void ota_push_sms_params(uint8_t *pid, uint8_t *dcs);

/*
 * Write the complete user data (UDH with 16-bit ports + version-1 body) into
 * dst; send it with TP-UDHI = 1. Returns the octets written, or -EINVAL
 * (OTA_ERR_ARG: NULL, seid_len 0 or above 32) or -ENOSPC (OTA_ERR_NOSPACE).
 * Nothing is allocated; dst is untouched on failure.
 */
int ota_push_encode(const struct ota_push *p, uint8_t *dst, size_t cap,
                    struct ota_err *err) OTA_MUST_CHECK;

/*
 * Parse a push SMS user data (starting with the UDH). Returns 0 or a
 * negative errno with: the UDH errors of ota_udh_parse()/ota_udh_info();
 * OTA_ERR_MISSING (no port IE), OTA_ERR_VALUE (concat IE present: a push
 * is one SMS; SEID length 0 or above 32), OTA_ERR_TRUNCATED (body shorter
 * than its fields), OTA_ERR_VERSION (unknown version octet), OTA_ERR_LENGTH
 * (octets after the serial). *p is untouched on failure.
 */
int ota_push_decode(const uint8_t *ud, size_t len, struct ota_push *p,
                    struct ota_err *err) OTA_MUST_CHECK;
