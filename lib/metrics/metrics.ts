import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SeriesHistogram } from './series-histogram.js';
import type { BreakerState, CircuitBreaker } from '../policies/breaker.js';
import type { Bulkhead } from '../policies/bulkhead.js';
import type { Disposable } from '../policies/listeners.js';
import type {
  StoreCallOutcome,
  StoreFallbackReason,
} from '../policies/rate-limit/resilient-store.js';
import type { CallEvents, HealthStatus, PoolEvents, PoolStats } from '../resources/types.js';

/** Options for {@link createMetrics}. */
export interface MetricsOptions {
  /** Registry to register on; default: a new one owned by this instance. */
  registry?: Registry | undefined;
  /** Prefix of every metric name; default `resilience_`. */
  prefix?: string | undefined;
  /** Request-duration histogram buckets, in seconds. */
  buckets?: readonly number[] | undefined;
  /** Also collect prom-client's default process metrics (once per registry); default false. */
  defaultMetrics?: boolean | undefined;
}

/** Why a request was turned away; the `reason` label of the rejection counter. */
export type RejectionReason =
  'rate_limited' | 'breaker_open' | 'bulkhead_full' | 'bulkhead_queue_timeout' | 'timeout';

/** A breaker's owner kind: an inbound route/named policy, or an outbound resource. */
export type BreakerScope = 'route' | 'resource';

const BREAKER_STATES: readonly BreakerState[] = ['closed', 'open', 'half-open', 'isolated'];

const HEALTH_STATUSES: readonly HealthStatus[] = ['up', 'degraded', 'down', 'unknown'];

const ACQUIRE_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

// A rate-limit store round trip is well under a millisecond on a LAN; its timeout is ~50 ms.
const STORE_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

const STORE_CALL_OUTCOMES: readonly StoreCallOutcome[] = ['success', 'timeout', 'error'];
const FALLBACK_REASONS: readonly StoreFallbackReason[] = ['timeout', 'error', 'down'];

/** What {@link ResilienceMetrics.watchRateLimitStore} reads: a `ResilientStore`'s events. */
export interface RateLimitStoreEvents {
  /** False while the store is known to be down. */
  readonly available: boolean;
  onStoreCall(listener: (outcome: StoreCallOutcome, durationMs: number) => void): Disposable;
  onFallback(listener: (reason: StoreFallbackReason) => void): Disposable;
  onBlockCacheHit(listener: () => void): Disposable;
}

/**
 * Gauges whose value is read from live objects at scrape time: pools and breakers expose a
 * stats snapshot, and nothing updates a gauge on the hot path. Kept per gauge, not per instance, because two middleware
 * instances sharing one registry share the gauge object prom-client hands back.
 */
const gaugeReaders = new WeakMap<Gauge, Set<(gauge: Gauge) => void>>();

/**
 * One label set of a counter written on every request: a plain number, added to the
 * prom-client counter when the registry is read (prom-client hashes the label object on every
 * `inc`, a few hundred nanoseconds a request).
 */
export class CounterSeries {
  private pending = 0;
  constructor(
    private readonly counter: Counter,
    private readonly labels: Readonly<Record<string, string>>,
  ) {}

  inc(): void {
    this.pending++;
  }

  flush(): void {
    if (this.pending === 0) return;
    this.counter.inc(this.labels, this.pending);
    this.pending = 0;
  }
}

const counterSeries = new WeakMap<Counter, Set<CounterSeries>>();

function flushCounterSeries(this: Counter): void {
  const series = counterSeries.get(this);
  if (series) for (const s of series) s.flush();
}

function readGauge(this: Gauge): void {
  this.reset();
  const readers = gaugeReaders.get(this);
  if (readers) for (const read of readers) read(this);
}

/**
 * Every metric of the pack, defined in one place on one prom-client registry. Policies never
 * import prom-client: this class subscribes to their events and reads their stats.
 */
