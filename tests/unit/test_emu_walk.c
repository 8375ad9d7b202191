/* test_emu_walk.c: the emulator's page walker (emu/walk.h) against SDM Vol. 3A ch. 4, table
 * driven: 4-level, PAE and 32-bit paging; present, U/S against the access mode, R/W with
 * CR0.WP, NX with EFER.NXE, SMEP, SMAP with RFLAGS.AC and implicit accesses, reserved bits
 * (PS in the PML4E, bits above MAXPHYADDR, NX without NXE, large-page bits), 2M/4M/1G pages,
 * the #PF error code (P, W, U, RSVD, I) and CR2, and the accessed/dirty bits. */
#include "emu_fixture.h"

#define ALL    (FX_P | FX_RW | FX_US)
#define RD     0u
#define WR     EMU_ACC_WRITE
#define EX     EMU_ACC_FETCH
#define USR    EMU_ACC_USER
#define IMPL   EMU_ACC_IMPLICIT
#define OK     (-1)
#define MAXPHY 46

/* Tables live at fixed guest-physical pages; the leaf page's address depends on its size. */
#define T_TOP	0x10000ull
#define T_L3	0x11000ull
#define T_L2	0x12000ull
#define T_L1	0x13000ull
#define PAGE_4K 0x345000ull
#define PAGE_2M 0xa00000ull
#define PAGE_4M 0xc00000ull
#define PAGE_1G 0x40000000ull

enum mode { M4, MPAE, M32 };

#define WP   (1u << 0)
#define NXE  (1u << 1)
#define SMEP (1u << 2)
#define SMAP (1u << 3)
#define AC   (1u << 4)
#define PSE  (1u << 5)

struct wcase {
	const char *name;
	enum mode mode;
	uint64_t e[4]; /* entries from the top level down (flags and extra bits) */
	unsigned int acc;
	unsigned int cpu; /* WP, NXE, ... */
	int err;	  /* expected #PF error code, or OK */
	uint64_t gpa;	  /* expected translation when OK (0: the default for the size) */
};

static const uint64_t LA4 = (3ull << 39) | (5ull << 30) | (7ull << 21) | (9ull << 12) | 0x123;
static const uint64_t LAPAE = (2ull << 30) | (7ull << 21) | (9ull << 12) | 0x123;
static const uint64_t LA32 = (5ull << 22) | (9ull << 12) | 0x123;

