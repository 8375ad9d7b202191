/* test_kvm_vm.c: the KVM layer alone, with the guest code beside the checks: port I/O and MMIO
 * exits reach bus devices with their exact width, unclaimed MMIO reads all ones, a triple
 * fault stops the machine as a crash, a stop request from another thread ends vm_run()
 * while vCPUs sit in HLT or wait for SIPI, and the SYSCALL trap's MSR filter, set by its own
 * thread, takes over an LSTAR the guest wrote straight into KVM before it was in place. */
#include "kvm/vm.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/layout.h"
#include "kvm/msr.h"
#include "kvm/syscall_trap.h"
#include "kvm/vcpu.h"
#include "test.h"

#define CODE_GPA 0x100000ULL

struct probe {
	uint64_t last_val, last_off;
	unsigned int last_size, reads, writes;
	uint64_t read_value;
};

static uint64_t probe_read(void *dev, uint64_t off, unsigned int size)
{
	struct probe *p = dev;

	p->reads++;
	p->last_off = off;
	p->last_size = size;
	return p->read_value;
}

static void probe_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	struct probe *p = dev;

	p->writes++;
	p->last_off = off;
	p->last_val = val;
	p->last_size = size;
}

static const struct bus_ops probe_ops = {.read = probe_read, .write = probe_write};

static void exit_port_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	stop_request(dev, STOP_GUEST_EXIT, val & 0xff);
}

static const struct bus_ops exit_ops = {.read = probe_read, .write = exit_port_write};

/* Flat 32-bit protected mode at CODE_GPA, no paging; KVM needs no GDT in memory for that. */
static struct boot_cpu cpu32(void)
{
	return (struct boot_cpu){
		.kind = BOOT_KIND_PVH, .long_mode = 0, .rip = CODE_GPA, .rsp = 0x8000,
		.rflags = 2, .cr0 = 1 /* PE */, .cs_sel = 0x8, .ds_sel = 0x10, .tr_sel = 0x18,
		.gdt_base = LAYOUT_GDT, .gdt_limit = 0x1f,
	};
}

static int setup(struct vm *vm, unsigned int ncpus, const uint8_t *code, size_t len)
{
	struct boot_cpu c = cpu32();

	if (vm_create(vm, 64 << 20, ncpus))
		return -1;
	guest_mem_write(&vm->mem, CODE_GPA, code, len);
	return vm_set_boot_cpu(vm, &c);
}

static void test_io(void)
{
	static const uint8_t code[] = {
		0x66, 0xba, 0xf8, 0x03,		/* mov dx, 0x3f8 */
		0xb0, 0x4b,			/* mov al, 'K' */
		0xee,				/* out dx, al */
		0xa1, 0x00, 0x00, 0x00, 0xd0,	/* mov eax, [0xd0000000] */
		0x89, 0xc3,			/* mov ebx, eax */
		0xa1, 0x00, 0x00, 0x00, 0xe0,	/* mov eax, [0xe0000000]: unclaimed */
		0x01, 0xd8,			/* add eax, ebx */
		0x66, 0xba, 0xf4, 0x00,		/* mov dx, 0xf4 */
		0xef,				/* out dx, eax */
		0xf4, 0xeb, 0xfd,		/* hlt; jmp hlt */
	};
	struct probe port = {0}, mmio = {.read_value = 0x12345679};
	struct vm vm;

	if (setup(&vm, 1, code, sizeof(code))) {
		CHECK(0);
		return;
	}
	CHECK_EQ(bus_register(&vm.pio, 0x3f8, 8, &probe_ops, &port, "probe"), 0);
	CHECK_EQ(bus_register(&vm.mmio, 0xd0000000, 0x1000, &probe_ops, &mmio, "probe"), 0);
	CHECK_EQ(bus_register(&vm.pio, 0xf4, 4, &exit_ops, &vm.stop, "exit"), 0);
	CHECK_EQ(vm_run(&vm), 0);
	CHECK_EQ(stop_reason(&vm.stop), STOP_GUEST_EXIT);
	/* 0x12345679 + 0xffffffff = 0x12345678: the unclaimed read returned all ones. */
	CHECK_EQ(vm.stop.status, 0x78);
	CHECK_EQ(port.writes, 1);
	CHECK_EQ(port.last_val, 'K');
	CHECK_EQ(port.last_size, 1);
	CHECK_EQ(mmio.reads, 1);
	CHECK_EQ(mmio.last_size, 4);
	CHECK_EQ(mmio.last_off, 0);
	CHECK_EQ(vm.mmio.unclaimed_reads, 1);
	vm_destroy(&vm);
}

