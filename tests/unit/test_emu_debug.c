/* test_emu_debug.c: hardware breakpoints in the instruction core (SDM Vol. 3A 17.2, 17.3.1):
 * which DR0-DR3 ranges an access meets (R/W, LEN, the low bits LEN ignores, the L and G
 * enables), the hits emu_step() reports to the KVM fallback (uops and class handlers, both
 * halves of a read-modify-write), and emu_vcpu_step() as the engine runs it: instruction
 * breakpoints as faults with RF, data breakpoints as traps after the instruction, armed by
 * MOV DR7 with the software TLB already holding the page, one string element at a time. */
#include "emu_fixture.h"
#include "emu/vcpu.h"

#define DR7_L(i)	(1ull << (2 * (i)))
#define DR7_G(i)	(2ull << (2 * (i)))
#define DR7_RW(i, rw)	((uint64_t)(rw) << (16 + 4 * (i)))
#define DR7_LEN(i, len) ((uint64_t)(len) << (18 + 4 * (i)))
#define RW_EXEC		0
#define RW_WRITE	1
#define RW_IO		2
#define RW_ANY		3
#define LEN1		0
#define LEN2		1
#define LEN8		2
#define LEN4		3
#define RF		(1ull << 16)
#define DB		1

#define VAR (FX_DATA + 0x4000)

static void arm(struct emu_cpu *c, unsigned int i, uint64_t addr, uint64_t dr7_bits)
{
	c->dr[i] = addr;
	c->dr[7] |= dr7_bits;
}

static void test_ranges(void)
{
	struct emu_cpu c;

	fx_init_cpu(&c);
	/* Disabled: nothing, whatever DR0 says. */
	c.dr[0] = VAR;
	c.dr[7] = DR7_RW(0, RW_ANY) | DR7_LEN(0, LEN4);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 4, true), 0);
	CHECK(!emu_dbg_data_armed(&c));
	/* L0 and G0 enable alike. */
	c.dr[7] |= DR7_L(0);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 1, false), 1);
	CHECK(emu_dbg_data_armed(&c));
	c.dr[7] = (c.dr[7] & ~DR7_L(0)) | DR7_G(0);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 1, false), 1);

	/* LEN 4 at VAR: bytes VAR..VAR+3, any byte of the access inside. */
	CHECK_EQ(emu_dbg_data_hits(&c, VAR + 3, 1, false), 1);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR + 4, 1, false), 0);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR - 1, 1, false), 0);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR - 1, 2, false), 1);	/* straddles the start */
	CHECK_EQ(emu_dbg_data_hits(&c, VAR - 8, 8, false), 0);	/* ends right before */
	CHECK_EQ(emu_dbg_data_hits(&c, VAR - 0x100, 0x1000, true), 1); /* covers it */

	/* 17.2.5: the low bits LEN ignores: DR0 = VAR+2 with LEN 4 still watches VAR..VAR+3
	 * (not VAR+2..VAR+5). */
	c.dr[0] = VAR + 2;
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 1, false), 1);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR + 4, 2, false), 0);
	/* LEN 2, 8, 1 alike. */
	c.dr[7] = DR7_L(0) | DR7_RW(0, RW_ANY) | DR7_LEN(0, LEN2);
	c.dr[0] = VAR + 3;
	CHECK_EQ(emu_dbg_data_hits(&c, VAR + 2, 1, false), 1);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR + 4, 1, false), 0);
	c.dr[7] = DR7_L(0) | DR7_RW(0, RW_ANY) | DR7_LEN(0, LEN8);
	c.dr[0] = VAR + 5;
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 1, false), 1);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR + 7, 1, false), 1);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR + 8, 1, false), 0);
	c.dr[7] = DR7_L(0) | DR7_RW(0, RW_ANY) | DR7_LEN(0, LEN1);
	c.dr[0] = VAR + 5;
	CHECK_EQ(emu_dbg_data_hits(&c, VAR + 4, 1, false), 0);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 8, false), 1);

	/* R/W 01 writes only; 00 (execution) and 10 (I/O) never data. */
	c.dr[7] = DR7_L(0) | DR7_RW(0, RW_WRITE) | DR7_LEN(0, LEN8);
	c.dr[0] = VAR;
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 8, false), 0);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 8, true), 1);
	c.dr[7] = DR7_L(0) | DR7_RW(0, RW_EXEC) | DR7_L(1) | DR7_RW(1, RW_IO);
	c.dr[1] = VAR;
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 8, true), 0);
	CHECK(!emu_dbg_data_armed(&c));
	CHECK_EQ(emu_dbg_code_hits(&c, VAR), 1);
	CHECK_EQ(emu_dbg_code_hits(&c, VAR + 1), 0);

	/* Several at once: each reports its own bit. */
	c.dr[7] = DR7_L(0) | DR7_RW(0, RW_ANY) | DR7_LEN(0, LEN4) | DR7_G(3) |
		  DR7_RW(3, RW_WRITE) | DR7_LEN(3, LEN1);
	c.dr[0] = VAR;
	c.dr[3] = VAR + 6;
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 8, true), 0x9);
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 8, false), 0x1);

	/* Outside IA-32e mode linear addresses have 32 bits: so do DRn's. */
	c.efer = 0;
	c.dr[7] = DR7_L(0) | DR7_RW(0, RW_ANY) | DR7_LEN(0, LEN4);
	c.dr[0] = 0x100000000ull | VAR;
	CHECK_EQ(emu_dbg_data_hits(&c, VAR, 4, false), 1);
	c.dr[0] = 0xfffffffe;
	CHECK_EQ(emu_dbg_data_hits(&c, 0xfffffffc, 4, false), 1);	/* aligned: ...fc-ff */
	CHECK_EQ(emu_dbg_data_hits(&c, 0, 1, false), 0);
}

