/* seccomp.c: the per-role seccomp-BPF allow-lists and how each thread loads its own. */
#define pr_fmt(fmt) "seccomp: " fmt
#include "sandbox/seccomp.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define V (1u << THREAD_VCPU)
#define I (1u << THREAD_IO)
#define C (1u << THREAD_CONTROL)
#define E (1u << THREAD_ENGINE)
#define ALL (V | I | C | E)

/* What a rule checks besides the system call number. */
enum arg_check {
	ARG_ANY,
	ARG_IOCTL,	/* arg 1 is one of the role's requests in ioctls[] */
	ARG_OWN_PID,	/* arg 0 is this process (signals stay inside mvm) */
	ARG_NO_EXEC,	/* arg 2, the protection, lacks PROT_EXEC (no new code) */
	ARG_DONTNEED,	/* arg 2, the advice, is MADV_DONTNEED (what free() gives back) */
};

struct rule {
	const char *name;	/* as libseccomp names it */
	unsigned int roles;	/* V, I, C, E: the threads that may make it */
	enum arg_check check;
};

/* Every system call a thread makes once it has its role, one line each, with the reason.
 * Found with strace -f and log mode over the test suite (KVM and engine, Linux and the test
 * guests, every virtio device, a terminal console, --stats, signals, each way out).
 * V vCPU, I I/O loop, C control (main under KVM), E engine (main under --accel dbt and
 * hybrid, which also runs guest user mode under KVM_RUN). A new call is one more line. */
static const struct rule rules[] = {
	/* Every thread: glibc and the C runtime. */
	{"futex", ALL, ARG_ANY},		/* mutexes, condition variables, joins */
	{"write", ALL, ARG_ANY},		/* log lines, serial console, eventfd signals */
	{"ioctl", ALL, ARG_IOCTL},		/* requests per role: ioctls[] below */
	{"rt_sigprocmask", ALL, ARG_ANY},	/* glibc masks signals around pthread_kill, raise
						 * and thread exit; the hybrid's kick signal */
	{"rt_sigreturn", ALL, ARG_ANY},		/* leaving a signal handler (vCPU kick) */
	{"tgkill", ALL, ARG_OWN_PID},		/* pthread_kill (vCPU and hybrid kicks), raise() */
	{"getpid", ALL, ARG_ANY},		/* pthread_kill and raise() pass it to tgkill */
	{"gettid", ALL, ARG_ANY},		/* raise() on the calling thread */
	{"mmap", ALL, ARG_NO_EXEC},		/* malloc: large blocks, new thread arenas */
	{"mprotect", ALL, ARG_NO_EXEC},		/* malloc: growing a thread arena */
	{"munmap", ALL, ARG_ANY},		/* free(); unmapping guest RAM at exit */
	{"madvise", ALL, ARG_DONTNEED},		/* free() trimming; a stack at thread exit */
	{"brk", ALL, ARG_ANY},			/* malloc's main arena (any thread frees) */
	{"clock_gettime", ALL, ARG_ANY},	/* when the vDSO falls back to the system call */
	{"restart_syscall", ALL, ARG_ANY},	/* a futex wait resumed after a signal */
	{"exit_group", ALL, ARG_ANY},		/* mvm's exit, and the SIGSYS handler's */
	/* Thread-specific. */
	{"exit", V | I, ARG_ANY},		/* the thread returns */
	{"io_uring_enter", I | C | E, ARG_ANY},	/* the loop; devices draining it at exit */
	{"timerfd_settime", I | E, ARG_ANY},	/* the engine's PIT and LAPIC timers */
	{"getrandom", I, ARG_ANY},		/* virtio-rng */
	{"close", C | E, ARG_ANY},		/* tearing the machine down */
	{"rt_sigtimedwait", E, ARG_ANY},	/* hybrid: taking a kick that missed KVM_RUN */
};

struct ioctl_rule {
	unsigned long request;
	unsigned int roles;
};

/* The ioctl requests each role issues (grep ioctl( in vmm/kvm/, virtio/, cli/). The fd is not
 * checked: these numbers belong to KVM, TUN and the TTY layer only. */
