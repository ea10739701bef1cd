/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the simulated card (tests/sim/card.c, gpmodel.c) end to end with
 * the gateway-side codecs: SCP80 commands built with ota_scp80_cmd_encode()
 * and ota_concat_segment() under the SE's keys, delivered, and the PoR read
 * back with ota_scp80_por_decode_sms() (TS 102 225 5.1-5.2, TS 31.115 4,
 * TS 102 226 5.1-5.2, GP 2.2 clause 11). Bad paths first: malformed SMS,
 * bad CC, unknown TAR, wrong KVN, counter replay; then the GP flows.
 */
#include "tests/sim/sim.h"
#include "tests/sim/gpmodel.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SAMPLE OTAGW_SOURCE_DIR "/tests/sim/sample-population.jsonl"
#define SE1 "8613800000001"
#define SE2 "8613800000002"

static const uint8_t tar_isd[3] = {0x00, 0x00, 0x00};
static const uint8_t app1[] = {0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xFF, 0x86};
static const uint8_t elf_aid[] = {0xA0, 0x00, 0x00, 0x09, 0x99, 0x01};
static const uint8_t mod_aid[] = {0xA0, 0x00, 0x00, 0x09, 0x99, 0x01, 0x01};
static const uint8_t new_app[] = {0xA0, 0x00, 0x00, 0x09, 0x99, 0x01, 0x01, 0x01};

struct tctx {
    struct sim_pop *pop;
    struct ota_crypto *c;
    struct sim_scp80_keyset ks; /* SE1, TAR 000000 (AES) */
    uint8_t ref;
    uint64_t cntr;
};

/* A script under construction: GP builder output parsed into struct ota_apdu. */
struct script {
    uint8_t raw[24][OTA_APDU_MAX_LEN];
    struct ota_apdu a[24];
    size_t n;
};

static void sc_add(struct script *s, const uint8_t *b, int len)
{
    struct ota_err e;

    assert_true(len > 0);
    assert_true(s->n < 24);
    memcpy(s->raw[s->n], b, (size_t)len);
    assert_int_equal(ota_apdu_parse(s->raw[s->n], (size_t)len, &s->a[s->n], &e), 0);
    s->n++;
}

static size_t sc_compact(const struct script *s, uint8_t *dst, size_t cap)
{
    struct ota_err e;
    int n = ota_rapdu_compact_build(s->a, s->n, dst, cap, &e);

    assert_true(n > 0);
    return (size_t)n;
}

static int setup(void **state)
{
    struct tctx *t = calloc(1, sizeof(*t));
    struct ota_err e;

    assert_non_null(t);
    assert_int_equal(sim_pop_load(SAMPLE, &t->pop, &e), 0);
    assert_int_equal(ota_crypto_new(&t->c, &e), 0);
    assert_int_equal(sim_pop_scp80_keys(t->pop, 0, tar_isd, &t->ks, &e), 0);
    t->cntr = 1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tctx *t = *state;

    sim_pop_free(t->pop);
    ota_crypto_free(t->c);
    free(t);
    return 0;
}

/* The usual SPI: CC, ciphered, counter higher, PoR always with CC + ciphering, by SMS-SUBMIT. */
static struct ota_scp80_cmd std_cmd(const struct sim_scp80_keyset *ks, bool aes, uint64_t cntr)
{
    struct ota_scp80_cmd cmd;
    struct ota_err e;

    memset(&cmd, 0, sizeof(cmd));
    cmd.spi.integrity = OTA_SCP80_INTEGRITY_CC;
    cmd.spi.ciphered = true;
    cmd.spi.cntr_mode = OTA_SCP80_CNTR_HIGHER;
    cmd.spi.por = OTA_SCP80_POR_ALWAYS;
    cmd.spi.por_integrity = OTA_SCP80_INTEGRITY_CC;
    cmd.spi.por_ciphered = true;
    cmd.spi.por_via = OTA_SCP80_POR_VIA_SMS_SUBMIT;
    cmd.kic = (uint8_t)ota_scp80_keyid_encode(
        ks->kvn, aes ? OTA_SCP80_ALG_AES_CBC : OTA_SCP80_ALG_3DES2_CBC, &e);
    cmd.kid = (uint8_t)ota_scp80_keyid_encode(
        ks->kvn, aes ? OTA_SCP80_ALG_AES_CMAC : OTA_SCP80_ALG_3DES2_CBC_MAC, &e);
    memcpy(cmd.tar, ks->tar, 3);
    cmd.cntr = cntr;
    cmd.cc_len = 8;
    return cmd;
}

/*
 * Encode, segment (CPI in part 1) and deliver; every part but the last must
 * be held. corrupt_last flips the last octet of the packet. Returns the
 * outcome of the last part.
 */
static enum sim_outcome send_packet(struct tctx *t, const char *msisdn,
                                    const struct ota_scp80_cmd *cmd,
                                    const struct ota_scp80_keys *keys, const uint8_t *data,
                                    size_t dlen, bool reverse, bool corrupt_last, struct sim_mo *mo)
{
    uint8_t pkt[OTA_SCP80_MAX_PACKET];
    struct ota_sms_part parts[16];
    struct ota_udh_ie cpi = {OTA_IEI_CPI, 0, NULL};
    struct ota_concat_opts opts = {NULL, 0, &cpi, 1, false, 0};
    enum sim_outcome out = SIM_OUT_INVALID;
    struct ota_err e;
    int n, np;

    n = ota_scp80_cmd_encode(t->c, cmd, keys, data, dlen, pkt, sizeof(pkt), NULL, &e);
    assert_true(n > 0);
    if (corrupt_last) {
        pkt[n - 1] ^= 0x01;
    }
    opts.ref = ++t->ref;
    np = ota_concat_segment(pkt, (size_t)n, &opts, parts, 16, &e);
    assert_true(np > 0);
    for (int i = 0; i < np; i++) {
        const struct ota_sms_part *pt = &parts[reverse ? np - 1 - i : i];

        memset(mo, 0, sizeof(*mo));
        assert_int_equal(sim_card_deliver(t->pop, msisdn, pt->ud, pt->len, pt->udhi, 0x7F, 0xF6,
                                          1000, &out, mo, &e),
                         0);
        if (i < np - 1) {
            assert_int_equal(out, SIM_OUT_PENDING);
        }
    }
    return out;
}

static void decode_por(struct tctx *t, const struct ota_scp80_cmd *cmd,
                       const struct ota_scp80_keys *keys, const struct sim_mo *mo,
                       struct ota_scp80_por *por, uint8_t *work, size_t work_cap)
{
    struct ota_err e;

    assert_true(mo->udhi);
    assert_int_equal(mo->pid, 0x7F);
    assert_int_equal(mo->dcs, 0xF6);
    assert_int_equal(
        ota_scp80_por_decode_sms(t->c, cmd, keys, mo->ud, mo->len, work, work_cap, por, &e), 0);
    /* without the key set a card cannot read a ciphered counter: 09/06 PoRs carry 0 */
    if (por->status != OTA_SCP80_ST_TAR_UNKNOWN &&
        por->status != OTA_SCP80_ST_UNIDENTIFIED_SECURITY) {
        assert_int_equal(ota_scp80_por_match(por, cmd->tar, cmd->cntr, &e), 0);
    } else {
        assert_int_equal(por->cntr, 0);
    }
}

