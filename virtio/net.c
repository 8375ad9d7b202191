/* net.c: virtio-net on a TAP (virtio 1.2 section 5.1). The TAP carries the same 12-byte
 * virtio_net_hdr_v1 as the rings (IFF_VNET_HDR, TUNSETVNETHDRSZ), so frames and their offload
 * metadata pass through untouched: a transmit chain is one writev from guest RAM, a receive
 * chain one readv into guest RAM, each on the io_uring loop. */
#define pr_fmt(fmt) "virtio-net: " fmt
#include "virtio/net.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define VNET_HDR_LEN ((int)sizeof(struct virtio_net_hdr_v1))

int tap_open(const char *name)
{
	struct ifreq ifr;
	unsigned int features = 0;
	int fd, ret, hdr = VNET_HDR_LEN;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("TAP '%s': cannot open /dev/net/tun: %s%s", name, strerror(errno),
		       errno == ENOENT ? " (is the tun module loaded?)" : "");
		return ret;
	}
	if (ioctl(fd, TUNGETFEATURES, &features) == 0 && !(features & IFF_VNET_HDR)) {
		ret = -EOPNOTSUPP;
		pr_err("TAP '%s': the kernel's tun driver has no IFF_VNET_HDR", name);
		goto fail;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		ret = -errno;
		if (errno == EPERM)
			pr_err("TAP '%s': TUNSETIFF: %s (creating a TAP needs CAP_NET_ADMIN; an "
			       "existing one must belong to this user: ip tuntap add %s mode tap "
			       "user USER)", name, strerror(errno), name);
		else if (errno == EBUSY)
			pr_err("TAP '%s' is in use by another process", name);
		else if (errno == EINVAL)
			pr_err("TAP '%s': TUNSETIFF: %s (is '%s' an interface of another kind, "
			       "or a TUN rather than a TAP?)", name, strerror(errno), name);
		else
			pr_err("TAP '%s': TUNSETIFF: %s", name, strerror(errno));
		goto fail;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		ret = -errno;
		pr_err("TAP '%s': TUNSETVNETHDRSZ: %s", name, strerror(errno));
		goto fail;
	}
	/* No offloads until the driver accepts them. */
	if (ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		ret = -errno;
		pr_err("TAP '%s': TUNSETOFFLOAD: %s", name, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}

void virtio_net_random_mac(uint8_t mac[6])
{
	if (getrandom(mac, 6, 0) != 6) {
		/* Not expected once the pool is up; any locally administered address works. */
		uint64_t t = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;

		memcpy(mac, &t, 6);
	}
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02);
}

static struct virtio_net *to_net(struct virtio_mmio *t)
{
	return container_of(t, struct virtio_net, mmio);
}

/* Called when an op of (n) completed while the transport waits for a reset to drain. */
static void reset_progress(struct virtio_net *n)
{
	if (!n->rx_busy && !n->tx_busy)
		virtio_mmio_reset_done(&n->mmio);
}

/* ---- receive ---- */

static void rx_submit(struct virtio_net *n)
{
	struct io_uring_sqe *sqe = loop_sqe(n->mmio.loop, &n->rx_op);

	if (!sqe) {
		/* The kick of the next RX buffer or TX completion tries again. */
		pr_warn_once("%s: io_uring submission queue full; receive waits", n->name);
		return;
	}
	if (n->rx_poll)
		io_uring_prep_poll_add(sqe, n->fd, POLLIN);
	else
		io_uring_prep_readv(sqe, n->fd, n->rx.iov + n->rx.nr_out, n->rx.nr_in,
				    (uint64_t)-1);
	n->rx_busy = true;
}

/* Takes a receive chain if none is held and reads the next frame into it. Without a chain
 * nothing is read: the frame waits in the TAP's queue and the driver's next RX kick brings us
 * back here (with EVENT_IDX, vq_pop_head() asked for that kick). */
