/* engine.c: the engine's run loop: vCPUs in turn on one thread, blocks looked up or chained,
 * interrupts at block boundaries, exceptions with their escalation (#DF, shutdown), HLT as a
 * wait that costs no host CPU, INIT/SIPI, and the report when the guest needs what mvm lacks. */
#define pr_fmt(fmt) "dbt: " fmt
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dbt_internal.h"
#include "util/log.h"

/* Blocks a vCPU runs before the next one gets its turn (SMP). */
#define SLICE_BLOCKS 4096
/* Blocks a run of blocks may chain through directly (op_branch.c) before the loop here looks
 * at interrupts and the slice again; also bounds the host stack where calls are not tail
 * calls (sanitizer builds). */
#define CHAIN_BUDGET 16

/* The block whose uops (u) belongs to. */
static struct dbt_block *block_of(const struct emu_uop *u)
{
	return (struct dbt_block *)((char *)(u - u->pos) - offsetof(struct dbt_block, uops));
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- platform callbacks of the instruction core --- */

static struct dbt_cpu *cpu_of(struct emu_vcpu *v)
{
	return (struct dbt_cpu *)v;
}

static uint64_t plat_lapic_read(struct emu_vcpu *v, uint64_t off, unsigned int size)
{
	struct dbt *d = cpu_of(v)->d;

	return d->irq.lapic_read ? d->irq.lapic_read(d->irq.ctx, v->index, off, size) : ~0ull;
}

static void plat_lapic_write(struct emu_vcpu *v, uint64_t off, uint64_t val, unsigned int size)
{
	struct dbt *d = cpu_of(v)->d;

	if (d->irq.lapic_write)
		d->irq.lapic_write(d->irq.ctx, v->index, off, val, size);
	/* An EOI or a TPR change may make another interrupt deliverable. */
	atomic_store(&cpu_of(v)->irq_check, true);
}

static int plat_rdmsr(struct emu_vcpu *v, uint32_t msr, uint64_t *val)
{
	switch (msr) {
	case 0x8b:		/* IA32_BIOS_SIGN_ID: microcode revision */
	case 0x17:		/* IA32_PLATFORM_ID */
	case 0x3a:		/* IA32_FEATURE_CONTROL: locked, nothing enabled */
	case 0x140:		/* MISC_FEATURES_ENABLES */
		*val = msr == 0x3a ? 1 : 0;
		return 0;
	default:
		pr_debug("vCPU %u: rdmsr 0x%x: #GP", v->index, msr);
		return -1;
	}
}

static int plat_wrmsr(struct emu_vcpu *v, uint32_t msr, uint64_t val)
{
	struct dbt *d = cpu_of(v)->d;

	if (msr == 0x1b) {
		if (d->irq.set_apic_base && d->irq.set_apic_base(d->irq.ctx, v->index, val))
			return -1;
		v->apic_base = val;
		return 0;
	}
	if (msr == 0x8b || msr == 0x140)
		return 0;
	pr_debug("vCPU %u: wrmsr 0x%x = 0x%llx: #GP", v->index, msr, (unsigned long long)val);
	return -1;
}

/* Pages whose stores the engine must see: translated code, and under --accel hybrid the page
 * tables guest user mode may run on (dbt/ptwatch.h). */
static bool watched(struct dbt *d, uint64_t gpa)
{
	return dbt_is_code_page(d, gpa) || (d->native_on && ptwatch_tracked(&d->ptw, gpa));
}

static void watched_written(struct dbt *d, uint64_t gpa, uint64_t len)
{
	if (dbt_is_code_page(d, gpa) || dbt_is_code_page(d, gpa + len - 1))
		dbt_invalidate(d, gpa, len);
	if (d->native_on)
		ptwatch_written(&d->ptw, gpa, len);
}

static int plat_fpu_fetch(struct emu_vcpu *v)
{
	struct dbt *d = cpu_of(v)->d;

	return d->native.fpu_fetch(d->native.ctx, v);
}

static void plat_code_written(struct emu_vcpu *v, uint64_t gpa, uint64_t len)
{
	watched_written(cpu_of(v)->d, gpa, len);
}

static bool plat_is_code_page(struct emu_vcpu *v, uint64_t gpa)
{
	return watched(cpu_of(v)->d, gpa);
}

/* Stores the emulator's class handlers commit (write log) reach RAM here. */
static void ram_written(void *ctx, uint64_t gpa, uint64_t len)
{
	watched_written(ctx, gpa, len);
}

/* --- wake-ups from other threads --- */

static void attention(struct dbt *d)
{
	atomic_store(&d->attention, true);
	if (d->native_on)
		d->native.kick(d->native.ctx);
	pthread_mutex_lock(&d->lock);
	if (d->sleeping)
		pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
}

void dbt_kick(struct dbt *d, unsigned int cpu)
{
	if (cpu < d->ncpus)
		atomic_store(&d->cpus[cpu].irq_check, true);
	attention(d);
}

void dbt_init_cpu(struct dbt *d, unsigned int cpu)
{
	if (cpu >= d->ncpus)
		return;
	atomic_fetch_or(&d->pending_init, 1ull << cpu);
	attention(d);
}

void dbt_sipi(struct dbt *d, unsigned int cpu, uint8_t vector)
{
	if (cpu >= d->ncpus)
		return;
	pthread_mutex_lock(&d->lock);
	d->sipi_vector[cpu] = vector;
	pthread_mutex_unlock(&d->lock);
	atomic_fetch_or(&d->pending_sipi, 1ull << cpu);
	attention(d);
}

void dbt_dma_written(struct dbt *d, uint64_t gpa, uint64_t len)
{
	bool code = false;

	if (!len)
		return;
	/* NOTE: the page map is read without the engine's lock (x86 keeps the engine's
	 * stores in order, and a table is zeroed before it is published): a page that
	 * becomes code while this runs had its code fetched after the DMA wrote it. */
	for (uint64_t pfn = gpa >> 12; pfn <= (gpa + len - 1) >> 12 && !code; pfn++)
		code = dbt_is_code_page(d, pfn << 12);
	/* Under --accel hybrid every write is queued: it may hit a page table (ptwatch, engine
	 * thread only, looks). */
	if (!code && !d->native_on)
		return;
	pthread_mutex_lock(&d->lock);
	if (d->ndma < DBT_DMA_QUEUE) {
		d->dma[d->ndma].gpa = gpa;
		d->dma[d->ndma].len = len;
		d->ndma++;
	} else {
		d->dma_overflow = true;
	}
	pthread_mutex_unlock(&d->lock);
	attention(d);
}

static void stop_kick(void *ctx)
{
	attention(ctx);
}

/* --- creation --- */

struct dbt *dbt_create(const struct dbt_config *cfg)
{
	struct dbt *d = calloc(1, sizeof(*d));

