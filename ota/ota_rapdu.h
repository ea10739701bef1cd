/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Remote APDU formats of ETSI TS 102 226 clause 5: the secured data of an
 * SCP80 command packet and the additional data of its PoR.
 *   - compact format (5.1): C-APDUs back to back; the response is
 *     n executed (1) | SW of the last (2) | data of the last;
 *   - expanded format (5.2): BER-TLV Command Scripting template AA (definite)
 *     or AE 80 .. 00 00 (indefinite) holding C-APDU TLVs 22 and Immediate
 *     Action 81 / Error Action 82 / Script Chaining 83; Response Scripting
 *     template AB / AF holding number of executed command TLVs 80, R-APDU
 *     TLVs 23 (data | SW1 SW2), Bad Format 90, Immediate Action response 81
 *     and Script Chaining response 83. Template tags per TS 101 220 tables
 *     7.18-7.20 (checked against osmocom pySim ota.py and a TS 101 220 tag
 *     table; the clause text itself was not at hand).
 * Also the small BER-TLV walker (tags of 1-2 octets, lengths of 1-3 octets)
 * that the GlobalPlatform response parsers share.
 * Part of the ota/ public face: users include "ota/ota.h".
 */
#pragma once

#include "ota/ota_common.h"
#include "ota/ota_apdu.h"

/* TS 101 220 table 7.18: Remote Management application data templates. */
#define OTA_RAPDU_TAG_CMD_DEF 0xAA   /* Command Scripting template, definite length */
#define OTA_RAPDU_TAG_RSP_DEF 0xAB   /* Response Scripting template, definite length */
#define OTA_RAPDU_TAG_CMD_INDEF 0xAE /* Command Scripting template, indefinite length */
#define OTA_RAPDU_TAG_RSP_INDEF 0xAF /* Response Scripting template, indefinite length */
/* TS 101 220 table 7.19: inside a Command Scripting template. */
#define OTA_RAPDU_TAG_C_APDU 0x22
#define OTA_RAPDU_TAG_IMMEDIATE 0x81
#define OTA_RAPDU_TAG_ERROR_ACTION 0x82
#define OTA_RAPDU_TAG_CHAINING 0x83
/* TS 101 220 table 7.20: inside a Response Scripting template. */
#define OTA_RAPDU_TAG_R_APDU 0x23
#define OTA_RAPDU_TAG_N_EXECUTED 0x80
#define OTA_RAPDU_TAG_IMMEDIATE_RSP 0x81
#define OTA_RAPDU_TAG_CHAINING_RSP 0x83
#define OTA_RAPDU_TAG_BAD_FORMAT 0x90

/* TS 102 226 5.2.1.1: SW a card puts on an R-APDU whose data it had to cut. */
#define OTA_RAPDU_SW_TRUNCATED 0x62F1

/* The BER-TLV length forms we accept and write: xx, 81 xx, 82 xx xx. */
#define OTA_RAPDU_TLV_MAX_LEN 0xFFFFu

/* ---- BER-TLV walker (ISO/IEC 8825-1 subset used by TS 102 226 and GP) ---- */

/* One TLV found in a buffer; value points into that buffer (borrowed). */
struct ota_rapdu_tlv {
    uint16_t tag;         /* 1-octet tags as 00xx, 2-octet tags as xxyy */
    const uint8_t *value; /* NULL when len == 0 */
    size_t len;           /* value length */
    size_t size;          /* tag + length + value octets */
};

/*
 * Read the TLV at the start of p. nested says whether p is the value of a
 * complete enclosing TLV: then a value running past len is a lying length
 * (OTA_ERR_LENGTH); at the top level it means the input was cut
 * (OTA_ERR_TRUNCATED). Returns 0, or -EBADMSG with OTA_ERR_TRUNCATED (no
 * complete tag or length field), OTA_ERR_TAG (tag 00, or a tag of more than
 * 2 octets), OTA_ERR_LENGTH (indefinite length 80), OTA_ERR_OVERSIZE (a
 * length field of 4 or more octets). *t is set only on success.
 */
