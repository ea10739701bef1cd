/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/sim/ismg.c: the simulator's CMPP server, driven in-process. A tiny
 * SP built from the otagw CMPP codec (smpp/cmpp.h) talks to it over a
 * loopback socket while the test turns the libev loop; the card is a stub
 * hook that records what it got and answers a PoR for TP_pId 0x7F. Covered:
 * login accepted (AuthenticatorISMG checked) and refused (secret, Source_Addr,
 * version), SUBMIT -> SUBMIT_RESP then status report DELIVER with the same
 * Msg_Id, PoR as MO DELIVER, Result 8 above the rate, reject / dlr_fail
 * faults, bad PDUs counted (lying length, unknown command, unframeable
 * stream), the DELIVER window, and reports surviving a dropped connection.
 */
#include "tests/sim/ismg.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SP_ID "901234"
#define SECRET "s3cret"
#define MSISDN "8613800000001"
#define WAIT_MS 2000

static const uint8_t push_content[] = {0x06, 0x05, 0x04, 0x0b, 0x84, 0x23,
                                       0xf0, 0x01, 0x06, 0x03, 0xc4, 0xaf};
static const uint8_t por_ud[] = {0x02, 0x71, 0x00, 0x00, 0x0b, 0x0a, 0xb0, 0x00,
                                 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};

struct stub_card {
    unsigned calls;
    char msisdn[SIM_MSISDN_MAX + 1];
    uint8_t pid, dcs;
    bool udhi;
    size_t len;
};

static int stub_deliver(void *ctx, const char *msisdn, const uint8_t *ud, size_t len, bool udhi,
                        uint8_t pid, uint8_t dcs, enum sim_outcome *outcome, struct sim_mo *mo,
                        struct ota_err *err)
{
    struct stub_card *k = ctx;
    k->calls++;
    snprintf(k->msisdn, sizeof(k->msisdn), "%s", msisdn);
    k->pid = pid;
    k->dcs = dcs;
    k->udhi = udhi;
    k->len = len;
    if (pid == 0x7F) {
        memset(mo, 0, sizeof(*mo));
        memcpy(mo->ud, por_ud, sizeof(por_ud));
        mo->len = sizeof(por_ud);
        mo->udhi = true;
        mo->pid = 0x7F;
        mo->dcs = 0xF6;
        *outcome = SIM_OUT_POR;
    } else {
        *outcome = SIM_OUT_PUSH;
    }
    return 0;
}

struct t {
    struct ev_loop *loop;
    struct sim_ismg *ismg;
    struct stub_card card;
    struct sim_faults faults;
    int fd;
    enum cmpp_version ver;
    uint8_t rbuf[8192];
    size_t rlen;
    struct cmpp_pdu pdu; /* last PDU read */
};

static void start(struct t *t, uint32_t rate, uint32_t window, const char *faults,
                  enum sim_ismg_vers vers)
{
    struct sim_ismg_cfg cfg;
    struct ota_err err;
    sim_ismg_cfg_defaults(&cfg);
    cfg.port = 0;
    cfg.sp_id = SP_ID;
    cfg.secret = (const uint8_t *)SECRET;
    cfg.secret_len = strlen(SECRET);
    cfg.rate_per_s = rate;
    cfg.window = window;
    cfg.versions = vers;
    cfg.resp_timeout_ms = 300;
    assert_int_equal(sim_faults_parse(faults, &t->faults, &err), 0);
    cfg.faults = &t->faults;
    cfg.seed = 42;
    cfg.card.deliver = stub_deliver;
    cfg.card.ctx = &t->card;
    t->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(t->loop);
    assert_int_equal(sim_ismg_new(t->loop, &cfg, &t->ismg, &err), 0);
    t->fd = -1;
}

static int teardown(void **state)
{
    struct t *t = *state;
    if (t->fd >= 0) {
        close(t->fd);
    }
    sim_ismg_free(t->ismg);
    if (t->loop != NULL) {
        ev_loop_destroy(t->loop);
    }
    free(t);
    return 0;
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->fd = -1;
    *state = t;
    return 0;
}

