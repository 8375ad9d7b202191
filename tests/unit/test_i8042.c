/* test_i8042.c: the 8042 keyboard controller and AT keyboard as Linux 6.1's i8042 and atkbd
 * drivers probe them (flush, self-test, command byte, AUX loop and its IRQ 12 test, keyboard
 * ID, LEDs, enable), Ctrl+Alt+Del in set 1 (XLATE) and set 2 with IRQ 1 gated by the command
 * byte, the reset line, and guests that write without reading. */
#include <errno.h>

#include "dev/legacy.h"

#include "test.h"

#define GSI_KBD 1
#define GSI_AUX 12

/* Status and command-byte bits, as Linux's i8042.h and the PS/2 reference name them. */
#define STR_OBF	    0x01
#define STR_IBF	    0x02
#define STR_SYS	    0x04
#define STR_CMD	    0x08
#define STR_KEYLOCK 0x10
#define STR_AUXDATA 0x20
#define STR_TIMEOUT 0x40
#define CTR_KBDINT  0x01
#define CTR_AUXINT  0x02
#define CTR_SYS	    0x04
#define CTR_KBDDIS  0x10
#define CTR_AUXDIS  0x20
#define CTR_XLATE   0x40

struct recorder {
	struct irq_chip chip;
	int level[16];
	unsigned int edges[16];
};

static void rec_set(struct irq_chip *chip, unsigned int gsi, int level)
{
	struct recorder *r = (struct recorder *)chip;

	if (gsi >= 16)
		return;
	if (level && !r->level[gsi])
		r->edges[gsi]++;
	r->level[gsi] = level;
}

static struct recorder rec = {.chip.set_level = rec_set};
static struct stop_ctl stop;

static void setup(struct i8042 *k)
{
	memset(&rec.level, 0, sizeof(rec.level));
	memset(&rec.edges, 0, sizeof(rec.edges));
	memset(&stop, 0, sizeof(stop));
	i8042_init(k, &stop, (struct irq_line){.chip = &rec.chip, .gsi = GSI_KBD},
		   (struct irq_line){.chip = &rec.chip, .gsi = GSI_AUX});
}

static uint8_t status(struct i8042 *k)
{
	return i8042_command_ops.read(k, 0, 1);
}

static uint8_t rd(struct i8042 *k)
{
	return i8042_data_ops.read(k, 0, 1);
}

static void cmd(struct i8042 *k, uint8_t c)
{
	i8042_command_ops.write(k, 0, c, 1);
}

static void wr(struct i8042 *k, uint8_t d)
{
	i8042_data_ops.write(k, 0, d, 1);
}

/* Linux's i8042_command(): the command, its parameter bytes, then one read per result byte
 * after waiting for OBF. Returns the first result (or -1 when OBF never came). */
static int command1(struct i8042 *k, uint8_t c, int param)
{
	cmd(k, c);
	if (param >= 0)
		wr(k, (uint8_t)param);
	if (!(status(k) & STR_OBF))
		return -1;
	return rd(k);
}

/* Reads everything queued, as i8042_flush() and an interrupt handler would; (max) bounds it
 * so a broken device cannot hang the test. */
static unsigned int drain(struct i8042 *k, uint8_t *buf, unsigned int max)
{
	unsigned int n = 0;

	while ((status(k) & STR_OBF) && n < max) {
		uint8_t b = rd(k);

		if (buf)
			buf[n] = b;
		n++;
	}
	return n;
}

#define CHECK_BYTES(k, ...)                                                                        \
	do {                                                                                       \
		static const uint8_t want_[] = {__VA_ARGS__};                                      \
		uint8_t got_[64];                                                                  \
		unsigned int n_ = drain(k, got_, sizeof(got_));                                    \
		CHECK_EQ(n_, sizeof(want_));                                                       \
		for (unsigned int i_ = 0; i_ < n_ && i_ < sizeof(want_); i_++)                     \
			CHECK_EQ(got_[i_], want_[i_]);                                             \
	} while (0)

