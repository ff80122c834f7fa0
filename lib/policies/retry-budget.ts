import type { InvalidArgumentError } from '../errors.js';
import { systemClock } from './clock.js';
import type { Clock } from './clock.js';
import { invalidOption } from './invalid-option.js';

/** Options of a {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /** Share (0..1) of recent first attempts that may be retried, e.g. 0.2 = 20 %. */
  ratio: number;
  /** Retries per second always allowed on top of `ratio`, so low traffic can still retry. */
  minPerSecond: number;
  /** Milliseconds of history the budget looks at; a finite number > 0. */
  window: number;
  /** Time source. Default {@link systemClock}. */
  clock?: Clock;
}

/** A snapshot from {@link RetryBudget.stats}. */
export interface RetryBudgetStats {
  /** First attempts recorded in the window. */
  requests: number;
  /** Retries granted in the window. */
  retries: number;
  /** Retries that would still be granted now (whole retries, never negative). */
  available: number;
}

// Long windows get coarser buckets rather than thousands of them; precision at the window's
// edge matters less than memory and eviction cost.
const MAX_BUCKETS = 60;
// 0.1 * 3 is 0.30000000000000004: without slack a budget of exactly N retries could refuse the Nth.
const EPSILON = 1e-9;

/**
 * A Finagle/Envoy-style retry budget: within the last `window` ms, retries may be at most
 * `ratio` × first attempts + `minPerSecond` × window seconds, so retries can never multiply
 * an outage, while quiet services can still retry a little.
 *
 * O(1) amortised and allocation-free per call: counts live in a ring of one-second buckets
 * (`window / 60` wide for windows over a minute; one bucket of `window` when it is under a
 * second), and the window totals are adjusted as old buckets are evicted.
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #allowance: number;
  readonly #clock: Clock;
  readonly #width: number;
  readonly #requests: Float64Array;
  readonly #retries: Float64Array;
  /** The absolute bucket number (`floor(now / width)`) of the newest bucket. */
  #head: number;
  #totalRequests = 0;
  #totalRetries = 0;

  /**
   * @throws InvalidArgumentError when `ratio` is not a number in [0, 1], `minPerSecond` not a
   *   finite number >= 0, `window` not a finite number > 0 or `clock` has no `now()`.
   */
  constructor(options: RetryBudgetOptions) {
    if (typeof options !== 'object' || options === null) {
      throw invalid('options', options, 'an object { ratio, minPerSecond, window }');
    }
    const { ratio, minPerSecond, window, clock = systemClock } = options;
    if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) {
      throw invalid('ratio', ratio, 'a number between 0 and 1');
    }
    if (typeof minPerSecond !== 'number' || !Number.isFinite(minPerSecond) || minPerSecond < 0) {
      throw invalid('minPerSecond', minPerSecond, 'a finite number >= 0');
    }
    if (typeof window !== 'number' || !Number.isFinite(window) || !(window > 0)) {
      throw invalid('window', window, 'a finite number of milliseconds > 0');
    }
    if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') {
      throw invalid('clock', clock, 'an object with a now() method');
    }
    const buckets = Math.min(MAX_BUCKETS, Math.max(1, Math.ceil(window / 1000)));
    this.#ratio = ratio;
    this.#allowance = (minPerSecond * window) / 1000;
    this.#clock = clock;
    this.#width = window / buckets;
    this.#requests = new Float64Array(buckets);
    this.#retries = new Float64Array(buckets);
    this.#head = Math.floor(clock.now() / this.#width);
  }

  /** Records one first attempt (deposits `ratio` of a retry). Call it once per call, not per retry. */
  recordRequest(): void {
    const i = this.#advance();
    this.#requests[i]!++;
    this.#totalRequests++;
  }

  /**
   * Withdraws one retry when, counting it, retries in the window stay within
   * `ratio × requests + minPerSecond × window / 1000`; returns false (recording nothing) when
   * the budget is spent.
   */
  tryRetry(): boolean {
    const i = this.#advance();
    if (this.#totalRetries + 1 > this.#limit() + EPSILON) return false;
    this.#retries[i]!++;
    this.#totalRetries++;
    return true;
  }

  /** The current window's counts. */
  stats(): RetryBudgetStats {
    this.#advance();
    const available = Math.floor(this.#limit() - this.#totalRetries + EPSILON);
    return {
      requests: this.#totalRequests,
      retries: this.#totalRetries,
      available: available > 0 ? available : 0,
    };
  }

  #limit(): number {
    return this.#ratio * this.#totalRequests + this.#allowance;
  }

  /** Evicts buckets that fell out of the window; returns the ring index of the current one. */
  #advance(): number {
    const n = this.#requests.length;
    const now = Math.floor(this.#clock.now() / this.#width);
    // A clock that steps back keeps writing into the newest bucket rather than corrupting totals.
    if (now > this.#head) {
      const steps = now - this.#head < n ? now - this.#head : n;
      for (let s = 1; s <= steps; s++) {
        let i = (this.#head + s) % n;
        if (i < 0) i += n;
        this.#totalRequests -= this.#requests[i]!;
        this.#totalRetries -= this.#retries[i]!;
        this.#requests[i] = 0;
        this.#retries[i] = 0;
      }
      this.#head = now;
      // Totals are sums of integers, but guard against drift once the ring has emptied.
      if (steps === n) {
        this.#totalRequests = 0;
        this.#totalRetries = 0;
      }
    }
    const i = this.#head % n;
    return i < 0 ? i + n : i;
  }
}

function invalid(option: string, value: unknown, expected: string): InvalidArgumentError {
  return invalidOption('retry budget', option, value, expected);
}
