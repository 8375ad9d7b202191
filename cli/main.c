/* main.c: the mvm executable: which front end builds the VM (the command line's `mvm run`, or
 * Firecracker's API socket and config file), then the composition root (machine.c) runs it. */
#define pr_fmt(fmt) fmt
#include <errno.h>
#include <stdio.h>

#include "fc_api.h"
#include "fc_config.h"
#include "machine.h"
#include "options.h"
#include "sandbox/jail.h"
#include "util/log.h"

int main(int argc, char **argv)
{
	struct vm_config cfg;
	char err[256];

	log_init_from_env();
	if (options_parse(argc, argv, &cfg, err, sizeof(err))) {
		fprintf(stderr, "mvm: %s\nTry 'mvm --help' for more information.\n", err);
		return MVM_EXIT_USAGE;
	}
	switch (cfg.command) {
	case CMD_HELP:
		fputs(options_usage, stdout);
		return MVM_EXIT_OK;
	case CMD_VERSION:
		printf("mvm %s (Firecracker API %s)\n", MVM_VERSION, FC_API_VERSION);
		return MVM_EXIT_OK;
	case CMD_FIRECRACKER:
		return fc_main(&cfg);
	case CMD_RUN:
		break;
	}
	if (cfg.jail.on) {
		int status = 0, ret = jail_prepare(&cfg.jail, &status);

		if (ret > 0)
			return status; /* the parent of a new PID namespace */
		if (ret)
			return ret == -EPERM || ret == -ENOENT ? MVM_EXIT_USAGE : MVM_EXIT_VMM;
	}
	return machine_run(&cfg, NULL);
}
