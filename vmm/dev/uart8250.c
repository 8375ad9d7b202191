/* uart8250.c: a 16550A UART as Linux's 8250 driver probes and drives it: 16-byte receive FIFO,
 * transmit straight to a sink (so THR is always empty), interrupt identification by priority,
 * loopback for the driver's self-test, divisor latch and scratch register. */
#define pr_fmt(fmt) "uart: " fmt
#include "dev/uart8250.h"

#include <string.h>

#include "util/util.h"

/* Register offsets (PC16550D datasheet). */
#define UART_RBR_THR 0 /* DLAB=0 */
#define UART_IER     1 /* DLAB=0 */
#define UART_IIR_FCR 2
#define UART_LCR     3
#define UART_MCR     4
#define UART_LSR     5
#define UART_MSR     6
#define UART_SCR     7

#define IER_RDI	 0x01 /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */

#define IIR_NO_INT 0x01
#define IIR_RLSI   0x06
#define IIR_RDI	   0x04
#define IIR_THRI   0x02
#define IIR_FIFO   0xc0 /* FIFOs enabled, as a 16550A reports them */

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR	 0x01
#define LSR_OE	 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI	0x40
#define MSR_DCD 0x80

static uint8_t pending_iir(const struct uart8250 *u)
{
	if ((u->ier & IER_RLSI) && u->lsr_err)
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_count)
		return IIR_RDI;
	if ((u->ier & IER_THRI) && u->thre_pending)
		return IIR_THRI;
	return IIR_NO_INT;
}

/* Lock held. */
static void update_irq(struct uart8250 *u)
{
	int level = pending_iir(u) != IIR_NO_INT;

	if (level != u->irq_level) {
		u->irq_level = level;
		irq_line_set(&u->irq, level);
	}
}

/* Lock held. */
static bool rx_push(struct uart8250 *u, uint8_t byte)
{
	if (u->rx_count == UART_FIFO_SIZE)
		return false;
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = byte;
	u->rx_count++;
	return true;
}

void uart8250_init(struct uart8250 *u, struct irq_line irq, struct uart_sink *sink)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	u->irq = irq;
	u->sink = sink;
	u->lcr = 0x03; /* 8N1 */
	u->dll = 12;   /* 9600 baud */
}

void uart8250_fini(struct uart8250 *u)
{
	pthread_mutex_destroy(&u->lock);
}

size_t uart8250_receive(struct uart8250 *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&u->lock);
	/* In loopback the line is disconnected from the outside world. */
	if (!(u->mcr & MCR_LOOP))
		while (n < len && rx_push(u, buf[n]))
			n++;
	u->rx_waiting = n < len;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

static void transmit(struct uart8250 *u, uint8_t byte)
{
	if (u->mcr & MCR_LOOP) {
		if (!rx_push(u, byte))
			u->lsr_err |= LSR_OE;
	} else if (u->sink) {
		u->sink->write(u->sink, &byte, 1);
	}
	/* The byte left at once: THR is empty again, which is an interrupt if enabled. */
	u->thre_pending = true;
}

static uint8_t modem_status(const struct uart8250 *u)
{
	uint8_t m = u->mcr;

	if (!(m & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS; /* a terminal is always attached */
	return (m & MCR_DTR ? MSR_DSR : 0) | (m & MCR_RTS ? MSR_CTS : 0) |
	       (m & MCR_OUT1 ? MSR_RI : 0) | (m & MCR_OUT2 ? MSR_DCD : 0);
}

static uint64_t uart_read(void *dev, uint64_t off, unsigned int size)
{
	struct uart8250 *u = dev;
	bool notify_space = false;
	uint8_t v = 0;

	pthread_mutex_lock(&u->lock);
	switch (off) {
	case UART_RBR_THR:
		if (u->lcr & LCR_DLAB) {
			v = u->dll;
		} else if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
			u->rx_count--;
			if (!u->rx_count && u->rx_waiting) {
				u->rx_waiting = false;
				notify_space = true;
			}
		}
		break;
	case UART_IER:
		v = u->lcr & LCR_DLAB ? u->dlm : u->ier;
		break;
	case UART_IIR_FCR:
		v = pending_iir(u);
		/* Reading IIR while it reports THR empty acknowledges that interrupt. */
		if (v == IIR_THRI)
			u->thre_pending = false;
		if (u->fcr & FCR_ENABLE)
			v |= IIR_FIFO;
		break;
	case UART_LCR:
		v = u->lcr;
		break;
	case UART_MCR:
		v = u->mcr;
		break;
	case UART_LSR:
		v = LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0) | u->lsr_err;
		u->lsr_err = 0; /* error bits clear on read */
		break;
	case UART_MSR:
		v = modem_status(u);
		break;
	case UART_SCR:
		v = u->scr;
		break;
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	if (notify_space && u->rx_space)
		u->rx_space(u->rx_space_ctx);
	return v;
}

static void uart_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	struct uart8250 *u = dev;
	uint8_t v = val;

	pthread_mutex_lock(&u->lock);
	switch (off) {
	case UART_RBR_THR:
		if (u->lcr & LCR_DLAB)
			u->dll = v;
		else
			transmit(u, v);
		break;
	case UART_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
		} else {
			/* Enabling the THR-empty interrupt while THR is empty raises it at once. */
			if ((v & IER_THRI) && !(u->ier & IER_THRI))
				u->thre_pending = true;
			u->ier = v & 0x0f;
		}
		break;
	case UART_IIR_FCR:
		u->fcr = v & (FCR_ENABLE | 0xc0);
		if (v & FCR_CLEAR_RX)
			u->rx_count = 0;
		break;
	case UART_LCR:
		u->lcr = v;
		break;
	case UART_MCR:
		u->mcr = v & 0x1f;
		break;
	case UART_SCR:
		u->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

const struct bus_ops uart8250_ops = {.read = uart_read, .write = uart_write};
