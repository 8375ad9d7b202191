/* virtio.c: the test guests' minimal virtio-mmio v2 driver (see virtio.h). */
#include "virtio.h"

#define PROBE_BASE  0xd0000000ull
#define PROBE_COUNT 8
#define KEY	    "virtio_mmio.device="

static inline void wmb(void)
{
	/* x86 keeps stores in order; the compiler must too. */
	__asm__ volatile("" ::: "memory");
}

static inline void mb(void)
{
	__asm__ volatile("mfence" ::: "memory");
}

uint32_t virtio_read32(const struct virtio_dev *d, uint32_t off)
{
	return mmio_read32(d->base + off);
}

void virtio_write32(const struct virtio_dev *d, uint32_t off, uint32_t v)
{
	mmio_write32(d->base + off, v);
}

uint32_t virtio_status(const struct virtio_dev *d)
{
	return virtio_read32(d, VIRTIO_MMIO_STATUS);
}

/* Parses a number at (*p): decimal, or hex after 0x; a K/M suffix multiplies. */
static uint64_t parse_num(const char **p)
{
	const char *s = *p;
	uint64_t v = 0;
	unsigned int base = 10;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++) {
		unsigned int dig;

		if (*s >= '0' && *s <= '9')
			dig = (unsigned int)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			dig = (unsigned int)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			dig = (unsigned int)(*s - 'A' + 10);
		else
			break;
		v = v * base + dig;
	}
	if (*s == 'K' || *s == 'k') {
		v <<= 10;
		s++;
	} else if (*s == 'M' || *s == 'm') {
		v <<= 20;
		s++;
	}
	*p = s;
	return v;
}

static bool is_device(struct virtio_dev *d, uint64_t base, uint32_t device_id)
{
	d->base = base;
	return virtio_read32(d, VIRTIO_MMIO_MAGIC_VALUE) == VIRTIO_MMIO_MAGIC &&
	       virtio_read32(d, VIRTIO_MMIO_DEVICE_ID) == device_id;
}

bool virtio_find(uint32_t device_id, unsigned int nth, struct virtio_dev *d)
{
	const char *p = cmdline();
	bool any = false;

	memset(d, 0, sizeof(*d));
	d->device_id = device_id;
	/* Every "virtio_mmio.device=<size>@<base>:<irq>" word, in order. */
	for (const char *w = p; *w; w++) {
		const char *s = w + sizeof(KEY) - 1;
		unsigned int irq = ~0u;
		uint64_t base;

		if ((w != p && w[-1] != ' ') || strncmp(w, KEY, sizeof(KEY) - 1))
			continue;
		parse_num(&s);
		if (*s++ != '@')
			continue;
		base = parse_num(&s);
		if (*s == ':') {
			s++;
			irq = (unsigned int)parse_num(&s);
		}
		any = true;
		if (is_device(d, base, device_id) && nth-- == 0) {
			d->irq = irq;
			return true;
		}
	}
	if (any)
		return false;
	for (unsigned int i = 0; i < PROBE_COUNT; i++) {
		if (is_device(d, PROBE_BASE + i * 0x1000ull, device_id) && nth-- == 0) {
			d->irq = ~0u;
			return true;
		}
	}
	return false;
}

bool virtio_reset(struct virtio_dev *d)
{
	virtio_write32(d, VIRTIO_MMIO_STATUS, 0);
	return virtio_status(d) == 0;
}

