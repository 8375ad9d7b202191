/* pvh.c: the x86/HVM direct boot ABI ("PVH", Xen docs/misc/pvh.pandoc): loads an ELF kernel
 * that carries a XEN_ELFNOTE_PHYS32_ENTRY note and enters it in 32-bit protected mode with
 * EBX pointing at struct hvm_start_info. */
#define pr_fmt(fmt) "kernel: " fmt

#include <elf.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "boot_impl.h"
#include "core/layout.h"
#include "util/log.h"
#include "util/util.h"

/* Xen public/elfnote.h: "32bit entry point into the kernel ... protected mode with paging
 * disabled". Name "Xen"; the descriptor is 4 bytes, or 8 where Linux emits it with _ASM_PTR. */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define ELF_NOTE_ALIGN		 4 /* NOTE: what Linux and GNU tools emit for .note sections */

/* Xen public/arch-x86/hvm/start_info.h, version 1 (adds the memory map). */
#define XEN_HVM_START_MAGIC_VALUE 0x336ec578
#define XEN_HVM_START_VERSION	  1

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info");
_Static_assert(offsetof(struct hvm_start_info, modlist_paddr) == 16 &&
		       offsetof(struct hvm_start_info, cmdline_paddr) == 24 &&
		       offsetof(struct hvm_start_info, rsdp_paddr) == 32 &&
		       offsetof(struct hvm_start_info, memmap_paddr) == 40 &&
		       offsetof(struct hvm_start_info, memmap_entries) == 48,
	       "hvm_start_info offsets");

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry");

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* XEN_HVM_MEMMAP_TYPE_*, the E820 values, as MEMMAP_* are */
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry");
_Static_assert(offsetof(struct hvm_memmap_table_entry, type) == 16, "memmap type");

/* Our page at LAYOUT_PVH_START_INFO: the start info, its memory map, then the module list. */
#define PVH_MEMMAP  (LAYOUT_PVH_START_INFO + 0x40)
#define PVH_MODLIST (PVH_MEMMAP + MEMMAP_MAX * sizeof(struct hvm_memmap_table_entry))
#define PVH_END	    (PVH_MODLIST + sizeof(struct hvm_modlist_entry))
_Static_assert(sizeof(struct hvm_start_info) <= 0x40, "start info room");
_Static_assert(PVH_END <= LAYOUT_ZERO_PAGE, "PVH boot information overlaps the next area");

#define PVH_MAX_SEGMENTS 16

struct elf_seg {
	uint64_t paddr, offset, filesz, memsz;
};

/* The checked contents of the file, read once. */
struct pvh_image {
	struct elf_seg seg[PVH_MAX_SEGMENTS];
	unsigned int nseg;
	uint32_t entry;
};

/* Class-independent view of the ELF and program headers. */
struct elf_hdr {
	uint16_t type, machine, phentsize, phnum, shentsize, shnum;
	uint64_t phoff, shoff;
};

struct elf_phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

static void read_phdr(const uint8_t *p, bool is64, struct elf_phdr *ph)
{
	if (is64) {
		Elf64_Phdr e;

		memcpy(&e, p, sizeof(e));
		*ph = (struct elf_phdr){.type = e.p_type,
					.offset = e.p_offset,
					.paddr = e.p_paddr,
					.filesz = e.p_filesz,
					.memsz = e.p_memsz};
	} else {
		Elf32_Phdr e;

		memcpy(&e, p, sizeof(e));
		*ph = (struct elf_phdr){.type = e.p_type,
					.offset = e.p_offset,
					.paddr = e.p_paddr,
					.filesz = e.p_filesz,
					.memsz = e.p_memsz};
	}
}

/* True when [off, off+size) lies inside a file of (len) bytes. */
static bool in_file(uint64_t off, uint64_t size, size_t len)
{
	uint64_t end;

	return !__builtin_add_overflow(off, size, &end) && end <= len;
}

/* Walks the notes of one PT_NOTE segment (ELF gABI, "Note Section"): namesz, descsz, type,
 * then the name and the descriptor, each padded to 4 bytes. Every step advances at least 12
 * bytes, so the walk is bounded by the segment size. */
