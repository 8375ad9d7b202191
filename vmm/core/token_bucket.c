/* token_bucket.c: token buckets with a one-time burst, Firecracker's semantics (token_bucket.h),
 * with the time passed in. */
#include "core/token_bucket.h"

#define NS_PER_MS 1000000ull

const char *tb_config_check(const struct tb_config *c)
{
	if (c->size > TB_MAX_TOKENS)
		return "size is too large";
	if (c->one_time_burst > TB_MAX_TOKENS)
		return "one_time_burst is too large";
	if (c->refill_ms > TB_MAX_REFILL_MS)
		return "refill_time is too large";
	if (c->size && !c->refill_ms)
		return "refill_time is 0 (a bucket that never refills)";
	if (!c->size && c->one_time_burst)
		return "one_time_burst without a size";
	return 0;
}

void tb_init(struct token_bucket *tb, const struct tb_config *c, uint64_t now_ns)
{
	tb->size = c->size;
	tb->burst = c->size ? c->one_time_burst : 0;
	tb->refill_ns = c->refill_ms * NS_PER_MS;
	tb->budget = (int64_t)c->size;
	tb->last_ns = now_ns;
}

/* Adds the tokens earned since last_ns. Whole tokens only: last_ns moves by the time those
 * took, rounded up, so the fraction of a token carries over to the next call and no nanosecond
 * counts twice (as Firecracker's auto_replenish()). */
static void refill(struct token_bucket *tb, uint64_t now_ns)
{
	unsigned __int128 earned;
	uint64_t missing;

	if (now_ns <= tb->last_ns)
		return;
	missing = (uint64_t)((int64_t)tb->size - tb->budget);
	earned = (unsigned __int128)(now_ns - tb->last_ns) * tb->size / tb->refill_ns;
	if (earned >= missing) {
		tb->budget = (int64_t)tb->size;
		tb->last_ns = now_ns;
		return;
	}
	if (!earned)
		return;
	tb->budget += (int64_t)earned;
	tb->last_ns += (uint64_t)((earned * tb->refill_ns + tb->size - 1) / tb->size);
}

/* The tokens (tokens) leaves to take from the budget once the one-time burst paid its part. */
static uint64_t after_burst(const struct token_bucket *tb, uint64_t tokens)
{
	return tokens > tb->burst ? tokens - tb->burst : 0;
}

bool tb_can(struct token_bucket *tb, uint64_t tokens, uint64_t now_ns)
{
	uint64_t need;

	if (!tb->size)
		return true;
	need = after_burst(tb, tokens);
	if (!need)
		return true;
	refill(tb, now_ns);
	/* Oversize: served from a full bucket, into debt (token_bucket.h). */
	if (need > tb->size)
		return tb->budget == (int64_t)tb->size;
	return tb->budget >= (int64_t)need;
}

void tb_take(struct token_bucket *tb, uint64_t tokens)
{
	uint64_t need;

	if (!tb->size)
		return;
	need = after_burst(tb, tokens);
	tb->burst -= tokens - need;
	tb->budget -= (int64_t)need;
}

uint64_t tb_wait_ns(const struct token_bucket *tb, uint64_t tokens, uint64_t now_ns)
{
	uint64_t need = after_burst(tb, tokens), deficit, since;
	unsigned __int128 ns;

	if (need > tb->size)
		need = tb->size;
	if (!tb->size || tb->budget >= (int64_t)need)
		return 1;
	deficit = (uint64_t)((int64_t)need - tb->budget);
	/* The time (deficit) tokens take from last_ns, less what has passed since (less than one
	 * token's time: tb_can() refilled up to now_ns). */
	ns = ((unsigned __int128)deficit * tb->refill_ns + tb->size - 1) / tb->size;
	since = now_ns > tb->last_ns ? now_ns - tb->last_ns : 0;
	if (ns > since)
		ns -= since;
	else
		ns = 1;
	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

void rl_init(struct rate_limit *rl, const struct rl_config *c, uint64_t now_ns)
{
	tb_init(&rl->bw, &c->bw, now_ns);
	tb_init(&rl->ops, &c->ops, now_ns);
}

uint64_t rl_consume(struct rate_limit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns)
{
	bool bw_ok = tb_can(&rl->bw, bytes, now_ns), ops_ok = tb_can(&rl->ops, ops, now_ns);
	uint64_t wait = 0, w;

	if (bw_ok && ops_ok) {
		tb_take(&rl->bw, bytes);
		tb_take(&rl->ops, ops);
		return 0;
	}
	if (!bw_ok)
		wait = tb_wait_ns(&rl->bw, bytes, now_ns);
	if (!ops_ok && (w = tb_wait_ns(&rl->ops, ops, now_ns)) > wait)
		wait = w;
	return wait;
}
