/* test_virtio_balloon.c: virtio-balloon over a real I/O loop with the fake driver as the guest:
 * the target in the config space and its change notification, 'actual' written by the driver,
 * inflate (the pages read as zeros afterwards: they went back to the host) and deflate,
 * statistics held until the interval is due, free page reporting with the queue index the
 * negotiated features give it, and hostile input: frame numbers in the reserved area, past
 * RAM, in the memory map but not in guest memory, 0xffffffff; arrays of the wrong length or
 * too long; writable buffers where readable ones belong and the reverse; statistics of a bad
 * size; unaligned and reserved reported ranges; a chain whose next index is out of range. */
#include "virtio/balloon.h"

#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>

#include "core/loop.h"
#include "test.h"
#include "util/util.h"
#include "vdriver.h"

#define INFLATE_RING 0x10000ull
#define DEFLATE_RING 0x20000ull
#define STATS_RING   0x30000ull
#define REPORT_RING  0x40000ull
#define PFN_BUF	     0x50000ull
#define STATS_BUF    0x60000ull
#define RESERVED     0x80000ull /* the memory map's reserved range: 0x80000 - 0x100000 */
#define PAGES	     0x200000ull /* pages the tests balloon */
#define QSIZE	     16

static struct fake_ram f;
static struct memmap map;
static struct loop loop;
static struct virtio_balloon *b;
static struct fring inflate, deflate, stats, report;

#define FEATURES                                                                               \
	(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) |              \
	 VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) | VIRTIO_BIT(VIRTIO_BALLOON_F_REPORTING))

/* Guest RAM from mmap (madvise needs whole pages of a mapping), 0 - 4 MiB; the memory map says
 * RAM up to 5 MiB, so frames past 4 MiB are in the map but not in guest memory. */
static int ram_init(void)
{
	guest_mem_init(&f.mem);
	f.ram = mmap(NULL, FAKE_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		     0);
	if (f.ram == MAP_FAILED)
		return -1;
	map = (struct memmap){
		.n = 3,
		.e = {{0, RESERVED, MEMMAP_RAM},
		      {RESERVED, 0x100000 - RESERVED, MEMMAP_RESERVED},
		      {0x100000, (5u << 20) - 0x100000, MEMMAP_RAM}},
	};
	return guest_mem_add(&f.mem, 0, FAKE_RAM_SIZE, f.ram);
}

/* Publishes one array of frame numbers on (r) (a readable descriptor, or a writable one with
 * (writable)) and kicks queue (q). */
static void send_pfns(struct fring *r, unsigned int q, const uint32_t *pfns, uint32_t bytes,
		      bool writable)
{
	memcpy(gpa(&f, PFN_BUF), pfns, bytes);
	fring_desc(r, 0, PFN_BUF, bytes, writable ? VRING_DESC_F_WRITE : 0, 0);
	fring_publish(r, 0);
	kick(&b->mmio, q);
}

/* Waits for the used entry of the request just sent: id 0, nothing written. */
static bool used(struct fring *r)
{
	uint32_t id = ~0u, len = ~0u;

	return fring_wait_used(r, &id, &len, 3000) && id == 0 && len == 0;
}

static void fill(uint64_t a, uint64_t len)
{
	memset(gpa(&f, a), 0xa5, len);
}

