/* test_virtio_mmio.c: the virtio-mmio v2 register file and its hand-offs, with a fake device
 * on a real I/O loop thread: identification, feature negotiation (refusals included), queue
 * setup checked at DRIVER_OK, kicks through QueueNotify, used-buffer and config interrupts
 * with ISR and its ack, NEEDS_RESET from either side, config space widths, a reset that
 * waits for the device to drain, and one that drains only after the vCPU stopped waiting. */
#include "virtio/mmio.h"

#include <errno.h>
#include <stdatomic.h>

#include "core/loop.h"
#include "test.h"
#include "util/util.h"
#include "vdriver.h"

#define RING0 0x10000ull
#define RING1 0x20000ull
#define QMAX  16

struct fake_dev {
	struct virtio_mmio t;
	uint8_t config[12];
	_Atomic int activated, resets, notified[2], config_writes;
	bool defer_reset;		/* reset() drains through a NOP on the loop */
	struct loop_op drain_op;
};

static struct fake_dev *to_fake(struct virtio_mmio *t)
{
	return container_of(t, struct fake_dev, t);
}

static void fake_activate(struct virtio_mmio *t)
{
	to_fake(t)->activated++;
}

static void drain_done(struct loop_op *op, int res, unsigned int flags)
{
	struct fake_dev *d = container_of(op, struct fake_dev, drain_op);

	usleep(20000); /* in-flight I/O takes a while */
	d->resets++;
	virtio_mmio_reset_done(&d->t);
}

static bool fake_reset(struct virtio_mmio *t)
{
	struct fake_dev *d = to_fake(t);

	if (!d->defer_reset) {
		d->resets++;
		return true;
	}
	struct io_uring_sqe *sqe = loop_sqe(t->loop, &d->drain_op);

	io_uring_prep_nop(sqe);
	loop_sqe_fixed(sqe);
	return false;
}

/* Queue 0: completes every chain with its readable length; a chain whose first byte is 0xee
 * is "malformed" and sets NEEDS_RESET. Queue 1: only counts. */
static void fake_notify(struct virtio_mmio *t, unsigned int q)
{
	struct fake_dev *d = to_fake(t);
	struct vq *vq = &t->q[q].vq;
	struct vq_chain c;
	int ret;

	d->notified[q]++;
	if (q != 0)
		return;
	while ((ret = vq_pop(vq, &c)) == 1) {
		if (c.nr_out && *(uint8_t *)c.iov[0].iov_base == 0xee) {
			virtio_mmio_set_needs_reset(t, "test: malformed request");
			return;
		}
		vq_push(vq, c.head, c.out_len);
		virtio_mmio_signal_used(t, 0);
	}
	if (ret < 0)
		virtio_mmio_set_needs_reset(t, vq->error);
}

static void fake_config_write(struct virtio_mmio *t, uint32_t off, const void *data,
			      unsigned int size)
{
	struct fake_dev *d = to_fake(t);

	memcpy(d->config + off, data, size);
	d->config_writes++;
}

static const struct virtio_mmio_dev_ops fake_ops = {
	.activate = fake_activate,
	.reset = fake_reset,
	.notify = fake_notify,
	.config_write = fake_config_write,
};

static bool wait_count(_Atomic int *c, int want, unsigned int ms)
{
	uint64_t end = now_ms() + ms;

	while (atomic_load(c) < want && now_ms() < end)
		usleep(200);
	return atomic_load(c) >= want;
}

static void setup_queues(struct fake_dev *d, struct fake_ram *f, struct fring *r0,
			 struct fring *r1)
{
	fring_init(r0, f, RING0, QMAX);
	fring_init(r1, f, RING1, 8);
	drv_queue(&d->t, 0, QMAX, r0->desc_gpa, r0->avail_gpa, r0->used_gpa);
	drv_queue(&d->t, 1, 8, r1->desc_gpa, r1->avail_gpa, r1->used_gpa);
}

