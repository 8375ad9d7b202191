/* syscall_trap.c: SYSCALL from guest user mode on KVM-PVM.
 *
 * The problem (measured, KVM-HOST.md): on KVM-PVM a SYSCALL executed at guest CPL3 jumps to
 * LSTAR but stays at CPL3, so an unmodified Linux dies on its first system call. What does work:
 * an instruction fetch at CPL3 from a guest-linear address that translates to a guest-physical
 * address with no memory slot comes back to the VMM as an emulation failure, with RIP at that
 * address and RCX/R11 already holding the return RIP and RFLAGS.
 *
 * The mechanism:
 * 1. An MSR filter routes the guest's RDMSR/WRMSR of LSTAR and CSTAR to mvm. mvm remembers the
 *    values the guest writes and returns them on reads, while KVM holds trap addresses instead.
 * 2. On the first LSTAR write (Linux's syscall_init(), when CR3 is swapper_pg_dir), mvm fills
 *    PML4 slot 401 of the current page tables, a slot Linux leaves empty (the 0.5 TB hole at
 *    ffffc88000000000 in Documentation/x86/x86_64/mm.rst), with tables mvm keeps in reserved
 *    memory: one user-accessible, executable, read-only 2 MiB page at guest-physical
 *    LAYOUT_SYSCALL_TRAP_GPA, where no memory and no device is. Linux copies kernel PML4
 *    slots (273-511) into every page table it creates later, so every process sees the window.
 * 3. A SYSCALL in user mode then fetches from the window and exits. mvm checks that the vCPU is
 *    at CPL3 with RIP exactly at a trap address, in the mode that trap serves (64-bit code for
 *    LSTAR, compatibility mode for CSTAR), with EFER.SCE set and KVM's MSR holding that trap,
 *    and performs SYSCALL as the SDM specifies: RFLAGS = R11 & ~SFMASK, CS/SS from STAR[47:32]
 *    with DPL 0, CPL 0, RIP = the guest's own LSTAR (or CSTAR). The guest kernel's entry code
 *    runs as on hardware. The return (SYSRET, IRET) already works on PVM.
 *
 * User code can reach the window without a SYSCALL (it is user-executable), so nothing there
 * may stop the VM or hand the kernel a state no SYSCALL produces:
 * - Any other user fetch from the window (another offset, a trap in the wrong mode, SCE clear,
 *   a trap the guest never armed) raises #UD in the guest: what executing the window's bytes
 *   (all ones, FF FF: an undefined opcode) does on hardware, and what SYSCALL raises when it
 *   cannot run.
 * - A jump to the LSTAR trap counts as a SYSCALL, but R11 is not trusted: the user RFLAGS
 *   the kernel gets (in R11, and masked as its own RFLAGS) comes from what the hardware holds.
 *   On PVM the vCPU's RFLAGS at the exit is the user's RFLAGS with the SFMASK bits cleared
 *   after a real SYSCALL (measured), and the user's RFLAGS untouched after a jump. So: an SFMASK
 *   bit set there means no SYSCALL ran, and the user RFLAGS is that value whole (with Linux's
 *   SFMASK, which has IF, every jump from user mode is told apart this way); otherwise the
 *   bits outside SFMASK come from there and only the SFMASK bits (and RF) from R11. IOPL always
 *   comes from the hardware, and VM, VIF, VIP and the reserved bits are never set. RCX (the
 *   return address) is the user's choice, as with a SYSCALL placed before it; a kernel
 *   address there only makes the return fault in user mode.
 *
 * Limits (what a guest can observe, and what is not covered):
 * - PML4 slot 401 of the guest's page tables is not empty, and user code can read the window
 *   (it reads as all ones: unclaimed MMIO). Linux never maps that slot.
 * - The slot must be empty in the page tables current at the first LSTAR write, and later page
 *   tables must inherit it from those (Linux's pgd_alloc() does for slots >= 273). A kernel
 *   with page-table isolation for user space (PTI) does not map it in user page tables; PTI is
 *   off on AMD hosts, and a kernel that needs it must boot with pti=off.
 * - 5-level paging is not supported (the slot index differs).
 * - INT 0x80 from user mode raises #UD on PVM before mvm can see it (no exit exists for it), so
 *   32-bit programs that use int 0x80 fail there; SYSENTER is not available in long mode on AMD.
 * Only used when the backend is PVM (or MVM_SYSCALL_TRAP=on); on VMX/SVM nothing changes.
 */
