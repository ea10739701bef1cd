/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dispatch order (queue/sched.h). Layout, chosen to stay near 100 octets
 * per queued task at a million tasks and O(log n) per operation:
 *
 *   - nodes[]: one per queued task, in a pool addressed by 32-bit index (no
 *     pointers, so the pool can grow by realloc). A node is linked into its
 *     SE's FIFO, an intrusive pairing heap (prio desc, task asc).
 *   - ses[]: one per SE with queued or active tasks: the FIFO root, the active
 *     task, and which node (if any) is "placed", i.e. offered for dispatch.
 *   - Only an idle SE's FIFO head is placed, either in the global pending heap
 *     (keyed by not_before, promoted by sched_next once due) or in its flow's
 *     ready heap of its priority level (keyed by task id). Both are indexed
 *     heaps (the node knows its position), so a head that stops being the
 *     head is taken out exactly: no stale entries to sweep.
 *   - Per priority level, a ring of the unpaused flows with a non-empty ready
 *     heap; sched_next serves the ring round robin.
 *   - A deadline heap over nodes with a deadline, for sched_expire.
 *   - Open-addressing hash maps task -> node (or -> SE while active, so a
 *     duplicate of an active task is seen), SE key -> SE, flow id -> flow.
 *     Slots hold only a 32-bit index; the key is read from the entry.
 *
 * Time is trusted to go forward: a head promoted to ready at now stays ready
 * if a later call passes an earlier now.
 */
#include "queue/sched.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "queue/task.h"

#define NIL UINT32_MAX
#define LEVELS (TASK_PRIO_MAX + 1)
#define ACTIVE_TAG 0x80000000u
#define IDX_MAX 0x7ffffffeu
/* Token arithmetic is in doubles; this absorbs rounding at a computed wake-up. */
#define TOKEN_EPS 1e-9

enum where { W_NONE = 0, W_PENDING = 1, W_READY = 2 };
enum heap_kind { HK_PENDING = 0, HK_READY = 1, HK_DEADLINE = 2 };
enum map_kind { MK_TASK = 0, MK_SE = 1, MK_FLOW = 2 };

struct snode {
    int64_t task;
    int64_t nb;
    int64_t dl;
    uint32_t se;                /* index in ses[] */
    uint32_t flow;              /* index in flows[] */
    uint32_t child, next, prev; /* FIFO pairing heap; next links the free list */
    uint32_t hpos;              /* position in the pending or a ready heap */
    uint32_t dpos;              /* position in the deadline heap */
    uint8_t prio;
    uint8_t where;
};

struct sse {
    uint64_t key; /* 0 = free entry */
    int64_t active;
    uint32_t root;   /* FIFO head; links the free list when the entry is free */
    uint32_t placed; /* the head offered for dispatch, or NIL */
    uint32_t nq;
};

struct sheap {
    uint32_t *v;
    uint32_t n, cap;
};

struct sflow {
    uint64_t id;
    double rate; /* tasks per second, 0 = uncapped */
    double tokens;
    int64_t last_ms;
    size_t queued;
    struct sheap ready[LEVELS];
    uint32_t rnext[LEVELS], rprev[LEVELS];
    uint32_t capped_pos; /* index in capped[], or NIL */
    uint32_t free_next;
    uint8_t in_ring;
    bool used;
    bool paused;
    bool last_valid;
};

struct smap {
    uint32_t *slot;
    uint32_t mask;
    uint32_t n;
};

struct sched {
    struct snode *nodes;
    uint32_t n_nodes, cap_nodes, free_nodes;
    struct sse *ses;
    uint32_t n_ses, cap_ses, free_ses;
    struct sflow *flows;
    uint32_t n_flows, cap_flows, free_flows;
    struct smap tmap, smap, fmap;
    struct sheap pending, deadline;
    uint32_t ring[LEVELS];
    uint32_t *capped;
    uint32_t n_capped, cap_capped;
    size_t queued, active, used_ses, used_flows, expired;
};

/* ---- growth ------------------------------------------------------------------ */

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap) {
        return 0;
    }
    if (need > IDX_MAX) {
        return -ENOMEM;
    }
    uint64_t nc = *cap ? *cap : 16;
    while (nc < need) {
        nc += nc / 2 + 1; /* 1.5x keeps the slack of big pools below a third */
    }
    if (nc > IDX_MAX) {
        nc = IDX_MAX;
    }
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) {
        return -ENOMEM;
    }
    *p = q;
    *cap = (uint32_t)nc;
    return 0;
}

