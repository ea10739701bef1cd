/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The native CMPP 2.0/3.0 link (bearer_cmpp_ops): one TCP connection from the
 * SP to an ISMG, on the bearer's libev loop, never blocking. It logs in
 * (CONNECT with the MD5 AuthenticatorSource and timestamp, CONNECT_RESP
 * Status and AuthenticatorISMG checked) [cmpp.md §3], turns each bearer part
 * into a SUBMIT (Msg_Fmt 4 and TP_udhi for binary UDH payloads, TP_pId,
 * Pk_total/Pk_number, Registered_Delivery) [§4, §7], maps SUBMIT_RESP by
 * Sequence_Id to accepted / flow control (Result 8) / refused [§4, §6],
 * resends an unanswered SUBMIT after T up to N-1 times and then drops the
 * connection (the core resends in order after reconnecting) [§6], sends
 * ACTIVE_TEST after heartbeat_s without traffic from the ISMG with the same
 * T/N rule and answers the ISMG's [§6], turns DELIVER into a delivery report
 * or an MO for the core and answers DELIVER_RESP only once the core's
 * callback returned 0 [§5] (or, for BEARER_ACK_LATER, when the core releases
 * the held ack: Sequence_Id and Msg_Id are all a DELIVER_RESP needs), and
 * does TERMINATE both ways. Both buffers are bounded; reading stops while
 * the output buffer cannot take responses.
 */
#include "smpp/bearer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smpp/cmpp.h"

#define CL_RBUF_LEN 16384      /* > 4 x CMPP_PDU_MAX_LEN */
#define CL_WBUF_LEN 65536      /* output buffer */
#define CL_SUBMIT_RESERVE 8192 /* a SUBMIT is queued only with this much free */
#define CL_CTRL_RESERVE 1024   /* reading pauses below this much free */
#define CL_SUBMIT_MAX_LEN 512  /* one-destination SUBMIT, 3.0, 160 octets: < 512 */
#define CL_FEE_TYPE_FREE "01"  /* [cmpp.md §4] Fee_Type 01: free of charge */
#define CL_FEE_USER_SP 2       /* Fee_UserType 2: charge the SP */
#define CL_DCS_ALPHABET_8BIT 1 /* TS 23.038 §4: general group alphabet bits */
#define CL_DCS_ALPHABET_UCS2 2
#define CL_ACK_LEN 12 /* held DELIVER_RESP: Sequence_Id (4) + Msg_Id (8), host order */

struct cmpp_link {
    struct bearer_link *lk;
    enum cmpp_version ver;
    int fd;
    ev_io rio, wio;
    ev_timer login_timer; /* TCP connect + CONNECT_RESP */
    ev_timer resp_timer;  /* oldest SUBMIT awaiting SUBMIT_RESP (T) */
    ev_timer hb_timer;    /* ACTIVE_TEST after heartbeat_s of silence, then T/N */
    uint32_t next_seq;
    uint32_t connect_seq;
    uint8_t auth_source[CMPP_AUTH_LEN];
    bool at_pending;
    uint32_t at_seq;
    unsigned at_tries;
    ev_tstamp at_sent, last_rx;
    bool want_writable; /* a send() said -EAGAIN */
    size_t rlen, wlen;
    uint8_t rbuf[CL_RBUF_LEN];
    uint8_t wbuf[CL_WBUF_LEN];
    struct cmpp_pdu in;   /* decode scratch (4 KiB: not on the stack) */
    struct cmpp_pdu out;  /* SUBMIT template: fixed fields filled once */
    struct cmpp_pdu ctrl; /* responses and header-only PDUs (zeroed once) */
};

static struct cmpp_link *cl_of(const struct bearer_link *lk)
{
    return lk->impl;
}

static struct ev_loop *cl_loop(const struct cmpp_link *cl)
{
    return bearer_link_loop(cl->lk);
}

static double resp_timeout_s(const struct cmpp_link *cl)
{
    return cl->lk->conf.resp_timeout_ms / 1000.0;
}

/* ---- socket lifetime -------------------------------------------------------- */

