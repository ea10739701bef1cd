/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CMPP 2.0 / 3.0 PDUs on the wire: framing of a byte stream, encode and decode
 * of CONNECT, TERMINATE, SUBMIT, DELIVER (with its status report) and
 * ACTIVE_TEST and their responses, the CONNECT authenticators, and the name
 * tables of Command_Id / Status / Result / Stat.
 *
 * Clauses of ../shared/reference/cmpp.md: §1 header (Total_Length counts the
 * header), §2 Command_Id, §3 CONNECT (27-octet body; Status 1 octet in 2.0, 4
 * in 3.0), §4 SUBMIT (body 126 + 21N + L in 2.0, 151 + 32N + L in 3.0) and
 * SUBMIT_RESP, §5 DELIVER (73 + L / 97 + L) and its 60 / 71-octet report, §6
 * Result 8 flow control, §7 Msg_Fmt, §8.1 0x00-padded Octet Strings.
 *
 * Decoding is strict on structure: Total_Length must equal both the octets
 * given and the size the fields imply, so a lying length never shifts a field.
 * The same field checks run before encode, so decode(encode(x)) == x.
 */
#include "smpp/cmpp.h"

#include <assert.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* Fixed body sizes [ref §3-§5]; SUBMIT and DELIVER add N recipients and L. */
#define CONNECT_BODY 27
#define SUBMIT20_FIXED 126
#define SUBMIT30_FIXED 151
#define DELIVER20_FIXED 73
#define DELIVER30_FIXED 97
#define ACTIVE_TEST_RESP_BODY 1
#define CONNECT_PAD_ZEROS 9 /* AuthenticatorSource: 9 x 0x00 */
#define TIMESTAMP_DIGITS 10 /* MMDDHHMMSS */

/* ---- names ----------------------------------------------------------------- */

const char *cmpp_version_name(enum cmpp_version ver)
{
    switch (ver) {
    case CMPP_V20:
        return "2.0";
    case CMPP_V30:
        return "3.0";
    }
    return "unknown";
}

static const struct {
    uint32_t id;
    const char *name;
} cmd_names[] = {
    {CMPP_CONNECT, "connect"},
    {CMPP_TERMINATE, "terminate"},
    {CMPP_SUBMIT, "submit"},
    {CMPP_DELIVER, "deliver"},
    {CMPP_QUERY, "query"},
    {CMPP_CANCEL, "cancel"},
    {CMPP_ACTIVE_TEST, "active_test"},
    {CMPP_FWD, "fwd"},
    {CMPP_CONNECT_RESP, "connect_resp"},
    {CMPP_TERMINATE_RESP, "terminate_resp"},
    {CMPP_SUBMIT_RESP, "submit_resp"},
    {CMPP_DELIVER_RESP, "deliver_resp"},
    {CMPP_QUERY_RESP, "query_resp"},
    {CMPP_CANCEL_RESP, "cancel_resp"},
    {CMPP_ACTIVE_TEST_RESP, "active_test_resp"},
    {CMPP_FWD_RESP, "fwd_resp"},
};

const char *cmpp_cmd_name(uint32_t cmd_id)
{
    for (size_t i = 0; i < OTA_ARRAY_SIZE(cmd_names); i++) {
        if (cmd_names[i].id == cmd_id) {
            return cmd_names[i].name;
        }
    }
    return "unknown";
}

static const char *const conn_status_names[] = {
    [CMPP_CONN_OK] = "ok",
    [CMPP_CONN_BAD_STRUCTURE] = "bad-structure",
    [CMPP_CONN_BAD_SOURCE] = "illegal-source-addr",
    [CMPP_CONN_AUTH_FAILED] = "auth-failed",
    [CMPP_CONN_VERSION_TOO_HIGH] = "version-too-high",
};

const char *cmpp_connect_status_name(uint32_t status)
{
    if (status < OTA_ARRAY_SIZE(conn_status_names)) {
        return conn_status_names[status];
    }
    return "other-error";
}

static const char *const result_names[] = {
    [CMPP_RES_OK] = "ok",
    [CMPP_RES_BAD_STRUCTURE] = "bad-structure",
    [CMPP_RES_BAD_CMD] = "bad-command-id",
    [CMPP_RES_DUP_SEQ] = "duplicate-sequence-id",
    [CMPP_RES_BAD_MSG_LEN] = "bad-msg-length",
    [CMPP_RES_BAD_FEE_CODE] = "bad-fee-code",
    [CMPP_RES_MSG_TOO_LONG] = "msg-too-long",
    [CMPP_RES_BAD_SERVICE_ID] = "bad-service-id",
    [CMPP_RES_FLOW_CONTROL] = "flow-control",
    [CMPP_RES_FEE_TERM_NOT_SERVED] = "fee-terminal-not-served",
    [CMPP_RES_BAD_SRC_ID] = "bad-src-id",
    [CMPP_RES_BAD_MSG_SRC] = "bad-msg-src",
    [CMPP_RES_BAD_FEE_TERM] = "bad-fee-terminal-id",
    [CMPP_RES_BAD_DEST_TERM] = "bad-dest-terminal-id",
};

const char *cmpp_result_name(uint32_t result)
{
    if (result < OTA_ARRAY_SIZE(result_names)) {
        return result_names[result];
    }
    return "other-error";
}

const char *cmpp_result_class_name(enum cmpp_result_class c)
{
    switch (c) {
    case CMPP_RC_OK:
        return "ok";
    case CMPP_RC_RETRY:
        return "retry";
    case CMPP_RC_FINAL:
        return "final";
    }
    return "unknown";
}

enum cmpp_result_class cmpp_result_classify(uint32_t result)
{
    /*
     * ref §6 and issue #4 "Lessons": flow control is the ISMG saying "slower",
     * never a verdict on the message; every other code describes the message
     * or our account and repeats if resent unchanged.
     */
    if (result == CMPP_RES_OK) {
        return CMPP_RC_OK;
    }
    if (result == CMPP_RES_FLOW_CONTROL) {
        return CMPP_RC_RETRY;
    }
    return CMPP_RC_FINAL;
}

static const char *const stat_names[CMPP_STAT__COUNT] = {
    [CMPP_STAT_OTHER] = "OTHER",     [CMPP_STAT_DELIVRD] = "DELIVRD",
    [CMPP_STAT_EXPIRED] = "EXPIRED", [CMPP_STAT_DELETED] = "DELETED",
    [CMPP_STAT_UNDELIV] = "UNDELIV", [CMPP_STAT_ACCEPTD] = "ACCEPTD",
    [CMPP_STAT_UNKNOWN] = "UNKNOWN", [CMPP_STAT_REJECTD] = "REJECTD",
};

