/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SCP80 secured packets, SMS dialect: SPI/KIc/KID coding (ETSI TS 102 225
 * 5.1.1-5.1.3), command packets (TS 102 225 5.1, TS 31.115 4.2), the card's
 * counter rule (5.1.1) and response packets / PoR (TS 102 225 5.2, TS 31.115
 * 4.4). See ota/ota_scp80.h and ../shared/reference/ota.md sections 2, 3, 6.
 *
 * The RC/CC input is contiguous for the crypto layer, but on the wire the CC
 * sits between the header and the data. Instead of copying the whole packet
 * to a scratch buffer, the header is written (or moved) right in front of
 * the data, the checksum computed there, and then the 16-octet header is
 * moved into its final place: no allocation and one small memmove per packet.
 */
#include "ota/ota_scp80.h"
#include "ota/ota_udh.h"

#include <string.h>

#include <openssl/crypto.h>

/* Offsets in a command packet (TS 102 225 5.1). */
#define CMD_OFF_CHL 2
#define CMD_OFF_SPI 3
#define CMD_OFF_KIC 5
#define CMD_OFF_KID 6
#define CMD_OFF_TAR 7
#define CMD_OFF_CNTR 10 /* ciphering starts here */
#define CMD_OFF_PCNTR 15
#define CMD_HDR_LEN 16 /* CPL..PCNTR, the part before RC/CC */

/* Offsets in a response packet (TS 102 225 5.2). */
#define POR_OFF_RHL 2
#define POR_OFF_TAR 3
#define POR_OFF_CNTR 6 /* ciphering starts here */
#define POR_OFF_PCNTR 11
#define POR_OFF_STATUS 12
#define POR_HDR_LEN 13    /* RPL..STATUS */
#define POR_PLAIN_FIXED 7 /* CNTR(5) PCNTR(1) STATUS(1) */

/* TS 31.115 4.4: the PoR CC input starts with the UDH of the response SMS. */
static const uint8_t por_udh[OTA_SCP80_UDH_LEN] = {0x02, OTA_IEI_RPI, 0x00};
static const uint8_t cmd_udh[OTA_SCP80_UDH_LEN] = {0x02, OTA_IEI_CPI, 0x00};

/* ---- name tables ------------------------------------------------------------------------ */

static const char *const integrity_names[] = {
    [OTA_SCP80_INTEGRITY_NONE] = "none",
    [OTA_SCP80_INTEGRITY_RC] = "RC",
    [OTA_SCP80_INTEGRITY_CC] = "CC",
    [OTA_SCP80_INTEGRITY_DS] = "DS",
};

static const char *const cntr_mode_names[] = {
    [OTA_SCP80_CNTR_NONE] = "no-counter",
    [OTA_SCP80_CNTR_NOCHECK] = "no-check",
    [OTA_SCP80_CNTR_HIGHER] = "higher",
    [OTA_SCP80_CNTR_PLUS1] = "plus-one",
};

static const char *const por_req_names[] = {
    [OTA_SCP80_POR_NONE] = "none",
    [OTA_SCP80_POR_ALWAYS] = "always",
    [OTA_SCP80_POR_ON_ERROR] = "on-error",
};

static const char *const por_via_names[] = {
    [OTA_SCP80_POR_VIA_DELIVER_REPORT] = "SMS-DELIVER-REPORT",
    [OTA_SCP80_POR_VIA_SMS_SUBMIT] = "SMS-SUBMIT",
};

static const char *const alg_names[] = {
    [OTA_SCP80_ALG_IMPLICIT] = "implicit",
    [OTA_SCP80_ALG_DES_CBC] = "DES-CBC",
    [OTA_SCP80_ALG_3DES2_CBC] = "3DES-CBC-2key",
    [OTA_SCP80_ALG_3DES3_CBC] = "3DES-CBC-3key",
    [OTA_SCP80_ALG_DES_ECB] = "DES-ECB",
    [OTA_SCP80_ALG_AES_CBC] = "AES-CBC",
    [OTA_SCP80_ALG_DES_CBC_MAC] = "DES-CBC-MAC",
    [OTA_SCP80_ALG_3DES2_CBC_MAC] = "3DES-2key-CBC-MAC",
    [OTA_SCP80_ALG_3DES3_CBC_MAC] = "3DES-3key-CBC-MAC",
    [OTA_SCP80_ALG_AES_CMAC] = "AES-CMAC",
    [OTA_SCP80_ALG_CRC16] = "CRC16",
    [OTA_SCP80_ALG_CRC32] = "CRC32",
};

static const char *const por_status_names[] = {
    [OTA_SCP80_ST_OK] = "ok",
    [OTA_SCP80_ST_RC_CC_DS_FAILED] = "rc-cc-ds-failed",
    [OTA_SCP80_ST_CNTR_LOW] = "cntr-low",
    [OTA_SCP80_ST_CNTR_HIGH] = "cntr-high",
    [OTA_SCP80_ST_CNTR_BLOCKED] = "cntr-blocked",
    [OTA_SCP80_ST_CIPHERING_ERROR] = "ciphering-error",
    [OTA_SCP80_ST_UNIDENTIFIED_SECURITY] = "unidentified-security-error",
    [OTA_SCP80_ST_INSUFFICIENT_MEMORY] = "insufficient-memory",
    [OTA_SCP80_ST_MORE_TIME] = "more-time",
    [OTA_SCP80_ST_TAR_UNKNOWN] = "tar-unknown",
    [OTA_SCP80_ST_INSUFFICIENT_SECURITY] = "insufficient-security-level",
    [OTA_SCP80_ST_VIA_SMS_SUBMIT] = "response-via-sms-submit",
    [OTA_SCP80_ST_VIA_USSD] = "response-via-ussd",
};

static const char *const cc_state_names[] = {
    [OTA_SCP80_CC_ABSENT] = "absent",
    [OTA_SCP80_CC_VALID] = "valid",
};

static const char *name_of(const char *const *tab, size_t n, unsigned v, const char *dflt)
{
    if (v >= n || !tab[v]) {
        return dflt;
    }
    return tab[v];
}

const char *ota_scp80_integrity_name(enum ota_scp80_integrity v)
{
    return name_of(integrity_names, OTA_ARRAY_SIZE(integrity_names), (unsigned)v, "unknown");
}

const char *ota_scp80_cntr_mode_name(enum ota_scp80_cntr_mode v)
{
    return name_of(cntr_mode_names, OTA_ARRAY_SIZE(cntr_mode_names), (unsigned)v, "unknown");
}

const char *ota_scp80_por_req_name(enum ota_scp80_por_req v)
{
    return name_of(por_req_names, OTA_ARRAY_SIZE(por_req_names), (unsigned)v, "unknown");
}

const char *ota_scp80_por_via_name(enum ota_scp80_por_via v)
{
    return name_of(por_via_names, OTA_ARRAY_SIZE(por_via_names), (unsigned)v, "unknown");
}

const char *ota_scp80_alg_name(enum ota_scp80_alg v)
{
    return name_of(alg_names, OTA_ARRAY_SIZE(alg_names), (unsigned)v, "unknown");
}

