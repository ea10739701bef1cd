/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Platform core, script half: strict params of every platform operation
 * (docs/platform-ops.md) and their GlobalPlatform 2.2 clause 11 scripts
 * (spec 5.8.3 SD create / key update / delete, 5.8.4.1 download with the
 * extension files first, 5.8.4.2 delete, 5.8.4.3 lock / unlock, 5.8.4.6 mode
 * three personalization: INSTALL [for personalization] then STORE DATA
 * through the app's SD, 5.8.4.5 info sync), their TS 102 226 expanded form
 * for one SCP80 packet, and the engine's build_script adapter; then the
 * per-SE model (spec 5.8.7): the application state machine of 5.8.7.2 as
 * one table, space accounting of 5.8.7.1, updates from results and GET
 * STATUS, and its JSON form. One file because both halves read the same
 * parsed params (the model replays a script's steps to see what completed).
 */
#include "gateway/platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

const uint8_t plat_isd_aid[8] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00};
/* GP "SSD package" A0 00 00 01 51 53 50 and its module ..41, as most GP cards name them. */
const uint8_t plat_ssd_elf_aid[7] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50};
const uint8_t plat_ssd_module_aid[8] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x41};

static const char *const step_names[PLAT_STEP__COUNT] = {
    [PLAT_STEP_INSTALL_LOAD] = "install-load",
    [PLAT_STEP_LOAD] = "load",
    [PLAT_STEP_INSTALL] = "install",
    [PLAT_STEP_MAKE_SELECTABLE] = "make-selectable",
    [PLAT_STEP_DELETE] = "delete",
    [PLAT_STEP_SET_STATUS] = "set-status",
    [PLAT_STEP_INSTALL_PERSO] = "install-perso",
    [PLAT_STEP_STORE_DATA] = "store-data",
    [PLAT_STEP_PUT_KEY] = "put-key",
    [PLAT_STEP_GET_STATUS] = "get-status",
    [PLAT_STEP_GET_DATA] = "get-data",
};

const char *plat_step_name(enum plat_step s)
{
    return ota_enum_name(step_names, OTA_ARRAY_SIZE(step_names), s);
}

void plat_script_fini(struct plat_script *s)
{
    if (!s) {
        return;
    }
    if (s->apdus) {
        /* PUT KEY commands carry wrapped keys and KCVs: not plain keys, but no reason to keep */
        OPENSSL_cleanse(s->apdus, s->cap * sizeof(*s->apdus));
    }
    free(s->apdus);
    memset(s, 0, sizeof(*s));
}

/* ---- script assembly ----------------------------------------------------------------- */

/* A fresh APDU slot at the end of s (not yet counted). 0, -E2BIG or -ENOMEM. */
static int slot(struct plat_script *s, enum plat_step step, size_t obj, struct plat_apdu **out,
                struct ota_err *err)
{
    if (s->n == PLAT_MAX_APDUS) {
        return ota_fail(err, -E2BIG, OTA_ERR_LIMIT, "script: more than %d APDUs", PLAT_MAX_APDUS);
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        if (nc > PLAT_MAX_APDUS) {
            nc = PLAT_MAX_APDUS;
        }
        struct plat_apdu *na = realloc(s->apdus, nc * sizeof(*na));
        if (!na) {
            return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "script: out of memory");
        }
        s->apdus = na;
        s->cap = nc;
    }
    struct plat_apdu *a = &s->apdus[s->n];
    memset(a, 0, sizeof(*a));
    a->step = step;
    a->obj = (uint8_t)obj;
    *out = a;
    return 0;
}

/* Count the slot a builder filled; rc is the builder's return (length or negative errno). */
static int commit(struct plat_script *s, struct plat_apdu *a, int rc, bool last)
{
    if (rc < 0) {
        return rc;
    }
    a->len = (uint16_t)rc;
    a->last = last;
    s->n++;
    return 0;
}

/* ---- params: strict JSON ------------------------------------------------------------- */

#define P_MAX_FILES 8 /* extensions + the main load file */
#define P_MAX_MODS 8
#define P_MAX_AIDS 8
#define P_MAX_DATA 64
#define P_KEK_NAME_MAX 64    /* gateway/keys.h GW_KEYS_KEK_NAME_MAX */
#define P_APP_PARAMS_MAX 200 /* app-specific install params inside C9 */
#define P_FILE_MAX 0xFFFF    /* ota_gp_load_count's bound */

enum p_scope {
    P_SCOPE_SPACE = 1,
    P_SCOPE_ISD = 2,
    P_SCOPE_APPS = 4,
    P_SCOPE_ELFS = 8,
};

struct p_file {
    struct plat_aid aid;
    uint8_t *data; /* heap */
    size_t len;
    uint8_t hash[64];
    size_t hash_len;
};

struct p_mod {
    struct plat_aid mod, inst;
    uint8_t priv[3];
    size_t priv_len;
    uint8_t app[P_APP_PARAMS_MAX];
    size_t app_len;
    uint32_t nv, v; /* C8 / C7 */
};

/* Parsed params of any op; the fields an op does not use stay zero. */
struct p_params {
    enum task_op op;
    uint8_t tar[3];
    struct plat_aid sd; /* target SD (ISD by default) */
    bool sd_given;
    /* download: extensions then the main file (last); sd-create: files[0].aid = package */
    size_t n_files;
    struct p_file files[P_MAX_FILES];
    uint8_t *dap;
    size_t dap_len;
    size_t block;
    size_t n_mods;
    struct p_mod mods[P_MAX_MODS];
    bool selectable;
    /* delete / lock / unlock / personalize / sd-delete: aids[0] is "aid" */
    size_t n_aids;
    struct plat_aid aids[P_MAX_AIDS];
    struct plat_aid elf;
    bool with_elf;
    /* personalize */
    size_t n_data;
    uint8_t *data[P_MAX_DATA];
    size_t data_len[P_MAX_DATA];
    uint8_t store_flags;
    char *kek[P_MAX_DATA]; /* sensitive block: the KEK it is under (NULL: sent as given) */
    uint8_t kek_kvn[P_MAX_DATA];
    char *owner; /* params.owner: the platform the task is for (NULL: staff's) */
    /* sd-key-update */
    uint8_t old_kvn, new_kvn, key_id;
    bool set_perso;
    /* info-sync */
    unsigned scope;
    bool with_modules, next;
};

static void p_fini(struct p_params *p)
{
    for (size_t i = 0; i < P_MAX_FILES; i++) {
        free(p->files[i].data);
    }
    for (size_t i = 0; i < P_MAX_DATA; i++) {
        if (p->data[i]) {
            OPENSSL_cleanse(p->data[i], p->data_len[i]);
        }
        free(p->data[i]);
        free(p->kek[i]);
    }
    free(p->owner);
    free(p->dap);
    memset(p, 0, sizeof(*p));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decode hex s (even length, digits only) into out (at least strlen/2 octets). */
static bool hex_decode(const char *s, size_t n, uint8_t *out)
{
    if (n % 2) {
        return false;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool aid_eq(const struct plat_aid *a, const uint8_t *b, size_t len)
{
    return a->len == len && len > 0 && memcmp(a->b, b, len) == 0;
}

/* Refuse keys of o outside allowed (NULL-terminated). */
static int only_keys(const json_t *o, const char *path, const char *const *allowed,
                     struct ota_err *err)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)o, key, v)
    {
        /* set by the task API on any task (gateway/api_tasks.c), parsed by p_common */
        bool ok = strcmp(path, "params") == 0 &&
                  (strcmp(key, "owner") == 0 || strcmp(key, "callback_url") == 0);
        for (size_t i = 0; allowed[i]; i++) {
            ok = ok || strcmp(key, allowed[i]) == 0;
        }
        if (!ok) {
            return ota_fail(err, -EINVAL, OTA_ERR_TAG, "%s: unknown key \"%.40s\"", path, key);
        }
    }
    return 0;
}

/*
 * Hex member key of o, min..max octets, into out (max octets) or, when
 * alloc is set, a fresh heap buffer in *heap. Absent: *len 0, an error when req.
 */
static int j_hex(const json_t *o, const char *path, const char *key, bool req, size_t min,
                 size_t max, uint8_t *out, uint8_t **heap, size_t *len, struct ota_err *err)
{
    json_t *v = json_object_get(o, key);

    *len = 0;
    if (!v) {
        if (req) {
            return ota_fail(err, -EINVAL, OTA_ERR_MISSING, "%s.%s: required", path, key);
        }
        return 0;
    }
    if (!json_is_string(v)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s.%s: not a hex string", path, key);
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n % 2 || n / 2 < min || n / 2 > max) {
        return ota_fail(err, -EINVAL, OTA_ERR_LENGTH,
                        "%s.%s: %zu hex digits, expected %zu..%zu octets", path, key, n, min, max);
    }
    uint8_t *dst = out;
    if (heap) {
        dst = malloc(n / 2 ? n / 2 : 1);
        if (!dst) {
            return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "%s.%s: out of memory", path, key);
        }
    }
    if (!hex_decode(s, n, dst)) {
        if (heap) {
            free(dst);
        }
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s.%s: not hex", path, key);
    }
    if (heap) {
        *heap = dst;
    }
    *len = n / 2;
    return 0;
}

static int j_aid(const json_t *o, const char *path, const char *key, bool req, struct plat_aid *a,
                 struct ota_err *err)
{
    size_t len;
    int rc = j_hex(o, path, key, req, OTA_GP_AID_MIN, OTA_GP_AID_MAX, a->b, NULL, &len, err);
    a->len = (uint8_t)len;
    return rc;
}

static int j_bool(const json_t *o, const char *path, const char *key, bool def, bool *out,
                  struct ota_err *err)
{
    json_t *v = json_object_get(o, key);

    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s.%s: not true/false", path, key);
    }
    *out = json_is_true(v);
    return 0;
}

static int j_uint(const json_t *o, const char *path, const char *key, bool req, uint32_t def,
                  uint32_t min, uint32_t max, uint32_t *out, struct ota_err *err)
{
    json_t *v = json_object_get(o, key);

    if (!v) {
        if (req) {
            return ota_fail(err, -EINVAL, OTA_ERR_MISSING, "%s.%s: required", path, key);
        }
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
        json_integer_value(v) > (json_int_t)max) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s.%s: not an integer in %u..%u", path, key,
                        (unsigned)min, (unsigned)max);
    }
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

/* Array member: NULL when absent (req: error); n items in min..max. */
static int j_array(const json_t *o, const char *path, const char *key, bool req, size_t min,
                   size_t max, json_t **out, struct ota_err *err)
{
    json_t *v = json_object_get(o, key);

    *out = NULL;
    if (!v) {
        if (req) {
            return ota_fail(err, -EINVAL, OTA_ERR_MISSING, "%s.%s: required", path, key);
        }
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) < min || json_array_size(v) > max) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s.%s: not an array of %zu..%zu items", path,
                        key, min, max);
    }
    *out = v;
    return 0;
}

static int j_object(const json_t *v, const char *path, struct ota_err *err)
{
    if (!json_is_object(v)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s: not an object", path);
    }
    return 0;
}

/* The keys every op takes: tar, sd_aid. */
static int p_common(const json_t *o, struct p_params *p, struct ota_err *err)
{
    size_t n;
    int rc = j_hex(o, "params", "tar", false, 3, 3, p->tar, NULL, &n, err);
    if (rc < 0) {
        return rc;
    }
    rc = j_aid(o, "params", "sd_aid", false, &p->sd, err);
    if (rc < 0) {
        return rc;
    }
    p->sd_given = p->sd.len > 0;
    if (!p->sd_given) {
        memcpy(p->sd.b, plat_isd_aid, sizeof(plat_isd_aid));
        p->sd.len = sizeof(plat_isd_aid);
    }
    json_t *ow = json_object_get(o, "owner");
    if (ow && (!json_is_string(ow) || json_string_length(ow) == 0)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "params.owner: not a principal name");
    }
    if (ow) {
        p->owner = strdup(json_string_value(ow));
        if (!p->owner) {
            return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "params.owner: out of memory");
        }
    }
    return 0;
}

