/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration file reader (gateway/conf.h): one pass over the lines,
 * each key checked for type, unit and range where it stands so the error
 * names its line, then the checks that need the whole file (links complete,
 * min/max pairs, at least one link). Everything is built in a private copy;
 * the caller's struct is written only when the whole file is good, so a bad
 * file never leaves a half-applied configuration behind.
 */
#include "gateway/conf.h"

#include "gateway/api_util.h"
#include "gateway/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define NAME_SHOWN_MAX 48 /* longer file names are cut from the left: the line must stay in msg */
#define VALUE_SHOWN_MAX 32

enum sect {
    SECT_NONE = 0,
    SECT_GATEWAY = 1,
    SECT_ENGINE = 2,
    SECT_WALLET = 3,
    SECT_LINK = 4,
    SECT_TLS = 5,
    SECT_ANTITHEFT = 6,
    SECT_KEYS,
    SECT__COUNT
};

static const char *const sect_names[SECT__COUNT] = {[SECT_NONE] = "",
                                                    [SECT_GATEWAY] = "gateway",
                                                    [SECT_ENGINE] = "engine",
                                                    [SECT_WALLET] = "wallet",
                                                    [SECT_LINK] = "link",
                                                    [SECT_TLS] = "tls",
                                                    [SECT_ANTITHEFT] = "antitheft",
                                                    [SECT_KEYS] = "keys"};

/* Keys per section; the index is the bit in the section's "seen" mask. */
enum gw_key {
    GK_LISTEN,
    GK_LOG_LEVEL,
    GK_LOG_FILE,
    GK_MAX_BODY,
    GK_PLAIN_HTTP,
    GK_CALLBACK_SECRET,
    GK_PULL_LISTEN,
    GK__COUNT
};
static const char *const gw_keys[GK__COUNT] = {
    "listen", "log_level", "log_file", "max_body", "plain_http", "callback_secret", "pull_listen"};

enum eng_key {
    EK_DB,
    EK_DURABLE,
    EK_SRC_ADDR,
    EK_WANT_DLR,
    EK_DLR_TIMEOUT,
    EK_POR_TIMEOUT,
    EK_PULL_TIMEOUT,
    EK_SESSION_TIMEOUT,
    EK_MAX_ATTEMPTS,
    EK_BACKOFF,
    EK_BACKOFF_MAX,
    EK_COMMIT_MAX_STAGED,
    EK_DISPATCH_MAX_TURN,
    EK_JOB_CHUNK,
    EK_KEEP_HISTORY,
    EK_COMMIT_INTERVAL,
    EK_COMMIT_MAX_ACKS,
    EK__COUNT
};
static const char *const eng_keys[EK__COUNT] = {"db",
                                                "durable",
                                                "src_addr",
                                                "want_dlr",
                                                "dlr_timeout",
                                                "por_timeout",
                                                "pull_timeout",
                                                "session_timeout",
                                                "max_attempts",
                                                "backoff",
                                                "backoff_max",
                                                "commit_max_staged",
                                                "dispatch_max_turn",
                                                "job_chunk",
                                                "keep_history",
                                                "commit_interval",
                                                "commit_max_acks"};

enum tls_key { TK_CERT, TK_KEY, TK_CA_FILE, TK_SELF_SIGNED, TK__COUNT };
static const char *const tls_keys[TK__COUNT] = {"cert", "key", "ca_file", "self_signed"};

enum at_key { AK_TAR, AK_APPS, AK_CARD_LOCK, AK__COUNT };
static const char *const at_keys[AK__COUNT] = {"tar", "apps", "card_lock"};

enum wal_key { WK_PORT, WK_SRC_PORT, WK_SCP02_LEVEL, WK_WAIT_PULL, WK__COUNT };
static const char *const wal_keys[WK__COUNT] = {"port", "src_port", "scp02_level", "wait_pull"};

enum keys_key {
    KK_BACKEND,
    KK_DB,
    KK_MASTER_KEY_FILE,
    KK_TRANSPORT_KEY_FILE,
    KK_PKCS11_MODULE,
    KK_PKCS11_TOKEN,
    KK_PKCS11_PIN_FILE,
    KK_TRANSPORT_KEY_LABEL,
    KK_CLEAR_IMPORT,
    KK__COUNT
};
static const char *const keys_keys[KK__COUNT] = {
    "backend",       "db",           "master_key_file", "transport_key_file",
    "pkcs11_module", "pkcs11_token", "pkcs11_pin_file", "transport_key_label",
    "clear_import"};

enum link_key {
    LK_KIND,
    LK_HOST,
    LK_PORT,
    LK_WINDOW,
    LK_RATE,
    LK_HEARTBEAT,
    LK_RESP_TIMEOUT,
    LK_RESP_RETRIES,
    LK_RECONNECT_MIN,
    LK_RECONNECT_MAX,
    LK_THROTTLE_PAUSE,
    LK_HOLD,
    LK_VERSION, /* cmpp from here */
    LK_SP_ID,
    LK_SECRET,
    LK_SERVICE_ID,
    LK_SRC_ID,
    LK_BOXC_ID, /* kbox from here */
    LK_SMSC_ID,
    LK_SENDER,
    LK__COUNT
};
static const char *const link_keys[LK__COUNT] = {
    "kind",           "host",         "port",         "window",        "rate",
    "heartbeat",      "resp_timeout", "resp_retries", "reconnect_min", "reconnect_max",
    "throttle_pause", "hold",         "version",      "sp_id",         "secret",
    "service_id",     "src_id",       "boxc_id",      "smsc_id",       "sender"};

#define LK_FIRST_CMPP LK_VERSION
#define LK_FIRST_KBOX LK_BOXC_ID

/* A [link NAME] as read: kind-neutral values, then applied over the kind's defaults. */
struct link_acc {
    unsigned hdr_line;
    uint32_t seen;
    unsigned line[LK__COUNT];
    struct bearer_link_conf v; /* common fields (the union is not used here) */
    uint8_t version;
    char sp_id[7], secret[65], service_id[11], src_id[BEARER_ADDR_MAX + 1];
    char boxc_id[64], smsc_id[64], sender[BEARER_ADDR_MAX + 1];
};

struct ps {
    char shown[NAME_SHOWN_MAX + 4];
    unsigned line;
    struct ota_err *err;
    struct gw_conf c;
    enum sect sect;
    unsigned sect_line[SECT__COUNT]; /* header line of each fixed section, 0 = not seen */
    uint32_t seen[SECT__COUNT];
    unsigned gw_line[GK__COUNT], eng_line[EK__COUNT], wal_line[WK__COUNT];
    unsigned tls_line[TK__COUNT];
    unsigned at_line[AK__COUNT];
    unsigned keys_line[KK__COUNT];
    struct link_acc links[GW_CONF_LINKS_MAX];
    size_t n_links;
    char val[GW_CONF_LINE_MAX + 1]; /* the current value, unquoted */
};

/* ---- messages ---------------------------------------------------------------------- */

static int perr(struct ps *p, unsigned line, int rc, enum ota_errc code, const char *fmt, ...)
    OTA_PRINTF(5, 6);

