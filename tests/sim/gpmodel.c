/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's GlobalPlatform card model: executes the GP 2.2 clause 11
 * card-content-management commands (SELECT 11.9, GET STATUS 11.4, GET DATA
 * 11.3, SET STATUS 11.10, DELETE 11.2, INSTALL 11.5, LOAD 11.6, STORE DATA
 * 11.11, PUT KEY 11.8) on a fixed-size card image: ISD, SSDs, ELFs with
 * modules, applications with life-cycle states (11.1.1) and free space.
 * Every input byte is bounds-checked: a malformed command gets a status
 * word, never a crash. Simplifications are listed in gpmodel.h.
 */
#include "tests/sim/gpmodel.h"

#include <string.h>

const uint8_t sim_gp_isd_aid[8] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00};

/* Privileges octet 1 (GP 2.2 11.1.2): b8 security domain; the ISD has 9E. */
#define GP_PRIV_SD 0x80
#define GP_PRIV_ISD 0x9E

/* Sticky-error reader over a command's data field. */
struct rd {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static uint8_t rd_u8(struct rd *r)
{
    if (r->bad || r->left < 1) {
        r->bad = true;
        return 0;
    }
    uint8_t v = r->p[0];
    r->p++;
    r->left--;
    return v;
}

/* One length-value field; *v points into the command. */
static void rd_lv(struct rd *r, const uint8_t **v, size_t *len)
{
    size_t l = rd_u8(r);

    if (r->bad || r->left < l) {
        r->bad = true;
        *v = NULL;
        *len = 0;
        return;
    }
    *v = r->p;
    *len = l;
    r->p += l;
    r->left -= l;
}

static bool aid_ok(size_t len)
{
    return len >= OTA_GP_AID_MIN && len <= OTA_GP_AID_MAX;
}

static void aid_set(struct sim_gp_aid *a, const uint8_t *b, size_t len)
{
    memset(a, 0, sizeof(*a));
    if (len > OTA_GP_AID_MAX) {
        return;
    }
    a->len = (uint8_t)len;
    if (len > 0) {
        memcpy(a->b, b, len);
    }
}

static bool aid_eq(const struct sim_gp_aid *a, const uint8_t *b, size_t len)
{
    return a->len == len && len > 0 && memcmp(a->b, b, len) == 0;
}

static struct sim_gp_app *app_find(struct sim_gp_card *c, const uint8_t *aid, size_t len)
{
    for (size_t i = 0; i < SIM_GP_MAX_APPS; i++) {
        if (c->apps[i].used && aid_eq(&c->apps[i].aid, aid, len)) {
            return &c->apps[i];
        }
    }
    return NULL;
}

const struct sim_gp_app *sim_gp_find_app(const struct sim_gp_card *c, const uint8_t *aid,
                                         size_t aid_len)
{
    for (size_t i = 0; i < SIM_GP_MAX_APPS; i++) {
        if (c->apps[i].used && aid_eq(&c->apps[i].aid, aid, aid_len)) {
            return &c->apps[i];
        }
    }
    return NULL;
}

static struct sim_gp_elf *elf_find(struct sim_gp_card *c, const uint8_t *aid, size_t len)
{
    for (size_t i = 0; i < SIM_GP_MAX_ELFS; i++) {
        if (c->elfs[i].used && aid_eq(&c->elfs[i].aid, aid, len)) {
            return &c->elfs[i];
        }
    }
    return NULL;
}

static struct sim_gp_app *app_slot(struct sim_gp_card *c)
{
    for (size_t i = 0; i < SIM_GP_MAX_APPS; i++) {
        if (!c->apps[i].used) {
            return &c->apps[i];
        }
    }
    return NULL;
}

static struct sim_gp_elf *elf_slot(struct sim_gp_card *c)
{
    for (size_t i = 0; i < SIM_GP_MAX_ELFS; i++) {
        if (!c->elfs[i].used) {
            return &c->elfs[i];
        }
    }
    return NULL;
}

void sim_gp_init(struct sim_gp_card *c, uint32_t free_nv)
{
    memset(c, 0, sizeof(*c));
    aid_set(&c->isd, sim_gp_isd_aid, sizeof(sim_gp_isd_aid));
    c->card_lcs = OTA_GP_CARD_SECURED;
    c->free_nv = free_nv;
}

int sim_gp_add_app(struct sim_gp_card *c, const uint8_t *aid, size_t aid_len, uint8_t lcs,
                   bool is_sd, struct ota_err *err)
{
    struct sim_gp_app *a;

    if (!aid_ok(aid_len)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "gp: AID of %zu octets, expected 5..16",
                        aid_len);
    }
    if (app_find(c, aid, aid_len) || aid_eq(&c->isd, aid, aid_len)) {
        return ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE, "gp: AID installed twice");
    }
    a = app_slot(c);
    if (!a) {
        return ota_fail(err, -ENOSPC, OTA_ERR_LIMIT, "gp: more than %d applications",
                        SIM_GP_MAX_APPS);
    }
    memset(a, 0, sizeof(*a));
    a->used = true;
    a->is_sd = is_sd;
    aid_set(&a->aid, aid, aid_len);
    a->lcs = lcs;
    a->priv = is_sd ? GP_PRIV_SD : 0x00;
    return 0;
}

