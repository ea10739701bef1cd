/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the wallet pull API (gateway/wallet.c) over loopback HTTP:
 * a struct gw built by hand (libev loop, the engine on a temp database with
 * a fake bearer that keeps the parts it is given, the key store on the same
 * file, the HTTP server on 127.0.0.1 port 0, gw_wallet_start). A push task
 * is driven to delivered by hand (submit result + DLR); the test then acts
 * as the wallet and the card: it pulls with the serial decoded from the
 * push SMS and answers every C-APDU with the card end of SCP02
 * (struct ota_scp02_card) in front of the simulator's GP model
 * (tests/sim/gpmodel.h), asserting the task's outcome and the card state.
 * Bad paths: pull input, unknown / used serial, session running, bad card
 * cryptogram, a failing status word, wrong number of responses, unknown
 * and ended sessions, missing keys, the idle timeout. With auth started
 * (setup_auth): a session answers only the client principal that pulled it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "gateway/api_util.h"
#include "gateway/auth.h"
#include "gateway/gw.h"
#include "gateway/keys.h"
#include "tests/sim/gpmodel.h"
#include "tests/support/ts_http.h"
#include "tests/support/tsupport.h"

#define SEID "SE-W1"
#define SEID2 "SE-W2" /* registered, no SD keys */
#define KVN 0x21
#define APP_AID "A0000000871002FF"
#define MAX_SENT 16

static const char *const K_ENC = "404142434445464748494A4B4C4D4E4F";
static const char *const K_MAC = "505152535455565758595A5B5C5D5E5F";
static const char *const K_DEK = "606162636465666768696A6B6C6D6E6F";

/* The card: SCP02 card end in front of the GP model. */
struct card {
    struct ota_scp02_card sc;
    bool sc_up;
    struct sim_gp_card gp;
    bool bad_cryptogram; /* answer INITIALIZE UPDATE with a corrupted card cryptogram */
    unsigned commands;   /* commands run by the GP model (after unwrapping) */
    uint8_t last_plain[OTA_APDU_MAX_LEN];
    size_t last_plain_len;
};

struct fx {
    struct ev_loop *loop;
    char dir[64], db[96];
    struct gw g;
    uint16_t port;
    struct bearer_msg sent[MAX_SENT];
    unsigned n_sent;
    unsigned n_msgid;
    struct ota_crypto *cx;
    struct card card;
    char auth_hdr[128]; /* sent with every request when set (setup_auth) */
};

/* ---- fake bearer: keeps what it is given, reports only when told ---- */

static int fb_submit(void *arg, const struct bearer_msg *m, struct ota_err *err)
{
    (void)err;
    struct fx *f = arg;
    assert_true(f->n_sent < MAX_SENT);
    f->sent[f->n_sent++] = *m;
    return 0;
}

static void fb_noop(void *arg)
{
    (void)arg;
}

static int fx_up(void **state, unsigned session_timeout_s, enum ota_scp02_sl level, bool with_auth)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/otagw-wal-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/q.db", f->dir);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    f->g.loop = f->loop;
    f->g.log = stderr;
    f->g.conf.scp02_level = level;
    struct eng_conf c;
    eng_conf_defaults(&c);
    c.db_path = f->db;
    c.durable = false;
    c.commit_interval_ms = 0;
    c.push_wait_pull = true;
    c.session_timeout_s = session_timeout_s;
    f->g.conf.eng = c;
    struct eng_hooks hooks = {0};
    struct ota_err err;
    if (eng_open(f->loop, &c, &hooks, &f->g.eng, &err) < 0) {
        fail_msg("eng_open: %s", err.msg);
    }
    struct eng_bearer_ops ops = {
        .submit = fb_submit, .release_acks = fb_noop, .discard_acks = fb_noop, .arg = f};
    eng_set_bearer(f->g.eng, &ops);
    assert_int_equal(gw_keys_open(f->db, false, &f->g.keys, &err), 0);
    struct http_conf hc = {.bind_addr = "127.0.0.1", .port = 0, .idle_timeout_s = 5};
    assert_int_equal(http_server_new(f->loop, &hc, &f->g.http, &err), 0);
    f->port = http_server_port(f->g.http);
    if (with_auth) {
        /* routes checked as gw_start registers them: client tokens, principals on requests */
        snprintf(f->g.conf.db_path, sizeof(f->g.conf.db_path), "%s", f->db);
        assert_int_equal(gw_auth_start(&f->g, &err), 0);
    }
    assert_int_equal(gw_wallet_start(&f->g, &err), 0);
    assert_non_null(f->g.wallet);

    assert_int_equal(eng_se_register(f->g.eng, SEID, "8613800000001", "b1", &err), 0);
    assert_int_equal(eng_se_register(f->g.eng, SEID2, "8613800000002", "b1", &err), 0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    struct gw_keys_sd sd;
    memset(&sd, 0, sizeof(sd));
    sd.aid_len = ts_hex("A000000151000000", sd.aid, sizeof(sd.aid));
    sd.kvn = KVN;
    ts_mkkey(&sd.enc, OTA_CIPHER_3DES2, K_ENC);
    ts_mkkey(&sd.mac, OTA_CIPHER_3DES2, K_MAC);
    ts_mkkey(&sd.dek, OTA_CIPHER_3DES2, K_DEK);
    assert_int_equal(gw_keys_put_sd(f->g.keys, SEID, &sd, &err), 0);
    gw_keys_sd_wipe(&sd);

    assert_int_equal(ota_crypto_new(&f->cx, &err), 0);
    sim_gp_init(&f->card.gp, 100000);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return fx_up(state, 120, OTA_SCP02_SL_CMAC, false);
}

