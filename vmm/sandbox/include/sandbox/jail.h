/* jail.h: the jail around one mvm process, in the spirit of Firecracker's jailer, as options of
 * `mvm run` (--jail UID:GID and friends, README "The sandbox around mvm").
 *
 * Two steps, because mvm opens everything it will ever need before the guest runs (kernel,
 * initrd, disk images, /dev/kvm, TAPs, the console file) and never opens a file afterwards:
 *  1. jail_prepare(), first thing in main(), as root: closes every inherited descriptor above
 *     stderr, joins the given network namespace (TAPs are then created there), and with a new
 *     PID namespace forks: the parent waits, relays SIGINT/SIGTERM/SIGHUP/SIGQUIT and exits with
 *     the child's status; the child (PID 1 there) goes on. The process that goes on joins the
 *     cgroup v2 group, if one is given (created when missing).
 *  2. jail_enter(), once everything is open and before any other thread exists: a private mount
 *     namespace whose root is an empty read-only tmpfs (pivot_root; the host's tree is
 *     detached), so no host file can be opened any more, not even the images; RLIMIT_NOFILE
 *     and RLIMIT_CORE (0: guest memory never lands in a core file); then the given gid and uid
 *     with no supplementary groups, which clears every capability, and no_new_privs.
 * Then the seccomp filters come on (sandbox/seccomp.h). */
#ifndef MVM_SANDBOX_JAIL_H
#define MVM_SANDBOX_JAIL_H

#include <stdbool.h>
#include <sys/types.h>

struct jail_config {
	bool on;			/* --jail given */
	uid_t uid;			/* never 0 */
	gid_t gid;			/* never 0 */
	const char *netns;		/* --jail-netns PATH: join this network namespace */
	bool pidns;			/* --jail-pidns: a new PID namespace */
	const char *cgroup;		/* --jail-cgroup NAME: /sys/fs/cgroup/NAME */
	unsigned long nofile;		/* RLIMIT_NOFILE */
};

#define JAIL_DEFAULT_NOFILE 2048

/* Parses "UID:GID" (decimal, neither 0) into (j). 0 or -EINVAL. */
int jail_parse_ids(struct jail_config *j, const char *arg);
/* A cgroup name: a relative path of [A-Za-z0-9._-] components, no "." or "..". */
bool jail_cgroup_name_ok(const char *name);

/* Step 1 (above). Returns 0 in the process that goes on to run the VM; in the waiting parent
 * of a new PID namespace returns 1 with the child's exit status in (*status); -errno after
 * logging what failed (not root, a namespace that cannot be joined...). */
int jail_prepare(const struct jail_config *j, int *status);

/* Step 2 (above). 0 or -errno after logging. Single-threaded callers only. */
int jail_enter(const struct jail_config *j);

#endif