/* ---- SELECT ---- */

static uint16_t cmd_select(struct sim_gp_card *c, const struct ota_apdu *a, uint8_t *rsp,
                           size_t *rsp_len)
{
    const struct sim_gp_app *app;

    if (a->p1 != 0x04) {
        return SIM_SW_WRONG_P1P2;
    }
    if (!aid_ok(a->lc)) {
        return SIM_SW_NOT_FOUND;
    }
    if (!aid_eq(&c->isd, a->data, a->lc)) {
        app = app_find(c, a->data, a->lc);
        /* GP 2.2 11.1.1: only SELECTABLE (b1..b3 set) and unlocked entries answer */
        if (!app || (app->lcs & OTA_GP_LOCKED_BIT) ||
            (app->lcs & OTA_GP_APP_SELECTABLE) != OTA_GP_APP_SELECTABLE) {
            return SIM_SW_NOT_FOUND;
        }
    }
    /* FCI: 6F len 84 len AID */
    rsp[0] = 0x6F;
    rsp[1] = (uint8_t)(a->lc + 2);
    rsp[2] = 0x84;
    rsp[3] = a->lc;
    memcpy(rsp + 4, a->data, a->lc);
    *rsp_len = 4u + a->lc;
    return SIM_SW_OK;
}

/* ---- GET STATUS ---- */

/* Entry k of the registry part p1 names, or false when k is past the end / unused. */
struct st_entry {
    const struct sim_gp_aid *aid;
    uint8_t lcs;
    uint8_t priv;
    const struct sim_gp_aid *elf;  /* apps: C4 */
    const struct sim_gp_elf *mods; /* P1 10: module list */
};

static size_t st_table_len(uint8_t p1)
{
    switch (p1) {
    case OTA_GP_STATUS_ISD:
        return 1;
    case OTA_GP_STATUS_APPS:
        return SIM_GP_MAX_APPS;
    default:
        return SIM_GP_MAX_ELFS;
    }
}

static bool st_entry_at(const struct sim_gp_card *c, uint8_t p1, size_t k, struct st_entry *e)
{
    memset(e, 0, sizeof(*e));
    switch (p1) {
    case OTA_GP_STATUS_ISD:
        e->aid = &c->isd;
        e->lcs = c->card_lcs;
        e->priv = GP_PRIV_ISD;
        return k == 0;
    case OTA_GP_STATUS_APPS:
        if (!c->apps[k].used) {
            return false;
        }
        e->aid = &c->apps[k].aid;
        e->lcs = c->apps[k].lcs;
        e->priv = c->apps[k].priv;
        e->elf = c->apps[k].elf.len ? &c->apps[k].elf : NULL;
        return true;
    default:
        if (!c->elfs[k].used) {
            return false;
        }
        e->aid = &c->elfs[k].aid;
        e->lcs = OTA_GP_ELF_LOADED;
        e->priv = 0x00;
        e->mods = p1 == OTA_GP_STATUS_ELF_MOD ? &c->elfs[k] : NULL;
        return true;
    }
}