static void spin(struct t *t, int ms)
{
    struct timespec ts = {0, 1000000};
    for (int i = 0; i < ms; i++) {
        ev_run(t->loop, EVRUN_NOWAIT);
        nanosleep(&ts, NULL);
    }
}

/* Turn the loop until cond holds or WAIT_MS pass (the server needs the loop to act). */
#define WAIT_FOR(t, cond)                                                                          \
    do {                                                                                           \
        for (int wait_i_ = 0; wait_i_ < WAIT_MS && !(cond); wait_i_++) {                           \
            spin((t), 1);                                                                          \
        }                                                                                          \
    } while (0)

static void client_open(struct t *t)
{
    if (t->fd >= 0) {
        close(t->fd);
    }
    t->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(t->fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(sim_ismg_port(t->ismg));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL, 0) | O_NONBLOCK), 0);
    t->rlen = 0;
}

static void client_send_raw(struct t *t, const uint8_t *p, size_t len)
{
    assert_int_equal(send(t->fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void client_send(struct t *t, struct cmpp_pdu *pdu)
{
    uint8_t buf[CMPP_PDU_MAX_LEN];
    struct ota_err err;
    int n = cmpp_encode(pdu, buf, sizeof(buf), &err);
    if (n < 0) {
        fail_msg("encode: %s", err.msg);
    }
    client_send_raw(t, buf, (size_t)n);
}

/* Read one PDU into t->pdu within ms; returns its Command_Id, 0 on timeout, -1 on EOF. */
static long client_read(struct t *t, int ms)
{
    struct timespec ts = {0, 1000000};
    for (int i = 0; i < ms; i++) {
        struct cmpp_hdr hdr;
        struct ota_err err;
        int m = cmpp_frame(t->rbuf, t->rlen, 0, &hdr, &err);
        assert_true(m >= 0);
        if (m > 0) {
            int rc = cmpp_decode(t->rbuf, (size_t)m, t->ver, &t->pdu, &err);
            if (rc < 0) {
                fail_msg("decode %s: %s", cmpp_cmd_name(hdr.cmd_id), err.msg);
            }
            memmove(t->rbuf, t->rbuf + m, t->rlen - (size_t)m);
            t->rlen -= (size_t)m;
            return (long)hdr.cmd_id;
        }
        ev_run(t->loop, EVRUN_NOWAIT);
        ssize_t n = recv(t->fd, t->rbuf + t->rlen, sizeof(t->rbuf) - t->rlen, 0);
        if (n == 0) {
            return -1;
        }
        if (n > 0) {
            t->rlen += (size_t)n;
            continue;
        }
        nanosleep(&ts, NULL);
    }
    return 0;
}

static uint32_t now_timestamp(void)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    return cmpp_timestamp((unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday, (unsigned)tm.tm_hour,
                          (unsigned)tm.tm_min, (unsigned)(tm.tm_sec > 59 ? 59 : tm.tm_sec));
}

/* Log in; returns the CONNECT_RESP Status. */
static uint32_t login(struct t *t, enum cmpp_version ver, const char *sp, const char *secret)
{
    struct ota_err err;
    client_open(t);
    t->ver = ver;
    struct cmpp_pdu *p = &t->pdu;
    memset(p, 0, sizeof(*p));
    p->ver = ver;
    p->cmd_id = CMPP_CONNECT;
    p->seq = 1;
    snprintf(p->u.connect.source_addr, sizeof(p->u.connect.source_addr), "%s", sp);
    p->u.connect.version = (uint8_t)ver;
    p->u.connect.timestamp = now_timestamp();
    assert_int_equal(cmpp_auth_source(sp, (const uint8_t *)secret, strlen(secret),
                                      p->u.connect.timestamp, p->u.connect.auth_source, &err),
                     0);
    uint8_t auth_source[CMPP_AUTH_LEN];
    memcpy(auth_source, p->u.connect.auth_source, sizeof(auth_source));
    client_send(t, p);
    assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_CONNECT_RESP);
    assert_int_equal(t->pdu.seq, 1);
    uint32_t status = t->pdu.u.connect_resp.status;
    if (status == 0) {
        assert_int_equal(cmpp_connect_resp_verify(ver, &t->pdu.u.connect_resp, auth_source,
                                                  (const uint8_t *)secret, strlen(secret), &err),
                         0);
    }
    return status;
}

static void submit(struct t *t, uint32_t seq, uint8_t pid, uint8_t reg)
{
    struct cmpp_pdu *p = &t->pdu;
    struct cmpp_submit *s = &p->u.submit;
    memset(p, 0, sizeof(*p));
    p->ver = t->ver;
    p->cmd_id = CMPP_SUBMIT;
    p->seq = seq;
    s->pk_total = 1;
    s->pk_number = 1;
    s->registered_delivery = reg;
    strcpy(s->service_id, "OTAPUSH");
    s->fee_user_type = 2;
    s->tp_pid = pid;
    s->tp_udhi = 1;
    s->msg_fmt = CMPP_FMT_BINARY;
    strcpy(s->msg_src, SP_ID);
    strcpy(s->fee_type, "01");
    strcpy(s->fee_code, "000000");
    strcpy(s->src_id, "1065012345");
    s->n_dest = 1;
    strcpy(s->dest_terminal_id[0], MSISDN);
    s->msg_len = sizeof(push_content);
    memcpy(s->msg_content, push_content, sizeof(push_content));
    client_send(t, p);
}

/* Expect SUBMIT_RESP for seq; returns its Msg_Id and checks the Result. */
static uint64_t expect_submit_resp(struct t *t, uint32_t seq, uint32_t result)
{
    assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_SUBMIT_RESP);
    assert_int_equal(t->pdu.seq, seq);
    assert_int_equal(t->pdu.u.resp.result, result);
    return t->pdu.u.resp.msg_id;
}

static void deliver_resp(struct t *t, uint32_t seq, uint64_t msg_id)
{
    struct cmpp_pdu p;
    memset(&p, 0, sizeof(p));
    p.ver = t->ver;
    p.cmd_id = CMPP_DELIVER_RESP;
    p.seq = seq;
    p.u.resp.msg_id = msg_id;
    p.u.resp.result = 0;
    client_send(t, &p);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_login_ok(void **state)
{
    struct t *t = *state;
    start(t, 0, 16, "", SIM_ISMG_VERS_ANY);
    assert_int_equal(login(t, CMPP_V30, SP_ID, SECRET), 0);
    assert_int_equal(login(t, CMPP_V20, SP_ID, SECRET), 0);
    WAIT_FOR(t, sim_ismg_count(t->ismg, SIM_ISMG_LOGINS_OK) == 2);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_LOGINS_OK), 2);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_LOGINS_REFUSED), 0);
}

