/* report.c: PASS/FAIL lines, the final RESULT line and the exit through the debug-exit port.
 * The host side greps for "PASS <name>", "FAIL <name>" and "RESULT PASS" / "RESULT FAIL <n>". */
#include "guest.h"

#define DEBUG_EXIT_PORT 0xf4

static unsigned int failures;

bool report(const char *name, bool ok)
{
	printf("%s %s\n", ok ? "PASS" : "FAIL", name);
	if (!ok)
		failures++;
	return ok;
}

bool reportf(bool ok, const char *fmt, ...)
{
	char name[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	return report(name, ok);
}

void report_skip(const char *name, const char *why)
{
	printf("SKIP %s (%s)\n", name, why);
}

unsigned int report_failures(void)
{
	return failures;
}

void guest_exit(uint32_t code)
{
	/* mvm: exit status = code & 0xff. QEMU isa-debug-exit (iosize=4): (code << 1) | 1. */
	outl(DEBUG_EXIT_PORT, code);
	for (;;)
		__asm__ volatile("cli; hlt");
}

void finish(void)
{
	if (failures) {
		printf("RESULT FAIL %u\n", failures);
		guest_exit(EXIT_FAIL);
	}
	printf("RESULT PASS\n");
	guest_exit(EXIT_PASS);
}
