/* cases_priv.c: privileged instructions at CPL3. Each must trap (#GP(0), or #UD where the SDM
 * says so) so that a trap-and-emulate VMM sees it; the I/O and interrupt-flag instructions
 * are privileged only relative to IOPL and the TSS I/O permission bitmap. */
#include "fid.h"

#define U3(p, a, b) fid_run3(p, a, b, RFL_USER)

FID_PROBE(p_rd_cr0, "mov %cr0, %rax");
FID_PROBE(p_rd_cr3, "mov %cr3, %rax");
FID_PROBE(p_wr_cr4_same, "mov %cr4, %rax\n\tmov %rax, %cr4");
FID_PROBE(p_rd_cr8, "mov %cr8, %rax");
FID_PROBE(p_rd_dr7, "mov %db7, %rax");
FID_PROBE(p_lgdt, "lgdt fid_gdtr(%rip)");
FID_PROBE(p_lidt, "lidt fid_idtr(%rip)");
FID_PROBE(p_lldt, "mov $0x70, %eax\n\tlldt %ax");
FID_PROBE(p_ltr, "mov $0x60, %eax\n\tltr %ax");
FID_PROBE(p_lmsw, "smsw %ax\n\tlmsw %ax");
FID_PROBE(p_clts, "clts");
FID_PROBE(p_hlt, "hlt");
FID_PROBE(p_invd, "invd");
FID_PROBE(p_wbinvd, "wbinvd");
FID_PROBE(p_invlpg, "invlpg (%rdi)");
FID_PROBE(p_rdmsr, "mov %edi, %ecx\n\trdmsr");
FID_PROBE(p_wrmsr_same, "mov %edi, %ecx\n\trdmsr\n\twrmsr");
FID_PROBE(p_cli, "cli\n\tpushfq\n\tpop %rax");
FID_PROBE(p_sti, "sti\n\tpushfq\n\tpop %rax");
FID_PROBE(p_in, "mov %edi, %edx\n\tinb %dx, %al");
FID_PROBE(p_out, "mov %edi, %edx\n\tmov $0, %eax\n\toutb %al, %dx");
FID_PROBE(p_rdpmc, "xor %ecx, %ecx\n\trdpmc");
FID_PROBE(p_rdtsc, "rdtsc");
FID_PROBE(p_rdtscp, "rdtscp");
FID_PROBE(p_swapgs, "swapgs");
FID_PROBE(p_sysret, "lea 1f(%rip), %rcx\n\tpushfq\n\tpop %r11\n\tsysretq\n1:");
FID_PROBE(p_sysexit, "lea 1f(%rip), %rdx\n\tmov %rsp, %rcx\n\tsysexitq\n1:");

#define PRIV_GP(fn, probe, a0)                                                                  \
	static void fn(const struct fid_case *c)                                                \
	{                                                                                       \
		U3(probe, a0, 0);                                                               \
		fid_expect_fault(c, V_GP, 0);                                                   \
	}
PRIV_GP(rd_cr0, p_rd_cr0, 0)
PRIV_GP(rd_cr3, p_rd_cr3, 0)
PRIV_GP(wr_cr4, p_wr_cr4_same, 0)
PRIV_GP(rd_cr8, p_rd_cr8, 0)
PRIV_GP(rd_dr7, p_rd_dr7, 0)
PRIV_GP(lgdt3, p_lgdt, 0)
PRIV_GP(lidt3, p_lidt, 0)
PRIV_GP(lldt3, p_lldt, 0)
PRIV_GP(ltr3, p_ltr, 0)
PRIV_GP(lmsw3, p_lmsw, 0)
PRIV_GP(clts3, p_clts, 0)
PRIV_GP(hlt3, p_hlt, 0)
PRIV_GP(invd3, p_invd, 0)
PRIV_GP(wbinvd3, p_wbinvd, 0)
PRIV_GP(invlpg3, p_invlpg, 0x100000)
PRIV_GP(rdmsr3, p_rdmsr, MSR_EFER)
PRIV_GP(wrmsr3, p_wrmsr_same, MSR_EFER)
PRIV_GP(cli3, p_cli, 0)
PRIV_GP(sti3, p_sti, 0)
PRIV_GP(in_denied3, p_in, FID_PORT_DENIED)
PRIV_GP(out_denied3, p_out, FID_PORT_DENIED)
PRIV_GP(swapgs3, p_swapgs, 0)
PRIV_GP(sysret3, p_sysret, 0)

