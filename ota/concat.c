/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Concatenated SMS: splitting a payload into 140-octet user data parts with
 * the concat IE of TS 23.040 9.2.3.24.1 (8-bit ref) or 9.2.3.24.8 (16-bit
 * ref), the first-part-only CPI of TS 31.115 4.2 for SCP80 command packets,
 * and a bounded reassembler for received parts (any order, duplicates,
 * expiry driven by the caller's clock). The reassembler is the one place in
 * this module that allocates; every object it hands out says who frees it.
 */
#include "ota/ota_udh.h"

#include <stdlib.h>
#include <string.h>

/* ---- segmentation ------------------------------------------------------ */

static size_t ies_octets(const struct ota_udh_ie *ies, size_t n)
{
    size_t s = 0;

    for (size_t i = 0; i < n; i++) {
        s += 2 + (size_t)ies[i].len;
    }
    return s;
}

static int check_ies(const struct ota_udh_ie *ies, size_t n, const char *what, struct ota_err *err)
{
    if (n && !ies) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "concat: %s IE list NULL", what);
    }
    for (size_t i = 0; i < n; i++) {
        if (ies[i].len && !ies[i].val) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                            "concat: %s IE %zu (%02x) length %u without value", what, i, ies[i].iei,
                            ies[i].len);
        }
    }
    return 0;
}

static size_t put_ies(uint8_t *d, const struct ota_udh_ie *ies, size_t n)
{
    size_t pos = 0;

    for (size_t i = 0; i < n; i++) {
        d[pos++] = ies[i].iei;
        d[pos++] = ies[i].len;
        if (ies[i].len) {
            memcpy(&d[pos], ies[i].val, ies[i].len);
        }
        pos += ies[i].len;
    }
    return pos;
}

int ota_concat_segment(const uint8_t *payload, size_t len, const struct ota_concat_opts *opts,
                       struct ota_sms_part *parts, size_t max_parts, struct ota_err *err)
{
    static const struct ota_concat_opts none = {0};
    const struct ota_concat_opts *o = opts ? opts : &none;
    size_t every, first, cie, h_single, h_first, h_later, n_parts;
    int rc;

    if (!parts || (len && !payload)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "concat: NULL argument");
    }
    rc = check_ies(o->every, o->n_every, "every-part", err);
    if (rc) {
        return rc;
    }
    rc = check_ies(o->first, o->n_first, "first-part", err);
    if (rc) {
        return rc;
    }
    if (!o->ref16 && o->ref > 0xff) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "concat: ref %u does not fit 8 bits", o->ref);
    }

    every = ies_octets(o->every, o->n_every);
    first = ies_octets(o->first, o->n_first);
    cie = o->ref16 ? 6 : 5;
    h_single = every + first ? 1 + every + first : 0;
    if (h_single > OTA_SMS_UD_MAX) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "concat: UDH %zu octets, max %u",
                        h_single, OTA_SMS_UD_MAX);
    }

    if (h_single + len <= OTA_SMS_UD_MAX) {
        /* fits one SMS: no concat IE (9.2.3.24.1 is for messages of 2+ parts) */
        if (max_parts < 1) {
            return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "concat: no room for 1 part");
        }
        struct ota_sms_part *p = &parts[0];
        size_t pos = 0;

        memset(p, 0, sizeof(*p));
        if (h_single) {
            p->ud[pos++] = (uint8_t)(h_single - 1);
            pos += put_ies(&p->ud[pos], o->every, o->n_every);
            pos += put_ies(&p->ud[pos], o->first, o->n_first);
            p->udhi = true;
        }
        if (len) {
            memcpy(&p->ud[pos], payload, len);
        }
        p->len = (uint8_t)(pos + len);
        return 1;
    }

    h_first = 1 + every + cie + first;
    h_later = 1 + every + cie;
    if (h_first >= OTA_SMS_UD_MAX) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "concat: first-part UDH %zu octets leaves no payload room", h_first);
    }
    size_t room_first = OTA_SMS_UD_MAX - h_first, room_later = OTA_SMS_UD_MAX - h_later;

    /* bound len first so the part count below cannot overflow */
    if (len > (size_t)OTA_CONCAT_MAX_PARTS * OTA_SMS_UD_MAX) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "concat: payload %zu octets exceeds %u parts", len, OTA_CONCAT_MAX_PARTS);
    }
    n_parts = 1;
    if (len > room_first) {
        n_parts += (len - room_first + room_later - 1) / room_later;
    }
    if (n_parts > OTA_CONCAT_MAX_PARTS) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "concat: payload %zu octets needs %zu parts, max %u", len, n_parts,
                        OTA_CONCAT_MAX_PARTS);
    }
    if (n_parts > max_parts) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "concat: %zu parts, room for %zu", n_parts,
                        max_parts);
    }

    size_t off = 0;
    for (size_t i = 0; i < n_parts; i++) {
        struct ota_sms_part *p = &parts[i];
        size_t pos = 0, room = i == 0 ? room_first : room_later;
        size_t chunk = len - off < room ? len - off : room;

        memset(p, 0, sizeof(*p));
        p->ud[pos++] = (uint8_t)((i == 0 ? h_first : h_later) - 1);
        pos += put_ies(&p->ud[pos], o->every, o->n_every);
        if (o->ref16) {
            p->ud[pos++] = OTA_IEI_CONCAT16;
            p->ud[pos++] = 4;
            ota_put_u16(&p->ud[pos], o->ref);
            pos += 2;
        } else {
            p->ud[pos++] = OTA_IEI_CONCAT8;
            p->ud[pos++] = 3;
            p->ud[pos++] = (uint8_t)o->ref;
        }
        p->ud[pos++] = (uint8_t)n_parts;
        p->ud[pos++] = (uint8_t)(i + 1);
        /* TS 31.115 4.2: only the first segment carries the CPI */
        if (i == 0) {
            pos += put_ies(&p->ud[pos], o->first, o->n_first);
        }
        memcpy(&p->ud[pos], payload + off, chunk);
        p->len = (uint8_t)(pos + chunk);
        p->udhi = true;
        off += chunk;
    }
    return (int)n_parts;
}

