/* decode.c: one x86 instruction, decoded once by Zydis, into a uop: the handler that runs it
 * and its operands resolved (registers as indices, the memory form, immediates and branch
 * targets as absolute values). Instructions without a uop handler become generic uops, which
 * run the class handlers of emu.c. */
#include "uop_internal.h"

static ZydisMachineMode machine_mode(const struct emu_vcpu *v, ZydisStackWidth *sw)
{
	const struct emu_cpu *c = &v->cpu;

	if (v->mode64) {
		*sw = ZYDIS_STACK_WIDTH_64;
		return ZYDIS_MACHINE_MODE_LONG_64;
	}
	*sw = c->seg[EMU_SS].db ? ZYDIS_STACK_WIDTH_32 : ZYDIS_STACK_WIDTH_16;
	if (!(c->cr0 & CR0_PE))
		return ZYDIS_MACHINE_MODE_REAL_16;
	if (c->seg[EMU_CS].db)
		return emu_long_mode(c) ? ZYDIS_MACHINE_MODE_LONG_COMPAT_32
					: ZYDIS_MACHINE_MODE_LEGACY_32;
	return emu_long_mode(c) ? ZYDIS_MACHINE_MODE_LONG_COMPAT_16 : ZYDIS_MACHINE_MODE_LEGACY_16;
}

/* GPR index of a Zydis register: 0-15, 16-19 for AH/CH/DH/BH, or UOP_REG_NONE. */
static uint8_t gpr(ZydisRegister r)
{
	switch (r) {
	case ZYDIS_REGISTER_AH: return 16;
	case ZYDIS_REGISTER_CH: return 17;
	case ZYDIS_REGISTER_DH: return 18;
	case ZYDIS_REGISTER_BH: return 19;
	default: break;
	}
	int i = emu_gpr_index(r);

	return i < 0 ? UOP_REG_NONE : (uint8_t)i;
}

static uint8_t sreg(ZydisRegister r)
{
	switch (r) {
	case ZYDIS_REGISTER_ES: return EMU_ES;
	case ZYDIS_REGISTER_CS: return EMU_CS;
	case ZYDIS_REGISTER_SS: return EMU_SS;
	case ZYDIS_REGISTER_FS: return EMU_FS;
	case ZYDIS_REGISTER_GS: return EMU_GS;
	case ZYDIS_REGISTER_DS: return EMU_DS;
	default: return UOP_REG_NONE;
	}
}

/* Memory operand (op) into the uop's memory form. False if it cannot be expressed. */
static bool set_mem(struct emu_uop *u, const ZydisDecodedOperand *op)
{
	ZydisRegister b = op->mem.base;

	u->flags |= UOP_F_MEM;
	u->disp = op->mem.disp.has_displacement ? op->mem.disp.value : 0;
	u->base = u->index = UOP_REG_NONE;
	u->scale = op->mem.scale ? op->mem.scale : 1;
	u->seg = sreg(op->mem.segment);
	if (u->seg == UOP_REG_NONE)
		u->seg = EMU_DS;
	if (b == ZYDIS_REGISTER_RIP || b == ZYDIS_REGISTER_EIP) {
		u->disp += (int64_t)u->next_rip; /* the key of a block includes its RIP */
	} else if (b != ZYDIS_REGISTER_NONE) {
		u->base = gpr(b);
		if (u->base == UOP_REG_NONE || u->base >= 16)
			return false;
	}
	if (op->mem.index != ZYDIS_REGISTER_NONE) {
		u->index = gpr(op->mem.index);
		if (u->index == UOP_REG_NONE || u->index >= 16)
			return false;
	}
	return true;
}

static uint64_t imm_of(const ZydisDecodedOperand *op, unsigned int osz)
{
	return op->imm.value.u & size_mask(osz);
}

/* The destination operand (op): register into (reg), or memory. */
static bool set_dst(struct emu_uop *u, const ZydisDecodedOperand *op)
{
	if (op->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		u->reg = gpr(op->reg.value);
		return u->reg != UOP_REG_NONE;
	}
	if (op->type == ZYDIS_OPERAND_TYPE_MEMORY) {
		u->flags |= UOP_F_MEMDST;
		return set_mem(u, op);
	}
	return false;
}

/* The source operand (op): register into (rm), immediate, or memory. */
static bool set_src(struct emu_uop *u, const ZydisDecodedOperand *op)
{
	switch (op->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		u->rm = gpr(op->reg.value);
		return u->rm != UOP_REG_NONE;
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		u->flags |= UOP_F_IMM;
		u->imm = imm_of(op, u->osz);
		return true;
	case ZYDIS_OPERAND_TYPE_MEMORY:
		if (u->flags & UOP_F_MEM)
			return false;
		return set_mem(u, op);
	default:
		return false;
	}
}

/* dst, src in operands 0 and 1. */
static bool two(struct emu_uop *u, const ZydisDecodedOperand *ops)
{
	u->osz = (uint8_t)(ops[0].size / 8);
	return set_dst(u, &ops[0]) && set_src(u, &ops[1]);
}

