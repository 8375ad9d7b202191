/* mptable.c: finds and parses the Intel MultiProcessor Specification 1.4 table (chapter 4):
 * the floating pointer "_MP_" and the "PCMP" configuration table with its processor, bus,
 * IOAPIC and interrupt-assignment entries. Both checksums are verified; every length is
 * bounded, since the table is data from the VMM under test. */
#include "guest.h"

struct __attribute__((packed)) mpf {
	char sig[4];	  /* "_MP_" */
	uint32_t table;	  /* physical address of the PCMP header */
	uint8_t length;	  /* in 16-byte units: 1 */
	uint8_t spec_rev; /* 1 or 4 */
	uint8_t checksum;
	uint8_t feature[5]; /* feature[0] != 0: a default configuration, no table */
};
_Static_assert(sizeof(struct mpf) == 16, "MP floating pointer size");

struct __attribute__((packed)) mpc_header {
	char sig[4];	 /* "PCMP" */
	uint16_t length; /* base table, header included */
	uint8_t spec_rev;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oem_ptr;
	uint16_t oem_size;
	uint16_t entries;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
};
_Static_assert(sizeof(struct mpc_header) == 44, "MP config header size");

struct __attribute__((packed)) mpc_cpu {
	uint8_t type, apic_id, apic_ver, flags;
	uint32_t signature, features;
	uint32_t reserved[2];
};
_Static_assert(sizeof(struct mpc_cpu) == 20, "MP processor entry size");

struct __attribute__((packed)) mpc_bus {
	uint8_t type, bus_id;
	char bus_type[6];
};

struct __attribute__((packed)) mpc_ioapic {
	uint8_t type, id, ver, flags;
	uint32_t addr;
};

struct __attribute__((packed)) mpc_int {
	uint8_t type, int_type;
	uint16_t flags;
	uint8_t src_bus, src_irq, dst_apic, dst_pin;
};

#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP     0x02
#define MAX_BUSES      256

static uint8_t sum8(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (n--)
		s += *b++;
	return s;
}

static const struct mpf *scan(uint64_t start, uint64_t len)
{
	for (uint64_t a = start; a + sizeof(struct mpf) <= start + len; a += 16) {
		const struct mpf *f = (const struct mpf *)(uintptr_t)a;

		if (memcmp(f->sig, "_MP_", 4))
			continue;
		if (f->length != 1 || sum8(f, 16)) {
			printf("MP: floating pointer at 0x%lx has a bad length or checksum\n", a);
			continue;
		}
		return f;
	}
	return NULL;
}

/* Through a volatile variable: GCC treats a constant address like 0x40e as a zero-sized
 * object and warns about the access. */
static volatile uintptr_t bda_ebda_addr = 0x40e;

static const struct mpf *find_mpf(void)
{
	/* The BDA word at 0x40e holds the EBDA segment (MP spec 4.0); mvm leaves it zero. */
	volatile uint16_t *bda_ebda = (volatile uint16_t *)(uintptr_t)bda_ebda_addr;
	uint64_t ebda = (uint64_t)*bda_ebda << 4;
	const struct mpf *f = NULL;

	if (ebda >= 0x80000 && ebda < 0xa0000)
		f = scan(ebda, 1024);
	if (!f)
		f = scan(0x9fc00, 1024);
	if (!f)
		f = scan(0xf0000, 0x10000);
	return f;
}

int mp_parse(struct mp_info *mp)
{
	static char bus_is_isa[MAX_BUSES];
	const struct mpf *f;
	const struct mpc_header *h;
	const uint8_t *p, *end;
	unsigned int n;

	memset(mp, 0, sizeof(*mp));
	memset(bus_is_isa, 0, sizeof(bus_is_isa));
	mp->bsp_index = -1;
	f = find_mpf();
	if (!f)
		return -1;
	mp->fp_addr = (uint64_t)(uintptr_t)f;
	if (f->feature[0]) {
		printf("MP: default configuration %u, no table: not supported\n", f->feature[0]);
		return -2;
	}
	if (!f->table || f->table >= 0xfee00000u) {
		printf("MP: bad table address 0x%x\n", f->table);
		return -2;
	}
	h = (const struct mpc_header *)(uintptr_t)f->table;
	mp->table_addr = f->table;
	if (memcmp(h->sig, "PCMP", 4) || h->length < sizeof(*h)) {
		printf("MP: no PCMP header at 0x%x\n", f->table);
		return -2;
	}
	if (sum8(h, h->length)) {
		printf("MP: table checksum is wrong\n");
		return -2;
	}
	memcpy(mp->oem, h->oem, 8);
	memcpy(mp->product, h->product, 12);
	mp->lapic_addr = h->lapic;
	mp->entries = h->entries;
	p = (const uint8_t *)(h + 1);
	end = (const uint8_t *)h + h->length;
	/* Walk by the table length, as Linux's smp_read_mpc() does: QEMU's qboot leaves the
	 * header's entry count at 0. The caller compares the count with entries_found. */
	for (n = 0; p < end; n++) {
		size_t size = p[0] == 0 ? sizeof(struct mpc_cpu) : 8;

		if ((size_t)(end - p) < size) {
			printf("MP: entry %u runs past the table length\n", n);
			return -2;
		}
		switch (p[0]) {
		case 0: {
			const struct mpc_cpu *c = (const void *)p;

			if (!(c->flags & MP_CPU_ENABLED))
				break;
			if (mp->ncpus >= MP_MAX_CPUS) {
				printf("MP: more than %d CPUs\n", MP_MAX_CPUS);
				return -2;
			}
			if (c->flags & MP_CPU_BSP)
				mp->bsp_index = (int)mp->ncpus;
			mp->apic_id[mp->ncpus++] = c->apic_id;
			break;
		}
		case 1: {
			const struct mpc_bus *b = (const void *)p;

			bus_is_isa[b->bus_id] = !memcmp(b->bus_type, "ISA", 3);
			break;
		}
		case 2: {
			const struct mpc_ioapic *io = (const void *)p;

			if (!(io->flags & 1))
				break;
			if (!mp->nioapics++) {
				mp->ioapic_id = io->id;
				mp->ioapic_addr = io->addr;
			}
			break;
		}
		case 3: {
			const struct mpc_int *in = (const void *)p;
			struct mp_irq *q;

			if (mp->nirqs >= MP_MAX_IRQS)
				break;
			q = &mp->irq[mp->nirqs++];
			q->type = in->int_type;
			q->flags = in->flags;
			q->src_bus = in->src_bus;
			q->src_irq = in->src_irq;
			q->dst_apic = in->dst_apic;
			q->dst_pin = in->dst_pin;
			break;
		}
		case 4:
			break;
		default:
			printf("MP: unknown entry type %u\n", p[0]);
			return -2;
		}
		p += size;
	}
	mp->entries_found = n;
	/* Bus entries normally precede interrupt entries, but the spec does not promise it. */
	for (n = 0; n < mp->nirqs; n++)
		mp->irq[n].isa = bus_is_isa[mp->irq[n].src_bus];
	return 0;
}

int mp_isa_irq_pin(const struct mp_info *mp, unsigned int irq)
{
	for (unsigned int i = 0; i < mp->nirqs; i++) {
		const struct mp_irq *q = &mp->irq[i];

		if (q->type == 0 && q->isa && q->src_irq == irq)
			return q->dst_pin;
	}
	return -1;
}
