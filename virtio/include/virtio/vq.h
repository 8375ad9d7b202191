/* vq.h: the split virtqueue (virtio 1.2 section 2.7) as the device sees it, independent of the
 * transport: pop validated descriptor chains, push used entries, decide on notifications.
 *
 * Every guest value is read once into a local and checked before use: the avail index distance,
 * heads and next indices, chain length, segment count, descriptor order, indirect tables, and
 * every buffer range through gpa_to_hva(). A chain that fails a check is consumed and reported
 * as -EINVAL with the reason in vq->error; the caller fails the request or sets NEEDS_RESET.
 *
 * Not thread-safe: one thread (the I/O thread) owns a struct vq while the device is live. */
#ifndef MVM_VIRTIO_VQ_H
#define MVM_VIRTIO_VQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/guest_mem.h"
#include "virtio/virtio.h"

/* Most buffer segments one chain may have (direct and indirect together). */
#define VQ_IOV_MAX 64

struct vq {
	const struct guest_mem *mem;	/* borrowed */
	uint16_t size;			/* power of two, 1..VIRTQ_MAX_SIZE */
	bool event_idx;			/* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;			/* VIRTIO_F_INDIRECT_DESC negotiated */
	struct vring_desc *desc;	/* host views of the three parts, checked at vq_init() */
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;		/* next avail ring entry to consume */
	uint16_t used_idx;		/* our shadow of used->idx */
	uint16_t nr_filled;		/* entries vq_fill() wrote after used_idx, unpublished */
	uint16_t signalled_used;	/* used_idx at the last notification decision */
	bool signalled_used_valid;
	const char *error;		/* why the last pop failed (static string) */
};

/* One popped chain: iov[0, nr_out) are device-readable, iov[nr_out, nr_out + nr_in)
 * device-writable, in the guest's order. Zero-length descriptors take no slot. The iovecs
 * point straight into guest RAM. */
struct vq_chain {
	uint16_t head;
	uint16_t nr_out, nr_in;
	uint32_t out_len, in_len;	/* byte totals, overflow-checked */
	struct iovec iov[VQ_IOV_MAX];
};

/* Sets up (vq) for a queue of (size) entries whose parts are at guest addresses (desc, avail,
 * used), with (features) the negotiated feature bits. Returns 0, or -EINVAL when the size is
 * not a power of two in 1..VIRTQ_MAX_SIZE, a part is misaligned or not wholly inside one RAM
 * region (vq->error says which). (mem) is borrowed. */
int vq_init(struct vq *vq, const struct guest_mem *mem, uint16_t size, gpa_t desc, gpa_t avail,
	    gpa_t used, uint64_t features);

/* Consumes the next available head. Returns 1 and (*head), 0 when the ring is empty, or
 * -EINVAL when the avail index moved by more than the queue size or the head is out of range.
 * With EVENT_IDX it first publishes avail_event so the driver notifies for the next buffer. */
int vq_pop_head(struct vq *vq, uint16_t *head);

/* Walks and validates the chain starting at (head) (from vq_pop_head()) into (c).
 * Returns 0 or -EINVAL (vq->error says why). */
int vq_walk(struct vq *vq, uint16_t head, struct vq_chain *c);

/* vq_pop_head() then vq_walk(): 1 popped, 0 empty, -EINVAL malformed (the head is consumed;
 * c->head is valid when the walk, not the head, failed: see vq->error). */
int vq_pop(struct vq *vq, struct vq_chain *c);

/* The driver's avail index now, and (with EVENT_IDX) a request to be notified as soon as it
 * moves past it: for a device that waits for the driver to make one more buffer available
 * (vq_avail_moved()) without popping. */
uint16_t vq_watch_avail(struct vq *vq);
bool vq_avail_moved(const struct vq *vq, uint16_t mark);
/* Gives back the last (n) chains popped and not used, in the order they were popped, so the
 * next pops take them again (a device that freezes with receive buffers held). */
void vq_unpop(struct vq *vq, uint16_t n);
/* Returns (head) to the driver with (written) bytes written into its writable buffers. */
void vq_push(struct vq *vq, uint16_t head, uint32_t written);

/* Writes the used entry for (head) like vq_push() but does not publish it: the driver sees
 * nothing of it until vq_flush(). For buffers that must be used together, such as the
 * buffers of one merged virtio-net frame (section 5.1.6.4). */
void vq_fill(struct vq *vq, uint16_t head, uint32_t written);
/* Publishes every entry vq_fill() wrote since the last publish with one used->idx store. */
void vq_flush(struct vq *vq);

/* Whether the driver wants an interrupt for what was pushed since the last call
 * (VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX: section 2.7.10). */
bool vq_should_notify(struct vq *vq);

/* Copies up to (len) bytes between a flat buffer and the iovecs (iov, n), skipping (skip)
 * bytes first. Return the count copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned int n, size_t skip, void *buf, size_t len);
size_t buf_to_iov(const struct iovec *iov, unsigned int n, size_t skip, const void *buf,
		  size_t len);

/* Drops the first (len) bytes of (iov, *n) in place: entries fully consumed are removed,
 * the next one is advanced. Returns the bytes dropped (less than len if the iov was shorter). */
size_t iov_consume(struct iovec *iov, unsigned int *n, size_t len);

#endif