static uint8_t read_ctr(struct i8042 *k)
{
	return (uint8_t)command1(k, 0x20, -1);
}

static void write_ctr(struct i8042 *k, uint8_t v)
{
	cmd(k, 0x60);
	wr(k, v);
}

/* The controller half of i8042_probe(): i8042_controller_check, selftest, controller_init,
 * check_mux, check_aux (with its IRQ 12 delivery test), then the keyboard port enabled. */
static void test_linux_probe(void)
{
	struct i8042 k;
	uint8_t ctr;

	setup(&k);
	CHECK_EQ(status(&k), STR_KEYLOCK | STR_SYS); /* nothing queued, not inhibited */
	CHECK_EQ(drain(&k, NULL, 16), 0);

	CHECK_EQ(command1(&k, 0xaa, -1), 0x55);
	CHECK(status(&k) & STR_CMD);
	ctr = read_ctr(&k);
	CHECK_EQ(ctr, CTR_XLATE | CTR_SYS | CTR_KBDINT | CTR_AUXDIS); /* as a BIOS leaves it */
	CHECK_EQ(read_ctr(&k), ctr); /* Linux wants two equal reads */
	ctr = (ctr | CTR_KBDDIS) & ~CTR_KBDINT;
	write_ctr(&k, ctr);
	CHECK(!(status(&k) & STR_CMD)); /* the last write went to the data port */
	CHECK_EQ(read_ctr(&k), ctr);

	/* i8042_set_mux_mode(true): f0, 56, a4 come back unchanged, so no MUX. */
	CHECK_EQ(command1(&k, 0xd3, 0xf0), 0xf0);
	CHECK_EQ(command1(&k, 0xd3, 0x56), 0x56);
	cmd(&k, 0xd3);
	wr(&k, 0xa4);
	CHECK_EQ(status(&k) & (STR_OBF | STR_AUXDATA), STR_OBF | STR_AUXDATA);
	CHECK_EQ(rd(&k), 0xa4);

	/* i8042_check_aux: the loop answers from the AUX side, the enable bit toggles. */
	cmd(&k, 0xd3);
	wr(&k, 0x5a);
	CHECK(status(&k) & STR_AUXDATA);
	CHECK_EQ(rd(&k), 0x5a);
	CHECK(!(status(&k) & STR_AUXDATA));
	cmd(&k, 0xa7);
	CHECK(read_ctr(&k) & CTR_AUXDIS);
	cmd(&k, 0xa8);
	CHECK(!(read_ctr(&k) & CTR_AUXDIS));
	CHECK_EQ(command1(&k, 0xa9, -1), 0x00);
	CHECK_EQ(command1(&k, 0xab, -1), 0x00);

	/* The AUX IRQ test: AUXINT on, a5 through the loop must raise IRQ 12 and not IRQ 1. */
	ctr = (read_ctr(&k) | CTR_AUXINT) & ~CTR_AUXDIS;
	write_ctr(&k, ctr);
	rec.edges[GSI_KBD] = rec.edges[GSI_AUX] = 0;
	cmd(&k, 0xd3);
	wr(&k, 0xa5);
	CHECK_EQ(rec.edges[GSI_AUX], 1);
	CHECK_EQ(rec.level[GSI_AUX], 1);
	CHECK_EQ(rec.edges[GSI_KBD], 0);
	CHECK_EQ(status(&k) & (STR_OBF | STR_AUXDATA), STR_OBF | STR_AUXDATA);
	CHECK_EQ(rd(&k), 0xa5);
	CHECK_EQ(rec.level[GSI_AUX], 0);
	write_ctr(&k, (ctr | CTR_AUXDIS) & ~CTR_AUXINT);

	/* A write to the absent AUX device times out. */
	cmd(&k, 0xd4);
	wr(&k, 0xff);
	CHECK_EQ(status(&k) & (STR_OBF | STR_AUXDATA | STR_TIMEOUT),
		 STR_OBF | STR_AUXDATA | STR_TIMEOUT);
	CHECK_EQ(rd(&k), 0xfe);

	/* i8042_enable_kbd_port, then what atkbd_connect sends: GETID (translated: 0xab 0x41),
	 * RESET_DIS, SETLEDS 0, SETREP, ENABLE. Every byte is one IRQ 1 edge. */
	ctr = (read_ctr(&k) & ~CTR_KBDDIS) | CTR_KBDINT;
	write_ctr(&k, ctr);
	rec.edges[GSI_KBD] = 0;
	wr(&k, 0xf2);
	CHECK_EQ(rec.level[GSI_KBD], 1);
	CHECK_BYTES(&k, 0xfa, 0xab, 0x41);
	CHECK_EQ(rec.edges[GSI_KBD], 3);
	CHECK_EQ(rec.level[GSI_KBD], 0);
	CHECK_EQ(rec.edges[GSI_AUX], 1); /* only the loop test's */
	wr(&k, 0xf5);
	CHECK_BYTES(&k, 0xfa);
	wr(&k, 0xed);
	CHECK_BYTES(&k, 0xfa);
	wr(&k, 0x00);
	CHECK_BYTES(&k, 0xfa);
	wr(&k, 0xf3);
	wr(&k, 0x00);
	CHECK_BYTES(&k, 0xfa, 0xfa);
	wr(&k, 0xf4);
	CHECK_BYTES(&k, 0xfa);
	wr(&k, 0xff);
	CHECK_BYTES(&k, 0xfa, 0xaa);
	wr(&k, 0xee);
	CHECK_BYTES(&k, 0xee);
	/* The scan set reads as 2, translated 0x41 (atkbd_select_set only asks untranslated). */
	wr(&k, 0xf0);
	wr(&k, 0x00);
	CHECK_BYTES(&k, 0xfa, 0xfa, 0x41);

	/* Untranslated (i8042.direct=1): the keyboard's own bytes. */
	write_ctr(&k, ctr & ~CTR_XLATE);
	wr(&k, 0xf2);
	CHECK_BYTES(&k, 0xfa, 0xab, 0x83);
	wr(&k, 0xf0);
	wr(&k, 0x03); /* set 3 asked, set 2 kept, as atkbd then reads back */
	wr(&k, 0xf0);
	wr(&k, 0x00);
	CHECK_BYTES(&k, 0xfa, 0xfa, 0xfa, 0xfa, 0x02);
	/* A command in place of an argument is a new command (IBM PC/AT reference). */
	wr(&k, 0xed);
	wr(&k, 0xf2);
	CHECK_BYTES(&k, 0xfa, 0xfa, 0xab, 0x83);
	/* Resend repeats the last byte sent. */
	wr(&k, 0xfe);
	CHECK_BYTES(&k, 0x83);
	/* 0xd2 comes back as keyboard data, 0xd0 shows the output port. */
	CHECK_EQ(command1(&k, 0xd2, 0x42), 0x42);
	CHECK_EQ(command1(&k, 0xd0, -1) & 0x03, 0x03); /* not in reset, A20 on */
	CHECK_EQ(stop_reason(&stop), STOP_NONE);
	CHECK_EQ(status(&k) & STR_IBF, 0);
	i8042_fini(&k);
}

