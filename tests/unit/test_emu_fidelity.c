/* test_emu_fidelity.c: what the sensitive-instruction suite (tests/fidelity) found the engine
 * doing differently from the SDM, one check each: INT1 is delivered without the gate's DPL
 * check (SDM Vol. 2A INT n); a far JMP/CALL to a TSS in IA-32e mode is #GP(selector) (Vol. 2A
 * JMP, CALL; Vol. 3A 7.7); IRET with NT=1 in IA-32e mode is #GP(0) (Vol. 2A IRET); RDPMC
 * without counters is #GP(0) (Vol. 2B RDPMC); IN/OUT at CPL > IOPL consult the TSS I/O
 * permission bitmap (Vol. 1 19.5.2), two bytes of it, within the TSS limit; an exception or
 * INT3 in compatibility mode is delivered through the 64-bit IDT (Vol. 3A 6.14; the engine
 * stopped there, which the kernel's sigreturn selftest found); MOV SS holds back the #DB of a
 * data breakpoint it meets until the next instruction completes (Vol. 3A 6.8.3; the kernel's
 * mov_ss_trap selftest died of the early #DB); the KVM fallback runs far transfers too. */
#include "emu/vcpu.h"
#include "emu_fixture.h"

#define HANDLER	 0x0000000000123456ull
#define RSP0	 (FX_STACK + 0x20000)
#define USER_RSP (FX_USER + 0x8008)
#define IOMAP	 0x68u /* I/O bitmap offset in the TSS; 32 bytes: ports 0-255 */

static void setup(struct fx *fx)
{
	uint64_t tss = FX_TSS;

	memset(fx->ram + FX_GDT, 0, 0x3000);
	fx_put64(fx, FX_GDT + 0x08, 0x00af9a000000ffffull); /* code64 DPL0 */
	fx_put64(fx, FX_GDT + 0x10, 0x00cf92000000ffffull); /* data DPL0 */
	fx_put64(fx, FX_GDT + 0x20, 0x00cff2000000ffffull); /* data DPL3 */
	fx_put64(fx, FX_GDT + 0x28, 0x00affa000000ffffull); /* code64 DPL3 */
	fx_put64(fx, FX_GDT + 0x18, 0x00cffa000000ffffull); /* code32 DPL3 */
	fx_put64(fx, FX_GDT + 0x30,
		 0x67 | ((tss & 0xffffff) << 16) | (0x8bull << 40) | (((tss >> 24) & 0xff) << 56));
	fx_put64(fx, FX_GDT + 0x38, tss >> 32);
	/* 64-bit interrupt gate for #DB (vector 1), DPL0. */
	fx_put64(fx, FX_IDT + 16, (HANDLER & 0xffff) | (0x08ull << 16) | (0x8eull << 40) |
				  ((HANDLER >> 16 & 0xffff) << 48));
	fx_put64(fx, FX_IDT + 24, HANDLER >> 32);
	/* #BP (vector 3), DPL3. */
	fx_put64(fx, FX_IDT + 48, (HANDLER & 0xffff) | (0x08ull << 16) | (0xeeull << 40) |
				  ((HANDLER >> 16 & 0xffff) << 48));
	fx_put64(fx, FX_IDT + 56, HANDLER >> 32);
	fx_put64(fx, FX_TSS + 4, RSP0);
	/* The bitmap: every port of 0-255 denied but 0x80 and 0x86-0x87; the byte after it
	 * all ones. */
	memset(fx->ram + FX_TSS + IOMAP, 0xff, 33);
	fx->ram[FX_TSS + IOMAP + 0x80 / 8] = 0xfe;
	fx->ram[FX_TSS + IOMAP + 0x86 / 8] = 0x3e;
	fx_put64(fx, FX_TSS + 0x60, (uint64_t)IOMAP << 48); /* I/O map base at byte 102 */
}

static uint64_t step_tsc(struct emu_vcpu *v)
{
	return v->cpu.tsc;
}

