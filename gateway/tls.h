/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS material of the daemon (issue #7, docs/tls.md): the listener's
 * certificate and key checked before libwebsockets sees them (so that a bad
 * path or a key that does not belong to the certificate stops start-up with
 * a message naming the file), the self-signed certificate generated on a
 * fresh machine, the protocol floor shared by every TLS context of the
 * process, and the verifying client context of the result callbacks.
 *
 * Everything goes through OpenSSL 3 (EVP, X509, SSL_CTX); nothing here does
 * its own cryptography. Nothing here touches the event loop.
 *
 * Prefix gw_tls_.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "ota/ota_common.h"

/* "AB:CD:...": 32 octets as hex pairs joined by ':', NUL included. */
#define GW_TLS_FP_LEN (32 * 3)

/*
 * The TLS 1.2 cipher list of every context (ECDHE with AES-GCM or
 * ChaCha20-Poly1305 only: forward secrecy, AEAD) and the TLS 1.3 suites.
 * TLS 1.0 and 1.1 are never negotiated (see GW_TLS_SSL_OPTIONS).
 */
#define GW_TLS_CIPHERS_TLS12                                                                       \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define GW_TLS_CIPHERS_TLS13                                                                       \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define GW_TLS_GROUPS "X25519:P-256:P-384" /* (EC)DHE key exchange groups, preferred first */
#define GW_TLS_SSL_OPTIONS                                                                         \
    (SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_COMPRESSION |               \
     SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE)

/* The certificate the daemon generates: valid this many days from now (minus one hour). */
#define GW_TLS_SELF_SIGNED_DAYS 825

/*
 * Check a listener's certificate and key files: both readable PEM, the key
 * belonging to the certificate, the certificate not expired. 0, or -ENOENT /
 * -EACCES (cannot open), -EINVAL (not PEM, mismatch, expired) with err naming
 * the file. When fp is not NULL it receives the SHA-256 fingerprint.
 */
int gw_tls_check_pair(const char *cert_path, const char *key_path, char fp[GW_TLS_FP_LEN],
                      struct ota_err *err) OTA_MUST_CHECK;

/*
 * Write a new self-signed certificate for the loopback listener: an EC P-256
 * key (key_path, mode 0600, created exclusively: an existing file is never
 * overwritten) and an X.509 v3 certificate (cert_path, 0644) with CN
 * "localhost", subjectAltName DNS:localhost, IP:127.0.0.1, IP:::1,
 * serverAuth, valid GW_TLS_SELF_SIGNED_DAYS. Both are written to temporary
 * names and renamed, so a crash leaves no half file. 0 or negative errno,
 * err naming the file.
 */
int gw_tls_self_signed(const char *cert_path, const char *key_path,
                       struct ota_err *err) OTA_MUST_CHECK;

/*
 * What the daemon does at start-up with [tls] cert/key: when both files
 * exist, check them (gw_tls_check_pair); when neither exists and
 * self_signed, generate them (*generated = true); otherwise fail naming the
 * missing file. fp receives the certificate's SHA-256 fingerprint.
 */
int gw_tls_prepare(const char *cert_path, const char *key_path, bool self_signed, bool *generated,
                   char fp[GW_TLS_FP_LEN], struct ota_err *err) OTA_MUST_CHECK;

/*
 * Check a CA bundle: readable, at least one PEM certificate. "" or NULL is
 * the system store and always passes. 0 or negative errno naming the file.
 */
int gw_tls_check_ca(const char *ca_file, struct ota_err *err) OTA_MUST_CHECK;

/*
 * A client SSL_CTX that verifies servers: TLS 1.2 minimum, the cipher lists
 * above, SSL_VERIFY_PEER against ca_file ("" or NULL: the system store,
 * OpenSSL's default paths = /etc/ssl/certs on Debian). Host name checks are
 * per connection (libwebsockets sets them from the URL's host). The caller
 * frees *out with SSL_CTX_free after every user is gone. 0, or -EINVAL (the
 * CA file cannot be loaded, named in err), -ENOMEM / -EIO.
 */
int gw_tls_client_ctx_new(const char *ca_file, SSL_CTX **out, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Set the protocol floor on a context (libwebsockets' server one included):
 * GW_TLS_SSL_OPTIONS, TLS 1.2 minimum, GW_TLS_GROUPS. 0 or -EIO.
 */
int gw_tls_harden_ctx(SSL_CTX *ctx);

/*
 * True for a numeric loopback address: 127.0.0.0/8, ::1, ::ffff:127.x.y.z.
 * Anything else (0.0.0.0, ::, a LAN address, a name) is false.
 */
bool gw_tls_is_loopback(const char *host);
