/* intc_internal.h: state of the interrupt-controller models and the calls between them. Every
 * function here runs with intc_state.lock held unless it says otherwise; what must reach the
 * engine (kicks, INIT, SIPI, NMI) is collected in a struct intc_notify and sent after the
 * lock is dropped. */
#ifndef MVM_DEV_INTC_INTERNAL_H
#define MVM_DEV_INTC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/irq.h"
#include "core/loop.h"
#include "dev/intc.h"

#define NSEC_PER_SEC 1000000000ULL
/* The shortest period a periodic timer interrupts at, as KVM's min_timer_period_us. */
#define INTC_MIN_PERIOD_NS 200000ULL

/* ---- CPU sets and deferred notifications ---- */

#define CPUSET_WORDS ((INTC_MAX_CPUS + 63) / 64)

struct cpuset {
	uint64_t w[CPUSET_WORDS];
};

static inline void cpuset_add(struct cpuset *set, unsigned int cpu)
{
	set->w[cpu / 64] |= 1ULL << (cpu % 64);
}

static inline bool cpuset_has(const struct cpuset *set, unsigned int cpu)
{
	return set->w[cpu / 64] >> (cpu % 64) & 1;
}

struct intc_notify {
	struct cpuset kick, init, sipi, nmi;
	uint8_t sipi_vector;
	bool any;
};

static inline void notify_add(struct intc_notify *n, struct cpuset *set, unsigned int cpu)
{
	cpuset_add(set, cpu);
	n->any = true;
}

/* ---- timers: a timerfd whose read stays queued on the loop ---- */

struct intc_state;
struct intc_timer;

/* Lock held; (now) is CLOCK_MONOTONIC ns and at or past the timer's deadline. */
typedef void (*intc_expire_fn)(struct intc_timer *t, uint64_t now, struct intc_notify *n);

struct intc_timer {
	struct loop_op op;
	struct intc_state *s;
	intc_expire_fn expire;
	int fd;
	uint64_t buf;	   /* the expiration count the read returns (unused: time decides) */
	uint64_t deadline; /* CLOCK_MONOTONIC ns of the next expiry; 0: disarmed */
	uint64_t fires;	   /* counter for --stats */
};

uint64_t intc_now(void);
/* Expires (t) at (deadline) (0 disarms); the timerfd is set no earlier than (not_before). */
void intc_timer_arm(struct intc_timer *t, uint64_t deadline, uint64_t not_before);
void intc_timer_disarm(struct intc_timer *t);

/* ---- 8259A pair (pic8259.c) ---- */

struct pic8259 {
	uint8_t last_irr; /* input levels, for edge detection */
	uint8_t irr, imr, isr;
	uint8_t priority_add; /* the IRQ with the lowest priority, plus 1 (rotation) */
	uint8_t irq_base;
	uint8_t read_reg_select; /* OCW3: 0 IRR, 1 ISR */
	uint8_t init_state;	 /* 0 ready, 1-3 expecting ICW2-ICW4 */
	uint8_t elcr, elcr_mask;
	bool poll, special_mask, auto_eoi, rotate_on_auto_eoi, sfnm, init4, single_mode;
	bool master;
};

struct pic_pair {
	struct pic8259 pic[2]; /* master, slave */
	uint64_t spurious;
};

void pic_reset(struct pic_pair *p);
/* Drives PIC input (irq) 0-15 to (level). */
void pic_set_irq(struct pic_pair *p, unsigned int irq, int level);
/* The master's INT output. */
bool pic_output(const struct pic_pair *p);
/* The INTA cycle: the vector of the highest-priority request (IRR -> ISR), or IRQ 7's of the
 * controller that has none (spurious). */
int pic_inta(struct pic_pair *p);
extern const struct bus_ops pic_master_ops, pic_slave_ops, pic_elcr_ops;

/* ---- IOAPIC (ioapic.c) ---- */

#define IOAPIC_PINS INTC_GSIS

