/* guest.h: the runtime shared by mvm's freestanding test guests (PVH entry, serial, printf,
 * PASS/FAIL reporting, exit through port 0xf4, start_info, IDT, LAPIC/IOAPIC/PIT, MP table, SMP).
 *
 * Every guest defines guest_main(); the runtime has set up long mode with an identity map of
 * 0..8 GiB, the serial port, the IDT (exceptions print and exit 3) and masked the 8259 PICs
 * before calling it. Returning from guest_main() calls finish().
 *
 * Only the BSP prints; the helpers take no locks. */
#ifndef MVM_GUEST_H
#define MVM_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h) ---- */
#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;	 /* version >= 1 */
	uint32_t memmap_entries; /* version >= 1 */
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info size");

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap entry size");

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "modlist entry size");

/* E820 types, as used by the PVH memmap. */
#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
#define E820_NVS      4
#define E820_UNUSABLE 5

/* ---- what each guest provides ---- */
void guest_main(const struct hvm_start_info *si);

/* ---- port and MMIO access ---- */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint8_t mmio_read8(uint64_t a)
{
	return *(volatile uint8_t *)a;
}
static inline uint16_t mmio_read16(uint64_t a)
{
	return *(volatile uint16_t *)a;
}
static inline uint32_t mmio_read32(uint64_t a)
{
	return *(volatile uint32_t *)a;
}
static inline uint64_t mmio_read64(uint64_t a)
{
	return *(volatile uint64_t *)a;
}
static inline void mmio_write8(uint64_t a, uint8_t v)
{
	*(volatile uint8_t *)a = v;
}
static inline void mmio_write16(uint64_t a, uint16_t v)
{
	*(volatile uint16_t *)a = v;
}
static inline void mmio_write32(uint64_t a, uint32_t v)
{
	*(volatile uint32_t *)a = v;
}
static inline void mmio_write64(uint64_t a, uint64_t v)
{
	*(volatile uint64_t *)a = v;
}
static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}
static inline void irq_enable(void)
{
	__asm__ volatile("sti" ::: "memory");
}
static inline void irq_disable(void)
{
	__asm__ volatile("cli" ::: "memory");
}
/* Enables interrupts and halts until one arrives; returns with interrupts disabled. The sti
 * shadow makes "sti; hlt" free of the lost-wakeup race. */
static inline void wait_for_interrupt(void)
{
	__asm__ volatile("sti; hlt; cli" ::: "memory");
}

/* ---- string.c: what the compiler may call even when freestanding ---- */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* ---- serial.c: 8250 UART at 0x3f8, polled ---- */
#define SERIAL_BASE 0x3f8
void serial_init(void);
void serial_putc(char c); /* "\n" goes out as "\r\n" */
void serial_puts(const char *s);
int serial_getc_nowait(void); /* a received byte, or -1 when LSR.DR is clear */
int serial_getc(void);	      /* polls LSR.DR until a byte arrives */

