/* snapshot.c: the engine's machine state in a snapshot (dbt/dbt.h: dbt_save(), dbt_restore()):
 * the CPU model it presents and every vCPU's architectural state, as fixed-width records that
 * do not depend on how struct emu_vcpu is laid out in memory.
 *
 * What is state: registers (RFLAGS with the lazy arithmetic flags materialized), segments,
 * descriptor tables, control and debug registers, XCR0, the x87/SSE image, the MSRs the core
 * keeps, IA32_APIC_BASE, HLT / wait-for-SIPI / interrupt shadow, whether an AP was started,
 * and INIT/SIPI requests not yet taken. What is not: translated code, chains and the software
 * TLBs (a restore runs on a fresh engine, which translates again), counters.
 *
 * Time: the guest's TSC is the engine's clock (CLOCK_MONOTONIC ns at 1 GHz, cpu_model.c) plus
 * each vCPU's offset. A record holds the TSC value the guest saw at the snapshot's instant
 * (now), and a restore sets the offset so that the TSC goes on from that value at the
 * restore's instant: it neither jumps over the time between the two nor goes back. Asked to
 * (Firecracker's clock_realtime), a restore moves every TSC on by the host's real time since
 * the snapshot instead, as KVM_CLOCK_REALTIME does for KVM's clock, so a guest keeping time
 * from its TSC wakes with the host's date. */
#define pr_fmt(fmt) "dbt: " fmt
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapfile.h"
#include "dbt_internal.h"
#include "util/log.h"

/* CPUID leaves (leaf, subleaf) that make up the model's identity. */
static const uint32_t model_leaves[][2] = {
	{0, 0}, {1, 0}, {7, 0}, {0xd, 0}, {0xd, 1}, {0x15, 0}, {0x16, 0},
	{0x40000000, 0}, {0x80000000, 0}, {0x80000001, 0}, {0x80000008, 0},
};
#define MODEL_LEAVES (sizeof(model_leaves) / sizeof(model_leaves[0]))

/* SNAP_DBT_MODEL: the CPU the guest was shown (CPUID as vCPU 0 sees it) and the instruction
 * core's features behind it. A guest picked its code paths from these at boot. */
struct dbt_model_state {
	uint32_t cpuid[MODEL_LEAVES][6];	/* leaf, subleaf, EAX, EBX, ECX, EDX */
	uint64_t xcr0_mask;
	uint32_t xsave_offset[EMU_XSAVE_COMPONENTS], xsave_size[EMU_XSAVE_COMPONENTS];
	uint32_t xsave_align64, maxphyaddr;
	uint32_t features;			/* emu_features' flags, bit per field */
	uint32_t pad;
};
_Static_assert(sizeof(struct dbt_model_state) == MODEL_LEAVES * 24 + 8 + 80 + 16,
	       "dbt_model_state has no holes");

/* SNAP_DBT_ENGINE: requests other threads made that no vCPU took yet, and the host's real
 * time at the snapshot's instant (for a restore that moves the guest's clock on by the time
 * since). */
struct dbt_engine_state {
	uint32_t ncpus, pad;
	uint64_t pending_init, pending_sipi;	/* bit per vCPU */
	uint64_t realtime;			/* CLOCK_REALTIME, ns */
	uint8_t sipi_vector[DBT_MAX_CPUS];
};
_Static_assert(sizeof(struct dbt_engine_state) == 32 + DBT_MAX_CPUS, "dbt_engine_state");

struct dbt_seg_state {
	uint64_t base;
	uint32_t limit;
	uint16_t sel;
	uint8_t type, s, dpl, present, db, l, g, pad[3];
};
_Static_assert(sizeof(struct dbt_seg_state) == 24, "dbt_seg_state has no holes");

/* SNAP_DBT_CPU, per vCPU. */
struct dbt_cpu_state {
	uint64_t gpr[16];
	uint64_t rip, rflags;
	struct dbt_seg_state seg[EMU_NSREG], tr, ldt;
	uint64_t gdt_base, idt_base;
	uint32_t gdt_limit, idt_limit;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, xcr0;
	uint64_t tsc;			/* what RDTSC returned at the snapshot's instant */
	uint64_t tsc_aux;
	uint64_t dr[8];
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip, pat, misc_enable;
	uint64_t apic_base;
	uint8_t halted, wait_sipi, int_shadow, started, pad[4];
	uint8_t xsave[EMU_XSAVE_SIZE];
};
_Static_assert(sizeof(struct dbt_cpu_state) ==
		       18 * 8 + 8 * 24 + 16 + 8 + 7 * 8 + 16 + 64 + 11 * 8 + 8 + EMU_XSAVE_SIZE,
	       "dbt_cpu_state has no holes");

