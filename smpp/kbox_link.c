/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kannel box link: otagw connected to bearerbox's box port the way
 * smsbox is (reference kannel-box.md), so that SMPP to any SMSC goes through
 * Kannel. This file owns the socket and the box protocol; the bearer core
 * (bearer.c, bearer_int.h) owns the parts, window, rate and reconnect policy.
 *
 * Connection: non-blocking TCP connect (timer), admin identify with boxc_id
 * (§3: no answer exists, so the link is up once identify is queued),
 * heartbeat every heartbeat_s (§4), admin shutdown/restart from bearerbox
 * (§8): stop sending, wait for the acks of the MTs on the wire (timer), close
 * (bearerbox waits for its boxes to go before it exits) and report the
 * connection lost so the core reconnects with back-off.
 *
 * MT (§5): one sms{mt_push} per part with udhdata/msgdata split at the UDHL,
 * coding 8-bit, mclass from the DCS, pid, priority, a fresh random v4 UUID
 * (the ack key, kept in an in-flight table keyed by UUID), boxc_id (so DLRs
 * come back to this box, §3/§6), the part's token in decimal as dlr_url
 * (echoed unchanged in every receipt, §6) and smsc_id when configured.
 *
 * What counts as the submit result: bearerbox's ack. ack_success/buffered
 * mean bearerbox stored the MT (store_save runs before routing, §5) and owns
 * it, so the part is reported accepted with the MT UUID as its id; resending
 * it after that would duplicate it. ack_failed_tmp (queue full, bearerbox
 * shutting down) goes back to the core as throttled and is resent in order;
 * ack_failed is final. Whether the SMSC took the submit is learned from the
 * DLRs: dlr_mask asks for delivered, failed and smsc-reject (a NACK becomes a
 * final "rejected" report). smsc-success (0x08) is not asked for: it costs
 * bearerbox one more message per MT and the final receipt carries the SMSC
 * id anyway.
 *
 * DLR and MO (§6-§7): handed to the core; acknowledged to bearerbox only
 * after the core's callback returned 0, or when the core releases the ack it
 * held for BEARER_ACK_LATER (the ack needs only the sms id and time). A
 * refusal is answered after a short pause with ack_failed_tmp, which makes
 * bearerbox queue it again. A held ack the core forgets (discard, drop) is
 * never sent: bearerbox redelivers what a box left unacknowledged (§7).
 *
 * Nothing survives a dropped connection here: parts without an ack go back to
 * the core's held FIFO (bearer_link_lost) and are sent again with new UUIDs;
 * parts acked before the drop were reported and are not resent. No ack within
 * resp_timeout_ms means the connection is broken (bearerbox acks every sms at
 * once), so it is dropped rather than resent on the same connection.
 *
 * Callbacks reached from here must not free the bearer.
 */
#include "smpp/bearer_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "smpp/kbox.h"

#define BIT(n) (1u << (n))

#define KL_CONNECT_TIMEOUT_S 10.0 /* TCP connect to the box port */
#define KL_HEARTBEAT_DEFAULT_S 30 /* smsbox's DEFAULT_HEARTBEAT (§4) */
#define KL_DRAIN_TIMEOUT_S 5.0    /* after admin shutdown: wait this long for acks */
#define KL_NACK_DELAY_S 1.0       /* refused DLR/MO: ack_failed_tmp after this pause */
#define KL_NACK_MAX 128           /* above smsbox-max-pending (100, §7) */
#define KL_OUT_SOFT (256u * 1024) /* MT sends wait (-EAGAIN) above this much unsent */
#define KL_OUT_HARD (4u * 1024 * 1024)
#define KL_IN_CAP (KBOX_FRAME_HDR_LEN + KBOX_FRAME_MAX_DEFAULT)
#define KL_TEXT_MAX 64 /* addresses and ids copied out of a received sms */
#define KL_DEFAULT_BOXC_ID "otagw"
#define KL_ACK_LEN (KBOX_UUID_LEN + 4) /* held ack: sms id + time (host order) */

/* delivered + failed (handset receipts) + SMSC rejection (bearerbox-made). */
#define KL_DLR_MASK (KBOX_DLR_SUCCESS | KBOX_DLR_FAIL | KBOX_DLR_SMSC_FAIL)

/* The connection's own phases (STYLE §5); the core keeps the link state. */
enum kl_phase {
    KL_IDLE = 0,       /* no socket */
    KL_CONNECTING = 1, /* TCP connect in progress */
    KL_OPEN = 2,       /* identified: MTs go, acks/DLRs/MO come */
    KL_DRAINING = 3,   /* bearerbox announced shutdown: collect the last acks */
    KL_PHASE__COUNT
};

static const struct kl_phase_desc {
    const char *name;
    uint32_t next; /* mask of allowed next phases */
} kl_phase_tab[KL_PHASE__COUNT] = {
    [KL_IDLE] = {"idle", BIT(KL_CONNECTING)},
    [KL_CONNECTING] = {"connecting", BIT(KL_OPEN) | BIT(KL_IDLE)},
    [KL_OPEN] = {"open", BIT(KL_DRAINING) | BIT(KL_IDLE)},
    [KL_DRAINING] = {"draining", BIT(KL_IDLE)},
};

