/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated card: what a SIM does with an MT SMS. A push (application
 * port UDH, TS 23.040 9.2.3.24.3/4) is decoded and recorded; an SCP80
 * command (TP-PID 7F, CPI 70 in the UDH, TS 31.115 4.2) is reassembled when
 * concatenated, its security checked as the SPI demands (TS 102 225 5.1:
 * TAR and key set, RC/CC, deciphering, counter rule 5.1.1), its remote APDU
 * script run on the GP model in the compact or expanded format (TS 102 226
 * 5.1, 5.2) and a PoR built (TS 102 225 5.2, TS 31.115 4.4): protected per
 * the SPI second octet on success, unprotected on a security error, sent by
 * SMS-SUBMIT or kept as the deliver-report PoR.
 *
 * Choices where the specs leave room:
 *   - A failing command (SW not 9000/61xx) stops the script, in both formats;
 *     n executed counts up to and including it.
 *   - A script that does not parse: compact answers n 0 with SW 6700,
 *     expanded answers AB {80 00, 90 bad-format} (01 tag, 02 length, 03 cut).
 *   - A PoR too long for one SMS (140 octets of UD) has the data of its
 *     R-APDU(s) cut, the SW of each cut one replaced by 62F1 (TS 102 226
 *     5.2.1.1); GET STATUS pages at 96 octets so this is rare.
 *   - "PoR on error" (SPI b2b1 10) sends a PoR only for a security error
 *     (status other than 00), not for a failing APDU.
 *   - An unprotected error PoR repeats the command's counter when the card
 *     can read it (clear, or deciphered with the key set); after an unknown
 *     TAR or key set of a ciphered command it carries counter 0.
 *   - counter_reused counts a verified command whose counter equals the last
 *     accepted one or one of the last SIM_CNTR_HIST received on that key set
 *     (counter modes 01-11; mode 00 has no counter).
 */
#include "tests/sim/sim_int.h"

#include <string.h>

#include <openssl/crypto.h>

/* TS 23.040 9.2.3.9: TP-PID "(U)SIM data download", used by commands and PoRs. */
#define CARD_PID_SIM 0x7F
/* TS 31.115 4.4 / TS 23.038 4: PoR SMS-SUBMIT parameters. */
#define CARD_POR_PID CARD_PID_SIM
#define CARD_POR_DCS 0xF6
#define CARD_SCRIPT_MAX 32
#define CARD_RSP_MAX 1024
/* Offset of CNTR in a command packet: CPL(2) CHL(1) SPI(2) KIc KID TAR(3). */
#define CARD_CNTR_OFF 10

static const char *const outcome_names[] = {
    [SIM_OUT_PENDING] = "pending",
    [SIM_OUT_POR] = "por",
    [SIM_OUT_POR_REPORT] = "por-report",
    [SIM_OUT_NO_POR] = "no-por",
    [SIM_OUT_PUSH] = "push",
    [SIM_OUT_INVALID] = "invalid",
    [SIM_OUT_UNKNOWN_SE] = "unknown-se",
};

const char *sim_outcome_name(enum sim_outcome o)
{
    if ((size_t)o >= OTA_ARRAY_SIZE(outcome_names) || !outcome_names[o]) {
        return "unknown";
    }
    return outcome_names[o];
}

int sim_pop_last_report(const struct sim_pop *p, struct sim_mo *out)
{
    if (!p->has_report) {
        return -ENOENT;
    }
    *out = p->last_report;
    return 0;
}

/* ---- script execution ---- */

struct script_item {
    uint16_t sw;
    uint16_t len;
    uint8_t data[256];
};

struct script_result {
    enum ota_rapdu_format fmt;
    bool bad;           /* the script did not parse */
    uint8_t bad_format; /* expanded: 90 value */
    size_t n;           /* executed */
    struct script_item items[CARD_SCRIPT_MAX];
};

static void run_one(struct sim_pop *p, struct sim_se_state *s, const struct ota_apdu *a,
                    struct script_item *it)
{
    uint8_t rsp[256];
    size_t rl = 0;

    it->sw = sim_gp_run(&s->ota->card, a, rsp, sizeof(rsp), &rl);
    it->len = (uint16_t)rl;
    memcpy(it->data, rsp, rl);
    p->counts.apdus_run++;
    if (!ota_sw_ok(it->sw)) {
        p->counts.apdus_failed++;
    }
}

static uint8_t bad_format_of(enum ota_errc code)
{
    switch (code) {
    case OTA_ERR_TAG:
        return 0x01;
    case OTA_ERR_TRUNCATED:
        return 0x03;
    default:
        return 0x02;
    }
}

