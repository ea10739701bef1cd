/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wallet role: push -> pull -> answer C-APDUs as the card until "done".
 * See wallet.h and docs/simulator.md.
 *
 * Each running session is one small state machine (enum wphase) driven by
 * one HTTP request at a time. An lws connection never calls back into the
 * protocol logic directly: its end (completed, error, closed, timeout) is
 * only recorded and the session's timer, restarted with delay 0, does the
 * work on the next loop turn. That keeps new connections from being opened
 * inside another connection's callback and lets a finished wsi be detached
 * (opaque user data NULL) before anything else happens to the session.
 */
#include "tests/sim/wallet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "tests/sim/gpmodel.h"
#include "tests/sim/sim_int.h"

#define WALLET_MAX_RSP (1024u * 1024u) /* response body bytes */
#define WALLET_MAX_ROUNDS 4096u        /* round trips per session: a looping server ends it */
#define WALLET_APDU_MAX 261u           /* short APDU: 5 + 255 + Le */
#define WALLET_SW_SECURITY 0x6982      /* security status not satisfied */
#define WALLET_SW_AUTH_FAILED 0x6300   /* EXTERNAL AUTHENTICATE refused */

enum wphase {
    WP_PULL = 0,   /* POST /v1/wallet/pull in flight */
    WP_STEP = 1,   /* POST /v1/wallet/sessions/{id} in flight */
    WP_RESULT = 2, /* request ended; timer (0 s) processes it */
};

struct wjob {
    struct wjob *next;
    uint64_t idx;
    struct ota_push push;
};

struct wsess {
    struct sim_wallet *w;
    struct wsess *prev, *next;
    uint64_t idx;
    char seid[2 * SIM_SEID_MAX + 1];
    char serial[2 * OTA_PUSH_SERIAL_LEN + 1];
    char session[128];
    enum wphase phase;
    enum wphase sent; /* which request the result belongs to */
    unsigned rounds;
    struct ota_scp02_card card;
    bool card_init;
    struct lws *wsi;
    unsigned char *out; /* LWS_PRE + body */
    size_t out_len;
    char *rsp;
    size_t rsp_len, rsp_cap;
    int status;
    bool ok; /* the request completed (status and body valid) */
    ev_timer timer;
};

struct sim_wallet {
    struct ev_loop *loop;
    struct sim_pop *pop;
    struct lws_context *ctx;
    struct lws_protocols protocols[2];
    char host[256];
    int port;
    bool tls; /* https:// URL: chain and host name verified against the CA file */
    unsigned max_sessions, max_queue;
    double timeout_s;
    struct wsess *running;
    unsigned n_running;
    struct wjob *q_head, *q_tail;
    unsigned n_queued;
    uint16_t seq;
    char auth[320]; /* "Bearer <token>" or "" */
    ev_timer pump;  /* starts waiting pushes on the next loop turn */
    struct sim_wallet_counts counts;
};

static void sess_kick(struct wsess *s);
static void wallet_pump(struct sim_wallet *w);

/* ---- hex ---- */

static void hex_encode_digits(const uint8_t *b, size_t n, char *dst, const char *digits)
{
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = digits[b[i] >> 4];
        dst[2 * i + 1] = digits[b[i] & 15];
    }
    dst[2 * n] = '\0';
}

static void hex_encode(const uint8_t *b, size_t n, char *dst)
{
    hex_encode_digits(b, n, dst, "0123456789abcdef");
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static int hex_decode(const char *s, uint8_t *dst, size_t cap, size_t *len)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -EINVAL;
        }
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return 0;
}

/* ---- the card ---- */

static size_t put_sw(uint8_t *out, size_t n, uint16_t sw)
{
    out[n] = (uint8_t)(sw >> 8);
    out[n + 1] = (uint8_t)sw;
    return n + 2;
}