static void rx_arm(struct virtio_net *n)
{
	struct vq *vq = &n->mmio.q[VIRTIO_NET_RX_QUEUE].vq;
	int ret;

	if (n->rx_busy || n->rx_stopped || !virtio_mmio_queue_live(&n->mmio, VIRTIO_NET_RX_QUEUE))
		return;
	if (!n->rx_have_chain) {
		ret = vq_pop(vq, &n->rx);
		if (ret == 0)
			return;
		if (ret < 0) {
			virtio_mmio_set_needs_reset(&n->mmio, vq->error);
			return;
		}
		/* Section 5.1.6.3: receive buffers are device-writable and hold at least the
		 * header. */
		if (n->rx.nr_out || n->rx.in_len < VNET_HDR_LEN) {
			virtio_mmio_set_needs_reset(&n->mmio, n->rx.nr_out
				? "virtio-net receive buffer with a device-readable part"
				: "virtio-net receive buffer shorter than the header");
			return;
		}
		n->rx_have_chain = true;
	}
	rx_submit(n);
}

static void rx_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_net *n = container_of(op, struct virtio_net, rx_op);
	struct vq *vq = &n->mmio.q[VIRTIO_NET_RX_QUEUE].vq;
	bool was_poll = n->rx_poll;

	n->rx_busy = false;
	n->rx_poll = false;
	if (n->draining)
		return;
	if (n->mmio.resetting || res == -ECANCELED) {
		/* The chain goes back to nobody: the driver reset the device. */
		n->rx_have_chain = false;
		if (n->mmio.resetting)
			reset_progress(n);
		return;
	}
	if (!virtio_mmio_queue_live(&n->mmio, VIRTIO_NET_RX_QUEUE)) {
		n->rx_have_chain = false;
		return;
	}
	if (was_poll) {
		rx_arm(n);
		return;
	}
	if (res == -EAGAIN || res == -EINTR) {
		n->rx_poll = res == -EAGAIN;	/* a non-blocking fd: wait for POLLIN */
		rx_arm(n);
		return;
	}
	if (res == -EFAULT || res == -EINVAL || res == -EMSGSIZE || res == -ENOBUFS) {
		/* The frame did not fit the guest's buffer and was consumed: keep the chain for
		 * the next one. */
		n->rx_dropped++;
		pr_debug("%s: receive: %s; frame dropped", n->name, strerror(-res));
		rx_arm(n);
		return;
	}
	if (res <= 0) {
		/* EOF or a backend error: stop reading, the guest keeps its buffers. */
		pr_warn("%s: reading the TAP: %s; receive stops", n->name,
			res ? strerror(-res) : "end of file");
		n->rx_stopped = true;
		n->rx_have_chain = false;
		return;
	}
	if (res < VNET_HDR_LEN) {
		n->rx_dropped++;
		rx_arm(n);
		return;
	}
	/* Section 5.1.6.4: num_buffers is 1 without MRG_RXBUF. tun leaves those two bytes of
	 * the guest's buffer as they were. */
	{
		uint16_t one = htole16(1);

		buf_to_iov(n->rx.iov + n->rx.nr_out, n->rx.nr_in,
			   offsetof(struct virtio_net_hdr_v1, num_buffers), &one, sizeof(one));
	}
	n->rx_have_chain = false;
	n->rx_packets++;
	vq_push(vq, n->rx.head, (uint32_t)res);
	virtio_mmio_signal_used(&n->mmio, VIRTIO_NET_RX_QUEUE);
	rx_arm(n);
}

/* ---- transmit ---- */

static void tx_process(struct virtio_net *n);

static void tx_submit(struct virtio_net *n)
{
	struct io_uring_sqe *sqe = loop_sqe(n->mmio.loop, &n->tx_op);

	if (!sqe)
		return; /* caller handles: tx_busy stays false */
	if (n->tx_poll)
		io_uring_prep_poll_add(sqe, n->fd, POLLOUT);
	else
		io_uring_prep_writev(sqe, n->fd, n->tx.iov, n->tx_nr, (uint64_t)-1);
	n->tx_busy = true;
}

static void tx_complete(struct virtio_net *n)
{
	vq_push(&n->mmio.q[VIRTIO_NET_TX_QUEUE].vq, n->tx.head, 0);
	virtio_mmio_signal_used(&n->mmio, VIRTIO_NET_TX_QUEUE);
}