/* Stop every watcher and close the socket; nothing is reported. */
static void cl_close_fd(struct cmpp_link *cl)
{
    struct ev_loop *loop = cl_loop(cl);
    ev_io_stop(loop, &cl->rio);
    ev_io_stop(loop, &cl->wio);
    ev_timer_stop(loop, &cl->login_timer);
    ev_timer_stop(loop, &cl->resp_timer);
    ev_timer_stop(loop, &cl->hb_timer);
    if (cl->fd >= 0) {
        close(cl->fd);
        cl->fd = -1;
    }
    cl->rlen = 0;
    cl->wlen = 0;
    cl->at_pending = false;
    cl->want_writable = false;
}

/* The connection is broken: close it and let the core re-queue and reconnect. */
static void cl_drop(struct cmpp_link *cl, const char *why)
{
    cl_close_fd(cl);
    bearer_link_lost(cl->lk, why);
}

static uint32_t cl_seq(struct cmpp_link *cl)
{
    uint32_t s = cl->next_seq++;
    if (cl->next_seq == 0) {
        cl->next_seq = 1;
    }
    return s;
}

static size_t wfree(const struct cmpp_link *cl)
{
    return sizeof(cl->wbuf) - cl->wlen;
}

/* Encode pdu at the end of the output buffer and arm the writer. */
static int cl_queue(struct cmpp_link *cl, const struct cmpp_pdu *pdu, struct ota_err *err)
{
    int n = cmpp_encode(pdu, cl->wbuf + cl->wlen, wfree(cl), err);
    if (n < 0) {
        return n;
    }
    cl->wlen += (size_t)n;
    ev_io_start(cl_loop(cl), &cl->wio);
    if (wfree(cl) < CL_CTRL_RESERVE) {
        ev_io_stop(cl_loop(cl), &cl->rio); /* cannot answer more: stop reading */
    }
    return 0;
}

/* Queue a header-only PDU or a resp (DELIVER_RESP, *_RESP, ACTIVE_TEST, TERMINATE). */
static int cl_queue_simple(struct cmpp_link *cl, uint32_t cmd_id, uint32_t seq, uint64_t msg_id,
                           uint32_t result)
{
    struct ota_err e;
    cl->ctrl.cmd_id = cmd_id;
    cl->ctrl.seq = seq;
    cl->ctrl.u.resp.msg_id = msg_id;
    cl->ctrl.u.resp.result = result;
    if (cmd_id == CMPP_ACTIVE_TEST_RESP) {
        memset(&cl->ctrl.u, 0, sizeof(cl->ctrl.u.resp));
    }
    int rc = cl_queue(cl, &cl->ctrl, &e);
    if (rc < 0) {
        cl->lk->st.bad_pdus++;
    }
    return rc;
}

static void cl_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct cmpp_link *cl = (struct cmpp_link *)((char *)w - offsetof(struct cmpp_link, wio));
    while (cl->wlen > 0) {
        ssize_t n = send(cl->fd, cl->wbuf, cl->wlen, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }
            if (errno == EINTR) {
                continue;
            }
            cl_drop(cl, "write failed");
            return;
        }
        memmove(cl->wbuf, cl->wbuf + n, cl->wlen - (size_t)n);
        cl->wlen -= (size_t)n;
    }
    ev_io_stop(loop, &cl->wio);
    if (!ev_is_active(&cl->rio) && cl->fd >= 0) {
        ev_io_start(loop, &cl->rio);
    }
    if (cl->want_writable) {
        cl->want_writable = false;
        bearer_link_writable(cl->lk);
    }
}

/* ---- login ---------------------------------------------------------------------- */

static uint32_t cl_timestamp(void)
{
    time_t t = time(NULL);
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        return 0;
    }
    return cmpp_timestamp((unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday, (unsigned)tm.tm_hour,
                          (unsigned)tm.tm_min, (unsigned)tm.tm_sec);
}

