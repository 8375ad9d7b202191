/* test_emu_system.c: system instructions in the emulator: lar, lsl, verr and verw against a
 * GDT in fake memory (code, data, read-only, execute-only, conforming, TSS, LDT, call and
 * interrupt gates; null selectors, selectors past the limit, DPL against CPL and RPL, operand
 * sizes), clac/stac (#UD at CPL3 or without SMAP), rdtsc/rdtscp/rdpid (CR4.TSD, TSC_AUX,
 * CPUID), monitor/mwait and invpcid. */
#include "emu_native.h"

/* --- system instructions --- */

static void put_gdt(struct fx *fx)
{
	uint64_t tss = FX_TSS;

	memset(fx->ram + FX_GDT, 0, 0x100);
	fx_put64(fx, FX_GDT + 0x08, 0x00af9a000000ffffull); /* code64 DPL0 */
	fx_put64(fx, FX_GDT + 0x10, 0x00cf92000000ffffull); /* data DPL0 */
	fx_put64(fx, FX_GDT + 0x18, 0x00cf98000000ffffull); /* execute-only code DPL0 */
	fx_put64(fx, FX_GDT + 0x20, 0x00cff2000000ffffull); /* data DPL3 */
	fx_put64(fx, FX_GDT + 0x28, 0x00affa000000ffffull); /* code64 DPL3 */
	fx_put64(fx, FX_GDT + 0x30,
		 0x67 | ((tss & 0xffffff) << 16) | (0x89ull << 40) | (((tss >> 24) & 0xff) << 56));
	fx_put64(fx, FX_GDT + 0x38, tss >> 32);
	fx_put64(fx, FX_GDT + 0x40, 0x0040900000001234ull); /* read-only data, byte limit */
	fx_put64(fx, FX_GDT + 0x48, 0x00af9e000000ffffull); /* conforming code DPL0 */
	fx_put64(fx, FX_GDT + 0x50, 0x00008c0000080000ull); /* 64-bit call gate */
	fx_put64(fx, FX_GDT + 0x58, 0);
	fx_put64(fx, FX_GDT + 0x60, 0x00008e0000080000ull); /* interrupt gate: not for LAR */
	fx_put64(fx, FX_GDT + 0x68, 0);
	fx_put64(fx, FX_GDT + 0x70, 0x0000820000000fffull); /* LDT */
	fx_put64(fx, FX_GDT + 0x78, 0);
}

struct desc_case {
	const char *name;
	uint16_t sel;
	unsigned int cpl;
	uint8_t insn[4]; /* 3 bytes + length in [3] */
	bool ok;
	uint64_t value; /* LAR/LSL result when ok */
};