const char *ota_scp80_por_status_name(unsigned status)
{
    return name_of(por_status_names, OTA_ARRAY_SIZE(por_status_names), status, "reserved");
}

const char *ota_scp80_cc_state_name(enum ota_scp80_cc_state v)
{
    return name_of(cc_state_names, OTA_ARRAY_SIZE(cc_state_names), (unsigned)v, "unknown");
}

/* ---- SPI, KIc, KID ---------------------------------------------------------------------- */

/* SPI bit masks, TS 102 225 5.1.1 (b1 = LSB). */
#define SPI1_INTEGRITY 0x03
#define SPI1_CIPHER 0x04
#define SPI1_CNTR_SHIFT 3
#define SPI1_CNTR 0x18
#define SPI1_RESERVED 0xE0
#define SPI2_POR 0x03
#define SPI2_POR_INT_SHIFT 2
#define SPI2_POR_INT 0x0C
#define SPI2_POR_CIPHER 0x10
#define SPI2_POR_VIA 0x20
#define SPI2_RESERVED 0xC0

int ota_scp80_spi_decode(const uint8_t *p, size_t len, struct ota_scp80_spi *out,
                         struct ota_err *err)
{
    struct ota_scp80_spi s;

    if (!p || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "spi: NULL argument");
    }
    if (len < 2) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "spi: %zu octets, needs 2", len);
    }
    if (p[0] & SPI1_RESERVED) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                        "spi: first octet %02X has reserved bits b8..b6 set", p[0]);
    }
    if (p[1] & SPI2_RESERVED) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                        "spi: second octet %02X has reserved bits b8b7 set", p[1]);
    }
    if ((p[1] & SPI2_POR) == 3) {
        return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                        "spi: second octet %02X has reserved PoR request 11", p[1]);
    }
    s.integrity = (enum ota_scp80_integrity)(p[0] & SPI1_INTEGRITY);
    s.ciphered = (p[0] & SPI1_CIPHER) != 0;
    s.cntr_mode = (enum ota_scp80_cntr_mode)((p[0] & SPI1_CNTR) >> SPI1_CNTR_SHIFT);
    s.por = (enum ota_scp80_por_req)(p[1] & SPI2_POR);
    s.por_integrity = (enum ota_scp80_integrity)((p[1] & SPI2_POR_INT) >> SPI2_POR_INT_SHIFT);
    s.por_ciphered = (p[1] & SPI2_POR_CIPHER) != 0;
    s.por_via =
        (p[1] & SPI2_POR_VIA) ? OTA_SCP80_POR_VIA_SMS_SUBMIT : OTA_SCP80_POR_VIA_DELIVER_REPORT;
    *out = s;
    return 0;
}

/* Range-check every field; 0 or -EINVAL. */
static int spi_check(const struct ota_scp80_spi *s, struct ota_err *err)
{
    if ((unsigned)s->integrity > OTA_SCP80_INTEGRITY_DS ||
        (unsigned)s->por_integrity > OTA_SCP80_INTEGRITY_DS) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "spi: integrity %u / por integrity %u",
                        (unsigned)s->integrity, (unsigned)s->por_integrity);
    }
    if ((unsigned)s->cntr_mode > OTA_SCP80_CNTR_PLUS1) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "spi: counter mode %u", (unsigned)s->cntr_mode);
    }
    if ((unsigned)s->por > OTA_SCP80_POR_ON_ERROR) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "spi: por request %u", (unsigned)s->por);
    }
    if ((unsigned)s->por_via > OTA_SCP80_POR_VIA_SMS_SUBMIT) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "spi: por via %u", (unsigned)s->por_via);
    }
    return 0;
}

static void spi_put(const struct ota_scp80_spi *s, uint8_t *dst)
{
    dst[0] = (uint8_t)((unsigned)s->integrity | (s->ciphered ? SPI1_CIPHER : 0) |
                       (unsigned)s->cntr_mode << SPI1_CNTR_SHIFT);
    dst[1] = (uint8_t)((unsigned)s->por | (unsigned)s->por_integrity << SPI2_POR_INT_SHIFT |
                       (s->por_ciphered ? SPI2_POR_CIPHER : 0) |
                       (s->por_via == OTA_SCP80_POR_VIA_SMS_SUBMIT ? SPI2_POR_VIA : 0));
}

int ota_scp80_spi_encode(const struct ota_scp80_spi *spi, uint8_t *dst, size_t cap,
                         struct ota_err *err)
{
    int rc;

    if (!spi || !dst) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "spi: NULL argument");
    }
    rc = spi_check(spi, err);
    if (rc < 0) {
        return rc;
    }
    if (cap < 2) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "spi: cap %zu, needs 2", cap);
    }
    spi_put(spi, dst);
    return 2;
}

/* KIc/KID nibble layout, TS 102 225 5.1.2/5.1.3. */
#define KEYID_FAMILY(o) ((o)&0x03)
#define KEYID_SUB(o) (((o) >> 2) & 0x03)
#define KEYID_KVN(o) ((uint8_t)((o) >> 4))
#define FAM_IMPLICIT 0
#define FAM_DES 1
#define FAM_AES 2
#define FAM_PROPRIETARY 3

int ota_scp80_kic_decode(uint8_t kic, uint8_t *kvn, enum ota_scp80_alg *alg, struct ota_err *err)
{
    static const enum ota_scp80_alg des_sub[4] = {
        OTA_SCP80_ALG_DES_CBC,
        OTA_SCP80_ALG_3DES2_CBC,
        OTA_SCP80_ALG_3DES3_CBC,
        OTA_SCP80_ALG_DES_ECB,
    };
    enum ota_scp80_alg a;

    switch (KEYID_FAMILY(kic)) {
    case FAM_IMPLICIT:
        a = OTA_SCP80_ALG_IMPLICIT;
        break;
    case FAM_DES:
        a = des_sub[KEYID_SUB(kic)];
        break;
    case FAM_AES:
        if (KEYID_SUB(kic) != 0) {
            return ota_fail(err, -EBADMSG, OTA_ERR_VALUE, "kic: %02X: AES b4b3 %u is reserved", kic,
                            KEYID_SUB(kic));
        }
        a = OTA_SCP80_ALG_AES_CBC;
        break;
    default:
        return ota_fail(err, -ENOTSUP, OTA_ERR_VALUE,
                        "kic: %02X: proprietary algorithm unsupported", kic);
    }
    if (kvn) {
        *kvn = KEYID_KVN(kic);
    }
    if (alg) {
        *alg = a;
    }
    return 0;
}

int ota_scp80_kid_decode(uint8_t kid, enum ota_scp80_integrity integrity, uint8_t *kvn,
                         enum ota_scp80_alg *alg, struct ota_err *err)
{
    static const enum ota_scp80_alg des_sub[3] = {
        OTA_SCP80_ALG_DES_CBC_MAC,
        OTA_SCP80_ALG_3DES2_CBC_MAC,
        OTA_SCP80_ALG_3DES3_CBC_MAC,
    };
    enum ota_scp80_alg a = OTA_SCP80_ALG_IMPLICIT;
    unsigned fam = KEYID_FAMILY(kid), sub = KEYID_SUB(kid);

