/* memmap.c: the guest memory map, derived from the RAM size and layout.h. */
#include "core/memmap.h"

#include <errno.h>

#include "core/layout.h"
#include "util/util.h"

static void add(struct memmap *map, uint64_t gpa, uint64_t size, enum memmap_type type)
{
	map->e[map->n++] = (struct memmap_entry){.gpa = gpa, .size = size, .type = type};
}

int memmap_build(uint64_t ram_size, struct memmap *map)
{
	uint64_t low;

	if (ram_size < LAYOUT_RAM_MIN || ram_size > LAYOUT_RAM_MAX || !IS_ALIGNED(ram_size, 4096))
		return -EINVAL;
	map->n = 0;
	map->ram_size = ram_size;
	low = MIN(ram_size, LAYOUT_MMIO_HOLE);
	map->low_ram_end = low;

	add(map, 0, LAYOUT_EBDA, MEMMAP_RAM);
	/* The EBDA (MP table) and the VGA/ROM area are backed by RAM but reserved, as on a PC. */
	add(map, LAYOUT_EBDA, LAYOUT_LEGACY_HOLE_END - LAYOUT_EBDA, MEMMAP_RESERVED);
	add(map, LAYOUT_LEGACY_HOLE_END, low - LAYOUT_LEGACY_HOLE_END, MEMMAP_RAM);
	add(map, LAYOUT_MMIO_HOLE, LAYOUT_MMIO_HOLE_END - LAYOUT_MMIO_HOLE, MEMMAP_RESERVED);
	if (ram_size > low)
		add(map, LAYOUT_HIGH_RAM, ram_size - low, MEMMAP_RAM);
	return 0;
}

bool memmap_is_ram(const struct memmap *map, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (unsigned int i = 0; i < map->n; i++) {
		const struct memmap_entry *e = &map->e[i];
		uint64_t off = gpa - e->gpa;

		/* Unsigned: gpa below the entry wraps to a huge offset and fails the test. */
		if (e->type == MEMMAP_RAM && gpa >= e->gpa && off < e->size && len <= e->size - off)
			return true;
	}
	return false;
}
