/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wallet pull API (issue #6 "Wallet pull API", spec 5.8.5.2, 5.8.8;
 * docs/wallet.md): the wallet client woken by a push SMS names its SE and
 * the push serial, and otagw runs the pulled task's operation as an APDU
 * exchange relayed by the client, over SCP02 (gateway keys: the SE's SD key
 * set), one C-APDU per round trip.
 *
 *   POST /v1/wallet/pull                 {"seid","serial"} -> session + first C-APDU
 *   POST /v1/wallet/sessions/{session}   {"responses":[R-APDU]} -> next C-APDU or the end
 *
 * A session is an explicit state machine (enum wal_step):
 *   [select] -> init-update -> ext-auth -> [get-status -> [cleanup]] -> script -> over
 * select only when the target SD is not the ISD; get-status / cleanup only
 * for app-download (spec 5.8.8: leftovers of an earlier broken download go
 * first). Every way out goes through sess_finish(), which completes the
 * engine task once and leaves a tombstone so that late calls get 410.
 *
 * Sessions live in memory only: after a restart the engine's own session
 * timer fails the pulled task (reason client), as it does when a client
 * stops calling. Key bytes never leave the SCP02 session object (wiped when
 * the session ends) and are never logged or answered. Logs show only the
 * first 8 hex digits of a session id: the id is what lets a caller drive
 * the session. A session also belongs to the client principal that pulled
 * it: another client token gets 404 on it, as for an unknown id.
 */
#include "gateway/gw.h"
#include "gateway/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "gateway/api_util.h"
#include "gateway/keys.h"
#include "gateway/platform.h"

#define WAL_IDLE_MAX_S 60.0     /* a client silent this long loses its session */
#define WAL_TOMBSTONE_S 600.0   /* ended sessions answer 410 this long, then 404 */
#define WAL_ID_LEN 16           /* random octets of a session id (32 hex digits) */
#define WAL_STATUS_ROUNDS 16    /* GET STATUS continuations (6310) at most */
#define WAL_STATUS_ENTRIES 64   /* load files read from one GET STATUS answer */
#define WAL_RAPDU_MAX (256 + 2) /* a short R-APDU: data + SW */
#define WAL_INFO_MAX 64         /* read responses kept for the result JSON */

/* The session's position; see the header comment for the order. Values only used in memory. */
enum wal_step {
    WS_SELECT = 0,
    WS_INIT_UPDATE = 1,
    WS_EXT_AUTH = 2,
    WS_GET_STATUS = 3,
    WS_CLEANUP = 4,
    WS_SCRIPT = 5,
    WS_OVER = 6, /* tombstone: the task has its outcome */
    WS__COUNT
};

static const char *const step_names[WS__COUNT] = {
    [WS_SELECT] = "select",     [WS_INIT_UPDATE] = "init-update",
    [WS_EXT_AUTH] = "ext-auth", [WS_GET_STATUS] = "get-status",
    [WS_CLEANUP] = "cleanup",   [WS_SCRIPT] = "script",
    [WS_OVER] = "over",
};

/* Legal step changes; everything else is a bug caught by step_set(). */
static const bool step_next_ok[WS__COUNT][WS__COUNT] = {
    [WS_SELECT] = {[WS_INIT_UPDATE] = true, [WS_OVER] = true},
    [WS_INIT_UPDATE] = {[WS_EXT_AUTH] = true, [WS_OVER] = true},
    [WS_EXT_AUTH] = {[WS_GET_STATUS] = true, [WS_SCRIPT] = true, [WS_OVER] = true},
    [WS_GET_STATUS] =
        {[WS_GET_STATUS] = true, [WS_CLEANUP] = true, [WS_SCRIPT] = true, [WS_OVER] = true},
    [WS_CLEANUP] = {[WS_SCRIPT] = true, [WS_OVER] = true},
    [WS_SCRIPT] = {[WS_SCRIPT] = true, [WS_OVER] = true},
};

struct wal_session {
    struct wal_session *next;
    char id[2 * WAL_ID_LEN + 1];
    int64_t principal; /* who pulled (its id); 0 without auth (hand-built test contexts) */
    int64_t task;
    char seid[GW_KEYS_SEID_MAX + 1];
    enum task_op op;
    char *params; /* the task's params JSON (download: rebuilt after GET STATUS) */
    enum wal_step step;
    ev_tstamp last; /* last activity (loop time) */
    struct ota_scp02_session scp;
    struct plat_script script;
    size_t pos; /* next script APDU */
    /* the command sent and waiting for its response (plain, for logs and SW rules) */
    uint8_t cmd[OTA_APDU_MAX_LEN];
    size_t cmd_len;
    uint8_t cmd_plain_ins;
    unsigned status_rounds;
    bool main_elf_on_card;
    struct plat_model *ext_model; /* extension load files found on the card (download) */
    unsigned n_apdus;             /* C-APDUs answered in this session */
    uint16_t last_sw;
    json_t *info; /* hex R-APDUs of the script's GET STATUS / GET DATA */
    /* the outcome, once over */
    enum task_state final_state;
    enum task_reason final_reason;
};