static int p_privileges(const json_t *o, const char *path, const char *def, struct p_mod *m,
                        struct ota_err *err)
{
    int rc = j_hex(o, path, "privileges", false, 1, 3, m->priv, NULL, &m->priv_len, err);
    if (rc < 0) {
        return rc;
    }
    if (m->priv_len == 0) {
        m->priv[0] = (uint8_t)(hexval(def[0]) << 4 | hexval(def[1]));
        m->priv_len = 1;
    }
    if (m->priv_len == 2) {
        return ota_fail(err, -EINVAL, OTA_ERR_LENGTH, "%s.privileges: 1 or 3 octets (GP 11.1.2)",
                        path);
    }
    return 0;
}

static int p_space(const json_t *o, const char *path, struct p_mod *m, struct ota_err *err)
{
    int rc = j_uint(o, path, "nv_data", false, 0, 0, 0xFFFFFF, &m->nv, err);
    if (rc < 0) {
        return rc;
    }
    return j_uint(o, path, "v_data", false, 0, 0, 0xFFFF, &m->v, err);
}

static int p_module(const json_t *o, const char *path, struct p_mod *m, struct ota_err *err)
{
    static const char *const keys[] = {"module_aid", "instance_aid", "privileges", "install_params",
                                       "nv_data",    "v_data",       NULL};
    int rc = j_object(o, path, err);
    if (rc == 0) {
        rc = only_keys(o, path, keys, err);
    }
    if (rc == 0) {
        rc = j_aid(o, path, "module_aid", true, &m->mod, err);
    }
    if (rc == 0) {
        rc = j_aid(o, path, "instance_aid", true, &m->inst, err);
    }
    if (rc == 0) {
        rc = p_privileges(o, path, "00", m, err);
    }
    if (rc == 0) {
        rc = j_hex(o, path, "install_params", false, 0, P_APP_PARAMS_MAX, m->app, NULL, &m->app_len,
                   err);
    }
    if (rc == 0) {
        rc = p_space(o, path, m, err);
    }
    return rc;
}

static int p_file(const json_t *o, const char *path, struct p_file *f, struct ota_err *err)
{
    int rc = j_aid(o, path, "load_file_aid", true, &f->aid, err);
    if (rc == 0) {
        rc = j_hex(o, path, "load_file", true, 1, P_FILE_MAX, NULL, &f->data, &f->len, err);
    }
    if (rc == 0) {
        rc = j_hex(o, path, "hash", false, 1, sizeof(f->hash), f->hash, NULL, &f->hash_len, err);
    }
    return rc;
}

static int p_download(const json_t *o, struct p_params *p, struct ota_err *err)
{
    static const char *const keys[] = {
        "tar",        "sd_aid",  "load_file_aid", "load_file",  "hash", "dap",
        "block_size", "modules", "extensions",    "selectable", NULL};
    static const char *const ext_keys[] = {"load_file_aid", "load_file", "hash", NULL};
    char path[48];
    json_t *mods, *exts, *v;
    size_t i;
    uint32_t block;
    int rc = only_keys(o, "params", keys, err);

    if (rc == 0) {
        rc = j_array(o, "params", "extensions", false, 0, P_MAX_FILES - 1, &exts, err);
    }
    json_array_foreach(exts, i, v)
    {
        snprintf(path, sizeof(path), "params.extensions[%zu]", i);
        if (rc == 0) {
            rc = j_object(v, path, err);
        }
        if (rc == 0) {
            rc = only_keys(v, path, ext_keys, err);
        }
        if (rc == 0) {
            rc = p_file(v, path, &p->files[p->n_files++], err);
        }
    }
    if (rc == 0) {
        rc = p_file(o, "params", &p->files[p->n_files++], err);
    }
    if (rc == 0) {
        rc = j_hex(o, "params", "dap", false, 1, 1024, NULL, &p->dap, &p->dap_len, err);
    }
    if (rc == 0) {
        rc = j_uint(o, "params", "block_size", false, PLAT_BLOCK_DEFAULT, 16, PLAT_BLOCK_MAX,
                    &block, err);
        p->block = block;
    }
    if (rc == 0) {
        rc = j_bool(o, "params", "selectable", true, &p->selectable, err);
    }
    if (rc == 0) {
        rc = j_array(o, "params", "modules", false, 0, P_MAX_MODS, &mods, err);
    }
    json_array_foreach(mods, i, v)
    {
        snprintf(path, sizeof(path), "params.modules[%zu]", i);
        if (rc == 0) {
            rc = p_module(v, path, &p->mods[p->n_mods++], err);
        }
    }
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < p->n_files; i++) {
        for (size_t k = 0; k < i; k++) {
            if (aid_eq(&p->files[k].aid, p->files[i].aid.b, p->files[i].aid.len)) {
                return ota_fail(err, -EINVAL, OTA_ERR_DUPLICATE,
                                "params: load_file_aid given twice (extension %zu)", k);
            }
        }
    }
    for (i = 0; i < p->n_mods; i++) {
        for (size_t k = 0; k < i; k++) {
            if (aid_eq(&p->mods[k].inst, p->mods[i].inst.b, p->mods[i].inst.len)) {
                return ota_fail(err, -EINVAL, OTA_ERR_DUPLICATE,
                                "params.modules[%zu].instance_aid: used twice", i);
            }
        }
    }
    return 0;
}

static int p_aid_list(const json_t *o, const char *key, struct p_params *p, struct ota_err *err)
{
    char path[48];
    json_t *arr, *v;
    size_t i;
    int rc = j_array(o, "params", key, false, 0, P_MAX_AIDS - 1, &arr, err);

    json_array_foreach(arr, i, v)
    {
        size_t n = 0;
        snprintf(path, sizeof(path), "params.%s[%zu]", key, i);
        if (rc == 0 && (!json_is_string(v) || json_string_length(v) % 2 ||
                        json_string_length(v) / 2 < OTA_GP_AID_MIN ||
                        json_string_length(v) / 2 > OTA_GP_AID_MAX)) {
            rc = ota_fail(err, -EINVAL, OTA_ERR_LENGTH, "%s: not an AID of 5..16 octets", path);
        }
        if (rc == 0) {
            n = json_string_length(v) / 2;
            if (!hex_decode(json_string_value(v), 2 * n, p->aids[p->n_aids].b)) {
                rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s: not hex", path);
            }
        }
        if (rc == 0) {
            p->aids[p->n_aids++].len = (uint8_t)n;
        }
    }
    return rc;
}

static int p_delete(const json_t *o, struct p_params *p, struct ota_err *err)
{
    static const char *const keys[] = {"tar",           "sd_aid", "aid", "with_load_file",
                                       "load_file_aid", NULL};
    int rc = only_keys(o, "params", keys, err);
    if (rc == 0) {
        rc = j_aid(o, "params", "aid", true, &p->aids[0], err);
        p->n_aids = 1;
    }
    if (rc == 0) {
        rc = j_bool(o, "params", "with_load_file", false, &p->with_elf, err);
    }
    if (rc == 0) {
        rc = j_aid(o, "params", "load_file_aid", false, &p->elf, err);
    }
    return rc;
}

static int p_lock(const json_t *o, struct p_params *p, struct ota_err *err)
{
    static const char *const keys[] = {"tar", "sd_aid", "aid", "instances", NULL};
    int rc = only_keys(o, "params", keys, err);
    if (rc == 0) {
        rc = j_aid(o, "params", "aid", true, &p->aids[0], err);
        p->n_aids = 1;
    }
    if (rc == 0) {
        rc = p_aid_list(o, "instances", p, err);
    }
    return rc;
}

/* One of names (NULL-terminated) -> its index; absent: def. */
static int j_enum(const json_t *o, const char *key, const char *const *names, int def, int *out,
                  struct ota_err *err)
{
    json_t *v = json_object_get(o, key);

    *out = def;
    if (!v) {
        return 0;
    }
    for (int i = 0; json_is_string(v) && names[i]; i++) {
        if (strcmp(json_string_value(v), names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "params.%s: not one of the documented names", key);
}

/*
 * A sensitive block (spec 5.8.4.6.3 step 4a): whole cipher blocks (ECB, no
 * padding: the application's own format pads), translated from the KEK to
 * the SD's DEK when the script is built.
 */
static int p_perso_sensitive(const json_t *v, const char *path, struct p_params *p, size_t i,
                             struct ota_err *err)
{
    static const char *const keys[] = {"data", "kek", "kek_kvn", NULL};
    json_t *kek = json_object_get(v, "kek");
    uint32_t kvn = 0;
    size_t n = 0;
    int rc = only_keys(v, path, keys, err);
    if (rc == 0 && (!json_is_string(kek) || json_string_length(kek) < 1 ||
                    json_string_length(kek) > P_KEK_NAME_MAX)) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s.kek: a KEK name of 1..%d characters", path,
                      P_KEK_NAME_MAX);
    }
    if (rc == 0) {
        rc = j_uint(v, path, "kek_kvn", false, 0, 1, 127, &kvn, err);
    }
    if (rc == 0) {
        rc = j_hex(v, path, "data", true, 8, PLAT_BLOCK_MAX / 8 * 8, NULL, &p->data[i], &n, err);
    }
    if (rc == 0) {
        p->data_len[i] = n;
        p->n_data = i + 1;
        if (n % 8) {
            rc = ota_fail(err, -EINVAL, OTA_ERR_LENGTH,
                          "%s.data: %zu octets, sensitive data must be whole cipher blocks (8, "
                          "16 for an AES KEK)",
                          path, n);
        }
    }
    if (rc == 0) {
        p->kek[i] = strdup(json_string_value(kek));
        p->kek_kvn[i] = (uint8_t)kvn;
        if (!p->kek[i]) {
            rc = ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "%s: out of memory", path);
        }
    }
    return rc;
}

static int p_perso(const json_t *o, struct p_params *p, struct ota_err *err)
{
    static const char *const keys[] = {"tar",        "sd_aid",    "aid", "data",
                                       "encryption", "structure", NULL};
    static const char *const enc[] = {"none", "app", "encrypted", NULL};
    static const uint8_t enc_v[] = {OTA_GP_STORE_ENC_NONE, OTA_GP_STORE_ENC_APP,
                                    OTA_GP_STORE_ENC_ENCRYPTED};
    static const char *const st[] = {"none", "dgi", "ber-tlv", NULL};
    static const uint8_t st_v[] = {OTA_GP_STORE_STRUCT_NONE, OTA_GP_STORE_STRUCT_DGI,
                                   OTA_GP_STORE_STRUCT_BERTLV};
    char path[48];
    json_t *arr = NULL, *v;
    size_t i;
    int e = 0, s = 0;
    int rc = only_keys(o, "params", keys, err);

    if (rc == 0) {
        rc = j_aid(o, "params", "aid", true, &p->aids[0], err);
        p->n_aids = 1;
    }
    if (rc == 0) {
        rc = j_array(o, "params", "data", true, 1, P_MAX_DATA, &arr, err);
    }
    json_array_foreach(arr, i, v)
    {
        snprintf(path, sizeof(path), "params.data[%zu]", i);
        if (rc == 0 && json_is_object(v)) {
            /* {"data": hex, "kek": name, "kek_kvn": n}: sensitive data under a platform KEK */
            rc = p_perso_sensitive(v, path, p, i, err);
            continue;
        }
        size_t n = json_is_string(v) ? json_string_length(v) : 0;
        if (rc == 0 && (!json_is_string(v) || n % 2 || n == 0 || n / 2 > PLAT_BLOCK_MAX)) {
            rc = ota_fail(err, -EINVAL, OTA_ERR_LENGTH, "%s: not hex of 1..%d octets", path,
                          PLAT_BLOCK_MAX);
        }
        if (rc == 0) {
            p->data[i] = malloc(n / 2);
            if (!p->data[i]) {
                rc = ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "%s: out of memory", path);
            }
        }
        if (rc == 0) {
            p->data_len[i] = n / 2;
            p->n_data = i + 1;
            if (!hex_decode(json_string_value(v), n, p->data[i])) {
                rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s: not hex", path);
            }
        }
    }
    if (rc == 0) {
        rc = j_enum(o, "encryption", enc, 0, &e, err);
    }
    if (rc == 0) {
        rc = j_enum(o, "structure", st, 0, &s, err);
    }
    p->store_flags = (uint8_t)(enc_v[e] | st_v[s]);
    return rc;
}