/* One MT awaiting its ack: UUID -> the core's wire_seq. */
struct kl_slot {
    uint8_t id[KBOX_UUID_LEN];
    uint32_t wire_seq;
    bool used;
};

/* A received sms the core refused: answered later with ack_failed_tmp. */
struct kl_nack {
    uint8_t id[KBOX_UUID_LEN];
    int32_t time;
};

struct kbox_link {
    struct bearer_link *lk;
    struct ev_loop *loop;
    enum kl_phase phase;
    int fd;
    ev_io rio, wio;
    ev_timer connect_timer, hb_timer, ack_timer, drain_timer, nack_timer;

    uint8_t *in; /* KL_IN_CAP octets */
    size_t in_len;
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    bool want_writable; /* send() said -EAGAIN: tell the core when drained */

    struct kl_slot *slots; /* open addressing, linear probing */
    size_t n_slots, n_used;
    uint32_t next_seq;

    struct kl_nack nacks[KL_NACK_MAX];
    size_t n_nacks;

    uint8_t *mo_ud; /* KL_IN_CAP octets: UDH + data of one MO */
    char why[160];  /* text of the last reason handed to the core */
};

#define KL_OF(ptr, member) ((struct kbox_link *)((char *)(ptr)-offsetof(struct kbox_link, member)))

static struct kbox_str kl_cstr(const char *s)
{
    return (struct kbox_str){(const uint8_t *)s, strlen(s)};
}

/* ---- in-flight table by UUID ----------------------------------------------------- */

static size_t slot_home(const struct kbox_link *kl, const uint8_t id[KBOX_UUID_LEN])
{
    /* v4 UUIDs are random: their first octets are a good hash. */
    uint32_t h =
        (uint32_t)id[0] | (uint32_t)id[1] << 8 | (uint32_t)id[2] << 16 | (uint32_t)id[3] << 24;
    return (size_t)h & (kl->n_slots - 1);
}

static void slot_put(struct kbox_link *kl, const uint8_t id[KBOX_UUID_LEN], uint32_t wire_seq)
{
    size_t i = slot_home(kl, id);
    while (kl->slots[i].used) {
        i = (i + 1) & (kl->n_slots - 1);
    }
    memcpy(kl->slots[i].id, id, KBOX_UUID_LEN);
    kl->slots[i].wire_seq = wire_seq;
    kl->slots[i].used = true;
    kl->n_used++;
}

