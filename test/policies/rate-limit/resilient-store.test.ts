import assert from 'node:assert/strict';
import {
  InvalidArgumentError,
  ResourceUnavailableError,
  TimeoutError,
} from '../../../lib/errors.js';
import { MemoryStore } from '../../../lib/policies/rate-limit/memory-store.js';
import { ResilientStore } from '../../../lib/policies/rate-limit/resilient-store.js';
import type {
  ResilientStoreOptions,
  StoreCallOutcome,
  StoreFallbackReason,
} from '../../../lib/policies/rate-limit/resilient-store.js';
import type {
  DecisionObserver,
  ObservableStore,
} from '../../../lib/policies/rate-limit/redis-store.js';
import type {
  RateLimitDecision,
  RateLimitRule,
  RateLimitStore,
} from '../../../lib/policies/rate-limit/store.js';
import { deferred } from '../../helpers/deferred.js';
import type { Deferred } from '../../helpers/deferred.js';

const RULE: RateLimitRule = Object.freeze({
  algorithm: 'gcra',
  limit: 10,
  windowMs: 60_000,
  burst: 2,
});

function manualClock(start = 1_700_000_000_000) {
  const clock = { time: start, now: () => clock.time };
  return clock;
}

function allowed(remaining = 5): RateLimitDecision {
  return { allowed: true, limit: 12, remaining, resetMs: 1000, retryAfterMs: 0 };
}

function denied(retryAfterMs: number, resetMs = retryAfterMs): RateLimitDecision {
  return { allowed: false, limit: 12, remaining: 0, resetMs, retryAfterMs, refillMs: retryAfterMs };
}

const unavailable = () => new ResourceUnavailableError('Redis is down');
const timeout = () => new TimeoutError('no reply', { timeoutMs: 50 });

/** An async store whose every call the test settles by hand. */
class ScriptedStore implements RateLimitStore {
  readonly kind = 'scripted';
  readonly calls: { key: string; cost: number | undefined; reply: Deferred<RateLimitDecision> }[] =
    [];
  readonly resets: string[] = [];
  closed = 0;
  consume(key: string, _rule: RateLimitRule, cost?: number): Promise<RateLimitDecision> {
    const reply = deferred<RateLimitDecision>();
    this.calls.push({ key, cost, reply });
    return reply.promise;
  }
  reset(key: string): void {
    this.resets.push(key);
  }
  close(): void {
    this.closed++;
  }
  /** The n-th call (0-based). */
  call(n: number): Deferred<RateLimitDecision> {
    const c = this.calls[n];
    if (c === undefined) throw new Error(`no call ${n} (made: ${this.calls.length})`);
    return c.reply;
  }
}

/**
 * The same, settling each decision through the ResilientStore's observer, as the RedisStore
 * does: every test below runs over both paths.
 */
class ObservableScriptedStore extends ScriptedStore implements ObservableStore {
  consumeObserved<C>(
    key: string,
    rule: RateLimitRule,
    cost: number,
    observer: DecisionObserver<C>,
    context: C,
  ): Promise<RateLimitDecision> {
    return this.consume(key, rule, cost).then(
      (decision) => observer.answered(decision, context),
      (error: unknown) => observer.failed(error, context),
    );
  }
}

function isPromise(value: unknown): value is Promise<RateLimitDecision> {
  return typeof (value as Promise<unknown> | null)?.then === 'function';
}

function sync(result: RateLimitDecision | Promise<RateLimitDecision>): RateLimitDecision {
  assert.ok(!isPromise(result), 'expected a synchronous (local) decision');
  return result;
}

