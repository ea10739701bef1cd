/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key store's HSM backend over the PKCS#11 C API (v2.40, through
 * p11-kit's header; the module is dlopen()ed): keys are sensitive,
 * non-extractable CKO_SECRET_KEY objects found by CKA_LABEL, and this file
 * implements struct ota_key_ext_ops so every ota_crypto primitive runs in
 * the token (issue #7, spec 5.8.9).
 *
 * How each primitive maps to the token:
 * - 3DES/AES ECB and CBC: C_Encrypt / C_Decrypt with CKM_DES3_* / CKM_AES_*.
 *   The CBC-MAC of TS 102 225 is CBC encryption with a zero IV whose last
 *   block ota_crypto keeps; the KCV is one ECB block.
 * - CMAC: CKM_AES_CMAC / CKM_DES3_CMAC (full tag; callers truncate).
 * - SCP02 session keys and EMV/VISA2 diversification:
 *   CKM_DES3_CBC_ENCRYPT_DATA / CKM_DES3_ECB_ENCRYPT_DATA make a session
 *   object. The retail MAC and the ICV encryption need single DES under K1,
 *   which tokens on OpenSSL 3 lack, so each 16-octet 3DES key gets a
 *   companion K1|K1 object (3DES-EDE with K1|K1 is DES under K1): for a
 *   derived key it is ECB_ENCRYPT_DATA over B1|B1 (CBC with zero IV of the
 *   first block equals ECB), for an imported key it is made from the same
 *   source (clear K1|K1, or W1|W1 of an ECB-wrapped key).
 * - PUT KEY under a DEK: C_WrapKey; import under a transport key:
 *   C_UnwrapKey, then the KCV computed in the token.
 *
 * SoftHSM2 2.6.1 notes (tested): it unwraps only with CKM_AES_KEY_WRAP[_PAD]
 * and RSA, and wraps only with those and CKM_AES_CBC, so ECB transport
 * import and 3DES PUT KEY wrapping of token keys report -EOPNOTSUPP there;
 * p11_import_wrapped_kw() is the import path it does offer.
 */
#include "gateway/p11.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <p11-kit/pkcs11.h>

#define K1_SUFFIX "#k1" /* label suffix of a 3DES key's K1|K1 companion */

/* Mechanisms every open token must offer: without them a primitive would fail later. */
static const struct {
    CK_MECHANISM_TYPE m;
    const char *name;
} need_mechs[] = {
    {CKM_DES3_ECB, "CKM_DES3_ECB"},
    {CKM_DES3_CBC, "CKM_DES3_CBC"},
    {CKM_AES_ECB, "CKM_AES_ECB"},
    {CKM_AES_CBC, "CKM_AES_CBC"},
    {CKM_AES_CMAC, "CKM_AES_CMAC"},
    {CKM_DES3_ECB_ENCRYPT_DATA, "CKM_DES3_ECB_ENCRYPT_DATA"},
    {CKM_DES3_CBC_ENCRYPT_DATA, "CKM_DES3_CBC_ENCRYPT_DATA"},
    {CKM_DES2_KEY_GEN, "CKM_DES2_KEY_GEN"},
    {CKM_DES3_KEY_GEN, "CKM_DES3_KEY_GEN"},
    {CKM_AES_KEY_GEN, "CKM_AES_KEY_GEN"},
};

struct p11 {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE sess;
    bool have_sess;
    char token[33];
    /* optional mechanisms, read from C_GetMechanismInfo at open */
    bool des3_cmac, aes_kw, aes_cbc_wrap, des3_ecb_wrap, aes_ecb_wrap;
    bool des3_ecb_unwrap, aes_ecb_unwrap, aes_derive;
};

/*
 * C_Initialize is per process and module; several struct p11 may share it
 * (tests, bench), so only the last close finalizes. Not thread-safe, as
 * the header says.
 */
static unsigned init_refs;

static const struct {
    CK_RV rv;
    const char *name;
} ckr_names[] = {
    {CKR_OK, "CKR_OK"},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
    {CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY"},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {CKR_DATA_INVALID, "CKR_DATA_INVALID"},
    {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
    {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
    {CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE"},
    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE"},
    {CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE"},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
    {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
    {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
    {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID"},
    {CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE"},
    {CKR_WRAPPING_KEY_HANDLE_INVALID, "CKR_WRAPPING_KEY_HANDLE_INVALID"},
    {CKR_WRAPPING_KEY_TYPE_INCONSISTENT, "CKR_WRAPPING_KEY_TYPE_INCONSISTENT"},
    {CKR_UNWRAPPING_KEY_HANDLE_INVALID, "CKR_UNWRAPPING_KEY_HANDLE_INVALID"},
    {CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
    {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
};

const char *p11_rv_name(unsigned long rv)
{
    for (size_t i = 0; i < OTA_ARRAY_SIZE(ckr_names); i++) {
        if (ckr_names[i].rv == rv) {
            return ckr_names[i].name;
        }
    }
    return "CKR_?";
}

/* errno for a CK_RV: the caller's contract names -EACCES, -ENOENT, -EOPNOTSUPP. */
static int rv_errno(CK_RV rv)
{
    switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_LOCKED:
    case CKR_USER_NOT_LOGGED_IN:
        return -EACCES;
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_WRAPPING_KEY_HANDLE_INVALID:
    case CKR_UNWRAPPING_KEY_HANDLE_INVALID:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SLOT_ID_INVALID:
        return -ENOENT;
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_WRAPPING_KEY_TYPE_INCONSISTENT:
    case CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT:
        return -EOPNOTSUPP;
    case CKR_KEY_UNEXTRACTABLE:
    case CKR_KEY_NOT_WRAPPABLE:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_ATTRIBUTE_SENSITIVE:
        return -EPERM;
    case CKR_HOST_MEMORY:
    case CKR_DEVICE_MEMORY:
        return -ENOMEM;
    case CKR_DATA_LEN_RANGE:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
    case CKR_WRAPPED_KEY_LEN_RANGE:
    case CKR_WRAPPED_KEY_INVALID:
    case CKR_KEY_SIZE_RANGE:
    case CKR_ARGUMENTS_BAD:
        return -EINVAL;
    default:
        return -EIO;
    }
}

/* Fail with the function and the CKR_ name in the message (never key material). */
static int rv_fail(struct ota_err *err, const char *fn, CK_RV rv, const char *what)
{
    return ota_fail(err, rv_errno(rv), OTA_ERR_CRYPTO, "p11: %s%s%s: %s (0x%lx)", fn,
                    what ? " " : "", what ? what : "", p11_rv_name(rv), (unsigned long)rv);
}

/* ---- attribute templates ----------------------------------------------------------- */

static CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;
static CK_OBJECT_CLASS cls_secret = CKO_SECRET_KEY;

/*
 * CKK_ type of an ota cipher. Single DES is kept as a CKK_DES2 object holding
 * K|K (EDE with equal halves is single DES: SoftHSM2 on OpenSSL 3 and FIPS
 * tokens have no CKK_DES), marked by CKA_ID = {8} so p11_key() names it DES.
 */
static int key_type(enum ota_cipher c, size_t len, CK_KEY_TYPE *kt, struct ota_err *err)
{
    switch (c) {
    case OTA_CIPHER_3DES2:
        *kt = CKK_DES2;
        return len == 16 ? 0 : ota_fail(err, -EINVAL, OTA_ERR_KEY, "p11: 3DES2 key of %zu", len);
    case OTA_CIPHER_3DES3:
        *kt = CKK_DES3;
        return len == 24 ? 0 : ota_fail(err, -EINVAL, OTA_ERR_KEY, "p11: 3DES3 key of %zu", len);
    case OTA_CIPHER_AES:
        *kt = CKK_AES;
        return len == 16 || len == 24 || len == 32
                   ? 0
                   : ota_fail(err, -EINVAL, OTA_ERR_KEY, "p11: AES key of %zu", len);
    case OTA_CIPHER_DES:
        *kt = CKK_DES2;
        return len == 8 ? 0 : ota_fail(err, -EINVAL, OTA_ERR_KEY, "p11: DES key of %zu", len);
    case OTA_CIPHER_NONE:
        break;
    }
    return ota_fail(err, -EINVAL, OTA_ERR_KEY, "p11: no cipher");
}

/*
 * The secret-key template we create, unwrap and derive with. *n is the
 * count; the caller may append CKA_VALUE / CKA_VALUE_LEN after it.
 */
struct tmpl {
    CK_ATTRIBUTE a[20];
    CK_ULONG n;
    CK_KEY_TYPE kt;
    CK_ULONG vlen;
};

static void tmpl_add(struct tmpl *t, CK_ATTRIBUTE_TYPE type, void *v, CK_ULONG len)
{
    t->a[t->n].type = type;
    t->a[t->n].pValue = v;
    t->a[t->n].ulValueLen = len;
    t->n++;
}

/* The usage bits of flags; none given means the work set (p11.h). */
static unsigned usage_of(unsigned flags)
{
    unsigned u = flags & P11_U_MASK;
    return u ? u : P11_U_WORK;
}

static const struct {
    unsigned bit;
    CK_ATTRIBUTE_TYPE attr;
} usage_attrs[] = {
    {P11_U_ENCRYPT, CKA_ENCRYPT}, {P11_U_DECRYPT, CKA_DECRYPT}, {P11_U_SIGN, CKA_SIGN},
    {P11_U_VERIFY, CKA_VERIFY},   {P11_U_DERIVE, CKA_DERIVE},   {P11_U_WRAP, CKA_WRAP},
    {P11_U_UNWRAP, CKA_UNWRAP},
};

/*
 * on_token: token object (imported, generated) or session object (derived).
 * extractable: only P11_F_WRAPPABLE keys (PUT KEY under a DEK) leave the
 * token, and then only wrapped: CKA_SENSITIVE stays true for all.
 * usage: P11_U_* bits; each usage attribute is written, false ones too, so
 * no token default can grant more (the K1|K1 companion gets P11_U_ENCRYPT).
 */
static void tmpl_key(struct tmpl *t, CK_KEY_TYPE kt, const char *label, bool on_token,
                     bool extractable, unsigned usage)
{
    t->n = 0;
    t->kt = kt;
    tmpl_add(t, CKA_CLASS, &cls_secret, sizeof(cls_secret));
    tmpl_add(t, CKA_KEY_TYPE, &t->kt, sizeof(t->kt));
    tmpl_add(t, CKA_TOKEN, on_token ? &ck_true : &ck_false, sizeof(CK_BBOOL));
    tmpl_add(t, CKA_PRIVATE, &ck_true, sizeof(CK_BBOOL));
    tmpl_add(t, CKA_SENSITIVE, &ck_true, sizeof(CK_BBOOL));
    tmpl_add(t, CKA_EXTRACTABLE, extractable ? &ck_true : &ck_false, sizeof(CK_BBOOL));
    for (size_t i = 0; i < OTA_ARRAY_SIZE(usage_attrs); i++) {
        tmpl_add(t, usage_attrs[i].attr, usage & usage_attrs[i].bit ? &ck_true : &ck_false,
                 sizeof(CK_BBOOL));
    }
    if (label) {
        tmpl_add(t, CKA_LABEL, (void *)label, (CK_ULONG)strlen(label));
    }
}

/* AES objects need their length when the token cannot infer it (derive, unwrap, generate). */
static void tmpl_value_len(struct tmpl *t, size_t len)
{
    if (t->kt == CKK_AES) {
        t->vlen = (CK_ULONG)len;
        tmpl_add(t, CKA_VALUE_LEN, &t->vlen, sizeof(t->vlen));
    }
}

/* ---- object lookup -------------------------------------------------------------------- */

static int check_label(const char *label, struct ota_err *err)
{
    size_t n = label ? strlen(label) : 0;

    if (n == 0 || n + sizeof(K1_SUFFIX) - 1 > P11_LABEL_MAX) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "p11: label of %zu octets (1..%zu)", n,
                        P11_LABEL_MAX - (sizeof(K1_SUFFIX) - 1));
    }
    return 0;
}

static void k1_label(char dst[P11_LABEL_MAX + 1], const char *label)
{
    snprintf(dst, P11_LABEL_MAX + 1, "%s" K1_SUFFIX, label);
}

/* The secret key labelled label: 0 and *h, -ENOENT, or -EIO (several objects, token error). */
static int find(struct p11 *p, const char *label, CK_OBJECT_HANDLE *h, struct ota_err *err)
{
    CK_ATTRIBUTE q[2] = {
        {CKA_CLASS, &cls_secret, sizeof(cls_secret)},
        {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
    };
    CK_OBJECT_HANDLE hs[2];
    CK_ULONG n = 0;
    CK_RV rv, rv2;

    rv = p->f->C_FindObjectsInit(p->sess, q, 2);
    if (rv != CKR_OK) {
        return rv_fail(err, "C_FindObjectsInit", rv, label);
    }
    rv = p->f->C_FindObjects(p->sess, hs, 2, &n);
    rv2 = p->f->C_FindObjectsFinal(p->sess);
    if (rv != CKR_OK) {
        return rv_fail(err, "C_FindObjects", rv, label);
    }
    if (rv2 != CKR_OK) {
        return rv_fail(err, "C_FindObjectsFinal", rv2, label);
    }
    if (n == 0) {
        return ota_fail(err, -ENOENT, OTA_ERR_KEY, "p11: no key '%s' in token '%s'", label,
                        p->token);
    }
    if (n > 1) {
        return ota_fail(err, -EIO, OTA_ERR_KEY, "p11: label '%s' names several objects", label);
    }
    *h = hs[0];
    return 0;
}

static int must_be_free(struct p11 *p, const char *label, struct ota_err *err)
{
    CK_OBJECT_HANDLE h;
    int rc = find(p, label, &h, NULL);

    if (rc == 0) {
        return ota_fail(err, -EEXIST, OTA_ERR_DUPLICATE, "p11: key '%s' already exists", label);
    }
    if (rc != -ENOENT) {
        return find(p, label, &h, err);
    }
    return 0;
}

static void destroy_handle(struct p11 *p, CK_OBJECT_HANDLE h)
{
    if (h != CK_INVALID_HANDLE) {
        (void)p->f->C_DestroyObject(p->sess, h);
    }
}

/* ---- the ota_key_ext_ops ------------------------------------------------------------------ */

static const struct ota_key_ext_ops p11_ops;

static struct p11 *ctx_p11(void *ctx)
{
    return ctx;
}

static int mech_for(enum ota_cipher c, enum ota_mode mode, CK_MECHANISM_TYPE *m, size_t *bl,
                    struct ota_err *err)
{
    bool ecb = mode == OTA_MODE_ECB;

    switch (c) {
    case OTA_CIPHER_DES: /* a K|K object, see key_type() */
    case OTA_CIPHER_3DES2:
    case OTA_CIPHER_3DES3:
        *m = ecb ? CKM_DES3_ECB : CKM_DES3_CBC;
        *bl = 8;
        return 0;
    case OTA_CIPHER_AES:
        *m = ecb ? CKM_AES_ECB : CKM_AES_CBC;
        *bl = 16;
        return 0;
    default:
        return ota_fail(err, -EOPNOTSUPP, OTA_ERR_KEY, "p11: no %s cipher in the token",
                        ota_cipher_name(c));
    }
}

static int op_cipher(void *ctx, const struct ota_key *k, enum ota_mode mode, bool encrypt,
                     const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out,
                     struct ota_err *err)
{
    struct p11 *p = ctx_p11(ctx);
    uint8_t ivb[16] = {0};
    CK_MECHANISM mech = {0, NULL, 0};
    CK_ULONG olen = (CK_ULONG)len;
    size_t bl = 0;
    CK_RV rv;
    int rc;

    rc = mech_for(k->cipher, mode, &mech.mechanism, &bl, err);
    if (rc < 0) {
        return rc;
    }
    if (len == 0) {
        return 0;
    }
    if (mode == OTA_MODE_CBC) {
        if (iv) {
            memcpy(ivb, iv, bl);
        }
        mech.pParameter = ivb;
        mech.ulParameterLen = (CK_ULONG)bl;
    }
    /* PKCS#11 allows the output to overlap the input exactly (in == out). */
    if (encrypt) {
        rv = p->f->C_EncryptInit(p->sess, &mech, (CK_OBJECT_HANDLE)k->ext_handle);
        if (rv != CKR_OK) {
            return rv_fail(err, "C_EncryptInit", rv, NULL);
        }
        rv = p->f->C_Encrypt(p->sess, (CK_BYTE_PTR)in, (CK_ULONG)len, out, &olen);
        if (rv != CKR_OK) {
            return rv_fail(err, "C_Encrypt", rv, NULL);
        }
    } else {
        rv = p->f->C_DecryptInit(p->sess, &mech, (CK_OBJECT_HANDLE)k->ext_handle);
        if (rv != CKR_OK) {
            return rv_fail(err, "C_DecryptInit", rv, NULL);
        }
        rv = p->f->C_Decrypt(p->sess, (CK_BYTE_PTR)in, (CK_ULONG)len, out, &olen);
        if (rv != CKR_OK) {
            return rv_fail(err, "C_Decrypt", rv, NULL);
        }
    }
    if (olen != (CK_ULONG)len) {
        return ota_fail(err, -EIO, OTA_ERR_CRYPTO, "p11: cipher gave %lu octets for %zu",
                        (unsigned long)olen, len);
    }
    return 0;
}

static int op_cmac(void *ctx, const struct ota_key *k, const uint8_t *in, size_t len,
                   uint8_t out[16], size_t *out_len, struct ota_err *err)
{
    struct p11 *p = ctx_p11(ctx);
    CK_MECHANISM mech = {CKM_AES_CMAC, NULL, 0};
    CK_ULONG olen = 16;
    CK_RV rv;

    if (k->cipher != OTA_CIPHER_AES) {
        if (!p->des3_cmac) {
            return ota_fail(err, -EOPNOTSUPP, OTA_ERR_KEY, "p11: token '%s' has no CKM_DES3_CMAC",
                            p->token);
        }
        mech.mechanism = CKM_DES3_CMAC;
        olen = 8;
    }
    rv = p->f->C_SignInit(p->sess, &mech, (CK_OBJECT_HANDLE)k->ext_handle);
    if (rv != CKR_OK) {
        return rv_fail(err, "C_SignInit", rv, NULL);
    }
    rv = p->f->C_Sign(p->sess, (CK_BYTE_PTR)in, (CK_ULONG)len, out, &olen);
    if (rv != CKR_OK) {
        return rv_fail(err, "C_Sign", rv, "CMAC");
    }
    *out_len = olen;
    return 0;
}

/* One C_DeriveKey by encryption of data under base (see the file comment). */
static int derive_one(struct p11 *p, const struct ota_key *base, enum ota_mode mode,
                      const uint8_t *data, size_t len, struct tmpl *t, CK_OBJECT_HANDLE *h,
                      struct ota_err *err)
{
    CK_KEY_DERIVATION_STRING_DATA sd;
    CK_DES_CBC_ENCRYPT_DATA_PARAMS dp;
    CK_AES_CBC_ENCRYPT_DATA_PARAMS ap;
    CK_MECHANISM mech = {0, NULL, 0};
    bool aes = base->cipher == OTA_CIPHER_AES;
    CK_RV rv;

    if (mode == OTA_MODE_ECB) {
        sd.pData = (CK_BYTE_PTR)data;
        sd.ulLen = (CK_ULONG)len;
        mech.mechanism = aes ? CKM_AES_ECB_ENCRYPT_DATA : CKM_DES3_ECB_ENCRYPT_DATA;
        mech.pParameter = &sd;
        mech.ulParameterLen = sizeof(sd);
    } else if (aes) {
        memset(&ap, 0, sizeof(ap));
        ap.pData = (CK_BYTE_PTR)data;
        ap.length = (CK_ULONG)len;
        mech.mechanism = CKM_AES_CBC_ENCRYPT_DATA;
        mech.pParameter = &ap;
        mech.ulParameterLen = sizeof(ap);
    } else {
        memset(&dp, 0, sizeof(dp));
        dp.pData = (CK_BYTE_PTR)data;
        dp.length = (CK_ULONG)len;
        mech.mechanism = CKM_DES3_CBC_ENCRYPT_DATA;
        mech.pParameter = &dp;
        mech.ulParameterLen = sizeof(dp);
    }
    if (aes && !p->aes_derive) {
        return ota_fail(err, -EOPNOTSUPP, OTA_ERR_KEY,
                        "p11: token '%s' has no CKM_AES_*_ENCRYPT_DATA derivation", p->token);
    }
    rv = p->f->C_DeriveKey(p->sess, &mech, (CK_OBJECT_HANDLE)base->ext_handle, t->a, t->n, h);
    if (rv != CKR_OK) {
        return rv_fail(err, "C_DeriveKey", rv, NULL);
    }
    return 0;
}

/*
 * The K1|K1 companion of a 16-octet 3DES key whose first block is the
 * encryption of b1 under base: ECB_ENCRYPT_DATA over b1|b1.
 */
static int derive_k1(struct p11 *p, const struct ota_key *base, const uint8_t b1[8],
                     const char *label, bool on_token, CK_OBJECT_HANDLE *h, struct ota_err *err)
{
    uint8_t dd[16];
    struct tmpl t;

    memcpy(dd, b1, 8);
    memcpy(dd + 8, b1, 8);
    tmpl_key(&t, CKK_DES2, label, on_token, false, P11_U_ENCRYPT);
    return derive_one(p, base, OTA_MODE_ECB, dd, sizeof(dd), &t, h, err);
}

/* The P11_U_* usage of base's object, read from the token. */
static int base_usage(struct p11 *p, const struct ota_key *base, unsigned *out, struct ota_err *err)
{
    CK_BBOOL v[OTA_ARRAY_SIZE(usage_attrs)];
    CK_ATTRIBUTE q[OTA_ARRAY_SIZE(usage_attrs)];
    unsigned u = 0;
    CK_RV rv;

    for (size_t i = 0; i < OTA_ARRAY_SIZE(usage_attrs); i++) {
        v[i] = CK_FALSE;
        q[i].type = usage_attrs[i].attr;
        q[i].pValue = &v[i];
        q[i].ulValueLen = sizeof(v[i]);
    }
    rv = p->f->C_GetAttributeValue(p->sess, (CK_OBJECT_HANDLE)base->ext_handle, q,
                                   (CK_ULONG)OTA_ARRAY_SIZE(q));
    if (rv != CKR_OK) {
        return rv_fail(err, "C_GetAttributeValue", rv, "usage");
    }
    for (size_t i = 0; i < OTA_ARRAY_SIZE(usage_attrs); i++) {
        if (v[i] == CK_TRUE) {
            u |= usage_attrs[i].bit;
        }
    }
    *out = u;
    return 0;
}

static int op_derive(void *ctx, const struct ota_key *base, enum ota_mode mode, const uint8_t *data,
                     size_t len, enum ota_cipher out_cipher, struct ota_key *out,
                     struct ota_err *err)
{
    struct p11 *p = ctx_p11(ctx);
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, h1 = CK_INVALID_HANDLE;
    CK_KEY_TYPE kt = CKK_DES2;
    unsigned usage = 0;
    struct tmpl t;
    int rc;

    rc = key_type(out_cipher, len, &kt, err);
    if (rc == 0) {
        rc = base_usage(p, base, &usage, err);
    }
    if (rc < 0) {
        return rc;
    }
    /*
     * A derived key (SCP02 session key, EMV/VISA2 card key) may do what its
     * base may: a session DEK wraps and encrypts but never decrypts, like the
     * static DEK. DERIVE stays: diversified card keys derive session keys,
     * and *_ENCRYPT_DATA derivation yields only what ENCRYPT already does.
     */
    tmpl_key(&t, kt, NULL, false, false, usage & ~P11_U_UNWRAP);
    tmpl_value_len(&t, len);
    rc = derive_one(p, base, mode, data, len, &t, &h, err);
    if (rc < 0) {
        return rc;
    }
    /* Retail MAC / ICV need K1 alone; only a DES-block base gives K1 as one block. */
    if (out_cipher == OTA_CIPHER_3DES2 && base->cipher != OTA_CIPHER_AES) {
        rc = derive_k1(p, base, data, NULL, false, &h1, err);
        if (rc < 0) {
            destroy_handle(p, h);
            return rc;
        }
    }
    memset(out, 0, sizeof(*out));
    out->cipher = out_cipher;
    out->len = (uint8_t)len;
    out->ext = &p11_ops;
    out->ext_ctx = p;
    out->ext_handle = h;
    out->ext_k1 = h1 == CK_INVALID_HANDLE ? 0 : h1;
    out->owned = OTA_KEY_OWNED;
    return 0;
}

static int op_wrap(void *ctx, const struct ota_key *kek, enum ota_mode mode,
                   const struct ota_key *key, uint8_t *out, size_t cap, struct ota_err *err)
{
    struct p11 *p = ctx_p11(ctx);
    uint8_t ivb[16] = {0};
    CK_MECHANISM mech = {0, NULL, 0};
    CK_ULONG olen = (CK_ULONG)cap;
    size_t bl = 0;
    CK_RV rv;
    int rc;

    rc = mech_for(kek->cipher, mode, &mech.mechanism, &bl, err);
    if (rc < 0) {
        return rc;
    }
    if (key->len % bl) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY, "p11: %u-octet key is not a multiple of %zu",
                        key->len, bl);
    }
    if (mode == OTA_MODE_CBC) {
        mech.pParameter = ivb;
        mech.ulParameterLen = (CK_ULONG)bl;
    }
    rv = p->f->C_WrapKey(p->sess, &mech, (CK_OBJECT_HANDLE)kek->ext_handle,
                         (CK_OBJECT_HANDLE)key->ext_handle, out, &olen);
    if (rv != CKR_OK) {
        return rv_fail(err, "C_WrapKey", rv,
                       mech.mechanism == CKM_DES3_ECB  ? "CKM_DES3_ECB"
                       : mech.mechanism == CKM_AES_CBC ? "CKM_AES_CBC"
                       : mech.mechanism == CKM_AES_ECB ? "CKM_AES_ECB"
                                                       : "CKM_DES3_CBC");
    }
    if (olen != key->len) {
        return ota_fail(err, -EIO, OTA_ERR_CRYPTO, "p11: wrap gave %lu octets for %u",
                        (unsigned long)olen, key->len);
    }
    return (int)olen;
}

static void op_release(void *ctx, const struct ota_key *k)
{
    struct p11 *p = ctx_p11(ctx);

    if (!p || !p->have_sess) {
        return;
    }
    destroy_handle(p, (CK_OBJECT_HANDLE)k->ext_handle);
    if (k->ext_k1) {
        destroy_handle(p, (CK_OBJECT_HANDLE)k->ext_k1);
    }
}

static const struct ota_key_ext_ops p11_ops = {
    .name = "pkcs11",
    .cipher = op_cipher,
    .cmac = op_cmac,
    .derive = op_derive,
    .wrap = op_wrap,
    .release = op_release,
};

/* ---- open / close ----------------------------------------------------------------------- */

static void copy_label(char dst[33], const CK_UTF8CHAR src[32])
{
    size_t n = 32;

    memcpy(dst, src, 32);
    while (n > 0 && dst[n - 1] == ' ') {
        n--;
    }
    dst[n] = '\0';
}

static int check_mechs(struct p11 *p, struct ota_err *err)
{
    CK_MECHANISM_TYPE *list = NULL;
    CK_ULONG n = 0;
    CK_RV rv;
    int rc = 0;

    rv = p->f->C_GetMechanismList(p->slot, NULL, &n);
    if (rv != CKR_OK) {
        return rv_fail(err, "C_GetMechanismList", rv, NULL);
    }
    list = calloc(n ? n : 1, sizeof(*list));
    if (!list) {
        return ota_fail(err, -ENOMEM, OTA_ERR_CRYPTO, "p11: out of memory");
    }
    rv = p->f->C_GetMechanismList(p->slot, list, &n);
    if (rv != CKR_OK) {
        rc = rv_fail(err, "C_GetMechanismList", rv, NULL);
        goto out;
    }
    for (size_t i = 0; i < OTA_ARRAY_SIZE(need_mechs); i++) {
        bool found = false;
        for (CK_ULONG j = 0; j < n && !found; j++) {
            found = list[j] == need_mechs[i].m;
        }
        if (!found) {
            rc = ota_fail(err, -EOPNOTSUPP, OTA_ERR_CRYPTO,
                          "p11: token '%s' lacks %s, which the HSM backend needs", p->token,
                          need_mechs[i].name);
            goto out;
        }
    }
    for (CK_ULONG j = 0; j < n; j++) {
        CK_MECHANISM_INFO mi;
        if (p->f->C_GetMechanismInfo(p->slot, list[j], &mi) != CKR_OK) {
            continue;
        }
        switch (list[j]) {
        case CKM_DES3_CMAC:
            p->des3_cmac = mi.flags & CKF_SIGN;
            break;
        case CKM_AES_KEY_WRAP:
            p->aes_kw = mi.flags & CKF_UNWRAP;
            break;
        case CKM_AES_CBC:
            p->aes_cbc_wrap = mi.flags & CKF_WRAP;
            break;
        case CKM_DES3_ECB:
            p->des3_ecb_wrap = mi.flags & CKF_WRAP;
            p->des3_ecb_unwrap = mi.flags & CKF_UNWRAP;
            break;
        case CKM_AES_ECB:
            p->aes_ecb_wrap = mi.flags & CKF_WRAP;
            p->aes_ecb_unwrap = mi.flags & CKF_UNWRAP;
            break;
        case CKM_AES_CBC_ENCRYPT_DATA:
            p->aes_derive = true;
            break;
        default:
            break;
        }
    }
out:
    free(list);
    return rc;
}

static int find_slot(struct p11 *p, const char *label, struct ota_err *err)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    CK_RV rv;
    int rc;

    rv = p->f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK) {
        return rv_fail(err, "C_GetSlotList", rv, NULL);
    }
    slots = calloc(n ? n : 1, sizeof(*slots));
    if (!slots) {
        return ota_fail(err, -ENOMEM, OTA_ERR_CRYPTO, "p11: out of memory");
    }
    rv = p->f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK) {
        rc = rv_fail(err, "C_GetSlotList", rv, NULL);
        goto out;
    }
    rc = ota_fail(err, -ENOENT, OTA_ERR_KEY, "p11: no token labelled '%s'", label);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        char tl[33];
        if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK) {
            continue;
        }
        copy_label(tl, ti.label);
        if (strcmp(tl, label) == 0 && (ti.flags & CKF_TOKEN_INITIALIZED)) {
            p->slot = slots[i];
            ota_err_clear(err);
            rc = 0;
            break;
        }
    }
out:
    free(slots);
    return rc;
}

int p11_open(const struct p11_conf *c, struct p11 **out, struct ota_err *err)
{
    CK_C_GetFunctionList gfl;
    CK_C_INITIALIZE_ARGS ia;
    struct p11 *p;
    CK_RV rv;
    int rc;

    if (!c || !c->module || !c->token_label || !c->pin || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "p11: open needs module, token and PIN");
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        return ota_fail(err, -ENOMEM, OTA_ERR_CRYPTO, "p11: out of memory");
    }
    snprintf(p->token, sizeof(p->token), "%s", c->token_label);
    p->dl = dlopen(c->module, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        free(p);
        return ota_fail(err, -ENOENT, OTA_ERR_CRYPTO, "p11: cannot load module %s", c->module);
    }
    void *sym = dlsym(p->dl, "C_GetFunctionList");
    memcpy(&gfl, &sym, sizeof(gfl)); /* ISO C has no object-to-function pointer cast */
    if (!sym || (rv = gfl(&p->f)) != CKR_OK || !p->f) {
        dlclose(p->dl);
        free(p);
        return ota_fail(err, -ENOENT, OTA_ERR_CRYPTO, "p11: %s is not a PKCS#11 module", c->module);
    }
    /* OS locking: the gateway may open one struct p11 per thread. */
    memset(&ia, 0, sizeof(ia));
    ia.flags = CKF_OS_LOCKING_OK;
    rv = p->f->C_Initialize(&ia);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        rc = rv_fail(err, "C_Initialize", rv, c->module);
        dlclose(p->dl);
        free(p);
        return rc;
    }
    init_refs++;
    rc = find_slot(p, c->token_label, err);
    if (rc == 0) {
        rc = check_mechs(p, err);
    }
    if (rc == 0) {
        rv =
            p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->sess);
        rc = rv == CKR_OK ? 0 : rv_fail(err, "C_OpenSession", rv, c->token_label);
        p->have_sess = rc == 0;
    }
    if (rc == 0) {
        /* Login state is per application: a second struct p11 finds it logged in. */
        rv = p->f->C_Login(p->sess, CKU_USER, (CK_UTF8CHAR_PTR)c->pin, (CK_ULONG)strlen(c->pin));
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            rc = rv_fail(err, "C_Login", rv, c->token_label);
        }
    }
    if (rc < 0) {
        p11_close(p);
        return rc;
    }
    *out = p;
    return 0;
}

