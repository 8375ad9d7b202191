/* test_virtio_blk.c: virtio-blk over a real I/O loop on temporary image files, driven through
 * the register file like a guest: image opening and locking, config space, read/write in odd
 * segmentations and through indirect tables, flush, GET_ID, discard and write-zeroes, request
 * errors (past the end, partial sectors, short headers, unknown types), read-only disks,
 * a write left in the host page cache until a FLUSH cleans it, a FLUSH that fails with its
 * fdatasync, a ,direct disk whose writes never enter the page cache,
 * writes, discards and write-zeroes made durable without FLUSH negotiated, many requests in
 * flight, a missing status byte (NEEDS_RESET), a head made available twice while in flight, a
 * reset that drains a request still in flight, one that cannot finish in time (it stays
 * pending, and nothing reaches the next rings), and the drain at exit. A rate limiter: a
 * throttled queue serves nothing more until tokens return (counted once per wait), requests go
 * in the driver's order with their data intact, an oversize request goes from a full bucket,
 * lifting the limit while the guest runs frees the queue, a reset or the exit drops the
 * request the limiter holds and a snapshot's freeze gives it back to the ring. */
#include "virtio/blk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "core/loop.h"
#include "test.h"
#include "util/util.h"
#include "vdriver.h"

#define RING   0x10000ull
#define HDR    0x40000ull	/* + 0x100 per request slot */
#define STATUS 0x50000ull	/* + 1 per slot */
#define ITAB   0x60000ull
#define DATA   0x100000ull
#define QSIZE  64
#define DISK_SECTORS 2048

static struct fake_ram f;
static struct loop loop;
static char dir[] = "/tmp/mvm-test-blk-XXXXXX";

struct seg {
	uint64_t addr;
	uint32_t len;
	bool write;
};

static uint64_t all_features(void)
{
	return VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
	       VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
	       VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
	       VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
}

static char *path_of(const char *name)
{
	static char p[128];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static void make_file(const char *name, off_t size)
{
	int fd = open(path_of(name), O_RDWR | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, size), 0);
	close(fd);
}

/* Device under test plus its ring. */
struct disk {
	struct blk_image img;
	struct virtio_blk *b;
	struct fring r;
};

static void start(struct disk *d, uint64_t features)
{
	CHECK(drv_features(&d->b->mmio, features) & VIRTIO_STATUS_FEATURES_OK);
	fring_init(&d->r, &f, RING, QSIZE);
	drv_queue(&d->b->mmio, 0, QSIZE, d->r.desc_gpa, d->r.avail_gpa, d->r.used_gpa);
	drv_ok(&d->b->mmio);
	CHECK(!(reg_rd(&d->b->mmio, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET));
}

/* Writes the chain (header, data..., status) for (slot) at descriptors slot*8.. (or through
 * an indirect table), publishes it. Returns the head. */
static uint16_t post(struct disk *d, unsigned int slot, uint32_t type, uint64_t sector,
		     const struct seg *data, unsigned int n, bool indirect)
{
	struct virtio_blk_outhdr *h = gpa(&f, HDR + slot * 0x100);
	struct seg s[10];
	unsigned int k = 0;
	uint16_t head = (uint16_t)(slot * 8);
	struct vring_desc *table = indirect ? gpa(&f, ITAB + slot * 0x100) : d->r.desc;
	uint16_t base = indirect ? 0 : head;

	*h = (struct virtio_blk_outhdr){.type = htole32(type), .sector = htole64(sector)};
	s[k++] = (struct seg){HDR + slot * 0x100, 16, false};
	for (unsigned int i = 0; i < n; i++)
		s[k++] = data[i];
	*(uint8_t *)gpa(&f, STATUS + slot) = 0xff;
	s[k++] = (struct seg){STATUS + slot, 1, true};
	for (unsigned int i = 0; i < k; i++)
		table[base + i] = (struct vring_desc){
			.addr = s[i].addr,
			.len = s[i].len,
			.flags = (uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) |
					    (i + 1 < k ? VRING_DESC_F_NEXT : 0)),
			.next = (uint16_t)(base + i + 1),
		};
	if (indirect)
		fring_desc(&d->r, head, ITAB + slot * 0x100, k * 16, VRING_DESC_F_INDIRECT, 0);
	fring_publish(&d->r, head);
	return head;
}

/* One request start to finish; returns the status byte, or -1 without a completion. */
static int req_ex(struct disk *d, uint32_t type, uint64_t sector, const struct seg *data,
		  unsigned int n, bool indirect, uint32_t *used_len)
{
	uint16_t head = post(d, 0, type, sector, data, n, indirect);
	uint32_t id, len;

	kick(&d->b->mmio, 0);
	if (!fring_wait_used(&d->r, &id, &len, 5000))
		return -1;
	CHECK_EQ(id, head);
	if (used_len)
		*used_len = len;
	return *(uint8_t *)gpa(&f, STATUS);
}

static int req(struct disk *d, uint32_t type, uint64_t sector, const struct seg *data,
	       unsigned int n)
{
	return req_ex(d, type, sector, data, n, false, NULL);
}

