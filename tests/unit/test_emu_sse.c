/* test_emu_sse.c: SSE/AVX moves, pxor and cmpxchg8b/16b in the emulator. movd, movq (every
 * form), movdqu, movdqa, movaps/ups/apd/upd, movntdq, movnti, pxor, xorps and cmpxchg8b/16b
 * are also run on the host CPU with the same bytes and random inputs and compared (emu_native.h).
 * Then what the host comparison cannot show: YMM upper halves kept by legacy SSE and zeroed by
 * VEX (vmovq, vmovdqu, vpxor, vzeroupper with ZMM_Hi256), #GP(0) for misaligned aligned forms,
 * #UD/#NM availability rules, cmpxchg16b alignment, CPUID.CX16, write faults and MMIO refusal. */
#include "emu_native.h"

/* --- SSE moves and pxor --- */

struct sse_case {
	const char *name;
	uint8_t insn[8];
	size_t len;
};

static void test_sse_native(struct fx *fx)
{
	/* clang-format off */
	static const struct sse_case cases[] = {
		{"movq xmm0, rax", {0x66, 0x48, 0x0f, 0x6e, 0xc0}, 5},
		{"movq rax, xmm1", {0x66, 0x48, 0x0f, 0x7e, 0xc8}, 5},
		{"movd xmm2, ecx", {0x66, 0x0f, 0x6e, 0xd1}, 4},
		{"movd eax, xmm3", {0x66, 0x0f, 0x7e, 0xd8}, 4},
		{"movq xmm1, xmm0", {0xf3, 0x0f, 0x7e, 0xc8}, 4},
		{"movq xmm0, [rsi]", {0xf3, 0x0f, 0x7e, 0x06}, 4},
		{"movq [rsi], xmm2", {0x66, 0x0f, 0xd6, 0x16}, 4},
		{"movq xmm3, xmm2 (66 0f d6)", {0x66, 0x0f, 0xd6, 0xd3}, 4},
		{"movq xmm1, [rsi] (66 REX.W 0f 6e)", {0x66, 0x48, 0x0f, 0x6e, 0x0e}, 5},
		{"movq [rsi], xmm3 (66 REX.W 0f 7e)", {0x66, 0x48, 0x0f, 0x7e, 0x1e}, 5},
		{"movd xmm3, [rsi]", {0x66, 0x0f, 0x6e, 0x1e}, 4},
		{"movd [rsi], xmm0", {0x66, 0x0f, 0x7e, 0x06}, 4},
		{"movdqu xmm0, [rsi]", {0xf3, 0x0f, 0x6f, 0x06}, 4},
		{"movdqu [rsi], xmm1", {0xf3, 0x0f, 0x7f, 0x0e}, 4},
		{"movdqu xmm2, xmm3", {0xf3, 0x0f, 0x6f, 0xd3}, 4},
		{"movdqa xmm0, [rsi]", {0x66, 0x0f, 0x6f, 0x06}, 4},
		{"movdqa [rsi], xmm2", {0x66, 0x0f, 0x7f, 0x16}, 4},
		{"movaps xmm2, xmm1", {0x0f, 0x28, 0xd1}, 3},
		{"movaps xmm1, [rsi]", {0x0f, 0x28, 0x0e}, 3},
		{"movups [rsi], xmm3", {0x0f, 0x11, 0x1e}, 3},
		{"movapd xmm3, [rsi]", {0x66, 0x0f, 0x28, 0x1e}, 4},
		{"movupd [rsi], xmm0", {0x66, 0x0f, 0x11, 0x06}, 4},
		{"movntdq [rsi], xmm1", {0x66, 0x0f, 0xe7, 0x0e}, 4},
		{"movnti [rsi], rax", {0x48, 0x0f, 0xc3, 0x06}, 4},
		{"movnti [rsi], ecx", {0x0f, 0xc3, 0x0e}, 3},
		{"pxor xmm0, xmm1", {0x66, 0x0f, 0xef, 0xc1}, 4},
		{"pxor xmm2, xmm2", {0x66, 0x0f, 0xef, 0xd2}, 4},
		{"pxor xmm3, [rsi]", {0x66, 0x0f, 0xef, 0x1e}, 4},
		{"xorps xmm3, xmm0", {0x0f, 0x57, 0xd8}, 3},
		{"xorps xmm1, [rsi]", {0x0f, 0x57, 0x0e}, 3},
	};
	/* clang-format on */
	uint8_t mem[BUF_SIZE];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int round = 0; round < 4; round++) {
			struct native_regs in = {0};
			struct dual d;
			int before = t_failures;

			for (size_t j = 0; j < BUF_SIZE; j++)
				mem[j] = (uint8_t)rng();
			for (int r = 0; r < 16; r++)
				in.gpr[r] = rng();
			for (int x = 0; x < 4; x++)
				for (int b = 0; b < 16; b++)
					in.xmm[x][b] = (uint8_t)rng();
			in.gpr[EMU_RSI] = 256; /* 16-aligned for the aligned forms */
			in.rflags = 0x2 | (round & 1 ? FX_ARITH : 0);
			dual_run(fx, cases[i].insn, cases[i].len, &in, mem, EMU_RSI, true, &d);
			CHECK_EQ(d.res.status, EMU_DONE);
			CHECK_EQ(d.emu.rflags, in.rflags); /* moves and pxor leave RFLAGS */
			CHECK(dual_same(&d, FX_ARITH));
			if (t_failures != before) {
				fprintf(stderr, "  %s\n", cases[i].name);
				print_insn(cases[i].insn, cases[i].len);
			}
		}
	}
}

