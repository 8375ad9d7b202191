/* test_seccomp.c: the per-role allow-lists, each in a child process: what a role needs runs,
 * anything else stops the process with SANDBOX_EXIT_SECCOMP and a line naming the thread and
 * the call; log mode lets it through; the lists stay at least as tight as Firecracker's. The
 * arguments too: futex only with the operations glibc makes, each ioctl request only on an fd
 * of its kind (a KVM vCPU, VM, TAP or stdin, opened before the filters are set up, as mvm
 * does; the KVM and TAP cases need /dev/kvm and /dev/net/tun and are left out without). */
#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

typedef void (*body_fn)(void);

/* The fds the bodies name, open before the child sets up its filters: -1 when absent. A TAP
 * is inherited; KVM's VM and vCPU only answer the process that made them (EIO after a fork),
 * so a child made with (child_kvm) makes its own first. */
static int vm_fd = -1, vcpu_fd = -1, tun_fd = -1;
/* Several vCPUs, one after another (the filter covers them as aligned blocks of fds), and an
 * fd made right after them that is none. */
#define NVCPUS 5
static int vcpu_fds[NVCPUS], after_fd = -1;
static bool child_kvm;

static void open_kvm(void);

struct child_arg {
	enum thread_role role;
	body_fn body;
};

static void *role_thread(void *p)
{
	struct child_arg *a = p;

	if (thread_role_enter(a->role))
		_exit(3);
	a->body();
	return NULL;
}

/* Runs (body) on a thread that took (role) under (mode), in a child process. Returns its exit
 * status (128 + N if signal N killed it); (msg) gets what it wrote to stderr. */
static int in_child(enum sandbox_seccomp mode, enum thread_role role, body_fn body, char *msg,
		    size_t msglen)
{
	struct child_arg a = {.role = role, .body = body};
	size_t got = 0;
	int p[2], status;
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		pthread_t t;

		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		if (child_kvm)
			open_kvm();
		if (sandbox_seccomp_init(mode))
			_exit(2);
		/* The control and engine roles are mvm's main thread, which never exits alone. */
		if (role == THREAD_CONTROL || role == THREAD_ENGINE) {
			role_thread(&a);
			_exit(0);
		}
		if (pthread_create(&t, NULL, role_thread, &a))
			_exit(4);
		/* A vCPU thread runs once the thread that waits for it has its filter, as in
		 * vm_run(). */
		if (role == THREAD_VCPU && thread_role_enter(THREAD_CONTROL))
			_exit(5);
		pthread_join(t, NULL);
		_exit(0);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], msg + got, msglen - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	msg[got] = 0;
	close(p[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* What every role needs: a lock, memory for malloc, a log line, a signal to itself. */
static void allowed_common(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	void *p;

	pthread_mutex_lock(&lock);
	pthread_mutex_unlock(&lock);
	p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p, 1 << 20))
		_exit(10);
	free(malloc(1 << 20));
	if (write(STDERR_FILENO, "ok\n", 3) != 3)
		_exit(11);
	if (syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), 0))
		_exit(12);
}

/* virtio-balloon on shared guest RAM (guest_mem_discard()): the I/O thread's only. */
static void madvise_remove(void)
{
	void *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || syscall(SYS_madvise, p, 1 << 16, MADV_REMOVE))
		_exit(13);
}

static void call_socket(void)
{
	syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0);
}

static void exec_mapping(void)
{
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void signal_other_process(void)
{
	syscall(SYS_tgkill, 1, 1, 0);
}

static void open_file(void)
{
	syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY);
}

static void ioctl_fionread(void)
{
	int n;

	ioctl(STDERR_FILENO, FIONREAD, &n);
}


/* A request in the I/O thread's list on an fd that is no TAP. */
static void ioctl_tunsetoffload(void)
{
	ioctl(STDERR_FILENO, TUNSETOFFLOAD, 0);
}

/* On a TAP that is attached to no interface: refused by the kernel, not by the filter. */
static void ioctl_tunsetoffload_tap(void)
{
	if (ioctl(tun_fd, TUNSETOFFLOAD, 0) == 0 || errno == 0)
		_exit(13);
}

static void ioctl_kvm_run(void)
{
	ioctl(STDERR_FILENO, KVM_RUN, 0);
}

static void ioctl_get_regs_vcpu(void)
{
	struct kvm_regs r;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &r))
		_exit(14);
}

static void ioctl_get_regs_vm(void)
{
	struct kvm_regs r;

	ioctl(vm_fd, KVM_GET_REGS, &r);
}

static void ioctl_irq_line_vm(void)
{
	struct kvm_irq_level irq = {.irq = 4, .level = 0};

	ioctl(vm_fd, KVM_IRQ_LINE, &irq); /* no irqchip: the kernel may refuse it */
}