/* Remove the entry for id; true and *wire_seq when it was there. */
static bool slot_take(struct kbox_link *kl, const uint8_t id[KBOX_UUID_LEN], uint32_t *wire_seq)
{
    size_t mask = kl->n_slots - 1;
    size_t i = slot_home(kl, id);
    size_t k;
    for (k = 0; k < kl->n_slots && kl->slots[i].used; k++) {
        if (memcmp(kl->slots[i].id, id, KBOX_UUID_LEN) == 0) {
            break;
        }
        i = (i + 1) & mask;
    }
    if (k == kl->n_slots || !kl->slots[i].used) {
        return false;
    }
    *wire_seq = kl->slots[i].wire_seq;
    kl->slots[i].used = false;
    kl->n_used--;
    /* Backward-shift deletion keeps probe chains whole without tombstones. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!kl->slots[j].used) {
            break;
        }
        size_t home = slot_home(kl, kl->slots[j].id);
        bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            kl->slots[i] = kl->slots[j];
            kl->slots[j].used = false;
            i = j;
        }
    }
    return true;
}

static void slots_clear(struct kbox_link *kl)
{
    memset(kl->slots, 0, kl->n_slots * sizeof(*kl->slots));
    kl->n_used = 0;
}

/* ---- phases ----------------------------------------------------------------------- */

static void kl_stop_watchers(struct kbox_link *kl)
{
    ev_io_stop(kl->loop, &kl->rio);
    ev_io_stop(kl->loop, &kl->wio);
    ev_timer_stop(kl->loop, &kl->connect_timer);
    ev_timer_stop(kl->loop, &kl->hb_timer);
    ev_timer_stop(kl->loop, &kl->ack_timer);
    ev_timer_stop(kl->loop, &kl->drain_timer);
    ev_timer_stop(kl->loop, &kl->nack_timer);
}

/*
 * The one place the phase changes: checks the table, arms the new phase's
 * timer. Entering IDLE closes the socket and forgets everything that belonged
 * to the connection (the core keeps the parts).
 */
static void kl_go(struct kbox_link *kl, enum kl_phase to)
{
    if (kl->phase == to) {
        return;
    }
    if (!(kl_phase_tab[kl->phase].next & BIT(to))) {
        /* programmer error: keep the phase, the caller's path is wrong */
        snprintf(kl->why, sizeof(kl->why), "kbox phase %s -> %s refused",
                 kl_phase_tab[kl->phase].name, kl_phase_tab[to].name);
        return;
    }
    kl->phase = to;
    switch (to) {
    case KL_IDLE:
        kl_stop_watchers(kl);
        if (kl->fd >= 0) {
            close(kl->fd);
            kl->fd = -1;
        }
        kl->in_len = 0;
        kl->out_off = kl->out_len = 0;
        kl->want_writable = false;
        kl->n_nacks = 0;
        slots_clear(kl);
        break;
    case KL_CONNECTING:
        ev_timer_set(&kl->connect_timer, KL_CONNECT_TIMEOUT_S, 0.);
        ev_timer_start(kl->loop, &kl->connect_timer);
        break;
    case KL_OPEN: {
        ev_timer_stop(kl->loop, &kl->connect_timer);
        unsigned hb_s =
            kl->lk->conf.heartbeat_s ? kl->lk->conf.heartbeat_s : KL_HEARTBEAT_DEFAULT_S;
        ev_timer_set(&kl->hb_timer, hb_s, hb_s);
        ev_timer_start(kl->loop, &kl->hb_timer);
        ev_io_start(kl->loop, &kl->rio);
        break;
    }
    case KL_DRAINING:
        ev_timer_stop(kl->loop, &kl->hb_timer);
        ev_timer_set(&kl->drain_timer, KL_DRAIN_TIMEOUT_S, 0.);
        ev_timer_start(kl->loop, &kl->drain_timer);
        break;
    case KL_PHASE__COUNT:
        break;
    }
}

/* The connection is gone: close it and let the core requeue and reconnect. */
static void kl_drop(struct kbox_link *kl, const char *why)
{
    if (kl->phase == KL_IDLE) {
        return;
    }
    if (why != kl->why) {
        snprintf(kl->why, sizeof(kl->why), "%s", why);
    }
    kl_go(kl, KL_IDLE);
    bearer_link_lost(kl->lk, kl->why);
}

/* ---- output ----------------------------------------------------------------------- */

static int kl_out_reserve(struct kbox_link *kl, size_t need)
{
    if (kl->out_off > 0 && kl->out_off == kl->out_len) {
        kl->out_off = kl->out_len = 0;
    }
    if (kl->out_cap - kl->out_len >= need) {
        return 0;
    }
    if (kl->out_off > 0) {
        memmove(kl->out, kl->out + kl->out_off, kl->out_len - kl->out_off);
        kl->out_len -= kl->out_off;
        kl->out_off = 0;
        if (kl->out_cap - kl->out_len >= need) {
            return 0;
        }
    }
    size_t cap = kl->out_cap ? kl->out_cap : 4096;
    while (cap - kl->out_len < need) {
        cap *= 2;
    }
    if (cap > KL_OUT_HARD) {
        return -ENOBUFS;
    }
    uint8_t *p = realloc(kl->out, cap);
    if (!p) {
        return -ENOMEM;
    }
    kl->out = p;
    kl->out_cap = cap;
    return 0;
}

/* Frame m into the output buffer; the write watcher sends it. */
static int kl_queue(struct kbox_link *kl, const struct kbox_msg *m, struct ota_err *err)
{
    int plen = kbox_msg_packed_len(m, err);
    if (plen < 0) {
        return plen;
    }
    size_t need = KBOX_FRAME_HDR_LEN + (size_t)plen;
    int rc = kl_out_reserve(kl, need);
    if (rc < 0) {
        return ota_fail(err, rc, OTA_ERR_LIMIT, "box output buffer full");
    }
    rc = kbox_msg_encode(m, kl->out + kl->out_len, kl->out_cap - kl->out_len, err);
    if (rc < 0) {
        return rc;
    }
    kl->out_len += (size_t)rc;
    ev_io_start(kl->loop, &kl->wio);
    return 0;
}

/* Queue a control message (identify, heartbeat, ack); failure drops the link. */
static void kl_queue_ctl(struct kbox_link *kl, const struct kbox_msg *m)
{
    struct ota_err e;
    ota_err_clear(&e);
    if (kl_queue(kl, m, &e) < 0) {
        snprintf(kl->why, sizeof(kl->why), "cannot queue %s: %.100s", kbox_msg_type_name(m->type),
                 e.msg);
        kl_drop(kl, kl->why);
    }
}

static void kl_send_ack(struct kbox_link *kl, enum kbox_ack_status nack, int32_t time,
                        const uint8_t id[KBOX_UUID_LEN])
{
    struct kbox_msg m;
    kbox_msg_ack(&m, nack, time, id);
    kl_queue_ctl(kl, &m);
}

static void kl_ack_encode(struct bearer_ack *a, const uint8_t id[KBOX_UUID_LEN], int32_t time)
{
    memcpy(a->data, id, KBOX_UUID_LEN);
    memcpy(a->data + KBOX_UUID_LEN, &time, sizeof(time));
    a->len = KL_ACK_LEN;
}

static void kl_connected(struct kbox_link *kl)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(kl->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
        soerr = errno;
    }
    if (soerr != 0) {
        snprintf(kl->why, sizeof(kl->why), "connect to %s:%u: %s", kl->lk->conf.host,
                 kl->lk->conf.port, strerror(soerr));
        kl_drop(kl, kl->why);
        return;
    }
    ev_io_stop(kl->loop, &kl->wio);
    (void)bearer_link_set_state(kl->lk, BEARER_LINK_BINDING, "connected, identify");
    if (kl->phase != KL_CONNECTING) {
        return; /* closed by the state callback (bearer shutdown) */
    }
    kl_go(kl, KL_OPEN);
    struct kbox_msg m;
    kbox_msg_identify(&m, kl_cstr(kl->lk->conf.u.kbox.boxc_id));
    kl_queue_ctl(kl, &m);
    if (kl->phase != KL_OPEN) {
        return;
    }
    /* §3: bearerbox answers nothing; the box is routable once identify is read. */
    bearer_link_up(kl->lk, "identified");
}

