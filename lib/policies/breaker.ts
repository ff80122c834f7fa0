// Hand-written rather than cockatiel's CircuitBreakerPolicy: cockatiel 3.2 has no slow-call
// rate, admits a single half-open test call, only wraps promises (no acquire/outcome permits),
// exposes no time-until-half-open for Retry-After and reads Date.now() instead of a Clock.

import type { InvalidArgumentError } from '../errors.js';
import { BreakerOpenError, withoutStack } from '../errors.js';
import { systemClock } from './clock.js';
import type { Clock } from './clock.js';
import { createWindow } from './breaker/window.js';
import type { BreakerWindow, BreakerWindowType, WindowOutcome } from './breaker/window.js';
import { invalidOption } from './invalid-option.js';
import { ListenerErrors, Listeners } from './listeners.js';
import type { Disposable } from './listeners.js';

/**
 * `closed`: calls flow and outcomes are recorded. `open`: calls are rejected until the open
 * period ends. `half-open`: a few probe calls decide between closing and reopening.
 * `isolated`: held open by hand through {@link CircuitBreaker.isolate}.
 */
export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

/** Options of {@link CircuitBreaker}. Every field is optional. */
export interface CircuitBreakerOptions {
  /**
   * What the breaker remembers while closed: the last `size` calls (`count`), the last `size`
   * seconds (`time`, one-second buckets), or runs of `size` consecutive failures or slow
   * calls (`consecutive`, which ignores `minimumCalls`, `failureRate` and `slowCall.rate`).
   * Default `{ type: 'count', size: 100 }`.
   */
  window?: { type: BreakerWindowType; size: number };
  /**
   * Calls the window must hold before rates are judged. Default 20, or `window.size` for a
   * smaller count window; an explicit value above a count window's size is an error.
   */
  minimumCalls?: number;
  /** Percentage of failed calls (1-100) that opens the breaker. Default 50. */
  failureRate?: number;
  /**
   * A call is slow when it takes `duration` ms or more; `rate` percent (1-100) of slow calls
   * opens the breaker. `duration: Infinity` turns slow-call tracking off.
   * Default `{ duration: 2000, rate: 100 }` (the config file defaults).
   */
  slowCall?: { duration: number; rate: number };
  /** Milliseconds the breaker stays open before admitting probes. Default 10 000. */
  halfOpenAfter?: number;
  /**
   * Probes half-open admits: at most this many at once, and the breaker closes once this
   * many have succeeded. Default 3.
   */
  halfOpenProbes?: number;
  /**
   * Each failed half-open multiplies the open period by `multiplier`, up to `max` ms; closing
   * resets it to `halfOpenAfter`. Default `{ multiplier: 1, max: halfOpenAfter }` (no growth).
   */
  openBackoff?: { multiplier: number; max: number };
  /**
   * Which rejections {@link CircuitBreaker.execute} counts as failures; the others count as
   * successes (a 4xx is the caller's fault, not the dependency's). If it throws, the call
   * counts as a failure. Default: every rejection is a failure.
   */
  isFailure?: (error: unknown) => boolean;
  /** Time source. Default {@link systemClock}. */
  clock?: Clock;
}

/**
 * The right to make one call, returned by {@link CircuitBreaker.tryAcquire}. Report how the
 * call ended with exactly one method; only the first call counts, later ones are ignored, as
 * are outcomes reported after the breaker changed state since the permit was issued.
 */
export interface BreakerPermit {
  /** The call succeeded; it also counts as slow if it took `slowCall.duration` or more. */
  success(): void;
  /** The call failed (and counts as slow too if it was). */
  failure(): void;
  /**
   * The call ended without an outcome worth judging the dependency by (e.g. a bulkhead
   * downstream turned it away): records nothing, and frees the half-open probe slot.
   */
  release(): void;
}

export type { Disposable } from './listeners.js';

/**
 * Why the state changed: `failure-rate`, `slow-call-rate`, `consecutive-failures` (closed →
 * open; a run of slow calls in a consecutive window reports `slow-call-rate`),
 * `half-open-after` (open → half-open), `probe-failed` (half-open → open), `probes-succeeded`
 * (half-open → closed), `isolate` (→ isolated), `reset` (→ closed by `reset()`, or when the
 * last isolation handle is disposed).
 */