static int p_sd_create(const json_t *o, struct p_params *p, struct ota_err *err)
{
    static const char *const keys[] = {
        "tar",        "sd_aid",  "aid",    "load_file_aid",  "module_aid",
        "privileges", "nv_data", "v_data", "install_params", NULL};
    struct p_mod *m = &p->mods[0];
    int rc = only_keys(o, "params", keys, err);

    p->n_mods = 1;
    p->n_files = 1;
    if (rc == 0) {
        rc = j_aid(o, "params", "aid", true, &m->inst, err);
    }
    if (rc == 0) {
        rc = j_aid(o, "params", "load_file_aid", false, &p->files[0].aid, err);
    }
    if (rc == 0) {
        rc = j_aid(o, "params", "module_aid", false, &m->mod, err);
    }
    if (rc == 0) {
        rc = p_privileges(o, "params", "80", m, err);
    }
    if (rc == 0) {
        rc = j_hex(o, "params", "install_params", false, 0, P_APP_PARAMS_MAX, m->app, NULL,
                   &m->app_len, err);
    }
    if (rc == 0) {
        rc = p_space(o, "params", m, err);
    }
    if (rc < 0) {
        return rc;
    }
    if (!(m->priv[0] & 0x80)) {
        /* GP 2.2 11.1.2: b8 of privileges octet 1 makes the application a security domain */
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "params.privileges: b8 (security domain) not set");
    }
    if (p->files[0].aid.len == 0) {
        memcpy(p->files[0].aid.b, plat_ssd_elf_aid, sizeof(plat_ssd_elf_aid));
        p->files[0].aid.len = sizeof(plat_ssd_elf_aid);
    }
    if (m->mod.len == 0) {
        memcpy(m->mod.b, plat_ssd_module_aid, sizeof(plat_ssd_module_aid));
        m->mod.len = sizeof(plat_ssd_module_aid);
    }
    if (aid_eq(&m->inst, plat_isd_aid, sizeof(plat_isd_aid))) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "params.aid: that is the ISD");
    }
    return 0;
}

static int p_sd_delete(const json_t *o, struct p_params *p, struct ota_err *err)
{
    static const char *const keys[] = {"tar", "sd_aid", "aid", NULL};
    int rc = only_keys(o, "params", keys, err);
    if (rc == 0) {
        rc = j_aid(o, "params", "aid", true, &p->aids[0], err);
        p->n_aids = 1;
    }
    if (rc == 0 && aid_eq(&p->aids[0], plat_isd_aid, sizeof(plat_isd_aid))) {
        /* spec 5.8.3.3.1: the ISD cannot be deleted */
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "params.aid: the ISD cannot be deleted");
    }
    return rc;
}

static int p_key_update(const json_t *o, struct p_params *p, struct ota_err *err)
{
    static const char *const keys[] = {"tar",    "sd_aid",           "old_kvn", "new_kvn",
                                       "key_id", "set_personalized", NULL};
    uint32_t v;
    int rc = only_keys(o, "params", keys, err);

    if (rc == 0) {
        rc = j_uint(o, "params", "old_kvn", true, 0, 0, 0x7F, &v, err);
        p->old_kvn = (uint8_t)v;
    }
    if (rc == 0) {
        rc = j_uint(o, "params", "new_kvn", true, 0, 1, 0x7F, &v, err);
        p->new_kvn = (uint8_t)v;
    }
    if (rc == 0) {
        rc = j_uint(o, "params", "key_id", false, 1, 1, 0x7F, &v, err);
        p->key_id = (uint8_t)v;
    }
    if (rc == 0) {
        rc = j_bool(o, "params", "set_personalized", false, &p->set_perso, err);
    }
    if (rc == 0 && p->set_perso && aid_eq(&p->sd, plat_isd_aid, sizeof(plat_isd_aid))) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                      "params.set_personalized: only for a supplementary SD (give sd_aid)");
    }
    return rc;
}

static int p_info(const json_t *o, struct p_params *p, struct ota_err *err)
{
    static const char *const keys[] = {"tar", "sd_aid", "scope", "modules", "next", NULL};
    static const char *const names[] = {"space", "isd", "apps", "elfs", NULL};
    json_t *arr = NULL, *v;
    size_t i;
    int rc = only_keys(o, "params", keys, err);

    if (rc == 0) {
        rc = j_array(o, "params", "scope", false, 1, 4, &arr, err);
    }
    p->scope = arr ? 0 : (P_SCOPE_SPACE | P_SCOPE_ISD | P_SCOPE_APPS | P_SCOPE_ELFS);
    json_array_foreach(arr, i, v)
    {
        int k = -1;
        for (int n = 0; json_is_string(v) && names[n]; n++) {
            k = strcmp(json_string_value(v), names[n]) == 0 ? n : k;
        }
        if (rc == 0 && (k < 0 || (p->scope & (1u << k)))) {
            rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                          "params.scope[%zu]: not one of space/isd/apps/elfs, or repeated", i);
        }
        if (rc == 0) {
            p->scope |= 1u << k;
        }
    }
    if (rc == 0) {
        rc = j_bool(o, "params", "modules", false, &p->with_modules, err);
    }
    if (rc == 0) {
        rc = j_bool(o, "params", "next", false, &p->next, err);
    }
    if (rc == 0 && p->next && p->scope != P_SCOPE_APPS && p->scope != P_SCOPE_ELFS) {
        /* GP 2.2 11.4.2: "next occurrence" continues the one GET STATUS that answered 6310 */
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                      "params.next: scope must be exactly [\"apps\"] or [\"elfs\"]");
    }
    return rc;
}

/* Parse params_json for op into *p (zeroed here). On failure *p holds nothing (p_fini done). */
static int p_parse(enum task_op op, const char *params_json, struct p_params *p,
                   struct ota_err *err)
{
    json_error_t je;
    json_t *o;
    int rc;

    memset(p, 0, sizeof(*p));
    p->op = op;
    switch (op) {
    case TASK_OP_APP_DOWNLOAD:
    case TASK_OP_APP_DELETE:
    case TASK_OP_APP_LOCK:
    case TASK_OP_APP_UNLOCK:
    case TASK_OP_APP_PERSONALIZE:
    case TASK_OP_SD_CREATE:
    case TASK_OP_SD_DELETE:
    case TASK_OP_SD_KEY_UPDATE:
    case TASK_OP_INFO_SYNC:
        break;
    default:
        return ota_fail(err, -ENOTSUP, OTA_ERR_ARG, "%s: not a platform operation",
                        task_op_name(op));
    }
    o = json_loads(params_json ? params_json : "{}", JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "params: not a JSON object (%.60s)",
                        o ? "not an object" : je.text);
    }
    rc = p_common(o, p, err);
    if (rc == 0) {
        switch (op) {
        case TASK_OP_APP_DOWNLOAD:
            rc = p_download(o, p, err);
            break;
        case TASK_OP_APP_DELETE:
            rc = p_delete(o, p, err);
            break;
        case TASK_OP_APP_LOCK:
        case TASK_OP_APP_UNLOCK:
            rc = p_lock(o, p, err);
            break;
        case TASK_OP_APP_PERSONALIZE:
            rc = p_perso(o, p, err);
            break;
        case TASK_OP_SD_CREATE:
            rc = p_sd_create(o, p, err);
            break;
        case TASK_OP_SD_DELETE:
            rc = p_sd_delete(o, p, err);
            break;
        case TASK_OP_SD_KEY_UPDATE:
            rc = p_key_update(o, p, err);
            break;
        default:
            rc = p_info(o, p, err);
            break;
        }
    }
    json_decref(o);
    if (rc < 0) {
        p_fini(p);
    }
    return rc;
}

/* ---- builders ------------------------------------------------------------------------ */

/* Install parameters C9 {app} [EF {C8 nv, C7 v}] of a module (GP 2.2 11.5.2.3.7). */
static int install_params(const struct p_mod *m, uint8_t *dst, size_t cap, struct ota_err *err)
{
    uint8_t sys[16];
    int sl = 0;

    if (m->nv || m->v) {
        struct ota_gp_space sp = {.nv_code = 0, .v_data = m->v, .nv_data = m->nv};
        sl = ota_gp_system_params(&sp, sys, sizeof(sys), err);
        if (sl < 0) {
            return sl;
        }
    }
    return ota_gp_install_params(m->app, m->app_len, sl ? sys : NULL, (size_t)sl, dst, cap, err);
}

static int add_install(struct plat_script *s, const struct plat_aid *elf, const struct p_mod *m,
                       size_t obj, bool selectable, struct ota_err *err)
{
    uint8_t ip[P_APP_PARAMS_MAX + 32];
    struct plat_apdu *a = NULL;
    int n = install_params(m, ip, sizeof(ip), err);
    if (n < 0) {
        return n;
    }
    struct ota_gp_install in = {
        .kind = selectable ? OTA_GP_INSTALL_FOR_INSTALL_SELECTABLE : OTA_GP_INSTALL_FOR_INSTALL,
        .elf_aid = elf->b,
        .elf_aid_len = elf->len,
        .mod_aid = m->mod.b,
        .mod_aid_len = m->mod.len,
        .app_aid = m->inst.b,
        .app_aid_len = m->inst.len,
        .priv = m->priv,
        .priv_len = m->priv_len,
        .params = ip,
        .params_len = (size_t)n,
    };
    int rc = slot(s, PLAT_STEP_INSTALL, obj, &a, err);
    if (rc < 0) {
        return rc;
    }
    return commit(s, a, ota_gp_install(&in, a->b, sizeof(a->b), err), true);
}

static int add_load_file(struct plat_script *s, const struct p_params *p, size_t i,
                         struct ota_err *err)
{
    const struct p_file *f = &p->files[i];
    bool main_file = i + 1 == p->n_files;
    struct plat_apdu *a = NULL;
    size_t nb;
    struct ota_gp_install in = {
        .kind = OTA_GP_INSTALL_FOR_LOAD,
        .elf_aid = f->aid.b,
        .elf_aid_len = f->aid.len,
        .sd_aid = p->sd_given ? p->sd.b : NULL,
        .sd_aid_len = p->sd_given ? p->sd.len : 0,
        .hash = f->hash_len ? f->hash : NULL,
        .hash_len = f->hash_len,
    };
    /* the DAP block signs the application's own load file (spec 5.4.2: SSD DAP) */
    struct ota_gp_load l = {
        .file = f->data,
        .file_len = f->len,
        .dap = main_file ? p->dap : NULL,
        .dap_len = main_file ? p->dap_len : 0,
        .block_len = p->block,
    };
    int rc = ota_gp_load_count(&l, &nb, err);

