/* i8042.c: the PC's 8042 keyboard controller with an AT keyboard behind it, as Linux's i8042
 * and atkbd drivers probe and drive them, and as reboot=k resets through it.
 *
 * Sources: IBM PC/AT Technical Reference (keyboard controller and keyboard sections), IBM PS/2
 * Hardware Interface Technical Reference (controller commands 0xa7-0xd4, AUX port), Intel
 * UPI-41/42 (8042) datasheet (one output buffer, OBF/IBF), and what Linux 6.1's
 * drivers/input/serio/i8042.c and drivers/input/keyboard/atkbd.c send and expect.
 *
 * Model: the controller has one output buffer (out[out_head]) and keeps its own command results
 * queued behind it; the keyboard keeps its bytes in its own 16-byte buffer and hands one over
 * only when the output buffer is empty and the keyboard interface is enabled, translating
 * set 2 to set 1 on the way when the command byte asks for it. IRQ 1 (IRQ 12 for AUX bytes)
 * is the output-buffer-full signal gated by the command byte, so every byte is one edge. */
#define pr_fmt(fmt) "i8042: " fmt
#include "dev/legacy.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"

/* Status register (port 0x64 read). */
#define STR_OBF	    0x01 /* output buffer full */
#define STR_IBF	    0x02 /* input buffer full: never, writes are taken at once */
#define STR_SYS	    0x04 /* system flag, a copy of command byte bit 2 */
#define STR_CMD	    0x08 /* the last write was to port 0x64 (A2) */
#define STR_KEYLOCK 0x10 /* 1: keyboard not inhibited (Linux warns "Keylock active" on 0) */
#define STR_AUXDATA 0x20 /* the output buffer holds a byte from the AUX port */
#define STR_TIMEOUT 0x40

/* Command byte (controller RAM byte 0). */
#define CTR_KBDINT   0x01
#define CTR_AUXINT   0x02
#define CTR_SYS	     0x04
#define CTR_KBDDIS   0x10
#define CTR_AUXDIS   0x20
#define CTR_XLATE    0x40
#define CTR_RESERVED 0x80 /* "must be 0" (PS/2 reference) */

/* As a PC BIOS leaves it after POST: Linux keeps XLATE as found (i8042_controller_init) and
 * then atkbd reads set-1 codes. */
#define CTR_BIOS (CTR_XLATE | CTR_SYS | CTR_KBDINT | CTR_AUXDIS)

/* Controller commands (port 0x64 write). */
#define CMD_READ_RAM	  0x20 /* 0x20-0x3f: RAM byte n & 0x1f; 0x20 is the command byte */
#define CMD_WRITE_RAM	  0x60 /* 0x60-0x7f, data byte follows */
#define CMD_AUX_DISABLE	  0xa7
#define CMD_AUX_ENABLE	  0xa8
#define CMD_AUX_TEST	  0xa9
#define CMD_SELF_TEST	  0xaa
#define CMD_KBD_TEST	  0xab
#define CMD_KBD_DISABLE	  0xad
#define CMD_KBD_ENABLE	  0xae
#define CMD_READ_OUTPORT  0xd0
#define CMD_WRITE_OUTPORT 0xd1
#define CMD_WRITE_KBD_OUT 0xd2 /* the data byte comes back as if from the keyboard */
#define CMD_WRITE_AUX_OUT 0xd3 /* ... as if from the AUX port (Linux's AUX loop test) */
#define CMD_WRITE_AUX	  0xd4 /* the data byte goes to the AUX device */
#define CMD_PULSE	  0xf0 /* 0xf0-0xff: pulse output port bits whose command bit is 0 */

#define SELF_TEST_OK	  0x55
#define INTERFACE_TEST_OK 0x00

/* Output port: bit 0 is the CPU reset line (active low), bits 4 and 5 the output-buffer-full
 * signals wired to IRQ 1 and IRQ 12. */
#define OUTPORT_RESET	0x01
#define OUTPORT_A20	0x02
#define OUTPORT_KBD_OBF 0x10
#define OUTPORT_AUX_OBF 0x20

/* Keyboard commands (data port writes) and replies, IBM PC/AT Technical Reference. */
#define KBD_SET_LEDS  0xed
#define KBD_ECHO      0xee
#define KBD_SCAN_SET  0xf0
#define KBD_GET_ID    0xf2
#define KBD_TYPEMATIC 0xf3
#define KBD_ENABLE    0xf4
#define KBD_DISABLE   0xf5 /* reset to defaults and stop scanning */
#define KBD_DEFAULTS  0xf6
#define KBD_RESEND    0xfe
#define KBD_RESET     0xff
#define KBD_FIRST_COMMAND                                                                          \
	0xed /* bytes below are arguments (IBM: a command arriving in place of                     \
	      * an argument ends the previous command) */