static void fill(uint64_t addr, uint32_t len, uint8_t seed)
{
	uint8_t *p = gpa(&f, addr);

	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

static bool file_matches(const struct disk *d, uint64_t off, uint64_t addr, uint32_t len)
{
	uint8_t *buf = malloc(len);
	bool ok = buf && pread(d->img.fd, buf, len, (off_t)off) == (ssize_t)len &&
		  !memcmp(buf, gpa(&f, addr), len);

	free(buf);
	return ok;
}

static bool file_zero(const struct disk *d, uint64_t off, uint32_t len)
{
	uint8_t *buf = malloc(len);
	bool ok = buf && pread(d->img.fd, buf, len, (off_t)off) == (ssize_t)len;

	for (uint32_t i = 0; ok && i < len; i++)
		ok = buf[i] == 0;
	free(buf);
	return ok;
}

/* Pages of the image in the host page cache: all of them, and those not yet on the disk. */
struct page_cache {
	uint64_t cached, unsynced;
};

/* What the host page cache holds of [off, off + len) of (fd) (len 0: to the end of the file),
 * through cachestat(2) (Linux 6.5); false when the kernel cannot say. */
static bool page_cache(int fd, uint64_t off, uint64_t len, struct page_cache *pc)
{
	struct {
		uint64_t off, len;
	} range = {off, len};
	struct {
		uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
	} cs;

	if (syscall(451 /* __NR_cachestat */, fd, &range, &cs, 0) < 0)
		return false;
	pc->cached = cs.nr_cache;
	pc->unsynced = cs.nr_dirty + cs.nr_writeback;
	return true;
}

/* Dirty or under-writeback pages of the whole image, or -1 when the kernel cannot say. */
static long image_unsynced(const struct disk *d)
{
	struct page_cache pc;

	return page_cache(d->img.fd, 0, 0, &pc) ? (long)pc.unsynced : -1;
}

/* With FLUSH negotiated a write is acknowledged once it is in the host page cache; a FLUSH
 * is acknowledged only after its fdatasync of the image wrote every completed write back
 * (section 5.2.6.2; README: FLUSH is an fdatasync). The test sees both in the image's page
 * cache: the written range dirty after the write, clean when the FLUSH's used entry appears.
 * If the kernel's writeback happens to clean the range first, the write is tried again. */
static void check_flush(struct disk *d)
{
	struct seg w = {DATA + 0x80000, 4096, false};
	struct page_cache pc = {0};
	bool dirty = false;

	for (unsigned int i = 0; i < 5 && !dirty; i++) {
		fill(DATA + 0x80000, 4096, (uint8_t)(40 + i));
		CHECK_EQ(req(d, VIRTIO_BLK_T_OUT, 512, &w, 1), VIRTIO_BLK_S_OK);
		CHECK(page_cache(d->img.fd, 512 * 512, 4096, &pc));
		dirty = pc.unsynced > 0;
	}
	CHECK(dirty);
	CHECK_EQ(req(d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	CHECK(page_cache(d->img.fd, 512 * 512, 4096, &pc));
	CHECK_EQ(pc.unsynced, 0);
	CHECK(file_matches(d, 512 * 512, DATA + 0x80000, 4096));
}

/* Without FLUSH negotiated, discard and write-zeroes are durable before they are acknowledged,
 * as writes are (RWF_DSYNC): the device syncs the image. The test sees the sync through a page
 * it dirtied itself elsewhere in the image, which is clean once the request completed (the
 * writeback threads leave a dirty page alone for 30 s). */
static void check_durable(struct disk *d, uint32_t type, uint32_t flags)
{
	static struct virtio_blk_discard_write_zeroes seg;
	struct seg sg = {DATA + 0x40000, 16, false};
	uint8_t page[4096];

	memset(page, 0x5a, sizeof(page));
	CHECK_EQ(pwrite(d->img.fd, page, sizeof(page), 1024 * 512), (ssize_t)sizeof(page));
	if (image_unsynced(d) <= 0) {
		fprintf(stderr, "no dirty page seen (no cachestat?): durability unchecked\n");
		return;
	}
	seg = (struct virtio_blk_discard_write_zeroes){.sector = 16, .num_sectors = 8,
						      .flags = flags};
	memcpy(gpa(&f, DATA + 0x40000), &seg, 16);
	CHECK_EQ(req(d, type, 0, &sg, 1), VIRTIO_BLK_S_OK);
	CHECK_EQ(image_unsynced(d), 0);
}

/* One loop per test: a stopped loop does not start again. The device is created before the
 * loop thread starts (as in main.c), and destroyed after the ring is gone. */
static void start_loop(void)
{
	CHECK_EQ(loop_init(&loop, 256), 0);
	/* Every SQE the device submits names a registered file (or none, flagged anyway). */
	loop_require_fixed_files(&loop);
}

static void run_loop(void)
{
	CHECK_EQ(loop_start(&loop), 0);
}

static void stop_loop(void)
{
	loop_join(&loop);
	loop_fini(&loop);
}

static void test_image_open(void)
{
	struct blk_image a, b;

	CHECK_EQ(blk_image_open(&a, path_of("missing.img"), false, false), -ENOENT);
	CHECK_EQ(blk_image_open(&a, path_of("missing.img"), false, true), -ENOENT);
	CHECK(blk_image_open(&a, dir, false, false) < 0);
	CHECK(blk_image_open(&a, dir, true, false) < 0);
	make_file("tiny.img", 100);
	CHECK_EQ(blk_image_open(&a, path_of("tiny.img"), false, false), -EINVAL);
	make_file("odd.img", 4096 + 100);
	CHECK_EQ(blk_image_open(&a, path_of("odd.img"), false, false), 0);
	CHECK_EQ(a.size, 4196);
	/* One writer; readers share; a writer excludes readers and the other way round. */
	CHECK_EQ(blk_image_open(&b, path_of("odd.img"), false, false), -EWOULDBLOCK);
	CHECK_EQ(blk_image_open(&b, path_of("odd.img"), true, false), -EWOULDBLOCK);
	blk_image_close(&a);
	CHECK_EQ(blk_image_open(&a, path_of("odd.img"), true, false), 0);
	CHECK_EQ(blk_image_open(&b, path_of("odd.img"), true, false), 0);
	blk_image_close(&b);
	CHECK_EQ(blk_image_open(&b, path_of("odd.img"), false, false), -EWOULDBLOCK);
	blk_image_close(&a);
	CHECK_EQ(a.fd, -1);
	blk_image_close(&a); /* idempotent */
}

static void test_rw(void)
{
	struct disk d = {0};
	struct virtio_mmio *t;
	struct seg w[2] = {{DATA, 1000, false}, {DATA + 1000, 3096, false}};
	struct seg r3[3] = {{DATA + 0x10000, 512, true},
			    {DATA + 0x10200, 100, true},
			    {DATA + 0x10264, 3484, true}};
	struct seg one = {DATA + 0x20000, 512, true};
	struct seg part = {DATA + 0x20000, 100, true};
	uint8_t *id = gpa(&f, DATA + 0x30000);
	uint32_t used_len = 0;

	make_file("disk.img", DISK_SECTORS * 512);
	CHECK_EQ(blk_image_open(&d.img, path_of("disk.img"), false, false), 0);
	start_loop();
	d.b = virtio_blk_create("unit-blk", &d.img, "unit-disk", &f.mem, &loop);
	CHECK(d.b != NULL);
	run_loop();
	t = &d.b->mmio;

	/* Config space and features. */
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG, 8), DISK_SECTORS);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG + 12, 4), VIRTIO_BLK_SEG_MAX);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG + 20, 4), 512);
	CHECK_EQ(virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG + 40, 4), 1); /* max_discard_seg */
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	reg_wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint32_t feat = reg_rd(t, VIRTIO_MMIO_DEVICE_FEATURES);
	CHECK(feat & (1u << VIRTIO_BLK_F_FLUSH));
	CHECK(feat & (1u << VIRTIO_BLK_F_DISCARD));
	CHECK(feat & (1u << VIRTIO_BLK_F_WRITE_ZEROES));
	CHECK(!(feat & (1u << VIRTIO_BLK_F_RO)));
	start(&d, all_features());

	/* Write in two odd segments, then check the file itself. */
	fill(DATA, 4096, 3);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_OUT, 3, w, 2), VIRTIO_BLK_S_OK);
	CHECK(file_matches(&d, 3 * 512, DATA, 4096));
	CHECK_EQ(req(&d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	CHECK(!d.b->sync_writes);
	check_flush(&d);
	/* Read back in three other segments; used length counts data and status. */
	memset(gpa(&f, DATA + 0x10000), 0, 4096);
	CHECK_EQ(req_ex(&d, VIRTIO_BLK_T_IN, 3, r3, 3, false, &used_len), VIRTIO_BLK_S_OK);
	CHECK_EQ(used_len, 4097);
	CHECK(!memcmp(gpa(&f, DATA + 0x10000), gpa(&f, DATA), 4096));
	/* Through an indirect table. */
	memset(gpa(&f, DATA + 0x10000), 0, 4096);
	CHECK_EQ(req_ex(&d, VIRTIO_BLK_T_IN, 3, r3, 3, true, NULL), VIRTIO_BLK_S_OK);
	CHECK(!memcmp(gpa(&f, DATA + 0x10000), gpa(&f, DATA), 4096));
	/* The header split over two descriptors (framing is free, section 2.6.4). */
	{
		struct virtio_blk_outhdr *h = gpa(&f, HDR + 0x800);

		*h = (struct virtio_blk_outhdr){.type = VIRTIO_BLK_T_IN, .sector = 4};
		fring_desc(&d.r, 40, HDR + 0x800, 8, VRING_DESC_F_NEXT, 41);
		fring_desc(&d.r, 41, HDR + 0x808, 8, VRING_DESC_F_NEXT, 42);
		fring_desc(&d.r, 42, DATA + 0x20000, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
			   43);
		fring_desc(&d.r, 43, STATUS + 40, 1, VRING_DESC_F_WRITE, 0);
		fring_publish(&d.r, 40);
		kick(t, 0);
		uint32_t uid, ulen;

		CHECK(fring_wait_used(&d.r, &uid, &ulen, 5000));
		CHECK_EQ(uid, 40);
		CHECK_EQ(*(uint8_t *)gpa(&f, STATUS + 40), VIRTIO_BLK_S_OK);
		CHECK(!memcmp(gpa(&f, DATA + 0x20000), gpa(&f, DATA + 512), 512));
	}

	/* GET_ID: NUL-padded to 20 bytes; a shorter buffer gets what fits. */
	memset(id, 0xaa, 32);
	struct seg ids = {DATA + 0x30000, 20, true};
	CHECK_EQ(req_ex(&d, VIRTIO_BLK_T_GET_ID, 0, &ids, 1, false, &used_len), VIRTIO_BLK_S_OK);
	CHECK(!memcmp(id, "unit-disk\0\0\0\0\0\0\0\0\0\0\0", 20));
	CHECK_EQ(id[20], 0xaa);
	CHECK_EQ(used_len, 21);
	memset(id, 0xaa, 32);
	ids.len = 4;
	CHECK_EQ(req_ex(&d, VIRTIO_BLK_T_GET_ID, 0, &ids, 1, false, &used_len), VIRTIO_BLK_S_OK);
	CHECK(!memcmp(id, "unit", 4));
	CHECK_EQ(id[4], 0xaa);
	CHECK_EQ(used_len, 5);

	/* Requests that fail with a status and leave the device working. */
	CHECK_EQ(req(&d, 0x77, 0, NULL, 0), VIRTIO_BLK_S_UNSUPP);
	struct seg two = {DATA + 0x20000, 1024, true};
	CHECK_EQ(req(&d, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, &two, 1), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_IN, DISK_SECTORS, &one, 1), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_IN, UINT64_MAX, &one, 1), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_IN, 1ull << 55, &one, 1), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_IN, 0, &part, 1), VIRTIO_BLK_S_IOERR);
	struct seg wpart = {DATA, 100, false};
	CHECK_EQ(req(&d, VIRTIO_BLK_T_OUT, 0, &wpart, 1), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, &one, 1), VIRTIO_BLK_S_OK);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_IN, 5, NULL, 0), VIRTIO_BLK_S_OK); /* zero length */
	{
		/* A header of 8 bytes: IOERR through the status byte. */
		fring_desc(&d.r, 0, HDR, 8, VRING_DESC_F_NEXT, 1);
		fring_desc(&d.r, 1, STATUS, 1, VRING_DESC_F_WRITE, 0);
		fring_publish(&d.r, 0);
		kick(t, 0);
		uint32_t uid, ulen;

		CHECK(fring_wait_used(&d.r, &uid, &ulen, 5000));
		CHECK_EQ(*(uint8_t *)gpa(&f, STATUS), VIRTIO_BLK_S_IOERR);
	}

	/* Discard punches a hole; write-zeroes zeroes, with or without unmap. */
	static struct virtio_blk_discard_write_zeroes seg;
	struct seg sg = {DATA + 0x40000, 16, false};
	fill(DATA, 4096, 9);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_OUT, 16, w, 2), VIRTIO_BLK_S_OK);
	CHECK(!file_zero(&d, 16 * 512, 4096));
	seg = (struct virtio_blk_discard_write_zeroes){.sector = 16, .num_sectors = 8};
	memcpy(gpa(&f, DATA + 0x40000), &seg, 16);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_DISCARD, 0, &sg, 1), VIRTIO_BLK_S_OK);
	CHECK(file_zero(&d, 16 * 512, 4096));
	seg.flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	memcpy(gpa(&f, DATA + 0x40000), &seg, 16);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_DISCARD, 0, &sg, 1), VIRTIO_BLK_S_UNSUPP);
	for (uint32_t unmap = 0; unmap <= 1; unmap++) {
		CHECK_EQ(req(&d, VIRTIO_BLK_T_OUT, 16, w, 2), VIRTIO_BLK_S_OK);
		seg = (struct virtio_blk_discard_write_zeroes){
			.sector = 16, .num_sectors = 8, .flags = unmap};
		memcpy(gpa(&f, DATA + 0x40000), &seg, 16);
		CHECK_EQ(req(&d, VIRTIO_BLK_T_WRITE_ZEROES, 0, &sg, 1), VIRTIO_BLK_S_OK);
		CHECK(file_zero(&d, 16 * 512, 4096));
	}
	seg = (struct virtio_blk_discard_write_zeroes){.flags = 2, .num_sectors = 1};
	memcpy(gpa(&f, DATA + 0x40000), &seg, 16);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_WRITE_ZEROES, 0, &sg, 1), VIRTIO_BLK_S_UNSUPP);
	seg = (struct virtio_blk_discard_write_zeroes){.sector = DISK_SECTORS - 1,
						      .num_sectors = 2};
	memcpy(gpa(&f, DATA + 0x40000), &seg, 16);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_DISCARD, 0, &sg, 1), VIRTIO_BLK_S_IOERR);
	sg.len = 32; /* two segments: more than max_discard_seg */
	CHECK_EQ(req(&d, VIRTIO_BLK_T_DISCARD, 0, &sg, 1), VIRTIO_BLK_S_IOERR);

	/* Many requests in flight from one kick, each in its own slot. */
	for (unsigned int s = 0; s < 8; s++) {
		struct seg rd = {DATA + 0x80000 + s * 4096, 4096, true};

		post(&d, s, VIRTIO_BLK_T_IN, s * 8, &rd, 1, s & 1);
	}
	kick(t, 0);
	{
		unsigned int seen = 0;
		uint32_t uid, ulen;

		while (seen != 0xff && fring_wait_used(&d.r, &uid, &ulen, 5000)) {
			CHECK_EQ(uid % 8, 0);
			CHECK_EQ(ulen, 4097);
			seen |= 1u << (uid / 8);
		}
		CHECK_EQ(seen, 0xff);
		for (unsigned int s = 0; s < 8; s++)
			CHECK_EQ(*(uint8_t *)gpa(&f, STATUS + s), VIRTIO_BLK_S_OK);
	}

	/* Without FLUSH negotiated, writes are synchronous (RWF_DSYNC) and still work. */
	start(&d, all_features() & ~VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
	CHECK(d.b->sync_writes);
	fill(DATA, 4096, 21);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_OUT, 100, w, 2), VIRTIO_BLK_S_OK);
	CHECK(file_matches(&d, 100 * 512, DATA, 4096));
	/* Nothing of it waits in the host page cache once acknowledged (check_flush() shows the
	 * same write does, with FLUSH). */
	{
		struct page_cache pc = {.unsynced = 1};

		CHECK(page_cache(d.img.fd, 100 * 512, 4096, &pc));
		CHECK_EQ(pc.unsynced, 0);
	}
	/* And so are discard and write-zeroes. */
	check_durable(&d, VIRTIO_BLK_T_DISCARD, 0);
	check_durable(&d, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	check_durable(&d, VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);

	/* No writable byte for the status: NEEDS_RESET, and nothing else happens. */
	fring_desc(&d.r, 0, HDR, 16, VRING_DESC_F_NEXT, 1);
	fring_desc(&d.r, 1, STATUS, 1, 0, 0);
	fring_publish(&d.r, 0);
	kick(t, 0);
	CHECK(wait_status(t, VIRTIO_STATUS_NEEDS_RESET, 5000));
	CHECK(reg_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_ISR_CONFIG);
	/* A malformed chain does the same. */
	start(&d, all_features());
	fring_desc(&d.r, 0, HDR, 16, VRING_DESC_F_NEXT, 0);
	fring_publish(&d.r, 0);
	kick(t, 0);
	CHECK(wait_status(t, VIRTIO_STATUS_NEEDS_RESET, 5000));
	/* After a reset it works again. */
	start(&d, all_features());
	CHECK_EQ(req(&d, VIRTIO_BLK_T_IN, 3, &one, 1), VIRTIO_BLK_S_OK);
	CHECK(file_matches(&d, 3 * 512, DATA + 0x20000, 512));

	reg_wr(t, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(d.b->inflight, 0);
	stop_loop(); /* the device goes after the ring that points into it */
	virtio_blk_destroy(d.b);
	blk_image_close(&d.img);
}

/* A FLUSH is acknowledged with the fdatasync's outcome, so only after it completed: on an
 * image whose fdatasync fails (/dev/null has none: -EINVAL) the FLUSH fails, with or without a
 * write before it. */
static void test_flush_fails(void)
{
	struct disk d = {0};
	struct seg w = {DATA, 512, false};

	d.img = (struct blk_image){.fd = open("/dev/null", O_RDWR | O_CLOEXEC), .size = 1 << 20};
	CHECK(d.img.fd >= 0);
	CHECK(fdatasync(d.img.fd) < 0 && errno == EINVAL);
	start_loop();
	d.b = virtio_blk_create("unit-null", &d.img, NULL, &f.mem, &loop);
	CHECK(d.b != NULL);
	run_loop();
	start(&d, all_features());
	*(uint8_t *)gpa(&f, STATUS) = 0xff;
	CHECK_EQ(req(&d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_OUT, 0, &w, 1), VIRTIO_BLK_S_OK);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_IOERR);
	reg_wr(&d.b->mmio, VIRTIO_MMIO_STATUS, 0);
	stop_loop();
	virtio_blk_destroy(d.b);
	close(d.img.fd);
}

