/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ISMG role of the simulator: CMPP 2.0 / 3.0 server (see ismg.h). Spec
 * clauses from ../shared/reference/cmpp.md: §3 CONNECT check and
 * CONNECT_RESP, §4 SUBMIT_RESP Result and Msg_Id, §5 DELIVER (MO and status
 * report) awaited with DELIVER_RESP, §6 ACTIVE_TEST (C idle, T wait, N = 3),
 * request resend (N - 1 = 2 more) and window, §7 Msg_Fmt. PDUs go through
 * the otagw CMPP codec (smpp/cmpp.h); nothing is cast onto wire bytes.
 *
 * A connection is LOGIN -> ACTIVE -> CLOSING -> CLOSED (conn_st table). A
 * report or MO is LATE (dlr_late_ms) -> QUEUED (server FIFO) -> INFLIGHT (on
 * one connection, within its window) and is freed on DELIVER_RESP or after
 * the third unanswered send; a connection that closes hands its in-flight
 * ones back to the queue, so a link drop loses nothing the SP did not answer.
 * That queue is the one the SMSC role uses too (outq.h); this file numbers,
 * encodes and routes the DELIVERs.
 */
#include "tests/sim/ismg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/sim/outq.h"

#define ISMG_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define ISMG_WBUF_MAX (4u << 20)   /* output held for a peer that does not read: then dropped */
#define ISMG_WBUF_PAUSE (1u << 20) /* stop reading a peer whose answers pile up (STYLE §6) */
#define ISMG_LOGIN_TIMEOUT_S 10.0  /* CONNECT must come this soon after accept */
#define ISMG_CLOSE_GRACE_S 1.0     /* wait for TERMINATE_RESP / flush before closing */
#define ISMG_AT_TRIES 3            /* ref §6: N = 3 ACTIVE_TESTs, then drop */
#define ISMG_DLV_TRIES 3           /* ref §6: a request is sent, then resent twice */
#define ISMG_TP_PID_SIM 0x7F       /* TS 23.040 9.2.3.9: SIM data download */
#define ISMG_DCS_CLASS2_8BIT 0xF6  /* TS 23.038 4: 8-bit data, class 2 (SIM specific) */
#define ISMG_DCS_8BIT 0x04         /* TS 23.038 4: 8-bit data, no class */
#define ISMG_DCS_GSM7 0x00
#define ISMG_DCS_UCS2 0x08

static const char *const ismg_ctr_names[SIM_ISMG_CTR__COUNT] = {
    [SIM_ISMG_PDUS_RX] = "pdus_rx",
    [SIM_ISMG_PDUS_TX] = "pdus_tx",
    [SIM_ISMG_CONNECTIONS] = "connections",
    [SIM_ISMG_LOGINS_OK] = "logins_ok",
    [SIM_ISMG_LOGINS_REFUSED] = "logins_refused",
    [SIM_ISMG_SUBMITS] = "submits",
    [SIM_ISMG_SUBMITS_OK] = "submits_ok",
    [SIM_ISMG_FLOW_CONTROL] = "flow_control",
    [SIM_ISMG_THROTTLE_FAULTS] = "throttle_faults",
    [SIM_ISMG_REJECTED] = "rejected",
    [SIM_ISMG_INVALID_PDUS] = "invalid_pdus",
    [SIM_ISMG_DLRS_SENT] = "dlrs_sent",
    [SIM_ISMG_DLRS_UNDELIV] = "dlrs_undeliv",
    [SIM_ISMG_DLRS_LOST] = "dlrs_lost",
    [SIM_ISMG_MOS_SENT] = "mos_sent",
    [SIM_ISMG_POR_LOST] = "por_lost",
    [SIM_ISMG_POR_CORRUPTED] = "por_corrupted",
    [SIM_ISMG_CARD_ABSENT] = "card_absent",
    [SIM_ISMG_CARD_ERRORS] = "card_errors",
    [SIM_ISMG_DELIVER_RESPS] = "deliver_resps",
    [SIM_ISMG_DELIVER_RETRIES] = "deliver_retries",
    [SIM_ISMG_DELIVER_GAVE_UP] = "deliver_gave_up",
    [SIM_ISMG_PENDING_OVERFLOW] = "pending_overflow",
    [SIM_ISMG_ACTIVE_TEST_RX] = "active_test_rx",
    [SIM_ISMG_ACTIVE_TEST_TX] = "active_test_tx",
    [SIM_ISMG_TERMINATE_RX] = "terminate_rx",
    [SIM_ISMG_TERMINATE_TX] = "terminate_tx",
    [SIM_ISMG_LINK_DROPS] = "link_drops",
};

const char *sim_ismg_ctr_name(enum sim_ismg_ctr c)
{
    if ((unsigned)c >= SIM_ISMG_CTR__COUNT) {
        return "unknown";
    }
    return ismg_ctr_names[c];
}

const char *sim_ismg_vers_name(enum sim_ismg_vers v)
{
    switch (v) {
    case SIM_ISMG_VERS_ANY:
        return "any";
    case SIM_ISMG_VERS_20:
        return "2.0";
    case SIM_ISMG_VERS_30:
        return "3.0";
    }
    return "unknown";
}

/* ---- connection state machine (STYLE §5) ------------------------------------ */

enum conn_st {
    CONN_ST_LOGIN = 0,   /* accepted, waiting for CONNECT */
    CONN_ST_ACTIVE = 1,  /* logged in */
    CONN_ST_CLOSING = 2, /* TERMINATE sent or answered, or login refused */
    CONN_ST_CLOSED = 3,
    CONN_ST__COUNT
};

enum conn_ev {
    CONN_EV_LOGIN_OK = 0,
    CONN_EV_LOGIN_REFUSED = 1,
    CONN_EV_TERMINATE_RX = 2,
    CONN_EV_TERMINATE_TX = 3,
    CONN_EV_CLOSED = 4, /* flushed, TERMINATE_RESP, timeout, error or drop */
    CONN_EV__COUNT
};

