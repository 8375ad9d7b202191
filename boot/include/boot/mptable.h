/* mptable.h: the Intel MultiProcessor Specification 1.4 table that tells a guest without ACPI
 * about its CPUs, its IOAPIC and how the ISA IRQs are wired. */
#ifndef MVM_BOOT_MPTABLE_H
#define MVM_BOOT_MPTABLE_H

#include <stddef.h>

#include "core/guest_mem.h"

/* Local APIC IDs are 8 bits, 0xff is the broadcast ID and the IOAPIC takes ID (ncpus). */
#define MPTABLE_MAX_CPUS 254

/* Bytes the floating pointer and the configuration table take for (ncpus) CPUs, or 0 when
 * (ncpus) is outside [1, MPTABLE_MAX_CPUS]. */
size_t mptable_size(unsigned int ncpus);

/* Writes the floating pointer at LAYOUT_EBDA (where Linux looks: the last KiB of base memory)
 * and the configuration table right after it: one enabled processor per CPU (APIC ID = index,
 * CPU 0 the bootstrap processor), an ISA bus, one IOAPIC (ID ncpus) at LAYOUT_IOAPIC, ISA IRQs
 * 0-15 on IOAPIC pins 0-15, ExtINT on LINT0 and NMI on LINT1. For more than 40 CPUs the table
 * runs past 0xa0000 into the legacy hole, which is reserved in the memory map and backed by RAM.
 * Returns 0, -EINVAL for (ncpus) out of range, -EFAULT when the range is not in guest RAM;
 * writes nothing on error. */
int mptable_write(const struct guest_mem *mem, unsigned int ncpus);

#endif
