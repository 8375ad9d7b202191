/* blk.c: virtio-blk on a raw image (virtio 1.2 section 5.2). Requests are popped and validated
 * on the I/O thread and become io_uring readv/writev/fsync/fallocate on guest RAM; completions
 * write the status byte, push the used entry and signal once per loop iteration. */
#define pr_fmt(fmt) "virtio-blk: " fmt
#include "virtio/blk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

int blk_image_open(struct blk_image *img, const char *path, bool ro, bool direct)
{
	struct stat st;
	int ret;

	img->fd = open(path, (ro ? O_RDONLY : O_RDWR) | (direct ? O_DIRECT : 0) | O_CLOEXEC);
	img->ro = ro;
	img->direct = direct;
	if (img->fd < 0) {
		ret = -errno;
		pr_err("disk '%s': %s%s", path, strerror(errno),
		       !ro && (errno == EACCES || errno == EROFS || errno == EPERM)
			       ? " (append ,ro to use it read-only)"
		       : direct && errno == EINVAL
			       ? " (its file system does not support O_DIRECT: drop ,direct)"
			       : "");
		return ret;
	}
	if (fstat(img->fd, &st) < 0) {
		ret = -errno;
		pr_err("disk '%s': fstat: %s", path, strerror(errno));
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		img->size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(img->fd, BLKGETSIZE64, &img->size) < 0) {
			ret = -errno;
			pr_err("disk '%s': BLKGETSIZE64: %s", path, strerror(errno));
			goto fail;
		}
	} else {
		ret = -EINVAL;
		pr_err("disk '%s' is neither a regular file nor a block device", path);
		goto fail;
	}
	/* One writer or several readers per image, across processes (and across -d options of
	 * this one: each open is its own lock owner). */
	if (flock(img->fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		ret = -errno;
		if (errno == EWOULDBLOCK)
			pr_err("disk '%s' is locked by another user of the image (another mvm?)%s",
			       path, ro ? "" : "; a writable disk needs it to itself");
		else
			pr_err("disk '%s': flock: %s", path, strerror(errno));
		goto fail;
	}
	if (img->size < VIRTIO_BLK_SECTOR) {
		ret = -EINVAL;
		pr_err("disk '%s' is smaller than one %d-byte sector", path, VIRTIO_BLK_SECTOR);
		goto fail;
	}
	if (img->size % VIRTIO_BLK_SECTOR)
		pr_warn("disk '%s': the last %llu bytes are not a whole sector; the guest does "
			"not see them", path, (unsigned long long)(img->size % VIRTIO_BLK_SECTOR));
	return 0;
fail:
	close(img->fd);
	img->fd = -1;
	return ret;
}

void blk_image_close(struct blk_image *img)
{
	if (img->fd >= 0)
		close(img->fd);
	img->fd = -1;
}

static struct virtio_blk *to_blk(struct virtio_mmio *t)
{
	return container_of(t, struct virtio_blk, mmio);
}

/* Ends a request: status byte, used entry, slot free. I/O thread. */
static void complete(struct virtio_blk_req *r, uint8_t status, uint32_t written)
{
	struct virtio_blk *b = r->blk;

	__atomic_store_n(r->status, status, __ATOMIC_RELAXED);
	r->busy = false;
	b->inflight--;
	if (b->mmio.resetting) {
		/* The driver reset the device: nothing goes to the used ring any more. */
		if (!b->inflight)
			virtio_mmio_reset_done(&b->mmio);
		return;
	}
	if (!virtio_mmio_queue_live(&b->mmio, 0))
		return;
	if (r->type == VIRTIO_BLK_T_IN)
		for (unsigned int i = r->chain.nr_out; i < r->chain.nr_out + r->chain.nr_in; i++)
			guest_mem_dma_done(b->mmio.mem, r->chain.iov[i].iov_base,
					   r->chain.iov[i].iov_len);
	vq_push(&b->mmio.q[0].vq, r->chain.head, written);
	virtio_mmio_signal_used(&b->mmio, 0);
	if (!b->inflight)
		virtio_mmio_quiesce_done(&b->mmio); /* a freeze waited for this one */
}

