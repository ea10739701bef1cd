/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SMS user data: the User Data Header (TS 23.040 9.2.3.24), concatenation of
 * long payloads into several SMS and their reassembly (TS 23.040 9.2.3.24.1,
 * 9.2.3.24.8; TS 31.115 4.2-4.4 for the CPI/RPI of SCP80 packets), and the
 * SMS-SUBMIT / SMS-DELIVER TPDU helpers of TS 23.040 9.2.2.1 and 9.2.2.2.
 *
 * Implemented in ota/udh.c (UDH list codec and the semantic helper),
 * ota/concat.c (segmentation and the reassembler) and ota/tpdu.c (TPDU).
 * Part of the ota/ public face: users include "ota/ota.h".
 */
#pragma once

#include "ota/ota_common.h"

/* TS 23.040 9.2.3.16/9.2.3.24: 8-bit user data holds at most 140 octets, UDH included. */
#define OTA_SMS_UD_MAX 140
/* UDHL is at most UD_MAX - 1; every IE takes at least 2 octets. */
#define OTA_UDH_MAX_IES 70

/*
 * Information Element Identifiers we interpret (TS 23.040 9.2.3.24 table;
 * 70/71 from TS 31.115 4.2/4.4). Any other IEI is carried through untouched.
 */
enum ota_iei {
    OTA_IEI_CONCAT8 = 0x00,  /* 9.2.3.24.1: ref(1) total(1) seq(1) */
    OTA_IEI_PORT8 = 0x04,    /* 9.2.3.24.3: dst(1) src(1) */
    OTA_IEI_PORT16 = 0x05,   /* 9.2.3.24.4: dst(2) src(2), big-endian */
    OTA_IEI_CONCAT16 = 0x08, /* 9.2.3.24.8: ref(2) total(1) seq(1) */
    OTA_IEI_CPI = 0x70,      /* TS 31.115 4.2: command packet identifier, length 0 */
    OTA_IEI_RPI = 0x71,      /* TS 31.115 4.4: response packet identifier, length 0 */
};

/* Name of an IEI ("concat8", "port16", "cpi", ...) or "unknown"; never NULL. */
const char *ota_iei_name(unsigned iei);

/* One information element. val is borrowed (points into the parsed input). */
struct ota_udh_ie {
    uint8_t iei;
    uint8_t len;
    const uint8_t *val; /* may be NULL when len == 0 */
};

/* A parsed UDH: the IEs in wire order and the payload after the UDH. */
struct ota_udh {
    uint8_t udhl;
    uint8_t n_ies;
    struct ota_udh_ie ies[OTA_UDH_MAX_IES];
    const uint8_t *payload; /* borrowed, right after the UDH */
    size_t payload_len;
};

/*
 * Parse user data that starts with a UDH (TP-UDHI = 1): UDHL, every IE in
 * order (unknown IEs kept, known IEs not checked here: see ota_udh_info()),
 * and the payload. All pointers in *out borrow from ud; nothing is allocated.
 * Returns 0 or -EBADMSG with OTA_ERR_TRUNCATED (empty UD, UDHL beyond the
 * data), OTA_ERR_LENGTH (an IE header or value runs past UDHL) or
 * -EMSGSIZE/OTA_ERR_OVERSIZE (len > 140). *out is untouched on failure.
 */
int ota_udh_parse(const uint8_t *ud, size_t len, struct ota_udh *out,
                  struct ota_err *err) OTA_MUST_CHECK;

/*
 * Write UDHL + IEs (in the given order) + payload into dst. payload may be
 * NULL when payload_len is 0. ota_udh_parse() of the result gives back the
 * same IE list and payload. Returns the octets written, or -EINVAL
 * (OTA_ERR_ARG: NULL value with len > 0, too many IEs), -EMSGSIZE
 * (OTA_ERR_OVERSIZE: UDH + payload above 140 octets) or -ENOSPC
 * (OTA_ERR_NOSPACE: cap too small). dst is untouched on failure.
 */
int ota_udh_build(const struct ota_udh_ie *ies, size_t n_ies, const uint8_t *payload,
                  size_t payload_len, uint8_t *dst, size_t cap, struct ota_err *err) OTA_MUST_CHECK;

/* The known IEs of a UDH, interpreted. */
struct ota_udh_info {
    bool has_concat;
    bool concat16; /* reference came from IEI 08 */
    uint16_t ref;
    uint8_t total; /* 1..255 */
    uint8_t seq;   /* 1..total */
    bool has_ports;
    bool ports16; /* ports came from IEI 05 */
    uint16_t dst_port;
    uint16_t src_port;
    bool has_cpi;
    bool has_rpi;
    uint8_t cpi_len; /* TS 31.115 says 0; a non-zero length is kept, not refused */
    uint8_t rpi_len;
};

