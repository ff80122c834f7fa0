import {
  addressList,
  allowlistEntries,
  bearerToken,
  boolean,
  buckets,
  bytes,
  duration,
  errorStatus,
  headerMap,
  headerName,
  hostPorts,
  httpOrigin,
  integer,
  metricPrefix,
  labelName,
  number,
  oneOf,
  pathList,
  policyMap,
  rateLimitKey,
  rateLimitStore,
  redisUrl,
  resourceMap,
  routeList,
  routeMatch,
  statusCodes,
  statusPatterns,
  string,
  trustProxy,
  urlPath,
} from './formats.js';
import type {
  BreakerPolicyConfig,
  BreakerWindowType,
  EndpointProtection,
  HttpResourceConfig,
  PolicySet,
  PoolConfig,
  RedisResourceConfig,
  ResilienceConfig,
  ResourceHealthConfig,
  RetryConfig,
  TlsConfig,
} from './types.js';
import { leaf } from './walk.js';
import type { Branch, Leaf } from './walk.js';

/**
 * The convict schema: the single source of truth for every option (doc, format, default, env).
 * Defaults are written as users write them (`'5s'`); loading coerces them like any value.
 * The mapped types tie each section to lib/config/types.ts, so a key added to or missing from
 * either fails the typecheck.
 */

type NodeFor<V> = V extends readonly unknown[]
  ? Leaf
  : V extends object
    ? string extends keyof V
      ? Leaf
      : SchemaOf<V> | Leaf
    : Leaf;

/** A schema branch with exactly the keys of `T`. */
export type SchemaOf<T> = { readonly [K in keyof T]-?: NodeFor<NonNullable<T[K]>> };

/**
 * Largest breaker window: count and time windows allocate a typed array of this many slots
 * (lib/policies/breaker/), which must not fail (or exhaust memory) at start-up.
 */
export const MAX_BREAKER_WINDOW = 1_000_000;

/** Env var settings only for the defaults section, not for route/policy entries. */
function envIf(withEnv: boolean, env: string): { env?: string } {
  return withEnv ? { env } : {};
}

function breakerSchema(
  window: { type: BreakerWindowType; size: number },
  withEnv: boolean,
): SchemaOf<BreakerPolicyConfig> {
  return {
    enabled: leaf(
      boolean,
      true,
      'Use a circuit breaker.',
      envIf(withEnv, 'RESILIENCE_BREAKER_ENABLED'),
    ),
    enforce: leaf(
      boolean,
      true,
      'When false the breaker only records (metrics, state) and never rejects: shadow mode.',
      envIf(withEnv, 'RESILIENCE_BREAKER_ENFORCE'),
    ),
    window: {
      type: leaf(
        oneOf<BreakerWindowType>(['count', 'time', 'consecutive']),
        window.type,
        'count: the last `size` calls; time: the last `size` seconds; consecutive: `size` failures in a row open it.',
      ),
      size: leaf(
        integer({ min: 1, max: MAX_BREAKER_WINDOW }),
        window.size,
        'Calls, seconds or failures (see `type`). Count and time windows hold one slot per call or second.',
      ),
    },
    minimumCalls: leaf(
      integer({ min: 1 }),
      20,
      'Calls the window must hold before the failure rate is judged; at most `window.size` for a count window.',
    ),
    failureRate: leaf(
      number({ min: 1, max: 100 }),
      50,
      'Percent of failed calls in the window that opens the breaker.',
    ),
    slowCall: {
      duration: leaf(
        duration({ min: 1 }),
        '2s',
        'Calls slower than this count as slow (even when they succeed).',
      ),
      rate: leaf(
        number({ min: 1, max: 100 }),
        100,
        'Percent of slow calls in the window that opens the breaker; 100 = only when every call is slow.',
      ),
    },
    halfOpenAfter: leaf(
      duration({ min: 1 }),
      '10s',
      'How long the breaker stays open before it lets probe calls through.',
    ),
    halfOpenProbes: leaf(
      integer({ min: 1 }),
      3,
      'Concurrent probe calls admitted while half-open; all must succeed to close.',
    ),
    openBackoff: {
      multiplier: leaf(
        number({ min: 1 }),
        1,
        'The open period is multiplied by this each time a probe fails; 1 = no growth.',
      ),
      max: leaf(
        duration({ min: 1 }),
        '5m',
        'Longest open period the backoff can reach; at least `halfOpenAfter` (raise it with a longer `halfOpenAfter`).',
      ),
    },
    failureStatuses: leaf(
      statusPatterns,
      ['5xx'],
      'Response statuses counted as failures: "5xx", "4xx" or exact codes like "429". Timeouts always count.',
    ),
  };
}

