/* emulate.c: one instance of each instruction class that KVM-PVM hands back to the VMM as an
 * emulation failure when executed at CPL0 (shared/KVM-HOST.md), run at CPL0 and checked
 * against constants the SDM gives: popcnt, lzcnt, tzcnt, bt/bts/btr/btc, xgetbv/xsetbv,
 * xsave/xrstor (round trip, with the AVX upper halves when AVX is there), fxsave/fxrstor,
 * x87 (fninit, fnstcw, fldcw, fld1, fstp), movq xmm<->r64, movdqu, pxor, vmovdqu ymm,
 * cmpxchg16b, rdtscp and rdpid against the TSC_AUX the guest wrote, lar/lsl/verr/verw on the
 * runtime's own GDT, int3 and int $0x80 through an IDT of our own (the handler records the
 * frame), clac/stac; and pxor and movq with their bytes across a page boundary (KVM's exit
 * then may carry only the first page's bytes). Classes whose CPUID bit is clear are skipped,
 * not failed (QEMU's default TCG CPU lacks several). The guest sets CR4.OSFXSR/OSXMMEXCPT
 * and, with XSAVE, CR4.OSXSAVE and XCR0 itself. CPL0 code is interpreted on KVM-PVM (~1.2 M
 * instructions/s): each class is a handful of instructions.
 * NOTE: the asm statements do not list vector registers as clobbered: -mgeneral-regs-only
 * refuses them, and for the same reason the compiler keeps nothing in them.
 *
 * tzcnt of zero at CPL0 is executed by KVM itself, not handed to the VMM; KVM-PVM's
 * interpreter runs it as BSF, which the guest detects and prints as KNOWN-HOST-BUG instead of
 * failing (any other wrong answer fails). The guest cannot tell who ran it, so the host side
 * (tests/e2e/test_guests.py case_emulate) accepts that line only on KVM-PVM and only when mvm
 * emulated no tzcnt or bsf: the same answer from mvm's emulator or engine fails.
 *
 * Prints PASS/FAIL per check, SKIP per class without CPUID support, then
 * "EMULATE-CLASSES <n>" (classes run) and "EMULATE-SKIPPED <m>"; exits 0 with RESULT PASS.
 * Host side: exit status 0, RESULT PASS, no FAIL. */
#include "guest.h"

#define CR0_MP	       (1ull << 1)
#define CR0_EM	       (1ull << 2)
#define CR0_TS	       (1ull << 3)
#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_OSXSAVE    (1ull << 18)
#define RFLAGS_CF      (1ull << 0)
#define RFLAGS_ZF      (1ull << 6)
#define RFLAGS_IF      (1ull << 9)
#define RFLAGS_AC      (1ull << 18)
#define MSR_TSC_AUX    0xc0000103u
#define KERNEL_CS      0x08

static unsigned int classes, skipped;
static struct {
	bool popcnt, lzcnt, bmi1, cx16, xsave, avx, rdtscp, rdpid, smap;
} has;

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

static bool ran(const char *cls, bool cond, const char *why)
{
	if (!cond) {
		report_skip(cls, why);
		skipped++;
		return false;
	}
	classes++;
	return true;
}

static void probe(void)
{
	uint32_t r[4], max, maxext;

	cpuid(0, 0, r);
	max = r[0];
	cpuid(1, 0, r);
	has.popcnt = (r[2] >> 23) & 1;
	has.cx16 = (r[2] >> 13) & 1;
	has.xsave = (r[2] >> 26) & 1;
	has.avx = (r[2] >> 28) & 1;
	if (max >= 7) {
		cpuid(7, 0, r);
		has.bmi1 = (r[1] >> 3) & 1;
		has.smap = (r[1] >> 20) & 1;
		has.rdpid = (r[2] >> 22) & 1;
	}
	cpuid(0x80000000u, 0, r);
	maxext = r[0];
	if (maxext >= 0x80000001u) {
		cpuid(0x80000001u, 0, r);
		has.lzcnt = (r[2] >> 5) & 1;
		has.rdtscp = (r[3] >> 27) & 1;
	}
	printf("CPUID popcnt=%d lzcnt=%d bmi1=%d cx16=%d xsave=%d avx=%d rdtscp=%d rdpid=%d "
	       "smap=%d\n",
	       has.popcnt, has.lzcnt, has.bmi1, has.cx16, has.xsave, has.avx, has.rdtscp, has.rdpid,
	       has.smap);
}

