/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the configuration reader (gateway/conf.c): the shipped
 * conf/otagw.conf loads and equals the embedded defaults; every error class
 * stops with "NAME:LINE: reason" naming the key and leaves the output
 * untouched; units of durations and sizes; quotes, comments, CRLF and BOM;
 * IPv6 listeners; several links and the kbox kind; the dump masks secrets
 * and reads back.
 */
#include "gateway/conf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#define LINK_SIM                                                                                   \
    "[link sim]\nkind = cmpp\nhost = 127.0.0.1\nport = 7890\nsp_id = 901234\n"                     \
    "secret = otagw-test\n"

static int parse(const char *text, struct gw_conf *out, struct ota_err *err)
{
    return gw_conf_parse(text, strlen(text), "t.conf", out, err);
}

/* Equal apart from where eng.db_path points (each struct points into itself). */
static void assert_conf_eq(const struct gw_conf *a, const struct gw_conf *b)
{
    struct gw_conf *x = malloc(sizeof(*x)), *y = malloc(sizeof(*y));

    assert_non_null(x);
    assert_non_null(y);
    memcpy(x, a, sizeof(*x));
    memcpy(y, b, sizeof(*y));
    assert_ptr_equal(a->eng.db_path, a->db_path);
    assert_ptr_equal(b->eng.db_path, b->db_path);
    x->eng.db_path = NULL;
    y->eng.db_path = NULL;
    assert_memory_equal(x, y, sizeof(*x));
    free(x);
    free(y);
}

static void test_example_file_is_the_defaults(void **state)
{
    struct gw_conf *c = calloc(1, sizeof(*c)), *d = calloc(1, sizeof(*d));
    struct ota_err err;

    assert_int_equal(gw_conf_load(OTAGW_SOURCE_DIR "/conf/otagw.conf", c, &err), 0);
    gw_conf_defaults(d);
    assert_conf_eq(c, d);

    /* The brief's promises, spelled out so a change to both sides is still caught. */
    assert_string_equal(c->eng.db_path, "otagw.db");
    assert_true(c->eng.durable);
    assert_int_equal(c->n_links, 1);
    assert_string_equal(c->links[0].name, "sim");
    assert_int_equal(c->links[0].kind, BEARER_KIND_CMPP);
    assert_string_equal(c->links[0].host, "127.0.0.1");
    assert_int_equal(c->links[0].port, 7890);
    assert_int_equal(c->links[0].u.cmpp.version, 0x30);
    assert_string_equal(c->links[0].u.cmpp.sp_id, "901234");
    assert_string_equal(c->links[0].u.cmpp.secret, "otagw-test");
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 8080);
    assert_string_equal(c->pull_host, "127.0.0.1");
    assert_int_equal(c->pull_port, 8080);
    assert_false(c->plain_http); /* TLS by default (issue #7) */
    assert_string_equal(c->tls_cert, "otagw-cert.pem");
    assert_true(c->tls_self_signed);
    assert_int_equal(c->callback_secret_len, 0);
    assert_int_equal(c->eng.push_dst_port, 2948);
    assert_int_equal(c->scp02_level, OTA_SCP02_SL_CMAC_CDEC);

    /* The link the file describes is the one the bearer's own defaults give, plus identity. */
    struct bearer_link_conf b;
    bearer_link_conf_defaults(&b, BEARER_KIND_CMPP);
    assert_int_equal(c->links[0].window, b.window);
    assert_int_equal(c->links[0].heartbeat_s, b.heartbeat_s);
    assert_int_equal(c->links[0].hold_ms, b.hold_ms);
    assert_true(c->links[0].rate_per_s == b.rate_per_s);
    struct eng_conf e;
    eng_conf_defaults(&e);
    assert_int_equal(c->eng.dlr_timeout_s, e.dlr_timeout_s);
    assert_int_equal(c->eng.commit_max_staged, e.commit_max_staged);
    assert_int_equal(c->eng.max_attempts, e.max_attempts);
    assert_int_equal(c->eng.commit_interval_ms, e.commit_interval_ms);
    assert_int_equal(c->eng.commit_max_acks, e.commit_max_acks);
    gw_conf_fini(c);
    gw_conf_fini(d);
    free(c);
    free(d);
}

