/* mmio.c: the virtio-mmio v2 transport: register file, feature negotiation, queue setup,
 * activation and reset handed to the I/O thread, kicks and interrupts through eventfds. */
#define pr_fmt(fmt) "virtio-mmio: " fmt
#include "virtio/mmio.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

/* How long a vCPU waits for the I/O thread to finish an activation or reset before it gives
 * up (a reset then stays pending, the device reads NEEDS_RESET). Only a wedged I/O thread or
 * a backend that does not complete in-flight I/O takes this long. */
#define CTL_TIMEOUT_S 30

/* A read of the eventfd in slot (file) of the loop's file table. */
static void arm_read(struct virtio_mmio *t, struct loop_op *op, int file, uint64_t *buf)
{
	struct io_uring_sqe *sqe = loop_sqe(t->loop, op);

	if (!sqe) {
		pr_err("%s: the io_uring submission queue is full; the device stalls", t->name);
		return;
	}
	io_uring_prep_read(sqe, file, buf, sizeof(*buf), 0);
	loop_sqe_fixed(sqe);
}

static void raise_irq(struct virtio_mmio *t, uint32_t isr_bits)
{
	uint64_t one = 1;

	atomic_fetch_or(&t->isr, isr_bits);
	/* Edge semantics: every write is a new interrupt, even when ISR was already set, so a
	 * driver that has already read ISR does not miss this one. */
	if (write(t->irq_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn_once("%s: interrupt eventfd write: %s", t->name, strerror(errno));
}

static void log_guest_error(struct virtio_mmio *t, const char *why, const char *what)
{
	if (!atomic_exchange(&t->warned, true))
		pr_warn("%s: guest error: %s%s (logged once per device)", t->name, why, what);
	else
		pr_debug("%s: guest error: %s%s", t->name, why, what);
}

void virtio_mmio_guest_error(struct virtio_mmio *t, const char *why)
{
	log_guest_error(t, why, "; request failed");
}

/* ---- I/O thread side ---- */

/* Request (seq) is finished: the vCPU waiting for it (or a later register access) goes on. */
static void ctl_complete(struct virtio_mmio *t, uint32_t seq)
{
	pthread_mutex_lock(&t->ctl_lock);
	if ((int32_t)(seq - t->ctl_acked) > 0)
		t->ctl_acked = seq;
	if (t->ctl_seq == seq)
		t->ctl_req = VIRTIO_CTL_NONE;
	pthread_cond_broadcast(&t->ctl_cond);
	pthread_mutex_unlock(&t->ctl_lock);
}

static void ctl_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_mmio *t = container_of(op, struct virtio_mmio, ctl_op);
	enum virtio_mmio_ctl req;
	uint32_t seq;

	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		pr_err("%s: control eventfd read: %s", t->name, strerror(-res));
		return;
	}
	arm_read(t, &t->ctl_op, t->ctl_file, &t->ctl_buf);
	pthread_mutex_lock(&t->ctl_lock);
	req = t->ctl_req;
	seq = t->ctl_seq;
	pthread_mutex_unlock(&t->ctl_lock);
	if (req == VIRTIO_CTL_NONE || seq == t->ctl_handled)
		return; /* a second eventfd read for a request already taken */
	t->ctl_handled = seq;

	switch (req) {
	case VIRTIO_CTL_ACTIVATE:
		t->live = true;
		t->resetting = false;
		for (unsigned int i = 0; i < t->nqueues; i++)
			t->q[i].budget = VIRTIO_MMIO_BUDGET;
		if (t->ops->activate)
			t->ops->activate(t);
		for (unsigned int i = 0; i < t->nqueues; i++)
			if (virtio_mmio_queue_live(t, i))
				t->ops->notify(t, i);
		ctl_complete(t, seq);
		break;
	case VIRTIO_CTL_RESET:
		t->live = false;
		if (t->ops->reset && !t->ops->reset(t)) {
			/* virtio_mmio_reset_done() completes it */
			t->resetting = true;
			t->resetting_seq = seq;
			break;
		}
		ctl_complete(t, seq);
		break;
	case VIRTIO_CTL_FREEZE:
		t->frozen = true;
		if (t->live && t->ops->quiesce && !t->ops->quiesce(t)) {
			/* virtio_mmio_quiesce_done() completes it */
			t->quiescing = true;
			t->quiescing_seq = seq;
			break;
		}
		ctl_complete(t, seq);
		break;
	case VIRTIO_CTL_THAW:
		t->frozen = false;
		t->quiescing = false;
		for (unsigned int i = 0; i < t->nqueues; i++)
			t->q[i].budget = VIRTIO_MMIO_BUDGET;
		/* What the driver made available while the device was frozen. */
		for (unsigned int i = 0; i < t->nqueues; i++)
			if (virtio_mmio_queue_live(t, i))
				t->ops->notify(t, i);
		ctl_complete(t, seq);
		break;
	case VIRTIO_CTL_NONE:
		break;
	}
}

