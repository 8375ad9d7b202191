/* net.h: virtio-net (virtio 1.2 section 5.1) on a TAP device, one receive and one transmit
 * queue, served on the I/O thread's io_uring loop: a transmit chain becomes one writev to the
 * TAP (its header from the copy that was checked, the frame from guest RAM), a received frame
 * one readv from the TAP into guest RAM (across several receive buffers with
 * VIRTIO_NET_F_MRG_RXBUF), with the 12-byte virtio_net_hdr_v1 passed through (IFF_VNET_HDR) so
 * checksum and segmentation offloads cross unchanged. When the guest has not posted room for
 * the largest frame it may get, nothing is read: frames wait in the TAP's queue until the
 * guest's next RX kick. No allocation per packet. */
#ifndef MVM_VIRTIO_NET_H
#define MVM_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The ABI (section 5.1: feature bits, link status, the config space and the vnet header with
 * its flags and gso_type values) is the kernel's. */
#include <linux/virtio_net.h>

#include "core/guest_mem.h"
#include "core/loop.h"
#include "core/rate_limiter.h"
#include "virtio/mmio.h"
#include "virtio/vq.h"

#define VIRTIO_NET_RX_QUEUE   0
#define VIRTIO_NET_TX_QUEUE   1
#define VIRTIO_NET_QUEUE_SIZE 256
/* The largest frame a TSO/GSO packet can be, plus the header: what a receive chain needs. */
#define VIRTIO_NET_MAX_FRAME  (65535 + 14 + 4)
/* The largest frame without segmentation offloads: 1500 bytes of MTU, Ethernet header, VLAN. */
#define VIRTIO_NET_MAX_MTU_FRAME (1500 + 14 + 4)

/* The config space mvm offers ends with mtu (section 5.1.4: mac, status, max_virtqueue_pairs,
 * mtu); later fields belong to features it does not offer. */
#define VIRTIO_NET_CONFIG_LEN (offsetof(struct virtio_net_config, mtu) + sizeof(uint16_t))
_Static_assert(VIRTIO_NET_CONFIG_LEN == 12, "virtio_net_config up to mtu");
_Static_assert(offsetof(struct virtio_net_config, status) == 6, "virtio_net_config.status");

/* The header in front of every frame, both directions. With VIRTIO_F_VERSION_1 (always
 * negotiated here) it has num_buffers whether or not MRG_RXBUF is (section 5.1.6). */
_Static_assert(sizeof(struct virtio_net_hdr_v1) == 12, "virtio_net_hdr_v1 size");
_Static_assert(offsetof(struct virtio_net_hdr_v1, csum_start) == 6, "csum_start");
_Static_assert(offsetof(struct virtio_net_hdr_v1, num_buffers) == 10, "num_buffers");

/* Opens TAP (name) with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a 12-byte vnet header, creating
 * it when it does not exist (which needs CAP_NET_ADMIN; the TAP then goes away with the fd).
 * Returns the fd (O_CLOEXEC, blocking) or -errno after one clear message naming the TAP: no
 * /dev/net/tun, no permission, in use, not a TAP, no vnet header support. */
int tap_open(const char *name);

/* A random locally administered unicast MAC (first byte xxxxxx10). */
void virtio_net_random_mac(uint8_t mac[6]);

/* Transmit chains in flight at once: a kick's worth of frames goes out in one io_uring_enter. */
#define VIRTIO_NET_TX_SLOTS 16
/* Receive segments one read may cover (the kernel's UIO_MAXIOV). */
#define VIRTIO_NET_RX_IOV_MAX 1024

struct virtio_net_tx_slot {
	struct loop_op op;
	struct virtio_net *net;		/* the owner, for the completion */
	struct vq_chain chain;
	/* What the write sends: the header as checked, from this copy (the guest can rewrite
	 * its own while the write waits), then the rest of the chain from guest RAM. */
	struct virtio_net_hdr_v1 hdr;
	struct iovec iov[1 + VQ_IOV_MAX];
	unsigned int nr_iov;
	bool busy;			/* a write (or a POLLOUT wait) is in flight */
	bool poll;			/* the op in flight is the POLLOUT wait */
};

