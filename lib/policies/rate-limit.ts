import { InvalidArgumentError } from '../errors.js';
import type { Clock } from './clock.js';
import { MemoryStore } from './rate-limit/memory-store.js';
import type {
  RateLimitAlgorithm,
  RateLimitDecision,
  RateLimitRule,
  RateLimitStore,
} from './rate-limit/store.js';

export type {
  RateLimitAlgorithm,
  RateLimitDecision,
  RateLimitRule,
  RateLimitStore,
} from './rate-limit/store.js';

/** Options of {@link RateLimiter}. */
export interface RateLimiterOptions {
  /**
   * The policy's name (the route name): the `RateLimit` header's policy name, and the key
   * namespace in a shared store. Non-empty printable ASCII, since it goes into a header.
   */
  name: string;
  /** Default `'gcra'`. */
  algorithm?: RateLimitAlgorithm;
  /** Requests per window (the sustained rate for GCRA). Integer ≥ 1. */
  limit: number;
  /** Window in milliseconds, > 0. */
  windowMs: number;
  /** GCRA only: extra requests a fresh client may send at once. Integer ≥ 0; default 0. */
  burst?: number;
  /**
   * Where counters live. Default: a new {@link MemoryStore} owned (and closed) by this
   * limiter. A store passed in is taken as shared: the limiter never closes it, and prefixes
   * its keys (see `keyPrefix`) so several limiters can use one store.
   */
  store?: RateLimitStore;
  /**
   * Prepended to every key sent to the store. Default `name + ':'` for a store passed in,
   * `''` for the limiter's own memory store (nobody else writes to it). Pass `''` when the
   * caller namespaces keys itself.
   */
  keyPrefix?: string;
  /** Cap on keys of the default memory store (default 100 000); not allowed with `store`. */
  maxKeys?: number;
  /** Time source of the default memory store; not allowed with `store`. */
  clock?: Clock;
}

// One request per microsecond at most: both algorithms count in whole microseconds.
const MAX_RATE_PER_MS = 1000;
// Keeps `now + capacity` below 2^53 µs for clocks until the 2200s (about 35 years).
const MAX_HORIZON_MS = 2 ** 50 / 1000;
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

// Names registered per shared store (name → live limiters), to warn when two limiters would
// share counters; `warned` keeps that to once per store and name.
const namesByStore = new WeakMap<
  RateLimitStore,
  { live: Map<string, number>; warned: Set<string> }
>();

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * A rate limit on keys (client IPs, API keys…), decided by a {@link RateLimitStore}. No
 * Express inside: the middleware picks the key, calls {@link consume} and turns a denial into
 * a 429. With the memory store `consume` answers synchronously; with a networked store it
 * returns a promise.
 */
export class RateLimiter {
  /** The policy's name. */
  readonly name: string;
  /** The validated rule, frozen; what stores receive. */
  readonly rule: RateLimitRule;
  /** The store deciding for this limiter. */
  readonly store: RateLimitStore;

  private readonly quota: number;
  private readonly prefix: string;
  private readonly ownsStore: boolean;
  private closed = false;

