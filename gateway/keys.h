/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key store behind one small interface (issue #6 "Keys"): SCP80 KIc/KID
 * sets per SE and TAR (what the engine's scp80_keys hook asks for) and
 * GlobalPlatform SD key sets (ENC/MAC/DEK per SD AID and KVN, for the SCP02
 * wallet sessions). Issue #7 replaces the backend with an HSM-backed,
 * encrypted store; callers only see this header, so that swap stays local.
 *
 * TEMPORARY BACKEND (until issue #7): a LOCAL store in the engine's SQLite
 * file, through its own sqlite3 connection and its own tables keys_scp80 and
 * keys_sd. KEY BYTES ARE STORED IN CLEAR in that file: protect the file
 * (permissions, disk encryption) and do not use it with production keys.
 *
 * Rules every backend keeps: keys are never logged, never returned by the
 * API, and wiped (ota_key_wipe) from memory by whoever received a copy once
 * used. Error messages name fields, never key bytes.
 *
 * Writes: the engine keeps its own write transaction open while it stages a
 * batch, so a put must be made when the engine has nothing staged (call
 * eng_flush() first, on the same loop turn); otherwise the put waits for the
 * lock up to GW_KEYS_BUSY_MS and fails with -EBUSY.
 *
 * Prefix gw_keys_. One thread (the loop's).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/ota.h"
#include "queue/engine.h"

#define GW_KEYS_BUSY_MS 2000
#define GW_KEYS_SEID_MAX 64
#define GW_KEYS_AID_MAX 16 /* ISO/IEC 7816-5: 5..16 octets */

struct gw_keys;

/* One SCP80 key set as imported: security parameters and the two keys. */
struct gw_keys_scp80 {
    /*
     * TAR the set answers for, or any TAR when any_tar is true (a set for
     * TAR "*": used when no set names the asked TAR exactly).
     */
    uint8_t tar[3];
    bool any_tar;
    uint8_t kvn;            /* 1..15, equal to the KVN coded in kic and kid */
    uint8_t spi[2];         /* must ask for a cryptographic checksum (the engine's PoRs need one) */
    uint8_t kic;            /* coded KIc octet: a ciphering algorithm (DES/3DES CBC, AES CBC) */
    uint8_t kid;            /* coded KID octet: a CC algorithm (DES/3DES CBC-MAC, AES CMAC) */
    uint8_t cc_len;         /* AES-CMAC 4 or 8; DES/3DES CBC-MAC 8 */
    struct ota_key kic_key; /* cipher and length must fit kic */
    struct ota_key kid_key; /* ... and kid */
};

/* One SD key set (SCP02 static keys: 3DES2, 16 octets each). */
struct gw_keys_sd {
    uint8_t aid[GW_KEYS_AID_MAX];
    size_t aid_len; /* 5..16 */
    uint8_t kvn;    /* 1..127 */
    struct ota_key enc, mac, dek;
};

/*
 * Open (create if needed) the store's tables in the SQLite file at path.
 * durable: synchronous=FULL on commits. 0, -EINVAL, -EIO, -ENOMEM.
 */
int gw_keys_open(const char *path, bool durable, struct gw_keys **out,
                 struct ota_err *err) OTA_MUST_CHECK;

/* Close; NULL is a no-op. */
void gw_keys_close(struct gw_keys *k);

/*
 * Validate and store (replace) the set of seid for its TAR (one set per SE
 * and TAR: a new KVN replaces the old one). kcv: NULL, or 6 octets
 * KCV(kic_key) | KCV(kid_key) as ota_crypto_kcv() computes them; a mismatch
 * refuses the import. Returns 0, -EINVAL (OTA_ERR_ARG / _VALUE / _KEY: the
 * field is named; OTA_ERR_BAD_CC: KCV mismatch), -EBUSY (the file is
 * locked, see above), -EIO. Nothing is stored on error. The caller still
 * owns (and wipes) in.
 */
int gw_keys_put_scp80(struct gw_keys *k, const char *seid, const struct gw_keys_scp80 *in,
                      const uint8_t *kcv, struct ota_err *err) OTA_MUST_CHECK;

/*
 * The set for (seid, tar): the one registered for exactly that TAR, else the
 * one registered for any TAR. 0 with *out filled (the caller wipes its
 * keys), -ENOENT (OTA_ERR_KEY), -EIO.
 */
int gw_keys_get_scp80(struct gw_keys *k, const char *seid, const uint8_t tar[3],
                      struct eng_scp80_keys *out, struct ota_err *err) OTA_MUST_CHECK;

/* Store (replace) an SD key set of seid. 0, -EINVAL, -EBUSY, -EIO. */
int gw_keys_put_sd(struct gw_keys *k, const char *seid, const struct gw_keys_sd *in,
                   struct ota_err *err) OTA_MUST_CHECK;

/*
 * The SD key set of seid for aid with kvn, or with the highest KVN when kvn
 * is 0. 0 with *out filled (the caller wipes it), -ENOENT, -EINVAL, -EIO.
 */
int gw_keys_get_sd(struct gw_keys *k, const char *seid, const uint8_t *aid, size_t aid_len,
                   uint8_t kvn, struct gw_keys_sd *out, struct ota_err *err) OTA_MUST_CHECK;

/* Wipe the keys of a set (NULL is a no-op). */
void gw_keys_scp80_wipe(struct gw_keys_scp80 *s);
void gw_keys_sd_wipe(struct gw_keys_sd *s);

/*
 * TEMPORARY (until the engine offers an SE query): the MSISDN and batch of a
 * registered SE, read from the engine's committed "se" table through this
 * store's connection. 0, -ENOENT, -EIO. msisdn needs 22 octets, batch 33.
 */
int gw_keys_se_find(struct gw_keys *k, const char *seid, char msisdn[22], char batch[33],
                    struct ota_err *err) OTA_MUST_CHECK;
