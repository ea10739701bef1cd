/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's wallet role (issue #6): a push SMS for an SE wakes the
 * wallet, which pulls the waiting task from otagw (POST /v1/wallet/pull) and
 * then answers every C-APDU the gateway sends as that SE's card would: the
 * SCP02 card end (ota_scp02_card) opens the channel and unwraps commands,
 * the SE's GlobalPlatform model (gpmodel.h) executes them. The protocol is
 * docs/simulator.md "Wallet role".
 *
 * HTTP is the libwebsockets client on the caller's libev loop (no parser of
 * our own). Bounded: at most max_sessions pulls/sessions run at once, the
 * rest wait in a FIFO (itself bounded: beyond it a push is dropped and
 * counted); every request has a timeout. Failures are counted, never fatal.
 *
 * Prefix sim_wallet_. One loop thread; not thread-safe.
 */
#pragma once

#include <stdint.h>

#include <ev.h>

#include "ota/ota.h"
#include "tests/sim/sim.h"

#define SIM_WALLET_DEFAULT_SESSIONS 64u
#define SIM_WALLET_DEFAULT_QUEUE 100000u
#define SIM_WALLET_DEFAULT_TIMEOUT_MS 10000u

struct sim_wallet_conf {
    const char *url;       /* "http://host:port" or "https://host:port" (no path) */
    const char *ca_file;   /* https: PEM CA bundle otagw's certificate must chain to
                              (its self-signed otagw-cert.pem); NULL = system store */
    unsigned max_sessions; /* concurrent sessions; 0 = 64 */
    unsigned max_queue;    /* pushes waiting for a slot; 0 = 100000 */
    unsigned timeout_ms;   /* per HTTP request; 0 = 10 s */
    /*
     * API token of a client principal (otagw issue #7), sent as
     * "Authorization: Bearer"; "@PATH" reads it from PATH's first line (keeps
     * it out of the process list). NULL = no header.
     */
    const char *token;
};

struct sim_wallet_counts {
    uint64_t wallet_pulls;           /* pulls sent */
    uint64_t wallet_sessions_done;   /* ended with "done":true, state "done" */
    uint64_t wallet_sessions_failed; /* ended "failed" by the server */
    uint64_t wallet_http_errors;     /* non-200, bad JSON, connect error, timeout */
    uint64_t wallet_dropped;         /* pushes dropped: FIFO full */
    uint64_t wallet_apdus;           /* C-APDUs answered */
};

struct sim_wallet;

/*
 * Create the wallet on loop for population pop (borrowed: must outlive the
 * wallet). Registers itself as pop's push callback. Returns 0, -EINVAL
 * (OTA_ERR_ARG / OTA_ERR_VALUE: bad URL), -ENOMEM or -EIO (lws refused).
 */
int sim_wallet_new(struct ev_loop *loop, struct sim_pop *pop, const struct sim_wallet_conf *c,
                   struct sim_wallet **out, struct ota_err *err) OTA_MUST_CHECK;

/* Abort running sessions (not counted) and free. NULL allowed. */
void sim_wallet_free(struct sim_wallet *w);

/* Start the wallet flow for SE idx after push (what the push callback does). */
void sim_wallet_on_push(struct sim_wallet *w, uint64_t idx, const struct ota_push *push);

void sim_wallet_counts(const struct sim_wallet *w, struct sim_wallet_counts *out);

/* Sessions running plus waiting (tests poll for 0). */
unsigned sim_wallet_busy(const struct sim_wallet *w);
