/* virtio.h: a minimal virtio-mmio version 2 driver for the test guests (virtio 1.2 sections 2.7
 * and 4.2): finding devices, feature negotiation, one split virtqueue at a time, and raw access
 * to the rings so tests can also build chains no real driver would. Polled; interrupts are the
 * test's business (virtio_isr_ack()). Identity-mapped memory: guest virtual = physical. */
#ifndef MVM_GUEST_VIRTIO_H
#define MVM_GUEST_VIRTIO_H

#include "guest.h"

/* The device's own definitions: register layout, status and feature bits, ring layout. */
#include "virtio/mmio_regs.h"
#include "virtio/virtio.h"

struct virtio_dev {
	uint64_t base;
	unsigned int irq;	/* from the command line; ~0u when probed */
	uint32_t device_id;
	uint64_t offered;	/* device features */
	uint64_t features;	/* negotiated */
};

#define VIRTQ_MAX 256 /* the three pages of VIRTQ_MEM hold a queue this size */
/* Bytes of ring memory a queue of (n) entries needs: virtq_setup() lays it out. */
#define VIRTQ_MEM(n) (3 * 4096)

struct virtq {
	struct virtio_dev *dev;
	unsigned int index;
	uint16_t size;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;	/* the next avail->idx we publish */
	uint16_t last_used;	/* the next used entry we consume */
};

/* Finds the (nth) (0-based) device with (device_id): from the virtio_mmio.device=SIZE@ADDR:IRQ
 * entries on the command line (mvm's and QEMU microvm's), or else by probing eight 4 KiB
 * windows from 0xd0000000. Returns false when there is none. */
bool virtio_find(uint32_t device_id, unsigned int nth, struct virtio_dev *d);

uint32_t virtio_read32(const struct virtio_dev *d, uint32_t off);
void virtio_write32(const struct virtio_dev *d, uint32_t off, uint32_t v);
uint32_t virtio_status(const struct virtio_dev *d);
/* Writes 0 to Status and checks that it reads back 0. */
bool virtio_reset(struct virtio_dev *d);
/* Reset, ACKNOWLEDGE, DRIVER, features (want & offered, VERSION_1 required), FEATURES_OK and
 * its read-back. Returns false (with a message) when any step is refused. */
bool virtio_setup(struct virtio_dev *d, uint64_t want);
/* Queue (index) with (size) entries in (mem) (VIRTQ_MEM bytes, 4 KiB aligned, zeroed here).
 * Returns false when the device's QueueNumMax is smaller or 0. */
bool virtq_setup(struct virtio_dev *d, struct virtq *q, unsigned int index, uint16_t size,
		 void *mem);
void virtio_driver_ok(struct virtio_dev *d);
/* Reads InterruptStatus and acknowledges what it saw; returns it. */
uint32_t virtio_isr_ack(struct virtio_dev *d);
/* Config space. */
uint32_t virtio_config32(const struct virtio_dev *d, uint32_t off);
uint64_t virtio_config64(const struct virtio_dev *d, uint32_t off);

/* Puts (head) in the avail ring and publishes it (after a write barrier); also sets
 * used_event so the device interrupts for the next completion. Does not notify. */
void virtq_publish(struct virtq *q, uint16_t head);
/* Writes the queue index to QueueNotify. */
void virtq_kick(struct virtq *q);
/* Takes the next used entry if there is one. */
bool virtq_get_used(struct virtq *q, uint32_t *id, uint32_t *len);
/* Publishes (head), kicks, and waits up to (ms) by the PIT for the device to return a chain;
 * true when it returned (head). */
bool virtq_submit_wait(struct virtq *q, uint16_t head, unsigned int ms);
static inline uint16_t *virtq_used_event(struct virtq *q)
{
	return &q->avail->ring[q->size];
}

#endif
