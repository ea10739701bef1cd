/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the concatenated-SMS reassembler (TS 23.040
 * 9.2.3.24.1/8): the input is a stream of records
 *   ctl(1) | len(1) | ud(len)
 * where ctl b0..b1 pick one of four originators, b2 the TP-UDHI, b3 asks
 * for an expiry sweep, b4..b7 advance the clock. Small limits make the
 * limit paths reachable. Every completed message must be freed, the held
 * counters must stay within the limits, and ota_reasm_free() at the end
 * releases the rest (LeakSanitizer checks).
 */
#include "ota/ota.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_expired(const struct ota_reasm_expired *e, void *arg)
{
    size_t *n = arg;

    if (e->n_missing == 0 || e->n_missing >= e->total) {
        abort();
    }
    for (size_t i = 0; i < e->n_missing; i++) {
        if (e->missing[i] == 0 || e->missing[i] > e->total ||
            (i && e->missing[i] <= e->missing[i - 1])) {
            abort();
        }
    }
    (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const origs[] = {"4912345", "4912346", "", "X"};
    const struct ota_reasm_limits lim = {.max_sets = 3, .max_parts = 8, .timeout_ms = 1000};
    struct ota_reasm *r = NULL;
    struct ota_err err;
    uint64_t now = 0;
    size_t pos = 0, n_expired = 0;

    if (ota_reasm_new(&r, &lim, &err)) {
        abort();
    }
    while (size - pos >= 2) {
        uint8_t ctl = data[pos], len = data[pos + 1];
        enum ota_reasm_status st;
        struct ota_reasm_msg m = {0};

        pos += 2;
        if (len > size - pos) {
            len = (uint8_t)(size - pos);
        }
        now += (uint64_t)(ctl >> 4) * 100;
        if (ctl & 0x08) {
            size_t before = ota_reasm_n_sets(r);
            size_t k = ota_reasm_expire(r, now, on_expired, &n_expired);
            if (k > before || ota_reasm_n_sets(r) != before - k) {
                abort();
            }
        }
        int rc = ota_reasm_add(r, origs[ctl & 3], data + pos, len, ctl & 0x04, now, &st, &m, &err);
        pos += len;
        if (rc == 0 && (st == OTA_REASM_COMPLETE || st == OTA_REASM_SINGLE)) {
            if (!m.ud || m.udh.payload + m.udh.payload_len != m.ud + m.ud_len) {
                abort();
            }
            ota_reasm_msg_fini(&m);
        } else if (rc == 0 && m.ud) {
            abort();
        } else if (rc != 0 && err.code == OTA_OK) {
            abort();
        }
        if (ota_reasm_n_sets(r) > lim.max_sets || ota_reasm_n_parts(r) > lim.max_parts) {
            abort();
        }
    }
    ota_reasm_free(r);
    return 0;
}