/* ---- hash maps ---------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t map_key(const struct sched *s, enum map_kind k, uint32_t v)
{
    switch (k) {
    case MK_TASK:
        if (v & ACTIVE_TAG) {
            return (uint64_t)s->ses[(v & ~ACTIVE_TAG) - 1].active;
        }
        return (uint64_t)s->nodes[v - 1].task;
    case MK_SE:
        return s->ses[v - 1].key;
    case MK_FLOW:
    default:
        return s->flows[v - 1].id;
    }
}

/* Slot holding key, or NIL. */
static uint32_t map_find(const struct sched *s, const struct smap *m, enum map_kind k, uint64_t key)
{
    if (!m->slot) {
        return NIL;
    }
    uint32_t i = (uint32_t)mix64(key) & m->mask;
    while (m->slot[i]) {
        if (map_key(s, k, m->slot[i]) == key) {
            return i;
        }
        i = (i + 1) & m->mask;
    }
    return NIL;
}

static void map_put_raw(const struct sched *s, struct smap *m, enum map_kind k, uint32_t v)
{
    uint32_t i = (uint32_t)mix64(map_key(s, k, v)) & m->mask;
    while (m->slot[i]) {
        i = (i + 1) & m->mask;
    }
    m->slot[i] = v;
}

/* Reserve room for one more entry (load at most one half). */
static int map_reserve(const struct sched *s, struct smap *m, enum map_kind k)
{
    uint64_t cap = m->slot ? (uint64_t)m->mask + 1 : 0;
    if ((uint64_t)(m->n + 1) * 2 <= cap) {
        return 0;
    }
    uint64_t nc = cap ? cap * 2 : 16;
    if (nc > (1ULL << 31)) {
        return -ENOMEM;
    }
    uint32_t *ns = calloc((size_t)nc, sizeof(*ns));
    if (!ns) {
        return -ENOMEM;
    }
    struct smap old = *m;
    m->slot = ns;
    m->mask = (uint32_t)(nc - 1);
    for (uint64_t i = 0; i < cap; i++) {
        if (old.slot[i]) {
            map_put_raw(s, m, k, old.slot[i]);
        }
    }
    free(old.slot);
    return 0;
}

static void map_erase_slot(const struct sched *s, struct smap *m, enum map_kind k, uint32_t i)
{
    /* Backward shift: no tombstones, so probe lengths never degrade. */
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        if (!m->slot[j]) {
            break;
        }
        uint32_t home = (uint32_t)mix64(map_key(s, k, m->slot[j])) & m->mask;
        if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
            m->slot[i] = m->slot[j];
            i = j;
        }
    }
    m->slot[i] = 0;
    m->n--;
}

/* ---- indexed binary heaps -------------------------------------------------------- */

static bool heap_less(const struct sched *s, enum heap_kind k, uint32_t a, uint32_t b)
{
    const struct snode *x = &s->nodes[a], *y = &s->nodes[b];
    switch (k) {
    case HK_PENDING:
        if (x->nb != y->nb) {
            return x->nb < y->nb;
        }
        break;
    case HK_DEADLINE:
        if (x->dl != y->dl) {
            return x->dl < y->dl;
        }
        break;
    case HK_READY:
    default:
        break; /* one level = one priority: age alone orders it */
    }
    return x->task < y->task;
}

static void heap_set(struct sched *s, struct sheap *h, enum heap_kind k, uint32_t pos, uint32_t n)
{
    h->v[pos] = n;
    if (k == HK_DEADLINE) {
        s->nodes[n].dpos = pos;
    } else {
        s->nodes[n].hpos = pos;
    }
}

static void heap_up(struct sched *s, struct sheap *h, enum heap_kind k, uint32_t pos)
{
    uint32_t n = h->v[pos];
    while (pos > 0) {
        uint32_t par = (pos - 1) / 2;
        if (!heap_less(s, k, n, h->v[par])) {
            break;
        }
        heap_set(s, h, k, pos, h->v[par]);
        pos = par;
    }
    heap_set(s, h, k, pos, n);
}

static void heap_down(struct sched *s, struct sheap *h, enum heap_kind k, uint32_t pos)
{
    uint32_t n = h->v[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= h->n) {
            break;
        }
        if (c + 1 < h->n && heap_less(s, k, h->v[c + 1], h->v[c])) {
            c++;
        }
        if (!heap_less(s, k, h->v[c], n)) {
            break;
        }
        heap_set(s, h, k, pos, h->v[c]);
        pos = c;
    }
    heap_set(s, h, k, pos, n);
}

static int heap_push(struct sched *s, struct sheap *h, enum heap_kind k, uint32_t n)
{
    if (grow((void **)&h->v, &h->cap, h->n + 1, sizeof(*h->v)) < 0) {
        return -ENOMEM;
    }
    h->v[h->n] = n;
    h->n++;
    heap_up(s, h, k, h->n - 1);
    return 0;
}

