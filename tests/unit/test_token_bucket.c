/* test_token_bucket.c: core/token_bucket.h with the time injected: refill rate and fractions,
 * the one-time burst, oversize requests served from a full bucket into debt, the wait the
 * bucket asks for, both buckets of a limiter taken together or not at all, the config checks. */
#include "core/token_bucket.h"
#include "test.h"

#define MS 1000000ull
#define SEC (1000 * MS)

static void test_refill(void)
{
	struct tb_config c = {.size = 1000, .refill_ms = 1000}; /* 1000 tokens/s */
	struct token_bucket tb;
	uint64_t t = 5 * SEC;

	tb_init(&tb, &c, t);
	CHECK(tb_can(&tb, 1000, t)); /* starts full */
	tb_take(&tb, 1000);
	CHECK(!tb_can(&tb, 1, t));
	CHECK_EQ(tb_wait_ns(&tb, 1, t), 1 * MS);
	CHECK_EQ(tb_wait_ns(&tb, 500, t), 500 * MS);
	/* 0.9999 ms earns nothing; 1 ms earns one token. */
	CHECK(!tb_can(&tb, 1, t + MS - 1));
	CHECK(tb_can(&tb, 1, t + MS));
	tb_take(&tb, 1);
	/* Fractions carry: 1.5 ms then 1.5 ms more earn 3 tokens, not 2. */
	CHECK(tb_can(&tb, 1, t + MS + 1500000));
	CHECK(!tb_can(&tb, 2, t + MS + 1500000));
	CHECK(tb_can(&tb, 3, t + MS + 3000000));
	/* Never more than size, however long it waited. */
	CHECK(tb_can(&tb, 1000, t + 100 * SEC));
	CHECK(!tb_can(&tb, 1001, t + 100 * SEC) || tb.budget == 1000);
	tb_take(&tb, 1000);
	CHECK(!tb_can(&tb, 1, t + 100 * SEC));
	/* Time going backwards (it does not, but) earns nothing and breaks nothing. */
	CHECK(!tb_can(&tb, 1, t));
	/* The wait counts from now, not from the last refill. */
	tb_init(&tb, &c, t);
	tb_take(&tb, 1000);
	CHECK(!tb_can(&tb, 500, t + 200 * MS + 1));
	CHECK_EQ(tb_wait_ns(&tb, 500, t + 200 * MS + 1), 300 * MS - 1);
}

static void test_rate(void)
{
	/* 64 KiB per 100 ms; take 4 KiB whenever the bucket allows, for 10 s of simulated time:
	 * what went through is 10 s worth plus the initial bucket, within one request. */
	struct tb_config c = {.size = 65536, .refill_ms = 100};
	struct token_bucket tb;
	uint64_t t = 0, sent = 0;

	tb_init(&tb, &c, t);
	while (t < 10 * SEC) {
		if (tb_can(&tb, 4096, t)) {
			tb_take(&tb, 4096);
			sent += 4096;
		} else {
			t += tb_wait_ns(&tb, 4096, t);
		}
	}
	CHECK(sent <= 65536ull * 100 + 65536 + 4096);
	CHECK(sent >= 65536ull * 100 + 65536 - 4096);
}

static void test_burst(void)
{
	struct tb_config c = {.size = 100, .one_time_burst = 250, .refill_ms = 100};
	struct token_bucket tb;

	tb_init(&tb, &c, 0);
	/* The burst pays first, then the budget, and it never comes back. */
	CHECK(tb_can(&tb, 200, 0));
	tb_take(&tb, 200);
	CHECK_EQ(tb.burst, 50);
	CHECK_EQ(tb.budget, 100);
	CHECK(tb_can(&tb, 150, 0)); /* 50 from the burst, 100 from the budget */
	tb_take(&tb, 150);
	CHECK_EQ(tb.burst, 0);
	CHECK_EQ(tb.budget, 0);
	CHECK(!tb_can(&tb, 1, 0));
	CHECK(tb_can(&tb, 100, 100 * MS));
	tb_take(&tb, 100);
	CHECK(!tb_can(&tb, 1, 100 * MS));
}