/* emu_step(), the KVM fallback: hits reported, nothing raised. */
static void test_step_hits(struct fx *fx)
{
	struct emu_cpu c;
	struct emu_result res;

	/* Uop path: a load. */
	fx_init_cpu(&c);
	c.gpr[EMU_RBX] = VAR;
	arm(&c, 2, VAR + 4, DR7_L(2) | DR7_RW(2, RW_ANY) | DR7_LEN(2, LEN4));
	FX_STEP(fx, &c, &res, 0x48, 0x8b, 0x0b); /* mov rcx, [rbx] */
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(res.db_hits, 1u << 2);
	CHECK_EQ(c.dr[6], 0);		/* the caller's to set */
	/* The same load misses a breakpoint past it. */
	c.rip = FX_DATA + 0x80000;
	c.dr[2] = VAR + 8;
	FX_STEP(fx, &c, &res, 0x48, 0x8b, 0x0b);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(res.db_hits, 0);

	/* A read-modify-write against a writes-only breakpoint: its read meets nothing, its
	 * write on the same page (which the read's walk would have put in the TLB) does. */
	fx_init_cpu(&c);
	c.gpr[EMU_RBX] = VAR;
	arm(&c, 0, VAR, DR7_L(0) | DR7_RW(0, RW_WRITE) | DR7_LEN(0, LEN8));
	FX_STEP(fx, &c, &res, 0x48, 0x01, 0x03); /* add [rbx], rax */
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(res.db_hits, 1);
	c.rip = FX_DATA + 0x80000;
	FX_STEP(fx, &c, &res, 0xf3, 0x48, 0x0f, 0xb8, 0x03); /* popcnt rax, [rbx]: reads */
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(res.db_hits, 0);

	/* Class handlers: an SSE store, 16 bytes, meets a breakpoint on its last byte. */
	fx_init_cpu(&c);
	c.gpr[EMU_RBX] = VAR;
	arm(&c, 1, VAR + 15, DR7_G(1) | DR7_RW(1, RW_WRITE) | DR7_LEN(1, LEN1));
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x7f, 0x03); /* movdqu [rbx], xmm0 */
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(res.db_hits, 1u << 1);

	/* A faulting instruction completes nothing: no hits to trap on. */
	fx_init_cpu(&c);
	c.gpr[EMU_RBX] = FX_RO;
	arm(&c, 0, FX_RO, DR7_L(0) | DR7_RW(0, RW_ANY) | DR7_LEN(0, LEN8));
	FX_STEP(fx, &c, &res, 0x48, 0x89, 0x03); /* mov [rbx], rax: read-only page */
	FX_CHECK_FAULT(&res, FX_PFV, 0x3);
}

static uint64_t plat_tsc(struct emu_vcpu *v)
{
	return v->cpu.tsc;
}

static struct emu_vcpu vcpu;

