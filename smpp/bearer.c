/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bearer core: everything about parts that does not depend on the link
 * kind. It accepts parts from the caller (bearer_submit), keeps them in a
 * pool (no malloc per part once warm), spreads them over links that are up
 * (round robin, but all pending parts of one destination stay on one link
 * and only one of them is on the wire at a time, so order per handset holds
 * through throttling and resends), enforces each link's window and token
 * bucket rate (every part counted, issue #4 "Lessons"), expires parts whose
 * hold time runs out (RETRYABLE), pauses a link on flow control (CMPP Result
 * 8 [cmpp.md §6], Kannel temporary nack) and puts the throttled part back in
 * its original position (enqueue sequence), re-queues in-flight parts when a
 * link drops and reconnects with exponential back-off, reassembles
 * concatenated MO (ota_reasm), canonicalises message ids and runs the link
 * state machine (STYLE §5). Callbacks to the user are made from loop
 * watchers only, never from inside bearer_submit(): sending is deferred to
 * an ev_prepare watcher that runs before the loop next blocks.
 */
#include "smpp/bearer.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ota/ota_udh.h"
#include "smpp/bearer_int.h"
#include "smpp/cmpp.h"

#define BIT(n) (1u << (n))
#define POOL_CHUNK 256           /* parts allocated at once */
#define DHASH_MIN 1024           /* destination hash buckets (power of two) */
#define PICK_SCAN_MAX 256        /* held parts examined per pick (blocked ones skipped) */
#define THROTTLE_MAX_FACTOR 32u  /* pause grows to at most 32 x throttle_pause_ms */
#define THROTTLE_MAX_MS 60000u   /* ... and never above a minute */
#define QUEUE_PER_WINDOW 4       /* parts a link accepts: 4 x window (held + in flight) */
#define REASM_MAX_SETS 1024      /* incomplete MO sets held */
#define REASM_MAX_PARTS 4096     /* MO parts held over all sets */
#define REASM_TIMEOUT_MS 600000u /* incomplete MO set dropped after 10 min */
#define MO_PARK_MAX 256          /* reassembled MO held for a caller that refused them */
#define MO_PARK_RETRY_S 0.5      /* how often they are offered again */
#define ACKS_MIN 64              /* first allocation of a link's held acks */

struct bearer {
    struct ev_loop *loop;
    struct bearer_cbs cbs;
    struct bearer_link **links;
    size_t n_links;
    size_t rr; /* round-robin cursor */

    struct bearer_part *free_parts; /* pool free list (via next) */
    struct bearer_part **chunks;
    size_t n_chunks;

    struct bearer_part **dhash; /* pending parts by destination */
    size_t n_dhash;             /* power of two */
    size_t n_pending;

    uint64_t enq_seq;
    ev_prepare pump_w; /* deferred pumping and ready callback */
    ev_idle kick_w;    /* keeps the loop from blocking when pump_w left work */
    ev_timer hold_timer;
    ev_tstamp hold_at; /* when hold_timer fires, while active */
    bool want_ready;   /* a submit said -EAGAIN since the last ready callback */
    bool room_changed; /* capacity freed since the last ready check */
    bool shut;
    struct ota_reasm *reasm;
    /*
     * Reassembled MO the caller refused for now. Their earlier parts were
     * acknowledged when they were held, so only the bearer still has them:
     * they are offered again, in order, until the caller takes them.
     */
    struct parked_mo *park_head, *park_tail;
    size_t n_parked;
    ev_timer park_timer;
};

/* One reassembled MO waiting for the caller; every pointer owned here. */
struct parked_mo {
    struct parked_mo *next;
    struct bearer_link *lk;
    struct bearer_mo mo;
    char orig[BEARER_ADDR_MAX + 12];
    char dest[BEARER_ADDR_MAX + 12];
    uint8_t *ud;
};

/* ---- name tables ----------------------------------------------------------- */

static const struct bearer_st_desc {
    const char *name;
    uint32_t next; /* mask of allowed next states */
} bearer_st[BEARER_LINK__COUNT] = {
    [BEARER_LINK_DOWN] = {"down", BIT(BEARER_LINK_CONNECTING) | BIT(BEARER_LINK_CLOSING)},
    [BEARER_LINK_CONNECTING] = {"connecting", BIT(BEARER_LINK_BINDING) | BIT(BEARER_LINK_UP) |
                                                  BIT(BEARER_LINK_DOWN) | BIT(BEARER_LINK_CLOSING)},
    [BEARER_LINK_BINDING] = {"binding", BIT(BEARER_LINK_UP) | BIT(BEARER_LINK_DOWN) |
                                            BIT(BEARER_LINK_CLOSING)},
    [BEARER_LINK_UP] = {"up", BIT(BEARER_LINK_THROTTLED) | BIT(BEARER_LINK_DOWN) |
                                  BIT(BEARER_LINK_CLOSING)},
    [BEARER_LINK_THROTTLED] = {"throttled", BIT(BEARER_LINK_UP) | BIT(BEARER_LINK_DOWN) |
                                                BIT(BEARER_LINK_CLOSING)},
    [BEARER_LINK_CLOSING] = {"closing", BIT(BEARER_LINK_DOWN)},
};

const char *bearer_link_state_name(enum bearer_link_state st)
{
    if ((unsigned)st < BEARER_LINK__COUNT) {
        return bearer_st[st].name;
    }
    return "unknown";
}

const char *bearer_submit_status_name(enum bearer_submit_status st)
{
    switch (st) {
    case BEARER_SUBMIT_OK:
        return "ok";
    case BEARER_SUBMIT_RETRYABLE:
        return "retryable";
    case BEARER_SUBMIT_FINAL:
        return "final";
    }
    return "unknown";
}

const char *bearer_dlr_state_name(enum bearer_dlr_state st)
{
    static const char *const names[BEARER_DLR__COUNT] = {
        [BEARER_DLR_DELIVERED] = "delivered", [BEARER_DLR_FAILED] = "failed",
        [BEARER_DLR_EXPIRED] = "expired",     [BEARER_DLR_REJECTED] = "rejected",
        [BEARER_DLR_UNKNOWN] = "unknown",     [BEARER_DLR_ACCEPTED] = "accepted",
    };
    if ((unsigned)st < BEARER_DLR__COUNT) {
        return names[st];
    }
    return "unknown";
}

const char *bearer_resp_name(enum bearer_resp r)
{
    static const char *const names[BEARER_RESP__COUNT] = {
        [BEARER_RESP_OK] = "ok",
        [BEARER_RESP_THROTTLED] = "throttled",
        [BEARER_RESP_RETRY] = "retry",
        [BEARER_RESP_FINAL] = "final",
    };
    if ((unsigned)r < BEARER_RESP__COUNT) {
        return names[r];
    }
    return "unknown";
}

/* ---- configuration ------------------------------------------------------------ */

void bearer_link_conf_defaults(struct bearer_link_conf *c, enum bearer_kind kind)
{
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->window = 16;             /* cmpp.md §6: W = 16 */
    c->rate_per_s = 25;         /* the spec floor; operators raise it */
    c->heartbeat_s = 180;       /* cmpp.md §6: C = 3 min */
    c->resp_timeout_ms = 60000; /* T = 60 s */
    c->resp_retries = 2;        /* N = 3 attempts in total */
    c->reconnect_min_ms = 500;
    c->reconnect_max_ms = 30000;
    c->throttle_pause_ms = 1000;
    c->hold_ms = 600000;
    if (kind == BEARER_KIND_CMPP) {
        c->u.cmpp.version = CMPP_V30;
    } else if (kind == BEARER_KIND_KBOX) {
        c->heartbeat_s = 30;
    }
}

/* ---- part pool ---------------------------------------------------------------- */

static struct bearer_part *part_alloc(struct bearer *b)
{
    if (!b->free_parts) {
        struct bearer_part **chunks = realloc(b->chunks, (b->n_chunks + 1) * sizeof(*chunks));
        if (!chunks) {
            return NULL;
        }
        b->chunks = chunks;
        struct bearer_part *c = calloc(POOL_CHUNK, sizeof(*c));
        if (!c) {
            return NULL;
        }
        b->chunks[b->n_chunks++] = c;
        for (size_t i = 0; i < POOL_CHUNK; i++) {
            c[i].next = b->free_parts;
            b->free_parts = &c[i];
        }
    }
    struct bearer_part *p = b->free_parts;
    b->free_parts = p->next;
    memset(p, 0, sizeof(*p));
    return p;
}

static void part_release(struct bearer *b, struct bearer_part *p)
{
    p->next = b->free_parts;
    b->free_parts = p;
}

/* ---- destination hash: pending parts chained by dest -------------------------- */

static size_t dest_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    return h;
}

