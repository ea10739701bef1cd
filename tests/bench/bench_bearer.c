/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-bearer: drives otagw's bearer against the simulator over loopback
 * and prints one JSON object of figures and counts. It is both the bearer
 * benchmark (issue #4: cmpp_msgs_per_s, each message with its SUBMIT_RESP
 * and its status report, window 16) and the driver of the loopback
 * integration tests, which assert on the counts it prints: every part
 * accepted, every report matched, every PoR verified (CC, TAR, counter),
 * nothing lost across a forced link drop, no counter reused.
 *
 * It starts build/bin/otagw-sim itself (ISMG role, a generated population
 * with a known seed), derives each SE's SCP80 keys the way the simulator
 * does (sim_pop_scp80_keys), sends push SMS and SCP80 commands (every
 * --concat-every-th one long enough to need concatenation), decodes the PoRs
 * that come back as MO, and stops the simulator with SIGTERM at the end.
 *
 * --kbox: the same workload through otagw's Kannel box link. The simulator's
 * SMSC role is used; a bearerbox config is written on free loopback ports
 * (an smsbox-route sends the simulator's MOs, the PoRs, to our box id; DLRs
 * come back by boxc_id and are matched by the token in dlr_url) and
 * /usr/sbin/bearerbox is started, checked (admin status: SMSC online) and
 * stopped here. The clock starts once bearerbox lists our box in its status
 * (it accepts about one box connection a second, see settle_link).
 * --kannel-restart-after N restarts bearerbox once N parts are acked (the
 * DLR map is then kept in SQLite so receipts still match after it).
 * --kannel-sendsms: the baseline, the same parts through smsbox's sendsms
 * (HTTP GET, keep-alive, --sendsms-conns in parallel, DLRs to a listener in
 * this process). Every child is killed on exit, error paths included.
 * BENCH_TRACE=1 in the environment prints timings of acks, DLRs and links.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ota/ota.h"
#include "smpp/bearer.h"
#include "tests/sim/sim.h"

#define MAX_MSGS 200000
#define MSISDN_BASE 8613800000000ull

struct run_conf {
    size_t n_push, n_scp80, concat_every;
};

struct item {
    uint64_t se; /* SE index */
    bool scp80;
    uint64_t cntr; /* SCP80 counter sent */
    uint8_t n_parts, parts_ok, parts_failed, dlrs;
    bool por_ok;
    double t_submit, t_done;
};

struct drv {
    struct ev_loop *loop;
    struct bearer *b;
    struct ota_crypto *cx;
    struct sim_pop *keys; /* the same generated population, for the keys */
    struct item *items;
    size_t n_items, next_item, next_part;
    struct ota_sms_part parts[8]; /* parts of the item being sent */
    int n_cur_parts;
    const struct run_conf *rc;
    uint64_t msisdn_base;
    /* msg id -> token map for DLR matching (linear probing) */
    char (*ids)[BEARER_MSGID_MAX];
    uint64_t *id_tok;
    size_t id_cap;
    uint64_t submitted_parts, ok, retryable, final, dlrs, dlrs_unmatched, mos, pors_ok, pors_bad,
        pors_dup, link_ups, link_downs;
    size_t done_items;
    double t0;
    bool finished;
    ev_timer deadline;
    /* Kannel modes */
    uint64_t cntr_base;     /* added to every SCP80 counter (the baseline runs after the box) */
    int phase;              /* 1: bearer workload, 2: sendsms baseline (MOs counted apart) */
    const char *src;        /* source address for box MTs */
    double t_last_ackdlr;   /* last ack or first final DLR of a part */
    uint64_t restart_after; /* restart bearerbox once this many parts are acked (0: never) */
    bool restarted;
    uint64_t base_pors_ok, base_pors_bad;
    struct kannel *kn;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s) {
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    }
    return h;
}

static void id_put(struct drv *d, const char *id, uint64_t tok)
{
    size_t i = hash_str(id) % d->id_cap;
    while (d->ids[i][0]) {
        i = (i + 1) % d->id_cap;
    }
    snprintf(d->ids[i], BEARER_MSGID_MAX, "%s", id);
    d->id_tok[i] = tok;
}

static bool id_get(struct drv *d, const char *id, uint64_t *tok)
{
    size_t i = hash_str(id) % d->id_cap;
    while (d->ids[i][0]) {
        if (!strcmp(d->ids[i], id)) {
            *tok = d->id_tok[i];
            return true;
        }
        i = (i + 1) % d->id_cap;
    }
    return false;
}

/* token = item index << 8 | part number */
static void check_done(struct drv *d, struct item *it)
{
    bool parts_done = it->parts_ok + it->parts_failed == it->n_parts;
    bool reports_done = it->dlrs >= it->parts_ok;
    bool por_done = !it->scp80 || it->por_ok || it->parts_failed;
    if (parts_done && reports_done && por_done && it->t_done == 0) {
        it->t_done = now_s();
        d->done_items++;
        if (d->done_items == d->n_items) {
            d->finished = true;
            ev_break(d->loop, EVBREAK_ALL);
        }
    }
}

struct kannel;
static void kannel_restart_begin(struct kannel *k);

static void on_result(void *arg, const struct bearer_submit_result *r)
{
    struct drv *d = arg;
    struct item *it = &d->items[r->token >> 8];
    if (r->status == BEARER_SUBMIT_OK) {
        d->ok++;
        if (getenv("BENCH_TRACE") && (d->ok == 1 || d->ok % 100 == 0)) {
            fprintf(stderr, "trace ack %" PRIu64 " at %.3f\n", d->ok, now_s() - d->t0);
        }
        it->parts_ok++;
        id_put(d, r->msg_id, r->token);
        d->t_last_ackdlr = now_s();
        if (d->restart_after && !d->restarted && d->ok >= d->restart_after) {
            d->restarted = true;
            kannel_restart_begin(d->kn);
        }
    } else {
        if (r->status == BEARER_SUBMIT_RETRYABLE) {
            d->retryable++;
        } else {
            d->final++;
        }
        it->parts_failed++;
        fprintf(stderr, "bench-bearer: part %" PRIu64 " not accepted: %s (%d)\n", r->token,
                r->reason ? r->reason : "?", r->code);
    }
    check_done(d, it);
}

static int on_dlr(void *arg, const struct bearer_dlr *dl)
{
    struct drv *d = arg;
    uint64_t tok;
    if (dl->has_token) {
        /* Kannel carries our token back (dlr_url); the id is the SMSC's. */
        tok = dl->token;
        size_t idx = (size_t)(tok >> 8);
        unsigned part = (unsigned)(tok & 0xff);
        if (idx >= d->n_items || part == 0 || part > d->items[idx].n_parts) {
            d->dlrs_unmatched++;
            return 0;
        }
    } else if (!id_get(d, dl->msg_id, &tok)) {
        d->dlrs_unmatched++;
        return 0;
    }
    if (!dl->final) {
        return 0;
    }
    d->dlrs++;
    if (getenv("BENCH_TRACE") && (d->dlrs == 1 || d->dlrs % 100 == 0)) {
        fprintf(stderr, "trace dlr %" PRIu64 " at %.3f\n", d->dlrs, now_s() - d->t0);
    }
    d->t_last_ackdlr = now_s();
    struct item *it = &d->items[tok >> 8];
    it->dlrs++;
    check_done(d, it);
    return 0;
}

