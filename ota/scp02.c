/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GlobalPlatform SCP02 (GP Card Spec 2.2 Annex E) for both ends of the
 * channel: key diversification (EMV CPS / VISA2 as GPPro names them),
 * session keys (E.4.1), cryptograms (E.4.2), the INITIALIZE UPDATE /
 * EXTERNAL AUTHENTICATE handshake (E.5.1, E.5.2), C-MAC on the modified APDU
 * with ICV encryption (E.4.4, "i" = 15/55), C-DECRYPTION (E.4.5) and
 * sensitive-data encryption under the session DEK (E.4.6).
 *
 * The host session and the card end share the MAC and cipher helpers, so the
 * round-trip tests check one implementation against the vectors and itself.
 * Each end is a state machine (STYLE 5): a table of allowed next states and
 * one function, host_set_state()/card_set_state(), that makes every change
 * and wipes the keys when the machine reaches a terminal state.
 *
 * All crypto goes through ota_crypto.h; MACs and cryptograms are compared
 * with CRYPTO_memcmp; stack copies of key material are cleansed on every
 * exit.
 */
#include "ota/ota_scp02.h"

#include "ota/ota_apdu.h"

#include <string.h>

#include <openssl/crypto.h>

#define ST_BIT(x) (1u << (x))

/* ISO 7816-4 5.1.1: b7 set = further interindustry / GP channels 4-19, SM lives elsewhere. */
#define CLA_FURTHER_INTERINDUSTRY 0x40
#define CLA_CHANNEL_MASK 0x03

/* ---- names ---------------------------------------------------------------- */

const char *ota_scp02_sl_name(enum ota_scp02_sl sl)
{
    switch (sl) {
    case OTA_SCP02_SL_NONE:
        return "none";
    case OTA_SCP02_SL_CMAC:
        return "c-mac";
    case OTA_SCP02_SL_CMAC_CDEC:
        return "c-mac+c-dec";
    case OTA_SCP02_SL_CMAC_RMAC:
        return "c-mac+r-mac";
    case OTA_SCP02_SL_CMAC_CDEC_RMAC:
        return "c-mac+c-dec+r-mac";
    }
    return "unknown";
}

static const char *const div_names[OTA_SCP02_DIV__COUNT] = {
    [OTA_SCP02_DIV_NONE] = "none",
    [OTA_SCP02_DIV_EMV] = "emv-cps",
    [OTA_SCP02_DIV_VISA2] = "visa2",
};

const char *ota_scp02_div_name(enum ota_scp02_div m)
{
    return ota_enum_name(div_names, OTA_SCP02_DIV__COUNT, m);
}

/* Security levels this implementation runs; R-MAC (11, 13) is refused. */
static bool sl_supported(uint8_t sl)
{
    return sl == OTA_SCP02_SL_NONE || sl == OTA_SCP02_SL_CMAC || sl == OTA_SCP02_SL_CMAC_CDEC;
}

static bool sl_has_cmac(uint8_t sl)
{
    return sl & 0x01;
}

static bool sl_has_cdec(uint8_t sl)
{
    return sl & 0x02;
}

/* ---- keys ----------------------------------------------------------------- */

static int check_key(const struct ota_key *k, const char *what, struct ota_err *err)
{
    if (!k || k->cipher != OTA_CIPHER_3DES2 || k->len != OTA_SCP02_KEY_LEN) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "scp02: %s key must be 16-octet 2-key 3DES",
                        what);
    }
    return 0;
}

static int check_keys(const struct ota_scp02_keys *k, struct ota_err *err)
{
    int rc;

    if (!k) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: no key set");
    }
    rc = check_key(&k->enc, "ENC", err);
    if (rc == 0) {
        rc = check_key(&k->mac, "MAC", err);
    }
    if (rc == 0) {
        rc = check_key(&k->dek, "DEK", err);
    }
    return rc;
}

int ota_scp02_keys_set(struct ota_scp02_keys *k, const uint8_t *enc, size_t enc_len,
                       const uint8_t *mac, size_t mac_len, const uint8_t *dek, size_t dek_len,
                       uint8_t kvn, struct ota_err *err)
{
    struct ota_scp02_keys t;
    int rc;

    if (!k || !enc || !mac || !dek) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: keys_set with a NULL argument");
    }
    if (enc_len != OTA_SCP02_KEY_LEN || mac_len != OTA_SCP02_KEY_LEN ||
        dek_len != OTA_SCP02_KEY_LEN) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY,
                        "scp02: key lengths ENC %zu MAC %zu DEK %zu, each must be 16", enc_len,
                        mac_len, dek_len);
    }
    memset(&t, 0, sizeof(t));
    rc = ota_key_set(&t.enc, OTA_CIPHER_3DES2, enc, enc_len, err);
    if (rc == 0) {
        rc = ota_key_set(&t.mac, OTA_CIPHER_3DES2, mac, mac_len, err);
    }
    if (rc == 0) {
        rc = ota_key_set(&t.dek, OTA_CIPHER_3DES2, dek, dek_len, err);
    }
    if (rc == 0) {
        t.kvn = kvn;
        *k = t;
    }
    ota_scp02_keys_wipe(&t);
    return rc;
}

int ota_scp02_keys_from(struct ota_scp02_keys *k, const struct ota_key *enc,
                        const struct ota_key *mac, const struct ota_key *dek, uint8_t kvn,
                        struct ota_err *err)
{
    struct ota_scp02_keys t;
    int rc;

    if (!k || !enc || !mac || !dek) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: keys_from with a NULL argument");
    }
    rc = check_key(enc, "ENC", err);
    if (rc == 0) {
        rc = check_key(mac, "MAC", err);
    }
    if (rc == 0) {
        rc = check_key(dek, "DEK", err);
    }
    if (rc < 0) {
        return rc;
    }
    /* Borrowed: a token object stays the caller's; raw bytes are copied. */
    ota_key_borrow(&t.enc, enc);
    ota_key_borrow(&t.mac, mac);
    ota_key_borrow(&t.dek, dek);
    t.kvn = kvn;
    *k = t;
    OPENSSL_cleanse(&t, sizeof(t));
    return 0;
}

/* *dst = borrowed copies of src's keys (ownership of token objects stays with src). */
static void keys_borrow(struct ota_scp02_keys *dst, const struct ota_scp02_keys *src)
{
    ota_key_borrow(&dst->enc, &src->enc);
    ota_key_borrow(&dst->mac, &src->mac);
    ota_key_borrow(&dst->dek, &src->dek);
    dst->kvn = src->kvn;
}

void ota_scp02_keys_wipe(struct ota_scp02_keys *k)
{
    if (!k) {
        return;
    }
    ota_key_wipe(&k->enc);
    ota_key_wipe(&k->mac);
    ota_key_wipe(&k->dek);
    k->kvn = 0;
}

void ota_scp02_session_keys_wipe(struct ota_scp02_session_keys *k)
{
    if (!k) {
        return;
    }
    ota_key_wipe(&k->enc);
    ota_key_wipe(&k->cmac);
    ota_key_wipe(&k->rmac);
    ota_key_wipe(&k->dek);
}

