/**
 * The resolved configuration: what `loadConfig()` returns after layering, validation,
 * coercion (every duration is a number of milliseconds here) and inheritance (every route and
 * named policy is complete). Deep-frozen at run time.
 *
 * The user-facing file shape is documented in config/README.md; {@link ResilienceConfigInput}
 * is the same shape with everything optional and durations as strings or numbers.
 */

/** Durations in files and overrides: `"250ms"`, `"5s"`, `"1m"`, `"1h"` or milliseconds. */
export type DurationInput = number | string;

/** `true`/`false`, a hop count, or addresses/subnets/presets as Express's 'trust proxy'. */
export type TrustProxySetting = boolean | number | string | readonly string[];

export type BreakerWindowType = 'count' | 'time' | 'consecutive';
export type RateLimitAlgorithm = 'gcra' | 'fixed-window';
/** What a rate limiter does when its store fails. */
export type StoreErrorPolicy = 'local' | 'allow' | 'deny';
export type RedisMode = 'standalone' | 'sentinel' | 'cluster';

export interface TimeoutPolicyConfig {
  enabled: boolean;
  /** When false, timeouts are counted in metrics but no 504 is sent (shadow mode). */
  enforce: boolean;
  /** Milliseconds. */
  duration: number;
  /** HTTP status sent on timeout. */
  status: number;
}

export interface BreakerPolicyConfig {
  enabled: boolean;
  enforce: boolean;
  /** count: the last `size` calls; time: the last `size` seconds; consecutive: `size` failures in a row. */
  window: { type: BreakerWindowType; size: number };
  minimumCalls: number;
  /** Percent (1-100) of failed calls that opens the breaker. */
  failureRate: number;
  /** Calls slower than `duration` (ms) are slow; a slow-call `rate` (percent, 1-100) opens it. */
  slowCall: { duration: number; rate: number };
  /** Milliseconds the breaker stays open before it lets probes through. */
  halfOpenAfter: number;
  /** How many concurrent probe calls half-open admits. */
  halfOpenProbes: number;
  /** Growth of the open period each time a half-open probe fails; multiplier 1 = no growth. */
  openBackoff: { multiplier: number; max: number };
  /** Status patterns counted as failures: "5xx", "4xx", or exact codes like "429". */
  failureStatuses: readonly string[];
}

export interface BulkheadPolicyConfig {
  enabled: boolean;
  enforce: boolean;
  maxConcurrent: number;
  maxQueue: number;
  /** Milliseconds a request may wait in the queue. */
  queueTimeout: number;
  /** Milliseconds after a timeout response before a still-running handler's slot is force-released. */
  releaseGrace: number;
}

export interface RateLimitPolicyConfig {
  enabled: boolean;
  enforce: boolean;
  algorithm: RateLimitAlgorithm;
  /** Requests allowed per window. */
  limit: number;
  /** Milliseconds. */
  window: number;
  /** GCRA only: extra requests a client may send at once on top of `limit`. */
  burst: number;
  /** `ip`, `header:<name>`, or `fn:<name>` (a key generator given in code). */
  key: string;
  /** `memory` or `redis:<resource name>`. */
  store: string;
  /** What decides while a shared store fails or is down (see `expectedInstances`). */
  onStoreError: StoreErrorPolicy;
  /** Shared store: milliseconds a decision may wait for it before the fallback answers. */
  storeTimeout: number;
  /** Shared store: while it is down, milliseconds between attempts to use it again. */
  storeRetryInterval: number;
  /**
   * Shared store: instances sharing the limit; the `local` fallback allows
   * `ceil(limit / expectedInstances)` (burst likewise) per instance.
   */
  expectedInstances: number;
  /**
   * Shared store: most decisions of one tick sent in one script call (1: one key per call, for
   * a proxy that routes scripts by their first key).
   */
  storeMaxBatch: number;
  /** Shared store: keys over their limit are denied locally until they may pass again. */
  blockCache: boolean;
  /** Shared store: prefix of every key it writes (the route name and the client key follow). */
  keyPrefix: string;
  /** IPv6 clients are grouped by this prefix length (default 56). */
  ipv6Prefix: number;
  /** Keys or IPs/CIDRs never limited. */
  allowlist: readonly string[];
  /** Send the IETF `RateLimit-Policy` / `RateLimit` headers. */
  headers: boolean;
  /** Also send `X-RateLimit-Limit/Remaining/Reset`. */
  legacyHeaders: boolean;
  /** Memory store: most keys held before the least recently used is evicted. */
  maxKeys: number;
}

