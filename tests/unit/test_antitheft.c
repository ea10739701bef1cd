/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of anti-theft lock / unlock / wipe (gateway/api_antitheft.c,
 * ITU-T X.1127) over loopback HTTP: a struct gw built by hand (libev loop,
 * the task engine on a temp database, the key store on the same file, the
 * HTTP server on 127.0.0.1 port 0), a fake bearer with a rate (200 parts/s,
 * -EAGAIN when out of room, ready callback when room comes back) and a fake
 * card behind it that deciphers and checks every SCP80 packet to its
 * MSISDN and answers a CC-protected PoR with an expanded response.
 *
 * Proofs: a lock reaches a verified PoR within seconds while a 20,000-SE
 * job (rate capped, started first, its backlog full) is mostly still
 * queued; a replayed / lower-counter PoR, a tampered one and an
 * unprotected "ok" are refused, and so are error PoRs without a valid
 * checksum (counted as refused, the request still waiting), while a
 * verified error PoR fails it; the sent time is shown; key sets below the
 * minimum are refused
 * (409 keyset-too-weak) and a weaker SPI handed to the engine is forced up;
 * msisdn mismatch; loss-listed SEs can be locked; the active task holding
 * the SE is preempted; idempotent request_id (longest ones kept apart,
 * derived-key prefixes refused as raw Idempotency-Keys); bad input per field.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "gateway/api_util.h"
#include "gateway/audit.h"
#include "gateway/auth.h"
#include "gateway/gw.h"
#include "gateway/keys.h"
#include "ota/ota.h"
#include "tests/support/ts_http.h"
#include "tests/support/tsupport.h"

#define KEY_HEX "000102030405060708090a0b0c0d0e0f"
#define BULK_N 20000
#define TICK_S 0.01
#define PARTS_PER_TICK 2 /* 200 parts/s: the bearer is the bottleneck */

struct card {
    char seid[16];
    char msisdn[22];
    uint64_t last_cntr;
    bool silent; /* take packets, answer nothing (reply_last answers later) */
    unsigned packets;
    uint8_t last_spi[2];
    struct ota_scp80_cmd last_cmd; /* of the last accepted packet */
    size_t last_n_cmds;
    uint8_t por[200]; /* the last PoR sent */
    size_t por_len;
};

struct sent {
    uint64_t token;
    char dest[22];
    uint8_t ud[140];
    uint8_t ud_len;
};

struct fx {
    struct ev_loop *loop;
    char dir[64], db[96], logpath[112];
    struct gw g;
    uint16_t port;
    struct ota_crypto *cx;
    struct sent *q;
    size_t nq, capq;
    unsigned tokens;
    bool full;
    uint64_t msgid;
    ev_timer tick;
    bool weaken; /* the engine's key hook hands a weaker SPI */
    struct card cards[8];
    size_t n_cards;
};

static struct ota_key test_key(void)
{
    struct ota_key k;
    ts_mkkey(&k, OTA_CIPHER_AES, KEY_HEX);
    return k;
}

/* ---- fake card -------------------------------------------------------------------- */

static struct card *card_of(struct fx *f, const char *msisdn)
{
    for (size_t i = 0; i < f->n_cards; i++) {
        if (strcmp(f->cards[i].msisdn, msisdn) == 0) {
            return &f->cards[i];
        }
    }
    return NULL;
}

static void card_deliver(struct fx *f, struct card *c, const uint8_t *ud, size_t len)
{
    struct bearer_mo mo = {.orig = c->msisdn,
                           .dest = "10658",
                           .ud = ud,
                           .ud_len = len,
                           .udhi = true,
                           .pid = 0x7f,
                           .dcs = 0xf6,
                           .link = "fake"};
    int rc = eng_on_mo(f->g.eng, &mo);
    assert_true(rc >= 0);
}

/*
 * A PoR of the last accepted packet with status st: protected (CC per its
 * SPI) or not; wrong_kid: the CC made with another key (a forger's).
 */
static size_t card_por_st(struct fx *f, struct card *c, bool protect, uint8_t st, bool wrong_kid,
                          uint8_t *out, size_t cap)
{
    struct ota_key k = test_key();
    struct ota_key other;
    ts_mkkey(&other, OTA_CIPHER_AES, "0f0e0d0c0b0a09080706050403020100");
    struct ota_scp80_keys keys = {&k, wrong_kid ? &other : &k};
    struct ota_rapdu_exp_rsp r = {
        .has_n_executed = true, .n_executed = (uint16_t)c->last_n_cmds, .n_rapdus = c->last_n_cmds};
    struct ota_rapdu_rapdu ra[32];
    for (size_t i = 0; i < c->last_n_cmds; i++) {
        ra[i] = (struct ota_rapdu_rapdu){.sw = 0x9000};
    }
    uint8_t rsp[200];
    struct ota_err err;
    int rl = ota_rapdu_exp_rsp_build(&r, ra, rsp, sizeof(rsp), &err);
    assert_true(rl > 0);
    int n = ota_scp80_por_encode_sms(f->cx, &c->last_cmd, &keys, protect, st, rsp,
                                     st == OTA_SCP80_ST_OK ? (size_t)rl : 0, out, cap, &err);
    if (n < 0) {
        fail_msg("PoR encode: %s", err.msg);
    }
    return (size_t)n;
}

/* The PoR of the last accepted packet: protected (CC per its SPI) or not. */
static size_t card_por(struct fx *f, struct card *c, bool protect, uint8_t *out, size_t cap)
{
    return card_por_st(f, c, protect, OTA_SCP80_ST_OK, false, out, cap);
}

static void card_reply_last(struct fx *f, struct card *c)
{
    c->por_len = card_por(f, c, true, c->por, sizeof(c->por));
    card_deliver(f, c, c->por, c->por_len);
}

/* A packet for the card: decipher, verify, check the counter (TS 102 225 5.1.1), answer. */
static void card_rx(struct fx *f, struct card *c, const uint8_t *ud, size_t len)
{
    assert_true(len > 1 && (size_t)ud[0] + 1 < len);
    const uint8_t *pkt = ud + ud[0] + 1;
    size_t pl = len - ud[0] - 1;
    struct ota_err err;
    struct ota_scp80_cmd_hdr h;
    assert_int_equal(ota_scp80_cmd_peek(pkt, pl, &h, &err), 0);
    struct ota_key k = test_key();
    struct ota_scp80_keys keys = {&k, &k};
    uint8_t work[OTA_SCP80_MAX_PACKET];
    struct ota_scp80_cmd_rx rx;
    int rc = ota_scp80_cmd_decode(f->cx, &keys, pkt, pl, work, sizeof(work), &rx, &err);
    if (rc < 0) {
        fail_msg("card: packet refused: %s", err.msg);
    }
    enum ota_scp80_por_status st;
    assert_int_equal(ota_scp80_cntr_check(h.spi.cntr_mode, c->last_cntr, rx.cntr, &st, &err), 0);
    assert_int_equal(st, OTA_SCP80_ST_OK);
    c->last_cntr = rx.cntr;
    c->packets++;
    memcpy(c->last_spi, h.spi_raw, 2);
    struct ota_rapdu_cmd_tlv tlvs[32];
    size_t n = 0;
    bool indef;
    if (ota_rapdu_exp_cmd_parse(rx.data, rx.data_len, tlvs, 32, &n, &indef, &err) < 0) {
        n = 1; /* a platform's compact script: one command is enough here */
    }
    c->last_n_cmds = n;
    c->last_cmd = (struct ota_scp80_cmd){
        .spi = h.spi, .kic = h.kic, .kid = h.kid, .cntr = rx.cntr, .cc_len = rx.cc_len};
    memcpy(c->last_cmd.tar, h.tar, 3);
    if (!c->silent) {
        card_reply_last(f, c);
    }
}