static void cl_send_connect(struct cmpp_link *cl)
{
    const struct bearer_link_conf *c = &cl->lk->conf;
    struct cmpp_pdu pdu;
    struct ota_err e;
    memset(&pdu, 0, sizeof(pdu));
    pdu.ver = cl->ver;
    pdu.cmd_id = CMPP_CONNECT;
    pdu.seq = cl->connect_seq = cl_seq(cl);
    snprintf(pdu.u.connect.source_addr, sizeof(pdu.u.connect.source_addr), "%s", c->u.cmpp.sp_id);
    pdu.u.connect.version = (uint8_t)cl->ver;
    pdu.u.connect.timestamp = cl_timestamp();
    int rc = cmpp_auth_source(c->u.cmpp.sp_id, (const uint8_t *)c->u.cmpp.secret,
                              strlen(c->u.cmpp.secret), pdu.u.connect.timestamp,
                              pdu.u.connect.auth_source, &e);
    if (rc == 0) {
        memcpy(cl->auth_source, pdu.u.connect.auth_source, CMPP_AUTH_LEN);
        rc = cl_queue(cl, &pdu, &e);
    }
    if (rc < 0) {
        cl_drop(cl, "cannot build CONNECT");
        return;
    }
    (void)bearer_link_set_state(cl->lk, BEARER_LINK_BINDING, "CONNECT sent");
}

static void cl_login_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct cmpp_link *cl =
        (struct cmpp_link *)((char *)w - offsetof(struct cmpp_link, login_timer));
    cl_drop(cl, cl->lk->state == BEARER_LINK_CONNECTING ? "connect timeout" : "login timeout");
}

static void cl_connected_cb(struct ev_loop *loop, ev_io *w, int revents);
static void cl_read_cb(struct ev_loop *loop, ev_io *w, int revents);

static void cl_hb_arm(struct cmpp_link *cl, double after_s)
{
    ev_timer_stop(cl_loop(cl), &cl->hb_timer);
    ev_timer_set(&cl->hb_timer, after_s > 0 ? after_s : 0., 0.);
    ev_timer_start(cl_loop(cl), &cl->hb_timer);
}

static void cl_login_done(struct cmpp_link *cl, const struct cmpp_connect_resp *r)
{
    const struct bearer_link_conf *c = &cl->lk->conf;
    struct ota_err e;
    char why[96];
    if (r->status != CMPP_CONN_OK) {
        snprintf(why, sizeof(why), "CONNECT refused: %s (%u)", cmpp_connect_status_name(r->status),
                 r->status);
        cl_drop(cl, why);
        return;
    }
    if (cmpp_connect_resp_verify(cl->ver, r, cl->auth_source, (const uint8_t *)c->u.cmpp.secret,
                                 strlen(c->u.cmpp.secret), &e) < 0) {
        cl_drop(cl, "AuthenticatorISMG mismatch");
        return;
    }
    ev_timer_stop(cl_loop(cl), &cl->login_timer);
    cl_hb_arm(cl, c->heartbeat_s);
    bearer_link_up(cl->lk, "CONNECT_RESP ok");
}

static void cl_connect(struct bearer_link *lk)
{
    struct cmpp_link *cl = cl_of(lk);
    char why[160];
    cl_close_fd(cl);
    if (bearer_link_tcp_connect(lk, &cl->fd, why, sizeof(why)) < 0) {
        bearer_link_lost(lk, why);
        return;
    }
    cl->next_seq = 1;
    cl->last_rx = ev_now(cl_loop(cl));
    ev_timer_set(&cl->login_timer, resp_timeout_s(cl), 0.);
    ev_timer_start(cl_loop(cl), &cl->login_timer);
    ev_io_init(&cl->wio, cl_connected_cb, cl->fd, EV_WRITE);
    ev_io_start(cl_loop(cl), &cl->wio);
}

static void cl_connected_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct cmpp_link *cl = (struct cmpp_link *)((char *)w - offsetof(struct cmpp_link, wio));
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    ev_io_stop(loop, &cl->wio);
    if (getsockopt(cl->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
        cl_drop(cl, "connect refused or failed");
        return;
    }
    ev_io_init(&cl->wio, cl_write_cb, cl->fd, EV_WRITE);
    ev_io_init(&cl->rio, cl_read_cb, cl->fd, EV_READ);
    ev_io_start(loop, &cl->rio);
    cl_send_connect(cl);
}

