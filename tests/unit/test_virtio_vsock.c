/* test_virtio_vsock.c: virtio-vsock over a real I/O loop, the fake driver as the guest and
 * real Unix sockets as the host: the host's "CONNECT <port>" handshake and "OK <hostport>",
 * the guest's REQUEST to PATH_port, data both ways, credit in both directions (a stall on the
 * guest's credit with CREDIT_REQUEST, CREDIT_UPDATE from the device, RST past mvm's credit),
 * RST and close from each side, many connections at once, hostile packets (bad CID, bad op,
 * a length beyond the buffer, a chain shorter than a header, a packet of no connection), a
 * host peer that sends garbage, and a driver reset that closes every host socket. */
#include "virtio/vsock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/loop.h"
#include "test.h"
#include "util/util.h"
#include "vdriver.h"

#define RX_RING	   0x10000ull
#define TX_RING	   0x20000ull
#define EV_RING	   0x30000ull
#define RX_BUF	   0x100000ull /* + RX_STRIDE per buffer */
#define RX_STRIDE  0x2000u
#define RX_LEN	   (4096u + 44u)
#define TX_HDR	   0x40000ull /* + 64 per descriptor pair */
#define TX_DATA	   0x200000ull
#define QSIZE	   64
#define HOST_PORT0 (1u << 30)
#define CID	   3

static struct fake_ram f;
static struct loop loop;
static struct virtio_vsock *v;
static struct fring rx, tx, ev;
static char dir[32], path[64];
static uint16_t tx_next;
static unsigned int tx_outstanding; /* published, not yet used */

struct pkt {
	struct virtio_vsock_hdr h;
	uint8_t data[4096];
	uint32_t len; /* payload bytes */
};

static void post_rx(uint16_t i)
{
	fring_desc(&rx, i, RX_BUF + (uint64_t)i * RX_STRIDE, RX_LEN, VRING_DESC_F_WRITE, 0);
	fring_publish(&rx, i);
}

/* The next packet on the receive queue within (ms); its buffer is posted again. */
static bool rx_get(struct pkt *p, unsigned int ms)
{
	uint32_t id, len;

	if (!fring_wait_used(&rx, &id, &len, ms))
		return false;
	if (id >= QSIZE || len < sizeof(p->h) || len > RX_LEN) {
		fprintf(stderr, "bad rx used entry id %u len %u\n", id, len);
		return false;
	}
	memcpy(&p->h, gpa(&f, RX_BUF + (uint64_t)id * RX_STRIDE), sizeof(p->h));
	p->len = len - (uint32_t)sizeof(p->h);
	CHECK_EQ(p->len, p->h.len);
	memcpy(p->data, gpa(&f, RX_BUF + (uint64_t)id * RX_STRIDE + sizeof(p->h)), p->len);
	post_rx((uint16_t)id);
	kick(&v->mmio, VIRTIO_VSOCK_RX_QUEUE);
	return true;
}

/* The next packet other than a CREDIT_UPDATE (the device sends those when it likes). */
static bool rx_get_nc(struct pkt *p, unsigned int ms)
{
	while (rx_get(p, ms))
		if (p->h.op != VIRTIO_VSOCK_OP_CREDIT_UPDATE)
			return true;
	return false;
}

static void set_hdr(struct virtio_vsock_hdr *h, uint32_t src_port, uint32_t dst_port, uint16_t op,
		    uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = CID;
	h->dst_cid = VIRTIO_VSOCK_HOST_CID;
	h->src_port = src_port;
	h->dst_port = dst_port;
	h->len = len;
	h->type = VIRTIO_VSOCK_TYPE_STREAM;
	h->op = op;
	h->buf_alloc = buf_alloc;
	h->fwd_cnt = fwd_cnt;
}

/* Publishes a packet: header descriptor (hdr_len bytes of h) and, with (n), a payload
 * descriptor of (n) bytes from (data). Does not kick. */