static void kl_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct kbox_link *kl = KL_OF(w, wio);
    if (kl->phase == KL_CONNECTING) {
        kl_connected(kl);
        return;
    }
    while (kl->out_off < kl->out_len) {
        ssize_t n = write(kl->fd, kl->out + kl->out_off, kl->out_len - kl->out_off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }
            snprintf(kl->why, sizeof(kl->why), "write to bearerbox: %s", strerror(errno));
            kl_drop(kl, kl->why);
            return;
        }
        kl->out_off += (size_t)n;
    }
    kl->out_off = kl->out_len = 0;
    ev_io_stop(kl->loop, &kl->wio);
    if (kl->want_writable) {
        kl->want_writable = false;
        bearer_link_writable(kl->lk);
    }
}

/* ---- timers ----------------------------------------------------------------------- */

static void kl_connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct kbox_link *kl = KL_OF(w, connect_timer);
    snprintf(kl->why, sizeof(kl->why), "connect to %s:%u: no answer in %.0f s", kl->lk->conf.host,
             kl->lk->conf.port, KL_CONNECT_TIMEOUT_S);
    kl_drop(kl, kl->why);
}

static void kl_heartbeat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct kbox_link *kl = KL_OF(w, hb_timer);
    struct kbox_msg m;
    /* smsbox reports its pending requests as load; ours are the parts in flight. */
    kbox_msg_heartbeat(&m, (int32_t)kl->lk->inflight.n);
    kl_queue_ctl(kl, &m);
}

static double kl_ack_timeout_s(const struct kbox_link *kl)
{
    unsigned ms = kl->lk->conf.resp_timeout_ms ? kl->lk->conf.resp_timeout_ms : 60000;
    return ms / 1000.0;
}

/* Arm the ack timer for the oldest part in flight, or a full period from now. */
static void kl_ack_timer_arm(struct kbox_link *kl)
{
    if (ev_is_active(&kl->ack_timer)) {
        return;
    }
    /* The part being sent is not in the core's in-flight table yet. */
    struct bearer_part *oldest = bearer_link_inflight_oldest(kl->lk);
    ev_tstamp since = oldest ? oldest->sent_at : ev_now(kl->loop);
    double due = since + kl_ack_timeout_s(kl) - ev_now(kl->loop);
    ev_timer_set(&kl->ack_timer, due > 0 ? due : 0., 0.);
    ev_timer_start(kl->loop, &kl->ack_timer);
}

static void kl_ack_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct kbox_link *kl = KL_OF(w, ack_timer);
    struct bearer_part *oldest = bearer_link_inflight_oldest(kl->lk);
    if (oldest && ev_now(kl->loop) - oldest->sent_at >= kl_ack_timeout_s(kl)) {
        kl->lk->st.timeouts++;
        snprintf(kl->why, sizeof(kl->why), "no ack from bearerbox in %.0f s", kl_ack_timeout_s(kl));
        kl_drop(kl, kl->why);
        return;
    }
    if (oldest) {
        kl_ack_timer_arm(kl);
    }
}

static void kl_drain_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    kl_drop(KL_OF(w, drain_timer), "acks missing after bearerbox shutdown");
}

static void kl_nack_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct kbox_link *kl = KL_OF(w, nack_timer);
    size_t n = kl->n_nacks;
    kl->n_nacks = 0;
    for (size_t i = 0; i < n && kl->phase != KL_IDLE; i++) {
        kl_send_ack(kl, KBOX_ACK_FAILED_TMP, kl->nacks[i].time, kl->nacks[i].id);
    }
}

/* The core refused a DLR/MO: have bearerbox queue it again, after a pause. */
static void kl_nack_later(struct kbox_link *kl, const uint8_t id[KBOX_UUID_LEN], int32_t time)
{
    if (kl->n_nacks == KL_NACK_MAX) {
        return; /* left unacknowledged: bearerbox redelivers it after a reconnect (§7) */
    }
    memcpy(kl->nacks[kl->n_nacks].id, id, KBOX_UUID_LEN);
    kl->nacks[kl->n_nacks].time = time;
    kl->n_nacks++;
    if (!ev_is_active(&kl->nack_timer)) {
        ev_timer_set(&kl->nack_timer, KL_NACK_DELAY_S, 0.);
        ev_timer_start(kl->loop, &kl->nack_timer);
    }
}

/* ---- input ------------------------------------------------------------------------ */

static void kl_on_ack(struct kbox_link *kl, const struct kbox_ack *a)
{
    uint32_t seq = 0;
    if (!slot_take(kl, a->id, &seq)) {
        return; /* not ours, or already answered: nothing to match */
    }
    char uuid[KBOX_UUID_STR_LEN + 1];
    kbox_uuid_format(a->id, uuid);
    uuid[KBOX_UUID_STR_LEN] = '\0';
    const char *reason = kbox_ack_status_name(a->nack);
    switch (kbox_ack_classify(a->nack)) {
    case KBOX_ACK_CLASS_ACCEPTED:
        (void)bearer_link_resp(kl->lk, seq, BEARER_RESP_OK, uuid, a->nack, reason);
        break;
    case KBOX_ACK_CLASS_RETRY:
        (void)bearer_link_resp(kl->lk, seq, BEARER_RESP_THROTTLED, NULL, a->nack, reason);
        break;
    case KBOX_ACK_CLASS_FINAL:
    case KBOX_ACK_CLASS__COUNT:
        (void)bearer_link_resp(kl->lk, seq, BEARER_RESP_FINAL, NULL, a->nack, reason);
        break;
    }
    if (kl->phase == KL_DRAINING && kl->lk->inflight.n == 0) {
        kl_drop(kl, kl->why); /* the last ack after bearerbox's shutdown notice */
    }
}

