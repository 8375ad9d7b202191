/* bzimage.c: the Linux x86 boot protocol (Documentation/arch/x86/boot.rst): checks a bzImage,
 * loads its protected-mode part at 1 MiB, fills the zero page and enters through the 64-bit
 * boot protocol. */
#define pr_fmt(fmt) "kernel: " fmt

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "boot_impl.h"
#include "core/layout.h"
#include "util/log.h"
#include "util/util.h"

/* The setup header, at file offset 0x1f1 and at the same offset in the zero page (boot.rst,
 * "The Real-Mode Kernel Header"). Only the fields up to init_size (protocol 2.10) are read;
 * the rest is copied as the kernel wrote it. */
struct setup_header {
	uint8_t setup_sects; /* 0x1f1: 0 means 4 */
	uint16_t root_flags;
	uint32_t syssize; /* 0x1f4: protected-mode size in 16-byte units */
	uint16_t ram_size;
	uint16_t vid_mode;
	uint16_t root_dev;
	uint16_t boot_flag; /* 0x1fe: 0xaa55 */
	uint16_t jump;	    /* 0x200: jmp; the byte at 0x201 gives the header's end */
	uint32_t header;    /* 0x202: "HdrS" */
	uint16_t version;   /* 0x206 */
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader; /* 0x210 */
	uint8_t loadflags;	/* 0x211 */
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image; /* 0x218 */
	uint32_t ramdisk_size;	/* 0x21c */
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;	    /* 0x228 */
	uint32_t initrd_addr_max;   /* 0x22c */
	uint32_t kernel_alignment;  /* 0x230 */
	uint8_t relocatable_kernel; /* 0x234 */
	uint8_t min_alignment;
	uint16_t xloadflags;   /* 0x236 */
	uint32_t cmdline_size; /* 0x238 */
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address; /* 0x258 */
	uint32_t init_size;    /* 0x260 */
} __attribute__((packed));

#define HDR_OFF(f) (0x1f1 + offsetof(struct setup_header, f))
_Static_assert(HDR_OFF(syssize) == 0x1f4 && HDR_OFF(boot_flag) == 0x1fe &&
		       HDR_OFF(header) == 0x202 && HDR_OFF(version) == 0x206 &&
		       HDR_OFF(type_of_loader) == 0x210 && HDR_OFF(loadflags) == 0x211 &&
		       HDR_OFF(ramdisk_image) == 0x218 && HDR_OFF(ramdisk_size) == 0x21c &&
		       HDR_OFF(cmd_line_ptr) == 0x228 && HDR_OFF(initrd_addr_max) == 0x22c &&
		       HDR_OFF(kernel_alignment) == 0x230 && HDR_OFF(relocatable_kernel) == 0x234 &&
		       HDR_OFF(xloadflags) == 0x236 && HDR_OFF(cmdline_size) == 0x238 &&
		       HDR_OFF(pref_address) == 0x258 && HDR_OFF(init_size) == 0x260,
	       "setup header offsets (boot.rst)");
#define HDR_END_MIN (HDR_OFF(init_size) + 4) /* 0x264: everything we read */

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct e820_entry) == 20, "e820 entry");

#define E820_MAX_ENTRIES_ZEROPAGE 128

/* struct boot_params, the zero page (Documentation/arch/x86/zero-page.rst): only what we fill. */
struct boot_params {
	uint8_t pad0[0x1e8];
	uint8_t e820_entries; /* 0x1e8 */
	uint8_t pad1[0x1f1 - 0x1e9];
	union {
		struct setup_header hdr;	 /* 0x1f1 */
		uint8_t hdr_area[0x290 - 0x1f1]; /* the header may grow up to edd_mbr_sig_buffer */
	};
	uint8_t pad2[0x2d0 - 0x290];
	struct e820_entry e820_table[E820_MAX_ENTRIES_ZEROPAGE]; /* 0x2d0 */
	uint8_t pad3[0x1000 - 0x2d0 - 20 * E820_MAX_ENTRIES_ZEROPAGE];
} __attribute__((packed));
_Static_assert(sizeof(struct boot_params) == 4096, "zero page size");
_Static_assert(offsetof(struct boot_params, e820_entries) == 0x1e8, "e820_entries");
_Static_assert(offsetof(struct boot_params, hdr) == 0x1f1, "hdr");
_Static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "e820_table");
#define HDR_END_MAX 0x290

