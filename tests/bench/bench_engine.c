/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-engine: the task engine (queue/engine.h) against otagw-sim over
 * loopback, and the two halves of the crash test. Modes:
 *
 *   (default)     throughput: starts otagw-sim (ISMG role, a generated
 *                 population with a fixed seed), registers the SEs, attaches
 *                 the CMPP bearer, submits --tasks SCP80 tasks over distinct
 *                 SEs from a timer (at most --max-outstanding not final) and
 *                 runs until every task is final. Prints one JSON object:
 *                 tasks_per_s (done / first accept .. last done), accept ->
 *                 done latency percentiles, commit figures, CPU of both
 *                 processes, peak RSS and the simulator's card counts.
 *   --queued-rss  no simulator: registers --ses SEs and queues --queued tasks
 *                 due far in the future, then reports the RSS that costs and
 *                 how long a reopen (rebuild from the store) takes.
 *   --run DIR     the crash test's runner: (re)opens DIR/engine.db against
 *                 the simulator whose ports are in DIR/ports.json (started by
 *                 the test script and alive across our kill -9s), submits
 *                 what DIR/plan.json asks for that the store does not hold
 *                 yet, logs each accepted id to DIR/accepted.log, and exits 0
 *                 once every task is final.
 *   --check DIR   opens the store alone and judges what the runs left: every
 *                 accepted task final, one final transition per task, never
 *                 two active tasks on one SE, one SCP80 counter reserved per
 *                 dispatch. Prints a JSON summary; exit 1 names violations.
 *
 * The SEs' SCP80 keys come from the same generated population
 * (sim_pop_scp80_keys), as bench-bearer does. Every child is killed on exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "ota/ota.h"
#include "queue/engine.h"
#include "queue/store.h"
#include "queue/task.h"
#include "smpp/bearer.h"
#include "tests/sim/sim.h"

#define BENCH_MSISDN_BASE 8613800000000ull
#define BENCH_SEED_HEX "000102030405060708090a0b0c0d0e0f"
#define BENCH_KVN 1 /* KIc/KID 0x12: AES, key version 1 */
#define BENCH_DAY_MS (24ll * 3600 * 1000)

/* GET DATA 0066; the long one adds a STORE DATA of 200 octets so the packet needs 2 SMS. */
#define SCRIPT_SHORT "80CA006600"
#define STORE_DATA_LEN 200

struct opts {
    size_t n_tasks, n_ses, concat_every, batch, max_outstanding;
    unsigned window;
    double tick_s, timeout_s;
    bool durable;
    /* --queued-rss */
    bool queued_rss;
    size_t n_queued, n_reg_ses;
    /* crash test */
    const char *run_dir, *check_dir;
    char sim[1024];
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int parse_seed(const char *hex, uint8_t seed[16])
{
    memset(seed, 0, 16);
    size_t n = strlen(hex);
    if (n == 0 || n > 32 || n % 2) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            return -EINVAL;
        }
        seed[i] = (uint8_t)v;
    }
    return 0;
}

/* The generated population's identities (tests/sim/sim.h): "SE" + 14 digits, base + i. */
static void se_identity(uint64_t i, char seid[STORE_SEID_MAX + 1],
                        char msisdn[STORE_MSISDN_MAX + 1])
{
    snprintf(seid, STORE_SEID_MAX + 1, "SE%014" PRIu64, i);
    snprintf(msisdn, STORE_MSISDN_MAX + 1, "%" PRIu64, (uint64_t)(BENCH_MSISDN_BASE + i));
}

static int se_index(const char *seid, uint64_t *i)
{
    if (strncmp(seid, "SE", 2) != 0 || strlen(seid) != 16) {
        return -EINVAL;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(seid + 2, &end, 10);
    if (errno || *end) {
        return -EINVAL;
    }
    *i = v;
    return 0;
}

/* Peak (VmHWM) or current (VmRSS) resident set of this process in MB; -1 when unknown. */
static double self_rss_mb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        return -1;
    }
    char line[256];
    double mb = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, field, fl) && line[fl] == ':') {
            mb = (double)strtoull(line + fl + 1, NULL, 10) / 1024.0;
            break;
        }
    }
    fclose(f);
    return mb;
}

/*
 * CPU seconds (user, system) of a live process: fields 14 and 15 of
 * /proc/PID/stat, counted after the ")" that closes the command name (which
 * may hold spaces). false when unknown.
 */
static bool proc_cpu(pid_t pid, double *user_s, double *sys_s)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return false;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return false;
    }
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long ticks[2] = {0, 0};
    int field = 2; /* the ")" ends field 2 */
    while (p && *p && field < 15) {
        p = strchr(p, ' ');
        if (!p) {
            break;
        }
        field++;
        p++;
        if (field == 14 || field == 15) {
            ticks[field - 14] = strtoull(p, NULL, 10);
        }
    }
    if (field < 15) {
        return false;
    }
    double hz = (double)sysconf(_SC_CLK_TCK);
    *user_s = (double)ticks[0] / hz;
    *sys_s = (double)ticks[1] / hz;
    return true;
}

static double tv_diff_s(struct timeval a, struct timeval b)
{
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_usec - a.tv_usec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- the simulator child ------------------------------------------------------------ */

static pid_t g_sim_pid;

static void kill_sim(void)
{
    if (g_sim_pid > 0) {
        kill(g_sim_pid, SIGKILL);
        waitpid(g_sim_pid, NULL, 0);
        g_sim_pid = 0;
    }
}

static void on_fatal_signal(int sig)
{
    if (g_sim_pid > 0) {
        kill(g_sim_pid, SIGKILL);
    }
    _exit(128 + sig);
}

/* Start otagw-sim's ISMG role on an ephemeral port; 0 and *port, or -1. */
static int sim_start(const char *sim, const char *dir, size_t n_ses, int *port)
{
    char pf[512], cf[512], gen[32];
    snprintf(pf, sizeof(pf), "%s/ports.json", dir);
    snprintf(cf, sizeof(cf), "%s/counts.json", dir);
    snprintf(gen, sizeof(gen), "%zu", n_ses);
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        const char *argv[] = {sim,
                              "--ismg",
                              "127.0.0.1:0",
                              "--generate",
                              gen,
                              "--msisdn-base",
                              "8613800000000",
                              "--seed",
                              BENCH_SEED_HEX,
                              "--sp-id",
                              "901234",
                              "--secret",
                              "otagw-test",
                              "--port-file",
                              pf,
                              "--counts-file",
                              cf,
                              NULL};
        execv(sim, (char *const *)argv);
        _exit(127);
    }
    g_sim_pid = pid;
    for (int i = 0; i < 400; i++) { /* 20 s at most: a big population takes a while */
        json_t *j = json_load_file(pf, 0, NULL);
        if (j) {
            *port = (int)json_integer_value(json_object_get(j, "ismg"));
            json_decref(j);
            if (*port > 0) {
                return 0;
            }
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            g_sim_pid = 0;
            return -1;
        }
        usleep(50000);
    }
    kill_sim();
    return -1;
}

/* SIGTERM (the simulator writes its counts), 10 s, then SIGKILL; the counts or NULL. */
static json_t *sim_stop(const char *dir)
{
    if (g_sim_pid > 0) {
        kill(g_sim_pid, SIGTERM);
        double end = mono_s() + 10;
        while (waitpid(g_sim_pid, NULL, WNOHANG) == 0 && mono_s() < end) {
            usleep(20000);
        }
        kill_sim();
    }
    char cf[512];
    snprintf(cf, sizeof(cf), "%s/counts.json", dir);
    return json_load_file(cf, 0, NULL);
}

/* ---- engine plumbing shared by the modes -------------------------------------------- */

struct bench;

struct task_rec {
    int64_t id;
    double t_accept, t_final;
    bool accepted, final;
};

/* task id -> index into bench.tasks, open addressing (ids are unique). */
struct idmap {
    int64_t *keys;
    uint32_t *vals;
    size_t cap; /* power of two */
};

static int idmap_init(struct idmap *m, size_t n)
{
    m->cap = 16;
    while (m->cap < 2 * n) {
        m->cap <<= 1;
    }
    m->keys = calloc(m->cap, sizeof(*m->keys));
    m->vals = calloc(m->cap, sizeof(*m->vals));
    return m->keys && m->vals ? 0 : -ENOMEM;
}

static void idmap_fini(struct idmap *m)
{
    free(m->keys);
    free(m->vals);
}

static void idmap_put(struct idmap *m, int64_t id, uint32_t v)
{
    size_t i = splitmix64((uint64_t)id) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != id) {
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = id;
    m->vals[i] = v;
}

static bool idmap_get(const struct idmap *m, int64_t id, uint32_t *v)
{
    size_t i = splitmix64((uint64_t)id) & (m->cap - 1);
    while (m->keys[i]) {
        if (m->keys[i] == id) {
            *v = m->vals[i];
            return true;
        }
        i = (i + 1) & (m->cap - 1);
    }
    return false;
}

