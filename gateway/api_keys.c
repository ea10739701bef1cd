/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key import routes of the business API (issue #6 "Keys", issue #7 key store):
 *   POST /v1/ses/{seid}/keys/scp80     import an SCP80 KIc/KID set (never echoed)
 *   POST /v1/ses/{seid}/keys/sd        import an SD key set (ENC/MAC/DEK, never echoed)
 * Input is validated strictly; nothing is written on any error.
 */
#include "gateway/gw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gateway/api_util.h"
#include "gateway/auth.h"
#include "gateway/keys.h"
/* ---- POST /v1/ses/{seid}/keys/scp80 ------------------------------------------------ */

/* The cipher a coded KIc/KID octet names (the key store re-checks everything). */
static enum ota_cipher octet_cipher(uint8_t octet)
{
    if ((octet & 0x03) == 0x02) {
        return OTA_CIPHER_AES;
    }
    if ((octet & 0x03) == 0x01) {
        switch (octet & 0x0c) {
        case 0x00:
        case 0x0c:
            return OTA_CIPHER_DES;
        case 0x04:
            return OTA_CIPHER_3DES2;
        default:
            return OTA_CIPHER_3DES3;
        }
    }
    return OTA_CIPHER_NONE;
}

static void route_keys_scp80(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    struct gw_keys_scp80 ks;
    memset(&ks, 0, sizeof(ks));
    const char *seid = http_req_param(req, "seid");
    if (!seid || !api_seid_ok(seid)) {
        (void)http_respond_error(req, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    json_t *body = http_req_json(req, &err);
    if (!body) {
        (void)http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const allowed[] = {"tar",     "kvn",     "spi",    "kic", "kid",
                                          "kic_key", "kid_key", "cc_len", "kcv", NULL};
    const char *bad = api_unknown_member(body, allowed);
    if (bad) {
        (void)http_respond_error(req, 400, "unknown-field", "%s: unknown member", bad);
        return;
    }
    bool answered = false;
    const char *tar = api_str_member(req, body, "tar", true, &answered);
    const char *spi = answered ? NULL : api_str_member(req, body, "spi", true, &answered);
    const char *kic = answered ? NULL : api_str_member(req, body, "kic", true, &answered);
    const char *kid = answered ? NULL : api_str_member(req, body, "kid", true, &answered);
    const char *kic_key = answered ? NULL : api_str_member(req, body, "kic_key", true, &answered);
    const char *kid_key = answered ? NULL : api_str_member(req, body, "kid_key", true, &answered);
    const char *kcv_h = answered ? NULL : api_str_member(req, body, "kcv", false, &answered);
    if (answered) {
        return;
    }
    json_t *kvn = json_object_get(body, "kvn");
    json_t *cc = json_object_get(body, "cc_len");
    if (!kvn || !json_is_integer(kvn) || json_integer_value(kvn) < 1 ||
        json_integer_value(kvn) > 15) {
        (void)http_respond_error(req, 400, "bad-kvn", "kvn: an integer 1..15");
        return;
    }
    if (cc && (!json_is_integer(cc) || json_integer_value(cc) < 0 || json_integer_value(cc) > 8)) {
        (void)http_respond_error(req, 400, "bad-cc-len", "cc_len: 4 or 8");
        return;
    }
    ks.kvn = (uint8_t)json_integer_value(kvn);
    ks.cc_len = cc ? (uint8_t)json_integer_value(cc) : 8;
    if (strcmp(tar, "*") == 0) {
        ks.any_tar = true;
    } else if (api_hex_decode(tar, ks.tar, 3, 3) < 0) {
        (void)http_respond_error(req, 400, "bad-hex", "tar: 6 hex digits or \"*\"");
        return;
    }
    if (api_hex_decode(spi, ks.spi, 2, 2) < 0) {
        (void)http_respond_error(req, 400, "bad-hex", "spi: 4 hex digits");
        return;
    }
    if (api_hex_decode(kic, &ks.kic, 1, 1) < 0 || api_hex_decode(kid, &ks.kid, 1, 1) < 0) {
        (void)http_respond_error(req, 400, "bad-hex", "kic, kid: 2 hex digits each");
        return;
    }
    uint8_t kcv[6];
    if (kcv_h && api_hex_decode(kcv_h, kcv, 6, 6) < 0) {
        (void)http_respond_error(req, 400, "bad-hex",
                                 "kcv: 12 hex digits, KCV(kic_key) then KCV(kid_key)");
        return;
    }
    uint8_t raw[OTA_KEY_MAX];
    int n = api_hex_decode(kic_key, raw, 1, OTA_KEY_MAX);
    if (n < 0 || ota_key_set(&ks.kic_key, octet_cipher(ks.kic), raw, (size_t)n, &err) < 0) {
        OPENSSL_cleanse(raw, sizeof(raw));
        (void)http_respond_error(req, 400, n < 0 ? "bad-hex" : "bad-key",
                                 "kic_key: hex of a key fitting the algorithm of kic %02X", ks.kic);
        return;
    }
    n = api_hex_decode(kid_key, raw, 1, OTA_KEY_MAX);
    if (n < 0 || ota_key_set(&ks.kid_key, octet_cipher(ks.kid), raw, (size_t)n, &err) < 0) {
        OPENSSL_cleanse(raw, sizeof(raw));
        gw_keys_scp80_wipe(&ks);
        (void)http_respond_error(req, 400, n < 0 ? "bad-hex" : "bad-key",
                                 "kid_key: hex of a key fitting the algorithm of kid %02X", ks.kid);
        return;
    }
    OPENSSL_cleanse(raw, sizeof(raw));

    int rc = eng_se_tasks(g->eng, seid, NULL, NULL, 0, NULL, &err);
    if (rc == -ENOENT) {
        gw_keys_scp80_wipe(&ks);
        (void)http_respond_error(req, 404, "se-not-found", "SE %s is not registered", seid);
        return;
    }
    /* The engine holds the file's write lock while it stages: commit first (see keys.h). */
    if (rc == 0) {
        rc = eng_flush(g->eng, &err);
    }
    if (rc == 0) {
        rc = gw_keys_put_scp80(g->keys, seid, &ks, kcv_h ? kcv : NULL, &err);
    }
    gw_keys_scp80_wipe(&ks);
    if (rc < 0) {
        const char *code = err.code == OTA_ERR_BAD_CC ? "kcv-mismatch"
                           : rc == -EINVAL            ? "bad-key-set"
                                                      : "key-store";
        if (rc == -EBUSY) {
            rc = -EIO; /* a lock the engine should never hold here: not a client conflict */
        }
        gw_respond_err(req, rc, code, &err);
        return;
    }
    gw_log(g, GW_CONF_LOG_INFO, "scp80 keys imported se=%s tar=%s kvn=%u", seid, tar,
           (unsigned)ks.kvn);
    (void)http_respond_json(req, 201,
                            json_pack("{s:s, s:s, s:i}", "seid", seid, "tar", tar, "kvn",
                                      (int)json_integer_value(kvn)));
}

/* One SD key (ENC, MAC or DEK): 16 octets of 3DES 2-key, its KCV checked when given. */
static int sd_key(struct http_req *req, struct ota_crypto *cx, const char *name, const char *hex,
                  const uint8_t *kcv, struct ota_key *out)
{
    uint8_t raw[16];
    struct ota_err err;
    int n = api_hex_decode(hex, raw, 16, 16);
    if (n < 0 || ota_key_set(out, OTA_CIPHER_3DES2, raw, 16, &err) < 0) {
        OPENSSL_cleanse(raw, sizeof(raw));
        (void)http_respond_error(req, 400, n < 0 ? "bad-hex" : "bad-key",
                                 "%s: 32 hex digits (a 3DES 2-key key)", name);
        return -EINVAL;
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    if (kcv) {
        uint8_t got[3];
        if (ota_crypto_kcv(cx, out, got, &err) < 0 || CRYPTO_memcmp(got, kcv, 3) != 0) {
            (void)http_respond_error(req, 400, "kcv-mismatch", "%s: key check value differs", name);
            return -EINVAL;
        }
    }
    return 0;
}

/* POST /v1/ses/{seid}/keys/sd: an SCP02 key set (ENC, MAC, DEK) of a security domain. */
static void route_keys_sd(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    struct gw_keys_sd ks;
    memset(&ks, 0, sizeof(ks));
    const char *seid = http_req_param(req, "seid");
    if (!seid || !api_seid_ok(seid)) {
        (void)http_respond_error(req, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    json_t *body = http_req_json(req, &err);
    if (!body) {
        (void)http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const allowed[] = {"sd_aid", "kvn", "enc", "mac", "dek", "kcv", NULL};
    const char *bad = api_unknown_member(body, allowed);
    if (bad) {
        (void)http_respond_error(req, 400, "unknown-field", "%s: unknown member", bad);
        return;
    }
    bool answered = false;
    const char *aid = api_str_member(req, body, "sd_aid", true, &answered);
    const char *enc = answered ? NULL : api_str_member(req, body, "enc", true, &answered);
    const char *mac = answered ? NULL : api_str_member(req, body, "mac", true, &answered);
    const char *dek = answered ? NULL : api_str_member(req, body, "dek", true, &answered);
    const char *kcv_h = answered ? NULL : api_str_member(req, body, "kcv", false, &answered);
    if (answered) {
        return;
    }
    json_t *kvn = json_object_get(body, "kvn");
    if (!kvn || !json_is_integer(kvn) || json_integer_value(kvn) < 1 ||
        json_integer_value(kvn) > 127) {
        (void)http_respond_error(req, 400, "bad-kvn", "kvn: an integer 1..127");
        return;
    }
    ks.kvn = (uint8_t)json_integer_value(kvn);
    int n = api_hex_decode(aid, ks.aid, 5, GW_KEYS_AID_MAX);
    if (n < 0) {
        (void)http_respond_error(req, 400, "bad-hex", "sd_aid: 5..16 octets of hex");
        return;
    }
    ks.aid_len = (size_t)n;
    uint8_t kcv[9];
    if (kcv_h && api_hex_decode(kcv_h, kcv, 9, 9) < 0) {
        (void)http_respond_error(req, 400, "bad-hex",
                                 "kcv: 18 hex digits, KCV(enc) KCV(mac) KCV(dek)");
        return;
    }
    struct ota_crypto *cx = NULL;
    if (ota_crypto_new(&cx, &err) < 0) {
        gw_respond_err(req, -ENOMEM, "crypto", &err);
        return;
    }
    int rc = sd_key(req, cx, "enc", enc, kcv_h ? kcv : NULL, &ks.enc);
    if (rc == 0) {
        rc = sd_key(req, cx, "mac", mac, kcv_h ? kcv + 3 : NULL, &ks.mac);
    }
    if (rc == 0) {
        rc = sd_key(req, cx, "dek", dek, kcv_h ? kcv + 6 : NULL, &ks.dek);
    }
    ota_crypto_free(cx);
    if (rc < 0) {
        gw_keys_sd_wipe(&ks); /* answered by sd_key */
        return;
    }
    rc = eng_se_tasks(g->eng, seid, NULL, NULL, 0, NULL, &err);
    if (rc == -ENOENT) {
        gw_keys_sd_wipe(&ks);
        (void)http_respond_error(req, 404, "se-not-found", "SE %s is not registered", seid);
        return;
    }
    /* The engine holds the file's write lock while it stages: commit first (see keys.h). */
    if (rc == 0) {
        rc = eng_flush(g->eng, &err);
    }
    if (rc == 0) {
        rc = gw_keys_put_sd(g->keys, seid, &ks, &err);
    }
    gw_keys_sd_wipe(&ks);
    if (rc < 0) {
        if (rc == -EBUSY) {
            rc = -EIO;
        }
        gw_respond_err(req, rc, rc == -EINVAL ? "bad-key-set" : "key-store", &err);
        return;
    }
    gw_log(g, GW_CONF_LOG_INFO, "sd keys imported se=%s sd=%s kvn=%u", seid, aid, (unsigned)ks.kvn);
    (void)http_respond_json(req, 201,
                            json_pack("{s:s, s:s, s:i}", "seid", seid, "sd_aid", aid, "kvn",
                                      (int)json_integer_value(kvn)));
}
int gw_api_keys_routes(struct gw *g, struct ota_err *err)
{
    int rc =
        gw_route(g, "POST", "/v1/ses/{seid}/keys/scp80", GW_ROLE_ADMIN, route_keys_scp80, g, err);
    if (rc == 0) {
        rc = gw_route(g, "POST", "/v1/ses/{seid}/keys/sd", GW_ROLE_ADMIN, route_keys_sd, g, err);
    }
    return rc;
}
