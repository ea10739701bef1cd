/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `otatool send`: send one SMS part through a bearer link (native CMPP to an
 * ISMG, or a Kannel bearerbox box port) and print each event as one JSON
 * object per line on stdout: the submit result and, with --wait-dlr, the
 * delivery reports for its message id. Link state changes go to stderr as
 * JSON too. For operators debugging a link (issue #4, "Proof").
 */
#include "otatool.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "smpp/bearer.h"
#include "smpp/cmpp.h"

struct send_ctx {
    struct ev_loop *loop;
    struct bearer *b;
    struct bearer_msg msg;
    bool submitted, accepted, done;
    double wait_dlr_s;
    char msg_id[BEARER_MSGID_MAX];
    int rc;
    ev_timer deadline;
};

static void send_usage(FILE *f)
{
    fprintf(f,
            "usage: otatool send --link cmpp://HOST:PORT|kbox://HOST:PORT --dest MSISDN --ud HEX\n"
            "         [--udhi] [--pid HEX] [--dcs HEX] [--wait-dlr SECONDS] [--timeout SECONDS]\n"
            "  CMPP:  --version 2.0|3.0 --sp-id ID --secret S|@FILE --service-id X --src-id N\n"
            "  Kannel box: --boxc-id ID [--smsc-id ID]\n"
            "  --pid / --dcs default 7f / f6 (SIM data download, class 2 8-bit)\n"
            "Prints one JSON object per event; exit 0 when accepted (and, with\n"
            "--wait-dlr, when a final delivery report arrived in time).\n");
}

static void print_json(FILE *f, json_t *o)
{
    if (!o) {
        return;
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        fprintf(f, "%s\n", s);
        fflush(f);
        free(s);
    }
    json_decref(o);
}

static void finish(struct send_ctx *c, int rc)
{
    c->rc = rc;
    c->done = true;
    ev_break(c->loop, EVBREAK_ALL);
}

static void try_submit(struct send_ctx *c)
{
    struct ota_err e;
    if (c->submitted) {
        return;
    }
    int rc = bearer_submit(c->b, &c->msg, &e);
    if (rc == -EAGAIN) {
        return; /* the ready callback comes when the link is up */
    }
    if (rc < 0) {
        fprintf(stderr, "otatool: send: %s\n", e.msg);
        finish(c, TOOL_USAGE);
        return;
    }
    c->submitted = true;
}

static void on_result(void *arg, const struct bearer_submit_result *r)
{
    struct send_ctx *c = arg;
    print_json(stdout,
               json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:i}", "event", "submit_result", "status",
                         bearer_submit_status_name(r->status), "msg_id", r->msg_id, "code", r->code,
                         "reason", r->reason, "link", r->link, "attempts", (int)r->attempts));
    if (r->status != BEARER_SUBMIT_OK) {
        finish(c, TOOL_FAIL);
        return;
    }
    c->accepted = true;
    snprintf(c->msg_id, sizeof(c->msg_id), "%s", r->msg_id);
    if (c->wait_dlr_s <= 0) {
        finish(c, TOOL_OK);
        return;
    }
    ev_timer_stop(c->loop, &c->deadline);
    ev_timer_set(&c->deadline, c->wait_dlr_s, 0.);
    ev_timer_start(c->loop, &c->deadline);
}

static int on_dlr(void *arg, const struct bearer_dlr *d)
{
    struct send_ctx *c = arg;
    /*
     * A Kannel DLR names the SMSC's id while the submit result named the MT's
     * UUID; it carries our token back instead, so match on that when present.
     */
    bool ours =
        d->has_token ? d->token == c->msg.token : c->accepted && strcmp(d->msg_id, c->msg_id) == 0;
    print_json(stdout,
               json_pack("{s:s, s:s, s:s, s:b, s:s, s:i, s:s, s:s, s:b}", "event", "dlr", "msg_id",
                         d->msg_id, "state", bearer_dlr_state_name(d->state), "final", d->final,
                         "stat", d->stat, "err", d->err, "dest", d->dest ? d->dest : "", "link",
                         d->link ? d->link : "", "ours", ours));
    if (ours && d->final) {
        finish(c, d->state == BEARER_DLR_DELIVERED ? TOOL_OK : TOOL_FAIL);
    }
    return 0;
}

static int on_mo(void *arg, const struct bearer_mo *m)
{
    (void)arg;
    char hex[2 * 1024 + 1];
    size_t n = m->ud_len < 1024 ? m->ud_len : 1024;
    for (size_t i = 0; i < n; i++) {
        snprintf(hex + 2 * i, 3, "%02x", m->ud[i]);
    }
    hex[2 * n] = '\0';
    print_json(stdout, json_pack("{s:s, s:s, s:s, s:s, s:b, s:i}", "event", "mo", "orig",
                                 m->orig ? m->orig : "", "dest", m->dest ? m->dest : "", "ud", hex,
                                 "udhi", m->udhi, "pid", (int)m->pid));
    return 0;
}