static void run_script(struct sim_pop *p, struct sim_se_state *s, const uint8_t *d, size_t len,
                       struct script_result *res)
{
    struct ota_err e;

    memset(res, 0, sizeof(*res));
    if (ota_rapdu_cmd_format(d, len, &res->fmt, &e)) {
        res->fmt = OTA_RAPDU_COMPACT;
        res->bad = true;
        return;
    }
    if (res->fmt == OTA_RAPDU_COMPACT) {
        struct ota_apdu apdus[CARD_SCRIPT_MAX];
        size_t n = 0;

        if (ota_rapdu_compact_split(d, len, apdus, CARD_SCRIPT_MAX, &n, &e)) {
            res->bad = true;
            return;
        }
        for (size_t i = 0; i < n; i++) {
            run_one(p, s, &apdus[i], &res->items[res->n++]);
            if (!ota_sw_ok(res->items[res->n - 1].sw)) {
                break;
            }
        }
        return;
    }
    {
        struct ota_rapdu_cmd_tlv tlvs[CARD_SCRIPT_MAX];
        size_t n = 0;
        bool indef = false;

        if (ota_rapdu_exp_cmd_parse(d, len, tlvs, CARD_SCRIPT_MAX, &n, &indef, &e)) {
            res->bad = true;
            res->bad_format = bad_format_of(e.code);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            if (tlvs[i].tag != OTA_RAPDU_TAG_C_APDU) {
                continue; /* immediate / error action / chaining: accepted, not modelled */
            }
            run_one(p, s, &tlvs[i].apdu, &res->items[res->n++]);
            if (!ota_sw_ok(res->items[res->n - 1].sw)) {
                break;
            }
        }
    }
}

/* Response data with every R-APDU's data cut to max_data octets (SW 62F1 when cut). */
static int build_rsp(const struct script_result *res, size_t max_data, uint8_t *dst, size_t cap,
                     struct ota_err *err)
{
    if (res->fmt == OTA_RAPDU_COMPACT) {
        struct ota_rapdu_compact_rsp r = {0};

        if (res->bad) {
            r.sw = 0x6700;
        } else if (res->n > 0) {
            const struct script_item *it = &res->items[res->n - 1];

            r.n_executed = (uint8_t)res->n;
            r.sw = it->sw;
            r.data = it->len ? it->data : NULL;
            r.data_len = it->len;
            if (r.data_len > max_data) {
                r.data_len = max_data;
                r.sw = OTA_RAPDU_SW_TRUNCATED;
            }
            if (r.data_len == 0) {
                r.data = NULL;
            }
        }
        return ota_rapdu_compact_rsp_build(&r, dst, cap, err);
    }
    {
        struct ota_rapdu_exp_rsp r = {0};
        struct ota_rapdu_rapdu ra[CARD_SCRIPT_MAX];

        r.indefinite = res->fmt == OTA_RAPDU_EXPANDED_INDEF;
        r.has_n_executed = true;
        r.n_executed = (uint16_t)res->n;
        r.n_rapdus = res->n;
        r.has_bad_format = res->bad;
        r.bad_format = res->bad_format;
        for (size_t i = 0; i < res->n; i++) {
            ra[i].sw = res->items[i].sw;
            ra[i].data_len = res->items[i].len;
            if (ra[i].data_len > max_data) {
                ra[i].data_len = max_data;
                ra[i].sw = OTA_RAPDU_SW_TRUNCATED;
            }
            ra[i].data = ra[i].data_len ? res->items[i].data : NULL;
        }
        return ota_rapdu_exp_rsp_build(&r, ra, dst, cap, err);
    }
}

/* ---- PoR ---- */

/*
 * Encode the PoR into mo (single SMS), cutting response data until it fits.
 * res may be NULL (security error: no data).
 */
static int encode_por(struct sim_pop *p, const struct ota_scp80_cmd *cmd,
                      const struct ota_scp80_keys *keys, bool protect, uint8_t status,
                      const struct script_result *res, struct sim_mo *mo, struct ota_err *err)
{
    uint8_t rsp[CARD_RSP_MAX];
    size_t max_data = 256;
    int n;

    for (;;) {
        int rl = 0;

        if (res) {
            rl = build_rsp(res, max_data, rsp, sizeof(rsp), err);
            if (rl < 0) {
                return rl;
            }
        }
        n = ota_scp80_por_encode_sms(p->crypto, cmd, keys, protect, status, rsp, (size_t)rl, mo->ud,
                                     sizeof(mo->ud), err);
        if (n >= 0) {
            break;
        }
        if ((n != -EMSGSIZE && n != -ENOSPC) || !res || max_data == 0) {
            return n;
        }
        max_data = max_data > 8 ? max_data - 8 : 0;
    }
    mo->len = (uint8_t)n;
    mo->udhi = true;
    mo->pid = CARD_POR_PID;
    mo->dcs = CARD_POR_DCS;
    return 0;
}

