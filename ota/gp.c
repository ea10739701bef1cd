/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GlobalPlatform Card Specification 2.2 clause 11 command builders: SELECT
 * (11.9), INSTALL in all roles (11.5), LOAD blocks (11.6), DELETE (11.2),
 * SET STATUS (11.10), PUT KEY (11.8; AES keys per Amendment D), STORE DATA
 * (11.11), GET STATUS (11.4), GET DATA (11.3), INITIALIZE UPDATE and
 * EXTERNAL AUTHENTICATE (Annex E.5), and the life-cycle names of 11.1.1.
 * Sub-clause numbers are from memory of GP 2.2 [unverified numbering].
 * Each data field is assembled in a stack buffer of 255 octets and checked
 * in full before the APDU is written, so nothing reaches dst on failure.
 */
#include "ota/ota_gp.h"

#include <string.h>

#include <openssl/crypto.h>

/* ---- names ---- */

static const char *const lcs_kind_names[OTA_GP_LCS__COUNT] = {
    [OTA_GP_LCS_CARD] = "card",
    [OTA_GP_LCS_APP] = "application",
    [OTA_GP_LCS_SD] = "security-domain",
    [OTA_GP_LCS_ELF] = "load-file",
};

const char *ota_gp_lcs_kind_name(enum ota_gp_lcs_kind kind)
{
    return ota_enum_name(lcs_kind_names, OTA_GP_LCS__COUNT, kind);
}

const char *ota_gp_lcs_name(enum ota_gp_lcs_kind kind, uint8_t lcs)
{
    switch (kind) {
    case OTA_GP_LCS_CARD:
        switch (lcs) {
        case OTA_GP_CARD_OP_READY:
            return "OP_READY";
        case OTA_GP_CARD_INITIALIZED:
            return "INITIALIZED";
        case OTA_GP_CARD_SECURED:
            return "SECURED";
        case OTA_GP_CARD_LOCKED:
            return "CARD_LOCKED";
        case OTA_GP_CARD_TERMINATED:
            return "TERMINATED";
        default:
            return "unknown";
        }
    case OTA_GP_LCS_APP:
    case OTA_GP_LCS_SD:
        /* 11.1.1: LOCKED is 1xxxxx11, whatever state was below it. */
        if ((lcs & (OTA_GP_LOCKED_BIT | OTA_GP_APP_INSTALLED)) ==
            (OTA_GP_LOCKED_BIT | OTA_GP_APP_INSTALLED)) {
            return "LOCKED";
        }
        if (lcs == OTA_GP_APP_INSTALLED) {
            return "INSTALLED";
        }
        if (lcs == OTA_GP_APP_SELECTABLE) {
            return "SELECTABLE";
        }
        if (kind == OTA_GP_LCS_SD && lcs == OTA_GP_SD_PERSONALIZED) {
            return "PERSONALIZED";
        }
        /* Applications may use b4..b7 for their own states over SELECTABLE. */
        if (kind == OTA_GP_LCS_APP && (lcs & 0x87) == 0x07) {
            return "APP_SPECIFIC";
        }
        return "unknown";
    case OTA_GP_LCS_ELF:
        return lcs == OTA_GP_ELF_LOADED ? "LOADED" : "unknown";
    default:
        return "unknown";
    }
}

const char *ota_gp_install_kind_name(enum ota_gp_install_kind kind)
{
    switch (kind) {
    case OTA_GP_INSTALL_FOR_LOAD:
        return "for-load";
    case OTA_GP_INSTALL_FOR_INSTALL:
        return "for-install";
    case OTA_GP_INSTALL_FOR_MAKE_SELECTABLE:
        return "for-make-selectable";
    case OTA_GP_INSTALL_FOR_INSTALL_SELECTABLE:
        return "for-install-and-make-selectable";
    case OTA_GP_INSTALL_FOR_EXTRADITION:
        return "for-extradition";
    case OTA_GP_INSTALL_FOR_PERSONALIZATION:
        return "for-personalization";
    case OTA_GP_INSTALL_FOR_REGISTRY_UPDATE:
        return "for-registry-update";
    }
    return "unknown";
}