struct bench {
    const struct opts *o;
    struct ev_loop *loop;
    struct eng *e;
    struct bearer *b;
    struct sim_pop *pop; /* the generated population: keys of SE i */
    uint64_t n_pop;
    /*
     * Keys derived once per SE (TAR 000000): the daemon looks keys up in its
     * key store, it does not run the simulator's AES-CMAC derivation, whose
     * cost would otherwise be charged to the engine twice per task.
     */
    struct sim_scp80_keyset *key_cache;
    uint8_t *key_cached;
    char long_params[64 + 2 * (10 + STORE_DATA_LEN)];

    /* throughput */
    struct task_rec *tasks;
    struct idmap ids;
    size_t n_tasks, next, n_accepted, n_accept_failed, n_final, n_done, n_submit_errors;
    size_t n_final_unknown, n_final_twice;
    uint64_t states[TASK_STATE__COUNT], reasons[TASK_REASON__COUNT];
    double t_first_accept, t_last_final;
    ev_timer tick, deadline;
    bool timed_out;

    /* --run */
    const char *dir;
    uint64_t plan_tasks, submitted; /* tasks the store holds (ordinals 0..submitted-1) */
    int64_t max_id;                 /* largest task id known to exist */
    FILE *acc_log;
    size_t acc_pending, acc_logged;
    ev_check acc_flush;
    ev_timer check_tick;
    bool finished;
};

static void bench_log(void *arg, int level, const char *msg)
{
    (void)arg;
    if (level <= 4 || getenv("BENCH_TRACE")) {
        fprintf(stderr, "engine[%d]: %s\n", level, msg);
    }
}

/* The simulator's card keys for SE "SE<i>", TAR as asked; SPI 16 39, KIc/KID 0x12 (AES, KVN 1). */
static int hook_keys(void *arg, const char *seid, const uint8_t tar[3], struct eng_scp80_keys *out,
                     struct ota_err *err)
{
    struct bench *bn = arg;
    uint64_t i;
    if (se_index(seid, &i) < 0 || i >= bn->n_pop) {
        return ota_fail(err, -ENOENT, OTA_ERR_KEY, "no keys for SE %s", seid);
    }
    static const uint8_t tar0[3] = {0, 0, 0};
    bool cacheable = bn->key_cache && memcmp(tar, tar0, 3) == 0;
    struct sim_scp80_keyset ks;
    if (cacheable && bn->key_cached[i]) {
        ks = bn->key_cache[i];
    } else {
        int rc = sim_pop_scp80_keys(bn->pop, i, tar, &ks, err);
        if (rc < 0) {
            return rc;
        }
        if (cacheable) {
            bn->key_cache[i] = ks;
            bn->key_cached[i] = 1;
        }
    }
    memset(out, 0, sizeof(*out));
    out->spi[0] = 0x16;
    out->spi[1] = 0x39;
    out->kic = 0x12;
    out->kid = 0x12;
    out->cc_len = 8;
    out->kic_key = ks.kic;
    out->kid_key = ks.kid;
    ota_key_wipe(&ks.kic);
    ota_key_wipe(&ks.kid);
    return 0;
}

static int key_cache_init(struct bench *bn)
{
    bn->key_cache = calloc(bn->n_pop, sizeof(*bn->key_cache));
    bn->key_cached = calloc(bn->n_pop, 1);
    return bn->key_cache && bn->key_cached ? 0 : -ENOMEM;
}

static void key_cache_free(struct bench *bn)
{
    for (uint64_t i = 0; bn->key_cache && i < bn->n_pop; i++) {
        ota_key_wipe(&bn->key_cache[i].kic);
        ota_key_wipe(&bn->key_cache[i].kid);
    }
    free(bn->key_cache);
    free(bn->key_cached);
    bn->key_cache = NULL;
    bn->key_cached = NULL;
}

static void build_long_params(struct bench *bn)
{
    /* GET DATA, then STORE DATA (P1 90: last block) with 200 octets of 5A */
    size_t o = (size_t)snprintf(bn->long_params, sizeof(bn->long_params),
                                "{\"tar\":\"000000\",\"script\":\"" SCRIPT_SHORT "80E29000C8");
    for (int k = 0; k < STORE_DATA_LEN; k++) {
        bn->long_params[o++] = '5';
        bn->long_params[o++] = 'A';
    }
    snprintf(bn->long_params + o, sizeof(bn->long_params) - o, "\"}");
}

static const char short_params[] = "{\"tar\":\"000000\",\"script\":\"" SCRIPT_SHORT "\"}";

static void conf_base(struct eng_conf *c, const char *db, bool durable)
{
    eng_conf_defaults(c);
    c->db_path = db;
    c->durable = durable;
    c->want_dlr = true;
    c->push_wait_pull = false;
}

static int bearer_attach(struct bench *bn, int port, unsigned window, double rate_per_s,
                         bool fast_reconnect)
{
    struct ota_err err = {0};
    struct bearer_cbs cbs;
    memset(&cbs, 0, sizeof(cbs));
    eng_bearer_cbs(bn->e, &cbs);
    struct bearer_link_conf lc;
    bearer_link_conf_defaults(&lc, BEARER_KIND_CMPP);
    snprintf(lc.name, sizeof(lc.name), "ismg-sim");
    snprintf(lc.host, sizeof(lc.host), "127.0.0.1");
    lc.port = (uint16_t)port;
    lc.window = window;
    lc.rate_per_s = rate_per_s; /* 0 = unlimited: the engine is what is measured */
    lc.u.cmpp.version = 0x30;
    snprintf(lc.u.cmpp.sp_id, sizeof(lc.u.cmpp.sp_id), "901234");
    snprintf(lc.u.cmpp.secret, sizeof(lc.u.cmpp.secret), "otagw-test");
    snprintf(lc.u.cmpp.service_id, sizeof(lc.u.cmpp.service_id), "OTA");
    snprintf(lc.u.cmpp.src_id, sizeof(lc.u.cmpp.src_id), "10658");
    if (fast_reconnect) {
        lc.reconnect_min_ms = 100;
        lc.reconnect_max_ms = 1000;
    }
    if (bearer_new(bn->loop, &cbs, &bn->b, &err) < 0 || bearer_add_link(bn->b, &lc, &err) < 0) {
        fprintf(stderr, "bench-engine: bearer: %s\n", err.msg);
        return -1;
    }
    eng_use_bearer(bn->e, bn->b);
    return 0;
}

/* Shut down in the order the callbacks allow: parts the bearer still holds are reported
 * to the engine (bearer_shutdown), then the engine commits and closes, then the bearer goes. */
static void teardown(struct bench *bn)
{
    if (bn->b) {
        bearer_shutdown(bn->b);
    }
    if (bn->e) {
        eng_close(bn->e);
        bn->e = NULL;
    }
    if (bn->b) {
        bearer_free(bn->b);
        bn->b = NULL;
    }
}

static bool link_up(const struct bench *bn)
{
    const char *name;
    struct bearer_link_stats st;
    return bn->b && bearer_link_stats(bn->b, 0, &name, &st) && st.state == BEARER_LINK_UP;
}

/* Turn the loop (5 ms naps) until the bearer's link is up, limit_s at most. */
static int wait_link_up(struct bench *bn, double limit_s)
{
    for (double end = mono_s() + limit_s; !link_up(bn) && mono_s() < end;) {
        ev_run(bn->loop, EVRUN_NOWAIT);
        usleep(5000);
    }
    return link_up(bn) ? 0 : -1;
}

static json_t *stats_json(const struct eng_stats *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "accepted", json_integer((json_int_t)s->accepted));
    json_object_set_new(o, "dispatched", json_integer((json_int_t)s->dispatched));
    json_object_set_new(o, "parts_sent", json_integer((json_int_t)s->parts_sent));
    json_object_set_new(o, "done", json_integer((json_int_t)s->done));
    json_object_set_new(o, "failed", json_integer((json_int_t)s->failed));
    json_object_set_new(o, "expired", json_integer((json_int_t)s->expired));
    json_object_set_new(o, "cancelled", json_integer((json_int_t)s->cancelled));
    json_object_set_new(o, "retries", json_integer((json_int_t)s->retries));
    json_object_set_new(o, "dlrs", json_integer((json_int_t)s->dlrs));
    json_object_set_new(o, "pors", json_integer((json_int_t)s->pors));
    json_object_set_new(o, "late", json_integer((json_int_t)s->late));
    json_object_set_new(o, "duplicate", json_integer((json_int_t)s->duplicate));
    json_object_set_new(o, "unknown", json_integer((json_int_t)s->unknown));
    json_object_set_new(o, "mismatched", json_integer((json_int_t)s->mismatched));
    json_object_set_new(o, "illegal_transitions", json_integer((json_int_t)s->illegal_transitions));
    json_object_set_new(o, "commits", json_integer((json_int_t)s->commits));
    json_object_set_new(o, "commit_s", json_real(s->commit_s));
    json_object_set_new(o, "queued", json_integer((json_int_t)s->queued));
    json_object_set_new(o, "active", json_integer((json_int_t)s->active));
    json_object_set_new(o, "waiting_bearer", json_integer((json_int_t)s->waiting_bearer));
    json_object_set_new(o, "stopped_error", json_boolean(s->run == ENG_STOPPED_ERROR));
    return o;
}

