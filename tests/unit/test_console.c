/* test_console.c: the Ctrl-A escape filter. */
#include "console.h"

#include "test.h"

static size_t run(struct console_escape *e, const char *in, size_t n, char *out, bool *quit)
{
	return console_escape_filter(e, (const uint8_t *)in, n, (uint8_t *)out, quit);
}

int main(void)
{
	struct console_escape e = {0};
	char out[16];
	bool quit = false;

	CHECK_EQ(run(&e, "abc", 3, out, &quit), 3);
	CHECK(!memcmp(out, "abc", 3));
	CHECK(!quit);
	/* Ctrl-A x quits; what follows is dropped. */
	CHECK_EQ(run(&e, "a\x01xb", 4, out, &quit), 1);
	CHECK(quit);
	/* Ctrl-A Ctrl-A sends one Ctrl-A. */
	e = (struct console_escape){0};
	quit = false;
	CHECK_EQ(run(&e, "\x01\x01z", 3, out, &quit), 2);
	CHECK_EQ(out[0], 0x01);
	CHECK_EQ(out[1], 'z');
	/* Ctrl-A then another key passes both. */
	CHECK_EQ(run(&e, "\x01q", 2, out, &quit), 2);
	CHECK_EQ(out[0], 0x01);
	CHECK_EQ(out[1], 'q');
	/* The escape split across two reads; the second call may output n + 1 bytes. */
	CHECK_EQ(run(&e, "k\x01", 2, out, &quit), 1);
	CHECK_EQ(run(&e, "w", 1, out, &quit), 2);
	CHECK_EQ(out[0], 0x01);
	CHECK_EQ(out[1], 'w');
	CHECK_EQ(run(&e, "\x01", 1, out, &quit), 0);
	CHECK_EQ(run(&e, "X", 1, out, &quit), 0);
	CHECK(quit);
	return t_done();
}
