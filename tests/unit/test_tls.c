/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of TLS (issue #7): gateway/tls.c (self-signed generation and
 * reuse, certificate/key checks naming the file, loopback test), the TLS
 * listener of gateway/http.c driven by an OpenSSL client in the same thread
 * (TLS 1.2 and 1.3 answered, TLS 1.1 refused, plain HTTP on the TLS port gets
 * no HTTP answer, ALPN never h2, custom headers reach the handler), the
 * [tls] / plain_http configuration rules, and result callbacks over https to
 * a receiver whose certificate comes from a CA made here: delivered with the
 * right CA, never sent with another CA or a wrong host name (retried, reason
 * logged). Every certificate is generated at test time in a temp directory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gateway/api_util.h"
#include "gateway/callbacks.h"
#include "gateway/conf.h"
#include "gateway/gw.h"
#include "gateway/http.h"
#include "gateway/tls.h"
#include "tests/support/ts_http.h"
#include "tests/support/tsupport.h"

#define LINK_SIM                                                                                   \
    "[link sim]\nkind = cmpp\nhost = 127.0.0.1\nport = 7890\nsp_id = 901234\n"                     \
    "secret = otagw-test\n"

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *mk_tmpdir(void)
{
    char *d = strdup("/tmp/otagw-tls-XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return false;
    }
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* ---- a test PKI: CA and leaf certificates made with the OpenSSL API ---- */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *v)
{
    X509V3_CTX c;
    X509V3_set_ctx_nodb(&c);
    X509V3_set_ctx(&c, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &c, nid, v);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate for key, signed by issuer (NULL: self-signed CA). san NULL = none. */
static X509 *mk_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, const char *san)
{
    static long serial = 1000;
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *n = X509_get_subject_name(x);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
    X509 *iss = issuer ? issuer : x;
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(iss)), 1);
    add_ext(x, iss, NID_subject_key_identifier, "hash");
    if (!issuer) {
        add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
        add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, iss, NID_ext_key_usage, "serverAuth");
    }
    if (san) {
        add_ext(x, iss, NID_subject_alt_name, san);
    }
    assert_true(X509_sign(x, issuer ? ikey : key, EVP_sha256()) > 0);
    return x;
}

static void write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

struct pki {
    char *dir;
    char *ca1, *ca2;            /* two unrelated CAs */
    char *leaf_cert, *leaf_key; /* CA1, SAN IP:127.0.0.1 */
    char *bad_host_cert;        /* CA1, SAN DNS:other.example only; same key as leaf */
};

static void pki_make(struct pki *p)
{
    p->dir = mk_tmpdir();
    p->ca1 = path_in(p->dir, "ca1.pem");
    p->ca2 = path_in(p->dir, "ca2.pem");
    p->leaf_cert = path_in(p->dir, "leaf.pem");
    p->leaf_key = path_in(p->dir, "leaf.key");
    p->bad_host_cert = path_in(p->dir, "badhost.pem");
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *kl = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_true(k1 && k2 && kl);
    X509 *c1 = mk_cert(k1, "otagw test CA 1", NULL, NULL, NULL);
    X509 *c2 = mk_cert(k2, "otagw test CA 2", NULL, NULL, NULL);
    X509 *leaf = mk_cert(kl, "127.0.0.1", c1, k1, "IP:127.0.0.1");
    X509 *bad = mk_cert(kl, "other.example", c1, k1, "DNS:other.example");
    write_cert(p->ca1, c1);
    write_cert(p->ca2, c2);
    write_cert(p->leaf_cert, leaf);
    write_cert(p->bad_host_cert, bad);
    write_key(p->leaf_key, kl);
    X509_free(c1);
    X509_free(c2);
    X509_free(leaf);
    X509_free(bad);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(kl);
}

static void pki_free(struct pki *p)
{
    (void)ts_rmdir_tree(p->dir);
    free(p->dir);
    free(p->ca1);
    free(p->ca2);
    free(p->leaf_cert);
    free(p->leaf_key);
    free(p->bad_host_cert);
}

/* ---- self-signed generation and file checks ---- */

