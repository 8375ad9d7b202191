/* vcpu.c: vCPU creation, the KVM_RUN loop and exit dispatch to the buses. */
#define pr_fmt(fmt) "vcpu: " fmt
#include "kvm/vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/thread_role.h"
#include "kvm/cpuid.h"
#include "kvm/emulate.h"
#include "kvm/syscall_trap.h"
#include "kvm/msr.h"
#include "kvm/vm.h"
#include "util/log.h"

/* The signal that interrupts KVM_RUN. Its handler does nothing: the point is the EINTR. */
#define VCPU_KICK_SIGNAL SIGUSR1

static void kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signals_init(void)
{
	struct sigaction sa = {.sa_handler = kick_handler};

	/* No SA_RESTART: KVM_RUN must return -EINTR. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	return 0;
}

int vcpu_init(struct vcpu *v, struct vm *vm, unsigned int index)
{
	int ret;

	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->index = index;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0) {
		ret = -errno;
		pr_err("KVM_CREATE_VCPU %u: %s", index, strerror(errno));
		return ret;
	}
	v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		ret = -errno;
		pr_err("mmap of vCPU %u's kvm_run: %s", index, strerror(errno));
		goto exit_fd;
	}
	/* Every exit carries the event state (interrupt shadow, pending exception): the emulator
	 * needs it after an instruction it completed (emulate.c), at no ioctl's cost. */
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_EVENTS)
		v->run->kvm_valid_regs = KVM_SYNC_X86_EVENTS;
	ret = cpuid_apply(vm, v->fd, index);
	if (ret)
		goto exit_run;
	ret = msr_set_boot_values(v->fd);
	if (ret)
		goto exit_run;
	return 0;
exit_run:
	munmap(v->run, vm->run_size);
exit_fd:
	close(v->fd);
	v->fd = -1;
	return ret;
}

void vcpu_fini(struct vcpu *v)
{
	if (v->fd < 0)
		return;
	munmap(v->run, v->vm->run_size);
	close(v->fd);
	v->fd = -1;
}

static void set_flat_segment(struct kvm_segment *s, uint16_t sel, bool code, bool long_mode)
{
	*s = (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = code ? 0xb : 0x3, /* execute/read accessed, or read/write accessed */
		.present = 1,
		.dpl = 0,
		.db = code && long_mode ? 0 : 1,
		.s = 1,
		.l = code && long_mode,
		.g = 1,
	};
}

