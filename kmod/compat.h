/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What differs between the kernels sn builds for (6.1 and 6.12), in one
 * place. Features are detected from the kernel's headers by kmod/Kbuild
 * (SN_HAVE_*), so a backport is picked up too.
 */
#ifndef SN_COMPAT_H
#define SN_COMPAT_H

#include <linux/mm.h>

/* vm_flags became read-only behind vm_flags_set/clear in 6.3. */
#ifdef SN_HAVE_VM_FLAGS_SET
static inline void sn_vm_flags_set(struct vm_area_struct *vma, vm_flags_t f)
{
	vm_flags_set(vma, f);
}

static inline void sn_vm_flags_clear(struct vm_area_struct *vma, vm_flags_t f)
{
	vm_flags_clear(vma, f);
}
#else
static inline void sn_vm_flags_set(struct vm_area_struct *vma, vm_flags_t f)
{
	vma->vm_flags |= f;
}

static inline void sn_vm_flags_clear(struct vm_area_struct *vma, vm_flags_t f)
{
	vma->vm_flags &= ~f;
}
#endif

#endif /* SN_COMPAT_H */