#define ST_BIT(s) (1u << (s))

static const struct conn_st_desc {
    const char *name;
    uint32_t next;
} conn_st_tab[CONN_ST__COUNT] = {
    [CONN_ST_LOGIN] = {"login",
                       ST_BIT(CONN_ST_ACTIVE) | ST_BIT(CONN_ST_CLOSING) | ST_BIT(CONN_ST_CLOSED)},
    [CONN_ST_ACTIVE] = {"active", ST_BIT(CONN_ST_CLOSING) | ST_BIT(CONN_ST_CLOSED)},
    [CONN_ST_CLOSING] = {"closing", ST_BIT(CONN_ST_CLOSED)},
    [CONN_ST_CLOSED] = {"closed", 0},
};

static const char *const conn_ev_names[CONN_EV__COUNT] = {
    [CONN_EV_LOGIN_OK] = "login-ok",
    [CONN_EV_LOGIN_REFUSED] = "login-refused",
    [CONN_EV_TERMINATE_RX] = "terminate-rx",
    [CONN_EV_TERMINATE_TX] = "terminate-tx",
    [CONN_EV_CLOSED] = "closed",
};

/* ---- deliveries (reports and MOs) ------------------------------------------- */

struct ismg_conn;
struct sim_ismg;

/* A DELIVER to send: a status report or an MO (queued by the shared outq). */
struct ismg_dlv {
    struct sim_outq_item it; /* first: is_report, seq, tries, state */
    uint64_t msg_id;         /* of this DELIVER */
    char dest_id[CMPP_SRC_ID_LEN + 1];
    char service_id[CMPP_SERVICE_ID_LEN + 1];
    char src_term[CMPP_TERM30_LEN + 1];
    uint8_t tp_pid, tp_udhi, msg_fmt;
    struct cmpp_report report;
    uint8_t len;
    uint8_t content[CMPP_CONTENT_MAX];
};

/* ---- objects ------------------------------------------------------------------ */

struct ismg_conn {
    struct ismg_conn *prev, *next;
    struct sim_ismg *srv;
    int fd;
    ev_io rio, wio;
    ev_timer hb_timer;   /* login timeout, heartbeat, closing grace */
    ev_timer kill_timer; /* deferred close: never free a connection inside its own callback */
    enum conn_st st;
    bool failed;
    bool close_when_flushed;
    enum cmpp_version ver;
    char peer[64];
    uint32_t next_seq;
    struct sim_bucket bucket;
    double last_rx;
    unsigned at_unanswered;
    struct sim_outq_link link; /* reports and MOs in flight here */
    size_t rlen;
    uint8_t rbuf[CMPP_PDU_MAX_LEN];
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
};

struct sim_ismg {
    struct ev_loop *loop;
    struct sim_ismg_cfg cfg;
    struct sim_faults faults;
    char sp_id[CMPP_SRC_ADDR_LEN + 1];
    uint8_t secret[CMPP_SECRET_MAX_LEN];
    int lfd;
    uint16_t port;
    ev_io accept_w;
    ev_timer drop_timer;
    struct ismg_conn *conns;
    size_t n_conns;
    struct sim_outq outq; /* reports and MOs held, queued and in flight */
    uint16_t msgid_seq;
    uint32_t smsc_seq;
    struct sim_rng rng;
    uint64_t ctr[SIM_ISMG_CTR__COUNT];
};

static void conn_fail(struct ismg_conn *c);
static void conn_process(struct ismg_conn *c);

static void conn_set_state(struct ismg_conn *c, enum conn_st st, enum conn_ev ev)
{
    if (c->st == st) {
        return;
    }
    if ((conn_st_tab[c->st].next & ST_BIT(st)) == 0) {
        fprintf(stderr, "ismg: conn=%s refused %s -> %s (%s)\n", c->peer, conn_st_tab[c->st].name,
                conn_st_tab[st].name, conn_ev_names[ev]);
        return;
    }
    if (getenv("OTAGW_SIM_DEBUG") != NULL) {
        fprintf(stderr, "ismg: conn=%s %s -> %s (%s)\n", c->peer, conn_st_tab[c->st].name,
                conn_st_tab[st].name, conn_ev_names[ev]);
    }
    c->st = st;
}

/* ---- output ------------------------------------------------------------------ */

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ismg_conn *c = ISMG_CONTAINER_OF(w, struct ismg_conn, wio);
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                return;
            }
            conn_fail(c);
            return;
        }
        c->woff += (size_t)n;
    }
    c->woff = c->wlen = 0;
    ev_io_stop(loop, &c->wio);
    if (c->close_when_flushed) {
        conn_fail(c);
        return;
    }
    if (!c->failed && c->st != CONN_ST_CLOSED && !ev_is_active(&c->rio)) {
        ev_io_start(loop, &c->rio); /* resume after back-pressure */
        conn_process(c);
    }
}

/* Queue octets for the peer; on trouble the connection is failed (closed later). */
static void conn_send(struct ismg_conn *c, const uint8_t *p, size_t len)
{
    if (c->failed) {
        return;
    }
    c->srv->ctr[SIM_ISMG_PDUS_TX]++;
    if (c->wlen == 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                conn_fail(c);
                return;
            }
            n = 0;
        }
        if ((size_t)n == len) {
            if (c->close_when_flushed) {
                conn_fail(c);
            }
            return;
        }
        p += n;
        len -= (size_t)n;
        c->woff = 0;
    }
    if (c->wlen + len > c->wcap) {
        size_t cap = c->wcap != 0 ? c->wcap : 4096;
        while (cap < c->wlen + len) {
            cap *= 2;
        }
        uint8_t *nb = cap <= ISMG_WBUF_MAX ? realloc(c->wbuf, cap) : NULL;
        if (nb == NULL) {
            fprintf(stderr, "ismg: conn=%s output over %u octets, dropping the link\n", c->peer,
                    ISMG_WBUF_MAX);
            conn_fail(c);
            return;
        }
        c->wbuf = nb;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, p, len);
    c->wlen += len;
    ev_io_start(c->srv->loop, &c->wio);
    if (c->wlen - c->woff > ISMG_WBUF_PAUSE) {
        ev_io_stop(c->srv->loop, &c->rio);
    }
}