static int perr(struct ps *p, unsigned line, int rc, enum ota_errc code, const char *fmt, ...)
{
    char why[sizeof(p->err->msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return ota_fail(p->err, rc, code, "%s:%u: %s", p->shown, line, why);
}

static void shown_name(char *dst, size_t cap, const char *name)
{
    size_t n = strlen(name);

    if (n <= NAME_SHOWN_MAX) {
        snprintf(dst, cap, "%s", name);
    } else {
        snprintf(dst, cap, "...%s", name + n - (NAME_SHOWN_MAX - 3));
    }
}

/* A value as an error message may show it: printable ASCII, cut, never a secret. */
static const char *shown_value(const char *v, bool secret, char out[VALUE_SHOWN_MAX + 4])
{
    size_t i, n = 0;

    if (secret) {
        return "(hidden)";
    }
    for (i = 0; v[i] && n < VALUE_SHOWN_MAX; i++) {
        unsigned char ch = (unsigned char)v[i];
        out[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (v[i]) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static int bad_value(struct ps *p, const char *key, const char *v, const char *why)
{
    char buf[VALUE_SHOWN_MAX + 4];
    bool secret = strcmp(key, "secret") == 0 || strcmp(key, "callback_secret") == 0;

    return perr(p, p->line, -EINVAL, OTA_ERR_VALUE, "%s: bad value '%s': %s", key,
                shown_value(v, secret, buf), why);
}

/* ---- value types ------------------------------------------------------------------- */

/* Decimal digits only (no sign, no spaces); false on anything else or above max. */
static bool parse_u64(const char *v, uint64_t max, uint64_t *out, const char **end)
{
    uint64_t x = 0;
    const char *s = v;

    if (*s < '0' || *s > '9') {
        return false;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (x > (max - d) / 10) {
            return false;
        }
        x = x * 10 + d;
    }
    *out = x;
    if (end) {
        *end = s;
    } else if (*s) {
        return false;
    }
    return true;
}

static int set_uint(struct ps *p, const char *key, const char *v, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    char why[64];
    uint64_t x = 0;

    snprintf(why, sizeof(why), "a whole number %llu..%llu", (unsigned long long)min,
             (unsigned long long)max);
    if (!parse_u64(v, UINT64_MAX / 16, &x, NULL) || x < min || x > max) {
        return bad_value(p, key, v, why);
    }
    *out = x;
    return 0;
}

static int set_bool(struct ps *p, const char *key, const char *v, bool *out)
{
    if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0) {
        *out = true;
    } else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0) {
        *out = false;
    } else {
        return bad_value(p, key, v, "yes or no");
    }
    return 0;
}

/* Human text of a millisecond bound for range messages: "7d" reads better than 604800000ms. */
static void fmt_ms(char *dst, size_t cap, uint64_t ms)
{
    if (ms % 3600000 == 0 && ms > 0) {
        snprintf(dst, cap, "%lluh", (unsigned long long)(ms / 3600000));
    } else if (ms % 60000 == 0 && ms > 0) {
        snprintf(dst, cap, "%llum", (unsigned long long)(ms / 60000));
    } else if (ms % 1000 == 0 && ms > 0) {
        snprintf(dst, cap, "%llus", (unsigned long long)(ms / 1000));
    } else {
        snprintf(dst, cap, "%llums", (unsigned long long)ms);
    }
}

/*
 * A duration in milliseconds between min_ms and max_ms; whole_s demands a
 * whole number of seconds (the field is kept in seconds).
 */
static int set_dur(struct ps *p, const char *key, const char *v, uint64_t min_ms, uint64_t max_ms,
                   bool whole_s, uint64_t *out_ms)
{
    char why[96], lo[24], hi[24];
    const char *u;
    uint64_t x, mul;

    fmt_ms(lo, sizeof(lo), min_ms);
    fmt_ms(hi, sizeof(hi), max_ms);
    if (!parse_u64(v, UINT32_MAX, &x, &u)) {
        return bad_value(p, key, v, "digits then ms|s|m|h (bare = s), e.g. 30s");
    }
    if (*u == '\0' || strcmp(u, "s") == 0) {
        mul = 1000;
    } else if (strcmp(u, "ms") == 0) {
        mul = 1;
    } else if (strcmp(u, "m") == 0) {
        mul = 60000;
    } else if (strcmp(u, "h") == 0) {
        mul = 3600000;
    } else {
        return bad_value(p, key, v, "unit must be ms, s, m or h (bare = s), e.g. 30s");
    }
    x *= mul; /* x <= 2^32 and mul < 2^22: no overflow */
    if (whole_s && x % 1000 != 0) {
        return bad_value(p, key, v, "must be a whole number of seconds");
    }
    if (x < min_ms || x > max_ms) {
        snprintf(why, sizeof(why), "out of range %s..%s", lo, hi);
        return bad_value(p, key, v, why);
    }
    *out_ms = x;
    return 0;
}

static int set_dur_s(struct ps *p, const char *key, const char *v, unsigned min_s, unsigned max_s,
                     unsigned *out)
{
    uint64_t ms;
    int rc = set_dur(p, key, v, (uint64_t)min_s * 1000, (uint64_t)max_s * 1000, true, &ms);
    if (rc == 0) {
        *out = (unsigned)(ms / 1000);
    }
    return rc;
}

static int set_dur_ms(struct ps *p, const char *key, const char *v, unsigned min_ms,
                      unsigned max_ms, unsigned *out)
{
    uint64_t ms;
    int rc = set_dur(p, key, v, min_ms, max_ms, false, &ms);
    if (rc == 0) {
        *out = (unsigned)ms;
    }
    return rc;
}

/* Octets with an optional k (1024) or M (1048576) suffix. */
static int set_size(struct ps *p, const char *key, const char *v, uint64_t min, uint64_t max,
                    size_t *out)
{
    char why[64];
    const char *u;
    uint64_t x, mul;

    snprintf(why, sizeof(why), "out of range %lluk..%lluM", (unsigned long long)(min / 1024),
             (unsigned long long)(max / 1048576));
    if (!parse_u64(v, UINT32_MAX, &x, &u)) {
        return bad_value(p, key, v, "digits with an optional k or M suffix, e.g. 1M");
    }
    if (*u == '\0') {
        mul = 1;
    } else if (strcmp(u, "k") == 0 || strcmp(u, "K") == 0) {
        mul = 1024;
    } else if (strcmp(u, "M") == 0) {
        mul = 1048576;
    } else {
        return bad_value(p, key, v, "suffix must be k or M, e.g. 1M");
    }
    x *= mul;
    if (x < min || x > max) {
        return bad_value(p, key, v, why);
    }
    *out = (size_t)x;
    return 0;
}

/* Text into a fixed field: at most cap-1 octets; digits_only for addresses. */
static int set_text(struct ps *p, const char *key, const char *v, char *dst, size_t cap,
                    bool allow_empty, bool digits_only)
{
    char why[64];
    size_t n = strlen(v);

    if (!allow_empty && n == 0) {
        return bad_value(p, key, v, "must not be empty");
    }
    if (n >= cap) {
        snprintf(why, sizeof(why), "longer than %zu octets", cap - 1);
        return bad_value(p, key, v, why);
    }
    if (digits_only && strspn(v, "0123456789") != n) {
        return bad_value(p, key, v, "digits only");
    }
    memcpy(dst, v, n + 1);
    return 0;
}

/* A numeric host, IPv4 or IPv6 (no DNS on the loop). */
static bool valid_host(const char *h)
{
    struct in6_addr a6;
    struct in_addr a4;

    return inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1;
}

/* host:port, IPv6 as [addr]:port; port 0 only when allow_zero. */
static int set_hostport(struct ps *p, const char *key, const char *v, char *host, uint16_t *port,
                        bool allow_zero)
{
    const char *hs, *he, *ps;
    char h[GW_CONF_HOST_MAX];
    uint64_t x = 0;

    if (v[0] == '[') {
        hs = v + 1;
        he = strchr(hs, ']');
        if (!he || he[1] != ':') {
            return bad_value(p, key, v, "IPv6 as [addr]:port");
        }
        ps = he + 2;
    } else {
        hs = v;
        he = strrchr(v, ':');
        if (!he || memchr(v, ':', (size_t)(he - v))) {
            return bad_value(p, key, v, "host:port with a numeric host ([addr]:port for IPv6)");
        }
        ps = he + 1;
    }
    if ((size_t)(he - hs) >= sizeof(h)) {
        return bad_value(p, key, v, "host too long");
    }
    memcpy(h, hs, (size_t)(he - hs));
    h[he - hs] = '\0';
    if (!valid_host(h) || (v[0] == '[') != (strchr(h, ':') != NULL)) {
        return bad_value(p, key, v, "host must be a numeric IPv4 or [IPv6] address");
    }
    if (!parse_u64(ps, 65535, &x, NULL) || (x == 0 && !allow_zero)) {
        return bad_value(p, key, v, allow_zero ? "port 0..65535" : "port 1..65535");
    }
    memcpy(host, h, strlen(h) + 1);
    *port = (uint16_t)x;
    return 0;
}

/* ---- sections ------------------------------------------------------------------------ */

static int find_key(const char *const *keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i], key) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int gw_key(struct ps *p, int k, const char *v)
{
    struct gw_conf *c = &p->c;

    switch ((enum gw_key)k) {
    case GK_LISTEN:
        return set_hostport(p, "listen", v, c->listen_host, &c->listen_port, true);
    case GK_PULL_LISTEN:
        return set_hostport(p, "pull_listen", v, c->pull_host, &c->pull_port, true);
    case GK_LOG_LEVEL:
        if (strcmp(v, "err") == 0) {
            c->log_level = GW_CONF_LOG_ERR;
        } else if (strcmp(v, "warning") == 0) {
            c->log_level = GW_CONF_LOG_WARNING;
        } else if (strcmp(v, "notice") == 0) {
            c->log_level = GW_CONF_LOG_NOTICE;
        } else if (strcmp(v, "info") == 0) {
            c->log_level = GW_CONF_LOG_INFO;
        } else if (strcmp(v, "debug") == 0) {
            c->log_level = GW_CONF_LOG_DEBUG;
        } else {
            return bad_value(p, "log_level", v, "err, warning, notice, info or debug");
        }
        return 0;
    case GK_LOG_FILE:
        return set_text(p, "log_file", v, c->log_file, sizeof(c->log_file), true, false);
    case GK_MAX_BODY:
        return set_size(p, "max_body", v, 1024, 256 * 1048576ull, &c->max_body);
    case GK_PLAIN_HTTP:
        /* Loopback-only is checked in finish(): listen may come after this line. */
        return set_bool(p, "plain_http", v, &c->plain_http);
    case GK_CALLBACK_SECRET: {
        size_t n = strlen(v);
        char why[80];
        if (n % 2 != 0 || (n != 0 && (n / 2 < GW_CONF_SECRET_MIN || n / 2 > GW_CONF_SECRET_MAX))) {
            snprintf(why, sizeof(why), "empty or %d..%d octets of hex", GW_CONF_SECRET_MIN,
                     GW_CONF_SECRET_MAX);
            return bad_value(p, "callback_secret", v, why);
        }
        if (n != 0 && api_hex_decode(v, c->callback_secret, n / 2, n / 2) < 0) {
            OPENSSL_cleanse(c->callback_secret, sizeof(c->callback_secret));
            return bad_value(p, "callback_secret", v, "hex digits only");
        }
        c->callback_secret_len = n / 2;
        return 0;
    }
    case GK__COUNT:
        break;
    }
    return -EINVAL;
}

static int eng_key(struct ps *p, int k, const char *v)
{
    struct eng_conf *e = &p->c.eng;
    uint64_t x = 0;
    int rc;

    switch ((enum eng_key)k) {
    case EK_DB:
        return set_text(p, "db", v, p->c.db_path, sizeof(p->c.db_path), false, false);
    case EK_DURABLE:
        return set_bool(p, "durable", v, &e->durable);
    case EK_SRC_ADDR:
        return set_text(p, "src_addr", v, e->src_addr, sizeof(e->src_addr), true, true);
    case EK_WANT_DLR:
        return set_bool(p, "want_dlr", v, &e->want_dlr);
    case EK_DLR_TIMEOUT:
        return set_dur_s(p, "dlr_timeout", v, 1, 7 * 86400, &e->dlr_timeout_s);
    case EK_POR_TIMEOUT:
        return set_dur_s(p, "por_timeout", v, 1, 86400, &e->por_timeout_s);
    case EK_PULL_TIMEOUT:
        return set_dur_s(p, "pull_timeout", v, 1, 86400, &e->pull_timeout_s);
    case EK_SESSION_TIMEOUT:
        return set_dur_s(p, "session_timeout", v, 1, 3600, &e->session_timeout_s);
    case EK_MAX_ATTEMPTS:
        rc = set_uint(p, "max_attempts", v, 1, 255, &x);
        e->max_attempts = rc == 0 ? (uint8_t)x : e->max_attempts;
        return rc;
    case EK_BACKOFF:
        return set_dur_s(p, "backoff", v, 1, 86400, &e->backoff_s);
    case EK_BACKOFF_MAX:
        return set_dur_s(p, "backoff_max", v, 1, 7 * 86400, &e->backoff_max_s);
    case EK_COMMIT_MAX_STAGED:
        rc = set_uint(p, "commit_max_staged", v, 1, 1000000, &x);
        e->commit_max_staged = rc == 0 ? (unsigned)x : e->commit_max_staged;
        return rc;
    case EK_DISPATCH_MAX_TURN:
        rc = set_uint(p, "dispatch_max_turn", v, 1, 100000, &x);
        e->dispatch_max_turn = rc == 0 ? (unsigned)x : e->dispatch_max_turn;
        return rc;
    case EK_JOB_CHUNK:
        rc = set_uint(p, "job_chunk", v, 1, 1000000, &x);
        e->job_chunk = rc == 0 ? (unsigned)x : e->job_chunk;
        return rc;
    case EK_KEEP_HISTORY:
        return set_bool(p, "keep_history", v, &e->keep_history);
    case EK_COMMIT_INTERVAL:
        /* eng_open refuses more than 1 s: acks and accepts wait for the commit. */
        return set_dur_ms(p, "commit_interval", v, 0, 1000, &e->commit_interval_ms);
    case EK_COMMIT_MAX_ACKS:
        rc = set_uint(p, "commit_max_acks", v, 0, BEARER_HELD_ACKS_MAX, &x);
        e->commit_max_acks = rc == 0 ? (unsigned)x : e->commit_max_acks;
        return rc;
    case EK__COUNT:
        break;
    }
    return -EINVAL;
}

static int wal_key(struct ps *p, int k, const char *v)
{
    struct gw_conf *c = &p->c;
    uint64_t x = 0;
    int rc;

    switch ((enum wal_key)k) {
    case WK_PORT:
        rc = set_uint(p, "port", v, 1, 65535, &x);
        c->eng.push_dst_port = rc == 0 ? (uint16_t)x : c->eng.push_dst_port;
        return rc;
    case WK_SRC_PORT:
        rc = set_uint(p, "src_port", v, 1, 65535, &x);
        c->eng.push_src_port = rc == 0 ? (uint16_t)x : c->eng.push_src_port;
        return rc;
    case WK_SCP02_LEVEL:
        /* R-MAC levels (11, 13) are refused by ota/scp02 and so here. */
        if (strcmp(v, "01") == 0) {
            c->scp02_level = OTA_SCP02_SL_CMAC;
        } else if (strcmp(v, "03") == 0) {
            c->scp02_level = OTA_SCP02_SL_CMAC_CDEC;
        } else {
            return bad_value(p, "scp02_level", v, "01 (C-MAC) or 03 (C-MAC + C-DECRYPTION)");
        }
        return 0;
    case WK_WAIT_PULL:
        return set_bool(p, "wait_pull", v, &c->eng.push_wait_pull);
    case WK__COUNT:
        break;
    }
    return -EINVAL;
}

static int at_key(struct ps *p, int k, const char *v)
{
    struct gw_conf *c = &p->c;

    switch ((enum at_key)k) {
    case AK_TAR:
        if (api_hex_decode(v, c->at_tar, 3, 3) != 3) {
            return bad_value(p, "tar", v, "6 hex digits");
        }
        return 0;
    case AK_APPS: {
        /* AIDs separated by spaces; empty = none (lock then relies on card_lock) */
        size_t n = 0;
        const char *s = v;
        while (*s) {
            while (*s == ' ' || *s == '\t') {
                s++;
            }
            if (!*s) {
                break;
            }
            size_t len = strcspn(s, " \t");
            char aid[2 * 16 + 1]; /* one AID's hex text, NUL-terminated */
            int m = -1;
            if (n < GW_CONF_AT_APPS_MAX && len < sizeof(aid)) {
                memcpy(aid, s, len);
                aid[len] = '\0';
                m = api_hex_decode(aid, c->at_apps[n].b, 1, 16);
            }
            if (n == GW_CONF_AT_APPS_MAX) {
                return bad_value(p, "apps", v, "at most 16 AIDs");
            }
            if (m < 5) {
                return bad_value(p, "apps", v, "AIDs of 5..16 octets in hex, space separated");
            }
            c->at_apps[n++].len = (uint8_t)m;
            s += len;
        }
        c->at_n_apps = n;
        return 0;
    }
    case AK_CARD_LOCK:
        return set_bool(p, "card_lock", v, &c->at_card_lock);
    case AK__COUNT:
        break;
    }
    return -EINVAL;
}

static int keys_key(struct ps *p, int k, const char *v)
{
    struct gw_conf *c = &p->c;

    switch ((enum keys_key)k) {
    case KK_BACKEND:
        if (strcmp(v, "local") == 0) {
            c->keys_backend = GW_CONF_KEYS_LOCAL;
        } else if (strcmp(v, "pkcs11") == 0) {
            c->keys_backend = GW_CONF_KEYS_PKCS11;
        } else {
            return bad_value(p, "backend", v, "local or pkcs11");
        }
        return 0;
    case KK_DB:
        return set_text(p, "db", v, c->keys_db, sizeof(c->keys_db), false, false);
    case KK_MASTER_KEY_FILE:
        return set_text(p, "master_key_file", v, c->keys_master_file, sizeof(c->keys_master_file),
                        false, false);
    case KK_TRANSPORT_KEY_FILE:
        return set_text(p, "transport_key_file", v, c->keys_transport_file,
                        sizeof(c->keys_transport_file), false, false);
    case KK_PKCS11_MODULE:
        return set_text(p, "pkcs11_module", v, c->keys_p11_module, sizeof(c->keys_p11_module), true,
                        false);
    case KK_PKCS11_TOKEN:
        return set_text(p, "pkcs11_token", v, c->keys_p11_token, sizeof(c->keys_p11_token), true,
                        false);
    case KK_PKCS11_PIN_FILE:
        return set_text(p, "pkcs11_pin_file", v, c->keys_p11_pin_file, sizeof(c->keys_p11_pin_file),
                        true, false);
    case KK_TRANSPORT_KEY_LABEL:
        return set_text(p, "transport_key_label", v, c->keys_transport_label,
                        sizeof(c->keys_transport_label), false, false);
    case KK_CLEAR_IMPORT:
        return set_bool(p, "clear_import", v, &c->keys_clear_import);
    case KK__COUNT:
        break;
    }
    return -EINVAL;
}

static int tls_key(struct ps *p, int k, const char *v)
{
    struct gw_conf *c = &p->c;

    switch ((enum tls_key)k) {
    case TK_CERT:
        return set_text(p, "cert", v, c->tls_cert, sizeof(c->tls_cert), false, false);
    case TK_KEY:
        return set_text(p, "key", v, c->tls_key, sizeof(c->tls_key), false, false);
    case TK_CA_FILE:
        return set_text(p, "ca_file", v, c->tls_ca_file, sizeof(c->tls_ca_file), true, false);
    case TK_SELF_SIGNED:
        return set_bool(p, "self_signed", v, &c->tls_self_signed);
    case TK__COUNT:
        break;
    }
    return -EINVAL;
}

static int link_key(struct ps *p, struct link_acc *l, int k, const char *v)
{
    struct bearer_link_conf *c = &l->v;
    uint64_t x = 0;
    int rc;

    switch ((enum link_key)k) {
    case LK_KIND:
        if (strcmp(v, "cmpp") == 0) {
            c->kind = BEARER_KIND_CMPP;
        } else if (strcmp(v, "kbox") == 0) {
            c->kind = BEARER_KIND_KBOX;
        } else {
            return bad_value(p, "kind", v, "cmpp or kbox");
        }
        return 0;
    case LK_HOST:
        if (strlen(v) >= sizeof(c->host) || !valid_host(v)) {
            return bad_value(p, "host", v, "a numeric IPv4 or IPv6 address (no brackets)");
        }
        memcpy(c->host, v, strlen(v) + 1);
        return 0;
    case LK_PORT:
        rc = set_uint(p, "port", v, 1, 65535, &x);
        c->port = rc == 0 ? (uint16_t)x : c->port;
        return rc;
    case LK_WINDOW:
        rc = set_uint(p, "window", v, 1, 4096, &x);
        c->window = rc == 0 ? (unsigned)x : c->window;
        return rc;
    case LK_RATE: {
        const char *end;
        uint64_t frac = 0, scale = 1;
        if (!parse_u64(v, 100000, &x, &end)) {
            return bad_value(p, "rate", v, "parts per second 0..100000, e.g. 25 or 2.5");
        }
        if (*end == '.') {
            const char *f = end + 1;
            for (; *f >= '0' && *f <= '9' && scale < 1000000; f++) {
                frac = frac * 10 + (uint64_t)(*f - '0');
                scale *= 10;
            }
            if (f == end + 1 || *f) {
                return bad_value(p, "rate", v, "parts per second, at most 6 decimals");
            }
        } else if (*end) {
            return bad_value(p, "rate", v, "parts per second 0..100000, e.g. 25 or 2.5");
        }
        if (x == 100000 && frac > 0) {
            return bad_value(p, "rate", v, "out of range 0..100000");
        }
        c->rate_per_s = (double)x + (double)frac / (double)scale;
        return 0;
    }
    case LK_HEARTBEAT:
        return set_dur_s(p, "heartbeat", v, 1, 3600, &c->heartbeat_s);
    case LK_RESP_TIMEOUT:
        return set_dur_ms(p, "resp_timeout", v, 100, 600000, &c->resp_timeout_ms);
    case LK_RESP_RETRIES:
        rc = set_uint(p, "resp_retries", v, 0, 10, &x);
        c->resp_retries = rc == 0 ? (unsigned)x : c->resp_retries;
        return rc;
    case LK_RECONNECT_MIN:
        return set_dur_ms(p, "reconnect_min", v, 10, 600000, &c->reconnect_min_ms);
    case LK_RECONNECT_MAX:
        return set_dur_ms(p, "reconnect_max", v, 10, 3600000, &c->reconnect_max_ms);
    case LK_THROTTLE_PAUSE:
        return set_dur_ms(p, "throttle_pause", v, 10, 600000, &c->throttle_pause_ms);
    case LK_HOLD:
        return set_dur_ms(p, "hold", v, 1000, 86400000, &c->hold_ms);
    case LK_VERSION:
        if (strcmp(v, "2.0") == 0) {
            l->version = 0x20;
        } else if (strcmp(v, "3.0") == 0) {
            l->version = 0x30;
        } else {
            return bad_value(p, "version", v, "2.0 or 3.0");
        }
        return 0;
    case LK_SP_ID:
        rc = set_text(p, "sp_id", v, l->sp_id, sizeof(l->sp_id), false, false);
        if (rc == 0 &&
            strspn(v, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") !=
                strlen(v)) {
            return bad_value(p, "sp_id", v, "letters and digits only");
        }
        return rc;
    case LK_SECRET:
        return set_text(p, "secret", v, l->secret, sizeof(l->secret), false, false);
    case LK_SERVICE_ID:
        return set_text(p, "service_id", v, l->service_id, sizeof(l->service_id), true, false);
    case LK_SRC_ID:
        return set_text(p, "src_id", v, l->src_id, sizeof(l->src_id), true, true);
    case LK_BOXC_ID:
        return set_text(p, "boxc_id", v, l->boxc_id, sizeof(l->boxc_id), true, false);
    case LK_SMSC_ID:
        return set_text(p, "smsc_id", v, l->smsc_id, sizeof(l->smsc_id), true, false);
    case LK_SENDER:
        return set_text(p, "sender", v, l->sender, sizeof(l->sender), true, true);
    case LK__COUNT:
        break;
    }
    return -EINVAL;
}

/* ---- lines ---------------------------------------------------------------------------- */

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF), no control characters. */
static bool line_ok(const unsigned char *s, size_t n, const char **why)
{
    size_t i = 0;

    while (i < n) {
        unsigned char b = s[i];
        size_t len;
        uint32_t cp;

        if (b < 0x80) {
            if ((b < 0x20 && b != '\t') || b == 0x7f) {
                *why = b == 0 ? "NUL octet" : "control character";
                return false;
            }
            i++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf) {
            len = 2;
            cp = b & 0x1f;
        } else if (b >= 0xe0 && b <= 0xef) {
            len = 3;
            cp = b & 0x0f;
        } else if (b >= 0xf0 && b <= 0xf4) {
            len = 4;
            cp = b & 0x07;
        } else {
            *why = "invalid UTF-8";
            return false;
        }
        if (n - i < len) {
            *why = "invalid UTF-8";
            return false;
        }
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xc0) != 0x80) {
                *why = "invalid UTF-8";
                return false;
            }
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0x80 && cp <= 0x9f)) {
            *why = cp >= 0x80 && cp <= 0x9f ? "control character" : "invalid UTF-8";
            return false;
        }
        i += len;
    }
    return true;
}

