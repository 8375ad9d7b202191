/* test_emu_bits.c: popcnt, lzcnt, tzcnt, bsf, bsr and bt, bts, btr, btc in the emulator,
 * table driven: every operand size, register and memory forms, zero sources, bit offsets
 * beyond the operand and negative ones, each case run on the host CPU too with the same bytes
 * and inputs and compared (result, memory, the flags the SDM defines; emu_native.h). Then the
 * CPUID dependencies (no POPCNT: #UD; no LZCNT/BMI1: BSR/BSF) and the faults of the bit string
 * (canonical form and segment of the byte accessed, write faults for bts/btr/btc). */
#include "emu_native.h"

/* --- popcnt, lzcnt, tzcnt, bsf, bsr --- */

struct count_op {
	const char *name;
	bool f3;
	uint8_t opcode;
	uint64_t defined; /* flags the SDM defines for it */
	bool *host_has;
};

/* clang-format off */
static const uint64_t count_inputs[] = {
	0, 1, 2, 0x10, 0x80, 0x8000, 0x80000000, 0x8000000000000000ull, ~0ull,
	0x00000000ffff0000ull, 0xffff000000000000ull, 0x0000000100000000ull,
	0x123456789abcdef0ull, 0x00000000000f0000ull, 0xffffffff00000000ull, 0x7fffull,
};
/* clang-format on */

static size_t encode_count(const struct count_op *op, unsigned int size, bool mem, uint8_t *b)
{
	size_t n = 0;

	if (size == 16)
		b[n++] = 0x66;
	if (op->f3)
		b[n++] = 0xf3;
	if (size == 64)
		b[n++] = 0x48;
	b[n++] = 0x0f;
	b[n++] = op->opcode;
	b[n++] = mem ? 0x06 : 0xc1; /* eax, [rsi] or eax, ecx */
	return n;
}

/* What the SDM says the result is, for the cases the table can state simply. */
static void count_expect(const char *name, unsigned int size, uint64_t src, uint64_t *res,
			 bool *dst_written)
{
	uint64_t v = size == 64 ? src : src & ((1ull << size) - 1);

	*dst_written = true;
	if (!strcmp(name, "popcnt")) {
		*res = (uint64_t)__builtin_popcountll(v);
	} else if (!strcmp(name, "lzcnt")) {
		*res = v ? (uint64_t)(__builtin_clzll(v) - (64 - size)) : size;
	} else if (!strcmp(name, "tzcnt")) {
		*res = v ? (uint64_t)__builtin_ctzll(v) : size;
	} else if (!strcmp(name, "bsf")) {
		*dst_written = v != 0;
		*res = v ? (uint64_t)__builtin_ctzll(v) : 0;
	} else {
		*dst_written = v != 0;
		*res = v ? (uint64_t)(63 - __builtin_clzll(v)) : 0;
	}
}

/* One case: (op) at operand size (size) on (input), from a register or from memory (mem),
 * with RFLAGS (flags) before. */
static void count_case(struct fx *fx, const struct count_op *op, unsigned int size, bool mem,
		       uint64_t input, uint64_t flags)
{
	static uint8_t buf[BUF_SIZE];
	uint8_t insn[8];
	size_t len = encode_count(op, size, mem, insn);
	struct native_regs in = {0};
	struct dual d;
	uint64_t want, old = 0xdeadbeefcafebabeull, got;
	uint64_t v = size == 64 ? input : input & ((1ull << size) - 1);
	bool written;
	int before = t_failures;

	in.gpr[EMU_RAX] = old;
	in.gpr[EMU_RCX] = input;
	in.gpr[EMU_RSI] = 0x100;
	in.rflags = flags;
	memcpy(buf + 0x100, &input, 8);
	dual_run(fx, insn, len, &in, buf, mem ? EMU_RSI : -1, !op->host_has || *op->host_has, &d);
	CHECK_EQ(d.res.status, EMU_DONE);
	CHECK_EQ(d.res.insn_len, len);
	/* Against the SDM. */
	count_expect(op->name, size, input, &want, &written);
	got = d.emu.gpr[EMU_RAX];
	if (!written)
		CHECK_EQ(got, old);
	else if (size == 16)
		CHECK_EQ(got, (old & ~0xffffull) | want);
	else
		CHECK_EQ(got, want);
	if (!strcmp(op->name, "popcnt")) {
		CHECK_EQ(d.emu.rflags & FX_ARITH, v ? 0 : FX_ZF);
	} else if (!strcmp(op->name, "lzcnt") || !strcmp(op->name, "tzcnt")) {
		CHECK_EQ(d.emu.rflags & FX_CF, v ? 0 : FX_CF);
		CHECK_EQ(d.emu.rflags & FX_ZF, want == 0 ? FX_ZF : 0);
	} else {
		CHECK_EQ(d.emu.rflags & FX_ZF, v ? 0 : FX_ZF);
	}
	/* Undefined flags: the emulator leaves them as they were. */
	CHECK_EQ(d.emu.rflags & ~op->defined, flags & ~op->defined);
	/* Against the host. */
	CHECK(dual_same(&d, op->defined));
	if (t_failures != before) {
		fprintf(stderr, "  %s/%u %s input 0x%llx flags 0x%llx\n", op->name, size,
			mem ? "mem" : "reg", (unsigned long long)input, (unsigned long long)flags);
		print_insn(insn, len);
	}
}