static void test_login_refused(void **state)
{
    struct t *t = *state;
    start(t, 0, 16, "", SIM_ISMG_VERS_30);
    assert_int_equal(login(t, CMPP_V30, SP_ID, "wrong"), CMPP_CONN_AUTH_FAILED);
    assert_int_equal(client_read(t, WAIT_MS), -1); /* closed after the refusal */
    assert_int_equal(login(t, CMPP_V30, "999999", SECRET), CMPP_CONN_BAD_SOURCE);
    assert_int_not_equal(login(t, CMPP_V20, SP_ID, SECRET), 0); /* 3.0 only */
    /* a SUBMIT before CONNECT closes the link and is counted */
    client_open(t);
    t->ver = CMPP_V30;
    submit(t, 5, 0, 1);
    assert_int_equal(client_read(t, WAIT_MS), -1);
    WAIT_FOR(t, sim_ismg_count(t->ismg, SIM_ISMG_INVALID_PDUS) == 1);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_LOGINS_REFUSED), 3);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_INVALID_PDUS), 1);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_LOGINS_OK), 0);
}

static void test_submit_report_por(void **state)
{
    struct t *t = *state;
    start(t, 0, 16, "", SIM_ISMG_VERS_ANY);
    assert_int_equal(login(t, CMPP_V30, SP_ID, SECRET), 0);

    /* push: SUBMIT_RESP first, then the report with the same Msg_Id */
    submit(t, 7, 0x00, 1);
    uint64_t id = expect_submit_resp(t, 7, 0);
    assert_true(id != 0);
    assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_DELIVER);
    const struct cmpp_deliver *d = &t->pdu.u.deliver;
    assert_int_equal(d->registered_delivery, 1);
    assert_true(d->report.msg_id == id);
    assert_string_equal(d->report.stat, "DELIVRD");
    assert_string_equal(d->report.dest_terminal_id, MSISDN);
    assert_string_equal(d->src_terminal_id, MSISDN);
    deliver_resp(t, t->pdu.seq, d->msg_id);
    assert_int_equal(t->card.calls, 1);
    assert_string_equal(t->card.msisdn, MSISDN);
    assert_true(t->card.udhi);
    assert_int_equal(t->card.dcs, 0x04); /* Msg_Fmt 4, TP_pId 00 */
    assert_int_equal(t->card.len, sizeof(push_content));

    /* SIM data download: DCS F6, and the PoR comes back as MO */
    submit(t, 8, 0x7F, 1);
    uint64_t id2 = expect_submit_resp(t, 8, 0);
    assert_true(id2 != id);
    assert_int_equal(t->card.dcs, 0xF6);
    bool got_report = false, got_mo = false;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_DELIVER);
        d = &t->pdu.u.deliver;
        if (d->registered_delivery == 1) {
            assert_true(d->report.msg_id == id2);
            got_report = true;
        } else {
            assert_string_equal(d->src_terminal_id, MSISDN);
            assert_string_equal(d->dest_id, "1065012345");
            assert_int_equal(d->tp_pid, 0x7F);
            assert_int_equal(d->tp_udhi, 1);
            assert_int_equal(d->msg_fmt, CMPP_FMT_BINARY);
            assert_int_equal(d->msg_len, sizeof(por_ud));
            assert_memory_equal(d->msg_content, por_ud, sizeof(por_ud));
            got_mo = true;
        }
        deliver_resp(t, t->pdu.seq, d->msg_id);
    }
    assert_true(got_report && got_mo);

    /* no report wanted: none comes */
    submit(t, 9, 0x00, 0);
    (void)expect_submit_resp(t, 9, 0);
    assert_int_equal(client_read(t, 100), 0);

    /* ACTIVE_TEST answered with a 1-octet RESP; TERMINATE answered */
    struct cmpp_pdu at;
    memset(&at, 0, sizeof(at));
    at.ver = t->ver;
    at.cmd_id = CMPP_ACTIVE_TEST;
    at.seq = 10;
    client_send(t, &at);
    assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_ACTIVE_TEST_RESP);
    assert_int_equal(t->pdu.seq, 10);
    at.cmd_id = CMPP_TERMINATE;
    at.seq = 11;
    client_send(t, &at);
    assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_TERMINATE_RESP);
    assert_int_equal(client_read(t, WAIT_MS), -1);
    WAIT_FOR(t, sim_ismg_n_conns(t->ismg) == 0 && sim_ismg_n_pending(t->ismg) == 0);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_DLRS_SENT), 2);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_MOS_SENT), 1);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_DELIVER_RESPS), 3);
    assert_int_equal(sim_ismg_n_pending(t->ismg), 0);
    assert_int_equal(sim_ismg_n_conns(t->ismg), 0);
}

