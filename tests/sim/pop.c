/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's SE population: loading it from a JSON Lines file (one SE
 * per line, format in sim.h), generating N SEs whose identity and keys are
 * computed from (seed, index) with AES-CMAC (NIST SP 800-38B) so that ten
 * million cost no memory until touched, MSISDN lookup, and the per-SE state
 * (SCP80 counters of TS 102 225 5.1.1, GP card image, last push) created on
 * first touch in an open-addressing hash map keyed by SE index.
 *
 * Memory: a file SE costs sizeof(struct sim_se_def) (about 1.6 KiB) plus 8
 * octets of MSISDN index; a generated SE costs nothing until touched. A
 * touched SE costs sizeof(struct sim_se_state) (80 octets: a push) plus at
 * most 23 octets of hash slot (load factor kept under 0.7, the table
 * doubles); its first SCP80 command adds sizeof(struct sim_se_ota) (about
 * 2.4 KiB: counters and the GP card image).
 */
#include "tests/sim/sim_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <osmocom/core/utils.h>
#include <openssl/crypto.h>

#define POP_LINE_MAX 65536
#define POP_FILE_MAX 1000000u
/* SEIDs of generated SEs are "SE" + 14 decimal digits: 16 octets. */
#define POP_GEN_MAX 100000000000000ull
#define POP_DEFAULT_FREE_NV 65536u
#define POP_GEN_SCP80_KVN 1
#define POP_GEN_SCP02_KVN 0x20

/* Reassembly bounds of one population (concatenated SCP80 commands in flight). */
#define POP_REASM_SETS 10000
#define POP_REASM_PARTS 40000
#define POP_REASM_TIMEOUT_MS 120000

static const uint8_t tar_isd[3] = {0x00, 0x00, 0x00};
static const uint8_t tar_rfm[3] = {0xB0, 0x00, 0x00};

void sim_se_def_wipe(struct sim_se_def *d)
{
    if (d) {
        OPENSSL_cleanse(d, sizeof(*d));
    }
}

/* ---- common construction ---- */

static int pop_new(struct sim_pop **out, struct ota_err *err)
{
    struct ota_reasm_limits lim = {POP_REASM_SETS, POP_REASM_PARTS, POP_REASM_TIMEOUT_MS};
    struct sim_pop *p = calloc(1, sizeof(*p));
    int rc;

    if (!p) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "population: out of memory");
    }
    rc = ota_crypto_new(&p->crypto, err);
    if (rc == 0) {
        rc = ota_reasm_new(&p->reasm, &lim, err);
    }
    if (rc) {
        sim_pop_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void sim_pop_free(struct sim_pop *p)
{
    if (!p) {
        return;
    }
    for (size_t i = 0; i < p->states_cap; i++) {
        if (p->states[i]) {
            free(p->states[i]->ota);
            free(p->states[i]);
        }
    }
    free(p->states);
    if (p->defs) {
        OPENSSL_cleanse(p->defs, (size_t)p->n_defs * sizeof(*p->defs));
        free(p->defs);
    }
    free(p->msisdn_tab);
    ota_key_wipe(&p->seed);
    ota_reasm_free(p->reasm);
    ota_crypto_free(p->crypto);
    free(p);
}

uint64_t sim_pop_size(const struct sim_pop *p)
{
    return p->generated ? p->n_gen : p->n_defs;
}

void sim_pop_counts(const struct sim_pop *p, struct sim_counts *out)
{
    *out = p->counts;
}

size_t sim_pop_n_touched(const struct sim_pop *p)
{
    return p->n_states;
}

/* ---- MSISDN index (file populations) ---- */

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Skip an optional '+' so "+8613..." and "8613..." name the same SE. */
static const char *msisdn_norm(const char *m)
{
    return m[0] == '+' ? m + 1 : m;
}

static int msisdn_index_build(struct sim_pop *p, struct ota_err *err)
{
    size_t cap = 16;

    while (cap < p->n_defs * 2) {
        cap *= 2;
    }
    p->msisdn_tab = calloc(cap, sizeof(*p->msisdn_tab));
    if (!p->msisdn_tab) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "population: out of memory");
    }
    p->msisdn_cap = cap;
    for (uint64_t i = 0; i < p->n_defs; i++) {
        size_t s = (size_t)(str_hash(p->defs[i].msisdn) & (cap - 1));

        while (p->msisdn_tab[s]) {
            if (strcmp(p->defs[p->msisdn_tab[s] - 1].msisdn, p->defs[i].msisdn) == 0) {
                return ota_fail(err, -EINVAL, OTA_ERR_DUPLICATE,
                                "SE %" PRIu64 " (1-based, blank lines not counted): msisdn %s "
                                "already used by SE %u",
                                i + 1, p->defs[i].msisdn, p->msisdn_tab[s]);
            }
            s = (s + 1) & (cap - 1);
        }
        p->msisdn_tab[s] = (uint32_t)(i + 1);
    }
    return 0;
}

