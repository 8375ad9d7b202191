/* vsock.c: virtio-vsock stream sockets (virtio 1.2 section 5.10) bridged to Unix sockets the
 * way Firecracker does it (see vsock.h), all on the I/O loop. The guest's packets are checked
 * once, at the top of tx_packet(): header length, CIDs, type, op, payload length against the
 * descriptor and against the credit mvm gave; whatever fails is answered with RST. */
#define pr_fmt(fmt) "virtio-vsock: " fmt
#include "virtio/vsock.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define HDR_LEN	 sizeof(struct virtio_vsock_hdr)
#define OUT_SIZE (VIRTIO_VSOCK_BUF + VIRTIO_VSOCK_LINE_MAX)

static struct virtio_vsock *to_vsock(struct virtio_mmio *t)
{
	return container_of(t, struct virtio_vsock, mmio);
}

static void rx_process(struct virtio_vsock *v);
static void conn_close(struct vsock_conn *c);
static void arm_read(struct vsock_conn *c);
static void arm_write(struct vsock_conn *c);
static void check_shutdown(struct vsock_conn *c);

/* ---- what is owed to the guest ---- */

/* How many payload bytes the guest can still take (section 5.10.6.3: buf_alloc minus what
 * was sent and not yet forwarded). A guest that shrinks buf_alloc below that gets 0. */
static uint32_t peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static bool data_to_send(const struct vsock_conn *c)
{
	return c->state == VSOCK_ESTABLISHED && !c->guest_shut_rcv && c->in_head < c->in_len &&
	       peer_credit(c) > 0;
}

static bool has_work(const struct vsock_conn *c)
{
	return c->pending || data_to_send(c);
}

static uint16_t conn_index(const struct vsock_conn *c)
{
	return (uint16_t)(c - c->v->conns);
}

/* Puts (c) at the tail of the list of connections with packets owed, once. */
static void conn_enqueue(struct vsock_conn *c)
{
	struct virtio_vsock *v = c->v;
	uint16_t id = (uint16_t)(conn_index(c) + 1);

	if (c->queued)
		return;
	c->queued = true;
	c->next_queued = 0;
	if (v->queue_tail)
		v->conns[v->queue_tail - 1].next_queued = id;
	else
		v->queue_head = id;
	v->queue_tail = id;
}

static struct vsock_conn *conn_dequeue(struct virtio_vsock *v)
{
	struct vsock_conn *c;

	if (!v->queue_head)
		return NULL;
	c = &v->conns[v->queue_head - 1];
	v->queue_head = c->next_queued;
	if (!v->queue_head)
		v->queue_tail = 0;
	c->queued = false;
	return c;
}

static void conn_unlink(struct vsock_conn *c)
{
	struct virtio_vsock *v = c->v;
	uint16_t id = (uint16_t)(conn_index(c) + 1), prev = 0;

	if (!c->queued)
		return;
	for (uint16_t i = v->queue_head; i; prev = i, i = v->conns[i - 1].next_queued) {
		if (i != id)
			continue;
		if (prev)
			v->conns[prev - 1].next_queued = c->next_queued;
		else
			v->queue_head = c->next_queued;
		if (v->queue_tail == id)
			v->queue_tail = prev;
		break;
	}
	c->queued = false;
}

/* Something may be owed on (c): queue it. Every entry point (a completion, a kick) ends with
 * rx_process(), which sends what the receive queue has room for. */
static void conn_kick(struct vsock_conn *c)
{
	if (has_work(c))
		conn_enqueue(c);
}

/* An RST for (src_port, dst_port) as the guest named them (its port, then ours). Dropped when
 * the queue is full: only a guest flooding bad packets fills it. */
static void rst_queue(struct virtio_vsock *v, uint32_t guest_port, uint32_t host_port)
{
	unsigned int i;

	if (v->rst_len == VIRTIO_VSOCK_RST_QUEUE) {
		pr_warn_once("too many RSTs owed to the guest; dropping some");
		return;
	}
	i = (v->rst_head + v->rst_len++) % VIRTIO_VSOCK_RST_QUEUE;
	v->rst[i].src_port = guest_port;
	v->rst[i].dst_port = host_port;
}

/* Ends (c) on both sides: an RST to the guest, the Unix socket closed. */
static void conn_reset(struct vsock_conn *c)
{
	rst_queue(c->v, c->peer_port, c->local_port);
	conn_close(c);
}

/* ---- receive queue: packets to the guest ---- */

static void fill_hdr(struct virtio_vsock *v, struct virtio_vsock_hdr *h, uint32_t src_port,
		     uint32_t dst_port, uint16_t op, uint32_t len, uint32_t flags, uint32_t fwd_cnt)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = htole64(VIRTIO_VSOCK_HOST_CID);
	h->dst_cid = htole64(v->cid);
	h->src_port = htole32(src_port);
	h->dst_port = htole32(dst_port);
	h->len = htole32(len);
	h->type = htole16(VIRTIO_VSOCK_TYPE_STREAM);
	h->op = htole16(op);
	h->flags = htole32(flags);
	h->buf_alloc = htole32(VIRTIO_VSOCK_BUF);
	h->fwd_cnt = htole32(fwd_cnt);
}