static void test_submit_v20(void **state)
{
    struct t *t = *state;
    start(t, 0, 16, "", SIM_ISMG_VERS_20);
    assert_int_equal(login(t, CMPP_V20, SP_ID, SECRET), 0);
    submit(t, 3, 0x00, 1);
    uint64_t id = expect_submit_resp(t, 3, 0);
    assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_DELIVER);
    assert_true(t->pdu.u.deliver.report.msg_id == id);
    deliver_resp(t, t->pdu.seq, t->pdu.u.deliver.msg_id);
    WAIT_FOR(t, sim_ismg_count(t->ismg, SIM_ISMG_DELIVER_RESPS) == 1);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_DELIVER_RESPS), 1);
}

static void test_rate_flow_control(void **state)
{
    struct t *t = *state;
    start(t, 2, 16, "", SIM_ISMG_VERS_ANY);
    assert_int_equal(login(t, CMPP_V30, SP_ID, SECRET), 0);
    for (uint32_t seq = 20; seq < 23; seq++) {
        submit(t, seq, 0x00, 0);
    }
    (void)expect_submit_resp(t, 20, 0);
    (void)expect_submit_resp(t, 21, 0);
    assert_true(expect_submit_resp(t, 22, CMPP_RES_FLOW_CONTROL) == 0);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_FLOW_CONTROL), 1);
    assert_int_equal(t->card.calls, 2); /* a refused SUBMIT never reaches the card */
}