static void ioctl_irq_line_vcpu(void)
{
	struct kvm_irq_level irq = {.irq = 4, .level = 0};

	ioctl(vcpu_fd, KVM_IRQ_LINE, &irq);
}

static void ioctl_get_msrs_vcpu(void)
{
	struct kvm_msrs m = {.nmsrs = 0};

	if (ioctl(vcpu_fd, KVM_GET_MSRS, &m) < 0)
		_exit(15);
}

static void tcgets_stdin(void)
{
	struct termios t;

	ioctl(STDIN_FILENO, TCGETS, &t); /* a pipe here: ENOTTY from the kernel */
}

static void tcgets_stderr(void)
{
	struct termios t;

	ioctl(STDERR_FILENO, TCGETS, &t);
}

/* Every futex operation the lists allow, none of them blocking (the word is not the value
 * they wait for), then a condition variable with a timeout as glibc makes it. */
static void futex_allowed(void)
{
	static const int ops[] = {FUTEX_WAIT_PRIVATE, FUTEX_WAIT_BITSET_PRIVATE,
				  FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME,
				  FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME};
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	struct timespec ts;
	uint32_t word = 1;

	for (unsigned int i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (syscall(SYS_futex, &word, ops[i], 0, NULL, NULL, FUTEX_BITSET_MATCH_ANY) == 0 ||
		    errno != EAGAIN)
			_exit(16);
	if (syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) != 0)
		_exit(17);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&lock);
	pthread_cond_timedwait(&cond, &lock, &ts);
	pthread_mutex_unlock(&lock);
}

/* An operation glibc never makes for mvm. */
static void futex_requeue(void)
{
	uint32_t word = 0;

	syscall(SYS_futex, &word, FUTEX_REQUEUE_PRIVATE, 0, 0, &word, 0);
}

/* The fds the KVM cases name: a VM with one vCPU. */
static void open_kvm(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (kvm < 0)
		return;
	vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
	for (int i = 0; i < NVCPUS && vm_fd >= 0; i++)
		vcpu_fds[i] = ioctl(vm_fd, KVM_CREATE_VCPU, i);
	vcpu_fd = vcpu_fds[0];
	after_fd = eventfd(0, EFD_CLOEXEC);
	close(kvm);
}

static void ioctl_get_regs_each_vcpu(void)
{
	struct kvm_regs r;

	for (int i = 0; i < NVCPUS; i++)
		if (ioctl(vcpu_fds[i], KVM_GET_REGS, &r))
			_exit(18);
}

static void ioctl_get_regs_after(void)
{
	struct kvm_regs r;

	ioctl(after_fd, KVM_GET_REGS, &r);
}

static void expect_trap(enum thread_role role, body_fn body, const char *call)
{
	char msg[1024], want[128];
	int status = in_child(SANDBOX_SECCOMP_ON, role, body, msg, sizeof(msg));

	snprintf(want, sizeof(want), "the %s thread made system call %s", thread_role_name(role),
		 call);
	CHECK_EQ(status, SANDBOX_EXIT_SECCOMP);
	if (!strstr(msg, want)) {
		fprintf(stderr, "expected \"%s\" in:\n%s\n", want, msg);
		CHECK(!"the message names the thread and the call");
	}
}

static void expect_ok(enum sandbox_seccomp mode, enum thread_role role, body_fn body)
{
	char msg[1024];
	int status = in_child(mode, role, body, msg, sizeof(msg));

	if (status)
		fprintf(stderr, "%s thread: status %d:\n%s\n", thread_role_name(role), status, msg);
	CHECK_EQ(status, 0);
}

