import assert from 'node:assert/strict';
import { gcra, gcraExpiredUpTo, gcraIntervalUs } from '../../../lib/policies/rate-limit/gcra.js';
import type { RateLimitDecision, RateLimitRule } from '../../../lib/policies/rate-limit/store.js';

function rule(limit: number, windowMs: number, burst = 0): RateLimitRule {
  return { algorithm: 'gcra', limit, windowMs, burst };
}

/** Drives the pure function like a store holding one key. */
class Key {
  state: number | undefined;
  constructor(private readonly r: RateLimitRule) {}
  consume(nowMs: number, cost = 1): RateLimitDecision {
    const step = gcra(this.state, nowMs, this.r, cost);
    this.state = step.state;
    return step.decision;
  }
  /** How many requests of cost 1 are allowed at `nowMs`, trying until the first denial. */
  drain(nowMs: number): number {
    let n = 0;
    while (this.consume(nowMs).allowed) n++;
    return n;
  }
}

const T0 = 1_700_000_000_000;

describe('gcra', () => {
  it('computes the emission interval in whole microseconds', () => {
    assert.equal(gcraIntervalUs(rule(10, 1000)), 100_000);
    assert.equal(gcraIntervalUs(rule(3, 1000)), 333_333);
    assert.equal(gcraIntervalUs(rule(1000, 1)), 1);
  });

  it('lets a fresh key send exactly the limit at once, then exactly one per interval', () => {
    const key = new Key(rule(10, 1000));
    assert.equal(key.drain(T0), 10);
    for (let i = 1; i <= 50; i++) {
      assert.equal(key.drain(T0 + i * 100 - 1), 0, `before interval ${i}`);
      assert.equal(key.drain(T0 + i * 100), 1, `at interval ${i}`);
    }
  });

  it('allows exactly limit + burst at once, then the sustained rate', () => {
    const key = new Key(rule(10, 1000, 5));
    assert.equal(key.drain(T0), 15);
    assert.equal(key.drain(T0 + 100), 1);
    // After a quiet full window plus the burst's worth, the whole capacity is back.
    assert.equal(key.drain(T0 + 100 + 1500), 15);
  });

  it('allows exactly the limit over one window when requests are spread out', () => {
    const key = new Key(rule(4, 1000));
    let allowed = 0;
    // A request every 10 ms across one second, starting from a full quota.
    for (let t = 0; t < 1000; t += 10) if (key.consume(T0 + t).allowed) allowed++;
    // 4 in a row, then one each 250 ms (at 250, 500, 750): the capacity plus what refilled.
    assert.equal(allowed, 7);
  });

  it('does not drift with an interval that is not a whole number of milliseconds', () => {
    // T = 333.333 ms (333 333 µs). The k-th request after the initial burst is due exactly
    // k × T later; float milliseconds would drift by an ulp per request and miss some.
    const key = new Key(rule(3, 1000));
    assert.equal(key.drain(T0), 3);
    for (let k = 1; k <= 3000; k++) {
      const due = T0 + Math.ceil((k * 333_333) / 1000);
      assert.equal(key.drain(due - 1), 0, `before request ${k}`);
      assert.equal(key.drain(due), 1, `request ${k}`);
    }
  });

  it('reports exact decision fields', () => {
    const key = new Key(rule(10, 1000, 2));
    assert.deepEqual(key.consume(T0), {
      allowed: true,
      limit: 12,
      remaining: 11,
      resetMs: 100,
      refillMs: 100,
      retryAfterMs: 0,
    });
    for (let i = 0; i < 10; i++) key.consume(T0);
    assert.deepEqual(key.consume(T0), {
      allowed: true,
      limit: 12,
      remaining: 0,
      resetMs: 1200,
      refillMs: 100,
      retryAfterMs: 0,
    });
    assert.deepEqual(key.consume(T0 + 30), {
      allowed: false,
      limit: 12,
      remaining: 0,
      resetMs: 1170,
      refillMs: 70,
      retryAfterMs: 70,
    });
    // 250 ms later two intervals have refilled.
    assert.deepEqual(key.consume(T0 + 250), {
      allowed: true,
      limit: 12,
      remaining: 1,
      resetMs: 1050,
      refillMs: 50,
      retryAfterMs: 0,
    });
  });

  it('rounds partial milliseconds up so that waiting retryAfterMs always suffices', () => {
    const key = new Key(rule(3, 1000));
    assert.equal(key.drain(T0), 3);
    const denied = key.consume(T0);
    assert.equal(denied.allowed, false);
    assert.equal(denied.retryAfterMs, 334);
    assert.equal(denied.resetMs, 1000);
    assert.equal(key.consume(T0 + 333).allowed, false);
    assert.equal(key.consume(T0 + 334).allowed, true);
  });

  it('charges cost > 1 and refuses a cost larger than what is left', () => {
    const key = new Key(rule(10, 1000));
    const first = key.consume(T0, 4);
    assert.equal(first.allowed, true);
    assert.equal(first.remaining, 6);
    assert.equal(first.resetMs, 400);
    assert.equal(key.consume(T0, 6).remaining, 0);
    const denied = key.consume(T0 + 100, 3);
    assert.equal(denied.allowed, false);
    assert.equal(denied.remaining, 1);
    assert.equal(denied.retryAfterMs, 200);
    assert.equal(key.consume(T0 + 300, 3).allowed, true);
  });

  it('does not consume on a denied request', () => {
    const key = new Key(rule(2, 1000));
    key.drain(T0);
    const before = key.state;
    for (let i = 0; i < 100; i++) assert.equal(key.consume(T0 + i).allowed, false);
    assert.equal(key.state, before);
    // Had the denials counted, the key would still be blocked at the first interval.
    assert.equal(key.consume(T0 + 500).allowed, true);
  });

  it('stores nothing when a fresh key is denied', () => {
    const step = gcra(undefined, T0, rule(2, 1000), 3);
    assert.equal(step.decision.allowed, false);
    assert.equal(step.state, undefined);
  });

  it('expires a key once its quota is fully restored', () => {
    const step = gcra(undefined, T0, rule(10, 1000), 2);
    assert.equal(step.state, (T0 + 200) * 1000);
    assert.ok(step.state !== undefined);
    assert.equal(step.state <= gcraExpiredUpTo(T0 + 199), false);
    assert.equal(step.state <= gcraExpiredUpTo(T0 + 200), true);
  });
});
