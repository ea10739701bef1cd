/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared vocabulary of the ota/ codecs: the error record every function fills,
 * and the small macros the codecs share. ota/ does no I/O, keeps no globals
 * and never logs: a codec returns a negative errno and describes the cause in
 * struct ota_err, and the caller logs it with its own context (link, SE, task).
 *
 * Users include "ota/ota.h", which pulls in this file.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define OTA_MUST_CHECK __attribute__((warn_unused_result))
#define OTA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define OTA_MUST_CHECK
#define OTA_PRINTF(a, b)
#endif

/*
 * The distinct reasons a codec call fails. Values are stable (they may be
 * stored and counted); never renumber, only append.
 */
enum ota_errc {
    OTA_OK = 0,
    OTA_ERR_TRUNCATED = 1,   /* input ends before a field it announces */
    OTA_ERR_OVERSIZE = 2,    /* input or result exceeds a protocol maximum */
    OTA_ERR_LENGTH = 3,      /* a length field disagrees with the data */
    OTA_ERR_VALUE = 4,       /* a field holds a reserved or unsupported value */
    OTA_ERR_NOSPACE = 5,     /* the caller's output buffer is too small */
    OTA_ERR_ARG = 6,         /* the caller passed an invalid argument */
    OTA_ERR_KEY = 7,         /* key missing, wrong length or wrong algorithm */
    OTA_ERR_CRYPTO = 8,      /* OpenSSL refused an operation */
    OTA_ERR_BAD_CC = 9,      /* cryptographic checksum / RC / MAC mismatch */
    OTA_ERR_PADDING = 10,    /* padding count or cipher block alignment wrong */
    OTA_ERR_TAR = 11,        /* TAR differs from the one expected */
    OTA_ERR_COUNTER = 12,    /* counter replayed, lower or otherwise refused */
    OTA_ERR_CRYPTOGRAM = 13, /* SCP02 card cryptogram mismatch */
    OTA_ERR_STATE = 14,      /* call not allowed in the object's state */
    OTA_ERR_TAG = 15,        /* unknown or misplaced BER-TLV tag */
    OTA_ERR_VERSION = 16,    /* unknown layout version */
    OTA_ERR_DUPLICATE = 17,  /* part or element already seen */
    OTA_ERR_MISSING = 18,    /* a required part or element is absent */
    OTA_ERR_LIMIT = 19,      /* a configured bound (parts held, ...) is reached */
    OTA_ERR_SW = 20,         /* a card status word reports failure */
    OTA_ERR_PROTECTION = 21, /* security the SPI demands is absent */
    OTA_ERR__COUNT
};

/* Error record: code says why, msg says where and with which numbers. */
struct ota_err {
    enum ota_errc code;
    char msg[160];
};

/* Name of an error code ("truncated", "bad-cc", ...); never NULL. */
const char *ota_errc_name(enum ota_errc code);

/*
 * names[v] of an enum name table with n_names entries (STYLE 5: logs show
 * names); "unknown" when v is negative, out of range or has no entry. Never NULL.
 */
const char *ota_enum_name(const char *const *names, size_t n_names, int64_t v);

/*
 * Fill *err (if not NULL) and return rc. rc is the negative errno the
 * function returns, so a failing path reads `return ota_fail(err, ...)`.
 */
int ota_fail(struct ota_err *err, int rc, enum ota_errc code, const char *fmt, ...)
    OTA_PRINTF(4, 5);

/* Reset *err to OTA_OK with an empty message (NULL is allowed). */
void ota_err_clear(struct ota_err *err);

/* Big-endian helpers for wire fields; callers have checked the length. */
static inline uint16_t ota_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static inline void ota_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline uint64_t ota_get_u40(const uint8_t *p)
{
    return (uint64_t)p[0] << 32 | (uint64_t)p[1] << 24 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 8 | p[4];
}
static inline void ota_put_u40(uint8_t *p, uint64_t v)
{
    for (int i = 4; i >= 0; i--, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

#define OTA_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
