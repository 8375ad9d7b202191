/* snapfile.c: the snapshot state file's container (core/snapfile.h). */
#include "core/snapfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAD8(n) (((n) + 7) & ~(uint64_t)7)

uint32_t snap_crc32(const void *buf, size_t len)
{
	static uint32_t table[256];
	static bool ready;
	const uint8_t *p = buf;
	uint32_t crc = 0xffffffff;

	/* Built on first use; every thread computes the same bytes, so a race is harmless. */
	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320 ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		__atomic_store_n(&ready, true, __ATOMIC_RELEASE);
	}
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc ^ 0xffffffff;
}

void snap_writer_init(struct snap_writer *w)
{
	*w = (struct snap_writer){0};
}

void snap_put(struct snap_writer *w, enum snap_type type, uint32_t index, const void *data,
	      size_t len)
{
	struct snap_section s = {.type = type, .index = index, .len = len};
	size_t need = sizeof(s) + PAD8(len);

	if (w->err)
		return;
	if (w->len + need > SNAP_MAX_LEN) {
		w->err = -E2BIG;
		return;
	}
	if (w->len + need > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *b;

		while (cap < w->len + need)
			cap *= 2;
		b = realloc(w->buf, cap);
		if (!b) {
			w->err = -ENOMEM;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, &s, sizeof(s));
	memcpy(w->buf + w->len + sizeof(s), data, len);
	memset(w->buf + w->len + sizeof(s) + len, 0, PAD8(len) - len);
	w->len += need;
	w->nsections++;
}

int snap_finish(struct snap_writer *w, struct snap_header *h)
{
	if (w->err)
		return w->err;
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, SNAP_MAGIC, sizeof(h->magic));
	h->format = SNAP_FORMAT;
	h->len = w->len;
	h->nsections = w->nsections;
	h->crc = snap_crc32(w->buf, w->len);
	snprintf(h->mvm_version, sizeof(h->mvm_version), "%s", MVM_VERSION);
	return 0;
}

void snap_writer_fini(struct snap_writer *w)
{
	free(w->buf);
	snap_writer_init(w);
}

static int bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int snap_reader_open(struct snap_reader *r, const void *buf, size_t len, char *err,
		     size_t errlen)
{
	struct snap_header h;
	const uint8_t *p = (const uint8_t *)buf + sizeof(h);
	uint64_t at = 0;
	char version[SNAP_VERSION_LEN + 1], expect[SNAP_VERSION_LEN];

	if (len < sizeof(h))
		return bad(err, errlen, "the state file is truncated (%zu bytes, no header)", len);
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, SNAP_MAGIC, sizeof(h.magic)))
		return bad(err, errlen, "not an mvm snapshot state file (bad magic)");
	if (h.format != SNAP_FORMAT)
		return bad(err, errlen, "snapshot format %u; this mvm reads format %u", h.format,
			   SNAP_FORMAT);
	/* The whole field, padding included, so no header byte goes unchecked. */
	memcpy(version, h.mvm_version, SNAP_VERSION_LEN);
	version[SNAP_VERSION_LEN] = 0;
	memset(expect, 0, sizeof(expect));
	snprintf(expect, sizeof(expect), "%s", MVM_VERSION);
	if (memcmp(h.mvm_version, expect, SNAP_VERSION_LEN))
		return bad(err, errlen, "the snapshot was taken by mvm %s; this is mvm %s",
			   version, MVM_VERSION);
	if (h.reserved)
		return bad(err, errlen, "the state file's header has unknown flags 0x%x",
			   h.reserved);
	if (h.len != len - sizeof(h))
		return bad(err, errlen, "the state file is %zu bytes; its header says %llu",
			   len, (unsigned long long)(h.len + sizeof(h)));
	if (snap_crc32(p, h.len) != h.crc)
		return bad(err, errlen, "the state file is corrupted (CRC mismatch)");
	for (uint32_t i = 0; i < h.nsections; i++) {
		struct snap_section s;

		if (h.len - at < sizeof(s))
			return bad(err, errlen, "section %u lies past the end of the file", i);
		memcpy(&s, p + at, sizeof(s));
		if (s.len > h.len - at - sizeof(s) || PAD8(s.len) > h.len - at - sizeof(s))
			return bad(err, errlen, "section %u (type %u) lies past the end of the file",
				   i, s.type);
		at += sizeof(s) + PAD8(s.len);
	}
	if (at != h.len)
		return bad(err, errlen, "the state file has %llu bytes after its last section",
			   (unsigned long long)(h.len - at));
	*r = (struct snap_reader){.sections = p, .len = h.len, .nsections = h.nsections};
	return 0;
}

const void *snap_get_any(const struct snap_reader *r, enum snap_type type, uint32_t index,
			 size_t *len)
{
	uint64_t at = 0;

	/* The bounds were checked by snap_reader_open(). */
	for (uint32_t i = 0; i < r->nsections; i++) {
		struct snap_section s;

		memcpy(&s, r->sections + at, sizeof(s));
		if (s.type == (uint32_t)type && s.index == index) {
			*len = s.len;
			return r->sections + at + sizeof(s);
		}
		at += sizeof(s) + PAD8(s.len);
	}
	return NULL;
}

const void *snap_get(const struct snap_reader *r, enum snap_type type, uint32_t index,
		     size_t len)
{
	size_t got;
	const void *p = snap_get_any(r, type, index, &got);

	return p && got == len ? p : NULL;
}