static void set_pattern_xmm(struct emu_cpu *c)
{
	uint8_t v[16];

	for (int i = 0; i < 16; i++) {
		fx_fill(v, 16, (uint8_t)(0x10 * i + 1));
		fx_set_xmm(c, i, v);
		fx_fill(v, 16, (uint8_t)(0x10 * i + 0x81));
		fx_set_ymmh(c, i, v);
	}
}

static void test_sse_semantics(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;
	uint8_t x[16], y[16], z[32], hi[16];
	uint64_t bv;

	/* movq xmm0, rax: bits 127:64 zero, YMM upper half kept (legacy SSE). */
	fx_init_cpu(&c);
	set_pattern_xmm(&c);
	fx_get_ymmh(&c, 0, hi);
	c.gpr[EMU_RAX] = 0x1122334455667788ull;
	FX_STEP(fx, &c, &res, 0x66, 0x48, 0x0f, 0x6e, 0xc0);
	CHECK_EQ(res.status, EMU_DONE);
	fx_get_xmm(&c, 0, x);
	memcpy(&bv, x, 8);
	CHECK_EQ(bv, 0x1122334455667788ull);
	CHECK(all_zero(x + 8, 8));
	fx_get_ymmh(&c, 0, y);
	CHECK(memcmp(y, hi, 16) == 0);
	CHECK(c.dirty & EMU_DIRTY_XSAVE);
	memcpy(&bv, c.xsave + FX_HDR, 8);
	CHECK(bv & 2);

	/* vmovq xmm0, rax (VEX): everything above bit 63 zero, YMM upper too. */
	fx_init_cpu(&c);
	set_pattern_xmm(&c);
	c.gpr[EMU_RAX] = 0x1122334455667788ull;
	FX_STEP(fx, &c, &res, 0xc4, 0xe1, 0xf9, 0x6e, 0xc0);
	CHECK_EQ(res.status, EMU_DONE);
	fx_get_xmm(&c, 0, x);
	fx_get_ymmh(&c, 0, y);
	CHECK(all_zero(x + 8, 8));
	CHECK(all_zero(y, 16));
	fx_get_ymmh(&c, 1, y); /* other registers untouched */
	CHECK(!all_zero(y, 16));

	/* vmovdqu ymm0, [rsi]: 32 bytes across XMM0 and the YMM upper half. */
	fx_init_cpu(&c);
	fx_fill(fx->ram + GBUF, 32, 0x40);
	c.gpr[EMU_RSI] = GBUF + 3;
	FX_STEP(fx, &c, &res, 0xc5, 0xfe, 0x6f, 0x06);
	CHECK_EQ(res.status, EMU_DONE);
	fx_get_xmm(&c, 0, z);
	fx_get_ymmh(&c, 0, z + 16);
	CHECK(memcmp(z, fx->ram + GBUF + 3, 32) == 0);
	memcpy(&bv, c.xsave + FX_HDR, 8);
	CHECK(bv & 4);
	/* vmovdqu [rsi], ymm0 back, elsewhere. */
	c.gpr[EMU_RSI] = GBUF + 0x101;
	FX_STEP(fx, &c, &res, 0xc5, 0xfe, 0x7f, 0x06);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(memcmp(fx->ram + GBUF + 0x101, fx->ram + GBUF + 3, 32) == 0);
	/* vmovdqu xmm1, [rsi] (VEX.128): YMM1's upper half becomes zero. */
	set_pattern_xmm(&c);
	FX_STEP(fx, &c, &res, 0xc5, 0xfa, 0x6f, 0x0e);
	CHECK_EQ(res.status, EMU_DONE);
	fx_get_ymmh(&c, 1, y);
	CHECK(all_zero(y, 16));
	/* movdqu xmm1, [rsi] (legacy): YMM1's upper half stays. */
	set_pattern_xmm(&c);
	fx_get_ymmh(&c, 1, hi);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x0e);
	fx_get_ymmh(&c, 1, y);
	CHECK(memcmp(y, hi, 16) == 0);

	/* vpxor xmm0, xmm1, xmm2: three operands, upper half zeroed. */
	fx_init_cpu(&c);
	set_pattern_xmm(&c);
	FX_STEP(fx, &c, &res, 0xc5, 0xf1, 0xef, 0xc2);
	CHECK_EQ(res.status, EMU_DONE);
	fx_get_xmm(&c, 1, x);
	fx_get_xmm(&c, 2, y);
	for (int i = 0; i < 16; i++)
		x[i] ^= y[i];
	fx_get_xmm(&c, 0, y);
	CHECK(memcmp(x, y, 16) == 0);
	fx_get_ymmh(&c, 0, y);
	CHECK(all_zero(y, 16));
	/* vpxor ymm0, ymm1, ymm2: 256 bits. */
	set_pattern_xmm(&c);
	FX_STEP(fx, &c, &res, 0xc5, 0xf5, 0xef, 0xc2);
	CHECK_EQ(res.status, EMU_DONE);
	fx_get_ymmh(&c, 0, y);
	for (int i = 0; i < 16; i++)
		CHECK_EQ(y[i], (uint8_t)((0x91 + 7 * i) ^ (0xa1 + 7 * i)));

	/* vzeroupper: YMM upper halves and ZMM_Hi256 zero, XMM kept. */
	fx_init_cpu(&c);
	c.xcr0 = 0xe7;
	set_pattern_xmm(&c);
	memset(c.xsave + 1152, 0x5a, 512);
	FX_STEP(fx, &c, &res, 0xc5, 0xf8, 0x77);
	CHECK_EQ(res.status, EMU_DONE);
	for (int i = 0; i < 16; i++) {
		fx_get_ymmh(&c, i, y);
		CHECK(all_zero(y, 16));
		fx_get_xmm(&c, i, x);
		CHECK_EQ(x[0], (uint8_t)(0x10 * i + 1));
	}
	CHECK(all_zero(c.xsave + 1152, 512));

	/* Aligned forms: #GP(0) on a misaligned operand, nothing changed. */
	/* clang-format off */
	static const uint8_t aligned[][5] = {
		{4, 0x66, 0x0f, 0x6f, 0x06}, /* movdqa xmm0, [rsi] */
		{4, 0x66, 0x0f, 0x7f, 0x06}, /* movdqa [rsi], xmm0 */
		{3, 0x0f, 0x28, 0x06},	     /* movaps xmm0, [rsi] */
		{3, 0x0f, 0x29, 0x06},	     /* movaps [rsi], xmm0 */
		{4, 0x66, 0x0f, 0x28, 0x06}, /* movapd */
		{4, 0x66, 0x0f, 0xe7, 0x06}, /* movntdq */
		{4, 0x66, 0x0f, 0xef, 0x06}, /* pxor xmm0, [rsi] */
		{3, 0x0f, 0x57, 0x06},	     /* xorps xmm0, [rsi] */
		{4, 0xc5, 0xfd, 0x6f, 0x06}, /* vmovdqa ymm0, [rsi]: 32-byte alignment */
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof(aligned) / sizeof(aligned[0]); i++) {
		uint64_t misalign = i == 8 ? 16 : 8;

		fx_init_cpu(&c);
		set_pattern_xmm(&c);
		c.gpr[EMU_RSI] = GBUF + misalign;
		fx_snapshot(fx, &c, &save);
		fx_step(fx, &c, aligned[i] + 1, aligned[i][0], &res);
		FX_CHECK_FAULT(&res, FX_GP, 0);
		FX_CHECK_UNCHANGED(fx, &c, &save);
	}
	/* ... and work when aligned. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = GBUF + 32;
	FX_STEP(fx, &c, &res, 0xc5, 0xfd, 0x6f, 0x06);
	CHECK_EQ(res.status, EMU_DONE);
	/* Unaligned forms do not care. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = GBUF + 1;
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x06);
	CHECK_EQ(res.status, EMU_DONE);
	FX_STEP(fx, &c, &res, 0xc5, 0xf1, 0xef, 0x06); /* vpxor xmm0, xmm1, [rsi] */
	CHECK_EQ(res.status, EMU_DONE);

	/* Availability: no CR4.OSFXSR or CR0.EM: #UD for SSE; CR0.TS: #NM; AVX needs XCR0
	 * SSE|YMM and CR4.OSXSAVE. */
	fx_init_cpu(&c);
	c.cr4 &= ~FX_CR4_OSFXSR;
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xef, 0xc1);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx_init_cpu(&c);
	c.cr0 |= FX_CR0_EM;
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xef, 0xc1);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx_init_cpu(&c);
	c.cr0 |= FX_CR0_TS;
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xef, 0xc1);
	FX_CHECK_FAULT(&res, FX_NM, -1);
	fx_init_cpu(&c);
	c.xcr0 = 3;
	FX_STEP(fx, &c, &res, 0xc5, 0xf1, 0xef, 0xc2);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx_init_cpu(&c);
	c.cr4 &= ~FX_CR4_OSXSAVE;
	FX_STEP(fx, &c, &res, 0xc5, 0xf1, 0xef, 0xc2);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx_init_cpu(&c);
	c.cr0 |= FX_CR0_TS;
	FX_STEP(fx, &c, &res, 0xc5, 0xf1, 0xef, 0xc2);
	FX_CHECK_FAULT(&res, FX_NM, -1);
	fx_init_cpu(&c);
	fx->feat.avx = false;
	FX_STEP(fx, &c, &res, 0xc5, 0xf1, 0xef, 0xc2);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx->feat.avx = true;
	/* MMX registers are not emulated: said so. */
	fx_init_cpu(&c);
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0x0f, 0xef, 0xc1); /* pxor mm0, mm1 */
	CHECK_EQ(res.status, EMU_UNSUPPORTED);
	CHECK(res.why[0] != 0);
	FX_CHECK_UNCHANGED(fx, &c, &save);
}

