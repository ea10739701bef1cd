/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key import routes of the business API (issue #7 "Key store", docs/keys.md):
 *   POST /v1/ses/{seid}/keys/scp80     import an SCP80 KIc/KID set (never echoed)
 *   POST /v1/ses/{seid}/keys/sd        import an SD key set (ENC/MAC/DEK, never echoed)
 *   POST /v1/keks/{name}               import a business platform's KEK (spec 5.8.4.6.3)
 *
 * Keys arrive encrypted under the transport key ("kic_key_wrapped", ...,
 * "wrapping": "ecb" (default) or "aes-kw") with their key check values,
 * which are required; the key store unwraps them (in locked memory, or in
 * the token) and refuses a KCV mismatch (400 bad-kcv). Clear values
 * ("kic_key", "enc", ...) only when [keys] clear_import = yes (403
 * clear-import-disabled otherwise). Every import and refusal is audited;
 * nothing is written on any error; no key byte is logged or answered.
 *
 * The key.import entry is written before the key store is asked (503
 * audit-unavailable, nothing stored, when it cannot be): a stored key
 * without its entry never exists, not even for the instant between the two
 * writes. When the store then refuses, a key.import_refused entry follows.
 * Every answer goes through answer_*(), which first cleanses the key
 * strings of the request (the body buffer and the parsed JSON values): the
 * request's memory is freed, not cleared, once answered.
 */
#include "gateway/gw.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gateway/api_util.h"
#include "gateway/audit.h"
#include "gateway/auth.h"
#include "gateway/keys.h"

/* Members that carry a key, clear or wrapped. */
static const char *const key_members[] = {
    "kic_key",
    "kid_key",
    "enc",
    "mac",
    "dek",
    "key",
    "kic_key_wrapped",
    "kid_key_wrapped",
    "enc_wrapped",
    "mac_wrapped",
    "dek_wrapped",
    "key_wrapped",
};

void gw_api_keys_scrub(struct http_req *req)
{
    /* Parse first (cached on the request) so the values are found before the text goes. */
    json_t *body = http_req_json(req, NULL);
    for (size_t i = 0; body && i < OTA_ARRAY_SIZE(key_members); i++) {
        json_t *v = json_object_get(body, key_members[i]);
        if (json_is_string(v)) {
            /* jansson's own buffer: cleared in place, freed with the request */
            OPENSSL_cleanse((char *)(uintptr_t)json_string_value(v), json_string_length(v));
        }
    }
    size_t n = 0;
    const uint8_t *raw = http_req_body(req, &n);
    if (raw && n) {
        OPENSSL_cleanse((uint8_t *)(uintptr_t)raw, n);
    }
}

/* The answers of this file: the key strings are cleansed first (see the file comment). */
static void answer_error(struct http_req *req, int status, const char *code, const char *fmt, ...)
    OTA_PRINTF(4, 5);

static void answer_error(struct http_req *req, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gw_api_keys_scrub(req);
    (void)http_respond_error(req, status, code, "%s", msg);
}

static void answer_json(struct http_req *req, int status, json_t *body)
{
    gw_api_keys_scrub(req);
    (void)http_respond_json(req, status, body);
}

static void answer_err(struct http_req *req, int rc, const char *code, const struct ota_err *err)
{
    gw_api_keys_scrub(req);
    gw_respond_err(req, rc, code, err);
}

static const char *actor(struct http_req *req)
{
    const struct gw_principal *p = gw_req_principal(req);
    return p ? p->name : "anonymous";
}

/* Refuse, audit the refusal (reason = the error code), answer. */
static void refuse(struct gw *g, struct http_req *req, const char *seid, const char *what,
                   int status, const char *code, const char *msg)
{
    char target[GW_KEYS_SEID_MAX + 4];
    snprintf(target, sizeof(target), "se:%s", seid);
    (void)gw_audit(g, actor(req), "key.import_refused", target, "kind=%s reason=%s", what, code);
    gw_log(g, GW_CONF_LOG_WARNING, "key import refused se=%s kind=%s reason=%s", seid, what, code);
    answer_error(req, status, code, "%s", msg);
}

/*
 * The one key store error -> HTTP answer mapping (SCP80, SD and KEK imports):
 * the status, and the error code in *code.
 */
static int store_status(int rc, const struct ota_err *err, const char **code)
{
    *code = err->code == OTA_ERR_BAD_CC ? "bad-kcv"
            : rc == -EINVAL             ? "bad-key-set"
            : rc == -ENOKEY             ? "no-transport-key"
            : rc == -EEXIST             ? "key-exists"
            : rc == -EOPNOTSUPP         ? "unwrap-unsupported"
                                        : "key-store";
    return rc == -EINVAL || rc == -ENOKEY || rc == -EOPNOTSUPP ? 400 : rc == -EEXIST ? 409 : 500;
}

/* A key store error as an answer (refusals audited). */
static void store_refused(struct gw *g, struct http_req *req, const char *seid, const char *what,
                          int rc, const struct ota_err *err)
{
    const char *code;
    int status = store_status(rc, err, &code);
    refuse(g, req, seid, what, status, code, err->msg);
}

/*
 * The key.import entry, written before the store is asked (file comment);
 * false (answered 503 audit-unavailable) when it cannot be written.
 */
static bool import_audited(struct gw *g, struct http_req *req, const char *target,
                           const char *detail)
{
    if (gw_audit(g, actor(req), "key.import", target, "%s", detail) < 0) {
        answer_error(req, 503, "audit-unavailable",
                     "the audit log cannot be written: key import refused, nothing stored");
        return false;
    }
    return true;
}

static bool se_import_audited(struct gw *g, struct http_req *req, const char *seid,
                              const char *what, const char *ref, unsigned kvn, bool wrapped)
{
    char target[GW_KEYS_SEID_MAX + 4], detail[160];
    snprintf(target, sizeof(target), "se:%s", seid);
    snprintf(detail, sizeof(detail), "kind=%s ref=%s kvn=%u wrapped=%s", what, ref, kvn,
             wrapped ? "yes" : "no");
    return import_audited(g, req, target, detail);
}

static void imported(struct gw *g, const char *seid, const char *what, const char *ref,
                     unsigned kvn, bool wrapped)
{
    gw_log(g, GW_CONF_LOG_INFO, "%s keys imported se=%s ref=%s kvn=%u wrapped=%s", what, seid, ref,
           kvn, wrapped ? "yes" : "no");
}

/* "wrapping": absent / "ecb" / "aes-kw"; false (answered) otherwise. */
static bool wrapping(struct http_req *req, json_t *body, enum gw_keys_wrap *out)
{
    json_t *w = json_object_get(body, "wrapping");
    const char *s = w ? json_string_value(w) : "ecb";
    if (s && strcmp(s, "ecb") == 0) {
        *out = GW_KEYS_WRAP_ECB;
        return true;
    }
    if (s && strcmp(s, "aes-kw") == 0) {
        *out = GW_KEYS_WRAP_AES_KW;
        return true;
    }
    answer_error(req, 400, "bad-wrapping", "wrapping: \"ecb\" or \"aes-kw\"");
    return false;
}

/* One wrapped key from hex; false (answered) on bad hex. */
static bool wrapped_key(struct http_req *req, const char *name, const char *hex,
                        enum gw_keys_wrap wrap, const uint8_t kcv[3], struct gw_keys_wrapped *out)
{
    memset(out, 0, sizeof(*out));
    int n = api_hex_decode(hex, out->data, 8, sizeof(out->data));
    if (n < 0) {
        answer_error(req, 400, "bad-hex", "%s: hex of 8..40 octets", name);
        return false;
    }
    out->len = (size_t)n;
    out->wrap = wrap;
    memcpy(out->kcv, kcv, 3);
    return true;
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

/* A clear key from hex into *out; false (answered) on error. */
static bool clear_key(struct http_req *req, const char *name, const char *hex, enum ota_cipher c,
                      uint8_t octet, struct ota_key *out)
{
    uint8_t raw[OTA_KEY_MAX];
    struct ota_err err;
    int n = api_hex_decode(hex, raw, 1, OTA_KEY_MAX);
    bool ok = n >= 0 && ota_key_set(out, c, raw, (size_t)n, &err) == 0;
    OPENSSL_cleanse(raw, sizeof(raw));
    if (!ok) {
        answer_error(req, 400, n < 0 ? "bad-hex" : "bad-key",
                     "%s: hex of a key fitting the algorithm of %02X", name, octet);
    }
    return ok;
}

/* Is the SE registered? false (answered 404 / 500) otherwise. */
static bool se_known(struct gw *g, struct http_req *req, const char *seid)
{
    struct ota_err err;
    int rc = eng_se_tasks(g->eng, seid, NULL, NULL, 0, NULL, &err);
    if (rc == -ENOENT) {
        answer_error(req, 404, "se-not-found", "SE %s is not registered", seid);
        return false;
    }
    if (rc < 0) {
        answer_err(req, rc, "store", &err);
        return false;
    }
    return true;
}

static void route_keys_scp80(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    struct gw_keys_scp80 ks;
    memset(&ks, 0, sizeof(ks));
    const char *seid = http_req_param(req, "seid");
    if (!seid || !api_seid_ok(seid)) {
        answer_error(req, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    json_t *body = http_req_json(req, &err);
    if (!body) {
        answer_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const allowed[] = {"tar",
                                          "kvn",
                                          "spi",
                                          "kic",
                                          "kid",
                                          "cc_len",
                                          "kcv",
                                          "wrapping",
                                          "kic_key_wrapped",
                                          "kid_key_wrapped",
                                          "kic_key",
                                          "kid_key",
                                          NULL};
    const char *bad = api_unknown_member(body, allowed);
    if (bad) {
        answer_error(req, 400, "unknown-field", "%s: unknown member", bad);
        return;
    }
    bool clear = json_object_get(body, "kic_key") || json_object_get(body, "kid_key");
    bool wrapped =
        json_object_get(body, "kic_key_wrapped") || json_object_get(body, "kid_key_wrapped");
    if (clear == wrapped) {
        answer_error(req, 400, "bad-key-set",
                     "give kic_key_wrapped and kid_key_wrapped (or, with "
                     "clear_import, kic_key and kid_key): one form, not both");
        return;
    }
    if (clear && !g->conf.keys_clear_import) {
        refuse(g, req, seid, "scp80", 403, "clear-import-disabled",
               "clear key values are refused ([keys] clear_import = no): send them wrapped under "
               "the transport key");
        return;
    }
    bool answered = false;
    const char *tar = api_str_member(req, body, "tar", true, &answered);
    const char *spi = answered ? NULL : api_str_member(req, body, "spi", true, &answered);
    const char *kic = answered ? NULL : api_str_member(req, body, "kic", true, &answered);
    const char *kid = answered ? NULL : api_str_member(req, body, "kid", true, &answered);
    const char *k_c = answered ? NULL
                               : api_str_member(req, body, clear ? "kic_key" : "kic_key_wrapped",
                                                true, &answered);
    const char *k_i = answered ? NULL
                               : api_str_member(req, body, clear ? "kid_key" : "kid_key_wrapped",
                                                true, &answered);
    /* wrapped keys only ever come with their KCVs: the one proof the unwrap was right */
    const char *kcv_h = answered ? NULL : api_str_member(req, body, "kcv", !clear, &answered);
    if (answered) {
        return;
    }
    json_t *kvn = json_object_get(body, "kvn");
    json_t *cc = json_object_get(body, "cc_len");
    if (!kvn || !json_is_integer(kvn) || json_integer_value(kvn) < 1 ||
        json_integer_value(kvn) > 15) {
        answer_error(req, 400, "bad-kvn", "kvn: an integer 1..15");
        return;
    }
    if (cc && (!json_is_integer(cc) || json_integer_value(cc) < 0 || json_integer_value(cc) > 8)) {
        answer_error(req, 400, "bad-cc-len", "cc_len: 4 or 8");
        return;
    }
    ks.kvn = (uint8_t)json_integer_value(kvn);
    ks.cc_len = cc ? (uint8_t)json_integer_value(cc) : 8;
    if (strcmp(tar, "*") == 0) {
        ks.any_tar = true;
    } else if (api_hex_decode(tar, ks.tar, 3, 3) < 0) {
        answer_error(req, 400, "bad-hex", "tar: 6 hex digits or \"*\"");
        return;
    }
    if (api_hex_decode(spi, ks.spi, 2, 2) < 0) {
        answer_error(req, 400, "bad-hex", "spi: 4 hex digits");
        return;
    }
    if (api_hex_decode(kic, &ks.kic, 1, 1) < 0 || api_hex_decode(kid, &ks.kid, 1, 1) < 0) {
        answer_error(req, 400, "bad-hex", "kic, kid: 2 hex digits each");
        return;
    }
    uint8_t kcv[6] = {0};
    if (kcv_h && api_hex_decode(kcv_h, kcv, 6, 6) < 0) {
        answer_error(req, 400, "bad-hex", "kcv: 12 hex digits, KCV(kic_key) then KCV(kid_key)");
        return;
    }
    struct gw_keys_wrapped w[2];
    enum gw_keys_wrap wrap = GW_KEYS_WRAP_ECB;
    if (clear) {
        if (!clear_key(req, "kic_key", k_c, octet_cipher(ks.kic), ks.kic, &ks.kic_key)) {
            return;
        }
        if (!clear_key(req, "kid_key", k_i, octet_cipher(ks.kid), ks.kid, &ks.kid_key)) {
            gw_keys_scp80_wipe(&ks);
            return;
        }
    } else if (!wrapping(req, body, &wrap) ||
               !wrapped_key(req, "kic_key_wrapped", k_c, wrap, kcv, &w[0]) ||
               !wrapped_key(req, "kid_key_wrapped", k_i, wrap, kcv + 3, &w[1])) {
        return;
    }
    if (!se_known(g, req, seid) || !se_import_audited(g, req, seid, "scp80", tar, ks.kvn, !clear)) {
        gw_keys_scp80_wipe(&ks);
        OPENSSL_cleanse(w, sizeof(w));
        return;
    }
    int rc = clear ? gw_keys_put_scp80(g->keys, seid, &ks, kcv_h ? kcv : NULL, &err)
                   : gw_keys_import_scp80(g->keys, seid, &ks, &w[0], &w[1], &err);
    gw_keys_scp80_wipe(&ks);
    OPENSSL_cleanse(w, sizeof(w));
    if (rc < 0) {
        store_refused(g, req, seid, "scp80", rc, &err);
        return;
    }
    uint8_t cur = 0;
    bool current = gw_keys_current(g->keys, seid, GW_KEYS_KIND_SCP80, ks.any_tar ? NULL : ks.tar, 3,
                                   &cur, &err) == 0 &&
                   cur == ks.kvn;
    imported(g, seid, "scp80", tar, ks.kvn, !clear);
    answer_json(req, 201,
                json_pack("{s:s, s:s, s:i, s:b}", "seid", seid, "tar", tar, "kvn", (int)ks.kvn,
                          "current", current));
}

/* ---- POST /v1/ses/{seid}/keys/sd --------------------------------------------------- */

/* One clear SD key (ENC, MAC or DEK): 16 octets of 3DES 2-key, its KCV checked when given. */
static int sd_key(struct http_req *req, struct ota_crypto *cx, const char *name, const char *hex,
                  const uint8_t *kcv, struct ota_key *out, bool *kcv_bad)
{
    uint8_t raw[16];
    struct ota_err err;
    int n = api_hex_decode(hex, raw, 16, 16);
    if (n < 0 || ota_key_set(out, OTA_CIPHER_3DES2, raw, 16, &err) < 0) {
        OPENSSL_cleanse(raw, sizeof(raw));
        answer_error(req, 400, n < 0 ? "bad-hex" : "bad-key",
                     "%s: 32 hex digits (a 3DES 2-key key)", name);
        return -EINVAL;
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    if (kcv) {
        uint8_t got[3];
        if (ota_crypto_kcv(cx, out, got, &err) < 0 || CRYPTO_memcmp(got, kcv, 3) != 0) {
            *kcv_bad = true;
            return -EINVAL;
        }
    }
    return 0;
}

/* POST /v1/ses/{seid}/keys/sd: an SCP02 key set (ENC, MAC, DEK) of a security domain. */
static void route_keys_sd(struct http_req *req, void *arg)
{
    static const char *const clear_names[3] = {"enc", "mac", "dek"};
    static const char *const wrap_names[3] = {"enc_wrapped", "mac_wrapped", "dek_wrapped"};
    struct gw *g = arg;
    struct ota_err err;
    struct gw_keys_sd ks;
    memset(&ks, 0, sizeof(ks));
    const char *seid = http_req_param(req, "seid");
    if (!seid || !api_seid_ok(seid)) {
        answer_error(req, 400, "bad-seid", "seid: 1..64 printable ASCII characters");
        return;
    }
    json_t *body = http_req_json(req, &err);
    if (!body) {
        answer_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const allowed[] = {"sd_aid",      "kvn",         "kcv",         "wrapping",
                                          "enc_wrapped", "mac_wrapped", "dek_wrapped", "enc",
                                          "mac",         "dek",         NULL};
    const char *bad = api_unknown_member(body, allowed);
    if (bad) {
        answer_error(req, 400, "unknown-field", "%s: unknown member", bad);
        return;
    }
    bool clear = false, wrapped = false;
    for (int i = 0; i < 3; i++) {
        clear = clear || json_object_get(body, clear_names[i]);
        wrapped = wrapped || json_object_get(body, wrap_names[i]);
    }
    if (clear == wrapped) {
        answer_error(req, 400, "bad-key-set",
                     "give enc_wrapped, mac_wrapped and dek_wrapped (or, with "
                     "clear_import, enc, mac and dek): one form, not both");
        return;
    }
    if (clear && !g->conf.keys_clear_import) {
        refuse(g, req, seid, "sd", 403, "clear-import-disabled",
               "clear key values are refused ([keys] clear_import = no): send them wrapped under "
               "the transport key");
        return;
    }
    bool answered = false;
    const char *aid = api_str_member(req, body, "sd_aid", true, &answered);
    const char *hex[3];
    for (int i = 0; i < 3; i++) {
        hex[i] = answered ? NULL
                          : api_str_member(req, body, clear ? clear_names[i] : wrap_names[i], true,
                                           &answered);
    }
    const char *kcv_h = answered ? NULL : api_str_member(req, body, "kcv", !clear, &answered);
    if (answered) {
        return;
    }
    json_t *kvn = json_object_get(body, "kvn");
    if (!kvn || !json_is_integer(kvn) || json_integer_value(kvn) < 1 ||
        json_integer_value(kvn) > 127) {
        answer_error(req, 400, "bad-kvn", "kvn: an integer 1..127");
        return;
    }
    ks.kvn = (uint8_t)json_integer_value(kvn);
    int n = api_hex_decode(aid, ks.aid, 5, GW_KEYS_AID_MAX);
    if (n < 0) {
        answer_error(req, 400, "bad-hex", "sd_aid: 5..16 octets of hex");
        return;
    }
    ks.aid_len = (size_t)n;
    uint8_t kcv[9] = {0};
    if (kcv_h && api_hex_decode(kcv_h, kcv, 9, 9) < 0) {
        answer_error(req, 400, "bad-hex", "kcv: 18 hex digits, KCV(enc) KCV(mac) KCV(dek)");
        return;
    }
    struct gw_keys_wrapped w[3];
    int rc = 0;
    if (clear) {
        struct ota_crypto *cx = NULL;
        struct ota_key *dst[3] = {&ks.enc, &ks.mac, &ks.dek};
        bool kcv_bad = false;
        if (ota_crypto_new(&cx, &err) < 0) {
            answer_err(req, -ENOMEM, "crypto", &err);
            return;
        }
        for (int i = 0; rc == 0 && i < 3; i++) {
            rc = sd_key(req, cx, clear_names[i], hex[i], kcv_h ? kcv + 3 * i : NULL, dst[i],
                        &kcv_bad);
        }
        ota_crypto_free(cx);
        if (rc < 0) {
            gw_keys_sd_wipe(&ks);
            if (kcv_bad) {
                refuse(g, req, seid, "sd", 400, "bad-kcv", "kcv: a key check value differs");
            }
            return; /* else answered by sd_key */
        }
    } else {
        enum gw_keys_wrap wrap = GW_KEYS_WRAP_ECB;
        if (!wrapping(req, body, &wrap)) {
            return;
        }
        for (int i = 0; i < 3; i++) {
            if (!wrapped_key(req, wrap_names[i], hex[i], wrap, kcv + 3 * i, &w[i])) {
                return;
            }
        }
    }
    if (!se_known(g, req, seid) || !se_import_audited(g, req, seid, "sd", aid, ks.kvn, !clear)) {
        gw_keys_sd_wipe(&ks);
        OPENSSL_cleanse(w, sizeof(w));
        return;
    }
    rc = clear ? gw_keys_put_sd(g->keys, seid, &ks, &err)
               : gw_keys_import_sd(g->keys, seid, ks.aid, ks.aid_len, ks.kvn, w, &err);
    gw_keys_sd_wipe(&ks);
    OPENSSL_cleanse(w, sizeof(w));
    if (rc < 0) {
        store_refused(g, req, seid, "sd", rc, &err);
        return;
    }
    uint8_t cur = 0;
    bool current =
        gw_keys_current(g->keys, seid, GW_KEYS_KIND_SD, ks.aid, ks.aid_len, &cur, &err) == 0 &&
        cur == ks.kvn;
    imported(g, seid, "sd", aid, ks.kvn, !clear);
    answer_json(req, 201,
                json_pack("{s:s, s:s, s:i, s:b}", "seid", seid, "sd_aid", aid, "kvn", (int)ks.kvn,
                          "current", current));
}

/* ---- POST /v1/keks/{name} ---------------------------------------------------------- */

static void kek_refuse(struct gw *g, struct http_req *req, const char *name, int status,
                       const char *code, const char *msg)
{
    char target[GW_KEYS_KEK_NAME_MAX + 8];
    snprintf(target, sizeof(target), "kek:%s", name);
    (void)gw_audit(g, actor(req), "key.import_refused", target, "kind=kek reason=%s", code);
    gw_log(g, GW_CONF_LOG_WARNING, "key import refused kek=%s reason=%s", name, code);
    answer_error(req, status, code, "%s", msg);
}

/* "3des2" / "3des3" / "aes"; NONE otherwise. */
static enum ota_cipher kek_cipher(const char *s)
{
    return !s                        ? OTA_CIPHER_NONE
           : strcmp(s, "3des2") == 0 ? OTA_CIPHER_3DES2
           : strcmp(s, "3des3") == 0 ? OTA_CIPHER_3DES3
           : strcmp(s, "aes") == 0   ? OTA_CIPHER_AES
                                     : OTA_CIPHER_NONE;
}

/*
 * A business platform's KEK (spec 5.8.4.6.3): the sensitive part of its
 * personalization data arrives under it. {"kvn", "cipher", "owner"
 * (default: the name), "key_wrapped" + "kcv" [+ "wrapping"] | "key"}.
 */
static void route_kek(struct http_req *req, void *arg)
{
    struct gw *g = arg;
    struct ota_err err;
    struct gw_keys_kek kk;
    memset(&kk, 0, sizeof(kk));
    const char *name = http_req_param(req, "name");
    if (!name || !gw_auth_name_ok(name) || strlen(name) > GW_KEYS_KEK_NAME_MAX) {
        answer_error(req, 400, "bad-name", "name: 1..64 of A-Z a-z 0-9 . _ -");
        return;
    }
    json_t *body = http_req_json(req, &err);
    if (!body) {
        answer_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const allowed[] = {"kvn",      "cipher",      "owner", "kcv",
                                          "wrapping", "key_wrapped", "key",   NULL};
    const char *bad = api_unknown_member(body, allowed);
    if (bad) {
        answer_error(req, 400, "unknown-field", "%s: unknown member", bad);
        return;
    }
    bool clear = json_object_get(body, "key") != NULL;
    if (clear == (json_object_get(body, "key_wrapped") != NULL)) {
        answer_error(req, 400, "bad-key-set",
                     "give key_wrapped (or, with clear_import, key): one, not both");
        return;
    }
    if (clear && !g->conf.keys_clear_import) {
        kek_refuse(g, req, name, 403, "clear-import-disabled",
                   "clear key values are refused ([keys] clear_import = no): send the KEK "
                   "wrapped under the transport key");
        return;
    }
    bool answered = false;
    const char *ci = api_str_member(req, body, "cipher", true, &answered);
    const char *owner = answered ? NULL : api_str_member(req, body, "owner", false, &answered);
    const char *hex =
        answered ? NULL : api_str_member(req, body, clear ? "key" : "key_wrapped", true, &answered);
    const char *kcv_h = answered ? NULL : api_str_member(req, body, "kcv", !clear, &answered);
    if (answered) {
        return;
    }
    json_t *kvn = json_object_get(body, "kvn");
    if (!kvn || !json_is_integer(kvn) || json_integer_value(kvn) < 1 ||
        json_integer_value(kvn) > 127) {
        answer_error(req, 400, "bad-kvn", "kvn: an integer 1..127");
        return;
    }
    enum ota_cipher c = kek_cipher(ci);
    if (c == OTA_CIPHER_NONE) {
        answer_error(req, 400, "bad-cipher", "cipher: \"3des2\", \"3des3\" or \"aes\"");
        return;
    }
    kk.name = name;
    kk.owner = owner ? owner : name;
    kk.kvn = (uint8_t)json_integer_value(kvn);
    if (!gw_auth_name_ok(kk.owner)) {
        answer_error(req, 400, "bad-owner", "owner: a principal name");
        return;
    }
    uint8_t kcv[3] = {0};
    if (kcv_h && api_hex_decode(kcv_h, kcv, 3, 3) < 0) {
        answer_error(req, 400, "bad-hex", "kcv: 6 hex digits");
        return;
    }
    struct gw_keys_wrapped w;
    char target[GW_KEYS_KEK_NAME_MAX + 8], detail[128];
    snprintf(target, sizeof(target), "kek:%s", name);
    snprintf(detail, sizeof(detail), "kind=kek owner=%s kvn=%u wrapped=%s", kk.owner,
             (unsigned)kk.kvn, clear ? "no" : "yes");
    int rc;
    if (clear) {
        uint8_t raw[OTA_KEY_MAX];
        int n = api_hex_decode(hex, raw, 1, OTA_KEY_MAX);
        bool ok = n >= 0 && ota_key_set(&kk.key, c, raw, (size_t)n, &err) == 0;
        OPENSSL_cleanse(raw, sizeof(raw));
        if (!ok) {
            answer_error(req, 400, n < 0 ? "bad-hex" : "bad-key", "key: hex of a %s key",
                         ota_cipher_name(c));
            return;
        }
        if (!import_audited(g, req, target, detail)) {
            ota_key_wipe(&kk.key);
            return;
        }
        rc = gw_keys_put_kek(g->keys, &kk, kcv_h ? kcv : NULL, &err);
    } else {
        enum gw_keys_wrap wrap = GW_KEYS_WRAP_ECB;
        if (!wrapping(req, body, &wrap) || !wrapped_key(req, "key_wrapped", hex, wrap, kcv, &w)) {
            return;
        }
        if (!import_audited(g, req, target, detail)) {
            OPENSSL_cleanse(&w, sizeof(w));
            return;
        }
        w.cipher = c;
        rc = gw_keys_import_kek(g->keys, &kk, &w, &err);
        OPENSSL_cleanse(&w, sizeof(w));
    }
    ota_key_wipe(&kk.key);
    if (rc < 0) {
        const char *code;
        int status = store_status(rc, &err, &code);
        kek_refuse(g, req, name, status, code, err.msg);
        return;
    }
    gw_log(g, GW_CONF_LOG_INFO, "kek imported name=%s owner=%s kvn=%u wrapped=%s", name, kk.owner,
           (unsigned)kk.kvn, clear ? "no" : "yes");
    answer_json(req, 201,
                json_pack("{s:s, s:s, s:i, s:s}", "name", name, "owner", kk.owner, "kvn",
                          (int)kk.kvn, "cipher", ci));
}

int gw_api_keys_routes(struct gw *g, struct ota_err *err)
{
    int rc =
        gw_route(g, "POST", "/v1/ses/{seid}/keys/scp80", GW_ROLE_ADMIN, route_keys_scp80, g, err);
    if (rc == 0) {
        rc = gw_route(g, "POST", "/v1/ses/{seid}/keys/sd", GW_ROLE_ADMIN, route_keys_sd, g, err);
    }
    if (rc == 0) {
        rc = gw_route(g, "POST", "/v1/keks/{name}", GW_ROLE_ADMIN, route_kek, g, err);
    }
    return rc;
}