#define KBD_ACK	    0xfa
#define KBD_BAT_OK  0xaa
#define KBD_ID0	    0xab
#define KBD_ID1	    0x83 /* MF2 keyboard */
#define KBD_OVERRUN 0x00 /* set 2's buffer overrun code */
#define KBD_SET	    2

/* Set-2 codes of the keys Ctrl+Alt+Del needs. */
#define SC2_RELEASE   0xf0
#define SC2_EXTENDED  0xe0
#define SC2_LEFT_CTRL 0x14
#define SC2_LEFT_ALT  0x11
#define SC2_DELETE    0x71 /* after 0xe0 */

/* The 8042's translation of set-2 codes 0x00-0x7f to set 1 (IBM PC/AT Technical Reference,
 * keyboard scan codes, both sets listed per key position). Bytes 0x80-0xff pass unchanged
 * (so ACK, BAT, ID and the 0xe0 prefix do) except 0x83 (F7), which becomes 0x41; the 0xf0
 * release prefix is swallowed and sets bit 7 of the next code. Checked as the exact inverse
 * of Linux atkbd's atkbd_unxlate_table, and against atkbd's expectations: ID 0xab 0x83 reads
 * 0xab 0x41, set numbers 1/2/3 read 0x43/0x41/0x3f. */
static const uint8_t xlate_set2[128] = {
	0x00, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, /* 0x00 */
	0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
	0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, /* 0x10 */
	0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
	0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, /* 0x20 */
	0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
	0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, /* 0x30 */
	0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
	0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, /* 0x40 */
	0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
	0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, /* 0x50 */
	0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
	0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, /* 0x60 */
	0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
	0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, /* 0x70 */
	0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
};

static uint8_t translate(uint8_t code)
{
	if (code < 0x80)
		return xlate_set2[code];
	return code == 0x83 ? 0x41 : code;
}

void i8042_init(struct i8042 *k, struct stop_ctl *stop, struct irq_line kbd_irq,
		struct irq_line aux_irq)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->stop = stop;
	k->kbd_irq = kbd_irq;
	k->aux_irq = aux_irq;
	k->ram[0] = CTR_BIOS;
	k->outport = OUTPORT_RESET | OUTPORT_A20;
}