/* ,direct (cli/options.c: "O_DIRECT, bypassing the host page cache"): the image is open
 * O_DIRECT, and a write acknowledged without any FLUSH (FLUSH negotiated, so no RWF_DSYNC
 * either) never entered the host page cache and reads back from the disk through another
 * O_DIRECT descriptor. */
static void test_direct(void)
{
	struct disk d = {0};
	struct seg w = {DATA, 8192, false};
	struct page_cache pc = {.cached = 1};
	void *buf = NULL;
	int fd, ret;

	make_file("direct.img", DISK_SECTORS * 512);
	ret = blk_image_open(&d.img, path_of("direct.img"), false, true);
	if (ret == -EINVAL) {
		fprintf(stderr, "%s cannot do O_DIRECT: the direct case did not run\n", dir);
		return;
	}
	CHECK_EQ(ret, 0);
	CHECK(fcntl(d.img.fd, F_GETFL) & O_DIRECT);
	start_loop();
	d.b = virtio_blk_create("unit-direct", &d.img, NULL, &f.mem, &loop);
	CHECK(d.b != NULL);
	run_loop();
	start(&d, all_features());
	CHECK(!d.b->sync_writes);
	fill(DATA, 8192, 77);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_OUT, 64, &w, 1), VIRTIO_BLK_S_OK);
	CHECK(page_cache(d.img.fd, 64 * 512, 8192, &pc));
	CHECK_EQ(pc.cached, 0);
	fd = open(path_of("direct.img"), O_RDONLY | O_DIRECT | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(posix_memalign(&buf, 4096, 8192), 0);
	CHECK_EQ(pread(fd, buf, 8192, 64 * 512), 8192);
	CHECK(!memcmp(buf, gpa(&f, DATA), 8192));
	free(buf);
	close(fd);
	reg_wr(&d.b->mmio, VIRTIO_MMIO_STATUS, 0);
	stop_loop();
	virtio_blk_destroy(d.b);
	blk_image_close(&d.img);
}