/* ---- reassembly -------------------------------------------------------- */

struct rset {
    char orig[OTA_REASM_ORIG_MAX + 1];
    bool ref16;
    uint16_t ref;
    uint8_t total;
    uint8_t n_have;
    uint64_t first_ms;
    uint8_t len[OTA_CONCAT_MAX_PARTS];
    uint8_t *ud[OTA_CONCAT_MAX_PARTS]; /* owned copies of each part's UD, by seq - 1 */
};

/*
 * Completed sets are remembered for the timeout (at most REASM_DONE_MAX,
 * oldest dropped first): the network delivers at least once, and a part that
 * comes again after its set completed must be recognised as a duplicate, not
 * open a new set that would later expire as "missing parts". A part with the
 * same reference but other bytes is a new message reusing the reference.
 */
#define REASM_DONE_MAX 16

struct ota_reasm {
    struct ota_reasm_limits lim;
    size_t n_sets;
    size_t n_parts;
    struct rset **sets;                /* lim.max_sets slots, first n_sets used, oldest first */
    struct rset *done[REASM_DONE_MAX]; /* completed sets, oldest first; first_ms = done time */
    size_t n_done;
};

static const char *const reasm_status_names[] = {
    [OTA_REASM_PENDING] = "pending",
    [OTA_REASM_COMPLETE] = "complete",
    [OTA_REASM_SINGLE] = "single",
    [OTA_REASM_DUPLICATE] = "duplicate",
};

const char *ota_reasm_status_name(enum ota_reasm_status st)
{
    return ota_enum_name(reasm_status_names, OTA_ARRAY_SIZE(reasm_status_names), st);
}

void ota_reasm_msg_fini(struct ota_reasm_msg *msg)
{
    if (!msg) {
        return;
    }
    free(msg->ud);
    memset(msg, 0, sizeof(*msg));
}

int ota_reasm_new(struct ota_reasm **out, const struct ota_reasm_limits *lim, struct ota_err *err)
{
    struct ota_reasm *r;

    if (!out || !lim) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "reasm: NULL argument");
    }
    if (lim->max_sets == 0 || lim->max_parts == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "reasm: max_sets %zu, max_parts %zu",
                        lim->max_sets, lim->max_parts);
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "reasm: out of memory");
    }
    r->sets = calloc(lim->max_sets, sizeof(*r->sets));
    if (!r->sets) {
        free(r);
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "reasm: out of memory for %zu sets",
                        lim->max_sets);
    }
    r->lim = *lim;
    *out = r;
    return 0;
}

static void rset_free(struct rset *s)
{
    for (size_t i = 0; i < OTA_CONCAT_MAX_PARTS; i++) {
        free(s->ud[i]);
    }
    free(s);
}

