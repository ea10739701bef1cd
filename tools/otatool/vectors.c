/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `otatool vectors FILE...`: runs every vector of files in the format of
 * ../shared/vectors/ota-vectors.json. One line per failing vector (its id and
 * what differed), then "N passed, M failed". A vector whose type this tool
 * does not know counts as failed, never as skipped.
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
    fprintf(f, "usage: otatool vectors FILE...\n"
               "Runs every vector in each FILE (format of shared/vectors/ota-vectors.json).\n"
               "Prints one line per failing vector and ends with 'N passed, M failed'.\n"
               "Exit status 0 only when nothing failed. Known types:");
    for (size_t i = 0; i < sizeof(vtypes) / sizeof(vtypes[0]); i++) {
        fprintf(f, " %s", vtypes[i].type);
    }
    fputc('\n', f);
}

static void run_one(struct vctx *vc, const json_t *v, unsigned idx, const char *file,
                    unsigned *pass, unsigned *fail)
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
    if (d.n) {
        printf("FAIL %s (%s): %s\n", id, type ? type : "?", d.text);
        (*fail)++;
    } else {
        (*pass)++;
    }
}

int cmd_vectors(int argc, char **argv)
{
    unsigned pass = 0, fail = 0;
    struct vctx vc = {0};
    struct ota_err e;

    if (argc < 2) {
        usage(stderr);
        return TOOL_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return TOOL_OK;
    }
    if (ota_crypto_new(&vc.crypto, &e) < 0) {
        return die("crypto: %s", e.msg);
    }
    for (int a = 1; a < argc; a++) {
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
                run_one(&vc, json_array_get(vs, i), (unsigned)i, argv[a], &pass, &fail);
            }
        }
        json_decref(root);
    }
    ota_crypto_free(vc.crypto);
    printf("%u passed, %u failed\n", pass, fail);
    return fail ? TOOL_FAIL : TOOL_OK;
}