/*
 * Interpret concat/ports/CPI/RPI of a parsed UDH. Cannot fail for unknown
 * IEs. Returns 0 or -EBADMSG with OTA_ERR_VALUE (known IE with the wrong
 * length, total 0, seq 0 or seq > total) or OTA_ERR_DUPLICATE (two concat
 * IEs or two port IEs). *out is untouched on failure.
 */
int ota_udh_info(const struct ota_udh *u, struct ota_udh_info *out,
                 struct ota_err *err) OTA_MUST_CHECK;

/*
 * ota_udh_parse() then ota_udh_info(): the UDH of ud and its known IEs.
 * Returns 0 or the first error of the two. *u may be filled when only
 * ota_udh_info() fails; *in is untouched on failure.
 */
int ota_udh_parse_info(const uint8_t *ud, size_t len, struct ota_udh *u, struct ota_udh_info *in,
                       struct ota_err *err) OTA_MUST_CHECK;

/* ---- segmentation (ota/concat.c) --------------------------------------- */

#define OTA_CONCAT_MAX_PARTS 255

/* One SMS worth of user data. udhi says whether ud starts with a UDH. */
struct ota_sms_part {
    uint8_t ud[OTA_SMS_UD_MAX];
    uint8_t len;
    bool udhi;
};

struct ota_concat_opts {
    const struct ota_udh_ie *every; /* IEs in every part (e.g. 16-bit ports) */
    size_t n_every;
    const struct ota_udh_ie *first; /* IEs in the first part only (e.g. CPI 70 00) */
    size_t n_first;
    bool ref16;   /* IEI 08 instead of 00 */
    uint16_t ref; /* chosen by the caller; must fit 8 bits unless ref16 */
};

/*
 * Split payload into SMS parts of at most 140 octets. UDH of each part, in
 * this order: opts->every, then the concat IE, then (part 1 only)
 * opts->first. So SCP80 gets "07 00 03 rr tt 01 70 00" / "05 00 03 rr tt ss"
 * and a port push "0B 05 04 dddd ssss 00 03 rr tt ss". A payload that fits
 * one SMS with its UDH gets no concat IE; with no IEs at all the single
 * part has no UDH (udhi false). opts may be NULL (no IEs, 8-bit ref 0).
 * Returns the number of parts written into parts[0..], or -EINVAL
 * (OTA_ERR_ARG: 8-bit ref above 255, IE value NULL), -EMSGSIZE
 * (OTA_ERR_OVERSIZE: UDH leaves no room, or more than 255 parts) or -ENOSPC
 * (OTA_ERR_NOSPACE: max_parts too small). parts is untouched on failure.
 */
int ota_concat_segment(const uint8_t *payload, size_t len, const struct ota_concat_opts *opts,
                       struct ota_sms_part *parts, size_t max_parts,
                       struct ota_err *err) OTA_MUST_CHECK;

/* ---- reassembly (ota/concat.c) ----------------------------------------- */

/* Longest originator key kept (MSISDN, SMPP source_addr, ...), without NUL. */
#define OTA_REASM_ORIG_MAX 32

struct ota_reasm_limits {
    size_t max_sets;     /* incomplete sets held at once, >= 1 */
    size_t max_parts;    /* parts held over all sets, >= 1 */
    uint64_t timeout_ms; /* ota_reasm_expire() drops sets older than this */
};

/* What ota_reasm_add() did with a part. Values are stable. */
enum ota_reasm_status {
    OTA_REASM_PENDING = 0,   /* stored; the set is still incomplete */
    OTA_REASM_COMPLETE = 1,  /* the set is complete: *msg is filled */
    OTA_REASM_SINGLE = 2,    /* not concatenated: passed straight through in *msg */
    OTA_REASM_DUPLICATE = 3, /* same seq with the same bytes already held: ignored */
};

/* Name of a status ("pending", "complete", "single", "duplicate"). */
const char *ota_reasm_status_name(enum ota_reasm_status st);

/*
 * A complete message. ud is heap memory owned by the message: release it with
 * ota_reasm_msg_fini(). It holds the UDH of part 1 without its concat IE
 * (UDHL recomputed; absent when no IE remains, then udhi is false),
 * followed by the concatenated payload; it may exceed 140 octets. udh
 * describes it with pointers into ud (udh.payload = the payload).
 */
