/* SPDX-License-Identifier: MIT */
/*
 * libsn: shared-nothing messaging over rings shared with the sn kernel
 * module. Every function returns a negative errno on failure.
 */
#ifndef SN_SN_H
#define SN_SN_H

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". Never fails. */
const char *sn_version(void);

/*
 * Opens the sn device (/dev/sn) read-write and close-on-exec.
 * Returns the file descriptor, or -ENOENT when the module is not loaded,
 * or another negative errno from open(2).
 */
int sn_device_open(void);

#ifdef __cplusplus
}
#endif

#endif /* SN_SN_H */
