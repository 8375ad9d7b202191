/* fuzz_vq.c: libFuzzer target for the split virtqueue walker (virtio/vq.c) over guest memory
 * built from the input: descriptor table, avail and used rings, indirect tables, chains that
 * loop, nest or point outside RAM or across regions, all of it rewritten between pops as a
 * guest on another vCPU would. Whatever the bytes, every pop must return 1, 0 or -EINVAL, and
 * every chain it hands out must be bounded (at most VQ_IOV_MAX segments, totals equal to the
 * sum of the segments) with every segment wholly inside one guest RAM region; the target
 * aborts otherwise, and ASan catches any access outside the regions, which are heap buffers
 * of exactly their size.
 *
 * Guest-physical layout: region A [0, 64 KiB), region B [64 KiB, 68 KiB) right after it (a
 * separate buffer: a segment across 64 KiB straddles two regions), region C one page at 4 GiB.
 *
 * Input layout: a 16-byte header
 *   [0]      queue size: 1 << (b & 15), or with bit 7 set the raw 16-bit value of [0..1] & 0x7fff
 *   [2]      bit 0 VIRTIO_F_EVENT_IDX, bit 1 VIRTIO_F_INDIRECT_DESC, bit 2 place rings in C
 *   [3..5]   descriptor table gpa (24 bits, little-endian), [6..8] avail ring, [9..11] used ring
 *   [12..14] bytes of RAM image that follow (copied over A, then B, then C)
 *   [15]     unused
 * then the RAM image, then operations, one byte each plus arguments (see run_ops()). When the
 * operations run out the ring is drained: pops until it is empty or a bound is reached. */
#include <errno.h>
#include <sanitizer/common_interface_defs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/guest_mem.h"
#include "virtio/vq.h"

#define A_SIZE 0x10000u
#define B_BASE 0x10000ull
#define B_SIZE 0x1000u
#define C_BASE 0x100000000ull
#define C_SIZE 0x1000u
#define HDR    16

static uint8_t *ram_a, *ram_b, *ram_c;
static struct guest_mem mem;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Kept for the whole run: allocated once, never freed (not a leak LSan reports, since
	 * the pointers stay reachable). */
	ram_a = malloc(A_SIZE);
	ram_b = malloc(B_SIZE);
	ram_c = malloc(C_SIZE);
	if (!ram_a || !ram_b || !ram_c)
		abort();
	guest_mem_init(&mem);
	if (guest_mem_add(&mem, 0, A_SIZE, ram_a) || guest_mem_add(&mem, B_BASE, B_SIZE, ram_b) ||
	    guest_mem_add(&mem, C_BASE, C_SIZE, ram_c))
		abort();
	return 0;
}

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_vq: invariant broken: %s\n", why);
	/* Also where libFuzzer reports, which -close_fd_mask=2 leaves open. */
	__sanitizer_report_error_summary(why);
	abort();
}

static bool inside(const uint8_t *p, size_t len, const uint8_t *base, size_t size)
{
	return p >= base && p < base + size && len <= (size_t)(base + size - p);
}

/* The contract of a popped chain; touches the first and last byte of every segment (ASan
 * checks them) and writes into the writable ones as a device would. */