static bool valid_link_name(const char *s, size_t n)
{
    if (n == 0 || n >= BEARER_LINK_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.')) {
            return false;
        }
    }
    return true;
}

static int header(struct ps *p, const char *s, size_t n)
{
    const char *in, *end;
    size_t m;

    if (s[n - 1] != ']') {
        return perr(p, p->line, -EINVAL, OTA_ERR_VALUE,
                    "section header must end with ']' and nothing after it");
    }
    in = s + 1;
    end = s + n - 1;
    while (in < end && is_space(*in)) {
        in++;
    }
    while (end > in && is_space(end[-1])) {
        end--;
    }
    m = (size_t)(end - in);
    for (int sc = SECT_GATEWAY; sc < SECT__COUNT; sc++) {
        if (sc == SECT_LINK) {
            continue;
        }
        if (m == strlen(sect_names[sc]) && memcmp(in, sect_names[sc], m) == 0) {
            if (p->sect_line[sc]) {
                return perr(p, p->line, -EINVAL, OTA_ERR_DUPLICATE,
                            "section [%s] repeated (first at line %u)", sect_names[sc],
                            p->sect_line[sc]);
            }
            p->sect_line[sc] = p->line;
            p->sect = (enum sect)sc;
            return 0;
        }
    }
    if (m > 4 && memcmp(in, "link", 4) == 0 && is_space(in[4])) {
        const char *nm = in + 5;
        size_t nl;
        struct link_acc *l;

        while (is_space(*nm)) {
            nm++;
        }
        nl = (size_t)(end - nm);
        if (!valid_link_name(nm, nl)) {
            return perr(p, p->line, -EINVAL, OTA_ERR_VALUE,
                        "link name must be 1..%d of A-Z a-z 0-9 _ - .", BEARER_LINK_NAME_MAX - 1);
        }
        for (size_t i = 0; i < p->n_links; i++) {
            if (strlen(p->links[i].v.name) == nl && memcmp(p->links[i].v.name, nm, nl) == 0) {
                return perr(p, p->line, -EINVAL, OTA_ERR_DUPLICATE,
                            "link '%s' repeated (first at line %u)", p->links[i].v.name,
                            p->links[i].hdr_line);
            }
        }
        if (p->n_links == GW_CONF_LINKS_MAX) {
            return perr(p, p->line, -EINVAL, OTA_ERR_LIMIT, "more than %d links",
                        GW_CONF_LINKS_MAX);
        }
        l = &p->links[p->n_links++];
        memset(l, 0, sizeof(*l));
        memcpy(l->v.name, nm, nl);
        l->hdr_line = p->line;
        p->sect = SECT_LINK;
        return 0;
    }
    if (m == 4 && memcmp(in, "link", 4) == 0) {
        return perr(p, p->line, -EINVAL, OTA_ERR_MISSING, "[link] needs a name: [link NAME]");
    }
    char shown[VALUE_SHOWN_MAX + 4];
    char sect[VALUE_SHOWN_MAX + 1];
    snprintf(sect, sizeof(sect), "%.*s", (int)(m < VALUE_SHOWN_MAX ? m : VALUE_SHOWN_MAX), in);
    return perr(p, p->line, -EINVAL, OTA_ERR_VALUE,
                "unknown section [%s] (gateway, engine, wallet, tls, antitheft, keys, link NAME)",
                shown_value(sect, false, shown));
}

