/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's GlobalPlatform card model: one issuer security domain, its
 * supplementary security domains, executable load files (ELFs) with their
 * modules, applications with their life-cycle state (GP 2.2 11.1.1: INSTALLED
 * 03, SELECTABLE 07, PERSONALIZED 0F, LOCKED b8) and free non-volatile space.
 * It executes the card-content-management commands of GP 2.2 clause 11 as
 * remote APDUs arrive over SCP80 (TS 102 226): SELECT, GET STATUS, GET DATA,
 * SET STATUS, DELETE, INSTALL, LOAD, STORE DATA, PUT KEY.
 *
 * Small but real: every command answers with the status words a card gives
 * (9000, 6310, 6700, 6A80, 6A82, 6A84, 6A86, 6A88, 6985, 6D00, 6E00) and
 * GET STATUS answers in both formats readable by ota_gp_status_parse_tlv()
 * and ota_gp_status_parse_legacy(). Fixed-size arrays: a struct sim_gp_card
 * is about 1.8 KiB and allocates nothing.
 *
 * Simplifications (documented, tests rely on them):
 *   - LOAD data is counted, not interpreted: the ELF's size is the octets of
 *     all LOAD blocks (C4 header included); its module list is filled by the
 *     module AIDs later named in INSTALL [for install].
 *   - An application takes SIM_GP_APP_SIZE octets of non-volatile space.
 *   - GET DATA FF21 (free space) answers FF21 len {81 02 n-apps, 82 04
 *     free-NV, 83 02 free-V}, modelled on the extended card resources of
 *     TS 102 226 8.2.1.7 [layout unverified]; 0066 answers a fixed card data
 *     template; 00E0 key information templates C0 {id, kvn, type, len}.
 *   - PUT KEY does not decrypt: it answers the new KVN and the KCVs the
 *     command carries, and records the KVN.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/ota.h"

#define SIM_GP_MAX_APPS 16
#define SIM_GP_MAX_ELFS 8
#define SIM_GP_MAX_MODS 4
#define SIM_GP_MAX_KVNS 4
/* Non-volatile space one installed application takes. */
#define SIM_GP_APP_SIZE 256u
/*
 * Largest GET STATUS response data per command, so that it fits a single-SMS
 * PoR with the compact or expanded wrapping; more gives 6310 and P2 b1 continues.
 */
#define SIM_GP_STATUS_MAX 96
/* Free volatile space reported in FF21 (fixed). */
#define SIM_GP_FREE_V 2048u

/* Status words (ISO/IEC 7816-4 5.1.3, GP 2.2 11.1.3). */
#define SIM_SW_OK 0x9000
#define SIM_SW_MORE 0x6310
#define SIM_SW_WRONG_LENGTH 0x6700
#define SIM_SW_COND 0x6985
#define SIM_SW_WRONG_DATA 0x6A80
#define SIM_SW_NOT_FOUND 0x6A82
#define SIM_SW_NO_SPACE 0x6A84
#define SIM_SW_WRONG_P1P2 0x6A86
#define SIM_SW_REF_NOT_FOUND 0x6A88
#define SIM_SW_INS 0x6D00
#define SIM_SW_CLA 0x6E00

struct sim_gp_aid {
    uint8_t len; /* 0 = none */
    uint8_t b[OTA_GP_AID_MAX];
};

/* An application or a supplementary security domain. */
struct sim_gp_app {
    bool used;
    bool is_sd;
    struct sim_gp_aid aid;
    struct sim_gp_aid elf; /* the ELF it was installed from (may be empty) */
    struct sim_gp_aid sd;  /* associated security domain (empty = ISD) */
    uint8_t lcs;
    uint8_t priv;
    uint32_t size;
};

struct sim_gp_elf {
    bool used;
    struct sim_gp_aid aid;
    uint8_t n_mods;
    struct sim_gp_aid mods[SIM_GP_MAX_MODS];
    uint32_t size;
};

struct sim_gp_card {
    struct sim_gp_aid isd;
    uint8_t card_lcs;
    uint32_t free_nv;
    struct sim_gp_app apps[SIM_GP_MAX_APPS];
    struct sim_gp_elf elfs[SIM_GP_MAX_ELFS];
    /* LOAD in progress after INSTALL [for load] */
    bool loading;
    struct sim_gp_aid load_aid;
    uint32_t load_bytes;
    uint8_t load_next_block;
    /* INSTALL [for personalization] target for STORE DATA */
    struct sim_gp_aid perso;
    /* GET STATUS continuation after 6310 */
    uint8_t status_p1;
    uint16_t status_next;
    /* key versions added by PUT KEY */
    uint8_t n_kvns;
    uint8_t kvns[SIM_GP_MAX_KVNS];
};

/* The ISD AID every simulated card has (GP default A0 00 00 01 51 00 00 00). */
extern const uint8_t sim_gp_isd_aid[8];

/* A fresh card: ISD only, card SECURED, free_nv octets free. Cannot fail. */
void sim_gp_init(struct sim_gp_card *c, uint32_t free_nv);

/*
 * Pre-install an application (population file): lcs as given, no ELF.
 * Returns 0, -EINVAL (OTA_ERR_ARG: AID outside 5..16), -EEXIST
 * (OTA_ERR_DUPLICATE) or -ENOSPC (OTA_ERR_LIMIT: table full).
 */
int sim_gp_add_app(struct sim_gp_card *c, const uint8_t *aid, size_t aid_len, uint8_t lcs,
                   bool is_sd, struct ota_err *err);

/*
 * Execute one command APDU. Response data (without SW) goes to rsp[0..cap)
 * and *rsp_len; cap must be at least 256. Returns the status word. Never
 * fails otherwise: bad commands get their SW.
 */
uint16_t sim_gp_run(struct sim_gp_card *c, const struct ota_apdu *a, uint8_t *rsp, size_t cap,
                    size_t *rsp_len);

/* The application or SD with this AID, or NULL (tests). */
const struct sim_gp_app *sim_gp_find_app(const struct sim_gp_card *c, const uint8_t *aid,
                                         size_t aid_len);
