/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the simulated network does to a message besides carrying it: the fault
 * plan given with --faults (reject, flow control, DLR lost / late / failed,
 * card absent, PoR lost / corrupted, periodic link drop), drawn per message
 * from a deterministic generator so that one --seed replays one run; the
 * per-connection token bucket behind --rate; and the hand-off of an MT to the
 * card model (struct sim_card_hook), which main.c wires to sim_card_deliver()
 * and unit tests replace with a stub. Shared by the ISMG and SMSC roles.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/ota_common.h"
#include "tests/sim/sim.h"

/* Limits of the integer fault keys. */
#define SIM_FAULT_DLR_LATE_MAX_MS 600000u
#define SIM_FAULT_DROP_MAX_S 86400u

/* The fault plan; probabilities are in [0, 1], 0 everywhere means none. */
struct sim_faults {
    double reject;         /* submit refused: CMPP Result 9 / ESME_RSUBMITFAIL */
    double throttle;       /* flow-control answer: CMPP Result 8 / ESME_RTHROTTLED */
    double dlr_lost;       /* no status report at all */
    double dlr_fail;       /* report says UNDELIV */
    double card_absent;    /* report UNDELIV, the card never sees the MT */
    double por_lost;       /* the card's PoR is dropped */
    double por_corrupt;    /* one octet of the PoR is flipped */
    uint32_t dlr_late_ms;  /* every report is held this long */
    uint32_t drop_every_s; /* close every client connection this often (0 never) */
};

/*
 * Parse "key=value,key=value" (keys above; an empty string is no faults).
 * Strict: an unknown key, a repeated key, a probability outside [0, 1], an
 * integer outside its limit or trailing characters fail with -EINVAL and
 * OTA_ERR_VALUE naming the key. *out is written only on success.
 */
int sim_faults_parse(const char *spec, struct sim_faults *out, struct ota_err *err) OTA_MUST_CHECK;

/* Deterministic generator (splitmix64): the same seed gives the same faults. */
struct sim_rng {
    uint64_t state;
};

void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);

/* What happens to one submitted message; drawn once per submit. */
struct sim_fate {
    bool throttle, reject, card_absent, dlr_lost, dlr_fail, por_lost, por_corrupt;
    uint32_t dlr_delay_ms;
    uint64_t pick; /* free random bits, e.g. which PoR octet to flip */
};

/*
 * Draw a fate. Every key consumes one draw whatever its probability, so a run
 * with the same seed and the same submits sees the same fates. Cannot fail.
 */
void sim_faults_draw(const struct sim_faults *f, struct sim_rng *r, struct sim_fate *out);

/*
 * Flip one octet of the PoR user data, after the UDH when there is one (so
 * the corruption hits the packet, not the header that routes it). Cannot fail.
 */
void sim_fate_corrupt(const struct sim_fate *fate, struct sim_mo *mo);

/* Token bucket per connection: rate_per_s messages, burst of one second. */
struct sim_bucket {
    uint32_t rate_per_s; /* 0 = unlimited */
    double tokens;
    double last_s;
};

void sim_bucket_init(struct sim_bucket *b, uint32_t rate_per_s, double now_s);

/* Take one token; false when the rate is exceeded (answer flow control). */
bool sim_bucket_take(struct sim_bucket *b, double now_s);

/*
 * The card behind the network roles. deliver() has the contract of
 * sim_card_deliver() (now_ms is the hook's business). ctx is borrowed.
 */
struct sim_card_hook {
    int (*deliver)(void *ctx, const char *msisdn, const uint8_t *ud, size_t len, bool udhi,
                   uint8_t pid, uint8_t dcs, enum sim_outcome *outcome, struct sim_mo *mo,
                   struct ota_err *err);
    void *ctx;
};
