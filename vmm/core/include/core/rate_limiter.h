/* rate_limiter.h: a device queue's rate limiter on the I/O thread's loop: the token buckets of
 * core/token_bucket.h, the clock, and a one-shot io_uring timeout that brings a throttled
 * queue back when tokens return (no busy waiting: nothing runs for the queue meanwhile).
 *
 * A device asks before it serves each request, in the driver's order; when the answer is no it
 * keeps that request (popped, not started), serves nothing more from the queue, and goes on
 * with it first when resume() is called. So a throttled queue is never reordered. */
#ifndef MVM_CORE_RATE_LIMITER_H
#define MVM_CORE_RATE_LIMITER_H

#include <linux/time_types.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "core/token_bucket.h"

/* Longest single wait: a throttled queue looks again at least this often, so a limiter changed
 * while a queue waits (rate_limiter_update()) takes effect within it. Firecracker's refill timer
 * is 100 ms too. */
#define RATE_LIMITER_MAX_WAIT_MS 100

struct rate_limiter;
/* Tokens may be back: the owner serves its held request, then the rest of its queue. Called on
 * the I/O thread from the loop, never from inside rate_limiter_consume(). */
typedef void (*rate_limiter_resume_fn)(struct rate_limiter *r);

struct rate_limiter {
	/* I/O thread. */
	struct rate_limit rl;
	bool on;			/* some bucket is set */
	bool waiting;			/* a request was refused and has not gone since */
	bool armed;			/* the timeout is in flight */
	bool cancelling;		/* its cancellation is in flight */
	bool stopped;			/* draining: no more resume() calls */
	struct loop *loop;		/* borrowed */
	rate_limiter_resume_fn resume;
	struct loop_op timer_op;
	struct loop_op cancel_op;
	struct __kernel_timespec ts;	/* read by the kernel when the timeout is submitted */
	/* Times a request had to wait (a throttled queue counts once until it moves again).
	 * Written by the I/O thread, read by any. */
	_Atomic uint64_t throttled;
	/* The configuration, under (lock); (update) says the I/O thread has not applied it yet. */
	pthread_mutex_t lock;
	struct rl_config cfg;
	_Atomic bool update;
};

/* Sets (r) up with (c) (checked with tb_config_check(); all zero: no limit) on (loop), calling
 * (resume) when a throttled queue may go on. Returns 0 or -errno. */
int rate_limiter_init(struct rate_limiter *r, const struct rl_config *c, struct loop *loop,
		      rate_limiter_resume_fn resume);
void rate_limiter_fini(struct rate_limiter *r);

/* May a request of (bytes) bytes (one operation) go now? true: its tokens are taken. false:
 * the caller keeps the request and waits for resume(). Always true without a limit. I/O
 * thread only. */
bool rate_limiter_consume(struct rate_limiter *r, uint64_t bytes);

/* The owner's queue was reset: its held request is gone, so the next refusal counts as a new
 * throttle event. The buckets keep their state (a reset earns no tokens). I/O thread. */
void rate_limiter_reset(struct rate_limiter *r);

/* Replaces the configuration with (c) (checked), buckets full, as Firecracker's PATCH does.
 * Any thread; the I/O thread applies it at the queue's next request or wake-up (within
 * RATE_LIMITER_MAX_WAIT_MS for a waiting queue). */
void rate_limiter_update(struct rate_limiter *r, const struct rl_config *c);
/* The current configuration. Any thread. */
void rate_limiter_get(struct rate_limiter *r, struct rl_config *c);

/* After the loop has stopped: cancels the timeout and reaps it, so nothing refers to (r) any
 * more. Runs completions on the calling thread (loop_drain()). */
void rate_limiter_drain(struct rate_limiter *r);

#endif
