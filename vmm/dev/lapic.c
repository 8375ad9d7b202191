/* lapic.c: the local APIC in xAPIC mode, one per vCPU (SDM vol. 3 chapter 10 "Advanced
 * Programmable Interrupt Controller"): ID, version 0x50014 (six LVT entries, no EOI-broadcast
 * suppression), TPR/PPR, EOI with the broadcast to the IOAPIC for level vectors, LDR/DFR (flat
 * and cluster logical destinations), SVR software enable, ISR/TMR/IRR, ESR, the ICR (fixed,
 * lowest priority, NMI, INIT, STARTUP; the shorthands), LVT timer/thermal/perf/LINT0/LINT1/
 * error, and the timer in one-shot and periodic modes at 1 GHz before the divider (as KVM and
 * QEMU clock it). Not offered: x2APIC, TSC-deadline mode, SMI, the CMCI LVT, focus processor
 * checks, LINT0/LINT1 inputs other than the PIC's ExtINT on CPU 0. */
#define pr_fmt(fmt) "lapic: " fmt
#include "intc_internal.h"

#include <errno.h>
#include <string.h>

#include "core/layout.h"
#include "util/log.h"
#include "util/util.h"

#define APIC_ID		0x020
#define APIC_VERSION	0x030
#define APIC_TPR	0x080
#define APIC_APR	0x090
#define APIC_PPR	0x0a0
#define APIC_EOI	0x0b0
#define APIC_RRD	0x0c0
#define APIC_LDR	0x0d0
#define APIC_DFR	0x0e0
#define APIC_SVR	0x0f0
#define APIC_ISR	0x100
#define APIC_TMR	0x180
#define APIC_IRR	0x200
#define APIC_ESR	0x280
#define APIC_LVT_CMCI	0x2f0
#define APIC_ICR_LOW	0x300
#define APIC_ICR_HIGH	0x310
#define APIC_LVT_BASE	0x320
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_CUR	0x390
#define APIC_TIMER_DCR	0x3e0

/* Version 0x14 (integrated APIC), max LVT entry 5, no directed EOI (bit 24). */
#define APIC_VERSION_VALUE 0x50014u

#define SVR_ENABLE	   0x100u
#define LVT_MASKED	   (1u << 16)
#define LVT_PERIODIC	   (1u << 17)
#define LVT_MODE(v)	   (((v) >> 8) & 7)
#define ICR_LOGICAL	   (1u << 11)
#define ICR_ASSERT	   (1u << 14)
#define ICR_LEVEL	   (1u << 15)
#define ICR_SHORTHAND(v)   (((v) >> 18) & 3)

#define ESR_SEND_ILLEGAL_VECTOR 0x20u
#define ESR_RECV_ILLEGAL_VECTOR 0x40u
#define ESR_ILLEGAL_REGISTER	0x80u

enum { SH_NONE, SH_SELF, SH_ALL, SH_OTHERS };

const uint32_t lapic_lvt_writable[LVT_NUM] = {
	[LVT_TIMER] = LVT_TIMER_WRITABLE, [LVT_THERMAL] = LVT_OTHER_WRITABLE,
	[LVT_PERF] = LVT_OTHER_WRITABLE,  [LVT_LINT0] = LVT_LINT_WRITABLE,
	[LVT_LINT1] = LVT_LINT_WRITABLE,  [LVT_ERROR] = LVT_ERROR_WRITABLE,
};

/* ---- vector bitmaps in register layout: bit v of word v / 32 ---- */

static void vec_set(uint32_t *map, unsigned int v)
{
	map[v / 32] |= 1u << (v % 32);
}

static void vec_clear(uint32_t *map, unsigned int v)
{
	map[v / 32] &= ~(1u << (v % 32));
}

static bool vec_test(const uint32_t *map, unsigned int v)
{
	return map[v / 32] >> (v % 32) & 1;
}

static int vec_highest(const uint32_t *map)
{
	for (int w = 7; w >= 0; w--)
		if (map[w])
			return w * 32 + 31 - __builtin_clz(map[w]);
	return -1;
}

static bool hw_enabled(const struct lapic *l)
{
	return l->apic_base & APIC_BASE_ENABLE;
}

