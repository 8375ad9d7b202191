/* balloon.c: virtio-balloon (virtio 1.2 section 5.5): inflate and deflate, statistics, free page
 * reporting, on the I/O thread; the host's target and statistics interval from any thread. */
#define pr_fmt(fmt) "virtio-balloon: " fmt
#include "virtio/balloon.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define Q_INFLATE 0
#define Q_DEFLATE 1
#define PAGE	  4096ULL

/* Firecracker's names (GET /balloon/statistics), by tag (section 5.5.6.3; Linux's
 * include/uapi/linux/virtio_balloon.h for 10-15). */
const char *const virtio_balloon_stat_names[VIRTIO_BALLOON_STATS_TAGS] = {
	"swap_in",	 "swap_out",	 "major_faults",	"minor_faults",
	"free_memory",	 "total_memory", "available_memory",	"disk_caches",
	"hugetlb_allocations", "hugetlb_failures", "oom_kill", "alloc_stall",
	"async_scan",	 "direct_scan",	 "async_reclaim",	"direct_reclaim",
};

static struct virtio_balloon *to_balloon(struct virtio_mmio *t)
{
	return container_of(t, struct virtio_balloon, mmio);
}

/* A request the device drops: counted, logged once per device, returned unused. */
static void drop(struct virtio_balloon *b, const char *why)
{
	b->guest_errors++;
	virtio_mmio_guest_error(&b->mmio, why);
}

/* Gives [gpa, gpa + len) back to the host. The range is guest RAM (checked by the caller). */
static void give_back(struct virtio_balloon *b, gpa_t gpa, uint64_t len, bool reported)
{
	int ret = guest_mem_discard(b->mmio.mem, gpa, len);

	if (ret) {
		b->discard_errors++;
		pr_warn_once("%s: giving 0x%llx+0x%llx back: %s", b->mmio.name,
			     (unsigned long long)gpa, (unsigned long long)len, strerror(-ret));
		return;
	}
	/* The pages read as zeros (or the snapshot's contents) from now on: mvm's engine must
	 * not keep code it translated from them. */
	guest_mem_dma_done(b->mmio.mem, gpa_to_hva(b->mmio.mem, gpa, len), len);
	b->returned_pages += len / PAGE;
	if (reported)
		b->reported_pages += len / PAGE;
}

/* A page frame number the guest may hand over: a whole 4 KiB page of RAM in the memory map
 * and in guest memory. 32-bit frames reach 16 TiB: the shift cannot overflow. */
static bool pfn_ok(const struct virtio_balloon *b, uint32_t pfn)
{
	gpa_t gpa = (gpa_t)pfn << VIRTIO_BALLOON_PFN_SHIFT;

	return memmap_is_ram(b->map, gpa, PAGE) && gpa_to_hva(b->mmio.mem, gpa, PAGE);
}

/* One inflate or deflate request (section 5.5.6): an array of le32 frame numbers in the
 * device-readable part. Copied once, every frame checked, then acted on. */
static void serve_pfns(struct virtio_balloon *b, bool inflate)
{
	const struct vq_chain *c = &b->chain;
	uint32_t n = c->out_len / 4, start = 0, run = 0;

	if (c->nr_in) {
		drop(b, "device-writable buffer on the inflate or deflate queue");
		return;
	}
	if (c->out_len % 4 || n > VIRTIO_BALLOON_MAX_PFNS) {
		drop(b, "inflate or deflate request that is not a whole array of at most "
			"VIRTIO_BALLOON_MAX_PFNS frame numbers");
		return;
	}
	iov_to_buf(c->iov, c->nr_out, 0, b->pfns, c->out_len);
	for (uint32_t i = 0; i < n; i++) {
		b->pfns[i] = le32toh(b->pfns[i]);
		if (!pfn_ok(b, b->pfns[i])) {
			drop(b, "page frame number outside guest RAM");
			return;
		}
	}
	if (!inflate) {
		/* Nothing to do: the guest's next touch faults the pages in again. */
		b->deflate_reqs++;
		b->deflated_pages += n;
		return;
	}
	b->inflate_reqs++;
	b->inflated_pages += n;
	/* Linux hands over pages in runs: one madvise per run of consecutive frames. */
	for (uint32_t i = 0; i <= n; i++) {
		if (i < n && run && b->pfns[i] == start + run) {
			run++;
			continue;
		}
		if (run)
			give_back(b, (gpa_t)start << VIRTIO_BALLOON_PFN_SHIFT, (uint64_t)run * PAGE,
				  false);
		if (i < n) {
			start = b->pfns[i];
			run = 1;
		}
	}
}

