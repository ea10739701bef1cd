/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kannel box-protocol message codec: frames (4-octet length + packed
 * Msg, kannel-box.md §1), msg_pack/msg_unpack of the five message types
 * (§2, field lists of gw/msg-decl.h in kannel-dev 1.4.5), and the box
 * helpers built on them: identify (§3), heartbeat (§4), ack classes (§5),
 * the OTA MT, DLR and MO mapping (§5-§7).
 *
 * The field lists below are tables, one row per msg-decl.h line, so the
 * packer and the unpacker cannot disagree on the order.
 */
#include "smpp/kbox.h"

#include <assert.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

/* ---- names ------------------------------------------------------------------ */

static const char *const msg_type_names[KBOX_MSG__COUNT] = {
    [KBOX_MSG_HEARTBEAT] = "heartbeat",
    [KBOX_MSG_ADMIN] = "admin",
    [KBOX_MSG_SMS] = "sms",
    [KBOX_MSG_ACK] = "ack",
    [KBOX_MSG_WDP_DATAGRAM] = "wdp_datagram",
};

static const char *const admin_cmd_names[KBOX_CMD__COUNT] = {
    [KBOX_CMD_SHUTDOWN] = "shutdown", [KBOX_CMD_SUSPEND] = "suspend",
    [KBOX_CMD_RESUME] = "resume",     [KBOX_CMD_IDENTIFY] = "identify",
    [KBOX_CMD_RESTART] = "restart",   [KBOX_CMD_FEATURE] = "feature",
};

static const char *const sms_type_names[KBOX_SMS__COUNT] = {
    [KBOX_SMS_MO] = "mo",
    [KBOX_SMS_MT_REPLY] = "mt_reply",
    [KBOX_SMS_MT_PUSH] = "mt_push",
    [KBOX_SMS_REPORT_MO] = "report_mo",
    [KBOX_SMS_REPORT_MT] = "report_mt",
};

static const char *const ack_status_names[KBOX_ACK__COUNT] = {
    [KBOX_ACK_SUCCESS] = "success",
    [KBOX_ACK_FAILED] = "failed",
    [KBOX_ACK_FAILED_TMP] = "failed_tmp",
    [KBOX_ACK_BUFFERED] = "buffered",
};

static const char *const ack_class_names[KBOX_ACK_CLASS__COUNT] = {
    [KBOX_ACK_CLASS_ACCEPTED] = "accepted",
    [KBOX_ACK_CLASS_RETRY] = "retry",
    [KBOX_ACK_CLASS_FINAL] = "final",
};

static const char *const dlr_event_names[KBOX_DLR_EV__COUNT] = {
    [KBOX_DLR_EV_DELIVERED] = "delivered",
    [KBOX_DLR_EV_FAILED] = "failed",
    [KBOX_DLR_EV_EXPIRED] = "expired",
    [KBOX_DLR_EV_UNDETERMINED] = "undetermined",
    [KBOX_DLR_EV_BUFFERED] = "buffered",
    [KBOX_DLR_EV_SMSC_ACCEPTED] = "smsc_accepted",
    [KBOX_DLR_EV_SMSC_REJECTED] = "smsc_rejected",
};

const char *kbox_msg_type_name(int32_t type)
{
    return ota_enum_name(msg_type_names, OTA_ARRAY_SIZE(msg_type_names), type);
}

const char *kbox_admin_cmd_name(int32_t cmd)
{
    return ota_enum_name(admin_cmd_names, OTA_ARRAY_SIZE(admin_cmd_names), cmd);
}

const char *kbox_sms_type_name(int32_t sms_type)
{
    return ota_enum_name(sms_type_names, OTA_ARRAY_SIZE(sms_type_names), sms_type);
}

const char *kbox_ack_status_name(int32_t nack)
{
    return ota_enum_name(ack_status_names, OTA_ARRAY_SIZE(ack_status_names), nack);
}

const char *kbox_ack_class_name(enum kbox_ack_class cls)
{
    return ota_enum_name(ack_class_names, OTA_ARRAY_SIZE(ack_class_names), cls);
}