static int setup_l3(void **state)
{
    return fx_up(state, 120, OTA_SCP02_SL_CMAC_CDEC, false);
}

/* engine session timer 2 s: the wallet's idle limit is half of it */
static int setup_short(void **state)
{
    return fx_up(state, 2, OTA_SCP02_SL_CMAC, false);
}

/* with gw_auth_start: the wallet routes need a client token */
static int setup_auth(void **state)
{
    return fx_up(state, 120, OTA_SCP02_SL_CMAC, true);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gw_wallet_stop(&f->g);
    assert_null(f->g.wallet);
    eng_close(f->g.eng);
    http_server_free(f->g.http);
    gw_auth_stop(&f->g);
    gw_keys_close(f->g.keys);
    if (f->card.sc_up) {
        ota_scp02_card_fini(&f->card.sc);
    }
    ota_crypto_free(f->cx);
    ev_loop_destroy(f->loop);
    (void)ts_rmdir_tree(f->dir);
    free(f);
    return 0;
}

/* ---- loop and HTTP client ---- */

static void pump(struct fx *f)
{
    ts_http_pump(f->loop);
}

/* Case-insensitive strstr (strcasestr is a GNU extension). */
static const char *ci_find(const char *h, const char *n)
{
    size_t nl = strlen(n);
    for (; *h; h++) {
        if (strncasecmp(h, n, nl) == 0) {
            return h;
        }
    }
    return NULL;
}

static void http_do(struct fx *f, const char *path, const char *body, struct ts_http_resp *r)
{
    ts_http_do(f->loop, f->port, "POST", path, f->auth_hdr[0] ? f->auth_hdr : NULL, body, true, r);
}

static void assert_err(const struct ts_http_resp *r, int status, const char *code)
{
    ts_http_assert_error(r, status, code);
}

static void assert_ok(const struct ts_http_resp *r)
{
    if (r->status != 200 || !r->json) {
        fail_msg("status %d: %s", r->status, r->body ? r->body : "");
    }
}

/* ---- engine side: a push task delivered, its serial as the SMS carries it ---- */

static void task_view(struct fx *f, int64_t id, struct eng_task_view *v)
{
    struct ota_err err;
    assert_int_equal(eng_task_get(f->g.eng, id, v, &err), 0);
}

static int64_t push_task(struct fx *f, const char *seid, enum task_op op, const char *params,
                         char serial_hex[33])
{
    struct eng_task_spec s = {.seid = seid, .op = op, .channel = TASK_CH_PUSH, .params = params};
    struct ota_err err;
    int64_t id = 0;
    if (eng_submit(f->g.eng, &s, NULL, NULL, &id, &err) < 0) {
        fail_msg("eng_submit: %s", err.msg);
    }
    unsigned before = f->n_sent;
    for (int i = 0; i < 200 && f->n_sent == before; i++) {
        pump(f);
    }
    assert_int_equal(f->n_sent, before + 1);
    const struct bearer_msg *m = &f->sent[before];
    struct ota_push p;
    assert_int_equal(ota_push_decode(m->ud, m->ud_len, &p, &err), 0);
    assert_int_equal(p.seid_len, strlen(seid));
    assert_memory_equal(p.seid, seid, p.seid_len);
    for (size_t i = 0; i < 16; i++) {
        snprintf(serial_hex + 2 * i, 3, "%02x", p.serial[i]);
    }
    struct bearer_submit_result r = {.token = m->token, .status = BEARER_SUBMIT_OK};
    snprintf(r.msg_id, sizeof(r.msg_id), "m%u", ++f->n_msgid);
    eng_on_submit_result(f->g.eng, &r);
    struct bearer_dlr d = {.state = BEARER_DLR_DELIVERED, .final = true};
    snprintf(d.msg_id, sizeof(d.msg_id), "%s", r.msg_id);
    assert_int_equal(eng_on_dlr(f->g.eng, &d), BEARER_ACK_LATER);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    struct eng_task_view v;
    task_view(f, id, &v);
    assert_int_equal(v.state, TASK_DELIVERED);
    return id;
}

/* ---- the card ---- */

static size_t card_run(struct card *c, const uint8_t *capdu, size_t len, uint8_t *out)
{
    struct ota_err err;
    struct ota_apdu a;
    size_t rl = 0;
    if (ota_apdu_parse(capdu, len, &a, &err) < 0) {
        out[0] = 0x67;
        out[1] = 0x00;
        return 2;
    }
    memcpy(c->last_plain, capdu, len);
    c->last_plain_len = len;
    c->commands++;
    uint16_t sw = sim_gp_run(&c->gp, &a, out, 256, &rl);
    out[rl] = (uint8_t)(sw >> 8);
    out[rl + 1] = (uint8_t)sw;
    return rl + 2;
}

