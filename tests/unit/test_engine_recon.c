/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reconciliation and scheduling of the task engine (queue/engine.h), tested
 * from outside through its public header only: a real libev loop, a real
 * store in a temporary directory, a fake bearer (struct eng_bearer_ops)
 * that records every SMS part and can push back with -EAGAIN, and a test
 * "network" that answers with submit results, DLRs and PoRs. The PoRs are
 * built here the way a card builds them (ota_scp80_por_encode_sms with the
 * SE's keys and the counter read back from the captured command packet, as
 * tests/sim/card.c decodes it), so a PoR the engine accepts proves the
 * packet it sent was right.
 *
 * Covered: the life of SCP80 and push tasks (DLR, PoR, PoR before DLR,
 * wallet pull), single link per SE, priority under back-pressure, delays,
 * deadlines, retries with a new counter, every kind of report that changes
 * nothing (late, duplicate, unknown, mismatched), cancel / terminate,
 * argument checks, restart on the same database, composite and batch jobs,
 * the ordering of commit and acknowledgements, a commit failure forced
 * with RLIMIT_FSIZE, two SEs behind one MSISDN. Several tests end by
 * walking the stored history (store_events): every change legal, never two
 * active tasks on one SE.
 *
 * Timers: the engine counts in seconds, so the timeout cases run with 1 s
 * and wait in a bounded loop; everything else answers at once. The tests
 * step the loop with EVRUN_NOWAIT and commit_interval_ms 0 (a commit per
 * turn), except test_commit_coalescing, which covers the spacing.
 */
#include "queue/engine.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ota/ota.h"
#include "queue/store.h"
#include "tests/support/tsupport.h"

#define MAX_SENT 4096
#define MAX_FINAL 1024
#define MAX_ACCEPT 1024
#define MAX_PKT_PARTS 20
#define SRC_ADDR "12345"
#define TAR_HEX "B00010"
#define SCRIPT_HEX "80CA9F7F00"
#define NOKEYS_SEID "SE-NOKEYS"
#define NOKEYS_MSISDN "8613999999999"
#define TWIN_SEID "SE-TWIN" /* shares SE 1's MSISDN, has keys of its own */

/* ---- harness ------------------------------------------------------------------------- */

struct sent {
    struct bearer_msg m;
    uint64_t commits; /* the engine's commit count when the part was handed over */
    size_t n_acc;     /* accept callbacks seen by then */
    char msg_id[BEARER_MSGID_MAX];
};

struct fin {
    int64_t id;
    enum task_state st;
    enum task_reason r;
    uint64_t commits;
};

struct h {
    struct ev_loop *loop;
    char dir[64];
    char db[128];
    struct eng_conf conf;
    struct eng *e;
    struct ota_crypto *cx;
    struct ota_key kic, kid;
    struct ota_key twin_kic, twin_kid;
    /* fake bearer */
    struct sent *sent;
    size_t n_sent;
    bool refuse;      /* every submit answers -EAGAIN */
    long accept_left; /* >= 0: accept that many more parts, then -EAGAIN; < 0 unlimited */
    unsigned n_refused;
    unsigned n_release, n_discard;
    uint64_t release_commits; /* the engine's commit count at the last release_acks */
    bool rel_marked;          /* set by the test; the next release_acks clears it ... */
    uint64_t rel_first;       /* ... and notes the commit count it saw */
    /* hooks */
    struct fin fins[MAX_FINAL];
    size_t n_fins;
    unsigned n_keys_calls;
    /* accept callback */
    struct {
        int64_t id;
        int rc;
    } acc[MAX_ACCEPT];
    size_t n_acc;
    unsigned msgid_seq;
    char soft[1024]; /* failures noted to report at the end of the test, so the rest still runs */
    bool rlim_set;   /* RLIMIT_FSIZE lowered: teardown restores rlim_old */
    struct rlimit rlim_old;
};

static void soft_fail(struct h *h, const char *fmt, ...) OTA_PRINTF(2, 3);
static void soft_fail(struct h *h, const char *fmt, ...)
{
    size_t n = strlen(h->soft);
    va_list ap;
    va_start(ap, fmt);
    if (n + 2 < sizeof(h->soft)) {
        if (n) {
            h->soft[n++] = ';';
            h->soft[n++] = ' ';
        }
        vsnprintf(h->soft + n, sizeof(h->soft) - n, fmt, ap);
    }
    va_end(ap);
}

static void soft_check(struct h *h)
{
    if (h->soft[0]) {
        fail_msg("%s", h->soft);
    }
}

static uint64_t commits_of(struct h *h)
{
    struct eng_stats st;
    if (!h->e) {
        return 0;
    }
    eng_stats(h->e, &st);
    return st.commits;
}

static struct eng_stats stats(struct h *h)
{
    struct eng_stats st;
    eng_stats(h->e, &st);
    return st;
}

static int fake_submit(void *arg, const struct bearer_msg *m, struct ota_err *err)
{
    struct h *h = arg;
    if (h->refuse || h->accept_left == 0) {
        h->n_refused++;
        return ota_fail(err, -EAGAIN, OTA_ERR_LIMIT, "fake bearer: no room");
    }
    if (h->accept_left > 0) {
        h->accept_left--;
    }
    assert_true(h->n_sent < MAX_SENT);
    struct sent *s = &h->sent[h->n_sent++];
    memset(s, 0, sizeof(*s));
    s->m = *m;
    s->commits = commits_of(h);
    s->n_acc = h->n_acc;
    return 0;
}

static void fake_release(void *arg)
{
    struct h *h = arg;
    h->n_release++;
    h->release_commits = commits_of(h);
    if (h->rel_marked) {
        h->rel_marked = false;
        h->rel_first = h->release_commits;
    }
}

static void fake_discard(void *arg)
{
    struct h *h = arg;
    h->n_discard++;
}

static const uint8_t KIC_BYTES[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                      0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x01};
static const uint8_t KID_BYTES[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                      0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10};

static int hook_keys(void *arg, const char *seid, const uint8_t tar[3], struct eng_scp80_keys *out,
                     struct ota_err *err)
{
    struct h *h = arg;
    (void)tar;
    h->n_keys_calls++;
    if (strcmp(seid, NOKEYS_SEID) == 0) {
        return ota_fail(err, -ENOENT, OTA_ERR_KEY, "no keys for %s", seid);
    }
    memset(out, 0, sizeof(*out));
    /* CC + ciphering + counter higher; PoR always, CC'd and ciphered, by SMS-SUBMIT */
    out->spi[0] = 0x16;
    out->spi[1] = 0x39;
    out->kic = 0x12; /* AES, KVN 1 */
    out->kid = 0x12; /* AES CMAC, KVN 1 */
    out->cc_len = 8;
    bool twin = strcmp(seid, TWIN_SEID) == 0;
    out->kic_key = twin ? h->twin_kic : h->kic;
    out->kid_key = twin ? h->twin_kid : h->kid;
    return 0;
}

static void hook_final(void *arg, const struct eng_task_view *t)
{
    struct h *h = arg;
    assert_true(h->n_fins < MAX_FINAL);
    struct fin *f = &h->fins[h->n_fins++];
    f->id = t->id;
    f->st = t->state;
    f->r = t->reason;
    f->commits = commits_of(h);
}

static void hook_log(void *arg, int level, const char *msg)
{
    (void)arg;
    if (level <= 3 || getenv("ENGT_VERBOSE")) {
        fprintf(stderr, "  [eng %d] %s\n", level, msg);
    }
}

static void on_accept(void *arg, int64_t id, int rc)
{
    struct h *h = arg;
    assert_true(h->n_acc < MAX_ACCEPT);
    h->acc[h->n_acc].id = id;
    h->acc[h->n_acc].rc = rc;
    h->n_acc++;
}

static void h_open(struct h *h)
{
    struct eng_hooks hk;
    struct ota_err err;
    memset(&hk, 0, sizeof(hk));
    hk.scp80_keys = hook_keys;
    hk.final = hook_final;
    hk.log = hook_log;
    hk.arg = h;
    memset(&err, 0, sizeof(err));
    int rc = eng_open(h->loop, &h->conf, &hk, &h->e, &err);
    if (rc != 0) {
        fail_msg("eng_open: %d (%s)", rc, err.msg);
    }
    assert_non_null(h->e);
    struct eng_bearer_ops ops = {.submit = fake_submit,
                                 .release_acks = fake_release,
                                 .discard_acks = fake_discard,
                                 .arg = h};
    eng_set_bearer(h->e, &ops);
}

static void h_close(struct h *h)
{
    if (h->e) {
        eng_close(h->e);
        h->e = NULL;
    }
}

static void rm_dir(const char *dir)
{
    (void)ts_rmdir_tree(dir);
}

static int setup(void **state)
{
    struct ota_err err;
    struct h *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    h->sent = calloc(MAX_SENT, sizeof(*h->sent));
    assert_non_null(h->sent);
    h->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(h->loop);
    snprintf(h->dir, sizeof(h->dir), "/tmp/otagw-engt-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    snprintf(h->db, sizeof(h->db), "%s/otagw.db", h->dir);
    eng_conf_defaults(&h->conf);
    h->conf.db_path = h->db;
    h->conf.durable = false;
    snprintf(h->conf.src_addr, sizeof(h->conf.src_addr), "%s", SRC_ADDR);
    /* long enough never to fire by accident; the timeout tests lower them */
    h->conf.dlr_timeout_s = 20;
    h->conf.por_timeout_s = 20;
    h->conf.pull_timeout_s = 20;
    h->conf.session_timeout_s = 20;
    h->conf.backoff_s = 1;
    h->conf.backoff_max_s = 1;
    h->conf.max_attempts = 3;
    /*
     * Commit every loop turn, so that turn() steps the engine deterministically;
     * test_commit_coalescing covers the spacing.
     */
    h->conf.commit_interval_ms = 0;
    assert_int_equal(ota_crypto_new(&h->cx, &err), 0);
    assert_int_equal(ota_key_set(&h->kic, OTA_CIPHER_AES, KIC_BYTES, 16, &err), 0);
    assert_int_equal(ota_key_set(&h->kid, OTA_CIPHER_AES, KID_BYTES, 16, &err), 0);
    assert_int_equal(ota_key_set(&h->twin_kic, OTA_CIPHER_AES, KID_BYTES, 16, &err), 0);
    assert_int_equal(ota_key_set(&h->twin_kid, OTA_CIPHER_AES, KIC_BYTES, 16, &err), 0);
    h->accept_left = -1;
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    struct h *h = *state;
    if (h->rlim_set) {
        (void)setrlimit(RLIMIT_FSIZE, &h->rlim_old);
    }
    h_close(h);
    ev_loop_destroy(h->loop);
    ota_crypto_free(h->cx);
    rm_dir(h->dir);
    free(h->sent);
    free(h);
    return 0;
}

/* Step the loop without blocking: each turn runs the engine's prepare (commit) watcher. */
static void turn(struct h *h, int n)
{
    for (int i = 0; i < n; i++) {
        ev_run(h->loop, EVRUN_NOWAIT);
    }
}

static void flush(struct h *h)
{
    struct ota_err err;
    int rc = eng_flush(h->e, &err);
    if (rc != 0) {
        fail_msg("eng_flush: %d (%s)", rc, err.msg);
    }
}

typedef bool (*pred_fn)(struct h *h, const void *arg);

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Run the loop until fn holds or max_s seconds passed; a 20 ms guard timer bounds each wait. */
static bool wait_until(struct h *h, pred_fn fn, const void *arg, double max_s)
{
    ev_timer guard;
    ev_timer_init(&guard, guard_cb, 0.02, 0.02);
    ev_timer_start(h->loop, &guard);
    double t0 = ev_time();
    bool ok = fn(h, arg);
    while (!ok && ev_time() - t0 < max_s) {
        ev_run(h->loop, EVRUN_ONCE);
        ok = fn(h, arg);
    }
    ev_timer_stop(h->loop, &guard);
    return ok;
}

static bool pred_never(struct h *h, const void *arg)
{
    (void)h;
    (void)arg;
    return false;
}

static void run_for(struct h *h, double s)
{
    (void)wait_until(h, pred_never, NULL, s);
}

static bool pred_sent(struct h *h, const void *arg)
{
    return h->n_sent >= *(const size_t *)arg;
}

static enum task_state state_of(struct h *h, int64_t id)
{
    struct eng_task_view v;
    struct ota_err err;
    int rc = eng_task_get(h->e, id, &v, &err);
    if (rc != 0) {
        fail_msg("eng_task_get(%lld): %d (%s)", (long long)id, rc, err.msg);
    }
    return v.state;
}

static bool pred_final(struct h *h, const void *arg)
{
    return task_state_final(state_of(h, *(const int64_t *)arg));
}

struct want_state {
    int64_t id;
    enum task_state st;
};

static bool pred_state(struct h *h, const void *arg)
{
    const struct want_state *w = arg;
    return state_of(h, w->id) == w->st;
}

static void assert_task_(struct h *h, int64_t id, enum task_state st, enum task_reason r, int line)
{
    struct eng_task_view v;
    struct ota_err err;
    int rc = eng_task_get(h->e, id, &v, &err);
    if (rc != 0) {
        fail_msg("line %d: eng_task_get(%lld): %d (%s)", line, (long long)id, rc, err.msg);
    }
    if (v.state != st || v.reason != r) {
        fail_msg("line %d: task %lld: expected %s/%s, got %s/%s (%s)", line, (long long)id,
                 task_state_name(st), task_reason_name(r), task_state_name(v.state),
                 task_reason_name(v.reason), v.reason_text ? v.reason_text : "");
    }
}
#define assert_task(h, id, st, r) assert_task_((h), (id), (st), (r), __LINE__)

static void assert_state_(struct h *h, int64_t id, enum task_state st, int line)
{
    enum task_state got = state_of(h, id);
    if (got != st) {
        fail_msg("line %d: task %lld: expected %s, got %s", line, (long long)id,
                 task_state_name(st), task_state_name(got));
    }
}
#define assert_state(h, id, st) assert_state_((h), (id), (st), __LINE__)

/* The final hook's records of a task. */
static size_t fins_of(struct h *h, int64_t id, struct fin *last)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_fins; i++) {
        if (h->fins[i].id == id) {
            n++;
            if (last) {
                *last = h->fins[i];
            }
        }
    }
    return n;
}

static void assert_final_hook_(struct h *h, int64_t id, enum task_state st, enum task_reason r,
                               int line)
{
    struct fin f;
    size_t n = fins_of(h, id, &f);
    if (n != 1) {
        fail_msg("line %d: final hook for task %lld called %zu times, expected once", line,
                 (long long)id, n);
    }
    if (f.st != st || f.r != r) {
        fail_msg("line %d: final hook for task %lld: expected %s/%s, got %s/%s", line,
                 (long long)id, task_state_name(st), task_reason_name(r), task_state_name(f.st),
                 task_reason_name(f.r));
    }
}
#define assert_final_hook(h, id, st, r) assert_final_hook_((h), (id), (st), (r), __LINE__)

