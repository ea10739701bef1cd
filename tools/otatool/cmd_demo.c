/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `otatool demo`: the OTA core end to end, with every step printed. A wallet
 * push SMS (spec 5.8.5.3) is built and decoded; then an application lock
 * goes to a card by SCP80: GP APDUs in a compact remote-APDU script, the
 * command packet and its SMS, the card's side (verify, counter rule, run,
 * answer with a PoR) and the gateway's check of that PoR; a replay of the
 * same packet is refused by the counter rule; and a LOAD too long for one
 * SMS travels as concatenated SMS that arrive out of order and are
 * reassembled. Inputs are fixed so that the output is the same every run.
 */
#include "otatool.h"

#include <string.h>

static void hexline(const char *label, const uint8_t *p, size_t len)
{
    printf("  %-22s ", label);
    print_hex(stdout, p, len);
    printf("\n");
}

static int fail_at(const char *what, const struct ota_err *e)
{
    fprintf(stderr, "otatool: demo: %s: %s (%s)\n", what, e->msg, ota_errc_name(e->code));
    return TOOL_FAIL;
}

static int demo_push(void)
{
    struct ota_push p = {.dst_port = 2948, .src_port = 2948, .seid_len = 10};
    struct ota_push back;
    struct ota_err e;
    uint8_t ud[OTA_SMS_UD_MAX];
    static const uint8_t seid[10] = {0x86, 0x98, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x23, 0x45};
    static const uint8_t serial[16] = {0x5f, 0x3a, 0x91, 0xc2, 0x07, 0xee, 0x14, 0x68,
                                       0xb0, 0x2d, 0x7c, 0x43, 0x99, 0x01, 0xa5, 0x6e};

    memcpy(p.seid, seid, sizeof(seid));
    memcpy(p.serial, serial, sizeof(serial));
    printf("== 1. Wallet push SMS (spec 5.8.5.3, layout version %u: docs/push-sms.md) ==\n",
           OTA_PUSH_VERSION);
    int n = ota_push_encode(&p, ud, sizeof(ud), &e);
    if (n < 0) {
        return fail_at("push encode", &e);
    }
    hexline("SEID", p.seid, p.seid_len);
    hexline("push serial", p.serial, sizeof(p.serial));
    printf("  (otagw draws each serial from 128 random bits; it is good for one pull)\n");
    hexline("SMS user data", ud, (size_t)n);
    uint8_t pid, dcs;
    ota_push_sms_params(&pid, &dcs);
    printf("  sent with TP-UDHI 1, TP-PID %02x, TP-DCS %02x: %d of 140 octets\n", pid, dcs, n);
    if (ota_push_decode(ud, (size_t)n, &back, &e) < 0) {
        return fail_at("push decode", &e);
    }
    printf("  decoded: UDH 06 05 04 -> port %u from %u, version %u, SEID ", back.dst_port,
           back.src_port, ud[7]);
    print_hex(stdout, back.seid, back.seid_len);
    printf(", serial ");
    print_hex(stdout, back.serial, sizeof(back.serial));
    printf("\n\n");
    return TOOL_OK;
}

struct card {
    struct ota_key kic, kid;
    uint64_t cntr; /* the card's stored counter for this key set */
};

/*
 * The card's side of one command packet (what the simulator of issue #4 will
 * do for real): verify, apply the counter rule, run the script, build the PoR.
 */
