/* insn_xsave.c: the processor extended state instructions: xsave, xsaveopt, xsavec, xrstor,
 * fxsave, fxrstor, xgetbv, xsetbv, ldmxcsr, stmxcsr (SDM Vol. 1 ch. 13, Vol. 2). The state
 * itself is cpu->xsave, KVM's standard-format XSAVE image. */
#include <string.h>

#include "emu_internal.h"

#define XCOMP_BV_COMPACTED (1ull << 63)
#define XCR0_X87	   (1ull << 0)
#define XCR0_SSE	   (1ull << 1)
#define XCR0_YMM	   (1ull << 2)
#define XCR0_BNDREGS	   (1ull << 3)
#define XCR0_BNDCSR	   (1ull << 4)
#define XCR0_AVX512	   (7ull << 5)

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint32_t mxcsr_mask(const struct emu_cpu *c)
{
	uint32_t m = get32(c->xsave + XSAVE_MXCSR_MASK);

	return m ? m : 0xffbf; /* a zero MXCSR_MASK means the default (SDM Vol. 1 11.6.6) */
}

/* #UD/#NM checks shared by the XSAVE family (SDM Vol. 2 XSAVE "Protected Mode Exceptions"). */
static int xsave_checks(struct emu_ctx *ctx, uint64_t *la, uint32_t size, bool write)
{
	const struct emu_cpu *c = ctx->cpu;

	if (!(c->cr4 & CR4_OSXSAVE))
		return emu_ud(ctx);
	if (c->cr0 & CR0_TS)
		return emu_raise(ctx, EXC_NM, false, 0);
	int ret = emu_op_mem_la(ctx, &ctx->ops[0], size, write, la);

	if (ret)
		return ret;
	if (*la & 63)
		return emu_gp0(ctx);
	return EMU_OK;
}

static uint64_t rfbm(const struct emu_ctx *ctx)
{
	const struct emu_cpu *c = ctx->cpu;

	return c->xcr0 & (((uint64_t)(uint32_t)c->gpr[EMU_RDX] << 32) |
			  (uint32_t)c->gpr[EMU_RAX]);
}

/* Bytes of the legacy region that belong to x87 (component 0): all of 0-159 but MXCSR and
 * MXCSR_MASK at 24-31, which go with SSE/AVX. */
static void copy_x87(uint8_t *dst, const uint8_t *src)
{
	memcpy(dst, src, 24);
	memcpy(dst + 32, src + 32, 128);
}

static void init_x87(uint8_t *img)
{
	memset(img, 0, 24);
	memset(img + 32, 0, 128);
	img[XSAVE_FCW] = 0x7f; /* FCW 0x037f, everything else zero (SDM Vol. 1 13.6) */
	img[XSAVE_FCW + 1] = 0x03;
}

/* Size of the standard-format area for (mask). */
static uint32_t standard_size(const struct emu_features *f, uint64_t mask)
{
	uint32_t end = XSAVE_LEGACY_SIZE + XSAVE_HDR_SIZE;

	for (unsigned int i = 2; i < EMU_XSAVE_COMPONENTS; i++)
		if ((mask >> i) & 1 && f->xsave_offset[i] + f->xsave_size[i] > end)
			end = f->xsave_offset[i] + f->xsave_size[i];
	return end;
}

/* Offsets of components in the compacted format for XCOMP_BV (SDM Vol. 1 13.4.3). */
static void compacted_offsets(const struct emu_features *f, uint64_t xcomp,
			      uint32_t off[EMU_XSAVE_COMPONENTS], uint32_t *end)
{
	uint32_t pos = XSAVE_LEGACY_SIZE + XSAVE_HDR_SIZE;

	for (unsigned int i = 2; i < EMU_XSAVE_COMPONENTS; i++) {
		if (!((xcomp >> i) & 1)) {
			off[i] = 0;
			continue;
		}
		if ((f->xsave_align64 >> i) & 1)
			pos = (pos + 63) & ~63u;
		off[i] = pos;
		pos += f->xsave_size[i];
	}
	*end = pos;
}