static void tx_publish(const struct virtio_vsock_hdr *h, uint32_t hdr_len, const void *data,
		       uint32_t n, uint64_t data_gpa)
{
	uint16_t d = tx_next;

	tx_next = (uint16_t)((tx_next + 2) % QSIZE);
	memcpy(gpa(&f, TX_HDR + d * 64u), h, hdr_len);
	fring_desc(&tx, d, TX_HDR + d * 64u, hdr_len, n ? VRING_DESC_F_NEXT : 0, (uint16_t)(d + 1));
	if (n) {
		if (data)
			memcpy(gpa(&f, data_gpa), data, n);
		fring_desc(&tx, (uint16_t)(d + 1), data_gpa, n, 0, 0);
	}
	fring_publish(&tx, d);
	tx_outstanding++;
}

/* Waits until the device used every published packet (it copies what it keeps). */
static bool tx_wait(void)
{
	uint32_t id, len;

	while (tx_outstanding) {
		if (!fring_wait_used(&tx, &id, &len, 3000))
			return false;
		tx_outstanding--;
	}
	return true;
}

/* Sends one packet and waits until the device used it. */
static void tx_send(uint32_t src_port, uint32_t dst_port, uint16_t op, const void *data, uint32_t n,
		    uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct virtio_vsock_hdr h;

	set_hdr(&h, src_port, dst_port, op, n, buf_alloc, fwd_cnt);
	tx_publish(&h, sizeof(h), data, n, TX_DATA);
	kick(&v->mmio, VIRTIO_VSOCK_TX_QUEUE);
	CHECK(tx_wait());
}

static int host_connect(const char *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("connect");
		return -1;
	}
	return fd;
}

static int host_listen(uint32_t port)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", path, port);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 8)) {
		perror("listen");
		return -1;
	}
	return fd;
}

/* Reads exactly (n) bytes within 3 s; returns how many came (fewer at EOF). */
static size_t host_read(int fd, void *buf, size_t n)
{
	size_t got = 0;
	uint64_t end = now_ms() + 3000;

	while (got < n && now_ms() < end) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* True if the host socket reaches EOF (or an error) within 3 s, with no data before it. */
static bool host_eof(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c;

	if (poll(&pfd, 1, 3000) != 1)
		return false;
	return read(fd, &c, 1) <= 0;
}

static void write_all(int fd, const void *buf, size_t n)
{
	CHECK_EQ(write(fd, buf, n), n);
}

/* The host connects and asks for guest port (port); the guest accepts with (buf_alloc).
 * Returns the host's socket and the device's port in (*hport). */
static int host_open(uint32_t port, uint32_t buf_alloc, uint32_t *hport)
{
	char line[64], want[64];
	struct pkt p;
	int fd = host_connect(path);

	snprintf(line, sizeof(line), "CONNECT %u\n", port);
	write_all(fd, line, strlen(line));
	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	CHECK_EQ(p.h.src_cid, VIRTIO_VSOCK_HOST_CID);
	CHECK_EQ(p.h.dst_cid, CID);
	CHECK_EQ(p.h.dst_port, port);
	CHECK_EQ(p.h.type, VIRTIO_VSOCK_TYPE_STREAM);
	CHECK_EQ(p.h.buf_alloc, VIRTIO_VSOCK_BUF);
	CHECK(p.h.src_port >= HOST_PORT0);
	*hport = p.h.src_port;
	tx_send(port, *hport, VIRTIO_VSOCK_OP_RESPONSE, NULL, 0, buf_alloc, 0);
	snprintf(want, sizeof(want), "OK %u\n", *hport);
	memset(line, 0, sizeof(line));
	CHECK_EQ(host_read(fd, line, strlen(want)), strlen(want));
	CHECK_STR(line, want);
	return fd;
}

/* Expects an RST for (guest_port, host_port) next (credit updates aside). */
static void expect_rst(uint32_t guest_port, uint32_t host_port)
{
	struct pkt p;

	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RST);
	CHECK_EQ(p.h.dst_port, guest_port);
	CHECK_EQ(p.h.src_port, host_port);
	CHECK_EQ(p.h.dst_cid, CID);
}

