/* op_move.c: data movement uops: mov, movzx/movsx, lea, xchg, cmov, setcc, bswap, sign
 * extension, push/pop, enter/leave, lahf/sahf, xlat, movbe (SDM Vol. 2). */
#include "uop_internal.h"

UOP_DEF(nop)
{
	return EXIT_NEXT;
}

UOP_DEF(mov_rr)
{
	reg_set(v, u->reg, u->osz, reg_get(v, u->rm, u->osz));
	return EXIT_NEXT;
}

UOP_DEF(mov_rr64)
{
	v->cpu.gpr[u->reg] = v->cpu.gpr[u->rm];
	return EXIT_NEXT;
}

UOP_DEF(mov_ri)
{
	reg_set(v, u->reg, u->osz, u->imm);
	return EXIT_NEXT;
}

UOP_DEF(mov_load)
{
	uint64_t la, val;
	int ret = uop_linear(v, u->seg, uop_ea(v, u), u->osz, false, &la);

	if (!ret)
		ret = mem_read(v, la, u->osz, &val, u->seg, TLB_READ);
	if (ret)
		return ret;
	reg_set(v, u->reg, u->osz, val);
	return EXIT_NEXT;
}

/* 64-bit loads and stores with 64-bit addressing (most of what a 64-bit kernel moves): no
 * operand- or address-size switch. */
UOP_DEF(mov_load64)
{
	uint64_t la, val;
	int ret = uop_linear(v, u->seg, uop_ea(v, u), 8, false, &la);

	if (!ret)
		ret = mem_read(v, la, 8, &val, u->seg, TLB_READ);
	if (ret)
		return ret;
	v->cpu.gpr[u->reg] = val;
	return EXIT_NEXT;
}

UOP_DEF(mov_store64)
{
	uint64_t la;
	int ret = uop_linear(v, u->seg, uop_ea(v, u), 8, true, &la);

	return ret ? ret : mem_write(v, la, 8, v->cpu.gpr[u->rm], u->seg);
}

UOP_DEF(mov_store)
{
	uint64_t la, val = u->flags & UOP_F_IMM ? u->imm : reg_get(v, u->rm, u->osz);
	int ret = uop_linear(v, u->seg, uop_ea(v, u), u->osz, true, &la);

	return ret ? ret : mem_write(v, la, u->osz, val, u->seg);
}

/* Reads the source of movzx/movsx/movbe-like uops at size (osz). */
static int src_sized(struct emu_vcpu *v, const struct emu_uop *u, unsigned int osz,
		     uint64_t *val)
{
	uint64_t la;
	int ret;

	if (u->flags & UOP_F_MEM) {
		ret = uop_linear(v, u->seg, uop_ea(v, u), osz, false, &la);
		return ret ? ret : mem_read(v, la, osz, val, u->seg, TLB_READ);
	}
	*val = reg_get(v, u->rm, osz);
	return 0;
}

UOP_DEF(movzx)
{
	uint64_t val;
	int ret = src_sized(v, u, u->osz2, &val);

	if (ret)
		return ret;
	reg_set(v, u->reg, u->osz, val);
	return EXIT_NEXT;
}

UOP_DEF(movsx)
{
	uint64_t val;
	int ret = src_sized(v, u, u->osz2, &val);

	if (ret)
		return ret;
	reg_set(v, u->reg, u->osz, (uint64_t)sext(val, u->osz2));
	return EXIT_NEXT;
}

UOP_DEF(lea)
{
	reg_set(v, u->reg, u->osz, uop_ea(v, u));
	return EXIT_NEXT;
}

/* xchg with memory is locked whether or not it says so; one engine thread runs all vCPUs, so
 * a plain read-then-write is atomic with respect to the guest. */
UOP_DEF(xchg)
{
	uint64_t a, b = reg_get(v, u->rm, u->osz), la = 0;
	int ret = dst_get(v, u, &a, &la, true);

	if (ret)
		return ret;
	ret = dst_put(v, u, la, b);
	if (ret)
		return ret;
	reg_set(v, u->rm, u->osz, a);
	return EXIT_NEXT;
}

UOP_DEF(cmov)
{
	uint64_t val;
	int ret = src_get(v, u, &val); /* the source is read (and may fault) either way */

	if (ret)
		return ret;
	if (emu_cond(v, u->cond))
		reg_set(v, u->reg, u->osz, val);
	else if (u->osz == 4)
		reg_set(v, u->reg, 4, reg_get(v, u->reg, 4)); /* 32-bit cmov zero-extends */
	return EXIT_NEXT;
}

UOP_DEF(setcc)
{
	uint64_t la = 0;
	int ret = 0;

	if (u->flags & UOP_F_MEMDST)
		ret = uop_linear(v, u->seg, uop_ea(v, u), 1, true, &la);
	return ret ? ret : dst_put(v, u, la, emu_cond(v, u->cond));
}

UOP_DEF(bswap)
{
	uint64_t x = reg_get(v, u->reg, u->osz);

	if (u->osz == 8)
		x = __builtin_bswap64(x);
	else if (u->osz == 4)
		x = __builtin_bswap32((uint32_t)x);
	else
		x = 0; /* 16-bit bswap is undefined; real CPUs give 0 */
	reg_set(v, u->reg, u->osz, x);
	return EXIT_NEXT;
}