/* ---- shared helpers ---- */

/* Data field writer with a sticky overflow flag (STYLE 4). */
struct wr {
    uint8_t b[OTA_APDU_MAX_DATA];
    size_t len;
    bool over;
};

static void wr_bytes(struct wr *w, const uint8_t *p, size_t n)
{
    if (w->over || n > sizeof(w->b) - w->len) {
        w->over = true;
        return;
    }
    if (n) {
        memcpy(w->b + w->len, p, n);
    }
    w->len += n;
}

static void wr_u8(struct wr *w, uint8_t v)
{
    wr_bytes(w, &v, 1);
}

/* A length octet and the field; the callers have limited n to 255. */
static void wr_lv(struct wr *w, const uint8_t *p, size_t n)
{
    if (n > 0xFF) {
        w->over = true;
        return;
    }
    wr_u8(w, (uint8_t)n);
    wr_bytes(w, p, n);
}

static void wr_clean(struct wr *w)
{
    OPENSSL_cleanse(w->b, sizeof(w->b));
}

static int aid_check(const char *cmd, const char *field, const uint8_t *aid, size_t len,
                     bool optional, struct ota_err *err)
{
    if (len == 0 && optional) {
        return 0;
    }
    if (len < OTA_GP_AID_MIN || len > OTA_GP_AID_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "%s: %s of %zu octets, AIDs have %d..%d", cmd,
                        field, len, OTA_GP_AID_MIN, OTA_GP_AID_MAX);
    }
    if (!aid) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "%s: %s is NULL", cmd, field);
    }
    return 0;
}

/* Build one APDU from a finished data field. */
static int emit(uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2, const struct wr *w, bool le,
                const char *cmd, uint8_t *dst, size_t cap, struct ota_err *err)
{
    struct ota_apdu a = {
        .cla = cla,
        .ins = ins,
        .p1 = p1,
        .p2 = p2,
        .has_le = le,
        .le = 0x00,
    };

    if (w && w->over) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "%s: data field over %d octets", cmd,
                        OTA_APDU_MAX_DATA);
    }
    if (w && w->len) {
        a.lc = (uint8_t)w->len;
        a.data = w->b;
    }
    return ota_apdu_build(&a, dst, cap, err);
}

/* ---- SELECT ---- */

int ota_gp_select(const uint8_t *aid, size_t aid_len, uint8_t *dst, size_t cap, struct ota_err *err)
{
    struct wr w = {.len = 0};
    int rc = aid_check("select", "AID", aid, aid_len, false, err);

    if (rc) {
        return rc;
    }
    wr_bytes(&w, aid, aid_len);
    return emit(OTA_GP_CLA_ISO, OTA_GP_INS_SELECT, 0x04, 0x00, &w, true, "select", dst, cap, err);
}

/* ---- INSTALL ---- */

enum field_rule {
    F_NONE,     /* must be empty */
    F_AID,      /* 5..16 */
    F_AID_OPT,  /* 0 or 5..16 */
    F_PRIV,     /* 1 or 3 */
    F_PRIV_OPT, /* 0, 1 or 3 */
    F_ANY,      /* any length */
};

struct field {
    const char *name;
    const uint8_t *p;
    size_t len;
    enum field_rule rule;
};

static int field_check(const struct field *f, struct ota_err *err)
{
    if (f->len && !f->p) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "install: %s length %zu, NULL pointer", f->name,
                        f->len);
    }
    switch (f->rule) {
    case F_NONE:
        if (f->len) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                            "install: %s given (%zu octets) but this role has none", f->name,
                            f->len);
        }
        return 0;
    case F_AID:
        return aid_check("install", f->name, f->p, f->len, false, err);
    case F_AID_OPT:
        return aid_check("install", f->name, f->p, f->len, true, err);
    case F_PRIV_OPT:
        if (f->len == 0) {
            return 0;
        }
        /* fall through */
    case F_PRIV:
        /* GP 2.2 11.1.2: one privilege octet, three since 2.2. */
        if (f->len != 1 && f->len != 3) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                            "install: privileges of %zu octets, expected 1 or 3", f->len);
        }
        return 0;
    case F_ANY:
        if (f->len > 0xFF) {
            return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "install: %s of %zu octets", f->name,
                            f->len);
        }
        return 0;
    }
    return 0;
}

