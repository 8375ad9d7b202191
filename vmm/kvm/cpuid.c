/* cpuid.c: the guest's CPUID, derived from what KVM supports on this host.
 *
 * Policy: the guest sees KVM_GET_SUPPORTED_CPUID with these changes, and nothing else hidden.
 * - Leaf 0x1 EBX[31:24] and leaf 0xB EDX: the vCPU's APIC id (= its index, as in the MP
 *   table); EBX[23:16] the logical processor count, EDX.HTT set when there is more than one.
 * - Leaf 0x1 ECX.TSC_DEADLINE: set when KVM has KVM_CAP_TSC_DEADLINE_TIMER. KVM emulates the
 *   TSC-deadline timer in its in-kernel LAPIC but cannot report it as "supported" because it
 *   depends on the irqchip, so every VMM sets it itself.
 * - Leaf 0x4 EAX[31:26] and leaf 0xB: one thread per core, all vCPUs cores of one package, so
 *   the guest's topology agrees with the MP table. Leaf 0x80000008 ECX[7:0] says the same on
 *   AMD.
 * - Leaves 0x80000002-0x80000004 (brand string): the host CPU's when KVM gives them empty.
 * - Leaf 0xA (architectural PMU): zeroed. mvm offers no virtual PMU, and on KVM-PVM hosts
 *   RDPMC faults; advertising counters the guest cannot use only makes it probe them.
 * Instructions that KVM-PVM hands back to the VMM (popcnt, xsave family, ...) stay advertised:
 * finishing them is the instruction emulator's job, not the policy's.
 *
 * NOTE: on KVM-PVM the guest's CPUID instruction does not return this policy (measured: leaf 1
 * ECX 0xf7f83203 in the guest against 0x81202000 here): it reflects the host CPU, minus what PVM
 * masks. The policy is still set, for VMX/SVM and for KVM's own use; the emulator follows what
 * the guest really sees (emulate.c asks the guest), and cli/main.c adds "nopv" for SMP guests there.
 */
#define pr_fmt(fmt) "cpuid: " fmt
#include "kvm/cpuid.h"

#include <cpuid.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm/vm.h"
#include "util/log.h"

#define CPUID_MAX_ENTRIES 256

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_EDX_HTT		 (1u << 28)

static size_t cpuid_bytes(unsigned int nent)
{
	return sizeof(struct kvm_cpuid2) + nent * sizeof(struct kvm_cpuid_entry2);
}

static unsigned int order_base2(unsigned int n)
{
	unsigned int shift = 0;

	while ((1u << shift) < n)
		shift++;
	return shift;
}

void cpuid_set_topology(struct kvm_cpuid2 *c, unsigned int index, unsigned int ncpus)
{
	unsigned int core_shift = order_base2(ncpus);

	for (unsigned int i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 0x1:
			e->ebx = (e->ebx & 0x0000ffff) | (index << 24) | ((ncpus & 0xff) << 16);
			if (ncpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 0x4:
			/* Cores per package - 1, as a power of two; threads sharing: 1. */
			e->eax = (e->eax & 0x03ffc3ff) | (((1u << core_shift) - 1) << 26);
			break;
		case 0xb:
			/* Level 0: SMT, one thread per core. Level 1: cores of one package. */
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = (1u << 8) | 0;
			} else if (e->index == 1) {
				e->eax = core_shift;
				e->ebx = ncpus;
				e->ecx = (2u << 8) | 1;
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;
			}
			e->edx = index;
			break;
		case 0x80000008:
			e->ecx = (e->ecx & ~0xf0ffu) | ((ncpus - 1) & 0xff);
			break;
		}
	}
}

/* Leaves 80000002H-80000004H, the brand string: some hosts' KVM_GET_SUPPORTED_CPUID (KVM-PVM
 * here) returns them empty while leaf 80000000H covers them, and an empty brand string is no
 * CPU's (SDM Vol. 2A CPUID). The host CPU's own, as QEMU's -cpu host gives. */
static void brand_from_host(struct kvm_cpuid_entry2 *e)
{
	__cpuid(e->function, e->eax, e->ebx, e->ecx, e->edx);
}

int cpuid_init(struct vm *vm)
{
	unsigned int nent = CPUID_MAX_ENTRIES;
	struct kvm_cpuid2 *c = calloc(1, cpuid_bytes(nent));

	if (!c)
		return -ENOMEM;
	c->nent = nent;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int ret = -errno;

		pr_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		free(c);
		return ret;
	}
	for (unsigned int i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 0x1 && vm->tsc_deadline)
			e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
		if (e->function == 0xa)
			e->eax = e->ebx = e->ecx = e->edx = 0;
		if (e->function >= 0x80000002 && e->function <= 0x80000004 &&
		    !(e->eax | e->ebx | e->ecx | e->edx))
			brand_from_host(e);
	}
	vm->cpuid = c;
	return 0;
}

void cpuid_fini(struct vm *vm)
{
	free(vm->cpuid);
	vm->cpuid = NULL;
}

int cpuid_apply(struct vm *vm, int vcpu_fd, unsigned int index)
{
	struct kvm_cpuid2 *c = malloc(cpuid_bytes(vm->cpuid->nent));
	int ret = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, vm->cpuid, cpuid_bytes(vm->cpuid->nent));
	cpuid_set_topology(c, index, vm->ncpus);
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0) {
		ret = -errno;
		pr_err("KVM_SET_CPUID2 on vCPU %u: %s", index, strerror(errno));
	}
	free(c);
	return ret;
}
