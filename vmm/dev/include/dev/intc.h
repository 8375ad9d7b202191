/* intc.h: the PC interrupt controllers and timers as user-space models, for CPU engines that
 * run without KVM's in-kernel irqchip (--accel dbt): the 8259A PIC pair with its ELCR, the
 * 82093AA IOAPIC, one xAPIC local APIC per vCPU and the 8254 PIT with port 0x61.
 *
 * Wiring (as KVM's default GSI routing and mvm's MP table describe it): GSI n drives IOAPIC
 * pin n (0-23) and, for n < 16 other than the cascade input 2, PIC IRQ n. The PIC's output
 * reaches LINT0 of CPU 0 (virtual wire). PIT channel 0 drives GSI 0. APIC IDs are the vCPU
 * indices; CPU 0 is the BSP.
 *
 * Time: the PIT counts at 1.193182 MHz and the APIC timer at 1 GHz before its divider, both
 * from CLOCK_MONOTONIC. Expiries are timerfds read on the I/O thread's loop; a periodic timer
 * is computed from its programmed start (no drift), and ticks the guest missed coalesce into
 * one pending interrupt. Periods below 200 us (PIT modes 2/3, periodic APIC timer) are
 * stretched to 200 us as KVM does, so a guest cannot flood the I/O thread.
 *
 * Threads: all entry points are safe from any thread; one mutex inside serializes the models.
 * The engine's callbacks (struct intc_ops) are called with that mutex released. */
#ifndef MVM_DEV_INTC_H
#define MVM_DEV_INTC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/bus.h"
#include "core/irq.h"
#include "core/loop.h"

/* vCPUs the models serve: xAPIC IDs 0-254 (255 is the broadcast ID). */
#define INTC_MAX_CPUS 254

#define INTC_PIC_MASTER_PORT 0x20  /* and 0x21 */
#define INTC_PIC_SLAVE_PORT  0xa0  /* and 0xa1 */
#define INTC_ELCR_PORT	     0x4d0 /* and 0x4d1 */
#define INTC_PIT_PORT	     0x40  /* 0x40-0x43 */
#define INTC_PORT_B	     0x61  /* system control port B: PIT channel 2 gate and output */
#define INTC_IOAPIC_SIZE     0x100 /* IOREGSEL at 0, IOWIN at 0x10, EOI at 0x40 (as KVM) */
#define INTC_GSIS	     24

/* Provided by the CPU engine. Called on any thread (the I/O thread for timers and device
 * lines, a vCPU thread for IPIs), never with the intc mutex held, so they may call back into
 * intc. */
struct intc_ops {
	/* An interrupt may now be deliverable to (cpu): wake it from HLT and have it check
	 * intc_pending() at its next instruction boundary. Sent when (cpu) has an acceptable
	 * interrupt that is new (the pending state rose, or one more interrupt was accepted);
	 * the engine latches it, and checks intc_pending() itself again whenever it sets
	 * RFLAGS.IF or leaves an interrupt shadow. Required. */
	void (*kick)(void *ctx, unsigned int cpu);
	/* INIT (level assert) reached (cpu). Its local APIC is already reset. Optional (NULL:
	 * dropped, logged once). */
	void (*init)(void *ctx, unsigned int cpu);
	/* STARTUP IPI: start (cpu) at vector << 12 in real mode if it waits for a SIPI.
	 * Optional. */
	void (*sipi)(void *ctx, unsigned int cpu, uint8_t vector);
	/* An NMI (ICR, IOAPIC or LVT delivery mode NMI) reached (cpu). Optional (NULL: NMIs are
	 * dropped, logged once). */
	void (*nmi)(void *ctx, unsigned int cpu);
};

struct intc_state;

struct intc {
	struct intc_state *s; /* owned: the models, their lock and their timers */
};

/* Creates the models for (ncpus) vCPUs (1 to INTC_MAX_CPUS) in their reset state, with one
 * timerfd per timer (the PIT and each local APIC) whose read is queued on (loop). (ops) and
 * (ctx) are borrowed and must outlive intc; ops->kick must be set. Call before loop_start()
 * (the reads are queued with loop_sqe()). Returns 0, -EINVAL or -errno of timerfd_create or
 * the allocation, with a message. */
int intc_init(struct intc *ic, unsigned int ncpus, struct loop *loop, const struct intc_ops *ops,
	      void *ctx);