/* Run a compact script on SE1 (AES key set); return the compact response. */
static void run_compact(struct tctx *t, const struct script *s, struct ota_rapdu_compact_rsp *r,
                        uint8_t *work, size_t work_cap)
{
    uint8_t data[OTA_SCP80_MAX_PACKET];
    size_t dl = sc_compact(s, data, sizeof(data));
    struct ota_scp80_cmd cmd = std_cmd(&t->ks, true, ++t->cntr);
    struct ota_scp80_keys keys = {&t->ks.kic, &t->ks.kid};
    struct ota_scp80_por por;
    struct sim_mo mo;
    struct ota_err e;

    assert_int_equal(send_packet(t, SE1, &cmd, &keys, data, dl, false, false, &mo), SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, work_cap);
    assert_int_equal(por.status, OTA_SCP80_ST_OK);
    assert_int_equal(por.cc_state, OTA_SCP80_CC_VALID);
    assert_true(por.deciphered);
    assert_int_equal(ota_rapdu_compact_rsp_parse(por.data, por.data_len, r, &e), 0);
}

static void add_get_status(struct script *s, uint8_t p1, uint8_t p2)
{
    uint8_t b[OTA_APDU_MAX_LEN];
    struct ota_err e;

    sc_add(s, b, ota_gp_get_status(p1, p2, NULL, 0, NULL, 0, b, sizeof(b), &e));
}

/* ---- bad paths ---- */

static void test_malformed_sms(void **state)
{
    struct tctx *t = *state;
    static const uint8_t plain[] = {0x01, 0x02, 0x03};
    static const uint8_t bad_udh[] = {0x05, 0x70, 0x00};
    static const uint8_t cpi_garbage[] = {0x02, 0x70, 0x00, 0x00, 0x01, 0x0D};
    static const uint8_t bad_push[] = {0x06, 0x05, 0x04, 0x1F, 0x90, 0x00, 0x00, 0x09, 0x01};
    enum sim_outcome out = SIM_OUT_POR;
    struct sim_counts c;
    struct sim_mo mo;
    struct ota_err e;

    assert_int_equal(
        sim_card_deliver(t->pop, SE1, plain, sizeof(plain), false, 0x7F, 0xF6, 0, &out, &mo, &e),
        0);
    assert_int_equal(out, SIM_OUT_INVALID);
    assert_int_equal(
        sim_card_deliver(t->pop, SE1, bad_udh, sizeof(bad_udh), true, 0x7F, 0xF6, 0, &out, &mo, &e),
        0);
    assert_int_equal(out, SIM_OUT_INVALID);
    /* CPI but the wrong PID */
    assert_int_equal(sim_card_deliver(t->pop, SE1, cpi_garbage, sizeof(cpi_garbage), true, 0x00,
                                      0xF6, 0, &out, &mo, &e),
                     0);
    assert_int_equal(out, SIM_OUT_INVALID);
    /* CPI, right PID, packet shorter than its header */
    assert_int_equal(sim_card_deliver(t->pop, SE1, cpi_garbage, sizeof(cpi_garbage), true, 0x7F,
                                      0xF6, 0, &out, &mo, &e),
                     0);
    assert_int_equal(out, SIM_OUT_INVALID);
    /* push with version 09 */
    assert_int_equal(sim_card_deliver(t->pop, SE1, bad_push, sizeof(bad_push), true, 0x00, 0xF5, 0,
                                      &out, &mo, &e),
                     0);
    assert_int_equal(out, SIM_OUT_INVALID);
    /* NULL user data with a length */
    assert_int_equal(sim_card_deliver(t->pop, SE1, NULL, 5, true, 0x7F, 0xF6, 0, &out, &mo, &e),
                     -EINVAL);
    assert_int_equal(sim_card_deliver(t->pop, "8613899999999", plain, sizeof(plain), true, 0x7F,
                                      0xF6, 0, &out, &mo, &e),
                     0);
    assert_int_equal(out, SIM_OUT_UNKNOWN_SE);
    sim_pop_counts(t->pop, &c);
    assert_int_equal(c.invalid_sms, 5);
    assert_int_equal(c.unknown_se, 1);
    assert_int_equal(c.mt_parts, 5);
    assert_int_equal(c.por_sent, 0);
    assert_string_equal(sim_outcome_name(SIM_OUT_INVALID), "invalid");
    assert_string_equal(sim_outcome_name((enum sim_outcome)42), "unknown");
}

static void test_bad_cc(void **state)
{
    struct tctx *t = *state;
    static const uint8_t gd[] = {0x80, 0xCA, 0x00, 0x66, 0x00};
    struct ota_scp80_cmd cmd = std_cmd(&t->ks, true, 50);
    struct ota_scp80_keys keys = {&t->ks.kic, &t->ks.kid};
    uint8_t work[256];
    struct ota_scp80_por por;
    struct sim_counts c;
    struct sim_mo mo;

    assert_int_equal(send_packet(t, SE1, &cmd, &keys, gd, sizeof(gd), false, true, &mo),
                     SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_RC_CC_DS_FAILED);
    assert_true(por.protection_missing);
    sim_pop_counts(t->pop, &c);
    assert_int_equal(c.bad_cc, 1);
    assert_int_equal(c.commands_ok, 0);
    /* the refused packet did not move the counter: 2 is still fresh */
    cmd = std_cmd(&t->ks, true, 2);
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, gd, sizeof(gd), false, false, &mo),
                     SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_OK);
}

static void test_unknown_tar_and_kvn(void **state)
{
    struct tctx *t = *state;
    static const uint8_t gd[] = {0x80, 0xCA, 0x00, 0x66, 0x00};
    struct ota_scp80_cmd cmd = std_cmd(&t->ks, true, 7);
    struct ota_scp80_keys keys = {&t->ks.kic, &t->ks.kid};
    uint8_t work[256];
    struct ota_scp80_por por;
    struct sim_counts c;
    struct sim_mo mo;
    struct ota_err e;

    cmd.tar[0] = 0xC0;
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, gd, sizeof(gd), false, false, &mo),
                     SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_TAR_UNKNOWN);
    /* known TAR, KVN 5 in KIc/KID: no such key set */
    cmd = std_cmd(&t->ks, true, 8);
    cmd.kic = (uint8_t)ota_scp80_keyid_encode(5, OTA_SCP80_ALG_AES_CBC, &e);
    cmd.kid = (uint8_t)ota_scp80_keyid_encode(5, OTA_SCP80_ALG_AES_CMAC, &e);
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, gd, sizeof(gd), false, false, &mo),
                     SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_UNIDENTIFIED_SECURITY);
    sim_pop_counts(t->pop, &c);
    assert_int_equal(c.unknown_tar, 1);
    assert_int_equal(c.commands_ok, 0);
}

static void test_counter_replay(void **state)
{
    struct tctx *t = *state;
    static const uint8_t gd[] = {0x80, 0xCA, 0x00, 0x66, 0x00};
    struct ota_scp80_keys keys = {&t->ks.kic, &t->ks.kid};
    struct ota_scp80_cmd cmd = std_cmd(&t->ks, true, 5);
    uint8_t work[256];
    struct ota_scp80_por por;
    struct sim_counts c;
    struct sim_mo mo;

    assert_int_equal(send_packet(t, SE1, &cmd, &keys, gd, sizeof(gd), false, false, &mo),
                     SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_OK);
    /* the same counter again: refused (02) and counted as reused */
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, gd, sizeof(gd), false, false, &mo),
                     SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_CNTR_LOW);
    assert_true(por.protection_missing);
    /* a lower counter never sent before: refused, not a reuse */
    cmd = std_cmd(&t->ks, true, 3);
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, gd, sizeof(gd), false, false, &mo),
                     SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_CNTR_LOW);
    /* mode 11 (exactly +1) with a gap: 03 */
    cmd = std_cmd(&t->ks, true, 9);
    cmd.spi.cntr_mode = OTA_SCP80_CNTR_PLUS1;
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, gd, sizeof(gd), false, false, &mo),
                     SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_CNTR_HIGH);
    sim_pop_counts(t->pop, &c);
    assert_int_equal(c.counter_reused, 1);
    assert_int_equal(c.counter_refused, 3);
    assert_int_equal(c.commands_ok, 1);
}

