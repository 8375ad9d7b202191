/* user_mode.c: guest user mode on KVM for mvm's engine (--accel hybrid; see user_mode.h).
 *
 * The window: PML4 slot 401 of every guest page table that runs user code here points at
 * tables in reserved guest RAM (core/layout.h) that map, from SYSCALL_TRAP_LA:
 *   +0      2 MiB, user, no memory behind it: the SYSCALL trap (LSTAR at +0, CSTAR at +0x100)
 *   +2 MiB  4 KiB, supervisor, read-only: the IDT KVM uses (LAYOUT_HYBRID_IDT)
 *   +4 MiB  2 MiB, supervisor, no memory behind it: exception handler n at +16 * n
 * The slot is filled with a compare-and-exchange when empty (Linux never uses it; a guest that
 * does runs its user code in the engine instead). */
#define pr_fmt(fmt) "hybrid: " fmt
#include "kvm/user_mode.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "core/layout.h"
#include "emu/vcpu.h"
#include "emu/walk.h"
#include "kvm/msr.h"
#include "kvm/syscall_trap.h"
#include "kvm/vm.h"
#include "kvm_seg.h"
#include "util/log.h"

#define KICK_SIGNAL SIGUSR1

#define MSR_IA32_TSC	 0x10
#define MSR_SYSENTER_CS	 0x174
#define MSR_STAR	 0xc0000081
#define MSR_LSTAR	 0xc0000082
#define MSR_CSTAR	 0xc0000083
#define MSR_SFMASK	 0xc0000084
#define MSR_TSC_AUX	 0xc0000103

#define PTE_P	 (1ull << 0)
#define PTE_RW	 (1ull << 1)
#define PTE_A	 (1ull << 5)
#define PTE_PS	 (1ull << 7)

#define IDT_LA	     (SYSCALL_TRAP_LA + (2ull << 20))
#define EXC_LA	     (SYSCALL_TRAP_LA + (4ull << 20))
#define EXC_STRIDE   16
#define WINDOW_END   (SYSCALL_TRAP_LA + (6ull << 20))

#define CR0_PG	 (1ull << 31)
#define CR4_PAE	 (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define EFER_LMA (1ull << 10)

/* RFLAGS (SDM Vol. 1 3.4.3): what user code can change itself (POPF at CPL3 with IOPL 0). */
#define RFL_USER 0x254dd5ull	/* CF PF AF ZF SF TF DF OF NT AC ID */
#define RFL_KEEP 0x1b3200ull	/* IF IOPL VM VIF VIP: only the kernel sets them */

#define XSAVE_LEGACY 512
#define XSAVE_BV_OFF 512

