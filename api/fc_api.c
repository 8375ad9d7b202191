/* fc_api.c: Firecracker's API and --config-file on top of the composition root.
 *
 * Two threads: the API thread serves HTTP (http_server.h) and keeps the configuration (struct
 * fc_vm, fc_config.h); the main thread builds and runs the VM (machine_run) when the API's
 * InstanceStart, or the config file, asks it to. InstanceStart waits until the VM runs or
 * failed to build, so the client gets Firecracker's answer: 204, or 400 with the reason, and
 * after a 400 nothing was left half-built and the configuration can be fixed and started again.
 * While the guest runs the API thread reaches it only through the machine_* controls, under
 * the lock that the machine's observer takes before the machine is torn down. */
#define pr_fmt(fmt) "api: " fmt
#include "fc_api.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/thread_role.h"
#include "fc_config.h"
#include "file.h"
#include "http_server.h"
#include "machine.h"
#include "util/log.h"
#include "util/util.h"

/* Firecracker flushes its metrics every 60 s (and on FlushMetrics). */
#define METRICS_PERIOD_MS 60000
/* A --config-file larger than this is not a VM description. */
#define CONFIG_FILE_MAX	  (1 << 20)

enum fc_state { FC_NOT_STARTED, FC_STARTING, FC_RUNNING, FC_PAUSED, FC_STOPPED };

struct fc_api {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* state changes */
	struct fc_vm vm;		/* the configuration, under (lock) */
	const struct vm_config *base;	/* the command line's choices */
	struct vm_config cfg;		/* what InstanceStart built, read by the main thread */
	enum fc_state state;
	struct machine *m;		/* FC_RUNNING and FC_PAUSED only */
	char start_err[512];		/* why the last InstanceStart failed */
	int start_efd;			/* API thread -> main thread: build (cfg) */
	struct machine_observer obs;
	struct http_server *http;
	pthread_t thread;
	bool thread_started;
	int log_fd, metrics_fd;
	uint64_t started_ms;		/* CLOCK_MONOTONIC at process start */
	uint64_t requests, failed;	/* API calls answered, and answered with an error */
	uint64_t metrics_due_ms;	/* the next periodic metrics line */
	bool confined;			/* the API thread took THREAD_API (its seccomp filter) */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t utc_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *state_name(enum fc_state s)
{
	/* Firecracker's InstanceInfo.state: a VM that is being built is not started yet. */
	switch (s) {
	case FC_RUNNING: return "Running";
	case FC_PAUSED: return "Paused";
	default: return "Not started";
	}
}

static json_t *fault(const char *msg)
{
	return json_pack("{s:s}", "fault_message", msg);
}

/* Opens a log or metrics destination as Firecracker does: a file (created if missing) or a
 * FIFO, which must not block mvm when its reader is slow (O_NONBLOCK; O_RDWR so a FIFO without
 * a reader yet can be opened). */
static int open_sink(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat st;
	bool fifo = !stat(path, &st) && S_ISFIFO(st.st_mode);
	int fd = open(path, (fifo ? O_RDWR : O_WRONLY | O_CREAT | O_APPEND) | O_NONBLOCK |
				    O_CLOEXEC, 0600);

	if (fd < 0)
		snprintf(err, errlen, "%s: cannot open '%s': %s", what, path, strerror(errno));
	return fd < 0 ? -errno : fd;
}

static int apply_logger(struct fc_api *a, char *err, size_t errlen)
{
	static const int levels[] = {[FC_LOG_OFF] = LOG_OFF, [FC_LOG_ERROR] = LOG_ERR,
				     [FC_LOG_WARNING] = LOG_WARN, [FC_LOG_INFO] = LOG_INFO,
				     [FC_LOG_DEBUG] = LOG_DEBUG};

	if (a->vm.log_path) {
		int fd = open_sink("logger", a->vm.log_path, err, errlen);

		if (fd < 0)
			return fd;
		log_set_fd(fd);
		if (a->log_fd >= 0)
			close(a->log_fd);
		a->log_fd = fd;
	}
	log_set_level(levels[a->vm.log_level]);
	return 0;
}

static int apply_metrics(struct fc_api *a, char *err, size_t errlen)
{
	int fd = open_sink("metrics", a->vm.metrics_path, err, errlen);

	if (fd < 0)
		return fd;
	a->metrics_fd = fd;
	return 0;
}

/* One JSON line of counters to the metrics file: Firecracker's utc_timestamp_ms first, then
 * what mvm counts (docs/firecracker-api.md). Under (lock). */
static void write_metrics(struct fc_api *a)
{
	json_t *root;
	char *text;

	if (a->metrics_fd < 0)
		return;
	root = json_pack("{s:I, s:{s:I, s:I}, s:{s:s, s:I}}", "utc_timestamp_ms",
			 (json_int_t)utc_ms(), "api_server", "requests", (json_int_t)a->requests,
			 "failed_requests", (json_int_t)a->failed, "vmm", "state",
			 state_name(a->state), "uptime_ms", (json_int_t)(mono_ms() - a->started_ms));
	if (!root)
		return;
	if (a->m)
		machine_metrics(a->m, root);
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text) {
		size_t n = strlen(text);

		text[n] = '\n'; /* the NUL's byte: a JSON line is written, not a C string */
		if (write(a->metrics_fd, text, n + 1) < 0)
			pr_warn_once("metrics: %s", strerror(errno));
		free(text);
	}
}

