/* mmio.h: the virtio-mmio transport, version 2 (virtio 1.2 section 4.2), shared by every mvm
 * virtio device. A device embeds a struct virtio_mmio, gives it its ID, features, config space
 * and callbacks, and gets back to itself with container_of().
 *
 * Threads:
 * - vCPU threads call the register file (virtio_mmio_bus_ops) under the transport's mutex.
 *   InterruptStatus and the NEEDS_RESET status bit are atomics the I/O thread also writes.
 * - The I/O thread (the struct loop) runs all queue processing: kicks arrive as reads on one
 *   eventfd per queue (bound by the VMM to QueueNotify with KVM_IOEVENTFD, or written by the
 *   register file when a write reaches user space), interrupts leave through one eventfd
 *   (bound with KVM_IRQFD, or read by a unit test).
 * - Activation (DRIVER_OK) and reset (Status = 0) are handed to the I/O thread through a
 *   control eventfd; the writing vCPU waits, holding the mutex, until the I/O thread has run
 *   the device's activate()/reset() and, for a reset, until the device has drained or
 *   cancelled its in-flight I/O. The I/O thread never takes the mutex, so it never waits on a
 *   vCPU. A reset that does not finish in time is not pretended: Status reads NEEDS_RESET,
 *   not 0, and the device takes no new setup until the I/O thread has finished it (a later
 *   register access, or another write of 0, sees that and completes the reset).
 * - Every queue has a budget of VIRTIO_MMIO_BUDGET chains per loop iteration, so a guest that
 *   refills one ring as fast as it is served cannot starve the other devices. */
#ifndef MVM_VIRTIO_MMIO_H
#define MVM_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/guest_mem.h"
#include "core/loop.h"
#include "virtio/mmio_regs.h"
#include "virtio/vq.h"

#define VIRTIO_MMIO_VENDOR 0x204d564d /* "MVM " */
#define VIRTIO_MMIO_WINDOW 0x1000
#define VIRTIO_MMIO_MAX_QUEUES 4
/* Chains a device takes from one queue per I/O loop iteration before it lets the loop run the
 * other devices' work (see virtio_mmio_queue_budget()). */
#define VIRTIO_MMIO_BUDGET 32

struct virtio_mmio;

/* What a device implements. All but config_write are called on the I/O thread. */
struct virtio_mmio_dev_ops {
	/* The driver set DRIVER_OK. Queue i is usable when virtio_mmio_queue_ready(t, i). The
	 * transport calls notify() for every ready queue right after, for buffers posted before
	 * DRIVER_OK. May be NULL. */
	void (*activate)(struct virtio_mmio *t);
	/* The driver reset the device (or it is being destroyed): stop using the queues.
	 * Return true when nothing is in flight any more; otherwise cancel or drain and call
	 * virtio_mmio_reset_done() once the last in-flight operation completed. */
	bool (*reset)(struct virtio_mmio *t);
	/* Queue (q) was notified while the device is live. */
	void (*notify)(struct virtio_mmio *t, unsigned int q);
	/* A driver write to config space at (off, size), already bounds-checked. vCPU thread,
	 * transport mutex held. NULL: config space is read-only. */
	void (*config_write)(struct virtio_mmio *t, uint32_t off, const void *data,
			     unsigned int size);
	/* The VMM freezes the device for a snapshot (virtio_mmio_freeze()): the transport
	 * already hands out no more chains (virtio_mmio_queue_budget() says no). Complete or
	 * cancel what is in flight, writing the used entries of what completes, and give back
	 * chains popped but not used (vq_unpop()), so the rings in guest RAM say everything.
	 * Return true when nothing is in flight; otherwise call virtio_mmio_quiesce_done()
	 * once it is. NULL: the device never has anything in flight between iterations. */
	bool (*quiesce)(struct virtio_mmio *t);
};

struct virtio_mmio_queue {
	/* Register file, vCPU threads under the mutex. */
	uint16_t num;
	bool ready;
	uint64_t desc, driver, device;
	/* I/O thread while the device is live (filled by the vCPU before the activation
	 * hand-off, cleared after the reset hand-off; size 0 = queue not in use). */
	struct vq vq;
	/* Kicks: an eventfd read that is always armed, through its slot in the loop's file
	 * table (loop_file_add()). */
	int kick_fd;
	int kick_file;
	uint64_t kick_buf;
	struct loop_op kick_op;
	/* Deferred interrupt decision, once per loop iteration (see virtio_mmio_signal_used). */
	struct loop_op notify_op;
	bool notify_pending;
	/* Chains left this iteration; once spent, resume_op (a NOP) brings the device back on
	 * the next iteration with a new budget (see virtio_mmio_queue_budget). I/O thread. */
	unsigned int budget;
	struct loop_op resume_op;
	bool resume_pending;
	struct virtio_mmio *t;
	unsigned int index;
};