void virtio_mmio_quiesce_done(struct virtio_mmio *t)
{
	if (!t->quiescing)
		return;
	t->quiescing = false;
	ctl_complete(t, t->quiescing_seq);
}

void virtio_mmio_reset_done(struct virtio_mmio *t)
{
	if (!t->resetting)
		return;
	t->resetting = false;
	ctl_complete(t, t->resetting_seq);
}

static void kick_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_mmio_queue *q = container_of(op, struct virtio_mmio_queue, kick_op);
	struct virtio_mmio *t = q->t;

	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		pr_err("%s: queue %u kick eventfd read: %s", t->name, q->index, strerror(-res));
		return;
	}
	arm_read(t, &q->kick_op, q->kick_file, &q->kick_buf);
	if (virtio_mmio_queue_live(t, q->index))
		t->ops->notify(t, q->index);
}

static void notify_now(struct virtio_mmio *t, struct virtio_mmio_queue *q)
{
	if (vq_should_notify(&q->vq))
		raise_irq(t, VIRTIO_ISR_USED);
}

static void notify_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_mmio_queue *q = container_of(op, struct virtio_mmio_queue, notify_op);

	q->notify_pending = false;
	if (virtio_mmio_queue_live(q->t, q->index))
		notify_now(q->t, q);
}

static void resume_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_mmio_queue *q = container_of(op, struct virtio_mmio_queue, resume_op);
	struct virtio_mmio *t = q->t;

	q->resume_pending = false;
	q->budget = VIRTIO_MMIO_BUDGET;
	/* After loop_stop() the devices' drain functions reap the last completions: nothing new
	 * starts then. */
	if (!t->loop->stopping && virtio_mmio_queue_live(t, q->index))
		t->ops->notify(t, q->index);
}

/* The budget of (q) is spent: come back on the next loop iteration. */
static void schedule_resume(struct virtio_mmio *t, struct virtio_mmio_queue *q)
{
	struct io_uring_sqe *sqe;

	q->budget = 0;
	if (q->resume_pending)
		return;
	/* A NOP completes in the next loop iteration, with the completions of every other
	 * device that arrived meanwhile. */
	sqe = loop_sqe(t->loop, &q->resume_op);
	if (!sqe) {
		/* Nothing to come back with: the next kick goes on, with a new budget. */
		pr_warn_once("%s: the io_uring submission queue is full; queue %u waits for a kick",
			     t->name, q->index);
		q->budget = VIRTIO_MMIO_BUDGET;
		return;
	}
	io_uring_prep_nop(sqe);
	loop_sqe_fixed(sqe); /* no file: only for a ring that requires the flag (core/loop.h) */
	q->resume_pending = true;
}

bool virtio_mmio_queue_budget(struct virtio_mmio *t, unsigned int q)
{
	struct virtio_mmio_queue *mq = &t->q[q];

	if (t->frozen)
		return false; /* virtio_mmio_thaw() notifies every queue */
	if (mq->budget) {
		mq->budget--;
		return true;
	}
	schedule_resume(t, mq);
	return false;
}

void virtio_mmio_queue_yield(struct virtio_mmio *t, unsigned int q)
{
	if (!t->frozen)
		schedule_resume(t, &t->q[q]);
}

