/* kvm_floor.c: the bare KVM_RUN loop, the floor the bench figures compare mvm and QEMU with.
 *
 * Creates a VM with one memory slot and one vCPU, no irqchip, no devices, loads a PVH ELF (the
 * bench guest, bench/guests/bench.S), enters it the PVH way (32-bit protected mode, paging off,
 * flat segments, EBX = struct hvm_start_info) and runs KVM_RUN until the guest writes to the
 * debug-exit port 0xf4. Port writes to 0x3f8 go to stdout (one write(2) per byte, as a VMM's
 * console does), writes to other ports are counted, nothing else is emulated. No mvm code: only
 * <linux/kvm.h>.
 *
 * Usage: kvm_floor [-m MIB] [-p CMDLINE] [-v] GUEST.elf
 * Exit status: the value written to port 0xf4 (low 8 bits); 70 if KVM or the ELF fails. With -v,
 * the exit counts go to stderr at the end. A guest that halts (KVM_EXIT_HLT, no irqchip here) is
 * left halted: the process waits for a signal.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_FAIL		 70
#define COM1			 0x3f8
#define DEBUG_EXIT		 0xf4
#define START_INFO_GPA		 0x7000
#define CMDLINE_GPA		 0x8000
#define CMDLINE_MAX		 4096
#define PVH_MAGIC		 0x336ec578u
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* xen/include/public/arch-x86/hvm/start_info.h */
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
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info size");

static void die(const char *what)
{
	fprintf(stderr, "kvm_floor: %s: %s\n", what, strerror(errno));
	exit(EXIT_FAIL);
}

static void bad_elf(const char *why)
{
	fprintf(stderr, "kvm_floor: bad ELF: %s\n", why);
	exit(EXIT_FAIL);
}

/* Copies the PT_LOAD segments into guest RAM; returns the PVH entry (the Xen PHYS32_ENTRY note,
 * else e_entry). */
static uint32_t load_elf(const char *path, uint8_t *ram, uint64_t ram_size)
{
	struct stat st;
	const Elf64_Ehdr *eh;
	const uint8_t *f;
	uint32_t entry;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0)
		die(path);
	if ((size_t)st.st_size < sizeof(*eh))
		bad_elf("short file");
	f = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (f == MAP_FAILED)
		die("mmap ELF");
	close(fd);
	eh = (const Elf64_Ehdr *)f;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > (uint64_t)st.st_size ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > (uint64_t)st.st_size - eh->e_phoff)
		bad_elf("not a 64-bit ELF with a readable program header table");
	entry = (uint32_t)eh->e_entry;
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff) + i;
		uint64_t file_end, ram_end;

		if (__builtin_add_overflow(ph->p_offset, ph->p_filesz, &file_end) ||
		    file_end > (uint64_t)st.st_size || ph->p_filesz > ph->p_memsz)
			bad_elf("segment outside the file");
		if (ph->p_type == PT_LOAD) {
			if (__builtin_add_overflow(ph->p_paddr, ph->p_memsz, &ram_end) ||
			    ram_end > ram_size)
				bad_elf("segment outside guest RAM");
			memcpy(ram + ph->p_paddr, f + ph->p_offset, ph->p_filesz);
		} else if (ph->p_type == PT_NOTE) {
			for (uint64_t off = 0; off + sizeof(Elf64_Nhdr) <= ph->p_filesz;) {
				const Elf64_Nhdr *n = (const Elf64_Nhdr *)(f + ph->p_offset + off);
				uint64_t name = (n->n_namesz + 3) & ~3ull,
					 desc = (n->n_descsz + 3) & ~3ull;
				const uint8_t *d = (const uint8_t *)(n + 1) + name;

				if (off + sizeof(*n) + name + desc > ph->p_filesz)
					break;
				if (n->n_type == XEN_ELFNOTE_PHYS32_ENTRY && n->n_namesz == 4 &&
				    !memcmp(n + 1, "Xen", 4) && n->n_descsz >= 4)
					memcpy(&entry, d, 4);
				off += sizeof(*n) + name + desc;
			}
		}
	}
	munmap((void *)f, (size_t)st.st_size);
	return entry;
}