static bool filled(uint64_t a, uint64_t len, uint8_t v)
{
	const uint8_t *p = gpa(&f, a);

	for (uint64_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void setup_queues(bool with_stats)
{
	fring_init(&inflate, &f, INFLATE_RING, QSIZE);
	fring_init(&deflate, &f, DEFLATE_RING, QSIZE);
	fring_init(&stats, &f, STATS_RING, QSIZE);
	fring_init(&report, &f, REPORT_RING, QSIZE);
	drv_queue(&b->mmio, 0, QSIZE, inflate.desc_gpa, inflate.avail_gpa, inflate.used_gpa);
	drv_queue(&b->mmio, 1, QSIZE, deflate.desc_gpa, deflate.avail_gpa, deflate.used_gpa);
	if (with_stats) {
		drv_queue(&b->mmio, 2, QSIZE, stats.desc_gpa, stats.avail_gpa, stats.used_gpa);
		drv_queue(&b->mmio, 3, QSIZE, report.desc_gpa, report.avail_gpa, report.used_gpa);
	} else {
		/* Without statistics the reporting queue is the third (balloon_activate()). */
		drv_queue(&b->mmio, 2, QSIZE, report.desc_gpa, report.avail_gpa, report.used_gpa);
	}
	drv_ok(&b->mmio);
}

/* The target: in the config space from creation, changed by the host with a configuration
 * change interrupt and a new generation; 'actual' is the driver's. */
static void test_config(void)
{
	struct virtio_mmio *t = &b->mmio;
	struct virtio_balloon_info info;
	uint32_t gen = reg_rd(t, VIRTIO_MMIO_CONFIG_GENERATION);

	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG, 4), 1000);
	irq_count(t);
	virtio_balloon_set_target(b, 16384);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG, 4), 16384);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	CHECK(reg_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_ISR_CONFIG);
	CHECK(irq_count(t) >= 1);
	reg_wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_CONFIG);
	virtio_mmio_bus_ops.write(t, VIRTIO_MMIO_CONFIG + 4, 300, 4);
	/* num_pages is the host's: a driver write there changes nothing. */
	virtio_mmio_bus_ops.write(t, VIRTIO_MMIO_CONFIG, 7, 4);
	virtio_balloon_info(b, &info);
	CHECK_EQ(info.target_pages, 16384);
	CHECK_EQ(info.actual_pages, 300);
	CHECK_EQ(info.stats_interval_s, 1);
}

/* Inflated pages go back to the host (they read as zeros), in runs and alone; deflated ones
 * are only counted. */
static void test_inflate_deflate(void)
{
	const uint32_t pfns[] = {0x200, 0x201, 0x202, 0x203, 0x300, 0x1f};
	const uint32_t back[] = {0x200};

	fill(PAGES, 0x110000);
	fill(0x1f000, 0x1000);
	send_pfns(&inflate, 0, pfns, sizeof(pfns), false);
	CHECK(used(&inflate));
	CHECK(filled(0x200000, 0x4000, 0));
	CHECK(filled(0x204000, 0x1000, 0xa5));
	CHECK(filled(0x300000, 0x1000, 0));
	CHECK(filled(0x301000, 0x1000, 0xa5));
	CHECK(filled(0x1f000, 0x1000, 0));
	CHECK_EQ(b->inflate_reqs, 1);
	CHECK_EQ(b->inflated_pages, 6);
	CHECK_EQ(b->returned_pages, 6);
	send_pfns(&deflate, 1, back, sizeof(back), false);
	CHECK(used(&deflate));
	CHECK_EQ(b->deflate_reqs, 1);
	CHECK_EQ(b->deflated_pages, 1);
	CHECK_EQ(b->guest_errors, 0);
}

/* Each hostile request is dropped whole: the good frame in it keeps its contents. */
static void test_hostile_pfns(void)
{
	static uint32_t big[VIRTIO_BALLOON_MAX_PFNS + 1];
	const uint32_t bad[] = {RESERVED >> 12, 0x9f, 0x4ff, 0x400, 0xc0000, 0xffffffff};
	uint64_t errors = b->guest_errors;

	fill(0x210000, 0x1000);
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		uint32_t req[2] = {0x210, bad[i]};

		send_pfns(&inflate, 0, req, sizeof(req), false);
		CHECK(used(&inflate));
		CHECK_EQ(b->guest_errors, errors + i + 1);
		send_pfns(&deflate, 1, req, sizeof(req), false);
		CHECK(used(&deflate));
		errors++;
	}
	errors = b->guest_errors;
	CHECK(filled(0x210000, 0x1000, 0xa5));
	/* Not a whole array, an array too long, a writable buffer. */
	{
		const uint32_t two[2] = {0x210, 0x211};

		send_pfns(&inflate, 0, two, 6, false);
		CHECK(used(&inflate));
		send_pfns(&inflate, 0, two, sizeof(two), true);
		CHECK(used(&inflate));
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(big); i++)
		big[i] = 0x210;
	memcpy(gpa(&f, 0x100000), big, sizeof(big));
	fring_desc(&inflate, 0, 0x100000, sizeof(big), 0, 0);
	fring_publish(&inflate, 0);
	kick(&b->mmio, 0);
	CHECK(used(&inflate));
	CHECK_EQ(b->guest_errors, errors + 3);
	CHECK(filled(0x210000, 0x1000, 0xa5));
	CHECK_EQ(b->inflated_pages, 6);
	CHECK_EQ(b->deflated_pages, 1);
	CHECK(!(reg_rd(&b->mmio, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET));
}