/* ---- PoR shapes ---- */

static void test_por_shapes(void **state)
{
    struct tctx *t = *state;
    static const uint8_t gd[] = {0x80, 0xCA, 0x00, 0x66, 0x00};
    struct ota_scp80_keys keys = {&t->ks.kic, &t->ks.kid};
    struct ota_scp80_cmd cmd = std_cmd(&t->ks, true, 10);
    uint8_t work[256];
    struct ota_scp80_por por;
    struct ota_rapdu_compact_rsp r;
    struct sim_mo mo, rep;
    struct ota_err e;

    assert_int_equal(sim_pop_last_report(t->pop, &rep), -ENOENT);
    cmd.spi.por = OTA_SCP80_POR_NONE;
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, gd, sizeof(gd), false, false, &mo),
                     SIM_OUT_NO_POR);
    cmd = std_cmd(&t->ks, true, 11);
    cmd.spi.por = OTA_SCP80_POR_ON_ERROR;
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, gd, sizeof(gd), false, false, &mo),
                     SIM_OUT_NO_POR);
    /* deliver report, RC-less plain PoR */
    cmd = std_cmd(&t->ks, true, 12);
    cmd.spi.por_via = OTA_SCP80_POR_VIA_DELIVER_REPORT;
    cmd.spi.por_ciphered = false;
    cmd.spi.por_integrity = OTA_SCP80_INTEGRITY_NONE;
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, gd, sizeof(gd), false, false, &mo),
                     SIM_OUT_POR_REPORT);
    assert_int_equal(sim_pop_last_report(t->pop, &rep), 0);
    decode_por(t, &cmd, &keys, &rep, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_OK);
    assert_false(por.deciphered);
    assert_int_equal(por.cc_state, OTA_SCP80_CC_ABSENT);
    assert_int_equal(ota_rapdu_compact_rsp_parse(por.data, por.data_len, &r, &e), 0);
    assert_int_equal(r.n_executed, 1);
    assert_int_equal(r.sw, 0x9000);
    assert_int_equal(r.data_len, 13);
    assert_int_equal(r.data[0], 0x66);
}

/* ---- GP model through SCP80 ---- */

static void test_failing_command_stops_script(void **state)
{
    struct tctx *t = *state;
    static const uint8_t gd[] = {0x80, 0xCA, 0x00, 0x66, 0x00};
    static const uint8_t bad_ins[] = {0x80, 0x10, 0x00, 0x00, 0x01, 0x00};
    static const uint8_t bad_cla[] = {0xA0, 0xCA, 0x00, 0x66, 0x00};
    uint8_t work[256];
    struct ota_rapdu_compact_rsp r;
    struct script s = {0};
    struct sim_counts c0, c1;

    sim_pop_counts(t->pop, &c0);
    sc_add(&s, gd, sizeof(gd));
    sc_add(&s, bad_ins, sizeof(bad_ins));
    sc_add(&s, gd, sizeof(gd));
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.n_executed, 2);
    assert_int_equal(r.sw, 0x6D00);
    assert_int_equal(r.data_len, 0);
    memset(&s, 0, sizeof(s));
    sc_add(&s, bad_cla, sizeof(bad_cla));
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.n_executed, 1);
    assert_int_equal(r.sw, 0x6E00);
    sim_pop_counts(t->pop, &c1);
    assert_int_equal(c1.apdus_run - c0.apdus_run, 3);
    assert_int_equal(c1.apdus_failed - c0.apdus_failed, 2);
}

static void expect_app_lcs(struct tctx *t, const uint8_t *aid, size_t aid_len, int lcs)
{
    uint8_t work[256];
    struct ota_rapdu_compact_rsp r;
    struct ota_gp_status_entry ent[8];
    struct script s = {0};
    struct ota_err e;
    size_t n = 0;
    int found = -1;

    add_get_status(&s, OTA_GP_STATUS_APPS, OTA_GP_STATUS_TLV);
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.n_executed, 1);
    assert_int_equal(r.sw, 0x9000);
    assert_int_equal(ota_gp_status_parse_tlv(r.data, r.data_len, ent, 8, &n, &e), 0);
    for (size_t i = 0; i < n; i++) {
        if (ent[i].aid_len == aid_len && memcmp(ent[i].aid, aid, aid_len) == 0) {
            found = ent[i].lcs;
        }
    }
    assert_int_equal(found, lcs);
}

static void test_lock_unlock(void **state)
{
    struct tctx *t = *state;
    static const uint8_t unknown[] = {0xA0, 0x00, 0x00, 0x00, 0x99};
    uint8_t b[OTA_APDU_MAX_LEN], work[256];
    struct ota_rapdu_compact_rsp r;
    struct script s = {0};
    struct ota_err e;

    expect_app_lcs(t, app1, sizeof(app1), 0x07);
    sc_add(&s, b,
           ota_gp_set_status(OTA_GP_STATUS_SCOPE_APP, OTA_GP_SET_STATUS_LOCK, app1, sizeof(app1), b,
                             sizeof(b), &e));
    sc_add(&s, b, ota_gp_select(app1, sizeof(app1), b, sizeof(b), &e));
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.n_executed, 2);
    assert_int_equal(r.sw, 0x6A82); /* a locked application cannot be selected */
    expect_app_lcs(t, app1, sizeof(app1), 0x87);
    memset(&s, 0, sizeof(s));
    sc_add(&s, b,
           ota_gp_set_status(OTA_GP_STATUS_SCOPE_APP, OTA_GP_SET_STATUS_UNLOCK, app1, sizeof(app1),
                             b, sizeof(b), &e));
    sc_add(&s, b, ota_gp_select(app1, sizeof(app1), b, sizeof(b), &e));
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.n_executed, 2);
    assert_int_equal(r.sw, 0x9000);
    expect_app_lcs(t, app1, sizeof(app1), 0x07);
    memset(&s, 0, sizeof(s));
    sc_add(&s, b,
           ota_gp_set_status(OTA_GP_STATUS_SCOPE_APP, OTA_GP_SET_STATUS_LOCK, unknown,
                             sizeof(unknown), b, sizeof(b), &e));
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.sw, 0x6A88);
}

static uint32_t free_nv(struct tctx *t)
{
    uint8_t b[OTA_APDU_MAX_LEN], work[256];
    struct ota_rapdu_compact_rsp r;
    struct script s = {0};
    struct ota_err e;

    sc_add(&s, b, ota_gp_get_data(0xFF21, b, sizeof(b), &e));
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.sw, 0x9000);
    assert_int_equal(r.data_len, 17);
    assert_int_equal(r.data[7], 0x82);
    return (uint32_t)r.data[9] << 24 | (uint32_t)r.data[10] << 16 | (uint32_t)r.data[11] << 8 |
           r.data[12];
}