/* The value after '=': quoted (with \" and \\) or bare; into p->val. */
static int value(struct ps *p, const char *key, const char *s, size_t n)
{
    size_t o = 0;

    if (n > 0 && s[0] == '"') {
        size_t i = 1;
        for (;; i++) {
            if (i == n) {
                return perr(p, p->line, -EINVAL, OTA_ERR_VALUE, "%s: unterminated quote", key);
            }
            if (s[i] == '"') {
                break;
            }
            if (s[i] == '\\') {
                if (i + 1 == n || (s[i + 1] != '"' && s[i + 1] != '\\')) {
                    return perr(p, p->line, -EINVAL, OTA_ERR_VALUE,
                                "%s: only \\\" and \\\\ may follow a backslash in quotes", key);
                }
                i++;
            }
            p->val[o++] = s[i];
        }
        for (i++; i < n; i++) {
            if (!is_space(s[i])) {
                return perr(p, p->line, -EINVAL, OTA_ERR_VALUE,
                            "%s: text after the closing quote (comments take a whole line)", key);
            }
        }
    } else {
        if (memchr(s, '#', n)) {
            return perr(p, p->line, -EINVAL, OTA_ERR_VALUE,
                        "%s: '#' in an unquoted value: quote it (comments take a whole line)", key);
        }
        if (memchr(s, '"', n)) {
            return perr(p, p->line, -EINVAL, OTA_ERR_VALUE,
                        "%s: '\"' inside an unquoted value: quote the whole value", key);
        }
        memcpy(p->val, s, n);
        o = n;
    }
    p->val[o] = '\0';
    return 0;
}

