/* entry.S: PVH entry of the mvm test guests.
 *
 * PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h, "PVH" in docs/misc/pvh.pandoc):
 * the loader enters pvh_start32 in 32-bit protected mode, paging off, flat CS/DS, EBX = physical
 * address of struct hvm_start_info. We build identity page tables for 0..8 GiB with 2 MiB pages
 * (enough for guests with RAM above 4 GiB), enable PAE, EFER.LME and paging, switch to our own
 * GDT and call guest_start(start_info) in 64-bit mode. Physical = virtual throughout.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define CR0_PE (1 << 0)
#define CR0_NE (1 << 5)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define PTE_P 0x1
#define PTE_W 0x2
#define PTE_PS 0x80
#define MAP_GIB 8

/* ELF note read by PVH loaders: the 32-bit physical entry address, zero-extended to 8 bytes
 * (descsz 8) exactly as Linux's vmlinux has it (_ASM_PTR in arch/x86/platform/pvh/head.S).
 * QEMU reads the field as 64 bits in an ELF64 file, so a 4-byte descriptor would not do. The
 * section stays 4-aligned: QEMU aligns the name size to the PT_NOTE p_align to find the
 * descriptor, and the name "Xen\0" is 4 bytes. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4				/* namesz */
	.long 8				/* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_start32		/* low half */
	.long 0				/* high half */

	.section .text.entry, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	cli
	cld
	movl %ebx, boot_start_info	/* keep it before touching EBX */
	lgdt gdt_desc
	ljmp $0x18, $1f			/* 32-bit code selector of our GDT */
1:	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $boot_stack_top, %esp

	/* PML4 and PDPT are partly filled: clear them (8 KiB) even if the loader already did. */
	movl $pml4, %edi
	xorl %eax, %eax
	movl $2048, %ecx
	rep stosl

	movl $pdpt + PTE_P + PTE_W, %eax
	movl %eax, pml4
	movl $pd + PTE_P + PTE_W, %eax	/* PDPT[i] -> PD page i, one GiB each */
	movl $pdpt, %edi
	movl $MAP_GIB, %ecx
2:	movl %eax, (%edi)
	addl $4096, %eax
	addl $8, %edi
	loop 2b

	/* PD entries: index i maps 2 MiB at i << 21 (the high half is i >> 11). */
	xorl %esi, %esi
3:	movl %esi, %eax
	shll $21, %eax
	orl $PTE_P + PTE_W + PTE_PS, %eax
	movl %esi, %edx
	shrl $11, %edx
	movl %eax, pd(, %esi, 8)
	movl %edx, pd + 4(, %esi, 8)
	incl %esi
	cmpl $MAP_GIB * 512, %esi
	jb 3b

	.globl enter_long_mode32
enter_long_mode32:		/* also used by the AP trampoline, with ESP set and DS flat */
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $CR0_PE + CR0_NE + CR0_PG, %eax
	movl %eax, %cr0
	ljmp $0x08, $start64

	.code64
start64:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	lgdt gdt_desc			/* reload with the 64-bit base (same value) */
	cmpl $0, ap_booting
	jne ap_entry64
	movl $boot_stack_top, %esp
	movl boot_start_info, %edi
	call guest_start
4:	cli
	hlt
	jmp 4b

/* An AP arrives here from the trampoline; smp.c set ap_stack_top and ap_cpu_index. */
ap_entry64:
	movq ap_stack_top, %rsp
	movl ap_cpu_index, %edi
	call ap_start
5:	cli
	hlt
	jmp 5b

	.section .rodata
	.balign 16
	.globl gdt
gdt:
	.quad 0				/* 0x00 */
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: flat data */
	.quad 0x00cf9a000000ffff	/* 0x18: flat 32-bit code */
gdt_end:
	.balign 8
	.globl gdt_desc
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt			/* lgdt reads 4 base bytes in 32-bit mode, 8 in 64-bit */

	.data
	.balign 8
	.globl boot_start_info
boot_start_info:
	.long 0
	.globl ap_booting
ap_booting:
	.long 0
	.globl ap_cpu_index
ap_cpu_index:
	.long 0
	.balign 8
	.globl ap_stack_top
ap_stack_top:
	.quad 0

	.bss
	.balign 4096
	.globl pml4
pml4:
	.skip 4096
pdpt:
	.skip 4096
pd:
	.skip 4096 * MAP_GIB
boot_stack:
	.skip 16384
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