/* {name: count} of the non-zero (or all, with zeros) counts of an enum, named by name_of. */
static json_t *enum_counts_json(const uint64_t *counts, int n, const char *(*name_of)(int),
                                bool zeros)
{
    json_t *o = json_object();
    for (int i = 0; i < n; i++) {
        if (counts[i] || zeros) {
            json_object_set_new(o, name_of(i), json_integer((json_int_t)counts[i]));
        }
    }
    return o;
}

static const char *state_name_of(int i)
{
    return task_state_name((enum task_state)i);
}

static const char *reason_name_of(int i)
{
    return task_reason_name((enum task_reason)i);
}

static void print_json(json_t *o)
{
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    fflush(stdout);
}

/* ---- throughput ------------------------------------------------------------------------ */

static void tp_on_accept(void *arg, int64_t id, int rc)
{
    struct bench *bn = arg;
    uint32_t k;
    if (!idmap_get(&bn->ids, id, &k)) {
        fprintf(stderr, "bench-engine: accept of unknown task %" PRId64 "\n", id);
        return;
    }
    struct task_rec *t = &bn->tasks[k];
    if (rc < 0) {
        /* its batch failed: the task does not exist, it never becomes final */
        bn->n_accept_failed++;
        fprintf(stderr, "bench-engine: task %" PRId64 " not accepted: %s\n", id, strerror(-rc));
        return;
    }
    t->accepted = true;
    t->t_accept = mono_s();
    if (bn->n_accepted++ == 0) {
        bn->t_first_accept = t->t_accept;
    }
}

static void tp_on_final(void *arg, const struct eng_task_view *v)
{
    struct bench *bn = arg;
    uint32_t k;
    if (!idmap_get(&bn->ids, v->id, &k)) {
        bn->n_final_unknown++;
        return;
    }
    struct task_rec *t = &bn->tasks[k];
    if (t->final) {
        bn->n_final_twice++; /* the final hook must come once per task */
        return;
    }
    t->final = true;
    t->t_final = mono_s();
    bn->t_last_final = t->t_final;
    bn->states[v->state < TASK_STATE__COUNT ? v->state : TASK_FAILED]++;
    if (v->state == TASK_DONE) {
        bn->n_done++;
    } else if (v->reason < TASK_REASON__COUNT) {
        bn->reasons[v->reason]++;
        if (bn->n_tasks - bn->n_done < 20 || getenv("BENCH_TRACE")) {
            fprintf(stderr, "bench-engine: task %" PRId64 " (%s) %s: %s %s\n", v->id, v->seid,
                    task_state_name(v->state), task_reason_name(v->reason),
                    v->reason_text ? v->reason_text : "");
        }
    }
    if (++bn->n_final == bn->n_tasks) {
        ev_break(bn->loop, EVBREAK_ALL);
    }
}

static void tp_on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct bench *bn = w->data;
    const struct opts *o = bn->o;
    struct ota_err err = {0};
    char seid[STORE_SEID_MAX + 1], msisdn[STORE_MSISDN_MAX + 1];
    for (size_t n = 0; n < o->batch && bn->next < bn->n_tasks &&
                       bn->next - bn->n_final - bn->n_accept_failed < o->max_outstanding;
         n++) {
        size_t i = bn->next;
        se_identity(i % o->n_ses, seid, msisdn);
        bool is_long = o->concat_every && i % o->concat_every == o->concat_every - 1;
        struct eng_task_spec spec = {
            .seid = seid,
            .op = TASK_OP_SCP80,
            .channel = TASK_CH_SCP80,
            .params = is_long ? bn->long_params : short_params,
        };
        int64_t id = 0;
        if (eng_submit(bn->e, &spec, tp_on_accept, bn, &id, &err) < 0) {
            fprintf(stderr, "bench-engine: submit %zu: %s\n", i, err.msg);
            bn->n_submit_errors++;
            ev_break(bn->loop, EVBREAK_ALL);
            return;
        }
        bn->tasks[i].id = id;
        idmap_put(&bn->ids, id, (uint32_t)i);
        bn->next++;
    }
    if (bn->next == bn->n_tasks) {
        ev_timer_stop(bn->loop, w);
    }
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct bench *bn = w->data;
    bn->timed_out = true;
    ev_break(loop, EVBREAK_ALL);
}