/* On the API thread, once the VM it built runs: its seccomp filter (sandbox/seccomp.h; the
 * filters exist only from then on, and building a VM needs what the filter forbids). Without
 * it the API stops serving rather than run unconfined. Under (lock). */
static void confine(struct fc_api *a)
{
	if (a->confined || (a->state != FC_RUNNING && a->state != FC_PAUSED))
		return;
	a->confined = true;
	if (thread_role_enter(THREAD_API)) {
		pr_err("the API thread cannot take its seccomp filter; the API stops serving");
		http_server_stop(a->http);
	}
}

/* Every TICK_MS on the API thread: confinement once the VM runs (a VM started from the config
 * file has no InstanceStart request to do it), metrics when due. */
#define TICK_MS 200

static void tick(void *ctx)
{
	struct fc_api *a = ctx;

	pthread_mutex_lock(&a->lock);
	confine(a);
	if (mono_ms() >= a->metrics_due_ms) {
		write_metrics(a);
		a->metrics_due_ms = mono_ms() + METRICS_PERIOD_MS;
	}
	pthread_mutex_unlock(&a->lock);
}

/* Firecracker's phase rules: configuration before InstanceStart, runtime calls after. */
static unsigned int pre_boot_only(struct fc_api *a, json_t **reply)
{
	if (a->state == FC_NOT_STARTED)
		return 0;
	*reply = fault("The requested operation is not supported after starting the microVM.");
	return 400;
}

static unsigned int post_boot_only(struct fc_api *a, json_t **reply)
{
	if (a->state == FC_RUNNING || a->state == FC_PAUSED)
		return 0;
	*reply = fault("The requested operation is not supported before starting the microVM.");
	return 400;
}

/* Hands (a->cfg) to the main thread, which builds and runs it, and waits until the VM runs
 * (204; the API thread then takes its seccomp filter) or could not be built (400 with the
 * reason). Under (lock), which the wait releases. */
static unsigned int start_on_main(struct fc_api *a, const char *what, json_t **reply)
{
	char err[600];
	uint64_t one = 1;

	a->state = FC_STARTING;
	if (write(a->start_efd, &one, sizeof(one)) != sizeof(one)) {
		a->state = FC_NOT_STARTED;
		snprintf(err, sizeof(err), "%s: cannot reach the main thread", what);
		*reply = fault(err);
		return 500;
	}
	while (a->state == FC_STARTING)
		pthread_cond_wait(&a->cond, &a->lock);
	if (a->state == FC_NOT_STARTED) {
		snprintf(err, sizeof(err), "%s: %s", what, a->start_err);
		*reply = fault(err);
		return 400;
	}
	confine(a);
	return 204;
}

/* InstanceStart: hands the configuration to the main thread and waits for the VM to run or to
 * fail. Under (lock), which the wait releases. */
static unsigned int instance_start(struct fc_api *a, json_t **reply)
{
	char err[600];
	unsigned int status = pre_boot_only(a, reply);

	if (status)
		return status;
	if (fc_vm_to_config(&a->vm, a->base, &a->cfg, err, sizeof(err))) {
		*reply = fault(err);
		return 400;
	}
	return start_on_main(a, "InstanceStart", reply);
}

/* PUT /snapshot/load: like InstanceStart, with the machine taken from the snapshot. Firecracker
 * allows it only on a VMM that nothing was configured on. */
