/* op_segment.c: segment register loads and far control transfers: mov/push/pop sreg, far
 * jmp/call/ret, iret, ltr/lldt/str/sldt (SDM Vol. 3A 3.4-3.5, 5.8; Vol. 2). Call gates, task
 * switches (outside IA-32e mode, which has none) and virtual-8086 mode are not offered: they
 * stop the VM with a report. */
#include "uop_internal.h"

static bool canonical(uint64_t la)
{
	return (uint64_t)((int64_t)(la << 16) >> 16) == la;
}

int sys_access(struct emu_vcpu *v, uint64_t la, void *buf, unsigned int len, bool write)
{
	unsigned int cpl = v->cpl;
	int ret;

	v->cpl = 0;
	v->tlb = v->tlb_all.e[0];
	ret = write ? emu_write_slow(v, la, len, buf, EMU_DS)
		    : emu_read_slow(v, la, len, buf, EMU_DS, TLB_READ);
	v->cpl = cpl;
	v->tlb = v->tlb_all.e[cpl == 3];
	return ret;
}

/* Reads the descriptor of (sel) (16 bytes for system descriptors in long mode). Faults with
 * #GP(sel) when it lies outside its table. */
static int read_desc(struct emu_vcpu *v, uint16_t sel, uint64_t d[2], bool sys16)
{
	const struct emu_cpu *c = &v->cpu;
	uint64_t base = sel & 4 ? c->ldt.base : c->gdt_base;
	uint32_t limit = sel & 4 ? c->ldt.limit : c->gdt_limit;
	uint32_t off = sel & ~7u;
	int ret;

	if ((sel & 4) && !c->ldt.present)
		return uop_raise(v, EXC_GP, true, sel & ~3u);
	if (off + (sys16 ? 15u : 7u) > limit)
		return uop_raise(v, EXC_GP, true, sel & ~3u);
	d[1] = 0;
	ret = sys_access(v, base + off, d, sys16 ? 16 : 8, false);
	return ret;
}

static void set_accessed(struct emu_vcpu *v, uint16_t sel, uint64_t d)
{
	uint64_t base = sel & 4 ? v->cpu.ldt.base : v->cpu.gdt_base;
	uint8_t b = (uint8_t)(d >> 40);

	if (b & 1)
		return;
	b |= 1;
	sys_access(v, base + (sel & ~7u) + 5, &b, 1, true);
}

static struct emu_seg seg_from(uint16_t sel, const uint64_t d[2])
{
	struct emu_seg s;
	uint32_t limit = (uint32_t)((d[0] & 0xffff) | ((d[0] >> 32) & 0xf0000));

	s.sel = sel;
	s.base = ((d[0] >> 16) & 0xffffff) | (((d[0] >> 56) & 0xff) << 24) | (d[1] << 32);
	s.g = (d[0] >> 55) & 1;
	s.limit = s.g ? (limit << 12) | 0xfff : limit;
	s.type = (d[0] >> 40) & 0xf;
	s.s = (d[0] >> 44) & 1;
	s.dpl = (d[0] >> 45) & 3;
	s.present = (d[0] >> 47) & 1;
	s.l = (d[0] >> 53) & 1;
	s.db = (d[0] >> 54) & 1;
	return s;
}

static bool real_mode(const struct emu_vcpu *v)
{
	return !(v->cpu.cr0 & CR0_PE) || (v->cpu.rflags & RF_VM);
}