/* Which INSTALL fields each role takes: elf, mod, app, sd, hash, priv, params, token. */
static const struct install_rules {
    enum ota_gp_install_kind kind;
    enum field_rule r[8];
} install_rules[] = {
    {OTA_GP_INSTALL_FOR_LOAD, {F_AID, F_NONE, F_NONE, F_AID_OPT, F_ANY, F_NONE, F_ANY, F_ANY}},
    {OTA_GP_INSTALL_FOR_INSTALL, {F_AID, F_AID, F_AID, F_NONE, F_NONE, F_PRIV, F_ANY, F_ANY}},
    {OTA_GP_INSTALL_FOR_INSTALL_SELECTABLE,
     {F_AID, F_AID, F_AID, F_NONE, F_NONE, F_PRIV, F_ANY, F_ANY}},
    {OTA_GP_INSTALL_FOR_MAKE_SELECTABLE,
     {F_NONE, F_NONE, F_AID, F_NONE, F_NONE, F_PRIV, F_ANY, F_ANY}},
    {OTA_GP_INSTALL_FOR_EXTRADITION, {F_NONE, F_NONE, F_AID, F_AID, F_NONE, F_NONE, F_ANY, F_ANY}},
    {OTA_GP_INSTALL_FOR_PERSONALIZATION,
     {F_NONE, F_NONE, F_AID, F_NONE, F_NONE, F_NONE, F_NONE, F_NONE}},
    {OTA_GP_INSTALL_FOR_REGISTRY_UPDATE,
     {F_NONE, F_NONE, F_AID_OPT, F_AID_OPT, F_NONE, F_PRIV_OPT, F_ANY, F_ANY}},
};

int ota_gp_install(const struct ota_gp_install *in, uint8_t *dst, size_t cap, struct ota_err *err)
{
    const enum field_rule *r = NULL;
    struct wr w = {.len = 0};
    int rc;

    for (size_t i = 0; i < OTA_ARRAY_SIZE(install_rules); i++) {
        if (install_rules[i].kind == in->kind) {
            r = install_rules[i].r;
        }
    }
    if (!r) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "install: unknown role P1 %02X",
                        (unsigned)in->kind);
    }
    const struct field f[8] = {
        {"ELF AID", in->elf_aid, in->elf_aid_len, r[0]},
        {"module AID", in->mod_aid, in->mod_aid_len, r[1]},
        {"application AID", in->app_aid, in->app_aid_len, r[2]},
        {"SD AID", in->sd_aid, in->sd_aid_len, r[3]},
        {"hash", in->hash, in->hash_len, r[4]},
        {"privileges", in->priv, in->priv_len, r[5]},
        {"parameters", in->params, in->params_len, r[6]},
        {"token", in->token, in->token_len, r[7]},
    };
    for (size_t i = 0; i < OTA_ARRAY_SIZE(f); i++) {
        rc = field_check(&f[i], err);
        if (rc) {
            return rc;
        }
    }
    /* GP 2.2 11.5.2.3: the field order per role. */
    switch (in->kind) {
    case OTA_GP_INSTALL_FOR_LOAD:
        wr_lv(&w, in->elf_aid, in->elf_aid_len);
        wr_lv(&w, in->sd_aid, in->sd_aid_len);
        wr_lv(&w, in->hash, in->hash_len);
        break;
    case OTA_GP_INSTALL_FOR_INSTALL:
    case OTA_GP_INSTALL_FOR_INSTALL_SELECTABLE:
        wr_lv(&w, in->elf_aid, in->elf_aid_len);
        wr_lv(&w, in->mod_aid, in->mod_aid_len);
        wr_lv(&w, in->app_aid, in->app_aid_len);
        wr_lv(&w, in->priv, in->priv_len);
        break;
    case OTA_GP_INSTALL_FOR_MAKE_SELECTABLE:
        wr_u8(&w, 0x00);
        wr_u8(&w, 0x00);
        wr_lv(&w, in->app_aid, in->app_aid_len);
        wr_lv(&w, in->priv, in->priv_len);
        break;
    case OTA_GP_INSTALL_FOR_EXTRADITION:
        wr_lv(&w, in->sd_aid, in->sd_aid_len);
        wr_u8(&w, 0x00);
        wr_lv(&w, in->app_aid, in->app_aid_len);
        wr_u8(&w, 0x00);
        break;
    case OTA_GP_INSTALL_FOR_PERSONALIZATION:
        wr_u8(&w, 0x00);
        wr_u8(&w, 0x00);
        wr_lv(&w, in->app_aid, in->app_aid_len);
        wr_u8(&w, 0x00);
        break;
    case OTA_GP_INSTALL_FOR_REGISTRY_UPDATE:
        wr_lv(&w, in->sd_aid, in->sd_aid_len);
        wr_u8(&w, 0x00);
        wr_lv(&w, in->app_aid, in->app_aid_len);
        wr_lv(&w, in->priv, in->priv_len);
        break;
    }
    wr_lv(&w, in->params, in->params_len);
    wr_lv(&w, in->token, in->token_len);
    return emit(OTA_GP_CLA, OTA_GP_INS_INSTALL, (uint8_t)in->kind, 0x00, &w, false, "install", dst,
                cap, err);
}