#define pr_fmt(fmt) "syscall-trap: " fmt
#include "kvm/syscall_trap.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/layout.h"
#include "kvm/msr.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "util/log.h"

#define MSR_STAR	 0xc0000081
#define MSR_LSTAR	 0xc0000082
#define MSR_CSTAR	 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084

#define PTE_P	 (1ull << 0)
#define PTE_RW	 (1ull << 1)
#define PTE_US	 (1ull << 2)
#define PTE_A	 (1ull << 5)
#define PTE_PS	 (1ull << 7)

/* The PML4 entry mvm installs in slot SYSCALL_TRAP_PML4_INDEX; the CPU sets its accessed bit
 * once it walks it. */
#define WINDOW_PML4E	 (LAYOUT_SYSCALL_TRAP_PDPT | PTE_P | PTE_RW | PTE_US)
#define IS_WINDOW_PML4E(e) (((e) & ~PTE_A) == WINDOW_PML4E)
#define WINDOW_SIZE	 (2ull << 20)

#define CR0_PG		 (1ull << 31)
#define CR4_PAE		 (1ull << 5)
#define CR4_LA57	 (1ull << 12)
#define EFER_SCE	 (1ull << 0)
#define EFER_LMA	 (1ull << 10)

/* RFLAGS bits (SDM Vol. 1 3.4.3). */
#define RF_CF	 (1ull << 0)
#define RF_FIXED (1ull << 1)
#define RF_PF	 (1ull << 2)
#define RF_AF	 (1ull << 4)
#define RF_ZF	 (1ull << 6)
#define RF_SF	 (1ull << 7)
#define RF_TF	 (1ull << 8)
#define RF_IF	 (1ull << 9)
#define RF_DF	 (1ull << 10)
#define RF_OF	 (1ull << 11)
#define RF_IOPL	 (3ull << 12)
#define RF_NT	 (1ull << 14)
#define RF_RF	 (1ull << 16)
#define RF_AC	 (1ull << 18)
#define RF_ID	 (1ull << 21)
/* What user-mode RFLAGS can hold besides IOPL and RF (both handled apart): no VM in long
 * mode, no VIF/VIP (set only through IRET/POPF with CR4.VME/PVI, never for 64-bit user code by
 * Linux), no reserved bit. */
#define RF_USER	 (RF_CF | RF_PF | RF_AF | RF_ZF | RF_SF | RF_TF | RF_IF | RF_DF | RF_OF | RF_NT | \
		  RF_AC | RF_ID)

enum syscall_trap_mode syscall_trap_mode_from_env(void)
{
	const char *v = getenv("MVM_SYSCALL_TRAP");

	if (v && !strcmp(v, "on"))
		return SYSCALL_TRAP_ON;
	if (v && !strcmp(v, "off"))
		return SYSCALL_TRAP_OFF;
	return SYSCALL_TRAP_AUTO;
}

static void install_window(struct vcpu *v);

int syscall_trap_init(struct vm *vm)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
				     .args = {KVM_MSR_EXIT_REASON_FILTER}};

	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		pr_err("KVM_ENABLE_CAP(X86_USER_SPACE_MSR): %s", strerror(errno));
		return -errno;
	}
	if (!syscall_trap_tables(&vm->mem))
		return -EFAULT;
	vm->syscall_trap = true;
	pr_info("SYSCALL from guest user mode is trapped and completed by mvm (KVM backend %s)",
		kvm_backend_name(vm->backend));
	return 0;
}

/* KVM_X86_SET_MSR_FILTER waits in the kernel for an SRCU grace period (the README's start-up
 * figure). This thread takes that wait while the vCPUs start; it touches nothing the guest
 * controls, makes this one ioctl and ends, before the VM could have been snapshotted. */