/* Ctrl+Alt+Del: set 1 with XLATE, set 2 without, IRQ 1 only when KBDINT is set, held while
 * the keyboard interface is disabled, refused while the keyboard is disabled or full. */
static void test_ctrl_alt_del(void)
{
	struct i8042 k;

	setup(&k);
	CHECK_EQ(i8042_send_ctrl_alt_del(&k), 0);
	CHECK_EQ(rec.level[GSI_KBD], 1);
	CHECK_EQ(status(&k) & (STR_OBF | STR_AUXDATA), STR_OBF);
	/* Ctrl 1d, Alt 38, Del e0 53; Del e0 d3, Alt b8, Ctrl 9d. */
	CHECK_BYTES(&k, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d);
	CHECK_EQ(rec.edges[GSI_KBD], 8);
	CHECK_EQ(rec.level[GSI_KBD], 0);
	CHECK_EQ(rec.edges[GSI_AUX], 0);

	/* Set 2 with translation off. */
	write_ctr(&k, CTR_SYS | CTR_KBDINT);
	rec.edges[GSI_KBD] = 0;
	CHECK_EQ(i8042_send_ctrl_alt_del(&k), 0);
	CHECK_BYTES(&k, 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14);
	CHECK_EQ(rec.edges[GSI_KBD], 11);

	/* KBDINT clear: the bytes are there for polling, no interrupt. */
	write_ctr(&k, CTR_SYS | CTR_XLATE);
	rec.edges[GSI_KBD] = 0;
	CHECK_EQ(i8042_send_ctrl_alt_del(&k), 0);
	CHECK(status(&k) & STR_OBF);
	CHECK_EQ(rec.edges[GSI_KBD], 0);
	/* Setting KBDINT with a byte waiting raises the line at once. */
	write_ctr(&k, CTR_SYS | CTR_XLATE | CTR_KBDINT);
	CHECK_EQ(rec.edges[GSI_KBD], 1);
	CHECK_BYTES(&k, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d);

	/* Keyboard interface disabled (0xad): the keyboard holds the keys; 0xae lets them in. */
	cmd(&k, 0xad);
	CHECK(read_ctr(&k) & CTR_KBDDIS);
	rec.edges[GSI_KBD] = 0;
	CHECK_EQ(i8042_send_ctrl_alt_del(&k), 0);
	CHECK(!(status(&k) & STR_OBF));
	CHECK_EQ(rec.edges[GSI_KBD], 0);
	/* A second sequence does not fit beside the first: refused whole. */
	CHECK_EQ(i8042_send_ctrl_alt_del(&k), -ENOSPC);
	cmd(&k, 0xae);
	CHECK_BYTES(&k, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d);
	CHECK(!(read_ctr(&k) & CTR_KBDDIS));

	/* A keyboard told to stop scanning (0xf5) sends no keys until 0xf4. */
	wr(&k, 0xf5);
	CHECK_BYTES(&k, 0xfa);
	CHECK_EQ(i8042_send_ctrl_alt_del(&k), -EAGAIN);
	CHECK_EQ(drain(&k, NULL, 64), 0);
	wr(&k, 0xf4);
	CHECK_BYTES(&k, 0xfa);
	CHECK_EQ(i8042_send_ctrl_alt_del(&k), 0);
	CHECK_EQ(drain(&k, NULL, 64), 8);
	i8042_fini(&k);
}