static struct emu_vcpu v;

/* A fresh vCPU at CPL (cpl) with RFLAGS (rflags); user code runs from FX_USER. */
static void init(struct fx *fx, unsigned int cpl, uint64_t rflags)
{
	static const struct emu_platform plat = {.tsc = step_tsc};

	emu_vcpu_init(&v, 0, &fx->env, &plat);
	fx_init_cpu(&v.cpu);
	if (cpl) {
		fx_set_cpl(&v.cpu, 3);
		v.cpu.gpr[EMU_RSP] = USER_RSP;
		v.cpu.rip = FX_USER + 0x100;
	}
	v.cpu.tr.limit = IOMAP + 32; /* the bitmap and its trailing byte */
	emu_flags_set(&v, rflags);
	emu_vcpu_mode_changed(&v, true);
}

/* Runs one instruction (bytes) at RIP; returns the exit. */
static int step(struct fx *fx, const uint8_t *code, size_t n)
{
	memcpy(fx->ram + v.cpu.rip, code, n);
	return emu_vcpu_step(&v);
}
#define STEP(fx, ...)                                                                              \
	step((fx), (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))

static void check_gp(int ret, uint32_t error, int line)
{
	if (ret != EXIT_FAULT || v.fault.vector != FX_GP || v.fault.error_code != error) {
		fprintf(stderr, "line %d: expected #GP(0x%x), got exit %d vector %u error 0x%x "
				"(%s)\n", line, error, ret, v.fault.vector, v.fault.error_code, v.why);
		CHECK(false);
	} else {
		CHECK(true);
	}
}
#define CHECK_GP(ret, error) check_gp((ret), (error), __LINE__)

static void test_int1(struct fx *fx)
{
	int ret;

	/* ICEBP (F1) from CPL3 through a DPL0 gate: delivered, a trap (next RIP in the frame). */
	init(fx, 3, 0x2);
	ret = STEP(fx, 0xf1);
	CHECK(ret != EXIT_FAULT && ret != EXIT_STOP);
	CHECK_EQ(v.cpu.rip, HANDLER);
	CHECK_EQ(v.cpu.gpr[EMU_RSP], RSP0 - 40);
	CHECK_EQ(fx_get64(fx, RSP0 - 40), FX_USER + 0x101);
	CHECK_EQ(v.cpu.seg[EMU_CS].sel, 0x08);
	/* INT 1 (CD 01) from CPL3 is subject to the DPL check: #GP(1 * 8 + 2). */
	init(fx, 3, 0x2);
	CHECK_GP(STEP(fx, 0xcd, 0x01), 0xa);
}

static void test_compat_delivery(struct fx *fx)
{
	int ret;

	/* INT3 in 32-bit code (CS 0x1b: L=0, D=1) at CPL3: the 64-bit frame on RSP0 with the
	 * 32-bit return address and the compatibility-mode CS. */
	init(fx, 3, 0x2);
	v.cpu.seg[EMU_CS].sel = 0x1b;
	v.cpu.seg[EMU_CS].l = 0;
	v.cpu.seg[EMU_CS].db = 1;
	v.cpu.gpr[EMU_RSP] = USER_RSP & 0xffffffff;
	emu_vcpu_mode_changed(&v, true);
	ret = STEP(fx, 0xcc);
	CHECK(ret != EXIT_FAULT && ret != EXIT_STOP);
	CHECK_EQ(v.cpu.rip, HANDLER);
	CHECK_EQ(v.cpu.gpr[EMU_RSP], RSP0 - 40);
	CHECK_EQ(fx_get64(fx, RSP0 - 40), FX_USER + 0x101);
	CHECK_EQ(fx_get64(fx, RSP0 - 32), 0x1b);
	CHECK_EQ(fx_get64(fx, RSP0 - 16), USER_RSP & 0xffffffff);
	CHECK_EQ(v.cpu.seg[EMU_CS].sel, 0x08);
	CHECK(v.cpu.seg[EMU_CS].l);
}

