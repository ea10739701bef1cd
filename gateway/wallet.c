/* SPDX-License-Identifier: Apache-2.0 */
/* PLACEHOLDER until the wallet pull API lands (issue #6): no routes, nothing runs. */
#include "gateway/gw.h"

int gw_wallet_start(struct gw *g, struct ota_err *err)
{
    (void)g;
    (void)err;
    return 0;
}

void gw_wallet_stop(struct gw *g)
{
    (void)g;
}