static void test_descriptors(struct fx *fx)
{
	/* clang-format off */
#define LAR {0x0f, 0x02, 0xc1, 3}
#define LSL {0x0f, 0x03, 0xc1, 3}
#define VERR {0x0f, 0x00, 0xe1, 3}
#define VERW {0x0f, 0x00, 0xe9, 3}
	static const struct desc_case cases[] = {
		{"lar code64", 0x08, 0, LAR, true, 0x00a09a00},
		{"lsl code64 (G=1)", 0x08, 0, LSL, true, 0xffffffff},
		{"lar data", 0x10, 0, LAR, true, 0x00c09200},
		{"lsl byte-granular", 0x40, 0, LSL, true, 0x1234},
		{"lar TSS", 0x30, 0, LAR, true, 0x00008900},
		{"lsl TSS", 0x30, 0, LSL, true, 0x67},
		{"lar call gate", 0x50, 0, LAR, true, 0x00008c00},
		{"lsl call gate", 0x50, 0, LSL, false, 0},
		{"lar interrupt gate", 0x60, 0, LAR, false, 0},
		{"lar LDT", 0x70, 0, LAR, true, 0x00008200},
		{"lsl LDT", 0x70, 0, LSL, true, 0xfff},
		{"lar null", 0x00, 0, LAR, false, 0},
		{"lar null RPL3", 0x03, 0, LAR, false, 0},
		{"lar beyond limit", 0x80, 0, LAR, false, 0},
		{"lar LDT selector without LDT", 0x0c, 0, LAR, false, 0},
		{"lar RPL3 on DPL0", 0x0b, 0, LAR, false, 0},
		{"lar CPL3 on DPL0", 0x08, 3, LAR, false, 0},
		{"lar CPL3 on DPL3", 0x23, 3, LAR, true, 0x00c0f200},
		{"lar CPL3 on conforming DPL0", 0x48, 3, LAR, true, 0x00a09e00},
		{"lsl CPL3 on DPL3 code", 0x2b, 3, LSL, true, 0xffffffff},
		{"verr readable code", 0x08, 0, VERR, true, 0},
		{"verr execute-only code", 0x18, 0, VERR, false, 0},
		{"verr data", 0x10, 0, VERR, true, 0},
		{"verr system", 0x30, 0, VERR, false, 0},
		{"verr CPL3 on DPL0 data", 0x10, 3, VERR, false, 0},
		{"verr CPL3 on conforming", 0x48, 3, VERR, true, 0},
		{"verr null", 0x00, 0, VERR, false, 0},
		{"verw data", 0x10, 0, VERW, true, 0},
		{"verw read-only data", 0x40, 0, VERW, false, 0},
		{"verw code", 0x08, 0, VERW, false, 0},
		{"verw CPL3 on DPL3 data", 0x23, 3, VERW, true, 0},
	};
	/* clang-format on */
	struct emu_cpu c, save;
	struct emu_result res;

	put_gdt(fx);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct desc_case *d = &cases[i];
		int before = t_failures;
		bool writes = d->insn[1] != 0x00;

		fx_init_cpu(&c);
		fx_set_cpl(&c, d->cpl);
		c.gpr[EMU_RCX] = 0xffffffffffff0000ull | d->sel; /* only the low 16 bits count */
		c.gpr[EMU_RAX] = 0xdeadbeefcafebabeull;
		c.rflags = 0x2 | (d->ok ? 0 : FX_ZF);
		fx_step(fx, &c, d->insn, d->insn[3], &res);
		CHECK_EQ(res.status, EMU_DONE);
		CHECK_EQ(c.rflags & FX_ZF, d->ok ? FX_ZF : 0);
		if (writes)
			CHECK_EQ(c.gpr[EMU_RAX], d->ok ? d->value : 0xdeadbeefcafebabeull);
		if (t_failures != before)
			fprintf(stderr, "  case \"%s\"\n", d->name);
	}
	/* Operand sizes: lar ax, cx writes 16 bits (0xff00 of the attributes); lar rax, rcx is
	 * zero-extended. */
	fx_init_cpu(&c);
	c.gpr[EMU_RCX] = 0x08;
	c.gpr[EMU_RAX] = 0xdeadbeefcafebabeull;
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x02, 0xc1);
	CHECK_EQ(c.gpr[EMU_RAX], 0xdeadbeefcafe9a00ull);
	FX_STEP(fx, &c, &res, 0x48, 0x0f, 0x02, 0xc1);
	CHECK_EQ(c.gpr[EMU_RAX], 0x00a09a00);
	/* The selector from memory. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = GBUF;
	fx->ram[GBUF] = 0x40;
	fx->ram[GBUF + 1] = 0;
	FX_STEP(fx, &c, &res, 0x0f, 0x03, 0x06);
	CHECK_EQ(c.gpr[EMU_RAX], 0x1234);
	/* The GDT read at CPL3 is a supervisor access: the GDT page is supervisor-only. */
	fx_init_cpu(&c);
	fx_set_cpl(&c, 3);
	c.gpr[EMU_RCX] = 0x2b;
	FX_STEP(fx, &c, &res, 0x0f, 0x02, 0xc1);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(c.rflags & FX_ZF);
	/* A GDT on a page that is not present: #PF. */
	fx_init_cpu(&c);
	c.gdt_base = FX_HOLE;
	c.gpr[EMU_RCX] = 0x08;
	FX_STEP(fx, &c, &res, 0x0f, 0x02, 0xc1);
	FX_CHECK_FAULT(&res, FX_PFV, 0);
	CHECK_EQ(res.fault.cr2, FX_HOLE + 8);
	/* Real mode, where the CPU raises #UD: Zydis does not decode LAR there, and the emulator
	 * reports that rather than guess; either way nothing changes. */
	fx_init_cpu(&c);
	c.cr0 = 0;
	c.efer = 0;
	c.seg[EMU_CS] =
		(struct emu_seg){.sel = 0, .limit = 0xffff, .type = 0xb, .s = 1, .present = 1};
	c.rip = 0x1000;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0x0f, 0x02, 0xc1);
	CHECK_EQ(res.status, EMU_UNSUPPORTED);
	FX_CHECK_UNCHANGED(fx, &c, &save);
