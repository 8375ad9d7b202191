/* test_emu_interrupt.c: int3 and int n delivered through an IDT built in fake guest memory
 * (SDM Vol. 3A 6.12, 6.14): the 64-bit frame, RSP aligned to 16, IF cleared by interrupt gates
 * and kept by trap gates, TF/NT/RF cleared, the IST stack, the CPL3 -> CPL0 stack switch from
 * the TSS with a null SS, the CPL3 -> CPL3 frame written with user accesses, and the faults:
 * #GP(vector*8+2) for DPL < CPL and for a bad gate type or a vector past the IDT limit, #NP
 * for a gate that is not present, #GP/#NP for the target code segment, #TS for a TSS too
 * short, #PF and #SS on the new stack, each with nothing changed; delivery from compatibility
 * mode, and legacy protected mode refused. */
#include "emu_fixture.h"

#define HANDLER	  0x0000000000123456ull
#define HANDLER_H 0xffffffff81000000ull /* exercises the gate's upper offset words */
#define RSP0	  (FX_STACK + 0x20000)
#define IST2	  (FX_STACK + 0x40000)
#define USER_RSP  (FX_USER + 0x8008)

#define GATE_INT  0xe
#define GATE_TRAP 0xf

static void set_gate(struct fx *fx, unsigned int vec, unsigned int type, unsigned int dpl,
		     bool present, unsigned int ist, uint16_t sel, uint64_t target)
{
	uint64_t lo = (target & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)ist << 32) |
		      ((uint64_t)type << 40) | ((uint64_t)dpl << 45) | ((uint64_t)present << 47) |
		      (((target >> 16) & 0xffff) << 48);

	fx_put64(fx, FX_IDT + vec * 16, lo);
	fx_put64(fx, FX_IDT + vec * 16 + 8, target >> 32);
}

static void setup(struct fx *fx)
{
	memset(fx->ram + FX_GDT, 0, 0x3000);
	fx_put64(fx, FX_GDT + 0x08, 0x00af9a000000ffffull); /* code64 DPL0 */
	fx_put64(fx, FX_GDT + 0x10, 0x00cf92000000ffffull); /* data DPL0 */
	fx_put64(fx, FX_GDT + 0x18, 0x00cf9a000000ffffull); /* code32 DPL0 */
	fx_put64(fx, FX_GDT + 0x20, 0x00cff2000000ffffull); /* data DPL3 */
	fx_put64(fx, FX_GDT + 0x28, 0x00affa000000ffffull); /* code64 DPL3 */
	fx_put64(fx, FX_GDT + 0x40, 0x00af1a000000ffffull); /* code64 DPL0, not present */
	fx_put64(fx, FX_GDT + 0x48, 0x00cf92000000ffffull); /* data, not code */
	/* 64-bit TSS: RSP0 at 4, IST2 at 0x2c. */
	fx_put64(fx, FX_TSS + 4, RSP0);
	fx_put64(fx, FX_TSS + 0x2c, IST2);
	set_gate(fx, 3, GATE_INT, 3, true, 0, 0x08, HANDLER);
	set_gate(fx, 0x80, GATE_TRAP, 3, true, 0, 0x08, HANDLER_H);
	set_gate(fx, 0x81, GATE_INT, 0, true, 0, 0x08, HANDLER);
	set_gate(fx, 0x82, GATE_INT, 3, false, 0, 0x08, HANDLER);
	set_gate(fx, 0x83, GATE_INT, 3, true, 2, 0x08, HANDLER);
	set_gate(fx, 0x84, 0xc, 3, true, 0, 0x08, HANDLER);	 /* call gate type in the IDT */
	set_gate(fx, 0x85, GATE_INT, 3, true, 0, 0x40, HANDLER); /* code segment not present */
	set_gate(fx, 0x86, GATE_INT, 3, true, 0, 0x18, HANDLER); /* 32-bit code segment */
	set_gate(fx, 0x87, GATE_INT, 3, true, 0, 0x28, HANDLER); /* DPL3 target */
	set_gate(fx, 0x88, GATE_INT, 3, true, 0, 0x48, HANDLER); /* data segment */
	set_gate(fx, 0x89, GATE_INT, 3, true, 0, 0x00, HANDLER); /* null selector */
	set_gate(fx, 0x8a, GATE_INT, 3, true, 0, 0x08, 0x0000800000000000ull); /* non-canonical */
}

static uint64_t stack_at(struct fx *fx, uint64_t rsp, unsigned int slot)
{
	return fx_get64(fx, rsp + 8 * slot);
}