static void heap_del(struct sched *s, struct sheap *h, enum heap_kind k, uint32_t pos)
{
    h->n--;
    if (pos == h->n) {
        return;
    }
    heap_set(s, h, k, pos, h->v[h->n]);
    if (pos > 0 && heap_less(s, k, h->v[pos], h->v[(pos - 1) / 2])) {
        heap_up(s, h, k, pos);
    } else {
        heap_down(s, h, k, pos);
    }
}

/* ---- SE FIFO: pairing heap over nodes --------------------------------------------- */

static bool fifo_less(const struct sched *s, uint32_t a, uint32_t b)
{
    const struct snode *x = &s->nodes[a], *y = &s->nodes[b];
    if (x->prio != y->prio) {
        return x->prio > y->prio;
    }
    return x->task < y->task;
}

/* Both detached roots (prev/next NIL); returns the new root. */
static uint32_t pair_meld(struct sched *s, uint32_t a, uint32_t b)
{
    if (a == NIL) {
        return b;
    }
    if (b == NIL) {
        return a;
    }
    if (fifo_less(s, b, a)) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    struct snode *na = &s->nodes[a], *nb = &s->nodes[b];
    nb->prev = a;
    nb->next = na->child;
    if (na->child != NIL) {
        s->nodes[na->child].prev = b;
    }
    na->child = b;
    return a;
}

/* Meld a sibling list (two-pass) into one detached root. */
static uint32_t pair_merge_list(struct sched *s, uint32_t first)
{
    uint32_t acc = NIL;
    uint32_t c = first;
    while (c != NIL) {
        uint32_t a = c, b = s->nodes[a].next;
        s->nodes[a].prev = s->nodes[a].next = NIL;
        if (b == NIL) {
            c = NIL;
        } else {
            c = s->nodes[b].next;
            s->nodes[b].prev = s->nodes[b].next = NIL;
            a = pair_meld(s, a, b);
        }
        s->nodes[a].next = acc;
        acc = a;
    }
    uint32_t res = NIL;
    while (acc != NIL) {
        uint32_t nx = s->nodes[acc].next;
        s->nodes[acc].next = NIL;
        res = pair_meld(s, res, acc);
        acc = nx;
    }
    return res;
}

static void fifo_insert(struct sched *s, struct sse *se, uint32_t n)
{
    struct snode *x = &s->nodes[n];
    x->child = x->next = x->prev = NIL;
    se->root = pair_meld(s, se->root, n);
    se->nq++;
}

static void fifo_remove(struct sched *s, struct sse *se, uint32_t n)
{
    struct snode *x = &s->nodes[n];
    if (se->root == n) {
        se->root = pair_merge_list(s, x->child);
    } else {
        if (s->nodes[x->prev].child == n) {
            s->nodes[x->prev].child = x->next;
        } else {
            s->nodes[x->prev].next = x->next;
        }
        if (x->next != NIL) {
            s->nodes[x->next].prev = x->prev;
        }
        x->prev = x->next = NIL;
        uint32_t sub = pair_merge_list(s, x->child);
        se->root = pair_meld(s, se->root, sub);
    }
    x->child = NIL;
    se->nq--;
}

/* ---- flow rings --------------------------------------------------------------------- */

static void ring_insert(struct sched *s, uint32_t f, int lv)
{
    struct sflow *fl = &s->flows[f];
    uint32_t cur = s->ring[lv];
    if (cur == NIL) {
        fl->rnext[lv] = fl->rprev[lv] = f;
        s->ring[lv] = f;
    } else {
        /* Just before the cursor: the newcomer waits for one full round. */
        uint32_t p = s->flows[cur].rprev[lv];
        s->flows[p].rnext[lv] = f;
        fl->rprev[lv] = p;
        fl->rnext[lv] = cur;
        s->flows[cur].rprev[lv] = f;
    }
    fl->in_ring |= (uint8_t)(1u << lv);
}

static void ring_remove(struct sched *s, uint32_t f, int lv)
{
    struct sflow *fl = &s->flows[f];
    if (fl->rnext[lv] == f) {
        s->ring[lv] = NIL;
    } else {
        s->flows[fl->rprev[lv]].rnext[lv] = fl->rnext[lv];
        s->flows[fl->rnext[lv]].rprev[lv] = fl->rprev[lv];
        if (s->ring[lv] == f) {
            s->ring[lv] = fl->rnext[lv];
        }
    }
    fl->in_ring &= (uint8_t) ~(1u << lv);
}

/* ---- placement of SE heads ------------------------------------------------------------ */