/* ---- fake bearer: PARTS_PER_TICK parts per tick, -EAGAIN beyond ---------------------- */

static int fb_submit(void *arg, const struct bearer_msg *m, struct ota_err *err)
{
    struct fx *f = arg;
    (void)err;
    if (f->tokens == 0) {
        f->full = true;
        return -EAGAIN;
    }
    if (f->nq == f->capq) {
        f->capq = f->capq ? f->capq * 2 : 64;
        f->q = realloc(f->q, f->capq * sizeof(*f->q));
        assert_non_null(f->q);
    }
    struct sent *s = &f->q[f->nq++];
    s->token = m->token;
    snprintf(s->dest, sizeof(s->dest), "%s", m->dest);
    memcpy(s->ud, m->ud, m->ud_len);
    s->ud_len = m->ud_len;
    f->tokens--;
    return 0;
}

static void fb_noop(void *arg)
{
    (void)arg;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct fx *f = w->data;
    /* the network accepts what was handed over; the cards answer theirs */
    size_t n = f->nq;
    f->nq = 0;
    struct sent batch[PARTS_PER_TICK];
    assert_true(n <= PARTS_PER_TICK);
    if (n) {
        memcpy(batch, f->q, n * sizeof(*batch));
    }
    for (size_t i = 0; i < n; i++) {
        struct bearer_submit_result r = {.token = batch[i].token, .status = BEARER_SUBMIT_OK};
        snprintf(r.msg_id, sizeof(r.msg_id), "m%llu", (unsigned long long)++f->msgid);
        r.link = "fake";
        eng_on_submit_result(f->g.eng, &r);
        struct card *c = card_of(f, batch[i].dest);
        if (c) {
            card_rx(f, c, batch[i].ud, batch[i].ud_len);
        }
    }
    f->tokens = PARTS_PER_TICK;
    if (f->full) {
        f->full = false;
        eng_on_ready(f->g.eng);
    }
}

/* ---- engine hooks ------------------------------------------------------------------- */

static int hook_keys(void *arg, const char *seid, const uint8_t tar[3], struct eng_scp80_keys *out,
                     struct ota_err *err)
{
    struct fx *f = arg;
    int rc = gw_keys_get_scp80(f->g.keys, seid, tar, out, err);
    if (rc == -ENOENT && seid[0] == 'B') {
        /* the campaign's SEs: one key set for all, not in the key store (20,000 puts) */
        memset(out, 0, sizeof(*out));
        out->spi[0] = 0x16;
        out->spi[1] = 0x39;
        out->kic = 0x12;
        out->kid = 0x12;
        out->cc_len = 8;
        out->kic_key = test_key();
        out->kid_key = test_key();
        return 0;
    }
    if (rc == 0 && f->weaken) {
        /* CC only, no counter check, no PoR: what the engine must never send for anti-theft */
        out->spi[0] = 0x02;
        out->spi[1] = 0x00;
    }
    return rc;
}

static void hook_final(void *arg, const struct eng_task_view *t)
{
    struct fx *f = arg;
    gw_antitheft_task_final(&f->g, t);
}

/* ---- fixture ------------------------------------------------------------------------- */

static void put_keys(struct fx *f, const char *seid, uint8_t spi0, uint8_t spi1, bool des)
{
    struct gw_keys_scp80 in;
    memset(&in, 0, sizeof(in));
    in.any_tar = true;
    in.kvn = 1;
    in.spi[0] = spi0;
    in.spi[1] = spi1;
    in.kic = des ? 0x11 : 0x12; /* KVN 1, DES CBC / AES CBC */
    in.kid = des ? 0x11 : 0x12; /* KVN 1, DES CBC-MAC / AES CMAC */
    in.cc_len = 8;
    if (des) {
        ts_mkkey(&in.kic_key, OTA_CIPHER_DES, "0001020304050607");
        ts_mkkey(&in.kid_key, OTA_CIPHER_DES, "0001020304050607");
    } else {
        in.kic_key = test_key();
        in.kid_key = test_key();
    }
    struct ota_err err;
    int rc = gw_keys_put_scp80(f->g.keys, seid, &in, NULL, &err);
    if (rc < 0) {
        fail_msg("put keys %s: %s", seid, err.msg);
    }
}

static void add_se(struct fx *f, const char *seid, const char *msisdn, bool card)
{
    struct ota_err err;
    assert_int_equal(eng_se_register(f->g.eng, seid, msisdn, "at", &err), 0);
    if (card) {
        struct card *c = &f->cards[f->n_cards++];
        memset(c, 0, sizeof(*c));
        snprintf(c->seid, sizeof(c->seid), "%s", seid);
        snprintf(c->msisdn, sizeof(c->msisdn), "%s", msisdn);
    }
}

/* request_id: 1..64 printable (AT_REQ_ID_MAX in gateway/api_antitheft.c, docs/antitheft.md) */
#define AT_REQ_ID_MAX_T 64