static int register_ses(struct bench *bn, uint64_t n, size_t flush_every)
{
    struct ota_err err = {0};
    char seid[STORE_SEID_MAX + 1], msisdn[STORE_MSISDN_MAX + 1];
    for (uint64_t i = 0; i < n; i++) {
        se_identity(i, seid, msisdn);
        if (eng_se_register(bn->e, seid, msisdn, "", &err) < 0) {
            fprintf(stderr, "bench-engine: register %s: %s\n", seid, err.msg);
            return -1;
        }
        if ((i + 1) % flush_every == 0) {
            if (eng_flush(bn->e, &err) < 0) {
                fprintf(stderr, "bench-engine: commit after %" PRIu64 " SEs: %s\n", i + 1, err.msg);
                return -1;
            }
            if (getenv("BENCH_TRACE") || (i + 1) % 1000000 == 0) {
                fprintf(stderr, "bench-engine: %" PRIu64 " SEs registered\n", i + 1);
            }
        }
    }
    if (eng_flush(bn->e, &err) < 0) {
        fprintf(stderr, "bench-engine: commit of the SEs: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Card counts the judges need, from the simulator's counts JSON. */
static json_t *sim_cards(json_t *counts, uint64_t *reused)
{
    json_t *cards = json_object_get(counts, "cards");
    json_t *o = json_object();
    static const char *const keys[] = {"counter_reused", "counter_refused", "bad_cc",
                                       "commands_ok",    "pushes",          "invalid_sms",
                                       "mt_complete",    "por_sent"};
    for (size_t i = 0; i < OTA_ARRAY_SIZE(keys); i++) {
        json_t *v = json_object_get(cards, keys[i]);
        json_object_set_new(o, keys[i], v ? json_integer(json_integer_value(v)) : json_null());
    }
    json_t *r = json_object_get(cards, "counter_reused");
    *reused = r ? (uint64_t)json_integer_value(r) : UINT64_MAX;
    return o;
}

static int run_throughput(const struct opts *o)
{
    char dir[] = "/tmp/bench-engine.XXXXXX";
    if (!mkdtemp(dir)) {
        return 2;
    }
    struct bench bn = {.o = o, .n_tasks = o->n_tasks, .n_pop = o->n_ses};
    struct ota_err err = {0};
    uint8_t seed[16];
    if (parse_seed(BENCH_SEED_HEX, seed) < 0 ||
        sim_pop_generate(o->n_ses, BENCH_MSISDN_BASE, seed, &bn.pop, &err) < 0) {
        fprintf(stderr, "bench-engine: population: %s\n", err.msg);
        return 2;
    }
    /* our identities must be the simulator's */
    char msisdn[SIM_MSISDN_MAX + 1], seid[STORE_SEID_MAX + 1], ms2[STORE_MSISDN_MAX + 1];
    uint8_t sraw[SIM_SEID_MAX];
    size_t slen = 0;
    se_identity(o->n_ses - 1, seid, ms2);
    if (sim_pop_identity(bn.pop, o->n_ses - 1, msisdn, sraw, &slen) < 0 || slen != strlen(seid) ||
        memcmp(sraw, seid, slen) || strcmp(msisdn, ms2)) {
        fprintf(stderr, "bench-engine: SE identities differ from the simulator's\n");
        return 2;
    }
    bn.tasks = calloc(o->n_tasks, sizeof(*bn.tasks));
    if (!bn.tasks || idmap_init(&bn.ids, o->n_tasks) < 0 || key_cache_init(&bn) < 0) {
        return 2;
    }
    build_long_params(&bn);
    int port = 0;
    if (sim_start(o->sim, dir, o->n_ses, &port) < 0) {
        fprintf(stderr, "bench-engine: could not start %s\n", o->sim);
        return 2;
    }
    bn.loop = ev_default_loop(0);
    char db[600];
    snprintf(db, sizeof(db), "%s/engine.db", dir);
    struct eng_conf c;
    conf_base(&c, db, o->durable);
    struct eng_hooks h = {
        .scp80_keys = hook_keys, .final = tp_on_final, .log = bench_log, .arg = &bn};
    if (eng_open(bn.loop, &c, &h, &bn.e, &err) < 0) {
        fprintf(stderr, "bench-engine: eng_open: %s\n", err.msg);
        return 2;
    }
    double t_reg = mono_s();
    if (register_ses(&bn, o->n_ses, 100000) < 0) {
        return 2;
    }
    t_reg = mono_s() - t_reg;
    if (bearer_attach(&bn, port, o->window, 0, false) < 0 || wait_link_up(&bn, 10) < 0) {
        fprintf(stderr, "bench-engine: the CMPP link to the simulator did not come up\n");
        return 2;
    }
    struct eng_stats s0, s1;
    eng_stats(bn.e, &s0);
    struct rusage ru0, ru1;
    double su0 = 0, ss0 = 0, su1 = 0, ss1 = 0;
    proc_cpu(g_sim_pid, &su0, &ss0);
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = mono_s();
    ev_timer_init(&bn.tick, tp_on_tick, 0, o->tick_s);
    bn.tick.data = &bn;
    ev_timer_start(bn.loop, &bn.tick);
    ev_timer_init(&bn.deadline, on_deadline, o->timeout_s, 0);
    bn.deadline.data = &bn;
    ev_timer_start(bn.loop, &bn.deadline);
    ev_run(bn.loop, 0);
    double wall = mono_s() - t0;
    getrusage(RUSAGE_SELF, &ru1);
    proc_cpu(g_sim_pid, &su1, &ss1);
    ev_timer_stop(bn.loop, &bn.tick);
    ev_timer_stop(bn.loop, &bn.deadline);
    eng_stats(bn.e, &s1);
    json_t *links = json_array();
    const char *lname;
    struct bearer_link_stats ls;
    for (size_t i = 0; bearer_link_stats(bn.b, i, &lname, &ls); i++) {
        json_array_append_new(
            links, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", lname, "submitted",
                             (json_int_t)ls.submitted, "accepted", (json_int_t)ls.accepted,
                             "throttled", (json_int_t)ls.throttled, "resent", (json_int_t)ls.resent,
                             "dlrs", (json_int_t)ls.dlrs, "mos", (json_int_t)ls.mos, "reconnects",
                             (json_int_t)ls.reconnects));
    }
    teardown(&bn);
    json_t *counts = sim_stop(dir);

    double *lat = calloc(o->n_tasks ? o->n_tasks : 1, sizeof(double));
    size_t nl = 0;
    for (size_t i = 0; lat && i < o->n_tasks; i++) {
        const struct task_rec *t = &bn.tasks[i];
        if (t->accepted && t->final && t->t_final >= t->t_accept) {
            lat[nl++] = (t->t_final - t->t_accept) * 1000.0;
        }
    }
    qsort(lat, nl, sizeof(*lat), cmp_double);
    double span = bn.t_last_final - bn.t_first_accept;
    uint64_t commits = s1.commits - s0.commits;
    double commit_s = s1.commit_s - s0.commit_s;
    uint64_t reused = UINT64_MAX;

    json_t *out = json_object();
    json_object_set_new(out, "mode", json_string("throughput"));
    json_object_set_new(out, "tasks", json_integer((json_int_t)o->n_tasks));
    json_object_set_new(out, "ses", json_integer((json_int_t)o->n_ses));
    json_object_set_new(out, "concat_every", json_integer((json_int_t)o->concat_every));
    json_object_set_new(out, "window", json_integer(o->window));
    json_object_set_new(out, "max_outstanding", json_integer((json_int_t)o->max_outstanding));
    json_object_set_new(out, "submitted", json_integer((json_int_t)bn.next));
    json_object_set_new(out, "accepted", json_integer((json_int_t)bn.n_accepted));
    json_object_set_new(out, "accept_failed", json_integer((json_int_t)bn.n_accept_failed));
    json_object_set_new(out, "submit_errors", json_integer((json_int_t)bn.n_submit_errors));
    json_object_set_new(out, "done", json_integer((json_int_t)bn.n_done));
    json_object_set_new(out, "failed", json_integer((json_int_t)(bn.n_final - bn.n_done)));
    json_object_set_new(out, "failed_reasons",
                        enum_counts_json(bn.reasons, TASK_REASON__COUNT, reason_name_of, false));
    json_object_set_new(out, "final_states",
                        enum_counts_json(bn.states, TASK_STATE__COUNT, state_name_of, false));
    json_object_set_new(out, "not_final", json_integer((json_int_t)(o->n_tasks - bn.n_final)));
    json_object_set_new(out, "final_hook_twice", json_integer((json_int_t)bn.n_final_twice));
    json_object_set_new(out, "final_hook_unknown", json_integer((json_int_t)bn.n_final_unknown));
    json_object_set_new(out, "timed_out", json_boolean(bn.timed_out));
    json_object_set_new(out, "tasks_per_s", json_real(span > 0 ? (double)bn.n_done / span : 0));
    json_object_set_new(out, "span_s", json_real(span > 0 ? span : 0));
    json_object_set_new(out, "wall_s", json_real(wall));
    json_object_set_new(out, "register_s", json_real(t_reg));
    json_object_set_new(out, "p50_ms", json_real(nl ? lat[nl / 2] : 0));
    json_object_set_new(out, "p90_ms", json_real(nl ? lat[nl * 90 / 100] : 0));
    json_object_set_new(out, "p99_ms", json_real(nl ? lat[nl * 99 / 100] : 0));
    json_object_set_new(out, "max_ms", json_real(nl ? lat[nl - 1] : 0));
    json_object_set_new(out, "durable", json_boolean(o->durable));
    json_object_set_new(out, "commits", json_integer((json_int_t)commits));
    json_object_set_new(out, "commit_ms_avg",
                        json_real(commits ? commit_s * 1000.0 / (double)commits : 0));
    json_object_set_new(out, "commit_s_total", json_real(commit_s));
    json_object_set_new(out, "tasks_per_commit",
                        json_real(commits ? (double)bn.n_final / (double)commits : 0));
    json_object_set_new(out, "cpu_user_s", json_real(tv_diff_s(ru0.ru_utime, ru1.ru_utime)));
    json_object_set_new(out, "cpu_sys_s", json_real(tv_diff_s(ru0.ru_stime, ru1.ru_stime)));
    json_object_set_new(out, "sim_cpu_user_s", json_real(su1 - su0));
    json_object_set_new(out, "sim_cpu_sys_s", json_real(ss1 - ss0));
    json_object_set_new(out, "rss_mb", json_real(self_rss_mb("VmHWM")));
    json_object_set_new(out, "engine", stats_json(&s1));
    json_object_set_new(out, "links", links);
    json_object_set_new(out, "sim", counts ? sim_cards(counts, &reused) : json_null());
    json_object_set_new(out, "simulator", counts ? counts : json_null());
    print_json(out);
    json_decref(out);

    bool ok = bn.n_done == o->n_tasks && reused == 0 && bn.n_final_twice == 0;
    if (!ok) {
        for (size_t i = 0, shown = 0; i < o->n_tasks && shown < 10; i++) {
            if (!bn.tasks[i].final) {
                fprintf(stderr, "bench-engine: task %" PRId64 " (#%zu) not final%s\n",
                        bn.tasks[i].id, i, bn.tasks[i].accepted ? "" : " (not accepted)");
                shown++;
            }
        }
    }
    free(lat);
    free(bn.tasks);
    idmap_fini(&bn.ids);
    key_cache_free(&bn);
    sim_pop_free(bn.pop);
    if (!getenv("BENCH_KEEP")) {
        nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    } else {
        fprintf(stderr, "bench-engine: files kept in %s\n", dir);
    }
    return ok ? 0 : 1;
}

/* ---- --queued-rss ------------------------------------------------------------------------ */

static double trimmed_rss_mb(void)
{
    malloc_trim(0);
    return self_rss_mb("VmRSS");
}

static double file_mb(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0;
}

static int run_queued_rss(const struct opts *o)
{
    char dir[] = "/tmp/bench-engine-rss.XXXXXX";
    if (!mkdtemp(dir)) {
        return 2;
    }
    if (o->n_queued > o->n_reg_ses) {
        fprintf(stderr, "bench-engine: --queued must not exceed --ses (one task per SE)\n");
        return 2;
    }
    struct bench bn = {.o = o};
    struct ota_err err = {0};
    bn.loop = ev_default_loop(0);
    char db[600], wal[620];
    snprintf(db, sizeof(db), "%s/engine.db", dir);
    snprintf(wal, sizeof(wal), "%s-wal", db);
    struct eng_conf c;
    conf_base(&c, db, o->durable);
    struct eng_hooks h = {.scp80_keys = hook_keys, .log = bench_log, .arg = &bn};
    double rss_start = trimmed_rss_mb();
    if (eng_open(bn.loop, &c, &h, &bn.e, &err) < 0) {
        fprintf(stderr, "bench-engine: eng_open: %s\n", err.msg);
        return 2;
    }
    double t = mono_s();
    if (register_ses(&bn, o->n_reg_ses, 100000) < 0) {
        return 2;
    }
    double register_s = mono_s() - t;
    double rss_registered = trimmed_rss_mb();
    fprintf(stderr, "bench-engine: %zu SEs in %.1f s, RSS %.1f MB\n", o->n_reg_ses, register_s,
            rss_registered);

    /* one task per SE, spread over the population, due in 30 days: all stay queued */
    int64_t nb = epoch_ms() + 30 * BENCH_DAY_MS;
    size_t stride = o->n_queued ? o->n_reg_ses / o->n_queued : 1;
    char seid[STORE_SEID_MAX + 1], msisdn[STORE_MSISDN_MAX + 1];
    t = mono_s();
    for (size_t i = 0; i < o->n_queued; i++) {
        se_identity((uint64_t)i * stride, seid, msisdn);
        struct eng_task_spec spec = {.seid = seid,
                                     .op = TASK_OP_SCP80,
                                     .channel = TASK_CH_SCP80,
                                     .params = short_params,
                                     .not_before_ms = nb};
        int64_t id;
        if (eng_submit(bn.e, &spec, NULL, NULL, &id, &err) < 0) {
            fprintf(stderr, "bench-engine: submit %zu: %s\n", i, err.msg);
            return 2;
        }
        if ((i + 1) % 50000 == 0 && eng_flush(bn.e, &err) < 0) {
            fprintf(stderr, "bench-engine: commit after %zu tasks: %s\n", i + 1, err.msg);
            return 2;
        }
    }
    if (eng_flush(bn.e, &err) < 0) {
        fprintf(stderr, "bench-engine: commit: %s\n", err.msg);
        return 2;
    }
    double submit_s = mono_s() - t;
    double rss_queued = trimmed_rss_mb();
    struct eng_stats s_before, s_after;
    eng_stats(bn.e, &s_before);
    fprintf(stderr, "bench-engine: %zu tasks queued in %.1f s, RSS %.1f MB\n", o->n_queued,
            submit_s, rss_queued);

    eng_close(bn.e);
    bn.e = NULL;
    double rss_closed = trimmed_rss_mb();
    t = mono_s();
    if (eng_open(bn.loop, &c, &h, &bn.e, &err) < 0) {
        fprintf(stderr, "bench-engine: reopen: %s\n", err.msg);
        return 2;
    }
    double rebuild_s = mono_s() - t;
    double rss_rebuilt = trimmed_rss_mb();
    eng_stats(bn.e, &s_after);
    eng_close(bn.e);

    json_t *out = json_object();
    json_object_set_new(out, "mode", json_string("queued-rss"));
    json_object_set_new(out, "ses", json_integer((json_int_t)o->n_reg_ses));
    json_object_set_new(out, "queued", json_integer((json_int_t)o->n_queued));
    json_object_set_new(out, "durable", json_boolean(o->durable));
    json_object_set_new(out, "register_s", json_real(register_s));
    json_object_set_new(out, "submit_s", json_real(submit_s));
    json_object_set_new(out, "rss_start_mb", json_real(rss_start));
    json_object_set_new(out, "rss_before_submit_mb", json_real(rss_registered));
    json_object_set_new(out, "queued_rss_mb", json_real(rss_queued));
    json_object_set_new(out, "queued_rss_delta_mb", json_real(rss_queued - rss_registered));
    json_object_set_new(out, "engine_queued", json_integer((json_int_t)s_before.queued));
    json_object_set_new(out, "rss_after_close_mb", json_real(rss_closed));
    json_object_set_new(out, "rebuild_s", json_real(rebuild_s));
    json_object_set_new(out, "rebuild_rss_mb", json_real(rss_rebuilt));
    json_object_set_new(out, "rebuild_queued", json_integer((json_int_t)s_after.queued));
    json_object_set_new(out, "peak_rss_mb", json_real(self_rss_mb("VmHWM")));
    json_object_set_new(out, "db_mb", json_real(file_mb(db) + file_mb(wal)));
    print_json(out);
    json_decref(out);
    if (!getenv("BENCH_KEEP")) {
        nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    } else {
        fprintf(stderr, "bench-engine: files kept in %s\n", dir);
    }
    bool ok = s_before.queued == o->n_queued && s_after.queued == o->n_queued;
    return ok ? 0 : 1;
}

/* ---- the crash test: --run DIR ----------------------------------------------------------- */

enum crash_kind { CK_SCP80 = 0, CK_SCP80_LONG = 1, CK_PUSH = 2 };

/*
 * Task k (0-based, the k-th ever submitted) of the plan: 80 % SCP80 in one
 * SMS, 10 % SCP80 in two, 10 % push. In each block of ten consecutive tasks
 * three go to one SE and two to another (submitted back to back, so the
 * later ones wait in their SE's FIFO behind an active one), the other five
 * to SEs of their own; blocks walk the population and wrap around.
 */
static void crash_plan(uint64_t k, uint64_t n_ses, uint64_t *se, enum crash_kind *kind)
{
    uint64_t blk = k / 10, g = k % 10;
    uint64_t slot = g < 3 ? 0 : g < 5 ? 1 : g - 3;
    *se = (blk * 7 + slot) % n_ses;
    uint64_t h = splitmix64(k ^ 0x5eedull) % 10;
    *kind = h < 8 ? CK_SCP80 : h == 8 ? CK_SCP80_LONG : CK_PUSH;
}

struct plan {
    uint64_t tasks, ses;
    bool durable;
    unsigned window;
    double rate_per_s; /* the link's part rate: keeps work in flight across the kills */
    char seed_hex[40];
    int ismg_port;
};

static int read_plan(const char *dir, struct plan *p, bool need_ports)
{
    char path[600];
    json_error_t je;
    snprintf(path, sizeof(path), "%s/plan.json", dir);
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        fprintf(stderr, "bench-engine: %s: %s\n", path, je.text);
        return -1;
    }
    memset(p, 0, sizeof(*p));
    p->tasks = (uint64_t)json_integer_value(json_object_get(j, "tasks"));
    p->ses = (uint64_t)json_integer_value(json_object_get(j, "ses"));
    json_t *d = json_object_get(j, "durable");
    p->durable = d ? json_is_true(d) : true;
    json_t *w = json_object_get(j, "window");
    p->window = w ? (unsigned)json_integer_value(w) : 16;
    p->rate_per_s = json_number_value(json_object_get(j, "rate"));
    const char *seed = json_string_value(json_object_get(j, "seed"));
    snprintf(p->seed_hex, sizeof(p->seed_hex), "%s", seed ? seed : BENCH_SEED_HEX);
    json_decref(j);
    if (p->tasks == 0 || p->ses == 0 || p->window == 0) {
        fprintf(stderr, "bench-engine: %s needs tasks > 0 and ses > 0\n", path);
        return -1;
    }
    if (!need_ports) {
        return 0;
    }
    snprintf(path, sizeof(path), "%s/ports.json", dir);
    j = json_load_file(path, 0, &je);
    p->ismg_port = j ? (int)json_integer_value(json_object_get(j, "ismg")) : 0;
    json_decref(j);
    if (p->ismg_port <= 0 || p->ismg_port > 65535) {
        fprintf(stderr, "bench-engine: no ISMG port in %s\n", path);
        return -1;
    }
    return 0;
}

/*
 * Open DIR/accepted.log for appending. A kill -9 in the middle of a write
 * may leave a partial last line: cut it, so the next id does not glue to it.
 */
static FILE *acc_log_open(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/accepted.log", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        off_t keep = st.st_size;
        char c;
        while (keep > 0 && pread(fd, &c, 1, keep - 1) == 1 && c != '\n') {
            keep--;
        }
        if (keep != st.st_size && ftruncate(fd, keep) < 0) {
            close(fd);
            return NULL;
        }
    }
    FILE *f = fdopen(fd, "a");
    if (!f) {
        close(fd);
    }
    return f;
}