/* Remove set i (order of the others kept) and account for its parts. */
static void drop_set(struct ota_reasm *r, size_t i)
{
    struct rset *s = r->sets[i];

    r->n_parts -= s->n_have;
    rset_free(s);
    memmove(&r->sets[i], &r->sets[i + 1], (r->n_sets - i - 1) * sizeof(*r->sets));
    r->n_sets--;
    r->sets[r->n_sets] = NULL;
}

static void drop_done(struct ota_reasm *r, size_t i)
{
    rset_free(r->done[i]);
    memmove(&r->done[i], &r->done[i + 1], (r->n_done - i - 1) * sizeof(*r->done));
    r->n_done--;
    r->done[r->n_done] = NULL;
}

/* Remember a completed set (it owns copies of every part). Cannot fail. */
static void remember_done(struct ota_reasm *r, struct rset *s, uint64_t now_ms)
{
    for (size_t i = 0; i < r->n_done; i++) {
        if (r->done[i]->ref16 == s->ref16 && r->done[i]->ref == s->ref &&
            !strcmp(r->done[i]->orig, s->orig)) {
            drop_done(r, i);
            break;
        }
    }
    if (r->n_done == REASM_DONE_MAX) {
        drop_done(r, 0);
    }
    s->first_ms = now_ms;
    r->done[r->n_done++] = s;
}

void ota_reasm_free(struct ota_reasm *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->n_done; i++) {
        rset_free(r->done[i]);
    }
    for (size_t i = 0; i < r->n_sets; i++) {
        rset_free(r->sets[i]);
    }
    free(r->sets);
    free(r);
}

size_t ota_reasm_n_sets(const struct ota_reasm *r)
{
    return r ? r->n_sets : 0;
}

size_t ota_reasm_n_parts(const struct ota_reasm *r)
{
    return r ? r->n_parts : 0;
}

/* Copy a NUL-terminated originator whose length the caller checked. */
static void copy_orig(char dst[OTA_REASM_ORIG_MAX + 1], const char *src)
{
    memcpy(dst, src, strnlen(src, OTA_REASM_ORIG_MAX) + 1);
    dst[OTA_REASM_ORIG_MAX] = '\0';
}

/* Point m->udh at the UDH (hdr_len octets incl. UDHL, or 0) and payload of m->ud. */
static void msg_describe(struct ota_reasm_msg *m, size_t hdr_len)
{
    memset(&m->udh, 0, sizeof(m->udh));
    if (hdr_len) {
        size_t pos = 1;

        m->udh.udhl = m->ud[0];
        while (pos < hdr_len && m->udh.n_ies < OTA_UDH_MAX_IES) {
            struct ota_udh_ie *ie = &m->udh.ies[m->udh.n_ies++];

            ie->iei = m->ud[pos];
            ie->len = m->ud[pos + 1];
            ie->val = ie->len ? &m->ud[pos + 2] : NULL;
            pos += 2 + (size_t)ie->len;
        }
    }
    m->udh.payload = m->ud + hdr_len;
    m->udh.payload_len = m->ud_len - hdr_len;
}

/*
 * Build the complete message from parts[0..total-1] (each a UD that parses
 * with a concat IE). The UDH kept is part 1's minus its concat IE.
 */
static int assemble(const char *orig, const uint8_t *const *ud, const uint8_t *len, uint8_t total,
                    struct ota_reasm_msg *msg, struct ota_err *err)
{
    struct ota_udh u1, u;
    struct ota_udh_ie keep[OTA_UDH_MAX_IES];
    size_t n_keep = 0, hdr_len = 0, size, pos;
    uint8_t *buf;