static bool parse_u64_digits(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
        if (v > (UINT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

int sim_pop_find(const struct sim_pop *p, const char *msisdn, uint64_t *idx)
{
    const char *m;

    if (!msisdn) {
        return -ENOENT;
    }
    m = msisdn_norm(msisdn);
    if (p->generated) {
        uint64_t v;

        if (!parse_u64_digits(m, &v) || v < p->msisdn_base || v - p->msisdn_base >= p->n_gen) {
            return -ENOENT;
        }
        *idx = v - p->msisdn_base;
        return 0;
    }
    if (!p->msisdn_tab) {
        return -ENOENT;
    }
    for (size_t s = (size_t)(str_hash(m) & (p->msisdn_cap - 1)); p->msisdn_tab[s];
         s = (s + 1) & (p->msisdn_cap - 1)) {
        if (strcmp(p->defs[p->msisdn_tab[s] - 1].msisdn, m) == 0) {
            *idx = p->msisdn_tab[s] - 1;
            return 0;
        }
    }
    return -ENOENT;
}

/* ---- generated SEs ---- */

/* CMAC(seed, label(3) | i as 8 octets BE): 16 octets. */
static int gen_key(const struct sim_pop *p, const char label[3], uint64_t i, uint8_t out[16],
                   struct ota_err *err)
{
    uint8_t in[11];
    size_t n = 0;
    int rc;

    memcpy(in, label, 3);
    for (int b = 0; b < 8; b++) {
        in[3 + b] = (uint8_t)(i >> (56 - 8 * b));
    }
    rc = ota_crypto_cmac(p->crypto, &p->seed, in, sizeof(in), out, &n, err);
    if (rc == 0 && n != 16) {
        rc = ota_fail(err, -EIO, OTA_ERR_CRYPTO, "population: CMAC of %zu octets", n);
    }
    return rc;
}

static int gen_def(const struct sim_pop *p, uint64_t i, struct sim_se_def *d, struct ota_err *err)
{
    uint8_t kic[16], kid[16], enc[16], mac[16], dek[16];
    char seid[SIM_SEID_MAX + 1];
    int rc;

    memset(d, 0, sizeof(*d));
    rc = gen_key(p, "KIC", i, kic, err);
    if (rc == 0) {
        rc = gen_key(p, "KID", i, kid, err);
    }
    if (rc == 0) {
        rc = gen_key(p, "ENC", i, enc, err);
    }
    if (rc == 0) {
        rc = gen_key(p, "MAC", i, mac, err);
    }
    if (rc == 0) {
        rc = gen_key(p, "DEK", i, dek, err);
    }
    if (rc == 0) {
        rc = ota_key_set(&d->scp80[0].kic, OTA_CIPHER_AES, kic, sizeof(kic), err);
    }
    if (rc == 0) {
        rc = ota_key_set(&d->scp80[0].kid, OTA_CIPHER_AES, kid, sizeof(kid), err);
    }
    if (rc == 0) {
        rc = ota_scp02_keys_set(&d->scp02[0].keys, enc, sizeof(enc), mac, sizeof(mac), dek,
                                sizeof(dek), POP_GEN_SCP02_KVN, err);
    }
    OPENSSL_cleanse(kic, sizeof(kic));
    OPENSSL_cleanse(kid, sizeof(kid));
    OPENSSL_cleanse(enc, sizeof(enc));
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(dek, sizeof(dek));
    if (rc) {
        sim_se_def_wipe(d);
        return rc;
    }
    snprintf(d->msisdn, sizeof(d->msisdn), "%" PRIu64, p->msisdn_base + i);
    snprintf(seid, sizeof(seid), "SE%014" PRIu64, i);
    memcpy(d->seid, seid, 16);
    d->seid_len = 16;
    d->scp80[0].kvn = POP_GEN_SCP80_KVN;
    memcpy(d->scp80[0].tar, tar_isd, 3);
    d->scp80[1] = d->scp80[0];
    memcpy(d->scp80[1].tar, tar_rfm, 3);
    d->cntr_slot[0] = 0;
    d->cntr_slot[1] = 0; /* one key set serves both TARs: one counter */
    d->n_scp80 = 2;
    d->scp02[0].kvn = POP_GEN_SCP02_KVN;
    d->n_scp02 = 1;
    d->free_nv = POP_DEFAULT_FREE_NV;
    return 0;
}

int sim_pop_generate(uint64_t n, uint64_t msisdn_base, const uint8_t seed[16], struct sim_pop **out,
                     struct ota_err *err)
{
    struct sim_pop *p = NULL;
    int rc;

    if (n == 0 || n > POP_GEN_MAX || !seed || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "generate: n %" PRIu64 " not in 1..%llu", n,
                        POP_GEN_MAX);
    }
    if (msisdn_base > UINT64_MAX - n) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "generate: msisdn base + n overflows");
    }
    rc = pop_new(&p, err);
    if (rc) {
        return rc;
    }
    rc = ota_key_set(&p->seed, OTA_CIPHER_AES, seed, 16, err);
    if (rc) {
        sim_pop_free(p);
        return rc;
    }
    p->generated = true;
    p->n_gen = n;
    p->msisdn_base = msisdn_base;
    *out = p;
    return 0;
}