enum virtio_mmio_ctl {
	VIRTIO_CTL_NONE,
	VIRTIO_CTL_ACTIVATE,
	VIRTIO_CTL_RESET,
	VIRTIO_CTL_FREEZE,
	VIRTIO_CTL_THAW,
};

struct virtio_mmio {
	const char *name;		/* borrowed, for messages ("virtio-blk vda") */
	const struct virtio_mmio_dev_ops *ops;
	const struct guest_mem *mem;	/* borrowed */
	struct loop *loop;		/* borrowed */
	uint32_t device_id;
	uint64_t device_features;
	const void *config;		/* borrowed device config space, little-endian */
	uint32_t config_len;
	unsigned int nqueues;
	uint16_t queue_max;

	pthread_mutex_t lock;		/* the register file */
	uint32_t dev_features_sel, drv_features_sel, queue_sel, shm_sel;
	uint64_t driver_features;
	bool handed_off;		/* activation handed to the I/O thread, not yet reset */
	bool reset_pending;		/* a reset the I/O thread has not finished yet */
	uint32_t reset_seq;		/* its request number */
	_Atomic uint32_t status;
	_Atomic uint32_t isr;
	uint32_t config_generation;	/* ConfigGeneration, under (lock) */

	int irq_fd;			/* eventfd: one write = one interrupt edge */
	struct virtio_mmio_queue q[VIRTIO_MMIO_MAX_QUEUES];

	/* The vCPU -> I/O thread hand-off. */
	int ctl_fd;
	int ctl_file;			/* its slot in the loop's file table */
	uint64_t ctl_buf;
	struct loop_op ctl_op;
	pthread_mutex_t ctl_lock;
	pthread_cond_t ctl_cond;
	enum virtio_mmio_ctl ctl_req;
	uint32_t ctl_seq;		/* number of the last request handed over */
	uint32_t ctl_acked;		/* number of the last request the I/O thread finished */
	unsigned int ctl_timeout_ms;	/* how long a vCPU waits for one (30 s, or a test's) */

	/* I/O thread. */
	bool live;			/* activated, not broken, not being reset */
	bool resetting;			/* a reset waits for the device to drain */
	uint32_t ctl_handled;		/* the last request number taken */
	uint32_t resetting_seq;		/* the request number of the reset that waits */
	bool frozen;			/* virtio_mmio_freeze(): no new chains */
	bool quiescing;			/* a freeze waits for the device to quiesce */
	uint32_t quiescing_seq;		/* its request number */
	_Atomic bool warned;		/* a guest error was logged for this device */
};

/* The register file, to bus_register() on the MMIO bus for a VIRTIO_MMIO_WINDOW window with
 * the struct virtio_mmio as device. */
extern const struct bus_ops virtio_mmio_bus_ops;

/* Sets up (t): (nqueues) queues of at most (queue_max) entries (a power of two), device
 * (device_id) offering (features) (VIRTIO_F_VERSION_1 is always added), config space
 * (config, config_len). Creates the eventfds and arms the kick and control reads on (loop):
 * before loop_start() or on the I/O thread. Pointers are borrowed. Returns 0 or -errno. */
int virtio_mmio_init(struct virtio_mmio *t, const char *name, const struct virtio_mmio_dev_ops *ops,
		     uint32_t device_id, uint64_t features, unsigned int nqueues,
		     uint16_t queue_max, const void *config, uint32_t config_len,
		     const struct guest_mem *mem, struct loop *loop);
/* Closes the eventfds. After the loop has stopped (or before it started). */
void virtio_mmio_fini(struct virtio_mmio *t);

/* The eventfd a guest write of (q) to QueueNotify must signal (for KVM_IOEVENTFD). */
int virtio_mmio_kick_fd(const struct virtio_mmio *t, unsigned int q);
/* The eventfd written once per interrupt (for KVM_IRQFD on an edge-triggered line). */
int virtio_mmio_irq_fd(const struct virtio_mmio *t);

/* ---- for devices, I/O thread ---- */

