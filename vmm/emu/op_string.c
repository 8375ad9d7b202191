/* op_string.c: string instructions (movs, stos, lods, cmps, scas, ins, outs) with rep
 * prefixes. A rep instruction runs a bounded number of elements per execution and then leaves
 * the block at its own address with RCX/RSI/RDI updated, so interrupts are taken between
 * chunks and a fault leaves the registers as of the element that faulted: interruptible and
 * restartable (SDM Vol. 2 REP; Vol. 3A 6.6). */
#include "uop_internal.h"

#include "core/bus.h"

/* Elements per execution before the instruction yields to interrupts. */
#define REP_CHUNK 65536u

static inline uint64_t idx_get(const struct emu_vcpu *v, unsigned int r, unsigned int asz)
{
	return reg_get(v, r, asz);
}

static inline void idx_set(struct emu_vcpu *v, unsigned int r, unsigned int asz, uint64_t val)
{
	reg_set(v, r, asz, val & asz_mask(asz));
}

/* Host pointers for up to (n) forward elements of (osz) bytes at la without leaving the page,
 * through the TLB; returns how many elements fit (0: take the slow path). */
static unsigned int span(struct emu_vcpu *v, enum emu_tlb_kind kind, uint64_t la,
			 unsigned int osz, uint64_t n, uint8_t **host)
{
	struct emu_tlb_entry *e = tlb_hit(v, kind, la, osz);
	uint64_t room;

	if (!e)
		return 0;
	room = (4096 - (la & 0xfff)) / osz;
	*host = (uint8_t *)(uintptr_t)(la + e->addend);
	return (unsigned int)(room < n ? room : n);
}

/* The iteration state of one string instruction: how many elements, how many done, the
 * direction. RSI/RDI/RCX are updated after every element (or run of elements), so a fault or
 * a chunk boundary leaves them exactly as of the next element. */
struct rep {
	unsigned int asz, osz;
	bool rep;
	uint64_t count, done, limit;
	int64_t step;
};

static inline void rep_begin(struct emu_vcpu *v, const struct emu_uop *u, struct rep *r,
			     uint64_t limit)
{
	r->asz = u->asz;
	r->osz = u->osz;
	r->rep = u->flags & (UOP_F_REP | UOP_F_REPNE);
	r->count = r->rep ? idx_get(v, EMU_RCX, r->asz) : 1;
	r->done = 0;
	/* While a data breakpoint is armed, one element per execution: its #DB trap follows
	 * the iteration that met it, with RSI/RDI/RCX as of the next one (SDM Vol. 3A
	 * 17.3.1.2). */
	r->limit = unlikely(v->dbg_data) ? 1 : limit;
	r->step = v->cpu.rflags & RF_DF ? -(int64_t)r->osz : (int64_t)r->osz;
}

static inline bool rep_more(const struct rep *r)
{
	return r->done < r->count && r->done < r->limit;
}

/* (n) elements done: RSI and/or RDI move on, RCX counts down. */
static inline void rep_advance(struct emu_vcpu *v, struct rep *r, uint64_t n, bool si, bool di)
{
	if (si)
		idx_set(v, EMU_RSI, r->asz, idx_get(v, EMU_RSI, r->asz) + (uint64_t)r->step * n);
	if (di)
		idx_set(v, EMU_RDI, r->asz, idx_get(v, EMU_RDI, r->asz) + (uint64_t)r->step * n);
	r->done += n;
	if (r->rep)
		idx_set(v, EMU_RCX, r->asz, r->count - r->done);
}

/* Leaves the instruction: a fault, done, or more to do (run again at its own address). */
static int rep_end(struct emu_vcpu *v, const struct emu_uop *u, const struct rep *r, int ret)
{
	if (ret)
		return ret;
	if (r->done < r->count) {
		/* Not the last iteration: an interrupt or trap taken now pushes RF set, so an
		 * instruction breakpoint on the string instruction does not fire again when
		 * it resumes (SDM Vol. 3A 17.3.1.1); the resumption runs with it. */
		v->cpu.rflags |= RF_RF;
		v->cpu.rip = uop_rip(u);
		return EXIT_BRANCH;
	}
	v->cpu.rflags &= ~RF_RF;
	return EXIT_NEXT;
}