/* ---- heartbeat and response timers ------------------------------------------------ */

static void cl_send_active_test(struct cmpp_link *cl)
{
    cl->at_seq = cl_seq(cl);
    cl->at_sent = ev_now(cl_loop(cl));
    cl->at_pending = true;
    cl->at_tries++;
    if (cl_queue_simple(cl, CMPP_ACTIVE_TEST, cl->at_seq, 0, 0) < 0) {
        cl_drop(cl, "output buffer full");
    }
}

static void cl_hb_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct cmpp_link *cl = (struct cmpp_link *)((char *)w - offsetof(struct cmpp_link, hb_timer));
    const struct bearer_link_conf *c = &cl->lk->conf;
    ev_tstamp now = ev_now(loop);
    if (cl->at_pending) {
        if (now - cl->at_sent < resp_timeout_s(cl)) {
            cl_hb_arm(cl, cl->at_sent + resp_timeout_s(cl) - now);
            return;
        }
        if (cl->at_tries > c->resp_retries) {
            cl_drop(cl, "ACTIVE_TEST unanswered");
            return;
        }
        cl->lk->st.timeouts++;
        cl_send_active_test(cl); /* cmpp.md §6: again at once, N attempts in all */
        if (cl->fd >= 0) {
            cl_hb_arm(cl, resp_timeout_s(cl));
        }
        return;
    }
    if (now - cl->last_rx < c->heartbeat_s) {
        cl_hb_arm(cl, cl->last_rx + c->heartbeat_s - now);
        return;
    }
    cl->at_tries = 0;
    cl_send_active_test(cl);
    if (cl->fd >= 0) {
        cl_hb_arm(cl, resp_timeout_s(cl));
    }
}

/* Fill the per-part fields of the SUBMIT template and queue it under seq. */
static int cl_queue_submit(struct cmpp_link *cl, const struct bearer_part *p, uint32_t seq,
                           struct ota_err *err)
{
    const struct bearer_msg *m = &p->msg;
    struct cmpp_submit *s = &cl->out.u.submit;
    cl->out.seq = seq;
    s->pk_total = m->n_parts;
    s->pk_number = m->part;
    s->registered_delivery = m->want_report ? 1 : 0;
    s->msg_level = m->priority;
    s->tp_pid = m->pid;
    s->tp_udhi = m->udhi ? 1 : 0;
    /* TS 23.038 §4: alphabet of the general and the F0 coding groups. */
    unsigned alphabet = ((m->dcs & 0xF0) == 0xF0) ? (m->dcs & 0x04 ? CL_DCS_ALPHABET_8BIT : 0)
                                                  : ((m->dcs >> 2) & 3u);
    if (m->udhi || alphabet == CL_DCS_ALPHABET_8BIT) {
        s->msg_fmt = CMPP_FMT_BINARY; /* cmpp.md §7: binary UDH payload */
    } else if (alphabet == CL_DCS_ALPHABET_UCS2) {
        s->msg_fmt = CMPP_FMT_UCS2;
    } else {
        s->msg_fmt = CMPP_FMT_ASCII;
    }
    snprintf(s->src_id, sizeof(s->src_id), "%s", m->src[0] ? m->src : cl->lk->conf.u.cmpp.src_id);
    snprintf(s->dest_terminal_id[0], sizeof(s->dest_terminal_id[0]), "%s", m->dest);
    s->msg_len = m->ud_len;
    memcpy(s->msg_content, m->ud, m->ud_len);
    return cl_queue(cl, &cl->out, err);
}

static void cl_resp_arm(struct cmpp_link *cl)
{
    struct bearer_part *p = bearer_link_inflight_oldest(cl->lk);
    ev_timer_stop(cl_loop(cl), &cl->resp_timer);
    if (!p) {
        return;
    }
    double after = p->sent_at + resp_timeout_s(cl) - ev_now(cl_loop(cl));
    ev_timer_set(&cl->resp_timer, after > 0 ? after : 0., 0.);
    ev_timer_start(cl_loop(cl), &cl->resp_timer);
}

