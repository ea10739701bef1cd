/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SCP80 secured packets in the SMS dialect (ETSI TS 102 225 5.1-5.2, 3GPP
 * TS 31.115 4.2-4.4): SPI, KIc and KID coding (TS 102 225 5.1.1-5.1.3), the
 * counter rules of the receiving entity (5.1.1), command packets (encode on
 * the gateway, decode on the simulated card) and response packets / PoR
 * (encode on the simulated card, decode and match on the gateway).
 *
 * Implemented in ota/scp80.c. Part of the ota/ public face: users include
 * "ota/ota.h". Nothing here allocates, logs or keeps state; all crypto goes
 * through ota/ota_crypto.h, so a struct ota_crypto is passed in and, like
 * it, the calls are not thread-safe per context.
 */
#pragma once

#include "ota/ota_common.h"
#include "ota/ota_crypto.h"

/*
 * Largest command or response packet (CPL/RPL + 2) we build or accept.
 * TS 31.115 4.3 allows up to 255 concatenated SMS; 2048 octets (15 SMS)
 * covers every RAM/RFM script we push and bounds the stack scratch of the
 * PoR encoder. Longer packets fail with -EMSGSIZE / OTA_ERR_OVERSIZE.
 */
#define OTA_SCP80_MAX_PACKET 2048
/* TS 31.115 4.2: 140 octets of 8-bit UD minus the UDH 02 70 00. */
#define OTA_SCP80_MAX_SINGLE_SMS 137
/* Length of the UDH of a single-SMS command (02 70 00) or PoR (02 71 00). */
#define OTA_SCP80_UDH_LEN 3
/* CHL without RC/CC/DS: SPI(2) KIc(1) KID(1) TAR(3) CNTR(5) PCNTR(1) (TS 102 225 5.1). */
#define OTA_SCP80_CHL_BASE 13
/* RHL without RC/CC/DS: TAR(3) CNTR(5) PCNTR(1) STATUS(1) (TS 102 225 5.2). */
#define OTA_SCP80_RHL_BASE 10
/* Longest RC/CC we produce or check (DES CBC-MAC, CMAC-64). */
#define OTA_SCP80_CC_MAX 8
/* 5 octets of counter (TS 102 225 5.1.1); the card blocks at this value. */
#define OTA_SCP80_CNTR_MAX 0xFFFFFFFFFFull

/* SPI first octet b2b1 / second octet b4b3 (TS 102 225 5.1.1). */
enum ota_scp80_integrity {
    OTA_SCP80_INTEGRITY_NONE = 0,
    OTA_SCP80_INTEGRITY_RC = 1, /* redundancy check (CRC) */
    OTA_SCP80_INTEGRITY_CC = 2, /* cryptographic checksum */
    OTA_SCP80_INTEGRITY_DS = 3, /* digital signature: decoded, never processed */
};

/* SPI first octet b5b4 (TS 102 225 5.1.1). */
enum ota_scp80_cntr_mode {
    OTA_SCP80_CNTR_NONE = 0,    /* no counter available (CNTR still sent) */
    OTA_SCP80_CNTR_NOCHECK = 1, /* counter present, not checked */
    OTA_SCP80_CNTR_HIGHER = 2,  /* process only if CNTR > stored */
    OTA_SCP80_CNTR_PLUS1 = 3,   /* process only if CNTR = stored + 1 */
};

/* SPI second octet b2b1; 11 is reserved and refused. */
enum ota_scp80_por_req {
    OTA_SCP80_POR_NONE = 0,
    OTA_SCP80_POR_ALWAYS = 1,
    OTA_SCP80_POR_ON_ERROR = 2,
};

/* SPI second octet b6 (TS 31.115 4.4). */
enum ota_scp80_por_via {
    OTA_SCP80_POR_VIA_DELIVER_REPORT = 0,
    OTA_SCP80_POR_VIA_SMS_SUBMIT = 1,
};

/* The two SPI octets, decoded. */
struct ota_scp80_spi {
    enum ota_scp80_integrity integrity;
    bool ciphered;
    enum ota_scp80_cntr_mode cntr_mode;
    enum ota_scp80_por_req por;
    enum ota_scp80_integrity por_integrity;
    bool por_ciphered;
    enum ota_scp80_por_via por_via;
};

/*
 * Algorithm named by a KIc or KID octet (TS 102 225 5.1.2, 5.1.3). IMPLICIT
 * (b2b1 = 00) means "agreed beforehand": the key the caller passes decides.
 */