export type BreakerStateChangeReason =
  | 'failure-rate'
  | 'slow-call-rate'
  | 'consecutive-failures'
  | 'half-open-after'
  | 'probe-failed'
  | 'probes-succeeded'
  | 'isolate'
  | 'reset';

/** Passed to {@link CircuitBreaker.onStateChange} listeners. */
export interface BreakerStateChange {
  from: BreakerState;
  to: BreakerState;
  reason: BreakerStateChangeReason;
}

/** A snapshot from {@link CircuitBreaker.stats}. */
export interface BreakerStats {
  state: BreakerState;
  calls: number;
  failures: number;
  slowCalls: number;
  /** Percent of `calls`; for a consecutive window, the failure run as a percent of its size. */
  failureRate: number;
  /** Percent of `calls`; for a consecutive window, the slow run as a percent of its size. */
  slowCallRate: number;
  retryAfterMs: number;
}

const SETTLE_SUCCESS = 0;
const SETTLE_FAILURE = 1;
const SETTLE_RELEASE = 2;
type Settlement = typeof SETTLE_SUCCESS | typeof SETTLE_FAILURE | typeof SETTLE_RELEASE;

// Shared, so recording an outcome allocates nothing.
const OUTCOMES: readonly WindowOutcome[] = [
  Object.freeze({ failure: false, slow: false }),
  Object.freeze({ failure: true, slow: false }),
  Object.freeze({ failure: false, slow: true }),
  Object.freeze({ failure: true, slow: true }),
];

interface PermitHost {
  settle(permit: Permit, how: Settlement): void;
}

// A plain record (no closures) keeps an admitted call at one small allocation.
class Permit implements BreakerPermit {
  settled = false;
  constructor(
    readonly host: PermitHost,
    readonly generation: number,
    readonly startedAt: number,
    readonly probe: boolean,
  ) {}

  success(): void {
    if (this.settled) return;
    this.settled = true;
    this.host.settle(this, SETTLE_SUCCESS);
  }

  failure(): void {
    if (this.settled) return;
    this.settled = true;
    this.host.settle(this, SETTLE_FAILURE);
  }

  release(): void {
    if (this.settled) return;
    this.settled = true;
    this.host.settle(this, SETTLE_RELEASE);
  }
}

/**
 * A circuit breaker with Resilience4j semantics: in `closed` it records outcomes in a window
 * and opens once at least `minimumCalls` are held and the failure rate or the slow-call rate
 * reaches its threshold; `open` rejects for the open period; then `half-open` admits up to
 * `halfOpenProbes` probes, reopening (with a longer open period, see `openBackoff`) on the
 * first failed or slow probe and closing once that many have succeeded.
 *
 * It needs no timers: the open → half-open move happens lazily, when the state is next read
 * or a call is next attempted. Use it through permits ({@link CircuitBreaker.tryAcquire},
 * for callers that learn the outcome later, such as HTTP middleware) or through
 * {@link CircuitBreaker.execute}.
 */
export class CircuitBreaker {
  readonly #window: BreakerWindow;
  readonly #consecutive: boolean;
  readonly #size: number;
  readonly #minimumCalls: number;
  readonly #failureRate: number;
  readonly #slowDuration: number;
  readonly #slowRate: number;
  readonly #trackSlow: boolean;
  readonly #halfOpenAfter: number;
  readonly #probes: number;
  readonly #multiplier: number;
  readonly #maxOpen: number;
  readonly #isFailure: ((error: unknown) => boolean) | undefined;
  readonly #clock: Clock;
  readonly #host: PermitHost;

  #state: BreakerState = 'closed';
  /** Bumped on every transition; permits from an older generation are ignored. */
  #generation = 0;
  #openedAt = 0;
  #openPeriod: number;
  #probesInFlight = 0;
  #probesSucceeded = 0;
  #isolations = 0;
  readonly #listenerErrors = new ListenerErrors('circuit breaker');
  readonly #stateListeners = new Listeners<[BreakerStateChange]>(this.#listenerErrors);
  readonly #rejectListeners = new Listeners<[]>(this.#listenerErrors);

