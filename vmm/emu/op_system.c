/* op_system.c: system uops: interrupt flag, hlt, cpuid, MSRs, time stamp, control and debug
 * registers, descriptor tables, task and LDT registers, pushf/popf, syscall/sysret/swapgs,
 * invlpg, and the #UD and generic paths (SDM Vol. 2 and Vol. 3A ch. 2, 5, 6). */
#include "uop_internal.h"

_Static_assert(ZYDIS_MNEMONIC_MAX_VALUE < EMU_MNEMONICS, "generic counters by mnemonic");

#define CR0_WP	  (1ull << 16)
#define CR0_AM	  (1ull << 18)
#define CR0_NW	  (1ull << 29)
#define CR0_CD	  (1ull << 30)
#define CR0_PG	  (1ull << 31)
#define CR0_ET	  (1ull << 4)
#define CR4_PAE	  (1ull << 5)
#define EFER_SCE  (1ull << 0)
#define EFER_LME  (1ull << 8)
#define EFER_LMA  (1ull << 10)
#define EFER_NXE  (1ull << 11)

#define MSR_TSC		   0x10
#define MSR_APIC_BASE	   0x1b
#define MSR_SYSENTER_CS	   0x174
#define MSR_SYSENTER_ESP   0x175
#define MSR_SYSENTER_EIP   0x176
#define MSR_MISC_ENABLE	   0x1a0
#define MSR_PAT		   0x277
#define MSR_EFER	   0xc0000080
#define MSR_STAR	   0xc0000081
#define MSR_LSTAR	   0xc0000082
#define MSR_CSTAR	   0xc0000083
#define MSR_SFMASK	   0xc0000084
#define MSR_FS_BASE	   0xc0000100
#define MSR_GS_BASE	   0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC_AUX	   0xc0000103

static bool canonical(uint64_t la)
{
	return (uint64_t)((int64_t)(la << 16) >> 16) == la;
}

/* Privileged instructions raise #GP(0) outside CPL 0 (SDM Vol. 3A 5.9). */
#define NEED_CPL0(v)                                                                               \
	do {                                                                                       \
		if ((v)->cpl)                                                                      \
			return raise_gp0(v);                                                         \
	} while (0)

UOP_DEF(invalid)
{
	return raise_ud(v);
}

UOP_DEF(ud)
{
	return raise_ud(v);
}

/* A uop of a block that was invalidated while it ran (a store into its own code): leave at
 * this instruction, which is then translated afresh. */
UOP_DEF(stale)
{
	v->cpu.rip = uop_rip(u);
	return EXIT_MODE;
}

static bool iopl_ok(const struct emu_vcpu *v)
{
	return !(v->cpu.cr0 & CR0_PE) || v->cpl <= ((v->cpu.rflags >> 12) & 3);
}

UOP_DEF(cli)
{
	if (!iopl_ok(v))
		return raise_gp0(v);
	v->cpu.rflags &= ~RF_IF;
	return exit_after(v, u, EXIT_BRANCH);
}

/* sti: interrupts are recognized only after the next instruction (SDM Vol. 2 STI). */
UOP_DEF(sti)
{
	if (!iopl_ok(v))
		return raise_gp0(v);
	if (!(v->cpu.rflags & RF_IF))
		v->int_shadow = true;
	v->cpu.rflags |= RF_IF;
	return exit_after(v, u, EXIT_BRANCH);
}

UOP_DEF(hlt)
{
	NEED_CPL0(v);
	return exit_after(v, u, EXIT_HALT);
}

/* pause: a spin-wait hint. The engine runs vCPUs in turn, so a vCPU spinning on a lock gives
 * its turn to the others, one of which holds it. */
UOP_DEF(pause)
{
	v->yield = true;
	return exit_after(v, u, EXIT_BRANCH);
}

/* RDPMC: #GP(0) at CPL > 0 with CR4.PCE clear, and for an ECX that names no counter, which
 * with no performance counters (CPUID leaf 0AH absent) is every ECX (SDM Vol. 2B RDPMC). */
UOP_DEF(rdpmc)
{
	return raise_gp0(v);
}

UOP_DEF(wbinvd)
{
	NEED_CPL0(v);
	return EXIT_NEXT;
}

