/* cases_sensitive.c: Robin and Irvine's sensitive-but-unprivileged x86 instructions (USENIX
 * Security 2000) in 64-bit mode: they run at CPL3 without trapping, yet read or depend on
 * privileged state, so a trap-and-emulate VMM cannot see them. Each case checks the SDM's
 * result at CPL3 (and at CPL0 where the answer differs). */
#include "fid.h"

#define U3(p, a, b) fid_run3(p, a, b, RFL_USER)

/* ---- SGDT, SIDT, SLDT, STR, SMSW (SDM Vol. 2B; Vol. 3A 2.5 CR4.UMIP) ---- */
FID_PROBE(p_sgdt, "sgdt (%rdi)");
FID_PROBE(p_sidt, "sidt (%rdi)");
FID_PROBE(p_sldt, "mov $-1, %rax\n\tsldt %ax");
FID_PROBE(p_str, "mov $-1, %rax\n\tstr %ax");
FID_PROBE(p_smsw, "mov $-1, %rax\n\tsmsw %ax");

enum store_kind { ST_GDT, ST_IDT, ST_LDT, ST_TR, ST_MSW };

/* Runs store (k) at (cpl); with (umip) CR4.UMIP set first. */
static void store_case(const struct fid_case *c, enum store_kind k, int cpl, bool umip)
{
	static const char *const probes[] = {p_sgdt, p_sidt, p_sldt, p_str, p_smsw};
	uint64_t buf = (uint64_t)(uintptr_t)&fid_out[4], v;
	uint64_t cr0 = fid_read_cr0();

	if (umip) {
		if (!fid_cpu_has(7, 0, 2, 2)) {
			fid_skip(c, "CPUID.(EAX=7,ECX=0):ECX.UMIP[bit 2] is 0");
			return;
		}
		if (!fid_write_cr4(fid_read_cr4() | CR4_UMIP)) {
			fid_fail(c, "fault", "expected=CR4.UMIP-settable got=#GP-on-mov-cr4");
			return;
		}
	}
	v = cpl ? U3(probes[k], buf, 0) : fid_run0(probes[k], buf, 0);
	if (umip && cpl) {
		fid_expect_fault(c, V_GP, 0);
		return;
	}
	if (!fid_no_fault(c))
		return;
	switch (k) {
	case ST_GDT:
	case ST_IDT: {
		const struct fid_dtr *want = k == ST_GDT ? &fid_gdtr : &fid_idtr;
		const struct fid_dtr *got = (const struct fid_dtr *)(uintptr_t)buf;

		if (got->limit == want->limit && got->base == want->base)
			fid_pass(c);
		else
			fid_fail(c, "result", "expected=limit:0x%x,base:0x%lx got=limit:0x%x,base:0x%lx",
				 want->limit, (unsigned long)want->base, got->limit,
				 (unsigned long)got->base);
		break;
	}
	case ST_LDT:
		fid_expect_eq(c, "ldtr", SEL_LDT, v & 0xffff);
		break;
	case ST_TR:
		fid_expect_eq(c, "tr", SEL_TSS, v & 0xffff);
		break;
	case ST_MSW:
		fid_expect_eq(c, "msw", cr0 & 0xffff, v & 0xffff);
		break;
	}
}

#define STORE_CASE(fn, k, cpl, umip)                                                            \
	static void fn(const struct fid_case *c)                                                \
	{                                                                                       \
		store_case(c, k, cpl, umip);                                                    \
	}
STORE_CASE(sgdt3, ST_GDT, 3, false)
STORE_CASE(sidt3, ST_IDT, 3, false)
STORE_CASE(sldt3, ST_LDT, 3, false)
STORE_CASE(str3, ST_TR, 3, false)
STORE_CASE(smsw3, ST_MSW, 3, false)
STORE_CASE(sgdt3u, ST_GDT, 3, true)
STORE_CASE(sidt3u, ST_IDT, 3, true)
STORE_CASE(sldt3u, ST_LDT, 3, true)
STORE_CASE(str3u, ST_TR, 3, true)
STORE_CASE(smsw3u, ST_MSW, 3, true)
STORE_CASE(sgdt0u, ST_GDT, 0, true)
STORE_CASE(str0, ST_TR, 0, false)

