/* test_mptable.c: the MP table decoded byte by byte with the offsets of the MultiProcessor
 * Specification 1.4, chapter 4, for several CPU counts; out-of-range counts and missing RAM. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot/mptable.h"
#include "core/guest_mem.h"
#include "core/layout.h"
#include "test.h"
#include "test_log.h"
#include "util/util.h"

#define RAM_SIZE (2ULL << 20)

static uint8_t *ram;

static uint32_t rd(const uint8_t *p, int size)
{
	uint32_t v = 0;

	memcpy(&v, p, size); /* little-endian host, as the guest */
	return v;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static void check_table(unsigned int ncpus)
{
	const uint8_t *mpf = ram + LAYOUT_EBDA, *mpc, *e, *end;
	unsigned int ncpu = 0, nbus = 0, nioapic = 0, nint = 0, nlint = 0;
	uint32_t physptr, len;

	/* 4.1 floating pointer. */
	CHECK(!memcmp(mpf, "_MP_", 4));
	CHECK_EQ(sum(mpf, 16), 0);
	CHECK_EQ(mpf[8], 1);  /* length in paragraphs */
	CHECK_EQ(mpf[9], 4);  /* spec 1.4 */
	CHECK_EQ(mpf[11], 0); /* feature 1: table present, no default configuration */
	CHECK_EQ(mpf[12], 0);
	physptr = rd(mpf + 4, 4);
	CHECK_EQ(physptr, LAYOUT_EBDA + 16);
	if (physptr != LAYOUT_EBDA + 16)
		return;

	/* 4.2 configuration table header. */
	mpc = ram + physptr;
	len = rd(mpc + 4, 2);
	CHECK(!memcmp(mpc, "PCMP", 4));
	CHECK_EQ(len, 44 + 20 * ncpus + 8 + 8 + 16 * 8 + 2 * 8);
	CHECK_EQ(len + 16, mptable_size(ncpus));
	CHECK_EQ(mpc[6], 4);
	CHECK_EQ(sum(mpc, len), 0);
	CHECK(!memcmp(mpc + 8, "MVM     ", 8));
	CHECK(!memcmp(mpc + 16, "MVMVMM      ", 12));
	CHECK_EQ(rd(mpc + 28, 4), 0); /* no OEM table */
	CHECK_EQ(rd(mpc + 34, 2), ncpus + 1 + 1 + 16 + 2);
	CHECK_EQ(rd(mpc + 36, 4), LAYOUT_LAPIC);
	CHECK_EQ(rd(mpc + 40, 2), 0); /* no extended table */

	/* 4.3 entries, in the order the spec recommends. */
	e = mpc + 44;
	end = mpc + len;
	while (e < end) {
		switch (e[0]) {
		case 0:
			CHECK_EQ(nbus + nioapic + nint + nlint, 0);
			CHECK_EQ(e[1], ncpu); /* APIC ID */
			CHECK_EQ(e[2], 0x14);
			CHECK_EQ(e[3], ncpu == 0 ? 3 : 1); /* EN, BP on CPU 0 */
			CHECK_EQ(rd(e + 4, 4), 0x600);
			CHECK(rd(e + 8, 4) & (1u << 9)); /* APIC feature */
			ncpu++;
			e += 20;
			break;
		case 1:
			CHECK_EQ(e[1], 0);
			CHECK(!memcmp(e + 2, "ISA   ", 6));
			nbus++;
			e += 8;
			break;
		case 2:
			CHECK_EQ(e[1], ncpus);
			CHECK_EQ(e[2], 0x11);
			CHECK_EQ(e[3], 1);
			CHECK_EQ(rd(e + 4, 4), LAYOUT_IOAPIC);
			nioapic++;
			e += 8;
			break;
		case 3:
			CHECK_EQ(e[1], 0);	   /* INT */
			CHECK_EQ(rd(e + 2, 2), 0); /* conforms to bus */
			CHECK_EQ(e[4], 0);	   /* ISA */
			CHECK_EQ(e[5], nint);	   /* IRQ */
			CHECK_EQ(e[6], ncpus);	   /* IOAPIC ID */
			CHECK_EQ(e[7], nint);	   /* pin */
			nint++;
			e += 8;
			break;
		case 4:
			CHECK_EQ(e[1], nlint == 0 ? 3 : 1); /* ExtINT, then NMI */
			CHECK_EQ(rd(e + 2, 2), 0);
			CHECK_EQ(e[6], 0xff);
			CHECK_EQ(e[7], nlint); /* LINT0, LINT1 */
			nlint++;
			e += 8;
			break;
		default:
			CHECK_EQ(e[0], 0xdead);
			return;
		}
	}
	CHECK(e == end);
	CHECK_EQ(ncpu, ncpus);
	CHECK_EQ(nbus, 1);
	CHECK_EQ(nioapic, 1);
	CHECK_EQ(nint, 16);
	CHECK_EQ(nlint, 2);
	/* Nothing written beyond the table. */
	CHECK_EQ(ram[LAYOUT_EBDA + mptable_size(ncpus)], 0x5a);
}