int vcpu_set_boot_state(struct vcpu *v, const struct boot_cpu *b)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = {0};

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		pr_err("KVM_GET_SREGS: %s", strerror(errno));
		return -errno;
	}
	set_flat_segment(&sregs.cs, b->cs_sel, true, b->long_mode);
	set_flat_segment(&sregs.ds, b->ds_sel, false, b->long_mode);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.tr = (struct kvm_segment){
		.selector = b->tr_sel,
		.limit = 0x67,
		.type = 0xb, /* busy TSS (32-bit and 64-bit share the type) */
		.present = 1,
	};
	sregs.ldt = (struct kvm_segment){.type = 2, .present = 1, .limit = 0xffff};
	sregs.gdt.base = b->gdt_base;
	sregs.gdt.limit = b->gdt_limit;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = b->cr0;
	sregs.cr3 = b->cr3;
	sregs.cr4 = b->cr4;
	sregs.efer = b->efer;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0) {
		pr_err("KVM_SET_SREGS: %s", strerror(errno));
		return -errno;
	}
	regs.rip = b->rip;
	regs.rsp = b->rsp;
	regs.rsi = b->rsi;
	regs.rbx = b->rbx;
	regs.rflags = b->rflags | 2;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
		pr_err("KVM_SET_REGS: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static const char *cpu_mode(const struct kvm_sregs *s)
{
	if (!(s->cr0 & 1))
		return "real";
	if (s->efer & (1 << 10))
		return s->cs.l ? "long 64-bit" : "long compatibility";
	return s->cr0 & 0x80000000u ? "protected, paged" : "protected";
}

static void dump_segment(FILE *f, const char *name, const struct kvm_segment *s)
{
	fprintf(f, "  %-3s sel=%04x base=%016llx limit=%08x type=%x dpl=%u p=%u db=%u l=%u g=%u\n",
		name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl,
		s->present, s->db, s->l, s->g);
}

void vcpu_dump(struct vcpu *v, const char *why)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	FILE *f = stderr;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		pr_err("vCPU %u: %s; registers unavailable: %s", v->index, why, strerror(errno));
		return;
	}
	flockfile(f);
	fprintf(f, "mvm: vCPU %u: %s\n", v->index, why);
	fprintf(f, "  mode: %s, CPL %u\n", cpu_mode(&s), s.cs.dpl);
	fprintf(f, "  rip=%016llx rflags=%016llx\n", r.rip, r.rflags);
	fprintf(f, "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n", r.rax, r.rbx, r.rcx,
		r.rdx);
	fprintf(f, "  rsi=%016llx rdi=%016llx rbp=%016llx rsp=%016llx\n", r.rsi, r.rdi, r.rbp,
		r.rsp);
	fprintf(f, "  r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n", r.r8, r.r9, r.r10,
		r.r11);
	fprintf(f, "  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n", r.r12, r.r13, r.r14,
		r.r15);
	fprintf(f, "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx\n", s.cr0, s.cr2, s.cr3,
		s.cr4);
	fprintf(f, "  efer=%016llx apic_base=%016llx\n", s.efer, s.apic_base);
	dump_segment(f, "cs", &s.cs);
	dump_segment(f, "ss", &s.ss);
	dump_segment(f, "ds", &s.ds);
	dump_segment(f, "es", &s.es);
	dump_segment(f, "fs", &s.fs);
	dump_segment(f, "gs", &s.gs);
	dump_segment(f, "tr", &s.tr);
	fprintf(f, "  gdt base=%016llx limit=%04x  idt base=%016llx limit=%04x\n",
		s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
	funlockfile(f);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;

	/* NOTE: data_offset and count come from KVM, not the guest; the page is ours. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		bus_dispatch(&v->vm->pio, run->io.port, data, run->io.size, write);
}

static void report_internal_error(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char bytes[16 * 3 + 1] = "";

	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
		if (run->internal.ndata >= 2 &&
		    (run->emulation_failure.flags &
		     KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
			unsigned int n = run->emulation_failure.insn_size;

			if (n > sizeof(run->emulation_failure.insn_bytes))
				n = sizeof(run->emulation_failure.insn_bytes);
			for (unsigned int i = 0; i < n; i++)
				sprintf(bytes + 3 * i, "%02x ", run->emulation_failure.insn_bytes[i]);
		} else {
			strcpy(bytes, "(not provided by KVM)");
		}
		pr_err("vCPU %u: KVM could not emulate an instruction (KVM_EXIT_INTERNAL_ERROR, "
		       "emulation failure); instruction bytes: %s", v->index, bytes);
	} else {
		pr_err("vCPU %u: KVM_EXIT_INTERNAL_ERROR, suberror %u", v->index,
		       run->internal.suberror);
	}
	vcpu_dump(v, "stopped on an exit mvm does not handle");
}

const char *const vcpu_exit_names[VCPU_EXIT_KINDS] = {
	[VCPU_EXIT_IO] = "io", [VCPU_EXIT_MMIO] = "mmio", [VCPU_EXIT_MSR] = "msr",
	[VCPU_EXIT_EMULATION] = "emulation", [VCPU_EXIT_INTR] = "intr",
	[VCPU_EXIT_OTHER] = "other",
};

static void count_exit(struct vcpu *v, enum vcpu_exit_kind k)
{
	atomic_store_explicit(&v->exits[k],
			      atomic_load_explicit(&v->exits[k], memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static enum vcpu_exit_kind exit_kind(const struct kvm_run *run)
{
	switch (run->exit_reason) {
	case KVM_EXIT_IO: return VCPU_EXIT_IO;
	case KVM_EXIT_MMIO: return VCPU_EXIT_MMIO;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR: return VCPU_EXIT_MSR;
	case KVM_EXIT_INTERNAL_ERROR: return VCPU_EXIT_EMULATION;
	case KVM_EXIT_INTR: return VCPU_EXIT_INTR;
	default: return VCPU_EXIT_OTHER;
	}
}

/* Handles one exit. Returns false when the vCPU must stop. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct vm *vm = v->vm;
	char why[96];

	count_exit(v, exit_kind(run));
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		bus_dispatch(&vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			     run->mmio.is_write);
		return true;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		/* Only the MSRs our filter routes here arrive; anything else is #GP. */
		if (!syscall_trap_msr_exit(v))
			run->msr.error = 1;
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT:
		/* HLT only exits without an in-kernel LAPIC; ours has one. Re-enter either way. */
		return true;
	case KVM_EXIT_SHUTDOWN:
		vcpu_dump(v, "the guest triple-faulted (KVM_EXIT_SHUTDOWN)");
		stop_request(&vm->stop, STOP_CRASH, 0);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			stop_request(&vm->stop, STOP_RESET, 0);
		else if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			stop_request(&vm->stop, STOP_POWEROFF, 0);
		else {
			snprintf(why, sizeof(why), "system event %u", run->system_event.type);
			vcpu_dump(v, why);
			stop_request(&vm->stop, STOP_CRASH, 0);
		}
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		/* KVM-PVM hands back ordinary instructions (KVM-HOST.md): finish them here. */
		if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
			if (syscall_trap_emulation_exit(v) || emulate_on_exit(v))
				return true;
			stop_request(&vm->stop, STOP_UNHANDLED, 0);
			return false;
		}
		report_internal_error(v);
		stop_request(&vm->stop, STOP_UNHANDLED, 0);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(why, sizeof(why), "VM entry failed, hardware reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_dump(v, why);
		stop_request(&vm->stop, STOP_VMM_ERROR, 0);
		return false;
	default:
		snprintf(why, sizeof(why), "unexpected KVM exit reason %u", run->exit_reason);
		vcpu_dump(v, why);
		stop_request(&vm->stop, STOP_UNHANDLED, 0);
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;

	/* Before the first KVM_RUN: the thread's sandbox (seccomp) is in place. */
	if (thread_role_enter(THREAD_VCPU)) {
		pr_err("vCPU %u: the thread could not take its role", v->index);
		stop_request(&vm->stop, STOP_VMM_ERROR, 0);
		return NULL;
	}
	while (stop_reason(&vm->stop) == STOP_NONE) {
		if (stop_pause_wanted(&vm->stop)) {
			/* The last exit's I/O completes only when KVM_RUN is entered again (KVM API
			 * doc, KVM_RUN): do that now, with immediate_exit so it returns at once, so
			 * a snapshot of the parked vCPU is consistent. */
			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
			if (ioctl(v->fd, KVM_RUN, 0) == 0 || (errno != EINTR && errno != EAGAIN))
				pr_warn_once("vCPU %u: completing its last exit before a pause: %s",
					     v->index, strerror(errno));
			__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			stop_park(&vm->stop);
			continue;
		}
		if (vm->syscall_trap && !v->trap_reconciled && atomic_load(&vm->trap_filter_ready))
			syscall_trap_reconcile(v);
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* A kick: clear it, then the loop condition sees the stop request,
				 * which the kicker published before kicking. */
				__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				count_exit(v, VCPU_EXIT_INTR);
				continue;
			}
			pr_err("KVM_RUN on vCPU %u: %s", v->index, strerror(errno));
			stop_request(&vm->stop, STOP_VMM_ERROR, 0);
			break;
		}
		if (!handle_exit(v))
			break;
	}
	/* Where was it when a signal stopped the machine? Answers "why does my guest hang". */
	if (stop_reason(&vm->stop) == STOP_SIGNAL && log_get_level() >= LOG_DEBUG)
		vcpu_dump(v, "stopped by a signal");
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	char name[16];
	int ret = pthread_create(&v->thread, NULL, vcpu_thread, v);

	if (ret) {
		pr_err("pthread_create for vCPU %u: %s", v->index, strerror(ret));
		return -ret;
	}
	snprintf(name, sizeof(name), v->vm->fc_thread_names ? "fc_vcpu %u" : "mvm-vcpu%u",
		 v->index);
	pthread_setname_np(v->thread, name);
	v->thread_started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->thread_started)
		return;
	/* immediate_exit covers a kick that lands before the thread enters KVM_RUN; the signal
	 * one that lands while it is inside. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (!v->thread_started)
		return;
	pthread_join(v->thread, NULL);
	v->thread_started = false;
}