static int on_mo(void *arg, const struct bearer_mo *m)
{
    struct drv *d = arg;
    d->mos++;
    /* The originator names the SE; the generated population is contiguous. */
    char *end;
    unsigned long long v = strtoull(m->orig, &end, 10);
    uint64_t base = d->msisdn_base;
    if (*end || v < base || v - base >= d->n_items) {
        d->pors_bad++;
        return 0;
    }
    uint64_t se = v - base;
    struct item *it = &d->items[se]; /* one item per SE: item index == SE index */
    uint64_t *ok_ctr = &d->pors_ok, *bad_ctr = &d->pors_bad;
    if (d->phase == 2) {
        /* PoRs of the sendsms baseline: counted apart, never duplicates of phase 1 */
        ok_ctr = &d->base_pors_ok;
        bad_ctr = &d->base_pors_bad;
    }
    struct sim_scp80_keyset ks;
    struct ota_err e;
    static const uint8_t tar[3] = {0, 0, 0};
    if (!it->scp80 || sim_pop_scp80_keys(d->keys, se, tar, &ks, &e) < 0) {
        (*bad_ctr)++;
        return 0;
    }
    struct ota_scp80_cmd cmd = {.kic = 0x12, .kid = 0x12, .cntr = it->cntr};
    static const uint8_t spi[2] = {0x16, 0x39};
    if (ota_scp80_spi_decode(spi, 2, &cmd.spi, NULL) < 0) {
        abort();
    }
    struct ota_scp80_keys keys = {&ks.kic, &ks.kid};
    struct ota_scp80_por por;
    uint8_t work[OTA_SCP80_POR_WORK(1024)];
    if (ota_scp80_por_decode_sms(d->cx, &cmd, &keys, m->ud, m->ud_len, work, sizeof(work), &por,
                                 &e) < 0 ||
        ota_scp80_por_match(&por, tar, it->cntr, &e) < 0 || por.status != 0 ||
        por.cc_state != OTA_SCP80_CC_VALID) {
        (*bad_ctr)++;
        fprintf(stderr, "bench-bearer: PoR from %s refused: %s\n", m->orig, e.msg);
    } else if (it->por_ok) {
        /* At-least-once: an MO not acknowledged before a drop comes again. */
        d->pors_dup++;
    } else {
        (*ok_ctr)++;
        it->por_ok = true;
    }
    ota_key_wipe(&ks.kic);
    ota_key_wipe(&ks.kid);
    if (d->phase != 2) {
        check_done(d, it);
    }
    return 0;
}

static void on_link(void *arg, const char *link, enum bearer_link_state from,
                    enum bearer_link_state to, const char *why)
{
    struct drv *d = arg;
    (void)link;
    if (getenv("BENCH_TRACE")) {
        fprintf(stderr, "trace link %s -> %s at %.3f\n", bearer_link_state_name(from),
                bearer_link_state_name(to), now_s() - d->t0);
    }
    if (to == BEARER_LINK_UP) {
        d->link_ups++;
    } else if (to == BEARER_LINK_DOWN && !d->finished) {
        /* Only drops while work is outstanding; the close at the end is not one. */
        d->link_downs++;
        fprintf(stderr, "bench-bearer: link down: %s\n", why ? why : "");
    }
}

static int build_item(struct drv *d, size_t i, bool scp80, bool long_script)
{
    struct item *it = &d->items[i];
    struct ota_err e;
    char msisdn[SIM_MSISDN_MAX + 1];
    uint8_t seid[SIM_SEID_MAX];
    size_t seid_len;
    struct ota_sms_part *parts = d->parts;

    it->se = i;
    it->scp80 = scp80;
    if (sim_pop_identity(d->keys, i, msisdn, seid, &seid_len) < 0) {
        return -1;
    }
    if (!scp80) {
        struct ota_push p = {.dst_port = 2948, .src_port = 2948};
        p.seid_len = (uint8_t)(seid_len > OTA_PUSH_SEID_MAX ? OTA_PUSH_SEID_MAX : seid_len);
        memcpy(p.seid, seid, p.seid_len);
        for (int k = 0; k < 16; k++) {
            p.serial[k] = (uint8_t)(i * 31 + (size_t)k);
        }
        int n = ota_push_encode(&p, parts[0].ud, sizeof(parts[0].ud), &e);
        if (n < 0) {
            return -1;
        }
        parts[0].len = (uint8_t)n;
        parts[0].udhi = true;
        d->n_cur_parts = 1;
    } else {
        static const uint8_t tar[3] = {0, 0, 0};
        struct sim_scp80_keyset ks;
        if (sim_pop_scp80_keys(d->keys, i, tar, &ks, &e) < 0) {
            fprintf(stderr, "bench-bearer: keys: %s\n", e.msg);
            return -1;
        }
        /* GET DATA 0066, then (long) STORE DATA padding to force concatenation. */
        uint8_t script[400];
        size_t sl = 0;
        static const uint8_t gd[] = {0x80, 0xca, 0x00, 0x66, 0x00};
        memcpy(script, gd, sizeof(gd));
        sl = sizeof(gd);
        if (long_script) {
            static const uint8_t sd[] = {0x80, 0xe2, 0x90, 0x00, 0xc8};
            memcpy(script + sl, sd, sizeof(sd));
            sl += sizeof(sd);
            memset(script + sl, 0x5a, 0xc8);
            sl += 0xc8;
        }
        struct ota_scp80_cmd cmd = {.kic = 0x12, .kid = 0x12, .cntr = 1 + i + d->cntr_base};
        static const uint8_t spi[2] = {0x16, 0x39};
        if (ota_scp80_spi_decode(spi, 2, &cmd.spi, NULL) < 0) {
            abort();
        }
        it->cntr = cmd.cntr;
        struct ota_scp80_keys keys = {&ks.kic, &ks.kid};
        uint8_t pkt[OTA_SCP80_MAX_PACKET];
        int n = ota_scp80_cmd_encode(d->cx, &cmd, &keys, script, sl, pkt, sizeof(pkt), NULL, &e);
        ota_key_wipe(&ks.kic);
        ota_key_wipe(&ks.kid);
        if (n < 0) {
            fprintf(stderr, "bench-bearer: encode: %s\n", e.msg);
            return -1;
        }
        static const uint8_t none = 0;
        struct ota_udh_ie cpi = {.iei = OTA_IEI_CPI, .len = 0, .val = &none};
        struct ota_concat_opts o = {.first = &cpi, .n_first = 1, .ref = (uint16_t)(i & 0xff)};
        int np = ota_concat_segment(pkt, (size_t)n, &o, parts, 8, &e);
        if (np < 0) {
            fprintf(stderr, "bench-bearer: segment: %s\n", e.msg);
            return -1;
        }
        d->n_cur_parts = np;
    }
    it->n_parts = (uint8_t)d->n_cur_parts;
    return 0;
}

static void pump(struct drv *d, const struct run_conf *rc)
{
    struct ota_err e;
    char msisdn[SIM_MSISDN_MAX + 1];
    uint8_t seid[SIM_SEID_MAX];
    size_t seid_len;

    while (d->next_item < d->n_items) {
        size_t i = d->next_item;
        if (d->next_part == 0) {
            bool scp80 = i >= rc->n_push;
            bool long_script =
                scp80 && rc->concat_every && (i - rc->n_push) % rc->concat_every == 0;
            if (build_item(d, i, scp80, long_script) < 0) {
                fprintf(stderr, "bench-bearer: cannot build item %zu\n", i);
                exit(2);
            }
        }
        struct item *it = &d->items[i];
        if (sim_pop_identity(d->keys, i, msisdn, seid, &seid_len) < 0) {
            exit(2);
        }
        const struct ota_sms_part *p = &d->parts[d->next_part];
        struct bearer_msg m = {
            .ud_len = p->len,
            .udhi = p->udhi,
            .pid = it->scp80 ? 0x7f : 0x00,
            .dcs = it->scp80 ? 0xf6 : 0xf5,
            .want_report = true,
            .part = (uint8_t)(d->next_part + 1),
            .n_parts = it->n_parts,
            .token = (uint64_t)i << 8 | (d->next_part + 1),
        };
        snprintf(m.dest, sizeof(m.dest), "%s", msisdn);
        if (d->src) {
            /* the SMSC sends the PoR MO to the MT's source address; Kannel needs one */
            snprintf(m.src, sizeof(m.src), "%s", d->src);
        }
        memcpy(m.ud, p->ud, p->len);
        int r = bearer_submit(d->b, &m, &e);
        if (r == -EAGAIN) {
            return; /* the ready callback brings us back */
        }
        if (r < 0) {
            fprintf(stderr, "bench-bearer: submit: %s\n", e.msg);
            exit(2);
        }
        if (it->t_submit == 0) {
            it->t_submit = now_s();
        }
        d->submitted_parts++;
        if (++d->next_part == (size_t)d->n_cur_parts) {
            d->next_part = 0;
            d->next_item++;
        }
    }
}

