/* test_rate_limiter.c: core/rate_limiter.h on a real io_uring loop that requires fixed files, as
 * the device tests' rings do: a queue of requests served through a small bucket in order, the
 * refused one held and served first on resume(), each throttle counted once, no resume()
 * without a refusal, a live update (lifting the limit) taking effect at the next wake-up, and a
 * drain that cancels a pending timeout. Counts, not timing: the only clock assertion is that
 * the bucket's rate was not exceeded. */
#include "core/rate_limiter.h"

#include <time.h>

#include "test.h"
#include "util/util.h"

#define REQS 40

struct queue {
	struct rate_limiter rl;
	struct loop *loop;
	unsigned int next;		/* next request to serve, in order */
	unsigned int served[REQS];	/* the order they went */
	unsigned int nserved;
	unsigned int resumes;
	uint64_t bytes;			/* each request's size */
};

static void serve(struct queue *q)
{
	while (q->next < REQS) {
		if (!rate_limiter_consume(&q->rl, q->bytes))
			return; /* request q->next is held */
		q->served[q->nserved++] = q->next++;
	}
	loop_stop(q->loop);
}

static void resume(struct rate_limiter *r)
{
	struct queue *q = container_of(r, struct queue, rl);

	q->resumes++;
	serve(q);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void run(const struct rl_config *c, uint64_t bytes, unsigned int *throttled,
		unsigned int *resumes, uint64_t *ms)
{
	struct loop l;
	struct queue q = {.loop = &l, .bytes = bytes};
	uint64_t t0;

	CHECK_EQ(loop_init(&l, 64), 0);
	loop_require_fixed_files(&l);
	CHECK_EQ(rate_limiter_init(&q.rl, c, &l, resume), 0);
	t0 = now_ms();
	serve(&q);
	if (q.next < REQS)
		loop_run(&l);
	*ms = now_ms() - t0;
	CHECK_EQ(q.nserved, REQS);
	for (unsigned int i = 0; i < q.nserved; i++)
		CHECK_EQ(q.served[i], i);
	*throttled = (unsigned int)atomic_load(&q.rl.throttled);
	*resumes = q.resumes;
	rate_limiter_drain(&q.rl);
	rate_limiter_fini(&q.rl);
	loop_fini(&l);
}

/* 40 requests of 1000 bytes through a 10000-byte bucket refilled in 20 ms: 10 go at once, the
 * other 30 at 500 per ms, so about 60 ms, each wait of the queue one throttle event. */
static void test_bandwidth(void)
{
	struct rl_config c = {.bw = {.size = 10000, .refill_ms = 20}};
	unsigned int throttled, resumes;
	uint64_t ms;

	run(&c, 1000, &throttled, &resumes, &ms);
	CHECK(throttled >= 1);
	CHECK(resumes >= 1);
	CHECK_EQ(throttled, resumes); /* each wait ends in one resume(), which serves one at least */
	CHECK(ms >= 55); /* never faster than the bucket allows */
}

static void test_ops(void)
{
	struct rl_config c = {.ops = {.size = 4, .one_time_burst = 6, .refill_ms = 5}};
	unsigned int throttled, resumes;
	uint64_t ms;

	/* 10 go on the bucket and the burst, 30 more at 4 per 5 ms: >= 37 ms. */
	run(&c, 1 << 30, &throttled, &resumes, &ms);
	CHECK(throttled >= 1);
	CHECK(ms >= 35);
}

static void test_unlimited(void)
{
	struct rl_config c = {0};
	unsigned int throttled, resumes;
	uint64_t ms;

	run(&c, 1ull << 40, &throttled, &resumes, &ms);
	CHECK_EQ(throttled, 0);
	CHECK_EQ(resumes, 0);
}

/* A queue stuck behind a bucket that would take an hour gets going once the limit is lifted:
 * the wait is at most RATE_LIMITER_MAX_WAIT_MS, then resume() sees the update. */
static void *lift(void *arg)
{
	struct rate_limiter *r = arg;
	struct rl_config off = {0};
	struct timespec ts = {.tv_nsec = 20 * 1000000};

	nanosleep(&ts, NULL);
	rate_limiter_update(r, &off);
	return NULL;
}

static void test_update(void)
{
	struct rl_config slow = {.bw = {.size = 1000, .refill_ms = 3600 * 1000}}, got;
	struct loop l;
	struct queue q = {.loop = &l, .bytes = 600};
	pthread_t t;

	CHECK_EQ(loop_init(&l, 64), 0);
	loop_require_fixed_files(&l);
	CHECK_EQ(rate_limiter_init(&q.rl, &slow, &l, resume), 0);
	serve(&q);
	CHECK_EQ(q.nserved, 1);
	CHECK(pthread_create(&t, NULL, lift, &q.rl) == 0);
	loop_run(&l);
	pthread_join(t, NULL);
	CHECK_EQ(q.nserved, REQS);
	CHECK_EQ(atomic_load(&q.rl.throttled), 1);
	rate_limiter_get(&q.rl, &got);
	CHECK_EQ(got.bw.size, 0);
	rate_limiter_drain(&q.rl);
	rate_limiter_fini(&q.rl);
	loop_fini(&l);
}

/* A queue left waiting at exit: the drain cancels the timeout and no resume() follows. */
static void test_drain(void)
{
	struct rl_config slow = {.ops = {.size = 1, .refill_ms = 3600 * 1000}};
	struct loop l;
	struct queue q = {.loop = &l, .bytes = 1};

	CHECK_EQ(loop_init(&l, 64), 0);
	loop_require_fixed_files(&l);
	CHECK_EQ(rate_limiter_init(&q.rl, &slow, &l, resume), 0);
	serve(&q);
	CHECK_EQ(q.nserved, 1);
	CHECK(q.rl.armed);
	CHECK_EQ(loop_submit(&l), 0);
	rate_limiter_drain(&q.rl);
	CHECK(!q.rl.armed);
	CHECK(!q.rl.cancelling);
	CHECK_EQ(q.resumes, 0);
	rate_limiter_fini(&q.rl);
	loop_fini(&l);
}

int main(void)
{
	test_bandwidth();
	test_ops();
	test_unlimited();
	test_update();
	test_drain();
	return t_done();
}
