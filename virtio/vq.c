/* vq.c: split virtqueue, independent of transport (virtio 1.2 section 2.7). The guest writes
 * the rings concurrently on its vCPUs: each shared field is loaded once, with the fences the
 * spec's ordering rules need (each named below), and checked before it is used. */
#include "virtio/vq.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

static inline uint16_t load16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static inline void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

/* The event fields after each ring (section 2.7.10), by byte offset. */
static inline uint16_t *used_event(const struct vq *vq)
{
	return (uint16_t *)((uint8_t *)vq->avail + 4 + 2 * (size_t)vq->size);
}

static inline uint16_t *avail_event(const struct vq *vq)
{
	return (uint16_t *)((uint8_t *)vq->used + 4 + 8 * (size_t)vq->size);
}

static void *part(struct vq *vq, gpa_t gpa, uint64_t len, uint64_t align, const char *what)
{
	void *hva;

	if (gpa & (align - 1)) {
		vq->error = what;
		return NULL;
	}
	hva = gpa_to_hva(vq->mem, gpa, len);
	if (!hva)
		vq->error = what;
	return hva;
}

int vq_init(struct vq *vq, const struct guest_mem *mem, uint16_t size, gpa_t desc, gpa_t avail,
	    gpa_t used, uint64_t features)
{
	memset(vq, 0, sizeof(*vq));
	vq->mem = mem;
	if (size == 0 || (size & (size - 1))) {
		vq->error = "queue size is not a power of two";
		return -EINVAL;
	}
	vq->size = size;
	vq->event_idx = features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	vq->indirect = features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	vq->desc = part(vq, desc, vring_desc_bytes(size), VRING_DESC_ALIGN,
			"descriptor table misaligned or outside RAM");
	vq->avail = part(vq, avail, vring_avail_bytes(size), VRING_AVAIL_ALIGN,
			 "available ring misaligned or outside RAM");
	vq->used = part(vq, used, vring_used_bytes(size), VRING_USED_ALIGN,
			"used ring misaligned or outside RAM");
	if (!vq->desc || !vq->avail || !vq->used)
		return -EINVAL;
	/* A queue starts at index 0 on both rings after a reset (section 2.7.6, 2.7.8);
	 * nothing is taken from the guest's copy. */
	vq->last_avail = 0;
	vq->used_idx = 0;
	return 0;
}

int vq_pop_head(struct vq *vq, uint16_t *head)
{
	uint16_t avail_idx, dist, h;

	if (vq->event_idx) {
		/* Ask for a notification once the driver goes past what we consumed. */
		store16(avail_event(vq), vq->last_avail);
		/* Orders the avail_event store before the avail->idx load: otherwise the driver
		 * could add a buffer, read the old avail_event and skip the kick while we read
		 * the old idx (section 2.7.10). */
		atomic_thread_fence(memory_order_seq_cst);
	}
	/* Acquire: orders the avail->idx load before the ring entry and descriptor loads; the
	 * driver writes those before it publishes idx (section 2.7.13). An acquire load, not a
	 * relaxed one and a fence: ThreadSanitizer does not see fences. */
	avail_idx = le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
	dist = (uint16_t)(avail_idx - vq->last_avail);
	if (dist == 0)
		return 0;
	if (dist > vq->size) {
		vq->error = "available index moved by more than the queue size";
		return -EINVAL;
	}
	h = load16(&vq->avail->ring[vq->last_avail & (vq->size - 1)]);
	vq->last_avail++;
	if (h >= vq->size) {
		vq->error = "head index out of range";
		return -EINVAL;
	}
	*head = h;
	return 1;
}

static int bad(struct vq *vq, const char *why)
{
	vq->error = why;
	return -EINVAL;
}