/** A complete policy set; `withEnv` adds the per-deployment env vars (defaults section only). */
function policySetSchema(withEnv: boolean): SchemaOf<PolicySet> {
  return {
    timeout: {
      enabled: leaf(
        boolean,
        true,
        'Send a timeout response when the handler has not answered by the deadline.',
        envIf(withEnv, 'RESILIENCE_TIMEOUT_ENABLED'),
      ),
      enforce: leaf(
        boolean,
        true,
        'When false timeouts are only counted in metrics, no response is sent: shadow mode.',
        envIf(withEnv, 'RESILIENCE_TIMEOUT_ENFORCE'),
      ),
      duration: leaf(
        duration({ min: 1 }),
        '5s',
        'Deadline of a request, from when the middleware sees it.',
        envIf(withEnv, 'RESILIENCE_DEFAULT_TIMEOUT'),
      ),
      status: leaf(errorStatus, 504, 'Status sent on timeout (4xx or 5xx).'),
    },
    breaker: breakerSchema({ type: 'count', size: 100 }, withEnv),
    bulkhead: {
      enabled: leaf(
        boolean,
        true,
        'Limit concurrent requests, with a bounded queue.',
        envIf(withEnv, 'RESILIENCE_BULKHEAD_ENABLED'),
      ),
      enforce: leaf(
        boolean,
        true,
        'When false over-limit requests are counted but let through: shadow mode.',
        envIf(withEnv, 'RESILIENCE_BULKHEAD_ENFORCE'),
      ),
      maxConcurrent: leaf(
        integer({ min: 0 }),
        100,
        'Requests handled at once; at least 1 when the bulkhead is enabled.',
        envIf(withEnv, 'RESILIENCE_BULKHEAD_MAX_CONCURRENT'),
      ),
      maxQueue: leaf(
        integer({ min: 0 }),
        200,
        'Requests waiting for a slot; more are rejected with 503. 0 = no queue.',
      ),
      queueTimeout: leaf(duration(), '1s', 'Longest wait in the queue before a 503.'),
      releaseGrace: leaf(
        duration(),
        '30s',
        'After a timeout response, how long a still-running handler keeps its slot before it is force-released (counted in metrics).',
      ),
    },
    rateLimit: {
      enabled: leaf(
        boolean,
        false,
        'Rate-limit requests per key.',
        envIf(withEnv, 'RESILIENCE_RATE_LIMIT_ENABLED'),
      ),
      enforce: leaf(
        boolean,
        true,
        'When false over-limit requests are counted but let through: shadow mode.',
        envIf(withEnv, 'RESILIENCE_RATE_LIMIT_ENFORCE'),
      ),
      algorithm: leaf(
        oneOf(['gcra', 'fixed-window'] as const),
        'gcra',
        'gcra: smooth, with an optional burst; fixed-window: simple counters per window.',
      ),
      limit: leaf(
        integer({ min: 1 }),
        100,
        'Requests allowed per window; at most 1000 per millisecond of `window`.',
      ),
      window: leaf(duration({ min: 1 }), '1m', 'The window `limit` applies to.'),
      burst: leaf(
        integer({ min: 0 }),
        0,
        'GCRA only: extra requests a client may send at once on top of `limit`.',
      ),
      key: leaf(
        rateLimitKey,
        'ip',
        'What is limited: `ip` (honouring trustProxy, IPv6 grouped by ipv6Prefix), `header:<name>`, or `fn:<name>` (a key generator passed in code).',
      ),
      store: leaf(
        rateLimitStore,
        'memory',
        '`memory` (per process) or `redis:<name>` (shared; names a resources.redis entry).',
        envIf(withEnv, 'RESILIENCE_RATE_LIMIT_STORE'),
      ),
      onStoreError: leaf(
        oneOf(['local', 'allow', 'deny'] as const),
        'local',
        'When a shared store fails, times out or is down: `local` falls back to an in-memory limiter of `limit / expectedInstances` per instance, `allow` lets requests through, `deny` rejects them with 429 and `Retry-After` = `storeRetryInterval`.',
      ),
      storeTimeout: leaf(
        duration({ min: 1 }),
        '500ms',
        'Shared store: how long it may stay silent (no reply at all) while decisions wait for it; then they go to the `onStoreError` fallback. A reply that is only slow because a burst queued many decisions ahead of it still counts. A decision waits at most 10× this in any case.',
      ),
      storeRetryInterval: leaf(
        duration({ min: 1 }),
        '1s',
        'Shared store: once it is known to be down (a connection failure, or 3 timeouts in a row), the fallback decides without trying it, and one decision tries it again this often.',
      ),
      expectedInstances: leaf(
        integer({ min: 1 }),
        1,
        'Shared store: how many instances share the limit. The `local` fallback allows `ceil(limit / expectedInstances)` (burst likewise) per instance, so all of them together stay near the limit while the store is down.',
        envIf(withEnv, 'RESILIENCE_RATE_LIMIT_EXPECTED_INSTANCES'),
      ),
      storeMaxBatch: leaf(
        integer({ min: 1, max: 1000 }),
        16,
        'Shared store: the most decisions of one tick that go to Redis in one script call (one command, one reply). 1 sends one key per call: needed behind a proxy that routes a script by its first key. On a Redis Cluster every call carries one key whatever this says.',
      ),
      blockCache: leaf(
        boolean,
        true,
        'Shared store: remember keys it denied until they may pass again and deny them locally, so a flood from one client costs no round trip per request.',
      ),
      keyPrefix: leaf(
        string({ allowEmpty: true }),
        'rl:',
        'Shared store: prefix of its keys (`rl:<route name>:<client key>`).',
      ),
      ipv6Prefix: leaf(
        integer({ min: 1, max: 128 }),
        56,
        'IPv6 clients are grouped by this prefix length (one subscriber usually owns a /56).',
      ),
      allowlist: leaf(allowlistEntries, [], 'Keys, IPs or CIDRs that are never limited.'),
      headers: leaf(boolean, true, 'Send the IETF `RateLimit-Policy` and `RateLimit` headers.'),
      legacyHeaders: leaf(boolean, false, 'Also send `X-RateLimit-Limit/Remaining/Reset`.'),
      maxKeys: leaf(
        integer({ min: 1 }),
        100_000,
        'Memory store: most keys held before the least recently used one is evicted.',
      ),
    },
  };
}