const char *cmpp_stat_name(enum cmpp_stat st)
{
    return ota_enum_name(stat_names, CMPP_STAT__COUNT, st);
}

enum cmpp_stat cmpp_stat_parse(const char *stat)
{
    for (unsigned i = CMPP_STAT_DELIVRD; i < CMPP_STAT__COUNT; i++) {
        if (strcmp(stat, stat_names[i]) == 0) {
            return (enum cmpp_stat)i;
        }
    }
    return CMPP_STAT_OTHER;
}

const char *cmpp_stat_class_name(enum cmpp_stat_class c)
{
    switch (c) {
    case CMPP_SC_DELIVERED:
        return "delivered";
    case CMPP_SC_PENDING:
        return "pending";
    case CMPP_SC_FAILED:
        return "failed";
    }
    return "unknown";
}

enum cmpp_stat_class cmpp_stat_classify(const char *stat)
{
    switch (cmpp_stat_parse(stat)) {
    case CMPP_STAT_DELIVRD:
        return CMPP_SC_DELIVERED;
    case CMPP_STAT_ACCEPTD:
        /* ref §5: intermediate; the ISMG should drop it, we keep waiting */
        return CMPP_SC_PENDING;
    default:
        return CMPP_SC_FAILED;
    }
}

/* ---- layout per version ------------------------------------------------------- */

static bool ver_ok(enum cmpp_version ver)
{
    return ver == CMPP_V20 || ver == CMPP_V30;
}

static size_t term_len(enum cmpp_version ver)
{
    return ver == CMPP_V30 ? CMPP_TERM30_LEN : CMPP_TERM20_LEN;
}

/* Status / Result width [ref §3, §4]. */
static size_t code_len(enum cmpp_version ver)
{
    return ver == CMPP_V30 ? 4 : 1;
}

static size_t report_len(enum cmpp_version ver)
{
    return ver == CMPP_V30 ? CMPP_REPORT30_LEN : CMPP_REPORT20_LEN;
}

static size_t connect_resp_body(enum cmpp_version ver)
{
    return code_len(ver) + CMPP_AUTH_LEN + 1;
}

/* ---- reader with a sticky error (STYLE §4) ------------------------------------ */

struct rd {
    const uint8_t *p;
    size_t left;
    bool bad;
    const char *at; /* first field that did not fit */
};

static bool rd_take(struct rd *r, size_t n, const char *field)
{
    if (r->bad || r->left < n) {
        if (!r->bad) {
            r->at = field;
        }
        r->bad = true;
        return false;
    }
    return true;
}

static uint8_t rd_u8(struct rd *r, const char *field)
{
    if (!rd_take(r, 1, field)) {
        return 0;
    }
    uint8_t v = r->p[0];
    r->p++;
    r->left--;
    return v;
}

/* Big-endian unsigned of width 1..8 octets. */
static uint64_t rd_uint(struct rd *r, size_t width, const char *field)
{
    uint64_t v = 0;

    if (!rd_take(r, width, field)) {
        return 0;
    }
    for (size_t i = 0; i < width; i++) {
        v = v << 8 | r->p[i];
    }
    r->p += width;
    r->left -= width;
    return v;
}

static void rd_raw(struct rd *r, uint8_t *dst, size_t n, const char *field)
{
    if (!rd_take(r, n, field)) {
        return;
    }
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
}

/*
 * Octet String of width octets into dst (width + 1 chars): stops at the first
 * 0x00 [ref §8.1]; what follows the 0x00 is padding and ignored. Character
 * rules are checked later, by the same code that checks before encode.
 */
static void rd_text(struct rd *r, char *dst, size_t width, const char *field)
{
    if (!rd_take(r, width, field)) {
        return;
    }
    size_t n = 0;
    while (n < width && r->p[n] != 0) {
        dst[n] = (char)r->p[n];
        n++;
    }
    memset(dst + n, 0, width + 1 - n);
    r->p += width;
    r->left -= width;
}

/* ---- writer: sizes are computed first, so overflow is a programmer error ----- */

struct wr {
    uint8_t *p;
    size_t left;
};

static void wr_uint(struct wr *w, size_t width, uint64_t v)
{
    assert(w->left >= width);
    for (size_t i = width; i-- > 0; v >>= 8) {
        w->p[i] = (uint8_t)v;
    }
    w->p += width;
    w->left -= width;
}

static void wr_raw(struct wr *w, const uint8_t *src, size_t n)
{
    assert(w->left >= n);
    if (n) {
        memcpy(w->p, src, n);
    }
    w->p += n;
    w->left -= n;
}

/* Text padded with 0x00 to width [ref §8.1]; length checked beforehand. */
static void wr_text(struct wr *w, const char *s, size_t width)
{
    size_t n = strnlen(s, width);

    assert(w->left >= width);
    memcpy(w->p, s, n);
    memset(w->p + n, 0, width - n);
    w->p += width;
    w->left -= width;
}

/* ---- field rules, shared by decode (rc -EBADMSG) and encode (rc -EINVAL) ---- */

enum txt_cls {
    TXT_PRINT,  /* printable ASCII 0x20..0x7e */
    TXT_DIGITS, /* '0'..'9' only */
    TXT_MSISDN, /* optional leading '+', then digits */
};

struct chk {
    int rc;
    struct ota_err *err;
    const char *pdu; /* "submit", ... for messages */
};

static int chk_text(const struct chk *c, const char *s, size_t width, enum txt_cls cls,
                    bool required, const char *field)
{
    /* Arrays hold width + 1 chars, so reading width + 1 stays inside. */
    size_t n = strnlen(s, width + 1);

    if (n > width) {
        return ota_fail(c->err, c->rc, OTA_ERR_OVERSIZE, "cmpp %s: %s longer than its %zu octets",
                        c->pdu, field, width);
    }
    if (required && n == 0) {
        return ota_fail(c->err, c->rc, OTA_ERR_VALUE, "cmpp %s: %s is empty", c->pdu, field);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool ok;
        switch (cls) {
        case TXT_DIGITS:
            ok = ch >= '0' && ch <= '9';
            break;
        case TXT_MSISDN:
            ok = (ch >= '0' && ch <= '9') || (ch == '+' && i == 0);
            break;
        default:
            ok = ch >= 0x20 && ch <= 0x7e;
            break;
        }
        if (!ok) {
            return ota_fail(c->err, c->rc, OTA_ERR_VALUE, "cmpp %s: %s has character 0x%02x at %zu",
                            c->pdu, field, ch, i);
        }
    }
    return 0;
}

