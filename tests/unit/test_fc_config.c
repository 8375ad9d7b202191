/* test_fc_config.c: Firecracker's configuration bodies (api/fc_config.h): what each accepts,
 * what each refuses (and that a refused body leaves the configuration as it was), the config
 * file, and the struct vm_config that comes out (root drive first, root= appended). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fc_config.h"
#include "test.h"

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, JSON_ALLOW_NUL, &e);

	if (!j)
		fprintf(stderr, "bad test JSON: %s: %s\n", text, e.text);
	return j;
}

static char err[512];

/* Applies (text) with (fn) and says whether it was accepted; the JSON is released. */
#define PUT(fn, vm, text) put_((fn), (vm), NULL, (text))
#define PUT_ID(fn, vm, id, text) put_((fn), (vm), (id), (text))

typedef int (*put_fn)(struct fc_vm *, json_t *, char *, size_t);
typedef int (*put_id_fn)(struct fc_vm *, const char *, json_t *, char *, size_t);

static int put_any(void *fn, struct fc_vm *vm, const char *id, const char *text)
{
	json_t *j = J(text);
	int ret;

	err[0] = 0;
	ret = id ? ((put_id_fn)fn)(vm, id, j, err, sizeof(err)) : ((put_fn)fn)(vm, j, err,
									  sizeof(err));
	json_decref(j);
	return ret;
}
#define put_(fn, vm, id, text) put_any((void *)(fn), (vm), (id), (text))

static int machine(struct fc_vm *vm, const char *text, bool patch)
{
	json_t *j = J(text);
	int ret = fc_put_machine_config(vm, j, patch, err, sizeof(err));

	json_decref(j);
	return ret;
}

static bool err_has(const char *s)
{
	bool ok = strstr(err, s) != NULL;

	if (!ok)
		fprintf(stderr, "error text '%s' lacks '%s'\n", err, s);
	return ok;
}

static void test_machine_config(void)
{
	struct fc_vm vm;
	json_t *g;

	fc_vm_init(&vm);
	g = fc_machine_config_json(&vm);
	CHECK_EQ(json_integer_value(json_object_get(g, "vcpu_count")), 1);
	CHECK_EQ(json_integer_value(json_object_get(g, "mem_size_mib")), 128);
	CHECK_STR(json_string_value(json_object_get(g, "huge_pages")), "None");
	json_decref(g);

	CHECK_EQ(machine(&vm, "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"smt\": false}", false),
		 0);
	CHECK_EQ(vm.vcpus, 2);
	CHECK_EQ(vm.mem_mib, 256);
	/* PUT needs both; PATCH changes what it names. */
	CHECK(machine(&vm, "{\"vcpu_count\": 4}", false) < 0 && err_has("mem_size_mib"));
	CHECK_EQ(machine(&vm, "{\"vcpu_count\": 4}", true), 0);
	CHECK_EQ(vm.vcpus, 4);
	CHECK_EQ(vm.mem_mib, 256);
	/* Refused bodies change nothing. */
	CHECK(machine(&vm, "{\"vcpu_count\": 0, \"mem_size_mib\": 64}", false) < 0);
	CHECK(machine(&vm, "{\"vcpu_count\": 33, \"mem_size_mib\": 64}", false) < 0);
	CHECK(machine(&vm, "{\"vcpu_count\": -1, \"mem_size_mib\": 64}", false) < 0);
	CHECK(machine(&vm, "{\"vcpu_count\": \"2\", \"mem_size_mib\": 64}", false) < 0 &&
	      err_has("'vcpu_count' must be a non-negative integer"));
	CHECK(machine(&vm, "{\"vcpu_count\": 1, \"mem_size_mib\": 1}", false) < 0);
	CHECK(machine(&vm, "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"bogus\": 1}", false) < 0 &&
	      err_has("unknown field 'bogus'"));
	CHECK(machine(&vm, "{\"vcpu_count\": 2, \"mem_size_mib\": 64, \"smt\": true}", false) < 0);
	CHECK(machine(&vm, "{\"vcpu_count\": 2, \"mem_size_mib\": 64, \"huge_pages\": \"2M\"}",
		      false) < 0);
	CHECK(machine(&vm, "[1, 2]", false) < 0 && err_has("JSON object"));
	CHECK_EQ(vm.vcpus, 4);
	CHECK_EQ(vm.mem_mib, 256);
	CHECK_EQ(machine(&vm, "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"huge_pages\": "
			 "\"Transparent\", \"cpu_template\": \"None\", \"track_dirty_pages\": false}",
			 false), 0);
	CHECK(vm.thp);
	/* A null optional field is an absent one (serde's Option). */
	CHECK_EQ(machine(&vm, "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"smt\": null}", false), 0);
	CHECK(!vm.thp); /* PUT resets what it does not name to the defaults */
	fc_vm_fini(&vm);
}