void p11_close(struct p11 *p)
{
    if (!p) {
        return;
    }
    /* Closing the last session logs the application out (PKCS#11 5.6); an explicit
     * C_Logout would also log out other struct p11 on the same token. */
    if (p->have_sess) {
        (void)p->f->C_CloseSession(p->sess);
        p->have_sess = false;
    }
    if (init_refs > 0 && --init_refs == 0) {
        (void)p->f->C_Finalize(NULL);
    }
    dlclose(p->dl);
    OPENSSL_cleanse(p, sizeof(*p));
    free(p);
}

/* ---- key management -------------------------------------------------------------------------- */

/* The KCV (ota_crypto_kcv semantics) of a token object, computed in the token. */
static int token_kcv(struct p11 *p, enum ota_cipher c, size_t len, CK_OBJECT_HANDLE h,
                     uint8_t out[3], struct ota_err *err)
{
    struct ota_key k;
    int rc;

    memset(&k, 0, sizeof(k));
    k.cipher = c;
    k.len = (uint8_t)len;
    k.ext = &p11_ops;
    k.ext_ctx = p;
    k.ext_handle = h;
    rc = ota_crypto_kcv(NULL, &k, out, err);
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

int p11_import_clear_ex(struct p11 *p, const struct ota_key *clear, const char *label,
                        unsigned flags, struct ota_err *err)
{
    char l1[P11_LABEL_MAX + 1];
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, h1 = CK_INVALID_HANDLE;
    uint8_t k1k1[16];
    struct tmpl t;
    CK_KEY_TYPE kt = CKK_DES2;
    CK_RV rv;
    int rc;

    if (!p || !clear || clear->ext) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "p11: import_clear needs a raw key");
    }
    rc = check_label(label, err);
    if (rc == 0) {
        rc = key_type(clear->cipher, clear->len, &kt, err);
    }
    if (rc == 0) {
        rc = must_be_free(p, label, err);
    }
    if (rc < 0) {
        return rc;
    }
    tmpl_key(&t, kt, label, true, flags & P11_F_WRAPPABLE, usage_of(flags));
    CK_BYTE des_id = 8;
    if (clear->cipher == OTA_CIPHER_DES) {
        memcpy(k1k1, clear->bytes, 8);
        memcpy(k1k1 + 8, clear->bytes, 8);
        tmpl_add(&t, CKA_VALUE, k1k1, sizeof(k1k1));
        tmpl_add(&t, CKA_ID, &des_id, 1);
    } else {
        tmpl_add(&t, CKA_VALUE, (void *)clear->bytes, clear->len);
    }
    rv = p->f->C_CreateObject(p->sess, t.a, t.n, &h);
    OPENSSL_cleanse(k1k1, sizeof(k1k1));
    if (rv != CKR_OK) {
        return rv_fail(err, "C_CreateObject", rv, label);
    }
    if (clear->cipher == OTA_CIPHER_3DES2 && (flags & P11_F_K1)) {
        memcpy(k1k1, clear->bytes, 8);
        memcpy(k1k1 + 8, clear->bytes, 8);
        k1_label(l1, label);
        tmpl_key(&t, CKK_DES2, l1, true, false, P11_U_ENCRYPT);
        tmpl_add(&t, CKA_VALUE, k1k1, sizeof(k1k1));
        rv = p->f->C_CreateObject(p->sess, t.a, t.n, &h1);
        OPENSSL_cleanse(k1k1, sizeof(k1k1));
        if (rv != CKR_OK) {
            destroy_handle(p, h);
            return rv_fail(err, "C_CreateObject", rv, l1);
        }
    }
    return 0;
}

