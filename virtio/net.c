/* net.c: virtio-net on a TAP (virtio 1.2 section 5.1). The TAP carries the same 12-byte
 * virtio_net_hdr_v1 as the rings (IFF_VNET_HDR, TUNSETVNETHDRSZ), so frames and their offload
 * metadata pass through: a transmit chain is one writev (the header from the copy checked
 * against the negotiated features, the frame from guest RAM), a receive chain one readv into
 * guest RAM, each on the io_uring loop. */
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
	if (!n->rx_busy && !n->tx_nr_busy)
		virtio_mmio_reset_done(&n->mmio);
}

/* ---- receive ---- */

static void rx_drop_held(struct virtio_net *n)
{
	n->rx_pending = 0;
	n->rx_nr_held = 0;
	n->rx_nr_iov = 0;
	n->rx_held_len = 0;
}

/* The held chains are the last ones popped from the receive ring, in order (it has no other
 * consumer): a freeze gives them back, so the ring in guest RAM says everything. */
static void rx_unpop_held(struct virtio_net *n)
{
	vq_unpop(&n->mmio.q[VIRTIO_NET_RX_QUEUE].vq, (uint16_t)n->rx_nr_held);
	rx_drop_held(n);
}

/* Called when an op of (n) completed while a freeze waits for the device to quiesce. */
static void quiesce_progress(struct virtio_net *n)
{
	if (!n->rx_busy && !n->tx_nr_busy)
		virtio_mmio_quiesce_done(&n->mmio);
}

/* Pops receive chains until the held ones can take the largest frame the driver may be
 * handed or no more can be held (one chain without MRG_RXBUF; the whole ring, or the iovec
 * limit, with it). Returns 1 when a read may go ahead, 0 when the ring ran dry first (section
 * 5.1.6.3.1 has the driver post enough; until it does the frame waits in the TAP's queue),
 * -1 when the queue needs a reset. A ring that is full and still too small is read into
 * anyway: tun drops a frame that does not fit. */
static int rx_hold(struct virtio_net *n)
{
	struct vq *vq = &n->mmio.q[VIRTIO_NET_RX_QUEUE].vq;
	unsigned int max_held = n->rx_mergeable ? vq->size : 1;

	while (n->rx_held_len < n->rx_need && n->rx_nr_held < max_held &&
	       n->rx_nr_iov + VQ_IOV_MAX <= VIRTIO_NET_RX_IOV_MAX) {
		struct vq_chain *c = &n->rx_pop;
		struct virtio_net_rx_held *h;
		int ret;

		/* A spent budget waits like a dry ring: the transport calls back. */
		if (!virtio_mmio_queue_budget(&n->mmio, VIRTIO_NET_RX_QUEUE))
			return 0;
		ret = vq_pop(vq, c);
		if (ret == 0)
			return 0;
		if (ret < 0) {
			virtio_mmio_set_needs_reset(&n->mmio, vq->error);
			return -1;
		}
		/* Section 5.1.6.3.1: receive buffers are device-writable and each holds at least
		 * the header, with or without MRG_RXBUF. */
		if (c->nr_out || c->in_len < VNET_HDR_LEN) {
			virtio_mmio_set_needs_reset(&n->mmio, c->nr_out
				? "virtio-net receive buffer with a device-readable part"
				: "virtio-net receive buffer shorter than the header");
			return -1;
		}
		h = &n->rx_held[n->rx_nr_held++];
		h->head = c->head;
		h->nr_iov = c->nr_in;
		h->len = c->in_len;
		memcpy(n->rx_iov + n->rx_nr_iov, c->iov, c->nr_in * sizeof(c->iov[0]));
		n->rx_nr_iov += c->nr_in;
		n->rx_held_len += c->in_len;
	}
	return 1;
}

