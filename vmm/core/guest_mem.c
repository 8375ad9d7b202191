/* guest_mem.c: guest RAM regions and checked guest-physical to host translation. */
#include "core/guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/util.h"

void guest_mem_init(struct guest_mem *mem)
{
	memset(mem, 0, sizeof(*mem));
}

static int check_new_region(const struct guest_mem *mem, gpa_t gpa, uint64_t size)
{
	gpa_t end;

	if (!size || !IS_ALIGNED(gpa, 4096) || !IS_ALIGNED(size, 4096) ||
	    __builtin_add_overflow(gpa, size, &end))
		return -EINVAL;
	if (mem->n == GUEST_MEM_MAX_REGIONS)
		return -ENOSPC;
	for (unsigned int i = 0; i < mem->n; i++)
		if (gpa < mem->r[i].gpa + mem->r[i].size && mem->r[i].gpa < end)
			return -EINVAL;
	return 0;
}

static int add_region(struct guest_mem *mem, gpa_t gpa, uint64_t size, void *hva, bool owned)
{
	mem->r[mem->n++] = (struct guest_mem_region){
		.gpa = gpa, .size = size, .hva = hva, .owned = owned};
	return 0;
}

int guest_mem_alloc_shared(struct guest_mem *mem, gpa_t gpa, uint64_t size)
{
	void *hva;
	int fd, ret = check_new_region(mem, gpa, size);

	if (ret)
		return ret;
	fd = memfd_create("mvm-guest-ram", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	hva = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	ret = hva == MAP_FAILED ? -errno : 0;
	close(fd); /* the mapping keeps the memory */
	if (ret)
		return ret;
	madvise(hva, size, MADV_DONTDUMP);
	add_region(mem, gpa, size, hva, true);
	mem->r[mem->n - 1].shared = true;
	return 0;
}

int guest_mem_refault(const struct guest_mem *mem, gpa_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < mem->n; i++) {
		const struct guest_mem_region *r = &mem->r[i];
		uint64_t off = gpa - r->gpa;

		if (gpa >= r->gpa && off < r->size && len <= r->size - off && r->shared &&
		    IS_ALIGNED(gpa, 4096) && IS_ALIGNED(len, 4096))
			return madvise(r->hva + off, len, MADV_DONTNEED) ? -errno : 0;
	}
	return -EINVAL;
}

int guest_mem_discard(const struct guest_mem *mem, gpa_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < mem->n; i++) {
		const struct guest_mem_region *r = &mem->r[i];
		uint64_t off = gpa - r->gpa;

		if (!(gpa >= r->gpa && off < r->size && len <= r->size - off))
			continue;
		if (!len || !IS_ALIGNED(gpa, 4096) || !IS_ALIGNED(len, 4096))
			return -EINVAL;
		/* MADV_DONTNEED on a shared mapping only unmaps: the memfd would keep the pages. */
		return madvise(r->hva + off, len, r->shared ? MADV_REMOVE : MADV_DONTNEED) ? -errno
											    : 0;
	}
	return -EINVAL;
}

int guest_mem_hva_to_gpa(const struct guest_mem *mem, const void *hva, gpa_t *gpa)
{
	const uint8_t *p = hva;

	for (unsigned int i = 0; i < mem->n; i++) {
		const struct guest_mem_region *r = &mem->r[i];

		if (p >= r->hva && p < r->hva + r->size) {
			*gpa = r->gpa + (uint64_t)(p - r->hva);
			return 0;
		}
	}
	return -EFAULT;
}

int guest_mem_alloc(struct guest_mem *mem, gpa_t gpa, uint64_t size)
{
	void *hva;
	int ret = check_new_region(mem, gpa, size);

	if (ret)
		return ret;
	hva = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (hva == MAP_FAILED)
		return -errno;
	/* Guest RAM is not worth a core dump of gigabytes; it also keeps guest data out of one. */
	madvise(hva, size, MADV_DONTDUMP);
	return add_region(mem, gpa, size, hva, true);
}

