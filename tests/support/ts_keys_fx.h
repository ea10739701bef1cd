/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key-store test fixture shared by test_keys and test_perso: a temporary
 * directory with the store file, master and transport key paths, an OpenSSL
 * context, and the local backend opened on them. Header-only (static
 * inline) because tests/support does not link the gateway library.
 *
 * Include after <cmocka.h> (its setjmp/stdarg/stddef prerequisites first).
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gateway/keys.h"
#include "ota/ota.h"
#include "tests/support/ts_p11.h"

struct ts_keys_fx {
    char dir[64];
    char db[128], master[128], transport[128];
    struct gw_keys *k;
    struct ota_crypto *cx;
};

/* cmocka setup: a fresh fixture in a mkdtemp'ed tmpl ("/tmp/NAME.XXXXXX"). */
static inline int ts_keys_fx_setup(void **state, const char *tmpl)
{
    struct ts_keys_fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_true(strlen(tmpl) < sizeof(f->dir));
    strcpy(f->dir, tmpl);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/k.db", f->dir);
    snprintf(f->master, sizeof(f->master), "%s/master.key", f->dir);
    snprintf(f->transport, sizeof(f->transport), "%s/transport.key", f->dir);
    struct ota_err err;
    assert_int_equal(ota_crypto_new(&f->cx, &err), 0);
    *state = f;
    return 0;
}

/* cmocka teardown: close the store, remove the directory (SoftHSM2 tokens nest in it). */
static inline int ts_keys_fx_teardown(void **state)
{
    struct ts_keys_fx *f = *state;
    gw_keys_close(f->k);
    ota_crypto_free(f->cx);
    int rc = ts_p11_token_rm(f->dir);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

/* Write text to path and set its mode. */
static inline void ts_write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

/* Open the local backend on the fixture's files (transport key file optional). */
static inline int ts_keys_open_local(struct ts_keys_fx *f, bool with_transport, unsigned *made,
                                     struct ota_err *err)
{
    struct gw_keys_conf c = {.backend = GW_KEYS_LOCAL,
                             .db_path = f->db,
                             .master_key_file = f->master,
                             .transport_key_file = with_transport ? f->transport : NULL};
    return gw_keys_open_conf(&c, &f->k, made, err);
}
