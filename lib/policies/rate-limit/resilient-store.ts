import type { StoreErrorPolicy } from '../../config/types.js';
import { ListenerErrors, Listeners } from '../listeners.js';
import type { Disposable } from '../listeners.js';
import { systemClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { invalidOption } from '../invalid-option.js';
import { MemoryStore } from './memory-store.js';
import type { DecisionObserver, ObservableStore } from './redis-store.js';
import type { RateLimitDecision, RateLimitRule, RateLimitStore } from './store.js';

/** Options of {@link ResilientStore}. */
export interface ResilientStoreOptions {
  /**
   * The shared store to protect (a {@link RedisStore}). It must bound its own calls (the
   * Redis store's `timeoutMs`); it is closed with this store.
   */
  store: RateLimitStore;
  /**
   * What answers when the store fails or is known to be down: `'local'` (default) an
   * in-process limiter with the rule divided by `expectedInstances`, which starts from the
   * store's last answer for the key (see {@link ResilientStore}); `'allow'` an allowed
   * decision; `'deny'` a denied one with `retryAfterMs` = `retryIntervalMs`.
   */
  onStoreError?: StoreErrorPolicy;
  /**
   * How many instances share the store's limits: the local fallback allows
   * `ceil(limit / expectedInstances)` (burst likewise) per instance, so that all of them
   * together stay near the shared limit. Integer ≥ 1; default 1.
   */
  expectedInstances?: number;
  /**
   * While the store is down, it is tried again at most this often (milliseconds; one probe
   * decision at a time), and the `deny` fallback's `retryAfterMs`. Default 1000.
   */
  retryIntervalMs?: number;
  /**
   * Remember keys the store denied (cost 1) until they may be allowed again, and deny them
   * locally meanwhile: a flood from one client costs no round trip per request. Default true.
   */
  blockCache?: boolean;
  /** Most keys held by the block cache and by the local fallback's memory store. Default 100 000. */
  maxKeys?: number;
  /** Time source of the block cache and the down state; default {@link systemClock}. */
  clock?: Clock;
}

/**
 * Why a decision came from the fallback: the store timed out, failed, or was already known to
 * be down (not tried).
 */
export type StoreFallbackReason = 'timeout' | 'error' | 'down';

/** The outcome of one call to the wrapped store. */
export type StoreCallOutcome = 'success' | 'timeout' | 'error';

// Timeouts in a row that make the store down: one slow reply is not an outage, but a server
// that stopped answering leaves every pending call timing out together.
const TIMEOUTS_TO_DOWN = 3;
const MAX_TIMER_DELAY = 2_147_483_647;

/** The store's last answer for a key, as the local fallback's starting point. */
interface Known {
  /** This instance's share of what the store said remained, less what the fallback spent. */
  remaining: number;
  /** Clock time at which the store's answer stops binding (its `resetMs` from the answer). */
  until: number;
}

interface Blocked {
  /** Clock time until which the key stays denied. */
  until: number;
  /** Clock time at which its quota is full again, for `resetMs`. */
  resetAt: number;
}

/** One decision asked of an {@link ObservableStore}: what settling it needs. */
class StoreCall {
  constructor(
    readonly key: string,
    readonly rule: RateLimitRule,
    readonly cost: number,
    /** Clock time before it was sent. */
    readonly sentAt: number,
    /** `performance.now()` before it was sent, when call listeners want a duration. */
    readonly startedAt: number,
  ) {}
}

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | null)?.then === 'function';
}

function isTimeout(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ERR_TIMEOUT';
}

// Survives two installed copies of the package (the error's code, not its class).
function isUnavailable(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ERR_RESOURCE_UNAVAILABLE';
}