static int chk_range(const struct chk *c, unsigned v, unsigned lo, unsigned hi, const char *field)
{
    if (v < lo || v > hi) {
        return ota_fail(c->err, c->rc, OTA_ERR_VALUE, "cmpp %s: %s %u not in %u..%u", c->pdu, field,
                        v, lo, hi);
    }
    return 0;
}

/* A 3.0 pseudo-code (terminal type 1) need not be digits [ref §4 field 9]. */
static enum txt_cls term_cls(enum cmpp_version ver, uint8_t type)
{
    return ver == CMPP_V30 && type == 1 ? TXT_PRINT : TXT_MSISDN;
}

/* Msg_Length and, with TP_udhi, that the UDH fits in it [ref §4 fields 11, 22]. */
static int chk_content(const struct chk *c, uint8_t fmt, uint8_t udhi, uint8_t len,
                       const uint8_t *content)
{
    unsigned max = fmt == CMPP_FMT_ASCII ? CMPP_CONTENT_ASCII_MAX : CMPP_CONTENT_MAX;

    if (len > max) {
        return ota_fail(c->err, c->rc, OTA_ERR_OVERSIZE,
                        "cmpp %s: Msg_Length %u above %u for Msg_Fmt %u", c->pdu, len, max, fmt);
    }
    if (udhi && (len == 0 || content[0] + 1u > len)) {
        return ota_fail(c->err, c->rc, OTA_ERR_VALUE,
                        "cmpp %s: TP_udhi 1 but UDHL %u does not fit Msg_Length %u", c->pdu,
                        len ? content[0] : 0u, len);
    }
    return 0;
}

static bool fmt_known(uint8_t fmt)
{
    return fmt == CMPP_FMT_ASCII || fmt == CMPP_FMT_CARD || fmt == CMPP_FMT_BINARY ||
           fmt == CMPP_FMT_UCS2 || fmt == CMPP_FMT_GBK;
}

#define CHK(expr)                                                                                  \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ < 0) {                                                                             \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)

static int chk_connect(const struct chk *c, const struct cmpp_connect *m)
{
    return chk_text(c, m->source_addr, CMPP_SRC_ADDR_LEN, TXT_PRINT, false, "Source_Addr");
}

static int chk_connect_resp(const struct chk *c, enum cmpp_version ver,
                            const struct cmpp_connect_resp *m)
{
    if (ver == CMPP_V20 && m->status > 0xff) {
        return ota_fail(c->err, c->rc, OTA_ERR_VALUE,
                        "cmpp connect_resp: Status %u does not fit 1 octet (2.0)", m->status);
    }
    return 0;
}

static int chk_resp(const struct chk *c, enum cmpp_version ver, const struct cmpp_resp *m)
{
    if (ver == CMPP_V20 && m->result > 0xff) {
        return ota_fail(c->err, c->rc, OTA_ERR_VALUE,
                        "cmpp %s: Result %u does not fit 1 octet (2.0)", c->pdu, m->result);
    }
    return 0;
}

static int chk_submit(const struct chk *c, enum cmpp_version ver, const struct cmpp_submit *m)
{
    size_t tl = term_len(ver);

    CHK(chk_range(c, m->n_dest, 1, CMPP_DEST_MAX, "DestUsr_tl"));
    CHK(chk_range(c, m->pk_total, 1, 255, "Pk_total"));
    CHK(chk_range(c, m->pk_number, 1, m->pk_total, "Pk_number"));
    /* ref §4 field 4: 2.0 also defines 2 (billing record only) */
    CHK(chk_range(c, m->registered_delivery, 0, ver == CMPP_V20 ? 2 : 1, "Registered_Delivery"));
    CHK(chk_text(c, m->service_id, CMPP_SERVICE_ID_LEN, TXT_PRINT, false, "Service_Id"));
    CHK(chk_range(c, m->fee_user_type, 0, 3, "Fee_UserType"));
    if (ver == CMPP_V30) {
        CHK(chk_range(c, m->fee_terminal_type, 0, 1, "Fee_terminal_type"));
        CHK(chk_range(c, m->dest_terminal_type, 0, 1, "Dest_terminal_type"));
        CHK(chk_text(c, m->link_id, CMPP_LINK_ID_LEN, TXT_PRINT, false, "LinkID"));
    }
    CHK(chk_text(c, m->fee_terminal_id, tl, term_cls(ver, m->fee_terminal_type), false,
                 "Fee_terminal_Id"));
    CHK(chk_range(c, m->tp_udhi, 0, 1, "TP_udhi"));
    if (!fmt_known(m->msg_fmt)) {
        return ota_fail(c->err, c->rc, OTA_ERR_VALUE, "cmpp submit: Msg_Fmt %u unknown",
                        m->msg_fmt);
    }
    CHK(chk_text(c, m->msg_src, CMPP_SRC_ADDR_LEN, TXT_PRINT, false, "Msg_src"));
    CHK(chk_text(c, m->fee_type, CMPP_FEE_TYPE_LEN, TXT_DIGITS, false, "FeeType"));
    CHK(chk_text(c, m->fee_code, CMPP_FEE_CODE_LEN, TXT_DIGITS, false, "FeeCode"));
    CHK(chk_text(c, m->valid_time, CMPP_TIME_LEN, TXT_PRINT, false, "ValId_Time"));
    CHK(chk_text(c, m->at_time, CMPP_TIME_LEN, TXT_PRINT, false, "At_Time"));
    CHK(chk_text(c, m->src_id, CMPP_SRC_ID_LEN, TXT_MSISDN, false, "Src_Id"));
    for (unsigned i = 0; i < m->n_dest; i++) {
        CHK(chk_text(c, m->dest_terminal_id[i], tl, term_cls(ver, m->dest_terminal_type), true,
                     "Dest_terminal_Id"));
    }
    return chk_content(c, m->msg_fmt, m->tp_udhi, m->msg_len, m->msg_content);
}

static int chk_report(const struct chk *c, enum cmpp_version ver, const struct cmpp_report *m)
{
    CHK(chk_text(c, m->stat, CMPP_STAT_LEN, TXT_PRINT, false, "report Stat"));
    /*
     * Times are only logged; a report refused for a blank in them would be a
     * lost DLR (issue #4 "Lessons"), so printable is enough here.
     */
    CHK(chk_text(c, m->submit_time, CMPP_RPT_TIME_LEN, TXT_PRINT, false, "report Submit_time"));
    CHK(chk_text(c, m->done_time, CMPP_RPT_TIME_LEN, TXT_PRINT, false, "report Done_time"));
    /* The report carries no terminal type; a pseudo-code may stand here in 3.0. */
    return chk_text(c, m->dest_terminal_id, term_len(ver), TXT_PRINT, false,
                    "report Dest_terminal_Id");
}