static void rx_submit(struct virtio_net *n)
{
	struct io_uring_sqe *sqe = loop_sqe(n->mmio.loop, &n->rx_op);

	if (!sqe) {
		/* The kick of the next RX buffer or TX completion tries again. */
		pr_warn_once("%s: io_uring submission queue full; receive waits", n->name);
		return;
	}
	if (n->rx_poll)
		io_uring_prep_poll_add(sqe, n->file, POLLIN);
	else
		io_uring_prep_readv(sqe, n->file, n->rx_iov, n->rx_nr_iov, (uint64_t)-1);
	loop_sqe_fixed(sqe);
	n->rx_busy = true;
}

/* Reads the next frame into the held chains once rx_hold() says there is room for it. Until
 * then nothing is read and the driver's next RX kick brings us back (with EVENT_IDX,
 * vq_pop_head() asked for that kick). */
static void rx_arm(struct virtio_net *n)
{
	if (n->rx_busy || n->rx_pending || n->rx_stopped ||
	    !virtio_mmio_queue_live(&n->mmio, VIRTIO_NET_RX_QUEUE))
		return;
	if (rx_hold(n) > 0)
		rx_submit(n);
}

/* Returns the first chains, filled with the (len) bytes of one frame, to the driver:
 * section 5.1.6.4, num_buffers says how many (always 1 without MRG_RXBUF; tun leaves those two
 * bytes as they were in guest RAM), and the buffers of one frame are used together: num_buffers
 * is written first and every used entry is published with one used->idx store, so a driver
 * polling the used ring never sees part of a frame. The chains after them stay held. */
static void rx_complete(struct virtio_net *n, size_t len)
{
	struct vq *vq = &n->mmio.q[VIRTIO_NET_RX_QUEUE].vq;
	unsigned int k = 0, iovs = 0;
	size_t frame = len - VNET_HDR_LEN, left = len;
	uint16_t num_buffers;

	while (left && k < n->rx_nr_held) {
		left -= MIN(left, (size_t)n->rx_held[k].len);
		k++;
	}
	num_buffers = htole16((uint16_t)k);
	buf_to_iov(n->rx_iov, n->rx_held[0].nr_iov, offsetof(struct virtio_net_hdr_v1, num_buffers),
		   &num_buffers, sizeof(num_buffers));
	left = len;
	for (unsigned int j = 0; j < k; j++) {
		const struct virtio_net_rx_held *h = &n->rx_held[j];
		uint32_t used = (uint32_t)MIN(left, (size_t)h->len);

		for (unsigned int i = 0; i < h->nr_iov; i++)
			guest_mem_dma_done(n->mmio.mem, n->rx_iov[iovs + i].iov_base,
					   n->rx_iov[iovs + i].iov_len);
		vq_fill(vq, h->head, used);
		left -= used;
		iovs += h->nr_iov;
		n->rx_held_len -= h->len;
	}
	vq_flush(vq);
	n->rx_nr_held -= k;
	n->rx_nr_iov -= iovs;
	memmove(n->rx_held, n->rx_held + k, n->rx_nr_held * sizeof(n->rx_held[0]));
	memmove(n->rx_iov, n->rx_iov + iovs, n->rx_nr_iov * sizeof(n->rx_iov[0]));
	n->rx_packets++;
	n->rx_bytes += frame;
	if (frame > n->rx_largest)
		n->rx_largest = (uint32_t)frame;
	virtio_mmio_signal_used(&n->mmio, VIRTIO_NET_RX_QUEUE);
}

/* Publishes the frame read into the held chains once the RX limiter lets it go, then reads
 * the next one; until then the frame stays unpublished (the driver cannot see it) and nothing
 * more is read, so frames keep their order. */
static void rx_release(struct virtio_net *n)
{
	if (!rate_limiter_consume(&n->rx_rl, n->rx_pending - VNET_HDR_LEN))
		return;
	rx_complete(n, n->rx_pending);
	n->rx_pending = 0;
	rx_arm(n);
}