/* ---- PUSHF/POPF/IRET and IF, IOPL (SDM Vol. 2B POPF, IRET; Vol. 1 3.4.3.3) ---- */
FID_PROBE(p_pushf, "pushfq\n\tpop %rax");
FID_PROBE(p_popf_clear_if, "pushfq\n\tandq $~0x200, (%rsp)\n\tpopfq\n\tpushfq\n\tpop %rax");
FID_PROBE(p_popf_set_iopl, "pushfq\n\torq $0x3000, (%rsp)\n\tpopfq\n\tpushfq\n\tpop %rax");
/* IRETQ to the same privilege level with IF clear and IOPL 3 in the image. */
FID_PROBE(p_iret_flags, "mov %rsp, %rcx\n\tmov %ss, %eax\n\tpush %rax\n\tpush %rcx\n\tpushfq\n"
			"\tandq $~0x200, (%rsp)\n\torq $0x3000, (%rsp)\n\tmov %cs, %eax\n"
			"\tpush %rax\n\tlea 1f(%rip), %rax\n\tpush %rax\n\tiretq\n"
			"1:\tpushfq\n\tpop %rax");

static void pushf_if0(const struct fid_case *c)
{
	uint64_t f = fid_run3(p_pushf, 0, 0, 2);

	if (fid_no_fault(c))
		fid_expect_eq(c, "rflags.if", 0, f & RFL_IF);
}

static void pushf_iopl3(const struct fid_case *c)
{
	uint64_t f = fid_run3(p_pushf, 0, 0, RFL_USER | RFL_IOPL);

	if (fid_no_fault(c))
		fid_expect_eq(c, "rflags.iopl", 3, (f >> 12) & 3);
}

static void popf_if_iopl0(const struct fid_case *c)
{
	uint64_t f = U3(p_popf_clear_if, 0, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "rflags.if", RFL_IF, f & RFL_IF);
}

static void popf_if_iopl3(const struct fid_case *c)
{
	uint64_t f = fid_run3(p_popf_clear_if, 0, 0, RFL_USER | RFL_IOPL);

	if (fid_no_fault(c))
		fid_expect_eq(c, "rflags.if", 0, f & RFL_IF);
}

static void popf_iopl3(const struct fid_case *c)
{
	uint64_t f = U3(p_popf_set_iopl, 0, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "rflags.iopl", 0, (f >> 12) & 3);
}

static void iret_flags3(const struct fid_case *c)
{
	uint64_t f = U3(p_iret_flags, 0, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "rflags.if|iopl", RFL_IF, f & (RFL_IF | RFL_IOPL));
}

/* ---- LAR, LSL, VERR, VERW (SDM Vol. 2A LAR, LSL; Vol. 2B VERR/VERW) ---- */
FID_PROBE(p_lar, "mov $0xdeadbeef, %eax\n\tlar %di, %eax\n\tsetz %cl\n\tmovzbl %cl, %ecx\n"
		 "\tmov %rcx, fid_out(%rip)");
FID_PROBE(p_lsl, "mov $0xdeadbeef, %eax\n\tlsl %di, %eax\n\tsetz %cl\n\tmovzbl %cl, %ecx\n"
		 "\tmov %rcx, fid_out(%rip)");
FID_PROBE(p_verr, "xor %eax, %eax\n\tverr %di\n\tsetz %al");
FID_PROBE(p_verw, "xor %eax, %eax\n\tverw %di\n\tsetz %al");

/* LAR: ZF=1 and dest = descriptor dword 2 masked by 00FxFF00H (32-bit operand; bits 19:16,
 * the limit's top, are undefined and not compared), or ZF=0 and dest unchanged. */