static int keyval(struct ps *p, const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    const char *const *keys;
    unsigned *lines;
    size_t kl, n_keys;
    char key[32];
    int k, rc;

    if (!eq) {
        return perr(p, p->line, -EINVAL, OTA_ERR_VALUE,
                    "expected 'key = value', '[section]' or '# comment'");
    }
    kl = (size_t)(eq - s);
    while (kl > 0 && is_space(s[kl - 1])) {
        kl--;
    }
    if (kl == 0) {
        return perr(p, p->line, -EINVAL, OTA_ERR_VALUE, "missing key before '='");
    }
    if (kl >= sizeof(key) || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") < kl) {
        char shown[VALUE_SHOWN_MAX + 4], raw[VALUE_SHOWN_MAX + 1];
        snprintf(raw, sizeof(raw), "%.*s", (int)(kl < VALUE_SHOWN_MAX ? kl : VALUE_SHOWN_MAX), s);
        return perr(p, p->line, -EINVAL, OTA_ERR_VALUE, "unknown key '%s'%s%s%s",
                    shown_value(raw, false, shown), p->sect ? " in [" : "",
                    p->sect ? sect_names[p->sect] : "", p->sect ? "]" : "");
    }
    memcpy(key, s, kl);
    key[kl] = '\0';

    const char *v = eq + 1;
    const char *end = s + n;
    while (v < end && is_space(*v)) {
        v++;
    }
    switch (p->sect) {
    case SECT_GATEWAY:
        keys = gw_keys;
        n_keys = GK__COUNT;
        lines = p->gw_line;
        break;
    case SECT_ENGINE:
        keys = eng_keys;
        n_keys = EK__COUNT;
        lines = p->eng_line;
        break;
    case SECT_WALLET:
        keys = wal_keys;
        n_keys = WK__COUNT;
        lines = p->wal_line;
        break;
    case SECT_TLS:
        keys = tls_keys;
        n_keys = TK__COUNT;
        lines = p->tls_line;
        break;
    case SECT_ANTITHEFT:
        keys = at_keys;
        n_keys = AK__COUNT;
        lines = p->at_line;
        break;
    case SECT_KEYS:
        keys = keys_keys;
        n_keys = KK__COUNT;
        lines = p->keys_line;
        break;
    case SECT_LINK:
        keys = link_keys;
        n_keys = LK__COUNT;
        lines = p->links[p->n_links - 1].line;
        break;
    default:
        return perr(p, p->line, -EINVAL, OTA_ERR_VALUE, "key '%s' before any [section]", key);
    }
    k = find_key(keys, n_keys, key);
    if (k < 0) {
        if (p->sect == SECT_LINK) {
            return perr(p, p->line, -EINVAL, OTA_ERR_VALUE, "unknown key '%s' in [link %s]", key,
                        p->links[p->n_links - 1].v.name);
        }
        return perr(p, p->line, -EINVAL, OTA_ERR_VALUE, "unknown key '%s' in [%s]", key,
                    sect_names[p->sect]);
    }
    if (lines[k]) {
        return perr(p, p->line, -EINVAL, OTA_ERR_DUPLICATE, "key '%s' repeated (first at line %u)",
                    key, lines[k]);
    }
    lines[k] = p->line;
    rc = value(p, key, v, (size_t)(end - v));
    if (rc < 0) {
        return rc;
    }
    switch (p->sect) {
    case SECT_GATEWAY:
        return gw_key(p, k, p->val);
    case SECT_ENGINE:
        return eng_key(p, k, p->val);
    case SECT_WALLET:
        return wal_key(p, k, p->val);
    case SECT_TLS:
        return tls_key(p, k, p->val);
    case SECT_ANTITHEFT:
        return at_key(p, k, p->val);
    case SECT_KEYS:
        return keys_key(p, k, p->val);
    default:
        return link_key(p, &p->links[p->n_links - 1], k, p->val);
    }
}