static void crash_on_accept(void *arg, int64_t id, int rc)
{
    struct bench *bn = arg;
    if (rc < 0) {
        fprintf(stderr, "bench-engine: task %" PRId64 " not accepted: %s\n", id, strerror(-rc));
        return;
    }
    fprintf(bn->acc_log, "%" PRId64 "\n", id);
    bn->acc_pending++;
}

/* After each loop turn's callbacks: the accepted ids of the batch reach the disk. */
static void crash_on_check(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop;
    (void)revents;
    struct bench *bn = w->data;
    if (bn->acc_pending) {
        fflush(bn->acc_log);
        fdatasync(fileno(bn->acc_log));
        bn->acc_logged += bn->acc_pending;
        bn->acc_pending = 0;
    }
}

static void crash_on_final(void *arg, const struct eng_task_view *v)
{
    struct bench *bn = arg;
    bn->n_final++;
    bn->states[v->state < TASK_STATE__COUNT ? v->state : TASK_FAILED]++;
    if (v->state != TASK_DONE && v->reason < TASK_REASON__COUNT) {
        bn->reasons[v->reason]++;
        if (getenv("BENCH_TRACE")) {
            fprintf(stderr, "bench-engine: task %" PRId64 " %s: %s\n", v->id,
                    task_state_name(v->state), task_reason_name(v->reason));
        }
    }
}