static bool cert_has_san(const char *path, const char *dns, const uint8_t ip4[4])
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool dns_ok = false, ip_ok = false;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS && ASN1_STRING_length(g->d.dNSName) == (int)strlen(dns) &&
            !memcmp(ASN1_STRING_get0_data(g->d.dNSName), dns, strlen(dns))) {
            dns_ok = true;
        }
        if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 4 &&
            !memcmp(ASN1_STRING_get0_data(g->d.iPAddress), ip4, 4)) {
            ip_ok = true;
        }
    }
    GENERAL_NAMES_free(gens);
    X509_free(x);
    return dns_ok && ip_ok;
}

static void test_self_signed_generate_and_reuse(void **state)
{
    (void)state;
    char *dir = mk_tmpdir();
    char *cert = path_in(dir, "c.pem"), *key = path_in(dir, "k.pem");
    struct ota_err err;
    bool gen = false;
    char fp1[GW_TLS_FP_LEN], fp2[GW_TLS_FP_LEN];

    assert_int_equal(gw_tls_prepare(cert, key, true, &gen, fp1, &err), 0);
    assert_true(gen);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(cert, &st), 0);
    static const uint8_t lo[4] = {127, 0, 0, 1};
    assert_true(cert_has_san(cert, "localhost", lo));
    assert_int_equal(strlen(fp1), 95); /* 32 hex pairs and 31 colons */
    assert_int_equal(gw_tls_check_pair(cert, key, NULL, &err), 0);

    /* second start: the same pair is reused, not regenerated */
    assert_int_equal(gw_tls_prepare(cert, key, true, &gen, fp2, &err), 0);
    assert_false(gen);
    assert_string_equal(fp1, fp2);

    /* half a pair is never completed nor overwritten */
    assert_int_equal(unlink(key), 0);
    assert_int_equal(gw_tls_prepare(cert, key, true, &gen, fp2, &err), -ENOENT);
    assert_non_null(strstr(err.msg, key));
    assert_false(gen);
    assert_int_equal(access(key, F_OK), -1);

    /* self_signed = no: a missing file stops start-up, named */
    assert_int_equal(unlink(cert), 0);
    assert_int_equal(gw_tls_prepare(cert, key, false, &gen, fp2, &err), -ENOENT);
    assert_non_null(strstr(err.msg, cert));
    assert_int_equal(access(cert, F_OK), -1);

    /* a directory that does not exist: the failure names the file */
    char *deep = path_in(dir, "no/such/c.pem");
    assert_true(gw_tls_prepare(deep, key, true, &gen, fp2, &err) < 0);
    assert_non_null(strstr(err.msg, "no/such/c.pem"));
    assert_int_equal(access(key, F_OK), -1); /* the key written first is taken back */
    free(deep);

    free(cert);
    free(key);
    (void)ts_rmdir_tree(dir);
    free(dir);
}

