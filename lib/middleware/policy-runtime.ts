import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PolicySet } from '../config/types.js';
import {
  BreakerOpenError,
  InvalidArgumentError,
  RateLimitedError,
  ResourceUnavailableError,
  withoutStack,
  type ResilienceError,
} from '../errors.js';
import type { CounterSeries, ResilienceMetrics, RejectionReason } from '../metrics/metrics.js';
import { CircuitBreaker } from '../policies/breaker.js';
import { Bulkhead } from '../policies/bulkhead.js';
import { RateLimiter } from '../policies/rate-limit.js';
import { compileAllowlist } from '../policies/rate-limit/allowlist.js';
import { rateLimitPolicyHeader } from '../policies/rate-limit/headers.js';
import { ipKey } from '../policies/rate-limit/ip-key.js';
import { ResilientStore } from '../policies/rate-limit/resilient-store.js';
import type { RateLimitStore } from '../policies/rate-limit/store.js';
import { statusMatcher } from '../policies/status-patterns.js';
import { clientIp, type TrustFunction } from './client-ip.js';
import type { ResourceManager } from '../resources/manager.js';
import type { Lifecycle } from './lifecycle.js';
import { RequestRun } from './request-run.js';
import type { Logger } from './warnings.js';

/** Derives the rate-limit key of a request; named in config as `key: fn:<name>`. */
export type KeyGenerator = (req: IncomingMessage) => string | Promise<string>;

/**
 * Renders a rejection instead of the default problem+json. `Retry-After` and the RateLimit
 * headers are already set; call `next(err)` to hand the error to the app's error handler.
 */