void virtio_mmio_signal_used(struct virtio_mmio *t, unsigned int q)
{
	struct virtio_mmio_queue *mq = &t->q[q];
	struct io_uring_sqe *sqe;

	if (mq->notify_pending)
		return;
	/* A NOP completes in the next loop iteration, after every completion this iteration
	 * reaped: one interrupt decision per batch. */
	sqe = loop_sqe(t->loop, &mq->notify_op);
	if (!sqe) {
		notify_now(t, mq);
		return;
	}
	io_uring_prep_nop(sqe);
	loop_sqe_fixed(sqe); /* no file: only for a ring that requires the flag (core/loop.h) */
	mq->notify_pending = true;
}

bool virtio_mmio_queue_live(const struct virtio_mmio *t, unsigned int q)
{
	/* vq.size is non-zero only for queues checked at activation (written before the
	 * hand-off, cleared after the reset hand-off), so no register field is read here. */
	return t->live && q < t->nqueues && t->q[q].vq.size;
}

bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned int bit)
{
	return bit < 64 && (t->driver_features & VIRTIO_BIT(bit));
}

void virtio_mmio_set_needs_reset(struct virtio_mmio *t, const char *why)
{
	if (!t->live)
		return;
	t->live = false;
	log_guest_error(t, why, "; device needs a reset");
	atomic_fetch_or(&t->status, VIRTIO_STATUS_NEEDS_RESET);
	/* Section 2.1.2: a device entering NEEDS_RESET sends a config change notification. */
	raise_irq(t, VIRTIO_ISR_CONFIG);
}