/*
 * The 16-octet diversification block for key kind kk (01 ENC, 02 MAC, 03
 * DEK). EMV CPS 1.1 uses the chip's 6-octet serial part KDD[4..9]; VISA2
 * the IC fabricator/serial parts KDD[0..1] | KDD[4..7] (GPPro kdf_templates).
 */
static void div_block(enum ota_scp02_div method, const uint8_t kdd[OTA_SCP02_KDD_LEN], uint8_t kk,
                      uint8_t out[16])
{
    if (method == OTA_SCP02_DIV_EMV) {
        memcpy(out, kdd + 4, 6);
        out[6] = 0xF0;
        out[7] = kk;
        memcpy(out + 8, kdd + 4, 6);
        out[14] = 0x0F;
        out[15] = kk;
    } else {
        memcpy(out, kdd, 2);
        memcpy(out + 2, kdd + 4, 4);
        out[6] = 0xF0;
        out[7] = kk;
        memcpy(out + 8, kdd, 2);
        memcpy(out + 10, kdd + 4, 4);
        out[14] = 0x0F;
        out[15] = kk;
    }
}

static int div_one(struct ota_crypto *c, enum ota_scp02_div method, const struct ota_key *master,
                   const uint8_t kdd[OTA_SCP02_KDD_LEN], uint8_t kk, struct ota_key *out,
                   struct ota_err *err)
{
    uint8_t blk[16];

    div_block(method, kdd, kk, blk);
    /* A token master key yields a token object: the diversified key never leaves it. */
    return ota_crypto_derive(c, master, OTA_MODE_ECB, blk, sizeof(blk), OTA_CIPHER_3DES2, out, err);
}

int ota_scp02_diversify(struct ota_crypto *c, enum ota_scp02_div method,
                        const struct ota_scp02_keys *master, const uint8_t kdd[OTA_SCP02_KDD_LEN],
                        struct ota_scp02_keys *out, struct ota_err *err)
{
    struct ota_scp02_keys t;
    int rc;

    if (!c || !kdd || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: diversify with a NULL argument");
    }
    if (method != OTA_SCP02_DIV_EMV && method != OTA_SCP02_DIV_VISA2) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: diversification method %d (%s)",
                        (int)method, ota_scp02_div_name(method));
    }
    rc = check_keys(master, err);
    if (rc < 0) {
        return rc;
    }
    memset(&t, 0, sizeof(t));
    rc = div_one(c, method, &master->enc, kdd, 0x01, &t.enc, err);
    if (rc == 0) {
        rc = div_one(c, method, &master->mac, kdd, 0x02, &t.mac, err);
    }
    if (rc == 0) {
        rc = div_one(c, method, &master->dek, kdd, 0x03, &t.dek, err);
    }
    if (rc == 0) {
        t.kvn = master->kvn;
        /* Move, not copy: t's owned token objects now belong to *out. */
        *out = t;
        OPENSSL_cleanse(&t, sizeof(t));
    }
    ota_scp02_keys_wipe(&t);
    return rc;
}

int ota_scp02_derive_key(struct ota_crypto *c, const struct ota_key *static_key, uint16_t constant,
                         uint16_t seq, struct ota_key *out, struct ota_err *err)
{
    uint8_t blk[16] = {0};
    int rc;

    if (!c || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: derive_key with a NULL argument");
    }
    rc = check_key(static_key, "static", err);
    if (rc < 0) {
        return rc;
    }
    /* E.4.1: derivation data = constant | sequence counter | 00 x 12, CBC, IV 0.
     * Through ota_crypto_derive so a token static key gives a token session key. */
    ota_put_u16(blk, constant);
    ota_put_u16(blk + 2, seq);
    return ota_crypto_derive(c, static_key, OTA_MODE_CBC, blk, sizeof(blk), OTA_CIPHER_3DES2, out,
                             err);
}

int ota_scp02_derive_session_keys(struct ota_crypto *c, const struct ota_scp02_keys *st,
                                  uint16_t seq, struct ota_scp02_session_keys *out,
                                  struct ota_err *err)
{
    struct ota_scp02_session_keys t;
    int rc;

    if (!out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: no session key output");
    }
    rc = check_keys(st, err);
    if (rc < 0) {
        return rc;
    }
    memset(&t, 0, sizeof(t));
    rc = ota_scp02_derive_key(c, &st->enc, OTA_SCP02_CONST_ENC, seq, &t.enc, err);
    if (rc == 0) {
        rc = ota_scp02_derive_key(c, &st->mac, OTA_SCP02_CONST_CMAC, seq, &t.cmac, err);
    }
    if (rc == 0) {
        rc = ota_scp02_derive_key(c, &st->mac, OTA_SCP02_CONST_RMAC, seq, &t.rmac, err);
    }
    if (rc == 0) {
        rc = ota_scp02_derive_key(c, &st->dek, OTA_SCP02_CONST_DEK, seq, &t.dek, err);
    }
    if (rc == 0) {
        /* Move: the owned token objects now belong to *out. */
        *out = t;
        OPENSSL_cleanse(&t, sizeof(t));
    }
    ota_scp02_session_keys_wipe(&t);
    return rc;
}

/* ---- cryptograms ---------------------------------------------------------- */

/*
 * E.4.2: "full triple DES MAC": 3DES-CBC under S-ENC, IV 0, over the 16
 * octets padded 80 00.. to 24; the cryptogram is the last cipher block.
 */
static int full_3des_mac(struct ota_crypto *c, const struct ota_key *s_enc, const uint8_t in[16],
                         uint8_t out[OTA_SCP02_CRYPTOGRAM_LEN], struct ota_err *err)
{
    uint8_t buf[24], res[24];
    int rc;

    rc = check_key(s_enc, "S-ENC", err);
    if (rc < 0) {
        return rc;
    }
    memcpy(buf, in, 16);
    buf[16] = 0x80;
    memset(buf + 17, 0, 7);
    rc = ota_crypto_cipher(c, s_enc, OTA_MODE_CBC, true, NULL, buf, sizeof(buf), res, err);
    if (rc == 0) {
        memcpy(out, res + 16, OTA_SCP02_CRYPTOGRAM_LEN);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(res, sizeof(res));
    return rc;
}

int ota_scp02_cryptogram_card(struct ota_crypto *c, const struct ota_key *s_enc,
                              const uint8_t host_challenge[OTA_SCP02_HOST_CHALLENGE_LEN],
                              uint16_t seq,
                              const uint8_t card_challenge[OTA_SCP02_CARD_CHALLENGE_LEN],
                              uint8_t out[OTA_SCP02_CRYPTOGRAM_LEN], struct ota_err *err)
{
    uint8_t in[16];

    if (!c || !host_challenge || !card_challenge || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: card cryptogram NULL argument");
    }
    /* E.4.2.1: host challenge | sequence counter | card challenge. */
    memcpy(in, host_challenge, 8);
    ota_put_u16(in + 8, seq);
    memcpy(in + 10, card_challenge, 6);
    return full_3des_mac(c, s_enc, in, out, err);
}

int ota_scp02_cryptogram_host(struct ota_crypto *c, const struct ota_key *s_enc,
                              const uint8_t host_challenge[OTA_SCP02_HOST_CHALLENGE_LEN],
                              uint16_t seq,
                              const uint8_t card_challenge[OTA_SCP02_CARD_CHALLENGE_LEN],
                              uint8_t out[OTA_SCP02_CRYPTOGRAM_LEN], struct ota_err *err)
{
    uint8_t in[16];

    if (!c || !host_challenge || !card_challenge || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: host cryptogram NULL argument");
    }
    /* E.4.2.2: sequence counter | card challenge | host challenge. */
    ota_put_u16(in, seq);
    memcpy(in + 2, card_challenge, 6);
    memcpy(in + 8, host_challenge, 8);
    return full_3des_mac(c, s_enc, in, out, err);
}

/* ---- sensitive data ------------------------------------------------------- */

static int dek_crypt(struct ota_crypto *c, const struct ota_key *session_dek, bool encrypt,
                     const uint8_t *in, size_t len, uint8_t *out, struct ota_err *err)
{
    int rc;

    if (!c || !in || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: DEK crypt NULL argument");
    }
    if (len == 0 || len % 8) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "scp02: sensitive data %zu octets, need a non-zero multiple of 8", len);
    }
    rc = check_key(session_dek, "session DEK", err);
    if (rc < 0) {
        return rc;
    }
    /* E.4.6: 3DES-ECB, no padding (key values are whole blocks). */
    return ota_crypto_cipher(c, session_dek, OTA_MODE_ECB, encrypt, NULL, in, len, out, err);
}