/* Run a plain command on the SE's GP model. */
static size_t card_run_plain(struct wsess *s, const uint8_t *cmd, size_t len, uint8_t *out)
{
    struct sim_pop *p = s->w->pop;
    struct sim_se_state *st = NULL;
    struct ota_apdu a;
    struct ota_err e;
    size_t rlen = 0;

    if (sim_pop_state(p, s->idx, &st, &e) || sim_pop_ota(p, st, &e)) {
        return put_sw(out, 0, 0x6F00);
    }
    if (ota_apdu_parse(cmd, len, &a, &e)) {
        return put_sw(out, 0, SIM_SW_WRONG_LENGTH);
    }
    uint16_t sw = sim_gp_run(&st->ota->card, &a, out, 256, &rlen);
    return put_sw(out, rlen, sw);
}

/*
 * Answer one C-APDU as the card: INITIALIZE UPDATE and EXTERNAL
 * AUTHENTICATE through the SCP02 card end, wrapped commands unwrapped, then
 * the GP model. out holds at least 258 octets; returns the R-APDU length.
 */
static size_t card_answer(struct wsess *s, const uint8_t *cmd, size_t len, uint8_t *out)
{
    struct sim_wallet *w = s->w;
    struct ota_err e;
    uint8_t plain[WALLET_APDU_MAX];
    int n;

    if (len < 4) {
        return put_sw(out, 0, SIM_SW_WRONG_LENGTH);
    }
    if ((cmd[0] & 0xFC) == 0x80 && cmd[1] == OTA_SCP02_INS_INIT_UPDATE) {
        struct sim_scp02_keyset ks;
        uint8_t challenge[OTA_SCP02_CARD_CHALLENGE_LEN];
        if (s->card_init) {
            ota_scp02_card_fini(&s->card);
            s->card_init = false;
        }
        if (sim_pop_scp02_keys(w->pop, s->idx, cmd[2], &ks, &e)) {
            return put_sw(out, 0, SIM_SW_REF_NOT_FOUND);
        }
        if (RAND_bytes(challenge, sizeof(challenge)) != 1) {
            OPENSSL_cleanse(&ks, sizeof(ks));
            return put_sw(out, 0, 0x6F00);
        }
        n = ota_scp02_card_init(&s->card, w->pop->crypto, &ks.keys, NULL, ++w->seq, challenge, &e);
        OPENSSL_cleanse(&ks, sizeof(ks));
        if (n) {
            return put_sw(out, 0, 0x6F00);
        }
        s->card_init = true;
        n = ota_scp02_card_on_init_update(&s->card, cmd, len, out, 258, &e);
        return n > 0 ? (size_t)n : put_sw(out, 0, SIM_SW_WRONG_DATA);
    }
    if ((cmd[0] & 0x04) && cmd[1] == OTA_SCP02_INS_EXT_AUTH) {
        if (!s->card_init || s->card.state != OTA_SCP02_CST_INIT_UPDATED) {
            return put_sw(out, 0, SIM_SW_COND);
        }
        n = ota_scp02_card_on_ext_auth(&s->card, cmd, len, &e);
        return put_sw(out, 0, n == 0 ? SIM_SW_OK : WALLET_SW_AUTH_FAILED);
    }
    /* the ISD runs card content management only inside an open secure channel */
    if (!s->card_init || s->card.state != OTA_SCP02_CST_OPEN) {
        return put_sw(out, 0, WALLET_SW_SECURITY);
    }
    if (!(cmd[0] & 0x04)) {
        if (s->card.sl != OTA_SCP02_SL_NONE) {
            return put_sw(out, 0, WALLET_SW_SECURITY);
        }
        return card_run_plain(s, cmd, len, out);
    }
    n = ota_scp02_card_unwrap(&s->card, cmd, len, plain, sizeof(plain), &e);
    if (n < 0) {
        return put_sw(out, 0, WALLET_SW_SECURITY);
    }
    return card_run_plain(s, plain, (size_t)n, out);
}

/* ---- sessions ---- */

