/* emulate.c: the KVM side of the instruction emulator: vCPU state in and out, fault injection,
 * per-mnemonic counters and the report for what cannot be emulated. */
#define pr_fmt(fmt) "emulate: " fmt
#include "kvm/emulate.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>

#include "emu/vcpu.h"
#include "kvm/vcpu.h"
#include "kvm_seg.h"
#include "kvm/vm.h"
#include "util/log.h"

#define MSR_IA32_TSC	 0x10
#define MSR_IA32_TSC_AUX 0xc0000103

/* --- CPUID facts --- */

/* The emulator must follow the CPUID the guest actually sees. With VMX and SVM that is the
 * policy mvm set (KVM_SET_CPUID2). On KVM-PVM the guest's CPUID is not the policy: measured, the
 * guest's leaf 1 ECX was 0xf7f83203 while KVM_GET_SUPPORTED_CPUID offered 0x81202000, and it is
 * not the host process's view either (LZCNT, RDTSCP, RDPID differ). So on PVM mvm asks the guest:
 * before the kernel is loaded, vCPU 0 runs a few instructions that execute CPUID for the leaves
 * the emulator needs and store the answers in guest memory. */
struct cpuid_source {
	const struct kvm_cpuid2 *table;
};

static void query(const struct cpuid_source *src, uint32_t fn, uint32_t index, uint32_t r[4])
{
	r[0] = r[1] = r[2] = r[3] = 0;
	for (unsigned int i = 0; i < src->table->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &src->table->entries[i];

		if (e->function == fn && e->index == index) {
			r[0] = e->eax;
			r[1] = e->ebx;
			r[2] = e->ecx;
			r[3] = e->edx;
			return;
		}
	}
}

/* The leaves the emulator reads (see emulate_features_init). */
static const uint32_t probe_leaves[][2] = {
	{1, 0}, {7, 0}, {0xd, 0}, {0xd, 1}, {0xd, 2}, {0xd, 3}, {0xd, 4}, {0xd, 5}, {0xd, 6},
	{0xd, 7}, {0xd, 8}, {0xd, 9}, {0x80000001, 0}, {0x80000008, 0},
};
#define PROBE_CODE    0x8000ull
#define PROBE_LEAVES  0x8800ull
#define PROBE_RESULTS 0x9000ull
#define PROBE_PORT    0x5f0

/* Flat 32-bit code: for each {leaf, subleaf} at PROBE_LEAVES (ending with leaf ~0), CPUID and
 * store EAX, EBX, ECX, EDX at PROBE_RESULTS; then OUT to PROBE_PORT. */
static const uint8_t probe_code[] = {
	0xbe, 0x00, 0x88, 0x00, 0x00,	/* mov esi, PROBE_LEAVES */
	0xbf, 0x00, 0x90, 0x00, 0x00,	/* mov edi, PROBE_RESULTS */
	0x8b, 0x06,			/* 1: mov eax, [esi] */
	0x83, 0xf8, 0xff,		/* cmp eax, -1 */
	0x74, 0x18,			/* je 2f */
	0x8b, 0x4e, 0x04,		/* mov ecx, [esi + 4] */
	0x0f, 0xa2,			/* cpuid */
	0x89, 0x07,			/* mov [edi], eax */
	0x89, 0x5f, 0x04,		/* mov [edi + 4], ebx */
	0x89, 0x4f, 0x08,		/* mov [edi + 8], ecx */
	0x89, 0x57, 0x0c,		/* mov [edi + 12], edx */
	0x83, 0xc6, 0x08,		/* add esi, 8 */
	0x83, 0xc7, 0x10,		/* add edi, 16 */
	0xeb, 0xe1,			/* jmp 1b */
	0x66, 0xba, 0xf0, 0x05,		/* 2: mov dx, PROBE_PORT */
	0xee,				/* out dx, al */
	0xf4,				/* hlt */
};