static void test_bad_files_refused(void **state)
{
    (void)state;
    struct pki p;
    pki_make(&p);
    char *other_c = path_in(p.dir, "o.pem"), *other_k = path_in(p.dir, "o.key");
    char *junk = path_in(p.dir, "junk.pem"), *missing = path_in(p.dir, "missing.pem");
    struct ota_err err;
    assert_int_equal(gw_tls_self_signed(other_c, other_k, &err), 0);
    FILE *f = fopen(junk, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
    fclose(f);

    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct http_server *s = NULL;
    struct http_conf c = {.bind_addr = "127.0.0.1", .tls_cert = missing, .tls_key = p.leaf_key};
    assert_int_equal(http_server_new(loop, &c, &s, &err), -ENOENT);
    assert_null(s);
    assert_non_null(strstr(err.msg, missing));

    c.tls_cert = p.leaf_cert;
    c.tls_key = missing;
    assert_int_equal(http_server_new(loop, &c, &s, &err), -ENOENT);
    assert_non_null(strstr(err.msg, missing));

    c.tls_cert = junk;
    c.tls_key = p.leaf_key;
    assert_int_equal(http_server_new(loop, &c, &s, &err), -EINVAL);
    assert_non_null(strstr(err.msg, junk));
    assert_non_null(strstr(err.msg, "not a PEM certificate"));

    /* a key that is not the certificate's: both files named */
    c.tls_cert = p.leaf_cert;
    c.tls_key = other_k;
    assert_int_equal(http_server_new(loop, &c, &s, &err), -EINVAL);
    assert_non_null(strstr(err.msg, other_k));
    assert_non_null(strstr(err.msg, p.leaf_cert));
    assert_non_null(strstr(err.msg, "does not belong"));

    /* a certificate where the key belongs */
    c.tls_cert = p.leaf_cert;
    c.tls_key = p.leaf_cert;
    assert_int_equal(http_server_new(loop, &c, &s, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "private key"));

    /* plain HTTP only on loopback */
    struct http_conf pc = {.bind_addr = "0.0.0.0"};
    assert_int_equal(http_server_new(loop, &pc, &s, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "plain HTTP"));
    assert_null(s);

    /* CA bundle checks */
    assert_int_equal(gw_tls_check_ca("", &err), 0);
    assert_int_equal(gw_tls_check_ca(p.ca1, &err), 0);
    assert_int_equal(gw_tls_check_ca(missing, &err), -ENOENT);
    assert_non_null(strstr(err.msg, missing));
    assert_int_equal(gw_tls_check_ca(p.leaf_key, &err), -EINVAL);
    assert_non_null(strstr(err.msg, p.leaf_key));
    SSL_CTX *cc = NULL;
    assert_int_equal(gw_tls_client_ctx_new(missing, &cc, &err), -EINVAL);
    assert_null(cc);
    assert_int_equal(gw_tls_client_ctx_new(NULL, &cc, &err), 0);
    SSL_CTX_free(cc);

    ev_loop_destroy(loop);
    free(other_c);
    free(other_k);
    free(junk);
    free(missing);
    pki_free(&p);
}

static void test_loopback(void **state)
{
    (void)state;
    assert_true(gw_tls_is_loopback("127.0.0.1"));
    assert_true(gw_tls_is_loopback("127.1.2.3"));
    assert_true(gw_tls_is_loopback("::1"));
    assert_true(gw_tls_is_loopback("::ffff:127.0.0.1"));
    assert_false(gw_tls_is_loopback("0.0.0.0"));
    assert_false(gw_tls_is_loopback("::"));
    assert_false(gw_tls_is_loopback("128.0.0.1"));
    assert_false(gw_tls_is_loopback("192.0.2.1"));
    assert_false(gw_tls_is_loopback("::ffff:10.0.0.1"));
    assert_false(gw_tls_is_loopback("localhost"));
    assert_false(gw_tls_is_loopback(NULL));
}

/* ---- configuration ---- */

static int parse(const char *text, struct gw_conf *out, struct ota_err *err)
{
    return gw_conf_parse(text, strlen(text), "t.conf", out, err);
}

static void test_conf_tls_rules(void **state)
{
    (void)state;
    struct gw_conf *c = malloc(sizeof(*c));
    struct ota_err err;
    assert_non_null(c);

    gw_conf_defaults(c);
    assert_false(c->plain_http);
    assert_true(c->tls_self_signed);
    assert_string_equal(c->tls_key, "otagw-key.pem");
    assert_string_equal(c->tls_ca_file, "");

    assert_int_equal(parse("[tls]\ncert = /etc/otagw/c.pem\nkey = \"/etc/otagw/k y.pem\"\n"
                           "ca_file = /etc/otagw/ca.pem\nself_signed = no\n" LINK_SIM,
                           c, &err),
                     0);
    assert_string_equal(c->tls_cert, "/etc/otagw/c.pem");
    assert_string_equal(c->tls_key, "/etc/otagw/k y.pem");
    assert_string_equal(c->tls_ca_file, "/etc/otagw/ca.pem");
    assert_false(c->tls_self_signed);
    assert_false(c->plain_http);

    /* plain_http = yes: loopback listeners only, whatever the order of the keys */
    assert_int_equal(parse("[gateway]\nlisten = 127.0.0.1:0\nplain_http = yes\n" LINK_SIM, c, &err),
                     0);
    assert_true(c->plain_http);
    assert_int_equal(parse("[gateway]\nplain_http = yes\nlisten = [::1]:0\n" LINK_SIM, c, &err), 0);
    assert_int_equal(
        parse("[gateway]\nlisten = 0.0.0.0:8080\nplain_http = yes\n" LINK_SIM, c, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "t.conf:3: "));
    assert_non_null(strstr(err.msg, "listen 0.0.0.0"));
    assert_int_equal(
        parse("[gateway]\nplain_http = yes\npull_listen = 192.0.2.7:80\n" LINK_SIM, c, &err),
        -EINVAL);
    assert_non_null(strstr(err.msg, "pull_listen 192.0.2.7"));
    /* TLS on a public address is fine */
    assert_int_equal(parse("[gateway]\nlisten = 0.0.0.0:8443\nplain_http = no\n" LINK_SIM, c, &err),
                     0);

    assert_int_equal(parse("[tls]\ncert = \n" LINK_SIM, c, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "cert"));
    assert_int_equal(parse("[tls]\nverify = yes\n" LINK_SIM, c, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "unknown key 'verify' in [tls]"));
    assert_int_equal(parse("[tls]\n[tls]\n" LINK_SIM, c, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "repeated"));

    /* the dump shows [tls] and reads back */
    assert_int_equal(parse("[tls]\ncert = a.pem\nself_signed = no\n" LINK_SIM, c, &err), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(gw_conf_dump(c, f), 0);
    fclose(f);
    assert_non_null(strstr(buf, "\n[tls]\ncert = a.pem\nkey = otagw-key.pem\nca_file = \"\"\n"
                                "self_signed = no\n"));
    /* the [tls] part of the dump reads back (the other sections are test_conf's) */
    char *sect = strstr(buf, "\n[tls]\n") + 1;
    char *next = strstr(sect + 1, "\n[");
    assert_non_null(next);
    char text[1024];
    snprintf(text, sizeof(text), "%.*s%s", (int)(next + 1 - sect), sect, LINK_SIM);
    struct gw_conf *d = malloc(sizeof(*d));
    (void)len;
    if (parse(text, d, &err) != 0) {
        fail_msg("dump does not read back: %s", err.msg);
    }
    assert_string_equal(d->tls_cert, "a.pem");
    assert_false(d->tls_self_signed);
    free(buf);
    free(d);
    free(c);
}

/* ---- the TLS listener ---- */

struct srv_fx {
    struct ev_loop *loop;
    char *dir, *cert, *key;
    struct http_server *srv;
    uint16_t port;
};

static void ping_handler(struct http_req *req, void *arg)
{
    (void)arg;
    const char *ik = http_req_header(req, "idempotency-key");
    const char *au = http_req_header(req, "authorization");
    (void)http_respond_json(
        req, 200,
        json_pack("{s:b, s:s, s:s}", "pong", 1, "idem", ik ? ik : "", "auth", au ? au : ""));
}

static int srv_setup(void **state)
{
    struct srv_fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = mk_tmpdir();
    f->cert = path_in(f->dir, "c.pem");
    f->key = path_in(f->dir, "k.pem");
    struct ota_err err;
    assert_int_equal(gw_tls_self_signed(f->cert, f->key, &err), 0);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    struct http_conf c = {.bind_addr = "127.0.0.1", .tls_cert = f->cert, .tls_key = f->key};
    if (http_server_new(f->loop, &c, &f->srv, &err) < 0) {
        fail_msg("http_server_new: %s", err.msg);
    }
    assert_true(http_server_tls(f->srv));
    f->port = http_server_port(f->srv);
    assert_int_equal(http_route(f->srv, "GET", "/ping", ping_handler, f, &err), 0);
    *state = f;
    return 0;
}

static int srv_teardown(void **state)
{
    struct srv_fx *f = *state;
    http_server_free(f->srv);
    ev_loop_destroy(f->loop);
    (void)ts_rmdir_tree(f->dir);
    free(f->dir);
    free(f->cert);
    free(f->key);
    free(f);
    return 0;
}

/*
 * A client context: TLS versions [min, max] (0 = library default), verifying
 * the server against ca (NULL: no verification), offering alpn (wire format).
 */
static SSL_CTX *cli_ctx(int min, int max, const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    if (min && min < TLS1_2_VERSION) {
        /* OpenSSL 3 allows TLS 1.0/1.1 only at security level 0: a deliberately old client. */
        SSL_CTX_set_security_level(ctx, 0);
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"), 1);
    }
    if (min) {
        assert_int_equal(SSL_CTX_set_min_proto_version(ctx, min), 1);
    }
    if (max) {
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max), 1);
    }
    if (ca) {
        assert_int_equal(SSL_CTX_load_verify_file(ctx, ca), 1);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}

/* The OpenSSL reason of the last failed cli_connect: tells a server's refusal from our own. */
static int last_reason;

/* Handshake to the fixture's port, pumping the server's loop: the SSL or NULL if it failed. */
static SSL *cli_connect(struct srv_fx *f, SSL_CTX *ctx, const unsigned char *alpn,
                        unsigned alpn_len, int *fd_out)
{
    int fd = ts_http_connect(f->port);
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    SSL_set_fd(ssl, fd);
    assert_int_equal(SSL_set1_host(ssl, "127.0.0.1"), 1);
    if (alpn) {
        assert_int_equal(SSL_set_alpn_protos(ssl, alpn, alpn_len), 0);
    }
    int64_t end = api_now_ms() + 5000;
    while (api_now_ms() < end) {
        int r = SSL_connect(ssl);
        if (r == 1) {
            *fd_out = fd;
            return ssl;
        }
        int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            break;
        }
        ts_http_pump(f->loop);
    }
    last_reason = ERR_GET_REASON(ERR_peek_last_error());
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return NULL;
}