static void dhash_link(struct bearer *b, struct bearer_part *p)
{
    size_t i = dest_hash(p->msg.dest) & (b->n_dhash - 1);
    p->dprev = NULL;
    p->dnext = b->dhash[i];
    if (p->dnext) {
        p->dnext->dprev = p;
    }
    b->dhash[i] = p;
}

static void dhash_unlink(struct bearer *b, struct bearer_part *p)
{
    if (p->dprev) {
        p->dprev->dnext = p->dnext;
    } else {
        b->dhash[dest_hash(p->msg.dest) & (b->n_dhash - 1)] = p->dnext;
    }
    if (p->dnext) {
        p->dnext->dprev = p->dprev;
    }
    p->dnext = p->dprev = NULL;
}

/* Grow the table when chains get long; failure only keeps chains longer. */
static void dhash_grow(struct bearer *b)
{
    size_t n = b->n_dhash * 2;
    struct bearer_part **t = calloc(n, sizeof(*t));
    if (!t) {
        return;
    }
    struct bearer_part **old = b->dhash;
    size_t n_old = b->n_dhash;
    b->dhash = t;
    b->n_dhash = n;
    for (size_t i = 0; i < n_old; i++) {
        struct bearer_part *p = old[i];
        while (p) {
            struct bearer_part *nx = p->dnext;
            dhash_link(b, p);
            p = nx;
        }
    }
    free(old);
}

/* Any pending part for dest (all of them are on one link), or NULL. */
static struct bearer_part *dest_pending(const struct bearer *b, const char *dest)
{
    for (struct bearer_part *q = b->dhash[dest_hash(dest) & (b->n_dhash - 1)]; q; q = q->dnext) {
        if (strcmp(q->msg.dest, dest) == 0) {
            return q;
        }
    }
    return NULL;
}

