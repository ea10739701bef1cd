/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the UDH codec (TS 23.040 9.2.3.24) and the push SMS
 * decoder: arbitrary user data must parse or fail cleanly; whatever parses
 * must rebuild to the same bytes (decode(encode(x)) == x), the semantic
 * helper must not crash, a decoded push must re-encode to its input, and
 * the TPDU parser (TS 23.040 9.2.2) must stay inside the input.
 */
#include "ota/ota.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_udh u, u2;
    struct ota_udh_info in;
    struct ota_push p;
    struct ota_err err;
    uint8_t out[OTA_SMS_UD_MAX];
    int n;

    if (ota_udh_parse(data, size, &u, &err) == 0) {
        n = ota_udh_build(u.ies, u.n_ies, u.payload, u.payload_len, out, sizeof(out), &err);
        if (n < 0 || (size_t)n != size || memcmp(out, data, size)) {
            abort();
        }
        if (ota_udh_parse(out, (size_t)n, &u2, &err) || u2.n_ies != u.n_ies || u2.udhl != u.udhl ||
            u2.payload_len != u.payload_len) {
            abort();
        }
        if (ota_udh_info(&u, &in, &err) == 0 && in.has_concat &&
            (in.seq == 0 || in.seq > in.total)) {
            abort();
        }
    } else if (err.code == OTA_OK) {
        abort();
    }

    /* the same bytes as a TPDU, whole and in prefix mode */
    for (int prefix = 0; prefix < 2; prefix++) {
        struct ota_tpdu t;

        if (ota_tpdu_parse(data, size, prefix, &t, &err) == 0) {
            if (t.ud + t.ud_len != data + size || t.ud_len > OTA_SMS_UD_MAX) {
                abort();
            }
            if (t.udhi && ota_udh_parse(t.ud, t.ud_len, &u, &err) == 0 &&
                u.payload + u.payload_len != data + size) {
                abort();
            }
        }
    }

    if (ota_push_decode(data, size, &p, &err) == 0) {
        n = ota_push_encode(&p, out, sizeof(out), &err);
        if (n < 0 || p.seid_len == 0 || p.seid_len > OTA_PUSH_SEID_MAX) {
            abort();
        }
        /* only the canonical form (16-bit ports, no other IE) re-encodes byte-exact */
        if (!p.ports8 && size >= 2 && data[0] == 6 &&
            ((size_t)n != size || memcmp(out, data, size))) {
            abort();
        }
    }
    return 0;
}
