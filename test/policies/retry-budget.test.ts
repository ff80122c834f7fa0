import assert from 'node:assert/strict';
import { RetryBudget } from '../../lib/policies/retry-budget.js';
import { InvalidArgumentError } from '../../lib/errors.js';

describe('RetryBudget', () => {
  let now: number;
  const clock = { now: () => now };

  beforeEach(() => {
    now = 1_000_000;
  });

  function budget(ratio: number, minPerSecond: number, window = 10_000): RetryBudget {
    return new RetryBudget({ ratio, minPerSecond, window, clock });
  }

  it('allows minPerSecond × window seconds of retries with no traffic', () => {
    const b = budget(0, 0.5); // 5 retries per 10 s
    for (let i = 0; i < 5; i++) assert.equal(b.tryRetry(), true, `retry ${i + 1}`);
    assert.equal(b.tryRetry(), false);
    assert.deepEqual(b.stats(), { requests: 0, retries: 5, available: 0 });
  });

  it('adds ratio × recent requests', () => {
    const b = budget(0.2, 0);
    for (let i = 0; i < 10; i++) b.recordRequest();
    assert.equal(b.stats().available, 2);
    assert.equal(b.tryRetry(), true);
    assert.equal(b.tryRetry(), true);
    assert.equal(b.tryRetry(), false);
    b.recordRequest();
    b.recordRequest();
    b.recordRequest();
    b.recordRequest();
    b.recordRequest();
    assert.equal(b.tryRetry(), true, '15 requests × 0.2 = 3 retries');
    assert.equal(b.tryRetry(), false);
  });

  it('grants exactly the budget despite floating-point ratios (0.1 × 30 = 3)', () => {
    const b = budget(0.1, 0);
    for (let i = 0; i < 30; i++) b.recordRequest();
    assert.equal(b.tryRetry(), true);
    assert.equal(b.tryRetry(), true);
    assert.equal(b.tryRetry(), true);
    assert.equal(b.tryRetry(), false);
  });

  it('a refused retry records nothing', () => {
    const b = budget(0, 0);
    assert.equal(b.tryRetry(), false);
    assert.deepEqual(b.stats(), { requests: 0, retries: 0, available: 0 });
  });

  it('forgets requests and retries older than the window, bucket by bucket', () => {
    const b = budget(1, 0, 3000);
    b.recordRequest(); // t = 0 s
    now += 1000;
    b.recordRequest(); // t = 1 s
    assert.equal(b.tryRetry(), true);
    assert.equal(b.tryRetry(), true);
    assert.equal(b.tryRetry(), false);
    now += 2000; // t = 3 s: the t = 0 request has left the window
    assert.deepEqual(b.stats(), { requests: 1, retries: 2, available: 0 });
    now += 1000; // t = 4 s: everything from t = 1 s has left
    assert.deepEqual(b.stats(), { requests: 0, retries: 0, available: 0 });
  });

  it('recovers completely after a long pause (more than the whole ring)', () => {
    const b = budget(0, 1, 5000);
    for (let i = 0; i < 5; i++) assert.equal(b.tryRetry(), true);
    assert.equal(b.tryRetry(), false);
    now += 3_600_000;
    assert.deepEqual(b.stats(), { requests: 0, retries: 0, available: 5 });
  });

  it('handles windows shorter than a second and long windows with coarse buckets', () => {
    const short = budget(1, 0, 500);
    short.recordRequest();
    now += 499;
    assert.equal(short.stats().requests, 1);
    now += 1;
    assert.equal(short.stats().requests, 0);

    const long = budget(1, 0, 3_600_000); // 60 buckets of a minute
    long.recordRequest();
    now += 3_540_000;
    assert.equal(long.stats().requests, 1);
    now += 60_000;
    assert.equal(long.stats().requests, 0);
  });

  it('tolerates a clock that steps back', () => {
    const b = budget(1, 0);
    b.recordRequest();
    now -= 5000;
    b.recordRequest();
    assert.equal(b.stats().requests, 2);
    assert.equal(b.tryRetry(), true);
  });

  it('stays within the budget for any interleaving (invariant)', () => {
    const b = budget(0.25, 0.2, 5000);
    let seed = 7;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const events: { at: number; kind: 'req' | 'retry' }[] = [];
    for (let i = 0; i < 5000; i++) {
      now += Math.floor(random() * 50);
      if (random() < 0.5) {
        b.recordRequest();
        events.push({ at: now, kind: 'req' });
        continue;
      }
      if (!b.tryRetry()) continue;
      events.push({ at: now, kind: 'retry' });
      // At every grant, counting it, the retries in the window (five whole-second buckets)
      // stay within ratio × requests + minPerSecond × 5 s.
      const from = (Math.floor(now / 1000) - 4) * 1000;
      const inWindow = events.filter((e) => e.at >= from);
      const reqs = inWindow.filter((e) => e.kind === 'req').length;
      const rets = inWindow.length - reqs;
      assert.ok(rets <= 0.25 * reqs + 1 + 1e-9, `${rets} retries for ${reqs} requests`);
      assert.equal(b.stats().requests, reqs);
      assert.equal(b.stats().retries, rets);
    }
  });

  for (const [option, bad] of [
    ['ratio', { ratio: 1.5 }],
    ['ratio', { ratio: -0.1 }],
    ['minPerSecond', { minPerSecond: -1 }],
    ['minPerSecond', { minPerSecond: Infinity }],
    ['window', { window: 0 }],
    ['window', { window: Number.NaN }],
    ['clock', { clock: {} }],
  ] as const) {
    it(`rejects a bad ${option}: ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => new RetryBudget({ ratio: 0.2, minPerSecond: 1, window: 1000, ...(bad as object) }),
        (err: unknown) =>
          err instanceof InvalidArgumentError && err.message.includes(`"${option}"`),
      );
    });
  }
});
