/* vm.h: a KVM virtual machine: /dev/kvm, the VM fd, guest RAM slots, the in-kernel irqchip and
 * PIT, the buses its vCPUs dispatch to, and the vCPU threads. The only layer that issues KVM
 * ioctls (with vcpu.c, cpuid.c and msr.c beside it). */
#ifndef MVM_KVM_VM_H
#define MVM_KVM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "boot/boot.h"
#include "core/bus.h"
#include "core/guest_mem.h"
#include "core/irq.h"
#include "core/memmap.h"
#include "core/stop.h"
#include "emu/emu.h"
#include "emu/vcpu.h"

struct vcpu;
struct kvm_cpuid2;

enum kvm_backend { KVM_BACKEND_UNKNOWN, KVM_BACKEND_VMX, KVM_BACKEND_SVM, KVM_BACKEND_PVM };

#define VM_MAX_CPUS 64

struct vm {
	int kvm_fd;
	int vm_fd;
	int run_size;			/* mmap size of struct kvm_run */
	enum kvm_backend backend;
	struct memmap map;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct irq_chip irqchip;	/* KVM_IRQ_LINE on the in-kernel PIC/IOAPIC */
	struct stop_ctl stop;
	struct kvm_cpuid2 *cpuid;	/* the policy applied to every vCPU (apic ids aside) */
	unsigned int ncpus;
	struct vcpu *vcpus;		/* ncpus entries */
	/* vCPU thread names "fc_vcpu N", as Firecracker's, which tools that pin vCPU threads
	 * look for; "mvm-vcpuN" otherwise. Set before vm_run(). */
	bool fc_thread_names;
	bool tsc_deadline;
	struct emu_features emu_features; /* what the instruction emulator may use (CPUID) */
	bool syscall_trap;		/* SYSCALL from user mode completed by mvm (PVM) */
	/* The trap's MSR filter is set by its own thread while the vCPUs start (it waits for an
	 * SRCU grace period); each vCPU then reconciles its LSTAR/CSTAR (syscall_trap.c). */
	_Atomic bool trap_filter_ready;
	pthread_t trap_thread;
	bool trap_thread_started;
	/* The MSRs a snapshot saves (KVM_GET_MSR_INDEX_LIST, a /dev/kvm ioctl: asked once at
	 * creation, so the thread that snapshots needs no ioctl on /dev/kvm). */
	uint32_t *snapshot_msrs;
	unsigned int nsnapshot_msrs;
	/* Instructions the emulator completed, by Zydis mnemonic (emulate.c, --stats). */
	_Atomic uint64_t emulated[EMU_MNEMONICS];
};

/* Opens /dev/kvm, checks the API version and every capability mvm needs (one message per
 * missing one), creates the VM with (ram_size) bytes of RAM laid out by memmap_build(), the
 * in-kernel irqchip and PIT, and (ncpus) vCPUs with the CPUID policy and boot MSRs.
 * Returns 0 or -errno after logging what failed. On failure nothing is left to destroy. */
int vm_create(struct vm *vm, uint64_t ram_size, unsigned int ncpus);
void vm_destroy(struct vm *vm);

/* Sets the boot vCPU's registers to (cpu). The other vCPUs wait for INIT/SIPI. */
int vm_set_boot_cpu(struct vm *vm, const struct boot_cpu *cpu);

/* Runs one thread per vCPU until a stop is requested, then stops and joins them all. Each vCPU
 * thread takes THREAD_VCPU before its first KVM_RUN, the caller THREAD_CONTROL once every
 * thread exists (core/thread_role.h). Returns 0 or -errno if a thread could not be started
 * (the machine is stopped then). */
int vm_run(struct vm *vm);

/* Kicks every vCPU out of KVM_RUN. Any thread. Used as the stop_ctl kick. */
void vm_kick_all(struct vm *vm);

const char *kvm_backend_name(enum kvm_backend b);
/* Which KVM module backs /dev/kvm (PVM changes what a guest can run: KVM-HOST.md), from
 * /sys/module; UNKNOWN without KVM. Opens nothing. */
enum kvm_backend kvm_detect_backend(void);

/* Binds eventfd (fd) to guest MMIO writes of (len) bytes (1, 2, 4 or 8) at (addr) whose value
 * is (datamatch) (KVM_IOEVENTFD with KVM_IOEVENTFD_FLAG_DATAMATCH): KVM signals (fd) and
 * resumes the vCPU without an exit to mvm. (assign) false removes the binding. Writes with
 * another value still exit as MMIO. The fd stays the caller's; KVM holds its own reference.
 * Returns 0 or -errno (logged as a warning: the caller can fall back to the MMIO exit).
 * Any thread after vm_create(). */
int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned int len, uint64_t datamatch, int fd,
		 bool assign);

/* Makes each write to eventfd (fd) pulse GSI (gsi) of the in-kernel irqchip (KVM_IRQFD):
 * level 1 then 0, i.e. one edge on an edge-triggered IOAPIC pin or ISA IRQ. (assign) false
 * removes it. Returns 0 or -errno (logged). Any thread after vm_create(). */
int vm_irqfd(struct vm *vm, unsigned int gsi, int fd, bool assign);

#endif
