/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET STATUS response parsing, GlobalPlatform Card Specification 2.2
 * 11.4.3 [numbering unverified]: the TLV format (P2 b2 = 1: repeated E3 templates of
 * 4F AID, 9F70 life cycle state, C5 privileges, C4 ELF AID, CE version,
 * 84 module AIDs, CC associated SD) and the legacy format (P2 b2 = 0,
 * len | AID | state | privileges, with the module list
 * for P1 = 10). Both parsers check the whole response before writing any
 * entry, and every pointer they return borrows from the response.
 */
#include "ota/ota_gp.h"

#include <string.h>

/* GP 2.2 11.4.3: AIDs in a response; 1..16 since a partial registry entry is still data. */
static int resp_aid(const char *what, size_t len, struct ota_err *err)
{
    if (len < 1 || len > OTA_GP_AID_MAX) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "get status: %s of %zu octets, expected 1..%d", what, len, OTA_GP_AID_MAX);
    }
    return 0;
}

static int once(bool *seen, uint16_t tag, struct ota_err *err)
{
    if (*seen) {
        return ota_fail(err, -EBADMSG, OTA_ERR_DUPLICATE, "get status: second tag %X in E3", tag);
    }
    *seen = true;
    return 0;
}

static int parse_e3(const uint8_t *p, size_t len, struct ota_gp_status_entry *out,
                    struct ota_err *err)
{
    struct ota_gp_status_entry e = {0};
    bool seen_aid = false, seen_lcs = false, seen_priv = false, seen_ver = false;
    bool seen_elf = false, seen_sd = false;
    struct ota_rapdu_tlv t;
    size_t o = 0;
    int rc;

    e.modules_tlv = true;
    while (o < len) {
        rc = ota_rapdu_tlv_get(p + o, len - o, true, &t, err);
        if (rc) {
            return rc;
        }
        switch (t.tag) {
        case OTA_GP_TAG_AID:
            rc = once(&seen_aid, t.tag, err);
            if (!rc) {
                rc = resp_aid("AID (4F)", t.len, err);
            }
            e.aid = t.value;
            e.aid_len = t.len;
            break;
        case OTA_GP_TAG_LCS:
            rc = once(&seen_lcs, t.tag, err);
            if (!rc && t.len != 1) {
                rc = ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                              "get status: 9F70 of %zu octets, expected 1", t.len);
            }
            if (!rc) {
                e.lcs = t.value[0];
            }
            break;
        case OTA_GP_TAG_PRIVILEGES:
            rc = once(&seen_priv, t.tag, err);
            if (!rc && t.len != 1 && t.len != 3) {
                rc = ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                              "get status: C5 of %zu octets, expected 1 or 3", t.len);
            }
            if (!rc) {
                memcpy(e.priv, t.value, t.len);
                e.priv_len = t.len;
            }
            break;
        case OTA_GP_TAG_LOAD_FILE:
            rc = once(&seen_elf, t.tag, err);
            if (!rc) {
                rc = resp_aid("ELF AID (C4)", t.len, err);
            }
            e.elf_aid = t.value;
            e.elf_aid_len = t.len;
            break;
        case OTA_GP_TAG_VERSION:
            rc = once(&seen_ver, t.tag, err);
            e.version = t.value;
            e.version_len = t.len;
            break;
        case OTA_GP_TAG_SD_AID:
            rc = once(&seen_sd, t.tag, err);
            if (!rc) {
                rc = resp_aid("SD AID (CC)", t.len, err);
            }
            e.sd_aid = t.value;
            e.sd_aid_len = t.len;
            break;
        case OTA_GP_TAG_MODULE_AID:
            rc = resp_aid("module AID (84)", t.len, err);
            if (e.n_modules == 0) {
                e.modules = p + o;
                e.modules_len = len - o;
            }
            e.n_modules++;
            break;
        default:
            /* Later amendments add tags (CF implicit selection, ...); skip them. */
            rc = 0;
            break;
        }
        if (rc) {
            return rc;
        }
        o += t.size;
    }
    if (!seen_aid || !seen_lcs) {
        return ota_fail(err, -EBADMSG, OTA_ERR_MISSING, "get status: E3 without %s",
                        seen_aid ? "life cycle state 9F70" : "AID 4F");
    }
    *out = e;
    return 0;
}

