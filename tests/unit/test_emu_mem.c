/* test_emu_mem.c: the emulator's memory semantics: page-crossing accesses whose second page
 * faults (#PF with CR2 at that page, and nothing committed: no data, no accessed/dirty bits,
 * no MMIO write), non-canonical addresses (#GP(0), #SS(0) through RSP/RBP), MMIO at the
 * guest's access width (movq = one 8-byte access, movdqu = two), instruction fetch through the
 * page tables (NX, not present, an instruction running into a missing page, bytes from KVM
 * that stop at a page boundary), and what the emulator does not know (EMU_UNSUPPORTED with a
 * reason, nothing changed). */
#include "emu_native.h"

/* --- memory: page crossing, canonical addresses, MMIO, fetch --- */

static void test_page_crossing(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;
	uint8_t v[16];
	const uint64_t last = FX_HOLE - 0x1000; /* mapped; FX_HOLE is not */

	fx_map(fx, last, last, 0x1000, FX_P | FX_RW);
	fx_fill(fx->ram + last + 0xff0, 16, 0x33);

	/* movdqu [rsi], xmm0 with 8 bytes on each page: #PF for the second page, with CR2 at
	 * its start, W set, P clear; the first page keeps its bytes. */
	fx_init_cpu(&c);
	fx_fill(v, 16, 0xc0);
	fx_set_xmm(&c, 0, v);
	c.gpr[EMU_RSI] = FX_HOLE - 8;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x7f, 0x06);
	FX_CHECK_FAULT(&res, FX_PFV, 2);
	CHECK_EQ(res.fault.cr2, FX_HOLE);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* The same at CPL3 on user pages: U set. */
	fx_map(fx, last, last, 0x1000, FX_P | FX_RW | FX_US);
	fx_set_cpl(&c, 3);
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x7f, 0x06);
	FX_CHECK_FAULT(&res, FX_PFV, 6);
	CHECK_EQ(res.fault.cr2, FX_HOLE);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	fx_map(fx, last, last, 0x1000, FX_P | FX_RW);
	/* Second page present but read-only: P|W. */
	fx_map(fx, FX_HOLE, FX_HOLE, 0x1000, FX_P);
	fx_init_cpu(&c);
	fx_set_xmm(&c, 0, v);
	c.gpr[EMU_RSI] = FX_HOLE - 8;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x7f, 0x06);
	FX_CHECK_FAULT(&res, FX_PFV, 3);
	CHECK_EQ(res.fault.cr2, FX_HOLE);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* Both writable: both halves land, and only now do both PTEs get A and D. */
	fx_map(fx, FX_HOLE, FX_HOLE, 0x1000, FX_P | FX_RW);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x7f, 0x06);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK(memcmp(fx->ram + FX_HOLE - 8, v, 16) == 0);
	CHECK_EQ(fx_get64(fx, fx_pte_addr(fx, last)) & (FX_A | FX_D), FX_A | FX_D);
	CHECK_EQ(fx_get64(fx, fx_pte_addr(fx, FX_HOLE)) & (FX_A | FX_D), FX_A | FX_D);
	/* A read sets A only. */
	fx_map(fx, FX_HOLE, FX_HOLE, 0x1000, FX_P | FX_RW);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x06);
	CHECK_EQ(fx_get64(fx, fx_pte_addr(fx, FX_HOLE)) & (FX_A | FX_D), FX_A);
	fx_unmap(fx, FX_HOLE);

	/* A crossing read: #PF without W, destination unchanged. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = FX_HOLE - 4;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x06);
	FX_CHECK_FAULT(&res, FX_PFV, 0);
	CHECK_EQ(res.fault.cr2, FX_HOLE);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* A crossing general-register access (popcnt rax, [rsi]). */
	FX_STEP(fx, &c, &res, 0xf3, 0x48, 0x0f, 0xb8, 0x06);
	FX_CHECK_FAULT(&res, FX_PFV, 0);
	CHECK_EQ(res.fault.cr2, FX_HOLE);
	/* bts with a bit offset whose qword crosses into the hole. */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = FX_HOLE - 0x14;
	c.gpr[EMU_RCX] = 0x80 + 3; /* qword at -0x14 + 16 = -4: crosses */
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0x48, 0x0f, 0xab, 0x0e);
	FX_CHECK_FAULT(&res, FX_PFV, 2);
	CHECK_EQ(res.fault.cr2, FX_HOLE);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* (A crossing write whose first page is MMIO: test_mmio.) */
	fx_unmap(fx, last);
}