static int find_entry_note(const uint8_t *n, uint64_t size, bool *found, uint32_t *entry,
			   const char **why)
{
	uint64_t off = 0;

	while (size - off >= 12) {
		uint32_t w[3]; /* namesz, descsz, type */
		uint64_t name_off = off + 12, desc_off, next;

		memcpy(w, n + off, sizeof(w));
		/* u32 sizes in u64 arithmetic: no overflow. */
		desc_off = name_off + ALIGN_UP((uint64_t)w[0], ELF_NOTE_ALIGN);
		next = desc_off + ALIGN_UP((uint64_t)w[1], ELF_NOTE_ALIGN);
		if (desc_off > size || w[1] > size - desc_off) {
			*why = "an ELF note runs past the end of its PT_NOTE segment";
			return -EINVAL;
		}
		if (w[2] == XEN_ELFNOTE_PHYS32_ENTRY && w[0] == 4 &&
		    !memcmp(n + name_off, "Xen", 4)) {
			if (w[1] == 4) {
				memcpy(entry, n + desc_off, 4);
			} else if (w[1] == 8) {
				uint64_t e;

				memcpy(&e, n + desc_off, 8);
				if (e > UINT32_MAX) {
					*why = "the XEN_ELFNOTE_PHYS32_ENTRY address is above 4 "
					       "GiB";
					return -EINVAL;
				}
				*entry = (uint32_t)e;
			} else {
				*why = "the XEN_ELFNOTE_PHYS32_ENTRY note is neither 4 nor 8 bytes";
				return -EINVAL;
			}
			*found = true;
			return 0;
		}
		off = MIN(next, size);
	}
	return 0;
}

static int read_ehdr(const uint8_t *d, size_t len, bool *is64, struct elf_hdr *h, const char **why)
{
	if (len < EI_NIDENT || memcmp(d, ELFMAG, SELFMAG)) {
		*why = "not an ELF64/ELF32 x86 file with a XEN_ELFNOTE_PHYS32_ENTRY note";
		return -ENOEXEC;
	}
	if (d[EI_CLASS] != ELFCLASS32 && d[EI_CLASS] != ELFCLASS64) {
		*why = "ELF class is neither ELFCLASS32 nor ELFCLASS64";
		return -ENOEXEC;
	}
	if (d[EI_DATA] != ELFDATA2LSB) {
		*why = "ELF file is not little-endian";
		return -ENOEXEC;
	}
	*is64 = d[EI_CLASS] == ELFCLASS64;
	if (*is64) {
		Elf64_Ehdr e;

		if (len < sizeof(e))
			goto truncated;
		memcpy(&e, d, sizeof(e));
		*h = (struct elf_hdr){.type = e.e_type,
				      .machine = e.e_machine,
				      .phentsize = e.e_phentsize,
				      .phnum = e.e_phnum,
				      .phoff = e.e_phoff,
				      .shentsize = e.e_shentsize,
				      .shnum = e.e_shnum,
				      .shoff = e.e_shoff};
	} else {
		Elf32_Ehdr e;

		if (len < sizeof(e))
			goto truncated;
		memcpy(&e, d, sizeof(e));
		*h = (struct elf_hdr){.type = e.e_type,
				      .machine = e.e_machine,
				      .phentsize = e.e_phentsize,
				      .phnum = e.e_phnum,
				      .phoff = e.e_phoff,
				      .shentsize = e.e_shentsize,
				      .shnum = e.e_shnum,
				      .shoff = e.e_shoff};
	}
	if (h->machine != EM_X86_64 && h->machine != EM_386) {
		*why = "ELF machine is neither EM_X86_64 nor EM_386";
		return -ENOEXEC;
	}
	if (h->type != ET_EXEC) {
		*why = "ELF type is not ET_EXEC";
		return -ENOEXEC;
	}
	return 0;
truncated:
	*why = "the file ends inside the ELF header";
	return -EINVAL;
}

static int add_load(struct pvh_image *img, const struct elf_phdr *ph, size_t len, const char **why)
{
	uint64_t end;

	if (!in_file(ph->offset, ph->filesz, len)) {
		*why = "a PT_LOAD segment's data lies outside the file";
		return -EINVAL;
	}
	if (ph->filesz > ph->memsz) {
		*why = "a PT_LOAD segment has p_filesz larger than p_memsz";
		return -EINVAL;
	}
	if (__builtin_add_overflow(ph->paddr, ph->memsz, &end)) {
		*why = "a PT_LOAD segment wraps around the address space";
		return -EINVAL;
	}
	if (ph->memsz == 0)
		return 0;
	if (img->nseg == PVH_MAX_SEGMENTS) {
		*why = "more than 16 PT_LOAD segments";
		return -EINVAL;
	}
	img->seg[img->nseg++] = (struct elf_seg){
		.paddr = ph->paddr, .offset = ph->offset, .filesz = ph->filesz, .memsz = ph->memsz};
	return 0;
}