struct gw_wallet {
    struct gw *g;
    struct ota_crypto *cx;
    struct wal_session *sessions; /* live ones and tombstones */
    ev_timer sweep;
    double idle_s;
};

/* ---- small helpers ------------------------------------------------------------------ */

static json_t *hex_json(const uint8_t *p, size_t n)
{
    char *h = malloc(2 * n + 1);
    if (!h) {
        return NULL;
    }
    api_hex_encode(p, n, false, h);
    json_t *j = json_string(h);
    free(h);
    return j;
}

static bool sw_ok(uint16_t sw)
{
    return sw == 0x9000 || (sw >> 8) == 0x61;
}

static void step_set(struct gw_wallet *w, struct wal_session *s, enum wal_step to)
{
    if (!step_next_ok[s->step][to]) {
        gw_log(w->g, GW_CONF_LOG_ERR, "wallet illegal step session=%.8s from=%s to=%s", s->id,
               step_names[s->step], step_names[to]);
    }
    s->step = to;
}

/* The id of the principal of req, 0 for none (no auth started). */
static int64_t req_principal_id(struct http_req *req)
{
    const struct gw_principal *p = gw_req_principal(req);
    return p ? p->id : 0;
}

/*
 * The session id is the caller's bearer secret: compared in constant time
 * (every id has the same length, so the length check tells nothing), and
 * only the principal that pulled may drive it. Another client gets NULL,
 * the answer for an id that does not exist, so a leaked id is of no use to
 * another token and existence is not told.
 */
static struct wal_session *sess_find(struct gw_wallet *w, const char *id, int64_t principal)
{
    if (strlen(id) != 2 * WAL_ID_LEN) {
        return NULL;
    }
    for (struct wal_session *s = w->sessions; s; s = s->next) {
        if (CRYPTO_memcmp(s->id, id, 2 * WAL_ID_LEN) == 0) {
            return s->principal == principal ? s : NULL;
        }
    }
    return NULL;
}

static struct wal_session *sess_live_for_se(struct gw_wallet *w, const char *seid)
{
    for (struct wal_session *s = w->sessions; s; s = s->next) {
        if (s->step != WS_OVER && strcmp(s->seid, seid) == 0) {
            return s;
        }
    }
    return NULL;
}

/* Drop everything but the tombstone fields (keys wiped). */
static void sess_release(struct wal_session *s)
{
    ota_scp02_session_fini(&s->scp);
    plat_script_fini(&s->script);
    free(s->params);
    s->params = NULL;
    free(s->ext_model);
    s->ext_model = NULL;
    json_decref(s->info);
    s->info = NULL;
}

static void sess_free(struct wal_session *s)
{
    sess_release(s);
    free(s);
}

/*
 * End the session with reason (TASK_R_NONE = done): complete the engine
 * task once with the result JSON, keep a tombstone. When the engine no
 * longer has the task active (its own session timer, an operator's
 * terminate), the stored outcome is what the client is told.
 */
static void sess_finish(struct gw_wallet *w, struct wal_session *s, enum task_reason reason,
                        const char *why)
{
    if (s->step == WS_OVER) {
        return;
    }
    char sw[8];
    snprintf(sw, sizeof(sw), "%04x", (unsigned)s->last_sw);
    json_t *res =
        json_pack("{s:i, s:s, s:s, s:s, s:s, s:i, s:i}", "apdus", (int)s->n_apdus, "last_sw",
                  s->n_apdus ? sw : "", "status", reason == TASK_R_NONE ? "done" : "failed", "step",
                  step_names[s->step], "detail", why ? why : "", "script_done", (int)s->pos,
                  "script_total", (int)s->script.n);
    if (res && s->info && json_array_size(s->info)) {
        json_object_set(res, "info", s->info);
    }
    char *txt = res ? json_dumps(res, JSON_COMPACT) : NULL;
    json_decref(res);
    struct ota_err err;
    int rc = eng_task_complete(w->g->eng, s->task, reason, txt, &err);
    free(txt);
    s->final_state = reason == TASK_R_NONE ? TASK_DONE : TASK_FAILED;
    s->final_reason = reason;
    if (rc < 0) {
        struct eng_task_view v;
        if (eng_task_get(w->g->eng, s->task, &v, &err) == 0 && task_state_final(v.state)) {
            s->final_state = v.state;
            s->final_reason = v.reason;
        } else {
            s->final_state = TASK_FAILED;
            s->final_reason = TASK_R_CLIENT;
        }
    }
    gw_log(w->g, reason == TASK_R_NONE ? GW_CONF_LOG_INFO : GW_CONF_LOG_WARNING,
           "wallet session over session=%.8s task=%lld se=%s step=%s state=%s reason=%s apdus=%u "
           "detail=\"%s\"",
           s->id, (long long)s->task, s->seid, step_names[s->step], task_state_name(s->final_state),
           task_reason_name(s->final_reason), s->n_apdus, why ? why : "");
    step_set(w, s, WS_OVER);
    sess_release(s);
    s->last = ev_now(w->g->loop);
}