/* Stores (len) bytes of the state image at (off) to the same offset in the area at (la). */
static int store_part(struct emu_ctx *ctx, uint64_t la, uint32_t off, const uint8_t *src,
		      uint32_t len)
{
	return emu_write_linear(ctx, la + off, src, len, 0);
}

/* XSAVE, XSAVEOPT, XSAVEC. Only what they save is stored: nothing of legacy bytes 416-511, of
 * components outside RFBM (or, for XSAVEC, not in use) or of the header past XSTATE_BV (XSAVE)
 * or XCOMP_BV (XSAVEC) (SDM Vol. 1 13.4.1, 13.7, 13.10), so bytes the guest owns are never
 * read and stored back. The one read is that of XSTATE_BV, which XSAVE merges into (13.7).
 * Parts are stored in address order, so a fault is on the lowest page stored to. */
static int xsave(struct emu_ctx *ctx)
{
	const struct emu_features *f = ctx->env->features;
	struct emu_cpu *c = ctx->cpu;
	ZydisMnemonic m = ctx->insn.mnemonic;
	bool compact = m == ZYDIS_MNEMONIC_XSAVEC || m == ZYDIS_MNEMONIC_XSAVEC64;
	uint64_t mask = rfbm(ctx), inuse = get64(c->xsave + XSAVE_HDR), la, hdr[2];
	uint32_t off[EMU_XSAVE_COMPONENTS], size;
	int ret = EMU_OK;

	if (compact && !f->xsavec)
		return emu_ud(ctx);
	if ((m == ZYDIS_MNEMONIC_XSAVEOPT || m == ZYDIS_MNEMONIC_XSAVEOPT64) && !f->xsaveopt)
		return emu_ud(ctx);
	/* x87 and SSE are always "in use" in our image: KVM gives init values for the rest. */
	inuse |= XCR0_X87 | XCR0_SSE;
	/* The compacted layout is that of XCOMP_BV = RFBM, components in use or not; only the
	 * ones in use are written (SDM Vol. 1 13.4.3, 13.10). */
	if (compact) {
		compacted_offsets(f, mask, off, &size);
	} else {
		size = standard_size(f, mask);
		for (unsigned int i = 2; i < EMU_XSAVE_COMPONENTS; i++)
			off[i] = f->xsave_offset[i];
	}
	if (size > EMU_XSAVE_SIZE)
		return emu_unsupported(ctx, "XSAVE area of %u bytes", size);
	ret = xsave_checks(ctx, &la, size, true);
	if (ret)
		return ret;
	/* x87 is bytes 0-23 and 32-159; MXCSR and MXCSR_MASK (24-31) go with SSE, and in the
	 * standard form with AVX too (SDM Vol. 1 13.7, 13.10). */
	if (mask & XCR0_X87)
		ret = store_part(ctx, la, 0, c->xsave, 24);
	if (!ret && (mask & (compact ? XCR0_SSE : XCR0_SSE | XCR0_YMM)))
		ret = store_part(ctx, la, XSAVE_MXCSR, c->xsave + XSAVE_MXCSR, 8);
	if (!ret && (mask & XCR0_X87))
		ret = store_part(ctx, la, XSAVE_ST0, c->xsave + XSAVE_ST0, 128);
	if (!ret && (mask & XCR0_SSE))
		ret = store_part(ctx, la, XSAVE_XMM0, c->xsave + XSAVE_XMM0, 16 * 16);
	if (ret)
		return ret;
	/* XSAVE writes only XSTATE_BV, read first for the bits outside RFBM, which it keeps;
	 * XSAVEC writes XSTATE_BV and XCOMP_BV. The read is for a store: its faults are write
	 * faults. */
	if (compact) {
		hdr[0] = mask & inuse;
		hdr[1] = mask | XCOMP_BV_COMPACTED;
	} else {
		ret = emu_read_linear(ctx, la + XSAVE_HDR, hdr, 8, EMU_ACC_WRITE);
		if (ret)
			return ret;
		hdr[0] = (hdr[0] & ~mask) | (mask & inuse);
	}
	ret = store_part(ctx, la, XSAVE_HDR, (const uint8_t *)hdr, compact ? 16 : 8);
	for (unsigned int i = 2; !ret && i < EMU_XSAVE_COMPONENTS; i++) {
		if (!((mask >> i) & 1) || !f->xsave_size[i] || (compact && !((inuse >> i) & 1)))
			continue;
		ret = store_part(ctx, la, off[i], c->xsave + f->xsave_offset[i], f->xsave_size[i]);
	}
	return ret;
}