    if (rc == -EMSGSIZE) {
        return ota_fail(err, -EINVAL, OTA_ERR_OVERSIZE,
                        "params.block_size: load file %zu of %zu octets needs more than %d LOAD "
                        "blocks of %zu",
                        i, f->len, OTA_GP_LOAD_MAX_BLOCKS, p->block);
    }
    if (rc == 0) {
        rc = slot(s, PLAT_STEP_INSTALL_LOAD, i, &a, err);
    }
    if (rc == 0) {
        rc = commit(s, a, ota_gp_install(&in, a->b, sizeof(a->b), err), false);
    }
    for (size_t b = 0; rc == 0 && b < nb; b++) {
        rc = slot(s, PLAT_STEP_LOAD, i, &a, err);
        if (rc == 0) {
            rc = commit(s, a, ota_gp_load_block(&l, b, a->b, sizeof(a->b), err), b + 1 == nb);
        }
    }
    return rc;
}

/*
 * Download (spec 5.8.4.1): extension files first, then the application's
 * load file, then one INSTALL per module. With a model, what is already on
 * the card is skipped (spec 5.8.7.2: resume from the intermediate state).
 */
static int build_download(const struct p_params *p, const struct plat_model *m,
                          struct plat_script *s, struct ota_err *err)
{
    const struct plat_aid *main_elf = &p->files[p->n_files - 1].aid;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < p->n_files; i++) {
        const struct plat_model_elf *e =
            m ? plat_model_elf(m, p->files[i].aid.b, p->files[i].aid.len) : NULL;
        if (e && !e->partial) {
            continue;
        }
        rc = add_load_file(s, p, i, err);
    }
    for (size_t i = 0; rc == 0 && i < p->n_mods; i++) {
        const struct plat_model_app *a =
            m ? plat_model_app(m, p->mods[i].inst.b, p->mods[i].inst.len) : NULL;
        if (a && a->state >= PLAT_APP_INSTANTIATED) {
            if (p->selectable && a->state == PLAT_APP_INSTANTIATED &&
                a->lcs == OTA_GP_APP_INSTALLED) {
                struct ota_gp_install in = {
                    .kind = OTA_GP_INSTALL_FOR_MAKE_SELECTABLE,
                    .app_aid = p->mods[i].inst.b,
                    .app_aid_len = p->mods[i].inst.len,
                    .priv = p->mods[i].priv,
                    .priv_len = p->mods[i].priv_len,
                };
                struct plat_apdu *ap;
                rc = slot(s, PLAT_STEP_MAKE_SELECTABLE, i, &ap, err);
                if (rc == 0) {
                    rc = commit(s, ap, ota_gp_install(&in, ap->b, sizeof(ap->b), err), true);
                }
            }
            continue;
        }
        rc = add_install(s, main_elf, &p->mods[i], i, p->selectable, err);
    }
    if (rc == 0 && s->n == 0) {
        return ota_fail(err, -EALREADY, OTA_ERR_STATE,
                        "app-download: the model has every file and instance on the card");
    }
    return rc;
}

/* Other instances of the same load file in the model (spec 5.8.4.2.1). */
static bool elf_shared(const struct plat_model *m, const struct plat_aid *elf,
                       const struct plat_aid *inst)
{
    for (size_t i = 0; m && i < m->n_apps; i++) {
        const struct plat_model_app *a = &m->apps[i];
        if (aid_eq(&a->elf, elf->b, elf->len) && !aid_eq(&a->aid, inst->b, inst->len) &&
            a->state >= PLAT_APP_INSTANTIATED) {
            return true;
        }
    }
    return false;
}

static int build_delete(const struct p_params *p, const struct plat_model *m, struct plat_script *s,
                        struct ota_err *err)
{
    struct plat_aid elf = p->elf;
    struct plat_apdu *a = NULL;
    int rc;

    if (p->with_elf && elf.len == 0 && m) {
        const struct plat_model_app *ma = plat_model_app(m, p->aids[0].b, p->aids[0].len);
        if (ma) {
            elf = ma->elf;
        }
    }
    if (p->with_elf && elf.len == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_MISSING,
                        "params.load_file_aid: required with with_load_file (model unknown)");
    }
    bool with_elf = p->with_elf && !elf_shared(m, &elf, &p->aids[0]);
    rc = slot(s, PLAT_STEP_DELETE, 0, &a, err);
    if (rc < 0) {
        return rc;
    }
    /* GP 2.2 11.2.2: P2 80 on the load file takes its instances along */
    if (with_elf) {
        rc = ota_gp_delete(elf.b, elf.len, true, NULL, 0, a->b, sizeof(a->b), err);
        a->obj = 1;
    } else {
        rc = ota_gp_delete(p->aids[0].b, p->aids[0].len, false, NULL, 0, a->b, sizeof(a->b), err);
    }
    return commit(s, a, rc, true);
}

static int build_set_status(const struct p_params *p, bool lock, struct plat_script *s,
                            struct ota_err *err)
{
    /* spec 5.8.4.3.2: every instance of the application is locked / unlocked */
    for (size_t i = 0; i < p->n_aids; i++) {
        struct plat_apdu *a = NULL;
        int rc = slot(s, PLAT_STEP_SET_STATUS, i, &a, err);
        if (rc == 0) {
            rc = commit(s, a,
                        ota_gp_set_status(OTA_GP_STATUS_SCOPE_APP,
                                          lock ? OTA_GP_SET_STATUS_LOCK : OTA_GP_SET_STATUS_UNLOCK,
                                          p->aids[i].b, p->aids[i].len, a->b, sizeof(a->b), err),
                        true);
        }
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

/*
 * Sensitive block i under the SD's DEK into out (spec 5.8.4.6.3 step 4a):
 * the key callback translates; dry builds (model bookkeeping) copy it as is.
 */
static int perso_translate(const struct p_params *p, size_t i, const struct plat_ctx *ctx, bool dry,
                           uint8_t *out, struct ota_err *err)
{
    if (dry) {
        memcpy(out, p->data[i], p->data_len[i]);
        return 0;
    }
    if (!ctx || !ctx->keys || !ctx->keys->translate) {
        return ota_fail(err, -ENOKEY, OTA_ERR_KEY,
                        "params.data[%zu]: sensitive data needs a key source (KEK to DEK)", i);
    }
    struct ota_err kerr;
    ota_err_clear(&kerr);
    int rc = ctx->keys->translate(ctx->keys->arg, p->kek[i], p->kek_kvn[i], p->owner, p->sd.b,
                                  p->sd.len, p->data[i], p->data_len[i], out, &kerr);
    if (rc < 0) {
        /* kerr names the KEK (or the missing DEK), never data */
        return ota_fail(err, rc, OTA_ERR_KEY, "params.data[%zu]: %.160s", i, kerr.msg);
    }
    return 0;
}

static int build_perso(const struct p_params *p, const struct plat_ctx *ctx, bool dry,
                       struct plat_script *s, struct ota_err *err)
{
    uint8_t dek_data[PLAT_BLOCK_MAX];
    struct plat_apdu *a = NULL;
    struct ota_gp_install in = {
        .kind = OTA_GP_INSTALL_FOR_PERSONALIZATION,
        .app_aid = p->aids[0].b,
        .app_aid_len = p->aids[0].len,
    };
    int rc = slot(s, PLAT_STEP_INSTALL_PERSO, 0, &a, err);

    if (rc == 0) {
        rc = commit(s, a, ota_gp_install(&in, a->b, sizeof(a->b), err), false);
    }
    for (size_t i = 0; rc == 0 && i < p->n_data; i++) {
        bool last = i + 1 == p->n_data;
        uint8_t p1 = (uint8_t)(p->store_flags | (last ? OTA_GP_STORE_LAST : 0));
        const uint8_t *d = p->data[i];
        if (p->kek[i]) {
            /* GP 2.2 11.11.2.1: b7b6 = 11, the SD decrypts with its DEK before forwarding */
            p1 = (uint8_t)(p1 | OTA_GP_STORE_ENC_ENCRYPTED);
            rc = perso_translate(p, i, ctx, dry, dek_data, err);
            d = dek_data;
        }
        if (rc == 0) {
            rc = slot(s, PLAT_STEP_STORE_DATA, 0, &a, err);
        }
        if (rc == 0) {
            rc = commit(
                s, a, ota_gp_store_data(p1, (uint8_t)i, d, p->data_len[i], a->b, sizeof(a->b), err),
                last);
        }
    }
    OPENSSL_cleanse(dek_data, sizeof(dek_data));
    return rc;
}

static int build_sd_create(const struct p_params *p, struct plat_script *s, struct ota_err *err)
{
    /* GP 2.2 11.5: an SSD is an instance of the SD package, installed selectable */
    return add_install(s, &p->files[0].aid, &p->mods[0], 0, true, err);
}

static int build_sd_delete(const struct p_params *p, struct plat_script *s, struct ota_err *err)
{
    struct plat_apdu *a = NULL;
    int rc = slot(s, PLAT_STEP_DELETE, 0, &a, err);
    if (rc == 0) {
        rc = commit(
            s, a,
            ota_gp_delete(p->aids[0].b, p->aids[0].len, false, NULL, 0, a->b, sizeof(a->b), err),
            true);
    }
    return rc;
}

static void material_wipe(struct plat_key_material *km)
{
    for (size_t i = 0; i < OTA_GP_PUT_KEY_MAX; i++) {
        ota_key_wipe(&km->keys[i]);
    }
    ota_key_wipe(&km->dek);
    OPENSSL_cleanse(km, sizeof(*km));
}

/*
 * PUT KEY (spec 5.8.3.2) with the material of the key callback; dry (model
 * bookkeeping) writes a placeholder of the right step instead.
 */
static int build_key_update(const struct p_params *p, const struct plat_ctx *ctx, bool dry,
                            struct plat_script *s, struct ota_err *err)
{
    struct plat_key_material km;
    struct ota_crypto *cx = NULL;
    struct plat_apdu *a = NULL;
    int rc = slot(s, PLAT_STEP_PUT_KEY, 0, &a, err);

    if (rc < 0) {
        return rc;
    }
    if (dry) {
        static const uint8_t ph[] = {OTA_GP_CLA, OTA_GP_INS_PUT_KEY, 0, 0, 0};
        memcpy(a->b, ph, sizeof(ph));
        rc = commit(s, a, (int)sizeof(ph), true);
    } else {
        if (!ctx || !ctx->keys || !ctx->keys->keys) {
            return ota_fail(err, -ENOKEY, OTA_ERR_KEY, "sd-key-update: no key source configured");
        }
        memset(&km, 0, sizeof(km));
        struct ota_err kerr;
        ota_err_clear(&kerr);
        rc =
            ctx->keys->keys(ctx->keys->arg, p->sd.b, p->sd.len, p->old_kvn, p->new_kvn, &km, &kerr);
        if (rc < 0) {
            material_wipe(&km);
            return ota_fail(err, -ENOKEY, OTA_ERR_KEY, "sd-key-update: no keys for kvn %u: %.100s",
                            (unsigned)p->new_kvn, kerr.msg);
        }
        cx = ctx->keys->cx;
        if (!cx) {
            rc = ota_crypto_new(&cx, err);
        }
        if (rc == 0) {
            rc = ota_gp_put_key(cx, p->old_kvn, p->new_kvn, p->key_id, km.keys, km.n_keys, &km.dek,
                                a->b, sizeof(a->b), err);
            rc = commit(s, a, rc, true);
        }
        if (cx != ctx->keys->cx) {
            ota_crypto_free(cx);
        }
        material_wipe(&km);
    }
    if (rc == 0 && p->set_perso) {
        /* spec 5.8.3.1.1: after the key update the SD becomes PERSONALIZED */
        rc = slot(s, PLAT_STEP_SET_STATUS, 0, &a, err);
        if (rc == 0) {
            rc = commit(s, a,
                        ota_gp_set_status(OTA_GP_STATUS_SCOPE_APP, OTA_GP_SD_PERSONALIZED, p->sd.b,
                                          p->sd.len, a->b, sizeof(a->b), err),
                        true);
        }
    }
    return rc;
}

static int add_get_status(struct plat_script *s, uint8_t p1, bool next, struct ota_err *err)
{
    struct plat_apdu *a = NULL;
    uint8_t p2 = (uint8_t)(OTA_GP_STATUS_TLV | (next ? OTA_GP_STATUS_NEXT : 0));
    int rc = slot(s, PLAT_STEP_GET_STATUS, p1, &a, err);
    if (rc == 0) {
        rc = commit(s, a, ota_gp_get_status(p1, p2, NULL, 0, NULL, 0, a->b, sizeof(a->b), err),
                    true);
    }
    return rc;
}

/* Info sync (spec 5.8.4.5, 5.8.7.1): free space, then the registry in the TLV format. */
static int build_info(const struct p_params *p, struct plat_script *s, struct ota_err *err)
{
    uint8_t elf_p1 = p->with_modules ? OTA_GP_STATUS_ELF_MOD : OTA_GP_STATUS_ELF;
    struct plat_apdu *a = NULL;
    int rc = 0;

    if (p->scope & P_SCOPE_SPACE) {
        rc = slot(s, PLAT_STEP_GET_DATA, 0, &a, err);
        if (rc == 0) {
            rc = commit(s, a, ota_gp_get_data(0xFF21, a->b, sizeof(a->b), err), true);
        }
    }
    if (rc == 0 && (p->scope & P_SCOPE_ISD)) {
        rc = add_get_status(s, OTA_GP_STATUS_ISD, false, err);
    }
    if (rc == 0 && (p->scope & P_SCOPE_APPS)) {
        rc = add_get_status(s, OTA_GP_STATUS_APPS, p->next, err);
    }
    if (rc == 0 && (p->scope & P_SCOPE_ELFS)) {
        rc = add_get_status(s, elf_p1, p->next, err);
    }
    return rc;
}

/* Build from parsed params; dry skips the key callback (model bookkeeping only). */
static int build_parsed(const struct p_params *p, const struct plat_ctx *ctx, bool dry,
                        struct plat_script *out, struct ota_err *err)
{
    const struct plat_model *m = ctx ? ctx->model : NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    out->op = p->op;
    memcpy(out->tar, p->tar, 3);
    out->sd_aid = p->sd;
    switch (p->op) {
    case TASK_OP_APP_DOWNLOAD:
        rc = build_download(p, m, out, err);
        break;
    case TASK_OP_APP_DELETE:
        rc = build_delete(p, m, out, err);
        break;
    case TASK_OP_APP_LOCK:
    case TASK_OP_APP_UNLOCK:
        rc = build_set_status(p, p->op == TASK_OP_APP_LOCK, out, err);
        break;
    case TASK_OP_APP_PERSONALIZE:
        rc = build_perso(p, ctx, dry, out, err);
        break;
    case TASK_OP_SD_CREATE:
        rc = build_sd_create(p, out, err);
        break;
    case TASK_OP_SD_DELETE:
        rc = build_sd_delete(p, out, err);
        break;
    case TASK_OP_SD_KEY_UPDATE:
        rc = build_key_update(p, ctx, dry, out, err);
        break;
    default:
        rc = build_info(p, out, err);
        break;
    }
    if (rc == -EMSGSIZE) {
        /* a GP field overflowed because of what the params ask for: bad input, not a fault */
        rc = -EINVAL;
    }
    if (rc < 0) {
        plat_script_fini(out);
    }
    return rc;
}

int plat_build_ex(enum task_op op, const char *params_json, const struct plat_ctx *ctx,
                  struct plat_script *out, struct ota_err *err)
{
    struct p_params p;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = p_parse(op, params_json, &p, err);
    if (rc < 0) {
        return rc;
    }
    rc = build_parsed(&p, ctx, false, out, err);
    p_fini(&p);
    return rc;
}

int plat_build(enum task_op op, const char *params_json, struct plat_script *out,
               struct ota_err *err)
{
    return plat_build_ex(op, params_json, NULL, out, err);
}

/* ---- SCP80 form -------------------------------------------------------------------- */

int plat_build_rapdu(const struct plat_script *s, uint8_t tar[3], uint8_t *dst, size_t cap,
                     size_t *len, struct ota_err *err)
{
    struct ota_apdu *apdus;
    size_t body = 0, total;
    int rc = 0;

    if (!s || s->n == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "rapdu: empty script");
    }
    for (size_t i = 0; i < s->n; i++) {
        body += ota_rapdu_tlv_hdr_len(OTA_RAPDU_TAG_C_APDU, s->apdus[i].len) + s->apdus[i].len;
    }
    total = body + ota_rapdu_tlv_hdr_len(OTA_RAPDU_TAG_CMD_DEF, body);
    if (total > cap) {
        /* one SCP80 command packet carries the whole script (queue/eng_dispatch.c) */
        return ota_fail(err, -E2BIG, OTA_ERR_OVERSIZE,
                        "%s: script of %zu octets (%zu APDUs) exceeds the %zu-octet SCP80 "
                        "packet budget; use the push + SCP02 channel",
                        task_op_name(s->op), total, s->n, cap);
    }
    apdus = calloc(s->n, sizeof(*apdus));
    if (!apdus) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "rapdu: out of memory");
    }
    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        rc = ota_apdu_parse(s->apdus[i].b, s->apdus[i].len, &apdus[i], err);
    }
    if (rc == 0) {
        rc = ota_rapdu_exp_cmd_build_apdus(apdus, s->n, false, dst, cap, err);
    }
    free(apdus);
    if (rc < 0) {
        return rc;
    }
    memcpy(tar, s->tar, 3);
    *len = (size_t)rc;
    return 0;
}

