/* console.c: virtio-console port 0 (virtio 1.2 section 5.3) on the I/O loop: the guest's
 * transmit buffers go out with writev straight from guest RAM, one chain at a time so output
 * stays in order; input is read into a host buffer and copied into receive buffers. */
#define pr_fmt(fmt) "virtio-console: " fmt
#include "virtio/console.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "util/log.h"
#include "util/util.h"

static struct virtio_console *to_con(struct virtio_mmio *t)
{
	return container_of(t, struct virtio_console, mmio);
}

/* ---- input ---- */

static void arm_input(struct virtio_console *c)
{
	struct io_uring_sqe *sqe;

	if (c->read_armed || c->eof || c->in_fd < 0 || c->len)
		return;
	sqe = loop_sqe(c->mmio.loop, &c->read_op);
	if (!sqe) {
		pr_warn_once("io_uring submission queue full; console input stops");
		return;
	}
	/* A non-blocking fd answers -EAGAIN instead of waiting: wait for POLLIN first.
	 * Offset -1: the file position, for a pipe or terminal as for a file. */
	if (c->read_poll)
		io_uring_prep_poll_add(sqe, c->in_file, POLLIN);
	else
		io_uring_prep_read(sqe, c->in_file, c->raw, sizeof(c->raw), (uint64_t)-1);
	loop_sqe_fixed(sqe);
	c->read_armed = true;
}

/* Hands buffered input to the guest's receive buffers; reads more once all of it went.
 * Input waits in the host buffer (nothing is dropped) until the driver posts buffers. */
static void deliver(struct virtio_console *c)
{
	struct vq *vq = &c->mmio.q[VIRTIO_CONSOLE_RX_QUEUE].vq;
	bool pushed = false;

	while (c->len && virtio_mmio_queue_live(&c->mmio, VIRTIO_CONSOLE_RX_QUEUE) &&
	       virtio_mmio_queue_budget(&c->mmio, VIRTIO_CONSOLE_RX_QUEUE)) {
		size_t n;
		int ret = vq_pop(vq, &c->rx);

		if (ret == 0)
			break;
		if (ret < 0) {
			virtio_mmio_set_needs_reset(&c->mmio, vq->error);
			break;
		}
		n = buf_to_iov(c->rx.iov + c->rx.nr_out, c->rx.nr_in, 0, c->buf + c->head, c->len);
		vq_push(vq, c->rx.head, (uint32_t)n);
		pushed = true;
		c->head += n;
		c->len -= n;
	}
	if (pushed)
		virtio_mmio_signal_used(&c->mmio, VIRTIO_CONSOLE_RX_QUEUE);
	arm_input(c);
}

static void read_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_console *c = container_of(op, struct virtio_console, read_op);

	c->read_armed = false;
	if (c->read_poll) {
		c->read_poll = false; /* readable (or an error the read will report) */
		arm_input(c);
		return;
	}
	if (res == -EINTR || res == -EAGAIN) {
		c->read_poll = res == -EAGAIN;
		arm_input(c);
		return;
	}
	if (res <= 0) {
		/* End of input: the guest keeps running without it. */
		if (res < 0)
			pr_warn("reading the console input: %s", strerror(-res));
		c->eof = true;
		return;
	}
	c->head = 0;
	if (c->filter) {
		c->len = c->filter(c->filter_ctx, c->raw, (size_t)res, c->buf);
	} else {
		memcpy(c->buf, c->raw, (size_t)res);
		c->len = (size_t)res;
	}
	deliver(c);
}

/* ---- output ---- */

static void tx_process(struct virtio_console *c);

static void tx_finish(struct virtio_console *c);

static void tx_submit(struct virtio_console *c)
{
	struct io_uring_sqe *sqe = loop_sqe(c->mmio.loop, &c->tx_op);

	if (!sqe) {
		pr_warn_once("io_uring submission queue full; dropping console output");
		c->tx_poll = false;
		tx_finish(c);
		return;
	}
	if (c->tx_poll)
		io_uring_prep_poll_add(sqe, c->out_file, POLLOUT);
	else
		io_uring_prep_writev(sqe, c->out_file, c->tx.iov, c->tx_nr, (uint64_t)-1);
	loop_sqe_fixed(sqe);
}

static void tx_finish(struct virtio_console *c)
{
	struct vq *vq = &c->mmio.q[VIRTIO_CONSOLE_TX_QUEUE].vq;

	c->tx_busy = false;
	if (c->mmio.resetting) {
		virtio_mmio_reset_done(&c->mmio);
		return;
	}
	if (!virtio_mmio_queue_live(&c->mmio, VIRTIO_CONSOLE_TX_QUEUE))
		return;
	vq_push(vq, c->tx.head, 0);
	virtio_mmio_signal_used(&c->mmio, VIRTIO_CONSOLE_TX_QUEUE);
	tx_process(c);
	if (!c->tx_busy)
		virtio_mmio_quiesce_done(&c->mmio); /* a freeze waited for this write */
}