/* Writes the next packet (c) owes into the chain: control packets first, then data. Returns
 * the bytes written (header and payload). */
static uint32_t conn_packet(struct vsock_conn *c, struct vq_chain *ch)
{
	struct virtio_vsock_hdr h;
	const struct iovec *iov = ch->iov + ch->nr_out;
	uint32_t len = 0, flags = 0;
	uint16_t op;

	if (c->pending & VSOCK_SEND_REQUEST) {
		op = VIRTIO_VSOCK_OP_REQUEST;
		c->pending &= ~VSOCK_SEND_REQUEST;
	} else if (c->pending & VSOCK_SEND_RESPONSE) {
		op = VIRTIO_VSOCK_OP_RESPONSE;
		c->pending &= ~VSOCK_SEND_RESPONSE;
	} else if (data_to_send(c)) {
		uint32_t room = ch->in_len - (uint32_t)HDR_LEN;

		op = VIRTIO_VSOCK_OP_RW;
		len = MIN(c->in_len - c->in_head, peer_credit(c));
		len = MIN(len, MIN(room, VIRTIO_VSOCK_MAX_PKT));
		buf_to_iov(iov, ch->nr_in, HDR_LEN, c->in + c->in_head, len);
		c->in_head += len;
		c->tx_cnt += len;
		c->v->rx_bytes += len;
		if (c->in_head == c->in_len) {
			c->in_head = c->in_len = 0;
			arm_read(c);
		}
	} else if (c->pending & VSOCK_SEND_SHUTDOWN) {
		/* After the data (read_done() sees the end only with its buffer empty): the host
		 * peer sends no more (section 5.10.6.5). */
		op = VIRTIO_VSOCK_OP_SHUTDOWN;
		flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
		c->pending &= ~VSOCK_SEND_SHUTDOWN;
	} else if (c->pending & VSOCK_SEND_CREDIT_UPDATE) {
		op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
		c->pending &= ~VSOCK_SEND_CREDIT_UPDATE;
	} else if (c->pending & VSOCK_SEND_CREDIT_REQUEST) {
		op = VIRTIO_VSOCK_OP_CREDIT_REQUEST;
		c->pending &= ~VSOCK_SEND_CREDIT_REQUEST;
	} else {
		c->pending = 0;
		return 0;
	}
	/* Every packet tells the guest how far the Unix socket has taken its data. */
	c->pending &= ~VSOCK_SEND_CREDIT_UPDATE;
	c->last_fwd_cnt = c->fwd_cnt;
	fill_hdr(c->v, &h, c->local_port, c->peer_port, op, len, flags, c->fwd_cnt);
	buf_to_iov(iov, ch->nr_in, 0, &h, HDR_LEN);
	return (uint32_t)HDR_LEN + len;
}

/* Sends what is owed while the driver has receive buffers: queued RSTs, then one packet per
 * connection in turn, so one busy stream cannot starve the others. */
static void rx_process(struct virtio_vsock *v)
{
	struct vq *vq = &v->mmio.q[VIRTIO_VSOCK_RX_QUEUE].vq;
	struct vq_chain *ch = &v->chain;
	bool pushed = false;

	/* A restored device: nothing reaches the guest before its transport reset did. */
	if (v->reset_event_pending || v->reset_ack_pending)
		return;
	for (;;) {
		struct vsock_conn *c = NULL;
		uint32_t written = 0;
		int ret;

		/* Pop a buffer only for a packet: connections queued earlier may owe nothing
		 * now (their data went with an earlier packet, or they were closed). */
		while (v->queue_head && !has_work(&v->conns[v->queue_head - 1]))
			conn_dequeue(v);
		if ((!v->rst_len && !v->queue_head) ||
		    !virtio_mmio_queue_live(&v->mmio, VIRTIO_VSOCK_RX_QUEUE) ||
		    !virtio_mmio_queue_budget(&v->mmio, VIRTIO_VSOCK_RX_QUEUE))
			break;
		ret = vq_pop(vq, ch);
		if (ret == 0)
			break;
		if (ret < 0) {
			virtio_mmio_set_needs_reset(&v->mmio, vq->error);
			break;
		}
		if (ch->in_len < HDR_LEN) {
			/* Section 5.10.6.2: every receive buffer holds at least a header. */
			virtio_mmio_guest_error(&v->mmio, "a receive buffer shorter than a header");
		} else if (v->rst_len) {
			struct virtio_vsock_hdr h;
			unsigned int i = v->rst_head;

			fill_hdr(v, &h, v->rst[i].dst_port, v->rst[i].src_port, VIRTIO_VSOCK_OP_RST,
				 0, 0, 0);
			buf_to_iov(ch->iov + ch->nr_out, ch->nr_in, 0, &h, HDR_LEN);
			v->rst_head = (i + 1) % VIRTIO_VSOCK_RST_QUEUE;
			v->rst_len--;
			v->rsts_sent++;
			written = (uint32_t)HDR_LEN;
		} else {
			c = conn_dequeue(v);
			written = conn_packet(c, ch);
			/* Round robin: one packet, then the others' turn. */
			if (has_work(c))
				conn_enqueue(c);
		}
		vq_push(vq, ch->head, written);
		pushed = true;
		v->rx_packets++;
	}
	if (pushed)
		virtio_mmio_signal_used(&v->mmio, VIRTIO_VSOCK_RX_QUEUE);
}

