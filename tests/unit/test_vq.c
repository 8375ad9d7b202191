/* test_vq.c: the split virtqueue against fake guest memory: well-formed chains (direct,
 * indirect, zero-length segments, index wrap-around), used ring and notification suppression
 * (flags and EVENT_IDX), used entries filled and then published together, and every malformed
 * ring the guest can build: avail index jumps, heads and next out of range, loops, buffers
 * outside RAM or across regions, 32-bit length overflow, order violations, too many segments,
 * and bad indirect tables. */
#include "virtio/vq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "util/util.h"

/* Guest-physical layout: region A 0..1 MiB, region B 1..2 MiB (a separate host buffer, so a
 * buffer across 1 MiB straddles two regions), region C 256..384 MiB (never touched). */
#define A_SIZE	 (1u << 20)
#define B_BASE	 0x100000ull
#define C_BASE	 0x10000000ull
#define C_SIZE	 (128u << 20)
#define DESC	 0x1000ull
#define AVAIL	 0x2000ull
#define USED	 0x3000ull
#define ITABLE	 0x5000ull
#define ITABLE2	 0x6000ull
#define DATA	 0x10000ull
#define QSIZE	 8

static struct guest_mem mem;
static uint8_t *ram_a, *ram_b;
static struct vring_desc *desc;
static struct vring_avail *avail;
static struct vring_used *used;
static uint16_t avail_idx;

static void *hva(uint64_t g)
{
	return g >= B_BASE ? ram_b + (g - B_BASE) : ram_a + g;
}