static void crash_on_submit_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct bench *bn = w->data;
    struct ota_err err = {0};
    char seid[STORE_SEID_MAX + 1], msisdn[STORE_MSISDN_MAX + 1];
    for (size_t n = 0; n < bn->o->batch && bn->submitted < bn->plan_tasks; n++) {
        uint64_t se;
        enum crash_kind kind;
        crash_plan(bn->submitted, bn->n_pop, &se, &kind);
        se_identity(se, seid, msisdn);
        struct eng_task_spec spec = {
            .seid = seid,
            .op = kind == CK_PUSH ? TASK_OP_PUSH : TASK_OP_SCP80,
            .channel = kind == CK_PUSH ? TASK_CH_PUSH : TASK_CH_SCP80,
            .params = kind == CK_PUSH         ? "{}"
                      : kind == CK_SCP80_LONG ? bn->long_params
                                              : short_params,
        };
        int64_t id = 0;
        if (eng_submit(bn->e, &spec, crash_on_accept, bn, &id, &err) < 0) {
            fprintf(stderr, "bench-engine: submit #%" PRIu64 ": %s\n", bn->submitted, err.msg);
            bn->n_submit_errors++;
            ev_break(bn->loop, EVBREAK_ALL);
            return;
        }
        bn->submitted++;
        if (id > bn->max_id) {
            bn->max_id = id;
        }
    }
    if (bn->submitted >= bn->plan_tasks) {
        ev_timer_stop(bn->loop, w);
    }
}

/* Every task of the store (ids 1..max_id) in a final state? Counts them per state. */
static bool crash_all_final(struct bench *bn, uint64_t states[TASK_STATE__COUNT], uint64_t *n)
{
    struct ota_err err = {0};
    memset(states, 0, sizeof(uint64_t) * TASK_STATE__COUNT);
    *n = 0;
    bool all = true;
    for (int64_t id = 1; id <= bn->max_id; id++) {
        struct eng_task_view v;
        if (eng_task_get(bn->e, id, &v, &err) < 0) {
            continue; /* an id never made durable */
        }
        (*n)++;
        states[v.state < TASK_STATE__COUNT ? v.state : TASK_FAILED]++;
        if (!task_state_final(v.state)) {
            all = false;
        }
    }
    return all;
}

static void crash_on_check_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct bench *bn = w->data;
    struct eng_stats s;
    eng_stats(bn->e, &s);
    if (s.run == ENG_STOPPED_ERROR) {
        fprintf(stderr, "bench-engine: the engine stopped on a commit error\n");
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (bn->submitted < bn->plan_tasks || s.queued || s.active || s.waiting_bearer) {
        return;
    }
    uint64_t states[TASK_STATE__COUNT], n;
    if (crash_all_final(bn, states, &n)) {
        bn->finished = true;
        ev_break(loop, EVBREAK_ALL);
    }
}

/* How many tasks the store holds and the largest id, before the engine opens it. */
static int store_peek(const char *db, uint64_t *n_tasks, int64_t *max_id)
{
    struct store_opts so = {.path = db, .durable = false};
    struct store *st = NULL;
    struct ota_err err = {0};
    uint64_t counts[TASK_STATE__COUNT];
    if (store_open(&so, &st, &err) < 0 || store_task_counts(st, 0, counts, &err) < 0 ||
        store_task_max_id(st, max_id, &err) < 0) {
        fprintf(stderr, "bench-engine: %s: %s\n", db, err.msg);
        store_close(st);
        return -1;
    }
    *n_tasks = 0;
    for (int i = 0; i < TASK_STATE__COUNT; i++) {
        *n_tasks += counts[i];
    }
    store_close(st);
    return 0;
}

static int run_crash(const struct opts *o)
{
    struct plan p;
    if (read_plan(o->run_dir, &p, true) < 0) {
        return 2;
    }
    struct bench bn = {.o = o, .dir = o->run_dir, .n_pop = p.ses, .plan_tasks = p.tasks};
    struct ota_err err = {0};
    uint8_t seed[16];
    if (parse_seed(p.seed_hex, seed) < 0 ||
        sim_pop_generate(p.ses, BENCH_MSISDN_BASE, seed, &bn.pop, &err) < 0 ||
        key_cache_init(&bn) < 0) {
        fprintf(stderr, "bench-engine: population: %s\n", err.msg);
        return 2;
    }
    build_long_params(&bn);
    char db[600];
    snprintf(db, sizeof(db), "%s/engine.db", o->run_dir);
    uint64_t before = 0;
    if (store_peek(db, &before, &bn.max_id) < 0) {
        return 2;
    }
    bn.submitted = before;
    bn.acc_log = acc_log_open(o->run_dir);
    if (!bn.acc_log) {
        fprintf(stderr, "bench-engine: %s/accepted.log: %s\n", o->run_dir, strerror(errno));
        return 2;
    }
    bn.loop = ev_default_loop(0);
    struct eng_conf c;
    conf_base(&c, db, p.durable);
    c.dlr_timeout_s = 10;
    c.por_timeout_s = 10;
    c.max_attempts = 5;
    c.backoff_s = 1;
    c.backoff_max_s = 4;
    struct eng_hooks h = {
        .scp80_keys = hook_keys, .final = crash_on_final, .log = bench_log, .arg = &bn};
    double t0 = mono_s();
    if (eng_open(bn.loop, &c, &h, &bn.e, &err) < 0) {
        fprintf(stderr, "bench-engine: eng_open: %s\n", err.msg);
        return 2;
    }
    double open_s = mono_s() - t0;
    if (register_ses(&bn, p.ses, 100000) < 0 ||
        bearer_attach(&bn, p.ismg_port, p.window, p.rate_per_s, true) < 0) {
        return 2;
    }
    fprintf(stderr,
            "bench-engine: run: %" PRIu64 " of %" PRIu64 " tasks in the store (max id %" PRId64
            "), opened in %.3f s\n",
            before, p.tasks, bn.max_id, open_s);
    ev_check_init(&bn.acc_flush, crash_on_check);
    bn.acc_flush.data = &bn;
    ev_check_start(bn.loop, &bn.acc_flush);
    ev_timer_init(&bn.tick, crash_on_submit_tick, 0, 0.02);
    bn.tick.data = &bn;
    if (bn.submitted < bn.plan_tasks) {
        ev_timer_start(bn.loop, &bn.tick);
    }
    ev_timer_init(&bn.check_tick, crash_on_check_tick, 0.2, 0.2);
    bn.check_tick.data = &bn;
    ev_timer_start(bn.loop, &bn.check_tick);
    ev_timer_init(&bn.deadline, on_deadline, o->timeout_s, 0);
    bn.deadline.data = &bn;
    ev_timer_start(bn.loop, &bn.deadline);
    ev_run(bn.loop, 0);
    ev_timer_stop(bn.loop, &bn.tick);
    ev_timer_stop(bn.loop, &bn.check_tick);
    ev_timer_stop(bn.loop, &bn.deadline);

    uint64_t states[TASK_STATE__COUNT], n_store = 0;
    bool all_final = crash_all_final(&bn, states, &n_store);
    struct eng_stats s;
    eng_stats(bn.e, &s);
    json_t *out = json_object();
    json_object_set_new(out, "mode", json_string("run"));
    json_object_set_new(out, "plan_tasks", json_integer((json_int_t)p.tasks));
    json_object_set_new(out, "in_store_at_start", json_integer((json_int_t)before));
    json_object_set_new(out, "submitted", json_integer((json_int_t)bn.submitted));
    json_object_set_new(out, "in_store", json_integer((json_int_t)n_store));
    json_object_set_new(out, "all_final", json_boolean(all_final));
    json_object_set_new(out, "finished", json_boolean(bn.finished));
    json_object_set_new(out, "open_s", json_real(open_s));
    json_object_set_new(out, "states",
                        enum_counts_json(states, TASK_STATE__COUNT, state_name_of, true));
    json_object_set_new(out, "failed_reasons_this_run",
                        enum_counts_json(bn.reasons, TASK_REASON__COUNT, reason_name_of, false));
    json_object_set_new(out, "engine", stats_json(&s));
    teardown(&bn);
    crash_on_check(bn.loop, &bn.acc_flush, 0);
    ev_check_stop(bn.loop, &bn.acc_flush);
    json_object_set_new(out, "accepted_logged", json_integer((json_int_t)bn.acc_logged));
    print_json(out);
    json_decref(out);
    fclose(bn.acc_log);
    key_cache_free(&bn);
    sim_pop_free(bn.pop);
    bool ok = all_final && bn.submitted >= p.tasks && bn.n_submit_errors == 0;
    return ok ? 0 : 1;
}

/* ---- the crash test: --check DIR ---------------------------------------------------------- */

