/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otagw-sim: the simulated network and SIM population otagw is tested
 * against. This file is the program around the roles: it parses the command
 * line, loads or generates the SE population, starts the ISMG (CMPP) and
 * SMSC (SMPP) roles on one libev loop, writes the bound ports (--port-file),
 * and prints the counts as JSON on SIGUSR1 and at exit (SIGTERM, SIGINT or
 * --duration). docs/simulator.md describes the options, faults and counts.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "tests/sim/faults.h"
#include "tests/sim/ismg.h"
#include "tests/sim/sim.h"
#include "tests/sim/smsc.h"
#include "tests/sim/wallet.h"

#define SIM_EXIT_USAGE 2
#define SIM_EXIT_RUNTIME 1
#define SIM_SHUTDOWN_GRACE_S 1.0
#define SIM_SHUTDOWN_POLL_S 0.02
#define SIM_OUTCOME_MAX 7 /* enum sim_outcome values 0..6 */
#define SIM_DEFAULT_MSISDN_BASE 8613800000000ull

struct sim_opts {
    const char *ismg_addr, *smsc_addr;
    const char *cmpp_version;
    const char *sp_id, *secret;
    const char *system_id, *password;
    const char *population;
    uint64_t generate;
    bool have_generate;
    uint64_t msisdn_base;
    uint8_t seed[16];
    uint32_t rate, window, heartbeat_s, resp_timeout_ms, gateway_code;
    const char *faults;
    const char *port_file, *counts_file;
    const char *wallet_url;   /* NULL: pushes are only recorded */
    const char *wallet_ca;    /* --wallet-ca: CA file verifying an https wallet URL */
    const char *wallet_token; /* --wallet-token: client API token or @FILE */
    double duration_s;
};

struct sim_app {
    struct ev_loop *loop;
    const struct sim_opts *opts;
    struct sim_pop *pop;
    struct sim_ismg *ismg;
    struct sim_smsc *smsc;
    struct sim_wallet *wallet;
    ev_signal sig_term, sig_int, sig_usr1;
    ev_timer duration_timer, shutdown_timer;
    double started, shutdown_started;
    bool shutting_down;
    uint64_t outcomes[SIM_OUTCOME_MAX];
    uint64_t card_calls;
};

#define APP_CONTAINER_OF(ptr, member)                                                              \
    ((struct sim_app *)((char *)(ptr)-offsetof(struct sim_app, member)))

static void usage(FILE *f)
{
    fprintf(f, "usage: otagw-sim [--ismg 127.0.0.1:PORT] [--cmpp-version 2.0|3.0|any]\n"
               "                 [--sp-id ID] [--secret S] [--gateway-code N]\n"
               "                 [--smsc 127.0.0.1:PORT] [--system-id ID] [--password PW]\n"
               "                 (--population FILE.jsonl | --generate N [--msisdn-base M])\n"
               "                 [--seed HEX] [--rate N] [--window N] [--faults SPEC]\n"
               "                 [--heartbeat-s S] [--resp-timeout-ms MS]\n"
               "                 [--port-file PATH] [--counts-file PATH] [--duration S]\n"
               "                 [--wallet-url http[s]://127.0.0.1:PORT [--wallet-ca FILE]\n"
               "                  [--wallet-token TOKEN|@FILE]]\n"
               "At least one of --ismg / --smsc. Port 0 picks a free port (see --port-file).\n"
               "Faults: reject=P,throttle=P,dlr_lost=P,dlr_late_ms=MS,dlr_fail=P,card_absent=P,\n"
               "        por_lost=P,por_corrupt=P,drop_every_s=S (P in [0,1]).\n"
               "Signals: SIGUSR1 prints the counts; SIGTERM/SIGINT print them and exit.\n");
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9') {
        return -EINVAL;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    int rc = parse_u64(s, max, &v);
    if (rc == 0) {
        *out = (uint32_t)v;
    }
    return rc;
}