int ota_scp02_dek_encrypt(struct ota_crypto *c, const struct ota_key *session_dek,
                          const uint8_t *in, size_t len, uint8_t *out, struct ota_err *err)
{
    return dek_crypt(c, session_dek, true, in, len, out, err);
}

int ota_scp02_dek_decrypt(struct ota_crypto *c, const struct ota_key *session_dek,
                          const uint8_t *in, size_t len, uint8_t *out, struct ota_err *err)
{
    return dek_crypt(c, session_dek, false, in, len, out, err);
}

/* ---- C-MAC ---------------------------------------------------------------- */

/*
 * C-MAC of E.4.4 on the modified APDU: retail MAC (ISO 9797-1 algorithm 3)
 * under C-MAC over CLA' INS P1 P2 Lc' | plain data, padded 80 00.., where
 * CLA' carries the 04 bit and Lc' = data length + 8. Le never enters the MAC.
 * chain is the previous C-MAC; with "i" = 15/55 it is encrypted with single
 * DES under C-MAC[0..7] before use as ICV. chain NULL = ICV 0, unencrypted
 * (EXTERNAL AUTHENTICATE, E.5.2). Callers keep dlen <= 247.
 */
static int cmac_compute(struct ota_crypto *c, const struct ota_key *cmac, const uint8_t *chain,
                        uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data,
                        size_t dlen, uint8_t out[OTA_SCP02_MAC_LEN], struct ota_err *err)
{
    uint8_t buf[5 + OTA_APDU_MAX_DATA + 8];
    uint8_t icv[8] = {0};
    int rc, n;

    buf[0] = cla;
    buf[1] = ins;
    buf[2] = p1;
    buf[3] = p2;
    buf[4] = (uint8_t)(dlen + OTA_SCP02_MAC_LEN);
    if (dlen) {
        memcpy(buf + 5, data, dlen);
    }
    n = ota_pad_m2(buf, 5 + dlen, 8, buf, sizeof(buf));
    if (n < 0) {
        rc = ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                      "scp02: C-MAC input of %zu data octets too long", dlen);
        goto out;
    }
    if (chain) {
        rc = ota_crypto_des_k1_ecb(c, cmac, chain, icv, err);
        if (rc < 0) {
            goto out;
        }
    }
    rc = ota_crypto_retail_mac(c, cmac, icv, buf, (size_t)n, out, err);
out:
    OPENSSL_cleanse(icv, sizeof(icv));
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

/* CLA checks shared by wrap and unwrap: channels 0-3 only, ISO/GP class bytes. */
static int check_sm_cla(uint8_t cla, struct ota_err *err)
{
    if (cla & CLA_FURTHER_INTERINDUSTRY) {
        return ota_fail(
            err, -EINVAL, OTA_ERR_VALUE,
            "scp02: CLA %02X: channels 4-19 code secure messaging differently, not supported", cla);
    }
    return 0;
}

/* ---- state machine plumbing shared by host and card ----------------------- */

/* One row of a state table (STYLE 5); the host and the card each have one table. */
struct st_desc {
    const char *name;
    uint32_t next; /* mask of allowed next states */
};

static const char *st_name(const struct st_desc *tbl, unsigned n_states, unsigned st)
{
    if (st >= n_states) {
        return "unknown";
    }
    return tbl[st].name;
}

/*
 * The table check of every state change. A move the table does not allow is
 * a bug in this file, hence -EPROTO rather than an assert only so a release
 * build still refuses it. who prefixes the message ("scp02", "scp02 card").
 */
static int st_check(const struct st_desc *tbl, unsigned n_states, unsigned from, unsigned to,
                    const char *ev, const char *who, struct ota_err *err)
{
    if (!(tbl[from].next & ST_BIT(to))) {
        return ota_fail(err, -EPROTO, OTA_ERR_STATE, "%s: %s -> %s (%s) not allowed", who,
                        st_name(tbl, n_states, from), st_name(tbl, n_states, to), ev);
    }
    return 0;
}

/* An operation needs the machine (owner, a noun for the message) in state want. */
static int st_need(const void *owner, const char *noun, const struct st_desc *tbl,
                   unsigned n_states, unsigned cur, unsigned want, const char *what,
                   const char *who, struct ota_err *err)
{
    if (!owner) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "%s: %s without a %s", who, what, noun);
    }
    if (cur != want) {
        return ota_fail(err, -EPROTO, OTA_ERR_STATE, "%s: %s in state %s, needs %s", who, what,
                        st_name(tbl, n_states, cur), st_name(tbl, n_states, want));
    }
    return 0;
}

/* What a terminal state (and _fini) wipes, on either end. */
static void wipe_keys(struct ota_scp02_keys *keys, struct ota_scp02_session_keys *skeys,
                      uint8_t mac_chain[OTA_SCP02_MAC_LEN])
{
    ota_scp02_keys_wipe(keys);
    ota_scp02_session_keys_wipe(skeys);
    OPENSSL_cleanse(mac_chain, OTA_SCP02_MAC_LEN);
}

/* ---- host state machine --------------------------------------------------- */

