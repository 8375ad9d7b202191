/* snapshot.c: full snapshots of a paused machine, and machines restored from them.
 *
 * A snapshot is two files: the state file (core/snapfile.h: the machine's shape and
 * accelerator, every vCPU's state and the VM's interrupt controllers and clock, as KVM or mvm's
 * engine keeps them, the legacy devices) and the memory file (guest RAM, sparse). A restore
 * checks the whole state file and the memory file's size before any VM exists, so a bad
 * snapshot costs nothing and leaves nothing half-built; it then builds the same machine on the
 * same accelerator, maps the memory file copy-on-write (pages load on first touch; clones of
 * one snapshot share what they did not write) and puts the state back before the first
 * instruction.
 *
 * Under --accel dbt the engine (dbt/dbt.h: dbt_save()) and the interrupt controllers
 * (dev/intc.h: intc_save()) save their own records, at one instant of their common clock, so
 * the guest's TSC and its timers go on at the restore from where they were. A snapshot
 * restores only on the accelerator that took it (their state has nothing in common); --accel
 * auto takes the snapshot's.
 *
 * Virtio devices are frozen first (virtio_mmio_freeze(): what they had in flight completes into
 * the used rings, receive buffers held for frames to come go back to the rings), so guest RAM
 * and the transport's registers and ring indices are their whole state; the restore rebuilds
 * them from the disks and NICs the snapshot names (or the ones given at restore in their place,
 * for clones) and the I/O thread serves the rings from the saved indices.
 *
 * Supported so far: KVM and --accel dbt machines with the legacy devices and virtio-blk, -net,
 * -console, -rng and -vsock; --accel hybrid and the balloon are refused with a message saying
 * so. */
#define pr_fmt(fmt) "snapshot: " fmt
#include <errno.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/snapfile.h"
#include "core/thread_role.h"
#include "dbt/dbt.h"
#include "dev/dev_state.h"
#include "dev/intc.h"
#include "kvm/state.h"
#include "machine.h"
#include "machine_internal.h"
#include "snapshot.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/net.h"
#include "virtio/vsock.h"

/* SNAP_MACHINE: what the restored machine must be built as. */
struct machine_state {
	uint32_t accel;		/* enum accel_kind: ACCEL_KVM or ACCEL_DBT */
	uint32_t ncpus;
	uint64_t mem;		/* guest RAM, bytes */
	uint32_t nvirtio;	/* virtio devices: SNAP_VIRTIO_MMIO sections 0..nvirtio-1 */
	uint32_t ndisks;	/* SNAP_CFG_DISK sections */
	uint32_t nnets;		/* SNAP_CFG_NET sections */
	uint32_t virtio_console; /* 0 or 1 */
	uint32_t rng;		/* 0 or 1 */
	uint32_t vsock;		/* 0 or 1: a SNAP_CFG_VSOCK section */
};

/* SNAP_CFG_DISK: a disk, as -d gave it (the image's size is in the device's config space). */
struct disk_state {
	char path[MVM_DISK_PATH_MAX];
	char id[24];		/* MVM_DISK_ID_MAX + 1, padded */
	uint8_t ro, direct, pad[6];
};
_Static_assert(MVM_DISK_ID_MAX + 1 <= 24, "disk_state.id");

/* SNAP_CFG_NET: a NIC: its TAP, the MAC the guest read at boot, its Firecracker iface_id. */
struct net_state {
	char tap[MVM_TAP_NAME_MAX + 1];
	uint8_t mac[6], pad[2];
	char id[72];		/* MVM_NET_ID_MAX + 1, padded */
};
_Static_assert(MVM_NET_ID_MAX + 1 <= 72, "net_state.id");

/* SNAP_CFG_VSOCK: the guest's CID and the host's Unix socket. */
struct vsock_state {
	uint64_t cid;
	char path[104];		/* MVM_VSOCK_PATH_MAX + 1, padded */
	uint32_t next_port;	/* virtio_vsock_next_port() */
	uint32_t pad;
};
_Static_assert(MVM_VSOCK_PATH_MAX + 1 <= 104, "vsock_state.path");

static const char *accel_name(uint32_t accel)
{
	return accel == ACCEL_KVM ? "kvm" : accel == ACCEL_DBT ? "dbt" : "hybrid";
}

