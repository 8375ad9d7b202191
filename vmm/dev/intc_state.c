/* intc_state.c: the interrupt controllers in a snapshot (dev/intc.h: intc_save(),
 * intc_restore()): both 8259As, the IOAPIC, each local APIC and the 8254, as fixed-width
 * records that do not depend on how the models' structs are laid out.
 *
 * Times: the models keep CLOCK_MONOTONIC instants (when a count was loaded, when a gate fell).
 * A record holds them as the time that had passed at the snapshot's instant, and a restore
 * puts them that far before its own instant: a LAPIC timer with 3 ms left fires 3 ms after the
 * restore, a PIT count goes on from where it was, whatever time lay between the two. Counters
 * for --stats are not state. */
#define pr_fmt(fmt) "intc: " fmt
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/snapfile.h"
#include "dev/intc.h"
#include "intc_internal.h"

/* SNAP_INTC_PIC, index 0 master, 1 slave (Intel 8259A datasheet: ICW1-4, OCW1-3 state). */
struct pic_state {
	uint8_t last_irr, irr, imr, isr, priority_add, irq_base, read_reg_select, init_state;
	uint8_t elcr, poll, special_mask, auto_eoi, rotate_on_auto_eoi, sfnm, init4, single_mode;
};
_Static_assert(sizeof(struct pic_state) == 16, "pic_state has no holes");

/* SNAP_INTC_IOAPIC: registers, the asserted input pins, lowest-priority round robin. */
struct ioapic_state {
	uint32_t id, ioregsel, irr, lowest_rr;
	uint64_t redtbl[IOAPIC_PINS];
};
_Static_assert(sizeof(struct ioapic_state) == 16 + 8 * IOAPIC_PINS, "ioapic_state");

/* SNAP_INTC_LAPIC, per vCPU (SDM Vol. 3A chapter 10's registers). */
struct lapic_state {
	uint64_t apic_base;
	uint64_t timer_elapsed;		/* ns since the count was loaded, at the snapshot */
	uint32_t id, tpr, ldr, dfr, svr, esr, esr_pending;
	uint32_t isr[8], tmr[8], irr[8];
	uint32_t icr_lo, icr_hi;
	uint32_t lvt[LVT_NUM];
	uint32_t timer_init, timer_dcr;
	uint8_t timer_running, pad[3];
};
_Static_assert(sizeof(struct lapic_state) == 184, "lapic_state has no holes");

struct pit_channel_state {
	uint64_t load_elapsed;		/* ns since counting started, at the snapshot */
	uint64_t gate_low_elapsed;	/* ns since the gate fell, at the snapshot */
	uint32_t count;
	uint16_t latched_count;
	uint8_t count_latched, status_latched, status, read_state, write_state, write_latch;
	uint8_t rw_mode, mode, bcd, gate, loaded, triggered, pad[6];
};
_Static_assert(sizeof(struct pit_channel_state) == 40, "pit_channel_state has no holes");

/* SNAP_INTC_PIT: the three channels, channel 0's next edge (PIT clocks after loading) and
 * port 0x61. */
struct pit_state {
	struct pit_channel_state ch[3];
	uint64_t next_irq_tick;
	uint8_t speaker_data, refresh, pad[6];
};
_Static_assert(sizeof(struct pit_state) == 3 * 40 + 16, "pit_state has no holes");

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* ---- 8259A ---- */

static void pic_save(const struct pic8259 *p, struct pic_state *o)
{
	*o = (struct pic_state){
		.last_irr = p->last_irr, .irr = p->irr, .imr = p->imr, .isr = p->isr,
		.priority_add = p->priority_add, .irq_base = p->irq_base,
		.read_reg_select = p->read_reg_select, .init_state = p->init_state,
		.elcr = p->elcr, .poll = p->poll, .special_mask = p->special_mask,
		.auto_eoi = p->auto_eoi, .rotate_on_auto_eoi = p->rotate_on_auto_eoi,
		.sfnm = p->sfnm, .init4 = p->init4, .single_mode = p->single_mode,
	};
}