static void fail(struct virtio_blk_req *r, uint8_t status, const char *why)
{
	pr_debug("%s: request type %u failed: %s", r->blk->name, r->type, why);
	complete(r, status, 1);
}

static void submit(struct virtio_blk_req *r);

static void rw_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_blk_req *r = container_of(op, struct virtio_blk_req, op);

	if (res == -EAGAIN || res == -EINTR) {
		submit(r);
		return;
	}
	if (res < 0) {
		pr_debug("%s: %s at %llu: %s", r->blk->name,
			 r->type == VIRTIO_BLK_T_IN ? "read" : "write",
			 (unsigned long long)r->offset, strerror(-res));
		complete(r, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	if (res == 0) {
		/* Only past the end of the file, which the capacity check excludes: the image
		 * shrank under us. */
		fail(r, VIRTIO_BLK_S_IOERR, "short transfer (image truncated?)");
		return;
	}
	if ((uint64_t)res < r->remaining) {
		/* A short transfer: go on with the rest, in place. */
		iov_consume(r->data, &r->nr_data, (size_t)res);
		r->offset += (uint64_t)res;
		r->remaining -= (uint64_t)res;
		submit(r);
		return;
	}
	complete(r, VIRTIO_BLK_S_OK, r->written);
}

static void submit(struct virtio_blk_req *r)
{
	struct virtio_blk *b = r->blk;
	struct io_uring_sqe *sqe = loop_sqe(b->mmio.loop, &r->op);

	if (!sqe) {
		pr_warn_once("%s: io_uring submission queue full; failing a request", b->name);
		complete(r, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	if (r->type == VIRTIO_BLK_T_IN)
		io_uring_prep_readv(sqe, b->file, r->data, r->nr_data, r->offset);
	else
		io_uring_prep_writev2(sqe, b->file, r->data, r->nr_data, r->offset,
				      b->sync_writes ? RWF_DSYNC : 0);
	loop_sqe_fixed(sqe);
}

/* A read or write of (len) bytes at (sector) into/from (iov, n). */
static void start_rw(struct virtio_blk_req *r, uint64_t sector, struct iovec *iov, unsigned int n,
		     uint64_t len)
{
	struct virtio_blk *b = r->blk;
	uint64_t end;

	if (len % VIRTIO_BLK_SECTOR) {
		fail(r, VIRTIO_BLK_S_IOERR, "data length not a multiple of 512");
		return;
	}
	if (__builtin_add_overflow(sector, len / VIRTIO_BLK_SECTOR, &end) || end > b->capacity) {
		fail(r, VIRTIO_BLK_S_IOERR, "sector past the end of the disk");
		return;
	}
	if (len == 0) {
		complete(r, VIRTIO_BLK_S_OK, 1);
		return;
	}
	r->data = iov;
	r->nr_data = n;
	r->offset = sector * VIRTIO_BLK_SECTOR;
	r->remaining = len;
	r->written = r->type == VIRTIO_BLK_T_IN ? (uint32_t)len + 1 : 1;
	submit(r);
}

static int submit_datasync(struct virtio_blk_req *r);

static void other_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_blk_req *r = container_of(op, struct virtio_blk_req, op);

	/* Discard is a hint: a file system or device without hole punching still succeeds. */
	if (r->type == VIRTIO_BLK_T_DISCARD && (res == -EOPNOTSUPP || res == -ENOTTY))
		res = 0;
	if (res >= 0 && r->sync_after) {
		r->sync_after = false;
		res = submit_datasync(r);
		if (!res)
			return; /* completes when the fdatasync does */
	}
	if (res < 0)
		pr_debug("%s: request type %u: %s", r->blk->name, r->type, strerror(-res));
	complete(r, res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, 1);
}

/* An fdatasync of the whole image for (r), completed by other_done(). Returns 0 or -EBUSY
 * (the submission queue is full). */
static int submit_datasync(struct virtio_blk_req *r)
{
	struct io_uring_sqe *sqe = loop_sqe(r->blk->mmio.loop, &r->op);

	if (!sqe)
		return -EBUSY;
	r->op.done = other_done;
	io_uring_prep_fsync(sqe, r->blk->file, IORING_FSYNC_DATASYNC);
	loop_sqe_fixed(sqe);
	return 0;
}

static void start_flush(struct virtio_blk_req *r)
{
	if (r->blk->ro) {
		complete(r, VIRTIO_BLK_S_OK, 1); /* nothing can be dirty */
		return;
	}
	/* Section 5.2.6.2: a flush covers every write completed before it; ours complete
	 * only after their writev did, so an fdatasync issued now covers them. */
	if (submit_datasync(r))
		complete(r, VIRTIO_BLK_S_IOERR, 1);
}

/* Discard or write-zeroes with its one segment in the readable data (iov, n, len). */
static void start_discard(struct virtio_blk_req *r, const struct iovec *iov, unsigned int n,
			  uint64_t len)
{
	struct virtio_blk *b = r->blk;
	bool wz = r->type == VIRTIO_BLK_T_WRITE_ZEROES;
	struct virtio_blk_discard_write_zeroes seg;
	struct io_uring_sqe *sqe;
	uint64_t sector, end;
	uint32_t num, flags;
	int mode;

	if (!virtio_mmio_has_feature(&b->mmio,
				     wz ? VIRTIO_BLK_F_WRITE_ZEROES : VIRTIO_BLK_F_DISCARD)) {
		fail(r, VIRTIO_BLK_S_UNSUPP, "discard/write-zeroes not negotiated");
		return;
	}
	if (b->ro) {
		fail(r, VIRTIO_BLK_S_IOERR, "read-only disk");
		return;
	}
	if (len != sizeof(seg)) {
		fail(r, VIRTIO_BLK_S_IOERR, "not exactly one discard segment");
		return;
	}
	iov_to_buf(iov, n, 0, &seg, sizeof(seg));
	sector = le64toh(seg.sector);
	num = le32toh(seg.num_sectors);
	flags = le32toh(seg.flags);
	/* Section 5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP. */
	if (flags & ~(wz ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0)) {
		fail(r, VIRTIO_BLK_S_UNSUPP, "unknown discard/write-zeroes flags");
		return;
	}
	if (num > VIRTIO_BLK_MAX_DISCARD_SECTORS ||
	    __builtin_add_overflow(sector, num, &end) || end > b->capacity) {
		fail(r, VIRTIO_BLK_S_IOERR, "discard range past the end or too large");
		return;
	}
	if (num == 0) {
		complete(r, VIRTIO_BLK_S_OK, 1);
		return;
	}
	sqe = loop_sqe(b->mmio.loop, &r->op);
	if (!sqe) {
		complete(r, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	/* Write-zeroes with unmap, and discard, punch a hole (it reads back as zeroes);
	 * write-zeroes without unmap keeps the blocks allocated. */
	mode = FALLOC_FL_KEEP_SIZE |
	       (wz && !(flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ? FALLOC_FL_ZERO_RANGE
								 : FALLOC_FL_PUNCH_HOLE);
	r->op.done = other_done;
	/* Without FLUSH nothing acknowledged may be lost (see blk_activate()): the new extents
	 * are committed with an fdatasync before the request completes, as a write is with
	 * RWF_DSYNC. */
	r->sync_after = b->sync_writes;
	io_uring_prep_fallocate(sqe, b->file, mode, sector * VIRTIO_BLK_SECTOR,
				(uint64_t)num * VIRTIO_BLK_SECTOR);
	loop_sqe_fixed(sqe);
}

/* Bytes of a request for the bandwidth bucket: the data a read or write moves (Firecracker
 * charges those; flush, GET_ID, discard and write-zeroes cost one operation only). */
static uint64_t cost(const struct virtio_blk_req *r)
{
	return r->type == VIRTIO_BLK_T_IN ? r->in_len
	       : r->type == VIRTIO_BLK_T_OUT ? r->out_len : 0;
}

/* Serves the request parsed by start(). */
static void dispatch(struct virtio_blk *b, struct virtio_blk_req *r)
{
	size_t n;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		start_rw(r, r->sector, r->in, r->nin, r->in_len);
		break;
	case VIRTIO_BLK_T_OUT:
		if (b->ro) {
			fail(r, VIRTIO_BLK_S_IOERR, "write to a read-only disk");
			break;
		}
		start_rw(r, r->sector, r->chain.iov, r->nout, r->out_len);
		break;
	case VIRTIO_BLK_T_FLUSH:
		start_flush(r);
		break;
	case VIRTIO_BLK_T_GET_ID:
		/* Up to 20 bytes, NUL-padded, not necessarily NUL-terminated (5.2.6). */
		n = buf_to_iov(r->in, r->nin, 0, b->id,
			       MIN(r->in_len, (uint64_t)VIRTIO_BLK_ID_BYTES));
		complete(r, VIRTIO_BLK_S_OK, (uint32_t)n + 1);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		start_discard(r, r->chain.iov, r->nout, r->out_len);
		break;
	default:
		fail(r, VIRTIO_BLK_S_UNSUPP, "unknown request type");
		break;
	}
}

/* Starts the validated chain in (r). Every failure from here on completes the request with
 * a status, except a chain without a writable byte for that status. Returns false when the
 * rate limiter holds the request (parsed, in b->held): the queue stops until it goes. */
static bool start(struct virtio_blk *b, struct virtio_blk_req *r)
{
	struct vq_chain *c = &r->chain;
	struct virtio_blk_outhdr hdr;
	struct iovec *last;

	if (c->in_len == 0) {
		virtio_mmio_set_needs_reset(&b->mmio, "request without a writable status byte");
		return true;
	}
	/* Section 5.2.6: the status is the last byte the device writes. */
	r->in = c->iov + c->nr_out;
	r->nin = c->nr_in;
	r->nout = c->nr_out;
	last = &r->in[r->nin - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	if (--last->iov_len == 0)
		r->nin--;
	r->in_len = c->in_len - 1;
	r->busy = true;
	r->type = UINT32_MAX;
	r->sync_after = false;
	r->op.done = rw_done;
	b->inflight++;

	if (iov_to_buf(c->iov, r->nout, 0, &hdr, sizeof(hdr)) != sizeof(hdr)) {
		fail(r, VIRTIO_BLK_S_IOERR, "request header shorter than 16 bytes");
		virtio_mmio_guest_error(&b->mmio, "virtio-blk request header shorter than 16 bytes");
		return true;
	}
	iov_consume(c->iov, &r->nout, sizeof(hdr));
	r->out_len = c->out_len - sizeof(hdr);
	r->type = le32toh(hdr.type);
	r->sector = le64toh(hdr.sector);
	if (!rate_limiter_consume(&b->rl, cost(r))) {
		b->held = r;
		return false;
	}
	dispatch(b, r);
	return true;
}

static void blk_notify(struct virtio_mmio *t, unsigned int q)
{
	struct virtio_blk *b = to_blk(t);
	struct vq *vq = &t->q[0].vq;

	if (b->held) {
		struct virtio_blk_req *r = b->held;

		if (!virtio_mmio_queue_live(t, 0) || !rate_limiter_consume(&b->rl, cost(r)))
			return;
		b->held = NULL;
		dispatch(b, r);
	}
	while (virtio_mmio_queue_live(t, 0) && virtio_mmio_queue_budget(t, 0)) {
		struct virtio_blk_req *r;
		uint16_t head;
		int ret = vq_pop_head(vq, &head);

		if (ret == 0)
			break;
		if (ret < 0) {
			virtio_mmio_set_needs_reset(t, vq->error);
			break;
		}
		r = &b->req[head];
		if (r->busy) {
			virtio_mmio_set_needs_reset(t, "a head still in flight was made available");
			break;
		}
		if (vq_walk(vq, head, &r->chain)) {
			virtio_mmio_set_needs_reset(t, vq->error);
			break;
		}
		if (!start(b, r))
			break;
	}
}

/* Tokens may be back: the held request first, then the queue. I/O thread. */
static void blk_resume(struct rate_limiter *rl)
{
	struct virtio_blk *b = container_of(rl, struct virtio_blk, rl);

	blk_notify(&b->mmio, 0);
}

/* The request the limiter holds never started: it goes with the queue, unanswered. */
static void drop_held(struct virtio_blk *b)
{
	if (!b->held)
		return;
	b->held->busy = false;
	b->held = NULL;
	b->inflight--;
}

static void blk_activate(struct virtio_mmio *t)
{
	struct virtio_blk *b = to_blk(t);

	/* Section 5.2.6.3: without FLUSH the device must not lose acknowledged writes. */
	b->sync_writes = !virtio_mmio_has_feature(t, VIRTIO_BLK_F_FLUSH);
}

/* Regular-file reads and writes cannot be cancelled once io_uring runs them: a reset drains
 * them (they are short). */
static bool blk_reset(struct virtio_mmio *t)
{
	struct virtio_blk *b = to_blk(t);

	drop_held(b);
	rate_limiter_reset(&b->rl);
	return b->inflight == 0;
}

/* A freeze lets the requests in flight complete into the used ring (see blk_reset()); the one
 * the rate limiter holds never started and was the last popped: it goes back to the ring. */
static bool blk_quiesce(struct virtio_mmio *t)
{
	struct virtio_blk *b = to_blk(t);

	if (b->held) {
		vq_unpop(&t->q[0].vq, 1);
		drop_held(b);
	}
	return b->inflight == 0;
}

static const struct virtio_mmio_dev_ops blk_ops = {
	.activate = blk_activate,
	.reset = blk_reset,
	.quiesce = blk_quiesce,
	.notify = blk_notify,
};

struct virtio_blk *virtio_blk_create(const char *name, const struct blk_image *img,
				     const char *id, const struct guest_mem *mem,
				     struct loop *loop)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	uint64_t features;
	struct virtio_blk_config *c;

	if (!b) {
		pr_err("%s: out of memory", name);
		return NULL;
	}
	snprintf(b->name, sizeof(b->name), "%s", name);
	if (id) /* NUL-padded; a 20-byte ID has no terminator (section 5.2.6) */
		memcpy(b->id, id, MIN(strlen(id), sizeof(b->id)));
	b->fd = img->fd;
	b->ro = img->ro;
	b->capacity = img->size / VIRTIO_BLK_SECTOR;
	for (unsigned int i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++)
		b->req[i].blk = b;

	c = &b->config;
	c->capacity = htole64(b->capacity);
	c->seg_max = htole32(VIRTIO_BLK_SEG_MAX);
	c->blk_size = htole32(VIRTIO_BLK_SECTOR);
	c->num_queues = htole16(1);
	c->max_discard_sectors = htole32(VIRTIO_BLK_MAX_DISCARD_SECTORS);
	c->max_discard_seg = htole32(1);
	c->discard_sector_alignment = htole32(4096 / VIRTIO_BLK_SECTOR);
	c->max_write_zeroes_sectors = htole32(VIRTIO_BLK_MAX_DISCARD_SECTORS);
	c->max_write_zeroes_seg = htole32(1);
	c->write_zeroes_may_unmap = 1;

	features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
		   VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
		   VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	if (b->ro)
		features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	else
		features |= VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	if (rate_limiter_init(&b->rl, &(struct rl_config){0}, loop, blk_resume)) {
		free(b);
		return NULL;
	}
	b->file = loop_file_add(loop, b->fd);
	if (b->file < 0) {
		pr_err("%s: registering the image with the io_uring: %s", name,
		       strerror(-b->file));
		goto exit_rl;
	}
	if (virtio_mmio_init(&b->mmio, b->name, &blk_ops, VIRTIO_ID_BLOCK, features, 1,
			     VIRTIO_BLK_QUEUE_SIZE, c, sizeof(*c), mem, loop))
		goto exit_file;
	return b;
exit_file:
	loop_file_remove(loop, b->file);
exit_rl:
	rate_limiter_fini(&b->rl);
	free(b);
	return NULL;
}

static bool blk_idle(void *arg)
{
	const struct virtio_blk *b = arg;

	return b->inflight == 0;
}

void virtio_blk_drain(struct virtio_blk *b)
{
	drop_held(b);
	rate_limiter_drain(&b->rl);
	if (loop_drain(b->mmio.loop, blk_idle, b, 5000))
		pr_warn("%s: %u request(s) still in flight at exit", b->name, b->inflight);
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	loop_file_remove(b->mmio.loop, b->file);
	virtio_mmio_fini(&b->mmio);
	rate_limiter_fini(&b->rl);
	free(b);
}
