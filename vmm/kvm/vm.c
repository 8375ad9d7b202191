/* vm.c: the KVM VM: capability checks, memory slots, in-kernel irqchip and PIT, vCPUs. */
#define pr_fmt(fmt) "kvm: " fmt
#include "kvm/state.h"
#include "kvm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/layout.h"
#include "core/thread_role.h"
#include "kvm/cpuid.h"
#include "kvm/emulate.h"
#include "kvm/syscall_trap.h"
#include "kvm/vcpu.h"
#include "util/log.h"
#include "util/util.h"

/* Addresses VMX needs for its real-mode TSS and identity map; just below the BIOS area at the
 * top of the 4 GiB hole, where nothing else of ours lives. */
#define VMX_IDENTITY_MAP_ADDR 0xfeffc000ULL
#define VMX_TSS_ADDR	      0xfeffd000ULL

static const struct {
	int cap;
	const char *name;
	const char *why;
} required_caps[] = {
	{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel PIC, IOAPIC and LAPIC"},
	{KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT"},
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM"},
	{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "CPUID policy"},
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs without races"},
	{KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "interrupt lines"},
};

const char *kvm_backend_name(enum kvm_backend b)
{
	switch (b) {
	case KVM_BACKEND_VMX: return "VMX";
	case KVM_BACKEND_SVM: return "SVM";
	case KVM_BACKEND_PVM: return "PVM";
	default: return "unknown";
	}
}

enum kvm_backend kvm_detect_backend(void)
{
	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		return KVM_BACKEND_PVM;
	if (access("/sys/module/kvm_intel", F_OK) == 0)
		return KVM_BACKEND_VMX;
	if (access("/sys/module/kvm_amd", F_OK) == 0)
		return KVM_BACKEND_SVM;
	return KVM_BACKEND_UNKNOWN;
}

static void kvm_set_irq_level(struct irq_chip *chip, unsigned int gsi, int level)
{
	struct vm *vm = container_of(chip, struct vm, irqchip);
	struct kvm_irq_level irq = {.irq = gsi, .level = level};

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		pr_warn_once("KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

static void stop_kick(void *ctx)
{
	vm_kick_all(ctx);
}

static int open_kvm(struct vm *vm)
{
	int missing = 0, ret;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		ret = -errno;
		pr_err("cannot open /dev/kvm: %s%s", strerror(errno),
		       errno == ENOENT ? " (is the kvm module loaded? is this a VM without nested "
					 "virtualization?)"
		       : errno == EACCES ? " (add yourself to the kvm group or run as root)"
					 : "");
		return ret;
	}
	ret = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_VERSION) {
		pr_err("/dev/kvm speaks API version %d, mvm needs %d", ret, KVM_API_VERSION);
		goto exit_close;
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(required_caps); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			pr_err("KVM lacks %s (needed for %s)", required_caps[i].name,
			       required_caps[i].why);
			missing++;
		}
	}
	if (missing)
		goto exit_close;
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		pr_err("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		goto exit_close;
	}
	vm->tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	vm->backend = kvm_detect_backend();
	return 0;
exit_close:
	close(vm->kvm_fd);
	return -ENOTSUP;
}

static int set_memory(struct vm *vm)
{
	int ret;

	guest_mem_init(&vm->mem);
	/* One slot for RAM below the hole (the reserved EBDA/legacy area is RAM-backed, as on a
	 * PC) and one for RAM above 4 GiB. */
	ret = guest_mem_alloc(&vm->mem, 0, vm->map.low_ram_end);
	if (!ret && vm->map.ram_size > vm->map.low_ram_end)
		ret = guest_mem_alloc(&vm->mem, LAYOUT_HIGH_RAM,
				      vm->map.ram_size - vm->map.low_ram_end);
	if (ret) {
		pr_err("cannot map %llu MiB of guest RAM: %s",
		       (unsigned long long)(vm->map.ram_size >> 20), strerror(-ret));
		goto exit_mem;
	}
	for (unsigned int i = 0; i < vm->mem.n; i++) {
		struct kvm_userspace_memory_region region = {
			.slot = i,
			.guest_phys_addr = vm->mem.r[i].gpa,
			.memory_size = vm->mem.r[i].size,
			.userspace_addr = (uintptr_t)vm->mem.r[i].hva,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			ret = -errno;
			pr_err("KVM_SET_USER_MEMORY_REGION (slot %u): %s", i, strerror(errno));
			goto exit_mem;
		}
	}
	return 0;
exit_mem:
	guest_mem_fini(&vm->mem);
	return ret;
}

static int create_irqchip(struct vm *vm)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};

	if (vm->backend == KVM_BACKEND_VMX) {
		/* Only VMX needs these (for real mode without unrestricted guest). */
		if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR,
			  &(uint64_t){VMX_IDENTITY_MAP_ADDR}) < 0 ||
		    ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, VMX_TSS_ADDR) < 0) {
			pr_err("KVM_SET_TSS_ADDR: %s", strerror(errno));
			return -errno;
		}
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		pr_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		pr_err("KVM_CREATE_PIT2: %s", strerror(errno));
		return -errno;
	}
	vm->irqchip.set_level = kvm_set_irq_level;
	return 0;
}