int sim_pop_def(const struct sim_pop *p, uint64_t i, struct sim_se_def *out, struct ota_err *err)
{
    if (i >= sim_pop_size(p)) {
        return ota_fail(err, -ENOENT, OTA_ERR_ARG, "population: SE %" PRIu64 " of %" PRIu64, i,
                        sim_pop_size(p));
    }
    if (p->generated) {
        return gen_def(p, i, out, err);
    }
    *out = p->defs[i];
    return 0;
}

/* ---- identity and keys ---- */

int sim_pop_identity(const struct sim_pop *p, uint64_t i, char msisdn[SIM_MSISDN_MAX + 1],
                     uint8_t seid[SIM_SEID_MAX], size_t *seid_len)
{
    char m[SIM_MSISDN_MAX + 1];

    if (i >= sim_pop_size(p)) {
        return -ENOENT;
    }
    if (p->generated) {
        char s[SIM_SEID_MAX + 1];

        snprintf(m, sizeof(m), "%" PRIu64, p->msisdn_base + i);
        snprintf(s, sizeof(s), "SE%014" PRIu64, i);
        memcpy(msisdn, m, sizeof(m));
        memcpy(seid, s, 16);
        *seid_len = 16;
        return 0;
    }
    memcpy(msisdn, p->defs[i].msisdn, sizeof(p->defs[i].msisdn));
    memcpy(seid, p->defs[i].seid, p->defs[i].seid_len);
    *seid_len = p->defs[i].seid_len;
    return 0;
}

int sim_pop_scp80_keys(const struct sim_pop *p, uint64_t i, const uint8_t tar[3],
                       struct sim_scp80_keyset *out, struct ota_err *err)
{
    struct sim_se_def d;
    int rc = sim_pop_def(p, i, &d, err);

