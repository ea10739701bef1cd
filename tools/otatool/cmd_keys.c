/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otatool keys-gen-master / wrap-key: the operator's side of the key store's
 * import (docs/keys.md). keys-gen-master makes a master or transport key
 * file (random octets as hex, mode 0600, never overwriting); wrap-key
 * encrypts one key under the transport key the way the key import routes
 * expect it ("ecb": ECB without padding in the transport key's cipher;
 * "aes-kw": RFC 3394 under an AES transport key) and prints it with the key
 * check value (ota_crypto_kcv: DES/3DES E(8 x 00), AES E(16 x 01), 3
 * octets), as one JSON object.
 */
#include "otatool.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gateway/keys.h"

static void gen_usage(FILE *f)
{
    fputs("usage: otatool keys-gen-master FILE [--len 32|24|16]\n"
          "  Create FILE (mode 0600, refused when it exists) holding --len random octets as\n"
          "  hex: 32 (default) for [keys] master_key_file or an AES-256 transport key; 16 / 24\n"
          "  for a 3DES 2-key / 3-key transport key.\n",
          f);
}

int cmd_keys_gen_master(int argc, char **argv)
{
    static const struct option opts[] = {{"len", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    uint64_t len = 32;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (parse_uint("--len", optarg, 32, &len) < 0) {
                return TOOL_USAGE;
            }
            break;
        case 'h':
            gen_usage(stdout);
            return TOOL_OK;
        default:
            gen_usage(stderr);
            return TOOL_USAGE;
        }
    }
    if (optind != argc - 1) {
        gen_usage(stderr);
        return TOOL_USAGE;
    }
    if (len != 16 && len != 24 && len != 32) {
        return die("--len: 16, 24 or 32");
    }
    const char *path = argv[optind];
    if (access(path, F_OK) == 0) {
        return die("%s exists: not overwritten (a key store sealed under it would be lost)", path);
    }
    uint8_t key[32];
    bool created = false;
    struct ota_err err;
    int n = gw_keys_read_key_file(path, true, (size_t)len, key, sizeof(key), &created, &err);
    OPENSSL_cleanse(key, sizeof(key));
    if (n < 0 || !created) {
        return die("%s", n < 0 ? err.msg : "file appeared meanwhile: not overwritten");
    }
    printf("%s: %d random octets, mode 0600\n", path, n);
    return TOOL_OK;
}

static void wrap_usage(FILE *f)
{
    fputs("usage: otatool wrap-key (--transport-key-file F | --transport-key HEX|@F)\n"
          "                        --cipher des|3des2|3des3|aes --key HEX|@F\n"
          "                        [--wrapping ecb|aes-kw]\n"
          "  Encrypt a key under the transport key for the key import API and print\n"
          "  {\"wrapped\": HEX, \"kcv\": HEX, \"wrapping\": ...}. The transport key's length\n"
          "  gives its type: 16 3DES 2-key, 24 3DES 3-key, 32 AES-256. ecb (default) needs\n"
          "  the key length to be a multiple of the transport key's block; aes-kw (RFC 3394)\n"
          "  needs an AES transport key and a key of 16 octets or more.\n",
          f);
}

static int cipher_arg(const char *s, enum ota_cipher *out)
{
    static const struct {
        const char *name;
        enum ota_cipher c;
    } t[] = {{"des", OTA_CIPHER_DES},
             {"3des2", OTA_CIPHER_3DES2},
             {"3des3", OTA_CIPHER_3DES3},
             {"aes", OTA_CIPHER_AES}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcmp(s, t[i].name) == 0) {
            *out = t[i].c;
            return 0;
        }
    }
    return -1;
}

static int aes_kw(const struct ota_key *tk, const struct ota_key *k, uint8_t *out, size_t *len)
{
    const EVP_CIPHER *ci = tk->len == 16   ? EVP_aes_128_wrap()
                           : tk->len == 24 ? EVP_aes_192_wrap()
                                           : EVP_aes_256_wrap();
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int a = 0, b = 0, ok = 0;
    if (c) {
        EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
        ok = EVP_EncryptInit_ex(c, ci, NULL, tk->bytes, NULL) == 1 &&
             EVP_EncryptUpdate(c, out, &a, k->bytes, k->len) == 1 &&
             EVP_EncryptFinal_ex(c, out + a, &b) == 1;
        EVP_CIPHER_CTX_free(c);
    }
    *len = (size_t)(a + b);
    return ok ? 0 : -1;
}

