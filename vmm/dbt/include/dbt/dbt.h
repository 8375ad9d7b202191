/* dbt.h: mvm's own execution engine (--accel dbt): runs whole guests without /dev/kvm on the
 * instruction core of vmm/emu/.
 *
 * Tiers (see README, "The engine"):
 *  1. decode once: a guest basic block is decoded by Zydis into uops (emu/vcpu.h) and kept
 *     in a code cache keyed by (linear RIP, physical address of its first byte, decoder mode);
 *  2. chaining: a direct branch's successor on the same page is linked once known; other
 *     transfers go through the cache's hash table;
 *  3. a bounded code cache, flushed whole when full;
 *  4. self-modifying code: pages that hold translated code are tracked; a store to one (by a
 *     vCPU, or by a device through dbt_dma_written()) invalidates its blocks, including the
 *     one running, before they run again;
 *  5. precise exceptions: uops change nothing when they fault, and REP string instructions
 *     run in bounded chunks, restartable;
 *  6. a software TLB per vCPU, flushed on CR3/CR0/CR4/EFER writes and INVLPG.
 * Interrupts are taken at block boundaries and at HLT; a guest whose vCPUs all halt costs no
 * host CPU. All vCPUs run on one host thread, in turn (a slice of blocks each): guest memory
 * is never touched by two vCPUs at once, so locked instructions need no host atomics and the
 * memory model is sequential consistency between vCPUs.
 */
#ifndef MVM_DBT_DBT_H
#define MVM_DBT_DBT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/bus.h"
#include "core/guest_mem.h"
#include "core/stop.h"

/* The interrupt controllers as the engine uses them (vmm/dev/intc.h in mvm). */
struct dbt_irq_ops {
	bool (*pending)(void *ctx, unsigned int cpu);
	int (*ack)(void *ctx, unsigned int cpu);
	uint64_t (*lapic_read)(void *ctx, unsigned int cpu, uint64_t off, unsigned int size);
	void (*lapic_write)(void *ctx, unsigned int cpu, uint64_t off, uint64_t val,
			    unsigned int size);
	int (*set_apic_base)(void *ctx, unsigned int cpu, uint64_t val);
	void *ctx;
};

struct dbt_config {
	struct guest_mem *mem;		/* borrowed */
	struct bus *pio, *mmio;		/* borrowed */
	struct stop_ctl *stop;		/* borrowed; dbt sets its kick */
	unsigned int ncpus;
	uint64_t cache_bytes;		/* code cache size (0: the default, 64 MiB) */
};

struct dbt;
struct emu_vcpu;

/* Creates the engine and its vCPUs (all at reset; vCPU 0 runs first, the others wait for
 * INIT/SIPI). Returns NULL after logging. */
struct dbt *dbt_create(const struct dbt_config *cfg);
void dbt_destroy(struct dbt *d);

/* Connects the interrupt controllers. Before dbt_run(). */
void dbt_set_irq(struct dbt *d, const struct dbt_irq_ops *ops);

/* Sets vCPU 0's state for a 32-bit protected-mode or 64-bit entry (boot/boot.h's facts,
 * passed as plain values so dbt does not depend on boot/). */
struct dbt_entry {
	bool long_mode;
	uint64_t rip, rsp, rsi, rbx, rflags, cr0, cr3, cr4, efer, gdt_base;
	uint16_t gdt_limit, cs_sel, ds_sel, tr_sel;
};
void dbt_set_entry(struct dbt *d, const struct dbt_entry *e);

/* Runs the guest on the calling thread until a stop is requested. */
void dbt_run(struct dbt *d);

/* For the interrupt controllers (any thread): something may be deliverable to (cpu); INIT;
 * STARTUP IPI. */
void dbt_kick(struct dbt *d, unsigned int cpu);
void dbt_init_cpu(struct dbt *d, unsigned int cpu);
void dbt_sipi(struct dbt *d, unsigned int cpu, uint8_t vector);

/* A device wrote guest RAM [gpa, gpa+len) behind the CPUs' back (DMA): translated code there
 * is dropped before it runs again. Any thread; cheap when the range holds no code. */
void dbt_dma_written(struct dbt *d, uint64_t gpa, uint64_t len);