    switch (integrity) {
    case OTA_SCP80_INTEGRITY_NONE:
        break;
    case OTA_SCP80_INTEGRITY_CC:
        if (fam == FAM_PROPRIETARY) {
            return ota_fail(err, -ENOTSUP, OTA_ERR_VALUE,
                            "kid: %02X: proprietary algorithm unsupported", kid);
        }
        if (fam == FAM_DES) {
            if (sub == 3) {
                return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                                "kid: %02X: DES b4b3 11 is reserved for CC", kid);
            }
            a = des_sub[sub];
        } else if (fam == FAM_AES) {
            if (sub != 0) {
                return ota_fail(err, -EBADMSG, OTA_ERR_VALUE, "kid: %02X: AES b4b3 %u is reserved",
                                kid, sub);
            }
            a = OTA_SCP80_ALG_AES_CMAC;
        }
        break;
    case OTA_SCP80_INTEGRITY_RC:
        /* TS 102 225 5.1.3: RC is coded in the DES family slot: 01 CRC */
        if (fam == FAM_IMPLICIT || fam == FAM_PROPRIETARY) {
            return ota_fail(err, -ENOTSUP, OTA_ERR_VALUE, "kid: %02X: %s RC unsupported", kid,
                            fam == FAM_IMPLICIT ? "implicit" : "proprietary");
        }
        if (fam != FAM_DES || sub > 1) {
            return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                            "kid: %02X: RC coding b4..b1 %X is reserved", kid, kid & 0x0F);
        }
        a = sub == 0 ? OTA_SCP80_ALG_CRC16 : OTA_SCP80_ALG_CRC32;
        break;
    case OTA_SCP80_INTEGRITY_DS:
        return ota_fail(err, -ENOTSUP, OTA_ERR_VALUE, "kid: %02X: DS unsupported", kid);
    default:
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "kid: integrity %u", (unsigned)integrity);
    }
    if (kvn) {
        *kvn = KEYID_KVN(kid);
    }
    if (alg) {
        *alg = a;
    }
    return 0;
}

int ota_scp80_keyid_encode(uint8_t kvn, enum ota_scp80_alg alg, struct ota_err *err)
{
    static const uint8_t low[] = {
        [OTA_SCP80_ALG_IMPLICIT] = 0x0,      [OTA_SCP80_ALG_DES_CBC] = 0x1,
        [OTA_SCP80_ALG_3DES2_CBC] = 0x5,     [OTA_SCP80_ALG_3DES3_CBC] = 0x9,
        [OTA_SCP80_ALG_DES_ECB] = 0xD,       [OTA_SCP80_ALG_AES_CBC] = 0x2,
        [OTA_SCP80_ALG_DES_CBC_MAC] = 0x1,   [OTA_SCP80_ALG_3DES2_CBC_MAC] = 0x5,
        [OTA_SCP80_ALG_3DES3_CBC_MAC] = 0x9, [OTA_SCP80_ALG_AES_CMAC] = 0x2,
        [OTA_SCP80_ALG_CRC16] = 0x1,         [OTA_SCP80_ALG_CRC32] = 0x5,
    };

    if (kvn > 0x0F) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "keyid: kvn %u above 15", kvn);
    }
    if ((unsigned)alg >= OTA_ARRAY_SIZE(low)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "keyid: algorithm %u", (unsigned)alg);
    }
    return kvn << 4 | low[alg];
}

/* ---- algorithm resolution ----------------------------------------------------------------- */

/* One resolved algorithm with its key: what the per-packet code runs. */
struct sec_alg {
    enum ota_scp80_alg alg; /* never IMPLICIT */
    const struct ota_key *key;
    enum ota_mode mode; /* ciphering */
    size_t block;       /* ciphering: 8 or 16 */
    uint8_t cc_len;     /* integrity: 2, 4 or 8 */
};

/* Key cipher and length an algorithm needs (TS 102 225 5.1.2/5.1.3). */
static bool key_fits(enum ota_scp80_alg alg, const struct ota_key *k)
{
    switch (alg) {
    case OTA_SCP80_ALG_DES_CBC:
    case OTA_SCP80_ALG_DES_ECB:
    case OTA_SCP80_ALG_DES_CBC_MAC:
        return k->cipher == OTA_CIPHER_DES && k->len == 8;
    case OTA_SCP80_ALG_3DES2_CBC:
    case OTA_SCP80_ALG_3DES2_CBC_MAC:
        return k->cipher == OTA_CIPHER_3DES2 && k->len == 16;
    case OTA_SCP80_ALG_3DES3_CBC:
    case OTA_SCP80_ALG_3DES3_CBC_MAC:
        return k->cipher == OTA_CIPHER_3DES3 && k->len == 24;
    case OTA_SCP80_ALG_AES_CBC:
    case OTA_SCP80_ALG_AES_CMAC:
        return k->cipher == OTA_CIPHER_AES && (k->len == 16 || k->len == 24 || k->len == 32);
    default:
        return false;
    }
}

/* Implicit coding: the algorithm follows from the key agreed beforehand. */
static enum ota_scp80_alg implicit_alg(const struct ota_key *k, bool mac)
{
    switch (k->cipher) {
    case OTA_CIPHER_DES:
        return mac ? OTA_SCP80_ALG_DES_CBC_MAC : OTA_SCP80_ALG_DES_CBC;
    case OTA_CIPHER_3DES2:
        return mac ? OTA_SCP80_ALG_3DES2_CBC_MAC : OTA_SCP80_ALG_3DES2_CBC;
    case OTA_CIPHER_3DES3:
        return mac ? OTA_SCP80_ALG_3DES3_CBC_MAC : OTA_SCP80_ALG_3DES3_CBC;
    case OTA_CIPHER_AES:
        return mac ? OTA_SCP80_ALG_AES_CMAC : OTA_SCP80_ALG_AES_CBC;
    default:
        return OTA_SCP80_ALG_IMPLICIT;
    }
}

static int resolve_cipher(uint8_t kic, const struct ota_key *key, struct sec_alg *out,
                          struct ota_err *err)
{
    enum ota_scp80_alg alg = OTA_SCP80_ALG_IMPLICIT;
    int rc = ota_scp80_kic_decode(kic, NULL, &alg, err);

    if (rc < 0) {
        return rc;
    }
    if (!key) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "kic: %02X: no ciphering key", kic);
    }
    if (alg == OTA_SCP80_ALG_IMPLICIT) {
        alg = implicit_alg(key, false);
    }
    if (alg == OTA_SCP80_ALG_IMPLICIT || !key_fits(alg, key)) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "kic: %02X wants %s, key is %s/%u octets", kic,
                        ota_scp80_alg_name(alg), ota_cipher_name(key->cipher), key->len);
    }
    out->alg = alg;
    out->key = key;
    out->mode = alg == OTA_SCP80_ALG_DES_ECB ? OTA_MODE_ECB : OTA_MODE_CBC;
    out->block = ota_cipher_block_len(key->cipher);
    out->cc_len = 0;
    return 0;
}