static void rx_resume(struct rate_limiter *rl)
{
	struct virtio_net *n = container_of(rl, struct virtio_net, rx_rl);

	if (n->rx_pending && !n->draining &&
	    virtio_mmio_queue_live(&n->mmio, VIRTIO_NET_RX_QUEUE))
		rx_release(n);
}

static void rx_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_net *n = container_of(op, struct virtio_net, rx_op);
	bool was_poll = n->rx_poll;

	n->rx_busy = false;
	n->rx_poll = false;
	if (n->draining)
		return;
	if (n->mmio.frozen && virtio_mmio_queue_live(&n->mmio, VIRTIO_NET_RX_QUEUE)) {
		/* A freeze cancelled the read, unless a frame came first: that one goes to
		 * the guest, the chains it did not fill back to the ring. */
		if (!was_poll && res >= VNET_HDR_LEN)
			rx_complete(n, (size_t)res);
		rx_unpop_held(n);
		quiesce_progress(n);
		return;
	}
	if (n->mmio.resetting || res == -ECANCELED) {
		/* The chains go back to nobody: the driver reset the device. */
		rx_drop_held(n);
		if (n->mmio.resetting)
			reset_progress(n);
		return;
	}
	if (!virtio_mmio_queue_live(&n->mmio, VIRTIO_NET_RX_QUEUE)) {
		rx_drop_held(n);
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
		/* The frame did not fit the guest's buffers and was consumed: keep them for the
		 * next one. */
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
		rx_drop_held(n);
		return;
	}
	if (res < VNET_HDR_LEN) {
		n->rx_dropped++;
		rx_arm(n);
		return;
	}
	n->rx_pending = (size_t)res;
	rx_release(n);
}

/* ---- transmit ---- */

static void tx_process(struct virtio_net *n);

static void tx_submit(struct virtio_net *n, struct virtio_net_tx_slot *s)
{
	struct io_uring_sqe *sqe = loop_sqe(n->mmio.loop, &s->op);

	if (!sqe)
		return; /* caller handles: busy stays false */
	if (s->poll)
		io_uring_prep_poll_add(sqe, n->file, POLLOUT);
	else
		io_uring_prep_writev(sqe, n->file, s->iov, s->nr_iov, (uint64_t)-1);
	loop_sqe_fixed(sqe);
	s->busy = true;
	n->tx_nr_busy++;
}

static void tx_complete(struct virtio_net *n, uint16_t head)
{
	vq_push(&n->mmio.q[VIRTIO_NET_TX_QUEUE].vq, head, 0);
	virtio_mmio_signal_used(&n->mmio, VIRTIO_NET_TX_QUEUE);
}

static void tx_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_net_tx_slot *s = container_of(op, struct virtio_net_tx_slot, op);
	struct virtio_net *n = s->net;
	bool was_poll = s->poll;

	s->busy = false;
	s->poll = false;
	n->tx_nr_busy--;
	if (n->draining)
		return;
	if (n->mmio.resetting) {
		reset_progress(n);
		return;
	}
	if (!virtio_mmio_queue_live(&n->mmio, VIRTIO_NET_TX_QUEUE))
		return;
	if (was_poll && res != -ECANCELED) {
		tx_submit(n, s);
		if (s->busy)
			return;
		res = -EBUSY;
	}
	if (res == -EAGAIN || res == -EINTR) {
		s->poll = res == -EAGAIN;
		tx_submit(n, s);
		if (s->busy)
			return;
		res = -EBUSY;
	}
	if (res < 0) {
		/* The frame is dropped, as a NIC whose cable is out would. */
		n->tx_dropped++;
		pr_debug("%s: writing the TAP: %s; frame dropped", n->name, strerror(-res));
	} else {
		size_t frame = s->chain.out_len - VNET_HDR_LEN;

		n->tx_packets++;
		n->tx_bytes += frame;
		if (frame > n->tx_largest)
			n->tx_largest = (uint32_t)frame;
	}
	tx_complete(n, s->chain.head);
	tx_process(n);
	if (n->mmio.frozen)
		quiesce_progress(n);
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
	case VIRTIO_NET_HDR_GSO_UDP:
		return virtio_mmio_has_feature(t, VIRTIO_NET_F_HOST_UFO)
			       ? NULL : "UFO without VIRTIO_NET_F_HOST_UFO";
	default:
		return "unknown segmentation type";
	}
}

