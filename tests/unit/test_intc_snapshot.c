/* test_intc_snapshot.c: the interrupt controllers' snapshot records (dev/intc.h: intc_save(),
 * intc_restore()). Controllers programmed as a guest would (PIC init, IOAPIC routes, a level
 * line held, LAPIC registers and a one-shot timer, PIT channel 0 and the port 0x61 gate) are
 * saved, restored into fresh controllers at a later instant and saved again: the bytes are
 * the same (times are kept relative to the instant given), and the restored models behave as
 * the saved ones (registers read back, the timer's remaining count). Malformed records (values
 * no guest write can produce, a missing or extra local APIC) are refused with a reason and
 * change nothing. */
#include "dev/intc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/layout.h"
#include "core/snapfile.h"
#include "test.h"

#define NCPUS 2

static void eng_kick(void *ctx, unsigned int cpu)
{
	(*(unsigned int *)ctx)++;
}

static const struct intc_ops eng_ops = {.kick = eng_kick};

struct fx {
	struct loop loop;
	struct intc ic;
	struct bus pio, mmio;
	unsigned int kicks;
};

/* Controllers on a loop that never runs: their timers are armed but not read. */
static bool fx_init(struct fx *f, unsigned int ncpus)
{
	memset(f, 0, sizeof(*f));
	if (loop_init(&f->loop, 64))
		return false;
	if (intc_init(&f->ic, ncpus, &f->loop, &eng_ops, &f->kicks)) {
		loop_fini(&f->loop);
		return false;
	}
	bus_init(&f->pio, "pio");
	bus_init(&f->mmio, "mmio");
	CHECK_EQ(intc_attach(&f->ic, &f->pio, &f->mmio), 0);
	return true;
}

static void fx_fini(struct fx *f)
{
	intc_fini(&f->ic);
	loop_fini(&f->loop);
}

static void outb(struct fx *f, uint16_t port, uint8_t v)
{
	CHECK(bus_dispatch(&f->pio, port, &v, 1, true));
}

static uint8_t inb(struct fx *f, uint16_t port)
{
	uint8_t v = 0;

	CHECK(bus_dispatch(&f->pio, port, &v, 1, false));
	return v;
}

static void io_write(struct fx *f, uint32_t reg, uint32_t v)
{
	CHECK(bus_dispatch(&f->mmio, LAYOUT_IOAPIC, &reg, 4, true));
	CHECK(bus_dispatch(&f->mmio, LAYOUT_IOAPIC + 0x10, &v, 4, true));
}

static uint32_t io_read(struct fx *f, uint32_t reg)
{
	uint32_t v = 0;

	CHECK(bus_dispatch(&f->mmio, LAYOUT_IOAPIC, &reg, 4, true));
	CHECK(bus_dispatch(&f->mmio, LAYOUT_IOAPIC + 0x10, &v, 4, false));
	return v;
}

/* What Linux does at boot, roughly: both PICs initialised and masked but IRQ 0, the IOAPIC
 * routing pin 4 (edge) and pin 9 (level, its line held) to CPU 1, each LAPIC enabled with its
 * own TPR and LDR, CPU 0's timer one-shot, PIT channel 0 in mode 2 and channel 2's gate up. */