static bool with_auth; /* setup_auth: tokens required (gateway/auth.c) */

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/otagw-at-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/q.db", f->dir);
    snprintf(f->logpath, sizeof(f->logpath), "%s/log", f->dir);
    struct ota_err err;
    assert_int_equal(ota_crypto_new(&f->cx, &err), 0);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    f->g.loop = f->loop;
    f->g.log = fopen(f->logpath, "w+");
    assert_non_null(f->g.log);
    gw_conf_defaults(&f->g.conf);
    snprintf(f->g.conf.db_path, sizeof(f->g.conf.db_path), "%s", f->db);
    f->g.conf.plain_http = true;
    f->g.conf.log_level = GW_CONF_LOG_INFO;
    /* two user applications (7 and 8 octets) and the card lock */
    static const uint8_t a1[] = {0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10};
    static const uint8_t a2[] = {0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01};
    memcpy(f->g.conf.at_apps[0].b, a1, sizeof(a1));
    f->g.conf.at_apps[0].len = sizeof(a1);
    memcpy(f->g.conf.at_apps[1].b, a2, sizeof(a2));
    f->g.conf.at_apps[1].len = sizeof(a2);
    f->g.conf.at_n_apps = 2;
    f->g.conf.at_card_lock = true;

    struct eng_conf c;
    eng_conf_defaults(&c);
    c.db_path = f->db;
    c.durable = false;
    c.want_dlr = false;
    struct eng_hooks hooks = {.scp80_keys = hook_keys, .final = hook_final, .arg = f};
    assert_int_equal(eng_open(f->loop, &c, &hooks, &f->g.eng, &err), 0);
    struct eng_bearer_ops ops = {
        .submit = fb_submit, .release_acks = fb_noop, .discard_acks = fb_noop, .arg = f};
    eng_set_bearer(f->g.eng, &ops);
    assert_int_equal(gw_keys_open(f->db, false, &f->g.keys, &err), 0);
    struct http_conf hc = {
        .bind_addr = "127.0.0.1", .port = 0, .max_body = 16384, .idle_timeout_s = 5};
    assert_int_equal(http_server_new(f->loop, &hc, &f->g.http, &err), 0);
    f->port = http_server_port(f->g.http);
    assert_int_equal(gw_audit_start(&f->g, &err), 0);
    if (with_auth) {
        assert_int_equal(gw_auth_start(&f->g, &err), 0); /* before the routes: they get wrapped */
    }
    assert_int_equal(gw_antitheft_start(&f->g, &err), 0);
    assert_int_equal(gw_api_tasks_routes(&f->g, &err), 0);

    add_se(f, "AT-1", "8613900000001", true);
    add_se(f, "AT-2", "8613900000002", true);
    add_se(f, "AT-3", "8613900000003", true);
    add_se(f, "AT-4", "8613900000004", true);
    add_se(f, "AT-NOCIPH", "8613900000010", false);
    add_se(f, "AT-NOPORCC", "8613900000011", false);
    add_se(f, "AT-DES", "8613900000012", false);
    add_se(f, "AT-NOKEY", "8613900000013", false);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    for (int i = 1; i <= 4; i++) {
        char s[8];
        snprintf(s, sizeof(s), "AT-%d", i);
        put_keys(f, s, 0x16, 0x39, false); /* CC, cipher, counter higher; PoR always, CC'd */
    }
    put_keys(f, "AT-NOCIPH", 0x12, 0x39, false);  /* no ciphering */
    put_keys(f, "AT-NOPORCC", 0x16, 0x31, false); /* PoR without CC */
    put_keys(f, "AT-DES", 0x16, 0x39, true);      /* single DES */

    f->tokens = PARTS_PER_TICK;
    ev_timer_init(&f->tick, tick_cb, TICK_S, TICK_S);
    f->tick.data = f;
    ev_timer_start(f->loop, &f->tick);
    *state = f;
    return 0;
}

static int setup_auth(void **state)
{
    with_auth = true;
    int rc = setup(state);
    with_auth = false;
    return rc;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ev_timer_stop(f->loop, &f->tick);
    eng_close(f->g.eng);
    http_server_free(f->g.http);
    gw_auth_stop(&f->g);
    gw_keys_close(f->g.keys);
    gw_antitheft_stop(&f->g);
    gw_audit_stop(&f->g);
    gw_conf_fini(&f->g.conf);
    fclose(f->g.log);
    ev_loop_destroy(f->loop);
    ota_crypto_free(f->cx);
    free(f->q);
    (void)ts_rmdir_tree(f->dir);
    free(f);
    return 0;
}

/* ---- client ---------------------------------------------------------------------------- */

static void http_do(struct fx *f, const char *method, const char *path, const char *body,
                    struct ts_http_resp *r)
{
    ts_http_do(f->loop, f->port, method, path, NULL, body, true, r);
}

static void assert_status(const struct ts_http_resp *r, int status)
{
    if (r->status != status) {
        fail_msg("status %d, wanted %d: %s", r->status, status, r->body);
    }
}

static int64_t post_ok(struct fx *f, const char *action, const char *body)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/antitheft/%s", action);
    struct ts_http_resp r;
    http_do(f, "POST", path, body, &r);
    assert_status(&r, 202);
    assert_non_null(r.json);
    int64_t id = json_integer_value(json_object_get(r.json, "id"));
    assert_true(id > 0);
    assert_string_equal(ts_jstr(r.json, "state"), "requested");
    ts_http_resp_free(&r);
    return id;
}

static void post_err(struct fx *f, const char *path, const char *body, int status, const char *code)
{
    struct ts_http_resp r;
    http_do(f, "POST", path, body, &r);
    ts_http_assert_error(&r, status, code);
    ts_http_resp_free(&r);
}

/* GET /v1/antitheft/{id}; the caller frees r. */
static void get_req(struct fx *f, int64_t id, struct ts_http_resp *r)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/antitheft/%lld", (long long)id);
    http_do(f, "GET", path, NULL, r);
    assert_status(r, 200);
    assert_non_null(r->json);
}

static void run_ms(struct fx *f, double ms)
{
    double end = ev_time() + ms / 1000.0;
    while (ev_time() < end) {
        ev_run(f->loop, EVRUN_ONCE);
    }
}

/* Run the loop until the request's state is want (bounded); returns ms waited, or -1. */
static double wait_state(struct fx *f, int64_t id, const char *want, double max_ms)
{
    double t0 = ev_time();
    for (;;) {
        struct ts_http_resp r;
        get_req(f, id, &r);
        bool ok = strcmp(ts_jstr(r.json, "state"), want) == 0;
        ts_http_resp_free(&r);
        double ms = (ev_time() - t0) * 1000.0;
        if (ok) {
            return ms;
        }
        if (ms > max_ms) {
            return -1;
        }
        run_ms(f, 5);
    }
}

static bool log_has(struct fx *f, const char *needle)
{
    fflush(f->g.log);
    FILE *r = fopen(f->logpath, "r");
    assert_non_null(r);
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof(line), r)) {
        found = strstr(line, needle) != NULL;
    }
    fclose(r);
    return found;
}

static uint64_t accepted(struct fx *f)
{
    struct eng_stats s;
    eng_stats(f->g.eng, &s);
    return s.accepted;
}

/* ---- the minimum security, as a function ------------------------------------------------ */

