/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kannel bearerbox <-> box protocol: the message codec, without sockets.
 *
 * A box (smsbox, sqlbox, otagw) exchanges frames with bearerbox: a 4-octet
 * big-endian signed length, then that many octets of a packed Msg
 * (reference kannel-box.md §1-2). The packed Msg is a type word followed by
 * the fields of that type in the order of Kannel's gw/msg-decl.h (kannel-dev
 * 1.4.5): INTEGER = 4 octets big-endian two's complement, OCTSTR = INTEGER
 * length (-1 means NULL, no octets) + octets, UUID = an OCTSTR holding the
 * 36-character lowercase text form, VOID = not transmitted. There is no
 * version word: this file pins the 1.4.5 field list.
 *
 * On top of the codec sit the few helpers the box link needs: identify,
 * heartbeat and ack builders, the OTA MT builder, the DLR and MO readers and
 * the ack status classifier (reference §3-§7).
 *
 * Nothing here allocates, logs or does I/O. Decoded strings borrow from the
 * caller's input buffer; encoders borrow from the caller's struct.
 */
#pragma once

#include "ota/ota_common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The length prefix in front of every packed Msg (kannel-box.md §1). */
#define KBOX_FRAME_HDR_LEN 4u

/*
 * Default payload limit for kbox_frame_check(). Kannel has none; an sms with
 * every string filled by an SMSC stays far below this, so anything larger is
 * a desynchronised stream and is refused before it is buffered.
 */
#define KBOX_FRAME_MAX_DEFAULT 65536u

/* MSG_PARAM_UNDEFINED (gw/msg.h): the value of every unused INTEGER field. */
#define KBOX_UNDEF (-1)

/* Binary UUID and its text form on the wire (UUID_STR_LEN in gwlib/gw_uuid.h). */
#define KBOX_UUID_LEN 16u
#define KBOX_UUID_STR_LEN 36u

/* TS 23.040 9.2.3.24: TP-UD holds at most 140 octets (UDH included). */
#define KBOX_SMS_MAX_OCTETS 140u

/* Message types: order of declaration in gw/msg-decl.h (enum msg_type). */
enum kbox_msg_type {
    KBOX_MSG_HEARTBEAT = 0,
    KBOX_MSG_ADMIN = 1,
    KBOX_MSG_SMS = 2,
    KBOX_MSG_ACK = 3,
    KBOX_MSG_WDP_DATAGRAM = 4,
    KBOX_MSG__COUNT
};

/* admin.command (gw/msg.h). */
enum kbox_admin_cmd {
    KBOX_CMD_SHUTDOWN = 0,
    KBOX_CMD_SUSPEND = 1,
    KBOX_CMD_RESUME = 2,
    KBOX_CMD_IDENTIFY = 3,
    KBOX_CMD_RESTART = 4,
    KBOX_CMD_FEATURE = 5,
    KBOX_CMD__COUNT
};

/* sms.sms_type (gw/msg.h). */
enum kbox_sms_type {
    KBOX_SMS_MO = 0,
    KBOX_SMS_MT_REPLY = 1,
    KBOX_SMS_MT_PUSH = 2,
    KBOX_SMS_REPORT_MO = 3,
    KBOX_SMS_REPORT_MT = 4,
    KBOX_SMS__COUNT
};

/* ack.nack (ack_status_t in gw/msg.h; meanings in kannel-box.md §5). */
enum kbox_ack_status {
    KBOX_ACK_SUCCESS = 0,    /* queued to an SMSC connection (not yet accepted) */
    KBOX_ACK_FAILED = 1,     /* no route or expired: do not try again */
    KBOX_ACK_FAILED_TMP = 2, /* queue full or bearerbox shutting down */
    KBOX_ACK_BUFFERED = 3,   /* no SMSC online, kept in bearerbox's global queue */
    KBOX_ACK__COUNT
};

