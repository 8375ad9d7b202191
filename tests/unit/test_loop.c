/* test_loop.c: the io_uring loop: completions reach their op, stop from another thread; the
 * ring takes only the operations mvm uses, registered files work, and a ring that requires
 * fixed files refuses an SQE naming a raw fd (the loop's own stop read included);
 * loop_drain() reaps until a condition holds, submitting what completions queue, and times out;
 * loop_fini() releases the registered files before it returns. */
#include "core/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "util/util.h"

struct reader {
	struct loop_op op;
	struct loop *loop;
	int fd;
	bool fixed;	/* (fd) is a slot of the ring's file table */
	char buf[16];
	int total, calls;
};

static void arm(struct reader *r)
{
	struct io_uring_sqe *sqe = loop_sqe(r->loop, &r->op);

	io_uring_prep_read(sqe, r->fd, r->buf, sizeof(r->buf), -1);
	if (r->fixed)
		loop_sqe_fixed(sqe);
}

static void read_done(struct loop_op *op, int res, unsigned int flags)
{
	struct reader *r = container_of(op, struct reader, op);

	r->calls++;
	if (res <= 0)
		return;
	r->total += res;
	if (r->total >= 10) {
		loop_stop(r->loop);
		return;
	}
	arm(r);
}

/* Kernels from 5.10 on can restrict a ring; on them the loop's must be. */
static bool kernel_restricts(void)
{
	struct utsname u;
	unsigned int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return true;
	return major > 5 || (major == 5 && minor >= 10);
}

/* Submits (sqe) alone and returns its completion's result. */
static int complete_one(struct loop *l)
{
	struct io_uring_cqe *cqe;
	int res;

	if (io_uring_submit(&l->ring) < 0 || io_uring_wait_cqe(&l->ring, &cqe))
		return 1;
	res = cqe->res;
	io_uring_cqe_seen(&l->ring, cqe);
	return res;
}

static void test_restrictions(void)
{
	struct loop l;
	struct io_uring_sqe *sqe;
	struct io_uring_probe probe;
	char buf[4];
	int p[2], file;

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(loop_init(&l, 8), 0);
	file = loop_file_add(&l, p[0]);
	CHECK(file >= 0);
	CHECK_EQ(loop_enable(&l), 0);
	if (!l.restricted) {
		CHECK(!kernel_restricts());
		fprintf(stderr, "io_uring restrictions not checked: kernel before 5.10\n");
		loop_fini(&l);
		return;
	}
	/* loop_init() queued its stop read; it stays pending, the ops below complete alone. */
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_nop(sqe);
	CHECK_EQ(complete_one(&l), 0);
	/* An operation mvm never uses: refused, nothing opened. */
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_openat(sqe, AT_FDCWD, "/etc/passwd", O_RDONLY, 0);
	CHECK_EQ(complete_one(&l), -EACCES);
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_unlinkat(sqe, AT_FDCWD, "/nonexistent-mvm-file", 0);
	CHECK_EQ(complete_one(&l), -EACCES);
	/* An allowed operation with an SQE flag mvm never sets. */
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
	CHECK_EQ(complete_one(&l), -EACCES);
	/* A registered file through its slot; fixed files are allowed, not required, here. */
	CHECK_EQ(write(p[1], "ab", 2), 2);
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_read(sqe, file, buf, 1, -1);
	loop_sqe_fixed(sqe);
	CHECK_EQ(complete_one(&l), 1);
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_read(sqe, p[0], buf + 1, 1, -1);
	CHECK_EQ(complete_one(&l), 1);
	CHECK(!memcmp(buf, "ab", 2));
	/* No io_uring_register() operation once the ring runs: no new file either. */
	memset(&probe, 0, sizeof(probe));
	CHECK_EQ(io_uring_register(l.ring.ring_fd, IORING_REGISTER_PROBE, &probe, 0), -EACCES);
	CHECK_EQ(loop_file_add(&l, p[1]), -EBUSY);
	CHECK_EQ(io_uring_register_files_update(&l.ring, (unsigned int)file + 1, &p[1], 1),
		 -EACCES);
	loop_fini(&l);
	close(p[0]);
	close(p[1]);
}

/* With loop_require_fixed_files(), every operation mvm uses works through a slot of the file
 * table (or, with no file, marked anyway), and the same SQE naming the raw fd is refused
 * before it touches the file. */
static void test_require_fixed(void)
{
	struct loop l;
	struct io_uring_sqe *sqe;
	char buf[4] = {0};
	int p[2], file, n;

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(loop_init(&l, 8), 0);
	file = loop_file_add(&l, p[0]);
	CHECK(file >= 0);
	loop_require_fixed_files(&l);
	CHECK_EQ(loop_enable(&l), 0);
	if (!l.restricted) {
		CHECK(!kernel_restricts());
		loop_fini(&l);
		return;
	}
	CHECK_EQ(write(p[1], "xy", 2), 2);
	/* The raw fd: refused, and the bytes are still in the pipe. */
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_read(sqe, p[0], buf, 1, -1);
	CHECK_EQ(complete_one(&l), -EACCES);
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_poll_add(sqe, p[0], POLLIN);
	CHECK_EQ(complete_one(&l), -EACCES);
	CHECK(ioctl(p[0], FIONREAD, &n) == 0 && n == 2);
	/* Its slot: served. */
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_poll_add(sqe, file, POLLIN);
	loop_sqe_fixed(sqe);
	CHECK(complete_one(&l) & POLLIN);
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_read(sqe, file, buf, 2, -1);
	loop_sqe_fixed(sqe);
	CHECK_EQ(complete_one(&l), 2);
	CHECK(!memcmp(buf, "xy", 2));
	/* Operations without a file need the flag too, and the kernel ignores it for them. */
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_nop(sqe);
	CHECK_EQ(complete_one(&l), -EACCES);
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_nop(sqe);
	loop_sqe_fixed(sqe);
	CHECK_EQ(complete_one(&l), 0);
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_cancel(sqe, &l, 0);
	loop_sqe_fixed(sqe);
	CHECK_EQ(complete_one(&l), -ENOENT);
	/* No close passes: the ring refuses one without the flag (the fd stays open), the
	 * kernel one with it (IOSQE_FIXED_FILE is invalid on IORING_OP_CLOSE). */
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_close(sqe, p[1]);
	CHECK_EQ(complete_one(&l), -EACCES);
	CHECK(fcntl(p[1], F_GETFD) >= 0);
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_close_direct(sqe, (unsigned int)file);
	loop_sqe_fixed(sqe);
	CHECK_EQ(complete_one(&l), -EBADF);
	loop_fini(&l);
	close(p[0]);
	close(p[1]);
}

