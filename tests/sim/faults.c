/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fault plan parsing and drawing, the deterministic generator and the rate
 * bucket the simulator's network roles share (see faults.h).
 */
#include "tests/sim/faults.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum fault_key {
    FK_REJECT = 0,
    FK_THROTTLE = 1,
    FK_DLR_LOST = 2,
    FK_DLR_LATE_MS = 3,
    FK_DLR_FAIL = 4,
    FK_CARD_ABSENT = 5,
    FK_POR_LOST = 6,
    FK_POR_CORRUPT = 7,
    FK_DROP_EVERY_S = 8,
    FK__COUNT
};

static const struct fault_key_desc {
    const char *name;
    bool is_prob; /* probability in [0, 1], else an integer */
    uint32_t max; /* integer keys: inclusive limit */
} fault_keys[FK__COUNT] = {
    [FK_REJECT] = {"reject", true, 0},
    [FK_THROTTLE] = {"throttle", true, 0},
    [FK_DLR_LOST] = {"dlr_lost", true, 0},
    [FK_DLR_LATE_MS] = {"dlr_late_ms", false, SIM_FAULT_DLR_LATE_MAX_MS},
    [FK_DLR_FAIL] = {"dlr_fail", true, 0},
    [FK_CARD_ABSENT] = {"card_absent", true, 0},
    [FK_POR_LOST] = {"por_lost", true, 0},
    [FK_POR_CORRUPT] = {"por_corrupt", true, 0},
    [FK_DROP_EVERY_S] = {"drop_every_s", false, SIM_FAULT_DROP_MAX_S},
};

static double *fault_prob(struct sim_faults *f, enum fault_key k)
{
    switch (k) {
    case FK_REJECT:
        return &f->reject;
    case FK_THROTTLE:
        return &f->throttle;
    case FK_DLR_LOST:
        return &f->dlr_lost;
    case FK_DLR_FAIL:
        return &f->dlr_fail;
    case FK_CARD_ABSENT:
        return &f->card_absent;
    case FK_POR_LOST:
        return &f->por_lost;
    case FK_POR_CORRUPT:
        return &f->por_corrupt;
    default:
        return NULL;
    }
}

static int parse_one(struct sim_faults *f, const char *item, size_t len, uint32_t *seen,
                     struct ota_err *err)
{
    const char *eq = memchr(item, '=', len);
    if (eq == NULL) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "fault '%.*s': expected key=value", (int)len,
                        item);
    }
    size_t klen = (size_t)(eq - item);
    size_t vlen = len - klen - 1;
    char val[32];
    if (vlen == 0 || vlen >= sizeof(val)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "fault '%.*s': bad value length", (int)klen,
                        item);
    }
    memcpy(val, eq + 1, vlen);
    val[vlen] = '\0';

    for (unsigned k = 0; k < FK__COUNT; k++) {
        const struct fault_key_desc *d = &fault_keys[k];
        if (strlen(d->name) != klen || memcmp(d->name, item, klen) != 0) {
            continue;
        }
        if (*seen & (1u << k)) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "fault '%s' given twice", d->name);
        }
        *seen |= 1u << k;
        char *end = NULL;
        if (d->is_prob) {
            double p = strtod(val, &end);
            if (end == val || *end != '\0' || !isfinite(p) || p < 0.0 || p > 1.0) {
                return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                                "fault '%s': '%s' is not a probability in [0,1]", d->name, val);
            }
            *fault_prob(f, (enum fault_key)k) = p;
            return 0;
        }
        if (val[0] < '0' || val[0] > '9') {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "fault '%s': '%s' is not an integer",
                            d->name, val);
        }
        unsigned long v = strtoul(val, &end, 10);
        if (*end != '\0' || v > d->max) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                            "fault '%s': '%s' is not an integer in [0,%u]", d->name, val, d->max);
        }
        if (k == FK_DLR_LATE_MS) {
            f->dlr_late_ms = (uint32_t)v;
        } else {
            f->drop_every_s = (uint32_t)v;
        }
        return 0;
    }
    return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                    "unknown fault '%.*s' (known: reject, throttle, dlr_lost, dlr_late_ms, "
                    "dlr_fail, card_absent, por_lost, por_corrupt, drop_every_s)",
                    (int)klen, item);
}

int sim_faults_parse(const char *spec, struct sim_faults *out, struct ota_err *err)
{
    struct sim_faults f;
    memset(&f, 0, sizeof(f));
    uint32_t seen = 0;
    if (spec == NULL || out == NULL) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "faults: NULL argument");
    }
    const char *p = spec;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == 0) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "faults: empty item in '%s'", spec);
        }
        int rc = parse_one(&f, p, len, &seen, err);
        if (rc < 0) {
            return rc;
        }
        p += len;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "faults: trailing ',' in '%s'", spec);
            }
        }
    }
    *out = f;
    return 0;
}

void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t sim_rng_next(struct sim_rng *r)
{
    /* splitmix64: one add and three mixing steps; passes BigCrush, plenty here. */
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static bool draw(struct sim_rng *r, double p)
{
    /* 53 random bits as a double in [0, 1). */
    double u = (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return u < p;
}

void sim_faults_draw(const struct sim_faults *f, struct sim_rng *r, struct sim_fate *out)
{
    memset(out, 0, sizeof(*out));
    out->throttle = draw(r, f->throttle);
    out->reject = draw(r, f->reject);
    out->card_absent = draw(r, f->card_absent);
    out->dlr_lost = draw(r, f->dlr_lost);
    out->dlr_fail = draw(r, f->dlr_fail);
    out->por_lost = draw(r, f->por_lost);
    out->por_corrupt = draw(r, f->por_corrupt);
    out->dlr_delay_ms = f->dlr_late_ms;
    out->pick = sim_rng_next(r);
}

void sim_fate_corrupt(const struct sim_fate *fate, struct sim_mo *mo)
{
    size_t start = 0;
    if (mo->len == 0) {
        return;
    }
    if (mo->udhi && (size_t)mo->ud[0] + 1 < mo->len) {
        start = (size_t)mo->ud[0] + 1; /* UDHL octet and the header it counts */
    }
    size_t span = mo->len - start;
    mo->ud[start + (size_t)(fate->pick % span)] ^= 0xFF;
}

void sim_bucket_init(struct sim_bucket *b, uint32_t rate_per_s, double now_s)
{
    b->rate_per_s = rate_per_s;
    b->tokens = rate_per_s;
    b->last_s = now_s;
}

bool sim_bucket_take(struct sim_bucket *b, double now_s)
{
    if (b->rate_per_s == 0) {
        return true;
    }
    double burst = b->rate_per_s;
    if (now_s > b->last_s) {
        b->tokens += (now_s - b->last_s) * b->rate_per_s;
        if (b->tokens > burst) {
            b->tokens = burst;
        }
    }
    b->last_s = now_s;
    if (b->tokens < 1.0) {
        return false;
    }
    b->tokens -= 1.0;
    return true;
}
