import type { RateLimitRule, RateLimitStep } from './store.js';

/*
 * GCRA (the generic cell rate algorithm, as in redis-cell and throttled): one number per key,
 * the theoretical arrival time (TAT) of the next request at the sustained rate.
 *
 * Time is counted in whole microseconds. With fractional milliseconds (1000 / 3 = 333.33…)
 * repeated additions drift by an ulp per request, so a burst of `limit` could come out one
 * short; integers below 2^53 are exact, Redis `TIME` returns microseconds, and a Lua script
 * (doubles) can replay the same arithmetic without drift. 2^53 µs since the epoch is in 2255.
 */

/**
 * The emission interval T = `windowMs / limit`, in whole microseconds (at least 1). Rounding
 * changes the rate by at most 0.5 µs per request; the {@link RateLimiter} refuses rules whose
 * interval would be below 1 µs.
 */
export function gcraIntervalUs(rule: RateLimitRule): number {
  const interval = Math.round((rule.windowMs * 1000) / rule.limit);
  return interval < 1 ? 1 : interval;
}

/**
 * Decides one request of `cost` under GCRA. Sustained rate `limit` per `windowMs`, capacity
 * `limit + burst`: a fresh key may send `limit + burst` at once, then one per interval.
 * A denied request leaves the state untouched.
 *
 * @param tat the key's stored TAT (integer µs on the caller's clock), or `undefined` for none.
 * @param nowMs the current time in milliseconds on the same clock.
 * @param cost integer ≥ 1; callers ensure it does not exceed `limit + burst`.
 * @returns the decision and the TAT to store (`undefined` when denied with no prior state).
 */
export function gcra(
  tat: number | undefined,
  nowMs: number,
  rule: RateLimitRule,
  cost = 1,
): RateLimitStep {
  const now = Math.round(nowMs * 1000);
  const interval = gcraIntervalUs(rule);
  const quota = rule.limit + rule.burst;
  // Delay-variation tolerance plus one interval: how far ahead of now the TAT may run.
  const capacity = quota * interval;
  const base = tat === undefined || tat < now ? now : tat;
  const next = base + cost * interval;
  if (next - now <= capacity) {
    const remaining = Math.floor((capacity - (next - now)) / interval);
    return {
      decision: {
        allowed: true,
        limit: quota,
        remaining,
        resetMs: Math.ceil((next - now) / 1000),
        refillMs: gcraRefillMs(next - now, remaining, interval, capacity),
        retryAfterMs: 0,
      },
      state: next,
    };
  }
  const remaining = Math.floor((capacity - (base - now)) / interval);
  return {
    decision: {
      allowed: false,
      limit: quota,
      remaining,
      resetMs: Math.ceil((base - now) / 1000),
      refillMs: gcraRefillMs(base - now, remaining, interval, capacity),
      // Rounded up to a whole millisecond so that waiting this long always suffices.
      retryAfterMs: Math.ceil((next - now - capacity) / 1000),
    },
    state: tat,
  };
}

/**
 * Milliseconds until `remaining` grows by one, rounded up: the TAT runs `ahead` µs past now,
 * and each interval it falls back frees one more request. 0 when the quota is already full.
 * For a denied request of cost 1 this equals its `retryAfterMs`.
 */
function gcraRefillMs(
  ahead: number,
  remaining: number,
  interval: number,
  capacity: number,
): number {
  if (ahead <= 0) return 0;
  return Math.ceil(((remaining + 1) * interval - (capacity - ahead)) / 1000);
}

/**
 * The largest stored TAT that no longer matters at `nowMs`: a key whose state is at or below
 * it is back to a full quota and may be dropped. One threshold per sweep, not a call per key.
 */
export function gcraExpiredUpTo(nowMs: number): number {
  return Math.round(nowMs * 1000);
}