static int place_ready(struct sched *s, uint32_t n)
{
    struct snode *x = &s->nodes[n];
    struct sflow *fl = &s->flows[x->flow];
    int lv = x->prio;
    if (heap_push(s, &fl->ready[lv], HK_READY, n) < 0) {
        return -ENOMEM;
    }
    x->where = W_READY;
    if (fl->ready[lv].n == 1 && !fl->paused) {
        ring_insert(s, x->flow, lv);
    }
    return 0;
}

static void unplace(struct sched *s, uint32_t n)
{
    struct snode *x = &s->nodes[n];
    if (x->where == W_PENDING) {
        heap_del(s, &s->pending, HK_PENDING, x->hpos);
    } else if (x->where == W_READY) {
        struct sflow *fl = &s->flows[x->flow];
        heap_del(s, &fl->ready[x->prio], HK_READY, x->hpos);
        if (fl->ready[x->prio].n == 0 && (fl->in_ring & (1u << x->prio))) {
            ring_remove(s, x->flow, x->prio);
        }
    }
    x->where = W_NONE;
}

/*
 * Offer the SE's current head if it is idle, withdraw a head that is no
 * longer the head. The only failure is a heap growth; the caller undoes.
 */
static int se_update(struct sched *s, uint32_t si)
{
    struct sse *se = &s->ses[si];
    uint32_t want = se->active == 0 ? se->root : NIL;
    if (se->placed == want) {
        return 0;
    }
    if (se->placed != NIL) {
        unplace(s, se->placed);
        se->placed = NIL;
    }
    if (want == NIL) {
        return 0;
    }
    int rc;
    if (s->nodes[want].nb <= 0) {
        rc = place_ready(s, want);
    } else {
        rc = heap_push(s, &s->pending, HK_PENDING, want);
        if (rc == 0) {
            s->nodes[want].where = W_PENDING;
        }
    }
    if (rc == 0) {
        se->placed = want;
    }
    return rc;
}

/* ---- entries ------------------------------------------------------------------------ */

static uint32_t se_lookup(const struct sched *s, uint64_t key)
{
    uint32_t i = map_find(s, &s->smap, MK_SE, key);
    return i == NIL ? NIL : s->smap.slot[i] - 1;
}

static int se_get(struct sched *s, uint64_t key, uint32_t *out)
{
    uint32_t si = se_lookup(s, key);
    if (si != NIL) {
        *out = si;
        return 0;
    }
    if (map_reserve(s, &s->smap, MK_SE) < 0) {
        return -ENOMEM;
    }
    if (s->free_ses != NIL) {
        si = s->free_ses;
        s->free_ses = s->ses[si].root;
    } else {
        if (grow((void **)&s->ses, &s->cap_ses, s->n_ses + 1, sizeof(*s->ses)) < 0) {
            return -ENOMEM;
        }
        si = s->n_ses++;
    }
    s->ses[si] = (struct sse){.key = key, .active = 0, .root = NIL, .placed = NIL, .nq = 0};
    map_put_raw(s, &s->smap, MK_SE, si + 1);
    s->smap.n++;
    s->used_ses++;
    *out = si;
    return 0;
}

static void se_maybe_free(struct sched *s, uint32_t si)
{
    struct sse *se = &s->ses[si];
    if (se->root != NIL || se->active != 0) {
        return;
    }
    map_erase_slot(s, &s->smap, MK_SE, map_find(s, &s->smap, MK_SE, se->key));
    se->key = 0;
    se->root = s->free_ses;
    s->free_ses = si;
    s->used_ses--;
}

static uint32_t flow_lookup(const struct sched *s, uint64_t id)
{
    uint32_t i = map_find(s, &s->fmap, MK_FLOW, id);
    return i == NIL ? NIL : s->fmap.slot[i] - 1;
}

static int flow_get(struct sched *s, uint64_t id, uint32_t *out)
{
    uint32_t f = flow_lookup(s, id);
    if (f != NIL) {
        *out = f;
        return 0;
    }
    if (map_reserve(s, &s->fmap, MK_FLOW) < 0) {
        return -ENOMEM;
    }
    if (s->free_flows != NIL) {
        f = s->free_flows;
        s->free_flows = s->flows[f].free_next;
    } else {
        if (grow((void **)&s->flows, &s->cap_flows, s->n_flows + 1, sizeof(*s->flows)) < 0) {
            return -ENOMEM;
        }
        f = s->n_flows++;
    }
    memset(&s->flows[f], 0, sizeof(s->flows[f]));
    s->flows[f].id = id;
    s->flows[f].used = true;
    s->flows[f].capped_pos = NIL;
    map_put_raw(s, &s->fmap, MK_FLOW, f + 1);
    s->fmap.n++;
    s->used_flows++;
    *out = f;
    return 0;
}