static void sess_free(struct wsess *s)
{
    struct sim_wallet *w = s->w;
    ev_timer_stop(w->loop, &s->timer);
    if (s->wsi) {
        lws_set_opaque_user_data(s->wsi, NULL);
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        s->wsi = NULL;
    }
    if (s->card_init) {
        ota_scp02_card_fini(&s->card);
    }
    if (s->prev) {
        s->prev->next = s->next;
    } else {
        w->running = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    w->n_running--;
    free(s->out);
    free(s->rsp);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

/*
 * Start waiting pushes on the next loop turn, never from inside the caller:
 * a push arrives inside a network role's callback, and a session that fails
 * at once would otherwise recurse through the whole FIFO.
 */
static void wallet_pump_later(struct sim_wallet *w)
{
    if (w->q_head && !ev_is_active(&w->pump)) {
        ev_timer_set(&w->pump, 0., 0.);
        ev_timer_start(w->loop, &w->pump);
    }
}

/* End of a session: free it and let a waiting push take the slot. */
static void sess_end(struct wsess *s)
{
    struct sim_wallet *w = s->w;
    sess_free(s);
    wallet_pump_later(w);
}

/*
 * The current request on wsi is over (ok = completed); process it on the
 * next loop turn. wsi is detached first: its later callbacks see no session.
 */
static void sess_request_over(struct wsess *s, struct lws *wsi, bool ok)
{
    lws_set_opaque_user_data(wsi, NULL);
    s->wsi = NULL;
    s->ok = ok;
    s->phase = WP_RESULT;
    sess_kick(s);
}

static int sess_send(struct wsess *s, const char *path, json_t *body)
{
    struct sim_wallet *w = s->w;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        return -ENOMEM;
    }
    size_t n = strlen(text);
    free(s->out);
    s->out = malloc(LWS_PRE + n);
    if (!s->out) {
        free(text);
        return -ENOMEM;
    }
    memcpy(s->out + LWS_PRE, text, n);
    free(text);
    s->out_len = n;
    s->rsp_len = 0;
    s->status = 0;
    s->ok = false;

    struct lws_client_connect_info i;
    memset(&i, 0, sizeof(i));
    i.context = w->ctx;
    i.address = w->host;
    i.port = w->port;
    i.path = path;
    i.host = w->host;
    i.origin = w->host;
    i.method = "POST";
    i.ssl_connection = w->tls ? LCCSCF_USE_SSL : 0;
    i.alpn = "http/1.1";
    i.protocol = w->protocols[0].name;
    i.local_protocol_name = w->protocols[0].name;
    i.opaque_user_data = s;
    /* no pwsi: lws could write through it after the session is freed */
    struct lws *wsi = lws_client_connect_via_info(&i);
    if (s->phase == WP_RESULT) {
        return 0; /* lws already reported the end (an immediate error): it is kicked */
    }
    if (!wsi) {
        return -ECONNREFUSED;
    }
    s->wsi = wsi;
    ev_timer_stop(w->loop, &s->timer);
    ev_timer_set(&s->timer, w->timeout_s, 0.);
    ev_timer_start(w->loop, &s->timer);
    return 0;
}

static void sess_http_error(struct wsess *s)
{
    s->w->counts.wallet_http_errors++;
    sess_end(s);
}

/* Answer every C-APDU of the server's answer and send the responses. */
static void sess_answer(struct wsess *s, json_t *apdus)
{
    json_t *responses = json_array();
    size_t k;
    json_t *v;
    if (!responses) {
        sess_http_error(s);
        return;
    }
    json_array_foreach(apdus, k, v)
    {
        uint8_t cmd[WALLET_APDU_MAX], rsp[WALLET_APDU_MAX];
        char hex[2 * WALLET_APDU_MAX + 1];
        size_t len;
        if (!json_is_string(v) || hex_decode(json_string_value(v), cmd, sizeof(cmd), &len)) {
            json_decref(responses);
            sess_http_error(s);
            return;
        }
        size_t rlen = card_answer(s, cmd, len, rsp);
        s->w->counts.wallet_apdus++;
        hex_encode(rsp, rlen, hex);
        json_array_append_new(responses, json_string(hex));
    }
    char path[sizeof(s->session) + 32];
    snprintf(path, sizeof(path), "/v1/wallet/sessions/%s", s->session);
    s->sent = WP_STEP;
    s->phase = WP_STEP;
    if (sess_send(s, path, json_pack("{s:o}", "responses", responses))) {
        sess_http_error(s);
    }
}

/* A request has ended: decide what comes next. */
static void sess_process(struct wsess *s)
{
    struct sim_wallet *w = s->w;
    json_error_t je;
    json_t *root, *done, *apdus, *id;

    if (!s->ok || s->status != 200) {
        sess_http_error(s);
        return;
    }
    root = json_loadb(s->rsp ? s->rsp : "", s->rsp_len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        sess_http_error(s);
        return;
    }
    done = json_object_get(root, "done");
    if (json_is_true(done)) {
        const char *state = json_string_value(json_object_get(root, "state"));
        if (state && strcmp(state, "done") == 0) {
            w->counts.wallet_sessions_done++;
        } else if (state && strcmp(state, "failed") == 0) {
            w->counts.wallet_sessions_failed++;
        } else {
            w->counts.wallet_http_errors++;
        }
        json_decref(root);
        sess_end(s);
        return;
    }
    id = json_object_get(root, "session");
    apdus = json_object_get(root, "apdus");
    if (!json_is_string(id) || json_string_length(id) == 0 ||
        json_string_length(id) >= sizeof(s->session) ||
        strspn(json_string_value(id), "0123456789abcdefABCDEF-_") != json_string_length(id) ||
        !json_is_array(apdus) || json_array_size(apdus) == 0 ||
        (s->sent == WP_STEP && strcmp(s->session, json_string_value(id)) != 0) ||
        ++s->rounds > WALLET_MAX_ROUNDS) {
        json_decref(root);
        sess_http_error(s);
        return;
    }
    snprintf(s->session, sizeof(s->session), "%s", json_string_value(id));
    sess_answer(s, apdus);
    json_decref(root);
}

static void sess_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct wsess *s = (struct wsess *)((char *)t - offsetof(struct wsess, timer));
    if (s->phase == WP_RESULT) {
        sess_process(s);
        return;
    }
    /* the request timed out: drop the connection, count the error */
    s->ok = false;
    sess_http_error(s);
}

