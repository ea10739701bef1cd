/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The platform core (spec 5.3, 5.4, 5.8.3, 5.8.4, 5.8.7): platform
 * operations (app download / delete / lock / unlock / personalize, SD
 * create / key update / delete, info sync) become GlobalPlatform APDU
 * scripts, and each SE's application model (life-cycle state machine of
 * 5.8.7.2, space accounting of 5.8.7.1) is kept and updated from results.
 *
 *   plat_build*()          params JSON -> ordered C-APDUs + target (SD AID, TAR)
 *   plat_build_rapdu()     -> TS 102 226 expanded script for one SCP80 packet
 *   plat_engine_build_script()  the engine's eng_hooks.build_script adapter
 *   plat_model_*()         per-SE model: in memory, serialisable to/from JSON
 *                          (jansson) so the daemon can persist it; this module
 *                          does no I/O and keeps no globals.
 *
 * Params of every operation are documented in docs/platform-ops.md; they are
 * validated strictly (unknown keys, bad hex, wrong lengths, missing required
 * keys give -EINVAL with the key named: the API answers 400).
 *
 * The APDU list never holds the SELECT of the target SD nor any secure
 * channel command: over SCP80 the TAR addresses the SD, over the push +
 * SCP02 channel the session layer selects target.sd_aid and authenticates
 * first, then sends these commands (CLA 80; SCP02 turns it into 84).
 *
 * Prefix plat_. Not thread-safe; one loop thread drives it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ota/ota.h"
#include "queue/engine.h"
#include "queue/task.h"

/* Bounds of a script: APDUs and octets per APDU (short APDUs, ISO/IEC 7816-4 5.1). */
#define PLAT_MAX_APDUS 512
#define PLAT_APDU_MAX OTA_APDU_MAX_LEN
/*
 * Largest data field of a LOAD / STORE DATA block: SCP02 with C-MAC and
 * C-DECRYPTION pads the field to a multiple of 8 and adds an 8-octet MAC, and
 * the result must stay within 255 (GP 2.2 E.4.4): 239 + 1 pad -> 240 + 8 = 248.
 */
#define PLAT_BLOCK_MAX 239
/* Default LOAD block size: leaves room for SCP02 and for the expanded-format TLV header. */
#define PLAT_BLOCK_DEFAULT 200
/* The engine's SCP80 script budget (queue/eng_dispatch.c SCRIPT_MAX). */
#define PLAT_SCP80_SCRIPT_MAX 1024

/* GP default ISD AID and the SSD package / module many cards carry. */
extern const uint8_t plat_isd_aid[8];
extern const uint8_t plat_ssd_elf_aid[7];
extern const uint8_t plat_ssd_module_aid[8];

/* What each APDU of a script does: the model reads completed steps from it. */
enum plat_step {
    PLAT_STEP_INSTALL_LOAD = 0, /* INSTALL [for load] of load file obj */
    PLAT_STEP_LOAD = 1,         /* a LOAD block of load file obj (last: P1 80) */
    PLAT_STEP_INSTALL = 2,      /* INSTALL [for install (and make selectable)] of module obj */
    PLAT_STEP_MAKE_SELECTABLE = 3,
    PLAT_STEP_DELETE = 4,
    PLAT_STEP_SET_STATUS = 5,
    PLAT_STEP_INSTALL_PERSO = 6,
    PLAT_STEP_STORE_DATA = 7,
    PLAT_STEP_PUT_KEY = 8,
    PLAT_STEP_GET_STATUS = 9,
    PLAT_STEP_GET_DATA = 10,
    PLAT_STEP__COUNT
};

/* "install-load", "load", ...; never NULL. */
const char *plat_step_name(enum plat_step s);

struct plat_apdu {
    enum plat_step step;
    uint8_t obj;  /* index of the load file / module / AID the step is about */
    bool last;    /* the last APDU of its object (last LOAD block, last STORE DATA) */
    uint16_t len; /* octets in b */
    uint8_t b[PLAT_APDU_MAX];
};

