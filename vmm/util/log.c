/* log.c: leveled logging to stderr. */
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic int current_level = LOG_WARN;
static _Atomic int log_fd = STDERR_FILENO;
static _Thread_local char last_error[512];

void log_set_fd(int fd)
{
	atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
}

const char *log_last_error(void)
{
	return last_error;
}

void log_clear_last_error(void)
{
	last_error[0] = 0;
}

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&current_level, level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return atomic_load_explicit(&current_level, memory_order_relaxed);
}

void log_init_from_env(void)
{
	static const char *const names[] = {"err", "warn", "info", "debug"};
	const char *v = getenv("MVM_LOG");

	if (!v)
		return;
	for (int i = 0; i < 4; i++)
		if (!strcmp(v, names[i]))
			log_set_level(i);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const tags[] = {"error", "warning", "info", "debug"};
	char buf[1024];
	va_list ap;
	int n, saved_errno = errno;

	if (level == LOG_ERR) {
		va_start(ap, fmt);
		vsnprintf(last_error, sizeof(last_error), fmt, ap);
		va_end(ap);
	}
	if (level > log_get_level())
		return;
	/* One write per message, so lines from vCPU threads do not interleave. */
	n = snprintf(buf, sizeof(buf), "mvm: %s: ", tags[level]);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(buf);
	if (n && buf[n - 1] != '\n') {
		buf[n++] = '\n';
		buf[n] = 0;
	}
	if (write(atomic_load_explicit(&log_fd, memory_order_relaxed), buf, n) < 0) {
		/* Nowhere left to say it. */
	}
	/* Callers log, then return -errno: what they return must be their call's error. */
	errno = saved_errno;
}