static int xrstor(struct emu_ctx *ctx)
{
	const struct emu_features *f = ctx->env->features;
	struct emu_cpu *c = ctx->cpu;
	uint64_t mask = rfbm(ctx), la, hdr[8], xstate_bv, xcomp_bv, image_bv;
	uint32_t off[EMU_XSAVE_COMPONENTS], size;
	uint8_t buf[EMU_XSAVE_SIZE];
	bool compact;
	int ret;

	ret = xsave_checks(ctx, &la, XSAVE_LEGACY_SIZE + XSAVE_HDR_SIZE, false);
	if (ret)
		return ret;
	ret = emu_read_linear(ctx, la + XSAVE_HDR, hdr, sizeof(hdr), 0);
	if (ret)
		return ret;
	xstate_bv = hdr[0];
	xcomp_bv = hdr[1];
	compact = xcomp_bv & XCOMP_BV_COMPACTED;
	/* Header checks (SDM Vol. 1 13.8.1, 13.8.2), each #GP(0): the compacted form needs
	 * XSAVEC, XCOMP_BV within XCR0, XSTATE_BV within XCOMP_BV and bytes 63:16 zero; the
	 * standard form XSTATE_BV within XCR0 and bytes 23:8 zero (24-63 are not looked at). */
	if (compact) {
		if (!f->xsavec || (xcomp_bv & ~XCOMP_BV_COMPACTED & ~c->xcr0) ||
		    (xstate_bv & ~xcomp_bv))
			return emu_gp0(ctx);
		for (unsigned int i = 2; i < 8; i++)
			if (hdr[i])
				return emu_gp0(ctx);
		compacted_offsets(f, xcomp_bv & ~XCOMP_BV_COMPACTED, off, &size);
	} else {
		if ((xstate_bv & ~c->xcr0) || hdr[1] || hdr[2])
			return emu_gp0(ctx);
		size = standard_size(f, mask);
		for (unsigned int i = 2; i < EMU_XSAVE_COMPONENTS; i++)
			off[i] = f->xsave_offset[i];
	}
	if (size > sizeof(buf))
		return emu_unsupported(ctx, "XRSTOR area of %u bytes", size);
	ret = emu_read_linear(ctx, la, buf, size, 0);
	if (ret)
		return ret;
	/* MXCSR: the standard form loads it whenever SSE or AVX is requested, whatever
	 * XSTATE_BV says; the compacted form only with SSE requested and in XSTATE_BV, else
	 * SSE's initial 1F80H (SDM Vol. 1 13.8.1, 13.8.2). Reserved bits: #GP. */
	if (compact ? (mask & xstate_bv & XCR0_SSE) : (mask & (XCR0_SSE | XCR0_YMM))) {
		if (get32(buf + XSAVE_MXCSR) & ~mxcsr_mask(c))
			return emu_gp0(ctx);
		memcpy(c->xsave + XSAVE_MXCSR, buf + XSAVE_MXCSR, 4);
	} else if (compact && (mask & XCR0_SSE)) {
		uint32_t init = MXCSR_DEFAULT;

		memcpy(c->xsave + XSAVE_MXCSR, &init, 4);
	}
	if (mask & XCR0_X87) {
		if (xstate_bv & XCR0_X87)
			copy_x87(c->xsave, buf);
		else
			init_x87(c->xsave);
	}
	if (mask & XCR0_SSE) {
		if (xstate_bv & XCR0_SSE)
			memcpy(c->xsave + XSAVE_XMM0, buf + XSAVE_XMM0, 16 * 16);
		else
			memset(c->xsave + XSAVE_XMM0, 0, 16 * 16);
	}
	image_bv = get64(c->xsave + XSAVE_HDR);
	for (unsigned int i = 2; i < EMU_XSAVE_COMPONENTS; i++) {
		if (!((mask >> i) & 1) || !f->xsave_size[i])
			continue;
		if ((xstate_bv >> i) & 1) {
			memcpy(c->xsave + f->xsave_offset[i], buf + off[i], f->xsave_size[i]);
			image_bv |= 1ull << i;
		} else {
			/* Initial state of the AVX and AVX-512 components is all zeros. */
			memset(c->xsave + f->xsave_offset[i], 0, f->xsave_size[i]);
			image_bv &= ~(1ull << i);
		}
	}
	/* x87 and SSE are marked in use with their (possibly initial) values written out, which
	 * is the same state and keeps MXCSR from being dropped by KVM_SET_XSAVE. */
	image_bv |= XCR0_X87 | XCR0_SSE;
	put64(c->xsave + XSAVE_HDR, image_bv);
	c->dirty |= EMU_DIRTY_XSAVE;
	return EMU_OK;
}