/* clang-format off */
static const struct wcase cases[] = {
	/* 4-level: present. */
	{"4l supervisor read", M4, {ALL, ALL, ALL, ALL}, RD, WP | NXE, OK, 0},
	{"4l PML4E not present", M4, {0, ALL, ALL, ALL}, RD, WP | NXE, 0, 0},
	{"4l PTE not present, write", M4, {ALL, ALL, ALL, 0}, WR, WP | NXE, PF_W, 0},
	{"4l PDE not present, user", M4, {ALL, ALL, 0, ALL}, USR, WP | NXE, PF_U, 0},
	{"4l PTE not present, user fetch, NXE: I", M4, {ALL, ALL, ALL, 0}, USR | EX, NXE,
	 PF_U | PF_I, 0},
	{"4l not present fetch without NXE/SMEP: no I", M4, {ALL, ALL, ALL, 0}, EX, WP, 0, 0},
	/* U/S. */
	{"4l user read of supervisor PDE", M4, {ALL, ALL, FX_P | FX_RW, ALL}, USR, WP | NXE,
	 PF_P | PF_U, 0},
	{"4l user read of supervisor PTE", M4, {ALL, ALL, ALL, FX_P | FX_RW}, USR, WP | NXE,
	 PF_P | PF_U, 0},
	{"4l user read of supervisor PML4E", M4, {FX_P | FX_RW, ALL, ALL, ALL}, USR, WP,
	 PF_P | PF_U, 0},
	{"4l user read of user page", M4, {ALL, ALL, ALL, ALL}, USR, WP, OK, 0},
	/* R/W and CR0.WP. */
	{"4l user write, PDPTE read-only", M4, {ALL, FX_P | FX_US, ALL, ALL}, USR | WR, WP,
	 PF_P | PF_W | PF_U, 0},
	{"4l user read, read-only", M4, {ALL, FX_P | FX_US, ALL, ALL}, USR, WP, OK, 0},
	{"4l user write read-only, WP=0 still faults", M4, {ALL, ALL, ALL, FX_P | FX_US},
	 USR | WR, 0, PF_P | PF_W | PF_U, 0},
	{"4l supervisor write read-only, WP=1", M4, {ALL, ALL, ALL, FX_P}, WR, WP,
	 PF_P | PF_W, 0},
	{"4l supervisor write read-only, WP=0", M4, {ALL, ALL, ALL, FX_P}, WR, 0, OK, 0},
	{"4l supervisor write read-only user page, WP=0", M4, {ALL, ALL, ALL, FX_P | FX_US}, WR,
	 0, OK, 0},
	{"4l supervisor write read-only PML4E, WP=1", M4, {FX_P | FX_US, ALL, ALL, ALL}, WR, WP,
	 PF_P | PF_W, 0},
	/* NX. */
	{"4l fetch of NX page, NXE", M4, {ALL, ALL, ALL, ALL | FX_NX}, EX, NXE, PF_P | PF_I, 0},
	{"4l fetch under NX PML4E, NXE", M4, {ALL | FX_NX, ALL, ALL, ALL}, EX, NXE,
	 PF_P | PF_I, 0},
	{"4l user fetch of NX page", M4, {ALL, ALL, ALL, ALL | FX_NX}, USR | EX, NXE,
	 PF_P | PF_U | PF_I, 0},
	{"4l read of NX page", M4, {ALL, ALL, ALL, ALL | FX_NX}, RD, NXE, OK, 0},
	{"4l NX without NXE is reserved (read)", M4, {ALL, ALL, ALL, ALL | FX_NX}, RD, 0,
	 PF_P | PF_RSVD, 0},
	{"4l NX without NXE is reserved (fetch, no I)", M4, {ALL, ALL, ALL, ALL | FX_NX}, EX, 0,
	 PF_P | PF_RSVD, 0},
	/* SMEP. */
	{"4l SMEP: supervisor fetch of user page", M4, {ALL, ALL, ALL, ALL}, EX, SMEP,
	 PF_P | PF_I, 0},
	{"4l SMEP: supervisor fetch of supervisor page", M4, {ALL, ALL, ALL, FX_P | FX_RW}, EX,
	 SMEP, OK, 0},
	{"4l SMEP off: supervisor fetch of user page", M4, {ALL, ALL, ALL, ALL}, EX, 0, OK, 0},
	{"4l SMEP: user fetch of user page", M4, {ALL, ALL, ALL, ALL}, USR | EX, SMEP, OK, 0},
	{"4l SMEP: page is user only if U at every level", M4, {ALL, FX_P | FX_RW, ALL, ALL},
	 EX, SMEP, OK, 0},
	/* SMAP. */
	{"4l SMAP: supervisor read of user page, AC=0", M4, {ALL, ALL, ALL, ALL}, RD, SMAP,
	 PF_P, 0},
	{"4l SMAP: supervisor write of user page, AC=0", M4, {ALL, ALL, ALL, ALL}, WR, SMAP | WP,
	 PF_P | PF_W, 0},
	{"4l SMAP: supervisor read of user page, AC=1", M4, {ALL, ALL, ALL, ALL}, RD, SMAP | AC,
	 OK, 0},
	{"4l SMAP: supervisor write of user page, AC=1", M4, {ALL, ALL, ALL, ALL}, WR,
	 SMAP | AC | WP, OK, 0},
	{"4l SMAP: implicit access ignores AC=1", M4, {ALL, ALL, ALL, ALL}, IMPL, SMAP | AC,
	 PF_P, 0},
	{"4l SMAP: implicit write ignores AC=1", M4, {ALL, ALL, ALL, ALL}, IMPL | WR,
	 SMAP | AC, PF_P | PF_W, 0},
	{"4l SMAP: supervisor page", M4, {ALL, ALL, ALL, FX_P | FX_RW}, RD, SMAP, OK, 0},
	{"4l SMAP: user access", M4, {ALL, ALL, ALL, ALL}, USR, SMAP, OK, 0},
	{"4l SMAP: fetches are SMEP's business", M4, {ALL, ALL, ALL, ALL}, EX, SMAP, OK, 0},
	{"4l SMAP: page is user only if U at every level", M4, {ALL, ALL, FX_P | FX_RW, ALL},
	 RD, SMAP, OK, 0},
	/* Reserved bits. */
	{"4l PS in PML4E is reserved", M4, {ALL | FX_PS, ALL, ALL, ALL}, RD, NXE,
	 PF_P | PF_RSVD, 0},
	{"4l bit 51 (above MAXPHYADDR) in PTE", M4, {ALL, ALL, ALL, ALL | (1ull << 51)}, RD,
	 NXE, PF_P | PF_RSVD, 0},
	{"4l bit 46 (= MAXPHYADDR) in PDE", M4, {ALL, ALL, ALL | (1ull << MAXPHY), ALL}, RD,
	 NXE, PF_P | PF_RSVD, 0},
	{"4l reserved bit, write", M4, {ALL, ALL, ALL, ALL | (1ull << 50)}, WR, NXE,
	 PF_P | PF_W | PF_RSVD, 0},
	{"4l reserved bit, user fetch", M4, {ALL, ALL, ALL, ALL | (1ull << 50)}, USR | EX, NXE,
	 PF_P | PF_U | PF_RSVD | PF_I, 0},
	{"4l reserved bit beats U/S", M4, {ALL, ALL, ALL, FX_P | FX_RW | (1ull << 51)}, USR,
	 NXE, PF_P | PF_U | PF_RSVD, 0},
	{"4l bits 52-62 are ignored", M4, {ALL, ALL, ALL, ALL | (0x7full << 52)}, RD, NXE, OK,
	 0},
	/* Large pages. */
	{"4l 2M page", M4, {ALL, ALL, ALL | FX_PS, 0}, RD, NXE, OK, 0},
	{"4l 2M page, PAT bit 12 is not reserved", M4, {ALL, ALL, ALL | FX_PS | (1ull << 12), 0},
	 RD, NXE, OK, 0},
	{"4l 2M page, bit 13 reserved", M4, {ALL, ALL, ALL | FX_PS | (1ull << 13), 0}, RD, NXE,
	 PF_P | PF_RSVD, 0},
	{"4l 2M page, bit 20 reserved", M4, {ALL, ALL, ALL | FX_PS | (1ull << 20), 0}, RD, NXE,
	 PF_P | PF_RSVD, 0},
	{"4l 2M page, user write read-only", M4, {ALL, ALL, FX_P | FX_US | FX_PS, 0}, USR | WR,
	 NXE, PF_P | PF_W | PF_U, 0},
	{"4l 2M page, NX fetch", M4, {ALL, ALL, ALL | FX_PS | FX_NX, 0}, EX, NXE, PF_P | PF_I, 0},
	{"4l 1G page", M4, {ALL, ALL | FX_PS, 0, 0}, RD, NXE, OK, 0},
	{"4l 1G page, bit 29 reserved", M4, {ALL, ALL | FX_PS | (1ull << 29), 0, 0}, RD, NXE,
	 PF_P | PF_RSVD, 0},
	{"4l 1G page, bit 13 reserved", M4, {ALL, ALL | FX_PS | (1ull << 13), 0, 0}, RD, NXE,
	 PF_P | PF_RSVD, 0},
	{"4l 1G page, supervisor, user read", M4, {ALL, FX_P | FX_RW | FX_PS, 0, 0}, USR, NXE,
	 PF_P | PF_U, 0},

	/* PAE: four PDPTEs without R/W, U/S or NX. */
	{"pae supervisor read", MPAE, {FX_P, ALL, ALL}, RD, WP | NXE, OK, 0},
	{"pae user read (PDPTE has no U/S)", MPAE, {FX_P, ALL, ALL}, USR, WP | NXE, OK, 0},
	{"pae PDPTE not present", MPAE, {0, ALL, ALL}, RD, WP | NXE, 0, 0},
	{"pae PTE not present, write", MPAE, {FX_P, ALL, 0}, WR, WP | NXE, PF_W, 0},
	{"pae PDPTE R/W bit is reserved", MPAE, {FX_P | FX_RW, ALL, ALL}, RD, WP | NXE,
	 PF_P | PF_RSVD, 0},
	{"pae PDPTE U/S bit is reserved", MPAE, {FX_P | FX_US, ALL, ALL}, RD, WP | NXE,
	 PF_P | PF_RSVD, 0},
	{"pae PDPTE bit 63 is reserved even with NXE", MPAE, {FX_P | FX_NX, ALL, ALL}, RD,
	 WP | NXE, PF_P | PF_RSVD, 0},
	{"pae PTE bit 62 is reserved", MPAE, {FX_P, ALL, ALL | (1ull << 62)}, RD, WP | NXE,
	 PF_P | PF_RSVD, 0},
	{"pae PDE bit 52 is reserved", MPAE, {FX_P, ALL | (1ull << 52), ALL}, RD, WP | NXE,
	 PF_P | PF_RSVD, 0},
	{"pae NX without NXE is reserved", MPAE, {FX_P, ALL, ALL | FX_NX}, RD, WP,
	 PF_P | PF_RSVD, 0},
	{"pae fetch of NX page", MPAE, {FX_P, ALL, ALL | FX_NX}, EX, WP | NXE, PF_P | PF_I, 0},
	{"pae user read of supervisor page", MPAE, {FX_P, ALL, FX_P | FX_RW}, USR, WP,
	 PF_P | PF_U, 0},
	{"pae supervisor write read-only, WP=1", MPAE, {FX_P, FX_P | FX_US, ALL}, WR, WP,
	 PF_P | PF_W, 0},
	{"pae 2M page", MPAE, {FX_P, ALL | FX_PS, 0}, RD, WP | NXE, OK, 0},
	{"pae 2M page, bit 13 reserved", MPAE, {FX_P, ALL | FX_PS | (1ull << 13), 0}, RD,
	 WP | NXE, PF_P | PF_RSVD, 0},
	{"pae SMEP fetch of user page", MPAE, {FX_P, ALL, ALL}, EX, SMEP, PF_P | PF_I, 0},

	/* 32-bit paging. */
	{"32 supervisor read", M32, {ALL, ALL}, RD, WP, OK, 0},
	{"32 PDE not present", M32, {0, ALL}, RD, WP, 0, 0},
	{"32 PTE not present, user write", M32, {ALL, 0}, USR | WR, WP, PF_U | PF_W, 0},
	{"32 user write read-only", M32, {ALL, FX_P | FX_US}, USR | WR, WP,
	 PF_P | PF_W | PF_U, 0},
	{"32 user read supervisor PDE", M32, {FX_P | FX_RW, ALL}, USR, WP, PF_P | PF_U, 0},
	{"32 supervisor write read-only, WP=0", M32, {ALL, FX_P}, WR, 0, OK, 0},
	{"32 supervisor write read-only, WP=1", M32, {ALL, FX_P}, WR, WP, PF_P | PF_W, 0},
	{"32 fetch with EFER.NXE: no I (needs PAE)", M32, {ALL, 0}, EX, NXE, 0, 0},
	{"32 SMEP fetch of user page: I", M32, {ALL, ALL}, EX, SMEP, PF_P | PF_I, 0},
	{"32 SMAP read of user page", M32, {ALL, ALL}, RD, SMAP, PF_P, 0},
	{"32 4M page with CR4.PSE", M32, {ALL | FX_PS, 0}, RD, WP | PSE, OK, 0},
	{"32 PS ignored without CR4.PSE", M32, {ALL | FX_PS, ALL}, RD, WP, OK, PAGE_4K | 0x123},
	{"32 4M page, bit 21 reserved", M32, {ALL | FX_PS | (1ull << 21), 0}, RD, WP | PSE,
	 PF_P | PF_RSVD, 0},
	{"32 4M page, PSE-36 address bits 39:32", M32, {ALL | FX_PS | (0x81ull << 13), 0}, RD,
	 WP | PSE, OK, (0x81ull << 32) | PAGE_4M | (LA32 & 0x3fffff)},
	{"32 4M page, user read of supervisor page", M32, {FX_P | FX_RW | FX_PS, 0}, USR,
	 WP | PSE, PF_P | PF_U, 0},
};
/* clang-format on */