/**
 * A shared store (Redis) made safe to depend on: every call to it returns a decision, never an
 * error, and never waits longer than the store's own timeout.
 *
 * - **Failure policy.** When the store fails or times out, the decision comes from the
 *   fallback (`onStoreError`): a local {@link MemoryStore} sized to the rule divided by
 *   `expectedInstances`, an allowed decision, or a denied one.
 * - **Conservative local fallback.** For a key the store answered for, the `local` fallback
 *   starts from that answer rather than from a fresh quota: until the answer's `resetMs` has
 *   passed, it allows only `floor(remaining / expectedInstances)` more (other instances spend
 *   the rest), so a key the store said is exhausted stays exhausted, and a burst that meets
 *   an outage halfway does not get a second quota. Only after that does the per-instance
 *   limiter decide. Bounded by `maxKeys`.
 * - **Down state.** A connection failure, or three timeouts in a row, marks the store down:
 *   decisions come from the fallback at once, without trying the store, and every
 *   `retryIntervalMs` one decision probes it. The first success (a probe's or a late
 *   reply's) marks it up again, so the store returns to Redis on its own.
 * - **Block cache.** A key the store denied stays denied locally until its `retryAfterMs`
 *   has passed (measured from when the request was sent, minus a millisecond, so it never
 *   outlasts the store's own denial); such decisions cost no round trip. A `reset(key)` on
 *   this instance clears it; other instances keep theirs until it expires.
 *
 * Events for metrics: {@link onStoreCall} (outcome and duration of each call to the store),
 * {@link onFallback} (each fallback decision, with its reason), {@link onBlockCacheHit}.
 */
export class ResilientStore implements RateLimitStore {
  /** The wrapped store's kind. */
  readonly kind: string;
  /** The wrapped store. */
  readonly store: RateLimitStore;
  readonly onStoreError: StoreErrorPolicy;
  readonly expectedInstances: number;
  readonly retryIntervalMs: number;

  private readonly clock: Clock;
  private readonly local: MemoryStore | undefined;
  private readonly blocked: Map<string, Blocked> | undefined;
  // Only with the local fallback: the store's last answer per key.
  private readonly known: Map<string, Known> | undefined;
  private readonly maxKeys: number;
  private readonly scaled = new Map<RateLimitRule, RateLimitRule>();
  private down = false;
  private probing = false;
  private retryAt = 0;
  private timeoutsInARow = 0;
  private closed = false;
  private readonly listenerErrors = new ListenerErrors('rate-limit store');
  private readonly callListeners = new Listeners<[StoreCallOutcome, number]>(this.listenerErrors);
  private readonly fallbackListeners = new Listeners<[StoreFallbackReason]>(this.listenerErrors);
  private readonly hitListeners = new Listeners<[]>(this.listenerErrors);
  // Set when the store settles decisions through an observer (the RedisStore does).
  private readonly observable: ObservableStore | undefined;
  private readonly observer: DecisionObserver<StoreCall> = {
    answered: (decision, call) =>
      this.succeeded(decision, call.key, call.cost, call.sentAt, call.startedAt),
    failed: (error, call) => this.failed(error, call.key, call.rule, call.cost, call.startedAt),
  };

