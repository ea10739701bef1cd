/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal link API of the bearer (smpp/bearer.c): what every link kind
 * (CMPP in cmpp_link.c, Kannel box in kbox_link.c) shares with the core.
 *
 * Division of work:
 *   core (bearer.c)  owns the parts: the held FIFO of each link (by priority,
 *                    then enqueue order), the in-flight table (wire seq ->
 *                    part, O(1)), window, rate limit, hold expiry, throttle
 *                    pause, reconnect back-off, the link state machine, MO
 *                    reassembly and every user callback;
 *   link (ops)       owns the socket and the protocol: login, encoding one
 *                    part, matching responses to wire seqs, heartbeats,
 *                    request timeouts/resends, reports and MO decoding.
 *
 * A link never calls user callbacks itself. It reports to the core with the
 * bearer_link_*() functions below, all on the loop thread; none of them frees
 * the link, so a link may keep using its own state after calling them.
 *
 * Per-destination order: the core puts at most one part per destination on
 * the wire at a time and keeps all pending parts of a destination on one
 * link, so a throttled or resent part can never be overtaken by a later part
 * to the same handset (SCP80 counters must arrive in order).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "smpp/bearer.h"

#define BEARER_PRIO_LEVELS 4 /* bearer_msg.priority 0..3 */

struct bearer_link;

/*
 * One accepted part, owned by the core (pooled: no malloc per part). A link
 * reads msg/attempts and may use the wire_* fields; it never frees a part or
 * keeps a pointer to it after the part leaves the in-flight table.
 */
struct bearer_part {
    struct bearer_msg msg;    /* copy of what the caller submitted */
    uint64_t enq_seq;         /* bearer-wide enqueue order: restores FIFO position */
    ev_tstamp deadline;       /* hold expiry (ev_now at submit + hold_ms) */
    struct bearer_link *link; /* the link it is pending on */
    uint32_t wire_seq;        /* while in flight: what ops->send returned */
    bool in_flight;
    uint8_t attempts;   /* times put on the wire (bearer_submit_result.attempts) */
    ev_tstamp sent_at;  /* for the link's response timer (bearer_link_inflight_touch) */
    uint8_t wire_tries; /* for the link: resends on this connection */
    struct bearer_part *next, *prev;   /* held FIFO, in-flight age list or free list */
    struct bearer_part *dnext, *dprev; /* destination hash chain (pending parts) */
};

/*
 * An acknowledgement the link owes the network for one report (CMPP:
 * DELIVER_RESP Sequence_Id + Msg_Id; Kannel: ack id + time), in the link's
 * own encoding. The core only stores and hands it back (BEARER_ACK_LATER).
 */
#define BEARER_ACK_DATA_MAX 24
struct bearer_ack {
    uint8_t data[BEARER_ACK_DATA_MAX];
    uint8_t len;
};

/* What a link kind implements. All run on the loop thread. */
struct bearer_link_ops {
    const char *kind_name; /* "cmpp", "kbox" */
    /*
     * Validate lk->conf and allocate lk->impl. Returns 0 or a negative errno
     * with err filled (OTA_ERR_ARG for bad conf). Does not connect.
     */
    int (*init)(struct bearer_link *lk, struct ota_err *err);
    /*
     * Start a connection (non-blocking). Report progress with
     * bearer_link_set_state(CONNECTING/BINDING), success with
     * bearer_link_up(), any failure with bearer_link_lost() (also when the
     * failure is immediate, e.g. socket() fails).
     */
    void (*connect)(struct bearer_link *lk);
    /*
     * Put one part on the wire (or in the link's bounded output buffer).
     * Returns 0 and sets *wire_seq (unique among this link's parts in flight),
     * -EAGAIN when it cannot take it now (call bearer_link_writable() later),
     * or another negative errno when this part can never be sent on this link
     * (e.g. it does not encode): the core reports it FINAL with err's text.
     */
    int (*send)(struct bearer_link *lk, const struct bearer_part *p, uint32_t *wire_seq,
                struct ota_err *err);
    /*
     * Close now (bearer shutdown): best-effort goodbye (CMPP TERMINATE, box
     * shutdown), close the socket, stop every watcher. Must not call
     * bearer_link_lost(). May be called in any state, also twice.
     */
    void (*close)(struct bearer_link *lk);
    /* Release lk->impl (close() was called before). */
    void (*free)(struct bearer_link *lk);
    /*
     * Send one acknowledgement held since bearer_link_dlr/mo returned
     * BEARER_ACK_LATER (bearer_release_acks). It belongs to the current
     * connection: the core forgets held acks in bearer_link_lost() and at
     * shutdown. May drop the connection (bearer_link_lost) when it cannot
     * be queued; the core then stops releasing that link. Required for a
     * link that passes acks to bearer_link_dlr/mo.
     */
    void (*send_ack)(struct bearer_link *lk, const struct bearer_ack *a);
};

