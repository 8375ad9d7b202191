/* test_guest_mem.c: gpa_to_hva bounds, overflow and region checks; the memory map. */
#include "core/guest_mem.h"
#include "core/layout.h"
#include "core/memmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static void test_translation(void)
{
	struct guest_mem mem;
	uint8_t *low = aligned_alloc(4096, 0x10000), *high = aligned_alloc(4096, 0x4000);

	guest_mem_init(&mem);
	CHECK_EQ(guest_mem_add(&mem, 0, 0x10000, low), 0);
	CHECK_EQ(guest_mem_add(&mem, 0x100000, 0x4000, high), 0);
	/* Overlapping, unaligned and wrapping regions are refused. */
	CHECK_EQ(guest_mem_add(&mem, 0xf000, 0x2000, high), -EINVAL);
	CHECK_EQ(guest_mem_add(&mem, 0x200001, 0x1000, high), -EINVAL);
	CHECK_EQ(guest_mem_add(&mem, UINT64_MAX & ~0xfffULL, 0x2000, high), -EINVAL);
	CHECK_EQ(guest_mem_add(&mem, 0x300000, 0, high), -EINVAL);

	CHECK(gpa_to_hva(&mem, 0, 1) == low);
	CHECK(gpa_to_hva(&mem, 0xffff, 1) == low + 0xffff);
	CHECK(gpa_to_hva(&mem, 0, 0x10000) == low);
	CHECK(gpa_to_hva(&mem, 0, 0x10001) == NULL);	/* one past the end */
	CHECK(gpa_to_hva(&mem, 0xfff0, 0x20) == NULL);	/* straddles the end */
	CHECK(gpa_to_hva(&mem, 0x10000, 1) == NULL);	/* the gap */
	CHECK(gpa_to_hva(&mem, 0xfffff, 2) == NULL);	/* straddles into the next region */
	CHECK(gpa_to_hva(&mem, 0x100000, 0x4000) == high);
	CHECK(gpa_to_hva(&mem, 0x103fff, 1) == high + 0x3fff);
	/* Lengths and addresses that would wrap. */
	CHECK(gpa_to_hva(&mem, 0x10, UINT64_MAX) == NULL);
	CHECK(gpa_to_hva(&mem, UINT64_MAX, 2) == NULL);
	CHECK(gpa_to_hva(&mem, UINT64_MAX - 0xf, 0x20) == NULL);
	CHECK(gpa_to_hva(&mem, 0x100000 + 0x3000, UINT64_MAX - 0x10) == NULL);
	/* Length 0 means the byte at gpa must exist. */
	CHECK(gpa_to_hva(&mem, 0x10000, 0) == NULL);
	CHECK(gpa_to_hva(&mem, 0x0, 0) == low);

	uint32_t v = 0x12345678, r = 0;
	CHECK_EQ(guest_mem_write(&mem, 0xfffc, &v, 4), 0);
	CHECK_EQ(guest_mem_read(&mem, 0xfffc, &r, 4), 0);
	CHECK_EQ(r, v);
	CHECK_EQ(guest_mem_write(&mem, 0xfffe, &v, 4), -EFAULT);
	guest_mem_fini(&mem);
	free(low);
	free(high);
}

static void test_alloc(void)
{
	struct guest_mem mem;

	guest_mem_init(&mem);
	CHECK_EQ(guest_mem_alloc(&mem, 0, 1 << 20), 0);
	uint8_t *p = gpa_to_hva(&mem, 0x1000, 8);
	CHECK(p != NULL);
	if (p)
		CHECK_EQ(p[0], 0); /* anonymous memory reads as zero */
	guest_mem_fini(&mem);
	CHECK_EQ(mem.n, 0);
}