static void test_faults(void **state)
{
    struct t *t = *state;
    start(t, 0, 16, "reject=1", SIM_ISMG_VERS_ANY);
    assert_int_equal(login(t, CMPP_V30, SP_ID, SECRET), 0);
    submit(t, 4, 0x00, 1);
    (void)expect_submit_resp(t, 4, CMPP_RES_FEE_TERM_NOT_SERVED);
    assert_int_equal(client_read(t, 100), 0);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_REJECTED), 1);
    teardown(state);
    setup(state);
    t = *state;
    start(t, 0, 16, "dlr_fail=1,por_lost=1", SIM_ISMG_VERS_ANY);
    assert_int_equal(login(t, CMPP_V30, SP_ID, SECRET), 0);
    submit(t, 5, 0x7F, 1);
    (void)expect_submit_resp(t, 5, 0);
    assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_DELIVER);
    assert_string_equal(t->pdu.u.deliver.report.stat, "UNDELIV");
    deliver_resp(t, t->pdu.seq, t->pdu.u.deliver.msg_id);
    assert_int_equal(client_read(t, 100), 0); /* the PoR was lost */
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_POR_LOST), 1);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_DLRS_UNDELIV), 1);
}

static void test_bad_pdus(void **state)
{
    struct t *t = *state;
    start(t, 0, 16, "", SIM_ISMG_VERS_ANY);
    assert_int_equal(login(t, CMPP_V30, SP_ID, SECRET), 0);

    /* a SUBMIT whose Msg_Length lies: answered with an error Result, counted */
    struct cmpp_pdu *p = &t->pdu;
    submit(t, 30, 0x00, 0);
    (void)expect_submit_resp(t, 30, 0);
    uint8_t buf[CMPP_PDU_MAX_LEN];
    memset(p, 0, sizeof(*p));
    p->ver = CMPP_V30;
    p->cmd_id = CMPP_SUBMIT;
    struct cmpp_submit *s = &p->u.submit;
    s->pk_total = s->pk_number = 1;
    strcpy(s->fee_type, "01");
    strcpy(s->fee_code, "000000");
    strcpy(s->msg_src, SP_ID);
    s->n_dest = 1;
    strcpy(s->dest_terminal_id[0], MSISDN);
    s->msg_fmt = CMPP_FMT_BINARY;
    s->msg_len = 4;
    p->seq = 31;
    int n = cmpp_encode(p, buf, sizeof(buf), NULL);
    assert_true(n > 0);
    /* Msg_Length is the octet before the 4 content octets and the 20-octet LinkID */
    buf[n - 20 - 4 - 1] = 100;
    client_send_raw(t, buf, (size_t)n);
    assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_SUBMIT_RESP);
    assert_int_equal(t->pdu.seq, 31);
    assert_int_not_equal(t->pdu.u.resp.result, 0);

    /* an unknown Command_Id: counted, no answer, link stays up */
    static const uint8_t unknown[] = {0, 0, 0, 12, 0, 0, 0, 0x42, 0, 0, 0, 32};
    client_send_raw(t, unknown, sizeof(unknown));
    submit(t, 33, 0x00, 0);
    (void)expect_submit_resp(t, 33, 0);

    /* Total_Length below the header: the stream cannot be framed, link closed */
    static const uint8_t bad_len[] = {0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 34};
    client_send_raw(t, bad_len, sizeof(bad_len));
    assert_int_equal(client_read(t, WAIT_MS), -1);
    WAIT_FOR(t, sim_ismg_n_conns(t->ismg) == 0);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_INVALID_PDUS), 3);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_SUBMITS_OK), 2);
    assert_int_equal(sim_ismg_n_conns(t->ismg), 0);
}

