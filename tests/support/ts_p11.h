/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A temporary SoftHSM2 token for the PKCS#11 tests (tests/unit/test_p11.c,
 * test_keys.c, test_perso.c) and bench-ota: a directory with its tokens/ and
 * softhsm2.conf, SOFTHSM2_CONF pointing at it, and one token initialised by
 * softhsm2-util --init-token. No cmocka in ts_p11.c (bench-ota builds it
 * too); TS_P11_SKIP() is the one skip-or-fail rule for a missing module.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define TS_P11_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TS_P11_SO_PIN "5678"

/* True when OTAGW_REQUIRE_P11=1 (CI): a missing SoftHSM2 module is a failure there. */
bool ts_p11_required(void);

/* In a cmocka test, when the module is missing: skip, or fail when ts_p11_required(). */
#define TS_P11_SKIP()                                                                              \
    do {                                                                                           \
        if (ts_p11_required()) {                                                                   \
            fail_msg("no SoftHSM2 module at %s and OTAGW_REQUIRE_P11=1", TS_P11_MODULE);           \
        }                                                                                          \
        skip();                                                                                    \
    } while (0)

/*
 * Make a token labelled label with user PIN pin (SO PIN TS_P11_SO_PIN;
 * label and pin of [A-Za-z0-9._-] only, they go through the shell). dir
 * (cap octets) is the directory to hold it: an existing one, or empty to
 * have a fresh one mkdtemp'ed (/tmp/otagw-p11-XXXXXX, cap >= 22) and its
 * path written there. Returns 1 when the token is ready, 0 when the
 * SoftHSM2 module is not installed (nothing created: the caller skips, see
 * TS_P11_SKIP), or a negative errno (-EIO: softhsm2-util failed).
 */
int ts_p11_token(const char *label, const char *pin, char *dir, size_t cap);

/* Remove dir (under /tmp/) and everything in it (the token directory nests). 0, -EINVAL or -EIO. */
int ts_p11_token_rm(const char *dir);