const char *kbox_dlr_event_name(enum kbox_dlr_event ev)
{
    return ota_enum_name(dlr_event_names, OTA_ARRAY_SIZE(dlr_event_names), ev);
}

/* ---- field tables (gw/msg-decl.h, kannel-dev 1.4.5) ----------------------- */

enum field_kind {
    F_INT = 0,  /* INTEGER: int32_t */
    F_STR = 1,  /* OCTSTR: struct kbox_str */
    F_UUID = 2, /* UUID: uint8_t[16], text on the wire */
};

struct field {
    const char *name;
    size_t off; /* offset inside struct kbox_msg */
    enum field_kind kind;
};

#define FI(t, f)                                                                                   \
    {                                                                                              \
#f, offsetof(struct kbox_msg, t.f), F_INT                                                  \
    }
#define FS(t, f)                                                                                   \
    {                                                                                              \
#f, offsetof(struct kbox_msg, t.f), F_STR                                                  \
    }
#define FU(t, f)                                                                                   \
    {                                                                                              \
#f, offsetof(struct kbox_msg, t.f), F_UUID                                                 \
    }

static const struct field heartbeat_fields[] = {
    FI(heartbeat, load),
};

static const struct field admin_fields[] = {
    FI(admin, command),
    FS(admin, boxc_id),
};

/* 31 wire fields; split_parts (VOID, between msg_left and priority) is not sent. */
static const struct field sms_fields[] = {
    FS(sms, sender),     FS(sms, receiver),    FS(sms, udhdata),     FS(sms, msgdata),
    FI(sms, time),       FS(sms, smsc_id),     FS(sms, smsc_number), FS(sms, foreign_id),
    FS(sms, service),    FS(sms, account),     FU(sms, id),          FI(sms, sms_type),
    FI(sms, mclass),     FI(sms, mwi),         FI(sms, coding),      FI(sms, compress),
    FI(sms, validity),   FI(sms, deferred),    FI(sms, dlr_mask),    FS(sms, dlr_url),
    FI(sms, pid),        FI(sms, alt_dcs),     FI(sms, rpi),         FS(sms, charset),
    FS(sms, boxc_id),    FS(sms, binfo),       FI(sms, msg_left),    FI(sms, priority),
    FI(sms, resend_try), FI(sms, resend_time), FS(sms, meta_data),
};

static const struct field ack_fields[] = {
    FI(ack, nack),
    FI(ack, time),
    FU(ack, id),
};

static const struct field wdp_fields[] = {
    FS(wdp, source_address),   FI(wdp, source_port), FS(wdp, destination_address),
    FI(wdp, destination_port), FS(wdp, user_data),
};

static const struct layout {
    const struct field *f;
    size_t n;
} layouts[KBOX_MSG__COUNT] = {
    [KBOX_MSG_HEARTBEAT] = {heartbeat_fields, OTA_ARRAY_SIZE(heartbeat_fields)},
    [KBOX_MSG_ADMIN] = {admin_fields, OTA_ARRAY_SIZE(admin_fields)},
    [KBOX_MSG_SMS] = {sms_fields, OTA_ARRAY_SIZE(sms_fields)},
    [KBOX_MSG_ACK] = {ack_fields, OTA_ARRAY_SIZE(ack_fields)},
    [KBOX_MSG_WDP_DATAGRAM] = {wdp_fields, OTA_ARRAY_SIZE(wdp_fields)},
};

static int32_t *fld_int(struct kbox_msg *m, const struct field *f)
{
    return (int32_t *)((char *)m + f->off);
}

static struct kbox_str *fld_str(struct kbox_msg *m, const struct field *f)
{
    return (struct kbox_str *)((char *)m + f->off);
}

static uint8_t *fld_uuid(struct kbox_msg *m, const struct field *f)
{
    return (uint8_t *)m + f->off;
}

static const int32_t *fld_cint(const struct kbox_msg *m, const struct field *f)
{
    return (const int32_t *)((const char *)m + f->off);
}