/* Send req, read the answer until the server closes or 5 s pass; malloc'ed text. */
static char *cli_exchange(struct srv_fx *f, SSL *ssl, const char *req)
{
    size_t off = 0, n = strlen(req);
    int64_t end = api_now_ms() + 5000;
    while (off < n && api_now_ms() < end) {
        int r = SSL_write(ssl, req + off, (int)(n - off));
        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        ts_http_pump(f->loop);
    }
    assert_int_equal(off, n);
    size_t cap = 65536, have = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while (api_now_ms() < end && have < cap - 1) {
        int r = SSL_read(ssl, buf + have, (int)(cap - 1 - have));
        if (r > 0) {
            have += (size_t)r;
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            break; /* closed */
        }
        ts_http_pump(f->loop);
    }
    ERR_clear_error();
    buf[have] = '\0';
    return buf;
}

static const char ping_req[] = "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nIdempotency-Key: k-42\r\n"
                               "Authorization: Bearer tok\r\nConnection: close\r\n\r\n";

static void handshake_and_ping(struct srv_fx *f, int min, int max, int want_version)
{
    SSL_CTX *ctx = cli_ctx(min, max, f->cert);
    int fd = -1;
    SSL *ssl = cli_connect(f, ctx, NULL, 0, &fd);
    assert_non_null(ssl);
    assert_int_equal(SSL_version(ssl), want_version);
    assert_int_equal(SSL_get_verify_result(ssl), X509_V_OK);
    assert_null(SSL_get_current_compression(ssl));
    if (!min) {
        assert_int_equal(SSL_get_negotiated_group(ssl), NID_X25519); /* not lws's P-256 only */
    }
    char *ans = cli_exchange(f, ssl, ping_req);
    assert_true(strncmp(ans, "HTTP/1.1 200", 12) == 0);
    /* custom headers reach the handler over TLS (they would not over lws h2) */
    assert_non_null(strstr(ans, "\"idem\":\"k-42\""));
    assert_non_null(strstr(ans, "\"auth\":\"Bearer tok\""));
    free(ans);
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
}

