/* emu_fixture.h: a fake guest for the emulator's unit tests (test_emu_*.c): guest RAM over an
 * aligned malloc'ed buffer, 4-level page tables built in it, an MMIO bus whose device records
 * every access, a 64-bit CPL0 CPU preset, the CPUID facts of a host with AVX-512, and helpers
 * to run one instruction and to check that a failed one changed nothing.
 *
 * Guest-physical layout (identity-mapped unless a test maps otherwise):
 *   0x001000		PML4; page-table pages are allocated upwards from 0x002000
 *   0x100000-0x1fffff	data, supervisor RW (FX_DATA)
 *   0x200000-0x2fffff	user RW (FX_USER)
 *   0x300000-0x37ffff	supervisor read-only (FX_RO)
 *   0x400000-0x4fffff	supervisor stacks (FX_STACK)
 *   0x500000		GDT, 0x501000 IDT, 0x502000 TSS
 *   0x600000		not mapped (FX_HOLE): a page-crossing access into it faults
 *   0xd0000000		MMIO (FX_MMIO), not RAM: accesses go to the recording device */
#ifndef MVM_TEST_EMU_FIXTURE_H
#define MVM_TEST_EMU_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/guest_mem.h"
#include "emu/emu.h"
#include "emu/walk.h"
#include "test.h"

#define FX_RAM_SIZE    (8u << 20)
#define FX_PML4	       0x1000ull
#define FX_PT_POOL     0x2000ull
#define FX_PT_POOL_END 0x100000ull
#define FX_DATA	       0x100000ull
#define FX_USER	       0x200000ull
#define FX_RO	       0x300000ull
#define FX_STACK       0x400000ull
#define FX_GDT	       0x500000ull
#define FX_IDT	       0x501000ull
#define FX_TSS	       0x502000ull
#define FX_HOLE	       0x600000ull
#define FX_MMIO	       0xd0000000ull
#define FX_MMIO_SIZE   0x10000ull

#define FX_P  (1ull << 0)
#define FX_RW (1ull << 1)
#define FX_US (1ull << 2)
#define FX_A  (1ull << 5)
#define FX_D  (1ull << 6)
#define FX_PS (1ull << 7)
#define FX_NX (1ull << 63)

/* CPU bits the tests set. */
#define FX_CR0_PE	  (1ull << 0)
#define FX_CR0_MP	  (1ull << 1)
#define FX_CR0_EM	  (1ull << 2)
#define FX_CR0_TS	  (1ull << 3)
#define FX_CR0_NE	  (1ull << 5)
#define FX_CR0_WP	  (1ull << 16)
#define FX_CR0_PG	  (1ull << 31)
#define FX_CR4_TSD	  (1ull << 2)
#define FX_CR4_PSE	  (1ull << 4)
#define FX_CR4_PAE	  (1ull << 5)
#define FX_CR4_OSFXSR	  (1ull << 9)
#define FX_CR4_OSXMMEXCPT (1ull << 10)
#define FX_CR4_LA57	  (1ull << 12)
#define FX_CR4_OSXSAVE	  (1ull << 18)
#define FX_CR4_SMEP	  (1ull << 20)
#define FX_CR4_SMAP	  (1ull << 21)
#define FX_EFER_LME	  (1ull << 8)
#define FX_EFER_LMA	  (1ull << 10)
#define FX_EFER_NXE	  (1ull << 11)
#define FX_CF		  (1ull << 0)
#define FX_PF		  (1ull << 2)
#define FX_AF		  (1ull << 4)
#define FX_ZF		  (1ull << 6)
#define FX_SF		  (1ull << 7)
#define FX_TF		  (1ull << 8)
#define FX_IF		  (1ull << 9)
#define FX_OF		  (1ull << 11)
#define FX_AC		  (1ull << 18)
#define FX_ARITH	  (FX_CF | FX_PF | FX_AF | FX_ZF | FX_SF | FX_OF)

/* Exception vectors. */
#define FX_UD	  6
#define FX_NM	  7
#define FX_TS_VEC 10
#define FX_NP	  11
#define FX_SS	  12
#define FX_GP	  13
#define FX_PFV	  14
#define FX_MF	  16