/* True when another part to p's destination is on the wire. */
static bool dest_busy(const struct bearer *b, const struct bearer_part *p)
{
    for (struct bearer_part *q = b->dhash[dest_hash(p->msg.dest) & (b->n_dhash - 1)]; q;
         q = q->dnext) {
        if (q != p && q->in_flight && strcmp(q->msg.dest, p->msg.dest) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- held FIFO ---------------------------------------------------------------- */

static struct bearer_partq *held_q(struct bearer_link *lk, const struct bearer_part *p)
{
    return &lk->held[p->msg.priority];
}

static void held_remove(struct bearer_link *lk, struct bearer_part *p)
{
    struct bearer_partq *q = held_q(lk, p);
    if (p->prev) {
        p->prev->next = p->next;
    } else {
        q->head = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    } else {
        q->tail = p->prev;
    }
    p->next = p->prev = NULL;
    lk->n_held--;
    lk->st.held = (unsigned)lk->n_held;
}

/* Insert in enqueue order: new parts go to the tail, returned ones near the head. */
static void held_insert(struct bearer_link *lk, struct bearer_part *p)
{
    struct bearer_partq *q = held_q(lk, p);
    struct bearer_part *after = q->tail;
    while (after && after->enq_seq > p->enq_seq) {
        after = after->prev;
    }
    p->prev = after;
    p->next = after ? after->next : q->head;
    if (p->next) {
        p->next->prev = p;
    } else {
        q->tail = p;
    }
    if (after) {
        after->next = p;
    } else {
        q->head = p;
    }
    lk->n_held++;
    lk->st.held = (unsigned)lk->n_held;
}

/* ---- in-flight table ------------------------------------------------------------ */

static size_t seq_slot(const struct bearer_inflight *t, uint32_t seq)
{
    return (size_t)(seq * 2654435761u) & (t->n_slots - 1);
}

static void inflight_put(struct bearer_link *lk, struct bearer_part *p)
{
    struct bearer_inflight *t = &lk->inflight;
    size_t i = seq_slot(t, p->wire_seq);
    while (t->slot[i]) {
        i = (i + 1) & (t->n_slots - 1);
    }
    t->slot[i] = p;
    t->n++;
    p->in_flight = true;
    p->prev = t->newest;
    p->next = NULL;
    if (t->newest) {
        t->newest->next = p;
    } else {
        t->oldest = p;
    }
    t->newest = p;
    lk->st.in_flight = (unsigned)t->n;
}

static void age_unlink(struct bearer_inflight *t, struct bearer_part *p)
{
    if (p->prev) {
        p->prev->next = p->next;
    } else {
        t->oldest = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    } else {
        t->newest = p->prev;
    }
    p->next = p->prev = NULL;
}

static void inflight_del(struct bearer_link *lk, struct bearer_part *p)
{
    struct bearer_inflight *t = &lk->inflight;
    size_t mask = t->n_slots - 1;
    size_t i = seq_slot(t, p->wire_seq);
    while (t->slot[i] != p) {
        i = (i + 1) & mask;
    }
    /* Backward-shift deletion keeps probe chains intact without tombstones. */
    t->slot[i] = NULL;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        struct bearer_part *q = t->slot[j];
        if (!q) {
            break;
        }
        size_t home = seq_slot(t, q->wire_seq);
        bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            t->slot[i] = q;
            t->slot[j] = NULL;
            i = j;
        }
    }
    t->n--;
    age_unlink(t, p);
    p->in_flight = false;
    lk->st.in_flight = (unsigned)t->n;
}

struct bearer_part *bearer_link_inflight_find(struct bearer_link *lk, uint32_t wire_seq)
{
    struct bearer_inflight *t = &lk->inflight;
    size_t i = seq_slot(t, wire_seq);
    for (size_t k = 0; k < t->n_slots && t->slot[i]; k++) {
        if (t->slot[i]->wire_seq == wire_seq) {
            return t->slot[i];
        }
        i = (i + 1) & (t->n_slots - 1);
    }
    return NULL;
}

struct bearer_part *bearer_link_inflight_oldest(struct bearer_link *lk)
{
    return lk->inflight.oldest;
}

void bearer_link_inflight_touch(struct bearer_link *lk, struct bearer_part *p)
{
    struct bearer_inflight *t = &lk->inflight;
    p->sent_at = ev_now(lk->b->loop);
    if (t->newest == p) {
        return;
    }
    age_unlink(t, p);
    p->prev = t->newest;
    t->newest->next = p;
    t->newest = p;
}

/* ---- scheduling ---------------------------------------------------------------- */

static void want_pump(struct bearer_link *lk)
{
    lk->pump_wanted = true;
    ev_prepare_start(lk->b->loop, &lk->b->pump_w);
}

static void capacity_freed(struct bearer *b)
{
    b->room_changed = true;
    if (b->want_ready) {
        ev_prepare_start(b->loop, &b->pump_w);
    }
}

static void hold_arm(struct bearer *b, ev_tstamp deadline)
{
    if (b->shut) {
        return;
    }
    if (ev_is_active(&b->hold_timer) && b->hold_at <= deadline) {
        return;
    }
    ev_timer_stop(b->loop, &b->hold_timer);
    ev_tstamp now = ev_now(b->loop);
    ev_timer_set(&b->hold_timer, deadline > now ? deadline - now : 0., 0.);
    b->hold_at = deadline;
    ev_timer_start(b->loop, &b->hold_timer);
}

static size_t link_load(const struct bearer_link *lk)
{
    return lk->n_held + lk->inflight.n;
}

static bool link_takes(const struct bearer_link *lk)
{
    return lk->state == BEARER_LINK_UP || lk->state == BEARER_LINK_THROTTLED;
}

size_t bearer_room(const struct bearer *b)
{
    size_t room = 0;
    if (!b || b->shut) {
        return 0;
    }
    for (size_t i = 0; i < b->n_links; i++) {
        const struct bearer_link *lk = b->links[i];
        if (link_takes(lk) && link_load(lk) < lk->queue_max) {
            room += lk->queue_max - link_load(lk);
        }
    }
    return room;
}

/* ---- results -------------------------------------------------------------------- */

/* Report p's one and only result and return it to the pool. p is held nowhere. */
static void part_finish(struct bearer_link *lk, struct bearer_part *p,
                        enum bearer_submit_status status, const char *msg_id, int code,
                        const char *reason)
{
    struct bearer *b = lk->b;
    struct bearer_submit_result r = {
        .token = p->msg.token,
        .status = status,
        .code = code,
        .reason = reason ? reason : "",
        .link = lk->conf.name,
        .attempts = p->attempts,
    };
    if (msg_id) {
        snprintf(r.msg_id, sizeof(r.msg_id), "%s", msg_id);
    }
    dhash_unlink(b, p);
    b->n_pending--;
    part_release(b, p);
    capacity_freed(b);
    b->cbs.submit_result(b->cbs.arg, &r);
}

static void expire_held(struct bearer *b, ev_tstamp now, ev_tstamp *next)
{
    for (size_t i = 0; i < b->n_links; i++) {
        struct bearer_link *lk = b->links[i];
        for (int pr = 0; pr < BEARER_PRIO_LEVELS; pr++) {
            struct bearer_part *p = lk->held[pr].head;
            while (p) {
                struct bearer_part *nx = p->next;
                if (p->deadline <= now) {
                    held_remove(lk, p);
                    part_finish(lk, p, BEARER_SUBMIT_RETRYABLE, NULL, -ETIMEDOUT,
                                "hold time expired");
                    /* the callback may have submitted: restart this queue */
                    nx = lk->held[pr].head;
                } else if (*next == 0 || p->deadline < *next) {
                    *next = p->deadline;
                }
                p = nx;
            }
        }
    }
}

static void hold_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct bearer *b = (struct bearer *)((char *)w - offsetof(struct bearer, hold_timer));
    ev_tstamp next = 0;
    expire_held(b, ev_now(b->loop), &next);
    if (next > 0) {
        hold_arm(b, next);
    }
}

/* ---- state machine ---------------------------------------------------------------- */

int bearer_link_set_state(struct bearer_link *lk, enum bearer_link_state to, const char *why)
{
    enum bearer_link_state from = lk->state;
    if (from == to) {
        return 0;
    }
    if ((unsigned)to >= BEARER_LINK__COUNT || !(bearer_st[from].next & BIT(to))) {
        return -EINVAL;
    }
    lk->state = to;
    lk->st.state = to;
    struct bearer *b = lk->b;
    if (link_takes(lk)) {
        capacity_freed(b);
    }
    if (b->cbs.link_state) {
        b->cbs.link_state(b->cbs.arg, lk->conf.name, from, to, why ? why : "");
    }
    return 0;
}