int plat_engine_build_script(void *arg, const struct eng_task_view *t, uint8_t tar[3],
                             uint8_t *script, size_t cap, size_t *len, struct ota_err *err)
{
    const struct plat_ctx *ctx = arg;
    struct plat_ctx local;
    struct plat_script s;
    int rc;

    switch (t->op) {
    case TASK_OP_PUSH:
    case TASK_OP_SCP80:
    case TASK_OP_CUSTOM:
        return ota_fail(err, -ENOTSUP, OTA_ERR_ARG, "%s: no platform script", task_op_name(t->op));
    default:
        break;
    }
    memset(&local, 0, sizeof(local));
    if (ctx) {
        local = *ctx;
        if (ctx->model_for) {
            local.model = ctx->model_for(ctx->model_arg, t->seid);
        }
    }
    rc = plat_build_ex(t->op, t->params, &local, &s, err);
    if (rc == 0) {
        rc = plat_build_rapdu(&s, tar, script, cap, len, err);
    }
    plat_script_fini(&s);
    return rc;
}

int plat_result_from_exp(const struct plat_script *s, const uint8_t *data, size_t len,
                         struct ota_rapdu_rapdu *rapdus, size_t cap, struct plat_result *r,
                         struct ota_err *err)
{
    struct ota_rapdu_exp_rsp rsp;
    int rc = ota_rapdu_exp_rsp_parse(data, len, &rsp, rapdus, cap, err);
    size_t n = 0;

    if (rc < 0) {
        return rc;
    }
    while (n < rsp.n_rapdus && n < s->n && ota_sw_ok(rapdus[n].sw)) {
        n++;
    }
    r->n_done = n;
    r->rapdus = rapdus;
    r->n_rapdus = rsp.n_rapdus;
    return 0;
}

/* ---- the per-SE model (spec 5.8.7) ------------------------------------------------------ */

static const char *const state_names[PLAT_APP_STATE__COUNT] = {
    [PLAT_APP_READY] = "ready",
    [PLAT_APP_LOADED] = "loaded",
    [PLAT_APP_INSTANTIATED] = "instantiated",
    [PLAT_APP_PERSONALIZED] = "personalized",
    [PLAT_APP_USABLE] = "usable",
    [PLAT_APP_LOCKED] = "locked",
};

static const char *const event_names[PLAT_APP_EVENT__COUNT] = {
    [PLAT_EV_LOAD] = "load",
    [PLAT_EV_INSTALL] = "install",
    [PLAT_EV_MAKE_SELECTABLE] = "make-selectable",
    [PLAT_EV_PERSONALIZE] = "personalize",
    [PLAT_EV_SUBSCRIBE] = "subscribe",
    [PLAT_EV_UNSUBSCRIBE] = "unsubscribe",
    [PLAT_EV_LOCK] = "lock",
    [PLAT_EV_UNLOCK] = "unlock",
    [PLAT_EV_DELETE_INSTANCE] = "delete-instance",
    [PLAT_EV_DELETE] = "delete",
};

const char *plat_app_state_name(enum plat_app_state s)
{
    return ota_enum_name(state_names, OTA_ARRAY_SIZE(state_names), s);
}

const char *plat_app_event_name(enum plat_app_event e)
{
    return ota_enum_name(event_names, OTA_ARRAY_SIZE(event_names), e);
}