static int one_line(struct ps *p, const char *s, size_t n)
{
    const char *why;

    if (n > 0 && s[n - 1] == '\r') {
        n--;
    }
    if (n > GW_CONF_LINE_MAX) {
        return perr(p, p->line, -EINVAL, OTA_ERR_OVERSIZE, "line longer than %d octets",
                    GW_CONF_LINE_MAX);
    }
    if (!line_ok((const unsigned char *)s, n, &why)) {
        return perr(p, p->line, -EINVAL, OTA_ERR_VALUE, "%s (the file must be UTF-8 text)", why);
    }
    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1])) {
        n--;
    }
    if (n == 0 || s[0] == '#') {
        return 0;
    }
    if (s[0] == '[') {
        return header(p, s, n);
    }
    return keyval(p, s, n);
}

/* ---- whole-file checks ------------------------------------------------------------- */

static int finish_link(struct ps *p, struct link_acc *l, struct bearer_link_conf *out)
{
    static const enum link_key common[] = {LK_HOST,           LK_PORT,          LK_WINDOW,
                                           LK_RATE,           LK_HEARTBEAT,     LK_RESP_TIMEOUT,
                                           LK_RESP_RETRIES,   LK_RECONNECT_MIN, LK_RECONNECT_MAX,
                                           LK_THROTTLE_PAUSE, LK_HOLD};
    static const enum link_key required[] = {LK_KIND, LK_HOST, LK_PORT};
    enum bearer_kind kind = l->v.kind;

    for (size_t i = 0; i < OTA_ARRAY_SIZE(required); i++) {
        if (!l->line[required[i]]) {
            return perr(p, l->hdr_line, -EINVAL, OTA_ERR_MISSING, "[link %s]: missing key '%s'",
                        l->v.name, link_keys[required[i]]);
        }
    }
    for (int k = LK_FIRST_CMPP; k < LK__COUNT; k++) {
        bool cmpp_key = k < LK_FIRST_KBOX;
        if (l->line[k] && cmpp_key != (kind == BEARER_KIND_CMPP)) {
            return perr(p, l->line[k], -EINVAL, OTA_ERR_VALUE,
                        "[link %s]: key '%s' is for %s links, this one is kind = %s", l->v.name,
                        link_keys[k], cmpp_key ? "cmpp" : "kbox",
                        kind == BEARER_KIND_CMPP ? "cmpp" : "kbox");
        }
    }
    if (kind == BEARER_KIND_CMPP) {
        static const enum link_key cmpp_required[] = {LK_SP_ID, LK_SECRET};
        for (size_t i = 0; i < OTA_ARRAY_SIZE(cmpp_required); i++) {
            if (!l->line[cmpp_required[i]]) {
                return perr(p, l->hdr_line, -EINVAL, OTA_ERR_MISSING,
                            "[link %s]: missing key '%s' (required for cmpp)", l->v.name,
                            link_keys[cmpp_required[i]]);
            }
        }
    }

    struct bearer_link_conf c;
    bearer_link_conf_defaults(&c, kind);
    memcpy(c.name, l->v.name, sizeof(c.name));
    for (size_t i = 0; i < OTA_ARRAY_SIZE(common); i++) {
        if (!l->line[common[i]]) {
            continue;
        }
        switch (common[i]) {
        case LK_HOST:
            memcpy(c.host, l->v.host, sizeof(c.host));
            break;
        case LK_PORT:
            c.port = l->v.port;
            break;
        case LK_WINDOW:
            c.window = l->v.window;
            break;
        case LK_RATE:
            c.rate_per_s = l->v.rate_per_s;
            break;
        case LK_HEARTBEAT:
            c.heartbeat_s = l->v.heartbeat_s;
            break;
        case LK_RESP_TIMEOUT:
            c.resp_timeout_ms = l->v.resp_timeout_ms;
            break;
        case LK_RESP_RETRIES:
            c.resp_retries = l->v.resp_retries;
            break;
        case LK_RECONNECT_MIN:
            c.reconnect_min_ms = l->v.reconnect_min_ms;
            break;
        case LK_RECONNECT_MAX:
            c.reconnect_max_ms = l->v.reconnect_max_ms;
            break;
        case LK_THROTTLE_PAUSE:
            c.throttle_pause_ms = l->v.throttle_pause_ms;
            break;
        case LK_HOLD:
            c.hold_ms = l->v.hold_ms;
            break;
        default:
            break;
        }
    }
    if (c.reconnect_max_ms < c.reconnect_min_ms) {
        unsigned line = l->line[LK_RECONNECT_MAX] > l->line[LK_RECONNECT_MIN]
                            ? l->line[LK_RECONNECT_MAX]
                            : l->line[LK_RECONNECT_MIN];
        return perr(p, line, -EINVAL, OTA_ERR_VALUE,
                    "[link %s]: reconnect_max %ums is below reconnect_min %ums", l->v.name,
                    c.reconnect_max_ms, c.reconnect_min_ms);
    }
    if (kind == BEARER_KIND_CMPP) {
        if (l->line[LK_VERSION]) {
            c.u.cmpp.version = l->version;
        }
        memcpy(c.u.cmpp.sp_id, l->sp_id, sizeof(c.u.cmpp.sp_id));
        memcpy(c.u.cmpp.secret, l->secret, sizeof(c.u.cmpp.secret));
        memcpy(c.u.cmpp.service_id, l->service_id, sizeof(c.u.cmpp.service_id));
        memcpy(c.u.cmpp.src_id, l->src_id, sizeof(c.u.cmpp.src_id));
    } else {
        memcpy(c.u.kbox.boxc_id, l->boxc_id, sizeof(c.u.kbox.boxc_id));
        memcpy(c.u.kbox.smsc_id, l->smsc_id, sizeof(c.u.kbox.smsc_id));
        memcpy(c.u.kbox.sender, l->sender, sizeof(c.u.kbox.sender));
    }
    memcpy(out, &c, sizeof(c));
    OPENSSL_cleanse(&c, sizeof(c));
    return 0;
}

/* "<[engine] db><suffix>" into dst; false when it does not fit. */
static bool keys_derive(const struct gw_conf *c, const char *suffix, char *dst, size_t cap)
{
    /* memcpy rather than snprintf: GCC's truncation warning fires despite the check. */
    size_t a = strlen(c->db_path), b = strlen(suffix);
    if (a + b >= cap) {
        return false;
    }
    memcpy(dst, c->db_path, a);
    memcpy(dst + a, suffix, b + 1);
    return true;
}

/* [keys]: file names left out follow [engine] db; pkcs11 needs its three keys. */
static int keys_finish(struct ps *p)
{
    struct gw_conf *c = &p->c;
    static const struct {
        enum keys_key k;
        const char *suffix;
        size_t off;
    } derived[] = {
        {KK_DB, ".keys", offsetof(struct gw_conf, keys_db)},
        {KK_MASTER_KEY_FILE, ".master.key", offsetof(struct gw_conf, keys_master_file)},
        {KK_TRANSPORT_KEY_FILE, ".transport.key", offsetof(struct gw_conf, keys_transport_file)},
    };
    for (size_t i = 0; i < OTA_ARRAY_SIZE(derived); i++) {
        if (!p->keys_line[derived[i].k] &&
            !keys_derive(c, derived[i].suffix, (char *)c + derived[i].off, GW_CONF_PATH_MAX)) {
            return perr(p, p->eng_line[EK_DB] ? p->eng_line[EK_DB] : 1, -EINVAL, OTA_ERR_OVERSIZE,
                        "[engine] db too long to derive [keys] %s", keys_keys[derived[i].k]);
        }
    }
    if (c->keys_backend == GW_CONF_KEYS_PKCS11) {
        static const enum keys_key need[] = {KK_PKCS11_MODULE, KK_PKCS11_TOKEN, KK_PKCS11_PIN_FILE};
        const char *val[] = {c->keys_p11_module, c->keys_p11_token, c->keys_p11_pin_file};
        for (size_t i = 0; i < OTA_ARRAY_SIZE(need); i++) {
            if (!val[i][0]) {
                return perr(p, p->keys_line[KK_BACKEND], -EINVAL, OTA_ERR_MISSING,
                            "[keys] backend = pkcs11 needs %s", keys_keys[need[i]]);
            }
        }
    }
    return 0;
}