static void link_connect(struct bearer_link *lk)
{
    if (lk->closing || lk->b->shut) {
        return;
    }
    (void)bearer_link_set_state(lk, BEARER_LINK_CONNECTING, "connect");
    lk->ops->connect(lk);
}

static void reconnect_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct bearer_link *lk =
        (struct bearer_link *)((char *)w - offsetof(struct bearer_link, reconnect_timer));
    lk->st.reconnects++;
    link_connect(lk);
}

static void throttle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct bearer_link *lk =
        (struct bearer_link *)((char *)w - offsetof(struct bearer_link, throttle_timer));
    if (lk->state == BEARER_LINK_THROTTLED) {
        (void)bearer_link_set_state(lk, BEARER_LINK_UP, "throttle pause over");
        want_pump(lk);
    }
}

static void rate_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct bearer_link *lk =
        (struct bearer_link *)((char *)w - offsetof(struct bearer_link, rate_timer));
    want_pump(lk);
}

void bearer_link_up(struct bearer_link *lk, const char *why)
{
    if (bearer_link_set_state(lk, BEARER_LINK_UP, why ? why : "logged in") < 0) {
        return;
    }
    lk->backoff_ms = lk->conf.reconnect_min_ms;
    lk->throttle_ms = lk->conf.throttle_pause_ms;
    lk->tokens = 1.0;
    lk->tokens_at = ev_now(lk->b->loop);
    want_pump(lk);
}

/* Put every in-flight part back into the held FIFO, in its original place. */
static void requeue_inflight(struct bearer_link *lk)
{
    struct bearer_part *p;
    while ((p = lk->inflight.oldest) != NULL) {
        inflight_del(lk, p);
        held_insert(lk, p);
        hold_arm(lk->b, p->deadline);
    }
}

/* Held acks die with their connection: never sent, the network redelivers. */
static void acks_forget(struct bearer_link *lk)
{
    lk->n_acks = 0;
    lk->conn_gen++;
}

void bearer_link_lost(struct bearer_link *lk, const char *why)
{
    struct bearer *b = lk->b;
    acks_forget(lk);
    requeue_inflight(lk);
    ev_timer_stop(b->loop, &lk->throttle_timer);
    ev_timer_stop(b->loop, &lk->rate_timer);
    lk->pump_wanted = false;
    (void)bearer_link_set_state(lk, BEARER_LINK_DOWN, why ? why : "connection lost");
    if (lk->closing || b->shut) {
        return;
    }
    ev_timer_stop(b->loop, &lk->reconnect_timer);
    ev_timer_set(&lk->reconnect_timer, lk->backoff_ms / 1000.0, 0.);
    ev_timer_start(b->loop, &lk->reconnect_timer);
    unsigned next = lk->backoff_ms * 2;
    lk->backoff_ms = next > lk->conf.reconnect_max_ms ? lk->conf.reconnect_max_ms : next;
}

void bearer_link_writable(struct bearer_link *lk)
{
    want_pump(lk);
}

struct ev_loop *bearer_link_loop(const struct bearer_link *lk)
{
    return lk->b->loop;
}

/* ---- pumping ---------------------------------------------------------------------- */

/* Next held part that may go on the wire: most urgent first, oldest first. */
static struct bearer_part *pick(struct bearer_link *lk)
{
    size_t budget = PICK_SCAN_MAX;
    for (int pr = BEARER_PRIO_LEVELS - 1; pr >= 0; pr--) {
        for (struct bearer_part *p = lk->held[pr].head; p && budget; p = p->next, budget--) {
            if (!dest_busy(lk->b, p)) {
                return p;
            }
        }
    }
    return NULL;
}

/* Refill the token bucket; true when a part may go now. */
static bool rate_ok(struct bearer_link *lk)
{
    double rate = lk->conf.rate_per_s;
    if (rate <= 0) {
        return true;
    }
    ev_tstamp now = ev_now(lk->b->loop);
    double burst = rate / 20.0 < 1.0 ? 1.0 : rate / 20.0; /* 50 ms worth */
    lk->tokens += (now - lk->tokens_at) * rate;
    lk->tokens_at = now;
    if (lk->tokens > burst) {
        lk->tokens = burst;
    }
    if (lk->tokens >= 1.0) {
        return true;
    }
    if (!ev_is_active(&lk->rate_timer)) {
        ev_timer_set(&lk->rate_timer, (1.0 - lk->tokens) / rate, 0.);
        ev_timer_start(lk->b->loop, &lk->rate_timer);
    }
    return false;
}

static void pump(struct bearer_link *lk)
{
    struct bearer *b = lk->b;
    lk->pump_wanted = false;
    while (lk->state == BEARER_LINK_UP && lk->inflight.n < lk->conf.window && lk->n_held > 0) {
        struct bearer_part *p = pick(lk);
        if (!p || !rate_ok(lk)) {
            return;
        }
        struct ota_err e;
        uint32_t seq = 0;
        ota_err_clear(&e);
        int rc = lk->ops->send(lk, p, &seq, &e);
        if (rc == -EAGAIN) {
            return; /* the link calls bearer_link_writable() */
        }
        held_remove(lk, p);
        if (rc < 0) {
            lk->st.rejected++;
            part_finish(lk, p, BEARER_SUBMIT_FINAL, NULL, rc, e.msg[0] ? e.msg : "not sendable");
            continue;
        }
        if (lk->conf.rate_per_s > 0) {
            lk->tokens -= 1.0; /* every part counts (issue #4 "Lessons") */
        }
        p->wire_seq = seq;
        p->attempts++;
        p->wire_tries = 0;
        p->sent_at = ev_now(b->loop);
        if (p->attempts > 1) {
            lk->st.resent++;
        }
        lk->st.submitted++;
        inflight_put(lk, p);
    }
}

static void pump_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    struct bearer *b = (struct bearer *)((char *)w - offsetof(struct bearer, pump_w));
    for (size_t i = 0; i < b->n_links; i++) {
        if (b->links[i]->pump_wanted) {
            pump(b->links[i]);
        }
    }
    if (b->want_ready && b->room_changed && bearer_room(b) > 0) {
        b->want_ready = false;
        b->room_changed = false;
        if (b->cbs.ready) {
            b->cbs.ready(b->cbs.arg); /* may submit: pumped on the next pass */
        }
    }
    bool again = b->want_ready && b->room_changed;
    for (size_t i = 0; i < b->n_links && !again; i++) {
        again = b->links[i]->pump_wanted;
    }
    if (again) {
        /*
         * A callback above submitted or freed room: libev does not run
         * prepare watchers twice before blocking, so make the loop spin once
         * more instead of sleeping with parts held.
         */
        ev_idle_start(b->loop, &b->kick_w);
    } else {
        ev_prepare_stop(b->loop, &b->pump_w);
    }
}