static void test_canonical(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;

	/* Non-canonical data address: #GP(0). */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = 0x0000800000000000ull;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x06);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	c.gpr[EMU_RSI] = 0xffff7fffffffffffull;
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x7f, 0x06);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	/* Straddling the top of the lower half: the last byte is non-canonical. */
	c.gpr[EMU_RSI] = 0x00007ffffffffff8ull;
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x06);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	/* Through RSP or RBP (the stack segment): #SS(0). */
	fx_init_cpu(&c);
	c.gpr[EMU_RSP] = 0x0000900000000000ull;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xd6, 0x04, 0x24); /* movq [rsp], xmm0 */
	FX_CHECK_FAULT(&res, FX_SS, 0);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	fx_init_cpu(&c);
	c.gpr[EMU_RBP] = 0x8000000000000000ull;
	FX_STEP(fx, &c, &res, 0xf3, 0x48, 0x0f, 0xb8, 0x45, 0x00); /* popcnt rax, [rbp] */
	FX_CHECK_FAULT(&res, FX_SS, 0);
	/* A DS override is ignored in 64-bit mode (SDM Vol. 1 3.3.7.1): still the stack. */
	FX_STEP(fx, &c, &res, 0x3e, 0xf3, 0x48, 0x0f, 0xb8, 0x45, 0x00);
	FX_CHECK_FAULT(&res, FX_SS, 0);
	/* FS base counts in 64-bit mode. */
	fx_init_cpu(&c);
	c.seg[EMU_FS].base = 0x00007fffffff0000ull;
	c.gpr[EMU_RSI] = 0x10000;
	FX_STEP(fx, &c, &res, 0x64, 0xf3, 0x0f, 0x6f, 0x06);
	FX_CHECK_FAULT(&res, FX_GP, 0);
	/* Upper-half canonical addresses are fine (and here unmapped: #PF). */
	fx_init_cpu(&c);
	c.gpr[EMU_RSI] = 0xffff800000000000ull;
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x06);
	FX_CHECK_FAULT(&res, FX_PFV, 0);
	CHECK_EQ(res.fault.cr2, 0xffff800000000000ull);
}

static void check_log(struct fx *fx, unsigned int i, bool write, uint64_t addr, unsigned int size)
{
	CHECK(i < fx->nlog);
	if (i >= fx->nlog)
		return;
	CHECK_EQ(fx->log[i].write, write);
	CHECK_EQ(fx->log[i].addr, addr);
	CHECK_EQ(fx->log[i].size, size);
}

