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

/* Slots in the ring's registered-file table (io_uring_register_files(3)): every fd a device
 * reads or writes through the ring is one (disk images, TAPs, eventfds, console fds). */
#define LOOP_FILES 256

struct loop {
	struct io_uring ring;
	int files[LOOP_FILES];	/* the fd behind each slot, -1 when free */
	bool enabled;		/* loop_enable() ran: the file table is fixed from here on */
	bool require_fixed;	/* loop_require_fixed_files() was called */
	int stop_fd;		/* eventfd; a write stops the loop */
	int stop_file;		/* its slot in the file table */
	uint64_t stop_buf;
	struct loop_op stop_op;
	bool stopping;
	bool thread_started;
	bool restricted;	/* the ring accepts only the opcodes mvm uses (loop.c) */
	bool ext_arg;		/* IORING_FEAT_EXT_ARG: waits with a timeout need no SQE */
	bool close_direct;	/* IORING_OP_CLOSE takes a file-table slot (5.15+) */
	pthread_t thread;
	sem_t started;		/* loop_start(): the thread has taken THREAD_IO */
	int start_ret;		/* and what thread_role_enter() said */
};

/* Creates the ring with (entries) SQEs, disabled, with an empty table of LOOP_FILES registered
 * files. Returns 0 or -errno (with a message). */
int loop_init(struct loop *l, unsigned int entries);
/* Empties the file table (each file is released by the ring now, not when the kernel frees
 * the ring later), then destroys the ring. After loop_join() and the devices' drains.
 * NOTE: a ring that requires fixed files cannot close them (loop_require_fixed_files()): its
 * files go when the kernel has freed the ring, a few milliseconds after this returns. */
void loop_fini(struct loop *l);

/* Puts (fd) in a free slot of the ring's file table and returns the slot (>= 0): SQEs name it
 * with the slot and IOSQE_FIXED_FILE (loop_sqe_fixed()), so the kernel need not look the fd up
 * per request, and a ring that requires fixed files cannot reach any other file. The ring holds
 * its own reference to the file until loop_file_remove() or loop_fini(). Only before
 * loop_enable() (no io_uring_register() is allowed on the enabled ring): -EBUSY after it,
 * -ENFILE when the table is full, or io_uring_register(2)'s -errno. */
int loop_file_add(struct loop *l, int fd);
/* Empties slot (file) (a negative one is ignored). Before loop_enable(); after it the slot
 * keeps its file until loop_fini() (the ring accepts no io_uring_register() then). */
void loop_file_remove(struct loop *l, int file);

/* Marks (sqe), already prepared with a slot of loop_file_add() in place of an fd, as naming a
 * registered file. Operations with no file (NOP, ASYNC_CANCEL by user_data) are marked too: a
 * ring that requires fixed files refuses any SQE without the flag. */
static inline void loop_sqe_fixed(struct io_uring_sqe *sqe)
{
	sqe->flags |= IOSQE_FIXED_FILE;
}

/* Makes loop_enable() restrict the ring to SQEs that carry IOSQE_FIXED_FILE: any SQE naming a
 * raw fd completes with -EACCES. Before loop_enable(); every SQE on the ring must then be
 * marked with loop_sqe_fixed(). Needs IORING_FEAT_EXT_ARG (5.11): loop_enable() fails without.
 * NOTE: mvm itself does not call it yet: the virtio devices and the loop use registered files
 * only, but the signalfd read (cli/main.c), the console input and its space eventfd
 * (cli/console.c), the interrupt relay eventfd (cli/machine_dbt.c) and the engine's timerfds
 * (vmm/dev/intc.c) still name raw fds; the unit tests of the devices do call it. Before
 * mvm does, loop_fini() needs another way to let go of the files at once (see there). */
void loop_require_fixed_files(struct loop *l);

/* Restricts the ring to the operations mvm uses where the kernel can (5.10+; (l->restricted)
 * says so) and enables it; from here on the ring takes submissions and no io_uring_register().
 * loop_start(), loop_run(), loop_submit() and loop_drain() call it; a second call does nothing.
 * Returns 0 or -errno (with a message). Before loop_start() or on the I/O thread. */
int loop_enable(struct loop *l);

/* An SQE to fill, with user_data set to (op). Submitted at the end of the current iteration
 * (or by loop_submit()). NULL only if the ring is full even after a submit. I/O thread only
 * (or before loop_start()). */
struct io_uring_sqe *loop_sqe(struct loop *l, struct loop_op *op);

/* Submits what is queued (enabling the ring first). I/O thread only (or before loop_start()). */
int loop_submit(struct loop *l);

/* True once what the caller waits for has happened; (arg) is loop_drain()'s. */
typedef bool (*loop_cond_fn)(void *arg);

/* Submits what is queued, then reaps completions on the calling thread, each through its op's
 * done(), until (cond)(arg) holds; gives up when (timeout_ms) pass without a completion. For a
 * device's last completions at exit: after loop_join(), or before loop_start(), never while
 * the loop's thread runs. Returns 0 once (cond) holds, -ETIME on the timeout, or
 * io_uring_enter's -errno. */
int loop_drain(struct loop *l, loop_cond_fn cond, void *arg, unsigned int timeout_ms);

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
