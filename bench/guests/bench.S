/* bench.S: the benchmark guest, a PVH ELF that does its work in 32-bit protected mode straight
 * from the PVH entry: no page tables, no stack, no runtime, so every VMM (and bench/kvm_floor)
 * runs exactly the same few instructions and the guest touches no RAM of its own.
 *
 * PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h, docs/misc/pvh.pandoc): entered at
 * pvh_start32 in 32-bit protected mode, paging off, flat CS/DS, EBX = physical address of
 * struct hvm_start_info, whose cmdline_paddr (offset 24) names the command line.
 *
 * What it does:
 * 1. Writes '^' to the serial port (THR of COM1, 0x3f8): the third instruction executed, so the
 *    host sees the first guest instruction as the first byte on the VMM's console.
 * 2. Reads the first character of the command line:
 *    'x' (or anything else, or no command line): exit at once;
 *    'i': writes 'I' to the serial port, then cli; hlt forever (the idle guest of the memory
 *         figure; the host kills the VMM);
 *    'l' followed by a decimal N ("l100000"): writes 'B', then N one-byte writes to port 0x80
 *         (the POST port: a discarding sink in mvm, unassigned in QEMU microvm, a counter in
 *         kvm_floor; never handled inside KVM, so each is one exit to the VMM), then 'E';
 *    'L' followed by N: the same, then cli; hlt forever instead of exiting, so the host can
 *         read the VMM's per-thread CPU time after 'E' before any thread has gone.
 * 3. Exits with status 0 through the debug-exit port 0xf4 (outl, as the test guests do), then
 *    cli; hlt forever in case the VMM does not stop it.
 *
 * Built by bench/run with the flags and linker script of guest-kernels/tests (entry at 1 MiB).
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define COM1		0x3f8
#define POST_PORT	0x80
#define DEBUG_EXIT	0xf4

/* Same note as guest-kernels/tests/lib/entry.S: 8-byte descriptor, 4-aligned. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4
	.long 8
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_start32
	.long 0

	.section .text.entry, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	movw $COM1, %dx
	movb $'^', %al
	outb %al, %dx			/* the start-up marker */

	testl %ebx, %ebx
	jz exit
	movl 24(%ebx), %esi		/* hvm_start_info.cmdline_paddr (low half) */
	testl %esi, %esi
	jz exit
	movzbl (%esi), %edi		/* the mode, kept in EDI */
	cmpl $'i', %edi
	je idle
	cmpl $'l', %edi
	je 0f
	cmpl $'L', %edi
	jne exit

	/* "l<N>", "L<N>": N in ECX, decimal, stops at the first non-digit. */
0:
	incl %esi
	xorl %ecx, %ecx
1:	movzbl (%esi), %eax
	subl $'0', %eax
	cmpl $9, %eax
	ja 2f
	imull $10, %ecx, %ecx
	addl %eax, %ecx
	incl %esi
	jmp 1b
2:	movb $'B', %al
	outb %al, %dx			/* DX is still COM1 */
	jecxz 4f
3:	outb %al, $POST_PORT
	loop 3b
4:	movb $'E', %al
	outb %al, %dx
	cmpl $'L', %edi
	jne exit
	cli
7:	hlt
	jmp 7b

idle:
	movb $'I', %al
	outb %al, %dx
	cli
5:	hlt
	jmp 5b

exit:
	movw $DEBUG_EXIT, %dx
	xorl %eax, %eax
	outl %eax, %dx
	cli
6:	hlt
	jmp 6b

	.section .note.GNU-stack, "", @progbits