static size_t accepts_of(struct h *h, int64_t id, int *rc)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_acc; i++) {
        if (h->acc[i].id == id) {
            n++;
            if (rc) {
                *rc = h->acc[i].rc;
            }
        }
    }
    return n;
}

/* ---- SEs and submits ------------------------------------------------------------------- */

static void se_name(unsigned i, char *seid, size_t seid_cap, char *msisdn, size_t msisdn_cap)
{
    if (seid) {
        snprintf(seid, seid_cap, "SE%04u", i);
    }
    if (msisdn) {
        snprintf(msisdn, msisdn_cap, "86139%08u", i);
    }
}

static const char *seid_of(unsigned i)
{
    static char buf[8][24];
    static unsigned k;
    char *s = buf[k++ % 8];
    se_name(i, s, 24, NULL, 0);
    return s;
}

static const char *msisdn_of(unsigned i)
{
    static char buf[8][24];
    static unsigned k;
    char *s = buf[k++ % 8];
    se_name(i, NULL, 0, s, 24);
    return s;
}

/* Register SEs 1..n (batch "odd"/"even") and commit. */
static void ses_add(struct h *h, unsigned n)
{
    struct ota_err err;
    for (unsigned i = 1; i <= n; i++) {
        char seid[24], msisdn[24];
        se_name(i, seid, sizeof(seid), msisdn, sizeof(msisdn));
        int rc = eng_se_register(h->e, seid, msisdn, i % 2 ? "odd" : "even", &err);
        if (rc != 0) {
            fail_msg("eng_se_register(%s): %d (%s)", seid, rc, err.msg);
        }
    }
    flush(h);
}

static struct eng_task_spec scp80_spec(const char *seid, const char *params)
{
    struct eng_task_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.seid = seid;
    sp.op = TASK_OP_SCP80;
    sp.channel = TASK_CH_SCP80;
    sp.params = params ? params : "{\"tar\":\"" TAR_HEX "\",\"script\":\"" SCRIPT_HEX "\"}";
    return sp;
}

static struct eng_task_spec push_spec(const char *seid)
{
    struct eng_task_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.seid = seid;
    sp.op = TASK_OP_PUSH;
    sp.channel = TASK_CH_PUSH;
    sp.params = "{}";
    return sp;
}

static int64_t submit_(struct h *h, const struct eng_task_spec *sp, int line)
{
    struct ota_err err;
    int64_t id = 0;
    memset(&err, 0, sizeof(err));
    int rc = eng_submit(h->e, sp, on_accept, h, &id, &err);
    if (rc != 0) {
        fail_msg("line %d: eng_submit(%s): %d (%s)", line, sp->seid ? sp->seid : "(null)", rc,
                 err.msg);
    }
    if (id <= 0) {
        fail_msg("line %d: eng_submit gave id %lld", line, (long long)id);
    }
    return id;
}
#define submit(h, sp) submit_((h), (sp), __LINE__)

static int64_t submit_scp80(struct h *h, unsigned se, uint8_t prio, uint8_t max_attempts)
{
    struct eng_task_spec sp = scp80_spec(seid_of(se), NULL);
    sp.prio = prio;
    sp.max_attempts = max_attempts;
    return submit(h, &sp);
}

static int64_t now_ms(struct h *h)
{
    ev_now_update(h->loop);
    return (int64_t)(ev_now(h->loop) * 1000.0);
}

/* ---- the network side ------------------------------------------------------------------- */

/* One attempt of a task as it went out: its parts, and the decoded SCP80 command. */
struct pkt {
    size_t idx[MAX_PKT_PARTS]; /* indexes into h->sent */
    size_t n;
    char msisdn[BEARER_ADDR_MAX + 1];
    struct ota_scp80_cmd cmd;           /* what the PoR answers: SPI, KIc, KID, TAR, counter */
    uint8_t data[OTA_SCP80_MAX_PACKET]; /* the secured data (the script as the card sees it) */
    size_t data_len;
    bool twin; /* decoded with the keys of TWIN_SEID */
};

static size_t sends_to(struct h *h, const char *msisdn, size_t from)
{
    size_t n = 0;
    for (size_t i = from; i < h->n_sent; i++) {
        if (strcmp(h->sent[i].m.dest, msisdn) == 0) {
            n++;
        }
    }
    return n;
}

static long first_send_to(struct h *h, const char *msisdn, size_t from)
{
    for (size_t i = from; i < h->n_sent; i++) {
        if (strcmp(h->sent[i].m.dest, msisdn) == 0) {
            return (long)i;
        }
    }
    return -1;
}

/*
 * The next attempt sent to msisdn (NULL: to anyone) at or after *cursor: its
 * first part and the following parts to the same handset. Advances *cursor
 * past its first part. false when there is none yet.
 */
static bool find_pkt(struct h *h, const char *msisdn, size_t *cursor, struct pkt *p)
{
    memset(p, 0, sizeof(*p));
    for (size_t i = *cursor; i < h->n_sent; i++) {
        const struct bearer_msg *m = &h->sent[i].m;
        if ((msisdn && strcmp(m->dest, msisdn) != 0) || m->part != 1) {
            continue;
        }
        snprintf(p->msisdn, sizeof(p->msisdn), "%s", m->dest);
        p->idx[p->n++] = i;
        for (size_t j = i + 1; j < h->n_sent && p->n < m->n_parts; j++) {
            if (strcmp(h->sent[j].m.dest, m->dest) == 0) {
                assert_true(p->n < MAX_PKT_PARTS);
                p->idx[p->n++] = j;
            }
        }
        *cursor = i + 1;
        return true;
    }
    return false;
}

/* Reassemble and decode the SCP80 command packet of p as a card does (tests/sim/card.c). */
static void decode_scp80(struct h *h, struct pkt *p)
{
    uint8_t buf[OTA_SCP80_MAX_PACKET];
    uint8_t work[OTA_SCP80_MAX_PACKET];
    size_t len = 0;
    struct ota_err err;
    for (size_t k = 0; k < p->n; k++) {
        const struct bearer_msg *m = &h->sent[p->idx[k]].m;
        struct ota_udh u;
        struct ota_udh_info in;
        /* TS 31.115: 8-bit class 2 data to the SIM data download PID */
        assert_int_equal(m->pid, 0x7F);
        assert_int_equal(m->dcs, 0xF6);
        assert_true(m->udhi);
        assert_int_equal(m->part, k + 1);
        assert_int_equal(m->n_parts, p->n);
        int rc = ota_udh_parse_info(m->ud, m->ud_len, &u, &in, &err);
        if (rc != 0) {
            fail_msg("part %zu of the packet to %s: bad UDH: %s", k + 1, p->msisdn, err.msg);
        }
        if (k == 0) {
            assert_true(in.has_cpi);
        }
        if (p->n > 1) {
            assert_true(in.has_concat);
            assert_int_equal(in.seq, k + 1);
            assert_int_equal(in.total, p->n);
        }
        assert_true(len + u.payload_len <= sizeof(buf));
        memcpy(buf + len, u.payload, u.payload_len);
        len += u.payload_len;
    }
    struct ota_scp80_keys keys = {&h->kic, &h->kid};
    struct ota_scp80_cmd_rx rx;
    int rc = ota_scp80_cmd_decode(h->cx, &keys, buf, len, work, sizeof(work), &rx, &err);
    p->twin = false;
    if (rc != 0) {
        struct ota_scp80_keys tk = {&h->twin_kic, &h->twin_kid};
        if (ota_scp80_cmd_decode(h->cx, &tk, buf, len, work, sizeof(work), &rx, &err) == 0) {
            p->twin = true;
            rc = 0;
        }
    }
    if (rc != 0) {
        fail_msg("the packet to %s does not decode with the SE's keys: %d (%s)", p->msisdn, rc,
                 err.msg);
    }
    memset(&p->cmd, 0, sizeof(p->cmd));
    p->cmd.spi = rx.hdr.spi;
    p->cmd.kic = rx.hdr.kic;
    p->cmd.kid = rx.hdr.kid;
    memcpy(p->cmd.tar, rx.hdr.tar, 3);
    p->cmd.cntr = rx.cntr;
    p->cmd.cc_len = rx.cc_len;
    assert_true(rx.data_len <= sizeof(p->data));
    memcpy(p->data, rx.data, rx.data_len);
    p->data_len = rx.data_len;
}

/* The next SCP80 attempt to msisdn, decoded; fails the test when none was sent. */
static void get_pkt_(struct h *h, const char *msisdn, size_t *cursor, struct pkt *p, int line)
{
    if (!find_pkt(h, msisdn, cursor, p)) {
        fail_msg("line %d: no packet to %s at or after send %zu (%zu sent)", line,
                 msisdn ? msisdn : "anyone", *cursor, h->n_sent);
    }
    decode_scp80(h, p);
}
#define get_pkt(h, msisdn, cursor, p) get_pkt_((h), (msisdn), (cursor), (p), __LINE__)

static bool data_has(const struct pkt *p, const uint8_t *x, size_t n)
{
    for (size_t i = 0; i + n <= p->data_len; i++) {
        if (memcmp(p->data + i, x, n) == 0) {
            return true;
        }
    }
    return false;
}

static void net_result(struct h *h, size_t idx, enum bearer_submit_status st)
{
    struct sent *s = &h->sent[idx];
    struct bearer_submit_result r;
    memset(&r, 0, sizeof(r));
    r.token = s->m.token;
    r.status = st;
    if (st == BEARER_SUBMIT_OK) {
        snprintf(s->msg_id, sizeof(s->msg_id), "id-%u", ++h->msgid_seq);
        snprintf(r.msg_id, sizeof(r.msg_id), "%s", s->msg_id);
        r.reason = "ok";
    } else {
        r.code = 8;
        r.reason = st == BEARER_SUBMIT_FINAL ? "refused for good" : "hold time ran out";
    }
    r.link = "fake";
    r.attempts = 1;
    eng_on_submit_result(h->e, &r);
}

static int net_dlr_id(struct h *h, const char *msg_id, const char *dest, enum bearer_dlr_state st,
                      bool final)
{
    struct bearer_dlr d;
    memset(&d, 0, sizeof(d));
    snprintf(d.msg_id, sizeof(d.msg_id), "%s", msg_id);
    d.state = st;
    d.final = final;
    snprintf(d.stat, sizeof(d.stat), "%s", st == BEARER_DLR_DELIVERED ? "DELIVRD" : "UNDELIV");
    d.dest = dest;
    d.link = "fake";
    return eng_on_dlr(h->e, &d);
}

static int net_dlr(struct h *h, size_t idx, enum bearer_dlr_state st)
{
    assert_true(h->sent[idx].msg_id[0] != '\0');
    return net_dlr_id(h, h->sent[idx].msg_id, h->sent[idx].m.dest, st, true);
}

static void pkt_result(struct h *h, const struct pkt *p, enum bearer_submit_status st)
{
    for (size_t k = 0; k < p->n; k++) {
        net_result(h, p->idx[k], st);
    }
}

static int pkt_dlr(struct h *h, const struct pkt *p, enum bearer_dlr_state st)
{
    int rc = 0;
    for (size_t k = 0; k < p->n; k++) {
        rc = net_dlr(h, p->idx[k], st);
        assert_true(rc == 0 || rc == BEARER_ACK_LATER);
    }
    return rc;
}

static int net_mo(struct h *h, const char *orig, const uint8_t *ud, size_t len)
{
    struct bearer_mo mo;
    memset(&mo, 0, sizeof(mo));
    mo.orig = orig;
    mo.dest = SRC_ADDR;
    mo.ud = ud;
    mo.ud_len = len;
    mo.udhi = true;
    mo.pid = 0x7F;
    mo.dcs = 0xF6;
    mo.link = "fake";
    return eng_on_mo(h->e, &mo);
}

struct por_opts {
    uint8_t status;
    bool unprotected;    /* as a card answers a security error */
    int64_t cntr_delta;  /* answer another counter than the packet's */
    bool flip;           /* corrupt the last octet (CC / cipher text) */
    const char *orig;    /* another originator than the SE's MSISDN */
    const uint8_t *data; /* additional response data */
    size_t data_len;
};

/* Build the PoR of p as the card would (same keys, the packet's TAR and counter) and send it. */
static int pkt_por(struct h *h, const struct pkt *p, const struct por_opts *o)
{
    static const struct por_opts ok = {0};
    uint8_t ud[OTA_SMS_UD_MAX];
    struct ota_err err;
    struct ota_scp80_keys keys = {p->twin ? &h->twin_kic : &h->kic,
                                  p->twin ? &h->twin_kid : &h->kid};
    struct ota_scp80_cmd cmd = p->cmd;
    if (!o) {
        o = &ok;
    }
    cmd.cntr = (uint64_t)((int64_t)cmd.cntr + o->cntr_delta);
    int n = ota_scp80_por_encode_sms(h->cx, &cmd, &keys, !o->unprotected, o->status, o->data,
                                     o->data_len, ud, sizeof(ud), &err);
    if (n < 0) {
        fail_msg("ota_scp80_por_encode_sms: %d (%s)", n, err.msg);
    }
    if (o->flip) {
        ud[n - 1] ^= 0x01;
    }
    int rc = net_mo(h, o->orig ? o->orig : p->msisdn, ud, (size_t)n);
    assert_true(rc == 0 || rc == BEARER_ACK_LATER);
    return rc;
}

/* Network accepts, delivers, the card answers OK: the task should end done. */
static void pkt_complete(struct h *h, const struct pkt *p)
{
    pkt_result(h, p, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)pkt_dlr(h, p, BEARER_DLR_DELIVERED);
    turn(h, 3);
    (void)pkt_por(h, p, NULL);
    turn(h, 4);
}

/* Complete every attempt sent at or after *cursor (SCP80), in order. Returns how many. */
static size_t drain(struct h *h, size_t *cursor)
{
    size_t n = 0;
    struct pkt p;
    while (find_pkt(h, NULL, cursor, &p)) {
        decode_scp80(h, &p);
        pkt_complete(h, &p);
        n++;
    }
    return n;
}

/* ---- the history: single link per SE and legal transitions over a whole run ----------- */

#define HIST_SES 256

struct hist {
    int64_t active[HIST_SES]; /* per SE row id: the task active on it, 0 = idle */
    size_t n_events;
    char bad[512];
};

static int hist_cb(void *arg, int64_t seq, int64_t task, int64_t se, enum task_state from,
                   enum task_state to, enum task_reason reason, int64_t t_ms)
{
    struct hist *hs = arg;
    (void)seq;
    (void)reason;
    (void)t_ms;
    hs->n_events++;
    if (hs->bad[0]) {
        return 0;
    }
    if (se <= 0 || se >= HIST_SES) {
        snprintf(hs->bad, sizeof(hs->bad), "event of task %lld names SE row %lld", (long long)task,
                 (long long)se);
        return 0;
    }
    if (!task_transition_ok(from, to)) {
        snprintf(hs->bad, sizeof(hs->bad), "task %lld: illegal %s -> %s in the history",
                 (long long)task, task_state_name(from), task_state_name(to));
        return 0;
    }
    bool was = task_state_active(from), is = task_state_active(to);
    if (!was && is) {
        if (hs->active[se] != 0 && hs->active[se] != task) {
            snprintf(hs->bad, sizeof(hs->bad),
                     "SE row %lld: task %lld became %s while task %lld was active", (long long)se,
                     (long long)task, task_state_name(to), (long long)hs->active[se]);
            return 0;
        }
        hs->active[se] = task;
    } else if (was && !is) {
        if (hs->active[se] != task) {
            snprintf(hs->bad, sizeof(hs->bad), "SE row %lld: task %lld left %s but was not active",
                     (long long)se, (long long)task, task_state_name(from));
            return 0;
        }
        hs->active[se] = 0;
    }
    return 0;
}