/* One operand that is both read and written (inc, neg, setcc...). */
static bool one_dst(struct emu_uop *u, const ZydisDecodedOperand *ops)
{
	u->osz = (uint8_t)(ops[0].size / 8);
	return set_dst(u, &ops[0]);
}

/* One operand that is only read (mul, push, jmp r/m...). */
static bool one_src(struct emu_uop *u, const ZydisDecodedOperand *op, unsigned int osz)
{
	u->osz = (uint8_t)osz;
	return set_src(u, op);
}

static uint64_t rel_target(const struct emu_uop *u, const ZydisDecodedOperand *op,
			   unsigned int osz)
{
	uint64_t t = u->next_rip + (uint64_t)op->imm.value.s;

	return osz == 8 ? t : t & size_mask(osz);
}

/* Condition code (Jcc encoding order) of a mnemonic family starting at (first). */
static int cond_of(ZydisMnemonic m)
{
	static const ZydisMnemonic jcc[16] = {
		ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JB, ZYDIS_MNEMONIC_JNB,
		ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE,
		ZYDIS_MNEMONIC_JS, ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JP, ZYDIS_MNEMONIC_JNP,
		ZYDIS_MNEMONIC_JL, ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNLE,
	};
	static const ZydisMnemonic setcc[16] = {
		ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETNB,
		ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ, ZYDIS_MNEMONIC_SETBE,
		ZYDIS_MNEMONIC_SETNBE, ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETNS,
		ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETNP, ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL,
		ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNLE,
	};
	static const ZydisMnemonic cmov[16] = {
		ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB,
		ZYDIS_MNEMONIC_CMOVNB, ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ,
		ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE, ZYDIS_MNEMONIC_CMOVS,
		ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP, ZYDIS_MNEMONIC_CMOVNP,
		ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE,
		ZYDIS_MNEMONIC_CMOVNLE,
	};
	for (int i = 0; i < 16; i++)
		if (jcc[i] == m || setcc[i] == m || cmov[i] == m)
			return i;
	return -1;
}

/* Shift and rotate sub-operations (uop_shift's cond). */
enum { SH_ROL, SH_ROR, SH_RCL, SH_RCR, SH_SHL, SH_SHR, SH_SAL, SH_SAR };

static bool is_xmm(const ZydisDecodedOperand *op)
{
	return op->type == ZYDIS_OPERAND_TYPE_REGISTER &&
	       ZydisRegisterGetClass(op->reg.value) == ZYDIS_REGCLASS_XMM;
}

static bool string_op(struct emu_uop *u, const ZydisDecodedInstruction *in,
		      const ZydisDecodedOperand *ops, emu_uop_fn fn)
{
	u->fn = fn;
	u->osz = (uint8_t)(in->operand_width / 8);
	u->seg = EMU_DS;
	/* The source segment can be overridden; ES:RDI cannot (SDM Vol. 2 MOVS). */
	for (unsigned int i = 0; i < in->operand_count; i++)
		if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    ops[i].mem.base != ZYDIS_REGISTER_NONE &&
		    gpr(ops[i].mem.base) == EMU_RSI)
			u->seg = sreg(ops[i].mem.segment);
	if (u->seg == UOP_REG_NONE)
		u->seg = EMU_DS;
	if (in->attributes & ZYDIS_ATTRIB_HAS_REP)
		u->flags |= UOP_F_REP;
	if (in->attributes & ZYDIS_ATTRIB_HAS_REPE)
		u->flags |= UOP_F_REP;
	if (in->attributes & ZYDIS_ATTRIB_HAS_REPNE)
		u->flags |= UOP_F_REPNE;
	return true;
}

static bool far_pointer(struct emu_uop *u, const ZydisDecodedOperand *op)
{
	if (op->type == ZYDIS_OPERAND_TYPE_POINTER) {
		u->flags |= UOP_F_IMM;
		u->imm = op->ptr.offset;
		u->imm2 = op->ptr.segment;
		return true;
	}
	if (op->type == ZYDIS_OPERAND_TYPE_MEMORY)
		return set_mem(u, op);
	return false;
}