#define RTE_VECTOR	  0xffULL
#define RTE_DELMODE_SHIFT 8
#define RTE_DESTMODE	  (1ULL << 11)
#define RTE_DELIVS	  (1ULL << 12)
#define RTE_POLARITY	  (1ULL << 13)
#define RTE_REMOTE_IRR	  (1ULL << 14)
#define RTE_LEVEL	  (1ULL << 15)
#define RTE_MASKED	  (1ULL << 16)
#define RTE_DEST_SHIFT	  56
/* What the guest may write: the read-only delivery status and Remote IRR stay ours. */
#define RTE_LOW_WRITABLE  (0x1ffffULL & ~(RTE_DELIVS | RTE_REMOTE_IRR))
#define RTE_HIGH_WRITABLE (0xffULL << RTE_DEST_SHIFT)

struct ioapic {
	uint32_t id; /* bits 24-27 of the ID register */
	uint32_t ioregsel;
	uint32_t irr; /* asserted input pins */
	uint64_t redtbl[IOAPIC_PINS];
};

void ioapic_reset(struct ioapic *io, uint32_t id);
void ioapic_set_irq(struct intc_state *s, unsigned int pin, int level, struct intc_notify *n);
/* A local APIC's EOI of a level-triggered (vector): clears Remote IRR, redelivers a line
 * still asserted. */
void ioapic_eoi(struct intc_state *s, uint8_t vector, struct intc_notify *n);
extern const struct bus_ops ioapic_ops;

/* ---- local APIC (lapic.c) ---- */

enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_NUM };

#define APIC_BASE_BSP	   (1ULL << 8)
#define APIC_BASE_X2APIC   (1ULL << 10)
#define APIC_BASE_ENABLE   (1ULL << 11)
#define APIC_BASE_RESERVED (0xffULL | (1ULL << 9) | (0xfffULL << 52))
/* What the guest can put in a register (the rest reads as 0 or is fixed). */
#define SVR_WRITABLE	   0x3ffu /* vector, enable, focus check disable */
#define LVT_TIMER_WRITABLE 0x300ffu /* vector, mask, periodic; no TSC deadline */
#define LVT_LINT_WRITABLE  0x1a7ffu /* vector, mode, polarity, trigger, mask */
#define LVT_ERROR_WRITABLE 0x100ffu
#define LVT_OTHER_WRITABLE 0x107ffu /* thermal, perf: vector, mode, mask */
#define ICR_LOW_WRITABLE   0xccfffu /* all but delivery status and reserved bits */
extern const uint32_t lapic_lvt_writable[LVT_NUM];

struct lapic {
	unsigned int cpu;
	uint64_t apic_base;
	uint32_t id; /* the ID register (APIC ID in bits 24-31) */
	uint32_t tpr, ldr, dfr, svr;
	uint32_t esr, esr_pending; /* as read; collected since the last ESR write */
	uint32_t isr[8], tmr[8], irr[8];
	uint32_t icr_lo, icr_hi;
	uint32_t lvt[LVT_NUM];
	uint32_t timer_init, timer_dcr;
	unsigned int timer_div;
	uint64_t timer_start; /* CLOCK_MONOTONIC ns when the current count was timer_init */
	bool timer_running;
	struct intc_timer timer;
	_Atomic bool pending; /* what intc_pending() returns; written with the lock held */
	uint64_t irqs, ipis;
};

void lapic_reset(struct lapic *l, unsigned int cpu);
uint32_t lapic_reg_read(struct intc_state *s, struct lapic *l, uint32_t reg);
void lapic_reg_write(struct intc_state *s, struct lapic *l, uint32_t reg, uint32_t val,
		     struct intc_notify *n);
int lapic_set_base(struct intc_state *s, struct lapic *l, uint64_t val, struct intc_notify *n);
/* Recomputes what intc_pending() says for (cpu); kicks it when that rose or (accepted). */
void lapic_update_pending(struct intc_state *s, unsigned int cpu, bool accepted,
			  struct intc_notify *n);
