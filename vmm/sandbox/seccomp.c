/* seccomp.c: the per-role seccomp-BPF allow-lists and how each thread loads its own. */
#define pr_fmt(fmt) "seccomp: " fmt
#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <poll.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define V (1u << THREAD_VCPU)
#define I (1u << THREAD_IO)
#define C (1u << THREAD_CONTROL)
#define E (1u << THREAD_ENGINE)
#define A (1u << THREAD_API)
#define ALL (V | I | C | E | A)

/* What a rule checks besides the system call number. */
enum arg_check {
	ARG_ANY,
	ARG_IOCTL,	/* arg 1 is one of the role's requests in ioctls[], arg 0 an fd of
			 * the kind that request is for */
	ARG_FUTEX,	/* arg 1, the operation, is one of futex_ops[] */
	ARG_OWN_PID,	/* arg 0 is this process (signals stay inside mvm) */
	ARG_NO_EXEC,	/* arg 2, the protection, lacks PROT_EXEC (no new code) */
	ARG_DONTNEED,	/* arg 2, the advice, is MADV_DONTNEED (what free() gives back); the I/O
			 * thread's also MADV_REMOVE (virtio-balloon on shared guest RAM) */
	ARG_WRITE_ONLY,	/* openat's arg 2, the flags, opens for writing only (no reading) */
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
	{"futex", ALL, ARG_FUTEX},		/* mutexes, condition variables, joins */
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
	{"madvise", ALL, ARG_DONTNEED},		/* free() trimming; a stack at thread exit;
						 * virtio-balloon giving guest pages back */
	{"brk", ALL, ARG_ANY},			/* malloc's main arena (any thread frees) */
	{"clock_gettime", ALL, ARG_ANY},	/* when the vDSO falls back to the system call */
	{"restart_syscall", ALL, ARG_ANY},	/* a futex wait resumed after a signal */
	{"exit_group", ALL, ARG_ANY},		/* mvm's exit, and the SIGSYS handler's */
	/* Thread-specific. */
	{"exit", V | I | A, ARG_ANY},		/* the thread returns */
	{"io_uring_enter", I | C | E, ARG_ANY},	/* the loop; devices draining it at exit */
	{"timerfd_settime", I | E, ARG_ANY},	/* the engine's PIT and LAPIC timers */
	{"getrandom", I, ARG_ANY},		/* virtio-rng */
	{"close", C | E | A, ARG_ANY},		/* tearing the machine down; API connections */
	{"unlink", C | E, ARG_ANY},		/* tearing down: the vsock's Unix socket file */
	{"rt_sigtimedwait", E, ARG_ANY},	/* hybrid: taking a kick that missed KVM_RUN */
	/* The API thread: libmicrohttpd serving its clients on the socket mvm bound. */
	{"accept4", A, ARG_ANY},		/* a client connects */
	{"read", A, ARG_ANY},			/* its requests (MHD reads with recv or read) */
	{"recvfrom", A, ARG_ANY},
	{"sendto", A, ARG_ANY},			/* the answers */
	{"sendmsg", A, ARG_ANY},
	{"recvmsg", A, ARG_ANY},
	{"writev", A, ARG_ANY},
	{"shutdown", A, ARG_ANY},		/* closing a connection */
	{"setsockopt", A, ARG_ANY},		/* MHD's per-connection options */
	{"getsockopt", A, ARG_ANY},
	{"fcntl", A, ARG_ANY},			/* non-blocking client sockets */
	{"select", A, ARG_ANY},			/* MHD_run_wait()'s wait */
	{"pselect6", A, ARG_ANY},
	{"poll", A, ARG_ANY},
	/* The API thread: a snapshot's files (PUT /snapshot/create) and removing the socket. */
	{"openat", A, ARG_WRITE_ONLY},		/* the files are only written: nothing is read */
	{"ftruncate", A, ARG_ANY},		/* the sparse memory file */
	{"pwrite64", A, ARG_ANY},
	{"fsync", A, ARG_ANY},
	{"rename", A, ARG_ANY},			/* the state file, whole or not at all */
	{"unlink", A, ARG_ANY},			/* a failed snapshot's temporary; the API socket */
};

/* The futex operations glibc's nptl makes for mvm (glibc 2.36; strace -f -e futex over KVM,
 * engine and Linux runs agrees). Requeues, PI locks, wake-op and waitv: no code of mvm's asks
 * for them. */
