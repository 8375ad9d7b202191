/* test_emu_uops.c: the engine's uops (emu/vcpu.h) against the host CPU. Short sequences of
 * integer instructions run natively and one instruction at a time on an emu_vcpu, with lazy
 * flags carried from one instruction to the next as in the engine (so "cmp; setcc" checks the
 * conditions computed from lazy operands); registers, the flags each instruction defines and
 * a memory buffer must match. Random inputs, a fixed seed. */
#include <stdio.h>

#include "emu/vcpu.h"
#include "emu_native.h"
#include "test.h"

enum setup { ANY, DIV, IDIV, SMALL_RBX, COUNT_CL };

struct seq {
	const char *name;
	uint8_t len;
	uint8_t insn[16];
	uint64_t flags;		/* flags defined after the sequence */
	enum setup setup;
};

#define F FX_ARITH
#define CF_OF (FX_CF | FX_OF)
#define S(name, flags, setup, ...)                                                                \
	{name, sizeof((uint8_t[]){__VA_ARGS__}), {__VA_ARGS__}, flags, setup}

static const struct seq seqs[] = {
	S("add r64", F, ANY, 0x48, 0x01, 0xd8),
	S("add r32", F, ANY, 0x01, 0xd8),
	S("add r16", F, ANY, 0x66, 0x01, 0xd8),
	S("add r8", F, ANY, 0x00, 0xd8),
	S("add ah,bh", F, ANY, 0x00, 0xfc),
	S("adc r64", F, ANY, 0x48, 0x11, 0xd8),
	S("adc r8", F, ANY, 0x10, 0xd8),
	S("sbb r32", F, ANY, 0x19, 0xd8),
	S("sub r64", F, ANY, 0x48, 0x29, 0xd8),
	S("cmp r16", F, ANY, 0x66, 0x39, 0xd8),
	S("and r64", F & ~FX_AF, ANY, 0x48, 0x21, 0xd8),
	S("or r32", F & ~FX_AF, ANY, 0x09, 0xd8),
	S("xor r8", F & ~FX_AF, ANY, 0x30, 0xd8),
	S("test r64", F & ~FX_AF, ANY, 0x48, 0x85, 0xd8),
	S("add [rsi],rbx", F, ANY, 0x48, 0x01, 0x1e),
	S("add rbx,[rsi]", F, ANY, 0x48, 0x03, 0x1e),
	S("sub dword [rsi],imm32", F, ANY, 0x81, 0x2e, 0x78, 0x56, 0x34, 0x12),
	S("add byte [rsi+8],imm8", F, ANY, 0x80, 0x46, 0x08, 0x7f),
	S("add rax,-128", F, ANY, 0x48, 0x83, 0xc0, 0x80),
	S("cmp ebx,imm32", F, ANY, 0x81, 0xfb, 0xff, 0xff, 0xff, 0x7f),
	S("and rax,imm8", F & ~FX_AF, ANY, 0x48, 0x83, 0xe0, 0xf0),
	S("inc rax", F, ANY, 0x48, 0xff, 0xc0),
	S("dec eax", F, ANY, 0xff, 0xc8),
	S("inc ah", F, ANY, 0xfe, 0xc4),
	S("dec word [rsi]", F, ANY, 0x66, 0xff, 0x0e),
	S("neg rax", F, ANY, 0x48, 0xf7, 0xd8),
	S("neg bl", F, ANY, 0xf6, 0xdb),
	S("not rax", F, ANY, 0x48, 0xf7, 0xd0),
	S("mul rbx", CF_OF, ANY, 0x48, 0xf7, 0xe3),
	S("mul bl", CF_OF, ANY, 0xf6, 0xe3),
	S("imul ebx", CF_OF, ANY, 0xf7, 0xeb),
	S("imul rax,rbx", CF_OF, ANY, 0x48, 0x0f, 0xaf, 0xc3),
	S("imul rax,rbx,-3", CF_OF, ANY, 0x48, 0x6b, 0xc3, 0xfd),
	S("imul cx,[rsi],0x1234", CF_OF, ANY, 0x66, 0x69, 0x0e, 0x34, 0x12),
	S("div rbx", 0, DIV, 0x48, 0xf7, 0xf3),
	S("div ebx", 0, DIV, 0xf7, 0xf3),
	S("div bl", 0, DIV, 0xf6, 0xf3),
	S("idiv rbx", 0, IDIV, 0x48, 0xf7, 0xfb),
	S("idiv ebx", 0, IDIV, 0xf7, 0xfb),
	S("shl rax,cl", 0, COUNT_CL, 0x48, 0xd3, 0xe0),
	S("shl rax,1", F & ~FX_AF, ANY, 0x48, 0xd1, 0xe0),
	S("shr rax,5", F & ~FX_AF & ~FX_OF, ANY, 0x48, 0xc1, 0xe8, 0x05),
	S("sar eax,1", F & ~FX_AF, ANY, 0xd1, 0xf8),
	S("sar rax,63", F & ~FX_AF & ~FX_OF, ANY, 0x48, 0xc1, 0xf8, 0x3f),
	S("shl al,3", F & ~FX_AF & ~FX_OF, ANY, 0xc0, 0xe0, 0x03),
	S("shr word [rsi],7", F & ~FX_AF & ~FX_OF, ANY, 0x66, 0xc1, 0x2e, 0x07),
	S("rol eax,cl", 0, COUNT_CL, 0xd3, 0xc0),
	S("rol rax,1", CF_OF, ANY, 0x48, 0xd1, 0xc0),
	S("ror rax,13", FX_CF, ANY, 0x48, 0xc1, 0xc8, 0x0d),
	S("rcl rax,1", CF_OF, ANY, 0x48, 0xd1, 0xd0),
	S("rcr rax,3", FX_CF, ANY, 0x48, 0xc1, 0xd8, 0x03),
	S("rcl bl,5", FX_CF, ANY, 0xc0, 0xd3, 0x05),
	S("shld rax,rbx,7", F & ~FX_AF & ~FX_OF, ANY, 0x48, 0x0f, 0xa4, 0xd8, 0x07),
	S("shrd eax,ebx,5", F & ~FX_AF & ~FX_OF, ANY, 0x0f, 0xac, 0xd8, 0x05),
	S("shld rax,rbx,1", F & ~FX_AF, ANY, 0x48, 0x0f, 0xa4, 0xd8, 0x01),
	S("movzx rax,bl", 0, ANY, 0x48, 0x0f, 0xb6, 0xc3),
	S("movsx eax,bx", 0, ANY, 0x0f, 0xbf, 0xc3),
	S("movsxd rax,ebx", 0, ANY, 0x48, 0x63, 0xc3),
	S("movzx ecx,byte [rsi+3]", 0, ANY, 0x0f, 0xb6, 0x4e, 0x03),
	S("mov [rsi+16],ebx", 0, ANY, 0x89, 0x5e, 0x10),
	S("mov cx,[rsi+2]", 0, ANY, 0x66, 0x8b, 0x4e, 0x02),
	S("mov ah,[rsi]", 0, ANY, 0x8a, 0x26),
	S("mov rax,imm64", 0, ANY, 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 0x88),
	S("mov dword [rsi],imm32", 0, ANY, 0xc7, 0x06, 0xef, 0xbe, 0xad, 0xde),
	S("lea rax,[rdx+rbx*2+0x10]", 0, ANY, 0x48, 0x8d, 0x44, 0x5a, 0x10),
	S("lea eax,[rbx+rcx*8-1]", 0, ANY, 0x8d, 0x44, 0xcb, 0xff),
	S("xchg rax,rbx", 0, ANY, 0x48, 0x93),
	S("xchg [rsi],ecx", 0, ANY, 0x87, 0x0e),
	S("xadd rax,rbx", F, ANY, 0x48, 0x0f, 0xc1, 0xd8),
	S("xadd [rsi],ebx", F, ANY, 0x0f, 0xc1, 0x1e),
	S("cmpxchg rcx,rbx", F, ANY, 0x48, 0x0f, 0xb1, 0xd9),
	S("cmpxchg [rsi],rbx", F, ANY, 0x48, 0x0f, 0xb1, 0x1e),
	S("cmpxchg eq", F, ANY, 0x48, 0x89, 0xc1, 0x48, 0x0f, 0xb1, 0xd9),
	S("bswap rax", 0, ANY, 0x48, 0x0f, 0xc8),
	S("bswap ebx", 0, ANY, 0x0f, 0xcb),
	S("cbw", 0, ANY, 0x66, 0x98),
	S("cwde", 0, ANY, 0x98),
	S("cdqe", 0, ANY, 0x48, 0x98),
	S("cqo", 0, ANY, 0x48, 0x99),
	S("cdq", 0, ANY, 0x99),
	S("lahf", 0, ANY, 0x9f),
	S("add; sahf", F, ANY, 0x48, 0x01, 0xd8, 0x9e),
	S("bt rax,rbx", FX_CF, ANY, 0x48, 0x0f, 0xa3, 0xd8),
	S("bts rax,5", FX_CF, ANY, 0x48, 0x0f, 0xba, 0xe8, 0x05),
	S("btr [rsi],rbx", FX_CF, SMALL_RBX, 0x48, 0x0f, 0xb3, 0x1e),
	S("btc dword [rsi+4],31", FX_CF, ANY, 0x0f, 0xba, 0x7e, 0x04, 0x1f),
	S("bsf rax,rbx", FX_ZF, ANY, 0x48, 0x0f, 0xbc, 0xc3),
	S("bsr ecx,[rsi]", FX_ZF, ANY, 0x0f, 0xbd, 0x0e),
	S("clc; cmc", FX_CF, ANY, 0xf8, 0xf5),
	S("stc; adc rax,rbx", F, ANY, 0xf9, 0x48, 0x11, 0xd8),
	/* Conditions from the lazy operands of each kind of operation. */
	S("cmp r64; setl", F, ANY, 0x48, 0x39, 0xd8, 0x0f, 0x9c, 0xc1),
	S("cmp r32; setbe", F, ANY, 0x39, 0xd8, 0x0f, 0x96, 0xc1),
	S("cmp r8; setg", F, ANY, 0x38, 0xd8, 0x0f, 0x9f, 0xc1),
	S("cmp r16; setae", F, ANY, 0x66, 0x39, 0xd8, 0x0f, 0x93, 0xc1),
	S("cmp r64; seto", F, ANY, 0x48, 0x39, 0xd8, 0x0f, 0x90, 0xc1),
	S("sub; setp", F, ANY, 0x48, 0x29, 0xd8, 0x0f, 0x9a, 0xc1),
	S("add; seta", F, ANY, 0x48, 0x01, 0xd8, 0x0f, 0x97, 0xc1),
	S("add r8; setle", F, ANY, 0x00, 0xd8, 0x0f, 0x9e, 0xc1),
	S("test; setle", F & ~FX_AF, ANY, 0x48, 0x85, 0xd8, 0x0f, 0x9e, 0xc1),
	S("test; sets", F & ~FX_AF, ANY, 0x85, 0xd8, 0x0f, 0x98, 0xc1),
	S("and; setbe", F & ~FX_AF, ANY, 0x48, 0x21, 0xd8, 0x0f, 0x96, 0xc1),
	S("inc; setne", F, ANY, 0xff, 0xc0, 0x0f, 0x95, 0xc1),
	S("dec; setno", F, ANY, 0x48, 0xff, 0xc8, 0x0f, 0x91, 0xc1),
	S("sbb; setb", F, ANY, 0x48, 0x19, 0xd8, 0x0f, 0x92, 0xc1),
	S("adc r16; setge", F, ANY, 0x66, 0x11, 0xd8, 0x0f, 0x9d, 0xc1),
	S("neg; setb", F, ANY, 0x48, 0xf7, 0xd8, 0x0f, 0x92, 0xc1),
	S("cmp; cmovl", F, ANY, 0x48, 0x39, 0xd8, 0x48, 0x0f, 0x4c, 0xc3),
	S("cmp; cmova r32", F, ANY, 0x39, 0xd8, 0x0f, 0x47, 0xc3),
	S("xor; cmovz r32", F & ~FX_AF, ANY, 0x31, 0xd8, 0x0f, 0x44, 0xc1),
	S("xadd; setg", F, ANY, 0x48, 0x0f, 0xc1, 0xd8, 0x0f, 0x9f, 0xc1),
	S("cmpxchg; setz", F, ANY, 0x48, 0x0f, 0xb1, 0xd9, 0x0f, 0x94, 0xc2),
};

