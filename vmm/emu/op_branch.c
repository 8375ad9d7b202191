/* op_branch.c: near control transfers: jmp, jcc, jcxz, loop, call, ret (SDM Vol. 2). Direct
 * branches leave through the block's links (EXIT_JUMP_TAKEN/NOT), indirect ones through a
 * lookup (EXIT_BRANCH). */
#include <stdatomic.h>

#include "uop_internal.h"

/* Direct branches are not UOP_DEF handlers: they leave the block themselves, either straight
 * into the first uop of the successor the engine linked into them (imm2 for the taken side,
 * disp for the fall-through: fields these uops do not otherwise use), or back to the engine.
 * The engine links only blocks on the same page (the mapping cannot differ), bounds the
 * number of blocks run this way (chain_budget) and stops following links as soon as another
 * thread wants its attention (an interrupt, a stop). */
static inline int leave(struct emu_vcpu *v, const struct emu_uop *u, uint64_t link, int code)
{
	const struct emu_uop *n = (const struct emu_uop *)(uintptr_t)link;

	if (n && v->chain_budget &&
	    !atomic_load_explicit(v->attention, memory_order_relaxed)) {
		v->chain_budget--;
		v->chained_insns += u->pos + (u->len != 0);
		return n->fn(v, n);
	}
	v->cur = u;
	return code;
}

bool emu_uop_link(struct emu_uop *u, bool taken, const struct emu_uop *target)
{
	if (u->fn != uop_jmp && u->fn != uop_jcc && u->fn != uop_jcxz && u->fn != uop_loop)
		return false;
	if (taken)
		u->imm2 = (uint64_t)(uintptr_t)target;
	else
		u->disp = (int64_t)(uintptr_t)target;
	return true;
}

int uop_jmp(struct emu_vcpu *v, const struct emu_uop *u)
{
	v->cpu.rip = u->imm;
	return leave(v, u, u->imm2, EXIT_JUMP_TAKEN);
}

int uop_jcc(struct emu_vcpu *v, const struct emu_uop *u)
{
	if (emu_cond(v, u->cond)) {
		v->cpu.rip = u->imm;
		return leave(v, u, u->imm2, EXIT_JUMP_TAKEN);
	}
	v->cpu.rip = u->next_rip;
	return leave(v, u, (uint64_t)u->disp, EXIT_JUMP_NOT);
}

/* The count register of jcxz and loop is sized by the address size. */
int uop_jcxz(struct emu_vcpu *v, const struct emu_uop *u)
{
	if (reg_get(v, EMU_RCX, u->asz) == 0) {
		v->cpu.rip = u->imm;
		return leave(v, u, u->imm2, EXIT_JUMP_TAKEN);
	}
	v->cpu.rip = u->next_rip;
	return leave(v, u, (uint64_t)u->disp, EXIT_JUMP_NOT);
}

int uop_loop(struct emu_vcpu *v, const struct emu_uop *u)
{
	uint64_t c = (reg_get(v, EMU_RCX, u->asz) - 1) & asz_mask(u->asz);
	bool take = c != 0;

	reg_set(v, EMU_RCX, u->asz, c);
	if (u->cond == 1)
		take = take && emu_cond(v, 4);	/* loope: ZF */
	else if (u->cond == 2)
		take = take && emu_cond(v, 5);	/* loopne: !ZF */
	if (take) {
		v->cpu.rip = u->imm;
		return leave(v, u, u->imm2, EXIT_JUMP_TAKEN);
	}
	v->cpu.rip = u->next_rip;
	return leave(v, u, (uint64_t)u->disp, EXIT_JUMP_NOT);
}

UOP_DEF(jmp_ind)
{
	uint64_t t;
	int ret = src_get(v, u, &t);

	return ret ? ret : branch_to(v, t, u->osz);
}

UOP_DEF(call)
{
	int ret = push_val(v, u->next_rip, u->osz);

	if (ret)
		return ret;
	v->cpu.rip = u->imm;
	return EXIT_JUMP_TAKEN;
}

UOP_DEF(call_ind)
{
	uint64_t t, sp = v->cpu.gpr[EMU_RSP];
	int ret = src_get(v, u, &t);

	if (ret)
		return ret;
	if (v->mode64 && (uint64_t)((int64_t)(t << 16) >> 16) != t)
		return raise_gp0(v);
	ret = push_val(v, u->next_rip, u->osz);
	if (ret)
		return ret;
	ret = branch_to(v, t, u->osz);
	if (ret == EXIT_FAULT)
		v->cpu.gpr[EMU_RSP] = sp;
	return ret;
}

UOP_DEF(ret)
{
	uint64_t t;
	int ret = stack_peek(v, 0, u->osz, &t);

	if (ret)
		return ret;
	if (v->mode64 && (uint64_t)((int64_t)(t << 16) >> 16) != t)
		return raise_gp0(v);
	sp_set(v, sp_get(v) + u->osz + u->imm);
	return branch_to(v, t, u->osz);
}