int p11_import_clear(struct p11 *p, const struct ota_key *clear, const char *label,
                     struct ota_err *err)
{
    return p11_import_clear_ex(p, clear, label, 0, err);
}

/* Unwrap wrapped with mech under tk into a token object of t; *h on success. */
static int unwrap(struct p11 *p, CK_MECHANISM *mech, CK_OBJECT_HANDLE tk, const uint8_t *wrapped,
                  size_t len, struct tmpl *t, CK_OBJECT_HANDLE *h, const char *label,
                  struct ota_err *err)
{
    CK_RV rv =
        p->f->C_UnwrapKey(p->sess, mech, tk, (CK_BYTE_PTR)wrapped, (CK_ULONG)len, t->a, t->n, h);

    return rv == CKR_OK ? 0 : rv_fail(err, "C_UnwrapKey", rv, label);
}

/* Check the KCV in the token; on mismatch (or error) destroy h and h1. */
static int kcv_or_destroy(struct p11 *p, enum ota_cipher cipher, size_t klen, CK_OBJECT_HANDLE h,
                          CK_OBJECT_HANDLE h1, const uint8_t kcv[3], const char *label,
                          struct ota_err *err)
{
    uint8_t got[3];
    int rc = token_kcv(p, cipher, klen, h, got, err);

