/* vcpu.h: one KVM vCPU, its thread and its exit dispatch. */
#ifndef MVM_KVM_VCPU_H
#define MVM_KVM_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "boot/boot.h"

struct vm;
struct kvm_run;

/* Exits counted per vCPU, by what mvm did with them (--stats, the API's metrics). */
enum vcpu_exit_kind {
	VCPU_EXIT_IO,		/* port I/O to a device */
	VCPU_EXIT_MMIO,		/* MMIO to a device */
	VCPU_EXIT_MSR,		/* an MSR access routed to mvm (the SYSCALL takeover) */
	VCPU_EXIT_EMULATION,	/* an instruction KVM handed back, finished by mvm */
	VCPU_EXIT_INTR,		/* a kick or a signal (KVM_EXIT_INTR, EINTR) */
	VCPU_EXIT_OTHER,
	VCPU_EXIT_KINDS,
};
extern const char *const vcpu_exit_names[VCPU_EXIT_KINDS];

struct vcpu {
	struct vm *vm;		/* borrowed: the VM owns its vCPUs */
	unsigned int index;	/* also the APIC id */
	int fd;
	struct kvm_run *run;	/* mmap of the vCPU fd */
	pthread_t thread;
	bool thread_started;
	uint64_t guest_lstar, guest_cstar; /* what the guest wrote (syscall_trap.c) */
	bool trap_reconciled;		/* syscall_trap_reconcile() ran after the filter came */
	/* Written by the vCPU thread only (a relaxed load and store, no locked instruction on
	 * the exit path), read by anyone. */
	_Atomic uint64_t exits[VCPU_EXIT_KINDS];
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
