/* file.h: read-only mappings of the user's input files, with errors that name the file. */
#ifndef MVM_CLI_FILE_H
#define MVM_CLI_FILE_H

#include <stddef.h>
#include <stdint.h>

struct mapped_file {
	const uint8_t *data;
	size_t len;
};

/* Maps (path) read-only. (what) names the file's role in messages ("kernel", "initrd",
 * "--config-file", "snapshot state file").
 * Returns 0, or -errno after logging; an empty file, a directory or a file larger than
 * (max_len) is refused with -EINVAL or -EFBIG. */
int file_map(struct mapped_file *f, const char *path, const char *what, uint64_t max_len);
void file_unmap(struct mapped_file *f);

#endif
