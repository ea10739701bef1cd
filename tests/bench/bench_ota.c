/* SPDX-License-Identifier: Apache-2.0 */
/* bench-ota: being written (issue 3); this file only keeps the build whole meanwhile. */
#include <stdio.h>
int main(void) { fputs("bench-ota: not built yet\n", stderr); return 2; }