function poolSchema(min: number, max: number): SchemaOf<PoolConfig> {
  return {
    min: leaf(integer({ min: 0 }), min, 'Members kept open even when idle; at most `max`.'),
    max: leaf(
      integer({ min: 1 }),
      max,
      'Most members open at once for traffic (health probes use one connection of their own beyond it).',
    ),
    acquireTimeout: leaf(
      duration({ min: 1 }),
      '500ms',
      'Longest wait for a free member before the call fails.',
    ),
    maxWaiting: leaf(
      integer({ min: 0 }),
      500,
      'Calls waiting for a member; more fail at once (pool exhausted).',
    ),
    idleTimeout: leaf(
      duration(),
      '30s',
      'Idle members are closed after this, while more than `min` are idle (checked every `evictionInterval`).',
    ),
    maxLifetime: leaf(duration(), '0', 'Members are replaced after this long; 0 = never.'),
    leaseWarning: leaf(
      duration(),
      '30s',
      'A member borrowed longer than this is reported as a probable leak; 0 = never.',
    ),
    evictionInterval: leaf(
      duration({ min: 1 }),
      '5s',
      'How often idle members are checked for eviction.',
    ),
  };
}

function tlsSchema(): SchemaOf<TlsConfig> {
  return {
    ca: leaf(string(), undefined, 'CA certificate(s): PEM text or a file path.'),
    cert: leaf(string(), undefined, 'Client certificate: PEM text or a file path.'),
    key: leaf(string(), undefined, 'Client private key: PEM text or a file path.', {
      sensitive: true,
    }),
    rejectUnauthorized: leaf(
      boolean,
      true,
      'Reject servers whose certificate does not verify. Never turn off in production.',
    ),
    servername: leaf(string(), undefined, 'SNI server name, when it differs from the host.'),
  };
}