static uint64_t read_cr0(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static uint64_t read_cr4(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static uint64_t xgetbv(uint32_t index)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(index));
	return ((uint64_t)hi << 32) | lo;
}

static uint64_t rflags(void)
{
	uint64_t v;

	__asm__ volatile("pushfq; popq %0" : "=r"(v));
	return v;
}

/* --- setup: SSE always, XSAVE and AVX when CPUID has them --- */

static uint64_t xcr0_set;

static void enable_extended_state(void)
{
	uint64_t cr0 = (read_cr0() | CR0_MP) & ~(CR0_EM | CR0_TS);
	uint64_t cr4 = read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT;

	if (has.xsave)
		cr4 |= CR4_OSXSAVE;
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr0));
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
	if (!has.xsave)
		return;
	uint32_t r[4];

	cpuid(0xd, 0, r);
	xcr0_set = 0x3;
	if (has.avx && (r[0] & 4))
		xcr0_set |= 0x4;
	__asm__ volatile("xsetbv" : : "a"((uint32_t)xcr0_set), "d"(0), "c"(0));
	has.avx = has.avx && (xcr0_set & 4);
}

/* --- bit counting and testing --- */

static void test_bits(void)
{
	uint64_t v, flags;

	if (ran("popcnt", has.popcnt, "no CPUID.POPCNT")) {
		__asm__ volatile("popcnt %2, %0; pushfq; popq %1"
				 : "=&r"(v), "=r"(flags)
				 : "r"(0x8000000000000f01ull)
				 : "cc");
		report("popcnt-64", v == 6 && !(flags & RFLAGS_ZF));
		__asm__ volatile("popcnt %2, %0; pushfq; popq %1"
				 : "=&r"(v), "=r"(flags)
				 : "r"(0ull)
				 : "cc");
		report("popcnt-zero-zf", v == 0 && (flags & RFLAGS_ZF));
		uint32_t v32;

		__asm__ volatile("popcntl %1, %0"
				 : "=r"(v32)
				 : "m"((uint32_t){0xffff0000u})
				 : "cc");
		report("popcnt-32-mem", v32 == 16);
	}
	if (ran("lzcnt", has.lzcnt, "no CPUID.LZCNT")) {
		__asm__ volatile("lzcnt %2, %0; pushfq; popq %1"
				 : "=&r"(v), "=r"(flags)
				 : "r"(0x10ull)
				 : "cc");
		report("lzcnt-64", v == 59 && !(flags & RFLAGS_CF));
		__asm__ volatile("lzcnt %2, %0; pushfq; popq %1"
				 : "=&r"(v), "=r"(flags)
				 : "r"(0ull)
				 : "cc");
		report("lzcnt-zero-cf", v == 64 && (flags & RFLAGS_CF));
	}
	if (ran("tzcnt", has.bmi1, "no CPUID.BMI1")) {
		__asm__ volatile("tzcnt %2, %0; pushfq; popq %1"
				 : "=&r"(v), "=r"(flags)
				 : "r"(0x100ull)
				 : "cc");
		report("tzcnt-64", v == 8 && !(flags & RFLAGS_CF));
		uint16_t v16 = 0x5a5a;

		__asm__ volatile("tzcntw %2, %0; pushfq; popq %1"
				 : "+r"(v16), "=r"(flags)
				 : "r"((uint16_t)0)
				 : "cc");
		if (v16 == 0x5a5a && (flags & RFLAGS_ZF)) {
			/* BSF's answer: the destination untouched, ZF set. KVM's own instruction
			 * emulator, which interprets CPL0 code on KVM-PVM, ignores the F3 prefix;
			 * the VMM never sees the instruction. Known, reported, not ours to fail. */
			printf("KNOWN-HOST-BUG tzcnt-16-zero ran as bsf (dest 0x%x, rflags "
			       "0x%lx)\n",
			       v16, flags);
		} else if (!report("tzcnt-16-zero", v16 == 16 && (flags & RFLAGS_CF))) {
			printf("  tzcnt of 0 gave %u, rflags 0x%lx\n", v16, flags);
		}
	}
	if (ran("bt", true, "")) {
		static uint64_t bits[4];
		uint8_t cf;

		bits[0] = bits[1] = bits[2] = bits[3] = 0;
		/* A register offset beyond the operand addresses the bit string: 130 = qword 2,
		 * bit 2; -1 from &bits[2] is bit 63 of bits[1]. */
		__asm__ volatile("btsq %2, %1; setc %0" : "=r"(cf), "+m"(bits) : "r"(130ll) : "cc");
		report("bts-mem-far", !cf && bits[2] == 4);
		__asm__ volatile("btsq %2, %1; setc %0"
				 : "=r"(cf), "+m"(bits[2])
				 : "r"(-1ll)
				 : "cc", "memory");
		report("bts-mem-negative", !cf && bits[1] == (1ull << 63));
		__asm__ volatile("btcq %2, %1; setc %0"
				 : "=r"(cf), "+m"(bits[0])
				 : "r"(130ll)
				 : "cc", "memory");
		report("btc-mem", cf && bits[2] == 0);
		__asm__ volatile("btrq %2, %1; setc %0"
				 : "=r"(cf), "+m"(bits[0])
				 : "r"(127ll)
				 : "cc", "memory");
		report("btr-mem", cf && bits[1] == 0);
		v = 0x8000000000000001ull;
		__asm__ volatile("btq $63, %1; setc %0" : "=r"(cf) : "r"(v) : "cc");
		report("bt-reg-imm", cf);
		__asm__ volatile("btsq %2, %0" : "+r"(v) : "r"(65ll) : "cc"); /* modulo 64: bit 1 */
		report("bts-reg-modulo", v == 0x8000000000000003ull);
	}
}