void virtio_mmio_config_changed_locked(struct virtio_mmio *t)
{
	t->config_generation++;
	if (atomic_load(&t->status) & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(t, VIRTIO_ISR_CONFIG);
}

/* ---- vCPU side, t->lock held ---- */

/* Hands (req) to the I/O thread. Returns its request number. */
static uint32_t ctl_send(struct virtio_mmio *t, enum virtio_mmio_ctl req)
{
	uint64_t one = 1;
	uint32_t seq;

	pthread_mutex_lock(&t->ctl_lock);
	seq = ++t->ctl_seq;
	t->ctl_req = req;
	pthread_mutex_unlock(&t->ctl_lock);
	/* On failure the wait times out and the device is treated as stuck. */
	if (write(t->ctl_fd, &one, sizeof(one)) < 0)
		pr_err("%s: control eventfd write: %s", t->name, strerror(errno));
	return seq;
}

static bool ctl_finished_locked(const struct virtio_mmio *t, uint32_t seq)
{
	return (int32_t)(t->ctl_acked - seq) >= 0;
}

/* Waits up to ctl_timeout_ms for request (seq) to be finished; returns whether it was. */
static bool ctl_wait(struct virtio_mmio *t, uint32_t seq)
{
	struct timespec deadline;
	bool done;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += t->ctl_timeout_ms / 1000;
	deadline.tv_nsec += (long)(t->ctl_timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&t->ctl_lock);
	while (!(done = ctl_finished_locked(t, seq)))
		if (pthread_cond_timedwait(&t->ctl_cond, &t->ctl_lock, &deadline) == ETIMEDOUT) {
			done = ctl_finished_locked(t, seq);
			break;
		}
	pthread_mutex_unlock(&t->ctl_lock);
	return done;
}

static void needs_reset_locked(struct virtio_mmio *t, const char *why)
{
	log_guest_error(t, why, "; device needs a reset");
	atomic_fetch_or(&t->status, VIRTIO_STATUS_NEEDS_RESET);
	raise_irq(t, VIRTIO_ISR_CONFIG);
}

/* The I/O thread has let go of the queues: back to the state after power-on. */
static void reset_finish_locked(struct virtio_mmio *t)
{
	t->reset_pending = false;
	t->handed_off = false;
	t->dev_features_sel = t->drv_features_sel = t->queue_sel = t->shm_sel = 0;
	t->driver_features = 0;
	for (unsigned int i = 0; i < t->nqueues; i++) {
		struct virtio_mmio_queue *q = &t->q[i];

		q->num = 0;
		q->ready = false;
		q->desc = q->driver = q->device = 0;
		memset(&q->vq, 0, sizeof(q->vq));
	}
	atomic_store(&t->isr, 0);
	atomic_store(&t->status, 0);
}

static void reset_locked(struct virtio_mmio *t)
{
	if (t->handed_off) {
		if (!t->reset_pending) {
			t->reset_seq = ctl_send(t, VIRTIO_CTL_RESET);
			t->reset_pending = true;
		}
		if (!ctl_wait(t, t->reset_seq)) {
			/* In-flight I/O has not finished (a wedged backend): the device stays in
			 * reset until it has. Pretending (Status 0) would let the driver set up
			 * new rings that the old requests then complete into; the old bits
			 * (FEATURES_OK, DRIVER_OK) would tell it the device is still set up. */
			pr_warn("%s: a reset still waits for in-flight I/O after %u ms; the device "
				"reads NEEDS_RESET until it is done", t->name, t->ctl_timeout_ms);
			atomic_store(&t->status, VIRTIO_STATUS_NEEDS_RESET);
			return;
		}
	}
	reset_finish_locked(t);
}

/* A reset that timed out completes at the first register access after the I/O thread
 * finished it. Returns true while it is still pending. */
static bool reset_settle_locked(struct virtio_mmio *t)
{
	bool done;

	if (!t->reset_pending)
		return false;
	pthread_mutex_lock(&t->ctl_lock);
	done = ctl_finished_locked(t, t->reset_seq);
	pthread_mutex_unlock(&t->ctl_lock);
	if (done)
		reset_finish_locked(t);
	return !done;
}

static bool features_acceptable(struct virtio_mmio *t)
{
	if (t->driver_features & ~t->device_features) {
		log_guest_error(t, "driver accepted features the device does not offer",
				"; FEATURES_OK refused");
		return false;
	}
	/* Section 4.2.2: a version 2 device is a modern device only. */
	if (!(t->driver_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		log_guest_error(t, "driver did not accept VIRTIO_F_VERSION_1",
				"; FEATURES_OK refused");
		return false;
	}
	return true;
}

/* Checks every ready queue and hands the activation to the I/O thread. */
static void activate_locked(struct virtio_mmio *t)
{
	for (unsigned int i = 0; i < t->nqueues; i++) {
		struct virtio_mmio_queue *q = &t->q[i];

		memset(&q->vq, 0, sizeof(q->vq));
		if (!q->ready)
			continue;
		if (q->num > t->queue_max ||
		    vq_init(&q->vq, t->mem, q->num, q->desc, q->driver, q->device,
			    t->driver_features)) {
			needs_reset_locked(t, q->num > t->queue_max ? "queue size above QueueNumMax"
								    : q->vq.error);
			memset(&q->vq, 0, sizeof(q->vq));
			return;
		}
	}
	t->handed_off = true;
	if (!ctl_wait(t, ctl_send(t, VIRTIO_CTL_ACTIVATE)))
		pr_err("%s: the I/O thread did not finish an activation in %u ms", t->name,
		       t->ctl_timeout_ms);
}

static void write_status(struct virtio_mmio *t, uint32_t v)
{
	uint32_t old = atomic_load(&t->status);

	if (v == 0) {
		reset_locked(t);
		return;
	}
	/* The driver only ever sets bits (section 2.1.1); NEEDS_RESET is the device's. */
	v &= 0xff & ~VIRTIO_STATUS_NEEDS_RESET;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    !features_acceptable(t))
		v &= ~VIRTIO_STATUS_FEATURES_OK;
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!((old | v) & VIRTIO_STATUS_FEATURES_OK) || (old & VIRTIO_STATUS_NEEDS_RESET)) {
			needs_reset_locked(t, "DRIVER_OK without FEATURES_OK");
			v &= ~VIRTIO_STATUS_DRIVER_OK;
		} else {
			activate_locked(t);
		}
	}
	atomic_fetch_or(&t->status, v);
}