/* File-only checks; fills (img). */
static int parse(const uint8_t *d, size_t len, struct pvh_image *img, const char **why)
{
	bool is64 = false, found = false;
	struct elf_hdr h;
	size_t phsize;
	int ret;

	memset(img, 0, sizeof(*img));
	ret = read_ehdr(d, len, &is64, &h, why);
	if (ret)
		return ret;
	phsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (h.phnum == 0 || h.phnum == PN_XNUM) {
		*why = "no program headers (or e_phnum PN_XNUM, which mvm does not support)";
		return -EINVAL;
	}
	if (h.phentsize < phsize) {
		*why = "e_phentsize is smaller than a program header";
		return -EINVAL;
	}
	/* phnum and phentsize are 16 bits: the product cannot overflow. */
	if (!in_file(h.phoff, (uint64_t)h.phnum * h.phentsize, len)) {
		*why = "the program header table lies outside the file";
		return -EINVAL;
	}
	/* The section header table is not loaded, but it is the last thing a linker writes: a
	 * file that ends before it was cut short, and its segments are not to be trusted. */
	if (h.shoff && !in_file(h.shoff, (uint64_t)h.shnum * h.shentsize, len)) {
		*why = "the section header table lies outside the file (truncated?)";
		return -EINVAL;
	}
	for (unsigned int i = 0; i < h.phnum; i++) {
		struct elf_phdr ph;

		read_phdr(d + h.phoff + (uint64_t)i * h.phentsize, is64, &ph);
		if (ph.type == PT_LOAD) {
			ret = add_load(img, &ph, len, why);
		} else if (ph.type == PT_NOTE && !found) {
			if (!in_file(ph.offset, ph.filesz, len)) {
				*why = "a PT_NOTE segment lies outside the file";
				return -EINVAL;
			}
			ret = find_entry_note(d + ph.offset, ph.filesz, &found, &img->entry, why);
		}
		if (ret)
			return ret;
	}
	if (!found) {
		*why = "no XEN_ELFNOTE_PHYS32_ENTRY note in its PT_NOTE segments";
		return -ENOEXEC;
	}
	if (img->nseg == 0) {
		*why = "no PT_LOAD segment";
		return -EINVAL;
	}
	for (unsigned int i = 0; i < img->nseg; i++)
		if (img->entry - img->seg[i].paddr < img->seg[i].filesz)
			return 0;
	*why = "the PVH entry point is not inside a loaded segment";
	return -EINVAL;
}

int pvh_probe(const uint8_t *data, size_t len, const char **why)
{
	struct pvh_image img;
	const char *unused;

	return parse(data, len, &img, why ? why : &unused);
}

static int check_segments(const struct guest_mem *mem, const struct pvh_image *img,
			  uint64_t *highest)
{
	*highest = 0;
	for (unsigned int i = 0; i < img->nseg; i++) {
		const struct elf_seg *s = &img->seg[i];

		/* Below 1 MiB live the GDT, the boot information, the command line and the MP
		 * table; a kernel there would overwrite them (or they it). */
		if (s->paddr < LAYOUT_LEGACY_HOLE_END) {
			pr_err("PVH ELF segment at 0x%llx lies below 1 MiB, which mvm reserves for "
			       "boot structures",
			       (unsigned long long)s->paddr);
			return -EINVAL;
		}
		if (!gpa_to_hva(mem, s->paddr, s->memsz)) {
			pr_err("PVH ELF segment [0x%llx, +0x%llx) is outside guest RAM",
			       (unsigned long long)s->paddr, (unsigned long long)s->memsz);
			return -E2BIG;
		}
		*highest = MAX(*highest, s->paddr + s->memsz); /* no overflow: checked in parse */
	}
	return 0;
}