static void test_frames(struct fx *fx)
{
	struct emu_cpu c, orig;
	struct emu_result res;
	uint64_t rsp;

	/* int3 at CPL0 through an interrupt gate: no stack switch, RSP aligned to 16 first. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSP] = FX_STACK + 0x80008;
	c.rflags = 0x2 | FX_IF | FX_TF | FX_AC | (1ull << 14) | (1ull << 16) | FX_CF;
	orig = c;
	FX_STEP(fx, &c, &res, 0xcc);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_STR(res.mnemonic, "int3");
	rsp = FX_STACK + 0x80000 - 40;
	CHECK_EQ(c.gpr[EMU_RSP], rsp);
	CHECK_EQ(stack_at(fx, rsp, 0), orig.rip + 1); /* return address: the next one */
	CHECK_EQ(stack_at(fx, rsp, 1), 0x08);
	CHECK_EQ(stack_at(fx, rsp, 2), orig.rflags); /* as it was */
	CHECK_EQ(stack_at(fx, rsp, 3), FX_STACK + 0x80008);
	CHECK_EQ(stack_at(fx, rsp, 4), 0x10);
	CHECK_EQ(c.rip, HANDLER);
	/* IF, TF, NT and RF cleared; AC and the arithmetic flags kept. */
	CHECK_EQ(c.rflags, 0x2 | FX_AC | FX_CF);
	CHECK_EQ(c.seg[EMU_CS].sel, 0x08);
	CHECK_EQ(c.seg[EMU_CS].dpl, 0);
	CHECK_EQ(c.seg[EMU_SS].sel, 0x10); /* no privilege change: SS stays */
	CHECK(c.dirty & EMU_DIRTY_SREGS);
	/* int $3 (CD 03) the same, with two bytes to skip. */
	fx_init_cpu(&c);
	orig = c;
	FX_STEP(fx, &c, &res, 0xcd, 0x03);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(stack_at(fx, c.gpr[EMU_RSP], 0), orig.rip + 2);

	/* int $0x80 through a trap gate: IF kept; the 64-bit target from all three words. */
	fx_init_cpu(&c);
	c.rflags = 0x2 | FX_IF | FX_TF;
	FX_STEP(fx, &c, &res, 0xcd, 0x80);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.rip, HANDLER_H);
	CHECK_EQ(c.rflags, 0x2 | FX_IF);

	/* From CPL3: the stack from TSS.RSP0, the user SS:RSP and CS in the frame, SS null with
	 * RPL 0, CS DPL0. */
	fx_init_cpu(&c);
	fx_set_cpl(&c, 3);
	c.gpr[EMU_RSP] = USER_RSP;
	c.rip = FX_USER + 0x100;
	c.rflags = 0x2 | FX_IF;
	orig = c;
	FX_STEP(fx, &c, &res, 0xcd, 0x80);
	CHECK_EQ(res.status, EMU_DONE);
	rsp = RSP0 - 40;
	CHECK_EQ(c.gpr[EMU_RSP], rsp);
	CHECK_EQ(stack_at(fx, rsp, 0), FX_USER + 0x102);
	CHECK_EQ(stack_at(fx, rsp, 1), 0x2b);
	CHECK_EQ(stack_at(fx, rsp, 2), 0x2 | FX_IF);
	CHECK_EQ(stack_at(fx, rsp, 3), USER_RSP);
	CHECK_EQ(stack_at(fx, rsp, 4), 0x23);
	CHECK_EQ(c.seg[EMU_CS].sel, 0x08);
	CHECK_EQ(c.seg[EMU_CS].dpl, 0);
	CHECK(c.seg[EMU_CS].l);
	CHECK_EQ(c.seg[EMU_SS].sel, 0);
	CHECK_EQ(c.seg[EMU_SS].dpl, 0);
	/* The user stack is not written. */
	CHECK_EQ(fx_get64(fx, USER_RSP - 8), 0);
	/* int3 from CPL3 through the DPL3 gate as well. */
	fx_init_cpu(&c);
	fx_set_cpl(&c, 3);
	c.gpr[EMU_RSP] = USER_RSP;
	FX_STEP(fx, &c, &res, 0xcc);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RSP], RSP0 - 40);

	/* IST 2: the IST stack even without a privilege change. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSP] = FX_STACK + 0x80000;
	FX_STEP(fx, &c, &res, 0xcd, 0x83);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RSP], IST2 - 40);
	CHECK_EQ(stack_at(fx, IST2 - 40, 3), FX_STACK + 0x80000);
	/* ... and from CPL3 the IST wins over RSP0. */
	fx_init_cpu(&c);
	fx_set_cpl(&c, 3);
	c.gpr[EMU_RSP] = USER_RSP;
	FX_STEP(fx, &c, &res, 0xcd, 0x83);
	CHECK_EQ(c.gpr[EMU_RSP], IST2 - 40);

	/* Fetched through the page tables (no bytes given). */
	fx_init_cpu(&c);
	fx->ram[c.rip] = 0xcc;
	orig = c;
	fx_step(fx, &c, NULL, 0, &res);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(stack_at(fx, c.gpr[EMU_RSP], 0), orig.rip + 1);
}