/* INSTALL for load + LOAD blocks + INSTALL for install and make selectable, concatenated. */
static void add_load_install(struct script *s, const uint8_t *file, size_t file_len)
{
    uint8_t b[OTA_APDU_MAX_LEN], params[8];
    static const uint8_t priv[] = {0x00};
    struct ota_gp_install in = {0};
    struct ota_gp_load ld = {file, file_len, NULL, 0, 100};
    struct ota_err e;
    size_t nb = 0;
    int pl;

    in.kind = OTA_GP_INSTALL_FOR_LOAD;
    in.elf_aid = elf_aid;
    in.elf_aid_len = sizeof(elf_aid);
    sc_add(s, b, ota_gp_install(&in, b, sizeof(b), &e));
    assert_int_equal(ota_gp_load_count(&ld, &nb, &e), 0);
    for (size_t i = 0; i < nb; i++) {
        sc_add(s, b, ota_gp_load_block(&ld, i, b, sizeof(b), &e));
    }
    pl = ota_gp_install_params(NULL, 0, NULL, 0, params, sizeof(params), &e);
    assert_true(pl > 0);
    memset(&in, 0, sizeof(in));
    in.kind = OTA_GP_INSTALL_FOR_INSTALL_SELECTABLE;
    in.elf_aid = elf_aid;
    in.elf_aid_len = sizeof(elf_aid);
    in.mod_aid = mod_aid;
    in.mod_aid_len = sizeof(mod_aid);
    in.app_aid = new_app;
    in.app_aid_len = sizeof(new_app);
    in.priv = priv;
    in.priv_len = 1;
    in.params = params;
    in.params_len = (size_t)pl;
    sc_add(s, b, ota_gp_install(&in, b, sizeof(b), &e));
}

static void test_load_install_delete(void **state)
{
    struct tctx *t = *state;
    uint8_t file[300], b[OTA_APDU_MAX_LEN], work[256];
    struct ota_rapdu_compact_rsp r;
    struct ota_gp_status_entry ent[8];
    struct script s = {0};
    struct ota_err e;
    uint32_t before, after;
    const uint8_t *m;
    size_t n = 0, ml = 0;

    for (size_t i = 0; i < sizeof(file); i++) {
        file[i] = (uint8_t)i;
    }
    before = free_nv(t);
    assert_int_equal(before, 65536);
    /* no ELF yet */
    add_get_status(&s, OTA_GP_STATUS_ELF, OTA_GP_STATUS_TLV);
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.sw, 0x6A88);
    memset(&s, 0, sizeof(s));
    add_load_install(&s, file, sizeof(file));
    run_compact(t, &s, &r, work, sizeof(work)); /* several SMS */
    assert_int_equal(r.n_executed, s.n);
    assert_int_equal(r.sw, 0x9000);
    after = free_nv(t);
    /* 300 octets + C4 82 01 2C, and one application */
    assert_int_equal(after, before - 304 - 256);
    expect_app_lcs(t, new_app, sizeof(new_app), 0x07);
    memset(&s, 0, sizeof(s));
    add_get_status(&s, OTA_GP_STATUS_ELF_MOD, OTA_GP_STATUS_LEGACY);
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.sw, 0x9000);
    assert_int_equal(
        ota_gp_status_parse_legacy(r.data, r.data_len, OTA_GP_STATUS_ELF_MOD, ent, 8, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(ent[0].aid, elf_aid, sizeof(elf_aid));
    assert_int_equal(ent[0].lcs, OTA_GP_ELF_LOADED);
    assert_int_equal(ent[0].n_modules, 1);
    assert_int_equal(ota_gp_status_module(&ent[0], 0, &m, &ml, &e), 0);
    assert_memory_equal(m, mod_aid, sizeof(mod_aid));
    /* the ELF has an instance: plain DELETE refused, related DELETE takes both */
    memset(&s, 0, sizeof(s));
    sc_add(&s, b, ota_gp_delete(elf_aid, sizeof(elf_aid), false, NULL, 0, b, sizeof(b), &e));
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.sw, 0x6985);
    memset(&s, 0, sizeof(s));
    sc_add(&s, b, ota_gp_delete(elf_aid, sizeof(elf_aid), true, NULL, 0, b, sizeof(b), &e));
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.sw, 0x9000);
    assert_int_equal(free_nv(t), before);
    expect_app_lcs(t, new_app, sizeof(new_app), -1);
    memset(&s, 0, sizeof(s));
    sc_add(&s, b, ota_gp_delete(elf_aid, sizeof(elf_aid), true, NULL, 0, b, sizeof(b), &e));
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.sw, 0x6A88);
}

static void test_personalize(void **state)
{
    struct tctx *t = *state;
    static const uint8_t dgi[] = {0x01, 0x02, 0x03, 0x04};
    uint8_t b[OTA_APDU_MAX_LEN], work[256];
    struct ota_rapdu_compact_rsp r;
    struct ota_gp_install in = {0};
    struct script s = {0};
    struct ota_err e;

    in.kind = OTA_GP_INSTALL_FOR_PERSONALIZATION;
    in.app_aid = app1;
    in.app_aid_len = sizeof(app1);
    sc_add(&s, b, ota_gp_install(&in, b, sizeof(b), &e));
    sc_add(&s, b,
           ota_gp_store_data(OTA_GP_STORE_LAST | OTA_GP_STORE_STRUCT_DGI, 0, dgi, sizeof(dgi), b,
                             sizeof(b), &e));
    run_compact(t, &s, &r, work, sizeof(work));
    assert_int_equal(r.n_executed, 2);
    assert_int_equal(r.sw, 0x9000);
    expect_app_lcs(t, app1, sizeof(app1), 0x0F);
}

static void test_concat_out_of_order(void **state)
{
    struct tctx *t = *state;
    uint8_t file[300], data[OTA_SCP80_MAX_PACKET], work[256];
    struct ota_scp80_keys keys = {&t->ks.kic, &t->ks.kid};
    struct ota_scp80_cmd cmd = std_cmd(&t->ks, true, 100);
    struct ota_rapdu_compact_rsp r;
    struct ota_scp80_por por;
    struct script s = {0};
    struct sim_counts c0, c1;
    struct sim_mo mo;
    struct ota_err e;
    size_t dl;

    memset(file, 0x5A, sizeof(file));
    add_load_install(&s, file, sizeof(file));
    dl = sc_compact(&s, data, sizeof(data));
    assert_true(dl > 2 * OTA_SMS_UD_MAX);
    sim_pop_counts(t->pop, &c0);
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, data, dl, true, false, &mo), SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_OK);
    assert_int_equal(ota_rapdu_compact_rsp_parse(por.data, por.data_len, &r, &e), 0);
    assert_int_equal(r.n_executed, s.n);
    assert_int_equal(r.sw, 0x9000);
    sim_pop_counts(t->pop, &c1);
    assert_int_equal(c1.mt_complete - c0.mt_complete, 1);
    assert_true(c1.mt_parts - c0.mt_parts >= 3);
}

