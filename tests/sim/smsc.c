/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SMSC role of the simulator: SMPP 3.4 server on libsmpp34 (see smsc.h).
 * Clauses from ../shared/reference/smpp.md: §1 header and ids, §2 bind, §3
 * submit_sm fields (esm_class 0x40 UDHI, protocol_id, data_coding), §4
 * receipts (Appendix B text, receipted_message_id 0x001E, message_state
 * 0x0427), §5 enquire_link / generic_nack / unbind, §6 error codes
 * (ESME_RTHROTTLED 0x58 is temporary for Kannel, ESME_RSUBMITFAIL 0x45 final).
 * Only the 16-octet header is read here, to frame the stream; every PDU body
 * is unpacked and packed by libsmpp34.
 *
 * A connection is OPEN -> BOUND -> CLOSING -> CLOSED (conn_st table). A
 * receipt or MO is LATE -> QUEUED -> INFLIGHT, as in the ISMG role (the
 * shared queue in outq.h).
 */
#include "tests/sim/smsc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <smpp34.h>
#include <smpp34_structs.h>
#include <smpp34_params.h>

#include "tests/sim/outq.h"

#define SMSC_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define SMSC_HDR_LEN 16
#define SMSC_PDU_MAX (16u << 10) /* message_payload can reach 64K; 16K is plenty for OTA */
#define SMSC_WBUF_MAX (4u << 20)
#define SMSC_WBUF_PAUSE (1u << 20)
#define SMSC_LOGIN_TIMEOUT_S 10.0
#define SMSC_CLOSE_GRACE_S 1.0
#define SMSC_EL_TRIES 3
#define SMSC_DLV_TRIES 3
#define SMSC_SM_MAX 253 /* libsmpp34 packs short_message of fewer than 254 octets */
#define SMSC_ID_MAX 65  /* receipted_message_id, NUL included (ref §4) */
#define SMSC_MSG_STATE_DELIVERED 2
#define SMSC_MSG_STATE_UNDELIVERABLE 5
#define SMSC_RD_MASK 0x03    /* registered_delivery bits 1-0 (ref §3) */
#define SMSC_RD_FINAL 0x01   /* receipt on success or failure */
#define SMSC_RD_FAILURE 0x02 /* receipt on failure only */
#define SMSC_SYSTEM_ID "otagwsim"
#define SMSC_DCS_CLASS2_8BIT 0xF6 /* TS 23.038 4: 8-bit data, class 2 */

static const char *const smsc_ctr_names[SIM_SMSC_CTR__COUNT] = {
    [SIM_SMSC_PDUS_RX] = "pdus_rx",
    [SIM_SMSC_PDUS_TX] = "pdus_tx",
    [SIM_SMSC_CONNECTIONS] = "connections",
    [SIM_SMSC_BINDS_OK] = "binds_ok",
    [SIM_SMSC_LOGINS_REFUSED] = "logins_refused",
    [SIM_SMSC_SUBMITS] = "submits",
    [SIM_SMSC_SUBMITS_OK] = "submits_ok",
    [SIM_SMSC_FLOW_CONTROL] = "flow_control",
    [SIM_SMSC_THROTTLE_FAULTS] = "throttle_faults",
    [SIM_SMSC_REJECTED] = "rejected",
    [SIM_SMSC_INVALID_PDUS] = "invalid_pdus",
    [SIM_SMSC_DLRS_SENT] = "dlrs_sent",
    [SIM_SMSC_DLRS_UNDELIV] = "dlrs_undeliv",
    [SIM_SMSC_DLRS_LOST] = "dlrs_lost",
    [SIM_SMSC_MOS_SENT] = "mos_sent",
    [SIM_SMSC_POR_LOST] = "por_lost",
    [SIM_SMSC_POR_CORRUPTED] = "por_corrupted",
    [SIM_SMSC_CARD_ABSENT] = "card_absent",
    [SIM_SMSC_CARD_ERRORS] = "card_errors",
    [SIM_SMSC_DELIVER_RESPS] = "deliver_resps",
    [SIM_SMSC_DELIVER_RETRIES] = "deliver_retries",
    [SIM_SMSC_DELIVER_GAVE_UP] = "deliver_gave_up",
    [SIM_SMSC_PENDING_OVERFLOW] = "pending_overflow",
    [SIM_SMSC_ENQUIRE_LINK_RX] = "enquire_link_rx",
    [SIM_SMSC_ENQUIRE_LINK_TX] = "enquire_link_tx",
    [SIM_SMSC_UNBIND_RX] = "unbind_rx",
    [SIM_SMSC_UNBIND_TX] = "unbind_tx",
    [SIM_SMSC_LINK_DROPS] = "link_drops",
};

const char *sim_smsc_ctr_name(enum sim_smsc_ctr c)
{
    if ((unsigned)c >= SIM_SMSC_CTR__COUNT) {
        return "unknown";
    }
    return smsc_ctr_names[c];
}

/* ---- connection state machine (STYLE §5) ---------------------------------------- */