/* A file with only a link keeps every other default. */
static void test_minimal_file(void **state)
{
    struct gw_conf *c = calloc(1, sizeof(*c)), *d = calloc(1, sizeof(*d));
    struct ota_err err;

    assert_int_equal(parse("[link sim]\nkind = cmpp\nhost = 127.0.0.1\nport = 7890\n"
                           "sp_id = 901234\nsecret = otagw-test\nservice_id = OTA\n"
                           "src_id = 10658\n",
                           c, &err),
                     0);
    gw_conf_defaults(d);
    assert_conf_eq(c, d);
    free(c);
    free(d);
}

struct bad {
    const char *text;
    int rc;
    const char *prefix; /* "t.conf:LINE: " */
    const char *has;    /* must appear in the message */
};

static const struct bad bads[] = {
    /* structure */
    {"[foo]\n" LINK_SIM, -EINVAL, "t.conf:1: ", "unknown section [foo]"},
    {"[gateway]\nlisten = 127.0.0.1:1\nfoo = 1\n" LINK_SIM, -EINVAL,
     "t.conf:3: ", "unknown key 'foo' in [gateway]"},
    {"[engine]\nDB = x\n" LINK_SIM, -EINVAL, "t.conf:2: ", "unknown key 'DB'"},
    {LINK_SIM "colour = blue\n", -EINVAL, "t.conf:7: ", "unknown key 'colour' in [link sim]"},
    {"[engine]\ndb = a.db\n\ndb = b.db\n" LINK_SIM, -EINVAL,
     "t.conf:4: ", "key 'db' repeated (first at line 2)"},
    {"[wallet]\n[engine]\n[wallet]\n" LINK_SIM, -EINVAL,
     "t.conf:3: ", "section [wallet] repeated (first at line 1)"},
    {LINK_SIM "\n" LINK_SIM, -EINVAL, "t.conf:8: ", "link 'sim' repeated (first at line 1)"},
    {"db = x\n" LINK_SIM, -EINVAL, "t.conf:1: ", "key 'db' before any [section]"},
    {"[engine]\njust words\n" LINK_SIM, -EINVAL, "t.conf:2: ", "expected 'key = value'"},
    {"[engine]\n= 3\n" LINK_SIM, -EINVAL, "t.conf:2: ", "missing key"},
    {"[engine\n" LINK_SIM, -EINVAL, "t.conf:1: ", "must end with ']'"},
    {"[link]\n", -EINVAL, "t.conf:1: ", "needs a name"},
    {"[link a/b]\n", -EINVAL, "t.conf:1: ", "link name"},
    {"[link abcdefghijabcdefghijabcdefghijab]\n", -EINVAL, "t.conf:1: ", "link name"},
    {"", -EINVAL, "t.conf:1: ", "no [link NAME] section"},
    {"# only\n\n[engine]\ndb = x.db\n", -EINVAL, "t.conf:4: ", "no [link NAME] section"},
    /* missing required keys: reported at the link's header */
    {"\n[link a]\nhost = 127.0.0.1\nport = 1\n", -EINVAL,
     "t.conf:2: ", "[link a]: missing key 'kind'"},
    {"[link a]\nkind = kbox\nport = 1\n", -EINVAL, "t.conf:1: ", "missing key 'host'"},
    {"[link a]\nkind = kbox\nhost = ::1\n", -EINVAL, "t.conf:1: ", "missing key 'port'"},
    {"[link a]\nkind = cmpp\nhost = ::1\nport = 1\nsecret = s\n", -EINVAL,
     "t.conf:1: ", "missing key 'sp_id'"},
    {"[link a]\nkind = cmpp\nhost = ::1\nport = 1\nsp_id = 1\n", -EINVAL,
     "t.conf:1: ", "missing key 'secret'"},
    {"[link a]\nkind = kbox\nhost = ::1\nport = 1\nsp_id = 1\n", -EINVAL,
     "t.conf:5: ", "key 'sp_id' is for cmpp links"},
    {LINK_SIM "sender = 123\n", -EINVAL, "t.conf:7: ", "key 'sender' is for kbox links"},
    /* values: type, range, unit */
    {LINK_SIM "window = 0\n", -EINVAL, "t.conf:7: ", "window: bad value '0'"},
    {LINK_SIM "window = 4097\n", -EINVAL, "t.conf:7: ", "window: bad value '4097'"},
    {LINK_SIM "window = -1\n", -EINVAL, "t.conf:7: ", "window: bad value '-1'"},
    {"[link sim]\nkind = cmpp\nhost = 127.0.0.1\nport = 70000\n", -EINVAL,
     "t.conf:4: ", "port: bad value '70000'"},
    {"[link sim]\nkind = cmpp\nhost = 127.0.0.1\nport = 0\n", -EINVAL,
     "t.conf:4: ", "port: bad value '0'"},
    {LINK_SIM "version = 4.0\n", -EINVAL, "t.conf:7: ", "version: bad value '4.0'"},
    {"[wallet]\nscp02_level = 02\n" LINK_SIM, -EINVAL, "t.conf:2: ", "scp02_level: bad value '02'"},
    {"[wallet]\nscp02_level = 13\n" LINK_SIM, -EINVAL, "t.conf:2: ", "scp02_level"},
    {"[wallet]\nport = 65536\n" LINK_SIM, -EINVAL, "t.conf:2: ", "port: bad value '65536'"},
    {"[link k]\nkind = smpp\n", -EINVAL, "t.conf:2: ", "kind: bad value 'smpp'"},
    {"[link k]\nhost = localhost\n", -EINVAL, "t.conf:2: ", "host: bad value 'localhost'"},
    {"[link k]\nhost = [::1]\n", -EINVAL, "t.conf:2: ", "host: bad value"},
    {"[link a]\nkind = cmpp\nsp_id = 1234567\n", -EINVAL,
     "t.conf:3: ", "sp_id: bad value '1234567'"},
    {"[link a]\nsp_id = 12-4\n", -EINVAL, "t.conf:2: ", "letters and digits only"},
    {LINK_SIM "src_id = 12a\n", -EINVAL, "t.conf:7: ", "src_id: bad value '12a': digits only"},
    {LINK_SIM "rate = -1\n", -EINVAL, "t.conf:7: ", "rate: bad value"},
    {LINK_SIM "rate = 1.\n", -EINVAL, "t.conf:7: ", "rate: bad value"},
    {LINK_SIM "rate = 100001\n", -EINVAL, "t.conf:7: ", "rate: bad value"},
    {LINK_SIM "heartbeat = 0\n", -EINVAL, "t.conf:7: ", "heartbeat: bad value '0'"},
    {LINK_SIM "heartbeat = 1500ms\n", -EINVAL, "t.conf:7: ", "whole number of seconds"},
    {LINK_SIM "resp_timeout = 5x\n", -EINVAL, "t.conf:7: ", "resp_timeout: bad value '5x'"},
    {LINK_SIM "resp_timeout = 5 s\n", -EINVAL, "t.conf:7: ", "resp_timeout: bad value"},
    {LINK_SIM "resp_timeout = 99ms\n", -EINVAL, "t.conf:7: ", "out of range 100ms..10m"},
    {LINK_SIM "hold = 99999999999h\n", -EINVAL, "t.conf:7: ", "hold: bad value"},
    {LINK_SIM "reconnect_min = 1m\n", -EINVAL, "t.conf:7: ", "reconnect_max 30000ms is below"},
    {LINK_SIM "reconnect_max = 1s\nreconnect_min = 2s\n", -EINVAL,
     "t.conf:8: ", "reconnect_max 1000ms is below reconnect_min 2000ms"},
    {"[engine]\nbackoff = 2h\n" LINK_SIM, -EINVAL, "t.conf:2: ", "backoff_max 3600s is below"},
    {"[engine]\ndlr_timeout = 8d\n" LINK_SIM, -EINVAL, "t.conf:2: ", "dlr_timeout: bad value"},
    {"[engine]\ndlr_timeout = 169h\n" LINK_SIM, -EINVAL, "t.conf:2: ", "out of range 1s..168h"},
    {"[engine]\ncommit_interval = 2s\n" LINK_SIM, -EINVAL,
     "t.conf:2: ", "commit_interval: bad value '2s': out of range 0ms..1s"},
    {"[engine]\ncommit_max_acks = 4097\n" LINK_SIM, -EINVAL, "t.conf:2: ", "commit_max_acks"},
    {"[engine]\nmax_attempts = 0\n" LINK_SIM, -EINVAL, "t.conf:2: ", "max_attempts"},
    {"[engine]\nmax_attempts = 256\n" LINK_SIM, -EINVAL, "t.conf:2: ", "max_attempts"},
    {"[engine]\ndb =\n" LINK_SIM, -EINVAL, "t.conf:2: ", "db: bad value '': must not be empty"},
    {"[engine]\nsrc_addr = +8613\n" LINK_SIM, -EINVAL, "t.conf:2: ", "src_addr"},
    {"[engine]\ndurable = maybe\n" LINK_SIM, -EINVAL, "t.conf:2: ", "durable: bad value 'maybe'"},
    {"[engine]\ndurable = YES\n" LINK_SIM, -EINVAL, "t.conf:2: ", "durable"},
    {"[gateway]\nlisten = 127.0.0.1\n" LINK_SIM, -EINVAL, "t.conf:2: ", "listen: bad value"},
    {"[gateway]\nlisten = ::1:80\n" LINK_SIM, -EINVAL, "t.conf:2: ", "listen: bad value"},
    {"[gateway]\nlisten = [127.0.0.1]:80\n" LINK_SIM, -EINVAL, "t.conf:2: ", "listen"},
    {"[gateway]\nlisten = [::1]:80000\n" LINK_SIM, -EINVAL, "t.conf:2: ", "listen"},
    {"[gateway]\npull_listen = 1.2.3:80\n" LINK_SIM, -EINVAL, "t.conf:2: ", "pull_listen"},
    {"[gateway]\nlog_level = verbose\n" LINK_SIM, -EINVAL, "t.conf:2: ", "log_level"},
    {"[gateway]\nmax_body = 2G\n" LINK_SIM, -EINVAL, "t.conf:2: ", "max_body: bad value '2G'"},
    {"[gateway]\nmax_body = 512M\n" LINK_SIM, -EINVAL, "t.conf:2: ", "out of range 1k..256M"},
    {"[gateway]\nmax_body = 1023\n" LINK_SIM, -EINVAL, "t.conf:2: ", "max_body"},
    {"[gateway]\nplain_http = yes\nlisten = 0.0.0.0:80\n" LINK_SIM, -EINVAL, "t.conf:2: ",
     "plain_http = yes is allowed only when every listener is on loopback; listen 0.0.0.0"},
    {"[tls]\nself_signed = maybe\n" LINK_SIM, -EINVAL, "t.conf:2: ", "self_signed: bad value"},
    {"[gateway]\ncallback_secret = 0011\n" LINK_SIM, -EINVAL,
     "t.conf:2: ", "callback_secret: bad value '(hidden)'"},
    {"[gateway]\ncallback_secret = 00112233445566778899aabbccddeefg\n" LINK_SIM, -EINVAL,
     "t.conf:2: ", "hex digits only"},
    {"[gateway]\ncallback_secret = 00112233445566778899aabbccddeeff0\n" LINK_SIM, -EINVAL,
     "t.conf:2: ", "callback_secret"},
    /* quoting */
    {LINK_SIM "service_id = a#b\n", -EINVAL, "t.conf:7: ", "service_id: '#' in an unquoted"},
    {"[link sim]\nkind = cmpp # the kind\n", -EINVAL, "t.conf:2: ", "kind: '#'"},
    {LINK_SIM "service_id = \"abc\n", -EINVAL, "t.conf:7: ", "unterminated quote"},
    {LINK_SIM "service_id = \"abc\" x\n", -EINVAL, "t.conf:7: ", "after the closing quote"},
    {LINK_SIM "service_id = \"a\\nb\"\n", -EINVAL, "t.conf:7: ", "backslash"},
    {LINK_SIM "service_id = a\"b\n", -EINVAL, "t.conf:7: ", "quote the whole value"},
    {LINK_SIM "service_id = 12345678901\n", -EINVAL, "t.conf:7: ", "longer than 10 octets"},
    /* text */
    {LINK_SIM "service_id = \xff\n", -EINVAL, "t.conf:7: ", "invalid UTF-8"},
    {LINK_SIM "service_id = \xc0\xaf\n", -EINVAL, "t.conf:7: ", "invalid UTF-8"},
    {LINK_SIM "service_id = \xed\xa0\x80\n", -EINVAL, "t.conf:7: ", "invalid UTF-8"},
    {LINK_SIM "service_id = a\x01\n", -EINVAL, "t.conf:7: ", "control character"},
    {LINK_SIM "service_id = a\xc2\x85\n", -EINVAL, "t.conf:7: ", "control character"},
};