export class ResilienceMetrics {
  readonly registry: Registry;
  readonly prefix: string;
  /** Requests turned away (or, in shadow mode, that would have been), by route and reason. */
  readonly rejections: Counter<'route' | 'reason' | 'mode'>;
  /** 1 for each breaker's current state, 0 for the others. */
  readonly breakerState: Gauge<'breaker' | 'scope' | 'state'>;
  readonly breakerTransitions: Counter<'breaker' | 'scope' | 'from' | 'to'>;
  readonly bulkheadActive: Gauge<'route'>;
  readonly bulkheadQueued: Gauge<'route'>;
  readonly bulkheadLimit: Gauge<'route'>;
  /** Slots taken back from handlers still running `releaseGrace` after their timeout. */
  readonly bulkheadForcedReleases: Counter<'route'>;
  /** Rate-limit decisions: allowed, limited, shadow_limited (counted, not enforced), allowlisted. */
  readonly rateLimitDecisions: Counter<'route' | 'result'>;
  /** Failed calls to a shared rate-limit store (timeouts included). */
  readonly rateLimitStoreErrors: Counter<'route' | 'store'>;
  /** Calls to a shared rate-limit store, by outcome (`success`, `timeout`, `error`). */
  readonly rateLimitStoreDuration: Histogram<'route' | 'store' | 'outcome'>;
  /** Decisions made by the fallback (`onStoreError`), by reason (`timeout`, `error`, `down`). */
  readonly rateLimitFallbacks: Counter<'route' | 'store' | 'reason'>;
  /** Decisions answered by the local cache of keys over their limit, without a round trip. */
  readonly rateLimitBlockCacheHits: Counter<'route' | 'store'>;
  /** 1 while a shared rate-limit store is in use, 0 while it is known to be down. */
  readonly rateLimitStoreUp: Gauge<'route' | 'store'>;
  /** Responses a handler attempted after its timeout response was sent; dropped. */
  readonly lateResponses: Counter<'route'>;
  readonly requestDuration: SeriesHistogram<'route' | 'method' | 'status_class'>;
  readonly poolSize: Gauge<'resource' | 'kind'>;
  readonly poolAvailable: Gauge<'resource' | 'kind'>;
  readonly poolBorrowed: Gauge<'resource' | 'kind'>;
  readonly poolPending: Gauge<'resource' | 'kind'>;
  readonly poolMax: Gauge<'resource' | 'kind'>;
  /** Time from acquire() to a member in hand. */
  readonly poolAcquireDuration: Histogram<'resource' | 'kind'>;
  readonly poolAcquireErrors: Counter<'resource' | 'kind' | 'reason'>;
  /** Members borrowed longer than `leaseWarning`: probable leaks. */
  readonly poolLeaseWarnings: Counter<'resource' | 'kind'>;
  readonly poolCreateErrors: Counter<'resource' | 'kind'>;
  /** Outbound calls (all attempts of one call) by outcome, and their duration. */
  readonly upstreamCalls: Counter<'resource' | 'kind' | 'outcome'>;
  readonly upstreamDuration: Histogram<'resource' | 'kind' | 'outcome'>;
  readonly upstreamRetries: Counter<'resource' | 'kind'>;
  readonly retryBudgetExhausted: Counter<'resource' | 'kind'>;
  /** 1 for each resource's current health status, 0 for the others. */
  readonly resourceHealth: Gauge<'resource' | 'kind' | 'status'>;

  private readonly disposables = new Set<Disposable>();
  private closed = false;

