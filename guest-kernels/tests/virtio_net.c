/* virtio_net.c: a minimal virtio-net driver (one RX and one TX queue, polled, no offloads) and
 * a virtio-rng check, for the e2e tests that run mvm on a TAP inside a private network
 * namespace.
 *
 * Prints "MAC xx:xx:xx:xx:xx:xx" (from config space), sends a broadcast Ethernet frame of type
 * 0x88b5 (local experimental) with payload "mvm-guest-frame", waits for a frame of that type
 * from the host, prints "NET-RX: <payload>" and answers "mvm-guest-echo:<payload>". Then reads
 * 64 bytes from virtio-rng if there is one. PASS lines: net-found, net-setup, net-link, net-tx,
 * net-rx, net-echo, rng-read (or SKIP rng when --no-rng). Exits 0 on success.
 * Command line: rx_ms=N bounds the wait for the host's frame (default 20000).
 *
 * bench=1 [bench_ms=N]: instead, measures (polled, no interrupts) for N ms each (default 3000):
 *   echo-qdW frames of type 0x88b6 that the host's echo (bench/net_echo.py) returns as 0x88b7,
 *            W = 1 and 16 outstanding: round trips through the VMM both ways;
 *   tx       1514-byte frames of type 0x88b5 (which the host drops), 64 in flight.
 * and prints "BENCH <name> frames=F ms=M" for each. */
#include "guest.h"
#include "virtio.h"

#define QSIZE	  16
#define RX_BUFS	  8
#define BUF_BYTES 2048
#define HDR	  12
#define ETH_TYPE  0x88b5
#define TX_MS	  2000
#define ETH_ECHO_REQUEST 0x88b6
#define ETH_ECHO_REPLY	 0x88b7

#define VIRTIO_NET_F_MAC    5
#define VIRTIO_NET_F_STATUS 16

static struct virtio_dev dev;
static struct virtq rxq, txq;
static uint8_t rx_ring[VIRTQ_MEM(QSIZE)] __attribute__((aligned(4096)));
static uint8_t tx_ring[VIRTQ_MEM(QSIZE)] __attribute__((aligned(4096)));
static uint8_t rx_buf[RX_BUFS][BUF_BYTES];
static uint8_t tx_hdr[HDR];
static uint8_t tx_frame[BUF_BYTES];
static uint8_t mac[6];

static void post_rx(uint16_t i)
{
	rxq.desc[i] = (struct vring_desc){(uint64_t)(uintptr_t)rx_buf[i], BUF_BYTES,
					  VRING_DESC_F_WRITE, 0};
	virtq_publish(&rxq, i);
}

/* Sends header + frame as a two-descriptor chain and waits for it to be used. */
static bool transmit(const char *payload)
{
	size_t n = strlen(payload);

	memset(tx_frame, 0xff, 6);		/* broadcast */
	memcpy(tx_frame + 6, mac, 6);
	tx_frame[12] = ETH_TYPE >> 8;
	tx_frame[13] = ETH_TYPE & 0xff;
	memcpy(tx_frame + 14, payload, n);
	memset(tx_hdr, 0, HDR);
	txq.desc[0] = (struct vring_desc){(uint64_t)(uintptr_t)tx_hdr, HDR, VRING_DESC_F_NEXT, 1};
	txq.desc[1] = (struct vring_desc){(uint64_t)(uintptr_t)tx_frame, (uint32_t)(14 + n), 0, 0};
	return virtq_submit_wait(&txq, 0, TX_MS);
}

/* Waits for a frame of our type; copies its payload (NUL-terminated) into (out). Other frames
 * (the host's IPv6 neighbour discovery, say) are skipped and their buffers reposted. */
static bool receive(char *out, size_t size, unsigned int ms)
{
	struct pit_clock clk;

	pit_clock_start(&clk);
	while (pit_clock_ms(&clk) < ms) {
		uint32_t id, len;
		const uint8_t *f;

		if (!virtq_get_used(&rxq, &id, &len))
			continue;
		if (id >= RX_BUFS || len > BUF_BYTES)
			return false;
		f = rx_buf[id] + HDR;
		if (len >= HDR + 14 && f[12] == (ETH_TYPE >> 8) && f[13] == (ETH_TYPE & 0xff)) {
			size_t n = len - HDR - 14, k = 0;

			for (size_t i = 0; i < n && k + 1 < size; i++)
				if (f[14 + i] >= 0x20 && f[14 + i] < 0x7f)
					out[k++] = (char)f[14 + i];
			out[k] = 0;
			printf("num_buffers %u\n", rx_buf[id][10] | rx_buf[id][11] << 8);
			post_rx((uint16_t)id);
			virtq_kick(&rxq);
			return true;
		}
		post_rx((uint16_t)id);
		virtq_kick(&rxq);
	}
	return false;
}