UOP_DEF(cpuid)
{
	uint32_t r[4] = {0};

	v->plat->cpuid(v, (uint32_t)v->cpu.gpr[EMU_RAX], (uint32_t)v->cpu.gpr[EMU_RCX], r);
	v->cpu.gpr[EMU_RAX] = r[0];
	v->cpu.gpr[EMU_RBX] = r[1];
	v->cpu.gpr[EMU_RCX] = r[2];
	v->cpu.gpr[EMU_RDX] = r[3];
	return EXIT_NEXT;
}

static uint64_t tsc_now(struct emu_vcpu *v)
{
	return v->plat->tsc(v) + v->msr.tsc_offset;
}

UOP_DEF(rdtsc)
{
	uint64_t t;

	if ((v->cpu.cr4 & CR4_TSD) && v->cpl)
		return raise_gp0(v);
	t = tsc_now(v);
	v->cpu.gpr[EMU_RAX] = (uint32_t)t;
	v->cpu.gpr[EMU_RDX] = t >> 32;
	return EXIT_NEXT;
}

UOP_DEF(rdtscp)
{
	if (!v->env.features->rdtscp)
		return raise_ud(v);
	v->cpu.gpr[EMU_RCX] = (uint32_t)v->cpu.tsc_aux;
	return body_rdtsc(v, u);
}

static int read_msr(struct emu_vcpu *v, uint32_t msr, uint64_t *val)
{
	struct emu_msrs *m = &v->msr;

	switch (msr) {
	case MSR_TSC: *val = tsc_now(v); return 0;
	case MSR_EFER: *val = v->cpu.efer; return 0;
	case MSR_STAR: *val = m->star; return 0;
	case MSR_LSTAR: *val = m->lstar; return 0;
	case MSR_CSTAR: *val = m->cstar; return 0;
	case MSR_SFMASK: *val = m->sfmask; return 0;
	case MSR_FS_BASE: *val = v->cpu.seg[EMU_FS].base; return 0;
	case MSR_GS_BASE: *val = v->cpu.seg[EMU_GS].base; return 0;
	case MSR_KERNEL_GS_BASE: *val = m->kernel_gs_base; return 0;
	case MSR_TSC_AUX: *val = v->cpu.tsc_aux; return 0;
	case MSR_SYSENTER_CS: *val = m->sysenter_cs; return 0;
	case MSR_SYSENTER_ESP: *val = m->sysenter_esp; return 0;
	case MSR_SYSENTER_EIP: *val = m->sysenter_eip; return 0;
	case MSR_PAT: *val = m->pat; return 0;
	case MSR_MISC_ENABLE: *val = m->misc_enable | 1; return 0; /* fast strings */
	case MSR_APIC_BASE: *val = v->apic_base; return 0;
	default: return v->plat->rdmsr ? v->plat->rdmsr(v, msr, val) : -1;
	}
}

/* Returns 0, -1 for #GP, or 1 when the write changed the mode (EFER, FS/GS bases). */
static int write_msr(struct emu_vcpu *v, uint32_t msr, uint64_t val)
{
	struct emu_msrs *m = &v->msr;

	switch (msr) {
	case MSR_TSC: m->tsc_offset = val - v->plat->tsc(v); return 0;
	case MSR_EFER: {
		uint64_t allowed = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;

		if (val & ~allowed)
			return -1;
		/* LME cannot change while paging is on (SDM Vol. 3A 9.8.5). */
		if ((v->cpu.cr0 & CR0_PG) && ((val ^ v->cpu.efer) & EFER_LME))
			return -1;
		v->cpu.efer = (val & ~EFER_LMA) | (v->cpu.efer & EFER_LMA);
		return 1;
	}
	case MSR_STAR: m->star = val; return 0;
	case MSR_LSTAR:
	case MSR_CSTAR:
		if (!canonical(val))
			return -1;
		*(msr == MSR_LSTAR ? &m->lstar : &m->cstar) = val;
		return 0;
	case MSR_SFMASK: m->sfmask = val & 0xffffffffull; return 0;
	case MSR_FS_BASE:
	case MSR_GS_BASE:
		if (!canonical(val))
			return -1;
		v->cpu.seg[msr == MSR_FS_BASE ? EMU_FS : EMU_GS].base = val;
		return 1;
	case MSR_KERNEL_GS_BASE:
		if (!canonical(val))
			return -1;
		m->kernel_gs_base = val;
		return 0;
	case MSR_TSC_AUX: v->cpu.tsc_aux = (uint32_t)val; return 0;
	case MSR_SYSENTER_CS: m->sysenter_cs = val & 0xffff; return 0;
	case MSR_SYSENTER_ESP: m->sysenter_esp = val; return 0;
	case MSR_SYSENTER_EIP: m->sysenter_eip = val; return 0;
	case MSR_PAT: m->pat = val; return 0;
	case MSR_MISC_ENABLE: m->misc_enable = val; return 0;
	default: return v->plat->wrmsr ? v->plat->wrmsr(v, msr, val) : -1;
	}
}

