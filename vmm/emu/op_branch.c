/* op_branch.c: near control transfers: jmp, jcc, jcxz, loop, call, ret (SDM Vol. 2). Direct
 * branches leave through the block's links (EXIT_JUMP_TAKEN/NOT), indirect ones through a
 * lookup (EXIT_BRANCH). */
#include "uop_internal.h"

UOP_DEF(jmp)
{
	v->cpu.rip = u->imm;
	return EXIT_JUMP_TAKEN;
}

UOP_DEF(jcc)
{
	if (emu_cond(v, u->cond)) {
		v->cpu.rip = u->imm;
		return EXIT_JUMP_TAKEN;
	}
	v->cpu.rip = u->next_rip;
	return EXIT_JUMP_NOT;
}

/* The count register of jcxz and loop is sized by the address size. */
UOP_DEF(jcxz)
{
	if (reg_get(v, EMU_RCX, u->asz) == 0) {
		v->cpu.rip = u->imm;
		return EXIT_JUMP_TAKEN;
	}
	v->cpu.rip = u->next_rip;
	return EXIT_JUMP_NOT;
}

UOP_DEF(loop)
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
		return EXIT_JUMP_TAKEN;
	}
	v->cpu.rip = u->next_rip;
	return EXIT_JUMP_NOT;
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
