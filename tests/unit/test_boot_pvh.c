/* test_boot_pvh.c: boot_load() on synthetic PVH ELF kernels (ELF64 and ELF32): the loaded
 * segment and its zeroed bss, hvm_start_info with its memory map and module list (Xen
 * start_info.h), the GDT and the 32-bit entry state (PVH ABI); then hostile headers, notes and
 * segments, every truncation, random corruption, and guest memory untouched after each
 * failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot/boot.h"
#include "core/guest_mem.h"
#include "core/layout.h"
#include "core/memmap.h"
#include "test.h"
#include "test_log.h"

#define RAM_SIZE	      (32ULL << 20)
#define SEG_PADDR	      0x100000ULL
#define SEG_FILESZ	      64
#define SEG_MEMSZ	      0x3000ULL
#define ENTRY		      (SEG_PADDR + 0x10)
#define IMG_MAX		      512
#define XEN_NOTE_PHYS32_ENTRY 18 /* Xen public/elfnote.h */

static uint8_t *ram;
static uint8_t *snap;
static struct guest_mem mem;
static struct memmap map;

static uint64_t rd(const uint8_t *p, int size)
{
	uint64_t v = 0;

	memcpy(&v, p, size); /* little-endian host, as the guest */
	return v;
}

static void wr(uint8_t *p, uint64_t v, int size)
{
	memcpy(p, &v, size);
}

/* A synthetic image and where its parts are, so tests can corrupt them. */
struct img {
	uint8_t b[IMG_MAX];
	size_t len;
	bool is64;
	size_t phoff, phentsize;
	size_t note_xen; /* offset of the Xen note's namesz */
	size_t data;	 /* offset of the segment data */
};

/* ELF header, PT_LOAD, PT_NOTE; a "Linux" note (odd sizes, exercising the padding), the Xen
 * PHYS32_ENTRY note; then the segment data. The data comes last so that every truncation cuts
 * something the loader needs. */
static void build(struct img *m, bool is64)
{
	static const uint8_t linux_note[] = {6,	  0,   0,   0,	 3,   0, 0, 0, 1, 1, 0, 0,
					     'L', 'i', 'n', 'u', 'x', 0, 0, 0, 7, 7, 7, 0};
	size_t ehsize = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t notes, xen_len = is64 ? 24 : 20;

	memset(m, 0, sizeof(*m));
	m->is64 = is64;
	m->phoff = ehsize;
	m->phentsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	notes = m->phoff + 2 * m->phentsize;
	m->note_xen = notes + sizeof(linux_note);
	m->data = m->note_xen + xen_len;
	m->len = m->data + SEG_FILESZ;

	memcpy(m->b + notes, linux_note, sizeof(linux_note));
	wr(m->b + m->note_xen, 4, 4);
	wr(m->b + m->note_xen + 4, is64 ? 8 : 4, 4);
	wr(m->b + m->note_xen + 8, XEN_NOTE_PHYS32_ENTRY, 4);
	memcpy(m->b + m->note_xen + 12, "Xen", 4);
	wr(m->b + m->note_xen + 16, ENTRY, is64 ? 8 : 4);
	for (int i = 0; i < SEG_FILESZ; i++)
		m->b[m->data + i] = (uint8_t)(0x90 + i);

	if (is64) {
		Elf64_Ehdr e = {.e_type = ET_EXEC,
				.e_machine = EM_X86_64,
				.e_version = EV_CURRENT,
				.e_entry = 0xffffffff81000000ULL,
				.e_phoff = m->phoff,
				.e_ehsize = ehsize,
				.e_phentsize = m->phentsize,
				.e_phnum = 2};
		Elf64_Phdr ph[2] = {
			{.p_type = PT_LOAD,
			 .p_flags = PF_R | PF_X,
			 .p_offset = m->data,
			 .p_vaddr = 0xffffffff81000000ULL,
			 .p_paddr = SEG_PADDR,
			 .p_filesz = SEG_FILESZ,
			 .p_memsz = SEG_MEMSZ,
			 .p_align = 4096},
			{.p_type = PT_NOTE,
			 .p_offset = notes,
			 .p_filesz = m->data - notes,
			 .p_memsz = m->data - notes,
			 .p_align = 4},
		};

		memcpy(e.e_ident, ELFMAG, SELFMAG);
		e.e_ident[EI_CLASS] = ELFCLASS64;
		e.e_ident[EI_DATA] = ELFDATA2LSB;
		e.e_ident[EI_VERSION] = EV_CURRENT;
		memcpy(m->b, &e, sizeof(e));
		memcpy(m->b + m->phoff, ph, sizeof(ph));
	} else {
		Elf32_Ehdr e = {.e_type = ET_EXEC,
				.e_machine = EM_386,
				.e_version = EV_CURRENT,
				.e_entry = ENTRY,
				.e_phoff = m->phoff,
				.e_ehsize = ehsize,
				.e_phentsize = m->phentsize,
				.e_phnum = 2};
		Elf32_Phdr ph[2] = {
			{.p_type = PT_LOAD,
			 .p_flags = PF_R | PF_X,
			 .p_offset = m->data,
			 .p_vaddr = SEG_PADDR,
			 .p_paddr = SEG_PADDR,
			 .p_filesz = SEG_FILESZ,
			 .p_memsz = SEG_MEMSZ,
			 .p_align = 4096},
			{.p_type = PT_NOTE,
			 .p_offset = notes,
			 .p_filesz = m->data - notes,
			 .p_memsz = m->data - notes,
			 .p_align = 4},
		};

		memcpy(e.e_ident, ELFMAG, SELFMAG);
		e.e_ident[EI_CLASS] = ELFCLASS32;
		e.e_ident[EI_DATA] = ELFDATA2LSB;
		e.e_ident[EI_VERSION] = EV_CURRENT;
		memcpy(m->b, &e, sizeof(e));
		memcpy(m->b + m->phoff, ph, sizeof(ph));
	}
}

