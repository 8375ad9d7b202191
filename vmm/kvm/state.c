/* state.c: a KVM VM's state to and from a snapshot's state file (core/snapfile.h): each vCPU's
 * registers, FPU/XSAVE, MSRs, LAPIC, pending events, debug registers and run state, the SYSCALL
 * takeover's view of LSTAR/CSTAR, and the VM's in-kernel PIC/IOAPIC, PIT and clock.
 *
 * The order of a restore follows what each KVM_SET_* needs of the ones before it (KVM API doc
 * 4.x): CPUID is set when the vCPU is created; then MSRs (the APIC base among them), general and
 * special registers, XSAVE and XCRs, debug registers, the LAPIC (after the APIC base), the
 * run state and last the pending events. The VM's irqchip, PIT and clock come after the vCPUs,
 * so the clock is the last thing set before the guest runs. */
#define pr_fmt(fmt) "snapshot: " fmt
#include <errno.h>
#include <stdbool.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>

#include "core/snapfile.h"
#include "kvm/cpuid.h"
#include "kvm/state.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "util/log.h"

/* SDM Vol. 4, table 2-2. */
#define MSR_IA32_TSC	      0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0

/* The MSRs KVM saves and restores for this VM (KVM_GET_MSR_INDEX_LIST), at most this many. */
#define MAX_MSRS 512

struct msr_pair {
	uint32_t index;
	uint32_t reserved;
	uint64_t value;
};

struct trap_state {
	uint64_t lstar, cstar;
};

/* One vCPU ioctl; a failure is logged with the request's name. */
#define VCPU_IOCTL(v, req, arg) vcpu_ioctl((v), (req), (arg), #req)

static int vcpu_ioctl(struct vcpu *v, unsigned long req, void *arg, const char *name)
{
	if (ioctl(v->fd, req, arg) < 0) {
		int e = errno;

		pr_err("%s on vCPU %u: %s", name, v->index, strerror(e));
		return -e;
	}
	return 0;
}

int vm_state_init(struct vm *vm)
{
	struct {
		struct kvm_msr_list hdr;
		uint32_t indices[MAX_MSRS];
	} list = {.hdr.nmsrs = MAX_MSRS};

	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &list) < 0) {
		pr_err("KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
		return -errno;
	}
	vm->snapshot_msrs = malloc(list.hdr.nmsrs * sizeof(uint32_t) + 1);
	if (!vm->snapshot_msrs)
		return -ENOMEM;
	memcpy(vm->snapshot_msrs, list.indices, list.hdr.nmsrs * sizeof(uint32_t));
	vm->nsnapshot_msrs = list.hdr.nmsrs;
	return 0;
}

/* Reads every MSR in (idx) that KVM will read for this vCPU: KVM_GET_MSRS stops at the first
 * one it refuses (some listed MSRs depend on CPUID), which is then skipped. */
static int save_msrs(struct vcpu *v, const uint32_t *idx, unsigned int n, struct snap_writer *w)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MAX_MSRS];
	} *m = calloc(1, sizeof(*m));
	struct msr_pair *out = calloc(MAX_MSRS, sizeof(*out));
	unsigned int nout = 0, at = 0;

	if (!m || !out) {
		free(m);
		free(out);
		return -ENOMEM;
	}
	while (at < n) {
		int got;

		m->hdr.nmsrs = n - at;
		for (unsigned int i = at; i < n; i++)
			m->e[i - at] = (struct kvm_msr_entry){.index = idx[i]};
		got = ioctl(v->fd, KVM_GET_MSRS, m);
		if (got < 0) {
			pr_err("KVM_GET_MSRS on vCPU %u: %s", v->index, strerror(errno));
			free(m);
			free(out);
			return -errno;
		}
		for (int i = 0; i < got; i++)
			out[nout++] = (struct msr_pair){.index = m->e[i].index,
							.value = m->e[i].data};
		at += (unsigned int)got + 1; /* past the one KVM refused */
	}
	snap_put(w, SNAP_KVM_MSRS, v->index, out, nout * sizeof(*out));
	free(m);
	free(out);
	return 0;
}

