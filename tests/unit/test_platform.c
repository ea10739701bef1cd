/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gateway/platform.c: every platform operation builds and its APDUs run on
 * the simulator's GP card model (tests/sim/gpmodel.h) with 9000 and the
 * expected card state afterwards; bad params per operation name the key;
 * the 5.8.7.2 transition table (legal and illegal); space accounting;
 * download resume from an intermediate state; info sync rebuilding the
 * model from the card; the SCP80 expanded script round-tripping through
 * ota_rapdu_exp_cmd_parse and -E2BIG past the packet budget; JSON round trip.
 */
#include "gateway/platform.h"
#include "tests/sim/gpmodel.h"
#include "tests/support/tsupport.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define FREE_NV 65536u

static const uint8_t app1[] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10, 0x01};
static const uint8_t app2[] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10, 0x02};
static const uint8_t elf_main[] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x10};
static const uint8_t elf_ext[] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x20};
static const uint8_t ssd[] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x41, 0x01};

/* ---- helpers ---------------------------------------------------------------------------- */

/* "nn" octets of hex filler (value b) as a malloc'd string. */
static char *hex_fill(size_t n, unsigned b)
{
    char *s = malloc(2 * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        snprintf(s + 2 * i, 3, "%02X", (unsigned)((b + i) & 0xFF));
    }
    return s;
}