/* Sets a program header field of either class. */
#define PH_SET(m, i, field, v)                                                                     \
	do {                                                                                       \
		if ((m)->is64)                                                                     \
			wr((m)->b + (m)->phoff + (i) * (m)->phentsize +                            \
				   offsetof(Elf64_Phdr, field),                                    \
			   (v), sizeof(((Elf64_Phdr *)0)->field));                                 \
		else                                                                               \
			wr((m)->b + (m)->phoff + (i) * (m)->phentsize +                            \
				   offsetof(Elf32_Phdr, field),                                    \
			   (v), sizeof(((Elf32_Phdr *)0)->field));                                 \
	} while (0)

#define EH_SET(m, field, v)                                                                        \
	do {                                                                                       \
		if ((m)->is64)                                                                     \
			wr((m)->b + offsetof(Elf64_Ehdr, field), (v),                              \
			   sizeof(((Elf64_Ehdr *)0)->field));                                      \
		else                                                                               \
			wr((m)->b + offsetof(Elf32_Ehdr, field), (v),                              \
			   sizeof(((Elf32_Ehdr *)0)->field));                                      \
	} while (0)

/* Moves the PT_LOAD segment and the entry point with it, so that only placement is wrong. */
static void move_segment(struct img *m, uint64_t paddr)
{
	PH_SET(m, 0, p_paddr, paddr);
	wr(m->b + m->note_xen + 16, paddr + (ENTRY - SEG_PADDR), m->is64 ? 8 : 4);
}

static void input(struct boot_input *in, const uint8_t *k, size_t len, const uint8_t *initrd,
		  size_t initrd_len, const char *cmdline)
{
	*in = (struct boot_input){.kernel = k,
				  .kernel_len = len,
				  .initrd = initrd,
				  .initrd_len = initrd_len,
				  .cmdline = cmdline,
				  .map = &map,
				  .ncpus = 4};
}

/* Expects boot_load() to fail with (err), to log one line containing (needle), and to leave
 * guest memory exactly as it was. */