static const struct ioctl_rule ioctls[] = {
	{KVM_RUN, V | E},			/* running the vCPU (hybrid: guest user mode) */
	{KVM_GET_REGS, V},			/* emulation, SYSCALL trap, register dumps */
	{KVM_SET_REGS, V},
	{KVM_GET_SREGS, V},
	{KVM_SET_SREGS, V},
	{KVM_GET_MSRS, V | E},			/* SYSCALL trap (LSTAR, STAR, ...), emulation */
	{KVM_SET_MSRS, V | E},
	{KVM_GET_VCPU_EVENTS, V},		/* injecting the faults emulation raises */
	{KVM_SET_VCPU_EVENTS, V},
	{KVM_GET_DEBUGREGS, V},			/* DR6.BS of the single-step trap after an */
	{KVM_SET_DEBUGREGS, V},			/* emulated instruction */
	{KVM_GET_XSAVE, V | E},			/* emulated SSE/AVX/x87/XSAVE state; hybrid: */
	{KVM_SET_XSAVE, V | E},			/* FPU state across user/kernel mode */
	{KVM_GET_XCRS, V},			/* XCR0 for emulated XSAVE/XGETBV */
	{KVM_SET_XCRS, V},
	{KVM_SET_USER_MEMORY_REGION, E},	/* hybrid: the trap window's slots */
	{KVM_SET_SIGNAL_MASK, E},		/* hybrid: kicks only inside KVM_RUN (1st run) */
	{KVM_IRQ_LINE, V | I},			/* serial IRQ: guest writes (V), input (I) */
	{TUNSETOFFLOAD, I},			/* virtio-net: the offloads the driver took */
	{TCGETS, ALL},				/* term.c restores the terminal (exit, fatal */
	{TCSETSF, ALL},				/* signal): tcsetattr() reads, then writes */
};

static struct {
	enum sandbox_seccomp mode;
	enum thread_role selftest;		/* THREAD_ROLES: none */
	pid_t pid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool control_ready;			/* THREAD_CONTROL has its filter: vCPUs run */
	int control_ret;
	/* Each role's program, built by its first thread. */
	struct sock_filter prog[THREAD_ROLES][1024];
	unsigned short len[THREAD_ROLES];
} sb = {
	.mode = SANDBOX_SECCOMP_OFF,
	.selftest = THREAD_ROLES,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static __thread int my_role = -1;

static const char *const syscall_names[] = {
#include "syscall_names.h"
};

/* ---- the SIGSYS handler: async-signal-safe formatting and write(2) only ---- */

static size_t put_str(char *buf, size_t at, size_t size, const char *s)
{
	while (*s && at + 1 < size)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t size, unsigned long long v, bool hex)
{
	char tmp[24];
	int n = 0;

	if (hex)
		at = put_str(buf, at, size, "0x");
	do {
		unsigned int d = (unsigned int)(v % (hex ? 16 : 10));

		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= hex ? 16 : 10;
	} while (v);
	while (n && at + 1 < size)
		buf[at++] = tmp[--n];
	return at;
}

static void sigsys_handler(int sig, siginfo_t *si, void *ctx)
{
	const ucontext_t *uc = ctx;
	const greg_t *r = uc->uc_mcontext.gregs;
	const unsigned long long args[] = {r[REG_RDI], r[REG_RSI], r[REG_RDX], r[REG_R10]};
	unsigned int nr = (unsigned int)si->si_syscall;
	char buf[320];
	size_t n = 0;

	n = put_str(buf, n, sizeof(buf), "mvm: seccomp: the ");
	n = put_str(buf, n, sizeof(buf),
		    my_role >= 0 ? thread_role_name((enum thread_role)my_role) : "unnamed");
	n = put_str(buf, n, sizeof(buf), " thread made system call ");
	n = put_num(buf, n, sizeof(buf), nr, false);
	if (nr < ARRAY_SIZE(syscall_names) && syscall_names[nr]) {
		n = put_str(buf, n, sizeof(buf), " (");
		n = put_str(buf, n, sizeof(buf), syscall_names[nr]);
		n = put_str(buf, n, sizeof(buf), ")");
	}
	n = put_str(buf, n, sizeof(buf), " with arguments");
	for (unsigned int i = 0; i < ARRAY_SIZE(args); i++) {
		n = put_str(buf, n, sizeof(buf), i ? ", " : " ");
		n = put_num(buf, n, sizeof(buf), args[i], true);
	}
	n = put_str(buf, n, sizeof(buf), ", which its seccomp allow-list does not permit; "
		    "stopping (--seccomp log finds every such call)\n");
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* Nothing left to tell it to. */
	}
	_exit(SANDBOX_EXIT_SECCOMP);
}