static void set_desc(struct vring_desc *d, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	d[i] = (struct vring_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

static void publish(uint16_t head)
{
	avail->ring[avail_idx % QSIZE] = head;
	avail->idx = ++avail_idx;
}

/* A fresh queue with (features); the rings are zeroed. */
static void fresh(struct vq *vq, uint64_t features)
{
	memset(hva(DESC), 0, 0x3000);
	avail_idx = 0;
	CHECK_EQ(vq_init(vq, &mem, QSIZE, DESC, AVAIL, USED, features), 0);
}

/* Publishes (head) and expects vq_pop() to fail with an error containing (why). */
static void expect_bad(struct vq *vq, uint16_t head, const char *why)
{
	struct vq_chain c;
	uint16_t before = vq->last_avail;
	int ret;

	publish(head);
	vq->error = NULL;
	ret = vq_pop(vq, &c);
	CHECK_EQ(ret, -EINVAL);
	CHECK(vq->error && strstr(vq->error, why));
	if (!vq->error || !strstr(vq->error, why))
		fprintf(stderr, "  wanted '%s', got '%s'\n", why, vq->error ? vq->error : "(none)");
	CHECK_EQ(vq->last_avail, (uint16_t)(before + 1)); /* consumed */
}

static void test_init(void)
{
	struct vq vq;

	CHECK_EQ(vq_init(&vq, &mem, 6, DESC, AVAIL, USED, 0), -EINVAL);
	CHECK(strstr(vq.error, "power of two"));
	CHECK_EQ(vq_init(&vq, &mem, 0, DESC, AVAIL, USED, 0), -EINVAL);
	CHECK_EQ(vq_init(&vq, &mem, QSIZE, DESC + 8, AVAIL, USED, 0), -EINVAL);
	CHECK(strstr(vq.error, "descriptor table"));
	CHECK_EQ(vq_init(&vq, &mem, QSIZE, DESC, AVAIL + 1, USED, 0), -EINVAL);
	CHECK(strstr(vq.error, "available ring"));
	CHECK_EQ(vq_init(&vq, &mem, QSIZE, DESC, AVAIL, USED + 2, 0), -EINVAL);
	CHECK(strstr(vq.error, "used ring"));
	/* The used ring's last bytes (avail_event) beyond the end of RAM. */
	CHECK_EQ(vq_init(&vq, &mem, QSIZE, DESC, AVAIL, 2 * A_SIZE - 64, 0), -EINVAL);
	/* A descriptor table across the A/B boundary. */
	CHECK_EQ(vq_init(&vq, &mem, QSIZE, B_BASE - 64, AVAIL, USED, 0), -EINVAL);
	CHECK_EQ(vq_init(&vq, &mem, 32768, DESC, AVAIL, USED, 0), 0); /* the largest queue */
	CHECK_EQ(vq_init(&vq, &mem, QSIZE, DESC, AVAIL, USED, 0), 0);
	CHECK_EQ(vq.last_avail, 0);
	CHECK_EQ(vq.used_idx, 0);
}

static void test_simple(void)
{
	struct vq vq;
	struct vq_chain c;
	uint16_t head;

	fresh(&vq, 0);
	CHECK_EQ(vq_pop(&vq, &c), 0); /* empty */
	set_desc(desc, 2, DATA, 16, VRING_DESC_F_NEXT, 5);
	set_desc(desc, 5, DATA + 0x100, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(desc, 1, DATA + 0x400, 0, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	set_desc(desc, 3, DATA + 0x300, 1, VRING_DESC_F_WRITE, 0);
	publish(2);
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(c.head, 2);
	CHECK_EQ(c.nr_out, 1);
	CHECK_EQ(c.nr_in, 2); /* the zero-length descriptor takes no slot */
	CHECK_EQ(c.out_len, 16);
	CHECK_EQ(c.in_len, 513);
	CHECK(c.iov[0].iov_base == hva(DATA));
	CHECK(c.iov[1].iov_base == hva(DATA + 0x100));
	CHECK(c.iov[2].iov_base == hva(DATA + 0x300));
	CHECK_EQ(vq_pop(&vq, &c), 0);

	/* Used ring. */
	vq_push(&vq, 2, 513);
	CHECK_EQ(used->idx, 1);
	CHECK_EQ(used->ring[0].id, 2);
	CHECK_EQ(used->ring[0].len, 513);

	/* Two-step pop as virtio-blk does it. */
	set_desc(desc, 4, DATA, 1, VRING_DESC_F_WRITE, 0);
	publish(4);
	CHECK_EQ(vq_pop_head(&vq, &head), 1);
	CHECK_EQ(head, 4);
	CHECK_EQ(vq_walk(&vq, head, &c), 0);
	CHECK_EQ(c.nr_in, 1);

	/* A descriptor on the last bytes of region B and one of region C are fine. */
	set_desc(desc, 0, B_BASE + A_SIZE - 16, 16, VRING_DESC_F_NEXT, 1);
	set_desc(desc, 1, C_BASE, C_SIZE, VRING_DESC_F_WRITE, 0);
	publish(0);
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(c.in_len, C_SIZE);
}

static void test_wrap(void)
{
	struct vq vq;
	struct vq_chain c;

	/* Free-running 16-bit indices across 65535 -> 0. */
	fresh(&vq, 0);
	for (uint16_t i = 0; i < QSIZE; i++)
		set_desc(desc, i, DATA, 1, VRING_DESC_F_WRITE, 0);
	vq.last_avail = 0xfffe;
	vq.used_idx = 0xffff;
	avail_idx = 0xfffe;
	publish(6);
	publish(7);
	publish(0);
	CHECK_EQ(avail->idx, 1);
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(c.head, 6);
	vq_push(&vq, 6, 0);
	CHECK_EQ(used->idx, 0);
	CHECK_EQ(used->ring[7].id, 6);
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(c.head, 7);
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(c.head, 0);
	CHECK_EQ(vq_pop(&vq, &c), 0);
}

static void test_notify(void)
{
	struct vq vq;
	uint16_t *used_event = &avail->ring[QSIZE];
	uint16_t *avail_event = (uint16_t *)((uint8_t *)used + 4 + 8 * QSIZE);
	struct vq_chain c;

	/* Without EVENT_IDX: VRING_AVAIL_F_NO_INTERRUPT decides. */
	fresh(&vq, 0);
	vq_push(&vq, 0, 0);
	CHECK(vq_should_notify(&vq));
	avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vq_push(&vq, 0, 0);
	CHECK(!vq_should_notify(&vq));

	/* With EVENT_IDX: notify when used_event lies in [old, new). */
	fresh(&vq, VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	avail->flags = VRING_AVAIL_F_NO_INTERRUPT; /* ignored now */
	*used_event = 0;
	vq_push(&vq, 0, 0); /* used 1 */
	CHECK(vq_should_notify(&vq));
	vq_push(&vq, 0, 0); /* used 2, used_event 0 not in [1, 2) */
	CHECK(!vq_should_notify(&vq));
	*used_event = 2;
	vq_push(&vq, 0, 0); /* used 3: 2 in [2, 3) */
	CHECK(vq_should_notify(&vq));
	*used_event = 5;
	vq_push(&vq, 0, 0);
	vq_push(&vq, 0, 0); /* used 5: 5 not in [3, 5) */
	CHECK(!vq_should_notify(&vq));
	vq_push(&vq, 0, 0); /* used 6: 5 in [5, 6) */
	CHECK(vq_should_notify(&vq));
	CHECK(!vq_should_notify(&vq)); /* nothing new */

	/* The device publishes avail_event as it consumes. */
	set_desc(desc, 0, DATA, 1, VRING_DESC_F_WRITE, 0);
	publish(0);
	publish(0);
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(*avail_event, 0);
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(*avail_event, 1);
	CHECK_EQ(vq_pop(&vq, &c), 0);
	CHECK_EQ(*avail_event, 2);
}

/* vq_fill() writes used entries the driver cannot see yet; vq_flush() publishes them all with
 * one used->idx store (a merged virtio-net frame, section 5.1.6.4). */
static void test_fill(void)
{
	struct vq vq;

	fresh(&vq, 0);
	vq_push(&vq, 3, 30);
	vq_fill(&vq, 1, 10);
	vq_fill(&vq, 2, 20);
	CHECK_EQ(used->idx, 1);
	CHECK_EQ(used->ring[1].id, 1);
	CHECK_EQ(used->ring[2].id, 2);
	CHECK_EQ(used->ring[2].len, 20);
	vq_flush(&vq);
	CHECK_EQ(used->idx, 3);
	CHECK_EQ(vq.used_idx, 3);
	vq_flush(&vq); /* nothing filled: no change */
	CHECK_EQ(used->idx, 3);
	/* A push after fills publishes them too, in order. */
	vq_fill(&vq, 4, 40);
	vq_push(&vq, 5, 50);
	CHECK_EQ(used->idx, 5);
	CHECK_EQ(used->ring[3].id, 4);
	CHECK_EQ(used->ring[4].id, 5);
	/* Across the 16-bit wrap. */
	vq.used_idx = 0xffff;
	used->idx = 0xffff;
	vq_fill(&vq, 6, 0);
	vq_fill(&vq, 7, 0);
	CHECK_EQ(used->idx, 0xffff);
	vq_flush(&vq);
	CHECK_EQ(used->idx, 1);
	CHECK_EQ(used->ring[7].id, 6);
	CHECK_EQ(used->ring[0].id, 7);
}

static void test_indirect(void)
{
	struct vring_desc *t = hva(ITABLE), *t2 = hva(ITABLE2);
	struct vq vq;
	struct vq_chain c;

	fresh(&vq, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	set_desc(t, 0, DATA, 16, VRING_DESC_F_NEXT, 2);
	set_desc(t, 2, DATA + 0x100, 100, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, DATA + 0x200, 1, VRING_DESC_F_WRITE, 0);
	set_desc(desc, 3, ITABLE, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	publish(3);
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(c.head, 3);
	CHECK_EQ(c.nr_out, 1);
	CHECK_EQ(c.nr_in, 2);
	CHECK_EQ(c.in_len, 101);
	CHECK(c.iov[2].iov_base == hva(DATA + 0x200));

	/* A direct descriptor, then the indirect table as the chain's last one. */
	set_desc(desc, 0, DATA + 0x300, 16, VRING_DESC_F_NEXT, 3);
	publish(0);
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(c.nr_out, 2);
	CHECK_EQ(c.out_len, 32);

	/* Malformed indirect tables. */
	set_desc(desc, 4, ITABLE, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(desc, 4, ITABLE, 0, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&vq, 4, "indirect table length");
	set_desc(desc, 4, ITABLE, 24, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&vq, 4, "indirect table length");
	set_desc(desc, 4, ITABLE + 4, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&vq, 4, "misaligned");
	set_desc(desc, 4, 0x40000000, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&vq, 4, "indirect table outside RAM");
	set_desc(desc, 4, B_BASE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&vq, 4, "indirect table outside RAM"); /* across regions */
	set_desc(desc, 4, ITABLE, 0x80000000u, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&vq, 4, "larger than the largest queue");
	set_desc(desc, 4, ITABLE, 32, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 5);
	expect_bad(&vq, 4, "indirect descriptor with NEXT");
	/* Nested. */
	set_desc(t2, 0, DATA, 1, VRING_DESC_F_WRITE, 0);
	set_desc(t, 0, ITABLE2, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(desc, 4, ITABLE, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&vq, 4, "nested indirect");
	/* A loop inside the table, and next beyond its end. */
	set_desc(t, 0, DATA, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, DATA, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	set_desc(desc, 4, ITABLE, 2 * 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&vq, 4, "indirect chain longer than its table");
	set_desc(t, 1, DATA, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	expect_bad(&vq, 4, "next index out of range");
	/* Readable after writable across the direct/indirect boundary. */
	set_desc(t, 0, DATA, 1, 0, 0);
	set_desc(desc, 5, DATA, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 4);
	set_desc(desc, 4, ITABLE, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&vq, 5, "readable descriptor after a writable one");
	/* More segments than VQ_IOV_MAX in one table (fits the table, not mvm). */
	for (uint16_t i = 0; i < VQ_IOV_MAX + 6; i++)
		set_desc(t, i, DATA + i, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, i + 1);
	t[VQ_IOV_MAX + 5].flags = VRING_DESC_F_WRITE;
	set_desc(desc, 4, ITABLE, (VQ_IOV_MAX + 6) * 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&vq, 4, "more buffer segments");
	/* Exactly VQ_IOV_MAX segments is fine. */
	t[VQ_IOV_MAX - 1].flags = VRING_DESC_F_WRITE;
	set_desc(desc, 4, ITABLE, VQ_IOV_MAX * 16, VRING_DESC_F_INDIRECT, 0);
	publish(4);
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(c.nr_in, VQ_IOV_MAX);

	/* Without the feature, an indirect descriptor is an error. */
	fresh(&vq, 0);
	set_desc(desc, 0, ITABLE, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(&vq, 0, "without VIRTIO_F_INDIRECT_DESC");
}

static void test_malformed(void)
{
	struct vq vq;
	struct vq_chain c;

	fresh(&vq, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	/* The avail index moving by more than the queue size. */
	avail->idx = QSIZE + 1;
	CHECK_EQ(vq_pop(&vq, &c), -EINVAL);
	CHECK(strstr(vq.error, "available index"));
	CHECK_EQ(vq.last_avail, 0); /* nothing consumed: the driver must reset */

	fresh(&vq, 0);
	set_desc(desc, 0, DATA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(desc, 1, DATA + 0x100, 1, VRING_DESC_F_WRITE, 0);
	expect_bad(&vq, QSIZE, "head index out of range");
	expect_bad(&vq, 0xffff, "head index out of range");
	/* next out of range. */
	set_desc(desc, 1, DATA + 0x100, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, QSIZE);
	expect_bad(&vq, 0, "next index out of range");
	/* A loop, and a self-loop. */
	set_desc(desc, 1, DATA + 0x100, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	set_desc(desc, 2, DATA + 0x100, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	expect_bad(&vq, 0, "chain longer than the queue");
	set_desc(desc, 3, DATA, 0, VRING_DESC_F_NEXT, 3);
	expect_bad(&vq, 3, "chain longer than the queue");
	/* Buffers outside RAM, at its very end, across regions, with wrapping addresses. */
	set_desc(desc, 1, 0x40000000, 512, VRING_DESC_F_WRITE, 0);
	expect_bad(&vq, 0, "outside RAM");
	set_desc(desc, 1, 2 * A_SIZE - 256, 512, VRING_DESC_F_WRITE, 0);
	expect_bad(&vq, 0, "outside RAM");
	set_desc(desc, 1, B_BASE - 256, 512, VRING_DESC_F_WRITE, 0);
	expect_bad(&vq, 0, "region boundary");
	set_desc(desc, 1, UINT64_MAX - 16, 512, VRING_DESC_F_WRITE, 0);
	expect_bad(&vq, 0, "outside RAM");
	set_desc(desc, 1, DATA, 0xffffffffu, VRING_DESC_F_WRITE, 0);
	expect_bad(&vq, 0, "outside RAM");
	/* Lengths that overflow 32 bits, each in RAM (region C is 128 MiB). */
	fresh(&vq, 0);
	for (uint16_t i = 0; i < QSIZE; i++)
		set_desc(desc, i, C_BASE, C_SIZE, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, i + 1);
	desc[QSIZE - 1].flags = VRING_DESC_F_WRITE;
	publish(0); /* 8 x 128 MiB = 1 GiB: fine */
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(c.in_len, 8u * C_SIZE);
	{
		struct vring_desc *t = hva(ITABLE);

		fresh(&vq, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
		for (uint16_t i = 0; i < 33; i++)
			set_desc(t, i, C_BASE, C_SIZE, VRING_DESC_F_NEXT, i + 1);
		t[32].flags = 0;
		set_desc(desc, 0, ITABLE, 33 * 16, VRING_DESC_F_INDIRECT, 0);
		expect_bad(&vq, 0, "overflows 32 bits");
	}
	/* Device-readable after device-writable. */
	fresh(&vq, 0);
	set_desc(desc, 0, DATA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(desc, 1, DATA + 0x100, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	set_desc(desc, 2, DATA + 0x200, 8, VRING_DESC_F_NEXT, 3);
	set_desc(desc, 3, DATA + 0x300, 1, VRING_DESC_F_WRITE, 0);
	expect_bad(&vq, 0, "readable descriptor after a writable one");
	/* Zero-length readable after writable is still out of order. */
	set_desc(desc, 2, DATA + 0x200, 0, VRING_DESC_F_NEXT, 3);
	expect_bad(&vq, 0, "readable descriptor after a writable one");

	/* After all that, a good chain still pops. */
	set_desc(desc, 2, DATA + 0x200, 8, VRING_DESC_F_WRITE, 0);
	publish(0);
	CHECK_EQ(vq_pop(&vq, &c), 1);
	CHECK_EQ(c.nr_out, 1);
	CHECK_EQ(c.nr_in, 2);
}

static void test_iov(void)
{
	uint8_t a[4], b[3], cbuf[5], out[16];
	struct iovec iov[3] = {{a, sizeof(a)}, {b, sizeof(b)}, {cbuf, sizeof(cbuf)}};
	unsigned int n = 3;

	for (unsigned int i = 0; i < 12; i++)
		out[i] = (uint8_t)i;
	CHECK_EQ(buf_to_iov(iov, 3, 0, out, 12), 12);
	CHECK_EQ(a[0], 0);
	CHECK_EQ(b[0], 4);
	CHECK_EQ(cbuf[4], 11);
	memset(out, 0xff, sizeof(out));
	CHECK_EQ(iov_to_buf(iov, 3, 5, out, 16), 7); /* skip across the first segment */
	CHECK_EQ(out[0], 5);
	CHECK_EQ(out[6], 11);
	CHECK_EQ(buf_to_iov(iov, 3, 10, out, 16), 2);
	CHECK_EQ(iov_to_buf(iov, 3, 12, out, 16), 0);

	CHECK_EQ(iov_consume(iov, &n, 5), 5);
	CHECK_EQ(n, 2);
	CHECK(iov[0].iov_base == b + 1);
	CHECK_EQ(iov[0].iov_len, 2);
	CHECK_EQ(iov_consume(iov, &n, 2), 2);
	CHECK_EQ(n, 1);
	CHECK(iov[0].iov_base == cbuf);
	CHECK_EQ(iov_consume(iov, &n, 100), 5);
	CHECK_EQ(n, 0);
}

int main(void)
{
	guest_mem_init(&mem);
	ram_a = aligned_alloc(4096, A_SIZE);
	ram_b = aligned_alloc(4096, A_SIZE);
	if (!ram_a || !ram_b)
		return T_EXIT_FAIL;
	memset(ram_a, 0, A_SIZE);
	memset(ram_b, 0, A_SIZE);
	CHECK_EQ(guest_mem_add(&mem, 0, A_SIZE, ram_a), 0);
	CHECK_EQ(guest_mem_add(&mem, B_BASE, A_SIZE, ram_b), 0);
	CHECK_EQ(guest_mem_alloc(&mem, C_BASE, C_SIZE), 0); /* MAP_NORESERVE: never touched */
	desc = hva(DESC);
	avail = hva(AVAIL);
	used = hva(USED);

	test_init();
	test_simple();
	test_wrap();
	test_notify();
	test_fill();
	test_indirect();
	test_malformed();
	test_iov();

	guest_mem_fini(&mem);
	free(ram_a);
	free(ram_b);
	return t_done();
}
