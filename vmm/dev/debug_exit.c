/* debug_exit.c: the test guests' way out: the value written is mvm's exit status. */
#include "dev/legacy.h"

static uint64_t debug_exit_read(void *dev, uint64_t off, unsigned int size)
{
	return 0;
}

static void debug_exit_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	struct debug_exit *d = dev;

	stop_request(d->stop, STOP_GUEST_EXIT, (int)(val & 0xff));
}

const struct bus_ops debug_exit_ops = {.read = debug_exit_read, .write = debug_exit_write};

static uint64_t sink_read(void *dev, uint64_t off, unsigned int size)
{
	return 0;
}

static void sink_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
}

const struct bus_ops sink_ops = {.read = sink_read, .write = sink_write};
