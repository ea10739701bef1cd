/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wallet push SMS codec (platform spec 5.8.5.3): the application-port UDH of
 * TS 23.040 9.2.3.24.3/9.2.3.24.4 followed by otagw's version-1 body
 * (version, SEID length, SEID, 128-bit push serial), laid out in ota_push.h.
 */
#include "ota/ota_push.h"
#include "ota/ota_udh.h"

#include <string.h>

/* version(1) + SEID length(1) before the SEID */
#define BODY_HDR_LEN 2

void ota_push_sms_params(uint8_t *pid, uint8_t *dcs)
{
    if (pid) {
        *pid = OTA_PUSH_TP_PID;
    }
    if (dcs) {
        *dcs = OTA_PUSH_TP_DCS;
    }
}

int ota_push_encode(const struct ota_push *p, uint8_t *dst, size_t cap, struct ota_err *err)
{
    uint8_t ports[4], body[BODY_HDR_LEN + OTA_PUSH_SEID_MAX + OTA_PUSH_SERIAL_LEN];
    struct ota_udh_ie ie = {.iei = OTA_IEI_PORT16, .len = sizeof(ports), .val = ports};
    size_t blen;

    if (!p || !dst) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "push: NULL argument");
    }
    if (p->seid_len == 0 || p->seid_len > OTA_PUSH_SEID_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "push: SEID length %u, must be 1..%u",
                        p->seid_len, OTA_PUSH_SEID_MAX);
    }
    ota_put_u16(&ports[0], p->dst_port);
    ota_put_u16(&ports[2], p->src_port);
    body[0] = OTA_PUSH_VERSION;
    body[1] = p->seid_len;
    memcpy(&body[BODY_HDR_LEN], p->seid, p->seid_len);
    memcpy(&body[BODY_HDR_LEN + p->seid_len], p->serial, OTA_PUSH_SERIAL_LEN);
    blen = BODY_HDR_LEN + (size_t)p->seid_len + OTA_PUSH_SERIAL_LEN;
    /* 57 octets at most: never oversize, so only NOSPACE can come back */
    return ota_udh_build(&ie, 1, body, blen, dst, cap, err);
}

int ota_push_decode(const uint8_t *ud, size_t len, struct ota_push *p, struct ota_err *err)
{
    struct ota_udh u;
    struct ota_udh_info in;
    struct ota_push out;
    const uint8_t *b;
    size_t blen;
    int rc;

    if (!ud || !p) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "push: NULL argument");
    }
    rc = ota_udh_parse_info(ud, len, &u, &in, err);
    if (rc) {
        return rc;
    }
    /* 5.8.5.3: the terminal routes the SMS to the wallet by its port */
    if (!in.has_ports) {
        return ota_fail(err, -EBADMSG, OTA_ERR_MISSING, "push: no port IE in UDH (%u IEs)",
                        u.n_ies);
    }
    if (in.has_concat) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                        "push: concat IE (ref %u, %u of %u) in a one-SMS push", in.ref, in.seq,
                        in.total);
    }
    b = u.payload;
    blen = u.payload_len;
    if (blen < 1) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "push: no version octet");
    }
    if (b[0] != OTA_PUSH_VERSION) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VERSION, "push: version %u, know %u", b[0],
                        OTA_PUSH_VERSION);
    }
    if (blen < BODY_HDR_LEN) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "push: no SEID length octet");
    }
    if (b[1] == 0 || b[1] > OTA_PUSH_SEID_MAX) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE, "push: SEID length %u, must be 1..%u", b[1],
                        OTA_PUSH_SEID_MAX);
    }
    size_t want = BODY_HDR_LEN + (size_t)b[1] + OTA_PUSH_SERIAL_LEN;
    if (blen < want) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                        "push: body %zu octets, SEID length %u needs %zu", blen, b[1], want);
    }
    if (blen > want) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "push: %zu octets after the serial (body %zu, expected %zu)", blen - want,
                        blen, want);
    }

    memset(&out, 0, sizeof(out));
    out.dst_port = in.dst_port;
    out.src_port = in.src_port;
    out.ports8 = !in.ports16;
    out.seid_len = b[1];
    memcpy(out.seid, &b[BODY_HDR_LEN], b[1]);
    memcpy(out.serial, &b[BODY_HDR_LEN + b[1]], OTA_PUSH_SERIAL_LEN);
    *p = out;
    return 0;
}