/* Is n a CC/RC length the algorithm produces? */
static bool cc_len_fits(enum ota_scp80_alg alg, unsigned n)
{
    switch (alg) {
    case OTA_SCP80_ALG_CRC16:
        return n == 2;
    case OTA_SCP80_ALG_CRC32:
        return n == 4;
    case OTA_SCP80_ALG_AES_CMAC:
        return n == 4 || n == 8;
    default:
        return n == 8;
    }
}

/*
 * Resolve the RC/CC of a KID. want_len is the length asked for: 0 means the
 * default (8 for CMAC); for a received packet the header's length is given.
 */
static int resolve_integrity(enum ota_scp80_integrity integ, uint8_t kid, const struct ota_key *key,
                             unsigned want_len, bool from_wire, struct sec_alg *out,
                             struct ota_err *err)
{
    enum ota_scp80_alg alg = OTA_SCP80_ALG_IMPLICIT;
    int rc = ota_scp80_kid_decode(kid, integ, NULL, &alg, err);

    if (rc < 0) {
        return rc;
    }
    if (integ == OTA_SCP80_INTEGRITY_CC) {
        if (!key) {
            return ota_fail(err, -EINVAL, OTA_ERR_KEY, "kid: %02X: no CC key", kid);
        }
        if (alg == OTA_SCP80_ALG_IMPLICIT) {
            alg = implicit_alg(key, true);
        }
        if (alg == OTA_SCP80_ALG_IMPLICIT || !key_fits(alg, key)) {
            return ota_fail(err, -EINVAL, OTA_ERR_KEY, "kid: %02X wants %s, key is %s/%u octets",
                            kid, ota_scp80_alg_name(alg), ota_cipher_name(key->cipher), key->len);
        }
    }
    if (!from_wire) {
        /* the caller's cc_len only chooses CMAC-32/64; a CRC's length is fixed */
        if (alg == OTA_SCP80_ALG_CRC16) {
            want_len = 2;
        } else if (alg == OTA_SCP80_ALG_CRC32) {
            want_len = 4;
        } else if (want_len == 0) {
            want_len = OTA_SCP80_CC_MAX;
        }
    }
    if (!cc_len_fits(alg, want_len)) {
        if (from_wire) {
            return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                            "header: rc/cc of %u octets, kid %02X (%s) gives another", want_len,
                            kid, ota_scp80_alg_name(alg));
        }
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cc_len %u invalid for kid %02X (%s)", want_len,
                        kid, ota_scp80_alg_name(alg));
    }
    out->alg = alg;
    out->key = key;
    out->mode = OTA_MODE_CBC;
    out->block = 0;
    out->cc_len = (uint8_t)want_len;
    return 0;
}

/* RC/CC over in[0..len) into out[0..cc_len) (TS 102 225 5.1.2, 5.1.3). */
static int compute_cc(struct ota_crypto *c, const struct sec_alg *s, const uint8_t *in, size_t len,
                      uint8_t out[OTA_SCP80_CC_MAX], struct ota_err *err)
{
    uint8_t tag[16];
    size_t tag_len = 0;
    int rc;

    switch (s->alg) {
    case OTA_SCP80_ALG_CRC16:
        ota_put_u16(out, ota_crc16(in, len));
        return 0;
    case OTA_SCP80_ALG_CRC32: {
        uint32_t v = ota_crc32(in, len);
        out[0] = (uint8_t)(v >> 24);
        out[1] = (uint8_t)(v >> 16);
        out[2] = (uint8_t)(v >> 8);
        out[3] = (uint8_t)v;
        return 0;
    }
    case OTA_SCP80_ALG_AES_CMAC:
        rc = ota_crypto_cmac(c, s->key, in, len, tag, &tag_len, err);
        if (rc < 0) {
            return rc;
        }
        /* TS 102 225 5.1.3: the CC is the leftmost 4 or 8 octets of the CMAC */
        memcpy(out, tag, s->cc_len);
        OPENSSL_cleanse(tag, sizeof(tag));
        return 0;
    default:
        /* DES/3DES CBC-MAC, zero fill for the MAC only (TS 102 225 5.1.3) */
        return ota_crypto_cbc_mac(c, s->key, NULL, in, len, out, err);
    }
}

/* ---- command packet ----------------------------------------------------------------------- */

struct cmd_plan {
    struct sec_alg ci;
    struct sec_alg in;
    size_t cc_len;
    size_t pad;
    size_t total; /* CPL + 2 */
};

static int cmd_plan(const struct ota_scp80_cmd *cmd, const struct ota_scp80_keys *keys,
                    size_t data_len, struct cmd_plan *pl, struct ota_err *err)
{
    size_t body;
    int rc;

    if (!cmd || !keys) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cmd: NULL argument");
    }
    rc = spi_check(&cmd->spi, err);
    if (rc < 0) {
        return rc;
    }
    if (cmd->cntr > OTA_SCP80_CNTR_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cmd: counter %llx above 40 bits",
                        (unsigned long long)cmd->cntr);
    }
    memset(pl, 0, sizeof(*pl));
    if (cmd->spi.integrity != OTA_SCP80_INTEGRITY_NONE) {
        rc = resolve_integrity(cmd->spi.integrity, cmd->kid, keys->kid, cmd->cc_len, false, &pl->in,
                               err);
        if (rc < 0) {
            return rc;
        }
        pl->cc_len = pl->in.cc_len;
    }
    if (cmd->spi.ciphered) {
        rc = resolve_cipher(cmd->kic, keys->kic, &pl->ci, err);
        if (rc < 0) {
            return rc;
        }
    }
    if (data_len > OTA_SCP80_MAX_PACKET) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "cmd: %zu octets of secured data, packet max %u", data_len,
                        OTA_SCP80_MAX_PACKET);
    }
    /* TS 102 225 5.1: padding brings CNTR..end to the cipher block */
    body = 5 + 1 + pl->cc_len + data_len;
    if (cmd->spi.ciphered) {
        pl->pad = (pl->ci.block - body % pl->ci.block) % pl->ci.block;
    }
    pl->total = CMD_OFF_CNTR + body + pl->pad;
    if (pl->total > OTA_SCP80_MAX_PACKET) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "cmd: packet of %zu octets, max %u",
                        pl->total, OTA_SCP80_MAX_PACKET);
    }
    return 0;
}

int ota_scp80_cmd_len(const struct ota_scp80_cmd *cmd, const struct ota_scp80_keys *keys,
                      size_t data_len, size_t *out_len, struct ota_err *err)
{
    struct cmd_plan pl;
    int rc;

    if (!out_len) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cmd: NULL out_len");
    }
    rc = cmd_plan(cmd, keys, data_len, &pl, err);
    if (rc < 0) {
        return rc;
    }
    *out_len = pl.total;
    return 0;
}

int ota_scp80_cmd_encode(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                         const struct ota_scp80_keys *keys, const uint8_t *data, size_t data_len,
                         uint8_t *dst, size_t cap, struct ota_scp80_cmd_info *info,
                         struct ota_err *err)
{
    struct cmd_plan pl;
    uint8_t cc[OTA_SCP80_CC_MAX] = {0};
    uint8_t *h;
    int rc;