bool virtio_setup(struct virtio_dev *d, uint64_t want)
{
	uint32_t lo, hi;

	if (!virtio_reset(d)) {
		printf("virtio 0x%lx: status not 0 after reset\n", d->base);
		return false;
	}
	virtio_write32(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_write32(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_write32(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = virtio_read32(d, VIRTIO_MMIO_DEVICE_FEATURES);
	virtio_write32(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = virtio_read32(d, VIRTIO_MMIO_DEVICE_FEATURES);
	d->offered = (uint64_t)hi << 32 | lo;
	if (!(d->offered & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		printf("virtio 0x%lx: no VIRTIO_F_VERSION_1 (legacy device?)\n", d->base);
		return false;
	}
	d->features = d->offered & (want | VIRTIO_BIT(VIRTIO_F_VERSION_1));
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)d->features);
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(d->features >> 32));
	virtio_write32(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
						      VIRTIO_STATUS_FEATURES_OK);
	if (!(virtio_status(d) & VIRTIO_STATUS_FEATURES_OK)) {
		printf("virtio 0x%lx: FEATURES_OK refused\n", d->base);
		return false;
	}
	return true;
}

bool virtq_setup(struct virtio_dev *d, struct virtq *q, unsigned int index, uint16_t size,
		 void *mem)
{
	uint8_t *m = mem;
	uint64_t a;

	virtio_write32(d, VIRTIO_MMIO_QUEUE_SEL, index);
	if (virtio_read32(d, VIRTIO_MMIO_QUEUE_READY) != 0)
		return false;
	if (virtio_read32(d, VIRTIO_MMIO_QUEUE_NUM_MAX) < size || size > VIRTQ_MAX)
		return false;
	memset(mem, 0, VIRTQ_MEM(size));
	q->dev = d;
	q->index = index;
	q->size = size;
	q->desc = (struct vring_desc *)m;
	q->avail = (struct vring_avail *)(m + 4096);
	q->used = (struct vring_used *)(m + 8192);
	q->avail_idx = 0;
	q->last_used = 0;
	virtio_write32(d, VIRTIO_MMIO_QUEUE_NUM, size);
	a = (uint64_t)(uintptr_t)q->desc;
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)a);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(a >> 32));
	a = (uint64_t)(uintptr_t)q->avail;
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)a);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(a >> 32));
	a = (uint64_t)(uintptr_t)q->used;
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)a);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(a >> 32));
	virtio_write32(d, VIRTIO_MMIO_QUEUE_READY, 1);
	return true;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	virtio_write32(d, VIRTIO_MMIO_STATUS,
		       VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

uint32_t virtio_isr_ack(struct virtio_dev *d)
{
	uint32_t isr = virtio_read32(d, VIRTIO_MMIO_INTERRUPT_STATUS);

	if (isr)
		virtio_write32(d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
	return isr;
}

uint32_t virtio_config32(const struct virtio_dev *d, uint32_t off)
{
	return virtio_read32(d, VIRTIO_MMIO_CONFIG + off);
}

uint64_t virtio_config64(const struct virtio_dev *d, uint32_t off)
{
	return (uint64_t)virtio_config32(d, off + 4) << 32 | virtio_config32(d, off);
}

void virtq_publish(struct virtq *q, uint16_t head)
{
	q->avail->ring[q->avail_idx % q->size] = head;
	/* Ask for an interrupt when the device has used what we wait for next. */
	*(volatile uint16_t *)virtq_used_event(q) = q->last_used;
	wmb(); /* ring entry and descriptors before the index (section 2.7.13) */
	q->avail_idx++;
	*(volatile uint16_t *)&q->avail->idx = q->avail_idx;
	mb(); /* the index before the notify write and any read of avail_event */
}

void virtq_kick(struct virtq *q)
{
	virtio_write32(q->dev, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

bool virtq_get_used(struct virtq *q, uint32_t *id, uint32_t *len)
{
	uint16_t idx = *(volatile uint16_t *)&q->used->idx;
	struct vring_used_elem *e;

	if (idx == q->last_used)
		return false;
	__asm__ volatile("" ::: "memory"); /* the index before the element (x86: loads ordered) */
	e = &q->used->ring[q->last_used % q->size];
	*id = e->id;
	*len = e->len;
	q->last_used++;
	*(volatile uint16_t *)virtq_used_event(q) = q->last_used;
	return true;
}

bool virtq_submit_wait(struct virtq *q, uint16_t head, unsigned int ms)
{
	struct pit_clock clk;
	uint32_t id, len;

	virtq_publish(q, head);
	virtq_kick(q);
	pit_clock_start(&clk);
	while (pit_clock_ms(&clk) < ms)
		if (virtq_get_used(q, &id, &len))
			return id == head;
	return false;
}
