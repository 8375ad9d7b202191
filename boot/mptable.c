/* mptable.c: the Intel MultiProcessor Specification 1.4 tables (floating pointer and
 * configuration table) that describe CPUs, the IOAPIC and ISA interrupt routing. */
#define pr_fmt(fmt) "mptable: " fmt

#include "boot/mptable.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "boot_impl.h"
#include "core/layout.h"
#include "util/log.h"

/* MP spec 1.4, 4.1: MP Floating Pointer Structure. */
struct mpf_intel {
	char signature[4];     /* "_MP_" */
	uint32_t physptr;      /* configuration table */
	uint8_t length;	       /* in 16-byte units: 1 */
	uint8_t specification; /* 4: version 1.4 */
	uint8_t checksum;      /* all 16 bytes sum to 0 */
	uint8_t feature1;      /* 0: a configuration table is present */
	uint8_t feature2;      /* bit 7 IMCRP clear: virtual wire mode */
	uint8_t feature3[3];
} __attribute__((packed));
_Static_assert(sizeof(struct mpf_intel) == 16, "MP floating pointer");

/* 4.2: MP Configuration Table Header. */
struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;   /* base table: header and entries */
	uint8_t spec;	   /* 4 */
	uint8_t checksum;  /* the base table sums to 0 */
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount; /* number of entries */
	uint32_t lapic;	   /* local APIC address */
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct mpc_table) == 44, "MP configuration table header");

/* 4.3.1: Processor Entries. */
struct mpc_cpu {
	uint8_t type; /* 0 */
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;  /* CPUID 1 EAX: stepping, model, family */
	uint32_t featureflag; /* CPUID 1 EDX */
	uint32_t reserved[2];
} __attribute__((packed));
_Static_assert(sizeof(struct mpc_cpu) == 20, "MP processor entry");

/* 4.3.2: Bus Entries. */
struct mpc_bus {
	uint8_t type; /* 1 */
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));
_Static_assert(sizeof(struct mpc_bus) == 8, "MP bus entry");

/* 4.3.3: I/O APIC Entries. */
struct mpc_ioapic {
	uint8_t type; /* 2 */
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));
_Static_assert(sizeof(struct mpc_ioapic) == 8, "MP I/O APIC entry");

/* 4.3.4 and 4.3.5: I/O and Local Interrupt Assignment Entries share one layout. */
struct mpc_intsrc {
	uint8_t type; /* 3 I/O, 4 local */
	uint8_t irqtype;
	uint16_t irqflag; /* polarity bits 0-1, trigger bits 2-3; 0 conforms to the bus */
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq; /* IOAPIC INTIN# or LINTIN# */
} __attribute__((packed));
_Static_assert(sizeof(struct mpc_intsrc) == 8, "MP interrupt assignment entry");

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum { MP_INT, MP_NMI, MP_SMI, MP_EXTINT };

#define MPC_SPEC	  4
#define CPU_ENABLED	  1
#define CPU_BOOTPROCESSOR 2
#define MPC_APIC_USABLE	  1
#define MP_APIC_ALL	  0xff
#define LAPIC_VERSION	  0x14	/* integrated xAPIC, as KVM's */
#define IOAPIC_VERSION	  0x11	/* KVM's in-kernel IOAPIC */
#define CPU_SIGNATURE	  0x600 /* family 6 */
#define CPU_FEATURE_FPU	  (1u << 0)
#define CPU_FEATURE_APIC  (1u << 9)
#define ISA_BUS_ID	  0
#define ISA_IRQS	  16
#define MP_LOCAL_ENTRIES  2 /* ExtINT on LINT0, NMI on LINT1 */

#define MPTABLE_MAX_SIZE(n)                                                                        \
	(sizeof(struct mpf_intel) + sizeof(struct mpc_table) + (n) * sizeof(struct mpc_cpu) +      \
	 sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) +                                      \
	 (ISA_IRQS + MP_LOCAL_ENTRIES) * sizeof(struct mpc_intsrc))

_Static_assert(LAYOUT_EBDA + MPTABLE_MAX_SIZE(MPTABLE_MAX_CPUS) <= LAYOUT_LEGACY_HOLE_END,
	       "MP table for the most CPUs leaves the reserved area below 1 MiB");
_Static_assert(LAYOUT_IOAPIC_PINS >= ISA_IRQS, "ISA IRQs need IOAPIC pins");

size_t mptable_size(unsigned int ncpus)
{
	if (ncpus < 1 || ncpus > MPTABLE_MAX_CPUS)
		return 0;
	return MPTABLE_MAX_SIZE(ncpus);
}

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

/* Appends one entry of (len) bytes at (*off). */
static void put(uint8_t *buf, size_t *off, const void *entry, size_t len)
{
	memcpy(buf + *off, entry, len);
	*off += len;
}