/* --- extended state --- */

static uint8_t xarea[4096] __attribute__((aligned(64)));
static const uint8_t pattern[32] __attribute__((aligned(32))) = {
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba,
	0x98, 0x76, 0x54, 0x32, 0x10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
	0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x5a,
};

static void test_xsave(void)
{
	uint8_t out[32];
	uint16_t cw = 0x027f, cw_out = 0;
	uint64_t bv;

	if (ran("xgetbv", has.xsave, "no CPUID.XSAVE")) {
		report("xgetbv-xcr0", xgetbv(0) == xcr0_set);
		report("cr4-osxsave", (read_cr4() & CR4_OSXSAVE) != 0);
	}
	if (!ran("xsave", has.xsave, "no CPUID.XSAVE"))
		return;
	memset(xarea, 0, sizeof(xarea));
	__asm__ volatile("movdqu %0, %%xmm0" : : "m"(pattern));
	if (has.avx)
		__asm__ volatile("vmovdqu %0, %%ymm1" : : "m"(pattern));
	__asm__ volatile("fldcw %0" : : "m"(cw));
	__asm__ volatile("xsave %0" : "+m"(xarea) : "a"((uint32_t)xcr0_set), "d"(0) : "memory");
	memcpy(&bv, xarea + 512, 8);
	report("xsave-xmm0", memcmp(xarea + 160, pattern, 16) == 0);
	report("xsave-fcw", xarea[0] == 0x7f && xarea[1] == 0x02);
	report("xsave-xstate-bv", (bv & 3) == 3 && !(bv & ~xcr0_set));
	if (has.avx) {
		uint32_t r[4];

		cpuid(0xd, 2, r); /* EBX: where the AVX upper halves live */
		report("xsave-ymm1-upper",
		       r[1] + 32 <= sizeof(xarea) &&
			       memcmp(xarea + r[1] + 16, pattern + 16, 16) == 0);
	}
	/* Clobber, then restore. */
	__asm__ volatile("pxor %%xmm0, %%xmm0; fninit" : :);
	if (has.avx) /* VEX.128: zeroes all of YMM1 and needs only AVX (the .256 form is AVX2) */
		__asm__ volatile("vpxor %%xmm1, %%xmm1, %%xmm1" : :);
	__asm__ volatile("xrstor %0" : : "m"(xarea), "a"((uint32_t)xcr0_set), "d"(0) : "memory");
	__asm__ volatile("movdqu %%xmm0, %0" : "=m"(out) : : "memory");
	__asm__ volatile("fnstcw %0" : "=m"(cw_out));
	report("xrstor-xmm0", memcmp(out, pattern, 16) == 0);
	report("xrstor-fcw", cw_out == 0x027f);
	if (has.avx) {
		memset(out, 0, sizeof(out));
		__asm__ volatile("vmovdqu %%ymm1, %0" : "=m"(out) : : "memory");
		report("xrstor-ymm1", memcmp(out, pattern, 32) == 0);
	}
	__asm__ volatile("fninit");
}

