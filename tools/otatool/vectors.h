/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One runner per vector type. Each reads its inputs, runs our codec, and
 * notes every expected field that differs (or is missing) in *d.
 */
#pragma once

#include "otatool.h"
#include "vjson.h"

struct p11;

struct vctx {
    struct ota_crypto *crypto;
    struct p11 *p11;      /* --pkcs11: every key goes through the token (vec_hsm.c) */
    bool skip;            /* this vector needs a key the backend does not offer */
    unsigned n_labels;    /* token objects made so far */
    unsigned first_label; /* first one made for the current vector */
};

/* --pkcs11 mode (vec_hsm.c). vk_open returns 0 or -1 (message printed). */
int vk_open(struct vctx *vc, const char *module, const char *token, const char *pin);
void vk_close(struct vctx *vc);
/*
 * Replace raw *k by a token copy when --pkcs11 is on (no-op otherwise). False
 * when the vector cannot go on: vc->skip set (single DES) or a diff noted.
 */
bool vk_token(struct vctx *vc, struct ota_key *k, struct vdiff *d);
/* Destroy the token objects the current vector made. */
void vk_vector_done(struct vctx *vc);
/*
 * For a token key: compare it with the expected key bytes exp[field] by
 * behaviour and return true; for a raw key return false (compare bytes).
 */
bool vk_expect_key(struct vctx *vc, struct vdiff *d, const json_t *exp, const char *field,
                   const struct ota_key *k);

void vec_scp80_command_encode(struct vctx *vc, const json_t *in, const json_t *exp,
                              struct vdiff *d);
void vec_scp80_response_decode(struct vctx *vc, const json_t *in, const json_t *exp,
                               struct vdiff *d);
void vec_scp02_session(struct vctx *vc, const json_t *in, const json_t *exp, struct vdiff *d);
void vec_scp02_session_keys(struct vctx *vc, const json_t *in, const json_t *exp, struct vdiff *d);
void vec_scp02_dek_key_encryption(struct vctx *vc, const json_t *in, const json_t *exp,
                                  struct vdiff *d);
void vec_gp_key_diversification(struct vctx *vc, const json_t *in, const json_t *exp,
                                struct vdiff *d);
void vec_udh_parse(struct vctx *vc, const json_t *in, const json_t *exp, struct vdiff *d);
