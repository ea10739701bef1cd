/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Remote APDU scripts and their responses, ETSI TS 102 226 clause 5:
 * compact command scripts and responses (5.1), expanded Command / Response
 * Scripting templates in definite and indefinite length coding (5.2, tags
 * of TS 101 220 tables 7.18-7.20). Every parser checks the whole input
 * before it writes any output, so a failed call leaves outputs unchanged.
 */
#include "ota/ota_rapdu.h"

#include <string.h>

static const char *const format_names[OTA_RAPDU_FORMAT__COUNT] = {
    [OTA_RAPDU_COMPACT] = "compact",
    [OTA_RAPDU_EXPANDED_DEF] = "expanded-definite",
    [OTA_RAPDU_EXPANDED_INDEF] = "expanded-indefinite",
};

const char *ota_rapdu_format_name(enum ota_rapdu_format f)
{
    return ota_enum_name(format_names, OTA_RAPDU_FORMAT__COUNT, f);
}

static int detect(const uint8_t *p, size_t len, uint8_t tag_def, uint8_t tag_indef,
                  enum ota_rapdu_format *fmt, struct ota_err *err)
{
    if (len < 1) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "rapdu: empty input");
    }
    if (p[0] == tag_def) {
        *fmt = OTA_RAPDU_EXPANDED_DEF;
    } else if (p[0] == tag_indef) {
        *fmt = OTA_RAPDU_EXPANDED_INDEF;
    } else {
        *fmt = OTA_RAPDU_COMPACT;
    }
    return 0;
}

int ota_rapdu_cmd_format(const uint8_t *p, size_t len, enum ota_rapdu_format *fmt,
                         struct ota_err *err)
{
    return detect(p, len, OTA_RAPDU_TAG_CMD_DEF, OTA_RAPDU_TAG_CMD_INDEF, fmt, err);
}

int ota_rapdu_rsp_format(const uint8_t *p, size_t len, enum ota_rapdu_format *fmt,
                         struct ota_err *err)
{
    return detect(p, len, OTA_RAPDU_TAG_RSP_DEF, OTA_RAPDU_TAG_RSP_INDEF, fmt, err);
}

/* ---- compact format ---- */

bool ota_rapdu_is_case2(uint8_t cla, uint8_t ins, uint8_t p1)
{
    (void)cla; /* the list holds for the ISO, GSM (A0) and GP/UICC (80) classes alike */
    switch (ins) {
    case 0xB0: /* READ BINARY */
    case 0xB2: /* READ RECORD */
    case 0xC0: /* GET RESPONSE */
    case 0xCA: /* GET DATA */
    case 0x12: /* FETCH */
    case 0x84: /* GET CHALLENGE */
        return true;
    case 0xF2: /* STATUS (P1 00..0F) vs GP GET STATUS (P1 10/20/40/80, has data) */
        return p1 < 0x10;
    case 0x70: /* MANAGE CHANNEL: open (P1 00) returns the channel number */
        return p1 == 0x00;
    default:
        return false;
    }
}

int ota_rapdu_compact_build(const struct ota_apdu *apdus, size_t n, uint8_t *dst, size_t cap,
                            struct ota_err *err)
{
    size_t total = 0, o = 0;

    if (n == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "compact: empty script");
    }
    for (size_t i = 0; i < n; i++) {
        const struct ota_apdu *a = &apdus[i];
        bool c2 = ota_rapdu_is_case2(a->cla, a->ins, a->p1);
        bool is_case2 = !a->lc && a->has_le;

        if (a->lc && !a->data) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG, "compact: command %zu Lc %u without data", i,
                            a->lc);
        }
        if (is_case2 != c2) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                            "compact: command %zu INS %02X P1 %02X is case %s here but would be "
                            "split as case %s",
                            i, a->ins, a->p1,
                            is_case2 ? "2"
                            : a->lc  ? "3/4"
                                     : "1",
                            c2 ? "2" : "1/3");
        }
        total += 5u + a->lc;
    }
    if (total > cap) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE,
                        "compact: script of %zu octets, %zu available", total, cap);
    }
    if (total > INT32_MAX) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "compact: script of %zu octets", total);
    }
    for (size_t i = 0; i < n; i++) {
        const struct ota_apdu *a = &apdus[i];

        dst[o++] = a->cla;
        dst[o++] = a->ins;
        dst[o++] = a->p1;
        dst[o++] = a->p2;
        if (a->lc) {
            /* Case 4 goes as case 3: a trailing Le would read as the next CLA. */
            dst[o++] = a->lc;
            memmove(dst + o, a->data, a->lc);
            o += a->lc;
        } else {
            /* Case 2: Le; case 1: P3 00 as in a T=0 TPDU. */
            dst[o++] = a->has_le ? a->le : 0x00;
        }
    }
    return (int)o;
}

