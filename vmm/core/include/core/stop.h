/* stop.h: how any thread asks the machine to stop, and why. The first request wins. */
#ifndef MVM_CORE_STOP_H
#define MVM_CORE_STOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

enum stop_reason {
	STOP_NONE = 0,
	STOP_GUEST_EXIT,	/* the guest wrote its exit code to the debug-exit port */
	STOP_RESET,		/* the guest reset the machine (i8042 pulse, reboot=k) */
	STOP_POWEROFF,		/* the guest powered off */
	STOP_CRASH,		/* triple fault or another state the guest cannot leave */
	STOP_UNHANDLED,		/* an exit mvm cannot finish (e.g. an emulation failure) */
	STOP_USER,		/* the user quit from the console (Ctrl-A x) */
	STOP_SIGNAL,		/* SIGINT, SIGTERM or SIGHUP reached mvm */
	STOP_VMM_ERROR,		/* mvm itself failed */
};

struct stop_ctl {
	_Atomic int reason;	/* enum stop_reason; STOP_NONE while running */
	int status;		/* written once, before reason is published */
	/* Called once, by the thread whose request won, to wake everything that waits for the
	 * machine (vCPUs in KVM_RUN, the I/O loop). */
	void (*kick)(void *ctx);
	void *kick_ctx;
	/* Pausing (stop_pause): the threads that run guest code park at an instruction boundary
	 * until stop_resume() or a stop. A zeroed struct is ready: glibc's mutex and condition
	 * initialisers are all zero bytes. */
	_Atomic bool pause_wanted;
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	unsigned int parked;	/* threads waiting in stop_park() */
};

/* Records (reason, status) if no stop was requested yet, then kicks. Any thread. */
void stop_request(struct stop_ctl *s, enum stop_reason reason, int status);
/* STOP_NONE while the machine should keep running. Any thread. */
enum stop_reason stop_reason(const struct stop_ctl *s);
const char *stop_reason_name(enum stop_reason r);

/* Asks every thread that runs guest code to park, kicks them (the same kick as a stop), and
 * waits until (runners) of them are parked. Returns 0, or -ESHUTDOWN when the machine stopped
 * meanwhile. Not on a thread that runs guest code. */
int stop_pause(struct stop_ctl *s, unsigned int runners);
/* Lets the parked threads go on. */
void stop_resume(struct stop_ctl *s);

/* For the threads that run guest code, between two instructions: is a pause wanted? Cheap
 * (one relaxed load) so it sits on the run loop. */
static inline bool stop_pause_wanted(struct stop_ctl *s)
{
	return atomic_load_explicit(&s->pause_wanted, memory_order_relaxed);
}
/* Parks the calling thread while a pause is wanted and the machine is not stopping. */
void stop_park(struct stop_ctl *s);

#endif
