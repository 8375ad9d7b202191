/* loop.h: the I/O thread's io_uring event loop. Every SQE's user_data points at a struct
 * loop_op embedded in its owner; the owner gets back to itself with container_of(). */
#ifndef MVM_CORE_LOOP_H
#define MVM_CORE_LOOP_H

#include <liburing.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>

struct loop_op {
	/* Called on the I/O thread with the CQE's result (bytes or -errno) and flags. */
	void (*done)(struct loop_op *op, int res, unsigned int cqe_flags);
};

struct loop {
	struct io_uring ring;
	int stop_fd;		/* eventfd; a write stops the loop */
	uint64_t stop_buf;
	struct loop_op stop_op;
	bool stopping;
	bool thread_started;
	bool restricted;	/* the ring accepts only the opcodes mvm uses (loop.c) */
	pthread_t thread;
	sem_t started;		/* loop_start(): the thread has taken THREAD_IO */
	int start_ret;		/* and what thread_role_enter() said */
};

/* Creates the ring with (entries) SQEs, restricted to the io_uring operations mvm uses where
 * the kernel can (5.10+; (l->restricted) says so). Returns 0 or -errno (with a message). */
int loop_init(struct loop *l, unsigned int entries);
void loop_fini(struct loop *l);

/* An SQE to fill, with user_data set to (op). Submitted at the end of the current iteration
 * (or by loop_submit()). NULL only if the ring is full even after a submit. I/O thread only
 * (or before loop_start()). */
struct io_uring_sqe *loop_sqe(struct loop *l, struct loop_op *op);

/* Submits what is queued. I/O thread only (or before loop_start()). */
int loop_submit(struct loop *l);

/* Runs the loop on a new thread until loop_stop(). The thread first takes THREAD_IO
 * (core/thread_role.h); this returns once it has. Returns 0 or -errno (the hook's, or
 * pthread_create's). */
int loop_start(struct loop *l);
/* Runs the loop on the calling thread until loop_stop(). */
void loop_run(struct loop *l);
/* Asks the loop to return. Any thread, async-signal-safe. */
void loop_stop(struct loop *l);
/* Stops the loop and joins its thread (if loop_start() made one). */
void loop_join(struct loop *l);

#endif