    if (rc == 0 && CRYPTO_memcmp(got, kcv, 3) != 0) {
        rc = ota_fail(err, -EINVAL, OTA_ERR_BAD_CC,
                      "p11: key '%s' unwrapped with a wrong check value: refused", label);
    }
    if (rc < 0) {
        destroy_handle(p, h1);
        destroy_handle(p, h);
    }
    return rc;
}

static int import_prep(struct p11 *p, const char *transport_label, enum ota_cipher cipher,
                       size_t klen, const uint8_t *wrapped, const uint8_t *kcv, const char *label,
                       unsigned flags, CK_OBJECT_HANDLE *tk, CK_KEY_TYPE *kt, struct ota_err *err)
{
    int rc;

    if (!p || !transport_label || !wrapped || !kcv) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "p11: import_wrapped with a NULL argument");
    }
    if (!(usage_of(flags) & P11_U_ENCRYPT)) {
        /* The KCV check encrypts with the new key: without ENCRYPT it cannot be checked. */
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "p11: a wrapped import needs P11_U_ENCRYPT (KCV check)");
    }
    if (cipher == OTA_CIPHER_DES) {
        /* The K|K form cannot be built inside the token from a wrapped single key. */
        return ota_fail(err, -EOPNOTSUPP, OTA_ERR_KEY,
                        "p11: single DES keys are imported in clear only (clear_import)");
    }
    rc = check_label(label, err);
    if (rc == 0) {
        rc = key_type(cipher, klen, kt, err);
    }
    if (rc == 0) {
        rc = must_be_free(p, label, err);
    }
    if (rc == 0) {
        rc = find(p, transport_label, tk, err);
    }
    return rc;
}