/* Command 0xfe (and any 0xf0-0xfe pulse with bit 0 clear) and output port bit 0 written as 0
 * reset the machine; the rest do not. A zeroed struct with only .stop set, as cli/ sets it
 * up before i8042_init() is wired, still resets and answers without interrupt lines. */
static void test_reset(void)
{
	struct i8042 k;
	struct i8042 z = {0};

	setup(&k);
	cmd(&k, 0xff); /* pulse nothing */
	CHECK_EQ(stop_reason(&stop), STOP_NONE);
	cmd(&k, 0xd1);
	wr(&k, 0xdf); /* A20 on, reset line high: Linux's A20 code writes this */
	CHECK_EQ(stop_reason(&stop), STOP_NONE);
	cmd(&k, 0xfe);
	CHECK_EQ(stop_reason(&stop), STOP_RESET);
	i8042_fini(&k);

	setup(&k);
	cmd(&k, 0xd1);
	wr(&k, 0xde);
	CHECK_EQ(stop_reason(&stop), STOP_RESET);
	i8042_fini(&k);

	memset(&stop, 0, sizeof(stop));
	z.stop = &stop;
	CHECK_EQ(command1(&z, 0xaa, -1), 0x55);
	CHECK_EQ(i8042_send_ctrl_alt_del(&z), 0); /* command byte 0: set 2, no interrupt */
	CHECK_BYTES(&z, 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14);
	CHECK_EQ(stop_reason(&stop), STOP_NONE);
	cmd(&z, 0xfe);
	CHECK_EQ(stop_reason(&stop), STOP_RESET);
}

