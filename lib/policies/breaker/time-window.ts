import type { Clock } from '../clock.js';
import type { BreakerWindow, WindowCounts, WindowOutcome } from './window.js';

const BUCKET_MS = 1000;

/**
 * The calls of the last `size` seconds, in a ring of one bucket per second (Resilience4j's
 * `SlidingTimeWindowMetrics`). When the clock enters a new second, the buckets it passed are
 * subtracted from the totals and emptied: each bucket is evicted once per lap, so recording
 * and reading are O(1) amortised. The window spans the current second and the `size - 1`
 * seconds before it, so an outcome stops counting between `size - 1` and `size` seconds later.
 */
export class TimeWindow implements BreakerWindow {
  readonly #clock: Clock;
  readonly #calls: Uint32Array;
  readonly #failures: Uint32Array;
  readonly #slowCalls: Uint32Array;
  /** The second (clock ms / 1000, floored) the head bucket stands for. */
  #headSecond: number;
  #head = 0;
  readonly #counts: WindowCounts = { calls: 0, failures: 0, slowCalls: 0 };

  /**
   * @param size seconds the window spans; an integer >= 1 (not checked here).
   * @param clock read on every record and every read of `counts`.
   */
  constructor(size: number, clock: Clock) {
    this.#clock = clock;
    this.#calls = new Uint32Array(size);
    this.#failures = new Uint32Array(size);
    this.#slowCalls = new Uint32Array(size);
    this.#headSecond = Math.floor(clock.now() / BUCKET_MS);
  }

  /** The totals over the last `size` seconds, as of now. */
  get counts(): Readonly<WindowCounts> {
    this.#advance();
    return this.#counts;
  }

  /** Adds one call to the current second's bucket; returns the counts. */
  record(outcome: WindowOutcome): Readonly<WindowCounts> {
    this.#advance();
    const counts = this.#counts;
    const head = this.#head;
    this.#calls[head] = (this.#calls[head] as number) + 1;
    counts.calls++;
    if (outcome.failure) {
      this.#failures[head] = (this.#failures[head] as number) + 1;
      counts.failures++;
    }
    if (outcome.slow) {
      this.#slowCalls[head] = (this.#slowCalls[head] as number) + 1;
      counts.slowCalls++;
    }
    return counts;
  }

  /** Forgets every call. */
  reset(): void {
    this.#clear();
    this.#headSecond = Math.floor(this.#clock.now() / BUCKET_MS);
  }

  #advance(): void {
    const second = Math.floor(this.#clock.now() / BUCKET_MS);
    // A clock that steps back keeps writing into the head bucket rather than rewriting history.
    if (second <= this.#headSecond) return;
    const size = this.#calls.length;
    if (second - this.#headSecond >= size) {
      this.#clear();
    } else {
      const counts = this.#counts;
      let head = this.#head;
      for (let s = this.#headSecond; s < second; s++) {
        head = head + 1 === size ? 0 : head + 1;
        counts.calls -= this.#calls[head] as number;
        counts.failures -= this.#failures[head] as number;
        counts.slowCalls -= this.#slowCalls[head] as number;
        this.#calls[head] = 0;
        this.#failures[head] = 0;
        this.#slowCalls[head] = 0;
      }
      this.#head = head;
    }
    this.#headSecond = second;
  }

  #clear(): void {
    this.#calls.fill(0);
    this.#failures.fill(0);
    this.#slowCalls.fill(0);
    this.#head = 0;
    this.#counts.calls = 0;
    this.#counts.failures = 0;
    this.#counts.slowCalls = 0;
  }
}
