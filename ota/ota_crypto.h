/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Block-cipher primitives of the OTA codecs, over OpenSSL 3 EVP/EVP_MAC only:
 * DES, 2-key and 3-key 3DES (EDE), AES-128/192/256 in CBC (IV 0 unless given)
 * and ECB without padding; the DES/3DES CBC-MAC of TS 102 225 5.1.3 (zero
 * fill to the block, not sent), AES-CMAC (SP 800-38B), the ISO 9797-1 MAC
 * algorithm 3 "retail MAC" of GP SCP02, key check values and the RC CRCs.
 *
 * Single DES runs as 3DES-EDE with K|K|K: OpenSSL 3 moved single DES to the
 * legacy provider, and EDE with three equal keys is the same permutation.
 *
 * struct ota_crypto holds algorithms fetched once and reusable contexts, so
 * the per-packet path does no provider look-ups. It is not thread-safe: use
 * one per thread. Every function checks every OpenSSL return and cleans
 * stack copies of keys before it returns.
 *
 * A key may instead live in an external backend (struct ota_key_ext_ops, the
 * PKCS#11 token of gateway/p11.c): every primitive below then runs there,
 * and no function of ota/ reads key bytes outside crypto.c, so SCP80, SCP02
 * (session keys included, via ota_crypto_derive) and PUT KEY (via
 * ota_crypto_wrap) work unchanged with token keys.
 */
#pragma once

#include "ota/ota_common.h"

enum ota_cipher {
    OTA_CIPHER_NONE = 0,
    OTA_CIPHER_DES = 1,   /* single DES, 8-octet key */
    OTA_CIPHER_3DES2 = 2, /* 3DES EDE with K1|K2 (K3 = K1), 16-octet key */
    OTA_CIPHER_3DES3 = 3, /* 3DES EDE with K1|K2|K3, 24-octet key */
    OTA_CIPHER_AES = 4,   /* AES, 16/24/32-octet key */
};

enum ota_mode {
    OTA_MODE_CBC = 0,
    OTA_MODE_ECB = 1,
};

#define OTA_KEY_MAX 32

struct ota_key;

/*
 * A key backend outside this process (a PKCS#11 token, gateway/p11.c): the
 * key is an object there and its bytes never enter our memory. Every
 * ota_crypto primitive called with such a key runs through these ops. Each
 * op returns 0 (wrap: the wrapped length) or a negative errno and fills err.
 *
 * cipher: as ota_crypto_cipher() (len already checked against the block).
 * cmac:   as ota_crypto_cmac(), the full tag.
 * derive: encrypt data (len a multiple of the block) under base in mode
 *         (CBC with a zero IV, or ECB) and make the result a new key of
 *         out_cipher held by the backend; *out gets an owned reference
 *         (OTA_KEY_OWNED) whose ota_key_wipe() releases the object. A
 *         16-octet 3DES result also gets its K1|K1 companion (ext_k1).
 * wrap:   encrypt key's value under kek (mode as derive) into out; both keys
 *         belong to this backend instance.
 * release: destroy an owned object (and its companion); cannot fail.
 */
struct ota_key_ext_ops {
    const char *name;
    int (*cipher)(void *ctx, const struct ota_key *k, enum ota_mode mode, bool encrypt,
                  const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out,
                  struct ota_err *err);
    int (*cmac)(void *ctx, const struct ota_key *k, const uint8_t *in, size_t len, uint8_t out[16],
                size_t *out_len, struct ota_err *err);
    int (*derive)(void *ctx, const struct ota_key *base, enum ota_mode mode, const uint8_t *data,
                  size_t len, enum ota_cipher out_cipher, struct ota_key *out, struct ota_err *err);
    int (*wrap)(void *ctx, const struct ota_key *kek, enum ota_mode mode, const struct ota_key *key,
                uint8_t *out, size_t cap, struct ota_err *err);
    void (*release)(void *ctx, const struct ota_key *k);
};

/*
 * ota_key.owned: ota_key_wipe() releases the backend object. A whole-word
 * marker rather than a bit, so the stack garbage of a never-set key that
 * code wipes on a common exit path cannot look owned.
 */
#define OTA_KEY_OWNED 0x6f776e64u /* "ownd" */

/*
 * A symmetric key: raw bytes, or (ext != NULL) a reference to an object of
 * an external backend, where bytes stay zero. Wipe it with ota_key_wipe()
 * when done.
 *
 * Ownership of external objects: a reference handed out by a backend lookup
 * (p11_key()) is borrowed: wiping it only clears the struct. A key made by
 * ota_crypto_derive() is owned (OTA_KEY_OWNED): ota_key_wipe() destroys
 * the object, so exactly one copy of an owned key may be wiped; copy it with
 * ota_key_borrow() and hand it on with ota_key_move().
 */
struct ota_key {
    enum ota_cipher cipher;
    uint8_t len;
    uint8_t bytes[OTA_KEY_MAX];
    const struct ota_key_ext_ops *ext; /* NULL = raw key in bytes */
    void *ext_ctx;                     /* the backend instance, borrowed */
    uint64_t ext_handle;               /* the object (CK_OBJECT_HANDLE) */
    uint64_t ext_k1;                   /* 3DES2: K1|K1 companion object, 0 = none */
    uint32_t owned;                    /* OTA_KEY_OWNED or 0 (borrowed) */
};

/* Name of a cipher ("DES", "3DES-2key", "3DES-3key", "AES"). */
const char *ota_cipher_name(enum ota_cipher c);

/* Block length in octets: 8 for DES/3DES, 16 for AES, 0 for NONE. */
size_t ota_cipher_block_len(enum ota_cipher c);

/*
 * Fill *k from raw bytes after checking the length against the cipher
 * (DES 8, 3DES2 16, 3DES3 24, AES 16/24/32). Returns 0 or -EINVAL
 * (OTA_ERR_KEY); *k is unchanged on failure.
 */
int ota_key_set(struct ota_key *k, enum ota_cipher c, const uint8_t *bytes, size_t len,
                struct ota_err *err) OTA_MUST_CHECK;

/*
 * Zeroise a key (OPENSSL_cleanse). An owned external key first has its
 * backend object released. NULL is allowed.
 */
void ota_key_wipe(struct ota_key *k);

/* True when k refers to an external backend object (no bytes here). */
bool ota_key_is_ext(const struct ota_key *k);

/*
 * *dst = *src without ownership: for raw keys a copy of the bytes (wipe it
 * too), for external keys a reference whose wipe releases nothing.
 */
void ota_key_borrow(struct ota_key *dst, const struct ota_key *src);

/*
 * *dst = *src, then clear src without releasing anything: ownership moves.
 * dst's previous content is overwritten, not wiped.
 */
void ota_key_move(struct ota_key *dst, struct ota_key *src);

struct ota_crypto;

/*
 * Create a crypto context; *out is owned by the caller and freed with
 * ota_crypto_free(). Returns 0, -ENOMEM or -EIO (OTA_ERR_CRYPTO) when
 * OpenSSL lacks an algorithm.
 */
int ota_crypto_new(struct ota_crypto **out, struct ota_err *err) OTA_MUST_CHECK;
void ota_crypto_free(struct ota_crypto *c);

/*
 * Encrypt or decrypt len octets (a multiple of the block length) from in to
 * out (in == out allowed) with no padding. iv is NULL for an all-zero IV, or
 * one block; ignored in ECB mode.
 * Returns 0, -EINVAL (OTA_ERR_KEY / OTA_ERR_PADDING when len is unaligned)
 * or -EIO (OTA_ERR_CRYPTO).
 */
int ota_crypto_cipher(struct ota_crypto *c, const struct ota_key *k, enum ota_mode mode,
                      bool encrypt, const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out,
                      struct ota_err *err) OTA_MUST_CHECK;

/*
 * CBC-MAC of TS 102 225 for DES/3DES keys: CBC from iv (NULL = zero) over in,
 * the last partial block filled with 00 for the computation only; out gets
 * the last cipher block (8 octets). len 0 MACs one zero block.
 */
int ota_crypto_cbc_mac(struct ota_crypto *c, const struct ota_key *k, const uint8_t *iv,
                       const uint8_t *in, size_t len, uint8_t out[8],
                       struct ota_err *err) OTA_MUST_CHECK;

/*
 * CMAC (NIST SP 800-38B) with an AES key (or a DES/3DES key, 8-octet block).
 * out receives the full tag (16 octets for AES, 8 for DES); *out_len is set.
 * Callers truncate to the leftmost octets they need.
 */
int ota_crypto_cmac(struct ota_crypto *c, const struct ota_key *k, const uint8_t *in, size_t len,
                    uint8_t out[16], size_t *out_len, struct ota_err *err) OTA_MUST_CHECK;

/*
 * ISO 9797-1 MAC algorithm 3 (retail MAC) with a 16-octet 3DES2 key: single
 * DES CBC under K1 from icv (NULL = zero) over all blocks, final block then
 * decrypted with K2 and encrypted with K1. len must be a non-zero multiple of
 * 8: the caller applies ISO 9797-1 padding method 2 (80 00..) first.
 */
int ota_crypto_retail_mac(struct ota_crypto *c, const struct ota_key *k, const uint8_t *icv,
                          const uint8_t *in, size_t len, uint8_t out[8],
                          struct ota_err *err) OTA_MUST_CHECK;

/*
 * Key check value, 3 octets: DES/3DES encrypt 8 x 00 (ECB); AES encrypts
 * 16 x 01 (GP Card Spec 2.2 Amendment D) and takes the leftmost 3 octets.
 */
int ota_crypto_kcv(struct ota_crypto *c, const struct ota_key *k, uint8_t out[3],
                   struct ota_err *err) OTA_MUST_CHECK;

/*
 * Single DES ECB encryption of one block under K1, the first 8 octets of a
 * 16-octet 3DES2 key (SCP02 ICV encryption, E.4.4). External keys use their
 * K1|K1 companion object: -ENOKEY (OTA_ERR_KEY) when it has none.
 */
int ota_crypto_des_k1_ecb(struct ota_crypto *c, const struct ota_key *k, const uint8_t in[8],
                          uint8_t out[8], struct ota_err *err) OTA_MUST_CHECK;

/*
 * Key derivation by encryption (SCP02 E.4.1 session keys, EMV/VISA2
 * diversification): encrypt data (len a multiple of base's block, at most
 * 32 octets) under base in mode (CBC with a zero IV, or ECB) and make the
 * result a key of out_cipher whose length is len. A raw base gives a raw
 * key. An external base gives an owned object in the same backend (the
 * bytes never leave it); for a 16-octet 3DES result the backend also makes
 * the K1|K1 companion ota_crypto_retail_mac() and ota_crypto_des_k1_ecb()
 * need. *out is overwritten (not wiped) on success, unchanged on failure.
 * Returns 0, -EINVAL (OTA_ERR_KEY / OTA_ERR_ARG), -EIO or a backend error.
 */
int ota_crypto_derive(struct ota_crypto *c, const struct ota_key *base, enum ota_mode mode,
                      const uint8_t *data, size_t len, enum ota_cipher out_cipher,
                      struct ota_key *out, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Encrypt key's value under kek in mode (IV 0, no padding): PUT KEY key
 * data (GP 11.8.2.3). A raw key is encrypted with ota_crypto_cipher()
 * (kek raw or external); an external key is wrapped inside its backend
 * (C_WrapKey), which needs kek in the same backend instance and the key
 * extractable. Returns the wrapped length (key->len), -ENOSPC, -EINVAL
 * (OTA_ERR_KEY: kek and key cannot meet, length not block-aligned), or a
 * backend error (-EOPNOTSUPP when the token lacks the wrap mechanism).
 */
int ota_crypto_wrap(struct ota_crypto *c, const struct ota_key *kek, enum ota_mode mode,
                    const struct ota_key *key, uint8_t *out, size_t cap,
                    struct ota_err *err) OTA_MUST_CHECK;

/*
 * ISO 9797-1 padding method 2 into dst: copy in, append 80 and zeros up to a
 * multiple of block (always at least one octet). Returns the padded length,
 * or -ENOSPC when cap is too small.
 */
int ota_pad_m2(const uint8_t *in, size_t len, size_t block, uint8_t *dst, size_t cap);

/* RC of TS 102 225 5.1.2: CRC-16 of ISO/IEC 13239 (X.25) and CRC-32 (zlib / ISO-HDLC). */
uint16_t ota_crc16(const uint8_t *p, size_t len);
uint32_t ota_crc32(const uint8_t *p, size_t len);
