/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The temporary SoftHSM2 token of the PKCS#11 tests; see ts_p11.h. Built
 * into the unit tests' support library and into bench-ota (CMakeLists.txt).
 */
#include "tests/support/ts_p11.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TS_P11_SAFE "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

bool ts_p11_required(void)
{
    const char *v = getenv("OTAGW_REQUIRE_P11");
    return v && strcmp(v, "1") == 0;
}

/* Text that can go through the shell unquoted: [A-Za-z0-9._-], and '/' when path. */
static bool shell_safe(const char *s, bool path)
{
    return s && s[0] && strspn(s, path ? TS_P11_SAFE "/" : TS_P11_SAFE) == strlen(s);
}

int ts_p11_token(const char *label, const char *pin, char *dir, size_t cap)
{
    char path[256], cmd[512];

    if (!shell_safe(label, false) || !shell_safe(pin, false) || !dir || cap == 0) {
        return -EINVAL;
    }
    if (access(TS_P11_MODULE, R_OK) != 0) {
        return 0;
    }
    if (!dir[0]) {
        if (snprintf(dir, cap, "/tmp/otagw-p11-XXXXXX") >= (int)cap) {
            dir[0] = '\0';
            return -ENOSPC;
        }
        if (!mkdtemp(dir)) {
            int e = errno;
            dir[0] = '\0';
            return -e;
        }
    }
    if (dir[0] != '/' || !shell_safe(dir, true) ||
        snprintf(path, sizeof(path), "%s/tokens", dir) >= (int)sizeof(path)) {
        return -EINVAL;
    }
    if (mkdir(path, 0700) < 0) {
        return -errno;
    }
    snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        return -errno;
    }
    fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir);
    if (fclose(f) != 0) {
        return -EIO;
    }
    setenv("SOFTHSM2_CONF", path, 1);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label %s --pin %s --so-pin " TS_P11_SO_PIN
             " >/dev/null 2>&1",
             label, pin);
    return system(cmd) == 0 ? 1 : -EIO;
}

int ts_p11_token_rm(const char *dir)
{
    char cmd[320];

    /* only a temporary directory: never "/", never out of /tmp through ".." */
    if (!dir || strncmp(dir, "/tmp/", 5) != 0 || !dir[5] || strstr(dir, "..") ||
        !shell_safe(dir, true) ||
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir) >= (int)sizeof(cmd)) {
        return -EINVAL;
    }
    return system(cmd) == 0 ? 0 : -EIO;
}
