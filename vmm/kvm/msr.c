/* msr.c: the MSRs a vCPU starts with.
 *
 * KVM resets most MSRs to their architectural values; these are the ones a firmware would set
 * before handing over to a kernel and that Linux reads without checking:
 * - IA32_MISC_ENABLE: fast-string operations on (bit 0), as firmware leaves it.
 * - IA32_MTRR_DEF_TYPE: MTRRs enabled, default type write-back. Without it every access is
 *   uncached as far as the guest's PAT/MTRR logic is concerned, and Linux warns and disables PAT.
 * - SYSENTER_*, STAR/LSTAR/CSTAR/SFMASK, KERNEL_GS_BASE and the TSC: zero, explicitly, so a
 *   vCPU created again starts the same way.
 */
#define pr_fmt(fmt) "msr: " fmt
#include "kvm/msr.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/log.h"
#include "util/util.h"

#define MSR_IA32_TSC		 0x10
#define MSR_IA32_SYSENTER_CS	 0x174
#define MSR_IA32_SYSENTER_ESP	 0x175
#define MSR_IA32_SYSENTER_EIP	 0x176
#define MSR_IA32_MISC_ENABLE	 0x1a0
#define MSR_MTRR_DEF_TYPE	 0x2ff
#define MSR_STAR		 0xc0000081
#define MSR_LSTAR		 0xc0000082
#define MSR_CSTAR		 0xc0000083
#define MSR_SYSCALL_MASK	 0xc0000084
#define MSR_KERNEL_GS_BASE	 0xc0000102

#define MTRR_DEF_TYPE_E	 (1u << 11)
#define MTRR_TYPE_WB	 6

int msr_set_boot_values(int vcpu_fd)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} boot_msrs[] = {
		{MSR_IA32_SYSENTER_CS, 0},
		{MSR_IA32_SYSENTER_ESP, 0},
		{MSR_IA32_SYSENTER_EIP, 0},
		{MSR_STAR, 0},
		{MSR_LSTAR, 0},
		{MSR_CSTAR, 0},
		{MSR_SYSCALL_MASK, 0},
		{MSR_KERNEL_GS_BASE, 0},
		{MSR_IA32_TSC, 0},
		{MSR_IA32_MISC_ENABLE, 1},
		{MSR_MTRR_DEF_TYPE, MTRR_DEF_TYPE_E | MTRR_TYPE_WB},
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[ARRAY_SIZE(boot_msrs)];
	} msrs = {.hdr.nmsrs = ARRAY_SIZE(boot_msrs)};
	int ret;

	for (unsigned int i = 0; i < ARRAY_SIZE(boot_msrs); i++) {
		msrs.e[i].index = boot_msrs[i].index;
		msrs.e[i].data = boot_msrs[i].value;
	}
	/* KVM_SET_MSRS returns how many it set, stopping at the first it refused. */
	ret = ioctl(vcpu_fd, KVM_SET_MSRS, &msrs);
	if (ret < 0) {
		pr_err("KVM_SET_MSRS: %s", strerror(errno));
		return -errno;
	}
	if ((unsigned int)ret != ARRAY_SIZE(boot_msrs)) {
		pr_err("KVM_SET_MSRS: KVM refused MSR 0x%x", boot_msrs[ret].index);
		return -EINVAL;
	}
	return 0;
}

struct msr_batch {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[8];
};

int msr_get(int vcpu_fd, const uint32_t *idx, uint64_t *val, unsigned int n)
{
	struct msr_batch m = {.hdr.nmsrs = n};

	if (n > 8)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++)
		m.e[i].index = idx[i];
	if (ioctl(vcpu_fd, KVM_GET_MSRS, &m) != (int)n)
		return -EIO;
	for (unsigned int i = 0; i < n; i++)
		val[i] = m.e[i].data;
	return 0;
}

int msr_set(int vcpu_fd, const uint32_t *idx, const uint64_t *val, unsigned int n)
{
	struct msr_batch m = {.hdr.nmsrs = n};

	if (n > 8)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++)
		m.e[i] = (struct kvm_msr_entry){.index = idx[i], .data = val[i]};
	return ioctl(vcpu_fd, KVM_SET_MSRS, &m) == (int)n ? 0 : -EIO;
}
