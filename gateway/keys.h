/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key store (issue #7 "Key store", spec 5.8.9): SCP80 KIc/KID sets per
 * SE and TAR (what the engine's scp80_keys hook asks for) and GlobalPlatform
 * SD key sets (ENC/MAC/DEK per SD AID, for SCP02 wallet sessions and PUT
 * KEY), and business platforms' KEKs (personalization data, spec 5.8.4.6.3),
 * behind one interface with two backends chosen by [keys] backend:
 *
 * - local (the embedded default): key material AES-256-GCM encrypted at rest
 *   in the store's own SQLite file under a master key read from a file
 *   (mode 0600 or stricter, owned by us; created when missing). Each record
 *   has a fresh 96-bit nonce and its AAD binds it to its SE, kind, TAR/AID,
 *   KVN and parameters, so a blob copied to another row does not decrypt.
 *   The master and transport keys live in a page-locked (mlock) arena;
 *   records are decrypted there for the one lookup and cleansed after.
 * - pkcs11: keys are non-extractable token objects (gateway/p11.h) labelled
 *   from SE / kind / TAR-or-AID / KVN; the SQLite file keeps only their
 *   parameters and labels, and lookups hand out p11_key() references: no
 *   key byte in our memory.
 *
 * Versions (spec 5.8.9.3): several KVNs per SE and SD AID / TAR live side
 * by side; a new KVN never replaces another one (the same KVN again does).
 * The store records which version each SE currently holds per SD / per
 * SCP80 key set: the first set imported becomes current, later ones wait
 * for a key-update task (sd-key-update) whose completion moves the SE to
 * them (gw_keys_task_final). Lookups without a KVN use the current version.
 *
 * Import: gw_keys_put_* take clear keys (tests, internal callers; the API
 * allows them only with [keys] clear_import = yes); gw_keys_import_* take
 * keys encrypted under the transport key with their key check values.
 *
 * Rules every backend keeps: keys are never logged, never returned by the
 * API, and wiped (ota_key_wipe) from memory by whoever received a copy once
 * used. Error messages name fields, never key bytes.
 *
 * The store uses its own SQLite file ([keys] db; default "<[engine] db>.keys"):
 * the engine's batches never hold its lock, so writes from any hook (the
 * final hook's version move) cannot wait on the engine.
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
#define GW_KEYS_WRAPPED_MAX (OTA_KEY_MAX + 8)

struct gw_keys;
struct plat_key_material; /* gateway/platform.h */

enum gw_keys_backend {
    GW_KEYS_LOCAL = 0,
    GW_KEYS_PKCS11 = 1,
};

/* How to open the store; strings are borrowed for the call only. */
struct gw_keys_conf {
    enum gw_keys_backend backend;
    const char *db_path; /* the store's SQLite file (created if needed) */
    bool durable;        /* synchronous=FULL on commits */
    /*
     * local: the master key file (32 random octets or 64 hex digits, a
     * regular file of mode 0600 or stricter owned by our uid; created with
     * 0600 when missing). NULL: an ephemeral random master key, for tests
     * only (nothing stored can be read after close).
     */
    const char *master_key_file;
    /*
     * local: the transport key file, same rules; its length gives its type:
     * 16 octets 3DES 2-key, 24 3DES 3-key, 32 AES-256. Created (32 random
     * octets, AES-256) when missing. NULL: wrapped import refused.
     */
    const char *transport_key_file;
    /* pkcs11 */
    const char *p11_module;      /* path of the PKCS#11 module */
    const char *p11_token;       /* token label */
    const char *p11_pin_file;    /* user PIN, a 0600 file like the key files */
    const char *transport_label; /* the token's transport key object */
};

/* gw_keys_open_conf() *created bits: files it made (the caller logs them). */
#define GW_KEYS_CREATED_MASTER 0x1u
#define GW_KEYS_CREATED_TRANSPORT 0x2u
#define GW_KEYS_NOT_LOCKED 0x4u /* mlock refused (RLIMIT_MEMLOCK): secrets are not page-locked */

/*
 * Open the store as c says. *created (may be NULL) gets GW_KEYS_* bits.
 * 0, -EINVAL (a bad conf value), -EACCES (a key file with a mode wider
 * than 0600, not ours or not a regular file: err says which and why),
 * -ENOENT (PKCS#11 module or token), -EIO, -ENOMEM.
 */
int gw_keys_open_conf(const struct gw_keys_conf *c, struct gw_keys **out, unsigned *created,
                      struct ota_err *err) OTA_MUST_CHECK;

/*
 * The local backend on the SQLite file at path with an ephemeral master key
 * and no transport key (unit tests of other modules).
 */
int gw_keys_open(const char *path, bool durable, struct gw_keys **out,
                 struct ota_err *err) OTA_MUST_CHECK;

/* Close (cleanses the arena, logs out of the token); NULL is a no-op. */
void gw_keys_close(struct gw_keys *k);

enum gw_keys_backend gw_keys_backend(const struct gw_keys *k);

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

/* How a key travels under the transport key. */
enum gw_keys_wrap {
    GW_KEYS_WRAP_ECB = 0,    /* ECB, no padding, in the transport key's cipher */
    GW_KEYS_WRAP_AES_KW = 1, /* RFC 3394 AES key wrap (AES transport key; SoftHSM2) */
};

/*
 * One key encrypted under the transport key, as the API receives it.
 * cipher / key_len: what the clear key is (key_len 0: deduced from len).
 * kcv: ota_crypto_kcv() of the clear key (DES/3DES: E(8 x 00), AES:
 * E(16 x 01), leftmost 3 octets).
 */
struct gw_keys_wrapped {
    enum gw_keys_wrap wrap;
    enum ota_cipher cipher;
    uint8_t key_len;
    uint8_t data[GW_KEYS_WRAPPED_MAX];
    size_t len;
    uint8_t kcv[3];
};

/*
 * Validate and store the set of seid for its TAR and KVN (other KVNs stay;
 * the first set for a TAR becomes the SE's current one). kcv: NULL, or 6
 * octets KCV(kic_key) | KCV(kid_key) as ota_crypto_kcv() computes them; a
 * mismatch refuses the import. Returns 0, -EINVAL (OTA_ERR_ARG / _VALUE /
 * _KEY: the field is named; OTA_ERR_BAD_CC: KCV mismatch), -EBUSY, -EIO.
 * Nothing is stored on error. The caller still owns (and wipes) in.
 */
int gw_keys_put_scp80(struct gw_keys *k, const char *seid, const struct gw_keys_scp80 *in,
                      const uint8_t *kcv, struct ota_err *err) OTA_MUST_CHECK;

/*
 * The same from wrapped keys: in's kic_key / kid_key are ignored; kic and
 * kid are unwrapped (in locked memory, or inside the token) and their KCVs
 * checked before anything is stored. -EINVAL with OTA_ERR_BAD_CC on a KCV
 * mismatch; -ENOKEY when no transport key is configured; -EOPNOTSUPP when
 * the token cannot unwrap that way.
 */
int gw_keys_import_scp80(struct gw_keys *k, const char *seid, const struct gw_keys_scp80 *in,
                         const struct gw_keys_wrapped *kic, const struct gw_keys_wrapped *kid,
                         struct ota_err *err) OTA_MUST_CHECK;

/*
 * The set for (seid, tar) in the SE's current version: the one registered
 * for exactly that TAR, else the one registered for any TAR. 0 with *out
 * filled (the caller wipes its keys; PKCS#11: token references), -ENOENT
 * (OTA_ERR_KEY), -EIO, -EBADMSG (a record that fails authentication).
 */
int gw_keys_get_scp80(struct gw_keys *k, const char *seid, const uint8_t tar[3],
                      struct eng_scp80_keys *out, struct ota_err *err) OTA_MUST_CHECK;

/* Store an SD key set of seid (other KVNs stay). 0, -EINVAL, -EBUSY, -EIO. */
int gw_keys_put_sd(struct gw_keys *k, const char *seid, const struct gw_keys_sd *in,
                   struct ota_err *err) OTA_MUST_CHECK;

/* The same from wrapped keys w[0..2] = ENC, MAC, DEK (3DES2, 16 octets each). */
int gw_keys_import_sd(struct gw_keys *k, const char *seid, const uint8_t *aid, size_t aid_len,
                      uint8_t kvn, const struct gw_keys_wrapped w[3],
                      struct ota_err *err) OTA_MUST_CHECK;

/*
 * The SD key set of seid for aid with kvn, or in the SE's current version
 * when kvn is 0. 0 with *out filled (the caller wipes it), -ENOENT, -EINVAL,
 * -EIO, -EBADMSG.
 */
int gw_keys_get_sd(struct gw_keys *k, const char *seid, const uint8_t *aid, size_t aid_len,
                   uint8_t kvn, struct gw_keys_sd *out, struct ota_err *err) OTA_MUST_CHECK;

/* What a current-version record names. */
enum gw_keys_kind {
    GW_KEYS_KIND_SCP80 = 0, /* ref: the TAR (3 octets; NULL = the "*" set) */
    GW_KEYS_KIND_SD = 1,    /* ref: the SD AID */
};

/* The SE's current KVN for a key set. 0, -ENOENT (none recorded), -EIO. */
int gw_keys_current(struct gw_keys *k, const char *seid, enum gw_keys_kind kind, const uint8_t *ref,
                    size_t ref_len, uint8_t *kvn, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Record that the SE now holds kvn for that key set; the set must exist
 * (-ENOENT otherwise). 0, -EINVAL, -ENOENT, -EIO.
 */
int gw_keys_set_current(struct gw_keys *k, const char *seid, enum gw_keys_kind kind,
                        const uint8_t *ref, size_t ref_len, uint8_t kvn,
                        struct ota_err *err) OTA_MUST_CHECK;

/*
 * The key material of an sd-key-update for seid (struct plat_keys_cb's
 * keys(), with arg a struct gw_keys_plat_arg): the new keys are the SD set
 * (sd_aid, new_kvn), imported beforehand; the DEK is the static DEK of the
 * SE's current set for that SD (what SCP80 OTA to the SD needs; the wallet's
 * SCP02 sessions put their session DEK in its place). A non-zero old_kvn
 * that differs from the recorded current version is refused (-ESTALE): the
 * card would reject the PUT KEY.
 */
struct gw_keys_plat_arg {
    struct gw_keys *k;
    const char *seid;
};
int gw_keys_plat_material(void *arg, const uint8_t *sd_aid, size_t sd_aid_len, uint8_t old_kvn,
                          uint8_t new_kvn, struct plat_key_material *out,
                          struct ota_err *err) OTA_MUST_CHECK;

/* ---- platform KEKs (spec 5.8.4.6.3 mode three) ------------------------------------------ */

#define GW_KEYS_KEK_NAME_MAX 64
/* Largest block gw_keys_translate() takes: PLAT_BLOCK_MAX cut to whole 8-octet blocks. */
#define GW_KEYS_TRANSLATE_MAX 232

/*
 * A business platform's key-encryption key: it sends the sensitive part of
 * personalization data encrypted under it. name: [A-Za-z0-9._-], 1..64;
 * owner: the principal (platform) allowed to use it, 1..64 printable; kvn
 * 1..127 (versions live side by side); key: 3DES 2/3-key or AES.
 */
struct gw_keys_kek {
    const char *name;
    const char *owner;
    uint8_t kvn;
    struct ota_key key;
};

/*
 * Store a KEK from a clear key (kcv: NULL or KCV(key), 3 octets) or from a
 * key wrapped under the transport key (gw_keys_import_kek: in->key is
 * ignored, w->cipher says what it is; its KCV is checked before anything is
 * stored). 0, -EINVAL (OTA_ERR_BAD_CC on a KCV mismatch), -ENOKEY (no
 * transport key), -EEXIST (pkcs11: that version exists), -EOPNOTSUPP, -EIO.
 * Nothing is stored on error.
 */
int gw_keys_put_kek(struct gw_keys *k, const struct gw_keys_kek *in, const uint8_t *kcv,
                    struct ota_err *err) OTA_MUST_CHECK;
int gw_keys_import_kek(struct gw_keys *k, const struct gw_keys_kek *in,
                       const struct gw_keys_wrapped *w, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Translate [in]KEK into [out]DEK (spec 5.8.4.6.3 step 4a): decrypt len
 * octets under the KEK name (version kvn, 0 = the highest) in ECB, then
 * encrypt them under dek: 3DES-ECB for a DES/3DES DEK (as PUT KEY key data,
 * GP 2.2 11.8.2.3), AES-CBC with a zero IV for an AES DEK (Amendment D).
 * No padding: len must be a multiple of both block lengths, at most
 * GW_KEYS_TRANSLATE_MAX. owner: the platform asking (the task's
 * params.owner); NULL for staff, who may use any KEK; a KEK of another
 * owner is refused (-EACCES). The clear data exists only in the locked
 * arena for the call (both backends: the pkcs11 backend decrypts with the
 * token's KEK object, C_Decrypt, since SoftHSM2 cannot unwrap or wrap in
 * ECB). out may equal in. 0, -ENOENT (no such KEK), -EACCES, -EINVAL
 * (OTA_ERR_LENGTH: unaligned or too long), -EBADMSG, -EIO. Never logs data.
 */
int gw_keys_translate(struct gw_keys *k, const char *name, uint8_t kvn, const char *owner,
                      const struct ota_key *dek, const uint8_t *in, size_t len, uint8_t *out,
                      struct ota_err *err) OTA_MUST_CHECK;

/*
 * struct plat_keys_cb's translate() with arg a struct gw_keys_plat_arg: the
 * DEK is the static DEK of the SE's current key set of sd_aid (SCP80 OTA to
 * that SD; the wallet's SCP02 sessions put their session DEK in its place).
 */
int gw_keys_plat_translate(void *arg, const char *kek, uint8_t kek_kvn, const char *owner,
                           const uint8_t *sd_aid, size_t sd_aid_len, const uint8_t *in, size_t len,
                           uint8_t *out, struct ota_err *err) OTA_MUST_CHECK;

/*
 * The engine's final hook for a task: an sd-key-update that reached done
 * moves the SE's current version of its SD (and of the SCP80 set of its TAR
 * when one has the new KVN) to new_kvn. *moved (may be NULL) is set when it
 * did. 0 (also for tasks that are not concerned), or a negative errno.
 */
int gw_keys_task_final(struct gw_keys *k, const struct eng_task_view *t, bool *moved,
                       struct ota_err *err) OTA_MUST_CHECK;

/* Wipe the keys of a set (NULL is a no-op). */
void gw_keys_scp80_wipe(struct gw_keys_scp80 *s);
void gw_keys_sd_wipe(struct gw_keys_sd *s);

/*
 * Read a key file under the key store's rules (regular file, owned by us,
 * mode 0600 or stricter; raw octets or hex digits with optional trailing
 * newline), into out (cap octets). With create, a missing file is made
 * (O_EXCL, 0600) holding create_len random octets and *created set. Returns
 * the key length, -EACCES (mode / owner / type: err says which), -ENOENT,
 * -EINVAL (content), -EIO. Also what otatool keys-gen-master uses.
 */
int gw_keys_read_key_file(const char *path, bool create, size_t create_len, uint8_t *out,
                          size_t cap, bool *created, struct ota_err *err) OTA_MUST_CHECK;