/* One walk over a compact script; fills apdus only when it is not NULL. */
static int compact_walk(const uint8_t *p, size_t len, struct ota_apdu *apdus, size_t n_cap,
                        size_t *n_out, struct ota_err *err)
{
    size_t o = 0, n = 0;

    if (len == 0) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "compact: empty script");
    }
    while (o < len) {
        struct ota_apdu a = {0};
        const uint8_t *h = p + o;
        size_t rem = len - o;

        if (rem < 4) {
            return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                            "compact: command %zu at offset %zu has %zu of 4 header octets", n, o,
                            rem);
        }
        a.cla = h[0];
        a.ins = h[1];
        a.p1 = h[2];
        a.p2 = h[3];
        if (rem == 4) {
            o += 4; /* a last case-1 command may omit P3 */
        } else if (ota_rapdu_is_case2(a.cla, a.ins, a.p1)) {
            a.has_le = true;
            a.le = h[4];
            o += 5;
        } else if (h[4] == 0) {
            o += 5;
        } else {
            if (rem - 5 < h[4]) {
                return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                                "compact: command %zu INS %02X Lc %u, %zu data octets left", n,
                                a.ins, h[4], rem - 5);
            }
            a.lc = h[4];
            a.data = h + 5;
            o += 5u + a.lc;
        }
        if (n == n_cap) {
            return ota_fail(err, -ENOSPC, OTA_ERR_LIMIT, "compact: more than %zu commands", n_cap);
        }
        if (apdus) {
            apdus[n] = a;
        }
        n++;
    }
    *n_out = n;
    return 0;
}

int ota_rapdu_compact_split(const uint8_t *p, size_t len, struct ota_apdu *apdus, size_t n_cap,
                            size_t *n_out, struct ota_err *err)
{
    size_t n = 0;
    int rc = compact_walk(p, len, NULL, n_cap, &n, err);

    if (rc) {
        return rc;
    }
    rc = compact_walk(p, len, apdus, n_cap, &n, err);
    if (rc == 0) {
        *n_out = n;
    }
    return rc;
}

int ota_rapdu_compact_rsp_parse(const uint8_t *p, size_t len, struct ota_rapdu_compact_rsp *r,
                                struct ota_err *err)
{
    struct ota_rapdu_compact_rsp v = {0};

    if (len < 3) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                        "compact rsp: %zu octets, count + SW need 3", len);
    }
    v.n_executed = p[0];
    v.sw = ota_get_u16(p + 1);
    v.data_len = len - 3;
    v.data = v.data_len ? p + 3 : NULL;
    *r = v;
    return 0;
}

int ota_rapdu_compact_rsp_build(const struct ota_rapdu_compact_rsp *r, uint8_t *dst, size_t cap,
                                struct ota_err *err)
{
    if (r->data_len && !r->data) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "compact rsp: %zu data octets, NULL data",
                        r->data_len);
    }
    if (r->data_len > INT32_MAX - 3 || 3 + r->data_len > cap) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "compact rsp: %zu octets, %zu available",
                        3 + r->data_len, cap);
    }
    if (r->data_len) {
        memmove(dst + 3, r->data, r->data_len);
    }
    dst[0] = r->n_executed;
    ota_put_u16(dst + 1, r->sw);
    return (int)(3 + r->data_len);
}

