/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `otatool scp80-encode` builds an SCP80 command packet (TS 102 225) and the
 * SMS user data that carry it (concatenated when it needs more than one);
 * `otatool por-decode` decodes and verifies a response packet (PoR) against
 * the command's SPI, KIc, KID and keys, optionally matching TAR and counter.
 * Keys may be given as @FILE so they stay out of the process list.
 */
#include "otatool.h"

#include <getopt.h>
#include <string.h>

/* The cipher a KIc/KID algorithm needs; NONE for RC (no key). */
static enum ota_cipher alg_cipher(enum ota_scp80_alg a)
{
    switch (a) {
    case OTA_SCP80_ALG_DES_CBC:
    case OTA_SCP80_ALG_DES_ECB:
    case OTA_SCP80_ALG_DES_CBC_MAC:
        return OTA_CIPHER_DES;
    case OTA_SCP80_ALG_3DES2_CBC:
    case OTA_SCP80_ALG_3DES2_CBC_MAC:
        return OTA_CIPHER_3DES2;
    case OTA_SCP80_ALG_3DES3_CBC:
    case OTA_SCP80_ALG_3DES3_CBC_MAC:
        return OTA_CIPHER_3DES3;
    case OTA_SCP80_ALG_AES_CBC:
    case OTA_SCP80_ALG_AES_CMAC:
        return OTA_CIPHER_AES;
    case OTA_SCP80_ALG_IMPLICIT:
    case OTA_SCP80_ALG_CRC16:
    case OTA_SCP80_ALG_CRC32:
        break;
    }
    return OTA_CIPHER_NONE;
}

/* Turn a key argument into *k for the algorithm coded in the KIc/KID octet. */
static int load_key(const char *what, const char *arg, enum ota_scp80_alg a, struct ota_key *k)
{
    uint8_t b[64];
    struct ota_err e;
    enum ota_cipher c = alg_cipher(a);

    if (c == OTA_CIPHER_NONE) {
        return die("%s: algorithm %s (implicit or RC) takes no key here", what,
                   ota_scp80_alg_name(a));
    }
    int n = parse_key_arg(what, arg, b, sizeof(b));
    if (n < 0) {
        return TOOL_USAGE;
    }
    int rc = ota_key_set(k, c, b, (size_t)n, &e);
    memset(b, 0, sizeof(b));
    if (rc < 0) {
        return die("%s: %s", what, e.msg);
    }
    return 0;
}

struct sec_args {
    const char *spi, *kic, *kid, *tar, *cntr, *kic_key, *kid_key, *cc_len;
};

/* Parse SPI/KIc/KID/TAR/counter and the keys the SPI needs into cmd/keys. */
static int load_sec(const struct sec_args *a, bool por_side, struct ota_scp80_cmd *cmd,
                    struct ota_key *kic, struct ota_key *kid, struct ota_scp80_keys *keys)
{
    uint8_t spi[2];
    struct ota_err e;
    enum ota_scp80_alg alg;
    uint64_t v;