static void kick_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w);
}

/* ---- link reports ------------------------------------------------------------------- */

static void throttle_pause(struct bearer_link *lk)
{
    struct bearer *b = lk->b;
    if (lk->state != BEARER_LINK_UP) {
        return; /* already paused, or down: the part is held either way */
    }
    (void)bearer_link_set_state(lk, BEARER_LINK_THROTTLED, "flow control");
    ev_timer_stop(b->loop, &lk->throttle_timer);
    ev_timer_set(&lk->throttle_timer, lk->throttle_ms / 1000.0, 0.);
    ev_timer_start(b->loop, &lk->throttle_timer);
    unsigned cap = lk->conf.throttle_pause_ms * THROTTLE_MAX_FACTOR;
    if (cap > THROTTLE_MAX_MS) {
        cap = THROTTLE_MAX_MS;
    }
    unsigned next = lk->throttle_ms * 2;
    lk->throttle_ms = next > cap ? cap : next;
    if (lk->throttle_ms < lk->conf.throttle_pause_ms) {
        lk->throttle_ms = lk->conf.throttle_pause_ms;
    }
}

int bearer_link_resp(struct bearer_link *lk, uint32_t wire_seq, enum bearer_resp r,
                     const char *msg_id, int code, const char *reason)
{
    struct bearer_part *p = bearer_link_inflight_find(lk, wire_seq);
    if (!p) {
        return -ENOENT;
    }
    inflight_del(lk, p);
    want_pump(lk);
    switch (r) {
    case BEARER_RESP_OK: {
        char canon[BEARER_MSGID_MAX];
        struct ota_err e;
        if (!msg_id || bearer_msgid_canon(lk->conf.kind, msg_id, canon, &e) < 0) {
            /* accepted, but no id we can match a report with: still accepted */
            canon[0] = '\0';
        }
        lk->st.accepted++;
        lk->throttle_ms = lk->conf.throttle_pause_ms;
        part_finish(lk, p, BEARER_SUBMIT_OK, canon, code, reason ? reason : "accepted");
        return 0;
    }
    case BEARER_RESP_THROTTLED:
    case BEARER_RESP_RETRY:
        lk->st.throttled++;
        held_insert(lk, p);
        hold_arm(lk->b, p->deadline);
        throttle_pause(lk);
        return 0;
    case BEARER_RESP_FINAL:
    case BEARER_RESP__COUNT:
        break;
    }
    lk->st.rejected++;
    part_finish(lk, p, BEARER_SUBMIT_FINAL, NULL, code, reason ? reason : "refused");
    return 0;
}

/* ---- held acknowledgements ------------------------------------------------------ */

/* Room for one more held ack on lk: 0, -ENOBUFS (BEARER_HELD_ACKS_MAX) or -ENOMEM. */
static int ack_reserve(struct bearer_link *lk)
{
    if (lk->n_acks < lk->acks_cap) {
        return 0;
    }
    if (lk->n_acks >= BEARER_HELD_ACKS_MAX) {
        return -ENOBUFS;
    }
    size_t cap = lk->acks_cap ? lk->acks_cap * 2 : ACKS_MIN;
    if (cap > BEARER_HELD_ACKS_MAX) {
        cap = BEARER_HELD_ACKS_MAX;
    }
    struct bearer_ack *v = realloc(lk->acks, cap * sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    lk->acks = v;
    lk->acks_cap = cap;
    return 0;
}

/*
 * Before a report reaches the user: refuse it when its ack could not be held
 * afterwards, so a report is never taken that the link can neither ack now
 * nor hold. Returns 0 or the negative errno for the link.
 */
static int ack_precheck(struct bearer_link *lk, const struct bearer_ack *ack)
{
    if (!ack) {
        return 0;
    }
    int rc = ack_reserve(lk);
    if (rc < 0) {
        lk->acks_refused++;
    }
    return rc;
}

/*
 * Turn the user's answer urc into the link's: hold ack for BEARER_ACK_LATER.
 * gen is lk->conn_gen from before the callback: if the connection went
 * meanwhile (the callback shut the bearer down or a drop was reported), the
 * ack belonged to it and is not held.
 */
static int ack_answer(struct bearer_link *lk, const struct bearer_ack *ack, int urc, uint64_t gen)
{
    if (urc <= 0) {
        return urc;
    }
    if (!ack) {
        return 0; /* nothing owed to the network: taken is taken */
    }
    if (lk->b->shut || lk->conn_gen != gen) {
        return -ENOTCONN;
    }
    if (ack_reserve(lk) < 0) {
        lk->acks_refused++; /* room vanished in the callback (no memory): redelivered */
        return -ENOBUFS;
    }
    lk->acks[lk->n_acks++] = *ack;
    return BEARER_ACK_LATER;
}

/* Send lk's held acks in arrival order; stop if the connection drops on the way. */
static void link_release_acks(struct bearer_link *lk)
{
    if (lk->n_acks == 0) {
        return;
    }
    /*
     * Detach the list first: send_ack may drop the connection, and the
     * link_state callback that follows may call back into the bearer.
     */
    struct bearer_ack *v = lk->acks;
    size_t n = lk->n_acks, cap = lk->acks_cap;
    uint64_t gen = lk->conn_gen;
    lk->acks = NULL;
    lk->n_acks = lk->acks_cap = 0;
    for (size_t i = 0; i < n && lk->ops->send_ack && lk->conn_gen == gen && !lk->b->shut; i++) {
        lk->ops->send_ack(lk, &v[i]);
    }
    if (!lk->acks) {
        lk->acks = v; /* keep the memory: a busy link holds again soon */
        lk->acks_cap = cap;
    } else {
        free(v);
    }
}

void bearer_release_acks(struct bearer *b)
{
    if (!b) {
        return;
    }
    for (size_t i = 0; i < b->n_links; i++) {
        link_release_acks(b->links[i]);
    }
}

void bearer_discard_acks(struct bearer *b)
{
    if (!b) {
        return;
    }
    for (size_t i = 0; i < b->n_links; i++) {
        b->links[i]->n_acks = 0;
    }
}

size_t bearer_held_acks(const struct bearer *b)
{
    size_t n = 0;
    for (size_t i = 0; b && i < b->n_links; i++) {
        n += b->links[i]->n_acks;
    }
    return n;
}

uint64_t bearer_acks_refused(const struct bearer *b)
{
    uint64_t n = 0;
    for (size_t i = 0; b && i < b->n_links; i++) {
        n += b->links[i]->acks_refused;
    }
    return n;
}

/* ---- reports ------------------------------------------------------------------------ */

int bearer_link_dlr(struct bearer_link *lk, struct bearer_dlr *d, const struct bearer_ack *ack)
{
    struct bearer *b = lk->b;
    char canon[BEARER_MSGID_MAX];
    struct ota_err e;
    if (bearer_msgid_canon(lk->conf.kind, d->msg_id, canon, &e) < 0) {
        lk->st.dlrs_unmatched++;
        return 0;
    }
    int rc = ack_precheck(lk, ack);
    if (rc < 0) {
        return rc;
    }
    memcpy(d->msg_id, canon, sizeof(canon));
    if (!d->link) {
        d->link = lk->conf.name;
    }
    if (!d->dest) {
        d->dest = "";
    }
    lk->st.dlrs++;
    if (!b->cbs.dlr) {
        return 0;
    }
    uint64_t gen = lk->conn_gen;
    return ack_answer(lk, ack, b->cbs.dlr(b->cbs.arg, d), gen);
}

int bearer_link_tcp_connect(const struct bearer_link *lk, int *fd, char *why, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, lk->conf.host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(lk->conf.port);
        sl = sizeof(*s4);
    } else if (inet_pton(AF_INET6, lk->conf.host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(lk->conf.port);
        sl = sizeof(*s6);
    } else {
        snprintf(why, cap, "host %s is not a numeric address", lk->conf.host);
        return -EINVAL;
    }
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) {
        int rc = -errno;
        snprintf(why, cap, "socket: %s", strerror(errno));
        return rc;
    }
    int one = 1;
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(s, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
        int rc = -errno;
        snprintf(why, cap, "connect to %s:%u: %s", lk->conf.host, lk->conf.port, strerror(errno));
        close(s);
        return rc;
    }
    *fd = s;
    return 0;
}

