/* test_virtio_budget.c: no device monopolises the I/O thread. A guest can keep some devices
 * busy for as long as it likes by making every used buffer available again at once; here a
 * "vCPU" thread does that to virtio-rng, to console receive chains with nothing to move (input
 * waits, the buffers have no writable byte), to console transmit chains with nothing to write
 * and to virtio-net transmit frames the device refuses, each chain 32768 empty descriptors.
 * Meanwhile a virtio-blk disk on the same loop must serve a read and finish a reset promptly,
 * and the flood must go on too. Then one kick with more chains than the per-iteration budget
 * (VIRTIO_MMIO_BUDGET) is served over more than one loop iteration (one interrupt decision
 * each). */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "test.h"
#include "util/util.h"
#include "vdriver.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/net.h"
#include "virtio/rng.h"

#define QSIZE	   64		/* flooded rings: the largest virtio-rng and console take */
#define BLK_QSIZE  16
#define RNG_RING   0x10000ull
#define CON_RX	   0x14000ull
#define CON_TX	   0x18000ull
#define NET_RX	   0x1c000ull
#define NET_TX	   0x20000ull
#define BLK_RING   0x24000ull
#define BLK_HDR	   0x28000ull
#define BLK_STATUS 0x28100ull
#define BLK_DATA   0x29000ull
#define TABLE	   0x100000ull	/* the indirect table every flooded chain uses */
#define TABLE_LEN  VIRTQ_MAX_SIZE
#define BUF	   0x200000ull
#define FLOOD_MS   3000		/* a flood stops by itself after this long */

_Static_assert(QSIZE > VIRTIO_MMIO_BUDGET, "one kick must exceed the budget");

static struct fake_ram f;
static struct loop loop;
static struct virtio_rng rng;
static struct virtio_console con;
static struct virtio_net *net;
static struct virtio_blk *blk;
static struct blk_image img;
static struct fring blk_ring;
static char dir[] = "/tmp/mvm-test-budget-XXXXXX";

/* A guest that hands every used chain straight back, and kicks at least once a millisecond
 * (a device that went idle starts again). It runs at real-time priority where it may (root):
 * a vCPU has a CPU of its own, and on a loaded host an ordinary thread would lose it for long
 * enough that the device runs dry between refills. */
struct flood {
	const char *what;
	struct virtio_mmio *t;
	unsigned int q;
	struct fring r;
	pthread_t th;
	_Atomic bool stop;
	_Atomic uint64_t served;
};

static void *flood_run(void *arg)
{
	struct flood *fl = arg;
	struct sched_param sp = {.sched_priority = 1};
	uint64_t start = now_ms(), last_kick = 0;

	pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp); /* best effort */
	while (!atomic_load(&fl->stop) && now_ms() - start < FLOOD_MS) {
		uint32_t id, len;
		bool any = false;

		while (fring_used(&fl->r, &id, &len)) {
			fring_publish(&fl->r, (uint16_t)id);
			atomic_fetch_add(&fl->served, 1);
			any = true;
		}
		if (now_ms() != last_kick) {
			last_kick = now_ms();
			kick(fl->t, fl->q);
		}
		if (!any)
			usleep(100);
	}
	return NULL;
}

/* Every head of (fl)'s ring points to the one indirect table: 32768 empty descriptors, the
 * longest chain the walker accepts (each chain is costly to look at, and moves nothing). All
 * are made available. */
static void flood_chains(struct flood *fl)
{
	struct vring_desc *d = gpa(&f, TABLE);

	for (uint32_t i = 0; i < TABLE_LEN; i++)
		d[i] = (struct vring_desc){.addr = BUF,
					   .flags = i + 1 < TABLE_LEN ? VRING_DESC_F_NEXT : 0,
					   .next = (uint16_t)(i + 1)};
	for (uint16_t h = 0; h < QSIZE; h++) {
		fring_desc(&fl->r, h, TABLE, TABLE_LEN * sizeof(*d), VRING_DESC_F_INDIRECT, 0);
		fring_publish(&fl->r, h);
	}
}

