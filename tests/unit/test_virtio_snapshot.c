/* test_virtio_snapshot.c: a virtio device frozen for a snapshot and rebuilt from its saved
 * transport state (virtio_mmio_freeze/save/load), on virtio-net over a SOCK_SEQPACKET pair, the
 * device whose receive path holds chains ahead of frames: a freeze gives the held chains back
 * to the ring (nothing is lost, nothing taken twice), a frozen device takes no chains, a thaw
 * serves what came meanwhile; a second device loaded from the saved state on a fresh loop
 * continues from the saved indices both ways. Saved states that do not fit (another device,
 * another config space, rings outside RAM, a used index guest RAM contradicts, features the
 * device never offered) are refused, naming why. A virtio-vsock device restored that way
 * sends the driver a transport reset event (its connections stayed with the old host
 * sockets), once, into the event buffer the driver had posted, and sends nothing on the
 * receive queue until the driver has taken it (a new event buffer). */
#include "virtio/net.h"
#include "virtio/vsock.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "test.h"
#include "util/util.h"
#include "vdriver.h"

#define RX_RING 0x10000ull
#define TX_RING 0x20000ull
#define RX_BUF	0x100000ull /* + 0x1000 per buffer */
#define TX_BUF	0x200000ull
#define QSIZE	16
#define HDR	12
#define BUFLEN	512 /* three of them hold a 1518-byte frame and its header (MRG_RXBUF) */

static struct fake_ram f;
static struct fring rx, tx;

static void post_rx(uint16_t i)
{
	memset(gpa(&f, RX_BUF + i * 0x1000ull), 0xee, BUFLEN);
	fring_desc(&rx, i, RX_BUF + i * 0x1000ull, BUFLEN, VRING_DESC_F_WRITE, 0);
	fring_publish(&rx, i);
}

static void host_send(int fd, const char *payload)
{
	uint8_t buf[HDR + 64] = {0};
	size_t n = strlen(payload);

	memcpy(buf + HDR, payload, n);
	CHECK_EQ(send(fd, buf, HDR + n, 0), (ssize_t)(HDR + n));
}

/* The next used entry of the receive ring is buffer (want_id) holding (payload). */
static void check_rx(uint16_t want_id, const char *payload)
{
	uint32_t id = ~0u, len = ~0u;
	const uint8_t *b;

	CHECK(fring_wait_used(&rx, &id, &len, 3000));
	CHECK_EQ(id, want_id);
	CHECK_EQ(len, HDR + strlen(payload));
	b = gpa(&f, RX_BUF + id * 0x1000ull);
	CHECK_EQ(b[10] | b[11] << 8, 1); /* num_buffers */
	CHECK(!memcmp(b + HDR, payload, strlen(payload)));
}

/* (s) with one field spoilt is refused by a load into (t), the reason naming (says). */
static void check_refused(struct virtio_mmio *t, const struct virtio_mmio_state *s, const char *says)
{
	char err[256] = "";

	CHECK_EQ(virtio_mmio_load(t, s, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, says) != NULL);
	if (!strstr(err, says))
		fprintf(stderr, "refusal said '%s', wanted '%s'\n", err, says);
}

#define EV_RING 0x30000ull
#define EV_BUF	0x300000ull