/* The register-register or register-immediate handler of an ALU operation. */
static emu_uop_fn alu_reg_form(emu_uop_fn fn, bool imm, bool q)
{
#define FORMS(n)                                                                                \
	if (fn == uop_##n)                                                                      \
		return imm ? (q ? uop_##n##_ri64 : uop_##n##_ri) : (q ? uop_##n##_rr64 : uop_##n##_rr);
	FORMS(add) FORMS(sub) FORMS(cmp) FORMS(and) FORMS(or) FORMS(xor) FORMS(test)
#undef FORMS
	return fn;
}

/* Fills (u) for the decoded instruction; false leaves it to the generic path. */
static bool pick(struct emu_uop *u, const ZydisDecodedInstruction *in,
		 const ZydisDecodedOperand *ops)
{
	ZydisMnemonic m = in->mnemonic;
	unsigned int ow = in->operand_width / 8;
	bool far = in->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR;

	if (in->attributes & ZYDIS_ATTRIB_HAS_LOCK)
		u->flags |= UOP_F_LOCK;
	switch (m) {
	case ZYDIS_MNEMONIC_MOV:
		if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER) {
			ZydisRegisterClass c = ZydisRegisterGetClass(ops[0].reg.value);

			if (c == ZYDIS_REGCLASS_CONTROL || c == ZYDIS_REGCLASS_DEBUG) {
				u->fn = c == ZYDIS_REGCLASS_CONTROL ? uop_mov_cr : uop_mov_dr;
				u->reg = (uint8_t)ZydisRegisterGetId(ops[0].reg.value);
				u->rm = gpr(ops[1].reg.value);
				u->cond = 1; /* write */
				return u->rm != UOP_REG_NONE;
			}
			if (c == ZYDIS_REGCLASS_SEGMENT) {
				u->fn = uop_mov_sreg_w;
				u->reg = sreg(ops[0].reg.value);
				u->osz = 2;
				return u->reg != UOP_REG_NONE && set_src(u, &ops[1]);
			}
		}
		if (ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER) {
			ZydisRegisterClass c = ZydisRegisterGetClass(ops[1].reg.value);

			if (c == ZYDIS_REGCLASS_CONTROL || c == ZYDIS_REGCLASS_DEBUG) {
				u->fn = c == ZYDIS_REGCLASS_CONTROL ? uop_mov_cr : uop_mov_dr;
				u->reg = (uint8_t)ZydisRegisterGetId(ops[1].reg.value);
				u->rm = gpr(ops[0].reg.value);
				return u->rm != UOP_REG_NONE;
			}
			if (c == ZYDIS_REGCLASS_SEGMENT) {
				u->fn = uop_mov_sreg_r;
				u->rm = sreg(ops[1].reg.value);
				u->osz = (uint8_t)(ops[0].size / 8);
				if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER) {
					u->reg = gpr(ops[0].reg.value);
					return u->reg != UOP_REG_NONE;
				}
				u->osz = 2;
				u->flags |= UOP_F_MEMDST;
				return set_mem(u, &ops[0]);
			}
		}
		if (!two(u, ops))
			return false;
		if (u->flags & UOP_F_MEMDST)
			u->fn = u->osz == 8 && !(u->flags & UOP_F_IMM) && u->rm < 16
					? uop_mov_store64 : uop_mov_store;
		else if (u->flags & UOP_F_IMM)
			u->fn = uop_mov_ri;
		else if (u->flags & UOP_F_MEM)
			u->fn = u->osz == 8 && u->reg < 16 ? uop_mov_load64 : uop_mov_load;
		else
			u->fn = u->osz == 8 && u->reg < 16 && u->rm < 16 ? uop_mov_rr64 : uop_mov_rr;
		return true;
	case ZYDIS_MNEMONIC_MOVZX:
	case ZYDIS_MNEMONIC_MOVSX:
	case ZYDIS_MNEMONIC_MOVSXD:
		u->fn = m == ZYDIS_MNEMONIC_MOVZX ? uop_movzx : uop_movsx;
		u->osz2 = (uint8_t)(ops[1].size / 8);
		if (!two(u, ops))
			return false;
		return true;
	case ZYDIS_MNEMONIC_LEA:
		u->fn = uop_lea;
		u->osz = (uint8_t)(ops[0].size / 8);
		u->reg = gpr(ops[0].reg.value);
		return u->reg != UOP_REG_NONE && set_mem(u, &ops[1]);
	case ZYDIS_MNEMONIC_XCHG:
		u->fn = uop_xchg;
		u->osz = (uint8_t)(ops[0].size / 8);
		if (ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY)
			return set_dst(u, &ops[0]) && set_src(u, &ops[1]);
		if (ops[1].type == ZYDIS_OPERAND_TYPE_MEMORY)
			return set_dst(u, &ops[1]) && set_src(u, &ops[0]);
		return set_dst(u, &ops[0]) && set_src(u, &ops[1]);
	case ZYDIS_MNEMONIC_XADD:
		u->fn = uop_xadd;
		return two(u, ops);
	case ZYDIS_MNEMONIC_CMPXCHG:
		u->fn = uop_cmpxchg;
		return two(u, ops);
	case ZYDIS_MNEMONIC_BSWAP:
		u->fn = uop_bswap;
		return one_dst(u, ops);
	case ZYDIS_MNEMONIC_CBW:
	case ZYDIS_MNEMONIC_CWDE:
	case ZYDIS_MNEMONIC_CDQE:
		u->fn = uop_cbw;
		u->osz = (uint8_t)ow;
		return true;
	case ZYDIS_MNEMONIC_CWD:
	case ZYDIS_MNEMONIC_CDQ:
	case ZYDIS_MNEMONIC_CQO:
		u->fn = uop_cwd;
		u->osz = (uint8_t)ow;
		return true;
	case ZYDIS_MNEMONIC_LAHF: u->fn = uop_lahf; return true;
	case ZYDIS_MNEMONIC_SAHF: u->fn = uop_sahf; return true;
	case ZYDIS_MNEMONIC_PUSH:
		if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(ops[0].reg.value) == ZYDIS_REGCLASS_SEGMENT) {
			u->fn = uop_push_sreg;
			u->osz = (uint8_t)ow;
			u->rm = sreg(ops[0].reg.value);
			return true;
		}
		u->fn = uop_push;
		if (!one_src(u, &ops[0], ow))
			return false;
		if (u->flags & UOP_F_IMM)
			u->imm = (uint64_t)ops[0].imm.value.s & size_mask(ow);
		return true;
	case ZYDIS_MNEMONIC_POP:
		if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(ops[0].reg.value) == ZYDIS_REGCLASS_SEGMENT) {
			u->fn = uop_pop_sreg;
			u->osz = (uint8_t)ow;
			u->reg = sreg(ops[0].reg.value);
			return true;
		}
		u->fn = uop_pop;
		u->osz = (uint8_t)ow;
		return set_dst(u, &ops[0]);
	case ZYDIS_MNEMONIC_PUSHF:
	case ZYDIS_MNEMONIC_PUSHFD:
	case ZYDIS_MNEMONIC_PUSHFQ:
		u->fn = uop_pushf;
		u->osz = (uint8_t)ow;
		return true;
	case ZYDIS_MNEMONIC_POPF:
	case ZYDIS_MNEMONIC_POPFD:
	case ZYDIS_MNEMONIC_POPFQ:
		u->fn = uop_popf;
		u->osz = (uint8_t)ow;
		return true;
	case ZYDIS_MNEMONIC_LEAVE:
		u->fn = uop_leave;
		u->osz = (uint8_t)ow;
		return true;
	case ZYDIS_MNEMONIC_ENTER:
		u->fn = uop_enter;
		u->osz = (uint8_t)ow;
		u->imm = ops[0].imm.value.u & 0xffff;
		u->imm2 = ops[1].imm.value.u & 0x1f;
		return true;
	case ZYDIS_MNEMONIC_ADD: u->fn = uop_add; goto alu;
	case ZYDIS_MNEMONIC_ADC: u->fn = uop_adc; goto alu;
	case ZYDIS_MNEMONIC_SUB: u->fn = uop_sub; goto alu;
	case ZYDIS_MNEMONIC_SBB: u->fn = uop_sbb; goto alu;
	case ZYDIS_MNEMONIC_AND: u->fn = uop_and; goto alu;
	case ZYDIS_MNEMONIC_OR: u->fn = uop_or; goto alu;
	case ZYDIS_MNEMONIC_XOR: u->fn = uop_xor; goto alu;
	case ZYDIS_MNEMONIC_CMP: u->fn = uop_cmp; goto alu;
	case ZYDIS_MNEMONIC_TEST:
		u->fn = uop_test;