static const struct st_desc host_st[OTA_SCP02_ST__COUNT] = {
    [OTA_SCP02_ST_NEW] = {"new",
                          ST_BIT(OTA_SCP02_ST_INIT_UPDATE_SENT) | ST_BIT(OTA_SCP02_ST_CLOSED)},
    [OTA_SCP02_ST_INIT_UPDATE_SENT] = {"init-update-sent", ST_BIT(OTA_SCP02_ST_CARD_VERIFIED) |
                                                               ST_BIT(OTA_SCP02_ST_FAILED) |
                                                               ST_BIT(OTA_SCP02_ST_CLOSED)},
    [OTA_SCP02_ST_CARD_VERIFIED] = {"card-verified", ST_BIT(OTA_SCP02_ST_EXT_AUTH_SENT) |
                                                         ST_BIT(OTA_SCP02_ST_FAILED) |
                                                         ST_BIT(OTA_SCP02_ST_CLOSED)},
    [OTA_SCP02_ST_EXT_AUTH_SENT] = {"ext-auth-sent", ST_BIT(OTA_SCP02_ST_OPEN) |
                                                         ST_BIT(OTA_SCP02_ST_FAILED) |
                                                         ST_BIT(OTA_SCP02_ST_CLOSED)},
    [OTA_SCP02_ST_OPEN] = {"open", ST_BIT(OTA_SCP02_ST_CLOSED)},
    [OTA_SCP02_ST_FAILED] = {"failed", ST_BIT(OTA_SCP02_ST_CLOSED)},
    [OTA_SCP02_ST_CLOSED] = {"closed", 0},
};

static const char *const host_ev_names[OTA_SCP02_EV__COUNT] = {
    [OTA_SCP02_EV_NONE] = "none",
    [OTA_SCP02_EV_INIT_UPDATE_BUILT] = "init-update-built",
    [OTA_SCP02_EV_CARD_CRYPTOGRAM_OK] = "card-cryptogram-ok",
    [OTA_SCP02_EV_INIT_UPDATE_BAD] = "init-update-bad",
    [OTA_SCP02_EV_EXT_AUTH_BUILT] = "ext-auth-built",
    [OTA_SCP02_EV_EXT_AUTH_OK] = "ext-auth-ok",
    [OTA_SCP02_EV_EXT_AUTH_REFUSED] = "ext-auth-refused",
    [OTA_SCP02_EV_CLOSE] = "close",
};

const char *ota_scp02_state_name(enum ota_scp02_state st)
{
    return st_name(host_st, OTA_SCP02_ST__COUNT, (unsigned)st);
}

const char *ota_scp02_event_name(enum ota_scp02_event ev)
{
    return ota_enum_name(host_ev_names, OTA_SCP02_EV__COUNT, ev);
}

static void host_wipe(struct ota_scp02_session *s)
{
    wipe_keys(&s->keys, &s->skeys, s->mac_chain);
}

/* The one place a host session changes state (STYLE 5). Terminal states wipe the keys. */
static int host_set_state(struct ota_scp02_session *s, enum ota_scp02_state to,
                          enum ota_scp02_event ev, struct ota_err *err)
{
    int rc = st_check(host_st, OTA_SCP02_ST__COUNT, s->state, to, ota_scp02_event_name(ev), "scp02",
                      err);

    if (rc < 0) {
        return rc;
    }
    s->prev_state = s->state;
    s->state = to;
    s->last_event = ev;
    if (to == OTA_SCP02_ST_FAILED || to == OTA_SCP02_ST_CLOSED) {
        host_wipe(s);
    }
    return 0;
}

/* A handshake failure: move to FAILED (allowed from every handshake state), keep rc. */
static int host_fail(struct ota_scp02_session *s, enum ota_scp02_event ev, int rc)
{
    (void)host_set_state(s, OTA_SCP02_ST_FAILED, ev, NULL);
    return rc;
}

static int host_need(const struct ota_scp02_session *s, enum ota_scp02_state st, const char *what,
                     struct ota_err *err)
{
    return st_need(s, "session", host_st, OTA_SCP02_ST__COUNT, s ? (unsigned)s->state : 0,
                   (unsigned)st, what, "scp02", err);
}

int ota_scp02_session_init(struct ota_scp02_session *s, struct ota_crypto *crypto,
                           const struct ota_scp02_keys *keys, uint8_t kvn, uint8_t sl,
                           const uint8_t host_challenge[OTA_SCP02_HOST_CHALLENGE_LEN],
                           struct ota_err *err)
{
    int rc;

    if (!s) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: session_init without a session");
    }
    memset(s, 0, sizeof(*s));
    if (!crypto || !host_challenge) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "scp02: session_init without crypto or host challenge");
    }
    rc = check_keys(keys, err);
    if (rc < 0) {
        return rc;
    }
    if (!sl_supported(sl)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "scp02: security level %02X (%s) not supported (R-MAC not implemented)", sl,
                        ota_scp02_sl_name((enum ota_scp02_sl)sl));
    }
    s->state = OTA_SCP02_ST_NEW;
    s->prev_state = OTA_SCP02_ST_NEW;
    s->last_event = OTA_SCP02_EV_NONE;
    s->crypto = crypto;
    keys_borrow(&s->keys, keys);
    s->div = OTA_SCP02_DIV_NONE;
    s->kvn_req = kvn;
    s->sl = sl;
    memcpy(s->host_challenge, host_challenge, OTA_SCP02_HOST_CHALLENGE_LEN);
    return 0;
}

int ota_scp02_session_set_div(struct ota_scp02_session *s, enum ota_scp02_div method,
                              struct ota_err *err)
{
    int rc = host_need(s, OTA_SCP02_ST_NEW, "set_div", err);

    if (rc < 0) {
        return rc;
    }
    if ((unsigned)method >= OTA_SCP02_DIV__COUNT) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: diversification method %d", (int)method);
    }
    s->div = method;
    return 0;
}

int ota_scp02_init_update(struct ota_scp02_session *s, uint8_t *dst, size_t cap,
                          struct ota_err *err)
{
    int rc = host_need(s, OTA_SCP02_ST_NEW, "INITIALIZE UPDATE", err);

    if (rc < 0) {
        return rc;
    }
    if (!dst || cap < OTA_SCP02_IU_CMD_LEN) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE,
                        "scp02: INITIALIZE UPDATE needs %d octets, buffer has %zu",
                        OTA_SCP02_IU_CMD_LEN, dst ? cap : 0);
    }
    /* E.5.1.1: P1 = key version (00 = first available), P2 = 00, Le = 00. */
    dst[0] = OTA_SCP02_CLA_GP;
    dst[1] = OTA_SCP02_INS_INIT_UPDATE;
    dst[2] = s->kvn_req;
    dst[3] = 0x00;
    dst[4] = OTA_SCP02_HOST_CHALLENGE_LEN;
    memcpy(dst + 5, s->host_challenge, OTA_SCP02_HOST_CHALLENGE_LEN);
    dst[13] = 0x00;
    rc = host_set_state(s, OTA_SCP02_ST_INIT_UPDATE_SENT, OTA_SCP02_EV_INIT_UPDATE_BUILT, err);
    if (rc < 0) {
        return rc;
    }
    return OTA_SCP02_IU_CMD_LEN;
}

