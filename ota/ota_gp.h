/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GlobalPlatform Card Specification 2.2 card-content-management APDUs
 * (clause 11): builders for SELECT, INSTALL (all roles), LOAD (split in
 * blocks), DELETE, SET STATUS, PUT KEY, STORE DATA, GET STATUS, GET DATA,
 * INITIALIZE UPDATE and EXTERNAL AUTHENTICATE, and parsers for the GET
 * STATUS responses in both formats, plus life-cycle state names (11.1.1).
 * Layouts per /work/shared/reference/ota.md 5 (cross-checked there against
 * GlobalPlatformPro GPSession.java) and the plain APDUs of the SCP02 vectors
 * in vectors/ota-vectors.json. Sub-clause and table numbers cited below are
 * from memory of GP 2.2 [unverified numbering].
 *
 * Every builder writes one short APDU through ota_apdu_build() into
 * (dst, cap) and returns its length, or a negative errno with *err filled;
 * nothing is written on failure. CLA is 80: the SCP02 layer turns it into
 * 84 when it adds the C-MAC, and over SCP80 it stays 80.
 * Part of the ota/ public face: users include "ota/ota.h".
 */
#pragma once

#include "ota/ota_common.h"
#include "ota/ota_apdu.h"
#include "ota/ota_crypto.h"
#include "ota/ota_rapdu.h"

#define OTA_GP_CLA 0x80
#define OTA_GP_CLA_MAC 0x84 /* EXTERNAL AUTHENTICATE always carries a C-MAC */
#define OTA_GP_CLA_ISO 0x00 /* SELECT */

/* GP 2.2 11.1.2: INS codes. */
#define OTA_GP_INS_SELECT 0xA4
#define OTA_GP_INS_INSTALL 0xE6
#define OTA_GP_INS_LOAD 0xE8
#define OTA_GP_INS_DELETE 0xE4
#define OTA_GP_INS_SET_STATUS 0xF0
#define OTA_GP_INS_PUT_KEY 0xD8
#define OTA_GP_INS_STORE_DATA 0xE2
#define OTA_GP_INS_GET_STATUS 0xF2
#define OTA_GP_INS_GET_DATA 0xCA
#define OTA_GP_INS_INIT_UPDATE 0x50
#define OTA_GP_INS_EXT_AUTH 0x82

/* GP 2.2 6.4.1 / ISO 7816-5: an AID is 5 to 16 octets. */
#define OTA_GP_AID_MIN 5
#define OTA_GP_AID_MAX 16

/* BER-TLV tags used below (GP 2.2 11.1.4, 11.4.2, 11.5.2.3). */
#define OTA_GP_TAG_AID 0x4F
#define OTA_GP_TAG_LOAD_FILE 0xC4 /* load file data block (LOAD) / ELF AID (GET STATUS) */
#define OTA_GP_TAG_DAP_BLOCK 0xE2
#define OTA_GP_TAG_SYSTEM_PARAMS 0xEF
#define OTA_GP_TAG_APP_PARAMS 0xC9
#define OTA_GP_TAG_NV_CODE_LIMIT 0xC6
#define OTA_GP_TAG_V_DATA_LIMIT 0xC7
#define OTA_GP_TAG_NV_DATA_LIMIT 0xC8
#define OTA_GP_TAG_STATUS_ENTRY 0xE3
#define OTA_GP_TAG_LCS 0x9F70
#define OTA_GP_TAG_PRIVILEGES 0xC5
#define OTA_GP_TAG_VERSION 0xCE
#define OTA_GP_TAG_MODULE_AID 0x84
#define OTA_GP_TAG_SD_AID 0xCC

/* ---- life cycle states (GP 2.2 11.1.1) ---- */

/* Card life cycle (ISD). */
#define OTA_GP_CARD_OP_READY 0x01
#define OTA_GP_CARD_INITIALIZED 0x07
#define OTA_GP_CARD_SECURED 0x0F
#define OTA_GP_CARD_LOCKED 0x7F
#define OTA_GP_CARD_TERMINATED 0xFF
/* Applications and security domains; LOCKED is b8 set on top of the state. */
#define OTA_GP_APP_INSTALLED 0x03
#define OTA_GP_APP_SELECTABLE 0x07
#define OTA_GP_SD_PERSONALIZED 0x0F
#define OTA_GP_LOCKED_BIT 0x80
/* Executable load files. */
#define OTA_GP_ELF_LOADED 0x01