/* ---- building the next command ------------------------------------------------------ */

/* Store plain command p as the one to send, wrapped by the open secure channel. */
static int send_wrapped(struct wal_session *s, const uint8_t *p, size_t n, struct ota_err *err)
{
    int k = ota_scp02_wrap(&s->scp, p, n, s->cmd, sizeof(s->cmd), err);
    if (k < 0) {
        return k;
    }
    s->cmd_len = (size_t)k;
    s->cmd_plain_ins = n > 1 ? p[1] : 0;
    return 0;
}

static int send_status(struct wal_session *s, bool next, struct ota_err *err)
{
    uint8_t b[OTA_APDU_MAX_LEN];
    int k =
        ota_gp_get_status(OTA_GP_STATUS_ELF, OTA_GP_STATUS_TLV | (next ? OTA_GP_STATUS_NEXT : 0),
                          NULL, 0, NULL, 0, b, sizeof(b), err);
    return k < 0 ? k : send_wrapped(s, b, (size_t)k, err);
}

/* The next script APDU, or finish done when none is left. */
static void next_script(struct gw_wallet *w, struct wal_session *s)
{
    if (s->pos >= s->script.n) {
        sess_finish(w, s, TASK_R_NONE, "script done");
        return;
    }
    struct ota_err err;
    const struct plat_apdu *a = &s->script.apdus[s->pos];
    if (send_wrapped(s, a->b, a->len, &err) < 0) {
        sess_finish(w, s, TASK_R_BUILD, err.msg);
    }
}

/* The AID string member of a JSON object into a, false when absent or bad. */
static bool json_aid(json_t *o, const char *key, struct plat_aid *a)
{
    const char *h = json_string_value(json_object_get(o, key));
    int n = h ? api_hex_decode(h, a->b, OTA_GP_AID_MIN, OTA_GP_AID_MAX) : -1;
    if (n < 0) {
        return false;
    }
    a->len = (uint8_t)n;
    return true;
}

/*
 * One GET STATUS (load files) answer of a download: notes whether the
 * download's main load file is on the card and which of its extension
 * files are (those are kept and not loaded again).
 */
static void status_scan(struct wal_session *s, const uint8_t *data, size_t n)
{
    struct ota_gp_status_entry ents[WAL_STATUS_ENTRIES];
    size_t ne = 0;
    struct ota_err err;
    if (n == 0 || ota_gp_status_parse_tlv(data, n, ents, WAL_STATUS_ENTRIES, &ne, &err) < 0) {
        return;
    }
    json_t *p = json_loads(s->params ? s->params : "{}", 0, NULL);
    struct plat_aid main_elf;
    bool have_main = json_aid(p, "load_file_aid", &main_elf);
    json_t *exts = json_object_get(p, "extensions");
    for (size_t i = 0; i < ne; i++) {
        if (have_main && ents[i].aid_len == main_elf.len &&
            memcmp(ents[i].aid, main_elf.b, main_elf.len) == 0) {
            s->main_elf_on_card = true;
            continue;
        }
        size_t k;
        json_t *x;
        json_array_foreach(exts, k, x)
        {
            struct plat_aid ea;
            if (json_aid(x, "load_file_aid", &ea) && ents[i].aid_len == ea.len &&
                memcmp(ents[i].aid, ea.b, ea.len) == 0) {
                if (!s->ext_model) {
                    s->ext_model = malloc(sizeof(*s->ext_model));
                    if (!s->ext_model) {
                        break;
                    }
                    plat_model_init(s->ext_model);
                }
                struct plat_model *m = s->ext_model;
                if (m->n_elfs < PLAT_MODEL_MAX_ELFS) {
                    m->elfs[m->n_elfs].aid = ea;
                    m->elfs[m->n_elfs].partial = false;
                    m->elfs[m->n_elfs].size = 0;
                    m->n_elfs++;
                }
            }
        }
    }
    json_decref(p);
}

