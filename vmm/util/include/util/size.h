/* size.h: parsing of sizes and counts given by users ("256M", "2G"). */
#ifndef MVM_UTIL_SIZE_H
#define MVM_UTIL_SIZE_H

#include <stdint.h>

/* Parses a byte size: a decimal number with an optional K, M, G or T suffix (binary units,
 * case-insensitive, optional trailing "B" or "iB"); a bare number means MiB, as in kvmtool and
 * QEMU's -m. Returns 0 and stores the size in (*out), or -EINVAL for malformed input and
 * -ERANGE when the value overflows 64 bits. */
int parse_size(const char *s, uint64_t *out);

/* Parses a non-negative decimal integer no larger than (max). -EINVAL or -ERANGE. */
int parse_uint(const char *s, uint64_t max, uint64_t *out);

#endif