static void on_state(void *arg, const char *link, enum bearer_link_state from,
                     enum bearer_link_state to, const char *why)
{
    (void)arg;
    print_json(stderr, json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "link", "link", link, "from",
                                 bearer_link_state_name(from), "to", bearer_link_state_name(to),
                                 "why", why ? why : ""));
}

static void on_ready(void *arg)
{
    try_submit(arg);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct send_ctx *c = (struct send_ctx *)((char *)w - offsetof(struct send_ctx, deadline));
    print_json(stdout, json_pack("{s:s, s:s}", "event", "timeout", "waiting",
                                 c->accepted ? "dlr" : "submit_result"));
    finish(c, TOOL_FAIL);
}

/* "cmpp://1.2.3.4:7890" or "kbox://[::1]:13001" into kind, host, port. */
static int parse_link(const char *s, struct bearer_link_conf *lc)
{
    const char *rest;
    if (strncmp(s, "cmpp://", 7) == 0) {
        bearer_link_conf_defaults(lc, BEARER_KIND_CMPP);
        rest = s + 7;
    } else if (strncmp(s, "kbox://", 7) == 0) {
        bearer_link_conf_defaults(lc, BEARER_KIND_KBOX);
        rest = s + 7;
    } else {
        return die("send: --link must be cmpp://HOST:PORT or kbox://HOST:PORT");
    }
    const char *colon = strrchr(rest, ':');
    if (!colon) {
        return die("send: --link needs :PORT");
    }
    const char *h = rest;
    size_t hl = (size_t)(colon - rest);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(lc->host)) {
        return die("send: bad host in --link");
    }
    memcpy(lc->host, h, hl);
    lc->host[hl] = '\0';
    uint64_t port;
    if (parse_uint("--link port", colon + 1, 65535, &port) < 0 || port == 0) {
        return TOOL_USAGE;
    }
    lc->port = (uint16_t)port;
    snprintf(lc->name, sizeof(lc->name), "%s", lc->kind == BEARER_KIND_CMPP ? "cmpp" : "kbox");
    return 0;
}

/* Secret text, or @FILE (first line) to keep it off the command line. */
static int read_secret(const char *arg, char *out, size_t cap)
{
    if (arg[0] != '@') {
        if (strlen(arg) >= cap) {
            return die("send: --secret too long");
        }
        memcpy(out, arg, strlen(arg) + 1);
        return 0;
    }
    FILE *f = fopen(arg + 1, "r");
    if (!f) {
        return die("send: cannot open %s", arg + 1);
    }
    char line[256];
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    if (!ok) {
        return die("send: %s is empty", arg + 1);
    }
    line[strcspn(line, "\r\n")] = '\0';
    if (strlen(line) >= cap) {
        return die("send: secret in %s too long", arg + 1);
    }
    memcpy(out, line, strlen(line) + 1);
    return 0;
}

