/* machine_dbt.c: the pieces of a machine that --accel dbt runs: RAM, buses, the user-space
 * interrupt controllers wired to the engine, and virtio interrupts relayed to them. */
#define pr_fmt(fmt) "mvm: " fmt
#include "machine_dbt.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/layout.h"
#include "kvm/syscall_trap.h"
#include "util/log.h"
#include "util/util.h"

/* Device writes into guest RAM reach the engine, which drops code translated from there. */
static void dma_written(void *ctx, gpa_t gpa, uint64_t len)
{
	dbt_dma_written(ctx, gpa, len);
}

/* --accel hybrid: the engine's native side is kvm/user_mode.c. */
static int native_run(void *ctx, struct emu_vcpu *v, bool flush, uint8_t *vector)
{
	switch (kvm_user_run(ctx, v, flush, vector)) {
	case KVM_USER_KERNEL:
		return DBT_NATIVE_KERNEL;
	case KVM_USER_TRAP:
		return DBT_NATIVE_TRAP;
	case KVM_USER_INTERRUPTED:
		return DBT_NATIVE_INTERRUPTED;
	case KVM_USER_UNSUPPORTED:
		return DBT_NATIVE_UNSUPPORTED;
	default:
		return DBT_NATIVE_ERROR;
	}
}

static void native_kick(void *ctx)
{
	kvm_user_kick(ctx);
}

static int native_fpu_fetch(void *ctx, struct emu_vcpu *v)
{
	return kvm_user_fetch_fpu(ctx, v) ? -1 : 0;
}

static int native_zap(void *ctx, uint64_t gpa, uint64_t len)
{
	return kvm_user_zap(ctx, gpa, len) ? -1 : 0;
}

static uint64_t native_tsc(void *ctx)
{
	return kvm_user_tsc(ctx);
}

static void model_cpuid(void *ctx, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	dbt_model_cpuid(ctx, leaf, sub, out);
}

static int attach_kvm_user(struct dbt_machine *dm)
{
	struct kvm_user_config kc = {.mem = &dm->mem, .pio = &dm->pio, .mmio = &dm->mmio};
	struct dbt_native_ops ops = {.run = native_run, .kick = native_kick, .tsc = native_tsc,
				     .fpu_fetch = native_fpu_fetch, .zap = native_zap,
				     .window_pml4 = SYSCALL_TRAP_PML4_INDEX};

	dm->kvm = kvm_user_create(&kc);
	if (!dm->kvm)
		return -ENODEV;
	ops.ctx = dm->kvm;
	ops.tsc_khz = kvm_user_tsc_khz(dm->kvm);
	if (dbt_set_native_user(dm->dbt, &ops))
		return -EINVAL;
	return kvm_user_set_cpuid(dm->kvm, model_cpuid, dm->dbt);
}

int dbt_machine_init(struct dbt_machine *dm, uint64_t ram_size, unsigned int ncpus, bool hybrid)
{
	struct dbt_config cfg = {.mem = &dm->mem, .pio = &dm->pio, .mmio = &dm->mmio,
				 .stop = &dm->stop, .ncpus = ncpus};
	int ret = memmap_build(ram_size, &dm->map);

	if (ret) {
		pr_err("guest RAM of %llu bytes is outside what mvm supports",
		       (unsigned long long)ram_size);
		return ret;
	}
	guest_mem_init(&dm->mem);
	bus_init(&dm->pio, "port I/O");
	bus_init(&dm->mmio, "MMIO");
	/* --accel hybrid: shared memory, so that KVM's translations of single pages can be
	 * dropped (kvm_user_zap()). */
	int (*alloc)(struct guest_mem *, gpa_t, uint64_t) =
		hybrid ? guest_mem_alloc_shared : guest_mem_alloc;

	ret = alloc(&dm->mem, 0, dm->map.low_ram_end);
	if (!ret && dm->map.ram_size > dm->map.low_ram_end)
		ret = alloc(&dm->mem, LAYOUT_HIGH_RAM, dm->map.ram_size - dm->map.low_ram_end);
	if (ret) {
		pr_err("cannot map %llu MiB of guest RAM: %s",
		       (unsigned long long)(dm->map.ram_size >> 20), strerror(-ret));
		guest_mem_fini(&dm->mem);
		return ret;
	}
	dm->dbt = dbt_create(&cfg);
	if (!dm->dbt) {
		guest_mem_fini(&dm->mem);
		return -ENOMEM;
	}
	dm->mem.dma_written = dma_written;
	dm->mem.dma_ctx = dm->dbt;
	if (hybrid && (ret = attach_kvm_user(dm))) {
		kvm_user_destroy(dm->kvm);
		dm->kvm = NULL;
		dbt_destroy(dm->dbt);
		guest_mem_fini(&dm->mem);
		return ret;
	}
	return 0;
}