extern const struct bearer_link_ops bearer_cmpp_ops; /* smpp/cmpp_link.c */
extern const struct bearer_link_ops bearer_kbox_ops; /* smpp/kbox_link.c */

/* Held parts of one priority, oldest first (sorted by enq_seq). */
struct bearer_partq {
    struct bearer_part *head, *tail;
};

/* The in-flight table: open addressing on wire_seq, power-of-two slots. */
struct bearer_inflight {
    struct bearer_part **slot;
    size_t n_slots;                      /* >= 2 * window, power of two */
    size_t n;                            /* parts in flight */
    struct bearer_part *oldest, *newest; /* age list (sent_at order) via next/prev */
};

/* The link base, embedded nowhere else: the core allocates one per link. */
struct bearer_link {
    struct bearer *b;
    const struct bearer_link_ops *ops;
    void *impl; /* the kind's private state */
    struct bearer_link_conf conf;
    size_t index; /* position in the bearer (bearer_link_stats) */
    enum bearer_link_state state;
    struct bearer_link_stats st;

    struct bearer_partq held[BEARER_PRIO_LEVELS]; /* [3] = most urgent */
    size_t n_held;
    struct bearer_inflight inflight;
    size_t queue_max; /* held + in flight accepted on this link */

    double tokens; /* rate limiter: token bucket, one token per part */
    ev_tstamp tokens_at;
    ev_timer rate_timer;

    ev_timer reconnect_timer;
    unsigned backoff_ms;

    ev_timer throttle_timer;
    unsigned throttle_ms; /* current pause; doubles on repeated throttles */

    bool pump_wanted; /* the core's deferred pump should look at this link */
    bool closing;     /* bearer shutdown in progress: no reconnect */

    /* Acks held by BEARER_ACK_LATER, arrival order; at most BEARER_HELD_ACKS_MAX. */
    struct bearer_ack *acks;
    size_t n_acks, acks_cap;
    uint64_t conn_gen;     /* bumped when held acks die with the connection */
    uint64_t acks_refused; /* reports refused with the held acks full */
};

/* ---- called by a link implementation -------------------------------------- */

/*
 * Change state through the transition table (bearer.c); logs
 * `link=NAME old -> new (why)` and calls the user's link_state callback.
 * Returns 0, or -EINVAL when the table forbids it (state unchanged).
 */
int bearer_link_set_state(struct bearer_link *lk, enum bearer_link_state to, const char *why);

/* Login done: state UP, back-off reset, pumping starts. */
void bearer_link_up(struct bearer_link *lk, const char *why);

/*
 * The connection is gone (the link has already closed its socket and stopped
 * its I/O watchers). Parts in flight go back to the head of the held FIFO in
 * their original order; held acks are forgotten (the network redelivers
 * those reports); state DOWN; reconnect after exponential back-off.
 */
void bearer_link_lost(struct bearer_link *lk, const char *why);

