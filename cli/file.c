/* file.c: read-only mappings of the user's input files (kernel, initrd, config file, a
 * snapshot's state file). */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

int file_map(struct mapped_file *f, const char *path, const char *what, uint64_t max_len)
{
	struct stat st;
	void *p;
	int fd, ret = 0;

	f->data = NULL;
	f->len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("%s '%s': %s", what, path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		pr_err("%s '%s': %s", what, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		pr_err("%s '%s' is not a regular file", what, path);
		ret = -EINVAL;
		goto out;
	}
	if (st.st_size == 0) {
		pr_err("%s '%s' is empty", what, path);
		ret = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max_len) {
		pr_err("%s '%s' is %lld bytes, more than the %llu a %s may have", what, path,
		       (long long)st.st_size, (unsigned long long)max_len, what);
		ret = -EFBIG;
		goto out;
	}
	p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		pr_err("%s '%s': mmap: %s", what, path, strerror(errno));
		goto out;
	}
	f->data = p;
	f->len = st.st_size;
out:
	close(fd);
	return ret;
}

void file_unmap(struct mapped_file *f)
{
	if (f->data)
		munmap((void *)f->data, f->len);
	f->data = NULL;
}