static void tx_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_console *c = container_of(op, struct virtio_console, tx_op);

	if (c->tx_poll) {
		c->tx_poll = false;
		if (!c->mmio.resetting && res != -ECANCELED) {
			tx_submit(c);
			return;
		}
		res = -ECANCELED;
	}
	if (!c->mmio.resetting && c->tx_left) {
		if (res == -EINTR || res == -EAGAIN) {
			/* -EAGAIN: a non-blocking fd is full; wait for POLLOUT, then write. */
			c->tx_poll = res == -EAGAIN;
			tx_submit(c);
			return;
		}
		if (res > 0 && (uint64_t)res < c->tx_left) {
			iov_consume(c->tx.iov, &c->tx_nr, (size_t)res);
			c->tx_left -= (uint64_t)res;
			tx_submit(c);
			return;
		}
		if (res < 0 && res != -ECANCELED && !c->tx_error_logged) {
			/* A closed reader must not stop the guest: drop the output. */
			pr_warn("console output: %s; dropping output", strerror(-res));
			c->tx_error_logged = true;
		}
	}
	tx_finish(c);
}

static void tx_process(struct virtio_console *c)
{
	struct vq *vq = &c->mmio.q[VIRTIO_CONSOLE_TX_QUEUE].vq;

	while (!c->tx_busy && virtio_mmio_queue_live(&c->mmio, VIRTIO_CONSOLE_TX_QUEUE) &&
	       virtio_mmio_queue_budget(&c->mmio, VIRTIO_CONSOLE_TX_QUEUE)) {
		int ret = vq_pop(vq, &c->tx);

		if (ret == 0)
			break;
		if (ret < 0) {
			virtio_mmio_set_needs_reset(&c->mmio, vq->error);
			break;
		}
		if (c->out_fd < 0 || c->tx.out_len == 0) {
			vq_push(vq, c->tx.head, 0);
			virtio_mmio_signal_used(&c->mmio, VIRTIO_CONSOLE_TX_QUEUE);
			continue;
		}
		c->tx_busy = true;
		c->tx_nr = c->tx.nr_out;	/* writable segments of a tx chain are ignored */
		c->tx_left = c->tx.out_len;
		tx_submit(c);
	}
}

/* ---- transport callbacks ---- */

static void con_notify(struct virtio_mmio *t, unsigned int q)
{
	struct virtio_console *c = to_con(t);

	if (q == VIRTIO_CONSOLE_RX_QUEUE)
		deliver(c);
	else
		tx_process(c);
}

static void cancel_done(struct loop_op *op, int res, unsigned int flags)
{
}

/* Input lives in a host buffer, so only a transmit writev touches guest RAM: cancel it (a
 * write to a full pipe or a stopped terminal could wait for ever) and finish the reset when
 * its completion arrives. */
static bool con_reset(struct virtio_mmio *t)
{
	struct virtio_console *c = to_con(t);
	struct io_uring_sqe *sqe;

	if (!c->tx_busy)
		return true;
	sqe = loop_sqe(t->loop, &c->cancel_op);
	if (sqe) {
		io_uring_prep_cancel(sqe, &c->tx_op, 0);
		loop_sqe_fixed(sqe); /* no file: for a ring that requires the flag (core/loop.h) */
	}
	return false;
}

/* A freeze lets the write in flight finish (input waits in the host buffer). */
static bool con_quiesce(struct virtio_mmio *t)
{
	return !to_con(t)->tx_busy;
}

static const struct virtio_mmio_dev_ops con_ops = {
	.reset = con_reset,
	.quiesce = con_quiesce,
	.notify = con_notify,
};

int virtio_console_init(struct virtio_console *c, const char *name, int in_fd, int out_fd,
			virtio_console_filter_fn filter, void *filter_ctx,
			const struct guest_mem *mem, struct loop *loop)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->filter = filter;
	c->filter_ctx = filter_ctx;
	c->read_op.done = read_done;
	c->tx_op.done = tx_done;
	c->cancel_op.done = cancel_done;
	c->config.max_nr_ports = htole32(1);
	c->in_file = c->out_file = -1;
	if (in_fd >= 0 && (ret = c->in_file = loop_file_add(loop, in_fd)) < 0)
		goto fail_file;
	if (out_fd >= 0 && (ret = c->out_file = loop_file_add(loop, out_fd)) < 0)
		goto fail_file;
	ret = virtio_mmio_init(&c->mmio, name, &con_ops, VIRTIO_ID_CONSOLE,
			       VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX), 2,
			       VIRTIO_CONSOLE_QUEUE_SIZE, &c->config, sizeof(c->config), mem, loop);
	if (ret)
		goto fail_mmio;
	arm_input(c);
	return 0;
fail_file:
	pr_err("%s: registering a console fd with the io_uring: %s", name, strerror(-ret));
fail_mmio:
	loop_file_remove(loop, c->in_file);
	loop_file_remove(loop, c->out_file);
	return ret;
}

void virtio_console_fini(struct virtio_console *c)
{
	loop_file_remove(c->mmio.loop, c->in_file);
	loop_file_remove(c->mmio.loop, c->out_file);
	virtio_mmio_fini(&c->mmio);
}
