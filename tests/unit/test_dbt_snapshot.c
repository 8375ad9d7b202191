/* test_dbt_snapshot.c: the engine's snapshot records (dbt/dbt.h: dbt_save(), dbt_restore()).
 * Two vCPUs in states no reset gives (long mode, lazy flags pending, x87/SSE bytes, MSRs,
 * debug registers, a TSC offset, one halted in an interrupt shadow, one waiting for its SIPI,
 * INIT/SIPI requests not taken) are saved, restored into a fresh engine at a later instant and
 * saved again: the bytes are the same, the guest's TSC goes on from its saved value, and the
 * derived state (flags, CPL, mode) matches. Malformed records, another CPU model and another
 * vCPU count are refused with a reason. */
#include "dbt/dbt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapfile.h"
#include "emu/vcpu.h"
#include "test.h"

struct fx {
	struct guest_mem mem;
	struct bus pio, mmio;
	struct stop_ctl stop;
	struct dbt *d;
};

static bool fx_init(struct fx *f, unsigned int ncpus)
{
	struct dbt_config cfg = {.mem = &f->mem, .pio = &f->pio, .mmio = &f->mmio,
				 .stop = &f->stop, .ncpus = ncpus, .cache_bytes = 1 << 20};

	memset(f, 0, sizeof(*f));
	guest_mem_init(&f->mem);
	if (guest_mem_alloc(&f->mem, 0, 1 << 20))
		return false;
	bus_init(&f->pio, "pio");
	bus_init(&f->mmio, "mmio");
	f->d = dbt_create(&cfg);
	return f->d != NULL;
}

static void fx_fini(struct fx *f)
{
	dbt_destroy(f->d);
	guest_mem_fini(&f->mem);
}

/* A state worth saving. */
static void program(struct fx *f)
{
	struct dbt_entry e = {.long_mode = true, .rip = 0x100000, .rsp = 0x8000, .rsi = 0x7000,
			      .rflags = 0x202, .cr0 = 0x80050033, .cr3 = 0x1000, .cr4 = 0x6a0,
			      .efer = 0x501, .gdt_base = 0x500, .gdt_limit = 0x2f, .cs_sel = 0x10,
			      .ds_sel = 0x18, .tr_sel = 0x20};
	struct emu_vcpu *v = dbt_vcpu(f->d, 0), *ap = dbt_vcpu(f->d, 1);

	dbt_set_entry(f->d, &e);
	for (unsigned int i = 0; i < 16; i++)
		v->cpu.gpr[i] = 0x1111111111111111ull * i + 7;
	/* Flags pending in lazy form: 1 - 2 sets CF, SF, AF; the saved RFLAGS must show them. */
	v->cc = (struct emu_cc){.op = CC_SUB, .bits = 64, .a = 1, .b = 2, .res = ~0ull};
	for (unsigned int i = 0; i < 512; i++)
		v->cpu.xsave[i] = (uint8_t)(i * 7);
	v->cpu.dr[0] = 0x401000;
	v->cpu.dr[7] = 0x401;
	v->cpu.cr2 = 0xdead000;
	v->cpu.cr8 = 2;
	v->cpu.tsc_aux = 1;
	v->cpu.idt_base = 0x600;
	v->cpu.idt_limit = 0xfff;
	v->msr.lstar = 0xffffffff81800000ull;
	v->msr.star = 0x0023001000000000ull;
	v->msr.sfmask = 0x47700;
	v->msr.kernel_gs_base = 0xffff888000000000ull;
	v->msr.tsc_offset = 123456789;
	v->halted = true;
	v->int_shadow = true;
	ap->cpu.gpr[0] = 42;
	ap->msr.tsc_offset = 123456789;
	emu_vcpu_mode_changed(v, true);
	dbt_init_cpu(f->d, 1);
	dbt_sipi(f->d, 1, 0x9a);
}

static size_t file_of(struct snap_writer *w, uint8_t **buf)
{
	struct snap_header h;

	CHECK_EQ(snap_finish(w, &h), 0);
	*buf = malloc(sizeof(h) + w->len);
	memcpy(*buf, &h, sizeof(h));
	memcpy(*buf + sizeof(h), w->buf, w->len);
	return sizeof(h) + w->len;
}

static bool same_sections(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
	size_t h = sizeof(struct snap_header);

	return na == nb && !memcmp(a + h, b + h, na - h);
}

static const enum snap_type types[] = {SNAP_DBT_MODEL, SNAP_DBT_ENGINE, SNAP_DBT_CPU};