/* Append one entry in the chosen format; returns octets written, 0 when it does not fit. */
static size_t st_emit(const struct st_entry *e, bool tlv, uint8_t *dst, size_t cap)
{
    uint8_t b[128];
    size_t n = 0, inner;

    if (tlv) {
        n = 2; /* E3 len, filled below */
        b[n++] = OTA_GP_TAG_AID;
        b[n++] = e->aid->len;
        memcpy(b + n, e->aid->b, e->aid->len);
        n += e->aid->len;
        b[n++] = 0x9F;
        b[n++] = 0x70;
        b[n++] = 1;
        b[n++] = e->lcs;
        b[n++] = OTA_GP_TAG_PRIVILEGES;
        b[n++] = 1;
        b[n++] = e->priv;
        if (e->elf) {
            b[n++] = OTA_GP_TAG_LOAD_FILE;
            b[n++] = e->elf->len;
            memcpy(b + n, e->elf->b, e->elf->len);
            n += e->elf->len;
        }
        if (e->mods) {
            for (size_t m = 0; m < e->mods->n_mods; m++) {
                b[n++] = OTA_GP_TAG_MODULE_AID;
                b[n++] = e->mods->mods[m].len;
                memcpy(b + n, e->mods->mods[m].b, e->mods->mods[m].len);
                n += e->mods->mods[m].len;
            }
        }
        inner = n - 2;
        b[0] = OTA_GP_TAG_STATUS_ENTRY;
        b[1] = (uint8_t)inner;
    } else {
        b[n++] = e->aid->len;
        memcpy(b + n, e->aid->b, e->aid->len);
        n += e->aid->len;
        b[n++] = e->lcs;
        b[n++] = e->priv;
        if (e->mods) {
            b[n++] = e->mods->n_mods;
            for (size_t m = 0; m < e->mods->n_mods; m++) {
                b[n++] = e->mods->mods[m].len;
                memcpy(b + n, e->mods->mods[m].b, e->mods->mods[m].len);
                n += e->mods->mods[m].len;
            }
        }
    }
    if (n > cap) {
        return 0;
    }
    memcpy(dst, b, n);
    return n;
}

static uint16_t cmd_get_status(struct sim_gp_card *c, const struct ota_apdu *a, uint8_t *rsp,
                               size_t *rsp_len)
{
    struct rd r = {a->data, a->lc, false};
    uint8_t tag;
    const uint8_t *crit;
    size_t crit_len, start, n = 0, k;
    size_t cap = SIM_GP_STATUS_MAX;
    bool tlv, any = false;

    if (a->p1 != OTA_GP_STATUS_ISD && a->p1 != OTA_GP_STATUS_APPS && a->p1 != OTA_GP_STATUS_ELF &&
        a->p1 != OTA_GP_STATUS_ELF_MOD) {
        return SIM_SW_WRONG_P1P2;
    }
    if (a->p2 & ~(OTA_GP_STATUS_TLV | OTA_GP_STATUS_NEXT)) {
        return SIM_SW_WRONG_P1P2;
    }
    tag = rd_u8(&r);
    rd_lv(&r, &crit, &crit_len);
    if (r.bad || tag != OTA_GP_TAG_AID || crit_len > OTA_GP_AID_MAX) {
        return SIM_SW_WRONG_DATA;
    }
    tlv = (a->p2 & OTA_GP_STATUS_TLV) != 0;
    start = 0;
    if (a->p2 & OTA_GP_STATUS_NEXT) {
        if (c->status_p1 != a->p1 || c->status_next == 0) {
            return SIM_SW_REF_NOT_FOUND;
        }
        start = c->status_next;
    }
    c->status_next = 0;
    c->status_p1 = a->p1;
    for (k = start; k < st_table_len(a->p1); k++) {
        struct st_entry e;
        size_t w;

        if (!st_entry_at(c, a->p1, k, &e)) {
            continue;
        }
        if (e.aid->len < crit_len || (crit_len && memcmp(e.aid->b, crit, crit_len) != 0)) {
            continue;
        }
        w = st_emit(&e, tlv, rsp + n, cap - n);
        if (w == 0) {
            if (!any) {
                return SIM_SW_WRONG_DATA; /* cannot happen with the fixed sizes */
            }
            c->status_next = (uint16_t)k;
            *rsp_len = n;
            return SIM_SW_MORE;
        }
        n += w;
        any = true;
    }
    if (!any) {
        return SIM_SW_REF_NOT_FOUND;
    }
    *rsp_len = n;
    return SIM_SW_OK;
}

/* ---- GET DATA ---- */

static size_t used_apps(const struct sim_gp_card *c)
{
    size_t n = 0;

    for (size_t i = 0; i < SIM_GP_MAX_APPS; i++) {
        n += c->apps[i].used ? 1 : 0;
    }
    return n;
}