struct ota_reasm_msg {
    char orig[OTA_REASM_ORIG_MAX + 1];
    uint8_t *ud;
    size_t ud_len;
    bool udhi;
    uint8_t n_parts;
    struct ota_udh udh;
};

/* Free msg->ud and clear *msg. NULL and an already cleared msg are fine. */
void ota_reasm_msg_fini(struct ota_reasm_msg *msg);

/* A set dropped by ota_reasm_expire(), passed to the callback (borrowed). */
struct ota_reasm_expired {
    const char *orig;
    bool ref16;
    uint16_t ref;
    uint8_t total;
    uint64_t first_ms; /* when its first part arrived */
    uint8_t n_missing;
    uint8_t missing[OTA_CONCAT_MAX_PARTS]; /* missing seq numbers, ascending */
};

struct ota_reasm;

/*
 * Create a reassembler with the given limits (copied). *out is owned by the
 * caller and released with ota_reasm_free(). Returns 0, -EINVAL (OTA_ERR_ARG:
 * a zero limit) or -ENOMEM.
 */
int ota_reasm_new(struct ota_reasm **out, const struct ota_reasm_limits *lim,
                  struct ota_err *err) OTA_MUST_CHECK;

/* Free the reassembler and every part it holds. NULL is a no-op. */
void ota_reasm_free(struct ota_reasm *r);

/*
 * Offer one received SMS: orig identifies the sender (NUL-terminated, at
 * most OTA_REASM_ORIG_MAX chars), ud/len its user data, udhi its TP-UDHI,
 * now_ms the caller's clock. Sets are keyed by (orig, 8/16-bit, ref); the
 * part's total must match the set's. On 0, *st says what happened and, for
 * COMPLETE and SINGLE, *msg is filled (caller must ota_reasm_msg_fini()).
 * Errors (state unchanged, *st and *msg untouched): UDH errors of
 * ota_udh_parse()/ota_udh_info(); -EBADMSG/OTA_ERR_STATE when total
 * differs from the set's; -EEXIST/OTA_ERR_DUPLICATE for the same seq with
 * different bytes (the first copy is kept); -ENOBUFS/OTA_ERR_LIMIT when the
 * part needs a new set or must be held but a limit is reached;
 * -EINVAL/OTA_ERR_ARG for a bad orig; -ENOMEM.
 */
int ota_reasm_add(struct ota_reasm *r, const char *orig, const uint8_t *ud, size_t len, bool udhi,
                  uint64_t now_ms, enum ota_reasm_status *st, struct ota_reasm_msg *msg,
                  struct ota_err *err) OTA_MUST_CHECK;

/*
 * Drop every set whose first part arrived timeout_ms or more before now_ms
 * and call cb (if not NULL) once per dropped set, before it is freed.
 * Returns the number of sets dropped; cannot fail.
 */
size_t ota_reasm_expire(struct ota_reasm *r, uint64_t now_ms,
                        void (*cb)(const struct ota_reasm_expired *e, void *arg), void *arg);

/* Counters for tests and gauges: incomplete sets and parts held now. */
size_t ota_reasm_n_sets(const struct ota_reasm *r);
size_t ota_reasm_n_parts(const struct ota_reasm *r);

/* ---- TPDU helpers (ota/tpdu.c) ----------------------------------------- */

/* TP-MTI (TS 23.040 9.2.3.1), as seen by the side that parses the TPDU. */
enum ota_tpdu_mti {
    OTA_TPDU_DELIVER = 0, /* SC -> MS */
    OTA_TPDU_SUBMIT = 1,  /* MS -> SC */
};

/* Alphabet from TP-DCS (TS 23.038 4); decides what TP-UDL counts. */
enum ota_tpdu_alphabet {
    OTA_TPDU_ALPHA_7BIT = 0, /* UDL in septets */
    OTA_TPDU_ALPHA_8BIT = 1, /* UDL in octets (also compressed data) */
    OTA_TPDU_ALPHA_UCS2 = 2, /* UDL in octets */
};

/* TP-VPF (TS 23.040 9.2.3.3), the field's own values. */
enum ota_tpdu_vpf {
    OTA_TPDU_VPF_NONE = 0,
    OTA_TPDU_VPF_ENHANCED = 1,
    OTA_TPDU_VPF_RELATIVE = 2,
    OTA_TPDU_VPF_ABSOLUTE = 3,
};