static uint32_t conn_next_seq(struct ismg_conn *c)
{
    uint32_t s = c->next_seq++;
    if (c->next_seq == 0) {
        c->next_seq = 1;
    }
    return s;
}

/* Encode and send one PDU; an encode failure is a bug in the caller, logged. */
static int conn_send_pdu(struct ismg_conn *c, const struct cmpp_pdu *pdu)
{
    uint8_t buf[CMPP_HDR_LEN + 200 + CMPP_CONTENT_ASCII_MAX];
    struct ota_err err;
    int n = cmpp_encode(pdu, buf, sizeof(buf), &err);
    if (n < 0) {
        fprintf(stderr, "ismg: conn=%s cannot encode %s: %s\n", c->peer, cmpp_cmd_name(pdu->cmd_id),
                err.msg);
        return n;
    }
    conn_send(c, buf, (size_t)n);
    return 0;
}

static void conn_send_empty(struct ismg_conn *c, uint32_t cmd_id, uint32_t seq)
{
    uint8_t buf[CMPP_HDR_LEN + 1];
    size_t len = CMPP_HDR_LEN;
    if (cmd_id == CMPP_ACTIVE_TEST_RESP) {
        buf[CMPP_HDR_LEN] = 0; /* ref §3: one Reserved octet */
        len++;
    }
    uint32_t v[3] = {(uint32_t)len, cmd_id, seq};
    for (int i = 0; i < 3; i++) {
        buf[4 * i] = (uint8_t)(v[i] >> 24);
        buf[4 * i + 1] = (uint8_t)(v[i] >> 16);
        buf[4 * i + 2] = (uint8_t)(v[i] >> 8);
        buf[4 * i + 3] = (uint8_t)v[i];
    }
    conn_send(c, buf, len);
}

/* ---- connection lifetime ------------------------------------------------------- */

static void conn_kill(struct ismg_conn *c)
{
    struct sim_ismg *s = c->srv;
    conn_set_state(c, CONN_ST_CLOSED, CONN_EV_CLOSED);
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    ev_timer_stop(s->loop, &c->hb_timer);
    ev_timer_stop(s->loop, &c->kill_timer);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    /* Unanswered reports and MOs go back to the front of the queue, in order. */
    sim_outq_link_close(&s->outq, &c->link);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    s->n_conns--;
    free(c->wbuf);
    free(c);
    sim_outq_pump(&s->outq);
}

static void conn_kill_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn_kill(ISMG_CONTAINER_OF(w, struct ismg_conn, kill_timer));
}

/* Close soon, from the loop: callers may still hold c. */
static void conn_fail(struct ismg_conn *c)
{
    if (c->failed) {
        return;
    }
    c->failed = true;
    ev_io_stop(c->srv->loop, &c->rio);
    ev_io_stop(c->srv->loop, &c->wio);
    ev_timer_stop(c->srv->loop, &c->kill_timer);
    ev_timer_set(&c->kill_timer, 0., 0.);
    ev_timer_start(c->srv->loop, &c->kill_timer);
}

static void conn_arm(struct ismg_conn *c, double after_s)
{
    ev_timer_stop(c->srv->loop, &c->hb_timer);
    ev_timer_set(&c->hb_timer, after_s, 0.);
    ev_timer_start(c->srv->loop, &c->hb_timer);
}

static void conn_start_closing(struct ismg_conn *c, enum conn_ev ev, bool when_flushed)
{
    conn_set_state(c, CONN_ST_CLOSING, ev);
    c->close_when_flushed = when_flushed;
    conn_arm(c, ISMG_CLOSE_GRACE_S);
    if (when_flushed && c->wlen == 0) {
        conn_fail(c);
    }
}

static void conn_send_active_test(struct ismg_conn *c)
{
    c->srv->ctr[SIM_ISMG_ACTIVE_TEST_TX]++;
    conn_send_empty(c, CMPP_ACTIVE_TEST, conn_next_seq(c));
    c->at_unanswered++;
}

static void conn_hb_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ismg_conn *c = ISMG_CONTAINER_OF(w, struct ismg_conn, hb_timer);
    struct sim_ismg *s = c->srv;
    double now = ev_now(loop);
    double hb = s->cfg.heartbeat_s;
    double t = s->cfg.resp_timeout_ms / 1000.0;

    if (c->st != CONN_ST_ACTIVE) {
        /* no CONNECT in time, or the closing grace is over */
        conn_fail(c);
        return;
    }
    if (c->at_unanswered > 0) {
        if (c->at_unanswered >= ISMG_AT_TRIES) {
            fprintf(stderr, "ismg: conn=%s %u ACTIVE_TESTs unanswered, dropping the link\n",
                    c->peer, c->at_unanswered);
            s->ctr[SIM_ISMG_LINK_DROPS]++;
            conn_fail(c);
            return;
        }
        conn_send_active_test(c);
        conn_arm(c, t);
        return;
    }
    double idle = now - c->last_rx;
    if (idle >= hb) {
        conn_send_active_test(c);
        conn_arm(c, t);
        return;
    }
    conn_arm(c, hb - idle);
}

/* ---- deliveries ------------------------------------------------------------------- */