enum ota_scp80_alg {
    OTA_SCP80_ALG_IMPLICIT = 0,
    OTA_SCP80_ALG_DES_CBC = 1,       /* KIc 01 / b4b3 00 */
    OTA_SCP80_ALG_3DES2_CBC = 2,     /* KIc 01 / 01 */
    OTA_SCP80_ALG_3DES3_CBC = 3,     /* KIc 01 / 10 */
    OTA_SCP80_ALG_DES_ECB = 4,       /* KIc 01 / 11 */
    OTA_SCP80_ALG_AES_CBC = 5,       /* KIc 10 / 00, key length from the key */
    OTA_SCP80_ALG_DES_CBC_MAC = 6,   /* KID (CC) 01 / 00 */
    OTA_SCP80_ALG_3DES2_CBC_MAC = 7, /* KID (CC) 01 / 01 */
    OTA_SCP80_ALG_3DES3_CBC_MAC = 8, /* KID (CC) 01 / 10 */
    OTA_SCP80_ALG_AES_CMAC = 9,      /* KID (CC) 10 / 00, CC = leftmost 4 or 8 */
    OTA_SCP80_ALG_CRC16 = 10,        /* KID (RC) 01 / 00, 2 octets */
    OTA_SCP80_ALG_CRC32 = 11,        /* KID (RC) 01 / 01, 4 octets */
};

/* Response status of the PoR (TS 102 225 table 5.5, TS 31.115 for 0B/0C). */
enum ota_scp80_por_status {
    OTA_SCP80_ST_OK = 0x00,
    OTA_SCP80_ST_RC_CC_DS_FAILED = 0x01,
    OTA_SCP80_ST_CNTR_LOW = 0x02,
    OTA_SCP80_ST_CNTR_HIGH = 0x03,
    OTA_SCP80_ST_CNTR_BLOCKED = 0x04,
    OTA_SCP80_ST_CIPHERING_ERROR = 0x05,
    OTA_SCP80_ST_UNIDENTIFIED_SECURITY = 0x06,
    OTA_SCP80_ST_INSUFFICIENT_MEMORY = 0x07,
    OTA_SCP80_ST_MORE_TIME = 0x08,
    OTA_SCP80_ST_TAR_UNKNOWN = 0x09,
    OTA_SCP80_ST_INSUFFICIENT_SECURITY = 0x0A,
    OTA_SCP80_ST_VIA_SMS_SUBMIT = 0x0B,
    OTA_SCP80_ST_VIA_USSD = 0x0C,
    /* 0x0D..0xFF reserved: stored as received, named "reserved" */
};

/* Whether a received RC/CC was present and checked. A mismatch is an error, not a state. */
enum ota_scp80_cc_state {
    OTA_SCP80_CC_ABSENT = 0,
    OTA_SCP80_CC_VALID = 1,
};

/* Name tables; never NULL ("unknown" / "reserved" for values out of range). */
const char *ota_scp80_integrity_name(enum ota_scp80_integrity v);
const char *ota_scp80_cntr_mode_name(enum ota_scp80_cntr_mode v);
const char *ota_scp80_por_req_name(enum ota_scp80_por_req v);
const char *ota_scp80_por_via_name(enum ota_scp80_por_via v);
const char *ota_scp80_alg_name(enum ota_scp80_alg v);
const char *ota_scp80_por_status_name(unsigned status);
const char *ota_scp80_cc_state_name(enum ota_scp80_cc_state v);

/*
 * Decode two SPI octets. Returns 0, -EBADMSG with OTA_ERR_TRUNCATED (len < 2)
 * or OTA_ERR_VALUE (first-octet b8..b6 set, second-octet b8b7 set, PoR b2b1
 * = 11; the message says which). DS decodes fine: the packet calls refuse it.
 * *out is set only on success.
 */
int ota_scp80_spi_decode(const uint8_t *p, size_t len, struct ota_scp80_spi *out,
                         struct ota_err *err) OTA_MUST_CHECK;

/*
 * Encode *spi into dst[0..1]. Returns 2, -EINVAL (OTA_ERR_ARG: a field out of
 * its enum) or -ENOSPC (OTA_ERR_NOSPACE). dst is untouched on failure.
 */
int ota_scp80_spi_encode(const struct ota_scp80_spi *spi, uint8_t *dst, size_t cap,
                         struct ota_err *err) OTA_MUST_CHECK;