/* One free page report (section 5.5.6.7): device-writable buffers whose ranges are free guest
 * pages; nothing is written into them. Every range is checked before any is given back. */
static void serve_report(struct virtio_balloon *b)
{
	const struct vq_chain *c = &b->chain;
	gpa_t gpa[VQ_IOV_MAX];

	if (c->nr_out) {
		drop(b, "device-readable buffer on the reporting queue");
		return;
	}
	for (unsigned int i = 0; i < c->nr_in; i++) {
		const struct iovec *v = &c->iov[i];

		if (guest_mem_hva_to_gpa(b->mmio.mem, v->iov_base, &gpa[i]) ||
		    !IS_ALIGNED(gpa[i], PAGE) || !IS_ALIGNED(v->iov_len, PAGE) ||
		    !memmap_is_ram(b->map, gpa[i], v->iov_len)) {
			drop(b, "reported range that is not whole pages of guest RAM");
			return;
		}
	}
	for (unsigned int i = 0; i < c->nr_in; i++)
		give_back(b, gpa[i], c->iov[i].iov_len, true);
}

/* One statistics buffer (section 5.5.6.3): le16 tag and le64 value pairs, packed. Unknown
 * tags are ignored; a buffer of the wrong shape leaves the last statistics as they were. */
static void take_stats(struct virtio_balloon *b)
{
	const struct vq_chain *c = &b->chain;
	uint64_t vals[VIRTIO_BALLOON_STATS_TAGS] = {0};
	uint32_t valid = 0, n = c->out_len / VIRTIO_BALLOON_STAT_SIZE;

	if (c->nr_in || c->out_len % VIRTIO_BALLOON_STAT_SIZE || n > VIRTIO_BALLOON_STATS_MAX) {
		drop(b, "statistics buffer that is not a whole array of at most "
			"VIRTIO_BALLOON_STATS_MAX entries");
		return;
	}
	iov_to_buf(c->iov, c->nr_out, 0, b->stat_buf, c->out_len);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = b->stat_buf + i * VIRTIO_BALLOON_STAT_SIZE;
		uint16_t tag;
		uint64_t val;

		memcpy(&tag, e, sizeof(tag));
		memcpy(&val, e + 2, sizeof(val));
		tag = le16toh(tag);
		if (tag < VIRTIO_BALLOON_STATS_TAGS) {
			vals[tag] = le64toh(val);
			valid |= 1u << tag;
		}
	}
	pthread_mutex_lock(&b->stats_lock);
	memcpy(b->stats, vals, sizeof(vals));
	b->stats_valid = valid;
	pthread_mutex_unlock(&b->stats_lock);
	b->stats_updates++;
}

static void stats_notify(struct virtio_balloon *b, unsigned int q)
{
	struct virtio_mmio *t = &b->mmio;
	struct vq *vq = &t->q[q].vq;
	bool pushed = false;

	while (virtio_mmio_queue_live(t, q) && virtio_mmio_queue_budget(t, q)) {
		int ret = vq_pop(vq, &b->chain);

		if (ret == 0)
			break;
		if (ret < 0) {
			virtio_mmio_set_needs_reset(t, vq->error);
			break;
		}
		/* The driver keeps one buffer here (section 5.5.6.3): a second one ends the
		 * wait of the first. */
		if (b->stats_held) {
			vq_push(vq, b->stats_head, 0);
			pushed = true;
		}
		take_stats(b);
		/* Kept until the next statistics are due (timer_done()). */
		b->stats_held = true;
		b->stats_head = b->chain.head;
	}
	if (pushed)
		virtio_mmio_signal_used(t, q);
}