  /**
   * @throws InvalidArgumentError naming the option, when `name` is not non-empty printable
   *   ASCII, `algorithm` is unknown, `limit` is not an integer ≥ 1, `windowMs` is not a
   *   positive finite number, `burst` is not an integer ≥ 0 (or not 0 for `fixed-window`),
   *   the rate exceeds one request per microsecond, the window (× (limit + burst) / limit
   *   for GCRA) exceeds about 35 years, `keyPrefix` is not a string, or `maxKeys`/`clock`
   *   are given with `store`.
   */
  constructor(options: RateLimiterOptions) {
    const { name, algorithm = 'gcra', limit, windowMs, burst = 0, store } = options;
    if (typeof name !== 'string' || !PRINTABLE_ASCII.test(name)) {
      throw new InvalidArgumentError(
        `name must be a non-empty string of printable ASCII characters, got ${describe(name)}`,
      );
    }
    if (algorithm !== 'gcra' && algorithm !== 'fixed-window') {
      throw new InvalidArgumentError(
        `algorithm must be 'gcra' or 'fixed-window', got ${describe(algorithm)} (rate limit ${name})`,
      );
    }
    if (!Number.isInteger(limit) || limit < 1) {
      throw new InvalidArgumentError(
        `limit must be an integer >= 1, got ${describe(limit)} (rate limit ${name})`,
      );
    }
    if (typeof windowMs !== 'number' || !Number.isFinite(windowMs) || windowMs <= 0) {
      throw new InvalidArgumentError(
        `windowMs must be a positive number of milliseconds, got ${describe(windowMs)} (rate limit ${name})`,
      );
    }
    if (!Number.isInteger(burst) || burst < 0) {
      throw new InvalidArgumentError(
        `burst must be an integer >= 0, got ${describe(burst)} (rate limit ${name})`,
      );
    }
    if (algorithm === 'fixed-window' && burst !== 0) {
      throw new InvalidArgumentError(
        `burst must be 0 with algorithm 'fixed-window' (only gcra has a burst), got ${burst} (rate limit ${name})`,
      );
    }
    if (limit > windowMs * MAX_RATE_PER_MS) {
      throw new InvalidArgumentError(
        `limit must not exceed one request per microsecond (windowMs × 1000 = ${windowMs * MAX_RATE_PER_MS}), got ${limit} (rate limit ${name})`,
      );
    }
    if ((windowMs * (limit + burst)) / limit > MAX_HORIZON_MS) {
      throw new InvalidArgumentError(
        `windowMs must be at most about 35 years${burst > 0 ? ' (× (limit + burst) / limit)' : ''}, got ${windowMs} (rate limit ${name})`,
      );
    }
    if (options.keyPrefix !== undefined && typeof options.keyPrefix !== 'string') {
      throw new InvalidArgumentError(
        `keyPrefix must be a string, got ${describe(options.keyPrefix)} (rate limit ${name})`,
      );
    }
    if (store !== undefined && (options.maxKeys !== undefined || options.clock !== undefined)) {
      throw new InvalidArgumentError(
        `maxKeys and clock configure the default memory store; pass them to the store given as \`store\` instead (rate limit ${name})`,
      );
    }

    this.name = name;
    this.rule = Object.freeze({ algorithm, limit, windowMs, burst });
    this.quota = limit + burst;
    if (store === undefined) {
      this.store = new MemoryStore({ maxKeys: options.maxKeys, clock: options.clock });
      this.ownsStore = true;
      this.prefix = options.keyPrefix ?? '';
    } else {
      this.store = store;
      this.ownsStore = false;
      this.prefix = options.keyPrefix ?? `${name}:`;
      register(store, this.namespace(), name);
    }
  }

  /**
   * Decides one request of `cost` (default 1) for `key` and counts it when allowed. A denied
   * request consumes nothing. Synchronous with the memory store; a promise with an async store.
   *
   * @throws InvalidArgumentError when `cost` is not an integer between 1 and the quota
   *   (`limit + burst`): such a request could never be allowed.
   */
  consume(key: string, cost = 1): RateLimitDecision | Promise<RateLimitDecision> {
    if (cost !== 1 && !(Number.isInteger(cost) && cost >= 1 && cost <= this.quota)) {
      throw new InvalidArgumentError(
        `cost must be an integer between 1 and ${this.quota}, got ${describe(cost)} (rate limit ${this.name})`,
      );
    }
    return this.store.consume(this.prefix === '' ? key : this.prefix + key, this.rule, cost);
  }

  /** Forgets `key`: its next request starts from a full quota. */
  reset(key: string): void | Promise<void> {
    return this.store.reset(this.prefix === '' ? key : this.prefix + key);
  }

  /** Closes the store if this limiter created it; a shared store stays open. Idempotent. */
  close(): void | Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsStore) return this.store.close();
    unregister(this.store, this.namespace());
  }

  // What must differ between limiters sharing a store: the key prefix, or the name when the
  // caller namespaces keys itself.
  private namespace(): string {
    return this.prefix === '' ? `\u0000${this.name}` : this.prefix;
  }
}

/** Creates a {@link RateLimiter}; see its constructor for defaults and what it throws. */
export function rateLimiter(options: RateLimiterOptions): RateLimiter {
  return new RateLimiter(options);
}

function register(store: RateLimitStore, namespace: string, name: string): void {
  let names = namesByStore.get(store);
  if (names === undefined) {
    names = { live: new Map(), warned: new Set() };
    namesByStore.set(store, names);
  }
  const count = names.live.get(namespace) ?? 0;
  names.live.set(namespace, count + 1);
  if (count > 0 && !names.warned.has(namespace)) {
    names.warned.add(namespace);
    process.emitWarning(
      `Two rate limiters named ${JSON.stringify(name)} use the same keys in one ${store.kind} store, so they share counters; give each limiter its own name or keyPrefix`,
      { code: 'RESILIENCE_RATE_LIMIT_STORE_REUSE' },
    );
  }
}

function unregister(store: RateLimitStore, namespace: string): void {
  const live = namesByStore.get(store)?.live;
  const count = live?.get(namespace);
  if (live === undefined || count === undefined) return;
  if (count > 1) live.set(namespace, count - 1);
  else live.delete(namespace);
}