/* What the sender of an MT does with an ack. */
enum kbox_ack_class {
    KBOX_ACK_CLASS_ACCEPTED = 0, /* bearerbox owns it now; wait for the DLR */
    KBOX_ACK_CLASS_RETRY = 1,    /* not taken; send the same MT again later */
    KBOX_ACK_CLASS_FINAL = 2,    /* refused for good */
    KBOX_ACK_CLASS__COUNT
};

/* sms.coding (gw/sms.h DC_*). */
#define KBOX_DC_7BIT 0
#define KBOX_DC_8BIT 1
#define KBOX_DC_UCS2 2

/* sms.dlr_mask bits (gw/dlr.h, 1.4.5; kannel-box.md §6). */
#define KBOX_DLR_SUCCESS 0x01      /* handset delivery receipt */
#define KBOX_DLR_FAIL 0x02         /* final failure receipt */
#define KBOX_DLR_BUFFERED 0x04     /* intermediate receipt */
#define KBOX_DLR_SMSC_SUCCESS 0x08 /* SMSC accepted the submit (made by bearerbox) */
#define KBOX_DLR_SMSC_FAIL 0x10    /* SMSC rejected it / sending failed (bearerbox) */
#define KBOX_DLR_EXPIRED 0x20      /* 1.4.5 sends it together with DLR_FAIL */
#define KBOX_DLR_UNKNOWN 0x40      /* 1.4.5 sends it together with DLR_FAIL */
#define KBOX_DLR_ALL 0x7f

/* The event one DLR reports, decided from its dlr_mask. */
enum kbox_dlr_event {
    KBOX_DLR_EV_DELIVERED = 0,     /* final, success */
    KBOX_DLR_EV_FAILED = 1,        /* final */
    KBOX_DLR_EV_EXPIRED = 2,       /* final (FAIL|EXPIRED) */
    KBOX_DLR_EV_UNDETERMINED = 3,  /* final (FAIL|UNKNOWN) */
    KBOX_DLR_EV_BUFFERED = 4,      /* intermediate */
    KBOX_DLR_EV_SMSC_ACCEPTED = 5, /* intermediate */
    KBOX_DLR_EV_SMSC_REJECTED = 6, /* final */
    KBOX_DLR_EV__COUNT
};

/*
 * An octet string. p == NULL is Kannel's NULL Octstr (wire length -1, len
 * must be 0); p != NULL with len 0 is the empty string. Decoded strings point
 * into the decoder's input buffer.
 */
struct kbox_str {
    const uint8_t *p;
    size_t len;
};

#define KBOX_STR_NULL ((struct kbox_str){NULL, 0})
/* A string literal as a kbox_str (no terminating NUL). */
#define KBOX_STR_LIT(s) ((struct kbox_str){(const uint8_t *)("" s), sizeof(s) - 1})

static inline bool kbox_str_is_null(struct kbox_str s)
{
    return s.p == NULL;
}

struct kbox_heartbeat {
    int32_t load;
};

struct kbox_admin {
    int32_t command; /* enum kbox_admin_cmd; other values are kept as sent */
    struct kbox_str boxc_id;
};

/* Every wire field of MSG(sms) in msg-decl.h order; split_parts is VOID. */
struct kbox_sms {
    struct kbox_str sender;
    struct kbox_str receiver;
    struct kbox_str udhdata; /* raw UDH including UDHL */
    struct kbox_str msgdata;
    int32_t time; /* UNIX seconds */
    struct kbox_str smsc_id;
    struct kbox_str smsc_number;
    struct kbox_str foreign_id;
    struct kbox_str service;
    struct kbox_str account;
    uint8_t id[KBOX_UUID_LEN];
    int32_t sms_type; /* enum kbox_sms_type */
    int32_t mclass;
    int32_t mwi;
    int32_t coding;
    int32_t compress;
    int32_t validity; /* absolute UNIX time */
    int32_t deferred; /* absolute UNIX time */
    int32_t dlr_mask;
    struct kbox_str dlr_url;
    int32_t pid;
    int32_t alt_dcs;
    int32_t rpi;
    struct kbox_str charset;
    struct kbox_str boxc_id;
    struct kbox_str binfo;
    int32_t msg_left;
    int32_t priority;
    int32_t resend_try;
    int32_t resend_time;
    struct kbox_str meta_data;
};