/* RFLAGS bits that are reserved (read as 0): 3, 5, 15, 22-63; bit 1 reads as 1. */
#define RFLAGS_RESERVED (0xffffffffffc00000ull | (1u << 15) | (1u << 5) | (1u << 3))
/* IA32_APIC_BASE: BSP (8), global enable (11) and the base; x2APIC (10) is not offered. */
#define APIC_BASE_VALID 0x000ffffffffff900ull

static void model_state(struct dbt *d, struct dbt_model_state *m)
{
	const struct emu_features *f = &d->features;
	const bool flags[] = {f->xsaveopt, f->xsavec, f->xsaves, f->xgetbv1, f->popcnt, f->lzcnt,
			      f->bmi1, f->smap, f->rdtscp, f->rdpid, f->monitor, f->invpcid,
			      f->cx16, f->sse, f->avx, f->fxsr, f->avx2, f->avx512f};

	memset(m, 0, sizeof(*m));
	for (unsigned int i = 0; i < MODEL_LEAVES; i++) {
		m->cpuid[i][0] = model_leaves[i][0];
		m->cpuid[i][1] = model_leaves[i][1];
		dbt_cpuid(&d->cpus[0].v, model_leaves[i][0], model_leaves[i][1], &m->cpuid[i][2]);
	}
	m->xcr0_mask = f->xcr0_mask;
	memcpy(m->xsave_offset, f->xsave_offset, sizeof(m->xsave_offset));
	memcpy(m->xsave_size, f->xsave_size, sizeof(m->xsave_size));
	m->xsave_align64 = f->xsave_align64;
	m->maxphyaddr = f->maxphyaddr;
	for (unsigned int i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		m->features |= (uint32_t)flags[i] << i;
}

static void seg_save(const struct emu_seg *s, struct dbt_seg_state *o)
{
	*o = (struct dbt_seg_state){.base = s->base, .limit = s->limit, .sel = s->sel,
				    .type = s->type, .s = s->s, .dpl = s->dpl,
				    .present = s->present, .db = s->db, .l = s->l, .g = s->g};
}

static bool seg_load(const struct dbt_seg_state *o, struct emu_seg *s)
{
	if (o->type > 15 || o->s > 1 || o->dpl > 3 || o->present > 1 || o->db > 1 || o->l > 1 ||
	    o->g > 1 || o->pad[0] || o->pad[1] || o->pad[2])
		return false;
	*s = (struct emu_seg){.base = o->base, .limit = o->limit, .sel = o->sel, .type = o->type,
			      .s = o->s, .dpl = o->dpl, .present = o->present, .db = o->db,
			      .l = o->l, .g = o->g};
	return true;
}

static void cpu_save(struct dbt_cpu *c, struct dbt_cpu_state *o, uint64_t now)
{
	const struct emu_vcpu *v = &c->v;
	const struct emu_cpu *cpu = &v->cpu;

	memset(o, 0, sizeof(*o));
	memcpy(o->gpr, cpu->gpr, sizeof(o->gpr));
	o->rip = cpu->rip;
	o->rflags = emu_flags(v);
	for (unsigned int s = 0; s < EMU_NSREG; s++)
		seg_save(&cpu->seg[s], &o->seg[s]);
	seg_save(&cpu->tr, &o->tr);
	seg_save(&cpu->ldt, &o->ldt);
	o->gdt_base = cpu->gdt_base;
	o->idt_base = cpu->idt_base;
	o->gdt_limit = cpu->gdt_limit;
	o->idt_limit = cpu->idt_limit;
	o->cr0 = cpu->cr0, o->cr2 = cpu->cr2, o->cr3 = cpu->cr3, o->cr4 = cpu->cr4;
	o->cr8 = cpu->cr8, o->efer = cpu->efer, o->xcr0 = cpu->xcr0;
	/* NOTE: now + offset is emu's RDTSC (op_system.c) with the engine's clock at (now). */
	o->tsc = now + v->msr.tsc_offset;
	o->tsc_aux = cpu->tsc_aux;
	memcpy(o->dr, cpu->dr, sizeof(o->dr));
	o->star = v->msr.star, o->lstar = v->msr.lstar, o->cstar = v->msr.cstar;
	o->sfmask = v->msr.sfmask, o->kernel_gs_base = v->msr.kernel_gs_base;
	o->sysenter_cs = v->msr.sysenter_cs, o->sysenter_esp = v->msr.sysenter_esp;
	o->sysenter_eip = v->msr.sysenter_eip, o->pat = v->msr.pat;
	o->misc_enable = v->msr.misc_enable;
	o->apic_base = v->apic_base;
	o->halted = v->halted, o->wait_sipi = v->wait_sipi, o->int_shadow = v->int_shadow;
	o->started = c->started;
	memcpy(o->xsave, cpu->xsave, sizeof(o->xsave));
}

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

/* Checks (o) whole, then loads it into (c): nothing changes when it is refused. */
static int cpu_load(struct dbt *d, struct dbt_cpu *c, const struct dbt_cpu_state *o,
		    uint64_t now, uint64_t advance, char *err, size_t errlen)
{
	struct emu_vcpu *v = &c->v;
	struct emu_seg seg[EMU_NSREG], tr, ldt;
	unsigned int i = v->index;
	bool ok = seg_load(&o->tr, &tr) && seg_load(&o->ldt, &ldt);

	for (unsigned int s = 0; s < EMU_NSREG; s++)
		ok = ok && seg_load(&o->seg[s], &seg[s]);
	if (!ok)
		return bad(err, errlen, "vCPU %u: a segment register is malformed", i);
	if ((o->rflags & RFLAGS_RESERVED) || !(o->rflags & 2))
		return bad(err, errlen, "vCPU %u: RFLAGS 0x%llx sets reserved bits", i,
			   (unsigned long long)o->rflags);
	if (!(o->xcr0 & 1) || (o->xcr0 & ~(d->features.xcr0_mask | 1)))
		return bad(err, errlen, "vCPU %u: XCR0 0x%llx is not one this CPU model allows", i,
			   (unsigned long long)o->xcr0);
	if (o->apic_base & ~APIC_BASE_VALID || o->gdt_limit > 0xffff || o->idt_limit > 0xffff ||
	    o->tsc_aux > 0xffffffffull)
		return bad(err, errlen, "vCPU %u: IA32_APIC_BASE, a descriptor table limit or "
			   "TSC_AUX is out of range", i);
	if (o->halted > 1 || o->wait_sipi > 1 || o->int_shadow > 1 || o->started > 1 ||
	    o->pad[0] || o->pad[1] || o->pad[2] || o->pad[3])
		return bad(err, errlen, "vCPU %u: its run state is malformed", i);
	memcpy(v->cpu.gpr, o->gpr, sizeof(o->gpr));
	v->cpu.rip = o->rip;
	emu_flags_set(v, o->rflags);
	memcpy(v->cpu.seg, seg, sizeof(seg));
	v->cpu.tr = tr;
	v->cpu.ldt = ldt;
	v->cpu.gdt_base = o->gdt_base;
	v->cpu.idt_base = o->idt_base;
	v->cpu.gdt_limit = (uint16_t)o->gdt_limit;
	v->cpu.idt_limit = (uint16_t)o->idt_limit;
	v->cpu.cr0 = o->cr0, v->cpu.cr2 = o->cr2, v->cpu.cr3 = o->cr3, v->cpu.cr4 = o->cr4;
	v->cpu.cr8 = o->cr8, v->cpu.efer = o->efer, v->cpu.xcr0 = o->xcr0;
	v->cpu.tsc_aux = o->tsc_aux;
	memcpy(v->cpu.dr, o->dr, sizeof(o->dr));
	v->cpu.dirty = 0;
	memcpy(v->cpu.xsave, o->xsave, sizeof(o->xsave));
	v->msr.star = o->star, v->msr.lstar = o->lstar, v->msr.cstar = o->cstar;
	v->msr.sfmask = o->sfmask, v->msr.kernel_gs_base = o->kernel_gs_base;
	v->msr.sysenter_cs = o->sysenter_cs, v->msr.sysenter_esp = o->sysenter_esp;
	v->msr.sysenter_eip = o->sysenter_eip, v->msr.pat = o->pat;
	v->msr.misc_enable = o->misc_enable;
	v->msr.tsc_offset = o->tsc + advance - now; /* the TSC goes on from o->tsc */
	v->apic_base = o->apic_base;
	v->halted = o->halted, v->wait_sipi = o->wait_sipi, v->int_shadow = o->int_shadow;
	v->fpu_elsewhere = false;
	c->started = o->started;
	/* Derived state (mode, CPL, segment bases, breakpoints) and an empty TLB. */
	emu_vcpu_mode_changed(v, true);
	/* Whatever the interrupt controllers hold for it is looked at before its first block. */
	atomic_store(&c->irq_check, true);
	return 0;
}

struct emu_vcpu *dbt_vcpu(struct dbt *d, unsigned int i)
{
	return i < d->ncpus ? &d->cpus[i].v : NULL;
}

int dbt_save(struct dbt *d, struct snap_writer *w, uint64_t now, uint64_t realtime)
{
	struct dbt_model_state m;
	struct dbt_engine_state e = {.ncpus = d->ncpus, .realtime = realtime};
	struct dbt_cpu_state *o;

	if (d->native_on) {
		pr_err("snapshots of --accel hybrid machines are not supported (guest user state "
		       "lives in KVM): use --accel dbt or kvm");
		return -ENOTSUP;
	}
	o = malloc(sizeof(*o));
	if (!o)
		return -ENOMEM;
	model_state(d, &m);
	snap_put(w, SNAP_DBT_MODEL, 0, &m, sizeof(m));
	e.pending_init = atomic_load(&d->pending_init);
	e.pending_sipi = atomic_load(&d->pending_sipi);
	pthread_mutex_lock(&d->lock);
	memcpy(e.sipi_vector, d->sipi_vector, sizeof(e.sipi_vector));
	pthread_mutex_unlock(&d->lock);
	snap_put(w, SNAP_DBT_ENGINE, 0, &e, sizeof(e));
	for (unsigned int i = 0; i < d->ncpus; i++) {
		cpu_save(&d->cpus[i], o, now);
		snap_put(w, SNAP_DBT_CPU, i, o, sizeof(*o));
	}
	free(o);
	return 0;
}

int dbt_restore(struct dbt *d, const struct snap_reader *r, uint64_t now, uint64_t realtime,
		char *err, size_t errlen)
{
	const struct dbt_model_state *pm = snap_get(r, SNAP_DBT_MODEL, 0, sizeof(*pm));
	const struct dbt_engine_state *pe = snap_get(r, SNAP_DBT_ENGINE, 0, sizeof(*pe));
	struct dbt_model_state m, here;
	struct dbt_engine_state e;
	uint64_t all, advance;

	if (!pm || !pe)
		return bad(err, errlen, "the state file has no engine state (CPU model, requests)");
	memcpy(&m, pm, sizeof(m));
	memcpy(&e, pe, sizeof(e));
	/* The vCPU count first: CPUID leaf 1 says it too. */
	all = d->ncpus == 64 ? ~0ull : (1ull << d->ncpus) - 1;
	if (e.ncpus != d->ncpus || e.pad || (e.pending_init & ~all) || (e.pending_sipi & ~all))
		return bad(err, errlen, "the engine state is for %u vCPUs, or malformed; this "
			   "machine has %u", e.ncpus, d->ncpus);
	model_state(d, &here);
	for (unsigned int i = 0; i < MODEL_LEAVES; i++)
		if (memcmp(m.cpuid[i], here.cpuid[i], sizeof(m.cpuid[i])))
			return bad(err, errlen, "the snapshot was taken with another CPU model: "
				   "CPUID leaf 0x%x.%u is %08x %08x %08x %08x there, %08x %08x "
				   "%08x %08x here", here.cpuid[i][0], here.cpuid[i][1],
				   m.cpuid[i][2], m.cpuid[i][3], m.cpuid[i][4], m.cpuid[i][5],
				   here.cpuid[i][2], here.cpuid[i][3], here.cpuid[i][4],
				   here.cpuid[i][5]);
	if (memcmp(&m, &here, sizeof(m)))
		return bad(err, errlen, "the snapshot was taken with another CPU model (the "
			   "engine's instruction features differ)");
	/* A host clock set back since the snapshot moves nothing back. */
	advance = realtime && realtime > e.realtime ? realtime - e.realtime : 0;
	for (unsigned int i = 0; i < d->ncpus; i++) {
		const struct dbt_cpu_state *o = snap_get(r, SNAP_DBT_CPU, i, sizeof(*o));
		int ret;

		if (!o)
			return bad(err, errlen, "the state file has no state for vCPU %u", i);
		ret = cpu_load(d, &d->cpus[i], o, now, advance, err, errlen);
		if (ret)
			return ret;
	}
	pthread_mutex_lock(&d->lock);
	memcpy(d->sipi_vector, e.sipi_vector, sizeof(d->sipi_vector));
	pthread_mutex_unlock(&d->lock);
	atomic_store(&d->pending_init, e.pending_init);
	atomic_store(&d->pending_sipi, e.pending_sipi);
	atomic_store(&d->attention, true);
	return 0;
}