static void cl_resp_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct cmpp_link *cl = (struct cmpp_link *)((char *)w - offsetof(struct cmpp_link, resp_timer));
    ev_tstamp now = ev_now(loop);
    struct bearer_part *p;
    while ((p = bearer_link_inflight_oldest(cl->lk)) != NULL &&
           p->sent_at + resp_timeout_s(cl) <= now) {
        if (p->wire_tries >= cl->lk->conf.resp_retries) {
            cl_drop(cl, "SUBMIT_RESP missing after retries");
            return;
        }
        struct ota_err e;
        cl->lk->st.timeouts++;
        if (wfree(cl) < CL_SUBMIT_MAX_LEN || cl_queue_submit(cl, p, p->wire_seq, &e) < 0) {
            cl_drop(cl, "cannot resend SUBMIT");
            return;
        }
        p->wire_tries++;
        bearer_link_inflight_touch(cl->lk, p);
    }
    cl_resp_arm(cl);
}

/* ---- received PDUs ------------------------------------------------------------------ */

static enum bearer_dlr_state dlr_state_of(enum cmpp_stat st)
{
    switch (st) {
    case CMPP_STAT_DELIVRD:
        return BEARER_DLR_DELIVERED;
    case CMPP_STAT_EXPIRED:
        return BEARER_DLR_EXPIRED;
    case CMPP_STAT_ACCEPTD:
        return BEARER_DLR_ACCEPTED;
    case CMPP_STAT_UNKNOWN:
        return BEARER_DLR_UNKNOWN;
    case CMPP_STAT_REJECTD:
        return BEARER_DLR_REJECTED;
    case CMPP_STAT_DELETED:
    case CMPP_STAT_UNDELIV:
    case CMPP_STAT_OTHER:
    case CMPP_STAT__COUNT:
        break;
    }
    return BEARER_DLR_FAILED;
}

static uint8_t dcs_of_fmt(uint8_t fmt)
{
    switch (fmt) {
    case CMPP_FMT_BINARY:
        return 0x04; /* TS 23.038: 8-bit data */
    case CMPP_FMT_UCS2:
        return 0x08;
    default:
        return 0x00;
    }
}

static void cl_ack_encode(struct bearer_ack *a, uint32_t seq, uint64_t msg_id)
{
    memcpy(a->data, &seq, sizeof(seq));
    memcpy(a->data + sizeof(seq), &msg_id, sizeof(msg_id));
    a->len = CL_ACK_LEN;
}

static void cl_on_deliver(struct cmpp_link *cl, const struct cmpp_deliver *d, uint32_t seq)
{
    int rc;
    struct bearer_ack ack;
    cl_ack_encode(&ack, seq, d->msg_id);
    if (d->registered_delivery == 1) {
        struct bearer_dlr dlr;
        memset(&dlr, 0, sizeof(dlr));
        cmpp_msgid_canon(d->report.msg_id, dlr.msg_id);
        enum cmpp_stat st = cmpp_stat_parse(d->report.stat);
        dlr.state = dlr_state_of(st);
        dlr.final = dlr.state != BEARER_DLR_ACCEPTED;
        snprintf(dlr.stat, sizeof(dlr.stat), "%s", d->report.stat);
        dlr.dest = d->report.dest_terminal_id;
        dlr.link = cl->lk->conf.name;
        rc = bearer_link_dlr(cl->lk, &dlr, &ack);
    } else {
        struct bearer_mo mo = {
            .orig = d->src_terminal_id,
            .dest = d->dest_id,
            .ud = d->msg_content,
            .ud_len = d->msg_len,
            .udhi = d->tp_udhi != 0,
            .pid = d->tp_pid,
            .dcs = dcs_of_fmt(d->msg_fmt),
            .link = cl->lk->conf.name,
        };
        rc = bearer_link_mo(cl->lk, &mo, &ack);
    }
    if (rc < 0 || cl->fd < 0) {
        return; /* not taken: no DELIVER_RESP, the ISMG delivers it again [cmpp.md §5] */
    }
    if (rc == BEARER_ACK_LATER) {
        return; /* the core holds the DELIVER_RESP until the caller's commit (cl_send_ack) */
    }
    if (cl_queue_simple(cl, CMPP_DELIVER_RESP, seq, d->msg_id, CMPP_RES_OK) < 0) {
        cl_drop(cl, "output buffer full");
    }
}