struct kbox_ack {
    int32_t nack; /* enum kbox_ack_status; other values are kept as sent */
    int32_t time;
    uint8_t id[KBOX_UUID_LEN];
};

/* Only wapbox uses it; decoded so that one on the wire is not a framing error. */
struct kbox_wdp_datagram {
    struct kbox_str source_address;
    int32_t source_port;
    struct kbox_str destination_address;
    int32_t destination_port;
    struct kbox_str user_data;
};

struct kbox_msg {
    enum kbox_msg_type type;
    union {
        struct kbox_heartbeat heartbeat;
        struct kbox_admin admin;
        struct kbox_sms sms;
        struct kbox_ack ack;
        struct kbox_wdp_datagram wdp;
    };
};

/* Names for logs; never NULL ("unknown" outside the table). */
const char *kbox_msg_type_name(int32_t type);
const char *kbox_admin_cmd_name(int32_t cmd);
const char *kbox_sms_type_name(int32_t sms_type);
const char *kbox_ack_status_name(int32_t nack);
const char *kbox_ack_class_name(enum kbox_ack_class cls);
const char *kbox_dlr_event_name(enum kbox_dlr_event ev);

/* ---- framing ---------------------------------------------------------------- */

/*
 * Look at the first len received octets of a stream. Returns 1 when a whole
 * frame is present (*frame_len = 4 + payload length), 0 when more is needed
 * (*frame_len = octets the frame needs in total, or 4 while the prefix itself
 * is incomplete), or an error as soon as the prefix is readable:
 * -EBADMSG/OTA_ERR_LENGTH for a negative length, -EMSGSIZE/OTA_ERR_OVERSIZE
 * for a payload above max_payload. Reads nothing beyond the prefix.
 */
int kbox_frame_check(const uint8_t *p, size_t len, size_t max_payload, size_t *frame_len,
                     struct ota_err *err) OTA_MUST_CHECK;

/* ---- codec ------------------------------------------------------------------- */

/* A struct kbox_msg as msg_create() would make it: every INTEGER -1, every OCTSTR NULL. */
void kbox_msg_init(struct kbox_msg *m, enum kbox_msg_type type);

/*
 * Read the type word of a payload (without the length prefix), so a caller
 * can count unknown types. Returns 0, or -EBADMSG/OTA_ERR_TRUNCATED.
 */
int kbox_msg_peek_type(const uint8_t *p, size_t len, int32_t *type,
                       struct ota_err *err) OTA_MUST_CHECK;

/*
 * Octets kbox_msg_pack() writes for m, or -EINVAL/OTA_ERR_ARG (unknown type,
 * string with p NULL and len > 0), -EMSGSIZE/OTA_ERR_OVERSIZE (a string or the
 * payload above INT32_MAX).
 */