static int chk_deliver(const struct chk *c, enum cmpp_version ver, const struct cmpp_deliver *m)
{
    CHK(chk_text(c, m->dest_id, CMPP_SRC_ID_LEN, TXT_MSISDN, false, "Dest_Id"));
    CHK(chk_text(c, m->service_id, CMPP_SERVICE_ID_LEN, TXT_PRINT, false, "Service_Id"));
    CHK(chk_range(c, m->tp_udhi, 0, 1, "TP_udhi"));
    /*
     * Msg_Fmt is not checked: a DELIVER we refuse is never answered and comes
     * back forever [ref §5], and an MO's coding is the handset's business.
     */
    if (ver == CMPP_V30) {
        CHK(chk_range(c, m->src_terminal_type, 0, 1, "Src_terminal_type"));
        CHK(chk_text(c, m->link_id, CMPP_LINK_ID_LEN, TXT_PRINT, false, "LinkID"));
    }
    CHK(chk_text(c, m->src_terminal_id, term_len(ver), term_cls(ver, m->src_terminal_type), false,
                 "Src_terminal_Id"));
    CHK(chk_range(c, m->registered_delivery, 0, 1, "Registered_Delivery"));
    if (m->registered_delivery) {
        return chk_report(c, ver, &m->report);
    }
    return chk_content(c, m->msg_fmt, m->tp_udhi, m->msg_len, m->msg_content);
}

static int chk_pdu(const struct chk *c, const struct cmpp_pdu *p)
{
    switch (p->cmd_id) {
    case CMPP_CONNECT:
        return chk_connect(c, &p->u.connect);
    case CMPP_CONNECT_RESP:
        return chk_connect_resp(c, p->ver, &p->u.connect_resp);
    case CMPP_SUBMIT:
        return chk_submit(c, p->ver, &p->u.submit);
    case CMPP_DELIVER:
        return chk_deliver(c, p->ver, &p->u.deliver);
    case CMPP_SUBMIT_RESP:
    case CMPP_DELIVER_RESP:
        return chk_resp(c, p->ver, &p->u.resp);
    default:
        return 0;
    }
}

/* ---- header and framing ------------------------------------------------------- */

int cmpp_hdr_parse(const uint8_t *p, size_t len, struct cmpp_hdr *hdr, struct ota_err *err)
{
    struct rd r = {.p = p, .left = len};
    struct cmpp_hdr h;

    if (len < CMPP_HDR_LEN) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "cmpp: %zu octets, header needs 12", len);
    }
    h.total_len = (uint32_t)rd_uint(&r, 4, "Total_Length");
    h.cmd_id = (uint32_t)rd_uint(&r, 4, "Command_Id");
    h.seq = (uint32_t)rd_uint(&r, 4, "Sequence_Id");
    *hdr = h;
    return 0;
}

int cmpp_frame(const uint8_t *p, size_t len, size_t max_len, struct cmpp_hdr *hdr,
               struct ota_err *err)
{
    if (max_len == 0) {
        max_len = CMPP_PDU_MAX_LEN;
    }
    if (max_len < CMPP_HDR_LEN) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG, "cmpp frame: max_len %zu below 12", max_len);
    }
    if (len < 4) {
        return 0;
    }
    /* ref §1: Total_Length is known after 4 octets; refuse before buffering. */
    uint32_t total = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (total < CMPP_HDR_LEN) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "cmpp frame: Total_Length %u below the 12-octet header", total);
    }
    if (total > max_len) {
        return ota_fail(err, -EMSGSIZE, OTA_ERR_OVERSIZE,
                        "cmpp frame: Total_Length %u above the maximum %zu", total, max_len);
    }
    if (len < total) {
        return 0;
    }
    int rc = cmpp_hdr_parse(p, len, hdr, err);
    return rc < 0 ? rc : (int)total;
}

/* ---- decode ------------------------------------------------------------------- */

static void dec_report(struct rd *r, enum cmpp_version ver, struct cmpp_report *m)
{
    m->msg_id = rd_uint(r, 8, "report Msg_Id");
    rd_text(r, m->stat, CMPP_STAT_LEN, "report Stat");
    rd_text(r, m->submit_time, CMPP_RPT_TIME_LEN, "report Submit_time");
    rd_text(r, m->done_time, CMPP_RPT_TIME_LEN, "report Done_time");
    rd_text(r, m->dest_terminal_id, term_len(ver), "report Dest_terminal_Id");
    m->smsc_sequence = (uint32_t)rd_uint(r, 4, "report SMSC_sequence");
}

/*
 * Returns false when DestUsr_tl is out of 1..100: the recipients cannot be
 * located then, and the count (not Total_Length) is what is wrong.
 */
static bool dec_submit(struct rd *r, enum cmpp_version ver, struct cmpp_submit *m)
{
    size_t tl = term_len(ver);

    m->msg_id = rd_uint(r, 8, "Msg_Id");
    m->pk_total = rd_u8(r, "Pk_total");
    m->pk_number = rd_u8(r, "Pk_number");
    m->registered_delivery = rd_u8(r, "Registered_Delivery");
    m->msg_level = rd_u8(r, "Msg_level");
    rd_text(r, m->service_id, CMPP_SERVICE_ID_LEN, "Service_Id");
    m->fee_user_type = rd_u8(r, "Fee_UserType");
    rd_text(r, m->fee_terminal_id, tl, "Fee_terminal_Id");
    if (ver == CMPP_V30) {
        m->fee_terminal_type = rd_u8(r, "Fee_terminal_type");
    }
    m->tp_pid = rd_u8(r, "TP_pId");
    m->tp_udhi = rd_u8(r, "TP_udhi");
    m->msg_fmt = rd_u8(r, "Msg_Fmt");
    rd_text(r, m->msg_src, CMPP_SRC_ADDR_LEN, "Msg_src");
    rd_text(r, m->fee_type, CMPP_FEE_TYPE_LEN, "FeeType");
    rd_text(r, m->fee_code, CMPP_FEE_CODE_LEN, "FeeCode");
    rd_text(r, m->valid_time, CMPP_TIME_LEN, "ValId_Time");
    rd_text(r, m->at_time, CMPP_TIME_LEN, "At_Time");
    rd_text(r, m->src_id, CMPP_SRC_ID_LEN, "Src_Id");
    m->n_dest = rd_u8(r, "DestUsr_tl");
    if (!r->bad && (m->n_dest < 1 || m->n_dest > CMPP_DEST_MAX)) {
        return false;
    }
    for (unsigned i = 0; i < m->n_dest; i++) {
        rd_text(r, m->dest_terminal_id[i], tl, "Dest_terminal_Id");
    }
    if (ver == CMPP_V30) {
        m->dest_terminal_type = rd_u8(r, "Dest_terminal_type");
    }
    m->msg_len = rd_u8(r, "Msg_Length");
    rd_raw(r, m->msg_content, m->msg_len, "Msg_Content");
    if (ver == CMPP_V30) {
        rd_text(r, m->link_id, CMPP_LINK_ID_LEN, "LinkID");
    } else {
        rd_raw(r, m->reserve, CMPP_RESERVE20_LEN, "Reserve");
    }
    return true;
}