static uint64_t la_for(enum mode m)
{
	return m == M4 ? LA4 : m == MPAE ? LAPAE : LA32;
}

static void put32(struct fx *fx, uint64_t gpa, uint32_t v)
{
	memcpy(fx->ram + gpa, &v, 4);
}

/* Writes the tables for (w) and returns the translation it should give. */
static uint64_t build(struct fx *fx, const struct wcase *w)
{
	memset(fx->ram + T_TOP, 0, 0x4000);
	if (w->mode == M4) {
		fx_put64(fx, T_TOP + 3 * 8, T_L3 | w->e[0]);
		if (w->e[1] & FX_PS) {
			fx_put64(fx, T_L3 + 5 * 8, PAGE_1G | w->e[1]);
			return PAGE_1G | (LA4 & 0x3fffffff);
		}
		fx_put64(fx, T_L3 + 5 * 8, T_L2 | w->e[1]);
		if (w->e[2] & FX_PS) {
			fx_put64(fx, T_L2 + 7 * 8, PAGE_2M | w->e[2]);
			return PAGE_2M | (LA4 & 0x1fffff);
		}
		fx_put64(fx, T_L2 + 7 * 8, T_L1 | w->e[2]);
		fx_put64(fx, T_L1 + 9 * 8, PAGE_4K | w->e[3]);
		return PAGE_4K | 0x123;
	}
	if (w->mode == MPAE) {
		fx_put64(fx, T_TOP + 2 * 8, T_L2 | w->e[0]);
		if (w->e[1] & FX_PS) {
			fx_put64(fx, T_L2 + 7 * 8, PAGE_2M | w->e[1]);
			return PAGE_2M | (LAPAE & 0x1fffff);
		}
		fx_put64(fx, T_L2 + 7 * 8, T_L1 | w->e[1]);
		fx_put64(fx, T_L1 + 9 * 8, PAGE_4K | w->e[2]);
		return PAGE_4K | 0x123;
	}
	if ((w->e[0] & FX_PS) && (w->cpu & PSE)) {
		put32(fx, T_TOP + 5 * 4, (uint32_t)(PAGE_4M | w->e[0]));
		return PAGE_4M | (LA32 & 0x3fffff);
	}
	put32(fx, T_TOP + 5 * 4, (uint32_t)(T_L1 | w->e[0]));
	put32(fx, T_L1 + 9 * 4, (uint32_t)(PAGE_4K | w->e[1]));
	return PAGE_4K | 0x123;
}

