// The package's only public entry: re-exports, nothing else.

export { resilience, closeOnSignals } from './middleware/resilience.js';
export type {
  Middleware,
  ResilienceMiddleware,
  ResilienceOptions,
  CloseOptions,
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

export { ResourceManager, CustomResource } from './resources/manager.js';
export type { CustomResourceDefinition, ResourceManagerOptions } from './resources/manager.js';
export { HttpResource, createHttpResource } from './resources/http-resource.js';
export type {
  HttpRequestOptions,
  HttpCallOptions,
  HttpResourceOptions,
  QueryValue,
} from './resources/http-resource.js';
export { HttpResponse } from './resources/http/exchange.js';
export { ResourcePool } from './resources/pool.js';
export type {
  PoolFactory,
  ResourcePoolOptions,
  AcquireOptions,
  UseOptions,
} from './resources/pool.js';
export { PooledResource } from './resources/pooled-resource.js';
export type {
  PooledResourceOptions,
  CallOptions,
  AttemptVerdict,
  Attempt,
} from './resources/pooled-resource.js';
export type { AbortSource } from './resources/abort-source.js';
export type {
  HealthStatus,
  HealthReport,
  HealthCheckResult,
  PoolStats,
  AcquireErrorReason,
  CallOutcome,
  ManagedResource,
} from './resources/types.js';
export { HealthMonitor } from './health/monitor.js';
export type { HealthStatusChange, Readiness } from './health/monitor.js';
export type { HealthCheck, HealthCheckOptions } from './health/check.js';
export { livenessResponse, readinessResponse, isAuthorised } from './health/endpoints.js';

export { ResilienceMetrics, createMetrics } from './metrics/metrics.js';
export type {
  MetricsOptions,
  RejectionReason,
  BreakerScope,
  RateLimitStoreEvents,
} from './metrics/metrics.js';

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
export { RetryBudget } from './policies/retry-budget.js';
export type { RetryBudgetOptions, RetryBudgetStats } from './policies/retry-budget.js';
export { retry, backoffDelay, parseRetryAfter } from './policies/retry.js';
export type { RetryOptions, RetryDecision, RetryOutcome } from './policies/retry.js';
export { RateLimiter, rateLimiter } from './policies/rate-limit.js';
export type { RateLimiterOptions } from './policies/rate-limit.js';
export { MemoryStore } from './policies/rate-limit/memory-store.js';
export type { MemoryStoreOptions } from './policies/rate-limit/memory-store.js';
export { RedisStore } from './policies/rate-limit/redis-store.js';
export type { RedisStoreOptions } from './policies/rate-limit/redis-store.js';
export { ResilientStore } from './policies/rate-limit/resilient-store.js';
export type {
  ResilientStoreOptions,
  StoreCallOutcome,
  StoreFallbackReason,
} from './policies/rate-limit/resilient-store.js';
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
  ShuttingDownError,
  isResilienceError,
  isRateLimitedError,
  isBreakerOpenError,
  isBulkheadFullError,
  isTimeoutError,
  isConfigError,
} from './errors.js';
export type { ResilienceErrorCode, BulkheadRejectReason } from './errors.js';