static const struct kbox_str *fld_cstr(const struct kbox_msg *m, const struct field *f)
{
    return (const struct kbox_str *)((const char *)m + f->off);
}

static const uint8_t *fld_cuuid(const struct kbox_msg *m, const struct field *f)
{
    return (const uint8_t *)m + f->off;
}

/* ---- big-endian signed 32-bit (encode_network_long) ------------------------ */

static int32_t get_i32(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];

    /* Two's complement without implementation-defined conversion. */
    if (v <= INT32_MAX) {
        return (int32_t)v;
    }
    return (int32_t)(v - 0x80000000u) - INT32_MAX - 1;
}

static void put_i32(uint8_t *p, int32_t v)
{
    uint32_t u = (uint32_t)v;

    p[0] = (uint8_t)(u >> 24);
    p[1] = (uint8_t)(u >> 16);
    p[2] = (uint8_t)(u >> 8);
    p[3] = (uint8_t)u;
}

/* ---- framing --------------------------------------------------------------- */

int kbox_frame_check(const uint8_t *p, size_t len, size_t max_payload, size_t *frame_len,
                     struct ota_err *err)
{
    int32_t plen;

    if (len < KBOX_FRAME_HDR_LEN) {
        *frame_len = KBOX_FRAME_HDR_LEN;
        return 0;
    }
    plen = get_i32(p);
    /* Kannel skips a negative length (conn_read_withlen); for us the stream is lost. */
    if (plen < 0) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "kbox frame: negative length %d", plen);
    }
    if ((uint64_t)plen > max_payload) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "kbox frame: length %d above the limit %zu", plen, max_payload);
    }
    *frame_len = KBOX_FRAME_HDR_LEN + (size_t)plen;
    return len >= *frame_len ? 1 : 0;
}

/* ---- init / builders that cannot fail --------------------------------------- */

void kbox_msg_init(struct kbox_msg *m, enum kbox_msg_type type)
{
    const struct layout *l;

    assert(m);
    assert((unsigned)type < KBOX_MSG__COUNT);
    memset(m, 0, sizeof(*m));
    m->type = type;
    l = &layouts[type];
    /* msg_create(): INTEGERs are MSG_PARAM_UNDEFINED, OCTSTRs NULL (memset). */
    for (size_t i = 0; i < l->n; i++) {
        if (l->f[i].kind == F_INT) {
            *fld_int(m, &l->f[i]) = KBOX_UNDEF;
        }
    }
}

void kbox_msg_identify(struct kbox_msg *m, struct kbox_str boxc_id)
{
    kbox_msg_init(m, KBOX_MSG_ADMIN);
    m->admin.command = KBOX_CMD_IDENTIFY;
    m->admin.boxc_id = boxc_id;
}

void kbox_msg_heartbeat(struct kbox_msg *m, int32_t load)
{
    kbox_msg_init(m, KBOX_MSG_HEARTBEAT);
    m->heartbeat.load = load;
}

void kbox_msg_ack(struct kbox_msg *m, enum kbox_ack_status nack, int32_t time,
                  const uint8_t id[KBOX_UUID_LEN])
{
    kbox_msg_init(m, KBOX_MSG_ACK);
    m->ack.nack = (int32_t)nack;
    m->ack.time = time;
    memcpy(m->ack.id, id, KBOX_UUID_LEN);
}

/* ---- UUID ------------------------------------------------------------------- */

static const char hexdig[] = "0123456789abcdef";