/** A complete policy set: what every route, the defaults and every named policy resolve to. */
export interface PolicySet {
  timeout: TimeoutPolicyConfig;
  breaker: BreakerPolicyConfig;
  bulkhead: BulkheadPolicyConfig;
  rateLimit: RateLimitPolicyConfig;
}

/** A parsed route `match`. */
export interface RouteMatch {
  /** Upper-case methods, or null for any method. */
  methods: readonly string[] | null;
  /** An Express-style path pattern: `/orders/:id`, `/admin/*`. */
  path: string;
}

export interface RoutePolicy extends PolicySet {
  name: string;
  match: RouteMatch;
}

export interface NamedPolicy extends PolicySet {
  name: string;
}

export interface MiddlewareConfig {
  trustProxy: TrustProxySetting;
  exclude: readonly string[];
  deadlineHeader: { enabled: boolean; name: string };
  defaults: PolicySet;
  routes: readonly RoutePolicy[];
  policies: Readonly<Record<string, NamedPolicy>>;
}

export interface PoolConfig {
  min: number;
  max: number;
  acquireTimeout: number;
  maxWaiting: number;
  idleTimeout: number;
  /** Milliseconds a member may live; 0 = forever. */
  maxLifetime: number;
  /** A member borrowed longer than this is reported as a probable leak; 0 = never. */
  leaseWarning: number;
  /** How often idle members are checked for eviction. */
  evictionInterval: number;
}

export interface TlsConfig {
  /** PEM text or a file path, for each of ca, cert, key (key is sensitive). */
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  rejectUnauthorized: boolean;
  servername?: string | undefined;
}

export interface RetryConfig {
  /** Total attempts including the first; 1 = no retry. */
  attempts: number;
  backoff: { initial: number; max: number; multiplier: number };
  /** Retries at most `ratio` of recent calls plus `minPerSecond`. */
  budget: { ratio: number; minPerSecond: number; window: number };
  /** HTTP statuses that are retried (HTTP resources only). */
  statuses: readonly number[];
  /** Retry non-idempotent methods too. */
  nonIdempotent: boolean;
}

/** When an up resource is reported `degraded` instead (both percents, 1-100). */
export interface DegradedThresholds {
  /** Pool utilisation ((borrowed + pending) / max) above this percent. */
  poolUtilisation: number;
  /** Recent call error rate above this percent. */
  errorRate: number;
}

/** The background health check of a resource; fits the health monitor's check options. */
export interface ResourceHealthConfig {
  enabled: boolean;
  /** Milliseconds between checks. */
  interval: number;
  /** Milliseconds a check may take before it fails. */
  timeout: number;
  /** Consecutive passes that make a down resource up again. */
  healthyThreshold: number;
  /** Consecutive failures that make a resource down. */
  unhealthyThreshold: number;
  /** Check results kept for detailed health (1-100). */
  history: number;
  degraded: DegradedThresholds;
}

export interface HttpHealthConfig extends ResourceHealthConfig {
  path: string;
}

export interface HttpResourceConfig {
  name: string;
  origin: string;
  pool: PoolConfig;
  timeouts: { connect: number; headers: number; body: number; request: number };
  tls: TlsConfig;
  keepAlive: { timeout: number; maxTimeout: number };
  /** Bytes; 0 = unlimited. */
  maxResponseSize: number;
  headers: Readonly<Record<string, string>>;
  retry: RetryConfig;
  breaker: BreakerPolicyConfig;
  health: HttpHealthConfig;
  /** Send the remaining deadline upstream in `header` (milliseconds). */
  deadlinePropagation: { enabled: boolean; header: string };
  /** When false, this resource being unhealthy does not fail /readyz. */
  critical: boolean;
}

export type RedisHealthConfig = ResourceHealthConfig;