static void test_triple_fault(void)
{
	static const uint8_t code[] = {0x0f, 0x0b}; /* ud2 with an empty IDT */
	struct vm vm;

	if (setup(&vm, 1, code, sizeof(code))) {
		CHECK(0);
		return;
	}
	CHECK_EQ(vm_run(&vm), 0);
	CHECK_EQ(stop_reason(&vm.stop), STOP_CRASH);
	vm_destroy(&vm);
}

static void *stop_later(void *arg)
{
	usleep(100 * 1000);
	stop_request(arg, STOP_USER, 0);
	return NULL;
}

static void test_stop_halted(void)
{
	static const uint8_t code[] = {0xfa, 0xf4, 0xeb, 0xfd}; /* cli; hlt; jmp hlt */
	struct vm vm;
	pthread_t t;

	/* vCPU 0 halts with interrupts off forever; vCPUs 1-3 wait for a SIPI that never comes.
	 * Only the kick gets them out. */
	if (setup(&vm, 4, code, sizeof(code))) {
		CHECK(0);
		return;
	}
	pthread_create(&t, NULL, stop_later, &vm.stop);
	CHECK_EQ(vm_run(&vm), 0);
	pthread_join(t, NULL);
	CHECK_EQ(stop_reason(&vm.stop), STOP_USER);
	vm_destroy(&vm);
}

#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083

/* The filter comes on its own thread after the vCPUs exist: a guest write to LSTAR that
 * reached KVM before it (here: put there with KVM_SET_MSRS) is taken over by the reconcile as
 * if it had exited; an LSTAR already holding the trap (a restored, armed vCPU) is kept. */
static void test_trap_reconcile(void)
{
	static const uint32_t idx[2] = {MSR_LSTAR, MSR_CSTAR};
	struct vm *vm = calloc(1, sizeof(*vm));
	uint64_t v[2] = {0xffffffff81a00040ull, 0};
	struct vcpu *c;

	setenv("MVM_SYSCALL_TRAP", "on", 1);
	CHECK_EQ(vm_create(vm, 64 << 20, 1), 0);
	unsetenv("MVM_SYSCALL_TRAP");
	c = &vm->vcpus[0];
	CHECK(vm->syscall_trap);
	CHECK_EQ(msr_set(c->fd, idx, v, 2), 0);
	for (int i = 0; i < 2000 && !atomic_load(&vm->trap_filter_ready); i++)
		usleep(1000);
	CHECK(atomic_load(&vm->trap_filter_ready));
	syscall_trap_reconcile(c);
	CHECK(c->trap_reconciled);
	CHECK_EQ(c->guest_lstar, 0xffffffff81a00040ull);
	CHECK_EQ(c->guest_cstar, 0);
	CHECK_EQ(msr_get(c->fd, idx, v, 2), 0);
	CHECK_EQ(v[0], SYSCALL_TRAP_LSTAR);
	CHECK_EQ(v[1], 0); /* never written: nothing to take over */
	/* Armed already: the guest's value stays what mvm recorded. */
	c->guest_lstar = 0xffffffff81b00000ull;
	syscall_trap_reconcile(c);
	CHECK_EQ(c->guest_lstar, 0xffffffff81b00000ull);
	CHECK_EQ(msr_get(c->fd, idx, v, 1), 0);
	CHECK_EQ(v[0], SYSCALL_TRAP_LSTAR);
	vm_destroy(vm);
	free(vm);
}

int main(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return t_skip("/dev/kvm is not available");
	close(fd);
	test_io();
	test_triple_fault();
	test_stop_halted();
	test_trap_reconcile();
	return t_done();
}
