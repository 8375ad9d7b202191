/* legacy.h: the small PC port devices a guest expects: the i8042 keyboard controller, the
 * debug-exit port, the CMOS RTC and ports that only need to exist (POST code 0x80). */
#ifndef MVM_DEV_LEGACY_H
#define MVM_DEV_LEGACY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/irq.h"
#include "core/stop.h"

#define I8042_DATA_PORT	   0x60
#define I8042_COMMAND_PORT 0x64
#define DEBUG_EXIT_PORT	   0xf4
#define CMOS_PORT	   0x70
#define POST_PORT	   0x80

/* i8042 keyboard controller with an AT keyboard (scan code set 2) on its keyboard port and
 * nothing on its auxiliary port, as Linux's i8042 and atkbd drivers probe and use them: status
 * and command byte, self and interface tests, AUX loop-back, output port, translation to set 1,
 * IRQ 1 (and 12) following the output buffer, and the reset line (command 0xfe, or output port
 * bit 0 written as 0) that stops the machine with STOP_RESET (Linux's reboot=k). The data ops
 * go at 0x60, the command ops at 0x64, one port each.
 *
 * A zeroed struct with only .stop set is a working controller without interrupt lines and with
 * a command byte of 0 (no BIOS ran); i8042_init() gives the state a PC BIOS leaves. */
#define I8042_OUT_QUEUE	 16 /* bytes the controller holds for the guest (Linux flushes 16) */
#define I8042_KBD_BUFFER 16 /* the AT keyboard's own buffer (IBM PC/AT Technical Reference) */

struct i8042_byte {
	uint8_t data;
	uint8_t status; /* status bits that go with it: AUXDATA, TIMEOUT */
};

struct i8042 {
	/* NOTE: glibc's PTHREAD_MUTEX_INITIALIZER is all zero bytes, so a zeroed struct that
	 * never met i8042_init() has a usable lock. */
	pthread_mutex_t lock;
	struct stop_ctl *stop;	 /* borrowed */
	struct irq_line kbd_irq; /* ISA IRQ 1; .chip NULL: no line */
	struct irq_line aux_irq; /* ISA IRQ 12; .chip NULL: no line */

	uint8_t ram[32];       /* 8042 RAM as commands 0x20-0x3f/0x60-0x7f see it; [0] is the
				* command byte */
	uint8_t outport;       /* output port bits the guest wrote with 0xd1 */
	uint8_t pending;       /* controller command waiting for its data byte, 0 if none */
	bool last_was_command; /* status bit 3: the last write went to port 0x64 */
	bool xlate_release;    /* translating: the keyboard sent 0xf0, the code comes next */
	uint8_t last_read;     /* what port 0x60 returns while nothing is queued */
	int kbd_level, aux_level;

	/* The output buffer and the results queued behind it; out[out_head] is what port 0x60
	 * returns next. */
	struct i8042_byte out[I8042_OUT_QUEUE];
	unsigned int out_head, out_count;

	/* The keyboard: bytes it has for the controller, the command waiting for its argument,
	 * the last byte sent (for Resend), and whether it scans keys (0xf5 stops it). */
	uint8_t kbd_buf[I8042_KBD_BUFFER];
	unsigned int kbd_head, kbd_count;
	uint8_t kbd_pending;
	uint8_t kbd_last;
	bool kbd_disabled;
};
extern const struct bus_ops i8042_data_ops;
extern const struct bus_ops i8042_command_ops;

/* Initializes (k) as a PC BIOS leaves it: translation on, keyboard interrupt on, system flag
 * set, AUX port disabled. (stop) receives the reset; (kbd_irq) and (aux_irq) are ISA IRQs 1
 * and 12, edge-triggered (a line's .chip may be NULL: no interrupt). */
void i8042_init(struct i8042 *k, struct stop_ctl *stop, struct irq_line kbd_irq,
		struct irq_line aux_irq);
void i8042_fini(struct i8042 *k);

/* Presses and releases Left Ctrl, Left Alt and Delete on the keyboard (Firecracker's
 * SendCtrlAltDel). Returns 0 when all six key events are queued, -EAGAIN while the guest has
 * the keyboard disabled (command 0xf5: a keyboard that does not scan sends nothing), -ENOSPC
 * when the keyboard's buffer has no room for the whole sequence (the guest reads nothing;
 * nothing is queued, so no key is left pressed). Any thread. */
int i8042_send_ctrl_alt_del(struct i8042 *k);

/* Debug exit (as QEMU's isa-debug-exit): a write of value V stops the machine with
 * STOP_GUEST_EXIT and status V & 0xff. */
struct debug_exit {
	struct stop_ctl *stop; /* borrowed */
};
extern const struct bus_ops debug_exit_ops;

/* MC146818 CMOS RTC at 0x70/0x71: the time of day (UTC, BCD, 24-hour) read from the host
 * clock, status registers saying the clock is valid and not updating, other bytes zero. */
struct cmos {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t ram[128];
};
void cmos_init(struct cmos *c);
extern const struct bus_ops cmos_ops;

/* A port that accepts writes and reads as zero (the POST code port 0x80, which Linux uses as
 * an I/O delay). */
extern const struct bus_ops sink_ops;

#endif