/* CLI at CPL3 with IOPL 3: allowed, IF clears (SDM Vol. 2A CLI). */
static void cli_iopl3(const struct fid_case *c)
{
	uint64_t f = fid_run3(p_cli, 0, 0, RFL_USER | RFL_IOPL);

	if (fid_no_fault(c))
		fid_expect_eq(c, "rflags.if", 0, f & RFL_IF);
}

/* The I/O permission bitmap allows the port although CPL > IOPL (SDM Vol. 1 19.5.2). */
static void in_allowed3(const struct fid_case *c)
{
	U3(p_in, FID_PORT_ALLOWED, 0);
	fid_expect_fault(c, NO_FAULT, 0);
}

static void out_allowed3(const struct fid_case *c)
{
	U3(p_out, FID_PORT_ALLOWED, 0);
	fid_expect_fault(c, NO_FAULT, 0);
}

/* IOPL 3: the bitmap is not consulted (SDM Vol. 1 19.5.1). */
static void in_iopl3(const struct fid_case *c)
{
	fid_run3(p_in, FID_PORT_DENIED, 0, RFL_USER | RFL_IOPL);
	fid_expect_fault(c, NO_FAULT, 0);
}

/* RDPMC with CR4.PCE=0 at CPL3 (SDM Vol. 2B RDPMC). */
static void rdpmc3(const struct fid_case *c)
{
	fid_write_cr4(fid_read_cr4() & ~CR4_PCE);
	U3(p_rdpmc, 0, 0);
	fid_expect_fault(c, V_GP, 0);
}

/* RDTSC/RDTSCP at CPL3: allowed with CR4.TSD=0, #GP(0) with TSD=1 (SDM Vol. 2B RDTSC). */
static void rdtsc3(const struct fid_case *c)
{
	fid_write_cr4(fid_read_cr4() & ~CR4_TSD);
	U3(p_rdtsc, 0, 0);
	fid_expect_fault(c, NO_FAULT, 0);
}

static void rdtsc3_tsd(const struct fid_case *c)
{
	if (!fid_write_cr4(fid_read_cr4() | CR4_TSD)) {
		fid_fail(c, "fault", "expected=CR4.TSD-settable got=#GP-on-mov-cr4");
		return;
	}
	U3(p_rdtsc, 0, 0);
	fid_expect_fault(c, V_GP, 0);
}

static void rdtscp3_tsd(const struct fid_case *c)
{
	if (!fid_cpu_has(0x80000001, 0, 3, 27)) {
		fid_skip(c, "CPUID.80000001H:EDX.RDTSCP[bit 27] is 0");
		return;
	}
	if (!fid_write_cr4(fid_read_cr4() | CR4_TSD)) {
		fid_fail(c, "fault", "expected=CR4.TSD-settable got=#GP-on-mov-cr4");
		return;
	}
	U3(p_rdtscp, 0, 0);
	fid_expect_fault(c, V_GP, 0);
}

/* SYSEXIT at CPL3: #GP(0) (CPL != 0), checked before the long-mode #UD of AMD (APM Vol. 3
 * SYSEXIT), which the AMD hosts here confirm natively; #UD where CPUID.01H:EDX.SEP[11] says
 * SYSENTER/SYSEXIT are absent. */
static void sysexit3(const struct fid_case *c)
{
	U3(p_sysexit, 0, 0);
	fid_expect_fault(c, fid_cpu_has(1, 0, 3, 11) ? V_GP : V_UD, 0);
}