/* XSAVE layout, standard format, as CPUID leaf 0xD reports it on AVX-512 hosts. */
#define FX_XMM(i)  (160 + 16 * (i))
#define FX_YMMH(i) (576 + 16 * (i))
#define FX_HDR	   512

struct fx_mmio_access {
	uint64_t addr;
	uint64_t val;
	unsigned int size;
	bool write;
};

#define FX_MMIO_LOG 64

struct fx {
	uint8_t *ram;
	struct guest_mem mem;
	struct bus mmio;
	struct emu_features feat;
	struct emu_env env;
	uint64_t pt_next;
	struct fx_mmio_access log[FX_MMIO_LOG];
	unsigned int nlog;
	uint8_t *snap; /* RAM copy for "nothing changed" checks */
};

static inline uint64_t fx_mmio_value(uint64_t addr, unsigned int size)
{
	/* Reads return a pattern derived from the address, so tests can tell pieces apart. */
	uint64_t v = 0x0102030405060708ull * ((addr & 0xff) + 1) ^ 0xa5a5a5a5a5a5a5a5ull;

	return size == 8 ? v : v & ((1ull << (8 * size)) - 1);
}

static inline uint64_t fx_mmio_read(void *dev, uint64_t off, unsigned int size)
{
	struct fx *fx = dev;
	uint64_t v = fx_mmio_value(FX_MMIO + off, size);

	if (fx->nlog < FX_MMIO_LOG)
		fx->log[fx->nlog++] = (struct fx_mmio_access){FX_MMIO + off, v, size, false};
	return v;
}

static inline void fx_mmio_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	struct fx *fx = dev;

	if (fx->nlog < FX_MMIO_LOG)
		fx->log[fx->nlog++] = (struct fx_mmio_access){FX_MMIO + off, val, size, true};
}

static const struct bus_ops fx_mmio_ops = {.read = fx_mmio_read, .write = fx_mmio_write};

static inline uint64_t fx_get64(struct fx *fx, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, fx->ram + gpa, 8);
	return v;
}

static inline void fx_put64(struct fx *fx, uint64_t gpa, uint64_t v)
{
	memcpy(fx->ram + gpa, &v, 8);
}

static inline uint64_t fx_alloc_table(struct fx *fx)
{
	uint64_t t = fx->pt_next;

	if (t >= FX_PT_POOL_END) {
		fprintf(stderr, "emu_fixture: page-table pool exhausted\n");
		abort();
	}
	fx->pt_next += 4096;
	memset(fx->ram + t, 0, 4096);
	return t;
}

/* The leaf entry's guest-physical address for (va), creating tables on the way (all
 * intermediate entries P|RW|US, so the leaf alone decides the rights). */
static inline uint64_t fx_pte_addr(struct fx *fx, uint64_t va)
{
	uint64_t table = FX_PML4;

	for (int level = 4; level > 1; level--) {
		uint64_t slot = table + ((va >> (12 + 9 * (level - 1))) & 511) * 8;
		uint64_t e = fx_get64(fx, slot);

		if (!(e & FX_P)) {
			e = fx_alloc_table(fx) | FX_P | FX_RW | FX_US;
			fx_put64(fx, slot, e);
		}
		table = e & 0x000ffffffffff000ull;
	}
	return table + ((va >> 12) & 511) * 8;
}

/* Maps [va, va+len) to [pa, ...) with 4 KiB pages and leaf flags (flags). */
static inline void fx_map(struct fx *fx, uint64_t va, uint64_t pa, uint64_t len, uint64_t flags)
{
	for (uint64_t off = 0; off < len; off += 4096)
		fx_put64(fx, fx_pte_addr(fx, va + off), ((pa + off) & ~0xfffull) | flags);
}

static inline void fx_unmap(struct fx *fx, uint64_t va)
{
	fx_put64(fx, fx_pte_addr(fx, va), 0);
}