/* The linear addresses of the current source (DS:RSI, overridable) and destination (ES:RDI). */
static inline int src_la(struct emu_vcpu *v, const struct emu_uop *u, const struct rep *r,
			 uint64_t *la)
{
	return uop_linear(v, u->seg, idx_get(v, EMU_RSI, r->asz), r->osz, false, la);
}

static inline int dst_la(struct emu_vcpu *v, const struct rep *r, bool write, uint64_t *la)
{
	return uop_linear(v, EMU_ES, idx_get(v, EMU_RDI, r->asz), r->osz, write, la);
}

UOP_DEF(movs)
{
	struct rep r;
	int ret = 0;

	rep_begin(v, u, &r, REP_CHUNK);
	while (rep_more(&r)) {
		uint64_t sla, dla, val;

		ret = src_la(v, u, &r, &sla);
		if (!ret)
			ret = dst_la(v, &r, true, &dla);
		if (ret)
			break;
		if (r.step > 0 && v->flat) {
			uint8_t *s, *d;
			unsigned int ns = span(v, TLB_READ, sla, r.osz, r.count - r.done, &s);
			unsigned int nd = ns ? span(v, TLB_WRITE, dla, r.osz, ns, &d) : 0;

			/* Bulk copy when the ranges do not overlap forward (a forward element
			 * copy into s + k replicates; memmove would not). */
			if (nd > 1 && (d + (size_t)nd * r.osz <= s || d >= s + (size_t)nd * r.osz ||
				       d <= s)) {
				memmove(d, s, (size_t)nd * r.osz);
				rep_advance(v, &r, nd, true, true);
				continue;
			}
		}
		ret = mem_read(v, sla, r.osz, &val, u->seg, TLB_READ);
		if (!ret)
			ret = mem_write(v, dla, r.osz, val, EMU_ES);
		if (ret)
			break;
		rep_advance(v, &r, 1, true, true);
	}
	return rep_end(v, u, &r, ret);
}

UOP_DEF(stos)
{
	uint64_t val = reg_get(v, EMU_RAX, u->osz);
	struct rep r;
	int ret = 0;

	rep_begin(v, u, &r, REP_CHUNK);
	while (rep_more(&r)) {
		uint64_t dla;

		ret = dst_la(v, &r, true, &dla);
		if (ret)
			break;
		if (r.step > 0 && v->flat) {
			uint8_t *d;
			unsigned int nd = span(v, TLB_WRITE, dla, r.osz, r.count - r.done, &d);

			if (nd > 1) {
				if (r.osz == 1) {
					memset(d, (int)val, nd);
				} else {
					for (unsigned int i = 0; i < nd; i++)
						store_le(d + (size_t)i * r.osz, val, r.osz);
				}
				rep_advance(v, &r, nd, false, true);
				continue;
			}
		}
		ret = mem_write(v, dla, r.osz, val, EMU_ES);
		if (ret)
			break;
		rep_advance(v, &r, 1, false, true);
	}
	return rep_end(v, u, &r, ret);
}

UOP_DEF(lods)
{
	struct rep r;
	int ret = 0;

	rep_begin(v, u, &r, REP_CHUNK);
	while (rep_more(&r)) {
		uint64_t sla, val;

		ret = src_la(v, u, &r, &sla);
		if (!ret)
			ret = mem_read(v, sla, r.osz, &val, u->seg, TLB_READ);
		if (ret)
			break;
		reg_set(v, EMU_RAX, r.osz, val);
		rep_advance(v, &r, 1, true, false);
	}
	return rep_end(v, u, &r, ret);
}

/* cmps and scas: repe stops when ZF is clear, repne when it is set. */
static int compare(struct emu_vcpu *v, const struct emu_uop *u, bool scas)
{
	bool repe = u->flags & UOP_F_REP, repne = u->flags & UOP_F_REPNE;
	struct rep r;
	int ret = 0;

	rep_begin(v, u, &r, REP_CHUNK);
	while (rep_more(&r)) {
		uint64_t la, a, b;

		if (scas) {
			a = reg_get(v, EMU_RAX, r.osz);
		} else {
			ret = src_la(v, u, &r, &la);
			if (!ret)
				ret = mem_read(v, la, r.osz, &a, u->seg, TLB_READ);
			if (ret)
				break;
		}
		ret = dst_la(v, &r, false, &la);
		if (!ret)
			ret = mem_read(v, la, r.osz, &b, EMU_ES, TLB_READ);
		if (ret)
			break;
		cc_set(v, CC_SUB, r.osz, a, b, (a - b) & size_mask(r.osz));
		rep_advance(v, &r, 1, !scas, true);
		if ((repe && a != b) || (repne && a == b))
			return EXIT_NEXT;
	}
	return rep_end(v, u, &r, ret);
}