/* A receive chain held for the next read: its segments are in rx_iov, in order. */
struct virtio_net_rx_held {
	uint16_t head;
	uint16_t nr_iov;
	uint32_t len;
};

struct virtio_net {
	struct virtio_mmio mmio;	/* first: the bus device */
	struct virtio_net_config config;
	char name[48];
	int fd;				/* borrowed: the TAP (or, in tests, a SOCK_SEQPACKET) */
	int file;			/* fd's slot in the loop's file table: every SQE uses it */
	bool tap;			/* fd is a TAP: offloads go to TUNSETOFFLOAD */
	unsigned int offloads;		/* TUN_F_* set on the TAP */

	/* I/O thread. Receive: one read in flight, into every chain held (in the order the
	 * driver made them available); the frame takes as many as it fills (MRG_RXBUF) or
	 * exactly one, the rest stay held for the next frame. */
	struct loop_op rx_op, cancel_op;
	struct vq_chain rx_pop;		/* scratch for vq_pop() */
	struct virtio_net_rx_held rx_held[VIRTIO_NET_QUEUE_SIZE];
	struct iovec rx_iov[VIRTIO_NET_RX_IOV_MAX];
	unsigned int rx_nr_held, rx_nr_iov;
	size_t rx_held_len;		/* bytes the held chains can take */
	size_t rx_need;			/* the largest frame the driver may be handed, with header */
	bool rx_mergeable;		/* VIRTIO_NET_F_MRG_RXBUF negotiated */
	bool rx_busy;			/* a read (or a POLLIN wait) is in flight */
	bool rx_poll;			/* the op in flight is the POLLIN wait */
	bool rx_stopped;		/* the backend failed for good: no more reads */
	/* Transmit: up to VIRTIO_NET_TX_SLOTS writes in flight, each owning its chain. */
	struct virtio_net_tx_slot tx[VIRTIO_NET_TX_SLOTS];
	unsigned int tx_nr_busy;
	bool draining;			/* virtio_net_drain(): completions resubmit nothing */
	/* Firecracker's rx_rate_limiter and tx_rate_limiter: a frame costs its bytes (without
	 * the header) and one operation. Off until rate_limiter_update(), from any thread. A
	 * received frame the RX limiter refuses stays in the held chains, unpublished, and no
	 * read follows until it goes; a transmit frame the TX limiter refuses stays in its slot
	 * and goes before any other. */
	struct rate_limiter rx_rl, tx_rl;
	size_t rx_pending;		/* length (with header) of that received frame, or 0 */
	struct virtio_net_tx_slot *tx_held;	/* that transmit frame, or NULL */
	/* Counters (I/O thread; read after the loop stopped). Frame sizes exclude the header. */
	uint64_t rx_packets, tx_packets, rx_dropped, tx_dropped, rx_bytes, tx_bytes;
	uint32_t rx_largest, tx_largest;
};

/* Creates a virtio-net device (heap-allocated, for virtio_net_destroy()) on (fd), which stays
 * open and owned by the caller; (tap) says whether fd is a TAP (offloads are then applied with
 * TUNSETOFFLOAD when the driver accepts them). (mac) is the guest's address. Before
 * loop_start() or on the I/O thread. Returns the device or NULL (logged). */
struct virtio_net *virtio_net_create(const char *name, int fd, bool tap, const uint8_t mac[6],
				     const struct guest_mem *mem, struct loop *loop);

/* After the loop has stopped: cancels the receive that waits on the TAP and waits (at most a
 * few seconds) for both ops, so nothing writes guest RAM once it is unmapped. Runs the loop's
 * completions on the calling thread. */
void virtio_net_drain(struct virtio_net *n);
void virtio_net_destroy(struct virtio_net *n);
/* One line of counters for --stats: frames, bytes, the largest frame each way (above the MTU
 * means a segmentation offload frame crossed whole), drops, and the times each direction's
 * rate limiter made the queue wait. */
void virtio_net_print_stats(const struct virtio_net *n, FILE *out);

#endif
