/* options.c: parsing of the mvm command line (kvmtool's -k -i -p -m -c, QEMU's long names). */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/layout.h"
#include "util/log.h"
#include "util/size.h"

const char options_usage[] =
	"Usage: mvm run -k KERNEL [options]\n"
	"       mvm --api-sock PATH [--config-file FILE] [Firecracker options]\n"
	"       mvm --no-api --config-file FILE [Firecracker options]\n"
	"       mvm --help | --version\n"
	"\n"
	"Run a virtual machine until the guest exits, resets or powers off.\n"
	"\n"
	"  -k, --kernel FILE     kernel: Linux bzImage, or a PVH ELF (vmlinux, test guests)\n"
	"  -i, --initrd FILE     initial ramdisk\n"
	"  -p, --cmdline STR     kernel command line (also --append);\n"
	"                        default \"" MVM_DEFAULT_CMDLINE "\"\n"
	"  -m, --mem SIZE[,thp=on|off]\n"
	"                        guest RAM, with K/M/G suffix, bare number = MiB (default 256M);\n"
	"                        thp: back it with transparent huge pages where the host allows\n"
	"                        (default on, as QEMU; off saves RSS for sparse guests)\n"
	"  -c, --cpus N          number of vCPUs, 1-64 (default 1)\n"
	"  -d, --disk PATH[,ro][,direct][,id=NAME][,bw=LIMIT][,ops=LIMIT]\n"
	"                        a raw disk image as a virtio-blk device (repeatable, up to 8;\n"
	"                        the guest sees vda, vdb, ... in order). ro: read-only;\n"
	"                        direct: O_DIRECT, bypassing the host page cache;\n"
	"                        id: the serial the guest reads (up to 20 bytes); bw, ops:\n"
	"                        rate limits (below). The image is locked: one writer or\n"
	"                        several read-only users. \",,\" in PATH is a comma\n"
	"  -n, --net tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,rx_bw=LIMIT][,rx_ops=LIMIT]\n"
	"            [,tx_bw=LIMIT][,tx_ops=LIMIT]\n"
	"                        a virtio-net NIC on TAP device NAME (repeatable, up to 4),\n"
	"                        created if it does not exist (needs CAP_NET_ADMIN); mac: the\n"
	"                        guest's address (default: a random locally administered one);\n"
	"                        rx_*: to the guest, tx_*: from it (below)\n"
	"      --vsock cid=N,path=PATH\n"
	"                        a virtio-vsock device for guest CID N (3 or more), bridged\n"
	"                        to Unix sockets as Firecracker does: mvm listens on PATH\n"
	"                        (which must not exist; removed at exit), where a host\n"
	"                        process writes \"CONNECT <port>\\n\" to reach the guest's\n"
	"                        listener on <port> and reads \"OK <hostport>\\n\"; the guest's\n"
	"                        connections to host port P go to the Unix socket PATH_P\n"
	"      --balloon amount_mib=N[,deflate_on_oom=on|off][,stats_interval=S]\n"
	"                [,free_page_reporting=on|off]\n"
	"                        a virtio-balloon device: the guest gives N MiB back to the\n"
	"                        host (at most its RAM; 0 to start with none). deflate_on_oom:\n"
	"                        the guest takes pages back under memory pressure (default\n"
	"                        off); stats_interval: the guest's memory statistics every S\n"
	"                        seconds (1-65535; default 0, none); free_page_reporting: the\n"
	"                        guest's free memory goes back to the host too (default off).\n"
	"                        --stats counts what went back. Firecracker's API (PUT\n"
	"                        /balloon) also changes the target while the guest runs\n"
	"      --rng[=bw=LIMIT,ops=LIMIT], --no-rng\n"
	"                        a virtio-rng entropy device (the guest's /dev/hwrng), fed\n"
	"                        from getrandom(); on by default\n"
	"                        Rate limits (Firecracker's token buckets): bw=SIZE/MS[/BURST]\n"
	"                        lets SIZE bytes (K, M, G suffixes) through per MS milliseconds,\n"
	"                        ops=N/MS[/BURST] N requests (frames on a NIC); the bucket\n"
	"                        starts full, BURST is a one-time extra at the start; either\n"
	"                        alone or both. A queue over its limit waits, in order;\n"
	"                        e.g. bw=10M/1000 is 10 MiB/s\n"
	"      --console KIND    stdio (default), none, or file:PATH for the serial console;\n"
	"                        virtio: stdio on a virtio console (hvc0) instead\n"
	"      --accel kvm|dbt|hybrid|auto\n"
	"                        run the guest on /dev/kvm (default), on mvm's own execution\n"
	"                        engine (no /dev/kvm needed), hybrid: guest user mode on KVM\n"
	"                        and kernel mode in the engine (KVM-PVM hosts, one vCPU), or\n"
	"                        auto: KVM where it runs guest kernels natively (VMX, SVM),\n"
	"                        the engine on KVM-PVM hosts (which interpret guest kernel\n"
	"                        code) and without /dev/kvm\n"
	"      --stats           print counters when the VM stops: instructions mvm emulated\n"
	"                        (per mnemonic) and unclaimed port I/O and MMIO accesses\n"
	"      --seccomp on|log|off\n"
	"                        confine each of mvm's threads to the system calls it needs\n"
	"                        (default on: any other call stops mvm with status 159 and a\n"
	"                        message naming it); log: allow and let the kernel log them\n"
	"      --restore DIR     start from the snapshot in DIR (DIR/state, DIR/mem) instead\n"
	"                        of booting, on the accelerator that took it (kvm or dbt;\n"
	"                        auto follows it). The snapshot's disks, TAPs and vsock\n"
	"                        socket are used unless -d/-n give all of them anew, in\n"
	"                        order, and --vsock (same cid) a new socket: a clone's own\n"
	"                        disk copy, TAP and socket (the guest keeps its MAC and CID)\n"
	"      --clock-realtime  with --restore: move the guest's clock (KVM's clock; under\n"
	"                        --accel dbt its TSC) on by the time since the snapshot, so\n"
	"                        it wakes with the host's date\n"
	"      --snapshot-dir DIR\n"
	"                        SIGUSR2 pauses the VM, writes a snapshot to DIR/state and\n"
	"                        DIR/mem, and resumes it (kvm and dbt)\n"
	"      --jail UID:GID    as root: run as UID:GID without capabilities, in a mount\n"
	"                        namespace with an empty root, once every file is open\n"
	"      --jail-netns PATH join this network namespace first (TAPs are made there)\n"
	"      --jail-pidns      a new PID namespace (mvm's parent waits and relays signals)\n"
	"      --jail-cgroup NAME\n"
	"                        join cgroup v2 group /sys/fs/cgroup/NAME (created if missing)\n"
	"      --jail-nofile N   RLIMIT_NOFILE in the jail (default 2048)\n"
	"  -h, --help            this text\n"
	"  -V, --version         mvm's version\n"
	"\n"
	"Firecracker's command line and API (docs/firecracker-api.md): the VM is configured over\n"
	"HTTP on a Unix socket or from a JSON file, with Firecracker's calls and bodies:\n"
	"      --api-sock PATH   serve Firecracker's API on this Unix socket (must not exist)\n"
	"      --config-file FILE\n"
	"                        configure from Firecracker's JSON and start at once\n"
	"      --no-api          no socket (needs --config-file)\n"
	"      --id ID           the instance id GET / reports (default " FC_DEFAULT_ID ")\n"
	"      --log-path PATH   the log goes to this file or FIFO instead of stderr\n"
	"      --level LEVEL     Error, Warning (default), Info, Debug, Trace or Off\n"
	"      --metrics-path PATH\n"
	"                        JSON lines of counters, every 60 s and on FlushMetrics\n"
	"      --http-api-max-payload-size BYTES\n"
	"                        the largest request body (default 51200)\n"
	"      --no-seccomp      as --seccomp off; --accel, --seccomp and --stats as above\n"
	"\n"
	"With --console stdio on a terminal, Ctrl-A x quits and Ctrl-A Ctrl-A sends Ctrl-A.\n"
	"\n"
	"Exit status: the guest's value written to port 0xf4 (low 8 bits); 0 after a guest reset\n"
	"(reboot) or Ctrl-A x; 64 usage error or bad input file; 70 VMM failure; 80 guest crashed\n"
	"(triple fault); 81 guest stopped on an exit mvm cannot handle; 128+N on signal N;\n"
	"159 a system call outside mvm's seccomp allow-list.\n";