int main(void)
{
	struct fake_ram f;
	struct loop loop;
	struct fake_dev *d = calloc(1, sizeof(*d));
	struct virtio_mmio *t = &d->t;
	struct fring r0, r1;
	uint32_t id, len;
	uint64_t v;

	if (loop_init(&loop, 64))
		return t_skip("io_uring unavailable");
	/* Every SQE the device submits names a registered file (or none, flagged anyway). */
	loop_require_fixed_files(&loop);
	CHECK_EQ(fake_ram_init(&f), 0);
	for (unsigned int i = 0; i < sizeof(d->config); i++)
		d->config[i] = (uint8_t)(0x10 + i);

	/* Bad arguments. */
	CHECK_EQ(virtio_mmio_init(t, "fake", &fake_ops, 42, 0, 0, QMAX, NULL, 0, &f.mem, &loop),
		 -EINVAL);
	CHECK_EQ(virtio_mmio_init(t, "fake", &fake_ops, 42, 0, 2, 12, NULL, 0, &f.mem, &loop),
		 -EINVAL);
	CHECK_EQ(virtio_mmio_init(t, "fake", &fake_ops, 42, 0, VIRTIO_MMIO_MAX_QUEUES + 1, QMAX,
				  NULL, 0, &f.mem, &loop),
		 -EINVAL);
	CHECK_EQ(virtio_mmio_init(t, "fake", &fake_ops, 42, VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | 0x5,
				  2, QMAX, d->config, sizeof(d->config), &f.mem, &loop),
		 0);
	d->drain_op.done = drain_done;
	CHECK_EQ(loop_start(&loop), 0);

	/* Identification. */
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_VERSION), 2);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_DEVICE_ID), 42);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	reg_wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_DEVICE_FEATURES), (1u << VIRTIO_F_EVENT_IDX) | 0x5);
	reg_wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1, always */
	reg_wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	reg_wr(t, VIRTIO_MMIO_QUEUE_SEL, 1);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), QMAX);
	reg_wr(t, VIRTIO_MMIO_QUEUE_SEL, 2);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0); /* no such queue */
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_CONFIG_GENERATION), 0);
	/* Registers are 32-bit only; config space takes any width, little-endian. */
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_MAGIC_VALUE, 2), 0);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_MAGIC_VALUE + 1, 4), 0);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG, 1), 0x10);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG + 1, 2), 0x1211);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG + 4, 8), 0x1b1a191817161514ULL);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG + 8, 8), 0); /* past the end */
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG + 0x800, 4), 0);
	virtio_mmio_bus_ops.write(t, VIRTIO_MMIO_CONFIG + 2, 0xabcd, 2);
	CHECK_EQ(d->config_writes, 1);
	CHECK_EQ(d->config[2], 0xcd);
	virtio_mmio_bus_ops.write(t, VIRTIO_MMIO_CONFIG + 11, 0xabcd, 2); /* crosses the end */
	CHECK_EQ(d->config_writes, 1);
	/* Writes to read-only registers and odd widths are dropped. */
	reg_wr(t, VIRTIO_MMIO_MAGIC_VALUE, 0);
	virtio_mmio_bus_ops.write(t, VIRTIO_MMIO_STATUS, 0xff, 1);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_STATUS), 0);

	/* Feature negotiation: unknown bits or no VERSION_1 refuse FEATURES_OK. */
	CHECK(!(drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(7)) &
		VIRTIO_STATUS_FEATURES_OK));
	CHECK(!(drv_features(t, 0x5) & VIRTIO_STATUS_FEATURES_OK));
	CHECK(drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1) | 0x1) & VIRTIO_STATUS_FEATURES_OK);
	/* Driver features are frozen after FEATURES_OK. */
	reg_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 0x4);
	CHECK_EQ(t->driver_features, VIRTIO_BIT(VIRTIO_F_VERSION_1) | 0x1);

	/* DRIVER_OK without FEATURES_OK: NEEDS_RESET and a config interrupt. */
	irq_count(t);
	reg_wr(t, VIRTIO_MMIO_STATUS, 0);
	reg_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	reg_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					      VIRTIO_STATUS_DRIVER_OK);
	v = reg_rd(t, VIRTIO_MMIO_STATUS);
	CHECK(v & VIRTIO_STATUS_NEEDS_RESET);
	CHECK(!(v & VIRTIO_STATUS_DRIVER_OK));
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_CONFIG);
	CHECK(irq_count(t) >= 1);
	CHECK_EQ(d->activated, 0);
	/* Reset clears everything. */
	reg_wr(t, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_STATUS), 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);

	/* Queues that fail the checks at DRIVER_OK: no activation, NEEDS_RESET. */
	drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	drv_queue(t, 0, 6, RING0, RING0 + 0x1000, RING0 + 0x2000); /* not a power of two */
	drv_ok(t);
	CHECK(reg_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK_EQ(d->activated, 0);
	drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	drv_queue(t, 0, 2 * QMAX, RING0, RING0 + 0x1000, RING0 + 0x2000); /* above the max */
	drv_ok(t);
	CHECK(reg_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	drv_queue(t, 0, QMAX, FAKE_RAM_SIZE - 0x80, RING0 + 0x1000, RING0 + 0x2000);
	drv_ok(t);
	CHECK(reg_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK_EQ(d->activated, 0);
	CHECK_EQ(d->resets, 0); /* never handed off, so nothing to reset */

	/* A good activation: both queues get a first notify. */
	drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	setup_queues(d, &f, &r0, &r1);
	/* Queue registers are frozen while the queue is ready. */
	reg_wr(t, VIRTIO_MMIO_QUEUE_SEL, 1);
	reg_wr(t, VIRTIO_MMIO_QUEUE_NUM, 4);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_QUEUE_NUM), 8);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_QUEUE_READY), 1);
	/* A buffer posted before DRIVER_OK is served at activation. */
	*(uint8_t *)gpa(&f, 0x30000) = 1;
	fring_desc(&r0, 0, 0x30000, 100, 0, 0);
	fring_publish(&r0, 0);
	irq_count(t);
	drv_ok(t);
	CHECK_EQ(d->activated, 1); /* synchronous: DRIVER_OK returns after activate() */
	CHECK(reg_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK);
	CHECK(wait_count(&d->notified[0], 1, 2000));
	CHECK(wait_count(&d->notified[1], 1, 2000));
	CHECK(fring_wait_used(&r0, &id, &len, 2000));
	CHECK_EQ(id, 0);
	CHECK_EQ(len, 100);
	/* The used buffer raised an interrupt with ISR bit 0; the ack clears only what it names. */
	CHECK(wait_irq(t, 2000));
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_USED);
	reg_wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_CONFIG);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_USED);
	reg_wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_USED);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);

	/* Kicks through QueueNotify (the path without KVM_IOEVENTFD). */
	for (uint16_t i = 1; i <= 3; i++) {
		fring_desc(&r0, i, 0x30000, 10 * i, 0, 0);
		fring_publish(&r0, i);
	}
	kick(t, 0);
	for (uint16_t i = 1; i <= 3; i++) {
		CHECK(fring_wait_used(&r0, &id, &len, 2000));
		CHECK_EQ(id, i);
		CHECK_EQ(len, 10u * i);
	}
	/* No VRING_AVAIL_F_NO_INTERRUPT: interrupts for those; with it: none. */
	CHECK(wait_irq(t, 2000));
	reg_wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_USED);
	r0.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	fring_publish(&r0, 1);
	kick(t, 0);
	CHECK(fring_wait_used(&r0, &id, &len, 2000));
	usleep(20000);
	CHECK_EQ(irq_count(t), 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	r0.avail->flags = 0;
	kick(t, 1);
	CHECK(wait_count(&d->notified[1], 2, 2000));
	kick(t, 7); /* no such queue: dropped */
	/* DRIVER_OK again is no new activation. */
	drv_ok(t);
	CHECK_EQ(d->activated, 1);

	/* The device finds a malformed request: NEEDS_RESET, config interrupt, no more
	 * processing until reset. */
	*(uint8_t *)gpa(&f, 0x30000) = 0xee;
	fring_publish(&r0, 0);
	kick(t, 0);
	CHECK(wait_status(t, VIRTIO_STATUS_NEEDS_RESET, 2000));
	CHECK(reg_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_ISR_CONFIG);
	CHECK(wait_irq(t, 2000));
	{
		int before = d->notified[0];

		*(uint8_t *)gpa(&f, 0x30000) = 1;
		fring_publish(&r0, 1);
		kick(t, 0);
		usleep(20000);
		CHECK_EQ(d->notified[0], before);
		CHECK(!fring_used(&r0, &id, &len));
	}
	/* The driver may still write status bits; NEEDS_RESET stays until reset. */
	drv_ok(t);
	CHECK(reg_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);

	/* Reset with in-flight work: the vCPU waits until the device has drained. */
	d->defer_reset = true;
	{
		uint64_t start = now_ms();

		reg_wr(t, VIRTIO_MMIO_STATUS, 0);
		CHECK(now_ms() - start >= 15);
	}
	CHECK_EQ(d->resets, 1);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_STATUS), 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	reg_wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_QUEUE_READY), 0);

	/* And it works again, now with EVENT_IDX. */
	CHECK(drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX)) &
	      VIRTIO_STATUS_FEATURES_OK);
	setup_queues(d, &f, &r0, &r1);
	drv_ok(t);
	CHECK_EQ(d->activated, 2);
	*(uint8_t *)gpa(&f, 0x30000) = 1;
	fring_desc(&r0, 5, 0x30000, 55, 0, 0);
	fring_publish(&r0, 5);
	kick(t, 0);
	CHECK(fring_wait_used(&r0, &id, &len, 2000));
	CHECK_EQ(id, 5);
	{
		uint16_t avail_event;

		memcpy(&avail_event, &r0.used->ring[QMAX], sizeof(avail_event));
		CHECK_EQ(avail_event, 1); /* published as the device consumed */
	}
	CHECK(wait_irq(t, 2000)); /* used_event 0 lies in [0, 1) */

	/* A reset after a clean run does not wait. */
	d->defer_reset = false;
	reg_wr(t, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(d->resets, 2);

	/* A reset that outlasts the vCPU's wait is not pretended: Status reads NEEDS_RESET alone
	 * (no stale FEATURES_OK or DRIVER_OK) and setup is ignored while the device drains; the
	 * first register access after that completes the reset. */
	CHECK(drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1)) & VIRTIO_STATUS_FEATURES_OK);
	setup_queues(d, &f, &r0, &r1);
	drv_ok(t);
	CHECK_EQ(d->activated, 3);
	d->defer_reset = true; /* drains in 20 ms */
	t->ctl_timeout_ms = 2;
	reg_wr(t, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_NEEDS_RESET);
	reg_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_NEEDS_RESET);
	reg_wr(t, VIRTIO_MMIO_QUEUE_SEL, 1);
	reg_wr(t, VIRTIO_MMIO_QUEUE_NUM, 4);
	{
		uint64_t end = now_ms() + 2000;

		while (reg_rd(t, VIRTIO_MMIO_STATUS) && now_ms() < end)
			usleep(200);
	}
	CHECK_EQ(d->resets, 3);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_STATUS), 0);
	reg_wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_QUEUE_READY), 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_QUEUE_NUM), 0);
	t->ctl_timeout_ms = 30000;
	d->defer_reset = false;
	CHECK(drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1)) & VIRTIO_STATUS_FEATURES_OK);
	setup_queues(d, &f, &r0, &r1);
	drv_ok(t);
	CHECK_EQ(d->activated, 4);
	reg_wr(t, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(d->resets, 4);

	loop_join(&loop);
	virtio_mmio_fini(t);
	loop_fini(&loop);
	fake_ram_fini(&f);
	free(d);
	return t_done();
}