static int card_answer(struct ota_crypto *cx, struct card *cd, const uint8_t *pkt, size_t len,
                       uint8_t *por_ud, size_t cap, bool verbose)
{
    struct ota_scp80_keys keys = {&cd->kic, &cd->kid};
    struct ota_scp80_cmd_rx rx;
    struct ota_err e;
    uint8_t work[OTA_SCP80_MAX_PACKET], rsp[64];
    enum ota_scp80_por_status st;

    if (ota_scp80_cmd_decode(cx, &keys, pkt, len, work, sizeof(work), &rx, &e) < 0) {
        return fail_at("card: command decode", &e);
    }
    if (ota_scp80_cntr_check(rx.hdr.spi.cntr_mode, cd->cntr, rx.cntr, &st, &e) < 0) {
        return fail_at("card: counter", &e);
    }
    printf("  card: CC ok, deciphered; counter %llu against stored %llu (%s): %s\n",
           (unsigned long long)rx.cntr, (unsigned long long)cd->cntr,
           ota_scp80_cntr_mode_name(rx.hdr.spi.cntr_mode), ota_scp80_por_status_name(st));
    struct ota_scp80_cmd cmd = {
        .spi = rx.hdr.spi,
        .kic = rx.hdr.kic,
        .kid = rx.hdr.kid,
        .cntr = rx.cntr,
        .cc_len = rx.cc_len,
    };
    memcpy(cmd.tar, rx.hdr.tar, 3);
    int rl = 0;
    if (st == OTA_SCP80_ST_OK) {
        struct ota_apdu apdus[16];
        size_t na;
        if (ota_rapdu_compact_split(rx.data, rx.data_len, apdus, 16, &na, &e) < 0) {
            return fail_at("card: script split", &e);
        }
        for (size_t i = 0; verbose && i < na; i++) {
            uint8_t a[OTA_APDU_MAX_LEN];
            int al = ota_apdu_build(&apdus[i], a, sizeof(a), &e);
            if (al < 0) {
                return fail_at("card: apdu", &e);
            }
            printf("  card runs APDU %zu:      ", i + 1);
            print_hex(stdout, a, (size_t)al);
            printf("\n");
        }
        /* The demo card answers 9000 to each; the last returns its GET STATUS entry. */
        static const uint8_t entry[] = {0xe3, 0x0e, 0x4f, 0x08, 0xa0, 0x00, 0x00, 0x01, 0x51,
                                        0x53, 0x41, 0x01, 0x9f, 0x70, 0x01, 0x83, 0xc5, 0x00};
        struct ota_rapdu_compact_rsp r = {
            .n_executed = (uint8_t)na, .sw = 0x9000, .data = entry, .data_len = sizeof(entry)};
        rl = ota_rapdu_compact_rsp_build(&r, rsp, sizeof(rsp), &e);
        if (rl < 0) {
            return fail_at("card: response", &e);
        }
        cd->cntr = rx.cntr; /* stored only once the whole packet was accepted */
    }
    /* Counter errors go back unprotected, as cards do for security failures. */
    int n = ota_scp80_por_encode_sms(cx, &cmd, &keys, st == OTA_SCP80_ST_OK, st, rsp, (size_t)rl,
                                     por_ud, cap, &e);
    if (n < 0) {
        return fail_at("card: PoR encode", &e);
    }
    return n;
}

static int gateway_check(struct ota_crypto *cx, const struct ota_scp80_cmd *cmd,
                         const struct ota_scp80_keys *keys, const uint8_t *ud, size_t len,
                         size_t n_sent)
{
    struct ota_scp80_por por;
    struct ota_err e;
    uint8_t work[OTA_SCP80_POR_WORK(OTA_SMS_UD_MAX)];

    if (ota_scp80_por_decode_sms(cx, cmd, keys, ud, len, work, sizeof(work), &por, &e) < 0) {
        return fail_at("gateway: PoR decode", &e);
    }
    if (ota_scp80_por_match(&por, cmd->tar, cmd->cntr, &e) < 0) {
        return fail_at("gateway: PoR match", &e);
    }
    printf("  gateway: PoR for TAR %02x%02x%02x counter %llu, status %02x (%s), checksum %s%s\n",
           por.tar[0], por.tar[1], por.tar[2], (unsigned long long)por.cntr, por.status,
           ota_scp80_por_status_name(por.status), ota_scp80_cc_state_name(por.cc_state),
           por.protection_missing ? " (unprotected, as cards send errors)" : "");
    if (por.status == OTA_SCP80_ST_OK) {
        struct ota_rapdu_compact_rsp r;
        if (ota_rapdu_compact_rsp_parse(por.data, por.data_len, &r, &e) < 0) {
            return fail_at("gateway: response", &e);
        }
        printf("  gateway: %u of %zu commands ran, last SW %04x, data ", r.n_executed, n_sent,
               r.sw);
        print_hex(stdout, r.data, r.data_len);
        printf(" -> %s\n",
               ota_rapdu_compact_rsp_ok(&r, n_sent) ? "script succeeded" : "script FAILED");
    }
    return TOOL_OK;
}

