/* thread_role.c: the hook threads call when they take their role (thread_role.h). */
#include "core/thread_role.h"

#include <stddef.h>

/* Written once by the main thread before it starts any other; pthread_create orders it. */
static thread_role_fn hook;

void thread_role_set_hook(thread_role_fn fn)
{
	hook = fn;
}

int thread_role_enter(enum thread_role role)
{
	return hook ? hook(role) : 0;
}

const char *thread_role_name(enum thread_role role)
{
	switch (role) {
	case THREAD_VCPU: return "vCPU";
	case THREAD_IO: return "I/O";
	case THREAD_CONTROL: return "control";
	case THREAD_ENGINE: return "engine";
	case THREAD_API: return "API";
	case THREAD_ROLES: break;
	}
	return "?";
}