static void on_ready(void *arg)
{
    struct drv *d = arg;
    pump(d, d->rc);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static pid_t start_sim(const char *sim, const char *dir, const char *seed_hex, size_t n_se,
                       const char *faults, int *ismg_port, int *smsc_port)
{
    char pf[512], cf[512], gen[32], ismg[32];
    snprintf(pf, sizeof(pf), "%s/ports.json", dir);
    snprintf(cf, sizeof(cf), "%s/counts.json", dir);
    snprintf(gen, sizeof(gen), "%zu", n_se);
    /* *ismg_port > 0 asks for that port (a capture filter can then name it) */
    snprintf(ismg, sizeof(ismg), "127.0.0.1:%d", *ismg_port > 0 ? *ismg_port : 0);
    pid_t pid = fork();
    if (pid == 0) {
        const char *argv[32];
        int a = 0;
        argv[a++] = sim;
        argv[a++] = "--ismg";
        argv[a++] = ismg;
        argv[a++] = "--smsc";
        argv[a++] = "127.0.0.1:0";
        argv[a++] = "--generate";
        argv[a++] = gen;
        argv[a++] = "--msisdn-base";
        argv[a++] = "8613800000000";
        argv[a++] = "--seed";
        argv[a++] = seed_hex;
        argv[a++] = "--sp-id";
        argv[a++] = "901234";
        argv[a++] = "--secret";
        argv[a++] = "otagw-test";
        argv[a++] = "--port-file";
        argv[a++] = pf;
        argv[a++] = "--counts-file";
        argv[a++] = cf;
        if (faults && *faults) {
            argv[a++] = "--faults";
            argv[a++] = faults;
        }
        argv[a] = NULL;
        execv(sim, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) { /* 10 s at most */
        json_t *j = json_load_file(pf, 0, NULL);
        if (j) {
            *ismg_port = (int)json_integer_value(json_object_get(j, "ismg"));
            *smsc_port = (int)json_integer_value(json_object_get(j, "smsc"));
            json_decref(j);
            if (*ismg_port > 0 && *smsc_port > 0) {
                return pid;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            return -1;
        }
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* ---- Kannel: bearerbox (and smsbox) started, watched and stopped here ---------------- */

#define MAX_CHILDREN 8
static pid_t g_children[MAX_CHILDREN];

static void child_track(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (g_children[i] == 0) {
            g_children[i] = pid;
            return;
        }
    }
}

static void child_untrack(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (g_children[i] == pid) {
            g_children[i] = 0;
        }
    }
}

/* atexit and fatal signals: nothing we started outlives us */
static void kill_children(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (g_children[i] > 0) {
            kill(g_children[i], SIGKILL);
            waitpid(g_children[i], NULL, 0);
            g_children[i] = 0;
        }
    }
}

static void on_fatal_signal(int sig)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (g_children[i] > 0) {
            kill(g_children[i], SIGKILL);
        }
    }
    _exit(128 + sig);
}

/* SIGTERM, wait at most timeout_s, then SIGKILL. Returns 0 when it stopped by itself. */
static int stop_child(pid_t *pid, double timeout_s)
{
    if (*pid <= 0) {
        return 0;
    }
    int rc = 0;
    kill(*pid, SIGTERM);
    double end = now_s() + timeout_s;
    while (waitpid(*pid, NULL, WNOHANG) == 0) {
        if (now_s() > end) {
            fprintf(stderr, "bench-bearer: pid %ld still up %.0f s after SIGTERM, killing it\n",
                    (long)*pid, timeout_s);
            kill(*pid, SIGKILL);
            waitpid(*pid, NULL, 0);
            rc = -1;
            break;
        }
        usleep(20000);
    }
    child_untrack(*pid);
    *pid = 0;
    return rc;
}

static pid_t spawn(const char *const argv[], const char *out_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pid > 0) {
        child_track(pid);
    }
    return pid;
}

/* A loopback port nobody listens on now (bound to port 0, then closed). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0) {
        port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

static bool port_open(int port)
{
    int fd = tcp_connect(port);
    if (fd < 0) {
        return false;
    }
    close(fd);
    return true;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* One HTTP/1.0 GET, whole answer into buf (NUL-terminated). Returns the length or -1. */
static int http_get_once(int port, const char *path, char *buf, size_t cap)
{
    int fd = tcp_connect(port);
    if (fd < 0) {
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    size_t got = 0;
    if (write_all(fd, req, (size_t)n)) {
        ssize_t r;
        while (got + 1 < cap && (r = read(fd, buf + got, cap - 1 - got)) > 0) {
            got += (size_t)r;
        }
    }
    close(fd);
    buf[got] = 0;
    return (int)got;
}

struct kannel {
    char dir[256], conf[300];
    const char *bearerbox_bin, *smsbox_bin;
    int box_port, admin_port, smsc_port, sendsms_port, dlr_port;
    pid_t bb, sb;
    bool sqlite, sendsms;
    char boxc_id[64];
    struct ev_loop *loop;
    ev_timer restart_w;
    int restart_step;
    double restart_t;
    unsigned restarts;
};

static int kannel_write_conf(struct kannel *k)
{
    FILE *f = fopen(k->conf, "w");
    if (!f) {
        return -1;
    }
    fprintf(f,
            "group = core\n"
            "admin-port = %d\n"
            "admin-password = bench\n"
            "admin-interface = 127.0.0.1\n"
            "admin-allow-ip = 127.0.0.1\n"
            "smsbox-port = %d\n"
            "smsbox-interface = 127.0.0.1\n"
            "box-allow-ip = 127.0.0.1\n"
            "dlr-storage = %s\n"
            "store-type = file\n"
            "store-location = \"%s/kannel.store\"\n"
            "log-file = \"%s/bearerbox.log\"\n"
            "log-level = %s\n\n",
            k->admin_port, k->box_port, k->sqlite ? "sqlite3" : "internal", k->dir, k->dir,
            getenv("BENCH_KANNEL_LOG_LEVEL") ? getenv("BENCH_KANNEL_LOG_LEVEL") : "2");
    /* smsbox's own id keeps its DLRs off our route; bearerbox needs the group anyway */
    fprintf(f, "group = smsbox\nbearerbox-host = 127.0.0.1\nsmsbox-id = kannel-smsbox\n");
    if (k->sendsms) {
        fprintf(f,
                "sendsms-port = %d\n"
                "log-file = \"%s/smsbox.log\"\n"
                "log-level = 2\n\n"
                "group = sendsms-user\n"
                "username = bench\n"
                "password = bench\n"
                "max-messages = 1\n"
                "concatenation = false\n",
                k->sendsms_port, k->dir);
    }
    /* MOs (PoRs) from the simulator's SMSC go to our box; its own MTs name it for DLRs */
    fprintf(f,
            "\ngroup = smsbox-route\n"
            "smsbox-id = %s\n"
            "smsc-id = sim\n\n"
            "group = smsc\n"
            "smsc = smpp\n"
            "smsc-id = sim\n"
            "host = 127.0.0.1\n"
            "port = %d\n"
            "transceiver-mode = true\n"
            "smsc-username = \"otagw\"\n"
            "smsc-password = \"secret\"\n"
            "system-type = \"\"\n"
            "reconnect-delay = 1\n"
            "enquire-link-interval = 30\n"
            "max-pending-submits = 100\n",
            k->boxc_id, k->smsc_port);
    if (k->sqlite) {
        fprintf(f,
                "\ngroup = sqlite3-connection\nid = dlrdb\ndatabase = \"%s/dlr.db\"\n"
                "max-connections = 1\n\n"
                "group = dlr-db\nid = dlrdb\ntable = dlr\nfield-smsc = smsc\n"
                "field-timestamp = ts\nfield-destination = destination\n"
                "field-source = source\nfield-service = service\nfield-url = url\n"
                "field-mask = mask\nfield-status = status\nfield-boxc-id = boxc\n",
                k->dir);
    }
    if (fclose(f) != 0) {
        return -1;
    }
    if (k->sqlite) {
        /* Kannel does not create its DLR table; the sqlite3 program does. */
        char db[400];
        snprintf(db, sizeof(db), "%s/dlr.db", k->dir);
        const char *argv[] = {"/usr/bin/sqlite3", db,
                              "CREATE TABLE IF NOT EXISTS dlr (smsc TEXT, ts TEXT, destination "
                              "TEXT, source TEXT, service TEXT, url TEXT, mask INTEGER, status "
                              "INTEGER, boxc TEXT);",
                              NULL};
        char out[400];
        snprintf(out, sizeof(out), "%s/sqlite3.out", k->dir);
        pid_t p = spawn(argv, out);
        int st = 1;
        if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            child_untrack(p);
            return -1;
        }
        child_untrack(p);
    }
    return 0;
}

/* Start bearerbox and wait (10 s at most) for its box port. */
static int kannel_start_bb(struct kannel *k)
{
    char out[400];
    snprintf(out, sizeof(out), "%s/bearerbox.out", k->dir);
    const char *argv[] = {k->bearerbox_bin, "-v", "4", k->conf, NULL};
    k->bb = spawn(argv, out);
    if (k->bb < 0) {
        return -1;
    }
    for (int i = 0; i < 200; i++) {
        if (waitpid(k->bb, NULL, WNOHANG) == k->bb) {
            child_untrack(k->bb);
            k->bb = 0;
            fprintf(stderr, "bench-bearer: bearerbox exited at start (see %s/bearerbox.*)\n",
                    k->dir);
            return -1;
        }
        if (port_open(k->box_port)) {
            return 0;
        }
        usleep(50000);
    }
    fprintf(stderr, "bench-bearer: bearerbox box port %d not open after 10 s\n", k->box_port);
    return -1;
}