function retrySchema(attempts: number, statuses: number[]): SchemaOf<RetryConfig> {
  return {
    attempts: leaf(
      integer({ min: 1 }),
      attempts,
      'Total attempts including the first; 1 = no retry.',
    ),
    backoff: {
      initial: leaf(duration(), '50ms', 'Delay before the first retry; at most `max`.'),
      max: leaf(duration(), '1s', 'Longest delay between attempts.'),
      multiplier: leaf(
        number({ min: 1 }),
        2,
        'Growth of the delay per attempt (full jitter applied).',
      ),
    },
    budget: {
      ratio: leaf(
        number({ min: 0, max: 1 }),
        0.2,
        'Retries allowed as a fraction of recent calls, so retries cannot multiply an outage.',
      ),
      minPerSecond: leaf(
        number({ min: 0 }),
        10,
        'Retries per second always allowed on top of `ratio`.',
      ),
      window: leaf(duration({ min: 1 }), '10s', 'How far back "recent calls" reaches.'),
    },
    statuses: leaf(statusCodes, statuses, 'HTTP statuses that are retried (HTTP resources only).'),
    nonIdempotent: leaf(
      boolean,
      false,
      'Also retry non-idempotent calls (POST and PATCH requests, Redis writes such as INCR); only when the other side deduplicates.',
    ),
  };
}

function healthSchema(interval: string): SchemaOf<Omit<ResourceHealthConfig, 'enabled'>> {
  return {
    interval: leaf(duration({ min: 1 }), interval, 'Time between background checks.'),
    timeout: leaf(duration({ min: 1 }), '1s', 'A check slower than this fails.'),
    healthyThreshold: leaf(
      integer({ min: 1 }),
      1,
      'Consecutive successful checks that make an unhealthy resource healthy.',
    ),
    unhealthyThreshold: leaf(
      integer({ min: 1 }),
      3,
      'Consecutive failed checks that make a healthy resource unhealthy.',
    ),
    history: leaf(
      integer({ min: 1, max: 100 }),
      10,
      'Check results kept (time, latency, error) and shown in detailed health.',
    ),
    degraded: {
      poolUtilisation: leaf(
        number({ min: 1, max: 100 }),
        90,
        'A healthy resource is degraded while its pool runs above this percent of `pool.max` (borrowed + waiting).',
      ),
      errorRate: leaf(
        number({ min: 1, max: 100 }),
        50,
        'A healthy resource is degraded while more than this percent of its recent calls fail.',
      ),
    },
  };
}

function protectSchema(endpoint: string, env: 'HEALTH' | 'METRICS'): SchemaOf<EndpointProtection> {
  return {
    allowlist: leaf(
      addressList,
      [],
      `IP addresses and CIDR ranges allowed to read ${endpoint} (the client IP honours trustProxy).`,
      { env: `RESILIENCE_${env}_ALLOWLIST` },
    ),
    token: leaf(
      bearerToken,
      undefined,
      `Bearer token (\`Authorization: Bearer <token>\`) that also allows reading ${endpoint}. With neither allowlist nor token, anyone may.`,
      { env: `RESILIENCE_${env}_TOKEN`, sensitive: true },
    ),
  };
}

/** One `resources.http.<name>` entry. */
export const httpResourceSchema: SchemaOf<Omit<HttpResourceConfig, 'name'>> = {
  origin: leaf(httpOrigin, undefined, 'Upstream origin, e.g. `https://payments.internal:8443`.', {
    required: true,
    entryEnv: 'ORIGIN',
  }),
  pool: poolSchema(0, 50),
  timeouts: {
    connect: leaf(duration({ min: 1 }), '1s', 'TCP (and TLS) connect timeout.'),
    headers: leaf(duration({ min: 1 }), '2s', 'Time to receive the response headers.'),
    body: leaf(duration({ min: 1 }), '5s', 'Longest gap between body chunks.'),
    request: leaf(
      duration({ min: 1 }),
      '3s',
      'Whole-call timeout, all attempts and backoff waits included; shortened to the inbound request’s remaining deadline.',
    ),
  },
  tls: tlsSchema(),
  keepAlive: {
    timeout: leaf(duration({ min: 1 }), '4s', 'Idle keep-alive sockets are closed after this.'),
    maxTimeout: leaf(
      duration({ min: 1 }),
      '10m',
      'Upper bound on a keep-alive timeout the server announces.',
    ),
  },
  maxResponseSize: leaf(bytes, '10MiB', 'Largest response body accepted; 0 = unlimited.'),
  headers: leaf(
    headerMap,
    {},
    'Headers sent with every call (credential headers are redacted when printed).',
    {
      sensitive: true,
    },
  ),
  retry: retrySchema(3, [502, 503, 504]),
  breaker: breakerSchema({ type: 'time', size: 30 }, false),
  health: {
    enabled: leaf(boolean, true, 'Check the upstream in the background.'),
    path: leaf(urlPath, '/healthz', 'Path requested by the check (GET; any 2xx is healthy).'),
    ...healthSchema('10s'),
  },
  deadlinePropagation: {
    enabled: leaf(boolean, false, 'Send the remaining deadline upstream.'),
    header: leaf(headerName, 'x-request-timeout-ms', 'Header carrying it, in milliseconds.'),
  },
  critical: leaf(boolean, true, 'When false, this resource being unhealthy does not fail /readyz.'),
};

