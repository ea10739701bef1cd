/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the simulator's population (pop.c) and card (card.c):
 * the per-SE definition (identity and keys, from the file or computed from
 * the generator seed), the lazily created per-SE state (SCP80 counters, GP
 * card image, last push) and the population object holding both. Not for
 * the network roles: they use sim.h.
 */
#pragma once

#include "tests/sim/sim.h"
#include "tests/sim/gpmodel.h"

#define SIM_MAX_SCP80 8
#define SIM_MAX_SCP02 4
#define SIM_MAX_FILE_APPS SIM_GP_MAX_APPS
/* Counter values remembered per key set for the reuse check (besides the highest). */
#define SIM_CNTR_HIST 8

/* Everything static about one SE. Holds keys: wipe with sim_se_def_wipe(). */
struct sim_se_def {
    char msisdn[SIM_MSISDN_MAX + 1];
    uint8_t seid[SIM_SEID_MAX];
    uint8_t seid_len;
    uint8_t n_scp80;
    struct sim_scp80_keyset scp80[SIM_MAX_SCP80];
    uint8_t cntr_slot[SIM_MAX_SCP80]; /* counter slot per key set (generated: both share 0) */
    uint8_t n_scp02;
    struct sim_scp02_keyset scp02[SIM_MAX_SCP02];
    uint32_t free_nv;
    uint8_t n_apps;
    struct {
        struct sim_gp_aid aid;
        uint8_t lcs;
        bool is_sd;
    } apps[SIM_MAX_FILE_APPS];
};

/* The SCP80 / GP part of an SE's state, created on its first SCP80 command. */
struct sim_se_ota {
    struct {
        bool seen;
        uint64_t stored;              /* last accepted counter */
        uint64_t hist[SIM_CNTR_HIST]; /* counters received (CC verified), ring */
        uint8_t n_hist, hist_pos;
    } cntr[SIM_MAX_SCP80];
    struct sim_gp_card card;
};

/* Per-SE state, created on first touch (a push costs only this). */
struct sim_se_state {
    uint64_t idx;
    bool has_push;
    struct ota_push last_push;
    struct sim_se_ota *ota; /* NULL until the first SCP80 command */
};

struct sim_pop {
    struct ota_crypto *crypto;
    /* file population */
    struct sim_se_def *defs;
    uint64_t n_defs;
    uint32_t *msisdn_tab; /* open addressing: index + 1, 0 = empty */
    size_t msisdn_cap;
    /* generated population */
    bool generated;
    uint64_t n_gen;
    uint64_t msisdn_base;
    struct ota_key seed;
    /* lazy state: open addressing, keyed by index */
    struct sim_se_state **states;
    size_t states_cap;
    size_t n_states;
    /* card side */
    struct ota_reasm *reasm;
    struct sim_counts counts;
    struct sim_mo last_report;
    bool has_report;
    /* the wallet role's hook (sim_pop_set_push_cb) */
    sim_push_cb push_cb;
    void *push_arg;
};

void sim_se_def_wipe(struct sim_se_def *d);

/* Definition of SE i (computed for generated SEs). Caller wipes it. */
int sim_pop_def(const struct sim_pop *p, uint64_t i, struct sim_se_def *out, struct ota_err *err);

/* Index of the SE with this MSISDN; -ENOENT when there is none. */
int sim_pop_find(const struct sim_pop *p, const char *msisdn, uint64_t *idx);

/* The state of SE i, created on first touch. -ENOMEM. */
int sim_pop_state(struct sim_pop *p, uint64_t i, struct sim_se_state **out, struct ota_err *err);

/* s->ota, created from the SE's definition (free space, apps, key versions) if absent. */
int sim_pop_ota(struct sim_pop *p, struct sim_se_state *s, struct ota_err *err);
