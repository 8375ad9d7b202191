/* virtio_blk.c: a minimal virtio-blk driver over virtio-mmio v2 that checks a device the way a
 * hostile guest would. For each disk: probe, negotiate, capacity/blk_size/seg_max, GET_ID,
 * write a pattern in two segments, flush, read it back in three segments and through an
 * indirect table, requests past the end, an unknown type, a partial sector, write-zeroes and
 * discard, writes to a read-only disk, and interrupt delivery with the ISR read and acked.
 * Then, on disk 0, chains no driver may build (a descriptor loop, heads and next indices out
 * of range, buffers outside RAM or straddling its end, a 32-bit length overflow, a chain longer
 * than any queue, nested and malformed indirect tables, writable-then-readable order, the
 * status byte in a read-only descriptor, the avail index jumping, a sector past the end):
 * each must complete with an error status or set DEVICE_NEEDS_RESET, and after a reset the
 * device must work again.
 *
 * Command line (all optional):
 *   disks=N       how many virtio-blk devices to test (default 1)
 *   capN=SECTORS  expected capacity of disk N      idN=STRING  expected GET_ID of disk N
 *   roN=1         disk N is read-only: writes must fail with IOERR
 *   hostile=0     skip the hostile chains          bench=1     measure disk 0 (BENCH lines)
 *   unbacked_ok=1 accept a plain completion of buffers in unbacked guest-physical space (QEMU
 *                 maps them as I/O memory that drops writes; mvm refuses them)
 *   durable=SEED  only write 64 sectors of pattern SEED from sector 0, flush, print
 *                 "DURABLE-FLUSHED" and wait to be killed (the host checks the image)
 * Disk N keeps pattern N+1 in sectors 8-15: byte j of sector s is
 * (seed * 29 + s * 131 + j * 7 + (j >> 8)) & 0xff.
 * Prints PASS/FAIL lines, "HOSTILE <name>: <outcome>", "RESULT PASS"; exits 0. */
#include "guest.h"
#include "virtio.h"

#define SECTOR	   512
#define QSIZE	   16
#define BENCH_QSIZE 128
#define VEC_VIRTIO 0x50
#define WAIT_MS	   1000

#define T_IN	       0
#define T_OUT	       1
#define T_FLUSH	       4
#define T_GET_ID       8
#define T_DISCARD      11
#define T_WRITE_ZEROES 13
#define S_OK	       0
#define S_IOERR	       1
#define S_UNSUPP       2
/* do_req() results that are not a status byte. */
#define R_NEEDS_RESET (-1)
#define R_TIMEOUT     (-2)
#define R_BAD_ID      (-3)

#define F_SEG_MAX      2
#define F_RO	       5
#define F_BLK_SIZE     6
#define F_FLUSH	       9
#define F_DISCARD      13
#define F_WRITE_ZEROES 14

#define PATTERN_SECTOR	8
#define PATTERN_SECTORS 8
#define PATTERN_BYTES	(PATTERN_SECTORS * SECTOR)
#define ZERO_SECTOR	32
#define DISCARD_SECTOR	36
#define LONG_CHAIN	1100 /* more than QEMU's 1024 and mvm's 64 segments */

