/* interrupt.c: int3, int1, int n and into, delivered through the guest's IDT as the CPU does in
 * IA-32e mode (SDM Vol. 3A 6.12 and 6.14): gate checks, privilege change with the TSS stack or
 * an IST stack, the 64-bit frame, and IF/TF/NT/RF cleared. */
#include <string.h>

#include "emu_internal.h"

static bool canonical(uint64_t la)
{
	return (uint64_t)((int64_t)(la << 16) >> 16) == la;
}

/* (acc): the access kind of the frame's stores (emu_deliver_interrupt()). */
static int push64(struct emu_ctx *ctx, uint64_t *rsp, uint64_t v, unsigned int acc)
{
	*rsp -= 8;
	if (!canonical(*rsp))
		return emu_raise(ctx, EXC_SS, true, 0);
	return emu_write_linear(ctx, *rsp, &v, 8, acc);
}

/* Reads the code segment descriptor for (sel) from the GDT or LDT. */
static int read_code_descriptor(struct emu_ctx *ctx, uint16_t sel, uint64_t *desc)
{
	const struct emu_cpu *c = ctx->cpu;
	uint64_t base = sel & 4 ? c->ldt.base : c->gdt_base;
	uint32_t limit = sel & 4 ? c->ldt.limit : c->gdt_limit;

	if ((sel & ~7u) + 7u > limit)
		return emu_raise(ctx, EXC_GP, true, sel & ~3u);
	return emu_read_linear(ctx, base + (sel & ~7u), desc, 8, EMU_ACC_IMPLICIT);
}