/* ---- building the filters ---- */

/* libseccomp's SCMP_A<n>() leave datum_b out, which clang's -Wextra reports. For
 * SCMP_CMP_MASKED_EQ (a) is the mask and (b) the value. */
static struct scmp_arg_cmp cmp(unsigned int arg, enum scmp_compare op, scmp_datum_t a,
			       scmp_datum_t b)
{
	return (struct scmp_arg_cmp){.arg = arg, .op = op, .datum_a = a, .datum_b = b};
}

static int add_rule(scmp_filter_ctx f, enum thread_role role, const struct rule *r)
{
	int nr = seccomp_syscall_resolve_name(r->name);
	int ret = 0;

	if (nr == __NR_SCMP_ERROR) {
		pr_err("libseccomp does not know system call '%s'", r->name);
		return -EINVAL;
	}
	switch (r->check) {
	case ARG_ANY:
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 0);
	case ARG_IOCTL:
		for (unsigned int i = 0; i < ARRAY_SIZE(ioctls) && !ret; i++)
			if (ioctls[i].roles & (1u << role))
				ret = seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
						       cmp(1, SCMP_CMP_EQ, ioctls[i].request, 0));
		return ret;
	case ARG_OWN_PID:
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
					cmp(0, SCMP_CMP_EQ, (scmp_datum_t)sb.pid, 0));
	case ARG_NO_EXEC:
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
					cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	case ARG_DONTNEED:
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
					cmp(2, SCMP_CMP_EQ, MADV_DONTNEED, 0));
	}
	return -EINVAL;
}

/* Builds (role)'s program into sb.prog[role]. sb.lock held. */
static int build(enum thread_role role)
{
	struct timespec t0, t1;
	uint32_t deny = sb.mode == SANDBOX_SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
	scmp_filter_ctx f;
	int fd = -1, ret = -ENOMEM;
	ssize_t len;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	f = seccomp_init(deny);
	if (!f)
		goto out;
	/* Another architecture's system call numbers (x32 included) mean nothing here. */
	ret = seccomp_attr_set(f, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	for (unsigned int i = 0; i < ARRAY_SIZE(rules) && !ret; i++)
		if (rules[i].roles & (1u << role))
			ret = add_rule(f, role, &rules[i]);
	if (ret) {
		pr_err("building the %s thread's filter: %s", thread_role_name(role),
		       strerror(-ret));
		goto out;
	}
	/* libseccomp 2.5 exports a program only to a file descriptor. */
	fd = memfd_create("mvm-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("memfd_create: %s", strerror(errno));
		goto out;
	}
	ret = seccomp_export_bpf(f, fd);
	if (ret) {
		pr_err("seccomp_export_bpf: %s", strerror(-ret));
		goto out;
	}
	len = pread(fd, sb.prog[role], sizeof(sb.prog[role]), 0);
	if (len <= 0 || len % sizeof(struct sock_filter) || len == sizeof(sb.prog[role])) {
		pr_err("the %s thread's filter: %zd bytes of BPF, at most %zu",
		       thread_role_name(role), len, sizeof(sb.prog[role]) - 1);
		ret = -E2BIG;
		goto out;
	}
	sb.len[role] = (unsigned short)(len / sizeof(struct sock_filter));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pr_debug("the %s thread's filter: %u BPF instructions, built in %lld us",
		 thread_role_name(role), sb.len[role],
		 (long long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	seccomp_release(f);
	return ret;
}

static void selftest(enum thread_role role)
{
	long fd = syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0);

	pr_warn("self-test: socket() on the %s thread returned %ld (allowed: not 'on')",
		thread_role_name(role), fd);
}

/* Loads (prog) on the calling thread, asking the kernel to log what it traps as well
 * (SECCOMP_FILTER_FLAG_LOG, 4.14+). 0 or -1 with errno. */
static int load(const struct sock_fprog *prog)
{
	long ret = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, prog);

	if (ret && errno == EINVAL)
		ret = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog);
	return ret ? -1 : 0;
}