static void expect_quiet(unsigned int ms)
{
	struct pkt p;

	CHECK(!rx_get_nc(&p, ms));
}

static void setup(void)
{
	struct virtio_mmio *t = &v->mmio;

	CHECK(drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1)) & VIRTIO_STATUS_FEATURES_OK);
	fring_init(&rx, &f, RX_RING, QSIZE);
	fring_init(&tx, &f, TX_RING, QSIZE);
	fring_init(&ev, &f, EV_RING, QSIZE);
	tx_next = 0;
	tx_outstanding = 0;
	drv_queue(t, 0, QSIZE, rx.desc_gpa, rx.avail_gpa, rx.used_gpa);
	drv_queue(t, 1, QSIZE, tx.desc_gpa, tx.avail_gpa, tx.used_gpa);
	drv_queue(t, 2, QSIZE, ev.desc_gpa, ev.avail_gpa, ev.used_gpa);
	for (uint16_t i = 0; i < QSIZE; i++)
		post_rx(i);
	drv_ok(t);
}

static void test_host_to_guest(void)
{
	struct pkt p;
	uint32_t hport;
	char buf[64] = {0};
	int fd = host_open(5000, 1 << 20, &hport);

	/* Data after the handshake, both ways. */
	write_all(fd, "ping", 4);
	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RW);
	CHECK_EQ(p.h.len, 4);
	CHECK(!memcmp(p.data, "ping", 4));
	tx_send(5000, hport, VIRTIO_VSOCK_OP_RW, "pong", 4, 1 << 20, 4);
	CHECK_EQ(host_read(fd, buf, 4), 4);
	CHECK_STR(buf, "pong");
	/* The guest asks for credit: a CREDIT_UPDATE says the 4 bytes went on. */
	tx_send(5000, hport, VIRTIO_VSOCK_OP_CREDIT_REQUEST, NULL, 0, 1 << 20, 4);
	CHECK(rx_get(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	CHECK_EQ(p.h.fwd_cnt, 4);
	CHECK_EQ(p.h.buf_alloc, VIRTIO_VSOCK_BUF);

	/* The host closes: SHUTDOWN(SEND) to the guest; the guest's next write has nowhere to
	 * go: RST. */
	close(fd);
	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	CHECK_EQ(p.h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	tx_send(5000, hport, VIRTIO_VSOCK_OP_RW, "late", 4, 1 << 20, 4);
	expect_rst(5000, hport);
}

/* Bytes the host sent and the guest's CONNECT line in one write: the bytes wait for the
 * guest's credit and follow the handshake. */
static void test_host_credit(void)
{
	char data[300];
	struct pkt p;
	uint32_t hport;
	int fd;

	for (unsigned int i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	fd = host_open(5001, 100, &hport);
	write_all(fd, data, sizeof(data));
	/* The guest gave 100 bytes of credit: 100 come, then a CREDIT_REQUEST, then nothing. */
	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RW);
	CHECK_EQ(p.h.len, 100);
	CHECK(!memcmp(p.data, data, 100));
	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_CREDIT_REQUEST);
	expect_quiet(100);
	/* The guest read 100: its CREDIT_UPDATE lets 100 more through. */
	tx_send(5001, hport, VIRTIO_VSOCK_OP_CREDIT_UPDATE, NULL, 0, 100, 100);
	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RW);
	CHECK_EQ(p.h.len, 100);
	CHECK(!memcmp(p.data, data + 100, 100));
	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_CREDIT_REQUEST);
	/* A credit update beyond what was sent is a protocol violation. */
	tx_send(5001, hport, VIRTIO_VSOCK_OP_CREDIT_UPDATE, NULL, 0, 100, 5000);
	expect_rst(5001, hport);
	CHECK(host_eof(fd));
	close(fd);
}