static bool pic_ok(const struct pic8259 *p, const struct pic_state *o)
{
	return o->priority_add <= 7 && !(o->irq_base & 7) && o->read_reg_select <= 1 &&
	       o->init_state <= 3 && !(o->elcr & ~p->elcr_mask) && o->poll <= 1 &&
	       o->special_mask <= 1 && o->auto_eoi <= 1 && o->rotate_on_auto_eoi <= 1 &&
	       o->sfnm <= 1 && o->init4 <= 1 && o->single_mode <= 1;
}

static void pic_load(struct pic8259 *p, const struct pic_state *o)
{
	p->last_irr = o->last_irr, p->irr = o->irr, p->imr = o->imr, p->isr = o->isr;
	p->priority_add = o->priority_add, p->irq_base = o->irq_base;
	p->read_reg_select = o->read_reg_select, p->init_state = o->init_state;
	p->elcr = o->elcr, p->poll = o->poll, p->special_mask = o->special_mask;
	p->auto_eoi = o->auto_eoi, p->rotate_on_auto_eoi = o->rotate_on_auto_eoi;
	p->sfnm = o->sfnm, p->init4 = o->init4, p->single_mode = o->single_mode;
}

/* ---- IOAPIC ---- */

/* Bits an entry can hold: what the guest writes, and delivery status and Remote IRR. */
#define RTE_VALID (RTE_LOW_WRITABLE | RTE_HIGH_WRITABLE | RTE_DELIVS | RTE_REMOTE_IRR)

static bool ioapic_ok(const struct intc_state *s, const struct ioapic_state *o)
{
	if (o->id > 0xf || o->ioregsel > 0xff || o->irr >> IOAPIC_PINS ||
	    o->lowest_rr >= s->ncpus)
		return false;
	for (unsigned int i = 0; i < IOAPIC_PINS; i++)
		if (o->redtbl[i] & ~RTE_VALID)
			return false;
	return true;
}

/* ---- local APIC ---- */

static void lapic_save(const struct lapic *l, struct lapic_state *o, uint64_t now)
{
	memset(o, 0, sizeof(*o));
	o->apic_base = l->apic_base;
	o->timer_elapsed = l->timer_running ? now - l->timer_start : 0;
	o->id = l->id, o->tpr = l->tpr, o->ldr = l->ldr, o->dfr = l->dfr, o->svr = l->svr;
	o->esr = l->esr, o->esr_pending = l->esr_pending;
	memcpy(o->isr, l->isr, sizeof(o->isr));
	memcpy(o->tmr, l->tmr, sizeof(o->tmr));
	memcpy(o->irr, l->irr, sizeof(o->irr));
	o->icr_lo = l->icr_lo, o->icr_hi = l->icr_hi;
	memcpy(o->lvt, l->lvt, sizeof(o->lvt));
	o->timer_init = l->timer_init, o->timer_dcr = l->timer_dcr;
	o->timer_running = l->timer_running;
}

/* Every register holds only what a guest could have put there (lapic.c's write masks). */
static bool lapic_ok(const struct lapic *l, const struct lapic_state *o)
{
	uint64_t bsp = l->cpu == 0 ? APIC_BASE_BSP : 0;

	if ((o->apic_base & (APIC_BASE_RESERVED | APIC_BASE_X2APIC)) ||
	    (o->apic_base & APIC_BASE_BSP) != bsp)
		return false;
	for (unsigned int i = 0; i < LVT_NUM; i++)
		if (o->lvt[i] & ~lapic_lvt_writable[i])
			return false;
	return !(o->id & 0xffffffu) && o->tpr <= 0xff && !(o->ldr & 0xffffffu) &&
	       (o->dfr & 0x0fffffffu) == 0x0fffffffu && !(o->svr & ~SVR_WRITABLE) &&
	       !(o->icr_lo & ~ICR_LOW_WRITABLE) && !(o->icr_hi & 0xffffffu) &&
	       !(o->timer_dcr & ~0xbu) && o->timer_running <= 1 &&
	       (!o->timer_running || o->timer_init) && zero(o->pad, sizeof(o->pad));
}

