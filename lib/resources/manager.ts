import { resolveConfig } from '../config/index.js';
import type {
  BreakerPolicyConfig,
  HttpResourceConfig,
  PoolConfig,
  ResourcesConfig,
  RetryConfig,
} from '../config/types.js';
import { InvalidArgumentError, ResourceUnavailableError } from '../errors.js';
import type { HealthCheck, HealthCheckOptions } from '../health/check.js';
import { HealthMonitor } from '../health/monitor.js';
import type { ResilienceMetrics } from '../metrics/metrics.js';
import type { Logger } from '../logger.js';
import { HttpResource } from './http-resource.js';
import type { PoolFactory } from './pool.js';
import { PooledResource, type CallOptions } from './pooled-resource.js';
import { RedisResource } from './redis-resource.js';
import type { CallOutcome, Disposable, ManagedResource } from './types.js';

/**
 * A resource kind registered from code (a database or queue client): given a generic-pool
 * style factory, it gets the same pooling, breaker, retry, health and metrics as HTTP and
 * Redis resources.
 */
export interface CustomResourceDefinition<T> {
  /** The `kind` label in metrics and health; default `custom`. */
  kind?: string;
  factory: PoolFactory<T>;
  /**
   * Health probe, run on a member of its own made by `factory` outside the pool (a saturated
   * pool does not fail it); default: making (and validating) that member.
   */
  // Method syntax keeps definitions of any member type assignable to the options' map.
  probe?(member: T, signal: AbortSignal): Promise<void>;
  pool?: Partial<PoolConfig>;
  retry?: Partial<Omit<RetryConfig, 'backoff' | 'budget'>> & {
    backoff?: Partial<RetryConfig['backoff']>;
    budget?: Partial<RetryConfig['budget']>;
  };
  breaker?: Partial<BreakerPolicyConfig>;
  /** Total call timeout in milliseconds; default the HTTP resources' request timeout. */
  timeout?: number;
  health?: Partial<HealthCheckOptions> & { enabled?: boolean };
  /** Default true: an unhealthy critical resource fails /readyz. */
  critical?: boolean;
}

/** A pooled custom resource: `use(fn)` runs `fn` with a member under the resource's policies. */
export class CustomResource<T> extends PooledResource<T> {
  constructor(
    name: string,
    private readonly definition: CustomResourceDefinition<T>,
    defaults: HttpResourceConfig,
  ) {
    super(
      {
        name,
        kind: definition.kind ?? 'custom',
        critical: definition.critical ?? true,
        pool: { ...defaults.pool, ...definition.pool },
        retry: {
          ...defaults.retry,
          ...definition.retry,
          backoff: { ...defaults.retry.backoff, ...definition.retry?.backoff },
          budget: { ...defaults.retry.budget, ...definition.retry?.budget },
        },
        breaker: { ...defaults.breaker, ...definition.breaker },
        timeoutMs: definition.timeout ?? defaults.timeouts.request,
      },
      definition.factory,
    );
  }

  /**
   * Runs `fn` with a pooled member through breaker → retry → timeout → pool. Not retried
   * unless `idempotent: true`.
   */
  use<R>(
    fn: (member: T, signal: AbortSignal) => Promise<R>,
    options: Partial<Pick<CallOptions<R>, 'idempotent' | 'signal' | 'timeoutMs' | 'isBroken'>> = {},
  ): Promise<R> {
    return this.execute(fn, { ...options, idempotent: options.idempotent ?? false });
  }

  /**
   * The definition's probe on the probe's own member, outside the pool (see
   * {@link PooledResource.probeWith}); without one, making and validating that member is the
   * check. A member whose probe failed is destroyed: the next probe starts on a fresh one.
   */
  probe(signal: AbortSignal): Promise<void> {
    const definition = this.definition;
    return this.probeWith(
      (member) =>
        definition.probe === undefined ? Promise.resolve() : definition.probe(member, signal),
      { signal, isBroken: always },
    );
  }
}

function always(): boolean {
  return true;
}

/** Errors that count against a resource's recent error rate (for `degraded`). */
const FAILED_OUTCOMES = new Set<CallOutcome>([
  'failure',
  'timeout',
  'breaker-open',
  'budget-exhausted',
]);
const ERROR_RATE_WINDOW = 100;
const ERROR_RATE_MIN_CALLS = 10;

