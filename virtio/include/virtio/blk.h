/* blk.h: virtio-blk (virtio 1.2 section 5.2) on a raw image, served on the I/O thread's
 * io_uring loop: each request becomes one readv/writev/fsync/fallocate straight on guest RAM,
 * in a request slot preallocated per descriptor head (no allocation per request). */
#ifndef MVM_VIRTIO_BLK_H
#define MVM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The ABI (section 5.2: feature bits, request types and status values, the config space, the
 * request header and the discard/write-zeroes segment) is the kernel's. */
#include <linux/virtio_blk.h>

#include "core/guest_mem.h"
#include "core/loop.h"
#include "core/rate_limiter.h"
#include "virtio/mmio.h"
#include "virtio/vq.h"

#define VIRTIO_BLK_SECTOR   512

#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SEG_MAX    (VQ_IOV_MAX - 2)		/* header and status take one each */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS 0x3fffff		/* 2 GiB per request */

/* The fields mvm fills and reads, where section 5.2.4 and 5.2.6 put them. */
_Static_assert(offsetof(struct virtio_blk_config, seg_max) == 12, "seg_max");
_Static_assert(offsetof(struct virtio_blk_config, blk_size) == 20, "blk_size");
_Static_assert(offsetof(struct virtio_blk_config, num_queues) == 34, "num_queues");
_Static_assert(offsetof(struct virtio_blk_config, max_discard_sectors) == 36, "max_discard");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56, "wz unmap");
_Static_assert(sizeof(struct virtio_blk_config) >= 72, "virtio_blk_config size");
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "virtio_blk_outhdr size");
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16, "discard segment size");

/* An opened, locked image. */
struct blk_image {
	int fd;
	uint64_t size;		/* bytes */
	bool ro;
	bool direct;		/* O_DIRECT: the host page cache is bypassed */
};

/* Opens (path) read-write, or read-only when (ro), and locks it with flock(): LOCK_EX, or
 * LOCK_SH for read-only, never waiting. Regular files and block devices. With (direct) the
 * image is opened O_DIRECT: guest buffers are then read and written without the host page
 * cache, and a request whose buffers are not 512-byte aligned fails with IOERR (Linux guests
 * align them). Returns 0 or -errno after one clear message naming the path: missing,
 * unreadable, not writable (suggests ",ro"), no O_DIRECT on that file system, locked by another
 * process, not a file or device, or smaller than one sector. */
int blk_image_open(struct blk_image *img, const char *path, bool ro, bool direct);
void blk_image_close(struct blk_image *img);

struct virtio_blk;

/* One request in flight; slot i serves descriptor head i. I/O thread only. */
struct virtio_blk_req {
	struct loop_op op;
	struct virtio_blk *blk;
	struct vq_chain chain;
	struct iovec *data;		/* the data segments inside chain.iov */
	unsigned int nr_data;
	uint8_t *status;		/* last byte of the last writable segment */
	uint64_t offset;		/* next byte of the image */
	uint64_t remaining;		/* bytes still to transfer */
	uint32_t written;		/* used length on success */
	uint32_t type;
	/* The parsed request, kept while the rate limiter holds it (blk.c start()). */
	uint64_t sector;
	struct iovec *in;		/* the writable data segments (status byte cut off) */
	unsigned int nin, nout;		/* writable data, readable data after the header */
	uint64_t in_len, out_len;	/* their bytes */
	bool sync_after;		/* an fdatasync follows before the request completes */
	bool busy;
};

struct virtio_blk {
	struct virtio_mmio mmio;	/* first: the bus device */
	struct virtio_blk_config config;
	char name[48];
	char id[VIRTIO_BLK_ID_BYTES];
	int fd;				/* borrowed from the blk_image */
	int file;			/* fd's slot in the loop's file table: every SQE uses it */
	bool ro;
	uint64_t capacity;		/* sectors */
	unsigned int inflight;		/* I/O thread */
	bool sync_writes;		/* FLUSH not negotiated: writes are RWF_DSYNC, discard and
					 * write-zeroes are followed by an fdatasync */
	/* Firecracker's drive rate_limiter: a read or write costs its data bytes and one
	 * operation, any other request one operation. Off until rate_limiter_update(). */
	struct rate_limiter rl;
	struct virtio_blk_req *held;	/* parsed, refused by the limiter, goes first (I/O) */
	struct virtio_blk_req req[VIRTIO_BLK_QUEUE_SIZE];
};

/* Creates a virtio-blk device (heap-allocated, for virtio_blk_destroy()) on (img), which stays
 * open and owned by the caller. (name) labels messages; (id) is what GET_ID returns (up to 20
 * bytes, NULL for none). Arms its reads on (loop): before loop_start() or on the I/O thread.
 * Returns the device or NULL (logged). */
struct virtio_blk *virtio_blk_create(const char *name, const struct blk_image *img,
				     const char *id, const struct guest_mem *mem,
				     struct loop *loop);

/* The device's limiter: set or change it with rate_limiter_update(&b->rl, ...) from any
 * thread, before or while the guest runs; its throttle count is b->rl.throttled. */

/* After the loop has stopped: waits (at most a few seconds) for in-flight I/O, so nothing
 * writes guest RAM once it is unmapped. Runs the loop's completions on the calling thread. */
void virtio_blk_drain(struct virtio_blk *b);
void virtio_blk_destroy(struct virtio_blk *b);

#endif