/* Loads data or stack segment register (seg) with (sel) (SDM Vol. 2 MOV, Vol. 3A 5.6). */
static int load_data_seg(struct emu_vcpu *v, unsigned int seg, uint16_t sel)
{
	struct emu_seg *s = &v->cpu.seg[seg];
	unsigned int cpl = v->cpl, rpl = sel & 3;
	uint64_t d[2];
	struct emu_seg n;
	int ret;

	if (real_mode(v)) {
		s->sel = sel;
		s->base = (uint64_t)sel << 4;
		return 0;
	}
	if (!(sel & ~3u)) {
		if (seg == EMU_SS && !(v->mode64 && cpl < 3 && rpl == cpl))
			return raise_gp0(v);
		*s = (struct emu_seg){.sel = sel, .dpl = seg == EMU_SS ? (uint8_t)cpl : 0};
		if (seg == EMU_SS) {
			/* A null SS in 64-bit mode stays usable (SDM Vol. 3A 5.4.1.1). */
			s->present = 1;
			s->s = 1;
			s->type = 3;
			s->db = 1;
		}
		return 0;
	}
	ret = read_desc(v, sel, d, false);
	if (ret)
		return ret;
	n = seg_from(sel, d);
	if (seg == EMU_SS) {
		if (rpl != cpl || n.dpl != cpl || !n.s || (n.type & 8) || !(n.type & 2))
			return uop_raise(v, EXC_GP, true, sel & ~3u);
		if (!n.present)
			return uop_raise(v, EXC_SS, true, sel & ~3u);
	} else {
		bool code = n.type & 8, conforming = code && (n.type & 4);

		if (!n.s || (code && !(n.type & 2)))
			return uop_raise(v, EXC_GP, true, sel & ~3u);
		if (!conforming && (n.dpl < cpl || n.dpl < rpl))
			return uop_raise(v, EXC_GP, true, sel & ~3u);
		if (!n.present)
			return uop_raise(v, EXC_NP, true, sel & ~3u);
	}
	set_accessed(v, sel, d[0]);
	n.type |= 1;
	if (v->mode64 && (seg == EMU_FS || seg == EMU_GS))
		n.base &= 0xffffffffull;
	*s = n;
	return 0;
}

/* Checks (sel) as the target code segment of a far transfer at privilege (cpl) after it:
 * (ret) true for ret/iret, which may go to an outer level. */
static int load_code_seg(struct emu_vcpu *v, uint16_t sel, unsigned int new_cpl,
			 struct emu_seg *out)
{
	uint64_t d[2];
	int ret;

	if (real_mode(v)) {
		*out = v->cpu.seg[EMU_CS];
		out->sel = sel;
		out->base = (uint64_t)sel << 4;
		return 0;
	}
	if (!(sel & ~3u))
		return raise_gp0(v);
	ret = read_desc(v, sel, d, false);
	if (ret)
		return ret;
	*out = seg_from(sel, d);
	if (!out->s) {
		bool lma = v->cpu.efer & (1ull << 10);
		unsigned int t = out->type & 0xf;

		/* IA-32e mode has no task switches: a TSS, a task gate or any other system
		 * descriptor but a call gate is #GP(selector) (SDM Vol. 2A JMP and CALL, "IF
		 * IA32_EFER.LMA = 1"; Vol. 3A 7.7). Elsewhere TSSs and task gates switch tasks. */
		if (t == 0xc || (!lma && (t == 1 || t == 3 || t == 4 || t == 5 || t == 9 ||
					  t == 0xb)))
			return uop_stop(v, "far transfer through a system descriptor (selector "
					"0x%x): call gates and task switches are not offered", sel);
		return uop_raise(v, EXC_GP, true, sel & ~3u);
	}
	if (!(out->type & 8))
		return uop_raise(v, EXC_GP, true, sel & ~3u);
	if (out->type & 4) {
		if (out->dpl > new_cpl)
			return uop_raise(v, EXC_GP, true, sel & ~3u);
	} else if (out->dpl != new_cpl) {
		return uop_raise(v, EXC_GP, true, sel & ~3u);
	}
	if (!out->present)
		return uop_raise(v, EXC_NP, true, sel & ~3u);
	set_accessed(v, sel, d[0]);
	out->type |= 1;
	out->sel = (uint16_t)((sel & ~3u) | new_cpl);
	out->dpl = out->type & 4 ? out->dpl : (uint8_t)new_cpl;
	/* CPL lives in SS.DPL and CS.DPL here; conforming code keeps the CPL. */
	if (out->type & 4)
		out->dpl = (uint8_t)new_cpl;
	return 0;
}

static void commit_cs(struct emu_vcpu *v, const struct emu_seg *cs, uint64_t rip)
{
	v->cpu.seg[EMU_CS] = *cs;
	v->cpu.rip = rip;
	emu_vcpu_mode_changed(v, false);
}

UOP_DEF(mov_sreg_w)
{
	uint64_t sel;
	int ret;

	if (u->reg == EMU_CS)
		return raise_ud(v);
	ret = src_get(v, u, &sel);
	if (!ret)
		ret = load_data_seg(v, u->reg, (uint16_t)sel);
	if (ret)
		return ret;
	if (u->reg == EMU_SS)
		v->int_shadow = v->dbg_shadow = true;
	emu_vcpu_mode_changed(v, false);
	return exit_after(v, u, EXIT_MODE);
}