static int finish(struct ps *p)
{
    struct gw_conf *c = &p->c;
    int rc;

    if (c->eng.backoff_max_s < c->eng.backoff_s) {
        unsigned line = p->eng_line[EK_BACKOFF_MAX] > p->eng_line[EK_BACKOFF]
                            ? p->eng_line[EK_BACKOFF_MAX]
                            : p->eng_line[EK_BACKOFF];
        return perr(p, line, -EINVAL, OTA_ERR_VALUE, "backoff_max %us is below backoff %us",
                    c->eng.backoff_max_s, c->eng.backoff_s);
    }
    if (!p->gw_line[GK_PULL_LISTEN]) {
        memcpy(c->pull_host, c->listen_host, sizeof(c->pull_host));
        c->pull_port = c->listen_port;
    }
    if (c->plain_http) {
        /* Plain HTTP is for loopback tests only: never on an address another host reaches. */
        const char *host = !gw_tls_is_loopback(c->listen_host) ? c->listen_host
                           : !gw_tls_is_loopback(c->pull_host) ? c->pull_host
                                                               : NULL;
        if (host) {
            return perr(p, p->gw_line[GK_PLAIN_HTTP], -EINVAL, OTA_ERR_VALUE,
                        "plain_http = yes is allowed only when every listener is on loopback; "
                        "%s %s is not (use TLS: plain_http = no and [tls] cert/key)",
                        host == c->listen_host ? "listen" : "pull_listen", host);
        }
    }
    rc = keys_finish(p);
    if (rc < 0) {
        return rc;
    }
    if (p->n_links == 0) {
        return perr(p, p->line ? p->line : 1, -EINVAL, OTA_ERR_MISSING,
                    "no [link NAME] section: at least one link is needed");
    }
    for (size_t i = 0; i < p->n_links; i++) {
        rc = finish_link(p, &p->links[i], &c->links[i]);
        if (rc < 0) {
            return rc;
        }
    }
    c->n_links = p->n_links;
    return 0;
}

/* ---- API ------------------------------------------------------------------------------ */

static const char *const log_level_names[] = {[GW_CONF_LOG_ERR] = "err",
                                              [GW_CONF_LOG_WARNING] = "warning",
                                              [GW_CONF_LOG_NOTICE] = "notice",
                                              [GW_CONF_LOG_INFO] = "info",
                                              [GW_CONF_LOG_DEBUG] = "debug"};

const char *gw_conf_log_level_name(enum gw_conf_log_level l)
{
    return ota_enum_name(log_level_names, OTA_ARRAY_SIZE(log_level_names), (int64_t)l);
}

/* Everything but the links: what a file that names only links gets. */
static void base_defaults(struct gw_conf *c)
{
    memset(c, 0, sizeof(*c));
    eng_conf_defaults(&c->eng);
    snprintf(c->db_path, sizeof(c->db_path), "%s", c->eng.db_path);
    c->eng.db_path = c->db_path;
    snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
    c->listen_port = 8080;
    snprintf(c->pull_host, sizeof(c->pull_host), "127.0.0.1");
    c->pull_port = 8080;
    c->log_level = GW_CONF_LOG_INFO;
    c->max_body = 1048576;
    c->plain_http = false;
    snprintf(c->tls_cert, sizeof(c->tls_cert), "otagw-cert.pem");
    snprintf(c->tls_key, sizeof(c->tls_key), "otagw-key.pem");
    c->tls_self_signed = true;
    c->scp02_level = OTA_SCP02_SL_CMAC_CDEC;
    c->at_card_lock = true;
    c->keys_backend = GW_CONF_KEYS_LOCAL;
    /* the default db name is short: these always fit */
    (void)keys_derive(c, ".keys", c->keys_db, sizeof(c->keys_db));
    (void)keys_derive(c, ".master.key", c->keys_master_file, sizeof(c->keys_master_file));
    (void)keys_derive(c, ".transport.key", c->keys_transport_file, sizeof(c->keys_transport_file));
    snprintf(c->keys_transport_label, sizeof(c->keys_transport_label), "otagw-transport");
    c->keys_clear_import = false;
}

void gw_conf_defaults(struct gw_conf *c)
{
    struct bearer_link_conf *l = &c->links[0];

    base_defaults(c);
    /* The bundled simulator (tests/sim): otagw-sim --sp-id 901234 --secret otagw-test. */
    bearer_link_conf_defaults(l, BEARER_KIND_CMPP);
    snprintf(l->name, sizeof(l->name), "sim");
    snprintf(l->host, sizeof(l->host), "127.0.0.1");
    l->port = 7890;
    l->u.cmpp.version = 0x30;
    snprintf(l->u.cmpp.sp_id, sizeof(l->u.cmpp.sp_id), "901234");
    snprintf(l->u.cmpp.secret, sizeof(l->u.cmpp.secret), "otagw-test");
    snprintf(l->u.cmpp.service_id, sizeof(l->u.cmpp.service_id), "OTA");
    snprintf(l->u.cmpp.src_id, sizeof(l->u.cmpp.src_id), "10658");
    c->n_links = 1;
}

const struct eng_conf *gw_conf_eng(struct gw_conf *c)
{
    c->eng.db_path = c->db_path;
    return &c->eng;
}

void gw_conf_fini(struct gw_conf *c)
{
    if (!c) {
        return;
    }
    for (size_t i = 0; i < GW_CONF_LINKS_MAX; i++) {
        if (c->links[i].kind == BEARER_KIND_CMPP) {
            OPENSSL_cleanse(c->links[i].u.cmpp.secret, sizeof(c->links[i].u.cmpp.secret));
        }
    }
    OPENSSL_cleanse(c->callback_secret, sizeof(c->callback_secret));
    c->callback_secret_len = 0;
}

int gw_conf_parse(const char *text, size_t len, const char *name, struct gw_conf *out,
                  struct ota_err *err)
{
    struct ps *p;
    size_t pos = 0;
    int rc = 0;

    if (!name) {
        name = "<conf>";
    }
    if ((!text && len) || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "gw_conf_parse: NULL argument");
    }
    if (len > GW_CONF_FILE_MAX) {
        char shown[NAME_SHOWN_MAX + 4];
        shown_name(shown, sizeof(shown), name);
        return ota_fail(err, -EFBIG, OTA_ERR_OVERSIZE, "%s: larger than %d octets", shown,
                        GW_CONF_FILE_MAX);
    }
    /* ~50 KiB: the heap keeps it off small thread stacks (fuzzers, test runners). */
    p = calloc(1, sizeof(*p));
    if (!p) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "gw_conf_parse: out of memory");
    }
    shown_name(p->shown, sizeof(p->shown), name);
    p->err = err;
    base_defaults(&p->c);
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        pos = 3;
    }
    while (pos < len) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;

        p->line++;
        rc = one_line(p, s, n);
        if (rc < 0) {
            goto out;
        }
        pos += n + (nl ? 1 : 0);
    }
    rc = finish(p);
    if (rc < 0) {
        goto out;
    }
    memcpy(out, &p->c, sizeof(*out));
    out->eng.db_path = out->db_path;
    ota_err_clear(err);
out:
    gw_conf_fini(&p->c);
    for (size_t i = 0; i < GW_CONF_LINKS_MAX; i++) {
        OPENSSL_cleanse(p->links[i].secret, sizeof(p->links[i].secret));
    }
    OPENSSL_cleanse(p->val, sizeof(p->val));
    free(p);
    return rc;
}