static int fail(char *err, unsigned int errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, unsigned int errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_console(const char *arg, struct vm_config *cfg, char *err, unsigned int errlen)
{
	if (!strcmp(arg, "stdio")) {
		cfg->console = CONSOLE_STDIO;
	} else if (!strcmp(arg, "none")) {
		cfg->console = CONSOLE_NONE;
	} else if (!strcmp(arg, "virtio")) {
		cfg->console = CONSOLE_VIRTIO;
	} else if (!strncmp(arg, "file:", 5) && arg[5]) {
		cfg->console = CONSOLE_FILE;
		cfg->console_path = arg + 5;
	} else {
		return fail(err, errlen, "--console: '%s' is not stdio, none, virtio or file:PATH",
			    arg);
	}
	return 0;
}

/* -m SIZE[,thp=on|off] */
static int parse_mem(const char *arg, struct vm_config *cfg, char *err, unsigned int errlen)
{
	const char *comma = strchr(arg, ',');
	char size[32];
	uint64_t v;

	if ((comma ? (size_t)(comma - arg) : strlen(arg)) >= sizeof(size))
		return fail(err, errlen, "--mem: '%s' is not a size (e.g. 256M, 2G)", arg);
	snprintf(size, sizeof(size), "%.*s", comma ? (int)(comma - arg) : (int)strlen(arg), arg);
	if (parse_size(size, &v))
		return fail(err, errlen, "--mem: '%s' is not a size (e.g. 256M, 2G)", size);
	if (v < LAYOUT_RAM_MIN || v > LAYOUT_RAM_MAX)
		return fail(err, errlen, "--mem: %s is outside %lluM to %lluG", size,
			    LAYOUT_RAM_MIN >> 20, LAYOUT_RAM_MAX >> 30);
	if (v & 0xfff)
		return fail(err, errlen, "--mem: %s is not a multiple of 4K", size);
	cfg->mem = v;
	if (!comma)
		return 0;
	if (!strcmp(comma + 1, "thp=on"))
		cfg->mem_thp = true;
	else if (!strcmp(comma + 1, "thp=off"))
		cfg->mem_thp = false;
	else
		return fail(err, errlen, "--mem: unknown option '%s' (SIZE[,thp=on|off])",
			    comma + 1);
	return 0;
}

/* Copies the next comma-separated field of (*p) into (out, size), turning ",," into ",".
 * Returns the field's length, or -1 when it does not fit. Leaves (*p) after the separator
 * (or at the terminating NUL). */
static int next_field(const char **p, char *out, size_t size)
{
	const char *s = *p;
	size_t n = 0;

	for (; *s; s++) {
		if (*s == ',') {
			if (s[1] != ',')
				break;
			s++;
		}
		if (n + 1 >= size)
			return -1;
		out[n++] = *s;
	}
	out[n] = 0;
	*p = *s ? s + 1 : s;
	return (int)n;
}

/* One token bucket, "A/MS[/BURST]": A bytes (SIZE, with K/M/G/T suffixes; a bare number is
 * bytes) or operations (a plain count), refilled in MS milliseconds, and a one-time burst of
 * the same unit. (opt) and (key) name it in messages. */
static int parse_bucket(const char *opt, const char *key, const char *val, bool bytes,
			struct tb_config *tb, char *err, unsigned int errlen)
{
	char part[3][32];
	uint64_t v[3] = {0};
	const char *why, *p = val;
	unsigned int n = 0;

	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (n == 3 || len == 0 || len >= sizeof(part[n]))
			goto malformed;
		memcpy(part[n], p, len);
		part[n++][len] = 0;
		if (!slash)
			break;
		p = slash + 1;
	}
	if (n < 2)
		goto malformed;
	for (unsigned int i = 0; i < n; i++) {
		bool size = bytes && i != 1;
		int ret = size && part[i][strspn(part[i], "0123456789")]
				  ? parse_size(part[i], &v[i])
				  : parse_uint(part[i], UINT64_MAX, &v[i]);

		if (ret == -ERANGE)
			return fail(err, errlen, "%s: %s: '%s' is too large", opt, key, part[i]);
		if (ret)
			goto malformed;
	}
	*tb = (struct tb_config){.size = v[0], .refill_ms = v[1], .one_time_burst = v[2]};
	if (!tb->size)
		return fail(err, errlen, "%s: %s: the %s per refill must be more than 0", opt, key,
			    bytes ? "size" : "count");
	why = tb_config_check(tb);
	if (why)
		return fail(err, errlen, "%s: %s=%s: %s", opt, key, val, why);
	return 0;
malformed:
	return fail(err, errlen, "%s: %s='%s' is not %s/MS[/BURST] (e.g. %s)", opt, key, val,
		    bytes ? "SIZE" : "N", bytes ? "bw=10M/1000" : "ops=1000/1000");
}