static void test_spi_minimum(void **state)
{
    (void)state;
    struct ota_err err;
    uint8_t out[2] = {0xEE, 0xEE};
    bool weaker = true;
    /* already at the minimum: unchanged */
    static const uint8_t ok[2] = {0x16, 0x39};
    assert_int_equal(eng_spi_antitheft(ok, 0x12, 0x12, out, &weaker, &err), 0);
    assert_false(weaker);
    assert_memory_equal(out, ok, 2);
    /* counter "exactly one higher" is stricter than "higher": kept */
    static const uint8_t plus1[2] = {0x1E, 0x29};
    assert_int_equal(eng_spi_antitheft(plus1, 0x12, 0x12, out, &weaker, &err), 0);
    assert_false(weaker);
    assert_memory_equal(out, plus1, 2);
    /* nothing at all (no CC, no cipher, no counter, no PoR): every bit forced */
    static const uint8_t none[2] = {0x00, 0x00};
    assert_int_equal(eng_spi_antitheft(none, 0x12, 0x12, out, &weaker, &err), 0);
    assert_true(weaker);
    assert_int_equal(out[0], 0x16);
    assert_int_equal(out[1], 0x09);
    /* RC instead of CC, counter not checked, PoR on error only: forced up, PoR via kept */
    static const uint8_t rc[2] = {0x0D, 0x22};
    assert_int_equal(eng_spi_antitheft(rc, 0x12, 0x12, out, &weaker, &err), 0);
    assert_true(weaker);
    assert_int_equal(out[0], 0x16);
    assert_int_equal(out[1], 0x29);
    /* algorithms below 112 bits or implicit: refused, out untouched */
    uint8_t keep[2] = {0xAB, 0xCD};
    assert_int_equal(eng_spi_antitheft(ok, 0x11, 0x12, keep, NULL, &err), -EPERM); /* DES */
    assert_int_equal(err.code, OTA_ERR_KEY);
    assert_int_equal(eng_spi_antitheft(ok, 0x12, 0x11, keep, NULL, &err), -EPERM); /* DES MAC */
    assert_int_equal(eng_spi_antitheft(ok, 0x10, 0x12, keep, NULL, &err), -EPERM); /* implicit */
    assert_int_equal(eng_spi_antitheft(ok, 0x12, 0x10, keep, NULL, &err), -EPERM);
    assert_int_equal(eng_spi_antitheft(ok, 0x1D, 0x12, keep, NULL, &err), -EPERM); /* DES ECB */
    /* 3DES two and three keys pass */
    assert_int_equal(eng_spi_antitheft(ok, 0x15, 0x15, out, NULL, &err), 0);
    assert_int_equal(eng_spi_antitheft(ok, 0x19, 0x19, out, NULL, &err), 0);
    /* undecodable SPI (reserved bits) or proprietary algorithm */
    static const uint8_t bad[2] = {0xE0, 0x00};
    assert_int_equal(eng_spi_antitheft(bad, 0x12, 0x12, keep, NULL, &err), -EINVAL);
    assert_int_equal(eng_spi_antitheft(ok, 0x13, 0x12, keep, NULL, &err), -EINVAL);
    assert_int_equal(keep[0], 0xAB);
    assert_int_equal(keep[1], 0xCD);
}

/* ---- the proof: a lock jumps a 20,000-SE campaign ------------------------------------------- */

static void test_lock_jumps_campaign(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    for (int i = 0; i < BULK_N; i++) {
        char seid[16], msisdn[16];
        snprintf(seid, sizeof(seid), "B%05d", i);
        snprintf(msisdn, sizeof(msisdn), "86137%08d", i);
        assert_int_equal(eng_se_register(f->g.eng, seid, msisdn, "bulk", &err), 0);
    }
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    /* the campaign first, with a rate cap above what the bearer takes (its backlog fills) */
    struct eng_job_spec js = {
        .kind = ENG_JOB_FILTER,
        .tmpl = {.op = TASK_OP_SCP80,
                 .channel = TASK_CH_SCP80,
                 .params = "{\"tar\":\"000000\",\"script\":\"80ca9f7f00\"}",
                 .prio = 1},
        .batch = "bulk",
        .rate_per_s = 2000,
    };
    int64_t job = 0;
    assert_int_equal(eng_job_submit(f->g.eng, &js, NULL, NULL, &job, &err), 0);
    run_ms(f, 1500);
    struct eng_stats es;
    eng_stats(f->g.eng, &es);
    /* the gap being closed: a full pre-built backlog waits for the bearer */
    assert_true(es.waiting_bearer >= 1000);

    double t0 = ev_time();
    int64_t id = post_ok(f, "lock",
                         "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\",\"request_id\":\"r-1\"}");
    double waited = wait_state(f, id, "executed", 10000);
    double total_ms = (ev_time() - t0) * 1000.0;
    assert_true(waited >= 0);
    /* seconds at most (the backlog alone is 5 s of bearer time at 200 parts/s) */
    assert_true(total_ms < 3000);

    struct eng_job_progress jp;
    assert_int_equal(eng_job_progress(f->g.eng, job, &jp, &err), 0);
    uint64_t gone = 0;
    for (int s = TASK_DISPATCHED; s < TASK_STATE__COUNT; s++) {
        gone += jp.counts[s];
    }
    /* most of the batch still waits: queued, or not even expanded yet */
    assert_true(gone < 5000);
    assert_true(BULK_N - gone >= 15000);

    struct ts_http_resp r;
    get_req(f, id, &r);
    assert_string_equal(ts_jstr(r.json, "action"), "lock");
    assert_string_equal(ts_jstr(r.json, "seid"), "AT-1");
    assert_string_equal(ts_jstr(r.json, "msisdn"), "8613900000001");
    assert_string_equal(ts_jstr(r.json, "request_id"), "r-1");
    assert_string_equal(ts_jstr(r.json, "task_state"), "done");
    json_t *por = json_object_get(r.json, "proof_of_receipt");
    assert_true(json_is_true(json_object_get(por, "verified")));
    assert_string_equal(ts_jstr(por, "status"), "00");
    assert_true(json_is_true(json_object_get(por, "within_bound")));
    json_int_t ms = json_integer_value(json_object_get(por, "ms"));
    assert_true(ms >= 0 && ms < 3000);
    assert_int_equal(json_integer_value(json_object_get(por, "bound_ms")), 900000);
    json_t *ex = json_object_get(r.json, "proof_of_execution");
    assert_true(json_is_true(json_object_get(ex, "executed")));
    assert_int_equal(json_integer_value(json_object_get(ex, "commands")), 3);
    json_t *sws = json_object_get(ex, "status_words");
    assert_int_equal(json_array_size(sws), 3);
    assert_string_equal(json_string_value(json_array_get(sws, 2)), "9000");
    json_t *sec = json_object_get(r.json, "security");
    assert_string_equal(ts_jstr(sec, "spi"), "1639");
    json_t *life = json_object_get(r.json, "life");
    assert_int_equal(json_array_size(life), 4);
    static const char *const stages[] = {"requested", "sent", "por-verified", "executed"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(ts_jstr(json_array_get(life, i), "stage"), stages[i]);
    }
    ts_http_resp_free(&r);
    /* the card got the whole script in one packet with the key set's (strong) SPI */
    assert_int_equal(f->cards[0].packets, 1);
    assert_int_equal(f->cards[0].last_n_cmds, 3);

    /* exposed: the stats route and a log line, against the 15-minute bound */
    http_do(f, "GET", "/v1/stats", NULL, &r);
    assert_status(&r, 200);
    json_t *at = json_object_get(r.json, "antitheft");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(at, "lock"), "executed")),
                     1);
    json_t *sp = json_object_get(at, "por");
    assert_int_equal(json_integer_value(json_object_get(sp, "verified")), 1);
    assert_int_equal(json_integer_value(json_object_get(sp, "over_bound")), 0);
    assert_true(json_integer_value(json_object_get(sp, "last_ms")) < 3000);
    ts_http_resp_free(&r);
    assert_true(log_has(f, "antitheft por verified"));
    assert_true(log_has(f, "within_bound=yes"));
    assert_true(log_has(f, "antitheft requested"));
    assert_true(log_has(f, "state=executed reason=none sw=9000,9000,9000"));
}