struct plat_aid {
    uint8_t len; /* 0 = none */
    uint8_t b[OTA_GP_AID_MAX];
};

/*
 * A built script. apdus is heap memory owned by the script: release it with
 * plat_script_fini() (also after a failed build; a zeroed script is fine).
 */
struct plat_script {
    enum task_op op;
    uint8_t tar[3];         /* SCP80 TAR of the target SD (default 000000, the ISD) */
    struct plat_aid sd_aid; /* the SD that runs the script (SCP02 SELECT target) */
    size_t n;
    size_t cap;
    struct plat_apdu *apdus;
};

void plat_script_fini(struct plat_script *s);

/* ---- key material (PUT KEY) ---------------------------------------------------------- */

/* New keys for one key set and the DEK that encrypts them. */
struct plat_key_material {
    struct ota_key keys[OTA_GP_PUT_KEY_MAX]; /* ENC, MAC, DEK (ids 1, 2, 3) */
    size_t n_keys;
    struct ota_key dek; /* SCP02: session DEK; SCP80 to an SD: the SD's static DEK */
};

/*
 * Where PUT KEY gets key material: the key store (issue #7) slots in here;
 * key bytes never travel in task params (they would be stored with the task).
 * keys() fills *out for (sd_aid, old_kvn -> new_kvn); 0 or a negative errno
 * (-ENOENT: no such key set). plat_build wipes *out before returning.
 * cx: an OpenSSL context to use (NULL: one is made for the call).
 */
struct plat_keys_cb {
    int (*keys)(void *arg, const uint8_t *sd_aid, size_t sd_aid_len, uint8_t old_kvn,
                uint8_t new_kvn, struct plat_key_material *out, struct ota_err *err);
    /*
     * app-personalize (spec 5.8.4.6.3 step 4a): turn len octets of sensitive
     * data encrypted under the business platform's KEK kek (version kek_kvn,
     * 0 = the latest) into the same data under the DEK of sd_aid (SCP02: the
     * session DEK; SCP80: the SD's static DEK), into out (len octets). owner:
     * the task's params.owner (NULL: staff's task). 0 or a negative errno
     * (-ENOENT no such KEK, -EACCES another platform's KEK, -EINVAL unaligned).
     * NULL: such blocks fail the build (-ENOKEY).
     */
    int (*translate)(void *arg, const char *kek, uint8_t kek_kvn, const char *owner,
                     const uint8_t *sd_aid, size_t sd_aid_len, const uint8_t *in, size_t len,
                     uint8_t *out, struct ota_err *err);
    void *arg;
    struct ota_crypto *cx;
};

struct plat_model;

/*
 * Build context (every member optional). model: the SE's model, read (never
 * changed) to resume a download from its intermediate state (spec 5.8.7.2:
 * load files already on the card are not loaded again, instances already
 * installed are only made selectable) and to delete only the instance when
 * other instances share the load file (spec 5.8.4.2.1).
 */
struct plat_ctx {
    const struct plat_keys_cb *keys;
    const struct plat_model *model;
    /* For the engine adapter: the model of an SE (NULL = none known). */
    const struct plat_model *(*model_for)(void *arg, const char *seid);
    void *model_arg;
};

/*
 * Validate params (a JSON object, see docs/platform-ops.md) of op and build
 * its script into *out (which the caller zeroed or finied). Returns 0, or
 *   -EINVAL  (OTA_ERR_VALUE / _MISSING / _TAG / _LENGTH; the message names the key),
 *   -ENOTSUP (OTA_ERR_ARG: op has no platform script: push, scp80, custom),
 *   -ENOKEY  (OTA_ERR_KEY: sd-key-update without a key callback, or the callback failed;
 *            app-personalize sensitive blocks without a translate callback),
 *   the translate callback's error with OTA_ERR_KEY (-ENOENT, -EACCES, -EINVAL...),
 *   -EALREADY (OTA_ERR_STATE: download resume with nothing left to do per the model),
 *   -E2BIG   (OTA_ERR_LIMIT: more than PLAT_MAX_APDUS APDUs),
 *   -ENOMEM, or -EIO (OTA_ERR_CRYPTO) from PUT KEY. A GP field overflowing
 *   because of the params (INSTALL data over 255, a load file over 256
 *   blocks) is bad input: -EINVAL with OTA_ERR_OVERSIZE.
 * On failure out holds no APDUs.
 */