const char *ota_tpdu_mti_name(enum ota_tpdu_mti m);
const char *ota_tpdu_alphabet_name(enum ota_tpdu_alphabet a);
const char *ota_tpdu_vpf_name(enum ota_tpdu_vpf v);

/* TON/NPI "international, ISDN/E.164" and "unknown, ISDN/E.164" (TS 23.040 9.1.2.5). */
#define OTA_TPDU_TON_NPI_INTL 0x91
#define OTA_TPDU_TON_NPI_UNKNOWN 0x81
/* TS 23.040 9.1.2.5: at most 20 semi-octets. */
#define OTA_TPDU_ADDR_DIGITS_MAX 20

/*
 * TP-OA / TP-DA. digits: BCD digits as "0-9*#abc"; for an alphanumeric
 * address (TON 101) the decoded GSM 7-bit text (ASCII subset per libosmocore).
 */
struct ota_tpdu_addr {
    uint8_t ton_npi;
    uint8_t n_semi; /* the address-length field: semi-octets */
    char digits[OTA_TPDU_ADDR_DIGITS_MAX + 1];
};

struct ota_tpdu {
    enum ota_tpdu_mti mti;
    uint8_t first_octet;
    bool udhi;
    uint8_t mr;            /* SUBMIT: TP-MR */
    enum ota_tpdu_vpf vpf; /* SUBMIT only; NONE for DELIVER */
    const uint8_t *vp;     /* SUBMIT: borrowed TP-VP (0, 1 or 7 octets) */
    uint8_t vp_len;
    struct ota_tpdu_addr addr; /* DELIVER: TP-OA; SUBMIT: TP-DA */
    uint8_t pid;
    uint8_t dcs;
    enum ota_tpdu_alphabet alphabet;
    uint8_t scts[7];   /* DELIVER: TP-SCTS as on the wire */
    uint8_t udl;       /* TP-UDL as on the wire (septets for 7-bit) */
    const uint8_t *ud; /* borrowed TP-UD */
    size_t ud_len;     /* octets of ud present */
    bool ud_partial;   /* prefix mode only: fewer octets than UDL says */
};

/*
 * Parse an SMS-DELIVER (MTI 00) or SMS-SUBMIT (MTI 01) TPDU up to and
 * including the user data; pointers borrow from p. With prefix false the
 * UD must be exactly as long as TP-UDL says (octets for 8-bit/UCS-2,
 * ceil(udl*7/8) for 7-bit). With prefix true, the header must be complete
 * but the UD may be cut short (ud_partial set) - for UDH inspection only.
 * Returns 0 or -EBADMSG with OTA_ERR_TRUNCATED, OTA_ERR_VALUE (MTI 10/11,
 * reserved DCS group, bad BCD digit), OTA_ERR_OVERSIZE (UDL above 140
 * octets / 160 septets, address over 20 digits) or OTA_ERR_LENGTH (octets
 * after the UD). *out is untouched on failure.
 */
int ota_tpdu_parse(const uint8_t *p, size_t len, bool prefix, struct ota_tpdu *out,
                   struct ota_err *err) OTA_MUST_CHECK;

/* Inputs of ota_tpdu_build_deliver(); all borrowed. */
struct ota_tpdu_deliver_params {
    const char *oa;     /* digits 0-9 * # a b c, 1..20 */
    uint8_t oa_ton_npi; /* e.g. OTA_TPDU_TON_NPI_UNKNOWN */
    uint8_t pid;
    uint8_t dcs;     /* must be an 8-bit or UCS-2 DCS: UDL counts octets */
    uint8_t scts[7]; /* TP-SCTS, semi-octet coded by the caller */
    bool udhi;
    bool no_more_msgs; /* TP-MMS bit (1 = no more messages waiting) */
    bool sri;          /* TP-SRI */
    bool rp;           /* TP-RP */
    const uint8_t *ud;
    size_t ud_len; /* octets, UDH included, <= 140 */
};

/*
 * Build an SMS-DELIVER TPDU (TS 23.040 9.2.2.1) into dst. Returns the octets
 * written, or -EINVAL with OTA_ERR_ARG (bad digit, no digits, oa over 20
 * digits, NULL ud with ud_len > 0) or OTA_ERR_VALUE (7-bit or reserved DCS),
 * -EMSGSIZE/OTA_ERR_OVERSIZE (ud_len > 140), -ENOSPC/OTA_ERR_NOSPACE.
 * dst is untouched on failure.
 */
int ota_tpdu_build_deliver(const struct ota_tpdu_deliver_params *prm, uint8_t *dst, size_t cap,
                           struct ota_err *err) OTA_MUST_CHECK;