static bool sw_enabled(const struct lapic *l)
{
	return l->svr & SVR_ENABLE;
}

static uint32_t ppr(const struct lapic *l)
{
	int isrv = vec_highest(l->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;

	return (l->tpr & 0xf0) >= isr_class ? l->tpr & 0xff : isr_class;
}

/* The IRR vector the CPU would take now, or -1. */
static int irr_deliverable(const struct lapic *l)
{
	int v = vec_highest(l->irr);

	if (v < 0 || ((uint32_t)v & 0xf0) <= (ppr(l) & 0xf0))
		return -1;
	return v;
}

/* The PIC reaches CPU 0 through LINT0 in ExtINT mode (virtual wire), or straight when the
 * APIC is globally disabled: KVM's kvm_apic_accept_pic_intr(). */
static bool extint_accepted(const struct lapic *l)
{
	uint32_t lvt0 = l->lvt[LVT_LINT0];

	if (l->cpu != 0)
		return false;
	if (!hw_enabled(l))
		return true;
	return !(lvt0 & LVT_MASKED) && LVT_MODE(lvt0) == APIC_DM_EXTINT;
}

static bool compute_pending(struct intc_state *s, const struct lapic *l)
{
	if (hw_enabled(l) && irr_deliverable(l) >= 0)
		return true;
	return l->cpu == 0 && extint_accepted(l) && pic_output(&s->pic);
}

void lapic_update_pending(struct intc_state *s, unsigned int cpu, bool accepted,
			  struct intc_notify *n)
{
	struct lapic *l = &s->lapic[cpu];
	bool now = compute_pending(s, l);
	bool was = atomic_load_explicit(&l->pending, memory_order_relaxed);

	if (now != was)
		atomic_store_explicit(&l->pending, now, memory_order_release);
	if (now && (!was || accepted))
		notify_add(n, &n->kick, cpu);
}

/* ---- acceptance ---- */

static bool accept_fixed(struct intc_state *s, struct lapic *l, unsigned int vector, bool level,
			 struct intc_notify *n);

/* Records an error in the ESR and raises the LVT error interrupt if it is set up. */
static void lapic_error(struct intc_state *s, struct lapic *l, uint32_t bit, struct intc_notify *n)
{
	uint32_t lvt = l->lvt[LVT_ERROR];

	l->esr_pending |= bit;
	/* An illegal error vector would only report itself again: not delivered. */
	if (!(lvt & LVT_MASKED) && (lvt & 0xff) >= 16)
		accept_fixed(s, l, lvt & 0xff, false, n);
}

static bool accept_fixed(struct intc_state *s, struct lapic *l, unsigned int vector, bool level,
			 struct intc_notify *n)
{
	/* As KVM: a software-disabled APIC drops fixed interrupts. */
	if (!hw_enabled(l) || !sw_enabled(l))
		return false;
	if (vector < 16) {
		pr_warn_once("cpu %u: interrupt with illegal vector %u: dropped, ESR set", l->cpu,
			     vector);
		lapic_error(s, l, ESR_RECV_ILLEGAL_VECTOR, n);
		return false;
	}
	vec_set(l->irr, vector);
	if (level)
		vec_set(l->tmr, vector);
	else
		vec_clear(l->tmr, vector);
	l->irqs++;
	lapic_update_pending(s, l->cpu, true, n);
	return true;
}

/* Power-up and INIT state of everything but the ID and IA32_APIC_BASE (SDM 10.4.7.3). */
static void reset_regs(struct lapic *l)
{
	l->tpr = 0;
	l->ldr = 0;
	l->dfr = 0xffffffffu;
	l->svr = 0xff;
	l->esr = 0;
	l->esr_pending = 0;
	memset(l->isr, 0, sizeof(l->isr));
	memset(l->tmr, 0, sizeof(l->tmr));
	memset(l->irr, 0, sizeof(l->irr));
	l->icr_lo = 0;
	l->icr_hi = 0;
	for (unsigned int i = 0; i < LVT_NUM; i++)
		l->lvt[i] = LVT_MASKED;
	l->timer_init = 0;
	l->timer_dcr = 0;
	l->timer_div = 2;
	l->timer_running = false;
}

void lapic_reset(struct lapic *l, unsigned int cpu)
{
	l->cpu = cpu;
	l->id = cpu << 24;
	l->apic_base = LAYOUT_LAPIC | APIC_BASE_ENABLE | (cpu == 0 ? APIC_BASE_BSP : 0);
	reset_regs(l);
	atomic_store(&l->pending, false);
}

static void init_reset(struct intc_state *s, struct lapic *l, struct intc_notify *n)
{
	reset_regs(l);
	intc_timer_disarm(&l->timer);
	lapic_update_pending(s, l->cpu, false, n);
}

/* ---- the APIC bus ---- */

static bool dest_match(const struct lapic *l, uint8_t dest, bool logical)
{
	uint8_t ldr = (uint8_t)(l->ldr >> 24);

	if (!hw_enabled(l))
		return false;
	if (dest == 0xff)
		return true; /* broadcast, physical or logical */
	if (!logical)
		return dest == (uint8_t)(l->id >> 24);
	switch (l->dfr >> 28) {
	case 0xf: /* flat: one bit per CPU */
		return ldr & dest;
	case 0x0: /* cluster: cluster in the high nibble, a CPU bit in the low one */
		return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf);
	default:
		pr_warn_once("cpu %u: DFR model 0x%x is reserved: no logical match", l->cpu,
			     l->dfr >> 28);
		return false;
	}
}