/* ---- the Unix socket side of one connection ---- */

static void conn_maybe_free(struct vsock_conn *c)
{
	if (c->state != VSOCK_CLOSING || c->read_busy || c->write_busy || c->op_busy ||
	    c->cancel_busy || c->file >= 0)
		return;
	c->state = VSOCK_FREE;
}

static void submit_close(struct vsock_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->file < 0 || c->op_busy)
		return;
	sqe = loop_sqe(c->v->mmio.loop, &c->op_op);
	if (!sqe) {
		pr_warn_once("io_uring submission queue full; a socket stays open");
		return;
	}
	/* A direct close: the slot is emptied (IOSQE_FIXED_FILE is invalid on a close). */
	io_uring_prep_close_direct(sqe, (unsigned int)c->file);
	c->op_kind = VSOCK_OP_CLOSE;
	c->op_busy = true;
}

static void cancel(struct vsock_conn *c, struct loop_op *op)
{
	struct io_uring_sqe *sqe = loop_sqe(c->v->mmio.loop, &c->cancel_op);

	if (!sqe)
		return;
	io_uring_prep_cancel(sqe, op, 0);
	loop_sqe_fixed(sqe); /* no file: for a ring that requires the flag (core/loop.h) */
	c->cancel_busy++;
}

/* Stops (c) without telling the guest: its reads and writes are cancelled (a peer that
 * neither reads nor writes must not hold the slot) and its socket closed. */
static void conn_close(struct vsock_conn *c)
{
	if (c->state == VSOCK_FREE || c->state == VSOCK_CLOSING)
		return;
	c->state = VSOCK_CLOSING;
	c->pending = 0;
	conn_unlink(c);
	if (c->read_busy)
		cancel(c, &c->read_op);
	if (c->write_busy)
		cancel(c, &c->write_op);
	submit_close(c);
	conn_maybe_free(c);
}

static void cancel_done(struct loop_op *op, int res, unsigned int flags)
{
	struct vsock_conn *c = container_of(op, struct vsock_conn, cancel_op);

	c->cancel_busy--;
	conn_maybe_free(c);
}

/* Reads host bytes for the guest, no more than its credit allows (into an empty buffer), or
 * the "CONNECT" line of a connection the host opened. */
static void arm_read(struct vsock_conn *c)
{
	struct io_uring_sqe *sqe;
	uint32_t off = 0, len;

	if (c->read_busy || c->file < 0 || c->host_eof)
		return;
	if (c->state == VSOCK_HOST_LINE) {
		off = c->in_len;
		len = VIRTIO_VSOCK_LINE_MAX - c->in_len;
	} else if (c->state == VSOCK_ESTABLISHED && !c->in_len && !c->guest_shut_rcv) {
		len = MIN(peer_credit(c), VIRTIO_VSOCK_BUF);
		if (!len) {
			/* Stalled on the guest's credit: ask for an update once (section
			 * 5.10.6.3); its next CREDIT_UPDATE brings the read back. */
			if (!c->stalled) {
				c->stalled = true;
				c->pending |= VSOCK_SEND_CREDIT_REQUEST;
				conn_enqueue(c);
			}
			return;
		}
	} else {
		return;
	}
	sqe = loop_sqe(c->v->mmio.loop, &c->read_op);
	if (!sqe) {
		pr_warn_once("io_uring submission queue full; resetting a connection");
		conn_reset(c);
		return;
	}
	io_uring_prep_read(sqe, c->file, c->in + off, len, 0);
	loop_sqe_fixed(sqe);
	c->read_busy = true;
}

/* Parses "CONNECT <port>\n" at the start of c->in. Returns 1 with (*port), 0 when the line is
 * not complete yet, -1 for anything else (Firecracker closes such a peer). */
static int parse_connect(struct vsock_conn *c, uint32_t *port, uint32_t *line_len)
{
	static const char verb[] = "CONNECT ";
	uint8_t *nl = memchr(c->in, '\n', c->in_len);
	uint64_t val = 0;
	uint32_t n, i;

	if (!nl)
		return c->in_len < VIRTIO_VSOCK_LINE_MAX &&
				       !memcmp(c->in, verb, MIN(c->in_len, sizeof(verb) - 1))
			       ? 0
			       : -1;
	n = (uint32_t)(nl - c->in);
	if (n <= sizeof(verb) - 1 || memcmp(c->in, verb, sizeof(verb) - 1))
		return -1;
	for (i = sizeof(verb) - 1; i < n; i++) {
		if (c->in[i] < '0' || c->in[i] > '9' || i - (sizeof(verb) - 1) >= 10)
			return -1;
		val = val * 10 + (uint64_t)(c->in[i] - '0');
	}
	if (val > UINT32_MAX)
		return -1;
	*port = (uint32_t)val;
	*line_len = n + 1;
	return 1;
}