static struct virtio_net_tx_slot *tx_free_slot(struct virtio_net *n)
{
	for (unsigned int i = 0; i < VIRTIO_NET_TX_SLOTS; i++)
		if (!n->tx[i].busy && &n->tx[i] != n->tx_held)
			return &n->tx[i];
	return NULL;
}

/* Pops the next transmit chain into (s) and checks it. Returns 1 with the writev's iovec
 * ready, 0 when the ring is empty or broken, -1 when the chain was refused (completed). */
static int tx_pop(struct virtio_net *n, struct virtio_net_tx_slot *s)
{
	struct vq *vq = &n->mmio.q[VIRTIO_NET_TX_QUEUE].vq;
	const char *why;
	unsigned int nr;
	int ret = vq_pop(vq, &s->chain);

	if (ret == 0)
		return 0;
	if (ret < 0) {
		virtio_mmio_set_needs_reset(&n->mmio, vq->error);
		return 0;
	}
	/* Writable segments of a transmit chain are ignored (section 5.1.6.2 has the driver post
	 * only readable ones). */
	if (iov_to_buf(s->chain.iov, s->chain.nr_out, 0, &s->hdr, sizeof(s->hdr)) != sizeof(s->hdr))
		why = "virtio-net transmit shorter than the header";
	else if (s->chain.out_len > VNET_HDR_LEN + VIRTIO_NET_MAX_FRAME)
		why = "virtio-net transmit longer than 64 KiB";
	else
		why = tx_check_hdr(n, &s->hdr);
	if (why) {
		virtio_mmio_guest_error(&n->mmio, why);
		n->tx_dropped++;
		tx_complete(n, s->chain.head);
		return -1;
	}
	/* The checked copy goes out in place of the guest's header, which another vCPU could
	 * switch to offloads never negotiated before the write reads it. */
	nr = s->chain.nr_out;
	iov_consume(s->chain.iov, &nr, VNET_HDR_LEN);
	s->iov[0] = (struct iovec){.iov_base = &s->hdr, .iov_len = VNET_HDR_LEN};
	memcpy(s->iov + 1, s->chain.iov, nr * sizeof(s->iov[0]));
	s->nr_iov = 1 + nr;
	return 1;
}

/* Starts a write for every available chain while a slot is free; the writes of one kick are
 * submitted together, in the driver's order (tun takes each whole and at once). A frame the
 * TX limiter refuses waits in its slot (tx_held) and goes first once tokens return. */
static void tx_process(struct virtio_net *n)
{
	struct virtio_net_tx_slot *s;

	while (virtio_mmio_queue_live(&n->mmio, VIRTIO_NET_TX_QUEUE)) {
		if (n->tx_held) {
			s = n->tx_held;
		} else {
			int ret;

			s = tx_free_slot(n);
			if (!s || !virtio_mmio_queue_budget(&n->mmio, VIRTIO_NET_TX_QUEUE))
				break;
			ret = tx_pop(n, s);
			if (ret == 0)
				break;
			if (ret < 0)
				continue;
		}
		if (!rate_limiter_consume(&n->tx_rl, s->chain.out_len - VNET_HDR_LEN)) {
			n->tx_held = s;
			break;
		}
		n->tx_held = NULL;
		tx_submit(n, s);
		if (!s->busy) {
			pr_warn_once("%s: io_uring submission queue full; dropping a frame",
				     n->name);
			n->tx_dropped++;
			tx_complete(n, s->chain.head);
		}
	}
}