/* Lowest-priority arbitration among (targets): the lowest PPR, equals in turn. */
static struct lapic *lowest_priority(struct intc_state *s, const struct cpuset *targets)
{
	struct lapic *best = NULL;
	uint32_t best_ppr = 0;

	for (unsigned int i = 0; i < s->ncpus; i++) {
		unsigned int cpu = (s->lowest_rr + i) % s->ncpus;
		struct lapic *l = &s->lapic[cpu];

		if (!cpuset_has(targets, cpu) || !sw_enabled(l))
			continue;
		if (!best || (ppr(l) & 0xf0) < best_ppr) {
			best = l;
			best_ppr = ppr(l) & 0xf0;
		}
	}
	if (best)
		s->lowest_rr = (best->cpu + 1) % s->ncpus;
	return best;
}

/* Delivers (m) to (targets). Returns how many APICs took it. */
static unsigned int deliver_to(struct intc_state *s, const struct apic_msg *m,
			       const struct cpuset *targets, struct intc_notify *n)
{
	unsigned int count = 0;
	struct lapic *l;

	if (m->mode == APIC_DM_LOWEST) {
		l = lowest_priority(s, targets);
		return l && accept_fixed(s, l, m->vector, m->level, n);
	}
	for (unsigned int cpu = 0; cpu < s->ncpus; cpu++) {
		if (!cpuset_has(targets, cpu))
			continue;
		l = &s->lapic[cpu];
		switch (m->mode) {
		case APIC_DM_FIXED:
			count += accept_fixed(s, l, m->vector, m->level, n);
			break;
		case APIC_DM_NMI:
			notify_add(n, &n->nmi, cpu);
			count++;
			break;
		case APIC_DM_INIT:
			init_reset(s, l, n);
			notify_add(n, &n->init, cpu);
			count++;
			break;
		case APIC_DM_STARTUP:
			n->sipi_vector = m->vector;
			notify_add(n, &n->sipi, cpu);
			count++;
			break;
		default:
			pr_warn_once("delivery mode %u not supported: dropped", m->mode);
			return 0;
		}
	}
	return count;
}

unsigned int apic_deliver(struct intc_state *s, const struct apic_msg *m, struct intc_notify *n)
{
	struct cpuset targets = {0};

	for (unsigned int cpu = 0; cpu < s->ncpus; cpu++)
		if (dest_match(&s->lapic[cpu], m->dest, m->logical))
			cpuset_add(&targets, cpu);
	return deliver_to(s, m, &targets, n);
}

/* A write of ICR low: send the IPI it describes (SDM 10.6.1). Delivery is instant, so the
 * delivery status bit always reads idle. */