alu:
		if (!two(u, ops))
			return false;
		/* Register forms skip the operand-kind tests; 64-bit ones the size switch. */
		if (!(u->flags & UOP_F_MEM) && u->reg < 16 && (u->flags & UOP_F_IMM || u->rm < 16))
			u->fn = alu_reg_form(u->fn, u->flags & UOP_F_IMM, u->osz == 8);
		return true;
	case ZYDIS_MNEMONIC_INC: u->fn = uop_inc; return one_dst(u, ops);
	case ZYDIS_MNEMONIC_DEC: u->fn = uop_dec; return one_dst(u, ops);
	case ZYDIS_MNEMONIC_NEG: u->fn = uop_neg; return one_dst(u, ops);
	case ZYDIS_MNEMONIC_NOT: u->fn = uop_not; return one_dst(u, ops);
	case ZYDIS_MNEMONIC_MUL:
		u->fn = uop_mul;
		return one_src(u, &ops[0], ops[0].size / 8);
	case ZYDIS_MNEMONIC_DIV:
		u->fn = uop_div;
		return one_src(u, &ops[0], ops[0].size / 8);
	case ZYDIS_MNEMONIC_IDIV:
		u->fn = uop_idiv;
		return one_src(u, &ops[0], ops[0].size / 8);
	case ZYDIS_MNEMONIC_IMUL:
		if (in->operand_count_visible == 1) {
			u->fn = uop_imul1;
			return one_src(u, &ops[0], ops[0].size / 8);
		}
		u->fn = uop_imul;
		if (!two(u, ops))
			return false;
		if (in->operand_count_visible == 3) {
			u->cond = 1;
			u->imm2 = imm_of(&ops[2], u->osz);
		}
		return true;
	case ZYDIS_MNEMONIC_ROL: u->cond = SH_ROL; goto shift;
	case ZYDIS_MNEMONIC_ROR: u->cond = SH_ROR; goto shift;
	case ZYDIS_MNEMONIC_RCL: u->cond = SH_RCL; goto shift;
	case ZYDIS_MNEMONIC_RCR: u->cond = SH_RCR; goto shift;
	case ZYDIS_MNEMONIC_SHL: u->cond = SH_SHL; goto shift;
	case ZYDIS_MNEMONIC_SHR: u->cond = SH_SHR; goto shift;
	case ZYDIS_MNEMONIC_SAR:
		u->cond = SH_SAR;