static void lapic_load(struct lapic *l, const struct lapic_state *o, uint64_t now)
{
	l->apic_base = o->apic_base;
	l->id = o->id, l->tpr = o->tpr, l->ldr = o->ldr, l->dfr = o->dfr, l->svr = o->svr;
	l->esr = o->esr, l->esr_pending = o->esr_pending;
	memcpy(l->isr, o->isr, sizeof(l->isr));
	memcpy(l->tmr, o->tmr, sizeof(l->tmr));
	memcpy(l->irr, o->irr, sizeof(l->irr));
	l->icr_lo = o->icr_lo, l->icr_hi = o->icr_hi;
	memcpy(l->lvt, o->lvt, sizeof(l->lvt));
	l->timer_init = o->timer_init, l->timer_dcr = o->timer_dcr;
	l->timer_running = o->timer_running;
	l->timer_start = o->timer_running ? now - o->timer_elapsed : 0;
	/* Recomputed by lapic_update_pending() once everything is loaded. */
	atomic_store(&l->pending, false);
	lapic_timer_restart(l, now);
}

/* ---- 8254 ---- */

static void pit_save(const struct pit8254 *p, struct pit_state *o, uint64_t now)
{
	memset(o, 0, sizeof(*o));
	for (unsigned int i = 0; i < 3; i++) {
		const struct pit_channel *c = &p->ch[i];
		struct pit_channel_state *oc = &o->ch[i];

		oc->load_elapsed = now - c->load_ns;
		oc->gate_low_elapsed = now - c->gate_low_ns;
		oc->count = c->count, oc->latched_count = c->latched_count;
		oc->count_latched = c->count_latched, oc->status_latched = c->status_latched;
		oc->status = c->status, oc->read_state = c->read_state;
		oc->write_state = c->write_state, oc->write_latch = c->write_latch;
		oc->rw_mode = c->rw_mode, oc->mode = c->mode, oc->bcd = c->bcd;
		oc->gate = c->gate, oc->loaded = c->loaded, oc->triggered = c->triggered;
	}
	o->next_irq_tick = p->next_irq_tick;
	o->speaker_data = p->speaker_data;
	o->refresh = p->refresh;
}

/* Ranges pit8254.c keeps: counts 1-0x10000, access states 0-4 (RW_*), modes 0-5; the gates
 * of channels 0 and 1 are tied high. */
static bool pit_ok(const struct pit_state *o)
{
	for (unsigned int i = 0; i < 3; i++) {
		const struct pit_channel_state *c = &o->ch[i];

		if (!c->count || c->count > 0x10000 || c->count_latched > 4 ||
		    c->status_latched > 1 || c->read_state > 4 || c->write_state > 4 ||
		    c->rw_mode > 3 || c->mode > 5 || c->bcd > 1 || c->gate > 1 || c->loaded > 1 ||
		    c->triggered > 1 || (i < 2 && !c->gate) || !zero(c->pad, sizeof(c->pad)))
			return false;
	}
	return o->speaker_data <= 1 && o->refresh <= 1 && zero(o->pad, sizeof(o->pad));
}

static void pit_load(struct pit8254 *p, const struct pit_state *o, uint64_t now)
{
	for (unsigned int i = 0; i < 3; i++) {
		struct pit_channel *c = &p->ch[i];
		const struct pit_channel_state *oc = &o->ch[i];

		c->load_ns = now - oc->load_elapsed;
		c->gate_low_ns = now - oc->gate_low_elapsed;
		c->count = oc->count, c->latched_count = oc->latched_count;
		c->count_latched = oc->count_latched, c->status_latched = oc->status_latched;
		c->status = oc->status, c->read_state = oc->read_state;
		c->write_state = oc->write_state, c->write_latch = oc->write_latch;
		c->rw_mode = oc->rw_mode, c->mode = oc->mode, c->bcd = oc->bcd;
		c->gate = oc->gate, c->loaded = oc->loaded, c->triggered = oc->triggered;
	}
	p->next_irq_tick = o->next_irq_tick;
	p->speaker_data = o->speaker_data;
	p->refresh = o->refresh;
	pit_restart(p);
}

/* ---- the whole ---- */