/* A download of a main file of main_len octets plus (optionally) an extension. */
static char *download_json(size_t main_len, bool ext, bool selectable, int n_mods)
{
    char *cap = hex_fill(main_len, 0x10), *ecap = hex_fill(300, 0x50);
    json_t *mods = json_array();
    for (int i = 0; i < n_mods; i++) {
        json_array_append_new(mods,
                              json_pack("{s:s,s:s,s:s,s:i}", "module_aid",
                                        i ? "A00000000310200B" : "A00000000310200A", "instance_aid",
                                        i ? "A000000003101002" : "A000000003101001", "privileges",
                                        "00", "nv_data", 100));
    }
    json_t *o = json_pack("{s:s,s:s,s:o,s:b}", "load_file_aid", "A00000000310", "load_file", cap,
                          "modules", mods, "selectable", selectable);
    if (ext) {
        json_object_set_new(
            o, "extensions",
            json_pack("[{s:s,s:s}]", "load_file_aid", "A00000000320", "load_file", ecap));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    free(cap);
    free(ecap);
    assert_non_null(s);
    return s;
}

/* Responses kept per APDU (the sim answers at most 256 octets). */
struct run {
    size_t n_done;
    uint16_t last_sw;
    struct ota_rapdu_rapdu rapdus[PLAT_MAX_APDUS];
    uint8_t data[64][256];
};

/* Run s on the card from APDU first, stopping at the first failing SW (TS 102 226 5.2). */
static void run_from(struct sim_gp_card *c, const struct plat_script *s, size_t first,
                     struct run *r)
{
    memset(r, 0, sizeof(*r));
    for (size_t i = first; i < s->n; i++) {
        struct ota_apdu a;
        size_t rl = 0;
        uint8_t *d = r->data[(i - first) % 64];
        assert_int_equal(ota_apdu_parse(s->apdus[i].b, s->apdus[i].len, &a, NULL), 0);
        uint16_t sw = sim_gp_run(c, &a, d, 256, &rl);
        r->rapdus[i - first].sw = sw;
        r->rapdus[i - first].data = rl ? d : NULL;
        r->rapdus[i - first].data_len = rl;
        r->last_sw = sw;
        if (!ota_sw_ok(sw)) {
            break;
        }
        r->n_done++;
    }
}

static void run_all_ok(struct sim_gp_card *c, const struct plat_script *s, struct run *r)
{
    run_from(c, s, 0, r);
    assert_int_equal(r->last_sw, 0x9000);
    assert_int_equal(r->n_done, s->n);
}

static void build_ok(enum task_op op, const char *params, const struct plat_ctx *ctx,
                     struct plat_script *s)
{
    struct ota_err err;
    int rc = plat_build_ex(op, params, ctx, s, &err);
    if (rc != 0) {
        fail_msg("build %s: %d %s", task_op_name(op), rc, err.msg);
    }
    assert_true(s->n > 0);
    for (size_t i = 0; i < s->n; i++) {
        assert_true(s->apdus[i].len >= 4 && s->apdus[i].len <= PLAT_APDU_MAX);
    }
}

static const struct sim_gp_elf *card_elf(const struct sim_gp_card *c, const uint8_t *aid,
                                         size_t len)
{
    for (size_t i = 0; i < SIM_GP_MAX_ELFS; i++) {
        if (c->elfs[i].used && c->elfs[i].aid.len == len &&
            memcmp(c->elfs[i].aid.b, aid, len) == 0) {
            return &c->elfs[i];
        }
    }
    return NULL;
}

/* Apply a full-success result to the model and check it took. */
static void apply_ok(struct plat_model *m, enum task_op op, const char *params, const struct run *r)
{
    struct plat_result res = {.n_done = r->n_done, .rapdus = r->rapdus, .n_rapdus = r->n_done};
    struct ota_err err;
    int rc = plat_model_apply_result(m, op, params, &res, &err);
    if (rc != 0) {
        fail_msg("apply %s: %d %s", task_op_name(op), rc, err.msg);
    }
}

/* ---- download ---------------------------------------------------------------------------- */

static void test_download_on_card(void **state)
{
    struct sim_gp_card c;
    struct plat_script s;
    struct run *r = calloc(1, sizeof(*r));
    char *params = download_json(1000, true, true, 2);

    (void)state;
    sim_gp_init(&c, FREE_NV);
    build_ok(TASK_OP_APP_DOWNLOAD, params, NULL, &s);
    /* extension first (spec 5.8.4.1): INSTALL [for load] of A00000000320 */
    assert_int_equal(s.apdus[0].step, PLAT_STEP_INSTALL_LOAD);
    assert_memory_equal(s.apdus[0].b, "\x80\xE6\x02\x00", 4);
    assert_memory_equal(s.apdus[0].b + 6, elf_ext, sizeof(elf_ext));
    assert_int_equal(s.apdus[1].step, PLAT_STEP_LOAD);
    assert_int_equal(s.apdus[s.n - 1].step, PLAT_STEP_INSTALL);
    assert_int_equal(s.apdus[s.n - 1].b[2], OTA_GP_INSTALL_FOR_INSTALL_SELECTABLE);
    /* 300 + C4 82 hdr in 200-octet blocks = 2, 1000 + 4 = 6 blocks: 2 + 2 + 6 + 1 + 1 + 2 */
    assert_int_equal(s.n, 1 + 2 + 1 + 6 + 2);
    assert_memory_equal(s.sd_aid.b, plat_isd_aid, 8);
    assert_memory_equal(s.tar, "\0\0\0", 3);
    run_all_ok(&c, &s, r);

    const struct sim_gp_elf *e = card_elf(&c, elf_main, sizeof(elf_main));
    assert_non_null(e);
    assert_int_equal(e->size, 1004);
    assert_non_null(card_elf(&c, elf_ext, sizeof(elf_ext)));
    const struct sim_gp_app *a = sim_gp_find_app(&c, app1, sizeof(app1));
    assert_non_null(a);
    assert_int_equal(a->lcs, OTA_GP_APP_SELECTABLE);
    assert_non_null(sim_gp_find_app(&c, app2, sizeof(app2)));
    assert_int_equal(c.free_nv, FREE_NV - 1004 - 304 - 2 * SIM_GP_APP_SIZE);

    /* the model follows */
    struct plat_model m;
    plat_model_init(&m);
    plat_model_set_space(&m, FREE_NV, 2048);
    struct ota_err err;
    assert_int_equal(plat_model_begin(&m, TASK_OP_APP_DOWNLOAD, params, &err), 0);
    assert_int_equal(m.reserved_nv, 1004 + 304 + 200);
    apply_ok(&m, TASK_OP_APP_DOWNLOAD, params, r);
    assert_int_equal(m.reserved_nv, 0);
    const struct plat_model_app *ma = plat_model_app(&m, app1, sizeof(app1));
    assert_non_null(ma);
    assert_int_equal(ma->state, PLAT_APP_USABLE);
    assert_int_equal(ma->lcs, OTA_GP_APP_SELECTABLE);
    assert_memory_equal(ma->elf.b, elf_main, sizeof(elf_main));
    assert_int_equal(plat_model_elf(&m, elf_ext, sizeof(elf_ext))->size, 304);
    assert_int_equal(m.free_nv, FREE_NV - 1004 - 304 - 200);
    /* everything there: a second download has nothing to do / is refused */
    plat_script_fini(&s);
    struct plat_ctx ctx = {.model = &m};
    assert_int_equal(plat_build_ex(TASK_OP_APP_DOWNLOAD, params, &ctx, &s, &err), -EALREADY);
    assert_int_equal(s.n, 0);
    assert_int_equal(plat_model_begin(&m, TASK_OP_APP_DOWNLOAD, params, &err), -EPERM);
    assert_int_equal(err.code, OTA_ERR_STATE);

    /* on the card the second INSTALL [for load] is refused: the model kept us from sending it */
    plat_script_fini(&s);
    build_ok(TASK_OP_APP_DOWNLOAD, params, NULL, &s);
    run_from(&c, &s, 0, r);
    assert_int_equal(r->last_sw, SIM_SW_COND);
    assert_int_equal(r->n_done, 0);
    plat_script_fini(&s);
    free(params);
    free(r);
}

static void test_download_resume(void **state)
{
    struct sim_gp_card c;
    struct plat_script s, s2;
    struct plat_model m;
    struct ota_err err;
    struct run *r = calloc(1, sizeof(*r));
    char *params = download_json(1000, true, false, 2);
    struct plat_ctx ctx = {.model = &m};

    (void)state;
    sim_gp_init(&c, FREE_NV);
    plat_model_init(&m);
    plat_model_set_space(&m, FREE_NV, 2048);
    build_ok(TASK_OP_APP_DOWNLOAD, params, NULL, &s);
    assert_int_equal(plat_model_begin(&m, TASK_OP_APP_DOWNLOAD, params, &err), 0);
    /* the link breaks after the extension and 3 blocks of the main file */
    size_t cut = 3 + 1 + 3;
    struct plat_script part = s;
    part.n = cut;
    run_all_ok(&c, &part, r);
    apply_ok(&m, TASK_OP_APP_DOWNLOAD, params, r);
    assert_int_equal(m.reserved_nv, 0);
    assert_false(plat_model_elf(&m, elf_ext, sizeof(elf_ext))->partial);
    assert_true(plat_model_elf(&m, elf_main, sizeof(elf_main))->partial);
    assert_null(plat_model_app(&m, app1, sizeof(app1))); /* still Ready */
    assert_int_equal(m.free_nv, FREE_NV - 304);

    /* resume: the extension is not loaded again; the main file restarts */
    build_ok(TASK_OP_APP_DOWNLOAD, params, &ctx, &s2);
    assert_int_equal(s2.n, s.n - 3);
    assert_int_equal(s2.apdus[0].step, PLAT_STEP_INSTALL_LOAD);
    assert_memory_equal(s2.apdus[0].b + 6, elf_main, sizeof(elf_main));
    assert_int_equal(plat_model_begin(&m, TASK_OP_APP_DOWNLOAD, params, &err), 0);
    /* this time the link breaks after the first INSTALL */
    part = s2;
    part.n = s2.n - 1;
    run_all_ok(&c, &part, r);
    apply_ok(&m, TASK_OP_APP_DOWNLOAD, params, r);
    assert_int_equal(plat_model_app(&m, app1, sizeof(app1))->state, PLAT_APP_INSTANTIATED);
    assert_int_equal(plat_model_app(&m, app2, sizeof(app2))->state, PLAT_APP_LOADED);
    plat_script_fini(&s2);

    /* last resume: only the second INSTALL */
    build_ok(TASK_OP_APP_DOWNLOAD, params, &ctx, &s2);
    assert_int_equal(s2.n, 1);
    assert_int_equal(s2.apdus[0].step, PLAT_STEP_INSTALL);
    assert_int_equal(s2.apdus[0].b[2], OTA_GP_INSTALL_FOR_INSTALL);
    run_all_ok(&c, &s2, r);
    apply_ok(&m, TASK_OP_APP_DOWNLOAD, params, r);
    assert_int_equal(plat_model_app(&m, app2, sizeof(app2))->state, PLAT_APP_INSTANTIATED);
    assert_int_equal(sim_gp_find_app(&c, app2, sizeof(app2))->lcs, OTA_GP_APP_INSTALLED);
    plat_script_fini(&s2);

    /* the same download, now selectable, only makes the installed instances selectable */
    char *sel = download_json(1000, true, true, 2);
    build_ok(TASK_OP_APP_DOWNLOAD, sel, &ctx, &s2);
    assert_int_equal(s2.n, 2);
    assert_int_equal(s2.apdus[0].step, PLAT_STEP_MAKE_SELECTABLE);
    run_all_ok(&c, &s2, r);
    apply_ok(&m, TASK_OP_APP_DOWNLOAD, sel, r);
    assert_int_equal(plat_model_app(&m, app1, sizeof(app1))->state, PLAT_APP_USABLE);
    assert_int_equal(sim_gp_find_app(&c, app1, sizeof(app1))->lcs, OTA_GP_APP_SELECTABLE);
    plat_script_fini(&s2);
    free(sel);
    plat_script_fini(&s);
    free(params);
    free(r);
}

/* ---- delete, lock, personalize ---------------------------------------------------------- */

/* A card and model with the two-module app installed (selectable or not). */
static void setup_app(struct sim_gp_card *c, struct plat_model *m, bool selectable, struct run *r)
{
    struct plat_script s;
    char *params = download_json(500, false, selectable, 2);

    sim_gp_init(c, FREE_NV);
    plat_model_init(m);
    plat_model_set_space(m, FREE_NV, 2048);
    build_ok(TASK_OP_APP_DOWNLOAD, params, NULL, &s);
    run_all_ok(c, &s, r);
    assert_int_equal(plat_model_begin(m, TASK_OP_APP_DOWNLOAD, params, NULL), 0);
    apply_ok(m, TASK_OP_APP_DOWNLOAD, params, r);
    plat_script_fini(&s);
    free(params);
}

static void op_ok(struct sim_gp_card *c, struct plat_model *m, enum task_op op, const char *params,
                  struct run *r)
{
    struct plat_script s;
    struct plat_ctx ctx = {.model = m};
    struct ota_err err;

    build_ok(op, params, &ctx, &s);
    int rc = plat_model_begin(m, op, params, &err);
    if (rc != 0) {
        fail_msg("begin %s: %d %s", task_op_name(op), rc, err.msg);
    }
    run_all_ok(c, &s, r);
    apply_ok(m, op, params, r);
    plat_script_fini(&s);
}

static void test_delete(void **state)
{
    struct sim_gp_card c;
    struct plat_model m;
    struct plat_script s;
    struct run *r = calloc(1, sizeof(*r));
    uint32_t before;

    (void)state;
    setup_app(&c, &m, true, r);
    before = c.free_nv;
    /* instance only: the load file stays (spec 5.4.6) */
    op_ok(&c, &m, TASK_OP_APP_DELETE, "{\"aid\":\"A000000003101002\"}", r);
    assert_null(sim_gp_find_app(&c, app2, sizeof(app2)));
    assert_non_null(card_elf(&c, elf_main, sizeof(elf_main)));
    assert_int_equal(c.free_nv, before + SIM_GP_APP_SIZE);
    assert_int_equal(plat_model_app(&m, app2, sizeof(app2))->state, PLAT_APP_LOADED);
    /* with the load file while another instance lives: only the instance goes (5.8.4.2.1) */
    struct plat_ctx ctx = {.model = &m};
    build_ok(TASK_OP_APP_DELETE, "{\"aid\":\"A000000003101002\",\"with_load_file\":true}", &ctx,
             &s);
    assert_int_equal(s.apdus[0].b[3], 0x00);
    plat_script_fini(&s);
    /* app1 with its load file: DELETE of the ELF with P2 80 */
    uint32_t model_before = m.free_nv;
    op_ok(&c, &m, TASK_OP_APP_DELETE, "{\"aid\":\"A000000003101001\",\"with_load_file\":true}", r);
    assert_null(sim_gp_find_app(&c, app1, sizeof(app1)));
    assert_null(card_elf(&c, elf_main, sizeof(elf_main)));
    assert_int_equal(c.free_nv, FREE_NV);
    assert_null(plat_model_app(&m, app1, sizeof(app1)));
    assert_null(plat_model_app(&m, app2, sizeof(app2)));
    assert_null(plat_model_elf(&m, elf_main, sizeof(elf_main)));
    assert_int_equal(m.free_nv, model_before + 504 + 100);
    /* without a model the load file AID must be given */
    struct ota_err err;
    assert_int_equal(plat_build(TASK_OP_APP_DELETE,
                                "{\"aid\":\"A000000003101001\",\"with_load_file\":true}", &s, &err),
                     -EINVAL);
    assert_non_null(strstr(err.msg, "load_file_aid"));
    build_ok(TASK_OP_APP_DELETE,
             "{\"aid\":\"A000000003101001\",\"with_load_file\":true,\"load_file_aid\":"
             "\"A00000000310\"}",
             NULL, &s);
    assert_memory_equal(s.apdus[0].b, "\x80\xE4\x00\x80\x08\x4F\x06", 7);
    plat_script_fini(&s);
    free(r);
}

static void test_lock_unlock(void **state)
{
    struct sim_gp_card c;
    struct plat_model m;
    struct plat_script s;
    struct ota_err err;
    struct run *r = calloc(1, sizeof(*r));
    const char *lock = "{\"aid\":\"A000000003101001\",\"instances\":[\"A000000003101002\"]}";

    (void)state;
    setup_app(&c, &m, true, r);
    build_ok(TASK_OP_APP_LOCK, lock, NULL, &s);
    assert_int_equal(s.n, 2);
    assert_memory_equal(s.apdus[0].b, "\x80\xF0\x40\x80\x08", 5);
    plat_script_fini(&s);
    op_ok(&c, &m, TASK_OP_APP_LOCK, lock, r);
    assert_int_equal(sim_gp_find_app(&c, app1, sizeof(app1))->lcs,
                     OTA_GP_APP_SELECTABLE | OTA_GP_LOCKED_BIT);
    assert_true(sim_gp_find_app(&c, app2, sizeof(app2))->lcs & OTA_GP_LOCKED_BIT);
    assert_int_equal(plat_model_app(&m, app1, sizeof(app1))->state, PLAT_APP_LOCKED);
    /* locking twice is refused by the model before anything is sent */
    assert_int_equal(plat_model_begin(&m, TASK_OP_APP_LOCK, lock, &err), -EPERM);
    assert_int_equal(err.code, OTA_ERR_STATE);
    op_ok(&c, &m, TASK_OP_APP_UNLOCK, lock, r);
    assert_int_equal(sim_gp_find_app(&c, app1, sizeof(app1))->lcs, OTA_GP_APP_SELECTABLE);
    assert_int_equal(plat_model_app(&m, app2, sizeof(app2))->state, PLAT_APP_USABLE);
    assert_int_equal(plat_model_begin(&m, TASK_OP_APP_UNLOCK, lock, &err), -EPERM);
    free(r);
}

static void test_personalize(void **state)
{
    struct sim_gp_card c;
    struct plat_model m;
    struct plat_script s;
    struct ota_err err;
    struct run *r = calloc(1, sizeof(*r));
    const char *perso = "{\"aid\":\"A000000003101001\",\"data\":[\"0101020304\",\"0102021122\"],"
                        "\"structure\":\"dgi\"}";

    (void)state;
    setup_app(&c, &m, false, r);
    assert_int_equal(plat_model_app(&m, app1, sizeof(app1))->state, PLAT_APP_INSTANTIATED);
    build_ok(TASK_OP_APP_PERSONALIZE, perso, NULL, &s);
    assert_int_equal(s.n, 3);
    assert_memory_equal(s.apdus[0].b, "\x80\xE6\x20\x00", 4); /* INSTALL [for personalization] */
    assert_memory_equal(s.apdus[1].b, "\x80\xE2\x08\x00\x05", 5);
    assert_memory_equal(s.apdus[2].b, "\x80\xE2\x88\x01\x05", 5);
    plat_script_fini(&s);
    /* a lock before personalization is illegal (only Usable locks) */
    assert_int_equal(plat_model_begin(&m, TASK_OP_APP_LOCK, "{\"aid\":\"A000000003101001\"}", &err),
                     -EPERM);
    op_ok(&c, &m, TASK_OP_APP_PERSONALIZE, perso, r);
    assert_int_equal(sim_gp_find_app(&c, app1, sizeof(app1))->lcs, OTA_GP_SD_PERSONALIZED);
    assert_int_equal(plat_model_app(&m, app1, sizeof(app1))->state, PLAT_APP_PERSONALIZED);
    /* the business platform's activation notice (no SE command) */
    assert_int_equal(plat_model_event(&m, app1, sizeof(app1), PLAT_EV_SUBSCRIBE, &err), 0);
    assert_int_equal(plat_model_app(&m, app1, sizeof(app1))->state, PLAT_APP_USABLE);
    assert_int_equal(plat_model_event(&m, app1, sizeof(app1), PLAT_EV_SUBSCRIBE, &err), -EPERM);
    assert_int_equal(plat_model_event(&m, ssd, sizeof(ssd), PLAT_EV_LOCK, &err), -ENOENT);
    free(r);
}

/* ---- security domains ---------------------------------------------------------------------- */

struct keysrc {
    int calls;
    bool fail;
};

static int keys_cb(void *arg, const uint8_t *sd_aid, size_t sd_aid_len, uint8_t old_kvn,
                   uint8_t new_kvn, struct plat_key_material *out, struct ota_err *err)
{
    struct keysrc *k = arg;
    k->calls++;
    assert_int_equal(sd_aid_len, sizeof(ssd));
    assert_memory_equal(sd_aid, ssd, sizeof(ssd));
    assert_int_equal(old_kvn, 0x20);
    assert_int_equal(new_kvn, 0x21);
    if (k->fail) {
        return ota_fail(err, -ENOENT, OTA_ERR_KEY, "no key set");
    }
    ts_mkkey(&out->keys[0], OTA_CIPHER_3DES2, "404142434445464748494A4B4C4D4E4F");
    ts_mkkey(&out->keys[1], OTA_CIPHER_3DES2, "505152535455565758595A5B5C5D5E5F");
    ts_mkkey(&out->keys[2], OTA_CIPHER_3DES2, "606162636465666768696A6B6C6D6E6F");
    out->n_keys = 3;
    ts_mkkey(&out->dek, OTA_CIPHER_3DES2, "707172737475767778797A7B7C7D7E7F");
    return 0;
}

static void test_sd_lifecycle(void **state)
{
    struct sim_gp_card c;
    struct plat_model m;
    struct plat_script s;
    struct ota_err err;
    struct run *r = calloc(1, sizeof(*r));
    const char *create = "{\"aid\":\"A00000015153504101\",\"install_params\":\"8102\"}";
    const char *keys = "{\"sd_aid\":\"A00000015153504101\",\"old_kvn\":32,\"new_kvn\":33}";

    (void)state;
    sim_gp_init(&c, FREE_NV);
    plat_model_init(&m);
    /* the SD package is on every card (ROM); the model card gets it by hand */
    c.elfs[0].used = true;
    c.elfs[0].aid.len = sizeof(plat_ssd_elf_aid);
    memcpy(c.elfs[0].aid.b, plat_ssd_elf_aid, sizeof(plat_ssd_elf_aid));

    op_ok(&c, &m, TASK_OP_SD_CREATE, create, r);
    const struct sim_gp_app *a = sim_gp_find_app(&c, ssd, sizeof(ssd));
    assert_non_null(a);
    assert_true(a->is_sd);
    assert_int_equal(a->lcs, OTA_GP_APP_SELECTABLE);
    assert_non_null(plat_model_sd(&m, ssd, sizeof(ssd)));
    assert_int_equal(plat_model_begin(&m, TASK_OP_SD_CREATE, create, &err), -EEXIST);

    /* key update: no key source -> -ENOKEY; failing source -> -ENOKEY; then on the card */
    assert_int_equal(plat_build(TASK_OP_SD_KEY_UPDATE, keys, &s, &err), -ENOKEY);
    assert_int_equal(err.code, OTA_ERR_KEY);
    struct keysrc ks = {0};
    struct plat_keys_cb kcb = {.keys = keys_cb, .arg = &ks};
    struct plat_ctx ctx = {.keys = &kcb, .model = &m};
    ks.fail = true;
    assert_int_equal(plat_build_ex(TASK_OP_SD_KEY_UPDATE, keys, &ctx, &s, &err), -ENOKEY);
    assert_non_null(strstr(err.msg, "no key set"));
    assert_int_equal(s.n, 0);
    ks.fail = false;
    build_ok(TASK_OP_SD_KEY_UPDATE, keys, &ctx, &s);
    assert_int_equal(s.n, 1);
    assert_memory_equal(s.apdus[0].b, "\x80\xD8\x20\x81", 4);
    assert_int_equal(s.apdus[0].b[5], 0x21);
    assert_memory_equal(s.sd_aid.b, ssd, sizeof(ssd));
    run_all_ok(&c, &s, r);
    assert_int_equal(c.kvns[0], 0x21);
    apply_ok(&m, TASK_OP_SD_KEY_UPDATE, keys, r);
    assert_int_equal(plat_model_sd(&m, ssd, sizeof(ssd))->kvn, 0x21);
    plat_script_fini(&s);
    /* set_personalized adds SET STATUS 0F on the SD (spec 5.8.3.1.1) */
    build_ok(TASK_OP_SD_KEY_UPDATE,
             "{\"sd_aid\":\"A00000015153504101\",\"old_kvn\":32,\"new_kvn\":33,"
             "\"set_personalized\":true}",
             &ctx, &s);
    assert_int_equal(s.n, 2);
    assert_memory_equal(s.apdus[1].b, "\x80\xF0\x40\x0F\x09", 5);
    plat_script_fini(&s);
    assert_int_equal(ks.calls, 3);

    /* an SD holding an application is not deleted (spec 5.8.3.3.1) */
    struct plat_model m2 = m;
    struct plat_model_app *ap = &m2.apps[m2.n_apps++];
    memset(ap, 0, sizeof(*ap));
    memcpy(ap->aid.b, app1, sizeof(app1));
    ap->aid.len = sizeof(app1);
    memcpy(ap->sd.b, ssd, sizeof(ssd));
    ap->sd.len = sizeof(ssd);
    ap->state = PLAT_APP_USABLE;
    assert_int_equal(
        plat_model_begin(&m2, TASK_OP_SD_DELETE, "{\"aid\":\"A00000015153504101\"}", &err), -EPERM);

    op_ok(&c, &m, TASK_OP_SD_DELETE, "{\"aid\":\"A00000015153504101\"}", r);
    assert_null(sim_gp_find_app(&c, ssd, sizeof(ssd)));
    assert_null(plat_model_sd(&m, ssd, sizeof(ssd)));
    free(r);
}

/* ---- info sync -------------------------------------------------------------------------- */

static void test_info_sync(void **state)
{
    struct sim_gp_card c;
    struct plat_model m, fresh;
    struct plat_script s;
    struct run *r = calloc(1, sizeof(*r));

    (void)state;
    setup_app(&c, &m, true, r);
    assert_int_equal(sim_gp_add_app(&c, ssd, sizeof(ssd), OTA_GP_APP_SELECTABLE, true, NULL), 0);
    assert_int_equal(
        sim_gp_add_app(&c, (const uint8_t *)"\xA0\x00\x00\x00\x99\x01", 6, 0x83, false, NULL), 0);
    build_ok(TASK_OP_INFO_SYNC, "{}", NULL, &s);
    assert_int_equal(s.n, 4);
    assert_memory_equal(s.apdus[0].b, "\x80\xCA\xFF\x21\x00", 5);
    assert_memory_equal(s.apdus[2].b, "\x80\xF2\x40\x02", 4);
    run_all_ok(&c, &s, r);

    /* a model that knew nothing learns the card */
    plat_model_init(&fresh);
    apply_ok(&fresh, TASK_OP_INFO_SYNC, "{}", r);
    assert_true(fresh.space_known);
    assert_int_equal(fresh.free_nv, c.free_nv);
    assert_int_equal(fresh.free_v, SIM_GP_FREE_V);
    assert_int_equal(fresh.n_apps, 3);
    assert_int_equal(fresh.n_sds, 1);
    assert_int_equal(fresh.n_elfs, 1);
    assert_int_equal(plat_model_app(&fresh, app1, sizeof(app1))->state, PLAT_APP_USABLE);
    assert_memory_equal(plat_model_app(&fresh, app1, sizeof(app1))->elf.b, elf_main,
                        sizeof(elf_main));
    assert_int_equal(plat_model_app(&fresh, (const uint8_t *)"\xA0\x00\x00\x00\x99\x01", 6)->state,
                     PLAT_APP_LOCKED);

    /* the instance vanished behind our back (third-party TSM): it becomes Loaded */
    struct ota_apdu del;
    uint8_t buf[32], rsp[256];
    size_t rl;
    int n = ota_gp_delete(app2, sizeof(app2), false, NULL, 0, buf, sizeof(buf), NULL);
    assert_true(n > 0);
    assert_int_equal(ota_apdu_parse(buf, (size_t)n, &del, NULL), 0);
    assert_int_equal(sim_gp_run(&c, &del, rsp, sizeof(rsp), &rl), 0x9000);
    run_all_ok(&c, &s, r);
    apply_ok(&m, TASK_OP_INFO_SYNC, "{}", r);
    assert_int_equal(plat_model_app(&m, app2, sizeof(app2))->state, PLAT_APP_LOADED);
    assert_int_equal(m.free_nv, c.free_nv);
    plat_script_fini(&s);

    /* scope and next */
    build_ok(TASK_OP_INFO_SYNC, "{\"scope\":[\"apps\"],\"next\":true}", NULL, &s);
    assert_int_equal(s.n, 1);
    assert_memory_equal(s.apdus[0].b, "\x80\xF2\x40\x03", 4);
    plat_script_fini(&s);
    build_ok(TASK_OP_INFO_SYNC, "{\"scope\":[\"elfs\",\"space\"],\"modules\":true}", NULL, &s);
    assert_int_equal(s.n, 2);
    assert_memory_equal(s.apdus[1].b, "\x80\xF2\x10\x02", 4);
    plat_script_fini(&s);

    /* more entries than one answer holds: 6310, a partial list, then "next occurrence" */
    static const uint8_t more1[] = {0xA0, 0x00, 0x00, 0x00, 0x77, 0x00, 0x00, 0x01};
    static const uint8_t more2[] = {0xA0, 0x00, 0x00, 0x00, 0x77, 0x00, 0x00, 0x02};
    assert_int_equal(sim_gp_add_app(&c, more1, sizeof(more1), 0x07, false, NULL), 0);
    assert_int_equal(sim_gp_add_app(&c, more2, sizeof(more2), 0x07, false, NULL), 0);
    struct plat_model pm;
    plat_model_init(&pm);
    build_ok(TASK_OP_INFO_SYNC, "{}", NULL, &s);
    run_from(&c, &s, 0, r);
    assert_int_equal(r->last_sw, 0x6310);
    assert_int_equal(r->n_done, 2);
    struct plat_result pr = {.n_done = 2, .rapdus = r->rapdus, .n_rapdus = 3};
    struct ota_err perr;
    assert_int_equal(plat_model_apply_result(&pm, TASK_OP_INFO_SYNC, "{}", &pr, &perr), 0);
    assert_int_equal(pm.n_apps + pm.n_sds, 4);
    assert_null(plat_model_app(&pm, more2, sizeof(more2)));
    assert_int_equal(pm.n_elfs, 0); /* not reached */
    plat_script_fini(&s);
    build_ok(TASK_OP_INFO_SYNC, "{\"scope\":[\"apps\"],\"next\":true}", NULL, &s);
    run_all_ok(&c, &s, r);
    apply_ok(&pm, TASK_OP_INFO_SYNC, "{\"scope\":[\"apps\"],\"next\":true}", r);
    assert_int_equal(pm.n_apps + pm.n_sds, 5);
    assert_int_equal(plat_model_app(&pm, more2, sizeof(more2))->state, PLAT_APP_USABLE);
    assert_non_null(plat_model_app(&pm, app1, sizeof(app1)));
    plat_script_fini(&s);

    /* an empty registry answers 6A88: the script stops, the model keeps the ELF part */
    struct sim_gp_card empty;
    sim_gp_init(&empty, 1000);
    build_ok(TASK_OP_INFO_SYNC, "{}", NULL, &s);
    run_from(&empty, &s, 0, r);
    assert_int_equal(r->last_sw, 0x6A88);
    struct plat_result res = {.n_done = r->n_done, .rapdus = r->rapdus, .n_rapdus = r->n_done + 1};
    struct ota_err err;
    assert_int_equal(plat_model_apply_result(&m, TASK_OP_INFO_SYNC, "{}", &res, &err), 0);
    /* no instances on the card; the ELF list was not read, so both stay as Loaded */
    assert_int_equal(m.n_apps, 2);
    assert_int_equal(plat_model_app(&m, app1, sizeof(app1))->state, PLAT_APP_LOADED);
    assert_int_equal(m.n_sds, 0);
    assert_int_equal(m.free_nv, 1000);
    plat_script_fini(&s);
    free(r);
}

/* ---- bad params ---------------------------------------------------------------------------- */

struct bad {
    enum task_op op;
    const char *params;
    int rc;
    const char *names; /* substring of the message: the key */
};

static void test_bad_params(void **state)
{
    static const struct bad bad[] = {
        {TASK_OP_APP_DOWNLOAD, "[]", -EINVAL, "not a JSON object"},
        {TASK_OP_APP_DOWNLOAD, "{", -EINVAL, "params"},
        {TASK_OP_APP_DOWNLOAD, "{\"load_file\":\"00\"}", -EINVAL, "load_file_aid"},
        {TASK_OP_APP_DOWNLOAD, "{\"load_file_aid\":\"A000000003\"}", -EINVAL, "load_file"},
        {TASK_OP_APP_DOWNLOAD, "{\"load_file_aid\":\"A0000000\",\"load_file\":\"00\"}", -EINVAL,
         "load_file_aid"},
        {TASK_OP_APP_DOWNLOAD, "{\"load_file_aid\":\"A00000000G\",\"load_file\":\"00\"}", -EINVAL,
         "load_file_aid"},
        {TASK_OP_APP_DOWNLOAD, "{\"load_file_aid\":\"A000000003\",\"load_file\":\"0\"}", -EINVAL,
         "load_file"},
        {TASK_OP_APP_DOWNLOAD, "{\"load_file_aid\":\"A000000003\",\"load_file\":\"00\",\"x\":1}",
         -EINVAL, "\"x\""},
        {TASK_OP_APP_DOWNLOAD,
         "{\"load_file_aid\":\"A000000003\",\"load_file\":\"00\",\"block_size\":240}", -EINVAL,
         "block_size"},
        {TASK_OP_APP_DOWNLOAD,
         "{\"load_file_aid\":\"A000000003\",\"load_file\":\"00\",\"block_size\":\"200\"}", -EINVAL,
         "block_size"},
        {TASK_OP_APP_DOWNLOAD,
         "{\"load_file_aid\":\"A000000003\",\"load_file\":\"00\",\"modules\":[{\"module_aid\":"
         "\"A000000003\"}]}",
         -EINVAL, "modules[0].instance_aid"},
        {TASK_OP_APP_DOWNLOAD,
         "{\"load_file_aid\":\"A000000003\",\"load_file\":\"00\",\"modules\":[{\"module_aid\":"
         "\"A000000003\",\"instance_aid\":\"A000000003\",\"privileges\":\"0000\"}]}",
         -EINVAL, "modules[0].privileges"},
        {TASK_OP_APP_DOWNLOAD,
         "{\"load_file_aid\":\"A000000003\",\"load_file\":\"00\",\"modules\":[{\"module_aid\":"
         "\"A000000003\",\"instance_aid\":\"A000000003\",\"nv_data\":-1}]}",
         -EINVAL, "modules[0].nv_data"},
        {TASK_OP_APP_DOWNLOAD,
         "{\"load_file_aid\":\"A000000003\",\"load_file\":\"00\",\"extensions\":[{\"load_file_"
         "aid\":\"A000000003\",\"load_file\":\"00\"}]}",
         -EINVAL, "load_file_aid"},
        {TASK_OP_APP_DOWNLOAD,
         "{\"load_file_aid\":\"A000000003\",\"load_file\":\"00\",\"extensions\":[{\"load_file_"
         "aid\":\"A000000004\",\"load_file\":\"00\",\"y\":0}]}",
         -EINVAL, "extensions[0]"},
        {TASK_OP_APP_DOWNLOAD,
         "{\"load_file_aid\":\"A000000003\",\"load_file\":\"00\",\"selectable\":1}", -EINVAL,
         "selectable"},
        {TASK_OP_APP_DOWNLOAD,
         "{\"load_file_aid\":\"A000000003\",\"load_file\":\"00\",\"tar\":\"00\"}", -EINVAL, "tar"},
        {TASK_OP_APP_DOWNLOAD,
         "{\"load_file_aid\":\"A000000003\",\"load_file\":\"00\",\"sd_aid\":\"A0\"}", -EINVAL,
         "sd_aid"},
        {TASK_OP_APP_DELETE, "{}", -EINVAL, "params.aid"},
        {TASK_OP_APP_DELETE, "{\"aid\":\"A000000003\",\"with_load_file\":\"yes\"}", -EINVAL,
         "with_load_file"},
        {TASK_OP_APP_DELETE, "{\"aid\":\"A000000003\",\"mode\":1}", -EINVAL, "\"mode\""},
        {TASK_OP_APP_LOCK, "{\"aid\":17}", -EINVAL, "params.aid"},
        {TASK_OP_APP_LOCK, "{\"aid\":\"A000000003\",\"instances\":[\"A0\"]}", -EINVAL,
         "instances[0]"},
        {TASK_OP_APP_UNLOCK, "{\"aid\":\"A000000003\",\"instances\":\"A000000003\"}", -EINVAL,
         "instances"},
        {TASK_OP_APP_PERSONALIZE, "{\"aid\":\"A000000003\"}", -EINVAL, "data"},
        {TASK_OP_APP_PERSONALIZE, "{\"aid\":\"A000000003\",\"data\":[]}", -EINVAL, "data"},
        {TASK_OP_APP_PERSONALIZE, "{\"aid\":\"A000000003\",\"data\":[\"\"]}", -EINVAL, "data[0]"},
        {TASK_OP_APP_PERSONALIZE, "{\"aid\":\"A000000003\",\"data\":[\"00\",\"zz\"]}", -EINVAL,
         "data[1]"},
        {TASK_OP_APP_PERSONALIZE, "{\"aid\":\"A000000003\",\"data\":[\"00\"],\"encryption\":\"x\"}",
         -EINVAL, "encryption"},
        {TASK_OP_APP_PERSONALIZE, "{\"aid\":\"A000000003\",\"data\":[\"00\"],\"structure\":1}",
         -EINVAL, "structure"},
        {TASK_OP_SD_CREATE, "{}", -EINVAL, "params.aid"},
        {TASK_OP_SD_CREATE, "{\"aid\":\"A000000003\",\"privileges\":\"00\"}", -EINVAL,
         "privileges"},
        {TASK_OP_SD_CREATE, "{\"aid\":\"A000000151000000\"}", -EINVAL, "ISD"},
        {TASK_OP_SD_CREATE, "{\"aid\":\"A000000003\",\"module_aid\":\"A0\"}", -EINVAL,
         "module_aid"},
        {TASK_OP_SD_DELETE, "{\"aid\":\"A000000151000000\"}", -EINVAL, "ISD"},
        {TASK_OP_SD_DELETE, "{\"aid\":\"A000000003\",\"force\":true}", -EINVAL, "force"},
        {TASK_OP_SD_KEY_UPDATE, "{\"new_kvn\":1}", -EINVAL, "old_kvn"},
        {TASK_OP_SD_KEY_UPDATE, "{\"old_kvn\":1,\"new_kvn\":0}", -EINVAL, "new_kvn"},
        {TASK_OP_SD_KEY_UPDATE, "{\"old_kvn\":128,\"new_kvn\":1}", -EINVAL, "old_kvn"},
        {TASK_OP_SD_KEY_UPDATE, "{\"old_kvn\":1,\"new_kvn\":2,\"keys\":\"00\"}", -EINVAL, "keys"},
        {TASK_OP_SD_KEY_UPDATE, "{\"old_kvn\":1,\"new_kvn\":2,\"set_personalized\":true}", -EINVAL,
         "set_personalized"},
        {TASK_OP_INFO_SYNC, "{\"scope\":[\"all\"]}", -EINVAL, "scope[0]"},
        {TASK_OP_INFO_SYNC, "{\"scope\":[\"apps\",\"apps\"]}", -EINVAL, "scope[1]"},
        {TASK_OP_INFO_SYNC, "{\"scope\":[]}", -EINVAL, "scope"},
        {TASK_OP_INFO_SYNC, "{\"next\":true}", -EINVAL, "next"},
        {TASK_OP_INFO_SYNC, "{\"verbose\":true}", -EINVAL, "verbose"},
        {TASK_OP_PUSH, "{}", -ENOTSUP, "push"},
        {TASK_OP_SCP80, "{}", -ENOTSUP, "scp80"},
        {TASK_OP_CUSTOM, "{}", -ENOTSUP, "custom"},
    };
    struct plat_script s;
    struct ota_err err;
    struct plat_model m;

    (void)state;
    plat_model_init(&m);
    for (size_t i = 0; i < OTA_ARRAY_SIZE(bad); i++) {
        memset(&err, 0, sizeof(err));
        int rc = plat_build(bad[i].op, bad[i].params, &s, &err);
        if (rc != bad[i].rc || !strstr(err.msg, bad[i].names)) {
            fail_msg("case %zu (%s %s): rc %d msg \"%s\"", i, task_op_name(bad[i].op),
                     bad[i].params, rc, err.msg);
        }
        assert_int_equal(s.n, 0);
        assert_null(s.apdus);
        /* the model refuses the same params, unchanged */
        struct plat_model before = m;
        assert_int_equal(plat_model_begin(&m, bad[i].op, bad[i].params, &err), bad[i].rc);
        assert_memory_equal(&before, &m, sizeof(m));
    }
    /* a load file of more than 256 blocks is refused by the GP layer */
    char *big = download_json(60000, false, true, 0);
    assert_int_equal(plat_build(TASK_OP_APP_DOWNLOAD, big, &s, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "block_size"));
    free(big);
    /* INSTALL data over 255 octets (long install params): bad input too */
    char *ip = hex_fill(200, 0);
    json_t *o = json_pack("{s:s,s:s,s:[{s:s,s:s,s:s,s:s,s:i}]}", "load_file_aid",
                          "A0000000031122334455667788990011", "load_file", "00", "modules",
                          "module_aid", "A0000000031122334455667788990012", "instance_aid",
                          "A0000000031122334455667788990013", "privileges", "000000",
                          "install_params", ip, "nv_data", 70000);
    char *js = json_dumps(o, JSON_COMPACT);
    assert_int_equal(plat_build(TASK_OP_APP_DOWNLOAD, js, &s, &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_OVERSIZE);
    assert_int_equal(s.n, 0);
    free(js);
    json_decref(o);
    free(ip);
}

/* ---- state machine --------------------------------------------------------------------- */

static void test_state_table(void **state)
{
    /* every legal (from, event) -> to of spec 5.8.7.2; everything else is refused */
    static const struct {
        enum plat_app_state from;
        enum plat_app_event ev;
        enum plat_app_state to;
    } legal[] = {
        {PLAT_APP_READY, PLAT_EV_LOAD, PLAT_APP_LOADED},
        {PLAT_APP_LOADED, PLAT_EV_INSTALL, PLAT_APP_INSTANTIATED},
        {PLAT_APP_LOADED, PLAT_EV_DELETE, PLAT_APP_READY},
        {PLAT_APP_INSTANTIATED, PLAT_EV_MAKE_SELECTABLE, PLAT_APP_USABLE},
        {PLAT_APP_INSTANTIATED, PLAT_EV_PERSONALIZE, PLAT_APP_PERSONALIZED},
        {PLAT_APP_INSTANTIATED, PLAT_EV_DELETE_INSTANCE, PLAT_APP_LOADED},
        {PLAT_APP_INSTANTIATED, PLAT_EV_DELETE, PLAT_APP_READY},
        {PLAT_APP_PERSONALIZED, PLAT_EV_PERSONALIZE, PLAT_APP_PERSONALIZED},
        {PLAT_APP_PERSONALIZED, PLAT_EV_SUBSCRIBE, PLAT_APP_USABLE},
        {PLAT_APP_PERSONALIZED, PLAT_EV_UNSUBSCRIBE, PLAT_APP_INSTANTIATED},
        {PLAT_APP_PERSONALIZED, PLAT_EV_DELETE_INSTANCE, PLAT_APP_LOADED},
        {PLAT_APP_PERSONALIZED, PLAT_EV_DELETE, PLAT_APP_READY},
        {PLAT_APP_USABLE, PLAT_EV_PERSONALIZE, PLAT_APP_USABLE},
        {PLAT_APP_USABLE, PLAT_EV_UNSUBSCRIBE, PLAT_APP_INSTANTIATED},
        {PLAT_APP_USABLE, PLAT_EV_LOCK, PLAT_APP_LOCKED},
        {PLAT_APP_USABLE, PLAT_EV_DELETE_INSTANCE, PLAT_APP_LOADED},
        {PLAT_APP_USABLE, PLAT_EV_DELETE, PLAT_APP_READY},
        {PLAT_APP_LOCKED, PLAT_EV_UNLOCK, PLAT_APP_USABLE},
        {PLAT_APP_LOCKED, PLAT_EV_DELETE_INSTANCE, PLAT_APP_LOADED},
        {PLAT_APP_LOCKED, PLAT_EV_DELETE, PLAT_APP_READY},
    };
    size_t n_legal = 0;

    (void)state;
    for (int f = 0; f < PLAT_APP_STATE__COUNT; f++) {
        for (int e = 0; e < PLAT_APP_EVENT__COUNT; e++) {
            enum plat_app_state to = PLAT_APP_STATE__COUNT;
            int rc = plat_app_next((enum plat_app_state)f, (enum plat_app_event)e, &to);
            bool listed = false;
            for (size_t i = 0; i < OTA_ARRAY_SIZE(legal); i++) {
                if (legal[i].from == (enum plat_app_state)f &&
                    legal[i].ev == (enum plat_app_event)e) {
                    listed = true;
                    assert_int_equal(rc, 0);
                    assert_int_equal(to, legal[i].to);
                }
            }
            if (!listed) {
                if (rc != -EPERM) {
                    fail_msg("%s on %s should be illegal", plat_app_event_name(e),
                             plat_app_state_name(f));
                }
                assert_int_equal(to, PLAT_APP_STATE__COUNT);
            }
            n_legal += rc == 0;
        }
    }
    assert_int_equal(n_legal, OTA_ARRAY_SIZE(legal));
    enum plat_app_state to;
    assert_int_equal(plat_app_next(PLAT_APP_STATE__COUNT, PLAT_EV_LOAD, &to), -EPERM);
    assert_int_equal(plat_app_next(PLAT_APP_READY, PLAT_APP_EVENT__COUNT, &to), -EPERM);
    assert_string_equal(plat_app_state_name(PLAT_APP_LOCKED), "locked");
    assert_string_equal(plat_app_event_name(PLAT_EV_DELETE_INSTANCE), "delete-instance");
    assert_string_equal(plat_app_state_name((enum plat_app_state)42), "unknown");
    assert_int_equal(plat_app_state_parse("usable", &to), 0);
    assert_int_equal(to, PLAT_APP_USABLE);
    assert_int_equal(plat_app_state_parse("Usable", &to), -EINVAL);
    assert_string_equal(plat_step_name(PLAT_STEP_STORE_DATA), "store-data");

    /* an illegal event changes nothing */
    struct plat_model m;
    struct ota_err err;
    plat_model_init(&m);
    m.n_apps = 1;
    memcpy(m.apps[0].aid.b, app1, sizeof(app1));
    m.apps[0].aid.len = sizeof(app1);
    m.apps[0].state = PLAT_APP_LOADED;
    struct plat_model before = m;
    assert_int_equal(plat_model_event(&m, app1, sizeof(app1), PLAT_EV_LOCK, &err), -EPERM);
    assert_int_equal(err.code, OTA_ERR_STATE);
    assert_memory_equal(&before, &m, sizeof(m));
    /* delete goes to Ready = the entry leaves the model */
    assert_int_equal(plat_model_event(&m, app1, sizeof(app1), PLAT_EV_DELETE, &err), 0);
    assert_int_equal(m.n_apps, 0);
}

/* ---- space accounting --------------------------------------------------------------------- */

static void test_space(void **state)
{
    struct plat_model m;
    struct ota_err err;
    char *params = download_json(1000, false, true, 1);
    struct plat_result none = {0};

    (void)state;
    plat_model_init(&m);
    /* free space unknown: nothing to check against, but the need is reserved */
    assert_int_equal(plat_model_begin(&m, TASK_OP_APP_DOWNLOAD, params, &err), 0);
    assert_int_equal(m.reserved_nv, 1004 + 100);
    /* one reservation at a time (spec 5.8.8) */
    assert_int_equal(plat_model_begin(&m, TASK_OP_APP_DOWNLOAD, params, &err), -EBUSY);
    plat_model_release(&m);
    assert_int_equal(m.reserved_nv, 0);

    plat_model_set_space(&m, 1000, 100);
    assert_int_equal(plat_model_begin(&m, TASK_OP_APP_DOWNLOAD, params, &err), -ENOSPC);
    assert_int_equal(err.code, OTA_ERR_NOSPACE);
    assert_int_equal(m.reserved_nv, 0);
    plat_model_set_space(&m, 1104, 100);
    assert_int_equal(plat_model_begin(&m, TASK_OP_APP_DOWNLOAD, params, &err), 0);
    /* the task failed before anything ran: released, nothing committed */
    assert_int_equal(plat_model_apply_result(&m, TASK_OP_APP_DOWNLOAD, params, &none, &err), 0);
    assert_int_equal(m.reserved_nv, 0);
    assert_int_equal(m.free_nv, 1104);
    assert_int_equal(m.n_elfs, 0);
    /* an SD create reserves its own figures */
    assert_int_equal(
        plat_model_begin(&m, TASK_OP_SD_CREATE, "{\"aid\":\"A000000003\",\"nv_data\":2000}", &err),
        -ENOSPC);
    assert_int_equal(plat_model_begin(&m, TASK_OP_SD_CREATE,
                                      "{\"aid\":\"A000000003\",\"nv_data\":1000,\"v_data\":50}",
                                      &err),
                     0);
    struct plat_result all = {.n_done = 1};
    assert_int_equal(plat_model_apply_result(&m, TASK_OP_SD_CREATE,
                                             "{\"aid\":\"A000000003\",\"nv_data\":1000,"
                                             "\"v_data\":50}",
                                             &all, &err),
                     0);
    assert_int_equal(m.free_nv, 104);
    assert_int_equal(m.free_v, 50);
    assert_int_equal(m.reserved_nv, 0);
    /* FF21 parsing */
    uint32_t nv, v;
    uint8_t ff21[] = {0xFF, 0x21, 0x0E, 0x81, 0x02, 0x00, 0x01, 0x82, 0x04,
                      0x00, 0x01, 0x00, 0x00, 0x83, 0x02, 0x08, 0x00};
    assert_int_equal(plat_parse_space(ff21, sizeof(ff21), &nv, &v, &err), 0);
    assert_int_equal(nv, 65536);
    assert_int_equal(v, 2048);
    assert_int_equal(plat_parse_space(ff21, sizeof(ff21) - 1, &nv, &v, &err), -EBADMSG);
    ff21[1] = 0x22;
    assert_int_equal(plat_parse_space(ff21, sizeof(ff21), &nv, &v, &err), -EBADMSG);
    free(params);
}

/* ---- SCP80 form ------------------------------------------------------------------------------ */

static void test_rapdu_roundtrip(void **state)
{
    struct plat_script s;
    struct ota_err err;
    uint8_t script[PLAT_SCP80_SCRIPT_MAX], tar[3];
    size_t len = 0;
    struct ota_rapdu_cmd_tlv tlvs[16];
    size_t n;
    bool indef = true;
    struct sim_gp_card c;
    struct run *r = calloc(1, sizeof(*r));
    struct plat_model m;

    (void)state;
    setup_app(&c, &m, true, r);
    build_ok(TASK_OP_APP_LOCK,
             "{\"aid\":\"A000000003101001\",\"instances\":[\"A000000003101002\"],\"tar\":"
             "\"B00010\"}",
             NULL, &s);
    assert_int_equal(plat_build_rapdu(&s, tar, script, sizeof(script), &len, &err), 0);
    assert_memory_equal(tar, "\xB0\x00\x10", 3);
    assert_int_equal(script[0], OTA_RAPDU_TAG_CMD_DEF);
    assert_int_equal(ota_rapdu_exp_cmd_parse(script, len, tlvs, 16, &n, &indef, &err), 0);
    assert_false(indef);
    assert_int_equal(n, s.n);
    for (size_t i = 0; i < n; i++) {
        uint8_t b[PLAT_APDU_MAX];
        uint8_t rsp[256];
        size_t rl;
        assert_int_equal(tlvs[i].tag, OTA_RAPDU_TAG_C_APDU);
        int bl = ota_apdu_build(&tlvs[i].apdu, b, sizeof(b), NULL);
        assert_int_equal(bl, s.apdus[i].len);
        assert_memory_equal(b, s.apdus[i].b, (size_t)bl);
        assert_int_equal(sim_gp_run(&c, &tlvs[i].apdu, rsp, sizeof(rsp), &rl), 0x9000);
    }
    assert_true(sim_gp_find_app(&c, app2, sizeof(app2))->lcs & OTA_GP_LOCKED_BIT);

    /* the PoR side: an expanded response read back against the script */
    struct ota_rapdu_rapdu rr[2] = {{.sw = 0x9000}, {.sw = 0x6A88}};
    struct ota_rapdu_exp_rsp rsp = {.has_n_executed = true, .n_executed = 2, .n_rapdus = 2};
    uint8_t por[64];
    int pl = ota_rapdu_exp_rsp_build(&rsp, rr, por, sizeof(por), NULL);
    assert_true(pl > 0);
    struct ota_rapdu_rapdu back[4];
    struct plat_result res;
    assert_int_equal(plat_result_from_exp(&s, por, (size_t)pl, back, 4, &res, &err), 0);
    assert_int_equal(res.n_done, 1);
    assert_int_equal(res.n_rapdus, 2);
    assert_int_equal(plat_result_from_exp(&s, por, 3, back, 4, &res, &err), -EBADMSG);
    plat_script_fini(&s);

    /* empty script */
    assert_int_equal(plat_build_rapdu(&s, tar, script, sizeof(script), &len, &err), -EINVAL);
    free(r);
}

static int keys_any(void *arg, const uint8_t *sd_aid, size_t sd_aid_len, uint8_t old_kvn,
                    uint8_t new_kvn, struct plat_key_material *out, struct ota_err *err)
{
    (void)arg;
    (void)sd_aid;
    (void)sd_aid_len;
    (void)old_kvn;
    (void)new_kvn;
    (void)err;
    ts_mkkey(&out->keys[0], OTA_CIPHER_AES, "404142434445464748494A4B4C4D4E4F");
    out->n_keys = 1;
    ts_mkkey(&out->dek, OTA_CIPHER_AES, "707172737475767778797A7B7C7D7E7F");
    return 0;
}

static const struct plat_model *model_for(void *arg, const char *seid)
{
    assert_string_equal(seid, "SE1");
    return arg;
}

static void test_engine_adapter(void **state)
{
    uint8_t script[PLAT_SCP80_SCRIPT_MAX], tar[3];
    size_t len = 0;
    struct ota_err err;
    struct plat_model m;
    struct eng_task_view t;
    struct plat_keys_cb kcb = {.keys = keys_any};
    struct plat_ctx ctx = {.keys = &kcb, .model_for = model_for, .model_arg = &m};
    char *small = download_json(300, false, true, 1);
    char *big = download_json(2000, false, true, 1);

    (void)state;
    plat_model_init(&m);
    memset(&t, 0, sizeof(t));
    t.seid = "SE1";
    t.op = TASK_OP_PUSH;
    t.params = "{}";
    assert_int_equal(plat_engine_build_script(&ctx, &t, tar, script, sizeof(script), &len, &err),
                     -ENOTSUP);
    t.op = TASK_OP_CUSTOM;
    assert_int_equal(plat_engine_build_script(NULL, &t, tar, script, sizeof(script), &len, &err),
                     -ENOTSUP);

    t.op = TASK_OP_APP_DOWNLOAD;
    t.params = small;
    assert_int_equal(plat_engine_build_script(&ctx, &t, tar, script, sizeof(script), &len, &err),
                     0);
    assert_true(len > 300 && len <= sizeof(script));
    assert_memory_equal(tar, "\0\0\0", 3);
    /* the expanded script runs on the card */
    struct ota_rapdu_cmd_tlv tlvs[16];
    size_t n;
    bool indef;
    struct sim_gp_card c;
    sim_gp_init(&c, FREE_NV);
    assert_int_equal(ota_rapdu_exp_cmd_parse(script, len, tlvs, 16, &n, &indef, &err), 0);
    for (size_t i = 0; i < n; i++) {
        uint8_t rsp[256];
        size_t rl;
        assert_int_equal(sim_gp_run(&c, &tlvs[i].apdu, rsp, sizeof(rsp), &rl), 0x9000);
    }
    assert_non_null(sim_gp_find_app(&c, app1, sizeof(app1)));

    /* too large for one SCP80 packet */
    t.params = big;
    len = 0;
    assert_int_equal(plat_engine_build_script(&ctx, &t, tar, script, sizeof(script), &len, &err),
                     -E2BIG);
    assert_int_equal(err.code, OTA_ERR_OVERSIZE);
    assert_non_null(strstr(err.msg, "SCP02"));
    assert_int_equal(len, 0);
    struct plat_script s;
    build_ok(TASK_OP_APP_DOWNLOAD, big, NULL, &s);
    assert_int_equal(plat_build_rapdu(&s, tar, script, sizeof(script), &len, &err), -E2BIG);
    /* the same script fits a bigger buffer exactly */
    uint8_t *wide = malloc(8192);
    assert_int_equal(plat_build_rapdu(&s, tar, wide, 8192, &len, &err), 0);
    assert_int_equal(plat_build_rapdu(&s, tar, wide, len, &len, &err), 0);
    assert_int_equal(plat_build_rapdu(&s, tar, wide, len - 1, &len, &err), -E2BIG);
    free(wide);
    plat_script_fini(&s);

    /* key update through the adapter, with the key callback */
    t.op = TASK_OP_SD_KEY_UPDATE;
    t.params = "{\"old_kvn\":0,\"new_kvn\":48,\"tar\":\"000001\"}";
    assert_int_equal(plat_engine_build_script(&ctx, &t, tar, script, sizeof(script), &len, &err),
                     0);
    assert_memory_equal(tar, "\0\0\1", 3);
    /* bad params: -EINVAL, the engine fails the task "build" */
    t.params = "{\"old_kvn\":0}";
    assert_int_equal(plat_engine_build_script(&ctx, &t, tar, script, sizeof(script), &len, &err),
                     -EINVAL);
    free(small);
    free(big);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static void test_model_json(void **state)
{
    struct sim_gp_card c;
    struct plat_model m, back;
    struct ota_err err;
    struct run *r = calloc(1, sizeof(*r));

    (void)state;
    setup_app(&c, &m, true, r);
    m.sds[0].aid.len = sizeof(ssd);
    memcpy(m.sds[0].aid.b, ssd, sizeof(ssd));
    m.sds[0].lcs = 0x0F;
    m.sds[0].kvn = 0x21;
    m.n_sds = 1;
    m.elfs[0].partial = true;
    json_t *j = plat_model_to_json(&m);
    assert_non_null(j);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "apps"), 0), "state")),
        "usable");
    assert_int_equal(plat_model_from_json(j, &back, &err), 0);
    json_t *j2 = plat_model_to_json(&back);
    assert_true(json_equal(j, j2));
    assert_int_equal(back.n_apps, m.n_apps);
    assert_int_equal(back.free_nv, m.free_nv);
    assert_true(back.elfs[0].partial);
    json_decref(j2);

    /* bad documents change nothing */
    struct plat_model keep = back;
    json_object_set_new(j, "extra", json_true());
    assert_int_equal(plat_model_from_json(j, &back, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "extra"));
    json_object_del(j, "extra");
    json_object_set_new(json_array_get(json_object_get(j, "apps"), 1), "state",
                        json_string("ready"));
    assert_int_equal(plat_model_from_json(j, &back, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "apps[1].state"));
    json_object_set_new(json_array_get(json_object_get(j, "apps"), 1), "state",
                        json_string("usable"));
    json_object_set_new(json_array_get(json_object_get(j, "elfs"), 0), "aid", json_string("A0"));
    assert_int_equal(plat_model_from_json(j, &back, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "elfs[0].aid"));
    assert_memory_equal(&keep, &back, sizeof(keep));
    json_decref(j);

    /* unknown space stays unknown */
    plat_model_init(&m);
    j = plat_model_to_json(&m);
    assert_true(json_is_null(json_object_get(j, "free_nv")));
    assert_int_equal(plat_model_from_json(j, &back, &err), 0);
    assert_false(back.space_known);
    json_decref(j);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_params),       cmocka_unit_test(test_state_table),
        cmocka_unit_test(test_download_on_card), cmocka_unit_test(test_download_resume),
        cmocka_unit_test(test_delete),           cmocka_unit_test(test_lock_unlock),
        cmocka_unit_test(test_personalize),      cmocka_unit_test(test_sd_lifecycle),
        cmocka_unit_test(test_info_sync),        cmocka_unit_test(test_space),
        cmocka_unit_test(test_rapdu_roundtrip),  cmocka_unit_test(test_engine_adapter),
        cmocka_unit_test(test_model_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