static int dlv_encode_send(struct sim_outq_link *link, struct sim_outq_item *it)
{
    struct ismg_conn *c = ISMG_CONTAINER_OF(link, struct ismg_conn, link);
    const struct ismg_dlv *d = ISMG_CONTAINER_OF(it, struct ismg_dlv, it);
    struct cmpp_pdu *pdu = calloc(1, sizeof(*pdu));
    if (pdu == NULL) {
        return -ENOMEM;
    }
    pdu->ver = c->ver;
    pdu->cmd_id = CMPP_DELIVER;
    pdu->seq = d->it.seq;
    struct cmpp_deliver *dv = &pdu->u.deliver;
    dv->msg_id = d->msg_id;
    memcpy(dv->dest_id, d->dest_id, sizeof(dv->dest_id));
    memcpy(dv->service_id, d->service_id, sizeof(dv->service_id));
    dv->tp_pid = d->tp_pid;
    dv->tp_udhi = d->tp_udhi;
    dv->msg_fmt = d->msg_fmt;
    memcpy(dv->src_terminal_id, d->src_term, sizeof(dv->src_terminal_id));
    if (d->it.is_report) {
        dv->registered_delivery = 1;
        dv->report = d->report;
    } else {
        dv->registered_delivery = 0;
        dv->msg_len = d->len;
        memcpy(dv->msg_content, d->content, d->len);
    }
    int rc = conn_send_pdu(c, pdu);
    free(pdu);
    return rc;
}

static uint32_t dlv_next_seq(struct sim_outq_link *link)
{
    return conn_next_seq(ISMG_CONTAINER_OF(link, struct ismg_conn, link));
}

/* Least-loaded logged-in connection with window space, or NULL. */
static struct sim_outq_link *ismg_pick(void *ctx)
{
    struct sim_ismg *s = ctx;
    struct ismg_conn *best = NULL;
    for (struct ismg_conn *c = s->conns; c != NULL; c = c->next) {
        if (c->st != CONN_ST_ACTIVE || c->failed || c->link.inflight.n >= s->cfg.window) {
            continue;
        }
        if (best == NULL || c->link.inflight.n < best->link.inflight.n) {
            best = c;
        }
    }
    return best != NULL ? &best->link : NULL;
}

static const struct sim_outq_ops ismg_outq_ops = {
    .pick = ismg_pick,
    .next_seq = dlv_next_seq,
    .encode_send = dlv_encode_send,
};

static struct ismg_dlv *dlv_new(struct sim_ismg *s)
{
    struct sim_outq_item *it = sim_outq_alloc(&s->outq, sizeof(struct ismg_dlv));
    return it != NULL ? ISMG_CONTAINER_OF(it, struct ismg_dlv, it) : NULL;
}

/* ---- PDU handlers ------------------------------------------------------------------ */

static uint64_t ismg_next_msgid(struct sim_ismg *s)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    struct cmpp_msgid_parts parts = {
        .month = (unsigned)tm.tm_mon + 1,
        .day = (unsigned)tm.tm_mday,
        .hour = (unsigned)tm.tm_hour,
        .minute = (unsigned)tm.tm_min,
        .second = tm.tm_sec > 59 ? 59u : (unsigned)tm.tm_sec,
        .gateway = s->cfg.gateway_code,
        .seq = s->msgid_seq++,
    };
    uint64_t id = 0;
    struct ota_err err;
    if (cmpp_msgid_compose(&parts, &id, &err) < 0) {
        fprintf(stderr, "ismg: Msg_Id: %s\n", err.msg);
    }
    return id;
}

static void report_time(char out[CMPP_RPT_TIME_LEN + 1])
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    /* YYMMDDHHMM [ref §5]; every field is bounded, so 10 digits always fit */
    int n = snprintf(out, CMPP_RPT_TIME_LEN + 1, "%02d%02d%02d%02d%02d", tm.tm_year % 100,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
    if (n != CMPP_RPT_TIME_LEN) {
        memcpy(out, "0001010000", CMPP_RPT_TIME_LEN + 1);
    }
}

/* Msg_Fmt + TP_pId -> the TP-DCS the MT reaches the handset with (documented mapping). */
static uint8_t ismg_fmt_to_dcs(uint8_t msg_fmt, uint8_t tp_pid)
{
    switch (msg_fmt) {
    case CMPP_FMT_ASCII:
        return ISMG_DCS_GSM7;
    case CMPP_FMT_CARD:
        return ISMG_DCS_CLASS2_8BIT;
    case CMPP_FMT_BINARY:
        return tp_pid == ISMG_TP_PID_SIM ? ISMG_DCS_CLASS2_8BIT : ISMG_DCS_8BIT;
    case CMPP_FMT_UCS2:
        return ISMG_DCS_UCS2;
    default:
        return ISMG_DCS_8BIT;
    }
}

static void ismg_copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void send_connect_resp(struct ismg_conn *c, uint32_t seq, enum cmpp_version ver,
                              uint32_t status, const uint8_t *auth_ismg)
{
    struct cmpp_pdu *pdu = calloc(1, sizeof(*pdu));
    if (pdu == NULL) {
        conn_fail(c);
        return;
    }
    pdu->ver = ver;
    pdu->cmd_id = CMPP_CONNECT_RESP;
    pdu->seq = seq;
    pdu->u.connect_resp.status = status;
    if (auth_ismg != NULL) {
        memcpy(pdu->u.connect_resp.auth_ismg, auth_ismg, CMPP_AUTH_LEN);
    }
    pdu->u.connect_resp.version =
        c->srv->cfg.versions == SIM_ISMG_VERS_20 ? (uint8_t)CMPP_V20 : (uint8_t)CMPP_V30;
    (void)conn_send_pdu(c, pdu);
    free(pdu);
}