/**
 * The outcomes of a resource's last 100 calls, for the health model's recent error rate. A
 * fixed ring: O(1) per call, no allocation.
 */
class RecentOutcomes {
  private readonly ring = new Uint8Array(ERROR_RATE_WINDOW);
  private next = 0;
  private count = 0;
  private failures = 0;

  record(failed: boolean): void {
    if (this.count === ERROR_RATE_WINDOW) this.failures -= this.ring[this.next]!;
    else this.count++;
    this.ring[this.next] = failed ? 1 : 0;
    if (failed) this.failures++;
    this.next = (this.next + 1) % ERROR_RATE_WINDOW;
  }

  rate(): number | undefined {
    return this.count < ERROR_RATE_MIN_CALLS ? undefined : this.failures / this.count;
  }
}

interface Entry {
  resource: PooledResource<unknown>;
  health: (HealthCheckOptions & { enabled: boolean }) | undefined;
}

let defaultsCache: HttpResourceConfig | undefined;
/** Resource defaults straight from the schema (the single source of truth), for custom kinds. */
function customDefaults(): HttpResourceConfig {
  defaultsCache ??= resolveConfig(
    { resources: { http: { defaults: { origin: 'http://127.0.0.1' } } } },
    { environment: {} },
  ).resources.http.defaults!;
  return defaultsCache;
}

/** Options of {@link ResourceManager}. */
export interface ResourceManagerOptions {
  metrics: ResilienceMetrics;
  /** Custom resources registered from code, by name. */
  custom?: Readonly<Record<string, CustomResourceDefinition<unknown>>>;
  /** Where health checks run; default a new monitor owned by the manager. */
  monitor?: HealthMonitor;
  /** Receives probable-leak reports; default `process.emitWarning`. */
  logger?: Logger | undefined;
}

/**
 * Creates the resources named in `resources.http.*` and `resources.redis.*` (and custom ones
 * from code), hands them out by name, monitors their health in the background, publishes
 * their metrics, and closes them. Construction is all or nothing: when one resource cannot be
 * built, those already built are closed and the error names the one that failed.
 */
export class ResourceManager {
  readonly monitor: HealthMonitor;
  private readonly entries = new Map<string, Entry>();
  private readonly disposables: Disposable[] = [];
  private started: Promise<void> | undefined;
  private closed: Promise<void> | undefined;

  constructor(config: ResourcesConfig, options: ResourceManagerOptions) {
    this.monitor = options.monitor ?? new HealthMonitor();
    try {
      for (const [name, http] of Object.entries(config.http)) {
        this.add(name, () => new HttpResource(http), http.health);
      }
      for (const [name, redis] of Object.entries(config.redis)) {
        this.add(name, () => new RedisResource(redis), redis.health);
      }
      for (const [name, definition] of Object.entries(options.custom ?? {})) {
        const defaults = customDefaults();
        const health = { ...defaults.health, ...definition.health };
        this.add(name, () => new CustomResource(name, definition, defaults), health);
      }
    } catch (err) {
      void this.close(0);
      throw err;
    }
    for (const { resource, health } of this.entries.values()) {
      const { name, kind } = resource;
      const metrics = options.metrics;
      this.disposables.push(metrics.watchPool(name, kind, resource.pool));
      this.disposables.push(metrics.watchCalls(name, kind, resource));
      if (resource.breaker !== undefined) {
        this.disposables.push(metrics.watchBreaker(name, 'resource', resource.breaker));
      }
      this.disposables.push(
        resource.pool.onLeaseWarning(({ heldMs, stack }) => {
          const message = `resource ${JSON.stringify(name)}: a pool member has been borrowed for ${heldMs} ms without being released (probable leak)`;
          if (options.logger) {
            options.logger.warn(
              { code: 'RESILIENCE_LEASE_LEAK', resource: name, heldMs, acquiredAt: stack },
              message,
            );
          } else {
            process.emitWarning(`${message}; acquired at:\n${stack ?? '(stack not captured)'}`, {
              code: 'RESILIENCE_LEASE_LEAK',
            });
          }
        }),
      );
      if (health !== undefined && health.enabled) {
        const outcomes = new RecentOutcomes();
        this.disposables.push(
          resource.onCall((outcome) => outcomes.record(FAILED_OUTCOMES.has(outcome))),
        );
        this.disposables.push(this.monitor.add(healthCheck(resource, outcomes), health));
        this.disposables.push(
          metrics.watchHealth(name, kind, () => this.monitor.report(name).status),
        );
      }
    }
  }

