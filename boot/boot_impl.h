/* boot_impl.h: what the loaders in boot/ share; not part of the public interface. */
#ifndef MVM_BOOT_IMPL_H
#define MVM_BOOT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "core/guest_mem.h"

/* NOTE: the structures written for the guest (zero page, hvm_start_info, MP table, GDT) and the
 * kernel headers we parse are little-endian x86 layouts, handled here as host-order packed
 * structs. mvm only runs on x86-64 hosts; this keeps a port from silently writing garbage. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "boot/ assumes a little-endian host"
#endif

#define BOOT_PAGE_SIZE 4096ULL

/* Control register and EFER bits (Intel SDM vol. 3A, 2.5 and 2.2.1). */
#define X86_CR0_PE	 (1ULL << 0)
#define X86_CR0_ET	 (1ULL << 4)
#define X86_CR0_PG	 (1ULL << 31)
#define X86_CR4_PAE	 (1ULL << 5)
#define X86_EFER_LME	 (1ULL << 8)
#define X86_EFER_LMA	 (1ULL << 10)
#define X86_RFLAGS_FIXED 0x2ULL /* bit 1 always reads as one; IF, TF and VM clear */

/* bzimage.c. True when (data) carries the "HdrS" setup header magic at 0x202. */
bool bzimage_probe(const uint8_t *data, size_t len);
/* Loads a bzImage after checking all of it; same contract as boot_load() minus the MP table. */
int bzimage_load(const struct guest_mem *mem, const struct boot_input *in, struct boot_cpu *cpu);

/* pvh.c. 0 when (data) is an x86 ELF executable with a XEN_ELFNOTE_PHYS32_ENTRY note and sound
 * headers; -ENOEXEC when it is not such a file, -EINVAL when its headers are malformed. Sets
 * (*why) (may be NULL) to a static phrase saying what failed. Logs nothing. */
int pvh_probe(const uint8_t *data, size_t len, const char **why);
/* Loads a PVH ELF after checking all of it; same contract as boot_load() minus the MP table. */
int pvh_load(const struct guest_mem *mem, const struct boot_input *in, struct boot_cpu *cpu);

/* boot.c. -EFAULT with a message naming (what) unless [gpa, gpa+len) is guest RAM. */
int boot_check_ram(const struct guest_mem *mem, gpa_t gpa, uint64_t len, const char *what);

/* Checks that (cmdline) has at most (max_chars) characters (without the NUL) and fits at
 * LAYOUT_CMDLINE; stores its length in (*len). -EINVAL or -EFAULT with a message. */
int boot_check_cmdline(const struct guest_mem *mem, const char *cmdline, uint64_t max_chars,
		       size_t *len);

/* Chooses where the initrd of (size) bytes goes: the highest page-aligned address whose end is
 * at or below (limit), not below (lowest), inside guest RAM. 0 with (*gpa) set, or -E2BIG with
 * a message. (size) must not be 0. */
int boot_place_initrd(const struct guest_mem *mem, uint64_t size, uint64_t lowest, uint64_t limit,
		      gpa_t *gpa);

/* cpu.c. The GDT of boot.h (BOOT_SEL_*): -EFAULT unless its place is RAM; then writes it and
 * sets the gdt_base, gdt_limit and tr_sel of (cpu). */
int boot_gdt_check(const struct guest_mem *mem);
void boot_gdt_write(const struct guest_mem *mem, struct boot_cpu *cpu);

/* Identity page tables for the first 4 GiB at LAYOUT_PAGE_TABLES with 2 MiB pages (PML4, PDPT,
 * four page directories). Check first, then write; returns the CR3 value. */
int boot_pagetables_check(const struct guest_mem *mem);
uint64_t boot_pagetables_write(const struct guest_mem *mem);

#endif