static uint32_t new_local_port(struct virtio_vsock *v)
{
	for (;;) {
		uint32_t p = v->next_local_port++;
		bool used = false;

		if (v->next_local_port < VIRTIO_VSOCK_LOCAL_PORT0)
			v->next_local_port = VIRTIO_VSOCK_LOCAL_PORT0;
		for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS && !used; i++)
			used = v->conns[i].state != VSOCK_FREE && v->conns[i].local_port == p;
		if (!used)
			return p;
	}
}

static void host_line(struct vsock_conn *c)
{
	uint32_t port, n;
	int ret = parse_connect(c, &port, &n);

	if (ret == 0) {
		arm_read(c);
		return;
	}
	if (ret < 0) {
		pr_debug("a host peer sent no CONNECT line; closing it");
		conn_close(c);
		return;
	}
	/* What followed the line is the start of the stream: it waits for the guest's credit. */
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
	c->in_head = 0;
	c->peer_port = port;
	c->local_port = new_local_port(c->v);
	c->state = VSOCK_HOST_REQUEST;
	c->pending |= VSOCK_SEND_REQUEST;
	conn_kick(c);
}

static void read_done(struct loop_op *op, int res, unsigned int flags)
{
	struct vsock_conn *c = container_of(op, struct vsock_conn, read_op);

	c->read_busy = false;
	if (c->state == VSOCK_CLOSING) {
		conn_maybe_free(c);
		return;
	}
	if (res == -EINTR || res == -EAGAIN) {
		arm_read(c);
		return;
	}
	if (res < 0) {
		pr_debug("reading a host socket: %s", strerror(-res));
		if (c->state == VSOCK_HOST_LINE)
			conn_close(c);
		else
			conn_reset(c);
		rx_process(c->v);
		return;
	}
	if (c->state == VSOCK_HOST_LINE) {
		c->in_len += (uint32_t)res;
		if (res == 0)
			conn_close(c);
		else
			host_line(c);
		rx_process(c->v);
		return;
	}
	if (res == 0) {
		/* The host peer sends no more: SHUTDOWN(SEND) once the guest has all of it. */
		c->host_eof = true;
		c->pending |= VSOCK_SEND_SHUTDOWN;
		check_shutdown(c);
		if (c->state == VSOCK_ESTABLISHED)
			conn_kick(c);
		rx_process(c->v);
		return;
	}
	c->in_head = 0;
	c->in_len = (uint32_t)res;
	conn_kick(c);
	rx_process(c->v);
}

static void arm_write(struct vsock_conn *c)
{
	struct io_uring_sqe *sqe;
	uint32_t first;

	if (c->write_busy || !c->out_len || c->file < 0 || c->state != VSOCK_ESTABLISHED)
		return;
	first = MIN(c->out_len, OUT_SIZE - c->out_head);
	c->out_iov[0] = (struct iovec){c->out + c->out_head, first};
	c->out_iov[1] = (struct iovec){c->out, c->out_len - first};
	memset(&c->out_msg, 0, sizeof(c->out_msg));
	c->out_msg.msg_iov = c->out_iov;
	c->out_msg.msg_iovlen = c->out_len > first ? 2 : 1;
	sqe = loop_sqe(c->v->mmio.loop, &c->write_op);
	if (!sqe) {
		pr_warn_once("io_uring submission queue full; resetting a connection");
		conn_reset(c);
		return;
	}
	/* sendmsg, not writev: MSG_NOSIGNAL, so a peer gone away is an EPIPE, not a SIGPIPE. */
	io_uring_prep_sendmsg(sqe, c->file, &c->out_msg, MSG_NOSIGNAL);
	loop_sqe_fixed(sqe);
	c->write_busy = true;
}

static void write_done(struct loop_op *op, int res, unsigned int flags)
{
	struct vsock_conn *c = container_of(op, struct vsock_conn, write_op);
	uint32_t n, line;

	c->write_busy = false;
	if (c->state == VSOCK_CLOSING) {
		conn_maybe_free(c);
		return;
	}
	if (res == -EINTR || res == -EAGAIN) {
		arm_write(c);
		return;
	}
	if (res <= 0) {
		pr_debug("writing a host socket: %s", strerror(-res));
		conn_reset(c);
		rx_process(c->v);
		return;
	}
	n = MIN((uint32_t)res, c->out_len);
	line = MIN(n, c->out_line);
	c->out_line -= line;
	c->fwd_cnt += n - line;
	c->out_head = (c->out_head + n) % OUT_SIZE;
	c->out_len -= n;
	/* Tell the guest about the room once what it believes is left drops below one full
	 * packet, as Linux's own receiver does: it stalls there otherwise. */
	if (c->fwd_cnt != c->last_fwd_cnt &&
	    VIRTIO_VSOCK_BUF - (c->rx_cnt - c->last_fwd_cnt) < VIRTIO_VSOCK_MAX_PKT) {
		c->pending |= VSOCK_SEND_CREDIT_UPDATE;
		conn_enqueue(c);
	}
	arm_write(c);
	check_shutdown(c);
	if (c->state == VSOCK_ESTABLISHED)
		conn_kick(c);
	rx_process(c->v);
}

