/* rate_limiter.c: token buckets driven by the loop: the clock, a one-shot IORING_OP_TIMEOUT
 * while a queue is throttled, live updates from other threads (rate_limiter.h). */
#define pr_fmt(fmt) "rate-limiter: " fmt
#include "core/rate_limiter.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/util.h"

#define NS_PER_SEC 1000000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	/* The clock io_uring timeouts count on (IORING_TIMEOUT_BOOTTIME/REALTIME not set). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void timer_done(struct loop_op *op, int res, unsigned int flags)
{
	struct rate_limiter *r = container_of(op, struct rate_limiter, timer_op);

	r->armed = false;
	/* -ETIME: it expired; -ECANCELED: rate_limiter_drain() cancelled it. */
	if (res != -ETIME && res != -ECANCELED && res != 0)
		pr_warn_once("timeout: %s", strerror(-res));
	if (r->stopped)
		return;
	r->resume(r);
}

static void cancel_done(struct loop_op *op, int res, unsigned int flags)
{
	struct rate_limiter *r = container_of(op, struct rate_limiter, cancel_op);

	r->cancelling = false;
}

int rate_limiter_init(struct rate_limiter *r, const struct rl_config *c, struct loop *loop,
		      rate_limiter_resume_fn resume)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->loop = loop;
	r->resume = resume;
	r->timer_op.done = timer_done;
	r->cancel_op.done = cancel_done;
	r->cfg = *c;
	r->on = rl_config_on(c);
	rl_init(&r->rl, c, now_ns());
	ret = pthread_mutex_init(&r->lock, NULL);
	return -ret;
}

void rate_limiter_fini(struct rate_limiter *r)
{
	pthread_mutex_destroy(&r->lock);
}

/* A timeout of (ns), capped at RATE_LIMITER_MAX_WAIT_MS. Without an SQE the queue would wait
 * for its next kick: said once. */
static void arm(struct rate_limiter *r, uint64_t ns)
{
	struct io_uring_sqe *sqe;

	if (ns > RATE_LIMITER_MAX_WAIT_MS * 1000000ull)
		ns = RATE_LIMITER_MAX_WAIT_MS * 1000000ull;
	sqe = loop_sqe(r->loop, &r->timer_op);
	if (!sqe) {
		pr_warn_once("io_uring submission queue full; a throttled queue waits for its "
			     "next notification");
		return;
	}
	r->ts.tv_sec = (long long)(ns / NS_PER_SEC);
	r->ts.tv_nsec = (long long)(ns % NS_PER_SEC);
	io_uring_prep_timeout(sqe, &r->ts, 0, 0);
	loop_sqe_fixed(sqe); /* no file: only for a ring that requires the flag (core/loop.h) */
	r->armed = true;
}

static void apply_update(struct rate_limiter *r)
{
	struct rl_config c;

	pthread_mutex_lock(&r->lock);
	c = r->cfg;
	atomic_store_explicit(&r->update, false, memory_order_relaxed);
	pthread_mutex_unlock(&r->lock);
	rl_init(&r->rl, &c, now_ns());
	r->on = rl_config_on(&c);
}

bool rate_limiter_consume(struct rate_limiter *r, uint64_t bytes)
{
	uint64_t wait;

	if (atomic_load_explicit(&r->update, memory_order_acquire))
		apply_update(r);
	if (!r->on) {
		r->waiting = false;
		return true;
	}
	/* While the timeout runs the queue waits for it (Firecracker's timer_active). */
	if (r->armed)
		return false;
	wait = rl_consume(&r->rl, bytes, 1, now_ns());
	if (!wait) {
		r->waiting = false;
		return true;
	}
	if (!r->waiting) {
		r->waiting = true;
		atomic_store_explicit(&r->throttled,
				      atomic_load_explicit(&r->throttled, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	}
	arm(r, wait);
	return false;
}

void rate_limiter_reset(struct rate_limiter *r)
{
	r->waiting = false;
}

void rate_limiter_update(struct rate_limiter *r, const struct rl_config *c)
{
	pthread_mutex_lock(&r->lock);
	r->cfg = *c;
	/* Release: the I/O thread that sees the flag takes the lock and reads cfg anyway; the
	 * order only keeps the flag from overtaking the copy for a reader without the lock. */
	atomic_store_explicit(&r->update, true, memory_order_release);
	pthread_mutex_unlock(&r->lock);
}

void rate_limiter_get(struct rate_limiter *r, struct rl_config *c)
{
	pthread_mutex_lock(&r->lock);
	*c = r->cfg;
	pthread_mutex_unlock(&r->lock);
}

static bool idle(void *arg)
{
	const struct rate_limiter *r = arg;

	return !r->armed && !r->cancelling;
}

void rate_limiter_drain(struct rate_limiter *r)
{
	struct io_uring_sqe *sqe;

	r->stopped = true;
	if (!r->armed)
		return;
	sqe = loop_sqe(r->loop, &r->cancel_op);
	if (sqe) {
		io_uring_prep_cancel(sqe, &r->timer_op, 0);
		loop_sqe_fixed(sqe);
		r->cancelling = true;
	}
	/* Without the cancel the timeout still ends within RATE_LIMITER_MAX_WAIT_MS. */
	if (loop_drain(r->loop, idle, r, 2 * RATE_LIMITER_MAX_WAIT_MS + 1000))
		pr_warn("a rate limiter's timeout is still in flight at exit");
}
