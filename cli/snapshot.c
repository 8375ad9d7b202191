/* snapshot.c: full snapshots of a paused machine, and machines restored from them.
 *
 * A snapshot is two files: the state file (core/snapfile.h: the machine's shape, every vCPU's
 * and the VM's KVM state, the legacy devices) and the memory file (guest RAM, sparse). A
 * restore checks the whole state file and the memory file's size before any VM exists, so a
 * bad snapshot costs nothing and leaves nothing half-built; it then builds the same machine,
 * maps the memory file copy-on-write (pages load on first touch; clones of one snapshot share
 * what they did not write) and puts the state back before the first KVM_RUN.
 *
 * Supported so far: KVM machines with the legacy devices (serial console, i8042, CMOS) and no
 * virtio devices. The others are refused with a message saying so. */
#define pr_fmt(fmt) "snapshot: " fmt
#include <errno.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/snapfile.h"
#include "core/thread_role.h"
#include "dev/dev_state.h"
#include "kvm/state.h"
#include "machine.h"
#include "machine_internal.h"
#include "snapshot.h"
#include "util/log.h"

/* SNAP_MACHINE: what the restored machine must be built as. */
struct machine_state {
	uint32_t accel;		/* enum accel_kind: ACCEL_KVM */
	uint32_t ncpus;
	uint64_t mem;		/* guest RAM, bytes */
	uint32_t nvirtio;	/* virtio devices: 0 */
	uint32_t reserved;
};

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes (path) whole or not at all: a temporary file, synced, then renamed over it. */
static int write_state_file(const char *path, const struct snap_header *h,
			    const struct snap_writer *w)
{
	size_t n = strlen(path) + sizeof(".tmp");
	char *tmp = malloc(n);
	int fd, ret;

	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, n, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		pr_err("state file '%s': %s", tmp, strerror(errno));
		free(tmp);
		return ret;
	}
	ret = write_all(fd, h, sizeof(*h));
	if (!ret)
		ret = write_all(fd, w->buf, w->len);
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		pr_err("state file '%s': %s", path, strerror(-ret));
		unlink(tmp);
	}
	free(tmp);
	return ret;
}

int machine_snapshot(struct machine *m, const char *state_path, const char *mem_path)
{
	struct machine_state ms = {.accel = ACCEL_KVM, .ncpus = m->ncpus,
				   .mem = guest_mem_size(m->mem)};
	struct snap_writer w;
	struct snap_header h;
	int fd, ret;

	if (m->accel != ACCEL_KVM) {
		pr_err("snapshots are supported under --accel kvm only so far");
		return -ENOTSUP;
	}
	if (m->ndevices) {
		pr_err("snapshots of machines with virtio devices (%s, ...) are not supported yet",
		       m->devices[0].name);
		return -ENOTSUP;
	}
	if (!stop_pause_wanted(m->stop)) {
		pr_err("the machine must be paused for a snapshot");
		return -EBUSY;
	}
	snap_writer_init(&w);
	snap_put(&w, SNAP_MACHINE, 0, &ms, sizeof(ms));
	ret = vm_save_state(&m->vm, &w);
	if (!ret) {
		uart8250_save(&m->uart, &w);
		i8042_save(&m->i8042, &w);
		cmos_save(&m->cmos, &w);
		ret = snap_finish(&w, &h);
		if (ret)
			pr_err("building the state file: %s", strerror(-ret));
	}
	if (!ret) {
		fd = open(mem_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			ret = -errno;
			pr_err("memory file '%s': %s", mem_path, strerror(errno));
		} else {
			ret = guest_mem_save(m->mem, fd);
			if (!ret && fsync(fd))
				ret = -errno;
			if (ret)
				pr_err("memory file '%s': %s", mem_path, strerror(-ret));
			close(fd);
		}
	}
	/* The state file last: a snapshot whose state file exists is complete. */
	if (!ret)
		ret = write_state_file(state_path, &h, &w);
	snap_writer_fini(&w);
	if (!ret)
		pr_info("snapshot: %s (%u sections), %s", state_path, h.nsections, mem_path);
	return ret;
}