static void sess_kick(struct wsess *s)
{
    ev_timer_stop(s->w->loop, &s->timer);
    ev_timer_set(&s->timer, 0., 0.);
    ev_timer_start(s->w->loop, &s->timer);
}

static void sess_start(struct sim_wallet *w, const struct wjob *j)
{
    struct wsess *s = calloc(1, sizeof(*s));
    if (!s) {
        w->counts.wallet_dropped++;
        return;
    }
    s->w = w;
    s->idx = j->idx;
    ev_init(&s->timer, sess_timer_cb);
    s->next = w->running;
    if (w->running) {
        w->running->prev = s;
    }
    w->running = s;
    w->n_running++;
    /*
     * The SEID as the gateway registered it. otagw sends a hex SEID decoded and
     * any other as its ASCII octets (queue/eng_dispatch.c), so the case of a
     * file's hex is lost on the way: upper case is what the benches and the
     * integration tests register. Generated SEIDs ("SE" + digits) are ASCII.
     */
    if (sim_pop_is_generated(w->pop)) {
        memcpy(s->seid, j->push.seid, j->push.seid_len);
        s->seid[j->push.seid_len] = '\0';
    } else {
        hex_encode_digits(j->push.seid, j->push.seid_len, s->seid, "0123456789ABCDEF");
    }
    hex_encode(j->push.serial, OTA_PUSH_SERIAL_LEN, s->serial);
    w->counts.wallet_pulls++;
    s->sent = WP_PULL;
    s->phase = WP_PULL;
    if (sess_send(s, "/v1/wallet/pull",
                  json_pack("{s:s, s:s}", "seid", s->seid, "serial", s->serial))) {
        sess_http_error(s);
    }
}

static void wallet_pump(struct sim_wallet *w)
{
    while (w->q_head && w->n_running < w->max_sessions) {
        struct wjob *j = w->q_head;
        w->q_head = j->next;
        if (!w->q_head) {
            w->q_tail = NULL;
        }
        w->n_queued--;
        sess_start(w, j);
        free(j);
    }
}

