/* SPDX-License-Identifier: MIT */
/*
 * Why the calling thread's last channel creation or attachment failed, in
 * words (sn_last_error()): an errno says -EINVAL, this says which argument
 * and which limit.
 */
#include <stdarg.h>
#include <stdio.h>

#include <sn/channel.h>

#include "internal.h"

static __thread char sn_why_buf[256];

void sn_why(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sn_why_buf, sizeof(sn_why_buf), fmt, ap);
	va_end(ap);
}

void sn_why_clear(void)
{
	sn_why_buf[0] = 0;
}

SN_API const char *sn_last_error(void)
{
	return sn_why_buf;
}
