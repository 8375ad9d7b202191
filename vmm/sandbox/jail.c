/* jail.c: namespaces, cgroup, rlimits and credentials around one mvm process (sandbox/jail.h). */
#define pr_fmt(fmt) "jail: " fmt
#include "sandbox/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define CGROUP_ROOT	    "/sys/fs/cgroup"
#define CGROUP2_SUPER_MAGIC 0x63677270

static int parse_id(const char *s, const char *end, unsigned long *out)
{
	char *stop;
	unsigned long v;

	if (s == end || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &stop, 10);
	if (errno || stop != end || v == 0 || v >= UINT_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

int jail_parse_ids(struct jail_config *j, const char *arg)
{
	const char *colon = strchr(arg, ':');
	unsigned long uid, gid;

	if (!colon || parse_id(arg, colon, &uid) || parse_id(colon + 1, colon + strlen(colon), &gid))
		return -EINVAL;
	j->uid = (uid_t)uid;
	j->gid = (gid_t)gid;
	return 0;
}

bool jail_cgroup_name_ok(const char *name)
{
	const char *c = name;

	if (!*name || *name == '/' || strlen(name) > 200)
		return false;
	while (*c) {
		const char *end = strchr(c, '/');
		size_t len = end ? (size_t)(end - c) : strlen(c);

		if (!len || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		for (size_t i = 0; i < len; i++)
			if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
			      (c[i] >= '0' && c[i] <= '9') || c[i] == '.' || c[i] == '_' ||
			      c[i] == '-'))
				return false;
		c += len + (end ? 1 : 0);
		if (end && !*c)
			return false; /* trailing slash */
	}
	return true;
}

static void close_inherited(void)
{
	/* Before mvm opens anything: whatever is above stderr came from our parent. */
	if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
		return;
	for (int fd = 3; fd < 65536; fd++)
		close(fd);
}

static int join_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		pr_err("network namespace '%s': %s", path, strerror(errno));
		return -errno;
	}
	if (setns(fd, CLONE_NEWNET)) {
		int ret = -errno;

		pr_err("joining the network namespace '%s': %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	close(fd);
	return 0;
}

/* Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup, or on hosts that still mount v1
 * controllers there, the "unified" hierarchy beside them (/proc/self/mounts says). */
static int cgroup2_root(char *out, size_t size)
{
	struct statfs sfs;
	char line[512], dev[128], dir[256], type[64];
	FILE *f;

	if (!statfs(CGROUP_ROOT, &sfs) && sfs.f_type == CGROUP2_SUPER_MAGIC) {
		snprintf(out, size, "%s", CGROUP_ROOT);
		return 0;
	}
	f = fopen("/proc/self/mounts", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %255s %63s", dev, dir, type) == 3 &&
		    !strcmp(type, "cgroup2")) {
			snprintf(out, size, "%s", dir);
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return -ENOENT;
}

static int join_cgroup(const char *name)
{
	char root[256], path[PATH_MAX];
	int fd;

	if (cgroup2_root(root, sizeof(root))) {
		pr_err("no cgroup v2 hierarchy is mounted: --jail-cgroup needs one");
		return -ENOTSUP;
	}
	snprintf(path, sizeof(path), "%s/%s", root, name);
	if (mkdir(path, 0755) && errno != EEXIST) {
		pr_err("creating cgroup %s: %s", path, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/%s/cgroup.procs", root, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0\n", 2) != 2) {
		int ret = -errno;

		pr_err("joining cgroup %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	close(fd);
	return 0;
}

/* The given gid and uid, no supplementary groups, every capability gone for good (the
 * bounding set too: CAP_SETPCAP, still held, allows emptying it; EINVAL past the kernel's last
 * capability), no_new_privs. */
static int drop_privileges(const struct jail_config *j)
{
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL) {
			pr_err("PR_CAPBSET_DROP(%d): %s", cap, strerror(errno));
			return -errno;
		}
	if (setgroups(0, NULL) || setresgid(j->gid, j->gid, j->gid) ||
	    setresuid(j->uid, j->uid, j->uid)) {
		pr_err("dropping to uid %u gid %u: %s", (unsigned int)j->uid, (unsigned int)j->gid,
		       strerror(errno));
		return -errno;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		pr_err("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* The parent of a new PID namespace: relays the stopping signals, returns the child's status
 * as a shell would report it. */
static int wait_child(pid_t child)
{
	sigset_t set;
	struct timespec tick = {0, 100 * 1000 * 1000};
	int st;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		int sig = sigtimedwait(&set, NULL, &tick);
		pid_t w;

		if (sig > 0)
			kill(child, sig);
		w = waitpid(child, &st, WNOHANG);
		if (w == child)
			break;
		if (w < 0 && errno != EINTR)
			return 70;
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int jail_prepare(const struct jail_config *j, int *status)
{
	int ret;

	if (geteuid() != 0) {
		pr_err("--jail needs root (it creates namespaces and changes user); mvm runs as "
		       "uid %u", (unsigned int)geteuid());
		return -EPERM;
	}
	close_inherited();
	if (j->netns && (ret = join_netns(j->netns)))
		return ret;
	if (j->pidns) {
		pid_t child;

		if (unshare(CLONE_NEWPID)) {
			pr_err("unshare(CLONE_NEWPID): %s", strerror(errno));
			return -errno;
		}
		child = fork();
		if (child < 0) {
			pr_err("fork: %s", strerror(errno));
			return -errno;
		}
		if (child > 0) {
			/* The parent only waits and relays signals: it needs no privilege either. */
			if (drop_privileges(j)) {
				kill(child, SIGKILL);
				*status = 70;
				return 1;
			}
			*status = wait_child(child);
			return 1;
		}
		/* PID 1 of the new namespace: dies with the parent. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	}
	if (j->cgroup && (ret = join_cgroup(j->cgroup)))
		return ret;
	return 0;
}

/* The root becomes an empty, read-only tmpfs; the host's tree is detached. */
static int empty_root(void)
{
	static const char *const steps[] = {"unshare", "make / private", "mount tmpfs",
					    "mkdir", "pivot_root", "chdir", "detach old root",
					    "rmdir", "remount read-only"};
	const char *base = "/tmp";
	int step = 0;

	if (unshare(CLONE_NEWNS))
		goto fail;
	step++;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		goto fail;
	step++;
	if (mount("mvm-jail", base, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=16k,nr_inodes=8,mode=0755"))
		goto fail;
	step++;
	if (mkdir("/tmp/old", 0700))
		goto fail;
	step++;
	if (syscall(SYS_pivot_root, base, "/tmp/old"))
		goto fail;
	step++;
	if (chdir("/"))
		goto fail;
	step++;
	if (umount2("/old", MNT_DETACH))
		goto fail;
	step++;
	if (rmdir("/old"))
		goto fail;
	step++;
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL))
		goto fail;
	return 0;
fail:
	pr_err("empty root (%s): %s", steps[step], strerror(errno));
	return -errno;
}

static int set_limit(int resource, rlim_t value, const char *name)
{
	struct rlimit r = {value, value};

	if (setrlimit(resource, &r)) {
		pr_err("setrlimit(%s, %llu): %s", name, (unsigned long long)value, strerror(errno));
		return -errno;
	}
	return 0;
}

int jail_enter(const struct jail_config *j)
{
	int ret;

	/* What libc would read from the host's files later (the time zone), read now. */
	tzset();
	ret = empty_root();
	if (!ret)
		ret = set_limit(RLIMIT_NOFILE, j->nofile ? j->nofile : JAIL_DEFAULT_NOFILE,
				"RLIMIT_NOFILE");
	if (!ret)
		ret = set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE");
	if (ret)
		return ret;
	ret = drop_privileges(j);
	if (ret)
		return ret;
	pr_info("jailed: uid %u gid %u, empty root, no capabilities%s%s%s",
		(unsigned int)j->uid, (unsigned int)j->gid, j->pidns ? ", own PID namespace" : "",
		j->netns ? ", network namespace " : "", j->netns ? j->netns : "");
	return 0;
}