static struct emu_vcpu *vcpu_at(struct fx *fx, const uint8_t *code, size_t len)
{
	static const struct emu_platform plat = {.tsc = plat_tsc};
	struct emu_vcpu *v = &vcpu;

	emu_vcpu_init(v, 0, &fx->env, &plat);
	fx_init_cpu(&v->cpu);
	v->cpu.dr[6] = EMU_DR6_FIXED;
	v->cpu.dr[7] = EMU_DR7_FIXED;
	emu_vcpu_mode_changed(v, true);
	memcpy(fx->ram + v->cpu.rip, code, len);
	return v;
}

/* The engine: instruction breakpoints are faults, RF lets the instruction run once. */
static void test_code_breakpoint(struct fx *fx)
{
	static const uint8_t code[] = {0x90, 0x48, 0xff, 0xc0, 0x90}; /* nop; inc rax; nop */
	struct emu_vcpu *v = vcpu_at(fx, code, sizeof(code));
	uint64_t start = v->cpu.rip;

	arm(&v->cpu, 3, start + 1, DR7_L(3) | DR7_RW(3, RW_EXEC) | DR7_LEN(3, LEN1));
	emu_vcpu_debug_changed(v);
	CHECK(v->dbg_armed);
	CHECK(!v->dbg_data);
	CHECK_EQ(emu_vcpu_step(v), EXIT_NEXT);
	CHECK_EQ(emu_vcpu_step(v), EXIT_FAULT);
	CHECK_EQ(v->fault.vector, DB);
	CHECK_EQ(v->cpu.rip, start + 1);
	CHECK_EQ(v->cpu.gpr[EMU_RAX], 0);
	CHECK_EQ(v->cpu.dr[6], EMU_DR6_FIXED | (1u << 3));
	/* The handler returns with RF: the instruction runs, RF is clear after it. */
	v->cpu.rflags |= RF;
	CHECK_EQ(emu_vcpu_step(v), EXIT_NEXT);
	CHECK_EQ(v->cpu.gpr[EMU_RAX], 1);
	CHECK_EQ(v->cpu.rip, start + 4);
	CHECK_EQ(emu_flags(v) & RF, 0);
	/* Back at it without RF: the fault again. */
	v->cpu.rip = start + 1;
	CHECK_EQ(emu_vcpu_step(v), EXIT_FAULT);
	CHECK_EQ(v->fault.vector, DB);
	/* Disarmed (L3 clear): nothing. */
	v->cpu.dr[7] = EMU_DR7_FIXED;
	emu_vcpu_debug_changed(v);
	CHECK(!v->dbg_armed);
	CHECK_EQ(emu_vcpu_step(v), EXIT_NEXT);
	CHECK_EQ(v->cpu.gpr[EMU_RAX], 2);
}

/* The engine: a breakpoint armed by MOV DR0/DR7 on a page the TLB already holds traps after
 * the instruction that meets it, with DR6.Bn; with TF too, one #DB with BS as well. */
static void test_data_trap(struct fx *fx)
{
	static const uint8_t code[] = {
		0x48, 0x89, 0x43, 0x10,	/* mov [rbx + 16], rax: the page into the TLB */
		0x0f, 0x23, 0xc3,	/* mov dr0, rbx */
		0x0f, 0x23, 0xfa,	/* mov dr7, rdx */
		0x48, 0x89, 0x03,	/* mov [rbx], rax */
		0x48, 0x8b, 0x0b,	/* mov rcx, [rbx] */
		0x48, 0x89, 0x43, 0x08,	/* mov [rbx + 8], rax */
		0x48, 0x89, 0x03,	/* mov [rbx], rax */
	};
	struct emu_vcpu *v = vcpu_at(fx, code, sizeof(code));
	uint64_t start = v->cpu.rip;

	v->cpu.gpr[EMU_RBX] = VAR;
	v->cpu.gpr[EMU_RAX] = 0x1122334455667788ull;
	v->cpu.gpr[EMU_RDX] = DR7_L(0) | DR7_RW(0, RW_WRITE) | DR7_LEN(0, LEN8);
	CHECK_EQ(emu_vcpu_step(v), EXIT_NEXT);
	CHECK_EQ(emu_vcpu_step(v), EXIT_MODE);
	CHECK(!v->dbg_armed);
	CHECK_EQ(emu_vcpu_step(v), EXIT_MODE);	/* leaves the block: breakpoints changed */
	CHECK(v->dbg_armed && v->dbg_data);
	CHECK_EQ(emu_vcpu_step(v), EXIT_TRAP);
	CHECK_EQ(v->fault.vector, DB);
	CHECK_EQ(v->cpu.rip, start + 13);		/* after the store */
	CHECK_EQ(fx_get64(fx, VAR), 0x1122334455667788ull);
	CHECK_EQ(v->cpu.dr[6], EMU_DR6_FIXED | 1);
	/* The handler clears DR6; a read does not meet a writes-only breakpoint, nor does a
	 * store next to it. */
	v->cpu.dr[6] = EMU_DR6_FIXED;
	CHECK_EQ(emu_vcpu_step(v), EXIT_NEXT);
	CHECK_EQ(emu_vcpu_step(v), EXIT_NEXT);
	CHECK_EQ(v->cpu.dr[6], EMU_DR6_FIXED);
	/* Single step and breakpoint together: one #DB, both in DR6. */
	v->cpu.rflags |= FX_TF;
	CHECK_EQ(emu_vcpu_step(v), EXIT_TRAP);
	CHECK_EQ(v->cpu.dr[6], EMU_DR6_FIXED | EMU_DR6_BS | 1);
	CHECK_EQ(v->cpu.rip, start + sizeof(code));
}

