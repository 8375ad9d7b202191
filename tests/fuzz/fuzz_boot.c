/* fuzz_boot.c: libFuzzer target for the boot loaders (boot/: bzImage and PVH/ELF, with the
 * command line, the initrd, the GDT, page tables and MP table they write). The input is the
 * kernel image plus a command line, an initrd and the shape of guest RAM. Whatever the bytes,
 * boot_load() must return 0 or one of the errors boot.h lists, never read outside the image (a
 * heap buffer of exactly its size: ASan) or past the initrd (it ends at a PROT_NONE guard
 * page) and never write outside guest RAM (a mapping between PROT_NONE guard pages, with the
 * legacy hole PROT_NONE too when it is not RAM: a stray write faults). boot_detect() must agree
 * with a successful load about the format.
 *
 * Input layout: an 8-byte header
 *   [0]     bit 0 an initrd, bit 1 RAM with the legacy hole unbacked (two regions),
 *           bits 2-3 vCPUs (1, 2, 64, 0), bit 4 a 16 MiB memory map instead of 32 MiB,
 *           bit 5 a huge initrd (its size below times 512: up to 32 MiB)
 *   [1..2]  command-line bytes that follow (NUL-terminated at that length)
 *   [3..4]  initrd size (its bytes repeat the input's initrd bytes that follow)
 *   [5]     unused
 *   [6]     initrd bytes that follow in the input (0-255)
 *   [7]     unused
 * then the command line, the initrd bytes, and the kernel image (the rest). */
#include <errno.h>
#include <sanitizer/common_interface_defs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "boot/boot.h"
#include "core/guest_mem.h"
#include "core/layout.h"
#include "core/memmap.h"

#define RAM_SIZE (32ULL << 20)
#define GUARD	 4096ULL
#define HDR	 8
#define RD_MAX	 (32ULL << 20)

static uint8_t *ram, *rd_buf;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Guest RAM for the whole run, between two guard pages; never unmapped. */
	uint8_t *m = mmap(NULL, RAM_SIZE + 2 * GUARD, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
			  MAP_NORESERVE, -1, 0);

	if (m == MAP_FAILED || mprotect(m + GUARD, RAM_SIZE, PROT_READ | PROT_WRITE))
		abort();
	ram = m + GUARD;
	/* The initrd buffer likewise (an initrd is placed at its end). */
	m = mmap(NULL, RD_MAX + GUARD, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
		 0);
	if (m == MAP_FAILED || mprotect(m, RD_MAX, PROT_READ | PROT_WRITE))
		abort();
	rd_buf = m;
	return 0;
}

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_boot: invariant broken: %s\n", why);
	/* Also where libFuzzer reports, which -close_fd_mask=2 leaves open. */
	__sanitizer_report_error_summary(why);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned int cpus[] = {1, 2, 64, 0};
	struct guest_mem mem;
	struct memmap map;
	struct boot_input in;
	struct boot_cpu cpu;
	enum boot_kind kind;
	size_t cmd_len, rd_len, rd_bytes, off = HDR, k_len;
	uint8_t *kernel, *initrd = NULL;
	char *cmdline;
	int ret, det;

	if (size < HDR)
		return 0;
	cmd_len = (size_t)(data[1] | data[2] << 8);
	rd_len = (size_t)(data[3] | data[4] << 8);
	if (data[0] & 0x20)
		rd_len <<= 9;
	rd_bytes = data[6];
	if (cmd_len > size - off)
		cmd_len = size - off;
	cmdline = malloc(cmd_len + 1);
	if (!cmdline)
		abort();
	memcpy(cmdline, data + off, cmd_len);
	cmdline[cmd_len] = 0;
	off += cmd_len;
	if (rd_bytes > size - off)
		rd_bytes = size - off;
	if ((data[0] & 1) && rd_len) {
		/* At the end of its buffer, before a guard page: a read past it faults. */
		initrd = rd_buf + RD_MAX - rd_len;
		/* The pattern, then doubling copies of it (cheap for megabytes). */
		if (!rd_bytes) {
			memset(initrd, 0, rd_len);
		} else {
			size_t have = rd_bytes < rd_len ? rd_bytes : rd_len;

			memcpy(initrd, data + off, have);
			while (have < rd_len) {
				size_t n = have < rd_len - have ? have : rd_len - have;

				memcpy(initrd + have, initrd, n);
				have += n;
			}
		}
	}
	off += rd_bytes;
	k_len = size - off;
	kernel = malloc(k_len ? k_len : 1);
	if (!kernel)
		abort();
	memcpy(kernel, data + off, k_len);

	guest_mem_init(&mem);
	if (data[0] & 2) {
		/* The hole is not RAM: make it fault too. */
		if (mprotect(ram + 0x9f000, LAYOUT_LEGACY_HOLE_END - 0x9f000, PROT_NONE))
			abort();
		if (guest_mem_add(&mem, 0, 0x9f000, ram) ||
		    guest_mem_add(&mem, LAYOUT_LEGACY_HOLE_END, RAM_SIZE - LAYOUT_LEGACY_HOLE_END,
				  ram + LAYOUT_LEGACY_HOLE_END))
			abort();
	} else if (guest_mem_add(&mem, 0, RAM_SIZE, ram)) {
		abort();
	}
	if (memmap_build(data[0] & 0x10 ? 16ULL << 20 : RAM_SIZE, &map))
		abort();
	in = (struct boot_input){
		.kernel = kernel,
		.kernel_len = k_len,
		.initrd = initrd,
		.initrd_len = initrd ? rd_len : 0,
		.cmdline = cmdline,
		.map = &map,
		.ncpus = cpus[(data[0] >> 2) & 3],
	};
	det = boot_detect(kernel, k_len, &kind);
	ret = boot_load(&mem, &in, &cpu);
	if (ret != 0 && ret != -ENOEXEC && ret != -EINVAL && ret != -E2BIG && ret != -EFAULT)
		fail("boot_load returned an error boot.h does not list");
	if (ret == 0 && (det != 0 || kind != cpu.kind))
		fail("boot_load loaded an image boot_detect does not recognize as that format");
	if (det != 0 && ret == 0)
		fail("boot_load loaded an image boot_detect refused");
	if ((data[0] & 2) && mprotect(ram + 0x9f000, LAYOUT_LEGACY_HOLE_END - 0x9f000,
				      PROT_READ | PROT_WRITE))
		abort();
	free(kernel);
	free(cmdline);
	return 0;
}