#undef LAR
#undef LSL
#undef VERR
#undef VERW
}

static void test_system(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;

	/* clac/stac at CPL0 with SMAP. */
	fx_init_cpu(&c);
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xcb);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(c.rflags & FX_AC);
	CHECK_EQ(c.rip, FX_DATA + 0x80003);
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xca);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(!(c.rflags & FX_AC));
	/* #UD at CPL3 and without CPUID.SMAP (CR4.SMAP itself does not matter). */
	fx_init_cpu(&c);
	fx_set_cpl(&c, 3);
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xcb);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xca);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx_init_cpu(&c);
	fx->feat.smap = false;
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xcb);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx->feat.smap = true;

	/* rdtsc: EDX:EAX, upper halves cleared. */
	fx_init_cpu(&c);
	c.gpr[EMU_RAX] = c.gpr[EMU_RDX] = c.gpr[EMU_RCX] = ~0ull;
	FX_STEP(fx, &c, &res, 0x0f, 0x31);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RAX], 0x89abcdef);
	CHECK_EQ(c.gpr[EMU_RDX], 0x01234567);
	CHECK_EQ(c.gpr[EMU_RCX], ~0ull);
	/* rdtscp: and ECX = TSC_AUX. */
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xf9);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RCX], 0xfeed0007);
	CHECK_EQ(c.gpr[EMU_RAX], 0x89abcdef);
	/* CR4.TSD: #GP(0) at CPL3, fine at CPL0. */
	fx_init_cpu(&c);
	c.cr4 |= FX_CR4_TSD;
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xf9);
	CHECK_EQ(res.status, EMU_DONE);
	fx_set_cpl(&c, 3);
	FX_STEP(fx, &c, &res, 0x0f, 0x31);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xf9);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	/* rdtscp without CPUID.RDTSCP: #UD. */
	fx_init_cpu(&c);
	fx->feat.rdtscp = false;
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xf9);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx->feat.rdtscp = true;
	/* rdpid rax: TSC_AUX zero-extended to 64 bits; at CPL3 too. */
	fx_init_cpu(&c);
	fx_set_cpl(&c, 3);
	c.gpr[EMU_RAX] = ~0ull;
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0xc7, 0xf8);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RAX], 0xfeed0007);
	fx->feat.rdpid = false;
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0xc7, 0xf8);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx->feat.rdpid = true;

	/* monitor/mwait: CPL0 only, and only with CPUID.MONITOR. */
	fx_init_cpu(&c);
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xc9);
	CHECK_EQ(res.status, EMU_DONE);
	fx_set_cpl(&c, 3);
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xc8);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx_init_cpu(&c);
	fx->feat.monitor = false;
	FX_STEP(fx, &c, &res, 0x0f, 0x01, 0xc9);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx->feat.monitor = true;

	/* invpcid rax, [rsi]: types 0-3, descriptor checks, CPL0, a TLB flush. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = GBUF;
	fx_put64(fx, GBUF, 0);
	fx_put64(fx, GBUF + 8, 0x1000);
	c.gpr[EMU_RAX] = 2;
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x38, 0x82, 0x06);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(c.dirty & EMU_DIRTY_TLB);
	c.gpr[EMU_RAX] = 4;
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x38, 0x82, 0x06);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	c.gpr[EMU_RAX] = 0;
	fx_put64(fx, GBUF + 8, 0x0000800000000000ull);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x38, 0x82, 0x06);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	c.gpr[EMU_RAX] = 1;
	fx_put64(fx, GBUF, 0x1000); /* PCID bits 63:12 reserved */
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x38, 0x82, 0x06);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	fx_set_cpl(&c, 3);
	c.gpr[EMU_RAX] = 2;
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x38, 0x82, 0x06);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	fx_init_cpu(&c);
	fx->feat.invpcid = false;
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x38, 0x82, 0x06);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	fx->feat.invpcid = true;
}

int main(void)
{
	struct fx fx;

	if (!fx_init(&fx)) {
		fprintf(stderr, "fixture setup failed\n");
		return T_EXIT_FAIL;
	}
	test_descriptors(&fx);
	test_system(&fx);
	fx_fini(&fx);
	return t_done();
}