static void test_out_of_space(void **state)
{
    struct tctx *t = *state;
    uint8_t file[5000], data[OTA_SCP80_MAX_PACKET], work[256];
    struct sim_scp80_keyset ks;
    struct ota_scp80_keys keys;
    struct ota_scp80_cmd cmd;
    struct ota_rapdu_compact_rsp r;
    struct ota_scp80_por por;
    struct ota_gp_load ld = {file, sizeof(file), NULL, 0, 250};
    struct ota_gp_install in = {0};
    struct script s = {0};
    uint8_t b[OTA_APDU_MAX_LEN];
    struct sim_mo mo;
    struct ota_err e;
    size_t dl;

    /* SE2: 3DES2 key set, 4096 octets free */
    assert_int_equal(sim_pop_scp80_keys(t->pop, 1, tar_isd, &ks, &e), 0);
    keys.kic = &ks.kic;
    keys.kid = &ks.kid;
    memset(file, 0xA5, sizeof(file));
    in.kind = OTA_GP_INSTALL_FOR_LOAD;
    in.elf_aid = elf_aid;
    in.elf_aid_len = sizeof(elf_aid);
    sc_add(&s, b, ota_gp_install(&in, b, sizeof(b), &e));
    for (size_t i = 0; i < 7; i++) {
        sc_add(&s, b, ota_gp_load_block(&ld, i, b, sizeof(b), &e));
    }
    dl = sc_compact(&s, data, sizeof(data));
    cmd = std_cmd(&ks, false, 1);
    assert_int_equal(send_packet(t, SE2, &cmd, &keys, data, dl, false, false, &mo), SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_OK);
    assert_int_equal(ota_rapdu_compact_rsp_parse(por.data, por.data_len, &r, &e), 0);
    /* blocks of 250 against 4096 free: 7 blocks = 1750 octets fit */
    assert_int_equal(r.sw, 0x9000);
    assert_int_equal(r.n_executed, 8);
    memset(&s, 0, sizeof(s));
    for (size_t i = 7; i < 14; i++) {
        sc_add(&s, b, ota_gp_load_block(&ld, i, b, sizeof(b), &e));
    }
    dl = sc_compact(&s, data, sizeof(data));
    cmd = std_cmd(&ks, false, 2);
    assert_int_equal(send_packet(t, SE2, &cmd, &keys, data, dl, false, false, &mo), SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(ota_rapdu_compact_rsp_parse(por.data, por.data_len, &r, &e), 0);
    /* 3500 octets fit */
    assert_int_equal(r.sw, 0x9000);
    assert_int_equal(r.n_executed, 7);
    memset(&s, 0, sizeof(s));
    for (size_t i = 14; i < 17; i++) {
        sc_add(&s, b, ota_gp_load_block(&ld, i, b, sizeof(b), &e));
    }
    dl = sc_compact(&s, data, sizeof(data));
    cmd = std_cmd(&ks, false, 3);
    assert_int_equal(send_packet(t, SE2, &cmd, &keys, data, dl, false, false, &mo), SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(ota_rapdu_compact_rsp_parse(por.data, por.data_len, &r, &e), 0);
    /* 3750 and 4000 fit, 4250 does not: the third LOAD fails and stops the script */
    assert_int_equal(r.sw, 0x6A84);
    assert_int_equal(r.n_executed, 3);
}

static void test_expanded_script(void **state)
{
    struct tctx *t = *state;
    uint8_t b[OTA_APDU_MAX_LEN], data[512], work[512];
    struct ota_apdu a[2];
    struct ota_scp80_keys keys = {&t->ks.kic, &t->ks.kid};
    struct ota_scp80_cmd cmd = std_cmd(&t->ks, true, 200);
    struct ota_rapdu_exp_rsp xr;
    struct ota_rapdu_rapdu ra[4];
    struct ota_scp80_por por;
    struct sim_mo mo;
    struct ota_err e;
    int n;

    assert_true(ota_gp_get_data(0xFF21, b, sizeof(b), &e) > 0);
    assert_int_equal(ota_apdu_parse(b, 5, &a[0], &e), 0);
    a[1] = a[0];
    n = ota_rapdu_exp_cmd_build_apdus(a, 2, false, data, sizeof(data), &e);
    assert_true(n > 0);
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, data, (size_t)n, false, false, &mo),
                     SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_OK);
    assert_int_equal(ota_rapdu_exp_rsp_parse(por.data, por.data_len, &xr, ra, 4, &e), 0);
    assert_true(xr.has_n_executed);
    assert_int_equal(xr.n_executed, 2);
    assert_int_equal(xr.n_rapdus, 2);
    assert_int_equal(ra[1].sw, 0x9000);
    assert_int_equal(ra[1].data_len, 17);
    assert_true(ota_rapdu_exp_rsp_ok(&xr, ra, 2));
}

static void test_push_recorded(void **state)
{
    struct tctx *t = *state;
    struct ota_push push = {0}, got;
    uint8_t ud[OTA_PUSH_UD_MAX];
    enum sim_outcome out = SIM_OUT_INVALID;
    struct sim_counts c;
    struct sim_mo mo;
    struct ota_err e;
    int n;

    assert_int_equal(sim_pop_last_push(t->pop, SE2, &got), -ENOENT);
    push.dst_port = 0x1F90;
    push.src_port = 0x0000;
    push.seid_len = 10;
    memcpy(push.seid, "\x53\x45\x00\x00\x00\x00\x00\x00\x00\x02", 10);
    memset(push.serial, 0x42, sizeof(push.serial));
    n = ota_push_encode(&push, ud, sizeof(ud), &e);
    assert_true(n > 0);
    assert_int_equal(
        sim_card_deliver(t->pop, SE2, ud, (size_t)n, true, 0x00, 0xF5, 0, &out, &mo, &e), 0);
    assert_int_equal(out, SIM_OUT_PUSH);
    assert_int_equal(sim_pop_last_push(t->pop, SE2, &got), 0);
    assert_int_equal(got.dst_port, 0x1F90);
    assert_memory_equal(got.serial, push.serial, sizeof(push.serial));
    sim_pop_counts(t->pop, &c);
    assert_int_equal(c.pushes, 1);
}

