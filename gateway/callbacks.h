/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the result callbacks (gateway/callbacks.c) that tests and
 * metrics reach: timing knobs and counters. The lifecycle is in gw.h.
 */
#pragma once

#include <stdint.h>

#include "gateway/gw.h"

/* Timing of deliveries; gw_callbacks_start sets the production values. */
struct gw_callbacks_knobs {
    unsigned tick_ms;        /* how often due rows are looked for; 1000 */
    unsigned backoff_ms;     /* first retry delay, doubled per attempt; 1000 */
    unsigned backoff_max_ms; /* 3600000 (1 h) */
    unsigned timeout_ms;     /* connect + answer of one POST; 10000 */
    int64_t max_age_ms;      /* older undelivered rows are abandoned; 7 days */
    unsigned max_inflight;   /* POSTs at once; 16 */
};

struct gw_callbacks_stats {
    uint64_t staged;    /* outbox rows staged (final hook and start-up catch-up) */
    uint64_t recovered; /* ... of which by the start-up catch-up */
    uint64_t sent;      /* POSTs started */
    uint64_t acked;     /* 2xx answers */
    uint64_t failed;    /* other answers, connect errors, timeouts */
    uint64_t abandoned;
    unsigned inflight;
};

/* Tests: change the timing after gw_callbacks_start. -EINVAL when not started. */
int gw_callbacks_set_knobs(struct gw *g, const struct gw_callbacks_knobs *k);
void gw_callbacks_get_stats(const struct gw *g, struct gw_callbacks_stats *out);
