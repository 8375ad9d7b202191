/* machine.h: the composition root: one place turns a struct vm_config into a running VM, for
 * every front end (the command line, the Firecracker API socket and config file). */
#ifndef MVM_CLI_MACHINE_H
#define MVM_CLI_MACHINE_H

#include <jansson.h>
#include <stdbool.h>

#include "options.h"
#include "virtio/balloon.h"

struct machine;

/* What a front end that stays up while the guest runs (the API server) hears of the machine.
 * Both calls are made on the thread that called machine_run(). */
struct machine_observer {
	/* The VM is built and about to run its first instruction: from now until stopping()
	 * returns, the front end may use the machine_* controls below from any thread. */
	void (*running)(struct machine_observer *o, struct machine *m);
	/* The guest stopped; nothing is torn down yet. After this returns (m) is gone. */
	void (*stopping)(struct machine_observer *o, struct machine *m);
};

/* Builds the VM (cfg) describes and runs it until it stops; returns the process exit status
 * (options.h). When building fails (a missing or malformed input file, a TAP that cannot be
 * opened, a KVM failure) it returns MVM_EXIT_USAGE or MVM_EXIT_VMM before the guest ran,
 * having released everything it took and without calling (obs); the reason is the calling
 * thread's log_last_error(). (obs) may be NULL. */
int machine_run(const struct vm_config *cfg, struct machine_observer *obs);

/* The controls a front end may use between its observer's running() and stopping(), from any
 * thread (one at a time). */
/* Presses Ctrl+Alt+Del on the guest's i8042 keyboard (Linux reboots; with reboot=k that stops
 * the machine as a reset). Returns 0, or -EAGAIN / -ENOSPC (logged) when the keyboard is
 * disabled or full. */
int machine_send_ctrl_alt_del(struct machine *m);
/* Parks every vCPU at an instruction boundary (pause) or lets them go on. Devices keep
 * serving what the guest already queued. Returns 0, or -ESHUTDOWN if the guest stopped. */
int machine_pause(struct machine *m, bool pause);
/* Writes a full snapshot of the paused machine: its state file (state_path) and guest RAM
 * (mem_path, sparse). KVM and --accel dbt machines; --accel hybrid is refused. Returns 0 or
 * -errno (logged). */
int machine_snapshot(struct machine *m, const char *state_path, const char *mem_path);
/* Which rate limiter machine_set_rate_limit() changes. */
enum machine_limit { MACHINE_LIMIT_DISK, MACHINE_LIMIT_NET_RX, MACHINE_LIMIT_NET_TX,
		     MACHINE_LIMIT_RNG };
/* Replaces the rate limiter (what) of disk or NIC (index) in attach order (the rng has index
 * 0) with (c), checked by the caller; it takes effect while the guest runs (within
 * RATE_LIMITER_MAX_WAIT_MS for a queue that waits). Returns 0, or -ENODEV when there is no
 * such device. */
int machine_set_rate_limit(struct machine *m, enum machine_limit what, unsigned int index,
			   const struct rl_config *c);
/* The balloon (--balloon, PUT /balloon): a new target of (amount_mib) MiB, at most the guest's
 * RAM; a new statistics interval (seconds, not 0, and only where statistics were on from the
 * start); its target, actual size and the guest's last statistics. Return 0, -ENODEV without a
 * balloon, or -EINVAL (logged). */
int machine_balloon_set_target(struct machine *m, uint32_t amount_mib);
int machine_balloon_set_stats_interval(struct machine *m, unsigned int seconds);
int machine_balloon_info(struct machine *m, struct virtio_balloon_info *out);
/* Adds the machine's counters to (root): unclaimed bus accesses, emulated instructions
 * (KVM), each device's counters under "devices". */
void machine_metrics(struct machine *m, json_t *root);

#endif
