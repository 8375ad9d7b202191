/* rng.h: virtio-rng, the entropy device (virtio 1.2 section 5.4): every writable buffer the
 * driver posts on its one queue is filled from getrandom(), up to VIRTIO_RNG_MAX_BYTES per
 * chain. No config space, no feature bits. */
#ifndef MVM_VIRTIO_RNG_H
#define MVM_VIRTIO_RNG_H

#include <stdint.h>

#include "core/guest_mem.h"
#include "core/loop.h"
#include "core/rate_limiter.h"
#include "virtio/mmio.h"
#include "virtio/vq.h"

#define VIRTIO_RNG_QUEUE_SIZE 64
/* Most bytes one request gets: a guest cannot make one kick cost unbounded host work. A Linux
 * guest asks for at most a page or so at a time. */
#define VIRTIO_RNG_MAX_BYTES (64u << 10)
/* Most bytes served per I/O loop iteration (besides VIRTIO_MMIO_BUDGET chains): past that
 * the device lets the other devices run and goes on in the next iteration. */
#define VIRTIO_RNG_BUDGET_BYTES (256u << 10)

struct virtio_rng {
	struct virtio_mmio mmio;	/* first: the bus device */
	struct vq_chain chain;		/* scratch, I/O thread */
	bool held;			/* (chain) was refused by the limiter and goes first */
	uint64_t bytes;			/* entropy handed out, I/O thread */
	/* Firecracker's entropy rate_limiter: a request costs the bytes it gets and one
	 * operation. Off until rate_limiter_update(&r->rl, ...), from any thread. */
	struct rate_limiter rl;
};

/* Sets up (r) on (loop): before loop_start() or on the I/O thread. (mem) and (loop) are
 * borrowed. Returns 0 or -errno. */
int virtio_rng_init(struct virtio_rng *r, const char *name, const struct guest_mem *mem,
		    struct loop *loop);
/* After the loop has stopped: cancels the limiter's timeout. Nothing else is ever in flight:
 * requests complete synchronously. */
void virtio_rng_drain(struct virtio_rng *r);
/* After virtio_rng_drain() (or before the loop started). */
void virtio_rng_fini(struct virtio_rng *r);

#endif