/* VEX.256 vpxor is AVX2 (VEX.128 is AVX), and the EVEX forms of vmovd/vmovq are AVX-512F:
 * each #UD without its CPUID bit, EVEX also without the OS having enabled the AVX-512 state
 * (XCR0[7:5] and [2:1], SDM Vol. 2 2.7 exception class E9NF); where they run, the VEX and
 * EVEX forms zero the destination above what they write, up to bit 511 (SDM Vol. 2 VMOVD/VMOVQ,
 * "VEX.128/EVEX encoded version ... DEST[MAXVL-1:64] <- 0"). */
static void test_avx_isa(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;
	uint8_t x[16], y[16];
	uint64_t q;

	/* vpxor ymm0, ymm1, ymm2 without AVX2: #UD, nothing changed; vpxor xmm (AVX) runs. */
	fx_init_cpu(&c);
	set_pattern_xmm(&c);
	fx->feat.avx2 = false;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xc5, 0xf5, 0xef, 0xc2);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xc5, 0xf1, 0xef, 0xc2);
	CHECK_EQ(res.status, EMU_DONE);
	fx->feat.avx2 = true;
	fx_init_cpu(&c);
	set_pattern_xmm(&c);
	FX_STEP(fx, &c, &res, 0xc5, 0xf5, 0xef, 0xc2);
	CHECK_EQ(res.status, EMU_DONE);

	/* EVEX vmovq xmm0, rax (62 f1 fd 08 6e c0), vmovd xmm0, ecx (62 f1 7d 08 6e c1) and
	 * vmovq xmm0, xmm1 (62 f1 fe 08 7e c1): #UD without AVX-512F... */
	/* clang-format off */
	static const uint8_t evex[][6] = {
		{0x62, 0xf1, 0xfd, 0x08, 0x6e, 0xc0},
		{0x62, 0xf1, 0x7d, 0x08, 0x6e, 0xc1},
		{0x62, 0xf1, 0xfe, 0x08, 0x7e, 0xc1},
		{0x62, 0xf1, 0xfd, 0x08, 0xd6, 0xc8}, /* vmovq xmm0, xmm1 (66 0f d6 form) */
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof(evex) / sizeof(evex[0]); i++) {
		int before = t_failures;

		fx_init_cpu(&c);
		c.xcr0 = 0xe7;
		set_pattern_xmm(&c);
		fx->feat.avx512f = false;
		fx_snapshot(fx, &c, &save);
		fx_step(fx, &c, evex[i], 6, &res);
		FX_CHECK_FAULT(&res, FX_UD, -1);
		FX_CHECK_UNCHANGED(fx, &c, &save);
		fx->feat.avx512f = true;
		/* ... and without the AVX-512 state enabled in XCR0 or CR4.OSXSAVE ... */
		c.xcr0 = 0x7;
		fx_snapshot(fx, &c, &save);
		fx_step(fx, &c, evex[i], 6, &res);
		FX_CHECK_FAULT(&res, FX_UD, -1);
		FX_CHECK_UNCHANGED(fx, &c, &save);
		c.xcr0 = 0xe7;
		c.cr4 &= ~FX_CR4_OSXSAVE;
		fx_step(fx, &c, evex[i], 6, &res);
		FX_CHECK_FAULT(&res, FX_UD, -1);
		c.cr4 |= FX_CR4_OSXSAVE;
		/* ... whatever CR4.OSFXSR says (not a legacy SSE instruction); then bits 511:64
		 * (vmovq) or 511:32 (vmovd) of ZMM0 are zero: XMM0's upper part, the YMM upper
		 * half and ZMM_Hi256; ZMM1's are kept. */
		c.cr4 &= ~FX_CR4_OSFXSR;
		c.gpr[EMU_RAX] = 0x1122334455667788ull;
		c.gpr[EMU_RCX] = 0x99aabbccddeeff00ull;
		memset(c.xsave + 1152, 0x5a, 64);
		fx_get_xmm(&c, 1, x);
		fx_step(fx, &c, evex[i], 6, &res);
		CHECK_EQ(res.status, EMU_DONE);
		fx_get_xmm(&c, 0, y);
		memcpy(&q, y, 8);
		if (i == 0)
			CHECK_EQ(q, 0x1122334455667788ull);
		else if (i == 1)
			CHECK_EQ(q, 0xddeeff00ull);
		else
			CHECK(memcmp(y, x, 8) == 0);
		CHECK(all_zero(y + 8, 8));
		fx_get_ymmh(&c, 0, y);
		CHECK(all_zero(y, 16));
		CHECK(all_zero(c.xsave + 1152, 32));	/* ZMM0 bits 511:256 */
		CHECK_EQ(c.xsave[1152 + 32], 0x5a);	/* ZMM1's kept */
		fx_get_ymmh(&c, 1, y);
		CHECK(!all_zero(y, 16));
		if (t_failures != before)
			print_insn(evex[i], 6);
	}
}