struct blk_hdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct blk_discard {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct seg {
	uint64_t addr;
	uint32_t len;
	bool write;
};

static struct virtio_dev dev;
static struct virtq vq;
static uint8_t ring_mem[VIRTQ_MEM(QSIZE)] __attribute__((aligned(4096)));
static struct blk_hdr hdr, hdr2;
static volatile uint8_t status;
static uint8_t wbuf[PATTERN_BYTES] __attribute__((aligned(4096)));
static uint8_t rbuf[PATTERN_BYTES] __attribute__((aligned(4096)));
static struct vring_desc itable[LONG_CHAIN] __attribute__((aligned(16)));
static struct vring_desc itable2[4] __attribute__((aligned(16)));
static struct mp_info mp;
static bool have_mp;
static volatile unsigned int irqs;
static volatile uint32_t isr_seen;
static int pin = -1;
static bool ro;

#define WANT_FEATURES                                                                              \
	(VIRTIO_BIT(F_SEG_MAX) | VIRTIO_BIT(F_RO) | VIRTIO_BIT(F_BLK_SIZE) | VIRTIO_BIT(F_FLUSH) | \
	 VIRTIO_BIT(F_DISCARD) | VIRTIO_BIT(F_WRITE_ZEROES) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |  \
	 VIRTIO_BIT(VIRTIO_F_EVENT_IDX))

static uint64_t addr_of(const volatile void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static bool has(unsigned int bit)
{
	return dev.features & VIRTIO_BIT(bit);
}

static uint8_t pattern(uint32_t seed, uint64_t sector, uint32_t j)
{
	return (uint8_t)(seed * 29 + sector * 131 + j * 7 + (j >> 8));
}

static void fill(uint8_t *buf, uint32_t seed, uint64_t first, unsigned int sectors)
{
	for (unsigned int s = 0; s < sectors; s++)
		for (uint32_t j = 0; j < SECTOR; j++)
			buf[s * SECTOR + j] = pattern(seed, first + s, j);
}

static void virtio_irq(struct trap_frame *f)
{
	(void)f;
	isr_seen |= virtio_isr_ack(&dev);
	irqs++;
}

/* Routes this disk's IRQ to VEC_VIRTIO, through the MP table's ISA entry when there is one. */
static void route_irq(void)
{
	if (pin >= 0)
		ioapic_mask((unsigned int)pin);
	pin = -1;
	if (dev.irq == ~0u)
		return;
	pin = have_mp ? mp_isa_irq_pin(&mp, dev.irq) : -1;
	if (pin < 0)
		pin = (int)dev.irq;
	if ((unsigned int)pin >= ioapic_pins()) {
		pin = -1;
		return;
	}
	ioapic_route((unsigned int)pin, VEC_VIRTIO, lapic_id(), false);
}

static bool dev_start(struct virtq *q, uint8_t *mem, uint16_t size)
{
	if (!virtio_setup(&dev, WANT_FEATURES))
		return false;
	if (!virtq_setup(&dev, q, 0, size, mem)) {
		printf("queue setup refused (QueueNumMax %u)\n",
		       virtio_read32(&dev, VIRTIO_MMIO_QUEUE_NUM_MAX));
		return false;
	}
	virtio_driver_ok(&dev);
	return !(virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET);
}

/* 1: a used entry arrived; -1: the device set NEEDS_RESET; 0: neither within WAIT_MS. */
static int wait_used(uint32_t *id, uint32_t *len)
{
	struct pit_clock clk;

	pit_clock_start(&clk);
	for (;;) {
		if (virtq_get_used(&vq, id, len))
			return 1;
		if (virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET)
			return -1;
		if (pit_clock_ms(&clk) > WAIT_MS)
			return 0;
	}
}

static int collect(uint32_t *used_len)
{
	uint32_t id, len;
	int r = wait_used(&id, &len);

	if (r <= 0)
		return r < 0 ? R_NEEDS_RESET : R_TIMEOUT;
	if (id != 0)
		return R_BAD_ID;
	if (used_len)
		*used_len = len;
	return status;
}

/* Descriptors 0..n-1 of the ring (or of itable when (indirect)), chained in order. */
static void write_chain(struct vring_desc *d, const struct seg *s, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		d[i] = (struct vring_desc){
			.addr = s[i].addr,
			.len = s[i].len,
			.flags = (uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
			.next = (uint16_t)(i + 1),
		};
}

/* One request: header, (n) data segments, status. Returns the status byte or R_*. */
static int do_req_ex(uint32_t type, uint64_t sector, const struct seg *data, unsigned int n,
		     bool indirect, uint32_t *used_len)
{
	struct seg s[8];
	unsigned int k = 0;

	hdr = (struct blk_hdr){.type = type, .sector = sector};
	s[k++] = (struct seg){addr_of(&hdr), sizeof(hdr), false};
	for (unsigned int i = 0; i < n && k < 7; i++)
		s[k++] = data[i];
	status = 0xff;
	s[k++] = (struct seg){addr_of(&status), 1, true};
	if (indirect) {
		write_chain(itable, s, k);
		vq.desc[0] = (struct vring_desc){addr_of(itable), (uint32_t)(k * 16),
						 VRING_DESC_F_INDIRECT, 0};
	} else {
		write_chain(vq.desc, s, k);
	}
	virtq_publish(&vq, 0);
	virtq_kick(&vq);
	return collect(used_len);
}

static int do_req(uint32_t type, uint64_t sector, const struct seg *data, unsigned int n)
{
	return do_req_ex(type, sector, data, n, false, NULL);
}

static const char *result_name(int r)
{
	switch (r) {
	case S_OK: return "OK";
	case S_IOERR: return "IOERR";
	case S_UNSUPP: return "UNSUPP";
	case R_NEEDS_RESET: return "NEEDS_RESET";
	case R_TIMEOUT: return "timeout";
	case R_BAD_ID: return "wrong used id";
	default: return "bad status byte";
	}
}

static bool expect(int r, int want, const char *fmt, unsigned int d)
{
	if (!reportf(r == want, fmt, d))
		printf("  got %s (%d), want %s\n", result_name(r), r, result_name(want));
	return r == want;
}

static void test_get_id(unsigned int d)
{
	char key[16], want[32];
	uint8_t id[20];
	struct seg s = {addr_of(id), sizeof(id), true};
	int r;

	memset(id, 0xaa, sizeof(id));
	r = do_req(T_GET_ID, 0, &s, 1);
	expect(r, S_OK, "d%u-get-id", d);
	snprintf(key, sizeof(key), "id%u", d);
	if (r != S_OK || !cmdline_get(key, want, sizeof(want)))
		return;
	size_t n = strlen(want);
	/* NUL-terminated when shorter than 20 bytes; QEMU leaves the rest as it was. */
	bool ok = n <= sizeof(id) && !memcmp(id, want, n) && (n == sizeof(id) || id[n] == 0);

	if (!reportf(ok, "d%u-id-matches", d))
		printf("  id starts \"%c%c%c\"\n", id[0], id[1], id[2]);
}

static void test_rw(unsigned int d, uint64_t cap)
{
	struct seg w[2] = {{addr_of(wbuf), 1536, false},
			   {addr_of(wbuf + 1536), PATTERN_BYTES - 1536, false}};
	struct seg r3[3] = {{addr_of(rbuf), 512, true},
			    {addr_of(rbuf + 512), 2048, true},
			    {addr_of(rbuf + 2560), PATTERN_BYTES - 2560, true}};
	struct seg r2[2] = {{addr_of(rbuf), 1024, true},
			    {addr_of(rbuf + 1024), PATTERN_BYTES - 1024, true}};
	struct seg one = {addr_of(rbuf), SECTOR, true};
	struct seg two = {addr_of(rbuf), 2 * SECTOR, true};
	struct seg part = {addr_of(rbuf), 100, true};
	uint32_t used_len = 0;
	int r;

	fill(wbuf, d + 1, PATTERN_SECTOR, PATTERN_SECTORS);
	if (!ro) {
		expect(do_req(T_OUT, PATTERN_SECTOR, w, 2), S_OK, "d%u-write", d);
		expect(do_req(T_FLUSH, 0, NULL, 0), S_OK, "d%u-flush", d);
	} else {
		/* Read-only: writes fail, the flush is harmless, and nothing changes. */
		memset(rbuf, 0, sizeof(rbuf));
		do_req(T_IN, PATTERN_SECTOR, r3, 3);
		memcpy(wbuf, rbuf, sizeof(wbuf));
		for (unsigned int i = 0; i < sizeof(wbuf); i++)
			wbuf[i] ^= 0x5a;
		expect(do_req(T_OUT, PATTERN_SECTOR, w, 2), S_IOERR, "d%u-ro-write-refused", d);
		for (unsigned int i = 0; i < sizeof(wbuf); i++)
			wbuf[i] ^= 0x5a;
		expect(do_req(T_FLUSH, 0, NULL, 0), S_OK, "d%u-ro-flush", d);
	}
	memset(rbuf, 0, sizeof(rbuf));
	r = do_req_ex(T_IN, PATTERN_SECTOR, r3, 3, false, &used_len);
	expect(r, S_OK, "d%u-read", d);
	if (r == S_OK && !reportf(used_len == PATTERN_BYTES + 1, "d%u-read-used-len", d))
		printf("  used len %u, want %u\n", used_len, PATTERN_BYTES + 1);
	reportf(!memcmp(rbuf, wbuf, sizeof(rbuf)), ro ? "d%u-ro-unchanged" : "d%u-readback", d);
	if (has(VIRTIO_F_INDIRECT_DESC)) {
		memset(rbuf, 0, sizeof(rbuf));
		r = do_req_ex(T_IN, PATTERN_SECTOR, r2, 2, true, NULL);
		expect(r, S_OK, "d%u-indirect-read", d);
		reportf(!memcmp(rbuf, wbuf, sizeof(rbuf)), "d%u-indirect-readback", d);
	}

	/* Errors that complete with a status and leave the device working. */
	expect(do_req(T_IN, cap - 1, &two, 1), S_IOERR, "d%u-read-past-end", d);
	expect(do_req(T_IN, cap, &one, 1), S_IOERR, "d%u-read-at-end", d);
	expect(do_req(T_IN, 1ull << 63, &one, 1), S_IOERR, "d%u-read-sector-overflow", d);
	expect(do_req(T_IN, 0, &part, 1), S_IOERR, "d%u-read-partial-sector", d);
	expect(do_req(0x77, 0, NULL, 0), S_UNSUPP, "d%u-unknown-type", d);
	expect(do_req(T_IN, cap - 1, &one, 1), S_OK, "d%u-read-last-sector", d);
}

static void test_zeroes(unsigned int d)
{
	static struct blk_discard dz;
	struct seg s = {addr_of(&dz), sizeof(dz), false};
	struct seg w = {addr_of(wbuf), 4 * SECTOR, false};
	struct seg r = {addr_of(rbuf), 4 * SECTOR, true};
	bool zero = true;

	if (ro)
		return;
	if (has(F_WRITE_ZEROES)) {
		fill(wbuf, 77, ZERO_SECTOR, 4);
		expect(do_req(T_OUT, ZERO_SECTOR, &w, 1), S_OK, "d%u-write-before-zeroes", d);
		dz = (struct blk_discard){.sector = ZERO_SECTOR, .num_sectors = 4};
		expect(do_req(T_WRITE_ZEROES, 0, &s, 1), S_OK, "d%u-write-zeroes", d);
		memset(rbuf, 0xee, 4 * SECTOR);
		expect(do_req(T_IN, ZERO_SECTOR, &r, 1), S_OK, "d%u-read-zeroes", d);
		for (unsigned int i = 0; i < 4 * SECTOR; i++)
			zero = zero && rbuf[i] == 0;
		reportf(zero, "d%u-zeroes-read-back", d);
	} else {
		report_skip("write-zeroes", "not offered");
	}
	if (has(F_DISCARD)) {
		dz = (struct blk_discard){.sector = DISCARD_SECTOR, .num_sectors = 4};
		expect(do_req(T_DISCARD, 0, &s, 1), S_OK, "d%u-discard", d);
		dz.flags = 1; /* unmap: only for write-zeroes (section 5.2.6.2) */
		expect(do_req(T_DISCARD, 0, &s, 1), S_UNSUPP, "d%u-discard-unmap-flag", d);
	} else {
		report_skip("discard", "not offered");
	}
}

static void test_disk(unsigned int d)
{
	char key[16], buf[32];
	uint64_t cap;

	if (!reportf(virtio_find(2, d, &dev), "d%u-found", d))
		return;
	printf("DISK %u at 0x%lx irq %d\n", d, dev.base, (int)dev.irq);
	reportf(virtio_read32(&dev, VIRTIO_MMIO_VERSION) == 2, "d%u-version-2", d);
	route_irq();
	irqs = 0;
	isr_seen = 0;
	if (!reportf(dev_start(&vq, ring_mem, QSIZE), "d%u-setup", d))
		return;
	printf("FEATURES 0x%lx\n", dev.features);
	snprintf(key, sizeof(key), "ro%u", d);
	ro = cmdline_uint(key, 0) != 0;
	reportf(has(F_RO) == ro, "d%u-ro-feature", d);

	cap = virtio_config64(&dev, 0);
	printf("CAPACITY %lu\n", cap);
	snprintf(key, sizeof(key), "cap%u", d);
	if (cmdline_get(key, buf, sizeof(buf)))
		reportf(cap == cmdline_uint(key, 0), "d%u-capacity", d);
	if (has(F_BLK_SIZE))
		reportf(virtio_config32(&dev, 20) == SECTOR, "d%u-blk-size-512", d);
	if (has(F_SEG_MAX))
		reportf(virtio_config32(&dev, 12) >= 1, "d%u-seg-max", d);
	if (cap < 64) {
		reportf(false, "d%u-capacity-at-least-64-sectors", d);
		return;
	}
	test_get_id(d);
	test_rw(d, cap);
	test_zeroes(d);
	if (pin >= 0) {
		/* Completions raised the line and our handler read and acked ISR. */
		reportf(irqs > 0, "d%u-interrupts", d);
		reportf(isr_seen & 1, "d%u-isr-used-bit", d);
		/* The last completion's interrupt may still be on its way (irqfd injects
		 * asynchronously): give the handler time to read and ack it. */
		struct pit_clock clk;
		uint32_t isr;

		pit_clock_start(&clk);
		while ((isr = virtio_read32(&dev, VIRTIO_MMIO_INTERRUPT_STATUS)) &&
		       pit_clock_ms(&clk) < WAIT_MS)
			;
		if (!reportf(isr == 0, "d%u-isr-acked", d))
			printf("  ISR 0x%x, %u interrupts\n", isr, irqs);
	} else {
		report_skip("interrupts", "no IOAPIC pin for the device's IRQ");
	}
	reportf(virtio_reset(&dev), "d%u-reset", d);
}

/* ---- hostile chains (disk 0) ---- */

static uint64_t capacity;
static uint64_t ram_end; /* end of the RAM range holding 1 MiB */

static void post(uint16_t head)
{
	virtq_publish(&vq, head);
	virtq_kick(&vq);
}

static void h_loop(void)
{
	vq.desc[0] = (struct vring_desc){addr_of(&hdr), 16, VRING_DESC_F_NEXT, 1};
	vq.desc[1] = (struct vring_desc){addr_of(rbuf), SECTOR,
					 VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2};
	vq.desc[2] = (struct vring_desc){addr_of(&status), 1,
					 VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1};
	post(0);
}

static void h_head_out_of_range(void)
{
	vq.desc[0] = (struct vring_desc){addr_of(&status), 1, VRING_DESC_F_WRITE, 0};
	post(QSIZE + 3);
}

static void h_next_out_of_range(void)
{
	vq.desc[0] = (struct vring_desc){addr_of(&hdr), 16, VRING_DESC_F_NEXT, 200};
	post(0);
}

static void data_descs(uint64_t addr, uint32_t len)
{
	vq.desc[0] = (struct vring_desc){addr_of(&hdr), 16, VRING_DESC_F_NEXT, 1};
	vq.desc[1] = (struct vring_desc){addr, len, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2};
	vq.desc[2] = (struct vring_desc){addr_of(&status), 1, VRING_DESC_F_WRITE, 0};
}

static void data_chain(uint64_t addr, uint32_t len)
{
	data_descs(addr, len);
	post(0);
}

static void h_outside_ram(void)
{
	data_chain(0xe0000000ull, SECTOR);
}

static void h_straddle(void)
{
	data_chain(ram_end - 256, SECTOR);
}

static void h_write_then_read(void)
{
	vq.desc[0] = (struct vring_desc){addr_of(&hdr), 16, VRING_DESC_F_NEXT, 1};
	vq.desc[1] = (struct vring_desc){addr_of(rbuf), SECTOR,
					 VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2};
	vq.desc[2] = (struct vring_desc){addr_of(&hdr2), 16, VRING_DESC_F_NEXT, 3};
	vq.desc[3] = (struct vring_desc){addr_of(&status), 1, VRING_DESC_F_WRITE, 0};
	post(0);
}

static void h_status_readonly(void)
{
	vq.desc[0] = (struct vring_desc){addr_of(&hdr), 16, VRING_DESC_F_NEXT, 1};
	vq.desc[1] = (struct vring_desc){addr_of(&status), 1, 0, 0};
	post(0);
}

static void h_avail_jump(void)
{
	/* One good request, but the index claims QSIZE + 6 new entries. */
	data_descs(addr_of(rbuf), SECTOR);
	vq.avail->ring[0] = 0;
	vq.avail_idx += QSIZE + 6;
	*(volatile uint16_t *)&vq.avail->idx = vq.avail_idx;
	virtq_kick(&vq);
}

static void h_sector_past_end(void)
{
	hdr.sector = capacity;
	data_chain(addr_of(rbuf), SECTOR);
}

/* Indirect tables (need VIRTIO_F_INDIRECT_DESC). */
static void indirect_head(uint32_t len)
{
	vq.desc[0] = (struct vring_desc){addr_of(itable), len, VRING_DESC_F_INDIRECT, 0};
	post(0);
}

static void h_long_chain(void)
{
	itable[0] = (struct vring_desc){addr_of(&hdr), 16, VRING_DESC_F_NEXT, 1};
	for (unsigned int i = 1; i < LONG_CHAIN - 1; i++)
		itable[i] = (struct vring_desc){addr_of(rbuf) + (i % SECTOR), 1,
						VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
						(uint16_t)(i + 1)};
	itable[LONG_CHAIN - 1] = (struct vring_desc){addr_of(&status), 1, VRING_DESC_F_WRITE, 0};
	indirect_head(LONG_CHAIN * 16);
}

/* 33 writable buffers of 128 MiB: 4.1 GiB, more than a 32-bit length. A read at sector 0:
 * a device that went ahead would overwrite guest RAM from 64 MiB (nothing of ours there). */
#define BIG_BUF	  (64ull << 20)
#define BIG_LEN	  (128u << 20)
#define BIG_COUNT 33
static void h_len_overflow(void)
{
	itable[0] = (struct vring_desc){addr_of(&hdr), 16, VRING_DESC_F_NEXT, 1};
	for (unsigned int i = 1; i <= BIG_COUNT; i++)
		itable[i] = (struct vring_desc){BIG_BUF, BIG_LEN,
						VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
						(uint16_t)(i + 1)};
	itable[BIG_COUNT + 1] = (struct vring_desc){addr_of(&status), 1, VRING_DESC_F_WRITE, 0};
	indirect_head((BIG_COUNT + 2) * 16);
}

static void h_nested_indirect(void)
{
	itable2[0] = (struct vring_desc){addr_of(&hdr), 16, VRING_DESC_F_NEXT, 1};
	itable2[1] = (struct vring_desc){addr_of(&status), 1, VRING_DESC_F_WRITE, 0};
	itable[0] = (struct vring_desc){addr_of(itable2), 32,
					VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1};
	itable[1] = (struct vring_desc){addr_of(&status), 1, VRING_DESC_F_WRITE, 0};
	indirect_head(32);
}

static void h_indirect_bad_len(void)
{
	itable[0] = (struct vring_desc){addr_of(&hdr), 16, VRING_DESC_F_NEXT, 1};
	itable[1] = (struct vring_desc){addr_of(&status), 1, VRING_DESC_F_WRITE, 0};
	indirect_head(24);
}

struct hostile {
	const char *name;
	void (*post)(void);
	bool indirect;
	bool unbacked;	/* buffers outside RAM: see unbacked_ok */
};

static const struct hostile hostiles[] = {
	{"desc-loop", h_loop, false, false},
	{"head-out-of-range", h_head_out_of_range, false, false},
	{"next-out-of-range", h_next_out_of_range, false, false},
	{"addr-outside-ram", h_outside_ram, false, true},
	{"addr-straddles-ram-end", h_straddle, false, true},
	{"write-then-read", h_write_then_read, false, false},
	{"status-read-only", h_status_readonly, false, false},
	{"avail-idx-jump", h_avail_jump, false, false},
	{"sector-past-end", h_sector_past_end, false, false},
	{"chain-too-long", h_long_chain, true, false},
	{"len-overflow", h_len_overflow, true, false},
	{"nested-indirect", h_nested_indirect, true, false},
	{"indirect-bad-len", h_indirect_bad_len, true, false},
};

static void run_hostile(const struct hostile *h)
{
	struct seg rd = {addr_of(rbuf), PATTERN_BYTES, true};
	uint32_t id, len;
	const char *outcome;
	bool ok;
	int r;

	if (!dev_start(&vq, ring_mem, QSIZE)) {
		reportf(false, "hostile-%s-setup", h->name);
		return;
	}
	if (h->indirect && !has(VIRTIO_F_INDIRECT_DESC)) {
		report_skip(h->name, "no VIRTIO_F_INDIRECT_DESC");
		return;
	}
	hdr = (struct blk_hdr){.type = T_IN, .sector = 0};
	hdr2 = hdr;
	status = 0xff;
	h->post();
	r = wait_used(&id, &len);
	ok = r < 0 || (r > 0 && (status == S_IOERR || status == S_UNSUPP));
	outcome = r < 0 ? "needs-reset" : r == 0 ? "ignored (no completion, no NEEDS_RESET)"
			: ok ? "error-status" : "accepted";
	if (!ok && r > 0 && status == S_OK && h->unbacked && cmdline_uint("unbacked_ok", 0)) {
		ok = true;
		outcome = "accepted (unbacked_ok)";
	}
	printf("HOSTILE %s: %s (status 0x%x)\n", h->name, outcome, status);
	reportf(ok, "hostile-%s", h->name);

	/* Whatever happened, a reset gives back a working device. */
	ok = virtio_reset(&dev) && dev_start(&vq, ring_mem, QSIZE);
	memset(rbuf, 0, sizeof(rbuf));
	ok = ok && do_req(T_IN, PATTERN_SECTOR, &rd, 1) == S_OK;
	fill(wbuf, 1, PATTERN_SECTOR, PATTERN_SECTORS);
	ok = ok && (ro || !memcmp(rbuf, wbuf, sizeof(rbuf)));
	reportf(ok, "hostile-%s-recovered", h->name);
}

static void test_hostile(void)
{
	if (!virtio_find(2, 0, &dev)) {
		report("hostile-found", false);
		return;
	}
	ro = cmdline_uint("ro0", 0) != 0;
	route_irq();
	capacity = 0;
	if (dev_start(&vq, ring_mem, QSIZE))
		capacity = virtio_config64(&dev, 0);
	ram_end = 0;
	for (unsigned int i = 0; i < memmap_count(); i++) {
		const struct hvm_memmap_table_entry *e = memmap_entry(i);

		if (e->type == E820_RAM && e->addr <= 0x100000 && e->addr + e->size > 0x100000)
			ram_end = e->addr + e->size;
	}
	for (unsigned int i = 0; i < sizeof(hostiles) / sizeof(hostiles[0]); i++) {
		const struct hostile *h = &hostiles[i];

		if (h->post == h_straddle && !ram_end) {
			report_skip(h->name, "no RAM range in the memmap");
			continue;
		}
		if (h->post == h_len_overflow && !memmap_is_ram(BIG_BUF, BIG_LEN)) {
			report_skip(h->name, "needs RAM from 64 to 192 MiB");
			continue;
		}
		run_hostile(h);
	}
	virtio_reset(&dev);
}

/* ---- benchmark (bench=1): polled, interrupts masked ---- */

#define BENCH_SLOTS 32 /* three descriptors each: fits BENCH_QSIZE */
static uint8_t bench_ring[VIRTQ_MEM(BENCH_QSIZE)] __attribute__((aligned(4096)));
static uint8_t bench_buf[BENCH_SLOTS][65536] __attribute__((aligned(4096)));
/* Requests larger than a slot's buffer (1 MiB sequential) use this one, at queue depth 1. */
static uint8_t bench_big[1 << 20] __attribute__((aligned(4096)));
static struct blk_hdr bench_hdr[BENCH_SLOTS];
static volatile uint8_t bench_status[BENCH_SLOTS];
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void bench_submit(unsigned int slot, uint64_t sector, uint32_t bytes)
{
	uint16_t d = (uint16_t)(slot * 3);
	uint8_t *buf = bytes > sizeof(bench_buf[0]) ? bench_big : bench_buf[slot];

	bench_hdr[slot] = (struct blk_hdr){.type = T_IN, .sector = sector};
	bench_status[slot] = 0xff;
	vq.desc[d] = (struct vring_desc){addr_of(&bench_hdr[slot]), 16, VRING_DESC_F_NEXT,
					 (uint16_t)(d + 1)};
	vq.desc[d + 1] = (struct vring_desc){addr_of(buf), bytes,
					     VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
					     (uint16_t)(d + 2)};
	vq.desc[d + 2] = (struct vring_desc){addr_of(&bench_status[slot]), 1, VRING_DESC_F_WRITE,
					     0};
	virtq_publish(&vq, d);
}

static void bench(const char *name, unsigned int qd, uint32_t bytes, bool random,
		  unsigned int duration_ms)
{
	uint64_t blocks, next = 0, ios = 0, errors = 0, ms = 0;
	unsigned int inflight = 0, polls = 0;
	struct pit_clock clk;
	uint32_t id, len;

	if (!dev_start(&vq, bench_ring, BENCH_QSIZE)) {
		reportf(false, "bench-%s-setup", name);
		return;
	}
	blocks = virtio_config64(&dev, 0) / (bytes / SECTOR);
	if (blocks < 16) {
		report_skip(name, "disk too small");
		return;
	}
	/* Polled: the IOAPIC pin is masked and the driver asks for no interrupts. */
	vq.avail->flags = 1; /* VRING_AVAIL_F_NO_INTERRUPT (ignored with EVENT_IDX) */
	pit_clock_start(&clk);
	for (unsigned int s = 0; s < qd; s++, inflight++)
		bench_submit(s, (random ? xorshift() % blocks : next++ % blocks) * (bytes / SECTOR),
			     bytes);
	virtq_kick(&vq);
	while (inflight) {
		bool kick = false;

		while (virtq_get_used(&vq, &id, &len)) {
			unsigned int slot = id / 3;

			ios++;
			if (bench_status[slot] != S_OK)
				errors++;
			if (ms < duration_ms) {
				uint64_t b = random ? xorshift() % blocks : next++ % blocks;

				bench_submit(slot, b * (bytes / SECTOR), bytes);
				kick = true;
			} else {
				inflight--;
			}
		}
		if (kick)
			virtq_kick(&vq);
		if (++polls % 8 == 0 || kick)
			ms = pit_clock_ms(&clk);
		if (ms > duration_ms + 5000)
			break; /* the device stopped answering */
	}
	ms = ms ? ms : 1;
	printf("BENCH %s qd=%u ios=%lu errors=%lu ms=%lu iops=%lu MiB/s=%lu\n", name, qd, ios,
	       errors, ms, ios * 1000 / ms, ios * bytes / 1024 * 1000 / 1024 / ms);
	reportf(errors == 0 && !inflight, "bench-%s", name);
	virtio_reset(&dev);
}

static void run_bench(void)
{
	unsigned int ms = (unsigned int)cmdline_uint("bench_ms", 3000);

	if (!virtio_find(2, 0, &dev)) {
		report("bench-found", false);
		return;
	}
	if (pin >= 0)
		ioapic_mask((unsigned int)pin);
	bench("randread-4k", 16, 4096, true, ms);
	bench("randread-4k-qd1", 1, 4096, true, ms);
	bench("seqread-64k", 4, 65536, false, ms);
	bench("randread-4k-qd32", 32, 4096, true, ms);
	bench("seqread-1m", 1, 1 << 20, false, ms);
}

/* ---- durability (durable=SEED) ---- */

static void durable(uint32_t seed)
{
	struct seg w = {addr_of(wbuf), PATTERN_BYTES, false};
	bool ok = virtio_find(2, 0, &dev) && dev_start(&vq, ring_mem, QSIZE);

	for (uint64_t s = 0; ok && s < 64; s += PATTERN_SECTORS) {
		fill(wbuf, seed, s, PATTERN_SECTORS);
		ok = do_req(T_OUT, s, &w, 1) == S_OK;
	}
	ok = ok && do_req(T_FLUSH, 0, NULL, 0) == S_OK;
	if (!ok) {
		printf("DURABLE-FAILED\n");
		guest_exit(EXIT_FAIL);
	}
	printf("DURABLE-FLUSHED\n");
	for (;;)
		wait_for_interrupt();
}

void guest_main(const struct hvm_start_info *si)
{
	unsigned int disks = (unsigned int)cmdline_uint("disks", 1);

	(void)si;
	have_mp = mp_parse(&mp) == 0;
	lapic_init();
	irq_register(VEC_VIRTIO, virtio_irq);
	irq_enable();
	if (cmdline_get("durable", NULL, 0))
		durable((uint32_t)cmdline_uint("durable", 1));
	for (unsigned int d = 0; d < disks; d++)
		test_disk(d);
	if (cmdline_uint("hostile", 1))
		test_hostile();
	if (cmdline_uint("bench", 0))
		run_bench();
	irq_disable();
	finish();
}