int cmd_wrap_key(int argc, char **argv)
{
    static const struct option opts[] = {{"transport-key-file", required_argument, NULL, 'f'},
                                         {"transport-key", required_argument, NULL, 't'},
                                         {"cipher", required_argument, NULL, 'c'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"wrapping", required_argument, NULL, 'w'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *tfile = NULL, *thex = NULL, *khex = NULL, *wrapping = "ecb";
    enum ota_cipher kc = OTA_CIPHER_NONE;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:t:c:k:w:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            tfile = optarg;
            break;
        case 't':
            thex = optarg;
            break;
        case 'c':
            if (cipher_arg(optarg, &kc) < 0) {
                return die("--cipher: des, 3des2, 3des3 or aes");
            }
            break;
        case 'k':
            khex = optarg;
            break;
        case 'w':
            wrapping = optarg;
            break;
        case 'h':
            wrap_usage(stdout);
            return TOOL_OK;
        default:
            wrap_usage(stderr);
            return TOOL_USAGE;
        }
    }
    if (optind != argc || !tfile == !thex || !khex || kc == OTA_CIPHER_NONE) {
        wrap_usage(stderr);
        return TOOL_USAGE;
    }
    bool kw = strcmp(wrapping, "aes-kw") == 0;
    if (!kw && strcmp(wrapping, "ecb") != 0) {
        return die("--wrapping: ecb or aes-kw");
    }
    uint8_t raw[OTA_KEY_MAX];
    struct ota_err err;
    int tn = tfile ? gw_keys_read_key_file(tfile, false, 0, raw, sizeof(raw), NULL, &err)
                   : parse_key_arg("--transport-key", thex, raw, sizeof(raw));
    if (tn < 0) {
        return tfile ? die("%s", err.msg) : TOOL_USAGE;
    }
    struct ota_key tk, key;
    memset(&tk, 0, sizeof(tk));
    memset(&key, 0, sizeof(key));
    enum ota_cipher tc = tn == 16   ? OTA_CIPHER_3DES2
                         : tn == 24 ? OTA_CIPHER_3DES3
                         : tn == 32 ? OTA_CIPHER_AES
                                    : OTA_CIPHER_NONE;
    int rc = tc == OTA_CIPHER_NONE ? -1 : ota_key_set(&tk, tc, raw, (size_t)tn, &err);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (rc < 0) {
        return die("transport key: %d octets; 16 (3DES 2-key), 24 (3DES 3-key) or 32 (AES-256)",
                   tn);
    }
    int kn = parse_key_arg("--key", khex, raw, sizeof(raw));
    rc = kn < 0 ? -1 : ota_key_set(&key, kc, raw, (size_t)kn, &err);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (rc < 0) {
        ota_key_wipe(&tk);
        return kn < 0 ? TOOL_USAGE : die("--key: %s", err.msg);
    }
    uint8_t out[OTA_KEY_MAX + 8], kcv[3];
    size_t olen = 0;
    struct ota_crypto *cx = NULL;
    rc = ota_crypto_new(&cx, &err);
    if (rc == 0) {
        rc = ota_crypto_kcv(cx, &key, kcv, &err);
    }
    if (rc == 0 && kw) {
        if (tc != OTA_CIPHER_AES || key.len < 16) {
            rc = -1;
            snprintf(err.msg, sizeof(err.msg),
                     "aes-kw needs an AES transport key and a key of 16 octets or more");
        } else if (aes_kw(&tk, &key, out, &olen) < 0) {
            rc = -1;
            snprintf(err.msg, sizeof(err.msg), "AES key wrap failed");
        }
    } else if (rc == 0) {
        if (key.len % ota_cipher_block_len(tc)) {
            rc = -1;
            snprintf(err.msg, sizeof(err.msg),
                     "a %u-octet key does not fill %s-ECB blocks: use --wrapping aes-kw or a "
                     "3DES transport key",
                     (unsigned)key.len, ota_cipher_name(tc));
        } else {
            rc =
                ota_crypto_cipher(cx, &tk, OTA_MODE_ECB, true, NULL, key.bytes, key.len, out, &err);
            olen = key.len;
        }
    }
    ota_crypto_free(cx);
    ota_key_wipe(&tk);
    ota_key_wipe(&key);
    if (rc < 0) {
        return die("%s", err.msg);
    }
    char wh[2 * sizeof(out) + 1], kh[7];
    for (size_t i = 0; i < olen; i++) {
        snprintf(wh + 2 * i, 3, "%02X", out[i]);
    }
    snprintf(kh, sizeof(kh), "%02X%02X%02X", kcv[0], kcv[1], kcv[2]);
    json_t *o = json_pack("{s:s, s:s, s:s}", "wrapped", wh, "kcv", kh, "wrapping", wrapping);
    rc = o && json_dumpf(o, stdout, JSON_COMPACT) == 0 ? 0 : -1;
    json_decref(o);
    fputc('\n', stdout);
    OPENSSL_cleanse(out, sizeof(out));
    return rc == 0 ? TOOL_OK : die("output failed");
}
