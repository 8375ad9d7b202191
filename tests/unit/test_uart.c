/* test_uart.c: the 16550A register file as Linux's 8250 driver uses it: probe (scratch, FIFO
 * type, loopback), transmit, receive FIFO with back-pressure, interrupt identification and the
 * IRQ line's level. */
#include "dev/uart8250.h"

#include "test.h"

struct recorder {
	struct irq_chip chip;
	int level;
	unsigned int edges;
};

static void rec_set(struct irq_chip *chip, unsigned int gsi, int level)
{
	struct recorder *r = (struct recorder *)chip;

	if (level && !r->level)
		r->edges++;
	r->level = level;
}

struct capture {
	struct uart_sink sink;
	uint8_t buf[64];
	unsigned int n;
};

static void cap_write(struct uart_sink *sink, const uint8_t *buf, size_t len)
{
	struct capture *c = (struct capture *)sink;

	for (size_t i = 0; i < len && c->n < sizeof(c->buf); i++)
		c->buf[c->n++] = buf[i];
}

static unsigned int space_calls;
static void on_space(void *ctx)
{
	space_calls++;
}

static uint8_t rd(struct uart8250 *u, unsigned int reg)
{
	return uart8250_ops.read(u, reg, 1);
}

static void wr(struct uart8250 *u, unsigned int reg, uint8_t v)
{
	uart8250_ops.write(u, reg, v, 1);
}

int main(void)
{
	struct recorder rec = {.chip.set_level = rec_set};
	struct capture cap = {.sink.write = cap_write};
	struct uart8250 u;
	uint8_t in[20];

	uart8250_init(&u, (struct irq_line){.chip = &rec.chip, .gsi = 4}, &cap.sink);
	u.rx_space = on_space;

	/* Scratch register and divisor latch. */
	wr(&u, 7, 0xa5);
	CHECK_EQ(rd(&u, 7), 0xa5);
	wr(&u, 3, 0x80);
	wr(&u, 0, 0x01);
	wr(&u, 1, 0x00);
	CHECK_EQ(rd(&u, 0), 0x01);
	wr(&u, 3, 0x03);
	CHECK_EQ(cap.n, 0); /* divisor writes are not data */

	/* FIFO detection: a 16550A reports 0xc0 in IIR once FIFOs are enabled. */
	wr(&u, 2, 0x01);
	CHECK_EQ(rd(&u, 2) & 0xc0, 0xc0);
	CHECK_EQ(rd(&u, 2) & 0x0f, 0x01); /* no interrupt pending */

	/* Loopback self-test as Linux's autoconfig does it: MCR = LOOP | OUT2 | RTS. */
	wr(&u, 4, 0x10 | 0x0a);
	CHECK_EQ(rd(&u, 6) & 0xf0, 0x90);
	wr(&u, 0, 'L');
	CHECK_EQ(cap.n, 0);		/* loopback does not reach the sink */
	CHECK(rd(&u, 5) & 0x01);	/* data ready */
	CHECK_EQ(rd(&u, 0), 'L');
	wr(&u, 4, 0x0b);		/* DTR | RTS | OUT2, loopback off */
	CHECK_EQ(rd(&u, 6) & 0xb0, 0xb0); /* a connected terminal: DCD, DSR, CTS */

	/* Transmit goes to the sink; LSR always says THR empty. */
	wr(&u, 0, 'h');
	wr(&u, 0, 'i');
	CHECK_EQ(cap.n, 2);
	CHECK_EQ(cap.buf[0], 'h');
	CHECK_EQ(rd(&u, 5) & 0x60, 0x60);

	/* THR-empty interrupt: raised when enabled, acknowledged by reading IIR. */
	CHECK_EQ(rec.level, 0);
	wr(&u, 1, 0x02);
	CHECK_EQ(rec.level, 1);
	CHECK_EQ(rd(&u, 2) & 0x0f, 0x02);
	CHECK_EQ(rec.level, 0);
	CHECK_EQ(rd(&u, 2) & 0x0f, 0x01);
	wr(&u, 0, '!');			/* the byte leaves at once: THRE again */
	CHECK_EQ(rec.level, 1);
	wr(&u, 1, 0x00);
	CHECK_EQ(rec.level, 0);

	/* Receive: the FIFO takes 16 bytes, the rest stay with the caller. */
	for (unsigned int i = 0; i < sizeof(in); i++)
		in[i] = 'a' + i;
	wr(&u, 1, 0x01);		/* received-data interrupt */
	CHECK_EQ(uart8250_receive(&u, in, sizeof(in)), UART_FIFO_SIZE);
	CHECK_EQ(rec.level, 1);
	CHECK_EQ(rd(&u, 2) & 0x0f, 0x04);
	for (unsigned int i = 0; i < UART_FIFO_SIZE; i++)
		CHECK_EQ(rd(&u, 0), 'a' + i);
	CHECK_EQ(space_calls, 1);	/* drained while the caller was holding bytes */
	CHECK_EQ(rec.level, 0);
	CHECK_EQ(rd(&u, 5) & 0x01, 0);
	CHECK_EQ(rd(&u, 0), 0);		/* empty FIFO reads 0, no underflow */
	CHECK_EQ(uart8250_receive(&u, in + 16, 4), 4);
	CHECK_EQ(rd(&u, 0), 'q');
	/* FCR clears the receive FIFO. */
	wr(&u, 2, 0x03);
	CHECK_EQ(rd(&u, 5) & 0x01, 0);
	/* Wide and out-of-range offsets do not crash. */
	CHECK_EQ(uart8250_ops.read(&u, 5, 4) & 0x60, 0x60);
	uart8250_fini(&u);
	return t_done();
}
