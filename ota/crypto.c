/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Block-cipher primitives for SCP80 (TS 102 225 5.1.2/5.1.3), SCP02 (GP Card
 * Spec 2.2 Annex E) and GP key check values, all through OpenSSL 3 EVP.
 *
 * Algorithms are fetched once per struct ota_crypto and contexts are reused:
 * in OpenSSL 3 an implicit fetch per call costs more than the cipher itself on
 * the short packets of OTA. Single DES runs as DES-EDE3 with K|K|K (see the
 * header); the retail MAC is DES-CBC under K1 for all but the last block and
 * one DES-EDE (K1,K2) block at the end, which is ISO 9797-1 algorithm 3.
 *
 * Keys held by an external backend (struct ota_key_ext_ops, a PKCS#11 token)
 * are dispatched to it at the three places that touch key material: the
 * block cipher, CMAC and derivation/wrapping. Everything built on the cipher
 * (CBC-MAC, retail MAC, KCV) then works unchanged; the retail MAC's single
 * DES under K1 uses the key's K1|K1 companion object, because 3DES-EDE with
 * K1|K1 is single DES under K1 and tokens rarely offer single DES.
 */
#include "ota/ota_crypto.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <osmocom/core/crc16.h>
#include <zlib.h>

enum {
    ALG_EDE3_CBC,
    ALG_EDE3_ECB,
    ALG_EDE_CBC,
    ALG_EDE_ECB,
    ALG_AES128_CBC,
    ALG_AES192_CBC,
    ALG_AES256_CBC,
    ALG_AES128_ECB,
    ALG_AES192_ECB,
    ALG_AES256_ECB,
    ALG__COUNT
};

static const char *const alg_names[ALG__COUNT] = {
    [ALG_EDE3_CBC] = "DES-EDE3-CBC",  [ALG_EDE3_ECB] = "DES-EDE3-ECB",
    [ALG_EDE_CBC] = "DES-EDE-CBC",    [ALG_EDE_ECB] = "DES-EDE-ECB",
    [ALG_AES128_CBC] = "AES-128-CBC", [ALG_AES192_CBC] = "AES-192-CBC",
    [ALG_AES256_CBC] = "AES-256-CBC", [ALG_AES128_ECB] = "AES-128-ECB",
    [ALG_AES192_ECB] = "AES-192-ECB", [ALG_AES256_ECB] = "AES-256-ECB",
};

struct ota_crypto {
    EVP_CIPHER *alg[ALG__COUNT];
    EVP_CIPHER_CTX *ctx;
    EVP_MAC *cmac;
    EVP_MAC_CTX *mac_ctx;
};

const char *ota_cipher_name(enum ota_cipher c)
{
    switch (c) {
    case OTA_CIPHER_DES:
        return "DES";
    case OTA_CIPHER_3DES2:
        return "3DES-2key";
    case OTA_CIPHER_3DES3:
        return "3DES-3key";
    case OTA_CIPHER_AES:
        return "AES";
    case OTA_CIPHER_NONE:
        return "none";
    }
    return "unknown";
}

size_t ota_cipher_block_len(enum ota_cipher c)
{
    switch (c) {
    case OTA_CIPHER_DES:
    case OTA_CIPHER_3DES2:
    case OTA_CIPHER_3DES3:
        return 8;
    case OTA_CIPHER_AES:
        return 16;
    case OTA_CIPHER_NONE:
        break;
    }
    return 0;
}

static bool key_len_ok(enum ota_cipher c, size_t len)
{
    switch (c) {
    case OTA_CIPHER_DES:
        return len == 8;
    case OTA_CIPHER_3DES2:
        return len == 16;
    case OTA_CIPHER_3DES3:
        return len == 24;
    case OTA_CIPHER_AES:
        return len == 16 || len == 24 || len == 32;
    case OTA_CIPHER_NONE:
        break;
    }
    return false;
}

int ota_key_set(struct ota_key *k, enum ota_cipher c, const uint8_t *bytes, size_t len,
                struct ota_err *err)
{
    if (!bytes || !key_len_ok(c, len)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "key: %zu octets is not a %s key", len,
                        ota_cipher_name(c));
    }
    memset(k, 0, sizeof(*k));
    k->cipher = c;
    k->len = (uint8_t)len;
    memcpy(k->bytes, bytes, len);
    return 0;
}