static int restore_msrs(struct vcpu *v, const struct msr_pair *in, unsigned int n)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MAX_MSRS];
	} *m = calloc(1, sizeof(*m));
	unsigned int at = 0;
	int ret = 0;

	if (!m)
		return -ENOMEM;
	while (at < n) {
		int done;

		m->hdr.nmsrs = n - at;
		for (unsigned int i = at; i < n; i++)
			m->e[i - at] = (struct kvm_msr_entry){.index = in[i].index,
							      .data = in[i].value};
		done = ioctl(v->fd, KVM_SET_MSRS, m);
		if (done < 0) {
			ret = -errno;
			pr_err("KVM_SET_MSRS on vCPU %u: %s", v->index, strerror(errno));
			break;
		}
		if ((unsigned int)done < n - at)
			pr_info("vCPU %u: KVM did not take MSR 0x%x = 0x%llx back; skipped",
				v->index, in[at + done].index,
				(unsigned long long)in[at + done].value);
		at += (unsigned int)done + 1;
	}
	free(m);
	return ret;
}

static int save_vcpu(struct vcpu *v, const uint32_t *msrs, unsigned int nmsrs,
		     struct snap_writer *w)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave *xsave = calloc(1, sizeof(*xsave));
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs dregs;
	struct kvm_mp_state mp;
	struct trap_state trap = {.lstar = v->guest_lstar, .cstar = v->guest_cstar};
	int ret;

	if (!xsave)
		return -ENOMEM;
	if ((ret = VCPU_IOCTL(v, KVM_GET_REGS, &regs)) ||
	    (ret = VCPU_IOCTL(v, KVM_GET_SREGS, &sregs)) ||
	    (ret = VCPU_IOCTL(v, KVM_GET_XSAVE, xsave)) ||
	    (ret = VCPU_IOCTL(v, KVM_GET_XCRS, &xcrs)) ||
	    (ret = VCPU_IOCTL(v, KVM_GET_LAPIC, &lapic)) ||
	    (ret = VCPU_IOCTL(v, KVM_GET_VCPU_EVENTS, &events)) ||
	    (ret = VCPU_IOCTL(v, KVM_GET_DEBUGREGS, &dregs)) ||
	    (ret = VCPU_IOCTL(v, KVM_GET_MP_STATE, &mp)) ||
	    (ret = save_msrs(v, msrs, nmsrs, w))) {
		free(xsave);
		return ret;
	}
	snap_put(w, SNAP_KVM_REGS, v->index, &regs, sizeof(regs));
	snap_put(w, SNAP_KVM_SREGS, v->index, &sregs, sizeof(sregs));
	snap_put(w, SNAP_KVM_XSAVE, v->index, xsave, sizeof(*xsave));
	snap_put(w, SNAP_KVM_XCRS, v->index, &xcrs, sizeof(xcrs));
	snap_put(w, SNAP_KVM_LAPIC, v->index, &lapic, sizeof(lapic));
	snap_put(w, SNAP_KVM_EVENTS, v->index, &events, sizeof(events));
	snap_put(w, SNAP_KVM_DEBUGREGS, v->index, &dregs, sizeof(dregs));
	snap_put(w, SNAP_KVM_MP_STATE, v->index, &mp, sizeof(mp));
	snap_put(w, SNAP_KVM_TRAP, v->index, &trap, sizeof(trap));
	free(xsave);
	return 0;
}

static size_t cpuid_size(const struct kvm_cpuid2 *c)
{
	return sizeof(*c) + c->nent * sizeof(c->entries[0]);
}