static void cl_on_submit_resp(struct cmpp_link *cl, const struct cmpp_pdu *pdu)
{
    const struct cmpp_resp *r = &pdu->u.resp;
    enum bearer_resp kind = BEARER_RESP_FINAL;
    char id[CMPP_MSGID_TEXT_SIZE];
    cmpp_msgid_canon(r->msg_id, id);
    switch (cmpp_result_classify(r->result)) {
    case CMPP_RC_OK:
        kind = BEARER_RESP_OK;
        break;
    case CMPP_RC_RETRY:
        kind = BEARER_RESP_THROTTLED;
        break;
    case CMPP_RC_FINAL:
        kind = BEARER_RESP_FINAL;
        break;
    }
    if (bearer_link_resp(cl->lk, pdu->seq, kind, kind == BEARER_RESP_OK ? id : NULL, (int)r->result,
                         cmpp_result_name(r->result)) < 0) {
        cl->lk->st.bad_pdus++; /* late answer to a resent or unknown Sequence_Id */
    }
    if (cl->fd >= 0) {
        cl_resp_arm(cl);
    }
}

/* Handle one framed PDU; may close the connection (cl->fd < 0 afterwards). */
static void cl_on_pdu(struct cmpp_link *cl, const uint8_t *p, size_t len,
                      const struct cmpp_hdr *hdr)
{
    struct ota_err e;
    struct cmpp_pdu *pdu = &cl->in;
    enum bearer_link_state st = cl->lk->state;

    cl->last_rx = ev_now(cl_loop(cl));
    if (st == BEARER_LINK_BINDING) {
        if (hdr->cmd_id != CMPP_CONNECT_RESP) {
            cl->lk->st.bad_pdus++;
            return;
        }
        int rc = cmpp_decode(p, len, cl->ver, pdu, &e);
        if (rc < 0 && e.code == OTA_ERR_LENGTH) {
            /* [cmpp.md §3] an ISMG refusing our version answers in its own layout */
            rc = cmpp_decode(p, len, cl->ver == CMPP_V30 ? CMPP_V20 : CMPP_V30, pdu, &e);
        }
        if (rc < 0) {
            cl->lk->st.bad_pdus++;
            cl_drop(cl, "bad CONNECT_RESP");
            return;
        }
        cl_login_done(cl, &pdu->u.connect_resp);
        return;
    }
    if (cmpp_decode(p, len, cl->ver, pdu, &e) < 0) {
        uint64_t msg_id = 0;
        cl->lk->st.bad_pdus++;
        if (hdr->cmd_id == CMPP_DELIVER && cmpp_peek_msg_id(p, len, &msg_id, &e) == 0) {
            /* answer every DELIVER [cmpp.md §5]; redelivery cannot repair it */
            if (cl_queue_simple(cl, CMPP_DELIVER_RESP, hdr->seq, msg_id, CMPP_RES_BAD_STRUCTURE) <
                0) {
                cl_drop(cl, "output buffer full");
            }
        } else if (hdr->cmd_id == CMPP_TERMINATE) {
            cl_drop(cl, "TERMINATE from ISMG");
        }
        return;
    }
    switch (pdu->cmd_id) {
    case CMPP_SUBMIT_RESP:
        cl_on_submit_resp(cl, pdu);
        return;
    case CMPP_DELIVER:
        cl_on_deliver(cl, &pdu->u.deliver, pdu->seq);
        return;
    case CMPP_ACTIVE_TEST:
        if (cl_queue_simple(cl, CMPP_ACTIVE_TEST_RESP, pdu->seq, 0, 0) < 0) {
            cl_drop(cl, "output buffer full");
        }
        return;
    case CMPP_ACTIVE_TEST_RESP:
        if (cl->at_pending && pdu->seq == cl->at_seq) {
            cl->at_pending = false;
            cl->at_tries = 0;
            cl_hb_arm(cl, cl->lk->conf.heartbeat_s);
        }
        return;
    case CMPP_TERMINATE:
        /* answer, flush what we can, close: the core resends what is in flight */
        if (cl_queue_simple(cl, CMPP_TERMINATE_RESP, pdu->seq, 0, 0) == 0) {
            (void)send(cl->fd, cl->wbuf, cl->wlen, MSG_NOSIGNAL);
        }
        cl_drop(cl, "TERMINATE from ISMG");
        return;
    case CMPP_TERMINATE_RESP:
        cl_drop(cl, "TERMINATE_RESP");
        return;
    default:
        cl->lk->st.bad_pdus++;
        return;
    }
}

