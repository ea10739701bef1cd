/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS material (gateway/tls.h, issue #7): certificate/key checks with
 * messages that name the file, the self-signed certificate of a fresh
 * install, and the TLS contexts' common floor. OpenSSL 3 only: libwebsockets
 * does the TLS itself on the listener and on the callback client; here we
 * only prepare what it is given.
 *
 * Why check files ourselves: libwebsockets 4.1 only logs "problem getting
 * cert" and fails its whole context (leaking part of it), which tells the
 * operator nothing about which file or why.
 */
#include "gateway/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* The first OpenSSL error reason as text, for messages; the queue is cleared. */
static const char *tls_why(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0) {
        snprintf(buf, cap, "unknown OpenSSL error");
    } else {
        const char *r = ERR_reason_error_string(e);
        snprintf(buf, cap, "%s", r ? r : "OpenSSL error");
    }
    ERR_clear_error();
    return buf;
}

/* Open path for reading; fail naming what it is (what = "certificate", "key", "CA file"). */
static int tls_open(const char *what, const char *path, FILE **out, struct ota_err *err)
{
    if (!path || !path[0]) {
        return ota_fail(err, -EINVAL, OTA_ERR_MISSING, "tls: no %s file configured", what);
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        return ota_fail(err, -e, OTA_ERR_ARG, "tls %s %s: cannot open: %s", what, path,
                        strerror(e));
    }
    *out = f;
    return 0;
}

static int tls_read_cert(const char *path, X509 **out, struct ota_err *err)
{
    FILE *f = NULL;
    int rc = tls_open("certificate", path, &f, err);
    if (rc < 0) {
        return rc;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!x) {
        char why[128];
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "tls certificate %s: not a PEM certificate (%s)", path,
                        tls_why(why, sizeof(why)));
    }
    *out = x;
    return 0;
}

/* A passphrase callback that refuses: the daemon cannot prompt, so encrypted keys are refused. */
static int tls_no_pass(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int tls_read_key(const char *path, EVP_PKEY **out, struct ota_err *err)
{
    FILE *f = NULL;
    int rc = tls_open("key", path, &f, err);
    if (rc < 0) {
        return rc;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, tls_no_pass, NULL);
    fclose(f);
    if (!k) {
        char why[128];
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "tls key %s: not an unencrypted PEM private key (%s)", path,
                        tls_why(why, sizeof(why)));
    }
    *out = k;
    return 0;
}

static int tls_fp(X509 *x, char fp[GW_TLS_FP_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!X509_digest(x, EVP_sha256(), md, &n) || n != 32) {
        return -EIO;
    }
    static const char hex[] = "0123456789ABCDEF";
    for (unsigned i = 0; i < n; i++) {
        fp[3 * i] = hex[md[i] >> 4];
        fp[3 * i + 1] = hex[md[i] & 15];
        fp[3 * i + 2] = i + 1 < n ? ':' : '\0';
    }
    return 0;
}

int gw_tls_check_pair(const char *cert_path, const char *key_path, char fp[GW_TLS_FP_LEN],
                      struct ota_err *err)
{
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    int rc = tls_read_cert(cert_path, &x, err);
    if (rc < 0) {
        goto out;
    }
    rc = tls_read_key(key_path, &k, err);
    if (rc < 0) {
        goto out;
    }
    if (X509_check_private_key(x, k) != 1) {
        ERR_clear_error();
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "tls key %s does not belong to certificate %s",
                      key_path, cert_path);
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "tls certificate %s has expired", cert_path);
        goto out;
    }
    if (fp && tls_fp(x, fp) < 0) {
        rc = ota_fail(err, -EIO, OTA_ERR_STATE, "tls certificate %s: cannot hash it", cert_path);
        goto out;
    }
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

/* ---- self-signed certificate ------------------------------------------------------------ */

static int tls_add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext) {
        return -EIO;
    }
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -EIO;
}

static X509 *tls_make_cert(EVP_PKEY *k)
{
    X509 *x = X509_new();
    ASN1_INTEGER *serial = NULL;
    BIGNUM *bn = NULL;
    if (!x) {
        return NULL;
    }
    /* A random positive 127-bit serial: RFC 5280 wants unique serials, even for self-signed. */
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        goto fail;
    }
    rnd[0] &= 0x7f;
    bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    X509_NAME *name = X509_get_subject_name(x);
    /* An hour back: a client whose clock is a little behind still accepts it. */
    if (!serial || X509_set_version(x, 2) != 1 || X509_set_serialNumber(x, serial) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)GW_TLS_SELF_SIGNED_DAYS * 86400L) ||
        X509_set_pubkey(x, k) != 1 ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"otagw", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(x, name) != 1 ||
        tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        tls_add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
        tls_add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
        tls_add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") < 0 ||
        tls_add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
        tls_add_ext(x, NID_authority_key_identifier, "keyid:always") < 0 ||
        X509_sign(x, k, EVP_sha256()) <= 0) {
        goto fail;
    }
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return x;
fail:
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    X509_free(x);
    return NULL;
}