/* "127.0.0.1:PORT" -> host (into buf) and port; IPv4 literals only. */
static int parse_addr(const char *s, char *host, size_t cap, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || (size_t)(colon - s) >= cap) {
        return -EINVAL;
    }
    uint32_t p = 0;
    if (parse_u32(colon + 1, 65535, &p) < 0) {
        return -EINVAL;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* Up to 32 hex digits, right-aligned into 16 octets. */
static int parse_seed(const char *s, uint8_t seed[16])
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        n -= 2;
    }
    if (n == 0 || n > 32) {
        return -EINVAL;
    }
    uint8_t out[16];
    memset(out, 0, sizeof(out));
    for (size_t i = 0; i < n; i++) {
        char ch = s[n - 1 - i];
        int v;
        if (ch >= '0' && ch <= '9') {
            v = ch - '0';
        } else if (ch >= 'a' && ch <= 'f') {
            v = ch - 'a' + 10;
        } else if (ch >= 'A' && ch <= 'F') {
            v = ch - 'A' + 10;
        } else {
            return -EINVAL;
        }
        out[15 - i / 2] |= (uint8_t)(i % 2 == 0 ? v : v << 4);
    }
    memcpy(seed, out, 16);
    return 0;
}

static uint64_t seed_u64(const uint8_t seed[16])
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        v = v << 8 ^ seed[i] ^ (v >> 56);
    }
    return v;
}

enum opt_id {
    OPT_ISMG = 1000,
    OPT_CMPP_VERSION,
    OPT_SP_ID,
    OPT_SECRET,
    OPT_GATEWAY_CODE,
    OPT_SMSC,
    OPT_SYSTEM_ID,
    OPT_PASSWORD,
    OPT_POPULATION,
    OPT_GENERATE,
    OPT_MSISDN_BASE,
    OPT_SEED,
    OPT_RATE,
    OPT_WINDOW,
    OPT_FAULTS,
    OPT_HEARTBEAT,
    OPT_RESP_TIMEOUT,
    OPT_PORT_FILE,
    OPT_COUNTS_FILE,
    OPT_DURATION,
    OPT_WALLET_URL,
    OPT_WALLET_CA,
    OPT_WALLET_TOKEN,
    OPT_HELP,
};

static int bad_opt(const char *name, const char *val)
{
    fprintf(stderr, "otagw-sim: bad value '%s' for --%s\n", val != NULL ? val : "", name);
    return -EINVAL;
}