shift:
		u->fn = uop_shift;
		if (!one_dst(u, ops))
			return false;
		if (ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			u->flags |= UOP_F_IMM;
			u->imm = ops[1].imm.value.u & 0xff;
		} else {
			u->rm = EMU_RCX;
		}
		return true;
	case ZYDIS_MNEMONIC_SHLD:
	case ZYDIS_MNEMONIC_SHRD:
		u->fn = uop_shd;
		u->cond = m == ZYDIS_MNEMONIC_SHLD;
		if (!one_dst(u, ops))
			return false;
		u->rm = gpr(ops[1].reg.value);
		if (ops[2].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			u->flags |= UOP_F_IMM;
			u->imm = ops[2].imm.value.u & 0xff;
		} else {
			u->imm2 = 1; /* count in CL */
		}
		return u->rm != UOP_REG_NONE;
	case ZYDIS_MNEMONIC_BT: u->cond = 0; goto bt;
	case ZYDIS_MNEMONIC_BTS: u->cond = 1; goto bt;
	case ZYDIS_MNEMONIC_BTR: u->cond = 2; goto bt;
	case ZYDIS_MNEMONIC_BTC:
		u->cond = 3;
bt:
		u->fn = uop_bt;
		return two(u, ops);
	case ZYDIS_MNEMONIC_BSF: u->cond = 0; goto scan;
	case ZYDIS_MNEMONIC_BSR: u->cond = 1; goto scan;
	case ZYDIS_MNEMONIC_TZCNT: u->cond = 2; goto scan;
	case ZYDIS_MNEMONIC_LZCNT: u->cond = 3; goto scan;
	case ZYDIS_MNEMONIC_POPCNT:
		u->cond = 4;
scan:
		u->fn = uop_bitscan;
		return two(u, ops);
	case ZYDIS_MNEMONIC_CLC: u->cond = 0; goto flagop;
	case ZYDIS_MNEMONIC_STC: u->cond = 1; goto flagop;
	case ZYDIS_MNEMONIC_CMC: u->cond = 2; goto flagop;
	case ZYDIS_MNEMONIC_CLD: u->cond = 3; goto flagop;
	case ZYDIS_MNEMONIC_STD:
		u->cond = 4;
flagop:
		u->fn = uop_flagop;
		return true;
	case ZYDIS_MNEMONIC_PAUSE:
		u->fn = uop_pause;
		return true;
	case ZYDIS_MNEMONIC_NOP:
	case ZYDIS_MNEMONIC_ENDBR32:
	case ZYDIS_MNEMONIC_ENDBR64:
	case ZYDIS_MNEMONIC_LFENCE:
	case ZYDIS_MNEMONIC_SFENCE:
	case ZYDIS_MNEMONIC_MFENCE:
	case ZYDIS_MNEMONIC_PREFETCH:
	case ZYDIS_MNEMONIC_PREFETCHW:
	case ZYDIS_MNEMONIC_PREFETCHT0:
	case ZYDIS_MNEMONIC_PREFETCHT1:
	case ZYDIS_MNEMONIC_PREFETCHT2:
	case ZYDIS_MNEMONIC_PREFETCHNTA:
	case ZYDIS_MNEMONIC_CLFLUSH:
		/* No caches to manage: the engine's memory is the host's, coherent. */
		u->fn = uop_nop;
		return true;
	case ZYDIS_MNEMONIC_CMOVO: case ZYDIS_MNEMONIC_CMOVNO: case ZYDIS_MNEMONIC_CMOVB:
	case ZYDIS_MNEMONIC_CMOVNB: case ZYDIS_MNEMONIC_CMOVZ: case ZYDIS_MNEMONIC_CMOVNZ:
	case ZYDIS_MNEMONIC_CMOVBE: case ZYDIS_MNEMONIC_CMOVNBE: case ZYDIS_MNEMONIC_CMOVS:
	case ZYDIS_MNEMONIC_CMOVNS: case ZYDIS_MNEMONIC_CMOVP: case ZYDIS_MNEMONIC_CMOVNP:
	case ZYDIS_MNEMONIC_CMOVL: case ZYDIS_MNEMONIC_CMOVNL: case ZYDIS_MNEMONIC_CMOVLE:
	case ZYDIS_MNEMONIC_CMOVNLE:
		u->fn = uop_cmov;
		u->cond = (uint8_t)cond_of(m);
		return two(u, ops);
	case ZYDIS_MNEMONIC_SETO: case ZYDIS_MNEMONIC_SETNO: case ZYDIS_MNEMONIC_SETB:
	case ZYDIS_MNEMONIC_SETNB: case ZYDIS_MNEMONIC_SETZ: case ZYDIS_MNEMONIC_SETNZ:
	case ZYDIS_MNEMONIC_SETBE: case ZYDIS_MNEMONIC_SETNBE: case ZYDIS_MNEMONIC_SETS:
	case ZYDIS_MNEMONIC_SETNS: case ZYDIS_MNEMONIC_SETP: case ZYDIS_MNEMONIC_SETNP:
	case ZYDIS_MNEMONIC_SETL: case ZYDIS_MNEMONIC_SETNL: case ZYDIS_MNEMONIC_SETLE:
	case ZYDIS_MNEMONIC_SETNLE:
		u->fn = uop_setcc;
		u->cond = (uint8_t)cond_of(m);
		return one_dst(u, ops);
	case ZYDIS_MNEMONIC_JO: case ZYDIS_MNEMONIC_JNO: case ZYDIS_MNEMONIC_JB:
	case ZYDIS_MNEMONIC_JNB: case ZYDIS_MNEMONIC_JZ: case ZYDIS_MNEMONIC_JNZ:
	case ZYDIS_MNEMONIC_JBE: case ZYDIS_MNEMONIC_JNBE: case ZYDIS_MNEMONIC_JS:
	case ZYDIS_MNEMONIC_JNS: case ZYDIS_MNEMONIC_JP: case ZYDIS_MNEMONIC_JNP:
	case ZYDIS_MNEMONIC_JL: case ZYDIS_MNEMONIC_JNL: case ZYDIS_MNEMONIC_JLE:
	case ZYDIS_MNEMONIC_JNLE:
		u->fn = uop_jcc;
		u->cond = (uint8_t)cond_of(m);
		u->osz = (uint8_t)ow;
		u->imm = rel_target(u, &ops[0], ow);
		return true;
	case ZYDIS_MNEMONIC_JCXZ:
	case ZYDIS_MNEMONIC_JECXZ:
	case ZYDIS_MNEMONIC_JRCXZ:
		u->fn = uop_jcxz;
		u->osz = (uint8_t)ow;
		u->imm = rel_target(u, &ops[0], ow);
		return true;
	case ZYDIS_MNEMONIC_LOOP: u->cond = 0; goto loop;
	case ZYDIS_MNEMONIC_LOOPE: u->cond = 1; goto loop;
	case ZYDIS_MNEMONIC_LOOPNE:
		u->cond = 2;