static void test_memmap(void)
{
	struct memmap map;
	uint64_t ram = 0;

	CHECK_EQ(memmap_build(0, &map), -EINVAL);
	CHECK_EQ(memmap_build(LAYOUT_RAM_MIN - 4096, &map), -EINVAL);
	CHECK_EQ(memmap_build(LAYOUT_RAM_MAX + 4096, &map), -EINVAL);
	CHECK_EQ(memmap_build((256 << 20) + 1, &map), -EINVAL);

	CHECK_EQ(memmap_build(256 << 20, &map), 0);
	CHECK_EQ(map.low_ram_end, 256 << 20);
	CHECK_EQ(map.e[0].gpa, 0);
	CHECK_EQ(map.e[0].size, LAYOUT_EBDA);
	CHECK_EQ(map.e[1].type, MEMMAP_RESERVED);
	CHECK_EQ(map.e[2].gpa, 0x100000);
	CHECK_EQ(map.e[2].gpa + map.e[2].size, 256 << 20);
	for (unsigned int i = 0; i < map.n; i++) {
		if (map.e[i].type == MEMMAP_RAM)
			ram += map.e[i].size;
		if (i)
			CHECK(map.e[i].gpa >= map.e[i - 1].gpa + map.e[i - 1].size);
	}
	/* All RAM but the reserved EBDA/legacy area is usable. */
	CHECK_EQ(ram, (256 << 20) - (0x100000 - LAYOUT_EBDA));

	/* 4 GiB: 3 GiB below the hole, 1 GiB above 4 GiB. */
	CHECK_EQ(memmap_build(4ULL << 30, &map), 0);
	CHECK_EQ(map.low_ram_end, LAYOUT_MMIO_HOLE);
	CHECK_EQ(map.e[map.n - 1].gpa, 4ULL << 30);
	CHECK_EQ(map.e[map.n - 1].size, 1ULL << 30);
	CHECK_EQ(map.e[map.n - 2].type, MEMMAP_RESERVED);
	CHECK_EQ(map.e[map.n - 2].gpa, LAYOUT_MMIO_HOLE);
}

/* The kernel's view of (p)'s mapping in /proc/self/smaps: the value of (key), or -1. */
static long smaps_value(const void *p, const char *key)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	bool in = false;
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && !strncmp(line, key, strlen(key)))
			v = strtol(line + strlen(key), NULL, 10);
	}
	fclose(f);
	return v;
}

/* Why test_thp() did not run, or NULL: main() then exits 77 (t_skip()) if all else passed. */
static const char *thp_skipped;

/* guest_mem_use_thp(): the region becomes THP-eligible (where the host has THP at all). */
static void test_thp(void)
{
	struct guest_mem mem;
	char mode[64] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (f) {
		if (!fgets(mode, sizeof(mode), f))
			mode[0] = 0;
		fclose(f);
	}
	guest_mem_init(&mem);
	CHECK_EQ(guest_mem_alloc(&mem, 0, 8 << 20), 0);
	if (!strstr(mode, "[madvise]") && !strstr(mode, "[always]")) {
		static char why[128];

		mode[strcspn(mode, "\n")] = 0;
		snprintf(why, sizeof(why), "host THP mode '%s': the THP case did not run", mode);
		thp_skipped = why;
		guest_mem_fini(&mem);
		return;
	}
	if (strstr(mode, "[madvise]"))
		CHECK_EQ(smaps_value(mem.r[0].hva, "THPeligible:"), 0);
	CHECK_EQ(guest_mem_use_thp(&mem), 0);
	CHECK_EQ(smaps_value(mem.r[0].hva, "THPeligible:"), 1);
	guest_mem_fini(&mem);
}

/* Shared guest RAM (--accel hybrid): a refault keeps the contents (it only drops the host's
 * mappings, which is what makes KVM drop its own); private RAM, unaligned ranges and ranges
 * outside RAM are refused. */
static void test_shared_refault(void)
{
	struct guest_mem mem;
	uint8_t *p;

	guest_mem_init(&mem);
	CHECK_EQ(guest_mem_alloc_shared(&mem, 0, 0x10000), 0);
	CHECK_EQ(guest_mem_alloc(&mem, 0x100000, 0x10000), 0);
	p = gpa_to_hva(&mem, 0x3000, 8);
	CHECK(p != NULL);
	if (p) {
		memcpy(p, "contents", 8);
		CHECK_EQ(guest_mem_refault(&mem, 0x3000, 4096), 0);
		CHECK(!memcmp(p, "contents", 8));
	}
	CHECK_EQ(guest_mem_refault(&mem, 0, 0x10000), 0);
	CHECK_EQ(guest_mem_refault(&mem, 0x3001, 4096), -EINVAL);
	CHECK_EQ(guest_mem_refault(&mem, 0xf000, 0x2000), -EINVAL);
	CHECK_EQ(guest_mem_refault(&mem, 0x100000, 4096), -EINVAL);
	CHECK_EQ(guest_mem_refault(&mem, 0x200000, 4096), -EINVAL);
	guest_mem_fini(&mem);
}

/* A balloon's discard: private RAM reads as zeros again and leaves the RSS, shared RAM (a memfd)
 * has its pages freed (MADV_REMOVE: zeros too, where a refault keeps them); unaligned ranges
 * and ranges outside one region are refused. */