static void park_free(struct parked_mo *p)
{
    if (p) {
        free(p->ud);
        free(p);
    }
}

/* Copy a refused, reassembled MO into the park. 0, or -ENOBUFS / -ENOMEM. */
static int park_mo(struct bearer_link *lk, const struct bearer_mo *m)
{
    struct bearer *b = lk->b;
    if (b->shut || b->n_parked >= MO_PARK_MAX) {
        return -ENOBUFS;
    }
    struct parked_mo *p = calloc(1, sizeof(*p));
    if (!p || !(p->ud = malloc(m->ud_len ? m->ud_len : 1))) {
        free(p);
        return -ENOMEM;
    }
    p->lk = lk;
    p->mo = *m;
    snprintf(p->orig, sizeof(p->orig), "%s", m->orig ? m->orig : "");
    snprintf(p->dest, sizeof(p->dest), "%s", m->dest ? m->dest : "");
    memcpy(p->ud, m->ud, m->ud_len);
    p->mo.orig = p->orig;
    p->mo.dest = p->dest;
    p->mo.ud = p->ud;
    if (b->park_tail) {
        b->park_tail->next = p;
    } else {
        b->park_head = p;
    }
    b->park_tail = p;
    b->n_parked++;
    if (!ev_is_active(&b->park_timer)) {
        ev_timer_set(&b->park_timer, MO_PARK_RETRY_S, MO_PARK_RETRY_S);
        ev_timer_start(b->loop, &b->park_timer);
    }
    return 0;
}

/*
 * Offer parked MO again, oldest first; stop at the first refusal (order kept).
 * BEARER_ACK_LATER counts as taken: the network got its ack when the message
 * was parked, there is nothing left to hold.
 */
static void park_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct bearer *b = w->data;
    while (b->park_head) {
        struct parked_mo *p = b->park_head;
        p->mo.link = p->lk->conf.name;
        if (b->cbs.mo && b->cbs.mo(b->cbs.arg, &p->mo) < 0) {
            return;
        }
        b->park_head = p->next;
        if (!b->park_head) {
            b->park_tail = NULL;
        }
        b->n_parked--;
        park_free(p);
    }
    ev_timer_stop(loop, &b->park_timer);
}

int bearer_link_mo(struct bearer_link *lk, const struct bearer_mo *m, const struct bearer_ack *ack)
{
    struct bearer *b = lk->b;
    uint64_t now_ms = (uint64_t)(ev_now(b->loop) * 1000.0);
    enum ota_reasm_status st = OTA_REASM_PENDING;
    struct ota_reasm_msg msg;
    struct ota_err e;

    /* Before reassembly: a refused part leaves the set as it was. */
    int prc = ack_precheck(lk, ack);
    if (prc < 0) {
        return prc;
    }

    (void)ota_reasm_expire(b->reasm, now_ms, NULL, NULL);
    const char *orig = m->orig ? m->orig : "";
    int rc = ota_reasm_add(b->reasm, orig, m->ud, m->ud_len, m->udhi, now_ms, &st, &msg, &e);
    if (rc < 0) {
        if (rc == -ENOBUFS || rc == -ENOMEM) {
            return rc; /* not acknowledged: the network offers it again later */
        }
        lk->st.bad_pdus++; /* malformed MO: counted, acknowledged and dropped */
        return 0;
    }
    if (st == OTA_REASM_PENDING || st == OTA_REASM_DUPLICATE) {
        return 0;
    }
    lk->st.mos++;
    struct bearer_mo whole = *m;
    whole.orig = orig;
    whole.ud = msg.ud;
    whole.ud_len = msg.ud_len;
    whole.udhi = msg.udhi;
    whole.link = lk->conf.name;
    uint64_t gen = lk->conn_gen;
    int urc = b->cbs.mo ? b->cbs.mo(b->cbs.arg, &whole) : 0;
    if (urc < 0 && msg.n_parts > 1) {
        /*
         * The other parts are acknowledged already: refusing this one would
         * have the network resend only it, and the message would be lost.
         * Keep the whole message instead and offer it again.
         */
        if (park_mo(lk, &whole) == 0) {
            urc = 0;
        } else {
            lk->st.mos_lost++;
        }
    }
    ota_reasm_msg_fini(&msg);
    return ack_answer(lk, ack, urc, gen);
}