static void test_counts(struct fx *fx)
{
	const struct count_op ops[] = {
		{"popcnt", true, 0xb8, FX_ARITH, &host.popcnt},
		{"lzcnt", true, 0xbd, FX_CF | FX_ZF, &host.lzcnt},
		{"tzcnt", true, 0xbc, FX_CF | FX_ZF, &host.bmi1},
		{"bsf", false, 0xbc, FX_ZF, NULL},
		{"bsr", false, 0xbd, FX_ZF, NULL},
	};
	static const uint64_t flags_in[] = {0x2, 0x2 | FX_ARITH};
	static const unsigned int sizes[] = {16, 32, 64};

	for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
		for (size_t s = 0; s < 3; s++)
			for (size_t i = 0; i < sizeof(count_inputs) / 8; i++)
				for (size_t f = 0; f < 4; f++)
					count_case(fx, &ops[o], sizes[s], f & 1, count_inputs[i],
						   flags_in[f >> 1]);
}

/* CPUID decides: without POPCNT #UD; without LZCNT/BMI1 the F3 prefix is ignored and the
 * bytes are BSR/BSF (SDM Vol. 2 LZCNT, TZCNT "Operation" notes). */
static void test_count_features(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;

	fx_init_cpu(&c);
	fx->feat.popcnt = false;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xf3, 0x48, 0x0f, 0xb8, 0xc1);
	FX_CHECK_FAULT(&res, FX_UD, -1);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	fx->feat.popcnt = true;

	fx_init_cpu(&c);
	fx->feat.lzcnt = false;
	c.gpr[EMU_RCX] = 0x100;
	c.gpr[EMU_RAX] = 77;
	FX_STEP(fx, &c, &res, 0xf3, 0x48, 0x0f, 0xbd, 0xc1);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RAX], 8); /* bsr: index of the highest set bit */
	fx->feat.lzcnt = true;

	fx_init_cpu(&c);
	fx->feat.bmi1 = false;
	c.gpr[EMU_RCX] = 0;
	c.gpr[EMU_RAX] = 77;
	FX_STEP(fx, &c, &res, 0xf3, 0x48, 0x0f, 0xbc, 0xc1);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RAX], 77); /* bsf of zero: destination unchanged, ZF set */
	CHECK(c.rflags & FX_ZF);
	fx->feat.bmi1 = true;
}

/* --- bt, bts, btr, btc --- */

/* clang-format off */
static const int64_t bit_offsets[] = {
	0, 1, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 1000, 4000,
	-1, -2, -8, -9, -16, -17, -31, -32, -33, -63, -64, -65, -100, -1000, -4000,
	0x7fff, -0x8000, 0x12345,
};
/* clang-format on */

/* One case: bt/bts/btr/btc (op 0-3) at operand size (size), on a register or memory
 * (mem_form), with the bit offset in RCX or an immediate (imm). */
static void bit_test_case(struct fx *fx, const uint8_t *mem, unsigned int op, unsigned int size,
			  bool mem_form, bool imm, int64_t off, uint64_t flags)
{
	static const char *const names[] = {"bt", "bts", "btr", "btc"};
	static const uint8_t reg_op[] = {0xa3, 0xab, 0xb3, 0xbb};
	uint8_t insn[8];
	size_t n = 0;
	struct native_regs in = {0};
	struct dual d;
	uint64_t bit, cf;
	int before = t_failures;

	if (size == 16)
		insn[n++] = 0x66;
	if (size == 64)
		insn[n++] = 0x48;
	insn[n++] = 0x0f;
	if (imm) {
		insn[n++] = 0xba;
		insn[n++] = (uint8_t)((mem_form ? 0x06 : 0xc0) | ((4 + op) << 3));
		insn[n++] = (uint8_t)off;
	} else {
		insn[n++] = reg_op[op];
		insn[n++] = mem_form ? 0x0e : 0xc8; /* [rsi] or rax, with rcx */
	}
	in.gpr[EMU_RAX] = 0x0123456789abcdefull ^ (uint64_t)off;
	in.gpr[EMU_RCX] = (uint64_t)off;
	in.gpr[EMU_RSI] = 512;
	in.rflags = flags;
	dual_run(fx, insn, n, &in, mem, mem_form ? EMU_RSI : -1, true, &d);
	CHECK_EQ(d.res.status, EMU_DONE);
	/* Against the SDM: CF is the selected bit, ZF unchanged. A register offset with a
	 * memory operand addresses the bit string (byte off >> 3, floor); otherwise the offset
	 * is taken modulo the operand size. */
	if (mem_form && !imm) {
		bit = (uint64_t)(off & 7);
		cf = (mem[512 + (off >> 3)] >> bit) & 1;
	} else {
		uint64_t v = in.gpr[EMU_RAX];

		bit = (uint64_t)off & (size - 1);
		if (mem_form)
			memcpy(&v, mem + 512, 8);
		cf = (v >> bit) & 1;
	}
	CHECK_EQ(d.emu.rflags & FX_CF, cf);
	CHECK_EQ(d.emu.rflags & FX_ZF, flags & FX_ZF);
	/* Against the host. */
	CHECK(dual_same(&d, FX_CF | FX_ZF));
	if (t_failures != before) {
		fprintf(stderr, "  %s/%u %s%s offset %lld\n", names[op], size,
			mem_form ? "mem" : "reg", imm ? ",imm" : ",reg", (long long)off);
		print_insn(insn, n);
	}
}