UOP_DEF(mov_sreg_r)
{
	uint64_t sel = v->cpu.seg[u->rm].sel, la;
	int ret;

	if (u->flags & UOP_F_MEMDST) {
		ret = uop_linear(v, u->seg, uop_ea(v, u), 2, true, &la);
		return ret ? ret : mem_write(v, la, 2, sel, u->seg);
	}
	reg_set(v, u->reg, u->osz, sel);
	return EXIT_NEXT;
}

UOP_DEF(push_sreg)
{
	return push_val(v, v->cpu.seg[u->rm].sel, u->osz);
}

UOP_DEF(pop_sreg)
{
	uint64_t sel;
	int ret = stack_peek(v, 0, u->osz, &sel);

	if (!ret)
		ret = load_data_seg(v, u->reg, (uint16_t)sel);
	if (ret)
		return ret;
	sp_set(v, sp_get(v) + u->osz);
	if (u->reg == EMU_SS)
		v->int_shadow = v->dbg_shadow = true;
	emu_vcpu_mode_changed(v, false);
	return exit_after(v, u, EXIT_MODE);
}

/* The far pointer of (u): immediate, or m16:16/32/64 in memory (offset first). */
static int far_operand(struct emu_vcpu *v, const struct emu_uop *u, uint64_t *off,
		       uint16_t *sel)
{
	uint64_t la, s = 0;
	int ret;

	if (u->flags & UOP_F_IMM) {
		*off = u->imm;
		*sel = (uint16_t)u->imm2;
		return 0;
	}
	ret = uop_linear(v, u->seg, uop_ea(v, u), u->osz + 2u, false, &la);
	if (!ret)
		ret = emu_read_slow(v, la, u->osz, off, u->seg, TLB_READ);
	if (!ret)
		ret = emu_read_slow(v, la + u->osz, 2, &s, u->seg, TLB_READ);
	*sel = (uint16_t)s;
	return ret;
}

static int check_target(struct emu_vcpu *v, const struct emu_seg *cs, uint64_t *off,
			unsigned int osz)
{
	if (cs->l && (v->cpu.efer & (1ull << 10))) {
		if (!canonical(*off))
			return raise_gp0(v);
		return 0;
	}
	*off &= osz == 2 ? 0xffff : 0xffffffff;
	if (!real_mode(v) && *off > cs->limit)
		return raise_gp0(v);
	return 0;
}

UOP_DEF(jmp_far)
{
	struct emu_seg cs;
	uint64_t off = 0;
	uint16_t sel = 0;
	int ret = far_operand(v, u, &off, &sel);

	if (!ret)
		ret = load_code_seg(v, sel, v->cpl, &cs);
	if (!ret)
		ret = check_target(v, &cs, &off, u->osz);
	if (ret)
		return ret;
	commit_cs(v, &cs, off);
	return EXIT_MODE;
}

UOP_DEF(call_far)
{
	struct emu_seg cs;
	uint64_t off = 0, sp = v->cpu.gpr[EMU_RSP];
	uint16_t sel = 0;
	int ret = far_operand(v, u, &off, &sel);

	if (!ret)
		ret = load_code_seg(v, sel, v->cpl, &cs);
	if (!ret)
		ret = check_target(v, &cs, &off, u->osz);
	if (!ret)
		ret = push_val(v, v->cpu.seg[EMU_CS].sel, u->osz);
	if (!ret)
		ret = push_val(v, u->next_rip, u->osz);
	if (ret) {
		v->cpu.gpr[EMU_RSP] = sp;
		return ret;
	}
	commit_cs(v, &cs, off);
	return EXIT_MODE;
}

/* After a return to an outer privilege level, data segments the new level may not use are
 * nulled (SDM Vol. 2 RET, IRET). */
static void null_inner_segments(struct emu_vcpu *v)
{
	static const unsigned int segs[] = {EMU_ES, EMU_DS, EMU_FS, EMU_GS};

	for (unsigned int i = 0; i < 4; i++) {
		struct emu_seg *s = &v->cpu.seg[segs[i]];
		bool conforming_code = (s->type & 0xc) == 0xc;

		if (!(s->sel & ~3u) || !s->present)
			continue;
		if (s->dpl < v->cpl && !conforming_code) {
			uint64_t base = s->base;

			*s = (struct emu_seg){0};
			if (v->mode64 && (segs[i] == EMU_FS || segs[i] == EMU_GS))
				s->base = base;
		}
	}
}

