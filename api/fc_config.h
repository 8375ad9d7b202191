/* fc_config.h: Firecracker's VM description (the bodies of its API calls and the sections of its
 * --config-file), checked and kept as one struct fc_vm, then turned into mvm's struct vm_config.
 * Pure: JSON in, state and error text out, no I/O, so every rule is unit-tested and fuzzed.
 *
 * The reference is Firecracker's OpenAPI description (src/firecracker/swagger/firecracker.yaml)
 * and docs/api_requests/; docs/firecracker-api.md lists what mvm takes and what differs. */
#ifndef MVM_API_FC_CONFIG_H
#define MVM_API_FC_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"

/* Firecracker's limits: ids are 1-64 of [A-Za-z0-9_]; 1-32 vCPUs. */
#define FC_ID_MAX	 64
#define FC_MAX_VCPUS	 32
#define FC_DEFAULT_MEM_MIB 128
/* The API version whose calls this implements (firecracker.yaml, info.version). */
#define FC_API_VERSION	 "1.17.0"

struct fc_drive {
	char id[FC_ID_MAX + 1];
	char *path;		/* path_on_host */
	char *partuuid;		/* NULL: root=/dev/vda */
	bool root, ro;
	struct rl_config limit;	/* rate_limiter (all zero: none) */
};

struct fc_net {
	char id[FC_ID_MAX + 1];
	char tap[MVM_TAP_NAME_MAX + 1];
	uint8_t mac[6];
	bool has_mac;
	struct rl_config rx_limit, tx_limit;	/* rx_rate_limiter, tx_rate_limiter */
};

struct fc_vm {
	/* machine-config */
	unsigned int vcpus;
	unsigned int mem_mib;
	bool thp;		/* huge_pages "Transparent"; "None" (the default) is 4K pages */
	/* boot-source */
	char *kernel, *initrd, *boot_args;
	/* drives in the order they were first put; the root drive is the guest's vda */
	struct fc_drive drives[MVM_MAX_DISKS];
	unsigned int ndrives;
	struct fc_net nets[MVM_MAX_NETS];
	unsigned int nnets;
	bool entropy;		/* PUT /entropy: a virtio-rng device */
	struct rl_config entropy_limit;	/* its rate_limiter */
	struct vsock_config vsock; /* PUT /vsock: a virtio-vsock device */
	struct balloon_config balloon; /* PUT /balloon: a virtio-balloon device; PATCH keeps
					* amount_mib and the interval current */
	/* logger, metrics: applied by the caller (they open files) */
	char *log_path;
	enum log_level_fc { FC_LOG_OFF, FC_LOG_ERROR, FC_LOG_WARNING, FC_LOG_INFO, FC_LOG_DEBUG }
		log_level;
	bool has_logger;
	char *metrics_path;
	/* mmds: kept and returned; mvm has no guest-facing MMDS yet */
	json_t *mmds;		/* NULL until PUT /mmds */
	json_t *mmds_config;	/* NULL until PUT /mmds/config */
	/* what fc_vm_to_config() built, owned here */
	char *cmdline;
};

void fc_vm_init(struct fc_vm *vm);
void fc_vm_fini(struct fc_vm *vm);

/* Each applies one API body (a JSON value of any type: the checks are here) to (vm). Returns 0,
 * or -EINVAL with (vm) unchanged and a message for the client in (err): a malformed or
 * unknown field, a value out of range, a feature mvm does not have. (id) is the {id} of the
 * path, which must equal the body's own id. */
int fc_put_machine_config(struct fc_vm *vm, json_t *body, bool patch, char *err, size_t errlen);
int fc_put_boot_source(struct fc_vm *vm, json_t *body, char *err, size_t errlen);
int fc_put_drive(struct fc_vm *vm, const char *id, json_t *body, char *err, size_t errlen);
int fc_put_net(struct fc_vm *vm, const char *id, json_t *body, char *err, size_t errlen);
int fc_put_logger(struct fc_vm *vm, json_t *body, char *err, size_t errlen);
int fc_put_metrics(struct fc_vm *vm, json_t *body, char *err, size_t errlen);
int fc_put_entropy(struct fc_vm *vm, json_t *body, char *err, size_t errlen);
int fc_put_vsock(struct fc_vm *vm, json_t *body, char *err, size_t errlen);
int fc_put_mmds_config(struct fc_vm *vm, json_t *body, char *err, size_t errlen);
/* PUT /balloon (before the start; amount_mib is checked against the RAM at InstanceStart),
 * PATCH /balloon {amount_mib} (after it: checked against the RAM, (mem_mib)), PATCH
 * /balloon/statistics {stats_polling_interval_s} (after it: statistics stay on or off). */
