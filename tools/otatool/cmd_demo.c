/* SPDX-License-Identifier: Apache-2.0 */
/* otatool demo: being written. */
#include "otatool.h"
int cmd_demo(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return die("demo: not written yet");
}
