/* syscall_trap.h: making SYSCALL from guest user mode work on KVM-PVM, which does not
 * virtualize it (KVM-HOST.md). The design and its limits are described in syscall_trap.c. */
#ifndef MVM_KVM_SYSCALL_TRAP_H
#define MVM_KVM_SYSCALL_TRAP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/guest_mem.h"
#include <stdint.h>

struct vm;
struct vcpu;

/* Guest-linear addresses of the traps: a 2 MiB window in the PML4 slot Linux documents as an
 * unused hole (Documentation/x86/x86_64/mm.rst: ffffc88000000000, 0.5 TB). */
#define SYSCALL_TRAP_LA		0xffffc88000000000ull
#define SYSCALL_TRAP_LSTAR	(SYSCALL_TRAP_LA + 0x000)	/* 64-bit SYSCALL */
#define SYSCALL_TRAP_CSTAR	(SYSCALL_TRAP_LA + 0x100)	/* compatibility-mode SYSCALL */
#define SYSCALL_TRAP_PML4_INDEX 401

enum syscall_trap_mode { SYSCALL_TRAP_AUTO, SYSCALL_TRAP_ON, SYSCALL_TRAP_OFF };

/* Reads MVM_SYSCALL_TRAP (auto, on, off); auto means on exactly when the backend is PVM. */
enum syscall_trap_mode syscall_trap_mode_from_env(void);

/* The window's tables (core/layout.h: the PDPT and PD behind PML4 slot 401, and the 2 MiB
 * user page with no memory behind it), written into reserved guest RAM. False when (mem) does
 * not cover them. */
bool syscall_trap_tables(const struct guest_mem *mem);
/* Fills PML4 slot 401 of the page tables at (cr3) with the window's entry if it is empty.
 * True when the slot holds the window (now or before); false with the guest's own entry in
 * (*old), or 0 when (cr3) is not RAM. */
bool syscall_trap_fill_slot(const struct guest_mem *mem, uint64_t cr3, uint64_t *old);

/* Arms the mechanism for (vm): user-space MSR exits now; the MSR filter on LSTAR and CSTAR
 * from syscall_trap_start(). Returns 0 or -errno after logging. */
int syscall_trap_init(struct vm *vm);
/* Once the vCPUs exist: sets the MSR filter on a thread of its own, so its SRCU grace period
 * (~14 ms on KVM-PVM) is not on the way to the first instruction; once it is in place each
 * vCPU runs syscall_trap_reconcile() before it next enters the guest.
 * Until then a guest RDMSR of LSTAR/CSTAR reads KVM's value (the trap address after a
 * restore). Returns 0 or -errno after logging. */
int syscall_trap_start(struct vm *vm);
/* Joins the filter thread. */
void syscall_trap_fini(struct vm *vm);
/* On the vCPU thread, once vm->trap_filter_ready: takes over an LSTAR/CSTAR the guest wrote
 * straight into KVM before the filter routed its writes to mvm, as if the write had exited. */
void syscall_trap_reconcile(struct vcpu *v);

/* Handles KVM_EXIT_X86_RDMSR/WRMSR for the filtered MSRs. Returns true when handled. */
bool syscall_trap_msr_exit(struct vcpu *v);

/* Handles an emulation-failure exit that is a trapped SYSCALL: performs the architectural
 * SYSCALL into the guest kernel. Returns true when it was one (and was handled). */
bool syscall_trap_emulation_exit(struct vcpu *v);

#endif