static void handle_connect(struct ismg_conn *c, const uint8_t *p, size_t len, uint32_t seq)
{
    struct sim_ismg *s = c->srv;
    struct cmpp_pdu *pdu = calloc(1, sizeof(*pdu));
    struct ota_err err;
    if (pdu == NULL) {
        conn_fail(c);
        return;
    }
    uint32_t status = CMPP_CONN_OK;
    enum cmpp_version ver = CMPP_V30;
    /* CONNECT has one layout in both versions [ref §3]. */
    if (cmpp_decode(p, len, CMPP_V30, pdu, &err) < 0) {
        s->ctr[SIM_ISMG_INVALID_PDUS]++;
        fprintf(stderr, "ismg: conn=%s bad CONNECT: %s\n", c->peer, err.msg);
        status = CMPP_CONN_BAD_STRUCTURE;
        goto refuse;
    }
    const struct cmpp_connect *cn = &pdu->u.connect;
    bool v20 = cn->version == CMPP_V20;
    bool v30 = cn->version == CMPP_V30;
    if (v20) {
        ver = CMPP_V20;
    }
    if ((v20 && s->cfg.versions == SIM_ISMG_VERS_30) ||
        (v30 && s->cfg.versions == SIM_ISMG_VERS_20) || (!v20 && !v30)) {
        status = cn->version > (s->cfg.versions == SIM_ISMG_VERS_20 ? CMPP_V20 : CMPP_V30)
                     ? CMPP_CONN_VERSION_TOO_HIGH
                     : CMPP_CONN_OTHER;
        fprintf(stderr, "ismg: conn=%s CONNECT version 0x%02x refused (serving %s)\n", c->peer,
                cn->version, sim_ismg_vers_name(s->cfg.versions));
        goto refuse;
    }
    if (strcmp(cn->source_addr, s->sp_id) != 0) {
        status = CMPP_CONN_BAD_SOURCE;
        fprintf(stderr, "ismg: conn=%s CONNECT Source_Addr '%s' unknown\n", c->peer,
                cn->source_addr);
        goto refuse;
    }
    if (cmpp_connect_verify(cn, s->secret, s->cfg.secret_len, &err) < 0) {
        status = CMPP_CONN_AUTH_FAILED;
        fprintf(stderr, "ismg: conn=%s CONNECT authenticator refused: %s\n", c->peer, err.msg);
        goto refuse;
    }
    uint8_t auth_ismg[CMPP_AUTH_LEN];
    if (cmpp_auth_ismg(ver, CMPP_CONN_OK, cn->auth_source, s->secret, s->cfg.secret_len, auth_ismg,
                       &err) < 0) {
        status = CMPP_CONN_OTHER;
        goto refuse;
    }
    c->ver = ver;
    s->ctr[SIM_ISMG_LOGINS_OK]++;
    send_connect_resp(c, seq, ver, CMPP_CONN_OK, auth_ismg);
    conn_set_state(c, CONN_ST_ACTIVE, CONN_EV_LOGIN_OK);
    sim_bucket_init(&c->bucket, s->cfg.rate_per_s, ev_now(s->loop));
    conn_arm(c, s->cfg.heartbeat_s);
    free(pdu);
    sim_outq_pump(&s->outq); /* held reports and MOs go out on the new link */
    return;

refuse:
    s->ctr[SIM_ISMG_LOGINS_REFUSED]++;
    send_connect_resp(c, seq, ver, status, NULL);
    conn_start_closing(c, CONN_EV_LOGIN_REFUSED, true);
    free(pdu);
}

static void send_submit_resp(struct ismg_conn *c, uint32_t seq, uint64_t msg_id, uint32_t result)
{
    struct cmpp_pdu *pdu = calloc(1, sizeof(*pdu));
    if (pdu == NULL) {
        conn_fail(c);
        return;
    }
    pdu->ver = c->ver;
    pdu->cmd_id = CMPP_SUBMIT_RESP;
    pdu->seq = seq;
    pdu->u.resp.msg_id = msg_id;
    pdu->u.resp.result = result;
    (void)conn_send_pdu(c, pdu);
    free(pdu);
}

/* One recipient of an accepted SUBMIT: card, report, PoR. */
static void submit_one(struct ismg_conn *c, const struct cmpp_submit *sb, const char *msisdn,
                       uint64_t msg_id, const struct sim_fate *fate)
{
    struct sim_ismg *s = c->srv;
    enum cmpp_stat stat = CMPP_STAT_DELIVRD;
    enum sim_outcome outcome = SIM_OUT_NO_POR;
    struct sim_mo mo;
    memset(&mo, 0, sizeof(mo));
    char submit_time[CMPP_RPT_TIME_LEN + 1];
    report_time(submit_time);

    if (fate->card_absent) {
        s->ctr[SIM_ISMG_CARD_ABSENT]++;
        stat = CMPP_STAT_UNDELIV;
    } else if (s->cfg.card.deliver != NULL) {
        struct ota_err err;
        ota_err_clear(&err);
        int rc = s->cfg.card.deliver(s->cfg.card.ctx, msisdn, sb->msg_content, sb->msg_len,
                                     sb->tp_udhi != 0, sb->tp_pid,
                                     ismg_fmt_to_dcs(sb->msg_fmt, sb->tp_pid), &outcome, &mo, &err);
        if (rc < 0) {
            s->ctr[SIM_ISMG_CARD_ERRORS]++;
            fprintf(stderr, "ismg: conn=%s card %s: %s\n", c->peer, msisdn, err.msg);
            stat = CMPP_STAT_UNDELIV;
            outcome = SIM_OUT_INVALID;
        } else if (outcome == SIM_OUT_UNKNOWN_SE) {
            stat = CMPP_STAT_UNDELIV;
        }
    }
    if (fate->dlr_fail) {
        stat = CMPP_STAT_UNDELIV;
    }

    if (sb->registered_delivery == 1) {
        if (fate->dlr_lost) {
            s->ctr[SIM_ISMG_DLRS_LOST]++;
        } else {
            struct ismg_dlv *d = dlv_new(s);
            if (d != NULL) {
                d->it.is_report = true;
                d->msg_id = ismg_next_msgid(s);
                ismg_copy_text(d->dest_id, sizeof(d->dest_id), sb->src_id);
                ismg_copy_text(d->service_id, sizeof(d->service_id), sb->service_id);
                ismg_copy_text(d->src_term, sizeof(d->src_term), msisdn);
                d->report.msg_id = msg_id;
                ismg_copy_text(d->report.stat, sizeof(d->report.stat), cmpp_stat_name(stat));
                memcpy(d->report.submit_time, submit_time, sizeof(submit_time));
                report_time(d->report.done_time);
                ismg_copy_text(d->report.dest_terminal_id, sizeof(d->report.dest_terminal_id),
                               msisdn);
                d->report.smsc_sequence = ++s->smsc_seq;
                if (stat != CMPP_STAT_DELIVRD) {
                    s->ctr[SIM_ISMG_DLRS_UNDELIV]++;
                }
                sim_outq_enqueue(&s->outq, &d->it, fate->dlr_delay_ms);
            }
        }
    }

    if (outcome == SIM_OUT_POR) {
        if (fate->por_lost) {
            s->ctr[SIM_ISMG_POR_LOST]++;
            return;
        }
        if (fate->por_corrupt) {
            s->ctr[SIM_ISMG_POR_CORRUPTED]++;
            sim_fate_corrupt(fate, &mo);
        }
        struct ismg_dlv *d = dlv_new(s);
        if (d == NULL) {
            return;
        }
        d->it.is_report = false;
        d->msg_id = ismg_next_msgid(s);
        ismg_copy_text(d->dest_id, sizeof(d->dest_id), sb->src_id);
        ismg_copy_text(d->service_id, sizeof(d->service_id), sb->service_id);
        ismg_copy_text(d->src_term, sizeof(d->src_term), msisdn);
        d->tp_pid = mo.pid;
        d->tp_udhi = mo.udhi ? 1 : 0;
        d->msg_fmt = CMPP_FMT_BINARY;
        d->len = mo.len <= CMPP_CONTENT_MAX ? mo.len : CMPP_CONTENT_MAX;
        memcpy(d->content, mo.ud, d->len);
        sim_outq_enqueue(&s->outq, &d->it, 0);
    }
}