/* Close the engine and walk the stored history: every change legal, one active task per SE. */
static void check_history_(struct h *h, size_t min_events, int line)
{
    h_close(h);
    struct store *st = NULL;
    struct store_opts so = {.path = h->db};
    struct ota_err err;
    int rc = store_open(&so, &st, &err);
    if (rc != 0) {
        fail_msg("line %d: store_open: %d (%s)", line, rc, err.msg);
    }
    struct hist *hs = calloc(1, sizeof(*hs));
    assert_non_null(hs);
    rc = store_events(st, hist_cb, hs, &err);
    store_close(st);
    if (rc != 0) {
        free(hs);
        fail_msg("line %d: store_events: %d (%s)", line, rc, err.msg);
    }
    char bad[512];
    snprintf(bad, sizeof(bad), "%s", hs->bad);
    size_t n = hs->n_events;
    free(hs);
    if (bad[0]) {
        fail_msg("line %d: history: %s", line, bad);
    }
    if (n < min_events) {
        fail_msg("line %d: history has %zu events, expected at least %zu", line, n, min_events);
    }
}
#define check_history(h, min) check_history_((h), (min), __LINE__)

/* ---- tests: the life of a task ---------------------------------------------------------- */

static void test_scp80_happy(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 2);
    uint64_t c0 = commits_of(h);

    int64_t id = submit_scp80(h, 1, 0, 0);
    /* usable at once, but accepted only after its commit */
    assert_int_equal(h->n_acc, 0);
    assert_task(h, id, TASK_QUEUED, TASK_R_NONE);
    turn(h, 8);
    int arc = -1;
    assert_int_equal(accepts_of(h, id, &arc), 1);
    assert_int_equal(arc, 0);

    assert_int_equal(h->n_sent, 1);
    const struct bearer_msg *m = &h->sent[0].m;
    assert_string_equal(m->dest, msisdn_of(1));
    assert_string_equal(m->src, SRC_ADDR);
    assert_true(m->want_report);
    assert_int_equal(m->part, 1);
    assert_int_equal(m->n_parts, 1);
    assert_int_equal(m->priority, 0);
    /* the counter is on disk before the packet leaves; the submitter heard first */
    assert_true(h->sent[0].commits > c0);
    assert_int_equal(h->sent[0].n_acc, 1);
    assert_state(h, id, TASK_DISPATCHED);

    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    assert_true(p.cmd.cntr >= 1);
    assert_memory_equal(p.cmd.tar, "\xB0\x00\x10", 3);
    assert_int_equal(p.cmd.kic, 0x12);
    assert_int_equal(p.cmd.kid, 0x12);
    assert_true(p.cmd.spi.ciphered);
    assert_int_equal(p.cmd.spi.integrity, OTA_SCP80_INTEGRITY_CC);
    assert_int_equal(p.cmd.spi.cntr_mode, OTA_SCP80_CNTR_HIGHER);
    assert_int_equal(p.cmd.spi.por, OTA_SCP80_POR_ALWAYS);
    assert_int_equal(p.cmd.cc_len, 8);
    assert_true(data_has(&p, (const uint8_t *)"\x80\xCA\x9F\x7F\x00", 5));

    struct eng_stats s = stats(h);
    assert_int_equal(s.accepted, 1);
    assert_int_equal(s.dispatched, 1);
    assert_int_equal(s.parts_sent, 1);
    assert_int_equal(s.active, 1);

    pkt_result(h, &p, BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_state(h, id, TASK_SUBMITTED);

    unsigned rel0 = h->n_release;
    uint64_t cd = commits_of(h);
    h->rel_marked = true;
    assert_int_equal(pkt_dlr(h, &p, BEARER_DLR_DELIVERED), BEARER_ACK_LATER);
    turn(h, 3);
    assert_state(h, id, TASK_DELIVERED);
    /* the DLR is acknowledged only once its effect is committed: no release before that */
    assert_true(h->n_release > rel0);
    assert_false(h->rel_marked);
    if (h->rel_first <= cd) {
        fail_msg("release_acks called before the commit holding the DLR (commits %llu -> %llu)",
                 (unsigned long long)cd, (unsigned long long)h->rel_first);
    }
    assert_int_equal(h->n_fins, 0);

    rel0 = h->n_release;
    uint64_t cp = commits_of(h);
    h->rel_marked = true;
    assert_int_equal(pkt_por(h, &p, NULL), BEARER_ACK_LATER);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
    assert_final_hook(h, id, TASK_DONE, TASK_R_NONE);
    assert_true(h->fins[0].commits > cp);
    assert_true(h->n_release > rel0);
    assert_false(h->rel_marked);
    if (h->rel_first <= cp) {
        fail_msg("release_acks called before the commit holding the PoR (commits %llu -> %llu)",
                 (unsigned long long)cp, (unsigned long long)h->rel_first);
    }

    s = stats(h);
    assert_int_equal(s.done, 1);
    assert_int_equal(s.failed, 0);
    assert_int_equal(s.dlrs, 1);
    assert_int_equal(s.pors, 1);
    assert_int_equal(s.late + s.duplicate + s.unknown + s.mismatched, 0);
    assert_int_equal(s.illegal_transitions, 0);
    assert_int_equal(s.active, 0);
    assert_int_equal(s.queued, 0);

    int64_t active = -1;
    size_t nq = 99;
    int64_t q[4];
    struct ota_err err;
    assert_int_equal(eng_se_tasks(h->e, seid_of(1), &active, q, 4, &nq, &err), 0);
    assert_int_equal(active, 0);
    assert_int_equal(nq, 0);

    struct eng_task_view v;
    assert_int_equal(eng_task_get(h->e, id, &v, &err), 0);
    assert_string_equal(v.seid, seid_of(1));
    assert_int_equal(v.op, TASK_OP_SCP80);
    assert_int_equal(v.channel, TASK_CH_SCP80);
    assert_int_equal(v.attempts, 1);
    assert_int_equal(v.job, 0);
    assert_int_equal(eng_task_get(h->e, id + 1000, &v, &err), -ENOENT);
}

