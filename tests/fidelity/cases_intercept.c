/* cases_intercept.c: instructions a VMM commonly intercepts or emulates (CPUID, XSAVE family,
 * MONITOR/MWAIT, PAUSE, VMCALL/VMMCALL, RDRAND, RDPID, RDTSCP, INT3, UD2) and the system-call
 * pairs (SYSCALL/SYSRET, SYSENTER, SYSCALL with EFER.SCE clear). Where the SDM makes the result
 * depend on a CPUID bit, the case checks the CPU against its own CPUID. */
#include "fid.h"

#define U3(p, a, b) fid_run3(p, a, b, RFL_USER)
#define SFMASK_VALUE 0x47700ull /* TF, DF, IF, AC, NT: what Linux masks */
#define TSC_AUX_VALUE 0x2a5

static uint8_t xsave_area[4096] __attribute__((aligned(64)));
uint16_t fid_fcw = 0x027f; /* an x87 control word that is not the init value 0x037f */

/* ---- CPUID (SDM Vol. 2A CPUID) ---- */
FID_PROBE(p_cpuid, "push %rbx\n\tmov %edi, %eax\n\tmov %esi, %ecx\n\tcpuid\n"
		   "\tmov %eax, fid_out(%rip)\n\tmov %ebx, fid_out+8(%rip)\n"
		   "\tmov %ecx, fid_out+16(%rip)\n\tmov %edx, fid_out+24(%rip)\n\tpop %rbx");