static void test_errors(void **state)
{
    struct gw_conf *out = malloc(sizeof(*out));
    unsigned char *pat = malloc(sizeof(*out));

    assert_non_null(out);
    assert_non_null(pat);
    memset(pat, 0xa5, sizeof(*out));
    for (size_t i = 0; i < OTA_ARRAY_SIZE(bads); i++) {
        struct ota_err err;
        memcpy(out, pat, sizeof(*out));
        int rc = parse(bads[i].text, out, &err);
        if (rc != bads[i].rc || strncmp(err.msg, bads[i].prefix, strlen(bads[i].prefix)) != 0 ||
            !strstr(err.msg, bads[i].has)) {
            print_error("case %zu: rc %d msg \"%s\"; want %d \"%s...%s\"\n", i, rc, err.msg,
                        bads[i].rc, bads[i].prefix, bads[i].has);
            fail();
        }
        /* Nothing half-filled: the output is untouched. */
        assert_memory_equal(out, pat, sizeof(*out));
    }
    free(out);
    free(pat);
}

/* Secrets never appear in a message, even when the bad part is elsewhere. */
static void test_errors_hide_secrets(void **state)
{
    struct gw_conf *c = malloc(sizeof(*c));
    struct ota_err err;

    assert_int_equal(parse("[link a]\nkind = cmpp\nhost = 127.0.0.1\nport = 1\nsp_id = 1\n"
                           "secret = \"super secret value that is far too long to be a CMPP "
                           "secret, 64 octets at most\"\n",
                           c, &err),
                     -EINVAL);
    assert_true(strncmp(err.msg, "t.conf:6: secret: bad value '(hidden)'", 38) == 0);
    assert_null(strstr(err.msg, "super"));
    free(c);
}