/* ---- replayed, lower-counter, tampered and unprotected PoRs ---------------------------------- */

static void test_por_replay_refused(void **state)
{
    struct fx *f = *state;
    struct card *c = &f->cards[0]; /* AT-1 */
    int64_t lock = post_ok(
        f, "lock", "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\",\"request_id\":\"r-l\"}");
    assert_true(wait_state(f, lock, "executed", 5000) >= 0);
    uint8_t old[200];
    size_t old_len = c->por_len;
    memcpy(old, c->por, old_len);
    uint64_t old_cntr = c->last_cntr;

    c->silent = true;
    int64_t un = post_ok(f, "unlock",
                         "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\",\"request_id\":\"r-u\"}");
    assert_true(wait_state(f, un, "sent", 5000) >= 0);
    assert_true(c->last_cntr > old_cntr);
    struct eng_stats s0, s1;
    eng_stats(f->g.eng, &s0);

    /* the lock's PoR again: verified, our TAR, a lower counter -> only recorded as late */
    card_deliver(f, c, old, old_len);
    run_ms(f, 50);
    eng_stats(f->g.eng, &s1);
    assert_int_equal(s1.late, s0.late + 1);
    struct ts_http_resp r;
    get_req(f, un, &r);
    assert_string_equal(ts_jstr(r.json, "state"), "sent");
    assert_false(
        json_is_true(json_object_get(json_object_get(r.json, "proof_of_receipt"), "verified")));
    assert_int_equal(json_array_size(json_object_get(r.json, "life")), 2); /* requested, sent */
    ts_http_resp_free(&r);

    /* the right PoR with one octet of its checksum changed: refused */
    uint8_t por[200];
    size_t pl = card_por(f, c, true, por, sizeof(por));
    uint8_t bad[200];
    memcpy(bad, por, pl);
    bad[pl - 1] ^= 0x01;
    card_deliver(f, c, bad, pl);
    /* an unprotected "ok" for the right counter: never trusted */
    uint8_t plain[200];
    size_t ul = card_por(f, c, false, plain, sizeof(plain));
    card_deliver(f, c, plain, ul);
    run_ms(f, 50);
    eng_stats(f->g.eng, &s0);
    assert_int_equal(s0.mismatched, s1.mismatched + 2);
    get_req(f, un, &r);
    assert_string_equal(ts_jstr(r.json, "state"), "sent");
    ts_http_resp_free(&r);

    /* the genuine PoR completes it; a replay of that one afterwards changes nothing */
    card_deliver(f, c, por, pl);
    assert_true(wait_state(f, un, "executed", 5000) >= 0);
    card_deliver(f, c, por, pl);
    run_ms(f, 50);
    get_req(f, un, &r);
    assert_string_equal(ts_jstr(r.json, "state"), "executed");
    assert_string_equal(ts_jstr(r.json, "action"), "unlock");
    ts_http_resp_free(&r);
}

/* ---- every anti-theft PoR CC-protected, errors too (X.1127 minimum security) ----------------- */

static uint64_t por_refused(struct fx *f)
{
    uint64_t n[STORE_REP__COUNT][STORE_DISP__COUNT];
    struct ota_err err;
    assert_int_equal(store_report_counts(eng_store(f->g.eng), n, &err), 0);
    return n[STORE_REP_POR][STORE_DISP_MISMATCHED];
}

static const char *life_at(json_t *o, size_t i, const char *stage)
{
    json_t *l = json_array_get(json_object_get(o, "life"), i);
    assert_non_null(l);
    assert_string_equal(ts_jstr(l, "stage"), stage);
    return json_string_value(json_object_get(l, "at"));
}

static void test_por_error_needs_cc(void **state)
{
    struct fx *f = *state;
    struct card *c = &f->cards[1]; /* AT-2 */
    c->silent = true;
    int64_t id = post_ok(
        f, "lock", "{\"seid\":\"AT-2\",\"msisdn\":\"8613900000002\",\"request_id\":\"r-cc\"}");
    assert_true(wait_state(f, id, "sent", 5000) >= 0);
    /* the time it went out is kept: not null once sent */
    struct ts_http_resp r;
    get_req(f, id, &r);
    const char *req_at = ts_jstr(r.json, "requested_at");
    const char *sent_at = life_at(r.json, 1, "sent");
    assert_non_null(sent_at);
    assert_true(strcmp(req_at, sent_at) <= 0);
    char sent_copy[64];
    snprintf(sent_copy, sizeof(sent_copy), "%s", sent_at);
    ts_http_resp_free(&r);

    struct eng_stats s0, s1;
    eng_stats(f->g.eng, &s0);
    uint64_t ref0 = por_refused(f);
    /* an error PoR for our TAR and counter, unprotected (as a forger, or a card, sends it) */
    uint8_t por[200];
    size_t pl = card_por_st(f, c, false, OTA_SCP80_ST_RC_CC_DS_FAILED, false, por, sizeof(por));
    card_deliver(f, c, por, pl);
    /* an error PoR whose checksum was made with another key */
    pl = card_por_st(f, c, true, OTA_SCP80_ST_TAR_UNKNOWN, true, por, sizeof(por));
    card_deliver(f, c, por, pl);
    run_ms(f, 50);
    eng_stats(f->g.eng, &s1);
    assert_int_equal(s1.mismatched, s0.mismatched + 2);
    assert_int_equal(por_refused(f), ref0 + 2);
    assert_int_equal(s1.failed, s0.failed);
    get_req(f, id, &r);
    assert_string_equal(ts_jstr(r.json, "state"), "sent");
    assert_string_equal(ts_jstr(r.json, "reason"), "none");
    assert_true(
        json_is_null(json_object_get(json_object_get(r.json, "proof_of_receipt"), "status")));
    ts_http_resp_free(&r);

    /* the genuine PoR completes it; the sent time stays the packet's */
    card_reply_last(f, c);
    assert_true(wait_state(f, id, "executed", 5000) >= 0);
    get_req(f, id, &r);
    assert_true(
        json_is_true(json_object_get(json_object_get(r.json, "proof_of_receipt"), "verified")));
    assert_string_equal(life_at(r.json, 1, "sent"), sent_copy);
    const char *por_at = life_at(r.json, 2, "por-verified");
    assert_non_null(por_at);
    assert_true(strcmp(sent_copy, por_at) <= 0);
    ts_http_resp_free(&r);

    /* a verified error PoR still fails a request (the card said no) */
    c = &f->cards[2]; /* AT-3 */
    c->silent = true;
    id = post_ok(f, "wipe",
                 "{\"seid\":\"AT-3\",\"msisdn\":\"8613900000003\",\"request_id\":\"r-err\"}");
    assert_true(wait_state(f, id, "sent", 5000) >= 0);
    pl = card_por_st(f, c, true, OTA_SCP80_ST_INSUFFICIENT_MEMORY, false, por, sizeof(por));
    card_deliver(f, c, por, pl);
    assert_true(wait_state(f, id, "failed", 5000) >= 0);
    get_req(f, id, &r);
    assert_string_equal(ts_jstr(r.json, "reason"), "por-status");
    assert_false(
        json_is_true(json_object_get(json_object_get(r.json, "proof_of_receipt"), "verified")));
    assert_non_null(life_at(r.json, 1, "sent"));
    ts_http_resp_free(&r);
}