static int parse_opts(int argc, char **argv, struct sim_opts *o)
{
    static const struct option longopts[] = {
        {"ismg", required_argument, NULL, OPT_ISMG},
        {"cmpp-version", required_argument, NULL, OPT_CMPP_VERSION},
        {"sp-id", required_argument, NULL, OPT_SP_ID},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"gateway-code", required_argument, NULL, OPT_GATEWAY_CODE},
        {"smsc", required_argument, NULL, OPT_SMSC},
        {"system-id", required_argument, NULL, OPT_SYSTEM_ID},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"population", required_argument, NULL, OPT_POPULATION},
        {"generate", required_argument, NULL, OPT_GENERATE},
        {"msisdn-base", required_argument, NULL, OPT_MSISDN_BASE},
        {"seed", required_argument, NULL, OPT_SEED},
        {"rate", required_argument, NULL, OPT_RATE},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"faults", required_argument, NULL, OPT_FAULTS},
        {"heartbeat-s", required_argument, NULL, OPT_HEARTBEAT},
        {"resp-timeout-ms", required_argument, NULL, OPT_RESP_TIMEOUT},
        {"port-file", required_argument, NULL, OPT_PORT_FILE},
        {"counts-file", required_argument, NULL, OPT_COUNTS_FILE},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"wallet-url", required_argument, NULL, OPT_WALLET_URL},
        {"wallet-ca", required_argument, NULL, OPT_WALLET_CA},
        {"wallet-token", required_argument, NULL, OPT_WALLET_TOKEN},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->cmpp_version = "any";
    o->sp_id = "901234";
    o->secret = "secret";
    o->system_id = "otagw";
    o->password = "secret";
    o->msisdn_base = SIM_DEFAULT_MSISDN_BASE;
    o->window = 16;
    o->heartbeat_s = 30;
    o->resp_timeout_ms = 10000;
    o->gateway_code = 0x1234;
    o->faults = "";

    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        uint64_t v64 = 0;
        switch (ch) {
        case OPT_ISMG:
            o->ismg_addr = optarg;
            break;
        case OPT_CMPP_VERSION:
            if (strcmp(optarg, "2.0") != 0 && strcmp(optarg, "3.0") != 0 &&
                strcmp(optarg, "any") != 0) {
                return bad_opt("cmpp-version", optarg);
            }
            o->cmpp_version = optarg;
            break;
        case OPT_SP_ID:
            if (strlen(optarg) == 0 || strlen(optarg) > CMPP_SRC_ADDR_LEN) {
                return bad_opt("sp-id", optarg);
            }
            o->sp_id = optarg;
            break;
        case OPT_SECRET:
            if (strlen(optarg) > CMPP_SECRET_MAX_LEN) {
                return bad_opt("secret", "(too long)");
            }
            o->secret = optarg;
            break;
        case OPT_GATEWAY_CODE:
            if (parse_u32(optarg, (1u << 22) - 1, &o->gateway_code) < 0) {
                return bad_opt("gateway-code", optarg);
            }
            break;
        case OPT_SMSC:
            o->smsc_addr = optarg;
            break;
        case OPT_SYSTEM_ID:
            if (strlen(optarg) == 0 || strlen(optarg) > SIM_SMSC_SYSTEM_ID_MAX) {
                return bad_opt("system-id", optarg);
            }
            o->system_id = optarg;
            break;
        case OPT_PASSWORD:
            if (strlen(optarg) > SIM_SMSC_PASSWORD_MAX) {
                return bad_opt("password", "(too long)");
            }
            o->password = optarg;
            break;
        case OPT_POPULATION:
            o->population = optarg;
            break;
        case OPT_GENERATE:
            if (parse_u64(optarg, 100000000000ull, &o->generate) < 0 || o->generate == 0) {
                return bad_opt("generate", optarg);
            }
            o->have_generate = true;
            break;
        case OPT_MSISDN_BASE:
            if (parse_u64(optarg, 999999999999999999ull, &o->msisdn_base) < 0) {
                return bad_opt("msisdn-base", optarg);
            }
            break;
        case OPT_SEED:
            if (parse_seed(optarg, o->seed) < 0) {
                return bad_opt("seed", optarg);
            }
            break;
        case OPT_RATE:
            if (parse_u32(optarg, 10000000, &o->rate) < 0) {
                return bad_opt("rate", optarg);
            }
            break;
        case OPT_WINDOW:
            if (parse_u32(optarg, 100000, &o->window) < 0 || o->window == 0) {
                return bad_opt("window", optarg);
            }
            break;
        case OPT_FAULTS:
            o->faults = optarg;
            break;
        case OPT_HEARTBEAT:
            if (parse_u32(optarg, 86400, &o->heartbeat_s) < 0 || o->heartbeat_s == 0) {
                return bad_opt("heartbeat-s", optarg);
            }
            break;
        case OPT_RESP_TIMEOUT:
            if (parse_u32(optarg, 3600000, &o->resp_timeout_ms) < 0 || o->resp_timeout_ms == 0) {
                return bad_opt("resp-timeout-ms", optarg);
            }
            break;
        case OPT_PORT_FILE:
            o->port_file = optarg;
            break;
        case OPT_COUNTS_FILE:
            o->counts_file = optarg;
            break;
        case OPT_DURATION:
            if (parse_u64(optarg, 31536000, &v64) < 0) {
                return bad_opt("duration", optarg);
            }
            o->duration_s = (double)v64;
            break;
        case OPT_WALLET_CA:
            o->wallet_ca = optarg;
            break;
        case OPT_WALLET_TOKEN:
            o->wallet_token = optarg;
            break;
        case OPT_WALLET_URL:
            o->wallet_url = optarg;
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            fprintf(stderr, "otagw-sim: unknown option or missing value: %s\n", argv[optind - 1]);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "otagw-sim: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    char host[64];
    uint16_t port = 0;
    if (o->ismg_addr != NULL && parse_addr(o->ismg_addr, host, sizeof(host), &port) < 0) {
        return bad_opt("ismg", o->ismg_addr);
    }
    if (o->smsc_addr != NULL && parse_addr(o->smsc_addr, host, sizeof(host), &port) < 0) {
        return bad_opt("smsc", o->smsc_addr);
    }
    if (o->ismg_addr == NULL && o->smsc_addr == NULL) {
        fprintf(stderr, "otagw-sim: give --ismg and/or --smsc\n");
        return -EINVAL;
    }
    if ((o->population != NULL) == o->have_generate) {
        fprintf(stderr, "otagw-sim: give exactly one of --population and --generate\n");
        return -EINVAL;
    }
    return 0;
}

/* ---- card hand-off ----------------------------------------------------------------- */

