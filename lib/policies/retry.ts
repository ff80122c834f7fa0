import type { InvalidArgumentError } from '../errors.js';
import type { RetryBudget } from './retry-budget.js';
import { invalidOption } from './invalid-option.js';

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Total attempts including the first; an integer >= 1 (1 = no retry). */
  attempts: number;
  /**
   * Exponential backoff with full jitter: the wait after attempt `n` is
   * `random() × min(max, initial × multiplier^(n-1))` (see {@link backoffDelay}).
   * `initial` and `max` are milliseconds >= 0 with `initial <= max`; `multiplier` >= 1.
   */
  backoff: { initial: number; max: number; multiplier: number };
  /** Each retry must be granted by this budget; a refusal ends the retries. Default: none. */
  budget?: RetryBudget;
  /** Source of jitter in [0, 1). Default `Math.random`. */
  random?: () => number;
  /**
   * Aborts the retries: an already aborted signal rejects before the first attempt, and an
   * abort during the wait between attempts rejects at once with `signal.reason` (the timer is
   * cleared). The attempts themselves should watch the signal too.
   */
  signal?: AbortSignal;
  /**
   * The time left for the whole call: no retry is scheduled whose wait would use it all up
   * (`delay >= remaining()`); the last outcome is settled instead.
   */
  deadline?: { remaining(): number };
  /**
   * Called when a retry is scheduled: `attempt` is the number of the attempt about to be made
   * (2 for the first retry), `delayMs` the wait before it, `error` the failed attempt's error
   * (or, when it resolved but `shouldRetry` asked for a retry, its result).
   */
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
  /** Called when the budget refused a retry (the last outcome is then settled). */
  onBudgetExhausted?: () => void;
}

/**
 * What `shouldRetry` decides about one attempt: `false` settles with it (throws its error or
 * resolves its result), `true` retries after the backoff, `{ retryAfterMs }` retries after
 * `max(backoff, retryAfterMs)` — the upstream's Retry-After. A `retryAfterMs` longer than
 * `backoff.max × 10`, or one that does not leave time before the deadline, is not waited for:
 * the outcome is settled at once (a server asking for a long pause is better answered with
 * its error now than with a late retry it will refuse again).
 */
export type RetryDecision = boolean | { retryAfterMs: number };

/** One attempt's outcome, as seen by `shouldRetry`. */
export type RetryOutcome<T> = { error: unknown } | { result: T };

/**
 * Runs `fn` up to `options.attempts` times. After each attempt (the last one too, so it can
 * classify outcomes) `shouldRetry` decides (see {@link RetryDecision}); a retry also needs attempts left, time left before
 * `options.deadline`, and a grant from `options.budget` (a refusal calls
 * `onBudgetExhausted` and settles the last outcome — the caller decides what that means).
 * Settles like the last attempt: resolves its result or rejects with its error.
 *
 * The wait between attempts uses one unref'd timer that an abort of `options.signal` clears.
 * If `shouldRetry` or a listener throws, the returned promise rejects with that error.
 *
 * Rejects with InvalidArgumentError on invalid options (checked before the first attempt).
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  shouldRetry: (outcome: RetryOutcome<T>, attempt: number) => RetryDecision,
  options: RetryOptions,
): Promise<T> {
  checkOptions(fn, shouldRetry, options);
  options.signal?.throwIfAborted();
  for (let attempt = 1; ; attempt++) {
    let outcome: RetryOutcome<T>;
    try {
      outcome = { result: await fn(attempt) };
    } catch (error) {
      outcome = { error };
    }
    // shouldRetry sees every attempt, the last one too: callers classify outcomes in it.
    const delay = nextRetryDelay(outcome, shouldRetry(outcome, attempt), attempt, options);
    if (delay < 0) return settle(outcome);
    if (delay > 0) await sleep(delay, options.signal);
  }
}

/**
 * What {@link retry} does between two attempts, for callers that run their attempts
 * themselves (the pooled resources drive theirs from callbacks, without an async loop per
 * call): given `shouldRetry`'s `decision` on attempt `attempt` (1-based) and its `outcome`,
 * returns the wait before the next attempt in milliseconds, or -1 when the outcome is to be
 * settled — no retry asked for, no attempts or time left, or the budget refused (then
 * `onBudgetExhausted` has been called). Calls `onRetry` before it returns a wait. Throws
 * `signal.reason` when the signal has aborted. Does not check `options` ({@link retry} does).
 */