static void test_por_before_dlr(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t id = submit_scp80(h, 1, 0, 0);
    turn(h, 8);
    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    pkt_result(h, &p, BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_state(h, id, TASK_SUBMITTED);

    /* a verified PoR proves delivery: submitted -> done */
    assert_int_equal(pkt_por(h, &p, NULL), BEARER_ACK_LATER);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
    assert_final_hook(h, id, TASK_DONE, TASK_R_NONE);

    struct eng_stats s0 = stats(h);
    (void)pkt_dlr(h, &p, BEARER_DLR_DELIVERED);
    turn(h, 3);
    struct eng_stats s1 = stats(h);
    assert_int_equal(s1.late, s0.late + 1);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
    assert_int_equal(fins_of(h, id, NULL), 1);
    assert_int_equal(s1.done, 1);
}

static void test_push_done_on_dlr(void **state)
{
    struct h *h = *state;
    h->conf.push_wait_pull = false;
    h_open(h);
    ses_add(h, 1);
    struct eng_task_spec sp = push_spec(seid_of(1));
    int64_t id = submit(h, &sp);
    turn(h, 8);
    assert_int_equal(h->n_sent, 1);
    const struct bearer_msg *m = &h->sent[0].m;
    struct ota_push push;
    struct ota_err err;
    assert_string_equal(m->dest, msisdn_of(1));
    assert_int_equal(m->pid, OTA_PUSH_TP_PID);
    assert_true(m->udhi);
    assert_int_equal(ota_push_decode(m->ud, m->ud_len, &push, &err), 0);
    assert_int_equal(push.dst_port, 2948);
    assert_int_equal(push.seid_len, strlen(seid_of(1)));
    assert_memory_equal(push.seid, seid_of(1), push.seid_len);
    static const uint8_t zero[16];
    assert_memory_not_equal(push.serial, zero, 16);

    net_result(h, 0, BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_state(h, id, TASK_SUBMITTED);
    assert_int_equal(net_dlr(h, 0, BEARER_DLR_DELIVERED), BEARER_ACK_LATER);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
    assert_final_hook(h, id, TASK_DONE, TASK_R_NONE);
    assert_int_equal(stats(h).done, 1);
}

static void test_push_pull(void **state)
{
    struct h *h = *state;
    h->conf.push_wait_pull = true;
    h_open(h);
    ses_add(h, 2);
    struct eng_task_spec sp = push_spec(seid_of(1));
    int64_t id = submit(h, &sp);
    turn(h, 8);
    assert_int_equal(h->n_sent, 1);
    struct ota_push push;
    struct ota_err err;
    assert_int_equal(ota_push_decode(h->sent[0].m.ud, h->sent[0].m.ud_len, &push, &err), 0);
    net_result(h, 0, BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_int_equal(net_dlr(h, 0, BEARER_DLR_DELIVERED), BEARER_ACK_LATER);
    turn(h, 3);
    assert_state(h, id, TASK_DELIVERED);
    assert_int_equal(h->n_fins, 0);

    int64_t got = 0;
    /* not pulled yet: the session cannot be completed */
    assert_true(eng_task_complete(h->e, id, TASK_R_NONE, NULL, &err) < 0);
    assert_state(h, id, TASK_DELIVERED);
    uint8_t wrong[16];
    memcpy(wrong, push.serial, 16);
    wrong[15] ^= 0x5A;
    assert_int_equal(eng_pull(h->e, seid_of(1), wrong, &got, &err), -ENOENT);
    /* the right serial named with another SE */
    assert_int_equal(eng_pull(h->e, seid_of(2), push.serial, &got, &err), -ENOENT);
    assert_int_equal(got, 0);
    assert_state(h, id, TASK_DELIVERED);
    assert_int_equal(eng_pull(h->e, seid_of(1), push.serial, &got, &err), 0);
    assert_int_equal(got, id);
    int64_t again = 0;
    assert_int_equal(eng_pull(h->e, seid_of(1), push.serial, &again, &err), -EALREADY);
    turn(h, 3);
    assert_int_equal(stats(h).pulls, 1);
    assert_false(task_state_final(state_of(h, id)));

    assert_int_equal(eng_task_complete(h->e, id, TASK_R_NONE, "{\"sw\":\"9000\"}", &err), 0);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
    assert_final_hook(h, id, TASK_DONE, TASK_R_NONE);
    struct eng_task_view v;
    assert_int_equal(eng_task_get(h->e, id, &v, &err), 0);
    assert_non_null(v.result);
    assert_non_null(strstr(v.result, "9000"));
    /* a final task cannot be completed again */
    assert_true(eng_task_complete(h->e, id, TASK_R_CLIENT, NULL, &err) < 0);
    turn(h, 2);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
}

static void test_push_not_pulled(void **state)
{
    struct h *h = *state;
    h->conf.push_wait_pull = true;
    h->conf.pull_timeout_s = 1;
    h_open(h);
    ses_add(h, 1);
    struct eng_task_spec sp = push_spec(seid_of(1));
    sp.max_attempts = 1;
    int64_t id = submit(h, &sp);
    turn(h, 8);
    assert_int_equal(h->n_sent, 1);
    struct ota_push push;
    struct ota_err err;
    assert_int_equal(ota_push_decode(h->sent[0].m.ud, h->sent[0].m.ud_len, &push, &err), 0);
    net_result(h, 0, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)net_dlr(h, 0, BEARER_DLR_DELIVERED);
    turn(h, 3);
    assert_state(h, id, TASK_DELIVERED);
    double t0 = ev_time();
    assert_true(wait_until(h, pred_final, &id, 5.0));
    turn(h, 3); /* the final hook follows the commit */
    assert_true(ev_time() - t0 > 0.5);
    assert_task(h, id, TASK_FAILED, TASK_R_NOT_PULLED);
    assert_final_hook(h, id, TASK_FAILED, TASK_R_NOT_PULLED);
    assert_int_equal(stats(h).failed, 1);
    /* header: -ETIMEDOUT, the task is no longer waiting */
    int64_t got = 0;
    int rc = eng_pull(h->e, seid_of(1), push.serial, &got, &err);
    if (rc != -ETIMEDOUT) {
        fail_msg("eng_pull after the pull timeout: expected -ETIMEDOUT (%d), got %d (%s)",
                 -ETIMEDOUT, rc, err.msg);
    }
}

static void test_session_timeout(void **state)
{
    struct h *h = *state;
    h->conf.push_wait_pull = true;
    h->conf.session_timeout_s = 1;
    h_open(h);
    ses_add(h, 1);
    struct eng_task_spec sp = push_spec(seid_of(1));
    int64_t id = submit(h, &sp);
    turn(h, 8);
    struct ota_push push;
    struct ota_err err;
    assert_int_equal(ota_push_decode(h->sent[0].m.ud, h->sent[0].m.ud_len, &push, &err), 0);
    net_result(h, 0, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)net_dlr(h, 0, BEARER_DLR_DELIVERED);
    turn(h, 3);
    int64_t got = 0;
    assert_int_equal(eng_pull(h->e, seid_of(1), push.serial, &got, &err), 0);
    turn(h, 3);
    assert_true(wait_until(h, pred_final, &id, 5.0));
    turn(h, 3);
    assert_task(h, id, TASK_FAILED, TASK_R_CLIENT);
    assert_final_hook(h, id, TASK_FAILED, TASK_R_CLIENT);
    /* too late now */
    assert_true(eng_task_complete(h->e, id, TASK_R_NONE, NULL, &err) < 0);
    assert_task(h, id, TASK_FAILED, TASK_R_CLIENT);
}

static void test_close_commits_staged(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t id = submit_scp80(h, 1, 2, 0);
    /* no loop turn: eng_close commits what is staged */
    h_close(h);
    h_open(h);
    struct eng_task_view v;
    struct ota_err err;
    assert_int_equal(eng_task_get(h->e, id, &v, &err), 0);
    assert_int_equal(v.prio, 2);
    turn(h, 8);
    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    pkt_complete(h, &p);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
}

static void test_single_link_per_se(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 2);
    int64_t a = submit_scp80(h, 1, 0, 0);
    int64_t b = submit_scp80(h, 1, 0, 0);
    int64_t c = submit_scp80(h, 2, 0, 0);
    turn(h, 8);
    /* the other SE's task goes at once; the second of SE 1 waits */
    assert_int_equal(sends_to(h, msisdn_of(1), 0), 1);
    assert_int_equal(sends_to(h, msisdn_of(2), 0), 1);
    assert_state(h, a, TASK_DISPATCHED);
    assert_state(h, b, TASK_QUEUED);
    assert_state(h, c, TASK_DISPATCHED);
    struct eng_stats s = stats(h);
    assert_int_equal(s.active, 2);
    assert_int_equal(s.queued, 1);

    size_t cur1 = 0;
    struct pkt pa;
    get_pkt(h, msisdn_of(1), &cur1, &pa);
    pkt_result(h, &pa, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)pkt_dlr(h, &pa, BEARER_DLR_DELIVERED);
    turn(h, 5);
    /* still one link: b waits for a's PoR */
    assert_int_equal(sends_to(h, msisdn_of(1), 0), 1);
    assert_state(h, b, TASK_QUEUED);
    (void)pkt_por(h, &pa, NULL);
    turn(h, 8);
    assert_task(h, a, TASK_DONE, TASK_R_NONE);
    assert_int_equal(sends_to(h, msisdn_of(1), 0), 2);
    assert_state(h, b, TASK_DISPATCHED);
    struct pkt pb;
    get_pkt(h, msisdn_of(1), &cur1, &pb);
    assert_true(pb.cmd.cntr > pa.cmd.cntr);
    pkt_complete(h, &pb);
    assert_task(h, b, TASK_DONE, TASK_R_NONE);
    /* a, b, c: queued -> dispatched -> submitted -> delivered -> done (c stays dispatched) */
    check_history(h, 9);
}

static void test_priority_under_backpressure(void **state)
{
    struct h *h = *state;
    /*
     * The engine dispatches ahead into a backlog of up to 2 x dispatch_max_turn
     * parts while the bearer pushes back; keep that small so that most of the
     * 50 tasks are still queued (in priority order) when the urgent one comes.
     */
    h->conf.dispatch_max_turn = 4;
    h_open(h);
    ses_add(h, 52);
    h->refuse = true;
    int64_t first = submit_scp80(h, 52, 0, 0);
    turn(h, 8);
    assert_true(h->n_refused >= 1);
    assert_int_equal(h->n_sent, 0);
    for (unsigned i = 1; i <= 50; i++) {
        (void)submit_scp80(h, i, 0, 0);
    }
    turn(h, 8);
    struct eng_stats s = stats(h);
    /* while the bearer refuses, work should stay queued (in priority order), not pile up */
    if (s.queued < 40) {
        fail_msg("bearer refusing, yet only %zu of 50 tasks still queued (%llu dispatched)",
                 s.queued, (unsigned long long)s.dispatched);
    }
    uint64_t d = s.dispatched;
    int64_t urgent = submit_scp80(h, 51, 3, 0);
    turn(h, 8);
    assert_int_equal(h->n_sent, 0);
    h->refuse = false;
    eng_on_ready(h->e);
    size_t want = 52;
    assert_true(wait_until(h, pred_sent, &want, 5.0));
    long iu = first_send_to(h, msisdn_of(51), 0);
    assert_true(iu >= 0);
    /* only what was dispatched before it may precede it */
    if ((uint64_t)iu > d) {
        fail_msg("urgent task %lld went out as part %ld; at most %llu parts may precede it",
                 (long long)urgent, iu, (unsigned long long)d);
    }
    assert_int_equal(h->sent[iu].m.priority, 3);
    assert_true(first_send_to(h, msisdn_of(52), 0) >= 0);
    assert_state(h, first, TASK_DISPATCHED);
}

static void test_delayed_task(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    struct eng_task_spec sp = scp80_spec(seid_of(1), NULL);
    int64_t t0 = now_ms(h);
    sp.not_before_ms = t0 + 1500;
    int64_t id = submit(h, &sp);
    turn(h, 8);
    assert_int_equal(h->n_sent, 0);
    run_for(h, 0.8);
    assert_int_equal(h->n_sent, 0);
    assert_state(h, id, TASK_QUEUED);
    size_t want = 1;
    assert_true(wait_until(h, pred_sent, &want, 4.0));
    int64_t t1 = now_ms(h);
    if (t1 - t0 < 1400) {
        fail_msg("delayed task sent after %lld ms, not before 1500", (long long)(t1 - t0));
    }
    struct want_state w = {id, TASK_DISPATCHED};
    assert_true(wait_until(h, pred_state, &w, 1.0));
}

static void test_deadline_while_queued(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t blocker = submit_scp80(h, 1, 0, 0);
    struct eng_task_spec sp = scp80_spec(seid_of(1), NULL);
    sp.deadline_ms = now_ms(h) + 600;
    int64_t id = submit(h, &sp);
    turn(h, 8);
    assert_int_equal(h->n_sent, 1);
    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    pkt_result(h, &p, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)pkt_dlr(h, &p, BEARER_DLR_DELIVERED);
    turn(h, 3);
    assert_state(h, id, TASK_QUEUED);
    assert_true(wait_until(h, pred_final, &id, 4.0));
    turn(h, 3); /* the final hook follows the commit */
    assert_task(h, id, TASK_EXPIRED, TASK_R_DEADLINE);
    assert_final_hook(h, id, TASK_EXPIRED, TASK_R_DEADLINE);
    assert_int_equal(stats(h).expired, 1);
    assert_int_equal(h->n_sent, 1);
    assert_state(h, blocker, TASK_DELIVERED);
}

static void test_dlr_failed_retry_new_counter(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t id = submit_scp80(h, 1, 0, 3);
    turn(h, 8);
    size_t cur = 0;
    struct pkt p1, p2;
    get_pkt(h, msisdn_of(1), &cur, &p1);
    pkt_result(h, &p1, BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_int_equal(pkt_dlr(h, &p1, BEARER_DLR_FAILED), BEARER_ACK_LATER);
    turn(h, 3);
    assert_false(task_state_final(state_of(h, id)));
    assert_int_equal(stats(h).retries, 1);
    size_t want = 2;
    assert_true(wait_until(h, pred_sent, &want, 5.0));
    get_pkt(h, msisdn_of(1), &cur, &p2);
    if (p2.cmd.cntr <= p1.cmd.cntr) {
        fail_msg("retry reused counter: first %llu, retry %llu", (unsigned long long)p1.cmd.cntr,
                 (unsigned long long)p2.cmd.cntr);
    }
    pkt_complete(h, &p2);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
    struct eng_task_view v;
    struct ota_err err;
    assert_int_equal(eng_task_get(h->e, id, &v, &err), 0);
    assert_int_equal(v.attempts, 2);
    assert_final_hook(h, id, TASK_DONE, TASK_R_NONE);
}

static void test_retries_exhausted(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t id = submit_scp80(h, 1, 0, 2);
    turn(h, 8);
    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    pkt_result(h, &p, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)pkt_dlr(h, &p, BEARER_DLR_FAILED);
    turn(h, 3);
    size_t want = 2;
    assert_true(wait_until(h, pred_sent, &want, 5.0));
    get_pkt(h, msisdn_of(1), &cur, &p);
    pkt_result(h, &p, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)pkt_dlr(h, &p, BEARER_DLR_FAILED);
    turn(h, 4);
    assert_task(h, id, TASK_FAILED, TASK_R_DLR_FAILED);
    assert_final_hook(h, id, TASK_FAILED, TASK_R_DLR_FAILED);
    run_for(h, 1.5);
    assert_int_equal(h->n_sent, 2);
    struct eng_stats s = stats(h);
    assert_int_equal(s.retries, 1);
    assert_int_equal(s.failed, 1);
    struct eng_task_view v;
    struct ota_err err;
    assert_int_equal(eng_task_get(h->e, id, &v, &err), 0);
    assert_int_equal(v.attempts, 2);
}

static void test_dlr_reasons(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 3);
    int64_t a = submit_scp80(h, 1, 0, 1);
    int64_t b = submit_scp80(h, 2, 0, 1);
    int64_t c = submit_scp80(h, 3, 0, 1);
    turn(h, 8);
    struct pkt pa, pb, pc;
    size_t ca = 0, cb = 0, cc = 0;
    get_pkt(h, msisdn_of(1), &ca, &pa);
    get_pkt(h, msisdn_of(2), &cb, &pb);
    get_pkt(h, msisdn_of(3), &cc, &pc);
    pkt_result(h, &pa, BEARER_SUBMIT_OK);
    pkt_result(h, &pb, BEARER_SUBMIT_OK);
    pkt_result(h, &pc, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)pkt_dlr(h, &pa, BEARER_DLR_EXPIRED);
    (void)pkt_dlr(h, &pb, BEARER_DLR_REJECTED);
    /* an intermediate report changes nothing */
    assert_int_equal(
        net_dlr_id(h, h->sent[pc.idx[0]].msg_id, msisdn_of(3), BEARER_DLR_ACCEPTED, false), 0);
    turn(h, 4);
    assert_task(h, a, TASK_FAILED, TASK_R_DLR_EXPIRED);
    assert_task(h, b, TASK_FAILED, TASK_R_DLR_REJECTED);
    assert_state(h, c, TASK_SUBMITTED);
    (void)pkt_dlr(h, &pc, BEARER_DLR_DELIVERED);
    turn(h, 3);
    assert_state(h, c, TASK_DELIVERED);
}

static void test_submit_final_rejected(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t id = submit_scp80(h, 1, 0, 3);
    turn(h, 8);
    assert_int_equal(h->n_sent, 1);
    net_result(h, 0, BEARER_SUBMIT_FINAL);
    turn(h, 4);
    assert_task(h, id, TASK_FAILED, TASK_R_BEARER_REJECTED);
    assert_final_hook(h, id, TASK_FAILED, TASK_R_BEARER_REJECTED);
    /* refused for good: never retried */
    run_for(h, 1.5);
    assert_int_equal(h->n_sent, 1);
    assert_int_equal(stats(h).retries, 0);
}

static void test_submit_retryable(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t id = submit_scp80(h, 1, 0, 3);
    turn(h, 8);
    size_t cur = 0;
    struct pkt p1, p2;
    get_pkt(h, msisdn_of(1), &cur, &p1);
    pkt_result(h, &p1, BEARER_SUBMIT_RETRYABLE);
    turn(h, 3);
    assert_false(task_state_final(state_of(h, id)));
    size_t want = 2;
    assert_true(wait_until(h, pred_sent, &want, 5.0));
    assert_int_equal(stats(h).retries, 1);
    get_pkt(h, msisdn_of(1), &cur, &p2);
    assert_true(p2.cmd.cntr > p1.cmd.cntr);
    /* a result for the first attempt's part, arriving now, is late */
    struct eng_stats s0 = stats(h);
    net_result(h, p1.idx[0], BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_int_equal(stats(h).late, s0.late + 1);
    assert_state(h, id, TASK_DISPATCHED);
    pkt_complete(h, &p2);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
}

static void test_pull_before_dlr(void **state)
{
    struct h *h = *state;
    h->conf.push_wait_pull = true;
    h_open(h);
    ses_add(h, 1);
    struct eng_task_spec sp = push_spec(seid_of(1));
    int64_t id = submit(h, &sp);
    turn(h, 8);
    struct ota_push push;
    struct ota_err err;
    int64_t got = 0;
    assert_int_equal(ota_push_decode(h->sent[0].m.ud, h->sent[0].m.ud_len, &push, &err), 0);
    net_result(h, 0, BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_state(h, id, TASK_SUBMITTED);
    /* the pull proves delivery */
    assert_int_equal(eng_pull(h->e, seid_of(1), push.serial, &got, &err), 0);
    assert_int_equal(got, id);
    turn(h, 3);
    assert_state(h, id, TASK_DELIVERED);
    /* the DLR that follows changes nothing */
    (void)net_dlr(h, 0, BEARER_DLR_DELIVERED);
    turn(h, 3);
    assert_state(h, id, TASK_DELIVERED);
    assert_int_equal(eng_task_complete(h->e, id, TASK_R_CLIENT, NULL, &err), 0);
    turn(h, 4);
    assert_task(h, id, TASK_FAILED, TASK_R_CLIENT);
    assert_final_hook(h, id, TASK_FAILED, TASK_R_CLIENT);
}

static void test_duplicate_and_unknown_dlr(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t id = submit_scp80(h, 1, 0, 0);
    turn(h, 8);
    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    pkt_result(h, &p, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)pkt_dlr(h, &p, BEARER_DLR_DELIVERED);
    turn(h, 3);
    assert_state(h, id, TASK_DELIVERED);

    struct eng_stats s0 = stats(h);
    (void)pkt_dlr(h, &p, BEARER_DLR_DELIVERED);
    turn(h, 3);
    struct eng_stats s1 = stats(h);
    assert_int_equal(s1.duplicate, s0.duplicate + 1);
    assert_state(h, id, TASK_DELIVERED);
    /* a failed report for a part already delivered does not undo it either */
    (void)pkt_dlr(h, &p, BEARER_DLR_FAILED);
    turn(h, 3);
    assert_state(h, id, TASK_DELIVERED);

    s0 = stats(h);
    int rc = net_dlr_id(h, "id-nope", msisdn_of(1), BEARER_DLR_DELIVERED, true);
    assert_true(rc == 0 || rc == BEARER_ACK_LATER);
    turn(h, 3);
    s1 = stats(h);
    assert_int_equal(s1.unknown, s0.unknown + 1);
    assert_state(h, id, TASK_DELIVERED);
    assert_int_equal(h->n_fins, 0);

    (void)pkt_por(h, &p, NULL);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
}

static void test_timeouts(void **state)
{
    struct h *h = *state;
    h->conf.dlr_timeout_s = 1;
    h->conf.por_timeout_s = 1;
    h_open(h);
    ses_add(h, 2);
    int64_t a = submit_scp80(h, 1, 0, 1);
    int64_t b = submit_scp80(h, 2, 0, 1);
    turn(h, 8);
    struct pkt pa, pb;
    size_t ca = 0, cb = 0;
    get_pkt(h, msisdn_of(1), &ca, &pa);
    get_pkt(h, msisdn_of(2), &cb, &pb);
    pkt_result(h, &pa, BEARER_SUBMIT_OK);
    pkt_result(h, &pb, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)pkt_dlr(h, &pb, BEARER_DLR_DELIVERED);
    turn(h, 3);
    assert_true(wait_until(h, pred_final, &a, 5.0));
    assert_true(wait_until(h, pred_final, &b, 5.0));
    turn(h, 3); /* the final hook follows the commit */
    assert_task(h, a, TASK_FAILED, TASK_R_DLR_MISSING);
    assert_task(h, b, TASK_FAILED, TASK_R_POR_MISSING);
    assert_final_hook(h, a, TASK_FAILED, TASK_R_DLR_MISSING);
    assert_final_hook(h, b, TASK_FAILED, TASK_R_POR_MISSING);
}

/* ---- tests: PoRs and MOs ----------------------------------------------------------------- */

/* A task delivered and waiting for its PoR; returns its id and packet. */
static int64_t delivered_task(struct h *h, unsigned se, uint8_t max_attempts, struct pkt *p)
{
    int64_t id = submit_scp80(h, se, 0, max_attempts);
    turn(h, 8);
    size_t cur = 0;
    get_pkt(h, msisdn_of(se), &cur, p);
    pkt_result(h, p, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)pkt_dlr(h, p, BEARER_DLR_DELIVERED);
    turn(h, 3);
    assert_state(h, id, TASK_DELIVERED);
    return id;
}

static void test_por_bad_cc(void **state)
{
    struct h *h = *state;
    h->conf.por_timeout_s = 1;
    h_open(h);
    ses_add(h, 1);
    struct pkt p;
    int64_t id = delivered_task(h, 1, 1, &p);
    struct eng_stats s0 = stats(h);
    struct por_opts o = {.flip = true};
    (void)pkt_por(h, &p, &o);
    turn(h, 3);
    struct eng_stats s1 = stats(h);
    assert_int_equal(s1.mismatched, s0.mismatched + 1);
    /* never trusted: the task keeps waiting */
    assert_state(h, id, TASK_DELIVERED);
    assert_true(wait_until(h, pred_final, &id, 5.0));
    turn(h, 3); /* the final hook follows the commit */
    assert_task(h, id, TASK_FAILED, TASK_R_POR_BAD_CC);
    assert_final_hook(h, id, TASK_FAILED, TASK_R_POR_BAD_CC);
}

static void test_por_status_02_duplicate_copy(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    struct pkt p;
    int64_t id = delivered_task(h, 1, 0, &p);
    struct eng_stats s0 = stats(h);
    /* a second copy of our packet reached the card: it answers counter low, unprotected */
    struct por_opts o = {.status = OTA_SCP80_ST_CNTR_LOW, .unprotected = true};
    (void)pkt_por(h, &p, &o);
    turn(h, 3);
    struct eng_stats s1 = stats(h);
    assert_int_equal(s1.duplicate, s0.duplicate + 1);
    assert_state(h, id, TASK_DELIVERED);
    assert_int_equal(h->n_fins, 0);
    (void)pkt_por(h, &p, NULL);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
    assert_final_hook(h, id, TASK_DONE, TASK_R_NONE);
}

static void test_por_status_error(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    struct pkt p;
    int64_t id = delivered_task(h, 1, 1, &p);
    struct por_opts o = {.status = OTA_SCP80_ST_INSUFFICIENT_SECURITY};
    (void)pkt_por(h, &p, &o);
    turn(h, 4);
    assert_task(h, id, TASK_FAILED, TASK_R_POR_STATUS);
    assert_final_hook(h, id, TASK_FAILED, TASK_R_POR_STATUS);
}

static void test_por_counter_high(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    struct pkt p;
    int64_t id = delivered_task(h, 1, 3, &p);
    /* the card refuses our counter (not +1 in its mode): unprotected, as cards answer */
    struct por_opts o = {.status = OTA_SCP80_ST_CNTR_HIGH, .unprotected = true};
    (void)pkt_por(h, &p, &o);
    turn(h, 4);
    assert_task(h, id, TASK_FAILED, TASK_R_POR_STALE_COUNTER);
    /* PoR reasons never retry: the card may have run the script */
    run_for(h, 1.3);
    assert_int_equal(h->n_sent, 1);
    assert_int_equal(stats(h).retries, 0);
}

static void test_por_ok_unprotected_refused(void **state)
{
    struct h *h = *state;
    h->conf.por_timeout_s = 1;
    h_open(h);
    ses_add(h, 1);
    struct pkt p;
    int64_t id = delivered_task(h, 1, 1, &p);
    /* status 00 without the checksum the SPI asks for: never trusted */
    struct por_opts o = {.unprotected = true};
    struct eng_stats s0 = stats(h);
    (void)pkt_por(h, &p, &o);
    turn(h, 3);
    assert_int_equal(stats(h).mismatched, s0.mismatched + 1);
    assert_state(h, id, TASK_DELIVERED);
    assert_true(wait_until(h, pred_final, &id, 5.0));
    turn(h, 3);
    assert_int_equal(state_of(h, id), TASK_FAILED);
    assert_int_equal(stats(h).done, 0);
}

static void test_por_card_sw(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 4);
    struct pkt p;
    /* compact response (TS 102 226 5.1): executed count, SW of the last, its data */
    int64_t id = delivered_task(h, 1, 1, &p);
    static const uint8_t c_bad[] = {0x01, 0x6A, 0x82};
    struct por_opts o = {.data = c_bad, .data_len = sizeof(c_bad)};
    (void)pkt_por(h, &p, &o);
    turn(h, 4);
    assert_task(h, id, TASK_FAILED, TASK_R_CARD_SW);
    id = delivered_task(h, 2, 1, &p);
    static const uint8_t c_ok[] = {0x01, 0x90, 0x00, 0x9F, 0x7F};
    o.data = c_ok;
    o.data_len = sizeof(c_ok);
    (void)pkt_por(h, &p, &o);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
    struct eng_task_view v;
    struct ota_err err;
    assert_int_equal(eng_task_get(h->e, id, &v, &err), 0);
    assert_non_null(v.result);
    /* expanded response (TS 102 226 5.2): AB { 80 executed, 23 R-APDU } */
    id = delivered_task(h, 3, 1, &p);
    static const uint8_t x_bad[] = {0xAB, 0x07, 0x80, 0x01, 0x01, 0x23, 0x02, 0x69, 0x85};
    o.data = x_bad;
    o.data_len = sizeof(x_bad);
    (void)pkt_por(h, &p, &o);
    turn(h, 4);
    assert_task(h, id, TASK_FAILED, TASK_R_CARD_SW);
    id = delivered_task(h, 4, 1, &p);
    static const uint8_t x_ok[] = {0xAB, 0x07, 0x80, 0x01, 0x01, 0x23, 0x02, 0x90, 0x00};
    o.data = x_ok;
    o.data_len = sizeof(x_ok);
    (void)pkt_por(h, &p, &o);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
}

static void test_por_before_submit_result(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t id = submit_scp80(h, 1, 0, 0);
    turn(h, 8);
    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    assert_state(h, id, TASK_DISPATCHED);
    /* the card answered before the network's submit response reached us */
    assert_int_equal(pkt_por(h, &p, NULL), BEARER_ACK_LATER);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
    struct eng_stats s0 = stats(h);
    pkt_result(h, &p, BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_int_equal(stats(h).late, s0.late + 1);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
    assert_int_equal(fins_of(h, id, NULL), 1);
    check_history(h, 3);
}

static void test_por_wrong_counter(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    struct pkt p;
    int64_t id = delivered_task(h, 1, 0, &p);
    struct eng_stats s0 = stats(h);
    struct por_opts o = {.cntr_delta = 5};
    (void)pkt_por(h, &p, &o);
    turn(h, 3);
    struct eng_stats s1 = stats(h);
    assert_int_equal(s1.mismatched, s0.mismatched + 1);
    assert_state(h, id, TASK_DELIVERED);
    (void)pkt_por(h, &p, NULL);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
}

static void test_mo_unknown_msisdn(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    struct pkt p;
    int64_t id = delivered_task(h, 1, 0, &p);
    struct eng_stats s0 = stats(h);
    struct por_opts o = {.orig = "8612300000000"};
    (void)pkt_por(h, &p, &o);
    turn(h, 3);
    struct eng_stats s1 = stats(h);
    assert_int_equal(s1.unknown, s0.unknown + 1);
    assert_int_equal(s1.pors, s0.pors);
    assert_state(h, id, TASK_DELIVERED);
    /* an ordinary SMS (port UDH, no RPI) from the SE itself is not a PoR: unknown */
    static const uint8_t junk[] = {0x06, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 'h', 'i'};
    s0 = stats(h);
    int rc = net_mo(h, msisdn_of(1), junk, sizeof(junk));
    assert_true(rc == 0 || rc == BEARER_ACK_LATER);
    turn(h, 3);
    s1 = stats(h);
    assert_int_equal(s1.unknown, s0.unknown + 1);
    assert_int_equal(s1.mismatched, s0.mismatched);
    assert_state(h, id, TASK_DELIVERED);
    (void)pkt_por(h, &p, NULL);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
}

/* ---- tests: operating on tasks --------------------------------------------------------- */

static void test_terminate_active(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t a = submit_scp80(h, 1, 0, 0);
    int64_t b = submit_scp80(h, 1, 0, 0);
    turn(h, 8);
    size_t cur = 0;
    struct pkt pa;
    get_pkt(h, msisdn_of(1), &cur, &pa);
    pkt_result(h, &pa, BEARER_SUBMIT_OK);
    turn(h, 3);
    struct ota_err err;
    assert_int_equal(eng_task_terminate(h->e, b, &err), -EINVAL); /* queued, not active */
    assert_int_equal(eng_task_terminate(h->e, a, &err), 0);
    turn(h, 8);
    assert_task(h, a, TASK_CANCELLED, TASK_R_TERMINATED);
    assert_final_hook(h, a, TASK_CANCELLED, TASK_R_TERMINATED);
    assert_int_equal(stats(h).cancelled, 1);
    /* the SE is free: its next task goes */
    assert_int_equal(sends_to(h, msisdn_of(1), 0), 2);
    assert_state(h, b, TASK_DISPATCHED);

    /* header: a terminated task's later reports are recorded (late) only */
    struct eng_stats s0 = stats(h);
    (void)pkt_por(h, &pa, NULL);
    turn(h, 3);
    struct eng_stats s1 = stats(h);
    if (s1.late != s0.late + 1) {
        soft_fail(h,
                  "PoR of the terminated task while the SE's next task is active: expected "
                  "late +1, got late +%llu mismatched +%llu unknown +%llu",
                  (unsigned long long)(s1.late - s0.late),
                  (unsigned long long)(s1.mismatched - s0.mismatched),
                  (unsigned long long)(s1.unknown - s0.unknown));
    }
    assert_state(h, b, TASK_DISPATCHED);
    assert_task(h, a, TASK_CANCELLED, TASK_R_TERMINATED);
    assert_int_equal(eng_task_terminate(h->e, a, &err), -EINVAL);
    assert_int_equal(fins_of(h, a, NULL), 1);

    struct pkt pb;
    get_pkt(h, msisdn_of(1), &cur, &pb);
    pkt_complete(h, &pb);
    assert_task(h, b, TASK_DONE, TASK_R_NONE);
    soft_check(h);
}

static void test_cancel(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t a = submit_scp80(h, 1, 0, 0);
    int64_t b = submit_scp80(h, 1, 0, 0);
    turn(h, 8);
    assert_state(h, a, TASK_DISPATCHED);
    struct ota_err err;
    assert_int_equal(eng_task_cancel(h->e, b, &err), 0);
    turn(h, 3);
    assert_task(h, b, TASK_CANCELLED, TASK_R_CANCELLED);
    assert_final_hook(h, b, TASK_CANCELLED, TASK_R_CANCELLED);
    assert_int_equal(eng_task_cancel(h->e, a, &err), -EBUSY);
    assert_int_equal(eng_task_cancel(h->e, b, &err), -EALREADY);
    assert_int_equal(eng_task_cancel(h->e, b + 1000, &err), -ENOENT);
    assert_state(h, a, TASK_DISPATCHED);
    size_t cur = 0;
    struct pkt pa;
    get_pkt(h, msisdn_of(1), &cur, &pa);
    pkt_complete(h, &pa);
    assert_task(h, a, TASK_DONE, TASK_R_NONE);
    assert_int_equal(eng_task_cancel(h->e, a, &err), -EALREADY);
    /* the cancelled task never goes */
    turn(h, 5);
    assert_int_equal(h->n_sent, 1);
    struct eng_stats s = stats(h);
    assert_int_equal(s.cancelled, 1);
    assert_int_equal(s.done, 1);
}

static void test_se_tasks_order(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 2);
    int64_t a = submit_scp80(h, 1, 0, 0);
    turn(h, 8);
    int64_t b = submit_scp80(h, 1, 0, 0);
    int64_t c = submit_scp80(h, 1, 2, 0);
    int64_t d = submit_scp80(h, 1, 0, 0);
    turn(h, 8);
    int64_t active = 0, q[8];
    size_t nq = 0;
    struct ota_err err;
    assert_int_equal(eng_se_tasks(h->e, seid_of(1), &active, q, 8, &nq, &err), 0);
    assert_int_equal(active, a);
    assert_int_equal(nq, 3);
    /* priority first, then age */
    assert_int_equal(q[0], c);
    assert_int_equal(q[1], b);
    assert_int_equal(q[2], d);
    assert_int_equal(eng_se_tasks(h->e, seid_of(2), &active, q, 8, &nq, &err), 0);
    assert_int_equal(active, 0);
    assert_int_equal(nq, 0);
}

static void test_no_keys_and_unsupported(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    struct ota_err err;
    assert_int_equal(eng_se_register(h->e, NOKEYS_SEID, NOKEYS_MSISDN, "", &err), 0);
    /* registering again with the same MSISDN looks it up; another MSISDN is refused */
    assert_int_equal(eng_se_register(h->e, NOKEYS_SEID, NOKEYS_MSISDN, "", &err), 0);
    assert_int_equal(eng_se_register(h->e, NOKEYS_SEID, "8613000000000", "", &err), -EEXIST);
    flush(h);
    struct eng_task_spec sp = scp80_spec(NOKEYS_SEID, NULL);
    int64_t a = submit(h, &sp);
    /* a platform operation without a build_script hook */
    struct eng_task_spec sl = scp80_spec(seid_of(1), "{\"aid\":\"A000000151000000\"}");
    sl.op = TASK_OP_APP_LOCK;
    int64_t b = submit(h, &sl);
    turn(h, 10);
    assert_task(h, a, TASK_FAILED, TASK_R_NO_KEYS);
    assert_task(h, b, TASK_FAILED, TASK_R_UNSUPPORTED);
    assert_final_hook(h, a, TASK_FAILED, TASK_R_NO_KEYS);
    assert_final_hook(h, b, TASK_FAILED, TASK_R_UNSUPPORTED);
    assert_int_equal(h->n_sent, 0);
}

static void test_concatenated_packet(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    char params[1024];
    char hex[601];
    for (int i = 0; i < 300; i++) {
        snprintf(hex + 2 * i, 3, "%02X", (unsigned)(i & 0xFF));
    }
    snprintf(params, sizeof(params), "{\"tar\":\"%s\",\"script\":\"%s\"}", TAR_HEX, hex);
    struct eng_task_spec sp = scp80_spec(seid_of(1), params);
    int64_t id = submit(h, &sp);
    turn(h, 8);
    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    assert_true(p.n >= 3);
    assert_int_equal(h->n_sent, p.n);
    uint8_t script[300];
    for (int i = 0; i < 300; i++) {
        script[i] = (uint8_t)i;
    }
    assert_true(data_has(&p, script, sizeof(script)));
    assert_int_equal(stats(h).parts_sent, p.n);
    pkt_result(h, &p, BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_state(h, id, TASK_SUBMITTED);
    /* delivered only once every part is */
    assert_int_equal(net_dlr(h, p.idx[0], BEARER_DLR_DELIVERED), BEARER_ACK_LATER);
    turn(h, 3);
    assert_state(h, id, TASK_SUBMITTED);
    for (size_t k = 1; k < p.n; k++) {
        (void)net_dlr(h, p.idx[k], BEARER_DLR_DELIVERED);
    }
    turn(h, 3);
    assert_state(h, id, TASK_DELIVERED);
    (void)pkt_por(h, &p, NULL);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
}

/* ---- tests: argument checks ------------------------------------------------------------- */

static void test_bad_submits(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    char too_long[2 * 1025 + 64];
    char longest[2 * 1024 + 64];
    {
        char hex[2 * 1025 + 1];
        for (int i = 0; i < 1025; i++) {
            snprintf(hex + 2 * i, 3, "%02X", 0xA5);
        }
        snprintf(too_long, sizeof(too_long), "{\"tar\":\"%s\",\"script\":\"%s\"}", TAR_HEX, hex);
        hex[2 * 1024] = '\0';
        snprintf(longest, sizeof(longest), "{\"tar\":\"%s\",\"script\":\"%s\"}", TAR_HEX, hex);
    }
    const int64_t now = now_ms(h);
    struct {
        const char *what;
        const char *seid;
        enum task_op op;
        enum task_channel ch;
        const char *params;
        uint8_t prio;
        int64_t nb, dl;
        int rc;
    } bad[] = {
        {"unknown SE", "SE9999", TASK_OP_SCP80, TASK_CH_SCP80, NULL, 0, 0, 0, -ENOENT},
        {"NULL SE", NULL, TASK_OP_SCP80, TASK_CH_SCP80, NULL, 0, 0, 0, -EINVAL},
        {"bad JSON", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80, "{\"tar\":", 0, 0, 0, -EINVAL},
        {"JSON not an object", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80, "[1,2]", 0, 0, 0, -EINVAL},
        {"no params", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80, "", 0, 0, 0, -EINVAL},
        {"script not hex", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80,
         "{\"tar\":\"B00010\",\"script\":\"zz\"}", 0, 0, 0, -EINVAL},
        {"script odd length", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80,
         "{\"tar\":\"B00010\",\"script\":\"80CA9F7F0\"}", 0, 0, 0, -EINVAL},
        {"script empty", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80,
         "{\"tar\":\"B00010\",\"script\":\"\"}", 0, 0, 0, -EINVAL},
        {"script not a string", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80,
         "{\"tar\":\"B00010\",\"script\":42}", 0, 0, 0, -EINVAL},
        {"script too long", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80, too_long, 0, 0, 0, -EINVAL},
        {"no script", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80, "{\"tar\":\"B00010\"}", 0, 0, 0,
         -EINVAL},
        {"no tar", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80, "{\"script\":\"80CA9F7F00\"}", 0, 0, 0,
         -EINVAL},
        {"short tar", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80,
         "{\"tar\":\"B000\",\"script\":\"80CA9F7F00\"}", 0, 0, 0, -EINVAL},
        {"tar not hex", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80,
         "{\"tar\":\"B0001G\",\"script\":\"80CA9F7F00\"}", 0, 0, 0, -EINVAL},
        {"push op on the SCP80 channel", "SE0001", TASK_OP_PUSH, TASK_CH_SCP80, "{}", 0, 0, 0,
         -EINVAL},
        {"SCP80 op on the push channel", "SE0001", TASK_OP_SCP80, TASK_CH_PUSH, NULL, 0, 0, 0,
         -EINVAL},
        {"unknown op", "SE0001", (enum task_op)TASK_OP__COUNT, TASK_CH_SCP80, NULL, 0, 0, 0,
         -EINVAL},
        {"unknown channel", "SE0001", TASK_OP_SCP80, (enum task_channel)TASK_CH__COUNT, NULL, 0, 0,
         0, -EINVAL},
        {"prio 4", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80, NULL, 4, 0, 0, -EINVAL},
        {"deadline before not_before", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80, NULL, 0, now + 60000,
         now + 30000, -EINVAL},
        {"deadline equal to not_before", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80, NULL, 0,
         now + 60000, now + 60000, -EINVAL},
        {"deadline in the past", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80, NULL, 0, 0, now - 60000,
         -EINVAL},
        {"not_before 400 days ahead", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80, NULL, 0,
         now + 400LL * 86400 * 1000, 0, -EINVAL},
        {"unknown params key", "SE0001", TASK_OP_SCP80, TASK_CH_SCP80,
         "{\"tar\":\"B00010\",\"script\":\"80CA9F7F00\",\"x\":1}", 0, 0, 0, -EINVAL},
    };
    struct eng_stats s0 = stats(h);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct eng_task_spec sp = scp80_spec(bad[i].seid, bad[i].params);
        sp.seid = bad[i].seid;
        sp.op = bad[i].op;
        sp.channel = bad[i].ch;
        if (bad[i].params && bad[i].params[0] == '\0') {
            sp.params = NULL;
        }
        sp.prio = bad[i].prio;
        sp.not_before_ms = bad[i].nb;
        sp.deadline_ms = bad[i].dl;
        struct ota_err err;
        int64_t id = -77;
        memset(&err, 0, sizeof(err));
        int rc = eng_submit(h->e, &sp, on_accept, h, &id, &err);
        if (rc != bad[i].rc) {
            fail_msg("%s: expected %d, got %d (%s)", bad[i].what, bad[i].rc, rc, err.msg);
        }
        if (err.code == OTA_OK || err.msg[0] == '\0') {
            fail_msg("%s: rc %d without an error record", bad[i].what, rc);
        }
    }
    turn(h, 6);
    struct eng_stats s1 = stats(h);
    assert_int_equal(s1.accepted, s0.accepted);
    assert_int_equal(s1.queued, s0.queued);
    assert_int_equal(h->n_acc, 0);
    assert_int_equal(h->n_sent, 0);

    /* the boundary: 1024 octets is allowed */
    struct eng_task_spec ok = scp80_spec(seid_of(1), longest);
    int64_t good = submit(h, &ok);
    turn(h, 6);
    int arc = -1;
    assert_int_equal(accepts_of(h, good, &arc), 1);
    assert_int_equal(arc, 0);
    assert_int_equal(stats(h).accepted, s0.accepted + 1);

    /* nothing of the bad ones reached the store */
    h_close(h);
    struct store *st = NULL;
    struct store_opts so = {.path = h->db};
    struct ota_err err;
    assert_int_equal(store_open(&so, &st, &err), 0);
    uint64_t counts[TASK_STATE__COUNT];
    assert_int_equal(store_task_counts(st, 0, counts, &err), 0);
    uint64_t total = 0;
    for (int i = 0; i < TASK_STATE__COUNT; i++) {
        total += counts[i];
    }
    assert_int_equal(total, 1);
    int64_t max_id = 0;
    assert_int_equal(store_task_max_id(st, &max_id, &err), 0);
    assert_int_equal(max_id, good);
    store_close(st);
}

/* ---- tests: restart ---------------------------------------------------------------------- */

static void test_restart_rebuilds(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 5);
    int64_t t[7];
    for (unsigned i = 1; i <= 5; i++) {
        t[i] = submit_scp80(h, i, 0, 0);
    }
    t[6] = submit_scp80(h, 1, 0, 0); /* queued behind task 1 (one link per SE) */
    /* the bearer takes 3 parts, then pushes back */
    h->accept_left = 3;
    turn(h, 10);
    assert_int_equal(h->n_sent, 3);
    struct pkt p[6];
    for (unsigned i = 1; i <= 3; i++) {
        size_t cur = 0;
        get_pkt(h, msisdn_of(i), &cur, &p[i]);
    }
    pkt_result(h, &p[1], BEARER_SUBMIT_OK);
    pkt_result(h, &p[2], BEARER_SUBMIT_OK);
    turn(h, 4);
    assert_state(h, t[1], TASK_SUBMITTED);
    assert_state(h, t[2], TASK_SUBMITTED);
    assert_state(h, t[3], TASK_DISPATCHED);
    for (unsigned i = 4; i <= 5; i++) {
        enum task_state s = state_of(h, t[i]);
        assert_true(s == TASK_QUEUED || s == TASK_DISPATCHED);
    }
    assert_state(h, t[6], TASK_QUEUED);
    /* stop without finishing anything, start again on the same store */
    h_close(h);
    h->accept_left = -1;
    size_t mark = h->n_sent;
    h_open(h);
    turn(h, 10);
    /* a re-sent attempt may wait for its back-off */
    size_t want = mark + 3;
    assert_true(wait_until(h, pred_sent, &want, 5.0));
    turn(h, 4);
    struct eng_stats s = stats(h);
    assert_int_equal(s.active, 5);
    assert_int_equal(s.queued, 1);
    assert_state(h, t[6], TASK_QUEUED);
    /* submitted tasks are not sent again; the dispatched one is, with a higher counter */
    assert_int_equal(sends_to(h, msisdn_of(1), mark), 0);
    assert_int_equal(sends_to(h, msisdn_of(2), mark), 0);
    assert_int_equal(sends_to(h, msisdn_of(3), mark), 1);
    assert_int_equal(sends_to(h, msisdn_of(4), mark), 1);
    assert_int_equal(sends_to(h, msisdn_of(5), mark), 1);
    struct pkt n3;
    size_t cur3 = mark;
    get_pkt(h, msisdn_of(3), &cur3, &n3);
    if (n3.cmd.cntr <= p[3].cmd.cntr) {
        fail_msg("re-sent after restart with counter %llu, first attempt had %llu",
                 (unsigned long long)n3.cmd.cntr, (unsigned long long)p[3].cmd.cntr);
    }

    /* reports of the old attempt of task 3 are late */
    struct eng_stats s0 = stats(h);
    (void)pkt_por(h, &p[3], NULL);
    turn(h, 3);
    struct eng_stats s1 = stats(h);
    if (s1.late != s0.late + 1) {
        soft_fail(h,
                  "PoR of the attempt before the restart: expected late +1, got late +%llu "
                  "mismatched +%llu unknown +%llu",
                  (unsigned long long)(s1.late - s0.late),
                  (unsigned long long)(s1.mismatched - s0.mismatched),
                  (unsigned long long)(s1.unknown - s0.unknown));
    }
    assert_int_equal(state_of(h, t[3]), TASK_DISPATCHED);

    /* the submitted ones complete from their reports alone: correlation rebuilt */
    for (unsigned i = 1; i <= 2; i++) {
        assert_int_equal(pkt_dlr(h, &p[i], BEARER_DLR_DELIVERED), BEARER_ACK_LATER);
        turn(h, 3);
        assert_state(h, t[i], TASK_DELIVERED);
        assert_int_equal(pkt_por(h, &p[i], NULL), BEARER_ACK_LATER);
        turn(h, 4);
        assert_task(h, t[i], TASK_DONE, TASK_R_NONE);
    }
    /* tasks 3, 4, 5 re-sent, and task 6 once task 1 freed SE 1 */
    size_t cur = mark;
    assert_int_equal(drain(h, &cur), 4);
    assert_int_equal(sends_to(h, msisdn_of(1), mark), 1);
    for (unsigned i = 1; i <= 6; i++) {
        assert_task(h, t[i], TASK_DONE, TASK_R_NONE);
    }
    s = stats(h);
    assert_int_equal(s.done, 6);
    assert_int_equal(s.active, 0);
    soft_check(h);
    check_history(h, 24);
}

/* ---- tests: jobs -------------------------------------------------------------------------- */

static void progress(struct h *h, int64_t job, struct eng_job_progress *pr)
{
    struct ota_err err;
    int rc = eng_job_progress(h->e, job, pr, &err);
    if (rc != 0) {
        fail_msg("eng_job_progress(%lld): %d (%s)", (long long)job, rc, err.msg);
    }
}

static uint64_t created(const struct eng_job_progress *pr)
{
    uint64_t n = 0;
    for (int i = 0; i < TASK_STATE__COUNT; i++) {
        n += pr->counts[i];
    }
    return n;
}

static int64_t submit_sequence(struct h *h, uint8_t step1_attempts, int64_t ids[3])
{
    static const char *params[3] = {
        "{\"tar\":\"" TAR_HEX "\",\"script\":\"80CA000100\"}",
        "{\"tar\":\"" TAR_HEX "\",\"script\":\"80CA000200\"}",
        "{\"tar\":\"" TAR_HEX "\",\"script\":\"80CA000300\"}",
    };
    struct eng_task_spec steps[3];
    for (int i = 0; i < 3; i++) {
        steps[i] = scp80_spec(seid_of(1), params[i]);
    }
    steps[1].max_attempts = step1_attempts;
    struct eng_job_spec js;
    memset(&js, 0, sizeof(js));
    js.kind = ENG_JOB_SEQUENCE;
    js.steps = steps;
    js.n_steps = 3;
    int64_t job = 0;
    struct ota_err err;
    int rc = eng_job_submit(h->e, &js, on_accept, h, &job, &err);
    if (rc != 0) {
        fail_msg("eng_job_submit(sequence): %d (%s)", rc, err.msg);
    }
    turn(h, 8);
    int arc = -1;
    assert_int_equal(accepts_of(h, job, &arc), 1);
    assert_int_equal(arc, 0);
    /* step 0 active, steps 1 and 2 queued behind it, in order */
    int64_t active = 0, q[4];
    size_t nq = 0;
    assert_int_equal(eng_se_tasks(h->e, seid_of(1), &active, q, 4, &nq, &err), 0);
    assert_int_equal(nq, 2);
    ids[0] = active;
    ids[1] = q[0];
    ids[2] = q[1];
    for (int i = 0; i < 3; i++) {
        struct eng_task_view v;
        assert_int_equal(eng_task_get(h->e, ids[i], &v, &err), 0);
        assert_int_equal(v.job, job);
        assert_int_equal(v.step, i);
    }
    return job;
}

static bool pkt_is_step(const struct pkt *p, int step)
{
    const uint8_t apdu[4] = {0x80, 0xCA, 0x00, (uint8_t)(step + 1)};
    return data_has(p, apdu, sizeof(apdu));
}

static void test_sequence_job(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t ids[3];
    int64_t job = submit_sequence(h, 0, ids);
    size_t cur = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(h->n_sent, (size_t)i + 1);
        struct pkt p;
        get_pkt(h, msisdn_of(1), &cur, &p);
        if (!pkt_is_step(&p, i)) {
            fail_msg("send %d is not step %d", i, i);
        }
        assert_state(h, ids[i], TASK_DISPATCHED);
        pkt_complete(h, &p);
        turn(h, 4);
        assert_task(h, ids[i], TASK_DONE, TASK_R_NONE);
    }
    assert_int_equal(h->n_sent, 3);
    struct eng_job_progress pr;
    progress(h, job, &pr);
    assert_int_equal(pr.total, 3);
    assert_true(pr.expanded);
    assert_int_equal(pr.counts[TASK_DONE], 3);
    assert_int_equal(pr.failed_step_task, 0);
    assert_int_equal(pr.state, STORE_JOB_DONE);
}

static void test_sequence_step_fails(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t ids[3];
    int64_t job = submit_sequence(h, 1, ids);
    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    pkt_complete(h, &p);
    turn(h, 4);
    assert_task(h, ids[0], TASK_DONE, TASK_R_NONE);
    get_pkt(h, msisdn_of(1), &cur, &p);
    assert_true(pkt_is_step(&p, 1));
    pkt_result(h, &p, BEARER_SUBMIT_FINAL);
    turn(h, 8);
    assert_task(h, ids[1], TASK_FAILED, TASK_R_BEARER_REJECTED);
    assert_task(h, ids[2], TASK_CANCELLED, TASK_R_STEP_FAILED);
    assert_final_hook(h, ids[2], TASK_CANCELLED, TASK_R_STEP_FAILED);
    run_for(h, 0.3);
    assert_int_equal(h->n_sent, 2);
    struct eng_job_progress pr;
    progress(h, job, &pr);
    assert_int_equal(pr.failed_step_task, ids[1]);
    assert_int_equal(pr.counts[TASK_DONE], 1);
    assert_int_equal(pr.counts[TASK_FAILED], 1);
    assert_int_equal(pr.counts[TASK_CANCELLED], 1);
    assert_int_equal(pr.state, STORE_JOB_DONE);
}

static int64_t submit_list(struct h *h, unsigned from, unsigned n)
{
    static char names[64][24];
    const char *seids[64];
    assert_true(n <= 64);
    for (unsigned i = 0; i < n; i++) {
        se_name(from + i, names[i], sizeof(names[i]), NULL, 0);
        seids[i] = names[i];
    }
    struct eng_job_spec js;
    memset(&js, 0, sizeof(js));
    js.kind = ENG_JOB_LIST;
    js.tmpl = scp80_spec(NULL, NULL);
    js.seids = seids;
    js.n_seids = n;
    int64_t job = 0;
    struct ota_err err;
    int rc = eng_job_submit(h->e, &js, on_accept, h, &job, &err);
    if (rc != 0) {
        fail_msg("eng_job_submit(list): %d (%s)", rc, err.msg);
    }
    assert_true(job > 0);
    return job;
}

static void test_list_job_lazy(void **state)
{
    struct h *h = *state;
    h->conf.job_chunk = 5;
    /* a small dispatch backlog, so that a refusing bearer leaves work queued */
    h->conf.dispatch_max_turn = 2;
    h_open(h);
    ses_add(h, 20);
    h->refuse = true;
    int64_t job = submit_list(h, 1, 20);
    turn(h, 10);
    int arc = -1;
    assert_int_equal(accepts_of(h, job, &arc), 1);
    assert_int_equal(arc, 0);
    struct eng_job_progress pr;
    progress(h, job, &pr);
    assert_int_equal(pr.state, STORE_JOB_RUNNING);
    assert_false(pr.expanded);
    uint64_t c = created(&pr);
    if (c == 0 || c > 14) {
        fail_msg("job_chunk 5, bearer refusing: %llu of 20 tasks created", (unsigned long long)c);
    }
    h->refuse = false;
    eng_on_ready(h->e);
    size_t cur = 0;
    for (int round = 0; round < 100; round++) {
        turn(h, 4);
        (void)drain(h, &cur);
        progress(h, job, &pr);
        if (pr.counts[TASK_DONE] == 20) {
            break;
        }
    }
    turn(h, 4);
    progress(h, job, &pr);
    assert_int_equal(pr.counts[TASK_DONE], 20);
    assert_int_equal(created(&pr), 20);
    assert_true(pr.expanded);
    assert_int_equal(pr.total, 20);
    assert_int_equal(pr.state, STORE_JOB_DONE);
    assert_int_equal(h->n_sent, 20);
    /* every SE once */
    for (unsigned i = 1; i <= 20; i++) {
        assert_int_equal(sends_to(h, msisdn_of(i), 0), 1);
    }
    for (size_t i = 0; i < h->n_fins; i++) {
        struct eng_task_view v;
        struct ota_err err;
        assert_int_equal(eng_task_get(h->e, h->fins[i].id, &v, &err), 0);
        assert_int_equal(v.job, job);
    }
    check_history(h, 80);
}

static void test_job_pause_resume_cancel(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 6);
    struct ota_err err;
    /* standalone tasks keep SEs 1..3 busy, so the job's tasks are created and wait queued */
    for (unsigned i = 1; i <= 3; i++) {
        (void)submit_scp80(h, i, 0, 0);
    }
    turn(h, 8);
    assert_int_equal(h->n_sent, 3);
    int64_t job = submit_list(h, 1, 3);
    turn(h, 8);
    struct eng_job_progress pr;
    progress(h, job, &pr);
    assert_int_equal(pr.counts[TASK_QUEUED], 3);
    assert_int_equal(eng_job_pause(h->e, job, true, &err), 0);
    turn(h, 4);
    progress(h, job, &pr);
    assert_int_equal(pr.state, STORE_JOB_PAUSED);
    /* the SEs become free: a paused job's queued tasks still do not go */
    size_t cur = 0;
    assert_int_equal(drain(h, &cur), 3);
    turn(h, 10);
    run_for(h, 0.2);
    assert_int_equal(h->n_sent, 3);
    progress(h, job, &pr);
    assert_int_equal(pr.counts[TASK_QUEUED], 3);
    assert_int_equal(eng_job_pause(h->e, job, false, &err), 0);
    turn(h, 10);
    assert_int_equal(h->n_sent, 6);
    progress(h, job, &pr);
    assert_int_equal(pr.state, STORE_JOB_RUNNING);

    /* a second job queued behind the first, then cancelled: none of its tasks ever goes */
    int64_t j2 = submit_list(h, 1, 3);
    turn(h, 8);
    progress(h, j2, &pr);
    assert_int_equal(pr.counts[TASK_QUEUED], 3);
    size_t fins0 = h->n_fins;
    assert_int_equal(eng_job_cancel(h->e, j2, &err), 0);
    turn(h, 6);
    progress(h, j2, &pr);
    assert_int_equal(pr.state, STORE_JOB_CANCELLED);
    assert_int_equal(pr.counts[TASK_CANCELLED], 3);
    for (int s = 0; s < TASK_STATE__COUNT; s++) {
        if (s != TASK_CANCELLED && pr.counts[s] != 0) {
            fail_msg("cancelled job still has %llu tasks %s", (unsigned long long)pr.counts[s],
                     task_state_name((enum task_state)s));
        }
    }
    assert_int_equal(h->n_fins - fins0, 3);
    for (size_t i = fins0; i < h->n_fins; i++) {
        assert_int_equal(h->fins[i].st, TASK_CANCELLED);
        assert_int_equal(h->fins[i].r, TASK_R_JOB_CANCELLED);
    }
    /* a job not yet expanded, paused at once: nothing goes; cancelled: nothing is left */
    int64_t j3 = submit_list(h, 4, 3);
    assert_int_equal(eng_job_pause(h->e, j3, true, &err), 0);
    turn(h, 8);
    progress(h, j3, &pr);
    assert_int_equal(pr.state, STORE_JOB_PAUSED);
    assert_int_equal(eng_job_cancel(h->e, j3, &err), 0);
    turn(h, 6);
    progress(h, j3, &pr);
    assert_int_equal(pr.state, STORE_JOB_CANCELLED);
    assert_int_equal(pr.counts[TASK_QUEUED], 0);

    /* the first job completes; nothing of the cancelled ones follows */
    assert_int_equal(drain(h, &cur), 3);
    turn(h, 10);
    progress(h, job, &pr);
    assert_int_equal(pr.counts[TASK_DONE], 3);
    assert_int_equal(pr.state, STORE_JOB_DONE);
    assert_int_equal(h->n_sent, 6);
}