/* movnti is an SSE2 store of a general register: none of the SSE register checks apply, so
 * neither CR0.TS (#NM) nor CR0.EM or a clear CR4.OSFXSR (#UD) stop it (SDM Vol. 2 MOVNTI,
 * "Protected Mode Exceptions": #UD only without CPUID.SSE2 or with LOCK). */
static void test_movnti(struct fx *fx)
{
	static const struct {
		const char *name;
		uint64_t cr0_set, cr4_clear;
	} cases[] = {
		{"CR0.TS", FX_CR0_TS, 0},
		{"CR0.TS|MP", FX_CR0_TS | FX_CR0_MP, 0},
		{"CR0.EM", FX_CR0_EM, 0},
		{"CR4.OSFXSR clear", 0, FX_CR4_OSFXSR},
		{"CR4.OSXSAVE clear", 0, FX_CR4_OSXSAVE},
	};
	struct emu_cpu c;
	struct emu_result res;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = t_failures;

		fx_init_cpu(&c);
		c.cr0 |= cases[i].cr0_set;
		c.cr4 &= ~cases[i].cr4_clear;
		c.gpr[EMU_RSI] = GBUF + 0x40;
		c.gpr[EMU_RAX] = 0x0123456789abcdefull;
		fx_put64(fx, GBUF + 0x40, 0);
		FX_STEP(fx, &c, &res, 0x48, 0x0f, 0xc3, 0x06); /* movnti [rsi], rax */
		CHECK_EQ(res.status, EMU_DONE);
		CHECK_EQ(fx_get64(fx, GBUF + 0x40), 0x0123456789abcdefull);
		if (t_failures != before)
			fprintf(stderr, "  movnti with %s\n", cases[i].name);
	}
	/* Without SSE2 it is #UD. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = GBUF + 0x40;
	fx->feat.sse = false;
	FX_STEP(fx, &c, &res, 0x0f, 0xc3, 0x06);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx->feat.sse = true;
}

/* --- cmpxchg8b, cmpxchg16b --- */

