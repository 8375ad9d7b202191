/* thread_role.h: each mvm thread says what it is before it touches guest state, so one
 * process-wide hook (the seccomp sandbox, vmm/sandbox/) can confine it to what that kind of
 * thread needs. Without a hook every call is a no-op returning 0 (unit and KVM tests). */
#ifndef MVM_CORE_THREAD_ROLE_H
#define MVM_CORE_THREAD_ROLE_H

enum thread_role {
	THREAD_VCPU,	/* one per KVM vCPU: KVM_RUN and the exits it hands back */
	THREAD_IO,	/* the io_uring loop: queue processing and host I/O */
	THREAD_CONTROL,	/* main under KVM, once every vCPU thread runs: waits, then tears down */
	THREAD_ENGINE,	/* runs mvm's engine (--accel dbt, and hybrid), then tears down */
	THREAD_API,	/* the Firecracker API (api/), once the VM it built runs: its clients,
			 * metrics, pause, snapshots */
	THREAD_ROLES,
};

/* The hook: 0, or -errno when the thread cannot take (role); the thread must then not run
 * the guest (its caller stops the machine). Called on the thread taking the role. */
typedef int (*thread_role_fn)(enum thread_role role);

/* Installs (fn) (NULL removes it). Before any thread calls thread_role_enter(). */
void thread_role_set_hook(thread_role_fn fn);

/* The calling thread takes (role): the hook's result, or 0 without a hook. Each thread
 * calls this once, right after it starts and before it touches the guest:
 * THREAD_VCPU before its first KVM_RUN, THREAD_IO before it reaps a completion,
 * THREAD_CONTROL (vm_run()'s caller) once every vCPU thread exists, THREAD_ENGINE before the
 * engine runs the first guest instruction. */
int thread_role_enter(enum thread_role role);

const char *thread_role_name(enum thread_role role);

#endif