static void test_filter_job(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 9);
    struct eng_job_spec js;
    memset(&js, 0, sizeof(js));
    js.kind = ENG_JOB_FILTER;
    js.tmpl = scp80_spec(NULL, NULL);
    js.seid_lo = seid_of(2);
    js.seid_hi = seid_of(7);
    js.batch = "odd"; /* SE0003, SE0005, SE0007 */
    int64_t job = 0;
    struct ota_err err;
    assert_int_equal(eng_job_submit(h->e, &js, on_accept, h, &job, &err), 0);
    turn(h, 10);
    assert_int_equal(h->n_sent, 3);
    for (unsigned i = 1; i <= 9; i++) {
        bool in = i >= 2 && i <= 7 && i % 2 == 1;
        assert_int_equal(sends_to(h, msisdn_of(i), 0), in ? 1 : 0);
    }
    size_t cur = 0;
    assert_int_equal(drain(h, &cur), 3);
    turn(h, 4);
    struct eng_job_progress pr;
    progress(h, job, &pr);
    assert_true(pr.expanded);
    assert_int_equal(pr.total, 3);
    assert_int_equal(pr.counts[TASK_DONE], 3);
    assert_int_equal(pr.state, STORE_JOB_DONE);
}

static void test_job_rate_cap(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 6);
    int64_t job = submit_list(h, 1, 6);
    struct ota_err err;
    /* 2 per second, burst of one second's worth: 6 tasks need about 2 s */
    assert_int_equal(eng_job_rate(h->e, job, 2.0, &err), 0);
    double t0 = ev_time();
    turn(h, 6);
    assert_true(h->n_sent <= 3);
    size_t want = 6;
    assert_true(wait_until(h, pred_sent, &want, 6.0));
    double dt = ev_time() - t0;
    if (dt < 1.4) {
        fail_msg("6 tasks at 2/s (burst 2) went out in %.2f s", dt);
    }
    assert_int_equal(eng_job_rate(h->e, job, -1.0, &err), -EINVAL);
}