static uint64_t step_tsc(struct emu_vcpu *v)
{
	return v->cpu.tsc;
}

/* Runs (s) on an emu_vcpu, one instruction at a time, from (in) and buffer (mem). */
static bool run_uops(struct fx *fx, const struct seq *s, const struct native_regs *in,
		     const uint8_t *mem, struct native_regs *out, uint8_t *out_mem)
{
	static const struct emu_platform plat = {.tsc = step_tsc};
	static struct emu_vcpu v;
	uint64_t start, end;

	emu_vcpu_init(&v, 0, &fx->env, &plat);
	fx_init_cpu(&v.cpu);
	for (int i = 0; i < 16; i++)
		if (i != EMU_RSP)
			v.cpu.gpr[i] = in->gpr[i];
	v.cpu.gpr[EMU_RSI] = GBUF + in->gpr[EMU_RSI];
	emu_flags_set(&v, in->rflags);
	emu_vcpu_mode_changed(&v, true);
	memcpy(fx->ram + GBUF, mem, BUF_SIZE);
	start = v.cpu.rip;
	end = start + s->len;
	memcpy(fx->ram + start, s->insn, s->len);
	while (v.cpu.rip != end) {
		int ret = emu_vcpu_step(&v);

		if (ret != EXIT_NEXT) {
			fprintf(stderr, "  %s: exit %d at 0x%llx (%s)\n", s->name, ret,
				(unsigned long long)v.cpu.rip, v.why);
			return false;
		}
	}
	memcpy(out->gpr, v.cpu.gpr, sizeof(out->gpr));
	out->gpr[EMU_RSI] -= GBUF;
	out->gpr[EMU_RSP] = 0;
	out->rflags = emu_flags(&v);
	memcpy(out_mem, fx->ram + GBUF, BUF_SIZE);
	return true;
}

