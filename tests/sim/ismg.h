/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's ISMG role: a CMPP 2.0 / 3.0 server on the libev loop, the
 * peer otagw's CMPP link talks to (../shared/reference/cmpp.md). It checks
 * the SP's login (Source_Addr, AuthenticatorSource with the shared secret,
 * Version), answers SUBMIT with SUBMIT_RESP (a unique Msg_Id, Result 8 above
 * the per-connection rate, or the faults' verdict), hands each MT to the card
 * and sends the status report DELIVER and the card's PoR as an MO DELIVER,
 * each awaited with DELIVER_RESP (resent twice on timeout) within a window.
 * ACTIVE_TEST is answered and sent when a link is idle; TERMINATE works both
 * ways. Reports and MOs not yet answered survive a dropped connection and go
 * out on the SP's next one. Every PDU and every outcome is counted.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <jansson.h>

#include "smpp/cmpp.h"
#include "tests/sim/faults.h"

/* Which CONNECT Version octets the ISMG accepts. */
enum sim_ismg_vers {
    SIM_ISMG_VERS_ANY = 0, /* 0x20 and 0x30 */
    SIM_ISMG_VERS_20 = 1,
    SIM_ISMG_VERS_30 = 2,
};

const char *sim_ismg_vers_name(enum sim_ismg_vers v);

struct sim_ismg_cfg {
    const char *host; /* listen address, "127.0.0.1" when NULL */
    uint16_t port;    /* 0 = ephemeral, see sim_ismg_port() */
    enum sim_ismg_vers versions;
    const char *sp_id;               /* expected Source_Addr, 1..6 characters */
    const uint8_t *secret;           /* shared secret (copied) */
    size_t secret_len;               /* 0..CMPP_SECRET_MAX_LEN */
    uint32_t rate_per_s;             /* SUBMITs per second per connection, 0 = no limit */
    uint32_t window;                 /* DELIVERs in flight per connection, >= 1 */
    uint32_t gateway_code;           /* Msg_Id ISMG code, 22 bits */
    uint32_t heartbeat_s;            /* idle time before ACTIVE_TEST, >= 1 */
    uint32_t resp_timeout_ms;        /* DELIVER_RESP / ACTIVE_TEST_RESP wait */
    uint32_t max_pending;            /* reports + MOs held, beyond that dropped and counted */
    const struct sim_faults *faults; /* copied; NULL = none */
    uint64_t seed;                   /* fault generator seed */
    struct sim_card_hook card;       /* deliver may be NULL: every MT is DELIVRD, no PoR */
};

/* Defaults for everything but host/port/sp_id/secret/card. Cannot fail. */
void sim_ismg_cfg_defaults(struct sim_ismg_cfg *cfg);

/* Counters (names in sim_ismg_ctr_name(), the JSON keys). Values are stable. */
enum sim_ismg_ctr {
    SIM_ISMG_PDUS_RX = 0,
    SIM_ISMG_PDUS_TX = 1,
    SIM_ISMG_CONNECTIONS = 2,
    SIM_ISMG_LOGINS_OK = 3,
    SIM_ISMG_LOGINS_REFUSED = 4,
    SIM_ISMG_SUBMITS = 5,
    SIM_ISMG_SUBMITS_OK = 6,
    SIM_ISMG_FLOW_CONTROL = 7, /* Result 8 answers (rate and throttle fault) */
    SIM_ISMG_THROTTLE_FAULTS = 8,
    SIM_ISMG_REJECTED = 9, /* reject fault: Result 9 */
    SIM_ISMG_INVALID_PDUS = 10,
    SIM_ISMG_DLRS_SENT = 11,    /* report DELIVERs, first transmission */
    SIM_ISMG_DLRS_UNDELIV = 12, /* of which Stat UNDELIV */
    SIM_ISMG_DLRS_LOST = 13,    /* dlr_lost fault */
    SIM_ISMG_MOS_SENT = 14,
    SIM_ISMG_POR_LOST = 15,
    SIM_ISMG_POR_CORRUPTED = 16,
    SIM_ISMG_CARD_ABSENT = 17,
    SIM_ISMG_CARD_ERRORS = 18,
    SIM_ISMG_DELIVER_RESPS = 19,
    SIM_ISMG_DELIVER_RETRIES = 20,
    SIM_ISMG_DELIVER_GAVE_UP = 21,
    SIM_ISMG_PENDING_OVERFLOW = 22,
    SIM_ISMG_ACTIVE_TEST_RX = 23,
    SIM_ISMG_ACTIVE_TEST_TX = 24,
    SIM_ISMG_TERMINATE_RX = 25,
    SIM_ISMG_TERMINATE_TX = 26,
    SIM_ISMG_LINK_DROPS = 27, /* drop_every_s fault and heartbeat loss */
    SIM_ISMG_CTR__COUNT
};

const char *sim_ismg_ctr_name(enum sim_ismg_ctr c);

struct sim_ismg;

/*
 * Listen on cfg->host:cfg->port on loop. cfg and what it points to may go
 * away after the call (copied). Returns 0 and *out, -EINVAL/OTA_ERR_ARG for a
 * bad setting, -ENOMEM, or the socket errno with OTA_ERR_STATE. Free with
 * sim_ismg_free().
 */
int sim_ismg_new(struct ev_loop *loop, const struct sim_ismg_cfg *cfg, struct sim_ismg **out,
                 struct ota_err *err) OTA_MUST_CHECK;

/* Stop every watcher, close every socket, free everything; NULL is a no-op. */
void sim_ismg_free(struct sim_ismg *s);

/* The bound port (the ephemeral one when cfg->port was 0). */
uint16_t sim_ismg_port(const struct sim_ismg *s);

/* Connections open now. */
size_t sim_ismg_n_conns(const struct sim_ismg *s);

/* Reports and MOs not yet answered (queued, in flight or held late). */
size_t sim_ismg_n_pending(const struct sim_ismg *s);

/* Send TERMINATE on every logged-in connection; they close on the resp. */
void sim_ismg_terminate_all(struct sim_ismg *s);

/* Close every connection at once (a link drop, as the drop_every_s fault does). */
void sim_ismg_drop_all(struct sim_ismg *s);

uint64_t sim_ismg_count(const struct sim_ismg *s, enum sim_ismg_ctr c);

/* The counters as a new JSON object (caller owns it); NULL on allocation failure. */
json_t *sim_ismg_counts_json(const struct sim_ismg *s);