static void *filter_thread(void *arg)
{
	struct vm *vm = arg;
	uint8_t deny = 0; /* one bit per MSR, 0 = denied: the access exits to us */
	struct kvm_msr_filter filter = {
		.flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
		.ranges = {{.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, .nmsrs = 2,
			    .base = MSR_LSTAR, .bitmap = &deny}},
	};

	if (ioctl(vm->vm_fd, KVM_X86_SET_MSR_FILTER, &filter) < 0) {
		pr_err("KVM_X86_SET_MSR_FILTER: %s; SYSCALL from user mode cannot be trapped",
		       strerror(errno));
		stop_request(&vm->stop, STOP_VMM_ERROR, 0);
		return NULL;
	}
	/* No kick: each vCPU looks before its next KVM_RUN. A direct LSTAR write matters only
	 * once user mode makes a SYSCALL, and between the kernel's LSTAR write and its first user
	 * process lie many exits (every port or MMIO access). The vCPU threads may not all exist
	 * yet either, and their thread ids are not this thread's to read. */
	atomic_store(&vm->trap_filter_ready, true);
	return NULL;
}

int syscall_trap_start(struct vm *vm)
{
	int ret;

	if (!vm->syscall_trap)
		return 0;
	ret = pthread_create(&vm->trap_thread, NULL, filter_thread, vm);
	if (ret) {
		pr_err("cannot start the MSR filter thread: %s", strerror(ret));
		return -ret;
	}
	pthread_setname_np(vm->trap_thread, "mvm-msrfilter");
	vm->trap_thread_started = true;
	return 0;
}

void syscall_trap_fini(struct vm *vm)
{
	if (vm->trap_thread_started)
		pthread_join(vm->trap_thread, NULL);
	vm->trap_thread_started = false;
}

void syscall_trap_reconcile(struct vcpu *v)
{
	static const uint32_t idx[2] = {MSR_LSTAR, MSR_CSTAR};
	static const uint64_t trap[2] = {SYSCALL_TRAP_LSTAR, SYSCALL_TRAP_CSTAR};
	uint64_t *guest[2] = {&v->guest_lstar, &v->guest_cstar};
	uint64_t now[2];

	v->trap_reconciled = true;
	if (msr_get(v->fd, idx, now, 2)) {
		pr_err("vCPU %u: reading LSTAR/CSTAR failed", v->index);
		return;
	}
	for (unsigned int i = 0; i < 2; i++) {
		/* KVM holds the trap address (armed, or restored armed) or what the guest wrote
		 * before the filter: the latter is taken over as the filtered write would have. */
		if (now[i] == trap[i])
			continue;
		*guest[i] = now[i];
		if (!now[i])
			continue;
		pr_debug("vCPU %u: MSR 0x%x written (0x%llx) before the filter was in place",
			 v->index, idx[i], (unsigned long long)now[i]);
		if (idx[i] == MSR_LSTAR)
			install_window(v);
		if (msr_set(v->fd, &idx[i], &trap[i], 1))
			pr_err("vCPU %u: cannot set the trap address in MSR 0x%x", v->index, idx[i]);
	}
}

bool syscall_trap_tables(const struct guest_mem *mem)
{
	uint64_t *pdpt = gpa_to_hva(mem, LAYOUT_SYSCALL_TRAP_PDPT, 4096);
	uint64_t *pd = gpa_to_hva(mem, LAYOUT_SYSCALL_TRAP_PD, 4096);

	/* The tables behind PML4 slot 401: PDPT[0] -> PD, PD[0] -> a 2 MiB user page with no
	 * memory behind it. Read-only: a write there faults in the guest like any other. */
	if (!pdpt || !pd)
		return false;
	memset(pdpt, 0, 4096);
	memset(pd, 0, 4096);
	pdpt[0] = LAYOUT_SYSCALL_TRAP_PD | PTE_P | PTE_RW | PTE_US;
	pd[0] = LAYOUT_SYSCALL_TRAP_GPA | PTE_P | PTE_US | PTE_PS;
	return true;
}

