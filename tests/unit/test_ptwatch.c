/* test_ptwatch.c: --accel hybrid's page-table coherence rules (dbt/ptwatch.h) on page tables
 * built in a small guest RAM: which tables are tracked (the user-reachable tree of a CR3, and
 * tables later linked in), which reported changes are harmless (not-present to present,
 * accessed/dirty set, supervisor-only on both sides, the VMM's own slot) and which force KVM's
 * shadow to be dropped (present entries cleared, write-protected, made supervisor-only,
 * repointed; accessed/dirty cleared), which of those a zap of the old page covers (leaf
 * entries into RAM) and which need the flush, and what happens when the table of tracked
 * pages fills. */
#include <stdint.h>
#include <stdlib.h>

#include "core/guest_mem.h"
#include "dbt/ptwatch.h"
#include "test.h"

#define RAM   (4u << 20)
#define P     (1ull << 0)
#define RW    (1ull << 1)
#define US    (1ull << 2)
#define A     (1ull << 5)
#define D     (1ull << 6)
#define PS    (1ull << 7)
#define NX    (1ull << 63)
#define SKIP  401

/* Tables at fixed pages: a PML4 with a user subtree in slot 0 (PDPT, PD, PT) and a supervisor
 * subtree in slot 300 (PDPT_K, PD_K), a spare table, and data frames. */
#define PML4   0x10000ull
#define PDPT   0x11000ull
#define PD     0x12000ull
#define PT     0x13000ull
#define PDPT_K 0x14000ull
#define PD_K   0x15000ull
#define SPARE  0x16000ull
#define PML4_B 0x17000ull
#define FRAME  0x100000ull

/* Without zaps (guest RAM not shared): every revocation is a flush. */
#define PREP(w, cr3) ptwatch_prepare(w, cr3, false)

static uint8_t *ram;
static struct guest_mem mem;

static uint64_t *table(uint64_t gpa)
{
	return (uint64_t *)(ram + gpa);
}

/* A store the engine made and reported. */
static void store(uint64_t gpa, unsigned int index, uint64_t value, struct ptwatch *w)
{
	table(gpa)[index] = value;
	ptwatch_written(w, gpa + 8 * index, 8);
}

static void build(void)
{
	memset(ram, 0, RAM);
	table(PML4)[0] = PDPT | P | RW | US;
	table(PML4)[300] = PDPT_K | P | RW;
	table(PDPT)[0] = PD | P | RW | US;
	table(PD)[0] = PT | P | RW | US;
	table(PD)[1] = 0x200000 | P | RW | US | PS; /* a 2 MiB user page: no table below */
	for (unsigned int i = 0; i < 8; i++)
		table(PT)[i] = (FRAME + 4096 * i) | P | RW | US;
	table(PDPT_K)[0] = PD_K | P | RW;
}

static void fresh(struct ptwatch *w, unsigned int max)
{
	build();
	CHECK_EQ(ptwatch_init(w, &mem, max, SKIP), 0);
	CHECK_EQ(PREP(w, PML4), PTWATCH_OK);
}

static void test_tracking(void)
{
	struct ptwatch w;

	fresh(&w, 64);
	CHECK(ptwatch_tracked(&w, PML4));
	CHECK(ptwatch_tracked(&w, PDPT));
	CHECK(ptwatch_tracked(&w, PD));
	CHECK(ptwatch_tracked(&w, PT + 0x123));
	/* Supervisor-only subtrees and data pages are not tables user mode walks. */
	CHECK(!ptwatch_tracked(&w, PDPT_K));
	CHECK(!ptwatch_tracked(&w, PD_K));
	CHECK(!ptwatch_tracked(&w, FRAME));
	CHECK(!ptwatch_tracked(&w, 0x200000));
	CHECK_EQ(w.npages, 4);
	/* Nothing written: nothing to do, again and again. */
	CHECK_EQ(PREP(&w, PML4), PTWATCH_OK);
	CHECK_EQ(w.stale_count, 0);
	ptwatch_fini(&w);
}

