/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the card end of ota/scp02.c (GP Card Spec 2.2 Annex E, the
 * simulator's secure element) and of host/card round trips: bad paths first
 * (malformed or foreign INITIALIZE UPDATE, wrong host cryptogram or C-MAC in
 * EXTERNAL AUTHENTICATE, unMACed commands, calls in the wrong state), then a
 * 10-APDU script of all four cases wrapped by the host and unwrapped by the
 * card under SL 01 and 03, tampering of every octet, replay and reordering
 * (the ICV chain, E.4.4), diversified keys and the session DEK.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ota/ota.h"
#include "tests/support/tsupport.h"

struct fx {
    struct ota_crypto *c;
    struct ota_scp02_keys keys; /* card's static keys, KVN 21 */
};

static const uint8_t K_ENC[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                  0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xF0, 0x01};
static const uint8_t K_MAC[16] = {0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98,
                                  0xA9, 0xBA, 0xCB, 0xDC, 0xED, 0xFE, 0x0F, 0x10};
static const uint8_t K_DEK[16] = {0x31, 0x42, 0x53, 0x64, 0x75, 0x86, 0x97, 0xA8,
                                  0xB9, 0xCA, 0xDB, 0xEC, 0xFD, 0x0E, 0x1F, 0x20};
static const uint8_t HC[8] = {0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7};
static const uint8_t CC[6] = {0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5};
static const uint8_t KDD[10] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19};
#define SEQ 0x0042
#define KVN 0x21

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(ota_crypto_new(&f->c, NULL), 0);
    assert_int_equal(ota_scp02_keys_set(&f->keys, K_ENC, 16, K_MAC, 16, K_DEK, 16, KVN, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ota_scp02_keys_wipe(&f->keys);
    ota_crypto_free(f->c);
    free(f);
    return 0;
}

static void assert_card_wiped(const struct ota_scp02_card *cd)
{
    ts_assert_scp02_keys_wiped(&cd->keys, &cd->skeys);
}

/* Host and card up to the point before EXTERNAL AUTHENTICATE is verified. */
static void handshake_to_ea(struct fx *f, struct ota_scp02_session *s, struct ota_scp02_card *cd,
                            uint8_t sl, uint8_t ea[21])
{
    uint8_t iu[14], r[30];

    assert_int_equal(ota_scp02_session_init(s, f->c, &f->keys, KVN, sl, HC, NULL), 0);
    assert_int_equal(ota_scp02_card_init(cd, f->c, &f->keys, KDD, SEQ, CC, NULL), 0);
    assert_int_equal(ota_scp02_init_update(s, iu, sizeof(iu), NULL), 14);
    assert_int_equal(ota_scp02_card_on_init_update(cd, iu, sizeof(iu), r, sizeof(r), NULL), 30);
    assert_int_equal(cd->state, OTA_SCP02_CST_INIT_UPDATED);
    assert_int_equal(ota_scp02_on_init_update_resp(s, r, sizeof(r), NULL), 0);
    assert_int_equal(s->kvn_card, KVN);
    assert_int_equal(s->seq, SEQ);
    assert_memory_equal(s->kdd, KDD, 10);
    assert_memory_equal(s->card_challenge, CC, 6);
    assert_int_equal(ota_scp02_external_authenticate(s, ea, 21, NULL), 21);
}

static void handshake(struct fx *f, struct ota_scp02_session *s, struct ota_scp02_card *cd,
                      uint8_t sl)
{
    uint8_t ea[21];

    handshake_to_ea(f, s, cd, sl, ea);
    assert_int_equal(ota_scp02_card_on_ext_auth(cd, ea, sizeof(ea), NULL), 0);
    assert_int_equal(cd->state, OTA_SCP02_CST_OPEN);
    assert_int_equal(cd->sl, sl);
    assert_int_equal(ota_scp02_on_ext_auth_resp(s, 0x9000, NULL), 0);
}

/* ---- bad paths ------------------------------------------------------------ */

static void test_card_bad_init_update(void **state)
{
    struct fx *f = *state;
    struct ota_scp02_card cd;
    struct ota_err e;
    uint8_t r[30];
    uint8_t iu[14] = {0x80, 0x50, KVN, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00};

    assert_int_equal(ota_scp02_card_init(&cd, f->c, &f->keys, NULL, SEQ, CC, NULL), 0);
    /* Every truncation of the command. */
    for (size_t len = 0; len < 13; len++) {
        uint8_t *p = malloc(len ? len : 1);

        assert_non_null(p);
        memcpy(p, iu, len);
        assert_true(ota_scp02_card_on_init_update(&cd, p, len, r, sizeof(r), &e) < 0);
        assert_int_equal(cd.state, OTA_SCP02_CST_IDLE);
        free(p);
    }
    uint8_t bad[14];
    memcpy(bad, iu, 14);
    bad[1] = 0x51;
    assert_int_equal(ota_scp02_card_on_init_update(&cd, bad, 14, r, sizeof(r), &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    memcpy(bad, iu, 14);
    bad[0] = 0x00;
    assert_int_equal(ota_scp02_card_on_init_update(&cd, bad, 14, r, sizeof(r), &e), -EBADMSG);
    memcpy(bad, iu, 14);
    bad[3] = 0x01;
    assert_int_equal(ota_scp02_card_on_init_update(&cd, bad, 14, r, sizeof(r), &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    /* Lc 7 with 7 data octets: a well-formed APDU with the wrong challenge length. */
    const uint8_t lc7[12] = {0x80, 0x50, 0x00, 0x00, 0x07, 1, 2, 3, 4, 5, 6, 7};
    assert_int_equal(ota_scp02_card_on_init_update(&cd, lc7, 12, r, sizeof(r), &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    /* Another key version. */
    memcpy(bad, iu, 14);
    bad[2] = 0x22;
    assert_int_equal(ota_scp02_card_on_init_update(&cd, bad, 14, r, sizeof(r), &e), -ENOENT);
    assert_int_equal(e.code, OTA_ERR_KEY);
    /* No room for the answer. */
    assert_int_equal(ota_scp02_card_on_init_update(&cd, iu, 14, r, 29, &e), -ENOSPC);
    assert_int_equal(e.code, OTA_ERR_NOSPACE);
    assert_int_equal(cd.state, OTA_SCP02_CST_IDLE);
    /* Case 3 (no Le, as over T=0) and channel 1 are fine; then not twice. */
    iu[0] = 0x81;
    assert_int_equal(ota_scp02_card_on_init_update(&cd, iu, 13, r, sizeof(r), NULL), 30);
    assert_int_equal(r[10], KVN);
    assert_int_equal(r[11], 0x02);
    assert_int_equal(ota_scp02_card_on_init_update(&cd, iu, 14, r, sizeof(r), &e), -EPROTO);
    assert_int_equal(e.code, OTA_ERR_STATE);
    ota_scp02_card_fini(&cd);
    assert_int_equal(cd.state, OTA_SCP02_CST_CLOSED);
    assert_card_wiped(&cd);
    ota_scp02_card_fini(&cd);
    ota_scp02_card_fini(NULL);
    /* init refuses bad arguments and leaves a zeroed card. */
    struct ota_scp02_keys k = f->keys;
    k.enc.len = 8;
    assert_int_equal(ota_scp02_card_init(&cd, f->c, &k, NULL, SEQ, CC, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_KEY);
    assert_int_equal(ota_scp02_card_init(&cd, f->c, &f->keys, NULL, SEQ, NULL, &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_ARG);
    assert_card_wiped(&cd);
}

static void test_card_bad_ext_auth(void **state)
{
    struct fx *f = *state;
    uint8_t ea[21];

    /* Flip each octet after the header: cryptogram -> CRYPTOGRAM, C-MAC -> BAD_CC. */
    for (size_t pos = 0; pos < 21; pos++) {
        struct ota_scp02_session s;
        struct ota_scp02_card cd;
        struct ota_err e;
        int rc;

        handshake_to_ea(f, &s, &cd, 0x01, ea);
        ea[pos] ^= 0x10;
        rc = ota_scp02_card_on_ext_auth(&cd, ea, sizeof(ea), &e);
        assert_true(rc < 0);
        if (pos >= 5 && pos < 13) {
            assert_int_equal(rc, -EACCES);
            assert_int_equal(e.code, OTA_ERR_CRYPTOGRAM);
        } else if (pos >= 13 || pos == 0 || pos == 2) {
            /* CLA 94 / SL 11 are refused as values; otherwise the MAC. */
            assert_true(e.code == OTA_ERR_BAD_CC || e.code == OTA_ERR_VALUE);
            if (pos >= 13) {
                assert_int_equal(e.code, OTA_ERR_BAD_CC);
            }
        }
        assert_int_equal(cd.state, OTA_SCP02_CST_FAILED);
        assert_int_equal(cd.last_event, OTA_SCP02_CEV_EXT_AUTH_BAD);
        assert_card_wiped(&cd);
        uint8_t out[64];
        const uint8_t p[4] = {0x84, 0xF2, 0x80, 0x00};
        assert_int_equal(ota_scp02_card_unwrap(&cd, p, 4, out, sizeof(out), &e), -EPROTO);
        ota_scp02_card_fini(&cd);
        ota_scp02_session_fini(&s);
    }
    /* Security level 11 (R-MAC) and 13 are refused by the card. */
    static const uint8_t sls[] = {0x11, 0x13, 0x02};
    for (size_t i = 0; i < OTA_ARRAY_SIZE(sls); i++) {
        struct ota_scp02_session s;
        struct ota_scp02_card cd;
        struct ota_err e;

        handshake_to_ea(f, &s, &cd, 0x01, ea);
        ea[2] = sls[i];
        assert_int_equal(ota_scp02_card_on_ext_auth(&cd, ea, sizeof(ea), &e), -EINVAL);
        assert_int_equal(e.code, OTA_ERR_VALUE);
        ota_scp02_card_fini(&cd);
        ota_scp02_session_fini(&s);
    }
    /* Truncated EXTERNAL AUTHENTICATE, every length. */
    for (size_t len = 0; len < 21; len++) {
        struct ota_scp02_session s;
        struct ota_scp02_card cd;
        struct ota_err e;

        handshake_to_ea(f, &s, &cd, 0x03, ea);
        uint8_t *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, ea, len);
        assert_true(ota_scp02_card_on_ext_auth(&cd, p, len, &e) < 0);
        assert_int_equal(cd.state, OTA_SCP02_CST_FAILED);
        free(p);
        ota_scp02_card_fini(&cd);
        ota_scp02_session_fini(&s);
    }
}

static void test_card_wrong_state(void **state)
{
    struct fx *f = *state;
    struct ota_scp02_card cd;
    struct ota_err e;
    uint8_t out[64], buf[16] = {0};
    const uint8_t ea[21] = {0x84, 0x82, 0x01, 0x00, 0x10};
    const uint8_t w[4] = {0x84, 0xF2, 0x80, 0x00};

    assert_int_equal(ota_scp02_card_init(&cd, f->c, &f->keys, KDD, SEQ, CC, NULL), 0);
    assert_int_equal(ota_scp02_card_on_ext_auth(&cd, ea, sizeof(ea), &e), -EPROTO);
    assert_int_equal(e.code, OTA_ERR_STATE);
    assert_int_equal(ota_scp02_card_unwrap(&cd, w, sizeof(w), out, sizeof(out), &e), -EPROTO);
    assert_int_equal(ota_scp02_card_decrypt_sensitive(&cd, buf, 16, out, &e), -EPROTO);
    assert_int_equal(cd.state, OTA_SCP02_CST_IDLE);
    assert_string_equal(ota_scp02_card_state_name(cd.state), "idle");
    for (int i = 0; i < OTA_SCP02_CST__COUNT; i++) {
        assert_string_not_equal(ota_scp02_card_state_name((enum ota_scp02_card_state)i), "unknown");
    }
    for (int i = 0; i < OTA_SCP02_CEV__COUNT; i++) {
        assert_string_not_equal(ota_scp02_card_event_name((enum ota_scp02_card_event)i), "unknown");
    }
    assert_string_equal(ota_scp02_card_state_name((enum ota_scp02_card_state)42), "unknown");
    ota_scp02_card_fini(&cd);
}

/* ---- round trips ------------------------------------------------------------ */

/* Ten commands of all four cases, channels 0 and 1, empty to large data. */
static size_t script_apdu(size_t i, uint8_t *p)
{
    switch (i) {
    case 0: /* case 1 */
        memcpy(p, "\x80\xF0\x80\x0F", 4);
        return 4;
    case 1: /* case 2, Le 00 */
        memcpy(p, "\x80\xCA\x00\x66\x00", 5);
        return 5;
    case 2: /* case 2, Le 10, channel 1 */
        memcpy(p, "\x81\xCA\x9F\x7F\x10", 5);
        return 5;
    case 3: /* case 3, data of a whole block */
        memcpy(p, "\x80\xE4\x00\x80\x08\x4F\x06\xA0\x00\x00\x01\x51\x00", 13);
        return 13;
    case 4: /* case 4 */
        memcpy(p, "\x80\xF2\x40\x02\x02\x4F\x00\x00", 8);
        return 8;
    case 5: /* case 3, data ending like padding */
        memcpy(p, "\x80\xE2\x80\x00\x03\x01\x80\x00", 8);
        return 8;
    case 6: { /* case 3, 200 octets */
        p[0] = 0x80;
        p[1] = 0xE8;
        p[2] = 0x00;
        p[3] = 0x01;
        p[4] = 200;
        for (size_t j = 0; j < 200; j++) {
            p[5 + j] = (uint8_t)(j * 7 + 3);
        }
        return 205;
    }
    case 7: /* case 1, ISO class */
        memcpy(p, "\x00\x70\x00\x00", 4);
        return 4;
    case 8: { /* case 4, largest data that still fits under SL 03: 239 */
        p[0] = 0x80;
        p[1] = 0xE2;
        p[2] = 0x90;
        p[3] = 0x00;
        p[4] = 239;
        for (size_t j = 0; j < 239; j++) {
            p[5 + j] = (uint8_t)(255 - j);
        }
        p[5 + 239] = 0x00;
        return 245;
    }
    default: /* case 3 on channel 3 */
        memcpy(p, "\x83\xF0\x40\x80\x01\x55", 6);
        return 6;
    }
}

#define N_SCRIPT 10

static void roundtrip(struct fx *f, uint8_t sl)
{
    struct ota_scp02_session s;
    struct ota_scp02_card cd;
    uint8_t p[300], w[300], u[300];

    handshake(f, &s, &cd, sl);
    for (size_t i = 0; i < N_SCRIPT; i++) {
        size_t n = script_apdu(i, p);
        int wl = ota_scp02_wrap(&s, p, n, w, sizeof(w), NULL);

        assert_true(wl > 0);
        assert_int_equal(w[0], p[0] | 0x04);
        assert_int_equal(w[1], p[1]);
        if (sl == 0x03 && n > 5) {
            /* data is not sent in clear */
            assert_memory_not_equal(w + 5, p + 5, 4);
        }
        int ul = ota_scp02_card_unwrap(&cd, w, (size_t)wl, u, sizeof(u), NULL);
        assert_int_equal(ul, (int)n);
        assert_memory_equal(u, p, n);
        assert_memory_equal(s.mac_chain, cd.mac_chain, 8);
    }
    assert_int_equal(s.n_wrapped, N_SCRIPT);
    assert_int_equal(cd.state, OTA_SCP02_CST_OPEN);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);
}

static void test_roundtrip_sl01(void **state)
{
    roundtrip(*state, 0x01);
}

static void test_roundtrip_sl03(void **state)
{
    roundtrip(*state, 0x03);
}

static void test_roundtrip_sl00(void **state)
{
    struct fx *f = *state;
    struct ota_scp02_session s;
    struct ota_scp02_card cd;
    uint8_t p[300], w[300], u[300];

    handshake(f, &s, &cd, 0x00);
    for (size_t i = 0; i < N_SCRIPT; i++) {
        size_t n = script_apdu(i, p);
        assert_int_equal(ota_scp02_wrap(&s, p, n, w, sizeof(w), NULL), (int)n);
        assert_memory_equal(w, p, n);
        assert_int_equal(ota_scp02_card_unwrap(&cd, w, n, u, sizeof(u), NULL), (int)n);
        assert_memory_equal(u, p, n);
    }
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);
}

/* Tamper with every octet of the 4th wrapped command: the card must refuse it. */
static void tamper(struct fx *f, uint8_t sl)
{
    uint8_t p[300], w[300], u[300];
    size_t target = 4, wl = 0;

    for (size_t pos = 0;; pos++) {
        struct ota_scp02_session s;
        struct ota_scp02_card cd;
        struct ota_err e;

        handshake(f, &s, &cd, sl);
        for (size_t i = 0; i < target; i++) {
            size_t n = script_apdu(i, p);
            int rc = ota_scp02_wrap(&s, p, n, w, sizeof(w), NULL);
            assert_true(rc > 0);
            assert_true(ota_scp02_card_unwrap(&cd, w, (size_t)rc, u, sizeof(u), NULL) > 0);
        }
        size_t n = script_apdu(target, p);
        int rc = ota_scp02_wrap(&s, p, n, w, sizeof(w), NULL);
        assert_true(rc > 0);
        wl = (size_t)rc;
        if (pos >= wl) {
            ota_scp02_card_fini(&cd);
            ota_scp02_session_fini(&s);
            break;
        }
        w[pos] ^= 0x01;
        if (pos == 0) {
            w[pos] ^= 0x03; /* keep the 04 bit and channel 0..3: only the chan differs */
        }
        rc = ota_scp02_card_unwrap(&cd, w, wl, u, sizeof(u), &e);
        if (pos == wl - 1) {
            /* E.4.4: Le is outside the C-MAC, so a changed Le passes. */
            assert_int_equal(rc, (int)n);
            assert_memory_equal(u, p, n - 1);
            assert_int_equal(u[n - 1], p[n - 1] ^ 0x01);
            assert_int_equal(cd.state, OTA_SCP02_CST_OPEN);
            ota_scp02_card_fini(&cd);
            ota_scp02_session_fini(&s);
            continue;
        }
        assert_true(rc < 0);
        if (pos != 4) {
            /* not Lc (length errors) nor Le (not MACed, see below) */
            if (sl == 0x01 || pos < 5) {
                assert_int_equal(rc, -EACCES);
                assert_int_equal(e.code, OTA_ERR_BAD_CC);
            } else {
                assert_true(e.code == OTA_ERR_BAD_CC || e.code == OTA_ERR_PADDING);
            }
        }
        assert_int_equal(cd.state, OTA_SCP02_CST_FAILED);
        assert_int_equal(cd.last_event, OTA_SCP02_CEV_SECURITY_ERROR);
        assert_card_wiped(&cd);
        ota_scp02_card_fini(&cd);
        ota_scp02_session_fini(&s);
    }
    assert_true(wl > 5);
}

static void test_tamper_sl01(void **state)
{
    tamper(*state, 0x01);
}

static void test_tamper_sl03(void **state)
{
    tamper(*state, 0x03);
}

static void test_replay_and_reorder(void **state)
{
    struct fx *f = *state;
    struct ota_scp02_session s;
    struct ota_scp02_card cd;
    struct ota_err e;
    uint8_t p[300], w1[300], w2[300], u[300];
    int l1, l2;

    /* Replay of an accepted command. */
    handshake(f, &s, &cd, 0x01);
    size_t n = script_apdu(3, p);
    l1 = ota_scp02_wrap(&s, p, n, w1, sizeof(w1), NULL);
    assert_true(l1 > 0);
    assert_int_equal(ota_scp02_card_unwrap(&cd, w1, (size_t)l1, u, sizeof(u), NULL), (int)n);
    assert_int_equal(ota_scp02_card_unwrap(&cd, w1, (size_t)l1, u, sizeof(u), &e), -EACCES);
    assert_int_equal(e.code, OTA_ERR_BAD_CC);
    assert_int_equal(cd.state, OTA_SCP02_CST_FAILED);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);

    /* The same plain command twice wraps to different MACs. */
    handshake(f, &s, &cd, 0x03);
    l1 = ota_scp02_wrap(&s, p, n, w1, sizeof(w1), NULL);
    l2 = ota_scp02_wrap(&s, p, n, w2, sizeof(w2), NULL);
    assert_int_equal(l1, l2);
    assert_memory_not_equal(w1 + l1 - 8, w2 + l2 - 8, 8);
    /* Delivered out of order: the second fails against the chain. */
    assert_int_equal(ota_scp02_card_unwrap(&cd, w2, (size_t)l2, u, sizeof(u), &e), -EACCES);
    assert_int_equal(e.code, OTA_ERR_BAD_CC);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);

    /* A command from another session (other host challenge) fails too. */
    handshake(f, &s, &cd, 0x01);
    l1 = ota_scp02_wrap(&s, p, n, w1, sizeof(w1), NULL);
    ota_scp02_session_fini(&s);
    ota_scp02_card_fini(&cd);
    struct ota_scp02_session s2;
    uint8_t hc2[8] = {9, 9, 9, 9, 9, 9, 9, 9}, iu[14], r[30], ea[21];
    assert_int_equal(ota_scp02_session_init(&s2, f->c, &f->keys, 0x00, 0x01, hc2, NULL), 0);
    assert_int_equal(ota_scp02_card_init(&cd, f->c, &f->keys, KDD, SEQ, CC, NULL), 0);
    assert_int_equal(ota_scp02_init_update(&s2, iu, sizeof(iu), NULL), 14);
    assert_int_equal(ota_scp02_card_on_init_update(&cd, iu, 14, r, sizeof(r), NULL), 30);
    assert_int_equal(ota_scp02_on_init_update_resp(&s2, r, 30, NULL), 0);
    assert_int_equal(ota_scp02_external_authenticate(&s2, ea, 21, NULL), 21);
    assert_int_equal(ota_scp02_card_on_ext_auth(&cd, ea, 21, NULL), 0);
    assert_int_equal(ota_scp02_card_unwrap(&cd, w1, (size_t)l1, u, sizeof(u), &e), -EACCES);
    assert_int_equal(e.code, OTA_ERR_BAD_CC);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s2);
}

static void test_card_unwrap_bad(void **state)
{
    struct fx *f = *state;
    struct ota_scp02_session s;
    struct ota_scp02_card cd;
    struct ota_err e;
    uint8_t p[300], w[300], u[300];

    /* An unMACed command under SL 01. */
    handshake(f, &s, &cd, 0x01);
    size_t n = script_apdu(4, p);
    assert_int_equal(ota_scp02_card_unwrap(&cd, p, n, u, sizeof(u), &e), -EACCES);
    assert_int_equal(e.code, OTA_ERR_PROTECTION);
    assert_int_equal(cd.state, OTA_SCP02_CST_FAILED);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);

    /* Lc shorter than a MAC; malformed; channel 4+. */
    static const uint8_t shorts[][9] = {
        {0x84, 0xF2, 0x80, 0x00, 0x07, 1, 2, 3, 4},
    };
    handshake(f, &s, &cd, 0x01);
    assert_int_equal(ota_scp02_card_unwrap(&cd, shorts[0], 5 + 4, u, sizeof(u), &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_TRUNCATED);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);
    const uint8_t lc7[12] = {0x84, 0xF2, 0x80, 0x00, 0x07, 1, 2, 3, 4, 5, 6, 7};
    handshake(f, &s, &cd, 0x01);
    assert_int_equal(ota_scp02_card_unwrap(&cd, lc7, 12, u, sizeof(u), &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_LENGTH);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);
    const uint8_t c4[4] = {0xC4, 0xF2, 0x80, 0x00};
    handshake(f, &s, &cd, 0x01);
    assert_int_equal(ota_scp02_card_unwrap(&cd, c4, 4, u, sizeof(u), &e), -EINVAL);
    assert_int_equal(e.code, OTA_ERR_VALUE);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);

    /* SL 03: cipher text not a whole number of blocks. */
    handshake(f, &s, &cd, 0x03);
    n = script_apdu(3, p);
    int wl = ota_scp02_wrap(&s, p, n, w, sizeof(w), NULL);
    assert_true(wl > 13);
    /* Drop one cipher octet and fix Lc. */
    memmove(w + 5, w + 6, (size_t)wl - 6);
    w[4]--;
    assert_int_equal(ota_scp02_card_unwrap(&cd, w, (size_t)wl - 1, u, sizeof(u), &e), -EBADMSG);
    assert_int_equal(e.code, OTA_ERR_PADDING);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);

    /* -ENOSPC leaves the card open with its chain: the retry succeeds. */
    handshake(f, &s, &cd, 0x03);
    n = script_apdu(6, p);
    wl = ota_scp02_wrap(&s, p, n, w, sizeof(w), NULL);
    assert_true(wl > 0);
    assert_int_equal(ota_scp02_card_unwrap(&cd, w, (size_t)wl, u, n - 1, &e), -ENOSPC);
    assert_int_equal(e.code, OTA_ERR_NOSPACE);
    assert_int_equal(cd.state, OTA_SCP02_CST_OPEN);
    assert_int_equal(ota_scp02_card_unwrap(&cd, w, (size_t)wl, u, n, NULL), (int)n);
    assert_memory_equal(u, p, n);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);
}

