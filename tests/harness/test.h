/* test.h: a tiny harness for mvm's C tests. Exit codes as in liburing's test/ and automake:
 * 0 pass, 1 fail, 77 skip. With MVM_REQUIRE_KVM=1 in the environment a skip becomes a failure,
 * so CI machines, which have /dev/kvm, never pass by skipping. */
#ifndef MVM_TEST_H
#define MVM_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_EXIT_PASS 0
#define T_EXIT_FAIL 1
#define T_EXIT_SKIP 77

static int t_failures;
static int t_checks;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		t_checks++;                                                                        \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
			t_failures++;                                                              \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		unsigned long long a_ = (unsigned long long)(a);                                   \
		unsigned long long b_ = (unsigned long long)(b);                                   \
		t_checks++;                                                                        \
		if (a_ != b_) {                                                                    \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (0x%llx != 0x%llx)\n",    \
				__FILE__, __LINE__, #a, #b, a_, b_);                               \
			t_failures++;                                                              \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		t_checks++;                                                                        \
		if (!a_ || !b_ || strcmp(a_, b_)) {                                                \
			fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__,    \
				__LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                 \
			t_failures++;                                                              \
		}                                                                                  \
	} while (0)

/* Ends a test: prints a summary and returns the exit code. */
static inline int t_done(void)
{
	if (t_checks == 0) {
		fprintf(stderr, "no checks ran\n");
		return T_EXIT_FAIL;
	}
	fprintf(stderr, "%d checks, %d failed\n", t_checks, t_failures);
	return t_failures ? T_EXIT_FAIL : T_EXIT_PASS;
}

/* Skips the test, or fails it when MVM_REQUIRE_KVM=1. */
static inline int t_skip(const char *why)
{
	const char *req = getenv("MVM_REQUIRE_KVM");

	if (req && !strcmp(req, "1")) {
		fprintf(stderr, "FAIL (skip not allowed with MVM_REQUIRE_KVM=1): %s\n", why);
		return T_EXIT_FAIL;
	}
	fprintf(stderr, "SKIP: %s\n", why);
	return T_EXIT_SKIP;
}

#endif
