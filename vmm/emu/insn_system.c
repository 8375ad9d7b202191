/* insn_system.c: system instructions KVM-PVM hands back: clac/stac (SMAP), rdtsc/rdtscp/rdpid,
 * lar/lsl/verr/verw (descriptor checks), monitor/mwait, invpcid (SDM Vol. 2). */
#include <string.h>

#include "emu_internal.h"

static int smap_flag(struct emu_ctx *ctx, bool set)
{
	if (!ctx->env->features->smap || emu_cpl(ctx->cpu) > 0)
		return emu_ud(ctx);
	if (set)
		ctx->cpu->rflags |= RF_AC;
	else
		ctx->cpu->rflags &= ~RF_AC;
	return EMU_OK;
}

static int time_stamp(struct emu_ctx *ctx)
{
	struct emu_cpu *c = ctx->cpu;
	ZydisMnemonic m = ctx->insn.mnemonic;

	if (m == ZYDIS_MNEMONIC_RDTSCP && !ctx->env->features->rdtscp)
		return emu_ud(ctx);
	if ((c->cr4 & CR4_TSD) && emu_cpl(c) > 0)
		return emu_gp0(ctx);
	c->gpr[EMU_RAX] = (uint32_t)c->tsc;
	c->gpr[EMU_RDX] = c->tsc >> 32;
	if (m == ZYDIS_MNEMONIC_RDTSCP)
		c->gpr[EMU_RCX] = (uint32_t)c->tsc_aux;
	return EMU_OK;
}

static int rdpid(struct emu_ctx *ctx)
{
	if (!ctx->env->features->rdpid)
		return emu_ud(ctx);
	/* In 64-bit mode the destination is 64 bits, zero-extended TSC_AUX. */
	emu_reg_write(ctx, ctx->ops[0].reg.value, (uint32_t)ctx->cpu->tsc_aux);
	return EMU_OK;
}

/* Reads the descriptor for (sel) into (desc) (16 bytes for 64-bit system descriptors). Returns
 * 1 when it exists within the table limit, 0 when not, or an error status. */
static int load_descriptor(struct emu_ctx *ctx, uint16_t sel, uint64_t desc[2])
{
	const struct emu_cpu *c = ctx->cpu;
	uint64_t base, limit, off = sel & ~7u;
	int ret;

	if (sel & 4) {
		if (!c->ldt.present || !(c->ldt.sel & ~3u))
			return 0;
		base = c->ldt.base;
		limit = c->ldt.limit;
	} else {
		base = c->gdt_base;
		limit = c->gdt_limit;
	}
	if (off + 7 > limit)
		return 0;
	ret = emu_read_linear(ctx, base + off, &desc[0], 8, EMU_ACC_IMPLICIT);
	if (ret)
		return -ret;
	desc[1] = 0;
	if (emu_long_mode(c) && !((desc[0] >> 44) & 1)) {
		/* System descriptors are 16 bytes in long mode. */
		if (off + 15 > limit)
			return 0;
		ret = emu_read_linear(ctx, base + off + 8, &desc[1], 8, EMU_ACC_IMPLICIT);
		if (ret)
			return -ret;
	}
	return 1;
}

/* Which system descriptor types LAR (lar) or LSL (!lar) accept (SDM Vol. 2 LAR, LSL). */
static bool system_type_ok(const struct emu_cpu *c, unsigned int type, bool lar)
{
	if (emu_long_mode(c))
		return type == 2 || type == 9 || type == 0xb || (lar && type == 0xc);
	switch (type) {
	case 1: case 2: case 3: case 9: case 0xb: return true;
	case 4: case 5: case 0xc: return lar;
	default: return false;
	}
}