int vq_walk(struct vq *vq, uint16_t head, struct vq_chain *c)
{
	const struct vring_desc *table = vq->desc;
	unsigned int table_size = vq->size, hops = 0, max_hops = vq->size, idx = head;
	bool indirect = false, seen_write = false;

	c->head = head;
	c->nr_out = c->nr_in = 0;
	c->out_len = c->in_len = 0;
	for (;;) {
		struct vring_desc d;
		uint16_t flags;
		uint32_t len;
		uint64_t addr;

		/* Bounds loops: a chain has at most as many descriptors as its table. */
		if (++hops > max_hops)
			return bad(vq, indirect ? "indirect chain longer than its table"
						: "chain longer than the queue (loop?)");
		/* One copy of the descriptor: the guest may rewrite it while we look. */
		memcpy(&d, &table[idx], sizeof(d));
		flags = le16toh(d.flags);
		len = le32toh(d.len);
		addr = le64toh(d.addr);

		if (flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return bad(vq, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
			if (indirect)
				return bad(vq, "nested indirect descriptor");
			if (flags & VRING_DESC_F_NEXT)
				return bad(vq, "indirect descriptor with NEXT");
			if (len == 0 || len % sizeof(struct vring_desc))
				return bad(vq, "indirect table length not a multiple of 16");
			if (addr % 8)
				return bad(vq, "indirect table misaligned");
			if (len / sizeof(struct vring_desc) > VIRTQ_MAX_SIZE)
				return bad(vq, "indirect table larger than the largest queue");
			table = gpa_to_hva(vq->mem, addr, len);
			if (!table)
				return bad(vq, "indirect table outside RAM");
			table_size = len / sizeof(struct vring_desc);
			max_hops = table_size;
			hops = 0;
			idx = 0;
			indirect = true;
			continue;
		}
		if (flags & VRING_DESC_F_WRITE) {
			seen_write = true;
		} else if (seen_write) {
			return bad(vq, "device-readable descriptor after a writable one");
		}
		if (len) {
			void *hva = gpa_to_hva(vq->mem, addr, len);
			uint32_t *total = (flags & VRING_DESC_F_WRITE) ? &c->in_len : &c->out_len;

			if (!hva)
				return bad(vq, "buffer outside RAM or across a region boundary");
			if (c->nr_out + c->nr_in == VQ_IOV_MAX)
				return bad(vq, "more buffer segments than mvm accepts");
			if (__builtin_add_overflow(*total, len, total))
				return bad(vq, "chain length overflows 32 bits");
			c->iov[c->nr_out + c->nr_in] = (struct iovec){.iov_base = hva, .iov_len = len};
			if (flags & VRING_DESC_F_WRITE)
				c->nr_in++;
			else
				c->nr_out++;
		}
		if (!(flags & VRING_DESC_F_NEXT))
			return 0;
		idx = le16toh(d.next);
		if (idx >= table_size)
			return bad(vq, "next index out of range");
	}
}

int vq_pop(struct vq *vq, struct vq_chain *c)
{
	uint16_t head;
	int ret = vq_pop_head(vq, &head);

	if (ret <= 0)
		return ret;
	return vq_walk(vq, head, c) ? -EINVAL : 1;
}

void vq_fill(struct vq *vq, uint16_t head, uint32_t written)
{
	uint16_t slot = (uint16_t)(vq->used_idx + vq->nr_filled);
	struct vring_used_elem *e = &vq->used->ring[slot & (vq->size - 1)];

	__atomic_store_n(&e->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, htole32(written), __ATOMIC_RELAXED);
	vq->nr_filled++;
}

void vq_flush(struct vq *vq)
{
	if (!vq->nr_filled)
		return;
	vq->used_idx = (uint16_t)(vq->used_idx + vq->nr_filled);
	vq->nr_filled = 0;
	/* Release: the elements (and the data written into the buffers) are visible before the
	 * driver can see the new used->idx (section 2.7.14). */
	__atomic_store_n(&vq->used->idx, htole16(vq->used_idx), __ATOMIC_RELEASE);
}

uint16_t vq_watch_avail(struct vq *vq)
{
	uint16_t idx = le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));

	if (vq->event_idx) {
		store16(avail_event(vq), idx);
		/* As in vq_pop_head(): the store before the driver's next idx load is seen. */
		atomic_thread_fence(memory_order_seq_cst);
		idx = le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
	}
	return idx;
}

bool vq_avail_moved(const struct vq *vq, uint16_t mark)
{
	return le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE)) != mark;
}

void vq_unpop(struct vq *vq, uint16_t n)
{
	vq->last_avail = (uint16_t)(vq->last_avail - n);
}

void vq_push(struct vq *vq, uint16_t head, uint32_t written)
{
	vq_fill(vq, head, written);
	vq_flush(vq);
}

bool vq_should_notify(struct vq *vq)
{
	uint16_t old = vq->signalled_used, now = vq->used_idx, event;
	bool valid = vq->signalled_used_valid;

	/* Orders the used->idx store before the loads of the driver's suppression fields: the
	 * driver writes used_event and then reads used->idx (section 2.7.10). */
	atomic_thread_fence(memory_order_seq_cst);
	if (!vq->event_idx)
		return !(load16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	vq->signalled_used = now;
	vq->signalled_used_valid = true;
	if (!valid)
		return true;
	event = load16(used_event(vq));
	/* vring_need_event(): notify when used_event lies in [old, now). */
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

size_t iov_to_buf(const struct iovec *iov, unsigned int n, size_t skip, void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned int i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, c;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		c = l - skip < len - done ? l - skip : len - done;
		memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + skip, c);
		done += c;
		skip = 0;
	}
	return done;
}

size_t buf_to_iov(const struct iovec *iov, unsigned int n, size_t skip, const void *buf,
		  size_t len)
{
	size_t done = 0;

	for (unsigned int i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, c;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		c = l - skip < len - done ? l - skip : len - done;
		memcpy((uint8_t *)iov[i].iov_base + skip, (const uint8_t *)buf + done, c);
		done += c;
		skip = 0;
	}
	return done;
}

size_t iov_consume(struct iovec *iov, unsigned int *n, size_t len)
{
	size_t done = 0;
	unsigned int drop = 0;

	while (drop < *n && done < len) {
		size_t want = len - done;

		if (iov[drop].iov_len <= want) {
			done += iov[drop].iov_len;
			drop++;
			continue;
		}
		iov[drop].iov_base = (uint8_t *)iov[drop].iov_base + want;
		iov[drop].iov_len -= want;
		done += want;
	}
	if (drop) {
		memmove(iov, iov + drop, (*n - drop) * sizeof(*iov));
		*n -= drop;
	}
	return done;
}