static void cl_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct cmpp_link *cl = (struct cmpp_link *)((char *)w - offsetof(struct cmpp_link, rio));
    ssize_t n = recv(cl->fd, cl->rbuf + cl->rlen, sizeof(cl->rbuf) - cl->rlen, 0);
    if (n == 0) {
        cl_drop(cl, "connection closed by ISMG");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            cl_drop(cl, "read failed");
        }
        return;
    }
    cl->rlen += (size_t)n;
    size_t off = 0;
    while (cl->fd >= 0) {
        struct cmpp_hdr hdr;
        struct ota_err e;
        int fl = cmpp_frame(cl->rbuf + off, cl->rlen - off, 0, &hdr, &e);
        if (fl == 0) {
            break;
        }
        if (fl < 0) {
            cl->lk->st.bad_pdus++;
            cl_drop(cl, "bad CMPP framing");
            return;
        }
        cl_on_pdu(cl, cl->rbuf + off, (size_t)fl, &hdr);
        off += (size_t)fl;
    }
    if (cl->fd < 0) {
        return;
    }
    memmove(cl->rbuf, cl->rbuf + off, cl->rlen - off);
    cl->rlen -= off;
}

/* ---- ops ------------------------------------------------------------------------------ */

/* A held DELIVER_RESP, released by the core: Result 0 [cmpp.md §5]. */
static void cl_send_ack(struct bearer_link *lk, const struct bearer_ack *a)
{
    struct cmpp_link *cl = cl_of(lk);
    uint32_t seq;
    uint64_t msg_id;
    if (cl->fd < 0 || a->len != CL_ACK_LEN) {
        return;
    }
    memcpy(&seq, a->data, sizeof(seq));
    memcpy(&msg_id, a->data + sizeof(seq), sizeof(msg_id));
    if (wfree(cl) < CL_CTRL_RESERVE) {
        /*
         * A release can owe thousands of responses at once: hand what is
         * queued to the kernel now rather than drop the link for a full
         * buffer the socket could have taken.
         */
        cl_write_cb(cl_loop(cl), &cl->wio, EV_WRITE);
        if (cl->fd < 0) {
            return;
        }
    }
    if (cl_queue_simple(cl, CMPP_DELIVER_RESP, seq, msg_id, CMPP_RES_OK) < 0) {
        cl_drop(cl, "output buffer full");
    }
}

static int cl_send(struct bearer_link *lk, const struct bearer_part *p, uint32_t *wire_seq,
                   struct ota_err *err)
{
    struct cmpp_link *cl = cl_of(lk);
    if (cl->fd < 0) {
        return -EAGAIN;
    }
    if (wfree(cl) < CL_SUBMIT_RESERVE) {
        cl->want_writable = true;
        return -EAGAIN;
    }
    if (cl->ver == CMPP_V20 && strlen(p->msg.dest) > CMPP_TERM20_LEN) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "dest longer than 21 digits for CMPP 2.0");
    }
    uint32_t seq = cl_seq(cl);
    int rc = cl_queue_submit(cl, p, seq, err);
    if (rc < 0) {
        return rc;
    }
    if (!ev_is_active(&cl->resp_timer)) {
        ev_timer_set(&cl->resp_timer, resp_timeout_s(cl), 0.);
        ev_timer_start(cl_loop(cl), &cl->resp_timer);
    }
    *wire_seq = seq;
    return 0;
}

