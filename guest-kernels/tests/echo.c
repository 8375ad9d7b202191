/* echo.c: serial input. Prints "ECHO-READY", then reads bytes by polling LSR.DR until '\n' or
 * '\r' or 200 bytes, and prints the line back.
 *
 * Prints: "ECHO-READY", "ECHO: <line>", "PASS echo-line", "RESULT PASS"; exits 0. Bytes
 * outside printable ASCII are shown as '?'.
 * Host side: after "ECHO-READY" (or before: the UART holds one byte and the host's queue the
 * rest), write a line to mvm's stdin and expect "ECHO: <that line>" and exit status 0.
 * NOTE: the wait for input is unbounded; the host test's timeout covers a VMM that never
 * delivers input. */
#include "guest.h"

#define ECHO_MAX 200

void guest_main(const struct hvm_start_info *si)
{
	char line[ECHO_MAX + 1];
	size_t n = 0;

	(void)si;
	printf("ECHO-READY\n");
	while (n < ECHO_MAX) {
		int c = serial_getc();

		if (c == '\n' || c == '\r')
			break;
		line[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	line[n] = '\0';
	printf("ECHO: %s\n", line);
	report("echo-line", n > 0);
	finish();
}
