/* vcpu.c: the execution context of the instruction core: reset state, mode, the software TLB
 * and the slow paths of memory access (page walk, page-crossing accesses, MMIO, the local
 * APIC, stores into pages that hold translated code). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "uop_internal.h"

#define EFER_LMA (1ull << 10)

int uop_stop(struct emu_vcpu *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	return EXIT_STOP;
}

static bool canonical(uint64_t la)
{
	return (uint64_t)((int64_t)(la << 16) >> 16) == la;
}

void emu_tlb_flush(struct emu_vcpu *v)
{
	for (unsigned int p = 0; p < 2; p++)
		for (unsigned int k = 0; k < TLB_KINDS; k++)
			for (unsigned int i = 0; i < EMU_TLB_SIZE; i++)
				v->tlb_all.e[p][k][i].tag = EMU_TLB_EMPTY;
	v->tlb_flushes++;
}

void emu_tlb_drop_writes(struct emu_vcpu *v)
{
	for (unsigned int p = 0; p < 2; p++)
		for (unsigned int i = 0; i < EMU_TLB_SIZE; i++)
			v->tlb_all.e[p][TLB_WRITE][i].tag = EMU_TLB_EMPTY;
}

/* The breakpoint fields of (v) from DR7. Returns whether a data breakpoint is or was armed. */
static bool debug_flags(struct emu_vcpu *v)
{
	bool was = v->dbg_data;

	v->dbg_armed = (v->cpu.dr[7] & EMU_DR7_ENABLES) != 0;
	v->dbg_data = v->dbg_armed && emu_dbg_data_armed(&v->cpu);
	return was || v->dbg_data;
}

void emu_vcpu_debug_changed(struct emu_vcpu *v)
{
	/* Entries filled before may cover a page a breakpoint now watches (or watched through
	 * another DRn): the data entries go; fetches are never checked against them. */
	if (debug_flags(v))
		for (unsigned int p = 0; p < 2; p++)
			for (unsigned int i = 0; i < EMU_TLB_SIZE; i++)
				v->tlb_all.e[p][TLB_READ][i].tag = v->tlb_all.e[p][TLB_WRITE][i].tag =
					EMU_TLB_EMPTY;
}

void emu_vcpu_mode_changed(struct emu_vcpu *v, bool flush)
{
	struct emu_cpu *c = &v->cpu;

	/* EFER.LMA follows CR0.PG with EFER.LME (SDM Vol. 3A 9.8.5). */
	if ((c->cr0 & (1ull << 31)) && (c->efer & (1ull << 8)))
		c->efer |= EFER_LMA;
	else
		c->efer &= ~EFER_LMA;
	v->mode64 = emu_64bit(c);
	v->flat = v->mode64;
	v->cpl = (c->cr0 & CR0_PE) ? c->seg[EMU_SS].dpl : 0;
	if (c->rflags & RF_VM)
		v->cpl = 3;
	for (unsigned int s = 0; s < EMU_NSREG; s++)
		v->seg_base[s] = v->mode64 && s != EMU_FS && s != EMU_GS ? 0 : c->seg[s].base;
	v->tlb = v->tlb_all.e[v->cpl == 3];
	if (flush)
		emu_tlb_flush(v);
	/* The state may come with armed breakpoints (a copy of a CPU, a reset). */
	if (flush)
		debug_flags(v);
	else
		emu_vcpu_debug_changed(v);
}