static unsigned int snapshot_load(struct fc_api *a, json_t *body, json_t **reply)
{
	struct fc_snapshot_load req = {0};
	char err[600];
	unsigned int status = pre_boot_only(a, reply);

	if (status)
		return status;
	if (fc_snapshot_load(body, &req, err, sizeof(err))) {
		*reply = fault(err);
		return 400;
	}
	if (a->vm.kernel || a->vm.ndrives || a->vm.nnets) {
		*reply = fault("snapshot/load: the microVM is already configured (boot source, "
			       "drives or network interfaces): load a snapshot into a fresh mvm");
		return 400;
	}
	a->cfg = *a->base;
	a->cfg.command = CMD_RUN;
	a->cfg.fc_thread_names = true;
	snprintf(a->cfg.restore_paths[0], sizeof(a->cfg.restore_paths[0]), "%s", req.state);
	snprintf(a->cfg.restore_paths[1], sizeof(a->cfg.restore_paths[1]), "%s", req.mem);
	a->cfg.restore_state = a->cfg.restore_paths[0];
	a->cfg.restore_mem = a->cfg.restore_paths[1];
	a->cfg.restore_paused = !req.resume;
	a->cfg.restore_clock_realtime = req.clock_realtime;
	snprintf(a->cfg.restore_vsock_path, sizeof(a->cfg.restore_vsock_path), "%s",
		 req.vsock_path ? req.vsock_path : "");
	memcpy(a->cfg.restore_nets, req.nets, sizeof(req.nets));
	a->cfg.nrestore_nets = req.nnets;
	status = start_on_main(a, "snapshot/load", reply);
	if (status == 204 && !req.resume)
		a->state = FC_PAUSED;
	return status;
}

static unsigned int actions(struct fc_api *a, json_t *body, json_t **reply)
{
	const char *type = NULL;
	json_error_t jerr;
	unsigned int status;

	if (json_unpack_ex(body, &jerr, JSON_STRICT, "{s:s}", "action_type", &type)) {
		char msg[256];

		snprintf(msg, sizeof(msg), "actions: the body must be {\"action_type\": "
			 "\"InstanceStart\"|\"SendCtrlAltDel\"|\"FlushMetrics\"}: %s", jerr.text);
		*reply = fault(msg);
		return 400;
	}
	if (!strcmp(type, "InstanceStart"))
		return instance_start(a, reply);
	if (!strcmp(type, "SendCtrlAltDel")) {
		if ((status = post_boot_only(a, reply)))
			return status;
		if (machine_send_ctrl_alt_del(a->m)) {
			*reply = fault(log_last_error());
			return 400;
		}
		return 204;
	}
	if (!strcmp(type, "FlushMetrics")) {
		if (a->metrics_fd < 0) {
			*reply = fault("FlushMetrics: the metrics are not configured (PUT /metrics)");
			return 400;
		}
		write_metrics(a);
		return 204;
	}
	*reply = json_pack("{s:s+}", "fault_message", "actions: unknown action_type ", type);
	return 400;
}

static unsigned int patch_vm(struct fc_api *a, json_t *body, json_t **reply)
{
	const char *state = NULL;
	json_error_t jerr;
	unsigned int status = post_boot_only(a, reply);
	bool pause;

	if (status)
		return status;
	if (json_unpack_ex(body, &jerr, JSON_STRICT, "{s:s}", "state", &state) ||
	    (strcmp(state, "Paused") && strcmp(state, "Resumed"))) {
		*reply = fault("vm: the body must be {\"state\": \"Paused\"|\"Resumed\"}");
		return 400;
	}
	pause = !strcmp(state, "Paused");
	if (machine_pause(a->m, pause)) {
		*reply = fault(log_last_error());
		return 400;
	}
	a->state = pause ? FC_PAUSED : FC_RUNNING;
	return 204;
}

