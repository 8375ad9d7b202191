/* console.h: virtio-console (virtio 1.2 section 5.3), port 0 only (no MULTIPORT): the guest's
 * hvc0. Output is an io_uring writev straight from the guest's transmit buffers to (out_fd);
 * input is read from (in_fd) into a small host buffer, passed through an optional filter (the
 * Ctrl-A escape), and copied into the guest's receive buffers. Both on the I/O loop. */
#ifndef MVM_VIRTIO_CONSOLE_H
#define MVM_VIRTIO_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_console.h>

#include "core/guest_mem.h"
#include "core/loop.h"
#include "virtio/mmio.h"
#include "virtio/vq.h"

#define VIRTIO_CONSOLE_RX_QUEUE	  0
#define VIRTIO_CONSOLE_TX_QUEUE	  1
#define VIRTIO_CONSOLE_QUEUE_SIZE 64
#define VIRTIO_CONSOLE_READ_SIZE  256

/* The config space (section 5.3.4) is the kernel's. */
_Static_assert(sizeof(struct virtio_console_config) == 12, "virtio_console_config size");

/* Filters (n) input bytes from (in) into (out), which has room for n + 1 bytes; returns how
 * many bytes to deliver. I/O thread. */
typedef size_t (*virtio_console_filter_fn)(void *ctx, const uint8_t *in, size_t n, uint8_t *out);

struct virtio_console {
	struct virtio_mmio mmio;	/* first: the bus device */
	struct virtio_console_config config;
	int in_fd, out_fd;		/* borrowed; -1 for none */
	int in_file, out_file;		/* their slots in the loop's file table; -1 for none */
	virtio_console_filter_fn filter;
	void *filter_ctx;

	/* Input, I/O thread. */
	struct loop_op read_op;
	bool read_armed, eof;
	bool read_poll;			/* the armed op is a POLLIN wait, not a read */
	uint8_t raw[VIRTIO_CONSOLE_READ_SIZE];
	uint8_t buf[VIRTIO_CONSOLE_READ_SIZE + 1];
	size_t head, len;		/* filtered bytes not yet given to the guest */
	struct vq_chain rx;		/* scratch for one receive chain */

	/* Output, I/O thread: one chain in flight at a time, so output keeps its order. */
	struct loop_op tx_op, cancel_op;
	struct vq_chain tx;
	unsigned int tx_nr;		/* segments of tx still to write */
	uint64_t tx_left;		/* bytes of tx still to write */
	bool tx_busy;
	bool tx_poll;			/* the armed op is a POLLOUT wait, not a writev */
	bool tx_error_logged;
};

/* Sets up (c) reading (in_fd) and writing (out_fd) (either may be -1), with an optional
 * input (filter). Arms its reads on (loop): before loop_start() or on the I/O thread.
 * Returns 0 or -errno. */
int virtio_console_init(struct virtio_console *c, const char *name, int in_fd, int out_fd,
			virtio_console_filter_fn filter, void *filter_ctx,
			const struct guest_mem *mem, struct loop *loop);
void virtio_console_fini(struct virtio_console *c);

#endif
