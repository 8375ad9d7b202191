/* test_boot_bzimage.c: boot_load() on synthetic bzImages: the zero page, the loaded kernel, the
 * initrd, the GDT, the page tables and the entry state, checked byte by byte with the offsets of
 * Linux boot.rst and zero-page.rst; then malformed images, every truncation, and guest memory
 * untouched after each failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot/boot.h"
#include "boot/mptable.h"
#include "core/guest_mem.h"
#include "core/layout.h"
#include "core/memmap.h"
#include "test.h"
#include "test_log.h"

#define RAM_SIZE   (32ULL << 20)
#define SETUP_SZ   1024 /* setup_sects = 1, plus the boot sector */
#define PM_SZ	   512
#define IMG_SZ	   (SETUP_SZ + PM_SZ)
#define HDR_END	   0x26c
#define PREF_ADDR  0x1000000ULL
#define INIT_SIZE  0x400000ULL
#define CMDLINE_SZ 255

static uint8_t *ram;
static uint8_t *snap;
static struct guest_mem mem;
static struct memmap map;

static void wr(uint8_t *p, uint64_t v, int size)
{
	memcpy(p, &v, size); /* little-endian host, as the guest */
}

static uint64_t rd(const uint8_t *p, int size)
{
	uint64_t v = 0;

	memcpy(&v, p, size);
	return v;
}

/* A minimal bzImage: boot sector and one setup sector holding the header, then PM_SZ bytes of
 * "protected-mode kernel". Bytes after the header end carry a pattern that must not be copied
 * into the zero page. */
static void build(uint8_t *img)
{
	memset(img, 0, IMG_SZ);
	for (int i = HDR_END; i < SETUP_SZ; i++)
		img[i] = 0xee;
	img[0x1f1] = 1;			/* setup_sects */
	wr(img + 0x1f4, PM_SZ / 16, 4); /* syssize */
	wr(img + 0x1fa, 0xffff, 2);	/* vid_mode: normal */
	wr(img + 0x1fe, 0xaa55, 2);	/* boot_flag */
	img[0x200] = 0xeb;		/* jmp */
	img[0x201] = HDR_END - 0x202;	/* header length */
	memcpy(img + 0x202, "HdrS", 4);
	wr(img + 0x206, 0x020f, 2);	/* version 2.15 */
	img[0x211] = 0x01;		/* loadflags: LOADED_HIGH */
	wr(img + 0x214, 0x100000, 4);	/* code32_start */
	wr(img + 0x22c, 0x7fffffff, 4); /* initrd_addr_max */
	wr(img + 0x230, 0x200000, 4);	/* kernel_alignment */
	img[0x234] = 1;			/* relocatable_kernel */
	wr(img + 0x236, 0x3, 2);	/* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
	wr(img + 0x238, CMDLINE_SZ, 4); /* cmdline_size */
	wr(img + 0x258, PREF_ADDR, 8);	/* pref_address */
	wr(img + 0x260, INIT_SIZE, 4);	/* init_size */
	wr(img + 0x268, 0x12345678, 4); /* kernel_info_offset: copied as is */
	for (int i = 0; i < PM_SZ; i++)
		img[SETUP_SZ + i] = (uint8_t)(i * 7 + 3);
}

static void input(struct boot_input *in, const uint8_t *img, size_t len, const uint8_t *initrd,
		  size_t initrd_len, const char *cmdline)
{
	*in = (struct boot_input){.kernel = img,
				  .kernel_len = len,
				  .initrd = initrd,
				  .initrd_len = initrd_len,
				  .cmdline = cmdline,
				  .map = &map,
				  .ncpus = 2};
}

/* Expects boot_load() to fail with (err), to log a message containing (needle), and to leave
 * guest memory as it was. */