int plat_build(enum task_op op, const char *params_json, struct plat_script *out,
               struct ota_err *err) OTA_MUST_CHECK;
int plat_build_ex(enum task_op op, const char *params_json, const struct plat_ctx *ctx,
                  struct plat_script *out, struct ota_err *err) OTA_MUST_CHECK;

/*
 * The script as a TS 102 226 expanded-format Command Scripting template
 * (AA, definite length) for one SCP80 command packet; *tar gets the TAR.
 * Returns 0, or -E2BIG (OTA_ERR_OVERSIZE) when the template exceeds cap
 * (the message says to use the push + SCP02 channel), -EINVAL (empty script).
 */
int plat_build_rapdu(const struct plat_script *s, uint8_t tar[3], uint8_t *dst, size_t cap,
                     size_t *len, struct ota_err *err) OTA_MUST_CHECK;

/*
 * eng_hooks.build_script: arg is a struct plat_ctx * (or NULL). -ENOTSUP for
 * ops without a platform script; otherwise as plat_build / plat_build_rapdu.
 * The engine passes one hooks.arg to every hook: a daemon whose arg is its
 * own context calls this from a two-line wrapper with its plat_ctx.
 */
int plat_engine_build_script(void *arg, const struct eng_task_view *t, uint8_t tar[3],
                             uint8_t *script, size_t cap, size_t *len, struct ota_err *err);

/* ---- results ------------------------------------------------------------------------- */

/*
 * Outcome of a script on the card. n_done: leading APDUs that answered
 * 9000 / 61xx (== script n when the whole script ran). rapdus: the
 * responses in script order (info-sync reads GET STATUS / GET DATA data from
 * them; may be NULL for other ops). Borrowed.
 */
struct plat_result {
    size_t n_done;
    const struct ota_rapdu_rapdu *rapdus;
    size_t n_rapdus;
};

/*
 * Read a PoR's expanded response (TS 102 226 5.2) for script s: fills r
 * (rapdus borrowed from data, stored in rapdus[0..cap)). Returns 0 or the
 * parser's error.
 */
int plat_result_from_exp(const struct plat_script *s, const uint8_t *data, size_t len,
                         struct ota_rapdu_rapdu *rapdus, size_t cap, struct plat_result *r,
                         struct ota_err *err) OTA_MUST_CHECK;

/* ---- the per-SE model (spec 5.8.7) ----------------------------------------------------- */

/* Spec 5.8.7.2 application states and the GP life-cycle states they stand for. */
enum plat_app_state {
    PLAT_APP_READY = 0,        /* not on the card (nothing, or only extensions) */
    PLAT_APP_LOADED = 1,       /* load file(s) on the card, no instance (GP ELF LOADED 01) */
    PLAT_APP_INSTANTIATED = 2, /* instance created, not personalized (GP INSTALLED 03 or
                                  SELECTABLE 07 before personalization) */
    PLAT_APP_PERSONALIZED = 3, /* personalized, activation awaited (GP PERSONALIZED 0F) */
    PLAT_APP_USABLE = 4,       /* in use (GP SELECTABLE 07 / PERSONALIZED 0F) */
    PLAT_APP_LOCKED = 5,       /* locked (GP state | 80) */
    PLAT_APP_STATE__COUNT
};