int p11_import_wrapped(struct p11 *p, const char *transport_label, enum ota_cipher cipher,
                       const uint8_t *wrapped, size_t len, const uint8_t kcv[3], const char *label,
                       struct ota_err *err)
{
    return p11_import_wrapped_ex(p, transport_label, cipher, wrapped, len, kcv, label, 0, err);
}

int p11_import_wrapped_ex(struct p11 *p, const char *transport_label, enum ota_cipher cipher,
                          const uint8_t *wrapped, size_t len, const uint8_t kcv[3],
                          const char *label, unsigned flags, struct ota_err *err)
{
    char l1[P11_LABEL_MAX + 1];
    CK_OBJECT_HANDLE tk, h = CK_INVALID_HANDLE, h1 = CK_INVALID_HANDLE;
    CK_MECHANISM mech = {CKM_DES3_ECB, NULL, 0};
    struct ota_key tkey;
    uint8_t w1w1[16];
    struct tmpl t;
    CK_KEY_TYPE kt = CKK_DES2;
    int rc;

    rc = import_prep(p, transport_label, cipher, len, wrapped, kcv, label, flags, &tk, &kt, err);
    if (rc < 0) {
        return rc;
    }
    rc = p11_key(p, transport_label, &tkey, err);
    if (rc < 0) {
        return rc;
    }
    if (tkey.cipher == OTA_CIPHER_AES) {
        mech.mechanism = CKM_AES_ECB;
    }
    if (tkey.cipher == OTA_CIPHER_AES ? !p->aes_ecb_unwrap : !p->des3_ecb_unwrap) {
        return ota_fail(err, -EOPNOTSUPP, OTA_ERR_CRYPTO,
                        "p11: token '%s' cannot unwrap with %s (SoftHSM2 unwraps only with "
                        "CKM_AES_KEY_WRAP: use p11_import_wrapped_kw)",
                        p->token, tkey.cipher == OTA_CIPHER_AES ? "CKM_AES_ECB" : "CKM_DES3_ECB");
    }
    /* No CKA_VALUE_LEN: PKCS#11 forbids it on C_UnwrapKey (the token takes the length). */
    tmpl_key(&t, kt, label, true, flags & P11_F_WRAPPABLE, usage_of(flags));
    rc = unwrap(p, &mech, tk, wrapped, len, &t, &h, label, err);
    if (rc < 0) {
        return rc;
    }
    /* ECB wraps blocks independently: W1|W1 unwraps to the K1|K1 companion. */
    if (cipher == OTA_CIPHER_3DES2 && ota_cipher_block_len(tkey.cipher) == 8 &&
        (flags & P11_F_K1)) {
        memcpy(w1w1, wrapped, 8);
        memcpy(w1w1 + 8, wrapped, 8);
        k1_label(l1, label);
        tmpl_key(&t, CKK_DES2, l1, true, false, P11_U_ENCRYPT);
        rc = unwrap(p, &mech, tk, w1w1, sizeof(w1w1), &t, &h1, l1, err);
        if (rc < 0) {
            destroy_handle(p, h);
            return rc;
        }
    }
    return kcv_or_destroy(p, cipher, len, h, h1, kcv, label, err);
}

