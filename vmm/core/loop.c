/* loop.c: the io_uring event loop run by the I/O thread (batch submit, batch reap). */
#define pr_fmt(fmt) "loop: " fmt
#include "core/loop.h"

#include <errno.h>
#include <semaphore.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/thread_role.h"
#include "util/log.h"
#include "util/util.h"

/* Every operation mvm puts on the ring (grep io_uring_prep_ in the tree): the ring refuses
 * any other with -EACCES, so a corrupted SQE cannot open or create files. NOTE: virtio-vsock
 * needs socket, connect and sendmsg, so a forged SQE could reach a socket the process can
 * connect to. */
static const uint8_t loop_opcodes[] = {
	IORING_OP_NOP,		/* virtio-mmio: completing a control request on the loop */
	IORING_OP_READ,		/* eventfds (kicks, control, stop, irq relay), timerfds,
				 * signalfd, console input */
	IORING_OP_READV,	/* virtio-blk reads, virtio-net receive from the TAP */
	IORING_OP_WRITEV,	/* virtio-blk writes (RWF_DSYNC too), net transmit, console */
	IORING_OP_FSYNC,	/* virtio-blk flush (IORING_FSYNC_DATASYNC) */
	IORING_OP_FALLOCATE,	/* virtio-blk discard and write-zeroes */
	IORING_OP_POLL_ADD,	/* TAP and console readiness */
	IORING_OP_ASYNC_CANCEL,	/* virtio-net and -console cancel their reads at reset */
	IORING_OP_CLOSE,	/* loop_fini(), virtio-vsock: emptying file table slots. NOTE:
				 * mvm closes slots only, but a restriction cannot tell those
				 * from a process fd, which a forged SQE could then close; with
				 * loop_require_fixed_files() no close passes at all
				 * (IOSQE_FIXED_FILE is invalid on IORING_OP_CLOSE: -EBADF) */
	IORING_OP_ACCEPT,	/* virtio-vsock: host peers on its Unix socket (direct) */
	IORING_OP_SOCKET,	/* virtio-vsock: a Unix socket per guest connection (direct) */
	IORING_OP_CONNECT,	/* virtio-vsock: ... to PATH_port */
	IORING_OP_SENDMSG,	/* virtio-vsock: guest data to a host peer (MSG_NOSIGNAL) */
	IORING_OP_SHUTDOWN,	/* virtio-vsock: SHUT_WR when the guest sends no more */
	IORING_OP_TIMEOUT,	/* rate limiters: a throttled queue's wake-up (no file); and
				 * liburing's own waits with a timeout before 5.11 (no
				 * IORING_FEAT_EXT_ARG) */
};

/* Creates the ring disabled (IORING_SETUP_R_DISABLED), so that devices can fill its file
 * table with io_uring_register() before loop_enable() restricts and enables it. Kernels before
 * 5.10 lack disabled rings: the ring is then created enabled and unrestricted, said once. */
static int ring_init(struct loop *l, unsigned int entries)
{
	struct io_uring_params p = {.flags = IORING_SETUP_R_DISABLED};
	static bool said;
	int ret;

	ret = io_uring_queue_init_params(entries, &l->ring, &p);
	if (ret == -EINVAL) {
		if (!__atomic_exchange_n(&said, true, __ATOMIC_RELAXED))
			pr_warn("this kernel cannot create a disabled io_uring (5.10+): the ring "
				"is not restricted to the operations mvm uses");
		ret = io_uring_queue_init(entries, &l->ring, 0);
		l->enabled = ret == 0;
		return ret;
	}
	/* Without IORING_FEAT_EXT_ARG (before 5.11) liburing waits with a timeout by queueing
	 * an IORING_OP_TIMEOUT itself (the devices drain at exit): loop_opcodes allows it. */
	l->ext_arg = p.features & IORING_FEAT_EXT_ARG;
	/* A direct close (file_index) came in 5.15; before it the field was not checked and the
	 * close would take fd 0. IORING_FEAT_CQE_SKIP (5.17) is the nearest feature flag. */
	l->close_direct = p.features & IORING_FEAT_CQE_SKIP;
	return ret;
}

/* Restricts the ring to loop_opcodes, to IOSQE_FIXED_FILE as the only SQE flag (required
 * after loop_require_fixed_files(), allowed otherwise) and to no io_uring_register()
 * operation once enabled (IORING_REGISTER_RESTRICTIONS, io_uring_register(2)), then enables
 * it (IORING_REGISTER_ENABLE_RINGS). */