static void test_devices(void)
{
	struct fc_vm vm;

	fc_vm_init(&vm);
	CHECK(PUT(fc_put_boot_source, &vm, "{\"boot_args\": \"quiet\"}") < 0 &&
	      err_has("kernel_image_path"));
	CHECK(PUT(fc_put_boot_source, &vm, "{\"kernel_image_path\": \"\"}") < 0);
	CHECK(PUT(fc_put_boot_source, &vm, "{\"kernel_image_path\": \"a\\u0000b\"}") < 0 &&
	      err_has("NUL"));
	CHECK(vm.kernel == NULL);
	CHECK_EQ(PUT(fc_put_boot_source, &vm, "{\"kernel_image_path\": \"/k\", \"boot_args\": "
		     "\"console=ttyS0\"}"), 0);
	CHECK_STR(vm.kernel, "/k");

	CHECK(PUT_ID(fc_put_drive, &vm, "root", "{\"drive_id\": \"other\", \"is_root_device\": "
		     "true, \"path_on_host\": \"/a\"}") < 0 && err_has("differs"));
	CHECK(PUT_ID(fc_put_drive, &vm, "ro ot", "{\"drive_id\": \"ro ot\", \"is_root_device\": "
		     "true, \"path_on_host\": \"/a\"}") < 0);
	CHECK(PUT_ID(fc_put_drive, &vm, "root", "{\"drive_id\": \"root\", \"path_on_host\": "
		     "\"/a\"}") < 0 && err_has("is_root_device"));
	CHECK(PUT_ID(fc_put_drive, &vm, "root", "{\"drive_id\": \"root\", \"is_root_device\": true, "
		     "\"path_on_host\": \"/a\", \"rate_limiter\": {\"ops\": {\"size\": 1, "
		     "\"refill_time\": 0}}}") < 0 && err_has("rate_limiter.ops: refill_time is 0"));
	CHECK(PUT_ID(fc_put_drive, &vm, "root", "{\"drive_id\": \"root\", \"is_root_device\": true, "
		     "\"path_on_host\": \"/a\", \"cache_type\": \"Fast\"}") < 0);
	CHECK_EQ(vm.ndrives, 0);
	CHECK_EQ(PUT_ID(fc_put_drive, &vm, "data", "{\"drive_id\": \"data\", \"is_root_device\": "
			"false, \"path_on_host\": \"/d\", \"is_read_only\": true}"), 0);
	CHECK_EQ(PUT_ID(fc_put_drive, &vm, "rootfs", "{\"drive_id\": \"rootfs\", \"is_root_device\": "
			"true, \"path_on_host\": \"/r\", \"cache_type\": \"Writeback\", "
			"\"io_engine\": \"Async\", \"rate_limiter\": null}"), 0);
	/* One root device; a second one is refused, replacing the same id is an update. */
	CHECK(PUT_ID(fc_put_drive, &vm, "other", "{\"drive_id\": \"other\", \"is_root_device\": "
		     "true, \"path_on_host\": \"/o\"}") < 0 && err_has("already the root"));
	CHECK_EQ(PUT_ID(fc_put_drive, &vm, "rootfs", "{\"drive_id\": \"rootfs\", \"is_root_device\": "
			"true, \"path_on_host\": \"/r2\", \"is_read_only\": true}"), 0);
	CHECK_EQ(vm.ndrives, 2);
	CHECK_STR(vm.drives[1].path, "/r2");

	CHECK(PUT_ID(fc_put_net, &vm, "eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": "
		     "\"tap-with-a-name-too-long\"}") < 0);
	CHECK(PUT_ID(fc_put_net, &vm, "eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": "
		     "\"tap0\", \"guest_mac\": \"01:00:00:00:00:01\"}") < 0 && err_has("multicast"));
	CHECK(PUT_ID(fc_put_net, &vm, "eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": "
		     "\"tap0\", \"guest_mac\": \"06:00:00:00:00\"}") < 0);
	CHECK_EQ(PUT_ID(fc_put_net, &vm, "eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"guest_mac\": \"06:00:AC:10:00:02\"}"), 0);
	CHECK(vm.nets[0].has_mac && vm.nets[0].mac[2] == 0xac);
	CHECK(PUT_ID(fc_put_net, &vm, "eth1", "{\"iface_id\": \"eth1\", \"host_dev_name\": "
		     "\"tap0\"}") < 0 && err_has("already used"));
	CHECK_EQ(vm.nnets, 1);

	CHECK(PUT(fc_put_logger, &vm, "{\"level\": \"Loud\"}") < 0);
	CHECK_EQ(PUT(fc_put_logger, &vm, "{\"level\": \"warning\", \"show_level\": true}"), 0);
	CHECK_EQ(vm.log_level, FC_LOG_WARNING);
	CHECK_EQ(PUT(fc_put_logger, &vm, "{\"level\": \"Trace\"}"), 0);
	CHECK_EQ(vm.log_level, FC_LOG_DEBUG);
	CHECK(PUT(fc_put_metrics, &vm, "{}") < 0);
	CHECK_EQ(PUT(fc_put_metrics, &vm, "{\"metrics_path\": \"/m\"}"), 0);
	CHECK(PUT(fc_put_metrics, &vm, "{\"metrics_path\": \"/m2\"}") < 0 && err_has("already"));
	CHECK(PUT(fc_put_entropy, &vm, "{\"rate_limiter\": {\"bytes\": {}}}") < 0 &&
	      err_has("entropy: rate_limiter: unknown field 'bytes'"));
	CHECK(!vm.entropy);
	CHECK_EQ(PUT(fc_put_entropy, &vm, "{}"), 0);
	CHECK(vm.entropy);

	CHECK(PUT(fc_put_vsock, &vm, "{\"guest_cid\": 0, \"uds_path\": \"/v.sock\"}") < 0);
	CHECK(PUT(fc_put_vsock, &vm, "{\"guest_cid\": 4294967295, \"uds_path\": \"/v.sock\"}") <
	      0);
	CHECK(!vm.vsock.on);
	CHECK_EQ(PUT(fc_put_vsock, &vm, "{\"guest_cid\": 3, \"uds_path\": \"/v.sock\", "
		     "\"vsock_id\": \"vsock0\"}"), 0);
	CHECK(vm.vsock.on && vm.vsock.cid == 3);
	CHECK_STR(vm.vsock.path, "/v.sock");
	CHECK(PUT(fc_put_mmds_config, &vm, "{\"network_interfaces\": [\"eth9\"]}") < 0 &&
	      err_has("eth9"));
	CHECK(PUT(fc_put_mmds_config, &vm, "{\"network_interfaces\": [\"eth0\"], "
		  "\"ipv4_address\": \"10.0.0.1\"}") < 0);
	CHECK_EQ(PUT(fc_put_mmds_config, &vm, "{\"network_interfaces\": [\"eth0\"], \"version\": "
		     "\"V2\", \"ipv4_address\": \"169.254.170.2\"}"), 0);
	fc_vm_fini(&vm);
}