static uint32_t rng_state = 0x8042;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void check_bounds(const struct i8042 *k)
{
	CHECK(k->out_count <= I8042_OUT_QUEUE);
	CHECK(k->out_head < I8042_OUT_QUEUE);
	CHECK(k->kbd_count <= I8042_KBD_BUFFER);
	CHECK(k->kbd_head < I8042_KBD_BUFFER);
}

/* Guests that write and never read: the queues stay bounded, and what comes out afterwards is
 * at most what fits, with the keyboard's overrun code where it lost bytes. */
static void test_hostile(void)
{
	struct i8042 k;
	uint8_t buf[64];
	unsigned int n;
	int accepted = 0;

	/* Keyboard commands with nobody reading: the keyboard's buffer fills, its last byte
	 * becomes the overrun code (0x00 in set 2, translated 0xff). */
	setup(&k);
	write_ctr(&k, CTR_SYS | CTR_KBDINT);
	for (int i = 0; i < 5000; i++)
		wr(&k, 0xf2);
	check_bounds(&k);
	n = drain(&k, buf, sizeof(buf));
	CHECK_EQ(n, 1 + I8042_KBD_BUFFER); /* the output buffer, then the keyboard's 16 */
	CHECK_EQ(buf[0], 0xfa);
	CHECK_EQ(buf[n - 1], 0x00);
	i8042_fini(&k);

	/* Controller commands with nobody reading. */
	setup(&k);
	for (int i = 0; i < 5000; i++)
		cmd(&k, 0x20);
	check_bounds(&k);
	CHECK_EQ(drain(&k, NULL, 64), I8042_OUT_QUEUE);
	i8042_fini(&k);

	/* A command byte of 0xff: reserved bit dropped, both ports disabled, XLATE on. */
	setup(&k);
	write_ctr(&k, 0xff);
	CHECK_EQ(read_ctr(&k), 0x7f);
	CHECK_EQ(i8042_send_ctrl_alt_del(&k), 0);
	CHECK(!(status(&k) & STR_OBF)); /* KBDDIS holds the keys */
	CHECK_EQ(stop_reason(&stop), STOP_NONE);
	i8042_fini(&k);

	/* Thousands of Ctrl+Alt+Del with nobody reading: exactly one sequence gets in. */
	setup(&k);
	for (int i = 0; i < 5000; i++)
		accepted += i8042_send_ctrl_alt_del(&k) == 0;
	check_bounds(&k);
	CHECK_EQ(accepted, 1);
	CHECK_BYTES(&k, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d);
	i8042_fini(&k);

	/* Random traffic on both ports, reads now and then. */
	setup(&k);
	for (int i = 0; i < 200000; i++) {
		uint32_t r = rnd();

		switch (r & 7) {
		case 0:
		case 1:
		case 2:
			cmd(&k, (uint8_t)(r >> 8));
			break;
		case 3:
		case 4:
		case 5:
			wr(&k, (uint8_t)(r >> 8));
			break;
		case 6:
			rd(&k);
			break;
		case 7:
			i8042_send_ctrl_alt_del(&k);
			break;
		}
		if ((i & 255) == 0)
			check_bounds(&k);
	}
	check_bounds(&k);
	CHECK(drain(&k, NULL, 64) <= I8042_OUT_QUEUE + I8042_KBD_BUFFER);
	i8042_fini(&k);
}

int main(void)
{
	test_linux_probe();
	test_ctrl_alt_del();
	test_reset();
	test_hostile();
	return t_done();
}
