/* test_loop.c: the io_uring loop: completions reach their op, stop from another thread; the
 * ring takes only the operations mvm uses. */
#include "core/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "test.h"
#include "util/util.h"

struct reader {
	struct loop_op op;
	struct loop *loop;
	int fd;
	char buf[16];
	int total, calls;
};

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
	io_uring_prep_read(loop_sqe(r->loop, &r->op), r->fd, r->buf, sizeof(r->buf), -1);
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

	CHECK_EQ(loop_init(&l, 8), 0);
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
	io_uring_prep_socket(sqe, 1, 2, 0, 0);
	CHECK_EQ(complete_one(&l), -EACCES);
	/* An allowed operation with an SQE flag mvm never sets. */
	sqe = io_uring_get_sqe(&l.ring);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
	CHECK_EQ(complete_one(&l), -EACCES);
	/* No io_uring_register() operation once the ring runs. */
	memset(&probe, 0, sizeof(probe));
	CHECK_EQ(io_uring_register(l.ring.ring_fd, IORING_REGISTER_PROBE, &probe, 0), -EACCES);
	loop_fini(&l);
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
	io_uring_prep_read(loop_sqe(&loop, &r.op), p[0], r.buf, sizeof(r.buf), -1);
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
	return t_done();
}
