/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PKCS#11 token access for the key store's HSM backend (issue #7, spec
 * 5.8.9): one loaded module, one logged-in user session on one token.
 *
 * Keys live in the token as sensitive, non-extractable secret-key objects
 * found by their CKA_LABEL, each with only the usage of its role (P11_U_*).
 * p11_key() hands out a struct ota_key that names the object (no key
 * bytes): every ota_crypto primitive, SCP80 packet ciphering/CC, PoR checks,
 * SCP02 session-key derivation, cryptograms, C-MAC/C-DEC and DEK wrapping
 * run inside the token through it.
 *
 * Mechanisms used (the README lists the HSMs known to offer them):
 * CKM_DES3_ECB/CBC, CKM_AES_ECB/CBC, CKM_AES_CMAC, CKM_DES3_ECB_ENCRYPT_DATA /
 * CKM_DES3_CBC_ENCRYPT_DATA (SCP02 derivation), CKM_DES3_ECB / CKM_AES_ECB
 * unwrap and wrap (transport import, PUT KEY under DEK), CKM_AES_KEY_WRAP
 * (RFC 3394 transport import), CKM_DES3_CMAC (optional). Single DES keys
 * (old SIMs' KIc/KID) are held as K|K CKK_DES2 objects marked CKA_ID = {8}:
 * imported in clear only, never generated. p11_open() refuses a token that lacks a
 * mechanism every primitive needs; the wrap/unwrap ones are checked at use.
 *
 * SoftHSM2 2.6.1 (tested) unwraps only with CKM_AES_KEY_WRAP[_PAD] and wraps
 * only with those and CKM_AES_CBC: there p11_import_wrapped() (ECB) and 3DES
 * PUT KEY wrapping of a token key return -EOPNOTSUPP; p11_import_wrapped_kw()
 * and AES-DEK wrapping work.
 *
 * A 16-octet 3DES key may have a companion object "<label>#k1" holding K1|K1
 * (single DES under K1 for the retail MAC and ICV): import_clear,
 * import_wrapped and generate make it only with P11_F_K1; SCP02 session keys
 * get theirs derived in the token. destroy removes it.
 *
 * Prefix p11_. Not thread-safe: one struct p11 per thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/ota.h"

#define P11_LABEL_MAX 96 /* CKA_LABEL octets we create and look up */

struct p11;

struct p11_conf {
    const char *module;      /* path of the PKCS#11 module (.so) */
    const char *token_label; /* CKA token label (the slot is found by it) */
    const char *pin;         /* user PIN; wiped from our copies after login */
};

/*
 * Load the module, find the token, open a R/W session and log in as user.
 * 0, -ENOENT (module or token not found), -EACCES (PIN refused), -EIO.
 */
int p11_open(const struct p11_conf *c, struct p11 **out, struct ota_err *err) OTA_MUST_CHECK;

/* Log out, close the session, unload. NULL is a no-op. */
void p11_close(struct p11 *p);

/*
 * Create a token key object label from clear bytes (migration, tests, the
 * local backend's export path): sensitive, non-extractable, with the
 * P11_U_WORK usage. -EEXIST when label exists.
 */
int p11_import_clear(struct p11 *p, const struct ota_key *clear, const char *label,
                     struct ota_err *err) OTA_MUST_CHECK;

/* Flags of the import and generate calls. */
/* CKA_EXTRACTABLE true (still sensitive): the key may leave wrapped (PUT KEY) */
#define P11_F_WRAPPABLE 0x1u
/*
 * Make the "<label>#k1" companion (K1|K1: single DES under K1) of a 16-octet
 * 3DES key, for a key used directly in the retail MAC or the ICV. Off by
 * default: the companion is a single-DES oracle that lets a PIN holder attack
 * each half of the key on its own (about 2^56 work each). SCP02 static keys do
 * not need it: their session keys get companions derived inside the token.
 */
#define P11_F_K1 0x2u

/*
 * Key usage (CKA_ENCRYPT ... CKA_UNWRAP true; every other one is set false).
 * No P11_U_* bit in flags means P11_U_WORK. A token grants what the object
 * says, so each role gets only what it needs (docs/keys.md): a DEK that may
 * also decrypt would open what it wraps, a transport key that may decrypt
 * would open every captured import blob.
 */
#define P11_U_ENCRYPT 0x010u
#define P11_U_DECRYPT 0x020u
#define P11_U_SIGN 0x040u
#define P11_U_VERIFY 0x080u
#define P11_U_DERIVE 0x100u
#define P11_U_WRAP 0x200u
#define P11_U_UNWRAP 0x400u
#define P11_U_MASK 0x7f0u
/* ciphering, MACs and derivation; never wrap or unwrap (tests, vectors, bench) */
#define P11_U_WORK (P11_U_ENCRYPT | P11_U_DECRYPT | P11_U_SIGN | P11_U_VERIFY | P11_U_DERIVE)
/* transport key: unwraps imports only (the KCV check runs on the imported key) */
#define P11_U_TRANSPORT P11_U_UNWRAP
/* SD DEK: encrypts / wraps PUT KEY key data, derives the SCP02 session DEK; never decrypts */
#define P11_U_DEK (P11_U_ENCRYPT | P11_U_WRAP | P11_U_DERIVE)
/* SD ENC / MAC: derive SCP02 session keys; encrypt (KCV) */
#define P11_U_SD (P11_U_ENCRYPT | P11_U_DERIVE)
/* SCP80 KIc: ciphers commands, deciphers PoRs */
#define P11_U_KIC (P11_U_ENCRYPT | P11_U_DECRYPT)
/* SCP80 KID: CBC-MAC (encrypt) or CMAC (sign) */
#define P11_U_KID (P11_U_ENCRYPT | P11_U_SIGN)
/* platform KEK: decrypts personalization data (translation), encrypts (KCV) */
#define P11_U_KEK (P11_U_ENCRYPT | P11_U_DECRYPT)

/* p11_import_clear() with flags (P11_F_*, P11_U_*). */
int p11_import_clear_ex(struct p11 *p, const struct ota_key *clear, const char *label,
                        unsigned flags, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Unwrap wrapped (the key encrypted in ECB under the token key transport_label,
 * no padding) into a new token object label of cipher/len, then check its KCV
 * (ota_crypto_kcv semantics) against kcv inside the token; on mismatch the
 * object is destroyed and -EINVAL (OTA_ERR_BAD_CC) returned. Key bytes never
 * enter our memory. -ENOENT (no transport key), -EEXIST (label taken),
 * -EOPNOTSUPP (the token cannot unwrap in ECB: SoftHSM2).
 */
int p11_import_wrapped(struct p11 *p, const char *transport_label, enum ota_cipher cipher,
                       const uint8_t *wrapped, size_t len, const uint8_t kcv[3], const char *label,
                       struct ota_err *err) OTA_MUST_CHECK;

/*
 * The same with wrapped in RFC 3394 AES key wrap (CKM_AES_KEY_WRAP, default
 * IV; len = key length + 8) under an AES transport key. A 3DES2 key imported
 * this way has no K1|K1 companion: it serves everything but the retail MAC
 * itself (SCP02 static keys are fine: their session keys get companions).
 */
int p11_import_wrapped_kw(struct p11 *p, const char *transport_label, enum ota_cipher cipher,
                          const uint8_t *wrapped, size_t len, const uint8_t kcv[3],
                          const char *label, struct ota_err *err) OTA_MUST_CHECK;

/*
 * The two above with flags (P11_F_*, P11_U_*): P11_F_WRAPPABLE for keys a
 * key-update campaign later sends by PUT KEY (they leave the token only
 * wrapped under a DEK). The usage must include P11_U_ENCRYPT: the KCV check
 * encrypts with the new key (-EINVAL otherwise). The transport key needs
 * P11_U_UNWRAP.
 */
int p11_import_wrapped_ex(struct p11 *p, const char *transport_label, enum ota_cipher cipher,
                          const uint8_t *wrapped, size_t len, const uint8_t kcv[3],
                          const char *label, unsigned flags, struct ota_err *err) OTA_MUST_CHECK;
int p11_import_wrapped_kw_ex(struct p11 *p, const char *transport_label, enum ota_cipher cipher,
                             const uint8_t *wrapped, size_t len, const uint8_t kcv[3],
                             const char *label, unsigned flags, struct ota_err *err) OTA_MUST_CHECK;

/* Generate a key in the token (transport keys, tests). -EEXIST when label exists. */
int p11_generate(struct p11 *p, enum ota_cipher cipher, size_t len, const char *label,
                 struct ota_err *err) OTA_MUST_CHECK;

/* p11_generate() with flags (P11_U_*; P11_F_WRAPPABLE is ignored: generated keys stay in). */
int p11_generate_ex(struct p11 *p, enum ota_cipher cipher, size_t len, const char *label,
                    unsigned flags, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Fill *out with a reference to the object label (cipher and length read from
 * the token): usable by the ota_crypto calls its usage allows until
 * p11_close() (others fail -EPERM). Holds no key bytes; ota_key_wipe() on it
 * is harmless (borrowed). Keys derived from it (ota_crypto_derive, SCP02
 * session keys) are session objects with the usage of their base, owned by
 * their struct ota_key: ota_key_wipe() destroys them, p11_close() drops the rest.
 * -ENOENT when there is no such object.
 */
int p11_key(struct p11 *p, const char *label, struct ota_key *out,
            struct ota_err *err) OTA_MUST_CHECK;

/*
 * Destroy the object label (and its "#k1" companion). -ENOENT when absent.
 * Not OTA_MUST_CHECK: cleanup paths destroy best-effort.
 */
int p11_destroy(struct p11 *p, const char *label, struct ota_err *err);

/* Name of a CK_RV ("CKR_PIN_INCORRECT", ...; "CKR_?" when unknown). */
const char *p11_rv_name(unsigned long rv);

/*
 * For tests: *rv_out = the CK_RV of C_GetAttributeValue(CKA_VALUE) on k's
 * object (CKR_ATTRIBUTE_SENSITIVE = 0x11 proves the bytes cannot be read).
 * Whatever the token returned is wiped. 0 or -EINVAL.
 */
int p11_attr_value_rv(struct p11 *p, const struct ota_key *k, unsigned long *rv_out);