#define LAR_MASK 0x00f0ff00ull
static void lar_case(const struct fid_case *c, unsigned int sel, int cpl, bool valid)
{
	uint64_t v = cpl ? U3(p_lar, sel, 0) : fid_run0(p_lar, sel, 0);
	uint64_t want = valid ? (fid_gdt_entry(sel) >> 32) & LAR_MASK : 0xdeadbeef;

	if (!fid_no_fault(c))
		return;
	if (fid_out[0] != valid)
		fid_fail(c, "result", "expected=zf:%d got=zf:%lu,ar:0x%lx", valid,
			 (unsigned long)fid_out[0], (unsigned long)v);
	else
		fid_expect_eq(c, "ar", want, valid ? v & LAR_MASK : v);
}

static uint32_t desc_limit(uint64_t e)
{
	uint32_t l = (uint32_t)(e & 0xffff) | (uint32_t)((e >> 48) & 0xf) << 16;

	return (e >> 55) & 1 ? (l << 12) | 0xfff : l;
}

static void lsl_case(const struct fid_case *c, unsigned int sel, int cpl, bool valid)
{
	uint64_t v = cpl ? U3(p_lsl, sel, 0) : fid_run0(p_lsl, sel, 0);
	uint64_t want = valid ? desc_limit(fid_gdt_entry(sel)) : 0xdeadbeef;

	if (!fid_no_fault(c))
		return;
	if (fid_out[0] != valid)
		fid_fail(c, "result", "expected=zf:%d got=zf:%lu,limit:0x%lx", valid,
			 (unsigned long)fid_out[0], (unsigned long)v);
	else
		fid_expect_eq(c, "limit", want, v);
}

static void verx_case(const struct fid_case *c, const char *probe, unsigned int sel, bool ok)
{
	uint64_t v = U3(probe, sel, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "zf", ok, v);
}

#define LAR_CASE(fn, sel, cpl, valid)                                                           \
	static void fn(const struct fid_case *c)                                                \
	{                                                                                       \
		lar_case(c, sel, cpl, valid);                                                   \
	}
LAR_CASE(lar_ucode3, SEL_UCODE, 3, true)
LAR_CASE(lar_kcode3, SEL_KCODE | 3, 3, false)
LAR_CASE(lar_conforming3, SEL_KCODE_CNF | 3, 3, true)
LAR_CASE(lar_tss0, SEL_TSS, 0, true)
LAR_CASE(lar_tss3, SEL_TSS | 3, 3, false)
LAR_CASE(lar_ldt0, SEL_LDT, 0, true)
LAR_CASE(lar_null3, 0, 3, false)
LAR_CASE(lar_ldtsel3, SEL_LDT_DATA, 3, true)

static void lsl_udata3(const struct fid_case *c)
{
	lsl_case(c, SEL_UDATA, 3, true);
}
static void lsl_tss0(const struct fid_case *c)
{
	lsl_case(c, SEL_TSS, 0, true);
}
static void lsl_kdata3(const struct fid_case *c)
{
	lsl_case(c, SEL_KDATA | 3, 3, false);
}
static void verr_xo3(const struct fid_case *c)
{
	verx_case(c, p_verr, SEL_UCODE_XO, false);
}
static void verr_ucode3(const struct fid_case *c)
{
	verx_case(c, p_verr, SEL_UCODE, true);
}
static void verr_kdata3(const struct fid_case *c)
{
	verx_case(c, p_verr, SEL_KDATA | 3, false);
}
static void verw_udata3(const struct fid_case *c)
{
	verx_case(c, p_verw, SEL_UDATA, true);
}
static void verw_ucode3(const struct fid_case *c)
{
	verx_case(c, p_verw, SEL_UCODE, false);
}