static void tx_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_net *n = container_of(op, struct virtio_net, tx_op);
	bool was_poll = n->tx_poll;

	n->tx_busy = false;
	n->tx_poll = false;
	if (n->draining)
		return;
	if (n->mmio.resetting) {
		reset_progress(n);
		return;
	}
	if (!virtio_mmio_queue_live(&n->mmio, VIRTIO_NET_TX_QUEUE))
		return;
	if (was_poll && res != -ECANCELED) {
		tx_submit(n);
		if (n->tx_busy)
			return;
		res = -EBUSY;
	}
	if (res == -EAGAIN || res == -EINTR) {
		n->tx_poll = res == -EAGAIN;
		tx_submit(n);
		if (n->tx_busy)
			return;
		res = -EBUSY;
	}
	if (res < 0) {
		/* The frame is dropped, as a NIC whose cable is out would. */
		n->tx_dropped++;
		pr_debug("%s: writing the TAP: %s; frame dropped", n->name, strerror(-res));
	} else {
		n->tx_packets++;
	}
	tx_complete(n);
	tx_process(n);
}

/* Checks the driver's header against what it negotiated: the TAP would act on any offload
 * the header asks for. Returns NULL or why the frame is refused. */
static const char *tx_check_hdr(struct virtio_net *n, const struct virtio_net_hdr_v1 *h)
{
	struct virtio_mmio *t = &n->mmio;
	uint8_t gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !virtio_mmio_has_feature(t, VIRTIO_NET_F_CSUM))
		return "checksum offload without VIRTIO_NET_F_CSUM";
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
	    !virtio_mmio_has_feature(t, VIRTIO_NET_F_HOST_ECN))
		return "ECN segmentation without VIRTIO_NET_F_HOST_ECN";
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return NULL;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return virtio_mmio_has_feature(t, VIRTIO_NET_F_HOST_TSO4)
			       ? NULL : "TSO4 without VIRTIO_NET_F_HOST_TSO4";
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return virtio_mmio_has_feature(t, VIRTIO_NET_F_HOST_TSO6)
			       ? NULL : "TSO6 without VIRTIO_NET_F_HOST_TSO6";
	default:
		return "unknown segmentation type";
	}
}

static void tx_process(struct virtio_net *n)
{
	struct vq *vq = &n->mmio.q[VIRTIO_NET_TX_QUEUE].vq;

	while (!n->tx_busy && virtio_mmio_queue_live(&n->mmio, VIRTIO_NET_TX_QUEUE)) {
		struct virtio_net_hdr_v1 hdr;
		const char *why;
		int ret = vq_pop(vq, &n->tx);

		if (ret == 0)
			break;
		if (ret < 0) {
			virtio_mmio_set_needs_reset(&n->mmio, vq->error);
			break;
		}
		/* Writable segments of a transmit chain are ignored (section 5.1.6.2 has the
		 * driver post only readable ones). */
		if (iov_to_buf(n->tx.iov, n->tx.nr_out, 0, &hdr, sizeof(hdr)) != sizeof(hdr)) {
			why = "virtio-net transmit shorter than the header";
		} else if (n->tx.out_len > VNET_HDR_LEN + VIRTIO_NET_MAX_FRAME) {
			why = "virtio-net transmit longer than 64 KiB";
		} else {
			why = tx_check_hdr(n, &hdr);
		}
		if (why) {
			virtio_mmio_guest_error(&n->mmio, why);
			n->tx_dropped++;
			tx_complete(n);
			continue;
		}
		n->tx_nr = n->tx.nr_out;
		tx_submit(n);
		if (!n->tx_busy) {
			pr_warn_once("%s: io_uring submission queue full; dropping a frame",
				     n->name);
			n->tx_dropped++;
			tx_complete(n);
		}
	}
}

/* ---- transport callbacks ---- */

static void net_notify(struct virtio_mmio *t, unsigned int q)
{
	struct virtio_net *n = to_net(t);

	if (q == VIRTIO_NET_RX_QUEUE)
		rx_arm(n);
	else
		tx_process(n);
}

/* Section 5.1.6.3 / tun's TUNSETOFFLOAD: what the TAP may hand us is what the driver said it
 * can receive. */