void ota_key_wipe(struct ota_key *k)
{
    if (!k) {
        return;
    }
    if (k->ext && k->owned == OTA_KEY_OWNED && k->ext->release) {
        k->ext->release(k->ext_ctx, k);
    }
    OPENSSL_cleanse(k, sizeof(*k));
}

bool ota_key_is_ext(const struct ota_key *k)
{
    return k && k->ext;
}

void ota_key_borrow(struct ota_key *dst, const struct ota_key *src)
{
    *dst = *src;
    dst->owned = 0;
}

void ota_key_move(struct ota_key *dst, struct ota_key *src)
{
    *dst = *src;
    OPENSSL_cleanse(src, sizeof(*src));
}

void ota_crypto_free(struct ota_crypto *c)
{
    if (!c) {
        return;
    }
    EVP_MAC_CTX_free(c->mac_ctx);
    EVP_MAC_free(c->cmac);
    EVP_CIPHER_CTX_free(c->ctx);
    for (int i = 0; i < ALG__COUNT; i++) {
        EVP_CIPHER_free(c->alg[i]);
    }
    free(c);
}

int ota_crypto_new(struct ota_crypto **out, struct ota_err *err)
{
    struct ota_crypto *c = calloc(1, sizeof(*c));
    if (!c) {
        return ota_fail(err, -ENOMEM, OTA_ERR_CRYPTO, "crypto: out of memory");
    }
    for (int i = 0; i < ALG__COUNT; i++) {
        c->alg[i] = EVP_CIPHER_fetch(NULL, alg_names[i], NULL);
        if (!c->alg[i]) {
            ota_crypto_free(c);
            return ota_fail(err, -EIO, OTA_ERR_CRYPTO, "crypto: OpenSSL has no %s", alg_names[i]);
        }
    }
    c->ctx = EVP_CIPHER_CTX_new();
    c->cmac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    c->mac_ctx = c->cmac ? EVP_MAC_CTX_new(c->cmac) : NULL;
    if (!c->ctx || !c->mac_ctx) {
        ota_crypto_free(c);
        return ota_fail(err, -EIO, OTA_ERR_CRYPTO, "crypto: no cipher/CMAC context");
    }
    *out = c;
    return 0;
}

/*
 * Map a key to the fetched EVP cipher and the raw key OpenSSL wants. DES is
 * expanded to K|K|K in kbuf (the caller cleanses it).
 */
static int pick(struct ota_crypto *c, const struct ota_key *k, enum ota_mode mode,
                const EVP_CIPHER **ciph, const uint8_t **kb, uint8_t kbuf[24], struct ota_err *err)
{
    bool ecb = mode == OTA_MODE_ECB;

    if (!k || !key_len_ok(k->cipher, k->len)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "crypto: %s key of %u octets",
                        k ? ota_cipher_name(k->cipher) : "no", k ? k->len : 0u);
    }
    *kb = k->bytes;
    switch (k->cipher) {
    case OTA_CIPHER_DES:
        memcpy(kbuf, k->bytes, 8);
        memcpy(kbuf + 8, k->bytes, 8);
        memcpy(kbuf + 16, k->bytes, 8);
        *kb = kbuf;
        *ciph = c->alg[ecb ? ALG_EDE3_ECB : ALG_EDE3_CBC];
        break;
    case OTA_CIPHER_3DES2:
        *ciph = c->alg[ecb ? ALG_EDE_ECB : ALG_EDE_CBC];
        break;
    case OTA_CIPHER_3DES3:
        *ciph = c->alg[ecb ? ALG_EDE3_ECB : ALG_EDE3_CBC];
        break;
    case OTA_CIPHER_AES:
        if (k->len == 16) {
            *ciph = c->alg[ecb ? ALG_AES128_ECB : ALG_AES128_CBC];
        } else if (k->len == 24) {
            *ciph = c->alg[ecb ? ALG_AES192_ECB : ALG_AES192_CBC];
        } else {
            *ciph = c->alg[ecb ? ALG_AES256_ECB : ALG_AES256_CBC];
        }
        break;
    case OTA_CIPHER_NONE:
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "crypto: no cipher");
    }
    return 0;
}