static uint32_t decode_err_result(const struct ota_err *err)
{
    switch (err->code) {
    case OTA_ERR_OVERSIZE:
        return CMPP_RES_MSG_TOO_LONG;
    case OTA_ERR_LENGTH:
    case OTA_ERR_TRUNCATED:
        return CMPP_RES_BAD_MSG_LEN;
    default:
        return CMPP_RES_BAD_STRUCTURE;
    }
}

static void handle_submit(struct ismg_conn *c, const uint8_t *p, size_t len, uint32_t seq)
{
    struct sim_ismg *s = c->srv;
    struct ota_err err;
    struct cmpp_pdu *pdu = calloc(1, sizeof(*pdu));
    if (pdu == NULL) {
        conn_fail(c);
        return;
    }
    if (cmpp_decode(p, len, c->ver, pdu, &err) < 0) {
        s->ctr[SIM_ISMG_INVALID_PDUS]++;
        fprintf(stderr, "ismg: conn=%s seq=%u bad SUBMIT: %s\n", c->peer, seq, err.msg);
        send_submit_resp(c, seq, 0, decode_err_result(&err));
        free(pdu);
        return;
    }
    const struct cmpp_submit *sb = &pdu->u.submit;
    s->ctr[SIM_ISMG_SUBMITS]++;
    if (!sim_bucket_take(&c->bucket, ev_now(s->loop))) {
        s->ctr[SIM_ISMG_FLOW_CONTROL]++;
        send_submit_resp(c, seq, 0, CMPP_RES_FLOW_CONTROL);
        free(pdu);
        return;
    }
    struct sim_fate fate;
    sim_faults_draw(&s->faults, &s->rng, &fate);
    if (fate.throttle) {
        s->ctr[SIM_ISMG_FLOW_CONTROL]++;
        s->ctr[SIM_ISMG_THROTTLE_FAULTS]++;
        send_submit_resp(c, seq, 0, CMPP_RES_FLOW_CONTROL);
        free(pdu);
        return;
    }
    if (fate.reject) {
        s->ctr[SIM_ISMG_REJECTED]++;
        send_submit_resp(c, seq, 0, CMPP_RES_FEE_TERM_NOT_SERVED);
        free(pdu);
        return;
    }
    uint64_t msg_id = ismg_next_msgid(s);
    s->ctr[SIM_ISMG_SUBMITS_OK]++;
    send_submit_resp(c, seq, msg_id, CMPP_RES_OK);
    for (unsigned i = 0; i < sb->n_dest && i < CMPP_DEST_MAX; i++) {
        submit_one(c, sb, sb->dest_terminal_id[i], msg_id, &fate);
    }
    free(pdu);
}

static void handle_deliver_resp(struct ismg_conn *c, const uint8_t *p, size_t len, uint32_t seq)
{
    struct sim_ismg *s = c->srv;
    struct ota_err err;
    struct cmpp_pdu *pdu = calloc(1, sizeof(*pdu));
    if (pdu == NULL) {
        conn_fail(c);
        return;
    }
    if (cmpp_decode(p, len, c->ver, pdu, &err) < 0) {
        s->ctr[SIM_ISMG_INVALID_PDUS]++;
        fprintf(stderr, "ismg: conn=%s seq=%u bad DELIVER_RESP: %s\n", c->peer, seq, err.msg);
        free(pdu);
        return;
    }
    free(pdu);
    struct sim_outq_item *it = sim_outq_take(&s->outq, &c->link, seq);
    if (it != NULL) {
        sim_outq_done(&s->outq, it);
        return;
    }
    /* a late answer to a DELIVER already resent and answered, or never sent */
    s->ctr[SIM_ISMG_INVALID_PDUS]++;
}