static void check_rng(void)
{
	static struct virtio_dev rng;
	static struct virtq q;
	static uint8_t ring[VIRTQ_MEM(QSIZE)] __attribute__((aligned(4096)));
	static uint8_t buf[64];
	struct pit_clock clk;
	uint32_t id, len = 0;
	bool got = false, nonzero = false;

	if (!virtio_find(4, 0, &rng)) {
		report_skip("rng-read", "no virtio-rng device");
		return;
	}
	if (!virtio_setup(&rng, 0) || !virtq_setup(&rng, &q, 0, QSIZE, ring)) {
		report("rng-read", false);
		return;
	}
	virtio_driver_ok(&rng);
	q.desc[0] = (struct vring_desc){(uint64_t)(uintptr_t)buf, sizeof(buf), VRING_DESC_F_WRITE,
					0};
	virtq_publish(&q, 0);
	virtq_kick(&q);
	pit_clock_start(&clk);
	while (!got && pit_clock_ms(&clk) < TX_MS)
		got = virtq_get_used(&q, &id, &len);
	for (unsigned int i = 0; i < sizeof(buf); i++)
		nonzero |= buf[i] != 0;
	printf("RNG %u bytes\n", len);
	report("rng-read", got && len == sizeof(buf) && nonzero);
	virtio_reset(&rng);
}

/* ---- benchmark (bench=1) ---- */

#define BQ	    64	 /* entries per queue */
#define BENCH_FRAME 1514 /* Ethernet header + 1500 */