  constructor(options: MetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    const p = (this.prefix = options.prefix ?? 'resilience_');
    if (
      options.defaultMetrics === true &&
      !this.registry.getSingleMetric(`${p}process_cpu_seconds_total`)
    ) {
      collectDefaultMetrics({ register: this.registry, prefix: p });
    }

    this.rejections = this.counter(
      `${p}rejections_total`,
      'Requests rejected by a resilience policy (mode="shadow": would have been, but enforce is off).',
      ['route', 'reason', 'mode'],
    );
    this.breakerState = this.gauge(
      `${p}breaker_state`,
      'Circuit breaker state: 1 for the current state, 0 for the others.',
      ['breaker', 'scope', 'state'],
    );
    this.breakerTransitions = this.counter(
      `${p}breaker_transitions_total`,
      'Circuit breaker state transitions.',
      ['breaker', 'scope', 'from', 'to'],
    );
    this.bulkheadActive = this.gauge(`${p}bulkhead_active`, 'Calls holding a bulkhead slot.', [
      'route',
    ]);
    this.bulkheadQueued = this.gauge(`${p}bulkhead_queued`, 'Calls waiting in a bulkhead queue.', [
      'route',
    ]);
    this.bulkheadLimit = this.gauge(`${p}bulkhead_limit`, 'Bulkhead concurrency limit.', ['route']);
    this.bulkheadForcedReleases = this.counter(
      `${p}bulkhead_forced_releases_total`,
      'Bulkhead slots force-released after the grace period because the handler never finished.',
      ['route'],
    );
    this.rateLimitDecisions = this.counter(
      `${p}rate_limit_decisions_total`,
      'Rate-limit decisions by result.',
      ['route', 'result'],
    );
    this.rateLimitStoreErrors = this.counter(
      `${p}rate_limit_store_errors_total`,
      'Rate-limit store failures.',
      ['route', 'store'],
    );
    this.rateLimitStoreDuration = this.histogram(
      `${p}rate_limit_store_duration_seconds`,
      'Calls to a shared rate-limit store (one decision each), by outcome.',
      ['route', 'store', 'outcome'],
      STORE_BUCKETS,
    );
    this.rateLimitFallbacks = this.counter(
      `${p}rate_limit_fallbacks_total`,
      'Rate-limit decisions made by the onStoreError fallback, by reason (timeout, error, down: the store was not tried).',
      ['route', 'store', 'reason'],
    );
    this.rateLimitBlockCacheHits = this.counter(
      `${p}rate_limit_block_cache_hits_total`,
      'Rate-limit decisions answered by the local cache of keys over their limit (no store round trip).',
      ['route', 'store'],
    );
    this.rateLimitStoreUp = this.gauge(
      `${p}rate_limit_store_up`,
      'Shared rate-limit store state: 1 in use, 0 known to be down (the fallback decides).',
      ['route', 'store'],
    );
    this.lateResponses = this.counter(
      `${p}late_responses_total`,
      'Responses from handlers that finished after their timeout response was sent (dropped).',
      ['route'],
    );
    const durationName = `${p}http_request_duration_seconds`;
    this.requestDuration =
      this.existing<SeriesHistogram<'route' | 'method' | 'status_class'>>(
        durationName,
        SeriesHistogram,
      ) ??
      new SeriesHistogram(
        durationName,
        'Inbound request duration, by route name, method and status class.',
        ['route', 'method', 'status_class'],
        options.buckets ?? DEFAULT_BUCKETS,
        this.registry,
      );
    const res: ('resource' | 'kind')[] = ['resource', 'kind'];
    this.poolSize = this.gauge(`${p}pool_size`, 'Pool members that exist.', res);
    this.poolAvailable = this.gauge(`${p}pool_available`, 'Idle pool members.', res);
    this.poolBorrowed = this.gauge(`${p}pool_borrowed`, 'Pool members in use.', res);
    this.poolPending = this.gauge(`${p}pool_pending`, 'Acquires waiting for a pool member.', res);
    this.poolMax = this.gauge(`${p}pool_max`, 'Pool size limit.', res);
    this.poolAcquireDuration = this.histogram(
      `${p}pool_acquire_duration_seconds`,
      'Time to acquire a pool member.',
      res,
      ACQUIRE_BUCKETS,
    );
    this.poolAcquireErrors = this.counter(
      `${p}pool_acquire_errors_total`,
      'Failed pool acquires, by reason.',
      ['resource', 'kind', 'reason'],
    );
    this.poolLeaseWarnings = this.counter(
      `${p}pool_lease_warnings_total`,
      'Pool members borrowed longer than leaseWarning (probable leaks).',
      res,
    );
    this.poolCreateErrors = this.counter(
      `${p}pool_create_errors_total`,
      'Pool member creations that failed.',
      res,
    );
    this.upstreamCalls = this.counter(
      `${p}upstream_calls_total`,
      'Outbound calls through a resource, by outcome (all attempts of a call count once).',
      ['resource', 'kind', 'outcome'],
    );
    this.upstreamDuration = this.histogram(
      `${p}upstream_call_duration_seconds`,
      'Outbound call duration including retries, by outcome.',
      ['resource', 'kind', 'outcome'],
      options.buckets ?? DEFAULT_BUCKETS,
    );
    this.upstreamRetries = this.counter(`${p}upstream_retries_total`, 'Outbound retries.', res);
    this.retryBudgetExhausted = this.counter(
      `${p}retry_budget_exhausted_total`,
      'Retries refused because the retry budget was spent.',
      res,
    );
    this.resourceHealth = this.gauge(
      `${p}resource_health`,
      'Resource health: 1 for the current status (up, degraded, down, unknown), 0 for the others.',
      ['resource', 'kind', 'status'],
    );
  }

