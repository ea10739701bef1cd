/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The task model: what a task is doing (state), why it failed (reason), what
 * it does (operation) and how it reaches the SE (channel), with the one
 * explicit table of legal state changes. Pure: no I/O, no allocation.
 *
 *   queued ──▶ dispatched ──▶ submitted ──▶ delivered ──▶ done
 *     ▲            │              │             │
 *     └──── retry ─┴──────────────┴─────────────┘
 *   every non-final state ──▶ failed | expired | cancelled
 *   submitted ──▶ done        (a verified PoR may overtake its DLR)
 *
 * "Active" (dispatched, submitted, delivered) is what spec 5.8.8 calls the
 * SE's one data link: at most one task per SE is active. Final states
 * (done, failed, expired, cancelled) never change again.
 *
 * Values of every enum here are stored in the database and counted in
 * metrics: never renumber, only append (and add the name).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum task_state {
    TASK_QUEUED = 0,     /* in its SE's FIFO, waiting to be due and for the SE to be idle */
    TASK_DISPATCHED = 1, /* picked: counter reserved durably, parts handed to the bearer */
    TASK_SUBMITTED = 2,  /* every part accepted by the network (message ids known) */
    TASK_DELIVERED = 3,  /* every part reported delivered; waiting for PoR / wallet pull */
    TASK_DONE = 4,       /* the operation completed (verified PoR, wallet session, or DLR) */
    TASK_FAILED = 5,     /* gave up: the reason says why */
    TASK_EXPIRED = 6,    /* the deadline passed before it completed */
    TASK_CANCELLED = 7,  /* cancelled while queued, or terminated while active */
    TASK_STATE__COUNT
};

/*
 * Why a task failed, expired, was cancelled or was retried. One documented
 * list (docs/task-engine.md), counted per reason (spec 5.8.6 statistics).
 */
enum task_reason {
    TASK_R_NONE = 0,
    TASK_R_BEARER_REJECTED = 1,   /* the network refused a part for good (final submit result) */
    TASK_R_BEARER_TIMEOUT = 2,    /* a part was not accepted within its hold time (flow control,
                                     links down) */
    TASK_R_DLR_FAILED = 3,        /* a delivery report said undeliverable / failed */
    TASK_R_DLR_EXPIRED = 4,       /* a delivery report said the SMSC's validity ran out */
    TASK_R_DLR_REJECTED = 5,      /* a delivery report said rejected */
    TASK_R_DLR_MISSING = 6,       /* no final delivery report within dlr_timeout */
    TASK_R_POR_MISSING = 7,       /* no PoR within por_timeout */
    TASK_R_POR_BAD_CC = 8,        /* a PoR whose checksum / deciphering failed (never trusted) */
    TASK_R_POR_STALE_COUNTER = 9, /* the card answered counter low/high/blocked (status 02-04) */
    TASK_R_POR_STATUS = 10,       /* another PoR error status (TAR unknown, memory, security...) */
    TASK_R_CARD_SW = 11,          /* a response APDU's status word reported an error */
    TASK_R_NOT_PULLED = 12,       /* the wallet client never called back within pull_timeout */
    TASK_R_DEADLINE = 13,         /* the deadline passed */
    TASK_R_CANCELLED = 14,        /* cancelled by an operator or the platform while queued */
    TASK_R_TERMINATED = 15,       /* the active task was terminated by an operator */
    TASK_R_NO_KEYS = 16,          /* no SCP80 keys for the SE / TAR */
    TASK_R_SE_UNKNOWN = 17,       /* the SE is not registered (or has no MSISDN) */
    TASK_R_BUILD = 18,            /* the script could not be built (too long, bad parameters) */
    TASK_R_UNSUPPORTED = 19,      /* the operation cannot run on this channel / build */
    TASK_R_STEP_FAILED = 20,      /* an earlier step of its composite job failed */
    TASK_R_CLIENT = 21,           /* the wallet session failed (SCP02, client error) */
    TASK_R_POR_MISMATCH = 22,     /* a PoR for the SE whose TAR / counter fits no sent packet */
    TASK_R_JOB_CANCELLED = 23,    /* its job was cancelled */
    TASK_REASON__COUNT
};

/* What a task does. SCP80/PUSH run in the engine; the platform operations are
 * turned into scripts by the daemon's builder hook (issue #6). */
enum task_op {
    TASK_OP_PUSH = 0,  /* wallet wake-up push SMS; the work runs over the pull API */
    TASK_OP_SCP80 = 1, /* raw remote-APDU script to a TAR, as SCP80 packets */
    TASK_OP_APP_DOWNLOAD = 2,
    TASK_OP_APP_DELETE = 3,
    TASK_OP_APP_LOCK = 4,
    TASK_OP_APP_UNLOCK = 5,
    TASK_OP_APP_PERSONALIZE = 6,
    TASK_OP_SD_CREATE = 7,
    TASK_OP_SD_DELETE = 8,
    TASK_OP_SD_KEY_UPDATE = 9,
    TASK_OP_INFO_SYNC = 10,
    TASK_OP_CUSTOM = 11,
    /*
     * ITU-T X.1127 anti-theft (gateway/api_antitheft.c): an SCP80 script
     * as op scp80 takes it, sent with a minimum security no key set can
     * lower (eng_spi_antitheft), at urgent priority, also to loss-listed SEs.
     */
    TASK_OP_AT_LOCK = 12,
    TASK_OP_AT_UNLOCK = 13,
    TASK_OP_AT_WIPE = 14,
    TASK_OP__COUNT
};

enum task_channel {
    TASK_CH_SCP80 = 0, /* secured packets straight to the card; PoR by MO SMS */
    TASK_CH_PUSH = 1,  /* push SMS, then the wallet pulls and relays SCP02 */
    TASK_CH__COUNT
};

#define TASK_PRIO_MAX 3 /* 0 bulk .. 3 urgent (anti-theft); urgent is served strictly first */

/* Names for logs, JSON and metrics ("queued", "dlr-failed", "app-lock", "scp80"); never NULL. */
const char *task_state_name(enum task_state s);
const char *task_reason_name(enum task_reason r);
const char *task_op_name(enum task_op op);
const char *task_channel_name(enum task_channel ch);

/* Parse a name back (JSON input); 0 or -EINVAL. */
int task_state_parse(const char *name, enum task_state *out);
int task_op_parse(const char *name, enum task_op *out);
int task_channel_parse(const char *name, enum task_channel *out);

static inline bool task_state_final(enum task_state s)
{
    return s >= TASK_DONE && s < TASK_STATE__COUNT;
}

/* Anti-theft operations (lock, unlock, wipe): the engine and the APIs treat them apart. */
static inline bool task_op_antitheft(enum task_op op)
{
    return op == TASK_OP_AT_LOCK || op == TASK_OP_AT_UNLOCK || op == TASK_OP_AT_WIPE;
}

static inline bool task_state_active(enum task_state s)
{
    return s == TASK_DISPATCHED || s == TASK_SUBMITTED || s == TASK_DELIVERED;
}

/*
 * Whether from -> to is in the transition table. Everything else is
 * illegal: the engine refuses it and logs it; nothing changes.
 */
bool task_transition_ok(enum task_state from, enum task_state to);