#define P FID_PRIV
const struct fid_case fid_priv_cases[] = {
	{"mov-from-cr0-cpl3", P, "SDM-2B:MOV(CR)(CPL>0:#GP(0))", rd_cr0},
	{"mov-from-cr3-cpl3", P, "SDM-2B:MOV(CR)(CPL>0:#GP(0))", rd_cr3},
	{"mov-to-cr4-cpl3", P, "SDM-2B:MOV(CR)(CPL>0:#GP(0))", wr_cr4},
	{"mov-from-cr8-cpl3", P, "SDM-2B:MOV(CR)(CPL>0:#GP(0))", rd_cr8},
	{"mov-from-dr7-cpl3", P, "SDM-2B:MOV(DR)(CPL>0:#GP(0))", rd_dr7},
	{"lgdt-cpl3", P, "SDM-2A:LGDT(CPL>0:#GP(0))", lgdt3},
	{"lidt-cpl3", P, "SDM-2A:LIDT(CPL>0:#GP(0))", lidt3},
	{"lldt-cpl3", P, "SDM-2A:LLDT(CPL>0:#GP(0))", lldt3},
	{"ltr-cpl3", P, "SDM-2A:LTR(CPL>0:#GP(0))", ltr3},
	{"lmsw-cpl3", P, "SDM-2A:LMSW(CPL>0:#GP(0))", lmsw3},
	{"clts-cpl3", P, "SDM-2A:CLTS(CPL>0:#GP(0))", clts3},
	{"hlt-cpl3", P, "SDM-2A:HLT(CPL>0:#GP(0))", hlt3},
	{"invd-cpl3", P, "SDM-2A:INVD(CPL>0:#GP(0))", invd3},
	{"wbinvd-cpl3", P, "SDM-2B:WBINVD(CPL>0:#GP(0))", wbinvd3},
	{"invlpg-cpl3", P, "SDM-2A:INVLPG(CPL>0:#GP(0))", invlpg3},
	{"rdmsr-cpl3", P, "SDM-2B:RDMSR(CPL>0:#GP(0))", rdmsr3},
	{"wrmsr-cpl3", P, "SDM-2B:WRMSR(CPL>0:#GP(0))", wrmsr3},
	{"cli-iopl0-cpl3", P, "SDM-2A:CLI(CPL>IOPL:#GP(0))", cli3},
	{"sti-iopl0-cpl3", P, "SDM-2B:STI(CPL>IOPL:#GP(0))", sti3},
	{"cli-iopl3-cpl3", FID_SENS, "SDM-2A:CLI(CPL<=IOPL:IF=0)", cli_iopl3},
	{"in-bitmap-denied-cpl3", P, "SDM-1:19.5.2(I/O-bitmap-bit-set:#GP(0))", in_denied3},
	{"out-bitmap-denied-cpl3", P, "SDM-1:19.5.2(I/O-bitmap-bit-set:#GP(0))", out_denied3},
	{"in-bitmap-allowed-cpl3", FID_SENS, "SDM-1:19.5.2(I/O-bitmap-bit-clear)", in_allowed3},
	{"out-bitmap-allowed-cpl3", FID_SENS, "SDM-1:19.5.2(I/O-bitmap-bit-clear)", out_allowed3},
	{"in-iopl3-cpl3", FID_SENS, "SDM-1:19.5.1(CPL<=IOPL:no-bitmap-check)", in_iopl3},
	{"rdpmc-pce0-cpl3", P, "SDM-2B:RDPMC(CR4.PCE=0,CPL>0:#GP(0))", rdpmc3},
	{"rdtsc-tsd0-cpl3", FID_SENS, "SDM-2B:RDTSC(CR4.TSD=0:allowed)", rdtsc3},
	{"rdtsc-tsd1-cpl3", P, "SDM-2B:RDTSC(CR4.TSD=1,CPL>0:#GP(0))", rdtsc3_tsd},
	{"rdtscp-tsd1-cpl3", P, "SDM-2B:RDTSCP(CR4.TSD=1,CPL>0:#GP(0))", rdtscp3_tsd},
	{"swapgs-cpl3", P, "SDM-2B:SWAPGS(CPL>0:#GP(0))", swapgs3},
	{"sysret-cpl3", P, "SDM-2B:SYSRET(CPL>0:#GP(0))", sysret3},
	{"sysexit-cpl3", P, "SDM-2B:SYSEXIT(CPL>0:#GP(0)),APM-3:SYSEXIT", sysexit3},
};
#undef P
const unsigned int fid_priv_count = sizeof(fid_priv_cases) / sizeof(fid_priv_cases[0]);
