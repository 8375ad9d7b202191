/* bus.h: one address-decoding bus type, used for both port I/O and MMIO. */
#ifndef MVM_CORE_BUS_H
#define MVM_CORE_BUS_H

#include <stdbool.h>
#include <stdint.h>

/* Device callbacks. (off) is relative to the registered base; (size) is 1, 2, 4 or 8 and the
 * access lies entirely inside the device's range. Called on vCPU threads, possibly several at
 * once: a device serializes its own state. */
struct bus_ops {
	uint64_t (*read)(void *dev, uint64_t off, unsigned int size);
	void (*write)(void *dev, uint64_t off, uint64_t val, unsigned int size);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *dev;
	const char *name;
};

#define BUS_MAX_RANGES 64

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	struct bus_range r[BUS_MAX_RANGES]; /* sorted by base, never overlapping */
	unsigned int n;
	_Atomic uint64_t unclaimed_reads;
	_Atomic uint64_t unclaimed_writes;
};

void bus_init(struct bus *bus, const char *name);

/* Claims [base, base+len) for (dev). Only during setup, before any vCPU runs.
 * Returns 0, -EEXIST when the range overlaps a registered one, -EINVAL for an empty or
 * wrapping range, -ENOSPC when the bus is full. (name) and (ops) are borrowed. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *dev, const char *name);

/* Performs one access of (size) bytes (1, 2, 4 or 8) at (addr). For a read, (data) receives
 * the value in little-endian order; for a write it holds it. An access that no device claims
 * wholly reads all ones and a write is dropped; both are counted and logged once per bus.
 * Returns true when a device claimed it. Safe from any thread after setup. */
bool bus_dispatch(struct bus *bus, uint64_t addr, void *data, unsigned int size, bool write);

/* The device range holding [addr, addr+size), or NULL. */
const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned int size);

#endif