static const unsigned int futex_ops[] = {
	FUTEX_WAIT_PRIVATE,			/* mutexes, stdio and malloc locks, once */
	FUTEX_WAKE_PRIVATE,			/* their unlock; condvar signal, sem_post */
	FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, /* pthread_cond_wait on the default
						 * clock, sem_wait (the loop's start) */
	FUTEX_WAIT_BITSET_PRIVATE,		/* condvars on CLOCK_MONOTONIC: virtio-mmio's
						 * reset handshake */
	FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, /* pthread_join: the thread's TID word,
						 * shared: the kernel clears it and wakes */
};

/* What an ioctl's fd (arg 0) must be: found among the fds open when the filters are set up
 * (sandbox_seccomp_init(), which cli/ calls once every device, the VM and its vCPUs are
 * open), by what they are (scan_fds()). */
enum fd_kind {
	FD_ANY,
	FD_VCPU,	/* a KVM vCPU (the hybrid's included) */
	FD_VM,		/* a KVM VM */
	FD_TUN,		/* /dev/net/tun: a TAP */
	FD_STDIN,	/* the terminal cli/term.c puts in raw mode and restores */
};

struct ioctl_rule {
	unsigned long request;
	unsigned int roles;
	enum fd_kind fd;
};

/* The ioctl requests each role issues (grep ioctl( in vmm/kvm/, virtio/, cli/), each on the
 * kind of fd it is for: a vCPU's requests on a vCPU fd, the VM's on the VM fd, and so on. A
 * kind with no fd open (no KVM under --accel dbt, no TAP) allows its requests on none. */
static const struct ioctl_rule ioctls[] = {
	{KVM_RUN, V | E, FD_VCPU},		/* running the vCPU (hybrid: guest user mode) */
	{KVM_GET_REGS, V, FD_VCPU},		/* emulation, SYSCALL trap, register dumps */
	{KVM_SET_REGS, V, FD_VCPU},
	{KVM_GET_SREGS, V, FD_VCPU},
	{KVM_SET_SREGS, V, FD_VCPU},
	{KVM_GET_MSRS, V | E, FD_VCPU},		/* SYSCALL trap (LSTAR, STAR, ...), emulation */
	{KVM_SET_MSRS, V | E, FD_VCPU},
	{KVM_GET_VCPU_EVENTS, V, FD_VCPU},	/* injecting the faults emulation raises */
	{KVM_SET_VCPU_EVENTS, V, FD_VCPU},
	{KVM_GET_DEBUGREGS, V, FD_VCPU},	/* the breakpoints an emulated instruction's */
	{KVM_SET_DEBUGREGS, V, FD_VCPU},	/* accesses meet; DR6 of the #DB after it */
	{KVM_GET_XSAVE, V | E, FD_VCPU},	/* emulated SSE/AVX/x87/XSAVE state; hybrid: */
	{KVM_SET_XSAVE, V | E, FD_VCPU},	/* FPU state across user/kernel mode */
	{KVM_GET_XCRS, V, FD_VCPU},		/* XCR0 for emulated XSAVE/XGETBV */
	{KVM_SET_XCRS, V, FD_VCPU},
	{KVM_SET_USER_MEMORY_REGION, E, FD_VM},	/* hybrid: the trap window's slots */
	{KVM_SET_SIGNAL_MASK, E, FD_VCPU},	/* hybrid: kicks only inside KVM_RUN (1st run) */
	{KVM_IRQ_LINE, V | I | A, FD_VM},	/* serial IRQ: guest writes (V), input (I); the
						 * keyboard's: Ctrl+Alt+Del from the API (A) */
	{TUNSETOFFLOAD, I, FD_TUN},		/* virtio-net: the offloads the driver took */
	/* The API thread takes a snapshot of the paused VM (kvm/state.c). */
	{KVM_GET_REGS, A, FD_VCPU},
	{KVM_GET_SREGS, A, FD_VCPU},
	{KVM_GET_MSRS, A, FD_VCPU},
	{KVM_GET_XSAVE, A, FD_VCPU},
	{KVM_GET_XCRS, A, FD_VCPU},
	{KVM_GET_LAPIC, A, FD_VCPU},
	{KVM_GET_VCPU_EVENTS, A, FD_VCPU},
	{KVM_GET_DEBUGREGS, A, FD_VCPU},
	{KVM_GET_MP_STATE, A, FD_VCPU},
	{KVM_GET_IRQCHIP, A, FD_VM},
	{KVM_GET_PIT2, A, FD_VM},
	{KVM_GET_CLOCK, A, FD_VM},
	{TCGETS, ALL, FD_STDIN},		/* term.c restores the terminal (exit, fatal */
	{TCSETSF, ALL, FD_STDIN},		/* signal): tcsetattr() reads, then writes */
};