/* "bw=..." or "ops=..." (after (prefix), "" or "rx_"/"tx_") into (rl). Returns 1 when (opt)
 * is not one of them, 0 when parsed, -EINVAL (message in err) when malformed. */
static int parse_limit(const char *what, const char *prefix, const char *opt,
		       struct rl_config *rl, char *err, unsigned int errlen)
{
	size_t pl = strlen(prefix);
	char key[16];

	if (strncmp(opt, prefix, pl))
		return 1;
	opt += pl;
	if (!strncmp(opt, "bw=", 3)) {
		snprintf(key, sizeof(key), "%sbw", prefix);
		return parse_bucket(what, key, opt + 3, true, &rl->bw, err, errlen);
	}
	if (!strncmp(opt, "ops=", 4)) {
		snprintf(key, sizeof(key), "%sops", prefix);
		return parse_bucket(what, key, opt + 4, false, &rl->ops, err, errlen);
	}
	return 1;
}

static int parse_disk(const char *arg, struct vm_config *cfg, char *err, unsigned int errlen)
{
	struct disk_config *d;
	char opt[64];
	const char *p = arg;

	if (cfg->ndisks == MVM_MAX_DISKS)
		return fail(err, errlen, "--disk: at most %d disks", MVM_MAX_DISKS);
	d = &cfg->disks[cfg->ndisks];
	memset(d, 0, sizeof(*d));
	if (next_field(&p, d->path, sizeof(d->path)) < 0)
		return fail(err, errlen, "--disk: the path is longer than %d bytes",
			    MVM_DISK_PATH_MAX - 1);
	if (!d->path[0])
		return fail(err, errlen, "--disk: '%s' has no path (PATH[,ro][,id=NAME])", arg);
	while (*p) {
		int n = next_field(&p, opt, sizeof(opt));

		if (n < 0)
			return fail(err, errlen, "--disk: an option in '%s' is too long", arg);
		if (!strcmp(opt, "ro")) {
			d->ro = true;
		} else if (!strcmp(opt, "rw")) {
			d->ro = false;
		} else if (!strcmp(opt, "direct")) {
			d->direct = true;
		} else if (n >= 3 && !strncmp(opt, "id=", 3)) {
			if (n == 3 || n - 3 > MVM_DISK_ID_MAX)
				return fail(err, errlen, "--disk: id must be 1 to %d bytes",
					    MVM_DISK_ID_MAX);
			memcpy(d->id, opt + 3, (size_t)n - 3 + 1);
		} else {
			int ret = parse_limit("--disk", "", opt, &d->limit, err, errlen);

			if (ret < 0)
				return ret;
			if (ret)
				return fail(err, errlen, "--disk: unknown option '%s' in '%s' (ro, "
					    "direct, id=NAME, bw=SIZE/MS, ops=N/MS)", opt, arg);
		}
	}
	cfg->ndisks++;
	return 0;
}