/* ---- MOV/PUSH/POP of segment registers (SDM Vol. 2B MOV, PUSH, POP; Vol. 3A 5.6) ---- */
FID_PROBE(p_mov_cs, "xor %eax, %eax\n\tmov %cs, %ax");
FID_PROBE(p_mov_ss, "xor %eax, %eax\n\tmov %ss, %ax");
FID_PROBE(p_mov_ds, "xor %eax, %eax\n\tmov %ds, %ax");
FID_PROBE(p_load_ds, "mov %edi, %ds\n\txor %eax, %eax\n\tmov %ds, %ax");
FID_PROBE(p_load_ss, "mov %edi, %ss\n\txor %eax, %eax\n\tmov %ss, %ax");
FID_PROBE(p_push_cs, ".byte 0x0e\n\tpop %rax");	/* PUSH CS: invalid in 64-bit mode */
/* POP DS: likewise. The #UD leaves the pushed word on the stack: resume restores RSP. */
FID_PROBE(p_pop_ds, "lea 1f(%rip), %rax\n\tmov %rax, fid_resume(%rip)\n\tmov %rsp, %r8\n"
		    "\tpush %rdi\n\t.byte 0x1f\n1:\tmov %r8, %rsp\n\tmovq $0, fid_resume(%rip)");
FID_PROBE(p_push_fs, "mov %edi, %fs\n\tpush %fs\n\tpop %rax");
FID_PROBE(p_pop_fs, "lea 1f(%rip), %rax\n\tmov %rax, fid_resume(%rip)\n\tmov %rsp, %r8\n"
		    "\tpush %rdi\n\tpop %fs\n1:\tmov %r8, %rsp\n\tmovq $0, fid_resume(%rip)\n"
		    "\txor %eax, %eax\n\tmov %fs, %ax");

static void mov_cs3(const struct fid_case *c)
{
	uint64_t v = U3(p_mov_cs, 0, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "cs", SEL_UCODE, v);
}
static void mov_ss3(const struct fid_case *c)
{
	uint64_t v = U3(p_mov_ss, 0, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "ss", SEL_UDATA, v);
}
/* IRET to an outer privilege level nulls DS/ES/FS/GS whose DPL is below the new CPL. */
static void iret_nulls_ds3(const struct fid_case *c)
{
	uint64_t v = U3(p_mov_ds, 0, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "ds", 0, v);
}
static void load_ds_user3(const struct fid_case *c)
{
	uint64_t v = U3(p_load_ds, SEL_UDATA, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "ds", SEL_UDATA, v);
}
static void load_ds_ldt3(const struct fid_case *c)
{
	uint64_t v = U3(p_load_ds, SEL_LDT_DATA, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "ds", SEL_LDT_DATA, v);
}
static void load_ds_kdata3(const struct fid_case *c)
{
	U3(p_load_ds, SEL_KDATA | 3, 0);
	fid_expect_fault(c, V_GP, SEL_KDATA);
}
static void load_ss_kdata3(const struct fid_case *c)
{
	U3(p_load_ss, SEL_KDATA | 3, 0);
	fid_expect_fault(c, V_GP, SEL_KDATA);
}
static void load_ds_np3(const struct fid_case *c)
{
	U3(p_load_ds, SEL_NOTPRES | 3, 0);
	fid_expect_fault(c, 11, SEL_NOTPRES);
}
static void push_cs3(const struct fid_case *c)
{
	U3(p_push_cs, 0, 0);
	fid_expect_fault(c, V_UD, 0);
}
static void pop_ds3(const struct fid_case *c)
{
	U3(p_pop_ds, SEL_UDATA, 0);
	fid_expect_fault(c, V_UD, 0);
}
static void push_fs3(const struct fid_case *c)
{
	uint64_t v = U3(p_push_fs, SEL_UDATA, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "pushed-fs", SEL_UDATA, v & 0xffff);
}
static void pop_fs_kdata3(const struct fid_case *c)
{
	U3(p_pop_fs, SEL_KDATA | 3, 0);
	fid_expect_fault(c, V_GP, SEL_KDATA);
}

/* ---- far JMP/CALL/RET (SDM Vol. 2A CALL, JMP; Vol. 2B RET; Vol. 3A 5.8, 7.7) ---- */
/* fid_out[6] holds the m16:32 far pointer: offset in the low 4 bytes, selector above. */
FID_PROBE(p_ljmp, "lea 1f(%rip), %rax\n\tmov %eax, fid_out+48(%rip)\n"
		  "\tmov %di, fid_out+52(%rip)\n\tljmpl *fid_out+48(%rip)\n"
		  "1:\txor %eax, %eax\n\tmov %cs, %ax");