static void test_long_lines(void **state)
{
    size_t cap = 3 * GW_CONF_LINE_MAX;
    char *t = malloc(cap);
    struct gw_conf *c = malloc(sizeof(*c));
    struct ota_err err;
    int n;

    /* A comment of exactly GW_CONF_LINE_MAX octets is fine (CRLF not counted in it). */
    n = snprintf(t, cap, "%s#", LINK_SIM);
    memset(t + n, 'x', GW_CONF_LINE_MAX - 1);
    memcpy(t + n + GW_CONF_LINE_MAX - 1, "\r\n", 3);
    assert_int_equal(parse(t, c, &err), 0);
    /* One more octet is not. */
    n = snprintf(t, cap, "%s#", LINK_SIM);
    memset(t + n, 'x', GW_CONF_LINE_MAX);
    memcpy(t + n + GW_CONF_LINE_MAX, "\n", 2);
    assert_int_equal(parse(t, c, &err), -EINVAL);
    assert_string_equal(err.msg, "t.conf:7: line longer than 4096 octets");
    /* A long file name is cut from the left; the line number survives. */
    assert_int_equal(gw_conf_parse(t, strlen(t),
                                   "/a/very/long/directory/name/that/goes/on/and/on/and/on/"
                                   "and/on/otagw.conf",
                                   c, &err),
                     -EINVAL);
    assert_true(strncmp(err.msg, "...", 3) == 0);
    assert_non_null(strstr(err.msg, "/otagw.conf:7: line longer"));
    free(t);
    free(c);
}