enum conn_st {
    CONN_ST_OPEN = 0,    /* accepted, not bound */
    CONN_ST_BOUND = 1,   /* bind accepted */
    CONN_ST_CLOSING = 2, /* unbind sent or answered, or bind refused */
    CONN_ST_CLOSED = 3,
    CONN_ST__COUNT
};

enum conn_ev {
    CONN_EV_BIND_OK = 0,
    CONN_EV_BIND_REFUSED = 1,
    CONN_EV_UNBIND_RX = 2,
    CONN_EV_UNBIND_TX = 3,
    CONN_EV_CLOSED = 4,
    CONN_EV__COUNT
};

#define ST_BIT(s) (1u << (s))

static const struct conn_st_desc {
    const char *name;
    uint32_t next;
} conn_st_tab[CONN_ST__COUNT] = {
    [CONN_ST_OPEN] = {"open",
                      ST_BIT(CONN_ST_BOUND) | ST_BIT(CONN_ST_CLOSING) | ST_BIT(CONN_ST_CLOSED)},
    [CONN_ST_BOUND] = {"bound", ST_BIT(CONN_ST_CLOSING) | ST_BIT(CONN_ST_CLOSED)},
    [CONN_ST_CLOSING] = {"closing", ST_BIT(CONN_ST_CLOSED)},
    [CONN_ST_CLOSED] = {"closed", 0},
};

static const char *const conn_ev_names[CONN_EV__COUNT] = {
    [CONN_EV_BIND_OK] = "bind-ok",     [CONN_EV_BIND_REFUSED] = "bind-refused",
    [CONN_EV_UNBIND_RX] = "unbind-rx", [CONN_EV_UNBIND_TX] = "unbind-tx",
    [CONN_EV_CLOSED] = "closed",
};

struct smsc_conn;
struct sim_smsc;

/* A deliver_sm to send: a receipt or an MO (queued by the shared outq). */
struct smsc_dlv {
    struct sim_outq_item it; /* first: is_report (a receipt), seq, tries, state */
    char source_addr[ADDRESS_LENGTH];
    char destination_addr[ADDRESS_LENGTH];
    uint8_t esm_class, protocol_id, data_coding;
    char receipted_id[SMSC_ID_MAX];
    uint8_t message_state;
    uint8_t sm_len;
    uint8_t sm[SMSC_SM_MAX];
};

struct smsc_conn {
    struct smsc_conn *prev, *next;
    struct sim_smsc *srv;
    int fd;
    ev_io rio, wio;
    ev_timer hb_timer;
    ev_timer kill_timer;
    enum conn_st st;
    bool failed;
    bool close_when_flushed;
    bool can_tx, can_rx; /* bound as transmitter / receiver (both for transceiver) */
    char peer[64];
    uint32_t next_seq;
    struct sim_bucket bucket;
    double last_rx;
    unsigned el_unanswered;
    struct sim_outq_link link; /* receipts and MOs in flight here */
    size_t rlen;
    uint8_t rbuf[SMSC_PDU_MAX];
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
};

struct sim_smsc {
    struct ev_loop *loop;
    struct sim_smsc_cfg cfg;
    struct sim_faults faults;
    char system_id[SIM_SMSC_SYSTEM_ID_MAX + 1];
    char password[SIM_SMSC_PASSWORD_MAX + 1];
    int lfd;
    uint16_t port;
    ev_io accept_w;
    ev_timer drop_timer;
    struct smsc_conn *conns;
    size_t n_conns;
    struct sim_outq outq; /* receipts and MOs held, queued and in flight */
    uint64_t next_msgid;
    struct sim_rng rng;
    uint64_t ctr[SIM_SMSC_CTR__COUNT];
};

static void conn_fail(struct smsc_conn *c);
static void conn_process(struct smsc_conn *c);

static void conn_set_state(struct smsc_conn *c, enum conn_st st, enum conn_ev ev)
{
    if (c->st == st) {
        return;
    }
    if ((conn_st_tab[c->st].next & ST_BIT(st)) == 0) {
        fprintf(stderr, "smsc: conn=%s refused %s -> %s (%s)\n", c->peer, conn_st_tab[c->st].name,
                conn_st_tab[st].name, conn_ev_names[ev]);
        return;
    }
    if (getenv("OTAGW_SIM_DEBUG") != NULL) {
        fprintf(stderr, "smsc: conn=%s %s -> %s (%s)\n", c->peer, conn_st_tab[c->st].name,
                conn_st_tab[st].name, conn_ev_names[ev]);
    }
    c->st = st;
}

static void smsc_copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- output ------------------------------------------------------------------------ */

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct smsc_conn *c = SMSC_CONTAINER_OF(w, struct smsc_conn, wio);
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
    if (!c->failed && !ev_is_active(&c->rio)) {
        ev_io_start(loop, &c->rio);
        conn_process(c);
    }
}

