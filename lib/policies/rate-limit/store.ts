/**
 * The rate-limit store interface, and the family's entry point: the pure algorithms and the
 * in-memory store are re-exported from here, so a store written elsewhere (Redis, a local
 * fallback) imports one module.
 */

/** How a limit is enforced. The values are their own names so config formats list the same strings. */
export type RateLimitAlgorithm = 'gcra' | 'fixed-window';

/** A resolved, validated limit (the {@link RateLimiter} builds and freezes one). */
export interface RateLimitRule {
  algorithm: RateLimitAlgorithm;
  /** Requests allowed per window (the sustained rate for GCRA). Integer ≥ 1. */
  limit: number;
  /** Milliseconds, > 0. */
  windowMs: number;
  /** GCRA only: extra requests a fresh client may send at once on top of `limit`. Integer ≥ 0. */
  burst: number;
}

/** The outcome of one `consume`. Every field is a whole number. */
export interface RateLimitDecision {
  allowed: boolean;
  /** The quota reported in headers: `limit + burst` for GCRA, `limit` for a fixed window. */
  limit: number;
  /** Requests of cost 1 left right now (≥ 0). */
  remaining: number;
  /** Milliseconds until the quota is fully restored (fixed window: until the window ends). */
  resetMs: number;
  /**
   * Milliseconds until more quota is available, i.e. until `remaining` grows (GCRA: the next
   * emission interval; fixed window: the window's end); 0 when the quota is full. The
   * `RateLimit` header's `t`. On a denial of cost 1 it equals `retryAfterMs`. Optional for
   * stores written elsewhere: headers then fall back to `retryAfterMs` when denied, `resetMs`
   * when allowed.
   */
  refillMs?: number;
  /** 0 when allowed; otherwise milliseconds until one more request would be allowed. */
  retryAfterMs: number;
}

/**
 * Where counters live. The memory store answers synchronously; a networked store (Redis: one
 * atomic script per decision) returns a promise. Callers must handle both without awaiting a
 * plain value, so the in-memory fast path stays free of microtask hops.
 */
export interface RateLimitStore {
  /** `'memory'`, `'redis'`, …; used in metrics and warnings. */
  readonly kind: string;
  /**
   * Decides one request of `cost` (default 1) for `key` under `rule`, and counts it when
   * allowed; a denied request consumes nothing.
   */
  consume(
    key: string,
    rule: RateLimitRule,
    cost?: number,
  ): RateLimitDecision | Promise<RateLimitDecision>;
  /** Forgets `key`: its next request starts from a full quota. */
  reset(key: string): void | Promise<void>;
  /** Stops background work and releases state. Idempotent. */
  close(): void | Promise<void>;
}

/** A pure algorithm's answer: the decision, and the key's state to store (`undefined`: none). */
export interface RateLimitStep {
  decision: RateLimitDecision;
  state: number | undefined;
}

export { gcra, gcraExpiredUpTo, gcraIntervalUs } from './gcra.js';
export { fixedWindow, fixedWindowExpiredUpTo, fixedWindowSizeUs } from './fixed-window.js';
export { MemoryStore } from './memory-store.js';
export type { MemoryStoreOptions } from './memory-store.js';