static int copy_opt(const char *what, const char *v, char *out, size_t cap)
{
    if (!v) {
        return 0;
    }
    if (strlen(v) >= cap) {
        return die("send: %s longer than %zu characters", what, cap - 1);
    }
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

int cmd_send(int argc, char **argv)
{
    static const struct option lo[] = {
        {"link", required_argument, NULL, 'l'},
        {"version", required_argument, NULL, 'V'},
        {"sp-id", required_argument, NULL, 'p'},
        {"secret", required_argument, NULL, 's'},
        {"service-id", required_argument, NULL, 'S'},
        {"src-id", required_argument, NULL, 'r'},
        {"boxc-id", required_argument, NULL, 'b'},
        {"smsc-id", required_argument, NULL, 'm'},
        {"dest", required_argument, NULL, 'd'},
        {"ud", required_argument, NULL, 'u'},
        {"udhi", no_argument, NULL, 'U'},
        {"pid", required_argument, NULL, 'P'},
        {"dcs", required_argument, NULL, 'D'},
        {"wait-dlr", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *link = NULL, *version = "3.0", *sp_id = NULL, *secret = NULL, *service_id = NULL;
    const char *src_id = NULL, *boxc_id = NULL, *smsc_id = NULL, *dest = NULL, *ud = NULL;
    struct send_ctx c;
    uint64_t v;
    double timeout_s = 30;
    int opt;

    memset(&c, 0, sizeof(c));
    c.msg.pid = 0x7f;
    c.msg.dcs = 0xf6;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (opt) {
        case 'l':
            link = optarg;
            break;
        case 'V':
            version = optarg;
            break;
        case 'p':
            sp_id = optarg;
            break;
        case 's':
            secret = optarg;
            break;
        case 'S':
            service_id = optarg;
            break;
        case 'r':
            src_id = optarg;
            break;
        case 'b':
            boxc_id = optarg;
            break;
        case 'm':
            smsc_id = optarg;
            break;
        case 'd':
            dest = optarg;
            break;
        case 'u':
            ud = optarg;
            break;
        case 'U':
            c.msg.udhi = true;
            break;
        case 'P':
        case 'D': {
            uint8_t b;
            if (parse_hex_exact(opt == 'P' ? "--pid" : "--dcs", optarg, &b, 1) < 0) {
                return TOOL_USAGE;
            }
            *(opt == 'P' ? &c.msg.pid : &c.msg.dcs) = b;
            break;
        }
        case 'w':
        case 't':
            if (parse_uint(opt == 'w' ? "--wait-dlr" : "--timeout", optarg, 86400, &v) < 0) {
                return TOOL_USAGE;
            }
            *(opt == 'w' ? &c.wait_dlr_s : &timeout_s) = (double)v;
            break;
        case 'h':
            send_usage(stdout);
            return TOOL_OK;
        default:
            send_usage(stderr);
            return TOOL_USAGE;
        }
    }
    if (optind != argc) {
        return die("send: unexpected argument '%s'", argv[optind]);
    }
    if (!link || !dest || !ud) {
        send_usage(stderr);
        return die("send: --link, --dest and --ud are required");
    }
    struct bearer_link_conf lc;
    if (parse_link(link, &lc) != 0) {
        return TOOL_USAGE;
    }
    if (lc.kind == BEARER_KIND_CMPP) {
        if (strcmp(version, "2.0") == 0) {
            lc.u.cmpp.version = CMPP_V20;
        } else if (strcmp(version, "3.0") == 0) {
            lc.u.cmpp.version = CMPP_V30;
        } else {
            return die("send: --version must be 2.0 or 3.0");
        }
        if (!sp_id || !secret) {
            return die("send: CMPP needs --sp-id and --secret");
        }
        if (copy_opt("--sp-id", sp_id, lc.u.cmpp.sp_id, sizeof(lc.u.cmpp.sp_id)) ||
            read_secret(secret, lc.u.cmpp.secret, sizeof(lc.u.cmpp.secret)) ||
            copy_opt("--service-id", service_id, lc.u.cmpp.service_id,
                     sizeof(lc.u.cmpp.service_id)) ||
            copy_opt("--src-id", src_id, lc.u.cmpp.src_id, sizeof(lc.u.cmpp.src_id))) {
            return TOOL_USAGE;
        }
    } else {
        if (!boxc_id) {
            return die("send: kbox needs --boxc-id");
        }
        if (copy_opt("--boxc-id", boxc_id, lc.u.kbox.boxc_id, sizeof(lc.u.kbox.boxc_id)) ||
            copy_opt("--smsc-id", smsc_id, lc.u.kbox.smsc_id, sizeof(lc.u.kbox.smsc_id))) {
            return TOOL_USAGE;
        }
    }
    if (copy_opt("--dest", dest, c.msg.dest, sizeof(c.msg.dest))) {
        return TOOL_USAGE;
    }
    int n = parse_hex("--ud", ud, c.msg.ud, sizeof(c.msg.ud));
    if (n < 0) {
        return TOOL_USAGE;
    }
    c.msg.ud_len = (uint8_t)n;
    c.msg.want_report = c.wait_dlr_s > 0;
    c.msg.part = 1;
    c.msg.n_parts = 1;
    /* A random token: a stale report for an earlier send cannot pass for ours. */
    if (RAND_bytes((unsigned char *)&c.msg.token, sizeof(c.msg.token)) != 1) {
        return die("send: no random bytes for the token");
    }
    c.msg.priority = 3;
    lc.hold_ms = (unsigned)(timeout_s * 1000);

    struct ota_err e;
    c.loop = ev_loop_new(EVFLAG_AUTO);
    if (!c.loop) {
        return die("send: cannot create the event loop");
    }
    struct bearer_cbs cbs = {.submit_result = on_result,
                             .dlr = on_dlr,
                             .mo = on_mo,
                             .link_state = on_state,
                             .ready = on_ready,
                             .arg = &c};
    c.rc = TOOL_FAIL;
    if (bearer_new(c.loop, &cbs, &c.b, &e) < 0) {
        ev_loop_destroy(c.loop);
        return die("send: %s", e.msg);
    }
    if (bearer_add_link(c.b, &lc, &e) < 0) {
        bearer_free(c.b);
        ev_loop_destroy(c.loop);
        return die("send: %s", e.msg);
    }
    ev_timer_init(&c.deadline, deadline_cb, timeout_s, 0.);
    ev_timer_start(c.loop, &c.deadline);
    try_submit(&c);
    while (!c.done) {
        ev_run(c.loop, EVRUN_ONCE);
    }
    ev_timer_stop(c.loop, &c.deadline);
    bearer_free(c.b); /* a part still pending is reported RETRYABLE here */
    ev_loop_destroy(c.loop);
    return c.rc;
}