static void test_mov_ss_shadow(struct fx *fx)
{
	const uint64_t ssvar = FX_DATA + 0x2000;
	int ret;

	/* DR0: read/write breakpoint on the 2-byte selector MOV SS loads. */
	fx_put64(fx, ssvar, 0x10);
	init(fx, 0, 0x2);
	v.cpu.dr[0] = ssvar;
	v.cpu.dr[7] = 1 | (3u << 16) | (1u << 18); /* L0, R/W, LEN 2 */
	v.cpu.dr[6] = 0xffff0ff0;
	emu_vcpu_debug_changed(&v);
	/* mov ss, [ssvar] (8e 14 25 disp32): no #DB at its boundary... */
	ret = STEP(fx, 0x8e, 0x14, 0x25, 0x00, 0x20, 0x10, 0x00);
	CHECK(ret != EXIT_TRAP && ret != EXIT_FAULT && ret != EXIT_STOP);
	CHECK_EQ(v.cpu.dr[6] & 0xf, 0);
	/* ...but after the next one, with DR6.B0. */
	ret = STEP(fx, 0x90);
	CHECK_EQ(ret, EXIT_TRAP);
	CHECK_EQ(v.fault.vector, 1);
	CHECK_EQ(v.cpu.dr[6] & 0xf, 1);
	CHECK_EQ(v.cpu.rip, FX_DATA + 0x80000 + 8);
	/* A plain read of the watched word traps at once. */
	init(fx, 0, 0x2);
	v.cpu.dr[0] = ssvar;
	v.cpu.dr[7] = 1 | (3u << 16) | (1u << 18);
	emu_vcpu_debug_changed(&v);
	CHECK_EQ(STEP(fx, 0x8b, 0x04, 0x25, 0x00, 0x20, 0x10, 0x00), EXIT_TRAP);
}

static void test_task_switch(struct fx *fx)
{
	uint64_t rsp;

	/* jmp far [FX_DATA]: m16:32 with the TSS selector: #GP(0x30), not a task switch. */
	fx_put64(fx, FX_DATA, 0x0000003000001000ull);
	init(fx, 0, 0x2);
	CHECK_GP(STEP(fx, 0xff, 0x2c, 0x25, 0x00, 0x00, 0x10, 0x00), 0x30);
	/* call far the same, nothing pushed. */
	init(fx, 0, 0x2);
	rsp = v.cpu.gpr[EMU_RSP];
	CHECK_GP(STEP(fx, 0xff, 0x1c, 0x25, 0x00, 0x00, 0x10, 0x00), 0x30);
	CHECK_EQ(v.cpu.gpr[EMU_RSP], rsp);

	/* iretq with NT=1: #GP(0), nothing popped; without NT the same frame returns. */
	init(fx, 0, 0x2 | (1ull << 14));
	rsp = v.cpu.gpr[EMU_RSP];
	fx_put64(fx, rsp, FX_DATA + 0x1000);
	fx_put64(fx, rsp + 8, 0x08);
	fx_put64(fx, rsp + 16, 0x2);
	fx_put64(fx, rsp + 24, FX_STACK + 0x90000);
	fx_put64(fx, rsp + 32, 0x10);
	CHECK_GP(STEP(fx, 0x48, 0xcf), 0);
	CHECK_EQ(v.cpu.gpr[EMU_RSP], rsp);
	init(fx, 0, 0x2);
	STEP(fx, 0x48, 0xcf);
	CHECK_EQ(v.cpu.rip, FX_DATA + 0x1000);
	CHECK_EQ(v.cpu.gpr[EMU_RSP], FX_STACK + 0x90000);
}

