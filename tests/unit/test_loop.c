/* test_loop.c: the io_uring loop: completions reach their op, stop from another thread. */
#include "core/loop.h"

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
	return t_done();
}
