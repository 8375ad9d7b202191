/* msr.h: MSR values a vCPU starts with. */
#ifndef MVM_KVM_MSR_H
#define MVM_KVM_MSR_H

#include <stdint.h>

/* Sets the MSRs a Linux guest expects at boot (see msr.c). Returns 0 or -errno. */
int msr_set_boot_values(int vcpu_fd);

/* KVM_GET_MSRS / KVM_SET_MSRS of (n) (at most 8) MSRs (idx) on vCPU (vcpu_fd): 0 when KVM took
 * all of them, else -EIO (no message: the caller says what it needed them for). */
int msr_get(int vcpu_fd, const uint32_t *idx, uint64_t *val, unsigned int n);
int msr_set(int vcpu_fd, const uint32_t *idx, const uint64_t *val, unsigned int n);

#endif
