/* emu_native.h: runs instruction bytes on the host CPU at user level, for comparing the
 * emulator with the real thing. The bytes go between a prologue that loads the general
 * registers (not RSP), RFLAGS and XMM0-3 from a struct native_regs, and an epilogue that
 * stores them back; the three are copied into an mmap'ed page made executable.
 *
 * Memory operands must be addressed through registers (e.g. [rsi]) so that the same bytes can
 * point at a host buffer natively and at guest memory in the emulator. RFLAGS must not have
 * TF, DF or AC set. dual_run() runs the same bytes from the same registers and buffer in the
 * emulator (on emu_fixture.h's fake guest) and natively; dual_same() compares the two. */
#ifndef MVM_TEST_EMU_NATIVE_H
#define MVM_TEST_EMU_NATIVE_H

#include <cpuid.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "emu_fixture.h"

struct native_regs {
	uint64_t gpr[16]; /* encoding order; gpr[4] (RSP) is ignored */
	uint64_t rflags;
	uint64_t pad;
	uint8_t xmm[4][16];
};
_Static_assert(__builtin_offsetof(struct native_regs, rflags) == 128, "native_regs layout");
_Static_assert(__builtin_offsetof(struct native_regs, xmm) == 144, "native_regs layout");

/* Both pieces are position-independent and only copied, never called where they are. */
/* clang-format off */
__asm__(".pushsection .rodata\n"
	".globl native_prologue, native_prologue_end, native_epilogue, native_epilogue_end\n"
	"native_prologue:\n"
	"	push %rbx\n	push %rbp\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
	"	push %rdi\n"
	"	movdqu 144(%rdi), %xmm0\n	movdqu 160(%rdi), %xmm1\n"
	"	movdqu 176(%rdi), %xmm2\n	movdqu 192(%rdi), %xmm3\n"
	"	pushq 128(%rdi)\n	popfq\n"
	"	mov 0(%rdi), %rax\n	mov 8(%rdi), %rcx\n	mov 16(%rdi), %rdx\n"
	"	mov 24(%rdi), %rbx\n	mov 40(%rdi), %rbp\n	mov 48(%rdi), %rsi\n"
	"	mov 64(%rdi), %r8\n	mov 72(%rdi), %r9\n	mov 80(%rdi), %r10\n"
	"	mov 88(%rdi), %r11\n	mov 96(%rdi), %r12\n	mov 104(%rdi), %r13\n"
	"	mov 112(%rdi), %r14\n	mov 120(%rdi), %r15\n"
	"	mov 56(%rdi), %rdi\n"
	"native_prologue_end:\n"
	"native_epilogue:\n"
	"	pushfq\n	push %rdi\n"
	"	mov 16(%rsp), %rdi\n"
	"	popq 56(%rdi)\n	popq 128(%rdi)\n"
	"	mov %rax, 0(%rdi)\n	mov %rcx, 8(%rdi)\n	mov %rdx, 16(%rdi)\n"
	"	mov %rbx, 24(%rdi)\n	mov %rbp, 40(%rdi)\n	mov %rsi, 48(%rdi)\n"
	"	mov %r8, 64(%rdi)\n	mov %r9, 72(%rdi)\n	mov %r10, 80(%rdi)\n"
	"	mov %r11, 88(%rdi)\n	mov %r12, 96(%rdi)\n	mov %r13, 104(%rdi)\n"
	"	mov %r14, 112(%rdi)\n	mov %r15, 120(%rdi)\n"
	"	movdqu %xmm0, 144(%rdi)\n	movdqu %xmm1, 160(%rdi)\n"
	"	movdqu %xmm2, 176(%rdi)\n	movdqu %xmm3, 192(%rdi)\n"
	"	pop %rdi\n"
	"	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbp\n	pop %rbx\n"
	"	cld\n"
	"	ret\n"
	"native_epilogue_end:\n"
	".popsection\n");
/* clang-format on */

extern const uint8_t native_prologue[], native_prologue_end[];
extern const uint8_t native_epilogue[], native_epilogue_end[];

/* Runs (insn, len) on the host with (r) as input and output. Returns false if the page could
 * not be mapped (the caller then skips the comparison). */
static inline bool native_run(const uint8_t *insn, size_t len, struct native_regs *r)
{
	static uint8_t *page;
	size_t pro = (size_t)(native_prologue_end - native_prologue);
	size_t epi = (size_t)(native_epilogue_end - native_epilogue);
	void (*fn)(struct native_regs *);

	if (!page) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);

		if (p == MAP_FAILED)
			return false;
		page = p;
	}
	if (pro + len + epi > 4096 || mprotect(page, 4096, PROT_READ | PROT_WRITE))
		return false;
	memcpy(page, native_prologue, pro);
	memcpy(page + pro, insn, len);
	memcpy(page + pro + len, native_epilogue, epi);
	if (mprotect(page, 4096, PROT_READ | PROT_EXEC))
		return false;
	__builtin___clear_cache((char *)page, (char *)page + 4096);
	fn = (void (*)(struct native_regs *))(void *)page;
	fn(r);
	return true;
}