loop:
		u->fn = uop_loop;
		u->osz = (uint8_t)ow;
		u->imm = rel_target(u, &ops[0], ow);
		return true;
	case ZYDIS_MNEMONIC_JMP:
		if (far) {
			u->fn = uop_jmp_far;
			u->osz = (uint8_t)ow;
			return far_pointer(u, &ops[0]);
		}
		if (ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			u->fn = uop_jmp;
			u->osz = (uint8_t)ow;
			u->imm = rel_target(u, &ops[0], ow);
			return true;
		}
		u->fn = uop_jmp_ind;
		return one_src(u, &ops[0], ow);
	case ZYDIS_MNEMONIC_CALL:
		if (far) {
			u->fn = uop_call_far;
			u->osz = (uint8_t)ow;
			return far_pointer(u, &ops[0]);
		}
		if (ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			u->fn = uop_call;
			u->osz = (uint8_t)ow;
			u->imm = rel_target(u, &ops[0], ow);
			return true;
		}
		u->fn = uop_call_ind;
		return one_src(u, &ops[0], ow);
	case ZYDIS_MNEMONIC_RET:
		u->fn = far ? uop_ret_far : uop_ret;
		u->osz = (uint8_t)ow;
		u->imm = in->operand_count_visible && ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE
				 ? ops[0].imm.value.u & 0xffff
				 : 0;
		return true;
	case ZYDIS_MNEMONIC_IRET:
	case ZYDIS_MNEMONIC_IRETD:
	case ZYDIS_MNEMONIC_IRETQ:
		u->fn = uop_iret;
		u->osz = (uint8_t)ow;
		return true;
	case ZYDIS_MNEMONIC_MOVSB: case ZYDIS_MNEMONIC_MOVSW: case ZYDIS_MNEMONIC_MOVSQ:
		return string_op(u, in, ops, uop_movs);
	case ZYDIS_MNEMONIC_MOVSD:
		if (is_xmm(&ops[0]) || is_xmm(&ops[1]))
			return false;
		return string_op(u, in, ops, uop_movs);
	case ZYDIS_MNEMONIC_STOSB: case ZYDIS_MNEMONIC_STOSW: case ZYDIS_MNEMONIC_STOSD:
	case ZYDIS_MNEMONIC_STOSQ:
		return string_op(u, in, ops, uop_stos);
	case ZYDIS_MNEMONIC_LODSB: case ZYDIS_MNEMONIC_LODSW: case ZYDIS_MNEMONIC_LODSD:
	case ZYDIS_MNEMONIC_LODSQ:
		return string_op(u, in, ops, uop_lods);
	case ZYDIS_MNEMONIC_CMPSB: case ZYDIS_MNEMONIC_CMPSW: case ZYDIS_MNEMONIC_CMPSQ:
		return string_op(u, in, ops, uop_cmps);
	case ZYDIS_MNEMONIC_CMPSD:
		if (is_xmm(&ops[0]) || is_xmm(&ops[1]))
			return false;
		return string_op(u, in, ops, uop_cmps);
	case ZYDIS_MNEMONIC_SCASB: case ZYDIS_MNEMONIC_SCASW: case ZYDIS_MNEMONIC_SCASD:
	case ZYDIS_MNEMONIC_SCASQ:
		return string_op(u, in, ops, uop_scas);
	case ZYDIS_MNEMONIC_INSB: case ZYDIS_MNEMONIC_INSW: case ZYDIS_MNEMONIC_INSD:
		return string_op(u, in, ops, uop_ins);
	case ZYDIS_MNEMONIC_OUTSB: case ZYDIS_MNEMONIC_OUTSW: case ZYDIS_MNEMONIC_OUTSD:
		return string_op(u, in, ops, uop_outs);
	case ZYDIS_MNEMONIC_IN:
	case ZYDIS_MNEMONIC_OUT: {
		const ZydisDecodedOperand *data = &ops[m == ZYDIS_MNEMONIC_IN ? 0 : 1];
		const ZydisDecodedOperand *port = &ops[m == ZYDIS_MNEMONIC_IN ? 1 : 0];

		u->fn = m == ZYDIS_MNEMONIC_IN ? uop_in : uop_out;
		u->osz = (uint8_t)(data->size / 8);
		if (port->type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			u->flags |= UOP_F_IMM;
			u->imm = port->imm.value.u & 0xff;
		}
		return true;
	}
	case ZYDIS_MNEMONIC_XLAT:
		u->fn = uop_xlat;
		u->seg = EMU_DS;
		for (unsigned int i = 0; i < in->operand_count; i++)
			if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY)
				u->seg = sreg(ops[i].mem.segment);
		if (u->seg == UOP_REG_NONE)
			u->seg = EMU_DS;
		return true;
	case ZYDIS_MNEMONIC_CLI: u->fn = uop_cli; return true;
	case ZYDIS_MNEMONIC_STI: u->fn = uop_sti; return true;
	case ZYDIS_MNEMONIC_HLT: u->fn = uop_hlt; return true;
	case ZYDIS_MNEMONIC_CPUID: u->fn = uop_cpuid; return true;
	case ZYDIS_MNEMONIC_RDMSR: u->fn = uop_rdmsr; return true;
	case ZYDIS_MNEMONIC_WRMSR: u->fn = uop_wrmsr; return true;
	case ZYDIS_MNEMONIC_RDTSC: u->fn = uop_rdtsc; return true;
	case ZYDIS_MNEMONIC_RDTSCP: u->fn = uop_rdtscp; return true;
	case ZYDIS_MNEMONIC_RDPMC: u->fn = uop_rdpmc; return true;
	case ZYDIS_MNEMONIC_LGDT:
	case ZYDIS_MNEMONIC_LIDT:
	case ZYDIS_MNEMONIC_SGDT:
	case ZYDIS_MNEMONIC_SIDT:
		u->fn = m == ZYDIS_MNEMONIC_LGDT ? uop_lgdt
			: m == ZYDIS_MNEMONIC_LIDT ? uop_lidt
			: m == ZYDIS_MNEMONIC_SGDT ? uop_sgdt : uop_sidt;
		u->osz = (uint8_t)ow;
		return set_mem(u, &ops[0]);
	case ZYDIS_MNEMONIC_LTR:
	case ZYDIS_MNEMONIC_LLDT:
		u->fn = m == ZYDIS_MNEMONIC_LTR ? uop_ltr : uop_lldt;
		return one_src(u, &ops[0], 2);
	case ZYDIS_MNEMONIC_STR:
	case ZYDIS_MNEMONIC_SLDT:
	case ZYDIS_MNEMONIC_SMSW:
		u->fn = m == ZYDIS_MNEMONIC_STR ? uop_str : m == ZYDIS_MNEMONIC_SLDT ? uop_sldt
										      : uop_smsw;
		return one_dst(u, ops);
	case ZYDIS_MNEMONIC_LMSW:
		u->fn = uop_lmsw;
		return one_src(u, &ops[0], 2);
	case ZYDIS_MNEMONIC_CLTS: u->fn = uop_clts; return true;
	case ZYDIS_MNEMONIC_INVLPG:
		u->fn = uop_invlpg;
		return set_mem(u, &ops[0]);
	case ZYDIS_MNEMONIC_SYSCALL: u->fn = uop_syscall; return true;
	case ZYDIS_MNEMONIC_SYSRET:
		u->fn = uop_sysret;
		u->osz = (uint8_t)ow;
		return true;
	case ZYDIS_MNEMONIC_SWAPGS: u->fn = uop_swapgs; return true;
	case ZYDIS_MNEMONIC_WBINVD:
	case ZYDIS_MNEMONIC_INVD:
		u->fn = uop_wbinvd;
		return true;
	case ZYDIS_MNEMONIC_UD0:
	case ZYDIS_MNEMONIC_UD1:
	case ZYDIS_MNEMONIC_UD2:
		u->fn = uop_ud;
		return true;
	case ZYDIS_MNEMONIC_MOVBE:
		u->fn = uop_movbe;
		return two(u, ops);
	default:
		break;
	}
	return false;
}