static void test_fxsave(void)
{
	static uint8_t area[512] __attribute__((aligned(16)));
	uint8_t out[16];

	if (!ran("fxsave", true, ""))
		return;
	memset(area, 0, sizeof(area));
	__asm__ volatile("movdqu %0, %%xmm2" : : "m"(pattern));
	__asm__ volatile("fxsave64 %0" : "=m"(area) : : "memory");
	report("fxsave-xmm2", memcmp(area + 160 + 32, pattern, 16) == 0);
	report("fxsave-fcw", area[0] == 0x7f && area[1] == 0x03);
	__asm__ volatile("pxor %%xmm2, %%xmm2" : :);
	__asm__ volatile("fxrstor64 %0" : : "m"(area) : "memory");
	__asm__ volatile("movdqu %%xmm2, %0" : "=m"(out) : : "memory");
	report("fxrstor-xmm2", memcmp(out, pattern, 16) == 0);
}

static void test_x87(void)
{
	uint16_t cw = 0, sw = 0xffff;
	uint64_t one = 0;

	if (!ran("x87", true, ""))
		return;
	__asm__ volatile("fninit; fnstcw %0" : "=m"(cw));
	report("fninit-fnstcw", cw == 0x037f);
	/* fldcw: reserved bit 6 reads back as 1 on the CPU (and in mvm's emulator); QEMU's TCG
	 * keeps it 0. The rest must come back as written. */
	cw = 0x0c3f;
	__asm__ volatile("fldcw %1; fnstcw %0" : "=m"(cw) : "m"(cw));
	report("fldcw", (cw | 0x40) == 0x0c7f);
	__asm__ volatile("fninit; fld1; fnstsw %%ax; fstpl %0" : "=m"(one), "=a"(sw));
	report("fld1-fnstsw", sw == 0x3800);
	report("fstp-1.0", one == 0x3ff0000000000000ull);
	__asm__ volatile("fnclex; fninit");
}

/* --- SSE/AVX moves --- */

/* Emulated instructions whose bytes cross a page boundary. When KVM's own decoder gives up
 * before it needs the second page (pxor's opcode byte is on the first, its ModRM on the
 * second), the exit carries only the first page's bytes and the VMM must fetch the rest. */
/* clang-format off */
__asm__(".pushsection .text.emulate_cross, \"ax\"\n"
	".balign 4096\n"
	".skip 4093, 0xcc\n"
	".globl emulate_cross_pxor\n"
	"emulate_cross_pxor:\n"		/* xmm1 ^= xmm2, then rax = the low qword */
	"	pxor %xmm2, %xmm1\n"		/* 66 0f ef | ca */
	"	movq %xmm1, %rax\n"
	"	ret\n"
	".balign 4096\n"
	".skip 4093, 0xcc\n"
	".globl emulate_cross_movq\n"
	"emulate_cross_movq:\n"		/* rax = rcx through xmm1 */
	"	movq %rcx, %xmm1\n"		/* 66 48 0f | 6e c9 */
	"	movq %xmm1, %rax\n"
	"	ret\n"
	".popsection\n");
/* clang-format on */