/* ---- printf.c: %d %i %u %x %X %p %s %c %%, flags '0' '-', width, l/ll/z ---- */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* ---- report.c ---- */
/* Prints "PASS <name>" or "FAIL <name>" and counts failures. Returns (ok). */
bool report(const char *name, bool ok);
bool reportf(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "SKIP <name> (<why>)"; not a failure. */
void report_skip(const char *name, const char *why);
unsigned int report_failures(void);
/* Writes (code) to the debug-exit port 0xf4 with outl, then halts forever with interrupts
 * off. mvm exits with (code & 0xff); QEMU's isa-debug-exit with (code << 1) | 1. */
void guest_exit(uint32_t code) __attribute__((noreturn));
/* Prints "RESULT PASS" and exits 0, or "RESULT FAIL <count>" and exits 1. */
void finish(void) __attribute__((noreturn));
/* Exit codes. */
#define EXIT_PASS      0
#define EXIT_FAIL      1
#define EXIT_BAD_BOOT  2 /* start_info missing or malformed */
#define EXIT_EXCEPTION 3 /* unexpected CPU exception */

/* ---- start_info.c ---- */
extern const struct hvm_start_info *start_info;
bool start_info_valid(void); /* magic and version >= 1 */
const char *cmdline(void);   /* "" when there is none */
/* Copies the value of "key=value" from the command line into (buf, size), NUL-terminated.
 * A bare "key" gives "". Returns false when the key is absent. */
bool cmdline_get(const char *key, char *buf, size_t size);
/* The value of key as an unsigned number (decimal, or hex with 0x), or (def). */
uint64_t cmdline_uint(const char *key, uint64_t def);
unsigned int memmap_count(void);
/* Entry (i) of the PVH memmap, or NULL past the end. */
const struct hvm_memmap_table_entry *memmap_entry(unsigned int i);
/* True when [addr, addr + len) lies inside one E820_RAM entry. */
bool memmap_is_ram(uint64_t addr, uint64_t len);
const char *e820_type_name(uint32_t type);

/* ---- idt.c ---- */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};
typedef void (*irq_handler_fn)(struct trap_frame *f);
void idt_init(void); /* builds the IDT; done by the runtime */
void idt_load(void); /* lidt on this CPU (APs) */
/* Calls (fn) for (vector) (32..254); the runtime sends the LAPIC EOI after (fn) returns. */
void irq_register(unsigned int vector, irq_handler_fn fn);
/* Calls (fn) for exception (vector) (0..31) instead of printing it and exiting; the handler
 * may change the frame, and the exception returns to it (no EOI). */
void exception_register(unsigned int vector, irq_handler_fn fn);
extern volatile unsigned int spurious_irqs;

/* Vectors used by the test guests. The 8259s are remapped to 0x20-0x2f and masked. */
#define VEC_PIC_BASE	0x20
#define VEC_PIT		0x30
#define VEC_SERIAL	0x34
#define VEC_LAPIC_TIMER 0x40
#define VEC_LAPIC_ERROR 0xfe
#define VEC_SPURIOUS	0xff

/* ---- apic.c: xAPIC (MMIO) and IOAPIC ---- */
#define LAPIC_BASE	     0xfee00000ull
#define IOAPIC_BASE	     0xfec00000ull
#define LAPIC_ID	     0x020
#define LAPIC_VERSION	     0x030
#define LAPIC_TPR	     0x080
#define LAPIC_EOI	     0x0b0
#define LAPIC_SVR	     0x0f0
#define LAPIC_ESR	     0x280
#define LAPIC_ICR_LOW	     0x300
#define LAPIC_ICR_HIGH	     0x310
#define LAPIC_LVT_TIMER	     0x320
#define LAPIC_LVT_LINT0	     0x350
#define LAPIC_LVT_LINT1	     0x360
#define LAPIC_LVT_ERROR	     0x370
#define LAPIC_TIMER_INIT     0x380
#define LAPIC_TIMER_CUR	     0x390
#define LAPIC_TIMER_DIV	     0x3e0
#define LAPIC_LVT_MASKED     (1u << 16)
#define LAPIC_TIMER_PERIODIC (1u << 17)

uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
/* Software-enables this CPU's LAPIC (SVR, spurious vector 0xff), TPR 0, LINT0/1 masked. */
void lapic_init(void);
unsigned int lapic_id(void);
void lapic_eoi(void);
/* Timer: (divide) is 1, 2, 4, ..., 128. Periodic or one-shot at (vector). */
void lapic_timer_start(unsigned int vector, unsigned int divide, uint32_t count, bool periodic);
void lapic_timer_stop(void);
/* Sends an IPI (icr_low: vector, delivery mode, level, trigger) to (apic_id) and waits for
 * the delivery-status bit to clear. Returns false on timeout. */
bool lapic_send_ipi(unsigned int apic_id, uint32_t icr_low);

uint32_t ioapic_read(uint32_t reg);
void ioapic_write(uint32_t reg, uint32_t v);
unsigned int ioapic_pins(void); /* max redirection entry + 1 */
/* Redirection entry for (pin): fixed delivery, physical destination (apic_id), edge/high
 * unless (level_low) (level-triggered, active low: PCI style). */
void ioapic_route(unsigned int pin, unsigned int vector, unsigned int apic_id, bool level_low);
void ioapic_mask(unsigned int pin);
void ioapic_mask_all(void);

