/* balloon.h: virtio-balloon (virtio 1.2 section 5.5): the host sets a target (num_pages in the
 * config space), the guest inflates pages into the balloon and hands their frame numbers over on
 * inflateq; mvm gives the memory behind them back to the host (guest_mem_discard()). Deflated
 * pages (deflateq) need nothing: the guest's next touch faults them in again, so
 * VIRTIO_BALLOON_F_MUST_TELL_HOST is not offered. Optional, as the user configures them:
 * - VIRTIO_BALLOON_F_STATS_VQ: the guest's memory statistics, asked for every interval;
 * - VIRTIO_BALLOON_F_DEFLATE_ON_OOM: the guest deflates under memory pressure;
 * - VIRTIO_BALLOON_F_REPORTING: free page reporting, the guest's free blocks given back too.
 *
 * Every page frame number and reported range is checked once, against the guest's RAM in the
 * memory map (not the reserved EBDA/legacy area, not the MMIO hole), before any of the request
 * is acted on: a request with one bad frame is dropped whole and counted as a guest error. A
 * malformed chain sets NEEDS_RESET. Nothing is ever in flight: requests complete on the I/O
 * thread as they are popped.
 *
 * Threads: queues, the statistics timer and the counters' writes are the I/O thread's; the
 * control calls below may come from any other thread (the API's) and reach the I/O thread
 * through the config space (under the transport's lock) and a control eventfd. */
#ifndef MVM_VIRTIO_BALLOON_H
#define MVM_VIRTIO_BALLOON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_balloon.h>

#include "core/guest_mem.h"
#include "core/loop.h"
#include "core/memmap.h"
#include "virtio/mmio.h"
#include "virtio/vq.h"

#define VIRTIO_BALLOON_QUEUE_SIZE 256
/* Most frame numbers one inflate or deflate request may carry (16 KiB of them): Linux sends at
 * most 256 (VIRTIO_BALLOON_ARRAY_PFNS_MAX). A longer request is dropped. */
#define VIRTIO_BALLOON_MAX_PFNS 4096
/* Statistics tags mvm names (section 5.5.6.3; Linux 6.12 added 10-15); others are ignored. */
#define VIRTIO_BALLOON_STATS_TAGS 16
/* Most statistics entries one buffer may carry; a longer buffer is a guest error. */
#define VIRTIO_BALLOON_STATS_MAX 64
#define VIRTIO_BALLOON_STAT_SIZE 10 /* le16 tag, le64 value, packed */
/* 4 KiB pages per MiB, for targets given in MiB. */
#define VIRTIO_BALLOON_PAGES_PER_MIB 256

/* The guest-visible layouts (section 5.5.4, 5.5.6.3) are the kernel's. */
_Static_assert(sizeof(struct virtio_balloon_config) == 16, "virtio_balloon_config size");
_Static_assert(offsetof(struct virtio_balloon_config, actual) == 4, "config.actual");
_Static_assert(sizeof(struct virtio_balloon_stat) == VIRTIO_BALLOON_STAT_SIZE, "stat size");

/* What the device offers, fixed when it is created. */
struct virtio_balloon_params {
	uint32_t target_pages;		/* the first target (num_pages) */
	bool deflate_on_oom;		/* offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	unsigned int stats_interval_s;	/* 0: no statistics queue */
	bool free_page_reporting;	/* offer VIRTIO_BALLOON_F_REPORTING */
};

/* What the guest said last, for the API (virtio_balloon_info()). */
struct virtio_balloon_info {
	uint32_t target_pages;		/* num_pages: what the host asks for */
	uint32_t actual_pages;		/* actual: what the guest says it holds */
	uint32_t stats_valid;		/* bit n: tag n was in the last statistics buffer */
	uint64_t stats[VIRTIO_BALLOON_STATS_TAGS];
	unsigned int stats_interval_s;
};

struct virtio_balloon {
	struct virtio_mmio mmio;		/* first: the bus device */
	struct virtio_balloon_config config;	/* little-endian, under mmio.lock */
	const struct memmap *map;		/* borrowed: where guest RAM is */
	struct virtio_balloon_params params;
	_Atomic unsigned int stats_interval_s;	/* the API's latest; the timer follows it */

	/* I/O thread. Queue indices of this activation: statsq and reporting_vq take the next
	 * free index when negotiated (-1 otherwise), as Linux, QEMU and Firecracker number them. */
	int q_stats, q_report;
	struct vq_chain chain;
	uint32_t pfns[VIRTIO_BALLOON_MAX_PFNS];
	uint8_t stat_buf[VIRTIO_BALLOON_STATS_MAX * VIRTIO_BALLOON_STAT_SIZE];
	bool stats_held;			/* the guest's statistics buffer, kept until due */
	uint16_t stats_head;
	int timer_fd, timer_file;		/* timerfd: statistics are due */
	uint64_t timer_buf;
	struct loop_op timer_op;
	int ctl_fd, ctl_file;			/* eventfd: the interval changed */
	uint64_t ctl_buf;
	struct loop_op ctl_op;

	pthread_mutex_t stats_lock;		/* the last statistics, for other threads */
	uint32_t stats_valid;
	uint64_t stats[VIRTIO_BALLOON_STATS_TAGS];

	/* Counters: written by the I/O thread, read by anyone (one aligned word each). */
	uint64_t inflate_reqs, deflate_reqs;	/* requests served */
	uint64_t inflated_pages, deflated_pages;
	uint64_t returned_pages;		/* pages given back to the host, reports included */
	uint64_t reported_pages;		/* free page reporting's share of them */
	uint64_t stats_updates;			/* statistics buffers taken */
	uint64_t guest_errors;			/* requests dropped for a bad frame or length */
	uint64_t discard_errors;		/* madvise failures (host side) */
};

/* The statistics' names in Firecracker's API (GET /balloon/statistics), by tag. */
extern const char *const virtio_balloon_stat_names[VIRTIO_BALLOON_STATS_TAGS];

/* Creates the device on (loop) with (params), its frames checked against (map) and served from
 * (mem): before loop_start(). Pointers are borrowed. Returns NULL (logged) on failure. */
struct virtio_balloon *virtio_balloon_create(const char *name,
					     const struct virtio_balloon_params *params,
					     const struct memmap *map, const struct guest_mem *mem,
					     struct loop *loop);
/* After the loop has stopped. NULL is ignored. */
void virtio_balloon_destroy(struct virtio_balloon *b);

/* ---- any thread but the I/O thread's own callbacks ---- */

/* A new target of (pages) 4 KiB pages: num_pages changes and the driver gets a configuration
 * change notification (section 5.5.6.1). */
void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages);
/* A new statistics interval (s) seconds. Returns 0, or -EINVAL when statistics were off at
 * creation or (s) is 0 (the statistics queue exists or not for the device's lifetime, as
 * Firecracker's). */
int virtio_balloon_set_stats_interval(struct virtio_balloon *b, unsigned int s);
/* The target, the guest's actual size and its last statistics into (out). */
void virtio_balloon_info(struct virtio_balloon *b, struct virtio_balloon_info *out);

#endif
