/* test_virtio_console.c: virtio-console port 0 over a real I/O loop with pipes for stdin and
 * stdout: input typed before the driver is ready waits (nothing lost), spreads over small
 * receive buffers and passes the filter; output leaves in order from multi-segment chains;
 * non-blocking and full output pipes; a malformed chain sets NEEDS_RESET; a reset cancels a
 * write that cannot finish; end of input. */
#include "virtio/console.h"

#include <errno.h>
#include <fcntl.h>

#include "core/loop.h"
#include "test.h"
#include "util/util.h"
#include "vdriver.h"

#define RX_RING 0x10000ull
#define TX_RING 0x20000ull
#define RX_BUF	0x40000ull /* + 0x100 per buffer */
#define TX_BUF	0x50000ull
#define QSIZE	16

static struct fake_ram f;
static struct loop loop;
static struct virtio_console con;
static struct fring rx, tx;
static int in[2], out[2];
static _Atomic int filtered;

/* Drops every 'Z', as the Ctrl-A escape drops its bytes. */
static size_t drop_z(void *ctx, const uint8_t *src, size_t n, uint8_t *dst)
{
	size_t o = 0;

	filtered++;
	for (size_t i = 0; i < n; i++)
		if (src[i] != 'Z')
			dst[o++] = src[i];
	return o;
}

static void post_rx(uint16_t i, uint32_t len)
{
	fring_desc(&rx, i, RX_BUF + i * 0x100, len, VRING_DESC_F_WRITE, 0);
	fring_publish(&rx, i);
}

static bool rx_take(char *buf, size_t size, uint16_t *id_out)
{
	uint32_t id, len;

	if (!fring_wait_used(&rx, &id, &len, 3000))
		return false;
	CHECK(len < size);
	memcpy(buf, gpa(&f, RX_BUF + id * 0x100), len);
	buf[len] = 0;
	if (id_out)
		*id_out = (uint16_t)id;
	return true;
}

/* Reads what is in the output pipe (waits up to 3 s for (want) bytes). */
static size_t out_read(char *buf, size_t want)
{
	size_t got = 0;
	uint64_t end = now_ms() + 3000;

	while (got < want && now_ms() < end) {
		ssize_t n = read(out[0], buf + got, want - got);

		if (n > 0)
			got += (size_t)n;
		else
			usleep(500);
	}
	buf[got] = 0;
	return got;
}

static void setup(uint64_t features)
{
	struct virtio_mmio *t = &con.mmio;

	CHECK(drv_features(t, features) & VIRTIO_STATUS_FEATURES_OK);
	fring_init(&rx, &f, RX_RING, QSIZE);
	fring_init(&tx, &f, TX_RING, QSIZE);
	drv_queue(t, 0, QSIZE, rx.desc_gpa, rx.avail_gpa, rx.used_gpa);
	drv_queue(t, 1, QSIZE, tx.desc_gpa, tx.avail_gpa, tx.used_gpa);
}

static void tx_send(uint16_t head, const char *a, const char *b)
{
	size_t la = strlen(a), lb = b ? strlen(b) : 0;

	memcpy(gpa(&f, TX_BUF + head * 0x100), a, la);
	fring_desc(&tx, head, TX_BUF + head * 0x100, (uint32_t)la, b ? VRING_DESC_F_NEXT : 0,
		   (uint16_t)(head + 1));
	if (b) {
		memcpy(gpa(&f, TX_BUF + (head + 1) * 0x100), b, lb);
		fring_desc(&tx, head + 1, TX_BUF + (head + 1) * 0x100, (uint32_t)lb, 0, 0);
	}
	fring_publish(&tx, head);
	kick(&con.mmio, 1);
}