int ota_scp02_on_init_update_resp(struct ota_scp02_session *s, const uint8_t *p, size_t len,
                                  struct ota_err *err)
{
    struct ota_scp02_keys div_keys;
    struct ota_scp02_session_keys sk;
    uint8_t cc[OTA_SCP02_CRYPTOGRAM_LEN], hc[OTA_SCP02_CRYPTOGRAM_LEN];
    const struct ota_scp02_keys *st;
    uint16_t sw, seq;
    size_t dlen;
    int rc = host_need(s, OTA_SCP02_ST_INIT_UPDATE_SENT, "INITIALIZE UPDATE response", err);

    if (rc < 0) {
        return rc;
    }
    if (!p && len) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: NULL response with length %zu", len);
    }
    memset(&div_keys, 0, sizeof(div_keys));
    memset(&sk, 0, sizeof(sk));
    if (len < 2) {
        rc = ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                      "scp02: INITIALIZE UPDATE response %zu octets, no SW", len);
        goto fail;
    }
    dlen = len - 2;
    sw = ota_get_u16(p + dlen);
    if (sw != 0x9000) {
        rc = ota_fail(err, -EACCES, OTA_ERR_SW, "scp02: INITIALIZE UPDATE answered SW %04X", sw);
        goto fail;
    }
    if (dlen < OTA_SCP02_IU_RESP_DATA_LEN) {
        rc = ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                      "scp02: INITIALIZE UPDATE response %zu octets, need 30", len);
        goto fail;
    }
    if (dlen > OTA_SCP02_IU_RESP_DATA_LEN) {
        rc = ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                      "scp02: INITIALIZE UPDATE response %zu octets, expected 30", len);
        goto fail;
    }
    /* E.5.1.4: KDD(10) | KVN(1) | SCP id(1) | seq(2) | card challenge(6) | cryptogram(8). */
    if (p[11] != OTA_SCP02_ID) {
        rc = ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                      "scp02: INITIALIZE UPDATE key information SCP id %02X, expected 02", p[11]);
        goto fail;
    }
    seq = ota_get_u16(p + 12);
    st = &s->keys;
    if (s->div != OTA_SCP02_DIV_NONE) {
        rc = ota_scp02_diversify(s->crypto, s->div, &s->keys, p, &div_keys, err);
        if (rc < 0) {
            goto fail;
        }
        st = &div_keys;
    }
    rc = ota_scp02_derive_session_keys(s->crypto, st, seq, &sk, err);
    if (rc < 0) {
        goto fail;
    }
    rc = ota_scp02_cryptogram_card(s->crypto, &sk.enc, s->host_challenge, seq, p + 14, cc, err);
    if (rc < 0) {
        goto fail;
    }
    /* E.5.1: a mismatch means wrong keys, KVN or diversification; stop here. */
    if (CRYPTO_memcmp(cc, p + 20, OTA_SCP02_CRYPTOGRAM_LEN) != 0) {
        rc = ota_fail(err, -EACCES, OTA_ERR_CRYPTOGRAM,
                      "scp02: card cryptogram mismatch (key version %02X, seq %04X)", p[10], seq);
        goto fail;
    }
    rc = ota_scp02_cryptogram_host(s->crypto, &sk.enc, s->host_challenge, seq, p + 14, hc, err);
    if (rc < 0) {
        goto fail;
    }
    rc = host_set_state(s, OTA_SCP02_ST_CARD_VERIFIED, OTA_SCP02_EV_CARD_CRYPTOGRAM_OK, err);
    if (rc < 0) {
        goto out;
    }
    memcpy(s->kdd, p, OTA_SCP02_KDD_LEN);
    /* Some cards report another KVN than asked (the pySim vector: 20 asked, 70 reported);
     * the cryptogram already proved the keys, so keep the value for the caller's log. */
    s->kvn_card = p[10];
    s->seq = seq;
    memcpy(s->card_challenge, p + 14, OTA_SCP02_CARD_CHALLENGE_LEN);
    memcpy(s->card_cryptogram, p + 20, OTA_SCP02_CRYPTOGRAM_LEN);
    memcpy(s->host_cryptogram, hc, OTA_SCP02_CRYPTOGRAM_LEN);
    s->skeys = sk; /* moved: the session now owns any token session objects */
    memset(&sk, 0, sizeof(sk));
    goto out;
fail:
    host_fail(s, OTA_SCP02_EV_INIT_UPDATE_BAD, rc);
out:
    ota_scp02_keys_wipe(&div_keys);
    ota_scp02_session_keys_wipe(&sk);
    OPENSSL_cleanse(cc, sizeof(cc));
    OPENSSL_cleanse(hc, sizeof(hc));
    return rc;
}

int ota_scp02_external_authenticate(struct ota_scp02_session *s, uint8_t *dst, size_t cap,
                                    struct ota_err *err)
{
    uint8_t mac[OTA_SCP02_MAC_LEN];
    uint8_t cla = OTA_SCP02_CLA_GP | OTA_SCP02_CLA_SM;
    int rc = host_need(s, OTA_SCP02_ST_CARD_VERIFIED, "EXTERNAL AUTHENTICATE", err);

    if (rc < 0) {
        return rc;
    }
    if (!dst || cap < OTA_SCP02_EA_CMD_LEN) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE,
                        "scp02: EXTERNAL AUTHENTICATE needs %d octets, buffer has %zu",
                        OTA_SCP02_EA_CMD_LEN, dst ? cap : 0);
    }
    /* E.5.2: always C-MACed, ICV 0; this MAC starts the chain. */
    rc = cmac_compute(s->crypto, &s->skeys.cmac, NULL, cla, OTA_SCP02_INS_EXT_AUTH, s->sl, 0x00,
                      s->host_cryptogram, OTA_SCP02_CRYPTOGRAM_LEN, mac, err);
    if (rc < 0) {
        return rc;
    }
    rc = host_set_state(s, OTA_SCP02_ST_EXT_AUTH_SENT, OTA_SCP02_EV_EXT_AUTH_BUILT, err);
    if (rc < 0) {
        goto out;
    }
    dst[0] = cla;
    dst[1] = OTA_SCP02_INS_EXT_AUTH;
    dst[2] = s->sl;
    dst[3] = 0x00;
    dst[4] = OTA_SCP02_CRYPTOGRAM_LEN + OTA_SCP02_MAC_LEN;
    memcpy(dst + 5, s->host_cryptogram, OTA_SCP02_CRYPTOGRAM_LEN);
    memcpy(dst + 13, mac, OTA_SCP02_MAC_LEN);
    memcpy(s->mac_chain, mac, OTA_SCP02_MAC_LEN);
    rc = OTA_SCP02_EA_CMD_LEN;
out:
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

int ota_scp02_on_ext_auth_resp(struct ota_scp02_session *s, uint16_t sw, struct ota_err *err)
{
    int rc = host_need(s, OTA_SCP02_ST_EXT_AUTH_SENT, "EXTERNAL AUTHENTICATE response", err);

    if (rc < 0) {
        return rc;
    }
    if (sw != 0x9000) {
        return host_fail(s, OTA_SCP02_EV_EXT_AUTH_REFUSED,
                         ota_fail(err, -EACCES, OTA_ERR_SW,
                                  "scp02: EXTERNAL AUTHENTICATE answered SW %04X", sw));
    }
    return host_set_state(s, OTA_SCP02_ST_OPEN, OTA_SCP02_EV_EXT_AUTH_OK, err);
}