/* --- running the same bytes in the emulator (emu_fixture.h) and on the host --- */

#define GBUF	 (FX_DATA + 0x2000) /* guest buffer for memory operands */
#define BUF_SIZE 1024

static unsigned int native_compared, native_skipped; /* per test program */

static struct {
	bool popcnt, lzcnt, bmi1, cx16;
} host;

static inline void host_features(void)
{
	unsigned int a, b, c, d;

	if (__get_cpuid(1, &a, &b, &c, &d)) {
		host.popcnt = (c >> 23) & 1;
		host.cx16 = (c >> 13) & 1;
	}
	if (__get_cpuid(0x80000001, &a, &b, &c, &d))
		host.lzcnt = (c >> 5) & 1;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d))
		host.bmi1 = (b >> 3) & 1;
}

struct dual {
	struct native_regs emu, nat;
	_Alignas(64) uint8_t emu_mem[BUF_SIZE];
	_Alignas(64) uint8_t nat_mem[BUF_SIZE];
	struct emu_result res;
	bool native_ok;
};

/* Runs (insn) from (in) and buffer (mem) in both. Register (ptr), if >= 0, holds an offset into
 * the buffer: a guest address in the emulator, a host address natively. */
static inline void dual_run(struct fx *fx, const uint8_t *insn, size_t len,
			    const struct native_regs *in, const uint8_t *mem, int ptr,
			    bool run_native, struct dual *d)
{
	static _Alignas(64) uint8_t nbuf[BUF_SIZE];
	struct emu_cpu c;

	fx_init_cpu(&c);
	for (int i = 0; i < 16; i++)
		if (i != EMU_RSP)
			c.gpr[i] = in->gpr[i];
	c.rflags = in->rflags;
	for (int i = 0; i < 4; i++)
		fx_set_xmm(&c, i, in->xmm[i]);
	if (ptr >= 0)
		c.gpr[ptr] = GBUF + in->gpr[ptr];
	memcpy(fx->ram + GBUF, mem, BUF_SIZE);
	fx_step(fx, &c, insn, (unsigned int)len, &d->res);
	memcpy(d->emu.gpr, c.gpr, sizeof(c.gpr));
	if (ptr >= 0)
		d->emu.gpr[ptr] = c.gpr[ptr] - GBUF;
	d->emu.gpr[EMU_RSP] = 0;
	d->emu.rflags = c.rflags;
	for (int i = 0; i < 4; i++)
		fx_get_xmm(&c, i, d->emu.xmm[i]);
	memcpy(d->emu_mem, fx->ram + GBUF, BUF_SIZE);

	d->native_ok = false;
	if (!run_native)
		return;
	d->nat = *in;
	memcpy(nbuf, mem, BUF_SIZE);
	if (ptr >= 0)
		d->nat.gpr[ptr] = (uint64_t)(uintptr_t)nbuf + in->gpr[ptr];
	if (!native_run(insn, len, &d->nat)) {
		native_skipped++;
		return;
	}
	if (ptr >= 0)
		d->nat.gpr[ptr] -= (uint64_t)(uintptr_t)nbuf;
	d->nat.gpr[EMU_RSP] = 0;
	memcpy(d->nat_mem, nbuf, BUF_SIZE);
	d->native_ok = true;
	native_compared++;
}

/* Compares the emulator's result with the host's: all registers but RSP, the flags in
 * (flags), XMM0-3 and the buffer. */
static inline bool dual_same(const struct dual *d, uint64_t flags)
{
	bool same = true;

	if (!d->native_ok)
		return true;
	for (int i = 0; i < 16; i++) {
		if (d->emu.gpr[i] != d->nat.gpr[i]) {
			fprintf(stderr, "  gpr %d: emulator 0x%llx host 0x%llx\n", i,
				(unsigned long long)d->emu.gpr[i],
				(unsigned long long)d->nat.gpr[i]);
			same = false;
		}
	}
	if ((d->emu.rflags ^ d->nat.rflags) & flags) {
		fprintf(stderr, "  rflags & 0x%llx: emulator 0x%llx host 0x%llx\n",
			(unsigned long long)flags, (unsigned long long)(d->emu.rflags & flags),
			(unsigned long long)(d->nat.rflags & flags));
		same = false;
	}
	if (memcmp(d->emu.xmm, d->nat.xmm, sizeof(d->emu.xmm))) {
		fprintf(stderr, "  xmm0-3 differ\n");
		same = false;
	}
	if (memcmp(d->emu_mem, d->nat_mem, BUF_SIZE)) {
		fprintf(stderr, "  memory differs\n");
		same = false;
	}
	return same;
}

static inline void print_insn(const uint8_t *insn, size_t len)
{
	fprintf(stderr, "  bytes:");
	for (size_t i = 0; i < len; i++)
		fprintf(stderr, " %02x", insn[i]);
	fprintf(stderr, "\n");
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static inline bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

#endif