UOP_DEF(rdmsr)
{
	uint64_t val;

	NEED_CPL0(v);
	if (read_msr(v, (uint32_t)v->cpu.gpr[EMU_RCX], &val))
		return raise_gp0(v);
	v->cpu.gpr[EMU_RAX] = (uint32_t)val;
	v->cpu.gpr[EMU_RDX] = val >> 32;
	return EXIT_NEXT;
}

UOP_DEF(wrmsr)
{
	uint64_t val = (v->cpu.gpr[EMU_RDX] << 32) | (uint32_t)v->cpu.gpr[EMU_RAX];
	int ret;

	NEED_CPL0(v);
	ret = write_msr(v, (uint32_t)v->cpu.gpr[EMU_RCX], val);
	if (ret < 0)
		return raise_gp0(v);
	emu_vcpu_mode_changed(v, false);
	return exit_after(v, u, EXIT_MODE);
}

/* --- control and debug registers --- */

static uint64_t cr4_allowed(const struct emu_vcpu *v)
{
	const struct emu_features *f = v->env.features;
	/* VME, PVI, TSD, DE, PSE, PAE, MCE, PGE, PCE, OSFXSR, OSXMMEXCPT, SMEP; OSXSAVE with
	 * XSAVE. */
	uint64_t m = 0x7ff | (1ull << 20);

	if (f->avx || f->xcr0_mask > 3)
		m |= CR4_OSXSAVE;
	return m;
}

static int write_cr(struct emu_vcpu *v, unsigned int n, uint64_t val)
{
	struct emu_cpu *c = &v->cpu;

	switch (n) {
	case 0:
		if (val >> 32)
			return raise_gp0(v);
		val |= CR0_ET;
		if ((val & CR0_PG) && !(val & CR0_PE))
			return raise_gp0(v);
		if ((val & CR0_NW) && !(val & CR0_CD))
			return raise_gp0(v);
		/* Paging on with EFER.LME needs PAE (SDM Vol. 3A 9.8.5). */
		if ((val & CR0_PG) && !(c->cr0 & CR0_PG) && (c->efer & EFER_LME) &&
		    !(c->cr4 & CR4_PAE))
			return raise_gp0(v);
		c->cr0 = val;
		emu_vcpu_mode_changed(v, true);
		return 0;
	case 2:
		c->cr2 = val;
		return 0;
	case 3:
		c->cr3 = v->mode64 ? (val & 0x000ffffffffff000ull) | (val & 0x18) : (uint32_t)val;
		emu_tlb_flush(v);
		return 0;
	case 4:
		if (val & ~cr4_allowed(v))
			return raise_gp0(v);
		if ((c->efer & EFER_LMA) && !(val & CR4_PAE))
			return raise_gp0(v);
		c->cr4 = val;
		emu_vcpu_mode_changed(v, true);
		return 0;
	case 8:
		if (val & ~0xfull)
			return raise_gp0(v);
		c->cr8 = val;
		if (v->plat->lapic_write)
			v->plat->lapic_write(v, 0x80, val << 4, 4);
		return 0;
	default:
		return raise_ud(v);
	}
}

static int read_cr(struct emu_vcpu *v, unsigned int n, uint64_t *val)
{
	struct emu_cpu *c = &v->cpu;

	switch (n) {
	case 0: *val = c->cr0; return 0;
	case 2: *val = c->cr2; return 0;
	case 3: *val = c->cr3; return 0;
	case 4: *val = c->cr4; return 0;
	case 8:
		*val = v->plat->lapic_read ? (v->plat->lapic_read(v, 0x80, 4) >> 4) & 0xf : c->cr8;
		return 0;
	default: return raise_ud(v);
	}
}