static void conn_send(struct smsc_conn *c, const uint8_t *p, size_t len)
{
    if (c->failed) {
        return;
    }
    c->srv->ctr[SIM_SMSC_PDUS_TX]++;
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
        uint8_t *nb = cap <= SMSC_WBUF_MAX ? realloc(c->wbuf, cap) : NULL;
        if (nb == NULL) {
            fprintf(stderr, "smsc: conn=%s output over %u octets, dropping the link\n", c->peer,
                    SMSC_WBUF_MAX);
            conn_fail(c);
            return;
        }
        c->wbuf = nb;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, p, len);
    c->wlen += len;
    ev_io_start(c->srv->loop, &c->wio);
    if (c->wlen - c->woff > SMSC_WBUF_PAUSE) {
        ev_io_stop(c->srv->loop, &c->rio);
    }
}

static uint32_t conn_next_seq(struct smsc_conn *c)
{
    uint32_t s = c->next_seq++;
    if (c->next_seq > 0x7FFFFFFFu) { /* ref §1: 1 .. 0x7FFFFFFF */
        c->next_seq = 1;
    }
    return s;
}

/* Pack a libsmpp34 PDU struct (type = its command_id) and send it. */
static int conn_send_pdu(struct smsc_conn *c, uint32_t type, void *pdu)
{
    uint8_t buf[2048];
    int len = 0;
    if (smpp34_pack(type, buf, (int)sizeof(buf), &len, pdu) != 0 || len < SMSC_HDR_LEN) {
        fprintf(stderr, "smsc: conn=%s cannot pack 0x%08x: %s\n", c->peer, type, smpp34_strerror);
        return -EINVAL;
    }
    conn_send(c, buf, (size_t)len);
    return 0;
}

/* Header-only PDUs: enquire_link(_resp), unbind(_resp), generic_nack. */
static void conn_send_hdr(struct smsc_conn *c, uint32_t cmd_id, uint32_t status, uint32_t seq)
{
    generic_nack_t h; /* every header-only struct has this layout; pack picks by cmd_id */
    memset(&h, 0, sizeof(h));
    h.command_id = cmd_id;
    h.command_status = status;
    h.sequence_number = seq;
    (void)conn_send_pdu(c, cmd_id, &h);
}

/* ---- lifetime ---------------------------------------------------------------------- */

static void conn_kill(struct smsc_conn *c)
{
    struct sim_smsc *s = c->srv;
    conn_set_state(c, CONN_ST_CLOSED, CONN_EV_CLOSED);
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    ev_timer_stop(s->loop, &c->hb_timer);
    ev_timer_stop(s->loop, &c->kill_timer);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
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
    conn_kill(SMSC_CONTAINER_OF(w, struct smsc_conn, kill_timer));
}

static void conn_fail(struct smsc_conn *c)
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

static void conn_arm(struct smsc_conn *c, double after_s)
{
    ev_timer_stop(c->srv->loop, &c->hb_timer);
    ev_timer_set(&c->hb_timer, after_s, 0.);
    ev_timer_start(c->srv->loop, &c->hb_timer);
}

static void conn_start_closing(struct smsc_conn *c, enum conn_ev ev, bool when_flushed)
{
    conn_set_state(c, CONN_ST_CLOSING, ev);
    c->close_when_flushed = when_flushed;
    conn_arm(c, SMSC_CLOSE_GRACE_S);
    if (when_flushed && c->wlen == 0) {
        conn_fail(c);
    }
}

static void conn_send_enquire(struct smsc_conn *c)
{
    c->srv->ctr[SIM_SMSC_ENQUIRE_LINK_TX]++;
    conn_send_hdr(c, ENQUIRE_LINK, ESME_ROK, conn_next_seq(c));
    c->el_unanswered++;
}

static void conn_hb_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct smsc_conn *c = SMSC_CONTAINER_OF(w, struct smsc_conn, hb_timer);
    struct sim_smsc *s = c->srv;
    double t = s->cfg.resp_timeout_ms / 1000.0;
    if (c->st != CONN_ST_BOUND) {
        conn_fail(c);
        return;
    }
    if (c->el_unanswered > 0) {
        if (c->el_unanswered >= SMSC_EL_TRIES) {
            fprintf(stderr, "smsc: conn=%s %u enquire_link unanswered, dropping the link\n",
                    c->peer, c->el_unanswered);
            s->ctr[SIM_SMSC_LINK_DROPS]++;
            conn_fail(c);
            return;
        }
        conn_send_enquire(c);
        conn_arm(c, t);
        return;
    }
    double idle = ev_now(loop) - c->last_rx;
    if (idle >= s->cfg.heartbeat_s) {
        conn_send_enquire(c);
        conn_arm(c, t);
        return;
    }
    conn_arm(c, s->cfg.heartbeat_s - idle);
}

/* ---- deliveries ----------------------------------------------------------------------- */