bool ota_rapdu_compact_rsp_ok(const struct ota_rapdu_compact_rsp *r, size_t n_sent)
{
    return r->n_executed == n_sent && ota_sw_ok(r->sw);
}

/* ---- expanded format: template framing shared by commands and responses ---- */

struct tmpl {
    const uint8_t *p;
    size_t left;
    bool indef;
    const char *what;
};

/*
 * Open a template: AA/AB len value (nothing may follow it) or AE/AF 80 ...
 * (the walk ends at 00 00).
 */
static int tmpl_open(struct tmpl *it, const uint8_t *p, size_t len, uint8_t tag_def,
                     uint8_t tag_indef, const char *what, struct ota_err *err)
{
    struct ota_rapdu_tlv t;
    int rc;

    it->what = what;
    if (len < 1) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "%s: empty input", what);
    }
    if (p[0] == tag_indef) {
        if (len < 2) {
            return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "%s: tag %02X without length", what,
                            tag_indef);
        }
        if (p[1] != 0x80) {
            return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                            "%s: tag %02X needs indefinite length 80, found %02X", what, tag_indef,
                            p[1]);
        }
        it->p = p + 2;
        it->left = len - 2;
        it->indef = true;
        return 0;
    }
    if (p[0] != tag_def) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TAG, "%s: tag %02X, expected %02X or %02X", what,
                        p[0], tag_def, tag_indef);
    }
    rc = ota_rapdu_tlv_get(p, len, false, &t, err);
    if (rc) {
        return rc;
    }
    if (t.size != len) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "%s: template length %zu, %zu octets follow it", what, t.len, len - t.size);
    }
    it->p = t.value;
    it->left = t.len;
    it->indef = false;
    return 0;
}

/* Next TLV of a template: 1 with *t set, 0 at the end, or a negative errno. */
static int tmpl_next(struct tmpl *it, struct ota_rapdu_tlv *t, struct ota_err *err)
{
    int rc;

    if (it->indef) {
        if (it->left == 0) {
            return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                            "%s: input ends before end-of-contents 00 00", it->what);
        }
        if (it->p[0] == 0x00) {
            if (it->left < 2) {
                return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                                "%s: end-of-contents cut after 00", it->what);
            }
            if (it->p[1] != 0x00) {
                return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                                "%s: end-of-contents 00 %02X, expected 00 00", it->what, it->p[1]);
            }
            if (it->left != 2) {
                return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                                "%s: %zu octets after end-of-contents", it->what, it->left - 2);
            }
            it->left = 0;
            it->indef = false; /* the walk is over */
            return 0;
        }
    } else if (it->left == 0) {
        return 0;
    }
    /* Inside a definite template an overrun is a lying length; in an
     * indefinite one it runs off the input, i.e. the input was cut. */
    rc = ota_rapdu_tlv_get(it->p, it->left, !it->indef, t, err);
    if (rc) {
        return rc;
    }
    it->p += t->size;
    it->left -= t->size;
    return 1;
}

/* ---- expanded command ---- */

static int cmd_tlv_value_len(const struct ota_rapdu_cmd_tlv *c, size_t i, size_t *vlen,
                             struct ota_err *err)
{
    switch (c->tag) {
    case OTA_RAPDU_TAG_C_APDU:
        if (c->apdu.lc && !c->apdu.data) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                            "expanded cmd: TLV %zu C-APDU Lc %u without data", i, c->apdu.lc);
        }
        *vlen = ota_apdu_len(&c->apdu);
        return 0;
    case OTA_RAPDU_TAG_IMMEDIATE:
    case OTA_RAPDU_TAG_ERROR_ACTION:
    case OTA_RAPDU_TAG_CHAINING:
        if (c->len && !c->value) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                            "expanded cmd: TLV %zu tag %02X length %zu without value", i, c->tag,
                            c->len);
        }
        if (c->len > OTA_RAPDU_TLV_MAX_LEN) {
            return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                            "expanded cmd: TLV %zu tag %02X value of %zu octets", i, c->tag,
                            c->len);
        }
        *vlen = c->len;
        return 0;
    default:
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "expanded cmd: TLV %zu tag %02X is no command TLV (22/81/82/83)", i,
                        c->tag);
    }
}