/*
 * KIc octet (TS 102 225 5.1.2): *kvn gets b8..b5, *alg the algorithm.
 * Returns 0, -ENOTSUP (OTA_ERR_VALUE: proprietary b2b1 = 11) or -EBADMSG
 * (OTA_ERR_VALUE: AES family with b4b3 != 00, reserved). Outputs set only on
 * success; either pointer may be NULL.
 */
int ota_scp80_kic_decode(uint8_t kic, uint8_t *kvn, enum ota_scp80_alg *alg,
                         struct ota_err *err) OTA_MUST_CHECK;

/*
 * KID octet (TS 102 225 5.1.3), read according to the integrity the SPI
 * asks for (CC or RC; NONE gives IMPLICIT without looking). Returns 0,
 * -ENOTSUP (OTA_ERR_VALUE: DS, proprietary family, implicit RC) or -EBADMSG
 * (OTA_ERR_VALUE: reserved b4b3 / family). Outputs set only on success.
 */
int ota_scp80_kid_decode(uint8_t kid, enum ota_scp80_integrity integrity, uint8_t *kvn,
                         enum ota_scp80_alg *alg, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Build a KIc or KID octet from a KVN (0..15) and an algorithm. Returns the
 * octet (0..255) or -EINVAL (OTA_ERR_ARG). IMPLICIT gives family 00.
 * CRC16/CRC32 give the RC coding of KID.
 */
int ota_scp80_keyid_encode(uint8_t kvn, enum ota_scp80_alg alg, struct ota_err *err) OTA_MUST_CHECK;

/* What a command packet announces besides its data (gateway and card side). */
struct ota_scp80_cmd {
    struct ota_scp80_spi spi;
    uint8_t kic; /* coded KIc octet */
    uint8_t kid; /* coded KID octet */
    uint8_t tar[3];
    uint64_t cntr;  /* 40 bits; sent as given even in counter mode 00 */
    uint8_t cc_len; /* AES-CMAC: 4 or 8 (0 = 8); DES CBC-MAC: 0 or 8; RC: ignored */
};

/*
 * The keys of a command and its PoR. Borrowed; kic may be NULL when neither
 * the command nor the PoR is ciphered, kid NULL when no CC is used (RC needs
 * no key). A key's cipher and length must match what KIc/KID code
 * (OTA_ERR_KEY otherwise).
 */
struct ota_scp80_keys {
    const struct ota_key *kic;
    const struct ota_key *kid;
};

/*
 * Details of an encoded command packet (optional out-struct, for logs and
 * test vectors). plain/plain_cap are IN: when plain is not NULL the
 * plaintext from CNTR to the end (CNTR|PCNTR|CC|data|padding, before
 * ciphering) is copied there and plain_len set.
 */
struct ota_scp80_cmd_info {
    uint16_t cpl;
    uint8_t chl;
    uint8_t pcntr;
    uint8_t cc_len;
    uint8_t cc[OTA_SCP80_CC_MAX];
    uint8_t *plain;
    size_t plain_cap;
    size_t plain_len;
};

/*
 * Length of the command packet (CPL included) that ota_scp80_cmd_encode()
 * would produce, into *out_len. Same checks and errors as the encoder, no
 * crypto. Returns 0 or a negative errno.
 */
int ota_scp80_cmd_len(const struct ota_scp80_cmd *cmd, const struct ota_scp80_keys *keys,
                      size_t data_len, size_t *out_len, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Encode a command packet (TS 102 225 5.1, TS 31.115 4.2) from CPL onwards:
 * CPL|CHL|SPI|KIc|KID|TAR|CNTR|PCNTR|RC/CC|data|padding. Padding (00) only
 * when ciphering; RC/CC over CPL..PCNTR|data|padding; then CNTR..end
 * enciphered with KIc (CBC IV 0, or ECB for DES-ECB). data (the secured data,
 * opaque here) may be NULL when data_len is 0. info may be NULL.
 * Returns the packet length, or -EINVAL (OTA_ERR_ARG bad field / cc_len /
 * counter > 40 bits; OTA_ERR_KEY key missing or not matching KIc/KID),
 * -ENOTSUP (OTA_ERR_VALUE: DS, proprietary algorithm), -EBADMSG
 * (OTA_ERR_VALUE: reserved KIc/KID coding), -EMSGSIZE
 * (OTA_ERR_OVERSIZE: above OTA_SCP80_MAX_PACKET), -ENOSPC (OTA_ERR_NOSPACE)
 * or -EIO (OTA_ERR_CRYPTO). Every check runs before dst is written; after an
 * OpenSSL failure dst[0..cap) is wiped.
 */
int ota_scp80_cmd_encode(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                         const struct ota_scp80_keys *keys, const uint8_t *data, size_t data_len,
                         uint8_t *dst, size_t cap, struct ota_scp80_cmd_info *info,
                         struct ota_err *err) OTA_MUST_CHECK;

/*
 * As ota_scp80_cmd_encode(), but writes the single-SMS user data: UDH
 * 02 70 00 then the packet. A packet above OTA_SCP80_MAX_SINGLE_SMS (137)
 * octets fails with -EMSGSIZE / OTA_ERR_OVERSIZE (concatenation is the job of
 * ota/concat.c). Returns the user data length.
 */
int ota_scp80_cmd_encode_sms(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                             const struct ota_scp80_keys *keys, const uint8_t *data,
                             size_t data_len, uint8_t *dst, size_t cap,
                             struct ota_scp80_cmd_info *info, struct ota_err *err) OTA_MUST_CHECK;

/* The clear header of a received command packet (CPL..TAR). */
struct ota_scp80_cmd_hdr {
    uint16_t cpl;
    uint8_t chl;
    uint8_t spi_raw[2];
    struct ota_scp80_spi spi;
    uint8_t kic;
    uint8_t kid;
    uint8_t tar[3];
};

/*
 * Parse the clear part of a command packet so the card can pick its keys
 * by TAR and KVN. Checks lengths (CPL against len, CHL range) and the SPI
 * coding. Returns 0 or -EBADMSG with OTA_ERR_TRUNCATED / OTA_ERR_LENGTH /
 * OTA_ERR_VALUE, -EMSGSIZE (OTA_ERR_OVERSIZE).
 */
int ota_scp80_cmd_peek(const uint8_t *p, size_t len, struct ota_scp80_cmd_hdr *out,
                       struct ota_err *err) OTA_MUST_CHECK;

/* A received, verified command packet. data points into the caller's work buffer. */
struct ota_scp80_cmd_rx {
    struct ota_scp80_cmd_hdr hdr;
    uint64_t cntr;
    uint8_t pcntr;
    uint8_t cc_len;
    uint8_t cc[OTA_SCP80_CC_MAX];
    const uint8_t *data;
    size_t data_len;
};

/*
 * Card side: decode, decipher and verify a command packet p[0..len) (from
 * CPL, exactly CPL + 2 octets). work (at least len octets, not overlapping
 * p) receives the plaintext; out->data points into it. Checks, in order:
 * lengths (OTA_ERR_TRUNCATED, OTA_ERR_LENGTH for trailing octets or a
 * CPL/CHL that disagrees with the SPI/KID, OTA_ERR_OVERSIZE), SPI/KIc/KID
 * coding (OTA_ERR_VALUE, -ENOTSUP for DS/proprietary), keys (OTA_ERR_KEY),
 * cipher block alignment (OTA_ERR_PADDING), RC/CC (-EBADMSG OTA_ERR_BAD_CC,
 * constant-time compare), PCNTR (OTA_ERR_PADDING: above the data, >= block,
 * or non-zero without ciphering). The counter is NOT checked here: see
 * ota_scp80_cntr_check(). *out is set only on success; a failure after
 * deciphering wipes work[0..len).
 */
int ota_scp80_cmd_decode(struct ota_crypto *c, const struct ota_scp80_keys *keys, const uint8_t *p,
                         size_t len, uint8_t *work, size_t work_cap, struct ota_scp80_cmd_rx *out,
                         struct ota_err *err) OTA_MUST_CHECK;

/*
 * Card side counter rule of TS 102 225 5.1.1: given the SPI counter mode,
 * the stored counter and the received one, set *status to OK, CNTR_LOW
 * (replayed or lower in modes 10/11), CNTR_HIGH (mode 11, not exactly +1)
 * or CNTR_BLOCKED (stored counter at OTA_SCP80_CNTR_MAX, modes 10/11).
 * Modes 00/01 always give OK. The caller stores the received counter only
 * when the whole packet was accepted. Returns 0, or -EINVAL (OTA_ERR_ARG:
 * a counter above 40 bits, unknown mode).
 */
int ota_scp80_cntr_check(enum ota_scp80_cntr_mode mode, uint64_t stored, uint64_t received,
                         enum ota_scp80_por_status *status, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Card side: encode the PoR for *cmd (TAR and counter repeated from it):
 * RPL|RHL|TAR|CNTR|PCNTR|STATUS|RC/CC|data|padding (TS 102 225 5.2). With
 * protect true the SPI second octet decides RC/CC (KID, keys->kid) and
 * ciphering (KIc, keys->kic); the CC covers 02 71 00|RPL..STATUS|data|
 * padding (TS 31.115 4.4). With protect false an unprotected PoR is built
 * (RHL 0A, no ciphering), as cards do for security errors. Returns the
 * packet length or a negative errno as ota_scp80_cmd_encode().
 */
int ota_scp80_por_encode(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                         const struct ota_scp80_keys *keys, bool protect, uint8_t status,
                         const uint8_t *data, size_t data_len, uint8_t *dst, size_t cap,
                         struct ota_err *err) OTA_MUST_CHECK;

/* As ota_scp80_por_encode(), preceded by the UDH 02 71 00; returns the UD length. */
int ota_scp80_por_encode_sms(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                             const struct ota_scp80_keys *keys, bool protect, uint8_t status,
                             const uint8_t *data, size_t data_len, uint8_t *dst, size_t cap,
                             struct ota_err *err) OTA_MUST_CHECK;

/* A decoded PoR. data points into the caller's work buffer. */
struct ota_scp80_por {
    uint16_t rpl;
    uint8_t rhl;
    uint8_t tar[3];
    uint64_t cntr;
    uint8_t pcntr;
    uint8_t status; /* enum ota_scp80_por_status, or reserved */
    uint8_t cc_len; /* from RHL */
    uint8_t cc[OTA_SCP80_CC_MAX];
    enum ota_scp80_cc_state cc_state;
    bool deciphered;
    /* The SPI asked for RC/CC and/or ciphering and the PoR carries none. */
    bool protection_missing;
    const uint8_t *data; /* additional response data */
    size_t data_len;
};

/* Work buffer a PoR of len octets needs: the CC input is rebuilt there. */
#define OTA_SCP80_POR_WORK(len) ((len) + OTA_SCP80_UDH_LEN)

/*
 * Gateway side: decode the response packet p[0..len) (from RPL, exactly
 * RPL + 2 octets) to the command *cmd (its SPI second octet, KIc, KID) with
 * its keys. The RC/CC length comes from RHL; it must be one the KID allows,
 * or 0. A PoR with RHL 0A when the SPI asked for RC/CC, or plainly not
 * ciphered when it asked for ciphering, is parsed as plain with
 * protection_missing set and cc_state ABSENT: never reported as verified.
 * cmd->cntr is read only when the SPI asks for a ciphered PoR without RC/CC
 * and an unprotected PoR happens to be block aligned: the reading (plain or
 * deciphered) that shows the command's counter is taken.
 * work must hold OTA_SCP80_POR_WORK(len) octets and not overlap p; out->data
 * points into it. Returns 0, -EBADMSG (OTA_ERR_TRUNCATED, OTA_ERR_LENGTH,
 * OTA_ERR_PADDING, OTA_ERR_VALUE, OTA_ERR_BAD_CC: nothing is returned),
 * -EMSGSIZE, -ENOTSUP (DS / proprietary), -EINVAL (OTA_ERR_KEY, OTA_ERR_ARG),
 * -ENOSPC (work too small) or -EIO. *out is set only on success.
 */
int ota_scp80_por_decode(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                         const struct ota_scp80_keys *keys, const uint8_t *p, size_t len,
                         uint8_t *work, size_t work_cap, struct ota_scp80_por *out,
                         struct ota_err *err) OTA_MUST_CHECK;

/*
 * As ota_scp80_por_decode() for SMS user data: UDHL, IEs (one of them the
 * RPI 71 with length 0, OTA_ERR_MISSING otherwise, OTA_ERR_DUPLICATE if
 * twice), then the packet. A longer UDH (e.g. after reassembly) is
 * accepted; the CC input still starts with 02 71 00, as a single-SMS PoR
 * has it (TS 31.115 4.4).
 */
int ota_scp80_por_decode_sms(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                             const struct ota_scp80_keys *keys, const uint8_t *ud, size_t len,
                             uint8_t *work, size_t work_cap, struct ota_scp80_por *out,
                             struct ota_err *err) OTA_MUST_CHECK;

/*
 * Does *por answer the command sent with tar and cntr? Returns 0, or
 * -EBADMSG with OTA_ERR_TAR or OTA_ERR_COUNTER (the PoR repeats the
 * command's counter, TS 102 225 5.2). Cannot fail otherwise.
 */
int ota_scp80_por_match(const struct ota_scp80_por *por, const uint8_t tar[3], uint64_t cntr,
                        struct ota_err *err) OTA_MUST_CHECK;