UOP_DEF(ret_far)
{
	unsigned int osz = u->osz, rpl;
	uint64_t off, sel, nsp, nss;
	struct emu_seg cs, ss;
	int ret = stack_peek(v, 0, osz, &off);

	if (!ret)
		ret = stack_peek(v, osz, osz, &sel);
	if (ret)
		return ret;
	rpl = real_mode(v) ? 0 : sel & 3;
	if (rpl < v->cpl)
		return uop_raise(v, EXC_GP, true, (uint32_t)sel & ~3u);
	ret = load_code_seg(v, (uint16_t)sel, real_mode(v) ? v->cpl : rpl, &cs);
	if (!ret)
		ret = check_target(v, &cs, &off, osz);
	if (ret)
		return ret;
	if (rpl == v->cpl) {
		sp_set(v, sp_get(v) + 2 * osz + u->imm);
		commit_cs(v, &cs, off);
		return EXIT_MODE;
	}
	/* To an outer level: SS:RSP follow on the stack. */
	ret = stack_peek(v, 2 * osz + (unsigned int)u->imm, osz, &nsp);
	if (!ret)
		ret = stack_peek(v, 3 * osz + (unsigned int)u->imm, osz, &nss);
	if (ret)
		return ret;
	{
		unsigned int old = v->cpl;

		v->cpl = rpl;
		ret = load_data_seg(v, EMU_SS, (uint16_t)nss);
		v->cpl = old;
		if (ret)
			return ret;
	}
	ss = v->cpu.seg[EMU_SS];
	commit_cs(v, &cs, off);
	v->cpu.seg[EMU_SS] = ss;
	v->cpu.gpr[EMU_RSP] = nsp + u->imm;
	emu_vcpu_mode_changed(v, false);
	null_inner_segments(v);
	emu_vcpu_mode_changed(v, false);
	return EXIT_MODE;
}

/* iret (SDM Vol. 2 IRET): real mode, protected mode without task return, and IA-32e mode. */
UOP_DEF(iret)
{
	unsigned int osz = u->osz, cpl = v->cpl, rpl, iopl;
	uint64_t off, sel, fl, nsp = 0, nss = 0, mask, old;
	bool long_mode = v->cpu.efer & (1ull << 10), outer;
	struct emu_seg cs, ss;
	int ret;

	ret = stack_peek(v, 0, osz, &off);
	if (!ret)
		ret = stack_peek(v, osz, osz, &sel);
	if (!ret)
		ret = stack_peek(v, 2 * osz, osz, &fl);
	if (ret)
		return ret;
	old = emu_flags(v);
	if (real_mode(v)) {
		if (v->cpu.rflags & RF_VM)
			return uop_stop(v, "iret in virtual-8086 mode is not offered");
		load_code_seg(v, (uint16_t)sel, 0, &cs);
		sp_set(v, sp_get(v) + 3 * osz);
		mask = osz == 2 ? 0xffff : 0x257fd5;
		emu_flags_set(v, (old & ~mask) | (fl & mask));
		commit_cs(v, &cs, off & (osz == 2 ? 0xffff : 0xffffffff));
		return EXIT_MODE;
	}
	/* IA-32e mode has no nested-task return: NT=1 is #GP(0) (SDM Vol. 2A IRET). */
	if ((old & RF_NT) && long_mode)
		return raise_gp0(v);
	if (old & RF_NT)
		return uop_stop(v, "iret with NT set (task return) is not offered");
	rpl = sel & 3;
	if (rpl < cpl)
		return uop_raise(v, EXC_GP, true, (uint32_t)sel & ~3u);
	outer = rpl > cpl;
	if (long_mode || outer) {
		ret = stack_peek(v, 3 * osz, osz, &nsp);
		if (!ret)
			ret = stack_peek(v, 4 * osz, osz, &nss);
		if (ret)
			return ret;
	}
	if (!long_mode && (fl & RF_VM) && cpl == 0)
		return uop_stop(v, "iret to virtual-8086 mode is not offered");
	ret = load_code_seg(v, (uint16_t)sel, rpl, &cs);
	if (!ret)
		ret = check_target(v, &cs, &off, osz);
	if (ret)
		return ret;
	if (long_mode || outer) {
		v->cpl = rpl;
		if (!(nss & ~3u) && long_mode && !(cs.l && rpl < 3)) {
			v->cpl = cpl;
			return raise_gp0(v);
		}
		ret = load_data_seg(v, EMU_SS, (uint16_t)nss);
		if (ret) {
			v->cpl = cpl;
			return ret;
		}
		ss = v->cpu.seg[EMU_SS];
		v->cpl = cpl;
	} else {
		ss = v->cpu.seg[EMU_SS];
	}
	/* Which flags iret may change at this privilege (SDM Vol. 2 IRET, "return"). */
	iopl = (old >> 12) & 3;
	mask = RF_ARITH | RF_TF | RF_DF | RF_NT | RF_RF | RF_AC | (1ull << 21) | (1ull << 19) |
	       (1ull << 20);
	if (cpl == 0)
		mask |= 3ull << 12;
	if (cpl <= iopl)
		mask |= RF_IF;
	if (osz == 2)
		mask &= 0xffff;
	emu_flags_set(v, (old & ~mask) | (fl & mask));
	if (long_mode || outer)
		v->cpu.gpr[EMU_RSP] = osz == 8 ? nsp : osz == 4 ? (uint32_t)nsp : (uint16_t)nsp;
	else
		sp_set(v, sp_get(v) + 3 * osz);
	commit_cs(v, &cs, off);
	v->cpu.seg[EMU_SS] = ss;
	emu_vcpu_mode_changed(v, false);
	if (outer) {
		null_inner_segments(v);
		emu_vcpu_mode_changed(v, false);
	}
	return EXIT_MODE;
}

