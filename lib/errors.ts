/**
 * Every error the pack raises on purpose. Each has a stable `code`, an HTTP `status` and a
 * `Symbol.for` brand, so `isResilienceError()` and the `is*` guards still recognise an error
 * raised by a second installed copy of the pack (undici's `core/errors.js` does the same).
 */

const BRAND = Symbol.for('express-resilience.error');

/** The stable codes of {@link ResilienceError}s; part of the public contract. */
export type ResilienceErrorCode =
  | 'ERR_RATE_LIMITED'
  | 'ERR_BREAKER_OPEN'
  | 'ERR_BULKHEAD_FULL'
  | 'ERR_TIMEOUT'
  | 'ERR_CONFIG'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_RESOURCE_UNAVAILABLE'
  | 'ERR_POOL_EXHAUSTED'
  | 'ERR_POOL_CLOSED'
  | 'ERR_RETRY_BUDGET_EXHAUSTED'
  | 'ERR_UPSTREAM'
  | 'ERR_RESPONSE_TOO_LARGE'
  | 'ERR_SHUTTING_DOWN';

/**
 * Runs `create` with stack capture switched off. Rejections on hot paths (429, 503) are
 * expected traffic, and capturing a stack nobody reads costs more than the rest of the
 * rejection.
 */
export function withoutStack<T>(create: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return create();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Base class of every error the pack raises on purpose. */
export abstract class ResilienceError extends Error {
  /** Stable machine-readable code, e.g. `ERR_BREAKER_OPEN`. */
  abstract readonly code: ResilienceErrorCode;
  /** The HTTP status this error maps to when it ends an inbound request. */
  abstract readonly status: number;
  /** A short human title, used as the RFC 9457 `title`. */
  abstract readonly title: string;
  /** Milliseconds after which a retry may succeed, when that is known. */
  retryAfterMs: number | undefined;

  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number | undefined }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterMs = options?.retryAfterMs;
  }

  override get name(): string {
    return this.constructor.name;
  }

  /** @internal */
  get [BRAND](): true {
    return true;
  }
}

/** True for any {@link ResilienceError}, including one from another installed copy. */
export function isResilienceError(err: unknown): err is ResilienceError {
  return (
    typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[BRAND] === true
  );
}

function hasCode<T extends ResilienceError>(err: unknown, code: ResilienceErrorCode): err is T {
  return isResilienceError(err) && err.code === code;
}

/** A rate limit rejected the request (HTTP 429). */
export class RateLimitedError extends ResilienceError {
  readonly code = 'ERR_RATE_LIMITED' as const;
  readonly status = 429;
  readonly title = 'Too Many Requests';
  constructor(
    message = 'Rate limit exceeded',
    options?: { retryAfterMs?: number | undefined; limit?: number; policy?: string },
  ) {
    super(message, options);
    this.limit = options?.limit;
    this.policy = options?.policy;
  }
  /** The configured limit that was exceeded. */
  readonly limit: number | undefined;
  /** The name of the rate-limit policy (the route name). */
  readonly policy: string | undefined;
}

/** The circuit breaker is open (or isolated, or out of half-open probes) (HTTP 503). */
export class BreakerOpenError extends ResilienceError {
  readonly code = 'ERR_BREAKER_OPEN' as const;
  readonly status = 503;
  readonly title = 'Service Unavailable';
  constructor(
    message = 'Circuit breaker is open',
    options?: { retryAfterMs?: number | undefined; isolated?: boolean },
  ) {
    super(message, options);
    this.isolated = options?.isolated ?? false;
  }
  /** True when the breaker was opened by hand (`isolate()`), not by failures. */
  readonly isolated: boolean;
}

/** Why a bulkhead turned a call away. */
export type BulkheadRejectReason = 'full' | 'queue-timeout' | 'aborted';

/** The bulkhead had no free slot and no room (or no time) left in its queue (HTTP 503). */
export class BulkheadFullError extends ResilienceError {
  readonly code = 'ERR_BULKHEAD_FULL' as const;
  readonly status = 503;
  readonly title = 'Service Unavailable';
  constructor(
    message = 'Bulkhead is full',
    options?: { retryAfterMs?: number | undefined; reason?: BulkheadRejectReason },
  ) {
    super(message, options);
    this.reason = options?.reason ?? 'full';
  }
  readonly reason: BulkheadRejectReason;
}

/** A deadline passed before the work finished (HTTP 504 unless configured otherwise). */
export class TimeoutError extends ResilienceError {
  readonly code = 'ERR_TIMEOUT' as const;
  readonly title = 'Gateway Timeout';
  readonly status: number;
  constructor(
    message = 'Deadline exceeded',
    options?: { cause?: unknown; timeoutMs?: number; status?: number },
  ) {
    super(message, options);
    this.timeoutMs = options?.timeoutMs;
    this.status = options?.status ?? 504;
  }
  /** The timeout that elapsed, in milliseconds. */
  readonly timeoutMs: number | undefined;
}

