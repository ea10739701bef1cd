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
 * shaped by the SPI. Push SMS on the wallet port are recorded and handed to
 * the push callback (the wallet role, tests/sim/wallet.h, issue #6).
 * Everything odd is counted.
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
    uint8_t kvn;             /* 1..15 */
    struct ota_key kic, kid; /* cipher set from the file / generator */
    uint8_t tar[3];          /* the TAR this key set serves (000000 = ISD RAM) */
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
 * Required: seid (1..32 octets), msisdn (1..21 digits, unique). kic_alg and
 * kid_alg are "AES", "3DES2", "3DES3" or "DES"; key lengths must fit them.
 * At most 8 scp80 and 4 scp02 entries, 16 apps; an app's state is
 * "installed", "selectable" or "personalized", with optional booleans
 * "locked" and "sd" (a supplementary security domain). free_nv defaults to
 * 65536. Blank lines are skipped; unknown keys and duplicate keys are
 * refused. Errors name the line ("line 7: ..."). Returns 0, -EINVAL
 * (err->code: OTA_ERR_VALUE, _MISSING, _TAG for an unknown key, _KEY,
 * _DUPLICATE, _OVERSIZE for a line over 64 KiB, _LIMIT), -ENOENT, -ENOMEM.
 * A population is not thread-safe: one thread drives it.
 */
int sim_pop_load(const char *path, struct sim_pop **out, struct ota_err *err);

/*
 * Generate n SEs without storing them: SE i has MSISDN msisdn_base + i,
 * SEID derived from i, and keys derived from (seed, i) with AES-CMAC, so
 * the gateway side can derive the same keys (sim_pop_keys_for()). Card
 * state (counters, applications) exists only once an SE is touched.
 * Returns 0, -EINVAL, -ENOMEM.
 */
int sim_pop_generate(uint64_t n, uint64_t msisdn_base, const uint8_t seed[16], struct sim_pop **out,
                     struct ota_err *err);

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
    SIM_OUT_PENDING = 0,    /* a part of a concatenated message, held */
    SIM_OUT_POR = 1,        /* command processed; *mo holds the PoR (via SMS-SUBMIT) */
    SIM_OUT_POR_REPORT = 2, /* processed; PoR would ride the deliver report (not carried back) */
    SIM_OUT_NO_POR = 3,     /* processed; SPI asked for no PoR (or only on error) */
    SIM_OUT_PUSH = 4,       /* a push SMS on the wallet port, recorded */
    SIM_OUT_INVALID = 5,    /* malformed SMS/packet: counted, no answer */
    SIM_OUT_UNKNOWN_SE = 6, /* no SE with that MSISDN */
};

const char *sim_outcome_name(enum sim_outcome o);

/*
 * Deliver one MT SMS to the SE behind msisdn ("+" prefix allowed). On
 * SIM_OUT_POR, *mo is the PoR to send back as MO (PID 7F, DCS F6, UDH
 * 02 71 00); on SIM_OUT_POR_REPORT the same bytes are kept for
 * sim_pop_last_report(). now_ms drives the reassembly timeout (120 s).
 * Everything wrong with the SMS is an outcome (counted), not an error: the
 * call fails only for bad arguments (-EINVAL) or -ENOMEM. tests/sim/card.c
 * documents the choices (script stop rule, PoR truncation, reuse count).
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

/* ---- added by the card/population implementation ---- */

/*
 * Key derivation of generated SEs (sim_pop_generate), so that a gateway test
 * can compute the same keys without the simulator. With seed as an AES-128
 * key and i the 0-based SE index as 8 octets big-endian:
 *   KIc = AES-CMAC(seed, "KIC" | i)   AES-128, KVN 1
 *   KID = AES-CMAC(seed, "KID" | i)   AES-128, KVN 1
 *   ENC = AES-CMAC(seed, "ENC" | i)   SCP02 3DES 2-key, KVN 0x20
 *   MAC = AES-CMAC(seed, "MAC" | i)   likewise
 *   DEK = AES-CMAC(seed, "DEK" | i)   likewise
 * ("KIC" etc. are the three ASCII octets.) The one SCP80 key set serves TAR
 * 000000 (ISD, RAM) and B00000 (RFM) with a single counter. MSISDN is the
 * decimal of msisdn_base + i; SEID is the 16 ASCII octets "SE" followed by
 * i in 14 decimal digits ("SE00000000000042"); free space 65536 octets.
 */

/* The SCP02 key set of SE i with this KVN (0 = the first). -ENOENT when none. */
int sim_pop_scp02_keys(const struct sim_pop *p, uint64_t i, uint8_t kvn,
                       struct sim_scp02_keyset *out, struct ota_err *err);

/* SEs whose state was created (touched) so far: the memory cost driver. */
size_t sim_pop_n_touched(const struct sim_pop *p);

/* The last push recorded for the SE behind msisdn; -ENOENT when none. */
int sim_pop_last_push(const struct sim_pop *p, const char *msisdn, struct ota_push *out);

/*
 * Called (after recording) for every push SMS a card accepts, with the SE's
 * 0-based index: the wallet role (tests/sim/wallet.h) hangs here. The
 * callback must not deliver to the population. NULL cb = none.
 */
typedef void (*sim_push_cb)(void *arg, uint64_t idx, const struct ota_push *push);
void sim_pop_set_push_cb(struct sim_pop *p, sim_push_cb cb, void *arg);

/* True for a generated population (SEID is ASCII), false for a file one (SEID is hex). */
bool sim_pop_is_generated(const struct sim_pop *p);

/*
 * The last PoR that rode a deliver report (SIM_OUT_POR_REPORT), as the
 * SMS-SUBMIT one would be (UDH 02 71 00 + packet). -ENOENT when none.
 */
int sim_pop_last_report(const struct sim_pop *p, struct sim_mo *out);