static void balloon_notify(struct virtio_mmio *t, unsigned int q)
{
	struct virtio_balloon *b = to_balloon(t);
	struct vq *vq = &t->q[q].vq;
	bool pushed = false;

	if ((int)q == b->q_stats) {
		stats_notify(b, q);
		return;
	}
	if (q != Q_INFLATE && q != Q_DEFLATE && (int)q != b->q_report)
		return; /* a queue of a feature the driver did not negotiate */
	while (virtio_mmio_queue_live(t, q) && virtio_mmio_queue_budget(t, q)) {
		int ret = vq_pop(vq, &b->chain);

		if (ret == 0)
			break;
		if (ret < 0) {
			virtio_mmio_set_needs_reset(t, vq->error);
			break;
		}
		if ((int)q == b->q_report)
			serve_report(b);
		else
			serve_pfns(b, q == Q_INFLATE);
		vq_push(vq, b->chain.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_mmio_signal_used(t, q);
}

/* NOTE: the spec (section 5.5.2) lists statsq as queue 2, free_page_vq 3 and reporting_vq 4,
 * each only when its feature is negotiated; Linux's virtio-mmio (vm_find_vqs) gives a queue
 * the next index only when it exists, as QEMU and Firecracker number them. mvm follows the
 * drivers: with free page hinting never offered, reporting_vq is 3 with statistics, 2
 * without. */
static void balloon_activate(struct virtio_mmio *t)
{
	struct virtio_balloon *b = to_balloon(t);
	int next = 2;

	b->q_stats = virtio_mmio_has_feature(t, VIRTIO_BALLOON_F_STATS_VQ) ? next++ : -1;
	b->q_report = virtio_mmio_has_feature(t, VIRTIO_BALLOON_F_REPORTING) ? next++ : -1;
	b->stats_held = false;
}

static bool balloon_reset(struct virtio_mmio *t)
{
	struct virtio_balloon *b = to_balloon(t);

	b->q_stats = b->q_report = -1;
	b->stats_held = false; /* the ring it was on is gone */
	return true; /* nothing is ever in flight */
}

/* The driver writes only 'actual' (section 5.5.4): the pages its balloon holds. vCPU thread,
 * transport lock held. */
static void balloon_config_write(struct virtio_mmio *t, uint32_t off, const void *data,
				 unsigned int size)
{
	struct virtio_balloon *b = to_balloon(t);
	const uint32_t lo = offsetof(struct virtio_balloon_config, actual), hi = lo + 4;

	if (off < lo || off + size > hi) {
		virtio_mmio_guest_error(t, "config write outside 'actual'");
		return;
	}
	memcpy((uint8_t *)&b->config + off, data, size);
}

static const struct virtio_mmio_dev_ops balloon_ops = {
	.activate = balloon_activate,
	.reset = balloon_reset,
	.notify = balloon_notify,
	.config_write = balloon_config_write,
};

/* A read of the eventfd or timerfd in slot (file). */
static void arm_read(struct virtio_balloon *b, struct loop_op *op, int file, uint64_t *buf)
{
	struct io_uring_sqe *sqe = loop_sqe(b->mmio.loop, op);

	if (!sqe) {
		pr_err("%s: the io_uring submission queue is full; statistics stop", b->mmio.name);
		return;
	}
	io_uring_prep_read(sqe, file, buf, sizeof(*buf), 0);
	loop_sqe_fixed(sqe);
}

static int set_timer(struct virtio_balloon *b)
{
	unsigned int s = atomic_load(&b->stats_interval_s);
	struct itimerspec its = {.it_interval = {.tv_sec = s}, .it_value = {.tv_sec = s}};

	return timerfd_settime(b->timer_fd, 0, &its, NULL) ? -errno : 0;
}

/* Statistics are due: the buffer the driver left goes back, and the driver answers with a
 * fresh one (section 5.5.6.3). I/O thread. */
static void timer_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_balloon *b = container_of(op, struct virtio_balloon, timer_op);
	struct virtio_mmio *t = &b->mmio;

	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		pr_err("%s: timerfd read: %s", t->name, strerror(-res));
		return;
	}
	arm_read(b, &b->timer_op, b->timer_file, &b->timer_buf);
	if (!b->stats_held || b->q_stats < 0 || !virtio_mmio_queue_live(t, (unsigned)b->q_stats))
		return;
	b->stats_held = false;
	vq_push(&t->q[b->q_stats].vq, b->stats_head, 0);
	virtio_mmio_signal_used(t, (unsigned)b->q_stats);
}

/* The interval changed (virtio_balloon_set_stats_interval()). I/O thread. */
static void ctl_done(struct loop_op *op, int res, unsigned int flags)
{
	struct virtio_balloon *b = container_of(op, struct virtio_balloon, ctl_op);
	int ret;

	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		pr_err("%s: control eventfd read: %s", b->mmio.name, strerror(-res));
		return;
	}
	arm_read(b, &b->ctl_op, b->ctl_file, &b->ctl_buf);
	if ((ret = set_timer(b)))
		pr_warn_once("%s: timerfd_settime: %s", b->mmio.name, strerror(-ret));
}