/* Header of a template (definite) or its AE/AF 80 opening; returns octets. */
static size_t tmpl_hdr(uint8_t *dst, uint8_t tag, bool indef, size_t body)
{
    size_t o = 0;

    dst[o++] = tag;
    if (indef) {
        dst[o++] = 0x80;
    } else if (body < 0x80) {
        dst[o++] = (uint8_t)body;
    } else if (body <= 0xFF) {
        dst[o++] = 0x81;
        dst[o++] = (uint8_t)body;
    } else {
        dst[o++] = 0x82;
        ota_put_u16(dst + o, (uint16_t)body);
        o += 2;
    }
    return o;
}

static int tmpl_size(size_t body, bool indef, uint8_t tag, const char *what, size_t *total,
                     struct ota_err *err)
{
    if (indef) {
        *total = 2 + body + 2;
        return 0;
    }
    if (body > OTA_RAPDU_TLV_MAX_LEN) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "%s: template body of %zu octets, at most %u", what, body,
                        OTA_RAPDU_TLV_MAX_LEN);
    }
    *total = ota_rapdu_tlv_hdr_len(tag, body) + body;
    return 0;
}

/*
 * A script to build: either command TLVs, or bare APDUs that each become a
 * C-APDU TLV. Items are made one at a time rather than through a temporary
 * array: no VLA, no heap.
 */
struct cmd_src {
    const struct ota_rapdu_cmd_tlv *tlvs; /* NULL: use apdus */
    const struct ota_apdu *apdus;
};

static void cmd_src_get(const struct cmd_src *src, size_t i, struct ota_rapdu_cmd_tlv *out)
{
    if (src->tlvs) {
        *out = src->tlvs[i];
        return;
    }
    memset(out, 0, sizeof(*out));
    out->tag = OTA_RAPDU_TAG_C_APDU;
    out->apdu = src->apdus[i];
}

static int exp_cmd_build(const struct cmd_src *src, size_t n, bool indefinite, uint8_t *dst,
                         size_t cap, struct ota_err *err)
{
    struct ota_rapdu_cmd_tlv c;
    size_t body = 0, total = 0, o;
    uint8_t tag = indefinite ? OTA_RAPDU_TAG_CMD_INDEF : OTA_RAPDU_TAG_CMD_DEF;
    int rc;

    if (n == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "expanded cmd: empty script");
    }
    for (size_t i = 0; i < n; i++) {
        size_t vlen = 0;

        cmd_src_get(src, i, &c);
        rc = cmd_tlv_value_len(&c, i, &vlen, err);
        if (rc) {
            return rc;
        }
        body += ota_rapdu_tlv_hdr_len(c.tag, vlen) + vlen;
    }
    rc = tmpl_size(body, indefinite, tag, "expanded cmd", &total, err);
    if (rc) {
        return rc;
    }
    if (total > cap) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "expanded cmd: %zu octets, %zu available",
                        total, cap);
    }
    o = tmpl_hdr(dst, tag, indefinite, body);
    for (size_t i = 0; i < n; i++) {
        cmd_src_get(src, i, &c);
        if (c.tag == OTA_RAPDU_TAG_C_APDU) {
            size_t vlen = ota_apdu_len(&c.apdu);
            size_t hl = ota_rapdu_tlv_hdr_len(c.tag, vlen);

            rc = ota_apdu_build(&c.apdu, dst + o + hl, cap - o - hl, err);
            if (rc < 0) {
                return rc;
            }
            rc = ota_rapdu_tlv_put(c.tag, dst + o + hl, vlen, dst + o, cap - o, err);
        } else {
            rc = ota_rapdu_tlv_put(c.tag, c.value, c.len, dst + o, cap - o, err);
        }
        if (rc < 0) {
            return rc;
        }
        o += (size_t)rc;
    }
    if (indefinite) {
        dst[o++] = 0x00;
        dst[o++] = 0x00;
    }
    return (int)o;
}