static int fx_checks(struct emu_ctx *ctx, uint64_t *la, bool write)
{
	const struct emu_cpu *c = ctx->cpu;
	int ret;

	if (!ctx->env->features->fxsr)
		return emu_ud(ctx);
	if (c->cr0 & (CR0_TS | CR0_EM))
		return emu_raise(ctx, EXC_NM, false, 0);
	ret = emu_op_mem_la(ctx, &ctx->ops[0], XSAVE_LEGACY_SIZE, write, la);
	if (ret)
		return ret;
	return *la & 15 ? emu_gp0(ctx) : EMU_OK;
}

/* FXSAVE stores bytes 0-159 and the XMM registers it saves, and nothing else: not bytes
 * 416-511, not the XMM area without CR4.OSFXSR, not XMM8-15's outside 64-bit mode (SDM
 * Vol. 2 FXSAVE); it reads nothing. */
static int fxsave(struct emu_ctx *ctx)
{
	const struct emu_cpu *c = ctx->cpu;
	unsigned int nxmm = emu_64bit(c) ? 16 : 8;
	uint64_t la;
	int ret = fx_checks(ctx, &la, true);

	if (ret)
		return ret;
	if (!(c->cr4 & CR4_OSFXSR))
		nxmm = 0; /* XMM registers are saved only with CR4.OSFXSR (SDM FXSAVE) */
	ret = store_part(ctx, la, 0, c->xsave, XSAVE_XMM0);
	if (!ret && nxmm)
		ret = store_part(ctx, la, XSAVE_XMM0, c->xsave + XSAVE_XMM0, 16 * nxmm);
	return ret;
}

static int fxrstor(struct emu_ctx *ctx)
{
	struct emu_cpu *c = ctx->cpu;
	unsigned int nxmm = emu_64bit(c) ? 16 : 8;
	uint8_t buf[XSAVE_LEGACY_SIZE];
	uint64_t la;
	int ret = fx_checks(ctx, &la, false);

	if (ret)
		return ret;
	ret = emu_read_linear(ctx, la, buf, sizeof(buf), 0);
	if (ret)
		return ret;
	if (get32(buf + XSAVE_MXCSR) & ~mxcsr_mask(c))
		return emu_gp0(ctx);
	copy_x87(c->xsave, buf);
	memcpy(c->xsave + XSAVE_MXCSR, buf + XSAVE_MXCSR, 4);
	if (c->cr4 & CR4_OSFXSR)
		memcpy(c->xsave + XSAVE_XMM0, buf + XSAVE_XMM0, 16 * nxmm);
	emu_xsave_touch(ctx, XFEATURE_X87);
	emu_xsave_touch(ctx, XFEATURE_SSE);
	return EMU_OK;
}

