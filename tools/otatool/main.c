/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otatool: the operator's OTA tool. Runs the shared test vectors, encodes a
 * push SMS or an SCP80 command packet from arguments, decodes user data or a
 * PoR given keys, and shows a demo of both. Dispatches to the sub-commands.
 */
#include "otatool.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <osmocom/core/utils.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} cmds[] = {
    {"demo", cmd_demo, "encode and decode a sample push SMS and SCP80 exchange"},
    {"vectors", cmd_vectors, "run test vector files (ota-vectors.json format)"},
    {"push-encode", cmd_push_encode, "build a wallet push SMS from SEID and serial"},
    {"push-decode", cmd_push_decode, "decode the user data of a push SMS"},
    {"ud-decode", cmd_ud_decode, "decode SMS user data: UDH IEs and payload"},
    {"scp80-encode", cmd_scp80_encode, "build an SCP80 command packet and its SMS"},
    {"por-decode", cmd_por_decode, "decode and verify an SCP80 response packet (PoR)"},
    {"send", cmd_send, "send one SMS through a CMPP or Kannel box link, print events as JSON"},
    {"audit-verify", cmd_audit_verify, "check the audit log's hash chain, name the first break"},
    {"audit-list", cmd_audit_list, "print audit log entries as stored"},
    {"token", cmd_token, "API tokens in the auth file: create, list, revoke"},
    {"wrap-key", cmd_wrap_key, "encrypt a key under the transport key, print it and its KCV"},
    {"keys-gen-master", cmd_keys_gen_master, "create a master / transport key file (mode 0600)"},
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: otatool COMMAND [options]   (otatool COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        fprintf(f, "  %-14s %s\n", cmds[i].name, cmds[i].help);
    }
    fprintf(f, "\nexit status: 0 ok, 1 a check failed, 2 bad usage or input\n");
}

int die(const char *fmt, ...)
{
    va_list ap;
    fputs("otatool: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return TOOL_USAGE;
}

int parse_hex(const char *what, const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;

    if (!s) {
        die("%s: missing value", what);
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if (*p == ' ' || *p == ':' || *p == '\n' || *p == '\t') {
            continue;
        }
        if (!isxdigit((unsigned char)*p)) {
            die("%s: '%c' at position %zu is not a hex digit", what, *p, (size_t)(p - s));
            return -1;
        }
        int v = osmo_char2bcd(*p);
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n >= cap) {
            die("%s: longer than %zu octets", what, cap);
            return -1;
        }
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    if (hi >= 0) {
        die("%s: odd number of hex digits", what);
        return -1;
    }
    return (int)n;
}

int parse_hex_exact(const char *what, const char *s, uint8_t *out, size_t n)
{
    uint8_t tmp[512];
    int got = parse_hex(what, s, tmp, sizeof(tmp));
    if (got < 0) {
        return -1;
    }
    if ((size_t)got != n) {
        die("%s: %d octets given, %zu expected", what, got, n);
        return -1;
    }
    memcpy(out, tmp, n);
    return got;
}

int parse_key_arg(const char *what, const char *s, uint8_t *out, size_t cap)
{
    if (s && s[0] == '@') {
        char buf[256];
        FILE *f = fopen(s + 1, "r");
        if (!f) {
            die("%s: cannot open %s: %s", what, s + 1, strerror(errno));
            return -1;
        }
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        int r = parse_hex(what, buf, out, cap);
        memset(buf, 0, sizeof(buf));
        return r;
    }
    return parse_hex(what, s, out, cap);
}

int parse_uint(const char *what, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-') {
        die("%s: expected a non-negative number", what);
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end) {
        die("%s: '%s' is not a number", what, s);
        return -1;
    }
    if (v > max) {
        die("%s: %llu is above the maximum %" PRIu64, what, v, max);
        return -1;
    }
    *out = v;
    return 0;
}

void print_hex(FILE *f, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        fprintf(f, "%02x", p[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TOOL_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return TOOL_OK;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!strcmp(argv[1], cmds[i].name)) {
            return cmds[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "otatool: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return TOOL_USAGE;
}