export type RejectHandler = (
  err: ResilienceError,
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void;

/** What every runtime of one middleware instance shares. */
export interface RuntimeEnvironment {
  metrics: ResilienceMetrics;
  logger: Logger | undefined;
  trust: TrustFunction;
  keyGenerators: Readonly<Record<string, KeyGenerator>>;
  onReject: RejectHandler | undefined;
  /** Lower-cased incoming deadline header name, or null when not honoured. */
  deadlineHeader: string | null;
  /** The resource manager, set once it is built. */
  resources?: ResourceManager | undefined;
  /** In-flight requests and the shutting-down flag, shared by every runtime. */
  lifecycle: Lifecycle;
  /** Builds the store of `route` for `rateLimit.store` values other than `memory`. */
  createStore:
    ((spec: string, policy: PolicySet['rateLimit'], route: string) => RateLimitStore) | undefined;
}

/** `status_class` label values, indexed by the status code's hundreds (0: out of range). */
const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx', 'aborted'] as const;
const ABORTED_CLASS = 6;
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

type HistogramChild = { observe(value: number): void };

/**
 * The live policies of one route (or named policy set): its breaker, bulkhead and limiter,
 * created once at start-up from the resolved config, plus what a request needs to use them.
 */
export class PolicyRuntime {
  readonly breaker: CircuitBreaker | undefined;
  readonly bulkhead: Bulkhead | undefined;
  readonly limiter: RateLimiter | undefined;
  readonly isFailureStatus: (status: number) => boolean;
  /** Used when the limiter's store fails and `onStoreError` is `local`. */
  readonly localLimiter: RateLimiter | undefined;
  readonly keyOf: ((req: IncomingMessage) => string | Promise<string>) | undefined;
  readonly isAllowlisted: ((key: string, req: IncomingMessage) => boolean) | undefined;
  readonly rateLimitPolicyHeader: string | undefined;
  /** `rate_limit_decisions_total{result="allowed"}` of this route: counted on every request. */
  readonly allowedDecisions: CounterSeries;
  private readonly durations = new Map<string, (HistogramChild | undefined)[]>();
  private readonly disposables: { dispose(): void }[] = [];

  constructor(
    readonly name: string,
    readonly policies: PolicySet,
    readonly env: RuntimeEnvironment,
  ) {
    const { breaker, bulkhead, rateLimit } = policies;
    this.allowedDecisions = env.metrics.counterSeries(env.metrics.rateLimitDecisions, {
      route: name,
      result: 'allowed',
    });
    this.isFailureStatus = statusMatcher(
      breaker.failureStatuses,
      `${name}: breaker.failureStatuses`,
    );
    if (breaker.enabled) {
      this.breaker = new CircuitBreaker({
        window: breaker.window,
        minimumCalls: breaker.minimumCalls,
        failureRate: breaker.failureRate,
        slowCall: breaker.slowCall,
        halfOpenAfter: breaker.halfOpenAfter,
        halfOpenProbes: breaker.halfOpenProbes,
        openBackoff: breaker.openBackoff,
      });
      this.disposables.push(env.metrics.watchBreaker(name, 'route', this.breaker));
    }
    if (bulkhead.enabled) {
      this.bulkhead = new Bulkhead({
        maxConcurrent: bulkhead.maxConcurrent,
        maxQueue: bulkhead.maxQueue,
        queueTimeout: bulkhead.queueTimeout,
      });
      this.disposables.push(env.metrics.watchBulkhead(name, this.bulkhead));
    }
    if (rateLimit.enabled) {
      const rule = {
        name,
        algorithm: rateLimit.algorithm,
        limit: rateLimit.limit,
        windowMs: rateLimit.window,
        burst: rateLimit.burst,
      };
      // A memory store is owned (and closed) by its limiter; a shared store is namespaced by
      // the limiter with the route name.
      this.limiter =
        rateLimit.store === 'memory'
          ? new RateLimiter({ ...rule, maxKeys: rateLimit.maxKeys })
          : new RateLimiter({ ...rule, store: this.sharedStore(rateLimit.store, rateLimit) });
      // A ResilientStore answers store failures itself and never throws.
      if (
        rateLimit.onStoreError === 'local' &&
        rateLimit.store !== 'memory' &&
        !(this.limiter.store instanceof ResilientStore)
      ) {
        this.localLimiter = new RateLimiter({ ...rule, maxKeys: rateLimit.maxKeys });
      }
      this.keyOf = this.compileKey(rateLimit.key, rateLimit.ipv6Prefix);
      if (rateLimit.allowlist.length > 0) {
        const allowed = compileAllowlist(rateLimit.allowlist);
        // Header keys carry an `h:` prefix (so a header value never collides with an address
        // key); the allowlist names the header's value as the client sends it.
        const byHeader = rateLimit.key.startsWith('header:');
        this.isAllowlisted = (key, req) =>
          allowed(byHeader && key.startsWith('h:') ? key.slice(2) : key, clientIp(req, env.trust));
      }
      this.rateLimitPolicyHeader = rateLimitPolicyHeader(name, this.limiter.rule);
    }
  }

  /** Runs one request through this runtime's policies, then `next`. */
  handle(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    new RequestRun(this, req, res, next).start();
  }

  /** Counts a rejection (or, with `enforce: false`, a would-be rejection). */
  countRejection(reason: RejectionReason, enforced: boolean): void {
    this.env.metrics.rejections.inc({
      route: this.name,
      reason,
      mode: enforced ? 'enforce' : 'shadow',
    });
  }

  /** Records a finished request in the duration histogram; children cached per label set. */
  /**
   * Records a finished request in the duration histogram. `status` is the response's status
   * code, or `'aborted'` when the client went away first. Series are cached per method and
   * status class, so a request builds no label strings.
   */
  observeDuration(method: string | undefined, status: number | 'aborted', seconds: number): void {
    const m = method !== undefined && KNOWN_METHODS.has(method) ? method : 'OTHER';
    const index =
      status === 'aborted' ? ABORTED_CLASS : status >= 100 && status < 600 ? (status / 100) | 0 : 0;
    let byClass = this.durations.get(m);
    if (byClass === undefined) {
      byClass = new Array<HistogramChild | undefined>(STATUS_CLASSES.length);
      this.durations.set(m, byClass);
    }
    let child = byClass[index];
    if (child === undefined) {
      child = this.env.metrics.requestDuration.labels(this.name, m, STATUS_CLASSES[index]!);
      byClass[index] = child;
    }
    child.observe(seconds);
  }

  /** Builds a stackless breaker rejection carrying the time until the half-open probe. */
  breakerOpenError(): BreakerOpenError {
    const retryAfterMs = this.breaker?.retryAfterMs() ?? 0;
    const isolated = this.breaker?.state === 'isolated';
    return withoutStack(
      () =>
        new BreakerOpenError(
          isolated
            ? `Circuit breaker of ${this.name} is isolated`
            : `Circuit breaker of ${this.name} is open`,
          { retryAfterMs, isolated },
        ),
    );
  }

  rateLimitedError(retryAfterMs: number): RateLimitedError {
    return withoutStack(
      () =>
        new RateLimitedError(`Rate limit of ${this.name} exceeded`, {
          retryAfterMs,
          limit: this.policies.rateLimit.limit,
          policy: this.name,
        }),
    );
  }

  storeUnavailableError(cause: unknown): ResourceUnavailableError {
    return new ResourceUnavailableError(`Rate-limit store of ${this.name} is unavailable`, {
      cause,
      retryAfterMs: 1000,
    });
  }

  /** Stops timers and subscriptions; idempotent. */
  async close(): Promise<void> {
    for (const d of this.disposables.splice(0)) d.dispose();
    this.bulkhead?.close();
    await Promise.all([this.limiter?.close(), this.localLimiter?.close()]);
  }

  private sharedStore(spec: string, policy: PolicySet['rateLimit']): RateLimitStore {
    if (this.env.createStore === undefined) {
      throw new InvalidArgumentError(
        `${this.name}: rateLimit.store ${JSON.stringify(spec)} needs a store this middleware cannot build`,
      );
    }
    return this.env.createStore(spec, policy, this.name);
  }

  private compileKey(
    key: string,
    ipv6Prefix: number,
  ): (req: IncomingMessage) => string | Promise<string> {
    const trust = this.env.trust;
    const byIp = (req: IncomingMessage): string => ipKey(clientIp(req, trust), ipv6Prefix);
    if (key === 'ip') return byIp;
    if (key.startsWith('header:')) {
      const header = key.slice('header:'.length).toLowerCase();
      // A request without the header is limited by its address, never let through unkeyed.
      return (req) => {
        const value = req.headers[header];
        const first = Array.isArray(value) ? value[0] : value;
        return first === undefined || first === '' ? `ip:${byIp(req)}` : `h:${first}`;
      };
    }
    if (key.startsWith('fn:')) {
      const fnName = key.slice('fn:'.length);
      const generator = this.env.keyGenerators[fnName];
      if (generator === undefined) {
        throw new InvalidArgumentError(
          `${this.name}: rateLimit.key ${JSON.stringify(key)} names no key generator; pass options.keyGenerators.${fnName}`,
        );
      }
      return generator;
    }
    throw new InvalidArgumentError(`${this.name}: invalid rateLimit.key ${JSON.stringify(key)}`);
  }
}