void i8042_fini(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

/* Lock held. Drives a line if it exists and its level changes. */
static void set_line(const struct irq_line *line, int *cur, int level)
{
	if (*cur == level)
		return;
	*cur = level;
	if (line->chip)
		irq_line_set(line, level);
}

/* Lock held. The 8042 drives IRQ 1 (IRQ 12) from its output-buffer-full signal for keyboard
 * (AUX) bytes, each gated by its interrupt bit in the command byte (PS/2 reference). */
static void update_irq(struct i8042 *k)
{
	bool full = k->out_count > 0;
	bool aux = full && (k->out[k->out_head].status & STR_AUXDATA);

	set_line(&k->kbd_irq, &k->kbd_level, full && !aux && (k->ram[0] & CTR_KBDINT));
	set_line(&k->aux_irq, &k->aux_level, aux && (k->ram[0] & CTR_AUXINT));
}

/* Lock held. Queues a byte for the guest; when the queue is full (a guest that issues
 * commands and never reads) the byte is dropped, as the 8042 would overwrite its one buffer. */
static void out_push(struct i8042 *k, uint8_t data, uint8_t status)
{
	if (k->out_count == I8042_OUT_QUEUE) {
		pr_warn_once("output queue full (the guest does not read port 0x60); dropping");
		return;
	}
	k->out[(k->out_head + k->out_count) % I8042_OUT_QUEUE] =
		(struct i8042_byte){.data = data, .status = status};
	k->out_count++;
}

/* Lock held. Moves one keyboard byte into the output buffer if it is empty and the keyboard
 * interface is enabled; with XLATE, as set 1 (0xf0 is consumed into the next code). */
static void pump(struct i8042 *k)
{
	while (k->out_count == 0 && !(k->ram[0] & CTR_KBDDIS) && k->kbd_count > 0) {
		uint8_t code = k->kbd_buf[k->kbd_head];

		k->kbd_head = (k->kbd_head + 1) % I8042_KBD_BUFFER;
		k->kbd_count--;
		if (!(k->ram[0] & CTR_XLATE)) {
			out_push(k, code, 0);
		} else if (code == SC2_RELEASE) {
			k->xlate_release = true;
		} else {
			out_push(k, translate(code) | (k->xlate_release ? 0x80 : 0), 0);
			k->xlate_release = false;
		}
	}
}

/* Lock held. A byte from the keyboard to the controller. A full buffer keeps its first 15
 * bytes and ends with the overrun code (IBM PC/AT Technical Reference). */
static void kbd_send(struct i8042 *k, uint8_t b)
{
	unsigned int tail;

	if (k->kbd_count == I8042_KBD_BUFFER) {
		tail = (k->kbd_head + I8042_KBD_BUFFER - 1) % I8042_KBD_BUFFER;
		k->kbd_buf[tail] = KBD_OVERRUN;
		return;
	}
	k->kbd_buf[(k->kbd_head + k->kbd_count) % I8042_KBD_BUFFER] = b;
	k->kbd_count++;
	k->kbd_last = b;
}

/* Lock held. The keyboard clears its buffer on Enable, Disable, Defaults and Reset. */
static void kbd_clear(struct i8042 *k)
{
	k->kbd_count = 0;
}

/* Lock held. A byte the guest wrote to port 0x60 with no controller command pending: the
 * keyboard's command set (IBM PC/AT Technical Reference, "Commands from the system"). */
static void kbd_write(struct i8042 *k, uint8_t b)
{
	uint8_t cmd = k->kbd_pending;

	k->kbd_pending = 0;
	if (cmd && b < KBD_FIRST_COMMAND) {
		/* The argument of Set LEDs, typematic rate or scan code set. The keyboard stays in
		 * set 2, the one the 8042 translates: a request for set 1 or 3 is acknowledged
		 * and reads back as 2, which atkbd accepts (atkbd_select_set). */
		kbd_send(k, KBD_ACK);
		if (cmd == KBD_SCAN_SET && b == 0)
			kbd_send(k, KBD_SET);
		return;
	}
	switch (b) {
	case KBD_SET_LEDS:
	case KBD_TYPEMATIC:
	case KBD_SCAN_SET:
		kbd_send(k, KBD_ACK);
		k->kbd_pending = b;
		break;
	case KBD_ECHO:
		kbd_send(k, KBD_ECHO);
		break;
	case KBD_GET_ID:
		kbd_send(k, KBD_ACK);
		kbd_send(k, KBD_ID0);
		kbd_send(k, KBD_ID1);
		break;
	case KBD_ENABLE:
		kbd_clear(k);
		kbd_send(k, KBD_ACK);
		k->kbd_disabled = false;
		break;
	case KBD_DISABLE:
		kbd_clear(k);
		kbd_send(k, KBD_ACK);
		k->kbd_disabled = true;
		break;
	case KBD_DEFAULTS:
		kbd_clear(k);
		kbd_send(k, KBD_ACK);
		break;
	case KBD_RESEND:
		kbd_send(k, k->kbd_last);
		break;
	case KBD_RESET:
		/* Basic assurance test passed at once; the keyboard then scans. */
		kbd_clear(k);
		kbd_send(k, KBD_ACK);
		kbd_send(k, KBD_BAT_OK);
		k->kbd_disabled = false;
		break;
	default:
		/* Set-3 key types (0xf7-0xfd) and the rest: acknowledged, nothing changes. */
		kbd_send(k, KBD_ACK);
		break;
	}
}

/* Lock held. Returns true when the write asserts the CPU reset line. */
static bool data_byte(struct i8042 *k, uint8_t b)
{
	uint8_t cmd = k->pending;

	k->pending = 0;
	if (cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + 0x20) {
		k->ram[cmd - CMD_WRITE_RAM] = cmd == CMD_WRITE_RAM ? b & ~CTR_RESERVED : b;
		return false;
	}
	switch (cmd) {
	case CMD_WRITE_OUTPORT:
		k->outport = b;
		return !(b & OUTPORT_RESET);
	case CMD_WRITE_KBD_OUT:
		out_push(k, b, 0);
		return false;
	case CMD_WRITE_AUX_OUT:
		out_push(k, b, STR_AUXDATA);
		return false;
	case CMD_WRITE_AUX:
		/* Nothing is plugged into the AUX port: the transmission times out, which the
		 * controller reports as 0xfe with TIMEOUT (Linux: SERIO_TIMEOUT). */
		out_push(k, 0xfe, STR_AUXDATA | STR_TIMEOUT);
		return false;
	default:
		kbd_write(k, b);
		return false;
	}
}

/* Lock held. Returns true when the command pulses the CPU reset line. */
static bool command(struct i8042 *k, uint8_t c)
{
	uint8_t out;

	k->pending = 0;
	if (c >= CMD_READ_RAM && c < CMD_READ_RAM + 0x20) {
		out_push(k, k->ram[c - CMD_READ_RAM], 0);
		return false;
	}
	if ((c >= CMD_WRITE_RAM && c < CMD_WRITE_RAM + 0x20) || c == CMD_WRITE_OUTPORT ||
	    c == CMD_WRITE_KBD_OUT || c == CMD_WRITE_AUX_OUT || c == CMD_WRITE_AUX) {
		k->pending = c;
		return false;
	}
	if (c >= CMD_PULSE)
		return !(c & OUTPORT_RESET);
	switch (c) {
	case CMD_AUX_DISABLE:
		k->ram[0] |= CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		k->ram[0] &= ~CTR_AUXDIS;
		break;
	case CMD_KBD_DISABLE:
		k->ram[0] |= CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		k->ram[0] &= ~CTR_KBDDIS;
		break;
	case CMD_SELF_TEST:
		out_push(k, SELF_TEST_OK, 0);
		break;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		out_push(k, INTERFACE_TEST_OK, 0);
		break;
	case CMD_READ_OUTPORT:
		out = k->outport & ~(OUTPORT_KBD_OBF | OUTPORT_AUX_OBF);
		if (k->out_count)
			out |= k->out[k->out_head].status & STR_AUXDATA ? OUTPORT_AUX_OBF
									: OUTPORT_KBD_OBF;
		out_push(k, out, 0);
		break;
	default:
		/* Vendor commands (password, input port, MUX): the 8042 ignores what it does
		 * not implement. */
		pr_debug("command 0x%02x ignored", c);
		break;
	}
	return false;
}

static uint64_t i8042_data_read(void *dev, uint64_t off, unsigned int size)
{
	struct i8042 *k = dev;
	uint8_t v;

	pthread_mutex_lock(&k->lock);
	if (k->out_count) {
		k->last_read = k->out[k->out_head].data;
		k->out_head = (k->out_head + 1) % I8042_OUT_QUEUE;
		k->out_count--;
		/* Reading empties the output buffer, which drops its IRQ; the next byte raises
		 * it again: one edge per byte on the edge-triggered ISA lines. */
		set_line(&k->kbd_irq, &k->kbd_level, 0);
		set_line(&k->aux_irq, &k->aux_level, 0);
		pump(k);
		update_irq(k);
	}
	v = k->last_read; /* an empty buffer reads as its last byte */
	pthread_mutex_unlock(&k->lock);
	return v;
}

static uint64_t i8042_status_read(void *dev, uint64_t off, unsigned int size)
{
	struct i8042 *k = dev;
	uint8_t st = STR_KEYLOCK;

	pthread_mutex_lock(&k->lock);
	if (k->out_count)
		st |= STR_OBF | k->out[k->out_head].status;
	if (k->ram[0] & CTR_SYS)
		st |= STR_SYS;
	if (k->last_was_command)
		st |= STR_CMD;
	pthread_mutex_unlock(&k->lock);
	return st;
}

static void i8042_data_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	struct i8042 *k = dev;
	bool reset;

	pthread_mutex_lock(&k->lock);
	k->last_was_command = false;
	reset = data_byte(k, val & 0xff);
	pump(k);
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
	if (reset)
		stop_request(k->stop, STOP_RESET, 0);
}