int emu_decode(const struct emu_vcpu *v, uint64_t rip, const uint8_t *bytes, unsigned int len,
	       struct emu_uop *u)
{
	ZydisDecoder dec;
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZydisStackWidth sw;
	ZydisMachineMode mode = machine_mode(v, &sw);
	ZyanStatus zs;

	memset(u, 0, sizeof(*u));
	u->reg = u->rm = u->base = u->index = UOP_REG_NONE;
	ZydisDecoderInit(&dec, mode, sw);
	zs = ZydisDecoderDecodeFull(&dec, bytes, len, &in, ops);
	if (zs == ZYDIS_STATUS_NO_MORE_DATA && len < 15)
		return 0;
	if (!ZYAN_SUCCESS(zs)) {
		/* Bytes that do not decode raise #UD (SDM Vol. 2 2.4): never skipped. */
		u->fn = uop_invalid;
		u->len = 1;
		u->next_rip = rip + 1;
		u->mnemonic = ZYDIS_MNEMONIC_INVALID;
		memcpy(&u->imm, bytes, len < 8 ? len : 8);
		return -1;
	}
	u->len = in.length;
	u->mnemonic = (uint16_t)in.mnemonic;
	u->next_rip = rip + in.length;
	if (!v->mode64)
		u->next_rip &= v->cpu.seg[EMU_CS].db ? 0xffffffffull : 0xffffull;
	u->asz = (uint8_t)(in.address_width / 8);
	u->osz = (uint8_t)(in.operand_width / 8);
	if (pick(u, &in, ops))
		return in.length;
	/* The class handlers of emu.c take it from the raw bytes. */
	memset(u, 0, sizeof(*u));
	u->fn = uop_generic;
	u->len = in.length;
	u->mnemonic = (uint16_t)in.mnemonic;
	u->next_rip = rip + in.length;
	if (!v->mode64)
		u->next_rip &= v->cpu.seg[EMU_CS].db ? 0xffffffffull : 0xffffull;
	u->reg = u->rm = u->base = u->index = UOP_REG_NONE;
	/* The raw bytes ride in (disp, imm, imm2): 24 bytes for at most 15. */
	memcpy(&u->disp, bytes, 8);
	memcpy(&u->imm, bytes + 8, in.length > 8 ? in.length - 8 : 0);
	u->osz2 = (uint8_t)in.meta.isa_ext;
	return in.length;
}