static void test_guest_to_host(void)
{
	static uint8_t big[2][VIRTIO_VSOCK_MAX_PKT];
	struct pkt p;
	char buf[64] = {0};
	bool updated = false;
	int lfd = host_listen(6000), fd;

	/* A port with no socket behind it: RST. */
	tx_send(7000, 6001, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 1 << 20, 0);
	expect_rst(7000, 6001);

	tx_send(7000, 6000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 1 << 20, 0);
	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RESPONSE);
	CHECK_EQ(p.h.src_port, 6000);
	CHECK_EQ(p.h.dst_port, 7000);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(fd >= 0);
	tx_send(7000, 6000, VIRTIO_VSOCK_OP_RW, "hello", 5, 1 << 20, 0);
	CHECK_EQ(host_read(fd, buf, 5), 5);
	CHECK_STR(buf, "hello");
	write_all(fd, "world", 5);
	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RW);
	CHECK(p.h.len == 5 && !memcmp(p.data, "world", 5));

	/* Two full packets use up the credit the device gave (buf_alloc 128 KiB less the 5
	 * bytes); once the host took them, the device says so with a CREDIT_UPDATE. */
	memset(big[0], 'x', sizeof(big[0]));
	memset(big[1], 'y', sizeof(big[1]));
	tx_send(7000, 6000, VIRTIO_VSOCK_OP_RW, big[0], sizeof(big[0]), 1 << 20, 5);
	tx_send(7000, 6000, VIRTIO_VSOCK_OP_RW, big[1], sizeof(big[1]) - 5, 1 << 20, 5);
	{
		static uint8_t got[2 * VIRTIO_VSOCK_MAX_PKT];

		CHECK_EQ(host_read(fd, got, sizeof(got) - 5), sizeof(got) - 5);
		CHECK(got[0] == 'x' && got[VIRTIO_VSOCK_MAX_PKT] == 'y');
	}
	while (!updated && rx_get(&p, 3000))
		updated = p.h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE &&
			  p.h.fwd_cnt == 2 * VIRTIO_VSOCK_MAX_PKT;
	CHECK(updated);

	/* Past the credit: three full packets in one batch are 192 KiB for 128 KiB: RST, and
	 * the host socket closes. */
	for (int i = 0; i < 3; i++) {
		struct virtio_vsock_hdr h;

		set_hdr(&h, 7000, 6000, VIRTIO_VSOCK_OP_RW, VIRTIO_VSOCK_MAX_PKT, 1 << 20, 5);
		tx_publish(&h, sizeof(h), NULL, VIRTIO_VSOCK_MAX_PKT,
			   TX_DATA + (uint64_t)i * VIRTIO_VSOCK_MAX_PKT);
	}
	kick(&v->mmio, VIRTIO_VSOCK_TX_QUEUE);
	CHECK(tx_wait());
	expect_rst(7000, 6000);
	{
		static uint8_t sink[4 * VIRTIO_VSOCK_MAX_PKT];

		CHECK(host_read(fd, sink, sizeof(sink)) <= 2 * VIRTIO_VSOCK_MAX_PKT);
	}
	close(fd);

	/* A connection the guest resets: the host peer sees the end. */
	tx_send(7001, 6000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 1 << 20, 0);
	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RESPONSE);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	tx_send(7001, 6000, VIRTIO_VSOCK_OP_RST, NULL, 0, 1 << 20, 0);
	CHECK(host_eof(fd));
	close(fd);
	expect_quiet(50); /* no RST for an RST */

	/* A guest that shuts down both ways after its data: the host reads it all, then the
	 * end, and the device answers with RST (section 5.10.6.5). */
	tx_send(7002, 6000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0, 1 << 20, 0);
	CHECK(rx_get_nc(&p, 3000));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RESPONSE);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	tx_send(7002, 6000, VIRTIO_VSOCK_OP_RW, "bye", 3, 1 << 20, 0);
	{
		struct virtio_vsock_hdr h;

		set_hdr(&h, 7002, 6000, VIRTIO_VSOCK_OP_SHUTDOWN, 0, 1 << 20, 0);
		h.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
		tx_publish(&h, sizeof(h), NULL, 0, 0);
		kick(&v->mmio, VIRTIO_VSOCK_TX_QUEUE);
		CHECK(tx_wait());
	}
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(host_read(fd, buf, sizeof(buf)), 3);
	CHECK_STR(buf, "bye");
	expect_rst(7002, 6000);
	close(fd);
	close(lfd);
}

