/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Vector runners for GlobalPlatform SCP02: whole sessions (INITIALIZE UPDATE
 * through wrapped commands), session keys, key diversification and PUT KEY
 * key encryption under the session DEK.
 */
#include "vectors.h"

#include <string.h>

static void expect_key(struct vctx *vc, struct vdiff *d, const json_t *exp, const char *field,
                       const struct ota_key *k)
{
    if (json_object_get(exp, field) && !vk_expect_key(vc, d, exp, field, k)) {
        vj_expect_hex(d, exp, field, k->bytes, k->len);
    }
}

static void expect_kcv(struct vctx *vc, struct vdiff *d, const json_t *exp, const char *field,
                       const struct ota_key *k)
{
    uint8_t kcv[3];
    struct ota_err e;
    if (!json_object_get(exp, field)) {
        return;
    }
    if (ota_crypto_kcv(vc->crypto, k, kcv, &e) < 0) {
        vdiff_add(d, "%s: %s", field, e.msg);
        return;
    }
    vj_expect_hex(d, exp, field, kcv, 3);
}

static bool load_static(struct vctx *vc, const json_t *in, struct vdiff *d,
                        struct ota_scp02_keys *k, uint8_t kvn)
{
    uint8_t enc[32], mac[32], dek[32];
    struct ota_err e;
    int ne = vj_hex(d, in, "static_enc", enc, sizeof(enc));
    int nm = vj_hex(d, in, "static_mac", mac, sizeof(mac));
    int nd = vj_hex(d, in, "static_dek", dek, sizeof(dek));
    (void)vc;
    if (ne < 0 || nm < 0 || nd < 0) {
        return false;
    }
    if (ota_scp02_keys_set(k, enc, (size_t)ne, mac, (size_t)nm, dek, (size_t)nd, kvn, &e) < 0) {
        vdiff_add(d, "keys: %s", e.msg);
        return false;
    }
    if (!vk_token(vc, &k->enc, d) || !vk_token(vc, &k->mac, d) || !vk_token(vc, &k->dek, d)) {
        ota_scp02_keys_wipe(k);
        return false;
    }
    return true;
}

static bool load_seq(const json_t *in, struct vdiff *d, uint16_t *seq)
{
    uint8_t b[2];
    if (vj_hex(d, in, "seq_counter", b, 2) != 2) {
        vdiff_add(d, "seq_counter: need 2 octets");
        return false;
    }
    *seq = ota_get_u16(b);
    return true;
}