static void expect_fail(const struct img *m, int err, const char *needle, int line)
{
	struct boot_input in;
	struct boot_cpu cpu;
	const char *msg;
	uint8_t *k = malloc(m->len);
	int ret;

	memcpy(k, m->b, m->len); /* exact size: ASan catches reads past the end */
	input(&in, k, m->len, NULL, 0, "console=ttyS0");
	memcpy(snap, ram, RAM_SIZE);
	quiet_begin();
	ret = boot_load(&mem, &in, &cpu);
	msg = quiet_end();
	if (ret != err || (needle && !strstr(msg, needle)))
		fprintf(stderr, "line %d (%s): ret %d (want %d), log \"%s\" (want \"%s\")\n", line,
			m->is64 ? "ELF64" : "ELF32", ret, err, msg, needle ? needle : "");
	CHECK_EQ(ret, err);
	CHECK(!needle || strstr(msg, needle));
	CHECK(strchr(msg, '\n') && strchr(msg, '\n') == msg + strlen(msg) - 1);
	CHECK(!memcmp(snap, ram, RAM_SIZE));
	free(k);
}

#define EXPECT_FAIL(m, err, needle) expect_fail(m, err, needle, __LINE__)

static void check_gdt(void)
{
	const uint8_t *g = ram + LAYOUT_GDT;

	CHECK_EQ(rd(g + 0x00, 8), 0);
	CHECK_EQ(rd(g + 0x08, 8), 0x00cf9b000000ffffULL); /* flat 32-bit code */
	CHECK_EQ(rd(g + 0x18, 8), 0x00cf93000000ffffULL); /* flat data */
	CHECK_EQ(rd(g + 0x20, 8), 0x00008b0000000067ULL); /* busy TSS, base 0, limit 0x67 */
}

static void test_good(bool is64)
{
	static const char cmdline[] = "console=ttyS0 root=/dev/vda";
	const uint8_t *si = ram + LAYOUT_PVH_START_INFO, *mm, *mod;
	uint8_t initrd[6000];
	struct boot_input in;
	struct boot_cpu cpu;
	enum boot_kind kind;
	struct img m;
	uint64_t a;

	build(&m, is64);
	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 3);
	memset(ram, 0xcc, RAM_SIZE);
	CHECK_EQ(boot_detect(m.b, m.len, &kind), 0);
	CHECK_EQ(kind, BOOT_KIND_PVH);
	input(&in, m.b, m.len, is64 ? initrd : NULL, is64 ? sizeof(initrd) : 0, cmdline);
	CHECK_EQ(boot_load(&mem, &in, &cpu), 0);

	/* PVH ABI entry state. */
	CHECK_EQ(cpu.kind, BOOT_KIND_PVH);
	CHECK_EQ(cpu.long_mode, 0);
	CHECK_EQ(cpu.rip, ENTRY);
	CHECK_EQ(cpu.rbx, LAYOUT_PVH_START_INFO);
	CHECK_EQ(cpu.rflags, 2);
	CHECK_EQ(cpu.cr0 & ~0x10ULL, 1); /* PE; ET is hardwired */
	CHECK_EQ(cpu.cr3, 0);
	CHECK_EQ(cpu.cr4, 0);
	CHECK_EQ(cpu.efer, 0);
	CHECK_EQ(cpu.cs_sel, 0x08);
	CHECK_EQ(cpu.ds_sel, 0x18);
	CHECK_EQ(cpu.tr_sel, 0x20);
	CHECK_EQ(cpu.gdt_base, LAYOUT_GDT);
	CHECK_EQ(cpu.gdt_limit, 47);
	check_gdt();

	/* The segment: file bytes, then zeros up to p_memsz, nothing beyond. */
	CHECK(!memcmp(ram + SEG_PADDR, m.b + m.data, SEG_FILESZ));
	for (uint64_t i = SEG_FILESZ; i < SEG_MEMSZ; i++)
		if (ram[SEG_PADDR + i])
			CHECK_EQ(ram[SEG_PADDR + i], 0);
	CHECK_EQ(ram[SEG_PADDR + SEG_MEMSZ], 0xcc);
	CHECK_EQ(ram[SEG_PADDR - 1], 0xcc);

	/* hvm_start_info, version 1. */
	CHECK_EQ(rd(si + 0, 4), 0x336ec578);
	CHECK_EQ(rd(si + 4, 4), 1);
	CHECK_EQ(rd(si + 8, 4), 0);
	CHECK_EQ(rd(si + 12, 4), is64 ? 1 : 0);
	CHECK_EQ(rd(si + 24, 8), LAYOUT_CMDLINE);
	CHECK_EQ(rd(si + 32, 8), 0); /* no RSDP */
	CHECK_EQ(rd(si + 48, 4), map.n);
	CHECK_EQ(rd(si + 52, 4), 0);
	CHECK_STR((const char *)ram + LAYOUT_CMDLINE, cmdline);

	mm = ram + rd(si + 40, 8);
	CHECK(rd(si + 40, 8) >= LAYOUT_PVH_START_INFO + 56);
	CHECK(rd(si + 40, 8) + 24 * map.n <= LAYOUT_ZERO_PAGE);
	for (unsigned int i = 0; i < map.n; i++) {
		CHECK_EQ(rd(mm + 24 * i, 8), map.e[i].gpa);
		CHECK_EQ(rd(mm + 24 * i + 8, 8), map.e[i].size);
		CHECK_EQ(rd(mm + 24 * i + 16, 4), map.e[i].type);
		CHECK_EQ(rd(mm + 24 * i + 20, 4), 0);
	}

	if (is64) {
		CHECK(rd(si + 16, 8) >= rd(si + 40, 8) + 24 * map.n);
		CHECK(rd(si + 16, 8) + 32 <= LAYOUT_ZERO_PAGE);
		mod = ram + rd(si + 16, 8);
		a = rd(mod, 8);
		CHECK_EQ(rd(mod + 8, 8), sizeof(initrd));
		CHECK_EQ(rd(mod + 16, 8), 0);
		CHECK_EQ(rd(mod + 24, 8), 0);
		CHECK_EQ(a % 4096, 0);
		CHECK(a >= SEG_PADDR + SEG_MEMSZ);
		CHECK(a + sizeof(initrd) <= RAM_SIZE);
		CHECK(a + sizeof(initrd) + 4096 > RAM_SIZE);
		CHECK(!memcmp(ram + a, initrd, sizeof(initrd)));
	} else {
		CHECK_EQ(rd(si + 16, 8), 0);
	}
	CHECK(!memcmp(ram + LAYOUT_EBDA, "_MP_", 4));
}