static void intc_kick(void *ctx, unsigned int cpu)
{
	dbt_kick(ctx, cpu);
}

static void intc_init_cpu(void *ctx, unsigned int cpu)
{
	dbt_init_cpu(ctx, cpu);
}

static void intc_sipi(void *ctx, unsigned int cpu, uint8_t vector)
{
	dbt_sipi(ctx, cpu, vector);
}

static const struct intc_ops intc_ops = {
	.kick = intc_kick,
	.init = intc_init_cpu,
	.sipi = intc_sipi,
};

static bool irq_pending(void *ctx, unsigned int cpu)
{
	return intc_pending(ctx, cpu);
}

static int irq_ack(void *ctx, unsigned int cpu)
{
	return intc_ack(ctx, cpu);
}

static uint64_t irq_lapic_read(void *ctx, unsigned int cpu, uint64_t off, unsigned int size)
{
	return intc_lapic_read(ctx, cpu, off, size);
}

static void irq_lapic_write(void *ctx, unsigned int cpu, uint64_t off, uint64_t val,
			    unsigned int size)
{
	intc_lapic_write(ctx, cpu, off, val, size);
}

static int irq_set_apic_base(void *ctx, unsigned int cpu, uint64_t val)
{
	return intc_set_apic_base(ctx, cpu, val);
}

int dbt_machine_attach_intc(struct dbt_machine *dm, struct loop *loop, unsigned int ncpus)
{
	struct dbt_irq_ops ops = {
		.pending = irq_pending,
		.ack = irq_ack,
		.lapic_read = irq_lapic_read,
		.lapic_write = irq_lapic_write,
		.set_apic_base = irq_set_apic_base,
		.ctx = &dm->intc,
	};
	int ret = intc_init(&dm->intc, ncpus, loop, &intc_ops, dm->dbt);

	if (ret)
		return ret;
	dm->intc_ready = true;
	ret = intc_attach(&dm->intc, &dm->pio, &dm->mmio);
	if (ret) {
		pr_err("interrupt controller ranges overlap: %s", strerror(-ret));
		return ret;
	}
	dbt_set_irq(dm->dbt, &ops);
	return 0;
}

static void relay_arm(struct dbt_irq_relay *r)
{
	struct io_uring_sqe *sqe = loop_sqe(r->loop, &r->op);

	if (sqe)
		io_uring_prep_read(sqe, r->fd, &r->buf, sizeof(r->buf), 0);
}

static void relay_done(struct loop_op *op, int res, unsigned int flags)
{
	struct dbt_irq_relay *r = container_of(op, struct dbt_irq_relay, op);

	if (res == (int)sizeof(r->buf)) {
		/* One edge per batch of interrupts, as KVM_IRQFD gives. */
		irq_line_set(&r->line, 1);
		irq_line_set(&r->line, 0);
	} else if (res < 0 && res != -EINTR && res != -EAGAIN) {
		pr_warn_once("interrupt eventfd read: %s", strerror(-res));
		return;
	}
	relay_arm(r);
}

int dbt_machine_irqfd(struct dbt_machine *dm, struct loop *loop, int fd, unsigned int gsi)
{
	struct dbt_irq_relay *r;

	if (dm->nrelay == DBT_MACHINE_RELAYS)
		return -ENOSPC;
	r = &dm->relay[dm->nrelay++];
	r->op.done = relay_done;
	r->loop = loop;
	r->fd = fd;
	r->line = (struct irq_line){.chip = intc_irq_chip(&dm->intc), .gsi = gsi};
	relay_arm(r);
	return 0;
}

void dbt_machine_set_entry(struct dbt_machine *dm, const struct boot_cpu *b)
{
	struct dbt_entry e = {
		.long_mode = b->long_mode, .rip = b->rip, .rsp = b->rsp, .rsi = b->rsi,
		.rbx = b->rbx, .rflags = b->rflags, .cr0 = b->cr0, .cr3 = b->cr3, .cr4 = b->cr4,
		.efer = b->efer, .gdt_base = b->gdt_base, .gdt_limit = b->gdt_limit,
		.cs_sel = b->cs_sel, .ds_sel = b->ds_sel, .tr_sel = b->tr_sel,
	};

	dbt_set_entry(dm->dbt, &e);
}

void dbt_machine_fini(struct dbt_machine *dm)
{
	if (dm->intc_ready)
		intc_fini(&dm->intc);
	dbt_destroy(dm->dbt);
	kvm_user_destroy(dm->kvm);
	guest_mem_fini(&dm->mem);
}
