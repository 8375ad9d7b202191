/* exitcode.c: exits through the debug-exit port with the code from the command line "exit=N"
 * (default 42), without printing a RESULT line.
 *
 * Prints: "EXITCODE <N>"; writes N to port 0xf4 with outl.
 * Host side: mvm's exit status must be N & 0xff (42 by default; QEMU's isa-debug-exit gives
 * (N << 1) | 1, i.e. 85). */
#include "guest.h"

void guest_main(const struct hvm_start_info *si)
{
	uint32_t code = (uint32_t)cmdline_uint("exit", 42);

	(void)si;
	printf("EXITCODE %u\n", code);
	guest_exit(code);
}