static void test_tls12_and_tls13_answered(void **state)
{
    struct srv_fx *f = *state;
    handshake_and_ping(f, TLS1_2_VERSION, TLS1_2_VERSION, TLS1_2_VERSION);
    handshake_and_ping(f, TLS1_3_VERSION, TLS1_3_VERSION, TLS1_3_VERSION);
    /* a client allowing both gets 1.3 */
    handshake_and_ping(f, 0, 0, TLS1_3_VERSION);
}

static void test_old_tls_refused(void **state)
{
    struct srv_fx *f = *state;
    int fd = -1;
    SSL_CTX *ctx = cli_ctx(TLS1_1_VERSION, TLS1_1_VERSION, NULL);
    assert_null(cli_connect(f, ctx, NULL, 0, &fd));
    /* the server said no (an alert), not our client unable to try */
    assert_int_equal(last_reason, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    SSL_CTX_free(ctx);
    ctx = cli_ctx(TLS1_VERSION, TLS1_VERSION, NULL);
    assert_null(cli_connect(f, ctx, NULL, 0, &fd));
    assert_int_equal(last_reason, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    SSL_CTX_free(ctx);
    /* a TLS 1.2 client offering only CBC-SHA1 ciphers (no ECDHE+AEAD) is refused too */
    ctx = cli_ctx(TLS1_2_VERSION, TLS1_2_VERSION, NULL);
    assert_int_equal(SSL_CTX_set_cipher_list(ctx, "AES128-SHA:AES256-SHA"), 1);
    assert_null(cli_connect(f, ctx, NULL, 0, &fd));
    assert_int_equal(last_reason, SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
    SSL_CTX_free(ctx);
    /* the server still serves afterwards */
    handshake_and_ping(f, 0, 0, TLS1_3_VERSION);
}

/* A TLS 1.2 client asking to renegotiate is refused (SSL_OP_NO_RENEGOTIATION). */
static void test_renegotiation_refused(void **state)
{
    struct srv_fx *f = *state;
    SSL_CTX *ctx = cli_ctx(TLS1_2_VERSION, TLS1_2_VERSION, f->cert);
    int fd = -1;
    SSL *ssl = cli_connect(f, ctx, NULL, 0, &fd);
    assert_non_null(ssl);
    assert_int_equal(SSL_renegotiate(ssl), 1);
    int r = 0, e = SSL_ERROR_WANT_READ, reason = 0;
    int64_t end = api_now_ms() + 5000;
    while (api_now_ms() < end) {
        r = SSL_do_handshake(ssl);
        if (r == 1) {
            /* the new ClientHello is out; the server's answer comes with the next read */
            char b[16];
            r = SSL_read(ssl, b, sizeof(b));
        }
        e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            /* before pumping: the server's OpenSSL calls share this thread's error queue */
            reason = ERR_GET_REASON(ERR_peek_last_error());
            break;
        }
        ts_http_pump(f->loop);
    }
    assert_true(r <= 0);
    assert_int_equal(e, SSL_ERROR_SSL);
    assert_int_equal(reason, SSL_R_NO_RENEGOTIATION);
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
}

static void test_plain_http_on_tls_port(void **state)
{
    struct srv_fx *f = *state;
    int fd = ts_http_connect(f->port);
    const char req[] = "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    char buf[4096];
    size_t have = 0;
    bool closed = false;
    int64_t end = api_now_ms() + 3000;
    while (!closed && api_now_ms() < end && have < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (r > 0) {
            have += (size_t)r;
        } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            closed = true;
        } else {
            ts_http_pump(f->loop);
        }
    }
    buf[have] = '\0';
    close(fd);
    assert_true(closed); /* the server hung up rather than waiting */
    assert_null(strstr(buf, "HTTP/"));
    assert_null(strstr(buf, "pong"));
}

static void test_alpn_never_h2(void **state)
{
    struct srv_fx *f = *state;
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    static const unsigned char h2[] = "\x02h2";
    SSL_CTX *ctx = cli_ctx(0, 0, f->cert);
    const unsigned char *sel = NULL;
    unsigned sel_len = 0;
    int fd = -1;

    SSL *ssl = cli_connect(f, ctx, both, sizeof(both) - 1, &fd);
    assert_non_null(ssl);
    SSL_get0_alpn_selected(ssl, &sel, &sel_len);
    assert_int_equal(sel_len, 8);
    assert_memory_equal(sel, "http/1.1", 8);
    char *ans = cli_exchange(f, ssl, ping_req);
    assert_true(strncmp(ans, "HTTP/1.1 200", 12) == 0);
    free(ans);
    SSL_free(ssl);
    close(fd);

    /* h2 alone: no protocol agreed (not h2), and HTTP/1.1 still answers */
    ssl = cli_connect(f, ctx, h2, sizeof(h2) - 1, &fd);
    assert_non_null(ssl);
    SSL_get0_alpn_selected(ssl, &sel, &sel_len);
    assert_int_equal(sel_len, 0);
    ans = cli_exchange(f, ssl, ping_req);
    assert_true(strncmp(ans, "HTTP/1.1 200", 12) == 0);
    free(ans);
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
}

/* A client verifying against another CA refuses the server: our certificate is what it presents. */
static void test_client_verification_fails_with_wrong_ca(void **state)
{
    struct srv_fx *f = *state;
    struct pki p;
    pki_make(&p);
    SSL_CTX *ctx = cli_ctx(0, 0, p.ca1);
    int fd = -1;
    assert_null(cli_connect(f, ctx, NULL, 0, &fd));
    assert_int_equal(last_reason, SSL_R_CERTIFICATE_VERIFY_FAILED);
    SSL_CTX_free(ctx);
    pki_free(&p);
}

/* ---- result callbacks over https ---- */

struct cb_fx {
    struct ev_loop *loop;
    struct pki p;
    char db[160], log[160];
    struct gw g;
    struct http_server *rx;
    uint16_t rx_port;
    unsigned n_rx;
};

static int fb_submit(void *arg, const struct bearer_msg *m, struct ota_err *err)
{
    (void)arg;
    (void)m;
    (void)err;
    return 0;
}

static void fb_noop(void *arg)
{
    (void)arg;
}

static void cb_hook_final(void *arg, const struct eng_task_view *t)
{
    struct cb_fx *f = arg;
    gw_callbacks_task_final(&f->g, t);
}

static void rx_handler(struct http_req *req, void *arg)
{
    struct cb_fx *f = arg;
    f->n_rx++;
    (void)http_respond_json(req, 200, NULL);
}

/* The receiving platform on TLS with cert; the callbacks trust ca_file. */
static void cb_up(struct cb_fx *f, const char *cert, const char *ca_file)
{
    struct ota_err err;
    struct http_conf hc = {
        .bind_addr = "127.0.0.1", .idle_timeout_s = 5, .tls_cert = cert, .tls_key = f->p.leaf_key};
    if (http_server_new(f->loop, &hc, &f->rx, &err) < 0) {
        fail_msg("receiver: %s", err.msg);
    }
    f->rx_port = http_server_port(f->rx);
    assert_int_equal(http_route(f->rx, "POST", "/hook", rx_handler, f, &err), 0);

    snprintf(f->g.conf.tls_ca_file, sizeof(f->g.conf.tls_ca_file), "%s", ca_file);
    struct eng_conf c;
    eng_conf_defaults(&c);
    c.db_path = f->db;
    c.durable = false;
    struct eng_hooks hooks = {.final = cb_hook_final, .arg = f};
    if (eng_open(f->loop, &c, &hooks, &f->g.eng, &err) < 0) {
        fail_msg("eng_open: %s", err.msg);
    }
    struct eng_bearer_ops ops = {
        .submit = fb_submit, .release_acks = fb_noop, .discard_acks = fb_noop, .arg = f};
    eng_set_bearer(f->g.eng, &ops);
    if (gw_callbacks_start(&f->g, &err) < 0) {
        fail_msg("gw_callbacks_start: %s", err.msg);
    }
    struct gw_callbacks_knobs k = {.tick_ms = 10,
                                   .backoff_ms = 60,
                                   .backoff_max_ms = 240,
                                   .timeout_ms = 3000,
                                   .max_age_ms = 3600 * 1000,
                                   .max_inflight = 4};
    assert_int_equal(gw_callbacks_set_knobs(&f->g, &k), 0);
    assert_int_equal(eng_se_register(f->g.eng, "SE-A", "8613800000001", "b1", &err), 0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
}

static int cb_setup(void **state)
{
    struct cb_fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    pki_make(&f->p);
    snprintf(f->db, sizeof(f->db), "%s/q.db", f->p.dir);
    snprintf(f->log, sizeof(f->log), "%s/gw.log", f->p.dir);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    f->g.loop = f->loop;
    f->g.log = fopen(f->log, "w");
    assert_non_null(f->g.log);
    f->g.conf.log_level = GW_CONF_LOG_DEBUG;
    *state = f;
    return 0;
}

static int cb_teardown(void **state)
{
    struct cb_fx *f = *state;
    gw_callbacks_stop(&f->g);
    eng_close(f->g.eng);
    http_server_free(f->rx);
    ev_loop_destroy(f->loop);
    fclose(f->g.log);
    pki_free(&f->p);
    free(f);
    return 0;
}

static struct gw_callbacks_stats cb_stats(struct cb_fx *f)
{
    struct gw_callbacks_stats s;
    gw_callbacks_get_stats(&f->g, &s);
    return s;
}

#define CB_WAIT_FOR(f, cond, ms)                                                                   \
    do {                                                                                           \
        int64_t end_ = api_now_ms() + (ms);                                                        \
        while (!(cond) && api_now_ms() < end_) {                                                   \
            ts_http_pump((f)->loop);                                                               \
        }                                                                                          \
        assert_true(cond);                                                                         \
    } while (0)

/* A push task with an https callback_url to the receiver, cancelled: final. */
static int64_t cb_task_final(struct cb_fx *f)
{
    char params[256];
    snprintf(params, sizeof(params), "{\"callback_url\":\"https://127.0.0.1:%u/hook\"}",
             (unsigned)f->rx_port);
    struct eng_task_spec sp = {.seid = "SE-A",
                               .op = TASK_OP_PUSH,
                               .channel = TASK_CH_PUSH,
                               .params = params,
                               .not_before_ms = api_now_ms() + 3600 * 1000};
    struct ota_err err;
    int64_t id = 0;
    if (eng_submit(f->g.eng, &sp, NULL, NULL, &id, &err) < 0) {
        fail_msg("eng_submit: %s", err.msg);
    }
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    assert_int_equal(eng_task_cancel(f->g.eng, id, &err), 0);
    assert_int_equal(eng_flush(f->g.eng, &err), 0);
    return id;
}

static void test_callback_https_delivered(void **state)
{
    struct cb_fx *f = *state;
    cb_up(f, f->p.leaf_cert, f->p.ca1);
    int64_t id = cb_task_final(f);
    CB_WAIT_FOR(f, cb_stats(f).acked == 1, 8000);
    assert_int_equal(f->n_rx, 1);
    assert_int_equal(cb_stats(f).failed, 0);
    struct store_cb row;
    struct ota_err err;
    assert_int_equal(store_cb_get_task(eng_store(f->g.eng), id, &row, &err), 0);
    assert_int_equal(row.state, STORE_CB_DONE);
    store_cb_fini(&row);
}

static void expect_not_delivered(struct cb_fx *f, int64_t id)
{
    CB_WAIT_FOR(f, cb_stats(f).failed >= 2, 8000);
    assert_int_equal(cb_stats(f).acked, 0);
    assert_int_equal(f->n_rx, 0); /* the body never reached the handler */
    struct store_cb row;
    struct ota_err err;
    assert_int_equal(store_cb_get_task(eng_store(f->g.eng), id, &row, &err), 0);
    assert_int_equal(row.state, STORE_CB_PENDING); /* retried later, not abandoned */
    assert_true(row.attempts >= 2);
    store_cb_fini(&row);
    fflush(f->g.log);
    assert_true(file_has(f->log, "msg=\"callback failed\""));
}

static void test_callback_other_ca_not_delivered(void **state)
{
    struct cb_fx *f = *state;
    cb_up(f, f->p.leaf_cert, f->p.ca2);
    expect_not_delivered(f, cb_task_final(f));
    /* the reason names the verification failure */
    assert_true(file_has(f->log, "why=\"tls: server certificate refused: unable to get local "
                                 "issuer certificate (depth 0)\""));
}

static void test_callback_wrong_host_not_delivered(void **state)
{
    struct cb_fx *f = *state;
    cb_up(f, f->p.bad_host_cert, f->p.ca1);
    expect_not_delivered(f, cb_task_final(f));
    assert_true(file_has(f->log, "server certificate refused: IP address mismatch"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_signed_generate_and_reuse),
        cmocka_unit_test(test_bad_files_refused),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_conf_tls_rules),
        cmocka_unit_test_setup_teardown(test_tls12_and_tls13_answered, srv_setup, srv_teardown),
        cmocka_unit_test_setup_teardown(test_old_tls_refused, srv_setup, srv_teardown),
        cmocka_unit_test_setup_teardown(test_renegotiation_refused, srv_setup, srv_teardown),
        cmocka_unit_test_setup_teardown(test_plain_http_on_tls_port, srv_setup, srv_teardown),
        cmocka_unit_test_setup_teardown(test_alpn_never_h2, srv_setup, srv_teardown),
        cmocka_unit_test_setup_teardown(test_client_verification_fails_with_wrong_ca, srv_setup,
                                        srv_teardown),
        cmocka_unit_test_setup_teardown(test_callback_https_delivered, cb_setup, cb_teardown),
        cmocka_unit_test_setup_teardown(test_callback_other_ca_not_delivered, cb_setup,
                                        cb_teardown),
        cmocka_unit_test_setup_teardown(test_callback_wrong_host_not_delivered, cb_setup,
                                        cb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