#define BOOT_FLAG_MAGIC	 0xaa55
#define HDRS_MAGIC	 0x53726448 /* "HdrS" */
#define LOADED_HIGH	 (1u << 0)  /* loadflags: protected-mode code at 0x100000 */
#define XLF_KERNEL_64	 (1u << 0)  /* xloadflags: 64-bit entry at load address + 0x200 */
#define PROTO_MIN	 0x0206	    /* cmdline_size */
#define PROTO_XLOADFLAGS 0x020c	    /* xloadflags; implies pref_address and init_size */
#define LOADER_UNDEFINED 0xff	    /* type_of_loader: a boot loader without an assigned ID */
#define ENTRY64_OFFSET	 0x200	    /* boot.rst, "64-bit Boot Protocol" */

/* What the checks decide, so that the write pass only copies. */
struct bz_plan {
	struct setup_header hdr; /* read once from the file */
	size_t hdr_end;		 /* file offset where the setup header ends */
	size_t pm_off, pm_size;	 /* protected-mode part in the file */
	uint64_t kernel_end;	 /* end of what the kernel uses, decompression included */
	size_t cmdline_len;
	gpa_t initrd_gpa;
};

bool bzimage_probe(const uint8_t *data, size_t len)
{
	uint32_t magic;

	if (len < HDR_OFF(header) + 4)
		return false;
	memcpy(&magic, data + HDR_OFF(header), 4);
	return magic == HDRS_MAGIC;
}

/* File-only checks of the header and the layout of the image. */
static int check_image(const uint8_t *data, size_t len, struct bz_plan *p)
{
	struct setup_header *h = &p->hdr;
	unsigned int setup_sects;

	if (len < HDR_END_MIN) {
		pr_err("bzImage of %zu bytes is truncated inside its setup header", len);
		return -EINVAL;
	}
	memcpy(h, data + 0x1f1, sizeof(*h));
	if (h->boot_flag != BOOT_FLAG_MAGIC) {
		pr_err("bzImage boot_flag at 0x1fe is 0x%04x, not 0xaa55", h->boot_flag);
		return -EINVAL;
	}
	if (h->version < PROTO_MIN) {
		pr_err("boot protocol %u.%02u is too old (mvm needs 2.06 or later)",
		       h->version >> 8, h->version & 0xff);
		return -EINVAL;
	}
	if (h->version < PROTO_XLOADFLAGS || !(h->xloadflags & XLF_KERNEL_64)) {
		pr_err("bzImage (boot protocol %u.%02u) has no 64-bit entry point "
		       "(XLF_KERNEL_64 in xloadflags, protocol 2.12 or later); mvm enters Linux "
		       "only in 64-bit mode",
		       h->version >> 8, h->version & 0xff);
		return -EINVAL;
	}
	if (!(h->loadflags & LOADED_HIGH)) {
		pr_err("bzImage loadflags lack LOADED_HIGH (a zImage, loaded at 0x10000)");
		return -EINVAL;
	}
	/* boot.rst, "Details of Header Fields": the header ends at 0x202 + the byte at 0x201. */
	p->hdr_end = 0x202 + (size_t)data[0x201];
	if (p->hdr_end < HDR_END_MIN || p->hdr_end > HDR_END_MAX) {
		pr_err("bzImage setup header ends at 0x%zx, outside [0x%zx, 0x%x]", p->hdr_end,
		       HDR_END_MIN, HDR_END_MAX);
		return -EINVAL;
	}
	setup_sects = h->setup_sects ? h->setup_sects : 4;
	p->pm_off = ((size_t)setup_sects + 1) * 512;
	/* pm_off >= 1024 > HDR_END_MAX, so this also covers the whole header copy. */
	if (len <= p->pm_off) {
		pr_err("bzImage of %zu bytes is truncated: the setup code alone takes %zu", len,
		       p->pm_off);
		return -EINVAL;
	}
	p->pm_size = len - p->pm_off;
	/* The build pads the protected-mode part to exactly syssize paragraphs, so a shorter
	 * file was cut off. Longer is tolerated (appended data is loaded, harmlessly). */
	if (p->pm_size < (uint64_t)h->syssize * 16) {
		pr_err("bzImage is truncated: the protected-mode part has %zu bytes, the header "
		       "says %llu",
		       p->pm_size, (unsigned long long)h->syssize * 16);
		return -EINVAL;
	}
	return 0;
}

