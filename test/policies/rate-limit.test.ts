import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../lib/errors.js';
import { RateLimiter, rateLimiter } from '../../lib/policies/rate-limit.js';
import type { RateLimiterOptions } from '../../lib/policies/rate-limit.js';
import { MemoryStore } from '../../lib/policies/rate-limit/memory-store.js';
import type {
  RateLimitDecision,
  RateLimitRule,
  RateLimitStore,
} from '../../lib/policies/rate-limit/store.js';

function manualClock(start = 1_700_000_000_000) {
  const clock = { time: start, now: () => clock.time };
  return clock;
}

/** An async store, standing in for Redis: records calls and answers with a promise. */
class RecordingStore implements RateLimitStore {
  readonly kind = 'recording';
  readonly calls: Array<{ key: string; rule: RateLimitRule; cost: number | undefined }> = [];
  readonly resets: string[] = [];
  closed = 0;
  consume(key: string, rule: RateLimitRule, cost?: number): Promise<RateLimitDecision> {
    this.calls.push({ key, rule, cost });
    return Promise.resolve({
      allowed: true,
      limit: rule.limit,
      remaining: 0,
      resetMs: 1,
      retryAfterMs: 0,
    });
  }
  reset(key: string): Promise<void> {
    this.resets.push(key);
    return Promise.resolve();
  }
  close(): void {
    this.closed++;
  }
}

function sync(result: RateLimitDecision | Promise<RateLimitDecision>): RateLimitDecision {
  assert.ok(!(result instanceof Promise), 'the memory store answers synchronously');
  return result;
}