  /**
   * @throws {InvalidArgumentError} when an option is malformed or out of range (the message
   * names the option and the value).
   */
  constructor(options: CircuitBreakerOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw invalid('options', options, 'an object');
    }
    const windowType = options.window?.type ?? 'count';
    const size = options.window?.size ?? 100;
    if (
      options.window !== undefined &&
      (typeof options.window !== 'object' || options.window === null)
    ) {
      throw invalid('window', options.window, 'an object { type, size }');
    }
    if (windowType !== 'count' && windowType !== 'time' && windowType !== 'consecutive') {
      throw invalid('window.type', windowType, "'count', 'time' or 'consecutive'");
    }
    checkInteger('window.size', size, 1);

    let minimumCalls = options.minimumCalls;
    if (minimumCalls === undefined) {
      minimumCalls = windowType === 'count' ? Math.min(20, size) : 20;
    } else {
      checkInteger('minimumCalls', minimumCalls, 1);
      if (windowType === 'count' && minimumCalls > size) {
        throw invalid(
          'minimumCalls',
          minimumCalls,
          `at most window.size (${size}) for a count window`,
        );
      }
    }

    const failureRate = options.failureRate ?? 50;
    checkPercent('failureRate', failureRate);

    if (
      options.slowCall !== undefined &&
      (typeof options.slowCall !== 'object' || options.slowCall === null)
    ) {
      throw invalid('slowCall', options.slowCall, 'an object { duration, rate }');
    }
    const slowDuration = options.slowCall?.duration ?? 2000;
    if (typeof slowDuration !== 'number' || !(slowDuration > 0)) {
      throw invalid('slowCall.duration', slowDuration, 'a number of milliseconds > 0, or Infinity');
    }
    const slowRate = options.slowCall?.rate ?? 100;
    checkPercent('slowCall.rate', slowRate);

    const halfOpenAfter = options.halfOpenAfter ?? 10_000;
    checkMillis('halfOpenAfter', halfOpenAfter);
    const probes = options.halfOpenProbes ?? 3;
    checkInteger('halfOpenProbes', probes, 1);

    if (
      options.openBackoff !== undefined &&
      (typeof options.openBackoff !== 'object' || options.openBackoff === null)
    ) {
      throw invalid('openBackoff', options.openBackoff, 'an object { multiplier, max }');
    }
    const multiplier = options.openBackoff?.multiplier ?? 1;
    if (typeof multiplier !== 'number' || !Number.isFinite(multiplier) || multiplier < 1) {
      throw invalid('openBackoff.multiplier', multiplier, 'a finite number >= 1');
    }
    const maxOpen = options.openBackoff?.max ?? halfOpenAfter;
    checkMillis('openBackoff.max', maxOpen);
    if (maxOpen < halfOpenAfter) {
      throw invalid('openBackoff.max', maxOpen, `at least halfOpenAfter (${halfOpenAfter})`);
    }