/* mov cr: (reg) the control register, (rm) the GPR, (cond) 1 for a write. */
UOP_DEF(mov_cr)
{
	unsigned int osz = v->mode64 ? 8 : 4;
	uint64_t val;
	int ret;

	NEED_CPL0(v);
	if (u->cond) {
		ret = write_cr(v, u->reg, reg_get(v, u->rm, osz));
		if (ret)
			return ret;
		return exit_after(v, u, EXIT_MODE);
	}
	ret = read_cr(v, u->reg, &val);
	if (ret)
		return ret;
	reg_set(v, u->rm, osz, val);
	return exit_after(v, u, EXIT_BRANCH);
}

UOP_DEF(mov_dr)
{
	unsigned int osz = v->mode64 ? 8 : 4, n = u->reg;

	NEED_CPL0(v);
	if (n == 4 || n == 5) {
		if (v->cpu.cr4 & (1ull << 3)) /* CR4.DE */
			return raise_ud(v);
		n += 2;
	}
	if (n > 7)
		return raise_ud(v);
	if (!u->cond) {
		reg_set(v, u->rm, osz, n == 6 ? v->cpu.dr[6] | EMU_DR6_FIXED
					 : n == 7 ? v->cpu.dr[7] | EMU_DR7_FIXED : v->cpu.dr[n]);
		return EXIT_NEXT;
	}
	v->cpu.dr[n] = reg_get(v, u->rm, osz);
	if (n == 6)
		return EXIT_NEXT;
	/* A breakpoint armed, moved or disarmed applies from the next instruction on (SDM Vol.
	 * 3A 17.2.4): leave the block, so the engine looks at the breakpoints before running
	 * another one. The instruction completed: RF is clear (17.3.1.1). */
	emu_vcpu_debug_changed(v);
	v->cpu.rflags &= ~RF_RF;
	return exit_after(v, u, EXIT_MODE);
}

UOP_DEF(clts)
{
	NEED_CPL0(v);
	v->cpu.cr0 &= ~CR0_TS;
	return exit_after(v, u, EXIT_MODE);
}

UOP_DEF(lmsw)
{
	uint64_t val;
	int ret;

	NEED_CPL0(v);
	ret = src_get(v, u, &val);
	if (ret)
		return ret;
	/* Loads PE, MP, EM, TS; cannot clear PE (SDM Vol. 2 LMSW). */
	v->cpu.cr0 = (v->cpu.cr0 & ~0xeull) | (val & 0xf) | (v->cpu.cr0 & CR0_PE);
	emu_vcpu_mode_changed(v, true);
	return exit_after(v, u, EXIT_MODE);
}

UOP_DEF(smsw)
{
	uint64_t la = 0;
	int ret = 0;

	if (u->flags & UOP_F_MEMDST) {
		ret = uop_linear(v, u->seg, uop_ea(v, u), 2, true, &la);
		return ret ? ret : mem_write(v, la, 2, v->cpu.cr0 & 0xffff, u->seg);
	}
	reg_set(v, u->reg, u->osz, v->cpu.cr0);
	return EXIT_NEXT;
}

UOP_DEF(invlpg)
{
	uint64_t la;
	int ret;

	NEED_CPL0(v);
	ret = uop_linear(v, u->seg, uop_ea(v, u), 1, false, &la);
	if (ret == EXIT_FAULT && v->mode64)
		return exit_after(v, u, EXIT_MODE); /* non-canonical: a no-op */
	if (ret)
		return ret;
	/* The TLB keeps 4 KiB entries even for 2 MiB and 1 GiB pages, and INVLPG of any
	 * address in a large page drops all of it (SDM Vol. 3A 4.10.4.1): flush everything
	 * rather than track page sizes. */
	(void)la;
	emu_tlb_flush(v);
	return exit_after(v, u, EXIT_MODE);
}

/* --- descriptor tables --- */

/* lgdt/lidt: 16-bit limit then a 24-, 32- or 64-bit base (SDM Vol. 2 LGDT). */
static int load_dt(struct emu_vcpu *v, const struct emu_uop *u, uint64_t *base, uint16_t *limit)
{
	unsigned int blen = v->mode64 ? 8 : 4;
	uint64_t la, lim, b;
	int ret;

	NEED_CPL0(v);
	ret = uop_linear(v, u->seg, uop_ea(v, u), 2 + blen, false, &la);
	if (!ret)
		ret = mem_read(v, la, 2, &lim, u->seg, TLB_READ);
	if (!ret)
		ret = emu_read_slow(v, la + 2, blen, &b, u->seg, TLB_READ);
	if (ret)
		return ret;
	if (blen == 8 && !canonical(b))
		return raise_gp0(v);
	if (!v->mode64 && u->osz == 2)
		b &= 0xffffff;
	*base = blen == 8 ? b : (uint32_t)b;
	*limit = (uint16_t)lim;
	return 0;
}

