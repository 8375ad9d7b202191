/* state.h: a KVM VM's state to and from a snapshot's state file (core/snapfile.h). */
#ifndef MVM_KVM_STATE_H
#define MVM_KVM_STATE_H

#include <stdbool.h>
#include <stddef.h>

struct vm;
struct snap_writer;
struct snap_reader;

/* At creation: the MSRs a snapshot will save (vm->snapshot_msrs). Returns 0 or -errno. */
int vm_state_init(struct vm *vm);
/* Puts every vCPU's and the VM's KVM state into (w). The vCPUs must be parked (stop_pause)
 * with their last exit completed (vcpu.c re-enters KVM_RUN with immediate_exit before it
 * parks). Returns 0 or -errno after logging. */
int vm_save_state(struct vm *vm, struct snap_writer *w);
/* Puts it back into a VM created with the same RAM size and vCPU count, before its vCPUs
 * run. Refuses state from another CPU model (CPUID). With (clock_realtime) the KVM clock is
 * moved on by the host's real time elapsed since the snapshot (KVM_CLOCK_REALTIME), so a
 * guest on kvm-clock wakes with the host's date; otherwise it goes on from the snapshot's.
 * Returns 0, or -errno with the reason in (err) (KVM's refusals are logged too). */
int vm_restore_state(struct vm *vm, const struct snap_reader *r, bool clock_realtime, char *err,
		     size_t errlen);

#endif