int p11_import_wrapped_kw(struct p11 *p, const char *transport_label, enum ota_cipher cipher,
                          const uint8_t *wrapped, size_t len, const uint8_t kcv[3],
                          const char *label, struct ota_err *err)
{
    return p11_import_wrapped_kw_ex(p, transport_label, cipher, wrapped, len, kcv, label, 0, err);
}

int p11_import_wrapped_kw_ex(struct p11 *p, const char *transport_label, enum ota_cipher cipher,
                             const uint8_t *wrapped, size_t len, const uint8_t kcv[3],
                             const char *label, unsigned flags, struct ota_err *err)
{
    CK_OBJECT_HANDLE tk, h = CK_INVALID_HANDLE;
    CK_MECHANISM mech = {CKM_AES_KEY_WRAP, NULL, 0};
    struct tmpl t;
    CK_KEY_TYPE kt = CKK_DES2;
    int rc;

    if (len < 24 || len % 8) {
        return ota_fail(err, -EINVAL, OTA_ERR_LENGTH,
                        "p11: RFC 3394 wrapped key of %zu octets (24.. and a multiple of 8)", len);
    }
    rc =
        import_prep(p, transport_label, cipher, len - 8, wrapped, kcv, label, flags, &tk, &kt, err);
    if (rc < 0) {
        return rc;
    }
    if (!p->aes_kw) {
        return ota_fail(err, -EOPNOTSUPP, OTA_ERR_CRYPTO, "p11: token '%s' has no CKM_AES_KEY_WRAP",
                        p->token);
    }
    /*
     * No CKA_VALUE_LEN: SoftHSM2 answers CKR_ATTRIBUTE_READ_ONLY to it on
     * C_UnwrapKey, and then leaves it 0 on the object; the length goes into
     * CKA_ID instead, where p11_key() finds it.
     */
    tmpl_key(&t, kt, label, true, flags & P11_F_WRAPPABLE, usage_of(flags));
    CK_BYTE idlen = (CK_BYTE)(len - 8);
    if (kt == CKK_AES) {
        tmpl_add(&t, CKA_ID, &idlen, 1);
    }
    rc = unwrap(p, &mech, tk, wrapped, len, &t, &h, label, err);
    if (rc < 0) {
        return rc;
    }
    /* No K1|K1 companion can be made from an RFC 3394 blob: such a 3DES key serves
     * CBC/ECB, CBC-MAC, KCV and SCP02 derivation, not the retail MAC itself. */
    return kcv_or_destroy(p, cipher, len - 8, h, CK_INVALID_HANDLE, kcv, label, err);
}

