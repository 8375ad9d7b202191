/* test_emu_xsave.c: the emulator's extended-state instructions: xsave, xsaveopt, xsavec,
 * xrstor (standard and compacted, init versus loaded components, every header #GP), fxsave,
 * fxrstor, ldmxcsr, stmxcsr (MXCSR reserved bits against MXCSR_MASK), xgetbv and xsetbv (every
 * #UD/#NM/#GP rule), including save -> restore round trips and areas whose second page is
 * missing. Expected values follow SDM Vol. 1 ch. 13 and Vol. 2. */
#include "emu_fixture.h"

#define XBUF (FX_DATA + 0x4000) /* 64-byte aligned guest buffer, 8 KiB */

#define XSAVE	 0x0f, 0xae, 0x26
#define XSAVEOPT 0x0f, 0xae, 0x36
#define XSAVEC	 0x0f, 0xc7, 0x26
#define XRSTOR	 0x0f, 0xae, 0x2e
#define FXSAVE	 0x0f, 0xae, 0x06
#define FXRSTOR	 0x0f, 0xae, 0x0e
#define LDMXCSR	 0x0f, 0xae, 0x16
#define STMXCSR	 0x0f, 0xae, 0x1e
#define XGETBV	 0x0f, 0x01, 0xd0
#define XSETBV	 0x0f, 0x01, 0xd1