/** One `resources.redis.<name>` entry. */
export const redisResourceSchema: SchemaOf<Omit<RedisResourceConfig, 'name'>> = {
  mode: leaf(
    oneOf(['standalone', 'sentinel', 'cluster'] as const),
    'standalone',
    'standalone: one server (url or host/port); sentinel: `sentinels` + `masterName`; cluster: `nodes`.',
  ),
  url: leaf(
    redisUrl,
    undefined,
    '`redis://[user:password@]host:port[/db]` or `rediss://…` (TLS); when set, wins over host, port, username, password and db.',
    { sensitive: true, entryEnv: 'URL' },
  ),
  host: leaf(string(), '127.0.0.1', 'Server host (standalone).'),
  port: leaf(integer({ min: 1, max: 65535 }), 6379, 'Server port (standalone).'),
  username: leaf(string(), undefined, 'ACL user name.'),
  password: leaf(string(), undefined, 'Password (AUTH).', {
    sensitive: true,
    entryEnv: 'PASSWORD',
  }),
  db: leaf(integer({ min: 0 }), 0, 'Database index (standalone and sentinel).'),
  tls: {
    enabled: leaf(boolean, false, 'Connect with TLS (implied by a `rediss://` url).'),
    ...tlsSchema(),
  },
  sentinels: leaf(
    hostPorts,
    [],
    'Sentinel mode: sentinel addresses, `{ host, port }` or `"host:port"`.',
  ),
  masterName: leaf(string(), 'mymaster', 'Sentinel mode: the master group name.'),
  sentinelPassword: leaf(string(), undefined, 'Sentinel mode: password of the sentinels.', {
    sensitive: true,
  }),
  nodes: leaf(hostPorts, [], 'Cluster mode: seed nodes, `{ host, port }` or `"host:port"`.'),
  keyPrefix: leaf(string({ allowEmpty: true }), '', 'Prefix added to every key.'),
  pool: poolSchema(1, 10),
  commandTimeout: leaf(duration({ min: 1 }), '200ms', 'A command slower than this fails.'),
  connectTimeout: leaf(duration({ min: 1 }), '1s', 'Connect timeout.'),
  retry: retrySchema(2, []),
  breaker: breakerSchema({ type: 'time', size: 30 }, false),
  offlineQueue: leaf(
    integer({ min: 0 }),
    0,
    'Commands queued while disconnected; 0 disables the offline queue (fail fast).',
  ),
  health: {
    enabled: leaf(boolean, true, 'PING the server in the background.'),
    ...healthSchema('5s'),
  },
  critical: leaf(boolean, true, 'When false, this resource being unhealthy does not fail /readyz.'),
};

/** The fields of a `middleware.policies.<name>` entry (all optional, inherited from defaults). */
export const policyEntrySchema: SchemaOf<PolicySet> = policySetSchema(false);

/** The fields of a `middleware.routes[]` entry. */
export const routeEntrySchema: Branch = {
  name: leaf(
    labelName,
    undefined,
    'Route name: the label in metrics and logs (letters, digits, `_ . : -`; unique).',
    { required: true },
  ),
  match: leaf(
    routeMatch,
    undefined,
    '`"GET /orders/:id"`, `"GET,HEAD /orders"`, `"/admin/*"` (any method), or `{ methods, path }`.',
    { required: true },
  ),
  policy: leaf(
    labelName,
    undefined,
    'A `middleware.policies` entry the route starts from instead of the defaults.',
  ),
  ...policySetSchema(false),
};