static void test_bad_jobs(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 3);
    struct ota_err err;
    int64_t job = 0;
    struct eng_job_spec js;
    const char *seids[3] = {"SE0001", "SE0404", "SE0003"};
    memset(&js, 0, sizeof(js));
    js.kind = ENG_JOB_LIST;
    js.tmpl = scp80_spec(NULL, NULL);
    js.seids = seids;
    js.n_seids = 3;
    assert_int_equal(eng_job_submit(h->e, &js, on_accept, h, &job, &err), -ENOENT);
    js.n_seids = 0;
    assert_int_equal(eng_job_submit(h->e, &js, on_accept, h, &job, &err), -EINVAL);
    js.n_seids = 1;
    js.tmpl.prio = 4;
    assert_int_equal(eng_job_submit(h->e, &js, on_accept, h, &job, &err), -EINVAL);
    js.tmpl = scp80_spec(NULL, "{\"tar\":\"B00010\",\"script\":\"zz\"}");
    assert_int_equal(eng_job_submit(h->e, &js, on_accept, h, &job, &err), -EINVAL);
    js.tmpl = scp80_spec(NULL, NULL);
    js.rate_per_s = -1.0;
    assert_int_equal(eng_job_submit(h->e, &js, on_accept, h, &job, &err), -EINVAL);
    memset(&js, 0, sizeof(js));
    js.kind = ENG_JOB_SEQUENCE;
    js.n_steps = 0;
    assert_int_equal(eng_job_submit(h->e, &js, on_accept, h, &job, &err), -EINVAL);
    struct eng_task_spec steps[2] = {scp80_spec(seid_of(1), NULL),
                                     scp80_spec(seid_of(1), "{\"tar\":\"B0\"}")};
    js.steps = steps;
    js.n_steps = 2;
    assert_int_equal(eng_job_submit(h->e, &js, on_accept, h, &job, &err), -EINVAL);
    js.kind = (enum eng_job_kind)7;
    assert_int_equal(eng_job_submit(h->e, &js, on_accept, h, &job, &err), -EINVAL);
    turn(h, 6);
    assert_int_equal(h->n_acc, 0);
    assert_int_equal(h->n_sent, 0);
    assert_int_equal(stats(h).accepted, 0);
    struct eng_job_progress pr;
    assert_int_equal(eng_job_progress(h->e, 4242, &pr, &err), -ENOENT);
    assert_int_equal(eng_job_pause(h->e, 4242, true, &err), -ENOENT);
    assert_int_equal(eng_job_cancel(h->e, 4242, &err), -ENOENT);
}