static void test_nul_and_size(void **state)
{
    static const char text[] = LINK_SIM "service_id = a\0b\n";
    struct gw_conf *c = malloc(sizeof(*c));
    struct ota_err err;

    assert_int_equal(gw_conf_parse(text, sizeof(text) - 1, "t.conf", c, &err), -EINVAL);
    assert_string_equal(err.msg, "t.conf:7: NUL octet (the file must be UTF-8 text)");

    char *big = malloc(GW_CONF_FILE_MAX + 1);
    memset(big, '\n', GW_CONF_FILE_MAX + 1);
    assert_int_equal(gw_conf_parse(big, GW_CONF_FILE_MAX + 1, "t.conf", c, &err), -EFBIG);
    assert_non_null(strstr(err.msg, "t.conf: larger than"));
    free(big);
    free(c);
}

static void test_too_many_links(void **state)
{
    char t[4096];
    size_t o = 0;
    struct gw_conf *c = malloc(sizeof(*c));
    struct ota_err err;

    for (int i = 0; i < GW_CONF_LINKS_MAX; i++) {
        o +=
            (size_t)snprintf(t + o, sizeof(t) - o,
                             "[link l%d]\nkind = kbox\nhost = 127.0.0.1\nport = %d\n", i, 1000 + i);
    }
    assert_int_equal(parse(t, c, &err), 0);
    assert_int_equal(c->n_links, GW_CONF_LINKS_MAX);
    assert_string_equal(c->links[7].name, "l7");
    assert_int_equal(c->links[7].port, 1007);
    snprintf(t + o, sizeof(t) - o, "[link l8]\n");
    assert_int_equal(parse(t, c, &err), -EINVAL);
    assert_string_equal(err.msg, "t.conf:33: more than 8 links");
    free(c);
}