    if (rc) {
        return rc;
    }
    rc = ota_fail(err, -ENOENT, OTA_ERR_TAR, "population: SE %" PRIu64 " has no TAR %02X%02X%02X",
                  i, tar[0], tar[1], tar[2]);
    for (size_t k = 0; k < d.n_scp80; k++) {
        if (memcmp(d.scp80[k].tar, tar, 3) == 0) {
            *out = d.scp80[k];
            ota_err_clear(err);
            rc = 0;
            break;
        }
    }
    sim_se_def_wipe(&d);
    return rc;
}

int sim_pop_scp02_keys(const struct sim_pop *p, uint64_t i, uint8_t kvn,
                       struct sim_scp02_keyset *out, struct ota_err *err)
{
    struct sim_se_def d;
    int rc = sim_pop_def(p, i, &d, err);

    if (rc) {
        return rc;
    }
    rc = ota_fail(err, -ENOENT, OTA_ERR_KEY, "population: SE %" PRIu64 " has no SCP02 KVN %02X", i,
                  kvn);
    for (size_t k = 0; k < d.n_scp02; k++) {
        if (kvn == 0 || d.scp02[k].kvn == kvn) {
            *out = d.scp02[k];
            ota_err_clear(err);
            rc = 0;
            break;
        }
    }
    sim_se_def_wipe(&d);
    return rc;
}

/* ---- lazy per-SE state ---- */

static size_t state_slot(uint64_t idx, size_t cap)
{
    return (size_t)((idx * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static int state_grow(struct sim_pop *p, struct ota_err *err)
{
    size_t cap = p->states_cap ? p->states_cap * 2 : 64;
    struct sim_se_state **t = calloc(cap, sizeof(*t));

    if (!t) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "population: out of memory");
    }
    for (size_t i = 0; i < p->states_cap; i++) {
        struct sim_se_state *s = p->states[i];

        if (s) {
            size_t k = state_slot(s->idx, cap);

            while (t[k]) {
                k = (k + 1) & (cap - 1);
            }
            t[k] = s;
        }
    }
    free(p->states);
    p->states = t;
    p->states_cap = cap;
    return 0;
}

static struct sim_se_state *state_lookup(const struct sim_pop *p, uint64_t i, size_t *slot)
{
    if (p->states_cap == 0) {
        return NULL;
    }
    for (size_t k = state_slot(i, p->states_cap);; k = (k + 1) & (p->states_cap - 1)) {
        if (!p->states[k]) {
            *slot = k;
            return NULL;
        }
        if (p->states[k]->idx == i) {
            *slot = k;
            return p->states[k];
        }
    }
}

int sim_pop_state(struct sim_pop *p, uint64_t i, struct sim_se_state **out, struct ota_err *err)
{
    struct sim_se_state *s;
    size_t slot = 0;
    int rc;

    s = state_lookup(p, i, &slot);
    if (s) {
        *out = s;
        return 0;
    }
    if ((p->n_states + 1) * 10 > p->states_cap * 7) {
        rc = state_grow(p, err);
        if (rc) {
            return rc;
        }
        (void)state_lookup(p, i, &slot);
    }
    if (i >= sim_pop_size(p)) {
        return ota_fail(err, -ENOENT, OTA_ERR_ARG, "population: SE %" PRIu64 " of %" PRIu64, i,
                        sim_pop_size(p));
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "population: out of memory");
    }
    s->idx = i;
    p->states[slot] = s;
    p->n_states++;
    *out = s;
    return 0;
}

int sim_pop_ota(struct sim_pop *p, struct sim_se_state *s, struct ota_err *err)
{
    struct sim_se_ota *o;
    struct sim_se_def d;
    int rc;

    if (s->ota) {
        return 0;
    }
    rc = sim_pop_def(p, s->idx, &d, err);
    if (rc) {
        return rc;
    }
    o = calloc(1, sizeof(*o));
    if (!o) {
        sim_se_def_wipe(&d);
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "population: out of memory");
    }
    sim_gp_init(&o->card, d.free_nv);
    for (size_t k = 0; k < d.n_apps; k++) {
        /* checked when the file was loaded */
        (void)sim_gp_add_app(&o->card, d.apps[k].aid.b, d.apps[k].aid.len, d.apps[k].lcs,
                             d.apps[k].is_sd, NULL);
    }
    for (size_t k = 0; k < d.n_scp02 && k < SIM_GP_MAX_KVNS; k++) {
        o->card.kvns[o->card.n_kvns++] = d.scp02[k].kvn;
    }
    sim_se_def_wipe(&d);
    s->ota = o;
    return 0;
}