static void expect_fail(const struct boot_input *in, int err, const char *needle, int line)
{
	struct boot_cpu cpu;
	const char *msg;
	int ret;

	memcpy(snap, ram, RAM_SIZE);
	quiet_begin();
	ret = boot_load(&mem, in, &cpu);
	msg = quiet_end();
	if (ret != err || (needle && !strstr(msg, needle)) || !strchr(msg, '\n'))
		fprintf(stderr, "line %d: ret %d (want %d), log \"%s\" (want \"%s\")\n", line, ret,
			err, msg, needle ? needle : "");
	CHECK_EQ(ret, err);
	CHECK(!needle || strstr(msg, needle));
	CHECK(memchr(msg, '\n', sizeof(logbuf)) != NULL); /* exactly one message was logged */
	CHECK(strchr(msg, '\n') == msg + strlen(msg) - 1);
	CHECK(!memcmp(snap, ram, RAM_SIZE));
}

#define EXPECT_FAIL(in, err, needle) expect_fail(in, err, needle, __LINE__)

static void check_gdt(void)
{
	const uint8_t *g = ram + LAYOUT_GDT;

	CHECK_EQ(rd(g + 0x00, 8), 0);
	CHECK_EQ(rd(g + 0x08, 8), 0x00cf9b000000ffffULL);
	CHECK_EQ(rd(g + 0x10, 8), 0x00af9b000000ffffULL); /* __BOOT_CS: L=1 */
	CHECK_EQ(rd(g + 0x18, 8), 0x00cf93000000ffffULL); /* __BOOT_DS */
	CHECK_EQ(rd(g + 0x20, 8), 0x00008b0000000067ULL); /* busy TSS, base 0, limit 0x67 */
	CHECK_EQ(rd(g + 0x28, 8), 0);
}

