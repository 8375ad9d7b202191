/* layout.h: the guest-physical address map that boot loaders, devices and the VM share.
 *
 *   0x00000000  real-mode IVT and BIOS data area (left as RAM, never written by mvm)
 *   0x00000500  GDT used to enter the kernel (boot/)
 *   0x00006000  PVH hvm_start_info, its memmap and module list
 *   0x00007000  Linux zero page (struct boot_params)
 *   0x00009000  identity page tables for the 64-bit boot protocol (PML4, PDPT, 4 PDs)
 *   0x00020000  kernel command line
 *   0x0009fc00  MP floating pointer and table (the EBDA, reserved in the memory map)
 *   0x000a0000  legacy VGA/ROM hole, reserved up to 1 MiB
 *   0x000fc000  --accel hybrid: the page table and the IDT that KVM sees (vmm/kvm/user_mode.c)
 *   0x000fe000  page tables of the SYSCALL trap window (vmm/kvm/syscall_trap.c)
 *   0x00100000  kernel (bzImage protected-mode part or ELF segments), then free RAM
 *   ...         initrd at the top of low RAM
 *   0xc0000000  MMIO hole up to 4 GiB: the SYSCALL trap page (2 MiB, nothing behind it),
 *               at 0xc0400000 the exception trap page of --accel hybrid (2 MiB, nothing),
 *               virtio-mmio windows, IOAPIC, LAPIC
 *   4 GiB       the rest of RAM when the guest has more than 3 GiB
 */
#ifndef MVM_CORE_LAYOUT_H
#define MVM_CORE_LAYOUT_H

#include <stdint.h>

#define LAYOUT_GDT		 0x500ULL
#define LAYOUT_PVH_START_INFO	 0x6000ULL
#define LAYOUT_ZERO_PAGE	 0x7000ULL
#define LAYOUT_PAGE_TABLES	 0x9000ULL
#define LAYOUT_PAGE_TABLES_SIZE	 0x6000ULL
#define LAYOUT_CMDLINE		 0x20000ULL
#define LAYOUT_CMDLINE_MAX	 0x10000ULL
#define LAYOUT_BOOT_STACK	 0x8ff0ULL
#define LAYOUT_EBDA		 0x9fc00ULL
#define LAYOUT_LEGACY_HOLE_END	 0x100000ULL
#define LAYOUT_KERNEL_DEFAULT	 0x100000ULL

#define LAYOUT_SYSCALL_TRAP_PDPT 0xfe000ULL
#define LAYOUT_SYSCALL_TRAP_PD	 0xff000ULL
#define LAYOUT_HYBRID_PT	 0xfc000ULL
#define LAYOUT_HYBRID_IDT	 0xfd000ULL

#define LAYOUT_MMIO_HOLE	 0xc0000000ULL
/* Guest-physical target of the SYSCALL trap window: must have no memory slot and no device. */
#define LAYOUT_SYSCALL_TRAP_GPA	 0xc0000000ULL
/* Guest-physical target of --accel hybrid's exception trap page: no memory slot, no device. */
#define LAYOUT_HYBRID_TRAP_GPA	 0xc0400000ULL
#define LAYOUT_MMIO_HOLE_END	 0x100000000ULL
#define LAYOUT_HIGH_RAM		 0x100000000ULL

/* virtio-mmio device windows, 4 KiB each (virtio 1.2 section 4.2.2). */
#define LAYOUT_VIRTIO_MMIO_BASE	 0xd0000000ULL
#define LAYOUT_VIRTIO_MMIO_SIZE	 0x1000ULL
#define LAYOUT_IOAPIC		 0xfec00000ULL
#define LAYOUT_LAPIC		 0xfee00000ULL

/* IRQ lines on the in-kernel IOAPIC (24 pins): ISA IRQs 0-15, virtio devices from 5 upward
 * where free and then 16-23. */
#define LAYOUT_IRQ_KEYBOARD 1	/* the i8042's keyboard port (ISA IRQ 1) */
#define LAYOUT_IRQ_SERIAL0	 4
#define LAYOUT_IOAPIC_PINS	 24

/* Smallest and largest guest RAM that mvm accepts. The upper bound keeps the guest physical
 * address width (and the page tables built for it) within what every x86-64 CPU offers. */
#define LAYOUT_RAM_MIN		 (16ULL << 20)
#define LAYOUT_RAM_MAX		 (512ULL << 30)

#endif
