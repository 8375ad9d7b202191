/* token_bucket.h: Firecracker's rate limiter arithmetic (RateLimiter {bandwidth, ops}, each a
 * TokenBucket {size, one_time_burst, refill_time}), pure: the caller passes the time, so every
 * case is unit-tested without sleeping. The loop-driven wrapper is core/rate_limiter.h.
 *
 * A bucket holds up to (size) tokens and starts full; it refills continuously at size tokens
 * per refill_time. (one_time_burst) tokens are spent first and never come back. A request of
 * more tokens than (size) is served once the bucket is full and leaves it in debt, so the
 * long-run rate still holds (Firecracker serves it at once and blocks the limiter for the
 * excess; waiting for a full bucket keeps the rate exact). */
#ifndef MVM_CORE_TOKEN_BUCKET_H
#define MVM_CORE_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

/* Largest size, burst and refill time accepted: far beyond any real device, small enough that
 * the arithmetic below cannot overflow (size * refill_ns fits in 128 bits with room). */
#define TB_MAX_TOKENS	 (1ull << 53)
#define TB_MAX_REFILL_MS (1ull << 32)	/* ~50 days */

/* One bucket as configured. size 0 means no limit (Firecracker's TokenBucket::new() returns
 * None for a zero size or refill time; mvm's front ends refuse a zero refill time with a
 * non-zero size instead of silently dropping the limit). */
struct tb_config {
	uint64_t size;
	uint64_t one_time_burst;
	uint64_t refill_ms;
};

/* Firecracker's RateLimiter: bytes and operations; either may be off. */
struct rl_config {
	struct tb_config bw;
	struct tb_config ops;
};

/* NULL, or why (c) is not a valid bucket ("refill time is 0", ...). */
const char *tb_config_check(const struct tb_config *c);
static inline bool tb_config_on(const struct tb_config *c)
{
	return c->size != 0;
}
static inline bool rl_config_on(const struct rl_config *c)
{
	return tb_config_on(&c->bw) || tb_config_on(&c->ops);
}

struct token_bucket {
	uint64_t size;		/* 0: unlimited, every request passes */
	uint64_t burst;		/* one-time burst left */
	uint64_t refill_ns;	/* time to refill (size) tokens */
	int64_t budget;		/* tokens now, at most size; below 0 after an oversize request */
	uint64_t last_ns;	/* time up to which refills are accounted */
};

/* Sets (tb) up from a checked (c), full, at time (now_ns). */
void tb_init(struct token_bucket *tb, const struct tb_config *c, uint64_t now_ns);
/* Refills for the time up to (now_ns), then says whether (tokens) can be taken now. */
bool tb_can(struct token_bucket *tb, uint64_t tokens, uint64_t now_ns);
/* Takes (tokens) after tb_can() said yes at the same time. */
void tb_take(struct token_bucket *tb, uint64_t tokens);
/* After tb_can() said no at (now_ns): nanoseconds from then until it would say yes (at least
 * 1). */
uint64_t tb_wait_ns(const struct token_bucket *tb, uint64_t tokens, uint64_t now_ns);

struct rate_limit {
	struct token_bucket bw, ops;
};

void rl_init(struct rate_limit *rl, const struct rl_config *c, uint64_t now_ns);
/* Takes (bytes) from the bandwidth bucket and (ops) from the operations bucket, both or
 * neither (a request refused by one bucket costs the other nothing). Returns 0 when taken,
 * else the nanoseconds until both buckets could serve it. */
uint64_t rl_consume(struct rate_limit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns);

#endif
