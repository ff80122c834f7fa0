// The package's only public entry: re-exports, nothing else.

export { resilience } from './middleware/resilience.js';
export type {
  Middleware,
  ResilienceMiddleware,
  ResilienceOptions,
} from './middleware/resilience.js';
export type { KeyGenerator, RejectHandler } from './middleware/policy-runtime.js';
export type { RequestResilience } from './middleware/context.js';
export type { Logger, WarningCode } from './middleware/warnings.js';
export { ClientDisconnectedError } from './middleware/request-run.js';
export { problemDetails } from './middleware/problem.js';
export type { ProblemDetails } from './middleware/problem.js';

export {
  loadConfig,
  resolveConfig,
  redactConfig,
  isResolvedConfig,
  parseRouteMatch,
} from './config/index.js';
export type { LoadConfigOptions, ResolveConfigOptions } from './config/index.js';
export type * from './config/types.js';

export { ResilienceMetrics, createMetrics } from './metrics/metrics.js';
export type { MetricsOptions, RejectionReason, BreakerScope } from './metrics/metrics.js';

export { CircuitBreaker, circuitBreaker } from './policies/breaker.js';
export type {
  BreakerState,
  CircuitBreakerOptions,
  BreakerPermit,
  BreakerStateChange,
  BreakerStateChangeReason,
  BreakerStats,
  Disposable,
} from './policies/breaker.js';
export { Bulkhead, bulkhead } from './policies/bulkhead.js';
export type { BulkheadOptions, BulkheadLease, BulkheadStats } from './policies/bulkhead.js';
export { Deadline, deadline, withTimeout, parseDeadlineHeader } from './policies/timeout.js';
export type { DeadlineOptions, WithTimeoutOptions } from './policies/timeout.js';
export { runWithDeadline, currentDeadline } from './policies/deadline-context.js';
export { RateLimiter, rateLimiter } from './policies/rate-limit.js';
export type { RateLimiterOptions } from './policies/rate-limit.js';
export { MemoryStore } from './policies/rate-limit/memory-store.js';
export type { MemoryStoreOptions } from './policies/rate-limit/memory-store.js';
export type {
  RateLimitRule,
  RateLimitDecision,
  RateLimitStore,
} from './policies/rate-limit/store.js';
export {
  rateLimitPolicyHeader,
  rateLimitHeader,
  legacyRateLimitHeaders,
} from './policies/rate-limit/headers.js';
export { ipKey } from './policies/rate-limit/ip-key.js';
export type { Clock } from './policies/clock.js';

export {
  ResilienceError,
  RateLimitedError,
  BreakerOpenError,
  BulkheadFullError,
  TimeoutError,
  ConfigError,
  InvalidArgumentError,
  ResourceUnavailableError,
  PoolExhaustedError,
  PoolClosedError,
  RetryBudgetExhaustedError,
  UpstreamError,
  ResponseTooLargeError,
  isResilienceError,
  isRateLimitedError,
  isBreakerOpenError,
  isBulkheadFullError,
  isTimeoutError,
  isConfigError,
} from './errors.js';
export type { ResilienceErrorCode, BulkheadRejectReason } from './errors.js';