/* Runs the probe on vCPU 0 (before its thread exists) and fills (out). Returns 0 or -errno. */
static int probe_guest_cpuid(struct vm *vm, struct kvm_cpuid2 *out)
{
	struct vcpu *v = &vm->vcpus[0];
	struct boot_cpu flat32 = {
		.rip = PROBE_CODE, .rsp = PROBE_CODE, .rflags = 2, .cr0 = 1, .cs_sel = 0x8,
		.ds_sel = 0x10, .tr_sel = 0x18, .gdt_base = 0, .gdt_limit = 0x1f,
	};
	const unsigned int n = sizeof(probe_leaves) / sizeof(probe_leaves[0]);
	uint32_t leaves[sizeof(probe_leaves) / sizeof(uint32_t) + 2], results[4 * 16];
	int ret;

	memcpy(leaves, probe_leaves, sizeof(probe_leaves));
	leaves[2 * n] = leaves[2 * n + 1] = ~0u;
	ret = guest_mem_write(&vm->mem, PROBE_CODE, probe_code, sizeof(probe_code));
	if (!ret)
		ret = guest_mem_write(&vm->mem, PROBE_LEAVES, leaves, sizeof(leaves));
	if (!ret)
		ret = vcpu_set_boot_state(v, &flat32);
	if (ret)
		return ret;
	for (int exits = 0; exits < 16; exits++) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0)
			return -errno;
		if (v->run->exit_reason == KVM_EXIT_IO && v->run->io.port == PROBE_PORT)
			break;
		if (v->run->exit_reason != KVM_EXIT_INTR)
			return -EIO;
	}
	if (v->run->exit_reason != KVM_EXIT_IO)
		return -EIO;
	ret = guest_mem_read(&vm->mem, PROBE_RESULTS, results, 16 * n);
	if (ret)
		return ret;
	out->nent = n;
	for (unsigned int i = 0; i < n; i++)
		out->entries[i] = (struct kvm_cpuid_entry2){
			.function = probe_leaves[i][0], .index = probe_leaves[i][1],
			.eax = results[4 * i], .ebx = results[4 * i + 1], .ecx = results[4 * i + 2],
			.edx = results[4 * i + 3]};
	/* Leave no trace: the kernel is loaded over a zeroed range. */
	memset(gpa_to_hva(&vm->mem, PROBE_CODE, 0x2000), 0, 0x2000);
	return 0;
}

enum { EAX, EBX, ECX, EDX };

static bool bit(const struct cpuid_source *src, uint32_t fn, uint32_t index, int reg, int b)
{
	uint32_t r[4];

	query(src, fn, index, r);
	return (r[reg] >> b) & 1;
}

int emulate_features_init(struct vm *vm, struct emu_features *f)
{
	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 e[16];
	} probed;
	struct cpuid_source src = {.table = vm->cpuid};
	uint32_t r[4];
	int ret;

	if (vm->backend == KVM_BACKEND_PVM) {
		ret = probe_guest_cpuid(vm, &probed.hdr);
		if (ret) {
			pr_err("asking the guest CPU for its CPUID failed: %s", strerror(-ret));
			return ret;
		}
		src.table = &probed.hdr;
	}

	memset(f, 0, sizeof(*f));
	f->sse = bit(&src, 1, 0, EDX, 25);
	f->fxsr = bit(&src, 1, 0, EDX, 24);
	f->monitor = bit(&src, 1, 0, ECX, 3);
	f->cx16 = bit(&src, 1, 0, ECX, 13);
	f->popcnt = bit(&src, 1, 0, ECX, 23);
	f->avx = bit(&src, 1, 0, ECX, 28);
	f->avx2 = bit(&src, 7, 0, EBX, 5);
	f->avx512f = bit(&src, 7, 0, EBX, 16);
	f->bmi1 = bit(&src, 7, 0, EBX, 3);
	f->invpcid = bit(&src, 7, 0, EBX, 10);
	f->smap = bit(&src, 7, 0, EBX, 20);
	f->rdpid = bit(&src, 7, 0, ECX, 22);
	f->rdtscp = bit(&src, 0x80000001, 0, EDX, 27);
	f->lzcnt = bit(&src, 0x80000001, 0, ECX, 5);
	f->xsaveopt = bit(&src, 0xd, 1, EAX, 0);
	f->xsavec = bit(&src, 0xd, 1, EAX, 1);
	f->xgetbv1 = bit(&src, 0xd, 1, EAX, 2);
	f->xsaves = bit(&src, 0xd, 1, EAX, 3);
	query(&src, 0xd, 0, r);
	f->xcr0_mask = ((uint64_t)r[EDX] << 32) | r[EAX];
	for (unsigned int i = 2; i < EMU_XSAVE_COMPONENTS; i++) {
		if (!((f->xcr0_mask >> i) & 1))
			continue;
		query(&src, 0xd, i, r);
		f->xsave_size[i] = r[EAX];
		f->xsave_offset[i] = r[EBX];
		if (r[ECX] & 2)
			f->xsave_align64 |= 1u << i;
	}
	query(&src, 0x80000008, 0, r);
	f->maxphyaddr = r[EAX] & 0xff ? r[EAX] & 0xff : 36;
	return 0;
}

