/* fid_main.c: runs the fidelity cases in table order and prints one outcome per case.
 * cmdline: start=N skips the cases before index N (the runner restarts there after a case
 * hung or stopped the VMM); stop=N ends before index N. The guest exits 0 after the last case
 * ("FIDELITY-DONE <cases run>"): pass or fail is the runner's to judge. */
#include "fid.h"

static const char *const class_names[] = {"privileged", "sensitive", "innocuous"};
static unsigned int outcomes;

static void outcome(const struct fid_case *c, const char *what)
{
	printf("CASE %s %s %s\n", c->id, class_names[c->cls], what);
	outcomes++;
}

void fid_pass(const struct fid_case *c)
{
	outcome(c, "PASS");
}

void fid_fail(const struct fid_case *c, const char *kind, const char *fmt, ...)
{
	char detail[200], line[240];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "FAIL %s %s", kind, detail);
	outcome(c, line);
}

void fid_skip(const struct fid_case *c, const char *why)
{
	char line[160];

	snprintf(line, sizeof(line), "SKIP %s", why);
	outcome(c, line);
}

/* "#GP(0x10)", "#UD", "INT(0x80)", "none". */
static void event_name(char *buf, size_t size, uint64_t vector, uint64_t error, bool with_error)
{
	if (vector == NO_FAULT)
		snprintf(buf, size, "none");
	else if (vector >= 32)
		snprintf(buf, size, "INT(0x%lx)", (unsigned long)vector);
	else if (with_error)
		snprintf(buf, size, "%s(0x%lx)", fid_vec_name(vector), (unsigned long)error);
	else
		snprintf(buf, size, "%s", fid_vec_name(vector));
}

/* Exceptions that push an error code (SDM Vol. 3A 6.15); software INT n never does. */
static bool has_error_code(uint64_t v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21;
}

bool fid_expect_fault(const struct fid_case *c, uint64_t vector, uint64_t error)
{
	char want[32], got[32];
	bool ok;

	if (vector == NO_FAULT)
		ok = fid_trap.count == 0;
	else
		ok = fid_trap.count == 1 && fid_trap.vector == vector &&
		     (!has_error_code(vector) || fid_trap.error == error);
	if (ok) {
		fid_pass(c);
		return true;
	}
	event_name(want, sizeof(want), vector, error, has_error_code(vector));
	event_name(got, sizeof(got), fid_trap.vector, fid_trap.error,
		   has_error_code(fid_trap.vector));
	fid_fail(c, "fault", "expected=%s got=%s rip=0x%lx events=%lu", want, got,
		 (unsigned long)fid_trap.rip, (unsigned long)fid_trap.count);
	return false;
}

bool fid_no_fault(const struct fid_case *c)
{
	char got[32];

	if (fid_trap.count == 0)
		return true;
	event_name(got, sizeof(got), fid_trap.vector, fid_trap.error,
		   has_error_code(fid_trap.vector));
	fid_fail(c, "fault", "expected=none got=%s rip=0x%lx", got, (unsigned long)fid_trap.rip);
	return false;
}

void fid_expect_eq(const struct fid_case *c, const char *what, uint64_t want, uint64_t got)
{
	if (want == got)
		fid_pass(c);
	else
		fid_fail(c, "result", "expected=%s:0x%lx got=%s:0x%lx", what, (unsigned long)want,
			 what, (unsigned long)got);
}

static const struct {
	const struct fid_case *cases;
	const unsigned int *count;
} groups[] = {
	{fid_sensitive_cases, &fid_sensitive_count},
	{fid_priv_cases, &fid_priv_count},
	{fid_intercept_cases, &fid_intercept_count},
};

void guest_main(const struct hvm_start_info *si)
{
	uint64_t start = cmdline_uint("start", 0), stop = cmdline_uint("stop", ~0ull);
	unsigned int index = 0, run = 0;
	uint64_t cr4, efer;

	fid_cpu_init();
	cr4 = fid_read_cr4();
	efer = rdmsr(MSR_EFER) | EFER_SCE;
	fid_wrmsr(MSR_EFER, efer);
	printf("FIDELITY-START cr4=0x%lx\n", (unsigned long)cr4);
	for (unsigned int g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		for (unsigned int i = 0; i < *groups[g].count; i++, index++) {
			const struct fid_case *c = &groups[g].cases[i];
			unsigned int before = outcomes;

			if (index < start || index >= stop)
				continue;
			printf("CASE-BEGIN %u %s %s %s\n", index, c->id, class_names[c->cls],
			       c->rule);
			c->fn(c);
			if (outcomes != before + 1)
				fid_fail(c, "internal", "expected=1-outcome got=%u",
					 outcomes - before);
			/* Each case starts from the same CPU state. */
			if (fid_read_cr4() != cr4)
				fid_write_cr4(cr4);
			if (rdmsr(MSR_EFER) != efer)
				fid_wrmsr(MSR_EFER, efer);
			run++;
		}
	}
	printf("FIDELITY-DONE %u\n", run);
	guest_exit(0);
}
