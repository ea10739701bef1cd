/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Vector runners for SCP80 (TS 102 225 / TS 31.115): command packet encoding
 * (every intermediate value the vector gives is compared, and the packet is
 * decoded again as the card would) and PoR decoding with CC verification.
 */
#include "vectors.h"

#include <string.h>

/* Algorithm names used by the vector files. */
static int alg_cipher(const char *name, enum ota_cipher *c)
{
    static const struct {
        const char *name;
        enum ota_cipher c;
    } t[] = {
        {"DES-CBC", OTA_CIPHER_DES},     {"DES-ECB", OTA_CIPHER_DES},
        {"DES-CBC-MAC", OTA_CIPHER_DES}, {"3DES-CBC-2key", OTA_CIPHER_3DES2},
        {"3DES-2key", OTA_CIPHER_3DES2}, {"3DES-CBC-3key", OTA_CIPHER_3DES3},
        {"3DES-3key", OTA_CIPHER_3DES3}, {"AES-CBC", OTA_CIPHER_AES},
        {"AES-CMAC", OTA_CIPHER_AES},    {"AES", OTA_CIPHER_AES},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (!strcmp(name, t[i].name)) {
            *c = t[i].c;
            return 0;
        }
    }
    return -1;
}

/* Which SCP80 algorithm a vector's name codes in a KIc (mac=false) or KID. */
static int alg_scp80(const char *name, bool mac, enum ota_scp80_alg *a)
{
    static const struct {
        const char *name;
        enum ota_scp80_alg enc, mac;
    } t[] = {
        {"DES-CBC", OTA_SCP80_ALG_DES_CBC, OTA_SCP80_ALG_DES_CBC_MAC},
        {"DES-ECB", OTA_SCP80_ALG_DES_ECB, OTA_SCP80_ALG_DES_CBC_MAC},
        {"3DES-CBC-2key", OTA_SCP80_ALG_3DES2_CBC, OTA_SCP80_ALG_3DES2_CBC_MAC},
        {"3DES-CBC-3key", OTA_SCP80_ALG_3DES3_CBC, OTA_SCP80_ALG_3DES3_CBC_MAC},
        {"AES-CBC", OTA_SCP80_ALG_AES_CBC, OTA_SCP80_ALG_AES_CMAC},
        {"AES-CMAC", OTA_SCP80_ALG_AES_CBC, OTA_SCP80_ALG_AES_CMAC},
        {"CRC16", OTA_SCP80_ALG_CRC16, OTA_SCP80_ALG_CRC16},
        {"CRC32", OTA_SCP80_ALG_CRC32, OTA_SCP80_ALG_CRC32},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (!strcmp(name, t[i].name)) {
            *a = mac ? t[i].mac : t[i].enc;
            return 0;
        }
    }
    return -1;
}

/* Load inputs[alg_field]/inputs[key_field] into *k; false when null/absent. */
static bool load_key(struct vctx *vc, struct vdiff *d, const json_t *in, const char *alg_field,
                     const char *key_field, struct ota_key *k, bool *ok)
{
    uint8_t kb[64];
    enum ota_cipher c;
    struct ota_err e;

    if (vj_null(in, alg_field) || vj_null(in, key_field)) {
        return false;
    }
    const char *name = vj_str(d, in, alg_field);
    if (!name) {
        goto bad;
    }
    if (alg_cipher(name, &c) < 0) {
        vdiff_add(d, "%s: unknown algorithm '%s'", alg_field, name);
        goto bad;
    }
    int n = vj_hex(d, in, key_field, kb, sizeof(kb));
    if (n < 0) {
        goto bad;
    }
    if (ota_key_set(k, c, kb, (size_t)n, &e) < 0) {
        vdiff_add(d, "%s: %s", key_field, e.msg);
        goto bad;
    }
    if (!vk_token(vc, k, d)) {
        goto bad;
    }
    return true;
bad:
    *ok = false;
    return false;
}

static const char *integrity_vname(enum ota_scp80_integrity i)
{
    static const char *n[] = {"none", "RC", "CC", "DS"};
    return (unsigned)i < 4 ? n[i] : "?";
}

