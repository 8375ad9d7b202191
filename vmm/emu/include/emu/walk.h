/* walk.h: guest page-table walks as the SDM specifies them (Vol. 3A ch. 4). */
#ifndef MVM_EMU_WALK_H
#define MVM_EMU_WALK_H

#include "emu/emu.h"

#define EMU_ACC_WRITE	 (1u << 0)
#define EMU_ACC_FETCH	 (1u << 1)
#define EMU_ACC_USER	 (1u << 2)	/* a CPL3 access */
#define EMU_ACC_IMPLICIT (1u << 3)	/* implicit supervisor access (GDT, IDT, TSS) */

/* #PF error code bits (SDM Vol. 3A 4.7). */
#define PF_P	(1u << 0)
#define PF_W	(1u << 1)
#define PF_U	(1u << 2)
#define PF_RSVD (1u << 3)
#define PF_I	(1u << 4)

enum emu_walk_status { WALK_OK = 0, WALK_FAULT = 1, WALK_UNSUPPORTED = 2 };

/* Translates linear address (la) for an access of kind (acc) with the paging mode in (c):
 * none, 32-bit, PAE or 4-level. Checks present, reserved bits (MAXPHYADDR (maxphy)), U/S, R/W
 * with CR0.WP, NX with EFER.NXE, SMEP and SMAP (with RFLAGS.AC), and on success sets the
 * accessed bits and, for writes, the dirty bit of the leaf, atomically in guest RAM and only
 * in entries that still hold what the walk read (else it walks again; emu_walk_apply()). On
 * WALK_FAULT (*f) is the #PF with its error code and CR2. WALK_UNSUPPORTED: a table outside
 * RAM, or 5-level paging. */
enum emu_walk_status emu_walk(const struct emu_cpu *c, const struct guest_mem *mem,
			      unsigned int maxphy, uint64_t la, unsigned int acc, uint64_t *gpa,
			      struct emu_fault *f);

/* The accessed and dirty bits a successful walk sets, as host pointers to the entries (into
 * guest RAM, which does not move), each entry as the walk read it, and the bits for each;
 * then what the walk was, so that it can be made again (emu_walk_redo()). */
#define EMU_WALK_LEVELS 4
struct emu_walk_ad {
	void *entry[EMU_WALK_LEVELS];
	uint64_t old[EMU_WALK_LEVELS];
	uint8_t bits[EMU_WALK_LEVELS];
	uint8_t n;
	bool wide;			/* 8-byte entries */
	unsigned int acc, maxphy;
	uint64_t la, gpa;		/* the access and where the walk took it */
	uint64_t cr0, cr3, cr4, efer, rflags;	/* the paging state it walked with */
};

/* emu_walk() that records in (*ad) the accessed/dirty updates instead of making them, so that
 * an instruction that faults after the walk leaves the page tables as they were; (ad) is
 * valid on WALK_OK. */
enum emu_walk_status emu_walk_record(const struct emu_cpu *c, const struct guest_mem *mem,
				     unsigned int maxphy, uint64_t la, unsigned int acc,
				     uint64_t *gpa, struct emu_fault *f, struct emu_walk_ad *ad);

/* Makes the updates of (ad), each with a compare-and-exchange that sets the bits only if the
 * entry still holds the value the walk read (as the CPU's locked A/D updates and KVM's walker
 * do): an entry another vCPU changed meanwhile, e.g. made not present to hold a swap entry,
 * must not get bits OR-ed into it. Returns false at the first entry that changed (the ones
 * before it are set, which is what a CPU that restarts its walk leaves too): the access must
 * then be walked again. */
bool emu_walk_apply(struct emu_walk_ad *ad);

/* Whether every entry of (ad) still holds the value the walk read. */
bool emu_walk_current(const struct emu_walk_ad *ad);

/* Walks the access of (ad) again with the paging state it recorded, replacing (*ad) with the
 * new walk on WALK_OK; (*gpa) and (*f) as for emu_walk(). */
enum emu_walk_status emu_walk_redo(const struct guest_mem *mem, struct emu_walk_ad *ad,
				   uint64_t *gpa, struct emu_fault *f);

#endif
