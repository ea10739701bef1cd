/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bearer: how otagw hands SMS to the network and hears back. One
 * interface over every kind of link (native CMPP 2.0/3.0 to an ISMG, the
 * Kannel box link to bearerbox and through it SMPP to any SMSC), on the one
 * libev loop of the process.
 *
 * A bearer holds several links and spreads submits over the ones that are up
 * and have room. Each link has a window (submits awaiting their response), a
 * rate (SMS parts per second, every part counted), reconnect with
 * exponential back-off, and heartbeats. The caller submits one SMS part at a
 * time (ota/ segments long payloads) and learns, by callback:
 *   - the submit result of each part: the bearer's message id, or a failure
 *     marked retryable (try again later, maybe elsewhere) or final;
 *   - delivery reports, matched by a canonical message id (bearer_msgid_*);
 *   - MO messages, already reassembled when they came concatenated;
 *   - link state changes, and "ready" when room opens after back-pressure.
 *
 * Promises the task engine (issue #5) builds on:
 *   - A throttling answer (CMPP Result 8, Kannel ack_failed_tmp, SMPP
 *     ESME_RTHROTTLED / RMSGQFUL) pauses that link and resends its held
 *     parts in their original order; it never fails, drops or reorders them.
 *   - Parts in flight when a link drops are resent after it comes back (or on
 *     another link), in order; a part is reported failed only when its
 *     hold time runs out (retryable) or the network refuses it (final).
 *   - Each accepted part gets exactly one submit_result callback.
 *   - Order per destination: at most one part per destination is on the
 *     wire at a time, and all pending parts of a destination stay on the
 *     link the first one went to, so nothing overtakes a throttled or
 *     resent part to the same handset (SCP80 counters arrive in order).
 *   - DLR and MO callbacks return 0 only once the caller has stored what it
 *     needs durably; the bearer acknowledges to the network after that, so a
 *     crash before the store makes the network deliver it again.
 *
 * Ownership: the bearer copies every struct passed in; pointers in callback
 * arguments are borrowed for the duration of the call only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ota/ota_common.h"

#define BEARER_ADDR_MAX 21  /* MSISDN / service code digits (CMPP terminal ids are 21 or 32) */
#define BEARER_MSGID_MAX 64 /* canonical message id text, NUL included */
#define BEARER_LINK_NAME_MAX 32
#define BEARER_UD_MAX 140

enum bearer_kind {
    BEARER_KIND_CMPP = 1, /* native CMPP 2.0/3.0 client to an ISMG */
    BEARER_KIND_KBOX = 2, /* a box of Kannel bearerbox (SMPP to the SMSC) */
};

/* Link states; values are stable (stored in metrics and logs by name). */
enum bearer_link_state {
    BEARER_LINK_DOWN = 0,       /* not connected; a reconnect timer may run */
    BEARER_LINK_CONNECTING = 1, /* TCP connect in progress */
    BEARER_LINK_BINDING = 2,    /* login (CMPP CONNECT / box identify) in progress */
    BEARER_LINK_UP = 3,         /* takes submits */
    BEARER_LINK_THROTTLED = 4,  /* up, paused by a flow-control answer */
    BEARER_LINK_CLOSING = 5,    /* orderly close (TERMINATE / shutdown) */
    BEARER_LINK__COUNT
};

const char *bearer_link_state_name(enum bearer_link_state st);

/* One SMS part to send. Copied by bearer_submit(). */
struct bearer_msg {
    char dest[BEARER_ADDR_MAX + 1]; /* destination MSISDN, digits */
    char src[BEARER_ADDR_MAX + 1];  /* source address / service code; "" = link default */
    uint8_t ud[BEARER_UD_MAX];      /* user data: UDH (when udhi) + payload */
    uint8_t ud_len;
    bool udhi;
    uint8_t pid;      /* TP-PID: 0x7F for SCP80, 0x00 for a push */
    uint8_t dcs;      /* TP-DCS: 0xF6 (8-bit class 2) for SCP80, 0xF5/0x04 for a push */
    bool want_report; /* ask for a delivery report */
    uint8_t priority; /* 0 (bulk) .. 3 (urgent); urgent parts go first in a link's queue */
    uint8_t part;     /* 1-based part number of a concatenated send (1 when single) */
    uint8_t n_parts;  /* total parts (1 when single); CMPP Pk_number / Pk_total */
    uint64_t token;   /* the caller's correlation, given back in every callback */
    uint32_t hold_ms; /* give up (retryable) if not accepted within this; 0 = default */
};

enum bearer_submit_status {
    BEARER_SUBMIT_OK = 0,        /* the network accepted it: msg_id is set */
    BEARER_SUBMIT_RETRYABLE = 1, /* not sent or not accepted in time; may succeed later */
    BEARER_SUBMIT_FINAL = 2,     /* the network refused it for good */
};

const char *bearer_submit_status_name(enum bearer_submit_status st);

struct bearer_submit_result {
    uint64_t token;
    enum bearer_submit_status status;
    char msg_id[BEARER_MSGID_MAX]; /* canonical (bearer_msgid_canon), "" unless OK */
    int code;                      /* bearer code: CMPP Result, Kannel nack, or -errno */
    const char *reason;            /* human text for logs and failure statistics */
    const char *link;              /* the link that answered */
    uint8_t attempts;              /* how many times it was put on the wire */
};

enum bearer_dlr_state {
    BEARER_DLR_DELIVERED = 0,
    BEARER_DLR_FAILED = 1,
    BEARER_DLR_EXPIRED = 2,
    BEARER_DLR_REJECTED = 3,
    BEARER_DLR_UNKNOWN = 4,
    BEARER_DLR_ACCEPTED = 5, /* intermediate: buffered / en route (not final) */
    BEARER_DLR__COUNT
};

const char *bearer_dlr_state_name(enum bearer_dlr_state st);

struct bearer_dlr {
    char msg_id[BEARER_MSGID_MAX]; /* canonical id, as in the submit result */
    uint64_t token; /* the part's token when the bearer carries it back (Kannel), else 0 */
    bool has_token;
    enum bearer_dlr_state state;
    bool final;
    char stat[8];     /* raw status text (CMPP Stat, SMPP stat:) */
    int err;          /* network error code when given, else 0 */
    const char *dest; /* the handset the report is about */
    const char *link;
};

struct bearer_mo {
    const char *orig; /* originator MSISDN */
    const char *dest; /* the service code / number it was sent to */
    const uint8_t *ud;
    size_t ud_len; /* may exceed 140 after reassembly */
    bool udhi;
    uint8_t pid, dcs;
    const char *link;
};

/*
 * Callbacks, all on the loop thread. dlr and mo return 0 when the caller has
 * taken the report durably (the bearer then acknowledges it to the network),
 * or a negative errno to have it redelivered later (not acknowledged), or
 * BEARER_ACK_LATER: taken, but durable only at the caller's next commit.
 * The bearer then holds the acknowledgement until bearer_release_acks()
 * (sent, in arrival order) or bearer_discard_acks() (never sent: the network
 * delivers the report again). Acks held for a link that drops are
 * forgotten the same way. This lets a store commit a whole batch of reports
 * with one fsync and still never ack a report it could lose. Any positive
 * return counts as BEARER_ACK_LATER (holding is the safe reading).
 *
 * Memory is bounded: a link holds at most BEARER_HELD_ACKS_MAX acks. While
 * it is full, reports on that link are refused before the callback is
 * called (as if it returned -ENOBUFS: not acknowledged, the network
 * delivers them again) and counted (bearer_acks_refused). Refusing, not
 * acking early, keeps the promise above; the caller avoids it by releasing
 * more often than every BEARER_HELD_ACKS_MAX reports.
 *
 * Limitations: a reassembled multi-part MO holds only its last part's ack
 * (the others were acked when reassembly kept them), and a parked MO (see
 * mos_lost) offered again and answered BEARER_ACK_LATER was acked when it
 * was parked; a discard cannot bring either back from the network.
 */
#define BEARER_ACK_LATER 1
#define BEARER_HELD_ACKS_MAX 4096 /* per link */

struct bearer_cbs {
    void (*submit_result)(void *arg, const struct bearer_submit_result *r);
    int (*dlr)(void *arg, const struct bearer_dlr *d);
    int (*mo)(void *arg, const struct bearer_mo *m);
    void (*link_state)(void *arg, const char *link, enum bearer_link_state from,
                       enum bearer_link_state to, const char *why);
    void (*ready)(void *arg); /* room again after bearer_submit() said -EAGAIN */
    void *arg;
};

/* Configuration of one link; copied by bearer_add_link(). */
struct bearer_link_conf {
    char name[BEARER_LINK_NAME_MAX];
    enum bearer_kind kind;
    char host[64]; /* numeric IPv4/IPv6 address (no DNS on the loop) */
    uint16_t port;
    unsigned window;          /* parts awaiting a response; default 16 */
    double rate_per_s;        /* parts per second; default 25 (spec floor); 0 = unlimited */
    unsigned heartbeat_s;     /* idle time before a keep-alive; CMPP default 180 */
    unsigned resp_timeout_ms; /* wait for a response; CMPP default 60000 */
    unsigned resp_retries;    /* resends of an unanswered request; CMPP default 2 */
    unsigned reconnect_min_ms, reconnect_max_ms; /* back-off bounds; default 500 / 30000 */
    unsigned throttle_pause_ms; /* pause after a flow-control answer; default 1000 */
    unsigned hold_ms;           /* default part hold time; default 600000 */
    union {
        struct {
            uint8_t version;     /* 0x20 or 0x30 */
            char sp_id[7];       /* Source_Addr: the SP's 6-character id */
            char secret[65];     /* shared secret for the authenticator */
            char service_id[11]; /* Service_Id of SUBMIT */
            char src_id[22];     /* Src_Id: the SP's access number */
        } cmpp;
        struct {
            char boxc_id[64]; /* identify id; DLRs come back to it */
            char smsc_id[64]; /* route to this bearerbox SMSC ("" = routing decides) */
            /*
             * Sender of MTs whose part names none. A card answers its PoR to
             * the command's originating address, so an empty sender leaves
             * the PoR nowhere to go (bearerbox refuses an MO without a
             * destination); default "" keeps the SMSC link's own default.
             */
            char sender[BEARER_ADDR_MAX + 1];
        } kbox;
    } u;
};

/* Defaults for a kind (window, rate, timers), to adjust before add_link. */
void bearer_link_conf_defaults(struct bearer_link_conf *c, enum bearer_kind kind);

/* Counters of a link for metrics; plain numbers, monotonic since start. */
struct bearer_link_stats {
    enum bearer_link_state state;
    unsigned in_flight; /* awaiting a response */
    unsigned held;      /* accepted from the caller, waiting to be (re)sent */
    uint64_t submitted, accepted, rejected, throttled, resent, timeouts;
    uint64_t dlrs, dlrs_unmatched, mos, reconnects;
    uint64_t mos_lost; /* reassembled MO refused with the park full, or left at shutdown */
    uint64_t bad_pdus; /* undecodable or unexpected PDUs from the network (counted, dropped) */
};

struct bearer;

/*
 * Create a bearer on loop (borrowed; must outlive it). cbs is copied.
 * Returns 0, -EINVAL (OTA_ERR_ARG: NULL loop or missing submit_result) or
 * -ENOMEM. Free with bearer_free().
 */
int bearer_new(struct ev_loop *loop, const struct bearer_cbs *cbs, struct bearer **out,
               struct ota_err *err) OTA_MUST_CHECK;

/*
 * Add a link and start connecting it. Returns 0, -EINVAL (OTA_ERR_ARG: bad
 * host/port/version/window, duplicate name), -ENOMEM.
 */
int bearer_add_link(struct bearer *b, const struct bearer_link_conf *c,
                    struct ota_err *err) OTA_MUST_CHECK;

/*
 * Hand one SMS part to the bearer. Returns 0 (accepted: exactly one
 * submit_result callback will follow), -EAGAIN (OTA_ERR_LIMIT: no link is up
 * with room now, or the link holding this destination's earlier parts is
 * full: keep the part and wait for the ready callback), -EINVAL
 * (OTA_ERR_ARG: bad address, ud_len, part numbers, priority > 3),
 * -ESHUTDOWN (OTA_ERR_STATE: after bearer_shutdown), -ENOMEM. Never calls
 * back from inside this call: parts go on the wire from an ev_prepare
 * watcher before the loop next blocks. Each link accepts 4 x window parts
 * (held + in flight); hold_ms counts only while a part is held, never
 * while it awaits its response.
 */
int bearer_submit(struct bearer *b, const struct bearer_msg *m, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Send every acknowledgement held by BEARER_ACK_LATER, per link in arrival
 * order. Every held ack belongs to a connection still open: acks of a link
 * that dropped, and all of them at bearer_shutdown(), were forgotten
 * (release before shutting down when the batch is committed). NULL: no-op.
 */
void bearer_release_acks(struct bearer *b);

/* Forget every held acknowledgement (the caller's commit failed). NULL: no-op. */
void bearer_discard_acks(struct bearer *b);

/* Acknowledgements held now (tests, metrics). */
size_t bearer_held_acks(const struct bearer *b);

/* Reports refused because their link held BEARER_HELD_ACKS_MAX acks (or no memory). */
uint64_t bearer_acks_refused(const struct bearer *b);

/* Parts bearer_submit() would accept right now (0 means back-pressure). */
size_t bearer_room(const struct bearer *b);

/* Stats of link i (0-based); false when i is out of range. */
bool bearer_link_stats(const struct bearer *b, size_t i, const char **name,
                       struct bearer_link_stats *st);

/*
 * Close every link in order (CMPP TERMINATE, box shutdown) and stop all
 * watchers; parts not yet accepted by the network are reported RETRYABLE.
 * Safe to call twice. bearer_free() calls it.
 */
void bearer_shutdown(struct bearer *b);
void bearer_free(struct bearer *b);

/*
 * Message ids as the bearers and their reports spell them differ (hex vs
 * decimal, leading zeros dropped, upper case). Every id the bearer reports is
 * canonical: lower case, no leading zeros beyond one, for CMPP the 16 hex
 * digits of the 64-bit Msg_Id. bearer_msgid_canon() turns any spelling a
 * report may carry into that form. Returns 0 or -EINVAL (OTA_ERR_VALUE).
 */
int bearer_msgid_canon(enum bearer_kind kind, const char *in, char out[BEARER_MSGID_MAX],
                       struct ota_err *err) OTA_MUST_CHECK;