static void test_cmpxchg(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;
	uint8_t mem[BUF_SIZE] = {0};
	uint64_t m[2];

	/* Against the host, equal and not equal, with and without lock. */
	/* clang-format off */
	static const uint8_t insns[][6] = {
		{5, 0xf0, 0x48, 0x0f, 0xc7, 0x0e}, /* lock cmpxchg16b [rsi] */
		{4, 0x48, 0x0f, 0xc7, 0x0e},	   /* cmpxchg16b [rsi] */
		{4, 0xf0, 0x0f, 0xc7, 0x0e},	   /* lock cmpxchg8b [rsi] */
		{3, 0x0f, 0xc7, 0x0e},		   /* cmpxchg8b [rsi] */
	};
	/* clang-format on */
	for (size_t i = 0; i < 4; i++) {
		for (int equal = 0; equal < 2; equal++) {
			struct native_regs in = {0};
			struct dual d;
			int before = t_failures;
			bool wide = i < 2;

			m[0] = 0x1111111122222222ull;
			m[1] = 0x3333333344444444ull;
			memcpy(mem + 0x40, m, 16);
			in.gpr[EMU_RAX] = equal ? (wide ? m[0] : 0xabcdef0022222222ull) : 5;
			in.gpr[EMU_RDX] = equal ? (wide ? m[1] : 0xabcdef0011111111ull) : 6;
			in.gpr[EMU_RBX] = 0x5555555566666666ull;
			in.gpr[EMU_RCX] = 0x7777777788888888ull;
			in.gpr[EMU_RSI] = 0x40;
			in.rflags = 0x2 | (equal ? 0 : FX_ZF);
			dual_run(fx, insns[i] + 1, insns[i][0], &in, mem, EMU_RSI,
				 !wide || host.cx16, &d);
			CHECK_EQ(d.res.status, EMU_DONE);
			memcpy(m, d.emu_mem + 0x40, 16);
			if (equal) {
				CHECK(d.emu.rflags & FX_ZF);
				CHECK_EQ(m[0], wide ? in.gpr[EMU_RBX] : 0x8888888866666666ull);
				CHECK_EQ(d.emu.gpr[EMU_RAX],
					 in.gpr[EMU_RAX]); /* upper halves kept */
				CHECK_EQ(d.emu.gpr[EMU_RDX], in.gpr[EMU_RDX]);
			} else {
				CHECK(!(d.emu.rflags & FX_ZF));
				CHECK_EQ(m[0], 0x1111111122222222ull);
				CHECK_EQ(d.emu.gpr[EMU_RAX], wide ? m[0] : 0x22222222);
				CHECK_EQ(d.emu.gpr[EMU_RDX], wide ? m[1] : 0x11111111);
			}
			CHECK_EQ(m[1], wide && equal ? in.gpr[EMU_RCX] : 0x3333333344444444ull);
			CHECK(dual_same(&d, FX_ARITH));
			if (t_failures != before)
				print_insn(insns[i] + 1, insns[i][0]);
		}
	}
	/* cmpxchg16b needs a 16-byte aligned operand: #GP(0). */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = GBUF + 8;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xf0, 0x48, 0x0f, 0xc7, 0x0e);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* cmpxchg8b does not. */
	c.gpr[EMU_RSI] = GBUF + 4;
	FX_STEP(fx, &c, &res, 0xf0, 0x0f, 0xc7, 0x0e);
	CHECK_EQ(res.status, EMU_DONE);
	/* Without CPUID.CX16: #UD. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = GBUF;
	fx->feat.cx16 = false;
	FX_STEP(fx, &c, &res, 0xf0, 0x48, 0x0f, 0xc7, 0x0e);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx->feat.cx16 = true;
	/* It always writes: a read-only page faults even when the compare fails. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = FX_RO + 0x10;
	c.gpr[EMU_RAX] = 1;
	FX_STEP(fx, &c, &res, 0xf0, 0x48, 0x0f, 0xc7, 0x0e);
	FX_CHECK_FAULT(&res, FX_PFV, 3);
	CHECK_EQ(res.fault.cr2, FX_RO + 0x10);
	/* Not present: #PF with W. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = FX_HOLE;
	FX_STEP(fx, &c, &res, 0xf0, 0x48, 0x0f, 0xc7, 0x0e);
	FX_CHECK_FAULT(&res, FX_PFV, 2);
	/* A locked access to MMIO cannot be made atomic here: said so. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = FX_MMIO;
	FX_STEP(fx, &c, &res, 0xf0, 0x48, 0x0f, 0xc7, 0x0e);
	CHECK_EQ(res.status, EMU_UNSUPPORTED);
	CHECK_EQ(fx->nlog, 0);
}

int main(void)
{
	struct fx fx;

	if (!fx_init(&fx)) {
		fprintf(stderr, "fixture setup failed\n");
		return T_EXIT_FAIL;
	}
	host_features();
	test_sse_native(&fx);
	test_sse_semantics(&fx);
	test_movnti(&fx);
	test_avx_isa(&fx);
	test_cmpxchg(&fx);
	fprintf(stderr, "compared with the host CPU: %u runs (%u could not run natively)\n",
		native_compared, native_skipped);
	CHECK(native_compared > 0);
	fx_fini(&fx);
	return t_done();
}
