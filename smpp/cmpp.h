/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CMPP 2.0 / 3.0 PDU codec (China Mobile Peer-to-Peer, SP <-> ISMG), without
 * sockets: framing of a received byte stream, encode and decode of every PDU
 * the SP sends or receives (and the ISMG side, for the simulator), the CONNECT
 * authenticators, the 64-bit Msg_Id and its one canonical text form for DLR
 * matching, and the name tables of Result / Status / Stat codes.
 *
 * Spec clauses (../shared/reference/cmpp.md): §1 header and framing, §2
 * Command_Id, §3 CONNECT, §4 SUBMIT, §5 DELIVER and the status report, §6
 * flow control, §7 Msg_Fmt, §8 Msg_Id. The layout is chosen per call with
 * enum cmpp_version. Like ota/, nothing here logs, allocates or keeps state:
 * failures return a negative errno and fill struct ota_err.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/ota_common.h"

/* Version octet of CONNECT [ref §3]: high nibble major, low nibble minor. */
enum cmpp_version {
    CMPP_V20 = 0x20,
    CMPP_V30 = 0x30,
};

/* Name ("2.0", "3.0") of a version, "unknown" otherwise; never NULL. */
const char *cmpp_version_name(enum cmpp_version ver);

/*
 * Command_Id values [ref §2]; a response is its request | CMPP_RESP_BIT.
 * Macros, not an enum: the response ids do not fit an int (C11 6.7.2.2).
 */
#define CMPP_CONNECT 0x00000001u
#define CMPP_TERMINATE 0x00000002u
#define CMPP_SUBMIT 0x00000004u
#define CMPP_DELIVER 0x00000005u
#define CMPP_QUERY 0x00000006u
#define CMPP_CANCEL 0x00000007u
#define CMPP_ACTIVE_TEST 0x00000008u
#define CMPP_FWD 0x00000009u
#define CMPP_CONNECT_RESP 0x80000001u
#define CMPP_TERMINATE_RESP 0x80000002u
#define CMPP_SUBMIT_RESP 0x80000004u
#define CMPP_DELIVER_RESP 0x80000005u
#define CMPP_QUERY_RESP 0x80000006u
#define CMPP_CANCEL_RESP 0x80000007u
#define CMPP_ACTIVE_TEST_RESP 0x80000008u
#define CMPP_FWD_RESP 0x80000009u

#define CMPP_RESP_BIT 0x80000000u

/* Name of a Command_Id ("submit", "deliver_resp", ...), "unknown" otherwise. */
const char *cmpp_cmd_name(uint32_t cmd_id);

/* ---- widths [ref §3-§5] ------------------------------------------------- */
#define CMPP_HDR_LEN 12
#define CMPP_AUTH_LEN 16    /* MD5 */
#define CMPP_SRC_ADDR_LEN 6 /* CONNECT Source_Addr, Msg_src */
#define CMPP_SERVICE_ID_LEN 10
#define CMPP_TERM20_LEN 21 /* MSISDN fields in 2.0 */
#define CMPP_TERM30_LEN 32 /* MSISDN fields in 3.0 */
#define CMPP_FEE_TYPE_LEN 2
#define CMPP_FEE_CODE_LEN 6
#define CMPP_TIME_LEN 17     /* ValId_Time, At_Time (SMPP 3.3 format) */
#define CMPP_SRC_ID_LEN 21   /* SUBMIT Src_Id, DELIVER Dest_Id */
#define CMPP_RESERVE20_LEN 8 /* 2.0 Reserve(d) */
#define CMPP_LINK_ID_LEN 20  /* 3.0 LinkID */
#define CMPP_STAT_LEN 7
#define CMPP_RPT_TIME_LEN 10 /* YYMMDDHHMM */
#define CMPP_REPORT20_LEN 60 /* status report inside DELIVER [ref §5] */
#define CMPP_REPORT30_LEN 71
#define CMPP_DEST_MAX 100          /* DestUsr_tl 1..100 */
#define CMPP_CONTENT_MAX 140       /* Msg_Length, binary / UCS2 / GBK */
#define CMPP_CONTENT_ASCII_MAX 160 /* Msg_Length, Msg_Fmt 0 */
#define CMPP_SECRET_MAX_LEN 64     /* our bound on the shared secret (stack buffer) */
/* Largest PDU this codec produces: a 3.0 SUBMIT, 100 recipients, 160 octets. */
#define CMPP_PDU_MAX_LEN (CMPP_HDR_LEN + 151 + CMPP_TERM30_LEN * CMPP_DEST_MAX + 160)