/* --- task register and LDT --- */

/* The GDT system descriptor ltr (a TSS) or lldt (an LDT) loads from its operand (SDM Vol. 2
 * LTR, LLDT). Returns 0 with (*sel), (d) and (*t) filled, NULL_SELECTOR for a null selector
 * (lldt's way of unloading the LDT; ltr faults), or the exit. */
#define NULL_SELECTOR (-1)
static int system_desc(struct emu_vcpu *v, const struct emu_uop *u, bool ldt, uint64_t *sel,
		       uint64_t d[2], struct emu_seg *t)
{
	bool lm = v->cpu.efer & (1ull << 10);
	uint32_t err;
	int ret;

	if (real_mode(v))
		return raise_ud(v);
	if (v->cpl)
		return raise_gp0(v);
	ret = src_get(v, u, sel);
	if (ret)
		return ret;
	err = (uint32_t)*sel & ~3u;
	if (!err && ldt)
		return NULL_SELECTOR;
	if (!err || (*sel & 4))
		return uop_raise(v, EXC_GP, true, err);
	ret = read_desc(v, (uint16_t)*sel, d, lm);
	if (ret)
		return ret;
	*t = seg_from((uint16_t)*sel, d);
	if (t->s || (ldt ? t->type != 2 : t->type != 9 && !(t->type == 1 && !lm)))
		return uop_raise(v, EXC_GP, true, err);
	if (!t->present)
		return uop_raise(v, EXC_NP, true, err);
	if (!lm)
		t->base &= 0xffffffffull;
	return 0;
}

UOP_DEF(ltr)
{
	uint64_t sel, d[2];
	struct emu_seg t;
	uint8_t busy;
	int ret = system_desc(v, u, false, &sel, d, &t);

	if (ret)
		return ret;
	/* Mark it busy in the GDT. */
	busy = (uint8_t)(d[0] >> 40) | 2;
	ret = sys_access(v, v->cpu.gdt_base + (sel & ~7u) + 5, &busy, 1, true);
	if (ret)
		return ret;
	t.type |= 2;
	v->cpu.tr = t;
	return exit_after(v, u, EXIT_MODE);
}

UOP_DEF(lldt)
{
	uint64_t sel, d[2];
	struct emu_seg t;
	int ret = system_desc(v, u, true, &sel, d, &t);

	if (ret == NULL_SELECTOR)
		t = (struct emu_seg){.sel = (uint16_t)sel};
	else if (ret)
		return ret;
	v->cpu.ldt = t;
	return exit_after(v, u, EXIT_MODE);
}

static int store_sel(struct emu_vcpu *v, const struct emu_uop *u, uint16_t sel)
{
	uint64_t la;
	int ret;

	if (real_mode(v))
		return raise_ud(v);
	if (u->flags & UOP_F_MEMDST) {
		ret = uop_linear(v, u->seg, uop_ea(v, u), 2, true, &la);
		return ret ? ret : mem_write(v, la, 2, sel, u->seg);
	}
	reg_set(v, u->reg, u->osz, sel);
	return EXIT_NEXT;
}

UOP_DEF(str)
{
	return store_sel(v, u, v->cpu.tr.sel);
}

UOP_DEF(sldt)
{
	return store_sel(v, u, v->cpu.ldt.sel);
}