int guest_mem_use_thp(struct guest_mem *mem)
{
	for (unsigned int i = 0; i < mem->n; i++)
		if (mem->r[i].owned && madvise(mem->r[i].hva, mem->r[i].size, MADV_HUGEPAGE))
			return -errno;
	return 0;
}

int guest_mem_add(struct guest_mem *mem, gpa_t gpa, uint64_t size, void *hva)
{
	int ret = check_new_region(mem, gpa, size);

	return ret ? ret : add_region(mem, gpa, size, hva, false);
}

uint64_t guest_mem_size(const struct guest_mem *mem)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < mem->n; i++)
		n += mem->r[i].size;
	return n;
}

/* Regions are saved one after the other in the order they were added (ascending guest
 * addresses: memmap.c adds them so); chunks of zeros are left as holes. */
#define SAVE_CHUNK (64 * 1024)

int guest_mem_save(const struct guest_mem *mem, int fd)
{
	static const uint8_t zero[SAVE_CHUNK];
	uint64_t off = 0;

	if (ftruncate(fd, 0) || ftruncate(fd, (off_t)guest_mem_size(mem)))
		return -errno;
	for (unsigned int i = 0; i < mem->n; i++) {
		const struct guest_mem_region *r = &mem->r[i];

		for (uint64_t at = 0; at < r->size; at += SAVE_CHUNK) {
			uint64_t n = r->size - at < SAVE_CHUNK ? r->size - at : SAVE_CHUNK;
			const uint8_t *p = r->hva + at;

			if (!memcmp(p, zero, n))
				continue;
			for (uint64_t done = 0; done < n;) {
				ssize_t w = pwrite(fd, p + done, n - done, (off_t)(off + at + done));

				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					return w < 0 ? -errno : -EIO;
				done += (uint64_t)w;
			}
		}
		off += r->size;
	}
	return 0;
}

int guest_mem_map_file(struct guest_mem *mem, int fd)
{
	uint64_t off = 0;

	for (unsigned int i = 0; i < mem->n; i++) {
		struct guest_mem_region *r = &mem->r[i];
		void *p;

		if (!r->owned || r->shared)
			return -EINVAL;
		p = mmap(r->hva, r->size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, (off_t)off);
		if (p == MAP_FAILED)
			return -errno;
		madvise(r->hva, r->size, MADV_DONTDUMP);
		off += r->size;
	}
	return 0;
}

void guest_mem_fini(struct guest_mem *mem)
{
	for (unsigned int i = 0; i < mem->n; i++)
		if (mem->r[i].owned)
			munmap(mem->r[i].hva, mem->r[i].size);
	mem->n = 0;
}

void *gpa_to_hva(const struct guest_mem *mem, gpa_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (unsigned int i = 0; i < mem->n; i++) {
		const struct guest_mem_region *r = &mem->r[i];
		uint64_t off = gpa - r->gpa;

		/* Unsigned: gpa below the region wraps to a huge offset and fails the test. */
		if (gpa >= r->gpa && off < r->size && len <= r->size - off)
			return r->hva + off;
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *mem, gpa_t gpa, const void *src, uint64_t len)
{
	void *dst = gpa_to_hva(mem, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *mem, gpa_t gpa, void *dst, uint64_t len)
{
	const void *src = gpa_to_hva(mem, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

void guest_mem_dma_done(const struct guest_mem *mem, const void *hva, uint64_t len)
{
	const uint8_t *p = hva;

	if (!mem->dma_written || !len)
		return;
	for (unsigned int i = 0; i < mem->n; i++) {
		const struct guest_mem_region *r = &mem->r[i];

		if (p >= r->hva && p < r->hva + r->size) {
			uint64_t off = (uint64_t)(p - r->hva);

			mem->dma_written(mem->dma_ctx, r->gpa + off,
					 len < r->size - off ? len : r->size - off);
			return;
		}
	}
}