static void test_sse(void)
{
	uint8_t out[32];
	uint64_t a = 0x0123456789abcdefull, b = 0, ones[2] = {~0ull, ~0ull}, q[2];

	if (ran("movq", true, "")) {
		__asm__ volatile("movq %1, %%xmm1; movq %%xmm1, %0" : "=r"(b) : "r"(a));
		report("movq-xmm-r64", b == a);
		/* movq to an XMM register zeroes bits 127:64. */
		__asm__ volatile("movdqu %1, %%xmm1; movq %2, %%xmm1; movdqu %%xmm1, %0"
				 : "=m"(q)
				 : "m"(ones), "r"(a));
		report("movq-zeroes-upper", q[0] == a && q[1] == 0);
		b = 0;
		__asm__ volatile("call emulate_cross_movq" : "=a"(b) : "c"(~a) : "memory");
		report("movq-across-pages", b == ~a);
		/* xmm1 = a, xmm2 = ~0: the pxor across pages leaves ~a. */
		__asm__ volatile("movq %1, %%xmm1; movdqu %2, %%xmm2; call emulate_cross_pxor"
				 : "=a"(b)
				 : "r"(a), "m"(ones)
				 : "memory");
		report("pxor-across-pages", b == ~a);
	}
	if (ran("movdqu", true, "")) {
		static uint8_t buf[48];

		memset(buf, 0, sizeof(buf));
		__asm__ volatile("movdqu %1, %%xmm3; movdqu %%xmm3, %0"
				 : "=m"(*(uint8_t(*)[16])(buf + 3))
				 : "m"(pattern));
		report("movdqu-unaligned",
		       memcmp(buf + 3, pattern, 16) == 0 && buf[2] == 0 && buf[19] == 0);
	}
	if (ran("pxor", true, "")) {
		__asm__ volatile("movdqu %1, %%xmm4; movdqu %2, %%xmm5; pxor %%xmm5, %%xmm4;"
				 "movdqu %%xmm4, %0"
				 : "=m"(q)
				 : "m"(pattern), "m"(ones));
		uint64_t p[2];

		memcpy(p, pattern, 16);
		report("pxor", q[0] == ~p[0] && q[1] == ~p[1]);
		__asm__ volatile("pxor %%xmm4, %%xmm4; movdqu %%xmm4, %0" : "=m"(q) :);
		report("pxor-self-zero", q[0] == 0 && q[1] == 0);
	}
	if (ran("vmovdqu", has.avx, "no AVX enabled in XCR0")) {
		memset(out, 0, sizeof(out));
		__asm__ volatile("vmovdqu %1, %%ymm6; vmovdqu %%ymm6, %0"
				 : "=m"(out)
				 : "m"(pattern));
		report("vmovdqu-ymm", memcmp(out, pattern, 32) == 0);
		/* A VEX.128 write zeroes bits 255:128. */
		__asm__ volatile("vmovdqu %1, %%ymm6; vmovdqu %2, %%xmm6; vmovdqu %%ymm6, %0"
				 : "=m"(out)
				 : "m"(pattern), "m"(ones));
		report("vex-zeroes-upper",
		       out[0] == 0xff && out[15] == 0xff && out[16] == 0 && out[31] == 0);
		__asm__ volatile("vzeroupper");
	}
}

static void test_cmpxchg16b(void)
{
	static uint64_t m[2] __attribute__((aligned(16)));
	uint64_t lo = 1, hi = 2;
	uint8_t zf;

	if (!ran("cmpxchg16b", has.cx16, "no CPUID.CX16"))
		return;
	m[0] = 1;
	m[1] = 2;
	__asm__ volatile("lock cmpxchg16b %1; setz %0"
			 : "=r"(zf), "+m"(m), "+a"(lo), "+d"(hi)
			 : "b"(3ull), "c"(4ull)
			 : "cc");
	report("cmpxchg16b-equal", zf && m[0] == 3 && m[1] == 4);
	lo = 1;
	hi = 2;
	__asm__ volatile("lock cmpxchg16b %1; setz %0"
			 : "=r"(zf), "+m"(m), "+a"(lo), "+d"(hi)
			 : "b"(5ull), "c"(6ull)
			 : "cc");
	report("cmpxchg16b-differ", !zf && lo == 3 && hi == 4 && m[0] == 3 && m[1] == 4);
}

/* --- system --- */