static bool printable(const char *s, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

static void cpuid_vendor(const struct fid_case *c)
{
	uint32_t r[4];
	char v[13];

	fid_cpuid(0, 0, r);
	memcpy(v, &r[1], 4);
	memcpy(v + 4, &r[3], 4);
	memcpy(v + 8, &r[2], 4);
	v[12] = 0;
	if (r[0] >= 1 && printable(v, 12))
		fid_pass(c);
	else
		fid_fail(c, "result", "expected=max-leaf>=1,printable-vendor got=max-leaf:0x%x", r[0]);
}

static void cpuid_brand(const struct fid_case *c)
{
	uint32_t r[4], b[12];
	const char *s = (const char *)b;
	unsigned int len;

	fid_cpuid(0x80000000, 0, r);
	if (r[0] < 0x80000004) {
		fid_skip(c, "CPUID.80000000H:EAX < 80000004H: no brand string leaves");
		return;
	}
	for (unsigned int i = 0; i < 3; i++)
		fid_cpuid(0x80000002 + i, 0, &b[4 * i]);
	for (len = 0; len < 48 && s[len]; len++)
		;
	if (len < 48 && len > 0 && printable(s, len))
		fid_pass(c);
	else
		fid_fail(c, "result", "expected=NUL-terminated-printable-brand got=len:%u", len);
}

/* The initial APIC ID of leaf 1 (and leaf 0BH's x2APIC ID) is this CPU's LAPIC ID. */
static void cpuid_apicid(const struct fid_case *c)
{
	uint32_t r[4], id = lapic_read(LAPIC_ID) >> 24;

	fid_cpuid(1, 0, r);
	if (r[1] >> 24 != id) {
		fid_fail(c, "result", "expected=leaf1-apic-id:0x%x got=leaf1-apic-id:0x%x", id,
			 r[1] >> 24);
		return;
	}
	fid_cpuid(0, 0, r);
	if (r[0] >= 0xb) {
		fid_cpuid(0xb, 0, r);
		if (r[1] != 0 && r[3] != id) {
			fid_fail(c, "result", "expected=leafB-x2apic-id:0x%x got=leafB-x2apic-id:0x%x",
				 id, r[3]);
			return;
		}
	}
	fid_pass(c);
}

/* CPUID is unprivileged: CPL3 gets what CPL0 gets (leaves 0 and 1). */
static void cpuid_cpl3(const struct fid_case *c)
{
	for (uint32_t leaf = 0; leaf <= 1; leaf++) {
		uint64_t k[4], u[4];

		fid_run0(p_cpuid, leaf, 0);
		memcpy(k, (const void *)fid_out, sizeof(k));
		U3(p_cpuid, leaf, 0);
		memcpy(u, (const void *)fid_out, sizeof(u));
		if (!fid_no_fault(c))
			return;
		for (int i = 0; i < 4; i++) {
			if (k[i] != u[i]) {
				fid_fail(c, "result", "expected=leaf%u-reg%d:0x%lx got=leaf%u-reg%d:0x%lx",
					 leaf, i, (unsigned long)k[i], leaf, i,
					 (unsigned long)u[i]);
				return;
			}
		}
	}
	fid_pass(c);
}

/* We run in long mode: CPUID.80000001H:EDX.LM[29] and .SYSCALL[11] must say so. */
static void cpuid_lm(const struct fid_case *c)
{
	bool lm = fid_cpu_has(0x80000001, 0, 3, 29), sc = fid_cpu_has(0x80000001, 0, 3, 11);

	if (lm && sc)
		fid_pass(c);
	else
		fid_fail(c, "result", "expected=LM:1,SYSCALL:1 got=LM:%d,SYSCALL:%d", lm, sc);
}

/* CPUID.01H:ECX.OSXSAVE[27] mirrors CR4.OSXSAVE. */
static void cpuid_osxsave(const struct fid_case *c)
{
	uint64_t cr4 = fid_read_cr4();
	bool on, off;

	if (!fid_cpu_has(1, 0, 2, 26)) {
		fid_skip(c, "CPUID.01H:ECX.XSAVE[bit 26] is 0");
		return;
	}
	if (!fid_write_cr4(cr4 | CR4_OSXSAVE)) {
		fid_fail(c, "fault", "expected=CR4.OSXSAVE-settable got=#GP-on-mov-cr4");
		return;
	}
	on = fid_cpu_has(1, 0, 2, 27);
	fid_write_cr4(cr4 & ~CR4_OSXSAVE);
	off = fid_cpu_has(1, 0, 2, 27);
	if (on && !off)
		fid_pass(c);
	else
		fid_fail(c, "result", "expected=osxsave-on:1,off:0 got=on:%d,off:%d", on, off);
}

/* ---- XGETBV, XSETBV, XSAVE, XRSTOR (SDM Vol. 2C; Vol. 1 13.7-13.8) ---- */
FID_PROBE(p_xgetbv, "mov %edi, %ecx\n\txgetbv\n\tshl $32, %rdx\n\tor %rdx, %rax");
FID_PROBE(p_xsetbv, "mov %edi, %eax\n\txor %edx, %edx\n\txor %ecx, %ecx\n\txsetbv");
FID_PROBE(p_xsave, "fldcw fid_fcw(%rip)\n\tmov $1, %eax\n\txor %edx, %edx\n\txsave (%rdi)\n"
		   "\tfninit");
FID_PROBE(p_xrstor, "mov $1, %eax\n\txor %edx, %edx\n\txrstor (%rdi)\n\tfninit");

static bool xsave_on(const struct fid_case *c)
{
	if (!fid_cpu_has(1, 0, 2, 26)) {
		fid_skip(c, "CPUID.01H:ECX.XSAVE[bit 26] is 0");
		return false;
	}
	if (!fid_write_cr4(fid_read_cr4() | CR4_OSXSAVE)) {
		fid_fail(c, "fault", "expected=CR4.OSXSAVE-settable got=#GP-on-mov-cr4");
		return false;
	}
	return true;
}

static void xgetbv_off(const struct fid_case *c)
{
	fid_write_cr4(fid_read_cr4() & ~CR4_OSXSAVE);
	fid_run0(p_xgetbv, 0, 0);
	fid_expect_fault(c, V_UD, 0);
}

static void xgetbv_xcr0(const struct fid_case *c)
{
	uint32_t r[4];
	uint64_t xcr0, supported;

	if (!xsave_on(c))
		return;
	xcr0 = fid_run0(p_xgetbv, 0, 0);
	if (!fid_no_fault(c))
		return;
	fid_cpuid(0xd, 0, r);
	supported = r[0] | (uint64_t)r[3] << 32;
	if ((xcr0 & 1) && !(xcr0 & ~supported))
		fid_pass(c);
	else
		fid_fail(c, "result", "expected=xcr0.x87:1,within:0x%lx got=xcr0:0x%lx",
			 (unsigned long)supported, (unsigned long)xcr0);
}

static void xsetbv_nox87(const struct fid_case *c)
{
	if (!xsave_on(c))
		return;
	fid_run0(p_xsetbv, 2, 0);
	fid_expect_fault(c, V_GP, 0);
}

static void xsetbv3(const struct fid_case *c)
{
	if (!xsave_on(c))
		return;
	U3(p_xsetbv, 1, 0);
	fid_expect_fault(c, V_GP, 0);
}

static void xsave_fcw(const struct fid_case *c)
{
	uint64_t bv;
	uint16_t fcw;

	if (!xsave_on(c))
		return;
	memset(xsave_area, 0, sizeof(xsave_area));
	fid_run0(p_xsave, (uint64_t)(uintptr_t)xsave_area, 0);
	if (!fid_no_fault(c))
		return;
	memcpy(&fcw, xsave_area, 2);
	memcpy(&bv, xsave_area + 512, 8);
	if (fcw == fid_fcw && (bv & 1))
		fid_pass(c);
	else
		fid_fail(c, "result", "expected=fcw:0x%x,xstate_bv.x87:1 got=fcw:0x%x,xstate_bv:0x%lx",
			 fid_fcw, fcw, (unsigned long)bv);
}

/* Standard-form XRSTOR with header bytes 23:8 not zero: #GP(0). */
static void xrstor_header(const struct fid_case *c)
{
	if (!xsave_on(c))
		return;
	memset(xsave_area, 0, sizeof(xsave_area));
	fid_run0(p_xsave, (uint64_t)(uintptr_t)xsave_area, 0);
	if (!fid_no_fault(c))
		return;
	xsave_area[512 + 16] = 1;
	fid_run0(p_xrstor, (uint64_t)(uintptr_t)xsave_area, 0);
	fid_expect_fault(c, V_GP, 0);
}

/* ---- MONITOR, MWAIT, PAUSE, VMCALL, VMMCALL ---- */
FID_PROBE(p_monitor, "mov %rdi, %rax\n\txor %ecx, %ecx\n\txor %edx, %edx\n\tmonitor");
FID_PROBE(p_mwait, "xor %eax, %eax\n\txor %ecx, %ecx\n\tmwait");
FID_PROBE(p_pause, "pause");
FID_PROBE(p_vmcall, "vmcall");
FID_PROBE(p_vmmcall, "vmmcall");

static void monitor3(const struct fid_case *c)
{
	U3(p_monitor, (uint64_t)(uintptr_t)xsave_area, 0);
	fid_expect_fault(c, V_UD, 0);
}
static void mwait3(const struct fid_case *c)
{
	U3(p_mwait, 0, 0);
	fid_expect_fault(c, V_UD, 0);
}
static void monitor0(const struct fid_case *c)
{
	fid_run0(p_monitor, (uint64_t)(uintptr_t)xsave_area, 0);
	fid_expect_fault(c, fid_cpu_has(1, 0, 2, 3) ? NO_FAULT : V_UD, 0);
}
static void pause3(const struct fid_case *c)
{
	U3(p_pause, 0, 0);
	fid_expect_fault(c, NO_FAULT, 0);
}
/* Outside VMX operation VMCALL is #UD; VMMCALL is #UD on Intel and with EFER.SVME=0. */
static void vmcall3(const struct fid_case *c)
{
	U3(p_vmcall, 0, 0);
	fid_expect_fault(c, V_UD, 0);
}
static void vmmcall3(const struct fid_case *c)
{
	U3(p_vmmcall, 0, 0);
	fid_expect_fault(c, V_UD, 0);
}
static void vmcall0(const struct fid_case *c)
{
	fid_run0(p_vmcall, 0, 0);
	fid_expect_fault(c, V_UD, 0);
}
static void vmmcall0(const struct fid_case *c)
{
	fid_run0(p_vmmcall, 0, 0);
	fid_expect_fault(c, V_UD, 0);
}

/* ---- RDRAND, RDPID, RDTSCP: #UD exactly when CPUID says the instruction is absent ---- */
FID_PROBE(p_rdrand, "mov $10, %ecx\n1:\trdrand %rax\n\tjc 2f\n\tloop 1b\n\tmovq $1, fid_out(%rip)\n2:");
FID_PROBE(p_rdpid, "rdpid %rax");
FID_PROBE(p_rdtscp_aux, "rdtscp\n\tmov %ecx, %eax");

static void rdrand3(const struct fid_case *c)
{
	bool has = fid_cpu_has(1, 0, 2, 30);

	U3(p_rdrand, 0, 0);
	if (!has) {
		fid_expect_fault(c, V_UD, 0);
		return;
	}
	if (fid_no_fault(c))
		fid_expect_eq(c, "cf-within-10-tries", 0, fid_out[0]);
}
static void rdpid3(const struct fid_case *c)
{
	bool has = fid_cpu_has(7, 0, 2, 22);
	uint64_t v;

	if (has || fid_cpu_has(0x80000001, 0, 3, 27))
		fid_wrmsr(MSR_TSC_AUX, TSC_AUX_VALUE);
	v = U3(p_rdpid, 0, 0);
	if (!has) {
		fid_expect_fault(c, V_UD, 0);
		return;
	}
	if (fid_no_fault(c))
		fid_expect_eq(c, "tsc_aux", TSC_AUX_VALUE, v);
}
static void rdtscp3(const struct fid_case *c)
{
	bool has = fid_cpu_has(0x80000001, 0, 3, 27);
	uint64_t v;

	if (has)
		fid_wrmsr(MSR_TSC_AUX, TSC_AUX_VALUE);
	v = U3(p_rdtscp_aux, 0, 0);
	if (!has) {
		fid_expect_fault(c, V_UD, 0);
		return;
	}
	if (fid_no_fault(c))
		fid_expect_eq(c, "ecx=tsc_aux", TSC_AUX_VALUE, v & 0xffffffff);
}

/* ---- INT3, UD2 at CPL0 (SDM Vol. 2A INT3; Vol. 2B UD) ---- */
FID_PROBE(p_int3_0, "lea 1f(%rip), %rax\n\tmov %rax, fid_out(%rip)\n\tint3\n1:");
FID_PROBE(p_ud2, "lea 1f(%rip), %rax\n\tmov %rax, fid_out(%rip)\n1:\tud2");

static void int3_0(const struct fid_case *c)
{
	fid_run0(p_int3_0, 0, 0);
	if (fid_expect_fault(c, V_BP, 0) && fid_trap.rip != fid_out[0])
		printf("NOTE int3-cpl0 frame rip 0x%lx, expected 0x%lx\n",
		       (unsigned long)fid_trap.rip, (unsigned long)fid_out[0]);
}
static void ud2_case(const struct fid_case *c, int cpl)
{
	if (cpl)
		U3(p_ud2, 0, 0);
	else
		fid_run0(p_ud2, 0, 0);
	if (fid_trap.count == 1 && fid_trap.vector == V_UD && fid_trap.rip != fid_out[0])
		fid_fail(c, "result", "expected=fault-rip:0x%lx got=fault-rip:0x%lx",
			 (unsigned long)fid_out[0], (unsigned long)fid_trap.rip);
	else
		fid_expect_fault(c, V_UD, 0);
}
static void ud2_0(const struct fid_case *c)
{
	ud2_case(c, 0);
}
static void ud2_3(const struct fid_case *c)
{
	ud2_case(c, 3);
}

/* ---- SYSCALL/SYSRET, SYSENTER (SDM Vol. 2B SYSCALL, SYSRET, SYSENTER) ---- */
/* LSTAR: record CS, RCX, R11 and RFLAGS as SYSCALL left them, then SYSRETQ. RSP is still the
 * user stack (SYSCALL does not switch stacks). */
__asm__(".text\n"
	".globl fid_syscall_entry\n"
	"fid_syscall_entry:\n"
	"	movw %cs, fid_out(%rip)\n"
	"	mov %rcx, fid_out+8(%rip)\n"
	"	mov %r11, fid_out+16(%rip)\n"
	"	pushfq\n"
	"	popq fid_out+24(%rip)\n"
	"	sysretq\n");
extern char fid_syscall_entry[];
FID_PROBE(p_syscall, "lea 1f(%rip), %rax\n\tmov %rax, fid_out+32(%rip)\n\tsyscall\n"
		     "1:\tmovw %ss, fid_out+40(%rip)\n\txor %eax, %eax\n\tmov %cs, %ax");
/* Sets NT, makes a system call, reports RFLAGS after SYSRET (NT cleared again after). */
FID_PROBE(p_syscall_nt, "pushfq\n\torq $0x4000, (%rsp)\n\tpopfq\n\tsyscall\n\tpushfq\n"
			"\tpop %rax\n\tpushfq\n\tandq $~0x4000, (%rsp)\n\tpopfq");
FID_PROBE(p_syscall_only, "syscall");
FID_PROBE(p_sysenter, "sysenter");

static void setup_syscall_msrs(void)
{
	fid_wrmsr(MSR_STAR, (uint64_t)(SEL_UCODE32 & ~3) << 48 | (uint64_t)SEL_KCODE << 32);
	fid_wrmsr(MSR_LSTAR, (uint64_t)(uintptr_t)fid_syscall_entry);
	fid_wrmsr(MSR_SFMASK, SFMASK_VALUE);
}

static void syscall3(const struct fid_case *c)
{
	uint64_t cs;

	setup_syscall_msrs();
	cs = U3(p_syscall, 0, 0);
	if (!fid_no_fault(c))
		return;
	if (fid_out[0] == SEL_KCODE && fid_out[1] == fid_out[4] &&
	    (fid_out[2] & (RFL_IF | 2)) == RFL_USER && !(fid_out[3] & SFMASK_VALUE) &&
	    cs == SEL_UCODE && fid_out[5] == SEL_UDATA)
		fid_pass(c);
	else
		fid_fail(c, "result",
			 "expected=entry-cs:0x8,rcx:0x%lx,r11.if:1,rflags&sfmask:0,cs:0x%x,ss:0x%x "
			 "got=entry-cs:0x%lx,rcx:0x%lx,r11:0x%lx,rflags:0x%lx,cs:0x%lx,ss:0x%lx",
			 (unsigned long)fid_out[4], SEL_UCODE, SEL_UDATA, (unsigned long)fid_out[0],
			 (unsigned long)fid_out[1], (unsigned long)fid_out[2],
			 (unsigned long)fid_out[3], (unsigned long)cs, (unsigned long)fid_out[5]);
}

/* NT is in SFMASK: clear in the kernel, restored from R11 by SYSRET. */
static void syscall_nt3(const struct fid_case *c)
{
	uint64_t f;

	setup_syscall_msrs();
	f = U3(p_syscall_nt, 0, 0);
	if (!fid_no_fault(c))
		return;
	if ((f & RFL_NT) && !(fid_out[3] & RFL_NT) && (fid_out[2] & RFL_NT))
		fid_pass(c);
	else
		fid_fail(c, "result", "expected=kernel-nt:0,r11-nt:1,user-nt-after:1 "
				      "got=kernel-rflags:0x%lx,r11:0x%lx,user-rflags-after:0x%lx",
			 (unsigned long)fid_out[3], (unsigned long)fid_out[2], (unsigned long)f);
}

static void syscall_nosce3(const struct fid_case *c)
{
	setup_syscall_msrs();
	fid_wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~EFER_SCE);
	U3(p_syscall_only, 0, 0);
	fid_expect_fault(c, V_UD, 0);
}