bool emu_uop_ends_block(const struct emu_uop *u)
{
	static const emu_uop_fn enders[] = {
		uop_jmp, uop_jcc, uop_jmp_ind, uop_call, uop_call_ind, uop_ret, uop_jcxz, uop_loop,
		uop_jmp_far, uop_call_far, uop_ret_far, uop_iret, uop_syscall, uop_sysret,
		uop_swapgs, uop_mov_cr, uop_mov_sreg_w, uop_pop_sreg, uop_lgdt, uop_lidt, uop_ltr,
		uop_lldt, uop_lmsw, uop_clts, uop_invlpg, uop_wrmsr, uop_cli, uop_sti, uop_popf,
		uop_hlt, uop_invalid, uop_ud, uop_generic, uop_pause,
	};
	for (unsigned int i = 0; i < sizeof(enders) / sizeof(enders[0]); i++)
		if (u->fn == enders[i])
			return true;
	return false;
}

bool emu_uop_pure(const struct emu_uop *u)
{
	/* Instructions whose uops read and write only registers and memory: a driver other
	 * than the engine (the KVM fallback) can run them on a copy of its vCPU's state.
	 * System instructions need the engine's MSRs, ports and interrupt state. */
	static const emu_uop_fn pure[] = {
		uop_nop, uop_mov_rr, uop_mov_load, uop_mov_store, uop_mov_ri, uop_movzx,
		uop_movsx, uop_lea, uop_xchg, uop_cmov, uop_setcc, uop_bswap, uop_cbw, uop_cwd,
		uop_lahf, uop_sahf, uop_push, uop_pop, uop_pushf, uop_enter, uop_leave, uop_xlat, uop_mov_rr64,
		uop_mov_load64, uop_mov_store64,
		uop_movbe, uop_add, uop_adc, uop_sub, uop_sbb, uop_and, uop_or, uop_xor, uop_cmp,
		uop_test, uop_inc, uop_dec, uop_neg, uop_not, uop_mul, uop_imul1, uop_imul, uop_div, uop_idiv, uop_shift, uop_shd,
		uop_bt, uop_xadd, uop_cmpxchg, uop_flagop, uop_bitscan, uop_jmp, uop_jcc,
		uop_jmp_ind, uop_call, uop_call_ind, uop_ret, uop_jcxz, uop_loop, uop_movs,
		uop_stos, uop_lods, uop_cmps, uop_scas,
	};
	for (unsigned int i = 0; i < sizeof(pure) / sizeof(pure[0]); i++)
		if (u->fn == pure[i])
			return true;
#define FORMS(n)                                                                                \
	if (u->fn == uop_##n##_rr || u->fn == uop_##n##_ri || u->fn == uop_##n##_rr64 ||         \
	    u->fn == uop_##n##_ri64)                                                            \
		return true;
	FORMS(add) FORMS(sub) FORMS(cmp) FORMS(and) FORMS(or) FORMS(xor) FORMS(test)
#undef FORMS
	return false;
}

const char *emu_mnemonic_name(unsigned int mnemonic)
{
	const char *s = ZydisMnemonicGetString((ZydisMnemonic)mnemonic);

	return s ? s : "?";
}