/* Which life cycle a state byte belongs to; the same byte means different things. */
enum ota_gp_lcs_kind {
    OTA_GP_LCS_CARD = 0,
    OTA_GP_LCS_APP = 1,
    OTA_GP_LCS_SD = 2,
    OTA_GP_LCS_ELF = 3,
    OTA_GP_LCS__COUNT
};

/* "card", "application", "security-domain", "load-file"; never NULL. */
const char *ota_gp_lcs_kind_name(enum ota_gp_lcs_kind kind);

/*
 * Name of a life cycle state: "OP_READY", "SECURED", "INSTALLED",
 * "SELECTABLE", "PERSONALIZED", "LOCKED" (b8 with b1b2 set, apps and SDs),
 * "APP_SPECIFIC" (b1-b3 set, b4-b7 not all zero), "LOADED", or "unknown".
 * Never NULL, can't fail.
 */
const char *ota_gp_lcs_name(enum ota_gp_lcs_kind kind, uint8_t lcs);

/* ---- SELECT ---- */

/* 00 A4 04 00 Lc AID 00 (GP 2.2 11.9). -EINVAL (OTA_ERR_ARG) for an AID outside 5..16. */
int ota_gp_select(const uint8_t *aid, size_t aid_len, uint8_t *dst, size_t cap,
                  struct ota_err *err) OTA_MUST_CHECK;

/* ---- INSTALL (GP 2.2 11.5) ---- */

/* P1 of INSTALL: the role. Values are the wire values. */
enum ota_gp_install_kind {
    OTA_GP_INSTALL_FOR_LOAD = 0x02,
    OTA_GP_INSTALL_FOR_INSTALL = 0x04,
    OTA_GP_INSTALL_FOR_MAKE_SELECTABLE = 0x08,
    OTA_GP_INSTALL_FOR_INSTALL_SELECTABLE = 0x0C,
    OTA_GP_INSTALL_FOR_EXTRADITION = 0x10,
    OTA_GP_INSTALL_FOR_PERSONALIZATION = 0x20,
    OTA_GP_INSTALL_FOR_REGISTRY_UPDATE = 0x40,
};

/* "for-load", "for-install", ...; "unknown" for other values. Never NULL. */
const char *ota_gp_install_kind_name(enum ota_gp_install_kind kind);

/*
 * INSTALL data. Which fields are used depends on kind (GP 2.2 11.5.2.3):
 *   for load:               elf_aid, sd_aid (0 or 5..16), hash, params, token
 *   for install (+select):  elf_aid, mod_aid, app_aid, priv, params, token
 *   for make selectable:    app_aid, priv, params (usually none), token
 *   for extradition:        sd_aid, app_aid (application or ELF), params, token
 *   for personalization:    app_aid
 *   for registry update:    sd_aid (0 or 5..16), app_aid (0 or 5..16), priv, params, token
 * Unused fields must be empty (len 0). priv is 0, 1 or 3 octets (for
 * install / make selectable: 1 or 3). All pointers are borrowed.
 */
struct ota_gp_install {
    enum ota_gp_install_kind kind;
    const uint8_t *elf_aid;
    size_t elf_aid_len;
    const uint8_t *mod_aid;
    size_t mod_aid_len;
    const uint8_t *app_aid;
    size_t app_aid_len;
    const uint8_t *sd_aid;
    size_t sd_aid_len;
    const uint8_t *hash;
    size_t hash_len;
    const uint8_t *priv;
    size_t priv_len;
    const uint8_t *params; /* load params (EF ..) / install params (C9 .. [EF ..]) */
    size_t params_len;
    const uint8_t *token;
    size_t token_len;
};

/*
 * 80 E6 kind 00 Lc data, no Le (as the SCP02 vectors send it). Returns the
 * length, or -EINVAL (OTA_ERR_ARG: unknown kind, an AID length outside its
 * range, a field the kind does not use, privileges not 1/3 octets, NULL
 * with a length), -EMSGSIZE (OTA_ERR_OVERSIZE: data over 255), -ENOSPC.
 */
int ota_gp_install(const struct ota_gp_install *in, uint8_t *dst, size_t cap,
                   struct ota_err *err) OTA_MUST_CHECK;

/*
 * System parameters for INSTALL [for load] / [for install] (GP 2.2 11.5.2.3.7,
 * tag EF): C6 non-volatile code space limit, C7 volatile data space limit,
 * C8 non-volatile data space limit; a 0 field is left out. Each value goes
 * in 2 octets, or 4 when over FFFF [4-octet form unverified].
 * Writes EF len {..}; returns the length, or -EINVAL (OTA_ERR_ARG: all
 * fields 0), -ENOSPC.
 */
