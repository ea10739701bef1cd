/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GlobalPlatform SCP02 (GP Card Spec 2.2 Annex E), both ends of the channel:
 * static key sets and their diversification (EMV CPS, VISA2), session key
 * derivation (E.4.1), card and host cryptograms (E.4.2), INITIALIZE UPDATE
 * (E.5.1) and EXTERNAL AUTHENTICATE (E.5.2), C-MAC on the modified APDU with
 * ICV encryption (E.4.4, "i" = 15/55), C-DECRYPTION (E.4.5) and the
 * encryption of sensitive data under the session DEK (E.4.6).
 *
 * The host session (struct ota_scp02_session) and the card end used by the
 * simulator (struct ota_scp02_card) are explicit state machines: every state
 * change goes through one function that checks a table of allowed next
 * states and records the event that caused it.
 *
 * R-MAC (security levels 11 and 13) is not implemented: both ends refuse
 * those levels with -EINVAL / OTA_ERR_VALUE.
 *
 * Nothing here draws random numbers, logs or does I/O: the caller passes the
 * host challenge (and, on the card side, the card challenge and sequence
 * counter). Key material is wiped by the _fini functions and never appears
 * in an error message.
 *
 * Part of the ota/ public face: users include "ota/ota.h".
 */
#pragma once

#include "ota/ota_common.h"
#include "ota/ota_crypto.h"

#define OTA_SCP02_KEY_LEN 16 /* every SCP02 key is 2-key 3DES */
#define OTA_SCP02_HOST_CHALLENGE_LEN 8
#define OTA_SCP02_CARD_CHALLENGE_LEN 6
#define OTA_SCP02_CRYPTOGRAM_LEN 8
#define OTA_SCP02_MAC_LEN 8
#define OTA_SCP02_KDD_LEN 10          /* key diversification data, E.5.1.4 */
#define OTA_SCP02_ID 0x02             /* SCP identifier in the key information */
#define OTA_SCP02_IU_RESP_DATA_LEN 28 /* INITIALIZE UPDATE response data, no SW */
#define OTA_SCP02_IU_RESP_LEN 30      /* ... with SW 9000 */
#define OTA_SCP02_IU_CMD_LEN 14       /* 80 50 KVN 00 08 hc(8) 00 */
#define OTA_SCP02_EA_CMD_LEN 21       /* 84 82 SL 00 10 cryptogram(8) C-MAC(8) */
#define OTA_SCP02_CLA_GP 0x80         /* GP proprietary class, channel 0 */
#define OTA_SCP02_CLA_SM 0x04         /* ISO 7816-4 5.1.1: secure messaging bit */
#define OTA_SCP02_INS_INIT_UPDATE 0x50
#define OTA_SCP02_INS_EXT_AUTH 0x82

/* Derivation constants of GP Card Spec 2.2 E.4.1 (first two octets of the data). */
#define OTA_SCP02_CONST_CMAC 0x0101
#define OTA_SCP02_CONST_RMAC 0x0102
#define OTA_SCP02_CONST_DEK 0x0181
#define OTA_SCP02_CONST_ENC 0x0182

/* Security level, the P1 of EXTERNAL AUTHENTICATE (GP Card Spec 2.2 E.5.2.2). */
enum ota_scp02_sl {
    OTA_SCP02_SL_NONE = 0x00,
    OTA_SCP02_SL_CMAC = 0x01,
    OTA_SCP02_SL_CMAC_CDEC = 0x03,
    OTA_SCP02_SL_CMAC_RMAC = 0x11,      /* refused: R-MAC not implemented */
    OTA_SCP02_SL_CMAC_CDEC_RMAC = 0x13, /* refused: R-MAC not implemented */
};

/* Name of a security level ("none", "c-mac", "c-mac+c-dec", ...); never NULL. */
const char *ota_scp02_sl_name(enum ota_scp02_sl sl);

/* How the static keys come from a master key (GPPro names, reference 4.1). */
enum ota_scp02_div {
    OTA_SCP02_DIV_NONE = 0,  /* the keys are used as given */
    OTA_SCP02_DIV_EMV = 1,   /* EMV CPS 1.1 */
    OTA_SCP02_DIV_VISA2 = 2, /* VISA2 */
    OTA_SCP02_DIV__COUNT
};