static void activate(struct virtio_mmio *t, struct fring *r0, uint64_t b0, struct fring *r1,
		     uint64_t b1)
{
	CHECK(drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1) |
				      VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)) &
	      VIRTIO_STATUS_FEATURES_OK);
	fring_init(r0, &f, b0, QSIZE);
	drv_queue(t, 0, QSIZE, r0->desc_gpa, r0->avail_gpa, r0->used_gpa);
	if (r1) {
		fring_init(r1, &f, b1, QSIZE);
		drv_queue(t, 1, QSIZE, r1->desc_gpa, r1->avail_gpa, r1->used_gpa);
	}
	drv_ok(t);
	CHECK(!(reg_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET));
}

static void blk_activate_ring(void)
{
	struct virtio_mmio *t = &blk->mmio;

	CHECK(drv_features(t, VIRTIO_BIT(VIRTIO_F_VERSION_1)) & VIRTIO_STATUS_FEATURES_OK);
	fring_init(&blk_ring, &f, BLK_RING, BLK_QSIZE);
	drv_queue(t, 0, BLK_QSIZE, blk_ring.desc_gpa, blk_ring.avail_gpa, blk_ring.used_gpa);
	drv_ok(t);
}

/* Polls until the flood has been served more than (n) times, for up to (ms). */
static bool served_above(struct flood *fl, uint64_t n, unsigned int ms)
{
	uint64_t end = now_ms() + ms;

	do {
		if (atomic_load(&fl->served) > n)
			return true;
		usleep(1000);
	} while (now_ms() < end);
	return false;
}