static void send_ipi(struct intc_state *s, struct lapic *l, struct intc_notify *n)
{
	uint32_t lo = l->icr_lo;
	struct apic_msg m = {
		.vector = (uint8_t)lo,
		.mode = (uint8_t)LVT_MODE(lo),
		.dest = (uint8_t)(l->icr_hi >> 24),
		.logical = lo & ICR_LOGICAL,
	};
	struct cpuset targets = {0};

	l->ipis++;
	switch (m.mode) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		if (m.vector < 16) {
			pr_warn_once("cpu %u: IPI with illegal vector %u: dropped, ESR set", l->cpu,
				     m.vector);
			lapic_error(s, l, ESR_SEND_ILLEGAL_VECTOR, n);
			return;
		}
		break;
	case APIC_DM_INIT:
		/* INIT level de-assert (82489DX era): no effect on integrated APICs. */
		if (!(lo & ICR_ASSERT) && (lo & ICR_LEVEL))
			return;
		break;
	case APIC_DM_NMI:
	case APIC_DM_STARTUP:
		break;
	default:
		pr_warn_once("cpu %u: IPI delivery mode %u not supported: dropped", l->cpu, m.mode);
		return;
	}
	for (unsigned int cpu = 0; cpu < s->ncpus; cpu++) {
		bool hit;

		switch (ICR_SHORTHAND(lo)) {
		case SH_SELF:
			hit = cpu == l->cpu;
			break;
		case SH_ALL:
			hit = hw_enabled(&s->lapic[cpu]);
			break;
		case SH_OTHERS:
			hit = cpu != l->cpu && hw_enabled(&s->lapic[cpu]);
			break;
		default:
			hit = dest_match(&s->lapic[cpu], m.dest, m.logical);
			break;
		}
		if (hit)
			cpuset_add(&targets, cpu);
	}
	deliver_to(s, &m, &targets, n);
}

/* ---- timer ---- */

static bool timer_periodic(const struct lapic *l)
{
	return l->lvt[LVT_TIMER] & LVT_PERIODIC;
}

static uint64_t timer_period(const struct lapic *l)
{
	return (uint64_t)l->timer_init * l->timer_div;
}

/* Ticks since the count was last loaded. NOTE: timer_start may lie "before" boot when a
 * divider change rebased it; unsigned wrap-around keeps the differences right. */
static uint64_t timer_ticks(const struct lapic *l, uint64_t now)
{
	return (now - l->timer_start) / l->timer_div;
}

static uint32_t timer_current(const struct lapic *l, uint64_t now)
{
	uint64_t ticks;

	if (!l->timer_running || !l->timer_init)
		return 0;
	ticks = timer_ticks(l, now);
	if (timer_periodic(l))
		return l->timer_init - (uint32_t)(ticks % l->timer_init);
	return ticks >= l->timer_init ? 0 : l->timer_init - (uint32_t)ticks;
}

/* Arms the next expiry from the programmed start: periods never drift, and a late callback
 * skips the periods already past (they coalesce into the one interrupt just raised). */
static void timer_arm_next(struct lapic *l, uint64_t now, bool after_expiry)
{
	uint64_t period = timer_period(l), k = 1, not_before = 0;

	if (timer_periodic(l)) {
		k = (now - l->timer_start) / period + 1;
		if (after_expiry && period < INTC_MIN_PERIOD_NS) {
			pr_warn_once("cpu %u: periodic timer of %llu ns interrupts every %llu ns",
				     l->cpu, (unsigned long long)period, INTC_MIN_PERIOD_NS);
			not_before = now + INTC_MIN_PERIOD_NS;
		}
	}
	intc_timer_arm(&l->timer, l->timer_start + k * period, not_before);
}

static void timer_load(struct lapic *l, uint64_t now)
{
	if (!l->timer_init) {
		l->timer_running = false;
		intc_timer_disarm(&l->timer);
		return;
	}
	l->timer_start = now;
	l->timer_running = true;
	timer_arm_next(l, now, false);
}

void lapic_timer_restart(struct lapic *l, uint64_t now)
{
	uint32_t code = (l->timer_dcr & 3) | (l->timer_dcr & 8) >> 1;

	l->timer_div = code == 7 ? 1 : 2u << code;
	if (l->timer_running && l->timer_init)
		timer_arm_next(l, now, false);
	else
		intc_timer_disarm(&l->timer);
}

