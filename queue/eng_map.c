/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine's correlation maps: a chained hash table keyed by short byte
 * strings (task ids, message ids, MSISDNs, push serials). Duplicate keys are
 * allowed because an MSISDN may hold several SEs with an active task each.
 * Grows at load 1; never shrinks (sized by the peak of active tasks).
 */
#include "queue/eng_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const void *k, size_t len)
{
    /* FNV-1a: keys are short and not attacker-chosen in bulk (ids we issue, MSISDNs). */
    const uint8_t *p = k;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static int grow(struct eng_map *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    struct eng_map_ent **b = calloc(nb, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->nb; i++) {
        struct eng_map_ent *e = m->b[i];
        while (e) {
            struct eng_map_ent *next = e->next;
            size_t j = (size_t)(e->hash & (nb - 1));
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

int eng_map_put(struct eng_map *m, const void *k, size_t klen, void *val, uint32_t aux)
{
    if (klen > 255) {
        return -EINVAL;
    }
    if (m->n >= m->nb) {
        int rc = grow(m);
        if (rc < 0) {
            return rc;
        }
    }
    struct eng_map_ent *e = malloc(sizeof(*e) + klen);
    if (!e) {
        return -ENOMEM;
    }
    e->hash = hash_bytes(k, klen);
    e->val = val;
    e->aux = aux;
    e->klen = (uint8_t)klen;
    memcpy(e->key, k, klen);
    size_t j = (size_t)(e->hash & (m->nb - 1));
    e->next = m->b[j];
    m->b[j] = e;
    m->n++;
    return 0;
}

static struct eng_map_ent *scan(struct eng_map_ent *e, uint64_t h, const void *k, size_t klen)
{
    for (; e; e = e->next) {
        if (e->hash == h && e->klen == klen && memcmp(e->key, k, klen) == 0) {
            return e;
        }
    }
    return NULL;
}

struct eng_map_ent *eng_map_get(const struct eng_map *m, const void *k, size_t klen)
{
    if (m->nb == 0 || klen > 255) {
        return NULL;
    }
    uint64_t h = hash_bytes(k, klen);
    return scan(m->b[h & (m->nb - 1)], h, k, klen);
}

struct eng_map_ent *eng_map_next_same(const struct eng_map_ent *ent)
{
    return scan(ent->next, ent->hash, ent->key, ent->klen);
}

int eng_map_del(struct eng_map *m, const void *k, size_t klen, const void *val)
{
    if (m->nb == 0 || klen > 255) {
        return -ENOENT;
    }
    uint64_t h = hash_bytes(k, klen);
    struct eng_map_ent **pp = &m->b[h & (m->nb - 1)];
    for (; *pp; pp = &(*pp)->next) {
        struct eng_map_ent *e = *pp;
        if (e->hash == h && e->klen == klen && e->val == val && memcmp(e->key, k, klen) == 0) {
            *pp = e->next;
            free(e);
            m->n--;
            return 0;
        }
    }
    return -ENOENT;
}

void eng_map_fini(struct eng_map *m)
{
    for (size_t i = 0; i < m->nb; i++) {
        struct eng_map_ent *e = m->b[i];
        while (e) {
            struct eng_map_ent *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}