/* (clock) in ns: CLOCK_MONOTONIC is the engine's and its interrupt controllers' (dbt/dbt.h,
 * dev/intc.h); CLOCK_REALTIME the host's date, for clock_realtime. */
static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The CPUs and interrupt controllers: KVM's, or the engine's and mvm's own at one instant. */
static int save_cpus(struct machine *m, struct snap_writer *w)
{
	uint64_t now;
	int ret;

	if (m->accel == ACCEL_KVM)
		return vm_save_state(&m->vm, w);
	now = clock_ns(CLOCK_MONOTONIC);
	ret = dbt_save(m->dm.dbt, w, now, clock_ns(CLOCK_REALTIME));
	if (!ret)
		intc_save(&m->dm.intc, w, now);
	return ret;
}

static int restore_cpus(struct machine *m, const struct snap_reader *r, char *err,
			size_t errlen)
{
	uint64_t now;
	int ret;

	if (m->accel == ACCEL_KVM)
		return vm_restore_state(&m->vm, r, m->cfg->restore_clock_realtime, err, errlen);
	now = clock_ns(CLOCK_MONOTONIC);
	ret = dbt_restore(m->dm.dbt, r, now,
			  m->cfg->restore_clock_realtime ? clock_ns(CLOCK_REALTIME) : 0, err, errlen);
	if (!ret)
		ret = intc_restore(&m->dm.intc, r, now, err, errlen);
	return ret;
}

/* Under the engine the interrupt controllers are saved a moment before the serial port and the
 * keyboard controller, which console input can change in between (the I/O thread serves it
 * while the guest is paused): each of their lines is driven to the level its device was saved
 * with, so an interrupt raised in between reaches the clone instead of being lost (an edge the
 * controllers never saw); a line already at that level is left as it is. Before the loop runs. */
static void resync_lines(struct machine *m)
{
	irq_line_set(&m->uart.irq, m->uart.irq_level);
	if (m->i8042.kbd_irq.chip)
		irq_line_set(&m->i8042.kbd_irq, m->i8042.kbd_level);
	if (m->i8042.aux_irq.chip)
		irq_line_set(&m->i8042.aux_irq, m->i8042.aux_level);
}

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

/* vsock's place in m->devices: after the disks, NICs and virtio console (machine.c's order). */
static unsigned int vsock_index(const struct vm_config *cfg)
{
	return cfg->ndisks + cfg->nnets + (cfg->console == CONSOLE_VIRTIO);
}

/* Every virtio device's transport, and what the restore needs to build the same ones: the
 * disks' paths and modes, the NICs' TAPs and MACs. */
static void save_virtio(struct machine *m, struct snap_writer *w)
{
	const struct vm_config *cfg = m->cfg;
	struct virtio_mmio_state *vs = malloc(sizeof(*vs));

	if (!vs) {
		w->err = -ENOMEM;
		return;
	}
	for (unsigned int i = 0; i < m->ndevices; i++) {
		virtio_mmio_save(m->devices[i].t, vs);
		snap_put(w, SNAP_VIRTIO_MMIO, i, vs, sizeof(*vs));
	}
	free(vs);
	for (unsigned int i = 0; i < cfg->ndisks; i++) {
		struct disk_state d = {.ro = cfg->disks[i].ro, .direct = cfg->disks[i].direct};

		memcpy(d.path, cfg->disks[i].path, sizeof(d.path));
		memcpy(d.id, cfg->disks[i].id, sizeof(cfg->disks[i].id));
		snap_put(w, SNAP_CFG_DISK, i, &d, sizeof(d));
	}
	if (cfg->vsock.on) {
		const struct virtio_vsock *v = m->devices[vsock_index(cfg)].dev;
		struct vsock_state vsk = {.cid = cfg->vsock.cid,
					  .next_port = virtio_vsock_next_port(v)};

		memcpy(vsk.path, cfg->vsock.path, sizeof(cfg->vsock.path));
		snap_put(w, SNAP_CFG_VSOCK, 0, &vsk, sizeof(vsk));
	}
	/* NICs follow the disks in m->devices (machine.c attaches them in that order). */
	for (unsigned int i = 0; i < cfg->nnets; i++) {
		const struct virtio_net *n = m->devices[cfg->ndisks + i].dev;
		struct net_state ns = {0};

		memcpy(ns.tap, cfg->nets[i].tap, sizeof(ns.tap));
		memcpy(ns.mac, n->config.mac, sizeof(ns.mac));
		memcpy(ns.id, cfg->nets[i].id, sizeof(cfg->nets[i].id));
		snap_put(w, SNAP_CFG_NET, i, &ns, sizeof(ns));
	}
}

