/* ptwatch.c: page-table coherence for --accel hybrid (the argument is in dbt/ptwatch.h). */
#include "dbt/ptwatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PTW_EMPTY   (~0ull)
#define PTE_P	    (1ull << 0)
#define PTE_US	    (1ull << 2)
#define PTE_A	    (1ull << 5)
#define PTE_D	    (1ull << 6)
#define PTE_PS	    (1ull << 7)
#define PTE_ADDR    0x000ffffffffff000ull
#define PT_ENTRIES  512

int ptwatch_init(struct ptwatch *w, const struct guest_mem *mem, unsigned int max_pages,
		 unsigned int skip_pml4)
{
	memset(w, 0, sizeof(*w));
	w->mem = mem;
	w->skip_pml4 = skip_pml4;
	w->max_pages = max_pages;
	w->nslots = 1;
	while (w->nslots < 2 * max_pages)
		w->nslots <<= 1;
	w->slot = malloc(w->nslots * sizeof(*w->slot));
	w->dirty = malloc(max_pages * sizeof(*w->dirty));
	w->pool = mmap(NULL, (size_t)max_pages * 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!w->slot || !w->dirty || w->pool == MAP_FAILED) {
		if (w->pool == MAP_FAILED)
			w->pool = NULL;
		ptwatch_fini(w);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < w->nslots; i++)
		w->slot[i].gfn = PTW_EMPTY;
	return 0;
}

void ptwatch_fini(struct ptwatch *w)
{
	if (w->pool)
		munmap(w->pool, (size_t)w->max_pages * 4096);
	free(w->slot);
	free(w->dirty);
	memset(w, 0, sizeof(*w));
}

static unsigned int slot_of(const struct ptwatch *w, uint64_t gfn)
{
	return (unsigned int)((gfn * 0x9e3779b97f4a7c15ull) >> 40) & (w->nslots - 1);
}

static struct ptw_page *find(const struct ptwatch *w, uint64_t gfn)
{
	if (!w->npages)
		return NULL;
	for (unsigned int i = slot_of(w, gfn);; i = (i + 1) & (w->nslots - 1)) {
		if (w->slot[i].gfn == gfn)
			return &w->slot[i];
		if (w->slot[i].gfn == PTW_EMPTY)
			return NULL;
	}
}

bool ptwatch_tracked(const struct ptwatch *w, uint64_t gpa)
{
	return find(w, gpa >> 12) != NULL;
}

static void mark(struct ptwatch *w, struct ptw_page *p)
{
	if (p->dirty)
		return;
	p->dirty = true;
	w->dirty[w->ndirty++] = (uint32_t)(p - w->slot);
}

void ptwatch_written(struct ptwatch *w, uint64_t gpa, uint64_t len)
{
	if (!w->npages || !len)
		return;
	for (uint64_t gfn = gpa >> 12; gfn <= (gpa + len - 1) >> 12; gfn++) {
		struct ptw_page *p = find(w, gfn);

		if (p)
			mark(w, p);
	}
}

void ptwatch_all_written(struct ptwatch *w)
{
	for (unsigned int i = 0; i < w->nslots && w->npages; i++)
		if (w->slot[i].gfn != PTW_EMPTY)
			mark(w, &w->slot[i]);
}

static void forget_all(struct ptwatch *w)
{
	for (unsigned int i = 0; i < w->nslots; i++)
		w->slot[i].gfn = PTW_EMPTY;
	w->npages = 0;
	w->ndirty = 0;
	w->stale = false;
	w->full = false;
}

/* Whether entry (e) of a level-(level) table points to a lower table (not a large page). */
static bool is_table(uint64_t e, unsigned int level)
{
	return level > 1 && !((level == 2 || level == 3) && (e & PTE_PS));
}

static void track(struct ptwatch *w, uint64_t gfn, unsigned int level);

/* Tracks the tables that (e), an entry of a table used at (levels), leads user mode to. */
static void track_entry(struct ptwatch *w, uint64_t e, unsigned int levels)
{
	if (!(e & PTE_P) || !(e & PTE_US))
		return;
	for (unsigned int level = 2; level <= 4; level++)
		if ((levels & (1u << level)) && is_table(e, level))
			track(w, (e & PTE_ADDR) >> 12, level - 1);
}