static int dlv_encode_send(struct sim_outq_link *link, struct sim_outq_item *it)
{
    struct smsc_conn *c = SMSC_CONTAINER_OF(link, struct smsc_conn, link);
    const struct smsc_dlv *d = SMSC_CONTAINER_OF(it, struct smsc_dlv, it);
    deliver_sm_t *pdu = calloc(1, sizeof(*pdu));
    tlv_t *tlv_id = calloc(1, sizeof(*tlv_id));
    tlv_t *tlv_st = calloc(1, sizeof(*tlv_st));
    int rc = -ENOMEM;
    if (pdu == NULL || tlv_id == NULL || tlv_st == NULL) {
        goto out;
    }
    pdu->command_id = DELIVER_SM;
    pdu->command_status = ESME_ROK;
    pdu->sequence_number = d->it.seq;
    pdu->source_addr_ton = TON_International;
    pdu->source_addr_npi = NPI_ISDN_E163_E164;
    smsc_copy_text((char *)pdu->source_addr, sizeof(pdu->source_addr), d->source_addr);
    pdu->dest_addr_ton = TON_Unknown;
    pdu->dest_addr_npi = NPI_Unknown;
    smsc_copy_text((char *)pdu->destination_addr, sizeof(pdu->destination_addr),
                   d->destination_addr);
    pdu->esm_class = d->esm_class;
    pdu->protocol_id = d->protocol_id;
    pdu->data_coding = d->data_coding;
    pdu->sm_length = d->sm_len;
    memcpy(pdu->short_message, d->sm, d->sm_len);
    if (d->it.is_report) {
        tlv_id->tag = TLVID_receipted_message_id;
        tlv_id->length = (uint16_t)(strlen(d->receipted_id) + 1);
        memcpy(tlv_id->value.octet, d->receipted_id, tlv_id->length);
        tlv_st->tag = TLVID_message_state;
        tlv_st->length = 1;
        tlv_st->value.val08 = d->message_state;
        tlv_id->next = tlv_st;
        pdu->tlv = tlv_id;
    }
    rc = conn_send_pdu(c, DELIVER_SM, pdu);
out:
    free(tlv_st);
    free(tlv_id);
    free(pdu);
    return rc;
}

static uint32_t dlv_next_seq(struct sim_outq_link *link)
{
    return conn_next_seq(SMSC_CONTAINER_OF(link, struct smsc_conn, link));
}

static struct sim_outq_link *smsc_pick(void *ctx)
{
    struct sim_smsc *s = ctx;
    struct smsc_conn *best = NULL;
    for (struct smsc_conn *c = s->conns; c != NULL; c = c->next) {
        if (c->st != CONN_ST_BOUND || c->failed || !c->can_rx ||
            c->link.inflight.n >= s->cfg.window) {
            continue;
        }
        if (best == NULL || c->link.inflight.n < best->link.inflight.n) {
            best = c;
        }
    }
    return best != NULL ? &best->link : NULL;
}

static const struct sim_outq_ops smsc_outq_ops = {
    .pick = smsc_pick,
    .next_seq = dlv_next_seq,
    .encode_send = dlv_encode_send,
};

static struct smsc_dlv *dlv_new(struct sim_smsc *s)
{
    struct sim_outq_item *it = sim_outq_alloc(&s->outq, sizeof(struct smsc_dlv));
    return it != NULL ? SMSC_CONTAINER_OF(it, struct smsc_dlv, it) : NULL;
}

/* ---- PDU handlers ---------------------------------------------------------------------- */

static void receipt_time(char out[11])
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    int n = snprintf(out, 11, "%02d%02d%02d%02d%02d", tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min);
    if (n != 10) {
        memcpy(out, "0001010000", 11);
    }
}

static void handle_bind(struct smsc_conn *c, uint32_t cmd_id, const uint8_t *p, size_t len,
                        uint32_t seq)
{
    struct sim_smsc *s = c->srv;
    /* bind_transmitter/receiver/transceiver share one body layout (ref §2) */
    bind_transceiver_t *req = calloc(1, sizeof(*req));
    bind_transceiver_resp_t *resp = calloc(1, sizeof(*resp));
    if (req == NULL || resp == NULL) {
        free(req);
        free(resp);
        conn_fail(c);
        return;
    }
    uint32_t status = ESME_ROK;
    if (c->st != CONN_ST_OPEN) {
        status = ESME_RALYBND;
    } else if (smpp34_unpack(cmd_id, req, p, (int)len) != 0) {
        s->ctr[SIM_SMSC_INVALID_PDUS]++;
        fprintf(stderr, "smsc: conn=%s bad bind: %s\n", c->peer, smpp34_strerror);
        status = ESME_RBINDFAIL;
    } else if (strcmp((const char *)req->system_id, s->system_id) != 0) {
        fprintf(stderr, "smsc: conn=%s bind system_id '%s' unknown\n", c->peer,
                (const char *)req->system_id);
        status = ESME_RINVSYSID;
    } else if (strcmp((const char *)req->password, s->password) != 0) {
        fprintf(stderr, "smsc: conn=%s bind password refused\n", c->peer);
        status = ESME_RINVPASWD;
    }
    resp->command_id = cmd_id | GENERIC_NACK;
    resp->command_status = status;
    resp->sequence_number = seq;
    smsc_copy_text((char *)resp->system_id, sizeof(resp->system_id), SMSC_SYSTEM_ID);
    (void)conn_send_pdu(c, resp->command_id, resp);
    free(req);
    free(resp);
    if (status == ESME_RALYBND) {
        s->ctr[SIM_SMSC_INVALID_PDUS]++;
        return;
    }
    if (status != ESME_ROK) {
        s->ctr[SIM_SMSC_LOGINS_REFUSED]++;
        conn_start_closing(c, CONN_EV_BIND_REFUSED, true);
        return;
    }
    s->ctr[SIM_SMSC_BINDS_OK]++;
    c->can_tx = cmd_id != BIND_RECEIVER;
    c->can_rx = cmd_id != BIND_TRANSMITTER;
    conn_set_state(c, CONN_ST_BOUND, CONN_EV_BIND_OK);
    sim_bucket_init(&c->bucket, s->cfg.rate_per_s, ev_now(s->loop));
    conn_arm(c, s->cfg.heartbeat_s);
    sim_outq_pump(&s->outq);
}