/* The card's answer (with SW) to one C-APDU as the wallet relays it. */
static size_t card_answer(struct fx *f, const uint8_t *capdu, size_t len, uint8_t *out)
{
    struct card *c = &f->card;
    struct ota_err err;
    if (len >= 2 && capdu[0] == 0x80 && capdu[1] == OTA_SCP02_INS_INIT_UPDATE) {
        if (c->sc_up) {
            ota_scp02_card_fini(&c->sc);
        }
        struct ota_scp02_keys k;
        uint8_t e[16], m[16], d[16];
        ts_hex(K_ENC, e, 16);
        ts_hex(K_MAC, m, 16);
        ts_hex(K_DEK, d, 16);
        assert_int_equal(ota_scp02_keys_set(&k, e, 16, m, 16, d, 16, KVN, &err), 0);
        static const uint8_t cc[6] = {1, 2, 3, 4, 5, 6};
        assert_int_equal(ota_scp02_card_init(&c->sc, f->cx, &k, NULL, 0x0007, cc, &err), 0);
        ota_scp02_keys_wipe(&k);
        c->sc_up = true;
        int n = ota_scp02_card_on_init_update(&c->sc, capdu, len, out, 64, &err);
        if (n < 0) {
            fail_msg("card INITIALIZE UPDATE: %s", err.msg);
        }
        if (c->bad_cryptogram) {
            out[27] ^= 0x01; /* last octet of the card cryptogram */
        }
        return (size_t)n;
    }
    if (len >= 2 && capdu[0] == 0x84 && capdu[1] == OTA_SCP02_INS_EXT_AUTH) {
        assert_true(c->sc_up);
        int rc = ota_scp02_card_on_ext_auth(&c->sc, capdu, len, &err);
        out[0] = rc == 0 ? 0x90 : 0x63;
        out[1] = 0x00;
        return 2;
    }
    if (capdu[0] & OTA_SCP02_CLA_SM) {
        assert_true(c->sc_up);
        uint8_t plain[OTA_APDU_MAX_LEN];
        int n = ota_scp02_card_unwrap(&c->sc, capdu, len, plain, sizeof(plain), &err);
        if (n < 0) {
            fail_msg("card unwrap: %s", err.msg);
        }
        return card_run(c, plain, (size_t)n, out);
    }
    return card_run(c, capdu, len, out);
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", p[i]);
    }
    out[2 * n] = '\0';
}

static void pull(struct fx *f, const char *seid, const char *serial, struct ts_http_resp *r)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"seid\":\"%s\",\"serial\":\"%s\"}", seid, serial);
    http_do(f, "/v1/wallet/pull", body, r);
}

/* One round: answer the single C-APDU of r as the card and post it; r gets the next answer. */
static void round_trip(struct fx *f, struct ts_http_resp *r)
{
    json_t *apdus = json_object_get(r->json, "apdus");
    assert_int_equal(json_array_size(apdus), 1);
    const char *h = json_string_value(json_array_get(apdus, 0));
    assert_non_null(h);
    uint8_t c[300], rsp[300];
    size_t n = ts_hex(h, c, sizeof(c));
    size_t rl = card_answer(f, c, n, rsp);
    char rh[700], path[96], body[800];
    hex_of(rsp, rl, rh);
    snprintf(path, sizeof(path), "/v1/wallet/sessions/%s",
             json_string_value(json_object_get(r->json, "session")));
    snprintf(body, sizeof(body), "{\"responses\":[\"%s\"]}", rh);
    ts_http_resp_free(r);
    http_do(f, path, body, r);
}

/* Relay until the session is over; r holds the final answer; returns the rounds. */
static unsigned run_session(struct fx *f, struct ts_http_resp *r)
{
    assert_ok(r);
    char id[40];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r->json, "session")));
    assert_int_equal(strlen(id), 32);
    unsigned rounds = 0;
    while (!json_is_true(json_object_get(r->json, "done"))) {
        assert_true(rounds < 300);
        round_trip(f, r);
        assert_ok(r);
        assert_string_equal(json_string_value(json_object_get(r->json, "session")), id);
        rounds++;
    }
    return rounds;
}

static void post_session(struct fx *f, const char *id, const char *body, struct ts_http_resp *r)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/wallet/sessions/%s", id);
    http_do(f, path, body, r);
}

static void assert_final(struct fx *f, int64_t id, enum task_state st, enum task_reason why)
{
    struct eng_task_view v;
    task_view(f, id, &v);
    if (v.state != st || v.reason != why) {
        fail_msg("task %lld: %s/%s, wanted %s/%s (result %s)", (long long)id,
                 task_state_name(v.state), task_reason_name(v.reason), task_state_name(st),
                 task_reason_name(why), v.result ? v.result : "-");
    }
}

static void assert_done_answer(const struct ts_http_resp *r, const char *state, const char *reason)
{
    assert_true(json_is_true(json_object_get(r->json, "done")));
    assert_string_equal(json_string_value(json_object_get(r->json, "state")), state);
    assert_string_equal(json_string_value(json_object_get(r->json, "reason")), reason);
    assert_null(json_object_get(r->json, "apdus"));
}

/* ---- tests ---- */

static void add_app(struct fx *f, const char *aid_hex, uint8_t lcs)
{
    uint8_t aid[16];
    size_t n = ts_hex(aid_hex, aid, sizeof(aid));
    struct ota_err err;
    assert_int_equal(sim_gp_add_app(&f->card.gp, aid, n, lcs, false, &err), 0);
}

static uint8_t app_lcs(struct fx *f, const char *aid_hex)
{
    uint8_t aid[16];
    size_t n = ts_hex(aid_hex, aid, sizeof(aid));
    const struct sim_gp_app *a = sim_gp_find_app(&f->card.gp, aid, n);
    assert_non_null(a);
    return a->lcs;
}