/* Firecracker's RateLimiter {bandwidth, ops} of TokenBucket {size, one_time_burst,
 * refill_time} on drives, NICs (each direction) and entropy: parsed, refused with the field
 * named, carried into the struct vm_config, PATCHed bucket by bucket. */
static void test_rate_limiters(void)
{
	struct vm_config base = {.console = CONSOLE_STDIO}, cfg;
	struct fc_vm vm;
	const char *path;
	bool limit, rx, tx;
	json_t *j;

	fc_vm_init(&vm);
	CHECK_EQ(PUT(fc_put_boot_source, &vm, "{\"kernel_image_path\": \"/k\"}"), 0);
	CHECK_EQ(PUT_ID(fc_put_drive, &vm, "data", "{\"drive_id\": \"data\", \"is_root_device\": "
			"false, \"path_on_host\": \"/d\", \"rate_limiter\": {\"bandwidth\": "
			"{\"size\": 1048576, \"one_time_burst\": 4096, \"refill_time\": 100}, "
			"\"ops\": null}}"), 0);
	CHECK_EQ(vm.drives[0].limit.bw.size, 1048576);
	CHECK_EQ(vm.drives[0].limit.bw.one_time_burst, 4096);
	CHECK_EQ(vm.drives[0].limit.bw.refill_ms, 100);
	CHECK_EQ(vm.drives[0].limit.ops.size, 0);
	CHECK_EQ(PUT_ID(fc_put_drive, &vm, "root", "{\"drive_id\": \"root\", \"is_root_device\": "
			"true, \"path_on_host\": \"/r\", \"rate_limiter\": {\"ops\": {\"size\": 0, "
			"\"refill_time\": 0}}}"), 0); /* size 0: no limit, as Firecracker */
	CHECK(!rl_config_on(&vm.drives[1].limit));
	/* Refused, naming the field; the drive stays as it was. */
	CHECK(PUT_ID(fc_put_drive, &vm, "data", "{\"drive_id\": \"data\", \"is_root_device\": "
		     "false, \"path_on_host\": \"/d\", \"rate_limiter\": {\"bandwidth\": "
		     "{\"size\": -5, \"refill_time\": 100}}}") < 0 &&
	      err_has("drives: rate_limiter.bandwidth: 'size' must be a non-negative integer"));
	CHECK(PUT_ID(fc_put_drive, &vm, "data", "{\"drive_id\": \"data\", \"is_root_device\": "
		     "false, \"path_on_host\": \"/d\", \"rate_limiter\": {\"bandwidth\": "
		     "{\"size\": 9007199254740993, \"refill_time\": 100}}}") < 0 &&
	      err_has("drives: rate_limiter.bandwidth: size is too large"));
	CHECK(PUT_ID(fc_put_drive, &vm, "data", "{\"drive_id\": \"data\", \"is_root_device\": "
		     "false, \"path_on_host\": \"/d\", \"rate_limiter\": {\"ops\": "
		     "{\"size\": 5}}}") < 0 &&
	      err_has("drives: rate_limiter.ops: missing field 'refill_time'"));
	CHECK(PUT_ID(fc_put_drive, &vm, "data", "{\"drive_id\": \"data\", \"is_root_device\": "
		     "false, \"path_on_host\": \"/d\", \"rate_limiter\": {\"ops\": "
		     "{\"size\": 5, \"refill_time\": 1.5}}}") < 0 && err_has("'refill_time'"));
	CHECK(PUT_ID(fc_put_drive, &vm, "data", "{\"drive_id\": \"data\", \"is_root_device\": "
		     "false, \"path_on_host\": \"/d\", \"rate_limiter\": 5}") < 0 &&
	      err_has("drives: rate_limiter: the body must be a JSON object"));
	CHECK(PUT_ID(fc_put_drive, &vm, "data", "{\"drive_id\": \"data\", \"is_root_device\": "
		     "false, \"path_on_host\": \"/d\", \"rate_limiter\": {\"ops\": "
		     "{\"size\": 1, \"refill_time\": 4294967297}}}") < 0 &&
	      err_has("refill_time is too large"));
	CHECK_EQ(vm.drives[0].limit.bw.size, 1048576);

	CHECK_EQ(PUT_ID(fc_put_net, &vm, "eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"rx_rate_limiter\": {\"ops\": {\"size\": 100, \"refill_time\": "
			"1000}}, \"tx_rate_limiter\": {\"bandwidth\": {\"size\": 65536, "
			"\"refill_time\": 10}}}"), 0);
	CHECK_EQ(vm.nets[0].rx_limit.ops.size, 100);
	CHECK_EQ(vm.nets[0].rx_limit.bw.size, 0);
	CHECK_EQ(vm.nets[0].tx_limit.bw.size, 65536);
	CHECK(PUT_ID(fc_put_net, &vm, "eth1", "{\"iface_id\": \"eth1\", \"host_dev_name\": "
		     "\"tap1\", \"tx_rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": "
		     "0}}}") < 0 && err_has("network-interfaces: tx_rate_limiter.ops: refill_time"));
	CHECK_EQ(vm.nnets, 1);
	CHECK_EQ(PUT(fc_put_entropy, &vm, "{\"rate_limiter\": {\"bandwidth\": {\"size\": 1000, "
		     "\"refill_time\": 100}}}"), 0);
	CHECK_EQ(vm.entropy_limit.bw.size, 1000);

	/* Into the struct vm_config: the root drive first. */
	CHECK_EQ(fc_vm_to_config(&vm, &base, &cfg, err, sizeof(err)), 0);
	CHECK_EQ(cfg.ndisks, 2);
	CHECK(!rl_config_on(&cfg.disks[0].limit));
	CHECK_EQ(cfg.disks[1].limit.bw.size, 1048576);
	CHECK_EQ(cfg.nets[0].tx_limit.bw.refill_ms, 10);
	CHECK_EQ(cfg.nets[0].rx_limit.ops.refill_ms, 1000);
	CHECK(cfg.rng);
	CHECK_EQ(cfg.rng_limit.bw.size, 1000);
	CHECK_EQ(fc_drive_index(&vm, "root"), 0);
	CHECK_EQ(fc_drive_index(&vm, "data"), 1);
	CHECK_EQ(fc_drive_index(&vm, "none"), -1);
	CHECK_EQ(fc_net_index(&vm, "eth0"), 0);

	/* PATCH: a bucket left out keeps its value, one given replaces it, size 0 lifts it. */
	j = J("{\"drive_id\": \"data\", \"rate_limiter\": {\"ops\": {\"size\": 10, "
	      "\"refill_time\": 1000}}}");
	CHECK_EQ(fc_patch_drive(&vm, "data", j, &path, &limit, err, sizeof(err)), 0);
	json_decref(j);
	CHECK(limit && !path);
	CHECK_EQ(vm.drives[0].limit.bw.size, 1048576);
	CHECK_EQ(vm.drives[0].limit.ops.size, 10);
	j = J("{\"drive_id\": \"data\", \"rate_limiter\": {\"bandwidth\": {\"size\": 0, "
	      "\"refill_time\": 0}}}");
	CHECK_EQ(fc_patch_drive(&vm, "data", j, &path, &limit, err, sizeof(err)), 0);
	json_decref(j);
	CHECK(!tb_config_on(&vm.drives[0].limit.bw));
	CHECK_EQ(vm.drives[0].limit.ops.size, 10);
	j = J("{\"drive_id\": \"data\", \"rate_limiter\": {\"ops\": {\"size\": 10, "
	      "\"refill_time\": 0}}}");
	CHECK(fc_patch_drive(&vm, "data", j, &path, &limit, err, sizeof(err)) < 0 &&
	      err_has("drives: rate_limiter.ops: refill_time is 0"));
	json_decref(j);
	CHECK_EQ(vm.drives[0].limit.ops.refill_ms, 1000);
	j = J("{\"drive_id\": \"data\", \"path_on_host\": \"/new\"}");
	CHECK_EQ(fc_patch_drive(&vm, "data", j, &path, &limit, err, sizeof(err)), 0);
	CHECK(!limit);
	CHECK_STR(path, "/new"); /* the caller refuses a path change */
	json_decref(j);
	j = J("{\"iface_id\": \"eth0\", \"rx_rate_limiter\": {\"bandwidth\": {\"size\": 1, "
	      "\"refill_time\": 1}}}");
	CHECK_EQ(fc_patch_net(&vm, "eth0", j, &rx, &tx, err, sizeof(err)), 0);
	json_decref(j);
	CHECK(rx && !tx);
	CHECK_EQ(vm.nets[0].rx_limit.bw.size, 1);
	CHECK_EQ(vm.nets[0].rx_limit.ops.size, 100);
	CHECK_EQ(vm.nets[0].tx_limit.bw.size, 65536);
	j = J("{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap9\"}");
	CHECK(fc_patch_net(&vm, "eth0", j, &rx, &tx, err, sizeof(err)) < 0 &&
	      err_has("unknown field 'host_dev_name'"));
	json_decref(j);
	j = J("{\"iface_id\": \"eth7\"}");
	CHECK(fc_patch_net(&vm, "eth7", j, &rx, &tx, err, sizeof(err)) < 0 &&
	      err_has("no network interface 'eth7'"));
	json_decref(j);
	/* The config file takes them through the same checks, naming the section. */
	{
		static const char doc[] =
			"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": "
			"[{\"drive_id\": \"r\", \"path_on_host\": \"/r\", \"is_root_device\": true, "
			"\"rate_limiter\": {\"ops\": {\"size\": 7, \"refill_time\": 70}}}], "
			"\"network-interfaces\": [{\"iface_id\": \"e\", \"host_dev_name\": \"t\", "
			"\"tx_rate_limiter\": {\"bandwidth\": {\"size\": 9, \"refill_time\": 90, "
			"\"one_time_burst\": 99}}}], \"entropy\": {\"rate_limiter\": {\"ops\": "
			"{\"size\": 1, \"refill_time\": 10}}}}";
		static const char bad[] =
			"{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": "
			"[{\"drive_id\": \"r\", \"path_on_host\": \"/r\", \"is_root_device\": true, "
			"\"rate_limiter\": {\"ops\": {\"size\": 7, \"refill_time\": 0}}}]}";
		struct fc_vm v2;

		fc_vm_init(&v2);
		CHECK_EQ(fc_load_config(&v2, doc, strlen(doc), err, sizeof(err)), 0);
		CHECK_EQ(v2.drives[0].limit.ops.size, 7);
		CHECK_EQ(v2.nets[0].tx_limit.bw.one_time_burst, 99);
		CHECK_EQ(v2.entropy_limit.ops.refill_ms, 10);
		fc_vm_fini(&v2);
		fc_vm_init(&v2);
		CHECK(fc_load_config(&v2, bad, strlen(bad), err, sizeof(err)) < 0 &&
		      err_has("drives[0]") && err_has("rate_limiter.ops: refill_time is 0"));
		fc_vm_fini(&v2);
	}
	/* Back out as Firecracker's JSON. */
	j = fc_rate_limiter_json(&vm.nets[0].rx_limit);
	CHECK_EQ(json_integer_value(json_object_get(json_object_get(j, "ops"), "size")), 100);
	CHECK_EQ(json_integer_value(json_object_get(json_object_get(j, "bandwidth"),
						    "refill_time")), 1);
	json_decref(j);
	fc_vm_fini(&vm);
}

