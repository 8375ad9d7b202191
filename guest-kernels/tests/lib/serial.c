/* serial.c: polled 8250/16550 UART at 0x3f8 (COM1). Output waits for LSR.THRE before each
 * byte; input polls LSR.DR. Interrupts stay off in IER. */
#include "guest.h"

#define UART_THR 0 /* transmit holding (write), receive buffer (read) */
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_DLL 0 /* with LCR.DLAB */
#define UART_DLM 1
#define LSR_DR	 0x01
#define LSR_THRE 0x20
#define LCR_8N1	 0x03
#define LCR_DLAB 0x80

/* Bounded wait for THRE: a UART that never empties must not hang the guest forever. */
#define THRE_POLLS 100000

void serial_init(void)
{
	outb(SERIAL_BASE + UART_IER, 0);
	outb(SERIAL_BASE + UART_LCR, LCR_DLAB);
	outb(SERIAL_BASE + UART_DLL, 1); /* 115200 baud */
	outb(SERIAL_BASE + UART_DLM, 0);
	outb(SERIAL_BASE + UART_LCR, LCR_8N1);
	outb(SERIAL_BASE + UART_FCR, 0);    /* no FIFO: one byte per LSR.DR */
	outb(SERIAL_BASE + UART_MCR, 0x03); /* DTR, RTS; OUT2 off: no IRQ */
}

static void serial_put_raw(char c)
{
	for (int i = 0; i < THRE_POLLS; i++) {
		if (inb(SERIAL_BASE + UART_LSR) & LSR_THRE)
			break;
		cpu_relax();
	}
	outb(SERIAL_BASE + UART_THR, (uint8_t)c);
}

void serial_putc(char c)
{
	if (c == '\n')
		serial_put_raw('\r');
	serial_put_raw(c);
}

void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

int serial_getc_nowait(void)
{
	if (!(inb(SERIAL_BASE + UART_LSR) & LSR_DR))
		return -1;
	return inb(SERIAL_BASE + UART_THR);
}

int serial_getc(void)
{
	int c;

	while ((c = serial_getc_nowait()) < 0)
		cpu_relax();
	return c;
}
