import type { BreakerWindow, WindowCounts, WindowOutcome } from './window.js';

/**
 * Runs of consecutive outcomes: `failures` is the number of failed calls in a row up to the
 * latest call, `slowCalls` the number of slow calls in a row, `calls` every call since the
 * last reset. The breaker opens when a run reaches the window size; `minimumCalls` plays no
 * part (cockatiel's `ConsecutiveBreaker`).
 */
export class ConsecutiveWindow implements BreakerWindow {
  readonly #counts: WindowCounts = { calls: 0, failures: 0, slowCalls: 0 };

  /** The current runs, and the calls since the last reset. */
  get counts(): Readonly<WindowCounts> {
    return this.#counts;
  }

  /** Extends or breaks the runs; returns the counts. */
  record(outcome: WindowOutcome): Readonly<WindowCounts> {
    const counts = this.#counts;
    counts.calls++;
    counts.failures = outcome.failure ? counts.failures + 1 : 0;
    counts.slowCalls = outcome.slow ? counts.slowCalls + 1 : 0;
    return counts;
  }

  /** Forgets everything. */
  reset(): void {
    this.#counts.calls = 0;
    this.#counts.failures = 0;
    this.#counts.slowCalls = 0;
  }
}
