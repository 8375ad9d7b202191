/* fuzz_snapshot.c: libFuzzer target for the --accel dbt snapshot records: the engine's
 * (dbt_restore(), vmm/dbt/snapshot.c) and the interrupt controllers' (intc_restore(),
 * vmm/dev/intc_state.c). A valid state file of a 2-vCPU machine is built once (an engine in long
 * mode with lazy flags pending, controllers programmed as a guest would); each input patches
 * its sections' bytes (headers included), the CRC is made right again, and what the reader
 * accepts is restored.
 *
 * Must hold: each restore returns 0 or -EINVAL with a reason; a state that was accepted
 * round-trips: saved, restored into other instances at another instant and saved again, the
 * bytes are the same (every value a restore takes is one it can give back).
 *
 * Input layout: repeated 3-byte patches: a little-endian 16-bit offset into the sections (taken
 * modulo their length) and a byte XORed in there. */
#include <errno.h>
#include <sanitizer/common_interface_defs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapfile.h"
#include "dbt/dbt.h"
#include "dev/intc.h"
#include "emu/vcpu.h"

#define NCPUS 2
#define T1    1000000000000ull
#define T2    2000000000000ull
#define T3    3000000000000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *why)
{
	fprintf(stderr, "fuzz_snapshot: invariant broken: %s\n", why);
	/* Also where libFuzzer reports, which -close_fd_mask=2 leaves open. */
	__sanitizer_report_error_summary(why);
	abort();
}

static void fz_kick(void *ctx, unsigned int cpu)
{
}

static const struct intc_ops fz_ops = {.kick = fz_kick};

/* An engine and its controllers, without a guest running. */
struct machine {
	struct guest_mem mem;
	struct bus pio, mmio;
	struct stop_ctl stop;
	struct loop loop;
	struct dbt *d;
	struct intc ic;
};

static void machine_init(struct machine *m)
{
	struct dbt_config cfg = {.mem = &m->mem, .pio = &m->pio, .mmio = &m->mmio,
				 .stop = &m->stop, .ncpus = NCPUS, .cache_bytes = 1 << 20};

	guest_mem_init(&m->mem);
	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");
	if (guest_mem_alloc(&m->mem, 0, 1 << 20) || loop_init(&m->loop, 64) ||
	    !(m->d = dbt_create(&cfg)) || intc_init(&m->ic, NCPUS, &m->loop, &fz_ops, NULL) ||
	    intc_attach(&m->ic, &m->pio, &m->mmio))
		broken("cannot build the machine");
}

static void outb(struct machine *m, uint16_t port, uint8_t v)
{
	bus_dispatch(&m->pio, port, &v, 1, true);
}

static void program(struct machine *m)
{
	struct dbt_entry e = {.long_mode = true, .rip = 0x100000, .rsp = 0x8000, .rflags = 0x202,
			      .cr0 = 0x80050033, .cr3 = 0x1000, .cr4 = 0x6a0, .efer = 0x501,
			      .gdt_base = 0x500, .gdt_limit = 0x2f, .cs_sel = 0x10, .ds_sel = 0x18,
			      .tr_sel = 0x20};
	struct emu_vcpu *v = dbt_vcpu(m->d, 0);
	struct irq_chip *chip = intc_irq_chip(&m->ic);

	dbt_set_entry(m->d, &e);
	v->cc = (struct emu_cc){.op = CC_ADD, .bits = 32, .a = 0xffffffff, .b = 1, .res = 0};
	v->msr.tsc_offset = 12345;
	v->halted = true;
	dbt_sipi(m->d, 1, 0x10);
	outb(m, INTC_PIC_MASTER_PORT, 0x11);
	outb(m, INTC_PIC_MASTER_PORT + 1, 0x30);
	outb(m, INTC_PIC_MASTER_PORT + 1, 0x04);
	outb(m, INTC_PIC_MASTER_PORT + 1, 0x01);
	outb(m, INTC_PIT_PORT + 3, 0x34);
	outb(m, INTC_PIT_PORT, 0x9c);
	outb(m, INTC_PIT_PORT, 0x2e);
	intc_lapic_write(&m->ic, 0, 0xf0, 0x1ff, 4);
	intc_lapic_write(&m->ic, 0, 0x320, 0x200ef, 4);
	intc_lapic_write(&m->ic, 0, 0x380, 100000, 4);
	chip->set_level(chip, 4, 1);
}

/* The sections of the machine's state at (now) into (w). */
static void save(struct machine *m, struct snap_writer *w, uint64_t now)
{
	snap_writer_init(w);
	if (dbt_save(m->d, w, now, 1700000000000000000ull))
		broken("dbt_save failed");
	intc_save(&m->ic, w, now);
}

static int restore(struct machine *m, const uint8_t *file, size_t len, uint64_t now)
{
	struct snap_reader r;
	char err[256];
	int ret;

	if (snap_reader_open(&r, file, len, err, sizeof(err)))
		return 1;
	err[0] = 0;
	ret = dbt_restore(m->d, &r, now, 0, err, sizeof(err));
	if (!ret)
		ret = intc_restore(&m->ic, &r, now, err, sizeof(err));
	if (ret && (ret != -EINVAL || !err[0] || !memchr(err, 0, sizeof(err))))
		broken("a refused restore without -EINVAL and a reason");
	return ret;
}

/* (w)'s sections as a whole state file. */
static uint8_t *file_of(struct snap_writer *w, size_t *len)
{
	struct snap_header h;
	uint8_t *f;

	if (snap_finish(w, &h))
		broken("snap_finish failed");
	f = malloc(sizeof(h) + w->len);
	if (!f)
		abort();
	memcpy(f, &h, sizeof(h));
	memcpy(f + sizeof(h), w->buf, w->len);
	*len = sizeof(h) + w->len;
	return f;
}

/* Built once and kept (reachable, so not leaks): the source of the base file and the two
 * machines every input restores into. */
static struct machine src, a, b;
static uint8_t *base;
static size_t base_len;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t hl = sizeof(struct snap_header);
	struct snap_writer w2, w3;
	struct snap_header h;
	uint8_t *f, *f2, *f3;
	size_t n2, n3;

	if (!base) {
		struct snap_writer w;

		machine_init(&src);
		program(&src);
		save(&src, &w, T1);
		base = file_of(&w, &base_len);
		snap_writer_fini(&w);
		machine_init(&a);
		machine_init(&b);
	}
	f = malloc(base_len);
	if (!f)
		abort();
	memcpy(f, base, base_len);
	for (size_t i = 0; i + 3 <= size; i += 3) {
		size_t off = (data[i] | (size_t)data[i + 1] << 8) % (base_len - hl);

		f[hl + off] ^= data[i + 2];
	}
	memcpy(&h, f, sizeof(h));
	h.crc = snap_crc32(f + hl, base_len - hl);
	memcpy(f, &h, sizeof(h));
	if (restore(&a, f, base_len, T2)) {
		free(f);
		return 0;
	}
	save(&a, &w2, T2);
	f2 = file_of(&w2, &n2);
	if (restore(&b, f2, n2, T3))
		broken("a state saved after a restore is refused");
	save(&b, &w3, T3);
	f3 = file_of(&w3, &n3);
	if (n2 != n3 || memcmp(f2 + hl, f3 + hl, n2 - hl))
		broken("save, restore, save changed the state");
	snap_writer_fini(&w2);
	snap_writer_fini(&w3);
	free(f);
	free(f2);
	free(f3);
	return 0;
}