static void test_ro(void)
{
	struct disk d = {0};
	struct seg w = {DATA, 512, false};
	struct seg r = {DATA + 0x1000, 512, true};

	make_file("ro.img", 64 * 512);
	CHECK_EQ(blk_image_open(&d.img, path_of("ro.img"), true, false), 0);
	start_loop();
	d.b = virtio_blk_create("unit-ro", &d.img, NULL, &f.mem, &loop);
	CHECK(d.b != NULL);
	run_loop();
	reg_wr(&d.b->mmio, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint32_t feat = reg_rd(&d.b->mmio, VIRTIO_MMIO_DEVICE_FEATURES);
	CHECK(feat & (1u << VIRTIO_BLK_F_RO));
	CHECK(!(feat & (1u << VIRTIO_BLK_F_DISCARD)));
	start(&d, (all_features() | VIRTIO_BIT(VIRTIO_BLK_F_RO)) &
			  ~(VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
			    VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES)));
	fill(DATA, 512, 1);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_OUT, 0, &w, 1), VIRTIO_BLK_S_IOERR);
	CHECK(file_zero(&d, 0, 512));
	CHECK_EQ(req(&d, VIRTIO_BLK_T_IN, 0, &r, 1), VIRTIO_BLK_S_OK);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	/* GET_ID without an id: all zeroes. */
	memset(gpa(&f, DATA + 0x2000), 0xaa, 20);
	struct seg id = {DATA + 0x2000, 20, true};
	CHECK_EQ(req(&d, VIRTIO_BLK_T_GET_ID, 0, &id, 1), VIRTIO_BLK_S_OK);
	for (unsigned int i = 0; i < 20; i++)
		CHECK_EQ(((uint8_t *)gpa(&f, DATA + 0x2000))[i], 0);
	/* Discard was not negotiated. */
	memset(gpa(&f, DATA + 0x3000), 0, 16);
	struct seg sg = {DATA + 0x3000, 16, false};
	CHECK_EQ(req(&d, VIRTIO_BLK_T_DISCARD, 0, &sg, 1), VIRTIO_BLK_S_UNSUPP);
	reg_wr(&d.b->mmio, VIRTIO_MMIO_STATUS, 0);
	stop_loop();
	virtio_blk_destroy(d.b);
	blk_image_close(&d.img);
}

