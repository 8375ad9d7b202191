/* vsock.h: virtio-vsock (virtio 1.2 section 5.10), stream sockets only, with Firecracker's
 * host side: the guest's connections to host port P reach the Unix socket "PATH_P"; a host
 * process that connects to the Unix socket PATH and writes "CONNECT <port>\n" reaches the
 * guest's listener on that port and reads "OK <hostport>\n" once the guest accepted.
 *
 * Everything runs on the I/O loop: the listening socket is made before the loop starts; the
 * accepted and the outgoing Unix sockets live only in the ring's file table (io_uring direct
 * descriptors: IORING_OP_ACCEPT and IORING_OP_SOCKET with IORING_FILE_INDEX_ALLOC, then
 * IORING_OP_CONNECT, IORING_OP_READ, IORING_OP_SENDMSG, IORING_OP_SHUTDOWN, IORING_OP_CLOSE),
 * so the I/O thread makes no system call besides io_uring_enter.
 *
 * Memory is bounded per connection: VIRTIO_VSOCK_BUF bytes each way. Guest data waits in the
 * connection's buffer until the Unix socket takes it, and the guest may send only what the
 * credit mvm advertises leaves room for (section 5.10.6.3); host data is read only as far as
 * the guest's advertised credit allows. A packet beyond the credit, for an unknown
 * connection, with a wrong CID, type or op, or a length beyond its buffer is answered with
 * RST. */
#ifndef MVM_VIRTIO_VSOCK_H
#define MVM_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <linux/virtio_vsock.h>

#include "core/guest_mem.h"
#include "core/loop.h"
#include "virtio/mmio.h"
#include "virtio/vq.h"

#define VIRTIO_VSOCK_RX_QUEUE	 0
#define VIRTIO_VSOCK_TX_QUEUE	 1
#define VIRTIO_VSOCK_EVENT_QUEUE 2
#define VIRTIO_VSOCK_QUEUE_SIZE	 256

#define VIRTIO_VSOCK_HOST_CID 2 /* VMADDR_CID_HOST: the only peer mvm serves */
/* Connections open at once (each direction of each one buffers VIRTIO_VSOCK_BUF bytes). */
#define VIRTIO_VSOCK_MAX_CONNS 64
/* The credit mvm gives the guest (buf_alloc) and the most host bytes buffered for it. */
#define VIRTIO_VSOCK_BUF (128u << 10)
/* The largest payload of one packet: Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE. */
#define VIRTIO_VSOCK_MAX_PKT (64u << 10)
/* "CONNECT 4294967295\n" and a little: the longest line a host peer may send first. */
#define VIRTIO_VSOCK_LINE_MAX 32
/* Host-side ports mvm gives the connections the host opens (the <hostport> of "OK"). */
#define VIRTIO_VSOCK_LOCAL_PORT0 (1u << 30)
/* RSTs for packets of no connection, waiting for receive buffers; more are dropped. */
#define VIRTIO_VSOCK_RST_QUEUE 64

/* The guest-visible layouts (section 5.10.4, 5.10.6) are the kernel's. */
_Static_assert(sizeof(struct virtio_vsock_config) == 8, "virtio_vsock_config size");
_Static_assert(sizeof(struct virtio_vsock_hdr) == 44, "virtio_vsock_hdr size");
_Static_assert(offsetof(struct virtio_vsock_hdr, len) == 24, "virtio_vsock_hdr.len");
_Static_assert(offsetof(struct virtio_vsock_hdr, op) == 30, "virtio_vsock_hdr.op");
_Static_assert(offsetof(struct virtio_vsock_hdr, fwd_cnt) == 40, "virtio_vsock_hdr.fwd_cnt");

enum vsock_conn_state {
	VSOCK_FREE,
	VSOCK_HOST_LINE,     /* accepted from the host, reading "CONNECT <port>\n" */
	VSOCK_HOST_REQUEST,  /* REQUEST sent to the guest, waiting for its RESPONSE */
	VSOCK_GUEST_CONNECT, /* the guest's REQUEST: socket and connect to PATH_P in flight */
	VSOCK_ESTABLISHED,
	VSOCK_CLOSING, /* its operations are being cancelled, its file closed */
};

/* Packets owed to the guest on one connection, sent as receive buffers come (bits). */
enum {
	VSOCK_SEND_REQUEST = 1u << 0,
	VSOCK_SEND_RESPONSE = 1u << 1,
	VSOCK_SEND_CREDIT_UPDATE = 1u << 2,
	VSOCK_SEND_CREDIT_REQUEST = 1u << 3,
	VSOCK_SEND_SHUTDOWN = 1u << 4,
	VSOCK_SEND_RST = 1u << 5,
};

/* One stream, I/O thread only. */
struct vsock_conn {
	struct virtio_vsock *v;
	enum vsock_conn_state state;
	int file;	      /* its Unix socket's slot in the ring's file table, or -1 */
	uint32_t local_port;  /* mvm's end (the host port the guest sees) */
	uint32_t peer_port;   /* the guest's end */
	unsigned int pending; /* VSOCK_SEND_* */
	bool queued;	      /* on the list of connections with something to send */
	uint16_t next_queued; /* that list, by index (+1; 0 ends it) */