static void test_harmless(void)
{
	struct ptwatch w;

	fresh(&w, 64);
	/* Not present -> present. */
	store(PT, 20, (FRAME + 0x9000) | P | RW | US, &w);
	CHECK_EQ(PREP(&w, PML4), PTWATCH_OK);
	/* Accessed and dirty set. */
	store(PT, 0, table(PT)[0] | A | D, &w);
	store(PD, 0, table(PD)[0] | A, &w);
	CHECK_EQ(PREP(&w, PML4), PTWATCH_OK);
	/* Supervisor-only before and after, even repointed. */
	store(PML4, 300, PD_K | P, &w);
	CHECK_EQ(PREP(&w, PML4), PTWATCH_OK);
	/* The VMM's own slot. */
	store(PML4, SKIP, 0x1234000 | P | RW | US, &w);
	CHECK_EQ(PREP(&w, PML4), PTWATCH_OK);
	/* A new user table linked in (not present -> present) is tracked from then on, and a
	 * later change in it is seen. */
	table(SPARE)[5] = (FRAME + 0x5000) | P | RW | US;
	store(PD, 2, SPARE | P | RW | US, &w);
	CHECK_EQ(PREP(&w, PML4), PTWATCH_OK);
	CHECK(ptwatch_tracked(&w, SPARE));
	store(SPARE, 5, (FRAME + 0x5000) | P | US, &w);
	CHECK_EQ(PREP(&w, PML4), PTWATCH_FLUSH);
	CHECK_EQ(w.stale_count, 1);
	ptwatch_fini(&w);
}

/* Each change below, reported, must force a flush; after it tracking starts afresh. */
static void test_revoking(void)
{
	static const struct {
		const char *name;
		uint64_t gpa;
		unsigned int index;
		uint64_t value;	/* ~0: the old value with bits (clear) cleared */
		uint64_t clear, set;
	} cases[] = {
		{"leaf cleared", PT, 0, 0, 0, 0},
		{"leaf write-protected", PT, 1, ~0ull, RW, 0},
		{"leaf made supervisor-only", PT, 2, ~0ull, US, 0},
		{"leaf no-execute", PT, 3, ~0ull, 0, NX},
		{"leaf repointed", PT, 4, (FRAME + 0x40000) | P | RW | US, 0, 0},
		{"dirty cleared", PT, 5, ~0ull, D, 0},
		{"PD entry cleared", PD, 0, 0, 0, 0},
		{"PD entry repointed", PD, 0, SPARE | P | RW | US, 0, 0},
		{"large page write-protected", PD, 1, ~0ull, RW, 0},
		{"PML4 entry cleared", PML4, 0, 0, 0, 0},
		{"supervisor entry made user", PML4, 300, ~0ull, 0, US},
	};

	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ptwatch w;
		uint64_t v;

		fresh(&w, 64);
		table(PT)[5] |= A | D; /* what KVM or the engine set since */
		store(PT, 5, table(PT)[5], &w);
		CHECK_EQ(PREP(&w, PML4), PTWATCH_OK);
		v = cases[i].value == ~0ull
			    ? (table(cases[i].gpa)[cases[i].index] & ~cases[i].clear) | cases[i].set
			    : cases[i].value;
		store(cases[i].gpa, cases[i].index, v, &w);
		if (PREP(&w, PML4) != PTWATCH_FLUSH)
			fprintf(stderr, "no flush for: %s\n", cases[i].name);
		CHECK_EQ(w.stale_count, 1);
		/* Tracking started afresh from the current tree. */
		CHECK(ptwatch_tracked(&w, PML4));
		CHECK_EQ(PREP(&w, PML4), PTWATCH_OK);
		ptwatch_fini(&w);
	}
}

/* A store nobody reported is not seen: the engine must report every store to a tracked page
 * (its slow path, as for code pages). Reports of pages not tracked are ignored. */
static void test_reports(void)
{
	struct ptwatch w;

	fresh(&w, 64);
	table(PT)[0] = 0;
	CHECK_EQ(PREP(&w, PML4), PTWATCH_OK);
	ptwatch_written(&w, FRAME, 4096);
	CHECK_EQ(w.ndirty, 0);
	ptwatch_all_written(&w);
	CHECK_EQ(PREP(&w, PML4), PTWATCH_FLUSH);
	ptwatch_fini(&w);
}

/* Another CR3: its tree is tracked too, and a change there is seen even while the first
 * runs. */
static void test_second_root(void)
{
	struct ptwatch w;

	fresh(&w, 64);
	table(PML4_B)[0] = SPARE | P | RW | US;
	table(SPARE)[0] = 0;
	CHECK_EQ(PREP(&w, PML4_B), PTWATCH_OK);
	CHECK(ptwatch_tracked(&w, PML4_B));
	CHECK(ptwatch_tracked(&w, SPARE));
	CHECK(ptwatch_tracked(&w, PT));
	store(PML4_B, 0, 0, &w);
	CHECK_EQ(PREP(&w, PML4), PTWATCH_FLUSH);
	CHECK(!ptwatch_tracked(&w, PML4_B));
	ptwatch_fini(&w);
}