static void send_submit_resp(struct smsc_conn *c, uint32_t seq, uint32_t status, const char *id)
{
    submit_sm_resp_t resp;
    memset(&resp, 0, sizeof(resp));
    resp.command_id = SUBMIT_SM_RESP;
    resp.command_status = status;
    resp.sequence_number = seq;
    if (id != NULL) {
        smsc_copy_text((char *)resp.message_id, sizeof(resp.message_id), id);
    }
    (void)conn_send_pdu(c, SUBMIT_SM_RESP, &resp);
}

/* The MT's user data: short_message, or a message_payload TLV when sm_length is 0. */
static bool submit_ud(const submit_sm_t *sm, const uint8_t **ud, size_t *len)
{
    if (sm->sm_length > 0) {
        *ud = sm->short_message;
        *len = sm->sm_length;
        return true;
    }
    for (const tlv_t *t = sm->tlv; t != NULL; t = t->next) {
        if (t->tag == TLVID_message_payload && t->length <= OTA_SMS_UD_MAX) {
            *ud = t->value.octet;
            *len = t->length;
            return true;
        }
    }
    *ud = sm->short_message;
    *len = 0;
    return true;
}

static void submit_deliver(struct smsc_conn *c, const submit_sm_t *sm, const char *msg_id,
                           const struct sim_fate *fate)
{
    struct sim_smsc *s = c->srv;
    const char *msisdn = (const char *)sm->destination_addr;
    bool delivered = true;
    enum sim_outcome outcome = SIM_OUT_NO_POR;
    struct sim_mo mo;
    memset(&mo, 0, sizeof(mo));
    char submit_date[11];
    receipt_time(submit_date);

    if (fate->card_absent) {
        s->ctr[SIM_SMSC_CARD_ABSENT]++;
        delivered = false;
    } else if (s->cfg.card.deliver != NULL) {
        const uint8_t *ud = NULL;
        size_t ud_len = 0;
        (void)submit_ud(sm, &ud, &ud_len);
        struct ota_err err;
        ota_err_clear(&err);
        int rc = s->cfg.card.deliver(s->cfg.card.ctx, msisdn, ud, ud_len,
                                     (sm->esm_class & SMPP34_UDHI_IND) != 0, sm->protocol_id,
                                     sm->data_coding, &outcome, &mo, &err);
        if (rc < 0) {
            s->ctr[SIM_SMSC_CARD_ERRORS]++;
            fprintf(stderr, "smsc: conn=%s card %s: %s\n", c->peer, msisdn, err.msg);
            delivered = false;
            outcome = SIM_OUT_INVALID;
        } else if (outcome == SIM_OUT_UNKNOWN_SE) {
            delivered = false;
        }
    }
    if (fate->dlr_fail) {
        delivered = false;
    }

    uint8_t rd = sm->registered_delivery & SMSC_RD_MASK;
    bool want = rd == SMSC_RD_FINAL || (rd == SMSC_RD_FAILURE && !delivered);
    if (want && fate->dlr_lost) {
        s->ctr[SIM_SMSC_DLRS_LOST]++;
    } else if (want) {
        struct smsc_dlv *d = dlv_new(s);
        if (d != NULL) {
            char done_date[11];
            receipt_time(done_date);
            d->it.is_report = true;
            smsc_copy_text(d->source_addr, sizeof(d->source_addr), msisdn);
            smsc_copy_text(d->destination_addr, sizeof(d->destination_addr),
                           (const char *)sm->source_addr);
            d->esm_class = SMPP34_DELIVERY_RECEIPT;
            smsc_copy_text(d->receipted_id, sizeof(d->receipted_id), msg_id);
            d->message_state = delivered ? SMSC_MSG_STATE_DELIVERED : SMSC_MSG_STATE_UNDELIVERABLE;
            /* ref §4: SMPP 3.4 Appendix B text, the same id as submit_sm_resp */
            int n = snprintf((char *)d->sm, sizeof(d->sm),
                             "id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s "
                             "text:",
                             msg_id, delivered ? "001" : "000", submit_date, done_date,
                             delivered ? "DELIVRD" : "UNDELIV", delivered ? "000" : "001");
            d->sm_len = (uint8_t)(n > 0 && (size_t)n < sizeof(d->sm) ? n : 0);
            if (!delivered) {
                s->ctr[SIM_SMSC_DLRS_UNDELIV]++;
            }
            sim_outq_enqueue(&s->outq, &d->it, fate->dlr_delay_ms);
        }
    }

    if (outcome != SIM_OUT_POR) {
        return;
    }
    if (fate->por_lost) {
        s->ctr[SIM_SMSC_POR_LOST]++;
        return;
    }
    if (fate->por_corrupt) {
        s->ctr[SIM_SMSC_POR_CORRUPTED]++;
        sim_fate_corrupt(fate, &mo);
    }
    struct smsc_dlv *d = dlv_new(s);
    if (d == NULL) {
        return;
    }
    d->it.is_report = false;
    smsc_copy_text(d->source_addr, sizeof(d->source_addr), msisdn);
    smsc_copy_text(d->destination_addr, sizeof(d->destination_addr), (const char *)sm->source_addr);
    d->esm_class = mo.udhi ? SMPP34_UDHI_IND : 0;
    d->protocol_id = mo.pid;
    d->data_coding = mo.dcs != 0 ? mo.dcs : SMSC_DCS_CLASS2_8BIT;
    d->sm_len = mo.len < SMSC_SM_MAX ? mo.len : SMSC_SM_MAX;
    memcpy(d->sm, mo.ud, d->sm_len);
    sim_outq_enqueue(&s->outq, &d->it, 0);
}

