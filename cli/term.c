/* term.c: raw terminal mode for the serial console, restored on every way out. */
#include "term.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;
static int saved_fd = -1;

void term_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSAFLUSH, &saved);
		saved_fd = -1;
	}
}

static void fatal_signal(int sig)
{
	term_restore();
	/* SA_RESETHAND put the default action back: re-raise for the right exit status/core. */
	raise(sig);
}

int term_raw(int fd)
{
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
	struct sigaction sa = {.sa_handler = fatal_signal, .sa_flags = SA_RESETHAND};
	struct termios raw;

	if (!isatty(fd))
		return 0;
	if (tcgetattr(fd, &saved) < 0)
		return -errno;
	raw = saved;
	/* No echo, no line editing, no signals from keys (Ctrl-C goes to the guest), no CR/NL
	 * translation; output processing kept so host-side messages stay readable. */
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(fd, TCSAFLUSH, &raw) < 0)
		return -errno;
	saved_fd = fd;
	atexit(term_restore);
	sigemptyset(&sa.sa_mask);
	for (unsigned int i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
	return 0;
}