static struct virtio_mmio_queue *sel_queue(struct virtio_mmio *t)
{
	return t->queue_sel < t->nqueues ? &t->q[t->queue_sel] : NULL;
}

/* Queue registers may change only while the queue is not ready (section 4.2.3.2). */
static struct virtio_mmio_queue *sel_queue_writable(struct virtio_mmio *t)
{
	struct virtio_mmio_queue *q = sel_queue(t);

	if (q && q->ready) {
		log_guest_error(t, "queue register written while the queue is ready",
				"; write ignored");
		return NULL;
	}
	return q;
}

static void set_lo(uint64_t *r, uint32_t v)
{
	*r = (*r & 0xffffffff00000000ULL) | v;
}

static void set_hi(uint64_t *r, uint32_t v)
{
	*r = (*r & 0xffffffffULL) | ((uint64_t)v << 32);
}

static uint32_t reg_read(struct virtio_mmio *t, uint64_t off)
{
	struct virtio_mmio_queue *q = sel_queue(t);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION: return 2;
	case VIRTIO_MMIO_DEVICE_ID: return t->device_id;
	case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return t->dev_features_sel < 2 ? (uint32_t)(t->device_features >>
							    (32 * t->dev_features_sel))
					       : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? t->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_NUM: return q ? q->num : 0;
	case VIRTIO_MMIO_QUEUE_READY: return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS: return atomic_load(&t->isr);
	case VIRTIO_MMIO_STATUS: return atomic_load(&t->status);
	case VIRTIO_MMIO_QUEUE_DESC_LOW: return q ? (uint32_t)q->desc : 0;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: return q ? (uint32_t)(q->desc >> 32) : 0;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW: return q ? (uint32_t)q->driver : 0;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: return q ? (uint32_t)(q->driver >> 32) : 0;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW: return q ? (uint32_t)q->device : 0;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: return q ? (uint32_t)(q->device >> 32) : 0;
	/* No shared memory regions: "a length of -1" (section 4.2.2). */
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH: return 0xffffffff;
	/* Changes only where a device calls virtio_mmio_config_changed_locked(). */
	case VIRTIO_MMIO_CONFIG_GENERATION: return t->config_generation;
	default: return 0;
	}
}

static void reg_write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtio_mmio_queue *q;
	uint64_t one = 1;

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: t->dev_features_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (atomic_load(&t->status) & VIRTIO_STATUS_FEATURES_OK)
			break; /* negotiation is over */
		if (t->drv_features_sel == 0)
			set_lo(&t->driver_features, v);
		else if (t->drv_features_sel == 1)
			set_hi(&t->driver_features, v);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: t->drv_features_sel = v; break;
	case VIRTIO_MMIO_QUEUE_SEL: t->queue_sel = v; break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if ((q = sel_queue_writable(t)))
			q->num = v > 0xffff ? 0 : (uint16_t)v; /* checked at DRIVER_OK */
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if ((q = sel_queue(t))) {
			if (!(v & 1) && q->ready && t->handed_off)
				log_guest_error(t, "queue disabled while the device runs",
						"; ignored until reset");
			else
				q->ready = v & 1;
		}
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* Reaches here only without KVM_IOEVENTFD (or for an unknown queue index). */
		if (v < t->nqueues && write(t->q[v].kick_fd, &one, sizeof(one)) < 0)
			pr_warn_once("%s: kick eventfd write: %s", t->name, strerror(errno));
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK: atomic_fetch_and(&t->isr, ~v); break;
	case VIRTIO_MMIO_STATUS: write_status(t, v); break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		if ((q = sel_queue_writable(t)))
			set_lo(&q->desc, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		if ((q = sel_queue_writable(t)))
			set_hi(&q->desc, v);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
		if ((q = sel_queue_writable(t)))
			set_lo(&q->driver, v);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		if ((q = sel_queue_writable(t)))
			set_hi(&q->driver, v);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
		if ((q = sel_queue_writable(t)))
			set_lo(&q->device, v);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		if ((q = sel_queue_writable(t)))
			set_hi(&q->device, v);
		break;
	case VIRTIO_MMIO_SHM_SEL: t->shm_sel = v; break;
	default:
		log_guest_error(t, "write to a read-only or reserved register", "; ignored");
		break;
	}
}