int plat_app_state_parse(const char *name, enum plat_app_state *out)
{
    for (int i = 0; i < PLAT_APP_STATE__COUNT; i++) {
        if (name && strcmp(name, state_names[i]) == 0) {
            *out = (enum plat_app_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

#define X 0xFF /* illegal */
#define R PLAT_APP_READY
#define L PLAT_APP_LOADED
#define I PLAT_APP_INSTANTIATED
#define P PLAT_APP_PERSONALIZED
#define U PLAT_APP_USABLE
#define K PLAT_APP_LOCKED
/*
 * Spec 5.8.7.2 (figure 5-7), one row per state, one column per event:
 *   load  install  make-sel  perso  subscribe  unsubscribe  lock  unlock  del-inst  delete
 * Notes: make-selectable straight from Instantiated is the app that needs neither
 * personalization nor activation; personalize on Usable is the personal-data update
 * of 5.8.4.4; subscribe / unsubscribe are the business platform's notices (no SE
 * command); lock only from Usable ("other states offer no lock"); delete-instance
 * goes back to Loaded, delete (with the load file) to Ready.
 */
static const uint8_t app_next[PLAT_APP_STATE__COUNT][PLAT_APP_EVENT__COUNT] = {
    [R] = {L, X, X, X, X, X, X, X, X, X}, [L] = {X, I, X, X, X, X, X, X, X, R},
    [I] = {X, X, U, P, X, X, X, X, L, R}, [P] = {X, X, X, P, U, I, X, X, L, R},
    [U] = {X, X, X, U, X, I, K, X, L, R}, [K] = {X, X, X, X, X, X, X, U, L, R},
};
#undef R
#undef L
#undef I
#undef P
#undef U
#undef K

int plat_app_next(enum plat_app_state from, enum plat_app_event ev, enum plat_app_state *to)
{
    if ((unsigned)from >= PLAT_APP_STATE__COUNT || (unsigned)ev >= PLAT_APP_EVENT__COUNT ||
        app_next[from][ev] == X) {
        return -EPERM;
    }
    *to = (enum plat_app_state)app_next[from][ev];
    return 0;
}
#undef X

void plat_model_init(struct plat_model *m)
{
    memset(m, 0, sizeof(*m));
}

void plat_model_set_space(struct plat_model *m, uint32_t free_nv, uint32_t free_v)
{
    m->space_known = true;
    m->free_nv = free_nv;
    m->free_v = free_v;
}

static void aid_set(struct plat_aid *a, const uint8_t *b, size_t len)
{
    memset(a, 0, sizeof(*a));
    if (len <= OTA_GP_AID_MAX) {
        a->len = (uint8_t)len;
        if (len) {
            memcpy(a->b, b, len);
        }
    }
}

const struct plat_model_app *plat_model_app(const struct plat_model *m, const uint8_t *aid,
                                            size_t aid_len)
{
    for (size_t i = 0; i < m->n_apps; i++) {
        if (aid_eq(&m->apps[i].aid, aid, aid_len)) {
            return &m->apps[i];
        }
    }
    return NULL;
}

const struct plat_model_elf *plat_model_elf(const struct plat_model *m, const uint8_t *aid,
                                            size_t aid_len)
{
    for (size_t i = 0; i < m->n_elfs; i++) {
        if (aid_eq(&m->elfs[i].aid, aid, aid_len)) {
            return &m->elfs[i];
        }
    }
    return NULL;
}

const struct plat_model_sd *plat_model_sd(const struct plat_model *m, const uint8_t *aid,
                                          size_t aid_len)
{
    for (size_t i = 0; i < m->n_sds; i++) {
        if (aid_eq(&m->sds[i].aid, aid, aid_len)) {
            return &m->sds[i];
        }
    }
    return NULL;
}

static struct plat_model_app *app_mut(struct plat_model *m, const struct plat_aid *a)
{
    return (struct plat_model_app *)plat_model_app(m, a->b, a->len);
}

static struct plat_model_elf *elf_mut(struct plat_model *m, const struct plat_aid *a)
{
    return (struct plat_model_elf *)plat_model_elf(m, a->b, a->len);
}

static void app_remove(struct plat_model *m, struct plat_model_app *a)
{
    size_t i = (size_t)(a - m->apps);
    memmove(&m->apps[i], &m->apps[i + 1], (m->n_apps - i - 1) * sizeof(*a));
    m->n_apps--;
}

static void elf_remove(struct plat_model *m, struct plat_model_elf *e)
{
    size_t i = (size_t)(e - m->elfs);
    memmove(&m->elfs[i], &m->elfs[i + 1], (m->n_elfs - i - 1) * sizeof(*e));
    m->n_elfs--;
}

/* The one place an app's state changes: checks the table, keeps the GP state in step. */
static int app_event(struct plat_model *m, struct plat_model_app *a, enum plat_app_event ev,
                     struct ota_err *err)
{
    enum plat_app_state to;

    if (plat_app_next(a->state, ev, &to) < 0) {
        return ota_fail(err, -EPERM, OTA_ERR_STATE, "app: %s in state %s is not allowed",
                        plat_app_event_name(ev), plat_app_state_name(a->state));
    }
    switch (ev) {
    case PLAT_EV_LOAD:
    case PLAT_EV_DELETE_INSTANCE:
        a->lcs = 0;
        break;
    case PLAT_EV_INSTALL:
        a->lcs = OTA_GP_APP_INSTALLED;
        break;
    case PLAT_EV_MAKE_SELECTABLE:
        a->lcs = OTA_GP_APP_SELECTABLE;
        break;
    case PLAT_EV_PERSONALIZE:
        a->lcs = (uint8_t)((a->lcs & OTA_GP_LOCKED_BIT) | OTA_GP_SD_PERSONALIZED);
        break;
    case PLAT_EV_LOCK:
        a->lcs |= OTA_GP_LOCKED_BIT;
        break;
    case PLAT_EV_UNLOCK:
        a->lcs &= (uint8_t)~OTA_GP_LOCKED_BIT;
        break;
    default:
        break;
    }
    a->state = to;
    if (to == PLAT_APP_READY) {
        /* Ready is "not on the card": the entry goes */
        app_remove(m, a);
    }
    return 0;
}

int plat_model_event(struct plat_model *m, const uint8_t *aid, size_t aid_len,
                     enum plat_app_event ev, struct ota_err *err)
{
    struct plat_aid k;

    aid_set(&k, aid, aid_len);
    struct plat_model_app *a = app_mut(m, &k);
    if (!a) {
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING, "model: no such application");
    }
    return app_event(m, a, ev, err);
}

/* Space a download still needs: its files not yet on the card and its instances. */
static void download_need(const struct plat_model *m, const struct p_params *p, uint32_t *nv,
                          uint32_t *v)
{
    uint64_t n = 0, w = 0;

    for (size_t i = 0; i < p->n_files; i++) {
        const struct plat_model_elf *e = plat_model_elf(m, p->files[i].aid.b, p->files[i].aid.len);
        if (!e || e->partial) {
            /* C4 + BER length header (up to 4 octets) + DAP */
            n += p->files[i].len + 4 + (i + 1 == p->n_files ? p->dap_len : 0);
        }
    }
    for (size_t i = 0; i < p->n_mods; i++) {
        const struct plat_model_app *a = plat_model_app(m, p->mods[i].inst.b, p->mods[i].inst.len);
        if (!a || a->state < PLAT_APP_INSTANTIATED) {
            n += p->mods[i].nv;
            w += p->mods[i].v;
        }
    }
    *nv = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    *v = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
}

/* Whether event ev is legal for the known app aid (unknown apps: the model cannot tell). */
static int check_event(const struct plat_model *m, const struct plat_aid *aid,
                       enum plat_app_event ev, struct ota_err *err)
{
    const struct plat_model_app *a = plat_model_app(m, aid->b, aid->len);
    enum plat_app_state to;

    if (a && plat_app_next(a->state, ev, &to) < 0) {
        return ota_fail(err, -EPERM, OTA_ERR_STATE, "%s: application in state %s",
                        plat_app_event_name(ev), plat_app_state_name(a->state));
    }
    return 0;
}

int plat_model_begin(struct plat_model *m, enum task_op op, const char *params_json,
                     struct ota_err *err)
{
    struct p_params p;
    uint32_t nv = 0, v = 0;
    int rc = p_parse(op, params_json, &p, err);

    if (rc < 0) {
        return rc;
    }
    switch (op) {
    case TASK_OP_APP_DOWNLOAD:
        for (size_t i = 0; rc == 0 && i < p.n_mods; i++) {
            const struct plat_model_app *a =
                plat_model_app(m, p.mods[i].inst.b, p.mods[i].inst.len);
            /* resumable: not yet there, Loaded, or Instantiated and still to be made selectable */
            if (a && a->state > PLAT_APP_INSTANTIATED) {
                rc =
                    ota_fail(err, -EPERM, OTA_ERR_STATE, "app-download: modules[%zu] is already %s",
                             i, plat_app_state_name(a->state));
            }
        }
        download_need(m, &p, &nv, &v);
        break;
    case TASK_OP_APP_DELETE:
        rc = check_event(m, &p.aids[0], p.with_elf ? PLAT_EV_DELETE : PLAT_EV_DELETE_INSTANCE, err);
        break;
    case TASK_OP_APP_LOCK:
    case TASK_OP_APP_UNLOCK:
        for (size_t i = 0; rc == 0 && i < p.n_aids; i++) {
            rc = check_event(m, &p.aids[i], op == TASK_OP_APP_LOCK ? PLAT_EV_LOCK : PLAT_EV_UNLOCK,
                             err);
        }
        break;
    case TASK_OP_APP_PERSONALIZE:
        rc = check_event(m, &p.aids[0], PLAT_EV_PERSONALIZE, err);
        break;
    case TASK_OP_SD_CREATE:
        if (plat_model_sd(m, p.mods[0].inst.b, p.mods[0].inst.len)) {
            rc = ota_fail(err, -EEXIST, OTA_ERR_STATE, "sd-create: the SD exists already");
        }
        nv = p.mods[0].nv;
        v = p.mods[0].v;
        break;
    case TASK_OP_SD_DELETE:
        /* spec 5.8.3.3.1: the SD's applications must be deleted first */
        for (size_t i = 0; rc == 0 && i < m->n_apps; i++) {
            if (aid_eq(&m->apps[i].sd, p.aids[0].b, p.aids[0].len)) {
                rc = ota_fail(err, -EPERM, OTA_ERR_STATE,
                              "sd-delete: the SD still holds applications");
            }
        }
        break;
    default:
        break;
    }
    if (rc == 0 && (nv || v)) {
        if (m->reserved_nv || m->reserved_v) {
            rc = ota_fail(err, -EBUSY, OTA_ERR_STATE, "model: another operation holds space");
        } else if (m->space_known && ((uint64_t)m->reserved_nv + nv > m->free_nv ||
                                      (uint64_t)m->reserved_v + v > m->free_v)) {
            rc = ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE,
                          "%s: needs %u non-volatile / %u volatile octets, %u / %u free",
                          task_op_name(op), (unsigned)nv, (unsigned)v, (unsigned)m->free_nv,
                          (unsigned)m->free_v);
        } else {
            m->reserved_nv = nv;
            m->reserved_v = v;
        }
    }
    p_fini(&p);
    return rc;
}

void plat_model_release(struct plat_model *m)
{
    m->reserved_nv = 0;
    m->reserved_v = 0;
}

static void space_commit(struct plat_model *m, uint64_t nv, uint64_t v)
{
    if (!m->space_known) {
        return;
    }
    m->free_nv = nv > m->free_nv ? 0 : (uint32_t)(m->free_nv - nv);
    m->free_v = v > m->free_v ? 0 : (uint32_t)(m->free_v - v);
}

static void space_free(struct plat_model *m, uint64_t nv)
{
    if (m->space_known) {
        uint64_t f = (uint64_t)m->free_nv + nv;
        m->free_nv = f > UINT32_MAX ? UINT32_MAX : (uint32_t)f;
    }
}

/* Add an app entry in state Ready (the caller applies events). NULL when the table is full. */
static struct plat_model_app *app_add(struct plat_model *m, const struct plat_aid *aid,
                                      const struct plat_aid *elf, const struct plat_aid *sd)
{
    if (m->n_apps == PLAT_MODEL_MAX_APPS) {
        return NULL;
    }
    struct plat_model_app *a = &m->apps[m->n_apps++];
    memset(a, 0, sizeof(*a));
    a->aid = *aid;
    a->elf = *elf;
    if (sd && !aid_eq(sd, plat_isd_aid, sizeof(plat_isd_aid))) {
        a->sd = *sd;
    }
    a->state = PLAT_APP_READY;
    return a;
}

static int apply_download(struct plat_model *m, const struct p_params *p,
                          const struct plat_script *s, size_t done, struct ota_err *err)
{
    const struct plat_aid *main_elf = &p->files[p->n_files - 1].aid;
    uint64_t nv = 0, v = 0;
    uint32_t loaded[P_MAX_FILES] = {0};
    int rc = 0;

    for (size_t i = 0; i < done && i < s->n; i++) {
        const struct plat_apdu *a = &s->apdus[i];
        struct plat_model_elf *e;
        struct plat_model_app *ap;
        int r = 0;

        switch (a->step) {
        case PLAT_STEP_INSTALL_LOAD:
            e = elf_mut(m, &p->files[a->obj].aid);
            if (!e && m->n_elfs < PLAT_MODEL_MAX_ELFS) {
                e = &m->elfs[m->n_elfs++];
                memset(e, 0, sizeof(*e));
                e->aid = p->files[a->obj].aid;
            }
            if (e) {
                e->partial = true;
                e->size = 0;
            }
            break;
        case PLAT_STEP_LOAD:
            loaded[a->obj] += (uint32_t)(a->len - 5);
            e = elf_mut(m, &p->files[a->obj].aid);
            if (e && a->last) {
                e->partial = false;
                e->size = loaded[a->obj];
                nv += loaded[a->obj];
            }
            if (e && a->last && a->obj + 1u == p->n_files) {
                /* spec 5.8.7.2: Loaded once the application and its extensions are loaded */
                for (size_t k = 0; k < p->n_mods; k++) {
                    ap = app_mut(m, &p->mods[k].inst);
                    if (!ap) {
                        ap = app_add(m, &p->mods[k].inst, main_elf, &p->sd);
                    }
                    if (ap && ap->state == PLAT_APP_READY) {
                        r = app_event(m, ap, PLAT_EV_LOAD, err);
                    }
                }
            }
            break;
        case PLAT_STEP_INSTALL:
            ap = app_mut(m, &p->mods[a->obj].inst);
            if (!ap) {
                /* load file already on the card (resume): the app enters as Loaded */
                ap = app_add(m, &p->mods[a->obj].inst, main_elf, &p->sd);
                if (ap) {
                    ap->state = PLAT_APP_LOADED;
                }
            }
            if (!ap) {
                r = ota_fail(err, -ENOSPC, OTA_ERR_LIMIT, "model: application table full");
                break;
            }
            r = app_event(m, ap, PLAT_EV_INSTALL, err);
            if (r == 0 && p->selectable) {
                r = app_event(m, ap, PLAT_EV_MAKE_SELECTABLE, err);
            }
            ap->nv_reserved = p->mods[a->obj].nv;
            nv += p->mods[a->obj].nv;
            v += p->mods[a->obj].v;
            break;
        case PLAT_STEP_MAKE_SELECTABLE:
            ap = app_mut(m, &p->mods[a->obj].inst);
            r = ap ? app_event(m, ap, PLAT_EV_MAKE_SELECTABLE, err) : 0;
            break;
        default:
            break;
        }
        rc = rc ? rc : r;
    }
    space_commit(m, nv, v);
    return rc;
}

static int apply_delete(struct plat_model *m, const struct p_params *p, const struct plat_script *s,
                        size_t done, struct ota_err *err)
{
    if (done < 1 || s->n < 1) {
        return 0;
    }
    struct plat_model_app *a = app_mut(m, &p->aids[0]);
    if (s->apdus[0].obj == 1) {
        /* the load file went with every instance of it */
        struct plat_aid elf = p->elf.len ? p->elf : (a ? a->elf : p->elf);
        int rc = 0;
        for (size_t i = m->n_apps; i-- > 0;) {
            if (aid_eq(&m->apps[i].elf, elf.b, elf.len)) {
                space_free(m, m->apps[i].nv_reserved);
                int r = app_event(m, &m->apps[i], PLAT_EV_DELETE, err);
                if (r < 0) {
                    app_remove(m, &m->apps[i]); /* the card says it is gone */
                    rc = rc ? rc : r;
                }
            }
        }
        struct plat_model_elf *e = elf_mut(m, &elf);
        if (e) {
            space_free(m, e->size);
            elf_remove(m, e);
        }
        return rc;
    }
    if (!a) {
        return 0;
    }
    space_free(m, a->nv_reserved);
    a->nv_reserved = 0;
    return app_event(m, a, PLAT_EV_DELETE_INSTANCE, err);
}

/* Info sync results: GET DATA FF21 and the GET STATUS answers, as far as they ran. */
static int apply_info(struct plat_model *m, const struct plat_script *s,
                      const struct plat_result *r, struct ota_err *err)
{
    enum { MAXE = 64 };
    struct ota_gp_status_entry apps[MAXE], elfs[MAXE];
    struct plat_status st;
    int rc = 0;

    memset(&st, 0, sizeof(st));
    st.apps = apps;
    st.elfs = elfs;
    for (size_t i = 0; i < s->n && i < r->n_rapdus && rc == 0; i++) {
        const struct plat_apdu *a = &s->apdus[i];
        const struct ota_rapdu_rapdu *ra = &r->rapdus[i];
        bool ok = ota_sw_ok(ra->sw);
        /* GP 2.2 11.4.3: 6310 = more entries follow; 6A88 = no (more) entries */
        bool more = ra->sw == 0x6310, none = ra->sw == 0x6A88;
        bool next = (a->b[3] & OTA_GP_STATUS_NEXT) != 0;

        if (a->step == PLAT_STEP_GET_DATA && ok) {
            rc = plat_parse_space(ra->data, ra->data_len, &st.free_nv, &st.free_v, err);
            st.has_space = rc == 0;
        } else if (a->step == PLAT_STEP_GET_STATUS && a->obj != OTA_GP_STATUS_ISD) {
            bool is_apps = a->obj == OTA_GP_STATUS_APPS;
            if (ok || more) {
                rc = ota_gp_status_parse_tlv(ra->data, ra->data_len, is_apps ? apps : elfs, MAXE,
                                             is_apps ? &st.n_apps : &st.n_elfs, err);
            }
            /* a part of the list proves nothing about the entries not in it */
            bool partial = more || next;
            if (rc == 0 && (ok || more || (none && !next))) {
                *(is_apps ? &st.has_apps : &st.has_elfs) = true;
                *(is_apps ? &st.partial_apps : &st.partial_elfs) = partial;
            }
        }
        if (!ok) {
            break; /* the card stopped the script there */
        }
    }
    if (rc < 0) {
        return rc;
    }
    return plat_model_from_status(m, &st, err);
}

int plat_model_apply_result(struct plat_model *m, enum task_op op, const char *params_json,
                            const struct plat_result *r, struct ota_err *err)
{
    struct p_params p;
    struct plat_script s;
    struct plat_ctx ctx = {.model = m};
    int rc;

    rc = p_parse(op, params_json, &p, err);
    if (rc < 0) {
        plat_model_release(m);
        return rc;
    }
    rc = build_parsed(&p, &ctx, true, &s, err);
    plat_model_release(m);
    if (rc < 0) {
        p_fini(&p);
        return rc;
    }
    size_t done = r->n_done < s.n ? r->n_done : s.n;
    switch (op) {
    case TASK_OP_APP_DOWNLOAD:
        rc = apply_download(m, &p, &s, done, err);
        break;
    case TASK_OP_APP_DELETE:
        rc = apply_delete(m, &p, &s, done, err);
        break;
    case TASK_OP_APP_LOCK:
    case TASK_OP_APP_UNLOCK:
        for (size_t i = 0; i < done; i++) {
            struct plat_model_app *a = app_mut(m, &p.aids[s.apdus[i].obj]);
            int e = a ? app_event(m, a, op == TASK_OP_APP_LOCK ? PLAT_EV_LOCK : PLAT_EV_UNLOCK, err)
                      : 0;
            rc = rc ? rc : e;
        }
        break;
    case TASK_OP_APP_PERSONALIZE:
        if (done == s.n) {
            struct plat_model_app *a = app_mut(m, &p.aids[0]);
            rc = a ? app_event(m, a, PLAT_EV_PERSONALIZE, err) : 0;
        }
        break;
    case TASK_OP_SD_CREATE:
        if (done == s.n && !plat_model_sd(m, p.mods[0].inst.b, p.mods[0].inst.len)) {
            if (m->n_sds == PLAT_MODEL_MAX_SDS) {
                rc = ota_fail(err, -ENOSPC, OTA_ERR_LIMIT, "model: SD table full");
                break;
            }
            struct plat_model_sd *sd = &m->sds[m->n_sds++];
            memset(sd, 0, sizeof(*sd));
            sd->aid = p.mods[0].inst;
            sd->lcs = OTA_GP_APP_SELECTABLE;
            space_commit(m, p.mods[0].nv, p.mods[0].v);
        }
        break;
    case TASK_OP_SD_DELETE:
        if (done == s.n) {
            struct plat_model_sd *sd =
                (struct plat_model_sd *)plat_model_sd(m, p.aids[0].b, p.aids[0].len);
            if (sd) {
                size_t i = (size_t)(sd - m->sds);
                memmove(&m->sds[i], &m->sds[i + 1], (m->n_sds - i - 1) * sizeof(*sd));
                m->n_sds--;
            }
        }
        break;
    case TASK_OP_SD_KEY_UPDATE: {
        struct plat_model_sd *sd = (struct plat_model_sd *)plat_model_sd(m, p.sd.b, p.sd.len);
        if (sd && done >= 1) {
            sd->kvn = p.new_kvn;
        }
        if (sd && p.set_perso && done >= 2) {
            sd->lcs = OTA_GP_SD_PERSONALIZED;
        }
        break;
    }
    default:
        rc = apply_info(m, &s, r, err);
        break;
    }
    plat_script_fini(&s);
    p_fini(&p);
    return rc;
}

int plat_parse_space(const uint8_t *p, size_t len, uint32_t *free_nv, uint32_t *free_v,
                     struct ota_err *err)
{
    struct ota_rapdu_tlv t, in;
    bool nv = false, v = false;
    uint32_t fnv = 0, fv = 0;
    int rc = ota_rapdu_tlv_get(p, len, false, &t, err);

    if (rc < 0) {
        return rc;
    }
    if (t.tag != 0xFF21) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TAG, "space: tag %04X, expected FF21", t.tag);
    }
    for (size_t off = 0; off < t.len; off += in.size) {
        rc = ota_rapdu_tlv_get(t.value + off, t.len - off, true, &in, err);
        if (rc < 0) {
            return rc;
        }
        if ((in.tag == 0x82 || in.tag == 0x83) && (in.len == 0 || in.len > 4)) {
            return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "space: tag %02X of %zu octets", in.tag,
                            in.len);
        }
        uint32_t val = 0;
        for (size_t k = 0; (in.tag == 0x82 || in.tag == 0x83) && k < in.len; k++) {
            val = val << 8 | in.value[k];
        }
        if (in.tag == 0x82) {
            fnv = val;
            nv = true;
        } else if (in.tag == 0x83) {
            fv = val;
            v = true;
        }
    }
    if (!nv || !v) {
        return ota_fail(err, -EBADMSG, OTA_ERR_MISSING, "space: 82 or 83 missing");
    }
    *free_nv = fnv;
    *free_v = fv;
    return 0;
}