static void cpu_for(struct emu_cpu *c, enum mode m, unsigned int flags)
{
	fx_init_cpu(c);
	c->cr3 = T_TOP;
	c->cr0 = FX_CR0_PE | FX_CR0_PG | ((flags & WP) ? FX_CR0_WP : 0);
	c->cr4 = (m != M32 ? FX_CR4_PAE : 0) | ((flags & SMEP) ? FX_CR4_SMEP : 0) |
		 ((flags & SMAP) ? FX_CR4_SMAP : 0) | ((flags & PSE) ? FX_CR4_PSE : 0);
	c->efer = (m == M4 ? FX_EFER_LME | FX_EFER_LMA : 0) | ((flags & NXE) ? FX_EFER_NXE : 0);
	c->rflags = 0x2 | ((flags & AC) ? FX_AC : 0);
}

static void run_cases(struct fx *fx)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct wcase *w = &cases[i];
		struct emu_cpu c;
		struct emu_fault f = {0};
		uint64_t gpa = 0, want = build(fx, w);
		enum emu_walk_status s;
		int before = t_failures;

		if (w->gpa)
			want = w->gpa;
		cpu_for(&c, w->mode, w->cpu);
		s = emu_walk(&c, &fx->mem, MAXPHY, la_for(w->mode), w->acc, &gpa, &f);
		if (w->err == OK) {
			CHECK_EQ(s, WALK_OK);
			CHECK_EQ(gpa, want);
		} else {
			CHECK_EQ(s, WALK_FAULT);
			CHECK_EQ(f.vector, 14);
			CHECK(f.has_error_code);
			CHECK_EQ(f.error_code, (uint32_t)w->err);
			CHECK_EQ(f.cr2, la_for(w->mode));
		}
		if (t_failures != before)
			fprintf(stderr, "  in case \"%s\"\n", w->name);
	}
}

