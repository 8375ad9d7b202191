/* boot.h: loading a kernel into guest memory. Pure: writes guest memory only, issues no
 * ioctls, and returns the starting CPU state as data for the CPU engine to apply. */
#ifndef MVM_BOOT_BOOT_H
#define MVM_BOOT_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/guest_mem.h"
#include "core/memmap.h"

enum boot_kind {
	BOOT_KIND_BZIMAGE, /* Linux boot protocol >= 2.12 with XLF_KERNEL_64: 64-bit entry */
	BOOT_KIND_PVH,	   /* ELF with XEN_ELFNOTE_PHYS32_ENTRY: 32-bit protected-mode entry */
};

/* What the boot loader is given. Everything is borrowed for the duration of the call. */
struct boot_input {
	const uint8_t *kernel; /* whole kernel file */
	size_t kernel_len;
	const uint8_t *initrd; /* NULL when there is none */
	size_t initrd_len;
	const char *cmdline; /* never NULL; may be "" */
	const struct memmap *map;
	unsigned int ncpus; /* for the MP table: 1 to MPTABLE_MAX_CPUS */
};

/* The GDT that boot_load() writes at LAYOUT_GDT, the same for both formats. The 64-bit boot
 * protocol wants __BOOT_CS = 0x10 and __BOOT_DS = 0x18 (Linux boot.rst, "64-bit Boot
 * Protocol"); PVH leaves the selectors unspecified (PVH ABI, docs/misc/pvh.pandoc), so it uses
 * the 32-bit code segment at 0x08 and the same data segment. */
#define BOOT_SEL_CODE32	 0x08 /* flat 4 GiB, 32-bit execute/read */
#define BOOT_SEL_CODE64	 0x10 /* flat, 64-bit (L=1) execute/read */
#define BOOT_SEL_DATA	 0x18 /* flat 4 GiB, read/write */
#define BOOT_SEL_TSS	 0x20 /* busy TSS, base 0, limit 0x67 (16-byte descriptor) */
#define BOOT_GDT_ENTRIES 6    /* null, code32, code64, data, TSS (two slots) */

/* The vCPU state at the kernel entry point. Segments are flat (base 0, limit 4 GiB) and use
 * the selectors below, which index the GDT the loader wrote at gdt_base. */
struct boot_cpu {
	enum boot_kind kind;
	int long_mode; /* 1: 64-bit code segment, EFER.LME|LMA; 0: 32-bit protected */
	uint64_t rip, rsp, rsi, rbx, rflags;
	uint64_t cr0, cr3, cr4, efer;
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint16_t cs_sel, ds_sel; /* ds_sel is used for DS, ES, SS, FS, GS */
	uint16_t tr_sel;	 /* a busy TSS in the GDT with base 0 and limit 0x67, as the PVH ABI
				  * asks and VMX entry checks want; type 0xb is both the 32-bit and
				  * the 64-bit busy TSS */
};

/* Recognizes the kernel format by content, loads the kernel, the initrd and the command line,
 * writes the boot information the format defines (zero page with e820, or hvm_start_info with
 * memmap and modules), the GDT, the MP table for (in->ncpus), and fills (*cpu).
 * Everything is checked before anything is written: on error guest memory is untouched.
 * Returns 0, or a negative errno after logging one message that names the problem:
 * -ENOEXEC when the file is neither format (the message lists what was checked), -EINVAL for a
 * truncated or malformed image, an over-long command line or (in->ncpus) out of range, -E2BIG
 * when kernel or initrd does not fit in guest RAM, -EFAULT when the fixed low areas of
 * layout.h are not backed by guest RAM. Not thread-safe with other users of (mem). */
int boot_load(const struct guest_mem *mem, const struct boot_input *in, struct boot_cpu *cpu);

/* Which format (data) is, or -ENOEXEC. Cheap; does not validate the whole image: a file it
 * accepts can still fail boot_load() with -EINVAL. Logs nothing. */
int boot_detect(const uint8_t *data, size_t len, enum boot_kind *kind);

#endif