/* --- counters --- */

/* Per VM, by Zydis mnemonic, lock-free: vCPU threads count, --stats prints at the end. */
static void count(struct vm *vm, const struct emu_result *res)
{
	unsigned int id = res->mnemonic_id < EMU_MNEMONICS ? res->mnemonic_id : 0;

	if (atomic_fetch_add_explicit(&vm->emulated[id], 1, memory_order_relaxed) == 0)
		pr_info("emulating %s (first time)", res->mnemonic);
}

void emulate_print_stats(struct vm *vm, FILE *f)
{
	bool any = false;

	fprintf(f, "mvm: emulated instructions:");
	for (unsigned int id = 0; id < EMU_MNEMONICS; id++)
		any |= atomic_load_explicit(&vm->emulated[id], memory_order_relaxed) != 0;
	fprintf(f, "%s\n", any ? "" : " none");
	for (unsigned int id = 0; id < EMU_MNEMONICS; id++) {
		uint64_t n = atomic_load_explicit(&vm->emulated[id], memory_order_relaxed);

		if (n)
			fprintf(f, "  %-12s %llu\n", id ? emu_mnemonic_name(id) : "?",
				(unsigned long long)n);
	}
}

/* --- state in and out --- */

struct kvm_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dbg;
};

static int get_state(struct vcpu *v, struct kvm_state *k, struct emu_cpu *c)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[2];
	} msrs = {.hdr.nmsrs = 2, .e = {{.index = MSR_IA32_TSC}, {.index = MSR_IA32_TSC_AUX}}};

	if (ioctl(v->fd, KVM_GET_REGS, &k->regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &k->sregs) < 0 ||
	    ioctl(v->fd, KVM_GET_XSAVE, &k->xsave) < 0 || ioctl(v->fd, KVM_GET_XCRS, &k->xcrs) < 0 ||
	    ioctl(v->fd, KVM_GET_DEBUGREGS, &k->dbg) < 0) {
		pr_err("vCPU %u: reading state: %s", v->index, strerror(errno));
		return -errno;
	}
	/* TSC_AUX may be missing (no RDTSCP): then it reads as 0. */
	ioctl(v->fd, KVM_GET_MSRS, &msrs);

	gprs_from_kvm(c->gpr, &k->regs);
	c->rip = k->regs.rip;
	c->rflags = k->regs.rflags;
	seg_from_kvm(&c->seg[EMU_ES], &k->sregs.es);
	seg_from_kvm(&c->seg[EMU_CS], &k->sregs.cs);
	seg_from_kvm(&c->seg[EMU_SS], &k->sregs.ss);
	seg_from_kvm(&c->seg[EMU_DS], &k->sregs.ds);
	seg_from_kvm(&c->seg[EMU_FS], &k->sregs.fs);
	seg_from_kvm(&c->seg[EMU_GS], &k->sregs.gs);
	seg_from_kvm(&c->tr, &k->sregs.tr);
	seg_from_kvm(&c->ldt, &k->sregs.ldt);
	c->gdt_base = k->sregs.gdt.base;
	c->gdt_limit = k->sregs.gdt.limit;
	c->idt_base = k->sregs.idt.base;
	c->idt_limit = k->sregs.idt.limit;
	c->cr0 = k->sregs.cr0;
	c->cr2 = k->sregs.cr2;
	c->cr3 = k->sregs.cr3;
	c->cr4 = k->sregs.cr4;
	c->cr8 = k->sregs.cr8;
	c->efer = k->sregs.efer;
	c->xcr0 = 1;
	for (unsigned int i = 0; i < k->xcrs.nr_xcrs; i++)
		if (k->xcrs.xcrs[i].xcr == 0)
			c->xcr0 = k->xcrs.xcrs[i].value;
	c->tsc = msrs.e[0].data;
	c->tsc_aux = msrs.e[1].data;
	/* The guest's breakpoints: the core checks the instruction's data accesses against them
	 * (KVM checked its instruction breakpoints before handing it over). */
	for (unsigned int i = 0; i < 4; i++)
		c->dr[i] = k->dbg.db[i];
	c->dr[6] = k->dbg.dr6;
	c->dr[7] = k->dbg.dr7;
	_Static_assert(sizeof(k->xsave.region) == EMU_XSAVE_SIZE, "KVM XSAVE image size");
	memcpy(c->xsave, k->xsave.region, EMU_XSAVE_SIZE);
	c->dirty = 0;
	return 0;
}