/* Wait until the admin status shows the SMSC "sim" online. */
static int kannel_wait_online(struct kannel *k, double limit_s)
{
    char path[128], buf[16384];
    snprintf(path, sizeof(path), "/status.txt?password=bench");
    double end = now_s() + limit_s;
    while (now_s() < end) {
        if (http_get_once(k->admin_port, path, buf, sizeof(buf)) > 0) {
            char *l = strstr(buf, "sim[sim]");
            char *eol = l ? strchr(l, '\n') : NULL;
            char *on = l ? strstr(l, "online") : NULL;
            if (on && (!eol || on < eol)) {
                return 0;
            }
        }
        usleep(100000);
    }
    fprintf(stderr, "bench-bearer: bearerbox's SMSC link not online after %.0f s\n", limit_s);
    return -1;
}

static int kannel_start_smsbox(struct kannel *k)
{
    char out[400];
    snprintf(out, sizeof(out), "%s/smsbox.out", k->dir);
    const char *argv[] = {k->smsbox_bin, "-v", "4", k->conf, NULL};
    k->sb = spawn(argv, out);
    if (k->sb < 0) {
        return -1;
    }
    for (int i = 0; i < 200; i++) {
        if (waitpid(k->sb, NULL, WNOHANG) == k->sb) {
            child_untrack(k->sb);
            k->sb = 0;
            fprintf(stderr, "bench-bearer: smsbox exited at start (see %s/smsbox.*)\n", k->dir);
            return -1;
        }
        if (port_open(k->sendsms_port)) {
            return 0;
        }
        usleep(50000);
    }
    fprintf(stderr, "bench-bearer: smsbox sendsms port %d not open after 10 s\n", k->sendsms_port);
    return -1;
}

/*
 * Restart in the middle of a run, without blocking the loop while bearerbox
 * shuts down (it waits for its boxes to go, and our box is on this loop):
 * SIGTERM, poll for its exit (60 s, then SIGKILL), start it again.
 */
static void on_restart_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct kannel *k = w->data;
    if (waitpid(k->bb, NULL, WNOHANG) == 0) {
        if (now_s() - k->restart_t > 60) {
            fprintf(stderr, "bench-bearer: bearerbox did not stop in 60 s, killing it\n");
            kill(k->bb, SIGKILL);
        }
        return;
    }
    child_untrack(k->bb);
    k->bb = 0;
    ev_timer_stop(k->loop, w);
    if (kannel_start_bb(k) < 0) {
        fprintf(stderr, "bench-bearer: bearerbox did not restart\n");
        exit(2);
    }
    k->restarts++;
    fprintf(stderr, "bench-bearer: bearerbox restarted (pid %ld)\n", (long)k->bb);
}

static void kannel_restart_begin(struct kannel *k)
{
    if (!k || k->bb <= 0) {
        return;
    }
    fprintf(stderr, "bench-bearer: restarting bearerbox\n");
    kill(k->bb, SIGTERM);
    k->restart_t = now_s();
    ev_timer_init(&k->restart_w, on_restart_tick, 0.05, 0.05);
    k->restart_w.data = k;
    ev_timer_start(k->loop, &k->restart_w);
}

/* ---- the sendsms baseline: HTTP GETs to smsbox, DLR callbacks to our listener ------- */

struct ss_part {
    char dest[BEARER_ADDR_MAX + 1];
    uint8_t ud[BEARER_UD_MAX];
    uint8_t ud_len, pid, dcs;
    bool udhi;
};

struct sendsms {
    struct ss_part *parts;
    size_t n_parts;
    int sendsms_port, dlr_port, listen_fd;
    const char *src;
    size_t next;      /* atomic: next part to send */
    uint8_t *dlr_got; /* atomic per part: first final DLR seen */
    uint64_t accepted, http_other, retried, dlrs, dlrs_dup, dlrs_nonfinal, dlrs_bad, conn_err;
    uint64_t connects, dlr_connects;
    double t_last; /* last 202 or first final DLR (guarded by lock) */
    double t0;
    bool trace;
    pthread_mutex_t lock;
    volatile bool stop;
};

static void ss_touch(struct sendsms *s)
{
    double t = now_s();
    pthread_mutex_lock(&s->lock);
    if (t > s->t_last) {
        s->t_last = t;
    }
    pthread_mutex_unlock(&s->lock);
}

static size_t url_hex(char *out, const uint8_t *p, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        out[o++] = '%';
        out[o++] = hx[p[i] >> 4];
        out[o++] = hx[p[i] & 15];
    }
    out[o] = 0;
    return o;
}

/* Read one HTTP answer (headers + Content-Length body). Returns the status or -1. */
static int ss_read_answer(int fd, char *buf, size_t cap, bool *close_after)
{
    size_t got = 0;
    char *eoh = NULL;
    while (!eoh) {
        if (got + 1 >= cap) {
            return -1;
        }
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r <= 0) {
            return -1;
        }
        got += (size_t)r;
        buf[got] = 0;
        eoh = strstr(buf, "\r\n\r\n");
    }
    int status = -1;
    if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1) {
        return -1;
    }
    size_t clen = 0;
    char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl && cl < eoh) {
        clen = strtoul(cl + 17, NULL, 10);
    }
    char *cn = strcasestr(buf, "\r\nConnection: close");
    *close_after = (cn && cn < eoh) || !strncmp(buf, "HTTP/1.0", 8);
    size_t have = got - (size_t)(eoh + 4 - buf);
    while (have < clen) {
        char tmp[512];
        size_t want = clen - have < sizeof(tmp) ? clen - have : sizeof(tmp);
        ssize_t r = read(fd, tmp, want);
        if (r <= 0) {
            return -1;
        }
        have += (size_t)r;
    }
    return status;
}