/* The 5.8.7.2 state a GP state shows, given what the model knew (prev, or READY). */
static enum plat_app_state state_of_lcs(uint8_t lcs, enum plat_app_state prev)
{
    if (lcs & OTA_GP_LOCKED_BIT) {
        return PLAT_APP_LOCKED;
    }
    if (lcs == OTA_GP_APP_INSTALLED) {
        return PLAT_APP_INSTANTIATED;
    }
    if (lcs == OTA_GP_APP_SELECTABLE) {
        return prev == PLAT_APP_INSTANTIATED ? prev : PLAT_APP_USABLE;
    }
    if (lcs == OTA_GP_SD_PERSONALIZED) {
        /* subscription is the platform's knowledge: the card cannot show it */
        return prev == PLAT_APP_USABLE || prev == PLAT_APP_INSTANTIATED ? prev
                                                                        : PLAT_APP_PERSONALIZED;
    }
    return (lcs & OTA_GP_APP_SELECTABLE) == OTA_GP_APP_SELECTABLE ? PLAT_APP_USABLE
                                                                  : PLAT_APP_INSTANTIATED;
}

int plat_model_from_status(struct plat_model *m, const struct plat_status *st, struct ota_err *err)
{
    struct plat_model n = *m;

    if (st->has_elfs) {
        n.n_elfs = st->partial_elfs ? n.n_elfs : 0;
        for (size_t i = 0; i < st->n_elfs; i++) {
            const struct plat_model_elf *old =
                plat_model_elf(m, st->elfs[i].aid, st->elfs[i].aid_len);
            struct plat_model_elf *e =
                (struct plat_model_elf *)plat_model_elf(&n, st->elfs[i].aid, st->elfs[i].aid_len);
            if (!e && n.n_elfs == PLAT_MODEL_MAX_ELFS) {
                return ota_fail(err, -ENOSPC, OTA_ERR_LIMIT, "model: more than %d load files",
                                PLAT_MODEL_MAX_ELFS);
            }
            e = e ? e : &n.elfs[n.n_elfs++];
            memset(e, 0, sizeof(*e));
            aid_set(&e->aid, st->elfs[i].aid, st->elfs[i].aid_len);
            e->size = old ? old->size : 0;
        }
    }
    if (st->has_apps) {
        n.n_apps = st->partial_apps ? n.n_apps : 0;
        n.n_sds = st->partial_apps ? n.n_sds : 0;
        for (size_t i = 0; i < st->n_apps; i++) {
            const struct ota_gp_status_entry *g = &st->apps[i];
            if (g->priv_len && (g->priv[0] & 0x80)) {
                const struct plat_model_sd *old = plat_model_sd(m, g->aid, g->aid_len);
                struct plat_model_sd *sd =
                    (struct plat_model_sd *)plat_model_sd(&n, g->aid, g->aid_len);
                if (!sd && n.n_sds == PLAT_MODEL_MAX_SDS) {
                    return ota_fail(err, -ENOSPC, OTA_ERR_LIMIT, "model: more than %d SDs",
                                    PLAT_MODEL_MAX_SDS);
                }
                sd = sd ? sd : &n.sds[n.n_sds++];
                memset(sd, 0, sizeof(*sd));
                aid_set(&sd->aid, g->aid, g->aid_len);
                sd->lcs = g->lcs;
                sd->kvn = old ? old->kvn : 0;
                continue;
            }
            const struct plat_model_app *old = plat_model_app(m, g->aid, g->aid_len);
            struct plat_model_app *a =
                (struct plat_model_app *)plat_model_app(&n, g->aid, g->aid_len);
            if (!a && n.n_apps == PLAT_MODEL_MAX_APPS) {
                return ota_fail(err, -ENOSPC, OTA_ERR_LIMIT, "model: more than %d applications",
                                PLAT_MODEL_MAX_APPS);
            }
            a = a ? a : &n.apps[n.n_apps++];
            memset(a, 0, sizeof(*a));
            if (old) {
                *a = *old;
            }
            aid_set(&a->aid, g->aid, g->aid_len);
            if (g->elf_aid_len) {
                aid_set(&a->elf, g->elf_aid, g->elf_aid_len);
            }
            if (g->sd_aid_len) {
                aid_set(&a->sd, g->sd_aid, g->sd_aid_len);
            }
            a->lcs = g->lcs;
            a->state = state_of_lcs(g->lcs, old ? old->state : PLAT_APP_READY);
        }
        /* known apps whose instance is gone: Loaded while their load file stays */
        for (size_t i = 0; !st->partial_apps && i < m->n_apps; i++) {
            const struct plat_model_app *old = &m->apps[i];
            if (plat_model_app(&n, old->aid.b, old->aid.len) || n.n_apps == PLAT_MODEL_MAX_APPS) {
                continue;
            }
            if (old->elf.len && plat_model_elf(&n, old->elf.b, old->elf.len)) {
                struct plat_model_app *a = &n.apps[n.n_apps++];
                *a = *old;
                a->state = PLAT_APP_LOADED;
                a->lcs = 0;
                a->nv_reserved = 0;
            }
        }
    }
    if (st->has_space) {
        n.space_known = true;
        n.free_nv = st->free_nv;
        n.free_v = st->free_v;
    }
    *m = n;
    return 0;
}

