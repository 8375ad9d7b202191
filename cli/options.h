/* options.h: the mvm command line, parsed into a struct vm_config. Pure: no I/O besides the
 * error text it returns, so every case is unit-tested. */
#ifndef MVM_CLI_OPTIONS_H
#define MVM_CLI_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/token_bucket.h"
#include "sandbox/jail.h"
#include "sandbox/seccomp.h"

/* Exit statuses of the mvm process. A guest that exits through the debug-exit port chooses its
 * own status (0-255), which can coincide with these; use a reset or power-off (status 0) or
 * check the log when that matters. */
#define MVM_EXIT_OK	    0
#define MVM_EXIT_USAGE	    64	/* bad option, or an input file that is missing or malformed */
#define MVM_EXIT_VMM	    70	/* mvm or KVM failed */
#define MVM_EXIT_CRASH	    80	/* the guest crashed: triple fault (registers are printed) */
#define MVM_EXIT_UNHANDLED  81	/* the guest stopped on an exit mvm cannot finish */
#define MVM_EXIT_SECCOMP    SANDBOX_EXIT_SECCOMP /* 159: a system call outside the allow-list */
/* A signal that stops mvm gives 128 + its number, as a shell reports it. */

#define MVM_DEFAULT_MEM	    (256ULL << 20)
#define MVM_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1"
/* The default with --console virtio: the kernel's console on hvc0. */
#define MVM_VIRTIO_CONSOLE_CMDLINE "console=hvc0 reboot=k panic=-1"
#define MVM_MAX_CPUS	    64
/* virtio-mmio devices take the free ISA IRQs 5, 6, 7, 9, 10, 11, 12, 14, 15: nine devices,
 * one of which may be the virtio console. */
#define MVM_MAX_DISKS	    8
#define MVM_DISK_ID_MAX	    20	/* VIRTIO_BLK_ID_BYTES */
#define MVM_DISK_PATH_MAX   4096
#define MVM_MAX_NETS	    4
#define MVM_TAP_NAME_MAX    15	/* IFNAMSIZ - 1 */
/* All virtio-mmio devices together: disks, NICs, the virtio console, vsock, the balloon and
 * the rng. */
#define MVM_MAX_VIRTIO	    9

/* CONSOLE_VIRTIO: stdin/stdout on a virtio-console (hvc0); the serial port still prints
 * there too (early boot messages), but gets no input. */
enum console_kind { CONSOLE_STDIO, CONSOLE_NONE, CONSOLE_FILE, CONSOLE_VIRTIO };

/* One -d/--disk PATH[,ro][,id=NAME][,bw=...][,ops=...]. Copied out of argv (",," in PATH
 * stands for a comma). */
struct disk_config {
	char path[MVM_DISK_PATH_MAX];
	char id[MVM_DISK_ID_MAX + 1];	/* "" for none */
	bool ro;
	bool direct;			/* O_DIRECT */
	struct rl_config limit;		/* all zero: no rate limit */
};

/* One -n/--net tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,rx_bw=...][,rx_ops=...][,tx_bw=...]
 * [,tx_ops=...]. */
#define MVM_NET_ID_MAX 64	/* Firecracker's iface_id */
struct net_config {
	char tap[MVM_TAP_NAME_MAX + 1];
	uint8_t mac[6];
	bool has_mac;		/* false: mvm generates a locally administered one */
	struct rl_config rx_limit, tx_limit;	/* to the guest, from the guest */
	char id[MVM_NET_ID_MAX + 1]; /* Firecracker's iface_id; "" from -n */
};

/* A NIC's TAP given anew at restore, naming the NIC by its id in the snapshot (Firecracker's
 * network_overrides). */
struct net_override {
	char id[MVM_NET_ID_MAX + 1];
	char tap[MVM_TAP_NAME_MAX + 1];
};

/* --vsock cid=N,path=PATH: a virtio-vsock device (virtio/vsock.h). */
#define MVM_VSOCK_PATH_MAX 96	/* sun_path (108) less "_4294967295" and its NUL */
struct vsock_config {
	bool on;
	uint64_t cid;			/* the guest's CID: 3 .. 0xfffffffe */
	char path[MVM_VSOCK_PATH_MAX + 1];	/* the host's Unix socket; must not exist */
};