/* A generated SE, keys derived by the "gateway" independently of the simulator. */
static void test_generated_se_command(void **state)
{
    static const uint8_t seed[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t gd[] = {0x80, 0xCA, 0x00, 0x66, 0x00};
    struct tctx *t = *state;
    struct sim_pop *g = NULL;
    struct ota_key seedk, kic, kid;
    struct sim_scp80_keyset ks = {0};
    uint8_t in[11] = {'K', 'I', 'C', 0, 0, 0, 0, 0, 0, 0, 7}, mac[16], ud[140], work[256];
    struct ota_scp80_keys keys = {&kic, &kid};
    struct ota_scp80_cmd cmd;
    struct ota_scp80_por por;
    enum sim_outcome out = SIM_OUT_INVALID;
    struct sim_mo mo;
    struct ota_err e;
    size_t ml = 0;
    int n;

    assert_int_equal(sim_pop_generate(1000, 8613900000000ull, seed, &g, &e), 0);
    assert_int_equal(ota_key_set(&seedk, OTA_CIPHER_AES, seed, 16, &e), 0);
    assert_int_equal(ota_crypto_cmac(t->c, &seedk, in, sizeof(in), mac, &ml, &e), 0);
    assert_int_equal(ota_key_set(&kic, OTA_CIPHER_AES, mac, 16, &e), 0);
    in[1] = 'I';
    in[2] = 'D';
    assert_int_equal(ota_crypto_cmac(t->c, &seedk, in, sizeof(in), mac, &ml, &e), 0);
    assert_int_equal(ota_key_set(&kid, OTA_CIPHER_AES, mac, 16, &e), 0);
    ks.kvn = 1;
    cmd = std_cmd(&ks, true, 1);
    n = ota_scp80_cmd_encode_sms(t->c, &cmd, &keys, gd, sizeof(gd), ud, sizeof(ud), NULL, &e);
    assert_true(n > 0);
    assert_int_equal(
        sim_card_deliver(g, "8613900000007", ud, (size_t)n, true, 0x7F, 0xF6, 0, &out, &mo, &e), 0);
    assert_int_equal(out, SIM_OUT_POR);
    assert_int_equal(
        ota_scp80_por_decode_sms(t->c, &cmd, &keys, mo.ud, mo.len, work, sizeof(work), &por, &e),
        0);
    assert_int_equal(por.status, OTA_SCP80_ST_OK);
    assert_int_equal(por.cc_state, OTA_SCP80_CC_VALID);
    /* RFM TAR B00000 shares the key set and its counter: 1 again is a replay */
    cmd.tar[0] = 0xB0;
    n = ota_scp80_cmd_encode_sms(t->c, &cmd, &keys, gd, sizeof(gd), ud, sizeof(ud), NULL, &e);
    assert_true(n > 0);
    assert_int_equal(
        sim_card_deliver(g, "8613900000007", ud, (size_t)n, true, 0x7F, 0xF6, 0, &out, &mo, &e), 0);
    assert_int_equal(
        ota_scp80_por_decode_sms(t->c, &cmd, &keys, mo.ud, mo.len, work, sizeof(work), &por, &e),
        0);
    assert_int_equal(por.status, OTA_SCP80_ST_CNTR_LOW);
    assert_int_equal(sim_pop_n_touched(g), 1);
    ota_key_wipe(&seedk);
    ota_key_wipe(&kic);
    ota_key_wipe(&kid);
    sim_pop_free(g);
}

/* ---- robustness ---- */

static void test_truncated_sms(void **state)
{
    struct tctx *t = *state;
    static const uint8_t gd[] = {0x80, 0xCA, 0x00, 0x66, 0x00};
    struct ota_scp80_keys keys = {&t->ks.kic, &t->ks.kid};
    struct ota_scp80_cmd cmd = std_cmd(&t->ks, true, 300);
    enum sim_outcome out = SIM_OUT_POR;
    uint8_t ud[140];
    struct sim_counts c;
    struct sim_mo mo;
    struct ota_err e;
    int n;

    n = ota_scp80_cmd_encode_sms(t->c, &cmd, &keys, gd, sizeof(gd), ud, sizeof(ud), NULL, &e);
    assert_true(n > 3);
    for (int len = 0; len < n; len++) {
        assert_int_equal(
            sim_card_deliver(t->pop, SE1, ud, (size_t)len, true, 0x7F, 0xF6, 0, &out, &mo, &e), 0);
        assert_int_equal(out, SIM_OUT_INVALID);
    }
    sim_pop_counts(t->pop, &c);
    assert_int_equal(c.invalid_sms, (uint64_t)n);
    assert_int_equal(c.commands_ok, 0);
    assert_int_equal(
        sim_card_deliver(t->pop, SE1, ud, (size_t)n, true, 0x7F, 0xF6, 0, &out, &mo, &e), 0);
    assert_int_equal(out, SIM_OUT_POR);
}

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random commands: every one gets a status word, nothing is read or written out of bounds. */
static void test_gp_random_apdus(void **state)
{
    static const uint8_t ins[] = {0xA4, 0xF2, 0xCA, 0xF0, 0xE4, 0xE6, 0xE8, 0xE2, 0xD8, 0x10};
    static const uint8_t cla[] = {0x00, 0x80, 0x84, 0xA0};
    struct sim_gp_card *card = malloc(sizeof(*card));
    uint8_t data[255], rsp[256];
    uint64_t seed = 0x9E3779B97F4A7C15ull;

    (void)state;
    assert_non_null(card);
    sim_gp_init(card, 2000);
    for (int i = 0; i < 20000; i++) {
        struct ota_apdu a = {0};
        size_t rl = 999;
        uint16_t sw;

        a.cla = cla[xs(&seed) % sizeof(cla)];
        a.ins = ins[xs(&seed) % sizeof(ins)];
        a.p1 = (uint8_t)xs(&seed);
        a.p2 = (uint8_t)(xs(&seed) % 4 == 0 ? 0x80 : xs(&seed) % 3);
        if (a.ins == 0xE6) {
            a.p1 = (uint8_t)(1u << (xs(&seed) % 6));
        }
        a.lc = (uint8_t)(xs(&seed) % 40);
        for (size_t k = 0; k < a.lc; k++) {
            data[k] = (uint8_t)(xs(&seed) % 8 == 0 ? 0x4F : xs(&seed) % 20);
        }
        a.data = a.lc ? data : NULL;
        sw = sim_gp_run(card, &a, rsp, sizeof(rsp), &rl);
        assert_true(sw != 0);
        assert_true(rl <= sizeof(rsp));
        assert_true(card->free_nv <= 2000);
    }
    free(card);
}

/* ---- GP model directly ---- */

static uint16_t gp(struct sim_gp_card *c, const uint8_t *b, int len, uint8_t *rsp, size_t *rl)
{
    struct ota_apdu a;
    struct ota_err e;
    size_t dummy;

    assert_true(len >= 4);
    assert_int_equal(ota_apdu_parse(b, (size_t)len, &a, &e), 0);
    return sim_gp_run(c, &a, rsp, 256, rl ? rl : &dummy);
}

static void test_gp_model(void **state)
{
    static const uint8_t sel_isd[] = {0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00,
                                      0x00, 0x01, 0x51, 0x00, 0x00, 0x00};
    static const uint8_t sel_p1[] = {0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00};
    static const uint8_t gs_bad_p1[] = {0x80, 0xF2, 0x81, 0x02, 0x02, 0x4F, 0x00};
    static const uint8_t gs_no_4f[] = {0x80, 0xF2, 0x40, 0x02, 0x02, 0x5C, 0x00};
    static const uint8_t gs_iso_cla[] = {0x00, 0xF2, 0x40, 0x02, 0x02, 0x4F, 0x00};
    static const uint8_t inst_cut[] = {0x80, 0xE6, 0x02, 0x00, 0x03, 0x08, 0xA0, 0x00};
    static const uint8_t inst_p1[] = {0x80, 0xE6, 0x10, 0x00, 0x01, 0x00};
    static const uint8_t load0[] = {0x80, 0xE8, 0x80, 0x00, 0x02, 0xC4, 0x00};
    static const uint8_t load1[] = {0x80, 0xE8, 0x80, 0x01, 0x02, 0xC4, 0x00};
    static const uint8_t card_lock[] = {0x80, 0xF0, 0x80, 0x7F};
    static const uint8_t card_bad[] = {0x80, 0xF0, 0x80, 0x33};
    static const uint8_t put_key_bad[] = {0x80, 0xD8, 0x00, 0x81, 0x04, 0x21, 0x80, 0x10, 0x00};
    static const uint8_t del_bad_tag[] = {0x80, 0xE4, 0x00, 0x00, 0x03, 0x4E, 0x01, 0x00};
    static const uint8_t gd_cplc[] = {0x80, 0xCA, 0x9F, 0x7F, 0x00};
    static const uint8_t gd_keys[] = {0x80, 0xCA, 0x00, 0xE0, 0x00};
    static const uint8_t store[] = {0x80, 0xE2, 0x80, 0x00, 0x01, 0x00};
    struct sim_gp_card *c = malloc(sizeof(*c));
    uint8_t b[OTA_APDU_MAX_LEN], rsp[256], aid[16];
    struct ota_gp_status_entry ent[16];
    struct ota_crypto *cr = NULL;
    struct ota_key keys[3], dek;
    uint8_t raw[16];
    struct ota_gp_install in = {0};
    struct ota_err e;
    size_t rl = 0, n = 0, total = 0;
    uint16_t sw;

    (void)state;
    assert_non_null(c);
    sim_gp_init(c, 1000);
    /* SELECT */
    assert_int_equal(gp(c, sel_isd, sizeof(sel_isd), rsp, &rl), 0x9000);
    assert_int_equal(rl, 12);
    assert_int_equal(rsp[0], 0x6F);
    assert_int_equal(gp(c, sel_p1, sizeof(sel_p1), rsp, &rl), 0x6A86);
    assert_int_equal(gp(c, b, ota_gp_select(new_app, sizeof(new_app), b, sizeof(b), &e), rsp, &rl),
                     0x6A82);
    /* GET STATUS errors and the ISD entry */
    assert_int_equal(gp(c, gs_bad_p1, sizeof(gs_bad_p1), rsp, &rl), 0x6A86);
    assert_int_equal(gp(c, gs_no_4f, sizeof(gs_no_4f), rsp, &rl), 0x6A80);
    assert_int_equal(gp(c, gs_iso_cla, sizeof(gs_iso_cla), rsp, &rl), 0x6E00);
    assert_int_equal(gp(c, b,
                        ota_gp_get_status(OTA_GP_STATUS_APPS, OTA_GP_STATUS_TLV, NULL, 0, NULL, 0,
                                          b, sizeof(b), &e),
                        rsp, &rl),
                     0x6A88);
    assert_int_equal(
        gp(c, b,
           ota_gp_get_status(OTA_GP_STATUS_APPS, OTA_GP_STATUS_TLV | OTA_GP_STATUS_NEXT, NULL, 0,
                             NULL, 0, b, sizeof(b), &e),
           rsp, &rl),
        0x6A88);
    assert_int_equal(gp(c, card_lock, sizeof(card_lock), rsp, &rl), 0x9000);
    assert_int_equal(gp(c, card_bad, sizeof(card_bad), rsp, &rl), 0x6A80);
    assert_int_equal(gp(c, b,
                        ota_gp_get_status(OTA_GP_STATUS_ISD, OTA_GP_STATUS_LEGACY, NULL, 0, NULL, 0,
                                          b, sizeof(b), &e),
                        rsp, &rl),
                     0x9000);
    assert_int_equal(ota_gp_status_parse_legacy(rsp, rl, OTA_GP_STATUS_ISD, ent, 16, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ent[0].lcs, OTA_GP_CARD_LOCKED);
    assert_int_equal(ent[0].priv[0], 0x9E);
    /* paging: 6 applications of 16-octet AIDs do not fit 96 octets */
    for (uint8_t i = 0; i < 6; i++) {
        memset(aid, 0xA0 + i, sizeof(aid));
        assert_int_equal(sim_gp_add_app(c, aid, sizeof(aid), OTA_GP_APP_SELECTABLE, false, &e), 0);
    }
    assert_int_equal(sim_gp_add_app(c, aid, sizeof(aid), OTA_GP_APP_SELECTABLE, false, &e),
                     -EEXIST);
    assert_int_equal(sim_gp_add_app(c, aid, 4, OTA_GP_APP_SELECTABLE, false, &e), -EINVAL);
    sw = gp(c, b,
            ota_gp_get_status(OTA_GP_STATUS_APPS, OTA_GP_STATUS_TLV, NULL, 0, NULL, 0, b, sizeof(b),
                              &e),
            rsp, &rl);
    assert_int_equal(sw, 0x6310);
    assert_true(rl <= SIM_GP_STATUS_MAX);
    assert_int_equal(ota_gp_status_parse_tlv(rsp, rl, ent, 16, &n, &e), 0);
    total = n;
    sw = gp(c, b,
            ota_gp_get_status(OTA_GP_STATUS_APPS, OTA_GP_STATUS_TLV | OTA_GP_STATUS_NEXT, NULL, 0,
                              NULL, 0, b, sizeof(b), &e),
            rsp, &rl);
    assert_int_equal(sw, 0x9000);
    assert_int_equal(ota_gp_status_parse_tlv(rsp, rl, ent, 16, &n, &e), 0);
    assert_int_equal(total + n, 6);
    assert_int_equal(ent[n - 1].aid[0], 0xA5);
    /* prefix search */
    memset(aid, 0xA2, 2);
    assert_int_equal(gp(c, b,
                        ota_gp_get_status(OTA_GP_STATUS_APPS, OTA_GP_STATUS_TLV, aid, 2, NULL, 0, b,
                                          sizeof(b), &e),
                        rsp, &rl),
                     0x9000);
    assert_int_equal(ota_gp_status_parse_tlv(rsp, rl, ent, 16, &n, &e), 0);
    assert_int_equal(n, 1);
    /* INSTALL / LOAD errors */
    assert_int_equal(gp(c, inst_cut, sizeof(inst_cut), rsp, &rl), 0x6A80);
    assert_int_equal(gp(c, inst_p1, sizeof(inst_p1), rsp, &rl), 0x6A86);
    assert_int_equal(gp(c, load0, sizeof(load0), rsp, &rl), 0x6985);
    in.kind = OTA_GP_INSTALL_FOR_LOAD;
    in.elf_aid = elf_aid;
    in.elf_aid_len = sizeof(elf_aid);
    assert_int_equal(gp(c, b, ota_gp_install(&in, b, sizeof(b), &e), rsp, &rl), 0x9000);
    assert_int_equal(gp(c, load1, sizeof(load1), rsp, &rl), 0x6A86);
    assert_int_equal(gp(c, load0, sizeof(load0), rsp, &rl), 0x9000);
    assert_int_equal(c->free_nv, 1000 - 2);
    assert_int_equal(gp(c, b, ota_gp_install(&in, b, sizeof(b), &e), rsp, &rl), 0x6985);
    /* INSTALL for install, then make selectable */
    memset(&in, 0, sizeof(in));
    in.kind = OTA_GP_INSTALL_FOR_INSTALL;
    in.elf_aid = mod_aid; /* no such ELF */
    in.elf_aid_len = sizeof(mod_aid);
    in.mod_aid = mod_aid;
    in.mod_aid_len = sizeof(mod_aid);
    in.app_aid = new_app;
    in.app_aid_len = sizeof(new_app);
    in.priv = (const uint8_t *)"\x00";
    in.priv_len = 1;
    in.params = (const uint8_t *)"\xC9\x00";
    in.params_len = 2;
    assert_int_equal(gp(c, b, ota_gp_install(&in, b, sizeof(b), &e), rsp, &rl), 0x6A88);
    in.elf_aid = elf_aid;
    in.elf_aid_len = sizeof(elf_aid);
    assert_int_equal(gp(c, b, ota_gp_install(&in, b, sizeof(b), &e), rsp, &rl), 0x9000);
    assert_int_equal(sim_gp_find_app(c, new_app, sizeof(new_app))->lcs, OTA_GP_APP_INSTALLED);
    assert_int_equal(c->free_nv, 1000 - 2 - SIM_GP_APP_SIZE);
    assert_int_equal(gp(c, b, ota_gp_install(&in, b, sizeof(b), &e), rsp, &rl), 0x6985);
    memset(&in, 0, sizeof(in));
    in.kind = OTA_GP_INSTALL_FOR_MAKE_SELECTABLE;
    in.app_aid = new_app;
    in.app_aid_len = sizeof(new_app);
    in.priv = (const uint8_t *)"\x00";
    in.priv_len = 1;
    assert_int_equal(gp(c, b, ota_gp_install(&in, b, sizeof(b), &e), rsp, &rl), 0x9000);
    assert_int_equal(sim_gp_find_app(c, new_app, sizeof(new_app))->lcs, OTA_GP_APP_SELECTABLE);
    assert_int_equal(gp(c, b, ota_gp_install(&in, b, sizeof(b), &e), rsp, &rl), 0x6985);
    /* PUT KEY: answers the new KVN and the KCVs; GET DATA 00E0 lists it */
    assert_int_equal(ota_crypto_new(&cr, &e), 0);
    memset(raw, 0x11, sizeof(raw));
    assert_int_equal(ota_key_set(&dek, OTA_CIPHER_3DES2, raw, 16, &e), 0);
    for (int k = 0; k < 3; k++) {
        memset(raw, 0x40 + k, sizeof(raw));
        assert_int_equal(ota_key_set(&keys[k], OTA_CIPHER_3DES2, raw, 16, &e), 0);
    }
    assert_int_equal(
        gp(c, b, ota_gp_put_key(cr, 0x00, 0x21, 0x01, keys, 3, &dek, b, sizeof(b), &e), rsp, &rl),
        0x9000);
    assert_int_equal(rl, 10);
    assert_int_equal(rsp[0], 0x21);
    assert_int_equal(ota_crypto_kcv(cr, &keys[2], raw, &e), 0);
    assert_memory_equal(rsp + 7, raw, 3);
    assert_int_equal(gp(c, gd_keys, sizeof(gd_keys), rsp, &rl), 0x9000);
    assert_int_equal(rl, 2 + 3 * 6);
    assert_int_equal(rsp[5], 0x21);
    assert_int_equal(gp(c, put_key_bad, sizeof(put_key_bad), rsp, &rl), 0x6A80);
    ota_crypto_free(cr);
    /* the rest */
    assert_int_equal(gp(c, gd_cplc, sizeof(gd_cplc), rsp, &rl), 0x6A88);
    assert_int_equal(gp(c, store, sizeof(store), rsp, &rl), 0x9000);
    assert_int_equal(
        gp(c, b, ota_gp_delete(sim_gp_isd_aid, 8, false, NULL, 0, b, sizeof(b), &e), rsp, &rl),
        0x6985);
    assert_int_equal(gp(c, del_bad_tag, sizeof(del_bad_tag), rsp, &rl), 0x6A80);
    assert_int_equal(gp(c, b,
                        ota_gp_delete(new_app, sizeof(new_app), false, NULL, 0, b, sizeof(b), &e),
                        rsp, &rl),
                     0x9000);
    assert_int_equal(c->free_nv, 1000 - 2);
    free(c);
}

static void test_expanded_bad_and_truncated(void **state)
{
    struct tctx *t = *state;
    static const uint8_t bad[] = {0xAA, 0x02, 0x99, 0x00};
    uint8_t b[OTA_APDU_MAX_LEN], data[512], work[512];
    struct ota_apdu a[3];
    struct ota_scp80_keys keys = {&t->ks.kic, &t->ks.kid};
    struct ota_scp80_cmd cmd = std_cmd(&t->ks, true, 400);
    struct ota_rapdu_exp_rsp xr;
    struct ota_rapdu_rapdu ra[4];
    struct ota_scp80_por por;
    struct sim_mo mo;
    struct ota_err e;
    int n;

    assert_int_equal(send_packet(t, SE1, &cmd, &keys, bad, sizeof(bad), false, false, &mo),
                     SIM_OUT_POR);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(por.status, OTA_SCP80_ST_OK);
    assert_int_equal(ota_rapdu_exp_rsp_parse(por.data, por.data_len, &xr, ra, 4, &e), 0);
    assert_true(xr.has_bad_format);
    assert_int_equal(xr.bad_format, 0x01);
    assert_int_equal(xr.n_executed, 0);
    assert_int_equal(xr.n_rapdus, 0);
    /* three GET STATUS answers of 39 octets do not fit one PoR: data cut, SW 62F1 */
    n = ota_gp_get_status(OTA_GP_STATUS_APPS, OTA_GP_STATUS_TLV, NULL, 0, NULL, 0, b, sizeof(b),
                          &e);
    assert_int_equal(ota_apdu_parse(b, (size_t)n, &a[0], &e), 0);
    a[1] = a[0];
    a[2] = a[0];
    n = ota_rapdu_exp_cmd_build_apdus(a, 3, false, data, sizeof(data), &e);
    assert_true(n > 0);
    cmd = std_cmd(&t->ks, true, 401);
    assert_int_equal(send_packet(t, SE1, &cmd, &keys, data, (size_t)n, false, false, &mo),
                     SIM_OUT_POR);
    assert_true(mo.len <= OTA_SMS_UD_MAX);
    decode_por(t, &cmd, &keys, &mo, &por, work, sizeof(work));
    assert_int_equal(ota_rapdu_exp_rsp_parse(por.data, por.data_len, &xr, ra, 4, &e), 0);
    assert_int_equal(xr.n_executed, 3);
    assert_int_equal(xr.n_rapdus, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(ra[i].sw, OTA_RAPDU_SW_TRUNCATED);
        assert_true(ra[i].data_len < 39);
        assert_int_equal(ra[i].data_len, ra[0].data_len);
    }
    assert_false(ota_rapdu_exp_rsp_ok(&xr, ra, 3));
}

/* PoR ciphering asked with a KIc coding the key set cannot serve: unprotected 06, no error. */
static void test_por_protection_impossible(void **state)
{
    struct tctx *t = *state;
    static const uint8_t gd[] = {0x80, 0xCA, 0x00, 0x66, 0x00};
    struct ota_scp80_keys gw_keys = {NULL, &t->ks.kid};
    struct ota_scp80_cmd cmd = std_cmd(&t->ks, true, 500);
    uint8_t pkt[256], ud[140], work[256];
    enum sim_outcome out = SIM_OUT_INVALID;
    struct ota_scp80_por por;
    struct sim_mo mo;
    struct ota_err e;
    int n;

    cmd.spi.ciphered = false;
    cmd.kic = (uint8_t)ota_scp80_keyid_encode(1, OTA_SCP80_ALG_DES_CBC, &e);
    n = ota_scp80_cmd_encode(t->c, &cmd, &gw_keys, gd, sizeof(gd), pkt, sizeof(pkt), NULL, &e);
    assert_true(n > 0);
    ud[0] = 0x02;
    ud[1] = 0x70;
    ud[2] = 0x00;
    memcpy(ud + 3, pkt, (size_t)n);
    assert_int_equal(
        sim_card_deliver(t->pop, SE1, ud, (size_t)n + 3, true, 0x7F, 0xF6, 0, &out, &mo, &e), 0);
    assert_int_equal(out, SIM_OUT_POR);
    assert_int_equal(
        ota_scp80_por_decode_sms(t->c, &cmd, &gw_keys, mo.ud, mo.len, work, sizeof(work), &por, &e),
        0);
    assert_int_equal(por.status, OTA_SCP80_ST_UNIDENTIFIED_SECURITY);
    assert_int_equal(por.cntr, 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_malformed_sms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_cc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_tar_and_kvn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_por_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_command_stops_script, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_unlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_install_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_personalize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concat_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expanded_script, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generated_se_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_sms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_por_protection_impossible, setup, teardown),
        cmocka_unit_test(test_gp_random_apdus),
        cmocka_unit_test(test_gp_model),
        cmocka_unit_test_setup_teardown(test_expanded_bad_and_truncated, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
