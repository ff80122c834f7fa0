import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import FakeTimers from '@sinonjs/fake-timers';
import { backoffDelay, parseRetryAfter, retry } from '../../lib/policies/retry.js';
import type { RetryOptions } from '../../lib/policies/retry.js';
import { RetryBudget } from '../../lib/policies/retry-budget.js';
import { InvalidArgumentError } from '../../lib/errors.js';
import { track } from '../helpers/deferred.js';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

const BACKOFF = { initial: 100, max: 1000, multiplier: 2 };

/** An attempt function that plays `script` (an Error is thrown, anything else returned). */
function script<T>(...steps: (T | Error)[]) {
  const attempts: number[] = [];
  const fn = async (attempt: number): Promise<T> => {
    attempts.push(attempt);
    const step = steps[Math.min(attempts.length, steps.length) - 1];
    if (step instanceof Error) throw step;
    return step as T;
  };
  return Object.assign(fn, { attempts });
}

/** Retries errors, settles results. */
const always = (outcome: { error: unknown } | { result: unknown }) => 'error' in outcome;

describe('retry', () => {
  let clock: InstalledClock;

  beforeEach(() => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });

  afterEach(() => {
    assert.equal(clock.countTimers(), 0, 'no timer left behind');
    clock.uninstall();
  });

  function options(extra: Partial<RetryOptions> = {}): RetryOptions {
    return { attempts: 3, backoff: BACKOFF, random: () => 1, ...extra };
  }

  it('returns the first success without waiting', async () => {
    const fn = script('ok');
    assert.equal(await retry(fn, always, options()), 'ok');
    assert.deepEqual(fn.attempts, [1]);
  });

  it('retries errors with exponential backoff, telling onRetry', async () => {
    const calls: [number, number, unknown][] = [];
    const e1 = new Error('one');
    const e2 = new Error('two');
    const fn = script<string>(e1, e2, 'three');
    const result = track(
      retry(fn, always, options({ onRetry: (a, d, e) => calls.push([a, d, e]) })),
    );
    await clock.tickAsync(99);
    assert.deepEqual(fn.attempts, [1]);
    await clock.tickAsync(1);
    assert.deepEqual(fn.attempts, [1, 2]);
    await clock.tickAsync(199);
    assert.deepEqual(fn.attempts, [1, 2]);
    await clock.tickAsync(1);
    assert.equal(result.value, 'three');
    assert.deepEqual(calls, [
      [2, 100, e1],
      [3, 200, e2],
    ]);
  });

  it('gives up after `attempts` with the last error, asking shouldRetry about every attempt', async () => {
    const seen: number[] = [];
    const last = new Error('three');
    const fn = script<string>(new Error('one'), new Error('two'), last);
    const result = track(
      retry(
        fn,
        (_, attempt) => {
          seen.push(attempt);
          return true;
        },
        options(),
      ),
    );
    await clock.runAllAsync();
    assert.equal(result.error, last);
    assert.deepEqual(seen, [1, 2, 3]);
  });

  it('settles at once when shouldRetry says false (error or result)', async () => {
    const err = new Error('400');
    await assert.rejects(
      retry(script<string>(err), () => false, options()),
      err,
    );
    const result = await retry(
      script({ status: 503 }),
      (outcome) => !('result' in outcome),
      options(),
    );
    assert.deepEqual(result, { status: 503 });
  });

  it('retries a result when shouldRetry asks, and resolves the last result when attempts run out', async () => {
    const fn = script({ status: 503 }, { status: 503 }, { status: 503 });
    const result = track(retry(fn, () => true, options()));
    await clock.runAllAsync();
    assert.deepEqual(result.value, { status: 503 });
    assert.deepEqual(fn.attempts, [1, 2, 3]);
  });

  it('waits max(backoff, retryAfterMs)', async () => {
    const fn = script<string>(new Error('429'), 'ok');
    const result = track(
      retry(fn, (o) => ('error' in o ? { retryAfterMs: 700 } : false), options()),
    );
    await clock.tickAsync(699);
    assert.deepEqual(fn.attempts, [1]);
    await clock.tickAsync(1);
    assert.equal(result.value, 'ok');

    const short = script<string>(new Error('429'), 'ok');
    const result2 = track(
      retry(short, (o) => ('error' in o ? { retryAfterMs: 10 } : false), options()),
    );
    await clock.tickAsync(99);
    assert.deepEqual(short.attempts, [1], 'the backoff still applies');
    await clock.tickAsync(1);
    assert.equal(result2.value, 'ok');
  });

  it('does not wait for a retryAfterMs beyond 10 × backoff.max: settles the outcome', async () => {
    const err = new Error('503');
    const fn = script<string>(err, 'ok');
    await assert.rejects(
      retry(fn, () => ({ retryAfterMs: 10_001 }), options()),
      err,
    );
    assert.deepEqual(fn.attempts, [1]);
  });

  it('does not retry when the wait would use up the deadline', async () => {
    let left = 150;
    const deadline = { remaining: () => left };
    const err = new Error('two');
    const fn = script<string>(new Error('one'), err, 'ok');
    const result = track(retry(fn, always, options({ deadline })));
    await clock.tickAsync(100); // 100 < 150: retried
    left = 200; // the next wait is 200: not < 200
    await clock.runAllAsync();
    assert.equal(result.error, err);
    assert.deepEqual(fn.attempts, [1, 2]);
  });

  it('asks the budget for each retry; a refusal settles the last outcome and calls onBudgetExhausted', async () => {
    let now = 0;
    const budget = new RetryBudget({
      ratio: 0,
      minPerSecond: 0.1,
      window: 10_000,
      clock: { now: () => now },
    });
    let exhausted = 0;
    const last = new Error('two');
    const fn = script<string>(new Error('one'), last, 'ok');
    const result = track(
      retry(fn, always, options({ budget, onBudgetExhausted: () => exhausted++ })),
    );
    await clock.runAllAsync();
    assert.equal(result.error, last);
    assert.equal(exhausted, 1);
    assert.deepEqual(budget.stats(), { requests: 0, retries: 1, available: 0 });
    // A refused retry of a result resolves that result.
    now = 20_000;
    const value = await retry(
      script({ status: 503 }),
      () => true,
      options({ attempts: 1, budget }),
    );
    assert.deepEqual(value, { status: 503 });
    assert.equal(budget.stats().retries, 0, 'no retry was possible, none was withdrawn');
  });

  it('rejects before the first attempt when the signal is already aborted', async () => {
    const fn = script('ok');
    const reason = new Error('gone');
    await assert.rejects(retry(fn, always, options({ signal: AbortSignal.abort(reason) })), reason);
    assert.deepEqual(fn.attempts, []);
  });

  it('an abort during the wait rejects at once with the reason and clears the timer', async () => {
    const controller = new AbortController();
    const fn = script<string>(new Error('one'), 'ok');
    const result = track(retry(fn, always, options({ signal: controller.signal })));
    await clock.tickAsync(50);
    assert.equal(clock.countTimers(), 1);
    const reason = new Error('cancelled');
    controller.abort(reason);
    await clock.tickAsync(0);
    assert.equal(result.error, reason);
    assert.equal(clock.countTimers(), 0);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    assert.deepEqual(fn.attempts, [1]);
  });

  it('removes its abort listener after each completed wait', async () => {
    const controller = new AbortController();
    const fn = script<string>(new Error('one'), new Error('two'), 'ok');
    assert.equal(
      await (async () => {
        const p = retry(fn, always, options({ signal: controller.signal }));
        await clock.runAllAsync();
        return p;
      })(),
      'ok',
    );
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  it('rejects with the error of a throwing shouldRetry', async () => {
    const bug = new Error('classifier bug');
    await assert.rejects(
      retry(
        script<string>(new Error('x')),
        () => {
          throw bug;
        },
        options(),
      ),
      bug,
    );
  });

  for (const [name, bad] of [
    ['attempts', { attempts: 0 }],
    ['attempts', { attempts: 1.5 }],
    ['backoff', { backoff: null }],
    ['backoff.initial', { backoff: { initial: -1, max: 10, multiplier: 2 } }],
    ['backoff.initial', { backoff: { initial: 20, max: 10, multiplier: 2 } }],
    ['backoff.max', { backoff: { initial: 0, max: Infinity, multiplier: 2 } }],
    ['backoff.multiplier', { backoff: { initial: 1, max: 10, multiplier: 0.5 } }],
    ['random', { random: 1 }],
    ['budget', { budget: {} }],
    ['signal', { signal: {} }],
    ['deadline', { deadline: {} }],
  ] as const) {
    it(`rejects a bad ${name}: ${JSON.stringify(bad)}`, async () => {
      const fn = script('ok');
      await assert.rejects(
        retry(fn, always, { ...options(), ...(bad as object) } as RetryOptions),
        (err: unknown) => err instanceof InvalidArgumentError && err.message.includes(`"${name}"`),
      );
      assert.deepEqual(fn.attempts, []);
    });
  }
});

describe('backoffDelay', () => {
  it('is random() × min(max, initial × multiplier^(attempt-1)) (full jitter)', () => {
    const b = { initial: 50, max: 1000, multiplier: 3 };
    assert.equal(
      backoffDelay(1, b, () => 1),
      50,
    );
    assert.equal(
      backoffDelay(2, b, () => 1),
      150,
    );
    assert.equal(
      backoffDelay(3, b, () => 1),
      450,
    );
    assert.equal(
      backoffDelay(4, b, () => 1),
      1000,
    );
    assert.equal(
      backoffDelay(40, b, () => 1),
      1000,
    );
    assert.equal(
      backoffDelay(3, b, () => 0.5),
      225,
    );
    assert.equal(
      backoffDelay(3, b, () => 0),
      0,
    );
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0);

  it('parses delta-seconds', () => {
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter(['3', '9'], now), 3000);
  });

  it('parses an HTTP-date relative to now (0 when past)', () => {
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 12:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 11:00:00 GMT', now), 0);
  });

  it('returns undefined for missing or malformed values', () => {
    for (const bad of [undefined, '', '  ', '-1', '1.5', '12abc', 'soon', []]) {
      assert.equal(parseRetryAfter(bad as string | undefined, now), undefined, JSON.stringify(bad));
    }
  });
});