enum ck_violation {
    CV_ACCEPTED_MISSING, /* an id in accepted.log is not in the store */
    CV_NOT_FINAL,        /* a task is not in a final state */
    CV_FINAL_COUNT,      /* a task has not exactly one transition into a final state */
    CV_AFTER_FINAL,      /* a transition after the final one */
    CV_STATE_MISMATCH,   /* the stored state is not the history's last */
    CV_CHAIN,            /* a transition's from is not the previous one's to */
    CV_TWO_ACTIVE,       /* two tasks of one SE active at once */
    CV_EVENT_UNKNOWN,    /* an event for a task that does not exist, or another SE */
    CV_CNTR_MISMATCH,    /* an SE's counter differs from its SCP80 dispatches */
    CV_CNTR_DUP,         /* two tasks of one SE ended with the same counter */
    CV_TASKS_MISSING,    /* the store holds fewer tasks than the plan */
    CV__COUNT
};

static const char *const cv_names[CV__COUNT] = {
    [CV_ACCEPTED_MISSING] = "accepted_missing",
    [CV_NOT_FINAL] = "not_final",
    [CV_FINAL_COUNT] = "final_transitions_not_one",
    [CV_AFTER_FINAL] = "transition_after_final",
    [CV_STATE_MISMATCH] = "state_differs_from_history",
    [CV_CHAIN] = "history_chain_broken",
    [CV_TWO_ACTIVE] = "two_active_on_one_se",
    [CV_EVENT_UNKNOWN] = "event_of_unknown_task",
    [CV_CNTR_MISMATCH] = "counter_differs_from_dispatches",
    [CV_CNTR_DUP] = "counter_used_by_two_tasks",
    [CV_TASKS_MISSING] = "tasks_missing",
};

struct ck_task {
    bool exists;
    uint8_t state, op;
    int8_t last_to; /* -1: no event yet */
    int64_t se;
    uint64_t cntr;
    uint32_t n_final_ev, dispatches;
};

struct ck_se {
    int64_t se, active; /* active task id, 0 = idle */
    uint64_t scp80_dispatches;
};

struct checker {
    struct ck_task *t; /* index = task id */
    int64_t max_id;
    struct ck_se *ses; /* open addressing by SE row id */
    size_t ses_cap;
    uint64_t n_events;
    uint64_t counts[CV__COUNT];
    json_t *examples;
};

static void ck_fail(struct checker *c, enum ck_violation v, const char *fmt, ...) OTA_PRINTF(3, 4);

static void ck_fail(struct checker *c, enum ck_violation v, const char *fmt, ...)
{
    if (c->counts[v]++ < 5) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        json_array_append_new(c->examples, json_sprintf("%s: %s", cv_names[v], msg));
    }
}

static struct ck_se *ck_se_get(struct checker *c, int64_t se)
{
    size_t i = splitmix64((uint64_t)se) & (c->ses_cap - 1);
    while (c->ses[i].se && c->ses[i].se != se) {
        i = (i + 1) & (c->ses_cap - 1);
    }
    c->ses[i].se = se;
    return &c->ses[i];
}

static int ck_on_event(void *arg, int64_t seq, int64_t task, int64_t se, enum task_state from,
                       enum task_state to, enum task_reason reason, int64_t t_ms)
{
    (void)reason;
    (void)t_ms;
    struct checker *c = arg;
    c->n_events++;
    if (task < 1 || task > c->max_id || !c->t[task].exists || c->t[task].se != se ||
        (unsigned)to >= TASK_STATE__COUNT) {
        ck_fail(c, CV_EVENT_UNKNOWN, "event %" PRId64 ": task %" PRId64 " se %" PRId64, seq, task,
                se);
        return 0;
    }
    struct ck_task *t = &c->t[task];
    if (t->n_final_ev > 0) {
        ck_fail(c, CV_AFTER_FINAL, "task %" PRId64 ": %s -> %s after its final (event %" PRId64 ")",
                task, task_state_name(from), task_state_name(to), seq);
    }
    if (t->last_to >= 0 && (int)from != t->last_to) {
        ck_fail(c, CV_CHAIN, "task %" PRId64 ": event %" PRId64 " from %s, previous to %s", task,
                seq, task_state_name(from), task_state_name((enum task_state)t->last_to));
    }
    t->last_to = (int8_t)to;
    if (task_state_final(to)) {
        t->n_final_ev++;
    }
    struct ck_se *s = ck_se_get(c, se);
    if (to == TASK_DISPATCHED) {
        t->dispatches++;
        if (t->op == TASK_OP_SCP80) {
            s->scp80_dispatches++;
        }
    }
    if (task_state_active(to)) {
        if (s->active && s->active != task) {
            ck_fail(c, CV_TWO_ACTIVE,
                    "se %" PRId64 ": task %" PRId64 " -> %s while task %" PRId64
                    " is active (event %" PRId64 ")",
                    se, task, task_state_name(to), s->active, seq);
        }
        s->active = task;
    } else if (s->active == task) {
        s->active = 0;
    }
    return 0;
}

struct ck_cntr {
    int64_t se;
    uint64_t cntr;
    int64_t task;
};

static int ck_cntr_cmp(const void *a, const void *b)
{
    const struct ck_cntr *x = a, *y = b;
    if (x->se != y->se) {
        return x->se < y->se ? -1 : 1;
    }
    return (x->cntr > y->cntr) - (x->cntr < y->cntr);
}