static void connect_done(struct vsock_conn *c, int res)
{
	if (res < 0) {
		pr_debug("connecting to %s: %s", c->addr.sun_path, strerror(-res));
		conn_reset(c);
		return;
	}
	c->state = VSOCK_ESTABLISHED;
	c->v->conns_opened++;
	c->pending |= VSOCK_SEND_RESPONSE;
	arm_read(c);
	arm_write(c);
	conn_kick(c);
}

/* The one-at-a-time operations on a connection's socket: socket, connect, shutdown, close. */
static void op_done(struct loop_op *op, int res, unsigned int flags)
{
	struct vsock_conn *c = container_of(op, struct vsock_conn, op_op);
	struct io_uring_sqe *sqe;

	c->op_busy = false;
	if (c->op_kind == VSOCK_OP_CLOSE) {
		c->file = -1;
		conn_maybe_free(c);
		return;
	}
	if (c->op_kind == VSOCK_OP_SOCKET && res >= 0)
		c->file = res;
	if (c->state == VSOCK_CLOSING) {
		/* Closed while this ran: the close waited for it. */
		submit_close(c);
		conn_maybe_free(c);
		return;
	}
	switch (c->op_kind) {
	case VSOCK_OP_SOCKET:
		if (res < 0) {
			pr_warn_once("socket for a guest connection: %s", strerror(-res));
			conn_reset(c);
			break;
		}
		sqe = loop_sqe(c->v->mmio.loop, &c->op_op);
		if (!sqe) {
			conn_reset(c);
			break;
		}
		io_uring_prep_connect(sqe, c->file, (struct sockaddr *)&c->addr, sizeof(c->addr));
		loop_sqe_fixed(sqe);
		c->op_kind = VSOCK_OP_CONNECT;
		c->op_busy = true;
		return;
	case VSOCK_OP_CONNECT:
		connect_done(c, res);
		break;
	default:
		check_shutdown(c); /* a SHUT_WR: the end may have come meanwhile */
		break;
	}
	rx_process(c->v);
}

/* Once the guest sends no more and its data is out: SHUT_WR for the host peer, or, when the
 * guest takes nothing either (or the host peer is done too), the end of the connection: RST,
 * as Linux answers a full SHUTDOWN (section 5.10.6.5). */
static void check_shutdown(struct vsock_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->state != VSOCK_ESTABLISHED || !c->guest_shut_send || c->out_len)
		return;
	if (c->guest_shut_rcv || (c->host_eof && !c->in_len)) {
		conn_reset(c);
		return;
	}
	if (c->shut_wr_done || c->op_busy)
		return;
	sqe = loop_sqe(c->v->mmio.loop, &c->op_op);
	if (!sqe)
		return;
	io_uring_prep_shutdown(sqe, c->file, SHUT_WR);
	loop_sqe_fixed(sqe);
	c->op_kind = VSOCK_OP_SHUTDOWN;
	c->op_busy = true;
	c->shut_wr_done = true;
}

/* ---- the listening socket ---- */

static void arm_accept(struct virtio_vsock *v);

static struct vsock_conn *conn_alloc(struct virtio_vsock *v)
{
	for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conns[i];

		if (c->state != VSOCK_FREE)
			continue;
		c->file = -1;
		c->pending = 0;
		c->peer_buf_alloc = c->peer_fwd_cnt = c->tx_cnt = 0;
		c->rx_cnt = c->fwd_cnt = c->last_fwd_cnt = 0;
		c->out_head = c->out_len = c->out_line = 0;
		c->in_head = c->in_len = 0;
		c->guest_shut_send = c->guest_shut_rcv = c->host_eof = false;
		c->shut_wr_done = c->stalled = false;
		return c;
	}
	return NULL;
}

static void stray_close_done(struct loop_op *op, int res, unsigned int flags)
{
}

static void accept_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_vsock *v = container_of(op, struct virtio_vsock, accept_op);
	struct vsock_conn *c;

	v->accept_busy = false;
	if (res < 0) {
		if (res == -ECANCELED)
			return;
		pr_warn_once("accepting on %s: %s", v->path, strerror(-res));
		/* A full file table or a socket gone bad would fail again at once. */
		if (res == -ENFILE || res == -EMFILE || res == -EBADF || res == -EINVAL)
			return;
		arm_accept(v);
		return;
	}
	c = conn_alloc(v);
	if (!c) {
		struct io_uring_sqe *sqe = loop_sqe(v->mmio.loop, &v->stray_close_op);

		pr_warn_once("more than %d vsock connections; refusing more",
			     VIRTIO_VSOCK_MAX_CONNS);
		if (sqe)
			io_uring_prep_close_direct(sqe, (unsigned int)res);
	} else {
		c->file = res;
		c->state = VSOCK_HOST_LINE;
		arm_read(c);
	}
	arm_accept(v);
}