int fc_put_balloon(struct fc_vm *vm, json_t *body, char *err, size_t errlen);
int fc_patch_balloon(struct fc_vm *vm, json_t *body, char *err, size_t errlen);
int fc_patch_balloon_stats(struct fc_vm *vm, json_t *body, char *err, size_t errlen);
/* GET /balloon: the configuration, or NULL (with (err)) when there is no balloon. */
json_t *fc_balloon_json(const struct fc_vm *vm, char *err, size_t errlen);
/* PUT replaces the data store, PATCH merges into it (RFC 7396 JSON merge patch). Both refuse
 * a store that would serialize to more than (limit) bytes. */
int fc_put_mmds(struct fc_vm *vm, json_t *body, bool patch, size_t limit, char *err,
		size_t errlen);
/* The post-boot PATCH /drives/{id}: checks the body and returns the new path (borrowed from
 * body, NULL when absent) in (*path); a rate_limiter in the body is applied to the drive in
 * (vm) (a bucket it leaves out keeps its value, as Firecracker's partial update) and (*limit)
 * says so. The caller passes the drive's new limiter on to the running device. */
int fc_patch_drive(struct fc_vm *vm, const char *id, json_t *body, const char **path,
		   bool *limit, char *err, size_t errlen);
/* The post-boot PATCH /network-interfaces/{id}: rx_rate_limiter and tx_rate_limiter, applied
 * to the interface in (vm) as above; (*rx) and (*tx) say which the body had. */
int fc_patch_net(struct fc_vm *vm, const char *id, json_t *body, bool *rx, bool *tx, char *err,
		 size_t errlen);
/* Where drive (id) and interface (id) are in the struct vm_config fc_vm_to_config() builds
 * (the root drive first), or -1. */
int fc_drive_index(const struct fc_vm *vm, const char *id);
int fc_net_index(const struct fc_vm *vm, const char *id);
/* A rate limiter as Firecracker's RateLimiter JSON ({"bandwidth": ..., "ops": ...}, only the
 * buckets that are set). New reference. */
json_t *fc_rate_limiter_json(const struct rl_config *c);
/* PUT /snapshot/create and /snapshot/load: the bodies checked, the paths (borrowed from body)
 * returned; for a load also resume_vm, clock_realtime, network_overrides and vsock_override. */
int fc_snapshot_create(json_t *body, const char **state, const char **mem, char *err,
		       size_t errlen);
struct fc_snapshot_load {
	const char *state, *mem;	/* borrowed from the body */
	bool resume;			/* resume_vm */
	bool clock_realtime;		/* clock_realtime */
	struct net_override nets[MVM_MAX_NETS]; /* network_overrides */
	unsigned int nnets;
	const char *vsock_path;		/* vsock_override's uds_path, or NULL */
};
int fc_snapshot_load(json_t *body, struct fc_snapshot_load *req, char *err, size_t errlen);
/* Refuses the bodies of devices mvm does not have yet (cpu-config, pmem, ...), naming it. */
int fc_unsupported(const char *what, char *err, size_t errlen);

/* GET /machine-config. New reference. */
json_t *fc_machine_config_json(const struct fc_vm *vm);

/* Applies a whole --config-file document (Firecracker's FullVmConfiguration) in the order
 * Firecracker does. Returns 0 or -EINVAL with (err) naming the section. */
int fc_load_config(struct fc_vm *vm, const char *text, size_t len, char *err, size_t errlen);

/* Turns (vm) into (cfg), starting from (base) (the command line's accelerator, seccomp and
 * console choices). Strings in (cfg) point into (vm). Returns 0 or -EINVAL with (err)
 * (InstanceStart without a boot source). */
int fc_vm_to_config(struct fc_vm *vm, const struct vm_config *base, struct vm_config *cfg,
		    char *err, size_t errlen);

#endif
