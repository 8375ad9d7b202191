/* fc_api.h: mvm as Firecracker: its API on a Unix socket and its --config-file, building the
 * VM through the same composition root as `mvm run` (cli/machine.h). docs/firecracker-api.md
 * lists the calls, fields and differences. */
#ifndef MVM_API_FC_API_H
#define MVM_API_FC_API_H

#include "options.h"

/* Runs mvm as `firecracker --api-sock ...` would run, on the calling (main) thread, until the
 * guest stops or a signal arrives; returns the process exit status. (cfg) is CMD_FIRECRACKER
 * (cfg->fc) with the accelerator, seccomp and console choices every VM it builds takes. */
int fc_main(const struct vm_config *cfg);

#endif