/* Msg_Fmt [ref §7] */
#define CMPP_FMT_ASCII 0
#define CMPP_FMT_CARD 3 /* SMS card-write operation */
#define CMPP_FMT_BINARY 4
#define CMPP_FMT_UCS2 8
#define CMPP_FMT_GBK 15

/* ---- header and framing [ref §1] ---------------------------------------- */
struct cmpp_hdr {
    uint32_t total_len; /* Total_Length, header included */
    uint32_t cmd_id;    /* Command_Id, any value */
    uint32_t seq;       /* Sequence_Id */
};

/*
 * Read the 12-octet header at p. Any Command_Id is accepted, so a link can
 * answer or log a PDU it does not know. Returns 0 and fills *hdr, or
 * -EBADMSG with OTA_ERR_TRUNCATED (fewer than 12 octets). Checks nothing else.
 */
int cmpp_hdr_parse(const uint8_t *p, size_t len, struct cmpp_hdr *hdr,
                   struct ota_err *err) OTA_MUST_CHECK;

/*
 * Framing of a TCP byte stream: p/len are the octets received so far.
 * Returns 0 when more octets are needed (hdr untouched), N > 0 when the first
 * N octets are one whole PDU (hdr filled), or an error as soon as the first 4
 * octets are in: -EBADMSG/OTA_ERR_LENGTH for Total_Length < 12,
 * -EMSGSIZE/OTA_ERR_OVERSIZE for Total_Length > max_len, so an oversize PDU is
 * refused before it is buffered. max_len 0 means CMPP_PDU_MAX_LEN; a max_len
 * below 12 is -EINVAL/OTA_ERR_ARG.
 */
int cmpp_frame(const uint8_t *p, size_t len, size_t max_len, struct cmpp_hdr *hdr,
               struct ota_err *err) OTA_MUST_CHECK;

/* ---- PDU bodies ------------------------------------------------------------
 * Text fields are NUL-terminated C strings of at most the field's width; on the
 * wire they are padded with 0x00 (§8.1). Terminal ids are sized for 3.0 (32);
 * a 2.0 encode refuses ids longer than 21. All structs are plain values: no
 * pointer into the decoded buffer survives decode.
 */
struct cmpp_connect {
    char source_addr[CMPP_SRC_ADDR_LEN + 1];
    uint8_t auth_source[CMPP_AUTH_LEN];
    uint8_t version;    /* 0x20 / 0x30 as sent; any value decodes */
    uint32_t timestamp; /* MMDDHHMMSS as a decimal integer */
};

struct cmpp_connect_resp {
    uint32_t status; /* 1 octet in 2.0, 4 in 3.0 */
    uint8_t auth_ismg[CMPP_AUTH_LEN];
    uint8_t version;
};

struct cmpp_submit {
    uint64_t msg_id;             /* 0 from the SP; the ISMG assigns it */
    uint8_t pk_total;            /* 1.. */
    uint8_t pk_number;           /* 1..pk_total */
    uint8_t registered_delivery; /* 0/1 (2.0 also 2) */
    uint8_t msg_level;
    char service_id[CMPP_SERVICE_ID_LEN + 1];
    uint8_t fee_user_type; /* 0..3 */
    char fee_terminal_id[CMPP_TERM30_LEN + 1];
    uint8_t fee_terminal_type; /* 3.0 only: 0 real number, 1 pseudo-code */
    uint8_t tp_pid;
    uint8_t tp_udhi; /* 0/1 */
    uint8_t msg_fmt; /* CMPP_FMT_* */
    char msg_src[CMPP_SRC_ADDR_LEN + 1];
    char fee_type[CMPP_FEE_TYPE_LEN + 1];
    char fee_code[CMPP_FEE_CODE_LEN + 1];
    char valid_time[CMPP_TIME_LEN + 1];
    char at_time[CMPP_TIME_LEN + 1];
    char src_id[CMPP_SRC_ID_LEN + 1];
    uint8_t n_dest; /* DestUsr_tl, 1..100 */
    char dest_terminal_id[CMPP_DEST_MAX][CMPP_TERM30_LEN + 1];
    uint8_t dest_terminal_type; /* 3.0 only */
    uint8_t msg_len;            /* Msg_Length */
    uint8_t msg_content[255];
    uint8_t reserve[CMPP_RESERVE20_LEN]; /* 2.0 only, raw octets */
    char link_id[CMPP_LINK_ID_LEN + 1];  /* 3.0 only */
};