UOP_DEF(cmps) { return compare(v, u, false); }
UOP_DEF(scas) { return compare(v, u, true); }

/* I/O permission (SDM Vol. 1 19.5): CPL <= IOPL, or the bits of every port of the access
 * clear in the TSS's I/O permission bitmap (two bytes read at base + port / 8, both inside
 * the TSS limit). 0 when allowed, else the fault raised: #GP(0), or a fault reading the TSS. */
static int io_check(struct emu_vcpu *v, uint16_t port, unsigned int size)
{
	unsigned int iopl = (v->cpu.rflags >> 12) & 3, type = v->cpu.tr.type & 0xf;
	uint16_t map = 0, bits = 0;
	uint32_t off;
	int ret;

	if (!(v->cpu.cr0 & CR0_PE) || v->cpl <= iopl)
		return 0;
	/* Only a 32/64-bit TSS (available 9, busy 0xb) has a bitmap; its base is at 102. */
	if ((type != 9 && type != 0xb) || v->cpu.tr.limit < 103)
		return raise_gp0(v);
	ret = sys_access(v, v->cpu.tr.base + 102, &map, 2, false);
	if (ret)
		return ret;
	off = (uint32_t)map + port / 8;
	if (off + 1 > v->cpu.tr.limit)
		return raise_gp0(v);
	ret = sys_access(v, v->cpu.tr.base + off, &bits, 2, false);
	if (ret)
		return ret;
	if ((bits >> (port & 7)) & ((1u << size) - 1))
		return raise_gp0(v);
	return 0;
}

/* ins/outs: one port access per element, at most 4096 per execution. */
UOP_DEF(ins)
{
	uint16_t port = (uint16_t)reg_get(v, EMU_RDX, 2);
	struct rep r;
	int ret = io_check(v, port, u->osz);

	if (ret)
		return ret;
	rep_begin(v, u, &r, 4096);
	while (rep_more(&r)) {
		uint64_t la, val = 0, probe;

		/* Check the destination before the port read, which has side effects. */
		ret = dst_la(v, &r, true, &la);
		if (!ret)
			ret = mem_read(v, la, r.osz, &probe, EMU_ES, TLB_WRITE);
		if (ret)
			break;
		emu_device_access(v, v->plat->pio, port, &val, r.osz, false);
		ret = mem_write(v, la, r.osz, val, EMU_ES);
		if (ret)
			break;
		rep_advance(v, &r, 1, false, true);
	}
	return rep_end(v, u, &r, ret);
}

UOP_DEF(outs)
{
	uint16_t port = (uint16_t)reg_get(v, EMU_RDX, 2);
	struct rep r;
	int ret = io_check(v, port, u->osz);

	if (ret)
		return ret;
	rep_begin(v, u, &r, 4096);
	while (rep_more(&r)) {
		uint64_t la, val;

		ret = src_la(v, u, &r, &la);
		if (!ret)
			ret = mem_read(v, la, r.osz, &val, u->seg, TLB_READ);
		if (ret)
			break;
		emu_device_access(v, v->plat->pio, port, &val, r.osz, true);
		rep_advance(v, &r, 1, true, false);
	}
	return rep_end(v, u, &r, ret);
}

UOP_DEF(in)
{
	uint16_t port = u->flags & UOP_F_IMM ? (uint16_t)u->imm : (uint16_t)reg_get(v, EMU_RDX, 2);
	uint64_t val = 0;

	int ret = io_check(v, port, u->osz);

	if (ret)
		return ret;
	emu_device_access(v, v->plat->pio, port, &val, u->osz, false);
	reg_set(v, EMU_RAX, u->osz, val);
	return EXIT_NEXT;
}

UOP_DEF(out)
{
	uint16_t port = u->flags & UOP_F_IMM ? (uint16_t)u->imm : (uint16_t)reg_get(v, EMU_RDX, 2);
	uint64_t val = reg_get(v, EMU_RAX, u->osz);
	int ret = io_check(v, port, u->osz);

	if (ret)
		return ret;
	emu_device_access(v, v->plat->pio, port, &val, u->osz, true);
	return EXIT_NEXT;
}