static void i8042_command_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	struct i8042 *k = dev;
	bool reset;

	pthread_mutex_lock(&k->lock);
	k->last_was_command = true;
	reset = command(k, val & 0xff);
	pump(k);
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
	if (reset)
		stop_request(k->stop, STOP_RESET, 0);
}

int i8042_send_ctrl_alt_del(struct i8042 *k)
{
	/* Press Ctrl, Alt, Delete; release them in reverse order. Linux's keyboard handler
	 * acts on the press of Delete with both modifiers down (the default keymap's Boot
	 * action, ctrl_alt_del()). */
	static const uint8_t seq[] = {
		SC2_LEFT_CTRL, SC2_LEFT_ALT, SC2_EXTENDED, SC2_DELETE,	SC2_EXTENDED,  SC2_RELEASE,
		SC2_DELETE,    SC2_RELEASE,  SC2_LEFT_ALT, SC2_RELEASE, SC2_LEFT_CTRL,
	};
	int ret = 0;

	_Static_assert(sizeof(seq) <= I8042_KBD_BUFFER, "the sequence fits an empty buffer");
	pthread_mutex_lock(&k->lock);
	if (k->kbd_disabled) {
		ret = -EAGAIN;
	} else if (I8042_KBD_BUFFER - k->kbd_count < sizeof(seq)) {
		ret = -ENOSPC;
	} else {
		for (size_t i = 0; i < sizeof(seq); i++)
			kbd_send(k, seq[i]);
		pump(k);
		update_irq(k);
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}

const struct bus_ops i8042_data_ops = {.read = i8042_data_read, .write = i8042_data_write};
const struct bus_ops i8042_command_ops = {.read = i8042_status_read, .write = i8042_command_write};