/* Status report carried in a DELIVER's Msg_Content [ref §5]. */
struct cmpp_report {
    uint64_t msg_id; /* the SUBMIT_RESP Msg_Id: the DLR key */
    char stat[CMPP_STAT_LEN + 1];
    char submit_time[CMPP_RPT_TIME_LEN + 1];
    char done_time[CMPP_RPT_TIME_LEN + 1];
    char dest_terminal_id[CMPP_TERM30_LEN + 1];
    uint32_t smsc_sequence;
};

struct cmpp_deliver {
    uint64_t msg_id; /* id of this DELIVER */
    char dest_id[CMPP_SRC_ID_LEN + 1];
    char service_id[CMPP_SERVICE_ID_LEN + 1];
    uint8_t tp_pid;
    uint8_t tp_udhi;
    uint8_t msg_fmt;
    char src_terminal_id[CMPP_TERM30_LEN + 1];
    uint8_t src_terminal_type;   /* 3.0 only */
    uint8_t registered_delivery; /* 0 MO, 1 status report */
    /*
     * MO: msg_len/msg_content are the payload. Report: decode fills both the
     * raw content and .report; encode builds the content from .report alone
     * and ignores msg_len/msg_content.
     */
    uint8_t msg_len;
    uint8_t msg_content[255];
    struct cmpp_report report;
    uint8_t reserved[CMPP_RESERVE20_LEN]; /* 2.0 only */
    char link_id[CMPP_LINK_ID_LEN + 1];   /* 3.0 only */
};

/* SUBMIT_RESP and DELIVER_RESP: Result is 1 octet in 2.0, 4 in 3.0. */
struct cmpp_resp {
    uint64_t msg_id;
    uint32_t result;
};

struct cmpp_pdu {
    enum cmpp_version ver;
    uint32_t cmd_id; /* CMPP_CONNECT ... CMPP_ACTIVE_TEST_RESP */
    uint32_t seq;
    union {
        struct cmpp_connect connect;
        struct cmpp_connect_resp connect_resp;
        struct cmpp_submit submit;
        struct cmpp_resp resp; /* SUBMIT_RESP, DELIVER_RESP */
        struct cmpp_deliver deliver;
        uint8_t active_test_reserved; /* ACTIVE_TEST_RESP */
    } u;
};

/*
 * Decode exactly one PDU (p/len as returned by cmpp_frame) in layout ver.
 * Supported: CONNECT(_RESP), TERMINATE(_RESP), SUBMIT(_RESP), DELIVER(_RESP),
 * ACTIVE_TEST(_RESP). *pdu is written only on success (it is large: ~4 KiB).
 * The layout is never guessed from Total_Length: an ISMG that refuses our
 * version may answer CONNECT_RESP in its own layout (30 octets in 2.0, 33 in
 * 3.0 [ref §3]); on OTA_ERR_LENGTH the link may decode it again with the
 * other version, knowingly.
 * Returns 0, or -EBADMSG with:
 *   OTA_ERR_TRUNCATED  fewer octets than the header or Total_Length announces;
 *   OTA_ERR_LENGTH     Total_Length < 12, octets after Total_Length, or
 *                      Total_Length / Msg_Length disagreeing with the layout;
 *   OTA_ERR_OVERSIZE   Msg_Length above 140 (160 for Msg_Fmt 0);
 *   OTA_ERR_VALUE      a field outside its range or text with bad characters;
 * -EOPNOTSUPP with OTA_ERR_TAG for a Command_Id not decoded here (the message
 * names it and the Sequence_Id; cmpp_hdr_parse() gives both as numbers);
 * -EINVAL/OTA_ERR_VERSION for a ver other than CMPP_V20 / CMPP_V30.
 */