static void test_mmio(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;
	uint8_t v[32], x[16];
	uint64_t q;

	fx_init_cpu(&c);
	fx_fill(v, 32, 0x20);
	fx_set_xmm(&c, 0, v);
	fx_set_ymmh(&c, 0, v + 16);
	c.gpr[EMU_RSI] = FX_MMIO + 0x100;
	/* movq [mmio], xmm0: one 8-byte write. */
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xd6, 0x06);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(fx->nlog, 1);
	check_log(fx, 0, true, FX_MMIO + 0x100, 8);
	memcpy(&q, v, 8);
	CHECK_EQ(fx->log[0].val, q);
	/* movq xmm1, [mmio]: one 8-byte read, upper half zero. */
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x7e, 0x0e);
	CHECK_EQ(fx->nlog, 1);
	check_log(fx, 0, false, FX_MMIO + 0x100, 8);
	fx_get_xmm(&c, 1, x);
	memcpy(&q, x, 8);
	CHECK_EQ(q, fx_mmio_value(FX_MMIO + 0x100, 8));
	CHECK(all_zero(x + 8, 8));
	/* movq xmm2, [mmio] through the REX.W 0f 6e form. */
	FX_STEP(fx, &c, &res, 0x66, 0x48, 0x0f, 0x6e, 0x16);
	CHECK_EQ(fx->nlog, 1);
	check_log(fx, 0, false, FX_MMIO + 0x100, 8);
	/* movdqu [mmio], xmm0: two 8-byte writes, in order. */
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x7f, 0x06);
	CHECK_EQ(fx->nlog, 2);
	check_log(fx, 0, true, FX_MMIO + 0x100, 8);
	check_log(fx, 1, true, FX_MMIO + 0x108, 8);
	memcpy(&q, v + 8, 8);
	CHECK_EQ(fx->log[1].val, q);
	/* movdqu xmm1, [mmio]: two 8-byte reads. */
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x0e);
	CHECK_EQ(fx->nlog, 2);
	check_log(fx, 0, false, FX_MMIO + 0x100, 8);
	check_log(fx, 1, false, FX_MMIO + 0x108, 8);
	/* movd [mmio], xmm0: one 4-byte write. */
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0x7e, 0x06);
	CHECK_EQ(fx->nlog, 1);
	check_log(fx, 0, true, FX_MMIO + 0x100, 4);
	/* vmovdqu [mmio], ymm0: four 8-byte writes. */
	FX_STEP(fx, &c, &res, 0xc5, 0xfe, 0x7f, 0x06);
	CHECK_EQ(fx->nlog, 4);
	for (unsigned int i = 0; i < 4; i++)
		check_log(fx, i, true, FX_MMIO + 0x100 + 8 * i, 8);
	/* popcnt of each width reads that width once. */
	FX_STEP(fx, &c, &res, 0xf3, 0x48, 0x0f, 0xb8, 0x06);
	CHECK_EQ(fx->nlog, 1);
	check_log(fx, 0, false, FX_MMIO + 0x100, 8);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0xb8, 0x06);
	CHECK_EQ(fx->nlog, 1);
	check_log(fx, 0, false, FX_MMIO + 0x100, 4);
	FX_STEP(fx, &c, &res, 0x66, 0xf3, 0x0f, 0xb8, 0x06);
	CHECK_EQ(fx->nlog, 1);
	check_log(fx, 0, false, FX_MMIO + 0x100, 2);
	/* bts dword [mmio], 3: a 4-byte read, then a 4-byte write of the new value. */
	FX_STEP(fx, &c, &res, 0x0f, 0xba, 0x2e, 0x03);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(fx->nlog, 2);
	check_log(fx, 0, false, FX_MMIO + 0x100, 4);
	check_log(fx, 1, true, FX_MMIO + 0x100, 4);
	CHECK_EQ(fx->log[1].val, fx_mmio_value(FX_MMIO + 0x100, 4) | 8);
	/* bt only reads. */
	FX_STEP(fx, &c, &res, 0x0f, 0xba, 0x26, 0x03);
	CHECK_EQ(fx->nlog, 1);
	/* A misaligned 8-byte access is split into naturally aligned pieces. */
	c.gpr[EMU_RSI] = FX_MMIO + 0x104;
	FX_STEP(fx, &c, &res, 0x66, 0x0f, 0xd6, 0x06);
	CHECK_EQ(fx->nlog, 2);
	check_log(fx, 0, true, FX_MMIO + 0x104, 4);
	check_log(fx, 1, true, FX_MMIO + 0x108, 4);
	/* A write whose second page faults reaches no device. */
	c.gpr[EMU_RSI] = FX_MMIO + FX_MMIO_SIZE - 8;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x7f, 0x06);
	FX_CHECK_FAULT(&res, FX_PFV, 2);
	CHECK_EQ(res.fault.cr2, FX_MMIO + FX_MMIO_SIZE);
	CHECK_EQ(fx->nlog, 0);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* MMIO nobody claims reads all ones (the bus's rule) and drops writes. */
	fx_map(fx, 0xe0000000ull, 0xe0000000ull, 0x1000, FX_P | FX_RW);
	c.gpr[EMU_RSI] = 0xe0000000ull;
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x0e);
	CHECK_EQ(res.status, EMU_DONE);
	fx_get_xmm(&c, 1, x);
	memset(v, 0xff, 16);
	CHECK(memcmp(x, v, 16) == 0);
}