export function nextRetryDelay<T>(
  outcome: RetryOutcome<T>,
  decision: RetryDecision,
  attempt: number,
  options: RetryOptions,
): number {
  if (decision === false || attempt >= options.attempts) return -1;
  const { backoff, budget, deadline } = options;
  let delay = backoffDelay(attempt, backoff, options.random ?? Math.random);
  if (typeof decision === 'object' && decision !== null) {
    const after = decision.retryAfterMs;
    if (typeof after === 'number' && after > delay) {
      if (!(after <= backoff.max * 10)) return -1;
      delay = after;
    }
  }
  if (deadline !== undefined && delay >= deadline.remaining()) return -1;
  options.signal?.throwIfAborted();
  // The budget is asked last, so a retry that would not happen anyway spends nothing.
  if (budget !== undefined && !budget.tryRetry()) {
    options.onBudgetExhausted?.();
    return -1;
  }
  options.onRetry?.(attempt + 1, delay, 'error' in outcome ? outcome.error : outcome.result);
  return delay;
}

function settle<T>(outcome: RetryOutcome<T>): T {
  if ('error' in outcome) throw outcome.error;
  return outcome.result;
}

/**
 * The wait after attempt `attempt` (1-based) under full jitter (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"): `random() × min(max, initial × multiplier^(attempt-1))`.
 * Full jitter spreads clients that failed together, so their retries do not arrive together.
 */
export function backoffDelay(
  attempt: number,
  backoff: RetryOptions['backoff'],
  random: () => number,
): number {
  const exp = backoff.initial * Math.pow(backoff.multiplier, attempt - 1);
  const ceiling = exp < backoff.max ? exp : backoff.max;
  return random() * ceiling;
}

/**
 * Parses a `Retry-After` header (RFC 9110 §10.2.3): delta-seconds (`"120"`) or an HTTP-date,
 * into milliseconds from `nowMs` (0 for a date in the past). Returns undefined for a missing,
 * empty or malformed value; of a repeated header the first value counts.
 */
export function parseRetryAfter(
  value: string | string[] | undefined,
  nowMs: number,
): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (text === undefined || text.length === 0) return undefined;
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isFinite(seconds) ? seconds * 1000 : undefined;
  }
  // Date.parse accepts many shapes; requiring a weekday-comma or a month name keeps "12abc" out.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return at > nowMs ? at - nowMs : 0;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function checkOptions(fn: unknown, shouldRetry: unknown, options: RetryOptions): void {
  if (typeof fn !== 'function') throw invalid('fn', fn, 'a function');
  if (typeof shouldRetry !== 'function') throw invalid('shouldRetry', shouldRetry, 'a function');
  if (typeof options !== 'object' || options === null) {
    throw invalid('options', options, 'an object { attempts, backoff }');
  }
  const { attempts, backoff } = options;
  if (typeof attempts !== 'number' || !Number.isSafeInteger(attempts) || attempts < 1) {
    throw invalid('attempts', attempts, 'an integer >= 1');
  }
  if (typeof backoff !== 'object' || backoff === null) {
    throw invalid('backoff', backoff, 'an object { initial, max, multiplier }');
  }
  checkMillis('backoff.initial', backoff.initial);
  checkMillis('backoff.max', backoff.max);
  if (backoff.initial > backoff.max) {
    throw invalid('backoff.initial', backoff.initial, `at most backoff.max (${backoff.max})`);
  }
  const m = backoff.multiplier;
  if (typeof m !== 'number' || !Number.isFinite(m) || m < 1) {
    throw invalid('backoff.multiplier', m, 'a finite number >= 1');
  }
  for (const name of ['random', 'onRetry', 'onBudgetExhausted'] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== 'function')
      throw invalid(name, value, 'a function');
  }
  const { budget, signal, deadline } = options;
  if (budget !== undefined && typeof budget?.tryRetry !== 'function') {
    throw invalid('budget', budget, 'a RetryBudget');
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalid('signal', signal, 'an AbortSignal');
  }
  if (deadline !== undefined && typeof deadline?.remaining !== 'function') {
    throw invalid('deadline', deadline, 'an object with a remaining() method');
  }
}

function checkMillis(option: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid(option, value, 'a finite number of milliseconds >= 0');
  }
}

function invalid(option: string, value: unknown, expected: string): InvalidArgumentError {
  return invalidOption('retry', option, value, expected);
}