static void handle_submit(struct smsc_conn *c, const uint8_t *p, size_t len, uint32_t seq)
{
    struct sim_smsc *s = c->srv;
    if (!c->can_tx) {
        s->ctr[SIM_SMSC_INVALID_PDUS]++;
        send_submit_resp(c, seq, ESME_RINVBNDSTS, NULL);
        return;
    }
    submit_sm_t *sm = calloc(1, sizeof(*sm));
    if (sm == NULL) {
        conn_fail(c);
        return;
    }
    if (smpp34_unpack(SUBMIT_SM, sm, p, (int)len) != 0) {
        s->ctr[SIM_SMSC_INVALID_PDUS]++;
        fprintf(stderr, "smsc: conn=%s seq=%u bad submit_sm: %s\n", c->peer, seq, smpp34_strerror);
        send_submit_resp(c, seq, ESME_RINVMSGLEN, NULL);
        destroy_tlv(sm->tlv);
        free(sm);
        return;
    }
    s->ctr[SIM_SMSC_SUBMITS]++;
    struct sim_fate fate;
    if (!sim_bucket_take(&c->bucket, ev_now(s->loop))) {
        s->ctr[SIM_SMSC_FLOW_CONTROL]++;
        send_submit_resp(c, seq, ESME_RTHROTTLED, NULL);
        goto out;
    }
    sim_faults_draw(&s->faults, &s->rng, &fate);
    if (fate.throttle) {
        s->ctr[SIM_SMSC_FLOW_CONTROL]++;
        s->ctr[SIM_SMSC_THROTTLE_FAULTS]++;
        send_submit_resp(c, seq, ESME_RTHROTTLED, NULL);
        goto out;
    }
    if (fate.reject) {
        s->ctr[SIM_SMSC_REJECTED]++;
        send_submit_resp(c, seq, ESME_RSUBMITFAIL, NULL);
        goto out;
    }
    char msg_id[24];
    (void)snprintf(msg_id, sizeof(msg_id), "%" PRIu64, ++s->next_msgid);
    s->ctr[SIM_SMSC_SUBMITS_OK]++;
    send_submit_resp(c, seq, ESME_ROK, msg_id);
    submit_deliver(c, sm, msg_id, &fate);
out:
    destroy_tlv(sm->tlv);
    free(sm);
}

static void handle_deliver_resp(struct smsc_conn *c, uint32_t status, uint32_t seq)
{
    struct sim_smsc *s = c->srv;
    struct sim_outq_item *it = sim_outq_take(&s->outq, &c->link, seq);
    if (it != NULL) {
        if (status != ESME_ROK) {
            fprintf(stderr, "smsc: conn=%s deliver_sm seq=%u answered 0x%08x\n", c->peer, seq,
                    status);
        }
        if (status == ESME_RX_T_APPN || status == ESME_RTHROTTLED || status == ESME_RMSGQFUL) {
            /* temporary (Kannel while starting or stopping): deliver it again later */
            ev_timer_stop(s->loop, &it->timer);
            it->tries = 0;
            sim_outq_enqueue(&s->outq, it, 500);
            return;
        }
        sim_outq_done(&s->outq, it);
        return;
    }
    s->ctr[SIM_SMSC_INVALID_PDUS]++;
}

