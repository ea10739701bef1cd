/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the vector runner: read typed fields out of a vector's jansson
 * objects and collect what differed. A missing or mistyped field is itself a
 * difference, so a malformed vector fails instead of passing silently.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one vector got wrong; the first few notes are printed. */
struct vdiff {
    unsigned n;
    char text[512];
};

void vdiff_add(struct vdiff *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hex field obj[key] into out (cap octets); returns octets or -1 (diff noted). */
int vj_hex(struct vdiff *d, const json_t *obj, const char *key, uint8_t *out, size_t cap);

/* True when obj[key] is JSON null or absent. */
bool vj_null(const json_t *obj, const char *key);

/* String field or NULL (diff noted when absent or not a string). */
const char *vj_str(struct vdiff *d, const json_t *obj, const char *key);

/* Integer field; returns false (diff noted) when absent or not an integer. */
bool vj_int(struct vdiff *d, const json_t *obj, const char *key, long long *out);

/* Compare got with the hex string obj[key]; notes "key: expected X, got Y". */
void vj_expect_hex(struct vdiff *d, const json_t *obj, const char *key, const uint8_t *got,
                   size_t got_len);

/* Compare an integer with obj[key]. */
void vj_expect_int(struct vdiff *d, const json_t *obj, const char *key, long long got);