int sim_pop_last_push(const struct sim_pop *p, const char *msisdn, struct ota_push *out)
{
    uint64_t i;
    size_t slot;
    const struct sim_se_state *s;

    if (sim_pop_find(p, msisdn, &i)) {
        return -ENOENT;
    }
    s = state_lookup(p, i, &slot);
    if (!s || !s->has_push) {
        return -ENOENT;
    }
    *out = s->last_push;
    return 0;
}

void sim_pop_set_push_cb(struct sim_pop *p, sim_push_cb cb, void *arg)
{
    if (p) {
        p->push_cb = cb;
        p->push_arg = arg;
    }
}

bool sim_pop_is_generated(const struct sim_pop *p)
{
    return p && p->generated;
}

/* ---- file loading ---- */

/* Hex string of min..max octets from member key of obj into dst. */
static int get_hex(const json_t *obj, const char *key, size_t min, size_t max, uint8_t *dst,
                   size_t *out_len, struct ota_err *err)
{
    const json_t *v = json_object_get(obj, key);
    const char *s;
    size_t n;

    if (!v) {
        return ota_fail(err, -EINVAL, OTA_ERR_MISSING, "\"%s\" missing", key);
    }
    if (!json_is_string(v)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "\"%s\" is not a string", key);
    }
    s = json_string_value(v);
    n = strlen(s);
    if (n % 2 || n / 2 < min || n / 2 > max) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "\"%s\": %zu hex digits, expected %zu..%zu",
                        key, n, 2 * min, 2 * max);
    }
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i])) {
            return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "\"%s\": not hex at position %zu", key, i);
        }
    }
    if (osmo_hexparse(s, dst, (unsigned)max) != (int)(n / 2)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "\"%s\": not hex", key);
    }
    *out_len = n / 2;
    return 0;
}

static int get_int(const json_t *obj, const char *key, json_int_t min, json_int_t max,
                   json_int_t *out, struct ota_err *err)
{
    const json_t *v = json_object_get(obj, key);

    if (!v) {
        return ota_fail(err, -EINVAL, OTA_ERR_MISSING, "\"%s\" missing", key);
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "\"%s\" must be an integer %" JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT,
                        key, min, max);
    }
    *out = json_integer_value(v);
    return 0;
}

/* Refuse members not in the list. */
static int only_keys(const json_t *obj, const char *what, const char *const *keys, size_t n,
                     struct ota_err *err)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)obj, k, v)
    {
        bool known = false;

        for (size_t i = 0; i < n; i++) {
            known = known || strcmp(k, keys[i]) == 0;
        }
        if (!known) {
            return ota_fail(err, -EINVAL, OTA_ERR_TAG, "%s: unknown key \"%s\"", what, k);
        }
    }
    return 0;
}

static int alg_cipher(const char *name, enum ota_cipher *c)
{
    static const struct {
        const char *name;
        enum ota_cipher c;
    } algs[] = {{"AES", OTA_CIPHER_AES},
                {"3DES2", OTA_CIPHER_3DES2},
                {"3DES3", OTA_CIPHER_3DES3},
                {"DES", OTA_CIPHER_DES}};

    for (size_t i = 0; i < OTA_ARRAY_SIZE(algs); i++) {
        if (strcmp(name, algs[i].name) == 0) {
            *c = algs[i].c;
            return 0;
        }
    }
    return -1;
}

static int get_key(const json_t *obj, const char *alg_key, const char *key_key, struct ota_key *out,
                   struct ota_err *err)
{
    const json_t *a = json_object_get(obj, alg_key);
    enum ota_cipher c = OTA_CIPHER_NONE;
    uint8_t b[OTA_KEY_MAX];
    size_t n = 0;
    int rc;

