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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

static void on_result(void *arg, const struct bearer_submit_result *r)
{
    struct drv *d = arg;
    struct item *it = &d->items[r->token >> 8];
    if (r->status == BEARER_SUBMIT_OK) {
        d->ok++;
        it->parts_ok++;
        id_put(d, r->msg_id, r->token);
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
    if (!id_get(d, dl->msg_id, &tok)) {
        d->dlrs_unmatched++;
        return 0;
    }
    if (!dl->final) {
        return 0;
    }
    d->dlrs++;
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
    struct sim_scp80_keyset ks;
    struct ota_err e;
    static const uint8_t tar[3] = {0, 0, 0};
    if (!it->scp80 || sim_pop_scp80_keys(d->keys, se, tar, &ks, &e) < 0) {
        d->pors_bad++;
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
        d->pors_bad++;
        fprintf(stderr, "bench-bearer: PoR from %s refused: %s\n", m->orig, e.msg);
    } else if (it->por_ok) {
        /* At-least-once: an MO not acknowledged before a drop comes again. */
        d->pors_dup++;
    } else {
        d->pors_ok++;
        it->por_ok = true;
    }
    ota_key_wipe(&ks.kic);
    ota_key_wipe(&ks.kid);
    check_done(d, it);
    return 0;
}

static void on_link(void *arg, const char *link, enum bearer_link_state from,
                    enum bearer_link_state to, const char *why)
{
    struct drv *d = arg;
    (void)link;
    (void)from;
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
        struct ota_scp80_cmd cmd = {.kic = 0x12, .kid = 0x12, .cntr = 1 + i};
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
                       const char *faults, int *ismg_port)
{
    char pf[512], cf[512], gen[32];
    snprintf(pf, sizeof(pf), "%s/ports.json", dir);
    snprintf(cf, sizeof(cf), "%s/counts.json", dir);
    snprintf(gen, sizeof(gen), "%zu", n_se);
    pid_t pid = fork();
    if (pid == 0) {
        const char *argv[32];
        int a = 0;
        argv[a++] = sim;
        argv[a++] = "--ismg";
        argv[a++] = "127.0.0.1:0";
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
            json_decref(j);
            if (*ismg_port > 0) {
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
               "Drives the CMPP bearer against otagw-sim on loopback; prints one JSON object.\n");
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
        {NULL, 0, NULL, 0},
    };
    struct run_conf rc = {.n_push = 10000, .n_scp80 = 10000, .concat_every = 10};
    unsigned window = 16;
    uint8_t version = 0x30;
    const char *faults = NULL;
    char sim[1024] = "";
    double timeout_s = 120, rate = 0;
    unsigned throttle_pause_ms = 0;
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
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (rc.n_push + rc.n_scp80 == 0 || rc.n_push + rc.n_scp80 > MAX_MSGS || window == 0) {
        fprintf(stderr, "bench-bearer: 1..%d messages and a window >= 1\n", MAX_MSGS);
        return 2;
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
    int port = 0;
    pid_t sim_pid = start_sim(sim, dir, seed_hex, d.n_items, faults, &port);
    if (sim_pid < 0) {
        fprintf(stderr, "bench-bearer: could not start %s\n", sim);
        return 2;
    }
    d.loop = ev_default_loop(0);
    struct bearer_cbs cbs = {.submit_result = on_result,
                             .dlr = on_dlr,
                             .mo = on_mo,
                             .link_state = on_link,
                             .ready = on_ready,
                             .arg = &d};
    d.rc = &rc;
    struct bearer_link_conf lc;
    bearer_link_conf_defaults(&lc, BEARER_KIND_CMPP);
    snprintf(lc.name, sizeof(lc.name), "ismg-sim");
    snprintf(lc.host, sizeof(lc.host), "127.0.0.1");
    lc.port = (uint16_t)port;
    lc.window = window;
    lc.rate_per_s = rate;
    if (throttle_pause_ms) {
        lc.throttle_pause_ms = throttle_pause_ms;
    }
    lc.u.cmpp.version = version;
    snprintf(lc.u.cmpp.sp_id, sizeof(lc.u.cmpp.sp_id), "901234");
    snprintf(lc.u.cmpp.secret, sizeof(lc.u.cmpp.secret), "otagw-test");
    snprintf(lc.u.cmpp.service_id, sizeof(lc.u.cmpp.service_id), "OTA");
    snprintf(lc.u.cmpp.src_id, sizeof(lc.u.cmpp.src_id), "10658");
    if (bearer_new(d.loop, &cbs, &d.b, &e) < 0 || bearer_add_link(d.b, &lc, &e) < 0) {
        fprintf(stderr, "bench-bearer: bearer: %s\n", e.msg);
        kill(sim_pid, SIGKILL);
        return 2;
    }
    ev_timer_init(&d.deadline, on_deadline, timeout_s, 0);
    ev_timer_start(d.loop, &d.deadline);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    d.t0 = now_s();
    pump(&d, &rc);
    ev_run(d.loop, 0);
    double elapsed = now_s() - d.t0;
    getrusage(RUSAGE_SELF, &ru1);
    ev_timer_stop(d.loop, &d.deadline);
    bearer_free(d.b);

    kill(sim_pid, SIGTERM);
    int st = 0;
    waitpid(sim_pid, &st, 0);
    char cf[512];
    snprintf(cf, sizeof(cf), "%s/counts.json", dir);
    json_t *counts = json_load_file(cf, 0, NULL);

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
    json_object_set_new(o, "version", json_string(version == 0x20 ? "2.0" : "3.0"));
    json_object_set_new(o, "window", json_integer(window));
    json_object_set_new(o, "messages", json_integer((json_int_t)d.n_items));
    json_object_set_new(o, "push", json_integer((json_int_t)rc.n_push));
    json_object_set_new(o, "scp80", json_integer((json_int_t)rc.n_scp80));
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
    json_object_set_new(o, "finished", json_boolean(d.finished));
    json_object_set_new(o, "elapsed_s", json_real(elapsed));
    json_object_set_new(o, "cmpp_msgs_per_s", json_real(elapsed > 0 ? (double)d.ok / elapsed : 0));
    json_object_set_new(o, "latency_ms_p50", json_real(nl ? lat[nl / 2] : 0));
    json_object_set_new(o, "latency_ms_p99", json_real(nl ? lat[nl * 99 / 100] : 0));
    json_object_set_new(o, "cpu_user_s",
                        json_real((double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                                  (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6));
    json_object_set_new(o, "cpu_sys_s",
                        json_real((double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                                  (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6));
    json_object_set_new(o, "max_rss_kb", json_integer(ru1.ru_maxrss));
    json_object_set_new(o, "simulator", counts ? counts : json_null());
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(o);
    free(lat);
    free(d.items);
    free(d.ids);
    free(d.id_tok);
    sim_pop_free(d.keys);
    ota_crypto_free(d.cx);
    unlink(cf);
    snprintf(cf, sizeof(cf), "%s/ports.json", dir);
    unlink(cf);
    rmdir(dir);
    return d.finished ? 0 : 1;
}