/* A 4-byte descriptor on ELF64 is fine too (the upper half becomes padding). */
static void test_short_desc(void)
{
	struct boot_input in;
	struct boot_cpu cpu;
	struct img m;

	build(&m, true);
	wr(m.b + m.note_xen + 4, 4, 4);
	input(&in, m.b, m.len, NULL, 0, "");
	memset(ram, 0, RAM_SIZE);
	CHECK_EQ(boot_load(&mem, &in, &cpu), 0);
	CHECK_EQ(cpu.rip, ENTRY);
}

/* A third program header (the PT_NOTE) after two PT_LOADs, built by hand. */
static void test_two_segments(void)
{
	uint8_t k[IMG_MAX + 64], initrd[100];
	struct boot_input in;
	struct boot_cpu cpu;
	struct img m;
	Elf64_Phdr ph[3];
	const uint8_t *si = ram + LAYOUT_PVH_START_INFO;
	uint64_t a;

	build(&m, true);
	/* Shift everything after the header table by one entry. */
	memset(k, 0, sizeof(k));
	memcpy(k, m.b, m.phoff);
	memcpy(ph, m.b + m.phoff, 2 * sizeof(Elf64_Phdr));
	ph[2] = ph[1];
	ph[2].p_offset += sizeof(Elf64_Phdr);
	ph[0].p_offset += sizeof(Elf64_Phdr);
	ph[1] = ph[0];
	ph[1].p_paddr = 0x400000;
	ph[1].p_filesz = 16;
	ph[1].p_memsz = 0x1001;
	memcpy(k + m.phoff, ph, sizeof(ph));
	memcpy(k + m.phoff + sizeof(ph), m.b + m.phoff + 2 * sizeof(Elf64_Phdr),
	       m.len - m.phoff - 2 * sizeof(Elf64_Phdr));
	wr(k + offsetof(Elf64_Ehdr, e_phnum), 3, 2);
	memset(initrd, 0x77, sizeof(initrd));
	input(&in, k, m.len + sizeof(Elf64_Phdr), initrd, sizeof(initrd), "");
	memset(ram, 0xcc, RAM_SIZE);
	CHECK_EQ(boot_load(&mem, &in, &cpu), 0);
	CHECK(!memcmp(ram + SEG_PADDR, m.b + m.data, SEG_FILESZ));
	CHECK(!memcmp(ram + 0x400000, m.b + m.data, 16));
	CHECK_EQ(ram[0x400000 + 16], 0);
	CHECK_EQ(ram[0x400000 + 0x1000], 0);
	CHECK_EQ(ram[0x400000 + 0x1001], 0xcc);
	a = rd(ram + rd(si + 16, 8), 8);
	CHECK(a >= 0x402000);
	CHECK(!memcmp(ram + a, initrd, sizeof(initrd)));
}