int ota_rapdu_tlv_get(const uint8_t *p, size_t len, bool nested, struct ota_rapdu_tlv *t,
                      struct ota_err *err) OTA_MUST_CHECK;

/* Octets of tag + length header for (tag, vlen); 0 when vlen > 0xFFFF. Can't fail. */
size_t ota_rapdu_tlv_hdr_len(uint16_t tag, size_t vlen);

/*
 * Write tag, length and value (value may be NULL when vlen is 0, and may
 * overlap dst: it is moved). Returns the octets written, or -EINVAL
 * (OTA_ERR_ARG: a 2-octet tag whose first octet lacks 1F, or a 1-octet tag
 * with 1F / 00), -EMSGSIZE (OTA_ERR_OVERSIZE: vlen > 0xFFFF), -ENOSPC
 * (OTA_ERR_NOSPACE).
 */
int ota_rapdu_tlv_put(uint16_t tag, const uint8_t *value, size_t vlen, uint8_t *dst, size_t cap,
                      struct ota_err *err) OTA_MUST_CHECK;

/* ---- formats ---- */

enum ota_rapdu_format {
    OTA_RAPDU_COMPACT = 0,
    OTA_RAPDU_EXPANDED_DEF = 1,   /* AA / AB */
    OTA_RAPDU_EXPANDED_INDEF = 2, /* AE / AF */
    OTA_RAPDU_FORMAT__COUNT
};

/* "compact", "expanded-definite", "expanded-indefinite"; never NULL. */
const char *ota_rapdu_format_name(enum ota_rapdu_format f);

/*
 * Tell the format of secured data from its first octet: AA / AE start an
 * expanded script, anything else is the CLA of a compact script (AA and AE
 * are no ISO/IEC 7816-4 class bytes). Returns 0, or -EBADMSG
 * (OTA_ERR_TRUNCATED) for empty input.
 */
int ota_rapdu_cmd_format(const uint8_t *p, size_t len, enum ota_rapdu_format *fmt,
                         struct ota_err *err) OTA_MUST_CHECK;

/*
 * Same for PoR additional data: AB / AF start an expanded response, anything
 * else is the executed-commands count of a compact one. A compact response
 * for 171 or 175 commands would be misread, so prefer the format of the
 * command that was sent; this is for data of unknown origin.
 */
int ota_rapdu_rsp_format(const uint8_t *p, size_t len, enum ota_rapdu_format *fmt,
                         struct ota_err *err) OTA_MUST_CHECK;

/* ---- compact format (TS 102 226 5.1) ---- */

/*
 * Whether a command of the compact format carries Le (case 2) in P3 rather
 * than Lc. The compact format has no outer lengths, so a 5-octet header is
 * ambiguous; this fixed list decides (ISO/IEC 7816-4, TS 102 221, GSM 11.11
 * and GP case-2 commands):
 *   B0 READ BINARY, B2 READ RECORD, C0 GET RESPONSE, CA GET DATA,
 *   12 FETCH, 84 GET CHALLENGE, F2 with P1 00..0F (TS 102 221 / GSM 11.11
 *   STATUS; GP GET STATUS uses P1 10..80 and carries data),
 *   70 MANAGE CHANNEL with P1 00 (open; Le 01).
 * Every other INS takes P3 as Lc. Can't fail.
 */
bool ota_rapdu_is_case2(uint8_t cla, uint8_t ins, uint8_t p1);

/*
 * Write apdus[0..n) back to back (TS 102 226 5.1.1), in the T=0 style the
 * card executes them in (TS 102 221 7.2 T=0 TPDUs; whether TS 102 226 5.1
 * says exactly this is [unverified]):
 *   case 1 as CLA INS P1 P2 00, case 2 as header + Le, case 3 as header +
 *   Lc + data, and case 4 as case 3 (Le dropped: after data a trailing Le
 *   could not be told from the next CLA, and T=0 sends case 4 that way too;
 *   the card then answers 61xx for the data).
 * A command the splitter would read back differently is refused with -EINVAL
 * (OTA_ERR_ARG): case 2 with an INS not listed by ota_rapdu_is_case2(),
 * case 1/3/4 with one that is. Returns the length written, or -EINVAL
 * (OTA_ERR_ARG also for n == 0 or lc with NULL data), -ENOSPC (OTA_ERR_NOSPACE).
 */
