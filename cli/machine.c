/* machine.c: the composition root: it turns a struct vm_config (from the command line, the
 * Firecracker API or its config file) into a VM, attaches the devices in a visible order, runs
 * the guest and maps how it stopped to an exit status. */
#define pr_fmt(fmt) fmt
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "boot/boot.h"
#include "console.h"
#include "core/layout.h"
#include "core/loop.h"
#include "core/thread_role.h"
#include "dev/legacy.h"
#include "dev/uart8250.h"
#include "file.h"
#include "kvm/emulate.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "machine.h"
#include "machine_internal.h"
#include "snapshot.h"
#include "machine_dbt.h"
#include "options.h"
#include "sandbox/jail.h"
#include "sandbox/seccomp.h"
#include "term.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"

/* virtio-mmio device slots, in attach order: slot i is the 4 KiB window at
 * LAYOUT_VIRTIO_MMIO_BASE + i * 4 KiB on ISA IRQ virtio_irqs[i]. The IRQs are the ISA lines no
 * other device uses (4 is the serial port, 8 the RTC, 13 the FPU, 1 the keyboard): the MP
 * table maps ISA IRQ n to IOAPIC pin n, edge-triggered, which is what KVM_IRQFD's pulse gives.
 * The windows lie in the MMIO hole that memmap.c reserves in the e820 map. */
static const unsigned int virtio_irqs[] = {5, 6, 7, 9, 10, 11, 12, 14, 15};
_Static_assert(VIRTIO_SLOTS == ARRAY_SIZE(virtio_irqs), "a slot per IRQ");
_Static_assert(LAYOUT_VIRTIO_MMIO_SIZE == VIRTIO_MMIO_WINDOW, "virtio-mmio window size");
_Static_assert(LAYOUT_VIRTIO_MMIO_BASE >= LAYOUT_MMIO_HOLE &&
		       LAYOUT_VIRTIO_MMIO_BASE + 9 * LAYOUT_VIRTIO_MMIO_SIZE <= LAYOUT_IOAPIC,
	       "virtio-mmio windows inside the reserved MMIO hole, below the IOAPIC");
_Static_assert(MVM_MAX_VIRTIO <= ARRAY_SIZE(virtio_irqs), "an IRQ for every virtio device");

/* Room for " virtio_mmio.device=4K@0xd0000000:15" per slot. */
#define VIRTIO_CMDLINE_ENTRY 48

static void arm_signal(struct machine *m);

static void signal_done(struct loop_op *op, int res, unsigned int flags)
{
	struct machine *m = container_of(op, struct machine, signal_op);

	if (res == (int)sizeof(m->siginfo) && m->siginfo.ssi_signo == SIGUSR2) {
		snapshot_worker_request(&m->snapw); /* --snapshot-dir */
		arm_signal(m);
		return;
	}
	if (res == (int)sizeof(m->siginfo)) {
		pr_info("stopping on signal %u", m->siginfo.ssi_signo);
		stop_request(m->stop, STOP_SIGNAL, (int)m->siginfo.ssi_signo);
		return;
	}
	arm_signal(m);
}

static void arm_signal(struct machine *m)
{
	struct io_uring_sqe *sqe = loop_sqe(&m->loop, &m->signal_op);

	if (sqe)
		io_uring_prep_read(sqe, m->signal_fd, &m->siginfo, sizeof(m->siginfo), 0);
}

/* Signals that stop the machine arrive on the I/O loop through a signalfd, so no thread is
 * interrupted at a random point. Blocked before any thread starts, so every thread inherits
 * the mask. */
