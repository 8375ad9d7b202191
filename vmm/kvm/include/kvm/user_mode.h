/* user_mode.h: guest user mode (CPL3) on KVM for mvm's engine: the native half of
 * --accel hybrid. On KVM-PVM hosts guest user code runs natively while guest kernel code is
 * interpreted by the host at ~1.2 M instructions/s (KVM-HOST.md); mvm's engine runs kernel code
 * far faster. So the engine runs the guest at CPL0, and at every return to user mode it hands
 * the user state to this VM, which runs it with KVM_RUN until the guest needs its kernel again:
 *  - SYSCALL: KVM's LSTAR/CSTAR point into mvm's trap window (kvm/syscall_trap.h), whose fetch
 *    exits; the engine then runs the SYSCALL instruction itself (the guest's LSTAR, STAR...).
 *  - exceptions: KVM's IDT is mvm's copy of the guest's (same gates, types, DPL and IST) whose
 *    handlers all point into a page with no memory behind it; the exit comes with the frame on
 *    the guest's kernel stack. The engine goes back to the faulting instruction with the user
 *    state from the frame and runs it: it raises the same fault with the architectural
 *    semantics through the guest's own IDT (and runs what KVM-PVM cannot: int n, popcnt...).
 *  - interrupts from mvm's interrupt controllers: kvm_user_kick() makes KVM_RUN return.
 * The guest keeps seeing its own IDTR, LSTAR and CPUID (KVM answers CPUID from the engine's
 * CPU model). One vCPU per instance; the thread that calls kvm_user_run() is the vCPU thread. */
#ifndef MVM_KVM_USER_MODE_H
#define MVM_KVM_USER_MODE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/bus.h"
#include "core/guest_mem.h"

struct emu_vcpu;
struct kvm_user;

struct kvm_user_config {
	const struct guest_mem *mem;	/* borrowed: the engine's RAM, also KVM's memory slots */
	struct bus *pio, *mmio;		/* borrowed: user-mode port I/O and MMIO that KVM exits on */
};

/* Opens /dev/kvm and creates the VM, its memory slots, one vCPU, and mvm's trap window tables
 * in reserved guest RAM (core/layout.h). Returns NULL after logging. */
struct kvm_user *kvm_user_create(const struct kvm_user_config *cfg);
void kvm_user_destroy(struct kvm_user *k);

/* Gives KVM the CPU model the guest sees (the engine's), every leaf: KVM answers CPUID in user
 * mode itself. Before the first run. Returns 0 or -errno (logged). */
int kvm_user_set_cpuid(struct kvm_user *k,
		       void (*cpuid)(void *ctx, uint32_t leaf, uint32_t sub, uint32_t out[4]),
		       void *ctx);

/* The TSC frequency of KVM's vCPU in kHz: guest user code reads the host's TSC natively, so the
 * engine's TSC must tick with it (kvm_user_tsc()). */
uint64_t kvm_user_tsc_khz(const struct kvm_user *k);
/* The TSC value guest user code would read now. */
uint64_t kvm_user_tsc(const struct kvm_user *k);

enum kvm_user_result {
	KVM_USER_KERNEL,	/* the guest needs its kernel: (v) holds the user state at the
				   instruction the engine must run (SYSCALL, the faulting one) */
	KVM_USER_TRAP,		/* a trap-like exception (*vector, #DB) to deliver after it */
	KVM_USER_INTERRUPTED,	/* kicked: (v) holds the user state to go on with */
	KVM_USER_UNSUPPORTED,	/* this state cannot run in KVM (not 4-level long mode, the
				   window slot taken): the engine runs it */
	KVM_USER_ERROR,		/* KVM failed (logged); the machine must stop */
};

/* Runs (v), which is at CPL3, in KVM until the guest needs its kernel or a kick. (flush):
 * the guest changed page tables KVM may have shadowed (dbt/ptwatch.h): KVM drops every shadow
 * page first. Returns enum kvm_user_result. */
int kvm_user_run(struct kvm_user *k, struct emu_vcpu *v, bool flush, uint8_t *vector);

/* After a run, KVM keeps the x87/SSE state (v->fpu_elsewhere): this brings it into (v).
 * Returns 0 or -errno (logged). */
int kvm_user_fetch_fpu(struct kvm_user *k, struct emu_vcpu *v);

/* Drops KVM's translations of guest-physical [gpa, gpa+len) (guest RAM must be shared memory:
 * guest_mem_alloc_shared(); the host mapping is dropped and KVM's MMU notifier follows).
 * Returns 0 or -errno (logged once). */
int kvm_user_zap(struct kvm_user *k, uint64_t gpa, uint64_t len);

/* Makes a kvm_user_run() in progress (or the next one) return KVM_USER_INTERRUPTED soon. Any
 * thread. */
void kvm_user_kick(struct kvm_user *k);

/* --stats: entries, exits by kind, time in KVM, shadow flushes. */
void kvm_user_print_stats(const struct kvm_user *k, FILE *f);

#endif