/* RFC 7396 appendix A's example, and the size limit. */
static void test_mmds(void)
{
	struct fc_vm vm;
	json_t *put = J("{\"title\": \"Goodbye!\", \"author\": {\"givenName\": \"John\", "
			"\"familyName\": \"Doe\"}, \"tags\": [\"example\", \"sample\"], "
			"\"content\": \"This will be unchanged\"}"),
	       *patch = J("{\"title\": \"Hello!\", \"phoneNumber\": \"+01-123-456-7890\", "
			  "\"author\": {\"familyName\": null}, \"tags\": [\"example\"]}"),
	       *want = J("{\"title\": \"Hello!\", \"author\": {\"givenName\": \"John\"}, "
			 "\"tags\": [\"example\"], \"content\": \"This will be unchanged\", "
			 "\"phoneNumber\": \"+01-123-456-7890\"}"),
	       *big = J("{\"k\": \"0123456789012345678901234567890123456789\"}");

	fc_vm_init(&vm);
	CHECK_EQ(fc_put_mmds(&vm, put, false, 4096, err, sizeof(err)), 0);
	CHECK_EQ(fc_put_mmds(&vm, patch, true, 4096, err, sizeof(err)), 0);
	CHECK(json_equal(vm.mmds, want));
	CHECK(fc_put_mmds(&vm, big, false, 32, err, sizeof(err)) < 0 && err_has("limit"));
	CHECK(json_equal(vm.mmds, want));
	json_decref(put);
	json_decref(patch);
	json_decref(want);
	json_decref(big);
	fc_vm_fini(&vm);
}