void intc_save(struct intc *ic, struct snap_writer *w, uint64_t now)
{
	struct intc_state *s = ic->s;
	struct pic_state pic[2];
	struct ioapic_state io;
	struct pit_state pit;

	intc_lock(s);
	pic_save(&s->pic.pic[0], &pic[0]);
	pic_save(&s->pic.pic[1], &pic[1]);
	io = (struct ioapic_state){.id = s->ioapic.id, .ioregsel = s->ioapic.ioregsel,
				   .irr = s->ioapic.irr, .lowest_rr = s->lowest_rr};
	memcpy(io.redtbl, s->ioapic.redtbl, sizeof(io.redtbl));
	pit_save(&s->pit, &pit, now);
	snap_put(w, SNAP_INTC_PIC, 0, &pic[0], sizeof(pic[0]));
	snap_put(w, SNAP_INTC_PIC, 1, &pic[1], sizeof(pic[1]));
	snap_put(w, SNAP_INTC_IOAPIC, 0, &io, sizeof(io));
	snap_put(w, SNAP_INTC_PIT, 0, &pit, sizeof(pit));
	for (unsigned int i = 0; i < s->ncpus; i++) {
		struct lapic_state l;

		lapic_save(&s->lapic[i], &l, now);
		snap_put(w, SNAP_INTC_LAPIC, i, &l, sizeof(l));
	}
	pthread_mutex_unlock(&s->lock);
}

int intc_restore(struct intc *ic, const struct snap_reader *r, uint64_t now, char *err,
		 size_t errlen)
{
	struct intc_state *s = ic->s;
	const struct pic_state *pic[2] = {snap_get(r, SNAP_INTC_PIC, 0, sizeof(*pic[0])),
					  snap_get(r, SNAP_INTC_PIC, 1, sizeof(*pic[1]))};
	const struct ioapic_state *io = snap_get(r, SNAP_INTC_IOAPIC, 0, sizeof(*io));
	const struct pit_state *pit = snap_get(r, SNAP_INTC_PIT, 0, sizeof(*pit));
	struct intc_notify n = {0};

	if (!pic[0] || !pic[1] || !io || !pit)
		return bad(err, errlen, "the state file has no interrupt controller state (PIC, "
			   "IOAPIC, PIT)");
	if (snap_get(r, SNAP_INTC_LAPIC, s->ncpus, sizeof(struct lapic_state)))
		return bad(err, errlen, "the state file has local APICs for more than %u vCPUs",
			   s->ncpus);
	/* Everything is checked before anything changes. */
	if (!pic_ok(&s->pic.pic[0], pic[0]) || !pic_ok(&s->pic.pic[1], pic[1]))
		return bad(err, errlen, "the 8259A PIC state is malformed");
	if (!ioapic_ok(s, io))
		return bad(err, errlen, "the IOAPIC state is malformed");
	if (!pit_ok(pit))
		return bad(err, errlen, "the 8254 PIT state is malformed");
	for (unsigned int i = 0; i < s->ncpus; i++) {
		const struct lapic_state *l = snap_get(r, SNAP_INTC_LAPIC, i, sizeof(*l));

		if (!l)
			return bad(err, errlen, "the state file has no local APIC for vCPU %u", i);
		if (!lapic_ok(&s->lapic[i], l))
			return bad(err, errlen, "the local APIC state of vCPU %u is malformed", i);
	}
	intc_lock(s);
	pic_load(&s->pic.pic[0], pic[0]);
	pic_load(&s->pic.pic[1], pic[1]);
	s->ioapic.id = io->id;
	s->ioapic.ioregsel = io->ioregsel;
	s->ioapic.irr = io->irr;
	memcpy(s->ioapic.redtbl, io->redtbl, sizeof(s->ioapic.redtbl));
	s->lowest_rr = io->lowest_rr;
	pit_load(&s->pit, pit, now);
	for (unsigned int i = 0; i < s->ncpus; i++) {
		const struct lapic_state *l = snap_get(r, SNAP_INTC_LAPIC, i, sizeof(*l));

		lapic_load(&s->lapic[i], l, now);
	}
	/* What each CPU may take now, with a kick to the engine where something is. */
	for (unsigned int i = 0; i < s->ncpus; i++)
		lapic_update_pending(s, i, false, &n);
	intc_unlock(s, &n);
	return 0;
}
