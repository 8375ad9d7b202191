/* start.c: the C side of the entry (entry.S calls guest_start on the BSP and ap_start on each
 * AP): sets up the serial port, the IDT and the PICs, then runs the guest's guest_main(). */
#include "guest.h"

void guest_start(uint32_t start_info_paddr);

void guest_start(uint32_t start_info_paddr)
{
	start_info = (const struct hvm_start_info *)(uintptr_t)start_info_paddr;
	serial_init();
	idt_init();
	pic_disable();
	if (!start_info_valid())
		printf("WARN start_info at 0x%x is not valid (magic 0x%x)\n", start_info_paddr,
		       start_info_paddr ? start_info->magic : 0);
	guest_main(start_info);
	finish();
}