static const char config_file[] =
	"{\"boot-source\": {\"kernel_image_path\": \"/vmlinux\", \"boot_args\": \"console=ttyS0\"},"
	" \"drives\": [{\"drive_id\": \"scratch\", \"path_on_host\": \"/s.img\", "
	"\"is_root_device\": false, \"is_read_only\": false},"
	" {\"drive_id\": \"rootfs\", \"path_on_host\": \"/r.img\", \"is_root_device\": true, "
	"\"is_read_only\": true, \"partuuid\": \"0eaa91a0-01\"}],"
	" \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 512},"
	" \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap7\"}],"
	" \"entropy\": {}, \"logger\": {\"level\": \"Error\"}}";

static void test_config_file(void)
{
	struct vm_config base = {.console = CONSOLE_STDIO, .accel = ACCEL_DBT}, cfg;
	struct fc_vm vm;

	fc_vm_init(&vm);
	CHECK(fc_vm_to_config(&vm, &base, &cfg, err, sizeof(err)) < 0 && err_has("boot source"));
	CHECK_EQ(fc_load_config(&vm, config_file, strlen(config_file), err, sizeof(err)), 0);
	CHECK_EQ(fc_vm_to_config(&vm, &base, &cfg, err, sizeof(err)), 0);
	CHECK_EQ(cfg.command, CMD_RUN);
	CHECK_EQ(cfg.accel, ACCEL_DBT);
	CHECK_STR(cfg.kernel, "/vmlinux");
	CHECK_EQ(cfg.cpus, 2);
	CHECK_EQ(cfg.mem, 512ULL << 20);
	/* The root drive is vda whatever the order it was given in. */
	CHECK_EQ(cfg.ndisks, 2);
	CHECK_STR(cfg.disks[0].path, "/r.img");
	CHECK(cfg.disks[0].ro);
	CHECK_STR(cfg.disks[0].id, "rootfs");
	CHECK_STR(cfg.disks[1].path, "/s.img");
	CHECK_STR(cfg.cmdline, "console=ttyS0 root=PARTUUID=0eaa91a0-01 ro");
	CHECK_EQ(cfg.nnets, 1);
	CHECK_STR(cfg.nets[0].tap, "tap7");
	CHECK(!cfg.nets[0].has_mac);
	CHECK(cfg.rng);
	CHECK_EQ(vm.log_level, FC_LOG_ERROR);
	fc_vm_fini(&vm);

	/* Each bad document is refused with its section named. */
	{
		static const struct {
			const char *doc, *says;
		} bad[] = {
			{"{\"boot-source\": ", "line 1"},
			{"[]", "JSON object"},
			{"{\"gpu\": {}}", "unknown section 'gpu'"},
			{"{\"vsock\": {\"guest_cid\": 2, \"uds_path\": \"/v\"}}", "guest_cid"},
			{"{\"vsock\": {\"guest_cid\": 3}}", "uds_path"},
			{"{\"balloon\": {}}", "balloon: missing field 'amount_mib'"},
			{"{\"balloon\": {\"amount_mib\": -64, \"deflate_on_oom\": true}}",
			 "balloon: 'amount_mib'"},
			{"{\"drives\": {}}", "array"},
			{"{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/a\"}]}",
			 "drives[0]"},
			{"{\"network-interfaces\": [{\"iface_id\": \"e\", \"host_dev_name\": \"t\", "
			 "\"x\": 1}]}", "network-interfaces[0]"},
			{"{\"machine-config\": {\"vcpu_count\": 1}}", "mem_size_mib"},
			{"{\"logger\": {\"level\": 3}}", "level"},
			{"{\"a\": 1, \"a\": 2}", "duplicate"},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			fc_vm_init(&vm);
			CHECK(fc_load_config(&vm, bad[i].doc, strlen(bad[i].doc), err,
					     sizeof(err)) < 0);
			CHECK(err_has(bad[i].says));
			fc_vm_fini(&vm);
		}
	}
}