int ota_scp02_wrap(struct ota_scp02_session *s, const uint8_t *apdu, size_t len, uint8_t *dst,
                   size_t cap, struct ota_err *err)
{
    uint8_t body[OTA_APDU_MAX_DATA + 8];
    uint8_t mac[OTA_SCP02_MAC_LEN];
    struct ota_apdu a, w;
    size_t blen;
    int rc = host_need(s, OTA_SCP02_ST_OPEN, "wrap", err);

    if (rc < 0) {
        return rc;
    }
    if (!apdu || !dst) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: wrap with a NULL buffer");
    }
    rc = ota_apdu_parse(apdu, len, &a, err);
    if (rc < 0) {
        return rc;
    }
    if (!sl_has_cmac(s->sl)) {
        return ota_apdu_build(&a, dst, cap, err);
    }
    rc = check_sm_cla(a.cla, err);
    if (rc < 0) {
        return rc;
    }
    if (a.cla & OTA_SCP02_CLA_SM) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "scp02: CLA %02X already has the secure messaging bit", a.cla);
    }
    if ((size_t)a.lc + OTA_SCP02_MAC_LEN > OTA_APDU_MAX_DATA) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "scp02: Lc %u + 8 octets of C-MAC exceeds 255", a.lc);
    }
    w = a;
    w.cla = (uint8_t)(a.cla | OTA_SCP02_CLA_SM);
    rc = cmac_compute(s->crypto, &s->skeys.cmac, s->mac_chain, w.cla, a.ins, a.p1, a.p2, a.data,
                      a.lc, mac, err);
    if (rc < 0) {
        goto out;
    }
    blen = a.lc;
    if (sl_has_cdec(s->sl) && a.lc > 0) {
        /* E.4.5: MAC over the plain data first (above), then pad 80 00.. and encrypt. */
        int n = ota_pad_m2(a.data, a.lc, 8, body, sizeof(body));
        if (n < 0 || (size_t)n + OTA_SCP02_MAC_LEN > OTA_APDU_MAX_DATA) {
            rc = ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                          "scp02: Lc %u padded and encrypted + 8 exceeds 255", a.lc);
            goto out;
        }
        blen = (size_t)n;
        rc = ota_crypto_cipher(s->crypto, &s->skeys.enc, OTA_MODE_CBC, true, NULL, body, blen, body,
                               err);
        if (rc < 0) {
            goto out;
        }
    } else if (a.lc > 0) {
        /* No C-DECRYPTION, or (GPPro) no data field to encrypt under SL 03. */
        memcpy(body, a.data, a.lc);
    }
    memcpy(body + blen, mac, OTA_SCP02_MAC_LEN);
    w.data = body;
    w.lc = (uint8_t)(blen + OTA_SCP02_MAC_LEN);
    rc = ota_apdu_build(&w, dst, cap, err);
    if (rc < 0) {
        goto out;
    }
    memcpy(s->mac_chain, mac, OTA_SCP02_MAC_LEN);
    s->n_wrapped++;
out:
    OPENSSL_cleanse(body, sizeof(body));
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

int ota_scp02_encrypt_sensitive(struct ota_scp02_session *s, const uint8_t *in, size_t len,
                                uint8_t *out, struct ota_err *err)
{
    if (!s) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02: encrypt_sensitive without a session");
    }
    if (s->state != OTA_SCP02_ST_CARD_VERIFIED && s->state != OTA_SCP02_ST_EXT_AUTH_SENT &&
        s->state != OTA_SCP02_ST_OPEN) {
        return ota_fail(err, -EPROTO, OTA_ERR_STATE,
                        "scp02: encrypt_sensitive in state %s, no session DEK",
                        ota_scp02_state_name(s->state));
    }
    return ota_scp02_dek_encrypt(s->crypto, &s->skeys.dek, in, len, out, err);
}

void ota_scp02_session_fini(struct ota_scp02_session *s)
{
    if (!s) {
        return;
    }
    if (s->state != OTA_SCP02_ST_CLOSED) {
        (void)host_set_state(s, OTA_SCP02_ST_CLOSED, OTA_SCP02_EV_CLOSE, NULL);
    }
    /* Whatever the state was, no key stays behind. */
    host_wipe(s);
}

/* ---- card state machine --------------------------------------------------- */

static const struct st_desc card_st[OTA_SCP02_CST__COUNT] = {
    [OTA_SCP02_CST_IDLE] = {"idle",
                            ST_BIT(OTA_SCP02_CST_INIT_UPDATED) | ST_BIT(OTA_SCP02_CST_CLOSED)},
    [OTA_SCP02_CST_INIT_UPDATED] = {"init-updated", ST_BIT(OTA_SCP02_CST_OPEN) |
                                                        ST_BIT(OTA_SCP02_CST_FAILED) |
                                                        ST_BIT(OTA_SCP02_CST_CLOSED)},
    [OTA_SCP02_CST_OPEN] = {"open", ST_BIT(OTA_SCP02_CST_FAILED) | ST_BIT(OTA_SCP02_CST_CLOSED)},
    [OTA_SCP02_CST_FAILED] = {"failed", ST_BIT(OTA_SCP02_CST_CLOSED)},
    [OTA_SCP02_CST_CLOSED] = {"closed", 0},
};

static const char *const card_ev_names[OTA_SCP02_CEV__COUNT] = {
    [OTA_SCP02_CEV_NONE] = "none",
    [OTA_SCP02_CEV_INIT_UPDATE] = "init-update",
    [OTA_SCP02_CEV_EXT_AUTH_OK] = "ext-auth-ok",
    [OTA_SCP02_CEV_EXT_AUTH_BAD] = "ext-auth-bad",
    [OTA_SCP02_CEV_SECURITY_ERROR] = "security-error",
    [OTA_SCP02_CEV_CLOSE] = "close",
};

const char *ota_scp02_card_state_name(enum ota_scp02_card_state st)
{
    return st_name(card_st, OTA_SCP02_CST__COUNT, (unsigned)st);
}

const char *ota_scp02_card_event_name(enum ota_scp02_card_event ev)
{
    return ota_enum_name(card_ev_names, OTA_SCP02_CEV__COUNT, ev);
}

static void card_wipe(struct ota_scp02_card *cd)
{
    wipe_keys(&cd->keys, &cd->skeys, cd->mac_chain);
}

/* The one place the card end changes state; terminal states wipe the keys. */
static int card_set_state(struct ota_scp02_card *cd, enum ota_scp02_card_state to,
                          enum ota_scp02_card_event ev, struct ota_err *err)
{
    int rc = st_check(card_st, OTA_SCP02_CST__COUNT, cd->state, to, ota_scp02_card_event_name(ev),
                      "scp02 card", err);

    if (rc < 0) {
        return rc;
    }
    cd->prev_state = cd->state;
    cd->state = to;
    cd->last_event = ev;
    if (to == OTA_SCP02_CST_FAILED || to == OTA_SCP02_CST_CLOSED) {
        card_wipe(cd);
    }
    return 0;
}