static void capped_del(struct sched *s, uint32_t f)
{
    uint32_t pos = s->flows[f].capped_pos;
    if (pos == NIL) {
        return;
    }
    uint32_t last = s->capped[--s->n_capped];
    s->capped[pos] = last;
    s->flows[last].capped_pos = pos;
    s->flows[f].capped_pos = NIL;
}

/* A flow is kept while it has queued tasks or settings. */
static void flow_maybe_free(struct sched *s, uint32_t f)
{
    struct sflow *fl = &s->flows[f];
    if (fl->queued > 0 || fl->paused || fl->rate > 0) {
        return;
    }
    capped_del(s, f);
    map_erase_slot(s, &s->fmap, MK_FLOW, map_find(s, &s->fmap, MK_FLOW, fl->id));
    for (int lv = 0; lv < LEVELS; lv++) {
        free(fl->ready[lv].v);
    }
    memset(fl, 0, sizeof(*fl));
    fl->free_next = s->free_flows;
    s->free_flows = f;
    s->used_flows--;
}

static void flow_refill(struct sflow *fl, int64_t now)
{
    double burst = fl->rate < 1.0 ? 1.0 : fl->rate;
    if (!fl->last_valid) {
        fl->last_valid = true;
        fl->last_ms = now;
        return;
    }
    if (now > fl->last_ms) {
        fl->tokens += (double)(now - fl->last_ms) * fl->rate / 1000.0;
        if (fl->tokens > burst) {
            fl->tokens = burst;
        }
        fl->last_ms = now;
    }
}

static void item_of(const struct sched *s, uint32_t n, struct sched_item *out)
{
    const struct snode *x = &s->nodes[n];
    out->task = x->task;
    out->se = s->ses[x->se].key;
    out->flow = s->flows[x->flow].id;
    out->prio = x->prio;
    out->not_before_ms = x->nb;
    out->deadline_ms = x->dl;
}

static uint32_t task_node(const struct sched *s, int64_t task, uint32_t *slot)
{
    uint32_t i = map_find(s, &s->tmap, MK_TASK, (uint64_t)task);
    if (slot) {
        *slot = i;
    }
    if (i == NIL || (s->tmap.slot[i] & ACTIVE_TAG)) {
        return NIL;
    }
    return s->tmap.slot[i] - 1;
}

/*
 * Take a queued node out of everything. With dispatch set its SE becomes
 * busy with it. SE and flow entries no longer needed are freed.
 */
static void node_drop(struct sched *s, uint32_t n, bool dispatch)
{
    struct snode *x = &s->nodes[n];
    uint32_t si = x->se, f = x->flow;
    struct sse *se = &s->ses[si];
    if (se->placed == n) {
        unplace(s, n);
        se->placed = NIL;
    } else if (x->where != W_NONE) {
        unplace(s, n);
    }
    fifo_remove(s, se, n);
    if (x->dl != 0) {
        heap_del(s, &s->deadline, HK_DEADLINE, x->dpos);
    }
    uint32_t slot = map_find(s, &s->tmap, MK_TASK, (uint64_t)x->task);
    if (dispatch) {
        se->active = x->task;
        s->active++;
        s->tmap.slot[slot] = ACTIVE_TAG | (si + 1);
    } else if (se->active == x->task) {
        /* Requeued while still active: the active task keeps its entry. */
        s->tmap.slot[slot] = ACTIVE_TAG | (si + 1);
    } else {
        map_erase_slot(s, &s->tmap, MK_TASK, slot);
    }
    x->next = s->free_nodes;
    x->task = 0;
    s->free_nodes = n;
    s->queued--;
    s->flows[f].queued--;
    /* Withdrawing never grows a heap, placing the next head might. */
    (void)se_update(s, si);
    se_maybe_free(s, si);
    flow_maybe_free(s, f);
}

/* ---- API ---------------------------------------------------------------------------- */

int sched_new(struct sched **out, struct ota_err *err)
{
    *out = NULL;
    struct sched *s = calloc(1, sizeof(*s));
    if (!s) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "sched_new: out of memory");
    }
    s->free_nodes = s->free_ses = s->free_flows = NIL;
    for (int lv = 0; lv < LEVELS; lv++) {
        s->ring[lv] = NIL;
    }
    *out = s;
    return 0;
}

void sched_free(struct sched *s)
{
    if (!s) {
        return;
    }
    for (uint32_t f = 0; f < s->n_flows; f++) {
        for (int lv = 0; lv < LEVELS; lv++) {
            free(s->flows[f].ready[lv].v);
        }
    }
    free(s->nodes);
    free(s->ses);
    free(s->flows);
    free(s->tmap.slot);
    free(s->smap.slot);
    free(s->fmap.slot);
    free(s->pending.v);
    free(s->deadline.v);
    free(s->capped);
    free(s);
}