/* A 4 KiB read of sector 8; true when it completed OK within (ms). */
static bool blk_read(unsigned int ms)
{
	struct virtio_blk_outhdr *h = gpa(&f, BLK_HDR);
	uint32_t id, len;

	*h = (struct virtio_blk_outhdr){.type = VIRTIO_BLK_T_IN, .sector = 8};
	*(uint8_t *)gpa(&f, BLK_STATUS) = 0xff;
	fring_desc(&blk_ring, 0, BLK_HDR, 16, VRING_DESC_F_NEXT, 1);
	fring_desc(&blk_ring, 1, BLK_DATA, 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	fring_desc(&blk_ring, 2, BLK_STATUS, 1, VRING_DESC_F_WRITE, 0);
	fring_publish(&blk_ring, 0);
	kick(&blk->mmio, 0);
	return fring_wait_used(&blk_ring, &id, &len, ms) && id == 0 && len == 4097 &&
	       *(uint8_t *)gpa(&f, BLK_STATUS) == VIRTIO_BLK_S_OK;
}

/* Waits for the device to hand back every chain (after the flood stopped). */
static bool drained(struct fring *r, unsigned int ms)
{
	uint64_t end = now_ms() + ms;
	uint32_t id, len;

	do {
		while (fring_used(r, &id, &len))
			;
		if (r->last_used == r->avail_idx)
			return true;
		usleep(200);
	} while (now_ms() < end);
	return false;
}

/* Waits up to (ms) for (n) interrupts in all; the last decision comes an iteration after the
 * last used entry. */
static bool irqs_at_least(struct virtio_mmio *t, uint64_t n, unsigned int ms)
{
	uint64_t end = now_ms() + ms, got = 0;

	do {
		got += irq_count(t);
		if (got >= n)
			return true;
		usleep(1000);
	} while (now_ms() < end);
	return false;
}

static void flood_test(struct flood *fl)
{
	uint64_t t0, served;

	fprintf(stderr, "flood: %s\n", fl->what);
	blk_activate_ring();
	atomic_store(&fl->stop, false);
	atomic_store(&fl->served, 0);
	irq_count(fl->t);
	CHECK_EQ(pthread_create(&fl->th, NULL, flood_run, fl), 0);
	CHECK(served_above(fl, 0, 5000));
	served = atomic_load(&fl->served);

	/* The disk on the same I/O thread still works. The bounds are far above what an idle
	 * machine needs (a few ms) and far below the 30 s a starved reset used to take: a loaded
	 * 2-core machine must not make this fail. */
	t0 = now_ms();
	CHECK(blk_read(5000));
	fprintf(stderr, "  read served in %llu ms\n", (unsigned long long)(now_ms() - t0));
	t0 = now_ms();
	reg_wr(&blk->mmio, VIRTIO_MMIO_STATUS, 0);
	fprintf(stderr, "  reset done in %llu ms\n", (unsigned long long)(now_ms() - t0));
	CHECK(now_ms() - t0 < 5000);
	CHECK_EQ(reg_rd(&blk->mmio, VIRTIO_MMIO_STATUS), 0);
	/* And the flood is still served. */
	CHECK(served_above(fl, served, 5000));
	atomic_store(&fl->stop, true);
	pthread_join(fl->th, NULL);
	CHECK(drained(&fl->r, 2000));
	CHECK(!(reg_rd(fl->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET));

	/* One kick with a whole ring: served over more than one loop iteration, all of it, and
	 * the driver (which asks for an interrupt for every used buffer) interrupted. How many
	 * interrupts is not fixed: the deferred notification of the first iteration and the
	 * resumption NOP can complete in the same iteration, which then raises one for both
	 * (it failed now and then on a loaded machine when it demanded two). */
	irq_count(fl->t);
	for (uint16_t h = 0; h < QSIZE; h++)
		fring_publish(&fl->r, h);
	kick(fl->t, fl->q);
	CHECK(drained(&fl->r, 2000));
	CHECK(irqs_at_least(fl->t, 1, 2000));
}

int main(void)
{
	struct flood rng_fl = {.what = "virtio-rng", .t = &rng.mmio, .q = 0};
	struct flood rx_fl = {.what = "console receive chains with nothing to move", .t = &con.mmio,
			      .q = VIRTIO_CONSOLE_RX_QUEUE};
	struct flood tx_fl = {.what = "console transmit chains with nothing to write",
			      .t = &con.mmio, .q = VIRTIO_CONSOLE_TX_QUEUE};
	struct flood net_fl = {.what = "virtio-net transmit frames refused",
			       .q = VIRTIO_NET_TX_QUEUE};
	static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 1};
	struct fring spare;
	char path[64];
	int in[2], out[2], sp[2], fd;

	if (!mkdtemp(dir))
		return T_EXIT_FAIL;
	if (loop_init(&loop, 256))
		return t_skip("io_uring unavailable");
	/* Every SQE the device submits names a registered file (or none, flagged anyway). */
	loop_require_fixed_files(&loop);
	CHECK_EQ(fake_ram_init(&f), 0);
	snprintf(path, sizeof(path), "%s/disk.img", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	close(fd);
	CHECK_EQ(blk_image_open(&img, path, false, false), 0);
	CHECK_EQ(pipe2(in, O_CLOEXEC), 0);
	CHECK_EQ(pipe2(out, O_CLOEXEC), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	/* Input waits for the console's receive buffers, which never take it. */
	CHECK_EQ(write(in[1], "x", 1), 1);

	CHECK_EQ(virtio_rng_init(&rng, "budget-rng", &f.mem, &loop), 0);
	CHECK_EQ(virtio_console_init(&con, "budget-con", in[0], out[1], NULL, NULL, &f.mem, &loop),
		 0);
	net = virtio_net_create("budget-net", sp[0], false, mac, &f.mem, &loop);
	blk = virtio_blk_create("budget-blk", &img, NULL, &f.mem, &loop);
	CHECK(net && blk);
	net_fl.t = &net->mmio;
	CHECK_EQ(loop_start(&loop), 0);

	activate(&rng.mmio, &rng_fl.r, RNG_RING, NULL, 0);
	flood_chains(&rng_fl);
	flood_test(&rng_fl);

	activate(&con.mmio, &rx_fl.r, CON_RX, &tx_fl.r, CON_TX);
	flood_chains(&rx_fl);
	flood_test(&rx_fl);
	CHECK(con.len == 1); /* the input still waits */

	activate(&con.mmio, &spare, CON_RX, &tx_fl.r, CON_TX);
	flood_chains(&tx_fl);
	flood_test(&tx_fl);

	activate(&net->mmio, &spare, NET_RX, &net_fl.r, NET_TX);
	flood_chains(&net_fl); /* no header */
	flood_test(&net_fl);

	loop_join(&loop);
	virtio_net_drain(net);
	virtio_blk_drain(blk);
	loop_fini(&loop);
	virtio_rng_fini(&rng);
	virtio_console_fini(&con);
	virtio_net_destroy(net);
	virtio_blk_destroy(blk);
	blk_image_close(&img);
	unlink(path);
	rmdir(dir);
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);
	close(sp[0]);
	close(sp[1]);
	fake_ram_fini(&f);
	return t_done();
}