  /**
   * @throws InvalidArgumentError when `store` is not a rate-limit store, `onStoreError` is not
   *   `local`, `allow` or `deny`, `expectedInstances` or `maxKeys` is not an integer ≥ 1, or
   *   `retryIntervalMs` is not a number in [1, 2147483647].
   */
  constructor(options: ResilientStoreOptions) {
    const {
      store,
      onStoreError = 'local',
      expectedInstances = 1,
      retryIntervalMs = 1000,
      blockCache = true,
      maxKeys = 100_000,
      clock = systemClock,
    } = options;
    if (
      typeof store !== 'object' ||
      store === null ||
      typeof (store as { consume?: unknown }).consume !== 'function'
    ) {
      throw invalidOption('ResilientStore', 'store', store, 'a rate-limit store');
    }
    if (onStoreError !== 'local' && onStoreError !== 'allow' && onStoreError !== 'deny') {
      throw invalidOption(
        'ResilientStore',
        'onStoreError',
        onStoreError,
        "'local', 'allow' or 'deny'",
      );
    }
    if (!Number.isSafeInteger(expectedInstances) || expectedInstances < 1) {
      throw invalidOption(
        'ResilientStore',
        'expectedInstances',
        expectedInstances,
        'an integer >= 1',
      );
    }
    if (
      typeof retryIntervalMs !== 'number' ||
      !(retryIntervalMs >= 1 && retryIntervalMs <= MAX_TIMER_DELAY)
    ) {
      throw invalidOption(
        'ResilientStore',
        'retryIntervalMs',
        retryIntervalMs,
        `a number of milliseconds in [1, ${MAX_TIMER_DELAY}]`,
      );
    }
    if (typeof blockCache !== 'boolean') {
      throw invalidOption('ResilientStore', 'blockCache', blockCache, 'a boolean');
    }
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) {
      throw invalidOption('ResilientStore', 'maxKeys', maxKeys, 'an integer >= 1');
    }
    this.store = store;
    this.kind = store.kind;
    this.onStoreError = onStoreError;
    this.expectedInstances = expectedInstances;
    this.retryIntervalMs = retryIntervalMs;
    this.maxKeys = maxKeys;
    this.clock = clock;
    this.local = onStoreError === 'local' ? new MemoryStore({ maxKeys, clock }) : undefined;
    this.blocked = blockCache ? new Map() : undefined;
    this.known = this.local === undefined ? undefined : new Map();
    this.observable =
      typeof (store as Partial<ObservableStore>).consumeObserved === 'function'
        ? (store as unknown as ObservableStore)
        : undefined;
  }

  /** False while the store is known to be down (decisions come from the fallback). */
  get available(): boolean {
    return !this.down;
  }

  /** Keys held by the block cache. */
  get blockedKeys(): number {
    return this.blocked?.size ?? 0;
  }

  /**
   * Decides one request: from the block cache, the wrapped store, or the fallback. Never
   * rejects. Synchronous when the decision is local (block cache, store down), a promise when
   * the store is asked.
   */
  consume(
    key: string,
    rule: RateLimitRule,
    cost = 1,
  ): RateLimitDecision | Promise<RateLimitDecision> {
    const now = this.clock.now();
    const blocked = this.blocked;
    if (blocked !== undefined) {
      const entry = blocked.get(key);
      if (entry !== undefined) {
        if (now < entry.until) {
          if (this.hitListeners.size > 0) this.hitListeners.emit();
          return {
            allowed: false,
            limit: rule.limit + rule.burst,
            remaining: 0,
            resetMs: Math.ceil(entry.resetAt - now),
            retryAfterMs: Math.ceil(entry.until - now),
            refillMs: Math.ceil(entry.until - now),
          };
        }
        blocked.delete(key);
      }
    }
    if (this.down) {
      if (this.probing || now < this.retryAt || this.closed) {
        return this.fallback(key, rule, cost, 'down');
      }
      this.probing = true;
    }
    const startedAt = this.callListeners.size > 0 ? performance.now() : 0;
    let result: RateLimitDecision | Promise<RateLimitDecision>;
    try {
      // One promise per decision: the store runs succeeded() or failed() as it settles it.
      if (this.observable !== undefined) {
        return this.observable.consumeObserved(
          key,
          rule,
          cost,
          this.observer,
          new StoreCall(key, rule, cost, now, startedAt),
        );
      }
      result = this.store.consume(key, rule, cost);
    } catch (error) {
      return this.failed(error, key, rule, cost, startedAt);
    }
    if (!isPromiseLike(result)) return this.succeeded(result, key, cost, now, startedAt);
    return result.then(
      (decision) => this.succeeded(decision, key, cost, now, startedAt),
      (error: unknown) => this.failed(error, key, rule, cost, startedAt),
    );
  }

  /**
   * Forgets `key` here (block cache, local fallback) and in the wrapped store; rejects with the
   * wrapped store's error.
   */
  reset(key: string): void | Promise<void> {
    this.blocked?.delete(key);
    this.known?.delete(key);
    this.local?.reset(key);
    return this.store.reset(key);
  }

  /** Closes the wrapped store and the fallback, drops the block cache. Idempotent. */
  close(): void | Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.down = true;
    this.blocked?.clear();
    this.known?.clear();
    this.local?.close();
    return this.store.close();
  }

  /** Each call to the wrapped store: its outcome and duration in milliseconds. */
  onStoreCall(listener: (outcome: StoreCallOutcome, durationMs: number) => void): Disposable {
    return this.callListeners.add(listener);
  }

  /** Each decision made by the fallback, with the reason. */
  onFallback(listener: (reason: StoreFallbackReason) => void): Disposable {
    return this.fallbackListeners.add(listener);
  }

  /** Each decision answered by the block cache. */
  onBlockCacheHit(listener: () => void): Disposable {
    return this.hitListeners.add(listener);
  }

  private succeeded(
    decision: RateLimitDecision,
    key: string,
    cost: number,
    sentAt: number,
    startedAt: number,
  ): RateLimitDecision {
    this.timeoutsInARow = 0;
    this.probing = false;
    if (!this.closed) this.down = false;
    if (this.callListeners.size > 0) {
      this.callListeners.emit('success', performance.now() - startedAt);
    }
    const known = this.known;
    if (known !== undefined) {
      const share = Math.floor(decision.remaining / this.expectedInstances);
      const until = this.clock.now() + decision.resetMs;
      const entry = known.get(key);
      if (entry !== undefined) {
        entry.remaining = share;
        entry.until = until;
      } else {
        if (known.size >= this.maxKeys) known.delete(known.keys().next().value as string);
        known.set(key, { remaining: share, until });
      }
    }
    // A denial of cost 1 means every cost is denied until retryAfterMs has passed. Counted
    // from before the request was sent, less the rounding up to whole milliseconds, the
    // entry never outlives the store's own denial.
    const blocked = this.blocked;
    if (blocked !== undefined && !decision.allowed && cost === 1 && decision.retryAfterMs > 1) {
      if (blocked.size >= this.maxKeys) {
        blocked.delete(blocked.keys().next().value as string);
      }
      blocked.set(key, {
        until: sentAt + decision.retryAfterMs - 1,
        resetAt: sentAt + Math.max(decision.resetMs, decision.retryAfterMs) - 1,
      });
    }
    return decision;
  }

  private failed(
    error: unknown,
    key: string,
    rule: RateLimitRule,
    cost: number,
    startedAt: number,
  ): RateLimitDecision {
    const timeout = isTimeout(error);
    if (this.callListeners.size > 0) {
      this.callListeners.emit(timeout ? 'timeout' : 'error', performance.now() - startedAt);
    }
    const probe = this.probing;
    this.probing = false;
    let outage: boolean;
    if (timeout) {
      this.timeoutsInARow++;
      outage = probe || this.timeoutsInARow >= TIMEOUTS_TO_DOWN;
    } else {
      // Error replies (a key of another type…) concern one key, not the server.
      outage = probe || isUnavailable(error);
    }
    if (outage) {
      this.down = true;
      this.retryAt = this.clock.now() + this.retryIntervalMs;
    }
    return this.fallback(key, rule, cost, timeout ? 'timeout' : 'error');
  }

  private fallback(
    key: string,
    rule: RateLimitRule,
    cost: number,
    reason: StoreFallbackReason,
  ): RateLimitDecision {
    if (this.fallbackListeners.size > 0) this.fallbackListeners.emit(reason);
    const quota = rule.limit + rule.burst;
    if (this.local !== undefined) {
      const entry = this.known!.get(key);
      if (entry !== undefined) {
        const now = this.clock.now();
        if (now < entry.until) return this.fromKnown(entry, quota, cost, now);
        this.known!.delete(key);
      }
      return this.local.consume(key, this.scale(rule), cost);
    }
    if (this.onStoreError === 'allow') {
      return {
        allowed: true,
        limit: quota,
        remaining: quota > cost ? quota - cost : 0,
        resetMs: 0,
        retryAfterMs: 0,
        refillMs: 0,
      };
    }
    return {
      allowed: false,
      limit: quota,
      remaining: 0,
      resetMs: this.retryIntervalMs,
      retryAfterMs: this.retryIntervalMs,
      refillMs: this.retryIntervalMs,
    };
  }

  /** A local decision within what the store last said remained for the key. */
  private fromKnown(entry: Known, quota: number, cost: number, now: number): RateLimitDecision {
    const resetMs = Math.ceil(entry.until - now);
    if (entry.remaining >= cost) {
      entry.remaining -= cost;
      return { allowed: true, limit: quota, remaining: entry.remaining, resetMs, retryAfterMs: 0 };
    }
    return {
      allowed: false,
      limit: quota,
      remaining: entry.remaining,
      resetMs,
      retryAfterMs: resetMs,
    };
  }

  /** The rule one instance enforces alone: limit and burst divided by `expectedInstances`. */
  private scale(rule: RateLimitRule): RateLimitRule {
    const n = this.expectedInstances;
    if (n === 1) return rule;
    let scaled = this.scaled.get(rule);
    if (scaled === undefined) {
      scaled = Object.freeze({
        algorithm: rule.algorithm,
        limit: Math.ceil(rule.limit / n),
        windowMs: rule.windowMs,
        burst: Math.ceil(rule.burst / n),
      });
      this.scaled.set(rule, scaled);
    }
    return scaled;
  }
}
