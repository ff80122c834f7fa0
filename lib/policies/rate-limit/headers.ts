import { InvalidArgumentError } from '../../errors.js';
import type { RateLimitDecision, RateLimitRule } from './store.js';

/*
 * The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers, revisions 08 onwards):
 * both are Structured Field Lists (RFC 9651) of one Item per policy, the policy name as an
 * sf-string with integer parameters:
 *   RateLimit-Policy: "create-order";q=10;w=1      (quota, window in seconds)
 *   RateLimit:        "create-order";r=3;t=1       (remaining, seconds until reset)
 */

const NEEDS_ESCAPE = /["\\]/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * Serialises `value` as a Structured Field String: double-quoted, with `"` and `\` escaped.
 *
 * @throws InvalidArgumentError when `value` has characters outside printable ASCII
 *   (0x20–0x7E), which an sf-string cannot carry.
 */
export function sfString(value: string): string {
  if (!PRINTABLE_ASCII.test(value)) {
    throw new InvalidArgumentError(
      `name must be printable ASCII to be sent in a RateLimit header, got ${JSON.stringify(value)}`,
    );
  }
  return NEEDS_ESCAPE.test(value) ? `"${value.replace(/["\\]/g, '\\$&')}"` : `"${value}"`;
}

/** The quota a rule advertises: `limit + burst` for GCRA (its capacity), `limit` otherwise. */
export function ruleQuota(rule: RateLimitRule): number {
  return rule.algorithm === 'gcra' ? rule.limit + rule.burst : rule.limit;
}

/**
 * The `RateLimit-Policy` field value, e.g. `"create-order";q=10;w=1`: `q` the quota (see
 * {@link ruleQuota}), `w` the window in whole seconds, rounded up, at least 1. Constant per
 * limiter: compute it once.
 *
 * @throws InvalidArgumentError when `name` is not printable ASCII.
 */
export function rateLimitPolicyHeader(name: string, rule: RateLimitRule): string {
  const window = Math.max(1, Math.ceil(rule.windowMs / 1000));
  return `${sfString(name)};q=${ruleQuota(rule)};w=${window}`;
}

/**
 * The `RateLimit` field value, e.g. `"create-order";r=3;t=1`: `r` the requests remaining,
 * `t` the seconds until the quota is fully restored, rounded up.
 *
 * @throws InvalidArgumentError when `name` is not printable ASCII.
 */
export function rateLimitHeader(name: string, decision: RateLimitDecision): string {
  return `${sfString(name)};r=${decision.remaining};t=${Math.ceil(decision.resetMs / 1000)}`;
}

/**
 * The `Retry-After` value in whole seconds: `retryAfterMs` rounded up, at least 1 when the
 * request was denied (a 0 would invite an immediate retry); 0 when it was allowed.
 */
export function retryAfterSeconds(decision: RateLimitDecision): number {
  if (decision.allowed) return 0;
  return Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
}

/** The de-facto `X-RateLimit-*` headers that older clients read. */
export interface LegacyRateLimitHeaders {
  'X-RateLimit-Limit': string;
  'X-RateLimit-Remaining': string;
  /** When the quota is fully restored, in seconds since the Unix epoch, rounded up. */
  'X-RateLimit-Reset': string;
}

/**
 * The legacy `X-RateLimit-Limit`, `-Remaining` and `-Reset` headers. `nowMs` is wall-clock
 * time (`Date.now()`), since `-Reset` is an absolute epoch time.
 */
export function legacyRateLimitHeaders(
  decision: RateLimitDecision,
  nowMs: number,
): LegacyRateLimitHeaders {
  return {
    'X-RateLimit-Limit': String(decision.limit),
    'X-RateLimit-Remaining': String(decision.remaining),
    'X-RateLimit-Reset': String(Math.ceil((nowMs + decision.resetMs) / 1000)),
  };
}