static int demo_scp80(struct ota_crypto *cx)
{
    static const uint8_t aes_kic[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                        0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
    static const uint8_t aes_kid[16] = {0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
                                        0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00};
    static const uint8_t app[8] = {0xa0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x41, 0x01};
    static const uint8_t spi[2] = {0x16, 0x39};
    struct card cd = {.cntr = 4};
    struct ota_key kic, kid;
    struct ota_scp80_cmd cmd = {.kic = 0x12, .kid = 0x12, .tar = {0, 0, 0}, .cntr = 5};
    struct ota_scp80_cmd_info info = {0};
    struct ota_err e;
    uint8_t a[3][OTA_APDU_MAX_LEN], script[300], pkt[OTA_SCP80_MAX_PACKET];
    uint8_t ud[OTA_SMS_UD_MAX], por_ud[OTA_SMS_UD_MAX];
    struct ota_apdu apdus[3];
    int n, rc = TOOL_FAIL;

    if (ota_key_set(&kic, OTA_CIPHER_AES, aes_kic, 16, &e) < 0 ||
        ota_key_set(&kid, OTA_CIPHER_AES, aes_kid, 16, &e) < 0 ||
        ota_scp80_spi_decode(spi, 2, &cmd.spi, &e) < 0) {
        return fail_at("setup", &e);
    }
    cd.kic = kic;
    cd.kid = kid;
    struct ota_scp80_keys keys = {&kic, &kid};

    printf("== 2. SCP80: lock an application over the air (TS 102 225 / TS 31.115) ==\n");
    printf("  SPI 1639: CC, ciphered, counter must be higher, PoR always with CC, ciphered, by "
           "SMS-SUBMIT\n");
    printf("  KIc 12 / KID 12: key version 1, AES-128 CBC / AES-CMAC; TAR 000000 (ISD, RAM)\n");
    /* GP APDUs for the ISD: lock the app, then read its state back. */
    int l0 = ota_gp_set_status(OTA_GP_STATUS_SCOPE_APP, OTA_GP_SET_STATUS_LOCK, app, sizeof(app),
                               a[0], sizeof(a[0]), &e);
    if (l0 < 0) {
        return fail_at("SET STATUS", &e);
    }
    int l1 = ota_gp_get_status(0x40, 0x02, app, sizeof(app), NULL, 0, a[1], sizeof(a[1]), &e);
    if (l1 < 0) {
        return fail_at("GET STATUS", &e);
    }
    int l2 = ota_gp_get_data(0x0066, a[2], sizeof(a[2]), &e);
    if (l2 < 0) {
        return fail_at("GET DATA", &e);
    }
    /* Order on the card: card data, lock, then the app's state as the last answer. */
    int lens[3] = {l2, l0, l1};
    const uint8_t *bufs[3] = {a[2], a[0], a[1]};
    const char *names[3] = {"GET DATA 0066", "SET STATUS lock", "GET STATUS app"};
    for (int i = 0; i < 3; i++) {
        hexline(names[i], bufs[i], (size_t)lens[i]);
        if (ota_apdu_parse(bufs[i], (size_t)lens[i], &apdus[i], &e) < 0) {
            return fail_at("apdu", &e);
        }
    }
    int sl = ota_rapdu_compact_build(apdus, 3, script, sizeof(script), &e);
    if (sl < 0) {
        return fail_at("compact script", &e);
    }
    hexline("compact script", script, (size_t)sl);
    info.plain = NULL;
    n = ota_scp80_cmd_encode(cx, &cmd, &keys, script, (size_t)sl, pkt, sizeof(pkt), &info, &e);
    if (n < 0) {
        return fail_at("command encode", &e);
    }
    printf("  command packet: CPL %04x CHL %02x counter %llu PCNTR %u CC ", info.cpl, info.chl,
           (unsigned long long)cmd.cntr, info.pcntr);
    print_hex(stdout, info.cc, info.cc_len);
    printf("\n");
    int ul =
        ota_scp80_cmd_encode_sms(cx, &cmd, &keys, script, (size_t)sl, ud, sizeof(ud), NULL, &e);
    if (ul < 0) {
        return fail_at("command SMS", &e);
    }
    hexline("SMS user data", ud, (size_t)ul);
    printf("  sent with TP-UDHI 1, TP-PID 7F (SIM data download), TP-DCS F6 (8-bit, class 2)\n");

    int pl = card_answer(cx, &cd, ud + OTA_SCP80_UDH_LEN, (size_t)ul - OTA_SCP80_UDH_LEN, por_ud,
                         sizeof(por_ud), true);
    if (pl <= 0) {
        goto out;
    }
    hexline("PoR user data", por_ud, (size_t)pl);
    if (gateway_check(cx, &cmd, &keys, por_ud, (size_t)pl, 3) != TOOL_OK) {
        goto out;
    }

    printf("\n== 3. The same packet replayed: the counter rule refuses it ==\n");
    pl = card_answer(cx, &cd, ud + OTA_SCP80_UDH_LEN, (size_t)ul - OTA_SCP80_UDH_LEN, por_ud,
                     sizeof(por_ud), false);
    if (pl <= 0) {
        goto out;
    }
    hexline("PoR user data", por_ud, (size_t)pl);
    if (gateway_check(cx, &cmd, &keys, por_ud, (size_t)pl, 3) != TOOL_OK) {
        goto out;
    }
    rc = TOOL_OK;
out:
    ota_key_wipe(&kic);
    ota_key_wipe(&kid);
    ota_key_wipe(&cd.kic);
    ota_key_wipe(&cd.kid);
    return rc;
}

static int demo_concat(struct ota_crypto *cx)
{
    static const uint8_t k3[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                   0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
    static const uint8_t spi[2] = {0x16, 0x39};
    static const uint8_t none = 0;
    struct ota_key key;
    struct ota_scp80_cmd cmd = {.kic = 0x15, .kid = 0x15, .cntr = 6};
    struct ota_err e;
    uint8_t file[300], load[2][OTA_APDU_MAX_LEN], script[600], pkt[OTA_SCP80_MAX_PACKET];
    struct ota_apdu apdus[2];
    static struct ota_sms_part parts[OTA_CONCAT_MAX_PARTS];
    struct ota_reasm *r = NULL;
    int rc = TOOL_FAIL;

    printf("\n== 4. A LOAD too long for one SMS: concatenated, reassembled out of order ==\n");
    if (ota_key_set(&key, OTA_CIPHER_3DES2, k3, 16, &e) < 0 ||
        ota_scp80_spi_decode(spi, 2, &cmd.spi, &e) < 0) {
        return fail_at("setup", &e);
    }
    struct ota_scp80_keys keys = {&key, &key};
    for (size_t i = 0; i < sizeof(file); i++) {
        file[i] = (uint8_t)(i * 13 + 7);
    }
    /* 300 octets of load file in LOAD blocks of 160: C4 82 01 2C + file = 2 blocks. */
    struct ota_gp_load ld = {.file = file, .file_len = sizeof(file), .block_len = 160};
    int l0 = ota_gp_load_block(&ld, 0, load[0], sizeof(load[0]), &e);
    if (l0 < 0) {
        return fail_at("LOAD", &e);
    }
    int l1 = ota_gp_load_block(&ld, 1, load[1], sizeof(load[1]), &e);
    if (l1 < 0) {
        return fail_at("LOAD", &e);
    }
    if (ota_apdu_parse(load[0], (size_t)l0, &apdus[0], &e) < 0 ||
        ota_apdu_parse(load[1], (size_t)l1, &apdus[1], &e) < 0) {
        return fail_at("apdu", &e);
    }
    int sl = ota_rapdu_compact_build(apdus, 2, script, sizeof(script), &e);
    if (sl < 0) {
        return fail_at("script", &e);
    }
    int n = ota_scp80_cmd_encode(cx, &cmd, &keys, script, (size_t)sl, pkt, sizeof(pkt), NULL, &e);
    if (n < 0) {
        return fail_at("encode", &e);
    }
    printf("  two LOAD blocks, 3DES 2-key (KIc/KID 15): a %d-octet command packet\n", n);
    struct ota_udh_ie cpi = {.iei = OTA_IEI_CPI, .len = 0, .val = &none};
    struct ota_concat_opts opts = {.first = &cpi, .n_first = 1, .ref = 0x42};
    int np = ota_concat_segment(pkt, (size_t)n, &opts, parts, OTA_CONCAT_MAX_PARTS, &e);
    if (np < 0) {
        return fail_at("segment", &e);
    }
    for (int i = 0; i < np; i++) {
        printf("  SMS %d/%d, %3u octets, UDH ", i + 1, np, parts[i].len);
        print_hex(stdout, parts[i].ud, (size_t)parts[i].ud[0] + 1);
        printf("\n");
    }
    struct ota_reasm_limits lim = {.max_sets = 4, .max_parts = 16, .timeout_ms = 60000};
    if (ota_reasm_new(&r, &lim, &e) < 0) {
        return fail_at("reassembler", &e);
    }
    struct ota_reasm_msg msg = {0};
    enum ota_reasm_status st = OTA_REASM_PENDING;
    printf("  the card receives them last first:");
    for (int i = np - 1; i >= 0; i--) {
        if (ota_reasm_add(r, "gateway", parts[i].ud, parts[i].len, true, 1000, &st, &msg, &e) < 0) {
            fail_at("reassemble", &e);
            goto out;
        }
        printf(" %d:%s", i + 1, ota_reasm_status_name(st));
    }
    printf("\n");
    if (st != OTA_REASM_COMPLETE || msg.udh.payload_len != (size_t)n ||
        memcmp(msg.udh.payload, pkt, (size_t)n)) {
        fprintf(stderr, "otatool: demo: reassembly did not give the packet back\n");
        goto out;
    }
    struct ota_udh_info ui;
    if (ota_udh_info(&msg.udh, &ui, &e) < 0) {
        fail_at("udh", &e);
        goto out;
    }
    printf("  reassembled: %zu octets, UDH keeps the CPI: %s; the card decodes it:\n",
           msg.udh.payload_len, ui.has_cpi ? "yes" : "no");
    uint8_t work[OTA_SCP80_MAX_PACKET];
    struct ota_scp80_cmd_rx rx;
    if (ota_scp80_cmd_decode(cx, &keys, msg.udh.payload, msg.udh.payload_len, work, sizeof(work),
                             &rx, &e) < 0) {
        fail_at("card decode", &e);
        goto out;
    }
    printf("  card: CC ok, %zu octets of script = %s\n", rx.data_len,
           rx.data_len == (size_t)sl && !memcmp(rx.data, script, (size_t)sl) ? "what was sent"
                                                                             : "DIFFERENT");
    rc = TOOL_OK;
out:
    ota_reasm_msg_fini(&msg);
    ota_reasm_free(r);
    ota_key_wipe(&key);
    return rc;
}

int cmd_demo(int argc, char **argv)
{
    struct ota_crypto *cx;
    struct ota_err e;

    if (argc > 1) {
        bool help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
        fprintf(help ? stdout : stderr,
                "usage: otatool demo\n"
                "Builds and decodes a wallet push SMS, an SCP80 application lock with its\n"
                "PoR, a replayed packet refused by the counter rule, and a concatenated\n"
                "LOAD reassembled out of order. Fixed inputs: the output is reproducible.\n");
        return help ? TOOL_OK : TOOL_USAGE;
    }
    if (ota_crypto_new(&cx, &e) < 0) {
        return die("crypto: %s", e.msg);
    }
    int rc = demo_push();
    if (rc == TOOL_OK) {
        rc = demo_scp80(cx);
    }
    if (rc == TOOL_OK) {
        rc = demo_concat(cx);
    }
    ota_crypto_free(cx);
    if (rc == TOOL_OK) {
        printf("\ndemo complete: push SMS and SCP80 exchange encoded, verified and decoded\n");
    }
    return rc;
}