static int card_fail(struct ota_scp02_card *cd, enum ota_scp02_card_event ev, int rc)
{
    (void)card_set_state(cd, OTA_SCP02_CST_FAILED, ev, NULL);
    return rc;
}

static int card_need(const struct ota_scp02_card *cd, enum ota_scp02_card_state st,
                     const char *what, struct ota_err *err)
{
    return st_need(cd, "card", card_st, OTA_SCP02_CST__COUNT, cd ? (unsigned)cd->state : 0,
                   (unsigned)st, what, "scp02 card", err);
}

int ota_scp02_card_init(struct ota_scp02_card *cd, struct ota_crypto *crypto,
                        const struct ota_scp02_keys *keys, const uint8_t *kdd, uint16_t seq,
                        const uint8_t card_challenge[OTA_SCP02_CARD_CHALLENGE_LEN],
                        struct ota_err *err)
{
    int rc;

    if (!cd) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02 card: init without a card");
    }
    memset(cd, 0, sizeof(*cd));
    if (!crypto || !card_challenge) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "scp02 card: init without crypto or card challenge");
    }
    rc = check_keys(keys, err);
    if (rc < 0) {
        return rc;
    }
    cd->state = OTA_SCP02_CST_IDLE;
    cd->prev_state = OTA_SCP02_CST_IDLE;
    cd->crypto = crypto;
    keys_borrow(&cd->keys, keys);
    if (kdd) {
        memcpy(cd->kdd, kdd, OTA_SCP02_KDD_LEN);
    }
    cd->seq = seq;
    memcpy(cd->card_challenge, card_challenge, OTA_SCP02_CARD_CHALLENGE_LEN);
    return 0;
}

int ota_scp02_card_on_init_update(struct ota_scp02_card *cd, const uint8_t *apdu, size_t len,
                                  uint8_t *dst, size_t cap, struct ota_err *err)
{
    struct ota_scp02_session_keys sk;
    uint8_t cc[OTA_SCP02_CRYPTOGRAM_LEN];
    struct ota_apdu a;
    int rc = card_need(cd, OTA_SCP02_CST_IDLE, "INITIALIZE UPDATE", err);

    if (rc < 0) {
        return rc;
    }
    if (!apdu || !dst) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02 card: NULL buffer");
    }
    rc = ota_apdu_parse(apdu, len, &a, err);
    if (rc < 0) {
        return rc;
    }
    if ((a.cla & ~CLA_CHANNEL_MASK) != OTA_SCP02_CLA_GP || a.ins != OTA_SCP02_INS_INIT_UPDATE) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                        "scp02 card: CLA %02X INS %02X is not INITIALIZE UPDATE", a.cla, a.ins);
    }
    if (a.lc != OTA_SCP02_HOST_CHALLENGE_LEN) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "scp02 card: INITIALIZE UPDATE Lc %u, need 8", a.lc);
    }
    if (a.p2 != 0x00) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                        "scp02 card: INITIALIZE UPDATE P2 %02X, need 00", a.p2);
    }
    /* E.5.1.1: P1 00 = any key set; otherwise it must name ours (card answers 6A88). */
    if (a.p1 != 0x00 && a.p1 != cd->keys.kvn) {
        return ota_fail(err, -ENOENT, OTA_ERR_KEY,
                        "scp02 card: key version %02X asked, card has %02X", a.p1, cd->keys.kvn);
    }
    if (cap < OTA_SCP02_IU_RESP_LEN) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE,
                        "scp02 card: response needs 30 octets, buffer has %zu", cap);
    }
    memset(&sk, 0, sizeof(sk));
    rc = ota_scp02_derive_session_keys(cd->crypto, &cd->keys, cd->seq, &sk, err);
    if (rc < 0) {
        goto out;
    }
    rc = ota_scp02_cryptogram_card(cd->crypto, &sk.enc, a.data, cd->seq, cd->card_challenge, cc,
                                   err);
    if (rc < 0) {
        goto out;
    }
    rc = card_set_state(cd, OTA_SCP02_CST_INIT_UPDATED, OTA_SCP02_CEV_INIT_UPDATE, err);
    if (rc < 0) {
        goto out;
    }
    memcpy(cd->host_challenge, a.data, OTA_SCP02_HOST_CHALLENGE_LEN);
    cd->skeys = sk; /* moved, as on the host side */
    memset(&sk, 0, sizeof(sk));
    memcpy(dst, cd->kdd, OTA_SCP02_KDD_LEN);
    dst[10] = cd->keys.kvn;
    dst[11] = OTA_SCP02_ID;
    ota_put_u16(dst + 12, cd->seq);
    memcpy(dst + 14, cd->card_challenge, OTA_SCP02_CARD_CHALLENGE_LEN);
    memcpy(dst + 20, cc, OTA_SCP02_CRYPTOGRAM_LEN);
    ota_put_u16(dst + 28, 0x9000);
    rc = OTA_SCP02_IU_RESP_LEN;
out:
    ota_scp02_session_keys_wipe(&sk);
    OPENSSL_cleanse(cc, sizeof(cc));
    return rc;
}

int ota_scp02_card_on_ext_auth(struct ota_scp02_card *cd, const uint8_t *apdu, size_t len,
                               struct ota_err *err)
{
    uint8_t hc[OTA_SCP02_CRYPTOGRAM_LEN], mac[OTA_SCP02_MAC_LEN];
    struct ota_apdu a;
    int rc = card_need(cd, OTA_SCP02_CST_INIT_UPDATED, "EXTERNAL AUTHENTICATE", err);

    if (rc < 0) {
        return rc;
    }
    if (!apdu) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02 card: NULL buffer");
    }
    rc = ota_apdu_parse(apdu, len, &a, err);
    if (rc < 0) {
        return card_fail(cd, OTA_SCP02_CEV_EXT_AUTH_BAD, rc);
    }
    if ((a.cla & ~CLA_CHANNEL_MASK) != (OTA_SCP02_CLA_GP | OTA_SCP02_CLA_SM) ||
        a.ins != OTA_SCP02_INS_EXT_AUTH || a.p2 != 0x00) {
        return card_fail(cd, OTA_SCP02_CEV_EXT_AUTH_BAD,
                         ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                                  "scp02 card: %02X %02X .. %02X is not EXTERNAL AUTHENTICATE",
                                  a.cla, a.ins, a.p2));
    }
    if (a.lc != OTA_SCP02_CRYPTOGRAM_LEN + OTA_SCP02_MAC_LEN) {
        return card_fail(cd, OTA_SCP02_CEV_EXT_AUTH_BAD,
                         ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                                  "scp02 card: EXTERNAL AUTHENTICATE Lc %u, need 16", a.lc));
    }
    if (!sl_supported(a.p1)) {
        return card_fail(cd, OTA_SCP02_CEV_EXT_AUTH_BAD,
                         ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                                  "scp02 card: security level %02X (%s) not supported", a.p1,
                                  ota_scp02_sl_name((enum ota_scp02_sl)a.p1)));
    }
    rc = ota_scp02_cryptogram_host(cd->crypto, &cd->skeys.enc, cd->host_challenge, cd->seq,
                                   cd->card_challenge, hc, err);
    if (rc < 0) {
        goto fail;
    }
    if (CRYPTO_memcmp(hc, a.data, OTA_SCP02_CRYPTOGRAM_LEN) != 0) {
        rc = ota_fail(err, -EACCES, OTA_ERR_CRYPTOGRAM,
                      "scp02 card: host cryptogram mismatch (seq %04X)", cd->seq);
        goto fail;
    }
    rc = cmac_compute(cd->crypto, &cd->skeys.cmac, NULL, a.cla, a.ins, a.p1, a.p2, a.data,
                      OTA_SCP02_CRYPTOGRAM_LEN, mac, err);
    if (rc < 0) {
        goto fail;
    }
    if (CRYPTO_memcmp(mac, a.data + OTA_SCP02_CRYPTOGRAM_LEN, OTA_SCP02_MAC_LEN) != 0) {
        rc = ota_fail(err, -EACCES, OTA_ERR_BAD_CC,
                      "scp02 card: EXTERNAL AUTHENTICATE C-MAC mismatch");
        goto fail;
    }
    rc = card_set_state(cd, OTA_SCP02_CST_OPEN, OTA_SCP02_CEV_EXT_AUTH_OK, err);
    if (rc < 0) {
        goto out;
    }
    cd->sl = a.p1;
    memcpy(cd->mac_chain, mac, OTA_SCP02_MAC_LEN);
    goto out;