/* The thread_role hook: loads (role)'s filter on the calling thread. */
static int enter(enum thread_role role)
{
	struct sock_fprog fprog;
	int ret = 0;

	pthread_mutex_lock(&sb.lock);
	if (!sb.len[role])
		ret = build(role);
	pthread_mutex_unlock(&sb.lock);
	if (!ret) {
		fprog = (struct sock_fprog){.len = sb.len[role], .filter = sb.prog[role]};
		my_role = (int)role;
		/* Without CAP_SYS_ADMIN a filter needs no_new_privs; it costs nothing here. */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || load(&fprog)) {
			ret = -errno;
			my_role = -1;
			pr_err("loading the %s thread's filter: %s", thread_role_name(role),
			       strerror(errno));
		}
	}
	if (role == THREAD_CONTROL) {
		pthread_mutex_lock(&sb.lock);
		sb.control_ready = true;
		sb.control_ret = ret;
		pthread_cond_broadcast(&sb.cond);
		pthread_mutex_unlock(&sb.lock);
	} else if (role == THREAD_VCPU && !ret) {
		/* No guest code before the thread that waits for the vCPUs has its filter. */
		pthread_mutex_lock(&sb.lock);
		while (!sb.control_ready)
			pthread_cond_wait(&sb.cond, &sb.lock);
		ret = sb.control_ret;
		pthread_mutex_unlock(&sb.lock);
	}
	if (!ret) {
		bool test;

		pthread_mutex_lock(&sb.lock);
		test = role == sb.selftest;
		if (test)
			sb.selftest = THREAD_ROLES; /* the first thread of the role only */
		pthread_mutex_unlock(&sb.lock);
		if (test)
			selftest(role);
	}
	return ret;
}

static bool sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return true;
#endif
#endif
	return false;
}

int sandbox_seccomp_init(enum sandbox_seccomp mode)
{
	static const char *const names[THREAD_ROLES] = {
		[THREAD_VCPU] = "vcpu", [THREAD_IO] = "io", [THREAD_CONTROL] = "control",
		[THREAD_ENGINE] = "engine"};
	struct sigaction sa = {.sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO};
	const char *test = getenv(SANDBOX_SELFTEST_ENV);
	int ret;

	if (mode == SANDBOX_SECCOMP_OFF)
		return 0;
	if (sanitized()) {
		pr_info("off in a sanitizer build (its runtime makes calls no list allows)");
		return 0;
	}
	for (unsigned int r = 0; test && r < THREAD_ROLES; r++)
		if (!strcmp(test, names[r]))
			sb.selftest = (enum thread_role)r;
	sb.pid = getpid();
	sb.mode = mode;
	/* gmtime_r() (the CMOS clock) reads /etc/localtime on first use: do that now. */
	tzset();
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		pr_err("sigaction(SIGSYS): %s", strerror(errno));
		return -errno;
	}
	/* What this code needs of the kernel (SECCOMP_RET_LOG, 4.14+; the load below reports a
	 * kernel without it): spares libseccomp probing for it with a dozen system calls. */
	seccomp_api_set(3);
	/* Every run has an I/O thread: build its filter here, where malloc has its arena, rather
	 * than make a fresh thread set one up for libseccomp. */
	pthread_mutex_lock(&sb.lock);
	ret = build(THREAD_IO);
	pthread_mutex_unlock(&sb.lock);
	if (ret)
		return ret;
	thread_role_set_hook(enter);
	if (mode == SANDBOX_SECCOMP_LOG)
		pr_warn("log mode: system calls outside the lists are allowed and logged by the "
			"kernel (dmesg)");
	return 0;
}

unsigned int sandbox_seccomp_count(enum thread_role role)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < ARRAY_SIZE(rules); i++)
		n += !!(rules[i].roles & (1u << role));
	return n;
}

enum sandbox_seccomp sandbox_seccomp_mode(void)
{
	return sb.mode;
}
