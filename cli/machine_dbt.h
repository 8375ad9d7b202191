/* machine_dbt.h: what a machine run by mvm's own engine (--accel dbt) owns in place of a KVM
 * VM: guest RAM, the buses, the stop control, the interrupt controllers and the engine. */
#ifndef MVM_CLI_MACHINE_DBT_H
#define MVM_CLI_MACHINE_DBT_H

#include "boot/boot.h"
#include "core/bus.h"
#include "core/guest_mem.h"
#include "core/irq.h"
#include "core/loop.h"
#include "core/memmap.h"
#include "core/stop.h"
#include "dbt/dbt.h"
#include "dev/intc.h"
#include "kvm/user_mode.h"

/* A virtio device's interrupt eventfd, read on the loop and turned into an edge on a GSI. */
struct dbt_irq_relay {
	struct loop_op op;
	struct loop *loop;
	int fd;
	uint64_t buf;
	struct irq_line line;
};

#define DBT_MACHINE_RELAYS 16

struct dbt_machine {
	struct memmap map;
	struct guest_mem mem;
	struct bus pio, mmio;
	struct stop_ctl stop;
	struct dbt *dbt;
	struct kvm_user *kvm;		/* --accel hybrid: guest user mode on KVM */
	struct intc intc;
	bool intc_ready;
	struct dbt_irq_relay relay[DBT_MACHINE_RELAYS];
	unsigned int nrelay;
};

/* RAM laid out by memmap_build(), the buses and the engine with (ncpus) vCPUs; with (hybrid)
 * guest user mode runs on KVM (kvm/user_mode.h). Returns 0 or -errno after logging; on failure
 * nothing is left to finish. */
int dbt_machine_init(struct dbt_machine *dm, uint64_t ram_size, unsigned int ncpus, bool hybrid);
/* The interrupt controllers on (loop) (before loop_start), attached to the buses and the
 * engine. */
int dbt_machine_attach_intc(struct dbt_machine *dm, struct loop *loop, unsigned int ncpus);
/* Pulses (gsi) whenever eventfd (fd) is written (what KVM_IRQFD does under KVM). */
int dbt_machine_irqfd(struct dbt_machine *dm, struct loop *loop, int fd, unsigned int gsi);
/* The boot loader's entry state on vCPU 0. */
void dbt_machine_set_entry(struct dbt_machine *dm, const struct boot_cpu *b);
/* After loop_join(). */
void dbt_machine_fini(struct dbt_machine *dm);

#endif
