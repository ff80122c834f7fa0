/**
 * The time source every policy reads. Policies take a `clock` option so tests can drive them
 * with a fake clock; production uses {@link systemClock}.
 */
export interface Clock {
  /** Milliseconds on a monotonic-enough scale; only differences are meaningful. */
  now(): number;
}

/**
 * `Date.now()` rather than `performance.now()`: it is cheaper on Node 20 and
 * `@sinonjs/fake-timers` fakes it by default, which keeps policy tests deterministic.
 */
export const systemClock: Clock = { now: () => Date.now() };