/** The whole schema. */
export const configSchema: SchemaOf<ResilienceConfig> = {
  middleware: {
    trustProxy: leaf(
      trustProxy,
      false,
      "Which proxies to trust for the client IP (rate-limit keys), as Express's 'trust proxy': true, false, a hop count, or addresses/subnets/presets. Must agree with the app's setting.",
      { env: 'RESILIENCE_TRUST_PROXY' },
    ),
    exclude: leaf(
      pathList,
      ['/healthz', '/readyz', '/metrics'],
      'Paths that bypass every policy: exact, or a `/x/*` prefix; case and a trailing slash as the app routes them. A target that can be read several ways (percent-escapes, `//`, dot segments) is excluded only if every reading is.',
      { env: 'RESILIENCE_EXCLUDE' },
    ),
    deadlineHeader: {
      enabled: leaf(
        boolean,
        false,
        'Honour an incoming deadline header that shortens the route timeout (only behind trusted callers).',
        { env: 'RESILIENCE_DEADLINE_HEADER_ENABLED' },
      ),
      name: leaf(headerName, 'x-request-timeout-ms', 'The header, in milliseconds.', {
        env: 'RESILIENCE_DEADLINE_HEADER_NAME',
      }),
    },
    defaults: policySetSchema(true),
    routes: leaf(
      routeList(routeEntrySchema),
      [],
      'Per-route policies; the first match wins, unmatched requests get the defaults.',
    ),
    policies: leaf(
      policyMap(policyEntrySchema),
      {},
      'Named policy sets, for routers (`r.policy(name)`) and routes (`policy: name`).',
    ),
  },
  resources: {
    http: leaf(resourceMap('http', httpResourceSchema), {}, 'HTTP upstreams by name.'),
    redis: leaf(resourceMap('redis', redisResourceSchema), {}, 'Redis connections by name.'),
  },
  metrics: {
    enabled: leaf(boolean, true, 'Record Prometheus metrics and serve them.', {
      env: 'RESILIENCE_METRICS_ENABLED',
    }),
    path: leaf(urlPath, '/metrics', 'Path of the metrics endpoint.', {
      env: 'RESILIENCE_METRICS_PATH',
    }),
    prefix: leaf(metricPrefix, 'resilience_', 'Prefix of every metric name.', {
      env: 'RESILIENCE_METRICS_PREFIX',
    }),
    defaultMetrics: leaf(boolean, true, "Also collect prom-client's default process metrics.", {
      env: 'RESILIENCE_METRICS_DEFAULT_METRICS',
    }),
    buckets: leaf(
      buckets,
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      'Request-duration histogram buckets, in seconds.',
    ),
    protect: protectSchema('the metrics endpoint', 'METRICS'),
  },
  health: {
    enabled: leaf(boolean, true, 'Serve the liveness and readiness endpoints.', {
      env: 'RESILIENCE_HEALTH_ENABLED',
    }),
    livenessPath: leaf(urlPath, '/healthz', 'Liveness endpoint: 200 while the process runs.', {
      env: 'RESILIENCE_HEALTH_LIVENESS_PATH',
    }),
    readinessPath: leaf(
      urlPath,
      '/readyz',
      'Readiness endpoint: 503 while a critical resource is unhealthy or shutting down.',
      { env: 'RESILIENCE_HEALTH_READINESS_PATH' },
    ),
    details: leaf(
      boolean,
      true,
      'Include per-resource details in the readiness body (secrets never appear); with `protect` set, only for allowed clients.',
      { env: 'RESILIENCE_HEALTH_DETAILS' },
    ),
    breakersAffectReadiness: leaf(
      boolean,
      false,
      'When true, an open circuit breaker fails readiness (503); by default it is only listed in the details.',
      { env: 'RESILIENCE_HEALTH_BREAKERS_AFFECT_READINESS' },
    ),
    protect: protectSchema('the readiness details', 'HEALTH'),
  },
  shutdown: {
    delay: leaf(
      duration(),
      '0s',
      'On close, how long to keep serving with readiness already failing (503) before the server stops accepting: time for load balancers to stop sending.',
      { env: 'RESILIENCE_SHUTDOWN_DELAY' },
    ),
    grace: leaf(
      duration(),
      '10s',
      'Once the server stopped accepting, how long in-flight requests may take; those still running are then answered 503, and resources closed anyway.',
      { env: 'RESILIENCE_SHUTDOWN_GRACE' },
    ),
    handleSignals: leaf(boolean, false, 'Close on SIGTERM and SIGINT.', {
      env: 'RESILIENCE_SHUTDOWN_HANDLE_SIGNALS',
    }),
  },
};
