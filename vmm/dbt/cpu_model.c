/* cpu_model.c: the CPU that --accel dbt presents: what CPUID says, and the emulator features
 * that follow from it. Only what the engine implements is advertised, so an advertised
 * instruction the engine lacks is a bug (reported, VM stopped) and anything else is #UD.
 *
 * Model: "GenuineIntel" family 6 model 0x36, x86-64 with SSE2 (the x86-64 baseline), CX8, CX16, CMOV,
 * FXSR, PAT, PGE, PSE, PAE, NX, SYSCALL, LAHF, POPCNT, LZCNT (ABM), MOVBE, RDTSCP, SMEP,
 * ERMS, an xAPIC, no XSAVE, no AVX, no PCID, no x2APIC, no TSC deadline, no MTRRs.
 * Time: the TSC runs at 1 GHz from CLOCK_MONOTONIC (stated in leaves 0x15 and 0x16), which is
 * also the local APIC timer's clock, so the guest needs no calibration and never drifts from
 * host time. */
#include <string.h>
#include <time.h>

#include "dbt_internal.h"

#define TSC_HZ 1000000000ull

void dbt_cpu_model_features(struct emu_features *f)
{
	memset(f, 0, sizeof(*f));
	f->xcr0_mask = 3;		/* x87 and SSE; XSAVE is not advertised */
	f->xsave_offset[1] = 160;
	f->xsave_size[0] = 160;
	f->xsave_size[1] = 256;
	f->maxphyaddr = 40;
	f->popcnt = true;
	f->lzcnt = true;
	f->rdtscp = true;
	f->cx16 = true;
	f->sse = true;
	f->fxsr = true;
}

uint64_t dbt_tsc(struct emu_vcpu *v)
{
	struct dbt *d = ((struct dbt_cpu *)v)->d;
	struct timespec ts;

	if (d->native_on)
		return d->native.tsc(d->native.ctx);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --accel hybrid: user mode reads the host's TSC, so leaf 0x15 states its rate (tsc_khz) as
 * crystal (1 GHz, kept: the APIC timer's clock) * num / den. Linux multiplies the crystal in
 * kHz by num in 32 bits (native_calibrate_tsc()), so num stays below 4294: the best rational
 * approximation of tsc_khz / 1e6 with that bound (continued fractions; error < 1e-6). */
static void tsc_ratio(uint64_t tsc_khz, uint32_t *num, uint32_t *den)
{
	uint64_t p0 = 0, q0 = 1, p1 = 1, q1 = 0, a = tsc_khz, b = 1000000;

	*num = (uint32_t)(tsc_khz / 1000);
	*den = 1000;
	while (b) {
		uint64_t t = a / b, p2 = t * p1 + p0, q2 = t * q1 + q0, r = a % b;

		if (p2 >= 4294 || q2 > 0xffffffffull)
			break;
		*num = (uint32_t)p2;
		*den = (uint32_t)q2;
		p0 = p1, q0 = q1, p1 = p2, q1 = q2;
		a = b;
		b = r;
	}
}

static void vendor(uint32_t out[4], const char id[12])
{
	memcpy(&out[1], id, 4);
	memcpy(&out[3], id + 4, 4);
	memcpy(&out[2], id + 8, 4);
}

void dbt_cpuid(struct emu_vcpu *v, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	struct dbt_cpu *c = (struct dbt_cpu *)v;
	unsigned int ncpus = c->d->ncpus;

	out[0] = out[1] = out[2] = out[3] = 0;
	switch (leaf) {
	case 0:
		out[0] = 0x16;
		vendor(out, "GenuineIntel");
		break;
	case 1:
		/* Family 6, model 0x36 (Atom Saltwell), stepping 1: a model Linux knows to
		 * speculate nothing (cpu_vuln_whitelist, NO_SPECULATION), which is true of the
		 * engine, so the guest turns on no Meltdown/Spectre/MDS mitigation (no page-
		 * table isolation: no CR3 switch on every system call). */
		out[0] = 0x00030661;
		out[1] = (v->index << 24) | ((ncpus > 1 ? ncpus : 1) << 16) | (8 << 8);
		/* ECX: CX16, MOVBE, POPCNT, hypervisor. */
		out[2] = (1u << 13) | (1u << 22) | (1u << 23) | (1u << 31);
		/* EDX: FPU, PSE, TSC, MSR, PAE, CX8, APIC, PGE, CMOV, PAT, CLFSH, FXSR, SSE,
		 * SSE2, and HTT with several CPUs. */
		out[3] = (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) |
			 (1u << 9) | (1u << 13) | (1u << 15) | (1u << 16) | (1u << 19) |
			 (1u << 24) | (1u << 25) | (1u << 26) | (ncpus > 1 ? 1u << 28 : 0);
		break;
	case 7:
		if (sub == 0)
			out[1] = (1u << 7) | (1u << 9);	/* SMEP, ERMS */
		break;
	case 0x15:
		out[0] = 1;			/* TSC = crystal * EBX / EAX */
		out[1] = 1;
		out[2] = (uint32_t)TSC_HZ;	/* crystal (and APIC timer) clock, Hz */
		if (c->d->native_on)
			tsc_ratio(c->d->native.tsc_khz, &out[1], &out[0]);
		break;
	case 0x16:
		out[0] = out[1] = (uint32_t)(TSC_HZ / 1000000);	/* MHz */
		out[2] = (uint32_t)(TSC_HZ / 1000000);
		if (c->d->native_on)
			out[0] = (uint32_t)(c->d->native.tsc_khz / 1000);
		break;
	case 0x40000000:
		/* No hypervisor interface: the signature is mvm's, the max leaf 0. */
		out[0] = 0x40000000;
		vendor(out, "mvmmvmmvmmvm");
		break;
	case 0x80000000:
		out[0] = 0x80000008;
		break;
	case 0x80000001:
		out[2] = (1u << 0) | (1u << 5);	/* LAHF/SAHF in 64-bit mode, ABM (LZCNT) */
		/* SYSCALL, NX, RDTSCP, LM. */
		out[3] = (1u << 11) | (1u << 20) | (1u << 27) | (1u << 29);
		break;
	case 0x80000002:
	case 0x80000003:
	case 0x80000004: {
		/* The brand string, 48 bytes NUL-padded (SDM Vol. 2A CPUID, leaves 80000002H-
		 * 80000004H): the max extended leaf says they exist, so they are not empty. */
		static const char brand[48] = "mvm engine virtual CPU";

		memcpy(out, brand + 16 * (leaf - 0x80000002), 16);
		break;
	}
	case 0x80000008:
		out[0] = 40 | (48 << 8);	/* physical and linear address bits */
		break;
	default:
		break;
	}
}

void dbt_model_cpuid(struct dbt *d, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	dbt_cpuid(&d->cpus[0].v, leaf, sub, out);
}