static void put_intsrc(uint8_t *buf, size_t *off, uint8_t type, uint8_t irqtype, uint8_t srcirq,
		       uint8_t dstapic, uint8_t dstirq)
{
	struct mpc_intsrc s = {
		.type = type,
		.irqtype = irqtype,
		.irqflag = 0, /* polarity and trigger conform to the bus */
		.srcbus = ISA_BUS_ID,
		.srcbusirq = srcirq,
		.dstapic = dstapic,
		.dstirq = dstirq,
	};

	put(buf, off, &s, sizeof(s));
}

int mptable_write(const struct guest_mem *mem, unsigned int ncpus)
{
	uint8_t buf[MPTABLE_MAX_SIZE(MPTABLE_MAX_CPUS)];
	size_t size = mptable_size(ncpus), off;
	struct mpf_intel mpf;
	struct mpc_table mpc;
	struct mpc_bus bus = {.type = MP_BUS, .busid = ISA_BUS_ID};
	struct mpc_ioapic ioapic = {.type = MP_IOAPIC,
				    .apicver = IOAPIC_VERSION,
				    .flags = MPC_APIC_USABLE,
				    .apicaddr = LAYOUT_IOAPIC};

	if (!size) {
		pr_err("%u CPUs: the MP table describes 1 to %u", ncpus, MPTABLE_MAX_CPUS);
		return -EINVAL;
	}
	if (!gpa_to_hva(mem, LAYOUT_EBDA, size)) {
		pr_err("[0x%llx, +0x%zx) is not in guest RAM", (unsigned long long)LAYOUT_EBDA,
		       size);
		return -EFAULT;
	}
	ioapic.apicid = (uint8_t)ncpus; /* <= MPTABLE_MAX_CPUS: after the local APIC IDs */

	/* Entries in the order 4.3 recommends: processors, buses, I/O APICs, interrupts. */
	memset(buf, 0, sizeof(buf));
	off = sizeof(mpf) + sizeof(mpc);
	for (unsigned int i = 0; i < ncpus; i++) {
		struct mpc_cpu c = {
			.type = MP_PROCESSOR,
			.apicid = (uint8_t)i,
			.apicver = LAPIC_VERSION,
			.cpuflag = CPU_ENABLED | (i == 0 ? CPU_BOOTPROCESSOR : 0),
			.cpufeature = CPU_SIGNATURE,
			.featureflag = CPU_FEATURE_FPU | CPU_FEATURE_APIC,
		};

		put(buf, &off, &c, sizeof(c));
	}
	memcpy(bus.bustype, "ISA   ", sizeof(bus.bustype)); /* 6 characters, no NUL */
	put(buf, &off, &bus, sizeof(bus));
	put(buf, &off, &ioapic, sizeof(ioapic));
	/* ISA IRQ n on IOAPIC pin n. */
	for (unsigned int irq = 0; irq < ISA_IRQS; irq++)
		put_intsrc(buf, &off, MP_INTSRC, MP_INT, (uint8_t)irq, ioapic.apicid, (uint8_t)irq);
	/* Virtual wire: the 8259 through LINT0 and NMI on LINT1 of every local APIC, as Linux's
	 * construct_default_ioirq_mptable() sets them up. */
	put_intsrc(buf, &off, MP_LINTSRC, MP_EXTINT, 0, MP_APIC_ALL, 0);
	put_intsrc(buf, &off, MP_LINTSRC, MP_NMI, 0, MP_APIC_ALL, 1);

	mpc = (struct mpc_table){
		.signature = {'P', 'C', 'M', 'P'},
		.length = (uint16_t)(off - sizeof(mpf)),
		.spec = MPC_SPEC,
		.oem = {'M', 'V', 'M', ' ', ' ', ' ', ' ', ' '},
		.productid = {'M', 'V', 'M', 'V', 'M', 'M', ' ', ' ', ' ', ' ', ' ', ' '},
		.oemcount = (uint16_t)(ncpus + 1 + 1 + ISA_IRQS + MP_LOCAL_ENTRIES),
		.lapic = LAYOUT_LAPIC,
	};
	memcpy(buf + sizeof(mpf), &mpc, sizeof(mpc));
	buf[sizeof(mpf) + offsetof(struct mpc_table, checksum)] =
		checksum(buf + sizeof(mpf), mpc.length);

	mpf = (struct mpf_intel){
		.signature = {'_', 'M', 'P', '_'},
		.physptr = LAYOUT_EBDA + sizeof(mpf),
		.length = 1,
		.specification = MPC_SPEC,
	};
	mpf.checksum = checksum((const uint8_t *)&mpf, sizeof(mpf));
	memcpy(buf, &mpf, sizeof(mpf));

	assert(off == size);
	return guest_mem_write(mem, LAYOUT_EBDA, buf, size);
}