/* Dashes of the 8-4-4-4-12 text form (uuid_unparse in gwlib/gw_uuid.c). */
static bool uuid_dash_at(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

void kbox_uuid_format(const uint8_t id[KBOX_UUID_LEN], char out[KBOX_UUID_STR_LEN])
{
    size_t o = 0;

    for (size_t i = 0; i < KBOX_UUID_LEN; i++) {
        if (uuid_dash_at(o)) {
            out[o++] = '-';
        }
        out[o++] = hexdig[id[i] >> 4];
        out[o++] = hexdig[id[i] & 0xf];
    }
    assert(o == KBOX_UUID_STR_LEN);
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

int kbox_uuid_parse(const uint8_t *p, size_t len, uint8_t id[KBOX_UUID_LEN], struct ota_err *err)
{
    uint8_t r[KBOX_UUID_LEN];
    size_t o = 0;

    if (len != KBOX_UUID_STR_LEN) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "uuid: %zu octets, the text form has %u",
                        len, KBOX_UUID_STR_LEN);
    }
    for (size_t i = 0; i < KBOX_UUID_LEN; i++) {
        int hi, lo;

        if (uuid_dash_at(o)) {
            if (p[o] != '-') {
                return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                                "uuid: octet %zu is 0x%02x, expected '-'", o, p[o]);
            }
            o++;
        }
        hi = hexval(p[o]);
        lo = hexval(p[o + 1]);
        if (hi < 0 || lo < 0) {
            size_t bad = hi < 0 ? o : o + 1;

            return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                            "uuid: octet %zu is 0x%02x, expected lowercase hex", bad, p[bad]);
        }
        r[i] = (uint8_t)(hi << 4 | lo);
        o += 2;
    }
    memcpy(id, r, KBOX_UUID_LEN);
    return 0;
}

void kbox_uuid_make_v4(uint8_t id[KBOX_UUID_LEN])
{
    /* RFC 4122 4.4: version 4 in the high nibble of octet 6, variant 10 in octet 8. */
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

/* ---- pack --------------------------------------------------------------------- */

static int check_str(const struct kbox_str *s, enum kbox_msg_type type, const char *name,
                     struct ota_err *err)
{
    if (!s->p && s->len) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "kbox %s.%s: NULL string with length %zu",
                        kbox_msg_type_name(type), name, s->len);
    }
    if (s->len > INT32_MAX) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "kbox %s.%s: %zu octets, the length word holds at most %d",
                        kbox_msg_type_name(type), name, s->len, INT32_MAX);
    }
    return 0;
}

int kbox_msg_packed_len(const struct kbox_msg *m, struct ota_err *err)
{
    const struct layout *l;
    size_t total = 4; /* type word */

    if ((unsigned)m->type >= KBOX_MSG__COUNT) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "kbox: cannot pack message type %d",
                        (int)m->type);
    }
    l = &layouts[m->type];
    for (size_t i = 0; i < l->n; i++) {
        const struct field *f = &l->f[i];
        int rc;

        switch (f->kind) {
        case F_INT:
            total += 4;
            break;
        case F_STR:
            rc = check_str(fld_cstr(m, f), m->type, f->name, err);
            if (rc < 0) {
                return rc;
            }
            total += 4;
            /* Each string is <= INT32_MAX and there are few: no size_t overflow. */
            total += fld_cstr(m, f)->len;
            break;
        case F_UUID:
            total += 4 + KBOX_UUID_STR_LEN;
            break;
        }
        if (total > INT32_MAX) {
            return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                            "kbox %s: payload passes %d octets at field %s",
                            kbox_msg_type_name(m->type), INT32_MAX, f->name);
        }
    }
    return (int)total;
}

/* Writes exactly kbox_msg_packed_len(m) octets; the caller has checked both. */
static void pack_fields(const struct kbox_msg *m, uint8_t *dst)
{
    const struct layout *l = &layouts[m->type];
    size_t o = 0;

    put_i32(dst, (int32_t)m->type);
    o += 4;
    for (size_t i = 0; i < l->n; i++) {
        const struct field *f = &l->f[i];
        const struct kbox_str *s;

        switch (f->kind) {
        case F_INT:
            put_i32(dst + o, *fld_cint(m, f));
            o += 4;
            break;
        case F_STR:
            s = fld_cstr(m, f);
            if (!s->p) {
                /* Kannel's NULL Octstr: length -1 and no octets (§2). */
                put_i32(dst + o, -1);
                o += 4;
                break;
            }
            put_i32(dst + o, (int32_t)s->len);
            o += 4;
            if (s->len) {
                memcpy(dst + o, s->p, s->len);
            }
            o += s->len;
            break;
        case F_UUID:
            put_i32(dst + o, (int32_t)KBOX_UUID_STR_LEN);
            o += 4;
            kbox_uuid_format(fld_cuuid(m, f), (char *)(dst + o));
            o += KBOX_UUID_STR_LEN;
            break;
        }
    }
}

