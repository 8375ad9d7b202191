/* console.c: the host side of the serial console. */
#define pr_fmt(fmt) "console: " fmt
#include "console.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

size_t console_escape_filter(struct console_escape *e, const uint8_t *in, size_t n, uint8_t *out,
			     bool *quit)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t b = in[i];

		if (!e->pending) {
			if (b == CONSOLE_ESCAPE)
				e->pending = true;
			else
				out[o++] = b;
			continue;
		}
		e->pending = false;
		if (b == 'x' || b == 'X') {
			*quit = true;
			return o;
		}
		/* Ctrl-A Ctrl-A sends one Ctrl-A; anything else was not an escape. */
		out[o++] = CONSOLE_ESCAPE;
		if (b != CONSOLE_ESCAPE)
			out[o++] = b;
	}
	return o;
}

static void fd_sink_write(struct uart_sink *sink, const uint8_t *buf, size_t len)
{
	struct console_fd_sink *s = container_of(sink, struct console_fd_sink, sink);

	while (len) {
		ssize_t n = write(s->fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A closed reader must not stop the guest: drop the output. */
			pr_warn_once("console output: %s; dropping output",
				     n < 0 ? strerror(errno) : "short write");
			return;
		}
		buf += n;
		len -= n;
	}
}

void console_fd_sink_init(struct console_fd_sink *s, int fd)
{
	s->sink.write = fd_sink_write;
	s->fd = fd;
}

static void arm_read(struct console_input *c)
{
	struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->read_op);

	if (sqe)
		io_uring_prep_read(sqe, c->in_fd, c->raw, sizeof(c->raw), -1);
}

static void arm_space(struct console_input *c)
{
	struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->space_op);

	if (sqe)
		io_uring_prep_read(sqe, c->space_fd, &c->space_buf, sizeof(c->space_buf), 0);
}

/* Hands what is buffered to the UART; reads more once all of it is taken. I/O thread. */
static void push(struct console_input *c)
{
	size_t n = uart8250_receive(c->uart, c->buf + c->head, c->len);

	c->head += n;
	c->len -= n;
	if (c->len == 0 && !c->eof)
		arm_read(c);
	/* Otherwise the UART calls uart_space() when the guest has drained its FIFO. */
}

static void read_done(struct loop_op *op, int res, unsigned int flags)
{
	struct console_input *c = container_of(op, struct console_input, read_op);
	bool quit = false;

	if (res == -EINTR || res == -EAGAIN) {
		arm_read(c);
		return;
	}
	if (res <= 0) {
		/* End of input (or an error): the guest keeps running without it. */
		if (res < 0)
			pr_warn("reading the console input: %s", strerror(-res));
		c->eof = true;
		return;
	}
	c->head = 0;
	c->len = console_escape_filter(&c->escape, c->raw, res, c->buf, &quit);
	if (quit) {
		stop_request(c->stop, STOP_USER, 0);
		c->eof = true;
		return;
	}
	push(c);
}

static void space_done(struct loop_op *op, int res, unsigned int flags)
{
	struct console_input *c = container_of(op, struct console_input, space_op);

	arm_space(c);
	if (c->len)
		push(c);
}

/* vCPU thread, UART lock not held. */
static void uart_space(void *ctx)
{
	struct console_input *c = ctx;
	uint64_t one = 1;

	if (write(c->space_fd, &one, sizeof(one)) < 0)
		pr_warn_once("console eventfd write: %s", strerror(errno));
}

int console_input_init(struct console_input *c, struct loop *loop, struct uart8250 *uart,
		       struct stop_ctl *stop, int in_fd)
{
	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->uart = uart;
	c->stop = stop;
	c->in_fd = in_fd;
	c->space_fd = eventfd(0, EFD_CLOEXEC);
	if (c->space_fd < 0) {
		pr_err("eventfd: %s", strerror(errno));
		return -errno;
	}
	c->read_op.done = read_done;
	c->space_op.done = space_done;
	uart->rx_space = uart_space;
	uart->rx_space_ctx = c;
	arm_read(c);
	arm_space(c);
	return 0;
}

void console_input_fini(struct console_input *c)
{
	if (c->space_fd >= 0)
		close(c->space_fd);
}