/* After the status round of a download: cleanup DELETE, or the (re)built script. */
static void after_status(struct gw_wallet *w, struct wal_session *s)
{
    struct ota_err err;
    if (s->main_elf_on_card) {
        /* leftovers of a broken download (spec 5.8.8): the load file and its instances go */
        json_t *p = json_loads(s->params, 0, NULL);
        struct plat_aid elf;
        bool ok = json_aid(p, "load_file_aid", &elf);
        json_decref(p);
        uint8_t b[OTA_APDU_MAX_LEN];
        int k = ok ? ota_gp_delete(elf.b, elf.len, true, NULL, 0, b, sizeof(b), &err) : -EINVAL;
        if (k < 0 || send_wrapped(s, b, (size_t)k, &err) < 0) {
            sess_finish(w, s, TASK_R_BUILD, "cleanup DELETE could not be built");
            return;
        }
        step_set(w, s, WS_CLEANUP);
        return;
    }
    step_set(w, s, WS_SCRIPT);
    if (s->ext_model) {
        struct plat_ctx ctx = {.model = s->ext_model};
        struct plat_script ns = {0};
        int rc = plat_build_ex(s->op, s->params, &ctx, &ns, &err);
        if (rc < 0) {
            plat_script_fini(&ns);
            sess_finish(w, s, TASK_R_BUILD, err.msg);
            return;
        }
        plat_script_fini(&s->script);
        s->script = ns;
    }
    next_script(w, s);
}

/*
 * PUT KEY material of an sd-key-update (gateway/keys.h): the SE's new keys
 * from the key store, encrypted under the session DEK once the channel is
 * up (SCP02 key data goes under it); before that, under the static DEK, a
 * first build that only shapes the script (rebuilt when the channel is up).
 */
struct wal_keys_arg {
    struct gw_keys_plat_arg ka;
    const struct ota_key *session_dek; /* NULL before the channel is up */
};

static int wal_keys(void *arg, const uint8_t *sd_aid, size_t sd_aid_len, uint8_t old_kvn,
                    uint8_t new_kvn, struct plat_key_material *out, struct ota_err *err)
{
    struct wal_keys_arg *a = arg;
    int rc = gw_keys_plat_material(&a->ka, sd_aid, sd_aid_len, old_kvn, new_kvn, out, err);
    if (rc == 0 && a->session_dek) {
        ota_key_wipe(&out->dek);
        ota_key_borrow(&out->dek, a->session_dek);
    }
    return rc;
}

/*
 * Sensitive personalization data (spec 5.8.4.6.3 step 4a): from the
 * platform's KEK to the session DEK once the channel is up (the SD decrypts
 * STORE DATA with it); before that to the static DEK, a first build that
 * only shapes the script.
 */
static int wal_translate(void *arg, const char *kek, uint8_t kek_kvn, const char *owner,
                         const uint8_t *sd_aid, size_t sd_aid_len, const uint8_t *in, size_t len,
                         uint8_t *out, struct ota_err *err)
{
    struct wal_keys_arg *a = arg;
    if (a->session_dek) {
        return gw_keys_translate(a->ka.k, kek, kek_kvn, owner, a->session_dek, in, len, out, err);
    }
    return gw_keys_plat_translate(&a->ka, kek, kek_kvn, owner, sd_aid, sd_aid_len, in, len, out,
                                  err);
}

/* The script of an sd-key-update or app-personalize again, now with the session DEK. */
static int rebuild_key_update(struct gw_wallet *w, struct wal_session *s, struct ota_err *err)
{
    struct wal_keys_arg a = {{w->g->keys, s->seid}, &s->scp.skeys.dek};
    struct plat_keys_cb kcb = {
        .keys = wal_keys, .translate = wal_translate, .arg = &a, .cx = w->cx};
    struct plat_ctx ctx = {.keys = &kcb, .model = s->ext_model};
    struct plat_script ns = {0};
    int rc = plat_build_ex(s->op, s->params, &ctx, &ns, err);
    if (rc < 0) {
        plat_script_fini(&ns);
        return rc;
    }
    plat_script_fini(&s->script);
    s->script = ns;
    return 0;
}

/* ---- one response ------------------------------------------------------------------- */

