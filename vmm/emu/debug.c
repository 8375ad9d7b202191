/* debug.c: the hardware breakpoints of DR0-DR3 as DR7 arms them (SDM Vol. 3A 17.2): which an
 * instruction fetch or a data access meets. Both drivers ask here: the engine before and
 * after each instruction it runs while one is armed, the KVM fallback through emu_step()'s
 * db_hits. */
#include "emu_internal.h"

/* DR7 fields of breakpoint (i) (17.2.4, Figure 17-2). */
static unsigned int dr7_enabled(uint64_t dr7, unsigned int i)
{
	return (dr7 >> (2 * i)) & 3;	/* Li | Gi: local and global enables alike */
}

static unsigned int dr7_rw(uint64_t dr7, unsigned int i)
{
	return (dr7 >> (16 + 4 * i)) & 3;
}

/* LENn: 00 one byte, 01 two, 10 eight (IA-32e mode and the CPUs that define it), 11 four. */
static uint64_t dr7_len(uint64_t dr7, unsigned int i)
{
	static const uint8_t len[4] = {1, 2, 8, 4};

	return len[(dr7 >> (18 + 4 * i)) & 3];
}

/* Linear addresses are 32 bits wide outside IA-32e mode: DRn and the access compare there. */
static uint64_t addr_mask(const struct emu_cpu *c)
{
	return emu_long_mode(c) ? ~0ull : 0xffffffffull;
}

unsigned int emu_dbg_data_hits(const struct emu_cpu *c, uint64_t la, unsigned int len,
			       bool write)
{
	uint64_t dr7 = c->dr[7], mask = addr_mask(c);
	unsigned int hits = 0;

	if (!(dr7 & EMU_DR7_ENABLES) || !len)
		return 0;
	for (unsigned int i = 0; i < 4; i++) {
		unsigned int rw = dr7_rw(dr7, i);
		uint64_t blen = dr7_len(dr7, i), start;

		/* R/W 01: data writes; 11: data reads or writes; 00 is execution and 10 I/O. */
		if (!dr7_enabled(dr7, i) || !(rw & 1) || (rw == 1 && !write))
			continue;
		/* 17.2.5: DRn must be aligned to LEN; the CPU ignores the low bits, so the range
		 * is the aligned one holding DRn. The access meets it when any of its bytes lies
		 * inside: the two ranges overlap, modulo the width of linear addresses. */
		start = c->dr[i] & ~(blen - 1) & mask;
		if (((la - start) & mask) < blen || ((start - la) & mask) < len)
			hits |= 1u << i;
	}
	return hits;
}

unsigned int emu_dbg_code_hits(const struct emu_cpu *c, uint64_t la)
{
	uint64_t dr7 = c->dr[7], mask = addr_mask(c);
	unsigned int hits = 0;

	if (!(dr7 & EMU_DR7_ENABLES))
		return 0;
	/* 17.2.4/17.3.1.1: an instruction breakpoint (R/W 00) must have LEN 00 and names the
	 * first byte of the instruction, prefixes included; it is met when an instruction
	 * starts there. */
	for (unsigned int i = 0; i < 4; i++)
		if (dr7_enabled(dr7, i) && dr7_rw(dr7, i) == 0 && ((c->dr[i] ^ la) & mask) == 0)
			hits |= 1u << i;
	return hits;
}

bool emu_dbg_data_armed(const struct emu_cpu *c)
{
	uint64_t dr7 = c->dr[7];

	for (unsigned int i = 0; i < 4; i++)
		if (dr7_enabled(dr7, i) && (dr7_rw(dr7, i) & 1))
			return true;
	return false;
}
