/* machine_internal.h: what one running machine owns, shared by the files of the composition
 * root (machine.c builds and runs it, snapshot.c saves and restores it). Not for front ends:
 * they see struct machine through machine.h only. */
#ifndef MVM_CLI_MACHINE_INTERNAL_H
#define MVM_CLI_MACHINE_INTERNAL_H

#include <jansson.h>
#include <stdio.h>
#include <sys/signalfd.h>

#include "console.h"
#include "core/loop.h"
#include "dev/legacy.h"
#include "dev/uart8250.h"
#include "file.h"
#include "kvm/vm.h"
#include "machine_dbt.h"
#include "options.h"
#include "snapshot.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/net.h"
#include "virtio/rng.h"

/* virtio-mmio device slots (machine.c): one per ISA IRQ that no other device uses. */
#define VIRTIO_SLOTS 9

/* What the machine does with every device it created, whatever its kind: one entry per device
 * in m->devices (attach order), so a new kind of device is its constructor call plus one ops
 * table. drain: after the vCPUs stopped, finish what the I/O thread still holds that writes
 * guest RAM; destroy: free it (reverse attach order); stats: its line(s) for --stats. */
struct device_ops {
	void (*drain)(void *dev);
	void (*destroy)(void *dev);
	void (*stats)(void *dev, FILE *f);
	/* Its counters as members of (obj), for the API's metrics (machine_metrics). */
	void (*metrics)(void *dev, json_t *obj);
	/* Why a snapshot cannot hold this device yet; NULL when its transport state and guest
	 * RAM are all of it (snapshot.c). */
	const char *no_snapshot;
};

struct device {
	const char *name;
	const struct device_ops *ops;
	void *dev;
	struct virtio_mmio *t;		/* its transport */
};

#define MAX_DEVICES VIRTIO_SLOTS

/* Everything one running machine owns, torn down in reverse order. */
struct machine {
	const struct vm_config *cfg;	/* what it was built from (machine_run's) */
	struct mapped_file kernel, initrd; /* open_inputs() until the guest is loaded */
	enum accel_kind accel;
	unsigned int ncpus;
	struct vm vm;			/* --accel kvm */
	struct dbt_machine dm;		/* --accel dbt */
	/* What devices attach to, owned by whichever of the two runs the guest. */
	struct guest_mem *mem;
	struct bus *pio, *mmio;
	struct stop_ctl *stop;
	const struct memmap *map;
	struct irq_chip *irqchip;
	struct loop loop;
	struct uart8250 uart;
	struct console_fd_sink out;
	struct console_input in;
	struct i8042 i8042;
	struct debug_exit debug_exit;
	struct cmos cmos;
	struct blk_image images[MVM_MAX_DISKS];
	unsigned int ndisks;		/* images opened (images[0, ndisks)) */
	int tap_fds[MVM_MAX_NETS];
	unsigned int ntaps;		/* TAPs opened (tap_fds[0, ntaps)) */
	struct virtio_console vcon;
	struct virtio_rng rng;
	bool has_rng;			/* rng is attached */
	/* The devices with rate limiters, for machine_set_rate_limit(); owned by devices[]. */
	struct virtio_blk *blks[MVM_MAX_DISKS];
	struct virtio_net *nets[MVM_MAX_NETS];
	struct virtio_balloon *balloon;	/* --balloon, owned by devices[] (machine_balloon_*) */
	struct device devices[MAX_DEVICES];
	unsigned int ndevices;
	struct console_escape vcon_escape;
	unsigned int nvirtio;		/* virtio-mmio slots in use */
	char *cmdline;			/* the user's command line + virtio_mmio.device= entries */
	int console_fd;
	int signal_fd;
	struct signalfd_siginfo siginfo;
	struct loop_op signal_op;
	struct snapshot_worker snapw;	/* --snapshot-dir */
};

#endif
