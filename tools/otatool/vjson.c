/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Field readers and difference notes for the vector runner (see vjson.h).
 */
#include "vjson.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <osmocom/core/utils.h>

#include "otatool.h"

void vdiff_add(struct vdiff *d, const char *fmt, ...)
{
    size_t used = strlen(d->text);
    va_list ap;

    d->n++;
    if (used + 8 >= sizeof(d->text)) {
        return;
    }
    if (used) {
        used += (size_t)snprintf(d->text + used, sizeof(d->text) - used, "; ");
    }
    va_start(ap, fmt);
    vsnprintf(d->text + used, sizeof(d->text) - used, fmt, ap);
    va_end(ap);
}

int vj_hex(struct vdiff *d, const json_t *obj, const char *key, uint8_t *out, size_t cap)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        vdiff_add(d, "%s: missing or not a hex string", key);
        return -1;
    }
    const char *s = json_string_value(v);
    size_t len = strlen(s);
    if (len % 2 || len / 2 > cap) {
        vdiff_add(d, "%s: bad hex length %zu", key, len);
        return -1;
    }
    for (size_t i = 0; i < len / 2; i++) {
        if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1])) {
            vdiff_add(d, "%s: not hex", key);
            return -1;
        }
        out[i] = (uint8_t)(osmo_char2bcd(s[2 * i]) << 4 | osmo_char2bcd(s[2 * i + 1]));
    }
    return (int)(len / 2);
}

bool vj_null(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return !v || json_is_null(v);
}

const char *vj_str(struct vdiff *d, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        vdiff_add(d, "%s: missing or not a string", key);
        return NULL;
    }
    return json_string_value(v);
}

bool vj_int(struct vdiff *d, const json_t *obj, const char *key, long long *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) {
        vdiff_add(d, "%s: missing or not an integer", key);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

void vj_expect_hex(struct vdiff *d, const json_t *obj, const char *key, const uint8_t *got,
                   size_t got_len)
{
    uint8_t exp[4096];
    int n = vj_hex(d, obj, key, exp, sizeof(exp));
    if (n < 0) {
        return;
    }
    size_t el = (size_t)n, i = 0;
    while (i < el && i < got_len && exp[i] == got[i]) {
        i++;
    }
    if (i == el && i == got_len) {
        return;
    }
    /* Show where they part: the offset and a few octets from there on. */
    char g[40] = "", x[40] = "";
    for (size_t k = i, o = 0; k < got_len && o + 3 < sizeof(g); k++) {
        o += (size_t)snprintf(g + o, sizeof(g) - o, "%02x", got[k]);
    }
    for (size_t k = i, o = 0; k < el && o + 3 < sizeof(x); k++) {
        o += (size_t)snprintf(x + o, sizeof(x) - o, "%02x", exp[k]);
    }
    vdiff_add(d,
              "%s: %zu octets expected, %zu got, first difference at octet %zu: "
              "expected %s%s, got %s%s",
              key, el, got_len, i, x[0] ? x : "(end)", el - i > 18 ? ".." : "", g[0] ? g : "(end)",
              got_len - i > 18 ? ".." : "");
}

void vj_expect_int(struct vdiff *d, const json_t *obj, const char *key, long long got)
{
    long long exp;
    if (!vj_int(d, obj, key, &exp)) {
        return;
    }
    if (exp != got) {
        vdiff_add(d, "%s: expected %lld, got %lld", key, exp, got);
    }
}
