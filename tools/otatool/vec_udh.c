/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Vector runner for user data headers: bare user data, or the first octets
 * of an SMS-SUBMIT/DELIVER TPDU whose TP-UD starts with a UDH.
 */
#include "vectors.h"

#include <string.h>

static void expect_ies(struct vdiff *d, const json_t *exp, const struct ota_udh *u)
{
    const json_t *ies = json_object_get(exp, "ies");
    if (!json_is_array(ies)) {
        vdiff_add(d, "ies: missing");
        return;
    }
    if (json_array_size(ies) != u->n_ies) {
        vdiff_add(d, "ies: expected %zu IEs, got %u", json_array_size(ies), u->n_ies);
        return;
    }
    for (size_t i = 0; i < u->n_ies; i++) {
        const json_t *ie = json_array_get(ies, i);
        struct vdiff one = {0};
        uint8_t iei = u->ies[i].iei;
        vj_expect_hex(&one, ie, "iei", &iei, 1);
        vj_expect_int(&one, ie, "len", u->ies[i].len);
        vj_expect_hex(&one, ie, "value", u->ies[i].val, u->ies[i].len);
        if (one.n) {
            vdiff_add(d, "ies[%zu]: %s", i, one.text);
        }
    }
}

void vec_udh_parse(struct vctx *vc, const json_t *in, const json_t *exp, struct vdiff *d)
{
    uint8_t buf[512];
    struct ota_udh u;
    struct ota_err e;
    const uint8_t *ud;
    size_t ud_len;
    int n;
    (void)vc;

    if (json_object_get(in, "sms_submit_tpdu_prefix") || json_object_get(in, "sms_tpdu_prefix") ||
        json_object_get(in, "sms_tpdu")) {
        const char *key = json_object_get(in, "sms_submit_tpdu_prefix") ? "sms_submit_tpdu_prefix"
                          : json_object_get(in, "sms_tpdu_prefix")      ? "sms_tpdu_prefix"
                                                                        : "sms_tpdu";
        bool prefix = strcmp(key, "sms_tpdu") != 0;
        struct ota_tpdu t;
        n = vj_hex(d, in, key, buf, sizeof(buf));
        if (n < 0) {
            return;
        }
        if (ota_tpdu_parse(buf, (size_t)n, prefix, &t, &e) < 0) {
            vdiff_add(d, "%s: %s (%s)", key, e.msg, ota_errc_name(e.code));
            return;
        }
        if (json_object_get(exp, "tp_udhi")) {
            const json_t *b = json_object_get(exp, "tp_udhi");
            if (!json_is_boolean(b) || json_is_true(b) != t.udhi) {
                vdiff_add(d, "tp_udhi: expected %s, got %s", json_is_true(b) ? "true" : "false",
                          t.udhi ? "true" : "false");
            }
        }
        if (json_object_get(exp, "tp_pid")) {
            vj_expect_hex(d, exp, "tp_pid", &t.pid, 1);
        }
        if (json_object_get(exp, "tp_dcs")) {
            vj_expect_hex(d, exp, "tp_dcs", &t.dcs, 1);
        }
        if (json_object_get(exp, "tp_udl")) {
            vj_expect_int(d, exp, "tp_udl", t.udl);
        }
        if (!t.udhi) {
            if (json_object_get(exp, "ies")) {
                vdiff_add(d, "ies expected but TP-UDHI is 0");
            }
            return;
        }
        ud = t.ud;
        ud_len = t.ud_len;
    } else {
        n = vj_hex(d, in, "user_data", buf, sizeof(buf));
        if (n < 0) {
            return;
        }
        ud = buf;
        ud_len = (size_t)n;
    }
    if (ota_udh_parse(ud, ud_len, &u, &e) < 0) {
        vdiff_add(d, "udh: %s (%s)", e.msg, ota_errc_name(e.code));
        return;
    }
    vj_expect_int(d, exp, "udhl", u.udhl);
    expect_ies(d, exp, &u);
    if (json_object_get(exp, "payload_after_udh")) {
        vj_expect_hex(d, exp, "payload_after_udh", u.payload, u.payload_len);
    }
}