describe('RateLimiter', () => {
  it('defaults to gcra with no burst and a memory store it owns', () => {
    const limiter = new RateLimiter({ name: 'create-order', limit: 10, windowMs: 1000 });
    assert.deepEqual(limiter.rule, { algorithm: 'gcra', limit: 10, windowMs: 1000, burst: 0 });
    assert.ok(Object.isFrozen(limiter.rule));
    assert.equal(limiter.name, 'create-order');
    assert.ok(limiter.store instanceof MemoryStore);
    limiter.close();
  });

  it('rateLimiter() builds a RateLimiter', () => {
    const limiter = rateLimiter({ name: 'x', algorithm: 'fixed-window', limit: 1, windowMs: 1000 });
    assert.ok(limiter instanceof RateLimiter);
    limiter.close();
  });

  it('enforces gcra: limit + burst at once, then one per interval', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ name: 'g', limit: 5, windowMs: 1000, burst: 2, clock });
    let allowed = 0;
    while (sync(limiter.consume('1.2.3.4')).allowed) allowed++;
    assert.equal(allowed, 7);
    const denied = sync(limiter.consume('1.2.3.4'));
    assert.deepEqual(denied, {
      allowed: false,
      limit: 7,
      remaining: 0,
      resetMs: 1400,
      retryAfterMs: 200,
      refillMs: 200,
    });
    clock.time += 199;
    assert.equal(sync(limiter.consume('1.2.3.4')).allowed, false);
    clock.time += 1;
    assert.equal(sync(limiter.consume('1.2.3.4')).allowed, true);
    assert.equal(sync(limiter.consume('1.2.3.4')).allowed, false);
    assert.equal(sync(limiter.consume('5.6.7.8')).remaining, 6, 'keys are independent');
    limiter.close();
  });

  it('enforces a fixed window and charges cost', () => {
    const clock = manualClock(1_700_000_000_000);
    const limiter = new RateLimiter({
      name: 'f',
      algorithm: 'fixed-window',
      limit: 10,
      windowMs: 1000,
      clock,
    });
    assert.equal(sync(limiter.consume('k', 6)).remaining, 4);
    assert.equal(sync(limiter.consume('k', 5)).allowed, false);
    assert.equal(sync(limiter.consume('k', 4)).remaining, 0);
    clock.time += 1000;
    assert.equal(sync(limiter.consume('k', 10)).remaining, 0);
    limiter.close();
  });

  it('refuses a cost that could never be allowed', () => {
    const limiter = new RateLimiter({ name: 'c', limit: 5, windowMs: 1000, burst: 1 });
    assert.equal(sync(limiter.consume('k', 6)).allowed, true, 'up to limit + burst is fine');
    for (const cost of [0, -1, 1.5, 7, NaN]) {
      assert.throws(
        () => limiter.consume('k', cost),
        (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError);
          assert.match(err.message, /cost/);
          return true;
        },
      );
    }
    limiter.close();
  });

  it('resets a key', () => {
    const limiter = new RateLimiter({ name: 'r', limit: 1, windowMs: 60_000 });
    sync(limiter.consume('k'));
    assert.equal(sync(limiter.consume('k')).allowed, false);
    limiter.reset('k');
    assert.equal(sync(limiter.consume('k')).allowed, true);
    limiter.close();
  });

  it('passes the frozen rule and a name-prefixed key to a shared async store', async () => {
    const store = new RecordingStore();
    const limiter = new RateLimiter({ name: 'orders', limit: 3, windowMs: 500, store });
    const result = limiter.consume('1.2.3.4', 2);
    assert.ok(result instanceof Promise);
    assert.equal((await result).allowed, true);
    assert.deepEqual(store.calls, [{ key: 'orders:1.2.3.4', rule: limiter.rule, cost: 2 }]);
    assert.equal(store.calls[0]?.rule, limiter.rule);
    await limiter.reset('1.2.3.4');
    assert.deepEqual(store.resets, ['orders:1.2.3.4']);
    limiter.close();
  });

  it('takes a keyPrefix in place of the default', async () => {
    const store = new RecordingStore();
    const bare = new RateLimiter({ name: 'n', limit: 1, windowMs: 1000, store, keyPrefix: '' });
    const custom = new RateLimiter({
      name: 'm',
      limit: 1,
      windowMs: 1000,
      store,
      keyPrefix: 'rl/',
    });
    await bare.consume('k');
    await custom.consume('k');
    assert.deepEqual(
      store.calls.map((c) => c.key),
      ['k', 'rl/k'],
    );
    bare.close();
    custom.close();
    const owned = new RateLimiter({ name: 'o', limit: 1, windowMs: 60_000, keyPrefix: 'x:' });
    sync(owned.consume('k'));
    owned.reset('k');
    assert.equal(sync(owned.consume('k')).allowed, true, 'reset used the same prefix');
    owned.close();
  });

  it('lets limiters share a memory store without sharing counters', () => {
    const store = new MemoryStore({ clock: manualClock() });
    const a = new RateLimiter({ name: 'a', limit: 1, windowMs: 1000, store });
    const b = new RateLimiter({ name: 'b', limit: 1, windowMs: 1000, store });
    assert.equal(sync(a.consume('k')).allowed, true);
    assert.equal(sync(b.consume('k')).allowed, true);
    assert.equal(sync(a.consume('k')).allowed, false);
    assert.equal(store.size, 2);
    a.close();
    b.close();
    store.close();
  });

  it('closes only a store it owns, once', () => {
    const shared = new RecordingStore();
    const limiter = new RateLimiter({ name: 's', limit: 1, windowMs: 1000, store: shared });
    limiter.close();
    limiter.close();
    assert.equal(shared.closed, 0);

    const owned = new RateLimiter({ name: 'o', limit: 1, windowMs: 1000 });
    const store = owned.store as MemoryStore;
    let closes = 0;
    const close = store.close.bind(store);
    store.close = () => {
      closes++;
      close();
    };
    sync(owned.consume('k'));
    owned.close();
    owned.close();
    assert.equal(closes, 1);
    assert.equal(store.size, 0);
  });

  describe('store reuse warning', () => {
    const emitWarning = process.emitWarning;
    let warnings: Array<{ message: string; code: unknown }>;
    beforeEach(() => {
      warnings = [];
      process.emitWarning = ((message: string, options?: { code?: string }) => {
        warnings.push({ message, code: options?.code });
      }) as typeof process.emitWarning;
    });
    afterEach(() => {
      process.emitWarning = emitWarning;
    });

    it('warns once when limiters with one name share a store', () => {
      const store = new RecordingStore();
      const options = { name: 'dup', limit: 1, windowMs: 1000, store };
      const limiters = [new RateLimiter(options), new RateLimiter(options)];
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]?.code, 'RESILIENCE_RATE_LIMIT_STORE_REUSE');
      assert.match(warnings[0]?.message ?? '', /"dup"/);
      limiters.push(new RateLimiter(options));
      assert.equal(warnings.length, 1);
      for (const limiter of limiters) limiter.close();
    });

    it('warns when limiters share keys through one keyPrefix', () => {
      const store = new RecordingStore();
      const a = new RateLimiter({ name: 'a', limit: 1, windowMs: 1000, store, keyPrefix: 'p:' });
      const b = new RateLimiter({ name: 'b', limit: 1, windowMs: 1000, store, keyPrefix: 'p:' });
      assert.equal(warnings.length, 1);
      a.close();
      b.close();
    });

    it('does not warn for distinct names, or for a name whose limiter was closed', () => {
      const store = new RecordingStore();
      new RateLimiter({ name: 'one', limit: 1, windowMs: 1000, store }).close();
      const again = new RateLimiter({ name: 'one', limit: 1, windowMs: 1000, store });
      const other = new RateLimiter({ name: 'two', limit: 1, windowMs: 1000, store });
      assert.deepEqual(warnings, []);
      again.close();
      other.close();
    });
  });

  describe('option validation', () => {
    const base: RateLimiterOptions = { name: 'p', limit: 10, windowMs: 1000 };
    const cases: Array<[string, Partial<RateLimiterOptions> & Record<string, unknown>, RegExp]> = [
      ['empty name', { name: '' }, /name/],
      ['non-ASCII name', { name: 'café' }, /name/],
      ['name with a newline', { name: 'a\nb' }, /name/],
      ['unknown algorithm', { algorithm: 'sliding' as never }, /algorithm/],
      ['zero limit', { limit: 0 }, /limit must be an integer >= 1, got 0/],
      ['fractional limit', { limit: 2.5 }, /limit/],
      ['string limit', { limit: '10' as never }, /limit/],
      ['zero window', { windowMs: 0 }, /windowMs/],
      ['negative window', { windowMs: -1000 }, /windowMs/],
      ['infinite window', { windowMs: Infinity }, /windowMs/],
      ['NaN window', { windowMs: NaN }, /windowMs/],
      ['negative burst', { burst: -1 }, /burst must be an integer >= 0, got -1/],
      ['fractional burst', { burst: 0.5 }, /burst/],
      [
        'burst with fixed-window',
        { algorithm: 'fixed-window', burst: 1 },
        /burst must be 0 with algorithm 'fixed-window'/,
      ],
      ['more than one request per µs', { limit: 1001, windowMs: 1 }, /limit must not exceed/],
      ['a window of a century', { windowMs: 100 * 365 * 86_400_000 }, /windowMs/],
      ['maxKeys with a store', { store: new RecordingStore(), maxKeys: 5 }, /maxKeys/],
      ['clock with a store', { store: new RecordingStore(), clock: { now: () => 0 } }, /clock/],
      ['a non-string keyPrefix', { keyPrefix: 5 as never }, /keyPrefix/],
      ['bad maxKeys', { maxKeys: 0 }, /maxKeys/],
    ];
    for (const [title, override, message] of cases) {
      it(`rejects ${title}`, () => {
        assert.throws(
          () => new RateLimiter({ ...base, ...override }),
          (err: unknown) => {
            assert.ok(err instanceof InvalidArgumentError, String(err));
            assert.match(err.message, message);
            return true;
          },
        );
      });
    }

    it('accepts fixed-window with burst 0 and the fastest allowed rate', () => {
      new RateLimiter({ ...base, algorithm: 'fixed-window', burst: 0 }).close();
      new RateLimiter({ ...base, limit: 1000, windowMs: 1 }).close();
    });
  });
});