static int app_card_deliver(void *ctx, const char *msisdn, const uint8_t *ud, size_t len, bool udhi,
                            uint8_t pid, uint8_t dcs, enum sim_outcome *outcome, struct sim_mo *mo,
                            struct ota_err *err)
{
    struct sim_app *app = ctx;
    uint64_t now_ms = (uint64_t)(ev_now(app->loop) * 1000.0);
    app->card_calls++;
    int rc = sim_card_deliver(app->pop, msisdn, ud, len, udhi, pid, dcs, now_ms, outcome, mo, err);
    if (rc == 0 && (unsigned)*outcome < SIM_OUTCOME_MAX) {
        app->outcomes[*outcome]++;
    }
    return rc;
}

/* ---- output -------------------------------------------------------------------------- */

static json_t *cards_json(const struct sim_app *app)
{
    struct sim_counts k;
    memset(&k, 0, sizeof(k));
    sim_pop_counts(app->pop, &k);
    json_t *outcomes = json_object();
    for (unsigned i = 0; outcomes != NULL && i < SIM_OUTCOME_MAX; i++) {
        json_object_set_new(outcomes, sim_outcome_name((enum sim_outcome)i),
                            json_integer((json_int_t)app->outcomes[i]));
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                     "s:I, s:o*}",
                     "population", (json_int_t)sim_pop_size(app->pop), "deliveries",
                     (json_int_t)app->card_calls, "mt_parts", (json_int_t)k.mt_parts, "mt_complete",
                     (json_int_t)k.mt_complete, "pushes", (json_int_t)k.pushes, "commands_ok",
                     (json_int_t)k.commands_ok, "por_sent", (json_int_t)k.por_sent, "invalid_sms",
                     (json_int_t)k.invalid_sms, "bad_cc", (json_int_t)k.bad_cc, "counter_refused",
                     (json_int_t)k.counter_refused, "counter_reused", (json_int_t)k.counter_reused,
                     "unknown_se", (json_int_t)k.unknown_se, "unknown_tar",
                     (json_int_t)k.unknown_tar, "apdus_run", (json_int_t)k.apdus_run,
                     "apdus_failed", (json_int_t)k.apdus_failed, "outcomes", outcomes);
}

/* The wallet role's counts; all zero when --wallet-url is absent. */
static json_t *wallet_json(const struct sim_app *app)
{
    struct sim_wallet_counts k;
    memset(&k, 0, sizeof(k));
    sim_wallet_counts(app->wallet, &k);
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "enabled", app->wallet != NULL,
                     "wallet_pulls", (json_int_t)k.wallet_pulls, "wallet_sessions_done",
                     (json_int_t)k.wallet_sessions_done, "wallet_sessions_failed",
                     (json_int_t)k.wallet_sessions_failed, "wallet_http_errors",
                     (json_int_t)k.wallet_http_errors, "wallet_dropped",
                     (json_int_t)k.wallet_dropped, "wallet_apdus", (json_int_t)k.wallet_apdus);
}

/* Write text to path atomically (temporary file, then rename). */
static int write_file_atomic(const char *path, const char *text)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        return -ENAMETOOLONG;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return -errno;
    }
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (fclose(f) != 0 || !ok) {
        unlink(tmp);
        return -EIO;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    return 0;
}

static void print_counts(struct sim_app *app)
{
    json_t *root = json_object();
    if (root == NULL) {
        return;
    }
    json_object_set_new(root, "uptime_s", json_real(ev_now(app->loop) - app->started));
    if (app->ismg != NULL) {
        json_object_set_new(root, "ismg", sim_ismg_counts_json(app->ismg));
    }
    if (app->smsc != NULL) {
        json_object_set_new(root, "smsc", sim_smsc_counts_json(app->smsc));
    }
    json_object_set_new(root, "cards", cards_json(app));
    json_object_set_new(root, "wallet", wallet_json(app));
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (text == NULL) {
        return;
    }
    if (app->opts->counts_file != NULL) {
        int rc = write_file_atomic(app->opts->counts_file, text);
        if (rc < 0) {
            fprintf(stderr, "otagw-sim: cannot write %s: %s\n", app->opts->counts_file,
                    strerror(-rc));
        }
    } else {
        fprintf(stdout, "%s\n", text);
        fflush(stdout);
    }
    free(text);
}