static const uint8_t zero_iv[16];

int ota_crypto_cipher(struct ota_crypto *c, const struct ota_key *k, enum ota_mode mode,
                      bool encrypt, const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out,
                      struct ota_err *err)
{
    const EVP_CIPHER *ciph = NULL;
    const uint8_t *kb = NULL;
    uint8_t kbuf[24];
    int rc, n = 0, fin = 0;

    if (k && k->ext) {
        size_t bl = ota_cipher_block_len(k->cipher);
        if (!bl || !key_len_ok(k->cipher, k->len)) {
            return ota_fail(err, -EINVAL, OTA_ERR_KEY, "crypto: external %s key of %u octets",
                            ota_cipher_name(k->cipher), k->len);
        }
        if (len % bl) {
            return ota_fail(err, -EINVAL, OTA_ERR_PADDING,
                            "crypto: %zu octets is not a multiple of the %zu-octet block", len, bl);
        }
        return k->ext->cipher(k->ext_ctx, k, mode, encrypt, iv, in, len, out, err);
    }
    rc = pick(c, k, mode, &ciph, &kb, kbuf, err);
    if (rc < 0) {
        return rc;
    }
    size_t bl = ota_cipher_block_len(k->cipher);
    if (len % bl || len > INT_MAX) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_PADDING,
                      "crypto: %zu octets is not a multiple of the %zu-octet block", len, bl);
        goto out;
    }
    if (!EVP_CipherInit_ex2(c->ctx, ciph, kb, mode == OTA_MODE_ECB ? NULL : (iv ? iv : zero_iv),
                            encrypt ? 1 : 0, NULL) ||
        !EVP_CIPHER_CTX_set_padding(c->ctx, 0) ||
        (len && !EVP_CipherUpdate(c->ctx, out, &n, in, (int)len)) ||
        !EVP_CipherFinal_ex(c->ctx, out + n, &fin) || (size_t)(n + fin) != len) {
        rc = ota_fail(err, -EIO, OTA_ERR_CRYPTO, "crypto: %s %s failed", ota_cipher_name(k->cipher),
                      encrypt ? "encrypt" : "decrypt");
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(kbuf, sizeof(kbuf));
    return rc;
}

int ota_crypto_cbc_mac(struct ota_crypto *c, const struct ota_key *k, const uint8_t *iv,
                       const uint8_t *in, size_t len, uint8_t out[8], struct ota_err *err)
{
    uint8_t chain[8], blk[8];
    int rc;

    if (!k || ota_cipher_block_len(k->cipher) != 8) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "cbc-mac: needs a DES/3DES key, got %s",
                        k ? ota_cipher_name(k->cipher) : "none");
    }
    memcpy(chain, iv ? iv : zero_iv, 8);
    size_t full = len & ~(size_t)7, rest = len - full;

    /* Whole blocks in one CBC pass; only the last cipher block is kept. */
    if (full) {
        uint8_t buf[256];
        size_t off = 0;
        while (off < full) {
            size_t n = full - off < sizeof(buf) ? full - off : sizeof(buf);
            rc = ota_crypto_cipher(c, k, OTA_MODE_CBC, true, chain, in + off, n, buf, err);
            if (rc < 0) {
                return rc;
            }
            memcpy(chain, buf + n - 8, 8);
            off += n;
        }
    }
    /* TS 102 225 5.1.3: zero fill to the block for the MAC only. */
    if (rest || len == 0) {
        memset(blk, 0, sizeof(blk));
        memcpy(blk, in + full, rest);
        rc = ota_crypto_cipher(c, k, OTA_MODE_CBC, true, chain, blk, 8, chain, err);
        if (rc < 0) {
            return rc;
        }
    }
    memcpy(out, chain, 8);
    return 0;
}