static void net_activate(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);
	unsigned int off = 0;

	if (virtio_mmio_has_feature(t, VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (virtio_mmio_has_feature(t, VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (virtio_mmio_has_feature(t, VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
		if ((off & (TUN_F_TSO4 | TUN_F_TSO6)) &&
		    virtio_mmio_has_feature(t, VIRTIO_NET_F_GUEST_ECN))
			off |= TUN_F_TSO_ECN;
	}
	n->rx_stopped = false;
	if (n->tap && off != n->offloads) {
		if (ioctl(n->fd, TUNSETOFFLOAD, off) < 0) {
			pr_warn("%s: TUNSETOFFLOAD 0x%x: %s", n->name, off, strerror(errno));
			return;
		}
	}
	n->offloads = off;
}

static void cancel_done(struct loop_op *op, int res, unsigned int flags)
{
}

static void cancel(struct virtio_net *n, struct loop_op *target, struct loop_op *op)
{
	struct io_uring_sqe *sqe = loop_sqe(n->mmio.loop, op);

	if (sqe)
		io_uring_prep_cancel(sqe, target, 0);
}

/* The pending read waits on the TAP and could wait for ever: cancel it (and a stuck write);
 * the reset finishes when both completions are in. */
static bool net_reset(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);

	n->rx_have_chain = false;
	if (!n->rx_busy && !n->tx_busy)
		return true;
	if (n->rx_busy)
		cancel(n, &n->rx_op, &n->rx_cancel_op);
	if (n->tx_busy)
		cancel(n, &n->tx_op, &n->tx_cancel_op);
	return false;
}

static const struct virtio_mmio_dev_ops net_ops = {
	.activate = net_activate,
	.reset = net_reset,
	.notify = net_notify,
};

struct virtio_net *virtio_net_create(const char *name, int fd, bool tap, const uint8_t mac[6],
				     const struct guest_mem *mem, struct loop *loop)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	uint64_t features;

	if (!n) {
		pr_err("%s: out of memory", name);
		return NULL;
	}
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->fd = fd;
	n->tap = tap;
	n->rx_op.done = rx_done;
	n->tx_op.done = tx_done;
	n->rx_cancel_op.done = cancel_done;
	n->tx_cancel_op.done = cancel_done;
	memcpy(n->config.mac, mac, 6);
	n->config.status = htole16(VIRTIO_NET_S_LINK_UP);
	n->config.max_virtqueue_pairs = htole16(1);
	n->config.mtu = htole16(1500);

	/* No MRG_RXBUF: every receive chain takes one whole frame, so a driver that accepts
	 * GUEST_TSO posts 64 KiB chains (Linux's "big packets"). */
	features = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
		   VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
		   VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |
		   VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |
		   VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) |
		   VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	if (virtio_mmio_init(&n->mmio, n->name, &net_ops, VIRTIO_ID_NET, features, 2,
			     VIRTIO_NET_QUEUE_SIZE, &n->config, sizeof(n->config), mem, loop)) {
		free(n);
		return NULL;
	}
	return n;
}

void virtio_net_drain(struct virtio_net *n)
{
	struct io_uring *ring = &n->mmio.loop->ring;

	/* Every completion from here on is final. */
	n->draining = true;
	if (n->rx_busy)
		cancel(n, &n->rx_op, &n->rx_cancel_op);
	if (n->tx_busy)
		cancel(n, &n->tx_op, &n->tx_cancel_op);
	while (n->rx_busy || n->tx_busy) {
		struct __kernel_timespec ts = {.tv_sec = 5};
		struct io_uring_cqe *cqe;
		struct loop_op *op;
		unsigned int flags;
		int res;

		io_uring_submit(ring);
		if (io_uring_wait_cqe_timeout(ring, &cqe, &ts)) {
			pr_warn("%s: an operation is still in flight at exit", n->name);
			return;
		}
		op = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		flags = cqe->flags;
		io_uring_cqe_seen(ring, cqe);
		if (op)
			op->done(op, res, flags);
	}
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n)
		return;
	virtio_mmio_fini(&n->mmio);
	free(n);
}