enum plat_app_event {
    PLAT_EV_LOAD = 0,            /* its load file(s) completed */
    PLAT_EV_INSTALL = 1,         /* INSTALL [for install] */
    PLAT_EV_MAKE_SELECTABLE = 2, /* INSTALL [for make selectable] (or the combined install) */
    PLAT_EV_PERSONALIZE = 3,     /* STORE DATA ended (last block) */
    PLAT_EV_SUBSCRIBE = 4,       /* activation notice of the business platform (no SE command) */
    PLAT_EV_UNSUBSCRIBE = 5,     /* unsubscribe / activation timeout (no SE command) */
    PLAT_EV_LOCK = 6,
    PLAT_EV_UNLOCK = 7,
    PLAT_EV_DELETE_INSTANCE = 8, /* instance deleted, load file kept */
    PLAT_EV_DELETE = 9,          /* instance and load file deleted */
    PLAT_APP_EVENT__COUNT
};

const char *plat_app_state_name(enum plat_app_state s);
const char *plat_app_event_name(enum plat_app_event e);
int plat_app_state_parse(const char *name, enum plat_app_state *out);

/* The transition table: 0 and *to, or -EPERM (illegal: nothing may change). Can't fail otherwise.
 */
int plat_app_next(enum plat_app_state from, enum plat_app_event ev, enum plat_app_state *to);

#define PLAT_MODEL_MAX_APPS 32
#define PLAT_MODEL_MAX_ELFS 32
#define PLAT_MODEL_MAX_SDS 16

struct plat_model_app {
    struct plat_aid aid; /* the main module's instance AID = the application AID (5.4.2) */
    struct plat_aid elf; /* its load file */
    struct plat_aid sd;  /* associated SD (empty = ISD) */
    enum plat_app_state state;
    uint8_t lcs;          /* last GP life-cycle state seen or implied */
    uint32_t nv_reserved; /* instance space recorded for it (install params C8), octets */
};

struct plat_model_elf {
    struct plat_aid aid;
    bool partial;  /* LOAD started but not finished (download broke midway) */
    uint32_t size; /* octets of load file data */
};

struct plat_model_sd {
    struct plat_aid aid;
    uint8_t lcs;
    uint8_t kvn; /* last key version put (0 = initial keys) */
};

/*
 * One SE's model. Embedded (no heap): about 3 KiB. Space figures are what the
 * card last reported (GET DATA) minus what the platform committed since;
 * spec 5.8.7.1 note 3: the card's figure wins when it is lower.
 */
struct plat_model {
    bool space_known;
    uint32_t free_nv, free_v;
    uint32_t reserved_nv, reserved_v; /* held by the running operation */
    size_t n_apps, n_elfs, n_sds;
    struct plat_model_app apps[PLAT_MODEL_MAX_APPS];
    struct plat_model_elf elfs[PLAT_MODEL_MAX_ELFS];
    struct plat_model_sd sds[PLAT_MODEL_MAX_SDS];
};

/* An empty model: nothing known. Can't fail. */
void plat_model_init(struct plat_model *m);

/* Set the free space as read from the card (GET DATA). Clears nothing else. */
void plat_model_set_space(struct plat_model *m, uint32_t free_nv, uint32_t free_v);

/* The app entry with this AID, or NULL. */
const struct plat_model_app *plat_model_app(const struct plat_model *m, const uint8_t *aid,
                                            size_t aid_len);
const struct plat_model_elf *plat_model_elf(const struct plat_model *m, const uint8_t *aid,
                                            size_t aid_len);
const struct plat_model_sd *plat_model_sd(const struct plat_model *m, const uint8_t *aid,
                                          size_t aid_len);

/*
 * Apply one event to an app (platform-only events such as subscribe, or
 * tests). -ENOENT (no such app), -EPERM (OTA_ERR_STATE: illegal: unchanged).
 */
int plat_model_event(struct plat_model *m, const uint8_t *aid, size_t aid_len,
                     enum plat_app_event ev, struct ota_err *err) OTA_MUST_CHECK;