/* "XX:XX:XX:XX:XX:XX", hex, a unicast address other than zero. */
static int parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		unsigned int v = 0;

		for (int j = 0; j < 2; j++) {
			char c = *s++;

			if (c >= '0' && c <= '9')
				v = v * 16 + (unsigned int)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v * 16 + (unsigned int)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				v = v * 16 + (unsigned int)(c - 'A' + 10);
			else
				return -EINVAL;
		}
		mac[i] = (uint8_t)v;
		if (*s++ != (i == 5 ? 0 : ':'))
			return -EINVAL;
	}
	if (mac[0] & 1)
		return -EINVAL;
	if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return -EINVAL;
	return 0;
}

/* Interface names the kernel accepts (dev_valid_name()): 1 to 15 bytes, not "." or "..", no
 * '/', ':' or white space. */
static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MVM_TAP_NAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s == ' ' || (*s >= '\t' && *s <= '\r'))
			return false;
	return true;
}

static int parse_net(const char *arg, struct vm_config *cfg, char *err, unsigned int errlen)
{
	struct net_config *n;
	const char *p = arg;
	char opt[64];

	if (cfg->nnets == MVM_MAX_NETS)
		return fail(err, errlen, "--net: at most %d NICs", MVM_MAX_NETS);
	n = &cfg->nets[cfg->nnets];
	memset(n, 0, sizeof(*n));
	while (*p) {
		int len = next_field(&p, opt, sizeof(opt));

		if (len < 0)
			return fail(err, errlen, "--net: an option in '%s' is too long", arg);
		if (!strncmp(opt, "tap=", 4)) {
			if (!valid_ifname(opt + 4))
				return fail(err, errlen, "--net: '%s' is not an interface name (1 to "
					    "%d bytes, no '/', ':' or spaces)", opt + 4,
					    MVM_TAP_NAME_MAX);
			memcpy(n->tap, opt + 4, (size_t)len - 4 + 1);
		} else if (!strncmp(opt, "mac=", 4)) {
			if (parse_mac(opt + 4, n->mac))
				return fail(err, errlen, "--net: mac '%s' is not a unicast address "
					    "XX:XX:XX:XX:XX:XX", opt + 4);
			n->has_mac = true;
		} else {
			int ret = parse_limit("--net", "rx_", opt, &n->rx_limit, err, errlen);

			if (ret > 0)
				ret = parse_limit("--net", "tx_", opt, &n->tx_limit, err, errlen);
			if (ret < 0)
				return ret;
			if (ret)
				return fail(err, errlen, "--net: unknown option '%s' in '%s' "
					    "(tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,rx_bw=SIZE/MS]"
					    "[,rx_ops=N/MS][,tx_bw=SIZE/MS][,tx_ops=N/MS])", opt, arg);
		}
	}
	if (!n->tap[0])
		return fail(err, errlen, "--net: '%s' names no TAP device (tap=NAME)", arg);
	for (unsigned int i = 0; i < cfg->nnets; i++)
		if (!strcmp(cfg->nets[i].tap, n->tap))
			return fail(err, errlen, "--net: TAP '%s' given twice", n->tap);
	cfg->nnets++;
	return 0;
}

/* --rng=bw=...,ops=... */
static int parse_rng(const char *arg, struct vm_config *cfg, char *err, unsigned int errlen)
{
	const char *p = arg;
	char opt[64];

	if (!*arg)
		return fail(err, errlen, "--rng=: give bw=SIZE/MS and/or ops=N/MS, or plain --rng");
	while (*p) {
		int ret, len = next_field(&p, opt, sizeof(opt));

		if (len < 0)
			return fail(err, errlen, "--rng: an option in '%s' is too long", arg);
		ret = parse_limit("--rng", "", opt, &cfg->rng_limit, err, errlen);
		if (ret < 0)
			return ret;
		if (ret)
			return fail(err, errlen, "--rng: unknown option '%s' in '%s' (bw=SIZE/MS, "
				    "ops=N/MS)", opt, arg);
	}
	return 0;
}

static int parse_vsock(const char *arg, struct vm_config *cfg, char *err, unsigned int errlen)
{
	struct vsock_config *v = &cfg->vsock;
	const char *p = arg;
	bool has_cid = false;
	char opt[MVM_VSOCK_PATH_MAX + 8];

	if (v->on)
		return fail(err, errlen, "--vsock: at most one vsock device");
	memset(v, 0, sizeof(*v));
	while (*p) {
		int len = next_field(&p, opt, sizeof(opt));

		if (len < 0)
			return fail(err, errlen, "--vsock: an option in '%s' is too long (paths: up "
				    "to %d bytes)", arg, MVM_VSOCK_PATH_MAX);
		if (!strncmp(opt, "cid=", 4)) {
			char *end;
			unsigned long long n;

			errno = 0;
			n = strtoull(opt + 4, &end, 0);
			/* 0-2 are the hypervisor, local and host CIDs; -1U is VMADDR_CID_ANY. */
			if (errno || end == opt + 4 || *end || opt[4] == '-' || n < 3 ||
			    n > 0xfffffffeULL)
				return fail(err, errlen, "--vsock: cid '%s' is not a number from 3 to "
					    "4294967294", opt + 4);
			v->cid = n;
			has_cid = true;
		} else if (!strncmp(opt, "path=", 5) && opt[5]) {
			if (len - 5 > MVM_VSOCK_PATH_MAX)
				return fail(err, errlen, "--vsock: path '%s' is longer than %d bytes",
					    opt + 5, MVM_VSOCK_PATH_MAX);
			memcpy(v->path, opt + 5, (size_t)len - 5 + 1);
		} else {
			return fail(err, errlen, "--vsock: unknown option '%s' in '%s' "
				    "(cid=N,path=PATH)", opt, arg);
		}
	}
	if (!has_cid || !v->path[0])
		return fail(err, errlen, "--vsock: '%s' needs cid=N and path=PATH", arg);
	v->on = true;
	return 0;
}

