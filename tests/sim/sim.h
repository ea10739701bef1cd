/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's SE side: a population of secure elements (from a file, or
 * generated: ten million must fit) and the card model that receives MT SMS
 * the way a SIM does. tests/sim/main.c puts the network roles (CMPP ISMG,
 * SMPP SMSC) in front of it; unit tests drive it directly.
 *
 * A card reassembles concatenated OTA SMS, checks SCP80 as its SPI demands
 * (RC/CC, counter mode, deciphering), runs the remote APDUs on a small
 * GlobalPlatform model (ISD, SSDs, load files, applications and their
 * life-cycle states including locked, free space) and answers with a PoR
 * shaped by the SPI. Push SMS on the wallet port are recorded (the wallet
 * role comes with the daemon, issue #6). Everything odd is counted.
 *
 * Prefix sim_. Not part of otagw proper: test infrastructure, but held to the
 * same rules (bounded memory, errors not crashes, ASan-clean).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/ota.h"

#define SIM_MSISDN_MAX 21
#define SIM_SEID_MAX 32

/* One SCP80 key set of an SE (per TAR range / KVN). */
struct sim_scp80_keyset {
    uint8_t kvn;                 /* 1..15 */
    struct ota_key kic, kid;     /* cipher set from the file / generator */
    uint8_t tar[3];              /* the TAR this key set serves (000000 = ISD RAM) */
};

/* One SCP02 key set (ENC/MAC/DEK) of a security domain. */
struct sim_scp02_keyset {
    uint8_t kvn;
    struct ota_scp02_keys keys;
};

struct sim_pop;

/*
 * Load a population from a file: one JSON object per line (JSON Lines):
 *   {"seid":"hex","msisdn":"digits","scp80":[{"kvn":1,"tar":"000000",
 *    "kic_alg":"AES","kic":"hex","kid_alg":"AES","kid":"hex"}],
 *    "scp02":[{"kvn":32,"enc":"hex","mac":"hex","dek":"hex"}],
 *    "free_nv":65536,"apps":[{"aid":"hex","state":"selectable"}]}
 * Errors name the line. Returns 0, -EINVAL (OTA_ERR_VALUE), -ENOENT, -ENOMEM.
 */
int sim_pop_load(const char *path, struct sim_pop **out, struct ota_err *err);

/*
 * Generate n SEs without storing them: SE i has MSISDN msisdn_base + i,
 * SEID derived from i, and keys derived from (seed, i) with AES-CMAC, so
 * the gateway side can derive the same keys (sim_pop_keys_for()). Card
 * state (counters, applications) exists only once an SE is touched.
 * Returns 0, -EINVAL, -ENOMEM.
 */
int sim_pop_generate(uint64_t n, uint64_t msisdn_base, const uint8_t seed[16],
                     struct sim_pop **out, struct ota_err *err);

void sim_pop_free(struct sim_pop *p);
uint64_t sim_pop_size(const struct sim_pop *p);

/* SEID and MSISDN of SE i (0-based), for tests and key import. */
int sim_pop_identity(const struct sim_pop *p, uint64_t i, char msisdn[SIM_MSISDN_MAX + 1],
                     uint8_t seid[SIM_SEID_MAX], size_t *seid_len);

/* The SCP80 key set of SE i for TAR (what the gateway must hold). */
int sim_pop_scp80_keys(const struct sim_pop *p, uint64_t i, const uint8_t tar[3],
                       struct sim_scp80_keyset *out, struct ota_err *err);

/* A short message the card sends back (PoR by SMS-SUBMIT) or the network must carry. */
struct sim_mo {
    uint8_t ud[OTA_SMS_UD_MAX];
    uint8_t len;
    bool udhi;
    uint8_t pid, dcs;
};

/* What happened to one delivered MT (for the network role and counts). */
enum sim_outcome {
    SIM_OUT_PENDING = 0,     /* a part of a concatenated message, held */
    SIM_OUT_POR = 1,         /* command processed; *mo holds the PoR (via SMS-SUBMIT) */
    SIM_OUT_POR_REPORT = 2,  /* processed; PoR would ride the deliver report (not carried back) */
    SIM_OUT_NO_POR = 3,      /* processed; SPI asked for no PoR (or only on error) */
    SIM_OUT_PUSH = 4,        /* a push SMS on the wallet port, recorded */
    SIM_OUT_INVALID = 5,     /* malformed SMS/packet: counted, no answer */
    SIM_OUT_UNKNOWN_SE = 6,  /* no SE with that MSISDN */
};

const char *sim_outcome_name(enum sim_outcome o);

/*
 * Deliver one MT SMS to the SE behind msisdn. On SIM_OUT_POR, *mo is the PoR
 * to send back as MO. now_ms drives the reassembly timeout.
 */
int sim_card_deliver(struct sim_pop *p, const char *msisdn, const uint8_t *ud, size_t len,
                     bool udhi, uint8_t pid, uint8_t dcs, uint64_t now_ms,
                     enum sim_outcome *outcome, struct sim_mo *mo, struct ota_err *err);

/* Counters printed as JSON by the simulator. */
struct sim_counts {
    uint64_t mt_parts, mt_complete, pushes, commands_ok, por_sent;
    uint64_t invalid_sms, bad_cc, counter_refused, counter_reused, unknown_se, unknown_tar;
    uint64_t apdus_run, apdus_failed;
};

void sim_pop_counts(const struct sim_pop *p, struct sim_counts *out);