static void test_full(void)
{
	struct ptwatch w;

	build();
	CHECK_EQ(ptwatch_init(&w, &mem, 3, SKIP), 0);
	CHECK_EQ(PREP(&w, PML4), PTWATCH_UNTRACKED);
	CHECK_EQ(w.npages, 0);
	CHECK(!ptwatch_tracked(&w, PML4));
	ptwatch_fini(&w);
}

/* With zaps: a revoked leaf names the page it mapped (4 KiB or 2 MiB); table entries, pages
 * outside RAM and too many zaps at once flush. */
static void test_zaps(void)
{
	struct ptwatch w;

	fresh(&w, 64);
	store(PT, 1, table(PT)[1] & ~RW, &w);
	store(PT, 2, (FRAME + 0x70000) | P | RW | US, &w);
	CHECK_EQ(ptwatch_prepare(&w, PML4, true), PTWATCH_ZAP);
	CHECK_EQ(w.nzap, 2);
	CHECK_EQ(w.zap[0].gpa, FRAME + 0x1000);
	CHECK_EQ(w.zap[0].len, 4096);
	CHECK_EQ(w.zap[1].gpa, FRAME + 0x2000);
	/* Tracking goes on; the zap list is for one entry only. */
	CHECK(ptwatch_tracked(&w, PT));
	CHECK_EQ(ptwatch_prepare(&w, PML4, true), PTWATCH_OK);
	CHECK_EQ(w.nzap, 0);
	/* A large page: its 2 MiB. */
	store(PD, 1, 0, &w);
	CHECK_EQ(ptwatch_prepare(&w, PML4, true), PTWATCH_ZAP);
	CHECK_EQ(w.zap[0].gpa, 0x200000);
	CHECK_EQ(w.zap[0].len, 2u << 20);
	/* A table entry: flush. */
	store(PD, 0, SPARE | P | RW | US, &w);
	CHECK_EQ(ptwatch_prepare(&w, PML4, true), PTWATCH_FLUSH);
	CHECK(ptwatch_tracked(&w, SPARE));
	ptwatch_fini(&w);

	/* A leaf that mapped something outside RAM: nothing of mvm's to drop. */
	fresh(&w, 64);
	table(PT)[9] = 0x7f000000 | P | RW | US;
	store(PT, 9, table(PT)[9], &w); /* not present -> present: harmless */
	CHECK_EQ(ptwatch_prepare(&w, PML4, true), PTWATCH_OK);
	store(PT, 9, 0, &w);
	CHECK_EQ(ptwatch_prepare(&w, PML4, true), PTWATCH_FLUSH);
	ptwatch_fini(&w);

	/* More revocations than the list holds. */
	fresh(&w, 64);
	for (unsigned int i = 0; i < 512; i++)
		table(PT)[i] = (FRAME + 4096ull * (i % 64)) | P | RW | US;
	ptwatch_all_written(&w);
	CHECK_EQ(ptwatch_prepare(&w, PML4, true), PTWATCH_OK);
	for (unsigned int i = 0; i <= PTW_MAX_ZAPS; i++)
		store(PT, i, 0, &w);
	CHECK_EQ(ptwatch_prepare(&w, PML4, true), PTWATCH_FLUSH);
	ptwatch_fini(&w);

	/* A page used as a PT in one tree and as a PD in another: a change there is a table
	 * entry for the second, so it flushes. */
	fresh(&w, 64);
	table(PML4_B)[0] = SPARE | P | RW | US;
	table(SPARE)[0] = PT | P | RW | US; /* SPARE: a PDPT whose entry 0 is PT, used as a PD */
	CHECK_EQ(ptwatch_prepare(&w, PML4_B, true), PTWATCH_OK);
	store(PT, 0, 0, &w);
	CHECK_EQ(ptwatch_prepare(&w, PML4, true), PTWATCH_FLUSH);
	ptwatch_fini(&w);
}

int main(void)
{
	ram = aligned_alloc(4096, RAM);
	if (!ram)
		return T_EXIT_FAIL;
	guest_mem_init(&mem);
	if (guest_mem_add(&mem, 0, RAM, ram))
		return T_EXIT_FAIL;
	test_tracking();
	test_harmless();
	test_revoking();
	test_reports();
	test_second_root();
	test_full();
	test_zaps();
	free(ram);
	return t_done();
}
