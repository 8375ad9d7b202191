/* fuzz_options.c: libFuzzer target for the command-line parser (cli/options.c, compiled into
 * this target: it is pure). The input is argv after "mvm": arguments separated by NUL bytes,
 * each copied into a heap buffer of exactly its size (ASan catches a read past any of them).
 * Whatever the arguments, options_parse() must return 0 or -EINVAL with a non-empty message
 * terminated inside the error buffer, and a successful parse must stay within the
 * limits options.h promises; the target aborts otherwise. */
#include <errno.h>
#include <sanitizer/common_interface_defs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#define ARGS_MAX 64
#define ERR_LEN	 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_options: invariant broken: %s\n", why);
	/* Also where libFuzzer reports, which -close_fd_mask=2 leaves open. */
	__sanitizer_report_error_summary(why);
	abort();
}

static void check_limit(const struct rl_config *c)
{
	if (tb_config_check(&c->bw) || tb_config_check(&c->ops))
		fail("a rate limit the token bucket refuses");
	if ((c->bw.size && !c->bw.refill_ms) || (c->ops.size && !c->ops.refill_ms))
		fail("a rate limit with a zero refill time");
}

static void check(const struct vm_config *cfg)
{
	if (cfg->command != CMD_RUN)
		return;
	/* --restore takes the machine, the kernel included, from the snapshot. */
	if ((!cfg->kernel && !cfg->restore_state) || !cfg->cmdline)
		fail("a run without kernel (or snapshot) or command line");
	if ((cfg->restore_state && (!memchr(cfg->restore_paths[0], 0, MVM_DISK_PATH_MAX) ||
				    !memchr(cfg->restore_paths[1], 0, MVM_DISK_PATH_MAX))) ||
	    (cfg->snapshot_state && (!memchr(cfg->snapshot_paths[0], 0, MVM_DISK_PATH_MAX) ||
				     !memchr(cfg->snapshot_paths[1], 0, MVM_DISK_PATH_MAX))))
		fail("snapshot paths not terminated");
	if (cfg->restore_state && (cfg->kernel || cfg->vsock.on))
		fail("--restore with a kernel or a vsock");
	if (cfg->cpus < 1 || cfg->cpus > MVM_MAX_CPUS)
		fail("cpus out of range");
	if (cfg->ndisks > MVM_MAX_DISKS || cfg->nnets > MVM_MAX_NETS)
		fail("too many disks or NICs");
	if (cfg->ndisks + cfg->nnets + (cfg->console == CONSOLE_VIRTIO) + cfg->rng + cfg->vsock.on +
		    cfg->balloon.on >
	    MVM_MAX_VIRTIO)
		fail("more virtio devices than slots");
	if (cfg->balloon.on && ((uint64_t)cfg->balloon.amount_mib << 20 > cfg->mem ||
				cfg->balloon.stats_interval_s > MVM_BALLOON_STATS_MAX))
		fail("a balloon target beyond the guest's RAM or an interval beyond 65535 s");
	for (unsigned int i = 0; i < cfg->ndisks; i++)
		if (!memchr(cfg->disks[i].path, 0, sizeof(cfg->disks[i].path)) ||
		    !memchr(cfg->disks[i].id, 0, sizeof(cfg->disks[i].id)))
			fail("disk path or id not terminated");
	for (unsigned int i = 0; i < cfg->nnets; i++)
		if (!memchr(cfg->nets[i].tap, 0, sizeof(cfg->nets[i].tap)) || !cfg->nets[i].tap[0])
			fail("TAP name empty or not terminated");
	if (cfg->console == CONSOLE_FILE && !cfg->console_path)
		fail("console file without a path");
	/* Every rate limit accepted is one the token bucket takes (core/token_bucket.h). */
	for (unsigned int i = 0; i < cfg->ndisks; i++)
		check_limit(&cfg->disks[i].limit);
	for (unsigned int i = 0; i < cfg->nnets; i++) {
		check_limit(&cfg->nets[i].rx_limit);
		check_limit(&cfg->nets[i].tx_limit);
	}
	check_limit(&cfg->rng_limit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[ARGS_MAX + 2];
	int argc = 0, ret;
	struct vm_config cfg;
	char err[ERR_LEN];
	size_t start = 0;

	argv[argc++] = strdup("mvm");
	for (size_t i = 0; i <= size && argc <= ARGS_MAX; i++) {
		if (i < size && data[i])
			continue;
		argv[argc] = malloc(i - start + 1);
		if (!argv[argc])
			abort();
		memcpy(argv[argc], data + start, i - start);
		argv[argc++][i - start] = 0;
		start = i + 1;
	}
	argv[argc] = NULL;

	memset(err, 0x55, sizeof(err));
	ret = options_parse(argc, argv, &cfg, err, sizeof(err));
	if (ret != 0 && ret != -EINVAL)
		fail("options_parse returned something else than 0 or -EINVAL");
	if (ret && (!memchr(err, 0, sizeof(err)) || !err[0]))
		fail("error message empty or not terminated");
	if (!ret)
		check(&cfg);
	/* options_parse() resets getopt's state: a second parse of the same argv agrees. */
	if (options_parse(argc, argv, &cfg, err, sizeof(err)) != ret)
		fail("a second parse of the same argv disagrees");
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return 0;
}
