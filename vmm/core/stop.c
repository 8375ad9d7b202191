/* stop.c: first-wins stop requests shared by vCPU threads, devices and the I/O loop. */
#include "core/stop.h"

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