static void *ss_sender(void *arg)
{
    struct sendsms *s = arg;
    int fd = -1;
    char req[2048], ans[4096], udh[512], text[512];
    for (;;) {
        size_t i = __atomic_fetch_add(&s->next, 1, __ATOMIC_RELAXED);
        if (i >= s->n_parts || s->stop) {
            break;
        }
        const struct ss_part *p = &s->parts[i];
        size_t udhl = p->udhi && p->ud_len ? (size_t)p->ud[0] + 1 : 0;
        if (udhl > p->ud_len) {
            udhl = p->ud_len;
        }
        url_hex(udh, p->ud, udhl);
        url_hex(text, p->ud + udhl, p->ud_len - udhl);
        /* dlr-url http://127.0.0.1:PORT/d?t=I&s=%d, itself URL-encoded */
        int n = snprintf(req, sizeof(req),
                         "GET /cgi-bin/sendsms?username=bench&password=bench&from=%s&to=%s"
                         "&udh=%s&text=%s&coding=1&mclass=%d&pid=%d&dlr-mask=3"
                         "&dlr-url=http%%3A%%2F%%2F127.0.0.1%%3A%d%%2Fd%%3Ft%%3D%zu%%26s%%3D%%25d"
                         " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                         s->src, p->dest, udh, text, p->dcs & 3, p->pid, s->dlr_port, i);
        for (int attempt = 0;; attempt++) {
            if (s->stop || attempt > 1000) {
                __atomic_fetch_add(&s->http_other, 1, __ATOMIC_RELAXED);
                break;
            }
            if (fd < 0) {
                fd = tcp_connect(s->sendsms_port);
                if (fd < 0) {
                    __atomic_fetch_add(&s->conn_err, 1, __ATOMIC_RELAXED);
                    usleep(10000);
                    continue;
                }
                __atomic_fetch_add(&s->connects, 1, __ATOMIC_RELAXED);
            }
            bool close_after = true;
            int st = -1;
            if (write_all(fd, req, (size_t)n)) {
                st = ss_read_answer(fd, ans, sizeof(ans), &close_after);
            }
            if (st < 0 || close_after) {
                close(fd);
                fd = -1;
            }
            if (st == 202) {
                uint64_t a = __atomic_add_fetch(&s->accepted, 1, __ATOMIC_RELAXED);
                if (s->trace && (a == 1 || a % 100 == 0)) {
                    fprintf(stderr, "trace 202 %" PRIu64 " at %.3f\n", a, now_s() - s->t0);
                }
                ss_touch(s);
                break;
            }
            if (st == 503 || st < 0) { /* temporary: try again */
                __atomic_fetch_add(&s->retried, 1, __ATOMIC_RELAXED);
                usleep(10000);
                continue;
            }
            fprintf(stderr, "bench-bearer: sendsms part %zu: HTTP %d\n", i, st);
            __atomic_fetch_add(&s->http_other, 1, __ATOMIC_RELAXED);
            break;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

struct ss_conn {
    struct sendsms *s;
    int fd;
};

/* One DLR connection: requests read up to their blank line; only the request line is parsed. */
static void *ss_dlr_conn(void *arg)
{
    struct ss_conn *c = arg;
    struct sendsms *s = c->s;
    int fd = c->fd;
    free(c);
    char buf[8192];
    size_t got = 0;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for (;;) {
        char *eoh = got ? strstr(buf, "\r\n\r\n") : NULL;
        if (!eoh) {
            if (got + 1 >= sizeof(buf)) {
                break;
            }
            ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
            if (r <= 0) {
                break;
            }
            got += (size_t)r;
            buf[got] = 0;
            continue;
        }
        size_t t = 0;
        int ev = 0;
        if (sscanf(buf, "GET /d?t=%zu&s=%d", &t, &ev) == 2 && t < s->n_parts) {
            if (ev == 1 || ev == 2) {
                if (__atomic_exchange_n(&s->dlr_got[t], 1, __ATOMIC_RELAXED) == 0) {
                    uint64_t n = __atomic_add_fetch(&s->dlrs, 1, __ATOMIC_RELAXED);
                    if (s->trace && (n == 1 || n % 100 == 0)) {
                        fprintf(stderr, "trace dlr-cb %" PRIu64 " at %.3f\n", n, now_s() - s->t0);
                    }
                    ss_touch(s);
                } else {
                    __atomic_fetch_add(&s->dlrs_dup, 1, __ATOMIC_RELAXED);
                }
            } else {
                __atomic_fetch_add(&s->dlrs_nonfinal, 1, __ATOMIC_RELAXED);
            }
        } else {
            __atomic_fetch_add(&s->dlrs_bad, 1, __ATOMIC_RELAXED);
        }
        if (!write_all(fd, ok, sizeof(ok) - 1)) {
            break;
        }
        size_t used = (size_t)(eoh + 4 - buf);
        memmove(buf, eoh + 4, got - used);
        got -= used;
        buf[got] = 0;
    }
    close(fd);
    return NULL;
}

static void *ss_listener(void *arg)
{
    struct sendsms *s = arg;
    while (!s->stop) {
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) {
                continue;
            }
            break;
        }
        struct timeval tv = {.tv_sec = 30};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        __atomic_fetch_add(&s->dlr_connects, 1, __ATOMIC_RELAXED);
        struct ss_conn *a = malloc(sizeof(*a));
        if (!a) {
            close(fd);
            continue;
        }
        a->s = s;
        a->fd = fd;
        pthread_t th;
        if (pthread_create(&th, NULL, ss_dlr_conn, a) != 0) {
            close(fd);
            free(a);
            continue;
        }
        pthread_detach(th);
    }
    return NULL;
}

static int ss_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 256) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_usec = 200000}; /* accept wakes up to see stop */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    *port = ntohs(a.sin_port);
    return fd;
}

struct ss_wait {
    ev_timer tick;
    struct sendsms *s;
};

static void on_ss_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct ss_wait *sw = (struct ss_wait *)w;
    struct sendsms *s = sw->s;
    size_t acc = __atomic_load_n(&s->accepted, __ATOMIC_RELAXED);
    size_t bad = __atomic_load_n(&s->http_other, __ATOMIC_RELAXED);
    size_t dl = __atomic_load_n(&s->dlrs, __ATOMIC_RELAXED);
    if (acc + bad == s->n_parts && dl >= acc) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench-bearer [--push N] [--scp80 N] [--concat-every K] [--window W]\n"
               "                    [--version 2.0|3.0] [--faults SPEC] [--sim PATH]\n"
               "                    [--rate PARTS_PER_S] [--throttle-pause-ms MS] [--timeout S] "
               "[--quick]\n"
               "                    [--kbox] [--kannel-sendsms] [--sendsms-conns N]\n"
               "                    [--kannel-restart-after PARTS] [--bearerbox PATH] "
               "[--smsbox PATH]\n"
               "                    [--ismg-port PORT] [--all]\n"
               "Drives the bearer against otagw-sim on loopback; prints one JSON object.\n"
               "Default: the CMPP link to the simulator's ISMG. --kbox: otagw's Kannel box link\n"
               "through a bearerbox started here, bound to the simulator's SMSC. "
               "--kannel-sendsms:\n"
               "the same MTs through Kannel's smsbox sendsms HTTP interface (the baseline).\n"
               "--all: the CMPP run, then --kbox --kannel-sendsms, in one JSON object.\n");
}

static void on_settle(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct drv *d = w->data;
    if (d->link_ups == 0) {
        return;
    }
    /* bearerbox lists a box in its status once it has accepted it and read its identify */
    char buf[16384];
    if (!d->kn ||
        (http_get_once(d->kn->admin_port, "/status.txt?password=bench", buf, sizeof(buf)) > 0 &&
         strstr(buf, d->kn->boxc_id))) {
        ev_break(loop, EVBREAK_ALL);
    }
}

/*
 * Run the loop until the box link is up and bearerbox has taken it (its
 * admin status names our box id), limit_s at most. bearerbox 1.4.5 accepts
 * about one box connection a second: a TCP connect completes (the kernel's
 * backlog) well before bearerbox reads from it.
 */
static int settle_link(struct drv *d, double limit_s)
{
    ev_timer w;
    ev_timer_init(&w, on_settle, 0.02, 0.02);
    w.data = d;
    ev_timer_start(d->loop, &w);
    ev_timer tmo;
    ev_timer_init(&tmo, on_deadline, limit_s, 0);
    ev_timer_start(d->loop, &tmo);
    double t0 = now_s();
    ev_run(d->loop, 0);
    ev_timer_stop(d->loop, &w);
    ev_timer_stop(d->loop, &tmo);
    if (getenv("BENCH_TRACE")) {
        fprintf(stderr, "trace settled after %.3f s\n", now_s() - t0);
    }
    return d->link_ups > 0 && now_s() - t0 < limit_s ? 0 : -1;
}

static double tv_s(struct timeval a, struct timeval b)
{
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_usec - a.tv_usec) / 1e6;
}