/* ---- key sets below the minimum ------------------------------------------------------------ */

static void test_keyset_too_weak(void **state)
{
    struct fx *f = *state;
    uint64_t n0 = accepted(f);
    post_err(f, "/v1/antitheft/lock",
             "{\"seid\":\"AT-NOCIPH\",\"msisdn\":\"8613900000010\",\"request_id\":\"w1\"}", 409,
             "keyset-too-weak");
    post_err(f, "/v1/antitheft/lock",
             "{\"seid\":\"AT-NOPORCC\",\"msisdn\":\"8613900000011\",\"request_id\":\"w2\"}", 409,
             "keyset-too-weak");
    post_err(f, "/v1/antitheft/wipe",
             "{\"seid\":\"AT-DES\",\"msisdn\":\"8613900000012\",\"request_id\":\"w3\"}", 409,
             "keyset-too-weak");
    post_err(f, "/v1/antitheft/unlock",
             "{\"seid\":\"AT-NOKEY\",\"msisdn\":\"8613900000013\",\"request_id\":\"w4\"}", 409,
             "keyset-missing");
    assert_int_equal(accepted(f), n0);
    assert_true(log_has(f, "action=lock se=AT-NOCIPH code=keyset-too-weak"));

    /* a weaker SPI reaching the engine after the check is forced up, never sent as is */
    f->weaken = true;
    int64_t id = post_ok(f, "lock",
                         "{\"seid\":\"AT-2\",\"msisdn\":\"8613900000002\",\"request_id\":\"w5\"}");
    assert_true(wait_state(f, id, "executed", 5000) >= 0);
    struct card *c = &f->cards[1]; /* AT-2 */
    assert_int_equal(c->packets, 1);
    assert_int_equal(c->last_spi[0], 0x16); /* CC, ciphered, counter higher */
    assert_int_equal(c->last_spi[1], 0x09); /* PoR always, CC-protected */
}

/* ---- binding, loss list, preemption, configuration ------------------------------------------ */