/* Compare our SPI decoding with the vector's spi_decoded, when present. */
static void check_spi_decoded(struct vdiff *d, const json_t *in, const struct ota_scp80_spi *s)
{
    const json_t *sd = json_object_get(in, "spi_decoded");
    const char *v;
    if (!json_is_object(sd)) {
        return;
    }
    if ((v = json_string_value(json_object_get(sd, "rc_cc_ds"))) &&
        strcmp(v, integrity_vname(s->integrity))) {
        vdiff_add(d, "spi_decoded.rc_cc_ds: expected %s, got %s", v, integrity_vname(s->integrity));
    }
    if ((v = json_string_value(json_object_get(sd, "por_rc_cc_ds"))) &&
        strcmp(v, integrity_vname(s->por_integrity))) {
        vdiff_add(d, "spi_decoded.por_rc_cc_ds: expected %s, got %s", v,
                  integrity_vname(s->por_integrity));
    }
    if (json_is_boolean(json_object_get(sd, "ciphering")) &&
        json_is_true(json_object_get(sd, "ciphering")) != s->ciphered) {
        vdiff_add(d, "spi_decoded.ciphering differs");
    }
    if (json_is_boolean(json_object_get(sd, "por_ciphered")) &&
        json_is_true(json_object_get(sd, "por_ciphered")) != s->por_ciphered) {
        vdiff_add(d, "spi_decoded.por_ciphered differs");
    }
    if ((v = json_string_value(json_object_get(sd, "counter_mode")))) {
        static const char *m[] = {"00", "01", "10", "11"};
        if (strncmp(v, m[s->cntr_mode & 3], 2)) {
            vdiff_add(d, "spi_decoded.counter_mode: expected %s, got %s", v, m[s->cntr_mode & 3]);
        }
    }
    if ((v = json_string_value(json_object_get(sd, "por")))) {
        const char *g = s->por == OTA_SCP80_POR_ALWAYS     ? "always"
                        : s->por == OTA_SCP80_POR_ON_ERROR ? "on error"
                                                           : "none";
        if (strncmp(v, g, 2)) {
            vdiff_add(d, "spi_decoded.por: expected %s, got %s", v, g);
        }
    }
    if ((v = json_string_value(json_object_get(sd, "por_via")))) {
        const char *g =
            s->por_via == OTA_SCP80_POR_VIA_SMS_SUBMIT ? "SMS-SUBMIT" : "SMS-DELIVER-REPORT";
        if (strcmp(v, g)) {
            vdiff_add(d, "spi_decoded.por_via: expected %s, got %s", v, g);
        }
    }
}

