import type { RateLimitRule, RateLimitStep } from './store.js';

/*
 * Fixed window: windows aligned to multiples of `windowMs` since the clock's zero (so every
 * instance of a service agrees on the boundaries), at most `limit` requests in each.
 *
 * The state is one number, `windowStartUs + count - 1`, in whole microseconds (a stored key
 * has counted at least one request). `count - 1` stays inside the window's span because the
 * RateLimiter keeps `limit` ≤ the window in µs, so the encoding is unambiguous, a window's
 * start is readable without knowing the rule, and a store can tell an expired key knowing
 * only the longest window in use.
 */

/** The window length in whole microseconds (at least 1). */
export function fixedWindowSizeUs(rule: RateLimitRule): number {
  const size = Math.round(rule.windowMs * 1000);
  return size < 1 ? 1 : size;
}

/**
 * Decides one request of `cost` under a fixed window of `limit` per `windowMs`. A denied
 * request leaves the state untouched.
 *
 * @param state the key's stored state (`windowStartUs + count - 1`), or `undefined` for none.
 * @param nowMs the current time in milliseconds; windows are aligned to multiples of
 *   `windowMs` on this clock.
 * @param cost integer ≥ 1; callers ensure it does not exceed `limit`.
 * @returns the decision and the state to store (`undefined` when denied with no prior state).
 */
export function fixedWindow(
  state: number | undefined,
  nowMs: number,
  rule: RateLimitRule,
  cost = 1,
): RateLimitStep {
  const now = Math.round(nowMs * 1000);
  const size = fixedWindowSizeUs(rule);
  // `%` on doubles is exact; the correction keeps windows aligned for clocks below zero.
  let offset = now % size;
  if (offset < 0) offset += size;
  const start = now - offset;
  // A state from an earlier window (or, after the clock stepped back, a later one) is stale.
  const used =
    state !== undefined && state >= start && state - start < size ? state - start + 1 : 0;
  const resetMs = Math.ceil((size - offset) / 1000);
  if (used + cost <= rule.limit) {
    return {
      decision: {
        allowed: true,
        limit: rule.limit,
        remaining: rule.limit - used - cost,
        resetMs,
        // Nothing comes back before the window ends.
        refillMs: resetMs,
        retryAfterMs: 0,
      },
      state: start + used + cost - 1,
    };
  }
  return {
    decision: {
      allowed: false,
      limit: rule.limit,
      // Above the limit only if the rule shrank while the key was live.
      remaining: used < rule.limit ? rule.limit - used : 0,
      resetMs,
      refillMs: resetMs,
      retryAfterMs: resetMs,
    },
    state,
  };
}

/**
 * The largest stored state whose window has certainly ended at `nowMs`. `maxWindowMs` is an
 * upper bound on the key's window (the longest window the store has seen), which is all a
 * store keeping one number per key knows. A key is never dropped early, and late by at most
 * the difference between the longest window and its own, plus `count - 1` µs. One threshold
 * per sweep, not a call per key.
 */
export function fixedWindowExpiredUpTo(nowMs: number, maxWindowMs: number): number {
  // A state's window started at or before the state itself and lasts at most maxWindowMs.
  return Math.round(nowMs * 1000) - Math.round(maxWindowMs * 1000);
}
