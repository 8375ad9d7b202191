/* ptwatch.h: page-table coherence for --accel hybrid: which guest pages KVM may have shadowed
 * as page tables for guest user mode, and whether the engine changed one of them in a way that
 * KVM must learn before guest user mode runs there again.
 *
 * Why (KVM-HOST.md, "Costs and behaviour..."): KVM's shadow MMU write-protects the guest page
 * tables it shadows and so sees every store the guest makes to them while it runs in KVM. The
 * guest kernel, though, runs in mvm's engine and writes its page tables through mvm's own
 * mapping of guest RAM, which KVM never sees: a present entry changed that way keeps its old
 * translation for guest user code. Only a not-present entry becoming present is safe (KVM has
 * nothing cached for it and walks the guest tables afresh on the fault).
 *
 * The argument:
 * 1. KVM shadows, for guest user mode, only tables it reached from a CR3 that ran in KVM
 *    through entries that are present and user-accessible (a user access stops at the first
 *    entry without U/S; the kernel never runs in KVM, and KVM's own walks for exception delivery
 *    read guest memory afresh).
 * 2. ptwatch tracks a superset: before every entry into KVM, the current CR3's tree through
 *    present user entries, and every table such an entry later points to, each with a snapshot
 *    of its 512 entries as last checked. Tracking begins before KVM can walk the table.
 * 3. The engine routes every store to a tracked page through its slow path (as it does for
 *    pages holding translated code) and reports it here; stores by devices are reported too.
 * 4. Before the next entry into KVM each reported page is compared with its snapshot, entry by
 *    entry. A change is harmless when the old entry was not present, or when it only set the
 *    accessed/dirty bits, or when neither the old nor the new entry is user-accessible;
 *    anything else (a present entry cleared, write-protected, made supervisor-only or
 *    no-execute, pointed elsewhere; accessed or dirty cleared) makes the set "stale".
 * 5. A revoked leaf entry (one that maps a page: a PTE, or a large PDE/PDPTE) only matters
 *    through the translations KVM made from it, which map the page it pointed to. Every such
 *    translation goes if KVM drops all its translations of that page, which happens when mvm
 *    drops its own host mapping of the page (guest RAM is shared memory; KVM's MMU notifier
 *    zaps every shadow entry that maps it, and the next user access walks the guest's tables
 *    afresh). So a revoked leaf adds the old page to a list the caller "zaps" that way.
 * 6. Anything else revoked (a table entry, a leaf pointing outside RAM, too many zaps) makes the
 *    set "stale": the caller makes KVM drop every shadow page (the memory slots are removed and
 *    added again) before guest user mode runs, and tracking restarts from nothing (KVM has
 *    nothing cached any more). So KVM never runs user code on a translation the guest has
 *    revoked.
 * Tables that cannot be tracked (the table of tracked pages is full) make the tree "untracked":
 * the caller must not run that user state in KVM.
 * Engine thread only. */
#ifndef MVM_DBT_PTWATCH_H
#define MVM_DBT_PTWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/guest_mem.h"

struct ptw_page {
	uint64_t gfn;			/* guest frame; PTW_EMPTY when the slot is free */
	uint64_t *snap;			/* its entries as last checked */
	uint8_t levels;			/* bit n: used as a level-n table (4: PML4 ... 1: PT) */
	bool dirty;			/* written since last checked */
};

/* A guest-physical range whose translations KVM must drop (PTWATCH_ZAP). */
struct ptw_range {
	uint64_t gpa, len;
};
#define PTW_MAX_ZAPS 64

struct ptwatch {
	const struct guest_mem *mem;	/* borrowed */
	unsigned int skip_pml4;		/* a PML4 slot that is the VMM's own (not tracked) */
	struct ptw_page *slot;		/* open addressing by gfn */
	unsigned int nslots, npages, max_pages;
	uint64_t *pool;			/* max_pages snapshots of 4 KiB */
	uint32_t *dirty;		/* slots written since the last check */
	unsigned int ndirty;
	bool stale, full;
	struct ptw_range zap[PTW_MAX_ZAPS];
	unsigned int nzap;
	unsigned int added;		/* pages tracked since the caller last looked */
	/* Counters. */
	uint64_t checks, stale_count, tracked_total, zapped;
};

/* (max_pages): how many tables can be tracked at once (snapshots are 4 KiB each, reserved but
 * only touched when used). Returns 0 or -ENOMEM. */
int ptwatch_init(struct ptwatch *w, const struct guest_mem *mem, unsigned int max_pages,
		 unsigned int skip_pml4);
void ptwatch_fini(struct ptwatch *w);

/* Whether guest-physical page (gpa >> 12) is tracked: stores there must be reported. */
bool ptwatch_tracked(const struct ptwatch *w, uint64_t gpa);
/* The engine or a device stored into [gpa, gpa + len). Cheap when nothing there is tracked. */
void ptwatch_written(struct ptwatch *w, uint64_t gpa, uint64_t len);
/* Every tracked page may have been written (a queue of reports overflowed). */
void ptwatch_all_written(struct ptwatch *w);

enum ptwatch_verdict {
	PTWATCH_OK,		/* KVM's shadow of this tree is current: enter */
	PTWATCH_ZAP,		/* drop KVM's translations of the pages in zap[0..nzap) first */
	PTWATCH_FLUSH,		/* drop KVM's shadow pages first; tracking restarted */
	PTWATCH_UNTRACKED,	/* the tree cannot be tracked: do not run it in KVM */
};
/* Before guest user mode runs in KVM with 4-level page tables at (cr3): checks the written
 * pages, tracks the tree of (cr3). On PTWATCH_FLUSH everything was forgotten and the tree of
 * (cr3) tracked afresh; the caller must flush before entering. On PTWATCH_ZAP the caller must
 * zap w->zap[0..nzap) (ptwatch.h, point 5) before entering; the list is emptied by the next
 * call. (zap_ok): the caller can zap (guest RAM is shared memory); otherwise every revocation
 * is a flush. */
enum ptwatch_verdict ptwatch_prepare(struct ptwatch *w, uint64_t cr3, bool zap_ok);
/* The caller could not zap: forgets everything and tracks (cr3) afresh, as after a flush.
 * Returns PTWATCH_FLUSH or PTWATCH_UNTRACKED. */
enum ptwatch_verdict ptwatch_restart(struct ptwatch *w, uint64_t cr3);

#endif