static inline void fx_init_features(struct emu_features *f)
{
	static const uint32_t off[EMU_XSAVE_COMPONENTS] = {0, 0, 576, 960, 1024, 1088, 1152, 1664};
	static const uint32_t size[EMU_XSAVE_COMPONENTS] = {0, 0, 256, 64, 64, 64, 512, 1024};

	memset(f, 0, sizeof(*f));
	f->xcr0_mask = 0xe7; /* x87, SSE, AVX, AVX-512 (no MPX) */
	memcpy(f->xsave_offset, off, sizeof(off));
	memcpy(f->xsave_size, size, sizeof(size));
	f->maxphyaddr = 46;
	f->xsaveopt = f->xsavec = f->xsaves = f->xgetbv1 = true;
	f->popcnt = f->lzcnt = f->bmi1 = f->smap = f->rdtscp = f->rdpid = f->monitor = true;
	f->invpcid = f->cx16 = f->sse = f->avx = f->fxsr = f->avx2 = f->avx512f = true;
}

/* A 64-bit code segment at (dpl) and the flat data segments for it. */
static inline void fx_set_cpl(struct emu_cpu *c, unsigned int cpl)
{
	c->seg[EMU_CS] = (struct emu_seg){.sel = cpl ? 0x2b : 0x08,
					  .limit = 0xffffffff,
					  .type = 0xb,
					  .s = 1,
					  .dpl = cpl,
					  .present = 1,
					  .l = 1,
					  .g = 1};
	c->seg[EMU_SS] = (struct emu_seg){.sel = cpl ? 0x23 : 0x10,
					  .limit = 0xffffffff,
					  .type = 3,
					  .s = 1,
					  .dpl = cpl,
					  .present = 1,
					  .db = 1,
					  .g = 1};
}

static inline void fx_init_cpu(struct emu_cpu *c)
{
	memset(c, 0, sizeof(*c));
	fx_set_cpl(c, 0);
	for (int s = 0; s < EMU_NSREG; s++) {
		if (s == EMU_CS || s == EMU_SS)
			continue;
		c->seg[s] = (struct emu_seg){.sel = 0x10,
					     .limit = 0xffffffff,
					     .type = 3,
					     .s = 1,
					     .present = 1,
					     .db = 1,
					     .g = 1};
	}
	c->tr = (struct emu_seg){
		.sel = 0x30, .base = FX_TSS, .limit = 0x67, .type = 0xb, .present = 1};
	c->gdt_base = FX_GDT;
	c->gdt_limit = 0x7f;
	c->idt_base = FX_IDT;
	c->idt_limit = 0xfff;
	c->rip = FX_DATA + 0x80000;
	c->rflags = 0x2;
	c->gpr[EMU_RSP] = FX_STACK + 0x80000;
	c->cr0 = FX_CR0_PE | FX_CR0_MP | FX_CR0_NE | FX_CR0_WP | FX_CR0_PG | (1ull << 4);
	c->cr3 = FX_PML4;
	c->cr4 = FX_CR4_PAE | FX_CR4_OSFXSR | FX_CR4_OSXMMEXCPT | FX_CR4_OSXSAVE;
	c->efer = FX_EFER_LME | FX_EFER_LMA | FX_EFER_NXE | 1;
	c->xcr0 = 0x7;
	c->tsc = 0x123456789abcdefull;
	c->tsc_aux = 0xfeed0007;
	/* x87 and SSE in their reset state, marked in use as KVM_GET_XSAVE gives them. */
	c->xsave[0] = 0x7f;
	c->xsave[1] = 0x03;
	c->xsave[24] = 0x80;
	c->xsave[25] = 0x1f;
	c->xsave[28] = 0xff; /* MXCSR_MASK 0xffff: DAZ supported */
	c->xsave[29] = 0xff;
	c->xsave[FX_HDR] = 0x3;
}

