/* test_stop.c: pausing (core/stop.h) with threads shaped like vCPU threads: a loop that checks
 * for a stop, parks when a pause is wanted and otherwise "runs guest code" (counts). A pause
 * returns only once every runner is parked and nothing runs until the resume; a stop releases
 * parked runners; a pause after a stop fails. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "core/stop.h"
#include "test.h"

#define RUNNERS 3

struct runner {
	struct stop_ctl *stop;
	_Atomic unsigned long steps;
	_Atomic bool kicked;
	pthread_t thread;
};

static struct runner runners[RUNNERS];

/* The kick a pause and a stop send: here a flag the runner clears, as KVM's immediate_exit. */
static void kick_all(void *ctx)
{
	for (int i = 0; i < RUNNERS; i++)
		atomic_store(&runners[i].kicked, true);
}

static void *run(void *arg)
{
	struct runner *r = arg;

	while (stop_reason(r->stop) == STOP_NONE) {
		if (stop_pause_wanted(r->stop)) {
			stop_park(r->stop);
			continue;
		}
		atomic_store(&r->kicked, false);
		atomic_fetch_add(&r->steps, 1);
	}
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static unsigned long total_steps(void)
{
	unsigned long n = 0;

	for (int i = 0; i < RUNNERS; i++)
		n += atomic_load(&runners[i].steps);
	return n;
}

/* Polls until every runner made progress, for at most 5 s. */
static bool all_advance(const unsigned long before[RUNNERS])
{
	for (int t = 0; t < 5000; t++) {
		bool all = true;

		for (int i = 0; i < RUNNERS; i++)
			all &= atomic_load(&runners[i].steps) > before[i];
		if (all)
			return true;
		sleep_ms(1);
	}
	return false;
}

int main(void)
{
	static struct stop_ctl stop = {.kick = kick_all};
	unsigned long before[RUNNERS], frozen;

	for (int i = 0; i < RUNNERS; i++) {
		runners[i].stop = &stop;
		pthread_create(&runners[i].thread, NULL, run, &runners[i]);
		before[i] = 0;
	}
	CHECK(all_advance(before));

	/* Paused: every runner parked, and none takes a step while it lasts. */
	CHECK_EQ(stop_pause(&stop, RUNNERS), 0);
	CHECK_EQ(stop.parked, RUNNERS);
	frozen = total_steps();
	sleep_ms(50);
	CHECK_EQ(total_steps(), frozen);

	/* Resumed: each runs again. */
	for (int i = 0; i < RUNNERS; i++)
		before[i] = atomic_load(&runners[i].steps);
	stop_resume(&stop);
	CHECK(all_advance(before));

	/* A stop while paused lets the parked runners leave; a pause after it fails. */
	CHECK_EQ(stop_pause(&stop, RUNNERS), 0);
	stop_request(&stop, STOP_USER, 0);
	for (int i = 0; i < RUNNERS; i++)
		pthread_join(runners[i].thread, NULL);
	CHECK_EQ(stop.parked, 0);
	CHECK_EQ(stop_pause(&stop, RUNNERS), -ESHUTDOWN);
	return t_done();
}