/* Write to "<path>.tmp" (mode, exclusive) with fn, then rename over path only if path is absent. */
static int tls_write_file(const char *what, const char *path, mode_t mode,
                          int (*fn)(FILE *f, void *obj), void *obj, struct ota_err *err)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        return ota_fail(err, -ENAMETOOLONG, OTA_ERR_ARG, "tls %s %s: path too long", what, path);
    }
    (void)unlink(tmp); /* a leftover of a crash during an earlier generation */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        return ota_fail(err, -e, OTA_ERR_ARG, "tls %s %s: cannot create: %s", what, tmp,
                        strerror(e));
    }
    /* open() applies the umask; the key must be 0600 whatever it is. */
    (void)fchmod(fd, mode);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return ota_fail(err, -e, OTA_ERR_ARG, "tls %s %s: %s", what, tmp, strerror(e));
    }
    int ok = fn(f, obj) == 0;
    ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok) {
        unlink(tmp);
        return ota_fail(err, -EIO, OTA_ERR_STATE, "tls %s %s: write failed", what, tmp);
    }
    /* link() fails when path appeared meanwhile: never replace a file someone else put there. */
    if (link(tmp, path) < 0) {
        int e = errno;
        /* A file system without hard links: rename, after checking path is still absent. */
        if ((e == EPERM || e == ENOTSUP || e == EOPNOTSUPP) && access(path, F_OK) != 0 &&
            rename(tmp, path) == 0) {
            return 0;
        }
        unlink(tmp);
        return ota_fail(err, -e, OTA_ERR_ARG, "tls %s %s: cannot create: %s", what, path,
                        strerror(e));
    }
    unlink(tmp);
    return 0;
}

static int tls_put_key(FILE *f, void *obj)
{
    return PEM_write_PrivateKey(f, obj, NULL, NULL, 0, NULL, NULL) == 1 ? 0 : -EIO;
}

static int tls_put_cert(FILE *f, void *obj)
{
    return PEM_write_X509(f, obj) == 1 ? 0 : -EIO;
}

int gw_tls_self_signed(const char *cert_path, const char *key_path, struct ota_err *err)
{
    if (!cert_path || !key_path || !cert_path[0] || !key_path[0]) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "tls: certificate and key paths are needed");
    }
    int rc;
    X509 *x = NULL;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!k || !(x = tls_make_cert(k))) {
        char why[128];
        rc = ota_fail(err, -EIO, OTA_ERR_STATE, "tls: cannot generate a certificate: %s",
                      tls_why(why, sizeof(why)));
        goto out;
    }
    rc = tls_write_file("key", key_path, 0600, tls_put_key, k, err);
    if (rc < 0) {
        goto out;
    }
    rc = tls_write_file("certificate", cert_path, 0644, tls_put_cert, x, err);
    if (rc < 0) {
        /* A key without its certificate would block the next start: take it back. */
        unlink(key_path);
    }
out:
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

static bool tls_exists(const char *path)
{
    struct stat st;
    return path && path[0] && stat(path, &st) == 0;
}

int gw_tls_prepare(const char *cert_path, const char *key_path, bool self_signed, bool *generated,
                   char fp[GW_TLS_FP_LEN], struct ota_err *err)
{
    if (generated) {
        *generated = false;
    }
    bool have_cert = tls_exists(cert_path), have_key = tls_exists(key_path);
    if (!have_cert && !have_key && self_signed) {
        int rc = gw_tls_self_signed(cert_path, key_path, err);
        if (rc < 0) {
            return rc;
        }
        if (generated) {
            *generated = true;
        }
    } else if (have_cert != have_key && self_signed) {
        /* Half a pair is someone's file: do not guess, do not overwrite. */
        return ota_fail(err, -ENOENT, OTA_ERR_MISSING,
                        "tls %s %s does not exist but %s does: remove it to have a self-signed "
                        "pair generated, or configure both",
                        have_cert ? "key" : "certificate", have_cert ? key_path : cert_path,
                        have_cert ? cert_path : key_path);
    }
    /* Missing files (self_signed = no) are reported by the check, naming them. */
    return gw_tls_check_pair(cert_path, key_path, fp, err);
}

int gw_tls_check_ca(const char *ca_file, struct ota_err *err)
{
    if (!ca_file || !ca_file[0]) {
        return 0;
    }
    FILE *f = NULL;
    int rc = tls_open("CA file", ca_file, &f, err);
    if (rc < 0) {
        return rc;
    }
    unsigned n = 0;
    X509 *x;
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        X509_free(x);
        n++;
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    fclose(f);
    if (n == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "tls CA file %s: no PEM certificate in it",
                        ca_file);
    }
    return 0;
}

int gw_tls_harden_ctx(SSL_CTX *ctx)
{
    if (!ctx) {
        return -EINVAL;
    }
    SSL_CTX_set_options(ctx, GW_TLS_SSL_OPTIONS);
    /* lws pins the server to P-256 (SSL_CTX_set_tmp_ecdh); X25519 first, as clients prefer. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set1_groups_list(ctx, GW_TLS_GROUPS) != 1) {
        return -EIO;
    }
    return 0;
}

int gw_tls_client_ctx_new(const char *ca_file, SSL_CTX **out, struct ota_err *err)
{
    char why[128];
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "tls: cannot create a client context: %s",
                        tls_why(why, sizeof(why)));
    }
    bool sys = !ca_file || !ca_file[0];
    if (gw_tls_harden_ctx(ctx) < 0 || SSL_CTX_set_cipher_list(ctx, GW_TLS_CIPHERS_TLS12) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, GW_TLS_CIPHERS_TLS13) != 1) {
        SSL_CTX_free(ctx);
        return ota_fail(err, -EIO, OTA_ERR_STATE, "tls: client context setup failed: %s",
                        tls_why(why, sizeof(why)));
    }
    /* libwebsockets writes the same buffer again after a partial write. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (sys ? SSL_CTX_set_default_verify_paths(ctx) != 1
            : SSL_CTX_load_verify_file(ctx, ca_file) != 1) {
        SSL_CTX_free(ctx);
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "tls CA file %s: cannot load: %s",
                        sys ? "(system store)" : ca_file, tls_why(why, sizeof(why)));
    }
    *out = ctx;
    return 0;
}

bool gw_tls_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!host) {
        return false;
    }
    if (inet_pton(AF_INET, host, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) {
            return true;
        }
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return false;
}