static void tx_resume(struct rate_limiter *rl)
{
	struct virtio_net *n = container_of(rl, struct virtio_net, tx_rl);

	if (!n->draining)
		tx_process(n);
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
 * can receive. tun accepts TUN_F_UFO but no longer produces UFO frames (Linux 4.14 removed
 * UFO), so GUEST_UFO is honoured trivially. */
static void net_activate(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);
	unsigned int off = 0;
	bool gso = false;

	if (virtio_mmio_has_feature(t, VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (virtio_mmio_has_feature(t, VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (virtio_mmio_has_feature(t, VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
		if (virtio_mmio_has_feature(t, VIRTIO_NET_F_GUEST_UFO))
			off |= TUN_F_UFO;
		if ((off & (TUN_F_TSO4 | TUN_F_TSO6)) &&
		    virtio_mmio_has_feature(t, VIRTIO_NET_F_GUEST_ECN))
			off |= TUN_F_TSO_ECN;
		gso = off & (TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO);
	}
	/* Section 5.1.6.3.1: with a segmentation offload a frame may be 64 KiB, else it is one
	 * Ethernet frame (with a VLAN tag). Without MRG_RXBUF each buffer must take a whole
	 * frame by itself. */
	n->rx_mergeable = virtio_mmio_has_feature(t, VIRTIO_NET_F_MRG_RXBUF);
	n->rx_need = VNET_HDR_LEN + (gso ? VIRTIO_NET_MAX_FRAME : VIRTIO_NET_MAX_MTU_FRAME);
	n->rx_stopped = false;
	if (n->tap && off != n->offloads) {
		if (ioctl(n->fd, TUNSETOFFLOAD, off) < 0) {
			pr_warn("%s: TUNSETOFFLOAD 0x%x: %s", n->name, off, strerror(errno));
			return;
		}
	}
	n->offloads = off;
	pr_info("%s: driver features 0x%llx, receive %s, TAP offloads 0x%x", n->name,
		(unsigned long long)t->driver_features,
		n->rx_mergeable ? "into mergeable buffers" : "one buffer per frame", off);
}

static void cancel_done(struct loop_op *op, int res, unsigned int flags)
{
}

/* One cancel op serves every cancellation: its completion has nothing to do. */
static void cancel(struct virtio_net *n, struct loop_op *target)
{
	struct io_uring_sqe *sqe = loop_sqe(n->mmio.loop, &n->cancel_op);

	if (!sqe)
		return;
	io_uring_prep_cancel(sqe, target, 0);
	loop_sqe_fixed(sqe); /* no file: only for a ring that requires the flag (core/loop.h) */
}

static void cancel_all(struct virtio_net *n)
{
	if (n->rx_busy)
		cancel(n, &n->rx_op);
	for (unsigned int i = 0; i < VIRTIO_NET_TX_SLOTS; i++)
		if (n->tx[i].busy)
			cancel(n, &n->tx[i].op);
}

/* The pending read waits on the TAP and could wait for ever: cancel it (and any stuck
 * write); the reset finishes when every completion is in. */
static bool net_reset(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);

	rx_drop_held(n);
	n->tx_held = NULL;	/* its chain goes with the queue */
	rate_limiter_reset(&n->rx_rl);
	rate_limiter_reset(&n->tx_rl);
	if (!n->rx_busy && !n->tx_nr_busy)
		return true;
	cancel_all(n);
	return false;
}

/* A freeze cancels the read that waits on the TAP (the chains it held go back to the ring,
 * rx_done()) and lets the writes in flight complete into the used ring. */
static bool net_quiesce(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);

	/* A frame the RX limiter holds is in guest RAM already: it goes to the guest (one frame
	 * over the limit) rather than being lost. A transmit chain the TX limiter holds was the
	 * last popped: back to the ring. */
	if (n->rx_pending) {
		rx_complete(n, n->rx_pending);
		n->rx_pending = 0;
	}
	if (n->tx_held) {
		vq_unpop(&t->q[VIRTIO_NET_TX_QUEUE].vq, 1);
		n->tx_held = NULL;
	}
	if (n->rx_busy)
		cancel(n, &n->rx_op);
	else
		rx_unpop_held(n);
	return !n->rx_busy && !n->tx_nr_busy;
}

static const struct virtio_mmio_dev_ops net_ops = {
	.activate = net_activate,
	.reset = net_reset,
	.quiesce = net_quiesce,
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
	n->cancel_op.done = cancel_done;
	for (unsigned int i = 0; i < VIRTIO_NET_TX_SLOTS; i++) {
		n->tx[i].op.done = tx_done;
		n->tx[i].net = n;
	}
	memcpy(n->config.mac, mac, 6);
	n->config.status = htole16(VIRTIO_NET_S_LINK_UP);
	n->config.max_virtqueue_pairs = htole16(1);
	n->config.mtu = htole16(1500);

	/* MRG_RXBUF lets a driver that accepts GUEST_TSO post page-sized buffers instead of
	 * 64 KiB chains (Linux's "big packets"). */
	features = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
		   VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
		   VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |
		   VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_HOST_UFO) |
		   VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) |
		   VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO) |
		   VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
		   VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	if (rate_limiter_init(&n->rx_rl, &(struct rl_config){0}, loop, rx_resume))
		goto exit_free;
	if (rate_limiter_init(&n->tx_rl, &(struct rl_config){0}, loop, tx_resume))
		goto exit_rx_rl;
	n->file = loop_file_add(loop, fd);
	if (n->file < 0) {
		pr_err("%s: registering the TAP with the io_uring: %s", name, strerror(-n->file));
		goto exit_tx_rl;
	}
	if (virtio_mmio_init(&n->mmio, n->name, &net_ops, VIRTIO_ID_NET, features, 2,
			     VIRTIO_NET_QUEUE_SIZE, &n->config, VIRTIO_NET_CONFIG_LEN, mem, loop))
		goto exit_file;
	return n;
exit_file:
	loop_file_remove(loop, n->file);
exit_tx_rl:
	rate_limiter_fini(&n->tx_rl);
exit_rx_rl:
	rate_limiter_fini(&n->rx_rl);
exit_free:
	free(n);
	return NULL;
}