int pvh_load(const struct guest_mem *mem, const struct boot_input *in, struct boot_cpu *cpu)
{
	const struct memmap *map = in->map;
	struct hvm_memmap_table_entry mm[MEMMAP_MAX];
	struct hvm_modlist_entry mod;
	struct hvm_start_info si;
	struct pvh_image img;
	const char *why = "";
	uint64_t highest;
	size_t cmdline_len;
	gpa_t initrd_gpa = 0;
	int ret;

	/* Check pass: nothing is written until all of these pass. */
	ret = parse(in->kernel, in->kernel_len, &img, &why);
	if (ret) {
		pr_err("PVH ELF: %s", why);
		return ret;
	}
	ret = check_segments(mem, &img, &highest);
	if (ret)
		return ret;
	ret = boot_check_cmdline(mem, in->cmdline, LAYOUT_CMDLINE_MAX - 1, &cmdline_len);
	if (ret)
		return ret;
	if (in->initrd_len) {
		ret = boot_place_initrd(mem, in->initrd_len, ALIGN_UP(highest, BOOT_PAGE_SIZE),
					map->low_ram_end, &initrd_gpa);
		if (ret)
			return ret;
	}
	ret = boot_check_ram(mem, LAYOUT_PVH_START_INFO, PVH_END - LAYOUT_PVH_START_INFO,
			     "hvm_start_info");
	if (!ret)
		ret = boot_check_ram(mem, LAYOUT_BOOT_STACK - 0x100, 0x100, "boot stack");
	if (!ret)
		ret = boot_gdt_check(mem);
	if (ret)
		return ret;

	/* Copy pass: copy p_filesz bytes, zero the rest up to p_memsz (the bss). */
	for (unsigned int i = 0; i < img.nseg; i++) {
		const struct elf_seg *s = &img.seg[i];
		uint8_t *dst = gpa_to_hva(mem, s->paddr, s->memsz);

		memcpy(dst, in->kernel + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	if (in->initrd_len)
		guest_mem_write(mem, initrd_gpa, in->initrd, in->initrd_len);
	guest_mem_write(mem, LAYOUT_CMDLINE, in->cmdline, cmdline_len);
	guest_mem_write(mem, LAYOUT_CMDLINE + cmdline_len, "", 1);

	memset(mm, 0, sizeof(mm));
	for (unsigned int i = 0; i < map->n; i++)
		mm[i] = (struct hvm_memmap_table_entry){
			.addr = map->e[i].gpa, .size = map->e[i].size, .type = map->e[i].type};
	memset(&mod, 0, sizeof(mod));
	mod.paddr = initrd_gpa;
	mod.size = in->initrd_len;
	si = (struct hvm_start_info){
		.magic = XEN_HVM_START_MAGIC_VALUE,
		.version = XEN_HVM_START_VERSION,
		.nr_modules = in->initrd_len ? 1 : 0,
		.modlist_paddr = in->initrd_len ? PVH_MODLIST : 0,
		.cmdline_paddr = LAYOUT_CMDLINE,
		.rsdp_paddr = 0, /* no ACPI: the guest finds its CPUs in the MP table */
		.memmap_paddr = PVH_MEMMAP,
		.memmap_entries = map->n,
	};
	/* One write of the whole page area so that no stale bytes sit between the parts. */
	{
		uint8_t page[PVH_END - LAYOUT_PVH_START_INFO];

		memset(page, 0, sizeof(page));
		memcpy(page, &si, sizeof(si));
		memcpy(page + (PVH_MEMMAP - LAYOUT_PVH_START_INFO), mm, sizeof(mm));
		if (in->initrd_len)
			memcpy(page + (PVH_MODLIST - LAYOUT_PVH_START_INFO), &mod, sizeof(mod));
		guest_mem_write(mem, LAYOUT_PVH_START_INFO, page, sizeof(page));
	}
	boot_gdt_write(mem, cpu);

	/* PVH ABI (docs/misc/pvh.pandoc): EBX = start info, CR0.PE only (ET is hardwired to 1),
	 * CR4 = 0, flat 32-bit CS and DS/ES/SS, TR a 32-bit TSS with base 0 and limit 0x67,
	 * EFLAGS IF/TF/VM clear. The ABI leaves ESP undefined; we give the scratch stack the
	 * 64-bit protocol uses. */
	cpu->kind = BOOT_KIND_PVH;
	cpu->long_mode = 0;
	cpu->rip = img.entry;
	cpu->rbx = LAYOUT_PVH_START_INFO;
	cpu->rsp = LAYOUT_BOOT_STACK;
	cpu->rflags = X86_RFLAGS_FIXED;
	cpu->cr0 = X86_CR0_PE | X86_CR0_ET;
	cpu->cs_sel = BOOT_SEL_CODE32;
	cpu->ds_sel = BOOT_SEL_DATA;
	return 0;
}
