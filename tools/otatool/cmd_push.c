/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `otatool push-encode` and `otatool push-decode`: the wallet push SMS of
 * spec 5.8.5.3 in our version-1 layout (ota/ota_push.h, docs/push-sms.md),
 * and `otatool ud-decode`: any SMS user data with a UDH, IE by IE.
 */
#include "otatool.h"

#include <getopt.h>
#include <string.h>

static void push_usage(FILE *f)
{
    fprintf(f, "usage: otatool push-encode --seid HEX --serial HEX [--dport N] [--sport N]\n"
               "  --seid HEX     SE identifier, 1..32 octets\n"
               "  --serial HEX   push serial, exactly 16 octets (draw it at random)\n"
               "  --dport N      the wallet client's registered port (default 2948)\n"
               "  --sport N      source port (default 2948)\n"
               "Prints the SMS user data as hex, then TP-PID/TP-DCS/UDHI to send it with.\n");
}

static void print_push(const struct ota_push *p)
{
    printf("ports:   %u -> %u (%s IE)\n", p->src_port, p->dst_port, p->ports8 ? "8-bit" : "16-bit");
    printf("version: %u\n", OTA_PUSH_VERSION);
    printf("seid:    ");
    print_hex(stdout, p->seid, p->seid_len);
    printf(" (%u octets)\nserial:  ", p->seid_len);
    print_hex(stdout, p->serial, sizeof(p->serial));
    printf("\n");
}

int cmd_push_encode(int argc, char **argv)
{
    static const struct option lo[] = {
        {"seid", required_argument, NULL, 'i'},  {"serial", required_argument, NULL, 's'},
        {"dport", required_argument, NULL, 'd'}, {"sport", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    struct ota_push p = {.dst_port = 2948, .src_port = 2948};
    const char *seid = NULL, *serial = NULL;
    uint64_t v;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'i':
            seid = optarg;
            break;
        case 's':
            serial = optarg;
            break;
        case 'd':
            if (parse_uint("--dport", optarg, 65535, &v) < 0) {
                return TOOL_USAGE;
            }
            p.dst_port = (uint16_t)v;
            break;
        case 'o':
            if (parse_uint("--sport", optarg, 65535, &v) < 0) {
                return TOOL_USAGE;
            }
            p.src_port = (uint16_t)v;
            break;
        case 'h':
            push_usage(stdout);
            return TOOL_OK;
        default:
            push_usage(stderr);
            return TOOL_USAGE;
        }
    }
    if (optind != argc) {
        return die("push-encode: unexpected argument '%s'", argv[optind]);
    }
    if (!seid || !serial) {
        push_usage(stderr);
        return die("push-encode: --seid and --serial are required");
    }
    int n = parse_hex("--seid", seid, p.seid, sizeof(p.seid));
    if (n < 0) {
        return TOOL_USAGE;
    }
    if (n == 0) {
        return die("--seid: empty");
    }
    p.seid_len = (uint8_t)n;
    if (parse_hex_exact("--serial", serial, p.serial, sizeof(p.serial)) < 0) {
        return TOOL_USAGE;
    }
    uint8_t ud[OTA_SMS_UD_MAX];
    struct ota_err e;
    n = ota_push_encode(&p, ud, sizeof(ud), &e);
    if (n < 0) {
        return die("push-encode: %s", e.msg);
    }
    uint8_t pid, dcs;
    ota_push_sms_params(&pid, &dcs);
    print_hex(stdout, ud, (size_t)n);
    printf("\nTP-UDHI 1, TP-PID %02x, TP-DCS %02x, %d octets\n", pid, dcs, n);
    return TOOL_OK;
}

int cmd_push_decode(int argc, char **argv)
{
    uint8_t ud[512];
    struct ota_push p;
    struct ota_err e;

    if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc == 2 ? stdout : stderr, "usage: otatool push-decode USERDATA-HEX\n");
        return argc == 2 ? TOOL_OK : TOOL_USAGE;
    }
    int n = parse_hex("user data", argv[1], ud, sizeof(ud));
    if (n < 0) {
        return TOOL_USAGE;
    }
    if (ota_push_decode(ud, (size_t)n, &p, &e) < 0) {
        return die("push-decode: %s (%s)", e.msg, ota_errc_name(e.code));
    }
    print_push(&p);
    return TOOL_OK;
}

int cmd_ud_decode(int argc, char **argv)
{
    uint8_t ud[512];
    struct ota_udh u;
    struct ota_udh_info info;
    struct ota_err e;

    if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: otatool ud-decode USERDATA-HEX\n"
                "Decodes SMS user data that starts with a UDH (TP-UDHI = 1).\n");
        return argc == 2 ? TOOL_OK : TOOL_USAGE;
    }
    int n = parse_hex("user data", argv[1], ud, sizeof(ud));
    if (n < 0) {
        return TOOL_USAGE;
    }
    if (ota_udh_parse(ud, (size_t)n, &u, &e) < 0) {
        return die("ud-decode: %s (%s)", e.msg, ota_errc_name(e.code));
    }
    printf("udhl: %u\n", u.udhl);
    for (unsigned i = 0; i < u.n_ies; i++) {
        printf("ie:   %02x %-8s len %u value ", u.ies[i].iei, ota_iei_name(u.ies[i].iei),
               u.ies[i].len);
        print_hex(stdout, u.ies[i].val, u.ies[i].len);
        printf("\n");
    }
    printf("payload (%zu octets): ", u.payload_len);
    print_hex(stdout, u.payload, u.payload_len);
    printf("\n");
    if (ota_udh_info(&u, &info, &e) < 0) {
        printf("warning: %s (%s)\n", e.msg, ota_errc_name(e.code));
        return TOOL_FAIL;
    }
    if (info.has_concat) {
        printf("concat: ref %u (%s) part %u of %u\n", info.ref, info.concat16 ? "16-bit" : "8-bit",
               info.seq, info.total);
    }
    if (info.has_ports) {
        printf("ports:  %u -> %u\n", info.src_port, info.dst_port);
    }
    if (info.has_cpi) {
        printf("SCP80 command packet (CPI)\n");
    }
    if (info.has_rpi) {
        printf("SCP80 response packet (RPI)\n");
    }
    return TOOL_OK;
}