static bool net_idle(void *arg)
{
	const struct virtio_net *n = arg;

	return !n->rx_busy && !n->tx_nr_busy;
}

void virtio_net_drain(struct virtio_net *n)
{
	/* Every completion from here on is final. */
	n->draining = true;
	n->tx_held = NULL;
	rate_limiter_drain(&n->rx_rl);
	rate_limiter_drain(&n->tx_rl);
	cancel_all(n);
	if (loop_drain(n->mmio.loop, net_idle, n, 5000))
		pr_warn("%s: an operation is still in flight at exit", n->name);
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n)
		return;
	virtio_mmio_fini(&n->mmio);
	rate_limiter_fini(&n->rx_rl);
	rate_limiter_fini(&n->tx_rl);
	free(n);
}

void virtio_net_print_stats(const struct virtio_net *n, FILE *out)
{
	fprintf(out, "mvm: %s: received %llu frames, %llu bytes, largest %u, %llu dropped; sent "
		"%llu frames, %llu bytes, largest %u, %llu dropped; rate limiter waits: rx %llu, "
		"tx %llu\n", n->name,
		(unsigned long long)n->rx_packets, (unsigned long long)n->rx_bytes, n->rx_largest,
		(unsigned long long)n->rx_dropped, (unsigned long long)n->tx_packets,
		(unsigned long long)n->tx_bytes, n->tx_largest, (unsigned long long)n->tx_dropped,
		(unsigned long long)atomic_load(&n->rx_rl.throttled),
		(unsigned long long)atomic_load(&n->tx_rl.throttled));
}