static void on_response(struct gw_wallet *w, struct wal_session *s, const uint8_t *r, size_t n)
{
    struct ota_err err;
    uint16_t sw = (uint16_t)(r[n - 2] << 8 | r[n - 1]);
    s->n_apdus++;
    s->last_sw = sw;
    switch (s->step) {
    case WS_SELECT: {
        if (!sw_ok(sw)) {
            sess_finish(w, s, TASK_R_CARD_SW, "SELECT of the target SD refused");
            return;
        }
        int k = ota_scp02_init_update(&s->scp, s->cmd, sizeof(s->cmd), &err);
        if (k < 0) {
            sess_finish(w, s, TASK_R_CLIENT, err.msg);
            return;
        }
        s->cmd_len = (size_t)k;
        step_set(w, s, WS_INIT_UPDATE);
        return;
    }
    case WS_INIT_UPDATE: {
        if (ota_scp02_on_init_update_resp(&s->scp, r, n, &err) < 0) {
            /* a card refusing or a wrong cryptogram: the secure channel could not open */
            sess_finish(w, s, TASK_R_CLIENT,
                        err.code == OTA_ERR_CRYPTOGRAM ? "card cryptogram mismatch"
                                                       : "INITIALIZE UPDATE failed");
            return;
        }
        int k = ota_scp02_external_authenticate(&s->scp, s->cmd, sizeof(s->cmd), &err);
        if (k < 0) {
            sess_finish(w, s, TASK_R_CLIENT, err.msg);
            return;
        }
        s->cmd_len = (size_t)k;
        step_set(w, s, WS_EXT_AUTH);
        return;
    }
    case WS_EXT_AUTH:
        if (ota_scp02_on_ext_auth_resp(&s->scp, sw, &err) < 0) {
            sess_finish(w, s, TASK_R_CLIENT, "EXTERNAL AUTHENTICATE refused");
            return;
        }
        if (s->op == TASK_OP_APP_DOWNLOAD) {
            if (send_status(s, false, &err) < 0) {
                sess_finish(w, s, TASK_R_BUILD, err.msg);
                return;
            }
            step_set(w, s, WS_GET_STATUS);
            return;
        }
        if ((s->op == TASK_OP_SD_KEY_UPDATE || s->op == TASK_OP_APP_PERSONALIZE) &&
            rebuild_key_update(w, s, &err) < 0) {
            sess_finish(w, s, TASK_R_BUILD, err.msg);
            return;
        }
        step_set(w, s, WS_SCRIPT);
        next_script(w, s);
        return;
    case WS_GET_STATUS:
        /* 6A88: no load file at all; 6310: more entries follow */
        if (!sw_ok(sw) && sw != 0x6A88 && sw != 0x6310) {
            sess_finish(w, s, TASK_R_CARD_SW, "GET STATUS refused");
            return;
        }
        if (sw != 0x6A88) {
            status_scan(s, r, n - 2);
        }
        if (sw == 0x6310 && ++s->status_rounds < WAL_STATUS_ROUNDS) {
            if (send_status(s, true, &err) < 0) {
                sess_finish(w, s, TASK_R_BUILD, err.msg);
                return;
            }
            step_set(w, s, WS_GET_STATUS);
            return;
        }
        after_status(w, s);
        return;
    case WS_CLEANUP:
        if (!sw_ok(sw) && sw != 0x6A88) {
            sess_finish(w, s, TASK_R_CARD_SW, "DELETE of leftovers refused");
            return;
        }
        step_set(w, s, WS_SCRIPT);
        next_script(w, s);
        return;
    case WS_SCRIPT: {
        /* reads: 6A88 = no entries, 6310 = more than one answer holds (docs/platform-ops.md) */
        bool read =
            s->cmd_plain_ins == OTA_GP_INS_GET_STATUS || s->cmd_plain_ins == OTA_GP_INS_GET_DATA;
        if (!sw_ok(sw) && !(read && (sw == 0x6A88 || sw == 0x6310))) {
            char why[96];
            snprintf(why, sizeof(why), "%s (apdu %zu) answered %04X",
                     plat_step_name(s->script.apdus[s->pos].step), s->pos, (unsigned)sw);
            sess_finish(w, s, TASK_R_CARD_SW, why);
            return;
        }
        if (read && s->info && json_array_size(s->info) < WAL_INFO_MAX) {
            json_array_append_new(s->info, hex_json(r, n));
        }
        s->pos++;
        step_set(w, s, WS_SCRIPT);
        next_script(w, s);
        return;
    }
    case WS_OVER:
    case WS__COUNT:
        break;
    }
}

/* ---- answers ------------------------------------------------------------------------ */