static void test_msisdn_and_loss_list(void **state)
{
    struct fx *f = *state;
    uint64_t n0 = accepted(f);
    post_err(f, "/v1/antitheft/lock",
             "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000002\",\"request_id\":\"m1\"}", 409,
             "msisdn-mismatch");
    post_err(f, "/v1/antitheft/wipe",
             "{\"seid\":\"NOPE\",\"msisdn\":\"8613900000002\",\"request_id\":\"m2\"}", 404,
             "se-not-found");
    assert_int_equal(accepted(f), n0);

    /* a loss-listed SE: refused to every other task, locked all the same (spec 5.5.2) */
    struct ota_err err;
    int64_t lid = 0;
    assert_int_equal(store_loss_put(eng_store(f->g.eng), STORE_LOSS_SEID, "AT-3", "stolen",
                                    api_now_ms(), &lid, &err),
                     0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    struct ts_http_resp r;
    http_do(f, "POST", "/v1/tasks",
            "{\"seid\":\"AT-3\",\"op\":\"scp80\",\"params\":{\"tar\":\"000000\","
            "\"script\":\"80ca9f7f00\"}}",
            &r);
    assert_true(r.status >= 400);
    ts_http_resp_free(&r);
    int64_t id = post_ok(f, "lock",
                         "{\"seid\":\"AT-3\",\"msisdn\":\"8613900000003\",\"request_id\":\"m3\"}");
    assert_true(wait_state(f, id, "executed", 5000) >= 0);

    /* the urgent lane is anti-theft's alone: the task API takes priorities 0..2 */
    http_do(f, "POST", "/v1/tasks",
            "{\"seid\":\"AT-1\",\"op\":\"scp80\",\"priority\":3,\"params\":{\"tar\":"
            "\"000000\",\"script\":\"80ca9f7f00\"}}",
            &r);
    assert_int_equal(r.status, 400);
    ts_http_resp_free(&r);
    /* the generic task API cannot create anti-theft tasks */
    http_do(f, "POST", "/v1/tasks",
            "{\"seid\":\"AT-1\",\"op\":\"antitheft-lock\",\"params\":{\"tar\":\"000000\","
            "\"script\":\"80ca9f7f00\"}}",
            &r);
    ts_http_assert_error(&r, 400, "invalid-field");
    ts_http_resp_free(&r);
    /* and the anti-theft GET shows no other task */
    int64_t other = 0;
    struct eng_task_spec ts = {.seid = "AT-1",
                               .op = TASK_OP_SCP80,
                               .channel = TASK_CH_SCP80,
                               .params = "{\"tar\":\"000000\",\"script\":\"80ca9f7f00\"}",
                               .not_before_ms = api_now_ms() + 3600000};
    assert_int_equal(eng_submit(f->g.eng, &ts, NULL, NULL, &other, &err), 0);
    char path[64];
    snprintf(path, sizeof(path), "/v1/antitheft/%lld", (long long)other);
    http_do(f, "GET", path, NULL, &r);
    ts_http_assert_error(&r, 404, "not-found");
    ts_http_resp_free(&r);
}

static void test_preempt_and_config(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    struct card *c = &f->cards[3]; /* AT-4 */
    c->silent = true;
    /* a platform's task holds AT-4's one link, waiting for a PoR that will not come soon */
    int64_t plat = 0;
    struct eng_task_spec ts = {.seid = "AT-4",
                               .op = TASK_OP_SCP80,
                               .channel = TASK_CH_SCP80,
                               .params = "{\"tar\":\"000000\",\"script\":\"80ca9f7f00\"}",
                               .prio = 1};
    assert_int_equal(eng_submit(f->g.eng, &ts, NULL, NULL, &plat, &err), 0);
    run_ms(f, 100);
    struct eng_task_view v;
    assert_int_equal(eng_task_get(f->g.eng, plat, &v, &err), 0);
    assert_int_equal(v.state, TASK_SUBMITTED);
    int64_t id = post_ok(f, "wipe",
                         "{\"seid\":\"AT-4\",\"msisdn\":\"8613900000004\",\"request_id\":\"p1\"}");
    assert_int_equal(eng_task_get(f->g.eng, plat, &v, &err), 0);
    assert_int_equal(v.state, TASK_CANCELLED);
    assert_int_equal(v.reason, TASK_R_TERMINATED);
    assert_true(wait_state(f, id, "sent", 5000) >= 0);
    assert_int_equal(c->last_n_cmds, 2); /* DELETE of each application, no card lock */
    card_reply_last(f, c);
    assert_true(wait_state(f, id, "executed", 5000) >= 0);
    assert_true(log_has(f, "antitheft preempted"));

    /* nothing to wipe when no application is configured */
    f->g.conf.at_n_apps = 0;
    post_err(f, "/v1/antitheft/wipe",
             "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\",\"request_id\":\"p2\"}", 409,
             "not-configured");
    /* lock still has the card lock */
    int64_t lk = post_ok(f, "lock",
                         "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\",\"request_id\":\"p3\"}");
    assert_true(wait_state(f, lk, "executed", 5000) >= 0);
    assert_int_equal(f->cards[0].last_n_cmds, 1);
    f->g.conf.at_card_lock = false;
    post_err(f, "/v1/antitheft/lock",
             "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\",\"request_id\":\"p4\"}", 409,
             "not-configured");
}

/* ---- request_id and bad input --------------------------------------------------------------- */

static void test_idempotent_request_id(void **state)
{
    struct fx *f = *state;
    f->cards[1].silent = true; /* keep it in flight */
    const char *body = "{\"seid\":\"AT-2\",\"msisdn\":\"8613900000002\",\"request_id\":\"i-1\"}";
    int64_t id = post_ok(f, "lock", body);
    uint64_t n0 = accepted(f);
    struct ts_http_resp r;
    /* the same request again (keys in another order): the same answer, nothing new */
    http_do(f, "POST", "/v1/antitheft/lock",
            "{\"request_id\":\"i-1\",\"seid\":\"AT-2\",\"msisdn\":\"8613900000002\"}", &r);
    assert_status(&r, 202);
    assert_int_equal(json_integer_value(json_object_get(r.json, "id")), id);
    char h[16];
    assert_true(ts_http_header(r.head, "Idempotent-Replayed", h, sizeof(h)));
    ts_http_resp_free(&r);
    assert_int_equal(accepted(f), n0);
    /* the same request_id for another action or SE: conflict */
    post_err(f, "/v1/antitheft/wipe", body, 409, "request-id-conflict");
    post_err(f, "/v1/antitheft/lock",
             "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\",\"request_id\":\"i-1\"}", 409,
             "request-id-conflict");
    assert_int_equal(accepted(f), n0);
}

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    uint64_t n0 = accepted(f);
    static const struct {
        const char *path, *body;
        int status;
        const char *code;
    } cases[] = {
        {"/v1/antitheft/lock", "not json", 400, "bad-json"},
        {"/v1/antitheft/lock", "[1]", 400, "bad-json"},
        {"/v1/antitheft/lock", "{\"msisdn\":\"8613900000001\",\"request_id\":\"b\"}", 400,
         "missing-field"},
        {"/v1/antitheft/lock", "{\"seid\":\"AT-1\",\"request_id\":\"b\"}", 400, "missing-field"},
        {"/v1/antitheft/lock", "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\"}", 400,
         "missing-field"},
        {"/v1/antitheft/lock", "{\"seid\":1,\"msisdn\":\"8613900000001\",\"request_id\":\"b\"}",
         400, "bad-type"},
        {"/v1/antitheft/lock",
         "{\"seid\":\"AT 1\",\"msisdn\":\"8613900000001\",\"request_id\":\"b\"}", 400,
         "invalid-field"},
        {"/v1/antitheft/lock", "{\"seid\":\"\",\"msisdn\":\"8613900000001\",\"request_id\":\"b\"}",
         400, "invalid-field"},
        {"/v1/antitheft/lock",
         "{\"seid\":\"AT-1\",\"msisdn\":\"+8613900000001\","
         "\"request_id\":\"b\"}",
         400, "invalid-field"},
        {"/v1/antitheft/lock",
         "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001234567890\","
         "\"request_id\":\"b\"}",
         400, "invalid-field"},
        {"/v1/antitheft/lock",
         "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\","
         "\"request_id\":\"\"}",
         400, "invalid-field"},
        {"/v1/antitheft/lock",
         "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\",\"request_id\":"
         "\"0123456789012345678901234567890123456789012345678901234567890123x\"}",
         400, "invalid-field"},
        {"/v1/antitheft/lock",
         "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\","
         "\"request_id\":\"b\",\"callback_url\":\"ftp://x\"}",
         400, "invalid-field"},
        /* the one SEID rule (api_seid_ok): an SEID is a URL path segment */
        {"/v1/antitheft/lock",
         "{\"seid\":\"AT/1\",\"msisdn\":\"8613900000001\",\"request_id\":\"b\"}", 400,
         "invalid-field"},
        {"/v1/antitheft/wipe",
         "{\"seid\":\"AT%1\",\"msisdn\":\"8613900000001\",\"request_id\":\"b\"}", 400,
         "invalid-field"},
        {"/v1/antitheft/lock",
         "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\","
         "\"request_id\":\"b\",\"prio\":3}",
         400, "unknown-field"},
        {"/v1/antitheft/unlock",
         "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\","
         "\"request_id\":\"b\",\"callback_url\":7}",
         400, "bad-type"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ts_http_resp r;
        http_do(f, "POST", cases[i].path, cases[i].body, &r);
        if (r.status != cases[i].status) {
            fail_msg("case %zu: status %d: %s", i, r.status, r.body);
        }
        ts_http_assert_error(&r, cases[i].status, cases[i].code);
        ts_http_resp_free(&r);
    }
    assert_int_equal(accepted(f), n0);
    struct ts_http_resp r;
    http_do(f, "GET", "/v1/antitheft/0", NULL, &r);
    ts_http_assert_error(&r, 400, "invalid-id");
    ts_http_resp_free(&r);
    http_do(f, "GET", "/v1/antitheft/abc", NULL, &r);
    ts_http_assert_error(&r, 400, "invalid-id");
    ts_http_resp_free(&r);
    http_do(f, "GET", "/v1/antitheft/99999", NULL, &r);
    ts_http_assert_error(&r, 404, "not-found");
    ts_http_resp_free(&r);
    /* a callback_url is kept with the request */
    int64_t id = post_ok(f, "lock",
                         "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\",\"request_id\":\"b-ok\","
                         "\"callback_url\":\"http://127.0.0.1:9/cb\"}");
    get_req(f, id, &r);
    assert_string_equal(ts_jstr(r.json, "callback_url"), "http://127.0.0.1:9/cb");
    ts_http_resp_free(&r);
}

/* ---- roles (auth on) ------------------------------------------------------------------------ */

static void do_auth(struct fx *f, const char *method, const char *path, const char *tok,
                    const char *body, struct ts_http_resp *r)
{
    char h[200] = "";
    if (tok) {
        snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok);
    }
    ts_http_do(f->loop, f->port, method, path, tok ? h : NULL, body, true, r);
}

