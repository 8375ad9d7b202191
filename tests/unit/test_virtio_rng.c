/* test_virtio_rng.c: virtio-rng over a real I/O loop: buffers are filled with random bytes
 * (two segments, indirect), a request is bounded to VIRTIO_RNG_MAX_BYTES and the rest of the
 * buffer stays untouched, and malformed chains (readable buffer, loop, address outside RAM)
 * set NEEDS_RESET without touching host memory; the device works again after a reset. A rate
 * limiter: a throttled queue hands out nothing more until tokens return, in order, a kick does
 * not get past it, each wait counts once, a reset drops the held chain and a snapshot's freeze
 * gives it back to the ring. */
#include "virtio/rng.h"

#include "core/loop.h"
#include "test.h"
#include "util/util.h"
#include "vdriver.h"

#define RING  0x10000ull
#define IND   0x20000ull
#define BUF   0x40000ull
#define BIG   0x100000ull /* 256 KiB for the bound test */
#define QSIZE 16

static struct fake_ram f;
static struct loop loop;
static struct virtio_rng rng;
static struct fring rq;

static void setup(uint64_t features)
{
	struct virtio_mmio *t = &rng.mmio;

	CHECK(drv_features(t, features) & VIRTIO_STATUS_FEATURES_OK);
	fring_init(&rq, &f, RING, QSIZE);
	drv_queue(t, 0, QSIZE, rq.desc_gpa, rq.avail_gpa, rq.used_gpa);
	drv_ok(t);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A 64-byte run of zeroes in random data has probability 2^-512. */
static bool looks_random(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 64 <= n; i += 64)
		if (all_zero(p + i, 64))
			return false;
	return true;
}