static void test_malformed(bool is64)
{
	struct img m;
	uint64_t big = is64 ? UINT64_MAX : UINT32_MAX;

	memset(ram, 0x3c, RAM_SIZE);

	build(&m, is64);
	EH_SET(&m, e_phoff, m.len); /* table starts at the end of the file */
	EXPECT_FAIL(&m, -EINVAL, "program header table lies outside the file");
	build(&m, is64);
	EH_SET(&m, e_phoff, big - 8);
	EXPECT_FAIL(&m, -EINVAL, "program header table lies outside the file");
	build(&m, is64);
	EH_SET(&m, e_phnum, 200);
	EXPECT_FAIL(&m, -EINVAL, "program header table lies outside the file");
	build(&m, is64);
	EH_SET(&m, e_phnum, 0);
	EXPECT_FAIL(&m, -EINVAL, "no program headers");
	build(&m, is64);
	EH_SET(&m, e_phnum, PN_XNUM);
	EXPECT_FAIL(&m, -EINVAL, "PN_XNUM");
	build(&m, is64);
	EH_SET(&m, e_phentsize, m.phentsize - 1);
	EXPECT_FAIL(&m, -EINVAL, "e_phentsize");

	build(&m, is64);
	PH_SET(&m, 0, p_offset, big - 10); /* p_offset + p_filesz overflows */
	EXPECT_FAIL(&m, -EINVAL, "PT_LOAD segment's data lies outside the file");
	build(&m, is64);
	PH_SET(&m, 0, p_filesz, big);
	PH_SET(&m, 0, p_memsz, big);
	EXPECT_FAIL(&m, -EINVAL, "PT_LOAD segment's data lies outside the file");
	build(&m, is64);
	PH_SET(&m, 0, p_filesz, SEG_FILESZ + 1); /* one byte past the end of the file */
	EXPECT_FAIL(&m, -EINVAL, "outside the file");
	build(&m, is64);
	PH_SET(&m, 0, p_memsz, SEG_FILESZ - 1);
	EXPECT_FAIL(&m, -EINVAL, "p_filesz larger than p_memsz");
	build(&m, is64);
	move_segment(&m, big - 0x1000); /* paddr + memsz wraps (in 64 bits) */
	if (is64)
		EXPECT_FAIL(&m, -EINVAL, "wraps around");
	else
		EXPECT_FAIL(&m, -E2BIG, "outside guest RAM");

	/* Segments against guest RAM. */
	build(&m, is64);
	move_segment(&m, RAM_SIZE - 0x1000); /* runs off the end of RAM */
	EXPECT_FAIL(&m, -E2BIG, "outside guest RAM");
	build(&m, is64);
	move_segment(&m, LAYOUT_MMIO_HOLE);
	EXPECT_FAIL(&m, -E2BIG, "outside guest RAM");
	build(&m, is64);
	PH_SET(&m, 0, p_memsz, RAM_SIZE);
	EXPECT_FAIL(&m, -E2BIG, "outside guest RAM");
	build(&m, is64);
	move_segment(&m, 0x90000); /* below 1 MiB */
	EXPECT_FAIL(&m, -EINVAL, "below 1 MiB");
	build(&m, is64);
	move_segment(&m, 0);
	EXPECT_FAIL(&m, -EINVAL, "below 1 MiB");
	build(&m, is64);
	move_segment(&m, LAYOUT_LEGACY_HOLE_END - SEG_MEMSZ); /* ends right at 1 MiB */
	EXPECT_FAIL(&m, -EINVAL, "below 1 MiB");

	/* Notes. */
	build(&m, is64);
	wr(m.b + m.note_xen, 0xffffffff, 4); /* namesz */
	EXPECT_FAIL(&m, -EINVAL, "runs past the end of its PT_NOTE segment");
	build(&m, is64);
	wr(m.b + m.note_xen, 0xfffffffd, 4); /* namesz that wraps a 32-bit ALIGN_UP */
	EXPECT_FAIL(&m, -EINVAL, "runs past the end");
	build(&m, is64);
	wr(m.b + m.note_xen + 4, 0xffffffff, 4); /* descsz */
	EXPECT_FAIL(&m, -EINVAL, "runs past the end");
	build(&m, is64);
	wr(m.b + m.note_xen + 4, (is64 ? 8 : 4) + 1, 4); /* one byte past the segment */
	EXPECT_FAIL(&m, -EINVAL, "runs past the end");
	build(&m, is64);
	PH_SET(&m, 1, p_filesz, 1000); /* PT_NOTE beyond the file */
	EXPECT_FAIL(&m, -EINVAL, "PT_NOTE segment lies outside the file");
	build(&m, is64);
	PH_SET(&m, 1, p_offset, big);
	EXPECT_FAIL(&m, -EINVAL, "PT_NOTE segment lies outside the file");
	build(&m, is64);
	wr(m.b + m.note_xen + 8, 17, 4); /* another Xen note type */
	EXPECT_FAIL(&m, -ENOEXEC, "not a PVH ELF (no XEN_ELFNOTE_PHYS32_ENTRY note");
	build(&m, is64);
	memcpy(m.b + m.note_xen + 12, "Xem", 4);
	EXPECT_FAIL(&m, -ENOEXEC, "no XEN_ELFNOTE_PHYS32_ENTRY note");
	build(&m, is64);
	PH_SET(&m, 1, p_type, PT_NULL); /* no PT_NOTE at all */
	EXPECT_FAIL(&m, -ENOEXEC, "no XEN_ELFNOTE_PHYS32_ENTRY note");
	build(&m, is64);
	PH_SET(&m, 1, p_filesz, m.note_xen - (m.phoff + 2 * m.phentsize) + 11); /* cut header */
	EXPECT_FAIL(&m, -ENOEXEC, "no XEN_ELFNOTE_PHYS32_ENTRY note");
	build(&m, is64);
	wr(m.b + m.note_xen + 4, 2, 4); /* descsz neither 4 nor 8 */
	EXPECT_FAIL(&m, -EINVAL, "neither 4 nor 8 bytes");
	if (is64) {
		build(&m, is64);
		wr(m.b + m.note_xen + 16, 0x100000000ULL + ENTRY, 8);
		EXPECT_FAIL(&m, -EINVAL, "above 4 GiB");
	}
	build(&m, is64);
	wr(m.b + m.note_xen + 16, SEG_PADDR + SEG_FILESZ, 4); /* entry in the bss */
	EXPECT_FAIL(&m, -EINVAL, "entry point is not inside a loaded segment");
	build(&m, is64);
	wr(m.b + m.note_xen + 16, SEG_PADDR - 1, 4);
	EXPECT_FAIL(&m, -EINVAL, "entry point is not inside a loaded segment");
	build(&m, is64);
	PH_SET(&m, 0, p_type, PT_NULL);
	EXPECT_FAIL(&m, -EINVAL, "no PT_LOAD segment");
	build(&m, is64);
	PH_SET(&m, 0, p_memsz, 0); /* empty segments are skipped... */
	PH_SET(&m, 0, p_filesz, 0);
	EXPECT_FAIL(&m, -EINVAL, "no PT_LOAD segment"); /* ...leaving none */

	/* ELF header. */
	build(&m, is64);
	EH_SET(&m, e_machine, EM_AARCH64);
	EXPECT_FAIL(&m, -ENOEXEC, "not a PVH ELF (ELF machine is neither EM_X86_64 nor EM_386)");
	build(&m, is64);
	EH_SET(&m, e_type, ET_DYN);
	EXPECT_FAIL(&m, -ENOEXEC, "ET_EXEC");
	build(&m, is64);
	m.b[EI_CLASS] = 3;
	EXPECT_FAIL(&m, -ENOEXEC, "ELF class");
	build(&m, is64);
	m.b[EI_DATA] = ELFDATA2MSB;
	EXPECT_FAIL(&m, -ENOEXEC, "little-endian");
	build(&m, is64);
	m.b[1] = 'e';
	EXPECT_FAIL(&m, -ENOEXEC, "not an ELF64/ELF32 x86 file with a XEN_ELFNOTE_PHYS32_ENTRY");
}