int ota_crypto_cmac(struct ota_crypto *c, const struct ota_key *k, const uint8_t *in, size_t len,
                    uint8_t out[16], size_t *out_len, struct ota_err *err)
{
    const EVP_CIPHER *ciph = NULL;
    const uint8_t *kb = NULL;
    uint8_t kbuf[24];
    size_t n = 0;
    int rc;

    if (k && k->ext) {
        if (!key_len_ok(k->cipher, k->len)) {
            return ota_fail(err, -EINVAL, OTA_ERR_KEY, "cmac: external %s key of %u octets",
                            ota_cipher_name(k->cipher), k->len);
        }
        return k->ext->cmac(k->ext_ctx, k, in, len, out, out_len, err);
    }
    rc = pick(c, k, OTA_MODE_CBC, &ciph, &kb, kbuf, err);
    if (rc < 0) {
        return rc;
    }
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)EVP_CIPHER_get0_name(ciph),
                                         0),
        OSSL_PARAM_construct_end(),
    };
    size_t klen = k->cipher == OTA_CIPHER_DES ? 24 : k->len;
    if (!EVP_MAC_init(c->mac_ctx, kb, klen, params) || !EVP_MAC_update(c->mac_ctx, in, len) ||
        !EVP_MAC_final(c->mac_ctx, out, &n, 16)) {
        rc = ota_fail(err, -EIO, OTA_ERR_CRYPTO, "cmac: %s failed", ota_cipher_name(k->cipher));
        goto out;
    }
    *out_len = n;
    rc = 0;
out:
    OPENSSL_cleanse(kbuf, sizeof(kbuf));
    return rc;
}

/*
 * The single-DES K1 of a 16-octet 3DES key as a key of its own: raw bytes,
 * or a borrowed view of the external K1|K1 companion (same permutation).
 */
static int k1_of(const struct ota_key *k, struct ota_key *k1, struct ota_err *err)
{
    if (!k->ext) {
        return ota_key_set(k1, OTA_CIPHER_DES, k->bytes, 8, err);
    }
    if (!k->ext_k1) {
        return ota_fail(err, -ENOKEY, OTA_ERR_KEY,
                        "crypto: external 3DES key has no K1|K1 companion for single DES");
    }
    ota_key_borrow(k1, k);
    k1->ext_handle = k->ext_k1;
    k1->ext_k1 = 0;
    return 0;
}

int ota_crypto_des_k1_ecb(struct ota_crypto *c, const struct ota_key *k, const uint8_t in[8],
                          uint8_t out[8], struct ota_err *err)
{
    struct ota_key k1;
    int rc;

    if (!k || k->cipher != OTA_CIPHER_3DES2 || k->len != 16) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "des-k1: needs a 16-octet 3DES key");
    }
    rc = k1_of(k, &k1, err);
    if (rc == 0) {
        rc = ota_crypto_cipher(c, &k1, OTA_MODE_ECB, true, NULL, in, 8, out, err);
    }
    ota_key_wipe(&k1);
    return rc;
}

int ota_crypto_derive(struct ota_crypto *c, const struct ota_key *base, enum ota_mode mode,
                      const uint8_t *data, size_t len, enum ota_cipher out_cipher,
                      struct ota_key *out, struct ota_err *err)
{
    uint8_t res[OTA_KEY_MAX];
    int rc;

    if (!base || !data || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "derive: NULL argument");
    }
    size_t bl = ota_cipher_block_len(base->cipher);
    if (!bl || len == 0 || len % bl || len > OTA_KEY_MAX || !key_len_ok(out_cipher, len)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY,
                        "derive: %zu octets under %s cannot make a %s key", len,
                        ota_cipher_name(base->cipher), ota_cipher_name(out_cipher));
    }
    if (base->ext) {
        if (!key_len_ok(base->cipher, base->len)) {
            return ota_fail(err, -EINVAL, OTA_ERR_KEY, "derive: external %s key of %u octets",
                            ota_cipher_name(base->cipher), base->len);
        }
        return base->ext->derive(base->ext_ctx, base, mode, data, len, out_cipher, out, err);
    }
    rc = ota_crypto_cipher(c, base, mode, true, NULL, data, len, res, err);
    if (rc == 0) {
        rc = ota_key_set(out, out_cipher, res, len, err);
    }
    OPENSSL_cleanse(res, sizeof(res));
    return rc;
}