/* --accel hybrid: guest user mode (CPL3) runs natively elsewhere (kvm/user_mode.h, wired by
 * the CLI) and the engine runs everything else. At each block boundary where the vCPU is at
 * CPL3, the engine calls run(), which returns with the vCPU state back in (v):
 *  DBT_NATIVE_KERNEL: the engine runs the instruction at RIP (a SYSCALL, a faulting
 *   instruction, one the native side cannot run), then goes on;
 *  DBT_NATIVE_TRAP: deliver (*vector) (a #DB trap) at RIP;
 *  DBT_NATIVE_INTERRUPTED: kicked; pending interrupts are taken, then back to run();
 *  DBT_NATIVE_UNSUPPORTED: the engine runs this user code itself;
 *  DBT_NATIVE_ERROR: the machine stops.
 * (flush): page tables the native side may have cached changed (dbt/ptwatch.h).
 * kick() makes a run() in progress return DBT_NATIVE_INTERRUPTED (any thread). User mode reads
 * the TSC natively, so the engine's TSC becomes tsc() at (tsc_khz). */
enum dbt_native_result {
	DBT_NATIVE_KERNEL,
	DBT_NATIVE_TRAP,
	DBT_NATIVE_INTERRUPTED,
	DBT_NATIVE_UNSUPPORTED,
	DBT_NATIVE_ERROR,
};
struct dbt_native_ops {
	int (*run)(void *ctx, struct emu_vcpu *v, bool flush, uint8_t *vector);
	void (*kick)(void *ctx);
	uint64_t (*tsc)(void *ctx);
	/* Brings the x87/SSE state into (v) (run() may leave it where user mode ran, with
	 * v->fpu_elsewhere set). 0 or -1. */
	int (*fpu_fetch)(void *ctx, struct emu_vcpu *v);
	/* Optional: drops every translation the native side holds of guest-physical
	 * [gpa, gpa+len) (dbt/ptwatch.h, point 5). 0, or -1: it flushes all instead. */
	int (*zap)(void *ctx, uint64_t gpa, uint64_t len);
	uint64_t tsc_khz;
	unsigned int window_pml4;	/* the native side's own PML4 slot: not guest page tables */
	void *ctx;
};
/* Before dbt_run(); one vCPU only. Returns 0 or -errno (logged). */
int dbt_set_native_user(struct dbt *d, const struct dbt_native_ops *ops);
/* The CPU model's CPUID as vCPU 0 sees it (for the native side to answer the same). */
void dbt_model_cpuid(struct dbt *d, uint32_t leaf, uint32_t sub, uint32_t out[4]);

/* Snapshots (core/snapfile.h; vmm/dbt/snapshot.c). The engine must not be running: parked by
 * a pause (stop_pause()) or not yet started. (now) is the engine's clock at the snapshot's or
 * the restore's instant: CLOCK_MONOTONIC in ns, the 1 GHz that the guest's TSC counts
 * (cpu_model.c); the guest's TSC goes on at the restore from the value it had at the
 * snapshot.
 * dbt_save() puts the CPU model (SNAP_DBT_MODEL), the INIT/SIPI requests not yet taken and
 * (realtime), the host's CLOCK_REALTIME in ns at (now) (SNAP_DBT_ENGINE), and every vCPU's
 * state (SNAP_DBT_CPU) into (w). Returns 0, or -ENOTSUP under --accel hybrid (logged),
 * -ENOMEM.
 * dbt_restore() checks and loads them into a fresh engine of as many vCPUs: a snapshot of
 * another CPU model or vCPU count, or a malformed record, is refused with -EINVAL and the
 * reason in (err); the engine must then not run. With (realtime) non-zero (the host's
 * CLOCK_REALTIME now) every TSC also moves on by the real time since the snapshot
 * (Firecracker's clock_realtime; none if the host's clock went back). Translated code and
 * TLBs are not state: they are rebuilt as the guest runs. */
struct snap_writer;
struct snap_reader;
/* vCPU (i)'s state, to look at or set while the engine is not running (tests, reports); NULL
 * for a vCPU out of range. */
struct emu_vcpu *dbt_vcpu(struct dbt *d, unsigned int i);
int dbt_save(struct dbt *d, struct snap_writer *w, uint64_t now, uint64_t realtime);
int dbt_restore(struct dbt *d, const struct snap_reader *r, uint64_t now, uint64_t realtime,
		char *err, size_t errlen);

/* --stats: instructions, blocks, cache, chains, invalidations, TLB, time. */
void dbt_print_stats(struct dbt *d, FILE *f);

#endif