static int cl_init(struct bearer_link *lk, struct ota_err *err)
{
    const struct bearer_link_conf *c = &lk->conf;
    if (c->u.cmpp.version != CMPP_V20 && c->u.cmpp.version != CMPP_V30) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "link=%s: CMPP version must be 0x20 or 0x30",
                        c->name);
    }
    if (!memchr(c->u.cmpp.sp_id, '\0', sizeof(c->u.cmpp.sp_id)) || !c->u.cmpp.sp_id[0] ||
        !memchr(c->u.cmpp.secret, '\0', sizeof(c->u.cmpp.secret)) ||
        !memchr(c->u.cmpp.service_id, '\0', sizeof(c->u.cmpp.service_id)) ||
        !memchr(c->u.cmpp.src_id, '\0', sizeof(c->u.cmpp.src_id))) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "link=%s: sp_id/secret/service_id/src_id",
                        c->name);
    }
    if (c->resp_timeout_ms == 0 || c->heartbeat_s == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "link=%s: resp timeout and heartbeat > 0",
                        c->name);
    }
    struct cmpp_link *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "link=%s: out of memory", c->name);
    }
    cl->lk = lk;
    cl->ver = (enum cmpp_version)c->u.cmpp.version;
    cl->fd = -1;
    cl->next_seq = 1;
    ev_io_init(&cl->rio, cl_read_cb, -1, EV_READ);
    ev_io_init(&cl->wio, cl_write_cb, -1, EV_WRITE);
    ev_timer_init(&cl->login_timer, cl_login_timeout_cb, 0., 0.);
    ev_timer_init(&cl->resp_timer, cl_resp_timeout_cb, 0., 0.);
    ev_timer_init(&cl->hb_timer, cl_hb_cb, 0., 0.);
    /* SUBMIT template: the fields that never change on this link [cmpp.md §4] */
    struct cmpp_submit *s = &cl->out.u.submit;
    cl->out.ver = cl->ver;
    cl->out.cmd_id = CMPP_SUBMIT;
    cl->ctrl.ver = cl->ver;
    snprintf(s->service_id, sizeof(s->service_id), "%s", c->u.cmpp.service_id);
    s->fee_user_type = CL_FEE_USER_SP;
    snprintf(s->msg_src, sizeof(s->msg_src), "%s", c->u.cmpp.sp_id);
    snprintf(s->fee_type, sizeof(s->fee_type), "%s", CL_FEE_TYPE_FREE);
    snprintf(s->fee_code, sizeof(s->fee_code), "%s", "000000");
    s->n_dest = 1;
    lk->impl = cl;
    return 0;
}

static void cl_close(struct bearer_link *lk)
{
    struct cmpp_link *cl = cl_of(lk);
    if (!cl) {
        return;
    }
    if (cl->fd >= 0 && (lk->state == BEARER_LINK_CLOSING || lk->state == BEARER_LINK_UP ||
                        lk->state == BEARER_LINK_THROTTLED)) {
        /* best effort: one non-blocking write of what is queued plus TERMINATE */
        if (cl_queue_simple(cl, CMPP_TERMINATE, cl_seq(cl), 0, 0) == 0) {
            (void)send(cl->fd, cl->wbuf, cl->wlen, MSG_NOSIGNAL);
        }
    }
    cl_close_fd(cl);
}

static void cl_free(struct bearer_link *lk)
{
    struct cmpp_link *cl = cl_of(lk);
    if (!cl) {
        return;
    }
    cl_close_fd(cl);
    free(cl);
    lk->impl = NULL;
}

const struct bearer_link_ops bearer_cmpp_ops = {
    .kind_name = "cmpp",
    .init = cl_init,
    .connect = cl_connect,
    .send = cl_send,
    .close = cl_close,
    .free = cl_free,
    .send_ack = cl_send_ack,
};
