/* dev_state.h: the legacy devices' state to and from a snapshot's state file
 * (core/snapfile.h): the 8250, the i8042 and the CMOS index. Each restore checks every value
 * it is given (indices inside their buffers) and returns -EINVAL with the reason in (err). */
#ifndef MVM_DEV_DEV_STATE_H
#define MVM_DEV_DEV_STATE_H

#include <stddef.h>

#include "core/snapfile.h"
#include "dev/legacy.h"
#include "dev/uart8250.h"

void uart8250_save(struct uart8250 *u, struct snap_writer *w);
int uart8250_restore(struct uart8250 *u, const struct snap_reader *r, char *err, size_t errlen);
void i8042_save(struct i8042 *k, struct snap_writer *w);
int i8042_restore(struct i8042 *k, const struct snap_reader *r, char *err, size_t errlen);
void cmos_save(struct cmos *c, struct snap_writer *w);
int cmos_restore(struct cmos *c, const struct snap_reader *r, char *err, size_t errlen);

#endif
