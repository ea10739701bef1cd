/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for smpp/kbox_msg.c, the Kannel box-protocol decoder
 * (kannel-box.md §1-2). Any input is treated as one frame (length prefix +
 * packed Msg). When it decodes, encoding the result must give back exactly
 * the input octets: the format has one encoding per message, so any
 * difference is a codec bug. The stream framer and the DLR/MO readers run on
 * the same input and must never read out of bounds.
 * Seeds: tests/fuzz/corpus/kbox/.
 */
#include "smpp/kbox.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[KBOX_FRAME_MAX_DEFAULT + KBOX_FRAME_HDR_LEN];
    struct kbox_msg m;
    struct ota_err err;
    size_t frame_len = 0;
    int rc, n;

    rc = kbox_frame_check(data, size, KBOX_FRAME_MAX_DEFAULT, &frame_len, &err);
    if (rc == 1 && (frame_len > size || frame_len < KBOX_FRAME_HDR_LEN)) {
        abort();
    }

    if (kbox_msg_decode(data, size, &m, &err) < 0) {
        return 0;
    }
    n = kbox_msg_encode(&m, out, sizeof(out), &err);
    if (size <= sizeof(out)) {
        if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0) {
            abort();
        }
    }

    if (m.type == KBOX_MSG_SMS) {
        struct kbox_dlr dlr;
        struct kbox_mo mo;

        if (kbox_sms_read_dlr(&m.sms, &dlr, &err) == 0 && dlr.correlation.p != m.sms.dlr_url.p) {
            abort();
        }
        if (kbox_sms_read_mo(&m.sms, &mo, &err) == 0 && mo.data.len != m.sms.msgdata.len) {
            abort();
        }
    }
    return 0;
}