static int xgetbv(struct emu_ctx *ctx)
{
	struct emu_cpu *c = ctx->cpu;
	uint32_t index = c->gpr[EMU_RCX];
	uint64_t v;

	if (!(c->cr4 & CR4_OSXSAVE))
		return emu_ud(ctx);
	if (index == 0)
		v = c->xcr0;
	else if (index == 1 && ctx->env->features->xgetbv1)
		v = c->xcr0 & (get64(c->xsave + XSAVE_HDR) | XCR0_X87 | XCR0_SSE);
	else
		return emu_gp0(ctx);
	c->gpr[EMU_RAX] = (uint32_t)v;
	c->gpr[EMU_RDX] = v >> 32;
	return EMU_OK;
}

static int xsetbv(struct emu_ctx *ctx)
{
	struct emu_cpu *c = ctx->cpu;
	uint64_t v = ((uint64_t)(uint32_t)c->gpr[EMU_RDX] << 32) | (uint32_t)c->gpr[EMU_RAX];

	if (!(c->cr4 & CR4_OSXSAVE))
		return emu_ud(ctx);
	if (emu_cpl(c) > 0 || (uint32_t)c->gpr[EMU_RCX] != 0)
		return emu_gp0(ctx);
	/* XCR0 rules (SDM Vol. 1 13.3): x87 always on, only supported bits, AVX needs SSE,
	 * AVX-512 all three or none and only with AVX, MPX both or none. */
	if (!(v & XCR0_X87) || (v & ~ctx->env->features->xcr0_mask) ||
	    ((v & XCR0_YMM) && !(v & XCR0_SSE)) ||
	    ((v & XCR0_AVX512) && ((v & XCR0_AVX512) != XCR0_AVX512 || !(v & XCR0_YMM))) ||
	    (!!(v & XCR0_BNDREGS) != !!(v & XCR0_BNDCSR)))
		return emu_gp0(ctx);
	c->xcr0 = v;
	c->dirty |= EMU_DIRTY_XCR0;
	return EMU_OK;
}

static int mxcsr_access(struct emu_ctx *ctx, bool load)
{
	struct emu_cpu *c = ctx->cpu;
	uint64_t v;
	int ret;

	if ((c->cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
		return emu_ud(ctx);
	if (c->cr0 & CR0_TS)
		return emu_raise(ctx, EXC_NM, false, 0);
	if (!load)
		return emu_op_write(ctx, &ctx->ops[0], get32(c->xsave + XSAVE_MXCSR));
	ret = emu_op_read(ctx, &ctx->ops[0], &v);
	if (ret)
		return ret;
	if ((uint32_t)v & ~mxcsr_mask(c))
		return emu_gp0(ctx);
	memcpy(c->xsave + XSAVE_MXCSR, &v, 4);
	emu_xsave_touch(ctx, XFEATURE_SSE);
	return EMU_OK;
}

int emu_exec_xsave(struct emu_ctx *ctx)
{
	switch (ctx->insn.mnemonic) {
	case ZYDIS_MNEMONIC_XRSTOR:
	case ZYDIS_MNEMONIC_XRSTOR64: return xrstor(ctx);
	case ZYDIS_MNEMONIC_FXSAVE:
	case ZYDIS_MNEMONIC_FXSAVE64: return fxsave(ctx);
	case ZYDIS_MNEMONIC_FXRSTOR:
	case ZYDIS_MNEMONIC_FXRSTOR64: return fxrstor(ctx);
	case ZYDIS_MNEMONIC_XGETBV: return xgetbv(ctx);
	case ZYDIS_MNEMONIC_XSETBV: return xsetbv(ctx);
	case ZYDIS_MNEMONIC_LDMXCSR: return mxcsr_access(ctx, true);
	case ZYDIS_MNEMONIC_STMXCSR: return mxcsr_access(ctx, false);
	default: return xsave(ctx);
	}
}