int snapshot_open(struct snapshot_in *in, const struct vm_config *cfg, struct vm_config *out)
{
	const struct machine_state *ms;
	char err[256];
	struct stat st;

	*in = (struct snapshot_in){.mem_fd = -1};
	if (file_map(&in->state, cfg->restore_state, "snapshot state file",
		     SNAP_MAX_LEN + sizeof(struct snap_header)))
		goto fail;
	if (snap_reader_open(&in->r, in->state.data, in->state.len, err, sizeof(err))) {
		pr_err("snapshot state file '%s': %s", cfg->restore_state, err);
		goto fail;
	}
	ms = snap_get(&in->r, SNAP_MACHINE, 0, sizeof(*ms));
	if (!ms || ms->accel != ACCEL_KVM || ms->nvirtio || !ms->ncpus ||
	    ms->ncpus > MVM_MAX_CPUS) {
		pr_err("snapshot state file '%s': no machine this mvm can build", cfg->restore_state);
		goto fail;
	}
	if (cfg->accel != ACCEL_KVM && cfg->accel != ACCEL_AUTO) {
		pr_err("the snapshot was taken under --accel kvm: restore it there");
		goto fail;
	}
	in->mem_fd = open(cfg->restore_mem, O_RDONLY | O_CLOEXEC);
	if (in->mem_fd < 0 || fstat(in->mem_fd, &st)) {
		pr_err("snapshot memory file '%s': %s", cfg->restore_mem, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != ms->mem) {
		pr_err("snapshot memory file '%s' is %lld bytes; the snapshot's RAM is %llu",
		       cfg->restore_mem, (long long)st.st_size, (unsigned long long)ms->mem);
		goto fail;
	}
	/* The machine the snapshot describes, with the console and sandbox of this run. */
	*out = *cfg;
	out->accel = ACCEL_KVM;
	out->cpus = ms->ncpus;
	out->mem = ms->mem;
	out->mem_thp = false; /* the RAM becomes a file mapping */
	out->kernel = out->initrd = NULL;
	out->ndisks = out->nnets = 0;
	out->rng = false;
	if (out->console == CONSOLE_VIRTIO)
		out->console = CONSOLE_STDIO;
	return 0;
fail:
	snapshot_close(in);
	return -EINVAL;
}

int snapshot_restore(struct machine *m, struct snapshot_in *in)
{
	char err[256] = "";
	int ret = guest_mem_map_file(m->mem, in->mem_fd);

	if (ret) {
		pr_err("mapping the memory file: %s", strerror(-ret));
		return ret;
	}
	ret = vm_restore_state(&m->vm, &in->r, err, sizeof(err));
	if (!ret)
		ret = uart8250_restore(&m->uart, &in->r, err, sizeof(err));
	if (!ret)
		ret = i8042_restore(&m->i8042, &in->r, err, sizeof(err));
	if (!ret)
		ret = cmos_restore(&m->cmos, &in->r, err, sizeof(err));
	if (ret)
		pr_err("restoring: %s", err[0] ? err : strerror(-ret));
	return ret;
}

void snapshot_close(struct snapshot_in *in)
{
	if (in->mem_fd >= 0)
		close(in->mem_fd);
	in->mem_fd = -1;
	file_unmap(&in->state);
}

#define SNAPSHOT_WORKER_QUIT (1ull << 40)

static void *worker(void *arg)
{
	struct snapshot_worker *w = arg;
	uint64_t v;

	if (thread_role_enter(THREAD_API)) {
		pr_err("the snapshot thread cannot take its seccomp filter; SIGUSR2 does nothing");
		return NULL;
	}
	/* The eventfd counts requests: several signals before one snapshot make one. */
	while (read(w->efd, &v, sizeof(v)) == sizeof(v) && v < SNAPSHOT_WORKER_QUIT) {
		int ret = machine_pause(w->m, true);

		if (ret)
			continue; /* the guest is stopping */
		ret = machine_snapshot(w->m, w->state, w->mem);
		machine_pause(w->m, false);
		if (!ret)
			pr_warn("snapshot written: %s, %s", w->state, w->mem);
	}
	return NULL;
}

int snapshot_worker_start(struct snapshot_worker *w, struct machine *m, const char *state,
			  const char *mem)
{
	*w = (struct snapshot_worker){.m = m, .state = state, .mem = mem};
	w->efd = eventfd(0, EFD_CLOEXEC);
	if (w->efd < 0) {
		pr_err("eventfd: %s", strerror(errno));
		return -errno;
	}
	if (pthread_create(&w->thread, NULL, worker, w)) {
		pr_err("cannot start the snapshot thread");
		close(w->efd);
		w->efd = -1;
		return -EAGAIN;
	}
	pthread_setname_np(w->thread, "mvm-snapshot");
	w->started = true;
	return 0;
}

void snapshot_worker_request(struct snapshot_worker *w)
{
	uint64_t one = 1;

	if (w->started && write(w->efd, &one, sizeof(one)) != sizeof(one))
		pr_warn("a snapshot request was lost: %s", strerror(errno));
}

void snapshot_worker_stop(struct snapshot_worker *w)
{
	uint64_t quit = SNAPSHOT_WORKER_QUIT;

	if (!w->started)
		return;
	if (write(w->efd, &quit, sizeof(quit)) != sizeof(quit))
		pr_warn("stopping the snapshot thread: %s", strerror(errno));
	pthread_join(w->thread, NULL);
	close(w->efd);
	w->started = false;
}
