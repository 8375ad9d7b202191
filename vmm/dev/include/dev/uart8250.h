/* uart8250.h: a 16550A UART (8250 family) on the port I/O bus. */
#ifndef MVM_DEV_UART8250_H
#define MVM_DEV_UART8250_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/irq.h"

#define UART_FIFO_SIZE 16 /* the 16550A's receive FIFO */
#define UART_PORTS     8

/* Where transmitted bytes go. Called on vCPU threads with the UART lock held. */
struct uart_sink {
	void (*write)(struct uart_sink *sink, const uint8_t *buf, size_t len);
};

struct uart8250 {
	pthread_mutex_t lock;
	struct irq_line irq;
	struct uart_sink *sink;	/* borrowed; NULL drops output */
	/* Called (without the lock) when the receive FIFO drains, so the input side can push
	 * more. May be NULL. */
	void (*rx_space)(void *ctx);
	void *rx_space_ctx;
	bool rx_waiting;	/* the input side holds bytes the FIFO refused */

	uint8_t rx[UART_FIFO_SIZE];
	unsigned int rx_head, rx_count;
	uint8_t ier, lcr, mcr, lsr_err, scr, dll, dlm, fcr;
	bool thre_pending;	/* THR-empty interrupt pending (cleared by reading IIR or THR) */
	int irq_level;
};

extern const struct bus_ops uart8250_ops;

/* Initializes (u) raising (irq) and sending output to (sink). */
void uart8250_init(struct uart8250 *u, struct irq_line irq, struct uart_sink *sink);
void uart8250_fini(struct uart8250 *u);

/* Queues received bytes for the guest. Returns how many fit in the FIFO (the rest stay with
 * the caller, who is called back through rx_space when there is room). Any thread. */
size_t uart8250_receive(struct uart8250 *u, const uint8_t *buf, size_t len);

#endif