int machine_snapshot(struct machine *m, const char *state_path, const char *mem_path)
{
	const struct vm_config *cfg = m->cfg;
	struct machine_state ms = {.accel = m->accel, .ncpus = m->ncpus,
				   .mem = guest_mem_size(m->mem), .nvirtio = m->ndevices,
				   .ndisks = cfg->ndisks, .nnets = cfg->nnets,
				   .virtio_console = cfg->console == CONSOLE_VIRTIO, .rng = cfg->rng,
				   .vsock = cfg->vsock.on};
	unsigned int frozen = 0;
	struct snap_writer w;
	struct snap_header h;
	int fd, ret;

	if (m->accel != ACCEL_KVM && m->accel != ACCEL_DBT) {
		pr_err("snapshots are supported under --accel kvm and dbt; not under --accel hybrid "
		       "(guest user state lives in KVM there)");
		return -ENOTSUP;
	}
	for (unsigned int i = 0; i < m->ndevices; i++)
		if (m->devices[i].ops->no_snapshot) {
			pr_err("a snapshot cannot hold %s yet (%s)", m->devices[i].ops->no_snapshot,
			       m->devices[i].name);
			return -ENOTSUP;
		}
	if (!stop_pause_wanted(m->stop)) {
		pr_err("the machine must be paused for a snapshot");
		return -EBUSY;
	}
	/* Until the thaw below nothing but the vCPUs' state changes guest RAM. */
	for (ret = 0; frozen < m->ndevices && !ret; frozen++)
		ret = virtio_mmio_freeze(m->devices[frozen].t);
	if (ret) {
		frozen--; /* the failed one thawed itself */
		goto thaw;
	}
	snap_writer_init(&w);
	snap_put(&w, SNAP_MACHINE, 0, &ms, sizeof(ms));
	ret = save_cpus(m, &w);
	if (!ret) {
		uart8250_save(&m->uart, &w);
		i8042_save(&m->i8042, &w);
		cmos_save(&m->cmos, &w);
		save_virtio(m, &w);
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
thaw:
	while (frozen)
		virtio_mmio_thaw(m->devices[--frozen].t);
	return ret;
}

/* The snapshot's vsock device into (out). Its host socket must not exist (the original may
 * still listen on it): --vsock or Firecracker's vsock_override give a clone its own; the
 * guest's CID stays (it is in the config space the guest read). */
static int restore_vsock(const struct snapshot_in *in, const struct machine_state *ms,
			 const struct vm_config *cfg, struct vm_config *out)
{
	const struct vsock_state *vs;

	out->vsock.on = false;
	if (!ms->vsock) {
		if (cfg->vsock.on || cfg->restore_vsock_path[0]) {
			pr_err("the snapshot has no vsock device to give a socket to");
			return -EINVAL;
		}
		return 0;
	}
	vs = snap_get(&in->r, SNAP_CFG_VSOCK, 0, sizeof(*vs));
	if (!vs || !memchr(vs->path, 0, sizeof(vs->path)) || !vs->path[0] ||
	    strlen(vs->path) > MVM_VSOCK_PATH_MAX || vs->cid < 3 || vs->cid > 0xfffffffeull) {
		pr_err("snapshot state file '%s': the vsock device is missing or malformed",
		       cfg->restore_state);
		return -EINVAL;
	}
	if (cfg->vsock.on && cfg->vsock.cid != vs->cid) {
		pr_err("--vsock: the restored guest keeps CID %llu; give cid=%llu",
		       (unsigned long long)vs->cid, (unsigned long long)vs->cid);
		return -EINVAL;
	}
	out->vsock.on = true;
	out->vsock.cid = vs->cid;
	snprintf(out->vsock.path, sizeof(out->vsock.path), "%s",
		 cfg->restore_vsock_path[0] ? cfg->restore_vsock_path
					    : cfg->vsock.on ? cfg->vsock.path : vs->path);
	return 0;
}

/* The disks and NICs of the snapshot into (out), with those given at restore in their place:
 * -d paths replace the snapshot's disk paths and -n TAP names its TAPs, one for one (clones
 * need their own), the rest (modes, MACs) stays what the guest booted with. */
static int restore_devices(const struct snapshot_in *in, const struct machine_state *ms,
			   const struct vm_config *cfg, struct vm_config *out)
{
	const char *file = cfg->restore_state;

	if (ms->ndisks > MVM_MAX_DISKS || ms->nnets > MVM_MAX_NETS || ms->virtio_console > 1 ||
	    ms->rng > 1 || ms->vsock > 1 ||
	    ms->nvirtio != ms->ndisks + ms->nnets + ms->virtio_console + ms->rng + ms->vsock) {
		pr_err("snapshot state file '%s': no machine this mvm can build", file);
		return -EINVAL;
	}
	if (cfg->ndisks && cfg->ndisks != ms->ndisks) {
		pr_err("the snapshot has %u disk(s); give all of them (-d, in order) or none",
		       ms->ndisks);
		return -EINVAL;
	}
	if (cfg->nnets && cfg->nnets != ms->nnets) {
		pr_err("the snapshot has %u NIC(s); give all of them (-n tap=NAME, in order) or none",
		       ms->nnets);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < cfg->nnets; i++)
		if (cfg->nets[i].has_mac) {
			pr_err("--net %s: a restored guest keeps the MAC it booted with; no mac= at "
			       "restore", cfg->nets[i].tap);
			return -EINVAL;
		}
	out->ndisks = ms->ndisks;
	for (unsigned int i = 0; i < ms->ndisks; i++) {
		const struct disk_state *d = snap_get(&in->r, SNAP_CFG_DISK, i, sizeof(*d));
		struct disk_config *dc = &out->disks[i];

		if (!d || !memchr(d->path, 0, sizeof(d->path)) || !memchr(d->id, 0, sizeof(d->id)) ||
		    strlen(d->id) > MVM_DISK_ID_MAX || d->ro > 1 || d->direct > 1) {
			pr_err("snapshot state file '%s': disk %u is missing or malformed", file, i);
			return -EINVAL;
		}
		memcpy(dc->path, cfg->ndisks ? cfg->disks[i].path : d->path, sizeof(dc->path));
		memcpy(dc->id, d->id, sizeof(dc->id));
		dc->ro = d->ro;
		dc->direct = d->direct;
		/* Rate limits are not in the snapshot: those given with -d at restore apply. */
		dc->limit = cfg->ndisks ? cfg->disks[i].limit : (struct rl_config){0};
	}
	out->nnets = ms->nnets;
	for (unsigned int i = 0; i < ms->nnets; i++) {
		const struct net_state *n = snap_get(&in->r, SNAP_CFG_NET, i, sizeof(*n));
		struct net_config *nc = &out->nets[i];

		if (!n || !memchr(n->tap, 0, sizeof(n->tap)) || !n->tap[0] ||
		    !memchr(n->id, 0, sizeof(n->id)) || strlen(n->id) > MVM_NET_ID_MAX) {
			pr_err("snapshot state file '%s': NIC %u is missing or malformed", file, i);
			return -EINVAL;
		}
		memcpy(nc->tap, cfg->nnets ? cfg->nets[i].tap : n->tap, sizeof(nc->tap));
		memcpy(nc->mac, n->mac, sizeof(nc->mac));
		memcpy(nc->id, n->id, sizeof(nc->id));
		nc->has_mac = true;
		nc->rx_limit = cfg->nnets ? cfg->nets[i].rx_limit : (struct rl_config){0};
		nc->tx_limit = cfg->nnets ? cfg->nets[i].tx_limit : (struct rl_config){0};
	}
	/* Firecracker's network_overrides name the NICs by iface_id. */
	for (unsigned int i = 0; i < cfg->nrestore_nets; i++) {
		const struct net_override *o = &cfg->restore_nets[i];
		unsigned int k;

		for (k = 0; k < ms->nnets && strcmp(out->nets[k].id, o->id); k++)
			;
		if (k == ms->nnets) {
			pr_err("network_overrides: the snapshot has no network interface '%s'",
			       o->id);
			return -EINVAL;
		}
		memcpy(out->nets[k].tap, o->tap, sizeof(out->nets[k].tap));
	}
	for (unsigned int i = 0; i < ms->nvirtio; i++)
		if (!snap_get(&in->r, SNAP_VIRTIO_MMIO, i, sizeof(struct virtio_mmio_state))) {
			pr_err("snapshot state file '%s': virtio device %u has no state", file, i);
			return -EINVAL;
		}
	out->rng = ms->rng;
	if (restore_vsock(in, ms, cfg, out))
		return -EINVAL;
	out->balloon.on = false; /* a snapshot never holds one (its device_ops.no_snapshot) */
	if (ms->virtio_console)
		out->console = CONSOLE_VIRTIO;
	else if (out->console == CONSOLE_VIRTIO)
		out->console = CONSOLE_STDIO;
	return 0;
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
	if (!ms || (ms->accel != ACCEL_KVM && ms->accel != ACCEL_DBT) || !ms->ncpus ||
	    ms->ncpus > MVM_MAX_CPUS) {
		pr_err("snapshot state file '%s': no machine this mvm can build", cfg->restore_state);
		goto fail;
	}
	/* KVM's state and the engine's have nothing in common: auto takes the snapshot's. */
	if (cfg->accel != ms->accel && cfg->accel != ACCEL_AUTO) {
		pr_err("the snapshot was taken under --accel %s; it cannot be restored under "
		       "--accel %s (restore it with --accel %s or auto)", accel_name(ms->accel),
		       accel_name(cfg->accel), accel_name(ms->accel));
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
	out->accel = ms->accel;
	out->cpus = ms->ncpus;
	out->mem = ms->mem;
	out->mem_thp = false; /* the RAM becomes a file mapping */
	out->kernel = out->initrd = NULL;
	if (restore_devices(in, ms, cfg, out))
		goto fail;
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
	ret = restore_cpus(m, &in->r, err, sizeof(err));
	if (!ret)
		ret = uart8250_restore(&m->uart, &in->r, err, sizeof(err));
	if (!ret)
		ret = i8042_restore(&m->i8042, &in->r, err, sizeof(err));
	if (!ret)
		ret = cmos_restore(&m->cmos, &in->r, err, sizeof(err));
	if (!ret && m->accel == ACCEL_DBT)
		resync_lines(m);
	for (unsigned int i = 0; !ret && i < m->ndevices; i++) {
		const void *p = snap_get(&in->r, SNAP_VIRTIO_MMIO, i, sizeof(struct virtio_mmio_state));
		struct virtio_mmio_state vs;

		if (!p) {
			snprintf(err, sizeof(err), "%s is not in the snapshot", m->devices[i].name);
			ret = -EINVAL;
			break;
		}
		memcpy(&vs, p, sizeof(vs));
		ret = virtio_mmio_load(m->devices[i].t, &vs, err, sizeof(err));
		/* Under the engine a device's interrupt reaches the IOAPIC through the I/O loop
		 * (machine_dbt.c's relay), so an interrupt the freeze raised may have been on its
		 * way when the controllers were saved: a device whose interrupt status the guest
		 * has not acknowledged interrupts again (at worst once more than needed, which a
		 * driver takes as nothing to do). */
		if (!ret && m->accel == ACCEL_DBT &&
		    (vs.isr & (VIRTIO_ISR_USED | VIRTIO_ISR_CONFIG)) &&
		    write(virtio_mmio_irq_fd(m->devices[i].t), &(uint64_t){1}, 8) != 8)
			pr_warn("%s: its pending interrupt could not be raised again",
				m->devices[i].name);
	}
	/* Its connections stayed with the host sockets of the machine that was snapshotted: a
	 * restored vsock device tells the guest with a transport reset (as Firecracker does). */
	if (!ret && m->cfg->vsock.on) {
		const struct vsock_state *vsk = snap_get(&in->r, SNAP_CFG_VSOCK, 0, sizeof(*vsk));

		if (vsk)
			virtio_vsock_restored(m->devices[vsock_index(m->cfg)].dev, vsk->next_port);
	}
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