/* A/D bits: A on every level used, D only on the leaf and only for writes; none for a walk
 * that faults on rights. */
static void test_accessed_dirty(struct fx *fx)
{
	struct wcase w = {"ad", M4, {ALL, ALL, ALL, ALL}, RD, WP | NXE, OK, 0};
	struct emu_cpu c;
	struct emu_fault f;
	uint64_t gpa;

	build(fx, &w);
	cpu_for(&c, M4, w.cpu);
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, LA4, RD, &gpa, &f), WALK_OK);
	CHECK_EQ(fx_get64(fx, T_TOP + 3 * 8) & (FX_A | FX_D), FX_A);
	CHECK_EQ(fx_get64(fx, T_L3 + 5 * 8) & (FX_A | FX_D), FX_A);
	CHECK_EQ(fx_get64(fx, T_L2 + 7 * 8) & (FX_A | FX_D), FX_A);
	CHECK_EQ(fx_get64(fx, T_L1 + 9 * 8) & (FX_A | FX_D), FX_A);
	/* A fetch sets A, not D. */
	build(fx, &w);
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, LA4, EX, &gpa, &f), WALK_OK);
	CHECK_EQ(fx_get64(fx, T_L1 + 9 * 8) & (FX_A | FX_D), FX_A);
	/* A write sets D on the PTE only. */
	build(fx, &w);
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, LA4, WR, &gpa, &f), WALK_OK);
	CHECK_EQ(fx_get64(fx, T_TOP + 3 * 8) & (FX_A | FX_D), FX_A);
	CHECK_EQ(fx_get64(fx, T_L3 + 5 * 8) & (FX_A | FX_D), FX_A);
	CHECK_EQ(fx_get64(fx, T_L2 + 7 * 8) & (FX_A | FX_D), FX_A);
	CHECK_EQ(fx_get64(fx, T_L1 + 9 * 8) & (FX_A | FX_D), FX_A | FX_D);
	/* The rest of the entry is untouched. */
	CHECK_EQ(fx_get64(fx, T_L1 + 9 * 8), PAGE_4K | ALL | FX_A | FX_D);
	/* 2M page: D on the PDE, which is the leaf. */
	w.e[2] = ALL | FX_PS;
	build(fx, &w);
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, LA4, WR, &gpa, &f), WALK_OK);
	CHECK_EQ(fx_get64(fx, T_L3 + 5 * 8) & (FX_A | FX_D), FX_A);
	CHECK_EQ(fx_get64(fx, T_L2 + 7 * 8) & (FX_A | FX_D), FX_A | FX_D);
	/* A write that faults for rights sets no D. */
	w.e[2] = ALL;
	w.e[3] = FX_P | FX_US;
	build(fx, &w);
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, LA4, WR, &gpa, &f), WALK_FAULT);
	CHECK_EQ(fx_get64(fx, T_L1 + 9 * 8) & FX_D, 0);
	/* 32-bit paging: 4-byte entries, and the neighbouring entry is not touched. */
	struct wcase w32 = {"ad32", M32, {ALL, ALL}, RD, WP, OK, 0};
	uint32_t pde, pte, next;

	build(fx, &w32);
	put32(fx, T_L1 + 10 * 4, 0x12345007);
	cpu_for(&c, M32, w32.cpu);
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, LA32, WR, &gpa, &f), WALK_OK);
	memcpy(&pde, fx->ram + T_TOP + 5 * 4, 4);
	memcpy(&pte, fx->ram + T_L1 + 9 * 4, 4);
	memcpy(&next, fx->ram + T_L1 + 10 * 4, 4);
	CHECK_EQ(pde & (FX_A | FX_D), FX_A);
	CHECK_EQ(pte & (FX_A | FX_D), FX_A | FX_D);
	CHECK_EQ(next, 0x12345007);
	/* PAE: the PDPTE has no A bit to set (bit 5 is reserved there). */
	struct wcase wp = {"adpae", MPAE, {FX_P, ALL, ALL}, RD, WP | NXE, OK, 0};

	build(fx, &wp);
	cpu_for(&c, MPAE, wp.cpu);
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, LAPAE, WR, &gpa, &f), WALK_OK);
	CHECK_EQ(fx_get64(fx, T_TOP + 2 * 8), T_L2 | FX_P);
	CHECK_EQ(fx_get64(fx, T_L1 + 9 * 8) & (FX_A | FX_D), FX_A | FX_D);
	/* The PAE walk again: a PDPTE with A set would now be reserved; it must still work. */
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, LAPAE, RD, &gpa, &f), WALK_OK);
}

