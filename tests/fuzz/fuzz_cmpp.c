/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for smpp/cmpp_pdu.c: arbitrary octets go through the
 * framer and then the decoder in both layouts (2.0 and 3.0). Whatever
 * decodes must encode again to exactly Total_Length octets and decode to the
 * same fields; anything else aborts. Seeds: tests/fuzz/corpus/cmpp/.
 */
#include "smpp/cmpp.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *data, size_t size, enum cmpp_version ver)
{
    struct cmpp_pdu a, b;
    uint8_t out[CMPP_PDU_MAX_LEN];
    struct ota_err err;
    int n;

    if (cmpp_decode(data, size, ver, &a, &err) != 0) {
        return;
    }
    n = cmpp_encode(&a, out, sizeof(out), &err);
    if (n < 0 || (size_t)n != cmpp_encoded_len(&a)) {
        abort();
    }
    /* Octet Strings may carry padding junk after 0x00; fields must still agree. */
    if (cmpp_decode(out, (size_t)n, ver, &b, &err) != 0 || !cmpp_pdu_equal(&a, &b)) {
        abort();
    }
    if (n > 0 && (size_t)n == size && a.cmd_id != CMPP_DELIVER && a.cmd_id != CMPP_SUBMIT &&
        a.cmd_id != CMPP_CONNECT && memcmp(out, data, size) != 0) {
        /* PDUs without text fields re-encode byte for byte */
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmpp_hdr h;
    struct ota_err err;
    int n = cmpp_frame(data, size, 0, &h, &err);

    if (n > 0 && (size_t)n > size) {
        abort();
    }
    one(data, size, CMPP_V20);
    one(data, size, CMPP_V30);
    return 0;
}