struct fault_case {
	const char *name;
	uint8_t vec;
	unsigned int cpl;
	uint8_t want;
	int err;
};

static void test_faults(struct fx *fx)
{
	/* clang-format off */
	static const struct fault_case cases[] = {
		{"DPL0 gate from CPL3", 0x81, 3, FX_GP, 0x81 * 8 + 2},
		{"DPL0 gate from CPL0 is fine", 0x81, 0, 0, 0},
		{"gate not present", 0x82, 0, FX_NP, 0x82 * 8 + 2},
		{"gate not present, from CPL3", 0x82, 3, FX_NP, 0x82 * 8 + 2},
		{"call gate type in the IDT", 0x84, 0, FX_GP, 0x84 * 8 + 2},
		{"target code segment not present", 0x85, 0, FX_NP, 0x40},
		{"target is 32-bit code", 0x86, 0, FX_GP, 0x18},
		{"target code DPL3 > CPL0", 0x87, 0, FX_GP, 0x28},
		{"target is a data segment", 0x88, 0, FX_GP, 0x48},
		{"null target selector", 0x89, 0, FX_GP, 0},
		{"non-canonical target", 0x8a, 0, FX_GP, 0},
		{"past the IDT limit", 0xf0, 0, FX_GP, 0xf0 * 8 + 2},
	};
	/* clang-format on */
	struct emu_cpu c, save;
	struct emu_result res;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct fault_case *f = &cases[i];
		uint8_t insn[2] = {0xcd, f->vec};
		int before = t_failures;

		fx_init_cpu(&c);
		fx_set_cpl(&c, f->cpl);
		c.idt_limit = 0x90 * 16 - 1;
		if (f->cpl)
			c.gpr[EMU_RSP] = USER_RSP;
		fx_snapshot(fx, &c, &save);
		fx_step(fx, &c, insn, 2, &res);
		if (!f->want) {
			CHECK_EQ(res.status, EMU_DONE);
		} else {
			FX_CHECK_FAULT(&res, f->want, f->err);
			FX_CHECK_UNCHANGED(fx, &c, &save);
		}
		if (t_failures != before)
			fprintf(stderr, "  case \"%s\"\n", f->name);
	}
	/* int3 from CPL3 through a DPL0 gate: #GP(3*8+2). */
	set_gate(fx, 3, GATE_INT, 0, true, 0, 0x08, HANDLER);
	fx_init_cpu(&c);
	fx_set_cpl(&c, 3);
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xcc);
	FX_CHECK_FAULT(&res, FX_GP, 3 * 8 + 2);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	set_gate(fx, 3, GATE_INT, 3, true, 0, 0x08, HANDLER);

	/* The new stack is not present: #PF (a write, supervisor) at the first slot; nothing
	 * written, RSP and CS unchanged. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSP] = FX_HOLE + 0x10;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xcc);
	FX_CHECK_FAULT(&res, FX_PFV, 2);
	CHECK_EQ(res.fault.cr2, FX_HOLE + 8);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* The frame runs off the bottom of a present page into one that is not: #PF at the
	 * lower page, and the three slots already "pushed" on the upper page not written. */
	fx_init_cpu(&c);
	fx_map(fx, FX_HOLE + 0x1000, FX_HOLE + 0x1000, 0x1000, FX_P | FX_RW);
	c.gpr[EMU_RSP] = FX_HOLE + 0x1018;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xcc);
	FX_CHECK_FAULT(&res, FX_PFV, 2);
	CHECK_EQ(res.fault.cr2, FX_HOLE + 0xff8);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	fx_unmap(fx, FX_HOLE + 0x1000);
	/* From CPL3 the kernel stack is written with supervisor accesses: a supervisor-only
	 * stack is fine (above), a user page under SMAP is not (implicit access). */
	fx_init_cpu(&c);
	fx_set_cpl(&c, 3);
	c.cr4 |= FX_CR4_SMAP;
	c.rflags |= FX_AC;
	fx_put64(fx, FX_TSS + 4, FX_USER + 0x10000);
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xcd, 0x80);
	FX_CHECK_FAULT(&res, FX_PFV, 3);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	fx_put64(fx, FX_TSS + 4, RSP0);
	/* From CPL3 through a gate to DPL3 code (no privilege change) the frame goes on the
	 * user stack with user-mode accesses, as the interrupted code's own pushes would (SDM
	 * Vol. 3A 4.6: only the GDT/IDT/TSS accesses are implicit supervisor ones): a user stack
	 * is written under SMAP with AC clear, a supervisor-only stack faults with #PF(P|W|U),
	 * nothing changed. int3 (both encodings) goes the same way (into is #UD in 64-bit
	 * mode). */
	set_gate(fx, 3, GATE_INT, 3, true, 0, 0x28, HANDLER);
	for (int i = 0; i < 3; i++) {
		static const uint8_t insns[3][2] = {{0xcd, 0x87}, {0xcc}, {0xcd, 0x03}};
		static const unsigned int lens[3] = {2, 1, 2};
		int before = t_failures;

		fx_init_cpu(&c);
		fx_set_cpl(&c, 3);
		c.cr4 |= FX_CR4_SMAP;
		c.rflags = 0x2 | FX_IF;
		c.gpr[EMU_RSP] = USER_RSP;
		fx_step(fx, &c, insns[i], lens[i], &res);
		CHECK_EQ(res.status, EMU_DONE);
		CHECK_EQ(c.gpr[EMU_RSP], (USER_RSP & ~0xfull) - 40);
		CHECK_EQ(c.seg[EMU_CS].sel, 0x2b);
		CHECK_EQ(stack_at(fx, (USER_RSP & ~0xfull) - 40, 3), USER_RSP);

		fx_init_cpu(&c);
		fx_set_cpl(&c, 3);
		c.rflags = 0x2 | FX_IF;
		c.gpr[EMU_RSP] = FX_STACK + 0x80000;
		fx_snapshot(fx, &c, &save);
		fx_step(fx, &c, insns[i], lens[i], &res);
		FX_CHECK_FAULT(&res, FX_PFV, 7);
		CHECK_EQ(res.fault.cr2, FX_STACK + 0x80000 - 8);
		FX_CHECK_UNCHANGED(fx, &c, &save);
		if (t_failures != before)
			fprintf(stderr, "  CPL3 -> CPL3 delivery, instruction %d\n", i);
	}
	set_gate(fx, 3, GATE_INT, 3, true, 0, 0x08, HANDLER);
	/* A non-canonical stack: #SS(0). */
	fx_init_cpu(&c);
	c.gpr[EMU_RSP] = 0x0000800000000010ull;
	FX_STEP(fx, &c, &res, 0xcc);
	FX_CHECK_FAULT(&res, FX_SS, 0);
	/* A TSS too short for the IST slot: #TS(TSS selector). */
	fx_init_cpu(&c);
	c.tr.limit = 0x20;
	FX_STEP(fx, &c, &res, 0xcd, 0x83);
	FX_CHECK_FAULT(&res, FX_TS_VEC, 0x30);
	/* The IDT on a page that is not present: #PF. */
	fx_init_cpu(&c);
	c.idt_base = FX_HOLE;
	FX_STEP(fx, &c, &res, 0xcc);
	FX_CHECK_FAULT(&res, FX_PFV, 0);
	CHECK_EQ(res.fault.cr2, FX_HOLE + 3 * 16);
	/* Compatibility mode (IA-32e, 32-bit code): the 64-bit IDT and frame, as from 64-bit
	 * code (SDM Vol. 3A 6.14). */
	fx_init_cpu(&c);
	c.seg[EMU_CS].l = 0;
	c.seg[EMU_CS].db = 1;
	FX_STEP(fx, &c, &res, 0xcc);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.rip, HANDLER);
	CHECK(c.seg[EMU_CS].l);
	/* Outside IA-32e mode (legacy protected mode): not emulated, said so. */
	fx_init_cpu(&c);
	c.efer &= ~(FX_EFER_LME | FX_EFER_LMA);
	c.seg[EMU_CS].l = 0;
	c.seg[EMU_CS].db = 1;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xcc);
	CHECK_EQ(res.status, EMU_UNSUPPORTED);
	CHECK(strstr(res.why, "IA-32e") != NULL);
	FX_CHECK_UNCHANGED(fx, &c, &save);
}

int main(void)
{
	struct fx fx;

	if (!fx_init(&fx)) {
		fprintf(stderr, "fixture setup failed\n");
		return T_EXIT_FAIL;
	}
	setup(&fx);
	test_frames(&fx);
	test_faults(&fx);
	fx_fini(&fx);
	return t_done();
}