    if (options.isFailure !== undefined && typeof options.isFailure !== 'function') {
      throw invalid('isFailure', options.isFailure, 'a function');
    }
    const clock = options.clock ?? systemClock;
    if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') {
      throw invalid('clock', clock, 'an object with a now() method');
    }

    this.#clock = clock;
    this.#window = createWindow(windowType, size, clock);
    this.#consecutive = windowType === 'consecutive';
    this.#size = size;
    this.#minimumCalls = minimumCalls;
    this.#failureRate = failureRate;
    this.#slowDuration = slowDuration;
    this.#slowRate = slowRate;
    this.#trackSlow = slowDuration !== Infinity;
    this.#halfOpenAfter = halfOpenAfter;
    this.#probes = probes;
    this.#multiplier = multiplier;
    this.#maxOpen = maxOpen;
    this.#isFailure = options.isFailure;
    this.#openPeriod = halfOpenAfter;
    this.#host = { settle: (permit, how) => this.#settle(permit, how) };
  }

  /** The current state; reading it moves `open` to `half-open` once the open period is over. */
  get state(): BreakerState {
    if (this.#state === 'open') this.#maybeHalfOpen();
    return this.#state;
  }

  /**
   * Asks to make one call. Returns a permit to report the outcome on, or `null` when the
   * breaker is open, isolated, or half-open with every probe slot taken (listeners of
   * {@link CircuitBreaker.onReject} are told). Never throws.
   */
  tryAcquire(): BreakerPermit | null {
    if (this.#state === 'closed') {
      return new Permit(
        this.#host,
        this.#generation,
        this.#trackSlow ? this.#clock.now() : 0,
        false,
      );
    }
    if (this.#state === 'open') this.#maybeHalfOpen();
    if (
      this.#state === 'half-open' &&
      this.#probesInFlight + this.#probesSucceeded < this.#probes
    ) {
      this.#probesInFlight++;
      return new Permit(
        this.#host,
        this.#generation,
        this.#trackSlow ? this.#clock.now() : 0,
        true,
      );
    }
    this.#emitReject();
    return null;
  }

  /**
   * Like {@link CircuitBreaker.tryAcquire}, but throws when the call is not admitted.
   * @throws {BreakerOpenError} carrying `retryAfterMs` (see {@link CircuitBreaker.retryAfterMs})
   * and `isolated`; built without a stack trace, since rejections are expected traffic.
   */
  acquire(): BreakerPermit {
    const permit = this.tryAcquire();
    if (permit !== null) return permit;
    const isolated = this.#state === 'isolated';
    const message = isolated
      ? 'Circuit breaker is isolated'
      : this.#state === 'half-open'
        ? 'Circuit breaker is half-open and every probe slot is taken'
        : 'Circuit breaker is open';
    const retryAfterMs = this.retryAfterMs();
    throw withoutStack(() => new BreakerOpenError(message, { retryAfterMs, isolated }));
  }

  /**
   * Milliseconds until probes are admitted: the rest of the open period when open; 0 when
   * closed or half-open; `halfOpenAfter` when isolated (an isolation has no known end, and a
   * Retry-After hint still beats none).
   */
  retryAfterMs(): number {
    switch (this.#state) {
      case 'open': {
        const now = this.#clock.now();
        const left = this.#openedAt + this.#openPeriod - now;
        if (left > 0) return left;
        this.#maybeHalfOpen();
        return 0;
      }
      case 'isolated':
        return this.#halfOpenAfter;
      default:
        return 0;
    }
  }

  /**
   * Runs `fn` under a permit: its fulfilment is a success (slow if it took too long), its
   * rejection a failure when `isFailure` says so, a success otherwise.
   * @returns what `fn` returns.
   * @throws {BreakerOpenError} (as a rejection) when the call is not admitted; `fn` is not run.
   */
  execute<T>(fn: () => Promise<T> | T): Promise<T> {
    // Promise chaining rather than an async function: one promise less per call, which counts
    // at a few hundred nanoseconds per call (more once AsyncLocalStorage's hooks are on).
    let permit: BreakerPermit;
    let result: Promise<T> | T;
    try {
      permit = this.acquire();
    } catch (error) {
      return Promise.reject(error);
    }
    try {
      result = fn();
    } catch (error) {
      this.#settleThrown(permit, error);
      return Promise.reject(error);
    }
    return Promise.resolve(result).then(
      (value) => {
        permit.success();
        return value;
      },
      (error: unknown) => {
        this.#settleThrown(permit, error);
        throw error;
      },
    );
  }

  #settleThrown(permit: BreakerPermit, error: unknown): void {
    if (this.#countsAsFailure(error)) permit.failure();
    else permit.success();
  }

  /**
   * Holds the breaker `isolated`: every call is rejected (with `BreakerOpenError.isolated`)
   * until every handle returned so far is disposed; the breaker then closes with a cleared
   * window (reason `reset`). Outcomes of calls admitted before isolating are ignored.
   */
  isolate(): Disposable {
    this.#isolations++;
    if (this.#state !== 'isolated') this.#transition('isolated', 'isolate');
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) return;
        disposed = true;
        if (--this.#isolations === 0) this.#close('reset');
      },
    };
  }

  /**
   * Closes the breaker, clears the window and the open-period backoff; outcomes of calls
   * admitted before are ignored. An isolated breaker stays isolated until its handles are
   * disposed (the window is still cleared).
   */
  reset(): void {
    this.#window.reset();
    this.#openPeriod = this.#halfOpenAfter;
    if (this.#state === 'isolated') return;
    if (this.#state === 'closed') this.#generation++;
    else this.#close('reset');
  }

  /**
   * Calls `listener` after every state change, the new state already in place. A listener
   * that throws does not disturb the breaker or the other listeners (a process warning is
   * emitted once per breaker).
   */
  onStateChange(listener: (change: BreakerStateChange) => void): Disposable {
    return this.#stateListeners.add(listener);
  }

  /** Calls `listener` each time a call is turned away. Errors are handled as for `onStateChange`. */
  onReject(listener: () => void): Disposable {
    return this.#rejectListeners.add(listener);
  }

  /**
   * A snapshot for metrics and health endpoints: the state, the window's counts and rates
   * (percent, 0 when empty) and {@link CircuitBreaker.retryAfterMs}.
   */
  stats(): BreakerStats {
    const state = this.state;
    const { calls, failures, slowCalls } = this.#window.counts;
    const base = this.#consecutive ? this.#size : calls;
    return {
      state,
      calls,
      failures,
      slowCalls,
      failureRate: base === 0 ? 0 : (failures * 100) / base,
      slowCallRate: base === 0 ? 0 : (slowCalls * 100) / base,
      retryAfterMs: this.retryAfterMs(),
    };
  }

  #settle(permit: Permit, how: Settlement): void {
    if (permit.generation !== this.#generation) return;
    if (how === SETTLE_RELEASE) {
      if (permit.probe) this.#probesInFlight--;
      return;
    }
    const slow = this.#trackSlow && this.#clock.now() - permit.startedAt >= this.#slowDuration;
    if (permit.probe) {
      this.#probesInFlight--;
      if (how === SETTLE_FAILURE || slow) {
        this.#openPeriod = Math.min(this.#openPeriod * this.#multiplier, this.#maxOpen);
        this.#open('probe-failed');
      } else if (++this.#probesSucceeded >= this.#probes) {
        this.#close('probes-succeeded');
      }
      return;
    }
    // Same generation and not a probe: the breaker is still in the closed period that issued it.
    const { calls, failures, slowCalls } = this.#window.record(
      OUTCOMES[how + (slow ? 2 : 0)] as WindowOutcome,
    );
    if (this.#consecutive) {
      if (failures >= this.#size) this.#open('consecutive-failures');
      else if (slowCalls >= this.#size) this.#open('slow-call-rate');
    } else if (calls >= this.#minimumCalls) {
      if (failures * 100 >= this.#failureRate * calls) this.#open('failure-rate');
      else if (slowCalls * 100 >= this.#slowRate * calls) this.#open('slow-call-rate');
    }
  }

  #countsAsFailure(error: unknown): boolean {
    if (this.#isFailure === undefined) return true;
    try {
      return this.#isFailure(error);
    } catch {
      return true;
    }
  }

  #maybeHalfOpen(): void {
    if (this.#clock.now() - this.#openedAt >= this.#openPeriod) {
      this.#probesInFlight = 0;
      this.#probesSucceeded = 0;
      this.#transition('half-open', 'half-open-after');
    }
  }

  #open(reason: BreakerStateChangeReason): void {
    this.#openedAt = this.#clock.now();
    this.#transition('open', reason);
  }

  #close(reason: BreakerStateChangeReason): void {
    this.#window.reset();
    this.#openPeriod = this.#halfOpenAfter;
    this.#transition('closed', reason);
  }

  #transition(to: BreakerState, reason: BreakerStateChangeReason): void {
    const from = this.#state;
    this.#state = to;
    this.#generation++;
    if (this.#stateListeners.size === 0) return;
    this.#stateListeners.emit({ from, to, reason });
  }

  #emitReject(): void {
    this.#rejectListeners.emit();
  }
}

/**
 * Creates a {@link CircuitBreaker}.
 * @throws {InvalidArgumentError} when an option is malformed or out of range.
 */
export function circuitBreaker(options?: CircuitBreakerOptions): CircuitBreaker {
  return new CircuitBreaker(options);
}

function invalid(option: string, value: unknown, expected: string): InvalidArgumentError {
  return invalidOption('circuit breaker', option, value, expected);
}

function checkInteger(option: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalid(option, value, `an integer >= ${min}`);
  }
}

function checkPercent(option: string, value: unknown): void {
  if (typeof value !== 'number' || !(value >= 1 && value <= 100)) {
    throw invalid(option, value, 'a percentage between 1 and 100');
  }
}

function checkMillis(option: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid(option, value, 'a finite number of milliseconds >= 0');
  }
}