int main(void)
{
	struct virtio_mmio *t = &con.mmio;
	char buf[70000];
	uint32_t id, len;
	uint16_t rid;

	if (loop_init(&loop, 64))
		return t_skip("io_uring unavailable");
	/* Every SQE the device submits names a registered file (or none, flagged anyway). */
	loop_require_fixed_files(&loop);
	CHECK_EQ(fake_ram_init(&f), 0);
	CHECK_EQ(pipe(in), 0);
	CHECK_EQ(pipe2(out, O_NONBLOCK), 0);
	fcntl(out[1], F_SETFL, 0); /* the device's end blocks; the test's end does not */
	CHECK_EQ(virtio_console_init(&con, "unit-console", in[0], out[1], drop_z, NULL, &f.mem,
				     &loop),
		 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_CONSOLE);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG + 4, 4), 1); /* max_nr_ports */
	CHECK_EQ(loop_start(&loop), 0);

	/* Input before the driver is ready waits in the host buffer. */
	CHECK_EQ(write(in[1], "eaZrly", 6), 6);
	usleep(20000);
	CHECK_EQ(filtered, 1);
	setup(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	post_rx(0, 4);
	post_rx(1, 4);
	irq_count(t);
	drv_ok(t);
	/* "early" (the Z filtered out) over two 4-byte buffers. */
	CHECK(rx_take(buf, sizeof(buf), &rid));
	CHECK_EQ(rid, 0);
	CHECK_STR(buf, "earl");
	CHECK(rx_take(buf, sizeof(buf), &rid));
	CHECK_EQ(rid, 1);
	CHECK_STR(buf, "y");
	CHECK(wait_irq(t, 3000));
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_USED);
	reg_wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_USED);

	/* More input than buffers: it waits for the next buffer, in order. */
	CHECK_EQ(write(in[1], "0123456789", 10), 10);
	post_rx(2, 4);
	kick(t, 0);
	CHECK(rx_take(buf, sizeof(buf), NULL));
	CHECK_STR(buf, "0123");
	usleep(20000);
	CHECK(!fring_used(&rx, &id, &len));
	post_rx(3, 64);
	kick(t, 0);
	CHECK(rx_take(buf, sizeof(buf), NULL));
	CHECK_STR(buf, "456789");

	/* Output: a two-segment chain comes out whole, then a second one after it. */
	tx_send(0, "hello ", "world\n");
	tx_send(2, "second\n", NULL);
	CHECK_EQ(out_read(buf, 19), 19);
	CHECK_STR(buf, "hello world\nsecond\n");
	CHECK(fring_wait_used(&tx, &id, &len, 3000));
	CHECK_EQ(id, 0);
	CHECK_EQ(len, 0);
	CHECK(fring_wait_used(&tx, &id, &len, 3000));
	CHECK_EQ(id, 2);
	/* An empty chain is returned at once. */
	fring_desc(&tx, 4, TX_BUF, 0, 0, 0);
	fring_publish(&tx, 4);
	kick(t, 1);
	CHECK(fring_wait_used(&tx, &id, &len, 3000));
	CHECK_EQ(id, 4);

	/* A non-blocking output pipe that is full: the device waits for room, then writes. */
	fcntl(out[1], F_SETFL, O_NONBLOCK);
	size_t flood = 0;
	ssize_t n;
	while ((n = write(out[1], buf, sizeof(buf))) > 0)
		flood += (size_t)n;
	tx_send(5, "after the flood\n", NULL);
	usleep(50000);
	CHECK(!fring_used(&tx, &id, &len));
	/* Drain exactly the flood: the device may write its line as soon as there is room, and
	 * it must come out after the flood, whole. */
	while (flood) {
		size_t chunk = flood < sizeof(buf) - 1 ? flood : sizeof(buf) - 1;
		size_t got = out_read(buf, chunk);

		if (!got)
			break;
		flood -= got;
	}
	CHECK_EQ(flood, 0);
	CHECK(fring_wait_used(&tx, &id, &len, 3000));
	CHECK_EQ(id, 5);
	CHECK_EQ(out_read(buf, 16), 16);
	CHECK_STR(buf, "after the flood\n");
	fcntl(out[1], F_SETFL, 0);

	/* A malformed transmit chain: NEEDS_RESET. */
	fring_desc(&tx, 6, TX_BUF, 4, VRING_DESC_F_NEXT, 6);
	fring_publish(&tx, 6);
	kick(t, 1);
	CHECK(wait_status(t, VIRTIO_STATUS_NEEDS_RESET, 3000));

	/* A reset while a write cannot finish (a full, blocking pipe): it is cancelled. */
	setup(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	drv_ok(t);
	fcntl(out[1], F_SETFL, O_NONBLOCK);
	while (write(out[1], buf, sizeof(buf)) > 0)
		;
	fcntl(out[1], F_SETFL, 0);
	tx_send(0, "stuck\n", NULL);
	usleep(50000);
	CHECK(con.tx_busy);
	{
		uint64_t t0 = now_ms();

		reg_wr(t, VIRTIO_MMIO_STATUS, 0);
		CHECK(now_ms() - t0 < 2000);
	}
	CHECK(!con.tx_busy);
	CHECK(!fring_used(&tx, &id, &len));
	while (read(out[0], buf, sizeof(buf)) > 0)
		;

	/* Working again after the reset, with EVENT_IDX. */
	setup(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	post_rx(0, 64);
	drv_ok(t);
	CHECK_EQ(write(in[1], "again", 5), 5);
	CHECK(rx_take(buf, sizeof(buf), NULL));
	CHECK_STR(buf, "again");
	tx_send(1, "out again\n", NULL);
	CHECK_EQ(out_read(buf, 10), 10);
	CHECK_STR(buf, "out again\n");

	/* End of input: no more reads, the device keeps working. */
	close(in[1]);
	usleep(20000);
	CHECK(con.eof);
	tx_send(2, "bye\n", NULL);
	CHECK_EQ(out_read(buf, 4), 4);

	loop_join(&loop);
	loop_fini(&loop);
	virtio_console_fini(&con);
	close(in[0]);
	close(out[0]);
	close(out[1]);
	fake_ram_fini(&f);
	return t_done();
}