static void setup_inputs(const struct seq *s, struct native_regs *in)
{
	for (int i = 0; i < 16; i++)
		in->gpr[i] = rng() >> (rng() & 63); /* all magnitudes */
	in->gpr[EMU_RSI] = 64;			 /* offset into the buffer */
	in->rflags = 2 | (rng() & (FX_CF | FX_PF | FX_AF | FX_ZF | FX_SF | FX_OF));
	switch (s->setup) {
	case DIV:
		in->gpr[EMU_RDX] = 0;
		in->gpr[EMU_RBX] |= 1;
		in->gpr[EMU_RAX] &= 0xff; /* div bl: AX / BL must fit in AL */
		in->gpr[EMU_RAX] |= rng() & ~0xffffull;
		break;
	case IDIV:
		/* RAX sign-extended from EAX and RDX the sign of both: EDX:EAX and RDX:RAX are
		 * both sign extensions, so the 32- and 64-bit forms cannot overflow. */
		in->gpr[EMU_RAX] = (uint64_t)(int64_t)(int32_t)in->gpr[EMU_RAX];
		in->gpr[EMU_RDX] = (int64_t)in->gpr[EMU_RAX] < 0 ? ~0ull : 0;
		in->gpr[EMU_RBX] = (in->gpr[EMU_RBX] | 0x100) & 0x7fffffff7fffffffull;
		break;
	case SMALL_RBX:
		in->gpr[EMU_RBX] &= 0x7ff; /* the bit string stays inside the buffer */
		break;
	case COUNT_CL:
		in->gpr[EMU_RCX] = rng() % 70;
		break;
	default:
		break;
	}
}