/* Copy s as a C string into dst[cap]; false when it does not fit or holds a NUL. */
static bool kl_copy_text(char *dst, size_t cap, struct kbox_str s)
{
    if (s.len >= cap || (s.len > 0 && memchr(s.p, '\0', s.len))) {
        dst[0] = '\0';
        return false;
    }
    if (s.len > 0) {
        memcpy(dst, s.p, s.len);
    }
    dst[s.len] = '\0';
    return true;
}

/* Our dlr_url: the token in decimal, nothing else. */
static bool kl_parse_token(struct kbox_str s, uint64_t *token)
{
    uint64_t v = 0;
    if (s.len == 0 || s.len > 20) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(s.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *token = v;
    return true;
}

/* Find "key" in an SMPP receipt text and return what follows up to a space. */
static struct kbox_str kl_receipt_field(struct kbox_str text, const char *key)
{
    size_t kl_len = strlen(key);
    for (size_t i = 0; text.p && i + kl_len <= text.len; i++) {
        if ((i == 0 || text.p[i - 1] == ' ') && memcmp(text.p + i, key, kl_len) == 0) {
            size_t j = i + kl_len;
            size_t end = j;
            while (end < text.len && text.p[end] != ' ') {
                end++;
            }
            return (struct kbox_str){text.p + j, end - j};
        }
    }
    return KBOX_STR_NULL;
}

static enum bearer_dlr_state kl_dlr_state(enum kbox_dlr_event ev)
{
    switch (ev) {
    case KBOX_DLR_EV_DELIVERED:
        return BEARER_DLR_DELIVERED;
    case KBOX_DLR_EV_FAILED:
        return BEARER_DLR_FAILED;
    case KBOX_DLR_EV_EXPIRED:
        return BEARER_DLR_EXPIRED;
    case KBOX_DLR_EV_UNDETERMINED:
        return BEARER_DLR_UNKNOWN;
    case KBOX_DLR_EV_SMSC_REJECTED:
        return BEARER_DLR_REJECTED;
    case KBOX_DLR_EV_BUFFERED:
    case KBOX_DLR_EV_SMSC_ACCEPTED:
    case KBOX_DLR_EV__COUNT:
        break;
    }
    return BEARER_DLR_ACCEPTED;
}

static void kl_on_dlr(struct kbox_link *kl, const struct kbox_sms *sms)
{
    struct kbox_dlr d;
    struct ota_err e;
    if (kbox_sms_read_dlr(sms, &d, &e) < 0) {
        /* no event bit we know: redelivery cannot help */
        kl->lk->st.dlrs_unmatched++;
        kl_send_ack(kl, KBOX_ACK_SUCCESS, sms->time, sms->id);
        return;
    }
    struct bearer_dlr bd;
    char dest[KL_TEXT_MAX];
    memset(&bd, 0, sizeof(bd));
    bd.has_token = kl_parse_token(d.correlation, &bd.token);
    /*
     * The canonical id is the SMSC's (foreign_id). A bearerbox-made NACK can
     * come without one; then our own correlation stands in for it so that
     * the report still reaches the caller, who matches Kannel reports by token.
     */
    if (!kl_copy_text(bd.msg_id, sizeof(bd.msg_id), d.foreign_id) || !bd.msg_id[0]) {
        (void)kl_copy_text(bd.msg_id, sizeof(bd.msg_id), d.correlation);
    }
    bd.state = kl_dlr_state(d.event);
    bd.final = d.final;
    struct kbox_str stat = kl_receipt_field(d.text, "stat:");
    if (stat.p && stat.len > 0) {
        (void)kl_copy_text(bd.stat, sizeof(bd.stat),
                           (struct kbox_str){stat.p, stat.len < sizeof(bd.stat) - 1
                                                         ? stat.len
                                                         : sizeof(bd.stat) - 1});
    } else if (d.event == KBOX_DLR_EV_SMSC_REJECTED) {
        snprintf(bd.stat, sizeof(bd.stat), "NACK");
    } else if (d.event == KBOX_DLR_EV_SMSC_ACCEPTED) {
        snprintf(bd.stat, sizeof(bd.stat), "ACK");
    }
    struct kbox_str errs = kl_receipt_field(d.text, "err:");
    for (size_t i = 0; errs.p && i < errs.len && i < 6 && errs.p[i] >= '0' && errs.p[i] <= '9';
         i++) {
        bd.err = bd.err * 10 + (errs.p[i] - '0');
    }
    bd.dest = kl_copy_text(dest, sizeof(dest), d.receiver) ? dest : "";
    struct bearer_ack ack;
    kl_ack_encode(&ack, d.id, d.time);
    int rc = bearer_link_dlr(kl->lk, &bd, &ack);
    if (kl->phase == KL_IDLE) {
        return; /* closed from inside the callback */
    }
    if (rc == 0) {
        kl_send_ack(kl, KBOX_ACK_SUCCESS, d.time, d.id);
    } else if (rc < 0) {
        kl_nack_later(kl, d.id, d.time);
    } /* BEARER_ACK_LATER: the core holds the ack (kl_release_ack) */
}

/* TS 23.038 §4: the DCS an MO had, rebuilt from Kannel's coding and mclass. */
static uint8_t kl_mo_dcs(const struct kbox_mo *mo)
{
    uint8_t alphabet = 0x00;
    if (mo->coding == KBOX_DC_8BIT) {
        alphabet = 0x04;
    } else if (mo->coding == KBOX_DC_UCS2) {
        alphabet = 0x08;
    }
    if (mo->mclass < 0 || mo->mclass > 3) {
        return alphabet;
    }
    if (alphabet == 0x08) {
        return (uint8_t)(0x10 | alphabet | mo->mclass);
    }
    return (uint8_t)(0xF0 | alphabet | mo->mclass);
}

static void kl_on_mo(struct kbox_link *kl, const struct kbox_sms *sms)
{
    struct kbox_mo mo;
    struct ota_err e;
    char orig[KL_TEXT_MAX], dest[KL_TEXT_MAX];
    if (kbox_sms_read_mo(sms, &mo, &e) < 0 || !kl_copy_text(orig, sizeof(orig), mo.sender) ||
        !kl_copy_text(dest, sizeof(dest), mo.receiver) || mo.udh.len + mo.data.len > KL_IN_CAP) {
        /* malformed: acknowledged and dropped, redelivery cannot help */
        kl_send_ack(kl, KBOX_ACK_SUCCESS, sms->time, sms->id);
        return;
    }
    if (mo.udh.len > 0) {
        memcpy(kl->mo_ud, mo.udh.p, mo.udh.len);
    }
    if (mo.data.len > 0) {
        memcpy(kl->mo_ud + mo.udh.len, mo.data.p, mo.data.len);
    }
    struct bearer_mo bm = {
        .orig = orig,
        .dest = dest,
        .ud = kl->mo_ud,
        .ud_len = mo.udh.len + mo.data.len,
        .udhi = mo.udh.len > 0,
        .pid = mo.pid >= 0 && mo.pid <= 0xFF ? (uint8_t)mo.pid : 0,
        .dcs = kl_mo_dcs(&mo),
        .link = kl->lk->conf.name,
    };
    struct bearer_ack ack;
    kl_ack_encode(&ack, mo.id, mo.time);
    int rc = bearer_link_mo(kl->lk, &bm, &ack);
    if (kl->phase == KL_IDLE) {
        return;
    }
    if (rc == 0) {
        kl_send_ack(kl, KBOX_ACK_SUCCESS, mo.time, mo.id);
    } else if (rc < 0) {
        kl_nack_later(kl, mo.id, mo.time);
    } /* BEARER_ACK_LATER: the core holds the ack (kl_release_ack) */
}

static void kl_on_admin(struct kbox_link *kl, const struct kbox_admin *a)
{
    if (a->command != KBOX_CMD_SHUTDOWN && a->command != KBOX_CMD_RESTART) {
        return; /* suspend/resume/identify/feature: smsbox ignores them too (§8) */
    }
    if (kl->phase != KL_OPEN) {
        return;
    }
    /*
     * Bearerbox waits for its boxes to close before it exits, so the link
     * closes, but only once every MT on the wire has its ack: an ack read now
     * is a part not sent twice (while shutting down bearerbox answers MTs at
     * once with ack_failed_tmp, so this is short; the drain timer bounds it).
     */
    snprintf(kl->why, sizeof(kl->why), "bearerbox %s", kbox_admin_cmd_name(a->command));
    kl_go(kl, KL_DRAINING);
    (void)bearer_link_set_state(kl->lk, BEARER_LINK_CLOSING, kl->why);
    if (kl->lk->inflight.n == 0) {
        kl_drop(kl, kl->why);
    }
}

static void kl_on_payload(struct kbox_link *kl, const uint8_t *p, size_t len)
{
    struct kbox_msg m;
    struct ota_err e;
    if (kbox_msg_unpack(p, len, &m, &e) < 0) {
        return; /* bearerbox drops what it cannot unpack (§1); the stream is still framed */
    }
    switch (m.type) {
    case KBOX_MSG_ACK:
        kl_on_ack(kl, &m.ack);
        break;
    case KBOX_MSG_SMS:
        if (m.sms.sms_type == KBOX_SMS_REPORT_MO) {
            kl_on_dlr(kl, &m.sms);
        } else if (m.sms.sms_type == KBOX_SMS_MO) {
            kl_on_mo(kl, &m.sms);
        } else {
            /* an MT sent to a box is a routing mistake: refuse it for good */
            kl_send_ack(kl, KBOX_ACK_FAILED, m.sms.time, m.sms.id);
        }
        break;
    case KBOX_MSG_ADMIN:
        kl_on_admin(kl, &m.admin);
        break;
    case KBOX_MSG_HEARTBEAT:
    case KBOX_MSG_WDP_DATAGRAM:
    case KBOX_MSG__COUNT:
        break;
    }
}

static void kl_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct kbox_link *kl = KL_OF(w, rio);
    ssize_t n = read(kl->fd, kl->in + kl->in_len, KL_IN_CAP - kl->in_len);
    if (n == 0) {
        kl_drop(kl, kl->phase == KL_DRAINING ? kl->why : "bearerbox closed the connection");
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return;
        }
        snprintf(kl->why, sizeof(kl->why), "read from bearerbox: %s", strerror(errno));
        kl_drop(kl, kl->why);
        return;
    }
    kl->in_len += (size_t)n;
    size_t off = 0;
    for (;;) {
        size_t flen = 0;
        struct ota_err e;
        int rc =
            kbox_frame_check(kl->in + off, kl->in_len - off, KBOX_FRAME_MAX_DEFAULT, &flen, &e);
        if (rc < 0) {
            snprintf(kl->why, sizeof(kl->why), "bad frame from bearerbox: %.100s", e.msg);
            kl_drop(kl, kl->why);
            return;
        }
        if (rc == 0) {
            break;
        }
        kl_on_payload(kl, kl->in + off + KBOX_FRAME_HDR_LEN, flen - KBOX_FRAME_HDR_LEN);
        if (kl->phase == KL_IDLE) {
            return; /* dropped or closed while handling it; the buffer is reset */
        }
        off += flen;
    }
    if (off > 0) {
        memmove(kl->in, kl->in + off, kl->in_len - off);
        kl->in_len -= off;
    }
}