static void test_units(void **state)
{
    struct gw_conf *c = malloc(sizeof(*c));
    struct ota_err err;

    assert_int_equal(parse("[engine]\ndlr_timeout = 2m\npor_timeout = 90\npull_timeout = 2000ms\n"
                           "session_timeout = 1h\nbackoff = 1s\nbackoff_max = 168h\n"
                           "commit_interval = 250ms\ncommit_max_acks = 0\n"
                           "[gateway]\nmax_body = 64k\n" LINK_SIM "resp_timeout = 1500ms\n"
                           "hold = 2h\nreconnect_min = 10ms\nreconnect_max = 1h\n"
                           "throttle_pause = 250ms\nheartbeat = 1m\nrate = 2.5\n",
                           c, &err),
                     0);
    assert_int_equal(c->eng.dlr_timeout_s, 120);
    assert_int_equal(c->eng.por_timeout_s, 90);
    assert_int_equal(c->eng.pull_timeout_s, 2);
    assert_int_equal(c->eng.session_timeout_s, 3600);
    assert_int_equal(c->eng.backoff_s, 1);
    assert_int_equal(c->eng.backoff_max_s, 168 * 3600);
    assert_int_equal(c->eng.commit_interval_ms, 250);
    assert_int_equal(c->eng.commit_max_acks, 0);
    assert_int_equal(c->max_body, 65536);
    assert_int_equal(c->links[0].resp_timeout_ms, 1500);
    assert_int_equal(c->links[0].hold_ms, 7200000);
    assert_int_equal(c->links[0].reconnect_min_ms, 10);
    assert_int_equal(c->links[0].reconnect_max_ms, 3600000);
    assert_int_equal(c->links[0].throttle_pause_ms, 250);
    assert_int_equal(c->links[0].heartbeat_s, 60);
    assert_true(c->links[0].rate_per_s == 2.5);

    assert_int_equal(parse("[gateway]\nmax_body = 2M\n" LINK_SIM "rate = 0\n", c, &err), 0);
    assert_int_equal(c->max_body, 2097152);
    assert_true(c->links[0].rate_per_s == 0.0);
    assert_int_equal(parse("[gateway]\nmax_body = 1024\n" LINK_SIM "rate = 0.000001\n", c, &err),
                     0);
    assert_int_equal(c->max_body, 1024);
    assert_true(c->links[0].rate_per_s > 0.0 && c->links[0].rate_per_s < 0.00001);
    assert_int_equal(parse("[gateway]\nmax_body = 256M\n" LINK_SIM, c, &err), 0);
    assert_int_equal(c->max_body, 256u * 1048576u);
    free(c);
}