int kbox_msg_packed_len(const struct kbox_msg *m, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Pack m as a payload (no length prefix). Returns octets written, the errors
 * of kbox_msg_packed_len(), or -ENOSPC/OTA_ERR_NOSPACE; on any error nothing
 * is written to dst. m stays the caller's.
 */
int kbox_msg_pack(const struct kbox_msg *m, uint8_t *dst, size_t cap,
                  struct ota_err *err) OTA_MUST_CHECK;

/* As kbox_msg_pack() but writes the whole frame (length prefix + payload). */
int kbox_msg_encode(const struct kbox_msg *m, uint8_t *dst, size_t cap,
                    struct ota_err *err) OTA_MUST_CHECK;

/*
 * Unpack one payload (the octets after the length prefix). On success fills
 * *m, whose strings point into p (valid while p is). Errors, all -EBADMSG
 * unless noted, *m untouched:
 *   OTA_ERR_TRUNCATED  an INTEGER or a string length word is cut off
 *   OTA_ERR_LENGTH     a string longer than the rest of the payload, a
 *                      negative length other than -1, a UUID not 36 octets,
 *                      octets left after the last field
 *   OTA_ERR_MISSING    a UUID sent as NULL
 *   OTA_ERR_VALUE      a UUID that is not lowercase 8-4-4-4-12 hex (Kannel
 *                      always writes it so; accepting more would break
 *                      byte-exact re-encoding)
 *   OTA_ERR_TAG        unknown message type, rc -EOPNOTSUPP; the number is in
 *                      err->msg and kbox_msg_peek_type() returns it
 */
int kbox_msg_unpack(const uint8_t *p, size_t len, struct kbox_msg *m,
                    struct ota_err *err) OTA_MUST_CHECK;

/*
 * Decode exactly one whole frame (prefix + payload, len octets). Besides the
 * errors of kbox_msg_unpack(): prefix or payload cut off -> OTA_ERR_TRUNCATED,
 * negative prefix or octets beyond the frame -> OTA_ERR_LENGTH. No size limit
 * is applied here; kbox_frame_check() does that on the stream.
 */
int kbox_msg_decode(const uint8_t *p, size_t len, struct kbox_msg *m,
                    struct ota_err *err) OTA_MUST_CHECK;

/* ---- UUID -------------------------------------------------------------------- */

/* Write the 36-character lowercase text of id into out (no NUL added). Can't fail. */
void kbox_uuid_format(const uint8_t id[KBOX_UUID_LEN], char out[KBOX_UUID_STR_LEN]);

/*
 * Parse the 36-character lowercase text form. Returns 0, or -EBADMSG with
 * OTA_ERR_LENGTH (not 36 octets) / OTA_ERR_VALUE (bad character or dash).
 */
int kbox_uuid_parse(const uint8_t *p, size_t len, uint8_t id[KBOX_UUID_LEN],
                    struct ota_err *err) OTA_MUST_CHECK;

/* Turn 16 random octets into an RFC 4122 version 4 UUID in place. Can't fail. */
void kbox_uuid_make_v4(uint8_t id[KBOX_UUID_LEN]);

/* ---- box helpers ------------------------------------------------------------- */

/* admin{cmd_identify, boxc_id} (kannel-box.md §3); boxc_id may be NULL. Can't fail. */
void kbox_msg_identify(struct kbox_msg *m, struct kbox_str boxc_id);

/* heartbeat{load} (§4). Can't fail. */
void kbox_msg_heartbeat(struct kbox_msg *m, int32_t load);

/*
 * The ack a box owes for every sms bearerbox delivers (§7): nack, and the
 * delivered sms's time and id. Can't fail.
 */
void kbox_msg_ack(struct kbox_msg *m, enum kbox_ack_status nack, int32_t time,
                  const uint8_t id[KBOX_UUID_LEN]);

/* What the MT sender should do with an ack status; unknown values are final. */
enum kbox_ack_class kbox_ack_classify(int32_t nack);

/* Parameters of one OTA MT segment; strings are borrowed by the built message. */
struct kbox_mt {
    struct kbox_str sender;      /* originator; NULL lets bearerbox/SMSC choose */
    struct kbox_str receiver;    /* destination MSISDN; required, non-empty */
    struct kbox_str udh;         /* raw UDH with UDHL, or NULL/empty for none */
    struct kbox_str data;        /* binary user data after the UDH */
    int32_t mclass;              /* 0..3 or KBOX_UNDEF */
    int32_t pid;                 /* 0x7F SIM data download (SCP80), 0 push, or KBOX_UNDEF */
    int32_t dlr_mask;            /* KBOX_DLR_* bits, 0 or KBOX_UNDEF for none */
    int32_t priority;            /* 0..3 or KBOX_UNDEF */
    int32_t validity;            /* absolute UNIX time, or KBOX_UNDEF */
    int32_t time;                /* now, UNIX seconds; bearerbox echoes it in the ack */
    uint8_t id[KBOX_UUID_LEN];   /* the caller's fresh UUID: the ack correlation key */
    struct kbox_str boxc_id;     /* our identify id, so DLRs route back to us */
    struct kbox_str correlation; /* sent as dlr_url; required if dlr_mask asks for DLRs */
    struct kbox_str smsc_id;     /* force one SMSC link, or NULL to let bearerbox route */
};

/*
 * Build an sms{mt_push} for one OTA segment: coding 8-bit (DC_8BIT = 1), the
 * given mclass/pid/dlr_mask, every other INTEGER -1. The correlation travels
 * in dlr_url because bearerbox stores dlr_url with the DLR entry and echoes it
 * unchanged in every receipt, while meta_data only reaches bearerbox-made
 * (SMSC ack/nack) DLRs and the MT UUID is not returned at all (reference §6).
 * *out borrows every string of *mt. Errors (-EINVAL unless noted, *out
 * untouched): OTA_ERR_MISSING empty receiver or DLRs wanted without a
 * correlation; OTA_ERR_ARG udh or data with p NULL and len > 0;
 * OTA_ERR_LENGTH UDHL disagrees with the UDH length;
 * OTA_ERR_OVERSIZE (-EMSGSIZE) UDH + data above 140 octets; OTA_ERR_VALUE
 * mclass, pid, priority or dlr_mask out of range.
 */
int kbox_sms_build_mt(const struct kbox_mt *mt, struct kbox_msg *out,
                      struct ota_err *err) OTA_MUST_CHECK;

/* A delivery report as bearerbox sends it (sms{report_mo}, reference §6). */
struct kbox_dlr {
    enum kbox_dlr_event event;
    bool final;                  /* no further DLR will follow for this MT */
    int32_t mask;                /* the raw dlr_mask */
    struct kbox_str correlation; /* dlr_url of the MT, echoed unchanged; NULL if it had none */
    struct kbox_str foreign_id;  /* SMSC message id */
    struct kbox_str smsc_id;
    struct kbox_str sender;    /* the MT's sender (not swapped) */
    struct kbox_str receiver;  /* the MT's receiver */
    struct kbox_str text;      /* msgdata: receipt text, "ACK/..." or "NACK/..." */
    struct kbox_str meta_data; /* e.g. smpp dlr_err */
    int32_t time;              /* echo in our ack */
    uint8_t id[KBOX_UUID_LEN]; /* a new UUID made by bearerbox; echo in our ack */
};

/*
 * Read a DLR out of a decoded sms. Strings borrow from *sms. A DLR without
 * dlr_url is still returned (correlation NULL): the caller can fall back to
 * foreign_id + receiver (reference §6) rather than lose it. Errors (-EBADMSG,
 * *dlr untouched): OTA_ERR_VALUE sms_type not report_mo, or a dlr_mask with no
 * known event bit.
 */
int kbox_sms_read_dlr(const struct kbox_sms *sms, struct kbox_dlr *dlr,
                      struct ota_err *err) OTA_MUST_CHECK;

/* A mobile-originated message (sms{mo}, reference §7). */
struct kbox_mo {
    struct kbox_str sender;   /* originator MSISDN */
    struct kbox_str receiver; /* short code */
    struct kbox_str udh;      /* raw UDH with UDHL, or empty/NULL */
    struct kbox_str data;
    struct kbox_str smsc_id;
    struct kbox_str foreign_id;
    struct kbox_str meta_data;
    int32_t coding;
    int32_t mclass;
    int32_t pid;
    int32_t time;              /* echo in our ack */
    uint8_t id[KBOX_UUID_LEN]; /* echo in our ack */
};

/*
 * Read an MO out of a decoded sms. Strings borrow from *sms. Errors
 * (-EBADMSG, *mo untouched): OTA_ERR_VALUE sms_type not mo; OTA_ERR_MISSING
 * NULL sender; OTA_ERR_LENGTH a UDH whose UDHL disagrees with its length.
 */
int kbox_sms_read_mo(const struct kbox_sms *sms, struct kbox_mo *mo,
                     struct ota_err *err) OTA_MUST_CHECK;