/* The full configuration, as Firecracker's GET /vm/config (FullVmConfiguration). */
static json_t *vm_config_json(const struct fc_api *a)
{
	const struct fc_vm *vm = &a->vm;
	json_t *root = json_object(), *drives = json_array(), *nets = json_array();

	if (!root || !drives || !nets) {
		json_decref(root);
		json_decref(drives);
		json_decref(nets);
		return NULL;
	}
	json_object_set_new(root, "machine-config", fc_machine_config_json(vm));
	if (vm->kernel) {
		json_t *bs = json_pack("{s:s}", "kernel_image_path", vm->kernel);

		if (vm->initrd)
			json_object_set_new(bs, "initrd_path", json_string(vm->initrd));
		if (vm->boot_args)
			json_object_set_new(bs, "boot_args", json_string(vm->boot_args));
		json_object_set_new(root, "boot-source", bs);
	}
	for (unsigned int i = 0; i < vm->ndrives; i++) {
		const struct fc_drive *d = &vm->drives[i];
		json_t *j = json_pack("{s:s, s:s, s:b, s:b}", "drive_id", d->id, "path_on_host",
				      d->path, "is_root_device", d->root, "is_read_only", d->ro);

		if (d->partuuid)
			json_object_set_new(j, "partuuid", json_string(d->partuuid));
		if (rl_config_on(&d->limit))
			json_object_set_new(j, "rate_limiter", fc_rate_limiter_json(&d->limit));
		json_array_append_new(drives, j);
	}
	json_object_set_new(root, "drives", drives);
	for (unsigned int i = 0; i < vm->nnets; i++) {
		const struct fc_net *n = &vm->nets[i];
		json_t *j = json_pack("{s:s, s:s}", "iface_id", n->id, "host_dev_name", n->tap);

		if (n->has_mac) {
			char mac[18];

			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
				 n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
			json_object_set_new(j, "guest_mac", json_string(mac));
		}
		if (rl_config_on(&n->rx_limit))
			json_object_set_new(j, "rx_rate_limiter", fc_rate_limiter_json(&n->rx_limit));
		if (rl_config_on(&n->tx_limit))
			json_object_set_new(j, "tx_rate_limiter", fc_rate_limiter_json(&n->tx_limit));
		json_array_append_new(nets, j);
	}
	json_object_set_new(root, "network-interfaces", nets);
	if (vm->entropy)
		json_object_set_new(root, "entropy",
				    rl_config_on(&vm->entropy_limit)
					    ? json_pack("{s:o}", "rate_limiter",
							fc_rate_limiter_json(&vm->entropy_limit))
					    : json_object());
	if (vm->balloon.on)
		json_object_set_new(root, "balloon", fc_balloon_json(vm, NULL, 0));
	if (vm->vsock.on)
		json_object_set_new(root, "vsock", json_pack("{s:I, s:s}", "guest_cid",
							     (json_int_t)vm->vsock.cid, "uds_path",
							     vm->vsock.path));
	if (vm->metrics_path)
		json_object_set_new(root, "metrics",
				    json_pack("{s:s}", "metrics_path", vm->metrics_path));
	if (vm->mmds_config)
		json_object_set(root, "mmds-config", vm->mmds_config);
	return root;
}

/* A file a PUT names must be readable now, as Firecracker checks when it is put (the format
 * is checked at InstanceStart); the body's other checks are fc_config's. */
