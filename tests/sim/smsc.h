/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's SMSC role: an SMPP 3.4 server on the libev loop, built on
 * libsmpp34 (every PDU goes through smpp34_unpack / smpp34_pack), so Kannel
 * bearerbox's SMPP client binds to it (../shared/reference/smpp.md). It
 * checks bind_transceiver (also transmitter / receiver) system_id and
 * password, answers enquire_link and unbind, answers submit_sm with a
 * message_id (decimal text, no leading zeros, the same string in the receipt
 * text and in receipted_message_id) or ESME_RTHROTTLED above the rate, hands
 * the MT to the card, and sends deliver_sm receipts (esm_class 0x04, text
 * plus TLVs 0x001E and 0x0427) and the card's PoR as an MO deliver_sm
 * (esm_class 0x40), each awaited with deliver_sm_resp within a window and
 * resent twice on timeout. Unanswered deliver_sm survive a dropped connection.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <jansson.h>

#include "tests/sim/faults.h"

#define SIM_SMSC_SYSTEM_ID_MAX 15 /* C-Octet 16 with the NUL */
#define SIM_SMSC_PASSWORD_MAX 8   /* C-Octet 9 with the NUL */

struct sim_smsc_cfg {
    const char *host;                /* listen address, "127.0.0.1" when NULL */
    uint16_t port;                   /* 0 = ephemeral, see sim_smsc_port() */
    const char *system_id;           /* expected in the bind, 1..15 characters */
    const char *password;            /* expected in the bind, 0..8 characters */
    uint32_t rate_per_s;             /* submit_sm per second per connection, 0 = no limit */
    uint32_t window;                 /* deliver_sm in flight per connection, >= 1 */
    uint32_t heartbeat_s;            /* idle time before enquire_link, >= 1 */
    uint32_t resp_timeout_ms;        /* deliver_sm_resp / enquire_link_resp wait */
    uint32_t max_pending;            /* receipts + MOs held, beyond that dropped and counted */
    const struct sim_faults *faults; /* copied; NULL = none */
    uint64_t seed;
    struct sim_card_hook card; /* deliver may be NULL: every MT is DELIVRD, no PoR */
};

/* Defaults for everything but host/port/system_id/password/card. Cannot fail. */
void sim_smsc_cfg_defaults(struct sim_smsc_cfg *cfg);

/* Counters (names in sim_smsc_ctr_name(), the JSON keys). Values are stable. */
enum sim_smsc_ctr {
    SIM_SMSC_PDUS_RX = 0,
    SIM_SMSC_PDUS_TX = 1,
    SIM_SMSC_CONNECTIONS = 2,
    SIM_SMSC_BINDS_OK = 3,
    SIM_SMSC_LOGINS_REFUSED = 4,
    SIM_SMSC_SUBMITS = 5,
    SIM_SMSC_SUBMITS_OK = 6,
    SIM_SMSC_FLOW_CONTROL = 7, /* ESME_RTHROTTLED answers (rate and throttle fault) */
    SIM_SMSC_THROTTLE_FAULTS = 8,
    SIM_SMSC_REJECTED = 9, /* reject fault: ESME_RSUBMITFAIL */
    SIM_SMSC_INVALID_PDUS = 10,
    SIM_SMSC_DLRS_SENT = 11,
    SIM_SMSC_DLRS_UNDELIV = 12,
    SIM_SMSC_DLRS_LOST = 13,
    SIM_SMSC_MOS_SENT = 14,
    SIM_SMSC_POR_LOST = 15,
    SIM_SMSC_POR_CORRUPTED = 16,
    SIM_SMSC_CARD_ABSENT = 17,
    SIM_SMSC_CARD_ERRORS = 18,
    SIM_SMSC_DELIVER_RESPS = 19,
    SIM_SMSC_DELIVER_RETRIES = 20,
    SIM_SMSC_DELIVER_GAVE_UP = 21,
    SIM_SMSC_PENDING_OVERFLOW = 22,
    SIM_SMSC_ENQUIRE_LINK_RX = 23,
    SIM_SMSC_ENQUIRE_LINK_TX = 24,
    SIM_SMSC_UNBIND_RX = 25,
    SIM_SMSC_UNBIND_TX = 26,
    SIM_SMSC_LINK_DROPS = 27,
    SIM_SMSC_CTR__COUNT
};

const char *sim_smsc_ctr_name(enum sim_smsc_ctr c);

struct sim_smsc;

/*
 * Listen on cfg->host:cfg->port on loop; cfg is copied. Returns 0 and *out,
 * -EINVAL/OTA_ERR_ARG for a bad setting, -ENOMEM, or the socket errno with
 * OTA_ERR_STATE. Free with sim_smsc_free().
 */
int sim_smsc_new(struct ev_loop *loop, const struct sim_smsc_cfg *cfg, struct sim_smsc **out,
                 struct ota_err *err) OTA_MUST_CHECK;

/* Stop every watcher, close every socket, free everything; NULL is a no-op. */
void sim_smsc_free(struct sim_smsc *s);

uint16_t sim_smsc_port(const struct sim_smsc *s);
size_t sim_smsc_n_conns(const struct sim_smsc *s);
size_t sim_smsc_n_pending(const struct sim_smsc *s);

/* Send unbind on every bound connection; they close on the resp. */
void sim_smsc_unbind_all(struct sim_smsc *s);

/* Close every connection at once (the drop_every_s fault). */
void sim_smsc_drop_all(struct sim_smsc *s);

uint64_t sim_smsc_count(const struct sim_smsc *s, enum sim_smsc_ctr c);

/* The counters as a new JSON object (caller owns it); NULL on allocation failure. */
json_t *sim_smsc_counts_json(const struct sim_smsc *s);