    if (!a || !json_is_string(a) || alg_cipher(json_string_value(a), &c)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "\"%s\" must be one of \"AES\", \"3DES2\", \"3DES3\", \"DES\"", alg_key);
    }
    rc = get_hex(obj, key_key, 8, OTA_KEY_MAX, b, &n, err);
    if (rc == 0) {
        rc = ota_key_set(out, c, b, n, err);
        if (rc) {
            rc = ota_fail(err, -EINVAL, OTA_ERR_KEY, "\"%s\": %zu octets do not fit %s", key_key, n,
                          json_string_value(a));
        }
    }
    OPENSSL_cleanse(b, sizeof(b));
    return rc;
}

static int parse_scp80(const json_t *o, struct sim_scp80_keyset *ks, struct ota_err *err)
{
    static const char *const keys[] = {"kvn", "tar", "kic_alg", "kic", "kid_alg", "kid"};
    json_int_t kvn = 0;
    size_t n = 0;
    int rc;

    if (!json_is_object(o)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "scp80: entry is not an object");
    }
    rc = only_keys(o, "scp80", keys, OTA_ARRAY_SIZE(keys), err);
    if (rc == 0) {
        rc = get_int(o, "kvn", 1, 15, &kvn, err);
    }
    if (rc == 0) {
        rc = get_hex(o, "tar", 3, 3, ks->tar, &n, err);
    }
    if (rc == 0) {
        rc = get_key(o, "kic_alg", "kic", &ks->kic, err);
    }
    if (rc == 0) {
        rc = get_key(o, "kid_alg", "kid", &ks->kid, err);
    }
    ks->kvn = (uint8_t)kvn;
    return rc;
}

static int parse_scp02(const json_t *o, struct sim_scp02_keyset *ks, struct ota_err *err)
{
    static const char *const keys[] = {"kvn", "enc", "mac", "dek"};
    uint8_t enc[16], mac[16], dek[16];
    size_t n = 0;
    json_int_t kvn = 0;
    int rc;

    if (!json_is_object(o)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "scp02: entry is not an object");
    }
    rc = only_keys(o, "scp02", keys, OTA_ARRAY_SIZE(keys), err);
    if (rc == 0) {
        rc = get_int(o, "kvn", 1, 127, &kvn, err);
    }
    if (rc == 0) {
        rc = get_hex(o, "enc", 16, 16, enc, &n, err);
    }
    if (rc == 0) {
        rc = get_hex(o, "mac", 16, 16, mac, &n, err);
    }
    if (rc == 0) {
        rc = get_hex(o, "dek", 16, 16, dek, &n, err);
    }
    if (rc == 0) {
        rc = ota_scp02_keys_set(&ks->keys, enc, 16, mac, 16, dek, 16, (uint8_t)kvn, err);
        ks->kvn = (uint8_t)kvn;
    }
    OPENSSL_cleanse(enc, sizeof(enc));
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(dek, sizeof(dek));
    return rc;
}