/* A pipe as the "image": a read blocks until the test writes, so a request stays in flight
 * as long as the test wants. */
struct feeder {
	int fd;
	unsigned int delay_ms;
};

static void *feed(void *arg)
{
	struct feeder *fd = arg;
	static uint8_t buf[512];

	usleep(fd->delay_ms * 1000);
	if (write(fd->fd, buf, sizeof(buf)) != sizeof(buf))
		fprintf(stderr, "feeder write failed\n");
	return NULL;
}

static void test_in_flight(void)
{
	struct disk d = {0};
	struct seg r = {DATA, 512, true};
	struct feeder fe;
	pthread_t th;
	int p[2];
	uint32_t id, len;
	uint64_t t0;

	CHECK_EQ(pipe(p), 0);
	d.img = (struct blk_image){.fd = p[0], .size = 1 << 20};
	start_loop();
	d.b = virtio_blk_create("unit-pipe", &d.img, NULL, &f.mem, &loop);
	run_loop();
	start(&d, all_features());

	/* The same head made available again while it is in flight. */
	post(&d, 0, VIRTIO_BLK_T_IN, 0, &r, 1, false);
	kick(&d.b->mmio, 0);
	usleep(20000);
	CHECK(!fring_used(&d.r, &id, &len));
	fring_publish(&d.r, 0);
	kick(&d.b->mmio, 0);
	CHECK(wait_status(&d.b->mmio, VIRTIO_STATUS_NEEDS_RESET, 5000));

	/* A reset waits until the read completes, and pushes nothing. */
	fe = (struct feeder){.fd = p[1], .delay_ms = 100};
	CHECK_EQ(pthread_create(&th, NULL, feed, &fe), 0);
	t0 = now_ms();
	reg_wr(&d.b->mmio, VIRTIO_MMIO_STATUS, 0);
	CHECK(now_ms() - t0 >= 80);
	CHECK_EQ(d.b->inflight, 0);
	CHECK(!fring_used(&d.r, &id, &len));
	pthread_join(th, NULL);

	/* A reset that cannot finish in time (the read waits on the pipe) is not pretended:
	 * Status reads NEEDS_RESET, not 0, the driver's new setup is refused, and the read that
	 * completes later goes to nobody; nothing lands in the new ring. The reset is done once
	 * it has, and the device works again. */
	start(&d, all_features());
	post(&d, 2, VIRTIO_BLK_T_IN, 0, &r, 1, false);
	kick(&d.b->mmio, 0);
	usleep(20000);
	CHECK_EQ(d.b->inflight, 1);
	d.b->mmio.ctl_timeout_ms = 100;
	t0 = now_ms();
	reg_wr(&d.b->mmio, VIRTIO_MMIO_STATUS, 0);
	CHECK(now_ms() - t0 >= 80);
	CHECK_EQ(reg_rd(&d.b->mmio, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_NEEDS_RESET);
	{
		struct fring r2;
		uint32_t st = drv_features(&d.b->mmio, all_features()); /* resets again first */

		CHECK_EQ(st, VIRTIO_STATUS_NEEDS_RESET);
		fring_init(&r2, &f, RING + 0x4000, QSIZE);
		drv_queue(&d.b->mmio, 0, QSIZE, r2.desc_gpa, r2.avail_gpa, r2.used_gpa);
		drv_ok(&d.b->mmio);
		CHECK_EQ(reg_rd(&d.b->mmio, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_NEEDS_RESET);
		fe = (struct feeder){.fd = p[1], .delay_ms = 0};
		CHECK_EQ(pthread_create(&th, NULL, feed, &fe), 0);
		pthread_join(th, NULL);
		usleep(50000);
		CHECK_EQ(d.b->inflight, 0);
		CHECK(!fring_used(&r2, &id, &len));
		CHECK(!fring_used(&d.r, &id, &len));
		CHECK_EQ(r2.used->idx, 0);
	}
	CHECK_EQ(reg_rd(&d.b->mmio, VIRTIO_MMIO_STATUS), 0);
	d.b->mmio.ctl_timeout_ms = 30000;
	start(&d, all_features());
	fe = (struct feeder){.fd = p[1], .delay_ms = 0};
	CHECK_EQ(pthread_create(&th, NULL, feed, &fe), 0);
	post(&d, 3, VIRTIO_BLK_T_IN, 0, &r, 1, false);
	kick(&d.b->mmio, 0);
	CHECK(fring_wait_used(&d.r, &id, &len, 3000));
	CHECK_EQ(id, 3 * 8);
	pthread_join(th, NULL);

	/* At exit: a request still in flight when the loop stops is drained. */
	start(&d, all_features());
	post(&d, 1, VIRTIO_BLK_T_IN, 0, &r, 1, false);
	kick(&d.b->mmio, 0);
	usleep(20000);
	CHECK_EQ(d.b->inflight, 1);
	loop_join(&loop); /* as main.c: the loop stops, then each disk drains */
	fe.delay_ms = 50;
	CHECK_EQ(pthread_create(&th, NULL, feed, &fe), 0);
	virtio_blk_drain(d.b);
	CHECK_EQ(d.b->inflight, 0);
	pthread_join(th, NULL);
	loop_fini(&loop);
	virtio_blk_destroy(d.b);
	close(p[0]);
	close(p[1]);
}

/* Writes of 4 KiB through a bucket of 4 KiB refilled in 2 s, slots 0-7, one kick: the first
 * goes, the rest wait (nothing used for a while), the wait is one throttle event; lifting the
 * limit serves them all, in order of the data they carry. */
static void test_limit(void)
{
	struct disk d = {0};
	struct rl_config slow = {.bw = {.size = 4096, .refill_ms = 2000}}, off = {0};
	struct seg w[8], big = {DATA + 0x80000, 8192, false};
	uint32_t id, len;
	unsigned int n = 0;

	make_file("limit.img", DISK_SECTORS * 512);
	CHECK_EQ(blk_image_open(&d.img, path_of("limit.img"), false, false), 0);
	start_loop();
	d.b = virtio_blk_create("unit-limit", &d.img, NULL, &f.mem, &loop);
	CHECK(d.b != NULL);
	rate_limiter_update(&d.b->rl, &slow);
	run_loop();
	start(&d, all_features());
	for (unsigned int i = 0; i < 8; i++) {
		w[i] = (struct seg){DATA + i * 4096, 4096, false};
		fill(DATA + i * 4096, 4096, (uint8_t)(i + 1));
		post(&d, i, VIRTIO_BLK_T_OUT, i * 8, &w[i], 1, false);
	}
	kick(&d.b->mmio, 0);
	CHECK(fring_wait_used(&d.r, &id, &len, 2000));
	CHECK_EQ(id, 0);
	usleep(300000);
	CHECK(!fring_used(&d.r, &id, &len)); /* the queue waits: 4 KiB per 2 s */
	kick(&d.b->mmio, 0);		      /* a kick does not get past the limiter */
	usleep(50000);
	CHECK(!fring_used(&d.r, &id, &len));
	CHECK_EQ(atomic_load(&d.b->rl.throttled), 1);
	rate_limiter_update(&d.b->rl, &off);
	while (n < 7 && fring_wait_used(&d.r, &id, &len, 2000)) {
		CHECK_EQ(*(uint8_t *)gpa(&f, STATUS + id / 8), VIRTIO_BLK_S_OK);
		n++;
	}
	CHECK_EQ(n, 7);
	for (unsigned int i = 0; i < 8; i++)
		CHECK(file_matches(&d, i * 4096, DATA + i * 4096, 4096));

	/* Bigger than the bucket: served once the bucket is full, then the debt holds the next
	 * (each wait counted once: 2 so far). */
	rate_limiter_update(&d.b->rl, &(struct rl_config){.bw = {.size = 4096, .refill_ms = 100}});
	fill(DATA + 0x80000, 8192, 9);
	CHECK_EQ(req(&d, VIRTIO_BLK_T_OUT, 100, &big, 1), VIRTIO_BLK_S_OK);
	CHECK(file_matches(&d, 100 * 512, DATA + 0x80000, 8192));
	CHECK_EQ(req(&d, VIRTIO_BLK_T_IN, 100, &(struct seg){DATA + 0xa0000, 512, true}, 1),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(atomic_load(&d.b->rl.throttled), 2);
	CHECK(!memcmp(gpa(&f, DATA + 0xa0000), gpa(&f, DATA + 0x80000), 512));

	/* Operations: a flush costs one too. A reset drops the held request: it is answered to
	 * nobody and the reset does not wait for it. */
	rate_limiter_update(&d.b->rl, &(struct rl_config){.ops = {.size = 1, .refill_ms = 5000}});
	post(&d, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
	post(&d, 1, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
	kick(&d.b->mmio, 0);
	CHECK(fring_wait_used(&d.r, &id, &len, 2000));
	usleep(50000);
	CHECK(!fring_used(&d.r, &id, &len));
	CHECK(d.b->held != NULL);
	CHECK_EQ(d.b->inflight, 1);
	reg_wr(&d.b->mmio, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(reg_rd(&d.b->mmio, VIRTIO_MMIO_STATUS), 0);
	CHECK(d.b->held == NULL);
	CHECK_EQ(d.b->inflight, 0);

	/* A snapshot's freeze gives the held request back to the ring: the saved state has taken
	 * only the first; after the thaw, with the limit lifted, the second is served. */
	rate_limiter_update(&d.b->rl, &(struct rl_config){.ops = {.size = 1, .refill_ms = 5000}});
	start(&d, all_features());
	post(&d, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
	post(&d, 1, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
	kick(&d.b->mmio, 0);
	CHECK(fring_wait_used(&d.r, &id, &len, 2000));
	CHECK_EQ(id, 0);
	usleep(50000);
	CHECK(d.b->held != NULL);
	CHECK_EQ(virtio_mmio_freeze(&d.b->mmio), 0);
	CHECK(d.b->held == NULL);
	CHECK_EQ(d.b->inflight, 0);
	{
		static struct virtio_mmio_state st;

		virtio_mmio_save(&d.b->mmio, &st);
		CHECK_EQ(st.q[0].last_avail, 1);
		CHECK_EQ(st.q[0].used_idx, 1);
	}
	rate_limiter_update(&d.b->rl, &off);
	virtio_mmio_thaw(&d.b->mmio);
	CHECK(fring_wait_used(&d.r, &id, &len, 2000));
	CHECK_EQ(id, 8);
	rate_limiter_update(&d.b->rl, &(struct rl_config){.ops = {.size = 1, .refill_ms = 5000}});

	/* At exit with a request held: the drain lets it go and cancels the timeout. */
	start(&d, all_features());
	post(&d, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
	post(&d, 1, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
	kick(&d.b->mmio, 0);
	usleep(50000);
	CHECK(d.b->held != NULL);
	loop_join(&loop);
	virtio_blk_drain(d.b);
	CHECK_EQ(d.b->inflight, 0);
	CHECK(!d.b->rl.armed);
	loop_fini(&loop);
	virtio_blk_destroy(d.b);
	blk_image_close(&d.img);
}

int main(void)
{
	if (!mkdtemp(dir))
		return T_EXIT_FAIL;
	if (loop_init(&loop, 8))
		return t_skip("io_uring unavailable");
	loop_fini(&loop);
	CHECK_EQ(fake_ram_init(&f), 0);

	test_image_open();
	test_rw();
	test_flush_fails();
	test_direct();
	test_ro();
	test_in_flight();
	test_limit();

	fake_ram_fini(&f);
	unlink(path_of("disk.img"));
	unlink(path_of("ro.img"));
	unlink(path_of("tiny.img"));
	unlink(path_of("odd.img"));
	unlink(path_of("direct.img"));
	rmdir(dir);
	return t_done();
}
