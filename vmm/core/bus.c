/* bus.c: address decoding for port I/O and MMIO, with counted unclaimed accesses. */
#define pr_fmt(fmt) "bus: " fmt
#include "core/bus.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "util/log.h"

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *dev, const char *name)
{
	uint64_t end;
	unsigned int i;

	if (!len || __builtin_add_overflow(base, len - 1, &end))
		return -EINVAL;
	if (bus->n == BUS_MAX_RANGES)
		return -ENOSPC;
	for (i = 0; i < bus->n; i++) {
		const struct bus_range *r = &bus->r[i];

		if (base <= r->base + (r->len - 1) && r->base <= end)
			return -EEXIST;
		if (r->base > base)
			break;
	}
	memmove(&bus->r[i + 1], &bus->r[i], (bus->n - i) * sizeof(bus->r[0]));
	bus->r[i] = (struct bus_range){
		.base = base, .len = len, .ops = ops, .dev = dev, .name = name};
	bus->n++;
	return 0;
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned int size)
{
	unsigned int lo = 0, hi = bus->n;

	/* Binary search for the last range with base <= addr. */
	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (bus->r[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct bus_range *r = &bus->r[lo - 1];
	uint64_t off = addr - r->base;

	if (off < r->len && size <= r->len - off)
		return r;
	return NULL;
}

bool bus_dispatch(struct bus *bus, uint64_t addr, void *data, unsigned int size, bool write)
{
	const struct bus_range *r = NULL;
	uint64_t val = 0;

	if (size == 1 || size == 2 || size == 4 || size == 8)
		r = bus_find(bus, addr, size);
	if (!r) {
		if (write) {
			atomic_fetch_add_explicit(&bus->unclaimed_writes, 1, memory_order_relaxed);
		} else {
			atomic_fetch_add_explicit(&bus->unclaimed_reads, 1, memory_order_relaxed);
			memset(data, 0xff, size);
		}
		pr_debug("unclaimed %s %s of %u bytes at 0x%llx", bus->name,
			 write ? "write" : "read", size, (unsigned long long)addr);
		pr_warn_once("guest touched unclaimed %s address 0x%llx (further ones are counted, "
			     "not logged)", bus->name, (unsigned long long)addr);
		return false;
	}
	/* x86 is little-endian like the guest, so the first (size) bytes of a uint64_t are the
	 * value. */
	if (write) {
		memcpy(&val, data, size);
		r->ops->write(r->dev, addr - r->base, val, size);
	} else {
		val = r->ops->read(r->dev, addr - r->base, size);
		memcpy(data, &val, size);
	}
	return true;
}