static void test_fetch_and_unknown(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;
	uint8_t x[16];
	static const uint8_t popcnt[] = {0xf3, 0x48, 0x0f, 0xb8, 0xc1};

	/* len 0: fetched through the page tables. */
	fx_init_cpu(&c);
	memcpy(fx->ram + c.rip, popcnt, sizeof(popcnt));
	c.gpr[EMU_RCX] = 0xff;
	fx_step(fx, &c, NULL, 0, &res);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RAX], 8);
	CHECK_EQ(res.insn_len, 5);
	CHECK_STR(res.mnemonic, "popcnt");
	CHECK_EQ(c.rip, FX_DATA + 0x80005);
	CHECK(fx_get64(fx, fx_pte_addr(fx, FX_DATA + 0x80000)) & FX_A); /* the fetch's walk */
	/* Fetch from an NX page: #PF with I. */
	fx_init_cpu(&c);
	fx_map(fx, FX_HOLE, FX_HOLE, 0x1000, FX_P | FX_RW | FX_NX);
	c.rip = FX_HOLE + 0x10;
	fx_snapshot(fx, &c, &save);
	fx_step(fx, &c, NULL, 0, &res);
	FX_CHECK_FAULT(&res, FX_PFV, 0x11);
	CHECK_EQ(res.fault.cr2, FX_HOLE + 0x10);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	fx_unmap(fx, FX_HOLE);
	/* Fetch from a page that is not present. */
	fx_step(fx, &c, NULL, 0, &res);
	FX_CHECK_FAULT(&res, FX_PFV, 0x10);
	/* An instruction that runs into a page that is not present: #PF on that page. */
	fx_init_cpu(&c);
	fx_map(fx, FX_HOLE - 0x1000, FX_HOLE - 0x1000, 0x1000, FX_P | FX_RW);
	memcpy(fx->ram + FX_HOLE - 2, popcnt, 2);
	c.rip = FX_HOLE - 2;
	fx_snapshot(fx, &c, &save);
	fx_step(fx, &c, NULL, 0, &res);
	FX_CHECK_FAULT(&res, FX_PFV, 0x10);
	CHECK_EQ(res.fault.cr2, FX_HOLE);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* ... and the whole instruction before the hole is fine. */
	memcpy(fx->ram + FX_HOLE - 5, popcnt, 5);
	c.rip = FX_HOLE - 5;
	fx_step(fx, &c, NULL, 0, &res);
	CHECK_EQ(res.status, EMU_DONE);
	fx_unmap(fx, FX_HOLE - 0x1000);

	/* Integer instructions run on the engine's uops (one implementation for both drivers). */
	fx_init_cpu(&c);
	c.gpr[EMU_RAX] = 1;
	c.gpr[EMU_RBX] = 2;
	FX_STEP(fx, &c, &res, 0x01, 0xd8); /* add eax, ebx */
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.gpr[EMU_RAX], 3);
	CHECK_STR(res.mnemonic, "add");
	/* Something the emulator does not do on a stand-alone CPU (cpuid needs the VM's CPU
	 * model): EMU_UNSUPPORTED with a reason, nothing changed. */
	fx_init_cpu(&c);
	c.gpr[EMU_RAX] = 1;
	c.gpr[EMU_RBX] = 2;
	fx_snapshot(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0x0f, 0xa2); /* cpuid */
	CHECK_EQ(res.status, EMU_UNSUPPORTED);
	CHECK(strstr(res.why, "cpuid") != NULL);
	CHECK_STR(res.mnemonic, "cpuid");
	FX_CHECK_UNCHANGED(fx, &c, &save);
	FX_STEP(fx, &c, &res, 0x0f, 0x0b); /* ud2 */
	CHECK_EQ(res.status, EMU_UNSUPPORTED);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* Bytes that do not decode (push es is invalid in 64-bit mode). */
	FX_STEP(fx, &c, &res, 0x06);
	CHECK_EQ(res.status, EMU_UNSUPPORTED);
	CHECK(strstr(res.why, "decode") != NULL);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* Too few bytes, as KVM gives for an instruction that crosses a page (measured on
	 * KVM-PVM: 5 of vmovdqu's 8): the rest is fetched through the page tables. */
	fx_init_cpu(&c);
	fx_map(fx, FX_HOLE - 0x1000, FX_HOLE - 0x1000, 0x1000, FX_P | FX_RW);
	fx_map(fx, FX_HOLE, FX_HOLE, 0x1000, FX_P | FX_RW);
	static const uint8_t vmovdqu_rip[] = {0xc5, 0xfe, 0x6f, 0x35, 0x00, 0x01, 0x00, 0x00};

	memcpy(fx->ram + FX_HOLE - 5, vmovdqu_rip, 8); /* vmovdqu ymm6, [rip+0x100] */
	fx_fill(fx->ram + FX_HOLE + 3 + 0x100, 32, 0x70);
	c.rip = FX_HOLE - 5;
	fx_step(fx, &c, vmovdqu_rip, 5, &res);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(res.insn_len, 8);
	CHECK_EQ(c.rip, FX_HOLE + 3);
	fx_get_xmm(&c, 6, x);
	CHECK(memcmp(x, fx->ram + FX_HOLE + 3 + 0x100, 16) == 0);
	/* ... and when the next page is not there, the fetch's #PF on it. */
	fx_unmap(fx, FX_HOLE);
	fx_init_cpu(&c);
	c.rip = FX_HOLE - 5;
	fx_snapshot(fx, &c, &save);
	fx_step(fx, &c, vmovdqu_rip, 5, &res);
	FX_CHECK_FAULT(&res, FX_PFV, 0x10);
	CHECK_EQ(res.fault.cr2, FX_HOLE);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	fx_unmap(fx, FX_HOLE - 0x1000);
	fx_init_cpu(&c);
	fx_snapshot(fx, &c, &save);
	/* Extra bytes after the instruction are ignored; the length is the instruction's. */
	FX_STEP(fx, &c, &res, 0x0f, 0x31, 0x90, 0x90, 0xcc);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(res.insn_len, 2);
	CHECK_EQ(c.rip, save.rip + 2);
	/* RF is cleared once an instruction completes; GPRs are marked dirty. */
	fx_init_cpu(&c);
	c.rflags |= 1ull << 16;
	FX_STEP(fx, &c, &res, 0x0f, 0x31);
	CHECK_EQ(c.rflags & (1ull << 16), 0);
	CHECK(c.dirty & EMU_DIRTY_GPRS);
	/* emu_disassemble names it. */
	char text[64];

	emu_disassemble(&c, &res, text, sizeof(text));
	CHECK_STR(text, "rdtsc");
}