struct ota_gp_space {
    uint32_t nv_code; /* C6 */
    uint32_t v_data;  /* C7 */
    uint32_t nv_data; /* C8 */
};
int ota_gp_system_params(const struct ota_gp_space *s, uint8_t *dst, size_t cap,
                         struct ota_err *err) OTA_MUST_CHECK;

/*
 * Install parameters: C9 len app-specific params, then the optional system
 * parameters TLV (sys, as from ota_gp_system_params(); borrowed, may be
 * NULL). C9 is always written, empty when app_len is 0 (C9 00), as cards
 * require it. Returns the length, or -EINVAL, -EMSGSIZE, -ENOSPC.
 */
int ota_gp_install_params(const uint8_t *app, size_t app_len, const uint8_t *sys, size_t sys_len,
                          uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/* ---- LOAD (GP 2.2 11.6) ---- */

#define OTA_GP_LOAD_MAX_BLOCKS 256

/*
 * A load file to send in LOAD blocks. The block stream is
 *   [dap] | C4 BER-length(file_len) | file
 * cut into pieces of block_len octets (the last may be shorter). dap is the
 * complete DAP block(s) E2 .. as the caller encoded them, or NULL.
 * block_len is the LOAD data size (1..255): pick it to fit the bearer, e.g.
 * an SMS after SCP80 overhead, or 255 - 8 (C-MAC) - padding under SCP02.
 */
struct ota_gp_load {
    const uint8_t *file;
    size_t file_len;
    const uint8_t *dap;
    size_t dap_len;
    size_t block_len;
};

/*
 * Number of LOAD commands needed. Returns 0, or -EINVAL (OTA_ERR_ARG:
 * empty file, block_len 0 or over 255), -EMSGSIZE (OTA_ERR_OVERSIZE: file
 * over 0xFFFF, or more than 256 blocks, since P2 counts blocks in one octet).
 */
int ota_gp_load_count(const struct ota_gp_load *l, size_t *n_blocks,
                      struct ota_err *err) OTA_MUST_CHECK;

/*
 * The i-th LOAD (0-based): 80 E8 P1 i Lc block, P1 80 on the last block
 * and 00 otherwise, no Le. Returns the length, or the errors of
 * ota_gp_load_count(), -EINVAL (OTA_ERR_ARG: i out of range), -ENOSPC.
 */
int ota_gp_load_block(const struct ota_gp_load *l, size_t i, uint8_t *dst, size_t cap,
                      struct ota_err *err) OTA_MUST_CHECK;

/* ---- DELETE (GP 2.2 11.2) ---- */

/*
 * 80 E4 00 P2 Lc 4F len AID [extra] 00, P2 80 when related objects go too
 * (an ELF with its applications). extra is appended as given (the optional
 * B6 control reference template and 9E token TLVs; NULL for none).
 * Returns the length, or -EINVAL (OTA_ERR_ARG), -EMSGSIZE, -ENOSPC.
 */
int ota_gp_delete(const uint8_t *aid, size_t aid_len, bool related, const uint8_t *extra,
                  size_t extra_len, uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/* ---- SET STATUS (GP 2.2 11.10) ---- */

#define OTA_GP_STATUS_SCOPE_ISD 0x80     /* the card / ISD: no AID */
#define OTA_GP_STATUS_SCOPE_APP 0x40     /* an application or SD */
#define OTA_GP_STATUS_SCOPE_SD_APPS 0x60 /* an SD and its associated applications */
/* P2 values for applications, as GlobalPlatformPro sends them. */
#define OTA_GP_SET_STATUS_LOCK 0x80   /* set the lock bit */
#define OTA_GP_SET_STATUS_UNLOCK 0x00 /* clear it */

/*
 * 80 F0 scope state [Lc AID], no Le. scope is one of the three above; an
 * AID (5..16) is required for APP / SD_APPS and not allowed for ISD (card
 * lock 7F, terminate FF, SECURED 0F). state goes to P2 as given.
 * Returns the length, or -EINVAL (OTA_ERR_ARG), -ENOSPC.
 */
int ota_gp_set_status(uint8_t scope, uint8_t state, const uint8_t *aid, size_t aid_len,
                      uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/* ---- PUT KEY (GP 2.2 11.8, AES per Amendment D) ---- */

#define OTA_GP_KEY_TYPE_DES 0x80 /* DES / 3DES, ECB under a 3DES DEK */
#define OTA_GP_KEY_TYPE_AES 0x88 /* AES, CBC IV 0 under an AES DEK */
#define OTA_GP_PUT_KEY_MAX 3     /* a key set: ENC, MAC, DEK */

/*
 * 80 D8 old_kvn P2 Lc new_kvn {key}.. 00 with P2 = key_id, | 80 when more
 * than one key. Each key, plain in keys[] (borrowed), is written as
 *   DES/3DES: 80 | len | 3DES-ECB(dek, key) | 03 | KCV(key)
 *   AES:      88 | 1 + len | len | AES-CBC(dek, IV 0, key) | 03 | KCV(key)
 * with KCV from ota_crypto_kcv() of the plain key. old_kvn 00 adds a new
 * key set. dek is the key encryption key: under SCP02 the SESSION DEK
 * (ota.md 4.7), under SCP80 RAM the static DEK of the target SD; the
 * caller decides. DES keys need a 3DES dek, AES keys an AES dek and a
 * length of 16 or 32 (multiples of the AES block).
 * Layout: DES per ota.md 5; AES key type 88 and the extra length octet per
 * GlobalPlatformPro's encoding of SCP03 keys [GP Amd D text unverified].
 * Le 00: the card answers with KVN and KCVs [unverified whether every
 * card wants Le].
 * Returns the length, or -EINVAL (OTA_ERR_ARG: n_keys 0 or over 3, key_id
 * over 7F; OTA_ERR_KEY: wrong key or DEK type/length), -EIO (OTA_ERR_CRYPTO),
 * -EMSGSIZE, -ENOSPC. Clears its stack copies of key material.
 */
int ota_gp_put_key(struct ota_crypto *c, uint8_t old_kvn, uint8_t new_kvn, uint8_t key_id,
                   const struct ota_key *keys, size_t n_keys, const struct ota_key *dek,
                   uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/* ---- STORE DATA (GP 2.2 11.11) ---- */

#define OTA_GP_STORE_LAST 0x80          /* b8: last block */
#define OTA_GP_STORE_ENC_NONE 0x00      /* b7b6 00 */
#define OTA_GP_STORE_ENC_APP 0x20       /* b7b6 01: application dependent */
#define OTA_GP_STORE_ENC_ENCRYPTED 0x60 /* b7b6 11: encrypted data */
#define OTA_GP_STORE_STRUCT_NONE 0x00   /* b5b4 00 */
#define OTA_GP_STORE_STRUCT_DGI 0x08    /* b5b4 01 */
#define OTA_GP_STORE_STRUCT_BERTLV 0x10 /* b5b4 10 */

/*
 * 80 E2 p1 block Lc data, no Le. p1 is as given (the flags above).
 * Returns the length, or -EINVAL (OTA_ERR_ARG: len 0, reserved bits
 * b7b6 = 10 or b5b4 = 11, or b3..b1 set), -EMSGSIZE (len > 255), -ENOSPC.
 */
int ota_gp_store_data(uint8_t p1, uint8_t block, const uint8_t *data, size_t len, uint8_t *dst,
                      size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Number of STORE DATA blocks for a payload cut at block_len (1..255).
 * -EINVAL for len 0 / bad block_len, -EMSGSIZE for more than 256 blocks.
 */
int ota_gp_store_data_count(size_t len, size_t block_len, size_t *n_blocks,
                            struct ota_err *err) OTA_MUST_CHECK;

/*
 * The i-th STORE DATA of a payload cut at block_len: P1 = flags (without
 * b8) | 80 on the last block, P2 = i. Returns as ota_gp_store_data(), or
 * -EINVAL for i out of range. The caller encrypts the payload first when
 * flags say ENCRYPTED (every block separately if the application wants it).
 */
int ota_gp_store_data_block(uint8_t flags, const uint8_t *payload, size_t len, size_t block_len,
                            size_t i, uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/* ---- GET STATUS (GP 2.2 11.4) ---- */

#define OTA_GP_STATUS_ISD 0x80     /* P1: the ISD */
#define OTA_GP_STATUS_APPS 0x40    /* applications and SSDs */
#define OTA_GP_STATUS_ELF 0x20     /* executable load files */
#define OTA_GP_STATUS_ELF_MOD 0x10 /* ELFs and their modules */
#define OTA_GP_STATUS_LEGACY 0x00  /* P2 b2 0: legacy response */
#define OTA_GP_STATUS_TLV 0x02     /* P2 b2 1: E3 TLV response */
#define OTA_GP_STATUS_NEXT 0x01    /* P2 b1 1: next occurrence (after 6310) */

/*
 * 80 F2 p1 p2 Lc 4F len aid [5C len tag_list] 00. aid is the search
 * criterion: empty (4F 00, every entry) or 1..16 octets (an AID prefix).
 * tag_list (NULL for none) asks for those tags only (GP 2.2 11.4.2.1).
 * Returns the length, or -EINVAL (OTA_ERR_ARG: p1 not one of the four, p2
 * with bits other than b2b1), -ENOSPC.
 */
int ota_gp_get_status(uint8_t p1, uint8_t p2, const uint8_t *aid, size_t aid_len,
                      const uint8_t *tag_list, size_t tag_list_len, uint8_t *dst, size_t cap,
                      struct ota_err *err) OTA_MUST_CHECK;

/*
 * One entry of a GET STATUS response; every pointer borrows from the
 * response buffer. Fields absent in the response have length 0.
 */
struct ota_gp_status_entry {
    const uint8_t *aid; /* 4F / legacy AID */
    size_t aid_len;
    uint8_t lcs;            /* 9F70 / legacy life cycle state */
    uint8_t priv[3];        /* C5 / legacy privileges */
    size_t priv_len;        /* 0, 1 or 3 */
    const uint8_t *version; /* CE: ELF version */
    size_t version_len;
    const uint8_t *elf_aid; /* C4: the ELF an application comes from */
    size_t elf_aid_len;
    const uint8_t *sd_aid; /* CC: associated security domain */
    size_t sd_aid_len;
    size_t n_modules;       /* 84 TLVs / legacy module list */
    const uint8_t *modules; /* raw module region, read with ota_gp_status_module() */
    size_t modules_len;
    bool modules_tlv; /* modules region is 84 TLVs (else len|AID pairs) */
};

/*
 * Parse a TLV-format (P2 b2 = 1) response: E3 {4F, 9F70, C5, C4, CE, 84..,
 * CC} repeated. Unknown tags inside E3 are skipped (later GP amendments add
 * some, e.g. CF implicit selection); any tag other than E3 at the top level
 * is refused. Returns 0 and *n_out, or -EBADMSG with OTA_ERR_TRUNCATED,
 * OTA_ERR_LENGTH (inner TLV overrunning E3; 9F70 not 1 octet; C5 not 1 or
 * 3; an AID outside 1..16), OTA_ERR_TAG, OTA_ERR_MISSING (no 4F or 9F70),
 * OTA_ERR_DUPLICATE; -ENOSPC (OTA_ERR_LIMIT: more than cap entries).
 * Nothing is written on failure. Input is the response data without SW.
 */
int ota_gp_status_parse_tlv(const uint8_t *p, size_t len, struct ota_gp_status_entry *entries,
                            size_t cap, size_t *n_out, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Parse a legacy-format (P2 b2 = 0) response: {len AID | AID | LCS | priv}
 * repeated, and for p1 = 10 also {n modules | {len | AID}..} per entry.
 * Returns as ota_gp_status_parse_tlv() (OTA_ERR_LENGTH for an AID length
 * outside 1..16).
 */
int ota_gp_status_parse_legacy(const uint8_t *p, size_t len, uint8_t p1,
                               struct ota_gp_status_entry *entries, size_t cap, size_t *n_out,
                               struct ota_err *err) OTA_MUST_CHECK;

/*
 * The i-th module AID of an entry from either parser. Returns 0, or
 * -EINVAL (OTA_ERR_ARG) when i >= n_modules. The parser has validated the
 * region, so this does not fail otherwise.
 */
int ota_gp_status_module(const struct ota_gp_status_entry *e, size_t i, const uint8_t **aid,
                         size_t *aid_len, struct ota_err *err) OTA_MUST_CHECK;

/* ---- GET DATA, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE ---- */

/* 80 CA tag-hi tag-lo 00 (GP 2.2 11.3), e.g. 0066 card data, 00E0 key info. */
int ota_gp_get_data(uint16_t tag, uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/* 80 50 kvn 00 08 challenge(8) 00 (GP 2.2 E.5.1); kvn 00 = default key set. */
int ota_gp_init_update(uint8_t kvn, const uint8_t host_challenge[8], uint8_t *dst, size_t cap,
                       struct ota_err *err) OTA_MUST_CHECK;

/*
 * 84 82 sl 00 10 cryptogram(8) C-MAC(8) (GP 2.2 E.5.2). The C-MAC is the
 * SCP02 layer's to compute. sl is 00, 01, 03, 11 or 13, else -EINVAL.
 */
int ota_gp_ext_auth(uint8_t sl, const uint8_t host_cryptogram[8], const uint8_t mac[8],
                    uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;
