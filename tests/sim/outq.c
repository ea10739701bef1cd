/* SPDX-License-Identifier: Apache-2.0 */
/* The reports / MOs awaiting the peer's answer, for the ISMG and SMSC roles (see outq.h). */
#include "tests/sim/outq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const outq_st_names[] = {
    [SIM_OUTQ_ST_LATE] = "late",
    [SIM_OUTQ_ST_QUEUED] = "queued",
    [SIM_OUTQ_ST_INFLIGHT] = "inflight",
};

static void list_push_back(struct sim_outq_list *l, struct sim_outq_item *d)
{
    d->next = NULL;
    d->prev = l->tail;
    if (l->tail != NULL) {
        l->tail->next = d;
    } else {
        l->head = d;
    }
    l->tail = d;
    l->n++;
}

static void list_push_front(struct sim_outq_list *l, struct sim_outq_item *d)
{
    d->prev = NULL;
    d->next = l->head;
    if (l->head != NULL) {
        l->head->prev = d;
    } else {
        l->tail = d;
    }
    l->head = d;
    l->n++;
}

static void list_remove(struct sim_outq_list *l, struct sim_outq_item *d)
{
    if (d->prev != NULL) {
        d->prev->next = d->next;
    } else {
        l->head = d->next;
    }
    if (d->next != NULL) {
        d->next->prev = d->prev;
    } else {
        l->tail = d->prev;
    }
    d->prev = d->next = NULL;
    l->n--;
}

static void item_free(struct sim_outq_item *d)
{
    ev_timer_stop(d->q->loop, &d->timer);
    free(d);
}

void sim_outq_init(struct sim_outq *q, struct ev_loop *loop, const struct sim_outq_cfg *cfg,
                   const struct sim_outq_ops *ops, void *ctx, uint64_t *ctr)
{
    memset(q, 0, sizeof(*q));
    q->loop = loop;
    q->cfg = *cfg;
    q->ops = ops;
    q->ctx = ctx;
    q->ctr = ctr;
}

void sim_outq_clear(struct sim_outq *q)
{
    struct sim_outq_list *lists[] = {&q->late, &q->queue};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        while (lists[i]->head != NULL) {
            struct sim_outq_item *d = lists[i]->head;
            list_remove(lists[i], d);
            item_free(d);
        }
    }
}

void sim_outq_link_init(struct sim_outq_link *link, const char *peer)
{
    memset(link, 0, sizeof(*link));
    link->peer = peer;
}

void sim_outq_link_close(struct sim_outq *q, struct sim_outq_link *link)
{
    while (link->inflight.tail != NULL) {
        struct sim_outq_item *d = link->inflight.tail;
        list_remove(&link->inflight, d);
        ev_timer_stop(q->loop, &d->timer);
        d->link = NULL;
        d->st = SIM_OUTQ_ST_QUEUED;
        d->tries = 0;
        list_push_front(&q->queue, d);
    }
}

static void item_arm(struct sim_outq *q, struct sim_outq_item *d)
{
    ev_timer_set(&d->timer, q->cfg.resp_timeout_ms / 1000.0, 0.);
    ev_timer_start(q->loop, &d->timer);
}

static void item_send(struct sim_outq *q, struct sim_outq_link *link, struct sim_outq_item *d)
{
    d->link = link;
    d->st = SIM_OUTQ_ST_INFLIGHT;
    d->seq = q->ops->next_seq(link);
    if (q->ops->encode_send(link, d) < 0) {
        q->ctr[q->cfg.ctrs.gave_up]++;
        item_free(d);
        return;
    }
    d->tries++;
    if (!d->counted) {
        d->counted = true;
        q->ctr[d->is_report ? q->cfg.ctrs.dlrs_sent : q->cfg.ctrs.mos_sent]++;
    }
    list_push_back(&link->inflight, d);
    item_arm(q, d);
}

static void item_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sim_outq_item *d = SIM_OUTQ_CONTAINER_OF(w, struct sim_outq_item, timer);
    struct sim_outq *q = d->q;
    if (d->st == SIM_OUTQ_ST_LATE) {
        list_remove(&q->late, d);
        d->st = SIM_OUTQ_ST_QUEUED;
        list_push_back(&q->queue, d);
        sim_outq_pump(q);
        return;
    }
    struct sim_outq_link *link = d->link;
    list_remove(&link->inflight, d);
    if (d->tries >= q->cfg.tries) {
        fprintf(stderr, "%s: conn=%s %s %s seq=%u %s, unanswered %u times, given up\n", q->cfg.role,
                link->peer, d->is_report ? q->cfg.report_name : "MO", q->cfg.pdu_name, d->seq,
                outq_st_names[d->st], d->tries);
        q->ctr[q->cfg.ctrs.gave_up]++;
        item_free(d);
        sim_outq_pump(q);
        return;
    }
    /* resend the same request (same sequence number) */
    q->ctr[q->cfg.ctrs.retries]++;
    if (q->ops->encode_send(link, d) < 0) {
        q->ctr[q->cfg.ctrs.gave_up]++;
        item_free(d);
        return;
    }
    d->tries++;
    list_push_back(&link->inflight, d);
    item_arm(q, d);
}

void sim_outq_pump(struct sim_outq *q)
{
    while (q->queue.head != NULL) {
        struct sim_outq_link *link = q->ops->pick(q->ctx);
        if (link == NULL) {
            return;
        }
        struct sim_outq_item *d = q->queue.head;
        list_remove(&q->queue, d);
        item_send(q, link, d);
    }
}

struct sim_outq_item *sim_outq_alloc(struct sim_outq *q, size_t size)
{
    if (q->late.n + q->queue.n >= q->cfg.max_pending) {
        q->ctr[q->cfg.ctrs.overflow]++;
        return NULL;
    }
    struct sim_outq_item *d = size >= sizeof(*d) ? calloc(1, size) : NULL;
    if (d == NULL) {
        q->ctr[q->cfg.ctrs.overflow]++;
        return NULL;
    }
    d->q = q;
    ev_init(&d->timer, item_timer_cb);
    return d;
}

void sim_outq_enqueue(struct sim_outq *q, struct sim_outq_item *d, uint32_t delay_ms)
{
    if (delay_ms > 0) {
        d->st = SIM_OUTQ_ST_LATE;
        list_push_back(&q->late, d);
        ev_timer_set(&d->timer, delay_ms / 1000.0, 0.);
        ev_timer_start(q->loop, &d->timer);
        return;
    }
    d->st = SIM_OUTQ_ST_QUEUED;
    list_push_back(&q->queue, d);
    sim_outq_pump(q);
}

struct sim_outq_item *sim_outq_take(struct sim_outq *q, struct sim_outq_link *link, uint32_t seq)
{
    for (struct sim_outq_item *d = link->inflight.head; d != NULL; d = d->next) {
        if (d->seq == seq) {
            list_remove(&link->inflight, d);
            q->ctr[q->cfg.ctrs.resps]++;
            return d;
        }
    }
    return NULL;
}

void sim_outq_done(struct sim_outq *q, struct sim_outq_item *it)
{
    item_free(it);
    sim_outq_pump(q);
}

size_t sim_outq_n_held(const struct sim_outq *q)
{
    return q->late.n + q->queue.n;
}
