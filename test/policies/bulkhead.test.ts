import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import FakeTimers from '@sinonjs/fake-timers';
import { Bulkhead, bulkhead } from '../../lib/policies/bulkhead.js';
import type { BulkheadLease } from '../../lib/policies/bulkhead.js';
import {
  BulkheadFullError,
  InvalidArgumentError,
  isBulkheadFullError,
  type BulkheadRejectReason,
} from '../../lib/errors.js';
import { track } from '../helpers/deferred.js';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function defer<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function reasonOf(err: unknown): BulkheadRejectReason {
  assert.ok(err instanceof BulkheadFullError, `expected BulkheadFullError, got ${String(err)}`);
  return err.reason;
}

/** Small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Bulkhead', () => {
  let clock: InstalledClock;

  beforeEach(() => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] });
  });

  afterEach(() => {
    clock.uninstall();
  });

  const flush = () => clock.tickAsync(0);

  describe('options', () => {
    const bad: Array<[string, unknown]> = [
      ['maxConcurrent', 0],
      ['maxConcurrent', -1],
      ['maxConcurrent', 1.5],
      ['maxConcurrent', Number.NaN],
      ['maxConcurrent', Number.POSITIVE_INFINITY],
      ['maxConcurrent', '2'],
      ['maxConcurrent', undefined],
      ['maxQueue', -1],
      ['maxQueue', 0.5],
      ['maxQueue', Number.NaN],
      ['maxQueue', Number.POSITIVE_INFINITY],
      ['queueTimeout', -1],
      ['queueTimeout', Number.NaN],
      ['queueTimeout', Number.POSITIVE_INFINITY],
      ['queueTimeout', 2 ** 31],
      ['queueTimeout', '100'],
    ];
    for (const [name, value] of bad) {
      it(`rejects ${name} = ${String(value)}`, () => {
        const options = { maxConcurrent: 1, [name]: value } as never;
        assert.throws(
          () => new Bulkhead(options),
          (err: unknown) =>
            err instanceof InvalidArgumentError &&
            err.message.includes(name) &&
            err.message.includes(String(value)),
        );
      });
    }

    it('rejects a missing options object', () => {
      assert.throws(() => bulkhead(undefined as never), InvalidArgumentError);
      assert.throws(() => bulkhead(null as never), InvalidArgumentError);
    });

    it('defaults to no queue and a 1 s queue timeout', async () => {
      const b = bulkhead({ maxConcurrent: 1 });
      assert.deepEqual(b.stats(), { active: 0, queued: 0, maxConcurrent: 1, maxQueue: 0 });
      b.tryAcquire();
      await assert.rejects(b.acquire(), (err) => reasonOf(err) === 'full');

      const q = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
      q.tryAcquire();
      const waiting = track(q.acquire());
      await clock.tickAsync(999);
      assert.equal(waiting.settled, false);
      await clock.tickAsync(1);
      assert.equal(reasonOf(waiting.error), 'queue-timeout');
    });

    it('exposes its limits', () => {
      const b = bulkhead({ maxConcurrent: 3, maxQueue: 7 });
      assert.equal(b.maxConcurrent, 3);
      assert.equal(b.maxQueue, 7);
      assert.equal(b.active, 0);
      assert.equal(b.queued, 0);
    });
  });

  describe('tryAcquire', () => {
    it('takes a free slot and returns null when none is free, without emitting', () => {
      const b = bulkhead({ maxConcurrent: 2 });
      const reasons: BulkheadRejectReason[] = [];
      b.onReject((r) => reasons.push(r));
      const l1 = b.tryAcquire();
      const l2 = b.tryAcquire();
      assert.ok(l1 && l2);
      assert.equal(b.tryAcquire(), null);
      assert.equal(b.active, 2);
      assert.deepEqual(reasons, []);
      l1.release();
      assert.equal(b.active, 1);
      assert.ok(b.tryAcquire());
    });

    it('does not jump the queue', async () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
      const lease = b.tryAcquire()!;
      const waiting = track(b.acquire());
      lease.release();
      // The slot went to the waiter, so the fast path finds nothing free.
      assert.equal(b.tryAcquire(), null);
      assert.equal(b.active, 1);
      await flush();
      assert.ok(waiting.value);
    });
  });

  describe('acquire', () => {
    it('resolves at once when a slot is free', async () => {
      const b = bulkhead({ maxConcurrent: 1 });
      const lease = await b.acquire();
      assert.equal(lease.released, false);
      assert.equal(b.active, 1);
    });

    it('rejects immediately with reason full when the queue is full', async () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
      const reasons: BulkheadRejectReason[] = [];
      b.onReject((r) => reasons.push(r));
      b.tryAcquire();
      const queued = track(b.acquire());
      const rejected = track(b.acquire());
      assert.deepEqual(reasons, ['full']);
      await flush();
      assert.equal(queued.settled, false);
      const err = rejected.error;
      assert.ok(isBulkheadFullError(err));
      assert.equal(err.reason, 'full');
      assert.equal(err.status, 503);
      assert.equal(err.code, 'ERR_BULKHEAD_FULL');
      assert.equal(b.queued, 1);
    });

    it('hands released slots to waiters in FIFO order', async () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 3 });
      const first = b.tryAcquire()!;
      const order: number[] = [];
      const waiters = [0, 1, 2].map((i) =>
        b.acquire().then((lease) => {
          order.push(i);
          return lease;
        }),
      );
      assert.equal(b.queued, 3);
      first.release();
      (await waiters[0]!).release();
      (await waiters[1]!).release();
      (await waiters[2]!).release();
      assert.deepEqual(order, [0, 1, 2]);
      assert.deepEqual(b.stats(), { active: 0, queued: 0, maxConcurrent: 1, maxQueue: 3 });
    });

    it('rejects with queue-timeout after queueTimeout, and the late slot goes elsewhere', async () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 2, queueTimeout: 100 });
      const reasons: BulkheadRejectReason[] = [];
      b.onReject((r) => reasons.push(r));
      const lease = b.tryAcquire()!;
      const ac = new AbortController();
      const early = track(b.acquire(ac.signal));
      await clock.tickAsync(50);
      const late = track(b.acquire());
      await clock.tickAsync(49);
      assert.equal(early.settled, false);
      assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
      await clock.tickAsync(1);
      assert.equal(reasonOf(early.error), 'queue-timeout');
      assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
      assert.deepEqual(reasons, ['queue-timeout']);
      assert.equal(b.queued, 1);
      assert.equal(clock.countTimers(), 1);

      lease.release();
      await flush();
      assert.equal(early.settleCount, 1, 'a timed-out waiter is never also resolved');
      assert.ok(late.value);
      assert.equal(b.active, 1);
      assert.equal(clock.countTimers(), 0, 'the granted waiter’s timer is cleared');
      late.value.release();
      assert.equal(b.active, 0);
    });

    it('does not time out when queueTimeout is 0', async () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeout: 0 });
      const lease = b.tryAcquire()!;
      const waiting = track(b.acquire());
      assert.equal(clock.countTimers(), 0);
      await clock.tickAsync(10 ** 9);
      assert.equal(waiting.settled, false);
      lease.release();
      await flush();
      assert.ok(waiting.value);
    });

    it('unrefs its queue timers', () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
      const timers: Array<{ hasRef(): boolean }> = [];
      const original = globalThis.setTimeout;
      globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
        const t = original(...args);
        timers.push(t as unknown as { hasRef(): boolean });
        return t;
      }) as typeof setTimeout;
      try {
        b.tryAcquire();
        void b.acquire().catch(() => {});
      } finally {
        globalThis.setTimeout = original;
      }
      assert.equal(timers.length, 1);
      assert.equal(timers[0]!.hasRef(), false);
      b.close();
    });

    it('frees the queue place when the signal aborts while queued', async () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
      const reasons: BulkheadRejectReason[] = [];
      b.onReject((r) => reasons.push(r));
      const lease = b.tryAcquire()!;
      const ac = new AbortController();
      const aborted = track(b.acquire(ac.signal));
      assert.equal(b.queued, 1);
      assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
      ac.abort();
      assert.equal(b.queued, 0);
      assert.equal(clock.countTimers(), 0);
      assert.deepEqual(reasons, ['aborted']);
      const next = track(b.acquire());
      assert.equal(b.queued, 1, 'the place was reusable at once');
      lease.release();
      await flush();
      assert.equal(reasonOf(aborted.error), 'aborted');
      assert.equal(aborted.settleCount, 1);
      assert.ok(next.value);
      assert.equal(b.active, 1);
    });

    it('rejects an already aborted signal without taking a slot', async () => {
      const b = bulkhead({ maxConcurrent: 1 });
      await assert.rejects(b.acquire(AbortSignal.abort()), (err) => reasonOf(err) === 'aborted');
      assert.equal(b.active, 0);
    });

    it('ignores an abort after the slot was granted', async () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
      const lease = b.tryAcquire()!;
      const ac = new AbortController();
      const granted = b.acquire(ac.signal);
      lease.release();
      ac.abort();
      const second = await granted;
      assert.equal(b.active, 1);
      assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
      assert.equal(second.release(), true);
      assert.equal(b.active, 0);
    });
  });

  describe('leases', () => {
    it('release is idempotent', () => {
      const b = bulkhead({ maxConcurrent: 2 });
      const a = b.tryAcquire()!;
      b.tryAcquire();
      assert.equal(a.release(), true);
      assert.equal(a.released, true);
      assert.equal(a.release(), false);
      assert.equal(b.active, 1);
    });

    it('a double release does not hand out two slots', async () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 2 });
      const lease = b.tryAcquire()!;
      const w1 = track(b.acquire());
      const w2 = track(b.acquire());
      lease.release();
      lease.release();
      await flush();
      assert.ok(w1.value);
      assert.equal(w2.settled, false);
      assert.equal(b.active, 1);
      assert.equal(b.queued, 1);
    });
  });

  describe('execute', () => {
    it('returns the result and releases the slot', async () => {
      const b = bulkhead({ maxConcurrent: 1 });
      assert.equal(await b.execute(() => 42), 42);
      assert.equal(await b.execute(async () => 'x'), 'x');
      assert.equal(b.active, 0);
    });

    it('releases the slot when fn rejects or throws', async () => {
      const b = bulkhead({ maxConcurrent: 1 });
      await assert.rejects(
        b.execute(() => Promise.reject(new Error('boom'))),
        /boom/,
      );
      await assert.rejects(
        b.execute(() => {
          throw new Error('sync');
        }),
        /sync/,
      );
      assert.equal(b.active, 0);
    });

    it('holds the slot until fn settles, queueing the next call', async () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
      const d = defer<string>();
      const first = b.execute(() => d.promise);
      let ran = false;
      const second = b.execute(() => {
        ran = true;
        return 'second';
      });
      await flush();
      assert.equal(ran, false);
      assert.equal(b.queued, 1);
      d.resolve('first');
      assert.equal(await first, 'first');
      assert.equal(await second, 'second');
      assert.equal(b.active, 0);
    });

    it('rejects with reason aborted for an aborted signal, without running fn', async () => {
      const b = bulkhead({ maxConcurrent: 1 });
      let ran = false;
      await assert.rejects(
        b.execute(() => (ran = true), AbortSignal.abort()),
        (err) => reasonOf(err) === 'aborted',
      );
      assert.equal(ran, false);
    });
  });

  describe('onReject', () => {
    it('stops notifying after dispose, and dispose is idempotent', () => {
      const b = bulkhead({ maxConcurrent: 1 });
      b.tryAcquire();
      const seen: string[] = [];
      const a = b.onReject((r) => seen.push(`a:${r}`));
      b.onReject((r) => seen.push(`b:${r}`));
      void b.acquire().catch(() => {});
      a.dispose();
      a.dispose();
      void b.acquire().catch(() => {});
      assert.deepEqual(seen, ['a:full', 'b:full', 'b:full']);
    });

    it('a throwing listener does not disturb the bulkhead or other listeners', async () => {
      const b = bulkhead({ maxConcurrent: 1 });
      b.tryAcquire();
      const seen: string[] = [];
      b.onReject(() => {
        throw new Error('listener bug');
      });
      b.onReject((r) => seen.push(r));
      const warnings: Error[] = [];
      const onWarning = (w: Error) => warnings.push(w);
      process.on('warning', onWarning);
      try {
        await assert.rejects(b.acquire(), (err) => reasonOf(err) === 'full');
        await assert.rejects(b.acquire(), (err) => reasonOf(err) === 'full');
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off('warning', onWarning);
      }
      assert.deepEqual(seen, ['full', 'full']);
      // Reported once as a warning, never rethrown (an uncaught exception would end the process).
      const ours = warnings.filter(
        (w) => (w as Error & { code?: string }).code === 'RESILIENCE_LISTENER_ERROR',
      );
      assert.equal(ours.length, 1);
      assert.match(ours[0]!.message, /bulkhead.*listener bug/);
    });

    it('rejects a non-function listener', () => {
      assert.throws(
        () => bulkhead({ maxConcurrent: 1 }).onReject(5 as never),
        InvalidArgumentError,
      );
    });
  });

  describe('close', () => {
    it('rejects every queued waiter, clears their timers and is idempotent', async () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 3 });
      const reasons: BulkheadRejectReason[] = [];
      b.onReject((r) => reasons.push(r));
      const lease = b.tryAcquire()!;
      const ac = new AbortController();
      const waiters = [track(b.acquire()), track(b.acquire(ac.signal)), track(b.acquire())];
      assert.equal(clock.countTimers(), 3);
      b.close();
      b.close();
      assert.equal(clock.countTimers(), 0);
      assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
      assert.equal(b.queued, 0);
      assert.deepEqual(reasons, ['aborted', 'aborted', 'aborted']);
      ac.abort();
      await flush();
      for (const w of waiters) {
        assert.equal(reasonOf(w.error), 'aborted');
        assert.equal(w.settleCount, 1);
      }
      // Granted leases stay valid; nobody queued can take the slot any more.
      assert.equal(lease.release(), true);
      assert.equal(b.active, 0);
    });

    it('still grants free slots but refuses to queue afterwards', async () => {
      const b = bulkhead({ maxConcurrent: 1, maxQueue: 3 });
      b.close();
      const lease = await b.acquire();
      await assert.rejects(b.acquire(), (err) => reasonOf(err) === 'aborted');
      assert.equal(clock.countTimers(), 0);
      lease.release();
      assert.equal(b.active, 0);
    });
  });

  describe('under concurrency', () => {
    it('200 concurrent callers: never above the limit, queue bounded, every slot returned', async () => {
      const limit = 10;
      const maxQueue = 50;
      const b = bulkhead({ maxConcurrent: limit, maxQueue, queueTimeout: 0 });
      const reasons: BulkheadRejectReason[] = [];
      b.onReject((r) => reasons.push(r));
      let inFlight = 0;
      let maxSeen = 0;
      const running: Array<Deferred<void>> = [];
      const calls = Array.from({ length: 200 }, (_, i) =>
        track(
          b.execute(async () => {
            inFlight++;
            maxSeen = Math.max(maxSeen, inFlight);
            assert.ok(inFlight <= limit);
            assert.ok(b.active <= limit);
            const d = defer();
            running.push(d);
            await d.promise;
            inFlight--;
            return i;
          }),
        ),
      );
      // Excess callers are turned away synchronously, before anything runs.
      assert.equal(reasons.length, 200 - limit - maxQueue);
      assert.ok(reasons.every((r) => r === 'full'));
      assert.equal(b.queued, maxQueue);
      await flush();
      assert.equal(running.length, limit);

      const random = prng(42);
      while (running.length > 0) {
        const [d] = running.splice(Math.floor(random() * running.length), 1);
        d!.resolve();
        await flush();
        assert.ok(inFlight <= limit, `in flight ${inFlight}`);
        assert.ok(b.active <= limit, `active ${b.active}`);
        assert.ok(b.queued <= maxQueue);
      }
      assert.equal(maxSeen, limit);
      const done = calls.filter((c) => c.settled && c.error === undefined);
      const full = calls.filter((c) => c.error !== undefined);
      assert.equal(done.length, limit + maxQueue);
      assert.equal(full.length, 200 - limit - maxQueue);
      assert.ok(full.every((c) => reasonOf(c.error) === 'full'));
      // FIFO: callers 0..59 were admitted, 60..199 rejected.
      assert.deepEqual(
        done.map((c) => c.value),
        Array.from({ length: limit + maxQueue }, (_, i) => i),
      );
      assert.deepEqual(b.stats(), { active: 0, queued: 0, maxConcurrent: limit, maxQueue });
      assert.equal(clock.countTimers(), 0);
    });

    it('keeps its invariants under random acquire/release/abort/tick interleavings', async () => {
      const totals = new Map<BulkheadRejectReason, number>();
      let granted = 0;
      for (let seed = 1; seed <= 60; seed++) {
        const random = prng(seed);
        const limit = 1 + Math.floor(random() * 4);
        const maxQueue = Math.floor(random() * 5);
        const queueTimeout = random() < 0.2 ? 0 : 1 + Math.floor(random() * 50);
        const b = bulkhead({ maxConcurrent: limit, maxQueue, queueTimeout });
        const rejections = new Map<BulkheadRejectReason, number>();
        b.onReject((r) => rejections.set(r, (rejections.get(r) ?? 0) + 1));

        type Attempt = {
          state: ReturnType<typeof track<BulkheadLease>>;
          controller: AbortController;
          usesSignal: boolean;
          mustBeAborted: boolean;
        };
        const attempts: Attempt[] = [];
        const held = new Set<BulkheadLease>();
        const seen = new Set<BulkheadLease>();
        const ctx = `seed ${seed} (limit ${limit}, queue ${maxQueue}, timeout ${queueTimeout})`;

        const check = async () => {
          await flush();
          for (const a of attempts) {
            assert.ok(a.state.settleCount <= 1, ctx);
            if (a.mustBeAborted) assert.equal(reasonOf(a.state.error), 'aborted', ctx);
            const lease = a.state.value;
            if (lease !== undefined && !seen.has(lease)) {
              seen.add(lease);
              held.add(lease);
            }
          }
          const pending = attempts.filter((a) => !a.state.settled).length;
          assert.ok(b.active <= limit, ctx);
          assert.ok(b.queued <= maxQueue, ctx);
          assert.equal(b.active, held.size, ctx);
          assert.equal(b.queued, pending, ctx);
          // Work-conserving: nobody waits while a slot is free.
          if (b.active < limit) assert.equal(b.queued, 0, ctx);
        };

        for (let step = 0; step < 150; step++) {
          const op = random();
          if (op < 0.35) {
            const controller = new AbortController();
            const usesSignal = random() < 0.5;
            attempts.push({
              state: track(b.acquire(usesSignal ? controller.signal : undefined)),
              controller,
              usesSignal,
              mustBeAborted: false,
            });
          } else if (op < 0.45) {
            const lease = b.tryAcquire();
            if (lease !== null) {
              seen.add(lease);
              held.add(lease);
            }
          } else if (op < 0.7) {
            const leases = [...held];
            const lease = leases[Math.floor(random() * leases.length)];
            if (lease !== undefined) {
              assert.equal(lease.release(), true, ctx);
              held.delete(lease);
              if (random() < 0.3) assert.equal(lease.release(), false, ctx);
            }
          } else if (op < 0.85) {
            const a = attempts[Math.floor(random() * attempts.length)];
            if (a !== undefined) {
              // Every grant was observed by the last check(), so a waiter still pending here
              // is queued: aborting it must reject it, never hand it a slot later.
              if (a.usesSignal && !a.state.settled && !a.controller.signal.aborted) {
                a.mustBeAborted = true;
              }
              a.controller.abort();
            }
          } else {
            await clock.tickAsync(Math.floor(random() * 30));
          }
          await check();
        }

        // Every rejection is a BulkheadFullError and was reported to onReject.
        let rejected = 0;
        for (const a of attempts) {
          if (a.state.error !== undefined) {
            rejected++;
            assert.ok(isBulkheadFullError(a.state.error), ctx);
          }
        }
        const reported = [...rejections.values()].reduce((x, y) => x + y, 0);
        assert.equal(reported, rejected, ctx);

        // Drain: release everything as it arrives, until nothing is held or queued.
        while (held.size > 0 || b.queued > 0) {
          for (const lease of held) {
            lease.release();
            held.delete(lease);
          }
          await check();
        }
        assert.deepEqual(b.stats(), { active: 0, queued: 0, maxConcurrent: limit, maxQueue }, ctx);
        assert.ok(
          attempts.every((a) => a.state.settled),
          ctx,
        );
        assert.equal(clock.countTimers(), 0, ctx);
        for (const a of attempts) {
          assert.equal(getEventListeners(a.controller.signal, 'abort').length, 0, ctx);
        }
        for (const [r, n] of rejections) totals.set(r, (totals.get(r) ?? 0) + n);
        granted += seen.size;
      }
      // The random runs did exercise every path.
      assert.ok(granted > 0);
      for (const r of ['full', 'queue-timeout', 'aborted'] as const) {
        assert.ok((totals.get(r) ?? 0) > 0, `no ${r} rejection in the random runs`);
      }
    });
  });
});
