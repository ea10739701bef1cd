/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the SCP02 parsers that see card or host bytes: the
 * host's INITIALIZE UPDATE response parser, and the card side's EXTERNAL
 * AUTHENTICATE check and command unwrap. The first input octet picks the
 * target. Invariants: no crash or sanitizer report; a rejected INITIALIZE
 * UPDATE response leaves the session FAILED (never OPEN); an unwrap never
 * returns more octets than it was given.
 */
#include "ota/ota.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[16] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ota_crypto *cx;
    struct ota_scp02_keys keys;
    uint8_t out[600];

    if (!cx && ota_crypto_new(&cx, NULL) < 0) {
        abort();
    }
    if (size < 1 || ota_scp02_keys_set(&keys, key, 16, key, 16, key, 16, 0x20, NULL) < 0) {
        return 0;
    }
    uint8_t sel = data[0];
    data++;
    size--;
    if (sel & 1) {
        /* Host: INITIALIZE UPDATE response from the card. */
        struct ota_scp02_session s;
        static const uint8_t hc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        if (ota_scp02_session_init(&s, cx, &keys, 0x20, 0x03, hc, NULL) < 0) {
            abort();
        }
        if (ota_scp02_init_update(&s, out, sizeof(out), NULL) < 0) {
            abort();
        }
        int rc = ota_scp02_on_init_update_resp(&s, data, size, NULL);
        if (rc < 0 && s.state != OTA_SCP02_ST_FAILED) {
            abort();
        }
        if (rc == 0 && s.state != OTA_SCP02_ST_CARD_VERIFIED) {
            abort();
        }
        ota_scp02_session_fini(&s);
    } else {
        /* Card: a real handshake, then the fuzz input as EXT AUTH or a wrapped command. */
        struct ota_scp02_card cd;
        struct ota_scp02_session s;
        static const uint8_t hc[8] = {8, 7, 6, 5, 4, 3, 2, 1};
        static const uint8_t cc[6] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6};
        static const uint8_t kdd[10] = {0};
        uint8_t iu[32], resp[64], ea[32];
        if (ota_scp02_card_init(&cd, cx, &keys, kdd, 0x0001, cc, NULL) < 0 ||
            ota_scp02_session_init(&s, cx, &keys, 0x20, (sel & 2) ? 0x03 : 0x01, hc, NULL) < 0) {
            abort();
        }
        int n = ota_scp02_init_update(&s, iu, sizeof(iu), NULL);
        int m =
            n < 0 ? n : ota_scp02_card_on_init_update(&cd, iu, (size_t)n, resp, sizeof(resp), NULL);
        if (m < 0 || ota_scp02_on_init_update_resp(&s, resp, (size_t)m, NULL) < 0) {
            abort();
        }
        int e = ota_scp02_external_authenticate(&s, ea, sizeof(ea), NULL);
        if (e < 0) {
            abort();
        }
        if (sel & 4) {
            int a = ota_scp02_card_on_ext_auth(&cd, data, size, NULL);
            if (a == 0 && size != (size_t)e) {
                abort(); /* only a 21-octet EXTERNAL AUTHENTICATE can pass */
            }
        } else {
            if (ota_scp02_card_on_ext_auth(&cd, ea, (size_t)e, NULL) < 0) {
                abort();
            }
            int u = ota_scp02_card_unwrap(&cd, data, size, out, sizeof(out), NULL);
            if (u > 0 && (size_t)u > size) {
                abort();
            }
        }
        ota_scp02_card_fini(&cd);
        ota_scp02_session_fini(&s);
    }
    ota_scp02_keys_wipe(&keys);
    return 0;
}