/* ---- ops ---------------------------------------------------------------------------- */

static bool kl_field_ok(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static int kl_init(struct bearer_link *lk, struct ota_err *err)
{
    struct bearer_link_conf *c = &lk->conf;
    if (!kl_field_ok(c->u.kbox.boxc_id, sizeof(c->u.kbox.boxc_id)) ||
        !kl_field_ok(c->u.kbox.smsc_id, sizeof(c->u.kbox.smsc_id))) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "link=%s: boxc_id/smsc_id not terminated",
                        c->name);
    }
    if (!c->u.kbox.boxc_id[0]) {
        /* DLRs only come back to a box whose MTs name it (§3, §6) */
        snprintf(c->u.kbox.boxc_id, sizeof(c->u.kbox.boxc_id), "%s", KL_DEFAULT_BOXC_ID);
    }
    struct kbox_link *kl = calloc(1, sizeof(*kl));
    if (!kl) {
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "link=%s: out of memory", c->name);
    }
    kl->n_slots = 16;
    while (kl->n_slots < 2 * (size_t)(c->window ? c->window : 1)) {
        kl->n_slots *= 2;
    }
    kl->slots = calloc(kl->n_slots, sizeof(*kl->slots));
    kl->in = malloc(KL_IN_CAP);
    kl->mo_ud = malloc(KL_IN_CAP);
    if (!kl->slots || !kl->in || !kl->mo_ud) {
        free(kl->slots);
        free(kl->in);
        free(kl->mo_ud);
        free(kl);
        return ota_fail(err, -ENOMEM, OTA_ERR_ARG, "link=%s: out of memory", c->name);
    }
    kl->lk = lk;
    kl->loop = bearer_link_loop(lk);
    kl->fd = -1;
    kl->phase = KL_IDLE;
    ev_io_init(&kl->rio, kl_read_cb, -1, EV_READ);
    ev_io_init(&kl->wio, kl_write_cb, -1, EV_WRITE);
    ev_timer_init(&kl->connect_timer, kl_connect_timeout_cb, 0., 0.);
    ev_timer_init(&kl->hb_timer, kl_heartbeat_cb, 0., 0.);
    ev_timer_init(&kl->ack_timer, kl_ack_timeout_cb, 0., 0.);
    ev_timer_init(&kl->drain_timer, kl_drain_timeout_cb, 0., 0.);
    ev_timer_init(&kl->nack_timer, kl_nack_cb, 0., 0.);
    lk->impl = kl;
    return 0;
}