int vm_save_state(struct vm *vm, struct snap_writer *w)
{
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = {0};
	int ret = 0;

	snap_put(w, SNAP_KVM_CPUID, 0, vm->cpuid, cpuid_size(vm->cpuid));
	for (unsigned int i = 0; !ret && i < vm->ncpus; i++)
		ret = save_vcpu(&vm->vcpus[i], vm->snapshot_msrs, vm->nsnapshot_msrs, w);
	for (unsigned int chip = 0; !ret && chip < 3; chip++) {
		struct kvm_irqchip c = {.chip_id = chip};

		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &c) < 0) {
			pr_err("KVM_GET_IRQCHIP %u: %s", chip, strerror(errno));
			ret = -errno;
		} else {
			snap_put(w, SNAP_KVM_IRQCHIP, chip, &c, sizeof(c));
		}
	}
	if (!ret && ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0) {
		pr_err("KVM_GET_PIT2: %s", strerror(errno));
		ret = -errno;
	}
	if (!ret && ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0) {
		pr_err("KVM_GET_CLOCK: %s", strerror(errno));
		ret = -errno;
	}
	if (!ret) {
		snap_put(w, SNAP_KVM_PIT, 0, &pit, sizeof(pit));
		snap_put(w, SNAP_KVM_CLOCK, 0, &clock, sizeof(clock));
	}
	return ret;
}

/* A section every restore needs: its absence or wrong size is a bad state file. */
static const void *need(const struct snap_reader *r, enum snap_type type, uint32_t index,
			size_t len, const char *what, char *err, size_t errlen)
{
	const void *p = snap_get(r, type, index, len);

	if (!p)
		snprintf(err, errlen, "the state file has no %s for %u of the size this mvm uses",
			 what, index);
	return p;
}

/* (tsc_delta): ticks added to the saved TSC (--clock-realtime; 0 otherwise). */
static int restore_vcpu(struct vcpu *v, const struct snap_reader *r, uint64_t tsc_delta,
			char *err, size_t errlen)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave *xsave = calloc(1, sizeof(*xsave));
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs dregs;
	struct kvm_mp_state mp;
	struct trap_state trap;
	const void *p[9];
	const struct msr_pair *msrs;
	size_t msr_len;
	int ret;

	if (!xsave)
		return -ENOMEM;
	p[0] = need(r, SNAP_KVM_REGS, v->index, sizeof(regs), "registers", err, errlen);
	p[1] = need(r, SNAP_KVM_SREGS, v->index, sizeof(sregs), "special registers", err, errlen);
	p[2] = need(r, SNAP_KVM_XSAVE, v->index, sizeof(*xsave), "XSAVE area", err, errlen);
	p[3] = need(r, SNAP_KVM_XCRS, v->index, sizeof(xcrs), "XCRs", err, errlen);
	p[4] = need(r, SNAP_KVM_LAPIC, v->index, sizeof(lapic), "LAPIC", err, errlen);
	p[5] = need(r, SNAP_KVM_EVENTS, v->index, sizeof(events), "events", err, errlen);
	p[6] = need(r, SNAP_KVM_DEBUGREGS, v->index, sizeof(dregs), "debug registers", err,
		    errlen);
	p[7] = need(r, SNAP_KVM_MP_STATE, v->index, sizeof(mp), "run state", err, errlen);
	p[8] = need(r, SNAP_KVM_TRAP, v->index, sizeof(trap), "SYSCALL trap state", err, errlen);
	msrs = snap_get_any(r, SNAP_KVM_MSRS, v->index, &msr_len);
	for (unsigned int i = 0; i < 9; i++)
		if (!p[i]) {
			free(xsave);
			return -EINVAL;
		}
	if (!msrs || msr_len % sizeof(*msrs) || msr_len / sizeof(*msrs) > MAX_MSRS) {
		snprintf(err, errlen, "the state file's MSRs of vCPU %u are malformed", v->index);
		free(xsave);
		return -EINVAL;
	}
	if (tsc_delta) {
		struct msr_pair *copy = malloc(msr_len);

		if (!copy) {
			free(xsave);
			return -ENOMEM;
		}
		memcpy(copy, msrs, msr_len);
		for (size_t i = 0; i < msr_len / sizeof(*copy); i++)
			if (copy[i].index == MSR_IA32_TSC)
				copy[i].value += tsc_delta;
		msrs = copy;
	}
	memcpy(&regs, p[0], sizeof(regs));
	memcpy(&sregs, p[1], sizeof(sregs));
	memcpy(xsave, p[2], sizeof(*xsave));
	memcpy(&xcrs, p[3], sizeof(xcrs));
	memcpy(&lapic, p[4], sizeof(lapic));
	memcpy(&events, p[5], sizeof(events));
	memcpy(&dregs, p[6], sizeof(dregs));
	memcpy(&mp, p[7], sizeof(mp));
	memcpy(&trap, p[8], sizeof(trap));
	/* KVM checks every value it is given (a bad one is -EINVAL, logged by name). */
	if ((ret = restore_msrs(v, msrs, (unsigned int)(msr_len / sizeof(*msrs)))) ||
	    (ret = VCPU_IOCTL(v, KVM_SET_REGS, &regs)) ||
	    (ret = VCPU_IOCTL(v, KVM_SET_SREGS, &sregs)) ||
	    (ret = VCPU_IOCTL(v, KVM_SET_XSAVE, xsave)) ||
	    (ret = VCPU_IOCTL(v, KVM_SET_XCRS, &xcrs)) ||
	    (ret = VCPU_IOCTL(v, KVM_SET_DEBUGREGS, &dregs)) ||
	    (ret = VCPU_IOCTL(v, KVM_SET_LAPIC, &lapic)) ||
	    (ret = VCPU_IOCTL(v, KVM_SET_MP_STATE, &mp)) ||
	    (ret = VCPU_IOCTL(v, KVM_SET_VCPU_EVENTS, &events)))
		snprintf(err, errlen, "KVM refused vCPU %u's state (see the log)", v->index);
	/* KVM_SET_LAPIC resets the LAPIC timer, which drops the TSC deadline the MSRs set: an
	 * idle guest waiting for that deadline would never wake. Set it again now. */
	for (size_t i = 0; !ret && i < msr_len / sizeof(*msrs); i++)
		if (msrs[i].index == MSR_IA32_TSC_DEADLINE)
			ret = restore_msrs(v, &msrs[i], 1);
	v->guest_lstar = trap.lstar;
	v->guest_cstar = trap.cstar;
	if (tsc_delta)
		free((void *)msrs);
	free(xsave);
	return ret;
}