static int ring_restrict(struct loop *l)
{
	struct io_uring_restriction res[ARRAY_SIZE(loop_opcodes) + 1];
	unsigned int n = 0;
	int ret;

	memset(res, 0, sizeof(res));
	for (unsigned int i = 0; i < ARRAY_SIZE(loop_opcodes); i++) {
		res[n].opcode = IORING_RESTRICTION_SQE_OP;
		res[n++].sqe_op = loop_opcodes[i];
	}
	/* An SQE's flags must include every required flag and nothing beyond the allowed and
	 * required ones (io_uring_register(2), IORING_RESTRICTION_SQE_FLAGS_*). NOTE: liburing's
	 * own IORING_OP_TIMEOUT (before 5.11) carries no flag, so a kernel before 5.11 cannot require
	 * fixed files; loop_enable() refuses that combination. */
	res[n].opcode = l->require_fixed ? IORING_RESTRICTION_SQE_FLAGS_REQUIRED
					 : IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[n++].sqe_flags = IOSQE_FIXED_FILE;
	/* No IORING_RESTRICTION_REGISTER_OP: no io_uring_register() once enabled. The raw call
	 * (it returns -errno): Debian's liburing 2.3 does not export
	 * io_uring_register_restrictions() and io_uring_enable_rings(). */
	ret = io_uring_register(l->ring.ring_fd, IORING_REGISTER_RESTRICTIONS, res, n);
	if (!ret)
		ret = io_uring_register(l->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	if (ret < 0)
		return ret;
	l->restricted = true;
	return 0;
}

int loop_enable(struct loop *l)
{
	int ret;

	if (l->enabled)
		return 0;
	if (l->require_fixed && !l->ext_arg) {
		pr_err("this kernel (before 5.11) cannot wait with a timeout without an SQE that "
		       "names no registered file: fixed files cannot be required");
		return -EOPNOTSUPP;
	}
	ret = ring_restrict(l);
	if (ret < 0) {
		pr_err("restricting the io_uring: %s", strerror(-ret));
		return ret;
	}
	l->enabled = true;
	return 0;
}

void loop_require_fixed_files(struct loop *l)
{
	l->require_fixed = true;
}

int loop_file_add(struct loop *l, int fd)
{
	int ret;

	if (l->enabled && l->restricted)
		return -EBUSY;
	for (int i = 0; i < LOOP_FILES; i++) {
		if (l->files[i] >= 0)
			continue;
		ret = io_uring_register_files_update(&l->ring, (unsigned int)i, &fd, 1);
		if (ret < 0)
			return ret;
		l->files[i] = fd;
		return i;
	}
	return -ENFILE;
}

void loop_file_remove(struct loop *l, int file)
{
	int none = -1;

	if (file < 0 || file >= LOOP_FILES || l->files[file] < 0)
		return;
	if (l->enabled && l->restricted)
		return; /* the ring keeps the file until loop_fini() */
	if (io_uring_register_files_update(&l->ring, (unsigned int)file, &none, 1) == 1)
		l->files[file] = -1;
}

static void stop_done(struct loop_op *op, int res, unsigned int flags)
{
	struct loop *l = container_of(op, struct loop, stop_op);

	l->stopping = true;
}

int loop_init(struct loop *l, unsigned int entries)
{
	int ret;

	memset(l, 0, sizeof(*l));
	for (unsigned int i = 0; i < LOOP_FILES; i++)
		l->files[i] = -1;
	ret = ring_init(l, entries);
	if (ret < 0) {
		pr_err("creating the io_uring: %s", strerror(-ret));
		return ret;
	}
	/* An empty table (-1 is an empty slot, Linux 5.5+) that loop_file_add() fills. */
	ret = io_uring_register_files(&l->ring, l->files, LOOP_FILES);
	if (ret < 0) {
		pr_err("registering the file table: %s", strerror(-ret));
		goto exit_ring;
	}
	l->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (l->stop_fd < 0) {
		ret = -errno;
		pr_err("eventfd: %s", strerror(errno));
		goto exit_ring;
	}
	l->stop_file = loop_file_add(l, l->stop_fd);
	if (l->stop_file < 0) {
		ret = l->stop_file;
		pr_err("registering the stop eventfd: %s", strerror(-ret));
		goto exit_stop;
	}
	l->stop_op.done = stop_done;
	struct io_uring_sqe *sqe = loop_sqe(l, &l->stop_op);

	io_uring_prep_read(sqe, l->stop_file, &l->stop_buf, sizeof(l->stop_buf), 0);
	loop_sqe_fixed(sqe);
	return 0;
exit_stop:
	close(l->stop_fd);
exit_ring:
	io_uring_queue_exit(&l->ring);
	return ret;
}

static void close_done(struct loop_op *op, int res, unsigned int flags)
{
}

/* Empties every slot of the file table with a direct close (io_uring_prep_close_direct(3)),
 * each put at once on this thread, so a TAP goes and an image's lock is released when their
 * owners close their own fds. Without it the ring would keep them until the kernel frees the
 * ring, in a workqueue after io_uring_queue_exit(): a TAP outlived mvm by 15-30 ms here, long
 * enough for the next mvm on the same TAP or image to find it busy. (io_uring_register()'s
 * IORING_UNREGISTER_FILES would do the same, but the ring allows no io_uring_register() once
 * enabled and the threads that tear down have no io_uring_register() in their seccomp lists.)
 * Completions of other operations that arrive meanwhile are dropped: nothing waits for them
 * any more. */
static void release_files(struct loop *l)
{
	struct loop_op op = {.done = close_done};
	unsigned int queued = 0, seen = 0;

	if (!l->close_direct || l->require_fixed)
		return; /* the ring's teardown releases them, later */
	for (unsigned int i = 0; i < LOOP_FILES; i++) {
		struct io_uring_sqe *sqe;

		if (l->files[i] < 0)
			continue;
		sqe = io_uring_get_sqe(&l->ring);
		if (!sqe) {
			io_uring_submit(&l->ring);
			sqe = io_uring_get_sqe(&l->ring);
		}
		if (!sqe)
			break;
		io_uring_prep_close_direct(sqe, i);
		io_uring_sqe_set_data(sqe, &op);
		queued++;
	}
	while (seen < queued) {
		struct __kernel_timespec ts = {.tv_sec = 1};
		struct io_uring_cqe *cqe;

		if (io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL) < 0)
			break;
		if (io_uring_cqe_get_data(cqe) == &op)
			seen++;
		io_uring_cqe_seen(&l->ring, cqe);
	}
}