static int parse_on_off(const char *opt, const char *v, bool *out, char *err, unsigned int errlen)
{
	if (!strcmp(v, "on") || !strcmp(v, "off")) {
		*out = !strcmp(v, "on");
		return 0;
	}
	return fail(err, errlen, "--balloon: %s '%s' is not on or off", opt, v);
}

static int parse_balloon(const char *arg, struct vm_config *cfg, char *err, unsigned int errlen)
{
	struct balloon_config *b = &cfg->balloon;
	const char *p = arg;
	bool has_amount = false;
	char opt[64];

	if (b->on)
		return fail(err, errlen, "--balloon: at most one balloon device");
	memset(b, 0, sizeof(*b));
	while (*p) {
		uint64_t v;
		int ret;

		if (next_field(&p, opt, sizeof(opt)) < 0)
			return fail(err, errlen, "--balloon: an option in '%s' is too long", arg);
		if (!strncmp(opt, "amount_mib=", 11)) {
			/* Checked against the guest's RAM once -m is known (parse_run()). */
			if (parse_uint(opt + 11, UINT32_MAX, &v))
				return fail(err, errlen, "--balloon: amount_mib '%s' is not a number "
					    "of MiB from 0 to the guest's RAM", opt + 11);
			b->amount_mib = (uint32_t)v;
			has_amount = true;
		} else if (!strncmp(opt, "deflate_on_oom=", 15)) {
			if ((ret = parse_on_off("deflate_on_oom", opt + 15, &b->deflate_on_oom, err,
						errlen)))
				return ret;
		} else if (!strncmp(opt, "stats_interval=", 15)) {
			if (parse_uint(opt + 15, MVM_BALLOON_STATS_MAX, &v))
				return fail(err, errlen, "--balloon: stats_interval '%s' is not a number "
					    "of seconds from 0 to %d", opt + 15, MVM_BALLOON_STATS_MAX);
			b->stats_interval_s = (uint32_t)v;
		} else if (!strncmp(opt, "free_page_reporting=", 20)) {
			if ((ret = parse_on_off("free_page_reporting", opt + 20,
						&b->free_page_reporting, err, errlen)))
				return ret;
		} else {
			return fail(err, errlen, "--balloon: unknown option '%s' in '%s' (amount_mib=N"
				    "[,deflate_on_oom=on|off][,stats_interval=S]"
				    "[,free_page_reporting=on|off])", opt, arg);
		}
	}
	if (!has_amount)
		return fail(err, errlen, "--balloon: '%s' needs amount_mib=N", arg);
	b->on = true;
	return 0;
}

/* A snapshot directory DIR: its two files, DIR/state and DIR/mem, into (paths). */
static int snapshot_dir(const char *opt, const char *dir, char paths[2][MVM_DISK_PATH_MAX],
			const char **state, const char **mem, char *err, unsigned int errlen)
{
	if (!*dir || strlen(dir) + sizeof("/state") > MVM_DISK_PATH_MAX)
		return fail(err, errlen, "%s: '%s' is not a directory path", opt, dir);
	snprintf(paths[0], MVM_DISK_PATH_MAX, "%s/state", dir);
	snprintf(paths[1], MVM_DISK_PATH_MAX, "%s/mem", dir);
	*state = paths[0];
	*mem = paths[1];
	return 0;
}

static int parse_accel(const char *arg, struct vm_config *cfg, char *err, unsigned int errlen)
{
	if (!strcmp(arg, "kvm"))
		cfg->accel = ACCEL_KVM;
	else if (!strcmp(arg, "dbt"))
		cfg->accel = ACCEL_DBT;
	else if (!strcmp(arg, "hybrid"))
		cfg->accel = ACCEL_HYBRID;
	else if (!strcmp(arg, "auto"))
		cfg->accel = ACCEL_AUTO;
	else
		return fail(err, errlen, "--accel: '%s' is not kvm, dbt, hybrid or auto", arg);
	return 0;
}

static int parse_seccomp(const char *arg, struct vm_config *cfg, char *err, unsigned int errlen)
{
	if (!strcmp(arg, "on"))
		cfg->seccomp = SANDBOX_SECCOMP_ON;
	else if (!strcmp(arg, "log"))
		cfg->seccomp = SANDBOX_SECCOMP_LOG;
	else if (!strcmp(arg, "off"))
		cfg->seccomp = SANDBOX_SECCOMP_OFF;
	else
		return fail(err, errlen, "--seccomp: '%s' is not on, log or off", arg);
	return 0;
}