static uint64_t mmio_read(void *dev, uint64_t off, unsigned int size)
{
	struct virtio_mmio *t = dev;
	uint64_t v = 0;

	pthread_mutex_lock(&t->lock);
	reset_settle_locked(t);
	if (off >= VIRTIO_MMIO_CONFIG) {
		/* Config space: any width (section 4.2.2.2), little-endian bytes. */
		uint64_t c = off - VIRTIO_MMIO_CONFIG;

		if (c < t->config_len && size <= t->config_len - c)
			memcpy(&v, (const uint8_t *)t->config + c, size);
	} else if (size == 4 && !(off & 3)) {
		v = reg_read(t, off);
	} else {
		log_guest_error(t, "register read that is not 32 bits wide", "; reads as 0");
	}
	pthread_mutex_unlock(&t->lock);
	return v;
}

static void mmio_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	struct virtio_mmio *t = dev;

	pthread_mutex_lock(&t->lock);
	if (reset_settle_locked(t) && !(size == 4 && (off == VIRTIO_MMIO_INTERRUPT_ACK ||
						    (off == VIRTIO_MMIO_STATUS && val == 0)))) {
		/* Until the reset is done only another reset (which waits again) and the
		 * interrupt acknowledgement mean anything. */
		log_guest_error(t, "register write while a reset is still in progress",
				"; ignored");
	} else if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t c = off - VIRTIO_MMIO_CONFIG;

		if (t->ops->config_write && c < t->config_len && size <= t->config_len - c)
			t->ops->config_write(t, (uint32_t)c, &val, size);
	} else if (size == 4 && !(off & 3)) {
		reg_write(t, off, (uint32_t)val);
	} else {
		log_guest_error(t, "register write that is not 32 bits wide", "; ignored");
	}
	pthread_mutex_unlock(&t->lock);
}

const struct bus_ops virtio_mmio_bus_ops = {.read = mmio_read, .write = mmio_write};

int virtio_mmio_init(struct virtio_mmio *t, const char *name, const struct virtio_mmio_dev_ops *ops,
		     uint32_t device_id, uint64_t features, unsigned int nqueues,
		     uint16_t queue_max, const void *config, uint32_t config_len,
		     const struct guest_mem *mem, struct loop *loop)
{
	pthread_condattr_t ca;
	unsigned int i;
	int ret;

	memset(t, 0, sizeof(*t));
	t->irq_fd = t->ctl_fd = t->ctl_file = -1;
	for (i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		t->q[i].kick_fd = t->q[i].kick_file = -1;
	if (nqueues == 0 || nqueues > VIRTIO_MMIO_MAX_QUEUES || queue_max == 0 ||
	    (queue_max & (queue_max - 1)) || !ops || !ops->notify)
		return -EINVAL;
	t->name = name;
	t->ops = ops;
	t->mem = mem;
	t->loop = loop;
	t->device_id = device_id;
	t->device_features = features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	t->config = config;
	t->config_len = config_len;
	t->nqueues = nqueues;
	t->queue_max = queue_max;
	t->ctl_timeout_ms = CTL_TIMEOUT_S * 1000;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->ctl_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->ctl_cond, &ca);
	pthread_condattr_destroy(&ca);

	t->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->ctl_fd = eventfd(0, EFD_CLOEXEC);
	if (t->irq_fd < 0 || t->ctl_fd < 0)
		goto fail_errno;
	for (i = 0; i < nqueues; i++) {
		struct virtio_mmio_queue *q = &t->q[i];

		q->t = t;
		q->index = i;
		q->kick_op.done = kick_done;
		q->notify_op.done = notify_done;
		q->resume_op.done = resume_done;
		q->budget = VIRTIO_MMIO_BUDGET;
		q->kick_fd = eventfd(0, EFD_CLOEXEC);
		if (q->kick_fd < 0)
			goto fail_errno;
		ret = q->kick_file = loop_file_add(loop, q->kick_fd);
		if (ret < 0)
			goto fail_file;
	}
	ret = t->ctl_file = loop_file_add(loop, t->ctl_fd);
	if (ret < 0)
		goto fail_file;
	t->ctl_op.done = ctl_done;
	arm_read(t, &t->ctl_op, t->ctl_file, &t->ctl_buf);
	for (i = 0; i < nqueues; i++)
		arm_read(t, &t->q[i].kick_op, t->q[i].kick_file, &t->q[i].kick_buf);
	return 0;
fail_errno:
	ret = -errno;
	pr_err("%s: eventfd: %s", name, strerror(errno));
	virtio_mmio_fini(t);
	return ret;
fail_file:
	pr_err("%s: registering an eventfd with the io_uring: %s", name, strerror(-ret));
	virtio_mmio_fini(t);
	return ret;
}