int gw_conf_load(const char *path, struct gw_conf *out, struct ota_err *err)
{
    char shown[NAME_SHOWN_MAX + 4];
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, rc;

    if (!path || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "gw_conf_load: NULL argument");
    }
    shown_name(shown, sizeof(shown), path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        return ota_fail(err, rc, OTA_ERR_ARG, "%s: cannot open: %s", shown, strerror(-rc));
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        ota_fail(err, rc, OTA_ERR_ARG, "%s: cannot stat: %s", shown, strerror(-rc));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_ARG, "%s: not a regular file", shown);
        goto out;
    }
    if (st.st_size > GW_CONF_FILE_MAX) {
        rc = ota_fail(err, -EFBIG, OTA_ERR_OVERSIZE, "%s: larger than %d octets", shown,
                      GW_CONF_FILE_MAX);
        goto out;
    }
    /* One octet more than allowed: a file that grew since fstat is caught, not cut. */
    buf = malloc(GW_CONF_FILE_MAX + 1);
    if (!buf) {
        rc = ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "%s: out of memory", shown);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + got, GW_CONF_FILE_MAX + 1 - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            rc = -errno;
            ota_fail(err, rc, OTA_ERR_ARG, "%s: cannot read: %s", shown, strerror(-rc));
            goto out;
        }
        if (r == 0 || got + (size_t)r > GW_CONF_FILE_MAX) {
            got += (size_t)r;
            break;
        }
        got += (size_t)r;
    }
    rc = gw_conf_parse(buf, got, path, out, err);
out:
    if (buf) {
        OPENSSL_cleanse(buf, got);
        free(buf);
    }
    close(fd);
    return rc;
}

/* ---- dump ----------------------------------------------------------------------------- */

/* A value in the file's syntax: quoted when it must be (spaces at the ends, '#', '"', empty). */
static void put_val(FILE *f, const char *key, const char *v)
{
    size_t n = strlen(v);
    bool quote = n == 0 || is_space(v[0]) || is_space(v[n - 1]) || strpbrk(v, "#\"\\");

    fprintf(f, "%s = ", key);
    if (!quote) {
        fprintf(f, "%s\n", v);
        return;
    }
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"' || v[i] == '\\') {
            fputc('\\', f);
        }
        fputc(v[i], f);
    }
    fputs("\"\n", f);
}

static void put_hostport(FILE *f, const char *key, const char *host, uint16_t port)
{
    if (strchr(host, ':')) {
        fprintf(f, "%s = [%s]:%u\n", key, host, (unsigned)port);
    } else {
        fprintf(f, "%s = %s:%u\n", key, host, (unsigned)port);
    }
}

/* Parts per second as the parser reads it back: at most 6 decimals, no exponent. */
static void put_rate(FILE *f, double r)
{
    char buf[48];
    size_t n;

    snprintf(buf, sizeof(buf), "%.6f", r);
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0') {
        n--;
    }
    if (n > 0 && buf[n - 1] == '.') {
        n--;
    }
    fprintf(f, "rate = %.*s\n", (int)n, buf);
}

static const char *yn(bool b)
{
    return b ? "yes" : "no";
}

int gw_conf_dump(const struct gw_conf *c, FILE *f)
{
    const struct eng_conf *e = &c->eng;

    fputs("# otagw effective configuration (secrets shown as ***)\n\n[gateway]\n", f);
    put_hostport(f, "listen", c->listen_host, c->listen_port);
    put_hostport(f, "pull_listen", c->pull_host, c->pull_port);
    fprintf(f, "log_level = %s\n", gw_conf_log_level_name(c->log_level));
    put_val(f, "log_file", c->log_file);
    fprintf(f, "max_body = %zu\n", c->max_body);
    fprintf(f, "plain_http = %s\n", yn(c->plain_http));
    fprintf(f, "callback_secret = %s\n", c->callback_secret_len ? "***" : "\"\"");

    fputs("\n[tls]\n", f);
    put_val(f, "cert", c->tls_cert);
    put_val(f, "key", c->tls_key);
    put_val(f, "ca_file", c->tls_ca_file);
    fprintf(f, "self_signed = %s\n", yn(c->tls_self_signed));

    fputs("\n[engine]\n", f);
    put_val(f, "db", c->db_path);
    fprintf(f, "durable = %s\n", yn(e->durable));
    put_val(f, "src_addr", e->src_addr);
    fprintf(f, "want_dlr = %s\n", yn(e->want_dlr));
    fprintf(f, "dlr_timeout = %us\n", e->dlr_timeout_s);
    fprintf(f, "por_timeout = %us\n", e->por_timeout_s);
    fprintf(f, "pull_timeout = %us\n", e->pull_timeout_s);
    fprintf(f, "session_timeout = %us\n", e->session_timeout_s);
    fprintf(f, "max_attempts = %u\n", (unsigned)e->max_attempts);
    fprintf(f, "backoff = %us\n", e->backoff_s);
    fprintf(f, "backoff_max = %us\n", e->backoff_max_s);
    fprintf(f, "commit_max_staged = %u\n", e->commit_max_staged);
    fprintf(f, "commit_interval = %ums\n", e->commit_interval_ms);
    fprintf(f, "commit_max_acks = %u\n", e->commit_max_acks);
    fprintf(f, "dispatch_max_turn = %u\n", e->dispatch_max_turn);
    fprintf(f, "job_chunk = %u\n", e->job_chunk);
    fprintf(f, "keep_history = %s\n", yn(e->keep_history));

    fputs("\n[wallet]\n", f);
    fprintf(f, "port = %u\n", (unsigned)e->push_dst_port);
    fprintf(f, "src_port = %u\n", (unsigned)e->push_src_port);
    fprintf(f, "scp02_level = %02x\n", (unsigned)c->scp02_level);
    fprintf(f, "wait_pull = %s\n", yn(e->push_wait_pull));

    fputs("\n[antitheft]\n", f);
    fprintf(f, "tar = %02x%02x%02x\n", c->at_tar[0], c->at_tar[1], c->at_tar[2]);
    fputs("apps = ", f);
    for (size_t i = 0; i < c->at_n_apps && i < GW_CONF_AT_APPS_MAX; i++) {
        fputs(i ? " " : "", f);
        for (size_t j = 0; j < c->at_apps[i].len; j++) {
            fprintf(f, "%02x", c->at_apps[i].b[j]);
        }
    }
    fprintf(f, "%s\ncard_lock = %s\n", c->at_n_apps ? "" : "\"\"", yn(c->at_card_lock));

    fputs("\n[keys]\n", f);
    fprintf(f, "backend = %s\n", c->keys_backend == GW_CONF_KEYS_PKCS11 ? "pkcs11" : "local");
    put_val(f, "db", c->keys_db);
    put_val(f, "master_key_file", c->keys_master_file);
    put_val(f, "transport_key_file", c->keys_transport_file);
    put_val(f, "pkcs11_module", c->keys_p11_module);
    put_val(f, "pkcs11_token", c->keys_p11_token);
    put_val(f, "pkcs11_pin_file", c->keys_p11_pin_file);
    put_val(f, "transport_key_label", c->keys_transport_label);
    fprintf(f, "clear_import = %s\n", yn(c->keys_clear_import));

    for (size_t i = 0; i < c->n_links && i < GW_CONF_LINKS_MAX; i++) {
        const struct bearer_link_conf *l = &c->links[i];
        bool cmpp = l->kind == BEARER_KIND_CMPP;

        fprintf(f, "\n[link %s]\n", l->name);
        fprintf(f, "kind = %s\n", cmpp ? "cmpp" : "kbox");
        fprintf(f, "host = %s\n", l->host);
        fprintf(f, "port = %u\n", (unsigned)l->port);
        fprintf(f, "window = %u\n", l->window);
        put_rate(f, l->rate_per_s);
        fprintf(f, "heartbeat = %us\n", l->heartbeat_s);
        fprintf(f, "resp_timeout = %ums\n", l->resp_timeout_ms);
        fprintf(f, "resp_retries = %u\n", l->resp_retries);
        fprintf(f, "reconnect_min = %ums\n", l->reconnect_min_ms);
        fprintf(f, "reconnect_max = %ums\n", l->reconnect_max_ms);
        fprintf(f, "throttle_pause = %ums\n", l->throttle_pause_ms);
        fprintf(f, "hold = %ums\n", l->hold_ms);
        if (cmpp) {
            fprintf(f, "version = %s\n", l->u.cmpp.version == 0x20 ? "2.0" : "3.0");
            put_val(f, "sp_id", l->u.cmpp.sp_id);
            fprintf(f, "secret = %s\n", l->u.cmpp.secret[0] ? "***" : "\"\"");
            put_val(f, "service_id", l->u.cmpp.service_id);
            put_val(f, "src_id", l->u.cmpp.src_id);
        } else {
            put_val(f, "boxc_id", l->u.kbox.boxc_id);
            put_val(f, "smsc_id", l->u.kbox.smsc_id);
            put_val(f, "sender", l->u.kbox.sender);
        }
    }
    fflush(f);
    return ferror(f) ? -EIO : 0;
}
