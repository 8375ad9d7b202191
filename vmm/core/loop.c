/* loop.c: the io_uring event loop run by the I/O thread (batch submit, batch reap). */
#define pr_fmt(fmt) "loop: " fmt
#include "core/loop.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

static void stop_done(struct loop_op *op, int res, unsigned int flags)
{
	struct loop *l = container_of(op, struct loop, stop_op);

	l->stopping = true;
}

int loop_init(struct loop *l, unsigned int entries)
{
	int ret;

	memset(l, 0, sizeof(*l));
	ret = io_uring_queue_init(entries, &l->ring, 0);
	if (ret < 0) {
		pr_err("io_uring_queue_init: %s", strerror(-ret));
		return ret;
	}
	l->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (l->stop_fd < 0) {
		ret = -errno;
		pr_err("eventfd: %s", strerror(errno));
		goto exit_ring;
	}
	l->stop_op.done = stop_done;
	struct io_uring_sqe *sqe = loop_sqe(l, &l->stop_op);

	io_uring_prep_read(sqe, l->stop_fd, &l->stop_buf, sizeof(l->stop_buf), 0);
	return 0;
exit_ring:
	io_uring_queue_exit(&l->ring);
	return ret;
}

void loop_fini(struct loop *l)
{
	io_uring_queue_exit(&l->ring);
	close(l->stop_fd);
}

struct io_uring_sqe *loop_sqe(struct loop *l, struct loop_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (!sqe) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	if (sqe)
		io_uring_sqe_set_data(sqe, op);
	return sqe;
}

int loop_submit(struct loop *l)
{
	int ret = io_uring_submit(&l->ring);

	return ret < 0 ? ret : 0;
}

void loop_run(struct loop *l)
{
	while (!l->stopping) {
		struct io_uring_cqe *cqe;
		unsigned int head, seen = 0;
		int ret;

		/* One syscall per iteration: submit what the callbacks queued and wait. */
		ret = io_uring_submit_and_wait(&l->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			pr_err("io_uring_submit_and_wait: %s", strerror(-ret));
			break;
		}
		io_uring_for_each_cqe(&l->ring, head, cqe) {
			struct loop_op *op = io_uring_cqe_get_data(cqe);

			seen++;
			if (op)
				op->done(op, cqe->res, cqe->flags);
		}
		io_uring_cq_advance(&l->ring, seen);
	}
}

static void *loop_thread(void *arg)
{
	loop_run(arg);
	return NULL;
}

int loop_start(struct loop *l)
{
	int ret = pthread_create(&l->thread, NULL, loop_thread, l);

	if (ret) {
		pr_err("pthread_create: %s", strerror(ret));
		return -ret;
	}
	l->thread_started = true;
	return 0;
}

void loop_stop(struct loop *l)
{
	uint64_t one = 1;

	/* Nothing to do on failure: the counter can only be full if a stop is pending anyway. */
	if (write(l->stop_fd, &one, sizeof(one)) < 0)
		return;
}

void loop_join(struct loop *l)
{
	if (!l->thread_started)
		return;
	loop_stop(l);
	pthread_join(l->thread, NULL);
	l->thread_started = false;
}