/* The fds scan_fds() classifies: the lowest ones. mvm opens a few per device and one per
 * vCPU, far fewer. NOTE: a KVM or TAP fd above it would get none of its requests, and the
 * first one it makes would stop mvm with the message naming it. */
#define SCAN_FDS 4096
#define KNOWN_FDS 256

/* What the self-test hook calls (SANDBOX_SELFTEST_ENV). */
enum selftest_call {
	SELFTEST_SOCKET,	/* a system call no list has */
	SELFTEST_FUTEX,		/* futex with an operation glibc never makes for mvm */
	SELFTEST_IOCTL,		/* a request of the role's list on an fd not of its kind */
};

static struct {
	enum sandbox_seccomp mode;
	enum thread_role selftest;		/* THREAD_ROLES: none */
	enum selftest_call selftest_call;
	pid_t pid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool control_ready;			/* THREAD_CONTROL has its filter: vCPUs run */
	int control_ret;
	/* The fds ioctls may name, by kind (scan_fds()). */
	struct {
		int fd;
		enum fd_kind kind;
	} fds[KNOWN_FDS];
	unsigned int nfds;
	/* Each role's program, built by its first thread. */
	struct sock_filter prog[THREAD_ROLES][BPF_MAXINSNS];
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

/* What (fd) is, for the ioctl rules: a TAP by its device number, KVM VMs and vCPUs (anonymous
 * inodes: no file type) by a request only each answers, read-only (KVM_CHECK_EXTENSION is a
 * VM's and /dev/kvm's, KVM_GET_MP_STATE a vCPU's; eventfds, timerfds and io_uring refuse
 * both). FD_ANY: none of them. */
static enum fd_kind fd_kind_of(int fd)
{
	struct kvm_mp_state mp;
	struct stat st;

	if (fstat(fd, &st))
		return FD_ANY;
	if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 10 && minor(st.st_rdev) == 200)
		return FD_TUN;
	if (st.st_mode & S_IFMT)
		return FD_ANY;
	if (ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) >= 0)
		return FD_VM;
	if (ioctl(fd, KVM_GET_MP_STATE, &mp) == 0)
		return FD_VCPU;
	return FD_ANY;
}

/* Finds the fds of each kind among those open now (sb.fds). Without /proc (the jail has
 * none): one poll(2) over the range tells the open ones (POLLNVAL: not open), each of which
 * is then looked at; the range fstat'ed fd by fd took milliseconds. */
static void scan_fds(void)
{
	static struct pollfd pfd[SCAN_FDS];
	struct rlimit rl;
	int top = SCAN_FDS;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)top)
		top = (int)rl.rlim_cur;
	for (int fd = 0; fd < top; fd++)
		pfd[fd] = (struct pollfd){.fd = fd};
	if (poll(pfd, (nfds_t)top, 0) < 0)
		top = 0;
	sb.nfds = 0;
	sb.fds[sb.nfds].fd = STDIN_FILENO;
	sb.fds[sb.nfds++].kind = FD_STDIN;
	for (int fd = 0; fd < top && sb.nfds < KNOWN_FDS; fd++) {
		enum fd_kind kind = pfd[fd].revents & POLLNVAL ? FD_ANY : fd_kind_of(fd);

		if (kind == FD_ANY)
			continue;
		sb.fds[sb.nfds].fd = fd;
		sb.fds[sb.nfds++].kind = kind;
		pr_debug("fd %d: %s", fd, kind == FD_VCPU ? "KVM vCPU" : kind == FD_VM ? "KVM VM"
					  : kind == FD_TUN ? "TAP" : "stdin");
	}
}

/* The rules for ioctl request (r) on the calling role's filter: the fds of its kind, as
 * aligned power-of-two blocks that hold nothing else (fd & ~(size - 1) == first). The vCPU
 * fds, made one after another, are a few blocks whatever their number: one rule per fd made
 * 1349 BPF instructions and 134 ms of libseccomp for 64 vCPUs. */
