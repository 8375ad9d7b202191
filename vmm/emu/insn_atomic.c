/* insn_atomic.c: cmpxchg8b and cmpxchg16b, done atomically on guest RAM with the host's own
 * locked instruction, so other vCPUs see them as the CPU would (SDM Vol. 2 CMPXCHG8B/16B). */
#include "emu_internal.h"

static bool cas16(void *p, uint64_t *lo, uint64_t *hi, uint64_t new_lo, uint64_t new_hi)
{
	bool ok;

	__asm__ __volatile__("lock cmpxchg16b %1"
			     : "=@ccz"(ok), "+m"(*(volatile __int128 *)p), "+a"(*lo), "+d"(*hi)
			     : "b"(new_lo), "c"(new_hi)
			     : "memory");
	return ok;
}

int emu_exec_atomic(struct emu_ctx *ctx)
{
	struct emu_cpu *c = ctx->cpu;
	bool wide = ctx->insn.mnemonic == ZYDIS_MNEMONIC_CMPXCHG16B;
	uint32_t bytes = wide ? 16 : 8;
	uint64_t la;
	void *p;
	bool equal;
	int ret;

	if (wide && !ctx->env->features->cx16)
		return emu_ud(ctx);
	ret = emu_op_mem_la(ctx, &ctx->ops[0], bytes, true, &la);
	if (ret)
		return ret;
	if (wide && (la & 15))
		return emu_gp0(ctx);
	p = emu_ram_pointer(ctx, la, bytes, true, &ret);
	if (!p)
		return ret;
	if (wide) {
		uint64_t lo = c->gpr[EMU_RAX], hi = c->gpr[EMU_RDX];

		equal = cas16(p, &lo, &hi, c->gpr[EMU_RBX], c->gpr[EMU_RCX]);
		c->gpr[EMU_RAX] = lo;
		c->gpr[EMU_RDX] = hi;
	} else {
		uint64_t expected = ((uint64_t)(uint32_t)c->gpr[EMU_RDX] << 32) |
				    (uint32_t)c->gpr[EMU_RAX];
		uint64_t desired = ((uint64_t)(uint32_t)c->gpr[EMU_RCX] << 32) |
				   (uint32_t)c->gpr[EMU_RBX];

		equal = __atomic_compare_exchange_n((uint64_t *)p, &expected, desired, false,
						    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		if (!equal) {
			/* EDX:EAX get the old value; in 64-bit mode the upper halves clear. */
			c->gpr[EMU_RAX] = (uint32_t)expected;
			c->gpr[EMU_RDX] = expected >> 32;
		}
	}
	c->rflags = (c->rflags & ~RF_ZF) | (equal ? RF_ZF : 0);
	return EMU_OK;
}