int kbox_msg_pack(const struct kbox_msg *m, uint8_t *dst, size_t cap, struct ota_err *err)
{
    int n = kbox_msg_packed_len(m, err);

    if (n < 0) {
        return n;
    }
    if ((size_t)n > cap) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE,
                        "kbox %s: payload needs %d octets, buffer has %zu",
                        kbox_msg_type_name(m->type), n, cap);
    }
    pack_fields(m, dst);
    return n;
}

int kbox_msg_encode(const struct kbox_msg *m, uint8_t *dst, size_t cap, struct ota_err *err)
{
    int n = kbox_msg_packed_len(m, err);

    if (n < 0) {
        return n;
    }
    if ((size_t)n > INT_MAX - KBOX_FRAME_HDR_LEN) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "kbox %s: frame of %d + 4 octets does not fit an int",
                        kbox_msg_type_name(m->type), n);
    }
    if ((size_t)n + KBOX_FRAME_HDR_LEN > cap) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE,
                        "kbox %s: frame needs %d octets, buffer has %zu",
                        kbox_msg_type_name(m->type), n + (int)KBOX_FRAME_HDR_LEN, cap);
    }
    /* conn_write_withlen(): the prefix counts the payload only. */
    put_i32(dst, n);
    pack_fields(m, dst + KBOX_FRAME_HDR_LEN);
    return n + (int)KBOX_FRAME_HDR_LEN;
}

/* ---- unpack ------------------------------------------------------------------- */

/* Cursor over a payload; every read checks what is left. */
struct rd {
    const uint8_t *p;
    size_t left;
    size_t off; /* offset in the payload, for messages */
};

static int rd_int(struct rd *r, const char *type, const char *name, int32_t *v, struct ota_err *err)
{
    if (r->left < 4) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                        "kbox %s.%s: INTEGER at offset %zu needs 4 octets, %zu left", type, name,
                        r->off, r->left);
    }
    *v = get_i32(r->p);
    r->p += 4;
    r->left -= 4;
    r->off += 4;
    return 0;
}

static int rd_str(struct rd *r, const char *type, const char *name, struct kbox_str *s,
                  struct ota_err *err)
{
    int32_t n = 0;
    int rc = rd_int(r, type, name, &n, err);

    if (rc < 0) {
        return rc;
    }
    if (n == -1) {
        *s = KBOX_STR_NULL;
        return 0;
    }
    if (n < 0) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "kbox %s.%s: length %d at offset %zu (only -1 may be negative)", type, name,
                        n, r->off - 4);
    }
    if ((size_t)n > r->left) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "kbox %s.%s: length %d at offset %zu but %zu octets left", type, name, n,
                        r->off - 4, r->left);
    }
    /* Borrowed; a non-NULL pointer even for length 0 keeps empty distinct from NULL. */
    s->p = r->p;
    s->len = (size_t)n;
    r->p += n;
    r->left -= (size_t)n;
    r->off += (size_t)n;
    return 0;
}

static int rd_uuid(struct rd *r, const char *type, const char *name, uint8_t *id,
                   struct ota_err *err)
{
    struct kbox_str s;
    int rc = rd_str(r, type, name, &s, err);

    if (rc < 0) {
        return rc;
    }
    /* msg_unpack() runs uuid_parse() on the text and rejects the Msg if it fails. */
    if (!s.p) {
        return ota_fail(err, -EBADMSG, OTA_ERR_MISSING, "kbox %s.%s: UUID is NULL at offset %zu",
                        type, name, r->off - 4);
    }
    rc = kbox_uuid_parse(s.p, s.len, id, err);
    if (rc < 0 && err) {
        char inner[sizeof(err->msg)];

        memcpy(inner, err->msg, sizeof(inner));
        return ota_fail(err, rc, err->code, "kbox %s.%s: %s", type, name, inner);
    }
    return rc;
}