static int parse_run(int argc, char **argv, struct vm_config *cfg, char *err, unsigned int errlen)
{
	enum { OPT_CONSOLE = 256, OPT_STATS, OPT_RNG, OPT_NO_RNG, OPT_ACCEL, OPT_SECCOMP, OPT_JAIL,
	       OPT_JAIL_NETNS, OPT_JAIL_PIDNS, OPT_JAIL_CGROUP, OPT_JAIL_NOFILE, OPT_RESTORE,
	       OPT_VSOCK, OPT_SNAPSHOT_DIR, OPT_CLOCK_REALTIME, OPT_BALLOON };
	static const struct option longopts[] = {
		{"kernel", required_argument, NULL, 'k'},
		{"initrd", required_argument, NULL, 'i'},
		{"cmdline", required_argument, NULL, 'p'},
		{"append", required_argument, NULL, 'p'},
		{"mem", required_argument, NULL, 'm'},
		{"cpus", required_argument, NULL, 'c'},
		{"console", required_argument, NULL, OPT_CONSOLE},
		{"disk", required_argument, NULL, 'd'},
		{"net", required_argument, NULL, 'n'},
		{"vsock", required_argument, NULL, OPT_VSOCK},
		{"balloon", required_argument, NULL, OPT_BALLOON},
		{"rng", optional_argument, NULL, OPT_RNG},
		{"no-rng", no_argument, NULL, OPT_NO_RNG},
		{"stats", no_argument, NULL, OPT_STATS},
		{"accel", required_argument, NULL, OPT_ACCEL},
		{"seccomp", required_argument, NULL, OPT_SECCOMP},
		{"jail", required_argument, NULL, OPT_JAIL},
		{"jail-netns", required_argument, NULL, OPT_JAIL_NETNS},
		{"jail-pidns", no_argument, NULL, OPT_JAIL_PIDNS},
		{"jail-cgroup", required_argument, NULL, OPT_JAIL_CGROUP},
		{"jail-nofile", required_argument, NULL, OPT_JAIL_NOFILE},
		{"restore", required_argument, NULL, OPT_RESTORE},
		{"snapshot-dir", required_argument, NULL, OPT_SNAPSHOT_DIR},
		{"clock-realtime", no_argument, NULL, OPT_CLOCK_REALTIME},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool cmdline_given = false, rng_given = false;
	unsigned int nvirtio;
	uint64_t v;
	int c, ret;

	/* '+': stop at the first non-option; ':': report a missing argument as ':'. */
	while ((c = getopt_long(argc, argv, "+:k:i:p:m:c:d:n:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			cfg->kernel = optarg;
			break;
		case 'i':
			cfg->initrd = optarg;
			break;
		case 'p':
			cfg->cmdline = optarg;
			cmdline_given = true;
			break;
		case 'm':
			ret = parse_mem(optarg, cfg, err, errlen);
			if (ret)
				return ret;
			break;
		case 'c':
			ret = parse_uint(optarg, MVM_MAX_CPUS, &v);
			if (ret == -EINVAL)
				return fail(err, errlen, "--cpus: '%s' is not a number", optarg);
			if (ret || v < 1)
				return fail(err, errlen, "--cpus: %s is outside 1 to %d", optarg,
					    MVM_MAX_CPUS);
			cfg->cpus = v;
			break;
		case OPT_CONSOLE:
			ret = parse_console(optarg, cfg, err, errlen);
			if (ret)
				return ret;
			break;
		case 'd':
			ret = parse_disk(optarg, cfg, err, errlen);
			if (ret)
				return ret;
			break;
		case 'n':
			ret = parse_net(optarg, cfg, err, errlen);
			if (ret)
				return ret;
			break;
		case OPT_VSOCK:
			ret = parse_vsock(optarg, cfg, err, errlen);
			if (ret)
				return ret;
			break;
		case OPT_BALLOON:
			ret = parse_balloon(optarg, cfg, err, errlen);
			if (ret)
				return ret;
			break;
		case OPT_RNG:
		case OPT_NO_RNG:
			cfg->rng = c == OPT_RNG;
			rng_given = true;
			cfg->rng_limit = (struct rl_config){0};
			if (optarg) {
				ret = parse_rng(optarg, cfg, err, errlen);
				if (ret)
					return ret;
			}
			break;
		case OPT_STATS:
			cfg->stats = true;
			break;
		case OPT_ACCEL:
			ret = parse_accel(optarg, cfg, err, errlen);
			if (ret)
				return ret;
			break;
		case OPT_SECCOMP:
			ret = parse_seccomp(optarg, cfg, err, errlen);
			if (ret)
				return ret;
			break;
		case OPT_JAIL:
			if (jail_parse_ids(&cfg->jail, optarg))
				return fail(err, errlen, "--jail: '%s' is not UID:GID (decimal, "
					    "neither 0)", optarg);
			cfg->jail.on = true;
			break;
		case OPT_JAIL_NETNS:
			cfg->jail.netns = optarg;
			break;
		case OPT_JAIL_PIDNS:
			cfg->jail.pidns = true;
			break;
		case OPT_JAIL_CGROUP:
			if (!jail_cgroup_name_ok(optarg))
				return fail(err, errlen, "--jail-cgroup: '%s' is not a cgroup name "
					    "(a relative path of letters, digits, '.', '_', '-')",
					    optarg);
			cfg->jail.cgroup = optarg;
			break;
		case OPT_JAIL_NOFILE: {
			char *end;
			unsigned long n;

			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || n < 64 || n > 1048576)
				return fail(err, errlen, "--jail-nofile: '%s' is outside 64 to "
					    "1048576", optarg);
			cfg->jail.nofile = n;
			break;
		}
		case OPT_RESTORE:
			ret = snapshot_dir("--restore", optarg, cfg->restore_paths,
					   &cfg->restore_state, &cfg->restore_mem, err, errlen);
			if (ret)
				return ret;
			break;
		case OPT_CLOCK_REALTIME:
			cfg->restore_clock_realtime = true;
			break;
		case OPT_SNAPSHOT_DIR:
			ret = snapshot_dir("--snapshot-dir", optarg, cfg->snapshot_paths,
					   &cfg->snapshot_state, &cfg->snapshot_mem, err, errlen);
			if (ret)
				return ret;
			break;
		case 'h':
			cfg->command = CMD_HELP;
			return 0;
		case ':':
			return fail(err, errlen, "option '%s' needs a value", argv[optind - 1]);
		default:
			return fail(err, errlen, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail(err, errlen, "unexpected argument '%s'%s", argv[optind],
			    !strncmp(argv[optind], "bw=", 3) || !strncmp(argv[optind], "ops=", 4)
				    ? " (--rng takes its limits after '=': --rng=bw=SIZE/MS)" : "");
	if (cfg->restore_state && (cfg->kernel || cfg->initrd || cmdline_given || rng_given ||
				   cfg->accel == ACCEL_HYBRID))
		return fail(err, errlen, "--restore takes the machine from the snapshot: no -k, -i, "
			    "-p, --rng/--no-rng, and --accel kvm, dbt or auto (-d, -n and --vsock "
			    "name the clone's own disks, TAPs and vsock socket)");
	if (!cfg->kernel && !cfg->restore_state)
		return fail(err, errlen, "no kernel given (-k FILE)");
	if (cfg->restore_clock_realtime && !cfg->restore_state)
		return fail(err, errlen, "--clock-realtime steps a restored guest's clock: it needs "
			    "--restore DIR");
	if ((cfg->jail.netns || cfg->jail.pidns || cfg->jail.cgroup || cfg->jail.nofile) &&
	    !cfg->jail.on)
		return fail(err, errlen, "--jail-netns, --jail-pidns, --jail-cgroup and --jail-nofile "
			    "need --jail UID:GID");
	if (cfg->accel == ACCEL_HYBRID && cfg->cpus > 1)
		return fail(err, errlen, "--accel hybrid runs one vCPU; -c %u needs --accel dbt or kvm",
			    cfg->cpus);
	if (cfg->balloon.on && cfg->restore_state)
		return fail(err, errlen, "--balloon: a restored machine keeps the devices of its "
			    "snapshot");
	if (cfg->balloon.on && (uint64_t)cfg->balloon.amount_mib << 20 > cfg->mem)
		return fail(err, errlen, "--balloon: amount_mib %u is more than the guest's %llu MiB "
			    "of RAM", cfg->balloon.amount_mib, (unsigned long long)(cfg->mem >> 20));
	nvirtio = cfg->ndisks + cfg->nnets + (cfg->console == CONSOLE_VIRTIO) + cfg->vsock.on +
		  cfg->balloon.on;
	if (nvirtio + cfg->rng > MVM_MAX_VIRTIO) {
		if (rng_given || nvirtio > MVM_MAX_VIRTIO)
			return fail(err, errlen, "too many virtio devices: %u disks, %u NICs%s%s%s%s; "
				    "at most %d in all", cfg->ndisks, cfg->nnets,
				    cfg->console == CONSOLE_VIRTIO ? ", the virtio console" : "",
				    cfg->vsock.on ? ", vsock" : "",
				    cfg->balloon.on ? ", the balloon" : "", cfg->rng ? ", the rng" : "",
				    MVM_MAX_VIRTIO);
		cfg->rng = false; /* the default rng gives way to explicit devices */
	}
	/* Without -p, the kernel's console follows --console. */
	if (cfg->console == CONSOLE_VIRTIO && !cmdline_given)
		cfg->cmdline = MVM_VIRTIO_CONSOLE_CMDLINE;
	return 0;
}

/* Firecracker's command line: `mvm --api-sock PATH [--config-file FILE] ...`, with its option
 * names and meanings, plus mvm's --accel and --seccomp. */
static int parse_firecracker(int argc, char **argv, struct vm_config *cfg, char *err,
			     unsigned int errlen)
{
	enum { OPT_API_SOCK = 256, OPT_ID, OPT_CONFIG_FILE, OPT_NO_API, OPT_LOG_PATH, OPT_LEVEL,
	       OPT_METRICS_PATH, OPT_MAX_PAYLOAD, OPT_NO_SECCOMP, OPT_ACCEL, OPT_SECCOMP,
	       OPT_STATS };
	static const struct option longopts[] = {
		{"api-sock", required_argument, NULL, OPT_API_SOCK},
		{"id", required_argument, NULL, OPT_ID},
		{"config-file", required_argument, NULL, OPT_CONFIG_FILE},
		{"no-api", no_argument, NULL, OPT_NO_API},
		{"log-path", required_argument, NULL, OPT_LOG_PATH},
		{"level", required_argument, NULL, OPT_LEVEL},
		{"metrics-path", required_argument, NULL, OPT_METRICS_PATH},
		{"http-api-max-payload-size", required_argument, NULL, OPT_MAX_PAYLOAD},
		{"no-seccomp", no_argument, NULL, OPT_NO_SECCOMP},
		{"accel", required_argument, NULL, OPT_ACCEL},
		{"seccomp", required_argument, NULL, OPT_SECCOMP},
		{"stats", no_argument, NULL, OPT_STATS},
		{0},
	};
	static const char *const levels[] = {"error", "warning", "info", "debug"};
	struct fc_options *fc = &cfg->fc;
	int c, ret;

	cfg->command = CMD_FIRECRACKER;
	fc->id = FC_DEFAULT_ID;
	fc->max_payload = FC_DEFAULT_MAX_PAYLOAD;
	fc->level = LOG_WARN;
	/* Firecracker's guests run on its defaults: no entropy device unless configured. */
	cfg->rng = false;
	cfg->accel = ACCEL_AUTO;
	while ((c = getopt_long(argc, argv, "+:", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_API_SOCK:
			fc->api_sock = optarg;
			break;
		case OPT_ID: {
			size_t n = strlen(optarg);

			/* Firecracker: 1-64 of letters, digits and '-'. */
			if (!n || n > 64 || strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
						   "KLMNOPQRSTUVWXYZ0123456789-") != n)
				return fail(err, errlen, "--id: '%s' is not 1 to 64 letters, digits "
					    "and '-'", optarg);
			fc->id = optarg;
			break;
		}
		case OPT_CONFIG_FILE:
			fc->config_file = optarg;
			break;
		case OPT_NO_API:
			fc->no_api = true;
			break;
		case OPT_LOG_PATH:
			fc->log_path = optarg;
			break;
		case OPT_LEVEL: {
			unsigned int i;

			for (i = 0; i < 4 && strcasecmp(optarg, levels[i]); i++)
				;
			if (i < 4)
				fc->level = (int)i;
			else if (!strcasecmp(optarg, "trace"))
				fc->level = LOG_DEBUG;
			else if (!strcasecmp(optarg, "off"))
				fc->level = LOG_OFF;
			else
				return fail(err, errlen, "--level: '%s' is not Error, Warning, Info, "
					    "Debug, Trace or Off", optarg);
			fc->level_given = true;
			break;
		}
		case OPT_METRICS_PATH:
			fc->metrics_path = optarg;
			break;
		case OPT_MAX_PAYLOAD: {
			uint64_t v;

			if (parse_uint(optarg, 16 << 20, &v) || v < 1024)
				return fail(err, errlen, "--http-api-max-payload-size: '%s' is outside "
					    "1024 to %u bytes", optarg, 16u << 20);
			fc->max_payload = v;
			break;
		}
		case OPT_NO_SECCOMP:
			cfg->seccomp = SANDBOX_SECCOMP_OFF;
			break;
		case OPT_ACCEL:
			ret = parse_accel(optarg, cfg, err, errlen);
			if (ret)
				return ret;
			break;
		case OPT_SECCOMP:
			ret = parse_seccomp(optarg, cfg, err, errlen);
			if (ret)
				return ret;
			break;
		case OPT_STATS:
			cfg->stats = true;
			break;
		case ':':
			return fail(err, errlen, "option '%s' needs a value", argv[optind - 1]);
		default:
			return fail(err, errlen, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail(err, errlen, "unexpected argument '%s'", argv[optind]);
	if (fc->no_api && !fc->config_file)
		return fail(err, errlen, "--no-api needs --config-file (nothing could start the VM)");
	if (fc->no_api && fc->api_sock)
		return fail(err, errlen, "--no-api and --api-sock exclude each other");
	if (!fc->no_api && !fc->api_sock)
		return fail(err, errlen, "--api-sock PATH is needed (or --no-api with "
			    "--config-file)");
	return 0;
}

int options_parse(int argc, char **argv, struct vm_config *cfg, char *err, unsigned int errlen)
{
	*cfg = (struct vm_config){
		.command = CMD_RUN,
		.cmdline = MVM_DEFAULT_CMDLINE,
		.mem = MVM_DEFAULT_MEM,
		.cpus = 1,
		.console = CONSOLE_STDIO,
		.rng = true,
		.mem_thp = true,
		.seccomp = SANDBOX_SECCOMP_ON,
	};
	err[0] = 0;
	optind = 0; /* full reset of getopt, so tests can parse many command lines */
	opterr = 0;
	if (argc < 2)
		return fail(err, errlen, "no command given (try 'mvm --help')");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		cfg->command = CMD_HELP;
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		cfg->command = CMD_VERSION;
		return 0;
	}
	/* Firecracker's command line has no subcommand: it starts with an option. */
	if (!strncmp(argv[1], "--", 2))
		return parse_firecracker(argc, argv, cfg, err, errlen);
	if (strcmp(argv[1], "run"))
		return fail(err, errlen, "unknown command '%s' (try 'mvm --help')", argv[1]);
	return parse_run(argc - 1, argv + 1, cfg, err, errlen);
}