/*
 * Start a non-blocking TCP connection to the link's numeric host:port
 * (IPv4 or IPv6; no DNS on the loop), TCP_NODELAY set. On 0, *fd is owned
 * by the caller and the connection completes when it turns writable. On a
 * negative errno, why (cap octets) says what failed and nothing is open.
 */
int bearer_link_tcp_connect(const struct bearer_link *lk, int *fd, char *why, size_t cap);

/* The link can take parts again after ops->send returned -EAGAIN. */
void bearer_link_writable(struct bearer_link *lk);

/* The part in flight under wire_seq, or NULL (unknown / already answered). */
struct bearer_part *bearer_link_inflight_find(struct bearer_link *lk, uint32_t wire_seq);

/* Oldest part in flight (by sent_at), or NULL: for the link's response timer. */
struct bearer_part *bearer_link_inflight_oldest(struct bearer_link *lk);

/* The link resent p: set sent_at to now and move it to the young end. */
void bearer_link_inflight_touch(struct bearer_link *lk, struct bearer_part *p);

enum bearer_resp {
    BEARER_RESP_OK = 0,        /* accepted; msg_id is the network's id */
    BEARER_RESP_THROTTLED = 1, /* flow control: pause the link, resend in order */
    BEARER_RESP_RETRY = 2,     /* temporary failure: resend later, in order */
    BEARER_RESP_FINAL = 3,     /* refused for good */
    BEARER_RESP__COUNT
};

const char *bearer_resp_name(enum bearer_resp r);

/*
 * The response to wire_seq arrived. msg_id (OK only) is any spelling the
 * network uses; the core canonicalises it for the link's kind. code is the
 * network's code (CMPP Result, Kannel nack), reason short text. Returns 0,
 * or -ENOENT when no part is in flight under wire_seq (counted, ignored).
 */
int bearer_link_resp(struct bearer_link *lk, uint32_t wire_seq, enum bearer_resp r,
                     const char *msg_id, int code, const char *reason);

/*
 * A delivery report; ack is what the link would send to acknowledge it
 * (NULL: the link has nothing to hold, a BEARER_ACK_LATER answer then
 * counts as 0). d->msg_id may be any spelling (canonicalised here);
 * link/dest are filled by the link or here. Returns what the link does now:
 *   0                 acknowledge it now;
 *   BEARER_ACK_LATER  the core holds *ack (copied) and hands it to
 *                     ops->send_ack at bearer_release_acks(): send nothing;
 *   negative errno    do not acknowledge (the network redelivers): the
 *                     user refused, the link's held acks are full
 *                     (-ENOBUFS, user not called) or the connection went
 *                     during the callback.
 * A report with an id that cannot be canonicalised is counted as unmatched
 * and acknowledged (returns 0): redelivery cannot help.
 */
int bearer_link_dlr(struct bearer_link *lk, struct bearer_dlr *d, const struct bearer_ack *ack);

/*
 * An MO part; ack as for bearer_link_dlr. The core reassembles concatenated
 * MO (ota_reasm) and calls the user's mo callback for whole messages.
 * Returns 0 when the link should acknowledge the part now: the user took the
 * whole message, or the part is held for reassembly or a duplicate, or it is
 * malformed (counted, dropped). BEARER_ACK_LATER and negative as for
 * bearer_link_dlr (negative: do not acknowledge).
 * Limitation: earlier parts of a set are acknowledged when held in memory.
 */
int bearer_link_mo(struct bearer_link *lk, const struct bearer_mo *m, const struct bearer_ack *ack);

/* The loop, and ev_now() of it, for the link's timers. */
struct ev_loop *bearer_link_loop(const struct bearer_link *lk);

/*
 * Add a link with explicit ops (bearer_add_link() picks them by kind). For
 * tests with an in-memory link kind. Same returns as bearer_add_link().
 */
int bearer_add_link_ops(struct bearer *b, const struct bearer_link_conf *c,
                        const struct bearer_link_ops *ops, struct ota_err *err) OTA_MUST_CHECK;