static void test_many(void)
{
	enum { N = 20 };
	int fds[N];
	uint32_t hports[N];

	/* Twenty host connections open at once, each to its own guest port. */
	for (unsigned int i = 0; i < N; i++)
		fds[i] = host_open(100 + i, 1 << 20, &hports[i]);
	for (unsigned int i = 0; i < N; i++) {
		char msg[16];

		snprintf(msg, sizeof(msg), "msg %02u", i);
		write_all(fds[i], msg, strlen(msg));
	}
	/* The guest echoes each message, upper-cased, on the connection it came on. */
	for (unsigned int n = 0; n < N; n++) {
		struct pkt p;

		CHECK(rx_get_nc(&p, 3000));
		CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RW);
		CHECK(p.h.dst_port >= 100 && p.h.dst_port < 100 + N);
		CHECK_EQ(p.h.src_port, hports[p.h.dst_port - 100]);
		p.data[0] = 'M';
		tx_send(p.h.dst_port, p.h.src_port, VIRTIO_VSOCK_OP_RW, p.data, p.len, 1 << 20, 6);
	}
	for (unsigned int i = 0; i < N; i++) {
		char buf[16] = {0}, want[16];

		snprintf(want, sizeof(want), "Msg %02u", i);
		CHECK_EQ(host_read(fds[i], buf, strlen(want)), strlen(want));
		CHECK_STR(buf, want);
	}
	/* A driver reset ends them all: every host socket sees the end. */
	reg_wr(&v->mmio, VIRTIO_MMIO_STATUS, 0);
	for (unsigned int i = 0; i < N; i++) {
		CHECK(host_eof(fds[i]));
		close(fds[i]);
	}
	setup();
}