static void conn_on_pdu(struct smsc_conn *c, const uint8_t *p, size_t len, uint32_t cmd_id,
                        uint32_t status, uint32_t seq)
{
    struct sim_smsc *s = c->srv;
    s->ctr[SIM_SMSC_PDUS_RX]++;
    c->last_rx = ev_now(s->loop);
    c->el_unanswered = 0;

    switch (cmd_id) {
    case BIND_TRANSCEIVER:
    case BIND_TRANSMITTER:
    case BIND_RECEIVER:
        if (c->st == CONN_ST_CLOSING) {
            return;
        }
        handle_bind(c, cmd_id, p, len, seq);
        return;
    case ENQUIRE_LINK:
        s->ctr[SIM_SMSC_ENQUIRE_LINK_RX]++;
        conn_send_hdr(c, ENQUIRE_LINK_RESP, ESME_ROK, seq);
        return;
    case ENQUIRE_LINK_RESP:
        return;
    case UNBIND:
        s->ctr[SIM_SMSC_UNBIND_RX]++;
        conn_send_hdr(c, UNBIND_RESP, ESME_ROK, seq);
        if (c->st == CONN_ST_CLOSING) {
            c->close_when_flushed = true;
            if (c->wlen == 0) {
                conn_fail(c);
            }
        } else {
            conn_start_closing(c, CONN_EV_UNBIND_RX, true);
        }
        return;
    case UNBIND_RESP:
        if (c->st == CONN_ST_CLOSING) {
            conn_fail(c);
        }
        return;
    case DELIVER_SM_RESP:
    case GENERIC_NACK:
        handle_deliver_resp(c, status, seq);
        return;
    default:
        break;
    }
    if (c->st != CONN_ST_BOUND) {
        s->ctr[SIM_SMSC_INVALID_PDUS]++;
        if ((cmd_id & GENERIC_NACK) == 0) {
            conn_send_hdr(c, GENERIC_NACK, ESME_RINVBNDSTS, seq);
        }
        return;
    }
    if (cmd_id == SUBMIT_SM) {
        handle_submit(c, p, len, seq);
        return;
    }
    /* query_sm, data_sm, submit_multi, ...: not served; responses nobody asked for */
    s->ctr[SIM_SMSC_INVALID_PDUS]++;
    fprintf(stderr, "smsc: conn=%s seq=%u unexpected command 0x%08x\n", c->peer, seq, cmd_id);
    if ((cmd_id & GENERIC_NACK) == 0) {
        conn_send_hdr(c, GENERIC_NACK, ESME_RINVCMDID, seq);
    }
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void conn_process(struct smsc_conn *c)
{
    struct sim_smsc *s = c->srv;
    size_t off = 0;
    while (!c->failed && ev_is_active(&c->rio) && c->rlen - off >= 4) {
        uint32_t plen = get_u32(c->rbuf + off);
        if (plen < SMSC_HDR_LEN || plen > SMSC_PDU_MAX) {
            /* ref §5: generic_nack, then close: the stream cannot be re-framed */
            s->ctr[SIM_SMSC_INVALID_PDUS]++;
            fprintf(stderr, "smsc: conn=%s command_length %u out of range, closing\n", c->peer,
                    plen);
            conn_send_hdr(c, GENERIC_NACK, ESME_RINVCMDLEN, 0);
            c->close_when_flushed = true;
            if (c->wlen == 0) {
                conn_fail(c);
            }
            ev_io_stop(s->loop, &c->rio);
            return;
        }
        if (c->rlen - off < plen) {
            break;
        }
        const uint8_t *p = c->rbuf + off;
        conn_on_pdu(c, p, plen, get_u32(p + 4), get_u32(p + 8), get_u32(p + 12));
        off += plen;
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct smsc_conn *c = SMSC_CONTAINER_OF(w, struct smsc_conn, rio);
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
    struct sim_smsc *s = SMSC_CONTAINER_OF(w, struct sim_smsc, accept_w);
    for (;;) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        int fd = accept(s->lfd, (struct sockaddr *)&sa, &sl);
        if (fd < 0) {
            return;
        }
        struct smsc_conn *c = calloc(1, sizeof(*c));
        if (c == NULL || set_nonblock(fd) < 0) {
            free(c);
            close(fd);
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->srv = s;
        c->fd = fd;
        c->st = CONN_ST_OPEN;
        c->next_seq = 1;
        c->last_rx = ev_now(loop);
        char ip[INET_ADDRSTRLEN] = "?";
        (void)inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
        (void)snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, (unsigned)ntohs(sa.sin_port));
        sim_outq_link_init(&c->link, c->peer);
        ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
        ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
        ev_timer_init(&c->hb_timer, conn_hb_cb, SMSC_LOGIN_TIMEOUT_S, 0.);
        ev_timer_init(&c->kill_timer, conn_kill_cb, 0., 0.);
        ev_io_start(loop, &c->rio);
        ev_timer_start(loop, &c->hb_timer);
        c->next = s->conns;
        if (s->conns != NULL) {
            s->conns->prev = c;
        }
        s->conns = c;
        s->n_conns++;
        s->ctr[SIM_SMSC_CONNECTIONS]++;
    }
}

static void drop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sim_smsc *s = SMSC_CONTAINER_OF(w, struct sim_smsc, drop_timer);
    if (s->conns != NULL) {
        fprintf(stderr, "smsc: fault drop_every_s: closing %zu connection(s)\n", s->n_conns);
    }
    sim_smsc_drop_all(s);
}