static void wr_space(struct wr *w, uint8_t tag, uint32_t v)
{
    if (v == 0) {
        return;
    }
    wr_u8(w, tag);
    if (v <= 0xFFFF) {
        wr_u8(w, 2);
        wr_u8(w, (uint8_t)(v >> 8));
        wr_u8(w, (uint8_t)v);
    } else {
        wr_u8(w, 4);
        wr_u8(w, (uint8_t)(v >> 24));
        wr_u8(w, (uint8_t)(v >> 16));
        wr_u8(w, (uint8_t)(v >> 8));
        wr_u8(w, (uint8_t)v);
    }
}

int ota_gp_system_params(const struct ota_gp_space *s, uint8_t *dst, size_t cap,
                         struct ota_err *err)
{
    struct wr w = {.len = 0};

    if (!s->nv_code && !s->v_data && !s->nv_data) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "system params: all limits 0");
    }
    wr_space(&w, OTA_GP_TAG_NV_CODE_LIMIT, s->nv_code);
    wr_space(&w, OTA_GP_TAG_V_DATA_LIMIT, s->v_data);
    wr_space(&w, OTA_GP_TAG_NV_DATA_LIMIT, s->nv_data);
    return ota_rapdu_tlv_put(OTA_GP_TAG_SYSTEM_PARAMS, w.b, w.len, dst, cap, err);
}

int ota_gp_install_params(const uint8_t *app, size_t app_len, const uint8_t *sys, size_t sys_len,
                          uint8_t *dst, size_t cap, struct ota_err *err)
{
    size_t hl = ota_rapdu_tlv_hdr_len(OTA_GP_TAG_APP_PARAMS, app_len);
    int rc;

    if ((app_len && !app) || (sys_len && !sys)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "install params: NULL with a length");
    }
    if (app_len > 0xFF || sys_len > 0xFF) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "install params: %zu app / %zu system octets, at most 255 each", app_len,
                        sys_len);
    }
    if (hl + app_len + sys_len > cap) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "install params: %zu octets, %zu available",
                        hl + app_len + sys_len, cap);
    }
    /* sys goes in first: moving app could overwrite it if the caller built both in dst. */
    if (sys_len) {
        memmove(dst + hl + app_len, sys, sys_len);
    }
    rc = ota_rapdu_tlv_put(OTA_GP_TAG_APP_PARAMS, app, app_len, dst, cap, err);
    if (rc < 0) {
        return rc;
    }
    return rc + (int)sys_len;
}