int kbox_msg_peek_type(const uint8_t *p, size_t len, int32_t *type, struct ota_err *err)
{
    if (len < 4) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                        "kbox: payload of %zu octets, the type word needs 4", len);
    }
    *type = get_i32(p);
    return 0;
}

int kbox_msg_unpack(const uint8_t *p, size_t len, struct kbox_msg *m, struct ota_err *err)
{
    struct kbox_msg r;
    struct rd rd = {p, len, 0};
    const struct layout *l;
    int32_t type = -1;
    int rc;

    rc = kbox_msg_peek_type(p, len, &type, err);
    if (rc < 0) {
        return rc;
    }
    if (type < 0 || type >= KBOX_MSG__COUNT) {
        return ota_fail(err, -EOPNOTSUPP, OTA_ERR_TAG, "kbox: unknown message type %d", type);
    }
    rd.p += 4;
    rd.left -= 4;
    rd.off = 4;
    memset(&r, 0, sizeof(r));
    r.type = (enum kbox_msg_type)type;
    l = &layouts[type];
    for (size_t i = 0; i < l->n; i++) {
        const struct field *f = &l->f[i];
        const char *tn = msg_type_names[type];

        switch (f->kind) {
        case F_INT:
            rc = rd_int(&rd, tn, f->name, fld_int(&r, f), err);
            break;
        case F_STR:
            rc = rd_str(&rd, tn, f->name, fld_str(&r, f), err);
            break;
        case F_UUID:
            rc = rd_uuid(&rd, tn, f->name, fld_uuid(&r, f), err);
            break;
        }
        if (rc < 0) {
            return rc;
        }
    }
    /*
     * Kannel ignores trailing octets, but both ends must share one
     * msg-decl.h (§2 caveats): extra octets mean a newer peer's extra
     * fields, which we would silently lose.
     */
    if (rd.left) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "kbox %s: %zu octets after the last field (%s), payload %zu",
                        msg_type_names[type], rd.left, l->f[l->n - 1].name, len);
    }
    *m = r;
    return 0;
}

int kbox_msg_decode(const uint8_t *p, size_t len, struct kbox_msg *m, struct ota_err *err)
{
    int32_t plen;

    if (len < KBOX_FRAME_HDR_LEN) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                        "kbox frame: %zu octets, the length prefix needs 4", len);
    }
    plen = get_i32(p);
    if (plen < 0) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "kbox frame: negative length %d", plen);
    }
    if ((size_t)plen > len - KBOX_FRAME_HDR_LEN) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                        "kbox frame: length %d but %zu payload octets", plen,
                        len - KBOX_FRAME_HDR_LEN);
    }
    if ((size_t)plen < len - KBOX_FRAME_HDR_LEN) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "kbox frame: length %d but %zu octets follow the prefix", plen,
                        len - KBOX_FRAME_HDR_LEN);
    }
    return kbox_msg_unpack(p + KBOX_FRAME_HDR_LEN, (size_t)plen, m, err);
}

/* ---- ack classes ---------------------------------------------------------------- */

enum kbox_ack_class kbox_ack_classify(int32_t nack)
{
    switch (nack) {
    case KBOX_ACK_SUCCESS:
        return KBOX_ACK_CLASS_ACCEPTED;
    case KBOX_ACK_BUFFERED:
        /* Kept in bearerbox's global queue: resending would duplicate it (§5). */
        return KBOX_ACK_CLASS_ACCEPTED;
    case KBOX_ACK_FAILED_TMP:
        /* Outgoing queue full or bearerbox shutting down: try again later. */
        return KBOX_ACK_CLASS_RETRY;
    case KBOX_ACK_FAILED:
        return KBOX_ACK_CLASS_FINAL;
    default:
        /* Unknown: bearerbox may or may not hold it; never risk a duplicate. */
        return KBOX_ACK_CLASS_FINAL;
    }
}

/* ---- OTA MT ---------------------------------------------------------------------- */