    if (!c || !dst || (!data && data_len)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cmd: NULL argument");
    }
    rc = cmd_plan(cmd, keys, data_len, &pl, err);
    if (rc < 0) {
        return rc;
    }
    if (cap < pl.total) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "cmd: cap %zu, packet needs %zu", cap,
                        pl.total);
    }
    if (info && info->plain && info->plain_cap < pl.total - CMD_OFF_CNTR) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "cmd: plain cap %zu, needs %zu",
                        info->plain_cap, pl.total - CMD_OFF_CNTR);
    }

    /*
     * Header CPL..PCNTR goes right in front of the data so the RC/CC input
     * (everything but the RC/CC itself, TS 102 225 5.1.3) is contiguous.
     */
    h = dst + pl.cc_len;
    ota_put_u16(h, (uint16_t)(pl.total - 2));
    h[CMD_OFF_CHL] = (uint8_t)(OTA_SCP80_CHL_BASE + pl.cc_len);
    spi_put(&cmd->spi, h + CMD_OFF_SPI);
    h[CMD_OFF_KIC] = cmd->kic;
    h[CMD_OFF_KID] = cmd->kid;
    memcpy(h + CMD_OFF_TAR, cmd->tar, 3);
    ota_put_u40(h + CMD_OFF_CNTR, cmd->cntr);
    h[CMD_OFF_PCNTR] = (uint8_t)pl.pad;
    if (data_len) {
        memcpy(h + CMD_HDR_LEN, data, data_len);
    }
    memset(h + CMD_HDR_LEN + data_len, 0, pl.pad);

    if (pl.cc_len) {
        rc = compute_cc(c, &pl.in, h, CMD_HDR_LEN + data_len + pl.pad, cc, err);
        if (rc < 0) {
            goto fail;
        }
        memmove(dst, h, CMD_HDR_LEN);
        memcpy(dst + CMD_HDR_LEN, cc, pl.cc_len);
    }
    if (info && info->plain) {
        memcpy(info->plain, dst + CMD_OFF_CNTR, pl.total - CMD_OFF_CNTR);
    }
    if (cmd->spi.ciphered) {
        rc = ota_crypto_cipher(c, pl.ci.key, pl.ci.mode, true, NULL, dst + CMD_OFF_CNTR,
                               pl.total - CMD_OFF_CNTR, dst + CMD_OFF_CNTR, err);
        if (rc < 0) {
            goto fail;
        }
    }
    if (info) {
        info->cpl = (uint16_t)(pl.total - 2);
        info->chl = (uint8_t)(OTA_SCP80_CHL_BASE + pl.cc_len);
        info->pcntr = (uint8_t)pl.pad;
        info->cc_len = (uint8_t)pl.cc_len;
        memcpy(info->cc, cc, sizeof(info->cc));
        if (info->plain) {
            info->plain_len = pl.total - CMD_OFF_CNTR;
        }
    }
    return (int)pl.total;

fail:
    /* never leave plaintext behind in a buffer the caller may send */
    OPENSSL_cleanse(dst, pl.total);
    if (info && info->plain) {
        OPENSSL_cleanse(info->plain, pl.total - CMD_OFF_CNTR);
    }
    return rc;
}

int ota_scp80_cmd_encode_sms(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                             const struct ota_scp80_keys *keys, const uint8_t *data,
                             size_t data_len, uint8_t *dst, size_t cap,
                             struct ota_scp80_cmd_info *info, struct ota_err *err)
{
    struct cmd_plan pl;
    int rc;

    if (!dst) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cmd: NULL argument");
    }
    rc = cmd_plan(cmd, keys, data_len, &pl, err);
    if (rc < 0) {
        return rc;
    }
    /* TS 31.115 4.2: 140 octets of UD minus the 3-octet UDH */
    if (pl.total > OTA_SCP80_MAX_SINGLE_SMS) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "cmd: packet of %zu octets exceeds one SMS (%u)", pl.total,
                        OTA_SCP80_MAX_SINGLE_SMS);
    }
    if (cap < OTA_SCP80_UDH_LEN + pl.total) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "cmd: cap %zu, user data needs %zu", cap,
                        OTA_SCP80_UDH_LEN + pl.total);
    }
    rc = ota_scp80_cmd_encode(c, cmd, keys, data, data_len, dst + OTA_SCP80_UDH_LEN,
                              cap - OTA_SCP80_UDH_LEN, info, err);
    if (rc < 0) {
        return rc;
    }
    memcpy(dst, cmd_udh, OTA_SCP80_UDH_LEN);
    return rc + OTA_SCP80_UDH_LEN;
}

int ota_scp80_cmd_peek(const uint8_t *p, size_t len, struct ota_scp80_cmd_hdr *out,
                       struct ota_err *err)
{
    struct ota_scp80_cmd_hdr h;
    size_t total;
    unsigned cc;
    int rc;

    if (!p || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cmd: NULL argument");
    }
    if (len < 3) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "cmd: %zu octets, CPL+CHL need 3", len);
    }
    h.cpl = ota_get_u16(p);
    total = (size_t)h.cpl + 2;
    if (total > OTA_SCP80_MAX_PACKET) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "cmd: cpl %u, packet max %u", h.cpl,
                        OTA_SCP80_MAX_PACKET);
    }
    if (len < total) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "cmd: %zu octets, cpl %u needs %zu", len,
                        h.cpl, total);
    }
    if (len > total) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "cmd: %zu octets, cpl %u accounts for %zu",
                        len, h.cpl, total);
    }
    h.chl = p[CMD_OFF_CHL];
    if (h.chl < OTA_SCP80_CHL_BASE) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "cmd: chl %u below %u", h.chl,
                        OTA_SCP80_CHL_BASE);
    }
    cc = h.chl - OTA_SCP80_CHL_BASE;
    if (cc != 0 && cc != 2 && cc != 4 && cc != 8) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "cmd: chl %u gives rc/cc of %u octets",
                        h.chl, cc);
    }
    if (h.cpl < 1u + h.chl) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "cmd: cpl %u shorter than chl %u + 1", h.cpl,
                        h.chl);
    }
    rc = ota_scp80_spi_decode(p + CMD_OFF_SPI, 2, &h.spi, err);
    if (rc < 0) {
        return rc;
    }
    memcpy(h.spi_raw, p + CMD_OFF_SPI, 2);
    h.kic = p[CMD_OFF_KIC];
    h.kid = p[CMD_OFF_KID];
    memcpy(h.tar, p + CMD_OFF_TAR, 3);
    *out = h;
    return 0;
}

int ota_scp80_cmd_decode(struct ota_crypto *c, const struct ota_scp80_keys *keys, const uint8_t *p,
                         size_t len, uint8_t *work, size_t work_cap, struct ota_scp80_cmd_rx *out,
                         struct ota_err *err)
{
    struct ota_scp80_cmd_hdr h;
    struct sec_alg ci = {0}, in = {0};
    uint8_t cc_rx[OTA_SCP80_CC_MAX] = {0}, cc[OTA_SCP80_CC_MAX] = {0};
    size_t total, n, body;
    uint8_t pcntr;
    int rc;