    if (ota_udh_parse(ud[0], len[0], &u1, err)) {
        return -EBADMSG; /* not reached: parts are checked before they are held */
    }
    for (size_t i = 0; i < u1.n_ies; i++) {
        if (u1.ies[i].iei != OTA_IEI_CONCAT8 && u1.ies[i].iei != OTA_IEI_CONCAT16) {
            keep[n_keep++] = u1.ies[i];
        }
    }
    if (n_keep) {
        hdr_len = 1 + ies_octets(keep, n_keep);
    }
    size = hdr_len + u1.payload_len;
    for (size_t i = 1; i < total; i++) {
        if (ota_udh_parse(ud[i], len[i], &u, err)) {
            return -EBADMSG;
        }
        size += u.payload_len;
    }
    buf = malloc(size ? size : 1);
    if (!buf) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "reasm: out of memory for %zu octets", size);
    }
    pos = 0;
    if (hdr_len) {
        buf[pos++] = (uint8_t)(hdr_len - 1);
        pos += put_ies(&buf[pos], keep, n_keep);
    }
    for (size_t i = 0; i < total; i++) {
        /* parsed successfully above */
        if (ota_udh_parse(ud[i], len[i], &u, NULL)) {
            free(buf);
            return -EBADMSG;
        }
        if (u.payload_len) {
            memcpy(&buf[pos], u.payload, u.payload_len);
        }
        pos += u.payload_len;
    }

    memset(msg, 0, sizeof(*msg));
    copy_orig(msg->orig, orig);
    msg->ud = buf;
    msg->ud_len = size;
    msg->udhi = hdr_len != 0;
    msg->n_parts = total;
    msg_describe(msg, hdr_len);
    return 0;
}

/* A part that is its own message (no UDH, or no concat IE): copy it out. */
static int pass_through(const char *orig, const uint8_t *ud, size_t len, bool udhi,
                        struct ota_reasm_msg *msg, struct ota_err *err)
{
    uint8_t *buf = malloc(len ? len : 1);

    if (!buf) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "reasm: out of memory");
    }
    if (len) {
        memcpy(buf, ud, len);
    }
    memset(msg, 0, sizeof(*msg));
    copy_orig(msg->orig, orig);
    msg->ud = buf;
    msg->ud_len = len;
    msg->udhi = udhi;
    msg->n_parts = 1;
    msg_describe(msg, udhi ? 1 + (size_t)buf[0] : 0);
    return 0;
}

int ota_reasm_add(struct ota_reasm *r, const char *orig, const uint8_t *ud, size_t len, bool udhi,
                  uint64_t now_ms, enum ota_reasm_status *st, struct ota_reasm_msg *msg,
                  struct ota_err *err)
{
    struct ota_udh u;
    struct ota_udh_info in;
    struct rset *s = NULL;
    size_t si = 0;
    int rc;

