/* vdriver.h: a fake guest for the virtio unit tests: guest RAM from the heap, a driver that
 * talks to a struct virtio_mmio through its register file (as a vCPU would), and helpers that
 * build split rings and chains in that RAM. Header-only; every function is static inline. */
#ifndef MVM_TEST_VDRIVER_H
#define MVM_TEST_VDRIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/guest_mem.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"

#define FAKE_RAM_SIZE (4u << 20) /* guest-physical 0 .. 4 MiB */

struct fake_ram {
	struct guest_mem mem;
	uint8_t *ram;
};

static inline int fake_ram_init(struct fake_ram *f)
{
	guest_mem_init(&f->mem);
	f->ram = aligned_alloc(4096, FAKE_RAM_SIZE);
	if (!f->ram)
		return -1;
	memset(f->ram, 0, FAKE_RAM_SIZE);
	return guest_mem_add(&f->mem, 0, FAKE_RAM_SIZE, f->ram);
}

static inline void fake_ram_fini(struct fake_ram *f)
{
	guest_mem_fini(&f->mem);
	free(f->ram);
}

static inline void *gpa(struct fake_ram *f, uint64_t a)
{
	return f->ram + a;
}

/* ---- the register file, as a vCPU sees it ---- */

static inline uint32_t reg_rd(struct virtio_mmio *t, uint64_t off)
{
	return (uint32_t)virtio_mmio_bus_ops.read(t, off, 4);
}

static inline void reg_wr(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	virtio_mmio_bus_ops.write(t, off, v, 4);
}

/* Reset, ACKNOWLEDGE, DRIVER, (features), FEATURES_OK. Returns the status read back. */
static inline uint32_t drv_features(struct virtio_mmio *t, uint64_t features)
{
	reg_wr(t, VIRTIO_MMIO_STATUS, 0);
	reg_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	reg_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	reg_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	reg_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	reg_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					      VIRTIO_STATUS_FEATURES_OK);
	return reg_rd(t, VIRTIO_MMIO_STATUS);
}

static inline void drv_queue(struct virtio_mmio *t, unsigned int q, uint32_t size,
			     uint64_t desc, uint64_t avail, uint64_t used)
{
	reg_wr(t, VIRTIO_MMIO_QUEUE_SEL, q);
	reg_wr(t, VIRTIO_MMIO_QUEUE_NUM, size);
	reg_wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	reg_wr(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	reg_wr(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
	reg_wr(t, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
	reg_wr(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	reg_wr(t, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
	reg_wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
}

static inline void drv_ok(struct virtio_mmio *t)
{
	reg_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					      VIRTIO_STATUS_FEATURES_OK |
					      VIRTIO_STATUS_DRIVER_OK);
}

/* ---- a split ring in fake RAM ---- */

struct fring {
	struct fake_ram *f;
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx, last_used;
};

/* Places a ring of (size) entries at (base) (desc), base + 0x1000 (avail), base + 0x2000
 * (used), zeroed. */
static inline void fring_init(struct fring *r, struct fake_ram *f, uint64_t base, uint16_t size)
{
	r->f = f;
	r->size = size;
	r->desc_gpa = base;
	r->avail_gpa = base + 0x1000;
	r->used_gpa = base + 0x2000;
	memset(gpa(f, base), 0, 0x3000);
	r->desc = gpa(f, r->desc_gpa);
	r->avail = gpa(f, r->avail_gpa);
	r->used = gpa(f, r->used_gpa);
	r->avail_idx = r->last_used = 0;
}

static inline void fring_desc(struct fring *r, uint16_t i, uint64_t addr, uint32_t len,
			      uint16_t flags, uint16_t next)
{
	r->desc[i] = (struct vring_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

/* Makes (head) available (does not notify). */
static inline void fring_publish(struct fring *r, uint16_t head)
{
	r->avail->ring[r->avail_idx % r->size] = head;
	r->avail_idx++;
	__atomic_store_n(&r->avail->idx, r->avail_idx, __ATOMIC_RELEASE);
}

static inline bool fring_used(struct fring *r, uint32_t *id, uint32_t *len)
{
	uint16_t idx = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);

	if (idx == r->last_used)
		return false;
	*id = r->used->ring[r->last_used % r->size].id;
	*len = r->used->ring[r->last_used % r->size].len;
	r->last_used++;
	return true;
}

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits up to (ms) for a used entry (the I/O thread pushes it). */
static inline bool fring_wait_used(struct fring *r, uint32_t *id, uint32_t *len, unsigned int ms)
{
	uint64_t end = now_ms() + ms;

	do {
		if (fring_used(r, id, len))
			return true;
		usleep(200);
	} while (now_ms() < end);
	return false;
}

/* Waits up to (ms) for status bit(s) (bits) to be set. */
static inline bool wait_status(struct virtio_mmio *t, uint32_t bits, unsigned int ms)
{
	uint64_t end = now_ms() + ms;

	do {
		if ((reg_rd(t, VIRTIO_MMIO_STATUS) & bits) == bits)
			return true;
		usleep(200);
	} while (now_ms() < end);
	return false;
}

/* Reads the interrupt eventfd without blocking: the count of interrupts since the last read. */
static inline uint64_t irq_count(struct virtio_mmio *t)
{
	uint64_t v = 0;

	if (read(virtio_mmio_irq_fd(t), &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* Waits up to (ms) for at least one interrupt. */
static inline bool wait_irq(struct virtio_mmio *t, unsigned int ms)
{
	uint64_t end = now_ms() + ms;

	do {
		if (irq_count(t))
			return true;
		usleep(200);
	} while (now_ms() < end);
	return false;
}

static inline void kick(struct virtio_mmio *t, unsigned int q)
{
	reg_wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

#endif