static void track(struct ptwatch *w, uint64_t gfn, unsigned int level)
{
	const uint64_t *cur;
	struct ptw_page *p;
	unsigned int i;

	p = find(w, gfn);
	if (p) {
		/* The same page as a table of another level (another tree's, or a recursive
		 * map): its entries lead to other tables then. */
		if (!(p->levels & (1u << level))) {
			p->levels |= (uint8_t)(1u << level);
			for (unsigned int k = 0; k < PT_ENTRIES; k++)
				if (!(level == 4 && k == w->skip_pml4))
					track_entry(w, p->snap[k], 1u << level);
		}
		return;
	}
	cur = gpa_to_hva(w->mem, gfn << 12, 4096);
	if (!cur)
		return; /* not RAM: the walk faults there, in KVM as in the engine */
	if (w->npages == w->max_pages) {
		w->full = true;
		return;
	}
	for (i = slot_of(w, gfn); w->slot[i].gfn != PTW_EMPTY; i = (i + 1) & (w->nslots - 1))
		;
	p = &w->slot[i];
	p->gfn = gfn;
	p->levels = (uint8_t)(1u << level);
	p->dirty = false;
	p->snap = w->pool + (size_t)w->npages * PT_ENTRIES;
	w->npages++;
	w->added++;
	w->tracked_total++;
	/* The snapshot is taken before the children are walked: a store racing with this (a
	 * device) is reported and found by the next check. */
	for (unsigned int k = 0; k < PT_ENTRIES; k++)
		p->snap[k] = __atomic_load_n(&cur[k], __ATOMIC_RELAXED);
	if (level == 1)
		return;
	for (unsigned int k = 0; k < PT_ENTRIES; k++)
		if (!(level == 4 && k == w->skip_pml4))
			track_entry(w, p->snap[k], 1u << level);
}

/* Revoked entry (old) of a table used at (levels): a zap of the page it mapped when it is a
 * leaf into RAM at every level the table is used at and the list has room, else a flush. */
static void revoke(struct ptwatch *w, uint64_t old, unsigned int levels, bool zap_ok)
{
	uint64_t size = 0;

	for (unsigned int level = 1; level <= 4; level++) {
		if (!(levels & (1u << level)))
			continue;
		if (is_table(old, level) || level == 4) {
			w->stale = true;
			return;
		}
		size = level == 1 ? 4096 : level == 2 ? (2ull << 20) : (1ull << 30);
	}
	if (!zap_ok || w->nzap == PTW_MAX_ZAPS || levels != (levels & -levels)) {
		w->stale = true;
		return;
	}
	w->zap[w->nzap].gpa = old & PTE_ADDR & ~(size - 1);
	w->zap[w->nzap].len = size;
	if (!gpa_to_hva(w->mem, w->zap[w->nzap].gpa, size)) {
		w->stale = true; /* not RAM: no mapping of mvm's to drop */
		return;
	}
	w->nzap++;
}

/* Compares tracked page (p) with its snapshot; see the rules in ptwatch.h. */
static void check(struct ptwatch *w, struct ptw_page *p, bool zap_ok)
{
	const uint64_t *cur = gpa_to_hva(w->mem, p->gfn << 12, 4096);

	p->dirty = false;
	if (!cur)
		return;
	for (unsigned int k = 0; k < PT_ENTRIES; k++) {
		uint64_t old = p->snap[k], new = __atomic_load_n(&cur[k], __ATOMIC_RELAXED);

		if (old == new || ((p->levels & (1u << 4)) && k == w->skip_pml4))
			continue;
		p->snap[k] = new;
		if (!(old & PTE_P)) {
			track_entry(w, new, p->levels);
		} else if (!(old & PTE_US) && !(new & PTE_US)) {
			/* Supervisor-only before and after: user mode never went through it. */
		} else if (!((old ^ new) & ~(PTE_A | PTE_D)) && !(old & ~new & (PTE_A | PTE_D))) {
			/* Only accessed/dirty set (by the engine's walks). */
		} else {
			revoke(w, old, p->levels, zap_ok);
			/* A repointed table entry leads to a table to track. */
			track_entry(w, new, p->levels);
		}
	}
}

enum ptwatch_verdict ptwatch_prepare(struct ptwatch *w, uint64_t cr3, bool zap_ok)
{
	uint64_t root = (cr3 & PTE_ADDR) >> 12;

	w->checks++;
	w->nzap = 0;
	/* Checking may track more pages and so grow the list: index, do not cache its length. */
	for (unsigned int i = 0; i < w->ndirty; i++) {
		struct ptw_page *p = &w->slot[w->dirty[i]];

		if (p->dirty)
			check(w, p, zap_ok);
	}
	w->ndirty = 0;
	track(w, root, 4);
	if (!w->stale && !w->full) {
		w->zapped += w->nzap;
		return w->nzap ? PTWATCH_ZAP : PTWATCH_OK;
	}
	w->stale_count += w->stale;
	return ptwatch_restart(w, cr3);
}

enum ptwatch_verdict ptwatch_restart(struct ptwatch *w, uint64_t cr3)
{
	w->nzap = 0;
	forget_all(w);
	track(w, (cr3 & PTE_ADDR) >> 12, 4);
	if (w->full) {
		forget_all(w);
		return PTWATCH_UNTRACKED;
	}
	return PTWATCH_FLUSH;
}