/* ---- JSON ---------------------------------------------------------------------------- */

static json_t *aid_json(const struct plat_aid *a)
{
    static const char d[] = "0123456789ABCDEF";
    char h[2 * OTA_GP_AID_MAX + 1];

    if (a->len == 0) {
        return json_null();
    }
    for (size_t i = 0; i < a->len; i++) {
        h[2 * i] = d[a->b[i] >> 4];
        h[2 * i + 1] = d[a->b[i] & 15];
    }
    h[2 * a->len] = '\0';
    return json_string(h);
}

json_t *plat_model_to_json(const struct plat_model *m)
{
    json_t *apps = json_array(), *elfs = json_array(), *sds = json_array();
    json_t *o = json_object();
    bool ok = apps && elfs && sds && o;

    for (size_t i = 0; ok && i < m->n_apps; i++) {
        const struct plat_model_app *a = &m->apps[i];
        ok = json_array_append_new(apps,
                                   json_pack("{s:o,s:o,s:o,s:s,s:i,s:I}", "aid", aid_json(&a->aid),
                                             "elf", aid_json(&a->elf), "sd", aid_json(&a->sd),
                                             "state", plat_app_state_name(a->state), "lcs",
                                             (int)a->lcs, "nv", (json_int_t)a->nv_reserved)) == 0;
    }
    for (size_t i = 0; ok && i < m->n_elfs; i++) {
        const struct plat_model_elf *e = &m->elfs[i];
        ok = json_array_append_new(elfs,
                                   json_pack("{s:o,s:b,s:I}", "aid", aid_json(&e->aid), "partial",
                                             e->partial, "size", (json_int_t)e->size)) == 0;
    }
    for (size_t i = 0; ok && i < m->n_sds; i++) {
        const struct plat_model_sd *s = &m->sds[i];
        ok = json_array_append_new(sds, json_pack("{s:o,s:i,s:i}", "aid", aid_json(&s->aid), "lcs",
                                                  (int)s->lcs, "kvn", (int)s->kvn)) == 0;
    }
    if (ok) {
        ok = json_object_set_new(o, "free_nv",
                                 m->space_known ? json_integer(m->free_nv) : json_null()) == 0 &&
             json_object_set_new(o, "free_v",
                                 m->space_known ? json_integer(m->free_v) : json_null()) == 0 &&
             json_object_set_new(o, "reserved_nv", json_integer(m->reserved_nv)) == 0 &&
             json_object_set_new(o, "reserved_v", json_integer(m->reserved_v)) == 0 &&
             json_object_set(o, "apps", apps) == 0 && json_object_set(o, "elfs", elfs) == 0 &&
             json_object_set(o, "sds", sds) == 0;
    }
    json_decref(apps);
    json_decref(elfs);
    json_decref(sds);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int jm_aid(const json_t *o, const char *path, const char *key, bool req, struct plat_aid *a,
                  struct ota_err *err)
{
    json_t *v = json_object_get(o, key);
    if (json_is_null(v) && !req) {
        a->len = 0;
        return 0;
    }
    return j_aid(o, path, key, true, a, err);
}

static int jm_u32(const json_t *o, const char *path, const char *key, uint32_t max, uint32_t *out,
                  struct ota_err *err)
{
    return j_uint(o, path, key, true, 0, 0, max, out, err);
}

int plat_model_from_json(const json_t *j, struct plat_model *m, struct ota_err *err)
{
    static const char *const top[] = {"free_nv", "free_v", "reserved_nv", "reserved_v",
                                      "apps",    "elfs",   "sds",         NULL};
    static const char *const app_k[] = {"aid", "elf", "sd", "state", "lcs", "nv", NULL};
    static const char *const elf_k[] = {"aid", "partial", "size", NULL};
    static const char *const sd_k[] = {"aid", "lcs", "kvn", NULL};
    struct plat_model n;
    json_t *arr, *v;
    char path[48];
    size_t i;
    uint32_t u;
    int rc;

    plat_model_init(&n);
    rc = j_object(j, "model", err);
    if (rc == 0) {
        rc = only_keys(j, "model", top, err);
    }
    if (rc == 0) {
        n.space_known = !json_is_null(json_object_get(j, "free_nv"));
    }
    if (rc == 0 && n.space_known) {
        rc = jm_u32(j, "model", "free_nv", UINT32_MAX, &n.free_nv, err);
        if (rc == 0) {
            rc = jm_u32(j, "model", "free_v", UINT32_MAX, &n.free_v, err);
        }
    }
    if (rc == 0) {
        rc = jm_u32(j, "model", "reserved_nv", UINT32_MAX, &n.reserved_nv, err);
    }
    if (rc == 0) {
        rc = jm_u32(j, "model", "reserved_v", UINT32_MAX, &n.reserved_v, err);
    }
    if (rc == 0) {
        rc = j_array(j, "model", "apps", true, 0, PLAT_MODEL_MAX_APPS, &arr, err);
    }
    json_array_foreach(rc == 0 ? arr : NULL, i, v)
    {
        struct plat_model_app *a = &n.apps[n.n_apps++];
        const char *sn;
        snprintf(path, sizeof(path), "model.apps[%zu]", i);
        rc = rc ? rc : j_object(v, path, err);
        rc = rc ? rc : only_keys(v, path, app_k, err);
        rc = rc ? rc : jm_aid(v, path, "aid", true, &a->aid, err);
        rc = rc ? rc : jm_aid(v, path, "elf", false, &a->elf, err);
        rc = rc ? rc : jm_aid(v, path, "sd", false, &a->sd, err);
        sn = json_string_value(json_object_get(v, "state"));
        if (rc == 0 && (plat_app_state_parse(sn, &a->state) < 0 || a->state == PLAT_APP_READY)) {
            rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s.state: not a state on the card", path);
        }
        rc = rc ? rc : jm_u32(v, path, "lcs", 0xFF, &u, err);
        a->lcs = (uint8_t)u;
        rc = rc ? rc : jm_u32(v, path, "nv", UINT32_MAX, &a->nv_reserved, err);
    }
    if (rc == 0) {
        rc = j_array(j, "model", "elfs", true, 0, PLAT_MODEL_MAX_ELFS, &arr, err);
    }
    json_array_foreach(rc == 0 ? arr : NULL, i, v)
    {
        struct plat_model_elf *e = &n.elfs[n.n_elfs++];
        snprintf(path, sizeof(path), "model.elfs[%zu]", i);
        rc = rc ? rc : j_object(v, path, err);
        rc = rc ? rc : only_keys(v, path, elf_k, err);
        rc = rc ? rc : jm_aid(v, path, "aid", true, &e->aid, err);
        if (rc == 0 && !json_is_boolean(json_object_get(v, "partial"))) {
            rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s.partial: not true/false", path);
        }
        e->partial = json_is_true(json_object_get(v, "partial"));
        rc = rc ? rc : jm_u32(v, path, "size", UINT32_MAX, &e->size, err);
    }
    if (rc == 0) {
        rc = j_array(j, "model", "sds", true, 0, PLAT_MODEL_MAX_SDS, &arr, err);
    }
    json_array_foreach(rc == 0 ? arr : NULL, i, v)
    {
        struct plat_model_sd *s = &n.sds[n.n_sds++];
        snprintf(path, sizeof(path), "model.sds[%zu]", i);
        rc = rc ? rc : j_object(v, path, err);
        rc = rc ? rc : only_keys(v, path, sd_k, err);
        rc = rc ? rc : jm_aid(v, path, "aid", true, &s->aid, err);
        rc = rc ? rc : jm_u32(v, path, "lcs", 0xFF, &u, err);
        s->lcs = (uint8_t)u;
        rc = rc ? rc : jm_u32(v, path, "kvn", 0x7F, &u, err);
        s->kvn = (uint8_t)u;
    }
    if (rc < 0) {
        return rc;
    }
    *m = n;
    return 0;
}
