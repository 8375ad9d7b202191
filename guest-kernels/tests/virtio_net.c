/* virtio_net.c: a minimal virtio-net driver (one RX and one TX queue, polled, no offloads) and
 * a virtio-rng check, for the e2e tests that run mvm on a TAP inside a private network
 * namespace.
 *
 * Prints "MAC xx:xx:xx:xx:xx:xx" (from config space), sends a broadcast Ethernet frame of type
 * 0x88b5 (local experimental) with payload "mvm-guest-frame", waits for a frame of that type
 * from the host, prints "NET-RX: <payload>" and answers "mvm-guest-echo:<payload>". Then reads
 * 64 bytes from virtio-rng if there is one. PASS lines: net-found, net-setup, net-link, net-tx,
 * net-rx, net-echo, rng-read (or SKIP rng when --no-rng). Exits 0 on success.
 * Command line: rx_ms=N bounds the wait for the host's frame (default 20000). */
#include "guest.h"
#include "virtio.h"

#define QSIZE	  16
#define RX_BUFS	  8
#define BUF_BYTES 2048
#define HDR	  12
#define ETH_TYPE  0x88b5
#define TX_MS	  2000

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