static int put_state(struct vcpu *v, struct kvm_state *k, const struct emu_cpu *c)
{
	struct kvm_regs *r = &k->regs;

	*r = regs_to_kvm(c->gpr, c->rip, c->rflags);
	if (c->dirty & (EMU_DIRTY_SREGS | EMU_DIRTY_TLB)) {
		/* KVM_SET_SREGS also reloads the MMU, which is the TLB flush invpcid asks for. */
		seg_to_kvm(&k->sregs.cs, &c->seg[EMU_CS]);
		seg_to_kvm(&k->sregs.ss, &c->seg[EMU_SS]);
		if (ioctl(v->fd, KVM_SET_SREGS, &k->sregs) < 0) {
			pr_err("vCPU %u: KVM_SET_SREGS: %s", v->index, strerror(errno));
			return -errno;
		}
	}
	if (c->dirty & EMU_DIRTY_XCR0) {
		struct kvm_xcrs x = {.nr_xcrs = 1, .xcrs = {{.xcr = 0, .value = c->xcr0}}};

		if (ioctl(v->fd, KVM_SET_XCRS, &x) < 0) {
			pr_err("vCPU %u: KVM_SET_XCRS: %s", v->index, strerror(errno));
			return -errno;
		}
	}
	if (c->dirty & EMU_DIRTY_XSAVE) {
		memcpy(k->xsave.region, c->xsave, EMU_XSAVE_SIZE);
		if (ioctl(v->fd, KVM_SET_XSAVE, &k->xsave) < 0) {
			pr_err("vCPU %u: KVM_SET_XSAVE: %s", v->index, strerror(errno));
			return -errno;
		}
	}
	if (ioctl(v->fd, KVM_SET_REGS, r) < 0) {
		pr_err("vCPU %u: KVM_SET_REGS: %s", v->index, strerror(errno));
		return -errno;
	}
	return 0;
}

#define RFLAGS_TF (1ull << 8)
#define DR6_BS	  (1ull << 14)

/* Interrupts delivered by the instruction itself clear TF: no single-step trap after them. */
static bool delivers_interrupt(const char *mnemonic)
{
	return mnemonic && (!strcmp(mnemonic, "int") || !strcmp(mnemonic, "int3") ||
			    !strcmp(mnemonic, "int1") || !strcmp(mnemonic, "into"));
}

/* What the CPU does at the end of an instruction that mvm completed (SDM Vol. 3A):
 * - the STI / MOV SS interrupt shadow covered this instruction only (6.8.3): KVM must not keep
 *   it for the next one (a HLT there would halt with an interrupt pending);
 * - a #DB trap follows it when it met data breakpoints of DR0-DR3 (17.3.1.2; (db_hits), as
 *   the core found them with the guest's debug registers of get_state()) or, with TF set
 *   when it began, for the single step (17.3.1.4) unless it delivered an interrupt itself:
 *   one #DB, DR6.B0-B3 the breakpoints met and BS the step.
 * The shadow comes with every exit (kvm_run's synced events, vcpu.c); the ioctls are made only
 * when something is to change. */
static int finish_instruction(struct vcpu *v, struct kvm_state *k, uint64_t rflags_before,
			      const struct emu_result *res)
{
	bool synced = v->run->kvm_valid_regs & KVM_SYNC_X86_EVENTS;
	bool step = (rflags_before & RFLAGS_TF) && !delivers_interrupt(res->mnemonic);
	uint64_t hits = res->db_hits & EMU_DR6_HITS;
	struct kvm_vcpu_events ev;

	if (!step && !hits && synced && !v->run->s.regs.events.interrupt.shadow)
		return 0;
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	if (!step && !hits && !ev.interrupt.shadow)
		return 0;
	ev.flags = KVM_VCPUEVENT_VALID_SHADOW;
	ev.interrupt.shadow = 0;
	if (step || hits) {
		k->dbg.dr6 = (k->dbg.dr6 & ~EMU_DR6_HITS) | hits | (step ? DR6_BS : 0);
		k->dbg.flags = 0;
		if (ioctl(v->fd, KVM_SET_DEBUGREGS, &k->dbg) < 0)
			return -errno;
		ev.exception.injected = 1;
		ev.exception.nr = 1;
		ev.exception.has_error_code = 0;
		ev.exception.error_code = 0;
	}
	return ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0 ? -errno : 0;
}