    if (!c || !keys || !work || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cmd: NULL argument");
    }
    rc = ota_scp80_cmd_peek(p, len, &h, err);
    if (rc < 0) {
        return rc;
    }
    total = (size_t)h.cpl + 2;
    n = h.chl - OTA_SCP80_CHL_BASE;
    if (h.spi.integrity == OTA_SCP80_INTEGRITY_NONE) {
        if (n) {
            return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                            "cmd: chl %u announces rc/cc, spi %02X%02X has none", h.chl,
                            h.spi_raw[0], h.spi_raw[1]);
        }
    } else {
        if (h.spi.integrity != OTA_SCP80_INTEGRITY_DS && n == 0) {
            return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                            "cmd: chl %u has no rc/cc, spi %02X%02X asks for %s", h.chl,
                            h.spi_raw[0], h.spi_raw[1], ota_scp80_integrity_name(h.spi.integrity));
        }
        rc = resolve_integrity(h.spi.integrity, h.kid, keys->kid, (unsigned)n, true, &in, err);
        if (rc < 0) {
            return rc;
        }
    }
    if (h.spi.ciphered) {
        rc = resolve_cipher(h.kic, keys->kic, &ci, err);
        if (rc < 0) {
            return rc;
        }
        if ((total - CMD_OFF_CNTR) % ci.block) {
            return ota_fail(err, -EBADMSG, OTA_ERR_PADDING,
                            "cmd: %zu ciphered octets, not a multiple of %zu", total - CMD_OFF_CNTR,
                            ci.block);
        }
    }
    if (work_cap < total) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "cmd: work %zu, needs %zu", work_cap, total);
    }

    /* plaintext CNTR..end at work[10..]; then header moved in front of the data */
    if (h.spi.ciphered) {
        rc = ota_crypto_cipher(c, ci.key, ci.mode, false, NULL, p + CMD_OFF_CNTR,
                               total - CMD_OFF_CNTR, work + CMD_OFF_CNTR, err);
        if (rc < 0) {
            goto fail;
        }
    } else {
        memcpy(work + CMD_OFF_CNTR, p + CMD_OFF_CNTR, total - CMD_OFF_CNTR);
    }
    memcpy(cc_rx, work + CMD_HDR_LEN, n);
    memmove(work + n + CMD_OFF_CNTR, work + CMD_OFF_CNTR, CMD_HDR_LEN - CMD_OFF_CNTR);
    memcpy(work + n, p, CMD_OFF_CNTR);
    body = total - CMD_HDR_LEN - n;

    if (n) {
        rc = compute_cc(c, &in, work + n, CMD_HDR_LEN + body, cc, err);
        if (rc < 0) {
            goto fail;
        }
        if (CRYPTO_memcmp(cc, cc_rx, n) != 0) {
            rc = ota_fail(err, -EBADMSG, OTA_ERR_BAD_CC, "cmd: %s of %zu octets mismatch",
                          ota_scp80_alg_name(in.alg), n);
            goto fail;
        }
    }
    pcntr = work[n + CMD_OFF_PCNTR];
    if (h.spi.ciphered ? pcntr >= ci.block : pcntr != 0) {
        rc = ota_fail(err, -EBADMSG, OTA_ERR_PADDING, "cmd: pcntr %u with %s", pcntr,
                      h.spi.ciphered ? "ciphering block" : "no ciphering");
        goto fail;
    }
    if (pcntr > body) {
        rc = ota_fail(err, -EBADMSG, OTA_ERR_PADDING, "cmd: pcntr %u above %zu data octets", pcntr,
                      body);
        goto fail;
    }
    out->hdr = h;
    out->cntr = ota_get_u40(work + n + CMD_OFF_CNTR);
    out->pcntr = pcntr;
    out->cc_len = (uint8_t)n;
    memcpy(out->cc, cc_rx, sizeof(out->cc));
    out->data = work + n + CMD_HDR_LEN;
    out->data_len = body - pcntr;
    return 0;

fail:
    OPENSSL_cleanse(work, total);
    return rc;
}

int ota_scp80_cntr_check(enum ota_scp80_cntr_mode mode, uint64_t stored, uint64_t received,
                         enum ota_scp80_por_status *status, struct ota_err *err)
{
    enum ota_scp80_por_status st;

    if (!status) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cntr: NULL status");
    }
    if (stored > OTA_SCP80_CNTR_MAX || received > OTA_SCP80_CNTR_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "cntr: stored %llx / received %llx above 40 bits",
                        (unsigned long long)stored, (unsigned long long)received);
    }
    switch (mode) {
    case OTA_SCP80_CNTR_NONE:
    case OTA_SCP80_CNTR_NOCHECK:
        st = OTA_SCP80_ST_OK;
        break;
    case OTA_SCP80_CNTR_HIGHER:
    case OTA_SCP80_CNTR_PLUS1:
        /* TS 102 225 5.1.1: a counter at its maximum blocks further packets */
        if (stored == OTA_SCP80_CNTR_MAX) {
            st = OTA_SCP80_ST_CNTR_BLOCKED;
        } else if (received <= stored) {
            st = OTA_SCP80_ST_CNTR_LOW;
        } else if (mode == OTA_SCP80_CNTR_PLUS1 && received != stored + 1) {
            st = OTA_SCP80_ST_CNTR_HIGH;
        } else {
            st = OTA_SCP80_ST_OK;
        }
        break;
    default:
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cntr: mode %u", (unsigned)mode);
    }
    *status = st;
    return 0;
}

/* ---- response packet (PoR) ---------------------------------------------------------------- */

int ota_scp80_por_encode(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                         const struct ota_scp80_keys *keys, bool protect, uint8_t status,
                         const uint8_t *data, size_t data_len, uint8_t *dst, size_t cap,
                         struct ota_err *err)
{
    struct sec_alg ci = {0}, in = {0};
    uint8_t cc[OTA_SCP80_CC_MAX] = {0};
    uint8_t scratch[OTA_SCP80_UDH_LEN + OTA_SCP80_MAX_PACKET];
    bool cipher = false;
    size_t n = 0, pad = 0, total, body;
    uint8_t *h;
    int rc;

