/* legacy.h: the small PC port devices a guest expects: the i8042 reset line, the debug-exit
 * port, the CMOS RTC and ports that only need to exist (POST code 0x80). */
#ifndef MVM_DEV_LEGACY_H
#define MVM_DEV_LEGACY_H

#include <pthread.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/stop.h"

#define I8042_DATA_PORT	   0x60
#define I8042_COMMAND_PORT 0x64
#define DEBUG_EXIT_PORT	   0xf4
#define CMOS_PORT	   0x70
#define POST_PORT	   0x80

/* i8042 keyboard controller: enough for Linux's reboot=k (command 0xfe pulses the reset
 * line, which stops the machine with STOP_RESET). The data ops go at 0x60, the command
 * ops at 0x64, one port each. */
struct i8042 {
	struct stop_ctl *stop; /* borrowed */
};
extern const struct bus_ops i8042_data_ops;
extern const struct bus_ops i8042_command_ops;

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