static int add_ioctl(scmp_filter_ctx f, int nr, const struct ioctl_rule *r)
{
	int fds[KNOWN_FDS], n = 0, ret = 0;

	if (r->fd == FD_ANY)
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
					cmp(1, SCMP_CMP_EQ, r->request, 0));
	/* Ascending: scan_fds() found them so, stdin first. */
	for (unsigned int i = 0; i < sb.nfds; i++)
		if (sb.fds[i].kind == r->fd)
			fds[n++] = sb.fds[i].fd;
	for (int i = 0; i < n && !ret; ) {
		int size = 1;

		/* Double the block while it stays aligned and every fd in it is of the kind. */
		while (!(fds[i] & (2 * size - 1)) && i + 2 * size <= n &&
		       fds[i + 2 * size - 1] == fds[i] + 2 * size - 1)
			size *= 2;
		ret = seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 2,
				       cmp(0, SCMP_CMP_MASKED_EQ, ~(scmp_datum_t)(size - 1),
					   (scmp_datum_t)fds[i]),
				       cmp(1, SCMP_CMP_EQ, r->request, 0));
		i += size;
	}
	return ret;
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
				ret = add_ioctl(f, nr, &ioctls[i]);
		return ret;
	case ARG_FUTEX:
		for (unsigned int i = 0; i < ARRAY_SIZE(futex_ops) && !ret; i++)
			ret = seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
					       cmp(1, SCMP_CMP_EQ, futex_ops[i], 0));
		return ret;
	case ARG_OWN_PID:
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
					cmp(0, SCMP_CMP_EQ, (scmp_datum_t)sb.pid, 0));
	case ARG_NO_EXEC:
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
					cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	case ARG_DONTNEED:
		/* guest_mem_discard(): MADV_REMOVE frees a memfd's pages (--accel hybrid's RAM). */
		if (role == THREAD_IO &&
		    seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1, cmp(2, SCMP_CMP_EQ, MADV_REMOVE, 0)))
			return -EINVAL;
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
					cmp(2, SCMP_CMP_EQ, MADV_DONTNEED, 0));
	case ARG_WRITE_ONLY:
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
					cmp(2, SCMP_CMP_MASKED_EQ, O_ACCMODE, O_WRONLY));
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
	/* A request each role has in its list, on stderr, which is none of its kinds. */
	static const unsigned long request[THREAD_ROLES] = {
		[THREAD_VCPU] = KVM_GET_REGS, [THREAD_IO] = TUNSETOFFLOAD,
		[THREAD_CONTROL] = TCGETS, [THREAD_ENGINE] = KVM_RUN,
		[THREAD_API] = KVM_GET_REGS};
	uint32_t word = 0;
	long ret;

	switch (sb.selftest_call) {
	case SELFTEST_FUTEX:
		/* A requeue of nothing: harmless where it is let through. */
		ret = syscall(SYS_futex, &word, FUTEX_REQUEUE_PRIVATE, 0, 0, &word);
		pr_warn("self-test: futex(FUTEX_REQUEUE) on the %s thread returned %ld (allowed: "
			"not 'on')", thread_role_name(role), ret);
		break;
	case SELFTEST_IOCTL:
		ret = ioctl(STDERR_FILENO, request[role], 0);
		pr_warn("self-test: ioctl(stderr, 0x%lx) on the %s thread returned %ld (allowed: "
			"not 'on')", request[role], thread_role_name(role), ret);
		break;
	default:
		ret = syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0);
		pr_warn("self-test: socket() on the %s thread returned %ld (allowed: not 'on')",
			thread_role_name(role), ret);
		break;
	}
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
		[THREAD_ENGINE] = "engine", [THREAD_API] = "api"};
	struct sigaction sa = {.sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO};
	const char *test = getenv(SANDBOX_SELFTEST_ENV);
	int ret;

	if (mode == SANDBOX_SECCOMP_OFF)
		return 0;
	if (sanitized()) {
		pr_info("off in a sanitizer build (its runtime makes calls no list allows)");
		return 0;
	}
	for (unsigned int r = 0; test && r < THREAD_ROLES; r++) {
		size_t n = strlen(names[r]);

		if (strncmp(test, names[r], n) || (test[n] && test[n] != ':'))
			continue;
		sb.selftest = (enum thread_role)r;
		if (!strcmp(test + n, ":futex"))
			sb.selftest_call = SELFTEST_FUTEX;
		else if (!strcmp(test + n, ":ioctl"))
			sb.selftest_call = SELFTEST_IOCTL;
	}
	sb.pid = getpid();
	sb.mode = mode;
	/* gmtime_r() (the CMOS clock) reads /etc/localtime on first use: do that now. */
	tzset();
	scan_fds();
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