/* SL 03 with no data field: MAC only, no cipher block (GPPro behaviour). */
static void test_sl03_no_data(void **state)
{
    struct fx *f = *state;
    struct ota_scp02_session s;
    struct ota_scp02_card cd;
    uint8_t w[64], u[64];
    const uint8_t c2[5] = {0x80, 0xCA, 0x00, 0x66, 0x00};

    handshake(f, &s, &cd, 0x03);
    assert_int_equal(ota_scp02_wrap(&s, c2, 5, w, sizeof(w), NULL), 14);
    assert_int_equal(w[4], 8);
    assert_int_equal(w[13], 0x00);
    assert_int_equal(ota_scp02_card_unwrap(&cd, w, 14, u, sizeof(u), NULL), 5);
    assert_memory_equal(u, c2, 5);
    ota_scp02_card_fini(&cd);
    ota_scp02_session_fini(&s);
}

/* Host with master keys + EMV CPS diversification against a card holding
 * the diversified keys; and without diversification the cryptogram fails. */
static void test_diversified_handshake(void **state)
{
    struct fx *f = *state;
    struct ota_scp02_keys card_keys;
    struct ota_scp02_session s;
    struct ota_scp02_card cd;
    struct ota_err e;
    uint8_t iu[14], r[30], ea[21];

    for (int method = OTA_SCP02_DIV_EMV; method <= OTA_SCP02_DIV_VISA2; method++) {
        assert_int_equal(
            ota_scp02_diversify(f->c, (enum ota_scp02_div)method, &f->keys, KDD, &card_keys, NULL),
            0);
        assert_int_equal(ota_scp02_card_init(&cd, f->c, &card_keys, KDD, SEQ, CC, NULL), 0);
        assert_int_equal(ota_scp02_session_init(&s, f->c, &f->keys, 0x00, 0x03, HC, NULL), 0);
        assert_int_equal(ota_scp02_session_set_div(&s, (enum ota_scp02_div)method, NULL), 0);
        assert_int_equal(ota_scp02_init_update(&s, iu, 14, NULL), 14);
        assert_int_equal(ota_scp02_card_on_init_update(&cd, iu, 14, r, sizeof(r), NULL), 30);
        assert_int_equal(ota_scp02_on_init_update_resp(&s, r, 30, NULL), 0);
        assert_int_equal(ota_scp02_external_authenticate(&s, ea, 21, NULL), 21);
        assert_int_equal(ota_scp02_card_on_ext_auth(&cd, ea, 21, NULL), 0);
        assert_int_equal(ota_scp02_on_ext_auth_resp(&s, 0x9000, NULL), 0);
        /* The session DEK agrees at both ends. */
        uint8_t key[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                           0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10};
        uint8_t ct[16], pt[16];
        assert_int_equal(ota_scp02_encrypt_sensitive(&s, key, 16, ct, NULL), 0);
        assert_memory_not_equal(ct, key, 16);
        assert_int_equal(ota_scp02_card_decrypt_sensitive(&cd, ct, 16, pt, NULL), 0);
        assert_memory_equal(pt, key, 16);
        ota_scp02_card_fini(&cd);
        ota_scp02_session_fini(&s);

        /* Same card, host forgets to diversify. */
        assert_int_equal(ota_scp02_card_init(&cd, f->c, &card_keys, KDD, SEQ, CC, NULL), 0);
        assert_int_equal(ota_scp02_session_init(&s, f->c, &f->keys, 0x00, 0x03, HC, NULL), 0);
        assert_int_equal(ota_scp02_init_update(&s, iu, 14, NULL), 14);
        assert_int_equal(ota_scp02_card_on_init_update(&cd, iu, 14, r, sizeof(r), NULL), 30);
        assert_int_equal(ota_scp02_on_init_update_resp(&s, r, 30, &e), -EACCES);
        assert_int_equal(e.code, OTA_ERR_CRYPTOGRAM);
        ota_scp02_card_fini(&cd);
        ota_scp02_session_fini(&s);
        ota_scp02_keys_wipe(&card_keys);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_card_bad_init_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_card_bad_ext_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_card_wrong_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_card_unwrap_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_sl01, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_sl03, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_reorder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_sl01, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_sl03, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_sl00, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sl03_no_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diversified_handshake, setup, teardown),
    };

    return cmocka_run_group_tests_name("scp02_card", tests, NULL, NULL);
}