struct kvm_user {
	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	int run_size;
	const struct guest_mem *mem;
	struct bus *pio, *mmio;
	uint64_t tsc_khz;
	int64_t tsc_offset;		/* KVM's guest TSC minus the host's */
	/* The thread running the vCPU (kicks go there); set on its first run. */
	pthread_t thread;
	atomic_bool thread_set;
	/* The guest IDT the shadow IDT was made from. */
	uint8_t guest_idt[4096];
	uint64_t idt_base;
	unsigned int idt_len;
	bool idt_valid;
	/* The x87/SSE image KVM holds, as the engine last saw it. */
	uint8_t fpu[XSAVE_LEGACY];
	bool fpu_valid;
	uint64_t tsc_aux;		/* KVM's TSC_AUX */
	bool tsc_aux_valid;
	struct kvm_xsave xsave;
	/* Counters. */
	uint64_t fpu_fetches, sregs_sets, entries, syscalls, exceptions, interrupted, other_exits, flushes;
	uint64_t ns_in_kvm, ns_flush;
	uint64_t by_vector[32];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void kick_handler(int sig)
{
	(void)sig;
}

/* --- creation --- */

static int set_memory_slots(struct kvm_user *k, bool present)
{
	for (unsigned int i = 0; i < k->mem->n; i++) {
		struct kvm_userspace_memory_region region = {
			.slot = i,
			.guest_phys_addr = k->mem->r[i].gpa,
			.memory_size = present ? k->mem->r[i].size : 0,
			.userspace_addr = (uintptr_t)k->mem->r[i].hva,
		};

		if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			pr_err("KVM_SET_USER_MEMORY_REGION (slot %u): %s", i, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* KVM answers CPUID at CPL3 itself: it gets the engine's model, every leaf. */
int kvm_user_set_cpuid(struct kvm_user *k,
		       void (*cpuid)(void *ctx, uint32_t leaf, uint32_t sub, uint32_t out[4]),
		       void *ctx)
{
	enum { MAX = 80 };
	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 e[MAX];
	} c;
	uint32_t out[4], ranges[3] = {0, 0x40000000, 0x80000000};
	unsigned int n = 0;

	memset(&c, 0, sizeof(c));
	for (unsigned int r = 0; r < 3; r++) {
		uint32_t max;

		cpuid(ctx, ranges[r], 0, out);
		max = out[0];
		if (max < ranges[r] || max - ranges[r] > 0x40)
			max = ranges[r];
		for (uint32_t leaf = ranges[r]; leaf <= max; leaf++) {
			bool indexed = leaf == 4 || leaf == 7 || leaf == 0xb || leaf == 0xd;

			for (uint32_t sub = 0; sub < (indexed ? 4u : 1u) && n < MAX; sub++) {
				cpuid(ctx, leaf, sub, out);
				c.e[n++] = (struct kvm_cpuid_entry2){
					.function = leaf, .index = sub,
					.flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
					.eax = out[0], .ebx = out[1], .ecx = out[2], .edx = out[3],
				};
			}
		}
	}
	c.hdr.nent = n;
	if (ioctl(k->vcpu_fd, KVM_SET_CPUID2, &c) < 0) {
		pr_err("KVM_SET_CPUID2: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* The tables behind PML4 slot 401 (the comment at the top). */
static int build_window(struct kvm_user *k)
{
	uint64_t *pd = gpa_to_hva(k->mem, LAYOUT_SYSCALL_TRAP_PD, 4096);
	uint64_t *pt = gpa_to_hva(k->mem, LAYOUT_HYBRID_PT, 4096);
	uint8_t *idt = gpa_to_hva(k->mem, LAYOUT_HYBRID_IDT, 4096);

	/* The SYSCALL trap window's own tables, then what the hybrid adds to its PD. */
	if (!pd || !pt || !idt || !syscall_trap_tables(k->mem)) {
		pr_err("guest RAM does not cover the trap window's tables");
		return -EINVAL;
	}
	memset(pt, 0, 4096);
	memset(idt, 0, 4096);
	pd[1] = LAYOUT_HYBRID_PT | PTE_P | PTE_RW;
	pd[2] = LAYOUT_HYBRID_TRAP_GPA | PTE_P | PTE_PS;
	pt[0] = LAYOUT_HYBRID_IDT | PTE_P | PTE_A;
	return 0;
}

struct kvm_user *kvm_user_create(const struct kvm_user_config *cfg)
{
	static const uint32_t idx[] = {MSR_LSTAR, MSR_CSTAR, MSR_SFMASK, MSR_STAR, MSR_SYSENTER_CS};
	/* SFMASK 0: a SYSCALL leaves the user RFLAGS in RFLAGS, where mvm reads it. SYSENTER_CS
	 * 0: SYSENTER raises #GP, and the engine runs it. */
	const uint64_t val[] = {SYSCALL_TRAP_LSTAR, SYSCALL_TRAP_CSTAR, 0, 0, 0};
	struct sigaction sa = {.sa_handler = kick_handler};
	struct kvm_user *k = calloc(1, sizeof(*k));
	uint64_t guest_tsc, host_tsc;
	int caps;

	if (!k)
		return NULL;
	k->kvm_fd = k->vm_fd = k->vcpu_fd = -1;
	k->mem = cfg->mem;
	k->pio = cfg->pio;
	k->mmio = cfg->mmio;
	/* The trap exits this file reads are KVM-PVM's: there a SYSCALL or an exception taken in
	 * user mode stays at CPL3 or lands at the handler with no memory behind it. VMX and SVM
	 * run the guest kernel natively anyway (--accel kvm). */
	if (kvm_detect_backend() != KVM_BACKEND_PVM) {
		pr_err("--accel hybrid needs a KVM-PVM host; this /dev/kvm is %s: use --accel kvm",
		       kvm_backend_name(kvm_detect_backend()));
		goto fail;
	}
	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0) {
		pr_err("/dev/kvm: %s (--accel hybrid runs guest user mode on KVM)", strerror(errno));
		goto fail;
	}
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0) {
		pr_err("KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	caps = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
	if (caps < 0 || (caps & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) !=
				(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) {
		pr_err("KVM lacks KVM_CAP_SYNC_REGS (regs and sregs), which --accel hybrid needs");
		goto fail;
	}
	if (set_memory_slots(k, true) || build_window(k))
		goto fail;
	k->run_size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	k->vcpu_fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, 0ul);
	if (k->vcpu_fd < 0 || k->run_size < (int)sizeof(struct kvm_run)) {
		pr_err("KVM_CREATE_VCPU: %s", strerror(errno));
		goto fail;
	}
	k->run = mmap(NULL, (size_t)k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, k->vcpu_fd, 0);
	if (k->run == MAP_FAILED) {
		k->run = NULL;
		pr_err("mmap of kvm_run: %s", strerror(errno));
		goto fail;
	}
	if (msr_set(k->vcpu_fd, idx, val, 5)) {
		pr_err("KVM_SET_MSRS: some of the trap MSRs were refused");
		goto fail;
	}
	k->tsc_khz = (uint64_t)ioctl(k->vcpu_fd, KVM_GET_TSC_KHZ, 0);
	if ((int64_t)k->tsc_khz <= 0) {
		pr_err("KVM_GET_TSC_KHZ: %s", strerror(errno));
		goto fail;
	}
	host_tsc = __rdtsc();
	if (msr_get(k->vcpu_fd, &(uint32_t){MSR_IA32_TSC}, &guest_tsc, 1)) {
		pr_err("KVM_GET_MSRS(IA32_TSC) failed");
		goto fail;
	}
	k->tsc_offset = (int64_t)(guest_tsc - host_tsc);
	k->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, &sa, NULL) < 0) {
		pr_err("sigaction: %s", strerror(errno));
		goto fail;
	}
	pr_info("guest user mode runs on KVM, kernel mode in mvm's engine (TSC %llu kHz)",
		(unsigned long long)k->tsc_khz);
	return k;
fail:
	kvm_user_destroy(k);
	return NULL;
}

void kvm_user_destroy(struct kvm_user *k)
{
	if (!k)
		return;
	if (k->run)
		munmap(k->run, (size_t)k->run_size);
	if (k->vcpu_fd >= 0)
		close(k->vcpu_fd);
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	free(k);
}

uint64_t kvm_user_tsc_khz(const struct kvm_user *k)
{
	return k->tsc_khz;
}

uint64_t kvm_user_tsc(const struct kvm_user *k)
{
	return __rdtsc() + (uint64_t)k->tsc_offset;
}

int kvm_user_zap(struct kvm_user *k, uint64_t gpa, uint64_t len)
{
	int ret = guest_mem_refault(k->mem, gpa, len);

	if (ret)
		pr_warn_once("cannot drop KVM's translations of guest page 0x%llx (%s): flushing "
			     "all instead", (unsigned long long)gpa, strerror(-ret));
	return ret;
}

void kvm_user_kick(struct kvm_user *k)
{
	/* The vCPU thread keeps the signal blocked outside KVM_RUN, so a kick that lands before
	 * it enters stays pending and makes KVM_RUN return at once. */
	if (atomic_load(&k->thread_set))
		pthread_kill(k->thread, KICK_SIGNAL);
}

/* First run on this thread: the kick signal is blocked here except inside KVM_RUN. */
static int bind_thread(struct kvm_user *k)
{
	struct {
		struct kvm_signal_mask hdr;
		uint64_t set;
	} m;
	sigset_t block, cur;

	sigemptyset(&block);
	sigaddset(&block, KICK_SIGNAL);
	if (pthread_sigmask(SIG_BLOCK, &block, &cur))
		return -EINVAL;
	sigdelset(&cur, KICK_SIGNAL);
	m.hdr.len = 8; /* the kernel's sigset_t */
	memcpy(&m.set, &cur, 8);
	if (ioctl(k->vcpu_fd, KVM_SET_SIGNAL_MASK, &m) < 0) {
		pr_err("KVM_SET_SIGNAL_MASK: %s", strerror(errno));
		return -errno;
	}
	k->thread = pthread_self();
	atomic_store(&k->thread_set, true);
	return 0;
}

/* Consumes kicks that arrived (they stay pending while blocked). */
static void drain_kicks(void)
{
	sigset_t set;
	struct timespec zero = {0, 0};

	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	while (sigtimedwait(&set, NULL, &zero) == KICK_SIGNAL)
		;
}

/* --- guest memory through the guest's page tables (supervisor reads) --- */

static int read_linear(struct kvm_user *k, const struct emu_vcpu *v, uint64_t la, void *buf,
		       unsigned int len)
{
	uint8_t *out = buf;

	while (len) {
		unsigned int part = 4096 - (unsigned int)(la & 0xfff);
		struct emu_fault f;
		uint64_t gpa;
		void *src;

		if (part > len)
			part = len;
		if (emu_walk(&v->cpu, k->mem, v->env.features->maxphyaddr, la, EMU_ACC_IMPLICIT,
			     &gpa, &f) != WALK_OK)
			return -EFAULT;
		src = gpa_to_hva(k->mem, gpa, part);
		if (!src)
			return -EFAULT;
		memcpy(out, src, part);
		out += part;
		la += part;
		len -= part;
	}
	return 0;
}

/* User code bytes at (la), read as user mode would fetch them. */
static bool user_bytes_are(struct emu_vcpu *v, uint64_t la, const uint8_t *want, unsigned int n)
{
	uint8_t got[4];
	struct emu_fault saved = v->fault;
	bool ok = emu_fetch(v, la, got, n, NULL) == 0 && !memcmp(got, want, n);

	v->fault = saved;
	return ok;
}

/* --- the window and the IDT KVM sees --- */

static bool window_installed(struct kvm_user *k, uint64_t cr3)
{
	uint64_t old;

	if (syscall_trap_fill_slot(k->mem, cr3, &old))
		return true;
	if (!old)
		return false;
	pr_warn_once("PML4 slot %d is in use by the guest (0x%llx): its user code runs in the "
		     "engine", SYSCALL_TRAP_PML4_INDEX, (unsigned long long)old);
	return false;
}

/* Rebuilds the shadow IDT when the guest's changed: the guest's gates (selector, IST, type,
 * DPL, present) with every handler in the exception trap page. */
static int sync_idt(struct kvm_user *k, const struct emu_vcpu *v)
{
	uint8_t cur[4096];
	unsigned int len = v->cpu.idt_limit + 1u;
	uint8_t *shadow;

	if (len > 4096)
		len = 4096;
	if (read_linear(k, v, v->cpu.idt_base, cur, len))
		return -EFAULT;
	if (k->idt_valid && k->idt_base == v->cpu.idt_base && k->idt_len == len &&
	    !memcmp(cur, k->guest_idt, len))
		return 0;
	shadow = gpa_to_hva(k->mem, LAYOUT_HYBRID_IDT, 4096);
	memset(shadow, 0, 4096);
	for (unsigned int n = 0; n < 256 && 16 * n + 16 <= len; n++) {
		const uint8_t *g = cur + 16 * n;
		uint8_t *s = shadow + 16 * n;
		uint64_t target = EXC_LA + EXC_STRIDE * n;

		if (!(g[5] & 0x80))
			continue;
		s[0] = (uint8_t)target;
		s[1] = (uint8_t)(target >> 8);
		s[2] = g[2];			/* selector */
		s[3] = g[3];
		s[4] = g[4] & 7;		/* IST */
		s[5] = g[5];			/* P, DPL, type */
		s[6] = (uint8_t)(target >> 16);
		s[7] = (uint8_t)(target >> 24);
		memcpy(s + 8, &(uint32_t){(uint32_t)(target >> 32)}, 4);
	}
	memcpy(k->guest_idt, cur, len);
	k->idt_base = v->cpu.idt_base;
	k->idt_len = len;
	k->idt_valid = true;
	return 0;
}

/* --- state into KVM --- */

static void put_regs(struct kvm_user *k, const struct emu_vcpu *v)
{
	k->run->s.regs.regs = regs_to_kvm(v->cpu.gpr, v->cpu.rip, emu_flags(v));
	k->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
}

static void put_sregs(struct kvm_user *k, const struct emu_vcpu *v)
{
	struct kvm_sregs want = k->run->s.regs.sregs;
	const struct emu_cpu *c = &v->cpu;

	seg_to_kvm(&want.cs, &c->seg[EMU_CS]);
	seg_to_kvm(&want.ss, &c->seg[EMU_SS]);
	seg_to_kvm(&want.ds, &c->seg[EMU_DS]);
	seg_to_kvm(&want.es, &c->seg[EMU_ES]);
	seg_to_kvm(&want.fs, &c->seg[EMU_FS]);
	seg_to_kvm(&want.gs, &c->seg[EMU_GS]);
	seg_to_kvm(&want.tr, &c->tr);
	seg_to_kvm(&want.ldt, &c->ldt);
	want.gdt.base = c->gdt_base;
	want.gdt.limit = c->gdt_limit;
	want.idt.base = IDT_LA;
	want.idt.limit = 0xfff;
	want.cr0 = c->cr0;
	want.cr2 = c->cr2;
	want.cr3 = c->cr3;
	want.cr4 = c->cr4;
	want.efer = c->efer;
	if (memcmp(&want, &k->run->s.regs.sregs, sizeof(want))) {
		k->sregs_sets++;
		k->run->s.regs.sregs = want;
		k->run->kvm_dirty_regs |= KVM_SYNC_X86_SREGS;
	}
}

/* The engine's x87/SSE state (the XSAVE legacy region) into KVM when the engine has it and
 * it differs from what KVM holds. */
static int put_fpu(struct kvm_user *k, const struct emu_vcpu *v)
{
	if (v->fpu_elsewhere || (k->fpu_valid && !memcmp(k->fpu, v->cpu.xsave, XSAVE_LEGACY)))
		return 0;
	memset(&k->xsave, 0, sizeof(k->xsave));
	memcpy(k->xsave.region, v->cpu.xsave, XSAVE_LEGACY);
	/* XSTATE_BV: x87 and SSE hold what the legacy region says. */
	k->xsave.region[XSAVE_BV_OFF / 4] = 3;
	if (ioctl(k->vcpu_fd, KVM_SET_XSAVE, &k->xsave) < 0) {
		pr_err("KVM_SET_XSAVE: %s", strerror(errno));
		return -errno;
	}
	memcpy(k->fpu, v->cpu.xsave, XSAVE_LEGACY);
	k->fpu_valid = true;
	return 0;
}

/* KVM's x87/SSE state into the engine, when the engine needs it (emu/vcpu.h: fpu_elsewhere):
 * most trips through the kernel never touch it, and each vCPU ioctl costs ~6 us here. */
int kvm_user_fetch_fpu(struct kvm_user *k, struct emu_vcpu *v)
{
	if (!v->fpu_elsewhere)
		return 0;
	if (ioctl(k->vcpu_fd, KVM_GET_XSAVE, &k->xsave) < 0) {
		pr_err("KVM_GET_XSAVE: %s", strerror(errno));
		return -errno;
	}
	memcpy(v->cpu.xsave, k->xsave.region, XSAVE_LEGACY);
	memcpy(k->fpu, v->cpu.xsave, XSAVE_LEGACY);
	k->fpu_valid = true;
	k->fpu_fetches++;
	v->fpu_elsewhere = false;
	return 0;
}

/* RDTSCP in user mode reads TSC_AUX natively (Linux keeps the CPU number there). */
static int put_tsc_aux(struct kvm_user *k, const struct emu_vcpu *v)
{
	uint32_t idx = MSR_TSC_AUX;

	if (k->tsc_aux_valid && k->tsc_aux == v->cpu.tsc_aux)
		return 0;
	if (msr_set(k->vcpu_fd, &idx, &v->cpu.tsc_aux, 1)) {
		pr_err("KVM_SET_MSRS(TSC_AUX) refused");
		return -EIO;
	}
	k->tsc_aux = v->cpu.tsc_aux;
	k->tsc_aux_valid = true;
	return 0;
}

/* --- state back from KVM --- */

/* User RFLAGS from what KVM reports: the bits user code controls, the rest as the engine had
 * them (PVM drops IOPL at CPL3: KVM-HOST.md). */
static void set_user_flags(struct emu_vcpu *v, uint64_t hw, uint64_t before)
{
	emu_flags_set(v, (hw & RFL_USER) | (before & RFL_KEEP) | 2);
}

/* Descriptor (sel) from the guest's GDT as a loaded segment; false when mvm cannot read it. */
static bool load_gdt_seg(struct kvm_user *k, const struct emu_vcpu *v, uint16_t sel,
			 struct emu_seg *s)
{
	uint64_t d;
	uint32_t limit;

	if ((sel & 4) || (sel | 7u) > v->cpu.gdt_limit ||
	    read_linear(k, v, v->cpu.gdt_base + (sel & ~7u), &d, 8))
		return false;
	limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
	*s = (struct emu_seg){
		.base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000),
		.limit = (d >> 55) & 1 ? (limit << 12) | 0xfff : limit,
		.sel = sel, .type = (d >> 40) & 0xf, .s = (d >> 44) & 1, .dpl = (d >> 45) & 3,
		.present = (d >> 47) & 1, .l = (d >> 53) & 1, .db = (d >> 54) & 1,
		.g = (d >> 55) & 1,
	};
	return true;
}

static bool has_error_code(unsigned int vector)
{
	return vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 ||
	       vector == 29 || vector == 30;
}

/* An exception taken at CPL3 went through the shadow IDT: KVM stopped at our handler for
 * (vector) at CPL0 with the frame on the guest's kernel stack. The user state comes back from
 * the frame and the general registers; the engine then runs the faulting instruction again
 * and raises the fault itself, through the guest's IDT. Trap-like exceptions (#BP, #OF) go
 * back to their instruction too; #DB is delivered by the caller. */
static int exception_exit(struct kvm_user *k, struct emu_vcpu *v, unsigned int vector,
			  const struct emu_seg *user_cs, const struct emu_seg *user_ss,
			  uint64_t before_flags, uint8_t *vec_out)
{
	const struct kvm_regs *r = &k->run->s.regs.regs;
	uint64_t frame[6], *f = frame;
	unsigned int n = has_error_code(vector) ? 6 : 5;

	if (read_linear(k, v, r->rsp, frame, n * 8)) {
		pr_err("cannot read the exception frame of vector %u at 0x%llx", vector,
		       (unsigned long long)r->rsp);
		return KVM_USER_ERROR;
	}
	if (n == 6)
		f++;
	/* f: RIP, CS, RFLAGS, RSP, SS. */
	if ((f[1] & 3) != 3) {
		pr_err("exception %u from user mode with a kernel frame (cs 0x%llx)", vector,
		       (unsigned long long)f[1]);
		return KVM_USER_ERROR;
	}
	gprs_from_kvm(v->cpu.gpr, r);
	v->cpu.gpr[EMU_RSP] = f[3];
	v->cpu.rip = f[0];
	v->cpu.seg[EMU_CS] = *user_cs;
	v->cpu.seg[EMU_SS] = *user_ss;
	if ((uint16_t)f[1] != user_cs->sel &&
	    !load_gdt_seg(k, v, (uint16_t)f[1], &v->cpu.seg[EMU_CS]))
		return KVM_USER_ERROR;
	if ((uint16_t)f[4] != user_ss->sel &&
	    !load_gdt_seg(k, v, (uint16_t)f[4], &v->cpu.seg[EMU_SS]))
		return KVM_USER_ERROR;
	set_user_flags(v, f[2], before_flags);
	emu_vcpu_mode_changed(v, false);
	k->exceptions++;
	k->by_vector[vector < 32 ? vector : 31]++;
	switch (vector) {
	case 3: /* INT3 (CC) or INT 3 (CD 03): back to the instruction */
		if (user_bytes_are(v, v->cpu.rip - 1, (const uint8_t[]){0xcc}, 1))
			v->cpu.rip -= 1;
		else if (user_bytes_are(v, v->cpu.rip - 2, (const uint8_t[]){0xcd, 0x03}, 2))
			v->cpu.rip -= 2;
		return KVM_USER_KERNEL;
	case 4: /* INTO */
		if (user_bytes_are(v, v->cpu.rip - 1, (const uint8_t[]){0xce}, 1))
			v->cpu.rip -= 1;
		return KVM_USER_KERNEL;
	case 1:
		*vec_out = 1;
		return KVM_USER_TRAP;
	default:
		return KVM_USER_KERNEL;
	}
}

/* A user-mode exit: the whole user state is KVM's. */
static void user_exit(struct kvm_user *k, struct emu_vcpu *v, uint64_t before_flags)
{
	const struct kvm_regs *r = &k->run->s.regs.regs;
	const struct kvm_sregs *s = &k->run->s.regs.sregs;

	gprs_from_kvm(v->cpu.gpr, r);
	v->cpu.rip = r->rip;
	seg_from_kvm(&v->cpu.seg[EMU_CS], &s->cs);
	seg_from_kvm(&v->cpu.seg[EMU_SS], &s->ss);
	seg_from_kvm(&v->cpu.seg[EMU_DS], &s->ds);
	seg_from_kvm(&v->cpu.seg[EMU_ES], &s->es);
	seg_from_kvm(&v->cpu.seg[EMU_FS], &s->fs);
	seg_from_kvm(&v->cpu.seg[EMU_GS], &s->gs);
	set_user_flags(v, r->rflags, before_flags);
	emu_vcpu_mode_changed(v, false);
}

/* SYSCALL reached the trap (RCX: the return address). The engine runs the SYSCALL at RCX - 2
 * itself. A user jump to the trap instead (RCX whatever it chose) goes on at the trap address
 * in the engine, where the fetch finds no memory: #UD, as executing the window does. */
static int syscall_exit(struct kvm_user *k, struct emu_vcpu *v, uint64_t before_flags)
{
	uint64_t rcx = k->run->s.regs.regs.rcx;

	user_exit(k, v, before_flags);
	if (user_bytes_are(v, rcx - 2, (const uint8_t[]){0x0f, 0x05}, 2))
		v->cpu.rip = rcx - 2;
	k->syscalls++;
	return KVM_USER_KERNEL;
}

static bool pio_exit(struct kvm_user *k)
{
	struct kvm_run *run = k->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	if (run->io.size != 1 && run->io.size != 2 && run->io.size != 4)
		return false;
	for (uint32_t i = 0; i < run->io.count; i++)
		bus_dispatch(k->pio, run->io.port, data + i * run->io.size, run->io.size,
			     run->io.direction == KVM_EXIT_IO_OUT);
	return true;
}

static bool user_state_ok(const struct emu_vcpu *v)
{
	const struct emu_cpu *c = &v->cpu;

	return v->cpl == 3 && (c->cr0 & CR0_PG) && (c->cr4 & CR4_PAE) && !(c->cr4 & CR4_LA57) &&
	       (c->efer & EFER_LMA);
}

static int flush_shadow(struct kvm_user *k)
{
	uint64_t t = now_ns();
	int ret = set_memory_slots(k, false);

	if (!ret)
		ret = set_memory_slots(k, true);
	k->flushes++;
	k->ns_flush += now_ns() - t;
	return ret;
}

int kvm_user_run(struct kvm_user *k, struct emu_vcpu *v, bool flush, uint8_t *vector)
{
	struct emu_seg user_cs = v->cpu.seg[EMU_CS], user_ss = v->cpu.seg[EMU_SS];
	uint64_t before_flags = emu_flags(v), t0;
	int ret = KVM_USER_ERROR;

	/* The flush first: the caller forgot what KVM may have cached whatever happens next. */
	if (flush && flush_shadow(k))
		return KVM_USER_ERROR;
	if (!user_state_ok(v) || !window_installed(k, v->cpu.cr3))
		return KVM_USER_UNSUPPORTED;
	if (!atomic_load(&k->thread_set) && bind_thread(k))
		return KVM_USER_ERROR;
	if (sync_idt(k, v)) {
		pr_warn_once("the guest IDT is unreadable: user code runs in the engine");
		return KVM_USER_UNSUPPORTED;
	}
	if (put_fpu(k, v) || put_tsc_aux(k, v))
		return KVM_USER_ERROR;
	put_regs(k, v);
	put_sregs(k, v);
	k->entries++;
	t0 = now_ns();
	for (;;) {
		struct kvm_run *run = k->run;
		const struct kvm_regs *r = &run->s.regs.regs;
		const struct kvm_sregs *s = &run->s.regs.sregs;

		if (ioctl(k->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				run->kvm_dirty_regs = 0;
				drain_kicks();
				user_exit(k, v, before_flags);
				k->interrupted++;
				ret = KVM_USER_INTERRUPTED;
				break;
			}
			pr_err("KVM_RUN: %s", strerror(errno));
			break;
		}
		run->kvm_dirty_regs = 0;
		if (run->exit_reason == KVM_EXIT_IO && s->cs.dpl == 3 && pio_exit(k))
			continue;
		if (run->exit_reason == KVM_EXIT_MMIO && s->cs.dpl == 3) {
			if (run->mmio.len <= 8)
				bus_dispatch(k->mmio, run->mmio.phys_addr, run->mmio.data,
					     run->mmio.len, run->mmio.is_write);
			continue;
		}
		if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR && s->cs.dpl == 0 &&
		    r->rip >= EXC_LA && r->rip < EXC_LA + 256 * EXC_STRIDE &&
		    !(r->rip % EXC_STRIDE)) {
			ret = exception_exit(k, v, (unsigned int)((r->rip - EXC_LA) / EXC_STRIDE),
					     &user_cs, &user_ss, before_flags, vector);
			break;
		}
		if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR && s->cs.dpl == 3 &&
		    (r->rip == SYSCALL_TRAP_LSTAR || r->rip == SYSCALL_TRAP_CSTAR)) {
			ret = syscall_exit(k, v, before_flags);
			break;
		}
		if (s->cs.dpl == 3 && run->exit_reason != KVM_EXIT_SHUTDOWN &&
		    run->exit_reason != KVM_EXIT_FAIL_ENTRY) {
			/* Anything else at CPL3 (an instruction KVM-PVM cannot run, a jump into
			 * the window): the engine runs the instruction at RIP. */
			user_exit(k, v, before_flags);
			k->other_exits++;
			ret = KVM_USER_KERNEL;
			break;
		}
		pr_err("guest user mode left KVM unexpectedly: exit reason %u at rip 0x%llx, "
		       "cs 0x%x (dpl %u)", run->exit_reason, (unsigned long long)r->rip,
		       s->cs.selector, s->cs.dpl);
		break;
	}
	k->ns_in_kvm += now_ns() - t0;
	/* User mode ran: KVM holds the x87/SSE state until the engine needs it. */
	v->fpu_elsewhere = true;
	return ret;
}

void kvm_user_print_stats(const struct kvm_user *k, FILE *f)
{
	fprintf(f, "mvm: hybrid: %llu entries into user mode on KVM, %.3f s there; exits: %llu "
		"system calls, %llu exceptions, %llu interrupts, %llu other\n",
		(unsigned long long)k->entries, (double)k->ns_in_kvm / 1e9,
		(unsigned long long)k->syscalls, (unsigned long long)k->exceptions,
		(unsigned long long)k->interrupted, (unsigned long long)k->other_exits);
	fprintf(f, "mvm: hybrid: %llu x87/SSE state fetches, %llu segment/control register "
		"loads, %llu shadow page-table flushes took %.3f s; exceptions by vector:",
		(unsigned long long)k->fpu_fetches, (unsigned long long)k->sregs_sets,
		(unsigned long long)k->flushes, (double)k->ns_flush / 1e9);
	for (unsigned int i = 0; i < 32; i++)
		if (k->by_vector[i])
			fprintf(f, " #%u %llu", i, (unsigned long long)k->by_vector[i]);
	fprintf(f, "\n");
}