FID_PROBE(p_lcall, "lea 2f(%rip), %rax\n\tmov %eax, fid_out+48(%rip)\n"
		   "\tmov %di, fid_out+52(%rip)\n\tmov %rsp, %r8\n\tlcalll *fid_out+48(%rip)\n"
		   "\tjmp 3f\n2:\tmovzwl 4(%rsp), %eax\n\tmov %r8, %rsp\n3:");
FID_PROBE(p_lcall_gate, "lea 1f(%rip), %rax\n\tmov %rax, fid_resume(%rip)\n"
			"\tmovl $0, fid_out+48(%rip)\n\tmov %di, fid_out+52(%rip)\n"
			"\tmov %rsp, %r8\n\tlcalll *fid_out+48(%rip)\n"
			"\tmovq $1, fid_out(%rip)\n"
			"1:\tmov %r8, %rsp\n\tmovq $0, fid_resume(%rip)\n\txor %eax, %eax\n"
			"\tmov %cs, %ax");
FID_PROBE(p_lret, "lea 1f(%rip), %rax\n\tmov %rax, fid_resume(%rip)\n\tmov %rsp, %r8\n"
		  "\tpush %rdi\n\tpush %rax\n\tlretq\n"
		  "1:\tmov %r8, %rsp\n\tmovq $0, fid_resume(%rip)\n\txor %eax, %eax\n"
		  "\tmov %cs, %ax");

static void ljmp_ucode3(const struct fid_case *c)
{
	uint64_t v = U3(p_ljmp, SEL_UCODE, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "cs", SEL_UCODE, v);
}
static void ljmp_kcode3(const struct fid_case *c)
{
	U3(p_ljmp, SEL_KCODE, 0);
	fid_expect_fault(c, V_GP, SEL_KCODE);
}
/* IA-32e mode has no task switches: a far JMP to a TSS is #GP(selector). */
static void ljmp_tss0(const struct fid_case *c)
{
	fid_run0(p_ljmp, SEL_TSS, 0);
	fid_expect_fault(c, V_GP, SEL_TSS);
}
static void lcall_ucode3(const struct fid_case *c)
{
	uint64_t v = U3(p_lcall, SEL_UCODE, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "pushed-cs", SEL_UCODE, v);
}
/* Through a DPL3 64-bit call gate to CPL0 and back with a far RET. */
static void lcall_gate3(const struct fid_case *c)
{
	uint64_t v = U3(p_lcall_gate, SEL_CALLGATE, 0);

	if (!fid_no_fault(c))
		return;
	if (fid_out[0] == 1 && fid_out[1] == SEL_KCODE && (fid_out[2] & 0xffff) == SEL_UCODE &&
	    v == SEL_UCODE)
		fid_pass(c);
	else
		fid_fail(c, "result", "expected=returned:1,target-cs:0x8,pushed-cs:0x%x,cs:0x%x "
				      "got=returned:%lu,target-cs:0x%lx,pushed-cs:0x%lx,cs:0x%lx",
			 SEL_UCODE, SEL_UCODE, (unsigned long)fid_out[0], (unsigned long)fid_out[1],
			 (unsigned long)fid_out[2], (unsigned long)v);
}
static void lret_kcode3(const struct fid_case *c)
{
	U3(p_lret, SEL_KCODE, 0);
	fid_expect_fault(c, V_GP, SEL_KCODE);
}
static void lret_same3(const struct fid_case *c)
{
	uint64_t v = U3(p_lret, SEL_UCODE, 0);

	if (fid_no_fault(c))
		fid_expect_eq(c, "cs", SEL_UCODE, v);
}