static void vsock_restore_test(void)
{
	char dir[] = "/tmp/mvm-vsnap-XXXXXX", p1[64], p2[64];
	struct virtio_mmio_state *s = malloc(sizeof(*s));
	struct virtio_vsock *v, *v2;
	struct fring q[3];
	struct loop l1, l2;
	uint32_t id, len, ev;
	char err[256] = "";
	struct virtio_vsock_hdr hdr;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int host;

	CHECK(s && mkdtemp(dir));
	snprintf(p1, sizeof(p1), "%s/a.sock", dir);
	snprintf(p2, sizeof(p2), "%s/b.sock", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p2);
	CHECK_EQ(loop_init(&l1, 64), 0);
	v = virtio_vsock_create("unit-vsock", 3, p1, &f.mem, &l1);
	CHECK(v);
	CHECK_EQ(loop_start(&l1), 0);
	CHECK(drv_features(&v->mmio, VIRTIO_BIT(VIRTIO_F_VERSION_1)) & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned int i = 0; i < 3; i++) {
		fring_init(&q[i], &f, EV_RING + i * 0x4000ull, 8);
		drv_queue(&v->mmio, i, 8, q[i].desc_gpa, q[i].avail_gpa, q[i].used_gpa);
	}
	drv_ok(&v->mmio);
	memset(gpa(&f, EV_BUF), 0xee, 8);
	/* Two event buffers, as a driver posts several (Linux: 8): the one the reset does not
	 * take must not count as the driver's acknowledgement. */
	fring_desc(&q[VIRTIO_VSOCK_EVENT_QUEUE], 0, EV_BUF, 8, VRING_DESC_F_WRITE, 0);
	fring_publish(&q[VIRTIO_VSOCK_EVENT_QUEUE], 0);
	fring_desc(&q[VIRTIO_VSOCK_EVENT_QUEUE], 2, EV_BUF + 16, 8, VRING_DESC_F_WRITE, 0);
	fring_publish(&q[VIRTIO_VSOCK_EVENT_QUEUE], 2);
	kick(&v->mmio, VIRTIO_VSOCK_EVENT_QUEUE);
	usleep(30000);
	/* A live device has no transport event to send. */
	CHECK(!fring_used(&q[VIRTIO_VSOCK_EVENT_QUEUE], &id, &len));
	CHECK_EQ(virtio_mmio_freeze(&v->mmio), 0);
	virtio_mmio_save(&v->mmio, s);

	CHECK_EQ(loop_init(&l2, 64), 0);
	v2 = virtio_vsock_create("unit-vsock-2", 3, p2, &f.mem, &l2);
	CHECK(v2);
	CHECK_EQ(virtio_mmio_load(&v2->mmio, s, err, sizeof(err)), 0);
	virtio_vsock_restored(v2, virtio_vsock_next_port(v) + 5);
	CHECK_EQ(loop_start(&l2), 0);
	CHECK(fring_wait_used(&q[VIRTIO_VSOCK_EVENT_QUEUE], &id, &len, 3000));
	CHECK_EQ(id, 0);
	CHECK_EQ(len, 4);
	memcpy(&ev, gpa(&f, EV_BUF), 4);
	CHECK_EQ(le32toh(ev), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);

	/* Until the driver has taken the reset (it posts a new event buffer), a host connection
	 * reaches the guest with nothing: its REQUEST waits. */
	fring_desc(&q[VIRTIO_VSOCK_RX_QUEUE], 0, EV_BUF + 0x1000, 256, VRING_DESC_F_WRITE, 0);
	fring_publish(&q[VIRTIO_VSOCK_RX_QUEUE], 0);
	kick(&v2->mmio, VIRTIO_VSOCK_RX_QUEUE);
	host = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(host >= 0);
	CHECK_EQ(connect(host, (struct sockaddr *)&sun, sizeof(sun)), 0);
	CHECK_EQ(write(host, "CONNECT 6000\n", 13), 13);
	usleep(50000);
	CHECK(!fring_used(&q[VIRTIO_VSOCK_RX_QUEUE], &id, &len));
	fring_desc(&q[VIRTIO_VSOCK_EVENT_QUEUE], 1, EV_BUF + 8, 8, VRING_DESC_F_WRITE, 0);
	fring_publish(&q[VIRTIO_VSOCK_EVENT_QUEUE], 1);
	kick(&v2->mmio, VIRTIO_VSOCK_EVENT_QUEUE);
	CHECK(fring_wait_used(&q[VIRTIO_VSOCK_RX_QUEUE], &id, &len, 3000));
	CHECK_EQ(len, sizeof(struct virtio_vsock_hdr));
	memcpy(&hdr, gpa(&f, EV_BUF + 0x1000), sizeof(hdr));
	CHECK_EQ(le16toh(hdr.op), VIRTIO_VSOCK_OP_REQUEST);
	CHECK_EQ(le32toh(hdr.dst_port), 6000);
	/* Not a port the snapshot's connections may have used. */
	CHECK_EQ(le32toh(hdr.src_port), VIRTIO_VSOCK_LOCAL_PORT0 + 5);
	close(host);

	loop_stop(&l2);
	loop_join(&l2);
	virtio_vsock_destroy(v2);
	loop_fini(&l2);
	loop_stop(&l1);
	loop_join(&l1);
	virtio_vsock_destroy(v);
	loop_fini(&l1);
	rmdir(dir);
	free(s);
}

