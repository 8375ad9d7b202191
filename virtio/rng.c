/* rng.c: virtio-rng (virtio 1.2 section 5.4). getrandom() never blocks once the host's pool is
 * initialised (it is long before a VM starts), so requests are served synchronously on the I/O
 * thread, straight into guest RAM, with a per-request byte bound and a per-iteration budget
 * (chains and bytes), so a driver that refills the ring for ever does not hold the thread. */
#define pr_fmt(fmt) "virtio-rng: " fmt
#include "virtio/rng.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "util/log.h"
#include "util/util.h"

static struct virtio_rng *to_rng(struct virtio_mmio *t)
{
	return container_of(t, struct virtio_rng, mmio);
}

/* Fills up to VIRTIO_RNG_MAX_BYTES of the writable part of (c). Returns the bytes written. */
static uint32_t fill(struct vq_chain *c)
{
	const struct iovec *in = c->iov + c->nr_out;
	uint32_t left = c->in_len < VIRTIO_RNG_MAX_BYTES ? c->in_len : VIRTIO_RNG_MAX_BYTES;
	uint32_t done = 0;

	for (unsigned int i = 0; i < c->nr_in && left; i++) {
		size_t want = in[i].iov_len < left ? in[i].iov_len : left;
		size_t got = 0;

		while (got < want) {
			/* Without GRND_NONBLOCK a read from an initialised pool never fails short
			 * of a signal; a failure returns what was filled so far. */
			ssize_t n = getrandom((uint8_t *)in[i].iov_base + got, want - got, 0);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				pr_warn_once("getrandom: %s", strerror(errno));
				return done + (uint32_t)got;
			}
			got += (size_t)n;
		}
		done += (uint32_t)want;
		left -= (uint32_t)want;
	}
	return done;
}

/* The bytes (c) asks for, as fill() will hand them out. */
static uint32_t want(const struct vq_chain *c)
{
	return c->in_len < VIRTIO_RNG_MAX_BYTES ? c->in_len : VIRTIO_RNG_MAX_BYTES;
}

static void rng_notify(struct virtio_mmio *t, unsigned int q)
{
	struct virtio_rng *r = to_rng(t);
	struct vq *vq = &t->q[0].vq;
	bool pushed = false;
	uint64_t bytes = 0;

	while (virtio_mmio_queue_live(t, 0)) {
		uint32_t n;

		if (!r->held) {
			int ret;

			if (!virtio_mmio_queue_budget(t, 0))
				break;
			ret = vq_pop(vq, &r->chain);
			if (ret == 0)
				break;
			if (ret < 0) {
				virtio_mmio_set_needs_reset(t, vq->error);
				break;
			}
			/* Section 5.4.6.1: the driver must not post device-readable buffers. */
			if (r->chain.nr_out) {
				virtio_mmio_set_needs_reset(t,
							    "virtio-rng request with a readable buffer");
				break;
			}
		}
		/* A refused chain stays popped and goes first when tokens return. */
		r->held = !rate_limiter_consume(&r->rl, want(&r->chain));
		if (r->held)
			break;
		n = fill(&r->chain);
		r->bytes += n;
		vq_push(vq, r->chain.head, n);
		pushed = true;
		/* Large requests: bytes bound one iteration's work too. */
		bytes += n;
		if (bytes >= VIRTIO_RNG_BUDGET_BYTES) {
			virtio_mmio_queue_yield(t, 0);
			break;
		}
	}
	if (pushed)
		virtio_mmio_signal_used(t, 0);
}

/* Tokens may be back. I/O thread. */
static void rng_resume(struct rate_limiter *rl)
{
	struct virtio_rng *r = container_of(rl, struct virtio_rng, rl);

	rng_notify(&r->mmio, 0);
}

static bool rng_reset(struct virtio_mmio *t)
{
	struct virtio_rng *r = to_rng(t);

	/* A held chain goes with the queue; nothing else is ever in flight. */
	r->held = false;
	rate_limiter_reset(&r->rl);
	return true;
}

/* A freeze: the chain the limiter holds was the last popped and goes back to the ring. */
static bool rng_quiesce(struct virtio_mmio *t)
{
	struct virtio_rng *r = to_rng(t);

	if (r->held) {
		vq_unpop(&t->q[0].vq, 1);
		r->held = false;
	}
	return true;
}

static const struct virtio_mmio_dev_ops rng_ops = {
	.reset = rng_reset,
	.quiesce = rng_quiesce,
	.notify = rng_notify,
};

int virtio_rng_init(struct virtio_rng *r, const char *name, const struct guest_mem *mem,
		    struct loop *loop)
{
	int ret;

	memset(r, 0, sizeof(*r));
	ret = rate_limiter_init(&r->rl, &(struct rl_config){0}, loop, rng_resume);
	if (ret)
		return ret;
	ret = virtio_mmio_init(&r->mmio, name, &rng_ops, VIRTIO_ID_RNG,
			       VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX),
			       1, VIRTIO_RNG_QUEUE_SIZE, NULL, 0, mem, loop);
	if (ret)
		rate_limiter_fini(&r->rl);
	return ret;
}

void virtio_rng_drain(struct virtio_rng *r)
{
	rate_limiter_drain(&r->rl);
}

void virtio_rng_fini(struct virtio_rng *r)
{
	virtio_mmio_fini(&r->mmio);
	rate_limiter_fini(&r->rl);
}