/* The host's supported CPUID, unfiltered: without KVM_SET_CPUID2 the vCPU has no long mode
 * (EFER.LME faults), which a guest that leaves the PVH entry's protected mode needs. */
static void set_cpuid(int kvm, int vcpu)
{
	enum { NENT = 256 };
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + NENT * sizeof(struct kvm_cpuid_entry2));

	if (!c)
		die("calloc");
	c->nent = NENT;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) < 0)
		die("KVM_GET_SUPPORTED_CPUID");
	if (ioctl(vcpu, KVM_SET_CPUID2, c) < 0)
		die("KVM_SET_CPUID2");
	free(c);
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	*s = (struct kvm_segment){.base = 0,
				  .limit = 0xffffffff,
				  .selector = sel,
				  .type = type,
				  .present = 1,
				  .dpl = 0,
				  .db = 1,
				  .s = 1,
				  .l = 0,
				  .g = 1};
}

int main(int argc, char **argv)
{
	uint64_t mem = 128ull << 20, exits = 0, other_io = 0;
	const char *cmdline = "", *elf;
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	struct hvm_start_info *si;
	uint8_t *ram;
	int kvm, vm, vcpu, run_size, opt, verbose = 0;
	uint32_t entry;

	while ((opt = getopt(argc, argv, "m:p:v")) != -1) {
		switch (opt) {
		case 'm':
			mem = strtoull(optarg, NULL, 0) << 20;
			break;
		case 'p':
			cmdline = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || mem < (2ull << 20) || strlen(cmdline) >= CMDLINE_MAX)
		goto usage;
	elf = argv[optind];

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	ram = mmap(NULL, mem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (ram == MAP_FAILED)
		die("mmap guest RAM");
	region = (struct kvm_userspace_memory_region){.slot = 0,
						      .guest_phys_addr = 0,
						      .memory_size = mem,
						      .userspace_addr = (uintptr_t)ram};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");

	entry = load_elf(elf, ram, mem);
	si = (struct hvm_start_info *)(ram + START_INFO_GPA);
	*si = (struct hvm_start_info){
		.magic = PVH_MAGIC, .version = 1, .cmdline_paddr = CMDLINE_GPA};
	strcpy((char *)ram + CMDLINE_GPA, cmdline);

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(*run))
		die("KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	set_cpuid(kvm, vcpu);

	/* PVH entry state: protected mode, paging off, flat 4 GiB segments. */
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	flat_segment(&sregs.cs, 0x08, 0xb);
	flat_segment(&sregs.ds, 0x10, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	/* A busy 32-bit TSS, as after reset: entering long mode checks TR's type. */
	sregs.tr = (struct kvm_segment){.limit = 0xffff, .type = 0xb, .present = 1};
	sregs.cr0 = 0x11; /* PE | ET */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
	regs = (struct kvm_regs){.rip = entry, .rbx = START_INFO_GPA, .rflags = 0x2};
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");

	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN");
		}
		exits++;
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			const uint8_t *data = (const uint8_t *)run + run->io.data_offset;

			if (run->io.direction != KVM_EXIT_IO_OUT) {
				memset((uint8_t *)run + run->io.data_offset, 0xff,
				       (size_t)run->io.size * run->io.count);
				other_io++;
			} else if (run->io.port == COM1) {
				for (uint32_t i = 0; i < run->io.count; i++)
					if (write(STDOUT_FILENO, data + i * run->io.size, 1) < 0 &&
					    errno != EPIPE)
						die("write");
			} else if (run->io.port == DEBUG_EXIT) {
				if (verbose)
					fprintf(stderr,
						"kvm_floor: %llu exits, %llu other port I/O\n",
						(unsigned long long)exits,
						(unsigned long long)other_io);
				return data[0];
			} else {
				other_io++;
			}
			break;
		}
		case KVM_EXIT_HLT:
			for (;;)
				pause();
		default:
			fprintf(stderr, "kvm_floor: unexpected exit %u at exit %llu\n",
				run->exit_reason, (unsigned long long)exits);
			return EXIT_FAIL;
		}
	}
usage:
	fprintf(stderr, "usage: kvm_floor [-m MIB] [-p CMDLINE] [-v] GUEST.elf\n");
	return 64;
}