static void check_chain(const struct vq *vq, const struct vq_chain *c)
{
	uint64_t out = 0, in = 0;

	if (c->head >= vq->size)
		fail("head out of range");
	if (c->nr_out + c->nr_in > VQ_IOV_MAX)
		fail("more segments than VQ_IOV_MAX");
	for (unsigned int i = 0; i < (unsigned int)(c->nr_out + c->nr_in); i++) {
		uint8_t *p = c->iov[i].iov_base;
		size_t l = c->iov[i].iov_len;
		volatile uint8_t sink;

		if (l == 0)
			fail("zero-length segment");
		if (!inside(p, l, ram_a, A_SIZE) && !inside(p, l, ram_b, B_SIZE) &&
		    !inside(p, l, ram_c, C_SIZE))
			fail("segment outside one guest RAM region");
		if (i < c->nr_out) {
			out += l;
			sink = p[0];
			sink = p[l - 1];
			(void)sink;
		} else {
			in += l;
			p[0] ^= 0x5a;
			p[l - 1] ^= 0xa5;
		}
	}
	if (out != c->out_len || in != c->in_len)
		fail("byte totals disagree with the segments");
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

/* The image space: A, then B, then C, back to back. */
#define IMG_SIZE (A_SIZE + B_SIZE + C_SIZE)

static uint8_t *ram_at(uint32_t off)
{
	off %= IMG_SIZE;
	if (off < A_SIZE)
		return ram_a + off;
	off -= A_SIZE;
	return off < B_SIZE ? ram_b + off : ram_c + (off - B_SIZE);
}

static void run_ops(struct vq *vq, struct cursor *in)
{
	static struct vq_chain c;
	static uint8_t buf[4096];
	bool have = false;
	unsigned int pops = 0, bound = 3u * vq->size + 16;
	uint16_t pushed = 0;

	while (in->left) {
		uint8_t op = (uint8_t)take(in, 1);
		uint16_t head;
		int ret;

		switch (op % 9) {
		case 0: /* pop a chain and complete it */
		case 1:
			ret = vq_pop(vq, &c);
			if (ret != 1 && ret != 0 && ret != -EINVAL)
				fail("vq_pop returned something else than 1, 0, -EINVAL");
			have = ret == 1;
			if (have) {
				check_chain(vq, &c);
				vq_push(vq, c.head, c.in_len);
				pushed++;
			}
			break;
		case 2: { /* the guest rewrites 1, 2, 4 or 8 bytes of its RAM */
			uint32_t off = (uint32_t)take(in, 3);
			unsigned int n = 1u << (op >> 6);
			uint64_t v = take(in, n);

			for (unsigned int i = 0; i < n; i++)
				*ram_at(off + i) = (uint8_t)(v >> (8 * i));
			break;
		}
		case 3: /* two-step pop, as virtio-blk does */
			ret = vq_pop_head(vq, &head);
			if (ret == 1) {
				if (head >= vq->size)
					fail("vq_pop_head gave a head out of range");
				have = vq_walk(vq, head, &c) == 0;
				if (have) {
					check_chain(vq, &c);
					vq_fill(vq, head, (uint32_t)take(in, 2));
					pushed++;
				}
			}
			break;
		case 4:
			vq_flush(vq);
			break;
		case 5:
			(void)vq_should_notify(vq);
			break;
		case 6: /* copies between the last chain and a flat buffer */
			if (have) {
				size_t skip = (size_t)take(in, 2), len = (size_t)take(in, 2) % sizeof(buf);
				size_t n;

				if (op & 0x80)
					n = iov_to_buf(c.iov, c.nr_out, skip, buf, len);
				else
					n = buf_to_iov(c.iov + c.nr_out, c.nr_in, skip, buf, len);
				if (n > len)
					fail("iov copy longer than asked");
			}
			break;
		case 7: /* drop a prefix of the writable segments */
			if (have) {
				unsigned int n = c.nr_in;
				size_t len = (size_t)take(in, 3), done;

				done = iov_consume(c.iov + c.nr_out, &n, len);
				if (done > len || n > c.nr_in)
					fail("iov_consume went past its input");
				c.nr_in = (uint16_t)n;
			}
			break;
		case 8: /* the same head walked again, as a device that retries would */
			if (have && vq_walk(vq, c.head, &c) == 0)
				check_chain(vq, &c);
			break;
		}
		if (++pops > 4096)
			break;
	}
	/* Drain: a ring can hold at most size chains, and every pop consumes a head. */
	for (unsigned int i = 0; i < bound; i++) {
		int ret = vq_pop(vq, &c);

		if (ret == 0)
			break;
		if (ret == 1) {
			check_chain(vq, &c);
			vq_push(vq, c.head, c.in_len);
			pushed++;
		}
		if (ret != 1 && ret != -EINVAL)
			fail("vq_pop returned something else than 1, 0, -EINVAL");
	}
	vq_flush(vq);
	(void)vq_should_notify(vq);
	if (vq->used_idx != pushed)
		fail("used index does not count the used entries");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cursor in = {data, size};
	struct vq vq;
	uint64_t features = 0, base = 0;
	uint32_t desc, avail, used, img;
	unsigned int qsize;

	if (size < HDR)
		return 0;
	qsize = data[0] & 0x80 ? (unsigned int)((data[0] | data[1] << 8) & 0x7fff)
			       : 1u << (data[0] & 15);
	if (data[2] & 1)
		features |= VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	if (data[2] & 2)
		features |= VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	if (data[2] & 4)
		base = C_BASE;
	desc = data[3] | data[4] << 8 | data[5] << 16;
	avail = data[6] | data[7] << 8 | data[8] << 16;
	used = data[9] | data[10] << 8 | data[11] << 16;
	img = data[12] | data[13] << 8 | data[14] << 16;
	in.p += HDR;
	in.left -= HDR;

	memset(ram_a, 0, A_SIZE);
	memset(ram_b, 0, B_SIZE);
	memset(ram_c, 0, C_SIZE);
	for (uint32_t i = 0; i < img && in.left; i++)
		*ram_at(i) = (uint8_t)take(&in, 1);

	if (vq_init(&vq, &mem, (uint16_t)qsize, base + desc, base + avail, base + used, features))
		return 0;
	run_ops(&vq, &in);
	return 0;
}