/* CPU seconds (user + system) of a live process, from /proc; -1 when unknown. */
static double proc_cpu_s(pid_t pid)
{
    if (pid <= 0) {
        return -1;
    }
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) {
        return -1;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/*
 * --all: the one-object report. Runs this program twice (the CMPP
 * path, then the Kannel box link with the sendsms baseline), with the same
 * workload, and prints the three throughput figures side by side with both
 * full reports. Returns the worse exit status of the two runs.
 */
static int run_all(const char *self, int argc, char **argv)
{
    char cmd[2][4096];
    size_t o[2] = {0, 0};
    o[0] = (size_t)snprintf(cmd[0], sizeof(cmd[0]), "'%s'", self);
    o[1] = (size_t)snprintf(cmd[1], sizeof(cmd[1]), "'%s' --kbox --kannel-sendsms", self);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all")) {
            continue;
        }
        for (int k = 0; k < 2; k++) {
            if (strchr(argv[i], '\'') || o[k] + strlen(argv[i]) + 4 >= sizeof(cmd[k])) {
                fprintf(stderr, "bench-bearer: --all: argument '%s' not passed on\n", argv[i]);
                return 2;
            }
            o[k] += (size_t)snprintf(cmd[k] + o[k], sizeof(cmd[k]) - o[k], " '%s'", argv[i]);
        }
    }
    json_t *res[2] = {NULL, NULL};
    int worst = 0;
    for (int k = 0; k < 2; k++) {
        FILE *f = popen(cmd[k], "r");
        if (!f) {
            return 2;
        }
        res[k] = json_loadf(f, JSON_DISABLE_EOF_CHECK, NULL);
        int st = pclose(f);
        int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 2;
        worst = rc > worst ? rc : worst;
        if (!res[k]) {
            fprintf(stderr, "bench-bearer: --all: no report from: %s\n", cmd[k]);
            worst = 2;
        }
    }
    json_t *o_all = json_object();
    const char *keys[] = {"cmpp_msgs_per_s", "kannel_box_msgs_per_s", "kannel_sendsms_msgs_per_s",
                          "kannel_box_vs_sendsms_ratio"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(res[i == 0 ? 0 : 1], keys[i]);
        json_object_set(o_all, keys[i], v ? v : json_null());
    }
    json_object_set_new(o_all, "cmpp", res[0] ? res[0] : json_null());
    json_object_set_new(o_all, "kannel", res[1] ? res[1] : json_null());
    json_dumpf(o_all, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(o_all);
    return worst;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"push", required_argument, NULL, 'p'},
        {"scp80", required_argument, NULL, 's'},
        {"concat-every", required_argument, NULL, 'c'},
        {"window", required_argument, NULL, 'w'},
        {"version", required_argument, NULL, 'v'},
        {"faults", required_argument, NULL, 'f'},
        {"sim", required_argument, NULL, 'S'},
        {"timeout", required_argument, NULL, 't'},
        {"quick", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"rate", required_argument, NULL, 'r'},
        {"throttle-pause-ms", required_argument, NULL, 'P'},
        {"kbox", no_argument, NULL, 'K'},
        {"kannel-sendsms", no_argument, NULL, 'H'},
        {"sendsms-conns", required_argument, NULL, 'C'},
        {"kannel-restart-after", required_argument, NULL, 'R'},
        {"bearerbox", required_argument, NULL, 'B'},
        {"smsbox", required_argument, NULL, 'X'},
        {"ismg-port", required_argument, NULL, 'I'},
        {"all", no_argument, NULL, 'A'},
        {NULL, 0, NULL, 0},
    };
    struct run_conf rc = {.n_push = 10000, .n_scp80 = 10000, .concat_every = 10};
    int ismg_port_req = 0;
    bool run_all_mode = false;
    unsigned window = 0;
    uint8_t version = 0x30;
    const char *faults = NULL;
    char sim[1024] = "";
    double timeout_s = 120, rate = 0;
    unsigned throttle_pause_ms = 0, sendsms_conns = 16;
    bool kbox = false, sendsms = false;
    uint64_t restart_after = 0;
    const char *bearerbox_bin = "/usr/sbin/bearerbox", *smsbox_bin = "/usr/sbin/smsbox";
    int c;

    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'p':
            rc.n_push = strtoul(optarg, NULL, 10);
            break;
        case 's':
            rc.n_scp80 = strtoul(optarg, NULL, 10);
            break;
        case 'c':
            rc.concat_every = strtoul(optarg, NULL, 10);
            break;
        case 'w':
            window = (unsigned)strtoul(optarg, NULL, 10);
            if (window == 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 'v':
            version = !strcmp(optarg, "2.0") ? 0x20 : 0x30;
            break;
        case 'f':
            faults = optarg;
            break;
        case 'S':
            snprintf(sim, sizeof(sim), "%s", optarg);
            break;
        case 't':
            timeout_s = strtod(optarg, NULL);
            break;
        case 'A':
            run_all_mode = true;
            break;
        case 'I':
            /* a fixed ISMG port, so that a capture filter can name it */
            ismg_port_req = atoi(optarg);
            if (ismg_port_req <= 0 || ismg_port_req > 65535) {
                fprintf(stderr, "bench-bearer: --ismg-port 1..65535\n");
                return 2;
            }
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 'P':
            throttle_pause_ms = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'q':
            rc.n_push = 1000;
            rc.n_scp80 = 1000;
            break;
        case 'K':
            kbox = true;
            break;
        case 'H':
            sendsms = true;
            break;
        case 'C':
            sendsms_conns = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'R':
            restart_after = strtoull(optarg, NULL, 10);
            break;
        case 'B':
            bearerbox_bin = optarg;
            break;
        case 'X':
            smsbox_bin = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    bool kannel = kbox || sendsms;
    if (window == 0) {
        /* CMPP: the spec's 16. Box link: bearerbox acks at once; smsbox allows 512 pending. */
        window = kannel ? 128 : 16;
    }
    if (rc.n_push + rc.n_scp80 == 0 || rc.n_push + rc.n_scp80 > MAX_MSGS || sendsms_conns == 0 ||
        sendsms_conns > 256) {
        fprintf(stderr, "bench-bearer: 1..%d messages and 1..256 sendsms connections\n", MAX_MSGS);
        return 2;
    }
    if (kannel && access(bearerbox_bin, X_OK) != 0) {
        fprintf(stderr, "bench-bearer: no bearerbox at %s\n", bearerbox_bin);
        return 2;
    }
    if (sendsms && access(smsbox_bin, X_OK) != 0) {
        fprintf(stderr, "bench-bearer: no smsbox at %s\n", smsbox_bin);
        return 2;
    }
    if (run_all_mode) {
        char me[1024];
        ssize_t n = readlink("/proc/self/exe", me, sizeof(me) - 1);
        if (n <= 0) {
            return 2;
        }
        me[n] = 0;
        return run_all(me, argc, argv);
    }
    if (!sim[0]) {
        char self[900];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0) {
            return 2;
        }
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
        }
        snprintf(sim, sizeof(sim), "%s/otagw-sim", self);
    }
    char dir[] = "/tmp/bench-bearer.XXXXXX";
    if (!mkdtemp(dir)) {
        return 2;
    }
    atexit(kill_children);
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGPIPE, SIG_IGN);
    static const char *seed_hex = "000102030405060708090a0b0c0d0e0f";
    uint8_t seed[16];
    for (int i = 0; i < 16; i++) {
        seed[i] = (uint8_t)i;
    }
    struct drv d = {.msisdn_base = MSISDN_BASE};
    struct ota_err e;
    d.n_items = rc.n_push + rc.n_scp80;
    d.items = calloc(d.n_items, sizeof(*d.items));
    d.id_cap = d.n_items * 8 * 2 + 1;
    d.ids = calloc(d.id_cap, sizeof(*d.ids));
    d.id_tok = calloc(d.id_cap, sizeof(*d.id_tok));
    if (!d.items || !d.ids || !d.id_tok || ota_crypto_new(&d.cx, &e) < 0 ||
        sim_pop_generate(d.n_items, MSISDN_BASE, seed, &d.keys, &e) < 0) {
        fprintf(stderr, "bench-bearer: setup failed\n");
        return 2;
    }
    int port = ismg_port_req, smsc_port = 0;
    pid_t sim_pid = start_sim(sim, dir, seed_hex, d.n_items, faults, &port, &smsc_port);
    if (sim_pid < 0) {
        fprintf(stderr, "bench-bearer: could not start %s\n", sim);
        return 2;
    }
    child_track(sim_pid);
    d.loop = ev_default_loop(0);

    /* Kannel: bearerbox (and smsbox) on free loopback ports, bound to the simulator's SMSC */
    static struct kannel kn;
    if (kannel) {
        snprintf(kn.dir, sizeof(kn.dir), "%s", dir);
        snprintf(kn.conf, sizeof(kn.conf), "%s/kannel.conf", dir);
        snprintf(kn.boxc_id, sizeof(kn.boxc_id), "otagw-bench");
        kn.bearerbox_bin = bearerbox_bin;
        kn.smsbox_bin = smsbox_bin;
        kn.smsc_port = smsc_port;
        kn.box_port = free_port();
        kn.admin_port = free_port();
        kn.sendsms_port = free_port();
        kn.sendsms = sendsms;
        /* A restart must not forget the DLR map: receipts reach the new bearerbox. */
        kn.sqlite = restart_after > 0;
        kn.loop = d.loop;
        if (kn.box_port <= 0 || kn.admin_port <= 0 || kn.sendsms_port <= 0 ||
            kn.box_port == kn.admin_port || kn.sendsms_port == kn.box_port ||
            kn.sendsms_port == kn.admin_port || kannel_write_conf(&kn) < 0 ||
            kannel_start_bb(&kn) < 0 || kannel_wait_online(&kn, 30) < 0 ||
            (sendsms && kannel_start_smsbox(&kn) < 0)) {
            fprintf(stderr, "bench-bearer: Kannel setup failed; files kept in %s\n", dir);
            return 2;
        }
        d.kn = &kn;
        d.restart_after = kbox ? restart_after : 0;
    }

    struct bearer_cbs cbs = {.submit_result = on_result,
                             .dlr = on_dlr,
                             .mo = on_mo,
                             .link_state = on_link,
                             .ready = on_ready,
                             .arg = &d};
    d.rc = &rc;
    struct bearer_link_conf lc;
    if (kannel) {
        /* In the baseline too: our box takes the PoRs (MO) the smsbox-route sends it. */
        bearer_link_conf_defaults(&lc, BEARER_KIND_KBOX);
        snprintf(lc.name, sizeof(lc.name), "kannel");
        lc.port = (uint16_t)kn.box_port;
        snprintf(lc.u.kbox.boxc_id, sizeof(lc.u.kbox.boxc_id), "%s", kn.boxc_id);
        snprintf(lc.u.kbox.smsc_id, sizeof(lc.u.kbox.smsc_id), "sim");
        /* the card answers its PoR to this address; the link supplies it */
        snprintf(lc.u.kbox.sender, sizeof(lc.u.kbox.sender), "10658");
    } else {
        bearer_link_conf_defaults(&lc, BEARER_KIND_CMPP);
        snprintf(lc.name, sizeof(lc.name), "ismg-sim");
        lc.port = (uint16_t)port;
        lc.u.cmpp.version = version;
        snprintf(lc.u.cmpp.sp_id, sizeof(lc.u.cmpp.sp_id), "901234");
        snprintf(lc.u.cmpp.secret, sizeof(lc.u.cmpp.secret), "otagw-test");
        snprintf(lc.u.cmpp.service_id, sizeof(lc.u.cmpp.service_id), "OTA");
        snprintf(lc.u.cmpp.src_id, sizeof(lc.u.cmpp.src_id), "10658");
    }
    snprintf(lc.host, sizeof(lc.host), "127.0.0.1");
    lc.window = window;
    lc.rate_per_s = rate;
    if (throttle_pause_ms) {
        lc.throttle_pause_ms = throttle_pause_ms;
    }
    if (kannel) {
        lc.reconnect_min_ms = 200;
        lc.reconnect_max_ms = 2000;
    }
    if (bearer_new(d.loop, &cbs, &d.b, &e) < 0 || bearer_add_link(d.b, &lc, &e) < 0) {
        fprintf(stderr, "bench-bearer: bearer: %s\n", e.msg);
        return 2;
    }
    ev_timer_init(&d.deadline, on_deadline, timeout_s, 0);
    struct rusage ru0, ru1;
    double elapsed = 0, bb_cpu0 = proc_cpu_s(kn.bb), bb_cpu1 = bb_cpu0;
    double sim_cpu0 = proc_cpu_s(sim_pid), sim_cpu1 = sim_cpu0, ss_sim_cpu = -1;
    getrusage(RUSAGE_SELF, &ru0);
    ru1 = ru0;
    bool run_bearer = !kannel || kbox;
    if (run_bearer) {
        d.phase = 1;
        if (kannel) {
            /* start the clock once bearerbox serves the link, as smsbox is served
             * when the baseline starts */
            if (settle_link(&d, 10.0) < 0) {
                fprintf(stderr, "bench-bearer: box link not served by bearerbox in 10 s\n");
                return 2;
            }
        }
        ev_timer_start(d.loop, &d.deadline);
        d.t0 = now_s();
        pump(&d, &rc);
        ev_run(d.loop, 0);
        elapsed = now_s() - d.t0;
        getrusage(RUSAGE_SELF, &ru1);
        bb_cpu1 = proc_cpu_s(kn.bb);
        sim_cpu1 = proc_cpu_s(sim_pid);
        ev_timer_stop(d.loop, &d.deadline);
    } else {
        d.finished = true; /* nothing asked of the bearer: it only takes MOs */
    }
    /* as of now: bearer_free() below reports parts still held as failed */
    bool bearer_finished = d.finished;

    /* the baseline: the same parts through smsbox's sendsms */
    struct sendsms ss = {.listen_fd = -1};
    double ss_elapsed = 0, ss_cpu_self = 0, ss_bb_cpu = -1, ss_sb_cpu = -1;
    bool ss_finished = false;
    if (sendsms) {
        size_t cap = 0;
        for (size_t i = 0; i < d.n_items; i++) {
            cap += 8;
        }
        ss.parts = calloc(cap, sizeof(*ss.parts));
        ss.src = "10658";
        pthread_mutex_init(&ss.lock, NULL);
        d.cntr_base = d.n_items; /* counters above the box run's: the cards see them rise */
        char msisdn[SIM_MSISDN_MAX + 1];
        uint8_t seid[SIM_SEID_MAX];
        size_t seid_len;
        for (size_t i = 0; ss.parts && i < d.n_items; i++) {
            bool scp80 = i >= rc.n_push;
            bool long_script = scp80 && rc.concat_every && (i - rc.n_push) % rc.concat_every == 0;
            if (build_item(&d, i, scp80, long_script) < 0 ||
                sim_pop_identity(d.keys, i, msisdn, seid, &seid_len) < 0) {
                fprintf(stderr, "bench-bearer: cannot build item %zu\n", i);
                return 2;
            }
            d.items[i].por_ok = false;
            for (int k = 0; k < d.n_cur_parts; k++) {
                struct ss_part *sp = &ss.parts[ss.n_parts++];
                snprintf(sp->dest, sizeof(sp->dest), "%s", msisdn);
                memcpy(sp->ud, d.parts[k].ud, d.parts[k].len);
                sp->ud_len = d.parts[k].len;
                sp->udhi = d.parts[k].udhi;
                sp->pid = scp80 ? 0x7f : 0x00;
                sp->dcs = scp80 ? 0xf6 : 0xf5;
            }
        }
        ss.dlr_got = calloc(ss.n_parts ? ss.n_parts : 1, 1);
        ss.sendsms_port = kn.sendsms_port;
        ss.listen_fd = ss_listen(&ss.dlr_port);
        if (!ss.parts || !ss.dlr_got || ss.listen_fd < 0) {
            fprintf(stderr, "bench-bearer: sendsms setup failed\n");
            return 2;
        }
        d.phase = 2;
        pthread_t lth, sth[256];
        struct rusage r0, r1;
        getrusage(RUSAGE_SELF, &r0);
        double bb0 = proc_cpu_s(kn.bb), sb0 = proc_cpu_s(kn.sb), sim0 = proc_cpu_s(sim_pid);
        double t0 = now_s();
        ss.t0 = t0;
        ss.trace = getenv("BENCH_TRACE") != NULL;
        bool threads_ok = pthread_create(&lth, NULL, ss_listener, &ss) == 0;
        unsigned started = 0;
        for (; threads_ok && started < sendsms_conns; started++) {
            if (pthread_create(&sth[started], NULL, ss_sender, &ss) != 0) {
                break;
            }
        }
        struct ss_wait sw = {.s = &ss};
        ev_timer_init(&sw.tick, on_ss_tick, 0.002, 0.002);
        ev_timer_start(d.loop, &sw.tick);
        ev_timer_set(&d.deadline, timeout_s, 0);
        ev_timer_start(d.loop, &d.deadline);
        if (threads_ok) {
            ev_run(d.loop, 0);
        }
        ev_timer_stop(d.loop, &sw.tick);
        ev_timer_stop(d.loop, &d.deadline);
        ss_finished = ss.accepted == ss.n_parts && ss.dlrs >= ss.accepted;
        ss_elapsed = (ss.t_last > t0 ? ss.t_last : now_s()) - t0;
        ss_bb_cpu = proc_cpu_s(kn.bb) - bb0;
        ss_sb_cpu = proc_cpu_s(kn.sb) - sb0;
        ss_sim_cpu = proc_cpu_s(sim_pid) - sim0;
        getrusage(RUSAGE_SELF, &r1);
        ss_cpu_self = tv_s(r0.ru_utime, r1.ru_utime) + tv_s(r0.ru_stime, r1.ru_stime);
        ss.stop = true;
        for (unsigned i = 0; i < started; i++) {
            pthread_join(sth[i], NULL);
        }
        if (threads_ok) {
            pthread_join(lth, NULL);
        }
        close(ss.listen_fd);
    }
    json_t *links = json_array();
    const char *lname;
    struct bearer_link_stats ls;
    for (size_t i = 0; bearer_link_stats(d.b, i, &lname, &ls); i++) {
        json_t *l = json_object();
        json_object_set_new(l, "name", json_string(lname));
        json_object_set_new(l, "submitted", json_integer((json_int_t)ls.submitted));
        json_object_set_new(l, "accepted", json_integer((json_int_t)ls.accepted));
        json_object_set_new(l, "rejected", json_integer((json_int_t)ls.rejected));
        json_object_set_new(l, "throttled", json_integer((json_int_t)ls.throttled));
        json_object_set_new(l, "resent", json_integer((json_int_t)ls.resent));
        json_object_set_new(l, "timeouts", json_integer((json_int_t)ls.timeouts));
        json_object_set_new(l, "dlrs", json_integer((json_int_t)ls.dlrs));
        json_object_set_new(l, "mos", json_integer((json_int_t)ls.mos));
        json_object_set_new(l, "reconnects", json_integer((json_int_t)ls.reconnects));
        json_object_set_new(l, "bad_pdus", json_integer((json_int_t)ls.bad_pdus));
        json_array_append_new(links, l);
    }
    bearer_free(d.b);

    if (kannel) {
        stop_child(&kn.sb, 30);
        stop_child(&kn.bb, 60);
    }
    kill(sim_pid, SIGTERM);
    int st = 0;
    waitpid(sim_pid, &st, 0);
    child_untrack(sim_pid);
    char cf[512];
    snprintf(cf, sizeof(cf), "%s/counts.json", dir);
    json_t *counts = json_load_file(cf, 0, NULL);

    /* what a run that did not finish was still waiting for */
    for (size_t i = 0, shown = 0; run_bearer && !bearer_finished && i < d.n_items && shown < 10;
         i++) {
        const struct item *it = &d.items[i];
        if (it->t_done == 0) {
            fprintf(stderr,
                    "bench-bearer: item %zu (token %zu<<8) incomplete: parts %u/%u ok, %u failed, "
                    "%u final DLRs, PoR %s\n",
                    i, i, it->parts_ok, it->n_parts, it->parts_failed, it->dlrs,
                    !it->scp80   ? "n/a"
                    : it->por_ok ? "ok"
                                 : "missing");
            shown++;
        }
    }

    /* latency percentiles over completed items */
    double *lat = calloc(d.n_items, sizeof(double));
    size_t nl = 0;
    for (size_t i = 0; i < d.n_items; i++) {
        if (d.items[i].t_done > 0) {
            lat[nl++] = (d.items[i].t_done - d.items[i].t_submit) * 1000.0;
        }
    }
    qsort(lat, nl, sizeof(*lat), cmp_double);
    json_t *o = json_object();
    json_object_set_new(o, "bearer", json_string(kannel ? "kannel-box" : "cmpp"));
    if (!kannel) {
        json_object_set_new(o, "version", json_string(version == 0x20 ? "2.0" : "3.0"));
    }
    json_object_set_new(o, "window", json_integer(window));
    json_object_set_new(o, "ismg_port", json_integer(port));
    json_object_set_new(o, "messages", json_integer((json_int_t)d.n_items));
    json_object_set_new(o, "push", json_integer((json_int_t)rc.n_push));
    json_object_set_new(o, "scp80", json_integer((json_int_t)rc.n_scp80));
    if (run_bearer) {
        json_object_set_new(o, "parts_submitted", json_integer((json_int_t)d.submitted_parts));
        json_object_set_new(o, "parts_accepted", json_integer((json_int_t)d.ok));
        json_object_set_new(o, "parts_retryable", json_integer((json_int_t)d.retryable));
        json_object_set_new(o, "parts_final", json_integer((json_int_t)d.final));
        json_object_set_new(o, "dlrs_matched", json_integer((json_int_t)d.dlrs));
        json_object_set_new(o, "dlrs_unmatched", json_integer((json_int_t)d.dlrs_unmatched));
        json_object_set_new(o, "mos", json_integer((json_int_t)d.mos));
        json_object_set_new(o, "pors_verified", json_integer((json_int_t)d.pors_ok));
        json_object_set_new(o, "pors_refused", json_integer((json_int_t)d.pors_bad));
        json_object_set_new(o, "pors_duplicate", json_integer((json_int_t)d.pors_dup));
        json_object_set_new(o, "messages_complete", json_integer((json_int_t)d.done_items));
        json_object_set_new(o, "link_ups", json_integer((json_int_t)d.link_ups));
        json_object_set_new(o, "link_downs", json_integer((json_int_t)d.link_downs));
        json_object_set_new(o, "finished", json_boolean(bearer_finished));
        json_object_set_new(o, "elapsed_s", json_real(elapsed));
        double rate_parts = elapsed > 0 ? (double)d.ok / elapsed : 0;
        if (kannel) {
            /* parts with ack and final DLR per second: up to the last of those */
            double t_ad = d.t_last_ackdlr > d.t0 ? d.t_last_ackdlr - d.t0 : elapsed;
            json_object_set_new(o, "kannel_box_msgs_per_s",
                                json_real(t_ad > 0 ? (double)d.ok / t_ad : 0));
            json_object_set_new(o, "kannel_box_ack_dlr_s", json_real(t_ad));
            json_object_set_new(o, "kannel_box_with_pors_msgs_per_s", json_real(rate_parts));
            json_object_set_new(o, "bearerbox_restarts", json_integer(kn.restarts));
            if (bb_cpu0 >= 0 && bb_cpu1 >= 0 && !kn.restarts) {
                json_object_set_new(o, "kannel_box_bearerbox_cpu_s", json_real(bb_cpu1 - bb_cpu0));
            }
        } else {
            json_object_set_new(o, "cmpp_msgs_per_s", json_real(rate_parts));
        }
        json_object_set_new(o, "latency_ms_p50", json_real(nl ? lat[nl / 2] : 0));
        json_object_set_new(o, "latency_ms_p99", json_real(nl ? lat[nl * 99 / 100] : 0));
        json_object_set_new(o, "sim_cpu_s", json_real(sim_cpu1 - sim_cpu0));
        json_object_set_new(o, "cpu_user_s", json_real(tv_s(ru0.ru_utime, ru1.ru_utime)));
        json_object_set_new(o, "cpu_sys_s", json_real(tv_s(ru0.ru_stime, ru1.ru_stime)));
    } else {
        json_object_set_new(o, "finished", json_boolean(ss_finished));
    }
    if (sendsms) {
        json_object_set_new(o, "sendsms_parts", json_integer((json_int_t)ss.n_parts));
        json_object_set_new(o, "sendsms_connections", json_integer(sendsms_conns));
        json_object_set_new(o, "sendsms_accepted", json_integer((json_int_t)ss.accepted));
        json_object_set_new(o, "sendsms_refused", json_integer((json_int_t)ss.http_other));
        json_object_set_new(o, "sendsms_retried", json_integer((json_int_t)ss.retried));
        json_object_set_new(o, "sendsms_http_connects", json_integer((json_int_t)ss.connects));
        json_object_set_new(o, "sendsms_dlr_http_connects",
                            json_integer((json_int_t)ss.dlr_connects));
        json_object_set_new(o, "sendsms_dlrs_matched", json_integer((json_int_t)ss.dlrs));
        json_object_set_new(o, "sendsms_dlrs_duplicate", json_integer((json_int_t)ss.dlrs_dup));
        json_object_set_new(o, "sendsms_dlrs_bad", json_integer((json_int_t)ss.dlrs_bad));
        json_object_set_new(o, "sendsms_pors_verified", json_integer((json_int_t)d.base_pors_ok));
        json_object_set_new(o, "sendsms_finished", json_boolean(ss_finished));
        json_object_set_new(o, "sendsms_elapsed_s", json_real(ss_elapsed));
        double ssr = ss_elapsed > 0 ? (double)ss.accepted / ss_elapsed : 0;
        json_object_set_new(o, "kannel_sendsms_msgs_per_s", json_real(ssr));
        json_object_set_new(o, "kannel_sendsms_bearerbox_cpu_s", json_real(ss_bb_cpu));
        json_object_set_new(o, "kannel_sendsms_smsbox_cpu_s", json_real(ss_sb_cpu));
        json_object_set_new(o, "kannel_sendsms_client_cpu_s", json_real(ss_cpu_self));
        json_object_set_new(o, "kannel_sendsms_sim_cpu_s", json_real(ss_sim_cpu));
        if (kbox) {
            double t_ad = d.t_last_ackdlr > d.t0 ? d.t_last_ackdlr - d.t0 : elapsed;
            double box = t_ad > 0 ? (double)d.ok / t_ad : 0;
            json_object_set_new(o, "kannel_box_vs_sendsms_ratio",
                                json_real(ssr > 0 ? box / ssr : 0));
        }
    }
    json_object_set_new(o, "links", links);
    json_object_set_new(o, "max_rss_kb", json_integer(ru1.ru_maxrss));
    json_object_set_new(o, "simulator", counts ? counts : json_null());
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(o);
    free(lat);
    free(d.items);
    free(d.ids);
    free(d.id_tok);
    free(ss.parts);
    free(ss.dlr_got);
    sim_pop_free(d.keys);
    ota_crypto_free(d.cx);
    bool ok = bearer_finished && (!sendsms || ss_finished);
    if ((ok || !kannel) && !getenv("BENCH_KEEP")) {
        nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    } else {
        fprintf(stderr, "bench-bearer: files kept in %s\n", dir);
    }
    return ok ? 0 : 1;
}