static void answer(struct http_req *req, struct wal_session *s)
{
    json_t *body;
    if (s->step == WS_OVER) {
        body =
            json_pack("{s:s, s:b, s:s, s:s}", "session", s->id, "done", 1, "state",
                      task_state_name(s->final_state), "reason", task_reason_name(s->final_reason));
    } else {
        body = json_pack("{s:s, s:[o]}", "session", s->id, "apdus", hex_json(s->cmd, s->cmd_len));
    }
    if (!body) {
        (void)http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    (void)http_respond_json(req, 200, body);
}

/* Only the listed keys; false (answered 400) otherwise. */
static bool only_keys(struct http_req *req, json_t *o, const char *const *keys)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool known = false;
        for (size_t i = 0; keys[i]; i++) {
            known = known || strcmp(k, keys[i]) == 0;
        }
        if (!known) {
            (void)http_respond_error(req, 400, "unknown-field", "unknown member %s", k);
            return false;
        }
    }
    return true;
}

/* ---- POST /v1/wallet/pull ----------------------------------------------------------- */

/* Build the script and load the keys of a new session; on failure the reason to end with. */
static enum task_reason sess_prepare(struct gw_wallet *w, struct wal_session *s, const char **why)
{
    struct ota_err err;
    struct gw *g = w->g;
    struct wal_keys_arg ka = {{g->keys, s->seid}, NULL};
    struct plat_keys_cb kcb = {
        .keys = wal_keys, .translate = wal_translate, .arg = &ka, .cx = w->cx};
    struct plat_ctx kctx = {.keys = g->keys ? &kcb : NULL};
    /* a bare push opens the channel and reads the ISD's status: the info sync of the wake-up */
    int rc = s->op == TASK_OP_PUSH
                 ? plat_build(TASK_OP_INFO_SYNC, "{\"scope\":[\"isd\"]}", &s->script, &err)
                 : plat_build_ex(s->op, s->params, &kctx, &s->script, &err);
    if (rc < 0) {
        /* the builder's reason (another platform's KEK, no such key version): names, no data */
        gw_log(g, GW_CONF_LOG_WARNING, "wallet script not built se=%s op=%s err=\"%s\"", s->seid,
               task_op_name(s->op), err.msg);
        *why = rc == -ENOTSUP ? "operation has no script" : "script could not be built";
        return rc == -ENOTSUP ? TASK_R_UNSUPPORTED : TASK_R_BUILD;
    }
    const uint8_t *sd = s->script.sd_aid.len ? s->script.sd_aid.b : plat_isd_aid;
    size_t sd_len = s->script.sd_aid.len ? s->script.sd_aid.len : sizeof(plat_isd_aid);
    struct gw_keys_sd ks;
    memset(&ks, 0, sizeof(ks));
    rc = g->keys ? gw_keys_get_sd(g->keys, s->seid, sd, sd_len, 0, &ks, &err) : -ENOENT;
    if (rc < 0) {
        *why = "no SD key set for the SE";
        return TASK_R_NO_KEYS;
    }
    struct ota_scp02_keys k;
    memset(&k, 0, sizeof(k));
    /* keys_from, not keys_set: with the PKCS#11 backend ks holds token references, no bytes. */
    rc = ota_scp02_keys_from(&k, &ks.enc, &ks.mac, &ks.dek, ks.kvn, &err);
    gw_keys_sd_wipe(&ks);
    uint8_t hc[OTA_SCP02_HOST_CHALLENGE_LEN];
    if (rc == 0 && RAND_bytes(hc, sizeof(hc)) != 1) {
        rc = -EIO;
    }
    uint8_t sl =
        g->conf.scp02_level == OTA_SCP02_SL_CMAC_CDEC ? OTA_SCP02_SL_CMAC_CDEC : OTA_SCP02_SL_CMAC;
    if (rc == 0) {
        rc = ota_scp02_session_init(&s->scp, w->cx, &k, k.kvn, sl, hc, &err);
    }
    ota_scp02_keys_wipe(&k);
    if (rc < 0) {
        *why = "SD key set unusable for SCP02";
        return TASK_R_NO_KEYS;
    }
    bool isd = sd_len == sizeof(plat_isd_aid) && memcmp(sd, plat_isd_aid, sd_len) == 0;
    int n = isd ? ota_scp02_init_update(&s->scp, s->cmd, sizeof(s->cmd), &err)
                : ota_gp_select(sd, sd_len, s->cmd, sizeof(s->cmd), &err);
    if (n < 0) {
        *why = "first command could not be built";
        return TASK_R_BUILD;
    }
    s->cmd_len = (size_t)n;
    s->step = isd ? WS_INIT_UPDATE : WS_SELECT;
    return TASK_R_NONE;
}