int ota_rapdu_compact_build(const struct ota_apdu *apdus, size_t n, uint8_t *dst, size_t cap,
                            struct ota_err *err) OTA_MUST_CHECK;

/*
 * Split a compact script into at most n_cap commands, using
 * ota_rapdu_is_case2() for 5-octet forms. A trailing 4-octet command is case
 * 1; P3 00 of a non-case-2 command is a case-1 command (lc 0, no Le).
 * apdus[i].data points into p. Returns 0 and sets *n_out, or -EBADMSG with
 * OTA_ERR_TRUNCATED (empty input, a header of 1-3 octets, data beyond the
 * end), -ENOSPC (OTA_ERR_LIMIT: more than n_cap commands). apdus[] and
 * *n_out are untouched on failure (the input is checked before anything is
 * written).
 */
int ota_rapdu_compact_split(const uint8_t *p, size_t len, struct ota_apdu *apdus, size_t n_cap,
                            size_t *n_out, struct ota_err *err) OTA_MUST_CHECK;

/* Compact response (TS 102 226 5.1.2); data borrowed from the parsed buffer. */
struct ota_rapdu_compact_rsp {
    uint8_t n_executed;  /* number of commands executed */
    uint16_t sw;         /* SW1 SW2 of the last executed command */
    const uint8_t *data; /* response data of the last command, NULL if none */
    size_t data_len;
};

/*
 * Parse PoR additional data in the compact format. Returns 0, or -EBADMSG
 * (OTA_ERR_TRUNCATED: fewer than the 3 octets count + SW).
 */
int ota_rapdu_compact_rsp_parse(const uint8_t *p, size_t len, struct ota_rapdu_compact_rsp *r,
                                struct ota_err *err) OTA_MUST_CHECK;

/*
 * Write a compact response (for the simulated card). Returns its length, or
 * -EINVAL (OTA_ERR_ARG: data_len > 0 with NULL data), -ENOSPC (OTA_ERR_NOSPACE).
 */
int ota_rapdu_compact_rsp_build(const struct ota_rapdu_compact_rsp *r, uint8_t *dst, size_t cap,
                                struct ota_err *err) OTA_MUST_CHECK;

/*
 * True when the script ran to the end: n_executed == n_sent and the last SW
 * is 9000 or 61xx. Can't fail.
 */
bool ota_rapdu_compact_rsp_ok(const struct ota_rapdu_compact_rsp *r, size_t n_sent);

/* ---- expanded format (TS 102 226 5.2) ---- */

/*
 * One command TLV of a Command Scripting template. For OTA_RAPDU_TAG_C_APDU
 * the apdu field is used (written with ota_apdu_build, so case 4 keeps its
 * Le); for 81 / 82 / 83 the raw value (borrowed).
 */
struct ota_rapdu_cmd_tlv {
    uint8_t tag;
    struct ota_apdu apdu;
    const uint8_t *value;
    size_t len;
};

/*
 * Write a Command Scripting template: AA len {TLVs} or AE 80 {TLVs} 00 00.
 * Returns the length, or -EINVAL (OTA_ERR_ARG: n == 0, a tag other than
 * 22/81/82/83, NULL value with len), -EMSGSIZE (OTA_ERR_OVERSIZE: a value
 * or the template over 0xFFFF), -ENOSPC (OTA_ERR_NOSPACE).
 */
