/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-ota: throughput of the SCP80 hot path on one pinned core. Encodes
 * command packets (TS 102 225 5.1, SPI 16 39: CC, ciphering, counter
 * "higher", PoR always with CC, ciphered, via SMS-SUBMIT) carrying a
 * 3-APDU RAM script, with a new counter per packet, for AES-128 CBC +
 * CMAC-64 and 3DES 2-key CBC + CBC-MAC; and decodes PoRs (TS 102 225 5.2)
 * of both kinds. Prints one JSON object: rates, sampled per-packet latency
 * percentiles, CPU time and peak RSS. Targets: >= 100,000 AES and
 * >= 30,000 3DES packets/s. `--quick` runs each case ~0.3 s for CI.
 *
 * The same encode cases also run through the PKCS#11 backend (issue #7): the
 * keys are imported into a SoftHSM2 token the bench creates in a temporary
 * directory, so every cipher and MAC block goes through the token. The
 * scp80_*_pkcs11 figures are the price of the HSM path next to the local
 * one; "pkcs11": false when SoftHSM2 is not installed.
 */
/* sched_setaffinity() and CPU_SET() are GNU extensions */
#define _GNU_SOURCE
#include "gateway/p11.h"
#include "ota/ota.h"
#include "tests/support/ts_p11.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SAMPLE_EVERY 16 /* time one packet in 16: keeps the clock out of the rate */
#define MAX_SAMPLES 65536
#define N_POR 256 /* distinct PoRs (counters) cycled through by the decoder */

struct result {
    double per_s;
    double p50_ns, p99_ns;
    unsigned long n;
};

struct bench_case {
    struct ota_scp80_cmd cmd;
    struct ota_scp80_keys keys;
    struct ota_key kic, kid;
};

/* SELECT ISD-R-like AID, INSTALL [for make selectable], GET STATUS: a typical RAM script. */
static const uint8_t script[] = {
    0x00, 0xA4, 0x04, 0x00, 0x10, 0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF,
    0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00, 0x80, 0xE6, 0x08, 0x00, 0x12, 0x00, 0x00,
    0x0C, 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xFF, 0x49, 0x00, 0x00, 0x01, 0x01,
    0x00, 0x00, 0x00, 0x80, 0xF2, 0x40, 0x00, 0x02, 0x4F, 0x00, 0x00,
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Pin to the first CPU we may run on, so the figures are one core's. */
static int pin_one_cpu(void)
{
    cpu_set_t set;
    int cpu;

    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        return -1;
    }
    for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &set)) {
            break;
        }
    }
    if (cpu == CPU_SETSIZE) {
        return -1;
    }
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) == 0 ? cpu : -1;
}

static void setup_case(struct bench_case *bc, bool aes)
{
    static const uint8_t spi[2] = {0x16, 0x39};
    static const uint8_t aes_kic[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                        0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F};
    static const uint8_t aes_kid[16] = {0x0F, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0x09, 0x08,
                                        0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00};
    static const uint8_t des_kic[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                        0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10};
    static const uint8_t des_kid[16] = {0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67,
                                        0xFE, 0xDC, 0xBA, 0x98, 0x01, 0x23, 0x45, 0x67};
    enum ota_cipher c = aes ? OTA_CIPHER_AES : OTA_CIPHER_3DES2;

    memset(bc, 0, sizeof(*bc));
    if (ota_scp80_spi_decode(spi, 2, &bc->cmd.spi, NULL) != 0 ||
        ota_key_set(&bc->kic, c, aes ? aes_kic : des_kic, 16, NULL) != 0 ||
        ota_key_set(&bc->kid, c, aes ? aes_kid : des_kid, 16, NULL) != 0) {
        fprintf(stderr, "bench-ota: setup failed\n");
        exit(1);
    }
    bc->cmd.kic = bc->cmd.kid = aes ? 0x12 : 0x15;
    bc->cmd.tar[0] = 0xB0;
    bc->cmd.tar[2] = 0x10;
    bc->cmd.cc_len = 8;
    bc->keys.kic = &bc->kic;
    bc->keys.kid = &bc->kid;
}

/*
 * A fresh SoftHSM2 token in a temporary directory (dir, mkdtemp'ed by the
 * caller; tests/support/ts_p11.h), opened and logged in. NULL when SoftHSM2
 * is absent or fails.
 */
static struct p11 *bench_p11_open(char *dir, size_t cap)
{
    struct p11_conf conf = {.module = TS_P11_MODULE, .token_label = "bench-ota", .pin = "1234"};
    struct ota_err e;
    struct p11 *p = NULL;