static void conn_on_pdu(struct ismg_conn *c, const uint8_t *p, size_t len,
                        const struct cmpp_hdr *hdr)
{
    struct sim_ismg *s = c->srv;
    s->ctr[SIM_ISMG_PDUS_RX]++;
    c->last_rx = ev_now(s->loop);
    c->at_unanswered = 0;

    if (c->st == CONN_ST_LOGIN) {
        if (hdr->cmd_id != CMPP_CONNECT) {
            s->ctr[SIM_ISMG_INVALID_PDUS]++;
            fprintf(stderr, "ismg: conn=%s %s before CONNECT, closing\n", c->peer,
                    cmpp_cmd_name(hdr->cmd_id));
            conn_fail(c);
            return;
        }
        handle_connect(c, p, len, hdr->seq);
        return;
    }
    if (c->st == CONN_ST_CLOSING) {
        if (hdr->cmd_id == CMPP_TERMINATE_RESP) {
            conn_fail(c);
        } else if (hdr->cmd_id == CMPP_TERMINATE) {
            s->ctr[SIM_ISMG_TERMINATE_RX]++;
            conn_send_empty(c, CMPP_TERMINATE_RESP, hdr->seq);
            c->close_when_flushed = true;
            if (c->wlen == 0) {
                conn_fail(c);
            }
        } else if (hdr->cmd_id == CMPP_DELIVER_RESP) {
            handle_deliver_resp(c, p, len, hdr->seq);
        }
        return;
    }
    switch (hdr->cmd_id) {
    case CMPP_SUBMIT:
        handle_submit(c, p, len, hdr->seq);
        break;
    case CMPP_DELIVER_RESP:
        handle_deliver_resp(c, p, len, hdr->seq);
        break;
    case CMPP_ACTIVE_TEST:
        s->ctr[SIM_ISMG_ACTIVE_TEST_RX]++;
        conn_send_empty(c, CMPP_ACTIVE_TEST_RESP, hdr->seq);
        break;
    case CMPP_ACTIVE_TEST_RESP:
        break;
    case CMPP_TERMINATE:
        s->ctr[SIM_ISMG_TERMINATE_RX]++;
        conn_send_empty(c, CMPP_TERMINATE_RESP, hdr->seq);
        conn_start_closing(c, CONN_EV_TERMINATE_RX, true);
        break;
    default:
        /* CONNECT again, QUERY, CANCEL, FWD, unknown ids: counted, no answer */
        s->ctr[SIM_ISMG_INVALID_PDUS]++;
        fprintf(stderr, "ismg: conn=%s seq=%u unexpected %s (0x%08x)\n", c->peer, hdr->seq,
                cmpp_cmd_name(hdr->cmd_id), hdr->cmd_id);
        break;
    }
}

/* Handle every whole PDU buffered, unless the connection fails or is paused. */
static void conn_process(struct ismg_conn *c)
{
    struct sim_ismg *s = c->srv;
    size_t off = 0;
    while (!c->failed && ev_is_active(&c->rio)) {
        struct cmpp_hdr hdr;
        struct ota_err err;
        int m = cmpp_frame(c->rbuf + off, c->rlen - off, 0, &hdr, &err);
        if (m < 0) {
            /* no way to find the next PDU boundary: count and close */
            s->ctr[SIM_ISMG_INVALID_PDUS]++;
            fprintf(stderr, "ismg: conn=%s unframeable input: %s\n", c->peer, err.msg);
            conn_fail(c);
            return;
        }
        if (m == 0) {
            break;
        }
        conn_on_pdu(c, c->rbuf + off, (size_t)m, &hdr);
        off += (size_t)m;
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ismg_conn *c = ISMG_CONTAINER_OF(w, struct ismg_conn, rio);
    if (c->rlen < sizeof(c->rbuf)) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            conn_fail(c);
            return;
        }
        if (n < 0) {
            return;
        }
        c->rlen += (size_t)n;
    }
    conn_process(c);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        return -errno;
    }
    return 0;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sim_ismg *s = ISMG_CONTAINER_OF(w, struct sim_ismg, accept_w);
    for (;;) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        int fd = accept(s->lfd, (struct sockaddr *)&sa, &sl);
        if (fd < 0) {
            return; /* EAGAIN, or a transient error: the next readiness retries */
        }
        struct ismg_conn *c = calloc(1, sizeof(*c));
        if (c == NULL || set_nonblock(fd) < 0) {
            free(c);
            close(fd);
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->srv = s;
        c->fd = fd;
        c->st = CONN_ST_LOGIN;
        c->ver = CMPP_V30;
        c->next_seq = 1;
        c->last_rx = ev_now(loop);
        char ip[INET_ADDRSTRLEN] = "?";
        (void)inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
        (void)snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, (unsigned)ntohs(sa.sin_port));
        sim_outq_link_init(&c->link, c->peer);
        ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
        ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
        ev_timer_init(&c->hb_timer, conn_hb_cb, ISMG_LOGIN_TIMEOUT_S, 0.);
        ev_timer_init(&c->kill_timer, conn_kill_cb, 0., 0.);
        ev_io_start(loop, &c->rio);
        ev_timer_start(loop, &c->hb_timer);
        c->next = s->conns;
        if (s->conns != NULL) {
            s->conns->prev = c;
        }
        s->conns = c;
        s->n_conns++;
        s->ctr[SIM_ISMG_CONNECTIONS]++;
    }
}

static void drop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sim_ismg *s = ISMG_CONTAINER_OF(w, struct sim_ismg, drop_timer);
    if (s->conns != NULL) {
        fprintf(stderr, "ismg: fault drop_every_s: closing %zu connection(s)\n", s->n_conns);
    }
    sim_ismg_drop_all(s);
}

/* ---- public --------------------------------------------------------------------- */

void sim_ismg_cfg_defaults(struct sim_ismg_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->versions = SIM_ISMG_VERS_ANY;
    cfg->rate_per_s = 0;
    cfg->window = 16;
    cfg->gateway_code = 0x1234;
    cfg->heartbeat_s = 30;
    cfg->resp_timeout_ms = 10000;
    cfg->max_pending = 200000;
}