for (const observable of [false, true]) {
  describe(
    observable ? 'ResilientStore over a store that settles through it' : 'ResilientStore',
    () => {
      const created: ResilientStore[] = [];
      let inner: ScriptedStore;
      let clock: ReturnType<typeof manualClock>;
      let fallbacks: StoreFallbackReason[];
      let outcomes: StoreCallOutcome[];

      function resilient(options: Partial<ResilientStoreOptions> = {}): ResilientStore {
        const s = new ResilientStore({ store: inner, clock, ...options });
        s.onFallback((reason) => fallbacks.push(reason));
        s.onStoreCall((outcome) => outcomes.push(outcome));
        created.push(s);
        return s;
      }

      beforeEach(() => {
        inner = observable ? new ObservableScriptedStore() : new ScriptedStore();
        clock = manualClock();
        fallbacks = [];
        outcomes = [];
      });
      afterEach(async () => {
        for (const s of created.splice(0)) await s.close();
      });

      it('passes decisions of the store through', async () => {
        const s = resilient();
        assert.equal(s.kind, 'scripted');
        const pending = s.consume('k', RULE, 2);
        assert.ok(isPromise(pending));
        inner.call(0).resolve(allowed(3));
        assert.deepEqual(await pending, allowed(3));
        assert.deepEqual(inner.calls[0]!.cost, 2);
        assert.deepEqual(outcomes, ['success']);
        assert.deepEqual(fallbacks, []);
        assert.equal(s.available, true);
      });

      it('answers a failure with the local limiter, sized to limit / expectedInstances', async () => {
        const s = resilient({ expectedInstances: 3 });
        const results: RateLimitDecision[] = [];
        for (let i = 0; i < 8; i++) {
          const pending = s.consume('k', RULE);
          // An error reply: a fallback for this decision, but the store stays in use.
          inner.call(i).reject(new Error('WRONGTYPE'));
          results.push(await pending);
        }
        // ceil(10 / 3) + ceil(2 / 3) = 4 + 1 at once.
        assert.deepEqual(
          results.map((d) => d.allowed),
          [true, true, true, true, true, false, false, false],
        );
        assert.equal(results[0]!.limit, 5);
        assert.equal(inner.calls.length, 8);
        assert.deepEqual(fallbacks, Array(8).fill('error'));
        assert.deepEqual(outcomes, Array(8).fill('error'));
        assert.equal(s.available, true);
      });

      it("the local fallback starts from the store's last answer for the key", async () => {
        const s = resilient({ expectedInstances: 2, blockCache: false, retryIntervalMs: 60_000 });
        const ask = async (key: string, reply: RateLimitDecision | Error) => {
          const n = inner.calls.length;
          const pending = s.consume(key, RULE);
          if (reply instanceof Error) inner.call(n).reject(reply);
          else inner.call(n).resolve(reply);
          return (await pending).allowed;
        };
        // Exhausted in the store: stays exhausted when the store times out or goes down.
        assert.equal(await ask('spent', denied(400, 5000)), false);
        assert.equal(await ask('spent', timeout()), false);
        // 5 left in the store, shared by two instances: 2 more here.
        assert.equal(await ask('some', allowed(5)), true);
        assert.equal(await ask('some', timeout()), true);
        assert.equal(await ask('some', unavailable()), true);
        assert.equal(s.available, false);
        assert.equal(sync(s.consume('some', RULE)).allowed, false);
        assert.equal(sync(s.consume('spent', RULE)).allowed, false);
        // Once the store's answers stop binding (resetMs 5000 and 1000), the local limiter
        // decides: ceil(10 / 2) + ceil(2 / 2) at once.
        clock.time += 5000;
        const local = Array.from({ length: 7 }, () => sync(s.consume('spent', RULE)).allowed);
        assert.deepEqual(local, [true, true, true, true, true, true, false]);
        assert.equal(sync(s.consume('some', RULE)).allowed, true);
        // A key the store never answered for: the local limiter at once.
        assert.equal(sync(s.consume('new', RULE)).allowed, true);
      });

      it("onStoreError 'allow' and 'deny' answer without a limiter", async () => {
        const allow = resilient({ onStoreError: 'allow' });
        const a = allow.consume('k', RULE, 3);
        inner.call(0).reject(timeout());
        assert.deepEqual(await a, {
          allowed: true,
          limit: 12,
          remaining: 9,
          resetMs: 0,
          retryAfterMs: 0,
          refillMs: 0,
        });
        const deny = resilient({ onStoreError: 'deny', retryIntervalMs: 2500 });
        const d = deny.consume('k', RULE);
        inner.call(1).reject(unavailable());
        assert.deepEqual(await d, {
          allowed: false,
          limit: 12,
          remaining: 0,
          resetMs: 2500,
          retryAfterMs: 2500,
          refillMs: 2500,
        });
        assert.deepEqual(fallbacks, ['timeout', 'error']);
      });

      it('never rejects, even when the store throws synchronously', () => {
        const throwing: RateLimitStore = {
          kind: 'throwing',
          consume: () => {
            throw new Error('bug');
          },
          reset: () => undefined,
          close: () => undefined,
        };
        const s = new ResilientStore({ store: throwing, onStoreError: 'allow', clock });
        created.push(s);
        assert.equal(sync(s.consume('k', RULE)).allowed, true);
      });

      it('while the store is down, decides locally at once and probes every retryIntervalMs', async () => {
        const s = resilient({ retryIntervalMs: 1000 });
        const first = s.consume('k', RULE);
        inner.call(0).reject(unavailable());
        assert.equal((await first).allowed, true);
        assert.equal(s.available, false);

        // Not tried: answered synchronously by the fallback.
        assert.equal(sync(s.consume('k', RULE)).allowed, true);
        clock.time += 999;
        assert.equal(sync(s.consume('k', RULE)).allowed, true);
        assert.equal(inner.calls.length, 1);
        assert.deepEqual(fallbacks, ['error', 'down', 'down']);

        // The interval has passed: one decision probes, the others still go local meanwhile.
        clock.time += 1;
        const probe = s.consume('k', RULE);
        assert.ok(isPromise(probe));
        assert.equal(inner.calls.length, 2);
        sync(s.consume('k', RULE));
        assert.equal(inner.calls.length, 2);

        // The probe fails: down for another interval.
        inner.call(1).reject(unavailable());
        await probe;
        sync(s.consume('k', RULE));
        clock.time += 999;
        sync(s.consume('k', RULE));
        clock.time += 1;
        const second = s.consume('k', RULE);
        assert.equal(inner.calls.length, 3);

        // This one succeeds: back to the store for everyone.
        inner.call(2).resolve(allowed(7));
        assert.deepEqual(await second, allowed(7));
        assert.equal(s.available, true);
        const next = s.consume('k', RULE);
        assert.ok(isPromise(next));
        inner.call(3).resolve(allowed(6));
        await next;
        assert.deepEqual(fallbacks, ['error', 'down', 'down', 'down', 'error', 'down', 'down']);
      });

      it('a timed-out probe keeps the store down', async () => {
        const s = resilient({ retryIntervalMs: 100 });
        const p = s.consume('k', RULE);
        inner.call(0).reject(unavailable());
        await p;
        clock.time += 100;
        const probe = s.consume('k', RULE);
        inner.call(1).reject(timeout());
        await probe;
        assert.equal(s.available, false);
        sync(s.consume('k', RULE));
      });

      it('three timeouts in a row mark the store down; a success in between resets the count', async () => {
        const s = resilient();
        const settle = async (n: number, how: 'timeout' | 'ok'): Promise<void> => {
          const p = s.consume('k', RULE);
          if (how === 'timeout') inner.call(n).reject(timeout());
          else inner.call(n).resolve(allowed());
          await p;
        };
        await settle(0, 'timeout');
        await settle(1, 'timeout');
        await settle(2, 'ok');
        await settle(3, 'timeout');
        await settle(4, 'timeout');
        assert.equal(s.available, true);
        await settle(5, 'timeout');
        assert.equal(s.available, false);
        assert.deepEqual(outcomes, [
          'timeout',
          'timeout',
          'success',
          'timeout',
          'timeout',
          'timeout',
        ]);
        sync(s.consume('k', RULE));
        assert.equal(inner.calls.length, 6);
      });

      it('concurrent timeouts take the store down together', async () => {
        const s = resilient();
        const pending = [0, 1, 2].map(() => s.consume('k', RULE));
        for (let i = 0; i < 3; i++) inner.call(i).reject(timeout());
        await Promise.all(pending);
        assert.equal(s.available, false);
      });

      describe('block cache', () => {
        it('denies a key the store denied until its retryAfterMs, without asking the store', async () => {
          const s = resilient();
          const first = s.consume('flood', RULE);
          inner.call(0).resolve(denied(500, 1500));
          assert.deepEqual(await first, denied(500, 1500));
          const hits: number[] = [];
          s.onBlockCacheHit(() => hits.push(1));

          clock.time += 200;
          // Counted from when the request was sent, less 1 ms: it never outlasts Redis's denial.
          assert.deepEqual(sync(s.consume('flood', RULE)), denied(299, 1299));
          assert.equal(sync(s.consume('flood', RULE, 5)).allowed, false);
          clock.time += 298;
          assert.deepEqual(sync(s.consume('flood', RULE)), denied(1, 1001));
          assert.equal(inner.calls.length, 1);
          assert.equal(hits.length, 3);

          // Other keys still go to the store.
          assert.ok(isPromise(s.consume('other', RULE)));
          assert.equal(inner.calls.length, 2);

          clock.time += 1;
          assert.ok(isPromise(s.consume('flood', RULE)));
          assert.equal(inner.calls.length, 3);
          assert.equal(s.blockedKeys, 0);
        });

        it('is not filled by denials of a larger cost, nor when turned off', async () => {
          const s = resilient();
          const p = s.consume('k', RULE, 3);
          inner.call(0).resolve(denied(500));
          await p;
          assert.ok(isPromise(s.consume('k', RULE)));
          const off = resilient({ blockCache: false });
          const q = off.consume('k', RULE);
          inner.call(2).resolve(denied(500));
          await q;
          assert.ok(isPromise(off.consume('k', RULE)));
          assert.equal(off.blockedKeys, 0);
        });

        it('holds at most maxKeys keys, dropping the oldest', async () => {
          const s = resilient({ maxKeys: 2 });
          for (const [i, key] of ['a', 'b', 'c'].entries()) {
            const p = s.consume(key, RULE);
            inner.call(i).resolve(denied(10_000));
            await p;
          }
          assert.equal(s.blockedKeys, 2);
          assert.ok(isPromise(s.consume('a', RULE)));
          sync(s.consume('b', RULE));
          sync(s.consume('c', RULE));
        });

        it('answers blocked keys even while the store is down', async () => {
          const s = resilient({ onStoreError: 'allow' });
          const p = s.consume('flood', RULE);
          inner.call(0).resolve(denied(5000));
          await p;
          const q = s.consume('other', RULE);
          inner.call(1).reject(unavailable());
          await q;
          assert.equal(sync(s.consume('flood', RULE)).allowed, false);
          assert.equal(sync(s.consume('other', RULE)).allowed, true);
        });
      });

      it('reset() forgets the key here and in the store', async () => {
        const s = resilient();
        const p = s.consume('k', RULE);
        inner.call(0).resolve(denied(5000));
        await p;
        await s.reset('k');
        assert.deepEqual(inner.resets, ['k']);
        assert.ok(isPromise(s.consume('k', RULE)));
      });

      it('works over a synchronous store', () => {
        const memory = new MemoryStore({ clock });
        const s = new ResilientStore({ store: memory, clock });
        created.push(s);
        assert.equal(sync(s.consume('k', RULE)).remaining, 11);
      });

      it('close() closes the store once; later decisions come from the fallback', async () => {
        const s = resilient({ onStoreError: 'deny' });
        await s.close();
        await s.close();
        assert.equal(inner.closed, 1);
        assert.equal(sync(s.consume('k', RULE)).allowed, false);
        assert.equal(inner.calls.length, 0);
      });

      it('listeners can be disposed, and a throwing listener changes nothing', async () => {
        const s = resilient({ onStoreError: 'allow' });
        const seen: StoreFallbackReason[] = [];
        const handle = s.onFallback((reason) => {
          seen.push(reason);
          throw new Error('listener bug');
        });
        const p = s.consume('k', RULE);
        inner.call(0).reject(unavailable());
        assert.equal((await p).allowed, true);
        handle.dispose();
        sync(s.consume('k', RULE));
        assert.deepEqual(seen, ['error']);
      });

      it('reports the duration of each store call', async () => {
        const s = resilient();
        const durations: number[] = [];
        s.onStoreCall((_outcome, ms) => durations.push(ms));
        const p = s.consume('k', RULE);
        inner.call(0).resolve(allowed());
        await p;
        assert.equal(durations.length, 1);
        assert.ok(durations[0]! >= 0);
      });

      it('validates its options', () => {
        const bad: [Partial<ResilientStoreOptions>, RegExp][] = [
          [{ store: {} as RateLimitStore }, /store/],
          [{ onStoreError: 'maybe' as 'allow' }, /onStoreError/],
          [{ expectedInstances: 0 }, /expectedInstances/],
          [{ expectedInstances: 1.5 }, /expectedInstances/],
          [{ retryIntervalMs: 0 }, /retryIntervalMs/],
          [{ blockCache: 'yes' as unknown as boolean }, /blockCache/],
          [{ maxKeys: 0 }, /maxKeys/],
        ];
        for (const [options, message] of bad) {
          assert.throws(
            () => new ResilientStore({ store: inner, ...options }),
            (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message),
          );
        }
        const s = resilient();
        assert.equal(s.onStoreError, 'local');
        assert.equal(s.expectedInstances, 1);
        assert.equal(s.retryIntervalMs, 1000);
      });
    },
  );
}