/* Name of a diversification method ("none", "emv-cps", "visa2"); never NULL. */
const char *ota_scp02_div_name(enum ota_scp02_div m);

/* A static key set of one Security Domain key version. Wipe with _keys_wipe(). */
struct ota_scp02_keys {
    struct ota_key enc;
    struct ota_key mac;
    struct ota_key dek;
    uint8_t kvn;
};

/*
 * Fill *k from three 16-octet raw keys. Returns 0 or -EINVAL (OTA_ERR_ARG for
 * a NULL key, OTA_ERR_KEY for a length other than 16). *k is unchanged on
 * failure.
 */
int ota_scp02_keys_set(struct ota_scp02_keys *k, const uint8_t *enc, size_t enc_len,
                       const uint8_t *mac, size_t mac_len, const uint8_t *dek, size_t dek_len,
                       uint8_t kvn, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Fill *k from three keys (raw or token references, e.g. from p11_key()),
 * each a 16-octet 3DES2 key. Raw bytes are copied; token references are
 * borrowed (the caller keeps ownership, wiping *k releases nothing). Returns
 * 0 or -EINVAL (OTA_ERR_ARG, OTA_ERR_KEY); *k is unchanged on failure.
 */
int ota_scp02_keys_from(struct ota_scp02_keys *k, const struct ota_key *enc,
                        const struct ota_key *mac, const struct ota_key *dek, uint8_t kvn,
                        struct ota_err *err) OTA_MUST_CHECK;

/* Zeroise a key set (releasing token objects it owns). NULL is allowed; cannot fail. */
void ota_scp02_keys_wipe(struct ota_scp02_keys *k);

/*
 * Diversify each key of master (its enc, mac and dek; they may be equal) with
 * the 10-octet KDD, the first field of the INITIALIZE UPDATE response:
 * 3DES-ECB under the master key of the 16-octet block the method defines,
 * with k = 01 ENC, 02 MAC, 03 DEK. out->kvn = master->kvn.
 * Returns 0, -EINVAL (OTA_ERR_ARG: unknown method or NONE; OTA_ERR_KEY: a
 * master key is not 2-key 3DES) or -EIO (OTA_ERR_CRYPTO). *out is unchanged
 * on failure; out may equal master (its old keys are then overwritten, not
 * wiped). With token master keys the results are token objects owned by out.
 */
int ota_scp02_diversify(struct ota_crypto *c, enum ota_scp02_div method,
                        const struct ota_scp02_keys *master, const uint8_t kdd[OTA_SCP02_KDD_LEN],
                        struct ota_scp02_keys *out, struct ota_err *err) OTA_MUST_CHECK;

/* The four session keys of E.4.1. Wipe with _session_keys_wipe(). */
struct ota_scp02_session_keys {
    struct ota_key enc;  /* S-ENC: cryptograms, C-DECRYPTION */
    struct ota_key cmac; /* C-MAC */
    struct ota_key rmac; /* R-MAC (derived, not used: R-MAC is not implemented) */
    struct ota_key dek;  /* session DEK: sensitive data */
};

/*
 * One session key: 3DES-CBC (IV 0) under static_key of
 * constant(2) | seq(2) | 00 x 12 (E.4.1). constant is one of
 * OTA_SCP02_CONST_*. out is a 16-octet 3DES2 key; with a token static key it
 * is a token session object (with its K1|K1 companion) owned by *out, released
 * by ota_key_wipe() / _session_keys_wipe().
 * Returns 0, -EINVAL (OTA_ERR_KEY) or -EIO (OTA_ERR_CRYPTO); *out unchanged on failure.
 */
int ota_scp02_derive_key(struct ota_crypto *c, const struct ota_key *static_key, uint16_t constant,
                         uint16_t seq, struct ota_key *out, struct ota_err *err) OTA_MUST_CHECK;

/* All four session keys of a static key set; errors as ota_scp02_derive_key(). */
int ota_scp02_derive_session_keys(struct ota_crypto *c, const struct ota_scp02_keys *st,
                                  uint16_t seq, struct ota_scp02_session_keys *out,
                                  struct ota_err *err) OTA_MUST_CHECK;

/* Zeroise session keys. NULL is allowed; cannot fail. */
void ota_scp02_session_keys_wipe(struct ota_scp02_session_keys *k);

/*
 * Card cryptogram (E.4.2.1): full 3DES MAC under S-ENC, IV 0, of
 * host challenge | seq | card challenge, padded 80 00... Host cryptogram
 * (E.4.2.2): the same over seq | card challenge | host challenge.
 * Return 0, -EINVAL (OTA_ERR_KEY) or -EIO (OTA_ERR_CRYPTO).
 */
int ota_scp02_cryptogram_card(struct ota_crypto *c, const struct ota_key *s_enc,
                              const uint8_t host_challenge[OTA_SCP02_HOST_CHALLENGE_LEN],
                              uint16_t seq,
                              const uint8_t card_challenge[OTA_SCP02_CARD_CHALLENGE_LEN],
                              uint8_t out[OTA_SCP02_CRYPTOGRAM_LEN],
                              struct ota_err *err) OTA_MUST_CHECK;
int ota_scp02_cryptogram_host(struct ota_crypto *c, const struct ota_key *s_enc,
                              const uint8_t host_challenge[OTA_SCP02_HOST_CHALLENGE_LEN],
                              uint16_t seq,
                              const uint8_t card_challenge[OTA_SCP02_CARD_CHALLENGE_LEN],
                              uint8_t out[OTA_SCP02_CRYPTOGRAM_LEN],
                              struct ota_err *err) OTA_MUST_CHECK;

/*
 * Sensitive data (PUT KEY key values, encrypted STORE DATA; E.4.6):
 * 3DES-ECB under the session DEK, no padding. len must be a non-zero
 * multiple of 8. in == out is allowed. Returns 0, -EINVAL (OTA_ERR_ARG for
 * the length, OTA_ERR_KEY) or -EIO (OTA_ERR_CRYPTO).
 */
int ota_scp02_dek_encrypt(struct ota_crypto *c, const struct ota_key *session_dek,
                          const uint8_t *in, size_t len, uint8_t *out,
                          struct ota_err *err) OTA_MUST_CHECK;
int ota_scp02_dek_decrypt(struct ota_crypto *c, const struct ota_key *session_dek,
                          const uint8_t *in, size_t len, uint8_t *out,
                          struct ota_err *err) OTA_MUST_CHECK;

/* ---- host end ---------------------------------------------------------- */

/* Host session states. Values are stable; never renumber. */
enum ota_scp02_state {
    OTA_SCP02_ST_NEW = 0,              /* initialised, nothing sent */
    OTA_SCP02_ST_INIT_UPDATE_SENT = 1, /* INITIALIZE UPDATE built */
    OTA_SCP02_ST_CARD_VERIFIED = 2,    /* card cryptogram checked, session keys held */
    OTA_SCP02_ST_EXT_AUTH_SENT = 3,    /* EXTERNAL AUTHENTICATE built */
    OTA_SCP02_ST_OPEN = 4,             /* card accepted; commands may be wrapped */
    OTA_SCP02_ST_FAILED = 5,           /* terminal: handshake failed, keys wiped */
    OTA_SCP02_ST_CLOSED = 6,           /* terminal: _fini called, keys wiped */
    OTA_SCP02_ST__COUNT
};

/* Host session events, the causes of state changes. Values are stable. */
enum ota_scp02_event {
    OTA_SCP02_EV_NONE = 0,
    OTA_SCP02_EV_INIT_UPDATE_BUILT = 1,
    OTA_SCP02_EV_CARD_CRYPTOGRAM_OK = 2,
    OTA_SCP02_EV_INIT_UPDATE_BAD = 3, /* bad SW, length, SCP id or cryptogram */
    OTA_SCP02_EV_EXT_AUTH_BUILT = 4,
    OTA_SCP02_EV_EXT_AUTH_OK = 5,
    OTA_SCP02_EV_EXT_AUTH_REFUSED = 6,
    OTA_SCP02_EV_CLOSE = 7,
    OTA_SCP02_EV__COUNT
};

/* Names ("new", "init-update-sent", ...; "init-update-built", ...); never NULL. */
const char *ota_scp02_state_name(enum ota_scp02_state st);
const char *ota_scp02_event_name(enum ota_scp02_event ev);

/*
 * A host-side SCP02 session, embedded by its owner (_init/_fini). All fields
 * are read-only for users: state/last_event for logs ("old -> new (event)"),
 * the handshake values for test-vector runners. crypto is borrowed and must
 * outlive the session.
 */
struct ota_scp02_session {
    enum ota_scp02_state state;
    enum ota_scp02_state prev_state;
    enum ota_scp02_event last_event;
    struct ota_crypto *crypto;
    struct ota_scp02_keys keys; /* static (or master, when div != NONE) keys */
    enum ota_scp02_div div;
    uint8_t kvn_req; /* P1 of INITIALIZE UPDATE; 00 = any */
    uint8_t sl;      /* enum ota_scp02_sl */
    uint8_t host_challenge[OTA_SCP02_HOST_CHALLENGE_LEN];
    /* set by ota_scp02_on_init_update_resp() */
    uint8_t kdd[OTA_SCP02_KDD_LEN];
    uint8_t kvn_card; /* KVN the card reports; may differ from kvn_req */
    uint16_t seq;
    uint8_t card_challenge[OTA_SCP02_CARD_CHALLENGE_LEN];
    uint8_t card_cryptogram[OTA_SCP02_CRYPTOGRAM_LEN];
    uint8_t host_cryptogram[OTA_SCP02_CRYPTOGRAM_LEN];
    struct ota_scp02_session_keys skeys;
    uint8_t mac_chain[OTA_SCP02_MAC_LEN]; /* last C-MAC sent: next ICV before encryption */
    uint32_t n_wrapped;
};

/*
 * Set up a session in state NEW. keys is copied (the caller may wipe its
 * copy; token references are borrowed and must outlive the session); kvn is
 * the key version to ask for (00 = the card's default); sl is 00, 01 or 03;
 * host_challenge is 8 random octets the caller drew.
 * Returns 0 or -EINVAL: OTA_ERR_ARG (NULL pointer), OTA_ERR_KEY (a key is not
 * 2-key 3DES), OTA_ERR_VALUE (security level unknown, or 11/13: R-MAC is not
 * implemented). On failure *s is zeroed (safe to _fini).
 */
int ota_scp02_session_init(struct ota_scp02_session *s, struct ota_crypto *crypto,
                           const struct ota_scp02_keys *keys, uint8_t kvn, uint8_t sl,
                           const uint8_t host_challenge[OTA_SCP02_HOST_CHALLENGE_LEN],
                           struct ota_err *err) OTA_MUST_CHECK;

/*
 * Treat the session's keys as master keys and diversify them with the KDD
 * of the card's INITIALIZE UPDATE response before deriving session keys.
 * Only in state NEW. Returns 0, -EINVAL (OTA_ERR_ARG: unknown method) or
 * -EPROTO (OTA_ERR_STATE).
 */
int ota_scp02_session_set_div(struct ota_scp02_session *s, enum ota_scp02_div method,
                              struct ota_err *err) OTA_MUST_CHECK;

/*
 * Build INITIALIZE UPDATE: 80 50 KVN 00 08 host-challenge 00 (14 octets).
 * NEW -> INIT_UPDATE_SENT. Returns 14, -ENOSPC (OTA_ERR_NOSPACE; state
 * unchanged) or -EPROTO (OTA_ERR_STATE).
 */
int ota_scp02_init_update(struct ota_scp02_session *s, uint8_t *dst, size_t cap,
                          struct ota_err *err) OTA_MUST_CHECK;

/*
 * Take the card's INITIALIZE UPDATE response including its SW (30 octets:
 * KDD(10) KVN(1) SCP-id(1) seq(2) card-challenge(6) card-cryptogram(8) 90 00),
 * derive the session keys and verify the card cryptogram.
 * INIT_UPDATE_SENT -> CARD_VERIFIED, or -> FAILED (keys wiped) with:
 * -EBADMSG OTA_ERR_TRUNCATED (under 2 octets, or SW 9000 with under 28 data
 * octets), OTA_ERR_LENGTH (more than 28), OTA_ERR_VALUE (SCP identifier not
 * 02); -EACCES OTA_ERR_SW (SW not 9000; the SW is checked first) or
 * OTA_ERR_CRYPTOGRAM (card cryptogram mismatch); -EIO OTA_ERR_CRYPTO.
 * Returns 0 on success.
 * A card KVN different from a non-zero requested KVN is accepted and kept in
 * kvn_card (some cards report another value; the cryptogram decides).
 * -EPROTO (OTA_ERR_STATE) in another state, state unchanged.
 */
int ota_scp02_on_init_update_resp(struct ota_scp02_session *s, const uint8_t *p, size_t len,
                                  struct ota_err *err) OTA_MUST_CHECK;

/*
 * Build EXTERNAL AUTHENTICATE: 84 82 SL 00 10 host-cryptogram C-MAC, the
 * C-MAC with ICV 0 (E.5.2); it starts the C-MAC chain.
 * CARD_VERIFIED -> EXT_AUTH_SENT. Returns 21, -ENOSPC (state unchanged),
 * -EIO (OTA_ERR_CRYPTO) or -EPROTO (OTA_ERR_STATE).
 */
int ota_scp02_external_authenticate(struct ota_scp02_session *s, uint8_t *dst, size_t cap,
                                    struct ota_err *err) OTA_MUST_CHECK;

/*
 * The SW the card answered to EXTERNAL AUTHENTICATE. 9000: EXT_AUTH_SENT ->
 * OPEN, returns 0. Otherwise -> FAILED and -EACCES (OTA_ERR_SW).
 * -EPROTO (OTA_ERR_STATE) in another state.
 */
int ota_scp02_on_ext_auth_resp(struct ota_scp02_session *s, uint16_t sw,
                               struct ota_err *err) OTA_MUST_CHECK;

/*
 * Wrap one plain command APDU (CLA without the 04 bit) for the card, in
 * state OPEN. SL 00: copied unchanged. SL 01: CLA|04, Lc+8, C-MAC over that
 * modified header and the plain data with the encrypted previous C-MAC as
 * ICV, appended after the data. SL 03: the same C-MAC, then a data field (if
 * any) padded 80 00.. and 3DES-CBC encrypted under S-ENC. A case 2/4 Le is
 * kept after the C-MAC. Logical channel bits of CLA are kept.
 * Returns the wrapped length; on failure state and MAC chain are unchanged:
 * -EBADMSG (apdu parse errors), -EINVAL OTA_ERR_VALUE (CLA already has 04,
 * or a further-interindustry CLA 4x..7x), -EMSGSIZE OTA_ERR_OVERSIZE (data
 * over 255 after wrapping), -ENOSPC, -EIO, -EPROTO (OTA_ERR_STATE).
 */
int ota_scp02_wrap(struct ota_scp02_session *s, const uint8_t *apdu, size_t len, uint8_t *dst,
                   size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Encrypt sensitive data under this session's DEK (see ota_scp02_dek_encrypt),
 * in states CARD_VERIFIED, EXT_AUTH_SENT or OPEN; -EPROTO otherwise.
 */
int ota_scp02_encrypt_sensitive(struct ota_scp02_session *s, const uint8_t *in, size_t len,
                                uint8_t *out, struct ota_err *err) OTA_MUST_CHECK;

/* Wipe every key and move to CLOSED. NULL and repeated calls are allowed. */
void ota_scp02_session_fini(struct ota_scp02_session *s);

/* ---- card end (simulator) --------------------------------------------- */

/* Card states. Values are stable; never renumber. */
enum ota_scp02_card_state {
    OTA_SCP02_CST_IDLE = 0,         /* waiting for INITIALIZE UPDATE */
    OTA_SCP02_CST_INIT_UPDATED = 1, /* answered; waiting for EXTERNAL AUTHENTICATE */
    OTA_SCP02_CST_OPEN = 2,         /* host authenticated; unwrapping commands */
    OTA_SCP02_CST_FAILED = 3,       /* terminal: security error, keys wiped */
    OTA_SCP02_CST_CLOSED = 4,       /* terminal: _fini called */
    OTA_SCP02_CST__COUNT
};

/* Card events. Values are stable. */
enum ota_scp02_card_event {
    OTA_SCP02_CEV_NONE = 0,
    OTA_SCP02_CEV_INIT_UPDATE = 1,
    OTA_SCP02_CEV_EXT_AUTH_OK = 2,
    OTA_SCP02_CEV_EXT_AUTH_BAD = 3,   /* host cryptogram or C-MAC wrong */
    OTA_SCP02_CEV_SECURITY_ERROR = 4, /* wrapped command failed verification */
    OTA_SCP02_CEV_CLOSE = 5,
    OTA_SCP02_CEV__COUNT
};

const char *ota_scp02_card_state_name(enum ota_scp02_card_state st);
const char *ota_scp02_card_event_name(enum ota_scp02_card_event ev);

/* The card end of one SCP02 session; fields are read-only for users. */
struct ota_scp02_card {
    enum ota_scp02_card_state state;
    enum ota_scp02_card_state prev_state;
    enum ota_scp02_card_event last_event;
    struct ota_crypto *crypto; /* borrowed */
    struct ota_scp02_keys keys;
    uint8_t kdd[OTA_SCP02_KDD_LEN];
    uint16_t seq;
    uint8_t card_challenge[OTA_SCP02_CARD_CHALLENGE_LEN];
    uint8_t host_challenge[OTA_SCP02_HOST_CHALLENGE_LEN];
    uint8_t sl;
    struct ota_scp02_session_keys skeys;
    uint8_t mac_chain[OTA_SCP02_MAC_LEN]; /* last C-MAC accepted */
};

/*
 * Set up the card end in state IDLE with its static keys (copied), the KDD
 * it reports (NULL = 10 x 00), its sequence counter and the card challenge
 * the caller drew. Returns 0 or -EINVAL (OTA_ERR_ARG, OTA_ERR_KEY); on
 * failure *cd is zeroed.
 */
int ota_scp02_card_init(struct ota_scp02_card *cd, struct ota_crypto *crypto,
                        const struct ota_scp02_keys *keys, const uint8_t *kdd, uint16_t seq,
                        const uint8_t card_challenge[OTA_SCP02_CARD_CHALLENGE_LEN],
                        struct ota_err *err) OTA_MUST_CHECK;

/*
 * Answer INITIALIZE UPDATE (case 4, 80 50 KVN 00 08 hc [Le]): derive the
 * session keys and write the 28-octet response plus 90 00 into dst.
 * IDLE -> INIT_UPDATED. Returns 30; -EBADMSG (OTA_ERR_TRUNCATED/LENGTH/VALUE
 * for a malformed command), -ENOENT OTA_ERR_KEY (P1 names another KVN),
 * -ENOSPC, -EIO, -EPROTO (OTA_ERR_STATE); the state is unchanged on failure.
 */
int ota_scp02_card_on_init_update(struct ota_scp02_card *cd, const uint8_t *apdu, size_t len,
                                  uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Verify EXTERNAL AUTHENTICATE (84 82 SL 00 10 cryptogram C-MAC).
 * INIT_UPDATED -> OPEN and 0 (the card answers 9000). A wrong host
 * cryptogram (-EACCES OTA_ERR_CRYPTOGRAM) or C-MAC (-EACCES OTA_ERR_BAD_CC)
 * moves to FAILED; a malformed command (-EBADMSG) or a security level
 * other than 00/01/03 (-EINVAL OTA_ERR_VALUE) also moves to FAILED.
 * -EPROTO (OTA_ERR_STATE) in another state.
 */
int ota_scp02_card_on_ext_auth(struct ota_scp02_card *cd, const uint8_t *apdu, size_t len,
                               struct ota_err *err) OTA_MUST_CHECK;

/*
 * Verify and unwrap one command in state OPEN: check the C-MAC against the
 * ICV chain, decrypt the data under SL 03, and write the plain APDU (CLA
 * without 04) into dst. Returns its length. A MAC mismatch (-EACCES
 * OTA_ERR_BAD_CC), bad padding (-EBADMSG OTA_ERR_PADDING), a command
 * without the 04 CLA bit (-EACCES OTA_ERR_PROTECTION) or a malformed
 * command (-EBADMSG) moves to FAILED, as a card closes the channel on a
 * security error (E.4.4). -ENOSPC leaves the state and chain unchanged.
 */
int ota_scp02_card_unwrap(struct ota_scp02_card *cd, const uint8_t *apdu, size_t len, uint8_t *dst,
                          size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/* Decrypt sensitive data under the card's session DEK (INIT_UPDATED or OPEN). */
int ota_scp02_card_decrypt_sensitive(struct ota_scp02_card *cd, const uint8_t *in, size_t len,
                                     uint8_t *out, struct ota_err *err) OTA_MUST_CHECK;

/* Wipe every key and move to CLOSED. NULL and repeated calls are allowed. */
void ota_scp02_card_fini(struct ota_scp02_card *cd);