void loop_fini(struct loop *l)
{
	/* A ring never enabled still takes io_uring_register(), and its thread has no filter. */
	if (l->enabled)
		release_files(l);
	else
		io_uring_unregister_files(&l->ring);
	io_uring_queue_exit(&l->ring);
	close(l->stop_fd);
	/* The table went with the ring: a device destroyed after this has no slot to empty. */
	for (unsigned int i = 0; i < LOOP_FILES; i++)
		l->files[i] = -1;
}

struct io_uring_sqe *loop_sqe(struct loop *l, struct loop_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (!sqe && !loop_enable(l)) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	if (sqe)
		io_uring_sqe_set_data(sqe, op);
	return sqe;
}

int loop_submit(struct loop *l)
{
	int ret = loop_enable(l);

	if (ret < 0)
		return ret;
	ret = io_uring_submit(&l->ring);

	return ret < 0 ? ret : 0;
}

void loop_run(struct loop *l)
{
	if (loop_enable(l) < 0)
		return;
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

int loop_drain(struct loop *l, loop_cond_fn cond, void *arg, unsigned int timeout_ms)
{
	int ret = loop_enable(l);

	while (!ret && !cond(arg)) {
		struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
					       .tv_nsec = (timeout_ms % 1000) * 1000000ll};
		struct io_uring_cqe *cqe;
		struct loop_op *op;
		unsigned int flags;
		int res;

		/* One completion at a time: a done() may queue SQEs (a short transfer's rest, a
		 * flush after a write-zeroes) that the next io_uring_submit_and_wait_timeout()
		 * sends. */
		ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
		if (ret == -EINTR) {
			ret = 0;
			continue;
		}
		if (ret < 0)
			break;
		ret = 0;
		op = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		flags = cqe->flags;
		/* Seen before done(): done() may reap or queue more. */
		io_uring_cqe_seen(&l->ring, cqe);
		if (op)
			op->done(op, res, flags);
	}
	return ret;
}

static void *loop_thread(void *arg)
{
	struct loop *l = arg;
	int ret = thread_role_enter(THREAD_IO);

	/* loop_start() reads it once the post wakes it. */
	l->start_ret = ret;
	sem_post(&l->started);
	if (!ret)
		loop_run(l);
	return NULL;
}

int loop_start(struct loop *l)
{
	int ret;

	/* Here, before the thread exists: its seccomp filter allows no io_uring_register(). */
	ret = loop_enable(l);
	if (ret < 0)
		return ret;
	if (sem_init(&l->started, 0, 0))
		return -errno;
	ret = pthread_create(&l->thread, NULL, loop_thread, l);
	if (ret) {
		pr_err("pthread_create: %s", strerror(ret));
		sem_destroy(&l->started);
		return -ret;
	}
	pthread_setname_np(l->thread, "mvm-io");
	/* The thread has taken its role (its sandbox is in place) before anything else runs. */
	while (sem_wait(&l->started) && errno == EINTR)
		;
	sem_destroy(&l->started);
	if (l->start_ret) {
		pr_err("the I/O thread could not start: %s", strerror(-l->start_ret));
		pthread_join(l->thread, NULL);
		return l->start_ret;
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