void vec_scp02_session(struct vctx *vc, const json_t *in, const json_t *exp, struct vdiff *d)
{
    struct ota_scp02_keys keys;
    struct ota_scp02_session s;
    struct ota_err e;
    uint8_t kvn, sl, hc[8], resp[64], buf[300];
    int n;

    if (vj_hex(d, in, "kvn", &kvn, 1) != 1 || vj_hex(d, in, "security_level", &sl, 1) != 1 ||
        vj_hex(d, in, "host_challenge", hc, 8) != 8) {
        return;
    }
    if (!load_static(vc, in, d, &keys, kvn)) {
        return;
    }
    if (ota_scp02_session_init(&s, vc->crypto, &keys, kvn, sl, hc, &e) < 0) {
        vdiff_add(d, "session_init: %s", e.msg);
        goto out;
    }
    n = ota_scp02_init_update(&s, buf, sizeof(buf), &e);
    if (n < 0) {
        vdiff_add(d, "init_update: %s", e.msg);
        goto out;
    }
    vj_expect_hex(d, exp, "init_update_apdu", buf, (size_t)n);
    n = vj_hex(d, in, "init_update_response", resp, sizeof(resp) - 2);
    if (n < 0) {
        goto out;
    }
    /* The vector gives the response data; the card sends SW 9000 after it. */
    resp[n++] = 0x90;
    resp[n++] = 0x00;
    if (ota_scp02_on_init_update_resp(&s, resp, (size_t)n, &e) < 0) {
        vdiff_add(d, "init_update_response: %s (%s)", e.msg, ota_errc_name(e.code));
        goto out;
    }
    uint8_t seq[2];
    ota_put_u16(seq, s.seq);
    vj_expect_hex(d, exp, "seq_counter", seq, 2);
    vj_expect_hex(d, exp, "card_challenge", s.card_challenge, sizeof(s.card_challenge));
    expect_key(vc, d, exp, "session_enc", &s.skeys.enc);
    expect_key(vc, d, exp, "session_cmac", &s.skeys.cmac);
    expect_key(vc, d, exp, "session_rmac", &s.skeys.rmac);
    expect_key(vc, d, exp, "session_dek", &s.skeys.dek);
    vj_expect_hex(d, exp, "card_cryptogram", s.card_cryptogram, 8);
    vj_expect_hex(d, exp, "host_cryptogram", s.host_cryptogram, 8);
    n = ota_scp02_external_authenticate(&s, buf, sizeof(buf), &e);
    if (n < 0) {
        vdiff_add(d, "external_authenticate: %s", e.msg);
        goto out;
    }
    vj_expect_hex(d, exp, "ext_auth_apdu", buf, (size_t)n);
    if (ota_scp02_on_ext_auth_resp(&s, 0x9000, &e) < 0) {
        vdiff_add(d, "ext_auth_resp: %s", e.msg);
        goto out;
    }
    const json_t *plain = json_object_get(in, "apdus_plain_in_order");
    const json_t *wrapped = json_object_get(exp, "wrapped_in_order");
    if (!json_is_array(plain) || !json_is_array(wrapped) ||
        json_array_size(plain) != json_array_size(wrapped)) {
        vdiff_add(d, "apdus_plain_in_order/wrapped_in_order: missing or of different sizes");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(plain); i++) {
        json_t *pw = json_pack("{s:O}", "a", json_array_get(plain, i));
        json_t *ww = json_pack("{s:O}", "a", json_array_get(wrapped, i));
        uint8_t apdu[300];
        int al = vj_hex(d, pw, "a", apdu, sizeof(apdu));
        if (al >= 0) {
            n = ota_scp02_wrap(&s, apdu, (size_t)al, buf, sizeof(buf), &e);
            if (n < 0) {
                vdiff_add(d, "wrap #%zu: %s", i, e.msg);
            } else {
                struct vdiff one = {0};
                vj_expect_hex(&one, ww, "a", buf, (size_t)n);
                if (one.n) {
                    vdiff_add(d, "wrapped_in_order[%zu]: %s", i, one.text);
                }
            }
        }
        json_decref(pw);
        json_decref(ww);
    }
out:
    ota_scp02_session_fini(&s);
    ota_scp02_keys_wipe(&keys);
}

void vec_scp02_session_keys(struct vctx *vc, const json_t *in, const json_t *exp, struct vdiff *d)
{
    struct ota_scp02_keys keys;
    struct ota_scp02_session_keys sk;
    struct ota_err e;
    uint16_t seq;

    if (!load_seq(in, d, &seq) || !load_static(vc, in, d, &keys, 0)) {
        return;
    }
    if (ota_scp02_derive_session_keys(vc->crypto, &keys, seq, &sk, &e) < 0) {
        vdiff_add(d, "derive: %s", e.msg);
        ota_scp02_keys_wipe(&keys);
        return;
    }
    expect_key(vc, d, exp, "session_enc", &sk.enc);
    expect_key(vc, d, exp, "session_cmac", &sk.cmac);
    expect_key(vc, d, exp, "session_rmac", &sk.rmac);
    expect_key(vc, d, exp, "session_dek", &sk.dek);
    expect_kcv(vc, d, exp, "kcv_session_enc", &sk.enc);
    expect_kcv(vc, d, exp, "kcv_session_cmac", &sk.cmac);
    expect_kcv(vc, d, exp, "kcv_session_rmac", &sk.rmac);
    expect_kcv(vc, d, exp, "kcv_session_dek", &sk.dek);
    ota_scp02_session_keys_wipe(&sk);
    ota_scp02_keys_wipe(&keys);
}

void vec_scp02_dek_key_encryption(struct vctx *vc, const json_t *in, const json_t *exp,
                                  struct vdiff *d)
{
    uint8_t dek[32], key[64], out[64];
    struct ota_key sdek, st, plain;
    struct ota_err e;
    uint16_t seq;
    int nd, nk;