/* Where the kernel will live once it runs. NOTE: the decompressor (arch/x86/boot/compressed/
 * head_64.S) decompresses to max(load address aligned to kernel_alignment, LOAD_PHYSICAL_ADDR),
 * and pref_address is LOAD_PHYSICAL_ADDR, so the kernel occupies up to
 * max(load, pref_address) + init_size even though we load it at 1 MiB. */
static int check_kernel_fit(const struct guest_mem *mem, const struct boot_input *in,
			    struct bz_plan *p)
{
	const struct setup_header *h = &p->hdr;
	uint64_t load = LAYOUT_KERNEL_DEFAULT, run = load, end;
	uint32_t align = h->kernel_alignment;

	if (h->relocatable_kernel && align && (align & (align - 1)) == 0)
		run = ALIGN_UP(load, (uint64_t)align);
	run = MAX(run, h->pref_address);
	if (__builtin_add_overflow(run, (uint64_t)h->init_size, &end))
		end = UINT64_MAX;
	end = MAX(end, load + p->pm_size);
	if (end > in->map->low_ram_end || !gpa_to_hva(mem, load, end - load)) {
		pr_err("kernel needs guest RAM up to 0x%llx (loaded at 0x%llx, runs at 0x%llx with "
		       "init_size 0x%x), RAM below the MMIO hole ends at 0x%llx",
		       (unsigned long long)end, (unsigned long long)load, (unsigned long long)run,
		       h->init_size, (unsigned long long)in->map->low_ram_end);
		return -E2BIG;
	}
	p->kernel_end = end;
	return 0;
}

static int plan(const struct guest_mem *mem, const struct boot_input *in, struct bz_plan *p)
{
	uint64_t limit;
	int ret;

	ret = check_image(in->kernel, in->kernel_len, p);
	if (ret)
		return ret;
	ret = check_kernel_fit(mem, in, p);
	if (ret)
		return ret;
	ret = boot_check_cmdline(mem, in->cmdline, p->hdr.cmdline_size, &p->cmdline_len);
	if (ret)
		return ret;
	if (in->initrd_len) {
		/* ramdisk_image and ramdisk_size are 32 bits; initrd_addr_max is inclusive. */
		limit = MIN(in->map->low_ram_end, (uint64_t)p->hdr.initrd_addr_max + 1);
		if (in->initrd_len > UINT32_MAX) {
			pr_err("initrd of %zu bytes is larger than the boot protocol's 4 GiB",
			       in->initrd_len);
			return -E2BIG;
		}
		ret = boot_place_initrd(mem, in->initrd_len, p->kernel_end, limit, &p->initrd_gpa);
		if (ret)
			return ret;
	}
	if (in->map->n > E820_MAX_ENTRIES_ZEROPAGE) {
		pr_err("memory map has %u entries, the zero page holds %u", in->map->n,
		       E820_MAX_ENTRIES_ZEROPAGE);
		return -EINVAL;
	}
	ret = boot_check_ram(mem, LAYOUT_ZERO_PAGE, sizeof(struct boot_params), "zero page");
	if (!ret)
		ret = boot_pagetables_check(mem);
	if (!ret)
		ret = boot_check_ram(mem, LAYOUT_BOOT_STACK - 0x100, 0x100, "boot stack");
	if (!ret)
		ret = boot_gdt_check(mem);
	return ret;
}