/* --clock-realtime: the TSC ticks the host's real time moved on since the snapshot was taken
 * (its KVM clock reading carries the host's CLOCK_REALTIME then). A guest on kvm-clock goes on
 * by the KVM clock, one on the TSC (Linux on KVM-PVM here) by the TSC: both move on alike. */
static int realtime_tsc_delta(struct vm *vm, const struct snap_reader *r, uint64_t *delta,
			      char *err, size_t errlen)
{
	struct kvm_clock_data clock;
	const void *p = need(r, SNAP_KVM_CLOCK, 0, sizeof(clock), "clock", err, errlen);
	struct timespec now;
	int khz;
	int64_t ns;

	*delta = 0;
	if (!p)
		return -EINVAL;
	memcpy(&clock, p, sizeof(clock));
	if (!(clock.flags & KVM_CLOCK_REALTIME)) {
		snprintf(err, errlen, "the snapshot's clock has no host real-time stamp "
			 "(KVM_CLOCK_REALTIME): the clock cannot be stepped to the host's");
		return -EINVAL;
	}
	khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	if (khz <= 0) {
		snprintf(err, errlen, "KVM_GET_TSC_KHZ: %s", strerror(errno));
		return -EINVAL;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - (int64_t)clock.realtime;
	if (ns > 0)
		*delta = (uint64_t)((unsigned __int128)ns * (unsigned int)khz / 1000000);
	return 0;
}

int vm_restore_state(struct vm *vm, const struct snap_reader *r, bool clock_realtime, char *err,
		     size_t errlen)
{
	const void *cpuid, *p;
	uint64_t tsc_delta = 0;
	size_t len;
	int ret = 0;

	/* Same host CPU, same KVM, same policy: anything else would hand the guest a CPU that
	 * changed under it. */
	cpuid = snap_get_any(r, SNAP_KVM_CPUID, 0, &len);
	if (!cpuid || len != cpuid_size(vm->cpuid)) {
		snprintf(err, errlen, "the snapshot was taken on another CPU model or KVM (its "
			 "CPUID table differs from this host's)");
		return -EINVAL;
	}
	/* Field by field (the entries' padding is whatever KVM left there), after the per-vCPU
	 * topology fields are set alike in both: KVM_GET_SUPPORTED_CPUID reports the APIC id of
	 * the host CPU that ran it in leaf 1, which mvm replaces for each vCPU anyway. */
	{
		struct kvm_cpuid2 *saved = malloc(len), *host = malloc(len);
		bool same = saved && host;

		if (same) {
			memcpy(saved, cpuid, len);
			memcpy(host, vm->cpuid, len);
			cpuid_set_topology(saved, 0, vm->ncpus);
			cpuid_set_topology(host, 0, vm->ncpus);
		}
		for (unsigned int i = 0; same && i < host->nent; i++) {
			const struct kvm_cpuid_entry2 *e = &saved->entries[i], *h = &host->entries[i];

			if (e->function != h->function || e->index != h->index ||
			    e->flags != h->flags || e->eax != h->eax || e->ebx != h->ebx ||
			    e->ecx != h->ecx || e->edx != h->edx) {
				snprintf(err, errlen, "the snapshot was taken on another CPU model or "
					 "KVM (CPUID leaf 0x%x.%u differs from this host's)",
					 h->function, h->index);
				same = false;
			}
		}
		if (!saved || !host)
			snprintf(err, errlen, "out of memory");
		free(saved);
		free(host);
		if (!same)
			return -EINVAL;
	}
	if (clock_realtime && (ret = realtime_tsc_delta(vm, r, &tsc_delta, err, errlen)))
		return ret;
	for (unsigned int i = 0; !ret && i < vm->ncpus; i++)
		ret = restore_vcpu(&vm->vcpus[i], r, tsc_delta, err, errlen);
	for (unsigned int chip = 0; !ret && chip < 3; chip++) {
		struct kvm_irqchip c;

		if (!(p = need(r, SNAP_KVM_IRQCHIP, chip, sizeof(c), "interrupt controller", err,
			       errlen)))
			return -EINVAL;
		memcpy(&c, p, sizeof(c));
		if (c.chip_id != chip || ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &c) < 0) {
			snprintf(err, errlen, "KVM_SET_IRQCHIP %u: %s", chip,
				 c.chip_id != chip ? "wrong chip" : strerror(errno));
			return -EINVAL;
		}
	}
	if (!ret) {
		struct kvm_pit_state2 pit;
		struct kvm_clock_data clock;

		if (!(p = need(r, SNAP_KVM_PIT, 0, sizeof(pit), "PIT", err, errlen)))
			return -EINVAL;
		memcpy(&pit, p, sizeof(pit));
		if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0) {
			snprintf(err, errlen, "KVM_SET_PIT2: %s", strerror(errno));
			return -EINVAL;
		}
		if (!(p = need(r, SNAP_KVM_CLOCK, 0, sizeof(clock), "clock", err, errlen)))
			return -EINVAL;
		memcpy(&clock, p, sizeof(clock));
		/* The clock value, and with (clock_realtime) the host's real time it was read
		 * at (KVM API doc, KVM_SET_CLOCK: KVM adds the real time elapsed since). */
		clock.flags = clock_realtime ? KVM_CLOCK_REALTIME : 0;
		if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0) {
			snprintf(err, errlen, "KVM_SET_CLOCK: %s", strerror(errno));
			return -EINVAL;
		}
	}
	return ret;
}