int main(void)
{
	static const unsigned int counts[] = {1, 2, 4, 40, 41, 64, MPTABLE_MAX_CPUS};
	struct guest_mem mem, high;
	uint8_t *snap;

	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	snap = malloc(RAM_SIZE);
	if (ram == MAP_FAILED || !snap)
		return T_EXIT_FAIL;
	guest_mem_init(&mem);
	CHECK_EQ(guest_mem_add(&mem, 0, RAM_SIZE, ram), 0);

	CHECK_EQ(mptable_size(0), 0);
	CHECK_EQ(mptable_size(MPTABLE_MAX_CPUS + 1), 0);
	CHECK_EQ(mptable_size(1), 16 + 44 + 20 + 8 + 8 + 18 * 8);
	CHECK(LAYOUT_EBDA + mptable_size(MPTABLE_MAX_CPUS) <= LAYOUT_LEGACY_HOLE_END);

	for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
		memset(ram, 0x5a, RAM_SIZE);
		CHECK_EQ(mptable_write(&mem, counts[i]), 0);
		check_table(counts[i]);
	}

	/* Out of range: an error, a message, and nothing written. */
	memset(ram, 0x5a, RAM_SIZE);
	memcpy(snap, ram, RAM_SIZE);
	quiet_begin();
	CHECK_EQ(mptable_write(&mem, 0), -EINVAL);
	CHECK(strstr(quiet_end(), "0 CPUs") != NULL);
	quiet_begin();
	CHECK_EQ(mptable_write(&mem, MPTABLE_MAX_CPUS + 1), -EINVAL);
	CHECK(strstr(quiet_end(), "255 CPUs") != NULL);
	quiet_begin();
	CHECK_EQ(mptable_write(&mem, 100000), -EINVAL);
	quiet_end();
	CHECK(!memcmp(snap, ram, RAM_SIZE));

	/* No RAM under the EBDA. */
	guest_mem_init(&high);
	CHECK_EQ(guest_mem_add(&high, LAYOUT_LEGACY_HOLE_END, RAM_SIZE, ram), 0);
	quiet_begin();
	CHECK_EQ(mptable_write(&high, 1), -EFAULT);
	CHECK(strstr(quiet_end(), "not in guest RAM") != NULL);
	CHECK(!memcmp(snap, ram, RAM_SIZE));

	/* RAM ending inside the table for 254 CPUs but not for 1. */
	guest_mem_init(&high);
	CHECK_EQ(guest_mem_add(&high, 0, 0xa0000, ram), 0);
	CHECK_EQ(mptable_write(&high, 1), 0);
	quiet_begin();
	CHECK_EQ(mptable_write(&high, MPTABLE_MAX_CPUS), -EFAULT);
	quiet_end();

	munmap(ram, RAM_SIZE);
	free(snap);
	return t_done();
}