    if (!a->spi || !a->kic || !a->kid) {
        return die("--spi, --kic and --kid are required");
    }
    if (parse_hex_exact("--spi", a->spi, spi, 2) < 0 ||
        parse_hex_exact("--kic", a->kic, &cmd->kic, 1) < 0 ||
        parse_hex_exact("--kid", a->kid, &cmd->kid, 1) < 0) {
        return TOOL_USAGE;
    }
    if (ota_scp80_spi_decode(spi, 2, &cmd->spi, &e) < 0) {
        return die("--spi: %s", e.msg);
    }
    if (a->tar && parse_hex_exact("--tar", a->tar, cmd->tar, 3) < 0) {
        return TOOL_USAGE;
    }
    if (a->cntr) {
        if (parse_uint("--cntr", a->cntr, OTA_SCP80_CNTR_MAX, &v) < 0) {
            return TOOL_USAGE;
        }
        cmd->cntr = v;
    }
    if (a->cc_len) {
        if (parse_uint("--cc-len", a->cc_len, 8, &v) < 0) {
            return TOOL_USAGE;
        }
        if (v != 4 && v != 8) {
            return die("--cc-len: 4 or 8");
        }
        cmd->cc_len = (uint8_t)v;
    }
    bool ciph = por_side ? cmd->spi.por_ciphered : cmd->spi.ciphered;
    enum ota_scp80_integrity integ = por_side ? cmd->spi.por_integrity : cmd->spi.integrity;
    if (a->kic_key || ciph) {
        if (!a->kic_key) {
            return die("the SPI asks for ciphering: --kic-key is required");
        }
        if (ota_scp80_kic_decode(cmd->kic, NULL, &alg, &e) < 0) {
            return die("--kic: %s", e.msg);
        }
        if (load_key("--kic-key", a->kic_key, alg, kic)) {
            return TOOL_USAGE;
        }
        keys->kic = kic;
    }
    if (a->kid_key || integ == OTA_SCP80_INTEGRITY_CC) {
        if (!a->kid_key) {
            return die("the SPI asks for a cryptographic checksum: --kid-key is required");
        }
        if (ota_scp80_kid_decode(cmd->kid, OTA_SCP80_INTEGRITY_CC, NULL, &alg, &e) < 0) {
            return die("--kid: %s", e.msg);
        }
        if (load_key("--kid-key", a->kid_key, alg, kid)) {
            return TOOL_USAGE;
        }
        keys->kid = kid;
    }
    return 0;
}