/* Queue (q) is set up and the device is live (activated, not broken, no reset pending). */
bool virtio_mmio_queue_live(const struct virtio_mmio *t, unsigned int q);
/* The driver negotiated feature bit (bit). Stable while live. */
bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned int bit);
/* Takes one chain from queue (q)'s budget for this loop iteration: call it before popping
 * each chain, and stop popping when it returns false. The transport then calls notify(t, q)
 * again on the next loop iteration, with a new budget, after the other completions of this one
 * ran: a guest that refills a ring as fast as the device serves it gets VIRTIO_MMIO_BUDGET
 * chains per iteration, and every other device its turn. */
bool virtio_mmio_queue_budget(struct virtio_mmio *t, unsigned int q);
/* Spends the rest of queue (q)'s budget for this iteration (a device whose chains cost more
 * than a chain's worth, such as large entropy requests); notify(t, q) follows as above. */
void virtio_mmio_queue_yield(struct virtio_mmio *t, unsigned int q);
/* Call after vq_push() on queue (q): decides, once per loop iteration, whether the driver
 * wants an interrupt, and if so sets InterruptStatus bit 0 and signals the irq eventfd. */
void virtio_mmio_signal_used(struct virtio_mmio *t, unsigned int q);
/* The driver broke the rules: sets DEVICE_NEEDS_RESET, stops queue processing until the
 * driver resets the device, sends a configuration change interrupt, and logs (why) once per
 * device. In-flight requests still complete. */
void virtio_mmio_set_needs_reset(struct virtio_mmio *t, const char *why);
/* Logs a guest error once per device without breaking it (the request fails instead). */
void virtio_mmio_guest_error(struct virtio_mmio *t, const char *why);
/* The device has nothing in flight any more after reset() returned false. */
void virtio_mmio_reset_done(struct virtio_mmio *t);
/* The same after quiesce() returned false. */
void virtio_mmio_quiesce_done(struct virtio_mmio *t);

/* ---- snapshots: any thread but the I/O thread, every vCPU paused ---- */

/* Stops the device taking chains and waits (at most the control timeout) until what it had in
 * flight completed into the used rings (see quiesce()), so guest RAM plus
 * virtio_mmio_save() are the device's whole state. Returns 0, -EBUSY when a reset is still
 * pending, or -ETIMEDOUT (the device is thawed again). */
int virtio_mmio_freeze(struct virtio_mmio *t);
/* Lets a frozen device go on: every live queue is served again. */
void virtio_mmio_thaw(struct virtio_mmio *t);

/* The transport's state in a snapshot: fixed-width, little-endian like the host. */
#define VIRTIO_MMIO_STATE_CONFIG_MAX 256
struct virtio_mmio_queue_state {
	uint64_t desc, driver, device;
	uint16_t num, last_avail, used_idx, signalled_used;
	uint8_t ready, signalled_used_valid, pad[6];
};

struct virtio_mmio_state {
	uint32_t device_id, status, isr, nqueues;
	uint64_t device_features, driver_features;
	uint32_t dev_features_sel, drv_features_sel, queue_sel, shm_sel;
	uint32_t config_len, handed_off;
	struct virtio_mmio_queue_state q[VIRTIO_MMIO_MAX_QUEUES];
	uint8_t config[VIRTIO_MMIO_STATE_CONFIG_MAX];
};

/* The state of a frozen (or never activated) device. */
void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *s);
/* Puts (s) back into a device built the same way, before the I/O thread serves it: checks
 * that it is that device (ID, features, queues, config space), that every ready queue lies in
 * guest RAM and that its used index is the one in guest RAM; then, for a device the driver
 * had set up, hands the activation to the I/O thread, which serves the rings from the saved
 * indices when it starts. Returns 0, or -EINVAL with the reason in (err). */
int virtio_mmio_load(struct virtio_mmio *t, const struct virtio_mmio_state *s, char *err,
		     size_t errlen);

/* ---- for devices, any thread ---- */

/* The device changed its config space on its own (a balloon's new target): the caller holds
 * (t->lock) while it writes the bytes and calls this, so a vCPU never reads half a change.
 * Bumps ConfigGeneration (section 4.2.2) and, once the driver has set DRIVER_OK, sends a
 * configuration change notification (InterruptStatus bit 1, section 2.5.1): before that the
 * driver reads the config space anyway. */
void virtio_mmio_config_changed_locked(struct virtio_mmio *t);

#endif