/* ---- LOAD ---- */

/* Geometry of the LOAD stream [dap] C4 len file. */
struct load_geo {
    uint8_t hdr[4];
    size_t hdr_len;
    size_t total;
    size_t n_blocks;
};

static int load_geo(const struct ota_gp_load *l, struct load_geo *g, struct ota_err *err)
{
    if (l->file_len == 0 || !l->file) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "load: empty load file");
    }
    if (l->dap_len && !l->dap) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "load: DAP length %zu, NULL pointer",
                        l->dap_len);
    }
    if (l->block_len == 0 || l->block_len > OTA_APDU_MAX_DATA) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "load: block size %zu, expected 1..%d",
                        l->block_len, OTA_APDU_MAX_DATA);
    }
    if (l->file_len > OTA_RAPDU_TLV_MAX_LEN || l->dap_len > OTA_RAPDU_TLV_MAX_LEN) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "load: file of %zu / DAP of %zu octets, at most %u each", l->file_len,
                        l->dap_len, OTA_RAPDU_TLV_MAX_LEN);
    }
    /* GP 2.2 11.6.2.3: the load file data block is C4 with a BER length. */
    g->hdr_len = ota_rapdu_tlv_hdr_len(OTA_GP_TAG_LOAD_FILE, l->file_len);
    g->hdr[0] = OTA_GP_TAG_LOAD_FILE;
    if (l->file_len < 0x80) {
        g->hdr[1] = (uint8_t)l->file_len;
    } else if (l->file_len <= 0xFF) {
        g->hdr[1] = 0x81;
        g->hdr[2] = (uint8_t)l->file_len;
    } else {
        g->hdr[1] = 0x82;
        ota_put_u16(g->hdr + 2, (uint16_t)l->file_len);
    }
    g->total = l->dap_len + g->hdr_len + l->file_len;
    g->n_blocks = (g->total + l->block_len - 1) / l->block_len;
    /* P2 numbers blocks 00..FF. */
    if (g->n_blocks > OTA_GP_LOAD_MAX_BLOCKS) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "load: %zu octets in blocks of %zu make %zu blocks, at most %d", g->total,
                        l->block_len, g->n_blocks, OTA_GP_LOAD_MAX_BLOCKS);
    }
    return 0;
}

int ota_gp_load_count(const struct ota_gp_load *l, size_t *n_blocks, struct ota_err *err)
{
    struct load_geo g = {0};
    int rc = load_geo(l, &g, err);

    if (rc) {
        return rc;
    }
    *n_blocks = g.n_blocks;
    return 0;
}

/* Copy part of one stream segment [seg_off, seg_off + seg_len) that falls in the block. */
static void seg_copy(struct wr *w, const uint8_t *seg, size_t seg_off, size_t seg_len, size_t from,
                     size_t to)
{
    size_t a = from > seg_off ? from : seg_off;
    size_t b = to < seg_off + seg_len ? to : seg_off + seg_len;

    if (a < b) {
        wr_bytes(w, seg + (a - seg_off), b - a);
    }
}

int ota_gp_load_block(const struct ota_gp_load *l, size_t i, uint8_t *dst, size_t cap,
                      struct ota_err *err)
{
    struct load_geo g = {0};
    struct wr w = {.len = 0};
    size_t from, to;
    int rc = load_geo(l, &g, err);

    if (rc) {
        return rc;
    }
    if (i >= g.n_blocks) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "load: block %zu of %zu", i, g.n_blocks);
    }
    from = i * l->block_len;
    to = from + l->block_len < g.total ? from + l->block_len : g.total;
    seg_copy(&w, l->dap, 0, l->dap_len, from, to);
    seg_copy(&w, g.hdr, l->dap_len, g.hdr_len, from, to);
    seg_copy(&w, l->file, l->dap_len + g.hdr_len, l->file_len, from, to);
    return emit(OTA_GP_CLA, OTA_GP_INS_LOAD, i + 1 == g.n_blocks ? 0x80 : 0x00, (uint8_t)i, &w,
                false, "load", dst, cap, err);
}