static void test_hostile(void)
{
	struct virtio_vsock_hdr h;
	int fd;

	/* A wrong source CID, a wrong destination CID, a datagram type, an unknown op, a
	 * length beyond the buffer, a length beyond the largest packet: RST each. */
	set_hdr(&h, 8000, 9000, VIRTIO_VSOCK_OP_REQUEST, 0, 4096, 0);
	h.src_cid = 99;
	tx_publish(&h, sizeof(h), NULL, 0, 0);
	set_hdr(&h, 8001, 9000, VIRTIO_VSOCK_OP_REQUEST, 0, 4096, 0);
	h.dst_cid = 7;
	tx_publish(&h, sizeof(h), NULL, 0, 0);
	set_hdr(&h, 8002, 9000, VIRTIO_VSOCK_OP_REQUEST, 0, 4096, 0);
	h.type = 2;
	tx_publish(&h, sizeof(h), NULL, 0, 0);
	set_hdr(&h, 8003, 9000, 42, 0, 4096, 0);
	tx_publish(&h, sizeof(h), NULL, 0, 0);
	set_hdr(&h, 8004, 9000, VIRTIO_VSOCK_OP_REQUEST, 1000, 4096, 0);
	tx_publish(&h, sizeof(h), NULL, 10, TX_DATA);
	kick(&v->mmio, VIRTIO_VSOCK_TX_QUEUE);
	CHECK(tx_wait());
	for (uint32_t port = 8000; port <= 8004; port++)
		expect_rst(port, 9000);
	/* On a live connection, an unknown op and a length beyond the descriptor: RST, and the
	 * host peer's socket closes. */
	{
		uint32_t hport;

		fd = host_open(5100, 1 << 20, &hport);
		tx_send(5100, hport, 0, NULL, 0, 1 << 20, 0);
		expect_rst(5100, hport);
		CHECK(host_eof(fd));
		close(fd);
		fd = host_open(5101, 1 << 20, &hport);
		set_hdr(&h, 5101, hport, VIRTIO_VSOCK_OP_RW, 1000, 1 << 20, 0);
		tx_publish(&h, sizeof(h), "0123456789", 10, TX_DATA);
		kick(&v->mmio, VIRTIO_VSOCK_TX_QUEUE);
		CHECK(tx_wait());
		expect_rst(5101, hport);
		CHECK(host_eof(fd));
		close(fd);
	}
	/* A header split over two descriptors (20 + 24 bytes) is one header: this RW names no
	 * connection, and the RST names its ports. */
	set_hdr(&h, 8007, 9000, VIRTIO_VSOCK_OP_RW, 0, 4096, 0);
	tx_publish(&h, 20, (const uint8_t *)&h + 20, sizeof(h) - 20, TX_DATA);
	kick(&v->mmio, VIRTIO_VSOCK_TX_QUEUE);
	CHECK(tx_wait());
	expect_rst(8007, 9000);
	/* Data for a connection that does not exist: RST. */
	tx_send(8005, 9000, VIRTIO_VSOCK_OP_RW, "x", 1, 4096, 0);
	expect_rst(8005, 9000);
	/* A chain shorter than a header (the start of a valid REQUEST): dropped, no answer;
	 * the device goes on. */
	set_hdr(&h, 8006, 9000, VIRTIO_VSOCK_OP_REQUEST, 0, 4096, 0);
	tx_publish(&h, 20, NULL, 0, 0);
	kick(&v->mmio, VIRTIO_VSOCK_TX_QUEUE);
	CHECK(tx_wait());
	expect_quiet(100);
	CHECK(!(reg_rd(&v->mmio, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET));

	/* A host peer that sends garbage instead of CONNECT is closed; the guest hears
	 * nothing of it. So is one whose line never ends, and one with a bad port. */
	fd = host_connect(path);
	write_all(fd, "GET / HTTP/1.0\n", 15);
	CHECK(host_eof(fd));
	close(fd);
	fd = host_connect(path);
	write_all(fd, "CONNECT 123456789012345678901234567890", 38);
	CHECK(host_eof(fd));
	close(fd);
	fd = host_connect(path);
	write_all(fd, "connect 5000\n", 13);
	CHECK(host_eof(fd));
	close(fd);
	fd = host_connect(path);
	write_all(fd, "CONNECT 99999999999\n", 20);
	CHECK(host_eof(fd));
	close(fd);
	expect_quiet(100);
}

int main(void)
{
	struct virtio_mmio *t;
	char *slash;

	if (loop_init(&loop, 256))
		return t_skip("io_uring unavailable");
	CHECK_EQ(fake_ram_init(&f), 0);
	snprintf(dir, sizeof(dir), "/tmp/mvm-vsock-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	v = virtio_vsock_create("unit-vsock", CID, path, &f.mem, &loop);
	CHECK(v != NULL);
	if (!v)
		return t_done();
	/* The path exists now, and a second device cannot take it. */
	CHECK(!access(path, F_OK));
	CHECK(virtio_vsock_create("unit-vsock 2", CID, path, &f.mem, &loop) == NULL);
	t = &v->mmio;
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_VSOCK);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG, 4), CID);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG + 4, 4), 0);
	CHECK_EQ(loop_start(&loop), 0);
	setup();

	test_host_to_guest();
	test_host_credit();
	test_guest_to_host();
	test_many();
	test_hostile();

	loop_join(&loop);
	loop_fini(&loop);
	virtio_vsock_destroy(v);
	CHECK(access(path, F_OK) && errno == ENOENT);
	slash = strrchr(path, '/');
	*slash = 0;
	{
		char p6000[160];

		snprintf(p6000, sizeof(p6000), "%s/v.sock_6000", dir);
		unlink(p6000);
	}
	rmdir(dir);
	fake_ram_fini(&f);
	return t_done();
}