export interface RedisResourceConfig {
  name: string;
  mode: RedisMode;
  /** `redis://` or `rediss://` URL (sensitive: may hold a password). */
  url?: string | undefined;
  host: string;
  port: number;
  username?: string | undefined;
  password?: string | undefined;
  db: number;
  tls: TlsConfig & { enabled: boolean };
  sentinels: readonly { host: string; port: number }[];
  /** Sentinel master group name. */
  masterName: string;
  sentinelPassword?: string | undefined;
  nodes: readonly { host: string; port: number }[];
  keyPrefix: string;
  pool: PoolConfig;
  commandTimeout: number;
  connectTimeout: number;
  retry: RetryConfig;
  breaker: BreakerPolicyConfig;
  /** Commands queued while disconnected; 0 disables the offline queue (fail fast). */
  offlineQueue: number;
  health: RedisHealthConfig;
  critical: boolean;
}

export interface ResourcesConfig {
  http: Readonly<Record<string, HttpResourceConfig>>;
  redis: Readonly<Record<string, RedisResourceConfig>>;
}

export interface MetricsConfig {
  enabled: boolean;
  path: string;
  prefix: string;
  defaultMetrics: boolean;
  /** Request-duration histogram buckets, in seconds. */
  buckets: readonly number[];
  /** Who may scrape the metrics endpoint. */
  protect: EndpointProtection;
}

/**
 * Access to an endpoint: with neither an allowlist nor a token, anyone; otherwise a client
 * whose address is in `allowlist` or that sends `Authorization: Bearer <token>`.
 */
export interface EndpointProtection {
  /** IP addresses and CIDR ranges. */
  allowlist: readonly string[];
  /** Bearer token (sensitive). */
  token?: string | undefined;
}

export interface HealthConfig {
  enabled: boolean;
  livenessPath: string;
  readinessPath: string;
  /** Include per-resource details in /readyz. */
  details: boolean;
  /** When true, an open circuit breaker fails readiness. */
  breakersAffectReadiness: boolean;
  /** Who may see the detailed readiness body. */
  protect: EndpointProtection;
}

export interface ShutdownConfig {
  /** Milliseconds to keep serving, readiness failing, before the servers stop accepting. */
  delay: number;
  /** Milliseconds in-flight work may take to finish once the servers stopped accepting. */
  grace: number;
  /** Close on SIGTERM/SIGINT. */
  handleSignals: boolean;
}

/** The whole resolved configuration. */
export interface ResilienceConfig {
  middleware: MiddlewareConfig;
  resources: ResourcesConfig;
  metrics: MetricsConfig;
  health: HealthConfig;
  shutdown: ShutdownConfig;
}

type DeepPartialInput<T> = T extends number
  ? DurationInput
  : T extends string | boolean
    ? T
    : T extends readonly (infer U)[]
      ? readonly DeepPartialInput<U>[]
      : T extends object
        ? { [K in keyof T]?: DeepPartialInput<T[K]> }
        : T;

/** A partial policy set as written in a file (`routes[]` entries add `name`, `match`, `policy`). */
export type PolicySetInput = DeepPartialInput<PolicySet>;

export interface RoutePolicyInput extends PolicySetInput {
  name: string;
  /** `"GET /orders/:id"`, `"GET,HEAD /orders"`, `"/admin/*"`, or `{ methods, path }`. */
  match: string | { methods?: readonly string[]; path: string };
  /** Name of a `middleware.policies` entry this route starts from instead of the defaults. */
  policy?: string;
}

/** The configuration as written in a file or passed in code: everything optional. */
export interface ResilienceConfigInput {
  middleware?: {
    trustProxy?: TrustProxySetting;
    exclude?: readonly string[];
    deadlineHeader?: { enabled?: boolean; name?: string };
    defaults?: PolicySetInput;
    routes?: readonly RoutePolicyInput[];
    policies?: Readonly<Record<string, PolicySetInput>>;
  };
  resources?: {
    http?: Readonly<Record<string, DeepPartialInput<Omit<HttpResourceConfig, 'name'>>>>;
    redis?: Readonly<Record<string, DeepPartialInput<Omit<RedisResourceConfig, 'name'>>>>;
  };
  metrics?: DeepPartialInput<MetricsConfig>;
  health?: DeepPartialInput<HealthConfig>;
  shutdown?: DeepPartialInput<ShutdownConfig>;
}