static void dec_deliver(struct rd *r, enum cmpp_version ver, struct cmpp_deliver *m)
{
    m->msg_id = rd_uint(r, 8, "Msg_Id");
    rd_text(r, m->dest_id, CMPP_SRC_ID_LEN, "Dest_Id");
    rd_text(r, m->service_id, CMPP_SERVICE_ID_LEN, "Service_Id");
    m->tp_pid = rd_u8(r, "TP_pid");
    m->tp_udhi = rd_u8(r, "TP_udhi");
    m->msg_fmt = rd_u8(r, "Msg_Fmt");
    rd_text(r, m->src_terminal_id, term_len(ver), "Src_terminal_Id");
    if (ver == CMPP_V30) {
        m->src_terminal_type = rd_u8(r, "Src_terminal_type");
    }
    m->registered_delivery = rd_u8(r, "Registered_Delivery");
    m->msg_len = rd_u8(r, "Msg_Length");
    rd_raw(r, m->msg_content, m->msg_len, "Msg_Content");
    if (ver == CMPP_V30) {
        rd_text(r, m->link_id, CMPP_LINK_ID_LEN, "LinkID");
    } else {
        rd_raw(r, m->reserved, CMPP_RESERVE20_LEN, "Reserved");
    }
}

int cmpp_decode(const uint8_t *p, size_t len, enum cmpp_version ver, struct cmpp_pdu *pdu,
                struct ota_err *err)
{
    struct cmpp_pdu t;
    struct cmpp_hdr h;
    int rc;

    if (!ver_ok(ver)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VERSION, "cmpp: version 0x%02x unknown",
                        (unsigned)ver);
    }
    rc = cmpp_hdr_parse(p, len, &h, err);
    if (rc < 0) {
        return rc;
    }
    if (h.total_len < CMPP_HDR_LEN) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "cmpp: Total_Length %u below the 12-octet header (seq %u)", h.total_len,
                        h.seq);
    }
    if (h.total_len > len) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED,
                        "cmpp %s: Total_Length %u but only %zu octets (seq %u)",
                        cmpp_cmd_name(h.cmd_id), h.total_len, len, h.seq);
    }
    if (h.total_len < len) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "cmpp %s: %zu octets after Total_Length %u (seq %u)",
                        cmpp_cmd_name(h.cmd_id), len - h.total_len, h.total_len, h.seq);
    }

    memset(&t, 0, sizeof(t));
    t.ver = ver;
    t.cmd_id = h.cmd_id;
    t.seq = h.seq;
    struct rd r = {.p = p + CMPP_HDR_LEN, .left = len - CMPP_HDR_LEN};
    const char *name = cmpp_cmd_name(h.cmd_id);

    switch (h.cmd_id) {
    case CMPP_CONNECT:
        rd_text(&r, t.u.connect.source_addr, CMPP_SRC_ADDR_LEN, "Source_Addr");
        rd_raw(&r, t.u.connect.auth_source, CMPP_AUTH_LEN, "AuthenticatorSource");
        t.u.connect.version = rd_u8(&r, "Version");
        t.u.connect.timestamp = (uint32_t)rd_uint(&r, 4, "Timestamp");
        break;
    case CMPP_CONNECT_RESP:
        t.u.connect_resp.status = (uint32_t)rd_uint(&r, code_len(ver), "Status");
        rd_raw(&r, t.u.connect_resp.auth_ismg, CMPP_AUTH_LEN, "AuthenticatorISMG");
        t.u.connect_resp.version = rd_u8(&r, "Version");
        break;
    case CMPP_SUBMIT:
        if (!dec_submit(&r, ver, &t.u.submit)) {
            return ota_fail(err, -EBADMSG, OTA_ERR_VALUE,
                            "cmpp submit %s: DestUsr_tl %u not in 1..%d (seq %u)",
                            cmpp_version_name(ver), t.u.submit.n_dest, CMPP_DEST_MAX, h.seq);
        }
        break;
    case CMPP_DELIVER:
        dec_deliver(&r, ver, &t.u.deliver);
        break;
    case CMPP_SUBMIT_RESP:
    case CMPP_DELIVER_RESP:
        t.u.resp.msg_id = rd_uint(&r, 8, "Msg_Id");
        t.u.resp.result = (uint32_t)rd_uint(&r, code_len(ver), "Result");
        break;
    case CMPP_ACTIVE_TEST_RESP:
        t.u.active_test_reserved = rd_u8(&r, "Reserved");
        break;
    case CMPP_TERMINATE:
    case CMPP_TERMINATE_RESP:
    case CMPP_ACTIVE_TEST:
        break;
    default:
        return ota_fail(err, -EOPNOTSUPP, OTA_ERR_TAG,
                        "cmpp: Command_Id 0x%08x (%s) not supported, seq %u, %u octets", h.cmd_id,
                        name, h.seq, h.total_len);
    }
    /* Total_Length equals len here, so a body that is short or long is a lie. */
    if (r.bad) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "cmpp %s %s: Total_Length %u ends inside %s (seq %u)", name,
                        cmpp_version_name(t.ver), h.total_len, r.at, h.seq);
    }
    if (r.left) {
        return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                        "cmpp %s %s: Total_Length %u leaves %zu octets over (seq %u)", name,
                        cmpp_version_name(t.ver), h.total_len, r.left, h.seq);
    }
    if (t.cmd_id == CMPP_DELIVER && t.u.deliver.registered_delivery == 1) {
        struct cmpp_deliver *d = &t.u.deliver;
        if (d->msg_len != report_len(ver)) {
            return ota_fail(err, -EBADMSG, OTA_ERR_LENGTH,
                            "cmpp deliver %s: report Msg_Length %u, not %zu (seq %u)",
                            cmpp_version_name(ver), d->msg_len, report_len(ver), h.seq);
        }
        struct rd rr = {.p = d->msg_content, .left = d->msg_len};
        dec_report(&rr, ver, &d->report);
        assert(!rr.bad && rr.left == 0);
    }
    struct chk c = {.rc = -EBADMSG, .err = err, .pdu = name};
    rc = chk_pdu(&c, &t);
    if (rc < 0) {
        return rc;
    }
    memcpy(pdu, &t, sizeof(t));
    return 0;
}