/* App lock over push + SCP02: the app ends locked on the card, the task done with its result. */
static void test_app_lock(void **state)
{
    struct fx *f = *state;
    add_app(f, APP_AID, OTA_GP_APP_SELECTABLE);
    char serial[33];
    int64_t id = push_task(f, SEID, TASK_OP_APP_LOCK, "{\"aid\":\"" APP_AID "\"}", serial);
    struct ts_http_resp r;
    pull(f, SEID, serial, &r);
    assert_ok(&r);
    /* the first command is INITIALIZE UPDATE with the key set's KVN, host challenge after */
    const char *first = json_string_value(json_array_get(json_object_get(r.json, "apdus"), 0));
    assert_non_null(first);
    assert_int_equal(strlen(first), 2 * OTA_SCP02_IU_CMD_LEN);
    assert_true(strncasecmp(first, "8050210008", 10) == 0);
    char id_hex[40];
    snprintf(id_hex, sizeof(id_hex), "%s", json_string_value(json_object_get(r.json, "session")));
    unsigned rounds = run_session(f, &r);
    assert_int_equal(rounds, 3); /* IU, EA, SET STATUS */
    assert_done_answer(&r, "done", "none");
    ts_http_resp_free(&r);
    /* the card ran SET STATUS (unwrapped: CLA 80) and the app is locked */
    assert_int_equal(f->card.commands, 1);
    assert_int_equal(f->card.last_plain[0], 0x80);
    assert_int_equal(f->card.last_plain[1], OTA_GP_INS_SET_STATUS);
    assert_int_equal(app_lcs(f, APP_AID), OTA_GP_APP_SELECTABLE | OTA_GP_LOCKED_BIT);
    assert_final(f, id, TASK_DONE, TASK_R_NONE);
    struct eng_task_view v;
    task_view(f, id, &v);
    json_t *res = json_loads(v.result, 0, NULL);
    assert_non_null(res);
    assert_int_equal(json_integer_value(json_object_get(res, "apdus")), 3);
    assert_string_equal(json_string_value(json_object_get(res, "last_sw")), "9000");
    assert_string_equal(json_string_value(json_object_get(res, "status")), "done");
    /* no key bytes in the result */
    assert_null(ci_find(v.result, K_ENC));
    assert_null(ci_find(v.result, "4041424344"));
    json_decref(res);
    /* the session is over: 410; the serial is spent: 409 serial-used */
    post_session(f, id_hex, "{\"responses\":[\"9000\"]}", &r);
    assert_err(&r, 410, "session-expired");
    ts_http_resp_free(&r);
    pull(f, SEID, serial, &r);
    assert_err(&r, 409, "serial-used");
    ts_http_resp_free(&r);
}

static void as_token(struct fx *f, const char *token)
{
    if (token) {
        snprintf(f->auth_hdr, sizeof(f->auth_hdr), "Authorization: Bearer %s\r\n", token);
    } else {
        f->auth_hdr[0] = '\0';
    }
}

/*
 * A session belongs to the client principal that pulled it: another client
 * token gets 404 unknown-session (as for an id that does not exist), live
 * or ended, and cannot move it; the puller's token drives it to the end.
 */
static void test_session_bound_to_principal(void **state)
{
    struct fx *f = *state;
    char ta[GW_AUTH_TOKEN_LEN + 1], tb[GW_AUTH_TOKEN_LEN + 1];
    int64_t ida, idb;
    struct ota_err err;
    assert_int_equal(gw_auth_token_create(&f->g, "test", "wal-a", GW_ROLE_CLIENT, ta, &ida, &err),
                     0);
    assert_int_equal(gw_auth_token_create(&f->g, "test", "wal-b", GW_ROLE_CLIENT, tb, &idb, &err),
                     0);
    add_app(f, APP_AID, OTA_GP_APP_SELECTABLE);
    char serial[33];
    int64_t id = push_task(f, SEID, TASK_OP_APP_LOCK, "{\"aid\":\"" APP_AID "\"}", serial);
    struct ts_http_resp r, o;
    as_token(f, ta);
    pull(f, SEID, serial, &r);
    assert_ok(&r);
    char id_hex[40];
    snprintf(id_hex, sizeof(id_hex), "%s", json_string_value(json_object_get(r.json, "session")));
    /* B holds A's session id: the same answer as a made-up one, and nothing moves */
    as_token(f, tb);
    post_session(f, id_hex, "{\"responses\":[\"9000\"]}", &o);
    assert_err(&o, 404, "unknown-session");
    ts_http_resp_free(&o);
    as_token(f, NULL);
    post_session(f, id_hex, "{\"responses\":[\"9000\"]}", &o);
    assert_int_equal(o.status, 401);
    ts_http_resp_free(&o);
    /* a prefix of the id or the id with one digit changed is not the session either */
    as_token(f, ta);
    char near[40];
    snprintf(near, sizeof(near), "%.31s", id_hex);
    post_session(f, near, "{\"responses\":[\"9000\"]}", &o);
    assert_err(&o, 404, "unknown-session");
    ts_http_resp_free(&o);
    snprintf(near, sizeof(near), "%s", id_hex);
    near[31] = near[31] == '0' ? '1' : '0';
    post_session(f, near, "{\"responses\":[\"9000\"]}", &o);
    assert_err(&o, 404, "unknown-session");
    ts_http_resp_free(&o);
    /* A, unhindered by B's tries, runs it to the end */
    assert_int_equal(run_session(f, &r), 3);
    assert_done_answer(&r, "done", "none");
    ts_http_resp_free(&r);
    assert_final(f, id, TASK_DONE, TASK_R_NONE);
    /* ended: A is told it is over, B still learns nothing */
    post_session(f, id_hex, "{\"responses\":[\"9000\"]}", &o);
    assert_err(&o, 410, "session-expired");
    ts_http_resp_free(&o);
    as_token(f, tb);
    post_session(f, id_hex, "{\"responses\":[\"9000\"]}", &o);
    assert_err(&o, 404, "unknown-session");
    ts_http_resp_free(&o);
}