	if (!d || !cfg->ncpus || cfg->ncpus > DBT_MAX_CPUS) {
		free(d);
		return NULL;
	}
	d->mem = cfg->mem;
	d->pio = cfg->pio;
	d->mmio = cfg->mmio;
	d->stop = cfg->stop;
	d->ncpus = cfg->ncpus;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	dbt_cpu_model_features(&d->features);
	d->plat = (struct emu_platform){
		.pio = cfg->pio,
		.lapic_read = plat_lapic_read,
		.lapic_write = plat_lapic_write,
		.rdmsr = plat_rdmsr,
		.wrmsr = plat_wrmsr,
		.cpuid = dbt_cpuid,
		.tsc = dbt_tsc,
		.code_written = plat_code_written,
		.fpu_fetch = plat_fpu_fetch,
		.is_code_page = plat_is_code_page,
		.ctx = d,
	};
	d->cpus = calloc(cfg->ncpus, sizeof(*d->cpus));
	if (!d->cpus || dbt_cache_init(d, cfg->cache_bytes)) {
		free(d->cpus);
		free(d);
		return NULL;
	}
	for (unsigned int i = 0; i < d->ncpus; i++) {
		struct emu_env env = {.mem = cfg->mem, .mmio = cfg->mmio, .features = &d->features,
				      .ram_written = ram_written, .ram_written_ctx = d};
		struct dbt_cpu *c = &d->cpus[i];

		emu_vcpu_init(&c->v, i, &env, &d->plat);
		c->d = d;
		c->v.attention = &d->attention;
		c->started = i == 0;
		c->v.wait_sipi = i != 0;
	}
	d->stop->kick = stop_kick;
	d->stop->kick_ctx = d;
	return d;
}

void dbt_destroy(struct dbt *d)
{
	if (!d)
		return;
	dbt_cache_fini(d);
	if (d->native_on)
		ptwatch_fini(&d->ptw);
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
	free(d->cpus);
	free(d);
}

void dbt_set_irq(struct dbt *d, const struct dbt_irq_ops *ops)
{
	d->irq = *ops;
}

/* Tables tracked for coherence at once (dbt/ptwatch.h): 32 MiB of snapshots at most, a few
 * hundred processes' page tables. */
#define NATIVE_TRACKED_TABLES 8192

int dbt_set_native_user(struct dbt *d, const struct dbt_native_ops *ops)
{
	int ret;

	if (d->ncpus != 1) {
		pr_err("--accel hybrid runs one vCPU (-c 1); use --accel dbt for %u", d->ncpus);
		return -EINVAL;
	}
	ret = ptwatch_init(&d->ptw, d->mem, NATIVE_TRACKED_TABLES, ops->window_pml4);
	if (ret)
		return ret;
	d->native = *ops;
	d->native_on = true;
	return 0;
}

static void flat_seg(struct emu_seg *s, uint16_t sel, bool code, bool l)
{
	*s = (struct emu_seg){.sel = sel, .base = 0, .limit = 0xffffffff, .type = code ? 0xb : 3,
			      .s = 1, .present = 1, .db = !(code && l), .l = code && l, .g = 1};
}

void dbt_set_entry(struct dbt *d, const struct dbt_entry *e)
{
	struct emu_vcpu *v = &d->cpus[0].v;
	struct emu_cpu *c = &v->cpu;

	flat_seg(&c->seg[EMU_CS], e->cs_sel, true, e->long_mode);
	for (unsigned int s = 0; s < EMU_NSREG; s++)
		if (s != EMU_CS)
			flat_seg(&c->seg[s], e->ds_sel, false, false);
	c->tr = (struct emu_seg){.sel = e->tr_sel, .limit = 0x67, .type = 0xb, .present = 1};
	c->ldt = (struct emu_seg){.type = 2, .present = 1, .limit = 0xffff};
	c->gdt_base = e->gdt_base;
	c->gdt_limit = e->gdt_limit;
	c->idt_base = 0;
	c->idt_limit = 0;
	c->cr0 = e->cr0;
	c->cr3 = e->cr3;
	c->cr4 = e->cr4;
	c->efer = e->efer;
	c->rip = e->rip;
	c->gpr[EMU_RSP] = e->rsp;
	c->gpr[EMU_RSI] = e->rsi;
	c->gpr[EMU_RBX] = e->rbx;
	emu_flags_set(v, e->rflags | 2);
	emu_vcpu_mode_changed(v, true);
}

/* --- reports --- */

static void dump_cpu(struct dbt_cpu *c, const char *why)
{
	struct emu_vcpu *v = &c->v;
	struct emu_cpu *cpu = &v->cpu;
	struct emu_result res;
	uint8_t bytes[16] = {0};
	char text[96] = "??", hex[16 * 3 + 1] = "";
	uint64_t la;
	FILE *f = stderr;

	memset(&res, 0, sizeof(res));
	if (!emu_code_linear(v, cpu->rip, &la) && !emu_fetch(v, la, bytes, 15, NULL)) {
		memcpy(res.insn, bytes, 15);
		res.insn_len = 15;
		emu_disassemble(cpu, &res, text, sizeof(text));
		for (int i = 0; i < 15; i++)
			sprintf(hex + 3 * i, "%02x ", bytes[i]);
	}
	cpu->rflags = emu_flags(v);
	flockfile(f);
	fprintf(f, "mvm: vCPU %u: %s\n", v->index, why);
	fprintf(f, "  mode: %s, CPL %u (engine: dbt)\n",
		!(cpu->cr0 & 1) ? "real" : v->mode64 ? "long 64-bit"
				 : (cpu->efer & (1u << 10)) ? "long compatibility" : "protected",
		v->cpl);
	fprintf(f, "  instruction: %s  bytes: %s\n", text, hex);
	fprintf(f, "  rip=%016llx rflags=%016llx\n", (unsigned long long)cpu->rip,
		(unsigned long long)cpu->rflags);
	for (int i = 0; i < 16; i += 4)
		fprintf(f, "  r%-2d=%016llx r%-2d=%016llx r%-2d=%016llx r%-2d=%016llx\n", i,
			(unsigned long long)cpu->gpr[i], i + 1, (unsigned long long)cpu->gpr[i + 1],
			i + 2, (unsigned long long)cpu->gpr[i + 2], i + 3,
			(unsigned long long)cpu->gpr[i + 3]);
	fprintf(f, "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%llx\n",
		(unsigned long long)cpu->cr0, (unsigned long long)cpu->cr2,
		(unsigned long long)cpu->cr3, (unsigned long long)cpu->cr4,
		(unsigned long long)cpu->efer);
	fprintf(f, "  cs=%04x ss=%04x ds=%04x es=%04x fs=%04x/%llx gs=%04x/%llx\n",
		cpu->seg[EMU_CS].sel, cpu->seg[EMU_SS].sel, cpu->seg[EMU_DS].sel,
		cpu->seg[EMU_ES].sel, cpu->seg[EMU_FS].sel,
		(unsigned long long)cpu->seg[EMU_FS].base, cpu->seg[EMU_GS].sel,
		(unsigned long long)cpu->seg[EMU_GS].base);
	funlockfile(f);
}

/* --- exceptions and interrupts --- */

static bool contributory(uint8_t v)
{
	return v == 0 || (v >= 10 && v <= 13);
}

/* Delivers the fault in c->v.fault, escalating as SDM Vol. 3A 6.15 Table 6-5 says. Returns
 * false when the machine stopped (triple fault, or delivery mvm cannot do). */
static bool raise_fault(struct dbt *d, struct dbt_cpu *c)
{
	struct emu_vcpu *v = &c->v;
	struct emu_fault first = v->fault;
	int ret;

	d->exceptions++;
	if (first.vector == DBT_EXC_PF)
		v->cpu.cr2 = first.cr2;
	ret = emu_vcpu_deliver(v, first.vector, first.has_error_code, first.error_code, true);
	if (ret == EXIT_FAULT) {
		struct emu_fault second = v->fault;

		if (first.vector == 8) {
			ret = EXIT_STOP;
			goto shutdown;
		}
		if ((contributory(first.vector) || first.vector == DBT_EXC_PF) &&
		    (contributory(second.vector) || second.vector == DBT_EXC_PF) &&
		    !(first.vector != DBT_EXC_PF && second.vector == DBT_EXC_PF)) {
			ret = emu_vcpu_deliver(v, 8, true, 0, true);
		} else {
			if (second.vector == DBT_EXC_PF)
				v->cpu.cr2 = second.cr2;
			ret = emu_vcpu_deliver(v, second.vector, second.has_error_code,
					       second.error_code, true);
		}
		if (ret == EXIT_FAULT) {
shutdown:
			dump_cpu(c, "the guest triple-faulted (shutdown)");
			stop_request(d->stop, STOP_CRASH, 0);
			return false;
		}
	}
	if (ret == EXIT_STOP) {
		dump_cpu(c, v->why);
		stop_request(d->stop, STOP_UNHANDLED, 0);
		return false;
	}
	return true;
}

/* The guest needs what the engine does not offer (v->why). In kernel mode the VM stops with
 * the report; in user mode it is the guest kernel's business, as an instruction the CPU lacks
 * would be: #UD at the instruction, logged once. No user-mode action stops the VM. Returns
 * false when the machine stops. */
static bool unhandled(struct dbt *d, struct dbt_cpu *c)
{
	struct emu_vcpu *v = &c->v;

	if (v->cpl == 3) {
		pr_warn_once("vCPU %u: user mode at 0x%llx: %s: #UD", v->index,
			     (unsigned long long)v->cpu.rip, v->why);
		v->fault = (struct emu_fault){.vector = 6};
		return raise_fault(d, c);
	}
	dump_cpu(c, v->why);
	stop_request(d->stop, STOP_UNHANDLED, 0);
	return false;
}

/* Takes a pending external interrupt if the vCPU accepts one now. */
static void take_interrupt(struct dbt *d, struct dbt_cpu *c)
{
	struct emu_vcpu *v = &c->v;
	int vec;

	if (!d->irq.pending)
		return;
	if (!d->irq.pending(d->irq.ctx, v->index)) {
		atomic_store(&c->irq_check, false);
		/* A kick may have landed between the check and the clear. */
		if (!d->irq.pending(d->irq.ctx, v->index))
			return;
		atomic_store(&c->irq_check, true);
	}
	if (!(v->cpu.rflags & DBT_RF_IF) || v->int_shadow)
		return; /* HLT with IF clear stays halted (SDM Vol. 2 HLT) */
	v->halted = false;
	vec = d->irq.ack(d->irq.ctx, v->index);
	if (vec < 0)
		return;
	d->interrupts++;
	switch (emu_vcpu_deliver(v, (uint8_t)vec, false, 0, true)) {
	case EXIT_FAULT:
		raise_fault(d, c);
		break;
	case EXIT_STOP:
		dump_cpu(c, v->why);
		stop_request(d->stop, STOP_UNHANDLED, 0);
		break;
	default:
		break;
	}
}

static void start_ap(struct dbt_cpu *c, uint8_t vector)
{
	struct emu_cpu *cpu = &c->v.cpu;

	if (!c->v.wait_sipi)
		return;
	c->v.wait_sipi = false;
	c->v.halted = false;
	c->started = true;
	cpu->seg[EMU_CS].sel = (uint16_t)(vector << 8);
	cpu->seg[EMU_CS].base = (uint64_t)vector << 12;
	cpu->rip = 0;
	emu_vcpu_mode_changed(&c->v, true);
}

/* Work other threads asked for: DMA invalidations, INIT, SIPI. */
static void service_requests(struct dbt *d)
{
	uint64_t init, sipi;

	atomic_store(&d->attention, false);
	pthread_mutex_lock(&d->lock);
	if (d->dma_overflow) {
		for (uint64_t pfn = 0; pfn < ((uint64_t)d->npage_l1 << 18); pfn++)
			if (dbt_is_code_page(d, pfn << 12))
				dbt_invalidate(d, pfn << 12, 4096);
		if (d->native_on)
			ptwatch_all_written(&d->ptw);
		d->dma_overflow = false;
	}
	for (unsigned int i = 0; i < d->ndma; i++)
		watched_written(d, d->dma[i].gpa, d->dma[i].len);
	d->ndma = 0;
	pthread_mutex_unlock(&d->lock);
	init = atomic_exchange(&d->pending_init, 0);
	sipi = atomic_exchange(&d->pending_sipi, 0);
	for (unsigned int i = 0; i < d->ncpus; i++) {
		struct dbt_cpu *c = &d->cpus[i];

		if (init & (1ull << i)) {
			struct emu_env env = c->v.env;
			uint64_t apic_base = c->v.apic_base;

			/* INIT: the CPU resets and waits for a SIPI (SDM Vol. 3A 10.4.7.3). */
			emu_vcpu_init(&c->v, i, &env, &d->plat);
			c->v.apic_base = apic_base;
			c->v.attention = &d->attention;
			c->v.wait_sipi = true;
			c->started = false;
		}
		if (sipi & (1ull << i))
			start_ap(c, d->sipi_vector[i]);
	}
}

#define DBT_RF_TF (1ull << 8)
#define DBT_RF_RF (1ull << 16)
#define DR6_BS	  (1ull << 14)

/* Runs one instruction of (c) by itself: the one in an STI/MOV SS interrupt shadow (so that a
 * pending interrupt is taken right after it, SDM Vol. 3A 6.8.3, not at the end of a block),
 * every instruction while RFLAGS.TF is set, and every instruction while DR7 arms a breakpoint
 * (blocks check none). emu_vcpu_step() checks them: an instruction breakpoint is a #DB fault
 * before it (17.3.1.1), a data breakpoint it met or the single step a #DB trap after it, DR6
 * set (17.3.1.2, 17.3.1.4). Returns false when the machine stops. */
static bool step_one(struct dbt *d, struct dbt_cpu *c)
{
	struct emu_vcpu *v = &c->v;
	int ret = emu_vcpu_step(v);

	switch (ret) {
	case EXIT_FAULT:
		/* 17.3.1.1: every fault but an instruction breakpoint's #DB pushes RF set, so
		 * the instruction it restarts does not meet its breakpoint again. Only with
		 * breakpoints armed: RF means nothing to blocks, and a guest that never arms
		 * one never sees it. */
		if (v->dbg_armed && v->fault.vector != 1)
			v->cpu.rflags |= DBT_RF_RF;
		return raise_fault(d, c);
	case EXIT_TRAP:
		c->insns++;
		v->halted = false;
		return raise_fault(d, c);
	case EXIT_STOP:
		if (stop_reason(d->stop) != STOP_NONE)
			return false;
		return unhandled(d, c);
	case EXIT_HALT:
		v->halted = true;
		break;
	default:
		break;
	}
	c->insns++;
	return true;
}

/* --accel hybrid: runs (c), at CPL3, natively. Returns 1 when the vCPU is back with state to
 * look at from the top (interrupts), 0 when the engine must run the next block itself, -1
 * when the machine stops. */
static int run_native(struct dbt *d, struct dbt_cpu *c)
{
	struct emu_vcpu *v = &c->v;
	enum ptwatch_verdict pv;
	uint8_t vector = 0;

	if (d->native_skip && d->native_skip_cr3 == v->cpu.cr3)
		return 0;
	pv = ptwatch_prepare(&d->ptw, v->cpu.cr3, d->native.zap != NULL);
	if (pv == PTWATCH_ZAP) {
		for (unsigned int i = 0; i < d->ptw.nzap && pv == PTWATCH_ZAP; i++)
			if (d->native.zap(d->native.ctx, d->ptw.zap[i].gpa, d->ptw.zap[i].len))
				pv = ptwatch_restart(&d->ptw, v->cpu.cr3);
		d->native_zaps += pv == PTWATCH_ZAP;
	}
	if (d->ptw.added) {
		/* Newly tracked tables lose their fast write path. */
		d->ptw.added = 0;
		for (unsigned int i = 0; i < d->ncpus; i++)
			emu_tlb_drop_writes(&d->cpus[i].v);
	}
	if (pv == PTWATCH_UNTRACKED) {
		pr_warn_once("vCPU %u: page tables at 0x%llx have more tables than mvm tracks: "
			     "their user code runs in the engine", v->index,
			     (unsigned long long)v->cpu.cr3);
		d->native_skip = true;
		d->native_skip_cr3 = v->cpu.cr3;
		return 0;
	}
	d->native_runs++;
	d->native_flushes += pv == PTWATCH_FLUSH;
	switch (d->native.run(d->native.ctx, v, pv == PTWATCH_FLUSH, &vector)) {
	case DBT_NATIVE_KERNEL:
		return 0;
	case DBT_NATIVE_INTERRUPTED:
		return 1;
	case DBT_NATIVE_TRAP:
		/* #DB from user mode: a single step (breakpoints keep user mode in the engine:
		 * run_slice() steps while DR7 arms one). */
		if (vector == 1)
			v->cpu.dr[6] = (v->cpu.dr[6] & ~0xfull) | DR6_BS;
		v->fault = (struct emu_fault){.vector = vector};
		return raise_fault(d, c) ? 1 : -1;
	case DBT_NATIVE_UNSUPPORTED:
		d->native_skip = true;
		d->native_skip_cr3 = v->cpu.cr3;
		return 0;
	default:
		stop_request(d->stop, STOP_VMM_ERROR, 0);
		return -1;
	}
}

/* Runs (c) for up to a slice. Returns false when the machine stops. */
static bool run_slice(struct dbt *d, struct dbt_cpu *c)
{
	struct emu_vcpu *v = &c->v;
	struct dbt_block *prev = NULL;
	struct emu_uop *prev_u = NULL;
	int prev_exit = 0;
	uint64_t flushes = d->flushes;

	for (unsigned int k = 0; k < SLICE_BLOCKS; k++) {
		struct dbt_block *b = NULL;
		const struct emu_uop *u;
		int ret;

		if (atomic_load_explicit(&d->attention, memory_order_relaxed))
			return true;
		if (v->int_shadow || (v->cpu.rflags & DBT_RF_TF)) {
			/* One instruction by itself (step_one()), then the loop looks again. */
			v->int_shadow = false;
			prev = NULL;
			if (!step_one(d, c))
				return false;
			if (v->halted)
				return true;
			continue;
		}
		if (atomic_load_explicit(&c->irq_check, memory_order_relaxed) &&
		    (v->cpu.rflags & DBT_RF_IF)) {
			take_interrupt(d, c);
			if (stop_reason(d->stop) != STOP_NONE)
				return false;
			prev = NULL;
		}
		/* Breakpoints armed: one instruction at a time, after the interrupts (an
		 * instruction breakpoint ranks below them, SDM Vol. 3A 6.9). The one flag
		 * that translated code pays for them, set when DR7 is written. */
		if (__builtin_expect(v->dbg_armed, 0)) {
			prev = NULL;
			if (!step_one(d, c))
				return false;
			if (v->halted)
				return true;
			continue;
		}
		/* --accel hybrid: user mode runs natively; when it comes back for an instruction
		 * the engine must run, that block runs here (translated for once). */
		if (d->native_on && v->cpl == 3) {
			int r = run_native(d, c);

			if (r < 0)
				return false;
			prev = NULL;
			if (r > 0)
				continue;
			b = dbt_block_scratch(d, c, &ret);
			if (!b) {
				if (ret == EXIT_FAULT ? !raise_fault(d, c) : !unhandled(d, c))
					return false;
				continue;
			}
		}
		/* Chained: the successor linked on an earlier run of (prev), if the guest's RIP
		 * still maps to the code it was made from (another process may use the same
		 * linear address): one fetch-TLB probe instead of the hash lookup. */
		if (!b && prev && prev_exit != EXIT_MODE) {
			unsigned int li = prev_exit == EXIT_JUMP_NOT;
			struct dbt_block *n = prev->link[li];

			if (n && prev->link_epoch[li] == d->epoch && n->rip == v->cpu.rip &&
			    v->mode64 && n->host &&
			    emu_fetch_host_cached(v, v->cpu.rip) == n->host) {
				b = n;
				d->chain_hits++;
			}
		}
		if (!b) {
			b = dbt_block_get(d, c, &ret);
			if (!b) {
				if (ret == EXIT_FAULT) {
					if (!raise_fault(d, c))
						return false;
					prev = NULL;
					continue;
				}
				if (!unhandled(d, c))
					return false;
				prev = NULL;
				continue;
			}
			if (d->flushes != flushes) {
				flushes = d->flushes;
				prev = NULL;
			}
			/* Link prev -> b (direct branches through their link, indirect ones
			 * through link 0 as a one-entry cache of the last target). A direct
			 * branch to a block on its own page also jumps there itself from now
			 * on: the page's mapping is the one both were translated through. */
			if (prev && prev->valid && b->valid && v->mode64) {
				unsigned int li = prev_exit == EXIT_JUMP_NOT;

				prev->link[li] = b;
				prev->link_epoch[li] = d->epoch;
				if ((prev_exit == EXIT_JUMP_TAKEN || prev_exit == EXIT_JUMP_NOT) &&
				    prev->npages == 1 && (prev->rip >> 12) == (b->rip >> 12))
					emu_uop_link(prev_u, prev_exit == EXIT_JUMP_TAKEN, b->uops);
			}
		}
		/* Direct-threaded: each uop's handler runs the next; the one that leaves the
		 * block says so in v->cur. */
		v->chain_budget = CHAIN_BUDGET;
		v->chained_insns = 0;
		ret = b->uops[0].fn(v, b->uops);
		u = v->cur;
		c->insns += v->chained_insns + u->pos +
			    (ret == EXIT_FAULT || u->fn == uop_stale || !u->len ? 0 : 1);
		k += CHAIN_BUDGET - v->chain_budget; /* blocks run through links count too */
		prev = block_of(u);
		prev_u = (struct emu_uop *)u;
		prev_exit = ret;
		switch (ret) {
		case EXIT_BRANCH:
			if (v->yield) {
				v->yield = false;
				if (d->ncpus > 1)
					return true;
			}
			break;
		case EXIT_JUMP_TAKEN:
		case EXIT_JUMP_NOT:
			break;
		case EXIT_MODE:
			prev = NULL;
			break;
		case EXIT_FAULT:
			v->cpu.rip = emu_uop_rip(u);
			prev = NULL;
			if (!raise_fault(d, c))
				return false;
			break;
		case EXIT_HALT:
			v->halted = true;
			return true;
		default:
			if (stop_reason(d->stop) != STOP_NONE)
				return false;
			v->cpu.rip = emu_uop_rip(u);
			prev = NULL;
			if (!unhandled(d, c))
				return false;
			break;
		}
	}
	return true;
}

void dbt_run(struct dbt *d)
{
	uint64_t t0 = now_ns();

	while (stop_reason(d->stop) == STOP_NONE) {
		bool any = false;

		/* A pause (the API's PATCH /vm) parks the engine between two slices, which end
		 * at an instruction boundary once the pause's kick raised attention. */
		if (stop_pause_wanted(d->stop)) {
			stop_park(d->stop);
			continue;
		}
		if (atomic_load(&d->attention))
			service_requests(d);
		for (unsigned int i = 0; i < d->ncpus; i++) {
			struct dbt_cpu *c = &d->cpus[i];

			if (!c->started || c->v.wait_sipi)
				continue;
			if (c->v.halted && atomic_load(&c->irq_check))
				take_interrupt(d, c);
			if (c->v.halted)
				continue;
			any = true;
			if (!run_slice(d, c))
				break;
		}
		if (!any && stop_reason(d->stop) == STOP_NONE) {
			/* Every vCPU waits: sleep until a kick. */
			uint64_t t = now_ns();

			pthread_mutex_lock(&d->lock);
			d->sleeping = true;
			while (!atomic_load(&d->attention) && stop_reason(d->stop) == STOP_NONE) {
				bool kicked = false;

				for (unsigned int i = 0; i < d->ncpus; i++)
					kicked |= atomic_load(&d->cpus[i].irq_check) &&
						  (d->cpus[i].v.cpu.rflags & DBT_RF_IF);
				if (kicked)
					break;
				pthread_cond_wait(&d->wake, &d->lock);
			}
			d->sleeping = false;
			pthread_mutex_unlock(&d->lock);
			d->ns_idle += now_ns() - t;
		}
	}
	d->ns_run = now_ns() - t0 - d->ns_idle;
	/* As KVM's vCPU threads do (vcpu.c): where was each vCPU when a signal stopped the
	 * machine? Answers "why does my guest hang". */
	if (stop_reason(d->stop) == STOP_SIGNAL && log_get_level() >= LOG_DEBUG)
		for (unsigned int i = 0; i < d->ncpus; i++)
			dump_cpu(&d->cpus[i], "stopped by a signal");
}

void dbt_print_stats(struct dbt *d, FILE *f)
{
	uint64_t insns = 0, tlb_flushes = 0, tlb_misses = 0, generic = 0, dev = 0, dev_ns = 0;

	for (unsigned int i = 0; i < d->ncpus; i++) {
		insns += d->cpus[i].insns;
		tlb_flushes += d->cpus[i].v.tlb_flushes;
		tlb_misses += d->cpus[i].v.tlb_misses;
		generic += d->cpus[i].v.generic_insns;
		dev += d->cpus[i].v.device_accesses;
		dev_ns += d->cpus[i].v.device_ns;
	}
	fprintf(f, "mvm: dbt: %llu guest instructions (%llu through the generic path), "
		"%.1f M/s over %.3f s running, %.3f s idle\n",
		(unsigned long long)insns, (unsigned long long)generic,
		d->ns_run ? (double)insns * 1e3 / (double)d->ns_run : 0.0, (double)d->ns_run / 1e9,
		(double)d->ns_idle / 1e9);
	fprintf(f, "mvm: dbt: %llu blocks translated (%llu instructions), code cache %llu of "
		"%llu KiB, %llu flushes\n",
		(unsigned long long)d->blocks_translated, (unsigned long long)d->uops_translated,
		(unsigned long long)(d->arena_used >> 10), (unsigned long long)(d->arena_size >> 10),
		(unsigned long long)d->flushes);
	fprintf(f, "mvm: dbt: %llu lookups, %llu chain hits, %llu invalidations (self-modifying "
		"code or DMA), %llu TLB flushes, %llu TLB fills\n",
		(unsigned long long)d->lookups, (unsigned long long)d->chain_hits,
		(unsigned long long)d->invalidations, (unsigned long long)tlb_flushes,
		(unsigned long long)tlb_misses);
	fprintf(f, "mvm: dbt: %llu interrupts, %llu exceptions delivered\n",
		(unsigned long long)d->interrupts, (unsigned long long)d->exceptions);
	{
		/* The five mnemonics the generic path ran most: candidates for uops. */
		uint64_t top[5] = {0};
		unsigned int which[5] = {0};

		for (unsigned int m = 0; m < EMU_MNEMONICS; m++) {
			uint64_t n = 0;

			for (unsigned int i = 0; i < d->ncpus; i++)
				n += d->cpus[i].v.generic_by_mnemonic[m];
			for (unsigned int k = 0; k < 5; k++) {
				if (n > top[k]) {
					memmove(&top[k + 1], &top[k], (4 - k) * sizeof(top[0]));
					memmove(&which[k + 1], &which[k], (4 - k) * sizeof(which[0]));
					top[k] = n;
					which[k] = m;
					break;
				}
			}
		}
		if (top[0]) {
			fprintf(f, "mvm: dbt: generic path, most run:");
			for (unsigned int k = 0; k < 5 && top[k]; k++)
				fprintf(f, " %s %llu", emu_mnemonic_name(which[k]),
					(unsigned long long)top[k]);
			fprintf(f, "\n");
		}
	}
	if (d->native_on)
		fprintf(f, "mvm: hybrid: %llu user-mode runs handed to KVM, %llu after page-table "
			"changes it had to forget whole, %llu after dropping %llu pages' "
			"translations; %llu user blocks run in the engine; %llu page-table checks, "
			"%llu tables tracked in all\n",
			(unsigned long long)d->native_runs, (unsigned long long)d->native_flushes,
			(unsigned long long)d->native_zaps, (unsigned long long)d->ptw.zapped,
			(unsigned long long)d->user_blocks, (unsigned long long)d->ptw.checks,
			(unsigned long long)d->ptw.tracked_total);
	fprintf(f, "mvm: dbt: %llu device accesses (port I/O and MMIO) took %.3f s of the %.3f s "
		"running; the engine the rest\n", (unsigned long long)dev, (double)dev_ns / 1e9,
		(double)d->ns_run / 1e9);
}
