/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbound queue shared by the ISMG and SMSC roles: the reports (receipts)
 * and MOs the simulator sends to the peer and awaits an answer for. An item
 * is LATE (held by dlr_late_ms) -> QUEUED (server FIFO) -> INFLIGHT (on one
 * connection, within its window) and is freed on the answer or after the
 * last unanswered send (resent with the same sequence number on timeout); a
 * connection that closes hands its in-flight ones back to the front of the
 * queue, so a link drop loses nothing the peer did not answer. Only the
 * protocol-independent part is here: the role picks the connection, numbers
 * and encodes the PDU (struct sim_outq_ops) and owns the counters, which the
 * queue bumps at the indices it is given (struct sim_outq_ctrs).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#define SIM_OUTQ_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

enum sim_outq_st {
    SIM_OUTQ_ST_LATE = 0,     /* held by dlr_late_ms */
    SIM_OUTQ_ST_QUEUED = 1,   /* waiting for a connection with window space */
    SIM_OUTQ_ST_INFLIGHT = 2, /* sent, waiting for the answer */
};

struct sim_outq;
struct sim_outq_link;

/* The head of a role's report / MO record (the role's struct embeds it). */
struct sim_outq_item {
    struct sim_outq_item *prev, *next; /* in exactly one list, per state */
    struct sim_outq *q;
    struct sim_outq_link *link; /* INFLIGHT only */
    ev_timer timer;             /* LATE: release; INFLIGHT: answer wait */
    enum sim_outq_st st;
    bool is_report;
    bool counted; /* first transmission counted */
    uint8_t tries;
    uint32_t seq;
};

struct sim_outq_list {
    struct sim_outq_item *head, *tail;
    size_t n;
};

/* The per-connection part (the role's connection embeds it). */
struct sim_outq_link {
    struct sim_outq_list inflight;
    const char *peer; /* for the log */
};

struct sim_outq_ops {
    /* Least-loaded connection able to take one more, or NULL. */
    struct sim_outq_link *(*pick)(void *ctx);
    /* The next sequence number on that connection. */
    uint32_t (*next_seq)(struct sim_outq_link *link);
    /* Encode and send it->seq on link; < 0 gives the item up. */
    int (*encode_send)(struct sim_outq_link *link, struct sim_outq_item *it);
};

/* Indices into the role's counter array. */
struct sim_outq_ctrs {
    unsigned dlrs_sent, mos_sent; /* first transmissions */
    unsigned resps, retries, gave_up, overflow;
};

struct sim_outq_cfg {
    const char *role;        /* log prefix: "ismg" */
    const char *pdu_name;    /* "DELIVER" */
    const char *report_name; /* "report" */
    uint8_t tries;           /* sends before giving up */
    uint32_t resp_timeout_ms;
    uint32_t max_pending; /* LATE + QUEUED, beyond that refused and counted */
    struct sim_outq_ctrs ctrs;
};

struct sim_outq {
    struct ev_loop *loop;
    struct sim_outq_cfg cfg;
    const struct sim_outq_ops *ops;
    void *ctx;
    uint64_t *ctr;
    struct sim_outq_list late, queue;
};

void sim_outq_init(struct sim_outq *q, struct ev_loop *loop, const struct sim_outq_cfg *cfg,
                   const struct sim_outq_ops *ops, void *ctx, uint64_t *ctr);

/* Free every LATE and QUEUED item (in-flight ones go back with sim_outq_link_close first). */
void sim_outq_clear(struct sim_outq *q);

void sim_outq_link_init(struct sim_outq_link *link, const char *peer);

/* The connection is gone: its in-flight items go back to the front of the queue, in order. */
void sim_outq_link_close(struct sim_outq *q, struct sim_outq_link *link);

/*
 * A zeroed item of size octets (the role's struct, the item its first member),
 * or NULL (counted as overflow) when max_pending are held or memory is out.
 */
struct sim_outq_item *sim_outq_alloc(struct sim_outq *q, size_t size);

/* Hold for delay_ms (0: queue at once and send what the windows allow). */
void sim_outq_enqueue(struct sim_outq *q, struct sim_outq_item *it, uint32_t delay_ms);

/* Send queued items while a connection has window space. */
void sim_outq_pump(struct sim_outq *q);

/* The in-flight item answered by seq on link, removed and counted, or NULL. */
struct sim_outq_item *sim_outq_take(struct sim_outq *q, struct sim_outq_link *link, uint32_t seq);

/* Free an item taken with sim_outq_take() and send what its window space allows. */
void sim_outq_done(struct sim_outq *q, struct sim_outq_item *it);

/* LATE + QUEUED (in-flight ones are on the links). */
size_t sim_outq_n_held(const struct sim_outq *q);