static int write_port_file(const struct sim_app *app)
{
    json_t *o = json_object();
    if (o == NULL) {
        return -ENOMEM;
    }
    if (app->ismg != NULL) {
        json_object_set_new(o, "ismg", json_integer(sim_ismg_port(app->ismg)));
    }
    if (app->smsc != NULL) {
        json_object_set_new(o, "smsc", json_integer(sim_smsc_port(app->smsc)));
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (text == NULL) {
        return -ENOMEM;
    }
    int rc = write_file_atomic(app->opts->port_file, text);
    free(text);
    return rc;
}

/* ---- lifetime ---------------------------------------------------------------------- */

static void shutdown_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sim_app *app = APP_CONTAINER_OF(w, shutdown_timer);
    size_t open = (app->ismg != NULL ? sim_ismg_n_conns(app->ismg) : 0) +
                  (app->smsc != NULL ? sim_smsc_n_conns(app->smsc) : 0);
    if (open == 0 || ev_now(loop) - app->shutdown_started >= SIM_SHUTDOWN_GRACE_S) {
        ev_timer_stop(loop, w);
        ev_break(loop, EVBREAK_ALL);
    }
}

static void app_shutdown(struct sim_app *app, const char *why)
{
    if (app->shutting_down) {
        return;
    }
    app->shutting_down = true;
    fprintf(stderr, "otagw-sim: %s, closing links\n", why);
    if (app->ismg != NULL) {
        sim_ismg_terminate_all(app->ismg);
    }
    if (app->smsc != NULL) {
        sim_smsc_unbind_all(app->smsc);
    }
    app->shutdown_started = ev_now(app->loop);
    ev_timer_init(&app->shutdown_timer, shutdown_poll_cb, SIM_SHUTDOWN_POLL_S, SIM_SHUTDOWN_POLL_S);
    ev_timer_start(app->loop, &app->shutdown_timer);
}

static void sig_term_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    app_shutdown(APP_CONTAINER_OF(w, sig_term), "SIGTERM");
}

static void sig_int_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    app_shutdown(APP_CONTAINER_OF(w, sig_int), "SIGINT");
}

static void sig_usr1_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    print_counts(APP_CONTAINER_OF(w, sig_usr1));
}

static void duration_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    app_shutdown(APP_CONTAINER_OF(w, duration_timer), "duration reached");
}

