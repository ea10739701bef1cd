/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SE and key routes of the business API (issue #6 "SEs", "Keys"; spec
 * 5.5.1, 5.5.2, 5.8.8):
 *   POST /v1/ses                       register an SE bound to one MSISDN
 *   GET  /v1/ses/{seid}                the SE with its active and queued tasks
 *   POST /v1/ses/{seid}/keys/scp80     import an SCP80 KIc/KID set (never echoed)
 * Input is validated strictly: unknown members, wrong types, SEID outside
 * 1..64 printable, MSISDN outside 1..21 digits, bad hex or key lengths -> 400
 * in the one error shape; nothing is written on any error.
 *
 * Registration answers only after the engine's commit (eng_flush for now:
 * the engine offers no post-commit hook for SEs yet).
 */
#include "gateway/gw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gateway/keys.h"

#define SES_QUEUED_MAX 64 /* queued task ids shown by GET /v1/ses/{seid} */

static bool seid_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static bool digits_ok(const char *s, size_t lo, size_t hi)
{
    size_t n = strlen(s);
    if (n < lo || n > hi) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

static bool batch_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > 32) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* Decode hex text of exactly 2*lo..2*hi digits into out. Returns the octets or -1. */
static int hex_decode(const char *h, uint8_t *out, size_t lo, size_t hi)
{
    size_t n = strlen(h);
    if (n % 2 || n / 2 < lo || n / 2 > hi) {
        return -1;
    }
    for (size_t i = 0; i < n; i += 2) {
        int v = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = h[i + j];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0) {
                return -1;
            }
            v = v << 4 | d;
        }
        out[i / 2] = (uint8_t)v;
    }
    return (int)(n / 2);
}

/* Refuse members outside allowed (NULL-terminated). Returns the first unknown key or NULL. */
static const char *unknown_member(json_t *o, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        (void)v;
        bool known = false;
        for (size_t i = 0; allowed[i]; i++) {
            if (strcmp(k, allowed[i]) == 0) {
                known = true;
                break;
            }
        }
        if (!known) {
            return k;
        }
    }
    return NULL;
}