bool syscall_trap_fill_slot(const struct guest_mem *mem, uint64_t cr3, uint64_t *old)
{
	uint64_t *pml4 = gpa_to_hva(mem, cr3 & 0x000ffffffffff000ull, 4096);

	*old = 0;
	if (!pml4)
		return false;
	/* The guest may write the same entry on another vCPU meanwhile: the slot is filled only
	 * if it is still empty, so a guest's write is never overwritten. */
	return __atomic_compare_exchange_n(&pml4[SYSCALL_TRAP_PML4_INDEX], old, WINDOW_PML4E,
					   false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
	       IS_WINDOW_PML4E(*old);
}

/* Points PML4 slot 401 of the current page tables at our PDPT, if the slot is empty. */
static void install_window(struct vcpu *v)
{
	struct kvm_sregs s;
	uint64_t old;

	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return;
	if (!(s.cr0 & CR0_PG) || !(s.cr4 & CR4_PAE) || (s.cr4 & CR4_LA57)) {
		pr_warn_once("the guest writes LSTAR without 4-level paging; system calls from "
			     "user mode will not work");
		return;
	}
	if (!syscall_trap_fill_slot(&v->vm->mem, s.cr3, &old)) {
		if (old)
			pr_warn_once("PML4 slot %d is in use by the guest (0x%llx); system calls "
				     "from user mode will not work", SYSCALL_TRAP_PML4_INDEX,
				     (unsigned long long)old);
		return;
	}
	pr_debug("trap window in the page tables at 0x%llx",
		 (unsigned long long)(s.cr3 & ~0xfffull));
}

bool syscall_trap_msr_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t index = run->msr.index;
	uint64_t *guest = index == MSR_LSTAR ? &v->guest_lstar : &v->guest_cstar;

	if (!v->vm->syscall_trap || (index != MSR_LSTAR && index != MSR_CSTAR))
		return false;
	run->msr.error = 0;
	if (run->exit_reason == KVM_EXIT_X86_RDMSR) {
		run->msr.data = *guest;
		return true;
	}
	/* WRMSR of a non-canonical address is #GP on hardware. */
	if ((uint64_t)((int64_t)(run->msr.data << 16) >> 16) != run->msr.data) {
		run->msr.error = 1;
		return true;
	}
	*guest = run->msr.data;
	if (index == MSR_LSTAR)
		install_window(v);
	if (msr_set(v->fd, &index,
		    &(uint64_t){index == MSR_LSTAR ? SYSCALL_TRAP_LSTAR : SYSCALL_TRAP_CSTAR}, 1)) {
		pr_err("vCPU %u: cannot set the trap address in MSR 0x%x", v->index, index);
		run->msr.error = 1;
	}
	return true;
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, bool code)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = code ? 0xb : 0x3,
		.present = 1, .dpl = 0, .db = code ? 0 : 1, .s = 1, .l = code, .g = 1,
	};
}

/* Raises #UD in the guest at its current RIP. */
static bool raise_ud(struct vcpu *v)
{
	struct kvm_vcpu_events ev;

	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return false;
	ev.exception.injected = 1;
	ev.exception.nr = 6;
	ev.exception.has_error_code = 0;
	ev.exception.error_code = 0;
	ev.flags = 0;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0) {
		pr_err("vCPU %u: raising #UD: %s", v->index, strerror(errno));
		return false;
	}
	return true;
}

/* Whether (s) translates RIP through our window: 4-level paging with slot 401 of the current
 * PML4 holding our entry (a guest that put its own entry there gets no trap). */
static bool window_mapped(struct vcpu *v, const struct kvm_sregs *s)
{
	const uint64_t *pml4;

	if (!(s->cr0 & CR0_PG) || !(s->cr4 & CR4_PAE) || (s->cr4 & CR4_LA57) ||
	    !(s->efer & EFER_LMA))
		return false;
	pml4 = gpa_to_hva(&v->vm->mem, s->cr3 & 0x000ffffffffff000ull, 4096);
	return pml4 &&
	       IS_WINDOW_PML4E(__atomic_load_n(&pml4[SYSCALL_TRAP_PML4_INDEX], __ATOMIC_RELAXED));
}

/* Why a user fetch from the window is no SYSCALL (and raises #UD). */
enum ud_reason { UD_NONE, UD_OFFSET, UD_NO_SCE, UD_LSTAR_COMPAT, UD_CSTAR_64, UD_UNARMED, UD_N };
static const char *const ud_reasons[UD_N] = {
	[UD_OFFSET] = "user code jumped into the SYSCALL trap window",
	[UD_NO_SCE] = "SYSCALL trap reached with EFER.SCE clear",
	[UD_LSTAR_COMPAT] = "LSTAR trap reached from compatibility mode",
	[UD_CSTAR_64] = "CSTAR trap reached from 64-bit code",
	[UD_UNARMED] = "SYSCALL trap reached that the guest never armed (no LSTAR/CSTAR write)",
};
static bool ud_logged[UD_N]; /* __atomic builtins, not _Atomic (clang) */

