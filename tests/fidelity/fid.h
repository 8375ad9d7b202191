/* fid.h: the framework of the sensitive-instruction fidelity guest (tests/fidelity).
 *
 * The guest runs each case's probe at CPL0 or CPL3 and compares what the CPU did with what the
 * Intel SDM (and, where the vendors differ, the AMD APM) says. A probe is an assembly routine
 * "setup; instruction under test; ret" entered by CALL, so at any fault the stack's top is the
 * return address: the trap handler records vector, error code, RIP and CS of the first event
 * and resumes at fid_probe_ret (a RET), which leaves the probe as if it had finished.
 * Results go to fid_out[]; the probe's RAX to the return value.
 *
 * Output, one pair per case (parsed by tests/fidelity/run):
 *   CASE-BEGIN <index> <id> <class> <rule>
 *   CASE <id> <class> PASS
 *   CASE <id> <class> FAIL result|fault expected=<...> got=<...>
 *   CASE <id> <class> SKIP <why>          (the CPU model lacks the feature the case needs)
 * class is Popek and Goldberg's: privileged (traps at CPL3), sensitive (sensitive but
 * unprivileged: runs at CPL3 and reveals or changes privileged state), innocuous. */
#ifndef FID_H
#define FID_H

#include "guest.h"

/* GDT layout (fid_cpu.c). User selectors differ from Linux's 0x2b/0x33 on purpose: a VMM that
 * shows its host's selectors to guest user mode is then visible. */
#define SEL_KCODE     0x08
#define SEL_KDATA     0x10
#define SEL_UCODE_XO  (0x20 | 3) /* 64-bit code, DPL3, execute-only */
#define SEL_KCODE_CNF 0x28	 /* 64-bit code, DPL0, conforming, readable */
#define SEL_NOTPRES   0x30	 /* DPL3 data, not present */
#define SEL_UCODE32   (0x48 | 3) /* STAR[63:48] = 0x48: SYSRET's CS/SS come from here */
#define SEL_UDATA     (0x50 | 3)
#define SEL_UCODE     (0x58 | 3)
#define SEL_TSS	      0x60
#define SEL_LDT	      0x70
#define SEL_CALLGATE  (0x80 | 3)
#define SEL_LDT_DATA  (0x0 | 4 | 3) /* LDT entry 0: DPL3 data */

#define RFL_CF	 (1ull << 0)
#define RFL_ZF	 (1ull << 6)
#define RFL_TF	 (1ull << 8)
#define RFL_IF	 (1ull << 9)
#define RFL_IOPL (3ull << 12)
#define RFL_NT	 (1ull << 14)
#define RFL_AC	 (1ull << 18)
#define RFL_USER (RFL_IF | 2) /* RFLAGS user mode starts with */

#define CR0_TS	   (1ull << 3)
#define CR4_TSD	   (1ull << 2)
#define CR4_PCE	   (1ull << 8)
#define CR4_UMIP   (1ull << 11)
#define CR4_OSXSAVE (1ull << 18)

#define MSR_EFER	 0xc0000080
#define MSR_STAR	 0xc0000081
#define MSR_LSTAR	 0xc0000082
#define MSR_SFMASK	 0xc0000084
#define MSR_TSC_AUX	 0xc0000103
#define MSR_SYSENTER_CS	 0x174
#define EFER_SCE	 1ull

#define V_DB 1
#define V_BP 3
#define V_UD 6
#define V_NM 7
#define V_GP 13
#define V_PF 14
#define NO_FAULT (~0ull)

/* Port the TSS I/O bitmap allows to CPL3 with IOPL 0; FID_PORT_DENIED is denied. Neither has a
 * device behind it (reads return all ones). */
#define FID_PORT_ALLOWED 0x80
#define FID_PORT_DENIED	 0x84

/* The first event a probe raised. */
struct fid_trap {
	uint64_t count, vector, error, rip, cs, rflags, rsp, ss;
};
extern volatile struct fid_trap fid_trap;
extern volatile uint64_t fid_out[8];
extern char fid_probe_ret[];

/* Declares probe (name) with assembly (body); a RET follows. */
#define FID_PROBE(name, body)                                                                   \
	__asm__(".text\n.globl " #name "\n.type " #name ",@function\n" #name ":\n" body             \
		"\n\tret\n");                                                                   \
	extern char name[]

/* Runs (probe)(a0, a1) at CPL0, or at CPL3 entered by IRETQ with (rflags). Clears fid_trap and
 * fid_out first; returns the probe's RAX (0 when it faulted). */
uint64_t fid_run0(const char *probe, uint64_t a0, uint64_t a1);
uint64_t fid_run3(const char *probe, uint64_t a0, uint64_t a1, uint64_t rflags);

/* ---- the case table ---- */
enum fid_class { FID_PRIV, FID_SENS, FID_INNOC };
struct fid_case {
	const char *id;
	enum fid_class cls;
	const char *rule; /* SDM volume and section (and APM where vendors differ) */
	void (*fn)(const struct fid_case *c);
};
extern const struct fid_case fid_sensitive_cases[], fid_priv_cases[], fid_intercept_cases[];
extern const unsigned int fid_sensitive_count, fid_priv_count, fid_intercept_count;

/* Outcomes, one per case. */
void fid_pass(const struct fid_case *c);
void fid_fail(const struct fid_case *c, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void fid_skip(const struct fid_case *c, const char *why);
/* The probe's single event must be (vector) with error code (error) (NO_FAULT: none at all).
 * Reports PASS or FAIL fault; returns true on PASS. */
bool fid_expect_fault(const struct fid_case *c, uint64_t vector, uint64_t error);
/* No event: true; otherwise reports FAIL fault and returns false (the caller then returns). */
bool fid_no_fault(const struct fid_case *c);
/* Reports PASS when (got == want) else FAIL result naming (what). */
void fid_expect_eq(const struct fid_case *c, const char *what, uint64_t want, uint64_t got);

/* ---- CPU helpers (fid_cpu.c) ---- */
void fid_cpu_init(void);
void fid_wrmsr(uint32_t msr, uint64_t v);
uint64_t fid_read_cr0(void);
uint64_t fid_read_cr4(void);
/* Writes CR4; returns false (and leaves CR4 alone) when the CPU refused with #GP. */
bool fid_write_cr4(uint64_t v);
void fid_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]);
bool fid_cpu_has(uint32_t leaf, uint32_t sub, int reg, int bit); /* reg 0..3 = EAX..EDX */
bool fid_vendor_amd(void);
/* What the guest loaded, for the store instructions to be compared with. */
struct fid_dtr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));
extern struct fid_dtr fid_gdtr, fid_idtr;
uint64_t fid_gdt_entry(unsigned int sel);
const char *fid_vec_name(uint64_t v);

#endif
