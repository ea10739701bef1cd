/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the remote APDU codecs (TS 102 226 5.1 / 5.2) and the
 * GET STATUS response parsers (GP 2.2 11.4.3): arbitrary bytes must parse or
 * fail with a code; what parses must stay inside the input, counts must fit
 * the input, compact scripts and compact responses must rebuild to their
 * bytes, and expanded templates must re-parse identically after a rebuild.
 */
#include "ota/ota.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ITEMS 128

static bool inside(const uint8_t *p, size_t len, const uint8_t *base, size_t size)
{
    if (len == 0) {
        return true;
    }
    return p && p >= base && p + len <= base + size;
}

static void check_failed(int rc, const struct ota_err *err)
{
    if (rc >= 0 || err->code == OTA_OK) {
        abort();
    }
}

static void fuzz_compact(const uint8_t *data, size_t size)
{
    static struct ota_apdu a[MAX_ITEMS];
    static uint8_t out[4 * 1024 + 16];
    struct ota_rapdu_compact_rsp r;
    struct ota_err err = {0};
    size_t n, total = 0;
    int rc;

    rc = ota_rapdu_compact_rsp_parse(data, size, &r, &err);
    if (rc == 0) {
        if (r.data_len != size - 3 || !inside(r.data, r.data_len, data, size)) {
            abort();
        }
        if (size <= sizeof(out) &&
            (ota_rapdu_compact_rsp_build(&r, out, sizeof(out), &err) != (int)size ||
             memcmp(out, data, size))) {
            abort();
        }
    } else {
        check_failed(rc, &err);
    }

    rc = ota_rapdu_compact_split(data, size, a, MAX_ITEMS, &n, &err);
    if (rc) {
        check_failed(rc, &err);
        return;
    }
    if (n == 0 || n > size / 4) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        if (!inside(a[i].data, a[i].lc, data, size) || (a[i].lc && a[i].has_le)) {
            abort();
        }
        total += 5u + a[i].lc;
    }
    /* Only a trailing case-1 command may have come without P3. */
    if (total != size && total != size + 1) {
        abort();
    }
    if (size + 1 > sizeof(out)) {
        return;
    }
    rc = ota_rapdu_compact_build(a, n, out, sizeof(out), &err);
    if (rc < 0) {
        /* The only refusal: a trailing 4-octet command whose INS reads as case 2. */
        const struct ota_apdu *l = &a[n - 1];
        if (err.code != OTA_ERR_ARG || total != size + 1 ||
            !ota_rapdu_is_case2(l->cla, l->ins, l->p1)) {
            abort();
        }
        return;
    }
    if ((size_t)rc != total || memcmp(out, data, size)) {
        abort();
    }
}

static void fuzz_exp_cmd(const uint8_t *data, size_t size)
{
    static struct ota_rapdu_cmd_tlv t[MAX_ITEMS], t2[MAX_ITEMS];
    static uint8_t out[0x10000 + 16];
    struct ota_err err = {0};
    size_t n, n2;
    bool indef, indef2;
    int rc;

    rc = ota_rapdu_exp_cmd_parse(data, size, t, MAX_ITEMS, &n, &indef, &err);
    if (rc) {
        check_failed(rc, &err);
        return;
    }
    if (n > size / 2) {
        abort();
    }
    rc = ota_rapdu_exp_cmd_build(t, n, indef, out, sizeof(out), &err);
    if (n == 0) {
        if (rc != -EINVAL) { /* an empty template parses but is not built */
            abort();
        }
        return;
    }
    if (rc < 0 || (size_t)rc > size) {
        abort();
    }
    if (ota_rapdu_exp_cmd_parse(out, (size_t)rc, t2, MAX_ITEMS, &n2, &indef2, &err) || n2 != n ||
        indef2 != indef) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i].tag != t2[i].tag) {
            abort();
        }
        if (t[i].tag == OTA_RAPDU_TAG_C_APDU) {
            const struct ota_apdu *x = &t[i].apdu, *y = &t2[i].apdu;
            if (x->cla != y->cla || x->ins != y->ins || x->p1 != y->p1 || x->p2 != y->p2 ||
                x->lc != y->lc || x->has_le != y->has_le || x->le != y->le ||
                (x->lc && memcmp(x->data, y->data, x->lc))) {
                abort();
            }
            if (!inside(x->data, x->lc, data, size)) {
                abort();
            }
        } else if (t[i].len != t2[i].len ||
                   (t[i].len && memcmp(t[i].value, t2[i].value, t[i].len)) ||
                   !inside(t[i].value, t[i].len, data, size)) {
            abort();
        }
    }
}

