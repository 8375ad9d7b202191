/* i8042.c: the keyboard controller's reset line, as Linux's reboot=k uses it. */
#include "dev/legacy.h"

/* Controller commands written to port 0x64 (IBM PC/AT technical reference). */
#define I8042_CMD_PULSE_RESET 0xfe

static uint64_t i8042_read(void *dev, uint64_t off, unsigned int size)
{
	/* Status 0: output buffer empty, input buffer empty, so the guest never waits on us. */
	return 0;
}

static void i8042_data_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	/* Keyboard data: there is no keyboard. */
}

static void i8042_command_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	struct i8042 *k = dev;

	if ((val & 0xff) == I8042_CMD_PULSE_RESET)
		stop_request(k->stop, STOP_RESET, 0);
}

const struct bus_ops i8042_data_ops = {.read = i8042_read, .write = i8042_data_write};
const struct bus_ops i8042_command_ops = {.read = i8042_read, .write = i8042_command_write};