static void kl_connect(struct bearer_link *lk)
{
    struct kbox_link *kl = lk->impl;
    if (kl->phase != KL_IDLE) {
        kl_go(kl, KL_IDLE); /* the core only reconnects a link it saw go down */
    }
    kl_go(kl, KL_CONNECTING);
    if (bearer_link_tcp_connect(lk, &kl->fd, kl->why, sizeof(kl->why)) < 0) {
        kl_drop(kl, kl->why);
        return;
    }
    ev_io_set(&kl->rio, kl->fd, EV_READ);
    ev_io_set(&kl->wio, kl->fd, EV_WRITE);
    ev_io_start(kl->loop, &kl->wio); /* writable = connect finished (kl_write_cb) */
}

/* TS 23.038 §4: the message class a DCS asks for, or KBOX_UNDEF. */
static int32_t kl_mclass(uint8_t dcs)
{
    if ((dcs & 0xF0) == 0xF0) {
        return dcs & 0x03;
    }
    if ((dcs & 0xC0) == 0x00 && (dcs & 0x10)) {
        return dcs & 0x03;
    }
    return KBOX_UNDEF;
}

static int kl_send(struct bearer_link *lk, const struct bearer_part *p, uint32_t *wire_seq,
                   struct ota_err *err)
{
    struct kbox_link *kl = lk->impl;
    const struct bearer_msg *msg = &p->msg;
    if (kl->phase != KL_OPEN) {
        return ota_fail(err, -EAGAIN, OTA_ERR_STATE, "box link not open");
    }
    if (kl->out_len - kl->out_off >= KL_OUT_SOFT || 2 * (kl->n_used + 1) > kl->n_slots) {
        kl->want_writable = true;
        return ota_fail(err, -EAGAIN, OTA_ERR_LIMIT, "box link busy");
    }
    struct kbox_mt mt;
    memset(&mt, 0, sizeof(mt));
    if (msg->udhi) {
        if (msg->ud_len < 1 || (size_t)msg->ud[0] + 1 > msg->ud_len) {
            return ota_fail(err, -EINVAL, OTA_ERR_LENGTH, "UDHL %u does not fit UD of %u octets",
                            msg->ud_len ? msg->ud[0] : 0, msg->ud_len);
        }
        size_t udh_len = (size_t)msg->ud[0] + 1;
        mt.udh = (struct kbox_str){msg->ud, udh_len};
        mt.data = (struct kbox_str){msg->ud + udh_len, msg->ud_len - udh_len};
    } else {
        mt.udh = KBOX_STR_NULL;
        mt.data = (struct kbox_str){msg->ud, msg->ud_len};
    }
    /*
     * The part's source, else the link's configured sender; empty (not
     * NULL) lets the SMSC link's defaults apply.
     */
    mt.sender = kl_cstr(msg->src[0] ? msg->src : kl->lk->conf.u.kbox.sender);
    mt.receiver = kl_cstr(msg->dest);
    mt.mclass = kl_mclass(msg->dcs);
    mt.pid = msg->pid;
    mt.priority = msg->priority;
    mt.validity = KBOX_UNDEF;
    mt.time = (int32_t)ev_now(kl->loop);
    mt.boxc_id = kl_cstr(lk->conf.u.kbox.boxc_id);
    mt.smsc_id = lk->conf.u.kbox.smsc_id[0] ? kl_cstr(lk->conf.u.kbox.smsc_id) : KBOX_STR_NULL;
    char token[24];
    if (msg->want_report) {
        snprintf(token, sizeof(token), "%" PRIu64, msg->token);
        mt.dlr_mask = KL_DLR_MASK;
        mt.correlation = kl_cstr(token);
    } else {
        mt.dlr_mask = KBOX_UNDEF;
        mt.correlation = KBOX_STR_NULL;
    }
    if (RAND_bytes(mt.id, (int)sizeof(mt.id)) != 1) {
        return ota_fail(err, -EIO, OTA_ERR_CRYPTO, "RAND_bytes failed for the MT UUID");
    }
    kbox_uuid_make_v4(mt.id);
    struct kbox_msg m;
    int rc = kbox_sms_build_mt(&mt, &m, err);
    if (rc < 0) {
        return rc;
    }
    rc = kl_queue(kl, &m, err);
    if (rc < 0) {
        return rc;
    }
    uint32_t seq = kl->next_seq++;
    slot_put(kl, mt.id, seq);
    *wire_seq = seq;
    kl_ack_timer_arm(kl);
    return 0;
}