void sim_wallet_on_push(struct sim_wallet *w, uint64_t idx, const struct ota_push *push)
{
    if (!w || !push) {
        return;
    }
    if (w->n_queued >= w->max_queue) {
        w->counts.wallet_dropped++;
        return;
    }
    struct wjob *j = calloc(1, sizeof(*j));
    if (!j) {
        w->counts.wallet_dropped++;
        return;
    }
    j->idx = idx;
    j->push = *push;
    if (w->q_tail) {
        w->q_tail->next = j;
    } else {
        w->q_head = j;
    }
    w->q_tail = j;
    w->n_queued++;
    wallet_pump_later(w);
}

static void wallet_pump_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    wallet_pump((struct sim_wallet *)((char *)t - offsetof(struct sim_wallet, pump)));
}

static void wallet_push_cb(void *arg, uint64_t idx, const struct ota_push *push)
{
    sim_wallet_on_push(arg, idx, push);
}

/* ---- lws ---- */

static int rsp_append(struct wsess *s, const void *in, size_t len)
{
    if (s->rsp_len + len + 1 > WALLET_MAX_RSP) {
        return -EMSGSIZE;
    }
    if (s->rsp_len + len + 1 > s->rsp_cap) {
        size_t cap = s->rsp_cap ? s->rsp_cap : 1024;
        while (cap < s->rsp_len + len + 1) {
            cap *= 2;
        }
        char *n = realloc(s->rsp, cap);
        if (!n) {
            return -ENOMEM;
        }
        s->rsp = n;
        s->rsp_cap = cap;
    }
    memcpy(s->rsp + s->rsp_len, in, len);
    s->rsp_len += len;
    s->rsp[s->rsp_len] = '\0';
    return 0;
}

static int wallet_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct wsess *s = wsi ? lws_get_opaque_user_data(wsi) : NULL;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!s) {
            return -1;
        }
        unsigned char **p = (unsigned char **)in, *end = (*p) + len;
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *)"application/json", 16, p, end) ||
            lws_add_http_header_content_length(wsi, s->out_len, p, end)) {
            return -1;
        }
        if (s->w->auth[0] && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                                          (const unsigned char *)s->w->auth,
                                                          (int)strlen(s->w->auth), p, end)) {
            return -1;
        }
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
        if (!s) {
            return -1;
        }
        lws_client_http_body_pending(wsi, 0);
        if (lws_write(wsi, s->out + LWS_PRE, s->out_len, LWS_WRITE_HTTP_FINAL) != (int)s->out_len) {
            return -1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (s) {
            s->status = (int)lws_http_client_http_response(wsi);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (s && rsp_append(s, in, len)) {
            sess_request_over(s, wsi, false);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[4096 + LWS_PRE];
        char *px = buf + LWS_PRE;
        int lenx = (int)sizeof(buf) - LWS_PRE;
        if (lws_http_client_read(wsi, &px, &lenx) < 0) {
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (s) {
            sess_request_over(s, wsi, true);
        }
        return -1; /* one request per connection: close it */
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (s) {
            sess_request_over(s, wsi, false);
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- object ---- */

static int parse_url(struct sim_wallet *w, const char *url, struct ota_err *err)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
    } else if (strncmp(p, "https://", 8) == 0) {
        p += 8;
        w->tls = true;
    } else {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "wallet: URL must start with http:// or https://");
    }
    const char *colon = strrchr(p, ':');
    size_t hlen = colon ? (size_t)(colon - p) : strlen(p);
    while (hlen > 0 && p[hlen - 1] == '/') {
        hlen--;
    }
    if (hlen == 0 || hlen >= sizeof(w->host)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "wallet: bad host in URL");
    }
    memcpy(w->host, p, hlen);
    w->host[hlen] = '\0';
    w->port = w->tls ? 443 : 80;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || port < 1 || port > 65535 || (*end != '\0' && strcmp(end, "/"))) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "wallet: bad port in URL");
        }
        w->port = (int)port;
    }
    return 0;
}