UOP_DEF(movbe)
{
	uint64_t val, la;
	int ret;

	if (u->flags & UOP_F_MEMDST) {
		val = reg_get(v, u->rm, u->osz);
		val = u->osz == 8 ? __builtin_bswap64(val)
		      : u->osz == 4 ? __builtin_bswap32((uint32_t)val)
				    : __builtin_bswap16((uint16_t)val);
		ret = uop_linear(v, u->seg, uop_ea(v, u), u->osz, true, &la);
		return ret ? ret : mem_write(v, la, u->osz, val, u->seg);
	}
	ret = src_sized(v, u, u->osz, &val);
	if (ret)
		return ret;
	val = u->osz == 8 ? __builtin_bswap64(val)
	      : u->osz == 4 ? __builtin_bswap32((uint32_t)val)
			    : __builtin_bswap16((uint16_t)val);
	reg_set(v, u->reg, u->osz, val);
	return EXIT_NEXT;
}

/* cbw/cwde/cdqe: sign-extend the lower half of rAX into rAX. */
UOP_DEF(cbw)
{
	unsigned int half = u->osz / 2;

	reg_set(v, EMU_RAX, u->osz, (uint64_t)sext(reg_get(v, EMU_RAX, half), half));
	return EXIT_NEXT;
}

/* cwd/cdq/cqo: rDX gets the sign of rAX. */
UOP_DEF(cwd)
{
	bool neg = reg_get(v, EMU_RAX, u->osz) & sign_bit(u->osz);

	reg_set(v, EMU_RDX, u->osz, neg ? ~0ull : 0);
	return EXIT_NEXT;
}

UOP_DEF(lahf)
{
	reg_set(v, 16, 1, (emu_flags(v) & 0xd5) | 2);
	return EXIT_NEXT;
}

UOP_DEF(sahf)
{
	emu_flags_merge(v, RF_SF | RF_ZF | RF_AF | RF_PF | RF_CF, reg_get(v, 16, 1));
	return EXIT_NEXT;
}

UOP_DEF(xlat)
{
	uint64_t ea = (v->cpu.gpr[EMU_RBX] + reg_get(v, EMU_RAX, 1)) & asz_mask(u->asz), la, val;
	int ret = uop_linear(v, u->seg, ea, 1, false, &la);

	if (!ret)
		ret = mem_read(v, la, 1, &val, u->seg, TLB_READ);
	if (ret)
		return ret;
	reg_set(v, EMU_RAX, 1, val);
	return EXIT_NEXT;
}

UOP_DEF(push)
{
	uint64_t val;
	int ret;

	/* push rsp pushes the value before the push (SDM Vol. 2 PUSH). */
	ret = src_get(v, u, &val);
	return ret ? ret : push_val(v, val, u->osz);
}

UOP_DEF(pop)
{
	uint64_t val, old = v->cpu.gpr[EMU_RSP], la = 0;
	int ret = stack_peek(v, 0, u->osz, &val);

	if (ret)
		return ret;
	sp_set(v, sp_get(v) + u->osz);
	if (u->flags & UOP_F_MEMDST) {
		/* A memory destination addressed through RSP sees the incremented RSP. */
		ret = uop_linear(v, u->seg, uop_ea(v, u), u->osz, true, &la);
		if (!ret)
			ret = mem_write(v, la, u->osz, val, u->seg);
		if (ret) {
			v->cpu.gpr[EMU_RSP] = old;
			return ret;
		}
		return EXIT_NEXT;
	}
	reg_set(v, u->reg, u->osz, val);
	return EXIT_NEXT;
}

UOP_DEF(leave)
{
	unsigned int ss = stack_size(v);
	uint64_t bp = reg_get(v, EMU_RBP, ss), val, la;
	int ret = uop_linear(v, EMU_SS, bp, u->osz, false, &la);

	if (!ret)
		ret = mem_read(v, la, u->osz, &val, EMU_SS, TLB_READ);
	if (ret)
		return ret;
	sp_set(v, bp + u->osz);
	reg_set(v, EMU_RBP, u->osz, val);
	return EXIT_NEXT;
}

UOP_DEF(enter)
{
	uint64_t old_sp = v->cpu.gpr[EMU_RSP], frame;
	int ret;

	if (u->imm2)
		return uop_stop(v, "enter with nesting level %llu", (unsigned long long)u->imm2);
	ret = push_val(v, reg_get(v, EMU_RBP, u->osz), u->osz);
	if (ret)
		return ret;
	frame = sp_get(v);
	sp_set(v, frame - u->imm);
	/* The new stack top must be writable (SDM: ENTER checks it). */
	if (u->imm) {
		uint64_t la, probe;

		ret = uop_linear(v, EMU_SS, sp_get(v), 1, true, &la);
		if (!ret)
			ret = mem_read(v, la, 1, &probe, EMU_SS, TLB_WRITE);
		if (ret) {
			v->cpu.gpr[EMU_RSP] = old_sp;
			return ret;
		}
	}
	reg_set(v, EMU_RBP, u->osz, frame);
	return EXIT_NEXT;
}