/* --balloon amount_mib=N[,deflate_on_oom=on|off][,stats_interval=S][,free_page_reporting=on|off]
 * (and Firecracker's PUT /balloon): a virtio-balloon device (virtio/balloon.h). */
#define MVM_BALLOON_STATS_MAX 65535	/* seconds, Firecracker's u16 */
struct balloon_config {
	bool on;
	uint32_t amount_mib;		/* the target: MiB the guest gives back, at most its RAM */
	bool deflate_on_oom;		/* VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	uint32_t stats_interval_s;	/* 0: no statistics queue */
	bool free_page_reporting;	/* VIRTIO_BALLOON_F_REPORTING */
};

/* CMD_FIRECRACKER: Firecracker's command line (--api-sock, --config-file): api/fc_api.h. */
enum mvm_command { CMD_RUN, CMD_HELP, CMD_VERSION, CMD_FIRECRACKER };

/* Firecracker's process options, with its meanings (firecracker --help). */
struct fc_options {
	const char *api_sock;	/* NULL with --no-api */
	const char *id;		/* --id: the instance id GET / reports */
	const char *config_file;
	bool no_api;
	const char *log_path;
	int level;		/* --level, as enum log_level; LOG_WARN unless given */
	bool level_given;
	const char *metrics_path;
	unsigned long max_payload; /* --http-api-max-payload-size, bytes */
};

#define FC_DEFAULT_ID		"anonymous-instance"
#define FC_DEFAULT_MAX_PAYLOAD	51200	/* Firecracker's default */

/* Who runs the guest's instructions: KVM, mvm's own engine (vmm/dbt), or whichever of the two
 * runs guests faster on this host (auto). */
enum accel_kind { ACCEL_KVM, ACCEL_DBT, ACCEL_HYBRID, ACCEL_AUTO };

struct vm_config {
	enum mvm_command command;
	const char *kernel;	/* borrowed from argv */
	const char *initrd;
	const char *cmdline;
	uint64_t mem;
	bool mem_thp;		/* ask for transparent huge pages for guest RAM (default on) */
	unsigned int cpus;
	enum console_kind console;
	const char *console_path; /* CONSOLE_FILE */
	unsigned int ndisks;
	struct disk_config disks[MVM_MAX_DISKS];
	unsigned int nnets;
	struct net_config nets[MVM_MAX_NETS];
	struct vsock_config vsock;
	struct balloon_config balloon;
	bool rng;		/* a virtio-rng device (default on; dropped, with --rng not given,
				 * when the other virtio devices take every slot) */
	struct rl_config rng_limit;	/* --rng=bw=...,ops=... */
	enum accel_kind accel;
	bool stats;		/* print exit and emulation counters when the VM stops */
	enum sandbox_seccomp seccomp;	/* --seccomp: per-thread allow-lists (default on) */
	struct jail_config jail;	/* --jail and --jail-*: sandbox/jail.h */
	struct fc_options fc;		/* CMD_FIRECRACKER */
	bool fc_thread_names;		/* a VM the Firecracker API built: vCPU threads are
					 * "fc_vcpu N" (KVM) */
	/* Restore from a snapshot instead of booting (--restore DIR, PUT /snapshot/load): the
	 * state file and the memory file; with restore_paused the vCPUs wait for a resume. */
	const char *restore_state, *restore_mem;
	bool restore_paused;
	struct net_override restore_nets[MVM_MAX_NETS]; /* PUT /snapshot/load network_overrides */
	unsigned int nrestore_nets;
	bool restore_clock_realtime;	/* --clock-realtime, clock_realtime: step the clock */
	char restore_vsock_path[MVM_VSOCK_PATH_MAX + 1]; /* vsock_override's uds_path, or "" */
	char restore_paths[2][MVM_DISK_PATH_MAX]; /* --restore DIR: DIR/state, DIR/mem */
	/* --snapshot-dir DIR: SIGUSR2 writes a snapshot to DIR/state and DIR/mem. */
	const char *snapshot_state, *snapshot_mem;
	char snapshot_paths[2][MVM_DISK_PATH_MAX];
};

/* Parses argv into (cfg). Returns 0, or -EINVAL with a one-line message in (err) naming the
 * offending option or value. Strings in (cfg) point into argv. Resets getopt's state, so it may
 * be called repeatedly. */
int options_parse(int argc, char **argv, struct vm_config *cfg, char *err, unsigned int errlen);

/* The --help text. */
extern const char options_usage[];

#endif