/* ---- DELETE ---- */

int ota_gp_delete(const uint8_t *aid, size_t aid_len, bool related, const uint8_t *extra,
                  size_t extra_len, uint8_t *dst, size_t cap, struct ota_err *err)
{
    struct wr w = {.len = 0};
    int rc = aid_check("delete", "AID", aid, aid_len, false, err);

    if (rc) {
        return rc;
    }
    if (extra_len && !extra) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "delete: extra length %zu, NULL pointer",
                        extra_len);
    }
    wr_u8(&w, OTA_GP_TAG_AID);
    wr_lv(&w, aid, aid_len);
    wr_bytes(&w, extra, extra_len);
    /* GP 2.2 11.2.2.2: P2 b8 = delete the object and its related objects. */
    return emit(OTA_GP_CLA, OTA_GP_INS_DELETE, 0x00, related ? 0x80 : 0x00, &w, true, "delete", dst,
                cap, err);
}

/* ---- SET STATUS ---- */

int ota_gp_set_status(uint8_t scope, uint8_t state, const uint8_t *aid, size_t aid_len,
                      uint8_t *dst, size_t cap, struct ota_err *err)
{
    struct wr w = {.len = 0};
    int rc;

    switch (scope) {
    case OTA_GP_STATUS_SCOPE_ISD:
        if (aid_len) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                            "set status: card scope takes no AID (%zu octets given)", aid_len);
        }
        break;
    case OTA_GP_STATUS_SCOPE_APP:
    case OTA_GP_STATUS_SCOPE_SD_APPS:
        rc = aid_check("set status", "AID", aid, aid_len, false, err);
        if (rc) {
            return rc;
        }
        wr_bytes(&w, aid, aid_len);
        break;
    default:
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "set status: scope P1 %02X, expected 80, 40 or 60", scope);
    }
    return emit(OTA_GP_CLA, OTA_GP_INS_SET_STATUS, scope, state, &w, false, "set status", dst, cap,
                err);
}

/* ---- PUT KEY ---- */

static bool is_des(enum ota_cipher c)
{
    return c == OTA_CIPHER_DES || c == OTA_CIPHER_3DES2 || c == OTA_CIPHER_3DES3;
}

static int put_one_key(struct ota_crypto *c, const struct ota_key *k, size_t i,
                       const struct ota_key *dek, struct wr *w, struct ota_err *err)
{
    uint8_t enc[OTA_KEY_MAX];
    uint8_t kcv[3];
    bool aes = k->cipher == OTA_CIPHER_AES;
    int rc;

    if (aes) {
        if (k->len != 16 && k->len != 32) {
            return ota_fail(err, -EINVAL, OTA_ERR_KEY,
                            "put key: AES key %zu of %u octets, 16 or 32 supported", i, k->len);
        }
        if (dek->cipher != OTA_CIPHER_AES) {
            return ota_fail(err, -EINVAL, OTA_ERR_KEY,
                            "put key: AES key %zu needs an AES DEK, got %s", i,
                            ota_cipher_name(dek->cipher));
        }
    } else if (is_des(k->cipher)) {
        if (k->len != 8 && k->len != 16 && k->len != 24) {
            return ota_fail(err, -EINVAL, OTA_ERR_KEY, "put key: DES key %zu of %u octets", i,
                            k->len);
        }
        if (dek->cipher != OTA_CIPHER_3DES2 && dek->cipher != OTA_CIPHER_3DES3) {
            return ota_fail(err, -EINVAL, OTA_ERR_KEY,
                            "put key: DES key %zu needs a 3DES DEK, got %s", i,
                            ota_cipher_name(dek->cipher));
        }
    } else {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "put key: key %zu has cipher %s", i,
                        ota_cipher_name(k->cipher));
    }
    /* ota.md 4.7: DES keys 3DES-ECB under the DEK; AES keys AES-CBC, IV 0 (Amd D).
     * ota_crypto_wrap: a token key is wrapped inside the token, never read here. */
    rc = ota_crypto_wrap(c, dek, aes ? OTA_MODE_CBC : OTA_MODE_ECB, k, enc, sizeof(enc), err);
    if (rc < 0) {
        goto out;
    }
    rc = ota_crypto_kcv(c, k, kcv, err);
    if (rc) {
        goto out;
    }
    if (aes) {
        wr_u8(w, OTA_GP_KEY_TYPE_AES);
        wr_u8(w, (uint8_t)(1 + k->len));
        wr_u8(w, k->len);
    } else {
        wr_u8(w, OTA_GP_KEY_TYPE_DES);
        wr_u8(w, k->len);
    }
    wr_bytes(w, enc, k->len);
    wr_lv(w, kcv, sizeof(kcv));