int main(void)
{
	struct virtio_mmio *t = &rng.mmio;
	struct vring_desc *ind;
	uint32_t id, len;

	if (loop_init(&loop, 64))
		return t_skip("io_uring unavailable");
	/* Every SQE the device submits names a registered file (or none, flagged anyway). */
	loop_require_fixed_files(&loop);
	CHECK_EQ(fake_ram_init(&f), 0);
	ind = gpa(&f, IND);
	CHECK_EQ(virtio_rng_init(&rng, "unit-rng", &f.mem, &loop), 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	CHECK_EQ(loop_start(&loop), 0);

	/* One buffer in two segments. */
	setup(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	irq_count(t);
	fring_desc(&rq, 0, BUF, 256, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	fring_desc(&rq, 1, BUF + 0x1000, 320, VRING_DESC_F_WRITE, 0);
	fring_publish(&rq, 0);
	kick(t, 0);
	CHECK(fring_wait_used(&rq, &id, &len, 3000));
	CHECK_EQ(id, 0);
	CHECK_EQ(len, 576);
	CHECK(looks_random(gpa(&f, BUF), 256));
	CHECK(looks_random(gpa(&f, BUF + 0x1000), 320));
	CHECK(all_zero(gpa(&f, BUF + 256), 64));
	CHECK(all_zero(gpa(&f, BUF + 0x1000 + 320), 64));
	CHECK(wait_irq(t, 3000));

	/* Two requests in a row give different bytes. */
	fring_desc(&rq, 2, BUF + 0x2000, 64, VRING_DESC_F_WRITE, 0);
	fring_desc(&rq, 3, BUF + 0x3000, 64, VRING_DESC_F_WRITE, 0);
	fring_publish(&rq, 2);
	fring_publish(&rq, 3);
	kick(t, 0);
	CHECK(fring_wait_used(&rq, &id, &len, 3000));
	CHECK(fring_wait_used(&rq, &id, &len, 3000));
	CHECK_EQ(id, 3);
	CHECK(memcmp(gpa(&f, BUF + 0x2000), gpa(&f, BUF + 0x3000), 64) != 0);

	/* The per-request bound: a 256 KiB buffer gets 64 KiB, the rest is untouched. */
	fring_desc(&rq, 4, BIG, 256 << 10, VRING_DESC_F_WRITE, 0);
	fring_publish(&rq, 4);
	kick(t, 0);
	CHECK(fring_wait_used(&rq, &id, &len, 3000));
	CHECK_EQ(id, 4);
	CHECK_EQ(len, VIRTIO_RNG_MAX_BYTES);
	CHECK(looks_random(gpa(&f, BIG), VIRTIO_RNG_MAX_BYTES));
	CHECK(all_zero(gpa(&f, BIG + VIRTIO_RNG_MAX_BYTES), (256 << 10) - VIRTIO_RNG_MAX_BYTES));

	/* A chain with no writable byte is returned with nothing written. */
	fring_desc(&rq, 5, BUF, 0, VRING_DESC_F_WRITE, 0);
	fring_publish(&rq, 5);
	kick(t, 0);
	CHECK(fring_wait_used(&rq, &id, &len, 3000));
	CHECK_EQ(id, 5);
	CHECK_EQ(len, 0);

	/* A device-readable buffer breaks the rules: NEEDS_RESET. */
	fring_desc(&rq, 6, BUF + 0x4000, 64, 0, 0);
	fring_publish(&rq, 6);
	kick(t, 0);
	CHECK(wait_status(t, VIRTIO_STATUS_NEEDS_RESET, 3000));
	CHECK(all_zero(gpa(&f, BUF + 0x4000), 64));

	/* After a reset, indirect descriptors work; then a looping chain. */
	setup(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
	      VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	CHECK(!(reg_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET));
	memset(gpa(&f, BUF + 0x5000), 0, 0x1000);
	ind[0] = (struct vring_desc){.addr = BUF + 0x5000, .len = 100,
				     .flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, .next = 1};
	ind[1] = (struct vring_desc){.addr = BUF + 0x5800, .len = 100, .flags = VRING_DESC_F_WRITE};
	fring_desc(&rq, 0, IND, 2 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	fring_publish(&rq, 0);
	kick(t, 0);
	CHECK(fring_wait_used(&rq, &id, &len, 3000));
	CHECK_EQ(id, 0);
	CHECK_EQ(len, 200);
	CHECK(looks_random(gpa(&f, BUF + 0x5000), 64));
	CHECK(looks_random(gpa(&f, BUF + 0x5800), 64));

	fring_desc(&rq, 1, BUF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	fring_desc(&rq, 2, BUF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	fring_publish(&rq, 1);
	kick(t, 0);
	CHECK(wait_status(t, VIRTIO_STATUS_NEEDS_RESET, 3000));

	/* A buffer outside guest RAM: NEEDS_RESET, no host write. */
	setup(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	fring_desc(&rq, 0, FAKE_RAM_SIZE - 16, 64, VRING_DESC_F_WRITE, 0);
	fring_publish(&rq, 0);
	kick(t, 0);
	CHECK(wait_status(t, VIRTIO_STATUS_NEEDS_RESET, 3000));
	CHECK(!fring_used(&rq, &id, &len));

	/* 64 bytes per second: the first request goes, the second waits for a second. */
	setup(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	rate_limiter_update(&rng.rl, &(struct rl_config){.bw = {.size = 64, .refill_ms = 1000}});
	memset(gpa(&f, BUF), 0, 0x4000);
	for (uint16_t i = 0; i < 3; i++) {
		fring_desc(&rq, i, BUF + i * 0x1000u, 64, VRING_DESC_F_WRITE, 0);
		fring_publish(&rq, i);
	}
	kick(t, 0);
	CHECK(fring_wait_used(&rq, &id, &len, 3000));
	CHECK_EQ(id, 0);
	usleep(200000);
	kick(t, 0);
	usleep(50000);
	CHECK(!fring_used(&rq, &id, &len));
	CHECK(fring_wait_used(&rq, &id, &len, 3000));
	CHECK_EQ(id, 1);
	CHECK_EQ(len, 64);
	CHECK(looks_random(gpa(&f, BUF + 0x1000), 64));
	usleep(50000);
	CHECK_EQ(atomic_load(&rng.rl.throttled), 2); /* the third waits: its own event */
	/* A reset drops the chain the limiter holds; the device works after it. */
	reg_wr(t, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(reg_rd(t, VIRTIO_MMIO_STATUS), 0);
	CHECK(!rng.held);
	rate_limiter_update(&rng.rl, &(struct rl_config){0});
	setup(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	fring_desc(&rq, 0, BUF, 64, VRING_DESC_F_WRITE, 0);
	fring_publish(&rq, 0);
	kick(t, 0);
	CHECK(fring_wait_used(&rq, &id, &len, 3000));
	CHECK_EQ(len, 64);
	/* A snapshot's freeze gives the held chain back to the ring (the saved state has not
	 * taken it); after the thaw, with the limit lifted, it is served. */
	rate_limiter_update(&rng.rl, &(struct rl_config){.ops = {.size = 1, .refill_ms = 5000}});
	fring_desc(&rq, 1, BUF + 0x1000, 64, VRING_DESC_F_WRITE, 0);
	fring_desc(&rq, 2, BUF + 0x2000, 64, VRING_DESC_F_WRITE, 0);
	fring_publish(&rq, 1);
	fring_publish(&rq, 2);
	kick(t, 0);
	CHECK(fring_wait_used(&rq, &id, &len, 3000));
	CHECK_EQ(id, 1);
	usleep(50000);
	CHECK(!fring_used(&rq, &id, &len));
	/* (Device fields are read only after a hand-off to the I/O thread: a reset, a freeze.) */
	CHECK_EQ(virtio_mmio_freeze(t), 0);
	CHECK(!rng.held);
	{
		static struct virtio_mmio_state st;

		virtio_mmio_save(t, &st);
		CHECK_EQ(st.q[0].last_avail, 2);
		CHECK_EQ(st.q[0].used_idx, 2);
	}
	rate_limiter_update(&rng.rl, &(struct rl_config){0});
	virtio_mmio_thaw(t);
	CHECK(fring_wait_used(&rq, &id, &len, 3000));
	CHECK_EQ(id, 2);
	CHECK_EQ(len, 64);

	loop_join(&loop);
	virtio_rng_drain(&rng);
	loop_fini(&loop);
	virtio_rng_fini(&rng);
	fake_ram_fini(&f);
	return t_done();
}