static void test_window_and_drop(void **state)
{
    struct t *t = *state;
    start(t, 0, 2, "", SIM_ISMG_VERS_ANY);
    assert_int_equal(login(t, CMPP_V30, SP_ID, SECRET), 0);
    for (uint32_t seq = 40; seq < 44; seq++) {
        submit(t, seq, 0x00, 1);
    }
    unsigned resps = 0, delivers = 0;
    uint32_t dseq[4] = {0};
    uint64_t dmid[4] = {0};
    for (;;) {
        long cmd = client_read(t, 150);
        if (cmd == 0) {
            break;
        }
        if (cmd == (long)CMPP_SUBMIT_RESP) {
            resps++;
        } else {
            assert_int_equal(cmd, (long)CMPP_DELIVER);
            dseq[delivers] = t->pdu.seq;
            dmid[delivers] = t->pdu.u.deliver.msg_id;
            delivers++;
        }
    }
    assert_int_equal(resps, 4);
    assert_int_equal(delivers, 2); /* window 2: the other two wait */
    assert_int_equal(sim_ismg_n_pending(t->ismg), 4);

    deliver_resp(t, dseq[0], dmid[0]);
    assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_DELIVER);
    assert_int_equal(client_read(t, 100), 0);
    assert_int_equal(sim_ismg_n_pending(t->ismg), 3);

    /* the SP goes away without answering: nothing is lost, the next login gets all three */
    close(t->fd);
    t->fd = -1;
    WAIT_FOR(t, sim_ismg_n_conns(t->ismg) == 0);
    assert_int_equal(sim_ismg_n_conns(t->ismg), 0);
    assert_int_equal(sim_ismg_n_pending(t->ismg), 3);
    assert_int_equal(login(t, CMPP_V30, SP_ID, SECRET), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_DELIVER);
        assert_int_equal(t->pdu.u.deliver.registered_delivery, 1);
        deliver_resp(t, t->pdu.seq, t->pdu.u.deliver.msg_id);
    }
    WAIT_FOR(t, sim_ismg_n_pending(t->ismg) == 0);
    assert_int_equal(sim_ismg_n_pending(t->ismg), 0);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_DLRS_SENT), 4);
}

static void test_deliver_resend(void **state)
{
    struct t *t = *state;
    start(t, 0, 16, "", SIM_ISMG_VERS_ANY); /* resp_timeout_ms 300 */
    assert_int_equal(login(t, CMPP_V30, SP_ID, SECRET), 0);
    submit(t, 50, 0x00, 1);
    (void)expect_submit_resp(t, 50, 0);
    uint32_t seq = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(client_read(t, WAIT_MS), (long)CMPP_DELIVER);
        if (i > 0) {
            assert_int_equal(t->pdu.seq, seq); /* resent with the same Sequence_Id */
        }
        seq = t->pdu.seq;
    }
    assert_int_equal(client_read(t, 600), 0); /* given up after the third */
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_DELIVER_RETRIES), 2);
    assert_int_equal(sim_ismg_count(t->ismg, SIM_ISMG_DELIVER_GAVE_UP), 1);
}

static void test_faults_parse(void **state)
{
    struct sim_faults f;
    struct ota_err err;
    assert_int_equal(sim_faults_parse("", &f, &err), 0);
    assert_int_equal(sim_faults_parse("reject=0.01,throttle=0.05,dlr_lost=0.01,dlr_late_ms=2000,"
                                      "dlr_fail=0.01,card_absent=0.01,por_lost=0.01,"
                                      "por_corrupt=0.01,drop_every_s=30",
                                      &f, &err),
                     0);
    assert_int_equal(f.dlr_late_ms, 2000);
    assert_int_equal(f.drop_every_s, 30);
    static const char *const bad[] = {
        "reject",
        "reject=",
        "reject=2",
        "reject=-0.1",
        "reject=0.1x",
        "rejekt=0.1",
        "reject=0.1,",
        ",reject=0.1",
        "reject=nan",
        "dlr_late_ms=1.5",
        "drop_every_s=-1",
        "reject=0.1,reject=0.2",
        "dlr_late_ms=99999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(sim_faults_parse(bad[i], &f, &err), -EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults_parse),
        cmocka_unit_test_setup_teardown(test_login_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_report_por, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_v20, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_flow_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_pdus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_and_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliver_resend, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