void emu_vcpu_init(struct emu_vcpu *v, unsigned int index, const struct emu_env *env,
		   const struct emu_platform *plat)
{
	struct emu_cpu *c = &v->cpu;
	uint16_t fcw = 0x37f;
	uint32_t mxcsr = MXCSR_DEFAULT;

	memset(v, 0, sizeof(*v));
	v->index = index;
	v->env = *env;
	v->plat = plat;
	/* SDM Vol. 3A Table 9-1: real mode at F000:FFF0, CR0 = 0x60000010 (CD, NW, ET). */
	c->cr0 = 0x60000010;
	c->rflags = 2;
	c->rip = 0xfff0;
	for (unsigned int s = 0; s < EMU_NSREG; s++)
		c->seg[s] = (struct emu_seg){.limit = 0xffff, .type = 3, .s = 1, .present = 1};
	c->seg[EMU_CS] = (struct emu_seg){.sel = 0xf000, .base = 0xffff0000, .limit = 0xffff,
					  .type = 0xb, .s = 1, .present = 1};
	c->ldt = (struct emu_seg){.limit = 0xffff, .type = 2, .present = 1};
	c->tr = (struct emu_seg){.limit = 0xffff, .type = 0xb, .present = 1};
	c->idt_limit = c->gdt_limit = 0xffff;
	c->dr[6] = EMU_DR6_FIXED;
	c->dr[7] = EMU_DR7_FIXED;
	c->xcr0 = 1;
	memcpy(c->xsave + XSAVE_FCW, &fcw, 2);
	memcpy(c->xsave + XSAVE_MXCSR, &mxcsr, 4);
	v->cc.op = CC_EFLAGS;
	v->msr.pat = 0x0007040600070406ull;
	v->apic_base = 0xfee00000ull | (1u << 11) | (index == 0 ? 1u << 8 : 0);
	emu_vcpu_mode_changed(v, true);
}

/* --- segmentation outside 64-bit mode --- */

int uop_linear_slow(struct emu_vcpu *v, unsigned int seg, uint64_t ea, unsigned int len,
		    bool write, uint64_t *la)
{
	const struct emu_cpu *c = &v->cpu;
	const struct emu_seg *s = &c->seg[seg];
	uint8_t vector = seg == EMU_SS ? EXC_SS : EXC_GP;

	if (v->mode64) {
		*la = ea + v->seg_base[seg];
		return 0;
	}
	if (!(c->cr0 & CR0_PE) || (c->rflags & RF_VM)) {
		/* Real mode: base + offset; the 64 KiB limit is checked as the CPU does (#GP, or
		 * #SS for the stack) so a guest that wraps gets the fault, not a silent wrap. */
		if (ea + len - 1 > s->limit)
			return uop_raise(v, vector, seg == EMU_SS, 0);
		*la = (s->base + ea) & 0xffffffffull;
		return 0;
	}
	/* Protected mode (SDM Vol. 3A 5.3): an unusable segment, writes to read-only data or
	 * code, reads of execute-only code and accesses past the limit fault. */
	if (!s->present || (seg != EMU_CS && !s->s && !s->type))
		return uop_raise(v, vector, true, 0);
	if (s->type & 8) {
		if (write || !(s->type & 2))
			return uop_raise(v, vector, true, 0);
	} else if (write && !(s->type & 2)) {
		return uop_raise(v, vector, true, 0);
	}
	if (!(s->type & 8) && (s->type & 4)) {
		/* Expand-down: valid offsets are (limit, 0xffff or 0xffffffff]. */
		uint64_t top = s->db ? 0xffffffffull : 0xffff;

		if (ea <= s->limit || ea + len - 1 > top)
			return uop_raise(v, vector, true, 0);
	} else if (ea > s->limit || len - 1 > s->limit - ea) {
		return uop_raise(v, vector, true, 0);
	}
	*la = (uint32_t)(s->base + ea);
	return 0;
}

/* --- translation and the TLB --- */

static unsigned int kind_acc(const struct emu_vcpu *v, enum emu_tlb_kind kind)
{
	unsigned int acc = kind == TLB_WRITE ? EMU_ACC_WRITE : kind == TLB_FETCH ? EMU_ACC_FETCH : 0;

	if (v->cpl == 3)
		acc |= EMU_ACC_USER;
	return acc;
}

static int translate(struct emu_vcpu *v, uint64_t la, enum emu_tlb_kind kind, uint64_t *gpa)
{
	unsigned int maxphy = v->env.features->maxphyaddr ? v->env.features->maxphyaddr : 52;
	enum emu_walk_status s;

	s = emu_walk(&v->cpu, v->env.mem, maxphy, la, kind_acc(v, kind), gpa, &v->fault);
	if (s == WALK_FAULT)
		return EXIT_FAULT;
	if (s == WALK_UNSUPPORTED)
		return uop_stop(v, "page tables for 0x%llx are outside RAM or 5-level",
				(unsigned long long)la);
	return 0;
}

