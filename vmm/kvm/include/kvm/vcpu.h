/* vcpu.h: one KVM vCPU, its thread and its exit dispatch. */
#ifndef MVM_KVM_VCPU_H
#define MVM_KVM_VCPU_H

#include <pthread.h>
#include <stdbool.h>

#include "boot/boot.h"

struct vm;
struct kvm_run;

struct vcpu {
	struct vm *vm;		/* borrowed: the VM owns its vCPUs */
	unsigned int index;	/* also the APIC id */
	int fd;
	struct kvm_run *run;	/* mmap of the vCPU fd */
	pthread_t thread;
	bool thread_started;
	uint64_t guest_lstar, guest_cstar; /* what the guest wrote (syscall_trap.c) */
};

/* Creates vCPU (index) of (vm) with the VM's CPUID policy (APIC id set) and boot MSRs.
 * Returns 0 or -errno after logging. */
int vcpu_init(struct vcpu *v, struct vm *vm, unsigned int index);
void vcpu_fini(struct vcpu *v);

/* Loads registers for entry at a boot loader's entry point. Before the thread starts. */
int vcpu_set_boot_state(struct vcpu *v, const struct boot_cpu *b);

/* Starts the vCPU thread: KVM_RUN and exit dispatch until the machine stops. */
int vcpu_start(struct vcpu *v);
/* Wakes the vCPU out of KVM_RUN (it then sees the stop request). Any thread. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);

/* Prints the vCPU's registers, mode and CPL to stderr (for crash reports). */
void vcpu_dump(struct vcpu *v, const char *why);

/* Installs the process-wide handler for the kick signal. Once, before any vCPU starts. */
int vcpu_signals_init(void);

#endif