static void test_corpus(struct fx *fx)
{
	static _Alignas(64) uint8_t mem[BUF_SIZE], nbuf[BUF_SIZE], emem[BUF_SIZE];

	for (size_t k = 0; k < sizeof(seqs) / sizeof(seqs[0]); k++) {
		const struct seq *s = &seqs[k];

		for (int round = 0; round < 200; round++) {
			struct native_regs in, nat, emu = {0};
			int before = t_failures;
			uint64_t flags = s->flags;

			setup_inputs(s, &in);
			for (size_t i = 0; i < BUF_SIZE; i++)
				mem[i] = (uint8_t)rng();
			/* Shifts by CL define the flags only for counts the SDM specifies. */
			if (s->setup == COUNT_CL) {
				unsigned int n = in.gpr[EMU_RCX] & 63;

				flags = n == 0 ? FX_ARITH : n == 1 ? FX_CF | FX_OF : FX_CF;
				if (s->insn[1] == 0xd3 && (s->insn[2] & 0x38) == 0x20) /* shl */
					flags = n == 0 ? FX_ARITH : (FX_ARITH & ~FX_AF & ~FX_OF) |
								     (n == 1 ? FX_OF : 0);
			}
			nat = in;
			memcpy(nbuf, mem, BUF_SIZE);
			nat.gpr[EMU_RSI] = (uint64_t)(uintptr_t)nbuf + in.gpr[EMU_RSI];
			if (!native_run(s->insn, s->len, &nat)) {
				native_skipped++;
				continue;
			}
			nat.gpr[EMU_RSI] -= (uint64_t)(uintptr_t)nbuf;
			nat.gpr[EMU_RSP] = 0;
			native_compared++;
			CHECK(run_uops(fx, s, &in, mem, &emu, emem));
			for (int i = 0; i < 16; i++)
				CHECK_EQ(emu.gpr[i], nat.gpr[i]);
			CHECK_EQ(emu.rflags & flags, nat.rflags & flags);
			CHECK(memcmp(emem, nbuf, BUF_SIZE) == 0);
			if (t_failures != before) {
				fprintf(stderr, "  %s (round %d, rax %llx rbx %llx rcx %llx rflags %llx)\n",
					s->name, round, (unsigned long long)in.gpr[EMU_RAX],
					(unsigned long long)in.gpr[EMU_RBX],
					(unsigned long long)in.gpr[EMU_RCX],
					(unsigned long long)in.rflags);
				print_insn(s->insn, s->len);
				return;
			}
		}
	}
}