    if (!c || !cmd || !keys || !dst || (!data && data_len)) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "por: NULL argument");
    }
    rc = spi_check(&cmd->spi, err);
    if (rc < 0) {
        return rc;
    }
    if (cmd->cntr > OTA_SCP80_CNTR_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "por: counter %llx above 40 bits",
                        (unsigned long long)cmd->cntr);
    }
    if (protect && cmd->spi.por_integrity != OTA_SCP80_INTEGRITY_NONE) {
        rc = resolve_integrity(cmd->spi.por_integrity, cmd->kid, keys->kid, cmd->cc_len, false, &in,
                               err);
        if (rc < 0) {
            return rc;
        }
        n = in.cc_len;
    }
    if (protect && cmd->spi.por_ciphered) {
        rc = resolve_cipher(cmd->kic, keys->kic, &ci, err);
        if (rc < 0) {
            return rc;
        }
        cipher = true;
    }
    if (data_len > OTA_SCP80_MAX_PACKET) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "por: %zu octets of data, max %u",
                        data_len, OTA_SCP80_MAX_PACKET);
    }
    /* TS 102 225 5.2: padding brings CNTR..end to the cipher block */
    body = POR_PLAIN_FIXED + n + data_len;
    if (cipher) {
        pad = (ci.block - body % ci.block) % ci.block;
    }
    total = POR_OFF_CNTR + body + pad;
    if (total > OTA_SCP80_MAX_PACKET) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "por: packet of %zu octets, max %u",
                        total, OTA_SCP80_MAX_PACKET);
    }
    if (cap < total) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "por: cap %zu, packet needs %zu", cap,
                        total);
    }

    /*
     * The CC input is 02 71 00|RPL..STATUS|data|padding (TS 31.115 4.4). With
     * a CC of 3 octets or more it fits in dst right before the data; a CRC16
     * is built in the stack scratch instead.
     */
    h = n >= OTA_SCP80_UDH_LEN ? dst + n - OTA_SCP80_UDH_LEN : n ? scratch : dst;
    if (n) {
        memcpy(h, por_udh, OTA_SCP80_UDH_LEN);
        h += OTA_SCP80_UDH_LEN;
    }
    ota_put_u16(h, (uint16_t)(total - 2));
    h[POR_OFF_RHL] = (uint8_t)(OTA_SCP80_RHL_BASE + n);
    memcpy(h + POR_OFF_TAR, cmd->tar, 3);
    ota_put_u40(h + POR_OFF_CNTR, cmd->cntr);
    h[POR_OFF_PCNTR] = (uint8_t)pad;
    h[POR_OFF_STATUS] = status;
    if (data_len) {
        memcpy(h + POR_HDR_LEN, data, data_len);
    }
    memset(h + POR_HDR_LEN + data_len, 0, pad);
    if (n) {
        rc = compute_cc(c, &in, h - OTA_SCP80_UDH_LEN,
                        OTA_SCP80_UDH_LEN + POR_HDR_LEN + data_len + pad, cc, err);
        if (rc < 0) {
            goto fail;
        }
        if (n < OTA_SCP80_UDH_LEN) {
            /* CRC16: the CC input was built in the scratch */
            memcpy(dst + POR_HDR_LEN + n, h + POR_HDR_LEN, data_len + pad);
        }
        memmove(dst, h, POR_HDR_LEN);
        memcpy(dst + POR_HDR_LEN, cc, n);
    }
    if (cipher) {
        rc = ota_crypto_cipher(c, ci.key, ci.mode, true, NULL, dst + POR_OFF_CNTR,
                               total - POR_OFF_CNTR, dst + POR_OFF_CNTR, err);
        if (rc < 0) {
            goto fail;
        }
    }
    if (n && n < OTA_SCP80_UDH_LEN) {
        OPENSSL_cleanse(scratch, OTA_SCP80_UDH_LEN + total);
    }
    return (int)total;

fail:
    OPENSSL_cleanse(dst, total);
    if (n && n < OTA_SCP80_UDH_LEN) {
        OPENSSL_cleanse(scratch, OTA_SCP80_UDH_LEN + total);
    }
    return rc;
}

int ota_scp80_por_encode_sms(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                             const struct ota_scp80_keys *keys, bool protect, uint8_t status,
                             const uint8_t *data, size_t data_len, uint8_t *dst, size_t cap,
                             struct ota_err *err)
{
    int rc;

    if (!dst) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "por: NULL argument");
    }
    if (cap < OTA_SCP80_UDH_LEN) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "por: cap %zu, udh needs %u", cap,
                        OTA_SCP80_UDH_LEN);
    }
    rc = ota_scp80_por_encode(c, cmd, keys, protect, status, data, data_len,
                              dst + OTA_SCP80_UDH_LEN, cap - OTA_SCP80_UDH_LEN, err);
    if (rc < 0) {
        return rc;
    }
    memcpy(dst, por_udh, OTA_SCP80_UDH_LEN);
    return rc + OTA_SCP80_UDH_LEN;
}

/* Decrypted plaintext CNTR..end of a PoR looks padded as the cipher would pad it. */
static bool por_plain_plausible(const uint8_t *plain, size_t plain_len, size_t block)
{
    uint8_t pcntr = plain[POR_OFF_PCNTR - POR_OFF_CNTR];

    return pcntr < block && pcntr <= plain_len - POR_PLAIN_FIXED;
}

int ota_scp80_por_decode(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                         const struct ota_scp80_keys *keys, const uint8_t *p, size_t len,
                         uint8_t *work, size_t work_cap, struct ota_scp80_por *out,
                         struct ota_err *err)
{
    /* plaintext CNTR..end lands at work[9..]: room for 02 71 00 + RPL..TAR */
    enum { P0 = OTA_SCP80_UDH_LEN + POR_OFF_CNTR };
    struct sec_alg ci = {0}, in = {0};
    uint8_t cc_rx[OTA_SCP80_CC_MAX] = {0}, cc[OTA_SCP80_CC_MAX] = {0};
    struct ota_scp80_por r;
    size_t total, n, enc_len, body;
    bool want_int, want_ciph, decipher = false, missing = false;
    uint16_t rpl;
    uint8_t rhl;
    int rc;

