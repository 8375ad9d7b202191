/* repint.c: interrupts during long REP string instructions. The LAPIC timer runs periodic
 * (divide 1, initial count 50000 by default: 50 us at the 1 GHz APIC clock of KVM and QEMU)
 * while the guest, with IF=1, repeats rounds (4 by default) of
 *   rep stosq   filling a buffer (4 MiB by default) with a value new in each round, then
 *   rep movsb   copying a pattern of that size into it, from a source offset new in each
 *               round (0..63 bytes, so most copies are not 8-byte aligned).
 * The timer handler looks at each interrupted frame: RIP at one of the two REP instructions
 * with 0 < RCX < the initial count means the instruction was interrupted mid-way. SDM vol. 2
 * REP and vol. 3A "Out-of-Order Stores For String Operations": the interrupt is precise, the
 * saved RIP points at the string instruction, RSI/RDI at the next element, RCX holds its value
 * after the last completed iteration. So RDI (and RSI) must have advanced by exactly
 * (initial - RCX) elements.
 * After each instruction RCX is 0 and RSI/RDI point past the buffers, and every round's
 * buffer is checked whole.
 *
 * Command line: rounds=N    rounds (default 4; 16 copy 64 MiB)
 *               kib=N       KiB per instruction (default and at most 4096)
 *               period=N    LAPIC timer initial count (default 50000)
 *               midway=optional   no interrupt mid-way prints INFO instead of FAIL
 *
 * Prints "REPINT irqs=<n> stosq-at=<n> stosq-midway=<n> movsb-at=<n> movsb-midway=<n>",
 * "PASS timer-irqs", "PASS rep-stosq-fill", "PASS rep-stosq-final-regs",
 * "PASS rep-stosq-interrupted-midway", "PASS rep-stosq-midway-regs", "PASS rep-movsb-copy",
 * "PASS rep-movsb-final-regs", "PASS rep-movsb-interrupted-midway",
 * "PASS rep-movsb-midway-regs", "RESULT PASS"; exits 0. Without a mid-way interrupt the
 * midway-regs check prints "SKIP ..." and the interrupted-midway one FAIL, or with
 * midway=optional "INFO rep-<insn>-interrupted-midway: none".
 * Host side: exit status 0, RESULT PASS, no FAIL. */
#include "guest.h"

#define BUF_MAX (4u << 20)
#define SLACK	64u /* source offsets 0..SLACK-1 */

static __attribute__((aligned(4096))) uint8_t src[BUF_MAX + SLACK], dst[BUF_MAX];

/* void rep_stosq_run(uint64_t *dst, uint64_t v, size_t n, uint64_t out[3])
 * void rep_movsb_run(void *dst, const void *src, size_t n, uint64_t out[3])
 * run the instruction with IF=1 and store RCX, RSI, RDI after it in out[]. The sti shadow
 * covers the mov, not the REP instruction. */
/* clang-format off */
__asm__(".text\n"
	".globl rep_stosq_run, rep_stosq_insn, rep_movsb_run, rep_movsb_insn\n"
	"rep_stosq_run:\n"
	"	mov %rcx, %r8\n"
	"	mov %rsi, %rax\n"
	"	sti\n"
	"	mov %rdx, %rcx\n"
	"rep_stosq_insn:\n"
	"	rep stosq\n"
	"	cli\n"
	"	jmp 1f\n"
	"rep_movsb_run:\n"
	"	mov %rcx, %r8\n"
	"	sti\n"
	"	mov %rdx, %rcx\n"
	"rep_movsb_insn:\n"
	"	rep movsb\n"
	"	cli\n"
	"1:	mov %rcx, (%r8)\n"
	"	mov %rsi, 8(%r8)\n"
	"	mov %rdi, 16(%r8)\n"
	"	ret\n");
/* clang-format on */
extern char rep_stosq_insn[], rep_movsb_insn[];
void rep_stosq_run(uint64_t *d, uint64_t v, size_t n, uint64_t out[3]);
void rep_movsb_run(void *d, const void *s, size_t n, uint64_t out[3]);

enum { STOSQ, MOVSB };
static const char *const insn_name[2] = {"stosq", "movsb"};

/* The instruction running now, for the handler. */
static volatile struct {
	uint64_t rip, src, dst, count, size;
} cur;

static volatile struct {
	unsigned int at, midway, bad_regs;
	uint64_t bad_rcx, bad_rsi, bad_rdi; /* the first inconsistent frame */
} seen[2];
static volatile unsigned int irqs;

static void on_timer(struct trap_frame *f)
{
	int k = cur.rip == (uint64_t)(uintptr_t)rep_movsb_insn ? MOVSB : STOSQ;
	uint64_t done;

	irqs++;
	if (!cur.rip || f->rip != cur.rip)
		return;
	seen[k].at++;
	if (f->rcx == 0 || f->rcx >= cur.count)
		return;
	seen[k].midway++;
	done = (cur.count - f->rcx) * cur.size;
	if (f->rdi != cur.dst + done || (k == MOVSB && f->rsi != cur.src + done)) {
		if (!seen[k].bad_regs++) {
			seen[k].bad_rcx = f->rcx;
			seen[k].bad_rsi = f->rsi;
			seen[k].bad_rdi = f->rdi;
		}
	}
}