out:
    OPENSSL_cleanse(enc, sizeof(enc));
    return rc;
}

int ota_gp_put_key(struct ota_crypto *c, uint8_t old_kvn, uint8_t new_kvn, uint8_t key_id,
                   const struct ota_key *keys, size_t n_keys, const struct ota_key *dek,
                   uint8_t *dst, size_t cap, struct ota_err *err)
{
    struct wr w = {.len = 0};
    int rc;

    if (n_keys == 0 || n_keys > OTA_GP_PUT_KEY_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "put key: %zu keys, expected 1..%d", n_keys,
                        OTA_GP_PUT_KEY_MAX);
    }
    if (key_id > 0x7F) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "put key: key id %02X, b8 of P2 flags multiple keys", key_id);
    }
    wr_u8(&w, new_kvn);
    for (size_t i = 0; i < n_keys; i++) {
        rc = put_one_key(c, &keys[i], i, dek, &w, err);
        if (rc) {
            goto out;
        }
    }
    /* GP 2.2 11.8.2.2: P2 b8 set when the data carries several keys. */
    rc = emit(OTA_GP_CLA, OTA_GP_INS_PUT_KEY, old_kvn,
              (uint8_t)(key_id | (n_keys > 1 ? 0x80 : 0x00)), &w, true, "put key", dst, cap, err);
out:
    wr_clean(&w);
    return rc;
}

/* ---- STORE DATA ---- */

static int store_p1_check(uint8_t p1, struct ota_err *err)
{
    if ((p1 & 0x60) == 0x40) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "store data: P1 %02X encryption b7b6 = 10 is reserved", p1);
    }
    if ((p1 & 0x18) == 0x18) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "store data: P1 %02X structure b5b4 = 11 is reserved", p1);
    }
    if (p1 & 0x07) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "store data: P1 %02X sets RFU b3..b1", p1);
    }
    return 0;
}

int ota_gp_store_data(uint8_t p1, uint8_t block, const uint8_t *data, size_t len, uint8_t *dst,
                      size_t cap, struct ota_err *err)
{
    struct wr w = {.len = 0};
    int rc = store_p1_check(p1, err);

    if (rc) {
        return rc;
    }
    if (len == 0 || !data) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "store data: empty block");
    }
    wr_bytes(&w, data, len);
    rc = emit(OTA_GP_CLA, OTA_GP_INS_STORE_DATA, p1, block, &w, false, "store data", dst, cap, err);
    wr_clean(&w);
    return rc;
}

int ota_gp_store_data_count(size_t len, size_t block_len, size_t *n_blocks, struct ota_err *err)
{
    size_t n = 0;

    if (len == 0 || block_len == 0 || block_len > OTA_APDU_MAX_DATA) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "store data: payload %zu, block size %zu (1..%d)", len, block_len,
                        OTA_APDU_MAX_DATA);
    }
    n = len / block_len + (len % block_len != 0);
    /* P2 numbers blocks 00..FF. */
    if (n > 256) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "store data: %zu octets in blocks of %zu make %zu blocks, at most 256", len,
                        block_len, n);
    }
    *n_blocks = n;
    return 0;
}