    if (!c || !cmd || !keys || !p || !work || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "por: NULL argument");
    }
    rc = spi_check(&cmd->spi, err);
    if (rc < 0) {
        return rc;
    }
    if (len < 3) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "por: %zu octets, RPL+RHL need 3", len);
    }
    rpl = ota_get_u16(p);
    total = (size_t)rpl + 2;
    if (total > OTA_SCP80_MAX_PACKET) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE, "por: rpl %u, packet max %u", rpl,
                        OTA_SCP80_MAX_PACKET);
    }
    if (len < total) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "por: %zu octets, rpl %u needs %zu", len,
                        rpl, total);
    }
    if (len > total) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "por: %zu octets, rpl %u accounts for %zu",
                        len, rpl, total);
    }
    rhl = p[POR_OFF_RHL];
    if (rhl < OTA_SCP80_RHL_BASE) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "por: rhl %u below %u", rhl,
                        OTA_SCP80_RHL_BASE);
    }
    n = rhl - OTA_SCP80_RHL_BASE;
    if (n != 0 && n != 2 && n != 4 && n != 8) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "por: rhl %u gives rc/cc of %zu octets", rhl,
                        n);
    }
    if (rpl < 1u + rhl) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "por: rpl %u shorter than rhl %u + 1", rpl,
                        rhl);
    }
    if (work_cap < OTA_SCP80_POR_WORK(total)) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "por: work %zu, needs %zu", work_cap,
                        OTA_SCP80_POR_WORK(total));
    }

    want_int = cmd->spi.por_integrity != OTA_SCP80_INTEGRITY_NONE;
    want_ciph = cmd->spi.por_ciphered;
    enc_len = total - POR_OFF_CNTR;
    if (n) {
        if (!want_int) {
            return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                            "por: rhl %u announces rc/cc, spi asked for none", rhl);
        }
        /* the CC length comes from RHL (reference 6.8); it must suit the KID */
        rc = resolve_integrity(cmd->spi.por_integrity, cmd->kid, keys->kid, (unsigned)n, true, &in,
                               err);
        if (rc < 0) {
            return rc;
        }
    } else if (want_int) {
        /*
         * Unprotected error PoR (TS 102 225 5.2 practice): parsed plain and
         * flagged. This holds for a DS request too: there is nothing to verify.
         */
        missing = true;
    }
    if (want_ciph && !missing) {
        rc = resolve_cipher(cmd->kic, keys->kic, &ci, err);
        if (rc < 0) {
            return rc;
        }
        if (enc_len % ci.block == 0) {
            decipher = true;
        } else if (n) {
            return ota_fail(err, -EBADMSG, OTA_ERR_PADDING,
                            "por: %zu ciphered octets, not a multiple of %zu", enc_len, ci.block);
        } else {
            missing = true; /* cannot be ciphertext: a plain PoR */
        }
    }
    if (decipher) {
        rc = ota_crypto_cipher(c, ci.key, ci.mode, false, NULL, p + POR_OFF_CNTR, enc_len,
                               work + P0, err);
        if (rc < 0) {
            goto fail;
        }
        /*
         * Ciphering without RC/CC: a plain error PoR that happens to be block
         * aligned decrypts to noise. The PoR repeats the command's counter
         * (TS 102 225 5.2), so whichever reading shows it wins; failing that,
         * the reading whose PCNTR makes sense.
         */
        if (n == 0 && p[POR_OFF_PCNTR] == 0) {
            bool dec_ok = por_plain_plausible(work + P0, enc_len, ci.block);
            bool dec_cntr = ota_get_u40(work + P0) == cmd->cntr;
            bool plain_cntr = ota_get_u40(p + POR_OFF_CNTR) == cmd->cntr;

            if (!(dec_ok && dec_cntr) && (plain_cntr || !dec_ok)) {
                decipher = false;
                missing = true;
            }
        }
    }
    if (!decipher) {
        memcpy(work + P0, p + POR_OFF_CNTR, enc_len);
    }
    /* rebuild 02 71 00|RPL..STATUS right before the data, taking the CC out */
    memcpy(cc_rx, work + P0 + POR_PLAIN_FIXED, n);
    memmove(work + P0 + n, work + P0, POR_PLAIN_FIXED);
    memcpy(work + n + OTA_SCP80_UDH_LEN, p, POR_OFF_CNTR);
    memcpy(work + n, por_udh, OTA_SCP80_UDH_LEN);
    body = total - POR_HDR_LEN - n;

    if (n) {
        rc = compute_cc(c, &in, work + n, OTA_SCP80_UDH_LEN + POR_HDR_LEN + body, cc, err);
        if (rc < 0) {
            goto fail;
        }
        if (CRYPTO_memcmp(cc, cc_rx, n) != 0) {
            rc = ota_fail(err, -EBADMSG, OTA_ERR_BAD_CC, "por: %s of %zu octets mismatch",
                          ota_scp80_alg_name(in.alg), n);
            goto fail;
        }
    }
    r.pcntr = work[n + OTA_SCP80_UDH_LEN + POR_OFF_PCNTR];
    if (decipher ? r.pcntr >= ci.block : r.pcntr != 0) {
        rc = ota_fail(err, -EBADMSG, OTA_ERR_PADDING, "por: pcntr %u with %s", r.pcntr,
                      decipher ? "ciphering block" : "no ciphering");
        goto fail;
    }
    if (r.pcntr > body) {
        rc = ota_fail(err, -EBADMSG, OTA_ERR_PADDING, "por: pcntr %u above %zu data octets",
                      r.pcntr, body);
        goto fail;
    }
    r.rpl = rpl;
    r.rhl = rhl;
    memcpy(r.tar, p + POR_OFF_TAR, 3);
    r.cntr = ota_get_u40(work + n + OTA_SCP80_UDH_LEN + POR_OFF_CNTR);
    r.status = work[n + OTA_SCP80_UDH_LEN + POR_OFF_STATUS];
    r.cc_len = (uint8_t)n;
    memcpy(r.cc, cc_rx, sizeof(r.cc));
    r.cc_state = n ? OTA_SCP80_CC_VALID : OTA_SCP80_CC_ABSENT;
    r.deciphered = decipher;
    r.protection_missing = missing;
    r.data = work + n + OTA_SCP80_UDH_LEN + POR_HDR_LEN;
    r.data_len = body - r.pcntr;
    *out = r;
    return 0;

fail:
    OPENSSL_cleanse(work, OTA_SCP80_POR_WORK(total));
    return rc;
}

int ota_scp80_por_decode_sms(struct ota_crypto *c, const struct ota_scp80_cmd *cmd,
                             const struct ota_scp80_keys *keys, const uint8_t *ud, size_t len,
                             uint8_t *work, size_t work_cap, struct ota_scp80_por *out,
                             struct ota_err *err)
{
    size_t udh_end, i;
    bool rpi = false;

    if (!ud) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "por: NULL argument");
    }
    if (len < 1) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "por: empty user data");
    }
    udh_end = 1 + (size_t)ud[0];
    if (len < udh_end) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "por: %zu octets, udhl %u needs %zu", len,
                        ud[0], udh_end);
    }
    for (i = 1; i < udh_end;) {
        uint8_t iei, iedl;

        if (udh_end - i < 2) {
            return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "por: udh IE at %zu runs past udhl %u",
                            i, ud[0]);
        }
        iei = ud[i];
        iedl = ud[i + 1];
        if (udh_end - i - 2 < iedl) {
            return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                            "por: udh IE %02X length %u runs past udhl %u", iei, iedl, ud[0]);
        }
        if (iei == OTA_IEI_RPI) {
            /* TS 31.115 4.4: the RPI has no data */
            if (iedl != 0) {
                return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH, "por: rpi IE length %u, must be 0",
                                iedl);
            }
            if (rpi) {
                return ota_fail(err, -EBADMSG, OTA_ERR_DUPLICATE, "por: rpi IE appears twice");
            }
            rpi = true;
        }
        i += 2 + (size_t)iedl;
    }
    if (!rpi) {
        return ota_fail(err, -EBADMSG, OTA_ERR_MISSING, "por: udh has no rpi (71) IE");
    }
    return ota_scp80_por_decode(c, cmd, keys, ud + udh_end, len - udh_end, work, work_cap, out,
                                err);
}

int ota_scp80_por_match(const struct ota_scp80_por *por, const uint8_t tar[3], uint64_t cntr,
                        struct ota_err *err)
{
    if (!por || !tar) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "por: NULL argument");
    }
    if (memcmp(por->tar, tar, 3) != 0) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TAR, "por: tar %02X%02X%02X, sent %02X%02X%02X",
                        por->tar[0], por->tar[1], por->tar[2], tar[0], tar[1], tar[2]);
    }
    /* TS 102 225 5.2: the PoR repeats the counter of the command it answers */
    if (por->cntr != cntr) {
        return ota_fail(err, -EBADMSG, OTA_ERR_COUNTER, "por: cntr %010llX, sent %010llX",
                        (unsigned long long)por->cntr, (unsigned long long)cntr);
    }
    return 0;
}