static void program(struct fx *f)
{
	static const uint8_t icw[2][4] = {{0x11, 0x30, 0x04, 0x01}, {0x11, 0x38, 0x02, 0x01}};
	struct irq_chip *chip = intc_irq_chip(&f->ic);

	for (unsigned int p = 0; p < 2; p++) {
		uint16_t base = p ? INTC_PIC_SLAVE_PORT : INTC_PIC_MASTER_PORT;

		outb(f, base, icw[p][0]);
		for (unsigned int i = 1; i < 4; i++)
			outb(f, base + 1, icw[p][i]);
		outb(f, base + 1, p ? 0xff : 0xfe);
	}
	outb(f, INTC_ELCR_PORT + 1, 0x02); /* IRQ 9 level */
	io_write(f, 0x10 + 2 * 4, 0x41);
	io_write(f, 0x11 + 2 * 4, 1u << 24);
	io_write(f, 0x10 + 2 * 9, 0x49 | (1u << 15) | (1u << 13));
	io_write(f, 0x11 + 2 * 9, 1u << 24);
	for (unsigned int cpu = 0; cpu < NCPUS; cpu++) {
		intc_lapic_write(&f->ic, cpu, 0xf0, 0x1ff, 4);		/* SVR: enabled */
		intc_lapic_write(&f->ic, cpu, 0x80, 0x10 * cpu, 4);	/* TPR */
		intc_lapic_write(&f->ic, cpu, 0xd0, 1u << (24 + cpu), 4); /* LDR */
		intc_lapic_write(&f->ic, cpu, 0x370, 0xfe, 4);	/* LVT error */
	}
	intc_lapic_write(&f->ic, 0, 0x3e0, 0x3, 4);		/* divide by 16 */
	intc_lapic_write(&f->ic, 0, 0x320, 0xef, 4);		/* one-shot, vector 0xef */
	intc_lapic_write(&f->ic, 0, 0x380, 600000000u, 4);	/* 9.6 s */
	chip->set_level(chip, 9, 1);				/* held: Remote IRR set */
	chip->set_level(chip, 4, 1);
	chip->set_level(chip, 4, 0);
	outb(f, INTC_PIT_PORT + 3, 0x34);			/* channel 0, mode 2 */
	outb(f, INTC_PIT_PORT, 0x9c);
	outb(f, INTC_PIT_PORT, 0x2e);				/* 11932: 100 Hz */
	outb(f, INTC_PIT_PORT + 3, 0xb6);			/* channel 2, mode 3 */
	outb(f, INTC_PIT_PORT + 2, 0x00);
	outb(f, INTC_PIT_PORT + 2, 0x10);
	outb(f, INTC_PORT_B, 0x01);				/* channel 2's gate up */
	outb(f, INTC_PIT_PORT + 3, 0x00);			/* latch channel 0 */
}

/* A whole state file in (*buf) from the sections in (w). */
static size_t file_of(struct snap_writer *w, uint8_t **buf)
{
	struct snap_header h;

	CHECK_EQ(snap_finish(w, &h), 0);
	*buf = malloc(sizeof(h) + w->len);
	memcpy(*buf, &h, sizeof(h));
	memcpy(*buf + sizeof(h), w->buf, w->len);
	return sizeof(h) + w->len;
}

/* The sections of (r) again, section (type, index) with (len) bytes at (off) replaced by
 * (patch) (NULL: left out). */
static const enum snap_type types[] = {SNAP_INTC_PIC, SNAP_INTC_IOAPIC, SNAP_INTC_LAPIC,
				       SNAP_INTC_PIT};