static void put_stat(uint8_t *p, uint16_t tag, uint64_t val)
{
	memcpy(p, &tag, 2);
	memcpy(p + 2, &val, 8);
}

/* Statistics: the buffer is held until the interval is due, then returned for fresh ones;
 * unknown tags are ignored; a buffer of a bad size is dropped and changes nothing. */
static void test_stats(void)
{
	struct virtio_balloon_info info;
	uint8_t *p = gpa(&f, STATS_BUF);
	uint32_t id, len;
	uint64_t errors = b->guest_errors;

	put_stat(p, VIRTIO_BALLOON_S_MEMFREE, 123 << 20);
	put_stat(p + 10, VIRTIO_BALLOON_S_MEMTOT, 456 << 20);
	put_stat(p + 20, 999, 7);
	fring_desc(&stats, 0, STATS_BUF, 30, 0, 0);
	fring_publish(&stats, 0);
	kick(&b->mmio, 2);
	usleep(100 * 1000);
	virtio_balloon_info(b, &info);
	CHECK_EQ(info.stats_valid, (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_MEMTOT));
	CHECK_EQ(info.stats[VIRTIO_BALLOON_S_MEMFREE], 123 << 20);
	CHECK_EQ(info.stats[VIRTIO_BALLOON_S_MEMTOT], 456 << 20);
	CHECK_EQ(b->stats_updates, 1);
	CHECK(!fring_used(&stats, &id, &len)); /* held */
	CHECK(fring_wait_used(&stats, &id, &len, 3000)); /* due after the 1 s interval */
	CHECK_EQ(id, 0);
	CHECK_EQ(len, 0);

	/* 15 bytes: not whole entries. A writable buffer: not statistics. */
	fring_desc(&stats, 1, STATS_BUF, 15, 0, 0);
	fring_publish(&stats, 1);
	kick(&b->mmio, 2);
	CHECK(fring_wait_used(&stats, &id, &len, 3000));
	CHECK_EQ(id, 1);
	fring_desc(&stats, 2, STATS_BUF, 20, VRING_DESC_F_WRITE, 0);
	fring_publish(&stats, 2);
	kick(&b->mmio, 2);
	CHECK(fring_wait_used(&stats, &id, &len, 3000));
	CHECK_EQ(id, 2);
	CHECK_EQ(b->guest_errors, errors + 2);
	virtio_balloon_info(b, &info);
	CHECK_EQ(info.stats[VIRTIO_BALLOON_S_MEMTOT], 456 << 20);
	CHECK_EQ(b->stats_updates, 1);

	CHECK_EQ(virtio_balloon_set_stats_interval(b, 0), -EINVAL);
	CHECK_EQ(virtio_balloon_set_stats_interval(b, 2), 0);
	usleep(50 * 1000);
	virtio_balloon_info(b, &info);
	CHECK_EQ(info.stats_interval_s, 2);
}

/* Free page reporting on queue (q): whole pages of RAM go back; an unaligned range, one in the
 * reserved area and a readable buffer are dropped whole. */
