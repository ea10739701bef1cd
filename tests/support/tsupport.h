/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the unit tests (tests/unit/): hex literals, byte
 * comparisons against hex, key setup, the wipe check of SCP02 key sets, and
 * the shared vector file (../shared/vectors/ota-vectors.json, STYLE 9).
 *
 * Every helper checks with cmocka assertions, so a bad literal or a missing
 * vector fails the calling test rather than returning an error.
 */
#pragma once

#include "ota/ota.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Parse hex (osmo_hexparse) into out; asserts it is valid and fits cap. Returns octets. */
size_t ts_hex(const char *h, uint8_t *out, size_t cap);

/* Assert that p[0..len) is exactly the octets spelled by hex h (at most 600). */
void ts_assert_bytes(const uint8_t *p, size_t len, const char *h);

/* Set k to cipher c with the key spelled by hex h (at most 32 octets); asserts success. */
void ts_mkkey(struct ota_key *k, enum ota_cipher c, const char *h);

/* True if all n octets at p are zero. */
bool ts_all_zero(const void *p, size_t n);

/* Assert that a static key set and a session key set have been wiped. */
void ts_assert_scp02_keys_wiped(const struct ota_scp02_keys *keys,
                                const struct ota_scp02_session_keys *skeys);

/* Load the shared vector file; fails the test if it cannot be read. Caller json_decref()s. */
json_t *ts_vectors_load(void);

/* The vector with this "id" in root; fails the test if there is none. Borrowed from root. */
json_t *ts_vector_by_id(json_t *root, const char *id);

/*
 * Call fn(v, arg) for every vector of root whose "type" is type; asserts that
 * "vectors" is an array and every vector has a string "type". Returns how many ran.
 */
size_t ts_vectors_run(json_t *root, const char *type, void (*fn)(json_t *v, void *arg), void *arg);

/* The string member k of o; asserts it is present and a string. Borrowed from o. */
const char *ts_jstr(const json_t *o, const char *k);

/*
 * Remove a test's temporary directory: unlink every entry in it (test
 * directories are flat: a database, its -wal/-shm, logs) and rmdir it.
 * Returns 0 when it is gone, -errno otherwise (a missing dir is -ENOENT).
 */
int ts_rmdir_tree(const char *dir);