/* ---- INT n, INT3, INTO, INT1 (SDM Vol. 2A INT n; Vol. 3A 6.12.1.1) ---- */
FID_PROBE(p_int80, "lea 1f(%rip), %rax\n\tmov %rax, fid_out(%rip)\n\tint $0x80\n1:");
FID_PROBE(p_int81, "int $0x81");
FID_PROBE(p_int3, "lea 1f(%rip), %rax\n\tmov %rax, fid_out(%rip)\n\tint3\n1:");
FID_PROBE(p_into, ".byte 0xce"); /* INTO: invalid in 64-bit mode */
FID_PROBE(p_int1, "lea 1f(%rip), %rax\n\tmov %rax, fid_out(%rip)\n\t.byte 0xf1\n1:");

/* A software interrupt delivered to (vector) with a frame naming the next instruction and
 * the user code segment. */
static void delivered(const struct fid_case *c, uint64_t vector)
{
	if (fid_trap.count == 1 && fid_trap.vector == vector && fid_trap.rip == fid_out[0] &&
	    fid_trap.cs == SEL_UCODE)
		fid_pass(c);
	else if (fid_trap.count == 1 && fid_trap.vector == vector)
		fid_fail(c, "result", "expected=frame-rip:0x%lx,cs:0x%x got=frame-rip:0x%lx,cs:0x%lx",
			 (unsigned long)fid_out[0], SEL_UCODE, (unsigned long)fid_trap.rip,
			 (unsigned long)fid_trap.cs);
	else
		fid_expect_fault(c, vector, 0);
}
static void int80_3(const struct fid_case *c)
{
	U3(p_int80, 0, 0);
	delivered(c, 0x80);
}
static void int81_3(const struct fid_case *c)
{
	U3(p_int81, 0, 0);
	fid_expect_fault(c, V_GP, 0x81 * 8 + 2);
}
static void int3_3(const struct fid_case *c)
{
	U3(p_int3, 0, 0);
	delivered(c, V_BP);
}
static void into3(const struct fid_case *c)
{
	U3(p_into, 0, 0);
	fid_expect_fault(c, V_UD, 0);
}
/* INT1 (ICEBP) skips the gate's DPL check: #DB through the DPL0 gate. */
static void int1_3(const struct fid_case *c)
{
	U3(p_int1, 0, 0);
	delivered(c, V_DB);
}

/* ---- IRET (SDM Vol. 2A IRET) ---- */
FID_PROBE(p_iret_nt, "lea 1f(%rip), %rax\n\tmov %rax, fid_resume(%rip)\n\tmov %rsp, %r8\n"
		     "\tpushfq\n\torq $0x4000, (%rsp)\n\tpopfq\n"
		     "\tmov %ss, %eax\n\tpush %rax\n\tpush %r8\n\tpushfq\n\tmov %cs, %eax\n"
		     "\tpush %rax\n\tlea 1f(%rip), %rax\n\tpush %rax\n\tiretq\n"
		     "1:\tmov %r8, %rsp\n\tmovq $0, fid_resume(%rip)\n"
		     "\tpushfq\n\tandq $~0x4000, (%rsp)\n\tpopfq");
FID_PROBE(p_iret_to, "lea 1f(%rip), %rax\n\tmov %rax, fid_resume(%rip)\n\tmov %rsp, %r8\n"
		     "\tmov %ss, %eax\n\tpush %rax\n\tpush %r8\n\tpushfq\n\tpush %rdi\n"
		     "\tlea 1f(%rip), %rax\n\tpush %rax\n\tiretq\n"
		     "1:\tmov %r8, %rsp\n\tmovq $0, fid_resume(%rip)");

/* IA-32e mode: IRET with NT=1 is #GP(0) (no nested-task return). */
static void iret_nt0(const struct fid_case *c)
{
	fid_run0(p_iret_nt, 0, 0);
	fid_expect_fault(c, V_GP, 0);
}
static void iret_to_kcode3(const struct fid_case *c)
{
	U3(p_iret_to, SEL_KCODE, 0);
	fid_expect_fault(c, V_GP, SEL_KCODE);
}

