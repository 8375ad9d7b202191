/* seccomp.h: seccomp-BPF allow-lists, one per thread role (core/thread_role.h), built with
 * libseccomp and loaded by each thread when it takes its role, before guest code runs.
 *
 * A system call outside the calling thread's list, or an ioctl request outside its request
 * list, stops mvm at once: the filter traps it (SIGSYS), and the handler writes one line
 * naming the thread, the call and its arguments, then exits with SANDBOX_EXIT_SECCOMP. (A call
 * made while SIGSYS is blocked, as glibc blocks every signal while a thread exits, makes the
 * kernel kill the process with SIGSYS instead, without the line.) In log mode the call is
 * allowed and the kernel logs it (dmesg or the audit log), for finding what a list lacks. */
#ifndef MVM_SANDBOX_SECCOMP_H
#define MVM_SANDBOX_SECCOMP_H

#include "core/thread_role.h"

enum sandbox_seccomp {
	SANDBOX_SECCOMP_ON,	/* default: trap, report, exit */
	SANDBOX_SECCOMP_LOG,	/* allow, and let the kernel log, what a list lacks */
	SANDBOX_SECCOMP_OFF,
};

/* The exit status after a forbidden system call: 128 + SIGSYS, what a shell reports for a
 * process the kernel kills for it (SECCOMP_RET_KILL_PROCESS). */
#define SANDBOX_EXIT_SECCOMP 159

/* Test hook: MVM_SECCOMP_SELFTEST=vcpu|io|control|engine makes the first thread of that role
 * call socket(2), which no list allows, right after loading its filter; with ":futex" after
 * the role, futex(2) with an operation no list allows (FUTEX_REQUEUE_PRIVATE); with ":ioctl",
 * an ioctl request of the role's list on stderr, an fd not of the kind it is allowed on. */
#define SANDBOX_SELFTEST_ENV "MVM_SECCOMP_SELFTEST"

/* Sets the policy for every thread that takes a role from now on: installs the SIGSYS
 * handler and the thread_role hook that loads the role's filter (built on first use), and
 * runs what glibc would otherwise do lazily with calls no list allows (tzset's open of
 * /etc/localtime). The filters allow each ioctl request only on the fds of its kind open now
 * (KVM vCPUs, KVM VMs, TAPs, stdin): call it once every one of those is open. vCPU threads then wait for THREAD_CONTROL, so that no guest code runs
 * before every thread has its filter. SANDBOX_SECCOMP_OFF installs nothing; so does a
 * sanitizer build (its runtime's calls are in no list), which says so.
 * Main thread, once, before any other thread starts. Returns 0 or -errno (logged). */
int sandbox_seccomp_init(enum sandbox_seccomp mode);

/* The number of system calls (role)'s list allows (ioctl counts once). */
unsigned int sandbox_seccomp_count(enum thread_role role);

/* The mode in effect after sandbox_seccomp_init() (OFF before it). */
enum sandbox_seccomp sandbox_seccomp_mode(void);

#endif