static void arm_accept(struct virtio_vsock *v)
{
	struct io_uring_sqe *sqe;

	if (v->accept_busy)
		return;
	sqe = loop_sqe(v->mmio.loop, &v->accept_op);
	if (!sqe)
		return;
	/* The accepted socket goes straight into a free slot of the ring's file table. */
	io_uring_prep_accept(sqe, v->listen_file, NULL, NULL, 0);
	/* NOTE: set by hand: liburing 2.3's io_uring_prep_accept_direct() adds one to
	 * IORING_FILE_INDEX_ALLOC, which wraps to 0 and makes the accept return a plain fd. */
	sqe->file_index = IORING_FILE_INDEX_ALLOC;
	loop_sqe_fixed(sqe);
	v->accept_busy = true;
}

/* ---- transmit queue: packets from the guest ---- */

static struct vsock_conn *conn_find(struct virtio_vsock *v, uint32_t local, uint32_t peer)
{
	for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conns[i];

		if (c->state != VSOCK_FREE && c->state != VSOCK_CLOSING &&
		    c->state != VSOCK_HOST_LINE && c->local_port == local && c->peer_port == peer)
			return c;
	}
	return NULL;
}

/* The guest's REQUEST to host port (port): a Unix socket connected to "PATH_port". */
static void guest_connect(struct virtio_vsock *v, const struct virtio_vsock_hdr *h,
			  uint32_t src_port, uint32_t port)
{
	struct vsock_conn *c = conn_alloc(v);
	struct io_uring_sqe *sqe;
	int n;

	if (!c) {
		pr_warn_once("more than %d vsock connections; refusing more",
			     VIRTIO_VSOCK_MAX_CONNS);
		rst_queue(v, src_port, port);
		return;
	}
	n = snprintf(c->addr.sun_path, sizeof(c->addr.sun_path), "%s_%u", v->path, port);
	if (n < 0 || (size_t)n >= sizeof(c->addr.sun_path)) {
		rst_queue(v, src_port, port);
		return;
	}
	c->addr.sun_family = AF_UNIX;
	c->local_port = port;
	c->peer_port = src_port;
	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	sqe = loop_sqe(v->mmio.loop, &c->op_op);
	if (!sqe) {
		rst_queue(v, src_port, port);
		return;
	}
	c->state = VSOCK_GUEST_CONNECT;
	/* Straight into a free slot of the ring's file table; the connect follows (op_done). */
	io_uring_prep_socket_direct_alloc(sqe, AF_UNIX, SOCK_STREAM, 0, 0);
	c->op_kind = VSOCK_OP_SOCKET;
	c->op_busy = true;
}

/* The guest's data on (c): copied into the connection's ring within the credit. */
static bool guest_data(struct vsock_conn *c, const struct vq_chain *ch, uint32_t len)
{
	/* What the guest may send is what mvm last told it (section 5.10.6.3): buf_alloc minus
	 * what it sent beyond the fwd_cnt it was given. */
	uint32_t credit = VIRTIO_VSOCK_BUF - (c->rx_cnt - c->last_fwd_cnt);
	uint32_t tail, first;

	if (len > credit || c->guest_shut_send)
		return false;
	tail = (c->out_head + c->out_len) % OUT_SIZE;
	first = MIN(len, OUT_SIZE - tail);
	iov_to_buf(ch->iov, ch->nr_out, HDR_LEN, c->out + tail, first);
	iov_to_buf(ch->iov, ch->nr_out, HDR_LEN + first, c->out, len - first);
	c->out_len += len;
	c->rx_cnt += len;
	c->v->tx_bytes += len;
	arm_write(c);
	return true;
}

