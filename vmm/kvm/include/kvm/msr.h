/* msr.h: MSR values a vCPU starts with. */
#ifndef MVM_KVM_MSR_H
#define MVM_KVM_MSR_H

/* Sets the MSRs a Linux guest expects at boot (see msr.c). Returns 0 or -errno. */
int msr_set_boot_values(int vcpu_fd);

#endif
