/* test_bus.c: registration (overlaps refused), dispatch by range and width, unclaimed accesses. */
#include "core/bus.h"

#include <errno.h>

#include "test.h"

struct fake_dev {
	uint64_t last_off, last_val;
	unsigned int last_size, reads, writes;
};

static uint64_t fake_read(void *dev, uint64_t off, unsigned int size)
{
	struct fake_dev *d = dev;

	d->reads++;
	d->last_off = off;
	d->last_size = size;
	return 0x1122334455667788ULL;
}

static void fake_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	struct fake_dev *d = dev;

	d->writes++;
	d->last_off = off;
	d->last_val = val;
	d->last_size = size;
}

static const struct bus_ops fake_ops = {.read = fake_read, .write = fake_write};

int main(void)
{
	struct bus bus;
	struct fake_dev a = {0}, b = {0};
	uint8_t data[8];
	uint32_t v32;

	bus_init(&bus, "test");
	CHECK_EQ(bus_register(&bus, 0x100, 8, &fake_ops, &a, "a"), 0);
	CHECK_EQ(bus_register(&bus, 0x10, 0x10, &fake_ops, &b, "b"), 0);
	/* Overlaps at either end, containment, and exact duplicates are refused. */
	CHECK_EQ(bus_register(&bus, 0x107, 1, &fake_ops, &b, "x"), -EEXIST);
	CHECK_EQ(bus_register(&bus, 0xf0, 0x11, &fake_ops, &b, "x"), -EEXIST);
	CHECK_EQ(bus_register(&bus, 0x0, 0x1000, &fake_ops, &b, "x"), -EEXIST);
	CHECK_EQ(bus_register(&bus, 0x100, 8, &fake_ops, &b, "x"), -EEXIST);
	/* Empty and wrapping ranges are invalid. */
	CHECK_EQ(bus_register(&bus, 0x200, 0, &fake_ops, &b, "x"), -EINVAL);
	CHECK_EQ(bus_register(&bus, UINT64_MAX - 1, 4, &fake_ops, &b, "x"), -EINVAL);
	/* The last byte of the address space is usable. */
	CHECK_EQ(bus_register(&bus, UINT64_MAX, 1, &fake_ops, &b, "top"), 0);
	/* Adjacent ranges are fine. */
	CHECK_EQ(bus_register(&bus, 0x108, 8, &fake_ops, &b, "adj"), 0);

	/* A read inside a: offset relative to base, width passed through, little-endian data. */
	CHECK(bus_dispatch(&bus, 0x104, &v32, 4, false));
	CHECK_EQ(a.last_off, 4);
	CHECK_EQ(a.last_size, 4);
	CHECK_EQ(v32, 0x55667788);
	/* A write. */
	v32 = 0xdeadbeef;
	CHECK(bus_dispatch(&bus, 0x101, &v32, 2, true));
	CHECK_EQ(a.last_val, 0xbeef);
	CHECK_EQ(a.last_size, 2);
	/* An access straddling a's end and the next device is unclaimed: reads all ones. */
	CHECK(!bus_dispatch(&bus, 0x106, data, 4, false));
	CHECK_EQ(data[0] & data[1] & data[2] & data[3], 0xff);
	CHECK_EQ(bus.unclaimed_reads, 1);
	/* Unclaimed write is dropped and counted. */
	CHECK(!bus_dispatch(&bus, 0x5000, data, 1, true));
	CHECK_EQ(bus.unclaimed_writes, 1);
	/* Below every device. */
	memset(data, 0, sizeof(data));
	CHECK(!bus_dispatch(&bus, 0x0, data, 8, false));
	CHECK_EQ(data[7], 0xff);
	/* Widths other than 1, 2, 4, 8 are never handed to a device. */
	unsigned int writes = a.writes;
	CHECK(!bus_dispatch(&bus, 0x100, data, 3, true));
	CHECK_EQ(a.writes, writes);
	/* The top byte. */
	CHECK(bus_dispatch(&bus, UINT64_MAX, data, 1, false));
	CHECK(!bus_dispatch(&bus, UINT64_MAX, data, 2, false));
	/* Lookup finds b at its first and last byte. */
	CHECK(bus_find(&bus, 0x10, 1) != NULL);
	CHECK(bus_find(&bus, 0x1f, 1) != NULL);
	CHECK(bus_find(&bus, 0x20, 1) == NULL);
	return t_done();
}
