/* fuzz_fc_config.c: libFuzzer target for Firecracker's configuration bodies and config file
 * (api/fc_config.c, compiled into this target: it is pure). The input is a sequence of records
 * [op][id][len lo][len hi][len bytes of body] applied in turn to one struct fc_vm, as a client
 * would send API calls (op 12 loads the body as a whole config file instead; op 13 is PATCH
 * /network-interfaces, 14 PUT /snapshot/load, 15-17 the balloon's PUT, PATCH and PATCH
 * /balloon/statistics). Whatever the
 * bodies, each call returns 0 or -EINVAL with a message, the configuration keeps Firecracker's
 * and mvm's limits (one root drive, at most 8 drives and 4 NICs, ids and TAP names terminated,
 * vCPUs 1-32, memory within mvm's range, no two NICs on one TAP, every rate limiter one the
 * token bucket takes, each drive's index within the config), and the struct vm_config
 * built from it stays within what options.h promises; the target aborts otherwise. */
#include <errno.h>
#include <sanitizer/common_interface_defs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layout.h"
#include "fc_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_fc_config: invariant broken: %s\n", why);
	__sanitizer_report_error_summary(why);
	abort();
}

static void check_limit(const struct rl_config *c)
{
	if (tb_config_check(&c->bw) || tb_config_check(&c->ops))
		fail("a rate limiter the token bucket refuses");
}

static void check_vm(const struct fc_vm *vm)
{
	unsigned int roots = 0;

	check_limit(&vm->entropy_limit);

	if (vm->vcpus < 1 || vm->vcpus > FC_MAX_VCPUS)
		fail("vcpus out of range");
	if ((uint64_t)vm->mem_mib << 20 < LAYOUT_RAM_MIN ||
	    (uint64_t)vm->mem_mib << 20 > LAYOUT_RAM_MAX)
		fail("memory out of range");
	if (vm->ndrives > MVM_MAX_DISKS || vm->nnets > MVM_MAX_NETS)
		fail("too many drives or NICs");
	for (unsigned int i = 0; i < vm->ndrives; i++) {
		roots += vm->drives[i].root;
		if (!memchr(vm->drives[i].id, 0, sizeof(vm->drives[i].id)) || !vm->drives[i].path ||
		    !vm->drives[i].path[0])
			fail("a drive without a terminated id or a path");
		check_limit(&vm->drives[i].limit);
		if (fc_drive_index(vm, vm->drives[i].id) < 0 ||
		    fc_drive_index(vm, vm->drives[i].id) >= (int)vm->ndrives)
			fail("a drive index outside the drives");
	}
	if (roots > 1)
		fail("two root drives");
	if (vm->balloon.on && ((uint64_t)vm->balloon.amount_mib << 20 > LAYOUT_RAM_MAX ||
			       vm->balloon.stats_interval_s > MVM_BALLOON_STATS_MAX))
		fail("a balloon target beyond any RAM or an interval beyond 65535 s");
	for (unsigned int i = 0; i < vm->nnets; i++) {
		if (!memchr(vm->nets[i].tap, 0, sizeof(vm->nets[i].tap)) || !vm->nets[i].tap[0])
			fail("a TAP name empty or not terminated");
		check_limit(&vm->nets[i].rx_limit);
		check_limit(&vm->nets[i].tx_limit);
		for (unsigned int j = 0; j < i; j++)
			if (!strcmp(vm->nets[i].tap, vm->nets[j].tap))
				fail("two NICs on one TAP");
	}
}