/** A configuration problem. `problems` lists every problem found, one line each. */
export class ConfigError extends ResilienceError {
  readonly code = 'ERR_CONFIG' as const;
  readonly status = 500;
  readonly title = 'Invalid Configuration';
  constructor(
    readonly problems: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(
      problems.length === 1
        ? `Invalid express-resilience configuration: ${problems[0]}`
        : `Invalid express-resilience configuration (${problems.length} problems):\n  - ${problems.join('\n  - ')}`,
      options,
    );
  }
}

/** A programmer mistake in options passed in code; names the option and the bad value. */
export class InvalidArgumentError extends ResilienceError {
  readonly code = 'ERR_INVALID_ARGUMENT' as const;
  readonly status = 500;
  readonly title = 'Invalid Argument';
}

/** A resource (pool member factory, upstream, Redis) cannot serve calls right now (HTTP 503). */
export class ResourceUnavailableError extends ResilienceError {
  readonly code = 'ERR_RESOURCE_UNAVAILABLE' as const;
  readonly status = 503;
  readonly title = 'Service Unavailable';
  constructor(
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number | undefined; resource?: string },
  ) {
    super(message, options);
    this.resource = options?.resource;
  }
  readonly resource: string | undefined;
}

/** A pool's wait queue was full, or an acquire waited out its `acquireTimeout` (HTTP 503). */
export class PoolExhaustedError extends ResilienceError {
  readonly code = 'ERR_POOL_EXHAUSTED' as const;
  readonly status = 503;
  readonly title = 'Service Unavailable';
  constructor(
    message: string,
    options?: { cause?: unknown; resource?: string; reason?: 'queue-full' | 'acquire-timeout' },
  ) {
    super(message, options);
    this.resource = options?.resource;
    this.reason = options?.reason ?? 'queue-full';
  }
  readonly resource: string | undefined;
  readonly reason: 'queue-full' | 'acquire-timeout';
}

/** A pool or resource was used after `close()` (HTTP 503). */
export class PoolClosedError extends ResilienceError {
  readonly code = 'ERR_POOL_CLOSED' as const;
  readonly status = 503;
  readonly title = 'Service Unavailable';
}

/** Retrying was refused because the retry budget is spent (the last failure is the cause). */
export class RetryBudgetExhaustedError extends ResilienceError {
  readonly code = 'ERR_RETRY_BUDGET_EXHAUSTED' as const;
  readonly status = 503;
  readonly title = 'Service Unavailable';
}

/** An upstream answered with a failure status or failed at the transport level (HTTP 502). */
export class UpstreamError extends ResilienceError {
  readonly code = 'ERR_UPSTREAM' as const;
  readonly status = 502;
  readonly title = 'Bad Gateway';
  constructor(
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number | undefined; statusCode?: number },
  ) {
    super(message, options);
    this.statusCode = options?.statusCode;
  }
  /** The upstream's status code, when it answered. */
  readonly statusCode: number | undefined;
}

/** An upstream response body exceeded the configured maximum size (HTTP 502). */
export class ResponseTooLargeError extends ResilienceError {
  readonly code = 'ERR_RESPONSE_TOO_LARGE' as const;
  readonly status = 502;
  readonly title = 'Bad Gateway';
}

/** The middleware is shutting down and takes no new requests (HTTP 503, `Connection: close`). */
export class ShuttingDownError extends ResilienceError {
  readonly code = 'ERR_SHUTTING_DOWN' as const;
  readonly status = 503;
  readonly title = 'Service Unavailable';
}

/** True for a {@link RateLimitedError}, from any installed copy. */
export const isRateLimitedError = (err: unknown): err is RateLimitedError =>
  hasCode(err, 'ERR_RATE_LIMITED');
/** True for a {@link BreakerOpenError}, from any installed copy. */
export const isBreakerOpenError = (err: unknown): err is BreakerOpenError =>
  hasCode(err, 'ERR_BREAKER_OPEN');
/** True for a {@link BulkheadFullError}, from any installed copy. */
export const isBulkheadFullError = (err: unknown): err is BulkheadFullError =>
  hasCode(err, 'ERR_BULKHEAD_FULL');
/** True for a {@link TimeoutError}, from any installed copy. */
export const isTimeoutError = (err: unknown): err is TimeoutError => hasCode(err, 'ERR_TIMEOUT');
/** True for a {@link ConfigError}, from any installed copy. */
export const isConfigError = (err: unknown): err is ConfigError => hasCode(err, 'ERR_CONFIG');