/* PUT /snapshot/load: network_overrides name NICs by iface_id and give each a TAP. */
static struct fc_snapshot_load req;
static char req_state[64], req_mem[64], req_vsock[64]; /* copied before the body goes */

static int load(const char *text)
{
	json_t *j = J(text);
	int ret;

	err[0] = 0;
	memset(&req, 0, sizeof(req));
	ret = fc_snapshot_load(j, &req, err, sizeof(err));
	snprintf(req_state, sizeof(req_state), "%s", ret ? "" : req.state);
	snprintf(req_mem, sizeof(req_mem), "%s", ret ? "" : req.mem);
	snprintf(req_vsock, sizeof(req_vsock), "%s", ret || !req.vsock_path ? "" : req.vsock_path);
	json_decref(j);
	return ret;
}

static void test_snapshot_load(void)
{
#define SNAP "\"snapshot_path\": \"/s/state\", \"mem_file_path\": \"/s/mem\""
	CHECK_EQ(load("{" SNAP "}"), 0);
	CHECK(!strcmp(req_state, "/s/state") && !strcmp(req_mem, "/s/mem"));
	CHECK(!req.resume && !req.clock_realtime && req.nnets == 0);
	CHECK_EQ(load("{" SNAP ", \"resume_vm\": true, \"clock_realtime\": true}"), 0);
	CHECK(req.resume && req.clock_realtime);
	CHECK_EQ(load("{" SNAP ", \"network_overrides\": [{\"iface_id\": \"eth0\", "
		      "\"host_dev_name\": \"tap-clone1\"}, {\"iface_id\": \"net_2\", "
		      "\"host_dev_name\": \"tap-clone2\"}]}"), 0);
	CHECK_EQ(req.nnets, 2);
	CHECK(!strcmp(req.nets[0].id, "eth0") && !strcmp(req.nets[0].tap, "tap-clone1"));
	CHECK(!strcmp(req.nets[1].id, "net_2") && !strcmp(req.nets[1].tap, "tap-clone2"));
	CHECK_EQ(load("{" SNAP ", \"network_overrides\": {}}"), -EINVAL);
	CHECK(err_has("network_overrides"));
	CHECK_EQ(load("{" SNAP ", \"network_overrides\": [{\"iface_id\": \"eth0\"}]}"),
		 -EINVAL);
	CHECK(err_has("host_dev_name"));
	CHECK_EQ(load("{" SNAP ", \"network_overrides\": [{\"iface_id\": \"eth 0\", "
		      "\"host_dev_name\": \"t\"}]}"), -EINVAL);
	CHECK(err_has("eth 0"));
	CHECK_EQ(load("{" SNAP ", \"network_overrides\": [{\"iface_id\": \"eth0\", "
		      "\"host_dev_name\": \"a-tap-name-too-long\"}]}"), -EINVAL);
	CHECK(err_has("not a TAP name"));
	CHECK_EQ(load("{" SNAP ", \"network_overrides\": [{\"iface_id\": \"eth0\", "
		      "\"host_dev_name\": \"t1\"}, {\"iface_id\": \"eth0\", "
		      "\"host_dev_name\": \"t2\"}]}"), -EINVAL);
	CHECK(err_has("given twice"));
	CHECK_EQ(load("{" SNAP ", \"network_overrides\": [{\"iface_id\": \"a\", "
		      "\"host_dev_name\": \"t1\"}, {\"iface_id\": \"b\", \"host_dev_name\": "
		      "\"t2\"}, {\"iface_id\": \"c\", \"host_dev_name\": \"t3\"}, "
		      "{\"iface_id\": \"d\", \"host_dev_name\": \"t4\"}, {\"iface_id\": "
		      "\"e\", \"host_dev_name\": \"t5\"}]}"), -EINVAL);
	CHECK(err_has("at most"));
	CHECK_EQ(load("{" SNAP ", \"vsock_override\": {\"uds_path\": \"/v\"}}"), 0);
	CHECK(!strcmp(req_vsock, "/v"));
	CHECK_EQ(load("{" SNAP ", \"vsock_override\": {\"uds\": \"/v\"}}"), -EINVAL);
	CHECK(err_has("vsock_override"));
	CHECK_EQ(load("{" SNAP ", \"vsock_override\": {\"uds_path\": \"\"}}"), -EINVAL);
	CHECK(err_has("uds_path"));
#undef SNAP
}