static int tlv_walk(const uint8_t *p, size_t len, struct ota_gp_status_entry *entries, size_t cap,
                    size_t *n_out, struct ota_err *err)
{
    struct ota_rapdu_tlv t;
    size_t o = 0, n = 0;
    int rc;

    while (o < len) {
        struct ota_gp_status_entry e;

        rc = ota_rapdu_tlv_get(p + o, len - o, false, &t, err);
        if (rc) {
            return rc;
        }
        if (t.tag != OTA_GP_TAG_STATUS_ENTRY) {
            return ota_fail(err, -EBADMSG, OTA_ERR_TAG,
                            "get status: tag %X at offset %zu, expected E3", t.tag, o);
        }
        rc = parse_e3(t.value, t.len, &e, err);
        if (rc) {
            return rc;
        }
        if (n == cap) {
            return ota_fail(err, -ENOSPC, OTA_ERR_LIMIT, "get status: more than %zu entries", cap);
        }
        if (entries) {
            entries[n] = e;
        }
        n++;
        o += t.size;
    }
    *n_out = n;
    return 0;
}

int ota_gp_status_parse_tlv(const uint8_t *p, size_t len, struct ota_gp_status_entry *entries,
                            size_t cap, size_t *n_out, struct ota_err *err)
{
    size_t n;
    int rc = tlv_walk(p, len, NULL, cap, &n, err);

    if (rc) {
        return rc;
    }
    rc = tlv_walk(p, len, entries, cap, &n, err);
    if (rc == 0) {
        *n_out = n;
    }
    return rc;
}

static int legacy_walk(const uint8_t *p, size_t len, uint8_t p1,
                       struct ota_gp_status_entry *entries, size_t cap, size_t *n_out,
                       struct ota_err *err)
{
    size_t o = 0, n = 0;

    while (o < len) {
        struct ota_gp_status_entry e = {0};
        size_t al = p[o];
        int rc = resp_aid("AID", al, err);

        if (rc) {
            return rc;
        }
        /* AID, life cycle state, privileges. */
        if (len - o - 1 < al + 2) {
            return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                            "get status: entry %zu needs %zu octets, %zu left", n, al + 3, len - o);
        }
        e.aid = p + o + 1;
        e.aid_len = al;
        e.lcs = p[o + 1 + al];
        e.priv[0] = p[o + 2 + al];
        e.priv_len = 1;
        o += 3 + al;
        if (p1 == OTA_GP_STATUS_ELF_MOD) {
            size_t nm;

            if (o >= len) {
                return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                                "get status: entry %zu lacks its module count", n);
            }
            nm = p[o++];
            e.modules = p + o;
            for (size_t m = 0; m < nm; m++) {
                if (o >= len) {
                    return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                                    "get status: entry %zu module %zu of %zu missing", n, m, nm);
                }
                rc = resp_aid("module AID", p[o], err);
                if (rc) {
                    return rc;
                }
                if (len - o - 1 < p[o]) {
                    return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                                    "get status: entry %zu module %zu AID of %u octets, %zu left",
                                    n, m, p[o], len - o - 1);
                }
                o += 1u + p[o];
            }
            e.n_modules = nm;
            e.modules_len = (size_t)(p + o - e.modules);
            if (nm == 0) {
                e.modules = NULL;
            }
        }
        if (n == cap) {
            return ota_fail(err, -ENOSPC, OTA_ERR_LIMIT, "get status: more than %zu entries", cap);
        }
        if (entries) {
            entries[n] = e;
        }
        n++;
    }
    *n_out = n;
    return 0;
}

int ota_gp_status_parse_legacy(const uint8_t *p, size_t len, uint8_t p1,
                               struct ota_gp_status_entry *entries, size_t cap, size_t *n_out,
                               struct ota_err *err)
{
    size_t n;
    int rc = legacy_walk(p, len, p1, NULL, cap, &n, err);

    if (rc) {
        return rc;
    }
    rc = legacy_walk(p, len, p1, entries, cap, &n, err);
    if (rc == 0) {
        *n_out = n;
    }
    return rc;
}

int ota_gp_status_module(const struct ota_gp_status_entry *e, size_t i, const uint8_t **aid,
                         size_t *aid_len, struct ota_err *err)
{
    size_t o = 0, k = 0;

    if (i >= e->n_modules) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "get status: module %zu of %zu", i,
                        e->n_modules);
    }
    while (o < e->modules_len) {
        struct ota_rapdu_tlv t;

        if (!e->modules_tlv) {
            if (k == i) {
                *aid = e->modules + o + 1;
                *aid_len = e->modules[o];
                return 0;
            }
            o += 1u + e->modules[o];
            k++;
            continue;
        }
        if (ota_rapdu_tlv_get(e->modules + o, e->modules_len - o, true, &t, err)) {
            break;
        }
        if (t.tag == OTA_GP_TAG_MODULE_AID) {
            if (k == i) {
                *aid = t.value;
                *aid_len = t.len;
                return 0;
            }
            k++;
        }
        o += t.size;
    }
    /* Only reachable with an entry the parsers did not produce. */
    return ota_fail(err, -EINVAL, OTA_ERR_ARG, "get status: module %zu not in the entry", i);
}