static void fuzz_exp_rsp(const uint8_t *data, size_t size)
{
    static struct ota_rapdu_rapdu ra[MAX_ITEMS], ra2[MAX_ITEMS];
    static uint8_t out[0x10000 + 16];
    struct ota_rapdu_exp_rsp r, r2;
    struct ota_err err = {0};
    int rc;

    rc = ota_rapdu_exp_rsp_parse(data, size, &r, ra, MAX_ITEMS, &err);
    if (rc) {
        check_failed(rc, &err);
        return;
    }
    if (r.n_rapdus > size / 4) {
        abort();
    }
    for (size_t i = 0; i < r.n_rapdus; i++) {
        if (!inside(ra[i].data, ra[i].data_len, data, size)) {
            abort();
        }
    }
    (void)ota_rapdu_exp_rsp_ok(&r, ra, r.n_rapdus);
    rc = ota_rapdu_exp_rsp_build(&r, ra, out, sizeof(out), &err);
    /* A 1-octet 80 of 80h..FFh is written in 2 octets; that may grow the header too. */
    if (rc < 0 || (size_t)rc > size + 2) {
        abort();
    }
    if (ota_rapdu_exp_rsp_parse(out, (size_t)rc, &r2, ra2, MAX_ITEMS, &err)) {
        abort();
    }
    if (r.indefinite != r2.indefinite || r.has_n_executed != r2.has_n_executed ||
        r.n_executed != r2.n_executed || r.n_rapdus != r2.n_rapdus ||
        r.has_bad_format != r2.has_bad_format || r.bad_format != r2.bad_format ||
        r.has_immediate_rsp != r2.has_immediate_rsp || r.immediate_rsp != r2.immediate_rsp ||
        r.has_chaining_rsp != r2.has_chaining_rsp || r.chaining_rsp != r2.chaining_rsp) {
        abort();
    }
    for (size_t i = 0; i < r.n_rapdus; i++) {
        if (ra[i].sw != ra2[i].sw || ra[i].data_len != ra2[i].data_len ||
            (ra[i].data_len && memcmp(ra[i].data, ra2[i].data, ra[i].data_len))) {
            abort();
        }
    }
}

static void check_entries(const struct ota_gp_status_entry *e, size_t n, const uint8_t *data,
                          size_t size)
{
    for (size_t i = 0; i < n; i++) {
        if (!inside(e[i].aid, e[i].aid_len, data, size) || e[i].aid_len == 0 ||
            e[i].aid_len > OTA_GP_AID_MAX || !inside(e[i].version, e[i].version_len, data, size) ||
            !inside(e[i].elf_aid, e[i].elf_aid_len, data, size) ||
            !inside(e[i].sd_aid, e[i].sd_aid_len, data, size) ||
            !inside(e[i].modules, e[i].modules_len, data, size) ||
            (e[i].priv_len != 0 && e[i].priv_len != 1 && e[i].priv_len != 3)) {
            abort();
        }
        for (size_t m = 0; m < e[i].n_modules; m++) {
            const uint8_t *aid;
            size_t al;

            if (ota_gp_status_module(&e[i], m, &aid, &al, NULL) || !inside(aid, al, data, size) ||
                al == 0 || al > OTA_GP_AID_MAX) {
                abort();
            }
        }
        (void)ota_gp_lcs_name(OTA_GP_LCS_APP, e[i].lcs);
    }
}

static void fuzz_gp_status(const uint8_t *data, size_t size)
{
    static struct ota_gp_status_entry e[MAX_ITEMS];
    struct ota_err err = {0};
    size_t n;
    int rc;

    rc = ota_gp_status_parse_tlv(data, size, e, MAX_ITEMS, &n, &err);
    if (rc == 0) {
        if (n > size / 9) { /* E3 + 4F + 9F70 take at least 9 octets */
            abort();
        }
        check_entries(e, n, data, size);
    } else {
        check_failed(rc, &err);
    }
    for (int k = 0; k < 2; k++) {
        rc = ota_gp_status_parse_legacy(data, size, k ? OTA_GP_STATUS_ELF_MOD : 0x40, e, MAX_ITEMS,
                                        &n, &err);
        if (rc == 0) {
            if (n > size / 4) {
                abort();
            }
            check_entries(e, n, data, size);
        } else {
            check_failed(rc, &err);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_rapdu_tlv t;
    struct ota_err err;

    /* Templates cap at 82 FFFF; larger inputs only exercise the refusals. */
    if (size > 0x8000) {
        return 0;
    }
    if (ota_rapdu_tlv_get(data, size, false, &t, &err) == 0 &&
        (t.size > size || !inside(t.value, t.len, data, size))) {
        abort();
    }
    fuzz_compact(data, size);
    fuzz_exp_cmd(data, size);
    fuzz_exp_rsp(data, size);
    fuzz_gp_status(data, size);
    return 0;
}
