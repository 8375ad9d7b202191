/* fuzz_engine.c: libFuzzer target for the instruction core as mvm's engine drives it: the input
 * is a guest's register state and code, run one instruction at a time on an emu_vcpu over the
 * unit tests' fake guest (emu_fixture.h: 4-level page tables, RAM, an MMIO recorder). Whatever
 * the bytes, decoding and running them must stay inside mvm's memory (ASan) and never
 * trip UBSan; faults and "unsupported" are fine outcomes.
 *
 * Input layout: 16 x 8 bytes of registers, 8 bytes of RFLAGS, 1 byte of mode (bit 0: CPL 3),
 * then up to 256 bytes of code placed at the entry point. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "emu/vcpu.h"
#include "emu_fixture.h"

#define CODE_MAX 256
#define STEPS	 64

static uint64_t fz_tsc(struct emu_vcpu *v)
{
	return v->cpu.tsc;
}

static uint64_t fz_lapic_read(struct emu_vcpu *v, uint64_t off, unsigned int size)
{
	return off ^ size;
}

static void fz_lapic_write(struct emu_vcpu *v, uint64_t off, uint64_t val, unsigned int size)
{
}

static int fz_msr_read(struct emu_vcpu *v, uint32_t msr, uint64_t *val)
{
	*val = msr;
	return msr & 1 ? -1 : 0;
}

static int fz_msr_write(struct emu_vcpu *v, uint32_t msr, uint64_t val)
{
	return msr & 1 ? -1 : 0;
}

static void fz_cpuid(struct emu_vcpu *v, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	out[0] = leaf;
	out[1] = sub;
	out[2] = out[3] = 0;
}

static bool code_page;

static bool fz_is_code(struct emu_vcpu *v, uint64_t gpa)
{
	return code_page && (gpa >> 12) == ((FX_DATA + 0x80000) >> 12);
}

static void fz_code_written(struct emu_vcpu *v, uint64_t gpa, uint64_t len)
{
	code_page = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fx fx;
	static bool ready;
	static struct bus pio;
	static struct emu_vcpu v;
	static const struct emu_platform plat = {
		.pio = &pio,
		.lapic_read = fz_lapic_read,
		.lapic_write = fz_lapic_write,
		.rdmsr = fz_msr_read,
		.wrmsr = fz_msr_write,
		.cpuid = fz_cpuid,
		.tsc = fz_tsc,
		.code_written = fz_code_written,
		.is_code_page = fz_is_code,
	};
	size_t head = 16 * 8 + 8 + 1, code;
	uint64_t rflags;

	if (!ready) {
		if (!fx_init(&fx))
			return 0;
		bus_init(&pio, "pio");
		ready = true;
	}
	if (size < head)
		return 0;
	code = size - head < CODE_MAX ? size - head : CODE_MAX;
	emu_vcpu_init(&v, 0, &fx.env, &plat);
	fx_init_cpu(&v.cpu);
	if (data[head - 1] & 1)
		fx_set_cpl(&v.cpu, 3);
	memcpy(v.cpu.gpr, data, 16 * 8);
	memcpy(&rflags, data + 128, 8);
	/* Keep TF off: single-step traps are not offered by the engine. */
	emu_flags_set(&v, (rflags & 0x2c0fd5ull) | 2);
	emu_vcpu_mode_changed(&v, true);
	memset(fx.ram + v.cpu.rip, 0xf4, CODE_MAX + 16);
	memcpy(fx.ram + v.cpu.rip, data + head, code);
	code_page = true;
	for (int i = 0; i < STEPS; i++) {
		int ret = emu_vcpu_step(&v);

		if (ret == EXIT_FAULT) {
			/* Deliver it as the engine would; a fault in delivery ends the run. */
			if (emu_vcpu_deliver(&v, v.fault.vector, v.fault.has_error_code,
					     v.fault.error_code, true))
				break;
			continue;
		}
		if (ret != EXIT_NEXT && ret != EXIT_BRANCH && ret != EXIT_JUMP_TAKEN &&
		    ret != EXIT_JUMP_NOT && ret != EXIT_MODE)
			break;
	}
	return 0;
}