void virtio_mmio_fini(struct virtio_mmio *t)
{
	/* Before the ring is enabled the slots are emptied; after it the ring keeps its own
	 * reference to each eventfd until loop_fini(). */
	for (unsigned int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		loop_file_remove(t->loop, t->q[i].kick_file);
		if (t->q[i].kick_fd >= 0)
			close(t->q[i].kick_fd);
		t->q[i].kick_fd = t->q[i].kick_file = -1;
	}
	loop_file_remove(t->loop, t->ctl_file);
	t->ctl_file = -1;
	if (t->irq_fd >= 0)
		close(t->irq_fd);
	if (t->ctl_fd >= 0)
		close(t->ctl_fd);
	t->irq_fd = t->ctl_fd = -1;
	if (t->ops) {
		pthread_cond_destroy(&t->ctl_cond);
		pthread_mutex_destroy(&t->ctl_lock);
		pthread_mutex_destroy(&t->lock);
		t->ops = NULL;
	}
}

int virtio_mmio_kick_fd(const struct virtio_mmio *t, unsigned int q)
{
	return q < t->nqueues ? t->q[q].kick_fd : -1;
}

int virtio_mmio_irq_fd(const struct virtio_mmio *t)
{
	return t->irq_fd;
}

/* ---- snapshots ---- */