static bool is_lapic(const struct emu_vcpu *v, uint64_t gpa)
{
	return v->plat && v->plat->lapic_read && (v->apic_base & (1u << 11)) &&
	       (gpa & ~0xfffull) == (v->apic_base & ~0xfffull);
}

static bool is_code(struct emu_vcpu *v, uint64_t gpa)
{
	return v->plat && v->plat->is_code_page && v->plat->is_code_page(v, gpa);
}

/* Host page for the guest page of (gpa) when it is RAM (not the APIC window), else NULL. */
static uint8_t *ram_page(struct emu_vcpu *v, uint64_t gpa)
{
	if (is_lapic(v, gpa))
		return NULL;
	return gpa_to_hva(v->env.mem, gpa & ~0xfffull, 4096);
}

/* Whether an armed data breakpoint watches a byte of the linear page of (la). */
static bool page_watched(const struct emu_vcpu *v, uint64_t la)
{
	return emu_dbg_data_hits(&v->cpu, la & ~0xfffull, 4096, true) != 0;
}

static void tlb_fill(struct emu_vcpu *v, enum emu_tlb_kind kind, uint64_t la, uint8_t *page)
{
	struct emu_tlb_entry *e = &v->tlb[kind][(la >> 12) & (EMU_TLB_SIZE - 1)];

	/* The fast path checks no breakpoint: a page one watches stays out of the data TLB, so
	 * each access to it comes here (emu_read_slow(), emu_write_slow()). */
	if (unlikely(v->dbg_data) && kind != TLB_FETCH && page_watched(v, la))
		return;

	e->tag = la & ~0xfffull;
	e->addend = (uintptr_t)page - (la & ~0xfffull);
	v->tlb_misses++;
}

/* MMIO in naturally aligned pieces of at most 8 bytes, so a device sees the guest's width. */
static void mmio_access(struct emu_vcpu *v, uint64_t gpa, uint8_t *buf, unsigned int len,
			bool write)
{
	while (len) {
		unsigned int size = 8;
		uint64_t val = 0;

		while (size > len || (gpa & (size - 1)))
			size >>= 1;
		if (is_lapic(v, gpa)) {
			if (write) {
				memcpy(&val, buf, size);
				v->plat->lapic_write(v, gpa & 0xfff, val, size);
			} else {
				val = v->plat->lapic_read(v, gpa & 0xfff, size);
				memcpy(buf, &val, size);
			}
		} else if (v->env.mmio) {
			emu_device_access(v, v->env.mmio, gpa, buf, size, write);
		} else if (!write) {
			memset(buf, 0xff, size);
		}
		gpa += size;
		buf += size;
		len -= size;
	}
}

