/* virtio_console.c: hvc0 through a minimal virtio-console driver (port 0, no MULTIPORT, no
 * EVENT_IDX: the flags-based notification path). Transmits a greeting, receives one line from
 * the host and echoes it back, with interrupts routed and the ISR acked.
 *
 * On hvc0 (mvm --console virtio: stdout): "HVC: hello from the virtio console" and
 * "HVC-ECHO: <the line>". On the serial port: PASS con-found, con-setup, con-tx, con-rx,
 * con-echo, con-interrupts (when the IRQ is routable), "RESULT PASS"; exits 0.
 * Command line: rx_ms=N bounds the wait for input (default 20000). */
#include "guest.h"
#include "virtio.h"

#define QSIZE	   16
#define RX_BUFS	   4
#define RX_BYTES   64
#define VEC_VIRTIO 0x51
#define TX_MS	   2000

static struct virtio_dev dev;
static struct virtq rxq, txq;
static uint8_t rx_ring[VIRTQ_MEM(QSIZE)] __attribute__((aligned(4096)));
static uint8_t tx_ring[VIRTQ_MEM(QSIZE)] __attribute__((aligned(4096)));
static uint8_t rx_buf[RX_BUFS][RX_BYTES];
static char tx_buf[160];
static volatile unsigned int irqs;

static void virtio_irq(struct trap_frame *f)
{
	(void)f;
	virtio_isr_ack(&dev);
	irqs++;
}

static void post_rx(uint16_t i)
{
	rxq.desc[i] = (struct vring_desc){(uint64_t)(uintptr_t)rx_buf[i], RX_BYTES,
					  VRING_DESC_F_WRITE, 0};
	virtq_publish(&rxq, i);
}

static bool transmit(const char *s)
{
	size_t n = strlen(s);

	memcpy(tx_buf, s, n);
	txq.desc[0] = (struct vring_desc){(uint64_t)(uintptr_t)tx_buf, (uint32_t)n, 0, 0};
	return virtq_submit_wait(&txq, 0, TX_MS);
}

/* Collects bytes until a newline; returns the line length or -1 on timeout. */
static int receive_line(char *line, size_t size, unsigned int ms)
{
	struct pit_clock clk;
	size_t n = 0;

	pit_clock_start(&clk);
	while (pit_clock_ms(&clk) < ms) {
		uint32_t id, len;

		if (!virtq_get_used(&rxq, &id, &len))
			continue;
		if (id >= RX_BUFS || len > RX_BYTES)
			return -1;
		for (uint32_t i = 0; i < len; i++) {
			char c = (char)rx_buf[id][i];

			if (c == '\n' || c == '\r') {
				line[n] = 0;
				return (int)n;
			}
			if (n + 1 < size)
				line[n++] = c;
		}
		post_rx((uint16_t)id);
		virtq_kick(&rxq);
	}
	return -1;
}

void guest_main(const struct hvm_start_info *si)
{
	struct mp_info mp;
	char line[96], msg[160];
	int pin = -1, n;

	(void)si;
	if (!report("con-found", virtio_find(3, 0, &dev)))
		finish();
	lapic_init();
	irq_register(VEC_VIRTIO, virtio_irq);
	if (dev.irq != ~0u) {
		pin = mp_parse(&mp) == 0 ? mp_isa_irq_pin(&mp, dev.irq) : -1;
		if (pin < 0)
			pin = (int)dev.irq;
		if ((unsigned int)pin < ioapic_pins())
			ioapic_route((unsigned int)pin, VEC_VIRTIO, lapic_id(), false);
		else
			pin = -1;
	}
	irq_enable();
	bool ok = virtio_setup(&dev, 0) && virtq_setup(&dev, &rxq, 0, QSIZE, rx_ring) &&
		  virtq_setup(&dev, &txq, 1, QSIZE, tx_ring);

	if (ok) {
		for (uint16_t i = 0; i < RX_BUFS; i++)
			post_rx(i);
		virtio_driver_ok(&dev);
		virtq_kick(&rxq);
	}
	if (!report("con-setup", ok))
		finish();
	report("con-tx", transmit("HVC: hello from the virtio console\n"));
	n = receive_line(line, sizeof(line), (unsigned int)cmdline_uint("rx_ms", 20000));
	if (report("con-rx", n >= 0)) {
		snprintf(msg, sizeof(msg), "HVC-ECHO: %s\n", line);
		report("con-echo", transmit(msg));
	}
	if (pin >= 0)
		report("con-interrupts", irqs > 0);
	virtio_reset(&dev);
	irq_disable();
	finish();
}