struct virtio_balloon *virtio_balloon_create(const char *name,
					     const struct virtio_balloon_params *params,
					     const struct memmap *map, const struct guest_mem *mem,
					     struct loop *loop)
{
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	uint64_t features = VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	bool stats = params->stats_interval_s > 0;
	unsigned int nq = 2 + stats + params->free_page_reporting;
	int ret;

	if (!b) {
		pr_err("%s: out of memory", name);
		return NULL;
	}
	b->map = map;
	b->params = *params;
	atomic_init(&b->stats_interval_s, params->stats_interval_s);
	b->config.num_pages = htole32(params->target_pages);
	b->q_stats = b->q_report = -1;
	b->timer_fd = b->timer_file = b->ctl_fd = b->ctl_file = -1;
	b->timer_op.done = timer_done;
	b->ctl_op.done = ctl_done;
	pthread_mutex_init(&b->stats_lock, NULL);
	if (params->deflate_on_oom)
		features |= VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
	if (stats)
		features |= VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ);
	if (params->free_page_reporting)
		features |= VIRTIO_BIT(VIRTIO_BALLOON_F_REPORTING);
	ret = virtio_mmio_init(&b->mmio, name, &balloon_ops, VIRTIO_ID_BALLOON, features, nq,
			       VIRTIO_BALLOON_QUEUE_SIZE, &b->config, sizeof(b->config), mem, loop);
	if (ret) {
		pthread_mutex_destroy(&b->stats_lock);
		free(b);
		return NULL;
	}
	if (!stats)
		return b;
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	b->ctl_fd = eventfd(0, EFD_CLOEXEC);
	if (b->timer_fd < 0 || b->ctl_fd < 0) {
		pr_err("%s: timerfd/eventfd: %s", name, strerror(errno));
		goto fail;
	}
	if ((ret = b->timer_file = loop_file_add(loop, b->timer_fd)) < 0 ||
	    (ret = b->ctl_file = loop_file_add(loop, b->ctl_fd)) < 0) {
		pr_err("%s: registering a timerfd with the io_uring: %s", name, strerror(-ret));
		goto fail;
	}
	if ((ret = set_timer(b))) {
		pr_err("%s: timerfd_settime: %s", name, strerror(-ret));
		goto fail;
	}
	arm_read(b, &b->timer_op, b->timer_file, &b->timer_buf);
	arm_read(b, &b->ctl_op, b->ctl_file, &b->ctl_buf);
	return b;
fail:
	virtio_balloon_destroy(b);
	return NULL;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	if (!b)
		return;
	loop_file_remove(b->mmio.loop, b->timer_file);
	loop_file_remove(b->mmio.loop, b->ctl_file);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	if (b->ctl_fd >= 0)
		close(b->ctl_fd);
	virtio_mmio_fini(&b->mmio);
	pthread_mutex_destroy(&b->stats_lock);
	free(b);
}

void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages)
{
	pthread_mutex_lock(&b->mmio.lock);
	b->config.num_pages = htole32(pages);
	virtio_mmio_config_changed_locked(&b->mmio);
	pthread_mutex_unlock(&b->mmio.lock);
}

int virtio_balloon_set_stats_interval(struct virtio_balloon *b, unsigned int s)
{
	uint64_t one = 1;

	if (!b->params.stats_interval_s || !s)
		return -EINVAL;
	atomic_store(&b->stats_interval_s, s);
	/* The I/O thread sets the timer (its seccomp list has timerfd_settime). */
	if (write(b->ctl_fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 0;
}

void virtio_balloon_info(struct virtio_balloon *b, struct virtio_balloon_info *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&b->mmio.lock);
	out->target_pages = le32toh(b->config.num_pages);
	out->actual_pages = le32toh(b->config.actual);
	pthread_mutex_unlock(&b->mmio.lock);
	pthread_mutex_lock(&b->stats_lock);
	out->stats_valid = b->stats_valid;
	memcpy(out->stats, b->stats, sizeof(out->stats));
	pthread_mutex_unlock(&b->stats_lock);
	out->stats_interval_s = atomic_load(&b->stats_interval_s);
}