/* One packet from the guest, checked here once: every field below comes from (h), a copy. */
static void tx_packet(struct virtio_vsock *v, const struct vq_chain *ch)
{
	struct virtio_vsock_hdr h;
	struct vsock_conn *c;
	uint32_t src_port, dst_port, len, flags, fwd_cnt;
	uint16_t op, type;

	if (ch->out_len < HDR_LEN) {
		/* No header to answer to: drop it (section 5.10.6.1). */
		virtio_mmio_guest_error(&v->mmio, "a transmit packet shorter than its header");
		return;
	}
	iov_to_buf(ch->iov, ch->nr_out, 0, &h, HDR_LEN);
	src_port = le32toh(h.src_port);
	dst_port = le32toh(h.dst_port);
	len = le32toh(h.len);
	op = le16toh(h.op);
	type = le16toh(h.type);
	flags = le32toh(h.flags);
	fwd_cnt = le32toh(h.fwd_cnt);
	v->tx_packets++;
	if (le64toh(h.src_cid) != v->cid || le64toh(h.dst_cid) != VIRTIO_VSOCK_HOST_CID ||
	    type != VIRTIO_VSOCK_TYPE_STREAM || len > ch->out_len - HDR_LEN ||
	    len > VIRTIO_VSOCK_MAX_PKT || op < VIRTIO_VSOCK_OP_REQUEST ||
	    op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
		pr_debug("a malformed packet (op %u, len %u); RST", op, len);
		c = conn_find(v, dst_port, src_port);
		if (c)
			conn_close(c);
		if (op != VIRTIO_VSOCK_OP_RST)
			rst_queue(v, src_port, dst_port);
		return;
	}
	c = conn_find(v, dst_port, src_port);
	if (op == VIRTIO_VSOCK_OP_RST) {
		if (c)
			conn_close(c);
		return;
	}
	if (op == VIRTIO_VSOCK_OP_REQUEST) {
		if (c) {
			/* A second REQUEST for a live connection: both are gone. */
			conn_close(c);
			rst_queue(v, src_port, dst_port);
			return;
		}
		guest_connect(v, &h, src_port, dst_port);
		return;
	}
	if (!c) {
		rst_queue(v, src_port, dst_port);
		return;
	}
	/* The guest's credit: it cannot have forwarded what it was never sent. */
	if (c->tx_cnt - fwd_cnt > c->tx_cnt - c->peer_fwd_cnt) {
		pr_debug("the guest's fwd_cnt ran ahead of what it was sent; RST");
		conn_reset(c);
		return;
	}
	c->peer_buf_alloc = le32toh(h.buf_alloc);
	c->peer_fwd_cnt = fwd_cnt;
	if (peer_credit(c))
		c->stalled = false;
	switch (op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != VSOCK_HOST_REQUEST) {
			conn_reset(c);
			return;
		}
		c->state = VSOCK_ESTABLISHED;
		v->conns_opened++;
		/* Firecracker's answer to the host peer, before any of the guest's data. */
		c->out_line = (uint32_t)snprintf((char *)c->out, VIRTIO_VSOCK_LINE_MAX, "OK %u\n",
						 c->local_port);
		c->out_len = c->out_line;
		arm_write(c);
		arm_read(c);
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != VSOCK_ESTABLISHED || !guest_data(c, ch, len)) {
			conn_reset(c);
			return;
		}
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (c->state != VSOCK_ESTABLISHED) {
			conn_reset(c);
			return;
		}
		c->guest_shut_rcv |= flags & VIRTIO_VSOCK_SHUTDOWN_RCV;
		c->guest_shut_send |= flags & VIRTIO_VSOCK_SHUTDOWN_SEND;
		check_shutdown(c);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->pending |= VSOCK_SEND_CREDIT_UPDATE;
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break;
	}
	if (c->state == VSOCK_ESTABLISHED) {
		arm_read(c);
		if (has_work(c))
			conn_enqueue(c);
	}
}

static void tx_process(struct virtio_vsock *v)
{
	struct vq *vq = &v->mmio.q[VIRTIO_VSOCK_TX_QUEUE].vq;
	bool pushed = false;

	while (virtio_mmio_queue_live(&v->mmio, VIRTIO_VSOCK_TX_QUEUE) &&
	       virtio_mmio_queue_budget(&v->mmio, VIRTIO_VSOCK_TX_QUEUE)) {
		int ret = vq_pop(vq, &v->chain);

		if (ret == 0)
			break;
		if (ret < 0) {
			virtio_mmio_set_needs_reset(&v->mmio, vq->error);
			break;
		}
		tx_packet(v, &v->chain);
		/* The payload was copied: the buffer goes back at once. */
		vq_push(vq, v->chain.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_mmio_signal_used(&v->mmio, VIRTIO_VSOCK_TX_QUEUE);
	rx_process(v);
}

/* ---- transport callbacks ---- */

/* Section 5.10.6.6: the event queue's buffers wait for a transport event; the only one is the
 * reset a restore owes (virtio_vsock_restored()). */
static void send_reset_event(struct virtio_vsock *v)
{
	struct vq *vq = &v->mmio.q[VIRTIO_VSOCK_EVENT_QUEUE].vq;
	struct virtio_vsock_event ev = {.id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET)};
	int ret;

	if (!v->reset_event_pending ||
	    !virtio_mmio_queue_live(&v->mmio, VIRTIO_VSOCK_EVENT_QUEUE) ||
	    !virtio_mmio_queue_budget(&v->mmio, VIRTIO_VSOCK_EVENT_QUEUE))
		return;
	ret = vq_pop(vq, &v->chain);
	if (ret == 0)
		return; /* the driver's next event buffer kicks this queue */
	if (ret < 0) {
		virtio_mmio_set_needs_reset(&v->mmio, vq->error);
		return;
	}
	if (v->chain.in_len < sizeof(ev)) {
		virtio_mmio_set_needs_reset(&v->mmio, "a vsock event buffer shorter than an event");
		return;
	}
	buf_to_iov(v->chain.iov + v->chain.nr_out, v->chain.nr_in, 0, &ev, sizeof(ev));
	vq_push(vq, v->chain.head, sizeof(ev));
	v->reset_event_pending = false;
	v->reset_ack_pending = true;
	/* The driver posts a buffer again once it handled the event: ask for that kick (the
	 * buffers it posted before do not count). */
	v->reset_avail_mark = vq_watch_avail(vq);
	virtio_mmio_signal_used(&v->mmio, VIRTIO_VSOCK_EVENT_QUEUE);
}

/* The event queue was kicked: a new event buffer after the reset event means the driver has
 * handled it; what waited for the receive queue goes now. */
static void event_kick(struct virtio_vsock *v)
{
	struct vq *vq = &v->mmio.q[VIRTIO_VSOCK_EVENT_QUEUE].vq;

	send_reset_event(v);
	if (v->reset_ack_pending && virtio_mmio_queue_live(&v->mmio, VIRTIO_VSOCK_EVENT_QUEUE) &&
	    vq_avail_moved(vq, v->reset_avail_mark)) {
		v->reset_ack_pending = false;
		rx_process(v);
	}
}

static void vsock_notify(struct virtio_mmio *t, unsigned int q)
{
	struct virtio_vsock *v = to_vsock(t);

	if (q == VIRTIO_VSOCK_TX_QUEUE)
		tx_process(v);
	else if (q == VIRTIO_VSOCK_RX_QUEUE)
		rx_process(v);
	else
		event_kick(v);
}

void virtio_vsock_restored(struct virtio_vsock *v, uint32_t next_local_port)
{
	v->reset_event_pending = true;
	if (next_local_port >= VIRTIO_VSOCK_LOCAL_PORT0)
		v->next_local_port = next_local_port;
}

uint32_t virtio_vsock_next_port(const struct virtio_vsock *v)
{
	return v->next_local_port;
}

/* Every connection goes with the driver (section 5.10.6.6): their host sockets are closed.
 * Nothing of the device's I/O touches guest RAM (both directions go through host buffers),
 * so nothing needs draining. */
static bool vsock_reset(struct virtio_mmio *t)
{
	struct virtio_vsock *v = to_vsock(t);

	for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++)
		conn_close(&v->conns[i]);
	v->rst_len = 0;
	v->reset_event_pending = v->reset_ack_pending = false; /* the driver starts afresh */
	return true;
}

