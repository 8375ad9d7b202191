/* snapshot.h: restoring a machine from a snapshot (snapshot.c); taking one is machine.h's
 * machine_snapshot(). */
#ifndef MVM_CLI_SNAPSHOT_H
#define MVM_CLI_SNAPSHOT_H

#include <pthread.h>
#include <stdbool.h>

#include "core/snapfile.h"
#include "file.h"
#include "options.h"

struct machine;

/* A snapshot read and checked, before any VM exists. */
struct snapshot_in {
	struct mapped_file state; /* the state file */
	struct snap_reader r;
	int mem_fd;		/* the memory file */
};

/* Reads and checks cfg->restore_state and cfg->restore_mem, and fills (out) with (cfg) changed
 * to the machine the snapshot describes. Returns 0, or -EINVAL after logging why (a usage
 * error: nothing was built). */
int snapshot_open(struct snapshot_in *in, const struct vm_config *cfg, struct vm_config *out);
/* Maps the memory and puts the state back into (m), built from (out) and not yet running. */
int snapshot_restore(struct machine *m, struct snapshot_in *in);
void snapshot_close(struct snapshot_in *in);

/* `mvm run --snapshot-dir DIR`: SIGUSR2 takes a snapshot into DIR (DIR/state, DIR/mem) and the
 * guest goes on. A thread of its own does it (it pauses the vCPUs, so it cannot be one of
 * them or the I/O thread, which completes their last requests meanwhile); it runs under the
 * control plane's seccomp list (THREAD_API). */
struct snapshot_worker {
	struct machine *m;
	const char *state, *mem;
	int efd;		/* 1: take one; SNAPSHOT_WORKER_QUIT: leave */
	pthread_t thread;
	bool started;
};

/* Starts the worker, after sandbox_seccomp_init() (it takes its filter first thing). */
int snapshot_worker_start(struct snapshot_worker *w, struct machine *m, const char *state,
			  const char *mem);
/* Any thread (the I/O thread, on SIGUSR2): asks for a snapshot. */
void snapshot_worker_request(struct snapshot_worker *w);
/* Once the guest stopped: lets the worker finish and joins it. */
void snapshot_worker_stop(struct snapshot_worker *w);

#endif
