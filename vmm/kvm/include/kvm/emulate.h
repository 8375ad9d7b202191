/* emulate.h: finishing instructions KVM hands back (KVM_EXIT_INTERNAL_ERROR with
 * KVM_INTERNAL_ERROR_EMULATION) with the instruction emulator in vmm/emu. */
#ifndef MVM_KVM_EMULATE_H
#define MVM_KVM_EMULATE_H

#include <stdbool.h>
#include <stdio.h>

#include "emu/emu.h"

struct vm;
struct vcpu;

/* Fills (f) with what the guest's CPUID says, from the VM's policy, or on KVM-PVM by running
 * CPUID in the guest (vCPU 0, before the guest is loaded: it uses guest RAM at 0x8000-0x9fff).
 * After the vCPUs exist and before boot. Returns 0 or -errno after logging. */
int emulate_features_init(struct vm *vm, struct emu_features *f);

/* Handles an emulation-failure exit on (v): gets the vCPU state, emulates one instruction,
 * writes back what changed or injects the fault. Returns true to re-enter the guest, false when
 * the instruction cannot be emulated (after printing a reproducible report). vCPU thread. */
bool emulate_on_exit(struct vcpu *v);

/* Prints the VM's per-mnemonic counters (--stats). */
void emulate_print_stats(struct vm *vm, FILE *f);

#endif