int ota_rapdu_exp_cmd_build(const struct ota_rapdu_cmd_tlv *tlvs, size_t n, bool indefinite,
                            uint8_t *dst, size_t cap, struct ota_err *err)
{
    const struct cmd_src src = {.tlvs = tlvs, .apdus = NULL};

    return exp_cmd_build(&src, n, indefinite, dst, cap, err);
}

int ota_rapdu_exp_cmd_build_apdus(const struct ota_apdu *apdus, size_t n, bool indefinite,
                                  uint8_t *dst, size_t cap, struct ota_err *err)
{
    const struct cmd_src src = {.tlvs = NULL, .apdus = apdus};

    return exp_cmd_build(&src, n, indefinite, dst, cap, err);
}

static int exp_cmd_walk(const uint8_t *p, size_t len, struct ota_rapdu_cmd_tlv *tlvs, size_t n_cap,
                        size_t *n_out, bool *indefinite, struct ota_err *err)
{
    struct tmpl it = {0};
    struct ota_rapdu_tlv t;
    size_t n = 0;
    bool indef = false;
    int rc;

    rc =
        tmpl_open(&it, p, len, OTA_RAPDU_TAG_CMD_DEF, OTA_RAPDU_TAG_CMD_INDEF, "expanded cmd", err);
    if (rc) {
        return rc;
    }
    indef = it.indef;
    while ((rc = tmpl_next(&it, &t, err)) == 1) {
        struct ota_rapdu_cmd_tlv c = {0};

        c.tag = (uint8_t)t.tag;
        switch (t.tag) {
        case OTA_RAPDU_TAG_C_APDU:
            rc = ota_apdu_parse(t.value, t.len, &c.apdu, err);
            if (rc) {
                return rc;
            }
            break;
        case OTA_RAPDU_TAG_IMMEDIATE:
        case OTA_RAPDU_TAG_ERROR_ACTION:
        case OTA_RAPDU_TAG_CHAINING:
            c.value = t.value;
            c.len = t.len;
            break;
        default:
            return ota_fail(err, -EBADMSG, OTA_ERR_TAG, "expanded cmd: TLV %zu has unknown tag %X",
                            n, t.tag);
        }
        if (n == n_cap) {
            return ota_fail(err, -ENOSPC, OTA_ERR_LIMIT, "expanded cmd: more than %zu command TLVs",
                            n_cap);
        }
        if (tlvs) {
            tlvs[n] = c;
        }
        n++;
    }
    if (rc < 0) {
        return rc;
    }
    *n_out = n;
    *indefinite = indef;
    return 0;
}

int ota_rapdu_exp_cmd_parse(const uint8_t *p, size_t len, struct ota_rapdu_cmd_tlv *tlvs,
                            size_t n_cap, size_t *n_out, bool *indefinite, struct ota_err *err)
{
    size_t n = 0;
    bool indef = false;
    int rc = exp_cmd_walk(p, len, NULL, n_cap, &n, &indef, err);

    if (rc) {
        return rc;
    }
    rc = exp_cmd_walk(p, len, tlvs, n_cap, &n, &indef, err);
    if (rc == 0) {
        *n_out = n;
        *indefinite = indef;
    }
    return rc;
}

/* ---- expanded response ---- */

static int one_octet(const struct ota_rapdu_tlv *t, bool *has, uint8_t *v, struct ota_err *err)
{
    if (*has) {
        return ota_fail(err, -EBADMSG, OTA_ERR_DUPLICATE, "expanded rsp: second TLV %X", t->tag);
    }
    if (t->len != 1) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "expanded rsp: TLV %X of %zu octets, expected 1", t->tag, t->len);
    }
    *has = true;
    *v = t->value[0];
    return 0;
}

