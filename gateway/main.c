/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otagw: the daemon program (issue #6 "Daemon"). Command line, the libev
 * default loop, signals (SIGTERM/SIGINT: clean stop; SIGHUP: reopen the log)
 * around the context of gateway/gw.h.
 *
 * Stop sequence: the HTTP listener closes at once (no new work), then the
 * loop keeps running for up to DRAIN_MAX_MS while parts are still held by
 * or in flight on the links, so that their submit results are recorded;
 * then gw_stop() commits and closes everything. Tasks still waiting for a
 * DLR or PoR stay durable and resume after the next start.
 *
 * Exit status: 0 normal stop, 1 start-up failure, 2 bad command line or config.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "gateway/audit.h"
#include "gateway/conf.h"
#include "gateway/gw.h"

#define OTAGW_VERSION "0.1.0" /* keep in step with project(VERSION) in CMakeLists.txt */
#define DRAIN_MAX_MS 5000
#define DRAIN_POLL_S 0.05

struct prog {
    struct ev_loop *loop;
    struct gw *g;
    ev_signal sig_term, sig_int, sig_hup;
    ev_timer drain;
    ev_tstamp drain_until;
    bool draining;
};

static void usage(FILE *f)
{
    fputs("usage: otagw [-c FILE] [--port-file PATH] [--check-config]\n"
          "       otagw --help | --version\n"
          "  -c, --config FILE   configuration (conf/otagw.conf documents it);\n"
          "                      without it the embedded defaults apply\n"
          "  --check-config      load the configuration, print the effective one, exit\n"
          "                      (0 valid, 2 invalid)\n"
          "  --port-file PATH    write the bound HTTP port there once listening (tests)\n"
          "Signals: TERM/INT stop cleanly, HUP reopens the log file.\n",
          f);
}

/* Parts still on their way to the network: wait for them before closing the links. */
static bool parts_in_flight(struct gw *g)
{
    for (size_t i = 0;; i++) {
        const char *name;
        struct bearer_link_stats st;
        if (!bearer_link_stats(g->bearer, i, &name, &st)) {
            return false;
        }
        if ((st.in_flight || st.held) && st.state == BEARER_LINK_UP) {
            return true;
        }
    }
}

static void finish(struct prog *p)
{
    ev_timer_stop(p->loop, &p->drain);
    ev_signal_stop(p->loop, &p->sig_term);
    ev_signal_stop(p->loop, &p->sig_int);
    ev_signal_stop(p->loop, &p->sig_hup);
    gw_stop(p->g);
    p->g = NULL;
    ev_break(p->loop, EVBREAK_ALL);
}

static void on_drain(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct prog *p = w->data;
    if (!parts_in_flight(p->g) || ev_now(loop) >= p->drain_until) {
        if (parts_in_flight(p->g)) {
            gw_log(p->g, GW_CONF_LOG_WARNING, "drain time over, parts still in flight");
        }
        finish(p);
        return;
    }
    ev_timer_again(loop, w);
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct prog *p = w->data;
    if (p->draining) {
        gw_log(p->g, GW_CONF_LOG_WARNING, "second stop signal: stopping now");
        finish(p);
        return;
    }
    p->draining = true;
    p->g->stopping = true;
    gw_log(p->g, GW_CONF_LOG_NOTICE, "stop signal=%d draining_ms=%d", w->signum, DRAIN_MAX_MS);
    /*
     * No new requests from here on. Commit first: that answers the submits
     * waiting for their accept callback (they hold requests the server frees).
     */
    struct ota_err err;
    if (eng_flush(p->g->eng, &err) < 0) {
        gw_log(p->g, GW_CONF_LOG_ERR, "commit at stop failed err=\"%s\"", err.msg);
    }
    http_server_free(p->g->http);
    p->g->http = NULL;
    p->drain_until = ev_now(loop) + DRAIN_MAX_MS / 1000.0;
    ev_timer_init(&p->drain, on_drain, 0., DRAIN_POLL_S);
    p->drain.data = p;
    ev_timer_again(loop, &p->drain);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct prog *p = w->data;
    struct ota_err err;
    int rc = gw_reopen_log(p->g, &err);
    if (rc < 0) {
        gw_log(p->g, GW_CONF_LOG_ERR, "log reopen failed err=\"%s\"", err.msg);
    }
    /* spec 7.2: a reload is a security-relevant act; the log line alone is not the record */
    (void)gw_audit(p->g, "system", "config.reload", NULL, "signal=HUP log_reopen=%s",
                   rc < 0 ? "failed" : "ok");
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return -errno;
    }
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        return -errno;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},    {"check-config", no_argument, NULL, 'k'},
        {"port-file", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0},
    };
    const char *conf_path = NULL, *port_file = NULL;
    bool check = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            conf_path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'p':
            port_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("otagw %s\n", OTAGW_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "otagw: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    static struct gw_conf conf; /* large (paths, links): not on the stack */
    struct ota_err err;
    if (conf_path) {
        int rc = gw_conf_load(conf_path, &conf, &err);
        if (rc < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 2;
        }
    } else {
        gw_conf_defaults(&conf);
    }
    if (check) {
        int rc = gw_conf_dump(&conf, stdout);
        gw_conf_fini(&conf);
        return rc < 0 ? 1 : 0;
    }

    /* A client that goes away mid-answer must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    struct prog p = {.loop = ev_default_loop(EVFLAG_AUTO)};
    if (!p.loop) {
        fprintf(stderr, "otagw: cannot create the event loop\n");
        return 1;
    }
    int rc = gw_start(p.loop, &conf, &p.g, &err);
    gw_conf_fini(&conf);
    if (rc < 0) {
        fprintf(stderr, "otagw: start failed: %s\n", err.msg);
        return 1;
    }
    unsigned port = http_server_port(p.g->http);
    if (port_file && write_port_file(port_file, port) < 0) {
        fprintf(stderr, "otagw: cannot write %s\n", port_file);
        gw_stop(p.g);
        return 1;
    }
    ev_signal_init(&p.sig_term, on_stop_signal, SIGTERM);
    ev_signal_init(&p.sig_int, on_stop_signal, SIGINT);
    ev_signal_init(&p.sig_hup, on_hup, SIGHUP);
    p.sig_term.data = p.sig_int.data = p.sig_hup.data = &p;
    ev_signal_start(p.loop, &p.sig_term);
    ev_signal_start(p.loop, &p.sig_int);
    ev_signal_start(p.loop, &p.sig_hup);
    const char *host = p.g->conf.listen_host;
    bool v6 = strchr(host, ':') != NULL;
    printf("otagw listening on %s://%s%s%s:%u\n", http_server_tls(p.g->http) ? "https" : "http",
           v6 ? "[" : "", host, v6 ? "]" : "", port);
    fflush(stdout);

    ev_run(p.loop, 0);
    if (p.g) {
        gw_stop(p.g); /* the loop ended without a signal (nothing left to watch) */
    }
    ev_loop_destroy(p.loop);
    return 0;
}
