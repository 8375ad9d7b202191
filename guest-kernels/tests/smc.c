/* smc.c: self-modifying code. Every check patches code that has already run (so a binary
 * translator has it cached), runs it again and compares the result with what the new bytes
 * compute, LOOPS times with a new value each time. SDM vol. 3A 11.6: a store to code followed
 * by a jump to it is enough for the processor to run the new bytes; P6 and later processors
 * also see a store to an instruction already prefetched at the same linear address.
 *   smc-same-block-jmp    the function stores into the imm32 of a later mov in its own
 *                         straight-line code, jumps to it (jmp 1f; 1:), returns the mov's value
 *   smc-same-block-nojmp  the same with no jump: the patched mov follows the store directly
 *   smc-next-block        the imm32 of "mov $imm, %eax; ret" patched between calls
 *   smc-opcode            "inc %eax" and "dec %eax" swapped (one modrm byte) between calls
 *   smc-branch            the rel8 of a jmp patched between two targets (block chaining)
 *   smc-page-cross-imm    "mov $imm, %eax" with its opcode and first immediate byte at the
 *                         end of a page and three bytes on the next: only the bytes on the
 *                         second page are patched
 *   smc-page-cross-tail   code that starts on one page and runs into the next: an
 *                         instruction wholly on the second page patched ("not %eax" / nops)
 *   smc-alias-exec-low    a code page mapped a second time at 512 GiB (our own 4 KiB page
 *                         tables, PML4 slot 1): patched through that alias, run through its
 *                         identity address
 *   smc-alias-exec-high   patched through the identity address, run through the alias
 * Code in the first five lives in a writable section of the image, the others in page-aligned
 * buffers in .bss (the runtime's identity map is writable and executable throughout).
 *
 * With "dma=1" on the command line, and a writable virtio-blk disk of at least 8 sectors whose
 * contents do not matter (the host prepares nothing: run-qemu.sh --blk 1, or mvm with any
 * scratch image), also
 *   smc-dma               a function is run, then the guest writes a new function to sector 0
 *                         with a virtio-blk OUT request (from a data buffer) and reads sector 0
 *                         back over the function with an IN request: the device, not the CPU,
 *                         writes the new code. Run again: the new value. 16 rounds.
 * Without a disk "dma=1" fails smc-dma-disk.
 *
 * Prints "PASS <check>" per check ("  <check>: round <i> returned <got> (want <want>)" before a
 * FAIL), "RESULT PASS"; exits 0. Host side: exit status 0, RESULT PASS, no FAIL. */
#include "guest.h"
#include "virtio.h"

#define LOOPS	1000
#define PG	4096ull
#define HI_BASE 0x8000000000ull /* PML4 slot 1 */
#define PTE_P	0x1ull
#define PTE_W	0x2ull

/* In a writable, executable section: functions that patch themselves or are patched. */
/* clang-format off */
__asm__(".pushsection .data.smc, \"awx\", @progbits\n"
	".globl smc_same_jmp, smc_same_nojmp, smc_imm_fn, smc_imm, smc_op_fn, smc_op_modrm\n"
	".globl smc_branch_fn, smc_branch_rel, smc_branch_a, smc_branch_b\n"
	/* uint32_t smc_same_jmp(uint32_t v): v through the patched mov. */
	"smc_same_jmp:\n"
	"	movl %edi, 1f + 1(%rip)\n"
	"	jmp 1f\n"
	"1:	.byte 0xb8\n	.long 0\n" /* mov $imm32, %eax */
	"	ret\n"
	"smc_same_nojmp:\n"
	"	movl %edi, 1f + 1(%rip)\n"
	"1:	.byte 0xb8\n	.long 0\n"
	"	ret\n"
	/* uint32_t smc_imm_fn(void): returns the imm32 at smc_imm. */
	"smc_imm_fn:\n"
	"	.byte 0xb8\n"
	"smc_imm:\n"
	"	.long 0\n"
	"	ret\n"
	/* uint32_t smc_op_fn(uint32_t v): v + 1 (modrm 0xc0) or v - 1 (modrm 0xc8). */
	"smc_op_fn:\n"
	"	mov %edi, %eax\n"
	"	.byte 0xff\n"
	"smc_op_modrm:\n"
	"	.byte 0xc0\n"
	"	ret\n"
	/* uint32_t smc_branch_fn(void): 0xa or 0xb, as the jmp's rel8 says. */
	"smc_branch_fn:\n"
	"	.byte 0xeb\n"
	"smc_branch_rel:\n"
	"	.byte 0\n"
	"smc_branch_a:\n"
	"	mov $0xa, %eax\n"
	"	ret\n"
	"smc_branch_b:\n"
	"	mov $0xb, %eax\n"
	"	ret\n"
	".popsection\n");