UOP_DEF(lgdt)
{
	uint64_t b = 0;
	int ret = load_dt(v, u, &b, &v->cpu.gdt_limit);

	if (ret)
		return ret;
	v->cpu.gdt_base = b;
	return exit_after(v, u, EXIT_BRANCH);
}

UOP_DEF(lidt)
{
	uint64_t b = 0;
	int ret = load_dt(v, u, &b, &v->cpu.idt_limit);

	if (ret)
		return ret;
	v->cpu.idt_base = b;
	return exit_after(v, u, EXIT_BRANCH);
}

static int store_dt(struct emu_vcpu *v, const struct emu_uop *u, uint64_t base, uint16_t limit)
{
	unsigned int blen = v->mode64 ? 8 : 4;
	uint8_t buf[10];
	uint64_t la;
	int ret = uop_linear(v, u->seg, uop_ea(v, u), 2 + blen, true, &la);

	if (ret)
		return ret;
	memcpy(buf, &limit, 2);
	memcpy(buf + 2, &base, 8);
	return emu_write_slow(v, la, 2 + blen, buf, u->seg);
}

UOP_DEF(sgdt)
{
	return store_dt(v, u, v->cpu.gdt_base, v->cpu.gdt_limit);
}

UOP_DEF(sidt)
{
	return store_dt(v, u, v->cpu.idt_base, v->cpu.idt_limit);
}

/* --- pushf / popf --- */

UOP_DEF(pushf)
{
	return push_val(v, emu_flags(v) & ~(RF_VM | RF_RF), u->osz);
}

/* Which bits popf may change at this privilege (SDM Vol. 2 POPF). */
UOP_DEF(popf)
{
	uint64_t val, old = emu_flags(v), mask = RF_ARITH | RF_TF | RF_DF | RF_NT | RF_AC |
						 (1ull << 21) /* ID */;
	int ret = stack_peek(v, 0, u->osz, &val);

	if (ret)
		return ret;
	if (v->cpl == 0)
		mask |= RF_IF | (3ull << 12);
	else if (iopl_ok(v))
		mask |= RF_IF;
	if (u->osz == 2)
		mask &= 0xffff;
	sp_set(v, sp_get(v) + u->osz);
	emu_flags_set(v, (old & ~mask) | (val & mask));
	return exit_after(v, u, EXIT_BRANCH);
}

/* --- syscall / sysret / swapgs (SDM Vol. 2 SYSCALL, SYSRET, SWAPGS) --- */

static void flat_code(struct emu_seg *s, uint16_t sel, unsigned int dpl, bool l)
{
	*s = (struct emu_seg){.sel = sel, .base = 0, .limit = 0xffffffff, .type = 0xb, .s = 1,
			      .dpl = (uint8_t)dpl, .present = 1, .l = l, .db = !l, .g = 1};
}

static void flat_data(struct emu_seg *s, uint16_t sel, unsigned int dpl)
{
	*s = (struct emu_seg){.sel = sel, .base = 0, .limit = 0xffffffff, .type = 0x3, .s = 1,
			      .dpl = (uint8_t)dpl, .present = 1, .db = 1, .g = 1};
}

UOP_DEF(syscall)
{
	struct emu_cpu *c = &v->cpu;
	uint16_t sel = (uint16_t)(v->msr.star >> 32) & 0xfffc;
	uint64_t f;

	if (!(c->efer & EFER_SCE) || !(c->efer & EFER_LMA))
		return raise_ud(v);
	f = emu_flags(v);
	c->gpr[EMU_RCX] = u->next_rip;
	c->gpr[EMU_R11] = f & ~RF_RF;
	emu_flags_set(v, f & ~v->msr.sfmask & ~RF_RF);
	flat_code(&c->seg[EMU_CS], sel, 0, true);
	flat_data(&c->seg[EMU_SS], sel + 8, 0);
	c->rip = v->mode64 ? v->msr.lstar : v->msr.cstar;
	emu_vcpu_mode_changed(v, false);
	return EXIT_MODE;
}