static void enable_optional_caps(struct vm *vm)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_EXIT_ON_EMULATION_FAILURE, .args = {1}};

	/* With it, emulation failures carry the instruction bytes (KVM-HOST.md). */
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_EXIT_ON_EMULATION_FAILURE) > 0 &&
	    ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		pr_warn("KVM_ENABLE_CAP(EXIT_ON_EMULATION_FAILURE): %s", strerror(errno));
}

int vm_create(struct vm *vm, uint64_t ram_size, unsigned int ncpus)
{
	unsigned int i;
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = -1;
	if (ncpus < 1 || ncpus > VM_MAX_CPUS) {
		pr_err("%u vCPUs requested; mvm supports 1 to %u", ncpus, VM_MAX_CPUS);
		return -EINVAL;
	}
	ret = memmap_build(ram_size, &vm->map);
	if (ret) {
		pr_err("guest RAM of %llu bytes is outside what mvm supports", 
		       (unsigned long long)ram_size);
		return ret;
	}
	vm->ncpus = ncpus;
	bus_init(&vm->pio, "port I/O");
	bus_init(&vm->mmio, "MMIO");
	vm->stop.kick = stop_kick;
	vm->stop.kick_ctx = vm;

	ret = open_kvm(vm);
	if (ret)
		return ret;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		ret = -errno;
		pr_err("KVM_CREATE_VM: %s", strerror(errno));
		goto exit_kvm;
	}
	ret = set_memory(vm);
	if (ret)
		goto exit_vm;
	ret = create_irqchip(vm);
	if (ret)
		goto exit_mem;
	enable_optional_caps(vm);
	enum syscall_trap_mode trap = syscall_trap_mode_from_env();
	if (trap == SYSCALL_TRAP_ON || (trap == SYSCALL_TRAP_AUTO && vm->backend == KVM_BACKEND_PVM)) {
		ret = syscall_trap_init(vm);
		if (ret)
			goto exit_mem;
	}
	ret = cpuid_init(vm);
	if (ret)
		goto exit_mem;
	vm->vcpus = calloc(ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		ret = -ENOMEM;
		goto exit_cpuid;
	}
	for (i = 0; i < ncpus; i++) {
		ret = vcpu_init(&vm->vcpus[i], vm, i);
		if (ret)
			goto exit_vcpus;
	}
	ret = vcpu_signals_init();
	if (!ret)
		ret = emulate_features_init(vm, &vm->emu_features);
	if (!ret)
		ret = vm_state_init(vm);
	/* Last: nothing below may fail once the filter thread runs. */
	if (!ret)
		ret = syscall_trap_start(vm);
	if (ret)
		goto exit_vcpus;
	return 0;
exit_vcpus:
	while (i--)
		vcpu_fini(&vm->vcpus[i]);
	free(vm->vcpus);
exit_cpuid:
	cpuid_fini(vm);
exit_mem:
	guest_mem_fini(&vm->mem);
exit_vm:
	close(vm->vm_fd);
exit_kvm:
	close(vm->kvm_fd);
	return ret;
}

void vm_destroy(struct vm *vm)
{
	syscall_trap_fini(vm);
	free(vm->snapshot_msrs);
	for (unsigned int i = 0; i < vm->ncpus; i++)
		vcpu_fini(&vm->vcpus[i]);
	free(vm->vcpus);
	cpuid_fini(vm);
	/* The VM fd first, so KVM drops its references to guest RAM before we unmap it. */
	close(vm->vm_fd);
	guest_mem_fini(&vm->mem);
	close(vm->kvm_fd);
}

int vm_set_boot_cpu(struct vm *vm, const struct boot_cpu *cpu)
{
	return vcpu_set_boot_state(&vm->vcpus[0], cpu);
}

void vm_kick_all(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

int vm_run(struct vm *vm)
{
	int ret = 0;

	for (unsigned int i = 0; i < vm->ncpus; i++) {
		ret = vcpu_start(&vm->vcpus[i]);
		if (ret) {
			stop_request(&vm->stop, STOP_VMM_ERROR, 0);
			break;
		}
	}
	/* This thread only waits from here on. Taking THREAD_CONTROL also lets the vCPU threads
	 * run (the sandbox holds them until every thread has its filter), so it happens even if
	 * a thread failed to start. */
	if (thread_role_enter(THREAD_CONTROL))
		stop_request(&vm->stop, STOP_VMM_ERROR, 0);
	/* vCPU threads return once a stop is requested and they are kicked. The kick in
	 * stop_request() may have run before a thread was marked started, so kick again now
	 * that every thread exists. */
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		if (stop_reason(&vm->stop) != STOP_NONE)
			vm_kick_all(vm);
		vcpu_join(&vm->vcpus[i]);
	}
	return ret;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned int len, uint64_t datamatch, int fd,
		 bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = datamatch,
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		int ret = -errno;

		pr_warn("KVM_IOEVENTFD (0x%llx, %u bytes, value %llu): %s",
			(unsigned long long)addr, len, (unsigned long long)datamatch,
			strerror(errno));
		return ret;
	}
	return 0;
}

int vm_irqfd(struct vm *vm, unsigned int gsi, int fd, bool assign)
{
	struct kvm_irqfd irqfd = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		int ret = -errno;

		pr_err("KVM_IRQFD (GSI %u): %s", gsi, strerror(errno));
		return ret;
	}
	return 0;
}