int sim_ismg_new(struct ev_loop *loop, const struct sim_ismg_cfg *cfg, struct sim_ismg **out,
                 struct ota_err *err)
{
    if (loop == NULL || cfg == NULL || out == NULL || cfg->sp_id == NULL ||
        strlen(cfg->sp_id) == 0 || strlen(cfg->sp_id) > CMPP_SRC_ADDR_LEN ||
        cfg->secret_len > CMPP_SECRET_MAX_LEN || (cfg->secret_len > 0 && cfg->secret == NULL) ||
        cfg->window == 0 || cfg->heartbeat_s == 0 || cfg->resp_timeout_ms == 0 ||
        cfg->gateway_code >= (1u << 22) || cfg->max_pending == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "ismg: bad configuration");
    }
    struct sim_ismg *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return ota_fail(err, -ENOMEM, OTA_ERR_NOSPACE, "ismg: out of memory");
    }
    s->loop = loop;
    s->cfg = *cfg;
    if (cfg->faults != NULL) {
        s->faults = *cfg->faults;
    }
    s->cfg.faults = &s->faults;
    memcpy(s->sp_id, cfg->sp_id, strlen(cfg->sp_id) + 1);
    s->cfg.sp_id = s->sp_id;
    if (cfg->secret_len > 0) {
        memcpy(s->secret, cfg->secret, cfg->secret_len);
    }
    s->cfg.secret = s->secret;
    s->cfg.host = NULL;
    sim_rng_seed(&s->rng, cfg->seed ^ 0x49534D47ull); /* "ISMG": own stream per role */
    const struct sim_outq_cfg qcfg = {
        .role = "ismg",
        .pdu_name = "DELIVER",
        .report_name = "report",
        .tries = ISMG_DLV_TRIES,
        .resp_timeout_ms = cfg->resp_timeout_ms,
        .max_pending = cfg->max_pending,
        .ctrs =
            {
                .dlrs_sent = SIM_ISMG_DLRS_SENT,
                .mos_sent = SIM_ISMG_MOS_SENT,
                .resps = SIM_ISMG_DELIVER_RESPS,
                .retries = SIM_ISMG_DELIVER_RETRIES,
                .gave_up = SIM_ISMG_DELIVER_GAVE_UP,
                .overflow = SIM_ISMG_PENDING_OVERFLOW,
            },
    };
    sim_outq_init(&s->outq, loop, &qcfg, &ismg_outq_ops, s, s->ctr);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(cfg->port);
    const char *host = cfg->host != NULL ? cfg->host : "127.0.0.1";
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        free(s);
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "ismg: bad listen address '%s'", host);
    }
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    socklen_t sl = sizeof(sa);
    if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->lfd, 64) < 0 ||
        set_nonblock(s->lfd) < 0 || getsockname(s->lfd, (struct sockaddr *)&sa, &sl) < 0) {
        int e = errno;
        if (s->lfd >= 0) {
            close(s->lfd);
        }
        free(s);
        return ota_fail(err, -e, OTA_ERR_STATE, "ismg: listen on %s:%u: %s", host,
                        (unsigned)cfg->port, strerror(e));
    }
    s->port = ntohs(sa.sin_port);
    ev_io_init(&s->accept_w, accept_cb, s->lfd, EV_READ);
    ev_io_start(loop, &s->accept_w);
    ev_timer_init(&s->drop_timer, drop_cb, s->faults.drop_every_s, s->faults.drop_every_s);
    if (s->faults.drop_every_s > 0) {
        ev_timer_start(loop, &s->drop_timer);
    }
    *out = s;
    return 0;
}

void sim_ismg_free(struct sim_ismg *s)
{
    if (s == NULL) {
        return;
    }
    ev_io_stop(s->loop, &s->accept_w);
    ev_timer_stop(s->loop, &s->drop_timer);
    for (struct ismg_conn *c = s->conns; c != NULL; c = c->next) {
        c->failed = true; /* keeps conn_kill's pump from sending on the others */
    }
    while (s->conns != NULL) {
        conn_kill(s->conns);
    }
    sim_outq_clear(&s->outq);
    if (s->lfd >= 0) {
        close(s->lfd);
    }
    free(s);
}

uint16_t sim_ismg_port(const struct sim_ismg *s)
{
    return s->port;
}

size_t sim_ismg_n_conns(const struct sim_ismg *s)
{
    return s->n_conns;
}

size_t sim_ismg_n_pending(const struct sim_ismg *s)
{
    size_t n = sim_outq_n_held(&s->outq);
    for (const struct ismg_conn *c = s->conns; c != NULL; c = c->next) {
        n += c->link.inflight.n;
    }
    return n;
}

void sim_ismg_terminate_all(struct sim_ismg *s)
{
    for (struct ismg_conn *c = s->conns; c != NULL; c = c->next) {
        if (c->failed) {
            continue;
        }
        if (c->st != CONN_ST_ACTIVE) {
            conn_fail(c);
            continue;
        }
        s->ctr[SIM_ISMG_TERMINATE_TX]++;
        conn_send_empty(c, CMPP_TERMINATE, conn_next_seq(c));
        conn_start_closing(c, CONN_EV_TERMINATE_TX, false);
    }
}

void sim_ismg_drop_all(struct sim_ismg *s)
{
    while (s->conns != NULL) {
        s->ctr[SIM_ISMG_LINK_DROPS]++;
        conn_kill(s->conns);
    }
}

uint64_t sim_ismg_count(const struct sim_ismg *s, enum sim_ismg_ctr c)
{
    if ((unsigned)c >= SIM_ISMG_CTR__COUNT) {
        return 0;
    }
    return s->ctr[c];
}

json_t *sim_ismg_counts_json(const struct sim_ismg *s)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    for (unsigned i = 0; i < SIM_ISMG_CTR__COUNT; i++) {
        if (json_object_set_new(o, ismg_ctr_names[i], json_integer((json_int_t)s->ctr[i])) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    json_t *pend = json_integer((json_int_t)sim_ismg_n_pending(s));
    if (json_object_set_new(o, "pending", pend) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