int ota_gp_store_data_block(uint8_t flags, const uint8_t *payload, size_t len, size_t block_len,
                            size_t i, uint8_t *dst, size_t cap, struct ota_err *err)
{
    size_t n = 0, from, to;
    int rc = ota_gp_store_data_count(len, block_len, &n, err);

    if (rc) {
        return rc;
    }
    if (flags & OTA_GP_STORE_LAST) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "store data: flags %02X carry b8; the splitter sets it", flags);
    }
    if (i >= n) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "store data: block %zu of %zu", i, n);
    }
    from = i * block_len;
    to = from + block_len < len ? from + block_len : len;
    return ota_gp_store_data((uint8_t)(flags | (i + 1 == n ? OTA_GP_STORE_LAST : 0)), (uint8_t)i,
                             payload + from, to - from, dst, cap, err);
}

/* ---- GET STATUS ---- */

int ota_gp_get_status(uint8_t p1, uint8_t p2, const uint8_t *aid, size_t aid_len,
                      const uint8_t *tag_list, size_t tag_list_len, uint8_t *dst, size_t cap,
                      struct ota_err *err)
{
    struct wr w = {.len = 0};

    if (p1 != OTA_GP_STATUS_ISD && p1 != OTA_GP_STATUS_APPS && p1 != OTA_GP_STATUS_ELF &&
        p1 != OTA_GP_STATUS_ELF_MOD) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "get status: P1 %02X, expected 80, 40, 20 or 10",
                        p1);
    }
    if (p2 & ~(OTA_GP_STATUS_TLV | OTA_GP_STATUS_NEXT)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "get status: P2 %02X sets RFU bits", p2);
    }
    if (aid_len > OTA_GP_AID_MAX || (aid_len && !aid)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "get status: AID filter of %zu octets, at most %d", aid_len,
                        OTA_GP_AID_MAX);
    }
    if (tag_list_len > 0x7F || (tag_list_len && !tag_list)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "get status: tag list of %zu octets",
                        tag_list_len);
    }
    wr_u8(&w, OTA_GP_TAG_AID);
    wr_lv(&w, aid, aid_len);
    if (tag_list_len) {
        wr_u8(&w, 0x5C); /* ISO 7816-4 tag list */
        wr_lv(&w, tag_list, tag_list_len);
    }
    return emit(OTA_GP_CLA, OTA_GP_INS_GET_STATUS, p1, p2, &w, true, "get status", dst, cap, err);
}

/* ---- GET DATA, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE ---- */

int ota_gp_get_data(uint16_t tag, uint8_t *dst, size_t cap, struct ota_err *err)
{
    return emit(OTA_GP_CLA, OTA_GP_INS_GET_DATA, (uint8_t)(tag >> 8), (uint8_t)tag, NULL, true,
                "get data", dst, cap, err);
}

int ota_gp_init_update(uint8_t kvn, const uint8_t host_challenge[8], uint8_t *dst, size_t cap,
                       struct ota_err *err)
{
    struct wr w = {.len = 0};

    wr_bytes(&w, host_challenge, 8);
    return emit(OTA_GP_CLA, OTA_GP_INS_INIT_UPDATE, kvn, 0x00, &w, true, "initialize update", dst,
                cap, err);
}

int ota_gp_ext_auth(uint8_t sl, const uint8_t host_cryptogram[8], const uint8_t mac[8],
                    uint8_t *dst, size_t cap, struct ota_err *err)
{
    struct wr w = {.len = 0};

    /* GP 2.2 E.5.2: the security levels SCP02 defines (ota.md 4.5). */
    if (sl != 0x00 && sl != 0x01 && sl != 0x03 && sl != 0x11 && sl != 0x13) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "external authenticate: security level %02X, expected 00/01/03/11/13", sl);
    }
    wr_bytes(&w, host_cryptogram, 8);
    wr_bytes(&w, mac, 8);
    return emit(OTA_GP_CLA_MAC, OTA_GP_INS_EXT_AUTH, sl, 0x00, &w, false, "external authenticate",
                dst, cap, err);
}