int virtio_mmio_freeze(struct virtio_mmio *t)
{
	uint32_t seq;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	if (t->reset_pending && reset_settle_locked(t)) {
		pr_err("%s: a reset is still waiting for in-flight I/O", t->name);
		ret = -EBUSY;
	} else {
		seq = ctl_send(t, VIRTIO_CTL_FREEZE);
		if (!ctl_wait(t, seq)) {
			pr_err("%s: in-flight requests did not complete in %u ms", t->name,
			       t->ctl_timeout_ms);
			ret = -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (ret == -ETIMEDOUT)
		virtio_mmio_thaw(t);
	return ret;
}

void virtio_mmio_thaw(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	if (!ctl_wait(t, ctl_send(t, VIRTIO_CTL_THAW)))
		pr_err("%s: the I/O thread did not take the device back in %u ms", t->name,
		       t->ctl_timeout_ms);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&t->lock);
	s->device_id = t->device_id;
	s->status = atomic_load(&t->status);
	s->isr = atomic_load(&t->isr);
	s->nqueues = t->nqueues;
	s->device_features = t->device_features;
	s->driver_features = t->driver_features;
	s->dev_features_sel = t->dev_features_sel;
	s->drv_features_sel = t->drv_features_sel;
	s->queue_sel = t->queue_sel;
	s->shm_sel = t->shm_sel;
	s->handed_off = t->handed_off;
	s->config_len = MIN(t->config_len, (uint32_t)sizeof(s->config));
	if (s->config_len) /* a device without config space (rng) has no buffer */
		memcpy(s->config, t->config, s->config_len);
	for (unsigned int i = 0; i < t->nqueues; i++) {
		const struct virtio_mmio_queue *q = &t->q[i];
		struct virtio_mmio_queue_state *qs = &s->q[i];

		qs->desc = q->desc;
		qs->driver = q->driver;
		qs->device = q->device;
		qs->num = q->num;
		qs->ready = q->ready;
		/* Frozen: the I/O thread does not touch the vq until the thaw. */
		qs->last_avail = q->vq.last_avail;
		qs->used_idx = q->vq.used_idx;
		qs->signalled_used = q->vq.signalled_used;
		qs->signalled_used_valid = q->vq.signalled_used_valid;
	}
	pthread_mutex_unlock(&t->lock);
}

static int load_fail(char *err, size_t errlen, const struct virtio_mmio *t, const char *why)
{
	snprintf(err, errlen, "%s: %s", t->name, why);
	return -EINVAL;
}

/* Sets up queue (q) of a restored, activated device from (qs). */
static int load_queue(struct virtio_mmio *t, struct virtio_mmio_queue *q,
		      const struct virtio_mmio_queue_state *qs, char *err, size_t errlen)
{
	uint16_t used;

	if (q->num > t->queue_max ||
	    vq_init(&q->vq, t->mem, q->num, q->desc, q->driver, q->device, t->driver_features))
		return load_fail(err, errlen, t, "a queue of the snapshot is not in guest RAM");
	/* Everything completed was published before the snapshot (virtio_mmio_freeze()). */
	memcpy(&used, &q->vq.used->idx, sizeof(used));
	if (le16toh(used) != qs->used_idx)
		return load_fail(err, errlen, t,
				 "a queue's used index differs from the one in guest memory");
	q->vq.last_avail = qs->last_avail;
	q->vq.used_idx = qs->used_idx;
	q->vq.signalled_used = qs->signalled_used;
	q->vq.signalled_used_valid = qs->signalled_used_valid;
	return 0;
}

int virtio_mmio_load(struct virtio_mmio *t, const struct virtio_mmio_state *s, char *err,
		     size_t errlen)
{
	bool activate = s->handed_off && (s->status & VIRTIO_STATUS_DRIVER_OK) &&
			!(s->status & VIRTIO_STATUS_NEEDS_RESET);
	int ret = 0;

	if (s->device_id != t->device_id || s->nqueues != t->nqueues ||
	    s->device_features != t->device_features)
		return load_fail(err, errlen, t, "the snapshot has another kind of device here");
	if (s->config_len != MIN(t->config_len, (uint32_t)sizeof(s->config)) ||
	    (s->config_len && memcmp(s->config, t->config, s->config_len)))
		return load_fail(err, errlen, t, "the device's configuration differs from the "
				 "snapshot's (a disk of another size?)");
	if ((s->driver_features & ~s->device_features) || s->status > 0xff || s->handed_off > 1 ||
	    (s->handed_off && !(s->status & VIRTIO_STATUS_DRIVER_OK)))
		return load_fail(err, errlen, t, "inconsistent transport state");
	pthread_mutex_lock(&t->lock);
	t->dev_features_sel = s->dev_features_sel;
	t->drv_features_sel = s->drv_features_sel;
	t->queue_sel = s->queue_sel;
	t->shm_sel = s->shm_sel;
	t->driver_features = s->driver_features;
	for (unsigned int i = 0; i < t->nqueues; i++) {
		struct virtio_mmio_queue *q = &t->q[i];
		const struct virtio_mmio_queue_state *qs = &s->q[i];

		q->desc = qs->desc;
		q->driver = qs->driver;
		q->device = qs->device;
		q->num = qs->num;
		q->ready = qs->ready & 1;
		memset(&q->vq, 0, sizeof(q->vq));
		if (activate && q->ready && (ret = load_queue(t, q, qs, err, errlen)))
			break;
	}
	if (!ret) {
		atomic_store(&t->isr, s->isr & (VIRTIO_ISR_USED | VIRTIO_ISR_CONFIG));
		atomic_store(&t->status, s->status);
		t->handed_off = s->handed_off;
		/* The I/O thread activates it when it starts, from the saved indices. */
		if (activate)
			ctl_send(t, VIRTIO_CTL_ACTIVATE);
	} else {
		for (unsigned int i = 0; i < t->nqueues; i++)
			memset(&t->q[i].vq, 0, sizeof(t->q[i].vq));
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}