/* w->auth from the token text or "@PATH" (its first line, blanks trimmed). */
static int load_token(struct sim_wallet *w, const char *t, struct ota_err *err)
{
    char buf[256] = "";
    if (t[0] == '@') {
        FILE *f = fopen(t + 1, "r");
        if (!f) {
            int e = errno;
            return ota_fail(err, -e, OTA_ERR_ARG, "wallet: token file %s: %s", t + 1, strerror(e));
        }
        if (!fgets(buf, sizeof(buf), f)) {
            buf[0] = '\0';
        }
        fclose(f);
        buf[strcspn(buf, " \t\r\n")] = '\0';
        t = buf;
    }
    size_t n = strlen(t);
    if (n == 0 || n > 200 || strcspn(t, " \t\r\n\"") != n) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "wallet: token: 1..200 printable characters");
    }
    snprintf(w->auth, sizeof(w->auth), "Bearer %s", t);
    return 0;
}

int sim_wallet_new(struct ev_loop *loop, struct sim_pop *pop, const struct sim_wallet_conf *c,
                   struct sim_wallet **out, struct ota_err *err)
{
    if (!loop || !pop || !c || !c->url || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "wallet: NULL argument");
    }
    struct sim_wallet *w = calloc(1, sizeof(*w));
    if (!w) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "wallet: out of memory");
    }
    int rc = parse_url(w, c->url, err);
    if (rc == 0 && c->token) {
        rc = load_token(w, c->token, err);
    }
    if (rc) {
        free(w);
        return rc;
    }
    w->loop = loop;
    w->pop = pop;
    w->max_sessions = c->max_sessions ? c->max_sessions : SIM_WALLET_DEFAULT_SESSIONS;
    w->max_queue = c->max_queue ? c->max_queue : SIM_WALLET_DEFAULT_QUEUE;
    w->timeout_s = (c->timeout_ms ? c->timeout_ms : SIM_WALLET_DEFAULT_TIMEOUT_MS) / 1000.0;
    w->protocols[0].name = "sim-wallet";
    w->protocols[0].callback = wallet_lws_cb;

    ev_init(&w->pump, wallet_pump_cb);
    /* lws logs notices to stderr by default; the simulator's stderr is for its own lines */
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    void *foreign[1] = {loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_LIBEV;
    info.foreign_loops = foreign;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = w->protocols;
    info.gid = -1;
    info.uid = -1;
    if (w->tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        if (c->ca_file) {
            /* lws only logs a CA file it cannot read: fail here, naming it. */
            FILE *f = fopen(c->ca_file, "r");
            if (!f) {
                int e = errno;
                free(w);
                return ota_fail(err, -e, OTA_ERR_ARG, "wallet: CA file %s: %s", c->ca_file,
                                strerror(e));
            }
            fclose(f);
            /* Only this CA: otagw's own certificate, not whatever the system trusts. */
            info.client_ssl_ca_filepath = c->ca_file;
            info.options |= LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
        }
    }
    w->ctx = lws_create_context(&info);
    if (!w->ctx) {
        free(w);
        return ota_fail(err, -EIO, OTA_ERR_STATE, "wallet: lws client context refused");
    }
    sim_pop_set_push_cb(pop, wallet_push_cb, w);
    *out = w;
    return 0;
}

void sim_wallet_free(struct sim_wallet *w)
{
    if (!w) {
        return;
    }
    sim_pop_set_push_cb(w->pop, NULL, NULL);
    ev_timer_stop(w->loop, &w->pump);
    while (w->running) {
        sess_free(w->running);
    }
    while (w->q_head) {
        struct wjob *j = w->q_head;
        w->q_head = j->next;
        free(j);
    }
    lws_context_destroy(w->ctx);
    free(w);
}

void sim_wallet_counts(const struct sim_wallet *w, struct sim_wallet_counts *out)
{
    if (w && out) {
        *out = w->counts;
    }
}

unsigned sim_wallet_busy(const struct sim_wallet *w)
{
    return w ? w->n_running + w->n_queued : 0;
}