int sched_add(struct sched *s, const struct sched_item *it, struct ota_err *err)
{
    if (!it || it->task <= 0 || it->se == 0 || it->prio > TASK_PRIO_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "sched_add: task %lld se %llu prio %u",
                        it ? (long long)it->task : 0LL, it ? (unsigned long long)it->se : 0ULL,
                        it ? it->prio : 0u);
    }
    uint32_t slot = map_find(s, &s->tmap, MK_TASK, (uint64_t)it->task);
    if (slot != NIL) {
        uint32_t v = s->tmap.slot[slot];
        /* An active task may be requeued on its own SE (retry); nothing else. */
        if (!(v & ACTIVE_TAG) || s->ses[(v & ~ACTIVE_TAG) - 1].key != it->se) {
            return ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE, "sched_add: task %lld already %s",
                            (long long)it->task, (v & ACTIVE_TAG) ? "active" : "queued");
        }
    } else if (map_reserve(s, &s->tmap, MK_TASK) < 0) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "sched_add: out of memory");
    }
    /* Reserve every array first so that nothing below can fail half-way. */
    if (grow((void **)&s->deadline.v, &s->deadline.cap, s->deadline.n + 1, sizeof(*s->deadline.v)) <
            0 ||
        grow((void **)&s->pending.v, &s->pending.cap, s->pending.n + 1, sizeof(*s->pending.v)) <
            0 ||
        (s->free_nodes == NIL &&
         grow((void **)&s->nodes, &s->cap_nodes, s->n_nodes + 1, sizeof(*s->nodes)) < 0)) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "sched_add: out of memory");
    }
    uint32_t si, f;
    if (se_get(s, it->se, &si) < 0) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "sched_add: out of memory");
    }
    if (flow_get(s, it->flow, &f) < 0) {
        se_maybe_free(s, si);
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "sched_add: out of memory");
    }
    struct sheap *rh = &s->flows[f].ready[it->prio];
    if (grow((void **)&rh->v, &rh->cap, rh->n + 1, sizeof(*rh->v)) < 0) {
        se_maybe_free(s, si);
        flow_maybe_free(s, f);
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "sched_add: out of memory");
    }
    uint32_t n;
    if (s->free_nodes != NIL) {
        n = s->free_nodes;
        s->free_nodes = s->nodes[n].next;
    } else {
        n = s->n_nodes++;
    }
    struct snode *x = &s->nodes[n];
    *x = (struct snode){.task = it->task,
                        .nb = it->not_before_ms,
                        .dl = it->deadline_ms,
                        .se = si,
                        .flow = f,
                        .child = NIL,
                        .next = NIL,
                        .prev = NIL,
                        .hpos = NIL,
                        .dpos = NIL,
                        .prio = it->prio,
                        .where = W_NONE};
    if (slot != NIL) {
        s->tmap.slot[slot] = n + 1;
    } else {
        map_put_raw(s, &s->tmap, MK_TASK, n + 1);
        s->tmap.n++;
    }
    fifo_insert(s, &s->ses[si], n);
    if (x->dl != 0) {
        (void)heap_push(s, &s->deadline, HK_DEADLINE, n); /* reserved above */
    }
    s->queued++;
    s->flows[f].queued++;
    /* The pending heap and this flow's ready heap have room for the one head
     * that may be placed (a withdrawn head only frees room). */
    (void)se_update(s, si);
    return 0;
}

int sched_remove(struct sched *s, int64_t task)
{
    uint32_t n = task_node(s, task, NULL);
    if (n == NIL) {
        return -ENOENT;
    }
    node_drop(s, n, false);
    return 0;
}

bool sched_get(const struct sched *s, int64_t task, struct sched_item *out)
{
    uint32_t n = task_node(s, task, NULL);
    if (n == NIL) {
        return false;
    }
    if (out) {
        item_of(s, n, out);
    }
    return true;
}

int sched_next(struct sched *s, int64_t now_ms, struct sched_item *out)
{
    while (s->pending.n > 0 && s->nodes[s->pending.v[0]].nb <= now_ms) {
        uint32_t n = s->pending.v[0];
        heap_del(s, &s->pending, HK_PENDING, 0);
        s->nodes[n].where = W_NONE;
        if (place_ready(s, n) < 0) {
            /* Out of memory: keep it pending, try again on the next call. */
            (void)heap_push(s, &s->pending, HK_PENDING, n);
            s->nodes[n].where = W_PENDING;
            break;
        }
    }
    for (int lv = LEVELS - 1; lv >= 0; lv--) {
        uint32_t start = s->ring[lv];
        if (start == NIL) {
            continue;
        }
        uint32_t f = start;
        do {
            struct sflow *fl = &s->flows[f];
            if (fl->rate > 0) {
                flow_refill(fl, now_ms);
                if (fl->tokens < 1.0 - TOKEN_EPS) {
                    f = fl->rnext[lv];
                    continue;
                }
                fl->tokens -= 1.0;
            }
            uint32_t n = fl->ready[lv].v[0];
            s->ring[lv] = fl->rnext[lv];
            item_of(s, n, out);
            node_drop(s, n, true);
            return 0;
        } while (f != start);
    }
    return -EAGAIN;
}