static uint16_t cmd_get_data(struct sim_gp_card *c, const struct ota_apdu *a, uint8_t *rsp,
                             size_t *rsp_len)
{
    /* GP 2.2 H.2 card recognition data: 66 { 73 { 06 OID 1.2.840.114283.1 } } */
    static const uint8_t card_data[] = {0x66, 0x0B, 0x73, 0x09, 0x06, 0x07, 0x2A,
                                        0x86, 0x48, 0x86, 0xFC, 0x6B, 0x01};
    uint16_t tag = (uint16_t)(a->p1 << 8 | a->p2);
    size_t n = 0;

    switch (tag) {
    case 0x0066:
        memcpy(rsp, card_data, sizeof(card_data));
        *rsp_len = sizeof(card_data);
        return SIM_SW_OK;
    case 0x00E0:
        /* E0 { C0 04 key-id kvn type len } for ENC/MAC/DEK of every key version */
        rsp[n++] = 0xE0;
        rsp[n++] = 0;
        for (size_t v = 0; v < c->n_kvns; v++) {
            for (uint8_t id = 1; id <= 3; id++) {
                rsp[n++] = 0xC0;
                rsp[n++] = 4;
                rsp[n++] = id;
                rsp[n++] = c->kvns[v];
                rsp[n++] = OTA_GP_KEY_TYPE_DES;
                rsp[n++] = 16;
            }
        }
        rsp[1] = (uint8_t)(n - 2);
        *rsp_len = n;
        return SIM_SW_OK;
    case 0xFF21: {
        size_t apps = used_apps(c);

        rsp[n++] = 0xFF;
        rsp[n++] = 0x21;
        rsp[n++] = 14;
        rsp[n++] = 0x81;
        rsp[n++] = 2;
        ota_put_u16(rsp + n, (uint16_t)apps);
        n += 2;
        rsp[n++] = 0x82;
        rsp[n++] = 4;
        rsp[n++] = (uint8_t)(c->free_nv >> 24);
        rsp[n++] = (uint8_t)(c->free_nv >> 16);
        rsp[n++] = (uint8_t)(c->free_nv >> 8);
        rsp[n++] = (uint8_t)c->free_nv;
        rsp[n++] = 0x83;
        rsp[n++] = 2;
        ota_put_u16(rsp + n, (uint16_t)SIM_GP_FREE_V);
        n += 2;
        *rsp_len = n;
        return SIM_SW_OK;
    }
    default:
        return SIM_SW_REF_NOT_FOUND;
    }
}

/* ---- SET STATUS ---- */

static uint16_t cmd_set_status(struct sim_gp_card *c, const struct ota_apdu *a)
{
    struct sim_gp_app *app;

    if (a->p1 == OTA_GP_STATUS_SCOPE_ISD) {
        switch (a->p2) {
        case OTA_GP_CARD_INITIALIZED:
        case OTA_GP_CARD_SECURED:
        case OTA_GP_CARD_LOCKED:
        case OTA_GP_CARD_TERMINATED:
            c->card_lcs = a->p2;
            return SIM_SW_OK;
        default:
            return SIM_SW_WRONG_DATA;
        }
    }
    if (a->p1 != OTA_GP_STATUS_SCOPE_APP && a->p1 != OTA_GP_STATUS_SCOPE_SD_APPS) {
        return SIM_SW_WRONG_P1P2;
    }
    if (a->p2 != OTA_GP_SET_STATUS_LOCK && a->p2 != OTA_GP_SET_STATUS_UNLOCK) {
        return SIM_SW_WRONG_P1P2;
    }
    if (!aid_ok(a->lc)) {
        return SIM_SW_WRONG_DATA;
    }
    app = app_find(c, a->data, a->lc);
    if (!app) {
        return SIM_SW_REF_NOT_FOUND;
    }
    for (size_t i = 0; i < SIM_GP_MAX_APPS; i++) {
        struct sim_gp_app *x = &c->apps[i];

        if (!x->used) {
            continue;
        }
        if (x != app && !(a->p1 == OTA_GP_STATUS_SCOPE_SD_APPS && aid_eq(&x->sd, a->data, a->lc))) {
            continue;
        }
        if (a->p2 == OTA_GP_SET_STATUS_LOCK) {
            x->lcs |= OTA_GP_LOCKED_BIT;
        } else {
            x->lcs &= (uint8_t)~OTA_GP_LOCKED_BIT;
        }
    }
    return SIM_SW_OK;
}

/* ---- DELETE ---- */