/* The UDH starts with UDHL, which counts the octets after itself (TS 23.040 9.2.3.24). */
static int check_udh(struct kbox_str udh, const char *what, int rc, struct ota_err *err)
{
    if (!udh.p || udh.len == 0) {
        return 0;
    }
    if ((size_t)udh.p[0] + 1 != udh.len) {
        return ota_fail(err, rc, OTA_ERR_LENGTH,
                        "kbox %s: UDHL %u but UDH has %zu octets (UDHL + 1 expected)", what,
                        udh.p[0], udh.len);
    }
    return 0;
}

static bool in_range_or_undef(int32_t v, int32_t lo, int32_t hi)
{
    return v == KBOX_UNDEF || (v >= lo && v <= hi);
}

int kbox_sms_build_mt(const struct kbox_mt *mt, struct kbox_msg *out, struct ota_err *err)
{
    struct kbox_msg m;
    bool wants_dlr;
    int rc;

    if (!mt->receiver.p || mt->receiver.len == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_MISSING, "kbox mt: receiver is empty");
    }
    if ((!mt->udh.p && mt->udh.len) || (!mt->data.p && mt->data.len)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "kbox mt: NULL pointer with length (udh %zu, data %zu)", mt->udh.len,
                        mt->data.len);
    }
    rc = check_udh(mt->udh, "mt", -EINVAL, err);
    if (rc < 0) {
        return rc;
    }
    if (mt->udh.len > KBOX_SMS_MAX_OCTETS || mt->data.len > KBOX_SMS_MAX_OCTETS - mt->udh.len) {
        /* Longer would make bearerbox split it and break our own segmenting. */
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "kbox mt: UDH %zu + data %zu octets, at most %u", mt->udh.len, mt->data.len,
                        KBOX_SMS_MAX_OCTETS);
    }
    if (!in_range_or_undef(mt->mclass, 0, 3)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kbox mt: mclass %d not 0..3 or -1",
                        mt->mclass);
    }
    if (!in_range_or_undef(mt->pid, 0, 255)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kbox mt: pid %d not 0..255 or -1", mt->pid);
    }
    if (!in_range_or_undef(mt->priority, 0, 3)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kbox mt: priority %d not 0..3 or -1",
                        mt->priority);
    }
    if (!in_range_or_undef(mt->dlr_mask, 0, KBOX_DLR_ALL)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "kbox mt: dlr_mask 0x%x has bits outside 0x%x",
                        (unsigned)mt->dlr_mask, KBOX_DLR_ALL);
    }
    wants_dlr = mt->dlr_mask != KBOX_UNDEF && mt->dlr_mask != 0;
    if (wants_dlr && (!mt->correlation.p || mt->correlation.len == 0)) {
        return ota_fail(err, -EINVAL, OTA_ERR_MISSING,
                        "kbox mt: dlr_mask 0x%x without a correlation (dlr_url)",
                        (unsigned)mt->dlr_mask);
    }

    kbox_msg_init(&m, KBOX_MSG_SMS);
    m.sms.sender = mt->sender;
    m.sms.receiver = mt->receiver;
    /* An empty UDH goes as NULL: smsbox sends no udhdata for plain messages. */
    m.sms.udhdata = mt->udh.len ? mt->udh : KBOX_STR_NULL;
    /* Binary data is sent even when empty, so bearerbox sees an (empty) body. */
    m.sms.msgdata = mt->data.p ? mt->data : KBOX_STR_LIT("");
    m.sms.time = mt->time;
    m.sms.smsc_id = mt->smsc_id;
    memcpy(m.sms.id, mt->id, KBOX_UUID_LEN);
    m.sms.sms_type = KBOX_SMS_MT_PUSH;
    m.sms.mclass = mt->mclass;
    m.sms.coding = KBOX_DC_8BIT;
    m.sms.validity = mt->validity;
    m.sms.dlr_mask = mt->dlr_mask;
    if (wants_dlr) {
        m.sms.dlr_url = mt->correlation;
    }
    m.sms.pid = mt->pid;
    m.sms.boxc_id = mt->boxc_id;
    m.sms.priority = mt->priority;
    *out = m;
    return 0;
}

