/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for gateway/conf.c, the configuration file reader. Any
 * input is parsed as a file; it must either fail with a message that starts
 * with the file name (and leave the output untouched) or succeed with at
 * least one link and a dump that parses again to the same links and
 * listeners (the dump masks secrets as "***", so it is read back only when
 * none was set). Seeds: tests/fuzz/corpus/conf/.
 */
#include "gateway/conf.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_secret(const struct gw_conf *c)
{
    if (c->callback_secret_len) {
        return true;
    }
    for (size_t i = 0; i < c->n_links; i++) {
        if (c->links[i].kind == BEARER_KIND_CMPP) {
            return true; /* cmpp requires a secret */
        }
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gw_conf c, d;
    struct ota_err err;
    char *dump = NULL;
    size_t dump_len = 0;
    FILE *f;

    memset(&c, 0xa5, sizeof(c));
    if (gw_conf_parse((const char *)data, size, "fuzz", &c, &err) < 0) {
        const unsigned char *b = (const unsigned char *)&c;
        if (strncmp(err.msg, "fuzz:", 5) != 0 || b[0] != 0xa5 || b[sizeof(c) - 1] != 0xa5) {
            abort();
        }
        return 0;
    }
    if (c.n_links < 1 || c.n_links > GW_CONF_LINKS_MAX || c.eng.db_path != c.db_path) {
        abort();
    }
    f = open_memstream(&dump, &dump_len);
    if (!f) {
        return 0;
    }
    if (gw_conf_dump(&c, f) < 0) {
        abort();
    }
    fclose(f);
    if (!has_secret(&c)) {
        if (gw_conf_parse(dump, dump_len, "dump", &d, &err) < 0) {
            abort();
        }
        c.eng.db_path = d.eng.db_path = NULL;
        if (memcmp(&c, &d, sizeof(c)) != 0) {
            abort();
        }
        gw_conf_fini(&d);
    }
    free(dump);
    gw_conf_fini(&c);
    return 0;
}
