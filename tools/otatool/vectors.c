/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `otatool vectors FILE...`: runs every vector of files in the format of
 * ../shared/vectors/ota-vectors.json. One line per failing vector (its id and
 * what differed), then "N passed, M failed". A vector whose type this tool
 * does not know counts as failed, never as skipped.
 *
 * With --pkcs11 MODULE --token LABEL --pin PIN every vector key is moved into
 * that PKCS#11 token first (vec_hsm.c); a vector needing a key the token
 * could not hold would be counted as skipped-by-backend, not passed.
 */
#include "otatool.h"
#include "vectors.h"

#include <string.h>

static const struct vtype {
    const char *type;
    void (*run)(struct vctx *, const json_t *in, const json_t *exp, struct vdiff *);
} vtypes[] = {
    {"scp80_command_encode", vec_scp80_command_encode},
    {"scp80_response_decode", vec_scp80_response_decode},
    {"scp02_session", vec_scp02_session},
    {"scp02_session_keys", vec_scp02_session_keys},
    {"scp02_dek_key_encryption", vec_scp02_dek_key_encryption},
    {"gp_key_diversification", vec_gp_key_diversification},
    {"udh_parse", vec_udh_parse},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: otatool vectors [--pkcs11 MODULE --token LABEL --pin PIN] FILE...\n"
               "Runs every vector in each FILE (format of shared/vectors/ota-vectors.json).\n"
               "Prints one line per failing vector and ends with 'N passed, M failed'.\n"
               "Exit status 0 only when nothing failed. Known types:");
    for (size_t i = 0; i < sizeof(vtypes) / sizeof(vtypes[0]); i++) {
        fprintf(f, " %s", vtypes[i].type);
    }
    fputc('\n', f);
}

static void run_one(struct vctx *vc, const json_t *v, unsigned idx, const char *file,
                    unsigned *pass, unsigned *fail, unsigned *skipped)
{
    struct vdiff d = {0};
    const char *id = json_string_value(json_object_get(v, "id"));
    const char *type = json_string_value(json_object_get(v, "type"));
    const json_t *in = json_object_get(v, "inputs"), *exp = json_object_get(v, "expected");
    char idbuf[64];

    if (!id) {
        snprintf(idbuf, sizeof(idbuf), "%s#%u", file, idx);
        id = idbuf;
    }
    if (!type) {
        vdiff_add(&d, "no type");
    } else if (!json_is_object(in) || !json_is_object(exp)) {
        vdiff_add(&d, "inputs/expected missing");
    } else {
        size_t i;
        for (i = 0; i < sizeof(vtypes) / sizeof(vtypes[0]); i++) {
            if (!strcmp(type, vtypes[i].type)) {
                break;
            }
        }
        if (i == sizeof(vtypes) / sizeof(vtypes[0])) {
            vdiff_add(&d, "unknown vector type '%s'", type);
        } else {
            vtypes[i].run(vc, in, exp, &d);
        }
    }
    if (vc->p11) {
        vk_vector_done(vc);
    }
    if (vc->skip && !d.n) {
        printf("SKIP %s (%s): a key the PKCS#11 backend does not offer\n", id, type ? type : "?");
        (*skipped)++;
    } else if (d.n) {
        printf("FAIL %s (%s): %s\n", id, type ? type : "?", d.text);
        (*fail)++;
    } else {
        (*pass)++;
    }
    vc->skip = false;
}

int cmd_vectors(int argc, char **argv)
{
    unsigned pass = 0, fail = 0, skipped = 0;
    const char *module = NULL, *token = NULL, *pin = NULL;
    struct vctx vc = {0};
    struct ota_err e;
    int first = 1;

    if (argc < 2) {
        usage(stderr);
        return TOOL_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return TOOL_OK;
    }
    while (first + 1 < argc && !strncmp(argv[first], "--", 2)) {
        const char **opt = !strcmp(argv[first], "--pkcs11")  ? &module
                           : !strcmp(argv[first], "--token") ? &token
                           : !strcmp(argv[first], "--pin")   ? &pin
                                                             : NULL;
        if (!opt) {
            usage(stderr);
            return TOOL_USAGE;
        }
        *opt = argv[first + 1];
        first += 2;
    }
    if ((module || token || pin) && !(module && token && pin)) {
        return die("vectors: --pkcs11, --token and --pin go together");
    }
    if (first >= argc) {
        usage(stderr);
        return TOOL_USAGE;
    }
    if (ota_crypto_new(&vc.crypto, &e) < 0) {
        return die("crypto: %s", e.msg);
    }
    if (module && vk_open(&vc, module, token, pin) < 0) {
        ota_crypto_free(vc.crypto);
        return TOOL_FAIL;
    }
    for (int a = first; a < argc; a++) {
        json_error_t jerr;
        json_t *root = json_load_file(argv[a], 0, &jerr);
        if (!root) {
            printf("FAIL %s: cannot read: %s (line %d)\n", argv[a], jerr.text, jerr.line);
            fail++;
            continue;
        }
        const json_t *vs = json_object_get(root, "vectors");
        if (!json_is_array(vs)) {
            printf("FAIL %s: no \"vectors\" array\n", argv[a]);
            fail++;
        } else {
            for (size_t i = 0; i < json_array_size(vs); i++) {
                run_one(&vc, json_array_get(vs, i), (unsigned)i, argv[a], &pass, &fail, &skipped);
            }
        }
        json_decref(root);
    }
    if (vc.p11) {
        vk_close(&vc);
        printf("pkcs11: %u skipped-by-backend\n", skipped);
    }
    ota_crypto_free(vc.crypto);
    printf("%u passed, %u failed\n", pass, fail);
    return fail ? TOOL_FAIL : TOOL_OK;
}