static void test_bit_tests(struct fx *fx)
{
	static const unsigned int sizes[] = {16, 32, 64};
	static const uint64_t flags_in[] = {0x2, 0x2 | FX_ARITH};
	static uint8_t mem[BUF_SIZE];

	for (size_t i = 0; i < BUF_SIZE; i++)
		mem[i] = (uint8_t)rng();
	for (unsigned int op = 0; op < 4; op++)
		for (size_t s = 0; s < 3; s++)
			for (int form = 0; form < 4; form++)
				for (size_t k = 0; k < sizeof(bit_offsets) / 8; k++) {
					bool mem_form = form >= 2, imm = form & 1;
					int64_t off = bit_offsets[k];

					/* Register offsets into memory: within the buffer. */
					if (mem_form && !imm && (off > 4000 || off < -4000))
						continue;
					bit_test_case(fx, mem, op, sizes[s], mem_form, imm, off,
						      flags_in[k & 1]);
				}
}

static void test_bit_test_faults(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;

	/* lock bts is not emulated: said so, nothing changed. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = GBUF;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xf0, 0x0f, 0xab, 0x0e);
	CHECK_EQ(res.status, EMU_UNSUPPORTED);
	CHECK(strstr(res.why, "lock") != NULL);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* A bit offset that carries the address out of the canonical range: #GP(0). */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = 0x00007ffffffffff0ull;
	c.gpr[EMU_RCX] = 0x100;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0x48, 0x0f, 0xa3, 0x0e);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* The same through RBP (stack segment): #SS(0). */
	fx_init_cpu(&c);
	c.gpr[EMU_RBP] = 0x00007ffffffffff0ull;
	c.gpr[EMU_RCX] = 0x100;
	FX_STEP(fx, &c, &res, 0x48, 0x0f, 0xab, 0x4d, 0x00);
	FX_CHECK_FAULT(&res, FX_SS, 0);
	/* A negative offset into an unmapped page: #PF at the byte it needs, not at the
	 * operand's address; bts to a read-only page: #PF with W. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = FX_HOLE + 0x1000;
	fx_map(fx, FX_HOLE + 0x1000, FX_HOLE + 0x1000, 0x1000, FX_P | FX_RW);
	c.gpr[EMU_RCX] = (uint64_t)-8; /* one byte below */
	FX_STEP(fx, &c, &res, 0x0f, 0xa3, 0x0e);
	FX_CHECK_FAULT(&res, FX_PFV, 0);
	CHECK_EQ(res.fault.cr2, FX_HOLE + 0x1000 - 4);
	fx_unmap(fx, FX_HOLE + 0x1000);
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = FX_RO;
	c.gpr[EMU_RCX] = 3;
	FX_STEP(fx, &c, &res, 0x0f, 0xab, 0x0e);
	FX_CHECK_FAULT(&res, FX_PFV, 3);
	CHECK_EQ(res.fault.cr2, FX_RO);
	/* bt only reads: fine on a read-only page. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = FX_RO;
	FX_STEP(fx, &c, &res, 0x0f, 0xa3, 0x0e);
	CHECK_EQ(res.status, EMU_DONE);
}

int main(void)
{
	struct fx fx;

	if (!fx_init(&fx)) {
		fprintf(stderr, "fixture setup failed\n");
		return T_EXIT_FAIL;
	}
	host_features();
	test_counts(&fx);
	test_count_features(&fx);
	test_bit_tests(&fx);
	test_bit_test_faults(&fx);
	fprintf(stderr, "compared with the host CPU: %u runs (%u could not run natively)\n",
		native_compared, native_skipped);
	CHECK(native_compared > 0);
	fx_fini(&fx);
	return t_done();
}