static void test_no_dlr_wanted(void **state)
{
    struct h *h = *state;
    h->conf.want_dlr = false;
    h->conf.push_wait_pull = false;
    h_open(h);
    ses_add(h, 1);
    int64_t id = submit_scp80(h, 1, 0, 0);
    turn(h, 8);
    assert_int_equal(h->n_sent, 1);
    assert_false(h->sent[0].m.want_report);
    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    pkt_result(h, &p, BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_state(h, id, TASK_SUBMITTED);
    (void)pkt_por(h, &p, NULL);
    turn(h, 4);
    assert_task(h, id, TASK_DONE, TASK_R_NONE);
    /* a push without DLRs and without waiting for the pull is done once accepted */
    struct eng_task_spec sp = push_spec(seid_of(1));
    int64_t ps = submit(h, &sp);
    turn(h, 8);
    assert_int_equal(h->n_sent, 2);
    net_result(h, 1, BEARER_SUBMIT_OK);
    turn(h, 4);
    assert_task(h, ps, TASK_DONE, TASK_R_NONE);
}

static void test_deadline_while_active(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    struct eng_task_spec sp = scp80_spec(seid_of(1), NULL);
    sp.deadline_ms = now_ms(h) + 800;
    int64_t id = submit(h, &sp);
    turn(h, 8);
    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    pkt_result(h, &p, BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_state(h, id, TASK_SUBMITTED);
    assert_true(wait_until(h, pred_final, &id, 4.0));
    turn(h, 3);
    assert_task(h, id, TASK_EXPIRED, TASK_R_DEADLINE);
    assert_final_hook(h, id, TASK_EXPIRED, TASK_R_DEADLINE);
    /* its reports are late now */
    struct eng_stats s0 = stats(h);
    (void)pkt_dlr(h, &p, BEARER_DLR_DELIVERED);
    turn(h, 3);
    assert_int_equal(stats(h).late, s0.late + 1);
    assert_task(h, id, TASK_EXPIRED, TASK_R_DEADLINE);
}

static void test_shared_msisdn(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    struct ota_err err;
    /* spec 5.5.2: one MSISDN may hold several SEs; a PoR finds its task by keys, TAR, counter */
    assert_int_equal(eng_se_register(h->e, TWIN_SEID, msisdn_of(1), "", &err), 0);
    flush(h);
    int64_t a = submit_scp80(h, 1, 0, 0);
    struct eng_task_spec sp = scp80_spec(TWIN_SEID, NULL);
    int64_t b = submit(h, &sp);
    turn(h, 8);
    /* two SEs, two links: both go, to the same handset */
    assert_int_equal(sends_to(h, msisdn_of(1), 0), 2);
    size_t cur = 0;
    struct pkt pk[2];
    get_pkt(h, msisdn_of(1), &cur, &pk[0]);
    get_pkt(h, msisdn_of(1), &cur, &pk[1]);
    assert_true(pk[0].twin != pk[1].twin);
    struct pkt *pa = pk[0].twin ? &pk[1] : &pk[0];
    struct pkt *pb = pk[0].twin ? &pk[0] : &pk[1];
    pkt_result(h, pa, BEARER_SUBMIT_OK);
    pkt_result(h, pb, BEARER_SUBMIT_OK);
    turn(h, 3);
    (void)pkt_dlr(h, pa, BEARER_DLR_DELIVERED);
    (void)pkt_dlr(h, pb, BEARER_DLR_DELIVERED);
    turn(h, 3);
    assert_state(h, a, TASK_DELIVERED);
    assert_state(h, b, TASK_DELIVERED);
    (void)pkt_por(h, pb, NULL);
    turn(h, 4);
    assert_task(h, b, TASK_DONE, TASK_R_NONE);
    assert_state(h, a, TASK_DELIVERED);
    (void)pkt_por(h, pa, NULL);
    turn(h, 4);
    assert_task(h, a, TASK_DONE, TASK_R_NONE);
    struct eng_stats s = stats(h);
    assert_int_equal(s.done, 2);
    assert_int_equal(s.mismatched + s.late + s.unknown + s.duplicate, 0);
}

static void test_terminate_dispatched(void **state)
{
    struct h *h = *state;
    h_open(h);
    ses_add(h, 1);
    int64_t a = submit_scp80(h, 1, 0, 0);
    turn(h, 8);
    assert_state(h, a, TASK_DISPATCHED);
    struct ota_err err;
    assert_int_equal(eng_task_terminate(h->e, a, &err), 0);
    turn(h, 4);
    assert_task(h, a, TASK_CANCELLED, TASK_R_TERMINATED);
    /* the part the bearer still had: its result comes, and is only recorded */
    struct eng_stats s0 = stats(h);
    net_result(h, 0, BEARER_SUBMIT_OK);
    turn(h, 3);
    struct eng_stats s1 = stats(h);
    assert_int_equal(s1.late, s0.late + 1);
    assert_task(h, a, TASK_CANCELLED, TASK_R_TERMINATED);
    assert_int_equal(fins_of(h, a, NULL), 1);
    check_history(h, 2);
}

static void test_restart_wait_ended_while_down(void **state)
{
    struct h *h = *state;
    h->conf.por_timeout_s = 1;
    h_open(h);
    ses_add(h, 1);
    struct pkt p;
    int64_t id = delivered_task(h, 1, 0, &p);
    h_close(h);
    /* the PoR wait ends while the engine is down */
    usleep(1300 * 1000);
    h_open(h);
    assert_true(wait_until(h, pred_final, &id, 1.0));
    turn(h, 3);
    assert_task(h, id, TASK_FAILED, TASK_R_POR_MISSING);
    assert_final_hook(h, id, TASK_FAILED, TASK_R_POR_MISSING);
}

static void test_restart_job_continues(void **state)
{
    struct h *h = *state;
    h->conf.job_chunk = 5;
    h->conf.dispatch_max_turn = 2;
    h_open(h);
    ses_add(h, 20);
    h->refuse = true;
    int64_t job = submit_list(h, 1, 20);
    turn(h, 10);
    struct eng_job_progress pr;
    progress(h, job, &pr);
    assert_false(pr.expanded);
    uint64_t c0 = created(&pr);
    assert_true(c0 > 0 && c0 < 20);
    h_close(h);
    h->refuse = false;
    h_open(h);
    size_t cur = 0;
    for (int round = 0; round < 100; round++) {
        turn(h, 4);
        (void)drain(h, &cur);
        progress(h, job, &pr);
        if (pr.counts[TASK_DONE] == 20) {
            break;
        }
    }
    turn(h, 4);
    progress(h, job, &pr);
    assert_int_equal(pr.counts[TASK_DONE], 20);
    assert_int_equal(created(&pr), 20);
    assert_true(pr.expanded);
    assert_int_equal(pr.state, STORE_JOB_DONE);
    for (unsigned i = 1; i <= 20; i++) {
        assert_int_equal(sends_to(h, msisdn_of(i), 0), 1);
    }
    check_history(h, 80);
}

static bool pred_all_state(struct h *h, const void *arg)
{
    const struct want_state *w = arg;
    for (; w->id; w++) {
        if (state_of(h, w->id) != w->st) {
            return false;
        }
    }
    return true;
}

static void test_commit_coalescing(void **state)
{
    struct h *h = *state;
    h->conf.commit_interval_ms = 500;
    h->conf.commit_max_acks = 4;
    h_open(h);
    ses_add(h, 6); /* eng_flush: commits at once */

    /* a submit right after a commit waits for the spacing: not accepted, not sent */
    double t0 = ev_time();
    int64_t first = submit_scp80(h, 1, 0, 0);
    turn(h, 5);
    if (ev_time() - t0 < 0.4) {
        assert_int_equal(h->n_acc, 0);
        assert_int_equal(h->n_sent, 0);
    }
    size_t want = 1;
    assert_true(wait_until(h, pred_sent, &want, 3.0));
    /* accepted first, then handed over, both after the one commit */
    assert_int_equal(h->sent[0].n_acc, 1);
    assert_int_equal(accepts_of(h, first, NULL), 1);

    struct want_state ws[7];
    ws[0] = (struct want_state){first, TASK_SUBMITTED};
    for (unsigned i = 2; i <= 6; i++) {
        ws[i - 1] = (struct want_state){submit_scp80(h, i, 0, 0), TASK_SUBMITTED};
    }
    ws[6] = (struct want_state){0, TASK_QUEUED};
    want = 6;
    assert_true(wait_until(h, pred_sent, &want, 3.0));
    struct pkt p[7];
    for (unsigned i = 1; i <= 6; i++) {
        size_t cur = 0;
        get_pkt(h, msisdn_of(i), &cur, &p[i]);
        pkt_result(h, &p[i], BEARER_SUBMIT_OK);
    }
    assert_true(wait_until(h, pred_all_state, ws, 3.0));

    /* reports below commit_max_acks wait for the spacing ... */
    flush(h);
    turn(h, 2);
    unsigned rel0 = h->n_release;
    t0 = ev_time();
    for (unsigned i = 1; i <= 3; i++) {
        assert_int_equal(pkt_dlr(h, &p[i], BEARER_DLR_DELIVERED), BEARER_ACK_LATER);
    }
    turn(h, 5);
    bool quick = ev_time() - t0 < 0.4;
    if (quick) {
        assert_int_equal(h->n_release, rel0);
    }
    /* ... the fourth held ack makes the commit go at once */
    h->rel_marked = true;
    uint64_t c4 = commits_of(h);
    assert_int_equal(pkt_dlr(h, &p[4], BEARER_DLR_DELIVERED), BEARER_ACK_LATER);
    turn(h, 3);
    if (quick && ev_time() - t0 < 0.4) {
        assert_true(h->n_release > rel0);
        assert_false(h->rel_marked);
        assert_true(h->rel_first > c4);
    }
    for (unsigned i = 1; i <= 4; i++) {
        struct want_state w = {ws[i - 1].id, TASK_DELIVERED};
        assert_true(wait_until(h, pred_state, &w, 2.0));
    }

    /* eng_flush commits at once; the acks go on the next turn */
    rel0 = h->n_release;
    t0 = ev_time();
    assert_int_equal(pkt_dlr(h, &p[5], BEARER_DLR_DELIVERED), BEARER_ACK_LATER);
    turn(h, 3);
    if (ev_time() - t0 < 0.4) {
        assert_int_equal(h->n_release, rel0);
    }
    flush(h);
    turn(h, 2);
    assert_true(h->n_release > rel0);

    /* and everything completes under the default spacing as well */
    for (unsigned i = 1; i <= 6; i++) {
        if (i == 6) {
            (void)pkt_dlr(h, &p[i], BEARER_DLR_DELIVERED);
        }
        (void)pkt_por(h, &p[i], NULL);
    }
    for (unsigned i = 1; i <= 6; i++) {
        struct want_state w = {ws[i - 1].id, TASK_DONE};
        assert_true(wait_until(h, pred_state, &w, 3.0));
    }
    run_for(h, 0.6);
    assert_int_equal(h->n_fins, 6);
}

static void test_open_bad_conf(void **state)
{
    struct h *h = *state;
    struct eng_hooks hk;
    memset(&hk, 0, sizeof(hk));
    hk.log = hook_log;
    size_t n = 0;
    struct eng_conf base = h->conf;
    for (int k = 0; k < 4; k++) {
        struct eng_conf c = base;
        const char *what = "";
        switch (k) {
        case 0:
            c.commit_interval_ms = 1001;
            what = "commit_interval_ms 1001";
            break;
        case 1:
            c.job_chunk = 0;
            what = "job_chunk 0";
            break;
        case 2:
            c.dispatch_max_turn = 0;
            what = "dispatch_max_turn 0";
            break;
        default:
            c.max_attempts = 0;
            what = "max_attempts 0";
            break;
        }
        struct eng *e = NULL;
        struct ota_err err;
        memset(&err, 0, sizeof(err));
        int rc = eng_open(h->loop, &c, &hk, &e, &err);
        if (rc != -EINVAL) {
            if (rc == 0) {
                eng_close(e);
            }
            fail_msg("eng_open with %s: expected -EINVAL, got %d (%s)", what, rc, err.msg);
        }
        n++;
    }
    assert_int_equal(n, 4);
    /* a file that is not an otagw store */
    FILE *f = fopen(h->db, "w");
    assert_non_null(f);
    fputs("this is not a database, just text that is long enough to be read as a header\n", f);
    fclose(f);
    struct eng *e = NULL;
    struct ota_err err;
    int rc = eng_open(h->loop, &h->conf, &hk, &e, &err);
    if (rc >= 0) {
        eng_close(e);
        fail_msg("eng_open on a text file succeeded");
    }
    /* a directory that does not exist */
    char path[160];
    snprintf(path, sizeof(path), "%s/no/such/dir/otagw.db", h->dir);
    struct eng_conf c = h->conf;
    c.db_path = path;
    rc = eng_open(h->loop, &c, &hk, &e, &err);
    if (rc >= 0) {
        eng_close(e);
        fail_msg("eng_open in a missing directory succeeded");
    }
}

/* ---- tests: a failed commit ---------------------------------------------------------------- */

/*
 * RLIMIT_FSIZE makes every write that would grow a file past the limit fail
 * with EFBIG (SIGXFSZ ignored), root included: the next commit of a batch
 * bigger than the WAL written so far cannot complete. Nothing else writes
 * files while the limit is in force.
 */
static void test_commit_failure_stops(void **state)
{
    struct h *h = *state;
    h->conf.commit_max_staged = 1000000;
    h_open(h);
    ses_add(h, 1);
    int64_t a = submit_scp80(h, 1, 0, 0);
    turn(h, 8);
    size_t cur = 0;
    struct pkt p;
    get_pkt(h, msisdn_of(1), &cur, &p);
    pkt_result(h, &p, BEARER_SUBMIT_OK);
    turn(h, 3);
    assert_state(h, a, TASK_SUBMITTED);

    char *params = malloc(2 * 1000 + 64);
    assert_non_null(params);
    int off = snprintf(params, 64, "{\"tar\":\"%s\",\"script\":\"", TAR_HEX);
    for (int i = 0; i < 1000; i++) {
        snprintf(params + off + 2 * i, 3, "%02X", (unsigned)(i * 7 & 0xFF));
    }
    snprintf(params + off + 2000, 8, "\"}");

    unsigned rel0 = h->n_release, dis0 = h->n_discard;
    size_t acc0 = h->n_acc;
    assert_int_equal(pkt_dlr(h, &p, BEARER_DLR_DELIVERED), BEARER_ACK_LATER);
    enum { N_BIG = 400 };
    int64_t first_big = 0;
    for (int i = 0; i < N_BIG; i++) {
        struct eng_task_spec sp = scp80_spec(seid_of(1), params);
        int64_t id = submit(h, &sp);
        if (i == 0) {
            first_big = id;
        }
    }
    free(params);

    struct rlimit lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &h->rlim_old), 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = h->rlim_old;
    lim.rlim_cur = 64 * 1024;
    h->rlim_set = true;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    turn(h, 3);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &h->rlim_old), 0);
    h->rlim_set = false;
    signal(SIGXFSZ, old_sig);

    struct eng_stats s = stats(h);
    assert_int_equal(s.run, ENG_STOPPED_ERROR);
    /* every submitter of the batch hears it failed; nothing was acknowledged */
    assert_int_equal(h->n_acc - acc0, N_BIG);
    for (size_t i = acc0; i < h->n_acc; i++) {
        assert_true(h->acc[i].rc < 0);
    }
    assert_int_equal(h->n_release, rel0);
    assert_true(h->n_discard > dis0);
    struct ota_err err;
    struct eng_task_spec sp = scp80_spec(seid_of(1), NULL);
    int64_t id = 0;
    assert_int_equal(eng_submit(h->e, &sp, NULL, NULL, &id, &err), -ESHUTDOWN);

    /* a restart finds the store as of the last good commit */
    h_close(h);
    h_open(h);
    turn(h, 4);
    assert_state(h, a, TASK_SUBMITTED);
    struct eng_task_view v;
    assert_int_equal(eng_task_get(h->e, first_big, &v, &err), -ENOENT);
    assert_int_equal(stats(h).queued, 0);
    /* the network redelivers the unacknowledged DLR */
    assert_int_equal(pkt_dlr(h, &p, BEARER_DLR_DELIVERED), BEARER_ACK_LATER);
    turn(h, 3);
    assert_state(h, a, TASK_DELIVERED);
    (void)pkt_por(h, &p, NULL);
    turn(h, 4);
    assert_task(h, a, TASK_DONE, TASK_R_NONE);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_scp80_happy),
        T(test_por_before_dlr),
        T(test_push_done_on_dlr),
        T(test_push_pull),
        T(test_push_not_pulled),
        T(test_pull_before_dlr),
        T(test_session_timeout),
        T(test_close_commits_staged),
        T(test_single_link_per_se),
        T(test_priority_under_backpressure),
        T(test_delayed_task),
        T(test_deadline_while_queued),
        T(test_dlr_failed_retry_new_counter),
        T(test_retries_exhausted),
        T(test_dlr_reasons),
        T(test_submit_final_rejected),
        T(test_submit_retryable),
        T(test_duplicate_and_unknown_dlr),
        T(test_timeouts),
        T(test_por_bad_cc),
        T(test_por_status_02_duplicate_copy),
        T(test_por_status_error),
        T(test_por_counter_high),
        T(test_por_ok_unprotected_refused),
        T(test_por_card_sw),
        T(test_por_before_submit_result),
        T(test_por_wrong_counter),
        T(test_mo_unknown_msisdn),
        T(test_terminate_active),
        T(test_cancel),
        T(test_se_tasks_order),
        T(test_no_keys_and_unsupported),
        T(test_concatenated_packet),
        T(test_bad_submits),
        T(test_restart_rebuilds),
        T(test_sequence_job),
        T(test_sequence_step_fails),
        T(test_list_job_lazy),
        T(test_job_pause_resume_cancel),
        T(test_filter_job),
        T(test_job_rate_cap),
        T(test_bad_jobs),
        T(test_no_dlr_wanted),
        T(test_deadline_while_active),
        T(test_shared_msisdn),
        T(test_terminate_dispatched),
        T(test_restart_wait_ended_while_down),
        T(test_restart_job_continues),
        T(test_commit_coalescing),
        T(test_open_bad_conf),
        T(test_commit_failure_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
