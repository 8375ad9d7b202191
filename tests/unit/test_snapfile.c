/* test_snapfile.c: the snapshot state file's container (core/snapfile.h): what is put comes
 * back; a file that is truncated, extended, bit-flipped anywhere, of another format or mvm
 * version, or whose sections run past its end is refused with a reason; a section is only
 * handed out at the length its reader expects. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapfile.h"
#include "test.h"

static char err[256];

/* The header and sections as one file image; *len receives its size. */
static uint8_t *image(struct snap_writer *w, size_t *len)
{
	struct snap_header h;
	uint8_t *f;

	if (snap_finish(w, &h))
		return NULL;
	*len = sizeof(h) + w->len;
	f = malloc(*len);
	memcpy(f, &h, sizeof(h));
	memcpy(f + sizeof(h), w->buf, w->len);
	return f;
}

int main(void)
{
	struct snap_writer w;
	struct snap_reader r;
	uint64_t regs[18] = {1, 2, 3, 0xfffffffffffffff0ull};
	uint8_t odd[5] = {9, 8, 7, 6, 5};
	size_t len, got;
	uint8_t *f;
	const uint8_t *p;

	snap_writer_init(&w);
	snap_put(&w, SNAP_KVM_REGS, 0, regs, sizeof(regs));
	snap_put(&w, SNAP_KVM_REGS, 1, odd, sizeof(odd));
	snap_put(&w, SNAP_DEV_UART, 0, "", 0);
	f = image(&w, &len);
	CHECK(f != NULL);
	CHECK_EQ(snap_reader_open(&r, f, len, err, sizeof(err)), 0);
	p = snap_get(&r, SNAP_KVM_REGS, 0, sizeof(regs));
	CHECK(p && !memcmp(p, regs, sizeof(regs)));
	p = snap_get_any(&r, SNAP_KVM_REGS, 1, &got);
	CHECK(p && got == sizeof(odd) && !memcmp(p, odd, sizeof(odd)));
	/* Only at the expected length; absent sections are NULL. */
	CHECK(snap_get(&r, SNAP_KVM_REGS, 1, sizeof(regs)) == NULL);
	CHECK(snap_get(&r, SNAP_KVM_REGS, 2, sizeof(regs)) == NULL);
	CHECK(snap_get(&r, SNAP_DEV_UART, 0, 0) != NULL);

	/* Every single-bit flip anywhere in the file is refused. */
	{
		unsigned int accepted = 0;

		for (size_t i = 0; i < len; i++)
			for (int b = 0; b < 8; b++) {
				f[i] ^= 1 << b;
				accepted += !snap_reader_open(&r, f, len, err, sizeof(err));
				f[i] ^= 1 << b;
			}
		CHECK_EQ(accepted, 0);
	}
	/* Truncated at every length, and extended. */
	for (size_t n = 0; n < len; n++)
		CHECK(snap_reader_open(&r, f, n, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "") != NULL);
	{
		uint8_t *g = calloc(1, len + 8);

		memcpy(g, f, len);
		CHECK(snap_reader_open(&r, g, len + 8, err, sizeof(err)) == -EINVAL);
		free(g);
	}
	/* The reasons name the problem. */
	f[0] ^= 1;
	snap_reader_open(&r, f, len, err, sizeof(err));
	CHECK(strstr(err, "magic") != NULL);
	f[0] ^= 1;
	f[sizeof(struct snap_header) + 20] ^= 0x40;
	snap_reader_open(&r, f, len, err, sizeof(err));
	CHECK(strstr(err, "CRC") != NULL);
	f[sizeof(struct snap_header) + 20] ^= 0x40;
	{
		struct snap_header h;

		memcpy(&h, f, sizeof(h));
		memcpy(h.mvm_version, "0.0.0-other", 12);
		memcpy(f, &h, sizeof(h));
		snap_reader_open(&r, f, len, err, sizeof(err));
		CHECK(strstr(err, "0.0.0-other") != NULL);
	}
	free(f);

	/* A section that claims more than the file holds, with a CRC that matches. */
	{
		struct snap_section s = {.type = SNAP_KVM_REGS, .len = 1 << 20};
		struct snap_header h;

		snap_writer_fini(&w);
		snap_writer_init(&w);
		snap_put(&w, SNAP_KVM_REGS, 0, regs, sizeof(regs));
		memcpy(w.buf, &s, sizeof(s));
		f = image(&w, &len);
		memcpy(&h, f, sizeof(h));
		CHECK(snap_reader_open(&r, f, len, err, sizeof(err)) == -EINVAL);
		CHECK(strstr(err, "past the end") != NULL);
		free(f);
	}
	snap_writer_fini(&w);
	return t_done();
}