void vec_scp80_command_encode(struct vctx *vc, const json_t *in, const json_t *exp, struct vdiff *d)
{
    struct ota_key kic = {0}, kid = {0}; /* wiped on every exit, set or not */
    struct ota_scp80_cmd cmd = {0};
    struct ota_scp80_keys keys = {0};
    struct ota_scp80_cmd_info info = {0};
    struct ota_err e;
    uint8_t spi[2], cntr[5], data[OTA_SCP80_MAX_PACKET], pkt[OTA_SCP80_MAX_PACKET + 8];
    uint8_t plain[OTA_SCP80_MAX_PACKET], work[OTA_SCP80_MAX_PACKET];
    bool ok = true;
    long long cc_len = 8;
    int n, dl;

    if (load_key(vc, d, in, "kic_algorithm", "kic_key", &kic, &ok)) {
        keys.kic = &kic;
    }
    if (load_key(vc, d, in, "kid_algorithm", "kid_key", &kid, &ok)) {
        keys.kid = &kid;
    }
    if (!ok) {
        goto out;
    }
    if (vj_hex(d, in, "spi", spi, 2) != 2 || vj_hex(d, in, "kic", &cmd.kic, 1) != 1 ||
        vj_hex(d, in, "kid", &cmd.kid, 1) != 1 || vj_hex(d, in, "tar", cmd.tar, 3) != 3 ||
        vj_hex(d, in, "cntr", cntr, 5) != 5) {
        goto out;
    }
    dl = vj_hex(d, in, "secured_data_plaintext", data, sizeof(data));
    if (dl < 0) {
        goto out;
    }
    if (json_object_get(in, "cc_length") && !vj_int(d, in, "cc_length", &cc_len)) {
        goto out;
    }
    if (ota_scp80_spi_decode(spi, 2, &cmd.spi, &e) < 0) {
        vdiff_add(d, "spi: %s", e.msg);
        goto out;
    }
    check_spi_decoded(d, in, &cmd.spi);
    cmd.cntr = ota_get_u40(cntr);
    cmd.cc_len = cc_len > 0 && cc_len <= 8 ? (uint8_t)cc_len : 0;
    info.plain = plain;
    info.plain_cap = sizeof(plain);
    n = ota_scp80_cmd_encode(vc->crypto, &cmd, &keys, data, (size_t)dl, pkt, sizeof(pkt), &info,
                             &e);
    if (n < 0) {
        vdiff_add(d, "encode: %s (%s)", e.msg, ota_errc_name(e.code));
        goto out;
    }
    vj_expect_hex(d, exp, "command_packet", pkt, (size_t)n);
    uint8_t b[2];
    ota_put_u16(b, info.cpl);
    vj_expect_hex(d, exp, "cpl", b, 2);
    vj_expect_hex(d, exp, "chl", &info.chl, 1);
    if (json_object_get(exp, "pcntr")) {
        vj_expect_int(d, exp, "pcntr", info.pcntr);
    }
    if (json_object_get(exp, "cc")) {
        if (vj_null(exp, "cc")) {
            if (info.cc_len) {
                vdiff_add(d, "cc: expected none, got %u octets", info.cc_len);
            }
        } else {
            vj_expect_hex(d, exp, "cc", info.cc, info.cc_len);
        }
    }
    if (json_object_get(exp, "plaintext_after_tar")) {
        vj_expect_hex(d, exp, "plaintext_after_tar", plain, info.plain_len);
    }
    if (json_object_get(exp, "sms_user_data_single")) {
        uint8_t ud[OTA_SMS_UD_MAX];
        int un = ota_scp80_cmd_encode_sms(vc->crypto, &cmd, &keys, data, (size_t)dl, ud, sizeof(ud),
                                          NULL, &e);
        if (un < 0) {
            vdiff_add(d, "sms_user_data_single: %s", e.msg);
        } else {
            vj_expect_hex(d, exp, "sms_user_data_single", ud, (size_t)un);
        }
        if (un > 0 && json_object_get(exp, "sms_deliver_tpdu_ts23040")) {
            /* The vectors' TPDUs use OA 12345678 (81) and SCTS 22705200000000 unless given. */
            struct ota_tpdu_deliver_params prm = {
                .oa = "12345678",
                .oa_ton_npi = OTA_TPDU_TON_NPI_UNKNOWN,
                .pid = 0x7f,
                .dcs = 0xf6,
                .udhi = true,
                .scts = {0x22, 0x70, 0x52, 0x00, 0x00, 0x00, 0x00},
                .ud = ud,
                .ud_len = (size_t)un,
            };
            if (json_is_string(json_object_get(in, "tpdu_oa"))) {
                prm.oa = json_string_value(json_object_get(in, "tpdu_oa"));
            }
            if (json_object_get(in, "tpdu_scts")) {
                vj_hex(d, in, "tpdu_scts", prm.scts, 7);
            }
            uint8_t tpdu[200];
            int tn = ota_tpdu_build_deliver(&prm, tpdu, sizeof(tpdu), &e);
            if (tn < 0) {
                vdiff_add(d, "sms_deliver_tpdu_ts23040: %s", e.msg);
            } else {
                vj_expect_hex(d, exp, "sms_deliver_tpdu_ts23040", tpdu, (size_t)tn);
            }
        }
    }
    /* The card must read back what the gateway sent. */
    struct ota_scp80_cmd_rx rx;
    if (ota_scp80_cmd_decode(vc->crypto, &keys, pkt, (size_t)n, work, sizeof(work), &rx, &e) < 0) {
        vdiff_add(d, "card-side decode: %s (%s)", e.msg, ota_errc_name(e.code));
    } else if (rx.data_len != (size_t)dl || (dl && memcmp(rx.data, data, (size_t)dl)) ||
               rx.cntr != cmd.cntr) {
        vdiff_add(d, "card-side decode: data or counter differ");
    }
out:
    ota_key_wipe(&kic);
    ota_key_wipe(&kid);
}

void vec_scp80_response_decode(struct vctx *vc, const json_t *in, const json_t *exp,
                               struct vdiff *d)
{
    struct ota_key kic = {0}, kid = {0}; /* wiped on every exit, set or not */
    struct ota_scp80_cmd cmd = {0};
    struct ota_scp80_keys keys = {0};
    struct ota_err e;
    enum ota_scp80_alg a;
    bool ok = true;
    uint8_t buf[OTA_SCP80_MAX_PACKET + 16], work[OTA_SCP80_POR_WORK(OTA_SCP80_MAX_PACKET + 16)];