static void test_quotes_comments_crlf_bom(void **state)
{
    struct gw_conf *c = malloc(sizeof(*c));
    struct ota_err err;

    assert_int_equal(parse("\xef\xbb\xbf# comment\r\n   # indented comment\r\n\t\r\n"
                           "[ gateway ]\r\n"
                           "log_file = \"/var/log/otagw #1.log\"  \r\n"
                           "log_level=debug\r\n"
                           "[engine]\r\n"
                           "db =   /data/otagw files/é.db   \r\n"
                           "src_addr = \"\"\r\n"
                           "[link  a-1.b_2 ]\r\n"
                           "kind = cmpp\r\nhost = 10.0.0.1\r\nport = 7890\r\nsp_id = AB12\r\n"
                           "secret = \" a \\\"b\\\" \\\\ c \"\r\n"
                           "version = 2.0\r\n",
                           c, &err),
                     0);
    assert_string_equal(c->log_file, "/var/log/otagw #1.log");
    assert_int_equal(c->log_level, GW_CONF_LOG_DEBUG);
    assert_string_equal(c->db_path, "/data/otagw files/é.db");
    assert_string_equal(c->eng.db_path, "/data/otagw files/é.db");
    assert_string_equal(c->eng.src_addr, "");
    assert_string_equal(c->links[0].name, "a-1.b_2");
    assert_string_equal(c->links[0].u.cmpp.secret, " a \"b\" \\ c ");
    assert_string_equal(c->links[0].u.cmpp.sp_id, "AB12");
    assert_int_equal(c->links[0].u.cmpp.version, 0x20);
    /* The file ends without a newline: the last line still counts. */
    assert_int_equal(parse(LINK_SIM "window = 3", c, &err), 0);
    assert_int_equal(c->links[0].window, 3);
    free(c);
}

static void test_listen(void **state)
{
    struct gw_conf *c = malloc(sizeof(*c));
    struct ota_err err;

    assert_int_equal(parse("[gateway]\nlisten = [::1]:8443\n" LINK_SIM, c, &err), 0);
    assert_string_equal(c->listen_host, "::1");
    assert_int_equal(c->listen_port, 8443);
    /* pull_listen follows listen unless given */
    assert_string_equal(c->pull_host, "::1");
    assert_int_equal(c->pull_port, 8443);

    assert_int_equal(
        parse("[gateway]\nlisten = 0.0.0.0:0\npull_listen = [fe80::1:2]:9000\n" LINK_SIM, c, &err),
        0);
    assert_string_equal(c->listen_host, "0.0.0.0");
    assert_int_equal(c->listen_port, 0);
    assert_string_equal(c->pull_host, "fe80::1:2");
    assert_int_equal(c->pull_port, 9000);
    free(c);
}

static void test_two_links_and_kbox(void **state)
{
    struct gw_conf *c = malloc(sizeof(*c));
    struct ota_err err;
    struct bearer_link_conf kd;

    assert_int_equal(parse(LINK_SIM "window = 32\n\n[link kannel]\nkind = kbox\nhost = ::1\n"
                                    "port = 13001\nboxc_id = otagw-1\nsmsc_id = \"smsc a\"\n"
                                    "sender = 10658\n",
                           c, &err),
                     0);
    assert_int_equal(c->n_links, 2);
    assert_string_equal(c->links[0].name, "sim");
    assert_int_equal(c->links[0].window, 32);
    assert_int_equal(c->links[0].heartbeat_s, 180);
    assert_string_equal(c->links[1].name, "kannel");
    assert_int_equal(c->links[1].kind, BEARER_KIND_KBOX);
    assert_string_equal(c->links[1].host, "::1");
    assert_int_equal(c->links[1].port, 13001);
    assert_string_equal(c->links[1].u.kbox.boxc_id, "otagw-1");
    assert_string_equal(c->links[1].u.kbox.smsc_id, "smsc a");
    assert_string_equal(c->links[1].u.kbox.sender, "10658");
    /* kind defaults come from the bearer, whatever order the keys came in */
    bearer_link_conf_defaults(&kd, BEARER_KIND_KBOX);
    assert_int_equal(c->links[1].heartbeat_s, kd.heartbeat_s);
    assert_int_equal(c->links[1].window, kd.window);

    assert_int_equal(
        parse("[link k]\nheartbeat = 5s\nport = 1\nhost = 127.0.0.1\nkind = kbox\n", c, &err), 0);
    assert_int_equal(c->links[0].heartbeat_s, 5);
    assert_string_equal(c->links[0].u.kbox.boxc_id, "");
    free(c);
}