static void test_oversize(void)
{
	struct tb_config c = {.size = 1000, .refill_ms = 1000};
	struct token_bucket tb;

	tb_init(&tb, &c, 0);
	tb_take(&tb, 1);
	/* More than the bucket holds: only from a full bucket. */
	CHECK(!tb_can(&tb, 3000, 0));
	CHECK_EQ(tb_wait_ns(&tb, 3000, 0), 1 * MS);
	CHECK(tb_can(&tb, 3000, 1 * MS));
	tb_take(&tb, 3000);
	CHECK_EQ(tb.budget, -2000);
	/* The debt is paid at the refill rate: 2 s to reach 0, 3 s to serve 1000 again. */
	CHECK(!tb_can(&tb, 1, 1 * MS + 2 * SEC));
	CHECK(tb_can(&tb, 1, 1 * MS + 2 * SEC + MS));
	CHECK_EQ(tb_wait_ns(&tb, 1000, 1 * MS + 2 * SEC + MS), 999 * MS);
	CHECK(!tb_can(&tb, 3000, 1 * MS + 2 * SEC + 500 * MS));
	CHECK(tb_can(&tb, 3000, 1 * MS + 3 * SEC));
}

static void test_unlimited(void)
{
	struct tb_config c = {0};
	struct token_bucket tb;

	tb_init(&tb, &c, 0);
	for (int i = 0; i < 1000; i++) {
		CHECK(tb_can(&tb, UINT64_MAX / 2, 0));
		tb_take(&tb, UINT64_MAX / 2);
	}
}

static void test_limiter(void)
{
	struct rl_config c = {.bw = {.size = 1000, .refill_ms = 1000},
			      .ops = {.size = 2, .refill_ms = 1000}};
	struct rate_limit rl;

	rl_init(&rl, &c, 0);
	CHECK_EQ(rl_consume(&rl, 100, 1, 0), 0);
	/* Refused by the bandwidth bucket: the ops bucket keeps its token. */
	CHECK_EQ(rl_consume(&rl, 950, 1, 0), 50 * MS);
	CHECK_EQ(rl.ops.budget, 1);
	CHECK_EQ(rl_consume(&rl, 900, 1, 0), 0);
	/* Refused by the ops bucket: the bytes stay. The wait is the longer of the two. */
	CHECK_EQ(rl_consume(&rl, 0, 1, 0), 500 * MS);
	CHECK_EQ(rl.bw.budget, 0);
	CHECK_EQ(rl_consume(&rl, 400, 1, 100 * MS), 400 * MS);
	CHECK_EQ(rl_consume(&rl, 400, 1, 500 * MS), 0);
	/* Only ops limited. */
	c.bw = (struct tb_config){0};
	rl_init(&rl, &c, 0);
	CHECK_EQ(rl_consume(&rl, 1ull << 40, 1, 0), 0);
	CHECK_EQ(rl_consume(&rl, 1ull << 40, 1, 0), 0);
	CHECK(rl_consume(&rl, 0, 1, 0) > 0);
}

static void test_config(void)
{
	struct tb_config c = {.size = 1, .refill_ms = 1};

	CHECK(!tb_config_check(&c));
	c.refill_ms = 0;
	CHECK(tb_config_check(&c));
	c = (struct tb_config){0};
	CHECK(!tb_config_check(&c)); /* off */
	c.one_time_burst = 5;
	CHECK(tb_config_check(&c));
	c = (struct tb_config){.size = TB_MAX_TOKENS + 1, .refill_ms = 1};
	CHECK(tb_config_check(&c));
	c = (struct tb_config){.size = 1, .refill_ms = TB_MAX_REFILL_MS + 1};
	CHECK(tb_config_check(&c));
	c = (struct tb_config){.size = 1, .one_time_burst = TB_MAX_TOKENS + 1, .refill_ms = 1};
	CHECK(tb_config_check(&c));
	/* The extremes accepted do not overflow: a full refill time fills the largest bucket. */
	c = (struct tb_config){.size = TB_MAX_TOKENS, .refill_ms = TB_MAX_REFILL_MS};
	{
		struct token_bucket tb;

		tb_init(&tb, &c, 0);
		tb_take(&tb, TB_MAX_TOKENS);
		CHECK(!tb_can(&tb, TB_MAX_TOKENS, TB_MAX_REFILL_MS * MS - 1));
		/* (A fraction of a token is lost at each partial refill: the time is rounded
		 * up, as Firecracker's.) */
		CHECK(tb_can(&tb, TB_MAX_TOKENS, TB_MAX_REFILL_MS * MS + 1));
		CHECK(tb_can(&tb, 1, UINT64_MAX));
	}
}

int main(void)
{
	test_refill();
	test_rate();
	test_burst();
	test_oversize();
	test_unlimited();
	test_limiter();
	test_config();
	return t_done();
}