    int rc = ts_p11_token("bench-ota", "1234", dir, cap);
    if (rc <= 0) {
        if (rc < 0) {
            fprintf(stderr, "bench-ota: no PKCS#11 token: %s\n", strerror(-rc));
        }
        return NULL;
    }
    if (p11_open(&conf, &p, &e) != 0) {
        fprintf(stderr, "bench-ota: no PKCS#11 token: %s\n", e.msg);
        return NULL;
    }
    return p;
}

/* Move a case's KIc/KID into the token: the case then holds token references only. */
static void bench_p11_keys(struct p11 *p, struct bench_case *bc, bool aes)
{
    const char *lic = aes ? "bench-aes-kic" : "bench-3des-kic";
    const char *lid = aes ? "bench-aes-kid" : "bench-3des-kid";
    struct ota_err e;

    if ((p11_import_clear(p, &bc->kic, lic, &e) != 0 && e.code != OTA_ERR_DUPLICATE) ||
        (p11_import_clear(p, &bc->kid, lid, &e) != 0 && e.code != OTA_ERR_DUPLICATE) ||
        p11_key(p, lic, &bc->kic, &e) != 0 || p11_key(p, lid, &bc->kid, &e) != 0) {
        fprintf(stderr, "bench-ota: token keys: %s\n", e.msg);
        exit(1);
    }
}

static void finish(struct result *r, unsigned long n, double dt, uint64_t *samples, size_t ns)
{
    r->n = n;
    r->per_s = (double)n / dt;
    qsort(samples, ns, sizeof(*samples), cmp_u64);
    r->p50_ns = ns ? (double)samples[ns / 2] : 0;
    r->p99_ns = ns ? (double)samples[(ns * 99) / 100] : 0;
}

static void bench_encode(struct ota_crypto *cx, struct p11 *p, bool aes, double secs,
                         struct result *r)
{
    static uint64_t samples[MAX_SAMPLES];
    struct bench_case bc;
    struct ota_err e;
    uint8_t pkt[OTA_SCP80_MAX_PACKET], work[OTA_SCP80_MAX_PACKET];
    struct ota_scp80_cmd_rx rx;
    size_t ns = 0;
    unsigned long n = 0;
    double t0, dt;
    int len;

    setup_case(&bc, aes);
    /* one checked packet first: a benchmark of a broken encoder is worthless */
    bc.cmd.cntr = 1;
    len = ota_scp80_cmd_encode(cx, &bc.cmd, &bc.keys, script, sizeof(script), pkt, sizeof(pkt),
                               NULL, &e);
    if (len < 0 ||
        ota_scp80_cmd_decode(cx, &bc.keys, pkt, (size_t)len, work, sizeof(work), &rx, &e) != 0) {
        fprintf(stderr, "bench-ota: self-check failed: %s\n", e.msg);
        exit(1);
    }
    if (p) {
        /* the token must produce the very same packet as the local keys */
        uint8_t ref[OTA_SCP80_MAX_PACKET];
        int rlen = len;
        memcpy(ref, pkt, (size_t)len);
        bench_p11_keys(p, &bc, aes);
        len = ota_scp80_cmd_encode(cx, &bc.cmd, &bc.keys, script, sizeof(script), pkt, sizeof(pkt),
                                   NULL, &e);
        if (len != rlen || memcmp(pkt, ref, (size_t)len) != 0) {
            fprintf(stderr, "bench-ota: PKCS#11 self-check failed: %s\n",
                    len < 0 ? e.msg : "packets differ");
            exit(1);
        }
    }
    t0 = now_s();
    for (;;) {
        for (int i = 0; i < 256; i++, n++) {
            bool sample = (n % SAMPLE_EVERY) == 0 && ns < MAX_SAMPLES;
            uint64_t s = sample ? now_ns() : 0;
            bc.cmd.cntr = 2 + n; /* a new counter per packet, as in production */
            len = ota_scp80_cmd_encode(cx, &bc.cmd, &bc.keys, script, sizeof(script), pkt,
                                       sizeof(pkt), NULL, &e);
            if (len < 0) {
                fprintf(stderr, "bench-ota: encode failed: %s\n", e.msg);
                exit(1);
            }
            if (sample) {
                samples[ns++] = now_ns() - s;
            }
        }
        dt = now_s() - t0;
        if (dt >= secs) {
            break;
        }
    }
    finish(r, n, dt, samples, ns);
}

