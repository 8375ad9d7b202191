/* fuzz_virtio_mmio.c: libFuzzer target for the virtio-mmio register file (virtio/mmio.c) with
 * each device behind it: virtio-blk on a memfd image, virtio-console on pipes, virtio-rng,
 * virtio-net on a SOCK_SEQPACKET socketpair in place of the TAP, and virtio-balloon (whose
 * inflated frames and reported ranges really are given back: they read as zeros after). As in the unit tests
 * (tests/unit/test_virtio_*.c), the device runs on a real io_uring loop thread and this thread
 * plays the vCPU: the input is a program of register reads and writes (resets mid-I/O
 * included), guest memory contents, descriptor chains, queue notifications, waits, and
 * host-side input (console bytes, received frames). Every input gets a fresh loop and device,
 * torn down as mvm does at exit (loop stopped, device drained, destroyed), so nothing carries
 * over from one input to the next but the guest RAM buffer, cleared each time.
 *
 * Whatever the program, nothing may crash, trip ASan/UBSan or leak, and no device operation
 * may outlive the device. The I/O thread runs concurrently, so a run is not bit-for-bit
 * repeatable (which chains a kick finds depends on timing); a wait lasts until the I/O thread
 * sleeps in io_uring_enter (read from /proc) or WAIT_MS at most, and
 * activations and resets time out after CTL_TIMEOUT_MS instead of 30 s, which also explores
 * the "reset still pending" path.
 *
 * Input layout: [0] device (0 blk, 1 console, 2 rng, 3 net, 4 balloon), [1] bit 0: blk
 * read-only, balloon: bit 1 statistics, bit 2 free page reporting, bit 3 deflate on OOM; then
 * operations, one byte each plus arguments (see run()). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/guest_mem.h"
#include "core/loop.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

#define RAM_SIZE	 (1u << 20)
#define RING_AREA	 0x4000u	/* queue q's rings at q * RING_AREA: desc, +0x1000 avail,
					 * +0x2000 used (room for 256 entries) */
#define DATA_BASE	 0x10000u
#define IMAGE_SIZE	 (64u << 10)
#define CTL_TIMEOUT_MS	 200
#define WAIT_MS		 2
#define OPS_MAX		 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static uint8_t *ram;
static struct guest_mem mem;
/* The balloon's memory map: guest RAM with a reserved hole, and RAM the map claims past the
 * end of guest memory (frames there are in the map but have no host memory). */
static const struct memmap map = {
	.n = 3,
	.e = {{0, 0x80000, MEMMAP_RAM},
	      {0x80000, 0x10000, MEMMAP_RESERVED},
	      {0x90000, 2 * RAM_SIZE - 0x90000, MEMMAP_RAM}},
};
static int image_fd, null_fd;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* For the whole run: guest RAM, the blk image, /dev/null for console output. */
	ram = aligned_alloc(4096, RAM_SIZE);
	image_fd = memfd_create("fuzz-blk", MFD_CLOEXEC);
	null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	guest_mem_init(&mem);
	if (!ram || image_fd < 0 || null_fd < 0 || guest_mem_add(&mem, 0, RAM_SIZE, ram))
		abort();
	return 0;
}

struct cursor {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct cursor *c, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n && c->left; i++, c->left--)
		v |= (uint64_t)*c->p++ << (8 * i);
	return v;
}

/* The device under test and what its host side needs. */
struct rig {
	unsigned int kind;
	struct loop loop;
	struct virtio_mmio *t;
	struct virtio_blk *blk;
	struct virtio_console con;
	struct virtio_rng rng;
	struct virtio_net *net;
	struct virtio_balloon *balloon;
	int con_in[2];		/* host -> guest console bytes */
	int sp[2];		/* net: [0] the device's "TAP", [1] the host's end */
	uint16_t avail_idx[VIRTIO_MMIO_MAX_QUEUES];
	uint16_t qsize[VIRTIO_MMIO_MAX_QUEUES];
	uint32_t data_next;	/* next free byte of the data area, for chains */
};