static void test_system(void)
{
	if (ran("rdtscp", has.rdtscp, "no CPUID.RDTSCP")) {
		uint32_t lo, hi, aux, lo0, hi0;

		__asm__ volatile("wrmsr" : : "c"(MSR_TSC_AUX), "a"(0x1234u), "d"(0u));
		__asm__ volatile("rdtsc" : "=a"(lo0), "=d"(hi0));
		__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
		report("rdtscp-aux", aux == 0x1234 && (uint32_t)rdmsr(MSR_TSC_AUX) == aux);
		report("rdtscp-after-rdtsc",
		       (((uint64_t)hi << 32) | lo) >= (((uint64_t)hi0 << 32) | lo0));
		if (ran("rdpid", has.rdpid, "no CPUID.RDPID")) {
			uint64_t pid = ~0ull;

			__asm__ volatile("rdpid %0" : "=r"(pid));
			report("rdpid", pid == 0x1234);
		}
	} else {
		report_skip("rdpid", "TSC_AUX needs RDTSCP");
		skipped++;
	}
	if (ran("lar-lsl", true, "")) {
		struct __attribute__((packed)) {
			uint16_t limit;
			uint64_t base;
		} gdtr;
		uint32_t ar = 0, limit = 0;
		uint8_t ok;

		__asm__ volatile("sgdt %0" : "=m"(gdtr));
		/* The runtime's GDT: 0x08 64-bit code, 0x10 flat data (entry.S). The accessed
		 * bit (8) depends on history: masked. */
		__asm__ volatile("lar %2, %0; setz %1" : "=r"(ar), "=r"(ok) : "r"(0x08u) : "cc");
		report("lar-code64", ok && (ar & ~0x100u) == 0x00a09a00u);
		__asm__ volatile("lar %2, %0; setz %1" : "=r"(ar), "=r"(ok) : "r"(0x10u) : "cc");
		report("lar-data", ok && (ar & ~0x100u) == 0x00c09200u);
		__asm__ volatile("lsl %2, %0; setz %1" : "=r"(limit), "=r"(ok) : "r"(0x10u) : "cc");
		report("lsl-data", ok && limit == 0xffffffffu);
		ar = 0x5a5a;
		__asm__ volatile("lar %2, %0; setz %1" : "+r"(ar), "=r"(ok) : "r"(0u) : "cc");
		report("lar-null", !ok && ar == 0x5a5a);
		__asm__ volatile("lar %2, %0; setz %1"
				 : "+r"(ar), "=r"(ok)
				 : "r"((uint32_t)(gdtr.limit + 1) & ~7u)
				 : "cc");
		report("lar-beyond-limit", !ok);
		__asm__ volatile("verr %1; setz %0" : "=r"(ok) : "r"((uint16_t)0x08) : "cc");
		report("verr-code", ok);
		__asm__ volatile("verw %1; setz %0" : "=r"(ok) : "r"((uint16_t)0x10) : "cc");
		report("verw-data", ok);
		__asm__ volatile("verw %1; setz %0" : "=r"(ok) : "r"((uint16_t)0x08) : "cc");
		report("verw-code", !ok);
	}
	if (ran("clac-stac", has.smap, "no CPUID.SMAP")) {
		uint64_t set, clear;

		__asm__ volatile("stac; pushfq; popq %0; clac; pushfq; popq %1"
				 : "=r"(set), "=r"(clear)
				 :
				 : "cc");
		report("stac", (set & RFLAGS_AC) != 0);
		report("clac", (clear & RFLAGS_AC) == 0);
	}
}

/* --- software interrupts through our own IDT --- */

struct idt_gate {
	uint64_t lo, hi;
};

static struct idt_gate my_idt[256] __attribute__((aligned(16)));

/* What the handlers saw; read by the C code after iretq. */
volatile uint64_t int3_frame[5], int80_frame[5];
volatile uint64_t int3_flags_inside, int80_flags_inside, int3_rsp_inside;
volatile uint32_t int3_count, int80_count;

/* clang-format off */
__asm__(".text\n"
	".globl emulate_int3_entry\n"
	"emulate_int3_entry:\n"
	"	pushq %rax\n"
	"	movq %rsp, int3_rsp_inside(%rip)\n"
	"	movq 8(%rsp), %rax\n	movq %rax, int3_frame+0(%rip)\n"
	"	movq 16(%rsp), %rax\n	movq %rax, int3_frame+8(%rip)\n"
	"	movq 24(%rsp), %rax\n	movq %rax, int3_frame+16(%rip)\n"
	"	movq 32(%rsp), %rax\n	movq %rax, int3_frame+24(%rip)\n"
	"	movq 40(%rsp), %rax\n	movq %rax, int3_frame+32(%rip)\n"
	"	pushfq\n	popq %rax\n	movq %rax, int3_flags_inside(%rip)\n"
	"	incl int3_count(%rip)\n"
	"	popq %rax\n"
	"	iretq\n"
	".globl emulate_int80_entry\n"
	"emulate_int80_entry:\n"
	"	pushq %rax\n"
	"	movq 8(%rsp), %rax\n	movq %rax, int80_frame+0(%rip)\n"
	"	movq 16(%rsp), %rax\n	movq %rax, int80_frame+8(%rip)\n"
	"	movq 24(%rsp), %rax\n	movq %rax, int80_frame+16(%rip)\n"
	"	movq 32(%rsp), %rax\n	movq %rax, int80_frame+24(%rip)\n"
	"	movq 40(%rsp), %rax\n	movq %rax, int80_frame+32(%rip)\n"
	"	pushfq\n	popq %rax\n	movq %rax, int80_flags_inside(%rip)\n"
	"	incl int80_count(%rip)\n"
	"	popq %rax\n"
	"	iretq\n");
