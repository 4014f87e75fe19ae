/* SPDX-License-Identifier: MIT */
/* sn-bridge: being written (h-tool) */
#include <stdio.h>
int main(void)
{
	fputs("sn-bridge: not built yet\n", stderr);
	return 2;
}
