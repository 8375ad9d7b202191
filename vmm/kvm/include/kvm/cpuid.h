/* cpuid.h: the CPUID the guest sees. The policy is written down in cpuid.c. */
#ifndef MVM_KVM_CPUID_H
#define MVM_KVM_CPUID_H

struct vm;
struct kvm_cpuid2;

/* Builds vm->cpuid from KVM_GET_SUPPORTED_CPUID and the policy for vm->ncpus vCPUs.
 * Returns 0 or -errno after logging. */
int cpuid_init(struct vm *vm);
void cpuid_fini(struct vm *vm);

/* Sets vCPU (index)'s CPUID (the policy with its APIC id) with KVM_SET_CPUID2. */
int cpuid_apply(struct vm *vm, int vcpu_fd, unsigned int index);

/* Edits (c) for vCPU (index) of (ncpus): topology and APIC ids. Pure; unit-tested. */
void cpuid_set_topology(struct kvm_cpuid2 *c, unsigned int index, unsigned int ncpus);

#endif
