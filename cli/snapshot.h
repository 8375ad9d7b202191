/* snapshot.h: restoring a machine from a snapshot (snapshot.c); taking one is machine.h's
 * machine_snapshot(). */
#ifndef MVM_CLI_SNAPSHOT_H
#define MVM_CLI_SNAPSHOT_H

#include "core/snapfile.h"
#include "options.h"

struct machine;

/* A snapshot read and checked, before any VM exists. */
struct snapshot_in {
	uint8_t *buf;		/* the state file */
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

#endif