/* Nothing of the device's I/O touches guest RAM in flight and no chain is held between
 * iterations (both directions go through host buffers), so a freeze has nothing to wait for:
 * the snapshot holds the rings; the connections stay with the host sockets (a restored
 * device sends a transport reset, virtio_vsock_restored()). */
static bool vsock_quiesce(struct virtio_mmio *t)
{
	return true;
}

static const struct virtio_mmio_dev_ops vsock_ops = {
	.reset = vsock_reset,
	.quiesce = vsock_quiesce,
	.notify = vsock_notify,
};

/* Binds and listens on (path), which must not exist (bind refuses an existing name). */
static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, e;

	if (strlen(path) + 12 >= sizeof(sa.sun_path)) {
		/* Room for "_4294967295" after it, the guest's connections. */
		pr_err("--vsock: the path '%s' is longer than %zu bytes", path,
		       sizeof(sa.sun_path) - 13);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		pr_err("socket: %s", strerror(e));
		return -e;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		e = errno;
		pr_err("--vsock: '%s': %s", path,
		       e == EADDRINUSE ? "already exists (remove a stale socket first)"
				       : strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

struct virtio_vsock *virtio_vsock_create(const char *name, uint64_t cid, const char *path,
					 const struct guest_mem *mem, struct loop *loop)
{
	struct virtio_vsock *v = calloc(1, sizeof(*v));
	int ret;

	if (!v)
		return NULL;
	v->cid = cid;
	v->config.guest_cid = htole64(cid);
	v->listen_fd = v->listen_file = -1;
	v->next_local_port = VIRTIO_VSOCK_LOCAL_PORT0;
	v->accept_op.done = accept_done;
	v->stray_close_op.done = stray_close_done;
	snprintf(v->path, sizeof(v->path), "%s", path);
	for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conns[i];

		c->v = v;
		c->file = -1;
		c->read_op.done = read_done;
		c->write_op.done = write_done;
		c->op_op.done = op_done;
		c->cancel_op.done = cancel_done;
		/* Untouched pages cost nothing: a connection's buffers are resident only as far
		 * as it used them. */
		c->out = malloc(OUT_SIZE);
		c->in = malloc(VIRTIO_VSOCK_BUF);
		if (!c->out || !c->in)
			goto fail_bufs;
	}
	v->listen_fd = listen_unix(path);
	if (v->listen_fd < 0)
		goto fail_bufs;
	ret = v->listen_file = loop_file_add(loop, v->listen_fd);
	if (ret < 0) {
		pr_err("%s: registering the socket with the io_uring: %s", name, strerror(-ret));
		goto fail_listen;
	}
	ret = virtio_mmio_init(&v->mmio, name, &vsock_ops, VIRTIO_ID_VSOCK, 0, 3,
			       VIRTIO_VSOCK_QUEUE_SIZE, &v->config, sizeof(v->config), mem, loop);
	if (ret)
		goto fail_file;
	arm_accept(v);
	return v;
fail_file:
	loop_file_remove(loop, v->listen_file);
fail_listen:
	close(v->listen_fd);
	unlink(path);
fail_bufs:
	for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		free(v->conns[i].out);
		free(v->conns[i].in);
	}
	free(v);
	return NULL;
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	if (!v)
		return;
	loop_file_remove(v->mmio.loop, v->listen_file);
	virtio_mmio_fini(&v->mmio);
	close(v->listen_fd);
	unlink(v->path);
	for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		free(v->conns[i].out);
		free(v->conns[i].in);
	}
	free(v);
}