/* Send (or not) the PoR as the SPI asks; sets *outcome. */
static int send_por(struct sim_pop *p, const struct ota_scp80_cmd *cmd,
                    const struct ota_scp80_keys *keys, bool protect, uint8_t status,
                    const struct script_result *res, enum sim_outcome *outcome, struct sim_mo *mo,
                    struct ota_err *err)
{
    struct sim_mo m;
    int rc;

    if (cmd->spi.por == OTA_SCP80_POR_NONE ||
        (cmd->spi.por == OTA_SCP80_POR_ON_ERROR && status == OTA_SCP80_ST_OK)) {
        *outcome = SIM_OUT_NO_POR;
        return 0;
    }
    memset(&m, 0, sizeof(m));
    rc = encode_por(p, cmd, keys, protect, status, res, &m, err);
    if (rc) {
        return rc;
    }
    p->counts.por_sent++;
    if (cmd->spi.por_via == OTA_SCP80_POR_VIA_SMS_SUBMIT) {
        *mo = m;
        *outcome = SIM_OUT_POR;
    } else {
        p->last_report = m;
        p->has_report = true;
        *outcome = SIM_OUT_POR_REPORT;
    }
    return 0;
}

/* ---- SCP80 ---- */

static const struct sim_scp80_keyset *pick_keyset(const struct sim_se_def *d,
                                                  const struct ota_scp80_cmd_hdr *h,
                                                  bool *tar_known, size_t *slot)
{
    bool cipher = h->spi.ciphered || h->spi.por_ciphered;
    bool cc = h->spi.integrity == OTA_SCP80_INTEGRITY_CC ||
              h->spi.por_integrity == OTA_SCP80_INTEGRITY_CC;

    *tar_known = false;
    for (size_t k = 0; k < d->n_scp80; k++) {
        const struct sim_scp80_keyset *ks = &d->scp80[k];

        if (memcmp(ks->tar, h->tar, 3) != 0) {
            continue;
        }
        *tar_known = true;
        if ((cipher && (h->kic >> 4) != ks->kvn) || (cc && (h->kid >> 4) != ks->kvn)) {
            continue;
        }
        *slot = d->cntr_slot[k];
        return ks;
    }
    return NULL;
}

/* TS 102 225 5.1.1 as seen by the test: was this counter value used before on this key set? */
static bool cntr_reused(struct sim_se_ota *o, size_t slot, uint64_t cntr)
{
    bool reused = o->cntr[slot].seen && o->cntr[slot].stored == cntr;

    for (size_t i = 0; i < o->cntr[slot].n_hist; i++) {
        reused = reused || o->cntr[slot].hist[i] == cntr;
    }
    o->cntr[slot].hist[o->cntr[slot].hist_pos] = cntr;
    o->cntr[slot].hist_pos = (uint8_t)((o->cntr[slot].hist_pos + 1) % SIM_CNTR_HIST);
    if (o->cntr[slot].n_hist < SIM_CNTR_HIST) {
        o->cntr[slot].n_hist++;
    }
    return reused;
}

static uint8_t status_of_decode_error(enum ota_errc code)
{
    switch (code) {
    case OTA_ERR_BAD_CC:
        return OTA_SCP80_ST_RC_CC_DS_FAILED;
    case OTA_ERR_PADDING:
        return OTA_SCP80_ST_CIPHERING_ERROR;
    case OTA_ERR_KEY:
    case OTA_ERR_VALUE:
        return OTA_SCP80_ST_UNIDENTIFIED_SECURITY;
    default:
        return 0xFF; /* malformed: no PoR */
    }
}

/*
 * The counter of a command that failed its checks, for the unprotected PoR
 * (TS 102 225 5.2 repeats it; the gateway matches on TAR and counter). Clear
 * when not ciphered; else the first cipher block deciphered (CBC with IV 0
 * and ECB agree on it). 0 when that is not possible (no key).
 */