/* The sections of (r), section (type, index) patched at (off) (NULL: left out). */
static void copy_patched(const struct snap_reader *r, struct snap_writer *w, enum snap_type type,
			 uint32_t index, size_t off, const void *patch, size_t len)
{
	snap_writer_init(w);
	for (unsigned int t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		for (uint32_t i = 0; i < 4; i++) {
			size_t n;
			const uint8_t *p = snap_get_any(r, types[t], i, &n);
			uint8_t *copy;

			if (!p)
				continue;
			if (types[t] != type || i != index) {
				snap_put(w, types[t], i, p, n);
				continue;
			}
			if (!patch)
				continue;
			copy = malloc(n);
			memcpy(copy, p, n);
			memcpy(copy + off, patch, len);
			snap_put(w, types[t], i, copy, n);
			free(copy);
		}
}

static uint64_t realtime; /* what restore_file() passes: 0, or the host's date now */

static int restore_file(struct fx *f, const uint8_t *buf, size_t len, uint64_t now, char *err,
			size_t errlen)
{
	struct snap_reader r;

	CHECK_EQ(snap_reader_open(&r, buf, len, err, errlen), 0);
	return dbt_restore(f->d, &r, now, realtime, err, errlen);
}

/* Offsets in the records (vmm/dbt/snapshot.c). */
#define CPU_RFLAGS    136
#define CPU_CS_DPL    (144 + 16)
#define CPU_XCR0      408
#define CPU_HALTED    584
#define MODEL_LEAF1_EAX (24 + 8)
#define RT1	      1764720000000000000ull /* the host's date at the snapshot, ns */

int main(void)
{
	const uint64_t t1 = 1000000000000ull, t2 = 1000000000000ull + 7777777777ull;
	struct fx a, b, c;
	struct snap_writer w1, w2, w3;
	struct snap_reader r;
	struct emu_vcpu *va, *vb;
	uint8_t *f1, *f2, *f3;
	size_t n1, n2, n3;
	char err[256];

	if (!fx_init(&a, 2) || !fx_init(&b, 2)) {
		CHECK(!"engine");
		return t_done();
	}
	program(&a);
	va = dbt_vcpu(a.d, 0);
	CHECK(dbt_vcpu(a.d, 2) == NULL);
	snap_writer_init(&w1);
	CHECK_EQ(dbt_save(a.d, &w1, t1, RT1), 0);
	n1 = file_of(&w1, &f1);

	CHECK_EQ(restore_file(&b, f1, n1, t2, err, sizeof(err)), 0);
	snap_writer_init(&w2);
	CHECK_EQ(dbt_save(b.d, &w2, t2, RT1), 0);
	n2 = file_of(&w2, &f2);
	CHECK(same_sections(f1, n1, f2, n2));

	vb = dbt_vcpu(b.d, 0);
	/* The guest's TSC at t2 is what it was at t1. */
	CHECK_EQ(t2 + vb->msr.tsc_offset, t1 + va->msr.tsc_offset);
	CHECK_EQ(emu_flags(vb), emu_flags(va));
	CHECK(emu_flags(vb) & 1); /* CF of the pending 1 - 2 */
	CHECK_EQ(vb->cpl, va->cpl);
	CHECK(vb->mode64 && va->mode64);
	CHECK(vb->dbg_armed); /* DR7 arms DR0: recomputed */
	CHECK(vb->halted && vb->int_shadow && !vb->wait_sipi);
	CHECK(dbt_vcpu(b.d, 1)->wait_sipi);
	CHECK_EQ(dbt_vcpu(b.d, 1)->cpu.gpr[0], 42);
	CHECK(!memcmp(vb->cpu.xsave, va->cpu.xsave, sizeof(va->cpu.xsave)));
	CHECK_EQ(vb->msr.lstar, va->msr.lstar);

	/* clock_realtime: the TSC moves on by the host's real time since the snapshot; not back
	 * when the host's clock went back. */
	realtime = RT1 + 5000000000ull;
	CHECK_EQ(restore_file(&b, f1, n1, t2, err, sizeof(err)), 0);
	CHECK_EQ(t2 + vb->msr.tsc_offset, t1 + va->msr.tsc_offset + 5000000000ull);
	CHECK_EQ(t2 + dbt_vcpu(b.d, 1)->msr.tsc_offset,
		 t1 + dbt_vcpu(a.d, 1)->msr.tsc_offset + 5000000000ull);
	realtime = RT1 - 1000;
	CHECK_EQ(restore_file(&b, f1, n1, t2, err, sizeof(err)), 0);
	CHECK_EQ(t2 + vb->msr.tsc_offset, t1 + va->msr.tsc_offset);
	realtime = 0;

	/* Malformed records and another model: refused with a reason. */
	CHECK_EQ(snap_reader_open(&r, f1, n1, err, sizeof(err)), 0);
	{
		static const uint64_t rflags_bad = 0x202 | (1ull << 40), xcr0_avx = 7;
		static const uint8_t dpl4 = 4, two = 2;
		static const uint32_t other_model = 0x000906ea;
		const struct {
			enum snap_type type;
			uint32_t index;
			size_t off, len;
			const void *patch;
			const char *says;
		} bad[] = {
			{SNAP_DBT_CPU, 0, CPU_RFLAGS, 8, &rflags_bad, "RFLAGS"},
			{SNAP_DBT_CPU, 1, CPU_CS_DPL, 1, &dpl4, "vCPU 1: a segment"},
			{SNAP_DBT_CPU, 0, CPU_XCR0, 8, &xcr0_avx, "XCR0"},
			{SNAP_DBT_CPU, 0, CPU_HALTED, 1, &two, "run state"},
			{SNAP_DBT_CPU, 1, 0, 0, NULL, "no state for vCPU 1"},
			{SNAP_DBT_MODEL, 0, MODEL_LEAF1_EAX, 4, &other_model, "another CPU model"},
			{SNAP_DBT_ENGINE, 0, 0, 0, NULL, "no engine state"},
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
	/* Another vCPU count. */
	if (fx_init(&c, 1)) {
		CHECK_EQ(restore_file(&c, f1, n1, t2, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "2 vCPUs") != NULL);
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
