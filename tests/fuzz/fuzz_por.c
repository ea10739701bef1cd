/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the SCP80 wire parsers (TS 102 225 5.1/5.2, TS 31.115
 * 4.2/4.4): the gateway's PoR decoder (SMS user data or bare packet) and the
 * card-side command decoder, with fixed AES and 3DES keysets (those of the
 * pySim vectors, so the seeds in corpus/por/ verify).
 *
 * Input: one selector octet, then the packet.
 *   b0 AES keyset (else 3DES 2-key)   b1 PoR ciphering expected
 *   b2 PoR CC expected                b3 input is SMS user data (UDH first)
 *   b4 run the command decoder instead of the PoR decoder
 *   b5 structured mode: the input is SPI(2) | status | data; encode a command
 *      and its PoR (b6: PoR protected), decode both, compare, then flip one
 *      octet chosen by the input and require a failure or a flag
 * Invariants (abort() on violation): results stay inside the work buffer;
 * a successful decode re-encodes, with the same fields and keys, into a
 * packet that decodes to the same fields.
 */
#include "ota/ota.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEL_AES 0x01
#define SEL_POR_CIPH 0x02
#define SEL_POR_CC 0x04
#define SEL_UD 0x08
#define SEL_CMD 0x10
#define SEL_ENC 0x20
#define SEL_PROTECT 0x40

static struct ota_crypto *cx;
static struct ota_key aes_kic, aes_kid, des_kic, des_kid;