static void test_good(void)
{
	static const char cmdline[] = "console=ttyS0 reboot=k panic=1";
	uint8_t img[IMG_SZ], initrd[10000];
	const uint8_t *zp = ram + LAYOUT_ZERO_PAGE, *pt = ram + LAYOUT_PAGE_TABLES;
	struct boot_input in;
	struct boot_cpu cpu;
	uint64_t rd_addr;
	enum boot_kind kind;

	build(img);
	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x5a);
	memset(ram, 0xcc, RAM_SIZE);
	input(&in, img, sizeof(img), initrd, sizeof(initrd), cmdline);
	CHECK_EQ(boot_detect(img, sizeof(img), &kind), 0);
	CHECK_EQ(kind, BOOT_KIND_BZIMAGE);
	CHECK_EQ(boot_load(&mem, &in, &cpu), 0);

	/* Entry state: boot.rst "64-bit Boot Protocol". */
	CHECK_EQ(cpu.kind, BOOT_KIND_BZIMAGE);
	CHECK_EQ(cpu.long_mode, 1);
	CHECK_EQ(cpu.rip, 0x100200);
	CHECK_EQ(cpu.rsi, LAYOUT_ZERO_PAGE);
	CHECK_EQ(cpu.rsp, LAYOUT_BOOT_STACK);
	CHECK_EQ(cpu.rbx, 0);
	CHECK_EQ(cpu.rflags, 2);
	CHECK_EQ(cpu.cr0, 0x80000011);
	CHECK_EQ(cpu.cr3, LAYOUT_PAGE_TABLES);
	CHECK_EQ(cpu.cr4, 0x20);
	CHECK_EQ(cpu.efer, 0x500);
	CHECK_EQ(cpu.cs_sel, 0x10);
	CHECK_EQ(cpu.ds_sel, 0x18);
	CHECK_EQ(cpu.tr_sel, 0x20);
	CHECK_EQ(cpu.gdt_base, LAYOUT_GDT);
	CHECK_EQ(cpu.gdt_limit, 47);
	check_gdt();

	/* The protected-mode part at 1 MiB, nothing after it. */
	CHECK(!memcmp(ram + 0x100000, img + SETUP_SZ, PM_SZ));
	CHECK_EQ(ram[0x100000 + PM_SZ], 0xcc);
	CHECK_EQ(ram[0x100000 - 1], 0xcc);

	/* Zero page: zeroed, the header copied up to its end, our fields set. */
	CHECK_EQ(rd(zp + 0x000, 8), 0);
	CHECK_EQ(zp[0x1f1], 1);
	CHECK_EQ(rd(zp + 0x1f4, 4), PM_SZ / 16);
	CHECK_EQ(rd(zp + 0x1fa, 2), 0xffff);
	CHECK_EQ(rd(zp + 0x1fe, 2), 0xaa55);
	CHECK(!memcmp(zp + 0x202, "HdrS", 4));
	CHECK_EQ(rd(zp + 0x206, 2), 0x020f);
	CHECK_EQ(zp[0x210], 0xff);		     /* type_of_loader */
	CHECK_EQ(zp[0x211], 0x01);		     /* loadflags */
	CHECK_EQ(rd(zp + 0x228, 4), LAYOUT_CMDLINE); /* cmd_line_ptr */
	CHECK_EQ(rd(zp + 0x230, 4), 0x200000);
	CHECK_EQ(rd(zp + 0x236, 2), 3);
	CHECK_EQ(rd(zp + 0x258, 8), PREF_ADDR);
	CHECK_EQ(rd(zp + 0x260, 4), INIT_SIZE);
	CHECK_EQ(rd(zp + 0x268, 4), 0x12345678);
	for (int i = HDR_END; i < 0x2d0; i++)
		CHECK_EQ(zp[i], 0);	/* the 0xee after the header end was not copied */
	CHECK_EQ(rd(zp + 0x0c0, 4), 0); /* ext_ramdisk_image */
	CHECK_EQ(rd(zp + 0x0c8, 4), 0); /* ext_cmd_line_ptr */

	/* Command line. */
	CHECK_STR((const char *)ram + LAYOUT_CMDLINE, cmdline);

	/* Initrd: top of RAM, page aligned, above the kernel's decompression footprint. */
	rd_addr = rd(zp + 0x218, 4);
	CHECK_EQ(rd(zp + 0x21c, 4), sizeof(initrd));
	CHECK_EQ(rd_addr % 4096, 0);
	CHECK(rd_addr + sizeof(initrd) <= RAM_SIZE);
	CHECK(rd_addr + sizeof(initrd) + 4096 > RAM_SIZE);
	CHECK(rd_addr >= PREF_ADDR + INIT_SIZE);
	CHECK(!memcmp(ram + rd_addr, initrd, sizeof(initrd)));

	/* e820 = the memory map. */
	CHECK_EQ(zp[0x1e8], map.n);
	for (unsigned int i = 0; i < map.n; i++) {
		const uint8_t *e = zp + 0x2d0 + 20 * i;

		CHECK_EQ(rd(e, 8), map.e[i].gpa);
		CHECK_EQ(rd(e + 8, 8), map.e[i].size);
		CHECK_EQ(rd(e + 16, 4), map.e[i].type);
	}
	CHECK_EQ(rd(zp + 0x2d0 + 20 * map.n, 8), 0);
	CHECK_EQ(map.e[0].type, 1);
	CHECK_EQ(map.e[1].type, 2);

	/* Identity map of 4 GiB with 2 MiB pages. */
	CHECK_EQ(rd(pt, 8), LAYOUT_PAGE_TABLES + 0x1000 + 3);
	CHECK_EQ(rd(pt + 8, 8), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(rd(pt + 0x1000 + 8 * i, 8), LAYOUT_PAGE_TABLES + 0x2000 + 0x1000 * i + 3);
	CHECK_EQ(rd(pt + 0x1000 + 8 * 4, 8), 0);
	for (uint64_t i = 0; i < 4 * 512; i++) {
		uint64_t e = rd(pt + 0x2000 + 8 * i, 8);

		if (e != ((i << 21) | 0x83))
			CHECK_EQ(e, (i << 21) | 0x83);
	}
	CHECK_EQ(rd(pt + 0x2000 + 8 * 8, 8), 0x1000083); /* 16 MiB */
	CHECK_EQ(rd(pt + 0x5ff8, 8), 0xffe00083);	 /* the last 2 MiB below 4 GiB */

	/* The MP table came along. */
	CHECK(!memcmp(ram + LAYOUT_EBDA, "_MP_", 4));

	/* Without initrd: no ramdisk fields. A command line of exactly cmdline_size fits. */
	{
		char line[CMDLINE_SZ + 1];

		memset(line, 'a', CMDLINE_SZ);
		line[CMDLINE_SZ] = 0;
		input(&in, img, sizeof(img), NULL, 0, line);
		CHECK_EQ(boot_load(&mem, &in, &cpu), 0);
		CHECK_EQ(rd(zp + 0x218, 4), 0);
		CHECK_EQ(rd(zp + 0x21c, 4), 0);
		CHECK_EQ(strlen((const char *)ram + LAYOUT_CMDLINE), CMDLINE_SZ);
	}
}