int cmpp_decode(const uint8_t *p, size_t len, enum cmpp_version ver, struct cmpp_pdu *pdu,
                struct ota_err *err) OTA_MUST_CHECK;

/*
 * Msg_Id (first 8 body octets) of a DELIVER or SUBMIT_RESP that cmpp_decode()
 * refused for a field value: the SP must still answer every DELIVER [ref §5],
 * and DELIVER_RESP echoes this Msg_Id. Needs only the header and 8 octets.
 * Returns 0 and sets *msg_id, -EBADMSG/OTA_ERR_TRUNCATED when fewer than 20
 * octets are given, -EINVAL/OTA_ERR_TAG for another Command_Id.
 */
int cmpp_peek_msg_id(const uint8_t *p, size_t len, uint64_t *msg_id,
                     struct ota_err *err) OTA_MUST_CHECK;

/*
 * Size in octets of the encoded pdu, header included; 0 when the PDU cannot be
 * encoded (unknown cmd_id or version, n_dest out of range). Cannot fail otherwise.
 */
size_t cmpp_encoded_len(const struct cmpp_pdu *pdu);

/*
 * Encode pdu (layout pdu->ver) into dst. Fields are checked with the same
 * rules as decode, so whatever encodes also decodes to the same fields.
 * Returns the number of octets written, or -ENOSPC/OTA_ERR_NOSPACE (nothing
 * written), -EINVAL with OTA_ERR_VALUE / OTA_ERR_OVERSIZE (field value or text
 * too long) / OTA_ERR_TAG (cmd_id) / OTA_ERR_VERSION.
 */
int cmpp_encode(const struct cmpp_pdu *pdu, uint8_t *dst, size_t cap,
                struct ota_err *err) OTA_MUST_CHECK;

/*
 * True when a and b hold the same fields for their cmd_id and version (the
 * raw Msg_Content of a status report is not compared: .report is). Cannot fail.
 */
bool cmpp_pdu_equal(const struct cmpp_pdu *a, const struct cmpp_pdu *b);

/* ---- CONNECT authenticators [ref §3] -------------------------------------- */

/*
 * MMDDHHMMSS integer for CONNECT from calendar fields (month 1..12); returns
 * 0 when a field is out of range. Cannot fail otherwise.
 */
uint32_t cmpp_timestamp(unsigned month, unsigned day, unsigned hour, unsigned min, unsigned sec);

/*
 * AuthenticatorSource = MD5(Source_Addr padded to 6 octets || 9 x 0x00 ||
 * secret || timestamp as 10 ASCII digits). secret is borrowed. Returns 0 and
 * fills out, -EINVAL/OTA_ERR_ARG for a source_addr over 6 characters or a
 * timestamp over 10 digits, -EIO/OTA_ERR_CRYPTO when OpenSSL fails.
 */
int cmpp_auth_source(const char *source_addr, const uint8_t *secret, size_t secret_len,
                     uint32_t timestamp, uint8_t out[CMPP_AUTH_LEN],
                     struct ota_err *err) OTA_MUST_CHECK;

/*
 * AuthenticatorISMG = MD5(Status || AuthenticatorSource || secret), Status in
 * its wire width for ver (1 octet in 2.0, 4 big-endian in 3.0). Returns 0,
 * -EINVAL (OTA_ERR_VERSION, or OTA_ERR_VALUE for a 2.0 status > 255),
 * -EIO/OTA_ERR_CRYPTO.
 */
int cmpp_auth_ismg(enum cmpp_version ver, uint32_t status, const uint8_t auth_source[CMPP_AUTH_LEN],
                   const uint8_t *secret, size_t secret_len, uint8_t out[CMPP_AUTH_LEN],
                   struct ota_err *err) OTA_MUST_CHECK;