/* Inputs besides the image that must also leave memory untouched. */
static void test_bad_inputs(void)
{
	struct boot_input in;
	struct boot_cpu cpu;
	const char *msg;
	uint8_t *initrd;
	char *line;
	struct img m;

	build(&m, true);
	memset(ram, 0x3c, RAM_SIZE);
	memcpy(snap, ram, RAM_SIZE);

	line = malloc(LAYOUT_CMDLINE_MAX + 1);
	memset(line, 'y', LAYOUT_CMDLINE_MAX);
	line[LAYOUT_CMDLINE_MAX] = 0;
	input(&in, m.b, m.len, NULL, 0, line);
	quiet_begin();
	CHECK_EQ(boot_load(&mem, &in, &cpu), -EINVAL);
	msg = quiet_end();
	CHECK(strstr(msg, "command line is at least 65536 characters, the limit is 65535"));
	CHECK(!memcmp(snap, ram, RAM_SIZE));
	line[LAYOUT_CMDLINE_MAX - 1] = 0; /* the longest that fits */
	CHECK_EQ(boot_load(&mem, &in, &cpu), 0);
	CHECK_EQ(strlen((const char *)ram + LAYOUT_CMDLINE), LAYOUT_CMDLINE_MAX - 1);
	free(line);

	memset(ram, 0x3c, RAM_SIZE);
	memcpy(snap, ram, RAM_SIZE);
	initrd = calloc(1, RAM_SIZE);
	/* Room above the segment: RAM_SIZE - ALIGN_UP(1 MiB + 0x3000, 4 KiB). */
	input(&in, m.b, m.len, initrd, RAM_SIZE - SEG_PADDR - SEG_MEMSZ + 1, "");
	quiet_begin();
	CHECK_EQ(boot_load(&mem, &in, &cpu), -E2BIG);
	msg = quiet_end();
	CHECK(strstr(msg, "initrd of") != NULL);
	CHECK(!memcmp(snap, ram, RAM_SIZE));
	in.initrd_len = RAM_SIZE;
	quiet_begin();
	CHECK_EQ(boot_load(&mem, &in, &cpu), -E2BIG);
	quiet_end();
	CHECK(!memcmp(snap, ram, RAM_SIZE));
	in.initrd_len = RAM_SIZE - SEG_PADDR - SEG_MEMSZ; /* exactly fits */
	CHECK_EQ(boot_load(&mem, &in, &cpu), 0);
	CHECK_EQ(rd(ram + rd(ram + LAYOUT_PVH_START_INFO + 16, 8), 8), SEG_PADDR + SEG_MEMSZ);
	free(initrd);

	memset(ram, 0x3c, RAM_SIZE);
	memcpy(snap, ram, RAM_SIZE);
	input(&in, m.b, m.len, NULL, 0, "");
	in.ncpus = 0;
	quiet_begin();
	CHECK_EQ(boot_load(&mem, &in, &cpu), -EINVAL);
	quiet_end();
	CHECK(!memcmp(snap, ram, RAM_SIZE));
}

