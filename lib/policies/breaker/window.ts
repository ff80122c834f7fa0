import type { Clock } from '../clock.js';
import { ConsecutiveWindow } from './consecutive-window.js';
import { CountWindow } from './count-window.js';
import { TimeWindow } from './time-window.js';

export { ConsecutiveWindow } from './consecutive-window.js';
export { CountWindow } from './count-window.js';
export { TimeWindow } from './time-window.js';

/** How a circuit breaker remembers outcomes: the value of the `window.type` option. */
export type BreakerWindowType = 'count' | 'time' | 'consecutive';

/** One recorded call. A call may be both failed and slow. */
export interface WindowOutcome {
  readonly failure: boolean;
  readonly slow: boolean;
}

/** What a window currently holds. */
export interface WindowCounts {
  calls: number;
  failures: number;
  slowCalls: number;
}

/**
 * The memory of a circuit breaker while it is closed. Implementations are O(1) per call
 * (amortised for the time window), so the breaker can consult `counts` after every outcome.
 */
export interface BreakerWindow {
  /**
   * Adds one outcome, evicting whatever fell out of the window, and returns the live counts
   * (the same object as `counts`, saving the time window a second clock read).
   */
  record(outcome: WindowOutcome): Readonly<WindowCounts>;
  /**
   * The live counts: `count` and `time` windows give the totals over the window; the
   * `consecutive` window gives the calls recorded since the last reset and the current runs
   * of consecutive failures and of consecutive slow calls. The object may be reused; copy it
   * to keep a snapshot.
   */
  readonly counts: Readonly<WindowCounts>;
  /** Forgets everything. */
  reset(): void;
}

/**
 * Creates the window named by `type`: the last `size` calls (`count`), the last `size`
 * seconds (`time`, read from `clock`), or runs of `size` consecutive outcomes (`consecutive`).
 * Assumes `size` was validated (an integer >= 1).
 */
export function createWindow(type: BreakerWindowType, size: number, clock: Clock): BreakerWindow {
  switch (type) {
    case 'count':
      return new CountWindow(size);
    case 'time':
      return new TimeWindow(size, clock);
    case 'consecutive':
      return new ConsecutiveWindow();
  }
}