static uint64_t cntr_of_rejected(struct sim_pop *p, const struct ota_scp80_cmd_hdr *h,
                                 const uint8_t *pkt, size_t len, const struct ota_key *kic)
{
    uint8_t blk[16];
    size_t bl;
    struct ota_err e;
    uint64_t v = 0;

    if (!h->spi.ciphered) {
        return len >= CARD_CNTR_OFF + 5 ? ota_get_u40(pkt + CARD_CNTR_OFF) : 0;
    }
    if (!kic) {
        return 0;
    }
    bl = ota_cipher_block_len(kic->cipher);
    if (bl == 0 || bl > sizeof(blk) || len < CARD_CNTR_OFF + bl) {
        return 0;
    }
    if (ota_crypto_cipher(p->crypto, kic, OTA_MODE_ECB, false, NULL, pkt + CARD_CNTR_OFF, bl, blk,
                          &e) == 0) {
        v = ota_get_u40(blk);
    }
    OPENSSL_cleanse(blk, sizeof(blk));
    return v;
}

static int process_scp80(struct sim_pop *p, uint64_t idx, const uint8_t *pkt, size_t len,
                         enum sim_outcome *outcome, struct sim_mo *mo, struct ota_err *err)
{
    struct ota_scp80_cmd_hdr h;
    struct ota_scp80_cmd cmd;
    struct ota_scp80_keys keys = {NULL, NULL};
    struct ota_scp80_cmd_rx rx;
    struct sim_se_state *s = NULL;
    struct sim_se_def d;
    const struct sim_scp80_keyset *ks;
    struct script_result *res = NULL;
    enum ota_scp80_por_status st = OTA_SCP80_ST_OK;
    uint8_t work[OTA_SCP80_MAX_PACKET];
    struct ota_err e;
    bool tar_known = false;
    size_t slot = 0;
    int rc;

    if (ota_scp80_cmd_peek(pkt, len, &h, &e) || len > sizeof(work)) {
        p->counts.invalid_sms++;
        *outcome = SIM_OUT_INVALID;
        return 0;
    }
    rc = sim_pop_state(p, idx, &s, err);
    if (rc == 0) {
        rc = sim_pop_ota(p, s, err);
    }
    if (rc) {
        return rc;
    }
    rc = sim_pop_def(p, idx, &d, err);
    if (rc) {
        return rc;
    }
    memset(&cmd, 0, sizeof(cmd));
    cmd.spi = h.spi;
    cmd.kic = h.kic;
    cmd.kid = h.kid;
    memcpy(cmd.tar, h.tar, 3);
    ks = pick_keyset(&d, &h, &tar_known, &slot);
    cmd.cntr = cntr_of_rejected(p, &h, pkt, len, ks ? &ks->kic : NULL);
    if (!ks) {
        if (!tar_known) {
            p->counts.unknown_tar++;
        }
        rc = send_por(p, &cmd, &keys, false,
                      tar_known ? OTA_SCP80_ST_UNIDENTIFIED_SECURITY : OTA_SCP80_ST_TAR_UNKNOWN,
                      NULL, outcome, mo, err);
        goto out;
    }
    keys.kic = &ks->kic;
    keys.kid = &ks->kid;
    rc = ota_scp80_cmd_decode(p->crypto, &keys, pkt, len, work, sizeof(work), &rx, &e);
    if (rc) {
        uint8_t est = status_of_decode_error(e.code);

        if (est == 0xFF) {
            p->counts.invalid_sms++;
            *outcome = SIM_OUT_INVALID;
            rc = 0;
            goto out;
        }
        if (est == OTA_SCP80_ST_RC_CC_DS_FAILED) {
            p->counts.bad_cc++;
        }
        rc = send_por(p, &cmd, &keys, false, est, NULL, outcome, mo, err);
        goto out;
    }
    cmd.cntr = rx.cntr;
    cmd.cc_len = h.spi.integrity == OTA_SCP80_INTEGRITY_CC ? rx.cc_len : 0;
    if (h.spi.cntr_mode != OTA_SCP80_CNTR_NONE && cntr_reused(s->ota, slot, rx.cntr)) {
        p->counts.counter_reused++;
    }
    rc = ota_scp80_cntr_check(h.spi.cntr_mode, s->ota->cntr[slot].stored, rx.cntr, &st, err);
    if (rc) {
        goto out;
    }
    if (st != OTA_SCP80_ST_OK) {
        p->counts.counter_refused++;
        rc = send_por(p, &cmd, &keys, false, st, NULL, outcome, mo, err);
        goto out;
    }
    /* TS 102 225 5.1.1: the counter is updated once the packet is accepted */
    s->ota->cntr[slot].stored = rx.cntr;
    s->ota->cntr[slot].seen = true;
    res = calloc(1, sizeof(*res));
    if (!res) {
        rc = ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "card: out of memory");
        goto out;
    }
    run_script(p, s, rx.data, rx.data_len, res);
    p->counts.commands_ok++;
    rc = send_por(p, &cmd, &keys, true, OTA_SCP80_ST_OK, res, outcome, mo, &e);
    if (rc == -EINVAL || rc == -ENOTSUP || rc == -EBADMSG) {
        /* the SPI asks for PoR protection the key set cannot give (KIc coding vs key) */
        rc = send_por(p, &cmd, &keys, false, OTA_SCP80_ST_UNIDENTIFIED_SECURITY, NULL, outcome, mo,
                      err);
    } else if (rc) {
        rc = ota_fail(err, rc, e.code, "card: PoR: %s", e.msg);
    }