bool syscall_trap_emulation_exit(struct vcpu *v)
{
	static const uint32_t idx[] = {MSR_STAR, MSR_SYSCALL_MASK, MSR_LSTAR, MSR_CSTAR};
	enum { STAR, FMASK, LSTAR, CSTAR };
	struct kvm_regs r;
	struct kvm_sregs s;
	uint64_t msr[4], target, user, hw;
	enum ud_reason why = UD_NONE;
	bool lstar;
	uint16_t sel;

	if (!v->vm->syscall_trap)
		return false;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return false;
	/* A fetch from the window at CPL0 is the kernel's bug: the emulator reports it. */
	if (s.cs.dpl != 3 || r.rip - SYSCALL_TRAP_LA >= WINDOW_SIZE || !window_mapped(v, &s))
		return false;
	if (msr_get(v->fd, idx, msr, 4)) {
		pr_err("vCPU %u: reading STAR/SFMASK/LSTAR/CSTAR failed", v->index);
		return false;
	}
	lstar = r.rip == SYSCALL_TRAP_LSTAR;
	/* SYSCALL (SDM Vol. 2, and AMD APM Vol. 3 for compatibility mode): #UD unless EFER.SCE;
	 * from 64-bit code to LSTAR, from compatibility mode to CSTAR. A fetch anywhere else in
	 * the window runs the all-ones bytes behind it: #UD as well. */
	if (!lstar && r.rip != SYSCALL_TRAP_CSTAR)
		why = UD_OFFSET;
	else if (!(s.efer & EFER_SCE))
		why = UD_NO_SCE;
	else if (lstar ? !s.cs.l : s.cs.l)
		why = lstar ? UD_LSTAR_COMPAT : UD_CSTAR_64;
	else if (msr[lstar ? LSTAR : CSTAR] != (lstar ? SYSCALL_TRAP_LSTAR : SYSCALL_TRAP_CSTAR))
		why = UD_UNARMED;
	if (why != UD_NONE) {
		/* Any user process can do this at will: once per reason. */
		if (!__atomic_exchange_n(&ud_logged[why], true, __ATOMIC_RELAXED))
			pr_warn("vCPU %u: %s (rip 0x%llx): #UD raised in the guest (logged once)",
				v->index, ud_reasons[why], (unsigned long long)r.rip);
		return raise_ud(v);
	}
	target = lstar ? v->guest_lstar : v->guest_cstar;
	/* SYSCALL (SDM Vol. 2): R11 = RFLAGS; RFLAGS = RFLAGS & ~FMASK, RF cleared; RCX = the
	 * return RIP; CS = STAR[47:32] & ~3, SS = that + 8, both flat with DPL 0; CPL 0;
	 * RIP = LSTAR (CSTAR from compatibility mode). PVM wrote RCX and R11, but a user jump to
	 * the trap reaches here with an R11 of its choosing: the user RFLAGS is rebuilt from what
	 * the hardware holds (the comment at the top). RF in the vCPU's RFLAGS is the exit's. */
	hw = r.rflags & ~RF_RF;
	if (hw & msr[FMASK])
		user = hw;
	else
		user = (hw & ~msr[FMASK]) | (r.r11 & (msr[FMASK] | RF_RF));
	user = (user & (RF_USER | RF_RF)) | (hw & RF_IOPL) | RF_FIXED;
	r.r11 = user;
	r.rflags = (user & ~msr[FMASK] & ~RF_RF) | RF_FIXED;
	sel = (msr[STAR] >> 32) & 0xfffc;
	r.rip = target;
	flat_segment(&s.cs, sel, true);
	flat_segment(&s.ss, sel + 8, false);
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0 || ioctl(v->fd, KVM_SET_REGS, &r) < 0) {
		pr_err("vCPU %u: entering the guest kernel for a system call: %s", v->index,
		       strerror(errno));
		return false;
	}
	return true;
}
