/* test_log.h: capturing what a library logs on stderr, so a test of a failure path stays quiet
 * and can check the message. Single-threaded tests only. */
#ifndef MVM_TEST_LOG_H
#define MVM_TEST_LOG_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"

static char logbuf[4096];
static int log_fd = -1, saved_fd = -1;

static inline void quiet_begin(void)
{
	if (log_fd < 0) {
		FILE *f = tmpfile();

		if (!f) {
			perror("tmpfile");
			exit(T_EXIT_FAIL);
		}
		log_fd = dup(fileno(f));
		fclose(f);
	}
	fflush(stderr);
	if (ftruncate(log_fd, 0) || lseek(log_fd, 0, SEEK_SET) < 0) {
		perror("ftruncate");
		exit(T_EXIT_FAIL);
	}
	saved_fd = dup(2);
	dup2(log_fd, 2);
}

static inline const char *quiet_end(void)
{
	ssize_t n;

	fflush(stderr);
	dup2(saved_fd, 2);
	close(saved_fd);
	n = pread(log_fd, logbuf, sizeof(logbuf) - 1, 0);
	logbuf[n > 0 ? n : 0] = 0;
	return logbuf;
}

#endif