/* ---- public API ---------------------------------------------------------------------- */

int bearer_new(struct ev_loop *loop, const struct bearer_cbs *cbs, struct bearer **out,
               struct ota_err *err)
{
    if (!loop || !cbs || !cbs->submit_result || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "bearer_new: loop and submit_result needed");
    }
    struct bearer *b = calloc(1, sizeof(*b));
    if (!b) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "bearer_new: out of memory");
    }
    b->loop = loop;
    b->cbs = *cbs;
    b->n_dhash = DHASH_MIN;
    b->dhash = calloc(b->n_dhash, sizeof(*b->dhash));
    struct ota_reasm_limits lim = {
        .max_sets = REASM_MAX_SETS, .max_parts = REASM_MAX_PARTS, .timeout_ms = REASM_TIMEOUT_MS};
    int rc = -ENOMEM;
    if (!b->dhash || (rc = ota_reasm_new(&b->reasm, &lim, err)) < 0) {
        free(b->dhash);
        free(b);
        return ota_fail(err, rc, OTA_ERR_ARG, "bearer_new: out of memory");
    }
    ev_prepare_init(&b->pump_w, pump_cb);
    ev_idle_init(&b->kick_w, kick_cb);
    ev_timer_init(&b->hold_timer, hold_cb, 0., 0.);
    ev_timer_init(&b->park_timer, park_cb, MO_PARK_RETRY_S, MO_PARK_RETRY_S);
    b->park_timer.data = b;
    *out = b;
    return 0;
}

static bool valid_host(const char *h)
{
    if (!h[0]) {
        return false;
    }
    for (; *h; h++) {
        if (!isxdigit((unsigned char)*h) && *h != '.' && *h != ':') {
            return false;
        }
    }
    return true;
}

int bearer_add_link_ops(struct bearer *b, const struct bearer_link_conf *c,
                        const struct bearer_link_ops *ops, struct ota_err *err)
{
    if (!b || !c || !ops || b->shut) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "bearer_add_link: bad argument");
    }
    if (!c->name[0] || !memchr(c->name, '\0', sizeof(c->name))) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "bearer_add_link: link name empty or long");
    }
    for (size_t i = 0; i < b->n_links; i++) {
        if (strcmp(b->links[i]->conf.name, c->name) == 0) {
            return ota_fail(err, -EINVAL, OTA_ERR_ARG, "bearer_add_link: duplicate link %s",
                            c->name);
        }
    }
    if (!memchr(c->host, '\0', sizeof(c->host)) || !valid_host(c->host) || c->port == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "link=%s: host must be numeric, port > 0",
                        c->name);
    }
    if (c->window == 0 || c->window > 4096 || c->rate_per_s < 0 || c->reconnect_min_ms == 0 ||
        c->reconnect_max_ms < c->reconnect_min_ms || c->throttle_pause_ms == 0 || c->hold_ms == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "link=%s: window 1..4096, back-off, pause and hold must be > 0", c->name);
    }
    struct bearer_link **links = realloc(b->links, (b->n_links + 1) * sizeof(*links));
    if (!links) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "link=%s: out of memory", c->name);
    }
    b->links = links;
    struct bearer_link *lk = calloc(1, sizeof(*lk));
    if (!lk) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "link=%s: out of memory", c->name);
    }
    lk->b = b;
    lk->ops = ops;
    lk->conf = *c;
    lk->state = BEARER_LINK_DOWN;
    lk->st.state = BEARER_LINK_DOWN;
    lk->queue_max = (size_t)c->window * QUEUE_PER_WINDOW;
    lk->backoff_ms = c->reconnect_min_ms;
    lk->throttle_ms = c->throttle_pause_ms;
    size_t n = 16;
    while (n < 2 * (size_t)c->window) {
        n *= 2;
    }
    lk->inflight.n_slots = n;
    lk->inflight.slot = calloc(n, sizeof(*lk->inflight.slot));
    if (!lk->inflight.slot) {
        free(lk);
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "link=%s: out of memory", c->name);
    }
    int rc = ops->init(lk, err);
    if (rc < 0) {
        free(lk->inflight.slot);
        free(lk);
        return rc;
    }
    ev_timer_init(&lk->rate_timer, rate_cb, 0., 0.);
    ev_timer_init(&lk->reconnect_timer, reconnect_cb, 0., 0.);
    ev_timer_init(&lk->throttle_timer, throttle_cb, 0., 0.);
    lk->index = b->n_links;
    b->links[b->n_links++] = lk;
    link_connect(lk);
    return 0;
}

int bearer_add_link(struct bearer *b, const struct bearer_link_conf *c, struct ota_err *err)
{
    if (!c) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "bearer_add_link: no conf");
    }
    switch (c->kind) {
    case BEARER_KIND_CMPP:
        return bearer_add_link_ops(b, c, &bearer_cmpp_ops, err);
    case BEARER_KIND_KBOX:
        return bearer_add_link_ops(b, c, &bearer_kbox_ops, err);
    }
    return ota_fail(err, -EINVAL, OTA_ERR_ARG, "bearer_add_link: unknown kind %d", (int)c->kind);
}

static bool valid_digits(const char *s, size_t cap, bool empty_ok)
{
    const char *end = memchr(s, '\0', cap);
    if (!end || (end == s && !empty_ok)) {
        return false;
    }
    for (; s < end; s++) {
        if (!isdigit((unsigned char)*s)) {
            return false;
        }
    }
    return true;
}

/* The link for a new part: its destination's link if any, else round robin. */
static struct bearer_link *choose_link(struct bearer *b, const char *dest)
{
    struct bearer_part *q = dest_pending(b, dest);
    if (q) {
        struct bearer_link *lk = q->link;
        return link_load(lk) < lk->queue_max ? lk : NULL;
    }
    for (size_t k = 0; k < b->n_links; k++) {
        struct bearer_link *lk = b->links[(b->rr + k) % b->n_links];
        if (link_takes(lk) && link_load(lk) < lk->queue_max) {
            b->rr = (b->rr + k + 1) % b->n_links;
            return lk;
        }
    }
    return NULL;
}