static void fill_zero_page(struct boot_params *bp, const struct boot_input *in,
			   const struct bz_plan *p)
{
	memset(bp, 0, sizeof(*bp));
	/* 64-bit boot protocol: copy the setup header as the kernel wrote it, then modify it as
	 * in the 16-bit protocol ("Details of Header Fields", the "write" fields). */
	memcpy(bp->hdr_area, in->kernel + 0x1f1, p->hdr_end - 0x1f1);
	/* The copy may differ from p->hdr if the file changed under us; the checked values win. */
	bp->hdr = p->hdr;
	bp->hdr.type_of_loader = LOADER_UNDEFINED;
	bp->hdr.cmd_line_ptr = LAYOUT_CMDLINE;
	/* All below 4 GiB and 128: plan() checked initrd_addr_max, the size and the map. */
	bp->hdr.ramdisk_image = in->initrd_len ? (uint32_t)p->initrd_gpa : 0;
	bp->hdr.ramdisk_size = (uint32_t)in->initrd_len;
	bp->e820_entries = (uint8_t)in->map->n;
	for (unsigned int i = 0; i < in->map->n; i++) {
		bp->e820_table[i].addr = in->map->e[i].gpa;
		bp->e820_table[i].size = in->map->e[i].size;
		bp->e820_table[i].type = in->map->e[i].type; /* MEMMAP_* are the E820 type values */
	}
}

int bzimage_load(const struct guest_mem *mem, const struct boot_input *in, struct boot_cpu *cpu)
{
	struct boot_params bp;
	struct bz_plan p;
	int ret;

	memset(&p, 0, sizeof(p));
	ret = plan(mem, in, &p);
	if (ret)
		return ret;

	/* Everything is checked: from here on the writes cannot fail. */
	guest_mem_write(mem, LAYOUT_KERNEL_DEFAULT, in->kernel + p.pm_off, p.pm_size);
	if (in->initrd_len)
		guest_mem_write(mem, p.initrd_gpa, in->initrd, in->initrd_len);
	guest_mem_write(mem, LAYOUT_CMDLINE, in->cmdline, p.cmdline_len);
	guest_mem_write(mem, LAYOUT_CMDLINE + p.cmdline_len, "", 1);
	fill_zero_page(&bp, in, &p);
	guest_mem_write(mem, LAYOUT_ZERO_PAGE, &bp, sizeof(bp));
	boot_gdt_write(mem, cpu);

	/* boot.rst, "64-bit Boot Protocol": long mode with paging, the loaded range identity
	 * mapped, __BOOT_CS/__BOOT_DS flat, interrupts off, RSI = zero page, entry at
	 * load address + 0x200. */
	cpu->kind = BOOT_KIND_BZIMAGE;
	cpu->long_mode = 1;
	cpu->rip = LAYOUT_KERNEL_DEFAULT + ENTRY64_OFFSET;
	cpu->rsp = LAYOUT_BOOT_STACK;
	cpu->rsi = LAYOUT_ZERO_PAGE;
	cpu->rflags = X86_RFLAGS_FIXED;
	cpu->cr3 = boot_pagetables_write(mem);
	cpu->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
	cpu->cr4 = X86_CR4_PAE;
	cpu->efer = X86_EFER_LME | X86_EFER_LMA;
	cpu->cs_sel = BOOT_SEL_CODE64;
	cpu->ds_sel = BOOT_SEL_DATA;
	return 0;
}