/* abort() with the failed invariant named, so a crash file explains itself */
#define check(ok)                                                                                  \
    do {                                                                                           \
        if (!(ok)) {                                                                               \
            fprintf(stderr, "fuzz_por: invariant %s failed at line %d\n", #ok, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void init_once(void)
{
    static const uint8_t a_kic[16] = {0x20, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                      0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
    static const uint8_t a_kid[16] = {0x20, 0x11, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                      0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
    static const uint8_t d_kic[16] = {0x30, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                      0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
    static const uint8_t d_kid[16] = {0x30, 0x11, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                      0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};

    if (cx) {
        return;
    }
    check(ota_crypto_new(&cx, NULL) == 0);
    check(ota_key_set(&aes_kic, OTA_CIPHER_AES, a_kic, 16, NULL) == 0);
    check(ota_key_set(&aes_kid, OTA_CIPHER_AES, a_kid, 16, NULL) == 0);
    check(ota_key_set(&des_kic, OTA_CIPHER_3DES2, d_kic, 16, NULL) == 0);
    check(ota_key_set(&des_kid, OTA_CIPHER_3DES2, d_kid, 16, NULL) == 0);
}

static void fuzz_cmd(const struct ota_scp80_keys *keys, const uint8_t *p, size_t len)
{
    static uint8_t work[OTA_SCP80_MAX_PACKET], pkt[OTA_SCP80_MAX_PACKET],
        work2[OTA_SCP80_MAX_PACKET];
    struct ota_scp80_cmd_rx rx, rx2;
    struct ota_scp80_cmd cmd;
    int n;

    if (ota_scp80_cmd_decode(cx, keys, p, len, work, sizeof(work), &rx, NULL) != 0) {
        return;
    }
    check(rx.data >= work && rx.data + rx.data_len <= work + len);
    check((size_t)rx.hdr.cpl + 2 == len);
    memset(&cmd, 0, sizeof(cmd));
    cmd.spi = rx.hdr.spi;
    cmd.kic = rx.hdr.kic;
    cmd.kid = rx.hdr.kid;
    memcpy(cmd.tar, rx.hdr.tar, 3);
    cmd.cntr = rx.cntr;
    cmd.cc_len = rx.cc_len;
    n = ota_scp80_cmd_encode(cx, &cmd, keys, rx.data, rx.data_len, pkt, sizeof(pkt), NULL, NULL);
    check(n > 0);
    /* same length: padding is minimal on both sides */
    check((size_t)n == len);
    check(ota_scp80_cmd_decode(cx, keys, pkt, (size_t)n, work2, sizeof(work2), &rx2, NULL) == 0);
    /* field by field: the structs have padding */
    check(rx2.hdr.cpl == rx.hdr.cpl && rx2.hdr.chl == rx.hdr.chl);
    check(memcmp(rx2.hdr.spi_raw, rx.hdr.spi_raw, 2) == 0);
    check(rx2.hdr.kic == rx.hdr.kic && rx2.hdr.kid == rx.hdr.kid);
    check(memcmp(rx2.hdr.tar, rx.hdr.tar, 3) == 0);
    check(rx2.cc_len == rx.cc_len);
    check(rx2.cntr == rx.cntr && rx2.pcntr == rx.pcntr && rx2.data_len == rx.data_len);
    check(memcmp(rx2.data, rx.data, rx.data_len) == 0);
}

static void fuzz_por(struct ota_scp80_cmd *cmd, const struct ota_scp80_keys *keys, bool ud,
                     const uint8_t *p, size_t len)
{
    static uint8_t work[OTA_SCP80_POR_WORK(OTA_SCP80_MAX_PACKET + 256)];
    static uint8_t pkt[OTA_SCP80_MAX_PACKET], work2[OTA_SCP80_POR_WORK(OTA_SCP80_MAX_PACKET)];
    struct ota_scp80_por r, r2;
    int n, rc;

    rc = ud ? ota_scp80_por_decode_sms(cx, cmd, keys, p, len, work, sizeof(work), &r, NULL)
            : ota_scp80_por_decode(cx, cmd, keys, p, len, work, sizeof(work), &r, NULL);
    if (rc != 0) {
        return;
    }
    check(r.data >= work && r.data + r.data_len <= work + sizeof(work));
    check(r.data_len <= len);
    /* a PoR that lacks the protection asked for is never reported verified */
    check(!r.protection_missing || r.cc_state == OTA_SCP80_CC_ABSENT);
    check(r.cc_state == OTA_SCP80_CC_ABSENT || cmd->spi.por_integrity != OTA_SCP80_INTEGRITY_NONE);
    check((r.cc_state == OTA_SCP80_CC_VALID) == (r.cc_len != 0));
    check(ota_scp80_por_match(&r, r.tar, r.cntr, NULL) == 0);

    memcpy(cmd->tar, r.tar, 3);
    cmd->cntr = r.cntr;
    cmd->cc_len = r.cc_len;
    n = ota_scp80_por_encode(cx, cmd, keys, !r.protection_missing, r.status, r.data, r.data_len,
                             pkt, sizeof(pkt), NULL);
    check(n > 0);
    check(ota_scp80_por_decode(cx, cmd, keys, pkt, (size_t)n, work2, sizeof(work2), &r2, NULL) ==
          0);
    check(r2.rpl == r.rpl && r2.rhl == r.rhl && r2.cntr == r.cntr && r2.pcntr == r.pcntr);
    check(r2.status == r.status && r2.cc_state == r.cc_state && r2.cc_len == r.cc_len);
    check(r2.deciphered == r.deciphered && r2.protection_missing == r.protection_missing);
    check(memcmp(r2.tar, r.tar, 3) == 0);
    check(r2.data_len == r.data_len && memcmp(r2.data, r.data, r.data_len) == 0);
}

/* Encode → decode round trip of a command and its PoR under an arbitrary SPI. */
static void fuzz_encode(uint8_t sel, const struct ota_scp80_keys *keys, const uint8_t *p,
                        size_t len)
{
    static uint8_t pkt[OTA_SCP80_MAX_PACKET], work[OTA_SCP80_POR_WORK(OTA_SCP80_MAX_PACKET)];
    struct ota_scp80_cmd cmd;
    struct ota_scp80_cmd_rx rx;
    struct ota_scp80_por r;
    const uint8_t *data;
    size_t dl, at;
    int n;

    if (len < 4) {
        return;
    }
    memset(&cmd, 0, sizeof(cmd));
    if (ota_scp80_spi_decode(p, 2, &cmd.spi, NULL) != 0) {
        return;
    }
    cmd.kic = sel & SEL_AES ? 0x22 : 0x35;
    cmd.kid = cmd.spi.integrity == OTA_SCP80_INTEGRITY_RC ? (p[2] & 1 ? 0x15 : 0x11) : cmd.kic;
    cmd.cc_len = p[2] & 2 ? 4 : 8;
    cmd.tar[0] = p[3];
    cmd.cntr = (uint64_t)p[2] << 32 | (uint64_t)len;
    data = p + 4;
    dl = len - 4;
    n = ota_scp80_cmd_encode(cx, &cmd, keys, data, dl, pkt, sizeof(pkt), NULL, NULL);
    if (n > 0) {
        check(ota_scp80_cmd_decode(cx, keys, pkt, (size_t)n, work, sizeof(work), &rx, NULL) == 0);
        check(rx.cntr == cmd.cntr && rx.data_len == dl && memcmp(rx.data, data, dl) == 0);
        check(memcmp(rx.hdr.tar, cmd.tar, 3) == 0 && rx.hdr.kic == cmd.kic);
        at = (size_t)p[3] % (size_t)n;
        pkt[at] ^= 0x01;
        if (at >= 7 && cmd.spi.integrity != OTA_SCP80_INTEGRITY_NONE) {
            /* TAR onwards is covered by the RC/CC */
            check(ota_scp80_cmd_decode(cx, keys, pkt, (size_t)n, work, sizeof(work), &rx, NULL) !=
                  0);
        }
    }
    n = ota_scp80_por_encode(cx, &cmd, keys, (sel & SEL_PROTECT) != 0, p[2], data,
                             dl > 200 ? 200 : dl, pkt, sizeof(pkt), NULL);
    if (n <= 0) {
        return;
    }
    check(ota_scp80_por_decode(cx, &cmd, keys, pkt, (size_t)n, work, sizeof(work), &r, NULL) == 0);
    check(r.status == p[2] && r.cntr == cmd.cntr && memcmp(r.tar, cmd.tar, 3) == 0);
    check(r.data_len == (dl > 200 ? 200 : dl) && memcmp(r.data, data, r.data_len) == 0);
    if (sel & SEL_PROTECT) {
        check(!r.protection_missing);
        check((r.cc_state == OTA_SCP80_CC_VALID) ==
              (cmd.spi.por_integrity != OTA_SCP80_INTEGRITY_NONE));
        check(r.deciphered == cmd.spi.por_ciphered);
        if (r.cc_state == OTA_SCP80_CC_VALID) {
            at = 3 + (size_t)p[3] % (size_t)(n - 3);
            pkt[at] ^= 0x80;
            check(ota_scp80_por_decode(cx, &cmd, keys, pkt, (size_t)n, work, sizeof(work), &r,
                                       NULL) != 0);
        }
    } else {
        check(r.cc_state == OTA_SCP80_CC_ABSENT && !r.deciphered);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_scp80_cmd cmd;
    struct ota_scp80_keys keys;
    uint8_t sel;

    init_once();
    if (size < 1) {
        return 0;
    }
    sel = data[0];
    data++;
    size--;
    keys.kic = sel & SEL_AES ? &aes_kic : &des_kic;
    keys.kid = sel & SEL_AES ? &aes_kid : &des_kid;
    if (sel & SEL_ENC) {
        fuzz_encode(sel, &keys, data, size);
        return 0;
    }
    if (sel & SEL_CMD) {
        fuzz_cmd(&keys, data, size);
        return 0;
    }
    memset(&cmd, 0, sizeof(cmd));
    cmd.kic = cmd.kid = sel & SEL_AES ? 0x22 : 0x35;
    cmd.spi.integrity = OTA_SCP80_INTEGRITY_CC;
    cmd.spi.ciphered = true;
    cmd.spi.por = OTA_SCP80_POR_ALWAYS;
    cmd.spi.por_ciphered = (sel & SEL_POR_CIPH) != 0;
    cmd.spi.por_integrity = sel & SEL_POR_CC ? OTA_SCP80_INTEGRITY_CC : OTA_SCP80_INTEGRITY_NONE;
    fuzz_por(&cmd, &keys, (sel & SEL_UD) != 0, data, size);
    return 0;
}