/* The same through emu_step(), the KVM fallback's entry: far transfers run there too. */
static void test_kvm_fallback_far(struct fx *fx)
{
	struct emu_cpu c;
	struct emu_result res;

	fx_put64(fx, FX_DATA, 0x0000003000001000ull);
	fx_init_cpu(&c);
	FX_STEP(fx, &c, &res, 0xff, 0x2c, 0x25, 0x00, 0x00, 0x10, 0x00);
	FX_CHECK_FAULT(&res, FX_GP, 0x30);
	/* To the 64-bit code segment 0x08: done, CS reloaded and marked for KVM_SET_SREGS. */
	fx_put64(fx, FX_DATA, 0x0000000800101000ull);
	fx_init_cpu(&c);
	FX_STEP(fx, &c, &res, 0xff, 0x2c, 0x25, 0x00, 0x00, 0x10, 0x00);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.rip, 0x101000);
	CHECK_EQ(c.seg[EMU_CS].sel, 0x08);
	CHECK(c.dirty & EMU_DIRTY_SREGS);
}

static void test_rdpmc(struct fx *fx)
{
	init(fx, 3, 0x2);
	CHECK_GP(STEP(fx, 0x0f, 0x33), 0);
	init(fx, 0, 0x2);
	CHECK_GP(STEP(fx, 0x0f, 0x33), 0);
}

static void test_io_bitmap(struct fx *fx)
{
	/* in al, 0x80: the bitmap allows it at CPL3 with IOPL 0. */
	init(fx, 3, 0x2);
	CHECK_EQ(STEP(fx, 0xe4, 0x80), EXIT_NEXT);
	CHECK_EQ(v.cpu.gpr[EMU_RAX] & 0xff, 0xff); /* no device */
	/* in al, 0x81 and out 0x84, al: denied. */
	init(fx, 3, 0x2);
	CHECK_GP(STEP(fx, 0xe4, 0x81), 0);
	init(fx, 3, 0x2);
	CHECK_GP(STEP(fx, 0xe6, 0x84), 0);
	/* in ax, 0x86 (ports 0x86-0x87, both allowed); in eax, 0x86 (0x88-0x89 denied). */
	init(fx, 3, 0x2);
	CHECK_EQ(STEP(fx, 0x66, 0xe5, 0x86), EXIT_NEXT);
	init(fx, 3, 0x2);
	CHECK_GP(STEP(fx, 0xe5, 0x86), 0);
	/* in al, dx with port 0x100: its bitmap byte lies past the TSS limit. */
	init(fx, 3, 0x2);
	v.cpu.gpr[EMU_RDX] = 0x100;
	CHECK_GP(STEP(fx, 0xec), 0);
	/* insb the same check: port 0x81 denied. */
	init(fx, 3, 0x2);
	v.cpu.gpr[EMU_RDX] = 0x81;
	v.cpu.gpr[EMU_RDI] = FX_USER + 0x800;
	CHECK_GP(STEP(fx, 0x6c), 0);
	/* IOPL 3: no bitmap check. */
	init(fx, 3, 0x2 | (3ull << 12));
	CHECK_EQ(STEP(fx, 0xe4, 0x81), EXIT_NEXT);
	/* A TSS without room for a bitmap: #GP(0). */
	init(fx, 3, 0x2);
	v.cpu.tr.limit = 0x67;
	CHECK_GP(STEP(fx, 0xe4, 0x80), 0);
	/* CPL0: allowed whatever the bitmap says. */
	init(fx, 0, 0x2);
	CHECK_EQ(STEP(fx, 0xe4, 0x81), EXIT_NEXT);
}

int main(void)
{
	struct fx fx;

	if (!fx_init(&fx)) {
		fprintf(stderr, "fixture setup failed\n");
		return T_EXIT_FAIL;
	}
	setup(&fx);
	test_int1(&fx);
	test_compat_delivery(&fx);
	test_mov_ss_shadow(&fx);
	test_task_switch(&fx);
	test_kvm_fallback_far(&fx);
	test_rdpmc(&fx);
	test_io_bitmap(&fx);
	fx_fini(&fx);
	return t_done();
}