static void app_remove(struct sim_gp_card *c, struct sim_gp_app *app)
{
    c->free_nv += app->size;
    memset(app, 0, sizeof(*app));
}

static uint16_t cmd_delete(struct sim_gp_card *c, const struct ota_apdu *a)
{
    struct rd r = {a->data, a->lc, false};
    const uint8_t *aid;
    size_t aid_len;
    uint8_t tag;
    bool related;
    struct sim_gp_app *app;
    struct sim_gp_elf *elf;

    if (a->p1 != 0x00 || (a->p2 != 0x00 && a->p2 != 0x80)) {
        return SIM_SW_WRONG_P1P2;
    }
    related = a->p2 == 0x80;
    tag = rd_u8(&r);
    rd_lv(&r, &aid, &aid_len);
    if (r.bad || tag != OTA_GP_TAG_AID || !aid_ok(aid_len)) {
        return SIM_SW_WRONG_DATA;
    }
    if (aid_eq(&c->isd, aid, aid_len)) {
        return SIM_SW_COND;
    }
    app = app_find(c, aid, aid_len);
    if (app) {
        app_remove(c, app);
        return SIM_SW_OK;
    }
    elf = elf_find(c, aid, aid_len);
    if (!elf) {
        return SIM_SW_REF_NOT_FOUND;
    }
    for (size_t i = 0; i < SIM_GP_MAX_APPS; i++) {
        if (c->apps[i].used && aid_eq(&c->apps[i].elf, aid, aid_len)) {
            if (!related) {
                /* GP 2.2 11.2.2.1: an ELF with instances goes only with related objects */
                return SIM_SW_COND;
            }
        }
    }
    for (size_t i = 0; i < SIM_GP_MAX_APPS; i++) {
        if (c->apps[i].used && aid_eq(&c->apps[i].elf, aid, aid_len)) {
            app_remove(c, &c->apps[i]);
        }
    }
    c->free_nv += elf->size;
    memset(elf, 0, sizeof(*elf));
    return SIM_SW_OK;
}

/* ---- INSTALL and LOAD ---- */

static uint16_t install_for_load(struct sim_gp_card *c, struct rd *r)
{
    const uint8_t *elf, *sd, *v;
    size_t elf_len, sd_len, l;

    rd_lv(r, &elf, &elf_len);
    rd_lv(r, &sd, &sd_len);
    rd_lv(r, &v, &l); /* hash */
    rd_lv(r, &v, &l); /* load parameters */
    rd_lv(r, &v, &l); /* token */
    if (r->bad || !aid_ok(elf_len) || (sd_len != 0 && !aid_ok(sd_len))) {
        return SIM_SW_WRONG_DATA;
    }
    if (elf_find(c, elf, elf_len) || app_find(c, elf, elf_len)) {
        return SIM_SW_COND;
    }
    if (!elf_slot(c)) {
        return SIM_SW_NO_SPACE;
    }
    c->loading = true;
    aid_set(&c->load_aid, elf, elf_len);
    c->load_bytes = 0;
    c->load_next_block = 0;
    return SIM_SW_OK;
}

static uint16_t install_for_install(struct sim_gp_card *c, struct rd *r, bool selectable)
{
    const uint8_t *elf_aid, *mod, *aid, *priv, *v;
    size_t elf_len, mod_len, aid_len, priv_len, l;
    struct sim_gp_elf *elf;
    struct sim_gp_app *app;
    bool have_mod = false;

    rd_lv(r, &elf_aid, &elf_len);
    rd_lv(r, &mod, &mod_len);
    rd_lv(r, &aid, &aid_len);
    rd_lv(r, &priv, &priv_len);
    rd_lv(r, &v, &l); /* install parameters */
    rd_lv(r, &v, &l); /* token */
    if (r->bad || !aid_ok(elf_len) || !aid_ok(mod_len) || !aid_ok(aid_len) ||
        (priv_len != 1 && priv_len != 3)) {
        return SIM_SW_WRONG_DATA;
    }
    elf = elf_find(c, elf_aid, elf_len);
    if (!elf) {
        return SIM_SW_REF_NOT_FOUND;
    }
    if (app_find(c, aid, aid_len) || aid_eq(&c->isd, aid, aid_len)) {
        return SIM_SW_COND;
    }
    app = app_slot(c);
    if (!app || c->free_nv < SIM_GP_APP_SIZE) {
        return SIM_SW_NO_SPACE;
    }
    for (size_t m = 0; m < elf->n_mods; m++) {
        have_mod = have_mod || aid_eq(&elf->mods[m], mod, mod_len);
    }
    if (!have_mod) {
        if (elf->n_mods == SIM_GP_MAX_MODS) {
            return SIM_SW_REF_NOT_FOUND;
        }
        aid_set(&elf->mods[elf->n_mods++], mod, mod_len);
    }
    memset(app, 0, sizeof(*app));
    app->used = true;
    aid_set(&app->aid, aid, aid_len);
    aid_set(&app->elf, elf_aid, elf_len);
    app->priv = priv[0];
    app->is_sd = (priv[0] & GP_PRIV_SD) != 0;
    app->lcs = selectable ? OTA_GP_APP_SELECTABLE : OTA_GP_APP_INSTALLED;
    app->size = SIM_GP_APP_SIZE;
    c->free_nv -= SIM_GP_APP_SIZE;
    return SIM_SW_OK;
}

