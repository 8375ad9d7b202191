/* exitcode.c: exits through the debug-exit port with the code from the command line "exit=N"
 * (default 42), without printing a RESULT line. With "unhandled=1" it jumps, in kernel mode,
 * to guest-physical 0xc0200000 instead: the identity map covers it, but no memory and no
 * device is there, so no CPU can fetch an instruction (the VMM must stop with its report).
 *
 * Prints: "EXITCODE <N>" (or "JUMPING-TO-NOTHING"); writes N to port 0xf4 with outl.
 * Host side: mvm's exit status must be N & 0xff (42 by default; QEMU's isa-debug-exit gives
 * (N << 1) | 1, i.e. 85); with unhandled=1, 81 and mvm's report. */
#include "guest.h"

void guest_main(const struct hvm_start_info *si)
{
	uint32_t code = (uint32_t)cmdline_uint("exit", 42);

	(void)si;
	if (cmdline_uint("unhandled", 0)) {
		printf("JUMPING-TO-NOTHING\n");
		((void (*)(void))(uintptr_t)0xc0200000ull)();
	}
	printf("EXITCODE %u\n", code);
	guest_exit(code);
}