int cmpp_peek_msg_id(const uint8_t *p, size_t len, uint64_t *msg_id, struct ota_err *err)
{
    struct cmpp_hdr h;
    int rc = cmpp_hdr_parse(p, len, &h, err);

    if (rc < 0) {
        return rc;
    }
    if (h.cmd_id != CMPP_DELIVER && h.cmd_id != CMPP_SUBMIT_RESP) {
        return ota_fail(err, -EINVAL, OTA_ERR_TAG,
                        "cmpp: Command_Id 0x%08x (%s) has no leading Msg_Id", h.cmd_id,
                        cmpp_cmd_name(h.cmd_id));
    }
    if (len < CMPP_HDR_LEN + 8) {
        return ota_fail(err, -EBADMSG, OTA_ERR_TRUNCATED, "cmpp %s: %zu octets, Msg_Id needs 20",
                        cmpp_cmd_name(h.cmd_id), len);
    }
    *msg_id = cmpp_msgid_get(p + CMPP_HDR_LEN);
    return 0;
}

/* ---- encode ------------------------------------------------------------------- */

static bool body_len(const struct cmpp_pdu *p, size_t *out)
{
    size_t n;

    if (!ver_ok(p->ver)) {
        return false;
    }
    switch (p->cmd_id) {
    case CMPP_CONNECT:
        n = CONNECT_BODY;
        break;
    case CMPP_CONNECT_RESP:
        n = connect_resp_body(p->ver);
        break;
    case CMPP_SUBMIT: {
        const struct cmpp_submit *s = &p->u.submit;
        if (s->n_dest < 1 || s->n_dest > CMPP_DEST_MAX) {
            return false;
        }
        n = (p->ver == CMPP_V30 ? SUBMIT30_FIXED : SUBMIT20_FIXED) + term_len(p->ver) * s->n_dest +
            s->msg_len;
        break;
    }
    case CMPP_DELIVER: {
        const struct cmpp_deliver *d = &p->u.deliver;
        n = (p->ver == CMPP_V30 ? DELIVER30_FIXED : DELIVER20_FIXED) +
            (d->registered_delivery == 1 ? report_len(p->ver) : d->msg_len);
        break;
    }
    case CMPP_SUBMIT_RESP:
    case CMPP_DELIVER_RESP:
        n = 8 + code_len(p->ver);
        break;
    case CMPP_ACTIVE_TEST_RESP:
        n = ACTIVE_TEST_RESP_BODY;
        break;
    case CMPP_TERMINATE:
    case CMPP_TERMINATE_RESP:
    case CMPP_ACTIVE_TEST:
        n = 0;
        break;
    default:
        return false;
    }
    *out = n;
    return true;
}

size_t cmpp_encoded_len(const struct cmpp_pdu *pdu)
{
    size_t n;

    return body_len(pdu, &n) ? CMPP_HDR_LEN + n : 0;
}

static void enc_report(struct wr *w, enum cmpp_version ver, const struct cmpp_report *m)
{
    wr_uint(w, 8, m->msg_id);
    wr_text(w, m->stat, CMPP_STAT_LEN);
    wr_text(w, m->submit_time, CMPP_RPT_TIME_LEN);
    wr_text(w, m->done_time, CMPP_RPT_TIME_LEN);
    wr_text(w, m->dest_terminal_id, term_len(ver));
    wr_uint(w, 4, m->smsc_sequence);
}

static void enc_submit(struct wr *w, enum cmpp_version ver, const struct cmpp_submit *m)
{
    size_t tl = term_len(ver);

    wr_uint(w, 8, m->msg_id);
    wr_uint(w, 1, m->pk_total);
    wr_uint(w, 1, m->pk_number);
    wr_uint(w, 1, m->registered_delivery);
    wr_uint(w, 1, m->msg_level);
    wr_text(w, m->service_id, CMPP_SERVICE_ID_LEN);
    wr_uint(w, 1, m->fee_user_type);
    wr_text(w, m->fee_terminal_id, tl);
    if (ver == CMPP_V30) {
        wr_uint(w, 1, m->fee_terminal_type);
    }
    wr_uint(w, 1, m->tp_pid);
    wr_uint(w, 1, m->tp_udhi);
    wr_uint(w, 1, m->msg_fmt);
    wr_text(w, m->msg_src, CMPP_SRC_ADDR_LEN);
    wr_text(w, m->fee_type, CMPP_FEE_TYPE_LEN);
    wr_text(w, m->fee_code, CMPP_FEE_CODE_LEN);
    wr_text(w, m->valid_time, CMPP_TIME_LEN);
    wr_text(w, m->at_time, CMPP_TIME_LEN);
    wr_text(w, m->src_id, CMPP_SRC_ID_LEN);
    wr_uint(w, 1, m->n_dest);
    for (unsigned i = 0; i < m->n_dest; i++) {
        wr_text(w, m->dest_terminal_id[i], tl);
    }
    if (ver == CMPP_V30) {
        wr_uint(w, 1, m->dest_terminal_type);
    }
    wr_uint(w, 1, m->msg_len);
    wr_raw(w, m->msg_content, m->msg_len);
    if (ver == CMPP_V30) {
        wr_text(w, m->link_id, CMPP_LINK_ID_LEN);
    } else {
        wr_raw(w, m->reserve, CMPP_RESERVE20_LEN);
    }
}

