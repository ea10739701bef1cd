/* SPDX-License-Identifier: Apache-2.0 */
/* otatool: being written (issue 3); this file only keeps the build whole meanwhile. */
#include <stdio.h>
int main(void) { fputs("otatool: not built yet\n", stderr); return 2; }