static int check_body_file(const char *what, json_t *body, const char *field, char *err,
			   size_t errlen)
{
	json_t *v = json_is_object(body) ? json_object_get(body, field) : NULL;
	const char *path = json_is_string(v) ? json_string_value(v) : NULL;

	if (path && *path && access(path, R_OK)) {
		snprintf(err, errlen, "%s: cannot read '%s': %s", what, path, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

/* Hands a rate limiter PATCHed into a->vm to the running device (index (i) in the machine's
 * attach order). */
static int set_limit(struct fc_api *a, enum machine_limit what, int i, const struct rl_config *c,
		     char *err, size_t errlen)
{
	if (i >= 0 && !machine_set_rate_limit(a->m, what, (unsigned int)i, c))
		return 0;
	snprintf(err, errlen, "%s: the running machine has no such device",
		 what == MACHINE_LIMIT_DISK ? "drives" : "network-interfaces");
	return -EINVAL;
}

/* GET /balloon/statistics: the target and the guest's actual size, in pages and MiB, and the
 * statistics the guest sent last, under Firecracker's names. */
static json_t *balloon_stats_json(const struct virtio_balloon_info *info)
{
	json_t *j = json_pack("{s:I, s:I, s:I, s:I}", "target_pages",
			      (json_int_t)info->target_pages, "actual_pages",
			      (json_int_t)info->actual_pages, "target_mib",
			      (json_int_t)(info->target_pages / VIRTIO_BALLOON_PAGES_PER_MIB),
			      "actual_mib",
			      (json_int_t)(info->actual_pages / VIRTIO_BALLOON_PAGES_PER_MIB));

	for (unsigned int i = 0; j && i < VIRTIO_BALLOON_STATS_TAGS; i++)
		if (info->stats_valid & (1u << i))
			json_object_set_new(j, virtio_balloon_stat_names[i],
					    json_integer((json_int_t)info->stats[i]));
	return j;
}

/* /balloon and /balloon/statistics: Firecracker's PUT before the start, PATCH after it, GET
 * either side (the statistics after it). Under (lock). */
static unsigned int balloon(struct fc_api *a, const char *method, const char *id, json_t *body,
			    json_t **reply)
{
	bool get = !strcmp(method, "GET"), put = !strcmp(method, "PUT"),
	     patch = !strcmp(method, "PATCH"), stats = id && !strcmp(id, "statistics");
	struct virtio_balloon_info info;
	char err[512];
	unsigned int status;
	int ret;

	if (id && !stats)
		goto bad_path;
	if (get && !stats) {
		if (!(*reply = fc_balloon_json(&a->vm, err, sizeof(err)))) {
			*reply = fault(err);
			return 400;
		}
		return 200;
	}
	if (put && !stats) {
		if ((status = pre_boot_only(a, reply)))
			return status;
		ret = fc_put_balloon(&a->vm, body, err, sizeof(err));
		goto done;
	}
	if (!get && !patch)
		goto bad_path;
	if ((status = post_boot_only(a, reply)))
		return status;
	if (get) {
		if (!a->vm.balloon.on || !a->vm.balloon.stats_interval_s) {
			*reply = fault(a->vm.balloon.on
					       ? "balloon/statistics: statistics are not enabled "
						 "(stats_polling_interval_s is 0)"
					       : "balloon/statistics: no balloon device is configured");
			return 400;
		}
		if (machine_balloon_info(a->m, &info)) {
			*reply = fault(log_last_error());
			return 400;
		}
		*reply = balloon_stats_json(&info);
		return 200;
	}
	/* PATCH: the body checked against the configuration, then applied to the machine; the
	 * configuration keeps what the machine took (GET /balloon). */
	{
		struct balloon_config before = a->vm.balloon;

		ret = stats ? fc_patch_balloon_stats(&a->vm, body, err, sizeof(err))
			    : fc_patch_balloon(&a->vm, body, err, sizeof(err));
		if (!ret && (stats ? machine_balloon_set_stats_interval(a->m,
									a->vm.balloon.stats_interval_s)
				   : machine_balloon_set_target(a->m, a->vm.balloon.amount_mib))) {
			snprintf(err, sizeof(err), "balloon: %s", log_last_error());
			a->vm.balloon = before;
			ret = -EINVAL;
		}
	}
done:
	if (ret) {
		*reply = fault(err);
		return 400;
	}
	return 204;
bad_path:
	snprintf(err, sizeof(err), "Invalid request method and/or path: %s /balloon%s%s", method,
		 id ? "/" : "", id ? id : "");
	*reply = fault(err);
	return 400;
}

/* Routes one request; under (lock). (id) is the path's second segment, or NULL. */
static unsigned int route(struct fc_api *a, const char *method, const char *top, const char *id,
			  json_t *body, json_t **reply)
{
	bool get = !strcmp(method, "GET"), put = !strcmp(method, "PUT"),
	     patch = !strcmp(method, "PATCH");
	char err[512] = "";
	unsigned int status;
	int ret = -ENOENT;

	if (!top[0] && get && !id) {
		*reply = json_pack("{s:s, s:s, s:s, s:s}", "id", a->base->fc.id, "state",
				   state_name(a->state), "vmm_version", MVM_VERSION, "app_name",
				   "mvm");
		return 200;
	}
	if (!strcmp(top, "version") && get && !id) {
		*reply = json_pack("{s:s, s:s}", "firecracker_version", FC_API_VERSION,
				   "mvm_version", MVM_VERSION);
		return 200;
	}
	if (!strcmp(top, "machine-config") && !id) {
		if (get) {
			*reply = fc_machine_config_json(&a->vm);
			return 200;
		}
		if ((put || patch) && !(status = pre_boot_only(a, reply)))
			ret = fc_put_machine_config(&a->vm, body, patch, err, sizeof(err));
		else if (put || patch)
			return status;
	} else if (!strcmp(top, "vm") && !id && patch) {
		return patch_vm(a, body, reply);
	} else if (!strcmp(top, "vm") && id && !strcmp(id, "config") && get) {
		*reply = vm_config_json(a);
		return 200;
	} else if (!strcmp(top, "actions") && !id && put) {
		return actions(a, body, reply);
	} else if (!strcmp(top, "boot-source") && !id && put) {
		if ((status = pre_boot_only(a, reply)))
			return status;
		ret = check_body_file("boot-source", body, "kernel_image_path", err, sizeof(err));
		if (!ret)
			ret = check_body_file("boot-source", body, "initrd_path", err, sizeof(err));
		if (!ret)
			ret = fc_put_boot_source(&a->vm, body, err, sizeof(err));
	} else if (!strcmp(top, "drives") && id && put) {
		if ((status = pre_boot_only(a, reply)))
			return status;
		ret = check_body_file("drives", body, "path_on_host", err, sizeof(err));
		if (!ret)
			ret = fc_put_drive(&a->vm, id, body, err, sizeof(err));
	} else if (!strcmp(top, "drives") && id && patch) {
		const char *path = NULL;
		bool limit = false;

		if ((status = post_boot_only(a, reply)))
			return status;
		ret = fc_patch_drive(&a->vm, id, body, &path, &limit, err, sizeof(err));
		if (!ret && path) {
			snprintf(err, sizeof(err), "drives: replacing the backing file of a running "
				 "drive is not supported by mvm yet");
			ret = -EINVAL;
		}
		for (unsigned int i = 0; !ret && limit && i < a->vm.ndrives; i++)
			if (!strcmp(a->vm.drives[i].id, id))
				ret = set_limit(a, MACHINE_LIMIT_DISK, fc_drive_index(&a->vm, id),
						&a->vm.drives[i].limit, err, sizeof(err));
	} else if (!strcmp(top, "network-interfaces") && id && put) {
		if ((status = pre_boot_only(a, reply)))
			return status;
		ret = fc_put_net(&a->vm, id, body, err, sizeof(err));
	} else if (!strcmp(top, "network-interfaces") && id && patch) {
		bool rx = false, tx = false;
		int i;

		if ((status = post_boot_only(a, reply)))
			return status;
		ret = fc_patch_net(&a->vm, id, body, &rx, &tx, err, sizeof(err));
		i = fc_net_index(&a->vm, id);
		if (!ret && rx)
			ret = set_limit(a, MACHINE_LIMIT_NET_RX, i, &a->vm.nets[i].rx_limit, err,
					sizeof(err));
		if (!ret && tx)
			ret = set_limit(a, MACHINE_LIMIT_NET_TX, i, &a->vm.nets[i].tx_limit, err,
					sizeof(err));
	} else if (!strcmp(top, "logger") && !id && put) {
		if ((status = pre_boot_only(a, reply)))
			return status;
		ret = fc_put_logger(&a->vm, body, err, sizeof(err));
		if (!ret)
			ret = apply_logger(a, err, sizeof(err));
	} else if (!strcmp(top, "metrics") && !id && put) {
		if ((status = pre_boot_only(a, reply)))
			return status;
		ret = fc_put_metrics(&a->vm, body, err, sizeof(err));
		if (!ret && (ret = apply_metrics(a, err, sizeof(err)))) {
			free(a->vm.metrics_path);
			a->vm.metrics_path = NULL;
		}
	} else if (!strcmp(top, "entropy") && !id && put) {
		if ((status = pre_boot_only(a, reply)))
			return status;
		ret = fc_put_entropy(&a->vm, body, err, sizeof(err));
	} else if (!strcmp(top, "mmds") && !id && get) {
		*reply = a->vm.mmds ? json_incref(a->vm.mmds) : json_object();
		return 200;
	} else if (!strcmp(top, "mmds") && !id && (put || patch)) {
		ret = fc_put_mmds(&a->vm, body, patch, a->base->fc.max_payload, err, sizeof(err));
	} else if (!strcmp(top, "mmds") && id && !strcmp(id, "config") && put) {
		if ((status = pre_boot_only(a, reply)))
			return status;
		ret = fc_put_mmds_config(&a->vm, body, err, sizeof(err));
	} else if (!strcmp(top, "vsock") && !id && put) {
		if ((status = pre_boot_only(a, reply)))
			return status;
		ret = fc_put_vsock(&a->vm, body, err, sizeof(err));
	} else if (!strcmp(top, "balloon")) {
		return balloon(a, method, id, body, reply);
	} else if ((!strcmp(top, "cpu-config") || !strcmp(top, "pmem") ||
		    !strcmp(top, "hotplug") || !strcmp(top, "serial")) && (put || patch || get)) {
		ret = fc_unsupported(top, err, sizeof(err));
	} else if (!strcmp(top, "snapshot") && id && !strcmp(id, "create") && put) {
		const char *state_path, *mem_path;

		if ((status = post_boot_only(a, reply)))
			return status;
		ret = fc_snapshot_create(body, &state_path, &mem_path, err, sizeof(err));
		if (!ret && a->state != FC_PAUSED) {
			snprintf(err, sizeof(err), "snapshot/create: the microVM must be paused "
				 "(PATCH /vm {\"state\": \"Paused\"})");
			ret = -EINVAL;
		}
		if (!ret && machine_snapshot(a->m, state_path, mem_path)) {
			snprintf(err, sizeof(err), "snapshot/create: %s", log_last_error());
			ret = -EINVAL;
		}
	} else if (!strcmp(top, "snapshot") && id && !strcmp(id, "load") && put) {
		return snapshot_load(a, body, reply);
	}
	if (ret == -ENOENT) {
		snprintf(err, sizeof(err), "Invalid request method and/or path: %s /%s%s%s", method,
			 top, id ? "/" : "", id ? id : "");
		*reply = fault(err);
		return 400;
	}
	if (ret) {
		*reply = fault(err);
		return 400;
	}
	return 204;
}

/* http_handler: parses the body (PUT and PATCH carry JSON), splits the path, routes. */
static unsigned int on_request(void *ctx, const char *method, const char *path, const char *text,
			       size_t len, json_t **reply)
{
	struct fc_api *a = ctx;
	char top[32] = "", id[FC_ID_MAX + 2] = "";
	const char *p = path, *slash;
	json_t *body = NULL;
	unsigned int status;

	if (*p == '/')
		p++;
	slash = strchr(p, '/');
	if ((slash ? (size_t)(slash - p) : strlen(p)) >= sizeof(top) ||
	    (slash && (strlen(slash + 1) >= sizeof(id) || !slash[1] || strchr(slash + 1, '/')))) {
		char msg[128];

		snprintf(msg, sizeof(msg), "Invalid request method and/or path: %.8s %.64s",
			 method, path);
		*reply = fault(msg);
		status = 400;
		goto count;
	}
	snprintf(top, sizeof(top), "%.*s", slash ? (int)(slash - p) : (int)strlen(p), p);
	if (slash)
		snprintf(id, sizeof(id), "%s", slash + 1);
	if (!strcmp(method, "PUT") || !strcmp(method, "PATCH")) {
		json_error_t jerr;

		body = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
		if (!body) {
			char msg[256];

			snprintf(msg, sizeof(msg), "%s: the body is not JSON (line %d, column %d: "
				 "%s)", top[0] ? top : "/", jerr.line, jerr.column, jerr.text);
			*reply = fault(msg);
			status = 400;
			goto count;
		}
	}
	pthread_mutex_lock(&a->lock);
	status = route(a, method, top, slash ? id : NULL, body, reply);
	pthread_mutex_unlock(&a->lock);
	json_decref(body);
count:
	pthread_mutex_lock(&a->lock);
	a->requests++;
	a->failed += status >= 400;
	pthread_mutex_unlock(&a->lock);
	pr_info("%s %s: %u", method, path, status);
	return status;
}

/* The API thread owns the socket: it serves until fc_main() stops it, then closes the
 * connections and removes the socket file itself (the main thread is confined to what the
 * machine needs by then, sandbox/seccomp.h). */
static void *api_thread(void *arg)
{
	struct fc_api *a = arg;

	http_server_serve(a->http, tick, TICK_MS);
	http_server_close(a->http);
	return NULL;
}

static void on_running(struct machine_observer *o, struct machine *m)
{
	struct fc_api *a = container_of(o, struct fc_api, obs);

	pthread_mutex_lock(&a->lock);
	a->m = m;
	a->state = FC_RUNNING;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static void on_stopping(struct machine_observer *o, struct machine *m)
{
	struct fc_api *a = container_of(o, struct fc_api, obs);

	pthread_mutex_lock(&a->lock);
	write_metrics(a); /* the last counters, with the devices still there */
	a->m = NULL;
	a->state = FC_STOPPED;
	pthread_mutex_unlock(&a->lock);
}

/* Builds and runs the VM (a->cfg). Returns true when the guest ran (then (*status) is the
 * process exit status), false when building failed (InstanceStart gets the reason). */
static bool run_machine(struct fc_api *a, int *status)
{
	struct vm_config cfg;
	bool ran;

	pthread_mutex_lock(&a->lock);
	cfg = a->cfg;
	pthread_mutex_unlock(&a->lock);
	log_clear_last_error();
	*status = machine_run(&cfg, &a->obs);
	pthread_mutex_lock(&a->lock);
	ran = a->state == FC_STOPPED;
	if (!ran) {
		snprintf(a->start_err, sizeof(a->start_err), "%s",
			 log_last_error()[0] ? log_last_error() : "the VM could not be built");
		a->state = FC_NOT_STARTED;
		pthread_cond_broadcast(&a->cond);
	}
	pthread_mutex_unlock(&a->lock);
	return ran;
}

static int load_config_file(struct fc_api *a, const char *path)
{
	struct mapped_file f;
	char err[512];
	int ret = file_map(&f, path, "--config-file", CONFIG_FILE_MAX);

	if (ret)
		return ret;
	pthread_mutex_lock(&a->lock);
	ret = fc_load_config(&a->vm, (const char *)f.data, f.len, err, sizeof(err));
	if (!ret && a->vm.has_logger)
		ret = apply_logger(a, err, sizeof(err));
	if (!ret && a->vm.metrics_path)
		ret = apply_metrics(a, err, sizeof(err));
	if (!ret)
		ret = fc_vm_to_config(&a->vm, a->base, &a->cfg, err, sizeof(err));
	if (!ret)
		a->state = FC_STARTING;
	pthread_mutex_unlock(&a->lock);
	file_unmap(&f);
	if (ret)
		pr_err("--config-file '%s': %s", path, err);
	return ret;
}

/* Waits for InstanceStart (an eventfd write) or a stop signal. Returns 1 to start, or the
 * number of the signal that arrived (negative). */
static int wait_start(struct fc_api *a, int sfd)
{
	struct pollfd fds[2] = {{.fd = a->start_efd, .events = POLLIN},
				{.fd = sfd, .events = POLLIN}};

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -SIGTERM;
		}
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				return -(int)si.ssi_signo;
		}
		if (fds[0].revents & POLLIN) {
			uint64_t v;

			if (read(a->start_efd, &v, sizeof(v)) == sizeof(v))
				return 1;
		}
	}
}

int fc_main(const struct vm_config *cfg)
{
	struct fc_api *a = calloc(1, sizeof(*a));
	int status = MVM_EXIT_VMM, sfd = -1;
	sigset_t sigs;

	if (!a)
		return MVM_EXIT_VMM;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	fc_vm_init(&a->vm);
	a->base = cfg;
	a->log_fd = a->metrics_fd = -1;
	a->started_ms = mono_ms();
	a->metrics_due_ms = a->started_ms + METRICS_PERIOD_MS;
	a->obs = (struct machine_observer){.running = on_running, .stopping = on_stopping};
	a->start_efd = eventfd(0, EFD_CLOEXEC);
	/* Stop signals are taken on a signalfd (machine_run does the same once the VM runs);
	 * blocked before the API thread exists, so it inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (a->start_efd < 0 || sfd < 0) {
		pr_err("eventfd/signalfd: %s", strerror(errno));
		goto out;
	}
	if (cfg->fc.log_path) {
		char err[256];
		int fd = open_sink("--log-path", cfg->fc.log_path, err, sizeof(err));

		if (fd < 0) {
			fprintf(stderr, "mvm: %s\n", err);
			status = MVM_EXIT_USAGE;
			goto out;
		}
		log_set_fd(fd);
		a->log_fd = fd;
	}
	if (cfg->fc.level_given)
		log_set_level(cfg->fc.level);
	if (cfg->fc.metrics_path) {
		char err[256];

		a->vm.metrics_path = strdup(cfg->fc.metrics_path);
		if (!a->vm.metrics_path || apply_metrics(a, err, sizeof(err))) {
			pr_err("--metrics-path: %s", err);
			status = MVM_EXIT_USAGE;
			goto out;
		}
	}
	/* The socket first, before any slow work, as Firecracker binds it: a client may connect
	 * as soon as the process exists. */
	if (cfg->fc.api_sock) {
		if (http_server_open(&a->http, cfg->fc.api_sock, cfg->fc.max_payload, on_request,
				     a)) {
			status = MVM_EXIT_USAGE;
			goto out;
		}
		if (pthread_create(&a->thread, NULL, api_thread, a)) {
			pr_err("cannot start the API thread");
			goto out;
		}
		pthread_setname_np(a->thread, "fc_api");
		a->thread_started = true;
		pr_info("API on %s", cfg->fc.api_sock);
	}
	if (cfg->fc.config_file) {
		if (load_config_file(a, cfg->fc.config_file)) {
			status = MVM_EXIT_USAGE;
			goto out;
		}
		if (!run_machine(a, &status))
			goto out; /* machine_run's status: 64 for a bad input, 70 otherwise */
	} else {
		for (;;) {
			int w = wait_start(a, sfd);

			if (w < 0) {
				pr_info("stopping on signal %d before the VM started", -w);
				status = 128 - w;
				goto out;
			}
			if (run_machine(a, &status))
				break;
		}
	}
out:
	if (a->thread_started) {
		http_server_stop(a->http);
		pthread_join(a->thread, NULL);
	} else {
		http_server_close(a->http);
	}
	pthread_mutex_lock(&a->lock);
	if (a->state != FC_STOPPED)
		write_metrics(a); /* a VM that ran wrote its last line when it stopped */
	pthread_mutex_unlock(&a->lock);
	if (a->metrics_fd >= 0)
		close(a->metrics_fd);
	if (a->log_fd >= 0) {
		log_set_fd(STDERR_FILENO);
		close(a->log_fd);
	}
	if (sfd >= 0)
		close(sfd);
	if (a->start_efd >= 0)
		close(a->start_efd);
	fc_vm_fini(&a->vm);
	free(a);
	return status;
}
