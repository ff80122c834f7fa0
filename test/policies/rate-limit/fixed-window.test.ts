import assert from 'node:assert/strict';
import {
  fixedWindow,
  fixedWindowExpiredUpTo,
  fixedWindowSizeUs,
} from '../../../lib/policies/rate-limit/fixed-window.js';
import type { RateLimitDecision, RateLimitRule } from '../../../lib/policies/rate-limit/store.js';

function rule(limit: number, windowMs: number): RateLimitRule {
  return { algorithm: 'fixed-window', limit, windowMs, burst: 0 };
}

class Key {
  state: number | undefined;
  constructor(private readonly r: RateLimitRule) {}
  consume(nowMs: number, cost = 1): RateLimitDecision {
    const step = fixedWindow(this.state, nowMs, this.r, cost);
    this.state = step.state;
    return step.decision;
  }
  drain(nowMs: number): number {
    let n = 0;
    while (this.consume(nowMs).allowed) n++;
    return n;
  }
}

// A multiple of 60 000, so windows of 1 s and 1 min both start here.
const T0 = 1_699_999_980_000;

describe('fixed window', () => {
  it('measures the window in whole microseconds', () => {
    assert.equal(fixedWindowSizeUs(rule(5, 1000)), 1_000_000);
    assert.equal(fixedWindowSizeUs(rule(1, 0.0004)), 1);
  });

  it('allows exactly the limit in each aligned window', () => {
    const key = new Key(rule(5, 1000));
    for (let w = 0; w < 20; w++) {
      const start = T0 + w * 1000;
      let allowed = 0;
      for (let t = 0; t < 1000; t += 7) if (key.consume(start + t).allowed) allowed++;
      assert.equal(allowed, 5, `window ${w}`);
    }
  });

  it('aligns windows to multiples of windowMs, not to the first request', () => {
    const key = new Key(rule(3, 1000));
    assert.equal(key.drain(T0 + 900), 3);
    // 100 ms later a new window has begun, although the first request was only 100 ms ago.
    assert.equal(key.drain(T0 + 999), 0);
    assert.equal(key.drain(T0 + 1000), 3);
  });

  it('reports exact decision fields', () => {
    const key = new Key(rule(5, 60_000));
    assert.deepEqual(key.consume(T0 + 15_000), {
      allowed: true,
      limit: 5,
      remaining: 4,
      resetMs: 45_000,
      refillMs: 45_000,
      retryAfterMs: 0,
    });
    key.consume(T0 + 20_000, 4);
    assert.deepEqual(key.consume(T0 + 59_999), {
      allowed: false,
      limit: 5,
      remaining: 0,
      resetMs: 1,
      refillMs: 1,
      retryAfterMs: 1,
    });
    assert.deepEqual(key.consume(T0 + 60_000), {
      allowed: true,
      limit: 5,
      remaining: 4,
      resetMs: 60_000,
      refillMs: 60_000,
      retryAfterMs: 0,
    });
  });

  it('charges cost > 1 and refuses a cost larger than what is left without consuming', () => {
    const key = new Key(rule(10, 1000));
    assert.equal(key.consume(T0, 7).remaining, 3);
    const denied = key.consume(T0 + 10, 4);
    assert.equal(denied.allowed, false);
    assert.equal(denied.remaining, 3);
    assert.equal(denied.retryAfterMs, 990);
    assert.equal(key.consume(T0 + 20, 3).remaining, 0);
  });

  it('does not consume on a denied request', () => {
    const key = new Key(rule(2, 1000));
    key.drain(T0);
    const before = key.state;
    for (let i = 0; i < 50; i++) assert.equal(key.consume(T0 + i).allowed, false);
    assert.equal(key.state, before);
  });

  it('counts up to a limit as large as the window in microseconds', () => {
    const key = new Key(rule(1000, 1));
    assert.equal(key.drain(T0), 1000);
    assert.equal(key.drain(T0 + 1), 1000);
  });

  it('stores nothing when a fresh key is denied', () => {
    assert.equal(fixedWindow(undefined, T0, rule(2, 1000), 3).state, undefined);
  });

  it('expires a key once its window has ended, given the longest window', () => {
    const { state } = fixedWindow(undefined, T0 + 400, rule(2, 1000));
    assert.ok(state !== undefined);
    assert.equal(state <= fixedWindowExpiredUpTo(T0 + 999, 1000), false);
    assert.equal(state <= fixedWindowExpiredUpTo(T0 + 1000, 1000), true);
    // With a longer window in the store it is kept longer, never dropped early.
    assert.equal(state <= fixedWindowExpiredUpTo(T0 + 1000, 60_000), false);
    // A count of n is kept up to n - 1 µs longer (the state is start + n - 1): late, never early.
    const full = fixedWindow(state, T0 + 999, rule(2, 1000)).state;
    assert.ok(full !== undefined && full > state);
    assert.equal(full <= fixedWindowExpiredUpTo(T0 + 1000, 1000), false);
    assert.equal(full <= fixedWindowExpiredUpTo(T0 + 1000.001, 1000), true);
  });

  it('keeps windows aligned on a clock below zero', () => {
    const key = new Key(rule(1, 1000));
    assert.equal(key.consume(-1500).resetMs, 500);
    assert.equal(key.consume(-1001).allowed, false);
    assert.equal(key.consume(-1000).allowed, true);
  });
});