/* clang-format on */
uint32_t smc_same_jmp(uint32_t v);
uint32_t smc_same_nojmp(uint32_t v);
uint32_t smc_imm_fn(void);
uint32_t smc_op_fn(uint32_t v);
uint32_t smc_branch_fn(void);
extern volatile uint8_t smc_imm[4], smc_op_modrm[1], smc_branch_rel[1];
extern char smc_branch_a[], smc_branch_b[];

extern uint64_t pml4[512];
static __attribute__((aligned(4096))) uint64_t hi_pdpt[512], hi_pd[512], hi_pt[512];
static __attribute__((aligned(4096))) uint8_t cross[2 * PG], alias[PG], dma_code[PG];

typedef uint32_t (*fn_t)(void);

static uint32_t value(unsigned int i)
{
	return i * 0x9e3779b1u + 0x1234567u;
}

static void put32(volatile uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Counts a wrong result; prints the first. */
static bool same(bool *ok, const char *check, unsigned int round, uint32_t got, uint32_t want)
{
	if (got != want && *ok)
		printf("  %s: round %u returned 0x%x (want 0x%x)\n", check, round, got, want);
	*ok = *ok && got == want;
	return got == want;
}

static void test_in_image(void)
{
	bool ok_jmp = true, ok_nojmp = true, ok_imm = true, ok_op = true, ok_br = true;
	const uint8_t rel_a = 0, rel_b = (uint8_t)(smc_branch_b - smc_branch_a);

	for (unsigned int i = 0; i < LOOPS; i++) {
		uint32_t v = value(i);

		same(&ok_jmp, "smc-same-block-jmp", i, smc_same_jmp(v), v);
		same(&ok_nojmp, "smc-same-block-nojmp", i, smc_same_nojmp(v), v);
		put32(smc_imm, v);
		same(&ok_imm, "smc-next-block", i, smc_imm_fn(), v);
		smc_op_modrm[0] = i & 1 ? 0xc8 : 0xc0;
		same(&ok_op, "smc-opcode", i, smc_op_fn(v), i & 1 ? v - 1 : v + 1);
		smc_branch_rel[0] = i & 1 ? rel_b : rel_a;
		same(&ok_br, "smc-branch", i, smc_branch_fn(), i & 1 ? 0xb : 0xa);
	}
	report("smc-same-block-jmp", ok_jmp);
	report("smc-same-block-nojmp", ok_nojmp);
	report("smc-next-block", ok_imm);
	report("smc-opcode", ok_op);
	report("smc-branch", ok_br);
}

/* cross + PG - 8: six nops, "mov $imm32, %eax" from PG - 2 to PG + 2, then at PG + 3 either
 * "not %eax" (f7 d0) or two nops, then ret. */
static void test_page_cross(void)
{
	uint8_t *c = cross + PG - 8;
	fn_t fn = (fn_t)(uintptr_t)c;
	bool ok_imm = true, ok_tail = true;
	uint32_t v = value(0);

	memset(c, 0x90, 6);
	c[6] = 0xb8;
	put32(c + 7, v);
	c[11] = 0x90;
	c[12] = 0x90;
	c[13] = 0xc3;
	same(&ok_imm, "smc-page-cross-imm", 0, fn(), v);
	for (unsigned int i = 1; i < LOOPS; i++) {
		/* Only bytes 1-3 of the immediate change: all on the second page. */
		v = (v & 0xff) | (value(i) & ~0xffu);
		put32(c + 7, v);
		same(&ok_imm, "smc-page-cross-imm", i, fn(), v);
	}
	report("smc-page-cross-imm", ok_imm);
	for (unsigned int i = 0; i < LOOPS; i++) {
		bool inv = i & 1;

		c[11] = inv ? 0xf7 : 0x90;
		c[12] = inv ? 0xd0 : 0x90;
		same(&ok_tail, "smc-page-cross-tail", i, fn(), inv ? ~v : v);
	}
	report("smc-page-cross-tail", ok_tail);
}

static void test_alias(void)
{
	volatile uint8_t *low = alias, *high = (volatile uint8_t *)(uintptr_t)HI_BASE;
	bool ok_low = true, ok_high = true;

	hi_pd[0] = (uint64_t)(uintptr_t)hi_pt | PTE_P | PTE_W;
	hi_pdpt[0] = (uint64_t)(uintptr_t)hi_pd | PTE_P | PTE_W;
	pml4[1] = (uint64_t)(uintptr_t)hi_pdpt | PTE_P | PTE_W;
	hi_pt[0] = (uint64_t)(uintptr_t)alias | PTE_P | PTE_W;
	__asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" : : : "rax", "memory");

	alias[0] = 0xb8;
	put32(alias + 1, 0);
	alias[5] = 0xc3;
	for (unsigned int i = 0; i < LOOPS; i++) {
		uint32_t v = value(i);

		put32(high + 1, v);
		same(&ok_low, "smc-alias-exec-low", i, ((fn_t)(uintptr_t)low)(), v);
	}
	report("smc-alias-exec-low", ok_low);
	for (unsigned int i = 0; i < LOOPS; i++) {
		uint32_t v = ~value(i);

		put32(low + 1, v);
		same(&ok_high, "smc-alias-exec-high", i, ((fn_t)(uintptr_t)high)(), v);
	}
	report("smc-alias-exec-high", ok_high);
}

/* ---- dma=1: a virtio-blk read over code ---- */

#define SECTOR	   512
#define DMA_ROUNDS 16
#define QSIZE	   8
#define T_IN	   0
#define T_OUT	   1

static struct virtio_dev dev;
static struct virtq vq;
static __attribute__((aligned(4096))) uint8_t ring_mem[VIRTQ_MEM(QSIZE)], sector_buf[SECTOR];
static struct {
	uint32_t type, ioprio;
	uint64_t sector;
} blk_hdr;
static volatile uint8_t blk_status;

/* One request on sector 0: header, (buf) of one sector, status. True when it completed OK. */
static bool blk_rw(uint32_t type, void *buf)
{
	blk_hdr.type = type;
	blk_hdr.ioprio = 0;
	blk_hdr.sector = 0;
	blk_status = 0xff;
	vq.desc[0] = (struct vring_desc){(uint64_t)(uintptr_t)&blk_hdr, sizeof(blk_hdr),
					 VRING_DESC_F_NEXT, 1};
	vq.desc[1] =
		(struct vring_desc){(uint64_t)(uintptr_t)buf, SECTOR,
				    VRING_DESC_F_NEXT | (type == T_IN ? VRING_DESC_F_WRITE : 0), 2};
	vq.desc[2] =
		(struct vring_desc){(uint64_t)(uintptr_t)&blk_status, 1, VRING_DESC_F_WRITE, 0};
	return virtq_submit_wait(&vq, 0, 1000) && blk_status == 0;
}

static void test_dma(void)
{
	fn_t fn = (fn_t)(uintptr_t)dma_code;
	bool ok = true;

	if (!report("smc-dma-disk", virtio_find(2, 0, &dev) && virtio_setup(&dev, 0) &&
					    virtq_setup(&dev, &vq, 0, QSIZE, ring_mem)))
		return;
	virtio_driver_ok(&dev);
	dma_code[0] = 0xb8;
	put32(dma_code + 1, 0);
	dma_code[5] = 0xc3;
	for (unsigned int i = 0; i < DMA_ROUNDS && ok; i++) {
		uint32_t v = value(i);

		fn(); /* the old code has run */
		memset(sector_buf, 0xcc, SECTOR);
		sector_buf[0] = 0xb8;
		put32(sector_buf + 1, v);
		sector_buf[5] = 0xc3;
		if (!blk_rw(T_OUT, sector_buf) || !blk_rw(T_IN, dma_code)) {
			printf("  smc-dma: round %u: request failed (status 0x%x)\n", i,
			       blk_status);
			ok = false;
			break;
		}
		same(&ok, "smc-dma", i, fn(), v);
	}
	report("smc-dma", ok);
}

void guest_main(const struct hvm_start_info *si)
{
	(void)si;
	test_in_image();
	test_page_cross();
	test_alias();
	if (cmdline_uint("dma", 0))
		test_dma();
	finish();
}