/* A/D updates are made only into the entries the walk read: an entry another vCPU changed
 * between the walk and the update (here a PTE made a swap entry, P clear) keeps its value,
 * and the access must be walked again. */
static void test_ad_changed(struct fx *fx)
{
	struct wcase w = {"adx", M4, {ALL, ALL, ALL, ALL}, RD, WP | NXE, OK, 0};
	const uint64_t swap = 0x00000003e8a40000ull;
	struct emu_walk_ad ad;
	struct emu_cpu c;
	struct emu_fault f;
	uint64_t gpa;

	build(fx, &w);
	cpu_for(&c, M4, w.cpu);
	memset(&ad, 0, sizeof(ad));
	CHECK_EQ(emu_walk_record(&c, &fx->mem, MAXPHY, LA4, WR, &gpa, &f, &ad), WALK_OK);
	fx_put64(fx, T_L1 + 9 * 8, swap);
	emu_walk_apply(&ad);
	CHECK_EQ(fx_get64(fx, T_L1 + 9 * 8), swap);
	CHECK(!emu_walk_current(&ad));
	/* Walked again, it faults (not present, write). */
	CHECK_EQ(emu_walk_redo(&fx->mem, &ad, &gpa, &f), WALK_FAULT);
	CHECK_EQ(f.error_code, PF_W);
	CHECK_EQ(f.cr2, LA4);
	/* An entry changed but still present: walked again, the bits land in the new value. */
	build(fx, &w);
	memset(&ad, 0, sizeof(ad));
	CHECK_EQ(emu_walk_record(&c, &fx->mem, MAXPHY, LA4, WR, &gpa, &f, &ad), WALK_OK);
	fx_put64(fx, T_L1 + 9 * 8, PAGE_4K | ALL | (1ull << 9));
	CHECK(!emu_walk_apply(&ad));
	CHECK_EQ(fx_get64(fx, T_L1 + 9 * 8), PAGE_4K | ALL | (1ull << 9));
	CHECK_EQ(emu_walk_redo(&fx->mem, &ad, &gpa, &f), WALK_OK);
	CHECK_EQ(gpa, PAGE_4K | 0x123);
	CHECK(emu_walk_apply(&ad));
	CHECK_EQ(fx_get64(fx, T_L1 + 9 * 8), PAGE_4K | ALL | (1ull << 9) | FX_A | FX_D);
	/* 32-bit paging, 4-byte entries: the same. */
	struct wcase w32 = {"adx32", M32, {ALL, ALL}, RD, WP, OK, 0};
	uint32_t pte;

	build(fx, &w32);
	cpu_for(&c, M32, w32.cpu);
	memset(&ad, 0, sizeof(ad));
	CHECK_EQ(emu_walk_record(&c, &fx->mem, MAXPHY, LA32, WR, &gpa, &f, &ad), WALK_OK);
	put32(fx, T_L1 + 9 * 4, 0x3e8a4000);
	emu_walk_apply(&ad);
	memcpy(&pte, fx->ram + T_L1 + 9 * 4, 4);
	CHECK_EQ(pte, 0x3e8a4000);
}

