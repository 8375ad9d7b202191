/* walk.c: the guest page walk: 32-bit, PAE and 4-level paging (SDM Vol. 3A 4.3-4.6). */
#include "emu/walk.h"

#define PTE_P	(1ull << 0)
#define PTE_RW	(1ull << 1)
#define PTE_US	(1ull << 2)
#define PTE_A	(1ull << 5)
#define PTE_D	(1ull << 6)
#define PTE_PS	(1ull << 7)
#define PTE_NX	(1ull << 63)

#define CR0_WP	(1ull << 16)
#define CR0_PG	(1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)
#define EFER_NXE (1ull << 11)
#define RFLAGS_AC (1ull << 18)

struct walk {
	uint64_t cr0, cr3, cr4, efer, rflags;	/* the paging state, named as in emu_cpu */
	const struct guest_mem *mem;
	uint64_t la;
	unsigned int acc;
	struct emu_fault *f;
	struct emu_walk_ad *ad;	/* the entries used, for the A/D updates */
	bool wide;		/* 8-byte entries (PAE, 4-level) or 4-byte (32-bit) */
};

static enum emu_walk_status fault(struct walk *w, uint32_t err)
{
	unsigned int acc = w->acc;

	if (acc & EMU_ACC_WRITE)
		err |= PF_W;
	if (acc & EMU_ACC_USER)
		err |= PF_U;
	/* I/D is reported for fetches when NX or SMEP could have caused the fault: with SMEP, or
	 * with EFER.NXE under PAE or 4-level paging (32-bit paging has no NX; SDM 4.7). */
	if ((acc & EMU_ACC_FETCH) &&
	    (((w->efer & EFER_NXE) && w->wide) || (w->cr4 & CR4_SMEP)))
		err |= PF_I;
	*w->f = (struct emu_fault){.vector = 14, .has_error_code = true, .error_code = err,
				   .cr2 = w->la};
	return WALK_FAULT;
}

/* Reads the entry at (gpa); NULL if it is not in RAM. */
static void *entry_at(struct walk *w, uint64_t gpa)
{
	return gpa_to_hva(w->mem, gpa, w->wide ? 8 : 4);
}

static uint64_t load(struct walk *w, void *p)
{
	return w->wide ? __atomic_load_n((uint64_t *)p, __ATOMIC_ACQUIRE)
		       : __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE);
}

static void use_entry(struct walk *w, void *p, uint64_t e)
{
	w->ad->entry[w->ad->n] = p;
	w->ad->old[w->ad->n] = e;
	w->ad->bits[w->ad->n] = 0;
	w->ad->n++;
}

/* Checks the combined rights of all levels (SDM 4.6). */
static enum emu_walk_status check_rights(struct walk *w, bool user_all, bool rw_all, bool nx_any)
{
	const struct walk *c = w;
	unsigned int acc = w->acc;
	bool user = acc & EMU_ACC_USER;

	if (user && !user_all)
		return fault(w, PF_P);
	if (acc & EMU_ACC_WRITE) {
		if (!rw_all && (user || (c->cr0 & CR0_WP)))
			return fault(w, PF_P);
	}
	if (acc & EMU_ACC_FETCH) {
		if (nx_any && (c->efer & EFER_NXE))
			return fault(w, PF_P);
		if (!user && user_all && (c->cr4 & CR4_SMEP))
			return fault(w, PF_P);
	} else if (!user && user_all && (c->cr4 & CR4_SMAP)) {
		/* SMAP: supervisor data access to a user page, unless AC allows explicit ones. */
		if ((acc & EMU_ACC_IMPLICIT) || !(c->rflags & RFLAGS_AC))
			return fault(w, PF_P);
	}
	return WALK_OK;
}

/* Records the bits to set: A on every entry used, D on the leaf for writes (SDM 4.8). */
static void set_accessed_dirty(struct walk *w)
{
	struct emu_walk_ad *ad = w->ad;

	for (unsigned int i = 0; i < ad->n; i++) {
		uint64_t bits = PTE_A;

		if (i == ad->n - 1u && (w->acc & EMU_ACC_WRITE))
			bits |= PTE_D;
		ad->bits[i] = (uint8_t)bits;
	}
}

