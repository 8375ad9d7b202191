/* boot.c: kernel format detection, boot_load() dispatch and the helpers both loaders share
 * (command line, initrd placement, RAM checks). */
#define pr_fmt(fmt) "boot: " fmt

#include "boot/boot.h"

#include <errno.h>
#include <string.h>

#include "boot/mptable.h"
#include "boot_impl.h"
#include "core/layout.h"
#include "util/log.h"
#include "util/util.h"

int boot_detect(const uint8_t *data, size_t len, enum boot_kind *kind)
{
	if (!data)
		return -ENOEXEC;
	if (bzimage_probe(data, len)) {
		*kind = BOOT_KIND_BZIMAGE;
		return 0;
	}
	if (pvh_probe(data, len, NULL) == 0) {
		*kind = BOOT_KIND_PVH;
		return 0;
	}
	return -ENOEXEC;
}

int boot_check_ram(const struct guest_mem *mem, gpa_t gpa, uint64_t len, const char *what)
{
	if (gpa_to_hva(mem, gpa, len))
		return 0;
	pr_err("%s [0x%llx, +0x%llx) is not in guest RAM", what, (unsigned long long)gpa,
	       (unsigned long long)len);
	return -EFAULT;
}

int boot_check_cmdline(const struct guest_mem *mem, const char *cmdline, uint64_t max_chars,
		       size_t *len)
{
	/* strnlen: the string is ours, but a missing NUL must not run us off its end forever. */
	size_t n = strnlen(cmdline, LAYOUT_CMDLINE_MAX);
	uint64_t max = MIN(max_chars, LAYOUT_CMDLINE_MAX - 1);

	if (n > max) {
		pr_err("kernel command line is %s%zu characters, the limit is %llu",
		       n == LAYOUT_CMDLINE_MAX ? "at least " : "", n, (unsigned long long)max);
		return -EINVAL;
	}
	*len = n;
	return boot_check_ram(mem, LAYOUT_CMDLINE, n + 1, "command line");
}

int boot_place_initrd(const struct guest_mem *mem, uint64_t size, uint64_t lowest, uint64_t limit,
		      gpa_t *gpa)
{
	uint64_t addr;

	if (size > limit || ALIGN_DOWN(limit - size, BOOT_PAGE_SIZE) < lowest) {
		pr_err("initrd of %llu bytes does not fit in guest RAM between the kernel's end "
		       "0x%llx and 0x%llx",
		       (unsigned long long)size, (unsigned long long)lowest,
		       (unsigned long long)limit);
		return -E2BIG;
	}
	addr = ALIGN_DOWN(limit - size, BOOT_PAGE_SIZE);
	if (!gpa_to_hva(mem, addr, size)) {
		pr_err("initrd [0x%llx, +0x%llx) is not in guest RAM", (unsigned long long)addr,
		       (unsigned long long)size);
		return -E2BIG;
	}
	*gpa = addr;
	return 0;
}

static int check_input(const struct guest_mem *mem, const struct boot_input *in)
{
	size_t mp_size = mptable_size(in->ncpus);

	if (!in->kernel || !in->cmdline || !in->map || (!in->initrd && in->initrd_len)) {
		pr_err("incomplete boot input");
		return -EINVAL;
	}
	if (in->map->n == 0 || in->map->n > MEMMAP_MAX) {
		pr_err("memory map has %u entries", in->map->n);
		return -EINVAL;
	}
	if (!mp_size) {
		pr_err("%u CPUs requested, the MP table describes 1 to %u", in->ncpus,
		       MPTABLE_MAX_CPUS);
		return -EINVAL;
	}
	/* Checked here so that a failure leaves guest memory untouched (written last). */
	return boot_check_ram(mem, LAYOUT_EBDA, mp_size, "MP table");
}

int boot_load(const struct guest_mem *mem, const struct boot_input *in, struct boot_cpu *cpu)
{
	const char *why = "not an ELF64/ELF32 x86 file with a XEN_ELFNOTE_PHYS32_ENTRY note";
	int ret = check_input(mem, in);

	if (ret)
		return ret;
	memset(cpu, 0, sizeof(*cpu));
	if (bzimage_probe(in->kernel, in->kernel_len)) {
		ret = bzimage_load(mem, in, cpu);
	} else {
		ret = pvh_probe(in->kernel, in->kernel_len, &why);
		if (ret == -EINVAL) {
			pr_err("kernel: malformed ELF file: %s", why);
			return ret;
		}
		if (ret) {
			pr_err("kernel: not a Linux bzImage (no \"HdrS\" magic at offset 0x202)"
			       " and not a PVH ELF (%s)",
			       why);
			return -ENOEXEC;
		}
		ret = pvh_load(mem, in, cpu);
	}
	if (ret)
		return ret;
	/* Cannot fail: check_input() checked the CPU count and the range. */
	return mptable_write(mem, in->ncpus);
}
