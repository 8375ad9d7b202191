/* guest_mem.h: guest RAM regions and the one checked way to reach them from the host. */
#ifndef MVM_CORE_GUEST_MEM_H
#define MVM_CORE_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t gpa_t;

#define GUEST_MEM_MAX_REGIONS 4

struct guest_mem_region {
	gpa_t gpa;
	uint64_t size;
	uint8_t *hva;
	bool owned; /* mapped by guest_mem_alloc(), unmapped by guest_mem_fini() */
	bool shared; /* a memfd's pages (guest_mem_alloc_shared()) */
};

struct guest_mem {
	struct guest_mem_region r[GUEST_MEM_MAX_REGIONS];
	unsigned int n;
	/* Optional: told of every device write into guest RAM (DMA) that guest_mem_dma_done()
	 * reports; mvm's engine drops translated code there. Set before devices run. */
	void (*dma_written)(void *ctx, gpa_t gpa, uint64_t len);
	void *dma_ctx;
};

/* Starts an empty memory (no regions). */
void guest_mem_init(struct guest_mem *mem);

/* Maps (size) bytes of anonymous, MAP_NORESERVE memory for guest range [gpa, gpa+size).
 * Regions must not overlap and must be 4 KiB aligned. Returns 0, -EINVAL, -ENOSPC (too many
 * regions) or the mmap error. */
int guest_mem_alloc(struct guest_mem *mem, gpa_t gpa, uint64_t size);
/* The same on shared memory (a memfd): guest_mem_refault() works on it. */
int guest_mem_alloc_shared(struct guest_mem *mem, gpa_t gpa, uint64_t size);
/* Drops the host's mappings of [gpa, gpa+len) in shared regions, contents kept: every user of
 * them faults them in again, KVM included (its MMU notifier drops its translations of those
 * pages). Returns 0, or -EINVAL when the range is not in one shared region. */
int guest_mem_refault(const struct guest_mem *mem, gpa_t gpa, uint64_t len);

/* Gives the host memory behind [gpa, gpa+len) back (a balloon's inflated or free-reported pages,
 * virtio 1.2 sections 5.5.6 and 5.5.6.4): MADV_REMOVE on a shared region (the memfd's pages are
 * freed, not only unmapped), MADV_DONTNEED on a private one (anonymous memory reads as zeros
 * again; a private file mapping after a snapshot restore drops its private copies and reads the
 * file's pages again, which the page cache shares). The guest may touch the range later: it is
 * faulted in again. NOTE: with transparent huge pages a 4 KiB piece leaves the process's RSS at
 * once, but the kernel frees the rest of its huge page only when it splits it (deferred split,
 * under memory pressure). Returns 0, -EINVAL when the range is not 4 KiB aligned inside one
 * region, or madvise's -errno. Any thread. */
int guest_mem_discard(const struct guest_mem *mem, gpa_t gpa, uint64_t len);

/* The guest-physical address of host address (hva) in one of the regions into (*gpa). Returns
 * 0, or -EFAULT when (hva) is in none. */
int guest_mem_hva_to_gpa(const struct guest_mem *mem, const void *hva, gpa_t *gpa);

/* Asks for transparent huge pages (MADV_HUGEPAGE) on the regions this memory mapped: with the
 * host's THP in "madvise" mode (Debian's default) guest RAM is otherwise 4 KiB pages, and every
 * O_DIRECT request then pins and maps one page per 4 KiB (1 MiB reads ran at half the speed).
 * Costs RSS: each 2 MiB the guest touches is backed whole. Returns 0 or the first madvise
 * error (EINVAL: the kernel has no THP). */
int guest_mem_use_thp(struct guest_mem *mem);

/* Adds a region backed by caller memory (borrowed: the caller keeps it alive and frees it).
 * Used by unit tests to build fake guest memory. Same checks and returns as guest_mem_alloc(). */
int guest_mem_add(struct guest_mem *mem, gpa_t gpa, uint64_t size, void *hva);

/* All regions' bytes. */
uint64_t guest_mem_size(const struct guest_mem *mem);
/* Writes the regions one after the other into (fd) (a snapshot's memory file, guest_mem_size()
 * bytes), leaving 64 KiB chunks of zeros as holes so the file is sparse. Returns 0 or -errno. */
int guest_mem_save(const struct guest_mem *mem, int fd);
/* Replaces the regions' pages with a private (copy-on-write) mapping of a file written by
 * guest_mem_save(): pages load on first touch, and several VMs mapping one file share what
 * none of them wrote. Before the guest runs; the mappings keep their addresses (a KVM memory
 * slot on them sees the file's pages through its MMU notifier). Returns 0 or -errno. */
int guest_mem_map_file(struct guest_mem *mem, int fd);

/* Unmaps the regions this memory mapped. */
void guest_mem_fini(struct guest_mem *mem);

/* Host address of [gpa, gpa+len) if the whole range lies inside one region, else NULL.
 * Overflow-safe for any (gpa, len); len 0 is treated as 1. Every guest-supplied address goes
 * through here. Safe from any thread once setup is over (regions never change). */
void *gpa_to_hva(const struct guest_mem *mem, gpa_t gpa, uint64_t len);

/* A device wrote guest RAM at host address [hva, hva+len) behind the vCPUs' back: tells the
 * observer (dma_written), if any. Call before the guest can learn of the write (before the
 * used ring entry is published). Any thread. */
void guest_mem_dma_done(const struct guest_mem *mem, const void *hva, uint64_t len);

/* Copies between host buffers and guest memory; -EFAULT unless the whole range is in RAM. */
int guest_mem_write(const struct guest_mem *mem, gpa_t gpa, const void *src, uint64_t len);
int guest_mem_read(const struct guest_mem *mem, gpa_t gpa, void *dst, uint64_t len);

#endif