static int parse_app(const json_t *o, struct sim_se_def *d, struct ota_err *err)
{
    static const char *const keys[] = {"aid", "state", "locked", "sd"};
    static const struct {
        const char *name;
        uint8_t lcs;
    } states[] = {{"installed", OTA_GP_APP_INSTALLED},
                  {"selectable", OTA_GP_APP_SELECTABLE},
                  {"personalized", OTA_GP_SD_PERSONALIZED}};
    const json_t *st, *lk, *sd;
    uint8_t aid[OTA_GP_AID_MAX];
    size_t n = 0;
    int rc, lcs = -1;

    if (!json_is_object(o)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "apps: entry is not an object");
    }
    rc = only_keys(o, "apps", keys, OTA_ARRAY_SIZE(keys), err);
    if (rc == 0) {
        rc = get_hex(o, "aid", OTA_GP_AID_MIN, OTA_GP_AID_MAX, aid, &n, err);
    }
    if (rc) {
        return rc;
    }
    st = json_object_get(o, "state");
    for (size_t i = 0; st && json_is_string(st) && i < OTA_ARRAY_SIZE(states); i++) {
        if (strcmp(json_string_value(st), states[i].name) == 0) {
            lcs = states[i].lcs;
        }
    }
    if (lcs < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "apps: \"state\" must be \"installed\", \"selectable\" or "
                        "\"personalized\"");
    }
    lk = json_object_get(o, "locked");
    sd = json_object_get(o, "sd");
    if ((lk && !json_is_boolean(lk)) || (sd && !json_is_boolean(sd))) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "apps: \"locked\" and \"sd\" are booleans");
    }
    for (size_t i = 0; i < d->n_apps; i++) {
        if (d->apps[i].aid.len == n && memcmp(d->apps[i].aid.b, aid, n) == 0) {
            return ota_fail(err, -EINVAL, OTA_ERR_DUPLICATE, "apps: AID listed twice");
        }
    }
    if (n == sizeof(sim_gp_isd_aid) && memcmp(aid, sim_gp_isd_aid, n) == 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_DUPLICATE, "apps: the ISD AID is implicit");
    }
    d->apps[d->n_apps].aid.len = (uint8_t)n;
    memcpy(d->apps[d->n_apps].aid.b, aid, n);
    d->apps[d->n_apps].lcs = (uint8_t)(lcs | (lk && json_is_true(lk) ? OTA_GP_LOCKED_BIT : 0));
    d->apps[d->n_apps].is_sd = sd && json_is_true(sd);
    d->n_apps++;
    return 0;
}

static int get_array(const json_t *obj, const char *key, size_t max, const json_t **out,
                     struct ota_err *err)
{
    const json_t *a = json_object_get(obj, key);

    *out = NULL;
    if (!a) {
        return 0;
    }
    if (!json_is_array(a) || json_array_size(a) > max) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "\"%s\" must be an array of at most %zu", key,
                        max);
    }
    *out = a;
    return 0;
}

static int parse_line(const char *line, size_t len, struct sim_se_def *d, struct ota_err *err)
{
    static const char *const keys[] = {"seid", "msisdn", "scp80", "scp02", "free_nv", "apps"};
    json_error_t jerr;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    const json_t *m, *a80 = NULL, *a02 = NULL, *apps = NULL;
    size_t n = 0;
    json_int_t free_nv = POP_DEFAULT_FREE_NV;
    int rc = 0;

    memset(d, 0, sizeof(*d));
    if (!o) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE, "not JSON: %s (column %d)", jerr.text,
                        jerr.column);
    }
    if (!json_is_object(o)) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "not a JSON object");
        goto out;
    }
    rc = only_keys(o, "SE", keys, OTA_ARRAY_SIZE(keys), err);
    if (rc == 0) {
        rc = get_hex(o, "seid", 1, SIM_SEID_MAX, d->seid, &n, err);
        d->seid_len = (uint8_t)n;
    }
    if (rc) {
        goto out;
    }
    m = json_object_get(o, "msisdn");
    if (!m || !json_is_string(m) || strlen(json_string_value(m)) < 1 ||
        strlen(json_string_value(m)) > SIM_MSISDN_MAX ||
        strspn(json_string_value(m), "0123456789") != strlen(json_string_value(m))) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_VALUE, "\"msisdn\" must be 1..%d digits",
                      SIM_MSISDN_MAX);
        goto out;
    }
    memcpy(d->msisdn, json_string_value(m), strlen(json_string_value(m)) + 1);
    rc = get_array(o, "scp80", SIM_MAX_SCP80, &a80, err);
    if (rc == 0) {
        rc = get_array(o, "scp02", SIM_MAX_SCP02, &a02, err);
    }
    if (rc == 0) {
        rc = get_array(o, "apps", SIM_MAX_FILE_APPS, &apps, err);
    }
    if (rc == 0 && json_object_get(o, "free_nv")) {
        rc = get_int(o, "free_nv", 0, UINT32_MAX, &free_nv, err);
    }
    for (size_t i = 0; rc == 0 && a80 && i < json_array_size(a80); i++) {
        rc = parse_scp80(json_array_get(a80, i), &d->scp80[i], err);
        d->cntr_slot[i] = (uint8_t)i;
        d->n_scp80 = (uint8_t)(i + 1);
        for (size_t k = 0; rc == 0 && k < i; k++) {
            if (memcmp(d->scp80[k].tar, d->scp80[i].tar, 3) == 0 &&
                d->scp80[k].kvn == d->scp80[i].kvn) {
                rc = ota_fail(err, -EINVAL, OTA_ERR_DUPLICATE, "scp80: TAR and KVN listed twice");
            }
        }
    }
    for (size_t i = 0; rc == 0 && a02 && i < json_array_size(a02); i++) {
        rc = parse_scp02(json_array_get(a02, i), &d->scp02[i], err);
        d->n_scp02 = (uint8_t)(i + 1);
    }
    for (size_t i = 0; rc == 0 && apps && i < json_array_size(apps); i++) {
        rc = parse_app(json_array_get(apps, i), d, err);
    }
    d->free_nv = (uint32_t)free_nv;