    if (!r || !orig || (len && !ud) || !st || !msg) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "reasm: NULL argument");
    }
    if (strnlen(orig, OTA_REASM_ORIG_MAX + 1) > OTA_REASM_ORIG_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "reasm: originator longer than %u",
                        OTA_REASM_ORIG_MAX);
    }
    if (len > OTA_SMS_UD_MAX) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "reasm: UD %zu octets, max %u", len,
                        OTA_SMS_UD_MAX);
    }
    if (!udhi) {
        rc = pass_through(orig, ud, len, false, msg, err);
        if (rc) {
            return rc;
        }
        *st = OTA_REASM_SINGLE;
        return 0;
    }
    rc = ota_udh_parse_info(ud, len, &u, &in, err);
    if (rc) {
        return rc;
    }
    if (!in.has_concat) {
        rc = pass_through(orig, ud, len, true, msg, err);
        if (rc) {
            return rc;
        }
        *st = OTA_REASM_SINGLE;
        return 0;
    }

    for (si = 0; si < r->n_sets; si++) {
        struct rset *c = r->sets[si];

        if (c->ref16 == in.concat16 && c->ref == in.ref && !strcmp(c->orig, orig)) {
            s = c;
            break;
        }
    }

    if (!s) {
        for (size_t di = 0; di < r->n_done; di++) {
            struct rset *d = r->done[di];
            if (d->ref16 != in.concat16 || d->ref != in.ref || strcmp(d->orig, orig)) {
                continue;
            }
            if (d->total == in.total && d->ud[in.seq - 1] && d->len[in.seq - 1] == len &&
                now_ms >= d->first_ms && now_ms - d->first_ms < r->lim.timeout_ms &&
                !memcmp(d->ud[in.seq - 1], ud, len)) {
                *st = OTA_REASM_DUPLICATE; /* a late copy of a part already delivered */
                return 0;
            }
            drop_done(r, di); /* the reference is reused by a new message */
            break;
        }
    }

    if (s) {
        if (s->total != in.total) {
            return ota_fail(err, -EBADMSG, OTA_ERR_STATE,
                            "reasm: orig %s ref %u part %u says total %u, set has %u", orig, in.ref,
                            in.seq, in.total, s->total);
        }
        if (s->ud[in.seq - 1]) {
            if (s->len[in.seq - 1] != len || memcmp(s->ud[in.seq - 1], ud, len)) {
                return ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE,
                                "reasm: orig %s ref %u seq %u repeated with other "
                                "content (%zu octets, held %u)",
                                orig, in.ref, in.seq, len, s->len[in.seq - 1]);
            }
            *st = OTA_REASM_DUPLICATE;
            return 0;
        }
    }

    if ((s ? s->n_have : 0) + 1u == in.total) {
        /* this part completes the set: assemble without holding it */
        const uint8_t *uds[OTA_CONCAT_MAX_PARTS];
        uint8_t lens[OTA_CONCAT_MAX_PARTS];

        for (size_t i = 0; i < in.total; i++) {
            uds[i] = s ? s->ud[i] : NULL;
            lens[i] = s ? s->len[i] : 0;
        }
        uds[in.seq - 1] = ud;
        lens[in.seq - 1] = (uint8_t)len;
        rc = assemble(orig, uds, lens, in.total, msg, err);
        if (rc) {
            return rc;
        }
        if (s) {
            /* keep it (with the completing part) to recognise late copies */
            uint8_t *copy = malloc(len ? len : 1);
            r->sets[si] = NULL;
            memmove(&r->sets[si], &r->sets[si + 1], (r->n_sets - si - 1) * sizeof(*r->sets));
            r->n_sets--;
            r->sets[r->n_sets] = NULL;
            r->n_parts -= s->n_have;
            if (copy) {
                memcpy(copy, ud, len);
                s->ud[in.seq - 1] = copy;
                s->len[in.seq - 1] = (uint8_t)len;
                remember_done(r, s, now_ms);
            } else {
                rset_free(s); /* no memory to remember it: duplicates then open a new set */
            }
        }
        *st = OTA_REASM_COMPLETE;
        return 0;
    }

    if (!s && r->n_sets >= r->lim.max_sets) {
        return ota_fail(err, -ENOBUFS, OTA_ERR_LIMIT,
                        "reasm: %zu incomplete sets held, max %zu; orig %s ref %u refused",
                        r->n_sets, r->lim.max_sets, orig, in.ref);
    }
    if (r->n_parts >= r->lim.max_parts) {
        return ota_fail(err, -ENOBUFS, OTA_ERR_LIMIT,
                        "reasm: %zu parts held, max %zu; orig %s ref %u seq %u refused", r->n_parts,
                        r->lim.max_parts, orig, in.ref, in.seq);
    }

    uint8_t *copy = malloc(len);
    if (!copy) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "reasm: out of memory");
    }
    memcpy(copy, ud, len);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) {
            free(copy);
            return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "reasm: out of memory");
        }
        copy_orig(s->orig, orig);
        s->ref16 = in.concat16;
        s->ref = in.ref;
        s->total = in.total;
        s->first_ms = now_ms;
        r->sets[r->n_sets++] = s;
    }
    s->ud[in.seq - 1] = copy;
    s->len[in.seq - 1] = (uint8_t)len;
    s->n_have++;
    r->n_parts++;
    *st = OTA_REASM_PENDING;
    return 0;
}

size_t ota_reasm_expire(struct ota_reasm *r, uint64_t now_ms,
                        void (*cb)(const struct ota_reasm_expired *e, void *arg), void *arg)
{
    size_t n = 0, i = 0;

    if (!r) {
        return 0;
    }
    while (r->n_done &&
           (now_ms < r->done[0]->first_ms || now_ms - r->done[0]->first_ms >= r->lim.timeout_ms)) {
        drop_done(r, 0); /* forgotten silently: nothing was missing */
    }
    while (i < r->n_sets) {
        struct rset *s = r->sets[i];

        /* a clock that went backwards makes the age 0, not huge */
        if (now_ms < s->first_ms || now_ms - s->first_ms < r->lim.timeout_ms) {
            i++;
            continue;
        }
        if (cb) {
            struct ota_reasm_expired e;

            memset(&e, 0, sizeof(e));
            e.orig = s->orig;
            e.ref16 = s->ref16;
            e.ref = s->ref;
            e.total = s->total;
            e.first_ms = s->first_ms;
            for (size_t k = 0; k < s->total; k++) {
                if (!s->ud[k]) {
                    e.missing[e.n_missing++] = (uint8_t)(k + 1);
                }
            }
            cb(&e, arg);
        }
        drop_set(r, i);
        n++;
    }
    return n;
}