static int descriptor_query(struct emu_ctx *ctx)
{
	struct emu_cpu *c = ctx->cpu;
	ZydisMnemonic m = ctx->insn.mnemonic;
	const ZydisDecodedOperand *src = m == ZYDIS_MNEMONIC_VERR || m == ZYDIS_MNEMONIC_VERW
						 ? &ctx->ops[0] : &ctx->ops[1];
	uint64_t sel64, desc[2];
	uint16_t sel;
	unsigned int type, dpl, rpl, cpl = emu_cpl(c);
	bool code, conforming, ok = false;
	int ret;

	if (!(c->cr0 & CR0_PE) || (c->rflags & RF_VM))
		return emu_ud(ctx);
	ret = emu_op_read(ctx, src, &sel64);
	if (ret)
		return ret;
	sel = sel64;
	if (!(sel & ~3u))
		goto done; /* null selector: ZF = 0 */
	ret = load_descriptor(ctx, sel, desc);
	if (ret < 0)
		return -ret;
	if (ret == 0)
		goto done;
	ret = EMU_OK; /* load_descriptor()'s 1 is not a status: verr/verw write nothing */
	type = (desc[0] >> 40) & 0xf;
	dpl = (desc[0] >> 45) & 3;
	rpl = sel & 3;
	code = (desc[0] >> 43) & 1;
	conforming = code && (type & 4);
	if (!((desc[0] >> 44) & 1)) {
		/* System descriptor. */
		if (m == ZYDIS_MNEMONIC_VERR || m == ZYDIS_MNEMONIC_VERW)
			goto done;
		if (!system_type_ok(c, type, m == ZYDIS_MNEMONIC_LAR))
			goto done;
	} else if (m == ZYDIS_MNEMONIC_VERR && code && !(type & 2)) {
		goto done; /* execute-only code is not readable */
	} else if (m == ZYDIS_MNEMONIC_VERW && (code || !(type & 2))) {
		goto done;
	}
	if (!conforming && (dpl < cpl || dpl < rpl))
		goto done;
	ok = true;
	if (m == ZYDIS_MNEMONIC_LAR) {
		uint64_t ar = (desc[0] >> 32) & (ctx->ops[0].size == 16 ? 0xff00 : 0x00f0ff00);

		ret = emu_op_write(ctx, &ctx->ops[0], ar);
	} else if (m == ZYDIS_MNEMONIC_LSL) {
		uint64_t limit = (desc[0] & 0xffff) | ((desc[0] >> 32) & 0xf0000);

		if ((desc[0] >> 55) & 1)
			limit = (limit << 12) | 0xfff;
		ret = emu_op_write(ctx, &ctx->ops[0], limit);
	}
	if (ret)
		return ret;
done:
	c->rflags = (c->rflags & ~RF_ZF) | (ok ? RF_ZF : 0);
	return EMU_OK;
}

static int monitor_mwait(struct emu_ctx *ctx)
{
	/* Without CPUID.01H:ECX.MONITOR both raise #UD; with it, at CPL > 0 too (MWAIT in ring 3
	 * is not enabled by anything we emulate). With it, MONITOR arms nothing we track and
	 * MWAIT returns at once: a wake-up for no reason is allowed (SDM Vol. 2 MWAIT). */
	if (!ctx->env->features->monitor || emu_cpl(ctx->cpu) > 0)
		return emu_ud(ctx);
	return EMU_OK;
}

static bool canonical(uint64_t la)
{
	return (uint64_t)((int64_t)(la << 16) >> 16) == la;
}

static int invpcid(struct emu_ctx *ctx)
{
	struct emu_cpu *c = ctx->cpu;
	uint64_t type, la, desc[2];
	int ret;

	if (!ctx->env->features->invpcid)
		return emu_ud(ctx);
	if (emu_cpl(c) > 0)
		return emu_gp0(ctx);
	type = emu_reg_read(ctx, ctx->ops[0].reg.value);
	ret = emu_op_mem_la(ctx, &ctx->ops[1], 16, false, &la);
	if (ret)
		return ret;
	ret = emu_read_linear(ctx, la, desc, 16, 0);
	if (ret)
		return ret;
	/* Descriptor: PCID in bits 11:0, bits 63:12 reserved; then a linear address. */
	if (type > 3 || (desc[0] >> 12))
		return emu_gp0(ctx);
	if (type == 0 && !canonical(desc[1]))
		return emu_gp0(ctx);
	if (type <= 1 && !(c->cr4 & CR4_PCIDE) && (desc[0] & 0xfff))
		return emu_gp0(ctx);
	/* We cannot flush single entries; flushing everything is always allowed. */
	c->dirty |= EMU_DIRTY_TLB;
	return EMU_OK;
}

int emu_exec_system(struct emu_ctx *ctx)
{
	switch (ctx->insn.mnemonic) {
	case ZYDIS_MNEMONIC_CLAC: return smap_flag(ctx, false);
	case ZYDIS_MNEMONIC_STAC: return smap_flag(ctx, true);
	case ZYDIS_MNEMONIC_RDTSC:
	case ZYDIS_MNEMONIC_RDTSCP: return time_stamp(ctx);
	case ZYDIS_MNEMONIC_RDPID: return rdpid(ctx);
	case ZYDIS_MNEMONIC_LAR:
	case ZYDIS_MNEMONIC_LSL:
	case ZYDIS_MNEMONIC_VERR:
	case ZYDIS_MNEMONIC_VERW: return descriptor_query(ctx);
	case ZYDIS_MNEMONIC_MONITOR:
	case ZYDIS_MNEMONIC_MWAIT: return monitor_mwait(ctx);
	case ZYDIS_MNEMONIC_INVPCID: return invpcid(ctx);
	default: return emu_unsupported(ctx, "%s", ctx->res->mnemonic);
	}
}