static void test_load_errors(void **state)
{
    struct gw_conf *c = malloc(sizeof(*c));
    struct ota_err err;

    memset(c, 0x5a, sizeof(*c));
    assert_int_equal(gw_conf_load("/nonexistent/otagw.conf", c, &err), -ENOENT);
    assert_true(strncmp(err.msg, "/nonexistent/otagw.conf: cannot open", 36) == 0);
    assert_int_equal(((unsigned char *)c)[0], 0x5a);
    assert_int_equal(gw_conf_load("/", c, &err), -EINVAL);
    assert_string_equal(err.msg, "/: not a regular file");

    /* A bad file on disk is reported with its path and line. */
    char path[] = "/tmp/test_conf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char bad[] = "[link a]\nkind = cmpp\nwindow = 0\n";
    assert_int_equal(write(fd, bad, sizeof(bad) - 1), (ssize_t)sizeof(bad) - 1);
    close(fd);
    assert_int_equal(gw_conf_load(path, c, &err), -EINVAL);
    char want[64];
    snprintf(want, sizeof(want), "%s:3: window: bad value '0'", path);
    assert_true(strncmp(err.msg, want, strlen(want)) == 0);
    unlink(path);
    free(c);
}

static char *dump_str(const struct gw_conf *c, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);

    assert_non_null(f);
    assert_int_equal(gw_conf_dump(c, f), 0);
    fclose(f);
    return buf;
}

static void test_dump(void **state)
{
    struct gw_conf *c = malloc(sizeof(*c)), *d = malloc(sizeof(*d));
    struct ota_err err;
    size_t len;
    char *s;

    gw_conf_defaults(c);
    memcpy(c->callback_secret, "0123456789abcdef", 16);
    c->callback_secret_len = 16;
    s = dump_str(c, &len);
    assert_non_null(strstr(s, "\nsecret = ***\n"));
    assert_non_null(strstr(s, "\ncallback_secret = ***\n"));
    assert_null(strstr(s, "otagw-test"));
    assert_null(strstr(s, "0123456789abcdef"));
    assert_non_null(strstr(s, "\n[link sim]\nkind = cmpp\nhost = 127.0.0.1\nport = 7890\n"));
    assert_non_null(strstr(s, "\nscp02_level = 03\n"));
    free(s);

    /* Without secrets the dump reads back as the same configuration. */
    assert_int_equal(parse("[gateway]\nlisten = [::1]:0\nlog_file = \"a # b \\\"c\\\"\"\n"
                           "max_body = 3k\n[engine]\ndb = \" x.db\"\nsrc_addr = 106\n"
                           "durable = no\n[wallet]\nscp02_level = 01\nwait_pull = no\n"
                           "[link k]\nkind = kbox\nhost = 127.0.0.1\nport = 13001\n"
                           "rate = 12.125\nsmsc_id = \"\"\n",
                           c, &err),
                     0);
    s = dump_str(c, &len);
    assert_int_equal(gw_conf_parse(s, len, "dump", d, &err), 0);
    assert_conf_eq(c, d);
    free(s);
    free(c);
    free(d);
}

static void test_eng_and_fini(void **state)
{
    struct gw_conf *c = malloc(sizeof(*c)), *d = malloc(sizeof(*d));
    struct ota_err err;

    assert_int_equal(
        parse("[gateway]\ncallback_secret = 00112233445566778899AABBCCDDEEFF\n" LINK_SIM, c, &err),
        0);
    assert_int_equal(c->callback_secret_len, 16);
    assert_int_equal(c->callback_secret[10], 0xaa);
    memcpy(d, c, sizeof(*d));
    assert_ptr_equal(d->eng.db_path, c->db_path); /* a by-value copy points into the original */
    assert_ptr_equal(gw_conf_eng(d), &d->eng);
    assert_ptr_equal(d->eng.db_path, d->db_path);
    gw_conf_fini(c);
    assert_int_equal(c->callback_secret_len, 0);
    assert_true(c->callback_secret[10] == 0 && c->links[0].u.cmpp.secret[0] == 0);
    gw_conf_fini(c);
    gw_conf_fini(NULL);
    assert_string_equal(gw_conf_log_level_name(GW_CONF_LOG_WARNING), "warning");
    assert_string_equal(gw_conf_log_level_name((enum gw_conf_log_level)9), "unknown");
    assert_int_equal(gw_conf_parse(NULL, 1, "x", c, &err), -EINVAL);
    free(c);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file_is_the_defaults),
        cmocka_unit_test(test_minimal_file),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_hide_secrets),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_nul_and_size),
        cmocka_unit_test(test_too_many_links),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_quotes_comments_crlf_bom),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_two_links_and_kbox),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_eng_and_fini),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