static void test_roles(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    char at1[GW_AUTH_TOKEN_LEN + 1], at2[GW_AUTH_TOKEN_LEN + 1], plat[GW_AUTH_TOKEN_LEN + 1],
        adm[GW_AUTH_TOKEN_LEN + 1];
    int64_t tid;
    assert_int_equal(
        gw_auth_token_create(&f->g, "test", "as-1", GW_ROLE_ANTITHEFT, at1, &tid, &err), 0);
    assert_int_equal(
        gw_auth_token_create(&f->g, "test", "as-2", GW_ROLE_ANTITHEFT, at2, &tid, &err), 0);
    assert_int_equal(
        gw_auth_token_create(&f->g, "test", "plat", GW_ROLE_PLATFORM, plat, &tid, &err), 0);
    assert_int_equal(gw_auth_token_create(&f->g, "test", "adm", GW_ROLE_ADMIN, adm, &tid, &err), 0);
    const char *body = "{\"seid\":\"AT-1\",\"msisdn\":\"8613900000001\",\"request_id\":\"q1\"}";
    uint64_t n0 = accepted(f);
    struct ts_http_resp r;
    do_auth(f, "POST", "/v1/antitheft/lock", NULL, body, &r);
    ts_http_assert_error(&r, 401, "unauthorized");
    ts_http_resp_free(&r);
    /* only the anti-theft role: a platform and even an admin are refused */
    do_auth(f, "POST", "/v1/antitheft/lock", plat, body, &r);
    ts_http_assert_error(&r, 403, "forbidden");
    ts_http_resp_free(&r);
    do_auth(f, "POST", "/v1/antitheft/wipe", adm, body, &r);
    ts_http_assert_error(&r, 403, "forbidden");
    ts_http_resp_free(&r);
    assert_int_equal(accepted(f), n0);
    do_auth(f, "POST", "/v1/antitheft/lock", at1, body, &r);
    assert_status(&r, 202);
    int64_t id = json_integer_value(json_object_get(r.json, "id"));
    ts_http_resp_free(&r);
    char path[64];
    snprintf(path, sizeof(path), "/v1/antitheft/%lld", (long long)id);
    do_auth(f, "GET", path, at1, NULL, &r);
    assert_status(&r, 200);
    ts_http_resp_free(&r);
    /* another authorisation server does not see it; request_id is per principal */
    do_auth(f, "GET", path, at2, NULL, &r);
    ts_http_assert_error(&r, 404, "not-found");
    ts_http_resp_free(&r);
    do_auth(f, "GET", path, plat, NULL, &r);
    ts_http_assert_error(&r, 403, "forbidden");
    ts_http_resp_free(&r);
    do_auth(f, "POST", "/v1/antitheft/lock", at2, body, &r);
    assert_status(&r, 202);
    assert_true(json_integer_value(json_object_get(r.json, "id")) != id);
    ts_http_resp_free(&r);
    assert_int_equal(accepted(f), n0 + 2);
}

/*
 * request_id records are hashed: with the longest principal name and two
 * longest request_ids that differ only in their last character, the plain
 * "antitheft/<actor>/<rid>" (139 characters) was cut to 128 and the second
 * request was taken for the first. And no staff Idempotency-Key can name
 * such a record: the derived keys' prefixes are refused as raw keys.
 */
static void test_long_request_ids_distinct(void **state)
{
    struct fx *f = *state;
    struct ota_err err;
    char name[GW_AUTH_NAME_MAX + 1], tok[GW_AUTH_TOKEN_LEN + 1], adm[GW_AUTH_TOKEN_LEN + 1];
    memset(name, 'n', GW_AUTH_NAME_MAX);
    name[GW_AUTH_NAME_MAX] = '\0';
    int64_t tid;
    assert_int_equal(gw_auth_token_create(&f->g, "test", name, GW_ROLE_ANTITHEFT, tok, &tid, &err),
                     0);
    assert_int_equal(gw_auth_token_create(&f->g, "test", "adm", GW_ROLE_ADMIN, adm, &tid, &err), 0);
    char rid[AT_REQ_ID_MAX_T + 1];
    memset(rid, 'r', AT_REQ_ID_MAX_T);
    rid[AT_REQ_ID_MAX_T] = '\0';
    char body[2][256];
    int64_t id[2];
    uint64_t n0 = accepted(f);
    for (int i = 0; i < 2; i++) {
        rid[AT_REQ_ID_MAX_T - 1] = (char)('1' + i);
        snprintf(body[i], sizeof(body[i]),
                 "{\"seid\":\"AT-%d\",\"msisdn\":\"861390000000%d\",\"request_id\":\"%s\"}", i + 1,
                 i + 1, rid);
        struct ts_http_resp r;
        do_auth(f, "POST", "/v1/antitheft/lock", tok, body[i], &r);
        assert_status(&r, 202);
        char h[16];
        assert_false(ts_http_header(r.head, "Idempotent-Replayed", h, sizeof(h)));
        id[i] = json_integer_value(json_object_get(r.json, "id"));
        ts_http_resp_free(&r);
    }
    assert_true(id[0] > 0 && id[1] > 0 && id[0] != id[1]);
    assert_int_equal(accepted(f), n0 + 2);
    /* each still replays itself */
    for (int i = 0; i < 2; i++) {
        struct ts_http_resp r;
        do_auth(f, "POST", "/v1/antitheft/lock", tok, body[i], &r);
        assert_status(&r, 202);
        assert_int_equal(json_integer_value(json_object_get(r.json, "id")), id[i]);
        ts_http_resp_free(&r);
    }
    assert_int_equal(accepted(f), n0 + 2);
    /* staff keys with a derived key's prefix are refused before anything is looked up */
    static const char *const reserved[] = {"at:", "at:0123", "p:", "p:abc"};
    for (size_t i = 0; i < OTA_ARRAY_SIZE(reserved); i++) {
        char hdr[160];
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nIdempotency-Key: %s\r\n", adm,
                 reserved[i]);
        struct ts_http_resp r;
        ts_http_do(f->loop, f->port, "POST", "/v1/tasks", hdr,
                   "{\"seid\":\"AT-3\",\"op\":\"push\"}", true, &r);
        ts_http_assert_error(&r, 400, "bad-idempotency-key");
        ts_http_resp_free(&r);
    }
    /* a key that only looks alike is still a key */
    char hdr[160];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nIdempotency-Key: a:t\r\n", adm);
    struct ts_http_resp r;
    ts_http_do(f->loop, f->port, "POST", "/v1/tasks", hdr,
               "{\"seid\":\"AT-3\",\"op\":\"push\",\"schedule\":{\"delay_s\":3600}}", true, &r);
    if (r.status != 201 && r.status != 202) {
        fail_msg("POST /v1/tasks with key a:t: %d %s", r.status, r.body ? r.body : "");
    }
    ts_http_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spi_minimum),
        cmocka_unit_test_setup_teardown(test_lock_jumps_campaign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_por_replay_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_por_error_needs_cc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyset_too_weak, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msisdn_and_loss_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preempt_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_request_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roles, setup_auth, teardown),
        cmocka_unit_test_setup_teardown(test_long_request_ids_distinct, setup_auth, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
