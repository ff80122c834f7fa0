import type { BreakerWindow, WindowCounts, WindowOutcome } from './window.js';

const FAILURE = 1;
const SLOW = 2;

/**
 * The last `size` calls, in a ring of one byte per call. Evicting subtracts the evicted call
 * from the totals, so recording is O(1) whatever the size (Resilience4j's
 * `FixedSizeSlidingWindowMetrics`); cockatiel's `CountBreaker` does the same for failures only.
 */
export class CountWindow implements BreakerWindow {
  readonly #ring: Uint8Array;
  #next = 0;
  #filled = 0;
  readonly #counts: WindowCounts = { calls: 0, failures: 0, slowCalls: 0 };

  /** @param size how many calls the window holds; an integer >= 1 (not checked here). */
  constructor(size: number) {
    this.#ring = new Uint8Array(size);
  }

  /** The totals over the last `size` calls (fewer until the ring has filled). */
  get counts(): Readonly<WindowCounts> {
    return this.#counts;
  }

  /** Adds one call, evicting the oldest once `size` calls are held; returns the counts. */
  record(outcome: WindowOutcome): Readonly<WindowCounts> {
    const ring = this.#ring;
    const counts = this.#counts;
    const i = this.#next;
    if (this.#filled === ring.length) {
      const evicted = ring[i] as number;
      counts.failures -= evicted & FAILURE;
      counts.slowCalls -= evicted >> 1;
    } else {
      this.#filled++;
      counts.calls++;
    }
    const code = (outcome.failure ? FAILURE : 0) | (outcome.slow ? SLOW : 0);
    ring[i] = code;
    counts.failures += code & FAILURE;
    counts.slowCalls += code >> 1;
    this.#next = i + 1 === ring.length ? 0 : i + 1;
    return counts;
  }

  /** Forgets every call. O(1): slots beyond `filled` are never read before being rewritten. */
  reset(): void {
    this.#next = 0;
    this.#filled = 0;
    this.#counts.calls = 0;
    this.#counts.failures = 0;
    this.#counts.slowCalls = 0;
  }
}