static void test_report(unsigned int q)
{
	uint64_t errors = b->guest_errors, reported = b->reported_pages;

	fill(0x380000, 0x20000);
	fring_desc(&report, 0, 0x380000, 0x10000, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	fring_desc(&report, 1, 0x398000, 0x2000, VRING_DESC_F_WRITE, 0);
	fring_publish(&report, 0);
	kick(&b->mmio, q);
	CHECK(used(&report));
	CHECK(filled(0x380000, 0x10000, 0));
	CHECK(filled(0x390000, 0x8000, 0xa5));
	CHECK(filled(0x398000, 0x2000, 0));
	CHECK_EQ(b->reported_pages, reported + 18);

	fill(0x380000, 0x1000);
	fring_desc(&report, 0, 0x380000, 0x1000, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	fring_desc(&report, 1, 0x390800, 0x1000, VRING_DESC_F_WRITE, 0);
	fring_publish(&report, 0);
	kick(&b->mmio, q);
	CHECK(used(&report));
	fring_desc(&report, 0, 0x380000, 0x1000, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	fring_desc(&report, 1, RESERVED - 0x1000, 0x2000, VRING_DESC_F_WRITE, 0);
	fring_publish(&report, 0);
	kick(&b->mmio, q);
	CHECK(used(&report));
	fring_desc(&report, 0, 0x380000, 0x1000, 0, 0);
	fring_publish(&report, 0);
	kick(&b->mmio, q);
	CHECK(used(&report));
	CHECK(filled(0x380000, 0x1000, 0xa5));
	CHECK_EQ(b->guest_errors, errors + 3);
	CHECK_EQ(b->reported_pages, reported + 18);
}

/* A chain whose next index is out of range: NEEDS_RESET, and the device serves nothing more
 * until the driver resets it. */
static void test_bad_chain(void)
{
	const uint32_t one = 0x220;

	memcpy(gpa(&f, PFN_BUF), &one, 4);
	fill(0x220000, 0x1000);
	fring_desc(&inflate, 0, PFN_BUF, 4, VRING_DESC_F_NEXT, QSIZE + 3);
	fring_publish(&inflate, 0);
	kick(&b->mmio, 0);
	CHECK(wait_status(&b->mmio, VIRTIO_STATUS_NEEDS_RESET, 3000));
	send_pfns(&inflate, 0, &one, 4, false);
	usleep(50 * 1000);
	CHECK(filled(0x220000, 0x1000, 0xa5));
}

/* A device without statistics: no STATS_VQ offered, its interval cannot be set. */
static void test_plain(void)
{
	struct virtio_balloon_params p = {.target_pages = 0};
	struct virtio_balloon *plain = virtio_balloon_create("unit-balloon plain", &p, &map,
							     &f.mem, &loop);

	CHECK(plain != NULL);
	if (!plain)
		return;
	reg_wr(&plain->mmio, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CHECK_EQ(reg_rd(&plain->mmio, VIRTIO_MMIO_DEVICE_FEATURES) &
			 (VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) |
			  VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
			  VIRTIO_BIT(VIRTIO_BALLOON_F_REPORTING) |
			  VIRTIO_BIT(VIRTIO_BALLOON_F_MUST_TELL_HOST)),
		 0);
	CHECK_EQ(plain->mmio.nqueues, 2);
	CHECK_EQ(virtio_balloon_set_stats_interval(plain, 5), -EINVAL);
	virtio_balloon_destroy(plain);
}

int main(void)
{
	struct virtio_balloon_params p = {.target_pages = 1000, .deflate_on_oom = true,
					  .stats_interval_s = 1, .free_page_reporting = true};
	struct virtio_mmio *t;

	if (loop_init(&loop, 256))
		return t_skip("io_uring unavailable");
	CHECK_EQ(ram_init(), 0);
	test_plain();
	b = virtio_balloon_create("unit-balloon", &p, &map, &f.mem, &loop);
	CHECK(b != NULL);
	if (!b)
		return t_done();
	t = &b->mmio;
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BALLOON);
	reg_wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_DEVICE_FEATURES) & 0x3f,
		 VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) | VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
			 VIRTIO_BIT(VIRTIO_BALLOON_F_REPORTING));
	CHECK_EQ(t->nqueues, 4);
	CHECK_EQ(loop_start(&loop), 0);
	CHECK(drv_features(t, FEATURES) & VIRTIO_STATUS_FEATURES_OK);
	setup_queues(true);
	CHECK(wait_status(t, VIRTIO_STATUS_DRIVER_OK, 3000));

	test_config();
	test_inflate_deflate();
	test_hostile_pfns();
	test_stats();
	test_report(3);

	/* Without statistics negotiated, reporting is queue 2. */
	CHECK(drv_features(t, FEATURES & ~VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ)) &
	      VIRTIO_STATUS_FEATURES_OK);
	setup_queues(false);
	test_report(2);
	test_bad_chain();

	loop_join(&loop);
	loop_fini(&loop);
	virtio_balloon_destroy(b);
	guest_mem_fini(&f.mem);
	munmap(f.ram, FAKE_RAM_SIZE);
	return t_done();
}