int p11_generate(struct p11 *p, enum ota_cipher cipher, size_t len, const char *label,
                 struct ota_err *err)
{
    return p11_generate_ex(p, cipher, len, label, 0, err);
}

int p11_generate_ex(struct p11 *p, enum ota_cipher cipher, size_t len, const char *label,
                    unsigned flags, struct ota_err *err)
{
    char l1[P11_LABEL_MAX + 1];
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, h1 = CK_INVALID_HANDLE, tmp = CK_INVALID_HANDLE;
    uint8_t r[16];
    struct ota_key base;
    struct tmpl t;
    CK_KEY_TYPE kt = CKK_DES2;
    CK_RV rv;
    int rc;

    if (!p) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "p11: generate without a token");
    }
    if (cipher == OTA_CIPHER_DES) {
        return ota_fail(err, -EOPNOTSUPP, OTA_ERR_KEY,
                        "p11: single DES keys are not generated (a weak key type for new keys)");
    }
    rc = check_label(label, err);
    if (rc == 0) {
        rc = key_type(cipher, len, &kt, err);
    }
    if (rc == 0) {
        rc = must_be_free(p, label, err);
    }
    if (rc < 0) {
        return rc;
    }
    if (cipher != OTA_CIPHER_3DES2) {
        mech.mechanism = cipher == OTA_CIPHER_AES ? CKM_AES_KEY_GEN : CKM_DES3_KEY_GEN;
        tmpl_key(&t, kt, label, true, false, usage_of(flags));
        tmpl_value_len(&t, len);
        rv = p->f->C_GenerateKey(p->sess, &mech, t.a, t.n, &h);
        return rv == CKR_OK ? 0 : rv_fail(err, "C_GenerateKey", rv, label);
    }
    /*
     * A 16-octet 3DES key needs its K1|K1 companion, which no token derives
     * from a generated key; so the key is derived instead: ECB under a
     * session-only generated key of random data R, and the companion from
     * R1|R1. Neither value ever leaves the token.
     */
    mech.mechanism = CKM_DES2_KEY_GEN;
    tmpl_key(&t, CKK_DES2, NULL, false, false, P11_U_DERIVE); /* only derives the two below */
    rv = p->f->C_GenerateKey(p->sess, &mech, t.a, t.n, &tmp);
    if (rv != CKR_OK) {
        return rv_fail(err, "C_GenerateKey", rv, "temporary DES2");
    }
    rv = p->f->C_GenerateRandom(p->sess, r, sizeof(r));
    if (rv != CKR_OK) {
        rc = rv_fail(err, "C_GenerateRandom", rv, NULL);
        goto out;
    }
    memset(&base, 0, sizeof(base));
    base.cipher = OTA_CIPHER_3DES2;
    base.len = 16;
    base.ext_handle = tmp;
    tmpl_key(&t, CKK_DES2, label, true, false, usage_of(flags));
    rc = derive_one(p, &base, OTA_MODE_ECB, r, sizeof(r), &t, &h, err);
    if (rc < 0) {
        goto out;
    }
    if (flags & P11_F_K1) {
        k1_label(l1, label);
        rc = derive_k1(p, &base, r, l1, true, &h1, err);
        if (rc < 0) {
            destroy_handle(p, h);
        }
    }