static int setup_signals(struct machine *m, const struct vm_config *cfg, sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
	if (cfg->snapshot_state)
		sigaddset(set, SIGUSR2); /* takes a snapshot (snapshot.h) */
	if (pthread_sigmask(SIG_BLOCK, set, NULL))
		return -EINVAL;
	m->signal_fd = signalfd(-1, set, SFD_CLOEXEC);
	if (m->signal_fd < 0) {
		pr_err("signalfd: %s", strerror(errno));
		return -errno;
	}
	/* A console whose reader went away must not kill mvm; the sink drops output instead. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static uint64_t host_ram_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : UINT64_MAX;
}

/* Input filter of the virtio console: the same Ctrl-A escape as the serial console. */
static size_t vcon_filter(void *ctx, const uint8_t *in, size_t n, uint8_t *out)
{
	struct machine *m = ctx;
	bool quit = false;
	size_t len = console_escape_filter(&m->vcon_escape, in, n, out, &quit);

	if (quit)
		stop_request(m->stop, STOP_USER, 0);
	return len;
}

/* Puts (t) in the next virtio-mmio slot: its register window on the MMIO bus, its interrupt
 * eventfd on the slot's IRQ (KVM_IRQFD), each queue's kick eventfd on QueueNotify
 * (KVM_IOEVENTFD, datamatch = queue index), and the device on the kernel command line. */
static int attach_virtio(struct machine *m, struct virtio_mmio *t, const char *name)
{
	unsigned int slot = m->nvirtio, gsi;
	uint64_t base;
	size_t len;
	int ret;

	if (slot == VIRTIO_SLOTS) {
		pr_err("%s: no virtio-mmio slot left (at most %d devices)", name, VIRTIO_SLOTS);
		return -ENOSPC;
	}
	base = LAYOUT_VIRTIO_MMIO_BASE + slot * LAYOUT_VIRTIO_MMIO_SIZE;
	gsi = virtio_irqs[slot];
	ret = bus_register(m->mmio, base, LAYOUT_VIRTIO_MMIO_SIZE, &virtio_mmio_bus_ops, t,
			   name);
	if (ret) {
		pr_err("%s: cannot claim MMIO 0x%llx: %s", name, (unsigned long long)base,
		       strerror(-ret));
		return ret;
	}
	if (m->accel != ACCEL_KVM) {
		/* The engine's QueueNotify writes reach the device's own MMIO handler, which
		 * signals the kick eventfd; its interrupt eventfd is relayed to the IOAPIC. */
		ret = dbt_machine_irqfd(&m->dm, &m->loop, virtio_mmio_irq_fd(t), gsi);
		if (ret)
			return ret;
	} else {
		ret = vm_irqfd(&m->vm, gsi, virtio_mmio_irq_fd(t), true);
		if (ret)
			return ret;
		for (unsigned int q = 0; q < t->nqueues; q++)
			if (vm_ioeventfd(&m->vm, base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, q,
					 virtio_mmio_kick_fd(t, q), true))
				pr_warn("%s: queue %u notifications take the slower MMIO exit "
					"path", name, q);
	}
	/* needs CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES in the guest kernel */
	len = strlen(m->cmdline);
	snprintf(m->cmdline + len, VIRTIO_CMDLINE_ENTRY, " virtio_mmio.device=4K@0x%llx:%u",
		 (unsigned long long)base, gsi);
	pr_info("%s at 0x%llx, IRQ %u", name, (unsigned long long)base, gsi);
	m->nvirtio++;
	return 0;
}

/* Starts the kernel command line from the user's, with room for what the machine adds:
 * one virtio_mmio.device= entry per device (attach_virtio) and the parameters this KVM backend
 * needs. On KVM-PVM the guest sees the host's KVM paravirtual features through CPUID, and with
 * more than one vCPU Linux then sends IPIs and yields with VMCALL, which hangs a vCPU on PVM
 * (KVM-HOST.md): "nopv" makes it a generic guest (no kvmclock either; it uses the TSC). */
static int kernel_cmdline_init(struct machine *m, const struct vm_config *cfg)
{
	m->cmdline = malloc(strlen(cfg->cmdline) + sizeof(" nopv") + sizeof(" i8042.noaux") +
			    VIRTIO_SLOTS * VIRTIO_CMDLINE_ENTRY + 1);
	if (!m->cmdline)
		return -ENOMEM;
	strcpy(m->cmdline, cfg->cmdline);
	/* The i8042's AUX port has nothing on it and no interrupt line (IRQ 12 is a virtio
	 * slot's): without this, Linux waits 250 ms at every boot for an AUX interrupt that never
	 * comes (measured with initcall_debug). Firecracker's default command line says the same. */
	if (!strstr(m->cmdline, "i8042.noaux"))
		strcat(m->cmdline, " i8042.noaux");
	if (m->vm.backend == KVM_BACKEND_PVM && cfg->cpus > 1 && !strstr(m->cmdline, "nopv")) {
		strcat(m->cmdline, " nopv");
		pr_info("KVM-PVM with %u vCPUs: added 'nopv' to the kernel command line",
			cfg->cpus);
	}
	return 0;
}

static void blk_drain(void *dev)
{
	virtio_blk_drain(dev);
}

static uint64_t throttled(const struct rate_limiter *r)
{
	return atomic_load_explicit(&r->throttled, memory_order_relaxed);
}

static void blk_stats(void *dev, FILE *f)
{
	const struct virtio_blk *b = dev;

	fprintf(f, "mvm: %s: rate limiter waits %llu\n", b->name,
		(unsigned long long)throttled(&b->rl));
}

/* Firecracker's block metric name. */
static void blk_metrics(void *dev, json_t *obj)
{
	const struct virtio_blk *b = dev;

	json_object_set_new(obj, "rate_limiter_throttled_events",
			    json_integer((json_int_t)throttled(&b->rl)));
}

static void blk_destroy(void *dev)
{
	virtio_blk_destroy(dev);
}

static void net_drain(void *dev)
{
	virtio_net_drain(dev);
}

static void net_destroy(void *dev)
{
	virtio_net_destroy(dev);
}

static void net_stats(void *dev, FILE *f)
{
	virtio_net_print_stats(dev, f);
}

/* Read while the I/O thread updates them: each counter is one aligned 64-bit word, so a reader
 * sees a recent value, which is all a metrics line promises. */
static void net_metrics(void *dev, json_t *obj)
{
	const struct virtio_net *n = dev;

	json_object_set_new(obj, "rx_packets", json_integer((json_int_t)n->rx_packets));
	json_object_set_new(obj, "rx_bytes", json_integer((json_int_t)n->rx_bytes));
	json_object_set_new(obj, "rx_dropped", json_integer((json_int_t)n->rx_dropped));
	json_object_set_new(obj, "tx_packets", json_integer((json_int_t)n->tx_packets));
	json_object_set_new(obj, "tx_bytes", json_integer((json_int_t)n->tx_bytes));
	json_object_set_new(obj, "tx_dropped", json_integer((json_int_t)n->tx_dropped));
	/* Firecracker's net metric names. */
	json_object_set_new(obj, "rx_rate_limiter_throttled",
			    json_integer((json_int_t)throttled(&n->rx_rl)));
	json_object_set_new(obj, "tx_rate_limiter_throttled",
			    json_integer((json_int_t)throttled(&n->tx_rl)));
}

static void console_destroy(void *dev)
{
	virtio_console_fini(dev);
}

static void rng_drain(void *dev)
{
	virtio_rng_drain(dev);
}

static void rng_destroy(void *dev)
{
	virtio_rng_fini(dev);
}

static void rng_stats(void *dev, FILE *f)
{
	const struct virtio_rng *r = dev;

	fprintf(f, "mvm: virtio-rng: %llu bytes, rate limiter waits %llu\n",
		(unsigned long long)r->bytes, (unsigned long long)throttled(&r->rl));
}

/* Read while the I/O thread updates them, as net_metrics(). */
static void rng_metrics(void *dev, json_t *obj)
{
	const struct virtio_rng *r = dev;

	json_object_set_new(obj, "entropy_bytes", json_integer((json_int_t)r->bytes));
	json_object_set_new(obj, "rate_limiter_throttled_events",
			    json_integer((json_int_t)throttled(&r->rl)));
}

static const struct device_ops blk_device = {.drain = blk_drain, .destroy = blk_destroy,
					     .stats = blk_stats, .metrics = blk_metrics};
static const struct device_ops net_device = {.drain = net_drain, .destroy = net_destroy,
					     .stats = net_stats, .metrics = net_metrics};
static const struct device_ops console_device = {.destroy = console_destroy};
static const struct device_ops rng_device = {.drain = rng_drain, .destroy = rng_destroy,
					     .stats = rng_stats, .metrics = rng_metrics};

static void vsock_destroy(void *dev)
{
	virtio_vsock_destroy(dev);
}

static void vsock_stats(void *dev, FILE *f)
{
	const struct virtio_vsock *v = dev;

	fprintf(f, "mvm: virtio-vsock: %llu connections, %llu bytes to the guest, %llu from it, "
		   "%llu RSTs sent\n",
		(unsigned long long)v->conns_opened, (unsigned long long)v->rx_bytes,
		(unsigned long long)v->tx_bytes, (unsigned long long)v->rsts_sent);
}

/* Read while the I/O thread updates them, as net_metrics(). */
static void vsock_metrics(void *dev, json_t *obj)
{
	const struct virtio_vsock *v = dev;

	json_object_set_new(obj, "conns_opened", json_integer((json_int_t)v->conns_opened));
	json_object_set_new(obj, "rx_packets", json_integer((json_int_t)v->rx_packets));
	json_object_set_new(obj, "tx_packets", json_integer((json_int_t)v->tx_packets));
	json_object_set_new(obj, "rx_bytes", json_integer((json_int_t)v->rx_bytes));
	json_object_set_new(obj, "tx_bytes", json_integer((json_int_t)v->tx_bytes));
	json_object_set_new(obj, "rsts_sent", json_integer((json_int_t)v->rsts_sent));
}

static const struct device_ops vsock_device = {.destroy = vsock_destroy, .stats = vsock_stats,
					       .metrics = vsock_metrics};

static void balloon_destroy(void *dev)
{
	virtio_balloon_destroy(dev);
}

static void balloon_stats(void *dev, FILE *f)
{
	struct virtio_balloon *b = dev;
	struct virtio_balloon_info info;

	virtio_balloon_info(b, &info);
	fprintf(f, "mvm: virtio-balloon: %llu pages inflated, %llu deflated, %llu given back to "
		   "the host (%llu of them reported free), %llu statistics updates, %llu guest "
		   "errors; target %u pages, actual %u\n",
		(unsigned long long)b->inflated_pages, (unsigned long long)b->deflated_pages,
		(unsigned long long)b->returned_pages, (unsigned long long)b->reported_pages,
		(unsigned long long)b->stats_updates, (unsigned long long)b->guest_errors,
		info.target_pages, info.actual_pages);
}

/* Read while the I/O thread updates them, as net_metrics(). */
static void balloon_metrics(void *dev, json_t *obj)
{
	const struct virtio_balloon *b = dev;

	json_object_set_new(obj, "inflate_requests", json_integer((json_int_t)b->inflate_reqs));
	json_object_set_new(obj, "deflate_requests", json_integer((json_int_t)b->deflate_reqs));
	json_object_set_new(obj, "inflated_pages", json_integer((json_int_t)b->inflated_pages));
	json_object_set_new(obj, "deflated_pages", json_integer((json_int_t)b->deflated_pages));
	json_object_set_new(obj, "returned_pages", json_integer((json_int_t)b->returned_pages));
	json_object_set_new(obj, "reported_pages", json_integer((json_int_t)b->reported_pages));
	json_object_set_new(obj, "stats_updates", json_integer((json_int_t)b->stats_updates));
	json_object_set_new(obj, "guest_errors", json_integer((json_int_t)b->guest_errors));
	json_object_set_new(obj, "discard_errors", json_integer((json_int_t)b->discard_errors));
}

static const struct device_ops balloon_device = {
	.destroy = balloon_destroy, .stats = balloon_stats, .metrics = balloon_metrics,
	/* Beyond its transport: the statistics buffer it holds and the interval's timer, which a
	 * restore would have to give back to the guest; and a restore with a target would have to
	 * agree with the snapshot's. */
	.no_snapshot = "a virtio-balloon",
};

/* Takes ownership of (dev) (created, not yet attached: it is destroyed with the machine even if
 * attaching fails), then attaches its virtio-mmio transport (t). */
static int add_virtio_device(struct machine *m, const char *name, const struct device_ops *ops,
			     void *dev, struct virtio_mmio *t)
{
	if (m->ndevices == MAX_DEVICES) {
		ops->destroy(dev);
		pr_err("%s: too many devices (at most %d)", name, MAX_DEVICES);
		return -ENOSPC;
	}
	m->devices[m->ndevices++] = (struct device){.name = name, .ops = ops, .dev = dev, .t = t};
	return attach_virtio(m, t, name);
}

static int attach_virtio_devices(struct machine *m, const struct vm_config *cfg)
{
	static const char *const names[MVM_MAX_DISKS] = {
		"virtio-blk 0", "virtio-blk 1", "virtio-blk 2", "virtio-blk 3",
		"virtio-blk 4", "virtio-blk 5", "virtio-blk 6", "virtio-blk 7",
	};
	int ret;

	/* Disks first, in option order, so the first -d is the guest's vda. */
	for (unsigned int i = 0; i < m->ndisks; i++) {
		struct virtio_blk *b = virtio_blk_create(names[i], &m->images[i],
							 cfg->disks[i].id[0] ? cfg->disks[i].id
									     : NULL,
							 m->mem, &m->loop);

		if (!b)
			return -ENOMEM;
		if (rl_config_on(&cfg->disks[i].limit))
			rate_limiter_update(&b->rl, &cfg->disks[i].limit);
		m->blks[i] = b;
		ret = add_virtio_device(m, names[i], &blk_device, b, &b->mmio);
		if (ret)
			return ret;
	}
	/* Then NICs, in option order: the first -n is the guest's eth0. */
	for (unsigned int i = 0; i < m->ntaps; i++) {
		static const char *const net_names[MVM_MAX_NETS] = {
			"virtio-net 0", "virtio-net 1", "virtio-net 2", "virtio-net 3",
		};
		const struct net_config *nc = &cfg->nets[i];
		struct virtio_net *n;
		uint8_t mac[6];

		if (nc->has_mac)
			memcpy(mac, nc->mac, sizeof(mac));
		else
			virtio_net_random_mac(mac);
		n = virtio_net_create(net_names[i], m->tap_fds[i], true, mac, m->mem, &m->loop);
		if (!n)
			return -ENOMEM;
		if (rl_config_on(&nc->rx_limit))
			rate_limiter_update(&n->rx_rl, &nc->rx_limit);
		if (rl_config_on(&nc->tx_limit))
			rate_limiter_update(&n->tx_rl, &nc->tx_limit);
		m->nets[i] = n;
		ret = add_virtio_device(m, net_names[i], &net_device, n, &n->mmio);
		if (ret)
			return ret;
		pr_info("%s on TAP %s, MAC %02x:%02x:%02x:%02x:%02x:%02x", net_names[i], nc->tap,
			mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	}
	if (cfg->console == CONSOLE_VIRTIO) {
		ret = virtio_console_init(&m->vcon, "virtio-console", STDIN_FILENO, STDOUT_FILENO,
					  vcon_filter, m, m->mem, &m->loop);
		if (ret)
			return ret;
		ret = add_virtio_device(m, "virtio-console", &console_device, &m->vcon,
					&m->vcon.mmio);
		if (ret)
			return ret;
	}
	if (cfg->vsock.on) {
		struct virtio_vsock *v = virtio_vsock_create("virtio-vsock", cfg->vsock.cid,
							     cfg->vsock.path, m->mem, &m->loop);

		if (!v)
			return -EINVAL;
		ret = add_virtio_device(m, "virtio-vsock", &vsock_device, v, &v->mmio);
		if (ret)
			return ret;
		pr_info("virtio-vsock: guest CID %llu, host socket %s",
			(unsigned long long)cfg->vsock.cid, cfg->vsock.path);
	}
	if (cfg->balloon.on) {
		struct virtio_balloon_params p = {
			.target_pages = cfg->balloon.amount_mib * VIRTIO_BALLOON_PAGES_PER_MIB,
			.deflate_on_oom = cfg->balloon.deflate_on_oom,
			.stats_interval_s = cfg->balloon.stats_interval_s,
			.free_page_reporting = cfg->balloon.free_page_reporting,
		};
		struct virtio_balloon *b = virtio_balloon_create("virtio-balloon", &p, m->map,
								 m->mem, &m->loop);

		if (!b)
			return -ENOMEM;
		ret = add_virtio_device(m, "virtio-balloon", &balloon_device, b, &b->mmio);
		if (ret)
			return ret;
		m->balloon = b;
		pr_info("virtio-balloon: target %u MiB%s%s", cfg->balloon.amount_mib,
			cfg->balloon.deflate_on_oom ? ", deflate on OOM" : "",
			cfg->balloon.free_page_reporting ? ", free page reporting" : "");
	}
	/* Last, so the slots of the devices the user asked for do not move with --no-rng. */
	if (cfg->rng) {
		ret = virtio_rng_init(&m->rng, "virtio-rng", m->mem, &m->loop);
		if (ret)
			return ret;
		if (rl_config_on(&cfg->rng_limit))
			rate_limiter_update(&m->rng.rl, &cfg->rng_limit);
		m->has_rng = true;
		ret = add_virtio_device(m, "virtio-rng", &rng_device, &m->rng, &m->rng.mmio);
		if (ret)
			return ret;
	}
	return 0;
}

static void destroy_virtio_devices(struct machine *m)
{
	while (m->ndevices) {
		struct device *d = &m->devices[--m->ndevices];

		d->ops->destroy(d->dev);
	}
	free(m->cmdline);
}

/* After the vCPUs and the I/O thread stopped: nothing may write guest RAM once it is unmapped. */
static void drain_devices(struct machine *m)
{
	for (unsigned int i = 0; i < m->ndevices; i++)
		if (m->devices[i].ops->drain)
			m->devices[i].ops->drain(m->devices[i].dev);
}

/* Opens and locks every disk image before any VM exists, so a wrong path or an image in use
 * is a usage error with one message and no guest started. */
static int open_disks(struct machine *m, const struct vm_config *cfg)
{
	for (unsigned int i = 0; i < cfg->ndisks; i++) {
		int ret = blk_image_open(&m->images[i], cfg->disks[i].path, cfg->disks[i].ro,
					 cfg->disks[i].direct);

		if (ret)
			return ret;
		m->ndisks++;
	}
	return 0;
}

static void close_disks(struct machine *m)
{
	for (unsigned int i = 0; i < m->ndisks; i++)
		blk_image_close(&m->images[i]);
}

/* Opens (or creates) every TAP before any VM exists: a TAP that cannot be opened is a usage
 * error with one message and no guest started. */
static int open_taps(struct machine *m, const struct vm_config *cfg)
{
	for (unsigned int i = 0; i < cfg->nnets; i++) {
		int fd = tap_open(cfg->nets[i].tap);

		if (fd < 0)
			return fd;
		m->tap_fds[m->ntaps++] = fd;
	}
	return 0;
}

static void close_taps(struct machine *m)
{
	for (unsigned int i = 0; i < m->ntaps; i++)
		close(m->tap_fds[i]);
}

static int attach_devices(struct machine *m, const struct vm_config *cfg)
{
	struct irq_line serial_irq = {.chip = m->irqchip, .gsi = LAYOUT_IRQ_SERIAL0};
	int ret = 0;

	m->console_fd = -1;
	switch (cfg->console) {
	case CONSOLE_STDIO:
	case CONSOLE_VIRTIO: /* the serial port still prints early messages to stdout */
		console_fd_sink_init(&m->out, STDOUT_FILENO);
		break;
	case CONSOLE_FILE:
		m->console_fd = open(cfg->console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				     0644);
		if (m->console_fd < 0) {
			pr_err("console file '%s': %s", cfg->console_path, strerror(errno));
			return -errno;
		}
		console_fd_sink_init(&m->out, m->console_fd);
		break;
	case CONSOLE_NONE:
		break;
	}
	uart8250_init(&m->uart, serial_irq, cfg->console == CONSOLE_NONE ? NULL : &m->out.sink);
	/* IRQ 12 (the AUX port's) is a virtio slot's here, and nothing sits on the AUX port:
	 * the keyboard's IRQ 1 only. */
	i8042_init(&m->i8042, m->stop,
		   (struct irq_line){.chip = m->irqchip, .gsi = LAYOUT_IRQ_KEYBOARD},
		   (struct irq_line){.chip = NULL});
	m->debug_exit.stop = m->stop;
	cmos_init(&m->cmos);

	/* Port I/O map: the legacy PC devices Linux and the test guests touch. The PIC, PIT
	 * and speaker port are KVM's in-kernel devices. */
	ret |= bus_register(m->pio, 0x3f8, UART_PORTS, &uart8250_ops, &m->uart, "ttyS0");
	ret |= bus_register(m->pio, I8042_DATA_PORT, 1, &i8042_data_ops, &m->i8042, "i8042");
	ret |= bus_register(m->pio, I8042_COMMAND_PORT, 1, &i8042_command_ops, &m->i8042,
			    "i8042");
	ret |= bus_register(m->pio, CMOS_PORT, 2, &cmos_ops, &m->cmos, "cmos");
	ret |= bus_register(m->pio, POST_PORT, 1, &sink_ops, NULL, "post");
	ret |= bus_register(m->pio, DEBUG_EXIT_PORT, 4, &debug_exit_ops, &m->debug_exit,
			    "debug-exit");
	if (ret) {
		pr_err("device port ranges overlap");
		return -EEXIST;
	}
	ret = kernel_cmdline_init(m, cfg);
	return ret ? ret : attach_virtio_devices(m, cfg);
}

/* Loads the mapped kernel and initrd into guest memory; (*cpu) receives the entry state. Every
 * failure here is about the user's files. */
static int load_guest(struct machine *m, const struct vm_config *cfg, struct boot_cpu *cpu)
{
	struct boot_input in = {
		.kernel = m->kernel.data,
		.kernel_len = m->kernel.len,
		.initrd = m->initrd.data,
		.initrd_len = m->initrd.len,
		.cmdline = m->cmdline,
		.map = m->map,
		.ncpus = cfg->cpus,
	};

	return boot_load(m->mem, &in, cpu);
}

/* --stats: what the VM cost in emulation, where it poked at nothing, what its NICs moved. */
static void print_stats(struct machine *m)
{
	if (m->accel != ACCEL_KVM)
		dbt_print_stats(m->dm.dbt, stderr);
	if (m->accel == ACCEL_HYBRID)
		kvm_user_print_stats(m->dm.kvm, stderr);
	else
		emulate_print_stats(&m->vm, stderr);
	for (unsigned int i = 0; m->accel == ACCEL_KVM && i < m->vm.ncpus; i++) {
		fprintf(stderr, "mvm: vCPU %u exits:", i);
		for (unsigned int k = 0; k < VCPU_EXIT_KINDS; k++)
			fprintf(stderr, " %s %llu", vcpu_exit_names[k],
				(unsigned long long)atomic_load_explicit(&m->vm.vcpus[i].exits[k],
									 memory_order_relaxed));
		fputc('\n', stderr);
	}
	fprintf(stderr, "mvm: unclaimed accesses: port I/O %llu reads, %llu writes; MMIO %llu "
		"reads, %llu writes\n",
		(unsigned long long)m->pio->unclaimed_reads,
		(unsigned long long)m->pio->unclaimed_writes,
		(unsigned long long)m->mmio->unclaimed_reads,
		(unsigned long long)m->mmio->unclaimed_writes);
	for (unsigned int i = 0; i < m->ndevices; i++)
		if (m->devices[i].ops->stats)
			m->devices[i].ops->stats(m->devices[i].dev, stderr);
}

/* How the machine stopped, as the process's exit status (options.h documents them). */
static int exit_status(const struct machine *m)
{
	enum stop_reason r = stop_reason(m->stop);

	switch (r) {
	case STOP_GUEST_EXIT: return m->stop->status;
	case STOP_RESET:
	case STOP_POWEROFF:
	case STOP_USER: return MVM_EXIT_OK;
	case STOP_SIGNAL: return 128 + m->stop->status;
	case STOP_CRASH: return MVM_EXIT_CRASH;
	case STOP_UNHANDLED: return MVM_EXIT_UNHANDLED;
	default: return MVM_EXIT_VMM;
	}
}

/* Maps and checks the input files before any VM exists, so a typo costs nothing. */
static int open_inputs(struct machine *m, const struct vm_config *cfg)
{
	enum boot_kind kind;
	int ret;

	if (!cfg->kernel)
		return 0; /* a restore: guest memory comes from the snapshot */
	if (cfg->mem > host_ram_bytes()) {
		pr_err("--mem: %llu MiB is more than this host's %llu MiB of RAM",
		       (unsigned long long)(cfg->mem >> 20),
		       (unsigned long long)(host_ram_bytes() >> 20));
		return -EINVAL;
	}
	ret = file_map(&m->kernel, cfg->kernel, "kernel", cfg->mem);
	if (ret)
		return ret;
	ret = boot_detect(m->kernel.data, m->kernel.len, &kind);
	if (ret) {
		pr_err("kernel '%s' is neither a Linux bzImage (no \"HdrS\" boot header) nor a "
		       "PVH ELF (no ELF header with a Xen PHYS32_ENTRY note)", cfg->kernel);
		return ret;
	}
	return cfg->initrd ? file_map(&m->initrd, cfg->initrd, "initrd", cfg->mem) : 0;
}

static void close_inputs(struct machine *m)
{
	file_unmap(&m->initrd);
	file_unmap(&m->kernel);
}

/* The accelerator: a KVM VM, or mvm's engine with its own RAM, buses and interrupt
 * controllers. Either way (m->mem, pio, mmio, stop, map, irqchip) are what devices attach to. */
/* --accel auto: what boots Linux fastest here. On VMX/SVM, KVM runs the guest natively. On a
 * KVM-PVM host guest kernel code is interpreted by the host (~1.2 M instructions/s,
 * KVM-HOST.md): the default guest took 71.7 s to init there under KVM, 0.53 s in the engine and
 * 0.55 s under --accel hybrid (bench/results/2026-12-03-pvm-hybrid.md), whose native user mode
 * pays a KVM exit per system call and page fault: the engine wins for boot and short commands
 * (hybrid is the choice for user-mode computation, README); without /dev/kvm it is the only
 * choice. */
static enum accel_kind pick_accel(void)
{
	enum kvm_backend b;

	if (access("/dev/kvm", R_OK | W_OK)) {
		pr_info("--accel auto: no usable /dev/kvm: mvm's engine (dbt)");
		return ACCEL_DBT;
	}
	b = kvm_detect_backend();
	if (b == KVM_BACKEND_PVM) {
		pr_info("--accel auto: /dev/kvm is KVM-PVM, which interprets guest kernel code: "
			"mvm's engine (dbt) runs Linux faster here");
		return ACCEL_DBT;
	}
	pr_info("--accel auto: KVM (%s backend) runs the guest natively", kvm_backend_name(b));
	return ACCEL_KVM;
}

static int create_machine(struct machine *m, const struct vm_config *cfg)
{
	m->accel = cfg->accel == ACCEL_AUTO ? pick_accel() : cfg->accel;
	m->ncpus = cfg->cpus;
	if (m->accel != ACCEL_KVM) {
		if (dbt_machine_init(&m->dm, cfg->mem, cfg->cpus, m->accel == ACCEL_HYBRID))
			return -1;
		m->mem = &m->dm.mem;
		m->pio = &m->dm.pio;
		m->mmio = &m->dm.mmio;
		m->stop = &m->dm.stop;
		m->map = &m->dm.map;
		pr_info("engine %s, %u vCPU(s), %llu MiB",
			m->accel == ACCEL_HYBRID ? "hybrid (user mode on KVM)" : "dbt (no KVM)",
			cfg->cpus, (unsigned long long)(cfg->mem >> 20));
		return 0;
	}
	if (vm_create(&m->vm, cfg->mem, cfg->cpus)) {
		if (access("/dev/kvm", R_OK | W_OK))
			pr_err("no usable /dev/kvm on this host: run with --accel dbt to use mvm's "
			       "own execution engine");
		return -1;
	}
	m->vm.fc_thread_names = cfg->fc_thread_names;
	m->mem = &m->vm.mem;
	m->pio = &m->vm.pio;
	m->mmio = &m->vm.mmio;
	m->stop = &m->vm.stop;
	m->map = &m->vm.map;
	m->irqchip = &m->vm.irqchip;
	pr_info("KVM backend %s, %u vCPU(s), %llu MiB", kvm_backend_name(m->vm.backend), cfg->cpus,
		(unsigned long long)(cfg->mem >> 20));
	return 0;
}

int machine_run(const struct vm_config *cfg, struct machine_observer *obs)
{
	struct machine *m = calloc(1, sizeof(*m));
	struct snapshot_in snap = {.mem_fd = -1};
	struct vm_config restored;
	struct boot_cpu cpu;
	sigset_t sigs;
	int ret, status = MVM_EXIT_VMM;

	if (!m)
		return MVM_EXIT_VMM;
	m->cfg = cfg;
	/* A snapshot is read and checked whole before anything is built from it. */
	if (cfg->restore_state) {
		if (snapshot_open(&snap, cfg, &restored)) {
			free(m);
			return MVM_EXIT_USAGE;
		}
		cfg = m->cfg = &restored;
	}
	if (open_inputs(m, cfg) || open_disks(m, cfg) || open_taps(m, cfg)) {
		close_taps(m);
		close_disks(m);
		close_inputs(m);
		snapshot_close(&snap);
		free(m);
		return MVM_EXIT_USAGE;
	}
	if (setup_signals(m, cfg, &sigs))
		goto out_free;
	if (create_machine(m, cfg))
		goto out_signal;
	/* Before anything is loaded, so the kernel's pages are huge from the first touch. */
	if (cfg->mem_thp && (ret = guest_mem_use_thp(m->mem)))
		pr_info("no transparent huge pages for guest RAM: %s", strerror(-ret));
	/* Room for a full virtio-blk queue and the rest without resubmits. */
	if (loop_init(&m->loop, 512))
		goto out_vm;
	if (m->accel != ACCEL_KVM) {
		if (dbt_machine_attach_intc(&m->dm, &m->loop, cfg->cpus))
			goto out_loop;
		m->irqchip = intc_irq_chip(&m->dm.intc);
	}
	ret = attach_devices(m, cfg);
	if (ret) {
		/* The only input-dependent failure here is the console file (a disk image was
		 * opened and checked before). */
		status = cfg->console == CONSOLE_FILE && m->console_fd < 0 ? MVM_EXIT_USAGE
									   : MVM_EXIT_VMM;
		goto out_loop;
	}
	if (cfg->restore_state) {
		ret = snapshot_restore(m, &snap);
		snapshot_close(&snap);
		if (ret) {
			/* A snapshot that does not fit what was built from it (a disk of
			 * another size, rings outside RAM): the user's input, nothing ran. */
			status = MVM_EXIT_USAGE;
			goto out_devices;
		}
		/* Restored paused: every vCPU parks before its first instruction. */
		if (cfg->restore_paused)
			atomic_store(&m->stop->pause_wanted, true);
	} else {
		ret = load_guest(m, cfg, &cpu);
		/* The images are in guest memory now; their mappings would only add to our RSS. */
		close_inputs(m);
		if (ret) {
			status = MVM_EXIT_USAGE;
			goto out_devices;
		}
		if (m->accel != ACCEL_KVM)
			dbt_machine_set_entry(&m->dm, &cpu);
		else if (vm_set_boot_cpu(&m->vm, &cpu))
			goto out_devices;
	}
	m->signal_op.done = signal_done;
	arm_signal(m);
	if (cfg->console == CONSOLE_STDIO) {
		if (console_input_init(&m->in, &m->loop, &m->uart, m->stop, STDIN_FILENO))
			goto out_devices;
	}
	if ((cfg->console == CONSOLE_STDIO || cfg->console == CONSOLE_VIRTIO) &&
	    term_raw(STDIN_FILENO))
		pr_warn("cannot put the terminal in raw mode; input is line-buffered");
	/* Everything is open: the jail can take the filesystem and the privileges away
	 * (sandbox/jail.h), before any other thread exists. */
	if (cfg->jail.on && jail_enter(&cfg->jail))
		goto out_console;
	/* From here on every thread runs under its seccomp filter (sandbox/seccomp.h). */
	if (sandbox_seccomp_init(cfg->seccomp) || loop_start(&m->loop))
		goto out_console;
	if (cfg->snapshot_state &&
	    snapshot_worker_start(&m->snapw, m, cfg->snapshot_state, cfg->snapshot_mem))
		stop_request(m->stop, STOP_VMM_ERROR, 0);
	if (obs && obs->running)
		obs->running(obs, m);
	/* The last thing before the restored guest's first instruction (bench/snapshot.py times
	 * exec to this line with MVM_LOG=info). */
	if (cfg->restore_state && !cfg->restore_paused)
		pr_info("restored: the guest goes on from its snapshot");
	if (m->accel != ACCEL_KVM) {
		if (thread_role_enter(THREAD_ENGINE))
			stop_request(m->stop, STOP_VMM_ERROR, 0);
		else
			dbt_run(m->dm.dbt);
	} else {
		vm_run(&m->vm);
	}
	snapshot_worker_stop(&m->snapw);
	if (obs && obs->stopping)
		obs->stopping(obs, m);
	loop_join(&m->loop);
	drain_devices(m);
	term_restore();
	status = exit_status(m);
	if (stop_reason(m->stop) != STOP_GUEST_EXIT)
		pr_info("guest stopped: %s", stop_reason_name(stop_reason(m->stop)));
	if (cfg->stats)
		print_stats(m);
out_console:
	if (cfg->console == CONSOLE_STDIO)
		console_input_fini(&m->in);
out_devices:
	uart8250_fini(&m->uart);
	i8042_fini(&m->i8042);
	if (m->console_fd >= 0)
		close(m->console_fd);
out_loop:
	loop_fini(&m->loop);
	/* After the ring is gone: its pending reads pointed into the devices. */
	destroy_virtio_devices(m);
out_vm:
	if (m->accel != ACCEL_KVM)
		dbt_machine_fini(&m->dm);
	else
		vm_destroy(&m->vm);
out_signal:
	close(m->signal_fd);
	pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
out_free:
	snapshot_close(&snap);
	close_taps(m);
	close_disks(m);
	close_inputs(m);
	free(m);
	term_restore();
	return status;
}

int machine_send_ctrl_alt_del(struct machine *m)
{
	int ret = i8042_send_ctrl_alt_del(&m->i8042);

	if (ret == -EAGAIN)
		pr_err("SendCtrlAltDel: the guest has its keyboard disabled");
	else if (ret)
		pr_err("SendCtrlAltDel: the keyboard's buffer is full (the guest reads no keys)");
	return ret;
}

int machine_pause(struct machine *m, bool pause)
{
	/* Under KVM each vCPU has its thread; the engine runs them all on one. */
	unsigned int runners = m->accel == ACCEL_KVM ? m->ncpus : 1;

	if (!pause) {
		stop_resume(m->stop);
		return 0;
	}
	if (stop_pause(m->stop, runners)) {
		stop_resume(m->stop);
		pr_err("the guest stopped while it was being paused");
		return -ESHUTDOWN;
	}
	return 0;
}

int machine_set_rate_limit(struct machine *m, enum machine_limit what, unsigned int index,
			   const struct rl_config *c)
{
	struct rate_limiter *r = NULL;

	switch (what) {
	case MACHINE_LIMIT_DISK:
		if (index < MVM_MAX_DISKS && m->blks[index])
			r = &m->blks[index]->rl;
		break;
	case MACHINE_LIMIT_NET_RX:
	case MACHINE_LIMIT_NET_TX:
		if (index < MVM_MAX_NETS && m->nets[index])
			r = what == MACHINE_LIMIT_NET_RX ? &m->nets[index]->rx_rl
							 : &m->nets[index]->tx_rl;
		break;
	case MACHINE_LIMIT_RNG:
		if (index == 0 && m->has_rng)
			r = &m->rng.rl;
		break;
	}
	if (!r)
		return -ENODEV;
	rate_limiter_update(r, c);
	return 0;
}

int machine_balloon_set_target(struct machine *m, uint32_t amount_mib)
{
	if (!m->balloon) {
		pr_err("the machine has no balloon device");
		return -ENODEV;
	}
	if ((uint64_t)amount_mib << 20 > guest_mem_size(m->mem)) {
		pr_err("amount_mib %u is more than the guest's %llu MiB of RAM", amount_mib,
		       (unsigned long long)(guest_mem_size(m->mem) >> 20));
		return -EINVAL;
	}
	virtio_balloon_set_target(m->balloon, amount_mib * VIRTIO_BALLOON_PAGES_PER_MIB);
	return 0;
}

int machine_balloon_set_stats_interval(struct machine *m, unsigned int seconds)
{
	if (!m->balloon) {
		pr_err("the machine has no balloon device");
		return -ENODEV;
	}
	if (virtio_balloon_set_stats_interval(m->balloon, seconds)) {
		pr_err("statistics cannot be turned on or off after the start "
		       "(stats_polling_interval_s was %u)", m->balloon->params.stats_interval_s);
		return -EINVAL;
	}
	return 0;
}

int machine_balloon_info(struct machine *m, struct virtio_balloon_info *out)
{
	if (!m->balloon) {
		pr_err("the machine has no balloon device");
		return -ENODEV;
	}
	virtio_balloon_info(m->balloon, out);
	return 0;
}

void machine_metrics(struct machine *m, json_t *root)
{
	json_t *devices = json_object(), *bus;

	bus = json_pack("{s:I, s:I, s:I, s:I}", "pio_unclaimed_reads",
			(json_int_t)m->pio->unclaimed_reads, "pio_unclaimed_writes",
			(json_int_t)m->pio->unclaimed_writes, "mmio_unclaimed_reads",
			(json_int_t)m->mmio->unclaimed_reads, "mmio_unclaimed_writes",
			(json_int_t)m->mmio->unclaimed_writes);
	if (bus)
		json_object_set_new(root, "bus", bus);
	if (m->accel == ACCEL_KVM) {
		json_t *vcpus = json_array();
		uint64_t n = 0;

		for (unsigned int i = 0; i < EMU_MNEMONICS; i++)
			n += atomic_load_explicit(&m->vm.emulated[i], memory_order_relaxed);
		json_object_set_new(root, "emulated_instructions", json_integer((json_int_t)n));
		/* Per vCPU, its exits by what mvm did with them (vcpu.h). */
		for (unsigned int i = 0; vcpus && i < m->vm.ncpus; i++) {
			json_t *exits = json_object();

			for (unsigned int k = 0; exits && k < VCPU_EXIT_KINDS; k++)
				json_object_set_new(exits, vcpu_exit_names[k],
						    json_integer((json_int_t)atomic_load_explicit(
							    &m->vm.vcpus[i].exits[k],
							    memory_order_relaxed)));
			json_array_append_new(vcpus, json_pack("{s:I, s:o*}", "index",
							       (json_int_t)i, "exits", exits));
		}
		if (vcpus)
			json_object_set_new(root, "vcpus", vcpus);
	}
	for (unsigned int i = 0; devices && i < m->ndevices; i++) {
		const struct device *d = &m->devices[i];
		json_t *obj;

		if (!d->ops->metrics || !(obj = json_object()))
			continue;
		d->ops->metrics(d->dev, obj);
		json_object_set_new(devices, d->name, obj);
	}
	if (devices)
		json_object_set_new(root, "devices", devices);
}