/* The reader of main() again, on a ring that requires fixed files: the loop's own stop read
 * must be fixed too, or it completes with -EACCES at once and the loop stops before the
 * reader got anything. */
static void test_run_fixed(void)
{
	struct loop loop;
	struct reader r = {0};
	int p[2];

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(loop_init(&loop, 8), 0);
	r.op.done = read_done;
	r.loop = &loop;
	r.fd = loop_file_add(&loop, p[0]);
	r.fixed = true;
	CHECK(r.fd >= 0);
	loop_require_fixed_files(&loop);
	arm(&r);
	CHECK_EQ(loop_start(&loop), 0);
	usleep(20000);
	CHECK_EQ(write(p[1], "hello", 5), 5);
	usleep(10000);
	CHECK_EQ(write(p[1], "world", 5), 5);
	loop_join(&loop);
	CHECK_EQ(r.total, 10);
	loop_fini(&loop);
	close(p[0]);
	close(p[1]);
}

static bool got5(void *arg)
{
	return ((const struct reader *)arg)->total >= 5;
}

static bool got10(void *arg)
{
	return ((const struct reader *)arg)->total >= 10;
}

static bool never(void *arg)
{
	return false;
}

/* The drain at exit, on a loop whose thread never ran: the first read is submitted by
 * loop_drain(), the re-read its completion queues by the next loop_drain(). */
static void test_drain(void)
{
	struct loop l;
	struct reader r = {0};
	struct timespec a, b;
	int p[2];
	long ms;

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(loop_init(&l, 8), 0);
	r.op.done = read_done;
	r.loop = &l;
	r.fd = loop_file_add(&l, p[0]);
	r.fixed = true;
	CHECK(r.fd >= 0);
	arm(&r);
	CHECK_EQ(write(p[1], "hello", 5), 5);
	CHECK_EQ(loop_drain(&l, got5, &r, 5000), 0);
	CHECK_EQ(r.total, 5);
	CHECK_EQ(write(p[1], "world", 5), 5);
	CHECK_EQ(loop_drain(&l, got10, &r, 5000), 0);
	CHECK_EQ(r.total, 10);
	/* Nothing more comes: the timeout, measured from the last completion. */
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK_EQ(loop_drain(&l, never, &r, 100), -ETIME);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	CHECK(ms >= 90 && ms < 5000);
	loop_fini(&l);
	close(p[0]);
	close(p[1]);
}

/* loop_fini() lets go of the registered files itself, not in the kernel's later teardown of
 * the ring: a pipe whose only reader is in the table has no reader once loop_fini() returned.
 * (Without the release the reader stayed for milliseconds after the ring's fd was closed.) */
static void test_release(bool start)
{
	struct loop l;
	struct pollfd pfd;
	int p[2];

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(loop_init(&l, 8), 0);
	CHECK(loop_file_add(&l, p[0]) >= 0);
	close(p[0]); /* the table holds the only reference to the read end */
	if (start) {
		CHECK_EQ(loop_start(&l), 0);
		loop_join(&l);
	}
	pfd = (struct pollfd){.fd = p[1], .events = POLLOUT};
	CHECK_EQ(poll(&pfd, 1, 0), 1);
	CHECK(!(pfd.revents & POLLERR));
	loop_fini(&l);
	CHECK_EQ(poll(&pfd, 1, 0), 1);
	CHECK(pfd.revents & POLLERR);
	close(p[1]);
}

int main(void)
{
	struct loop loop;
	struct reader r = {0};
	int p[2];

	if (loop_init(&loop, 8))
		return t_skip("io_uring unavailable");
	CHECK_EQ(pipe(p), 0);
	r.op.done = read_done;
	r.loop = &loop;
	r.fd = p[0];
	arm(&r);
	CHECK_EQ(loop_start(&loop), 0);
	CHECK_EQ(write(p[1], "hello", 5), 5);
	usleep(10000);
	CHECK_EQ(write(p[1], "world", 5), 5);
	loop_join(&loop);
	CHECK_EQ(r.total, 10);
	CHECK(r.calls >= 1);

	/* A loop with nothing to do stops when asked from another thread. */
	struct loop idle;
	CHECK_EQ(loop_init(&idle, 4), 0);
	CHECK_EQ(loop_start(&idle), 0);
	loop_join(&idle);
	loop_fini(&idle);
	loop_fini(&loop);
	close(p[0]);
	close(p[1]);
	test_restrictions();
	test_require_fixed();
	test_run_fixed();
	test_drain();
	test_release(true);
	test_release(false);
	return t_done();
}