out:
    json_decref(o);
    if (rc) {
        sim_se_def_wipe(d);
    }
    return rc;
}

static bool blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
            return false;
        }
    }
    return true;
}

static int load_lines(FILE *f, struct sim_pop *p, struct ota_err *err)
{
    char *line = malloc(POP_LINE_MAX);
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;

    if (!line) {
        return ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "population: out of memory");
    }
    while (fgets(line, POP_LINE_MAX, f)) {
        size_t len = strlen(line);
        struct ota_err e;

        lineno++;
        if (len == POP_LINE_MAX - 1 && line[len - 1] != '\n' && !feof(f)) {
            rc = ota_fail(err, -EINVAL, OTA_ERR_OVERSIZE, "line %u: longer than %d octets", lineno,
                          POP_LINE_MAX - 2);
            break;
        }
        if (blank(line, len)) {
            continue;
        }
        if (p->n_defs == POP_FILE_MAX) {
            rc = ota_fail(err, -EINVAL, OTA_ERR_LIMIT, "line %u: more than %u SEs", lineno,
                          POP_FILE_MAX);
            break;
        }
        if (p->n_defs == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct sim_se_def *nd = calloc(ncap, sizeof(*nd));

            if (!nd) {
                rc = ota_fail(err, -ENOMEM, OTA_ERR_LIMIT, "population: out of memory");
                break;
            }
            if (p->defs) {
                memcpy(nd, p->defs, (size_t)p->n_defs * sizeof(*nd));
                OPENSSL_cleanse(p->defs, (size_t)p->n_defs * sizeof(*nd));
                free(p->defs);
            }
            p->defs = nd;
            cap = ncap;
        }
        ota_err_clear(&e);
        rc = parse_line(line, len, &p->defs[p->n_defs], &e);
        if (rc) {
            rc = ota_fail(err, rc, e.code, "line %u: %s", lineno, e.msg);
            break;
        }
        p->n_defs++;
    }
    if (rc == 0 && ferror(f)) {
        rc = ota_fail(err, -EIO, OTA_ERR_TRUNCATED, "population: read error after line %u", lineno);
    }
    if (rc == 0 && p->n_defs == 0) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_MISSING, "population: no SE in the file");
    }
    OPENSSL_cleanse(line, POP_LINE_MAX);
    free(line);
    return rc;
}

int sim_pop_load(const char *path, struct sim_pop **out, struct ota_err *err)
{
    struct sim_pop *p = NULL;
    FILE *f;
    int rc;

    if (!path || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "population: NULL argument");
    }
    f = fopen(path, "r");
    if (!f) {
        return ota_fail(err, -ENOENT, OTA_ERR_ARG, "population: cannot open %s", path);
    }
    rc = pop_new(&p, err);
    if (rc == 0) {
        rc = load_lines(f, p, err);
    }
    if (rc == 0) {
        rc = msisdn_index_build(p, err);
    }
    fclose(f);
    if (rc) {
        sim_pop_free(p);
        return rc;
    }
    *out = p;
    return 0;
}