/* Security level 03 (C-MAC + C-DECRYPTION): the card decrypts and runs the same script. */
static void test_app_lock_level3(void **state)
{
    struct fx *f = *state;
    add_app(f, APP_AID, OTA_GP_APP_SELECTABLE);
    char serial[33];
    int64_t id = push_task(f, SEID, TASK_OP_APP_LOCK, "{\"aid\":\"" APP_AID "\"}", serial);
    struct ts_http_resp r;
    pull(f, SEID, serial, &r);
    run_session(f, &r);
    assert_done_answer(&r, "done", "none");
    ts_http_resp_free(&r);
    assert_int_equal(f->card.sc.sl, OTA_SCP02_SL_CMAC_CDEC);
    assert_int_equal(app_lcs(f, APP_AID), OTA_GP_APP_SELECTABLE | OTA_GP_LOCKED_BIT);
    assert_final(f, id, TASK_DONE, TASK_R_NONE);
}

/* A bare push: channel open, then GET STATUS of the ISD; its answer is in the result. */
static void test_push_info(void **state)
{
    struct fx *f = *state;
    char serial[33];
    int64_t id = push_task(f, SEID, TASK_OP_PUSH, "{}", serial);
    struct ts_http_resp r;
    pull(f, SEID, serial, &r);
    run_session(f, &r);
    assert_done_answer(&r, "done", "none");
    ts_http_resp_free(&r);
    assert_final(f, id, TASK_DONE, TASK_R_NONE);
    assert_int_equal(f->card.last_plain[1], OTA_GP_INS_GET_STATUS);
    struct eng_task_view v;
    task_view(f, id, &v);
    json_t *res = json_loads(v.result, 0, NULL);
    json_t *info = json_object_get(res, "info");
    assert_int_equal(json_array_size(info), 1);
    const char *h = json_string_value(json_array_get(info, 0));
    assert_true(strlen(h) > 4);
    assert_string_equal(h + strlen(h) - 4, "9000");
    json_decref(res);
}

/*
 * A download whose load file is already on the card (a broken earlier
 * download): GET STATUS finds it, DELETE removes it with its instances,
 * then the whole download runs and the app ends selectable.
 */
static void test_download_cleanup(void **state)
{
    struct fx *f = *state;
    static const char *const elf_hex = "A0000000871002";
    struct sim_gp_elf *e = &f->card.gp.elfs[0];
    memset(e, 0, sizeof(*e));
    e->used = true;
    e->aid.len = (uint8_t)ts_hex(elf_hex, e->aid.b, sizeof(e->aid.b));
    e->size = 100;
    char params[1024];
    char file[401];
    for (int i = 0; i < 200; i++) {
        snprintf(file + 2 * i, 3, "%02x", (unsigned)(i & 0xff));
    }
    snprintf(params, sizeof(params),
             "{\"load_file_aid\":\"%s\",\"load_file\":\"%s\",\"block_size\":64,"
             "\"modules\":[{\"module_aid\":\"A000000087100201\",\"instance_aid\":\"%s\"}]}",
             elf_hex, file, APP_AID);
    char serial[33];
    int64_t id = push_task(f, SEID, TASK_OP_APP_DOWNLOAD, params, serial);
    struct ts_http_resp r;
    pull(f, SEID, serial, &r);
    unsigned rounds = run_session(f, &r);
    assert_done_answer(&r, "done", "none");
    ts_http_resp_free(&r);
    assert_final(f, id, TASK_DONE, TASK_R_NONE);
    /* IU, EA, GET STATUS, DELETE, INSTALL [for load], 4 LOAD blocks (C4 82 00 C8 + 200), INSTALL */
    assert_int_equal(rounds, 10);
    uint8_t lcs = app_lcs(f, APP_AID);
    assert_int_equal(lcs, OTA_GP_APP_SELECTABLE);
}