static void check_config(const struct vm_config *cfg)
{
	if (!cfg->kernel || !cfg->cmdline || strlen(cfg->cmdline) > 2048)
		fail("no kernel, or no or an overlong command line");
	if (cfg->cpus < 1 || cfg->cpus > FC_MAX_VCPUS)
		fail("cpus out of range");
	if (cfg->ndisks + cfg->nnets + cfg->rng + cfg->vsock.on + cfg->balloon.on > MVM_MAX_VIRTIO)
		fail("more virtio devices than slots");
	if (cfg->balloon.on && (uint64_t)cfg->balloon.amount_mib << 20 > cfg->mem)
		fail("a balloon target beyond the guest's RAM");
	for (unsigned int i = 0; i < cfg->ndisks; i++)
		if (!memchr(cfg->disks[i].path, 0, sizeof(cfg->disks[i].path)) ||
		    !memchr(cfg->disks[i].id, 0, sizeof(cfg->disks[i].id)))
			fail("disk path or id not terminated");
	for (unsigned int i = 0; i < cfg->ndisks; i++)
		check_limit(&cfg->disks[i].limit);
	check_limit(&cfg->rng_limit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ids[] = {"rootfs", "data", "eth0", "a_1"};
	struct vm_config base = {.console = CONSOLE_STDIO}, cfg;
	struct fc_vm vm;
	char err[512];
	size_t at = 0;

	fc_vm_init(&vm);
	while (at + 4 <= size) {
		unsigned int op = data[at] % 18, len = data[at + 2] | data[at + 3] << 8;
		const char *id = ids[data[at + 1] % 4], *path;
		json_error_t jerr;
		json_t *body;
		bool flag[2];
		int ret = 0;

		at += 4;
		if (len > size - at)
			len = (unsigned int)(size - at);
		err[0] = 0;
		if (op == 12) {
			ret = fc_load_config(&vm, (const char *)data + at, len, err, sizeof(err));
			at += len;
			goto checked;
		}
		/* As the API thread parses bodies. */
		body = json_loadb((const char *)data + at, len,
				  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
		at += len;
		if (!body)
			continue;
		switch (op) {
		case 0: ret = fc_put_machine_config(&vm, body, false, err, sizeof(err)); break;
		case 1: ret = fc_put_machine_config(&vm, body, true, err, sizeof(err)); break;
		case 2: ret = fc_put_boot_source(&vm, body, err, sizeof(err)); break;
		case 3: ret = fc_put_drive(&vm, id, body, err, sizeof(err)); break;
		case 4: ret = fc_put_net(&vm, id, body, err, sizeof(err)); break;
		case 5: ret = fc_put_logger(&vm, body, err, sizeof(err)); break;
		case 6: ret = fc_put_metrics(&vm, body, err, sizeof(err)); break;
		case 7: ret = fc_put_entropy(&vm, body, err, sizeof(err)); break;
		case 8: ret = fc_put_mmds(&vm, body, false, 4096, err, sizeof(err)); break;
		case 9: ret = fc_put_mmds(&vm, body, true, 4096, err, sizeof(err)); break;
		case 10: ret = fc_put_mmds_config(&vm, body, err, sizeof(err)); break;
		case 11:
			ret = fc_patch_drive(&vm, id, body, &path, &flag[0], err, sizeof(err));
			break;
		case 13: ret = fc_patch_net(&vm, id, body, &flag[0], &flag[1], err, sizeof(err)); break;
		case 14: {
			struct fc_snapshot_load req = {0};

			ret = fc_snapshot_load(body, &req, err, sizeof(err));
			if (!ret && (!req.state || !req.mem || req.nnets > MVM_MAX_NETS))
				fail("a snapshot load without paths or with too many overrides");
			for (unsigned int i = 0; !ret && i < req.nnets; i++)
				if (!memchr(req.nets[i].id, 0, sizeof(req.nets[i].id)) ||
				    !req.nets[i].id[0] ||
				    !memchr(req.nets[i].tap, 0, sizeof(req.nets[i].tap)) ||
				    !req.nets[i].tap[0])
					fail("a network override's id or TAP empty or unterminated");
			break;
		}
		case 15: ret = fc_put_balloon(&vm, body, err, sizeof(err)); break;
		case 16: ret = fc_patch_balloon(&vm, body, err, sizeof(err)); break;
		case 17: ret = fc_patch_balloon_stats(&vm, body, err, sizeof(err)); break;
		}
		json_decref(body);
checked:
		if (ret && (ret != -EINVAL || !err[0] || !memchr(err, 0, sizeof(err))))
			fail("an error without -EINVAL and a message");
		check_vm(&vm);
	}
	if (!fc_vm_to_config(&vm, &base, &cfg, err, sizeof(err)))
		check_config(&cfg);
	fc_vm_fini(&vm);
	return 0;
}
