/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The otagw configuration file (issue #6): an INI-like UTF-8 text, read once
 * at start-up, documented key by key in conf/otagw.conf. It fills the task
 * engine's struct eng_conf, the bearer's struct bearer_link_conf (one per
 * [link NAME]) and the daemon's own settings (listeners, logs, wallet).
 *
 * Syntax: "# comment" lines and blank lines; "[section]" or "[link NAME]"
 * headers; "key = value", the value running to the end of the line, trimmed.
 * A value holding '#' or leading/trailing spaces is double-quoted (\" and \\
 * escape inside quotes). Comments take whole lines only, so "port = 80 # x"
 * is an error rather than a silent part of the value. Lines end with LF or
 * CRLF, hold at most GW_CONF_LINE_MAX octets, and must be valid UTF-8 without
 * control characters; a UTF-8 BOM at the start is skipped.
 *
 * Strict by design: an unknown section or key, a key given twice in a
 * section, a repeated section or link name, a bad value (type, range, unit),
 * a missing required key or a file without any [link NAME] stops start-up
 * with "FILE:LINE: reason" naming the key (secret values are never echoed).
 *
 * Durations are digits with a unit ms|s|m|h ("30s", "1500ms"); a bare
 * number is seconds. A duration kept in whole seconds refuses "1500ms".
 * Sizes are digits with an optional k (1024) or M (1048576) suffix.
 *
 * Prefix gw_conf_. Nothing is allocated: struct gw_conf is a plain value.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ota/ota.h"
#include "queue/engine.h"
#include "smpp/bearer.h"

#define GW_CONF_LINKS_MAX 8
#define GW_CONF_LINE_MAX 4096          /* octets per line, line end excluded */
#define GW_CONF_FILE_MAX (1024 * 1024) /* a bigger file is refused (a wrong path, most likely) */
#define GW_CONF_PATH_MAX 1024          /* db and log_file paths, NUL included */
#define GW_CONF_HOST_MAX 64            /* numeric IPv4/IPv6 text, NUL included */
#define GW_CONF_SECRET_MAX 64          /* callback_secret octets (the HMAC-SHA256 block size) */
#define GW_CONF_SECRET_MIN 16          /* when set at all: 128 bits */
#define GW_CONF_AT_APPS_MAX 16         /* [antitheft] apps */

/* Log levels, valued as syslog (and as struct eng_hooks.log's level). */
enum gw_conf_log_level {
    GW_CONF_LOG_ERR = 3,
    GW_CONF_LOG_WARNING = 4,
    GW_CONF_LOG_NOTICE = 5,
    GW_CONF_LOG_INFO = 6,
    GW_CONF_LOG_DEBUG = 7,
};

/* "err", "warning", "notice", "info", "debug"; "unknown" otherwise. Never NULL. */
const char *gw_conf_log_level_name(enum gw_conf_log_level l);

/* [keys] backend */
enum gw_conf_keys_backend {
    GW_CONF_KEYS_LOCAL = 0,
    GW_CONF_KEYS_PKCS11 = 1,
};

struct gw_conf {
    /*
     * [engine] and [wallet] port / src_port / wait_pull (push_dst_port,
     * push_src_port, push_wait_pull). eng.db_path points at db_path below:
     * after copying a struct gw_conf by value, use gw_conf_eng() on the copy.
     */
    struct eng_conf eng;
    char db_path[GW_CONF_PATH_MAX];

    /* [link NAME], in file order; n_links >= 1 after a load. */
    struct bearer_link_conf links[GW_CONF_LINKS_MAX];
    size_t n_links;

    /* [gateway] */
    char listen_host[GW_CONF_HOST_MAX]; /* numeric, no brackets ("::1") */
    uint16_t listen_port;               /* 0: the kernel picks one (tests) */
    char pull_host[GW_CONF_HOST_MAX];   /* wallet pull API; equal to listen when not given */
    uint16_t pull_port;
    enum gw_conf_log_level log_level;
    char log_file[GW_CONF_PATH_MAX];             /* "" = stderr */
    size_t max_body;                             /* HTTP request body limit, octets */
    bool plain_http;                             /* no TLS: only with loopback listeners */
    uint8_t callback_secret[GW_CONF_SECRET_MAX]; /* HMAC-SHA256 key of result callbacks */
    size_t callback_secret_len;                  /* 0 = not set */

    /* [tls] (docs/tls.md) */
    char tls_cert[GW_CONF_PATH_MAX];    /* PEM certificate of the listeners */
    char tls_key[GW_CONF_PATH_MAX];     /* its PEM private key */
    char tls_ca_file[GW_CONF_PATH_MAX]; /* CA bundle for callback servers; "" = system store */
    bool tls_self_signed;               /* generate cert + key when both are missing */

    /* [wallet] scp02_level: OTA_SCP02_SL_CMAC (01) or OTA_SCP02_SL_CMAC_CDEC (03) */
    enum ota_scp02_sl scp02_level;

    /*
     * [keys] (docs/keys.md): the key store. db and key file names not given
     * follow [engine] db: "<db>.keys", "<db>.master.key", "<db>.transport.key".
     */
    enum gw_conf_keys_backend keys_backend;
    char keys_db[GW_CONF_PATH_MAX];
    char keys_master_file[GW_CONF_PATH_MAX];    /* local: 32 octets, 0600, made if missing */
    char keys_transport_file[GW_CONF_PATH_MAX]; /* local: 16/24/32 octets, as above */
    char keys_p11_module[GW_CONF_PATH_MAX];     /* pkcs11 */
    char keys_p11_token[GW_CONF_HOST_MAX];
    char keys_p11_pin_file[GW_CONF_PATH_MAX];
    char keys_transport_label[GW_CONF_HOST_MAX + 32];
    bool keys_clear_import; /* accept clear key values in the API (tests, labs) */

    /* [antitheft] (docs/antitheft.md): what lock / unlock / wipe act on */
    uint8_t at_tar[3]; /* TAR of the SD that runs the scripts; default 000000 (the ISD) */
    struct {
        uint8_t len; /* 5..16 */
        uint8_t b[16];
    } at_apps[GW_CONF_AT_APPS_MAX]; /* user applications: locked, unlocked, deleted by wipe */
    size_t at_n_apps;
    bool at_card_lock; /* lock also locks the card (GP CARD_LOCKED); default yes */
};

/*
 * The embedded defaults, exactly what conf/otagw.conf spells out: SQLite file
 * otagw.db, one CMPP 3.0 link "sim" to the bundled simulator on
 * 127.0.0.1:7890 (sp_id 901234, secret otagw-test), HTTPS on 127.0.0.1:8080
 * for both APIs with otagw-cert.pem / otagw-key.pem (self-signed, generated
 * at start when both are missing). Used when the daemon starts without -c.
 * Cannot fail.
 */
void gw_conf_defaults(struct gw_conf *c);

/*
 * Parse a configuration from memory (len octets, NUL not needed); name is
 * what error messages call it (NULL: "<conf>"). Starts from the embedded
 * defaults except the link list, which only the text fills (at least one
 * link is required). Returns 0 with *out filled, or a negative errno with
 * err->msg "NAME:LINE: reason" and *out untouched: -EINVAL (any syntax or
 * value problem), -EFBIG (len > GW_CONF_FILE_MAX).
 */
int gw_conf_parse(const char *text, size_t len, const char *name, struct gw_conf *out,
                  struct ota_err *err) OTA_MUST_CHECK;

/*
 * Read and parse the file at path. As gw_conf_parse(), plus -ENOENT,
 * -EACCES, -EIO... when the file cannot be read (err->msg "PATH: reason",
 * no line). *out is written only on success.
 */
int gw_conf_load(const char *path, struct gw_conf *out, struct ota_err *err) OTA_MUST_CHECK;

/* Re-point c->eng.db_path at c->db_path (after a by-value copy) and return &c->eng. */
const struct eng_conf *gw_conf_eng(struct gw_conf *c);

/*
 * Wipe the secrets held in c (link secrets, callback_secret). Nothing else is
 * released: there is nothing allocated. NULL is a no-op; safe to call twice.
 */
void gw_conf_fini(struct gw_conf *c);

/*
 * Print the effective configuration to f in the file's own syntax (so an
 * operator can diff it against the file), secrets shown as "***". Returns 0
 * or -EIO when writing failed.
 */
int gw_conf_dump(const struct gw_conf *c, FILE *f);