/* The balloon: PUT's fields and bounds, PATCH's target within the RAM, the statistics interval
 * that cannot turn statistics on or off, GET's JSON, the config file's section, InstanceStart's
 * check of the target against mem_size_mib; a refused body changes nothing. */
static void test_balloon(void)
{
	struct vm_config base = {.accel = ACCEL_DBT}, cfg;
	struct fc_vm vm;
	json_t *j;

	fc_vm_init(&vm);
	CHECK(fc_balloon_json(&vm, err, sizeof(err)) == NULL && err_has("no balloon"));
	CHECK(PUT(fc_patch_balloon, &vm, "{\"amount_mib\": 1}") < 0 && err_has("no balloon"));
	CHECK(PUT(fc_patch_balloon_stats, &vm, "{\"stats_polling_interval_s\": 1}") < 0 &&
	      err_has("no balloon"));
	CHECK(PUT(fc_put_balloon, &vm, "{\"amount_mib\": -1, \"deflate_on_oom\": true}") < 0 &&
	      err_has("'amount_mib' must be a non-negative integer"));
	CHECK(PUT(fc_put_balloon, &vm, "{\"amount_mib\": \"64\", \"deflate_on_oom\": true}") <
		      0 && err_has("'amount_mib'"));
	CHECK(PUT(fc_put_balloon, &vm, "{\"amount_mib\": 1.5, \"deflate_on_oom\": true}") < 0 &&
	      err_has("'amount_mib'"));
	CHECK(PUT(fc_put_balloon, &vm, "{\"amount_mib\": 9223372036854775807, "
		  "\"deflate_on_oom\": true}") < 0 && err_has("amount_mib"));
	CHECK(PUT(fc_put_balloon, &vm, "{\"amount_mib\": 64}") < 0 &&
	      err_has("missing field 'deflate_on_oom'"));
	CHECK(PUT(fc_put_balloon, &vm, "{\"amount_mib\": 64, \"deflate_on_oom\": 1}") < 0 &&
	      err_has("'deflate_on_oom' must be a boolean"));
	CHECK(PUT(fc_put_balloon, &vm, "{\"amount_mib\": 64, \"deflate_on_oom\": true, "
		  "\"stats_polling_interval_s\": 65536}") < 0 &&
	      err_has("stats_polling_interval_s 65536"));
	CHECK(PUT(fc_put_balloon, &vm, "{\"amount_mib\": 64, \"deflate_on_oom\": true, "
		  "\"stats_polling_interval_s\": -1}") < 0 && err_has("stats_polling_interval_s"));
	CHECK(PUT(fc_put_balloon, &vm, "{\"amount_mib\": 64, \"deflate_on_oom\": true, "
		  "\"free_page_hinting\": true}") < 0 && err_has("free_page_hinting"));
	CHECK(PUT(fc_put_balloon, &vm, "{\"amount_mib\": 64, \"deflate_on_oom\": true, "
		  "\"size\": 1}") < 0 && err_has("unknown field 'size'"));
	CHECK(!vm.balloon.on);
	CHECK_EQ(PUT(fc_put_balloon, &vm, "{\"amount_mib\": 64, \"deflate_on_oom\": true, "
		     "\"stats_polling_interval_s\": 2, \"free_page_reporting\": true, "
		     "\"free_page_hinting\": false}"), 0);
	CHECK(vm.balloon.on && vm.balloon.amount_mib == 64 && vm.balloon.deflate_on_oom &&
	      vm.balloon.stats_interval_s == 2 && vm.balloon.free_page_reporting);
	j = fc_balloon_json(&vm, err, sizeof(err));
	CHECK(j && json_integer_value(json_object_get(j, "amount_mib")) == 64 &&
	      json_is_true(json_object_get(j, "deflate_on_oom")) &&
	      json_integer_value(json_object_get(j, "stats_polling_interval_s")) == 2);
	json_decref(j);

	/* PATCH: the target within the RAM (128 MiB by default); the interval stays non-zero. */
	CHECK(PUT(fc_patch_balloon, &vm, "{\"amount_mib\": 129}") < 0 &&
	      err_has("more than the guest's 128 MiB"));
	CHECK(PUT(fc_patch_balloon, &vm, "{\"amount_mib\": -5}") < 0 && err_has("amount_mib"));
	CHECK(PUT(fc_patch_balloon, &vm, "{\"amount_mib\": 1, \"deflate_on_oom\": false}") < 0 &&
	      err_has("unknown field 'deflate_on_oom'"));
	CHECK_EQ(vm.balloon.amount_mib, 64);
	CHECK_EQ(PUT(fc_patch_balloon, &vm, "{\"amount_mib\": 128}"), 0);
	CHECK_EQ(vm.balloon.amount_mib, 128);
	CHECK(PUT(fc_patch_balloon_stats, &vm, "{\"stats_polling_interval_s\": 0}") < 0 &&
	      err_has("cannot turn statistics off"));
	CHECK(PUT(fc_patch_balloon_stats, &vm, "{\"stats_polling_interval_s\": true}") < 0 &&
	      err_has("'stats_polling_interval_s' must be"));
	CHECK_EQ(PUT(fc_patch_balloon_stats, &vm, "{\"stats_polling_interval_s\": 7}"), 0);
	CHECK_EQ(vm.balloon.stats_interval_s, 7);

	/* InstanceStart: the target within mem_size_mib, the balloon in the configuration. */
	vm.kernel = strdup("/k");
	CHECK_EQ(machine(&vm, "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", false), 0);
	CHECK(fc_vm_to_config(&vm, &base, &cfg, err, sizeof(err)) < 0 &&
	      err_has("amount_mib 128 is more than the guest's 64 MiB"));
	CHECK_EQ(machine(&vm, "{\"vcpu_count\": 1, \"mem_size_mib\": 256}", false),
		 0);
	CHECK_EQ(fc_vm_to_config(&vm, &base, &cfg, err, sizeof(err)), 0);
	CHECK(cfg.balloon.on && cfg.balloon.amount_mib == 128 && cfg.balloon.stats_interval_s == 7);
	fc_vm_fini(&vm);

	/* The config file's section, and a statistics interval of 0 that stays 0. */
	{
		static const char doc[] = "{\"balloon\": {\"amount_mib\": 0, \"deflate_on_oom\": "
					  "false}}";

		fc_vm_init(&vm);
		CHECK_EQ(fc_load_config(&vm, doc, strlen(doc), err, sizeof(err)), 0);
		CHECK(vm.balloon.on && vm.balloon.amount_mib == 0 && !vm.balloon.deflate_on_oom);
		CHECK(PUT(fc_patch_balloon_stats, &vm, "{\"stats_polling_interval_s\": 1}") < 0 &&
		      err_has("cannot turn statistics on"));
		fc_vm_fini(&vm);
	}
}

int main(void)
{
	test_snapshot_load();
	test_machine_config();
	test_balloon();
	test_devices();
	test_rate_limiters();
	test_mmds();
	test_config_file();
	return t_done();
}