static void kl_close(struct bearer_link *lk)
{
    struct kbox_link *kl = lk->impl;
    if (!kl) {
        return;
    }
    /*
     * A box has no goodbye message: smsbox just closes its socket. What is
     * still queued (acks owed for DLRs and MOs already stored by the caller,
     * including released BEARER_ACK_LATER ones) is handed to the kernel
     * first, best effort and without blocking, or bearerbox keeps those
     * reports as unacknowledged and redelivers them. Acks the core still
     * holds are not in this buffer: they were never committed, so they are
     * not sent.
     */
    if (kl->fd >= 0 && kl->phase != KL_CONNECTING) {
        while (kl->out_off < kl->out_len) {
            ssize_t n = send(kl->fd, kl->out + kl->out_off, kl->out_len - kl->out_off,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n <= 0) {
                break;
            }
            kl->out_off += (size_t)n;
        }
    }
    if (kl->phase != KL_IDLE) {
        kl_go(kl, KL_IDLE);
    }
}

/* A held ack released by the core: ack_success for that sms id and time. */
static void kl_release_ack(struct bearer_link *lk, const struct bearer_ack *a)
{
    struct kbox_link *kl = lk->impl;
    uint8_t id[KBOX_UUID_LEN];
    int32_t time;
    if (kl->phase == KL_IDLE || kl->phase == KL_CONNECTING || a->len != KL_ACK_LEN) {
        return;
    }
    memcpy(id, a->data, KBOX_UUID_LEN);
    memcpy(&time, a->data + KBOX_UUID_LEN, sizeof(time));
    kl_send_ack(kl, KBOX_ACK_SUCCESS, time, id);
}

static void kl_free(struct bearer_link *lk)
{
    struct kbox_link *kl = lk->impl;
    if (!kl) {
        return;
    }
    kl_close(lk);
    kl_stop_watchers(kl);
    free(kl->slots);
    free(kl->in);
    free(kl->out);
    free(kl->mo_ud);
    free(kl);
    lk->impl = NULL;
}

const struct bearer_link_ops bearer_kbox_ops = {
    .kind_name = "kbox",
    .init = kl_init,
    .connect = kl_connect,
    .send = kl_send,
    .close = kl_close,
    .free = kl_free,
    .send_ack = kl_release_ack,
};