	/* Credit (section 5.10.6.3). The guest's: what it can still take. */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt; /* payload bytes sent to the guest */
	/* Ours: rx_cnt counts the guest's payload bytes taken, fwd_cnt those the Unix socket
	 * took; last_fwd_cnt is the fwd_cnt the guest was last told. */
	uint32_t rx_cnt, fwd_cnt, last_fwd_cnt;

	/* Guest -> host: a ring of VIRTIO_VSOCK_BUF + VIRTIO_VSOCK_LINE_MAX bytes (room for
	 * the "OK" line besides the credit), written to the socket with sendmsg. */
	uint8_t *out;
	uint32_t out_head, out_len;
	uint32_t out_line; /* leading bytes of out that are mvm's "OK" line */
	struct iovec out_iov[2];
	struct msghdr out_msg;
	bool write_busy;
	/* Host -> guest: read into in[in_len, ...), sent from in[in_head, ...). */
	uint8_t *in;
	uint32_t in_head, in_len;
	bool read_busy;

	bool guest_shut_send, guest_shut_rcv; /* the guest's SHUTDOWN flags */
	bool host_eof;			      /* the Unix socket read 0 */
	bool shut_wr_done;		      /* SHUT_WR given to the socket */
	bool stalled;			      /* out of the guest's credit, CREDIT_REQUEST sent */
	bool op_busy;			      /* op_kind is in flight */
	enum { VSOCK_OP_SOCKET, VSOCK_OP_CONNECT, VSOCK_OP_SHUTDOWN, VSOCK_OP_CLOSE } op_kind;
	unsigned int cancel_busy; /* cancels in flight */

	struct sockaddr_un addr; /* PATH_P, for the connect */
	struct loop_op read_op, write_op, op_op, cancel_op;
};

struct virtio_vsock {
	struct virtio_mmio mmio; /* first: the bus device */
	struct virtio_vsock_config config;
	uint64_t cid;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int listen_file;
	struct loop_op accept_op;
	struct loop_op stray_close_op; /* closing a socket no connection takes */
	bool accept_busy;
	uint32_t next_local_port;

	struct vsock_conn conns[VIRTIO_VSOCK_MAX_CONNS];
	uint16_t queue_head, queue_tail; /* connections with packets owed, +1 (0: none) */
	/* RSTs owed for packets of no connection: (guest port, host port) pairs. */
	struct {
		uint32_t src_port, dst_port;
	} rst[VIRTIO_VSOCK_RST_QUEUE];
	unsigned int rst_head, rst_len;

	struct vq_chain chain; /* scratch, I/O thread */
	/* A VIRTIO_VSOCK_EVENT_TRANSPORT_RESET owed to the driver (a restored device: its
	 * connections stayed with the snapshot's host sockets): sent on the event queue once
	 * the device is live and the driver has posted an event buffer. Until the driver has
	 * taken it (it posts a new event buffer once it has reset its sockets: Linux's
	 * virtio_transport_event_work()), nothing goes on the receive queue: a new connection
	 * that reached the guest first would be reset with the old ones, and could even reuse
	 * an old connection's ports. */
	bool reset_event_pending, reset_ack_pending;
	uint16_t reset_avail_mark;	/* the event queue's avail index when the reset went */

	/* Counters, I/O thread. rx: packets and payload bytes put on the receive queue (to the
	 * guest, RSTs included); tx: those the guest put on its transmit queue. */
	uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes, rsts_sent, conns_opened;
};

/* Creates a vsock device for guest (cid) (3 or more) whose host side is the Unix socket
 * (path), which must not exist: it is created and listened on here (before loop_start()),
 * and removed by virtio_vsock_destroy(). (mem) and (loop) are borrowed. Returns NULL with a
 * message on failure. */
struct virtio_vsock *virtio_vsock_create(const char *name, uint64_t cid, const char *path,
					 const struct guest_mem *mem, struct loop *loop);
/* After the loop has stopped: removes the socket file and frees (v). The connections' files
 * go with the ring (loop_fini()). */
void virtio_vsock_destroy(struct virtio_vsock *v);
/* (v) was restored from a snapshot (before the loop starts): the guest's connections are
 * gone with the old host sockets, so the driver is told with a transport reset event (section
 * 5.10.6.6), after which it resets them and reads the guest CID again; its listeners stay.
 * Host-side ports go on from (next_local_port), what virtio_vsock_next_port() said at the
 * snapshot: a new connection with an old one's ports could meet that one's socket in the
 * guest before it is gone, and be reset with it. */
void virtio_vsock_restored(struct virtio_vsock *v, uint32_t next_local_port);
/* The next host-side port (of a frozen device, for a snapshot). */
uint32_t virtio_vsock_next_port(const struct virtio_vsock *v);

#endif