/* Disarms and closes the timers and frees the models. Call after loop_join() (no timer
 * callback may run any more) and after the last vCPU stopped calling in. */
void intc_fini(struct intc *ic);

/* The interrupt lines devices drive: gsi 0-23, level 0 or 1 (1 = asserted, whatever the
 * pin's programmed polarity; edge devices pulse 1 then 0). Other GSIs are dropped (logged
 * once). Any thread. The pointer lives as long as (ic). */
struct irq_chip *intc_irq_chip(struct intc *ic);

/* Registers the PIC (0x20-0x21, 0xa0-0xa1), ELCR (0x4d0-0x4d1), PIT (0x40-0x43) and port
 * 0x61 on (pio) and the IOAPIC (INTC_IOAPIC_SIZE bytes at LAYOUT_IOAPIC) on (mmio). Setup
 * only. Returns 0 or bus_register()'s error (-EEXIST when a range is taken). */
int intc_attach(struct intc *ic, struct bus *pio, struct bus *mmio);

/* Access to the local APIC of (cpu) at (off) within its 4 KiB xAPIC window, as the engine
 * routes guest MMIO in [apic_base & ~0xfff, +4 KiB) of the accessing vCPU. Reads of 1, 2 or
 * 4 bytes inside one 32-bit register; writes of 4 aligned bytes (others dropped, logged once,
 * as KVM does). While the APIC is disabled in IA32_APIC_BASE reads return all ones and writes
 * are dropped. Any thread, usually (cpu)'s. */
uint64_t intc_lapic_read(struct intc *ic, unsigned int cpu, uint64_t off, unsigned int size);
void intc_lapic_write(struct intc *ic, unsigned int cpu, uint64_t off, uint64_t val,
		      unsigned int size);

/* The IA32_APIC_BASE MSR of (cpu): 0xfee00900 for CPU 0 at reset (BSP, enabled), 0xfee00800
 * for the others. 0 for a CPU out of range. */
uint64_t intc_apic_base(struct intc *ic, unsigned int cpu);
/* A WRMSR of IA32_APIC_BASE. Returns 0, or -EINVAL (the engine raises #GP) for reserved bits
 * (0-7, 9, 52-63) and for x2APIC enable (bit 10: not offered). Clearing the global enable bit
 * resets the local APIC (SDM vol. 3 10.4.3); the base may move (4 KiB aligned). */
int intc_set_apic_base(struct intc *ic, unsigned int cpu, uint64_t val);

/* Whether a maskable interrupt would be accepted by (cpu) now, if RFLAGS.IF=1 and no
 * interrupt shadow: an IRR vector above the processor priority, or (CPU 0) the PIC's output
 * through LINT0 in ExtINT mode or with the APIC globally disabled. Lock-free (one atomic
 * load): call it as often as needed. */
bool intc_pending(struct intc *ic, unsigned int cpu);
/* The interrupt acknowledge cycle of (cpu): returns the vector to deliver now and moves it
 * from IRR to ISR (or runs the PIC's INTA cycle for ExtINT, spurious IRQ 7/15 included), or
 * -1 when nothing is deliverable any more. */
int intc_ack(struct intc *ic, unsigned int cpu);

/* Snapshots (core/snapfile.h; intc_state.c): the PICs, the IOAPIC, the PIT and every local
 * APIC as records of their own (SNAP_INTC_*). (now) is the models' clock (CLOCK_MONOTONIC, ns)
 * at the snapshot's or the restore's instant: timers and counts are saved as the time that had
 * passed at (now) and restored that far before the restore's (now), so they go on where they
 * were. intc_save() takes a consistent view under the models' lock. intc_restore() checks
 * every record (values only a guest's writes could have made, the vCPU count) before it loads
 * any, re-arms the timers and kicks the CPUs that have something to take; -EINVAL with the
 * reason in (err). Before loop_start() or with the engine parked. */
struct snap_writer;
struct snap_reader;
void intc_save(struct intc *ic, struct snap_writer *w, uint64_t now);
int intc_restore(struct intc *ic, const struct snap_reader *r, uint64_t now, char *err,
		 size_t errlen);

/* One line of counters for --stats: interrupts per source, IPIs, timer expiries. */
void intc_print_stats(struct intc *ic, FILE *f);

#endif