    if (!load_seq(in, d, &seq)) {
        return;
    }
    nd = vj_hex(d, in, "static_dek", dek, sizeof(dek));
    nk = vj_hex(d, in, "key_to_encrypt", key, sizeof(key));
    if (nd < 0 || nk < 0) {
        return;
    }
    if (ota_key_set(&st, OTA_CIPHER_3DES2, dek, (size_t)nd, &e) < 0) {
        vdiff_add(d, "session dek: %s", e.msg);
        return;
    }
    if (!vk_token(vc, &st, d)) {
        return;
    }
    if (ota_scp02_derive_key(vc->crypto, &st, OTA_SCP02_CONST_DEK, seq, &sdek, &e) < 0) {
        vdiff_add(d, "session dek: %s", e.msg);
        return;
    }
    expect_key(vc, d, exp, "session_dek", &sdek);
    if (ota_scp02_dek_encrypt(vc->crypto, &sdek, key, (size_t)nk, out, &e) < 0) {
        vdiff_add(d, "encrypt: %s", e.msg);
    } else {
        vj_expect_hex(d, exp, "encrypted_key", out, (size_t)nk);
    }
    if (json_object_get(exp, "kcv_of_plain_key")) {
        enum ota_cipher c = nk == 8    ? OTA_CIPHER_DES
                            : nk == 24 ? OTA_CIPHER_3DES3
                                       : OTA_CIPHER_3DES2;
        if (ota_key_set(&plain, c, key, (size_t)nk, &e) < 0) {
            vdiff_add(d, "kcv_of_plain_key: %s", e.msg);
        } else if (vk_token(vc, &plain, d)) {
            expect_kcv(vc, d, exp, "kcv_of_plain_key", &plain);
        }
        ota_key_wipe(&plain);
    }
    ota_key_wipe(&st);
    ota_key_wipe(&sdek);
}

void vec_gp_key_diversification(struct vctx *vc, const json_t *in, const json_t *exp,
                                struct vdiff *d)
{
    uint8_t mk[32], kdd[OTA_SCP02_KDD_LEN];
    struct ota_scp02_keys master, out;
    struct ota_err e;
    enum ota_scp02_div m;

    const char *method = vj_str(d, in, "method");
    int n = vj_hex(d, in, "master_key", mk, sizeof(mk));
    if (!method || n < 0 || vj_hex(d, in, "kdd", kdd, sizeof(kdd)) != OTA_SCP02_KDD_LEN) {
        return;
    }
    if (!strcmp(method, "EMV CPS") || !strcmp(method, "EMV")) {
        m = OTA_SCP02_DIV_EMV;
    } else if (!strcmp(method, "VISA2")) {
        m = OTA_SCP02_DIV_VISA2;
    } else {
        vdiff_add(d, "method: unknown '%s'", method);
        return;
    }
    if (ota_scp02_keys_set(&master, mk, (size_t)n, mk, (size_t)n, mk, (size_t)n, 0, &e) < 0) {
        vdiff_add(d, "diversify: %s", e.msg);
        return;
    }
    if (!vk_token(vc, &master.enc, d) || !vk_token(vc, &master.mac, d) ||
        !vk_token(vc, &master.dek, d)) {
        ota_scp02_keys_wipe(&master);
        return;
    }
    if (ota_scp02_diversify(vc->crypto, m, &master, kdd, &out, &e) < 0) {
        vdiff_add(d, "diversify: %s", e.msg);
        return;
    }
    expect_key(vc, d, exp, "enc", &out.enc);
    expect_key(vc, d, exp, "mac", &out.mac);
    expect_key(vc, d, exp, "dek", &out.dek);
    expect_kcv(vc, d, exp, "kcv_enc", &out.enc);
    expect_kcv(vc, d, exp, "kcv_mac", &out.mac);
    expect_kcv(vc, d, exp, "kcv_dek", &out.dek);
    ota_scp02_keys_wipe(&master);
    ota_scp02_keys_wipe(&out);
}