  /** Publishes a pool's stats and events under the resource's name. */
  watchPool(resource: string, kind: string, pool: PoolEvents & { stats(): PoolStats }): Disposable {
    const labels = { resource, kind };
    const acquireDuration = this.poolAcquireDuration.labels(resource, kind);
    return this.track(
      this.addReader(this.poolSize, (g) => g.set(labels, pool.stats().size)),
      this.addReader(this.poolAvailable, (g) => g.set(labels, pool.stats().available)),
      this.addReader(this.poolBorrowed, (g) => g.set(labels, pool.stats().borrowed)),
      this.addReader(this.poolPending, (g) => g.set(labels, pool.stats().pending)),
      this.addReader(this.poolMax, (g) => g.set(labels, pool.stats().max)),
      pool.onAcquire((waitMs) => acquireDuration.observe(waitMs / 1000)),
      pool.onAcquireError((reason) => this.poolAcquireErrors.inc({ resource, kind, reason })),
      pool.onLeaseWarning(() => this.poolLeaseWarnings.inc(labels)),
      pool.onCreateError(() => this.poolCreateErrors.inc(labels)),
    );
  }

  /** Publishes an outbound resource's calls, retries and budget exhaustion. */
  watchCalls(resource: string, kind: string, events: CallEvents): Disposable {
    const labels = { resource, kind };
    return this.track(
      events.onCall((outcome, durationMs) => {
        this.upstreamCalls.inc({ resource, kind, outcome });
        this.upstreamDuration.observe({ resource, kind, outcome }, durationMs / 1000);
      }),
      events.onRetry(() => this.upstreamRetries.inc(labels)),
      events.onBudgetExhausted(() => this.retryBudgetExhausted.inc(labels)),
    );
  }

  /** Publishes a resource's health status, read at scrape time. */
  watchHealth(resource: string, kind: string, status: () => HealthStatus): Disposable {
    return this.track(
      this.addReader(this.resourceHealth, (g) => {
        const current = status();
        for (const s of HEALTH_STATUSES) {
          g.set({ resource, kind, status: s }, s === current ? 1 : 0);
        }
      }),
    );
  }

  /** Publishes a breaker's state and transitions under `name`; returns a handle that stops it. */
  watchBreaker(name: string, scope: BreakerScope, breaker: CircuitBreaker): Disposable {
    const readState = (gauge: Gauge): void => {
      const state = breaker.state;
      for (const s of BREAKER_STATES)
        gauge.set({ breaker: name, scope, state: s }, s === state ? 1 : 0);
    };
    const stateChanges = breaker.onStateChange(({ from, to }) => {
      this.breakerTransitions.inc({ breaker: name, scope, from, to });
    });
    return this.track(this.addReader(this.breakerState, readState), stateChanges);
  }

