/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One runner per vector type. Each reads its inputs, runs our codec, and
 * notes every expected field that differs (or is missing) in *d.
 */
#pragma once

#include "otatool.h"
#include "vjson.h"

struct vctx {
    struct ota_crypto *crypto;
};

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
