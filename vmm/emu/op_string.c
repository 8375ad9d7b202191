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

/* Leaves a rep instruction: done, or more to do (re-run at its own address). */
static int rep_exit(struct emu_vcpu *v, const struct emu_uop *u, bool more)
{
	if (more) {
		v->cpu.rip = uop_rip(u);
		return EXIT_BRANCH;
	}
	return EXIT_NEXT;
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

UOP_DEF(movs)
{
	unsigned int asz = u->asz, osz = u->osz;
	bool rep = u->flags & (UOP_F_REP | UOP_F_REPNE), down = v->cpu.rflags & RF_DF;
	uint64_t count = rep ? idx_get(v, EMU_RCX, asz) : 1, done = 0;
	int64_t step = down ? -(int64_t)osz : (int64_t)osz;
	int ret = 0;

	while (done < count && done < REP_CHUNK) {
		uint64_t si = idx_get(v, EMU_RSI, asz), di = idx_get(v, EMU_RDI, asz), sla, dla, val;

		ret = uop_linear(v, u->seg, si, osz, false, &sla);
		if (!ret)
			ret = uop_linear(v, EMU_ES, di, osz, true, &dla);
		if (ret)
			break;
		if (!down && v->flat) {
			uint8_t *s, *d;
			unsigned int ns = span(v, TLB_READ, sla, osz, count - done, &s);
			unsigned int nd = ns ? span(v, TLB_WRITE, dla, osz, ns, &d) : 0;

			/* Bulk copy when the ranges do not overlap forward (a forward element
			 * copy into s + k replicates; memmove would not). */
			if (nd > 1 && (d + (size_t)nd * osz <= s || d >= s + (size_t)nd * osz ||
				       d <= s)) {
				memmove(d, s, (size_t)nd * osz);
				done += nd;
				idx_set(v, EMU_RSI, asz, si + (uint64_t)nd * osz);
				idx_set(v, EMU_RDI, asz, di + (uint64_t)nd * osz);
				if (rep)
					idx_set(v, EMU_RCX, asz, count - done);
				continue;
			}
		}
		ret = mem_read(v, sla, osz, &val, u->seg, TLB_READ);
		if (!ret)
			ret = mem_write(v, dla, osz, val, EMU_ES);
		if (ret)
			break;
		done++;
		idx_set(v, EMU_RSI, asz, si + (uint64_t)step);
		idx_set(v, EMU_RDI, asz, di + (uint64_t)step);
		if (rep)
			idx_set(v, EMU_RCX, asz, count - done);
	}
	if (ret)
		return ret;
	return rep_exit(v, u, done < count);
}

UOP_DEF(stos)
{
	unsigned int asz = u->asz, osz = u->osz;
	bool rep = u->flags & (UOP_F_REP | UOP_F_REPNE), down = v->cpu.rflags & RF_DF;
	uint64_t count = rep ? idx_get(v, EMU_RCX, asz) : 1, done = 0;
	uint64_t val = reg_get(v, EMU_RAX, osz);
	int64_t step = down ? -(int64_t)osz : (int64_t)osz;
	int ret = 0;

	while (done < count && done < REP_CHUNK) {
		uint64_t di = idx_get(v, EMU_RDI, asz), dla;

		ret = uop_linear(v, EMU_ES, di, osz, true, &dla);
		if (ret)
			break;
		if (!down && v->flat) {
			uint8_t *d;
			unsigned int nd = span(v, TLB_WRITE, dla, osz, count - done, &d);

			if (nd > 1) {
				if (osz == 1) {
					memset(d, (int)val, nd);
				} else {
					for (unsigned int i = 0; i < nd; i++)
						store_le(d + (size_t)i * osz, val, osz);
				}
				done += nd;
				idx_set(v, EMU_RDI, asz, di + (uint64_t)nd * osz);
				if (rep)
					idx_set(v, EMU_RCX, asz, count - done);
				continue;
			}
		}
		ret = mem_write(v, dla, osz, val, EMU_ES);
		if (ret)
			break;
		done++;
		idx_set(v, EMU_RDI, asz, di + (uint64_t)step);
		if (rep)
			idx_set(v, EMU_RCX, asz, count - done);
	}
	if (ret)
		return ret;
	return rep_exit(v, u, done < count);
}

UOP_DEF(lods)
{
	unsigned int asz = u->asz, osz = u->osz;
	bool rep = u->flags & (UOP_F_REP | UOP_F_REPNE);
	uint64_t count = rep ? idx_get(v, EMU_RCX, asz) : 1, done = 0;
	int64_t step = v->cpu.rflags & RF_DF ? -(int64_t)osz : (int64_t)osz;
	int ret = 0;

	while (done < count && done < REP_CHUNK) {
		uint64_t si = idx_get(v, EMU_RSI, asz), sla, val;

		ret = uop_linear(v, u->seg, si, osz, false, &sla);
		if (!ret)
			ret = mem_read(v, sla, osz, &val, u->seg, TLB_READ);
		if (ret)
			break;
		reg_set(v, EMU_RAX, osz, val);
		done++;
		idx_set(v, EMU_RSI, asz, si + (uint64_t)step);
		if (rep)
			idx_set(v, EMU_RCX, asz, count - done);
	}
	if (ret)
		return ret;
	return rep_exit(v, u, done < count);
}

/* cmps and scas: repe stops when ZF is clear, repne when it is set. */
static int compare(struct emu_vcpu *v, const struct emu_uop *u, bool scas)
{
	unsigned int asz = u->asz, osz = u->osz;
	bool repe = u->flags & UOP_F_REP, repne = u->flags & UOP_F_REPNE;
	uint64_t count = repe || repne ? idx_get(v, EMU_RCX, asz) : 1, done = 0;
	int64_t step = v->cpu.rflags & RF_DF ? -(int64_t)osz : (int64_t)osz;
	int ret = 0;

	while (done < count && done < REP_CHUNK) {
		uint64_t si = idx_get(v, EMU_RSI, asz), di = idx_get(v, EMU_RDI, asz), la, a, b;
		bool eq;

		if (scas) {
			a = reg_get(v, EMU_RAX, osz);
		} else {
			ret = uop_linear(v, u->seg, si, osz, false, &la);
			if (!ret)
				ret = mem_read(v, la, osz, &a, u->seg, TLB_READ);
			if (ret)
				break;
		}
		ret = uop_linear(v, EMU_ES, di, osz, false, &la);
		if (!ret)
			ret = mem_read(v, la, osz, &b, EMU_ES, TLB_READ);
		if (ret)
			break;
		cc_set(v, CC_SUB, osz, a, b, (a - b) & size_mask(osz));
		done++;
		if (!scas)
			idx_set(v, EMU_RSI, asz, si + (uint64_t)step);
		idx_set(v, EMU_RDI, asz, di + (uint64_t)step);
		if (repe || repne)
			idx_set(v, EMU_RCX, asz, count - done);
		eq = a == b;
		if ((repe && !eq) || (repne && eq))
			return EXIT_NEXT;
	}
	if (ret)
		return ret;
	return rep_exit(v, u, done < count);
}

UOP_DEF(cmps) { return compare(v, u, false); }
UOP_DEF(scas) { return compare(v, u, true); }

/* I/O permission: CPL <= IOPL, or (not offered) the TSS bitmap (SDM Vol. 1 19.5). */
static bool io_allowed(const struct emu_vcpu *v)
{
	unsigned int iopl = (v->cpu.rflags >> 12) & 3;

	return !(v->cpu.cr0 & CR0_PE) || v->cpl <= iopl;
}

UOP_DEF(ins)
{
	unsigned int asz = u->asz, osz = u->osz;
	bool rep = u->flags & (UOP_F_REP | UOP_F_REPNE);
	uint64_t count = rep ? idx_get(v, EMU_RCX, asz) : 1, done = 0;
	int64_t step = v->cpu.rflags & RF_DF ? -(int64_t)osz : (int64_t)osz;
	uint16_t port = (uint16_t)reg_get(v, EMU_RDX, 2);
	int ret = 0;

	if (!io_allowed(v))
		return raise_gp0(v);
	while (done < count && done < 4096) {
		uint64_t di = idx_get(v, EMU_RDI, asz), la, val = 0, probe;

		ret = uop_linear(v, EMU_ES, di, osz, true, &la);
		/* Check the destination before the port read, which has side effects. */
		if (!ret)
			ret = mem_read(v, la, osz, &probe, EMU_ES, TLB_WRITE);
		if (ret)
			break;
		emu_device_access(v, v->plat->pio, port, &val, osz, false);
		ret = mem_write(v, la, osz, val, EMU_ES);
		if (ret)
			break;
		done++;
		idx_set(v, EMU_RDI, asz, di + (uint64_t)step);
		if (rep)
			idx_set(v, EMU_RCX, asz, count - done);
	}
	if (ret)
		return ret;
	return rep_exit(v, u, done < count);
}

UOP_DEF(outs)
{
	unsigned int asz = u->asz, osz = u->osz;
	bool rep = u->flags & (UOP_F_REP | UOP_F_REPNE);
	uint64_t count = rep ? idx_get(v, EMU_RCX, asz) : 1, done = 0;
	int64_t step = v->cpu.rflags & RF_DF ? -(int64_t)osz : (int64_t)osz;
	uint16_t port = (uint16_t)reg_get(v, EMU_RDX, 2);
	int ret = 0;

	if (!io_allowed(v))
		return raise_gp0(v);
	while (done < count && done < 4096) {
		uint64_t si = idx_get(v, EMU_RSI, asz), la, val;

		ret = uop_linear(v, u->seg, si, osz, false, &la);
		if (!ret)
			ret = mem_read(v, la, osz, &val, u->seg, TLB_READ);
		if (ret)
			break;
		emu_device_access(v, v->plat->pio, port, &val, osz, true);
		done++;
		idx_set(v, EMU_RSI, asz, si + (uint64_t)step);
		if (rep)
			idx_set(v, EMU_RCX, asz, count - done);
	}
	if (ret)
		return ret;
	return rep_exit(v, u, done < count);
}

UOP_DEF(in)
{
	uint16_t port = u->flags & UOP_F_IMM ? (uint16_t)u->imm : (uint16_t)reg_get(v, EMU_RDX, 2);
	uint64_t val = 0;

	if (!io_allowed(v))
		return raise_gp0(v);
	emu_device_access(v, v->plat->pio, port, &val, u->osz, false);
	reg_set(v, EMU_RAX, u->osz, val);
	return EXIT_NEXT;
}

UOP_DEF(out)
{
	uint16_t port = u->flags & UOP_F_IMM ? (uint16_t)u->imm : (uint16_t)reg_get(v, EMU_RDX, 2);
	uint64_t val = reg_get(v, EMU_RAX, u->osz);

	if (!io_allowed(v))
		return raise_gp0(v);
	emu_device_access(v, v->plat->pio, port, &val, u->osz, true);
	return EXIT_NEXT;
}