static const struct option sec_opts[] = {
    {"spi", required_argument, NULL, 'S'},
    {"kic", required_argument, NULL, 'I'},
    {"kid", required_argument, NULL, 'D'},
    {"tar", required_argument, NULL, 'T'},
    {"cntr", required_argument, NULL, 'C'},
    {"kic-key", required_argument, NULL, 'i'},
    {"kid-key", required_argument, NULL, 'd'},
    {"cc-len", required_argument, NULL, 'L'},
    {"data", required_argument, NULL, 'x'},
    {"ref", required_argument, NULL, 'r'},
    {"ref16", no_argument, NULL, 'R'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static bool sec_opt(int c, struct sec_args *a)
{
    switch (c) {
    case 'S':
        a->spi = optarg;
        return true;
    case 'I':
        a->kic = optarg;
        return true;
    case 'D':
        a->kid = optarg;
        return true;
    case 'T':
        a->tar = optarg;
        return true;
    case 'C':
        a->cntr = optarg;
        return true;
    case 'i':
        a->kic_key = optarg;
        return true;
    case 'd':
        a->kid_key = optarg;
        return true;
    case 'L':
        a->cc_len = optarg;
        return true;
    }
    return false;
}

static void enc_usage(FILE *f)
{
    fprintf(
        f, "usage: otatool scp80-encode --spi HEX --kic HEX --kid HEX --tar HEX --cntr N\n"
           "                            [--kic-key KEY] [--kid-key KEY] [--cc-len 4|8]\n"
           "                            --data HEX [--ref N] [--ref16]\n"
           "  --spi 1639      SPI (2 octets), e.g. 1639: CC, ciphered, counter higher, PoR always\n"
           "  --kic/--kid     KIc / KID octets, e.g. 12 = KVN 1 AES, 15 = KVN 1 3DES 2-key\n"
           "  --tar           TAR (3 octets), --cntr counter (up to 2^40-1)\n"
           "  KEY             hex, or @FILE holding hex (keeps keys out of ps and history)\n"
           "  --data          secured data: the remote APDU script\n"
           "  --ref N         concatenation reference when more than one SMS is needed\n"
           "Prints the command packet, then each SMS user data (UDH 02 70 00, or 07 00 03.. 70 00\n"
           "when concatenated). Send with TP-PID 7F, TP-DCS F6, TP-UDHI 1.\n");
}

int cmd_scp80_encode(int argc, char **argv)
{
    struct sec_args a = {0};
    struct ota_scp80_cmd cmd = {0};
    struct ota_key kic = {0}, kid = {0};
    struct ota_scp80_keys keys = {0};
    struct ota_scp80_cmd_info info = {0};
    struct ota_crypto *cx = NULL;
    struct ota_err e;
    const char *data_arg = NULL;
    uint64_t ref = 0;
    bool ref16 = false;
    uint8_t data[OTA_SCP80_MAX_PACKET], pkt[OTA_SCP80_MAX_PACKET];
    int c, rc = TOOL_USAGE;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", sec_opts, NULL)) != -1) {
        if (sec_opt(c, &a)) {
            continue;
        }
        switch (c) {
        case 'x':
            data_arg = optarg;
            break;
        case 'r':
            if (parse_uint("--ref", optarg, 65535, &ref) < 0) {
                return TOOL_USAGE;
            }
            break;
        case 'R':
            ref16 = true;
            break;
        case 'h':
            enc_usage(stdout);
            return TOOL_OK;
        default:
            enc_usage(stderr);
            return TOOL_USAGE;
        }
    }
    if (optind != argc) {
        return die("scp80-encode: unexpected argument '%s'", argv[optind]);
    }
    if (!a.tar || !a.cntr || !data_arg) {
        enc_usage(stderr);
        return die("scp80-encode: --tar, --cntr and --data are required");
    }
    if (!ref16 && ref > 255) {
        return die("--ref: %llu needs --ref16", (unsigned long long)ref);
    }
    if (load_sec(&a, false, &cmd, &kic, &kid, &keys)) {
        goto out;
    }
    int dl = parse_hex("--data", data_arg, data, sizeof(data));
    if (dl < 0) {
        goto out;
    }
    if (ota_crypto_new(&cx, &e) < 0) {
        rc = die("crypto: %s", e.msg);
        goto out;
    }
    int n = ota_scp80_cmd_encode(cx, &cmd, &keys, data, (size_t)dl, pkt, sizeof(pkt), &info, &e);
    if (n < 0) {
        rc = die("scp80-encode: %s (%s)", e.msg, ota_errc_name(e.code));
        goto out;
    }
    printf("command packet (%d octets): ", n);
    print_hex(stdout, pkt, (size_t)n);
    printf("\nCPL %04x CHL %02x PCNTR %u CC ", info.cpl, info.chl, info.pcntr);
    if (info.cc_len) {
        print_hex(stdout, info.cc, info.cc_len);
    } else {
        printf("none");
    }
    printf("\n");
    static const uint8_t none = 0;
    struct ota_udh_ie cpi = {.iei = OTA_IEI_CPI, .len = 0, .val = &none};
    struct ota_concat_opts opts = {
        .first = &cpi, .n_first = 1, .ref16 = ref16, .ref = (uint16_t)ref};
    static struct ota_sms_part parts[OTA_CONCAT_MAX_PARTS];
    int np = ota_concat_segment(pkt, (size_t)n, &opts, parts, OTA_CONCAT_MAX_PARTS, &e);
    if (np < 0) {
        rc = die("segment: %s", e.msg);
        goto out;
    }
    for (int i = 0; i < np; i++) {
        printf("sms %d/%d user data (%u octets): ", i + 1, np, parts[i].len);
        print_hex(stdout, parts[i].ud, parts[i].len);
        printf("\n");
    }
    printf("send with TP-PID 7F, TP-DCS F6 (8-bit, class 2), TP-UDHI 1\n");
    rc = TOOL_OK;
out:
    ota_key_wipe(&kic);
    ota_key_wipe(&kid);
    ota_crypto_free(cx);
    return rc;
}

static void dec_usage(FILE *f)
{
    fprintf(f, "usage: otatool por-decode HEX --spi HEX --kic HEX --kid HEX\n"
               "                          [--kic-key KEY] [--kid-key KEY] [--tar HEX --cntr N]\n"
               "  HEX          the PoR as SMS user data (02 71 00 ...) or a bare response packet\n"
               "  --spi/--kic/--kid  those of the COMMAND the PoR answers (its SPI second octet\n"
               "               says whether the PoR carries a CC and is ciphered)\n"
               "  --tar/--cntr also check that the PoR answers that TAR and counter\n"
               "Exit status 1 when the checksum, TAR or counter do not verify, or when a PoR\n"
               "lacks the protection the SPI asked for.\n");
}

int cmd_por_decode(int argc, char **argv)
{
    struct sec_args a = {0};
    struct ota_scp80_cmd cmd = {0};
    struct ota_key kic = {0}, kid = {0};
    struct ota_scp80_keys keys = {0};
    struct ota_scp80_por por;
    struct ota_crypto *cx = NULL;
    struct ota_err e;
    const char *hex = NULL;
    uint8_t in[OTA_SCP80_MAX_PACKET + 16], work[OTA_SCP80_POR_WORK(OTA_SCP80_MAX_PACKET + 16)];
    int c, rc = TOOL_USAGE;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", sec_opts, NULL)) != -1) {
        if (sec_opt(c, &a)) {
            continue;
        }
        if (c == 'h') {
            dec_usage(stdout);
            return TOOL_OK;
        }
        dec_usage(stderr);
        return TOOL_USAGE;
    }
    if (optind + 1 != argc) {
        dec_usage(stderr);
        return die("por-decode: give exactly one PoR in hex");
    }
    hex = argv[optind];
    if ((a.tar == NULL) != (a.cntr == NULL)) {
        return die("por-decode: --tar and --cntr go together");
    }
    if (load_sec(&a, true, &cmd, &kic, &kid, &keys)) {
        goto out;
    }
    int n = parse_hex("PoR", hex, in, sizeof(in));
    if (n < 0) {
        goto out;
    }
    if (ota_crypto_new(&cx, &e) < 0) {
        rc = die("crypto: %s", e.msg);
        goto out;
    }
    /* A bare packet starts with RPL; user data starts with UDHL (02 for 02 71 00). */
    bool sms = n >= 3 && in[1] == OTA_IEI_RPI;
    int r =
        sms ? ota_scp80_por_decode_sms(cx, &cmd, &keys, in, (size_t)n, work, sizeof(work), &por, &e)
            : ota_scp80_por_decode(cx, &cmd, &keys, in, (size_t)n, work, sizeof(work), &por, &e);
    if (r < 0) {
        printf("PoR rejected: %s (%s)\n", e.msg, ota_errc_name(e.code));
        rc = TOOL_FAIL;
        goto out;
    }
    printf("RPL %04x RHL %02x TAR ", por.rpl, por.rhl);
    print_hex(stdout, por.tar, 3);
    printf(" CNTR %010llx PCNTR %u\n", (unsigned long long)por.cntr, por.pcntr);
    printf("status %02x (%s)\n", por.status, ota_scp80_por_status_name(por.status));
    printf("checksum: %s%s", ota_scp80_cc_state_name(por.cc_state), por.cc_len ? " " : "");
    print_hex(stdout, por.cc, por.cc_len);
    printf("%s\n", por.deciphered ? ", deciphered" : "");
    printf("additional response data (%zu octets): ", por.data_len);
    print_hex(stdout, por.data, por.data_len);
    printf("\n");
    rc = TOOL_OK;
    if (por.protection_missing) {
        printf("WARNING: the SPI asked for protection this PoR does not carry\n");
        rc = TOOL_FAIL;
    }
    if (a.tar && ota_scp80_por_match(&por, cmd.tar, cmd.cntr, &e) < 0) {
        printf("MISMATCH: %s (%s)\n", e.msg, ota_errc_name(e.code));
        rc = TOOL_FAIL;
    }
out:
    ota_key_wipe(&kic);
    ota_key_wipe(&kid);
    ota_crypto_free(cx);
    return rc;
}