void emu_device_access(struct emu_vcpu *v, struct bus *bus, uint64_t addr, void *data,
		       unsigned int size, bool write)
{
	struct timespec a, b;

	if (!bus) {
		if (!write)
			memset(data, 0xff, size);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	bus_dispatch(bus, addr, data, size, write);
	clock_gettime(CLOCK_MONOTONIC, &b);
	v->device_ns += (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull +
			(uint64_t)(b.tv_nsec - a.tv_nsec);
	v->device_accesses++;
}

/* Splits [la, la+len) at the page boundary and translates both parts before any access, so
 * a fault on the second page leaves the first untouched. */
static int translate_range(struct emu_vcpu *v, uint64_t la, unsigned int len, unsigned int seg,
			   enum emu_tlb_kind kind, uint64_t gpa[2], unsigned int part[2])
{
	int ret;

	if (v->mode64 && (!canonical(la) || !canonical(la + len - 1)))
		return uop_raise(v, seg == EMU_SS ? EXC_SS : EXC_GP, true, 0);
	if (!v->mode64 && !(v->cpu.efer & EFER_LMA))
		la &= 0xffffffffull;
	part[0] = 4096 - (la & 0xfff);
	if (part[0] > len)
		part[0] = len;
	part[1] = len - part[0];
	ret = translate(v, la, kind, &gpa[0]);
	if (!ret && part[1])
		ret = translate(v, (la + part[0]) & (v->mode64 ? ~0ull : 0xffffffffull), kind,
				&gpa[1]);
	return ret;
}

int emu_read_slow(struct emu_vcpu *v, uint64_t la, unsigned int len, void *dst,
		  unsigned int seg, enum emu_tlb_kind kind)
{
	uint64_t gpa[2];
	unsigned int part[2];
	uint8_t *out = dst;
	int ret = translate_range(v, la, len, seg, kind, gpa, part);

	if (ret)
		return ret;
	/* The read half of a read-modify-write (TLB_WRITE) is a read: its write comes through
	 * emu_write_slow() too, the page being kept out of the TLB. */
	if (unlikely(v->dbg_data))
		v->dbg_hits |= emu_dbg_data_hits(&v->cpu, la, len, false);
	for (unsigned int i = 0; i < 2 && part[i]; i++) {
		uint8_t *page = ram_page(v, gpa[i]);

		if (page) {
			memcpy(out, page + (gpa[i] & 0xfff), part[i]);
			/* Whole pages only; a write-intent read of a code page stays slow. */
			if (part[1] == 0 && !(kind == TLB_WRITE && is_code(v, gpa[i])))
				tlb_fill(v, kind, la, page);
		} else {
			mmio_access(v, gpa[i], out, part[i], false);
		}
		out += part[i];
	}
	return 0;
}

int emu_write_slow(struct emu_vcpu *v, uint64_t la, unsigned int len, const void *src,
		   unsigned int seg)
{
	uint64_t gpa[2];
	unsigned int part[2];
	const uint8_t *in = src;
	int ret = translate_range(v, la, len, seg, TLB_WRITE, gpa, part);

	if (ret)
		return ret;
	if (unlikely(v->dbg_data))
		v->dbg_hits |= emu_dbg_data_hits(&v->cpu, la, len, true);
	for (unsigned int i = 0; i < 2 && part[i]; i++) {
		uint8_t *page = ram_page(v, gpa[i]);

		if (page) {
			memcpy(page + (gpa[i] & 0xfff), in, part[i]);
			if (is_code(v, gpa[i]))
				v->plat->code_written(v, gpa[i], part[i]);
			else if (part[1] == 0)
				tlb_fill(v, TLB_WRITE, la, page);
		} else {
			mmio_access(v, gpa[i], (uint8_t *)in, part[i], true);
		}
		in += part[i];
	}
	return 0;
}

/* The guest-physical address of host pointer (host) into guest RAM. */
static uint64_t host_to_gpa(const struct guest_mem *mem, const uint8_t *host)
{
	for (unsigned int i = 0; i < mem->n; i++) {
		const struct guest_mem_region *r = &mem->r[i];

		if (host >= r->hva && host < r->hva + r->size)
			return r->gpa + (uint64_t)(host - r->hva);
	}
	return ~0ull;
}

/* Host pointer of the code byte at linear (la), through the fetch TLB. */
static int fetch_host(struct emu_vcpu *v, uint64_t la, uint8_t **host)
{
	struct emu_tlb_entry *e = tlb_hit(v, TLB_FETCH, la, 1);
	uint8_t *page;
	uint64_t gpa;
	int ret;

	if (e) {
		*host = (uint8_t *)(uintptr_t)(la + e->addend);
		return 0;
	}
	if (v->mode64 && !canonical(la))
		return raise_gp0(v);
	ret = translate(v, la, TLB_FETCH, &gpa);
	if (ret)
		return ret;
	page = ram_page(v, gpa);
	if (!page)
		return uop_stop(v, "instruction fetch from 0x%llx, which is not RAM",
				(unsigned long long)gpa);
	tlb_fill(v, TLB_FETCH, la, page);
	*host = page + (la & 0xfff);
	return 0;
}

int emu_fetch_gpa(struct emu_vcpu *v, uint64_t la, uint64_t *gpa)
{
	uint8_t *host;
	int ret = fetch_host(v, la, &host);

	if (!ret)
		*gpa = host_to_gpa(v->env.mem, host);
	return ret;
}

int emu_fetch(struct emu_vcpu *v, uint64_t la, void *buf, unsigned int len, uint64_t *gpa)
{
	uint8_t *out = buf;

	while (len) {
		unsigned int chunk = 4096 - (la & 0xfff);
		uint8_t *host;
		int ret;

		if (chunk > len)
			chunk = len;
		ret = fetch_host(v, la, &host);
		if (ret)
			return ret;
		if (gpa) {
			*gpa = host_to_gpa(v->env.mem, host);
			gpa = NULL;
		}
		memcpy(out, host, chunk);
		out += chunk;
		la += chunk;
		len -= chunk;
	}
	return 0;
}

/* --- events and single steps --- */

/* Real-mode delivery through the interrupt vector table (SDM Vol. 3A 20.1.4). */
static int deliver_real(struct emu_vcpu *v, uint8_t vector)
{
	struct emu_cpu *c = &v->cpu;
	uint64_t ivt, flags = c->rflags, sp = c->gpr[EMU_RSP];
	uint16_t frame[3] = {(uint16_t)flags, c->seg[EMU_CS].sel, (uint16_t)c->rip};
	int ret;

	if ((uint32_t)vector * 4 + 3 > c->idt_limit)
		return raise_gp0(v);
	ret = emu_read_slow(v, c->idt_base + vector * 4u, 4, &ivt, EMU_DS, TLB_READ);
	for (int i = 0; !ret && i < 3; i++)
		ret = push_val(v, frame[i], 2);
	if (ret) {
		c->gpr[EMU_RSP] = sp;
		return ret;
	}
	c->rflags &= ~(RF_IF | RF_TF | RF_AC | RF_RF);
	c->seg[EMU_CS].sel = (uint16_t)(ivt >> 16);
	c->seg[EMU_CS].base = (ivt >> 16) << 4;
	c->rip = ivt & 0xffff;
	emu_vcpu_mode_changed(v, false);
	return 0;
}

int emu_vcpu_deliver(struct emu_vcpu *v, uint8_t vector, bool has_error, uint32_t error,
		     bool ext)
{
	struct emu_result res;

	v->cpu.rflags = emu_flags(v);
	v->cc.op = CC_EFLAGS;
	if (!(v->cpu.cr0 & CR0_PE))
		return deliver_real(v, vector);
	if (!(v->cpu.efer & EFER_LMA))
		return uop_stop(v, "interrupt delivery in 32-bit protected mode (vector %u) is not "
				"offered", vector);
	emu_deliver_event(&v->cpu, &v->env, vector, has_error, error, &res);
	switch (res.status) {
	case EMU_DONE:
		v->cpu.dirty = 0;
		emu_vcpu_mode_changed(v, false);
		return 0;
	case EMU_FAULT:
		v->fault = res.fault;
		return EXIT_FAULT;
	default:
		return uop_stop(v, "%s", res.why);
	}
}

int uop_single_end(struct emu_vcpu *v, const struct emu_uop *u)
{
	v->cur = u - 1;
	return EXIT_NEXT;
}

/* The #DB the instruction just completed raises, if any (SDM Vol. 3A 17.3.1.2, 17.3.1.4):
 * data breakpoints it met and the single step of TF set before and after it (an interrupt it
 * delivered clears TF: no step then). One #DB reports both in DR6; B0-B3 are replaced, the
 * other bits kept. */
static int debug_trap(struct emu_vcpu *v, bool tf)
{
	uint64_t hits = v->dbg_hits & (v->cpu.dr[7] & EMU_DR7_ENABLES ? EMU_DR6_HITS : 0);
	bool step = tf && (v->cpu.rflags & RF_TF);

	if (!hits && !step)
		return 0;
	v->cpu.dr[6] = (v->cpu.dr[6] & ~EMU_DR6_HITS) | hits | (step ? EMU_DR6_BS : 0);
	v->fault = (struct emu_fault){.vector = EXC_DB};
	return EXIT_TRAP;
}

int emu_vcpu_step(struct emu_vcpu *v)
{
	uint8_t bytes[24] = {0};
	/* The instruction's uop, then the end marker its handler runs on into. */
	struct emu_uop uops[2];
	unsigned int n = 15;
	uint64_t rip = v->cpu.rip, la;
	bool tf = v->cpu.rflags & RF_TF;
	uint64_t rf = v->cpu.rflags & RF_RF;
	uint8_t held;
	int ret;

	ret = uop_linear(v, EMU_CS, rip, 1, false, &la);
	if (ret)
		return ret;
	/* 17.3.1.1: an instruction breakpoint is a fault, before the instruction, unless RF is
	 * set (the handler of the last one returned with RF, or an interrupted string
	 * instruction resumes). RF is cleared when the instruction starts, after this check;
	 * an IRET loads it again, an unfinished string instruction sets it (op_string.c). */
	if (unlikely(v->dbg_armed) && !(v->cpu.rflags & RF_RF) && !v->dbg_shadow) {
		/* (After MOV SS / POP SS no debug exception is taken at this boundary: 6.8.3.) */
		unsigned int hits = emu_dbg_code_hits(&v->cpu, la);

		if (hits) {
			v->cpu.dr[6] = (v->cpu.dr[6] & ~EMU_DR6_HITS) | hits;
			v->fault = (struct emu_fault){.vector = EXC_DB};
			return EXIT_FAULT;
		}
	}
	/* Fetch up to 15 bytes, stopping at a page that faults once some bytes are in. */
	ret = emu_fetch(v, la, bytes, n, NULL);
	if (ret) {
		n = 4096 - (la & 0xfff);
		if (n >= 15)
			return ret;
		ret = emu_fetch(v, la, bytes, n, NULL);
		if (ret)
			return ret;
	}
	if (emu_decode(v, rip, bytes, n, &uops[0]) == 0) {
		/* The instruction runs into the page that faulted: that fault (SDM 6.15). */
		return emu_fetch(v, la, bytes, 15, NULL);
	}
	uops[1] = (struct emu_uop){.fn = uop_single_end};
	v->cpu.rflags &= ~RF_RF;
	v->dbg_hits = 0;
	held = v->dbg_held;
	v->dbg_held = 0;
	v->dbg_shadow = false;
	ret = uops[0].fn(v, &uops[0]);
	if (ret == EXIT_NEXT)
		v->cpu.rip = uops[0].next_rip;
	switch (ret) {
	case EXIT_NEXT:
	case EXIT_BRANCH:
	case EXIT_JUMP_TAKEN:
	case EXIT_JUMP_NOT:
	case EXIT_MODE:
	case EXIT_HALT:
		if (v->dbg_shadow) {
			/* MOV SS / POP SS: its data breakpoints and single step wait for the
			 * next instruction (6.8.3), whose #DB then reports them; after an INT n
			 * or SYSCALL that is at the first instruction of the handler. */
			v->dbg_held = v->dbg_hits;
			return ret;
		}
		if (held && uops[0].mnemonic == ZYDIS_MNEMONIC_INT1) {
			/* ICEBP raised the #DB already: the held hits join its DR6. */
			v->cpu.dr[6] = (v->cpu.dr[6] & ~EMU_DR6_HITS) | held;
			held = 0;
		}
		v->dbg_hits |= held;
		return debug_trap(v, tf) ? EXIT_TRAP : ret;
	case EXIT_FAULT:
		/* State as of before the instruction, RF included. */
		v->cpu.rflags |= rf;
		return ret;
	default:
		return ret;
	}
}

int emu_code_linear(struct emu_vcpu *v, uint64_t rip, uint64_t *la)
{
	const struct emu_seg *cs = &v->cpu.seg[EMU_CS];

	if (v->mode64) {
		*la = rip;
		return 0;
	}
	if ((v->cpu.cr0 & CR0_PE) && !(v->cpu.rflags & RF_VM) && rip > cs->limit)
		return raise_gp0(v);
	*la = (cs->base + rip) & 0xffffffffull;
	return 0;
}
