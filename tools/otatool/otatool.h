/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otatool internals: the sub-commands and the small helpers they share
 * (hex arguments, key arguments, printing). Not a library interface.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ota/ota.h"

/* Exit statuses: 0 ok, 1 a check failed (vectors, bad checksum), 2 usage/input error. */
enum { TOOL_OK = 0, TOOL_FAIL = 1, TOOL_USAGE = 2 };

int cmd_vectors(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_push_encode(int argc, char **argv);
int cmd_push_decode(int argc, char **argv);
int cmd_ud_decode(int argc, char **argv);
int cmd_scp80_encode(int argc, char **argv);
int cmd_por_decode(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_audit_verify(int argc, char **argv); /* cmd_audit.c */
int cmd_audit_list(int argc, char **argv);
int cmd_token(int argc, char **argv);    /* cmd_token.c */
int cmd_wrap_key(int argc, char **argv); /* cmd_keys.c */
int cmd_keys_gen_master(int argc, char **argv);

/* Print "otatool: <fmt>" to stderr; returns TOOL_USAGE for `return die(...)`. */
int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Parse a hex string (spaces and colons allowed) into out. Returns the
 * octet count, or -1 with a message printed naming what (e.g. "--tar").
 */
int parse_hex(const char *what, const char *s, uint8_t *out, size_t cap);

/* Parse exactly n octets of hex; -1 on error (message printed). */
int parse_hex_exact(const char *what, const char *s, uint8_t *out, size_t n);

/*
 * A key argument: hex, or @PATH to read hex from a file (keeps keys out of
 * the process list and shell history). Returns octets or -1.
 */
int parse_key_arg(const char *what, const char *s, uint8_t *out, size_t cap);

/* Parse an unsigned decimal or 0x-hex number up to max; -1 on error. */
int parse_uint(const char *what, const char *s, uint64_t max, uint64_t *out);

/* Print len octets as lowercase hex (no separator) followed by nothing. */
void print_hex(FILE *f, const uint8_t *p, size_t len);