/* ---- pit.c: 8254 PIT, 1.193182 MHz ---- */
#define PIT_HZ	     1193182u
#define PIT_CLOCK_HZ 20		    /* channel 0 rate pit_clock_start() sets when it is idle */
void pit_periodic(unsigned int hz); /* channel 0, mode 2 */
void pit_stop(void);		    /* channel 0 back to a one-shot mode 0 that never fires */
uint16_t pit_read_counter(unsigned int channel);
/* A wall clock read from the channel 0 counter, whether or not IRQ 0 is delivered anywhere.
 * Starts channel 0 at PIT_CLOCK_HZ if it is not running. Must be read at least once per
 * channel 0 period (10 ms at 100 Hz, 50 ms at 20 Hz), or elapsed time is undercounted. A
 * counter that does not move at all reads as a very large elapsed time (and says so). */
struct pit_clock {
	uint16_t last;
	unsigned int same; /* consecutive identical reads */
	uint64_t clocks;   /* elapsed, in PIT input clocks */
};
void pit_clock_start(struct pit_clock *c);
uint64_t pit_clock_ms(struct pit_clock *c);

/* ---- pic.c ---- */
void pic_disable(void); /* remaps to 0x20/0x28 and masks all lines */

/* ---- mptable.c: Intel MP spec 1.4 ---- */
#define MP_MAX_CPUS 64
#define MP_MAX_IRQS 64
struct mp_irq {
	uint8_t type;	/* 0 INT, 1 NMI, 2 SMI, 3 ExtINT */
	uint16_t flags; /* polarity bits 0-1, trigger bits 2-3 */
	uint8_t src_bus, src_irq, dst_apic, dst_pin;
	bool isa; /* src_bus is an ISA bus */
};
struct mp_info {
	uint64_t fp_addr;    /* floating pointer */
	uint64_t table_addr; /* PCMP header */
	uint32_t lapic_addr;
	unsigned int ncpus; /* processor entries with the enabled flag */
	uint8_t apic_id[MP_MAX_CPUS];
	int bsp_index; /* index in apic_id[] of the entry flagged BSP, or -1 */
	unsigned int nioapics;
	uint8_t ioapic_id;
	uint32_t ioapic_addr;
	unsigned int nirqs;
	struct mp_irq irq[MP_MAX_IRQS];
	unsigned int entries;	    /* entry count in the header (qboot leaves it 0) */
	unsigned int entries_found; /* entries within the header's base table length */
	char oem[9], product[13];
};
/* Finds and parses the MP table: the floating pointer is searched in the EBDA (the BDA's
 * pointer at 0x40e, and 0x9fc00), then 0xf0000-0xfffff, on 16-byte boundaries; both
 * checksums are verified. Returns 0, -1 when there is no floating pointer, -2 for a bad
 * checksum or a malformed table (a message says which). */
int mp_parse(struct mp_info *mp);
/* IOAPIC pin that the MP table routes ISA IRQ (irq) to, or -1 without an entry. */
int mp_isa_irq_pin(const struct mp_info *mp, unsigned int irq);

/* ---- smp.c ---- */
#define SMP_TRAMPOLINE 0x10000u /* real-mode trampoline: SIPI vector 0x10 */
typedef void (*ap_main_fn)(unsigned int cpu_index);
/* Starts the AP with LAPIC id (apic_id) with INIT-SIPI-SIPI; it runs (fn)(cpu_index) on its
 * own stack in long mode with this CPU's page tables, GDT and IDT, then halts with
 * interrupts off when (fn) returns. Waits until the AP has reached C (returns 0), or gives
 * up after (timeout_ms) by the PIT clock (returns -1). Uses PIT channel 0 as its clock. */
int smp_start_ap(unsigned int apic_id, unsigned int cpu_index, ap_main_fn fn,
		 unsigned int timeout_ms);
/* Copies the trampoline to SMP_TRAMPOLINE. Returns false when that page is not RAM in the
 * memmap (nothing is copied). */
bool smp_prepare(void);

/* ---- cpu helpers ---- */
static inline uint64_t read_cr2(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}
static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

#endif