fail:
    card_fail(cd, OTA_SCP02_CEV_EXT_AUTH_BAD, rc);
out:
    OPENSSL_cleanse(hc, sizeof(hc));
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

/* Strip ISO 9797-1 method 2 padding; returns the plain length or -1. */
static int unpad_m2(const uint8_t *p, size_t len)
{
    size_t i = len;

    while (i > 0 && p[i - 1] == 0x00 && len - i < 8) {
        i--;
    }
    if (i == 0 || p[i - 1] != 0x80 || len - i >= 8) {
        return -1;
    }
    return (int)(i - 1);
}

int ota_scp02_card_unwrap(struct ota_scp02_card *cd, const uint8_t *apdu, size_t len, uint8_t *dst,
                          size_t cap, struct ota_err *err)
{
    uint8_t plain[OTA_APDU_MAX_DATA];
    uint8_t mac[OTA_SCP02_MAC_LEN];
    const uint8_t *rx_mac;
    struct ota_apdu a, out;
    size_t blen, plen;
    int rc = card_need(cd, OTA_SCP02_CST_OPEN, "unwrap", err);

    if (rc < 0) {
        return rc;
    }
    if (!apdu || !dst) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02 card: NULL buffer");
    }
    rc = ota_apdu_parse(apdu, len, &a, err);
    if (rc < 0) {
        return card_fail(cd, OTA_SCP02_CEV_SECURITY_ERROR, rc);
    }
    if (!sl_has_cmac(cd->sl)) {
        return ota_apdu_build(&a, dst, cap, err);
    }
    rc = check_sm_cla(a.cla, err);
    if (rc < 0) {
        return card_fail(cd, OTA_SCP02_CEV_SECURITY_ERROR, rc);
    }
    /* E.4.4: with C-MAC in force an unMACed command is a security error. */
    if (!(a.cla & OTA_SCP02_CLA_SM)) {
        return card_fail(cd, OTA_SCP02_CEV_SECURITY_ERROR,
                         ota_fail(err, -EACCES, OTA_ERR_PROTECTION,
                                  "scp02 card: CLA %02X without C-MAC under SL %02X", a.cla,
                                  cd->sl));
    }
    if (a.lc < OTA_SCP02_MAC_LEN) {
        return card_fail(cd, OTA_SCP02_CEV_SECURITY_ERROR,
                         ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                                  "scp02 card: Lc %u too short for a C-MAC", a.lc));
    }
    blen = (size_t)a.lc - OTA_SCP02_MAC_LEN;
    rx_mac = a.data + blen;
    plen = blen;
    if (sl_has_cdec(cd->sl) && blen > 0) {
        int n;

        if (blen % 8) {
            rc = ota_fail(err, -EBADMSG, OTA_ERR_PADDING,
                          "scp02 card: cipher data %zu octets, not a multiple of 8", blen);
            goto fail;
        }
        rc = ota_crypto_cipher(cd->crypto, &cd->skeys.enc, OTA_MODE_CBC, false, NULL, a.data, blen,
                               plain, err);
        if (rc < 0) {
            goto fail;
        }
        n = unpad_m2(plain, blen);
        if (n < 0) {
            rc = ota_fail(err, -EBADMSG, OTA_ERR_PADDING,
                          "scp02 card: decrypted data of %zu octets has no 80 00.. padding", blen);
            goto fail;
        }
        plen = (size_t)n;
    } else if (blen > 0) {
        memcpy(plain, a.data, blen);
    }
    rc = cmac_compute(cd->crypto, &cd->skeys.cmac, cd->mac_chain, a.cla, a.ins, a.p1, a.p2, plain,
                      plen, mac, err);
    if (rc < 0) {
        goto fail;
    }
    if (CRYPTO_memcmp(mac, rx_mac, OTA_SCP02_MAC_LEN) != 0) {
        rc = ota_fail(err, -EACCES, OTA_ERR_BAD_CC,
                      "scp02 card: C-MAC mismatch on CLA %02X INS %02X", a.cla, a.ins);
        goto fail;
    }
    out = a;
    out.cla = (uint8_t)(a.cla & ~OTA_SCP02_CLA_SM);
    out.lc = (uint8_t)plen;
    out.data = plen ? plain : NULL;
    rc = ota_apdu_build(&out, dst, cap, err);
    if (rc < 0) {
        goto out; /* -ENOSPC: nothing consumed, the chain stays */
    }
    memcpy(cd->mac_chain, mac, OTA_SCP02_MAC_LEN);
    goto out;
fail:
    card_fail(cd, OTA_SCP02_CEV_SECURITY_ERROR, rc);
out:
    OPENSSL_cleanse(plain, sizeof(plain));
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

int ota_scp02_card_decrypt_sensitive(struct ota_scp02_card *cd, const uint8_t *in, size_t len,
                                     uint8_t *out, struct ota_err *err)
{
    if (!cd) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "scp02 card: decrypt without a card");
    }
    if (cd->state != OTA_SCP02_CST_INIT_UPDATED && cd->state != OTA_SCP02_CST_OPEN) {
        return ota_fail(err, -EPROTO, OTA_ERR_STATE,
                        "scp02 card: decrypt_sensitive in state %s, no session DEK",
                        ota_scp02_card_state_name(cd->state));
    }
    return ota_scp02_dek_decrypt(cd->crypto, &cd->skeys.dek, in, len, out, err);
}

void ota_scp02_card_fini(struct ota_scp02_card *cd)
{
    if (!cd) {
        return;
    }
    if (cd->state != OTA_SCP02_CST_CLOSED) {
        (void)card_set_state(cd, OTA_SCP02_CST_CLOSED, OTA_SCP02_CEV_CLOSE, NULL);
    }
    card_wipe(cd);
}