/* ---- public ---------------------------------------------------------------------------- */

void sim_smsc_cfg_defaults(struct sim_smsc_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->window = 16;
    cfg->heartbeat_s = 30;
    cfg->resp_timeout_ms = 10000;
    cfg->max_pending = 200000;
}

int sim_smsc_new(struct ev_loop *loop, const struct sim_smsc_cfg *cfg, struct sim_smsc **out,
                 struct ota_err *err)
{
    if (loop == NULL || cfg == NULL || out == NULL || cfg->system_id == NULL ||
        cfg->password == NULL || strlen(cfg->system_id) == 0 ||
        strlen(cfg->system_id) > SIM_SMSC_SYSTEM_ID_MAX ||
        strlen(cfg->password) > SIM_SMSC_PASSWORD_MAX || cfg->window == 0 ||
        cfg->heartbeat_s == 0 || cfg->resp_timeout_ms == 0 || cfg->max_pending == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "smsc: bad configuration");
    }
    struct sim_smsc *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return ota_fail(err, -ENOMEM, OTA_ERR_NOSPACE, "smsc: out of memory");
    }
    s->loop = loop;
    s->cfg = *cfg;
    if (cfg->faults != NULL) {
        s->faults = *cfg->faults;
    }
    s->cfg.faults = &s->faults;
    smsc_copy_text(s->system_id, sizeof(s->system_id), cfg->system_id);
    smsc_copy_text(s->password, sizeof(s->password), cfg->password);
    s->cfg.system_id = s->system_id;
    s->cfg.password = s->password;
    s->cfg.host = NULL;
    sim_rng_seed(&s->rng, cfg->seed ^ 0x534D5343ull); /* "SMSC": own stream per role */
    const struct sim_outq_cfg qcfg = {
        .role = "smsc",
        .pdu_name = "deliver_sm",
        .report_name = "receipt",
        .tries = SMSC_DLV_TRIES,
        .resp_timeout_ms = cfg->resp_timeout_ms,
        .max_pending = cfg->max_pending,
        .ctrs =
            {
                .dlrs_sent = SIM_SMSC_DLRS_SENT,
                .mos_sent = SIM_SMSC_MOS_SENT,
                .resps = SIM_SMSC_DELIVER_RESPS,
                .retries = SIM_SMSC_DELIVER_RETRIES,
                .gave_up = SIM_SMSC_DELIVER_GAVE_UP,
                .overflow = SIM_SMSC_PENDING_OVERFLOW,
            },
    };
    sim_outq_init(&s->outq, loop, &qcfg, &smsc_outq_ops, s, s->ctr);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(cfg->port);
    const char *host = cfg->host != NULL ? cfg->host : "127.0.0.1";
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        free(s);
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "smsc: bad listen address '%s'", host);
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
        return ota_fail(err, -e, OTA_ERR_STATE, "smsc: listen on %s:%u: %s", host,
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

void sim_smsc_free(struct sim_smsc *s)
{
    if (s == NULL) {
        return;
    }
    ev_io_stop(s->loop, &s->accept_w);
    ev_timer_stop(s->loop, &s->drop_timer);
    for (struct smsc_conn *c = s->conns; c != NULL; c = c->next) {
        c->failed = true;
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

uint16_t sim_smsc_port(const struct sim_smsc *s)
{
    return s->port;
}

size_t sim_smsc_n_conns(const struct sim_smsc *s)
{
    return s->n_conns;
}

size_t sim_smsc_n_pending(const struct sim_smsc *s)
{
    size_t n = sim_outq_n_held(&s->outq);
    for (const struct smsc_conn *c = s->conns; c != NULL; c = c->next) {
        n += c->link.inflight.n;
    }
    return n;
}

void sim_smsc_unbind_all(struct sim_smsc *s)
{
    for (struct smsc_conn *c = s->conns; c != NULL; c = c->next) {
        if (c->failed) {
            continue;
        }
        if (c->st != CONN_ST_BOUND) {
            conn_fail(c);
            continue;
        }
        s->ctr[SIM_SMSC_UNBIND_TX]++;
        conn_send_hdr(c, UNBIND, ESME_ROK, conn_next_seq(c));
        conn_start_closing(c, CONN_EV_UNBIND_TX, false);
    }
}

void sim_smsc_drop_all(struct sim_smsc *s)
{
    while (s->conns != NULL) {
        s->ctr[SIM_SMSC_LINK_DROPS]++;
        conn_kill(s->conns);
    }
}

uint64_t sim_smsc_count(const struct sim_smsc *s, enum sim_smsc_ctr c)
{
    if ((unsigned)c >= SIM_SMSC_CTR__COUNT) {
        return 0;
    }
    return s->ctr[c];
}

json_t *sim_smsc_counts_json(const struct sim_smsc *s)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    for (unsigned i = 0; i < SIM_SMSC_CTR__COUNT; i++) {
        if (json_object_set_new(o, smsc_ctr_names[i], json_integer((json_int_t)s->ctr[i])) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    if (json_object_set_new(o, "pending", json_integer((json_int_t)sim_smsc_n_pending(s))) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