int sched_set_active(struct sched *s, uint64_t se, int64_t task, struct ota_err *err)
{
    if (se == 0 || task <= 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "sched_set_active: se %llu task %lld",
                        (unsigned long long)se, (long long)task);
    }
    uint32_t si = se_lookup(s, se);
    if (si != NIL && s->ses[si].active != 0) {
        if (s->ses[si].active == task) {
            return 0;
        }
        return ota_fail(err, -EBUSY, OTA_ERR_STATE, "sched_set_active: se %llu busy with %lld",
                        (unsigned long long)se, (long long)s->ses[si].active);
    }
    uint32_t slot = map_find(s, &s->tmap, MK_TASK, (uint64_t)task);
    if (slot != NIL && (s->tmap.slot[slot] & ACTIVE_TAG)) {
        return ota_fail(err, -EBUSY, OTA_ERR_STATE,
                        "sched_set_active: task %lld active on another se", (long long)task);
    }
    if (slot == NIL && map_reserve(s, &s->tmap, MK_TASK) < 0) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "sched_set_active: out of memory");
    }
    if (se_get(s, se, &si) < 0) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "sched_set_active: out of memory");
    }
    s->ses[si].active = task;
    s->active++;
    if (slot == NIL) {
        map_put_raw(s, &s->tmap, MK_TASK, ACTIVE_TAG | (si + 1));
        s->tmap.n++;
    }
    (void)se_update(s, si); /* only withdraws */
    return 0;
}

int64_t sched_active(const struct sched *s, uint64_t se)
{
    uint32_t si = se_lookup(s, se);
    return si == NIL ? 0 : s->ses[si].active;
}

int sched_release(struct sched *s, uint64_t se, int64_t task)
{
    uint32_t si = se_lookup(s, se);
    if (si == NIL || task == 0 || s->ses[si].active != task) {
        return -ENOENT;
    }
    uint32_t slot = map_find(s, &s->tmap, MK_TASK, (uint64_t)task);
    if (slot != NIL && (s->tmap.slot[slot] & ACTIVE_TAG)) {
        map_erase_slot(s, &s->tmap, MK_TASK, slot);
    }
    s->ses[si].active = 0;
    s->active--;
    if (se_update(s, si) < 0) {
        /* Could not offer the head: stay correct by keeping it unplaced; the
         * next change of the SE retries. */
    }
    se_maybe_free(s, si);
    return 0;
}

int64_t sched_next_wake_ms(const struct sched *s, int64_t now_ms)
{
    int64_t t = INT64_MAX;
    if (s->pending.n > 0) {
        t = s->nodes[s->pending.v[0]].nb;
    }
    if (s->deadline.n > 0 && s->nodes[s->deadline.v[0]].dl < t) {
        t = s->nodes[s->deadline.v[0]].dl;
    }
    for (uint32_t i = 0; i < s->n_capped; i++) {
        const struct sflow *fl = &s->flows[s->capped[i]];
        if (fl->paused || fl->in_ring == 0) {
            continue; /* nothing dispatchable waits for its tokens */
        }
        double tok = fl->tokens;
        if (fl->last_valid && now_ms > fl->last_ms) {
            double burst = fl->rate < 1.0 ? 1.0 : fl->rate;
            tok += (double)(now_ms - fl->last_ms) * fl->rate / 1000.0;
            if (tok > burst) {
                tok = burst;
            }
        }
        int64_t at;
        if (!fl->last_valid || tok >= 1.0 - TOKEN_EPS) {
            at = now_ms; /* it may go now */
        } else {
            at = now_ms + (int64_t)ceil((1.0 - tok) * 1000.0 / fl->rate - TOKEN_EPS);
        }
        if (at < t) {
            t = at;
        }
    }
    /* Something already due (not yet promoted or expired) means: act now. */
    return t < now_ms ? now_ms : t;
}