static int exp_rsp_walk(const uint8_t *p, size_t len, struct ota_rapdu_exp_rsp *out,
                        struct ota_rapdu_rapdu *rapdus, size_t cap, struct ota_err *err)
{
    struct ota_rapdu_exp_rsp r = {0};
    struct tmpl it = {0};
    struct ota_rapdu_tlv t;
    int rc;

    rc =
        tmpl_open(&it, p, len, OTA_RAPDU_TAG_RSP_DEF, OTA_RAPDU_TAG_RSP_INDEF, "expanded rsp", err);
    if (rc) {
        return rc;
    }
    r.indefinite = it.indef;
    while ((rc = tmpl_next(&it, &t, err)) == 1) {
        switch (t.tag) {
        case OTA_RAPDU_TAG_R_APDU:
            if (t.len < 2) {
                return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                                "expanded rsp: R-APDU %zu of %zu octets has no SW", r.n_rapdus,
                                t.len);
            }
            if (r.n_rapdus == cap) {
                return ota_fail(err, -ENOSPC, OTA_ERR_LIMIT, "expanded rsp: more than %zu R-APDUs",
                                cap);
            }
            if (rapdus) {
                struct ota_rapdu_rapdu *ra = &rapdus[r.n_rapdus];

                ra->data_len = t.len - 2;
                ra->data = ra->data_len ? t.value : NULL;
                ra->sw = ota_get_u16(t.value + t.len - 2);
            }
            r.n_rapdus++;
            break;
        case OTA_RAPDU_TAG_N_EXECUTED:
            if (r.has_n_executed) {
                return ota_fail(err, -EBADMSG, OTA_ERR_DUPLICATE, "expanded rsp: second TLV 80");
            }
            /* BER integer; taken unsigned since a count is never negative. */
            if (t.len < 1 || t.len > 2) {
                return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                                "expanded rsp: TLV 80 of %zu octets, expected 1 or 2", t.len);
            }
            /* Two octets with b8 set would be negative (8825-1 8.3); no count is. */
            if (t.len == 2 && (t.value[0] & 0x80)) {
                return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                                "expanded rsp: TLV 80 value %02X%02X is negative", t.value[0],
                                t.value[1]);
            }
            r.has_n_executed = true;
            r.n_executed = t.len == 1 ? t.value[0] : ota_get_u16(t.value);
            break;
        case OTA_RAPDU_TAG_IMMEDIATE_RSP:
            rc = one_octet(&t, &r.has_immediate_rsp, &r.immediate_rsp, err);
            if (rc) {
                return rc;
            }
            break;
        case OTA_RAPDU_TAG_CHAINING_RSP:
            rc = one_octet(&t, &r.has_chaining_rsp, &r.chaining_rsp, err);
            if (rc) {
                return rc;
            }
            break;
        case OTA_RAPDU_TAG_BAD_FORMAT:
            rc = one_octet(&t, &r.has_bad_format, &r.bad_format, err);
            if (rc) {
                return rc;
            }
            break;
        default:
            return ota_fail(err, -EBADMSG, OTA_ERR_TAG, "expanded rsp: unknown tag %X", t.tag);
        }
    }
    if (rc < 0) {
        return rc;
    }
    if (out) {
        *out = r;
    }
    return 0;
}

int ota_rapdu_exp_rsp_parse(const uint8_t *p, size_t len, struct ota_rapdu_exp_rsp *r,
                            struct ota_rapdu_rapdu *rapdus, size_t cap, struct ota_err *err)
{
    int rc = exp_rsp_walk(p, len, NULL, NULL, cap, err);

    if (rc) {
        return rc;
    }
    return exp_rsp_walk(p, len, r, rapdus, cap, err);
}

static size_t n_executed_len(uint16_t n)
{
    return n < 0x80 ? 1 : 2;
}

