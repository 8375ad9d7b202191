/* snapfile.h: the state file of a VM snapshot: a header, then typed sections (the state of one
 * vCPU, one device, the VM), with a CRC over everything after the header so that a corrupted,
 * truncated or foreign file is refused before anything is built from it. Pure: buffers in and
 * out, no I/O, so every rule is unit-tested and fuzzed.
 *
 * Layout, little-endian: struct snap_header, then sections, each a struct snap_section and
 * (len) bytes of data padded to 8 bytes. The CRC (CRC-32, the IEEE polynomial) covers the
 * bytes after the header. A restore takes a section only with exactly the length its reader
 * expects, so a layout change without a format bump is refused too. */
#ifndef MVM_CORE_SNAPFILE_H
#define MVM_CORE_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC	 "MVMSNAP\0"
#define SNAP_FORMAT	 2
#define SNAP_VERSION_LEN 32
/* A state file is registers and device state: far below this. */
#define SNAP_MAX_LEN	 (64u << 20)

struct snap_header {
	char magic[8];
	uint32_t format;		/* SNAP_FORMAT */
	uint32_t crc;			/* over the sections */
	uint64_t len;			/* of the sections, bytes */
	uint32_t nsections;
	uint32_t reserved;		/* 0 */
	char mvm_version[SNAP_VERSION_LEN]; /* MVM_VERSION of the writer, NUL-padded */
};

struct snap_section {
	uint32_t type;			/* enum snap_type */
	uint32_t index;			/* which vCPU or device of that type */
	uint64_t len;			/* data bytes (padding excluded) */
};

/* What a section holds. A new kind of state is one more entry. */
enum snap_type {
	SNAP_MACHINE = 1,	/* the machine: accelerator, RAM size, vCPUs, devices */
	SNAP_KVM_CPUID,		/* the CPUID table every vCPU was given */
	SNAP_KVM_REGS,		/* per vCPU: struct kvm_regs */
	SNAP_KVM_SREGS,		/* struct kvm_sregs */
	SNAP_KVM_XSAVE,		/* struct kvm_xsave */
	SNAP_KVM_XCRS,		/* struct kvm_xcrs */
	SNAP_KVM_MSRS,		/* (index, value) pairs */
	SNAP_KVM_LAPIC,		/* struct kvm_lapic_state */
	SNAP_KVM_EVENTS,	/* struct kvm_vcpu_events */
	SNAP_KVM_DEBUGREGS,	/* struct kvm_debugregs */
	SNAP_KVM_MP_STATE,	/* struct kvm_mp_state */
	SNAP_KVM_TRAP,		/* the SYSCALL takeover's view of the guest's LSTAR/CSTAR */
	SNAP_KVM_IRQCHIP,	/* per chip (PIC master, PIC slave, IOAPIC): struct kvm_irqchip */
	SNAP_KVM_PIT,		/* struct kvm_pit_state2 */
	SNAP_KVM_CLOCK,		/* struct kvm_clock_data */
	SNAP_DEV_UART,		/* the 8250 */
	SNAP_DEV_I8042,		/* the keyboard controller */
	SNAP_DEV_CMOS,		/* the RTC's index register */
	SNAP_VIRTIO_MMIO,	/* per virtio device: struct virtio_mmio_state */
	SNAP_CFG_DISK,		/* per disk: what it was opened as (cli/snapshot.c) */
	SNAP_CFG_NET,		/* per NIC: its TAP and MAC */
	SNAP_CFG_VSOCK,		/* the vsock device: guest CID and host socket */
	SNAP_DBT_MODEL,		/* --accel dbt: the CPU model (CPUID, core features) */
	SNAP_DBT_ENGINE,	/* INIT/SIPI requests not yet taken */
	SNAP_DBT_CPU,		/* per vCPU: architectural state, guest TSC */
	SNAP_INTC_PIC,		/* per 8259A (master, slave) */
	SNAP_INTC_IOAPIC,	/* redirection table, line levels */
	SNAP_INTC_LAPIC,	/* per vCPU: its local APIC, timer relative to the snapshot */
	SNAP_INTC_PIT,		/* the 8254 and port 0x61, times relative to the snapshot */
};

/* Collects sections in memory. Out of memory is remembered and reported by snap_finish(). */
struct snap_writer {
	uint8_t *buf;		/* sections */
	size_t len, cap;
	uint32_t nsections;
	int err;
};

void snap_writer_init(struct snap_writer *w);
void snap_put(struct snap_writer *w, enum snap_type type, uint32_t index, const void *data,
	      size_t len);
/* The header for what was put (CRC, length, count, this mvm's version). Returns 0 or the
 * first error (-ENOMEM, -E2BIG over SNAP_MAX_LEN). */
int snap_finish(struct snap_writer *w, struct snap_header *h);
void snap_writer_fini(struct snap_writer *w);

/* A checked state file in memory (borrowed). */
struct snap_reader {
	const uint8_t *sections;
	uint64_t len;
	uint32_t nsections;
};

/* Checks (buf, len) as a whole state file: magic, format, this mvm's version, lengths, CRC,
 * every section inside the file. Returns 0, or -EINVAL with the reason in (err). */
int snap_reader_open(struct snap_reader *r, const void *buf, size_t len, char *err,
		     size_t errlen);
/* The data of section (type, index) if it exists with exactly (len) bytes, else NULL. */
const void *snap_get(const struct snap_reader *r, enum snap_type type, uint32_t index,
		     size_t len);
/* The same for a section of any length: its data and (*len), or NULL. */
const void *snap_get_any(const struct snap_reader *r, enum snap_type type, uint32_t index,
			 size_t *len);

uint32_t snap_crc32(const void *buf, size_t len);

#endif