static void route_pull(struct http_req *req, void *arg)
{
    struct gw_wallet *w = arg;
    struct gw *g = w->g;
    struct ota_err err;
    json_t *body = http_req_json(req, &err);
    if (!body) {
        (void)http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const keys[] = {"seid", "serial", NULL};
    if (!only_keys(req, body, keys)) {
        return;
    }
    const char *seid = json_string_value(json_object_get(body, "seid"));
    const char *serial_hex = json_string_value(json_object_get(body, "serial"));
    if (!api_seid_ok(seid)) {
        (void)http_respond_error(
            req, 400, "bad-seid",
            "seid: 1..64 printable characters (no space, '/', '?', '#', '%%')");
        return;
    }
    uint8_t serial[OTA_PUSH_SERIAL_LEN];
    /* lower case only: the serial is spelled as the push message's was */
    if (!serial_hex || strspn(serial_hex, "0123456789abcdef") != 2 * OTA_PUSH_SERIAL_LEN ||
        api_hex_decode(serial_hex, serial, OTA_PUSH_SERIAL_LEN, OTA_PUSH_SERIAL_LEN) < 0) {
        (void)http_respond_error(req, 400, "bad-serial", "serial: 32 lower-case hex digits");
        return;
    }
    /* spec 5.8.8: one session per SE; refused before the serial is spent */
    if (sess_live_for_se(w, seid)) {
        (void)http_respond_error(req, 409, "session-running",
                                 "a wallet session for this SE is running");
        return;
    }
    int64_t task = 0;
    int rc = eng_pull(g->eng, seid, serial, &task, &err);
    switch (rc) {
    case 0:
        break;
    case -ENOENT:
        (void)http_respond_error(req, 404, "unknown-serial", "no such serial for this SE");
        return;
    case -EALREADY:
        (void)http_respond_error(req, 409, "serial-used", "the serial was used already");
        return;
    case -ETIMEDOUT:
        (void)http_respond_error(req, 410, "serial-expired", "the task no longer waits for a pull");
        return;
    case -ESHUTDOWN:
        (void)http_respond_error(req, 503, "engine-stopped", "%s", err.msg);
        return;
    default:
        (void)http_respond_error(req, 500, "internal", "%s", err.msg);
        return;
    }
    struct wal_session *s = calloc(1, sizeof(*s));
    struct eng_task_view v;
    uint8_t id[WAL_ID_LEN];
    if (!s || RAND_bytes(id, sizeof(id)) != 1 || eng_task_get(g->eng, task, &v, &err) < 0) {
        free(s);
        /* the serial is spent: the task must not wait for its session timer */
        if (eng_task_complete(g->eng, task, TASK_R_CLIENT, NULL, &err) < 0) {
            gw_log(g, GW_CONF_LOG_ERR, "wallet complete failed task=%lld err=\"%s\"",
                   (long long)task, err.msg);
        }
        (void)http_respond_error(req, 500, "internal", "session could not be set up");
        return;
    }
    api_hex_encode(id, sizeof(id), false, s->id);
    s->principal = req_principal_id(req);
    s->task = task;
    snprintf(s->seid, sizeof(s->seid), "%s", seid);
    s->op = v.op;
    s->params = strdup(v.params ? v.params : "{}");
    s->info = json_array();
    s->last = ev_now(g->loop);
    s->step = WS_INIT_UPDATE;
    s->next = w->sessions;
    w->sessions = s;
    const char *why = NULL;
    enum task_reason r = s->params && s->info ? sess_prepare(w, s, &why) : TASK_R_CLIENT;
    gw_log(g, GW_CONF_LOG_INFO, "wallet pulled session=%.8s task=%lld se=%s op=%s", s->id,
           (long long)task, s->seid, task_op_name(s->op));
    if (r != TASK_R_NONE) {
        sess_finish(w, s, r, why ? why : "out of memory");
    }
    answer(req, s);
}

/* ---- POST /v1/wallet/sessions/{session} --------------------------------------------- */

static void route_session(struct http_req *req, void *arg)
{
    struct gw_wallet *w = arg;
    struct ota_err err;
    const char *id = http_req_param(req, "session");
    struct wal_session *s = id ? sess_find(w, id, req_principal_id(req)) : NULL;
    if (!s) {
        (void)http_respond_error(req, 404, "unknown-session", "no such session");
        return;
    }
    if (s->step == WS_OVER) {
        (void)http_respond_error(req, 410, "session-expired", "the session is over (task %s)",
                                 task_state_name(s->final_state));
        return;
    }
    json_t *body = http_req_json(req, &err);
    if (!body) {
        (void)http_respond_error(req, 400, "bad-json", "%s", err.msg);
        return;
    }
    static const char *const keys[] = {"responses", NULL};
    if (!only_keys(req, body, keys)) {
        return;
    }
    json_t *rs = json_object_get(body, "responses");
    if (!json_is_array(rs)) {
        (void)http_respond_error(req, 400, "invalid-field", "responses: an array of hex R-APDUs");
        return;
    }
    uint8_t r[WAL_RAPDU_MAX];
    int n = -1;
    size_t i;
    json_t *x;
    json_array_foreach(rs, i, x)
    {
        const char *h = json_string_value(x);
        n = h ? api_hex_decode(h, r, 2, WAL_RAPDU_MAX) : -1;
        if (n < 0) {
            (void)http_respond_error(req, 400, "invalid-field",
                                     "responses[%zu]: hex R-APDU of 2..258 octets with its SW", i);
            return;
        }
    }
    if (json_array_size(rs) != 1) {
        (void)http_respond_error(req, 409, "bad-sequence",
                                 "one response per C-APDU: %zu given, 1 expected",
                                 json_array_size(rs));
        return;
    }
    s->last = ev_now(w->g->loop);
    /* the engine may have ended the task meanwhile (its session timer, a terminate) */
    struct eng_task_view v;
    if (eng_task_get(w->g->eng, s->task, &v, &err) == 0 && task_state_final(v.state)) {
        sess_finish(w, s, TASK_R_CLIENT, "task ended outside the session");
    } else {
        on_response(w, s, r, (size_t)n);
    }
    answer(req, s);
}

/* ---- idle sweep --------------------------------------------------------------------- */

static void on_sweep(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct gw_wallet *w = t->data;
    ev_tstamp now = ev_now(loop);
    for (struct wal_session **pp = &w->sessions; *pp;) {
        struct wal_session *s = *pp;
        if (s->step != WS_OVER && now - s->last >= w->idle_s) {
            sess_finish(w, s, TASK_R_CLIENT, "client idle timeout");
        } else if (s->step == WS_OVER && now - s->last >= WAL_TOMBSTONE_S) {
            *pp = s->next;
            sess_free(s);
            continue;
        }
        pp = &s->next;
    }
}

/* ---- start / stop ------------------------------------------------------------------- */

int gw_wallet_start(struct gw *g, struct ota_err *err)
{
    if (!g || !g->http || !g->eng) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "wallet: engine and HTTP server needed");
    }
    struct gw_wallet *w = calloc(1, sizeof(*w));
    if (!w) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "wallet: out of memory");
    }
    w->g = g;
    /*
     * Idle limit below the engine's own session timer, so that a silent
     * client ends here (reason client, 410 afterwards) before the engine
     * gives up on the task by itself.
     */
    double eng_s = g->conf.eng.session_timeout_s ? (double)g->conf.eng.session_timeout_s : 120.0;
    w->idle_s = eng_s / 2 < WAL_IDLE_MAX_S ? eng_s / 2 : WAL_IDLE_MAX_S;
    if (w->idle_s < 0.5) {
        w->idle_s = 0.5;
    }
    int rc = ota_crypto_new(&w->cx, err);
    if (rc == 0) {
        rc = gw_route(g, "POST", "/v1/wallet/pull", GW_ROLE_CLIENT, route_pull, w, err);
    }
    if (rc == 0) {
        rc = gw_route(g, "POST", "/v1/wallet/sessions/{session}", GW_ROLE_CLIENT, route_session, w,
                      err);
    }
    if (rc < 0) {
        ota_crypto_free(w->cx);
        free(w);
        return rc;
    }
    double every = w->idle_s / 4 < 1.0 ? w->idle_s / 4 : 1.0;
    ev_timer_init(&w->sweep, on_sweep, every, every);
    w->sweep.data = w;
    ev_timer_start(g->loop, &w->sweep);
    ev_unref(g->loop); /* the sweep alone must not keep the loop running */
    g->wallet = w;
    return 0;
}

void gw_wallet_stop(struct gw *g)
{
    if (!g || !g->wallet) {
        return;
    }
    struct gw_wallet *w = g->wallet;
    ev_ref(g->loop);
    ev_timer_stop(g->loop, &w->sweep);
    /*
     * Live sessions are left to the engine: their tasks stay pulled and its
     * session timer (or the restart's rebuild) fails them, reason client.
     * Routes stay registered until the HTTP server is freed, which gw_stop
     * does right after: nothing calls them in between (one loop thread).
     */
    while (w->sessions) {
        struct wal_session *s = w->sessions;
        w->sessions = s->next;
        sess_free(s);
    }
    ota_crypto_free(w->cx);
    free(w);
    g->wallet = NULL;
}

size_t gw_wallet_sessions_live(const struct gw *g)
{
    size_t n = 0;
    for (const struct wal_session *s = g && g->wallet ? g->wallet->sessions : NULL; s;
         s = s->next) {
        n += s->step != WS_OVER; /* tombstones only answer late calls */
    }
    return n;
}
