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

	/* log_set_fd() moves every message to the file, LOG_OFF silences even errors, and the
	 * thread's last error is kept whatever the level (the API reports it to clients). */
	{
		char path[] = "/tmp/mvm-test-log-XXXXXX", text[256];
		int fd = mkstemp(path);
		ssize_t n;

		CHECK(fd >= 0);
		unlink(path);
		log_clear_last_error();
		CHECK_EQ(log_last_error()[0], 0);
		log_set_fd(fd);
		pr_err("disk '%s' is locked", "a.img");
		log_set_level(LOG_OFF);
		pr_err("silenced %d", 2);
		log_set_level(LOG_WARN);
		pr_info("below the level");
		log_set_fd(2);
		n = pread(fd, text, sizeof(text) - 1, 0);
		CHECK(n > 0);
		text[n > 0 ? n : 0] = 0;
		CHECK_STR(text, "mvm: error: disk 'a.img' is locked\n");
		CHECK_STR(log_last_error(), "silenced 2");
		log_clear_last_error();
		CHECK_STR(log_last_error(), "");
		close(fd);
	}
	return t_done();
}