UOP_DEF(sysret)
{
	struct emu_cpu *c = &v->cpu;
	uint16_t sel = (uint16_t)(v->msr.star >> 48);
	bool to64 = u->osz == 8;

	if (!(c->efer & EFER_SCE))
		return raise_ud(v);
	if (v->cpl || !v->mode64)
		return raise_gp0(v);
	if (to64 && !canonical(c->gpr[EMU_RCX]))
		return raise_gp0(v);
	if (to64)
		flat_code(&c->seg[EMU_CS], (uint16_t)((sel + 16) | 3), 3, true);
	else
		flat_code(&c->seg[EMU_CS], (uint16_t)(sel | 3), 3, false);
	flat_data(&c->seg[EMU_SS], (uint16_t)((sel + 8) | 3), 3);
	emu_flags_set(v, (c->gpr[EMU_R11] & 0x3c7fd7ull) | 2);
	c->rip = to64 ? c->gpr[EMU_RCX] : (uint32_t)c->gpr[EMU_RCX];
	emu_vcpu_mode_changed(v, false);
	return EXIT_MODE;
}

UOP_DEF(swapgs)
{
	uint64_t t;

	if (!v->mode64)
		return raise_ud(v);
	NEED_CPL0(v);
	t = v->cpu.seg[EMU_GS].base;
	v->cpu.seg[EMU_GS].base = v->msr.kernel_gs_base;
	v->msr.kernel_gs_base = t;
	v->seg_base[EMU_GS] = v->cpu.seg[EMU_GS].base;
	return exit_after(v, u, EXIT_BRANCH);
}

/* --- the generic path: class handlers of emu.c on the raw bytes --- */

/* ISA extensions of the CPU model: an instruction of another extension raises #UD; one of
 * these that mvm lacks stops the VM with a report. */
static bool isa_advertised(const struct emu_vcpu *v, unsigned int ext)
{
	const struct emu_features *f = v->env.features;

	switch (ext) {
	case ZYDIS_ISA_EXT_BASE:
	case ZYDIS_ISA_EXT_LONGMODE:
	case ZYDIS_ISA_EXT_X87:
	case ZYDIS_ISA_EXT_SSE:
	case ZYDIS_ISA_EXT_SSE2:
	case ZYDIS_ISA_EXT_PAUSE:
	case ZYDIS_ISA_EXT_CLFSH:
		return true;
	case ZYDIS_ISA_EXT_XSAVE: return f->xcr0_mask > 3;
	case ZYDIS_ISA_EXT_XSAVEOPT: return f->xsaveopt;
	case ZYDIS_ISA_EXT_XSAVEC: return f->xsavec;
	case ZYDIS_ISA_EXT_AVX: return f->avx;
	case ZYDIS_ISA_EXT_RDTSCP: return f->rdtscp;
	case ZYDIS_ISA_EXT_LZCNT: return f->lzcnt;
	case ZYDIS_ISA_EXT_BMI1: return f->bmi1;
	case ZYDIS_ISA_EXT_SMAP: return f->smap;
	case ZYDIS_ISA_EXT_MONITOR: return f->monitor;
	default: return false;
	}
}

UOP_DEF(generic)
{
	struct emu_result res;
	uint8_t bytes[24];

	memcpy(bytes, &u->disp, 8);
	memcpy(bytes + 8, &u->imm, 8);
	memcpy(bytes + 16, &u->imm2, 8);
	v->cpu.rip = uop_rip(u);
	v->cpu.rflags = emu_flags(v);
	v->cc.op = CC_EFLAGS;
	v->cpu.tsc = tsc_now(v);
	v->generic_insns++;
	if (v->fpu_elsewhere && v->plat->fpu_fetch(v))
		return uop_stop(v, "cannot fetch the x87/SSE state");
	if (u->mnemonic < EMU_MNEMONICS)
		v->generic_by_mnemonic[u->mnemonic]++;
	emu_step_classes(&v->cpu, &v->env, bytes, u->len, &res);
	switch (res.status) {
	case EMU_DONE:
		v->dbg_hits |= res.db_hits;
		if (v->cpu.dirty & (EMU_DIRTY_SREGS | EMU_DIRTY_TLB))
			emu_vcpu_mode_changed(v, (v->cpu.dirty & EMU_DIRTY_TLB) != 0);
		v->cpu.dirty = 0;
		return EXIT_MODE;
	case EMU_FAULT:
		v->fault = res.fault;
		return EXIT_FAULT;
	default:
		if (!isa_advertised(v, u->osz2))
			return raise_ud(v);
		return uop_stop(v, "%s", res.why);
	}
}