/* KVM's bytes stop at a page boundary and the emulator fetches the whole instruction again:
 * when what it fetches does not begin with KVM's bytes (the code was rewritten meanwhile),
 * it must not run that other instruction but leave everything as it was, for the guest to
 * run the instruction again; bytes that keep disagreeing are reported unsupported. */
static void test_refetch_mismatch(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;
	/* KVM saw vmovdqu [rip+0x100], ymm6 (a store); memory now holds the load. */
	static const uint8_t kvm_store[] = {0xc5, 0xfe, 0x7f, 0x35, 0x00};
	static const uint8_t vmovdqu_load[] = {0xc5, 0xfe, 0x6f, 0x35, 0x00, 0x01, 0x00, 0x00};
	uint8_t v[16];

	fx_map(fx, FX_HOLE - 0x1000, FX_HOLE - 0x1000, 0x1000, FX_P | FX_RW);
	fx_map(fx, FX_HOLE, FX_HOLE, 0x1000, FX_P | FX_RW);
	memcpy(fx->ram + FX_HOLE - 5, vmovdqu_load, 8);
	fx_fill(fx->ram + FX_HOLE + 3 + 0x100, 32, 0x70);
	fx_init_cpu(&c);
	fx_fill(v, 16, 0x11);
	fx_set_xmm(&c, 6, v);
	c.rip = FX_HOLE - 5;
	fx_snapshot(fx, &c, &save);
	fx_step(fx, &c, kvm_store, sizeof(kvm_store), &res);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.rip, FX_HOLE - 5);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* Again and again at the same RIP: after a bounded number of tries, unsupported,
	 * still with nothing changed. */
	unsigned int done = 1;

	for (unsigned int i = 0; i < 40 && res.status == EMU_DONE; i++) {
		fx_step(fx, &c, kvm_store, sizeof(kvm_store), &res);
		done += res.status == EMU_DONE;
	}
	CHECK_EQ(res.status, EMU_UNSUPPORTED);
	CHECK(done > 1 && done < 40);
	CHECK(strstr(res.why, "differ") != NULL);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	/* Bytes that agree run as before. */
	fx_step(fx, &c, vmovdqu_load, 5, &res);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(c.rip, FX_HOLE + 3);
	fx_unmap(fx, FX_HOLE - 0x1000);
	fx_unmap(fx, FX_HOLE);
}