out:
    destroy_handle(p, tmp);
    OPENSSL_cleanse(r, sizeof(r));
    return rc;
}

int p11_key(struct p11 *p, const char *label, struct ota_key *out, struct ota_err *err)
{
    char l1[P11_LABEL_MAX + 1];
    CK_OBJECT_HANDLE h, h1 = 0;
    CK_KEY_TYPE kt = 0;
    CK_ULONG vlen = 0;
    CK_BYTE id[8] = {0};
    CK_ATTRIBUTE q[3] = {
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
        {CKA_ID, id, sizeof(id)},
    };
    enum ota_cipher c;
    size_t len;
    CK_RV rv;
    int rc;

    if (!p || !out) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "p11: key with a NULL argument");
    }
    rc = check_label(label, err);
    if (rc == 0) {
        rc = find(p, label, &h, err);
    }
    if (rc < 0) {
        return rc;
    }
    rv = p->f->C_GetAttributeValue(p->sess, h, q, 3);
    /* DES objects may lack CKA_VALUE_LEN: the type alone gives the length. */
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
        return rv_fail(err, "C_GetAttributeValue", rv, label);
    }
    switch (kt) {
    case CKK_DES2:
        c = OTA_CIPHER_3DES2;
        len = 16;
        if (q[2].ulValueLen == 1 && id[0] == 8) {
            c = OTA_CIPHER_DES; /* K|K, see key_type() */
            len = 8;
        }
        break;
    case CKK_DES3:
        c = OTA_CIPHER_3DES3;
        len = 24;
        break;
    case CKK_AES:
        c = OTA_CIPHER_AES;
        len = vlen;
        /* An AES key unwrapped by SoftHSM2 has CKA_VALUE_LEN 0: its length is in CKA_ID. */
        if (len == 0 && q[2].ulValueLen == 1) {
            len = id[0];
        }
        break;
    default:
        return ota_fail(err, -EOPNOTSUPP, OTA_ERR_KEY, "p11: key '%s' has key type 0x%lx", label,
                        (unsigned long)kt);
    }
    if (c == OTA_CIPHER_AES && len != 16 && len != 24 && len != 32) {
        return ota_fail(err, -EIO, OTA_ERR_KEY, "p11: AES key '%s' of %zu octets", label, len);
    }
    if (c == OTA_CIPHER_3DES2) {
        k1_label(l1, label);
        if (find(p, l1, &h1, NULL) < 0) {
            h1 = 0;
        }
    }
    if (c == OTA_CIPHER_DES) {
        h1 = h; /* the object is K|K already: single DES under K1 is itself */
    }
    memset(out, 0, sizeof(*out));
    out->cipher = c;
    out->len = (uint8_t)len;
    out->ext = &p11_ops;
    out->ext_ctx = p;
    out->ext_handle = h;
    out->ext_k1 = h1;
    out->owned = 0; /* borrowed: the token object outlives every user */
    return 0;
}

int p11_destroy(struct p11 *p, const char *label, struct ota_err *err)
{
    char l1[P11_LABEL_MAX + 1];
    CK_OBJECT_HANDLE h, h1;
    CK_RV rv;
    int rc;

    if (!p) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "p11: destroy without a token");
    }
    rc = check_label(label, err);
    if (rc == 0) {
        rc = find(p, label, &h, err);
    }
    if (rc < 0) {
        return rc;
    }
    rv = p->f->C_DestroyObject(p->sess, h);
    if (rv != CKR_OK) {
        return rv_fail(err, "C_DestroyObject", rv, label);
    }
    k1_label(l1, label);
    if (find(p, l1, &h1, NULL) == 0) {
        destroy_handle(p, h1);
    }
    return 0;
}

int p11_attr_value_rv(struct p11 *p, const struct ota_key *k, unsigned long *rv_out)
{
    uint8_t buf[OTA_KEY_MAX];
    CK_ATTRIBUTE q = {CKA_VALUE, buf, sizeof(buf)};

    if (!p || !k || !k->ext || !rv_out) {
        return -EINVAL;
    }
    *rv_out = p->f->C_GetAttributeValue(p->sess, (CK_OBJECT_HANDLE)k->ext_handle, &q, 1);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}