/* Sets up RAM, page tables and the MMIO device. Returns false on allocation failure. */
static inline bool fx_init(struct fx *fx)
{
	memset(fx, 0, sizeof(*fx));
	fx->ram = aligned_alloc(4096, FX_RAM_SIZE);
	fx->snap = malloc(FX_RAM_SIZE);
	if (!fx->ram || !fx->snap)
		return false;
	memset(fx->ram, 0, FX_RAM_SIZE);
	guest_mem_init(&fx->mem);
	if (guest_mem_add(&fx->mem, 0, FX_RAM_SIZE, fx->ram))
		return false;
	bus_init(&fx->mmio, "mmio");
	if (bus_register(&fx->mmio, FX_MMIO, FX_MMIO_SIZE, &fx_mmio_ops, fx, "recorder"))
		return false;
	fx_init_features(&fx->feat);
	fx->env = (struct emu_env){.mem = &fx->mem, .mmio = &fx->mmio, .features = &fx->feat};
	fx->pt_next = FX_PT_POOL;
	fx_map(fx, FX_DATA, FX_DATA, 0x100000, FX_P | FX_RW);
	fx_map(fx, FX_USER, FX_USER, 0x100000, FX_P | FX_RW | FX_US);
	fx_map(fx, FX_RO, FX_RO, 0x80000, FX_P);
	fx_map(fx, FX_STACK, FX_STACK, 0x100000, FX_P | FX_RW);
	fx_map(fx, FX_GDT, FX_GDT, 0x3000, FX_P | FX_RW);
	fx_map(fx, FX_MMIO, FX_MMIO, FX_MMIO_SIZE, FX_P | FX_RW);
	return true;
}

static inline void fx_fini(struct fx *fx)
{
	guest_mem_fini(&fx->mem);
	free(fx->ram);
	free(fx->snap);
}

/* Runs the instruction (bytes, len) at cpu->rip. */
static inline void fx_step(struct fx *fx, struct emu_cpu *c, const uint8_t *bytes, unsigned int len,
			   struct emu_result *res)
{
	fx->nlog = 0;
	emu_step(c, &fx->env, bytes, len, res);
}

#define FX_STEP(fx, c, res, ...)                                                                   \
	do {                                                                                       \
		static const uint8_t insn_[] = {__VA_ARGS__};                                      \
		fx_step((fx), (c), insn_, sizeof(insn_), (res));                                   \
	} while (0)

/* Snapshot of RAM and CPU, then a check that a faulting or unsupported instruction left
 * both as they were and touched no MMIO. */
static inline void fx_snapshot(struct fx *fx, const struct emu_cpu *c, struct emu_cpu *save)
{
	memcpy(fx->snap, fx->ram, FX_RAM_SIZE);
	memcpy(save, c, sizeof(*save));
}

#define FX_CHECK_UNCHANGED(fx, c, save)                                                            \
	do {                                                                                       \
		CHECK(memcmp((fx)->snap, (fx)->ram, FX_RAM_SIZE) == 0);                            \
		CHECK(memcmp((save), (c), sizeof(*(c))) == 0);                                     \
		for (unsigned int i_ = 0; i_ < (fx)->nlog; i_++)                                   \
			CHECK(!(fx)->log[i_].write);                                               \
	} while (0)

/* Checks a fault result: vector and error code (err < 0: none). */
#define FX_CHECK_FAULT(res, vec, err)                                                              \
	do {                                                                                       \
		CHECK_EQ((res)->status, EMU_FAULT);                                                \
		CHECK_EQ((res)->fault.vector, (vec));                                              \
		CHECK_EQ((res)->fault.has_error_code, (err) >= 0);                                 \
		if ((err) >= 0)                                                                    \
			CHECK_EQ((res)->fault.error_code, (err));                                  \
	} while (0)

static inline void fx_get_xmm(const struct emu_cpu *c, unsigned int i, void *out)
{
	memcpy(out, c->xsave + FX_XMM(i), 16);
}

static inline void fx_set_xmm(struct emu_cpu *c, unsigned int i, const void *in)
{
	memcpy(c->xsave + FX_XMM(i), in, 16);
}

static inline void fx_get_ymmh(const struct emu_cpu *c, unsigned int i, void *out)
{
	memcpy(out, c->xsave + FX_YMMH(i), 16);
}

static inline void fx_set_ymmh(struct emu_cpu *c, unsigned int i, const void *in)
{
	memcpy(c->xsave + FX_YMMH(i), in, 16);
}

static inline void fx_fill(void *p, size_t n, uint8_t seed)
{
	uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed + i * 7);
}

#endif