/* --- A/D bits of a page whose entry another vCPU changes during the instruction --- */

/* A device whose reads rewrite a page-table entry, as another vCPU could between the walk
 * and the commit. */
#define HOOK_MMIO (FX_MMIO + FX_MMIO_SIZE)
static struct {
	struct fx *fx;
	uint64_t pte, val;
	unsigned int reads;
} hook;

static uint64_t hook_read(void *dev, uint64_t off, unsigned int size)
{
	(void)dev;
	(void)off;
	(void)size;
	if (hook.pte)
		fx_put64(hook.fx, hook.pte, hook.val);
	hook.reads++;
	return 0x1122334455667788ull;
}

static void hook_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	(void)dev;
	(void)off;
	(void)val;
	(void)size;
}

static const struct bus_ops hook_ops = {.read = hook_read, .write = hook_write};

static void test_ad_race(struct fx *fx)
{
	struct emu_cpu c, save;
	struct emu_result res;
	static const uint8_t movdqu_load[] = {0xf3, 0x0f, 0x6f, 0x06}; /* movdqu xmm0, [rsi] */
	const uint64_t code = FX_HOLE + 0x10;
	const uint64_t swap = 0x00000003e8a40000ull; /* a swap entry: P clear */
	uint64_t pte;
	uint8_t x[16];

	CHECK_EQ(bus_register(&fx->mmio, HOOK_MMIO, 0x1000, &hook_ops, NULL, "pte-hook"), 0);
	fx_map(fx, HOOK_MMIO, HOOK_MMIO, 0x1000, FX_P | FX_RW);
	hook.fx = fx;
	pte = fx_pte_addr(fx, FX_HOLE);

	/* The instruction is fetched through the page tables (the fetch's walk keeps its A bit
	 * for the commit), then its MMIO read makes the code page's entry a swap entry: at the
	 * commit the walk is made again, faults, and the instruction faults with nothing
	 * changed; the swap entry does not get A OR-ed into it. */
	fx_init_cpu(&c);
	fx_map(fx, FX_HOLE, FX_HOLE, 0x1000, FX_P | FX_RW);
	memcpy(fx->ram + code, movdqu_load, sizeof(movdqu_load));
	c.rip = code;
	c.gpr[EMU_RSI] = HOOK_MMIO;
	hook.pte = pte;
	hook.val = swap;
	hook.reads = 0;
	fx_snapshot(fx, &c, &save);
	memcpy(fx->snap + pte, &swap, 8); /* what RAM holds after the hook */
	fx_step(fx, &c, NULL, 0, &res);
	CHECK(hook.reads > 0);
	CHECK_EQ(fx_get64(fx, pte), swap);
	FX_CHECK_FAULT(&res, FX_PFV, 0x10);
	CHECK_EQ(res.fault.cr2, code);
	FX_CHECK_UNCHANGED(fx, &c, &save);

	/* The same for the data page: its walk (A) precedes the MMIO read on the next page,
	 * which makes it a swap entry. movdqu xmm0, [rsi] with 8 bytes on each. */
	fx_init_cpu(&c);
	fx_map(fx, FX_HOLE, FX_HOLE, 0x1000, FX_P | FX_RW);
	pte = fx_pte_addr(fx, HOOK_MMIO - 0x1000);
	fx_map(fx, HOOK_MMIO - 0x1000, FX_HOLE, 0x1000, FX_P | FX_RW);
	c.gpr[EMU_RSI] = HOOK_MMIO - 8;
	hook.pte = pte;
	hook.reads = 0;
	fx_snapshot(fx, &c, &save);
	memcpy(fx->snap + pte, &swap, 8);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x06);
	CHECK(hook.reads > 0);
	CHECK_EQ(fx_get64(fx, pte), swap);
	FX_CHECK_FAULT(&res, FX_PFV, 0);
	CHECK_EQ(res.fault.cr2, HOOK_MMIO - 8);
	FX_CHECK_UNCHANGED(fx, &c, &save);

	/* An entry that changed but still maps the same page (here: a software bit set): the
	 * walk made again succeeds, the instruction completes and A lands in the new value. */
	fx_map(fx, HOOK_MMIO - 0x1000, FX_HOLE, 0x1000, FX_P | FX_RW);
	hook.val = FX_HOLE | FX_P | FX_RW | (1ull << 9);
	hook.reads = 0;
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x06);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(fx_get64(fx, pte), hook.val | FX_A);
	fx_get_xmm(&c, 0, x);
	CHECK(memcmp(x + 8, "\x88\x77\x66\x55\x44\x33\x22\x11", 8) == 0);

	/* An entry remapped to another page: the instruction read the old one, so it is not
	 * committed; it is reported done with nothing changed, for the guest to run again. */
	fx_init_cpu(&c);
	fx_map(fx, HOOK_MMIO - 0x1000, FX_HOLE, 0x1000, FX_P | FX_RW);
	c.gpr[EMU_RSI] = HOOK_MMIO - 8;
	hook.val = (FX_HOLE - 0x1000) | FX_P | FX_RW;
	fx_snapshot(fx, &c, &save);
	memcpy(fx->snap + pte, &hook.val, 8);
	FX_STEP(fx, &c, &res, 0xf3, 0x0f, 0x6f, 0x06);
	CHECK_EQ(res.status, EMU_DONE);
	CHECK_EQ(fx_get64(fx, pte), hook.val);
	FX_CHECK_UNCHANGED(fx, &c, &save);
	hook.pte = 0;
	fx_unmap(fx, HOOK_MMIO - 0x1000);
	fx_unmap(fx, FX_HOLE);
}

int main(void)
{
	struct fx fx;

	if (!fx_init(&fx)) {
		fprintf(stderr, "fixture setup failed\n");
		return T_EXIT_FAIL;
	}
	test_page_crossing(&fx);
	test_canonical(&fx);
	test_mmio(&fx);
	test_fetch_and_unknown(&fx);
	test_ad_race(&fx);
	test_refetch_mismatch(&fx);
	fx_fini(&fx);
	return t_done();
}