#define S FID_SENS
const struct fid_case fid_sensitive_cases[] = {
	{"sgdt-cpl3", S, "SDM-2B:SGDT", sgdt3},
	{"sidt-cpl3", S, "SDM-2B:SIDT", sidt3},
	{"sldt-cpl3", S, "SDM-2B:SLDT", sldt3},
	{"str-cpl3", S, "SDM-2B:STR", str3},
	{"smsw-cpl3", S, "SDM-2B:SMSW", smsw3},
	{"sgdt-umip-cpl3", FID_PRIV, "SDM-3A:2.5-CR4.UMIP,SDM-2B:SGDT", sgdt3u},
	{"sidt-umip-cpl3", FID_PRIV, "SDM-3A:2.5-CR4.UMIP,SDM-2B:SIDT", sidt3u},
	{"sldt-umip-cpl3", FID_PRIV, "SDM-3A:2.5-CR4.UMIP,SDM-2B:SLDT", sldt3u},
	{"str-umip-cpl3", FID_PRIV, "SDM-3A:2.5-CR4.UMIP,SDM-2B:STR", str3u},
	{"smsw-umip-cpl3", FID_PRIV, "SDM-3A:2.5-CR4.UMIP,SDM-2B:SMSW", smsw3u},
	{"sgdt-umip-cpl0", FID_INNOC, "SDM-3A:2.5-CR4.UMIP(CPL0-unaffected)", sgdt0u},
	{"str-cpl0", FID_INNOC, "SDM-2B:STR", str0},
	{"pushf-if0-cpl3", S, "SDM-2B:PUSHF,SDM-1:3.4.3.3", pushf_if0},
	{"pushf-iopl3-cpl3", S, "SDM-2B:PUSHF,SDM-1:3.4.3.3", pushf_iopl3},
	{"popf-if-iopl0-cpl3", S, "SDM-2B:POPF(CPL>IOPL:IF-unchanged)", popf_if_iopl0},
	{"popf-if-iopl3-cpl3", S, "SDM-2B:POPF(CPL<=IOPL:IF-changed)", popf_if_iopl3},
	{"popf-iopl-cpl3", S, "SDM-2B:POPF(CPL>0:IOPL-unchanged)", popf_iopl3},
	{"iret-flags-cpl3", S, "SDM-2A:IRET(return-to-same-privilege:IF,IOPL)", iret_flags3},
	{"lar-ucode-cpl3", S, "SDM-2A:LAR", lar_ucode3},
	{"lar-kcode-cpl3", S, "SDM-2A:LAR(DPL<CPL:ZF=0)", lar_kcode3},
	{"lar-conforming-cpl3", S, "SDM-2A:LAR(conforming:no-DPL-check)", lar_conforming3},
	{"lar-tss-cpl0", S, "SDM-2A:LAR(busy-TSS-type-valid)", lar_tss0},
	{"lar-tss-cpl3", S, "SDM-2A:LAR(DPL<CPL:ZF=0)", lar_tss3},
	{"lar-ldt-cpl0", S, "SDM-2A:LAR(LDT-type-valid)", lar_ldt0},
	{"lar-null-cpl3", S, "SDM-2A:LAR(null:ZF=0)", lar_null3},
	{"lar-ldtsel-cpl3", S, "SDM-2A:LAR(TI=1:LDT-entry)", lar_ldtsel3},
	{"lsl-udata-cpl3", S, "SDM-2A:LSL(G=1:scaled-limit)", lsl_udata3},
	{"lsl-tss-cpl0", S, "SDM-2A:LSL(TSS-limit)", lsl_tss0},
	{"lsl-kdata-cpl3", S, "SDM-2A:LSL(DPL<CPL:ZF=0)", lsl_kdata3},
	{"verr-xo-cpl3", S, "SDM-2B:VERR(execute-only:ZF=0)", verr_xo3},
	{"verr-ucode-cpl3", S, "SDM-2B:VERR(readable-code:ZF=1)", verr_ucode3},
	{"verr-kdata-cpl3", S, "SDM-2B:VERR(DPL<CPL:ZF=0)", verr_kdata3},
	{"verw-udata-cpl3", S, "SDM-2B:VERW(writable-data:ZF=1)", verw_udata3},
	{"verw-ucode-cpl3", S, "SDM-2B:VERW(code:ZF=0)", verw_ucode3},
	{"mov-from-cs-cpl3", S, "SDM-2B:MOV(Sreg)", mov_cs3},
	{"mov-from-ss-cpl3", S, "SDM-2B:MOV(Sreg)", mov_ss3},
	{"iret-nulls-ds-cpl3", S, "SDM-2A:IRET(return-to-outer:DS-DPL<CPL-nulled)", iret_nulls_ds3},
	{"mov-to-ds-user-cpl3", S, "SDM-2B:MOV(Sreg)", load_ds_user3},
	{"mov-to-ds-ldt-cpl3", S, "SDM-2B:MOV(Sreg,TI=1)", load_ds_ldt3},
	{"mov-to-ds-kdata-cpl3", S, "SDM-2B:MOV(DPL<CPL:#GP(sel))", load_ds_kdata3},
	{"mov-to-ss-kdata-cpl3", S, "SDM-2B:MOV(SS:DPL!=CPL:#GP(sel))", load_ss_kdata3},
	{"mov-to-ds-notpresent-cpl3", S, "SDM-2B:MOV(not-present:#NP(sel))", load_ds_np3},
	{"push-cs-64-cpl3", S, "SDM-2B:PUSH(CS-invalid-in-64-bit:#UD)", push_cs3},
	{"pop-ds-64-cpl3", S, "SDM-2B:POP(DS-invalid-in-64-bit:#UD)", pop_ds3},
	{"push-fs-cpl3", S, "SDM-2B:PUSH(FS)", push_fs3},
	{"pop-fs-kdata-cpl3", S, "SDM-2B:POP(FS:DPL<CPL:#GP(sel))", pop_fs_kdata3},
	{"ljmp-ucode-cpl3", S, "SDM-2A:JMP(far,same-privilege)", ljmp_ucode3},
	{"ljmp-kcode-cpl3", S, "SDM-2A:JMP(far,DPL!=CPL:#GP(sel))", ljmp_kcode3},
	{"ljmp-tss-cpl0", S, "SDM-2A:JMP(IA-32e:TSS:#GP(sel)),SDM-3A:7.7", ljmp_tss0},
	{"lcall-ucode-cpl3", S, "SDM-2A:CALL(far,same-privilege:pushes-CS)", lcall_ucode3},
	{"lcall-callgate-cpl3", S, "SDM-2A:CALL(64-bit-call-gate),SDM-3A:5.8.6", lcall_gate3},
	{"lret-kcode-cpl3", S, "SDM-2B:RET(far,RPL<CPL:#GP(sel))", lret_kcode3},
	{"lret-same-cpl3", S, "SDM-2B:RET(far,same-privilege)", lret_same3},
	{"int80-dpl3-cpl3", S, "SDM-2A:INT-n,SDM-3A:6.12.1.1", int80_3},
	{"int81-dpl0-cpl3", S, "SDM-2A:INT-n(DPL<CPL:#GP(vec*8+2))", int81_3},
	{"int3-dpl3-cpl3", S, "SDM-2A:INT3,SDM-3A:6.12.1.1", int3_3},
	{"into-64-cpl3", S, "SDM-2A:INTO(64-bit:#UD)", into3},
	{"int1-dpl0-cpl3", S, "SDM-2A:INT1(no-DPL-check),SDM-3A:6.12.1.1", int1_3},
	{"iret-nt-cpl0", S, "SDM-2A:IRET(IA-32e:NT=1:#GP(0))", iret_nt0},
	{"iret-to-kcode-cpl3", S, "SDM-2A:IRET(RPL<CPL:#GP(sel))", iret_to_kcode3},
};
#undef S
const unsigned int fid_sensitive_count = sizeof(fid_sensitive_cases) / sizeof(fid_sensitive_cases[0]);