/* A required (or optional) string member; 400 answered and NULL returned when it is bad. */
static const char *str_member(struct http_req *req, json_t *o, const char *name, bool required,
                              bool *answered)
{
    json_t *v = json_object_get(o, name);
    if (!v) {
        if (required) {
            (void)http_respond_error(req, 400, "missing-field", "%s: required", name);
            *answered = true;
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        (void)http_respond_error(req, 400, "bad-type", "%s: must be a string", name);
        *answered = true;
        return NULL;
    }
    return json_string_value(v);
}

/* ---- POST /v1/ses ------------------------------------------------------------------ */

static void route_se_register(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    json_t *body = http_req_json(req, &err);
    if (!body) {
        (void)http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const allowed[] = {"seid", "msisdn", "batch", NULL};
    const char *bad = unknown_member(body, allowed);
    if (bad) {
        (void)http_respond_error(req, 400, "unknown-field", "%s: unknown member", bad);
        return;
    }
    bool answered = false;
    const char *seid = str_member(req, body, "seid", true, &answered);
    const char *msisdn = answered ? NULL : str_member(req, body, "msisdn", true, &answered);
    const char *batch = answered ? NULL : str_member(req, body, "batch", false, &answered);
    if (answered) {
        return;
    }
    if (!seid_ok(seid)) {
        (void)http_respond_error(req, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    if (!digits_ok(msisdn, 1, 21)) {
        (void)http_respond_error(req, 400, "bad-msisdn", "msisdn: 1..21 digits");
        return;
    }
    if (!batch) {
        batch = "";
    }
    if (!batch_ok(batch)) {
        (void)http_respond_error(req, 400, "bad-batch", "batch: 0..32 printable ASCII characters");
        return;
    }
    int rc = eng_se_register(g->eng, seid, msisdn, batch, &err);
    if (rc == -EEXIST) {
        (void)http_respond_error(req, 409, "se-msisdn-conflict",
                                 "seid %s is registered with another MSISDN", seid);
        return;
    }
    if (rc < 0) {
        gw_respond_err(req, rc, "se-register", &err);
        return;
    }
    /* TODO: answer from a post-commit hook once the engine has one; flush = commit now. */
    rc = eng_flush(g->eng, &err);
    if (rc < 0) {
        gw_log(g, GW_CONF_LOG_ERR, "se register commit failed se=%s err=\"%s\"", seid, err.msg);
        gw_respond_err(req, -EIO, "commit-failed", &err);
        return;
    }
    /* The batch echoed is the stored one (a repeated registration keeps the first). */
    char m[22], b[33];
    if (gw_keys_se_find(g->keys, seid, m, b, &err) == 0) {
        batch = b;
    }
    gw_log(g, GW_CONF_LOG_INFO, "se registered se=%s msisdn=%s", seid, msisdn);
    char loc[96];
    snprintf(loc, sizeof(loc), "/v1/ses/%s", seid);
    (void)http_req_set_header(req, "Location", loc);
    (void)http_respond_json(
        req, 201, json_pack("{s:s, s:s, s:s}", "seid", seid, "msisdn", msisdn, "batch", batch));
}

/* ---- GET /v1/ses/{seid} ------------------------------------------------------------ */

static json_t *task_json(struct gw *g, int64_t id)
{
    struct eng_task_view v;
    struct ota_err err;
    if (eng_task_get(g->eng, id, &v, &err) < 0) {
        return json_pack("{s:I}", "id", (json_int_t)id);
    }
    return json_pack("{s:I, s:s, s:s, s:i, s:i}", "id", (json_int_t)v.id, "op", task_op_name(v.op),
                     "state", task_state_name(v.state), "prio", (int)v.prio, "attempts",
                     (int)v.attempts);
}

static void route_se_get(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    const char *seid = http_req_param(req, "seid");
    if (!seid || !seid_ok(seid)) {
        (void)http_respond_error(req, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    char msisdn[22], batch[33];
    int rc = gw_keys_se_find(g->keys, seid, msisdn, batch, &err);
    if (rc == -ENOENT) {
        (void)http_respond_error(req, 404, "se-not-found", "SE %s is not registered", seid);
        return;
    }
    if (rc < 0) {
        gw_respond_err(req, rc, "se-lookup", &err);
        return;
    }
    int64_t active = 0, queued[SES_QUEUED_MAX];
    size_t n_queued = 0;
    rc = eng_se_tasks(g->eng, seid, &active, queued, SES_QUEUED_MAX, &n_queued, &err);
    if (rc < 0) {
        gw_respond_err(req, rc, "se-tasks", &err);
        return;
    }
    json_t *q = json_array();
    for (size_t i = 0; i < n_queued && i < SES_QUEUED_MAX; i++) {
        json_array_append_new(q, task_json(g, queued[i]));
    }
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:I}", "seid", seid, "msisdn", msisdn, "batch", batch,
                  "active_task", active ? task_json(g, active) : json_null(), "queued_tasks", q,
                  "queued_total", (json_int_t)n_queued);
    (void)http_respond_json(req, 200, body);
}

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
    if (!seid || !seid_ok(seid)) {
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
    const char *bad = unknown_member(body, allowed);
    if (bad) {
        (void)http_respond_error(req, 400, "unknown-field", "%s: unknown member", bad);
        return;
    }
    bool answered = false;
    const char *tar = str_member(req, body, "tar", true, &answered);
    const char *spi = answered ? NULL : str_member(req, body, "spi", true, &answered);
    const char *kic = answered ? NULL : str_member(req, body, "kic", true, &answered);
    const char *kid = answered ? NULL : str_member(req, body, "kid", true, &answered);
    const char *kic_key = answered ? NULL : str_member(req, body, "kic_key", true, &answered);
    const char *kid_key = answered ? NULL : str_member(req, body, "kid_key", true, &answered);
    const char *kcv_h = answered ? NULL : str_member(req, body, "kcv", false, &answered);
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
    } else if (hex_decode(tar, ks.tar, 3, 3) < 0) {
        (void)http_respond_error(req, 400, "bad-hex", "tar: 6 hex digits or \"*\"");
        return;
    }
    if (hex_decode(spi, ks.spi, 2, 2) < 0) {
        (void)http_respond_error(req, 400, "bad-hex", "spi: 4 hex digits");
        return;
    }
    if (hex_decode(kic, &ks.kic, 1, 1) < 0 || hex_decode(kid, &ks.kid, 1, 1) < 0) {
        (void)http_respond_error(req, 400, "bad-hex", "kic, kid: 2 hex digits each");
        return;
    }
    uint8_t kcv[6];
    if (kcv_h && hex_decode(kcv_h, kcv, 6, 6) < 0) {
        (void)http_respond_error(req, 400, "bad-hex",
                                 "kcv: 12 hex digits, KCV(kic_key) then KCV(kid_key)");
        return;
    }
    uint8_t raw[OTA_KEY_MAX];
    int n = hex_decode(kic_key, raw, 1, OTA_KEY_MAX);
    if (n < 0 || ota_key_set(&ks.kic_key, octet_cipher(ks.kic), raw, (size_t)n, &err) < 0) {
        OPENSSL_cleanse(raw, sizeof(raw));
        (void)http_respond_error(req, 400, n < 0 ? "bad-hex" : "bad-key",
                                 "kic_key: hex of a key fitting the algorithm of kic %02X", ks.kic);
        return;
    }
    n = hex_decode(kid_key, raw, 1, OTA_KEY_MAX);
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
    int n = hex_decode(hex, raw, 16, 16);
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
    if (!seid || !seid_ok(seid)) {
        (void)http_respond_error(req, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    json_t *body = http_req_json(req, &err);
    if (!body) {
        (void)http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const allowed[] = {"sd_aid", "kvn", "enc", "mac", "dek", "kcv", NULL};
    const char *bad = unknown_member(body, allowed);
    if (bad) {
        (void)http_respond_error(req, 400, "unknown-field", "%s: unknown member", bad);
        return;
    }
    bool answered = false;
    const char *aid = str_member(req, body, "sd_aid", true, &answered);
    const char *enc = answered ? NULL : str_member(req, body, "enc", true, &answered);
    const char *mac = answered ? NULL : str_member(req, body, "mac", true, &answered);
    const char *dek = answered ? NULL : str_member(req, body, "dek", true, &answered);
    const char *kcv_h = answered ? NULL : str_member(req, body, "kcv", false, &answered);
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
    int n = hex_decode(aid, ks.aid, 5, GW_KEYS_AID_MAX);
    if (n < 0) {
        (void)http_respond_error(req, 400, "bad-hex", "sd_aid: 5..16 octets of hex");
        return;
    }
    ks.aid_len = (size_t)n;
    uint8_t kcv[9];
    if (kcv_h && hex_decode(kcv_h, kcv, 9, 9) < 0) {
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

int gw_api_ses_routes(struct gw *g, struct ota_err *err)
{
    int rc = http_route(g->http, "POST", "/v1/ses", route_se_register, g, err);
    if (rc == 0) {
        rc = http_route(g->http, "GET", "/v1/ses/{seid}", route_se_get, g, err);
    }
    if (rc == 0) {
        rc = http_route(g->http, "POST", "/v1/ses/{seid}/keys/scp80", route_keys_scp80, g, err);
    }
    if (rc == 0) {
        rc = http_route(g->http, "POST", "/v1/ses/{seid}/keys/sd", route_keys_sd, g, err);
    }
    return rc;
}