/* The engine: rep movsb over a watched byte traps after that element, at the instruction with
 * RCX/RSI/RDI as of the next element and RF set (the resumption does not meet an instruction
 * breakpoint on it again). */
static void test_rep_string(struct fx *fx)
{
	static const uint8_t code[] = {0xf3, 0xa4, 0x90}; /* rep movsb; nop */
	struct emu_vcpu *v = vcpu_at(fx, code, sizeof(code));
	uint64_t start = v->cpu.rip;
	int ret, steps = 0;

	memcpy(fx->ram + VAR, "abcdefgh", 8);
	memset(fx->ram + VAR + 0x100, 0, 8);
	v->cpu.gpr[EMU_RSI] = VAR;
	v->cpu.gpr[EMU_RDI] = VAR + 0x100;
	v->cpu.gpr[EMU_RCX] = 8;
	arm(&v->cpu, 1, VAR + 0x102, DR7_L(1) | DR7_RW(1, RW_WRITE) | DR7_LEN(1, LEN1));
	arm(&v->cpu, 0, start, DR7_L(0) | DR7_RW(0, RW_EXEC) | DR7_LEN(0, LEN1));
	emu_vcpu_debug_changed(v);
	v->cpu.rflags |= RF; /* past the instruction breakpoint on the first element */
	while ((ret = emu_vcpu_step(v)) == EXIT_BRANCH && steps < 16)
		steps++;
	CHECK_EQ(ret, EXIT_TRAP);
	CHECK_EQ(steps, 2);				/* elements 0 and 1 went by */
	CHECK_EQ(v->cpu.rip, start);
	CHECK_EQ(v->cpu.gpr[EMU_RCX], 5);
	CHECK_EQ(v->cpu.gpr[EMU_RDI], VAR + 0x103);
	CHECK_EQ(v->cpu.dr[6], EMU_DR6_FIXED | 2);
	CHECK(emu_flags(v) & RF);
	CHECK(memcmp(fx->ram + VAR + 0x100, "abc\0", 4) == 0);
	/* Resumed (RF still set in the frame it returns to): no instruction breakpoint, the
	 * rest copied, RF clear once it completes. */
	v->cpu.dr[6] = EMU_DR6_FIXED;
	while ((ret = emu_vcpu_step(v)) == EXIT_BRANCH && steps < 32)
		steps++;
	CHECK_EQ(ret, EXIT_NEXT);
	CHECK_EQ(v->cpu.rip, start + 2);
	CHECK_EQ(v->cpu.gpr[EMU_RCX], 0);
	CHECK_EQ(v->cpu.dr[6], EMU_DR6_FIXED);
	CHECK_EQ(emu_flags(v) & RF, 0);
	CHECK(memcmp(fx->ram + VAR + 0x100, "abcdefgh", 8) == 0);
}

int main(void)
{
	struct fx fx;

	if (!fx_init(&fx)) {
		fprintf(stderr, "fixture allocation failed\n");
		return 1;
	}
	test_ranges();
	test_step_hits(&fx);
	test_code_breakpoint(&fx);
	test_data_trap(&fx);
	test_rep_string(&fx);
	fx_fini(&fx);
	return t_done();
}
