/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ota/gp.c: every GlobalPlatform builder byte-exact, against the plain APDUs
 * of the SCP02 vectors (pysim-scp02-handshake-sl01, pysimgen-scp02-GP-*) where
 * they exist and hand-assembled GP 2.2 clause 11 layouts elsewhere; LOAD and
 * STORE DATA block splitting; PUT KEY against an independent encryption;
 * refusals of bad AIDs, roles and sizes; nothing written on failure.
 */
#include "ota/ota.h"
#include "tests/support/tsupport.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static const uint8_t isd[] = {0xa0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00};
static const uint8_t elf[] = {0xa0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x41};
static const uint8_t app[] = {0xa0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x41, 0x01};
static const uint8_t aid17[17] = {0xa0};
static const uint8_t priv0[] = {0x00};
static const uint8_t c9_empty[] = {0xc9, 0x00};

/* ---- refusals first ---- */

static void test_bad_args(void **state)
{
    uint8_t out[300];
    struct ota_err err;

    (void)state;
    memset(out, 0xcc, sizeof(out));
    assert_int_equal(ota_gp_select(app, 4, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_ARG);
    assert_int_equal(ota_gp_select(aid17, 17, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_gp_delete(app, 0, false, NULL, 0, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_gp_set_status(0x40, 0x80, NULL, 0, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_gp_set_status(0x80, 0x7f, app, 8, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_gp_set_status(0x20, 0x7f, NULL, 0, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_gp_get_status(0x81, 0x02, NULL, 0, NULL, 0, out, sizeof(out), &err),
                     -EINVAL);
    assert_int_equal(ota_gp_get_status(0x80, 0x04, NULL, 0, NULL, 0, out, sizeof(out), &err),
                     -EINVAL);
    assert_int_equal(ota_gp_ext_auth(0x02, app, app, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_gp_store_data(0x40, 0, app, 8, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_gp_store_data(0x18, 0, app, 8, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_gp_store_data(0x81, 0, app, 8, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_gp_store_data(0x80, 0, app, 0, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(out[0], 0xcc);

    struct ota_gp_install in = {
        .kind = OTA_GP_INSTALL_FOR_INSTALL_SELECTABLE,
        .elf_aid = elf,
        .elf_aid_len = 4,
        .mod_aid = app,
        .mod_aid_len = 8,
        .app_aid = app,
        .app_aid_len = 8,
        .priv = priv0,
        .priv_len = 1,
    };
    assert_int_equal(ota_gp_install(&in, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_ARG);
    in.elf_aid_len = 7;
    in.priv_len = 2;
    assert_int_equal(ota_gp_install(&in, out, sizeof(out), &err), -EINVAL);
    in.priv_len = 0;
    assert_int_equal(ota_gp_install(&in, out, sizeof(out), &err), -EINVAL);
    in.priv_len = 1;
    in.hash = app;
    in.hash_len = 8; /* no hash in this role */
    assert_int_equal(ota_gp_install(&in, out, sizeof(out), &err), -EINVAL);
    in.hash_len = 0;
    in.kind = (enum ota_gp_install_kind)0x05;
    assert_int_equal(ota_gp_install(&in, out, sizeof(out), &err), -EINVAL);
    in.kind = OTA_GP_INSTALL_FOR_PERSONALIZATION;
    assert_int_equal(ota_gp_install(&in, out, sizeof(out), &err), -EINVAL); /* elf given */
    in.kind = OTA_GP_INSTALL_FOR_INSTALL;
    in.params = NULL;
    in.params_len = 3;
    assert_int_equal(ota_gp_install(&in, out, sizeof(out), &err), -EINVAL);
    /* 3 AIDs of 16 + 210 octets of params exceed 255. */
    uint8_t big[210] = {0};
    in.params = big;
    in.params_len = sizeof(big);
    in.elf_aid = aid17;
    in.elf_aid_len = 16;
    in.mod_aid = aid17;
    in.mod_aid_len = 16;
    in.app_aid = aid17;
    in.app_aid_len = 16;
    assert_int_equal(ota_gp_install(&in, out, sizeof(out), &err), -EMSGSIZE);
    assert_int_equal(err.code, OTA_ERR_OVERSIZE);
    assert_int_equal(out[0], 0xcc);
}

static void test_nospace(void **state)
{
    uint8_t out[64];
    struct ota_err err;

    (void)state;
    /* Every short cap fails with NOSPACE and leaves dst alone. */
    for (size_t cap = 0; cap < 15; cap++) {
        memset(out, 0xcc, sizeof(out));
        assert_int_equal(ota_gp_delete(isd, 7, true, NULL, 0, out, cap, &err), -ENOSPC);
        assert_int_equal(err.code, OTA_ERR_NOSPACE);
        assert_int_equal(out[0], 0xcc);
    }
    for (size_t cap = 0; cap < 5; cap++) {
        assert_int_equal(ota_gp_get_data(0x0066, out, cap, &err), -ENOSPC);
    }
}

/* ---- exact bytes ---- */

static void test_vectors(void **state)
{
    uint8_t out[300];
    int n;

    (void)state;
    /* pysimgen-scp02-GP-default-keys-SL03, plain APDU 2. */
    struct ota_gp_install in = {
        .kind = OTA_GP_INSTALL_FOR_INSTALL_SELECTABLE,
        .elf_aid = elf,
        .elf_aid_len = sizeof(elf),
        .mod_aid = app,
        .mod_aid_len = sizeof(app),
        .app_aid = app,
        .app_aid_len = sizeof(app),
        .priv = priv0,
        .priv_len = 1,
        .params = c9_empty,
        .params_len = 2,
    };
    n = ota_gp_install(&in, out, sizeof(out), NULL);
    ts_assert_bytes(out, n,
                    "80e60c002007a000000151534108a00000015153410108a000000151534101010002c90000");

    /* pysimgen-scp02-GP-default-keys-SL01, plain APDU 3: DELETE with related objects. */
    n = ota_gp_delete(isd, 7, true, NULL, 0, out, sizeof(out), NULL);
    ts_assert_bytes(out, n, "80e40080094f07a000000151000000");

    /* SL03 APDU 3: SET STATUS lock. */
    n = ota_gp_set_status(OTA_GP_STATUS_SCOPE_APP, OTA_GP_SET_STATUS_LOCK, app, sizeof(app), out,
                          sizeof(out), NULL);
    ts_assert_bytes(out, n, "80f0408008a000000151534101");

    n = ota_gp_get_status(OTA_GP_STATUS_ISD, OTA_GP_STATUS_TLV, NULL, 0, NULL, 0, out, sizeof(out),
                          NULL);
    ts_assert_bytes(out, n, "80f28002024f0000");

    /* pysim-scp02-handshake-sl01 APDU 3 has "5c05" over 4 tag octets (4f 9f70 c5), a
     * length no encoder produces; we write 5c04, and add Le. */
    static const uint8_t filt[] = {0x12, 0x34};
    static const uint8_t tags[] = {0x4f, 0x9f, 0x70, 0xc5};
    n = ota_gp_get_status(OTA_GP_STATUS_ELF, OTA_GP_STATUS_TLV, filt, 2, tags, 4, out, sizeof(out),
                          NULL);
    ts_assert_bytes(out, n,
                    "80f220020a4f0212345c044f9f70c5"
                    "00");

    n = ota_gp_get_data(0x0066, out, sizeof(out), NULL);
    ts_assert_bytes(out, n, "80ca006600");

    static const uint8_t hc[8] = {0x40, 0xa6, 0x2c, 0x37, 0xfa, 0x63, 0x04, 0xf8};
    n = ota_gp_init_update(0x20, hc, out, sizeof(out), NULL);
    ts_assert_bytes(out, n, "805020000840a62c37fa6304f800");

    uint8_t cg[8], mac[8];
    ts_hex("ba6961667737c5bc", cg, sizeof(cg));
    ts_hex("ebece14c7d6a4376", mac, sizeof(mac));
    n = ota_gp_ext_auth(0x01, cg, mac, out, sizeof(out), NULL);
    ts_assert_bytes(out, n, "8482010010ba6961667737c5bcebece14c7d6a4376");

    n = ota_gp_select(isd, sizeof(isd), out, sizeof(out), NULL);
    ts_assert_bytes(out, n, "00a4040008a00000015100000000");

    n = ota_gp_set_status(OTA_GP_STATUS_SCOPE_ISD, OTA_GP_CARD_LOCKED, NULL, 0, out, sizeof(out),
                          NULL);
    ts_assert_bytes(out, n, "80f0807f");
}

static void test_install_load(void **state)
{
    uint8_t out[300], params[32], elf16[16];
    int n, pl;
    struct ota_gp_space sp = {.nv_code = 0x01fd};

    (void)state;
    /* The INSTALL [for load] of the SCP02 vector with system params EF C6 01FD. */
    pl = ota_gp_system_params(&sp, params, sizeof(params), NULL);
    ts_assert_bytes(params, pl, "ef04c60201fd");
    ts_hex("a0000004650000000000000050524f01", elf16, sizeof(elf16));
    struct ota_gp_install in = {
        .kind = OTA_GP_INSTALL_FOR_LOAD,
        .elf_aid = elf16,
        .elf_aid_len = 16,
        .params = params,
        .params_len = (size_t)pl,
    };
    n = ota_gp_install(&in, out, sizeof(out), NULL);
    ts_assert_bytes(out, n, "80e602001b10a0000004650000000000000050524f01000006ef04c60201fd00");

    /* With an SD AID and a hash. */
    static const uint8_t hash[4] = {1, 2, 3, 4};
    in.sd_aid = isd;
    in.sd_aid_len = 8;
    in.hash = hash;
    in.hash_len = 4;
    in.params_len = 0;
    in.params = NULL;
    n = ota_gp_install(&in, out, sizeof(out), NULL);
    ts_assert_bytes(out, n,
                    "80e6020021"
                    "10a0000004650000000000000050524f01"
                    "08a000000151000000"
                    "0401020304"
                    "00"
                    "00");

    struct ota_gp_space sp3 = {.nv_code = 0x100, .v_data = 0x20, .nv_data = 0x12345};
    pl = ota_gp_system_params(&sp3, params, sizeof(params), NULL);
    ts_assert_bytes(params, pl, "ef0ec6020100c7020020c80400012345");
    struct ota_gp_space none = {0};
    assert_int_equal(ota_gp_system_params(&none, params, sizeof(params), NULL), -EINVAL);

    pl = ota_gp_install_params(NULL, 0, NULL, 0, params, sizeof(params), NULL);
    ts_assert_bytes(params, pl, "c900");
    static const uint8_t ap[2] = {0x01, 0x02};
    static const uint8_t sys[6] = {0xef, 0x04, 0xc8, 0x02, 0x01, 0x00};
    pl = ota_gp_install_params(ap, 2, sys, 6, params, sizeof(params), NULL);
    ts_assert_bytes(params, pl, "c9020102ef04c8020100");
    assert_int_equal(ota_gp_install_params(ap, 2, sys, 6, params, 9, NULL), -ENOSPC);
}

static void test_install_roles(void **state)
{
    uint8_t out[300];
    static const uint8_t priv3[3] = {0x80, 0xc0, 0x00};
    int n;

    (void)state;
    struct ota_gp_install ms = {
        .kind = OTA_GP_INSTALL_FOR_MAKE_SELECTABLE,
        .app_aid = app,
        .app_aid_len = 8,
        .priv = priv0,
        .priv_len = 1,
    };
    n = ota_gp_install(&ms, out, sizeof(out), NULL);
    ts_assert_bytes(out, n,
                    "80e608000f"
                    "0000"
                    "08a000000151534101"
                    "0100"
                    "00"
                    "00");

    struct ota_gp_install pe = {
        .kind = OTA_GP_INSTALL_FOR_PERSONALIZATION,
        .app_aid = app,
        .app_aid_len = 8,
    };
    n = ota_gp_install(&pe, out, sizeof(out), NULL);
    ts_assert_bytes(out, n,
                    "80e620000e"
                    "0000"
                    "08a000000151534101"
                    "000000");

    struct ota_gp_install ex = {
        .kind = OTA_GP_INSTALL_FOR_EXTRADITION,
        .sd_aid = isd,
        .sd_aid_len = 8,
        .app_aid = app,
        .app_aid_len = 8,
    };
    n = ota_gp_install(&ex, out, sizeof(out), NULL);
    ts_assert_bytes(out, n,
                    "80e6100016"
                    "08a000000151000000"
                    "00"
                    "08a000000151534101"
                    "00"
                    "00"
                    "00");

    struct ota_gp_install ru = {
        .kind = OTA_GP_INSTALL_FOR_REGISTRY_UPDATE,
        .app_aid = app,
        .app_aid_len = 8,
        .priv = priv3,
        .priv_len = 3,
    };
    n = ota_gp_install(&ru, out, sizeof(out), NULL);
    ts_assert_bytes(out, n,
                    "80e6400011"
                    "00"
                    "00"
                    "08a000000151534101"
                    "0380c000"
                    "00"
                    "00");

    struct ota_gp_install io = {
        .kind = OTA_GP_INSTALL_FOR_INSTALL,
        .elf_aid = elf,
        .elf_aid_len = 7,
        .mod_aid = app,
        .mod_aid_len = 8,
        .app_aid = app,
        .app_aid_len = 8,
        .priv = priv3,
        .priv_len = 3,
        .params = c9_empty,
        .params_len = 2,
    };
    n = ota_gp_install(&io, out, sizeof(out), NULL);
    ts_assert_bytes(out, n,
                    "80e6040022"
                    "07a0000001515341"
                    "08a000000151534101"
                    "08a000000151534101"
                    "0380c000"
                    "02c900"
                    "00");

    assert_string_equal(ota_gp_install_kind_name(OTA_GP_INSTALL_FOR_EXTRADITION),
                        "for-extradition");
    assert_string_equal(ota_gp_install_kind_name((enum ota_gp_install_kind)0x03), "unknown");
}

static void test_load(void **state)
{
    uint8_t file[600], out[300];
    struct ota_gp_load l = {.file = file, .file_len = sizeof(file), .block_len = 200};
    struct ota_err err;
    size_t nb = 0;
    int n;

    (void)state;
    for (size_t i = 0; i < sizeof(file); i++) {
        file[i] = (uint8_t)i;
    }
    /* C4 82 0258 + 600 = 604 octets: 200, 200, 200, 4. */
    assert_int_equal(ota_gp_load_count(&l, &nb, NULL), 0);
    assert_int_equal(nb, 4);
    n = ota_gp_load_block(&l, 0, out, sizeof(out), NULL);
    assert_int_equal(n, 205);
    assert_memory_equal(out, "\x80\xe8\x00\x00\xc8\xc4\x82\x02\x58", 9);
    assert_memory_equal(out + 9, file, 196);
    n = ota_gp_load_block(&l, 1, out, sizeof(out), NULL);
    assert_int_equal(n, 205);
    assert_memory_equal(out, "\x80\xe8\x00\x01\xc8", 5);
    assert_memory_equal(out + 5, file + 196, 200);
    n = ota_gp_load_block(&l, 3, out, sizeof(out), NULL);
    ts_assert_bytes(out, n,
                    "80e8800304"
                    "54555657");
    assert_int_equal(ota_gp_load_block(&l, 4, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_ARG);

    /* 240-octet blocks: 240, 240, 124. */
    l.block_len = 240;
    assert_int_equal(ota_gp_load_count(&l, &nb, NULL), 0);
    assert_int_equal(nb, 3);
    n = ota_gp_load_block(&l, 0, out, sizeof(out), NULL);
    assert_int_equal(n, 245);
    assert_memory_equal(out, "\x80\xe8\x00\x00\xf0\xc4\x82\x02\x58", 9);
    n = ota_gp_load_block(&l, 2, out, sizeof(out), NULL);
    assert_int_equal(n, 5 + 124);
    assert_memory_equal(out, "\x80\xe8\x80\x02\x7c", 5);
    assert_memory_equal(out + 5, file + 476, 124);

    /* Reassembling every block gives back the stream. */
    uint8_t stream[700];
    size_t sl = 0;
    for (size_t i = 0; i < nb; i++) {
        n = ota_gp_load_block(&l, i, out, sizeof(out), NULL);
        assert_true(n > 5);
        memcpy(stream + sl, out + 5, (size_t)n - 5);
        sl += (size_t)n - 5;
    }
    assert_int_equal(sl, 604);
    assert_memory_equal(stream + 4, file, 600);

    /* A DAP block goes in front of C4; short files use the 1-octet length. */
    static const uint8_t dap[] = {0xe2, 0x03, 0x4f, 0x01, 0xaa};
    struct ota_gp_load ld = {.file = file, .file_len = 3, .dap = dap, .dap_len = 5, .block_len = 8};
    assert_int_equal(ota_gp_load_count(&ld, &nb, NULL), 0);
    assert_int_equal(nb, 2);
    n = ota_gp_load_block(&ld, 0, out, sizeof(out), NULL);
    ts_assert_bytes(out, n,
                    "80e8000008"
                    "e2034f01aa"
                    "c40300");
    n = ota_gp_load_block(&ld, 1, out, sizeof(out), NULL);
    ts_assert_bytes(out, n,
                    "80e880010201"
                    "02");

    /* 200-octet file: C4 81 C8. */
    struct ota_gp_load l2 = {.file = file, .file_len = 200, .block_len = 255};
    n = ota_gp_load_block(&l2, 0, out, sizeof(out), NULL);
    assert_int_equal(n, 5 + 203);
    assert_memory_equal(out, "\x80\xe8\x80\x00\xcb\xc4\x81\xc8", 8);

    /* Refusals: over 256 blocks, bad block sizes, empty file. */
    struct ota_gp_load bad = {.file = file, .file_len = 300, .block_len = 1};
    assert_int_equal(ota_gp_load_count(&bad, &nb, &err), -EMSGSIZE);
    assert_int_equal(err.code, OTA_ERR_OVERSIZE);
    bad.block_len = 2; /* 303 / 2 = 152 blocks: fine */
    assert_int_equal(ota_gp_load_count(&bad, &nb, NULL), 0);
    assert_int_equal(nb, 152);
    bad.block_len = 256;
    assert_int_equal(ota_gp_load_count(&bad, &nb, &err), -EINVAL);
    bad.block_len = 0;
    assert_int_equal(ota_gp_load_count(&bad, &nb, &err), -EINVAL);
    bad.block_len = 10;
    bad.file_len = 0;
    assert_int_equal(ota_gp_load_count(&bad, &nb, &err), -EINVAL);
}

static void test_store_data(void **state)
{
    uint8_t data[600], out[300];
    char want[400] = "80e290005d";
    struct ota_err err;
    size_t nb;
    int n;

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)i;
    }
    /* pysim-scp02-handshake-sl01 family: 93 octets, last block, BER-TLV. */
    for (size_t i = 0; i < 93; i++) {
        sprintf(want + 10 + 2 * i, "%02x", (unsigned)i);
    }
    n = ota_gp_store_data(OTA_GP_STORE_LAST | OTA_GP_STORE_STRUCT_BERTLV, 0, data, 93, out,
                          sizeof(out), NULL);
    ts_assert_bytes(out, n, want);
    n = ota_gp_store_data_block(OTA_GP_STORE_STRUCT_BERTLV, data, 93, 200, 0, out, sizeof(out),
                                NULL);
    ts_assert_bytes(out, n, want);

    /* 600 octets in 250: blocks 0, 1 (P1 08 DGI) and 2 (P1 88). */
    assert_int_equal(ota_gp_store_data_count(600, 250, &nb, NULL), 0);
    assert_int_equal(nb, 3);
    n = ota_gp_store_data_block(OTA_GP_STORE_STRUCT_DGI, data, 600, 250, 1, out, sizeof(out), NULL);
    assert_int_equal(n, 255);
    assert_memory_equal(out, "\x80\xe2\x08\x01\xfa", 5);
    assert_memory_equal(out + 5, data + 250, 250);
    n = ota_gp_store_data_block(OTA_GP_STORE_STRUCT_DGI, data, 600, 250, 2, out, sizeof(out), NULL);
    assert_int_equal(n, 105);
    assert_memory_equal(out, "\x80\xe2\x88\x02\x64", 5);
    assert_int_equal(
        ota_gp_store_data_block(OTA_GP_STORE_STRUCT_DGI, data, 600, 250, 3, out, sizeof(out), &err),
        -EINVAL);
    assert_int_equal(
        ota_gp_store_data_block(OTA_GP_STORE_LAST, data, 600, 250, 0, out, sizeof(out), &err),
        -EINVAL);
    assert_int_equal(ota_gp_store_data_count(600, 2, &nb, &err), -EMSGSIZE);
    assert_int_equal(ota_gp_store_data_count(0, 2, &nb, &err), -EINVAL);
}

static void test_put_key(void **state)
{
    struct ota_crypto *c = NULL;
    struct ota_key k[3], dek, aes_dek, aes_k;
    uint8_t raw[32], enc[32], kcv[3], out[300];
    struct ota_err err;
    int n;

    (void)state;
    assert_int_equal(ota_crypto_new(&c, NULL), 0);
    ts_hex("404142434445464748494a4b4c4d4e4f", raw, sizeof(raw));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ota_key_set(&k[i], OTA_CIPHER_3DES2, raw, 16, NULL), 0);
    }
    ts_hex("06e72d52eefbd1d8db5c230c3f2b56e9", raw, sizeof(raw)); /* a session DEK of the vectors */
    assert_int_equal(ota_key_set(&dek, OTA_CIPHER_3DES2, raw, 16, NULL), 0);

    /* Independent: 3DES-ECB of the plain key under the DEK; KCV 8BAF47. */
    assert_int_equal(
        ota_crypto_cipher(c, &dek, OTA_MODE_ECB, true, NULL, k[0].bytes, 16, enc, NULL), 0);
    assert_int_equal(ota_crypto_kcv(c, &k[0], kcv, NULL), 0);
    assert_memory_equal(kcv, "\x8b\xaf\x47", 3);

    n = ota_gp_put_key(c, 0x00, 0x30, 0x01, k, 3, &dek, out, sizeof(out), NULL);
    assert_int_equal(n, 5 + 67 + 1);
    assert_memory_equal(out, "\x80\xd8\x00\x81\x43\x30", 6);
    for (int i = 0; i < 3; i++) {
        const uint8_t *p = out + 6 + 22 * i;
        assert_int_equal(p[0], 0x80);
        assert_int_equal(p[1], 0x10);
        assert_memory_equal(p + 2, enc, 16);
        assert_memory_equal(p + 18, "\x03\x8b\xaf\x47", 4);
    }
    assert_int_equal(out[n - 1], 0x00);

    /* One key: P2 without b8, replacing KVN 30. */
    n = ota_gp_put_key(c, 0x30, 0x31, 0x02, k, 1, &dek, out, sizeof(out), NULL);
    assert_int_equal(n, 5 + 23 + 1);
    assert_memory_equal(out, "\x80\xd8\x30\x02\x17\x31\x80\x10", 8);

    /* AES key under an AES DEK: 88 len+1 len enc 03 kcv. */
    ts_hex("000102030405060708090a0b0c0d0e0f", raw, sizeof(raw));
    assert_int_equal(ota_key_set(&aes_dek, OTA_CIPHER_AES, raw, 16, NULL), 0);
    ts_hex("404142434445464748494a4b4c4d4e4f", raw, sizeof(raw));
    assert_int_equal(ota_key_set(&aes_k, OTA_CIPHER_AES, raw, 16, NULL), 0);
    assert_int_equal(
        ota_crypto_cipher(c, &aes_dek, OTA_MODE_CBC, true, NULL, aes_k.bytes, 16, enc, NULL), 0);
    assert_int_equal(ota_crypto_kcv(c, &aes_k, kcv, NULL), 0);
    n = ota_gp_put_key(c, 0x00, 0x30, 0x01, &aes_k, 1, &aes_dek, out, sizeof(out), NULL);
    assert_int_equal(n, 5 + 1 + 3 + 16 + 4 + 1);
    assert_memory_equal(out, "\x80\xd8\x00\x01\x18\x30\x88\x11\x10", 9);
    assert_memory_equal(out + 9, enc, 16);
    assert_int_equal(out[25], 0x03);
    assert_memory_equal(out + 26, kcv, 3);

    /* Refusals. */
    memset(out, 0xcc, sizeof(out));
    assert_int_equal(ota_gp_put_key(c, 0, 0x30, 1, k, 1, &aes_dek, out, sizeof(out), &err),
                     -EINVAL);
    assert_int_equal(err.code, OTA_ERR_KEY);
    assert_int_equal(ota_gp_put_key(c, 0, 0x30, 1, &aes_k, 1, &dek, out, sizeof(out), &err),
                     -EINVAL);
    assert_int_equal(err.code, OTA_ERR_KEY);
    uint8_t r24[24] = {0};
    struct ota_key a24;
    assert_int_equal(ota_key_set(&a24, OTA_CIPHER_AES, r24, 24, NULL), 0);
    assert_int_equal(ota_gp_put_key(c, 0, 0x30, 1, &a24, 1, &aes_dek, out, sizeof(out), &err),
                     -EINVAL);
    assert_int_equal(err.code, OTA_ERR_KEY);
    assert_int_equal(ota_gp_put_key(c, 0, 0x30, 1, k, 0, &dek, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(err.code, OTA_ERR_ARG);
    assert_int_equal(ota_gp_put_key(c, 0, 0x30, 0x80, k, 1, &dek, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(ota_gp_put_key(c, 0, 0x30, 1, k, 3, &dek, out, 72, &err), -ENOSPC);
    assert_int_equal(out[0], 0xcc);

    ota_key_wipe(&dek);
    ota_key_wipe(&aes_dek);
    ota_crypto_free(c);
}

static void test_lcs_names(void **state)
{
    (void)state;
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_CARD, 0x01), "OP_READY");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_CARD, 0x07), "INITIALIZED");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_CARD, 0x0f), "SECURED");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_CARD, 0x7f), "CARD_LOCKED");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_CARD, 0xff), "TERMINATED");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_CARD, 0x03), "unknown");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_APP, 0x03), "INSTALLED");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_APP, 0x07), "SELECTABLE");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_APP, 0x87), "LOCKED");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_APP, 0x83), "LOCKED");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_APP, 0x0f), "APP_SPECIFIC");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_APP, 0x01), "unknown");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_SD, 0x0f), "PERSONALIZED");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_SD, 0x8f), "LOCKED");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_SD, 0x1f), "unknown");
    assert_string_equal(ota_gp_lcs_name(OTA_GP_LCS_ELF, 0x01), "LOADED");
    assert_string_equal(ota_gp_lcs_name((enum ota_gp_lcs_kind)9, 0x01), "unknown");
    assert_string_equal(ota_gp_lcs_kind_name(OTA_GP_LCS_SD), "security-domain");
    assert_string_equal(ota_gp_lcs_kind_name(OTA_GP_LCS__COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_args),      cmocka_unit_test(test_nospace),
        cmocka_unit_test(test_vectors),       cmocka_unit_test(test_install_load),
        cmocka_unit_test(test_install_roles), cmocka_unit_test(test_load),
        cmocka_unit_test(test_store_data),    cmocka_unit_test(test_put_key),
        cmocka_unit_test(test_lcs_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