int emu_deliver_interrupt(struct emu_ctx *ctx, uint8_t vector, bool soft, bool has_error,
			  uint32_t error)
{
	struct emu_cpu *c = ctx->cpu;
	unsigned int cpl = emu_cpl(c), new_cpl, ist, gate_dpl, type;
	uint32_t idt_err = vector * 8 + 2 + (soft ? 0 : 1); /* IDT bit, EXT for external */
	uint64_t gate[2], desc, rsp, target;
	unsigned int acc;
	uint16_t sel;
	int ret;

	/* IA-32e mode delivers through the 64-bit IDT with a 64-bit frame from compatibility
	 * mode too (SDM Vol. 3A 6.14: "in IA-32e mode"), as 32-bit programs under a 64-bit
	 * kernel need; only legacy protected mode is not offered. */
	if (!emu_long_mode(c))
		return emu_unsupported(ctx, "interrupt delivery outside IA-32e mode");
	if ((uint32_t)vector * 16 + 15 > c->idt_limit)
		return emu_raise(ctx, EXC_GP, true, idt_err);
	ret = emu_read_linear(ctx, c->idt_base + vector * 16, gate, 16, EMU_ACC_IMPLICIT);
	if (ret)
		return ret;
	type = (gate[0] >> 40) & 0xf;
	gate_dpl = (gate[0] >> 45) & 3;
	if (type != 0xe && type != 0xf)
		return emu_raise(ctx, EXC_GP, true, idt_err);
	if (soft && gate_dpl < cpl)
		return emu_raise(ctx, EXC_GP, true, idt_err);
	if (!((gate[0] >> 47) & 1))
		return emu_raise(ctx, EXC_NP, true, idt_err);
	sel = (gate[0] >> 16) & 0xffff;
	ist = (gate[0] >> 32) & 7;
	target = (gate[0] & 0xffff) | ((gate[0] >> 32) & 0xffff0000ull) | (gate[1] << 32);
	if (!(sel & ~3u))
		return emu_gp0(ctx);
	ret = read_code_descriptor(ctx, sel, &desc);
	if (ret)
		return ret;
	/* Must be a present 64-bit code segment with DPL <= CPL. */
	if (!((desc >> 44) & 1) || !((desc >> 43) & 1) || !((desc >> 53) & 1) ||
	    ((desc >> 45) & 3) > cpl)
		return emu_raise(ctx, EXC_GP, true, sel & ~3u);
	if (!((desc >> 47) & 1))
		return emu_raise(ctx, EXC_NP, true, sel & ~3u);
	new_cpl = (desc >> 42) & 1 ? cpl : (desc >> 45) & 3; /* conforming keeps the CPL */
	if (!canonical(target))
		return emu_gp0(ctx);

	rsp = c->gpr[EMU_RSP];
	if (new_cpl < cpl || ist) {
		/* The new stack comes from the 64-bit TSS: RSPn at 4 + 8n, ISTn at 0x24 + 8(n-1). */
		uint64_t off = ist ? 0x24 + 8 * (ist - 1) : 4 + 8 * new_cpl;

		if (off + 7 > c->tr.limit)
			return emu_raise(ctx, EXC_TS, true, c->tr.sel & ~3u);
		ret = emu_read_linear(ctx, c->tr.base + off, &rsp, 8, EMU_ACC_IMPLICIT);
		if (ret)
			return ret;
	}
	rsp &= ~0xfull;
	/* The frame is written at the new CPL. Without a privilege change that is the CPL of
	 * the interrupted code, so from CPL3 the pushes are user-mode accesses, checked against
	 * U/S (and not SMAP) like any push there: only the accesses to the GDT, LDT, IDT and
	 * TSS are implicit supervisor ones (SDM Vol. 3A 4.6). (ctx->cpu still has the old CS,
	 * from which the walk takes the CPL.) Into an inner ring they are supervisor accesses. */
	acc = new_cpl == cpl ? 0 : EMU_ACC_IMPLICIT;
	uint64_t old_rsp = c->gpr[EMU_RSP];
	ret = push64(ctx, &rsp, c->seg[EMU_SS].sel, acc);
	if (!ret)
		ret = push64(ctx, &rsp, old_rsp, acc);
	if (!ret)
		ret = push64(ctx, &rsp, c->rflags, acc);
	if (!ret)
		ret = push64(ctx, &rsp, c->seg[EMU_CS].sel, acc);
	if (!ret)
		ret = push64(ctx, &rsp, c->rip, acc);
	if (!ret && has_error)
		ret = push64(ctx, &rsp, error, acc);
	if (ret)
		return ret;

	c->gpr[EMU_RSP] = rsp;
	c->rflags &= ~(RF_TF | RF_NT | RF_RF | RF_VM);
	if (type == 0xe)
		c->rflags &= ~RF_IF;
	c->seg[EMU_CS] = (struct emu_seg){
		.sel = (sel & ~3u) | new_cpl, .base = 0, .limit = 0xffffffff,
		.type = (desc >> 40) & 0xf, .s = 1, .dpl = new_cpl, .present = 1, .l = 1, .db = 0,
		.g = 1,
	};
	if (new_cpl != cpl) {
		/* SS becomes a null selector with RPL = new CPL (SDM Vol. 3A 6.14.4). */
		c->seg[EMU_SS] = (struct emu_seg){.sel = new_cpl, .dpl = new_cpl};
	}
	c->rip = target;
	c->dirty |= EMU_DIRTY_SREGS;
	ctx->rip_written = true;
	return EMU_OK;
}

int emu_exec_interrupt(struct emu_ctx *ctx)
{
	struct emu_cpu *c = ctx->cpu;

	/* The frame holds the address of the next instruction for software interrupts. */
	c->rip = ctx->next_rip;
	switch (ctx->insn.mnemonic) {
	case ZYDIS_MNEMONIC_INT3:
		return emu_deliver_interrupt(ctx, EXC_BP, true, false, 0);
	case ZYDIS_MNEMONIC_INT1:
		/* ICEBP: a #DB trap delivered like a hardware exception, without the gate DPL
		 * check of INT n/INT3/INTO (SDM Vol. 2A INT n: "does not apply to INT1"). */
		return emu_deliver_interrupt(ctx, EXC_DB, false, false, 0);
	case ZYDIS_MNEMONIC_INTO:
		if (!(c->rflags & RF_OF)) {
			ctx->rip_written = true;
			return EMU_OK;
		}
		return emu_deliver_interrupt(ctx, EXC_OF, true, false, 0);
	default:
		return emu_deliver_interrupt(ctx, (uint8_t)ctx->ops[0].imm.value.u, true, false,
					     0);
	}
}
