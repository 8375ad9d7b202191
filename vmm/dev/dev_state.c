/* dev_state.c: the legacy devices' state in a snapshot (dev/dev_state.h). Each device's state
 * is a fixed-width record of its own, so the state file does not depend on how the structs in
 * memory are laid out. Interrupt line levels are restored as they were: the in-kernel or
 * engine interrupt controllers are restored with the matching line state. */
#include "dev/dev_state.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct uart_state {
	uint8_t rx[UART_FIFO_SIZE];
	uint32_t rx_head, rx_count;
	uint8_t ier, lcr, mcr, lsr_err, scr, dll, dlm, fcr;
	uint8_t thre_pending, rx_waiting, pad[2];
	int32_t irq_level;
};

void uart8250_save(struct uart8250 *u, struct snap_writer *w)
{
	struct uart_state s = {0};

	pthread_mutex_lock(&u->lock);
	memcpy(s.rx, u->rx, sizeof(s.rx));
	s.rx_head = u->rx_head;
	s.rx_count = u->rx_count;
	s.ier = u->ier, s.lcr = u->lcr, s.mcr = u->mcr, s.lsr_err = u->lsr_err;
	s.scr = u->scr, s.dll = u->dll, s.dlm = u->dlm, s.fcr = u->fcr;
	s.thre_pending = u->thre_pending;
	s.irq_level = u->irq_level;
	pthread_mutex_unlock(&u->lock);
	snap_put(w, SNAP_DEV_UART, 0, &s, sizeof(s));
}

int uart8250_restore(struct uart8250 *u, const struct snap_reader *r, char *err, size_t errlen)
{
	const void *p = snap_get(r, SNAP_DEV_UART, 0, sizeof(struct uart_state));
	struct uart_state s;

	if (!p) {
		snprintf(err, errlen, "the state file has no serial port state");
		return -EINVAL;
	}
	memcpy(&s, p, sizeof(s));
	if (s.rx_head >= UART_FIFO_SIZE || s.rx_count > UART_FIFO_SIZE || s.irq_level < 0 ||
	    s.irq_level > 1) {
		snprintf(err, errlen, "the serial port state is inconsistent (FIFO %u+%u)",
			 s.rx_head, s.rx_count);
		return -EINVAL;
	}
	pthread_mutex_lock(&u->lock);
	memcpy(u->rx, s.rx, sizeof(s.rx));
	u->rx_head = s.rx_head;
	u->rx_count = s.rx_count;
	u->ier = s.ier, u->lcr = s.lcr, u->mcr = s.mcr, u->lsr_err = s.lsr_err;
	u->scr = s.scr, u->dll = s.dll, u->dlm = s.dlm, u->fcr = s.fcr;
	u->thre_pending = s.thre_pending;
	u->irq_level = s.irq_level;
	pthread_mutex_unlock(&u->lock);
	return 0;
}

struct i8042_state {
	uint8_t ram[32];
	uint8_t outport, pending, last_was_command, xlate_release, last_read;
	uint8_t kbd_pending, kbd_last, kbd_disabled;
	int32_t kbd_level, aux_level;
	uint8_t out_data[I8042_OUT_QUEUE], out_status[I8042_OUT_QUEUE];
	uint32_t out_head, out_count;
	uint8_t kbd_buf[I8042_KBD_BUFFER];
	uint32_t kbd_head, kbd_count;
};

void i8042_save(struct i8042 *k, struct snap_writer *w)
{
	struct i8042_state s = {0};

	pthread_mutex_lock(&k->lock);
	memcpy(s.ram, k->ram, sizeof(s.ram));
	s.outport = k->outport, s.pending = k->pending;
	s.last_was_command = k->last_was_command, s.xlate_release = k->xlate_release;
	s.last_read = k->last_read, s.kbd_pending = k->kbd_pending, s.kbd_last = k->kbd_last;
	s.kbd_disabled = k->kbd_disabled;
	s.kbd_level = k->kbd_level, s.aux_level = k->aux_level;
	for (unsigned int i = 0; i < I8042_OUT_QUEUE; i++) {
		s.out_data[i] = k->out[i].data;
		s.out_status[i] = k->out[i].status;
	}
	s.out_head = k->out_head, s.out_count = k->out_count;
	memcpy(s.kbd_buf, k->kbd_buf, sizeof(s.kbd_buf));
	s.kbd_head = k->kbd_head, s.kbd_count = k->kbd_count;
	pthread_mutex_unlock(&k->lock);
	snap_put(w, SNAP_DEV_I8042, 0, &s, sizeof(s));
}

int i8042_restore(struct i8042 *k, const struct snap_reader *r, char *err, size_t errlen)
{
	const void *p = snap_get(r, SNAP_DEV_I8042, 0, sizeof(struct i8042_state));
	struct i8042_state s;

	if (!p) {
		snprintf(err, errlen, "the state file has no keyboard controller state");
		return -EINVAL;
	}
	memcpy(&s, p, sizeof(s));
	if (s.out_head >= I8042_OUT_QUEUE || s.out_count > I8042_OUT_QUEUE ||
	    s.kbd_head >= I8042_KBD_BUFFER || s.kbd_count > I8042_KBD_BUFFER ||
	    s.kbd_level < 0 || s.kbd_level > 1 || s.aux_level < 0 || s.aux_level > 1) {
		snprintf(err, errlen, "the keyboard controller state is inconsistent");
		return -EINVAL;
	}
	pthread_mutex_lock(&k->lock);
	memcpy(k->ram, s.ram, sizeof(s.ram));
	k->outport = s.outport, k->pending = s.pending;
	k->last_was_command = s.last_was_command, k->xlate_release = s.xlate_release;
	k->last_read = s.last_read, k->kbd_pending = s.kbd_pending, k->kbd_last = s.kbd_last;
	k->kbd_disabled = s.kbd_disabled;
	k->kbd_level = s.kbd_level, k->aux_level = s.aux_level;
	for (unsigned int i = 0; i < I8042_OUT_QUEUE; i++) {
		k->out[i].data = s.out_data[i];
		k->out[i].status = s.out_status[i];
	}
	k->out_head = s.out_head, k->out_count = s.out_count;
	memcpy(k->kbd_buf, s.kbd_buf, sizeof(s.kbd_buf));
	k->kbd_head = s.kbd_head, k->kbd_count = s.kbd_count;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

struct cmos_state {
	uint8_t index;
	uint8_t ram[128];
};

/* The clock registers are read from the host's clock at each access: only the index and the
 * RAM the guest may have written are state. */
void cmos_save(struct cmos *c, struct snap_writer *w)
{
	struct cmos_state s;

	pthread_mutex_lock(&c->lock);
	s.index = c->index;
	memcpy(s.ram, c->ram, sizeof(s.ram));
	pthread_mutex_unlock(&c->lock);
	snap_put(w, SNAP_DEV_CMOS, 0, &s, sizeof(s));
}

int cmos_restore(struct cmos *c, const struct snap_reader *r, char *err, size_t errlen)
{
	const void *p = snap_get(r, SNAP_DEV_CMOS, 0, sizeof(struct cmos_state));
	struct cmos_state s;

	if (!p) {
		snprintf(err, errlen, "the state file has no CMOS state");
		return -EINVAL;
	}
	memcpy(&s, p, sizeof(s));
	pthread_mutex_lock(&c->lock);
	c->index = s.index & 0x7f;
	memcpy(c->ram, s.ram, sizeof(s.ram));
	pthread_mutex_unlock(&c->lock);
	return 0;
}