static void enc_deliver(struct wr *w, enum cmpp_version ver, const struct cmpp_deliver *m)
{
    wr_uint(w, 8, m->msg_id);
    wr_text(w, m->dest_id, CMPP_SRC_ID_LEN);
    wr_text(w, m->service_id, CMPP_SERVICE_ID_LEN);
    wr_uint(w, 1, m->tp_pid);
    wr_uint(w, 1, m->tp_udhi);
    wr_uint(w, 1, m->msg_fmt);
    wr_text(w, m->src_terminal_id, term_len(ver));
    if (ver == CMPP_V30) {
        wr_uint(w, 1, m->src_terminal_type);
    }
    wr_uint(w, 1, m->registered_delivery);
    if (m->registered_delivery == 1) {
        wr_uint(w, 1, report_len(ver));
        enc_report(w, ver, &m->report);
    } else {
        wr_uint(w, 1, m->msg_len);
        wr_raw(w, m->msg_content, m->msg_len);
    }
    if (ver == CMPP_V30) {
        wr_text(w, m->link_id, CMPP_LINK_ID_LEN);
    } else {
        wr_raw(w, m->reserved, CMPP_RESERVE20_LEN);
    }
}

int cmpp_encode(const struct cmpp_pdu *pdu, uint8_t *dst, size_t cap, struct ota_err *err)
{
    const char *name = cmpp_cmd_name(pdu->cmd_id);
    size_t body;
    int rc;

    if (!ver_ok(pdu->ver)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VERSION, "cmpp %s: version 0x%02x unknown", name,
                        (unsigned)pdu->ver);
    }
    struct chk c = {.rc = -EINVAL, .err = err, .pdu = name};
    rc = chk_pdu(&c, pdu);
    if (rc < 0) {
        return rc;
    }
    if (!body_len(pdu, &body)) {
        return ota_fail(err, -EINVAL, OTA_ERR_TAG, "cmpp: Command_Id 0x%08x (%s) cannot be encoded",
                        pdu->cmd_id, name);
    }
    size_t total = CMPP_HDR_LEN + body;
    if (total > cap) {
        return ota_fail(err, -ENOSPC, OTA_ERR_NOSPACE, "cmpp %s: %zu octets do not fit in %zu",
                        name, total, cap);
    }

    struct wr w = {.p = dst, .left = total};
    wr_uint(&w, 4, total);
    wr_uint(&w, 4, pdu->cmd_id);
    wr_uint(&w, 4, pdu->seq);
    switch (pdu->cmd_id) {
    case CMPP_CONNECT:
        wr_text(&w, pdu->u.connect.source_addr, CMPP_SRC_ADDR_LEN);
        wr_raw(&w, pdu->u.connect.auth_source, CMPP_AUTH_LEN);
        wr_uint(&w, 1, pdu->u.connect.version);
        wr_uint(&w, 4, pdu->u.connect.timestamp);
        break;
    case CMPP_CONNECT_RESP:
        wr_uint(&w, code_len(pdu->ver), pdu->u.connect_resp.status);
        wr_raw(&w, pdu->u.connect_resp.auth_ismg, CMPP_AUTH_LEN);
        wr_uint(&w, 1, pdu->u.connect_resp.version);
        break;
    case CMPP_SUBMIT:
        enc_submit(&w, pdu->ver, &pdu->u.submit);
        break;
    case CMPP_DELIVER:
        enc_deliver(&w, pdu->ver, &pdu->u.deliver);
        break;
    case CMPP_SUBMIT_RESP:
    case CMPP_DELIVER_RESP:
        wr_uint(&w, 8, pdu->u.resp.msg_id);
        wr_uint(&w, code_len(pdu->ver), pdu->u.resp.result);
        break;
    case CMPP_ACTIVE_TEST_RESP:
        wr_uint(&w, 1, pdu->u.active_test_reserved);
        break;
    default:
        break;
    }
    assert(w.left == 0);
    return (int)total;
}

/* ---- equality (tests and the fuzz harness) ------------------------------------- */

#define EQ(f) (a->f == b->f)
#define EQS(f) (strncmp(a->f, b->f, sizeof(a->f)) == 0)
#define EQM(f) (memcmp(a->f, b->f, sizeof(a->f)) == 0)

static bool report_equal(const struct cmpp_report *a, const struct cmpp_report *b)
{
    return EQ(msg_id) && EQS(stat) && EQS(submit_time) && EQS(done_time) && EQS(dest_terminal_id) &&
           EQ(smsc_sequence);
}

static bool submit_equal(enum cmpp_version ver, const struct cmpp_submit *a,
                         const struct cmpp_submit *b)
{
    bool v30 = ver == CMPP_V30;

    if (!(EQ(msg_id) && EQ(pk_total) && EQ(pk_number) && EQ(registered_delivery) && EQ(msg_level) &&
          EQS(service_id) && EQ(fee_user_type) && EQS(fee_terminal_id) && EQ(tp_pid) &&
          EQ(tp_udhi) && EQ(msg_fmt) && EQS(msg_src) && EQS(fee_type) && EQS(fee_code) &&
          EQS(valid_time) && EQS(at_time) && EQS(src_id) && EQ(n_dest) && EQ(msg_len))) {
        return false;
    }
    if (a->n_dest > CMPP_DEST_MAX || memcmp(a->msg_content, b->msg_content, a->msg_len)) {
        return false;
    }
    for (unsigned i = 0; i < a->n_dest; i++) {
        if (!EQS(dest_terminal_id[i])) {
            return false;
        }
    }
    if (v30) {
        return EQ(fee_terminal_type) && EQ(dest_terminal_type) && EQS(link_id);
    }
    return EQM(reserve);
}

static bool deliver_equal(enum cmpp_version ver, const struct cmpp_deliver *a,
                          const struct cmpp_deliver *b)
{
    if (!(EQ(msg_id) && EQS(dest_id) && EQS(service_id) && EQ(tp_pid) && EQ(tp_udhi) &&
          EQ(msg_fmt) && EQS(src_terminal_id) && EQ(registered_delivery))) {
        return false;
    }
    if (a->registered_delivery == 1) {
        if (!report_equal(&a->report, &b->report)) {
            return false;
        }
    } else if (!EQ(msg_len) || memcmp(a->msg_content, b->msg_content, a->msg_len)) {
        return false;
    }
    if (ver == CMPP_V30) {
        return EQ(src_terminal_type) && EQS(link_id);
    }
    return EQM(reserved);
}

