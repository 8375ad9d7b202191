/* stop.c: first-wins stop requests shared by vCPU threads, devices and the I/O loop. */
#include "core/stop.h"

#include <errno.h>
#include <stdatomic.h>

void stop_request(struct stop_ctl *s, enum stop_reason reason, int status)
{
	int expected = STOP_NONE;

	/* Claim with a CAS to the transient value -1, so exactly one requester writes status;
	 * then publish the reason with release order so whoever sees it also sees status. */
	if (!atomic_compare_exchange_strong(&s->reason, &expected, -1))
		return;
	s->status = status;
	atomic_store_explicit(&s->reason, reason, memory_order_release);
	if (s->kick)
		s->kick(s->kick_ctx);
	/* Parked threads wait on the condition, not on the kick. */
	pthread_mutex_lock(&s->pause_lock);
	pthread_cond_broadcast(&s->pause_cond);
	pthread_mutex_unlock(&s->pause_lock);
}

int stop_pause(struct stop_ctl *s, unsigned int runners)
{
	int ret = 0;

	pthread_mutex_lock(&s->pause_lock);
	atomic_store(&s->pause_wanted, true);
	pthread_mutex_unlock(&s->pause_lock);
	/* A kick is sticky (KVM's immediate_exit, the engine's attention flag), so a thread
	 * between its check and guest code still comes back. */
	if (s->kick)
		s->kick(s->kick_ctx);
	pthread_mutex_lock(&s->pause_lock);
	while (s->parked < runners && stop_reason(s) == STOP_NONE)
		pthread_cond_wait(&s->pause_cond, &s->pause_lock);
	if (stop_reason(s) != STOP_NONE)
		ret = -ESHUTDOWN;
	pthread_mutex_unlock(&s->pause_lock);
	return ret;
}

void stop_resume(struct stop_ctl *s)
{
	pthread_mutex_lock(&s->pause_lock);
	atomic_store(&s->pause_wanted, false);
	pthread_cond_broadcast(&s->pause_cond);
	pthread_mutex_unlock(&s->pause_lock);
}

void stop_park(struct stop_ctl *s)
{
	pthread_mutex_lock(&s->pause_lock);
	s->parked++;
	pthread_cond_broadcast(&s->pause_cond);
	while (atomic_load(&s->pause_wanted) && stop_reason(s) == STOP_NONE)
		pthread_cond_wait(&s->pause_cond, &s->pause_lock);
	s->parked--;
	pthread_mutex_unlock(&s->pause_lock);
}

enum stop_reason stop_reason(const struct stop_ctl *s)
{
	int r;

	/* -1: the winner is between its CAS and publishing; that takes a few instructions. */
	while ((r = atomic_load_explicit((_Atomic int *)&s->reason, memory_order_acquire)) == -1)
		;
	return (enum stop_reason)r;
}

const char *stop_reason_name(enum stop_reason r)
{
	switch (r) {
	case STOP_NONE: return "running";
	case STOP_GUEST_EXIT: return "guest exit";
	case STOP_RESET: return "guest reset";
	case STOP_POWEROFF: return "guest power-off";
	case STOP_CRASH: return "guest crashed";
	case STOP_UNHANDLED: return "unhandled exit";
	case STOP_USER: return "quit from the console";
	case STOP_SIGNAL: return "signal";
	case STOP_VMM_ERROR: return "VMM error";
	}
	return "?";
}