/* ---- DLR and MO ------------------------------------------------------------------ */

/*
 * dlr_find() sends one event bit per report (§6); 1.4.5 adds EXPIRED or
 * UNKNOWN next to FAIL. Final outcomes win over intermediate ones should
 * several bits ever arrive together.
 */
static int dlr_event(int32_t mask, enum kbox_dlr_event *ev)
{
    if (mask == KBOX_UNDEF || mask <= 0) {
        return -1;
    }
    if (mask & KBOX_DLR_SUCCESS) {
        *ev = KBOX_DLR_EV_DELIVERED;
    } else if (mask & KBOX_DLR_EXPIRED) {
        *ev = KBOX_DLR_EV_EXPIRED;
    } else if (mask & KBOX_DLR_UNKNOWN) {
        *ev = KBOX_DLR_EV_UNDETERMINED;
    } else if (mask & KBOX_DLR_FAIL) {
        *ev = KBOX_DLR_EV_FAILED;
    } else if (mask & KBOX_DLR_SMSC_FAIL) {
        *ev = KBOX_DLR_EV_SMSC_REJECTED;
    } else if (mask & KBOX_DLR_BUFFERED) {
        *ev = KBOX_DLR_EV_BUFFERED;
    } else if (mask & KBOX_DLR_SMSC_SUCCESS) {
        *ev = KBOX_DLR_EV_SMSC_ACCEPTED;
    } else {
        return -1;
    }
    return 0;
}

int kbox_sms_read_dlr(const struct kbox_sms *sms, struct kbox_dlr *dlr, struct ota_err *err)
{
    struct kbox_dlr d;

    if (sms->sms_type != KBOX_SMS_REPORT_MO) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                        "kbox dlr: sms_type %d (%s), expected %d (report_mo)", sms->sms_type,
                        kbox_sms_type_name(sms->sms_type), KBOX_SMS_REPORT_MO);
    }
    memset(&d, 0, sizeof(d));
    if (dlr_event(sms->dlr_mask, &d.event) < 0) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                        "kbox dlr: dlr_mask %d (0x%x) names no known event", sms->dlr_mask,
                        (unsigned)sms->dlr_mask);
    }
    d.final = d.event != KBOX_DLR_EV_BUFFERED && d.event != KBOX_DLR_EV_SMSC_ACCEPTED;
    d.mask = sms->dlr_mask;
    d.correlation = sms->dlr_url;
    d.foreign_id = sms->foreign_id;
    d.smsc_id = sms->smsc_id;
    d.sender = sms->sender;
    d.receiver = sms->receiver;
    d.text = sms->msgdata;
    d.meta_data = sms->meta_data;
    d.time = sms->time;
    memcpy(d.id, sms->id, KBOX_UUID_LEN);
    *dlr = d;
    return 0;
}

int kbox_sms_read_mo(const struct kbox_sms *sms, struct kbox_mo *mo, struct ota_err *err)
{
    struct kbox_mo r;
    int rc;

    if (sms->sms_type != KBOX_SMS_MO) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE, "kbox mo: sms_type %d (%s), expected %d (mo)",
                        sms->sms_type, kbox_sms_type_name(sms->sms_type), KBOX_SMS_MO);
    }
    if (!sms->sender.p) {
        return ota_fail(err, -EBADMSG, OTA_ERR_MISSING, "kbox mo: sender is NULL");
    }
    rc = check_udh(sms->udhdata, "mo", -EBADMSG, err);
    if (rc < 0) {
        return rc;
    }
    memset(&r, 0, sizeof(r));
    r.sender = sms->sender;
    r.receiver = sms->receiver;
    r.udh = sms->udhdata;
    r.data = sms->msgdata;
    r.smsc_id = sms->smsc_id;
    r.foreign_id = sms->foreign_id;
    r.meta_data = sms->meta_data;
    r.coding = sms->coding;
    r.mclass = sms->mclass;
    r.pid = sms->pid;
    r.time = sms->time;
    memcpy(r.id, sms->id, KBOX_UUID_LEN);
    *mo = r;
    return 0;
}