int main(void)
{
	/* Firecracker's lists: 27 system calls on vCPU threads, 31 on the API thread, 50 on the
	 * VMM thread. mvm's are no wider: vCPU against vCPU, the I/O loop and the control thread
	 * against the API thread, the engine (which also tears the machine down) against the
	 * VMM thread. */
	fprintf(stderr, "allow-lists: vCPU %u, I/O %u, control %u, engine %u system calls\n",
		sandbox_seccomp_count(THREAD_VCPU), sandbox_seccomp_count(THREAD_IO),
		sandbox_seccomp_count(THREAD_CONTROL), sandbox_seccomp_count(THREAD_ENGINE));
	CHECK(sandbox_seccomp_count(THREAD_VCPU) <= 27);
	CHECK(sandbox_seccomp_count(THREAD_IO) <= 31);
	CHECK(sandbox_seccomp_count(THREAD_CONTROL) <= 31);
	CHECK(sandbox_seccomp_count(THREAD_ENGINE) <= 50);

	if (sandbox_seccomp_init(SANDBOX_SECCOMP_ON) == 0 &&
	    sandbox_seccomp_mode() == SANDBOX_SECCOMP_OFF) {
		/* A sanitizer build: its runtime's calls are in no list, so there is no filter
		 * (the hook stays unset and a role changes nothing). */
		CHECK_EQ(thread_role_enter(THREAD_IO), 0);
		return t_done();
	}
	thread_role_set_hook(NULL); /* the parent itself stays unfiltered */
	/* Opened before any child sets up its filters, as mvm opens them before its own. */
	tun_fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	open_kvm();
	child_kvm = vcpu_fds[NVCPUS - 1] >= 0;
	for (int i = 0; i < NVCPUS; i++)
		if (vcpu_fds[i] >= 0)
			close(vcpu_fds[i]);
	if (vm_fd >= 0)
		close(vm_fd);
	if (after_fd >= 0)
		close(after_fd);

	for (int r = 0; r < THREAD_ROLES; r++) {
		expect_ok(SANDBOX_SECCOMP_ON, (enum thread_role)r, allowed_common);
		expect_trap((enum thread_role)r, call_socket, "41 (socket)");
		expect_trap((enum thread_role)r, exec_mapping, "9 (mmap)");
		expect_trap((enum thread_role)r, signal_other_process, "234 (tgkill)");
		expect_trap((enum thread_role)r, open_file, "257 (openat)");
		expect_trap((enum thread_role)r, ioctl_fionread, "16 (ioctl)");
		/* Log mode: the same calls are let through. */
		expect_ok(SANDBOX_SECCOMP_LOG, (enum thread_role)r, call_socket);
		expect_ok(SANDBOX_SECCOMP_LOG, (enum thread_role)r, open_file);
	}
	/* futex: the operations glibc makes pass, another one stops the process. */
	for (int r = 0; r < THREAD_ROLES; r++) {
		expect_ok(SANDBOX_SECCOMP_ON, (enum thread_role)r, futex_allowed);
		expect_trap((enum thread_role)r, futex_requeue, "202 (futex)");
		expect_ok(SANDBOX_SECCOMP_LOG, (enum thread_role)r, futex_requeue);
	}
	/* ioctl requests are per role, and per kind of fd: a request of the role's list on an
	 * fd of another kind stops the process. */
	expect_ok(SANDBOX_SECCOMP_ON, THREAD_IO, madvise_remove);
	expect_trap(THREAD_VCPU, madvise_remove, "28 (madvise)");
	expect_trap(THREAD_ENGINE, madvise_remove, "28 (madvise)");
	expect_trap(THREAD_VCPU, ioctl_tunsetoffload, "16 (ioctl)");
	expect_trap(THREAD_IO, ioctl_tunsetoffload, "16 (ioctl) with arguments 0x2, ");
	expect_trap(THREAD_VCPU, ioctl_kvm_run, "16 (ioctl) with arguments 0x2, ");
	expect_trap(THREAD_ENGINE, ioctl_kvm_run, "16 (ioctl) with arguments 0x2, ");
	expect_trap(THREAD_IO, ioctl_kvm_run, "16 (ioctl)");
	expect_trap(THREAD_CONTROL, ioctl_kvm_run, "16 (ioctl)");
	expect_ok(SANDBOX_SECCOMP_ON, THREAD_CONTROL, tcgets_stdin);
	expect_trap(THREAD_CONTROL, tcgets_stderr, "16 (ioctl) with arguments 0x2, ");
	expect_ok(SANDBOX_SECCOMP_LOG, THREAD_IO, ioctl_tunsetoffload);
	if (tun_fd >= 0) {
		expect_ok(SANDBOX_SECCOMP_ON, THREAD_IO, ioctl_tunsetoffload_tap);
	} else {
		fprintf(stderr, "no /dev/net/tun: TUNSETOFFLOAD on a TAP not tried\n");
	}
	if (child_kvm) {
		expect_ok(SANDBOX_SECCOMP_ON, THREAD_VCPU, ioctl_get_regs_vcpu);
		expect_ok(SANDBOX_SECCOMP_ON, THREAD_VCPU, ioctl_get_regs_each_vcpu);
		expect_trap(THREAD_VCPU, ioctl_get_regs_after, "16 (ioctl)");
		expect_trap(THREAD_VCPU, ioctl_get_regs_vm, "16 (ioctl)");
		expect_ok(SANDBOX_SECCOMP_ON, THREAD_VCPU, ioctl_irq_line_vm);
		expect_trap(THREAD_VCPU, ioctl_irq_line_vcpu, "16 (ioctl)");
		expect_ok(SANDBOX_SECCOMP_ON, THREAD_IO, ioctl_irq_line_vm);
		expect_ok(SANDBOX_SECCOMP_ON, THREAD_ENGINE, ioctl_get_msrs_vcpu);
		expect_trap(THREAD_CONTROL, ioctl_get_regs_vcpu, "16 (ioctl)");
		child_kvm = false;
	} else {
		fprintf(stderr, "no /dev/kvm: the KVM fd cases not tried\n");
	}
	/* Off: nothing is filtered. */
	expect_ok(SANDBOX_SECCOMP_OFF, THREAD_VCPU, call_socket);
	return t_done();
}