/* Make selectable and personalization: empty ELF and module, then the application AID. */
static uint16_t install_for_app(struct sim_gp_card *c, struct rd *r, uint8_t kind)
{
    const uint8_t *elf, *mod, *aid;
    size_t elf_len, mod_len, aid_len;
    struct sim_gp_app *app;

    rd_lv(r, &elf, &elf_len);
    rd_lv(r, &mod, &mod_len);
    rd_lv(r, &aid, &aid_len);
    if (r->bad || !aid_ok(aid_len)) {
        return SIM_SW_WRONG_DATA;
    }
    app = app_find(c, aid, aid_len);
    if (!app) {
        return SIM_SW_REF_NOT_FOUND;
    }
    if (app->lcs & OTA_GP_LOCKED_BIT) {
        return SIM_SW_COND;
    }
    if (kind == OTA_GP_INSTALL_FOR_PERSONALIZATION) {
        aid_set(&c->perso, aid, aid_len);
        return SIM_SW_OK;
    }
    if (app->lcs != OTA_GP_APP_INSTALLED) {
        return SIM_SW_COND;
    }
    app->lcs = OTA_GP_APP_SELECTABLE;
    return SIM_SW_OK;
}

static uint16_t cmd_install(struct sim_gp_card *c, const struct ota_apdu *a)
{
    struct rd r = {a->data, a->lc, false};

    if (a->lc == 0) {
        return SIM_SW_WRONG_LENGTH;
    }
    switch (a->p1) {
    case OTA_GP_INSTALL_FOR_LOAD:
        return install_for_load(c, &r);
    case OTA_GP_INSTALL_FOR_INSTALL:
        return install_for_install(c, &r, false);
    case OTA_GP_INSTALL_FOR_INSTALL_SELECTABLE:
        return install_for_install(c, &r, true);
    case OTA_GP_INSTALL_FOR_MAKE_SELECTABLE:
    case OTA_GP_INSTALL_FOR_PERSONALIZATION:
        return install_for_app(c, &r, a->p1);
    default:
        return SIM_SW_WRONG_P1P2;
    }
}

static uint16_t cmd_load(struct sim_gp_card *c, const struct ota_apdu *a)
{
    struct sim_gp_elf *elf;

    if (!c->loading) {
        return SIM_SW_COND;
    }
    if ((a->p1 != 0x00 && a->p1 != 0x80) || a->p2 != c->load_next_block) {
        return SIM_SW_WRONG_P1P2;
    }
    if (a->lc == 0) {
        return SIM_SW_WRONG_LENGTH;
    }
    if ((uint64_t)c->load_bytes + a->lc > c->free_nv) {
        c->loading = false; /* GP 2.2 11.6.3: the load is aborted */
        return SIM_SW_NO_SPACE;
    }
    c->load_bytes += a->lc;
    c->load_next_block++;
    if (a->p1 != 0x80) {
        return SIM_SW_OK;
    }
    elf = elf_slot(c);
    c->loading = false;
    if (!elf) {
        return SIM_SW_NO_SPACE;
    }
    memset(elf, 0, sizeof(*elf));
    elf->used = true;
    elf->aid = c->load_aid;
    elf->size = c->load_bytes;
    c->free_nv -= c->load_bytes;
    return SIM_SW_OK;
}

/* ---- STORE DATA, PUT KEY ---- */

