/* hello.c: the smallest test guest. Checks that the PVH entry reached 64-bit C code, that
 * EBX pointed at a struct hvm_start_info with the right magic and version >= 1, and that the
 * command line it names is readable.
 *
 * Prints: "Hello from the mvm test guest", "CMDLINE <text>", "PASS start-info-magic",
 * "PASS start-info-version", "PASS cmdline-readable", "RESULT PASS"; exits 0.
 * Host side: exit status 0, the greeting and "RESULT PASS" on the serial output, no "FAIL". */
#include "guest.h"

void guest_main(const struct hvm_start_info *si)
{
	const char *cl = cmdline();
	size_t len = strlen(cl);

	printf("Hello from the mvm test guest\n");
	report("start-info-magic", si && si->magic == HVM_START_MAGIC);
	report("start-info-version", si && si->version >= 1);
	printf("CMDLINE %s\n", cl);
	/* Readable means NUL-terminated within a sane bound, printable ASCII throughout. */
	bool ok = len < 4096;

	for (size_t i = 0; ok && i < len; i++)
		ok = cl[i] >= 0x20 && cl[i] < 0x7f;
	report("cmdline-readable", ok);
	finish();
}