size_t sched_expire(struct sched *s, int64_t now_ms,
                    void (*cb)(void *arg, const struct sched_item *it), void *arg)
{
    size_t count = 0;
    while (s->deadline.n > 0 && s->nodes[s->deadline.v[0]].dl <= now_ms) {
        uint32_t n = s->deadline.v[0];
        struct sched_item it;
        item_of(s, n, &it);
        node_drop(s, n, false);
        s->expired++;
        count++;
        if (cb) {
            cb(arg, &it);
        }
    }
    return count;
}

int sched_flow_set(struct sched *s, uint64_t flow, bool paused, double rate_per_s,
                   struct ota_err *err)
{
    if (!isfinite(rate_per_s) || rate_per_s < 0) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "sched_flow_set: flow %llu rate %g",
                        (unsigned long long)flow, rate_per_s);
    }
    if (rate_per_s > 0 &&
        grow((void **)&s->capped, &s->cap_capped, s->n_capped + 1, sizeof(*s->capped)) < 0) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "sched_flow_set: out of memory");
    }
    uint32_t f;
    if (flow_get(s, flow, &f) < 0) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "sched_flow_set: out of memory");
    }
    struct sflow *fl = &s->flows[f];
    if (paused && !fl->paused) {
        for (int lv = 0; lv < LEVELS; lv++) {
            if (fl->in_ring & (1u << lv)) {
                ring_remove(s, f, lv);
            }
        }
    } else if (!paused && fl->paused) {
        for (int lv = 0; lv < LEVELS; lv++) {
            if (fl->ready[lv].n > 0) {
                ring_insert(s, f, lv);
            }
        }
    }
    fl->paused = paused;
    if (rate_per_s > 0) {
        double burst = rate_per_s < 1.0 ? 1.0 : rate_per_s;
        if (fl->rate == 0) {
            fl->tokens = burst; /* a fresh cap starts with a full bucket */
            fl->last_valid = false;
            fl->capped_pos = s->n_capped;
            s->capped[s->n_capped++] = f;
        } else if (fl->tokens > burst) {
            fl->tokens = burst;
        }
    } else {
        capped_del(s, f);
    }
    fl->rate = rate_per_s;
    flow_maybe_free(s, f);
    return 0;
}

void sched_flow_forget(struct sched *s, uint64_t flow)
{
    uint32_t f = flow_lookup(s, flow);
    if (f == NIL) {
        return;
    }
    struct sflow *fl = &s->flows[f];
    if (fl->paused) {
        for (int lv = 0; lv < LEVELS; lv++) {
            if (fl->ready[lv].n > 0) {
                ring_insert(s, f, lv);
            }
        }
    }
    fl->paused = false;
    fl->rate = 0;
    capped_del(s, f);
    flow_maybe_free(s, f);
}

size_t sched_flow_queued(const struct sched *s, uint64_t flow)
{
    uint32_t f = flow_lookup(s, flow);
    return f == NIL ? 0 : s->flows[f].queued;
}

struct qent {
    int64_t task;
    uint32_t n;
    uint8_t prio;
};

static int qent_cmp(const void *a, const void *b)
{
    const struct qent *x = a, *y = b;
    if (x->prio != y->prio) {
        return x->prio > y->prio ? -1 : 1;
    }
    return x->task < y->task ? -1 : (x->task > y->task ? 1 : 0);
}

size_t sched_se_queue(const struct sched *s, uint64_t se, struct sched_item *out, size_t cap)
{
    uint32_t si = se_lookup(s, se);
    if (si == NIL || s->ses[si].root == NIL) {
        return 0;
    }
    size_t total = s->ses[si].nq;
    if (cap == 0 || !out) {
        return total;
    }
    struct qent *q = malloc(total * sizeof(*q));
    if (!q) {
        return total; /* diagnostics only: nothing copied rather than a wrong order */
    }
    /* Breadth-first over the child/sibling links, the array doubling as the queue. */
    size_t w = 0;
    q[w++] = (struct qent){.n = s->ses[si].root};
    for (size_t r = 0; r < w; r++) {
        const struct snode *x = &s->nodes[q[r].n];
        q[r].task = x->task;
        q[r].prio = x->prio;
        if (x->child != NIL && w < total) {
            q[w++] = (struct qent){.n = x->child};
        }
        if (r > 0 && x->next != NIL && w < total) {
            q[w++] = (struct qent){.n = x->next};
        }
    }
    qsort(q, w, sizeof(*q), qent_cmp);
    size_t k = w < cap ? w : cap;
    for (size_t i = 0; i < k; i++) {
        item_of(s, q[i].n, &out[i]);
    }
    free(q);
    return total;
}

void sched_stats(const struct sched *s, struct sched_stats *out)
{
    out->queued = s->queued;
    out->active = s->active;
    out->ses = s->used_ses;
    out->flows = s->used_flows;
    out->expired = s->expired;
}