  /**
   * Publishes a shared rate-limit store's calls (latency histogram, errors), fallbacks, block
   * cache hits and up/down state under the route `name` and the store spec (`redis:cache`).
   */
  watchRateLimitStore(route: string, store: string, events: RateLimitStoreEvents): Disposable {
    // Children resolved once: these fire on every decision.
    const durations = new Map(
      STORE_CALL_OUTCOMES.map((o) => [o, this.rateLimitStoreDuration.labels(route, store, o)]),
    );
    const fallbacks = new Map(
      FALLBACK_REASONS.map((r) => [r, this.rateLimitFallbacks.labels(route, store, r)]),
    );
    const errors = this.rateLimitStoreErrors.labels(route, store);
    const hits = this.rateLimitBlockCacheHits.labels(route, store);
    return this.track(
      events.onStoreCall((outcome, durationMs) => {
        durations.get(outcome)?.observe(durationMs / 1000);
        if (outcome !== 'success') errors.inc();
      }),
      events.onFallback((reason) => fallbacks.get(reason)?.inc()),
      events.onBlockCacheHit(() => hits.inc()),
      this.addReader(this.rateLimitStoreUp, (g) =>
        g.set({ route, store }, events.available ? 1 : 0),
      ),
    );
  }

  /** Publishes a bulkhead's active/queued/limit under the route `name`. */
  watchBulkhead(name: string, bulkhead: Bulkhead): Disposable {
    return this.track(
      this.addReader(this.bulkheadActive, (g) => g.set({ route: name }, bulkhead.active)),
      this.addReader(this.bulkheadQueued, (g) => g.set({ route: name }, bulkhead.queued)),
      this.addReader(this.bulkheadLimit, (g) => g.set({ route: name }, bulkhead.maxConcurrent)),
    );
  }

  /** The Prometheus text exposition of the registry. */
  async scrape(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops every subscription made through this instance; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const d of this.disposables) d.dispose();
    this.disposables.clear();
  }

  private track(...parts: Disposable[]): Disposable {
    const handle: Disposable = {
      dispose: () => {
        if (!this.disposables.delete(handle)) return;
        for (const part of parts) part.dispose();
      },
    };
    this.disposables.add(handle);
    return handle;
  }

  private addReader<L extends string>(
    gauge: Gauge<L>,
    read: (gauge: Gauge<L>) => void,
  ): Disposable {
    const readers = gaugeReaders.get(gauge as Gauge) as Set<(g: Gauge<L>) => void> | undefined;
    readers?.add(read);
    return { dispose: () => readers?.delete(read) };
  }

  private existing<M extends object>(
    name: string,
    kind: new (...args: never[]) => M,
  ): M | undefined {
    const found: object | undefined = this.registry.getSingleMetric(name);
    if (found === undefined) return undefined;
    if (!(found instanceof kind)) {
      throw new TypeError(`metric ${name} already exists in the registry with another type`);
    }
    return found;
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    const found = this.existing<Counter<L>>(name, Counter);
    if (found) return found;
    const counter = new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect: flushCounterSeries,
    });
    counterSeries.set(counter as Counter, new Set());
    return counter;
  }

  /**
   * A series of `counter` for a hot path: `inc()` adds to a plain number, published when the
   * registry is read. Lives as long as the counter (a bounded set of label values per caller).
   */
  counterSeries<L extends string>(counter: Counter<L>, labels: Record<L, string>): CounterSeries {
    const series = new CounterSeries(counter as Counter, labels);
    counterSeries.get(counter as Counter)?.add(series);
    return series;
  }

  private gauge<L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> {
    const found = this.existing<Gauge<L>>(name, Gauge);
    if (found) return found;
    const gauge = new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect: readGauge,
    });
    gaugeReaders.set(gauge as Gauge, new Set());
    return gauge;
  }

  private histogram<L extends string>(
    name: string,
    help: string,
    labelNames: L[],
    buckets: readonly number[],
  ): Histogram<L> {
    return (
      this.existing<Histogram<L>>(name, Histogram) ??
      new Histogram({ name, help, labelNames, buckets: [...buckets], registers: [this.registry] })
    );
  }
}

/** Creates the pack's metrics on `options.registry` (or a new registry). */
export function createMetrics(options?: MetricsOptions): ResilienceMetrics {
  return new ResilienceMetrics(options);
}

/** `2xx`, `4xx`, … for a status code: a bounded label. */
export function statusClass(status: number): string {
  if (status >= 100 && status < 600) return `${Math.floor(status / 100)}xx`;
  return 'other';
}