void lapic_timer_expire(struct intc_timer *t, uint64_t now, struct intc_notify *n)
{
	struct lapic *l = container_of(t, struct lapic, timer);
	uint32_t lvt = l->lvt[LVT_TIMER];

	if (!l->timer_running || !l->timer_init) {
		intc_timer_disarm(t);
		return;
	}
	if (!(lvt & LVT_MASKED))
		accept_fixed(t->s, l, lvt & 0xff, false, n);
	if (timer_periodic(l)) {
		timer_arm_next(l, now, true);
	} else {
		l->timer_running = false;
		t->deadline = 0; /* the one-shot timerfd disarmed itself */
	}
}

/* ---- registers ---- */

uint32_t lapic_reg_read(struct intc_state *s, struct lapic *l, uint32_t reg)
{
	if (reg >= APIC_ISR && reg < APIC_ISR + 0x80)
		return l->isr[(reg - APIC_ISR) >> 4];
	if (reg >= APIC_TMR && reg < APIC_TMR + 0x80)
		return l->tmr[(reg - APIC_TMR) >> 4];
	if (reg >= APIC_IRR && reg < APIC_IRR + 0x80)
		return l->irr[(reg - APIC_IRR) >> 4];
	if (reg >= APIC_LVT_BASE && reg < APIC_LVT_BASE + LVT_NUM * 0x10)
		return l->lvt[(reg - APIC_LVT_BASE) >> 4];
	switch (reg) {
	case APIC_ID:
		return l->id;
	case APIC_VERSION:
		return APIC_VERSION_VALUE;
	case APIC_TPR:
		return l->tpr;
	case APIC_PPR:
		return ppr(l);
	case APIC_LDR:
		return l->ldr;
	case APIC_DFR:
		return l->dfr;
	case APIC_SVR:
		return l->svr;
	case APIC_ESR:
		return l->esr;
	case APIC_ICR_LOW:
		return l->icr_lo;
	case APIC_ICR_HIGH:
		return l->icr_hi;
	case APIC_TIMER_INIT:
		return l->timer_init;
	case APIC_TIMER_CUR:
		return timer_current(l, intc_now());
	case APIC_TIMER_DCR:
		return l->timer_dcr;
	default: /* APR, EOI, RRD, CMCI and reserved registers */
		return 0;
	}
}

static void write_eoi(struct intc_state *s, struct lapic *l, struct intc_notify *n)
{
	int v = vec_highest(l->isr);

	if (v < 0)
		return;
	vec_clear(l->isr, (unsigned int)v);
	if (vec_test(l->tmr, (unsigned int)v))
		ioapic_eoi(s, (uint8_t)v, n);
	lapic_update_pending(s, l->cpu, false, n);
}

static void write_lvt(struct intc_state *s, struct lapic *l, unsigned int idx, uint32_t val,
		      struct intc_notify *n)
{
	uint32_t old = l->lvt[idx];

	val &= lapic_lvt_writable[idx];
	/* A software-disabled APIC keeps every LVT masked (SDM 10.4.7.2). */
	if (!sw_enabled(l))
		val |= LVT_MASKED;
	l->lvt[idx] = val;
	if (idx == LVT_TIMER && ((old ^ val) & LVT_PERIODIC) && l->timer_running) {
		uint64_t now = intc_now(), period = timer_period(l);

		/* Periodic to one-shot: the current period becomes the one shot. */
		if (!(val & LVT_PERIODIC))
			l->timer_start += (now - l->timer_start) / period * period;
		timer_arm_next(l, now, false);
	}
	if (idx == LVT_LINT0)
		lapic_update_pending(s, l->cpu, false, n);
}

static void write_dcr(struct lapic *l, uint32_t val)
{
	uint32_t code = (val & 3) | (val & 8) >> 1;
	uint64_t now = intc_now(), elapsed;

	elapsed = l->timer_init - timer_current(l, now);
	l->timer_dcr = val & 0xb;
	l->timer_div = code == 7 ? 1 : 2u << code;
	/* The count goes on from where it is, at the new rate. */
	if (l->timer_running) {
		l->timer_start = now - elapsed * l->timer_div;
		timer_arm_next(l, now, false);
	}
}

