/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the business API files (gateway/api_*.c): RFC 3339
 * times, strict ids and text checks, SHA-256 of request bodies for the
 * Idempotency-Key records, the engine-error -> HTTP answer mapping, and the
 * OpenAPI document embedded at build time (CMakeLists.txt turns
 * gateway/openapi.json into a byte array).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gateway/http.h"
#include "ota/ota_common.h"
#include "queue/engine.h"
#include "queue/store.h"

#define API_TIME_MAX 32 /* "2026-11-25T20:43:42.123Z" + NUL, with room */

/*
 * Parse an RFC 3339 UTC time, strictly: "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z"
 * ('T'/'Z' also lower case; "+00:00" accepted as Z; other offsets, leap
 * seconds, years before 1970 or after 9999 and trailing bytes refused).
 * *ms: epoch milliseconds (fractions below 1 ms are dropped). 0 or -EINVAL
 * (OTA_ERR_VALUE, field named in err->msg).
 */
int api_time_parse(const char *field, const char *s, int64_t *ms,
                   struct ota_err *err) OTA_MUST_CHECK;

/* Format epoch ms as "YYYY-MM-DDTHH:MM:SS.mmmZ". 0 or -EINVAL (out of range). */
int api_time_format(int64_t ms, char out[API_TIME_MAX]);

/* A JSON string with the formatted time, or JSON null for ms <= 0. NULL on OOM. */
json_t *api_time_json(int64_t ms);

/* Wall clock in epoch ms. */
int64_t api_now_ms(void);

/* Decimal 1..INT64_MAX, digits only, no sign or leading zero. */
bool api_parse_id(const char *s, int64_t *id);

/* s is lo..hi bytes of printable ASCII (0x20..0x7e). */
bool api_printable(const char *s, size_t lo, size_t hi);

/* SHA-256 (OpenSSL EVP). 0 or -ENOMEM / -EIO. */
int api_sha256(const void *p, size_t n, uint8_t out[32]);

/*
 * Idempotency records share one key space in the store (STORE_IDEM_KEY_MAX).
 * Keys the gateway derives itself start with one of these prefixes, followed
 * by 64 hex digits of a SHA-256; a raw Idempotency-Key starting with one is
 * refused (api_idem_key_reserved), so a staff key can never name a
 * platform's or an anti-theft record.
 */
#define API_IDEM_PLATFORM_PREFIX "p:"   /* a platform's key: sha256(owner "\n" key) */
#define API_IDEM_ANTITHEFT_PREFIX "at:" /* an anti-theft request: sha256(actor "\n" rid) */

/* True when raw key k starts with a prefix of a derived key (above). */
bool api_idem_key_reserved(const char *k);

/*
 * Write prefix + hex SHA-256 of a "\n" b into out (cap >= strlen(prefix) + 65).
 * a must hold no '\n' (principal names cannot), so the pair is unambiguous.
 * 0, -ENOSPC, or api_sha256's error.
 */
int api_idem_key_derive(const char *prefix, const char *a, const char *b, char *out, size_t cap);

/*
 * Answer an engine/store error with the one error shape: -EINVAL 400,
 * -ENOENT 404, -EEXIST/-EBUSY/-EALREADY 409, -ESHUTDOWN 503, other 500
 * ("internal"). code is used for 4xx; err->msg is the message. The engine's
 * SE refusals (spec 5.5.2) keep their own codes: -ENOLINK 409 "se-unbound",
 * -EACCES 409 "loss-listed".
 */
void api_respond_rc(struct http_req *req, int rc, const char *code, const struct ota_err *err);

/* ---- strict field checks shared by the SE and key routes ---- */

/*
 * The one SEID rule (SE registration, keys, tasks, anti-theft): 1..64
 * printable ASCII without spaces (0x21..0x7e) and without '/', '?', '#' or
 * '%' -- an SEID travels as a URL path segment (/v1/ses/{seid}).
 */
bool api_seid_ok(const char *s);

/*
 * The one callback-URL rule (tasks, jobs, anti-theft): 1..STORE_CB_URL_MAX
 * printable ASCII without spaces, "http://" or "https://" followed by a host
 * (not empty, not starting with '/' or ':').
 */
bool api_url_ok(const char *u);

/* lo..hi decimal digits. */
bool api_digits_ok(const char *s, size_t lo, size_t hi);

/* A batch name: 0..32 printable ASCII. */
bool api_batch_ok(const char *s);

/*
 * Decode hex text (either case) of exactly 2*lo..2*hi digits into out.
 * Returns the octets or -1 (also for h NULL).
 */
int api_hex_decode(const char *h, uint8_t *out, size_t lo, size_t hi);

/* n octets as 2n hex digits (upper or lower case) and a NUL into out (2n + 1 octets). */
void api_hex_encode(const uint8_t *p, size_t n, bool upper, char *out);

/* The first member of o not in allowed (NULL-terminated), or NULL when all are known. */
const char *api_unknown_member(json_t *o, const char *const *allowed);

/*
 * A required (or optional) string member of o. When it is missing (and
 * required) or not a string, answers 400 on req, sets *answered and returns
 * NULL; NULL without *answered when it is optional and absent.
 */
const char *api_str_member(struct http_req *req, json_t *o, const char *name, bool required,
                           bool *answered);

/* The OpenAPI document, NUL-terminated (generated from gateway/openapi.json). */
extern const unsigned char gw_openapi_json[];
extern const size_t gw_openapi_json_len; /* without the NUL */

/*
 * The routes gateway/api_tasks.c registers, as "METHOD /pattern" strings;
 * *n gets the count. The test compares them with the OpenAPI document.
 */
const char *const *gw_api_tasks_route_list(size_t *n);
