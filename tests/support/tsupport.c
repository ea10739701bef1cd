/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the unit tests; see tsupport.h. Built into a library that
 * every unit test links (CMakeLists.txt), with OTAGW_SOURCE_DIR defined.
 */
#include "tests/support/tsupport.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <osmocom/core/utils.h>

#define TS_VECTORS OTAGW_SOURCE_DIR "/../shared/vectors/ota-vectors.json"

size_t ts_hex(const char *h, uint8_t *out, size_t cap)
{
    int n = osmo_hexparse(h, out, (unsigned)cap);

    assert_true(n >= 0);
    return (size_t)n;
}

void ts_assert_bytes(const uint8_t *p, size_t len, const char *h)
{
    uint8_t want[600];
    size_t n = ts_hex(h, want, sizeof(want));

    assert_int_equal(len, n);
    assert_memory_equal(p, want, n);
}

void ts_mkkey(struct ota_key *k, enum ota_cipher c, const char *h)
{
    uint8_t b[32];
    size_t n = ts_hex(h, b, sizeof(b));

    assert_int_equal(ota_key_set(k, c, b, n, NULL), 0);
}

bool ts_all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++) {
        if (b[i]) {
            return false;
        }
    }
    return true;
}

void ts_assert_scp02_keys_wiped(const struct ota_scp02_keys *keys,
                                const struct ota_scp02_session_keys *skeys)
{
    assert_true(ts_all_zero(keys->enc.bytes, sizeof(keys->enc.bytes)));
    assert_true(ts_all_zero(keys->mac.bytes, sizeof(keys->mac.bytes)));
    assert_true(ts_all_zero(keys->dek.bytes, sizeof(keys->dek.bytes)));
    assert_true(ts_all_zero(skeys, sizeof(*skeys)));
}

json_t *ts_vectors_load(void)
{
    json_error_t je;
    json_t *root = json_load_file(TS_VECTORS, 0, &je);

    if (!root) {
        fail_msg("cannot load %s: %s (line %d)", TS_VECTORS, je.text, je.line);
    }
    return root;
}

json_t *ts_vector_by_id(json_t *root, const char *id)
{
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(root, "vectors"), i, v)
    {
        if (!strcmp(json_string_value(json_object_get(v, "id")), id)) {
            return v;
        }
    }
    fail_msg("vector %s not found", id);
    return NULL;
}

size_t ts_vectors_run(json_t *root, const char *type, void (*fn)(json_t *v, void *arg), void *arg)
{
    json_t *vs = json_object_get(root, "vectors"), *v;
    size_t i, n = 0;

    assert_true(json_is_array(vs));
    json_array_foreach(vs, i, v)
    {
        if (!strcmp(ts_jstr(v, "type"), type)) {
            fn(v, arg);
            n++;
        }
    }
    return n;
}

const char *ts_jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);

    assert_non_null(v);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

int ts_rmdir_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return -errno;
    }
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            (void)unlink(p);
        }
    }
    closedir(d);
    return rmdir(dir) == 0 ? 0 : -errno;
}
