/* test_log.c: the logger (util/log.h) leaves errno as it found it, so "pr_err(...); return
 * -errno;" returns the error of the failed call and not one of the logger's own writes (here: a
 * stderr that cannot be written, /dev/full, makes every write fail with ENOSPC). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "test.h"
#include "util/log.h"

int main(void)
{
	int full = open("/dev/full", O_WRONLY), saved = dup(2);

	if (full < 0 || saved < 0)
		return t_skip("/dev/full is not available");
	log_set_level(LOG_DEBUG);
	dup2(full, 2);
	errno = EPIPE;
	pr_err("a message that cannot be written: %d", 1);
	CHECK_EQ(errno, EPIPE);
	errno = EBADF;
	pr_warn("%s", "warning");
	pr_info("info");
	pr_debug("debug");
	pr_warn_once("once");
	CHECK_EQ(errno, EBADF);
	dup2(saved, 2);
	close(full);
	close(saved);
	return t_done();
}