/* clang-format on */

void emulate_int3_entry(void);
void emulate_int80_entry(void);

static struct idt_gate gate(void (*fn)(void), unsigned int type)
{
	uint64_t a = (uint64_t)(uintptr_t)fn;

	/* Present, DPL0, 64-bit interrupt (0xe) or trap (0xf) gate to the kernel CS. */
	return (struct idt_gate){
		.lo = (a & 0xffff) | ((uint64_t)KERNEL_CS << 16) | ((uint64_t)(0x80 | type) << 40) |
		      (((a >> 16) & 0xffff) << 48),
		.hi = a >> 32,
	};
}

static void test_interrupts(void)
{
	struct __attribute__((packed)) idtr {
		uint16_t limit;
		uint64_t base;
	} old, mine;
	uint64_t after3, after80, sp3;

	if (!ran("int3", true, "") || !ran("int80", true, ""))
		return;
	__asm__ volatile("sidt %0" : "=m"(old));
	memcpy(my_idt, (const void *)(uintptr_t)old.base,
	       old.limit + 1u < sizeof(my_idt) ? old.limit + 1u : sizeof(my_idt));
	my_idt[3] = gate(emulate_int3_entry, 0xe);
	my_idt[0x80] = gate(emulate_int80_entry, 0xf);
	mine = (struct idtr){.limit = sizeof(my_idt) - 1, .base = (uint64_t)(uintptr_t)my_idt};
	__asm__ volatile("lidt %0" : : "m"(mine));

	/* With IF set (nothing can interrupt: the PICs are masked, the LAPIC is off): the
	 * interrupt gate clears IF in the handler, the trap gate does not. */
	__asm__ volatile("movq %%rsp, %1\n\t"
			 "sti\n\t"
			 "int3\n"
			 "1:\tcli\n\t"
			 "leaq 1b(%%rip), %0"
			 : "=r"(after3), "=r"(sp3)
			 :
			 : "memory", "cc");
	__asm__ volatile("sti\n\t"
			 "int $0x80\n"
			 "1:\tcli\n\t"
			 "leaq 1b(%%rip), %0"
			 : "=r"(after80)
			 :
			 : "memory", "cc");
	__asm__ volatile("lidt %0" : : "m"(old));

	report("int3-delivered", int3_count == 1);
	report("int3-frame-rip", int3_frame[0] == after3);
	report("int3-frame-cs", int3_frame[1] == KERNEL_CS);
	report("int3-frame-rflags-if", (int3_frame[2] & RFLAGS_IF) != 0);
	report("int3-frame-rsp", int3_frame[3] == sp3);
	report("int3-frame-ss", int3_frame[4] == 0x10);
	report("int3-gate-clears-if", (int3_flags_inside & RFLAGS_IF) == 0);
	/* The frame starts 8 bytes above a 16-byte boundary: RSP was aligned, 5 slots pushed. */
	report("int3-stack-aligned", ((int3_rsp_inside + 8) & 15) == 8);
	report("int80-delivered", int80_count == 1);
	report("int80-frame-rip", int80_frame[0] == after80);
	report("int80-frame-cs", int80_frame[1] == KERNEL_CS);
	report("int80-trap-gate-keeps-if", (int80_flags_inside & RFLAGS_IF) != 0);
	report("if-clear-again", (rflags() & RFLAGS_IF) == 0);
}

void guest_main(const struct hvm_start_info *si)
{
	(void)si;
	probe();
	enable_extended_state();
	test_bits();
	test_xsave();
	test_fxsave();
	test_x87();
	test_sse();
	test_cmpxchg16b();
	test_system();
	test_interrupts();
	printf("EMULATE-CLASSES %u\n", classes);
	printf("EMULATE-SKIPPED %u\n", skipped);
	finish();
}