static void bench_por(struct ota_crypto *cx, bool aes, double secs, struct result *r)
{
    static uint64_t samples[MAX_SAMPLES];
    static uint8_t pors[N_POR][64];
    static int por_len[N_POR];
    /* compact remote response: 3 executed, 9000, some data */
    static const uint8_t resp[] = {0x03, 0x90, 0x00, 0x98, 0x10, 0x32, 0x54, 0x76};
    struct bench_case bc;
    struct ota_scp80_por por;
    struct ota_err e;
    uint8_t work[OTA_SCP80_POR_WORK(64)];
    size_t ns = 0;
    unsigned long n = 0;
    double t0, dt;

    setup_case(&bc, aes);
    for (int i = 0; i < N_POR; i++) {
        bc.cmd.cntr = 1000 + (uint64_t)i;
        por_len[i] = ota_scp80_por_encode(cx, &bc.cmd, &bc.keys, true, 0, resp, sizeof(resp),
                                          pors[i], sizeof(pors[i]), &e);
        if (por_len[i] < 0) {
            fprintf(stderr, "bench-ota: por encode failed: %s\n", e.msg);
            exit(1);
        }
    }
    t0 = now_s();
    for (;;) {
        for (int i = 0; i < N_POR; i++, n++) {
            bool sample = (n % SAMPLE_EVERY) == 0 && ns < MAX_SAMPLES;
            uint64_t s = sample ? now_ns() : 0;
            if (ota_scp80_por_decode(cx, &bc.cmd, &bc.keys, pors[i], (size_t)por_len[i], work,
                                     sizeof(work), &por, &e) != 0 ||
                por.cntr != 1000 + (uint64_t)i || por.cc_state != OTA_SCP80_CC_VALID) {
                fprintf(stderr, "bench-ota: por decode failed: %s\n", e.msg);
                exit(1);
            }
            if (sample) {
                samples[ns++] = now_ns() - s;
            }
        }
        dt = now_s() - t0;
        if (dt >= secs) {
            break;
        }
    }
    finish(r, n, dt, samples, ns);
}

static void print_result(const char *name, const char *unit, const struct result *r, bool last)
{
    printf("  \"%s_%s\": %.0f,\n", name, unit, r->per_s);
    printf("  \"%s_n\": %lu,\n", name, r->n);
    printf("  \"%s_p50_ns\": %.0f,\n", name, r->p50_ns);
    printf("  \"%s_p99_ns\": %.0f%s\n", name, r->p99_ns, last ? "" : ",");
}

int main(int argc, char **argv)
{
    struct ota_crypto *cx;
    struct result aes, tdes, por_aes, por_tdes, aes_p11 = {0}, tdes_p11 = {0};
    char p11_dir[] = "/tmp/bench-ota-p11-XXXXXX";
    struct p11 *p11 = NULL;
    bool have_p11 = false;
    struct rusage ru;
    double secs = 2.0;
    int cpu;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            secs = 0.3;
        } else {
            fprintf(stderr, "usage: bench-ota [--quick]\n");
            return 2;
        }
    }
    cpu = pin_one_cpu();
    if (ota_crypto_new(&cx, NULL) != 0) {
        fprintf(stderr, "bench-ota: no crypto context\n");
        return 1;
    }
    bench_encode(cx, NULL, true, secs, &aes);
    bench_encode(cx, NULL, false, secs, &tdes);
    bench_por(cx, true, secs, &por_aes);
    bench_por(cx, false, secs, &por_tdes);
    if (mkdtemp(p11_dir)) {
        p11 = bench_p11_open(p11_dir, sizeof(p11_dir));
        if (p11) {
            bench_encode(cx, p11, true, secs, &aes_p11);
            bench_encode(cx, p11, false, secs, &tdes_p11);
            p11_close(p11);
            have_p11 = true;
        }
        if (ts_p11_token_rm(p11_dir) < 0) {
            fprintf(stderr, "bench-ota: could not remove %s\n", p11_dir);
        }
    }
    ota_crypto_free(cx);
    getrusage(RUSAGE_SELF, &ru);

    printf("{\n");
    printf("  \"cpu\": %d,\n", cpu);
    printf("  \"seconds_per_case\": %.1f,\n", secs);
    printf("  \"script_octets\": %zu,\n", sizeof(script));
    print_result("scp80_aes", "packets_per_s", &aes, false);
    print_result("scp80_3des", "packets_per_s", &tdes, false);
    print_result("por_aes", "decode_per_s", &por_aes, false);
    print_result("por_3des", "decode_per_s", &por_tdes, false);
    printf("  \"pkcs11\": %s,\n", have_p11 ? "true" : "false");
    if (have_p11) {
        printf("  \"pkcs11_module\": \"%s\",\n", TS_P11_MODULE);
        print_result("scp80_aes_pkcs11", "packets_per_s", &aes_p11, false);
        print_result("scp80_3des_pkcs11", "packets_per_s", &tdes_p11, false);
    }
    printf("  \"target_aes_met\": %s,\n", aes.per_s >= 100000 ? "true" : "false");
    printf("  \"target_3des_met\": %s,\n", tdes.per_s >= 30000 ? "true" : "false");
    printf("  \"cpu_user_s\": %.3f,\n", (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6);
    printf("  \"cpu_sys_s\": %.3f,\n", (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6);
    printf("  \"max_rss_kb\": %ld\n", ru.ru_maxrss);
    printf("}\n");
    return 0;
}