int ota_crypto_wrap(struct ota_crypto *c, const struct ota_key *kek, enum ota_mode mode,
                    const struct ota_key *key, uint8_t *out, size_t cap, struct ota_err *err)
{
    int rc;

    if (!kek || !key || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "wrap: NULL argument");
    }
    if (cap < key->len) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "wrap: %u octets, buffer has %zu", key->len,
                        cap);
    }
    if (!key->ext) {
        rc = ota_crypto_cipher(c, kek, mode, true, NULL, key->bytes, key->len, out, err);
        return rc < 0 ? rc : (int)key->len;
    }
    /* The value stays in the backend: only a KEK living beside it can wrap it. */
    if (kek->ext != key->ext || kek->ext_ctx != key->ext_ctx || !key->ext->wrap) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY,
                        "wrap: external %s key needs a KEK in the same %s backend",
                        ota_cipher_name(key->cipher), key->ext->name);
    }
    return key->ext->wrap(key->ext_ctx, kek, mode, key, out, cap, err);
}

int ota_crypto_retail_mac(struct ota_crypto *c, const struct ota_key *k, const uint8_t *icv,
                          const uint8_t *in, size_t len, uint8_t out[8], struct ota_err *err)
{
    struct ota_key k1;
    uint8_t chain[8], last[8];
    int rc;

    if (!k || k->cipher != OTA_CIPHER_3DES2 || k->len != 16) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "retail-mac: needs a 16-octet 3DES key");
    }
    if (len == 0 || len % 8) {
        return ota_fail(err, -EINVAL, OTA_ERR_PADDING, "retail-mac: %zu octets is not padded to 8",
                        len);
    }
    rc = k1_of(k, &k1, err);
    if (rc < 0) {
        return rc;
    }
    memcpy(chain, icv ? icv : zero_iv, 8);
    if (len > 8) {
        /* Single DES CBC under K1 over all but the last block. */
        rc = ota_crypto_cbc_mac(c, &k1, chain, in, len - 8, chain, err);
        if (rc < 0) {
            goto out;
        }
    }
    for (int i = 0; i < 8; i++) {
        last[i] = chain[i] ^ in[len - 8 + i];
    }
    /* Last block: DES(K1) then DES^-1(K2) then DES(K1) = 3DES-EDE(K1,K2). */
    rc = ota_crypto_cipher(c, k, OTA_MODE_ECB, true, NULL, last, 8, out, err);
out:
    ota_key_wipe(&k1);
    OPENSSL_cleanse(chain, sizeof(chain));
    return rc;
}

int ota_crypto_kcv(struct ota_crypto *c, const struct ota_key *k, uint8_t out[3],
                   struct ota_err *err)
{
    uint8_t in[16], res[16];
    int rc;

    if (!k) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "kcv: no key");
    }
    size_t bl = ota_cipher_block_len(k->cipher);
    /* GP 2.2 Amd D 4.8: AES KCV over 16 x 01; DES family over 8 x 00. */
    memset(in, k->cipher == OTA_CIPHER_AES ? 0x01 : 0x00, sizeof(in));
    rc = ota_crypto_cipher(c, k, OTA_MODE_ECB, true, NULL, in, bl, res, err);
    if (rc < 0) {
        return rc;
    }
    memcpy(out, res, 3);
    return 0;
}

int ota_pad_m2(const uint8_t *in, size_t len, size_t block, uint8_t *dst, size_t cap)
{
    if (block == 0) {
        return -EINVAL;
    }
    size_t total = (len / block + 1) * block;
    if (total > cap || total > INT_MAX) {
        return -ENOSPC;
    }
    if (len) {
        memmove(dst, in, len);
    }
    dst[len] = 0x80;
    memset(dst + len + 1, 0, total - len - 1);
    return (int)total;
}

uint16_t ota_crc16(const uint8_t *p, size_t len)
{
    /* X.25: reflected CCITT from FFFF, complemented (ISO/IEC 13239). */
    return (uint16_t)~osmo_crc16_ccitt(0xffff, p, len);
}

uint32_t ota_crc32(const uint8_t *p, size_t len)
{
    /* zlib's CRC-32 is the ISO-HDLC one the RC of TS 102 225 uses. */
    uLong crc = crc32(0L, Z_NULL, 0);
    while (len) {
        uInt n = len > 1u << 30 ? 1u << 30 : (uInt)len;
        crc = crc32(crc, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)crc;
}