/* A fault in the middle of a sequence leaves the state as of the faulting instruction:
 * registers changed by the instructions before it, nothing by it. */
static void test_precise_fault(struct fx *fx)
{
	static const struct emu_platform plat = {.tsc = step_tsc};
	static struct emu_vcpu v;
	/* add rax, rbx; add [rdi], rax (rdi unmapped); inc rax */
	static const uint8_t code[] = {0x48, 0x01, 0xd8, 0x48, 0x01, 0x07, 0x48, 0xff, 0xc0};
	int ret;

	emu_vcpu_init(&v, 0, &fx->env, &plat);
	fx_init_cpu(&v.cpu);
	emu_vcpu_mode_changed(&v, true);
	memcpy(fx->ram + v.cpu.rip, code, sizeof(code));
	v.cpu.gpr[EMU_RAX] = 5;
	v.cpu.gpr[EMU_RBX] = 7;
	v.cpu.gpr[EMU_RDI] = 0x7fff00000000ull;
	CHECK_EQ(emu_vcpu_step(&v), EXIT_NEXT);
	ret = emu_vcpu_step(&v);
	CHECK_EQ(ret, EXIT_FAULT);
	CHECK_EQ(v.fault.vector, FX_PFV);
	CHECK_EQ(v.fault.cr2, 0x7fff00000000ull);
	CHECK_EQ(v.cpu.gpr[EMU_RAX], 12);
	CHECK_EQ(v.cpu.rip, FX_DATA + 0x80000 + 3); /* at the faulting add */
	/* The flags of the first add survive the fault. */
	CHECK_EQ(emu_flags(&v) & FX_ARITH, FX_PF);
}

int main(void)
{
	struct fx fx;

	if (!fx_init(&fx)) {
		fprintf(stderr, "fixture allocation failed\n");
		return 1;
	}
	host_features();
	test_corpus(&fx);
	test_precise_fault(&fx);
	fprintf(stderr, "%u sequences compared with the host, %u skipped\n", native_compared,
		native_skipped);
	CHECK(native_compared > 0);
	fx_fini(&fx);
	return t_done();
}