static uint32_t rd(struct rig *r, uint64_t off)
{
	return (uint32_t)virtio_mmio_bus_ops.read(r->t, off, 4);
}

static void wr(struct rig *r, uint64_t off, uint32_t v)
{
	virtio_mmio_bus_ops.write(r->t, off, v, 4);
}

/* The I/O thread's /proc/self/task/TID/stat, to see whether it sleeps (in io_uring_enter). */
static int io_stat_fd = -1;

static void find_io_thread(void)
{
	char path[64], name[32];
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	io_stat_fd = -1;
	while (d && (e = readdir(d))) {
		int fd;
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd >= 0 ? read(fd, name, sizeof(name) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0 && !strncmp(name, "mvm-io", 6)) {
			snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
			io_stat_fd = open(path, O_RDONLY | O_CLOEXEC);
			break;
		}
	}
	if (d)
		closedir(d);
}

static bool io_thread_sleeps(void)
{
	char buf[256], *p;
	ssize_t n;

	if (io_stat_fd < 0)
		return false;
	n = pread(io_stat_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* "tid (comm) S ..." */
	return p && p[1] == ' ' && p[2] == 'S';
}

/* Lets the I/O thread work: returns once it has slept in io_uring_enter for two looks in a
 * row (nothing left to do), or after WAIT_MS. Takes the interrupts it raised meanwhile. */
static void wait_io(struct rig *r)
{
	struct timespec start, now;
	unsigned int idle = 0;
	uint64_t v;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (read(virtio_mmio_irq_fd(r->t), &v, sizeof(v)) < 0 && errno != EAGAIN)
			return;
		idle = io_thread_sleeps() ? idle + 1 : 0;
		if (idle >= 2)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) >
		    WAIT_MS * 1000000L)
			return;
		usleep(20);
	}
}