/* setup_sects = 0 means 4 (boot.rst): the kernel then starts at 5 * 512. */
static void test_setup_sects_zero(void)
{
	uint8_t img[5 * 512 + PM_SZ];
	struct boot_input in;
	struct boot_cpu cpu;

	memset(img, 0, sizeof(img));
	build(img); /* header and the first PM_SZ bytes of the longer setup area */
	img[0x1f1] = 0;
	for (int i = 0; i < PM_SZ; i++)
		img[5 * 512 + i] = (uint8_t)(i * 13 + 1);
	memset(ram, 0, RAM_SIZE);
	input(&in, img, sizeof(img), NULL, 0, "");
	CHECK_EQ(boot_load(&mem, &in, &cpu), 0);
	CHECK(!memcmp(ram + 0x100000, img + 5 * 512, PM_SZ));
	CHECK_EQ(ram[LAYOUT_CMDLINE], 0);
}

/* The initrd stays below initrd_addr_max + 1. */
static void test_initrd_addr_max(void)
{
	uint8_t img[IMG_SZ], initrd[5000];
	struct boot_input in;
	struct boot_cpu cpu;
	uint64_t a;

	build(img);
	wr(img + 0x22c, 0x17fffff, 4); /* 24 MiB - 1 */
	memset(initrd, 0x11, sizeof(initrd));
	input(&in, img, sizeof(img), initrd, sizeof(initrd), "");
	CHECK_EQ(boot_load(&mem, &in, &cpu), 0);
	a = rd(ram + LAYOUT_ZERO_PAGE + 0x218, 4);
	CHECK(a + sizeof(initrd) <= 0x1800000);
	CHECK(a + sizeof(initrd) + 4096 > 0x1800000);
	CHECK_EQ(a % 4096, 0);
}