static uint64_t hdr(struct fx *fx, unsigned int i)
{
	return fx_get64(fx, XBUF + 512 + 8 * i);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* A CPU with non-initial x87, SSE and AVX state. */
static void busy_cpu(struct emu_cpu *c)
{
	uint8_t v[16];

	fx_init_cpu(c);
	c->xsave[0] = 0x7f; /* FCW 0x027f */
	c->xsave[1] = 0x02;
	c->xsave[2] = 0x00; /* FSW: TOP 7 */
	c->xsave[3] = 0x38;
	c->xsave[4] = 0x80;		  /* one valid register */
	fx_fill(c->xsave + 32, 10, 0x60); /* ST0 */
	fx_fill(c->xsave + 8, 16, 0x70);  /* FIP, FDP */
	put32(c->xsave + 24, 0x1fa0);	  /* MXCSR */
	for (int i = 0; i < 16; i++) {
		fx_fill(v, 16, (uint8_t)(i * 16 + 1));
		fx_set_xmm(c, i, v);
		fx_fill(v, 16, (uint8_t)(i * 16 + 0x81));
		fx_set_ymmh(c, i, v);
	}
	c->xsave[FX_HDR] = 0x7;
	c->gpr[EMU_RSI] = XBUF;
	c->gpr[EMU_RAX] = ~0ull;
	c->gpr[EMU_RDX] = ~0ull;
}

static void test_xsave_standard(struct fx *fx)
{
	struct emu_cpu c, orig, save;
	struct emu_result res;

	busy_cpu(&c);
	orig = c;
	memset(fx->ram + XBUF, 0xcc, 4096);
	fx_put64(fx, XBUF + 512, 0); /* XSTATE_BV */
	FX_STEP(fx, &c, &res, XSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(memcmp(fx->ram + XBUF, orig.xsave, 24) == 0);	     /* x87 control part */
	CHECK(memcmp(fx->ram + XBUF + 24, orig.xsave + 24, 8) == 0); /* MXCSR, MXCSR_MASK */
	CHECK(memcmp(fx->ram + XBUF + 32, orig.xsave + 32, 128) == 0);
	CHECK(memcmp(fx->ram + XBUF + 160, orig.xsave + 160, 256) == 0);
	CHECK(memcmp(fx->ram + XBUF + 576, orig.xsave + 576, 256) == 0);
	CHECK_EQ(hdr(fx, 0), 7);
	/* Not written: legacy bytes 416-511, XCOMP_BV and the rest of the header, and
	 * everything past the AVX component. */
	CHECK_EQ(fx->ram[XBUF + 416], 0xcc);
	CHECK_EQ(fx->ram[XBUF + 511], 0xcc);
	CHECK_EQ(hdr(fx, 1), 0xccccccccccccccccull);
	CHECK_EQ(hdr(fx, 7), 0xccccccccccccccccull);
	CHECK_EQ(fx->ram[XBUF + 832], 0xcc);
	/* The state is not changed by saving it. */
	CHECK(memcmp(c.xsave, orig.xsave, EMU_XSAVE_SIZE) == 0);
	CHECK_EQ(c.rip, orig.rip + 3);

	/* RFBM = SSE only: MXCSR and XMM written, x87 and AVX not; XSTATE_BV bit 1 updated,
	 * the others as they were in memory. */
	busy_cpu(&c);
	c.gpr[EMU_RAX] = 2;
	c.gpr[EMU_RDX] = 0;
	memset(fx->ram + XBUF, 0xcc, 4096);
	fx_put64(fx, XBUF + 512, 0x4);
	FX_STEP(fx, &c, &res, XSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(fx->ram[XBUF + 0], 0xcc);
	CHECK_EQ(fx->ram[XBUF + 32], 0xcc);
	CHECK_EQ(get32(fx->ram + XBUF + 24), 0x1fa0);
	CHECK(memcmp(fx->ram + XBUF + 160, c.xsave + 160, 256) == 0);
	CHECK_EQ(fx->ram[XBUF + 576], 0xcc);
	CHECK_EQ(hdr(fx, 0), 0x6);
	/* RFBM = AVX only: MXCSR still written (it goes with SSE or AVX). */
	c.gpr[EMU_RAX] = 4;
	memset(fx->ram + XBUF, 0xcc, 1024);
	fx_put64(fx, XBUF + 512, 0);
	FX_STEP(fx, &c, &res, XSAVE);
	CHECK_EQ(get32(fx->ram + XBUF + 24), 0x1fa0);
	CHECK_EQ(fx->ram[XBUF + 160], 0xcc);
	CHECK(memcmp(fx->ram + XBUF + 576, c.xsave + 576, 256) == 0);
	CHECK_EQ(hdr(fx, 0), 0x4);
	/* EDX:EAX beyond XCR0 is ignored (RFBM = XCR0 & EDX:EAX). */
	busy_cpu(&c);
	c.xcr0 = 3;
	memset(fx->ram + XBUF, 0xcc, 1024);
	fx_put64(fx, XBUF + 512, 0);
	FX_STEP(fx, &c, &res, XSAVE);
	CHECK_EQ(hdr(fx, 0), 3);
	CHECK_EQ(fx->ram[XBUF + 576], 0xcc);
	/* AVX state not in use (XINUSE[2] = 0): its XSTATE_BV bit is cleared. */
	busy_cpu(&c);
	c.xsave[FX_HDR] = 3;
	memset(c.xsave + 576, 0, 256);
	fx_put64(fx, XBUF + 512, 0x4);
	FX_STEP(fx, &c, &res, XSAVE);
	CHECK_EQ(hdr(fx, 0), 3);
	/* xsaveopt and xsave64 store the same here. */
	busy_cpu(&c);
	fx_put64(fx, XBUF + 512, 0);
	memset(fx->ram + XBUF + 160, 0, 16);
	FX_STEP(fx, &c, &res, XSAVEOPT);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(hdr(fx, 0), 7);
	CHECK(memcmp(fx->ram + XBUF + 160, c.xsave + 160, 16) == 0);
	FX_STEP(fx, &c, &res, 0x48, XSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	fx->feat.xsaveopt = false;
	FX_STEP(fx, &c, &res, XSAVEOPT);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx->feat.xsaveopt = true;

	/* Faults, each with nothing changed. */
	static const uint8_t insns[][3] = {{XSAVE}, {XSAVEOPT}, {XSAVEC}, {XRSTOR}};

	for (size_t i = 0; i < 4; i++) {
		/* Alignment: 64 bytes. */
		busy_cpu(&c);
		c.gpr[EMU_RSI] = XBUF + 32;
		fx_snapshot(fx, &c, &save);
		fx_step(fx, &c, insns[i], 3, &res);
		FX_CHECK_FAULT(&res, FX_GP, 0);
		FX_CHECK_UNCHANGED(fx, &c, &save);
		/* CR4.OSXSAVE clear: #UD. */
		busy_cpu(&c);
		c.cr4 &= ~FX_CR4_OSXSAVE;
		fx_step(fx, &c, insns[i], 3, &res);
		FX_CHECK_FAULT(&res, FX_UD, -1);
		/* CR0.TS: #NM. */
		busy_cpu(&c);
		c.cr0 |= FX_CR0_TS;
		fx_step(fx, &c, insns[i], 3, &res);
		FX_CHECK_FAULT(&res, FX_NM, -1);
		/* Non-canonical: #GP(0). */
		busy_cpu(&c);
		c.gpr[EMU_RSI] = 0x0000800000000000ull;
		fx_step(fx, &c, insns[i], 3, &res);
		FX_CHECK_FAULT(&res, FX_GP, 0);
	}
	/* XSAVE into an area whose second page is missing: #PF (a write) at that page, and
	 * the first page untouched. */
	busy_cpu(&c);
	fx_map(fx, FX_HOLE - 0x1000, FX_HOLE - 0x1000, 0x1000, FX_P | FX_RW);
	c.gpr[EMU_RSI] = FX_HOLE - 0x200;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, XSAVE);
	FX_CHECK_FAULT(&res, FX_PFV, 2);
	CHECK_EQ(res.fault.cr2, FX_HOLE);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* Entirely on a page that is not present: still a write fault. */
	c.gpr[EMU_RSI] = FX_HOLE;
	FX_STEP(fx, &c, &res, XSAVE);
	FX_CHECK_FAULT(&res, FX_PFV, 2);
	/* On a read-only page: P|W. */
	c.gpr[EMU_RSI] = FX_RO;
	FX_STEP(fx, &c, &res, XSAVE);
	FX_CHECK_FAULT(&res, FX_PFV, 3);
	fx_unmap(fx, FX_HOLE - 0x1000);
}

static void test_xrstor(struct fx *fx)
{
	struct emu_cpu c, orig, save;
	struct emu_result res;
	uint8_t x[16];

	/* Round trip: xsave, clobber, xrstor. */
	busy_cpu(&c);
	orig = c;
	memset(fx->ram + XBUF, 0, 4096);
	FX_STEP(fx, &c, &res, XSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	memset(c.xsave, 0x5a, 1024);
	put32(c.xsave + 28, 0xffff); /* MXCSR_MASK is the CPU's, not state */
	c.xsave[FX_HDR] = 1;
	FX_STEP(fx, &c, &res, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(memcmp(c.xsave, orig.xsave, 24) == 0);
	CHECK_EQ(get32(c.xsave + 24), 0x1fa0);
	CHECK(memcmp(c.xsave + 32, orig.xsave + 32, 128 + 256) == 0);
	CHECK(memcmp(c.xsave + 576, orig.xsave + 576, 256) == 0);
	CHECK_EQ(c.xsave[FX_HDR] & 7, 7);
	CHECK(c.dirty & EMU_DIRTY_XSAVE);
	/* xrstor64 too. */
	memset(c.xsave + 160, 0, 16);
	FX_STEP(fx, &c, &res, 0x48, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(memcmp(c.xsave + 160, orig.xsave + 160, 16) == 0);

	/* XSTATE_BV = 0: every requested component to its initial state; MXCSR still from
	 * memory in the standard form. */
	busy_cpu(&c);
	memset(fx->ram + XBUF, 0x77, 1024);
	memset(fx->ram + XBUF + 512, 0, 64);
	put32(fx->ram + XBUF + 24, 0x1f00);
	FX_STEP(fx, &c, &res, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(get16(c.xsave + 0), 0x037f);
	CHECK_EQ(get16(c.xsave + 2), 0);
	CHECK_EQ(c.xsave[4], 0);
	CHECK(memcmp(c.xsave + 32, (uint8_t[128]){0}, 128) == 0);
	CHECK(memcmp(c.xsave + 160, (uint8_t[256]){0}, 256) == 0);
	CHECK(memcmp(c.xsave + 576, (uint8_t[256]){0}, 256) == 0);
	CHECK_EQ(get32(c.xsave + 24), 0x1f00);
	CHECK_EQ(c.xsave[FX_HDR] & 4, 0); /* AVX back in its initial state */
	/* RFBM = x87 only: SSE, MXCSR and AVX untouched. */
	busy_cpu(&c);
	orig = c;
	c.gpr[EMU_RAX] = 1;
	c.gpr[EMU_RDX] = 0;
	FX_STEP(fx, &c, &res, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(get16(c.xsave + 0), 0x037f);
	CHECK(memcmp(c.xsave + 24, orig.xsave + 24, 4) == 0);
	CHECK(memcmp(c.xsave + 160, orig.xsave + 160, 256) == 0);
	CHECK(memcmp(c.xsave + 576, orig.xsave + 576, 256) == 0);
	/* Loaded, not initialised, when XSTATE_BV says so: only XMM from memory. */
	busy_cpu(&c);
	memset(fx->ram + XBUF, 0, 1024);
	fx_fill(fx->ram + XBUF + 160, 256, 0x99);
	put32(fx->ram + XBUF + 24, 0x1f80);
	fx_put64(fx, XBUF + 512, 2);
	FX_STEP(fx, &c, &res, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	fx_get_xmm(&c, 0, x);
	CHECK(memcmp(x, fx->ram + XBUF + 160, 16) == 0);
	CHECK_EQ(get16(c.xsave + 0), 0x037f);

	/* Header checks: #GP(0), nothing changed. */
	/* clang-format off */
	struct {
		const char *name;
		uint64_t h[8];
		uint64_t xcr0;
		bool ok;
	} hcases[] = {
		{"XSTATE_BV beyond XCR0", {0x8}, 7, false},
		{"XSTATE_BV beyond XCR0 (AVX, XCR0=3)", {0x4}, 3, false},
		{"XCOMP_BV without bit 63", {0x3, 0x3}, 7, false},
		{"bytes 16-23 not zero", {0x3, 0, 1}, 7, false},
		{"bytes 24-63 ignored in the standard form", {0x3, 0, 0, 1, 2, 3, 4, 5}, 7, true},
		{"compacted: XCOMP_BV beyond XCR0", {0x3, (1ull << 63) | 0xb}, 7, false},
		{"compacted: XSTATE_BV beyond XCOMP_BV", {0x7, (1ull << 63) | 0x3}, 7, false},
		{"compacted: bytes 24-63 not zero", {0x3, (1ull << 63) | 0x3, 0, 0, 0, 0, 0, 1}, 7,
		 false},
		{"compacted: fine", {0x3, (1ull << 63) | 0x3}, 7, true},
		{"compacted: bit 63 alone", {0, 1ull << 63}, 7, true},
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof(hcases) / sizeof(hcases[0]); i++) {
		int before = t_failures;

		busy_cpu(&c);
		c.xcr0 = hcases[i].xcr0;
		memset(fx->ram + XBUF, 0, 1024);
		put32(fx->ram + XBUF + 24, 0x1f80);
		memcpy(fx->ram + XBUF + 512, hcases[i].h, 64);
		fx_snapshot(fx, &c, &save);
		FX_STEP(fx, &c, &res, XRSTOR);
		if (hcases[i].ok) {
			CHECK_EQ(res.status, EMU_DONE);
		} else {
			FX_CHECK_FAULT(&res, FX_GP, 0);
			FX_CHECK_UNCHANGED(fx, &c, &save);
		}
		if (t_failures != before)
			fprintf(stderr, "  header case \"%s\"\n", hcases[i].name);
	}
	/* Compacted form and MXCSR: loaded only with SSE requested and in XSTATE_BV, else the
	 * initial 1F80H; AVX alone does not touch it (unlike the standard form). */
	busy_cpu(&c);
	memset(fx->ram + XBUF, 0, 1024);
	put32(fx->ram + XBUF + 24, 0x1f00);
	fx_put64(fx, XBUF + 520, (1ull << 63) | 0x7);
	fx_put64(fx, XBUF + 512, 0x2);
	FX_STEP(fx, &c, &res, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(get32(c.xsave + 24), 0x1f00);
	busy_cpu(&c);
	fx_put64(fx, XBUF + 512, 0x0);
	FX_STEP(fx, &c, &res, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(get32(c.xsave + 24), 0x1f80);
	busy_cpu(&c);
	c.gpr[EMU_RAX] = 4;
	FX_STEP(fx, &c, &res, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(get32(c.xsave + 24), 0x1fa0);
	/* ... while the standard form loads MXCSR for AVX alone, with XSTATE_BV = 0. */
	busy_cpu(&c);
	fx_put64(fx, XBUF + 520, 0);
	FX_STEP(fx, &c, &res, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(get32(c.xsave + 24), 0x1f00);
	/* The compacted form without XSAVEC support: #GP. */
	busy_cpu(&c);
	memset(fx->ram + XBUF, 0, 1024);
	fx_put64(fx, XBUF + 520, 1ull << 63);
	fx->feat.xsavec = false;
	FX_STEP(fx, &c, &res, XRSTOR);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	fx->feat.xsavec = true;
	/* MXCSR reserved bits: #GP when MXCSR is loaded (RFBM has SSE or AVX), not otherwise. */
	busy_cpu(&c);
	memset(fx->ram + XBUF, 0, 1024);
	put32(fx->ram + XBUF + 24, 0x10000);
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, XRSTOR);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	c.gpr[EMU_RAX] = 4;
	FX_STEP(fx, &c, &res, XRSTOR);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	c.gpr[EMU_RAX] = 1;
	FX_STEP(fx, &c, &res, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	/* DAZ (bit 6) is allowed only when MXCSR_MASK says so; a zero mask means 0xffbf. */
	busy_cpu(&c);
	memset(fx->ram + XBUF, 0, 1024);
	put32(fx->ram + XBUF + 24, 0x1fc0);
	FX_STEP(fx, &c, &res, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	busy_cpu(&c);
	put32(c.xsave + 28, 0);
	FX_STEP(fx, &c, &res, XRSTOR);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	/* The area's second page is missing: #PF, nothing restored. */
	busy_cpu(&c);
	fx_map(fx, FX_HOLE - 0x1000, FX_HOLE - 0x1000, 0x1000, FX_P | FX_RW);
	memset(fx->ram + FX_HOLE - 0x200, 0, 0x200);
	c.gpr[EMU_RSI] = FX_HOLE - 0x200;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, XRSTOR);
	FX_CHECK_FAULT(&res, FX_PFV, 0);
	CHECK_EQ(res.fault.cr2, FX_HOLE);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	fx_unmap(fx, FX_HOLE - 0x1000);
}

/* XSAVEC with AVX-512: AVX not in use, opmask and ZMM_Hi256 in use, Hi16_ZMM not. The
 * compacted offsets follow XCOMP_BV = RFBM, not XINUSE (SDM Vol. 1 13.4.3). */
static void test_xsavec(struct fx *fx)
{
	struct emu_cpu c, orig;
	struct emu_result res;
	const uint32_t opmask = 576 + 256, zmm_hi = opmask + 64, hi16 = zmm_hi + 512;

	busy_cpu(&c);
	c.xcr0 = 0xe7;
	c.xsave[FX_HDR] = 0x63;
	memset(c.xsave + 576, 0, 256);
	fx_fill(c.xsave + 1088, 64, 0x31);
	fx_fill(c.xsave + 1152, 512, 0x41);
	memset(c.xsave + 1664, 0, 1024);
	orig = c;
	memset(fx->ram + XBUF, 0xcc, 8192);
	for (int i = 2; i < 8; i++)
		fx_put64(fx, XBUF + 512 + 8 * i, 0x1111111111111111ull);
	FX_STEP(fx, &c, &res, XSAVEC);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(hdr(fx, 0), 0x63);
	CHECK_EQ(hdr(fx, 1), (1ull << 63) | 0xe7);
	for (int i = 2; i < 8; i++)
		CHECK_EQ(hdr(fx, i), 0x1111111111111111ull); /* only XSTATE_BV, XCOMP_BV written */
	CHECK(memcmp(fx->ram + XBUF + opmask, orig.xsave + 1088, 64) == 0);
	CHECK(memcmp(fx->ram + XBUF + zmm_hi, orig.xsave + 1152, 512) == 0);
	CHECK_EQ(fx->ram[XBUF + 576], 0xcc);  /* AVX not in use: not written */
	CHECK_EQ(fx->ram[XBUF + hi16], 0xcc); /* Hi16_ZMM not in use: not written */
	CHECK(memcmp(fx->ram + XBUF + 160, orig.xsave + 160, 256) == 0);
	/* Back: the compacted XRSTOR finds each component where XSAVEC put it. */
	for (int i = 2; i < 8; i++)
		fx_put64(fx, XBUF + 512 + 8 * i, 0);
	memset(c.xsave + 160, 0, 2688 - 160);
	fx_fill(c.xsave + 576, 256, 0x22); /* AVX dirty: XRSTOR must put it back to init */
	c.xsave[FX_HDR] = 0xff;
	FX_STEP(fx, &c, &res, XRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(memcmp(c.xsave + 1088, orig.xsave + 1088, 64) == 0);
	CHECK(memcmp(c.xsave + 1152, orig.xsave + 1152, 512) == 0);
	CHECK(memcmp(c.xsave + 160, orig.xsave + 160, 256) == 0);
	CHECK(memcmp(c.xsave + 576, (uint8_t[256]){0}, 256) == 0);
	CHECK_EQ(c.xsave[FX_HDR] & 0xe4, 0x60);
	/* Without XSAVEC: #UD. */
	fx->feat.xsavec = false;
	FX_STEP(fx, &c, &res, XSAVEC);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx->feat.xsavec = true;
	/* A requested component the compaction skips: RFBM without AVX puts opmask at 576. */
	busy_cpu(&c);
	c.xcr0 = 0xe7;
	c.xsave[FX_HDR] = 0x23;
	fx_fill(c.xsave + 1088, 64, 0x31);
	c.gpr[EMU_RAX] = 0x23;
	memset(fx->ram + XBUF, 0, 4096);
	FX_STEP(fx, &c, &res, XSAVEC);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(hdr(fx, 1), (1ull << 63) | 0x23);
	CHECK(memcmp(fx->ram + XBUF + 576, c.xsave + 1088, 64) == 0);
}

static void test_fxsave(struct fx *fx)
{
	struct emu_cpu c, orig, save;
	struct emu_result res;

	busy_cpu(&c);
	orig = c;
	memset(fx->ram + XBUF, 0xcc, 1024);
	FX_STEP(fx, &c, &res, FXSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(memcmp(fx->ram + XBUF, orig.xsave, 416) == 0);
	CHECK_EQ(fx->ram[XBUF + 416], 0xcc); /* 416-511 are not written */
	CHECK_EQ(fx->ram[XBUF + 511], 0xcc);
	CHECK_EQ(fx->ram[XBUF + 512], 0xcc);
	/* fxrstor back after clobbering. */
	memset(c.xsave, 0, 416);
	put32(c.xsave + 28, 0xffff);
	FX_STEP(fx, &c, &res, FXRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(memcmp(c.xsave, orig.xsave, 24) == 0);
	CHECK(memcmp(c.xsave + 24, orig.xsave + 24, 4) == 0);
	CHECK(memcmp(c.xsave + 32, orig.xsave + 32, 384) == 0);
	CHECK(c.dirty & EMU_DIRTY_XSAVE);
	/* fxsave64/fxrstor64 as well. */
	FX_STEP(fx, &c, &res, 0x48, FXSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	FX_STEP(fx, &c, &res, 0x48, FXRSTOR);
	CHECK_EQ(res.status, EMU_DONE);
	/* Without CR4.OSFXSR the XMM registers are neither saved nor restored. */
	busy_cpu(&c);
	c.cr4 &= ~FX_CR4_OSFXSR;
	memset(fx->ram + XBUF, 0xcc, 1024);
	FX_STEP(fx, &c, &res, FXSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(get16(fx->ram + XBUF), 0x027f);
	CHECK_EQ(fx->ram[XBUF + 160], 0xcc);
	/* 16-byte alignment. */
	busy_cpu(&c);
	c.gpr[EMU_RSI] = XBUF + 16;
	FX_STEP(fx, &c, &res, FXSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	c.gpr[EMU_RSI] = XBUF + 8;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, FXSAVE);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	FX_STEP(fx, &c, &res, FXRSTOR);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	/* CR0.TS or CR0.EM: #NM; no FXSR in CPUID: #UD. */
	busy_cpu(&c);
	c.cr0 |= FX_CR0_TS;
	FX_STEP(fx, &c, &res, FXSAVE);
	FX_CHECK_FAULT(&res, FX_NM, -1);
	busy_cpu(&c);
	c.cr0 |= FX_CR0_EM;
	FX_STEP(fx, &c, &res, FXRSTOR);
	FX_CHECK_FAULT(&res, FX_NM, -1);
	busy_cpu(&c);
	fx->feat.fxsr = false;
	FX_STEP(fx, &c, &res, FXSAVE);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx->feat.fxsr = true;
	/* fxrstor with reserved MXCSR bits: #GP, nothing changed. */
	busy_cpu(&c);
	memset(fx->ram + XBUF, 0, 512);
	put32(fx->ram + XBUF + 24, 0x20000);
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, FXRSTOR);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	FX_CHECK_UNCHANGED(fx, &c, &save);
}

/* The RAM stores an instruction commits, as the engine hears of them (env.ram_written). */
struct stores {
	unsigned int n;
	struct store_range {
		uint64_t gpa, len;
	} r[64];
};

static void record_store(void *ctx, uint64_t gpa, uint64_t len)
{
	struct stores *st = ctx;

	if (st->n < 64)
		st->r[st->n++] = (struct store_range){gpa, len};
}

/* Whether any committed store touched [gpa, gpa + len). */
static bool stored(const struct stores *st, uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < st->n; i++)
		if (st->r[i].gpa < gpa + len && gpa < st->r[i].gpa + st->r[i].len)
			return true;
	return false;
}

/* Whether an MMIO access of kind (write) touched [addr, addr + len). */
static bool mmio_touched(const struct fx *fx, bool write, uint64_t addr, uint64_t len)
{
	for (unsigned int i = 0; i < fx->nlog; i++)
		if (fx->log[i].write == write && fx->log[i].addr < addr + len &&
		    addr < fx->log[i].addr + fx->log[i].size)
			return true;
	return false;
}

/* XSAVE, XSAVEC and FXSAVE store what they save and nothing else: not bytes 416-511 of the
 * legacy region, not the components outside RFBM (or not in use, for XSAVEC), not the header
 * past XSTATE_BV (XSAVE) or XCOMP_BV (XSAVEC), not the XMM registers of FXSAVE without
 * CR4.OSFXSR (SDM Vol. 1 13.4.1, 13.7, 13.10; Vol. 2 FXSAVE). A store of the old bytes back
 * is not harmless: another vCPU may write them meanwhile, and the engine takes it for code
 * modification. They read nothing of the area but the XSTATE_BV field XSAVE merges into (SDM
 * Vol. 1 13.7), so an MMIO destination sees no other read. */
static void test_save_writes_only_state(struct fx *fx)
{
	struct emu_cpu c;
	struct emu_result res;
	struct stores st;
	const uint64_t m = FX_MMIO + 0x1000;

	fx->env.ram_written = record_store;
	fx->env.ram_written_ctx = &st;
	/* XSAVE with RFBM = x87 | AVX. */
	busy_cpu(&c);
	c.gpr[EMU_RAX] = 5;
	c.gpr[EMU_RDX] = 0;
	memset(&st, 0, sizeof(st));
	FX_STEP(fx, &c, &res, XSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(stored(&st, XBUF, 160));	       /* x87, MXCSR (with AVX) */
	CHECK(stored(&st, XBUF + 576, 256));   /* AVX */
	CHECK(stored(&st, XBUF + 512, 8));     /* XSTATE_BV */
	CHECK(!stored(&st, XBUF + 160, 256));  /* SSE not requested */
	CHECK(!stored(&st, XBUF + 416, 96));   /* not used by XSAVE */
	CHECK(!stored(&st, XBUF + 520, 56));   /* XCOMP_BV and the rest of the header */
	/* XSAVEC with AVX requested but not in use: neither it nor 416-511 nor the header past
	 * XCOMP_BV. */
	busy_cpu(&c);
	c.xsave[FX_HDR] = 3;
	memset(&st, 0, sizeof(st));
	FX_STEP(fx, &c, &res, XSAVEC);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(stored(&st, XBUF, 416));
	CHECK(stored(&st, XBUF + 512, 16));
	CHECK(!stored(&st, XBUF + 416, 96));
	CHECK(!stored(&st, XBUF + 528, 48));
	CHECK(!stored(&st, XBUF + 576, 256));
	/* FXSAVE without CR4.OSFXSR: not the XMM area. */
	busy_cpu(&c);
	c.cr4 &= ~FX_CR4_OSFXSR;
	memset(&st, 0, sizeof(st));
	FX_STEP(fx, &c, &res, FXSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(stored(&st, XBUF, 160));
	CHECK(!stored(&st, XBUF + 160, 352));
	fx->env.ram_written = NULL;
	fx->env.ram_written_ctx = NULL;

	/* Into MMIO: FXSAVE reads nothing and writes 0-415. */
	busy_cpu(&c);
	c.gpr[EMU_RSI] = m;
	FX_STEP(fx, &c, &res, FXSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(!mmio_touched(fx, false, m, 4096));
	CHECK(mmio_touched(fx, true, m, 416));
	CHECK(!mmio_touched(fx, true, m + 416, 96));
	/* XSAVE with RFBM = x87 reads XSTATE_BV alone, and writes x87 and XSTATE_BV. */
	c.gpr[EMU_RAX] = 1;
	c.gpr[EMU_RDX] = 0;
	FX_STEP(fx, &c, &res, XSAVE);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(!mmio_touched(fx, false, m, 512));
	CHECK(!mmio_touched(fx, false, m + 520, 4096));
	CHECK(mmio_touched(fx, true, m + 512, 8));
	CHECK(!mmio_touched(fx, true, m + 24, 8));
	CHECK(!mmio_touched(fx, true, m + 160, 352));
	CHECK(!mmio_touched(fx, true, m + 520, 4096));
	/* XSAVEC reads nothing. */
	FX_STEP(fx, &c, &res, XSAVEC);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(!mmio_touched(fx, false, m, 4096));
	CHECK(mmio_touched(fx, true, m + 512, 16));
}

static void test_mxcsr(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;

	busy_cpu(&c);
	put32(fx->ram + XBUF, 0x1f80 | 0x40 | 0x8000); /* DAZ and FZ: in MXCSR_MASK 0xffff */
	FX_STEP(fx, &c, &res, LDMXCSR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(get32(c.xsave + 24), 0x9fc0);
	CHECK(c.xsave[FX_HDR] & 2);
	memset(fx->ram + XBUF + 64, 0xcc, 8);
	c.gpr[EMU_RSI] = XBUF + 64;
	FX_STEP(fx, &c, &res, STMXCSR);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(get32(fx->ram + XBUF + 64), 0x9fc0);
	CHECK_EQ(fx->ram[XBUF + 68], 0xcc); /* exactly four bytes */
	/* Reserved bits: #GP(0), MXCSR unchanged. */
	busy_cpu(&c);
	put32(fx->ram + XBUF, 0x11f80);
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, LDMXCSR);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* With the default mask (0xffbf) DAZ is reserved. */
	busy_cpu(&c);
	put32(c.xsave + 28, 0);
	put32(fx->ram + XBUF, 0x1fc0);
	FX_STEP(fx, &c, &res, LDMXCSR);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	/* CR4.OSFXSR clear or CR0.EM: #UD; CR0.TS: #NM. */
	busy_cpu(&c);
	c.cr4 &= ~FX_CR4_OSFXSR;
	FX_STEP(fx, &c, &res, STMXCSR);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	busy_cpu(&c);
	c.cr0 |= FX_CR0_EM;
	FX_STEP(fx, &c, &res, LDMXCSR);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	busy_cpu(&c);
	c.cr0 |= FX_CR0_TS;
	FX_STEP(fx, &c, &res, LDMXCSR);
	FX_CHECK_FAULT(&res, FX_NM, -1);
}

static void test_xcr(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;

	/* xgetbv 0: XCR0 in EDX:EAX, upper halves cleared; ECX's upper half ignored. */
	fx_init_cpu(&c);
	c.xcr0 = 0xe7;
	c.gpr[EMU_RCX] = 0xffffffff00000000ull;
	c.gpr[EMU_RAX] = c.gpr[EMU_RDX] = ~0ull;
	FX_STEP(fx, &c, &res, XGETBV);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RAX], 0xe7);
	CHECK_EQ(c.gpr[EMU_RDX], 0);
	/* xgetbv 1: XCR0 & XINUSE, with x87 and SSE always counted. */
	c.gpr[EMU_RCX] = 1;
	c.xsave[FX_HDR] = 0x24;
	FX_STEP(fx, &c, &res, XGETBV);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RAX], 0x27);
	/* ... only with CPUID.(0xD,1):EAX[2]. */
	fx->feat.xgetbv1 = false;
	FX_STEP(fx, &c, &res, XGETBV);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	fx->feat.xgetbv1 = true;
	c.gpr[EMU_RCX] = 2;
	FX_STEP(fx, &c, &res, XGETBV);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	/* At CPL3 xgetbv works. */
	fx_init_cpu(&c);
	fx_set_cpl(&c, 3);
	FX_STEP(fx, &c, &res, XGETBV);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RAX], 7);
	/* CR4.OSXSAVE clear: #UD for both. */
	fx_init_cpu(&c);
	c.cr4 &= ~FX_CR4_OSXSAVE;
	FX_STEP(fx, &c, &res, XGETBV);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	c.gpr[EMU_RAX] = 3;
	FX_STEP(fx, &c, &res, XSETBV);
	FX_CHECK_FAULT(&res, FX_UD, -1);

	/* xsetbv: every #GP(0) rule (SDM Vol. 1 13.3, Vol. 2 XSETBV). */
	/* clang-format off */
	struct {
		const char *name;
		uint64_t value;
		uint32_t ecx;
		unsigned int cpl;
		uint64_t mask;
		bool ok;
	} cases[] = {
		{"x87|SSE", 0x3, 0, 0, 0xe7, true},
		{"x87|SSE|AVX", 0x7, 0, 0, 0xe7, true},
		{"AVX-512", 0xe7, 0, 0, 0xe7, true},
		{"x87 only", 0x1, 0, 0, 0xe7, true},
		{"CPL3", 0x7, 0, 3, 0xe7, false},
		{"ECX=1", 0x7, 1, 0, 0xe7, false},
		{"x87 clear", 0x6, 0, 0, 0xe7, false},
		{"zero", 0x0, 0, 0, 0xe7, false},
		{"AVX without SSE", 0x5, 0, 0, 0xe7, false},
		{"unsupported bit 3", 0xf, 0, 0, 0xe7, false},
		{"bit 32 (EDX)", 0x100000003ull, 0, 0, 0xe7, false},
		{"AVX-512 partial", 0x27, 0, 0, 0xe7, false},
		{"AVX-512 opmask+ZMM_Hi256 only", 0x67, 0, 0, 0xe7, false},
		{"AVX-512 without AVX", 0xe3, 0, 0, 0xe7, false},
		{"MPX BNDREGS without BNDCSR", 0xb, 0, 0, 0x1f, false},
		{"MPX BNDCSR without BNDREGS", 0x13, 0, 0, 0x1f, false},
		{"MPX both", 0x1b, 0, 0, 0x1f, true},
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = t_failures;

		fx_init_cpu(&c);
		fx_set_cpl(&c, cases[i].cpl);
		fx->feat.xcr0_mask = cases[i].mask;
		c.gpr[EMU_RAX] = (uint32_t)cases[i].value | 0xdead000000000000ull;
		c.gpr[EMU_RDX] = cases[i].value >> 32;
		c.gpr[EMU_RCX] = cases[i].ecx;
		fx_snapshot(fx, &c, &save);
		FX_STEP(fx, &c, &res, XSETBV);
		if (cases[i].ok) {
			CHECK_EQ(res.status, EMU_DONE);
			CHECK_EQ(c.xcr0, cases[i].value);
			CHECK(c.dirty & EMU_DIRTY_XCR0);
		} else {
			FX_CHECK_FAULT(&res, FX_GP, 0);
			FX_CHECK_UNCHANGED(fx, &c, &save);
		}
		if (t_failures != before)
			fprintf(stderr, "  xsetbv case \"%s\"\n", cases[i].name);
	}
	fx->feat.xcr0_mask = 0xe7;
}

int main(void)
{
	struct fx fx;

	if (!fx_init(&fx)) {
		fprintf(stderr, "fixture setup failed\n");
		return T_EXIT_FAIL;
	}
	test_xsave_standard(&fx);
	test_xrstor(&fx);
	test_xsavec(&fx);
	test_fxsave(&fx);
	test_save_writes_only_state(&fx);
	test_mxcsr(&fx);
	test_xcr(&fx);
	fx_fini(&fx);
	return t_done();
}