/* Bad pull input and the serial's lifecycle. */
static void test_pull_errors(void **state)
{
    struct fx *f = *state;
    char serial[33];
    int64_t id = push_task(f, SEID, TASK_OP_PUSH, "{}", serial);
    struct ts_http_resp r;
    static const char *const bad[] = {
        "{",
        "[]",
        "{\"seid\":\"" SEID "\"}",
        "{\"serial\":\"00112233445566778899aabbccddeeff\"}",
        "{\"seid\":\"" SEID "\",\"serial\":\"00112233\"}",
        "{\"seid\":\"" SEID "\",\"serial\":\"00112233445566778899AABBCCDDEEFF\"}",
        "{\"seid\":\"" SEID "\",\"serial\":\"00112233445566778899aabbccddeefg\"}",
        "{\"seid\":\"" SEID "\",\"serial\":12}",
        "{\"seid\":\"\",\"serial\":\"00112233445566778899aabbccddeeff\"}",
        "{\"seid\":\"" SEID "\",\"serial\":\"00112233445566778899aabbccddeeff\",\"x\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http_do(f, "/v1/wallet/pull", bad[i], &r);
        if (r.status != 400) {
            fail_msg("%s: %d %s", bad[i], r.status, r.body);
        }
        ts_http_resp_free(&r);
    }
    http_do(f, "/v1/wallet/pull", "{", &r);
    assert_err(&r, 400, "bad-json");
    ts_http_resp_free(&r);
    pull(f, SEID, "00112233445566778899AABBCCDDEEFF", &r);
    assert_err(&r, 400, "bad-serial");
    ts_http_resp_free(&r);
    pull(f, "bad\\u0001seid", serial, &r);
    assert_err(&r, 400, "bad-seid");
    ts_http_resp_free(&r);
    pull(f, "SE/1", serial, &r); /* the one SEID rule (api_seid_ok) */
    assert_err(&r, 400, "bad-seid");
    ts_http_resp_free(&r);
    http_do(f, "/v1/wallet/pull", "{\"seid\":\"" SEID "\",\"serial\":\"x\",\"x\":1}", &r);
    assert_err(&r, 400, "unknown-field");
    ts_http_resp_free(&r);
    /* a wrong serial, and the right serial for another SE: 404, nothing spent */
    pull(f, SEID, "00112233445566778899aabbccddeeff", &r);
    assert_err(&r, 404, "unknown-serial");
    ts_http_resp_free(&r);
    pull(f, SEID2, serial, &r);
    assert_err(&r, 404, "unknown-serial");
    ts_http_resp_free(&r);
    struct eng_task_view v;
    task_view(f, id, &v);
    assert_int_equal(v.state, TASK_DELIVERED);

    pull(f, SEID, serial, &r);
    assert_ok(&r);
    char sid[40];
    snprintf(sid, sizeof(sid), "%s", json_string_value(json_object_get(r.json, "session")));
    /* spec 5.8.8: a second request for the SE while its session runs is refused */
    struct ts_http_resp r2;
    pull(f, SEID, serial, &r2);
    assert_err(&r2, 409, "session-running");
    ts_http_resp_free(&r2);
    pull(f, SEID, "00112233445566778899aabbccddeeff", &r2);
    assert_err(&r2, 409, "session-running");
    ts_http_resp_free(&r2);

    /* session route errors: unknown id, malformed body, wrong number of responses */
    post_session(f, "00000000000000000000000000000000", "{\"responses\":[\"9000\"]}", &r2);
    assert_err(&r2, 404, "unknown-session");
    ts_http_resp_free(&r2);
    static const char *const bad_s[] = {
        "{",
        "{\"responses\":\"9000\"}",
        "{\"responses\":[\"9\"]}",
        "{\"responses\":[\"zz00\"]}",
        "{\"responses\":[9000]}",
        "{\"responses\":[\"90\"]}",
        "{\"responses\":[\"9000\"],\"more\":true}",
    };
    for (size_t i = 0; i < sizeof(bad_s) / sizeof(bad_s[0]); i++) {
        post_session(f, sid, bad_s[i], &r2);
        if (r2.status != 400) {
            fail_msg("%s: %d %s", bad_s[i], r2.status, r2.body);
        }
        ts_http_resp_free(&r2);
    }
    post_session(f, sid, "{\"responses\":[\"zz\"]}", &r2);
    assert_err(&r2, 400, "invalid-field");
    ts_http_resp_free(&r2);
    post_session(f, sid, "{\"responses\":[]}", &r2);
    assert_err(&r2, 409, "bad-sequence");
    ts_http_resp_free(&r2);
    post_session(f, sid, "{\"responses\":[\"9000\",\"9000\"]}", &r2);
    assert_err(&r2, 409, "bad-sequence");
    ts_http_resp_free(&r2);
    /* none of that moved the session: it still completes */
    run_session(f, &r);
    assert_done_answer(&r, "done", "none");
    ts_http_resp_free(&r);
    assert_final(f, id, TASK_DONE, TASK_R_NONE);
    pull(f, SEID, serial, &r);
    assert_err(&r, 409, "serial-used");
    ts_http_resp_free(&r);
}

/* A wrong card cryptogram: the session ends at once, task failed (client). */
static void test_bad_cryptogram(void **state)
{
    struct fx *f = *state;
    add_app(f, APP_AID, OTA_GP_APP_SELECTABLE);
    f->card.bad_cryptogram = true;
    char serial[33];
    int64_t id = push_task(f, SEID, TASK_OP_APP_LOCK, "{\"aid\":\"" APP_AID "\"}", serial);
    struct ts_http_resp r;
    pull(f, SEID, serial, &r);
    unsigned rounds = run_session(f, &r);
    assert_int_equal(rounds, 1);
    assert_done_answer(&r, "failed", "client");
    ts_http_resp_free(&r);
    assert_final(f, id, TASK_FAILED, TASK_R_CLIENT);
    assert_int_equal(f->card.commands, 0);
    assert_int_equal(app_lcs(f, APP_AID), OTA_GP_APP_SELECTABLE);
}