int bearer_submit(struct bearer *b, const struct bearer_msg *m, struct ota_err *err)
{
    if (!b || !m) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "bearer_submit: NULL argument");
    }
    if (!valid_digits(m->dest, sizeof(m->dest), false) ||
        !valid_digits(m->src, sizeof(m->src), true)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "bearer_submit: dest/src must be digits");
    }
    if (m->ud_len > BEARER_UD_MAX || m->n_parts == 0 || m->part == 0 || m->part > m->n_parts ||
        m->priority >= BEARER_PRIO_LEVELS) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "bearer_submit: ud_len %u, part %u/%u, priority %u out of range", m->ud_len,
                        m->part, m->n_parts, m->priority);
    }
    if (b->shut) {
        return ota_fail(err, -ESHUTDOWN, OTA_ERR_STATE, "bearer_submit: bearer shut down");
    }
    struct bearer_link *lk = choose_link(b, m->dest);
    if (!lk) {
        b->want_ready = true;
        b->room_changed = false;
        return ota_fail(err, -EAGAIN, OTA_ERR_LIMIT, "bearer_submit: no link has room");
    }
    struct bearer_part *p = part_alloc(b);
    if (!p) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "bearer_submit: out of memory");
    }
    p->msg = *m;
    p->enq_seq = ++b->enq_seq;
    p->link = lk;
    p->deadline = ev_now(b->loop) + (m->hold_ms ? m->hold_ms : lk->conf.hold_ms) / 1000.0;
    dhash_link(b, p);
    if (++b->n_pending > 2 * b->n_dhash) {
        dhash_grow(b);
    }
    held_insert(lk, p);
    hold_arm(b, p->deadline);
    want_pump(lk);
    return 0;
}

bool bearer_link_stats(const struct bearer *b, size_t i, const char **name,
                       struct bearer_link_stats *st)
{
    if (!b || i >= b->n_links) {
        return false;
    }
    if (name) {
        *name = b->links[i]->conf.name;
    }
    if (st) {
        *st = b->links[i]->st;
    }
    return true;
}

static void fail_all(struct bearer_link *lk)
{
    requeue_inflight(lk);
    for (int pr = BEARER_PRIO_LEVELS - 1; pr >= 0; pr--) {
        struct bearer_part *p;
        while ((p = lk->held[pr].head) != NULL) {
            held_remove(lk, p);
            part_finish(lk, p, BEARER_SUBMIT_RETRYABLE, NULL, -ESHUTDOWN, "bearer shut down");
        }
    }
}

void bearer_shutdown(struct bearer *b)
{
    if (!b || b->shut) {
        return;
    }
    /* Parked MO get one last offer; what is still refused is counted lost. */
    park_cb(b->loop, &b->park_timer, 0);
    while (b->park_head) {
        struct parked_mo *p = b->park_head;
        b->park_head = p->next;
        p->lk->st.mos_lost++;
        park_free(p);
    }
    b->park_tail = NULL;
    b->n_parked = 0;
    ev_timer_stop(b->loop, &b->park_timer);
    b->shut = true;
    ev_prepare_stop(b->loop, &b->pump_w);
    ev_idle_stop(b->loop, &b->kick_w);
    ev_timer_stop(b->loop, &b->hold_timer);
    for (size_t i = 0; i < b->n_links; i++) {
        struct bearer_link *lk = b->links[i];
        lk->closing = true;
        acks_forget(lk); /* never flushed by close(): the caller released what it committed */
        ev_timer_stop(b->loop, &lk->reconnect_timer);
        ev_timer_stop(b->loop, &lk->throttle_timer);
        ev_timer_stop(b->loop, &lk->rate_timer);
        if (lk->state != BEARER_LINK_DOWN) {
            (void)bearer_link_set_state(lk, BEARER_LINK_CLOSING, "shutdown");
        }
        lk->ops->close(lk);
        (void)bearer_link_set_state(lk, BEARER_LINK_DOWN, "shutdown");
    }
    for (size_t i = 0; i < b->n_links; i++) {
        fail_all(b->links[i]);
    }
    ev_prepare_stop(b->loop, &b->pump_w);
    ev_idle_stop(b->loop, &b->kick_w);
    ev_timer_stop(b->loop, &b->hold_timer);
}

void bearer_free(struct bearer *b)
{
    if (!b) {
        return;
    }
    bearer_shutdown(b);
    for (size_t i = 0; i < b->n_links; i++) {
        struct bearer_link *lk = b->links[i];
        lk->ops->free(lk);
        free(lk->acks);
        free(lk->inflight.slot);
        free(lk);
    }
    for (size_t i = 0; i < b->n_chunks; i++) {
        free(b->chunks[i]);
    }
    free(b->chunks);
    free(b->links);
    free(b->dhash);
    ota_reasm_free(b->reasm);
    free(b);
}

/* ---- message ids ----------------------------------------------------------------------- */

/*
 * CMPP: any spelling of the 64-bit Msg_Id (hex, decimal, 0x, any case) ->
 * its 16 lowercase hex digits (cmpp_msgid_normalize, AUTO rule).
 * KBOX: Kannel hands back the SMSC's own id text (submit_sm_resp message_id,
 * receipt id:). It is lower-cased, and when it is a plain hex/decimal number
 * its leading zeros are dropped (one kept), so "000A1B" and "a1b" match.
 * Hex and decimal spellings of one number cannot be told apart without the
 * SMSC's convention (Kannel's msg-id-type); the simulator uses one spelling.
 */
int bearer_msgid_canon(enum bearer_kind kind, const char *in, char out[BEARER_MSGID_MAX],
                       struct ota_err *err)
{
    if (!in || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "msgid: NULL");
    }
    size_t len = strnlen(in, BEARER_MSGID_MAX);
    if (len == 0 || len >= BEARER_MSGID_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "msgid: empty or longer than %d",
                        BEARER_MSGID_MAX - 1);
    }
    if (kind == BEARER_KIND_CMPP) {
        char c[CMPP_MSGID_TEXT_SIZE];
        int rc = cmpp_msgid_normalize(in, len, CMPP_MSGID_AUTO, c, err);
        if (rc < 0) {
            return rc;
        }
        memcpy(out, c, sizeof(c));
        return 0;
    }
    if (kind != BEARER_KIND_KBOX) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "msgid: unknown bearer kind %d", (int)kind);
    }
    bool numeric = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (!isgraph(ch)) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "msgid: bad character at %zu", i);
        }
        numeric = numeric && isxdigit(ch);
    }
    size_t skip = 0;
    if (numeric) {
        while (skip + 1 < len && in[skip] == '0') {
            skip++;
        }
    }
    for (size_t i = skip; i < len; i++) {
        out[i - skip] = (char)tolower((unsigned char)in[i]);
    }
    out[len - skip] = '\0';
    return 0;
}
