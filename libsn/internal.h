/* SPDX-License-Identifier: MIT */
/* What libsn's own sources share and its users never see. */
#ifndef SN_LIBSN_INTERNAL_H
#define SN_LIBSN_INTERNAL_H

/* libsn builds with -fvisibility=hidden; only SN_API symbols are exported. */
#define SN_API __attribute__((visibility("default")))

#endif /* SN_LIBSN_INTERNAL_H */