bool emu_walk_apply(struct emu_walk_ad *ad)
{
	for (unsigned int i = 0; i < ad->n; i++) {
		uint64_t old = ad->old[i], bits = ad->bits[i];

		if ((old & bits) == bits)
			continue;
		/* Locked, like the CPU's A/D updates, and only into the entry the walk used:
		 * other vCPUs walk the same tables, and the guest may have changed the entry
		 * since (cleared A, or made it a swap entry). */
		if (ad->wide) {
			uint64_t exp = old;

			if (!__atomic_compare_exchange_n((uint64_t *)ad->entry[i], &exp, old | bits,
							 false, __ATOMIC_ACQ_REL,
							 __ATOMIC_ACQUIRE))
				return false;
		} else {
			uint32_t exp = (uint32_t)old;

			if (!__atomic_compare_exchange_n((uint32_t *)ad->entry[i], &exp,
							 (uint32_t)(old | bits), false,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				return false;
		}
		ad->old[i] = old | bits;
	}
	return true;
}

bool emu_walk_current(const struct emu_walk_ad *ad)
{
	for (unsigned int i = 0; i < ad->n; i++) {
		uint64_t e = ad->wide ? __atomic_load_n((uint64_t *)ad->entry[i], __ATOMIC_ACQUIRE)
				      : __atomic_load_n((uint32_t *)ad->entry[i], __ATOMIC_ACQUIRE);

		if (e != ad->old[i])
			return false;
	}
	return true;
}

static enum emu_walk_status walk_wide(struct walk *w, unsigned int maxphy, uint64_t *gpa)
{
	const struct walk *c = w;
	bool long_mode = c->efer & (1u << 10);
	unsigned int levels = long_mode ? 4 : 3;
	uint64_t addr_mask = ((1ull << maxphy) - 1) & ~0xfffull;
	/* Bits above MAXPHYADDR, and NX when EFER.NXE is clear, are reserved: up to bit 51 in
	 * 4-level paging, where 62:52 are ignored, and up to bit 62 in PAE paging (SDM 4.4.2,
	 * 4.5.4). */
	uint64_t rsvd = ~((1ull << maxphy) - 1) & ~PTE_NX & (long_mode ? (1ull << 52) - 1 : ~0ull);
	uint64_t table = c->cr3 & addr_mask;
	bool user_all = true, rw_all = true, nx_any = false;

	if (!(c->efer & EFER_NXE))
		rsvd |= PTE_NX;
	if (!long_mode) {
		/* PAE: CR3 points at four 8-byte PDPTEs, 32-byte aligned (SDM 4.4.1). */
		table = c->cr3 & 0xffffffe0u;
	}
	for (unsigned int level = levels; level >= 1; level--) {
		unsigned int shift = 12 + 9 * (level - 1);
		unsigned int index = (w->la >> shift) & (level == 3 && !long_mode ? 3 : 511);
		void *p = entry_at(w, table + index * 8);
		uint64_t e, level_rsvd = rsvd;

		if (!p)
			return WALK_UNSUPPORTED;
		e = load(w, p);
		if (!(e & PTE_P))
			return fault(w, 0);
		if (!long_mode && level == 3) {
			/* PAE PDPTEs have no R/W, U/S or NX: bits 1, 2, 5-8 and 63 are reserved
			 * whatever EFER.NXE says (SDM Table 4-8). */
			if (e & (rsvd | PTE_NX | 0x1e6))
				return fault(w, PF_P | PF_RSVD);
			table = e & addr_mask;
			continue;
		}
		if (level == 4)
			level_rsvd |= PTE_PS; /* there are no 512 GiB pages */
		bool large = (level == 2 || level == 3) && (e & PTE_PS);
		if (large) {
			/* 1 GiB (level 3) or 2 MiB (level 2) pages: bits 12 (PAT) up to the page
			 * offset are reserved except bit 12 itself. */
			level_rsvd |= ((1ull << shift) - 1) & ~0x1fffull;
		}
		if (e & level_rsvd)
			return fault(w, PF_P | PF_RSVD);
		user_all &= (e & PTE_US) != 0;
		rw_all &= (e & PTE_RW) != 0;
		nx_any |= (e & PTE_NX) != 0;
		use_entry(w, p, e);
		if (large || level == 1) {
			enum emu_walk_status s = check_rights(w, user_all, rw_all, nx_any);
			uint64_t page_mask = (1ull << shift) - 1;

			if (s != WALK_OK)
				return s;
			set_accessed_dirty(w);
			*gpa = ((e & addr_mask) & ~page_mask) | (w->la & page_mask);
			return WALK_OK;
		}
		table = e & addr_mask;
	}
	return WALK_UNSUPPORTED; /* not reached */
}

static enum emu_walk_status walk_32(struct walk *w, unsigned int maxphy, uint64_t *gpa)
{
	const struct walk *c = w;
	uint32_t la = (uint32_t)w->la;
	void *p = entry_at(w, (c->cr3 & 0xfffff000u) + ((la >> 22) * 4));
	uint64_t e;
	bool user_all, rw_all;

	if (!p)
		return WALK_UNSUPPORTED;
	e = load(w, p);
	if (!(e & PTE_P))
		return fault(w, 0);
	user_all = e & PTE_US;
	rw_all = e & PTE_RW;
	use_entry(w, p, e);
	if ((e & PTE_PS) && (c->cr4 & CR4_PSE)) {
		enum emu_walk_status s;

		/* 4 MiB page (PSE-36): bits 20:13 hold physical address bits 39:32, of which
		 * those at or above min(MAXPHYADDR, 40) are reserved, as is bit 21 (SDM Table
		 * 4-4). */
		unsigned int high_bits = maxphy > 40 ? 8 : maxphy > 32 ? maxphy - 32 : 0;
		uint64_t high = (e >> 13) & 0xff;

		if ((e & (1u << 21)) || (high >> high_bits))
			return fault(w, PF_P | PF_RSVD);
		s = check_rights(w, user_all, rw_all, false);
		if (s != WALK_OK)
			return s;
		set_accessed_dirty(w);
		*gpa = (high << 32) | (e & 0xffc00000u) | (la & 0x3fffff);
		return WALK_OK;
	}
	p = entry_at(w, (e & 0xfffff000u) + (((la >> 12) & 1023) * 4));
	if (!p)
		return WALK_UNSUPPORTED;
	e = load(w, p);
	if (!(e & PTE_P))
		return fault(w, 0);
	user_all &= (e & PTE_US) != 0;
	rw_all &= (e & PTE_RW) != 0;
	use_entry(w, p, e);
	enum emu_walk_status s = check_rights(w, user_all, rw_all, false);
	if (s != WALK_OK)
		return s;
	set_accessed_dirty(w);
	*gpa = (e & 0xfffff000u) | (la & 0xfff);
	return WALK_OK;
}

static enum emu_walk_status walk(struct walk *w, unsigned int maxphy, uint64_t *gpa)
{
	struct emu_walk_ad *ad = w->ad;
	enum emu_walk_status s;

	ad->n = 0;
	ad->wide = (w->cr4 & CR4_PAE) != 0;
	ad->acc = w->acc;
	ad->maxphy = maxphy;
	ad->la = w->la;
	ad->cr0 = w->cr0;
	ad->cr3 = w->cr3;
	ad->cr4 = w->cr4;
	ad->efer = w->efer;
	ad->rflags = w->rflags;
	if (!(w->cr0 & CR0_PG)) {
		*gpa = (w->efer & (1u << 10)) ? w->la : (uint32_t)w->la;
		s = WALK_OK;
	} else if (w->cr4 & CR4_LA57) {
		return WALK_UNSUPPORTED;
	} else if (w->cr4 & CR4_PAE) {
		w->wide = true;
		s = walk_wide(w, maxphy, gpa);
	} else {
		s = walk_32(w, maxphy, gpa);
	}
	if (s == WALK_OK)
		ad->gpa = *gpa;
	return s;
}

enum emu_walk_status emu_walk_record(const struct emu_cpu *c, const struct guest_mem *mem,
				     unsigned int maxphy, uint64_t la, unsigned int acc,
				     uint64_t *gpa, struct emu_fault *f, struct emu_walk_ad *ad)
{
	struct walk w = {.cr0 = c->cr0, .cr3 = c->cr3, .cr4 = c->cr4, .efer = c->efer,
			 .rflags = c->rflags, .mem = mem, .la = la, .acc = acc, .f = f, .ad = ad};

	return walk(&w, maxphy, gpa);
}

enum emu_walk_status emu_walk_redo(const struct guest_mem *mem, struct emu_walk_ad *ad,
				   uint64_t *gpa, struct emu_fault *f)
{
	struct walk w = {.cr0 = ad->cr0, .cr3 = ad->cr3, .cr4 = ad->cr4, .efer = ad->efer,
			 .rflags = ad->rflags, .mem = mem, .la = ad->la, .acc = ad->acc, .f = f,
			 .ad = ad};

	return walk(&w, ad->maxphy, gpa);
}

enum emu_walk_status emu_walk(const struct emu_cpu *c, const struct guest_mem *mem,
			      unsigned int maxphy, uint64_t la, unsigned int acc, uint64_t *gpa,
			      struct emu_fault *f)
{
	struct emu_walk_ad ad;
	enum emu_walk_status s;

	/* An entry that changed between the walk and its A/D update: walk again, as the CPU
	 * and KVM's walker do (the change came from another vCPU, which will not keep
	 * changing it for ever). */
	do
		s = emu_walk_record(c, mem, maxphy, la, acc, gpa, f, &ad);
	while (s == WALK_OK && !emu_walk_apply(&ad));
	return s;
}