static void set_cur(const char *rip, const void *s, const void *d, uint64_t count, uint64_t size)
{
	cur.src = (uint64_t)(uintptr_t)s;
	cur.dst = (uint64_t)(uintptr_t)d;
	cur.count = count;
	cur.size = size;
	cur.rip = (uint64_t)(uintptr_t)rip;
}

/* Compares the registers after the instruction with the ends of the buffers; prints the
 * first difference. */
static bool final_regs(const char *name, const uint64_t out[3], const void *s, const void *d,
		       uint64_t bytes)
{
	uint64_t want_rsi = s ? (uint64_t)(uintptr_t)s + bytes : out[1];
	uint64_t want_rdi = (uint64_t)(uintptr_t)d + bytes;

	if (out[0] == 0 && out[1] == want_rsi && out[2] == want_rdi)
		return true;
	printf("  %s: rcx 0x%lx rsi 0x%lx rdi 0x%lx (want 0, 0x%lx, 0x%lx)\n", name, out[0], out[1],
	       out[2], want_rsi, want_rdi);
	return false;
}

/* memcmp() a qword at a time: where CPL0 code is interpreted (KVM-PVM) a byte loop over
 * megabytes takes minutes. (n) is a multiple of 8; (b) need not be aligned. */
static bool same_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
	typedef uint64_t __attribute__((aligned(1), may_alias)) u64_unaligned;

	for (size_t i = 0; i < n; i += 8) {
		if (*(const u64_unaligned *)(a + i) != *(const u64_unaligned *)(b + i))
			return false;
	}
	return true;
}

static void report_midway(int k, bool optional)
{
	char name[48];

	snprintf(name, sizeof(name), "rep-%s-interrupted-midway", insn_name[k]);
	if (!seen[k].midway) {
		if (optional)
			printf("INFO %s: none\n", name);
		else
			report(name, false);
		snprintf(name, sizeof(name), "rep-%s-midway-regs", insn_name[k]);
		report_skip(name, "no mid-way interrupt");
		return;
	}
	report(name, true);
	if (seen[k].bad_regs)
		printf("  %u mid-way frames with RSI/RDI not matching RCX, first: rcx 0x%lx rsi "
		       "0x%lx rdi 0x%lx\n",
		       seen[k].bad_regs, seen[k].bad_rcx, seen[k].bad_rsi, seen[k].bad_rdi);
	reportf(!seen[k].bad_regs, "rep-%s-midway-regs", insn_name[k]);
}

void guest_main(const struct hvm_start_info *si)
{
	char midway[16] = "";
	unsigned int rounds = (unsigned int)cmdline_uint("rounds", 4);
	uint64_t kib = cmdline_uint("kib", BUF_MAX >> 10);
	const uint32_t buf = kib && kib <= BUF_MAX >> 10 ? (uint32_t)kib << 10 : BUF_MAX;
	uint32_t period = (uint32_t)cmdline_uint("period", 50000);
	bool fill_ok = true, fill_regs = true, copy_ok = true, copy_regs = true;
	uint64_t out[3], x = 0x9e3779b97f4a7c15ull;

	(void)si;
	cmdline_get("midway", midway, sizeof(midway));
	if (!rounds)
		rounds = 1;
	for (unsigned int i = 0; i < (buf + SLACK) / 8; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		((uint64_t *)src)[i] = x;
	}
	lapic_init();
	ioapic_mask_all();
	irq_register(VEC_LAPIC_TIMER, on_timer);
	lapic_timer_start(VEC_LAPIC_TIMER, 1, period, true);

	for (unsigned int r = 0; r < rounds; r++) {
		const uint64_t v = 0x0101010101010101ull * (r + 1) ^ 0x8000000000000001ull;
		const uint64_t *q = (const uint64_t *)dst;
		const uint8_t *s = src + (r * 7) % SLACK;

		set_cur(rep_stosq_insn, NULL, dst, buf / 8, 8);
		rep_stosq_run((uint64_t *)dst, v, buf / 8, out);
		cur.rip = 0;
		fill_regs = final_regs("rep-stosq-final-regs", out, NULL, dst, buf) && fill_regs;
		for (unsigned int i = 0; i < buf / 8 && fill_ok; i++) {
			if (q[i] != v) {
				printf("  round %u: qword %u = 0x%lx (want 0x%lx)\n", r, i, q[i],
				       v);
				fill_ok = false;
			}
		}

		set_cur(rep_movsb_insn, s, dst, buf, 1);
		rep_movsb_run(dst, s, buf, out);
		cur.rip = 0;
		copy_regs = final_regs("rep-movsb-final-regs", out, s, dst, buf) && copy_regs;
		if (copy_ok && !same_bytes(dst, s, buf)) {
			printf("  round %u: the copy differs from the source\n", r);
			copy_ok = false;
		}
	}
	lapic_timer_stop();

	printf("REPINT irqs=%u stosq-at=%u stosq-midway=%u movsb-at=%u movsb-midway=%u\n", irqs,
	       seen[STOSQ].at, seen[STOSQ].midway, seen[MOVSB].at, seen[MOVSB].midway);
	report("timer-irqs", irqs > 0);
	report("rep-stosq-fill", fill_ok);
	report("rep-stosq-final-regs", fill_regs);
	report_midway(STOSQ, !strcmp(midway, "optional"));
	report("rep-movsb-copy", copy_ok);
	report("rep-movsb-final-regs", copy_regs);
	report_midway(MOVSB, !strcmp(midway, "optional"));
	finish();
}