static void test_discard(void)
{
	struct guest_mem mem;
	uint8_t *p, *s;
	gpa_t g = 0;

	guest_mem_init(&mem);
	CHECK_EQ(guest_mem_alloc_shared(&mem, 0, 0x10000), 0);
	CHECK_EQ(guest_mem_alloc(&mem, 0x100000, 0x100000), 0);
	p = gpa_to_hva(&mem, 0x100000, 0x100000);
	s = gpa_to_hva(&mem, 0x2000, 0x2000);
	CHECK(p && s);
	if (!p || !s) {
		guest_mem_fini(&mem);
		return;
	}
	memset(p, 0xa5, 0x100000);
	memset(s, 0x5a, 0x2000);
	long before = smaps_value(p, "Rss:");
	CHECK_EQ(guest_mem_discard(&mem, 0x100000 + 0x40000, 0x80000), 0);
	CHECK_EQ(p[0x40000], 0);
	CHECK_EQ(p[0xbffff], 0);
	CHECK_EQ(p[0x3ffff], 0xa5);
	CHECK_EQ(p[0xc0000], 0xa5);
	/* 512 KiB less resident (the test touched the rest). */
	CHECK(before > 0 && smaps_value(p, "Rss:") <= before - 512);
	CHECK_EQ(guest_mem_discard(&mem, 0x2000, 0x1000), 0);
	CHECK_EQ(s[0], 0);
	CHECK_EQ(s[0x1000], 0x5a);
	CHECK_EQ(guest_mem_discard(&mem, 0x100800, 0x1000), -EINVAL);
	CHECK_EQ(guest_mem_discard(&mem, 0x100000, 0x800), -EINVAL);
	CHECK_EQ(guest_mem_discard(&mem, 0x100000, 0), -EINVAL);
	CHECK_EQ(guest_mem_discard(&mem, 0xf000, 0x2000), -EINVAL);
	CHECK_EQ(guest_mem_discard(&mem, 0x1ff000, 0x2000), -EINVAL);
	CHECK_EQ(guest_mem_discard(&mem, 0x200000, 0x1000), -EINVAL);
	CHECK_EQ(guest_mem_discard(&mem, ~0xfffULL, 0x1000), -EINVAL);

	CHECK_EQ(guest_mem_hva_to_gpa(&mem, p + 0x1234, &g), 0);
	CHECK_EQ(g, 0x101234);
	CHECK_EQ(guest_mem_hva_to_gpa(&mem, s, &g), 0);
	CHECK_EQ(g, 0x2000);
	/* One past the region: outside it (the host may have put the other region there). */
	CHECK(guest_mem_hva_to_gpa(&mem, p + 0x100000, &g) == -EFAULT || g < 0x100000);
	CHECK_EQ(guest_mem_hva_to_gpa(&mem, &g, &g), -EFAULT);
	guest_mem_fini(&mem);
}

/* memmap_is_ram(): the guest's RAM only, never the reserved EBDA/legacy area or the MMIO hole,
 * whatever the range's wrap-around. */
static void test_memmap_is_ram(void)
{
	struct memmap map;

	CHECK_EQ(memmap_build(4ULL << 30, &map), 0);
	CHECK(memmap_is_ram(&map, 0, 4096));
	CHECK(memmap_is_ram(&map, 0x9e000, 4096));
	CHECK(!memmap_is_ram(&map, 0x9f000, 4096)); /* ends in the EBDA */
	CHECK(!memmap_is_ram(&map, 0xa0000, 4096));
	CHECK(memmap_is_ram(&map, 0x100000, 4096));
	CHECK(memmap_is_ram(&map, LAYOUT_MMIO_HOLE - 4096, 4096));
	CHECK(!memmap_is_ram(&map, LAYOUT_MMIO_HOLE - 4096, 8192));
	CHECK(!memmap_is_ram(&map, LAYOUT_MMIO_HOLE, 4096));
	CHECK(!memmap_is_ram(&map, LAYOUT_VIRTIO_MMIO_BASE, 4096));
	CHECK(memmap_is_ram(&map, 4ULL << 30, 4096));
	CHECK(memmap_is_ram(&map, (5ULL << 30) - 4096, 4096));
	CHECK(!memmap_is_ram(&map, 5ULL << 30, 4096));
	CHECK(!memmap_is_ram(&map, 0xfffffffffffff000ULL, 0x2000));
	CHECK(!memmap_is_ram(&map, 0x1000, ~0ULL));
}

int main(void)
{
	test_translation();
	test_discard();
	test_memmap_is_ram();
	test_shared_refault();
	test_alloc();
	test_thp();
	test_memmap();
	int ret = t_done();

	return ret == T_EXIT_PASS && thp_skipped ? t_skip(thp_skipped) : ret;
}