/* The card refuses a script command: failed, card-sw, and the SW is in the result. */
static void test_card_sw(void **state)
{
    struct fx *f = *state;
    char serial[33];
    /* no such app on the card: SET STATUS answers an error */
    int64_t id = push_task(f, SEID, TASK_OP_APP_LOCK, "{\"aid\":\"" APP_AID "\"}", serial);
    struct ts_http_resp r;
    pull(f, SEID, serial, &r);
    run_session(f, &r);
    assert_done_answer(&r, "failed", "card-sw");
    ts_http_resp_free(&r);
    assert_final(f, id, TASK_FAILED, TASK_R_CARD_SW);
    struct eng_task_view v;
    task_view(f, id, &v);
    json_t *res = json_loads(v.result, 0, NULL);
    assert_string_not_equal(json_string_value(json_object_get(res, "last_sw")), "9000");
    assert_string_equal(json_string_value(json_object_get(res, "status")), "failed");
    json_decref(res);
}

/* No SD key set for the SE: the pull ends the task at once (no-keys). */
static void test_no_keys(void **state)
{
    struct fx *f = *state;
    char serial[33];
    int64_t id = push_task(f, SEID2, TASK_OP_PUSH, "{}", serial);
    struct ts_http_resp r;
    pull(f, SEID2, serial, &r);
    assert_ok(&r);
    assert_done_answer(&r, "failed", "no-keys");
    ts_http_resp_free(&r);
    assert_final(f, id, TASK_FAILED, TASK_R_NO_KEYS);
}

/* A client that stops calling: after the idle limit the task fails (client) and the id is 410. */
static void test_idle_timeout(void **state)
{
    struct fx *f = *state;
    char serial[33];
    int64_t id = push_task(f, SEID, TASK_OP_PUSH, "{}", serial);
    struct ts_http_resp r;
    pull(f, SEID, serial, &r);
    assert_ok(&r);
    char sid[40];
    snprintf(sid, sizeof(sid), "%s", json_string_value(json_object_get(r.json, "session")));
    ts_http_resp_free(&r);
    struct eng_task_view v;
    ev_tstamp t0 = ev_time();
    do {
        pump(f);
        task_view(f, id, &v);
    } while (!task_state_final(v.state) && ev_time() - t0 < 1.9);
    /* ended by the wallet's idle sweep (1 s), before the engine's 2 s session timer */
    assert_final(f, id, TASK_FAILED, TASK_R_CLIENT);
    assert_true(ev_time() - t0 < 1.9);
    task_view(f, id, &v);
    assert_non_null(strstr(v.result ? v.result : "", "idle"));
    post_session(f, sid, "{\"responses\":[\"9000\"]}", &r);
    assert_err(&r, 410, "session-expired");
    ts_http_resp_free(&r);
    /* a new pull for the SE is no longer refused as running: the serial is spent */
    pull(f, SEID, serial, &r);
    assert_err(&r, 409, "serial-used");
    ts_http_resp_free(&r);
}

/*
 * A task for a supplementary SD: the session SELECTs it first (plain), then
 * opens SCP02 with that SD's key set.
 */