bool cmpp_pdu_equal(const struct cmpp_pdu *a, const struct cmpp_pdu *b)
{
    if (!(EQ(ver) && EQ(cmd_id) && EQ(seq))) {
        return false;
    }
    switch (a->cmd_id) {
    case CMPP_CONNECT:
        return EQS(u.connect.source_addr) && EQM(u.connect.auth_source) && EQ(u.connect.version) &&
               EQ(u.connect.timestamp);
    case CMPP_CONNECT_RESP:
        return EQ(u.connect_resp.status) && EQM(u.connect_resp.auth_ismg) &&
               EQ(u.connect_resp.version);
    case CMPP_SUBMIT:
        return submit_equal(a->ver, &a->u.submit, &b->u.submit);
    case CMPP_DELIVER:
        return deliver_equal(a->ver, &a->u.deliver, &b->u.deliver);
    case CMPP_SUBMIT_RESP:
    case CMPP_DELIVER_RESP:
        return EQ(u.resp.msg_id) && EQ(u.resp.result);
    case CMPP_ACTIVE_TEST_RESP:
        return EQ(u.active_test_reserved);
    default:
        return true;
    }
}

/* ---- authenticators [ref §3] ---------------------------------------------------- */

uint32_t cmpp_timestamp(unsigned month, unsigned day, unsigned hour, unsigned min, unsigned sec)
{
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59) {
        return 0;
    }
    return (uint32_t)(month * 100000000u + day * 1000000u + hour * 10000u + min * 100u + sec);
}

static int md5(const uint8_t *in, size_t len, uint8_t out[CMPP_AUTH_LEN], struct ota_err *err)
{
    unsigned int olen = 0;

    if (EVP_Digest(in, len, out, &olen, EVP_md5(), NULL) != 1 || olen != CMPP_AUTH_LEN) {
        return ota_fail(err, -EIO, OTA_ERR_CRYPTO, "cmpp auth: MD5 failed (EVP_Digest)");
    }
    return 0;
}

int cmpp_auth_source(const char *source_addr, const uint8_t *secret, size_t secret_len,
                     uint32_t timestamp, uint8_t out[CMPP_AUTH_LEN], struct ota_err *err)
{
    uint8_t buf[CMPP_SRC_ADDR_LEN + CONNECT_PAD_ZEROS + CMPP_SECRET_MAX_LEN + TIMESTAMP_DIGITS];
    uint8_t md[CMPP_AUTH_LEN];
    size_t n = strnlen(source_addr, CMPP_SRC_ADDR_LEN + 1), o = 0;
    int rc;

    if (n > CMPP_SRC_ADDR_LEN) {
        return ota_fail(err, -EINVAL, OTA_ERR_ARG,
                        "cmpp auth: Source_Addr longer than 6 characters");
    }
    if (secret_len > CMPP_SECRET_MAX_LEN) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY,
                        "cmpp auth: shared secret of %zu octets, at most %d", secret_len,
                        CMPP_SECRET_MAX_LEN);
    }
    /* Source_Addr as its 6 wire octets, 0x00-padded like the field itself. */
    memset(buf, 0, CMPP_SRC_ADDR_LEN + CONNECT_PAD_ZEROS);
    memcpy(buf, source_addr, n);
    o = CMPP_SRC_ADDR_LEN + CONNECT_PAD_ZEROS;
    if (secret_len) {
        memcpy(buf + o, secret, secret_len);
    }
    o += secret_len;
    /* MMDDHHMMSS as 10 ASCII digits, leading zeros kept; a u32 has at most 10. */
    uint32_t t = timestamp;
    for (size_t i = TIMESTAMP_DIGITS; i-- > 0; t /= 10) {
        buf[o + i] = (uint8_t)('0' + t % 10);
    }
    o += TIMESTAMP_DIGITS;
    rc = md5(buf, o, md, err);
    if (rc == 0) {
        memcpy(out, md, CMPP_AUTH_LEN);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int cmpp_auth_ismg(enum cmpp_version ver, uint32_t status, const uint8_t auth_source[CMPP_AUTH_LEN],
                   const uint8_t *secret, size_t secret_len, uint8_t out[CMPP_AUTH_LEN],
                   struct ota_err *err)
{
    uint8_t buf[4 + CMPP_AUTH_LEN + CMPP_SECRET_MAX_LEN];
    uint8_t md[CMPP_AUTH_LEN];
    int rc;

    if (!ver_ok(ver)) {
        return ota_fail(err, -EINVAL, OTA_ERR_VERSION, "cmpp auth: version 0x%02x unknown",
                        (unsigned)ver);
    }
    if (ver == CMPP_V20 && status > 0xff) {
        return ota_fail(err, -EINVAL, OTA_ERR_VALUE,
                        "cmpp auth: Status %u does not fit 1 octet (2.0)", status);
    }
    if (secret_len > CMPP_SECRET_MAX_LEN) {
        return ota_fail(err, -EINVAL, OTA_ERR_KEY,
                        "cmpp auth: shared secret of %zu octets, at most %d", secret_len,
                        CMPP_SECRET_MAX_LEN);
    }
    struct wr w = {.p = buf, .left = sizeof(buf)};
    wr_uint(&w, code_len(ver), status);
    wr_raw(&w, auth_source, CMPP_AUTH_LEN);
    wr_raw(&w, secret, secret_len);
    rc = md5(buf, sizeof(buf) - w.left, md, err);
    if (rc == 0) {
        memcpy(out, md, CMPP_AUTH_LEN);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int cmpp_connect_verify(const struct cmpp_connect *c, const uint8_t *secret, size_t secret_len,
                        struct ota_err *err)
{
    uint8_t want[CMPP_AUTH_LEN];
    int rc = cmpp_auth_source(c->source_addr, secret, secret_len, c->timestamp, want, err);

    if (rc < 0) {
        return rc;
    }
    if (CRYPTO_memcmp(want, c->auth_source, CMPP_AUTH_LEN) != 0) {
        return ota_fail(err, -EACCES, OTA_ERR_BAD_CC,
                        "cmpp connect: AuthenticatorSource mismatch (%.6s, ts %010u)",
                        c->source_addr, (unsigned)c->timestamp);
    }
    return 0;
}

int cmpp_connect_resp_verify(enum cmpp_version ver, const struct cmpp_connect_resp *r,
                             const uint8_t auth_source[CMPP_AUTH_LEN], const uint8_t *secret,
                             size_t secret_len, struct ota_err *err)
{
    uint8_t want[CMPP_AUTH_LEN];
    int rc = cmpp_auth_ismg(ver, r->status, auth_source, secret, secret_len, want, err);

    if (rc < 0) {
        return rc;
    }
    if (CRYPTO_memcmp(want, r->auth_ismg, CMPP_AUTH_LEN) != 0) {
        return ota_fail(err, -EACCES, OTA_ERR_BAD_CC,
                        "cmpp connect_resp: AuthenticatorISMG mismatch (Status %u)", r->status);
    }
    return 0;
}
