/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log's hash chain (issue #7, spec 7.2), shared by the daemon
 * (gateway/audit.c appends) and otatool (audit-verify, audit-list read):
 * the table, the canonical encoding that is hashed, and the walk that names
 * the first broken entry.
 *
 * The log lives in its own small SQLite file next to the engine's, named
 * by gw_audit_path() ("<db_path>.audit"): the engine keeps a write
 * transaction open while it stages a batch, and an audit write that had to
 * wait for it (or force it with eng_flush) would either stall the loop or
 * break the engine's group commit at every failed login. A separate file
 * has its own lock and its own fsync.
 *
 * Entry seq (1, 2, ...) holds ts_ms, actor, action, target, detail and
 * prev_hash (the hash of entry seq - 1; 32 zero octets for seq 1); its hash
 * is SHA-256 over
 *   "otagw-audit-v1" 0x00 | seq (8 octets BE) | ts_ms (8 octets BE, two's
 *   complement) | for actor, action, target, detail: length (4 octets BE)
 *   and the UTF-8 octets | prev_hash (32 octets)
 * Length prefixes keep field boundaries unambiguous ("a","bc" differs from
 * "ab","c"). Hashes are stored as 64 lower-case hex digits.
 *
 * Triggers refuse UPDATE and DELETE and an INSERT that does not extend the
 * chain; they guard against mistakes, not an attacker with the file (who
 * can drop them): the verifier catches what was changed by other means,
 * except that entries cut from the end cannot be told from a shorter log
 * without an outside record of the head (the daemon logs seq and hash of
 * the head at start and stop).
 *
 * Prefix gw_audit_. No global state; one connection per caller.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/ota_common.h"

struct sqlite3;

#define GW_AUDIT_HASH_LEN 32
#define GW_AUDIT_ACTOR_MAX 128
#define GW_AUDIT_ACTION_MAX 64
#define GW_AUDIT_TARGET_MAX 256
#define GW_AUDIT_DETAIL_MAX 2048

/* One entry as stored. Strings borrowed; never NULL ("" for none). */
struct gw_audit_entry {
    int64_t seq;
    int64_t ts_ms; /* wall clock, epoch ms */
    const char *actor, *action, *target, *detail;
    uint8_t prev_hash[GW_AUDIT_HASH_LEN];
    uint8_t hash[GW_AUDIT_HASH_LEN];
};

/* Why a chain is broken, as the verifier reports it. */
enum gw_audit_break {
    GW_AUDIT_INTACT = 0,
    GW_AUDIT_BREAK_SEQ = 1,    /* a seq missing (deleted) or out of order */
    GW_AUDIT_BREAK_LINK = 2,   /* prev_hash is not the hash of the entry before */
    GW_AUDIT_BREAK_HASH = 3,   /* hash does not match the entry's fields */
    GW_AUDIT_BREAK_FORMAT = 4, /* a field of the wrong type, a hash not 64 hex digits */
    GW_AUDIT_BREAK_COUNT = 5,  /* the start-up check: fewer rows than the tail's seq */
};

/* "intact", "seq", "link", "hash", "format", "count". */
const char *gw_audit_break_name(enum gw_audit_break b);

struct gw_audit_report {
    uint64_t n_ok;    /* entries verified before the break (all of them when intact) */
    int64_t head_seq; /* last verified entry (0: none) */
    uint8_t head_hash[GW_AUDIT_HASH_LEN];
    int64_t bad_seq; /* the first broken entry (0 when intact) */
    enum gw_audit_break why;
    char what[200]; /* what broke, for people */
};

/* The audit file of an engine database: "<db_path>.audit". 0, -EINVAL, -ENAMETOOLONG. */
int gw_audit_path(const char *db_path, char *out, size_t cap) OTA_MUST_CHECK;

/*
 * Open the audit file. readonly: for the verifier (the file must exist);
 * otherwise it is created, switched to WAL with synchronous=FULL, and the
 * table and its guard triggers created when missing (*guards_restored true
 * when a table with entries had lost a trigger; may be NULL).
 * 0, -ENOENT (readonly, no file or no table), -EIO.
 */
int gw_audit_db_open(const char *path, bool readonly, struct sqlite3 **out, bool *guards_restored,
                     struct ota_err *err) OTA_MUST_CHECK;

/* SHA-256 over the canonical encoding of e's fields and prev_hash (e->hash ignored). */
int gw_audit_entry_hash(const struct gw_audit_entry *e, uint8_t out[GW_AUDIT_HASH_LEN],
                        struct ota_err *err) OTA_MUST_CHECK;

/*
 * Walk the whole chain in seq order and check, per entry: seq is the one
 * after the previous (first: 1), prev_hash links, hash matches. Stops at
 * the first break. each (may be NULL) sees every entry that verified (its
 * strings valid for the call only).
 * Returns 0 intact (rep filled), -EBADMSG broken (rep names bad_seq and
 * why), -EIO (rep not meaningful).
 */
int gw_audit_verify(struct sqlite3 *db, void (*each)(void *arg, const struct gw_audit_entry *e),
                    void *arg, struct gw_audit_report *rep, struct ota_err *err) OTA_MUST_CHECK;

/*
 * The cheap start-up check: the last entry's hash matches its fields, its
 * prev_hash is the hash of the entry before, and the table holds exactly
 * tail seq rows. 0 (rep->head_seq / head_hash = the tail, 0 / zeros when
 * empty), -EBADMSG (rep names it), -EIO.
 */
int gw_audit_check_tail(struct sqlite3 *db, struct gw_audit_report *rep,
                        struct ota_err *err) OTA_MUST_CHECK;

/*
 * Append one entry (time: now) in its own transaction, reading the tail
 * inside it, so writers on other connections (the daemon, otatool for
 * offline token operations) interleave safely. Fields as gw_audit() takes
 * them (NULL = ""), none over its *_MAX; action required. Durable at
 * return when the connection was opened by gw_audit_db_open (FULL sync).
 * *seq and hash (each may be NULL) get the new entry's. 0, -EINVAL, -EIO
 * (the busy timeout of 1 s included).
 */
int gw_audit_db_append(struct sqlite3 *db, const char *actor, const char *action,
                       const char *target, const char *detail, int64_t *seq,
                       uint8_t hash[GW_AUDIT_HASH_LEN], struct ota_err *err) OTA_MUST_CHECK;

/*
 * Entries with seq >= from_seq in seq order, at most max (0: all), as
 * stored (not verified). cb returns 0 to go on. 0, -EIO, or cb's negative.
 */
int gw_audit_list(struct sqlite3 *db, int64_t from_seq, size_t max,
                  int (*cb)(void *arg, const struct gw_audit_entry *e), void *arg,
                  struct ota_err *err) OTA_MUST_CHECK;

/* Parse exactly 64 lower-case hex digits (what is stored); false otherwise. */
bool gw_audit_hash_unhex(const char *s, uint8_t out[GW_AUDIT_HASH_LEN]);

/* Lower-case hex of a hash into out (65 octets). */
void gw_audit_hash_hex(const uint8_t h[GW_AUDIT_HASH_LEN], char out[2 * GW_AUDIT_HASH_LEN + 1]);