static uint16_t cmd_store_data(struct sim_gp_card *c, const struct ota_apdu *a)
{
    struct sim_gp_app *app;

    if (a->lc == 0) {
        return SIM_SW_WRONG_LENGTH;
    }
    if (c->perso.len == 0 || !(a->p1 & OTA_GP_STORE_LAST)) {
        return SIM_SW_OK;
    }
    app = app_find(c, c->perso.b, c->perso.len);
    memset(&c->perso, 0, sizeof(c->perso));
    if (!app) {
        return SIM_SW_REF_NOT_FOUND;
    }
    app->lcs = (uint8_t)((app->lcs & OTA_GP_LOCKED_BIT) | OTA_GP_SD_PERSONALIZED);
    return SIM_SW_OK;
}

static uint16_t cmd_put_key(struct sim_gp_card *c, const struct ota_apdu *a, uint8_t *rsp,
                            size_t *rsp_len)
{
    struct rd r = {a->data, a->lc, false};
    uint8_t new_kvn;
    size_t n = 0;

    new_kvn = rd_u8(&r);
    if (r.bad || new_kvn == 0 || new_kvn > 0x7F) {
        return SIM_SW_WRONG_DATA;
    }
    rsp[n++] = new_kvn;
    while (!r.bad && r.left > 0) {
        const uint8_t *key, *kcv;
        size_t key_len, kcv_len;

        (void)rd_u8(&r); /* key type */
        rd_lv(&r, &key, &key_len);
        rd_lv(&r, &kcv, &kcv_len);
        if (r.bad || key_len == 0 || kcv_len > 3 || n + kcv_len > 3u * OTA_GP_PUT_KEY_MAX + 1) {
            return SIM_SW_WRONG_DATA;
        }
        memcpy(rsp + n, kcv, kcv_len);
        n += kcv_len;
    }
    if (r.bad || n == 1) {
        return SIM_SW_WRONG_DATA;
    }
    for (size_t i = 0; i < c->n_kvns; i++) {
        if (c->kvns[i] == a->p1 || c->kvns[i] == new_kvn) {
            c->kvns[i] = new_kvn;
            *rsp_len = n;
            return SIM_SW_OK;
        }
    }
    if (c->n_kvns == SIM_GP_MAX_KVNS) {
        return SIM_SW_NO_SPACE;
    }
    c->kvns[c->n_kvns++] = new_kvn;
    *rsp_len = n;
    return SIM_SW_OK;
}

/* ---- dispatch ---- */

uint16_t sim_gp_run(struct sim_gp_card *c, const struct ota_apdu *a, uint8_t *rsp, size_t cap,
                    size_t *rsp_len)
{
    /* ISO/IEC 7816-4 5.4.1: 0x interindustry, 8x proprietary (GP); low two bits = channel */
    bool iso = (a->cla & 0xF0) == 0x00;
    bool gp = (a->cla & 0xF0) == 0x80;

    *rsp_len = 0;
    if (cap < 256) {
        return SIM_SW_WRONG_LENGTH;
    }
    if (!iso && !gp) {
        return SIM_SW_CLA;
    }
    if (a->lc > 0 && !a->data) {
        return SIM_SW_WRONG_LENGTH;
    }
    switch (a->ins) {
    case OTA_GP_INS_SELECT:
        return iso ? cmd_select(c, a, rsp, rsp_len) : SIM_SW_CLA;
    case OTA_GP_INS_GET_DATA:
        return cmd_get_data(c, a, rsp, rsp_len);
    case OTA_GP_INS_GET_STATUS:
        return gp ? cmd_get_status(c, a, rsp, rsp_len) : SIM_SW_CLA;
    case OTA_GP_INS_SET_STATUS:
        return gp ? cmd_set_status(c, a) : SIM_SW_CLA;
    case OTA_GP_INS_DELETE:
        return gp ? cmd_delete(c, a) : SIM_SW_CLA;
    case OTA_GP_INS_INSTALL:
        return gp ? cmd_install(c, a) : SIM_SW_CLA;
    case OTA_GP_INS_LOAD:
        return gp ? cmd_load(c, a) : SIM_SW_CLA;
    case OTA_GP_INS_STORE_DATA:
        return gp ? cmd_store_data(c, a) : SIM_SW_CLA;
    case OTA_GP_INS_PUT_KEY:
        return gp ? cmd_put_key(c, a, rsp, rsp_len) : SIM_SW_CLA;
    default:
        return SIM_SW_INS;
    }
}