/* RAM with a hole exactly where the MP table goes: the load must fail before writing
 * anything, although every other area it writes is RAM. */
static void test_no_ebda(void)
{
	struct guest_mem holed;
	struct boot_input in;
	struct boot_cpu cpu;
	struct img m;

	guest_mem_init(&holed);
	CHECK_EQ(guest_mem_add(&holed, 0, 0x9f000, ram), 0);
	CHECK_EQ(guest_mem_add(&holed, LAYOUT_LEGACY_HOLE_END, RAM_SIZE - LAYOUT_LEGACY_HOLE_END,
			       ram + LAYOUT_LEGACY_HOLE_END),
		 0);
	build(&m, true);
	memset(ram, 0x3c, RAM_SIZE);
	memcpy(snap, ram, RAM_SIZE);
	input(&in, m.b, m.len, NULL, 0, "");
	quiet_begin();
	CHECK_EQ(boot_load(&holed, &in, &cpu), -EFAULT);
	CHECK(strstr(quiet_end(), "MP table") != NULL);
	CHECK(!memcmp(snap, ram, RAM_SIZE));
}

/* Every prefix of a valid image fails cleanly, with exact-size copies (ASan) and read-only
 * guest RAM (any write faults). */
static void test_truncations(bool is64)
{
	struct boot_input in;
	struct boot_cpu cpu;
	enum boot_kind kind;
	struct img m;

	build(&m, is64);
	memset(ram, 0, RAM_SIZE);
	CHECK_EQ(mprotect(ram, RAM_SIZE, PROT_READ), 0);
	for (size_t len = 0; len < m.len; len++) {
		uint8_t *p = malloc(len ? len : 1);
		int ret;

		memcpy(p, m.b, len);
		input(&in, p, len, NULL, 0, "");
		quiet_begin();
		ret = boot_load(&mem, &in, &cpu);
		quiet_end();
		if (ret != -EINVAL && ret != -ENOEXEC)
			fprintf(stderr, "prefix %zu: %d\n", len, ret);
		CHECK(ret == -EINVAL || ret == -ENOEXEC);
		CHECK_EQ(boot_detect(p, len, &kind), -ENOEXEC);
		free(p);
	}
	CHECK_EQ(mprotect(ram, RAM_SIZE, PROT_READ | PROT_WRITE), 0);
	input(&in, m.b, m.len, NULL, 0, "");
	CHECK_EQ(boot_load(&mem, &in, &cpu), 0);
}