static int run_check(const struct opts *o)
{
    struct plan p;
    if (read_plan(o->check_dir, &p, false) < 0) {
        return 2;
    }
    char db[600];
    snprintf(db, sizeof(db), "%s/engine.db", o->check_dir);
    struct store_opts so = {.path = db, .durable = false};
    struct store *st = NULL;
    struct ota_err err = {0};
    struct checker c = {.examples = json_array()};
    uint64_t n_se = 0;
    if (store_open(&so, &st, &err) < 0 || store_task_max_id(st, &c.max_id, &err) < 0 ||
        store_se_count(st, &n_se, &err) < 0) {
        fprintf(stderr, "bench-engine: %s: %s\n", db, err.msg);
        store_close(st);
        return 2;
    }
    c.t = calloc((size_t)c.max_id + 1, sizeof(*c.t));
    c.ses_cap = 16;
    while (c.ses_cap < 2 * (n_se + 1)) {
        c.ses_cap <<= 1;
    }
    c.ses = calloc(c.ses_cap, sizeof(*c.ses));
    if (!c.t || !c.ses) {
        return 2;
    }
    uint64_t n_tasks = 0, states[TASK_STATE__COUNT] = {0}, reasons[TASK_REASON__COUNT] = {0};
    for (int64_t id = 1; id <= c.max_id; id++) {
        struct store_task t;
        memset(&t, 0, sizeof(t));
        int rc = store_task_get(st, id, &t, &err);
        if (rc == -ENOENT) {
            continue;
        }
        if (rc < 0) {
            fprintf(stderr, "bench-engine: task %" PRId64 ": %s\n", id, err.msg);
            return 2;
        }
        c.t[id] = (struct ck_task){.exists = true,
                                   .state = (uint8_t)t.state,
                                   .op = (uint8_t)t.op,
                                   .last_to = -1,
                                   .se = t.se,
                                   .cntr = t.cntr};
        n_tasks++;
        states[t.state < TASK_STATE__COUNT ? t.state : TASK_FAILED]++;
        if (t.state != TASK_DONE && t.reason < TASK_REASON__COUNT) {
            reasons[t.reason]++;
        }
        store_task_fini(&t);
    }
    if (n_tasks < p.tasks) {
        ck_fail(&c, CV_TASKS_MISSING, "%" PRIu64 " tasks in the store, the plan has %" PRIu64,
                n_tasks, p.tasks);
    }
    if (store_events(st, ck_on_event, &c, &err) < 0) {
        fprintf(stderr, "bench-engine: history: %s\n", err.msg);
        return 2;
    }
    for (int64_t id = 1; id <= c.max_id; id++) {
        const struct ck_task *t = &c.t[id];
        if (!t->exists) {
            continue;
        }
        if (!task_state_final((enum task_state)t->state)) {
            ck_fail(&c, CV_NOT_FINAL, "task %" PRId64 " is %s", id,
                    task_state_name((enum task_state)t->state));
        }
        if (t->n_final_ev != 1) {
            ck_fail(&c, CV_FINAL_COUNT, "task %" PRId64 ": %u final transitions", id,
                    t->n_final_ev);
        }
        if (t->last_to >= 0 && t->last_to != (int8_t)t->state) {
            ck_fail(&c, CV_STATE_MISMATCH, "task %" PRId64 " is %s, its history ends %s", id,
                    task_state_name((enum task_state)t->state),
                    task_state_name((enum task_state)t->last_to));
        }
    }
    /* accepted.log: every id the runs were told was accepted */
    char path[700];
    snprintf(path, sizeof(path), "%s/accepted.log", o->check_dir);
    FILE *f = fopen(path, "r");
    uint64_t n_logged = 0;
    char line[64];
    while (f && fgets(line, sizeof(line), f)) {
        char *end;
        long long id = strtoll(line, &end, 10);
        if (end == line || (*end != '\n' && *end)) {
            continue; /* a cut last line of a killed run */
        }
        n_logged++;
        if (id < 1 || id > c.max_id || !c.t[id].exists) {
            ck_fail(&c, CV_ACCEPTED_MISSING, "accepted task %lld is not in the store", id);
        }
    }
    if (f) {
        fclose(f);
    }
    /*
     * Counters: each dispatch of an SCP80 task reserves exactly one counter
     * of its SE (in the batch that records the dispatch), so an SE's last
     * reserved counter equals its SCP80 dispatches; tasks of one SE never
     * end with the same counter.
     */
    uint64_t n_cntr_checked = 0;
    for (int64_t se = 1; se <= (int64_t)n_se; se++) {
        uint64_t cntr = 0;
        if (store_cntr_get(st, se, BENCH_KVN, &cntr, &err) < 0) {
            fprintf(stderr, "bench-engine: counter of SE %" PRId64 ": %s\n", se, err.msg);
            return 2;
        }
        struct ck_se *s = ck_se_get(&c, se);
        n_cntr_checked++;
        if (cntr != s->scp80_dispatches) {
            ck_fail(&c, CV_CNTR_MISMATCH,
                    "SE %" PRId64 ": counter %" PRIu64 ", %" PRIu64 " SCP80 dispatches", se, cntr,
                    s->scp80_dispatches);
        }
    }
    struct ck_cntr *cv = calloc((size_t)c.max_id + 1, sizeof(*cv));
    size_t ncv = 0;
    for (int64_t id = 1; cv && id <= c.max_id; id++) {
        const struct ck_task *t = &c.t[id];
        if (t->exists && t->op == TASK_OP_SCP80 && t->cntr != 0) {
            cv[ncv++] = (struct ck_cntr){.se = t->se, .cntr = t->cntr, .task = id};
        }
    }
    if (cv) {
        qsort(cv, ncv, sizeof(*cv), ck_cntr_cmp);
    }
    for (size_t i = 1; i < ncv; i++) {
        if (cv[i].se == cv[i - 1].se && cv[i].cntr == cv[i - 1].cntr) {
            ck_fail(&c, CV_CNTR_DUP, "tasks %" PRId64 " and %" PRId64 " counter %" PRIu64,
                    cv[i - 1].task, cv[i].task, cv[i].cntr);
        }
    }
    free(cv);
    store_close(st);

    uint64_t total = 0;
    json_t *out = json_object();
    json_object_set_new(out, "mode", json_string("check"));
    json_object_set_new(out, "plan_tasks", json_integer((json_int_t)p.tasks));
    json_object_set_new(out, "tasks", json_integer((json_int_t)n_tasks));
    json_object_set_new(out, "accepted_logged", json_integer((json_int_t)n_logged));
    json_object_set_new(out, "events", json_integer((json_int_t)c.n_events));
    json_object_set_new(out, "ses_counters_checked", json_integer((json_int_t)n_cntr_checked));
    json_object_set_new(out, "states",
                        enum_counts_json(states, TASK_STATE__COUNT, state_name_of, true));
    /* failures are allowed (attempts can run out across the kills) but shown */
    json_object_set_new(out, "not_done_reasons",
                        enum_counts_json(reasons, TASK_REASON__COUNT, reason_name_of, false));
    json_t *vj = json_object();
    for (int v = 0; v < CV__COUNT; v++) {
        json_object_set_new(vj, cv_names[v], json_integer((json_int_t)c.counts[v]));
        total += c.counts[v];
    }
    json_object_set_new(out, "violations", vj);
    json_object_set_new(out, "violation_total", json_integer((json_int_t)total));
    json_object_set_new(out, "examples", c.examples);
    json_object_set_new(out, "ok", json_boolean(total == 0));
    print_json(out);
    json_decref(out);
    free(c.t);
    free(c.ses);
    return total == 0 ? 0 : 1;
}

/* ---- command line ----------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: bench-engine [--tasks T] [--ses N] [--concat-every K] [--window W]\n"
               "                    [--batch B] [--tick-ms MS] [--max-outstanding M]\n"
               "                    [--no-durable] [--timeout S] [--sim PATH]\n"
               "       bench-engine --queued-rss [--ses S] [--queued Q] [--no-durable]\n"
               "       bench-engine --run DIR [--timeout S]\n"
               "       bench-engine --check DIR\n"
               "Default: the task engine against otagw-sim (CMPP), T SCP80 tasks over N SEs\n"
               "(defaults 20000 / 20000, every 10th in two SMS), one JSON object on stdout.\n"
               "--queued-rss: RSS with Q tasks queued over S registered SEs (defaults 1000000 /\n"
               "10000000), and the rebuild time of a reopen. --run / --check: the crash test\n"
               "(tests/integration/test_engine_crash.sh): DIR holds plan.json ({\"tasks\":T,\n"
               "\"ses\":N}), the simulator's ports.json, engine.db and accepted.log.\n");
}

static size_t parse_size(const char *s, const char *name, size_t min)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > UINT32_MAX) {
        fprintf(stderr, "bench-engine: bad --%s '%s'\n", name, s);
        exit(2);
    }
    return (size_t)v;
}

int main(int argc, char **argv)
{
    enum {
        O_TASKS = 256,
        O_SES,
        O_CONCAT,
        O_WINDOW,
        O_BATCH,
        O_TICK,
        O_MAXOUT,
        O_NODUR,
        O_TIMEOUT,
        O_SIM,
        O_QRSS,
        O_QUEUED,
        O_RUN,
        O_CHECK,
    };
    static const struct option lo[] = {
        {"tasks", required_argument, NULL, O_TASKS},
        {"ses", required_argument, NULL, O_SES},
        {"concat-every", required_argument, NULL, O_CONCAT},
        {"window", required_argument, NULL, O_WINDOW},
        {"batch", required_argument, NULL, O_BATCH},
        {"tick-ms", required_argument, NULL, O_TICK},
        {"max-outstanding", required_argument, NULL, O_MAXOUT},
        {"no-durable", no_argument, NULL, O_NODUR},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"sim", required_argument, NULL, O_SIM},
        {"queued-rss", no_argument, NULL, O_QRSS},
        {"queued", required_argument, NULL, O_QUEUED},
        {"run", required_argument, NULL, O_RUN},
        {"check", required_argument, NULL, O_CHECK},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {.n_tasks = 20000,
                     .concat_every = 10,
                     .batch = 500,
                     .max_outstanding = 4000,
                     .window = 64,
                     .tick_s = 0.002,
                     .timeout_s = 0,
                     .durable = true,
                     .n_queued = 1000000,
                     .n_reg_ses = 10000000};
    bool ses_given = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_TASKS:
            o.n_tasks = parse_size(optarg, "tasks", 1);
            break;
        case O_SES:
            o.n_ses = o.n_reg_ses = parse_size(optarg, "ses", 1);
            ses_given = true;
            break;
        case O_CONCAT:
            o.concat_every = parse_size(optarg, "concat-every", 0);
            break;
        case O_WINDOW:
            o.window = (unsigned)parse_size(optarg, "window", 1);
            break;
        case O_BATCH:
            o.batch = parse_size(optarg, "batch", 1);
            break;
        case O_TICK:
            o.tick_s = (double)parse_size(optarg, "tick-ms", 1) / 1000.0;
            break;
        case O_MAXOUT:
            o.max_outstanding = parse_size(optarg, "max-outstanding", 1);
            break;
        case O_NODUR:
            o.durable = false;
            break;
        case O_TIMEOUT:
            o.timeout_s = (double)parse_size(optarg, "timeout", 1);
            break;
        case O_SIM:
            snprintf(o.sim, sizeof(o.sim), "%s", optarg);
            break;
        case O_QRSS:
            o.queued_rss = true;
            break;
        case O_QUEUED:
            o.n_queued = parse_size(optarg, "queued", 0);
            break;
        case O_RUN:
            o.run_dir = optarg;
            break;
        case O_CHECK:
            o.check_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || (o.queued_rss + !!o.run_dir + !!o.check_dir) > 1) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (o.check_dir) {
        return run_check(&o);
    }
    if (o.timeout_s == 0) {
        o.timeout_s = o.run_dir ? 600 : 300;
    }
    if (o.run_dir) {
        o.batch = 50; /* 50 every 20 ms: kills land during submission too */
        return run_crash(&o);
    }
    if (o.queued_rss) {
        return run_queued_rss(&o);
    }
    if (!ses_given) {
        o.n_ses = o.n_tasks;
    }
    /* otagw-sim lives next to this program (build/bin/) unless --sim names it */
    char *self = o.sim[0] ? NULL : realpath("/proc/self/exe", NULL);
    if (self) {
        snprintf(o.sim, sizeof(o.sim), "%.*s/otagw-sim", (int)(strrchr(self, '/') - self), self);
        free(self);
    } else if (!o.sim[0]) {
        return 2;
    }
    atexit(kill_sim);
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    return run_throughput(&o);
}