int main(void)
{
	static const uint8_t mac[6] = {0x02, 0x00, 0x0a, 0xc8, 0x00, 0x02};
	static const uint8_t other_mac[6] = {0x02, 0x00, 0x0a, 0xc8, 0x00, 0x03};
	struct virtio_mmio_state *s = malloc(sizeof(*s)), *bad = malloc(sizeof(*bad));
	struct loop loop, loop2;
	struct virtio_net *net, *net2, *net3;
	int sp[2], sp2[2], sp3[2];
	uint32_t id, len;
	uint8_t buf[256];
	char err[256] = "";

	if (loop_init(&loop, 64))
		return t_skip("io_uring unavailable");
	CHECK(s && bad);
	/* Every SQE the device submits names a registered file (or none, flagged anyway). */
	loop_require_fixed_files(&loop);
	CHECK_EQ(fake_ram_init(&f), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp2), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp3), 0);
	net = virtio_net_create("unit-net", sp[0], false, mac, &f.mem, &loop);
	CHECK(net);
	CHECK_EQ(loop_start(&loop), 0);

	CHECK(drv_features(&net->mmio, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
					       VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)) &
	      VIRTIO_STATUS_FEATURES_OK);
	fring_init(&rx, &f, RX_RING, QSIZE);
	fring_init(&tx, &f, TX_RING, QSIZE);
	drv_queue(&net->mmio, 0, QSIZE, rx.desc_gpa, rx.avail_gpa, rx.used_gpa);
	drv_queue(&net->mmio, 1, QSIZE, tx.desc_gpa, tx.avail_gpa, tx.used_gpa);
	drv_ok(&net->mmio);

	/* Four buffers: the device holds three (together they take the largest frame) and
	 * waits on the socket. */
	for (uint16_t i = 0; i < 4; i++)
		post_rx(i);
	kick(&net->mmio, 0);
	usleep(30000);

	/* A freeze gives the three back: the saved state has taken none of them. (The device's
	 * fields are read only after a freeze or thaw: those hand-offs order them, so the test
	 * runs under ThreadSanitizer too.) */
	CHECK_EQ(virtio_mmio_freeze(&net->mmio), 0);
	CHECK(!net->rx_busy);
	CHECK_EQ(net->rx_nr_held, 0);
	virtio_mmio_save(&net->mmio, s);
	CHECK_EQ(s->device_id, VIRTIO_ID_NET);
	CHECK(s->status & VIRTIO_STATUS_DRIVER_OK);
	CHECK_EQ(s->q[0].last_avail, 0);
	CHECK_EQ(s->q[0].used_idx, 0);
	CHECK_EQ(s->q[0].num, QSIZE);
	CHECK_EQ(s->q[0].desc, rx.desc_gpa);
	/* Frozen: a frame that comes waits, no chain is taken. */
	host_send(sp[1], "while frozen");
	usleep(30000);
	CHECK(!fring_used(&rx, &id, &len));
	/* The thaw serves it, into the first buffer, as if nothing had happened. */
	virtio_mmio_thaw(&net->mmio);
	check_rx(0, "while frozen");

	/* Frozen again with three buffers held and one used: the snapshot's indices. */
	usleep(30000);
	CHECK_EQ(virtio_mmio_freeze(&net->mmio), 0);
	virtio_mmio_save(&net->mmio, s);
	CHECK_EQ(s->q[0].last_avail, 1);
	CHECK_EQ(s->q[0].used_idx, 1);

	/* A second device, built the same way on its own loop, takes the state: refused when it
	 * does not fit. */
	CHECK_EQ(loop_init(&loop2, 64), 0);
	loop_require_fixed_files(&loop2);
	net3 = virtio_net_create("unit-net-other-mac", sp3[0], false, other_mac, &f.mem, &loop2);
	CHECK(net3);
	check_refused(&net3->mmio, s, "configuration differs");
	net2 = virtio_net_create("unit-net-2", sp2[0], false, mac, &f.mem, &loop2);
	CHECK(net2);
	*bad = *s;
	bad->device_id = VIRTIO_ID_BLOCK;
	check_refused(&net2->mmio, bad, "another kind of device");
	*bad = *s;
	bad->nqueues = 3;
	check_refused(&net2->mmio, bad, "another kind of device");
	*bad = *s;
	bad->q[0].desc = 0x7fffffff000ull;
	check_refused(&net2->mmio, bad, "not in guest RAM");
	*bad = *s;
	bad->q[1].num = 3; /* not a power of two */
	check_refused(&net2->mmio, bad, "not in guest RAM");
	*bad = *s;
	bad->q[0].used_idx = 7;
	check_refused(&net2->mmio, bad, "used index differs");
	*bad = *s;
	bad->driver_features |= 1ull << 50;
	check_refused(&net2->mmio, bad, "inconsistent");
	*bad = *s;
	bad->status = 0x1ff;
	check_refused(&net2->mmio, bad, "inconsistent");
	CHECK_EQ(virtio_mmio_load(&net2->mmio, s, err, sizeof(err)), 0);
	CHECK_EQ(reg_rd(&net2->mmio, VIRTIO_MMIO_STATUS), s->status);
	reg_wr(&net2->mmio, VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK_EQ(reg_rd(&net2->mmio, VIRTIO_MMIO_QUEUE_READY), 1);
	CHECK_EQ(reg_rd(&net2->mmio, VIRTIO_MMIO_QUEUE_NUM), QSIZE);
	CHECK_EQ(loop_start(&loop2), 0);

	/* The restored device goes on from buffer 1 with a frame from its own backend, and
	 * transmits from where the ring stood. */
	host_send(sp2[1], "after restore");
	check_rx(1, "after restore");
	memset(gpa(&f, TX_BUF), 0, HDR);
	memcpy(gpa(&f, TX_BUF + 0x800), "from the clone", 14);
	fring_desc(&tx, 0, TX_BUF, HDR, VRING_DESC_F_NEXT, 1);
	fring_desc(&tx, 1, TX_BUF + 0x800, 14, 0, 0);
	fring_publish(&tx, 0);
	kick(&net2->mmio, 1);
	CHECK(fring_wait_used(&tx, &id, &len, 3000));
	CHECK_EQ(id, 0);
	CHECK_EQ(recv(sp2[1], buf, sizeof(buf), MSG_DONTWAIT), HDR + 14);
	CHECK(!memcmp(buf + HDR, "from the clone", 14));
	/* The original, still frozen, took nothing of it. */
	CHECK(recv(sp[1], buf, sizeof(buf), MSG_DONTWAIT) < 0);

	loop_stop(&loop2);
	loop_join(&loop2);
	virtio_net_drain(net2);
	virtio_net_destroy(net2);
	virtio_net_destroy(net3);
	loop_fini(&loop2);
	loop_stop(&loop);
	loop_join(&loop);
	virtio_net_drain(net);
	virtio_net_destroy(net);
	loop_fini(&loop);
	for (int i = 0; i < 2; i++) {
		close(sp[i]);
		close(sp2[i]);
		close(sp3[i]);
	}
	vsock_restore_test();
	fake_ram_fini(&f);
	free(s);
	free(bad);
	return t_done();
}