  /** The HTTP resource `name`; throws InvalidArgumentError naming the configured ones. */
  http(name: string): HttpResource {
    return this.lookup(name, HttpResource, 'resources.http');
  }

  /** The Redis resource `name`; throws InvalidArgumentError naming the configured ones. */
  redis(name: string): RedisResource {
    return this.lookup(name, RedisResource, 'resources.redis');
  }

  /** The custom resource `name` registered from code. */
  custom<T>(name: string): CustomResource<T> {
    return this.lookup(name, CustomResource, 'custom resources') as CustomResource<T>;
  }

  /** Any resource by name, or undefined. */
  get(name: string): ManagedResource | undefined {
    return this.entries.get(name)?.resource;
  }

  /** The names of every resource. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * Starts every pool (warming `min` members in the background) and the health monitor, then
   * runs one round of health checks. Idempotent. Never rejects for an unreachable upstream:
   * that is what health reports; it rejects only when the manager was closed first.
   */
  start(): Promise<void> {
    this.started ??= (async () => {
      if (this.closed !== undefined) {
        throw new ResourceUnavailableError('the resource manager is closed');
      }
      await Promise.all([...this.entries.values()].map(({ resource }) => resource.start()));
      this.monitor.start();
      await this.monitor.checkNow();
    })();
    return this.started;
  }

  /**
   * Stops health checks and drains every resource: no new calls, borrowed members get up to
   * `graceMs` to come back, then everything is destroyed. Idempotent.
   */
  close(graceMs = 0): Promise<void> {
    this.closed ??= (async () => {
      for (const d of this.disposables.splice(0)) d.dispose();
      this.monitor.close();
      await Promise.allSettled(
        [...this.entries.values()].map(({ resource }) => resource.close(graceMs)),
      );
    })();
    return this.closed;
  }

  private add(name: string, create: () => PooledResource<unknown>, health: Entry['health']): void {
    if (this.entries.has(name)) {
      throw new InvalidArgumentError(
        `resource names must be unique across kinds: ${JSON.stringify(name)} is defined twice`,
      );
    }
    let resource: PooledResource<unknown>;
    try {
      resource = create();
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new ResourceUnavailableError(
        `resource ${JSON.stringify(name)} could not be created: ${reason}`,
        {
          cause: err,
          resource: name,
        },
      );
    }
    this.entries.set(name, { resource, health });
  }

  private lookup<R>(name: string, kind: abstract new (...args: never[]) => R, where: string): R {
    const resource = this.entries.get(name)?.resource;
    if (resource instanceof kind) return resource;
    const known = [...this.entries.values()]
      .filter(({ resource: r }) => r instanceof kind)
      .map(({ resource: r }) => JSON.stringify(r.name));
    throw new InvalidArgumentError(
      `unknown resource ${JSON.stringify(name)} in ${where}; configured: ${known.length > 0 ? known.join(', ') : 'none'}`,
    );
  }
}

function healthCheck(resource: PooledResource<unknown>, outcomes: RecentOutcomes): HealthCheck {
  return {
    name: resource.name,
    kind: resource.kind,
    critical: resource.critical,
    probe: (signal) => resource.probe(signal),
    utilisation: () => {
      const s = resource.stats();
      return s.max === 0 ? 0 : Math.min(1, (s.borrowed + s.pending) / s.max);
    },
    errorRate: () => outcomes.rate(),
    details: () => {
      const s = resource.stats();
      return {
        pool: {
          size: s.size,
          available: s.available,
          borrowed: s.borrowed,
          pending: s.pending,
          max: s.max,
        },
        breaker: resource.breaker?.state ?? 'disabled',
      };
    },
  };
}
