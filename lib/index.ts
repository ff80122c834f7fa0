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
export type { Clock } from './policies/clock.js';