void lapic_reg_write(struct intc_state *s, struct lapic *l, uint32_t reg, uint32_t val,
		     struct intc_notify *n)
{
	if (reg >= APIC_LVT_BASE && reg < APIC_LVT_BASE + LVT_NUM * 0x10) {
		write_lvt(s, l, (reg - APIC_LVT_BASE) >> 4, val, n);
		return;
	}
	switch (reg) {
	case APIC_ID:
		l->id = val & 0xff000000u;
		break;
	case APIC_TPR:
		l->tpr = val & 0xff;
		lapic_update_pending(s, l->cpu, false, n);
		break;
	case APIC_EOI:
		write_eoi(s, l, n);
		break;
	case APIC_LDR:
		l->ldr = val & 0xff000000u;
		break;
	case APIC_DFR:
		l->dfr = val | 0x0fffffffu;
		break;
	case APIC_SVR:
		l->svr = val & SVR_WRITABLE;
		if (!sw_enabled(l)) {
			for (unsigned int i = 0; i < LVT_NUM; i++)
				l->lvt[i] |= LVT_MASKED;
			lapic_update_pending(s, l->cpu, false, n);
		}
		break;
	case APIC_ESR:
		/* The write latches the errors seen since the previous write (SDM 10.5.3). */
		l->esr = l->esr_pending;
		l->esr_pending = 0;
		break;
	case APIC_ICR_LOW:
		l->icr_lo = val & ICR_LOW_WRITABLE;
		send_ipi(s, l, n);
		break;
	case APIC_ICR_HIGH:
		l->icr_hi = val & 0xff000000u;
		break;
	case APIC_TIMER_INIT:
		l->timer_init = val;
		timer_load(l, intc_now());
		break;
	case APIC_TIMER_DCR:
		write_dcr(l, val);
		break;
	case APIC_VERSION:
	case APIC_APR:
	case APIC_PPR:
	case APIC_RRD:
	case APIC_TIMER_CUR:
		break; /* read-only */
	default:
		if (reg >= APIC_ISR && reg < APIC_IRR + 0x80)
			break; /* ISR, TMR, IRR: read-only */
		pr_warn_once("cpu %u: write to reserved register 0x%x: dropped, ESR set", l->cpu,
			     reg);
		lapic_error(s, l, ESR_ILLEGAL_REGISTER, n);
		break;
	}
}

int lapic_set_base(struct intc_state *s, struct lapic *l, uint64_t val, struct intc_notify *n)
{
	if (val & APIC_BASE_RESERVED) {
		pr_warn_once("cpu %u: IA32_APIC_BASE 0x%llx sets reserved bits", l->cpu,
			     (unsigned long long)val);
		return -EINVAL;
	}
	if (val & APIC_BASE_X2APIC) {
		pr_warn_once("cpu %u: x2APIC mode is not offered", l->cpu);
		return -EINVAL;
	}
	/* Clearing the global enable is a reset of the APIC (SDM 10.4.3); the ID stays. */
	if (hw_enabled(l) && !(val & APIC_BASE_ENABLE)) {
		reset_regs(l);
		intc_timer_disarm(&l->timer);
	}
	/* Which CPU is the BSP is not the guest's to change. */
	l->apic_base = (val & ~APIC_BASE_BSP) | (l->apic_base & APIC_BASE_BSP);
	lapic_update_pending(s, l->cpu, false, n);
	return 0;
}

int lapic_ack(struct intc_state *s, unsigned int cpu, struct intc_notify *n)
{
	struct lapic *l = &s->lapic[cpu];
	int v;

	/* ExtINT first, as KVM's kvm_cpu_get_interrupt(): it bypasses the priority logic. */
	if (cpu == 0 && extint_accepted(l) && pic_output(&s->pic)) {
		v = pic_inta(&s->pic);
		s->extint_acks++;
		lapic_update_pending(s, cpu, false, n);
		return v;
	}
	v = hw_enabled(l) ? irr_deliverable(l) : -1;
	if (v >= 0) {
		vec_clear(l->irr, (unsigned int)v);
		vec_set(l->isr, (unsigned int)v);
	}
	lapic_update_pending(s, cpu, false, n);
	return v;
}