static int inject(struct vcpu *v, struct kvm_state *k, const struct emu_fault *f)
{
	struct kvm_vcpu_events ev;

	if (f->vector == 14) {
		k->sregs.cr2 = f->cr2;
		if (ioctl(v->fd, KVM_SET_SREGS, &k->sregs) < 0)
			return -errno;
	}
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	ev.exception.injected = 1;
	ev.exception.nr = f->vector;
	ev.exception.has_error_code = f->has_error_code;
	ev.exception.error_code = f->error_code;
	ev.flags = 0;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	return 0;
}

static void report(struct vcpu *v, const struct emu_cpu *c, const struct emu_result *res)
{
	char bytes[15 * 3 + 1] = "", text[96];

	for (unsigned int i = 0; i < res->insn_len; i++)
		sprintf(bytes + 3 * i, "%02x ", res->insn[i]);
	emu_disassemble(c, res, text, sizeof(text));
	pr_err("vCPU %u: cannot emulate '%s' (bytes %s) at rip 0x%llx, CPL %u: %s", v->index, text,
	       bytes, (unsigned long long)c->rip, emu_cpl(c), res->why);
	vcpu_dump(v, "stopped on an instruction mvm cannot emulate");
}

/* The first instruction at CPL3 that mvm could not emulate, and what it does instead. */
static void log_user_ud(struct vcpu *v, const struct emu_cpu *c, const struct emu_result *res)
{
	static bool logged; /* __atomic builtins, not _Atomic: clang rejects those on _Atomic */
	char bytes[15 * 3 + 1] = "", text[96];

	if (__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
		return;
	for (unsigned int i = 0; i < res->insn_len; i++)
		sprintf(bytes + 3 * i, "%02x ", res->insn[i]);
	emu_disassemble(c, res, text, sizeof(text));
	pr_warn("vCPU %u: cannot emulate '%s' (bytes %s) at rip 0x%llx, CPL 3: %s; #UD raised in "
		"the guest (logged once)", v->index, text, bytes, (unsigned long long)c->rip,
		res->why);
}

bool emulate_on_exit(struct vcpu *v)
{
	static _Thread_local struct kvm_state k;
	static _Thread_local struct emu_cpu cpu;
	struct kvm_run *run = v->run;
	struct emu_env env = {.mem = &v->vm->mem, .mmio = &v->vm->mmio,
			      .features = &v->vm->emu_features};
	struct emu_result res;
	const uint8_t *bytes = NULL;
	unsigned int len = 0;
	int ret;

	if (run->internal.ndata >= 2 &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		bytes = run->emulation_failure.insn_bytes;
		len = run->emulation_failure.insn_size;
		if (len > sizeof(run->emulation_failure.insn_bytes))
			len = sizeof(run->emulation_failure.insn_bytes);
	}
	uint64_t rflags_before;

	if (get_state(v, &k, &cpu))
		return false;
	rflags_before = cpu.rflags;
	emu_step(&cpu, &env, bytes, len, &res);
	switch (res.status) {
	case EMU_DONE:
		count(v->vm, &res);
		pr_debug("vCPU %u: emulated %s, next rip 0x%llx", v->index, res.mnemonic,
			 (unsigned long long)cpu.rip);
		ret = put_state(v, &k, &cpu);
		if (!ret)
			ret = finish_instruction(v, &k, rflags_before, &res);
		if (ret)
			pr_err("vCPU %u: completing %s: %s", v->index, res.mnemonic, strerror(-ret));
		return ret == 0;
	case EMU_FAULT:
		count(v->vm, &res);
		pr_debug("vCPU %u: %s at 0x%llx raises vector %u", v->index, res.mnemonic,
			 (unsigned long long)cpu.rip, res.fault.vector);
		ret = inject(v, &k, &res.fault);
		if (ret)
			pr_err("vCPU %u: injecting vector %u: %s", v->index, res.fault.vector,
			       strerror(-ret));
		return ret == 0;
	default:
		/* Guest user mode must not be able to stop the VM: at CPL3 the instruction mvm
		 * cannot finish raises #UD in the guest (faults of its accesses were EMU_FAULT
		 * above), which the kernel turns into a signal for that process. Logged once: any
		 * user process can do this at will. At CPL0 it is the kernel's instruction, and
		 * stopping with the report is the honest answer. */
		if (emu_cpl(&cpu) == 3) {
			static const struct emu_fault ud = {.vector = 6};

			log_user_ud(v, &cpu, &res);
			ret = inject(v, &k, &ud);
			if (ret)
				pr_err("vCPU %u: injecting #UD: %s", v->index, strerror(-ret));
			return ret == 0;
		}
		report(v, &cpu, &res);
		return false;
	}
}