static void test_malformed(void)
{
	uint8_t img[IMG_SZ];
	uint8_t *initrd;
	struct boot_input in;
	char *line;

	memset(ram, 0x3c, RAM_SIZE);

	build(img);
	memcpy(img + 0x202, "HdrZ", 4);
	input(&in, img, sizeof(img), NULL, 0, "");
	EXPECT_FAIL(&in, -ENOEXEC, "no \"HdrS\" magic at offset 0x202");

	build(img);
	wr(img + 0x1fe, 0x55aa, 2);
	EXPECT_FAIL(&in, -EINVAL, "boot_flag");

	build(img);
	wr(img + 0x206, 0x0205, 2);
	EXPECT_FAIL(&in, -EINVAL, "2.05 is too old");

	build(img);
	wr(img + 0x206, 0x020b, 2); /* before xloadflags */
	EXPECT_FAIL(&in, -EINVAL, "XLF_KERNEL_64");

	build(img);
	wr(img + 0x236, 0x2, 2);
	EXPECT_FAIL(&in, -EINVAL, "no 64-bit entry point");

	build(img);
	img[0x211] = 0;
	EXPECT_FAIL(&in, -EINVAL, "LOADED_HIGH");

	build(img);
	img[0x201] = 0x20; /* header too short to hold init_size */
	EXPECT_FAIL(&in, -EINVAL, "setup header ends at 0x222");

	build(img);
	img[0x201] = 0xff; /* past the zero page's header area */
	EXPECT_FAIL(&in, -EINVAL, "setup header ends");

	build(img);
	wr(img + 0x1f4, PM_SZ / 16 + 1, 4); /* syssize says the file was cut */
	EXPECT_FAIL(&in, -EINVAL, "truncated");

	build(img);
	img[0x1f1] = 2; /* setup claims the whole file */
	EXPECT_FAIL(&in, -EINVAL, "truncated");

	build(img);
	img[0x1f1] = 0xff;
	EXPECT_FAIL(&in, -EINVAL, "truncated");

	build(img);
	wr(img + 0x1f4, 0xffffffff, 4);
	EXPECT_FAIL(&in, -EINVAL, "truncated");

	/* The kernel's footprint (pref_address + init_size) is beyond RAM. */
	build(img);
	wr(img + 0x260, RAM_SIZE - PREF_ADDR + 1, 4);
	EXPECT_FAIL(&in, -E2BIG, "init_size");
	build(img);
	wr(img + 0x260, 0xffffffff, 4);
	EXPECT_FAIL(&in, -E2BIG, "init_size");
	build(img);
	wr(img + 0x258, 0xfffffffffffff000ULL, 8); /* pref_address + init_size overflows */
	EXPECT_FAIL(&in, -E2BIG, "kernel needs guest RAM");
	build(img);
	wr(img + 0x258, 0xc0000000ULL, 8); /* in the MMIO hole */
	EXPECT_FAIL(&in, -E2BIG, "kernel needs guest RAM");

	/* Command line one longer than cmdline_size, or than our area. */
	build(img);
	line = malloc(LAYOUT_CMDLINE_MAX + 10);
	memset(line, 'x', CMDLINE_SZ + 1);
	line[CMDLINE_SZ + 1] = 0;
	input(&in, img, sizeof(img), NULL, 0, line);
	EXPECT_FAIL(&in, -EINVAL, "command line is 256 characters, the limit is 255");
	wr(img + 0x238, 0xffffffff, 4);
	memset(line, 'x', LAYOUT_CMDLINE_MAX + 9);
	line[LAYOUT_CMDLINE_MAX + 9] = 0;
	EXPECT_FAIL(&in, -EINVAL, "command line is at least");
	line[LAYOUT_CMDLINE_MAX - 1] = 0; /* exactly fills the area with its NUL */
	{
		struct boot_cpu cpu;

		CHECK_EQ(boot_load(&mem, &in, &cpu), 0);
		CHECK_EQ(strlen((const char *)ram + LAYOUT_CMDLINE), LAYOUT_CMDLINE_MAX - 1);
		memset(ram, 0x3c, RAM_SIZE);
	}
	line[LAYOUT_CMDLINE_MAX - 1] = 'x';
	line[LAYOUT_CMDLINE_MAX] = 0; /* one character too many */
	EXPECT_FAIL(&in, -EINVAL, "command line");
	free(line);

	/* Initrd too big for the space between the kernel's end and the top of RAM. */
	build(img);
	initrd = calloc(1, RAM_SIZE);
	input(&in, img, sizeof(img), initrd, RAM_SIZE - (PREF_ADDR + INIT_SIZE) + 1, "");
	EXPECT_FAIL(&in, -E2BIG, "initrd");
	input(&in, img, sizeof(img), initrd, RAM_SIZE, "");
	EXPECT_FAIL(&in, -E2BIG, "initrd");
	wr(img + 0x22c, PREF_ADDR + INIT_SIZE + 100, 4); /* initrd_addr_max leaves no room */
	input(&in, img, sizeof(img), initrd, 4096, "");
	EXPECT_FAIL(&in, -E2BIG, "initrd");
	input(&in, img, sizeof(img), initrd, RAM_SIZE - (PREF_ADDR + INIT_SIZE), "");
	wr(img + 0x22c, 0x7fffffff, 4); /* exactly fits */
	{
		struct boot_cpu cpu;

		CHECK_EQ(boot_load(&mem, &in, &cpu), 0);
		CHECK_EQ(rd(ram + LAYOUT_ZERO_PAGE + 0x218, 4), PREF_ADDR + INIT_SIZE);
		memset(ram, 0x3c, RAM_SIZE);
	}
	free(initrd);

	/* Bad inputs besides the image. */
	build(img);
	input(&in, img, sizeof(img), NULL, 0, "");
	in.ncpus = 0;
	EXPECT_FAIL(&in, -EINVAL, "0 CPUs");
	in.ncpus = MPTABLE_MAX_CPUS + 1;
	EXPECT_FAIL(&in, -EINVAL, "255 CPUs");
	in.ncpus = 1;
	in.initrd_len = 5; /* with a NULL initrd */
	EXPECT_FAIL(&in, -EINVAL, NULL);
}