/*
 * Before an operation runs (spec 5.8.7.1): check that its events are legal
 * for the apps it touches (lock needs Usable, an SD to delete must be
 * empty...) and reserve the space a download needs (sum of its load files
 * not yet on the card plus the instances' C8/C7 figures) against free space
 * when known. At most one reservation at a time (spec 5.8.8: one active task
 * per SE). Returns 0, -EINVAL (bad params), -EPERM (OTA_ERR_STATE),
 * -ENOSPC (OTA_ERR_NOSPACE: not enough free space), -EBUSY (a reservation
 * is held). Unchanged on failure.
 */
int plat_model_begin(struct plat_model *m, enum task_op op, const char *params_json,
                     struct ota_err *err) OTA_MUST_CHECK;

/*
 * Update the model from a task's outcome: the steps that completed (r->n_done
 * of the script that plat_build_ex(op, params, model) gives now; call it
 * before any other change to the model) become events, committed space
 * leaves free space, the reservation is released. A download that broke
 * midway leaves its app Loaded / Instantiated or its load file partial, which
 * the next download resumes. Info-sync results rebuild the model as
 * plat_model_from_status(). Returns 0, -EINVAL, -EBADMSG (an info-sync
 * response did not parse), -ENOSPC (a model table is full), -EPERM
 * (OTA_ERR_STATE: the card did something the model thought illegal: the
 * model is out of step, run info-sync; the other steps were applied). The
 * reservation is released in every case.
 */
int plat_model_apply_result(struct plat_model *m, enum task_op op, const char *params_json,
                            const struct plat_result *r, struct ota_err *err) OTA_MUST_CHECK;

/* Give up a reservation (task cancelled before it ran). Can't fail. */
void plat_model_release(struct plat_model *m);

/*
 * What GET STATUS (and GET DATA) reported. apps: P1 40 entries (apps and
 * SSDs), elfs: P1 20 / 10 entries; has_* false when that part was not read
 * (then the model keeps what it knew for it). partial_*: the entries are only
 * part of the list (answered 6310, or a "next occurrence" answer): they are
 * merged in and nothing is taken as gone.
 */
struct plat_status {
    bool has_apps, has_elfs, has_space;
    bool partial_apps, partial_elfs;
    const struct ota_gp_status_entry *apps;
    size_t n_apps;
    const struct ota_gp_status_entry *elfs;
    size_t n_elfs;
    uint32_t free_nv, free_v;
};

/*
 * Rebuild from the card (info sync): the card is the truth. Entries with the
 * SD privilege become SDs; applications map their GP state to 5.8.7.2
 * (03 Instantiated, 07 Usable, 0F Personalized unless the model already
 * had them Usable, b8 Locked); known apps whose instance is gone become
 * Loaded (load file present) or Ready; load files absent are dropped.
 * This is an observation, not an event: the transition table does not apply.
 * Returns 0, -ENOSPC (OTA_ERR_LIMIT: more entries than the model holds; unchanged).
 */
int plat_model_from_status(struct plat_model *m, const struct plat_status *st,
                           struct ota_err *err) OTA_MUST_CHECK;

/*
 * Parse GET DATA FF21 (extended card resources, TS 102 226 8.2.1.7 as the
 * simulator answers it: 81 apps, 82 free NV, 83 free V). 0 or -EBADMSG.
 */
int plat_parse_space(const uint8_t *p, size_t len, uint32_t *free_nv, uint32_t *free_v,
                     struct ota_err *err) OTA_MUST_CHECK;

/*
 * JSON form (for the daemon's store and the SE query API):
 *   {"free_nv":n|null,"free_v":n|null,"reserved_nv":n,"reserved_v":n,
 *    "apps":[{"aid","elf","sd","state","lcs","nv"}],"elfs":[{"aid","partial","size"}],
 *    "sds":[{"aid","lcs","kvn"}]}
 * plat_model_to_json returns a new reference (NULL on out of memory).
 * plat_model_from_json fills *m from such an object; -EINVAL with the key named; m unchanged.
 */
json_t *plat_model_to_json(const struct plat_model *m);
int plat_model_from_json(const json_t *j, struct plat_model *m, struct ota_err *err) OTA_MUST_CHECK;
