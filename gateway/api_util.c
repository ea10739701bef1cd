/* SPDX-License-Identifier: Apache-2.0 */
#include "gateway/api_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#define YEAR_MAX 9999

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool digits(const char *s, size_t n, unsigned *v)
{
    unsigned x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        x = x * 10 + (unsigned)(s[i] - '0');
    }
    *v = x;
    return true;
}

int api_time_parse(const char *field, const char *s, int64_t *ms, struct ota_err *err)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, mo, d, h, mi, se;
    if (!s || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &se)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "%s: not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)", field);
    }
    const char *p = s + 19;
    unsigned frac_ms = 0;
    if (*p == '.') {
        p++;
        size_t n = 0;
        unsigned scale = 100;
        while (p[n] >= '0' && p[n] <= '9') {
            if (n < 3) {
                frac_ms += (unsigned)(p[n] - '0') * scale;
                scale /= 10;
            }
            n++;
        }
        if (n == 0 || n > 9) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s: bad fraction of a second", field);
        }
        p += n;
    }
    if (!((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') && strcmp(p, "+00:00") != 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s: time must be UTC (end in Z)", field);
    }
    if (y < 1970 || y > YEAR_MAX || mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] + (mo == 2 && leap(y)) || h > 23 || mi > 59 || se > 59) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "%s: date or time out of range", field);
    }
    int64_t days = days_from_civil(y, mo, d);
    *ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)se * 1000 + frac_ms;
    return 0;
}

int api_time_format(int64_t ms, char out[API_TIME_MAX])
{
    if (ms < 0 || ms > 253402300799999LL) { /* 9999-12-31T23:59:59.999Z */
        out[0] = '\0';
        return -EINVAL;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        out[0] = '\0';
        return -EINVAL;
    }
    /* fields are in range after gmtime_r; the casts tell the compiler how wide they print */
    snprintf(out, API_TIME_MAX, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
             (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
             (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
             (unsigned)tm.tm_sec % 100u, (unsigned)(ms % 1000));
    return 0;
}

json_t *api_time_json(int64_t ms)
{
    char b[API_TIME_MAX];
    if (ms <= 0 || api_time_format(ms, b) < 0) {
        return json_null();
    }
    return json_string(b);
}

int64_t api_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool api_parse_id(const char *s, int64_t *id)
{
    if (!s || s[0] < '1' || s[0] > '9') {
        return false;
    }
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - (*p - '0')) / 10) {
            return false;
        }
        v = v * 10 + (*p - '0');
    }
    *id = v;
    return true;
}

bool api_printable(const char *s, size_t lo, size_t hi)
{
    if (!s) {
        return false;
    }
    size_t n = strnlen(s, hi + 1);
    if (n < lo || n > hi) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

int api_sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32) {
        return -EIO;
    }
    return 0;
}

bool api_idem_key_reserved(const char *k)
{
    return strncmp(k, API_IDEM_PLATFORM_PREFIX, strlen(API_IDEM_PLATFORM_PREFIX)) == 0 ||
           strncmp(k, API_IDEM_ANTITHEFT_PREFIX, strlen(API_IDEM_ANTITHEFT_PREFIX)) == 0;
}

int api_idem_key_derive(const char *prefix, const char *a, const char *b, char *out, size_t cap)
{
    size_t pl = strlen(prefix), al = strlen(a), bl = strlen(b);
    if (cap < pl + 2 * 32 + 1) {
        return -ENOSPC;
    }
    char *buf = malloc(al + 1 + bl);
    if (!buf) {
        return -ENOMEM;
    }
    memcpy(buf, a, al);
    buf[al] = '\n';
    memcpy(buf + al + 1, b, bl);
    uint8_t h[32];
    int rc = api_sha256(buf, al + 1 + bl, h);
    free(buf);
    if (rc < 0) {
        return rc;
    }
    memcpy(out, prefix, pl);
    for (size_t i = 0; i < sizeof(h); i++) {
        snprintf(out + pl + 2 * i, 3, "%02x", h[i]);
    }
    return 0;
}

void api_respond_rc(struct http_req *req, int rc, const char *code, const struct ota_err *err)
{
    const char *msg = err && err->msg[0] ? err->msg : "error";
    switch (rc) {
    case -EINVAL:
        http_respond_error(req, 400, code, "%s", msg);
        break;
    case -ENOENT:
        http_respond_error(req, 404, code, "%s", msg);
        break;
    case -EEXIST:
    case -EBUSY:
    case -EALREADY:
        http_respond_error(req, 409, code, "%s", msg);
        break;
    case -ENOLINK: /* spec 5.5.2: the SE is unbound (engine refusal, store_se_admit) */
        http_respond_error(req, 409, "se-unbound", "%s", msg);
        break;
    case -EACCES: /* spec 5.5.2: the SE or its MSISDN is on the loss list */
        http_respond_error(req, 409, "loss-listed", "%s", msg);
        break;
    case -ESHUTDOWN:
        http_respond_error(req, 503, "engine-stopped", "%s", msg);
        break;
    default:
        http_respond_error(req, 500, "internal", "%s", msg);
        break;
    }
}

bool api_seid_ok(const char *s)
{
    /* printable without space (0x21..0x7e), and no '/', '?', '#', '%': a URL path segment */
    return s && api_printable(s, 1, STORE_SEID_MAX) && strpbrk(s, " /?#%") == NULL;
}

bool api_url_ok(const char *u)
{
    if (!u || !api_printable(u, 1, STORE_CB_URL_MAX) || strchr(u, ' ')) {
        return false;
    }
    const char *h = strncmp(u, "https://", 8) == 0  ? u + 8
                    : strncmp(u, "http://", 7) == 0 ? u + 7
                                                    : NULL;
    return h && h[0] != '\0' && h[0] != '/' && h[0] != ':';
}

bool api_digits_ok(const char *s, size_t lo, size_t hi)
{
    size_t n = strlen(s);
    if (n < lo || n > hi) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

bool api_batch_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > 32) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

int api_hex_decode(const char *h, uint8_t *out, size_t lo, size_t hi)
{
    if (!h) {
        return -1;
    }
    size_t n = strlen(h);
    if (n % 2 || n / 2 < lo || n / 2 > hi) {
        return -1;
    }
    for (size_t i = 0; i < n; i += 2) {
        int v = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = h[i + j];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0) {
                return -1;
            }
            v = v << 4 | d;
        }
        out[i / 2] = (uint8_t)v;
    }
    return (int)(n / 2);
}

void api_hex_encode(const uint8_t *p, size_t n, bool upper, char *out)
{
    const char *d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Refuse members outside allowed (NULL-terminated). Returns the first unknown key or NULL. */
const char *api_unknown_member(json_t *o, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        (void)v;
        bool known = false;
        for (size_t i = 0; allowed[i]; i++) {
            if (strcmp(k, allowed[i]) == 0) {
                known = true;
                break;
            }
        }
        if (!known) {
            return k;
        }
    }
    return NULL;
}

/* A required (or optional) string member; 400 answered and NULL returned when it is bad. */
const char *api_str_member(struct http_req *req, json_t *o, const char *name, bool required,
                           bool *answered)
{
    json_t *v = json_object_get(o, name);
    if (!v) {
        if (required) {
            (void)http_respond_error(req, 400, "missing-field", "%s: required", name);
            *answered = true;
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        (void)http_respond_error(req, 400, "bad-type", "%s: must be a string", name);
        *answered = true;
        return NULL;
    }
    return json_string_value(v);
}
