/* triplefault.c: loads an empty IDT (limit 0) and raises an exception, so the CPU cannot
 * deliver it, nor the #GP/#DF that follow: a triple fault, i.e. shutdown.
 *
 * Prints: "TRIPLEFAULT-NOW" and nothing after it. The exception is "ud2" by default, "int3"
 * with "how=int3" on the command line.
 * Host side: mvm sees KVM_EXIT_SHUTDOWN and must stop the VM with its shutdown/triple-fault
 * status, not hang and not report a debug-exit code. (QEMU with -no-reboot exits with status 0
 * and no debug-exit code.) If the guest prints "NO-TRIPLEFAULT" the fault was not raised. */
#include "guest.h"

void guest_main(const struct hvm_start_info *si)
{
	static const struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} empty = {0, 0};
	char how[8] = "ud2";

	(void)si;
	cmdline_get("how", how, sizeof(how));
	printf("TRIPLEFAULT-NOW\n");
	__asm__ volatile("cli; lidt %0" : : "m"(empty));
	if (!strcmp(how, "int3"))
		__asm__ volatile("int3");
	else
		__asm__ volatile("ud2");
	printf("NO-TRIPLEFAULT\n");
	guest_exit(EXIT_FAIL);
}