int ota_rapdu_exp_rsp_build(const struct ota_rapdu_exp_rsp *r, const struct ota_rapdu_rapdu *rapdus,
                            uint8_t *dst, size_t cap, struct ota_err *err)
{
    uint8_t tag = r->indefinite ? OTA_RAPDU_TAG_RSP_INDEF : OTA_RAPDU_TAG_RSP_DEF;
    size_t body = 0, total = 0, o;
    int rc;

    if (r->has_n_executed) {
        if (r->n_executed > 0x7FFF) {
            return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                            "expanded rsp: %u executed does not fit a 2-octet integer",
                            r->n_executed);
        }
        body += 2 + n_executed_len(r->n_executed);
    }
    for (size_t i = 0; i < r->n_rapdus; i++) {
        size_t vlen = rapdus[i].data_len + 2;

        if (rapdus[i].data_len && !rapdus[i].data) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                            "expanded rsp: R-APDU %zu has %zu data octets, NULL data", i,
                            rapdus[i].data_len);
        }
        if (rapdus[i].data_len > OTA_RAPDU_TLV_MAX_LEN - 2) {
            return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                            "expanded rsp: R-APDU %zu of %zu octets", i, vlen);
        }
        body += ota_rapdu_tlv_hdr_len(OTA_RAPDU_TAG_R_APDU, vlen) + vlen;
    }
    body += 3u * r->has_immediate_rsp + 3u * r->has_chaining_rsp + 3u * r->has_bad_format;
    rc = tmpl_size(body, r->indefinite, tag, "expanded rsp", &total, err);
    if (rc) {
        return rc;
    }
    if (total > cap || total > INT32_MAX) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "expanded rsp: %zu octets, %zu available",
                        total, cap);
    }
    o = tmpl_hdr(dst, tag, r->indefinite, body);
    if (r->has_n_executed) {
        dst[o++] = OTA_RAPDU_TAG_N_EXECUTED;
        dst[o++] = (uint8_t)n_executed_len(r->n_executed);
        if (r->n_executed < 0x80) {
            dst[o++] = (uint8_t)r->n_executed;
        } else {
            ota_put_u16(dst + o, r->n_executed);
            o += 2;
        }
    }
    for (size_t i = 0; i < r->n_rapdus; i++) {
        size_t vlen = rapdus[i].data_len + 2;
        size_t hl = ota_rapdu_tlv_hdr_len(OTA_RAPDU_TAG_R_APDU, vlen);

        if (rapdus[i].data_len) {
            memmove(dst + o + hl, rapdus[i].data, rapdus[i].data_len);
        }
        ota_put_u16(dst + o + hl + rapdus[i].data_len, rapdus[i].sw);
        rc = ota_rapdu_tlv_put(OTA_RAPDU_TAG_R_APDU, dst + o + hl, vlen, dst + o, cap - o, err);
        if (rc < 0) {
            return rc;
        }
        o += (size_t)rc;
    }
    if (r->has_immediate_rsp) {
        dst[o++] = OTA_RAPDU_TAG_IMMEDIATE_RSP;
        dst[o++] = 1;
        dst[o++] = r->immediate_rsp;
    }
    if (r->has_chaining_rsp) {
        dst[o++] = OTA_RAPDU_TAG_CHAINING_RSP;
        dst[o++] = 1;
        dst[o++] = r->chaining_rsp;
    }
    if (r->has_bad_format) {
        dst[o++] = OTA_RAPDU_TAG_BAD_FORMAT;
        dst[o++] = 1;
        dst[o++] = r->bad_format;
    }
    if (r->indefinite) {
        dst[o++] = 0x00;
        dst[o++] = 0x00;
    }
    return (int)o;
}

bool ota_rapdu_exp_rsp_ok(const struct ota_rapdu_exp_rsp *r, const struct ota_rapdu_rapdu *rapdus,
                          size_t n_sent)
{
    if (r->has_bad_format || r->has_immediate_rsp || r->has_chaining_rsp) {
        return false;
    }
    if (n_sent == 0 || r->n_rapdus != n_sent) {
        return false;
    }
    if (r->has_n_executed && r->n_executed != n_sent) {
        return false;
    }
    for (size_t i = 0; i < r->n_rapdus; i++) {
        if (!ota_sw_ok(rapdus[i].sw)) {
            return false;
        }
    }
    return true;
}