    if (load_key(vc, d, in, "kic_algorithm", "kic_key", &kic, &ok)) {
        keys.kic = &kic;
    }
    if (load_key(vc, d, in, "cc_algorithm", "kid_key", &kid, &ok)) {
        keys.kid = &kid;
    }
    if (!ok) {
        goto out;
    }
    /* The PoR's protection is what the command's SPI second octet asked for. */
    cmd.spi.por = OTA_SCP80_POR_ALWAYS;
    cmd.spi.por_ciphered = json_is_true(json_object_get(in, "por_ciphered"));
    if (keys.kic) {
        if (alg_scp80(json_string_value(json_object_get(in, "kic_algorithm")), false, &a) < 0) {
            vdiff_add(d, "kic_algorithm: unknown");
            goto out;
        }
        int o = ota_scp80_keyid_encode(1, a, &e);
        if (o < 0) {
            vdiff_add(d, "kic: %s", e.msg);
            goto out;
        }
        cmd.kic = (uint8_t)o;
    }
    if (keys.kid) {
        if (alg_scp80(json_string_value(json_object_get(in, "cc_algorithm")), true, &a) < 0) {
            vdiff_add(d, "cc_algorithm: unknown");
            goto out;
        }
        cmd.spi.por_integrity = (a == OTA_SCP80_ALG_CRC16 || a == OTA_SCP80_ALG_CRC32)
                                    ? OTA_SCP80_INTEGRITY_RC
                                    : OTA_SCP80_INTEGRITY_CC;
        cmd.spi.integrity = cmd.spi.por_integrity;
        int o = ota_scp80_keyid_encode(1, a, &e);
        if (o < 0) {
            vdiff_add(d, "kid: %s", e.msg);
            goto out;
        }
        cmd.kid = (uint8_t)o;
    }
    const char *forms[] = {"sms_user_data", "response_packet"};
    for (int f = 0; f < 2; f++) {
        struct ota_scp80_por por;
        struct vdiff one = {0};
        if (!json_object_get(in, forms[f])) {
            continue;
        }
        int n = vj_hex(d, in, forms[f], buf, sizeof(buf));
        if (n < 0) {
            continue;
        }
        int rc = f == 0 ? ota_scp80_por_decode_sms(vc->crypto, &cmd, &keys, buf, (size_t)n, work,
                                                   sizeof(work), &por, &e)
                        : ota_scp80_por_decode(vc->crypto, &cmd, &keys, buf, (size_t)n, work,
                                               sizeof(work), &por, &e);
        const json_t *ccv = json_object_get(exp, "cc_valid");
        if (json_is_false(ccv)) {
            if (rc >= 0 || e.code != OTA_ERR_BAD_CC) {
                vdiff_add(d, "%s: expected a CC mismatch, got %s", forms[f],
                          rc >= 0 ? "success" : ota_errc_name(e.code));
            }
            continue;
        }
        if (rc < 0) {
            vdiff_add(d, "%s: %s (%s)", forms[f], e.msg, ota_errc_name(e.code));
            continue;
        }
        uint8_t b[5];
        ota_put_u16(b, por.rpl);
        vj_expect_hex(&one, exp, "rpl", b, 2);
        vj_expect_hex(&one, exp, "rhl", &por.rhl, 1);
        vj_expect_hex(&one, exp, "tar", por.tar, 3);
        ota_put_u40(b, por.cntr);
        vj_expect_hex(&one, exp, "cntr", b, 5);
        vj_expect_int(&one, exp, "pcntr", por.pcntr);
        vj_expect_hex(&one, exp, "status", &por.status, 1);
        if (vj_null(exp, "cc")) {
            if (por.cc_len) {
                vdiff_add(&one, "cc: expected none, got %u octets", por.cc_len);
            }
        } else {
            vj_expect_hex(&one, exp, "cc", por.cc, por.cc_len);
        }
        if (json_is_true(ccv) && por.cc_state != OTA_SCP80_CC_VALID) {
            vdiff_add(&one, "cc_valid: expected true, got %s",
                      ota_scp80_cc_state_name(por.cc_state));
        }
        if ((!ccv || json_is_null(ccv)) && por.cc_state != OTA_SCP80_CC_ABSENT) {
            vdiff_add(&one, "cc_valid: expected null, got %s",
                      ota_scp80_cc_state_name(por.cc_state));
        }
        vj_expect_hex(&one, exp, "additional_response_data", por.data, por.data_len);
        if (one.n) {
            vdiff_add(d, "%s: %s", forms[f], one.text);
        }
    }
out:
    ota_key_wipe(&kic);
    ota_key_wipe(&kid);
}
