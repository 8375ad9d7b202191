/* console.h: the serial console's host side: output sinks (stdout, a file, nothing), the input
 * pump from stdin on the I/O loop, and the Ctrl-A escape. */
#ifndef MVM_CLI_CONSOLE_H
#define MVM_CLI_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "core/stop.h"
#include "dev/uart8250.h"

#define CONSOLE_ESCAPE	  0x01 /* Ctrl-A */
#define CONSOLE_READ_SIZE 256

/* The escape filter: a pure state machine over input bytes. */
struct console_escape {
	bool pending; /* the previous byte was Ctrl-A */
};

/* Filters (n) bytes from (in) to (out), which must not overlap (in) and has room for n + 1
 * bytes (a Ctrl-A held back from the previous call may come out now); returns how many bytes
 * were written to (out). Sets (*quit) on Ctrl-A x; bytes after it are dropped. Ctrl-A Ctrl-A gives one
 * Ctrl-A; Ctrl-A followed by any other byte passes both through. */
size_t console_escape_filter(struct console_escape *e, const uint8_t *in, size_t n, uint8_t *out,
			     bool *quit);

struct console_fd_sink {
	struct uart_sink sink;
	int fd;
};
void console_fd_sink_init(struct console_fd_sink *s, int fd);

/* Reads (in_fd) on the I/O loop and feeds the UART, holding back what its FIFO refuses until
 * the guest drains it (no byte is dropped). Ctrl-A x requests STOP_USER. */
struct console_input {
	struct loop *loop;		/* borrowed */
	struct uart8250 *uart;		/* borrowed */
	struct stop_ctl *stop;		/* borrowed */
	int in_fd;
	int space_fd;			/* eventfd: the UART has room again */
	struct loop_op read_op, space_op;
	struct console_escape escape;
	uint8_t raw[CONSOLE_READ_SIZE];	/* what read() returned */
	uint8_t buf[CONSOLE_READ_SIZE + 1]; /* filtered */
	size_t head, len;		/* bytes in buf not yet accepted by the UART */
	uint64_t space_buf;
	bool eof;
};

/* Starts reading (in_fd). Before loop_start(). Returns 0 or -errno. */
int console_input_init(struct console_input *c, struct loop *loop, struct uart8250 *uart,
		       struct stop_ctl *stop, int in_fd);
void console_input_fini(struct console_input *c);

#endif
