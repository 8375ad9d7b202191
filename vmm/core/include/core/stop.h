/* stop.h: how any thread asks the machine to stop, and why. The first request wins. */
#ifndef MVM_CORE_STOP_H
#define MVM_CORE_STOP_H

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
};

/* Records (reason, status) if no stop was requested yet, then kicks. Any thread. */
void stop_request(struct stop_ctl *s, enum stop_reason reason, int status);
/* STOP_NONE while the machine should keep running. Any thread. */
enum stop_reason stop_reason(const struct stop_ctl *s);
const char *stop_reason_name(enum stop_reason r);

#endif