int ota_rapdu_exp_cmd_build(const struct ota_rapdu_cmd_tlv *tlvs, size_t n, bool indefinite,
                            uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/* Convenience: a template of C-APDU TLVs only. Same returns. */
int ota_rapdu_exp_cmd_build_apdus(const struct ota_apdu *apdus, size_t n, bool indefinite,
                                  uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Parse a Command Scripting template into at most n_cap TLVs (C-APDUs split
 * with ota_apdu_parse; pointers into p). Sets *n_out and *indefinite.
 * Returns 0, or -EBADMSG with OTA_ERR_TAG (not AA/AE, or an unknown inner
 * tag), OTA_ERR_TRUNCATED (input cut, missing end-of-contents),
 * OTA_ERR_LENGTH (inner TLV running past the template, octets after it,
 * AE not followed by 80, 00 not followed by 00), OTA_ERR_OVERSIZE, or the
 * ota_apdu_parse error of a C-APDU; -ENOSPC (OTA_ERR_LIMIT: more than n_cap).
 * Nothing is written on failure.
 */
int ota_rapdu_exp_cmd_parse(const uint8_t *p, size_t len, struct ota_rapdu_cmd_tlv *tlvs,
                            size_t n_cap, size_t *n_out, bool *indefinite,
                            struct ota_err *err) OTA_MUST_CHECK;

/* One R-APDU of an expanded response: data borrowed, SW separate. */
struct ota_rapdu_rapdu {
    const uint8_t *data; /* NULL when data_len == 0 */
    size_t data_len;
    uint16_t sw;
};

/* The non-R-APDU contents of a Response Scripting template. */
struct ota_rapdu_exp_rsp {
    bool indefinite;     /* AF rather than AB */
    bool has_n_executed; /* TLV 80 present */
    uint16_t n_executed; /* executed command TLVs: BER integer of 1-2 octets; a
                          * 1-octet 80..FF is taken unsigned, as a count is never
                          * negative (lenient reading, 8825-1 would say negative) */
    size_t n_rapdus;     /* R-APDU TLVs (23) in order */
    bool has_bad_format; /* TLV 90: 01 unknown tag, 02 wrong length, 03 length not found */
    uint8_t bad_format;
    bool has_immediate_rsp; /* TLV 81: 01 suspension error */
    uint8_t immediate_rsp;
    bool has_chaining_rsp; /* TLV 83: script chaining error */
    uint8_t chaining_rsp;
};

/*
 * Parse a Response Scripting template. R-APDUs go to rapdus[0..cap) in
 * order; *r gets the rest. 80 / 81 / 83 / 90 may appear at most once each,
 * anywhere. Returns 0, or -EBADMSG with OTA_ERR_TAG (not AB/AF, unknown
 * inner tag), OTA_ERR_TRUNCATED, OTA_ERR_LENGTH (as for the command parser;
 * an R-APDU under 2 octets; an 80 of 0 or over 2 octets; 81/83/90 not of 1
 * octet), OTA_ERR_VALUE (a 2-octet 80 with b8 set: negative), OTA_ERR_DUPLICATE,
 * OTA_ERR_OVERSIZE; -ENOSPC (OTA_ERR_LIMIT: more
 * R-APDUs than cap). Nothing is written on failure.
 */
int ota_rapdu_exp_rsp_parse(const uint8_t *p, size_t len, struct ota_rapdu_exp_rsp *r,
                            struct ota_rapdu_rapdu *rapdus, size_t cap,
                            struct ota_err *err) OTA_MUST_CHECK;

/*
 * Write a Response Scripting template (simulated card, fuzz round trips) in
 * the order 80, 23.., 81, 83, 90. Returns the length, or -EINVAL
 * (OTA_ERR_ARG: NULL data with data_len), -EMSGSIZE (OTA_ERR_OVERSIZE:
 * n_executed > 7FFF, a value or the template over 0xFFFF), -ENOSPC.
 */
int ota_rapdu_exp_rsp_build(const struct ota_rapdu_exp_rsp *r, const struct ota_rapdu_rapdu *rapdus,
                            uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/*
 * True when an expanded script ran to the end: no 81/83/90 error TLV, as
 * many R-APDUs as C-APDUs sent (n_sent), each SW 9000 or 61xx (62F1, data
 * cut, is a failure), and the 80 count, when present, equal to n_sent.
 * Scripts with Immediate / Error Action TLVs: whether the card counts them
 * in 80 is [unverified]; pass the count the card is expected to report.
 * Can't fail.
 */
bool ota_rapdu_exp_rsp_ok(const struct ota_rapdu_exp_rsp *r, const struct ota_rapdu_rapdu *rapdus,
                          size_t n_sent);