static void copy_patched(const struct snap_reader *r, struct snap_writer *w, enum snap_type type,
			 uint32_t index, size_t off, const void *patch, size_t len)
{
	snap_writer_init(w);
	for (unsigned int t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		for (uint32_t i = 0; i < 8; i++) {
			size_t n;
			const uint8_t *p = snap_get_any(r, types[t], i, &n);
			uint8_t copy[512];

			if (!p)
				continue;
			if (types[t] == type && i == index) {
				if (!patch)
					continue;
				memcpy(copy, p, n);
				memcpy(copy + off, patch, len);
				p = copy;
			}
			snap_put(w, types[t], i, p, n);
		}
}

static uint64_t real_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int restore_file(struct fx *f, const uint8_t *buf, size_t len, uint64_t now, char *err,
			size_t errlen)
{
	struct snap_reader r;

	CHECK_EQ(snap_reader_open(&r, buf, len, err, errlen), 0);
	return intc_restore(&f->ic, &r, now, err, errlen);
}

int main(void)
{
	const uint64_t t1 = 5000000000ull, t2 = 987654321000ull;
	struct fx a, b, c;
	struct snap_writer w1, w2, w3;
	struct snap_reader r;
	uint8_t *f1, *f2, *f3;
	size_t n1, n2, n3;
	char err[256];

	if (!fx_init(&a, NCPUS) || !fx_init(&b, NCPUS))
		return T_EXIT_FAIL;
	program(&a);
	snap_writer_init(&w1);
	intc_save(&a.ic, &w1, t1);
	n1 = file_of(&w1, &f1);

	/* Round trip: restored at another instant, saved at that instant: the same bytes. */
	b.kicks = 0;
	CHECK_EQ(restore_file(&b, f1, n1, t2, err, sizeof(err)), 0);
	snap_writer_init(&w2);
	intc_save(&b.ic, &w2, t2);
	n2 = file_of(&w2, &f2);
	CHECK_EQ(n2, n1);
	CHECK(n1 == n2 && !memcmp(f1 + sizeof(struct snap_header), f2 + sizeof(struct snap_header),
				  n1 - sizeof(struct snap_header)));
	/* The restored models answer as the saved ones. */
	CHECK_EQ(io_read(&b, 0x10 + 2 * 9), io_read(&a, 0x10 + 2 * 9));
	CHECK(io_read(&b, 0x10 + 2 * 9) & (1u << 14)); /* Remote IRR of the held level line */
	CHECK_EQ(io_read(&b, 0x11 + 2 * 4), 1u << 24);
	CHECK_EQ(inb(&b, INTC_PIC_MASTER_PORT + 1), 0xfe);
	CHECK_EQ(inb(&b, INTC_ELCR_PORT + 1), 0x02);
	for (unsigned int cpu = 0; cpu < NCPUS; cpu++) {
		CHECK_EQ(intc_lapic_read(&b.ic, cpu, 0x80, 4), 0x10 * cpu);
		CHECK_EQ(intc_lapic_read(&b.ic, cpu, 0xd0, 4), 1u << (24 + cpu));
		CHECK_EQ(intc_apic_base(&b.ic, cpu), intc_apic_base(&a.ic, cpu));
	}
	/* CPU 1 holds vectors 0x41 and 0x49 in its IRR: told so by a kick. */
	CHECK_EQ(intc_lapic_read(&b.ic, 1, 0x200 + 0x20, 4), (1u << 1) | (1u << 9));
	CHECK(intc_pending(&b.ic, 1));
	CHECK(b.kicks >= 1);
	/* The latched count is still there to read, whole. */
	CHECK_EQ(inb(&b, INTC_PIT_PORT) | inb(&b, INTC_PIT_PORT) << 8,
		 inb(&a, INTC_PIT_PORT) | inb(&a, INTC_PIT_PORT) << 8);
	CHECK_EQ(intc_lapic_read(&b.ic, 0, 0x380, 4), 600000000u);

	/* Malformed records: refused, with a reason, and the state stays as it was (the reads
	 * above moved IOREGSEL and the PIT's latch: the reference is taken now). */
	snap_writer_fini(&w2);
	free(f2);
	snap_writer_init(&w2);
	intc_save(&b.ic, &w2, t2);
	n2 = file_of(&w2, &f2);
	CHECK_EQ(snap_reader_open(&r, f1, n1, err, sizeof(err)), 0);
	{
		static const uint64_t x2apic = 0xfee00000ull | (1u << 11) | (1u << 10) | (1u << 8);
		static const uint8_t nine = 9, seven = 7, zero = 0;
		static const uint64_t rte_reserved = 1ull << 20;
		static const uint32_t lvt_bad = 0xef | (1u << 18), dfr_bad = 0x00000000;
		static const uint32_t count0 = 0, cpus_bad = 5;
		const struct {
			enum snap_type type;
			uint32_t index;
			size_t off, len;
			const void *patch;
			const char *says;
		} bad[] = {
			{SNAP_INTC_LAPIC, 0, 0, 8, &x2apic, "local APIC state of vCPU 0"},
			{SNAP_INTC_LAPIC, 1, 0, 8, &x2apic, "local APIC state of vCPU 1"},
			{SNAP_INTC_LAPIC, 0, 16 + 3 * 4, 4, &dfr_bad, "local APIC"},
			{SNAP_INTC_LAPIC, 1, 148, 4, &lvt_bad, "local APIC"},
			{SNAP_INTC_LAPIC, 1, 0, 0, NULL, "no local APIC for vCPU 1"},
			{SNAP_INTC_PIC, 0, 4, 1, &nine, "PIC"},
			{SNAP_INTC_PIC, 1, 8, 1, &seven, "PIC"},	/* ELCR bit IRQ 8..10 */
			{SNAP_INTC_PIC, 1, 0, 0, NULL, "no interrupt controller state"},
			{SNAP_INTC_IOAPIC, 0, 16, 8, &rte_reserved, "IOAPIC"},
			{SNAP_INTC_IOAPIC, 0, 12, 4, &cpus_bad, "IOAPIC"},
			{SNAP_INTC_PIT, 0, 29, 1, &seven, "PIT"},	/* channel 0 mode 7 */
			{SNAP_INTC_PIT, 0, 16, 4, &count0, "PIT"},
			{SNAP_INTC_PIT, 0, 40 + 31, 1, &zero, "PIT"},	/* channel 1's gate low */
		};

		for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			copy_patched(&r, &w3, bad[i].type, bad[i].index, bad[i].off, bad[i].patch,
				     bad[i].len);
			n3 = file_of(&w3, &f3);
			err[0] = 0;
			CHECK_EQ(restore_file(&b, f3, n3, t2, err, sizeof(err)), -EINVAL);
			if (!strstr(err, bad[i].says))
				fprintf(stderr, "case %u: '%s' lacks '%s'\n", i, err, bad[i].says);
			CHECK(strstr(err, bad[i].says) != NULL);
			snap_writer_fini(&w3);
			free(f3);
		}
	}
	/* Nothing changed: the same bytes as after the good restore. */
	snap_writer_init(&w3);
	intc_save(&b.ic, &w3, t2);
	n3 = file_of(&w3, &f3);
	CHECK(n3 == n2 && !memcmp(f3 + sizeof(struct snap_header), f2 + sizeof(struct snap_header),
				  n2 - sizeof(struct snap_header)));
	snap_writer_fini(&w3);
	free(f3);

	/* On the real clock: the timer's count goes on from where it was at the snapshot, not
	 * from where the time between would have taken it. */
	if (fx_init(&c, NCPUS)) {
		uint32_t before, after;
		uint64_t now;

		snap_writer_fini(&w3);
		snap_writer_init(&w3);
		now = real_now();
		before = intc_lapic_read(&a.ic, 0, 0x390, 4);
		intc_save(&a.ic, &w3, now);
		n3 = file_of(&w3, &f3);
		usleep(300000);
		CHECK_EQ(restore_file(&c, f3, n3, real_now(), err, sizeof(err)), 0);
		after = intc_lapic_read(&c.ic, 0, 0x390, 4);
		/* 300 ms would be 18.75 M ticks at 1 GHz / 16: what passed must be far less. */
		CHECK(after <= before && before - after < 6250000u);
		free(f3);
		snap_writer_fini(&w3);
		fx_fini(&c);
	}

	/* Other vCPU counts: one local APIC too many, or one missing. */
	if (fx_init(&c, 1)) {
		CHECK_EQ(restore_file(&c, f1, n1, t2, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "more than 1 vCPUs") != NULL);
		fx_fini(&c);
	}
	if (fx_init(&c, 3)) {
		CHECK_EQ(restore_file(&c, f1, n1, t2, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "no local APIC for vCPU 2") != NULL);
		fx_fini(&c);
	}

	snap_writer_fini(&w1);
	snap_writer_fini(&w2);
	free(f1);
	free(f2);
	fx_fini(&a);
	fx_fini(&b);
	return t_done();
}