/* SYSENTER in 64-bit mode: Intel #GP(0) with IA32_SYSENTER_CS = 0; AMD #UD in long mode; #UD
 * where CPUID.01H:EDX.SEP[11] is 0. */
static void sysenter3(const struct fid_case *c)
{
	bool sep = fid_cpu_has(1, 0, 3, 11);

	if (sep)
		fid_wrmsr(MSR_SYSENTER_CS, 0);
	U3(p_sysenter, 0, 0);
	fid_expect_fault(c, fid_vendor_amd() || !sep ? V_UD : V_GP, 0);
}

#define I FID_INNOC
#define S FID_SENS
const struct fid_case fid_intercept_cases[] = {
	{"cpuid-vendor", I, "SDM-2A:CPUID(leaf-0)", cpuid_vendor},
	{"cpuid-brand", I, "SDM-2A:CPUID(leaves-80000002H-80000004H)", cpuid_brand},
	{"cpuid-apic-id", S, "SDM-2A:CPUID(01H:EBX[31:24],0BH:EDX),SDM-3A:10.4.6", cpuid_apicid},
	{"cpuid-cpl3-equals-cpl0", I, "SDM-2A:CPUID(unprivileged)", cpuid_cpl3},
	{"cpuid-long-mode-bits", I, "SDM-2A:CPUID(80000001H:EDX.LM,SYSCALL)", cpuid_lm},
	{"cpuid-osxsave-mirrors-cr4", S, "SDM-2A:CPUID(01H:ECX.OSXSAVE[27])", cpuid_osxsave},
	{"xgetbv-osxsave0", I, "SDM-2C:XGETBV(CR4.OSXSAVE=0:#UD)", xgetbv_off},
	{"xgetbv-xcr0", I, "SDM-2C:XGETBV,SDM-1:13.3", xgetbv_xcr0},
	{"xsetbv-x87-clear", FID_PRIV, "SDM-2C:XSETBV(XCR0[0]=0:#GP(0))", xsetbv_nox87},
	{"xsetbv-cpl3", FID_PRIV, "SDM-2C:XSETBV(CPL>0:#GP(0))", xsetbv3},
	{"xsave-x87-fcw", I, "SDM-1:13.7(XSAVE),10.5.1(FCW)", xsave_fcw},
	{"xrstor-reserved-header", I, "SDM-1:13.8.1(XRSTOR:header-bytes-23:8!=0:#GP(0))",
	 xrstor_header},
	{"monitor-cpl3", FID_PRIV, "SDM-2B:MONITOR(CPL>0:#UD)", monitor3},
	{"mwait-cpl3", FID_PRIV, "SDM-2B:MWAIT(CPL>0:#UD)", mwait3},
	{"monitor-cpl0", I, "SDM-2B:MONITOR(CPUID.01H:ECX.MONITOR)", monitor0},
	{"pause-cpl3", I, "SDM-2B:PAUSE", pause3},
	{"vmcall-cpl3", FID_PRIV, "SDM-3C:VMCALL(outside-VMX:#UD)", vmcall3},
	{"vmmcall-cpl3", FID_PRIV, "APM-3:VMMCALL(EFER.SVME=0:#UD),SDM:undefined-opcode", vmmcall3},
	{"rdrand-cpl3", I, "SDM-2B:RDRAND(CPUID.01H:ECX.RDRAND)", rdrand3},
	{"rdpid-cpl3", S, "SDM-2B:RDPID(IA32_TSC_AUX)", rdpid3},
	{"rdtscp-cpl3", S, "SDM-2B:RDTSCP(ECX=IA32_TSC_AUX)", rdtscp3},
	{"int3-cpl0", I, "SDM-2A:INT3(#BP-trap)", int3_0},
	{"ud2-cpl0", I, "SDM-2B:UD(#UD-fault)", ud2_0},
	{"ud2-cpl3", I, "SDM-2B:UD(#UD-fault)", ud2_3},
	{"syscall-sysret-cpl3", S, "SDM-2B:SYSCALL,SYSRET", syscall3},
	{"syscall-nt-preserved-cpl3", S, "SDM-2B:SYSCALL(RFLAGS&=~SFMASK),SYSRET(RFLAGS=R11)",
	 syscall_nt3},
	{"syscall-sce0-cpl3", I, "SDM-2B:SYSCALL(EFER.SCE=0:#UD)", syscall_nosce3},
	{"sysenter-64-cpl3", I, "SDM-2B:SYSENTER(SYSENTER_CS=0:#GP(0)),APM-3:SYSENTER(long-mode:#UD)",
	 sysenter3},
	/* Last: KVM-PVM hangs on these at CPL0 (KVM-HOST.md). */
	{"vmcall-cpl0", FID_PRIV, "SDM-3C:VMCALL(outside-VMX:#UD)", vmcall0},
	{"vmmcall-cpl0", FID_PRIV, "APM-3:VMMCALL(EFER.SVME=0:#UD),SDM:undefined-opcode", vmmcall0},
};
#undef I
#undef S
const unsigned int fid_intercept_count = sizeof(fid_intercept_cases) / sizeof(fid_intercept_cases[0]);