out:
    free(res);
    OPENSSL_cleanse(work, sizeof(work));
    sim_se_def_wipe(&d);
    return rc;
}

/* ---- delivery ---- */

static int deliver_push(struct sim_pop *p, uint64_t idx, const uint8_t *ud, size_t len,
                        enum sim_outcome *outcome, struct ota_err *err)
{
    struct ota_push push;
    struct sim_se_state *s = NULL;
    struct ota_err e;
    int rc;

    if (ota_push_decode(ud, len, &push, &e)) {
        p->counts.invalid_sms++;
        *outcome = SIM_OUT_INVALID;
        return 0;
    }
    rc = sim_pop_state(p, idx, &s, err);
    if (rc) {
        return rc;
    }
    s->last_push = push;
    s->has_push = true;
    p->counts.pushes++;
    *outcome = SIM_OUT_PUSH;
    if (p->push_cb) {
        p->push_cb(p->push_arg, idx, &push);
    }
    return 0;
}

int sim_card_deliver(struct sim_pop *p, const char *msisdn, const uint8_t *ud, size_t len,
                     bool udhi, uint8_t pid, uint8_t dcs, uint64_t now_ms,
                     enum sim_outcome *outcome, struct sim_mo *mo, struct ota_err *err)
{
    struct ota_udh udh;
    struct ota_udh_info info;
    struct ota_udh_info minfo;
    struct ota_reasm_msg msg;
    enum ota_reasm_status rst = OTA_REASM_PENDING;
    enum sim_outcome out = SIM_OUT_INVALID;
    struct ota_err e;
    const char *orig;
    uint64_t idx = 0;
    int rc;

    (void)dcs; /* TS 31.115 4.2 wants class 2 8-bit; the card does not insist */
    if (!p || !msisdn || !outcome || !mo || (!ud && len > 0)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "card: NULL argument");
    }
    if (sim_pop_find(p, msisdn, &idx)) {
        p->counts.unknown_se++;
        *outcome = SIM_OUT_UNKNOWN_SE;
        return 0;
    }
    p->counts.mt_parts++;
    (void)ota_reasm_expire(p->reasm, now_ms, NULL, NULL);
    if (!udhi || len == 0 || ota_udh_parse(ud, len, &udh, &e) || ota_udh_info(&udh, &info, &e)) {
        goto invalid;
    }
    if (info.has_ports && !info.has_cpi) {
        return deliver_push(p, idx, ud, len, outcome, err);
    }
    if (pid != CARD_PID_SIM || (!info.has_cpi && !info.has_concat)) {
        goto invalid;
    }
    memset(&msg, 0, sizeof(msg));
    /* one key per SE whichever way the network writes its number */
    orig = msisdn[0] == '+' ? msisdn + 1 : msisdn;
    if (ota_reasm_add(p->reasm, orig, ud, len, udhi, now_ms, &rst, &msg, &e)) {
        goto invalid;
    }
    if (rst == OTA_REASM_PENDING || rst == OTA_REASM_DUPLICATE) {
        *outcome = SIM_OUT_PENDING;
        return 0;
    }
    p->counts.mt_complete++;
    if (!msg.udhi || ota_udh_info(&msg.udh, &minfo, &e) || !minfo.has_cpi) {
        ota_reasm_msg_fini(&msg);
        goto invalid;
    }
    rc = process_scp80(p, idx, msg.udh.payload, msg.udh.payload_len, &out, mo, err);
    ota_reasm_msg_fini(&msg);
    if (rc == 0) {
        *outcome = out;
    }
    return rc;
invalid:
    p->counts.invalid_sms++;
    *outcome = SIM_OUT_INVALID;
    return 0;
}