static int start_roles(struct sim_app *app, const struct sim_faults *faults)
{
    const struct sim_opts *o = app->opts;
    struct ota_err err;
    char host[64];
    struct sim_card_hook hook = {.deliver = app_card_deliver, .ctx = app};
    uint64_t seed = seed_u64(o->seed);

    if (o->ismg_addr != NULL) {
        struct sim_ismg_cfg c;
        sim_ismg_cfg_defaults(&c);
        if (parse_addr(o->ismg_addr, host, sizeof(host), &c.port) < 0) {
            fprintf(stderr, "otagw-sim: bad --ismg '%s' (want 127.0.0.1:PORT)\n", o->ismg_addr);
            return -EINVAL;
        }
        c.host = host;
        c.versions = strcmp(o->cmpp_version, "2.0") == 0   ? SIM_ISMG_VERS_20
                     : strcmp(o->cmpp_version, "3.0") == 0 ? SIM_ISMG_VERS_30
                                                           : SIM_ISMG_VERS_ANY;
        c.sp_id = o->sp_id;
        c.secret = (const uint8_t *)o->secret;
        c.secret_len = strlen(o->secret);
        c.rate_per_s = o->rate;
        c.window = o->window;
        c.gateway_code = o->gateway_code;
        c.heartbeat_s = o->heartbeat_s;
        c.resp_timeout_ms = o->resp_timeout_ms;
        c.faults = faults;
        c.seed = seed;
        c.card = hook;
        int rc = sim_ismg_new(app->loop, &c, &app->ismg, &err);
        if (rc < 0) {
            fprintf(stderr, "otagw-sim: %s\n", err.msg);
            return rc == -EINVAL ? -EINVAL : -EIO;
        }
    }
    if (o->smsc_addr != NULL) {
        struct sim_smsc_cfg c;
        sim_smsc_cfg_defaults(&c);
        if (parse_addr(o->smsc_addr, host, sizeof(host), &c.port) < 0) {
            fprintf(stderr, "otagw-sim: bad --smsc '%s' (want 127.0.0.1:PORT)\n", o->smsc_addr);
            return -EINVAL;
        }
        c.host = host;
        c.system_id = o->system_id;
        c.password = o->password;
        c.rate_per_s = o->rate;
        c.window = o->window;
        c.heartbeat_s = o->heartbeat_s;
        c.resp_timeout_ms = o->resp_timeout_ms;
        c.faults = faults;
        c.seed = seed;
        c.card = hook;
        int rc = sim_smsc_new(app->loop, &c, &app->smsc, &err);
        if (rc < 0) {
            fprintf(stderr, "otagw-sim: %s\n", err.msg);
            return rc == -EINVAL ? -EINVAL : -EIO;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sim_opts opts;
    if (parse_opts(argc, argv, &opts) < 0) {
        usage(stderr);
        return SIM_EXIT_USAGE;
    }
    struct sim_faults faults;
    struct ota_err err;
    if (sim_faults_parse(opts.faults, &faults, &err) < 0) {
        fprintf(stderr, "otagw-sim: --faults: %s\n", err.msg);
        return SIM_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);

    struct sim_app *app = calloc(1, sizeof(*app));
    if (app == NULL) {
        fprintf(stderr, "otagw-sim: out of memory\n");
        return SIM_EXIT_RUNTIME;
    }
    int status = SIM_EXIT_RUNTIME;
    app->opts = &opts;
    app->loop = ev_default_loop(EVFLAG_AUTO);
    if (app->loop == NULL) {
        fprintf(stderr, "otagw-sim: cannot start the event loop\n");
        goto out;
    }
    int rc = opts.population != NULL
                 ? sim_pop_load(opts.population, &app->pop, &err)
                 : sim_pop_generate(opts.generate, opts.msisdn_base, opts.seed, &app->pop, &err);
    if (rc < 0) {
        fprintf(stderr, "otagw-sim: population: %s\n", err.msg);
        status = rc == -EINVAL || rc == -ENOENT ? SIM_EXIT_USAGE : SIM_EXIT_RUNTIME;
        goto out;
    }
    if (opts.wallet_url != NULL) {
        struct sim_wallet_conf wc = {
            .url = opts.wallet_url, .ca_file = opts.wallet_ca, .token = opts.wallet_token};
        rc = sim_wallet_new(app->loop, app->pop, &wc, &app->wallet, &err);
        if (rc < 0) {
            fprintf(stderr, "otagw-sim: --wallet-url: %s\n", err.msg);
            status = rc == -EINVAL ? SIM_EXIT_USAGE : SIM_EXIT_RUNTIME;
            goto out;
        }
    }
    rc = start_roles(app, &faults);
    if (rc < 0) {
        status = rc == -EINVAL ? SIM_EXIT_USAGE : SIM_EXIT_RUNTIME;
        goto out;
    }
    if (opts.port_file != NULL && (rc = write_port_file(app)) < 0) {
        fprintf(stderr, "otagw-sim: cannot write %s: %s\n", opts.port_file, strerror(-rc));
        goto out;
    }
    ev_signal_init(&app->sig_term, sig_term_cb, SIGTERM);
    ev_signal_init(&app->sig_int, sig_int_cb, SIGINT);
    ev_signal_init(&app->sig_usr1, sig_usr1_cb, SIGUSR1);
    ev_signal_start(app->loop, &app->sig_term);
    ev_signal_start(app->loop, &app->sig_int);
    ev_signal_start(app->loop, &app->sig_usr1);
    ev_timer_init(&app->duration_timer, duration_cb, opts.duration_s, 0.);
    ev_timer_init(&app->shutdown_timer, shutdown_poll_cb, SIM_SHUTDOWN_POLL_S, SIM_SHUTDOWN_POLL_S);
    if (opts.duration_s > 0) {
        ev_timer_start(app->loop, &app->duration_timer);
    }
    app->started = ev_now(app->loop);
    fprintf(stderr, "otagw-sim: ready ismg=%u smsc=%u population=%" PRIu64 " pid=%ld\n",
            app->ismg != NULL ? (unsigned)sim_ismg_port(app->ismg) : 0u,
            app->smsc != NULL ? (unsigned)sim_smsc_port(app->smsc) : 0u, sim_pop_size(app->pop),
            (long)getpid());

    ev_run(app->loop, 0);

    print_counts(app);
    status = 0;
    ev_signal_stop(app->loop, &app->sig_term);
    ev_signal_stop(app->loop, &app->sig_int);
    ev_signal_stop(app->loop, &app->sig_usr1);
    ev_timer_stop(app->loop, &app->duration_timer);
    ev_timer_stop(app->loop, &app->shutdown_timer);
out:
    sim_ismg_free(app->ismg);
    sim_smsc_free(app->smsc);
    sim_wallet_free(app->wallet);
    sim_pop_free(app->pop);
    free(app);
    return status;
}
