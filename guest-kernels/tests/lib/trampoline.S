/* trampoline.S: real-mode start of an AP. smp.c copies [smp_tramp_start, smp_tramp_end) to
 * SMP_TRAMPOLINE (0x10000) and sends a SIPI with vector 0x10, so the AP starts at CS:IP =
 * 0x1000:0000. It loads the runtime's GDT (its 32-bit base is below 4 GiB), enters 32-bit
 * protected mode and jumps to enter_long_mode32 in entry.S, which enables PAE, LME and paging
 * with the BSP's page tables and continues at ap_entry64 (because ap_booting is set). */
#define TRAMP_BASE 0x10000

	.text
	.code16
	.globl smp_tramp_start
smp_tramp_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl tramp_gdt_desc - smp_tramp_start
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $0x18, $(TRAMP_BASE + tramp32 - smp_tramp_start)

	.code32
tramp32:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $enter_long_mode32, %eax
	jmp *%eax

	.balign 8
tramp_gdt_desc:
	.word 31			/* 4 descriptors, as in entry.S */
	.long gdt
	.globl smp_tramp_end
smp_tramp_end:

	.section .note.GNU-stack, "", @progbits
