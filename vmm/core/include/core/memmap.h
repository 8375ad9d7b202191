/* memmap.h: the guest's memory map (RAM and reserved ranges) derived from its RAM size. It is
 * the single source for the KVM memory slots, the e820 table and the PVH memmap. */
#ifndef MVM_CORE_MEMMAP_H
#define MVM_CORE_MEMMAP_H

#include <stdbool.h>
#include <stdint.h>

enum memmap_type { MEMMAP_RAM = 1, MEMMAP_RESERVED = 2 };

struct memmap_entry {
	uint64_t gpa;
	uint64_t size;
	enum memmap_type type;
};

#define MEMMAP_MAX 8

struct memmap {
	struct memmap_entry e[MEMMAP_MAX];
	unsigned int n;
	uint64_t ram_size;	/* total RAM bytes, as the user asked */
	uint64_t low_ram_end;	/* end of RAM below the MMIO hole */
};

/* Fills (map) for (ram_size) bytes of RAM: RAM below the EBDA, the reserved EBDA/legacy hole,
 * RAM from 1 MiB to min(ram_size, hole), RAM above 4 GiB for the remainder, and the MMIO hole
 * reserved. Entries are sorted by address. Returns 0 or -EINVAL when (ram_size) is outside
 * [LAYOUT_RAM_MIN, LAYOUT_RAM_MAX] or not a multiple of 4 KiB. */
int memmap_build(uint64_t ram_size, struct memmap *map);

/* Whether [gpa, gpa+len) lies wholly inside one RAM entry of (map): not in the reserved EBDA and
 * legacy hole, not in the MMIO hole, not past the end of RAM. Overflow-safe for any (gpa, len);
 * len 0 is treated as 1. For guest-supplied page frame numbers (virtio-balloon). */
bool memmap_is_ram(const struct memmap *map, uint64_t gpa, uint64_t len);

#endif
