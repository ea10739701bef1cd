/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `otatool vectors --pkcs11 MODULE --token LABEL --pin PIN FILE...`: the
 * vector runners with every key moved into a PKCS#11 token first (issue #7:
 * "every vector passes through the HSM backend"). Each vector key is
 * imported as a sensitive, non-extractable object and the raw copy wiped,
 * so the codec under test only ever holds token references; the objects
 * are destroyed after each vector.
 *
 * Single DES keys go in as K|K 3DES2 objects (see gateway/p11.c); a key
 * the backend could not hold would mark the vector skipped-by-backend. A
 * vector that expects a derived key's bytes cannot read them from the
 * token: the derived key is compared by what it does (3DES/AES-ECB of two
 * fixed blocks under it and under the expected bytes).
 */
#include "vectors.h"

#include <stdio.h>
#include <string.h>

#include "gateway/p11.h"

int vk_open(struct vctx *vc, const char *module, const char *token, const char *pin)
{
    struct p11_conf c = {.module = module, .token_label = token, .pin = pin};
    struct ota_err e;

    if (p11_open(&c, &vc->p11, &e) < 0) {
        fprintf(stderr, "otatool: pkcs11: %s\n", e.msg);
        return -1;
    }
    return 0;
}

void vk_close(struct vctx *vc)
{
    p11_close(vc->p11);
    vc->p11 = NULL;
}

bool vk_token(struct vctx *vc, struct ota_key *k, struct vdiff *d)
{
    char label[48];
    struct ota_err e;
    int rc;

    if (!vc->p11) {
        return true;
    }
    snprintf(label, sizeof(label), "otatool-vec-%u", vc->n_labels);
    /* A vector key plays the card and the host: it ciphers both ways, MACs and derives. */
    /* P11_F_K1: retail-MAC vectors run on the imported key itself */
    rc = p11_import_clear_ex(vc->p11, k, label, P11_U_WORK | P11_F_K1, &e);
    ota_key_wipe(k);
    if (rc == 0) {
        vc->n_labels++;
        rc = p11_key(vc->p11, label, k, &e);
    }
    if (rc < 0) {
        vdiff_add(d, "pkcs11 import: %s", e.msg);
        return false;
    }
    return true;
}

void vk_vector_done(struct vctx *vc)
{
    char label[48];

    for (unsigned i = vc->first_label; i < vc->n_labels; i++) {
        snprintf(label, sizeof(label), "otatool-vec-%u", i);
        /* Best effort: a leftover object only costs token space; labels never repeat. */
        if (p11_destroy(vc->p11, label, NULL) < 0) {
            continue;
        }
    }
    vc->first_label = vc->n_labels;
}

bool vk_expect_key(struct vctx *vc, struct vdiff *d, const json_t *exp, const char *field,
                   const struct ota_key *k)
{
    static const uint8_t probe[32] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                      0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
                                      0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                      0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10};
    uint8_t kb[OTA_KEY_MAX], a[32], b[32];
    struct ota_key want;
    struct ota_err e;

    if (!ota_key_is_ext(k)) {
        return false; /* raw: the caller compares bytes */
    }
    int n = vj_hex(d, exp, field, kb, sizeof(kb));
    if (n < 0) {
        return true;
    }
    if (ota_key_set(&want, k->cipher, kb, (size_t)n, &e) < 0) {
        vdiff_add(d, "%s: %s", field, e.msg);
        return true;
    }
    /* Parity bits may differ (tokens fix DES parity); the permutation may not. */
    if (ota_crypto_cipher(vc->crypto, &want, OTA_MODE_ECB, true, NULL, probe, 32, a, &e) < 0 ||
        ota_crypto_cipher(vc->crypto, k, OTA_MODE_ECB, true, NULL, probe, 32, b, &e) < 0) {
        vdiff_add(d, "%s: %s", field, e.msg);
    } else if (memcmp(a, b, 32) != 0) {
        vdiff_add(d, "%s: the token key does not encrypt like the expected key", field);
    }
    ota_key_wipe(&want);
    memset(kb, 0, sizeof(kb));
    return true;
}