static void test_modes(struct fx *fx)
{
	struct emu_cpu c;
	struct emu_fault f;
	uint64_t gpa = 0;
	struct wcase w = {"m", M4, {ALL, ALL, ALL, ALL}, RD, 0, OK, 0};

	/* Paging off: linear is physical, 32-bit outside long mode. */
	cpu_for(&c, M32, 0);
	c.cr0 &= ~FX_CR0_PG;
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, 0x1234567890ull, WR, &gpa, &f), WALK_OK);
	CHECK_EQ(gpa, 0x34567890);
	/* 5-level paging is not implemented: said so, not guessed. */
	build(fx, &w);
	cpu_for(&c, M4, 0);
	c.cr4 |= FX_CR4_LA57;
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, LA4, RD, &gpa, &f), WALK_UNSUPPORTED);
	/* A table outside RAM. */
	cpu_for(&c, M4, 0);
	c.cr3 = 0x7000000000ull;
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, LA4, RD, &gpa, &f), WALK_UNSUPPORTED);
	/* CR3 bits above MAXPHYADDR and the PCID bits are not part of the table address. */
	build(fx, &w);
	cpu_for(&c, M4, 0);
	c.cr3 = T_TOP | 0x5;
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, LA4, RD, &gpa, &f), WALK_OK);
	CHECK_EQ(gpa, PAGE_4K | 0x123);
	/* A different offset in the same page. */
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, (LA4 & ~0xfffull) | 0xfff, RD, &gpa, &f), WALK_OK);
	CHECK_EQ(gpa, PAGE_4K | 0xfff);
	/* Upper half: sign-extended addresses index with bits 47:39. */
	fx_put64(fx, T_TOP + 511 * 8, T_L3 | ALL);
	fx_put64(fx, T_L3 + 511 * 8, T_L2 | ALL);
	fx_put64(fx, T_L2 + 511 * 8, T_L1 | ALL);
	fx_put64(fx, T_L1 + 511 * 8, 0x777000 | ALL);
	CHECK_EQ(emu_walk(&c, &fx->mem, MAXPHY, 0xfffffffffffff008ull, RD, &gpa, &f), WALK_OK);
	CHECK_EQ(gpa, 0x777008);
}

int main(void)
{
	struct fx fx;

	if (!fx_init(&fx)) {
		fprintf(stderr, "fixture setup failed\n");
		return T_EXIT_FAIL;
	}
	run_cases(&fx);
	test_accessed_dirty(&fx);
	test_ad_changed(&fx);
	test_modes(&fx);
	fx_fini(&fx);
	return t_done();
}
