/* term.h: putting the controlling terminal in raw mode for the console, and always restoring
 * it: on normal exit, on error paths and on fatal signals. */
#ifndef MVM_CLI_TERM_H
#define MVM_CLI_TERM_H

/* Switches (fd) to raw mode if it is a terminal. Returns 0 (also when it is not a terminal) or
 * -errno. Installs the restore on exit and on fatal signals. */
int term_raw(int fd);
/* Restores the saved mode, if any. Idempotent and async-signal-safe. */
void term_restore(void);

#endif