int lapic_ack(struct intc_state *s, unsigned int cpu, struct intc_notify *n);
void lapic_timer_expire(struct intc_timer *t, uint64_t now, struct intc_notify *n);
/* After (l)'s registers were loaded from a snapshot: the divider from the DCR, and the timer
 * armed from timer_start as (now) finds it. */
void lapic_timer_restart(struct lapic *l, uint64_t now);

/* A message on the APIC bus: an IOAPIC entry or an ICR write. Delivery modes as in the ICR. */
#define APIC_DM_FIXED	0
#define APIC_DM_LOWEST	1
#define APIC_DM_SMI	2
#define APIC_DM_NMI	4
#define APIC_DM_INIT	5
#define APIC_DM_STARTUP 6
#define APIC_DM_EXTINT	7

struct apic_msg {
	uint8_t vector, mode, dest;
	bool logical, level;
};

/* Delivers (m) to the local APICs it addresses. Returns how many accepted it. */
unsigned int apic_deliver(struct intc_state *s, const struct apic_msg *m, struct intc_notify *n);

/* ---- 8254 PIT and port 0x61 (pit8254.c) ---- */

struct pit_channel {
	uint32_t count; /* reload value, 1-0x10000 */
	uint16_t latched_count;
	uint8_t count_latched; /* RW_* of the latched count still to read, 0: none */
	bool status_latched;
	uint8_t status;
	uint8_t read_state, write_state, write_latch;
	uint8_t rw_mode, mode;
	bool bcd;
	bool gate;
	bool loaded;	      /* a count was written since the control word */
	bool triggered;	      /* modes 1 and 5: a gate rising edge started the count */
	uint64_t load_ns;     /* when counting started, shifted by the time the gate paused it */
	uint64_t gate_low_ns; /* when the gate fell */
};

struct pit8254 {
	struct pit_channel ch[3];
	bool speaker_data;	/* port 0x61 bit 1 */
	bool refresh;		/* port 0x61 bit 4, toggles on every read */
	uint64_t next_irq_tick; /* channel 0: PIT clock of the next OUT rising edge */
	struct intc_timer timer;
	uint64_t irqs;
};

void pit_reset(struct pit8254 *p);
void pit_timer_expire(struct intc_timer *t, uint64_t now, struct intc_notify *n);
/* After (p) was loaded from a snapshot: channel 0's timer armed for its next edge. */
void pit_restart(struct pit8254 *p);
extern const struct bus_ops pit_ops, port61_ops;

/* ---- the whole (intc.c) ---- */

struct intc_state {
	pthread_mutex_t lock;
	struct irq_chip chip;
	unsigned int ncpus;
	const struct intc_ops *ops;
	void *ctx;
	struct loop *loop;
	struct pic_pair pic;
	struct ioapic ioapic;
	struct pit8254 pit;
	unsigned int lowest_rr; /* round robin among equals in lowest-priority delivery */
	uint64_t gsi_raised[INTC_GSIS];
	uint64_t extint_acks;
	struct lapic lapic[]; /* ncpus */
};

void intc_lock(struct intc_state *s);
/* Drops the lock and sends what (n) collected. */
void intc_unlock(struct intc_state *s, struct intc_notify *n);
/* Drives (gsi) to (level) on the IOAPIC and PIC. */
void intc_set_gsi_locked(struct intc_state *s, unsigned int gsi, int level, struct intc_notify *n);

/* Port I/O of more than one byte is a sequence of byte accesses at successive ports;
 * (port) is relative to the device's base. The helpers take and drop the lock. */
typedef uint8_t (*intc_pio_read_fn)(struct intc_state *s, unsigned int port, struct intc_notify *n);
typedef void (*intc_pio_write_fn)(struct intc_state *s, unsigned int port, uint8_t val,
				  struct intc_notify *n);
uint64_t intc_pio_read(struct intc_state *s, intc_pio_read_fn fn, uint64_t off, unsigned int size);
void intc_pio_write(struct intc_state *s, intc_pio_write_fn fn, uint64_t off, uint64_t val,
		    unsigned int size);

#endif