/* The host end of the net socketpair and the console pipe: take what the device sent. */
static void host_drain(struct rig *r)
{
	static uint8_t buf[65536 + 64];

	if (r->kind == 3)
		while (recv(r->sp[1], buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
}

/* A driver's setup: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, every queue of
 * (size) entries at its ring area, DRIVER_OK (unless asked not to). */
static void setup(struct rig *r, struct cursor *in)
{
	uint32_t lo = (uint32_t)take(in, 4), hi_bits = (uint32_t)take(in, 1);
	unsigned int size = 1u << (take(in, 1) % 9), flags = (unsigned int)take(in, 1);
	uint32_t dev_lo, dev_hi;

	wr(r, VIRTIO_MMIO_STATUS, 0);
	wr(r, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(r, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(r, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	dev_lo = rd(r, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(r, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	dev_hi = rd(r, VIRTIO_MMIO_DEVICE_FEATURES);
	/* Bit 0 of flags: accept what the input says even where the device does not offer it. */
	if (!(flags & 1)) {
		lo &= dev_lo;
		hi_bits = (hi_bits & dev_hi) | 1; /* VIRTIO_F_VERSION_1 */
	}
	wr(r, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(r, VIRTIO_MMIO_DRIVER_FEATURES, lo);
	wr(r, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(r, VIRTIO_MMIO_DRIVER_FEATURES, hi_bits);
	wr(r, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					  VIRTIO_STATUS_FEATURES_OK);
	for (unsigned int q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		uint64_t base = (uint64_t)q * RING_AREA;

		memset(ram + base, 0, RING_AREA);
		r->avail_idx[q] = 0;
		r->qsize[q] = (uint16_t)size;
		wr(r, VIRTIO_MMIO_QUEUE_SEL, q);
		wr(r, VIRTIO_MMIO_QUEUE_NUM, size);
		wr(r, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)base);
		wr(r, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
		wr(r, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(base + 0x1000));
		wr(r, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
		wr(r, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(base + 0x2000));
		wr(r, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
		wr(r, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	if (!(flags & 2))
		wr(r, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
						  VIRTIO_STATUS_FEATURES_OK |
						  VIRTIO_STATUS_DRIVER_OK);
}

static struct vring_desc *desc_at(struct rig *r, unsigned int q, uint16_t i)
{
	return (struct vring_desc *)(ram + q * RING_AREA) + (i % 256);
}

static void publish(struct rig *r, unsigned int q, uint16_t head)
{
	struct vring_avail *a = (struct vring_avail *)(ram + q * RING_AREA + 0x1000);
	uint16_t size = r->qsize[q] ? r->qsize[q] : 256;

	a->ring[r->avail_idx[q] % size] = head;
	r->avail_idx[q]++;
	__atomic_store_n(&a->idx, r->avail_idx[q], __ATOMIC_RELEASE);
}

/* A well-formed chain of 1 to 4 segments in the data area: the first readable one starts
 * with up to 16 input bytes (a blk request header, a net header), then the rest. */
static void chain(struct rig *r, struct cursor *in)
{
	unsigned int q = (unsigned int)take(in, 1), n = 1 + (unsigned int)take(in, 1) % 4;
	uint16_t head = (uint16_t)take(in, 2), size;
	uint8_t hdr[16];

	q %= VIRTIO_MMIO_MAX_QUEUES;
	size = r->qsize[q] ? r->qsize[q] : 256;
	head %= size;
	memset(hdr, 0, sizeof(hdr));
	for (unsigned int i = 0; i < sizeof(hdr); i++)
		hdr[i] = (uint8_t)take(in, 1);
	for (unsigned int s = 0; s < n; s++) {
		uint16_t idx = (uint16_t)((head + s) % size);
		uint32_t len = (uint32_t)take(in, 2) % 0x4000 + 1;
		uint16_t flags = (uint16_t)(take(in, 1) & VRING_DESC_F_WRITE);
		uint32_t addr;

		if (r->data_next + len > RAM_SIZE)
			r->data_next = DATA_BASE;
		addr = r->data_next;
		r->data_next += (len + 15) & ~15u;
		if (s == 0 && !(flags & VRING_DESC_F_WRITE))
			memcpy(ram + addr, hdr, len < sizeof(hdr) ? len : sizeof(hdr));
		if (s + 1 < n)
			flags |= VRING_DESC_F_NEXT;
		*desc_at(r, q, idx) = (struct vring_desc){.addr = addr, .len = len, .flags = flags,
							  .next = (uint16_t)((idx + 1) % size)};
	}
	publish(r, q, head);
}

/* Many chains at once, then one kick: more than a queue's per-iteration budget
 * (VIRTIO_MMIO_BUDGET), so the device must yield and resume. Each chain is one or two
 * descriptors (bit 1 of flags): the first readable, starting with up to 16 input bytes (or
 * writable: bit 0), the second writable. */
static void burst(struct rig *r, struct cursor *in)
{
	unsigned int q = (unsigned int)take(in, 1) % VIRTIO_MMIO_MAX_QUEUES;
	unsigned int n = 1 + (unsigned int)take(in, 1), flags = (unsigned int)take(in, 1);
	uint32_t len = (uint32_t)take(in, 2) % 0x1000 + 1;
	unsigned int per = flags & 2 ? 2 : 1;
	uint16_t size = r->qsize[q] ? r->qsize[q] : 256;
	uint8_t hdr[16];

	for (unsigned int i = 0; i < sizeof(hdr); i++)
		hdr[i] = (uint8_t)take(in, 1);
	if (n > size / per)
		n = size / per;
	for (unsigned int k = 0; k < n; k++) {
		uint16_t idx = (uint16_t)(k * per);
		uint32_t addr;

		if (r->data_next + len + 16 > RAM_SIZE)
			r->data_next = DATA_BASE;
		addr = r->data_next;
		r->data_next += ((len + 15) & ~15u) + 16;
		memcpy(ram + addr, hdr, len < sizeof(hdr) ? len : sizeof(hdr));
		*desc_at(r, q, idx) = (struct vring_desc){
			.addr = addr,
			.len = len,
			.flags = (uint16_t)((flags & 1 ? VRING_DESC_F_WRITE : 0) |
					    (per == 2 ? VRING_DESC_F_NEXT : 0)),
			.next = (uint16_t)(idx + 1)};
		if (per == 2)
			*desc_at(r, q, idx + 1) = (struct vring_desc){
				.addr = addr + ((len + 15) & ~15u), .len = 1,
				.flags = VRING_DESC_F_WRITE};
		publish(r, q, idx);
	}
	wr(r, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static void host_input(struct rig *r, struct cursor *in)
{
	uint8_t buf[256 + sizeof(struct virtio_net_hdr_v1)];
	size_t n = (size_t)take(in, 1);

	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)take(in, 1);
	switch (r->kind) {
	case 0: /* the image changes under the guest (another process writes it) */
		if (pwrite(image_fd, buf, n, (off_t)(take(in, 2) * 512 % IMAGE_SIZE)) < 0)
			break;
		break;
	case 1:
		if (write(r->con_in[1], buf, n) < 0)
			break;
		break;
	case 3:
		if (send(r->sp[1], buf, n, MSG_DONTWAIT) < 0)
			break;
		break;
	case 4: /* the host's target and statistics interval, as the API changes them */
		virtio_balloon_set_target(r->balloon, (uint32_t)take(in, 4));
		(void)virtio_balloon_set_stats_interval(r->balloon, (unsigned int)take(in, 1));
		break;
	}
}

static void run(struct rig *r, struct cursor *in)
{
	for (unsigned int ops = 0; in->left && ops < OPS_MAX; ops++) {
		uint8_t op = (uint8_t)take(in, 1);

		switch (op % 14) {
		case 0: /* any register or config byte, any width */
		case 1: {
			uint64_t off = take(in, 2) % VIRTIO_MMIO_WINDOW;
			unsigned int size = 1u << ((op >> 4) & 3);
			uint64_t v = take(in, size);

			if (op % 14 == 0)
				virtio_mmio_bus_ops.write(r->t, off, v, size);
			else
				(void)virtio_mmio_bus_ops.read(r->t, off, size);
			break;
		}
		case 2: /* a register, 32 bits */
			wr(r, (take(in, 1) * 4) % 0x100, (uint32_t)take(in, 4));
			break;
		case 3:
			setup(r, in);
			break;
		case 4: { /* guest memory */
			uint32_t off = (uint32_t)take(in, 3) % RAM_SIZE;
			size_t n = (size_t)take(in, 1);

			for (size_t i = 0; i < n && off + i < RAM_SIZE; i++)
				ram[off + i] = (uint8_t)take(in, 1);
			break;
		}
		case 5: { /* one descriptor, any fields */
			unsigned int q = (unsigned int)take(in, 1) % VIRTIO_MMIO_MAX_QUEUES;
			uint16_t i = (uint16_t)take(in, 1);
			struct vring_desc d;

			d.addr = take(in, 3);
			if (op & 0x80)
				d.addr |= take(in, 5) << 24;
			d.len = (uint32_t)take(in, op & 0x40 ? 4 : 2);
			d.flags = (uint16_t)take(in, 1);
			d.next = (uint16_t)take(in, 1);
			*desc_at(r, q, i) = d;
			break;
		}
		case 6: { /* publish a head */
			unsigned int q = (unsigned int)take(in, 1) % VIRTIO_MMIO_MAX_QUEUES;

			publish(r, q, (uint16_t)take(in, 2));
			break;
		}
		case 7: /* QueueNotify, any value */
			wr(r, VIRTIO_MMIO_QUEUE_NOTIFY, (uint32_t)take(in, 1) % 6);
			break;
		case 8:
			wait_io(r);
			host_drain(r);
			break;
		case 9: /* reset, maybe while requests are in flight */
			wr(r, VIRTIO_MMIO_STATUS, 0);
			break;
		case 10:
			host_input(r, in);
			break;
		case 11: /* the driver's interrupt handler */
			wr(r, VIRTIO_MMIO_INTERRUPT_ACK, rd(r, VIRTIO_MMIO_INTERRUPT_STATUS));
			break;
		case 12: { /* a chain, then a kick of its queue */
			uint8_t q = in->left ? in->p[0] : 0;

			chain(r, in);
			wr(r, VIRTIO_MMIO_QUEUE_NOTIFY, q % VIRTIO_MMIO_MAX_QUEUES);
			break;
		}
		case 13:
			burst(r, in);
			break;
		}
	}
	/* Give the device one last chance to run what was kicked. */
	wait_io(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 1};
	struct cursor in = {data, size};
	/* Static, not on the stack: the kernel tears a ring down asynchronously. */
	static struct rig r;
	int ret = 0;

	if (size < 2)
		return 0;
	memset(&r, 0, sizeof(r));
	r.kind = data[0] % 5;
	r.con_in[0] = r.con_in[1] = r.sp[0] = r.sp[1] = -1;
	r.data_next = DATA_BASE;
	in.p += 2;
	in.left -= 2;
	memset(ram, 0, RAM_SIZE);
	if (loop_init(&r.loop, 256))
		abort();

	switch (r.kind) {
	case 0: {
		struct blk_image img = {.fd = image_fd, .size = IMAGE_SIZE, .ro = data[1] & 1};

		/* A fresh image of zeroes. */
		if (ftruncate(image_fd, 0) || ftruncate(image_fd, IMAGE_SIZE))
			abort();
		r.blk = virtio_blk_create("fuzz-blk", &img, "fuzz", &mem, &r.loop);
		if (!r.blk)
			abort();
		r.t = &r.blk->mmio;
		break;
	}
	case 1:
		if (pipe2(r.con_in, O_CLOEXEC) || fcntl(r.con_in[1], F_SETFL, O_NONBLOCK))
			abort();
		ret = virtio_console_init(&r.con, "fuzz-console", r.con_in[0], null_fd, NULL, NULL,
					  &mem, &r.loop);
		r.t = &r.con.mmio;
		break;
	case 2:
		ret = virtio_rng_init(&r.rng, "fuzz-rng", &mem, &r.loop);
		r.t = &r.rng.mmio;
		break;
	case 3:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, r.sp))
			abort();
		r.net = virtio_net_create("fuzz-net", r.sp[0], false, mac, &mem, &r.loop);
		if (!r.net)
			abort();
		r.t = &r.net->mmio;
		break;
	case 4: {
		struct virtio_balloon_params p = {.target_pages = 64,
						  .stats_interval_s = data[1] & 2 ? 1 : 0,
						  .free_page_reporting = data[1] & 4,
						  .deflate_on_oom = data[1] & 8};

		r.balloon = virtio_balloon_create("fuzz-balloon", &p, &map, &mem, &r.loop);
		if (!r.balloon)
			abort();
		r.t = &r.balloon->mmio;
		break;
	}
	}
	if (ret || loop_start(&r.loop))
		abort();
	r.t->ctl_timeout_ms = CTL_TIMEOUT_MS;
	find_io_thread();

	run(&r, &in);

	/* Teardown as cli/main.c does it: the loop stops, then each device drains. */
	loop_join(&r.loop);
	if (io_stat_fd >= 0)
		close(io_stat_fd);
	io_stat_fd = -1;
	switch (r.kind) {
	case 0:
		virtio_blk_drain(r.blk);
		break;
	case 1: {
		uint8_t buf[4096];

		/* Nothing left for the console's armed read to take once the ring is gone. */
		if (fcntl(r.con_in[0], F_SETFL, O_NONBLOCK) == 0)
			while (read(r.con_in[0], buf, sizeof(buf)) > 0)
				;
		break;
	}
	case 3:
		virtio_net_drain(r.net);
		break;
	}
	loop_fini(&r.loop);
	switch (r.kind) {
	case 0:
		virtio_blk_destroy(r.blk);
		break;
	case 1:
		virtio_console_fini(&r.con);
		close(r.con_in[0]);
		close(r.con_in[1]);
		break;
	case 2:
		virtio_rng_fini(&r.rng);
		break;
	case 3:
		virtio_net_destroy(r.net);
		close(r.sp[0]);
		close(r.sp[1]);
		break;
	case 4:
		virtio_balloon_destroy(r.balloon);
		break;
	}
	return 0;
}
