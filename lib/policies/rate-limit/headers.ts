import { InvalidArgumentError } from '../../errors.js';
import type { RateLimitDecision, RateLimitRule } from './store.js';

/*
 * The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers, revisions 08 onwards;
 * `t` as revision 10 defines it): both are Structured Field Lists (RFC 9651) of one Item per
 * policy, the policy name as an sf-string with integer parameters:
 *   RateLimit-Policy: "create-order";q=10;w=1      (quota, window in seconds)
 *   RateLimit:        "create-order";r=3;t=1       (remaining, seconds until more quota)
 * Every limit that applies to a response adds its items to both lists.
 *
 * A GCRA limit with a burst is two items: the sustained rate (`limit` per window), which a
 * client can pace to without ever being refused, and `<name>-burst`, the bucket of
 * `limit + burst` and the time it takes to refill. Advertising `limit + burst` per window
 * would invite a rate the limiter refuses.
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

/** A GCRA rule's capacity, `limit + burst`; a fixed window's `limit`. */
export function ruleQuota(rule: RateLimitRule): number {
  return rule.algorithm === 'gcra' ? rule.limit + rule.burst : rule.limit;
}

function hasBurst(rule: RateLimitRule): boolean {
  return rule.algorithm === 'gcra' && rule.burst > 0;
}

/** Whole seconds, rounded up so an advertised rate is never above the real one; at least 1. */
function windowSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * The `RateLimit-Policy` field value, e.g. `"create-order";q=10;w=1`: `q` the rule's `limit`,
 * `w` its window in whole seconds, rounded up, at least 1. A GCRA rule with a burst adds a
 * second item, e.g. `"create-order-burst";q=15;w=2`: the `limit + burst` a fresh client may
 * send at once, over the time that many take to come back at the sustained rate. Constant
 * per limiter: compute it once.
 *
 * @throws InvalidArgumentError when `name` is not printable ASCII.
 */
export function rateLimitPolicyHeader(name: string, rule: RateLimitRule): string {
  const sustained = `${sfString(name)};q=${rule.limit};w=${windowSeconds(rule.windowMs)}`;
  if (!hasBurst(rule)) return sustained;
  const quota = rule.limit + rule.burst;
  const refill = windowSeconds((rule.windowMs * quota) / rule.limit);
  return `${sustained}, ${sfString(`${name}-burst`)};q=${quota};w=${refill}`;
}

/**
 * Seconds until more quota is available, rounded up: the `t` of the `RateLimit` header. On a
 * denial it is the time until the request would be allowed, so it equals `Retry-After`.
 */
function refillSeconds(decision: RateLimitDecision): number {
  if (!decision.allowed) {
    return Math.max(retryAfterSeconds(decision), Math.ceil((decision.refillMs ?? 0) / 1000));
  }
  return Math.ceil((decision.refillMs ?? decision.resetMs) / 1000);
}

/**
 * The `RateLimit` field value, e.g. `"create-order";r=3;t=1`: `r` the requests remaining,
 * `t` the seconds until more quota is available (rounded up; equal to `Retry-After` when
 * denied). Given the `rule` of a GCRA limit with a burst, it also lists the `<name>-burst`
 * item of {@link rateLimitPolicyHeader}, and caps the sustained item's `r` at its `q`.
 *
 * @throws InvalidArgumentError when `name` is not printable ASCII.
 */
export function rateLimitHeader(
  name: string,
  decision: RateLimitDecision,
  rule?: RateLimitRule,
): string {
  const t = refillSeconds(decision);
  const { remaining } = decision;
  if (rule === undefined || !hasBurst(rule)) return `${sfString(name)};r=${remaining};t=${t}`;
  const sustained = remaining < rule.limit ? remaining : rule.limit;
  return `${sfString(name)};r=${sustained};t=${t}, ${sfString(`${name}-burst`)};r=${remaining};t=${t}`;
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