static uint8_t bench_rx_ring[VIRTQ_MEM(BQ)] __attribute__((aligned(4096)));
static uint8_t bench_tx_ring[VIRTQ_MEM(BQ)] __attribute__((aligned(4096)));
static uint8_t bench_tx[BQ][HDR + BENCH_FRAME];
static uint8_t bench_rx[BQ][HDR + BENCH_FRAME + 4];
static const uint8_t bench_dst[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

static bool bench_start(void)
{
	if (!virtio_setup(&dev, VIRTIO_BIT(VIRTIO_NET_F_MAC)) ||
	    !virtq_setup(&dev, &rxq, 0, BQ, bench_rx_ring) ||
	    !virtq_setup(&dev, &txq, 1, BQ, bench_tx_ring))
		return false;
	/* Polled: no interrupts wanted (VRING_AVAIL_F_NO_INTERRUPT, no EVENT_IDX). */
	rxq.avail->flags = 1;
	txq.avail->flags = 1;
	for (uint16_t i = 0; i < BQ; i++) {
		rxq.desc[i] = (struct vring_desc){(uint64_t)(uintptr_t)bench_rx[i],
						  sizeof(bench_rx[i]), VRING_DESC_F_WRITE, 0};
		virtq_publish(&rxq, i);
	}
	virtio_driver_ok(&dev);
	virtq_kick(&rxq);
	return true;
}

/* Fills TX slot (i) with a frame of (type) and publishes it. */
static void bench_queue_tx(uint16_t i, uint16_t type)
{
	uint8_t *fr = bench_tx[i] + HDR;

	memset(bench_tx[i], 0, HDR);
	memcpy(fr, bench_dst, 6);
	memcpy(fr + 6, mac, 6);
	fr[12] = (uint8_t)(type >> 8);
	fr[13] = (uint8_t)type;
	txq.desc[i] = (struct vring_desc){(uint64_t)(uintptr_t)bench_tx[i], HDR + BENCH_FRAME, 0,
					  0};
	virtq_publish(&txq, i);
}

static void bench_report(const char *name, uint64_t frames, uint64_t ms, bool ok)
{
	ms = ms ? ms : 1;
	printf("BENCH %s frames=%lu ms=%lu fps=%lu\n", name, frames, ms, frames * 1000 / ms);
	reportf(ok, "bench-%s", name);
}

/* Transmit only: every slot in flight, each completion refilled at once. */
static void bench_tx_only(unsigned int duration_ms)
{
	uint64_t frames = 0, ms = 0;
	unsigned int inflight = 0, polls = 0;
	struct pit_clock clk;
	uint32_t id, len;

	if (!bench_start()) {
		report("bench-tx-setup", false);
		return;
	}
	pit_clock_start(&clk);
	for (uint16_t i = 0; i < BQ; i++, inflight++)
		bench_queue_tx(i, ETH_TYPE);
	virtq_kick(&txq);
	while (inflight) {
		bool kick = false;

		while (virtq_get_used(&txq, &id, &len)) {
			frames++;
			if (ms < duration_ms && id < BQ) {
				bench_queue_tx((uint16_t)id, ETH_TYPE);
				kick = true;
			} else {
				inflight--;
			}
		}
		if (kick)
			virtq_kick(&txq);
		if (++polls % 8 == 0 || kick)
			ms = pit_clock_ms(&clk);
		if (ms > duration_ms + 5000)
			break;
	}
	bench_report("tx", frames, ms, !inflight);
	virtio_reset(&dev);
}

/* Echo: (window) requests outstanding; each reply is counted and answered with a new request.
 * A reply lost on the way (the host's queue overflowing) would shrink the window, so the
 * bench fails if fewer replies than requests came back. */
static void bench_echo(const char *name, unsigned int window, unsigned int duration_ms)
{
	uint16_t free_tx[BQ];
	unsigned int nfree = 0, outstanding = 0, polls = 0;
	uint64_t frames = 0, ms = 0;
	struct pit_clock clk;
	uint32_t id, len;

	if (!bench_start()) {
		reportf(false, "bench-%s-setup", name);
		return;
	}
	for (uint16_t i = 0; i < BQ; i++)
		free_tx[nfree++] = (uint16_t)(BQ - 1 - i);
	pit_clock_start(&clk);
	for (unsigned int w = 0; w < window; w++, outstanding++)
		bench_queue_tx(free_tx[--nfree], ETH_ECHO_REQUEST);
	virtq_kick(&txq);
	while (outstanding) {
		bool kick_tx = false, kick_rx = false;

		while (virtq_get_used(&txq, &id, &len))
			if (id < BQ)
				free_tx[nfree++] = (uint16_t)id;
		while (virtq_get_used(&rxq, &id, &len)) {
			const uint8_t *fr = bench_rx[id % BQ] + HDR;

			if (id < BQ && len >= HDR + 14 && fr[12] == (ETH_ECHO_REPLY >> 8) &&
			    fr[13] == (ETH_ECHO_REPLY & 0xff)) {
				frames++;
				outstanding--;
				if (ms < duration_ms && nfree) {
					bench_queue_tx(free_tx[--nfree], ETH_ECHO_REQUEST);
					outstanding++;
					kick_tx = true;
				}
			}
			virtq_publish(&rxq, (uint16_t)(id % BQ));
			kick_rx = true;
		}
		if (kick_tx)
			virtq_kick(&txq);
		if (kick_rx)
			virtq_kick(&rxq);
		if (++polls % 8 == 0 || kick_tx)
			ms = pit_clock_ms(&clk);
		if (ms > duration_ms + 5000)
			break;
	}
	bench_report(name, frames, ms, !outstanding);
	virtio_reset(&dev);
}

static void run_bench(void)
{
	unsigned int ms = (unsigned int)cmdline_uint("bench_ms", 3000);

	/* tx second: the first bench's VMM CPU also holds start-up (bench/README.md). */
	bench_echo("echo-qd1", 1, ms);
	bench_tx_only(ms);
	bench_echo("echo-qd16", 16, ms);
}

void guest_main(const struct hvm_start_info *si)
{
	char payload[128], msg[160];
	uint32_t w0, w1;
	bool ok;

	(void)si;
	if (!report("net-found", virtio_find(1, 0, &dev)))
		finish();
	ok = virtio_setup(&dev, VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS)) &&
	     (dev.features & VIRTIO_BIT(VIRTIO_NET_F_MAC)) &&
	     virtq_setup(&dev, &rxq, 0, QSIZE, rx_ring) && virtq_setup(&dev, &txq, 1, QSIZE, tx_ring);
	if (ok) {
		for (uint16_t i = 0; i < RX_BUFS; i++)
			post_rx(i);
		virtio_driver_ok(&dev);
		virtq_kick(&rxq);
	}
	if (!report("net-setup", ok))
		finish();
	w0 = virtio_config32(&dev, 0);
	w1 = virtio_config32(&dev, 4);
	for (int i = 0; i < 4; i++)
		mac[i] = (uint8_t)(w0 >> (8 * i));
	mac[4] = (uint8_t)w1;
	mac[5] = (uint8_t)(w1 >> 8);
	printf("MAC %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4],
	       mac[5]);
	report("net-link", (w1 >> 16) & 1);
	if (cmdline_uint("bench", 0)) {
		virtio_reset(&dev);
		run_bench();
		finish();
	}
	report("net-tx", transmit("mvm-guest-frame"));
	if (report("net-rx", receive(payload, sizeof(payload),
				     (unsigned int)cmdline_uint("rx_ms", 20000)))) {
		printf("NET-RX: %s\n", payload);
		snprintf(msg, sizeof(msg), "mvm-guest-echo:%s", payload);
		report("net-echo", transmit(msg));
	}
	virtio_reset(&dev);
	check_rng();
	finish();
}