/*
 * ISMG side: check a received CONNECT against the SP's secret (constant-time
 * compare). Returns 0, -EACCES/OTA_ERR_BAD_CC on mismatch, or the errors of
 * cmpp_auth_source().
 */
int cmpp_connect_verify(const struct cmpp_connect *c, const uint8_t *secret, size_t secret_len,
                        struct ota_err *err) OTA_MUST_CHECK;

/*
 * SP side: check a CONNECT_RESP (decoded in layout ver) against the
 * AuthenticatorSource we sent. Returns 0, -EACCES/OTA_ERR_BAD_CC on mismatch,
 * or the errors of cmpp_auth_ismg().
 */
int cmpp_connect_resp_verify(enum cmpp_version ver, const struct cmpp_connect_resp *r,
                             const uint8_t auth_source[CMPP_AUTH_LEN], const uint8_t *secret,
                             size_t secret_len, struct ota_err *err) OTA_MUST_CHECK;

/* ---- Result / Status / Stat codes [ref §3, §4, §5, §6] --------------------- */

/* CONNECT_RESP Status [ref §3] */
enum cmpp_connect_status {
    CMPP_CONN_OK = 0,
    CMPP_CONN_BAD_STRUCTURE = 1,
    CMPP_CONN_BAD_SOURCE = 2,
    CMPP_CONN_AUTH_FAILED = 3,
    CMPP_CONN_VERSION_TOO_HIGH = 4,
    CMPP_CONN_OTHER = 5, /* 5 and above */
};

/* Name of a CONNECT_RESP Status; values >= 5 are "other-error". Never NULL. */
const char *cmpp_connect_status_name(uint32_t status);

/* SUBMIT_RESP / DELIVER_RESP Result [ref §4] */
enum cmpp_result {
    CMPP_RES_OK = 0,
    CMPP_RES_BAD_STRUCTURE = 1,
    CMPP_RES_BAD_CMD = 2,
    CMPP_RES_DUP_SEQ = 3,
    CMPP_RES_BAD_MSG_LEN = 4,
    CMPP_RES_BAD_FEE_CODE = 5,
    CMPP_RES_MSG_TOO_LONG = 6,
    CMPP_RES_BAD_SERVICE_ID = 7,
    CMPP_RES_FLOW_CONTROL = 8, /* 流量控制错: over rate or window; retry later */
    CMPP_RES_FEE_TERM_NOT_SERVED = 9,
    CMPP_RES_BAD_SRC_ID = 10,
    CMPP_RES_BAD_MSG_SRC = 11,
    CMPP_RES_BAD_FEE_TERM = 12,
    CMPP_RES_BAD_DEST_TERM = 13,
};

/* Name of a Result ("ok", "flow-control", ...); others are "other-error". */
const char *cmpp_result_name(uint32_t result);

enum cmpp_result_class {
    CMPP_RC_OK = 0,    /* accepted; Msg_Id is valid */
    CMPP_RC_RETRY = 1, /* transient: pause the link, resend in order */
    CMPP_RC_FINAL = 2, /* the message failed for good */
};

/* Name of a result class ("ok", "retry", "final"); never NULL. */
const char *cmpp_result_class_name(enum cmpp_result_class c);

/* Classify a SUBMIT_RESP Result: 8 (flow control) is the only retryable one. */
enum cmpp_result_class cmpp_result_classify(uint32_t result);

/* Stat of a status report [ref §5 Table 1]; values are stable. */
enum cmpp_stat {
    CMPP_STAT_OTHER = 0, /* gateway-made codes: MA:xxxx, MB:, IA:, ... */
    CMPP_STAT_DELIVRD = 1,
    CMPP_STAT_EXPIRED = 2,
    CMPP_STAT_DELETED = 3,
    CMPP_STAT_UNDELIV = 4,
    CMPP_STAT_ACCEPTD = 5,
    CMPP_STAT_UNKNOWN = 6,
    CMPP_STAT_REJECTD = 7,
    CMPP_STAT__COUNT
};