static void test_ssd_select_first(void **state)
{
    struct fx *f = *state;
    static const char *const ssd = "A000000151535041";
    add_app(f, APP_AID, OTA_GP_APP_SELECTABLE);
    uint8_t aid[16];
    size_t n = ts_hex(ssd, aid, sizeof(aid));
    struct ota_err err;
    assert_int_equal(sim_gp_add_app(&f->card.gp, aid, n, OTA_GP_SD_PERSONALIZED, true, &err), 0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    struct gw_keys_sd sd;
    memset(&sd, 0, sizeof(sd));
    memcpy(sd.aid, aid, n);
    sd.aid_len = n;
    sd.kvn = KVN;
    ts_mkkey(&sd.enc, OTA_CIPHER_3DES2, K_ENC);
    ts_mkkey(&sd.mac, OTA_CIPHER_3DES2, K_MAC);
    ts_mkkey(&sd.dek, OTA_CIPHER_3DES2, K_DEK);
    assert_int_equal(gw_keys_put_sd(f->g.keys, SEID, &sd, &err), 0);
    gw_keys_sd_wipe(&sd);
    char serial[33];
    int64_t id = push_task(f, SEID, TASK_OP_APP_LOCK,
                           "{\"aid\":\"" APP_AID "\",\"sd_aid\":\"A000000151535041\"}", serial);
    struct ts_http_resp r;
    pull(f, SEID, serial, &r);
    assert_ok(&r);
    const char *first = json_string_value(json_array_get(json_object_get(r.json, "apdus"), 0));
    assert_true(strncasecmp(first, "00a4040008a000000151535041", 26) == 0);
    unsigned rounds = run_session(f, &r);
    assert_int_equal(rounds, 4); /* SELECT, IU, EA, SET STATUS */
    assert_done_answer(&r, "done", "none");
    ts_http_resp_free(&r);
    assert_final(f, id, TASK_DONE, TASK_R_NONE);
    assert_int_equal(app_lcs(f, APP_AID), OTA_GP_APP_SELECTABLE | OTA_GP_LOCKED_BIT);
}

/* The task is terminated by an operator mid-session: the next call learns the task's end. */
/*
 * sd-key-update over push + SCP02 with the key store as key source: the PUT
 * KEY carries version KVN + 1's keys (imported beforehand) encrypted under
 * this session's DEK, which the card end decrypts back to the new keys.
 */
static void test_key_update_session_dek(void **state)
{
    struct fx *f = *state;
    static const char *const N_ENC = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
    struct gw_keys_sd sd;
    memset(&sd, 0, sizeof(sd));
    sd.aid_len = ts_hex("A000000151000000", sd.aid, sizeof(sd.aid));
    sd.kvn = KVN + 1;
    ts_mkkey(&sd.enc, OTA_CIPHER_3DES2, N_ENC);
    ts_mkkey(&sd.mac, OTA_CIPHER_3DES2, K_ENC);
    ts_mkkey(&sd.dek, OTA_CIPHER_3DES2, K_MAC);
    struct ota_err err;
    assert_int_equal(gw_keys_put_sd(f->g.keys, SEID, &sd, &err), 0);
    gw_keys_sd_wipe(&sd);
    char params[80], serial[33];
    snprintf(params, sizeof(params), "{\"old_kvn\":%d,\"new_kvn\":%d}", KVN, KVN + 1);
    int64_t id = push_task(f, SEID, TASK_OP_SD_KEY_UPDATE, params, serial);
    struct ts_http_resp r;
    pull(f, SEID, serial, &r);
    (void)run_session(f, &r);
    assert_done_answer(&r, "done", "none");
    ts_http_resp_free(&r);
    assert_final(f, id, TASK_DONE, TASK_R_NONE);
    /* PUT KEY: new KVN, then type 80, length 10, the key under the session DEK, 03, KCV */
    const uint8_t *pk = f->card.last_plain;
    assert_int_equal(pk[1], OTA_GP_INS_PUT_KEY);
    assert_int_equal(pk[2], KVN);
    assert_int_equal(pk[5], KVN + 1);
    assert_int_equal(pk[6], 0x80);
    assert_int_equal(pk[7], 0x10);
    uint8_t clear[16], want[16];
    assert_int_equal(ota_crypto_cipher(f->cx, &f->card.sc.skeys.dek, OTA_MODE_ECB, false, NULL,
                                       pk + 8, 16, clear, &err),
                     0);
    ts_hex(N_ENC, want, 16);
    assert_memory_equal(clear, want, 16);
    /* a version that was never imported: the session is not even opened */
    snprintf(params, sizeof(params), "{\"old_kvn\":%d,\"new_kvn\":%d}", KVN, KVN + 9);
    id = push_task(f, SEID, TASK_OP_SD_KEY_UPDATE, params, serial);
    pull(f, SEID, serial, &r);
    ts_http_resp_free(&r);
    assert_final(f, id, TASK_FAILED, TASK_R_BUILD);
}

static void test_terminated_mid_session(void **state)
{
    struct fx *f = *state;
    add_app(f, APP_AID, OTA_GP_APP_SELECTABLE);
    char serial[33];
    int64_t id = push_task(f, SEID, TASK_OP_APP_LOCK, "{\"aid\":\"" APP_AID "\"}", serial);
    struct ts_http_resp r;
    pull(f, SEID, serial, &r);
    assert_ok(&r);
    round_trip(f, &r); /* INITIALIZE UPDATE answered: EXTERNAL AUTHENTICATE comes */
    assert_ok(&r);
    assert_non_null(json_object_get(r.json, "apdus"));
    struct ota_err err;
    assert_int_equal(eng_task_terminate(f->g.eng, id, &err), 0);
    round_trip(f, &r);
    assert_ok(&r);
    assert_done_answer(&r, "cancelled", "terminated");
    ts_http_resp_free(&r);
    assert_final(f, id, TASK_CANCELLED, TASK_R_TERMINATED);
    assert_int_equal(f->card.commands, 0);
    assert_int_equal(app_lcs(f, APP_AID), OTA_GP_APP_SELECTABLE);
}

/* The OpenAPI document describes both wallet routes with their error answers. */
static void test_openapi_wallet(void **state)
{
    (void)state;
    json_error_t je;
    json_t *doc = json_loadb((const char *)gw_openapi_json, gw_openapi_json_len, 0, &je);
    assert_non_null(doc);
    json_t *paths = json_object_get(doc, "paths");
    json_t *p = json_object_get(json_object_get(paths, "/v1/wallet/pull"), "post");
    json_t *s = json_object_get(json_object_get(paths, "/v1/wallet/sessions/{session}"), "post");
    assert_non_null(p);
    assert_non_null(s);
    static const char *const pc[] = {"200", "400", "404", "409", "410"};
    for (size_t i = 0; i < 5; i++) {
        assert_non_null(json_object_get(json_object_get(p, "responses"), pc[i]));
    }
    static const char *const sc[] = {"200", "400", "404", "409", "410"};
    for (size_t i = 0; i < 5; i++) {
        assert_non_null(json_object_get(json_object_get(s, "responses"), sc[i]));
    }
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_app_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_lock_level3, setup_l3, teardown),
        cmocka_unit_test_setup_teardown(test_session_bound_to_principal, setup_auth, teardown),
        cmocka_unit_test_setup_teardown(test_push_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_cleanup, setup_l3, teardown),
        cmocka_unit_test_setup_teardown(test_pull_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_cryptogram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_card_sw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_ssd_select_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_update_session_dek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminated_mid_session, setup, teardown),
        cmocka_unit_test(test_openapi_wallet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