/* Random corruption of the headers and notes: whatever the result, no crash (ASan/UBSan
 * watch), only the documented errors, and a failing load writes nothing. Guest RAM is only the
 * low 2 MiB here (the memory map still says 32 MiB) so that toggling it read-only is cheap. */
#define SMALL_RAM (2ULL << 20)
static void test_corruption(bool is64)
{
	struct guest_mem small;
	struct boot_input in;
	struct boot_cpu cpu;
	unsigned int seed = 12345, fails = 0, oks = 0;
	struct img m;

	guest_mem_init(&small);
	CHECK_EQ(guest_mem_add(&small, 0, SMALL_RAM, ram), 0);
	for (int iter = 0; iter < 4000; iter++) {
		uint8_t *p;
		int ret;

		build(&m, is64);
		p = malloc(m.len);
		memcpy(p, m.b, m.len);
		for (int n = 1 + rand_r(&seed) % 4; n; n--)
			p[rand_r(&seed) % m.data] = (uint8_t)rand_r(&seed);
		input(&in, p, m.len, NULL, 0, "");
		/* Learn the outcome with RAM writable, then repeat a failure read-only. */
		quiet_begin();
		ret = boot_load(&small, &in, &cpu);
		quiet_end();
		CHECK(ret == 0 || ret == -EINVAL || ret == -ENOEXEC || ret == -E2BIG);
		if (ret) {
			fails++;
			CHECK_EQ(mprotect(ram, SMALL_RAM, PROT_READ), 0);
			quiet_begin();
			CHECK_EQ(boot_load(&small, &in, &cpu), ret);
			quiet_end();
			CHECK_EQ(mprotect(ram, SMALL_RAM, PROT_READ | PROT_WRITE), 0);
		} else {
			oks++;
		}
		free(p);
	}
	CHECK(fails > 100);
	CHECK(oks > 100);
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

	for (int is64 = 1; is64 >= 0; is64--) {
		test_good(is64);
		test_malformed(is64);
		test_truncations(is64);
		test_corruption(is64);
	}
	test_short_desc();
	test_two_segments();
	test_bad_inputs();
	test_no_ebda();

	munmap(ram, RAM_SIZE);
	free(snap);
	return t_done();
}