/* Stat text ("DELIVRD") of a value, "OTHER" for CMPP_STAT_OTHER; never NULL. */
const char *cmpp_stat_name(enum cmpp_stat st);

/* Stat value of a report's text (exact 7 characters); CMPP_STAT_OTHER if none. */
enum cmpp_stat cmpp_stat_parse(const char *stat);

enum cmpp_stat_class {
    CMPP_SC_DELIVERED = 0,
    CMPP_SC_PENDING = 1, /* ACCEPTD: intermediate, keep waiting */
    CMPP_SC_FAILED = 2,
};

/* Name of a stat class ("delivered", "pending", "failed"); never NULL. */
const char *cmpp_stat_class_name(enum cmpp_stat_class c);

/* Final state a report's Stat text means; anything but DELIVRD/ACCEPTD failed. */
enum cmpp_stat_class cmpp_stat_classify(const char *stat);

/* ---- Msg_Id [ref §8] --------------------------------------------------------- */
struct cmpp_msgid_parts {
    unsigned month;   /* 1..12 (4 bits) */
    unsigned day;     /* 1..31 (5 bits) */
    unsigned hour;    /* 0..23 (5 bits) */
    unsigned minute;  /* 0..59 (6 bits) */
    unsigned second;  /* 0..59 (6 bits) */
    uint32_t gateway; /* ISMG code, 22 bits */
    uint16_t seq;     /* 16 bits */
};

/*
 * Compose a Msg_Id. Returns 0 and sets *id, or -EINVAL/OTA_ERR_VALUE naming
 * the field out of range.
 */
int cmpp_msgid_compose(const struct cmpp_msgid_parts *parts, uint64_t *id,
                       struct ota_err *err) OTA_MUST_CHECK;

/* Split a Msg_Id into its bit fields, as they are (no range check). Cannot fail. */
void cmpp_msgid_split(uint64_t id, struct cmpp_msgid_parts *parts);

/* Msg_Id from / to its 8 wire octets (big-endian). Cannot fail. */
uint64_t cmpp_msgid_get(const uint8_t raw[8]);
void cmpp_msgid_put(uint8_t raw[8], uint64_t id);

/* Canonical text form: exactly 16 lowercase hex digits and a NUL. */
#define CMPP_MSGID_TEXT_SIZE 17

/* Write the canonical text form of id into out. Cannot fail. */
void cmpp_msgid_canon(uint64_t id, char out[CMPP_MSGID_TEXT_SIZE]);

enum cmpp_msgid_fmt {
    CMPP_MSGID_AUTO = 0, /* see cmpp_msgid_parse() */
    CMPP_MSGID_HEX = 1,
    CMPP_MSGID_DEC = 2,
};

/* Name of a text format ("auto", "hex", "dec"); never NULL. */
const char *cmpp_msgid_fmt_name(enum cmpp_msgid_fmt fmt);

/*
 * Parse an id as other systems write it (s/len, no NUL needed; surrounding
 * blanks are not accepted). HEX: optional 0x, 1..16 hex digits, any case.
 * DEC: 1..20 digits, at most 2^64-1. AUTO: "0x" prefix or any a-f -> hex;
 * digits only -> decimal when 17 or more digits, hex otherwise. The rule is
 * unambiguous for valid ids (month >= 1): such an id has 16 hex digits and
 * 19..20 decimal ones. Returns 0 and sets *id, or -EINVAL with
 * OTA_ERR_VALUE (bad character, empty) / OTA_ERR_OVERSIZE (too many digits or
 * beyond 64 bits).
 */
int cmpp_msgid_parse(const char *s, size_t len, enum cmpp_msgid_fmt fmt, uint64_t *id,
                     struct ota_err *err) OTA_MUST_CHECK;

/*
 * Normalise text (as cmpp_msgid_parse with fmt) into the canonical form, so
 * that ids from any source compare with strcmp. out is set only on success.
 */
int cmpp_msgid_normalize(const char *s, size_t len, enum cmpp_msgid_fmt fmt,
                         char out[CMPP_MSGID_TEXT_SIZE], struct ota_err *err) OTA_MUST_CHECK;