static void test_not_a_kernel(void)
{
	static const char text[] = "#!/bin/sh\necho this is not a kernel\n";
	uint8_t big[4096];
	struct boot_input in;
	enum boot_kind kind;

	memset(ram, 0x3c, RAM_SIZE);
	input(&in, (const uint8_t *)text, sizeof(text) - 1, NULL, 0, "");
	EXPECT_FAIL(&in, -ENOEXEC,
		    "not a Linux bzImage (no \"HdrS\" magic at offset 0x202) and "
		    "not a PVH ELF (not an ELF64/ELF32 x86 file with a "
		    "XEN_ELFNOTE_PHYS32_ENTRY note)");
	CHECK_EQ(boot_detect((const uint8_t *)text, sizeof(text) - 1, &kind), -ENOEXEC);
	input(&in, (const uint8_t *)text, 0, NULL, 0, "");
	EXPECT_FAIL(&in, -ENOEXEC, "HdrS");
	memset(big, 0, sizeof(big));
	input(&in, big, sizeof(big), NULL, 0, "");
	EXPECT_FAIL(&in, -ENOEXEC, "HdrS");
	CHECK_EQ(boot_detect(big, sizeof(big), &kind), -ENOEXEC);
}

/* Every prefix of a valid image fails cleanly: exact-size heap copies so that ASan sees any
 * read past the end, and read-only guest RAM so that any write faults. */
static void test_truncations(void)
{
	uint8_t img[IMG_SZ];
	struct boot_input in;
	struct boot_cpu cpu;
	enum boot_kind kind;

	build(img);
	memset(ram, 0, RAM_SIZE);
	CHECK_EQ(mprotect(ram, RAM_SIZE, PROT_READ), 0);
	for (size_t len = 0; len < sizeof(img); len++) {
		uint8_t *p = malloc(len ? len : 1);
		int ret;

		memcpy(p, img, len);
		input(&in, p, len, NULL, 0, "");
		quiet_begin();
		ret = boot_load(&mem, &in, &cpu);
		quiet_end();
		if (ret != (len < 0x206 ? -ENOEXEC : -EINVAL))
			fprintf(stderr, "prefix %zu: %d\n", len, ret);
		CHECK_EQ(ret, len < 0x206 ? -ENOEXEC : -EINVAL);
		CHECK_EQ(boot_detect(p, len, &kind), len < 0x206 ? -ENOEXEC : 0);
		free(p);
	}
	CHECK_EQ(mprotect(ram, RAM_SIZE, PROT_READ | PROT_WRITE), 0);
	input(&in, img, sizeof(img), NULL, 0, "");
	CHECK_EQ(boot_load(&mem, &in, &cpu), 0);
}

/* Guest RAM that lacks the low areas: a clean -EFAULT, no crash. */
static void test_no_low_ram(void)
{
	struct guest_mem high;
	uint8_t img[IMG_SZ];
	struct boot_input in;
	struct boot_cpu cpu;
	const char *msg;

	build(img);
	guest_mem_init(&high);
	CHECK_EQ(guest_mem_add(&high, LAYOUT_LEGACY_HOLE_END, RAM_SIZE - LAYOUT_LEGACY_HOLE_END,
			       ram + LAYOUT_LEGACY_HOLE_END),
		 0);
	memset(ram, 0x3c, RAM_SIZE);
	memcpy(snap, ram, RAM_SIZE);
	input(&in, img, sizeof(img), NULL, 0, "");
	quiet_begin();
	CHECK_EQ(boot_load(&high, &in, &cpu), -EFAULT);
	msg = quiet_end();
	CHECK(strstr(msg, "not in guest RAM") != NULL);
	CHECK(!memcmp(snap, ram, RAM_SIZE));
}

int main(void)
{
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	snap = malloc(RAM_SIZE);
	if (ram == MAP_FAILED || !snap)
		return T_EXIT_FAIL;
	guest_mem_init(&mem);
	CHECK_EQ(guest_mem_add(&mem, 0, RAM_SIZE, ram), 0);
	CHECK_EQ(memmap_build(RAM_SIZE, &map), 0);

	test_good();
	test_setup_sects_zero();
	test_initrd_addr_max();
	test_malformed();
	test_not_a_kernel();
	test_truncations();
	test_no_low_ram();

	munmap(ram, RAM_SIZE);
	free(snap);
	return t_done();
}
