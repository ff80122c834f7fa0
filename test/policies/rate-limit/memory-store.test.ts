import assert from 'node:assert/strict';
import FakeTimers from '@sinonjs/fake-timers';
import { InvalidArgumentError } from '../../../lib/errors.js';
import { MemoryStore } from '../../../lib/policies/rate-limit/memory-store.js';
import type { RateLimitRule } from '../../../lib/policies/rate-limit/store.js';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

const GCRA: RateLimitRule = Object.freeze({
  algorithm: 'gcra',
  limit: 10,
  windowMs: 1000,
  burst: 0,
});
const FIXED: RateLimitRule = Object.freeze({
  algorithm: 'fixed-window',
  limit: 3,
  windowMs: 1000,
  burst: 0,
});

function manualClock(start = 1_700_000_000_000) {
  const clock = { time: start, now: () => clock.time };
  return clock;
}

describe('MemoryStore', () => {
  const stores: MemoryStore[] = [];
  function store(options: ConstructorParameters<typeof MemoryStore>[0] = {}): MemoryStore {
    const s = new MemoryStore(options);
    stores.push(s);
    return s;
  }
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
  });

  it('answers synchronously and counts per key', () => {
    const clock = manualClock();
    const s = store({ clock });
    assert.equal(s.kind, 'memory');
    for (let i = 0; i < 10; i++) assert.equal(s.consume('a', GCRA).allowed, true);
    assert.equal(s.consume('a', GCRA).allowed, false);
    assert.equal(s.consume('b', GCRA).remaining, 9);
    assert.equal(s.size, 2);
  });

  it('runs both algorithms side by side and honours cost', () => {
    const clock = manualClock(1_700_000_000_000);
    const s = store({ clock });
    assert.deepEqual(s.consume('k', FIXED, 2), {
      allowed: true,
      limit: 3,
      remaining: 1,
      resetMs: 1000,
      refillMs: 1000,
      retryAfterMs: 0,
    });
    assert.equal(s.consume('k', FIXED, 2).allowed, false);
    assert.equal(s.consume('k', FIXED).remaining, 0);
    assert.equal(s.consume('g', GCRA, 5).remaining, 5);
    clock.time += 1000;
    assert.equal(s.consume('k', FIXED).remaining, 2);
  });

  it('starts afresh when a key is reused under the other algorithm', () => {
    const s = store({ clock: manualClock() });
    s.consume('k', FIXED, 3);
    assert.equal(s.consume('k', GCRA).remaining, 9);
    assert.equal(s.consume('k', FIXED).remaining, 2);
    assert.equal(s.size, 1);
  });

  it('does not store a key whose first request is denied', () => {
    const s = store({ clock: manualClock() });
    assert.equal(s.consume('k', FIXED, 4).allowed, false);
    assert.equal(s.size, 0);
  });

  it('reset() forgets a key', () => {
    const s = store({ clock: manualClock() });
    for (let i = 0; i < 10; i++) s.consume('a', GCRA);
    s.reset('a');
    s.reset('never-seen');
    assert.equal(s.size, 0);
    assert.equal(s.consume('a', GCRA).remaining, 9);
    assert.equal(s.consume('b', GCRA).remaining, 9);
  });

  it('evicts the least recently used key at maxKeys; any consume counts as a use', () => {
    const s = store({ clock: manualClock(), maxKeys: 3 });
    for (let i = 0; i < 10; i++) s.consume('a', GCRA);
    s.consume('b', GCRA);
    s.consume('c', GCRA);
    // A denied request touches `a` too: a client being refused must not be evicted into a
    // fresh quota.
    assert.equal(s.consume('a', GCRA).allowed, false);
    s.consume('d', GCRA); // evicts b, the least recently used
    assert.equal(s.size, 3);
    assert.equal(s.consume('a', GCRA).allowed, false, 'a kept its state');
    assert.equal(s.consume('c', GCRA).remaining, 8, 'c kept its state');
    assert.equal(s.consume('b', GCRA).remaining, 9, 'b was evicted and starts afresh');
    // Recency is now d, a, c, b: e evicts d.
    s.consume('e', GCRA);
    assert.equal(s.consume('d', GCRA).remaining, 9, 'd was evicted');
  });

  it('never holds more than maxKeys under 100 000 distinct keys', () => {
    const clock = manualClock();
    const s = store({ clock, maxKeys: 1000 });
    let max = 0;
    for (let i = 0; i < 100_000; i++) {
      s.consume(`10.0.${i >> 8}.${i & 255}`, i % 2 === 0 ? GCRA : FIXED);
      if (s.size > max) max = s.size;
    }
    assert.equal(max, 1000);
    // The survivors are exactly the 1000 most recent keys, with their state intact.
    for (let i = 99_000; i < 100_000; i++) {
      const rule = i % 2 === 0 ? GCRA : FIXED;
      assert.equal(s.consume(`10.0.${i >> 8}.${i & 255}`, rule).remaining, rule.limit - 2);
    }
  });

  it('keeps recency exact across sweeps, resets and reused slots', () => {
    const clock = manualClock();
    const s = store({ clock, maxKeys: 4 });
    s.consume('a', GCRA, 10); // restored after 1000 ms
    s.consume('b', GCRA); // restored after 100 ms
    s.consume('10.0.0.1', GCRA, 10);
    s.consume('10.0.0.2', GCRA);
    clock.time += 100;
    assert.equal(s.sweep(), 2, 'b and 10.0.0.2 are restored');
    s.consume('c', GCRA); // takes a freed slot
    s.reset('never-seen');
    s.consume('d', GCRA); // takes the other
    assert.equal(s.size, 4);
    s.consume('a', GCRA); // recency now 10.0.0.1, c, d, a
    s.consume('e', GCRA); // evicts 10.0.0.1
    assert.equal(s.size, 4);
    assert.equal(s.consume('a', GCRA).allowed, false, 'a kept its state');
    assert.equal(s.consume('c', GCRA).remaining, 8, 'c kept its state');
    assert.equal(s.consume('10.0.0.1', GCRA).remaining, 9, '10.0.0.1 was evicted');
    // Recency was d, e, a, c before 10.0.0.1 came back: d went.
    assert.equal(s.consume('e', GCRA).remaining, 8, 'e kept its state');
    assert.equal(s.consume('d', GCRA).remaining, 9, 'd was evicted'); // and a goes
    assert.equal(s.consume('a', GCRA).remaining, 9, 'a was evicted'); // and c goes
    // Recency is 10.0.0.1, e, d, a; two resets free two slots in the middle of the list.
    s.reset('e');
    s.reset('10.0.0.1');
    assert.equal(s.size, 2);
    s.consume('x', GCRA);
    s.consume('10.0.0.9', GCRA);
    s.consume('y', GCRA); // evicts d, now the least recently used
    assert.equal(s.size, 4);
    assert.equal(s.consume('a', GCRA).remaining, 8, 'a kept its state');
    assert.equal(s.consume('d', GCRA).remaining, 9, 'd was evicted');
  });

  it('holds IPv4 keys compactly without merging distinct keys', () => {
    const s = store({ clock: manualClock() });
    // Canonical addresses are held as numbers; near misses stay strings of their own, and
    // the number an address becomes is no key for it.
    const keys = [
      '1.2.3.4',
      '01.2.3.4',
      '1.2.3.04',
      '1.2.3.4 ',
      ' 1.2.3.4',
      '1.2.3',
      '1.2.3.4.5',
      '1..3.4',
      '1.2.3.',
      '256.2.3.4',
      '1.2.3.1000',
      '16909060',
      '::ffff:1.2.3.4',
      '0.0.0.0',
      '0.0.0.1',
      '255.255.255.255',
      '128.0.0.0',
      '127.255.255.255',
    ];
    for (const key of keys) assert.equal(s.consume(key, FIXED).remaining, 2, key);
    assert.equal(s.size, keys.length);
    // The same address made another way is the same key.
    assert.equal(s.consume(['1', '2', '3', '4'].join('.'), FIXED).remaining, 1);
    assert.equal(s.consume('255.255.255.255', FIXED).remaining, 1);
    s.reset('1.2.3.4');
    assert.equal(s.size, keys.length - 1);
    assert.equal(s.consume('1.2.3.4', FIXED).remaining, 2, 'reset forgot it');
    assert.equal(s.consume('01.2.3.4', FIXED).remaining, 1, 'its look-alike kept its count');
  });

  it('rejects bad options', () => {
    for (const maxKeys of [0, -1, 1.5, NaN]) {
      assert.throws(
        () => new MemoryStore({ maxKeys }),
        (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError);
          assert.match(err.message, /maxKeys/);
          return true;
        },
      );
    }
    for (const sweepInterval of [0, -5, Infinity, NaN]) {
      assert.throws(
        () => new MemoryStore({ sweepInterval }),
        (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError);
          assert.match(err.message, /sweepInterval/);
          return true;
        },
      );
    }
  });

  describe('sweep', () => {
    let clock: InstalledClock;
    beforeEach(() => {
      clock = FakeTimers.install({
        now: 1_700_000_000_000,
        toFake: ['Date', 'setInterval', 'clearInterval'],
      });
    });
    afterEach(() => {
      clock.uninstall();
    });

    it('drops GCRA keys once their quota is fully restored', () => {
      const s = store({ sweepInterval: 1000 });
      s.consume('short', GCRA); // restored after 100 ms
      s.consume('long', GCRA, 10); // restored after 1000 ms
      clock.tick(999);
      assert.equal(s.size, 2);
      clock.tick(1); // the sweep at 1000 ms: both are restored by then
      assert.equal(s.size, 0);
    });

    it('keeps a GCRA key that is still limited', () => {
      const s = store({ sweepInterval: 500 });
      s.consume('long', GCRA, 10);
      s.consume('short', GCRA);
      clock.tick(500);
      assert.equal(s.size, 1);
      assert.equal(s.consume('long', GCRA).remaining, 4, 'its state survived the sweep');
    });

    it('drops fixed-window keys once their window has ended', () => {
      const s = store({ sweepInterval: 250 });
      clock.tick(300); // mid-window: the window ends at +1000
      s.consume('k', FIXED);
      clock.tick(450); // sweep at +500 and +750: window still open
      assert.equal(s.size, 1);
      clock.tick(250); // sweep at +1000
      assert.equal(s.size, 0);
    });

    it('sweeps a large store in chunks of 10 000 slots, one macrotask each', async () => {
      const s = store({ sweepInterval: 1000, maxKeys: 50_000 });
      for (let i = 0; i < 25_000; i++) s.consume(`k${i}`, GCRA);
      s.consume('live', GCRA, 10); // restored only at +1000
      clock.tick(999);
      s.consume('live', GCRA); // still limited at +1000; visited in the last chunk
      clock.tick(1);
      assert.equal(s.size, 15_001);
      // setImmediate is real: the sweep's continuation was queued first, so it runs first.
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(s.size, 5_001);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(s.size, 1);
      assert.equal(s.consume('live', GCRA).remaining, 8, 'its state survived the sweep');
    });

    it('close() stops a sweep in progress', async () => {
      const s = store({ sweepInterval: 1000, maxKeys: 50_000 });
      for (let i = 0; i < 25_000; i++) s.consume(`k${i}`, GCRA);
      clock.tick(1000);
      assert.equal(s.size, 15_000);
      s.close();
      s.consume('fresh', GCRA);
      clock.tick(1000); // `fresh` is restored now: a sweep still running would drop it
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(s.size, 1);
    });

    it('sweep() reports how many keys it dropped', () => {
      const s = store({ sweepInterval: 60_000 });
      s.consume('a', GCRA);
      s.consume('b', GCRA, 10);
      clock.tick(100);
      assert.equal(s.sweep(), 1);
      assert.equal(s.size, 1);
    });

    it('close() clears the interval, drops state and is idempotent', () => {
      const s = store({ sweepInterval: 1000 });
      s.consume('a', GCRA);
      assert.equal(clock.countTimers(), 1);
      s.close();
      assert.equal(clock.countTimers(), 0);
      assert.equal(s.size, 0);
      s.close();
      assert.equal(clock.countTimers(), 0);
      // Still usable afterwards, without a sweep.
      assert.equal(s.consume('a', GCRA).remaining, 9);
    });
  });
});
