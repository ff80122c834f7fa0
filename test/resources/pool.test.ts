import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import FakeTimers from '@sinonjs/fake-timers';
import { ResourcePool } from '../../lib/resources/pool.js';
import type { PoolFactory, ResourcePoolOptions } from '../../lib/resources/pool.js';
import {
  InvalidArgumentError,
  PoolClosedError,
  PoolExhaustedError,
  ResourceUnavailableError,
} from '../../lib/errors.js';
import type { AcquireErrorReason } from '../../lib/resources/types.js';
import { deferred, track } from '../helpers/deferred.js';
import type { Deferred } from '../helpers/deferred.js';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

interface Conn {
  id: number;
  open: boolean;
}

/** A factory of plain objects that counts creates and destroys and fails or blocks on demand. */
class TestFactory implements PoolFactory<Conn> {
  attempts = 0;
  created = 0;
  destroyed = 0;
  failWith: Error | undefined = undefined;
  /** When set, create() waits for it. */
  gate: Deferred<void> | undefined = undefined;
  validity: (conn: Conn) => boolean | Promise<boolean> = () => true;
  validations = 0;
  readonly live = new Set<Conn>();

  async create(): Promise<Conn> {
    this.attempts++;
    if (this.gate !== undefined) await this.gate.promise;
    if (this.failWith !== undefined) throw this.failWith;
    const conn = { id: ++this.created, open: true };
    this.live.add(conn);
    return conn;
  }

  async destroy(conn: Conn): Promise<void> {
    assert.ok(conn.open, `member ${conn.id} destroyed twice`);
    conn.open = false;
    this.live.delete(conn);
    this.destroyed++;
  }
}

class ValidatingFactory extends TestFactory {
  validate(conn: Conn): boolean | Promise<boolean> {
    this.validations++;
    return this.validity(conn);
  }
}

const BASE: Omit<ResourcePoolOptions, 'name'> = {
  min: 0,
  max: 2,
  acquireTimeout: 1000,
  maxWaiting: 10,
  idleTimeout: 0,
  maxLifetime: 0,
  leaseWarning: 0,
  evictionInterval: 1000,
};

/** Lets queued promise callbacks run (generic-pool settles across several microtask hops). */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

describe('ResourcePool', () => {
  let clock: InstalledClock;
  let factory: TestFactory;
  let pools: ResourcePool<Conn>[];

  function makePool(
    options: Partial<ResourcePoolOptions> = {},
    f: TestFactory = factory,
  ): ResourcePool<Conn> {
    const pool = new ResourcePool<Conn>(f, { name: 'test', ...BASE, ...options });
    pools.push(pool);
    return pool;
  }

  beforeEach(() => {
    clock = FakeTimers.install({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    factory = new TestFactory();
    pools = [];
  });

  afterEach(async () => {
    for (const pool of pools) {
      assert.equal(pool.stats().borrowed, 0, `pool ${pool.name} still has borrowed members`);
      const closing = pool.close();
      await clock.runAllAsync();
      await closing;
    }
    // close() leaves no timer behind (eviction, lease checks, backoff, waiters).
    assert.equal(clock.countTimers(), 0);
    clock.uninstall();
  });

  describe('options', () => {
    const cases: [string, Partial<ResourcePoolOptions>][] = [
      ['max', { max: 0 }],
      ['min', { min: -1 }],
      ['min', { min: 3, max: 2 }],
      ['maxWaiting', { maxWaiting: 1.5 }],
      ['acquireTimeout', { acquireTimeout: 0 }],
      ['idleTimeout', { idleTimeout: -1 }],
      ['maxLifetime', { maxLifetime: Number.NaN }],
      ['leaseWarning', { leaseWarning: Infinity }],
      ['evictionInterval', { evictionInterval: 0 }],
      ['createBackoff.initial', { createBackoff: { initial: 10, max: 5 } }],
      ['name', { name: '' }],
    ];
    for (const [option, bad] of cases) {
      it(`rejects a bad ${option} (${JSON.stringify(bad)}) naming it`, () => {
        assert.throws(
          () => new ResourcePool(factory, { name: 'test', ...BASE, ...bad }),
          (err: unknown) =>
            err instanceof InvalidArgumentError && err.message.includes(`"${option}"`),
        );
      });
    }

    it('rejects a factory without create or destroy', () => {
      assert.throws(
        () => new ResourcePool({ create: async () => ({}) } as never, { name: 'x', ...BASE }),
        /factory\.destroy/,
      );
      assert.throws(
        () => new ResourcePool(null as never, { name: 'x', ...BASE }),
        InvalidArgumentError,
      );
    });
  });

  describe('borrowing', () => {
    it('creates on demand, reuses a released member and counts it in stats', async () => {
      const pool = makePool();
      const a = await pool.acquire();
      assert.deepEqual(pool.stats(), {
        size: 1,
        available: 0,
        borrowed: 1,
        pending: 0,
        creating: 0,
        min: 0,
        max: 2,
      });
      pool.release(a);
      assert.equal(pool.stats().available, 1);
      const b = await pool.acquire();
      assert.equal(b, a);
      assert.equal(factory.created, 1);
      pool.release(b);
    });

    it('reuses the most recently released member first (so the surplus can go idle)', async () => {
      const pool = makePool();
      const a = await pool.acquire();
      const b = await pool.acquire();
      pool.release(a);
      pool.release(b);
      assert.equal(await pool.acquire().then((m) => (pool.release(m), m)), b);
    });

    it('ignores a second release and the release of a member it never lent', async () => {
      const pool = makePool();
      const a = await pool.acquire();
      pool.release(a);
      pool.release(a);
      pool.release({ id: 99, open: true });
      assert.equal(pool.stats().borrowed, 0);
      assert.equal(pool.stats().available, 1);
      const b = await pool.acquire();
      const c = await pool.acquire();
      assert.notEqual(b, c, 'a double release must not let one member be lent twice');
      pool.release(b);
      pool.release(c);
    });

    it('start() keeps min warm, is idempotent and never throws', async () => {
      const pool = makePool({ min: 2, max: 3 });
      pool.start();
      pool.start();
      await flush();
      assert.equal(factory.created, 2);
      assert.equal(pool.stats().available, 2);
    });

    it('destroy() destroys a broken member and replaces it to keep min', async () => {
      const pool = makePool({ min: 1 });
      const a = await pool.acquire();
      await pool.destroy(a);
      assert.equal(a.open, false);
      await flush();
      assert.equal(pool.stats().size, 1);
      assert.equal(pool.stats().borrowed, 0);
      assert.equal(factory.created, 2);
      await pool.destroy(a); // not borrowed any more: ignored
      assert.equal(factory.destroyed, 1);
    });

    it('use() releases after success and after failure', async () => {
      const pool = makePool();
      assert.equal(await pool.use(async (m) => m.id), 1);
      await assert.rejects(
        pool.use(async () => {
          throw new Error('app bug');
        }),
        /app bug/,
      );
      assert.equal(pool.stats().available, 1);
      assert.equal(factory.destroyed, 0);
    });

    it('use() destroys the member when isBroken says so (and when isBroken throws)', async () => {
      const pool = makePool();
      const reset = new Error('ECONNRESET');
      await assert.rejects(
        pool.use(
          async () => {
            throw reset;
          },
          { isBroken: (e) => e === reset },
        ),
        reset,
      );
      await flush();
      assert.equal(factory.destroyed, 1);
      await assert.rejects(
        pool.use(
          async () => {
            throw reset;
          },
          {
            isBroken: () => {
              throw new Error('classifier bug');
            },
          },
        ),
        reset,
      );
      await flush();
      assert.equal(factory.destroyed, 2);
    });

    it('reports the wait of every acquire through onAcquire', async () => {
      const pool = makePool({ max: 1 });
      const waits: number[] = [];
      pool.onAcquire((ms) => waits.push(ms));
      const a = await pool.acquire();
      const next = pool.acquire();
      await clock.tickAsync(40);
      pool.release(a);
      pool.release(await next);
      assert.deepEqual(waits, [0, 40]);
    });
  });

  describe('wait queue', () => {
    it('rejects with queue-full at once when maxWaiting acquires already wait', async () => {
      const pool = makePool({ max: 1, maxWaiting: 1 });
      const reasons: AcquireErrorReason[] = [];
      pool.onAcquireError((reason) => reasons.push(reason));
      const a = await pool.acquire();
      const queued = track(pool.acquire());
      await assert.rejects(
        pool.acquire(),
        (err: unknown) => err instanceof PoolExhaustedError && err.reason === 'queue-full',
      );
      assert.deepEqual(reasons, ['queue-full']);
      assert.equal(pool.stats().pending, 1);
      pool.release(a);
      await flush();
      assert.equal(queued.value, a);
      pool.release(a);
    });

    it('admits max + maxWaiting acquires on a cold pool: callers served by members being created do not wait in the queue (regression)', async () => {
      const pool = makePool({ max: 2, maxWaiting: 2 });
      factory.gate = deferred();
      const burst = [1, 2, 3, 4].map(() => track(pool.acquire()));
      await flush();
      assert.deepEqual(
        burst.map((state) => state.settled),
        [false, false, false, false],
        'the whole burst is admitted while the members are created',
      );
      assert.equal(pool.stats().creating, 2);
      await assert.rejects(
        pool.acquire(),
        (err: unknown) => err instanceof PoolExhaustedError && err.reason === 'queue-full',
      );
      factory.gate.resolve();
      await flush();
      const first = burst.filter((state) => state.settled);
      assert.equal(first.length, 2);
      assert.equal(factory.created, 2);
      for (const state of first) pool.release(state.value!);
      await flush();
      assert.ok(burst.every((state) => state.settled && state.error === undefined));
      for (const state of burst.filter((s) => !first.includes(s))) pool.release(state.value!);
    });

    it('serves an idle member even with maxWaiting 0', async () => {
      const pool = makePool({ max: 1, maxWaiting: 0 });
      const a = await pool.acquire();
      pool.release(a);
      assert.equal(await pool.acquire(), a);
      await assert.rejects(pool.acquire(), PoolExhaustedError);
      pool.release(a);
    });

    it('times out after acquireTimeout and drops the waiter from the queue', async () => {
      const pool = makePool({ max: 1, acquireTimeout: 500 });
      const reasons: AcquireErrorReason[] = [];
      pool.onAcquireError((reason) => reasons.push(reason));
      const a = await pool.acquire();
      const waiting = track(pool.acquire());
      await clock.tickAsync(499);
      assert.equal(waiting.settled, false);
      await clock.tickAsync(1);
      assert.ok(waiting.error instanceof PoolExhaustedError);
      assert.equal(waiting.error.reason, 'acquire-timeout');
      assert.deepEqual(reasons, ['timeout']);
      assert.equal(pool.stats().pending, 0);
      // The member goes to the next live waiter, not to the timed-out one.
      const next = pool.acquire();
      pool.release(a);
      assert.equal(await next, a);
      pool.release(a);
    });

    it('timeoutMs shortens the wait but never lengthens it; <= 0 fails at once', async () => {
      const pool = makePool({ max: 1, acquireTimeout: 500 });
      const a = await pool.acquire();
      const short = track(pool.acquire({ timeoutMs: 100 }));
      const long = track(pool.acquire({ timeoutMs: 10_000 }));
      await clock.tickAsync(100);
      assert.ok(short.error instanceof PoolExhaustedError);
      assert.equal(long.settled, false);
      await clock.tickAsync(400);
      assert.ok(long.error instanceof PoolExhaustedError);
      await assert.rejects(pool.acquire({ timeoutMs: 0 }), PoolExhaustedError);
      pool.release(a);
    });

    it('rejects with the signal reason on abort and removes the waiter and its listener', async () => {
      const pool = makePool({ max: 1 });
      const a = await pool.acquire();
      const controller = new AbortController();
      const waiting = track(pool.acquire({ signal: controller.signal }));
      await flush();
      assert.equal(getEventListeners(controller.signal, 'abort').length, 1);
      const reason = new Error('client went away');
      controller.abort(reason);
      await flush();
      assert.equal(waiting.error, reason);
      assert.equal(pool.stats().pending, 0);
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
      await assert.rejects(pool.acquire({ signal: controller.signal }), reason);
      pool.release(a);
    });

    it('takes back a member that generic-pool grants to the acquire of a caller who aborted', async () => {
      const pool = makePool({ max: 1, idleTimeout: 60_000, evictionInterval: 1000 });
      const a = await pool.acquire();
      const controller = new AbortController();
      const waiting = track(pool.acquire({ signal: controller.signal }));
      controller.abort(new Error('client went away'));
      await flush();
      assert.ok(waiting.error instanceof Error);
      pool.release(a);
      // Idle half an evictionInterval: `a` goes back to generic-pool, which grants it to the
      // abandoned acquire.
      await clock.tickAsync(1000);
      assert.deepEqual([pool.stats().available, pool.stats().borrowed], [1, 0]);
      assert.equal(await pool.acquire(), a);
      pool.release(a);
    });

    it('removes the abort listener once the member is granted', async () => {
      const pool = makePool({ max: 1 });
      const a = await pool.acquire();
      const controller = new AbortController();
      const waiting = pool.acquire({ signal: controller.signal });
      pool.release(a);
      assert.equal(await waiting, a);
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
      controller.abort();
      pool.release(a);
      assert.equal(pool.stats().available, 1);
    });

    it('borrow() lends an idle member before it returns, with no timer; a busy pool later', async () => {
      const pool = makePool({ max: 1 });
      const a = await pool.acquire();
      pool.release(a);
      const told: string[] = [];
      const borrower = {
        lent: (m: Conn) => told.push(`lent ${m.id}`),
        refused: (e: unknown) => told.push(`refused ${String(e)}`),
      };
      pool.borrow(borrower);
      assert.deepEqual(told, ['lent 1']);
      assert.equal(clock.countTimers(), 0);
      pool.borrow(borrower);
      assert.deepEqual(told, ['lent 1'], 'waits for the only member');
      pool.release(a);
      await flush();
      assert.deepEqual(told, ['lent 1', 'lent 1']);
      pool.release(a);
    });
    it('keeps a given-back member for synchronous borrows until it idled half an evictionInterval, then generic-pool has it (pinned fast path)', async () => {
      const pool = makePool({ max: 1, idleTimeout: 60_000, evictionInterval: 1000 });
      const a = await pool.acquire();
      pool.release(a);
      const told: string[] = [];
      const borrower = {
        lent: (m: Conn) => told.push(`lent ${m.id}`),
        refused: (e: unknown) => told.push(`refused ${String(e)}`),
      };
      await clock.tickAsync(400);
      pool.borrow(borrower);
      assert.deepEqual(told, ['lent 1'], 'idle 400 ms: lent before borrow() returns');
      pool.release(a);
      await clock.tickAsync(1000);
      assert.equal(pool.stats().available, 1);
      pool.borrow(borrower);
      assert.deepEqual(told, ['lent 1'], 'idle 1 s: through generic-pool, a promise away');
      await flush();
      assert.deepEqual(told, ['lent 1', 'lent 1']);
      pool.release(a);
    });
  });

  describe('a failing factory', () => {
    it('does not spin: creation retries back off exponentially (regression: generic-pool retries in a tight loop)', async () => {
      const pool = makePool({ min: 1, createBackoff: { initial: 100, max: 400 } });
      const errors: Error[] = [];
      pool.onCreateError((e) => errors.push(e));
      factory.failWith = new Error('ECONNREFUSED');
      pool.start();
      await flush();
      assert.equal(factory.attempts, 1);
      await clock.tickAsync(99);
      assert.equal(factory.attempts, 1);
      await clock.tickAsync(1);
      assert.equal(factory.attempts, 2); // +100
      await clock.tickAsync(200);
      assert.equal(factory.attempts, 3); // +200
      await clock.tickAsync(400);
      assert.equal(factory.attempts, 4); // +400 (max)
      await clock.tickAsync(400);
      assert.equal(factory.attempts, 5); // +400
      assert.equal(errors.length, 5);
      assert.equal(errors[0], factory.failWith);
      // Recovers on its own with the next probe.
      factory.failWith = undefined;
      await clock.tickAsync(400);
      assert.equal(factory.attempts, 6);
      assert.equal(pool.stats().available, 1);
    });

    it('fails queued acquires fast with ResourceUnavailableError carrying the cause', async () => {
      const pool = makePool({ acquireTimeout: 10_000 });
      const reasons: AcquireErrorReason[] = [];
      pool.onAcquireError((reason) => reasons.push(reason));
      factory.gate = deferred();
      const first = track(pool.acquire());
      const second = track(pool.acquire());
      await flush();
      assert.equal(pool.stats().pending, 2);
      assert.equal(pool.stats().creating, 2);
      const cause = new Error('ECONNREFUSED');
      factory.failWith = cause;
      factory.gate.resolve();
      await flush();
      for (const state of [first, second]) {
        assert.ok(state.error instanceof ResourceUnavailableError);
        assert.equal(state.error.cause, cause);
        assert.equal(state.error.resource, 'test');
      }
      assert.equal(pool.stats().pending, 0);
      // New acquires fail at once too, without waiting for the backoff.
      await assert.rejects(
        pool.acquire(),
        (err: unknown) => err instanceof ResourceUnavailableError && err.cause === cause,
      );
      assert.deepEqual(reasons, ['factory-error', 'factory-error', 'factory-error']);
      // Only one create probes the failing factory at a time.
      const before = factory.attempts;
      await clock.tickAsync(100);
      assert.equal(factory.attempts, before + 1);
      // The first successful create ends the failing state; the parked creates follow.
      factory.failWith = undefined;
      await clock.tickAsync(200);
      await flush();
      assert.equal(pool.stats().available, 2);
      const m = await pool.acquire();
      pool.release(m);
    });

    it('closes while generic-pool still holds the acquire of a caller failed fast (no create loop)', async () => {
      const pool = makePool({ max: 1 });
      factory.failWith = new Error('down');
      await assert.rejects(pool.acquire(), ResourceUnavailableError);
      const closing = pool.close();
      await clock.runAllAsync();
      await closing;
      assert.equal(factory.attempts, 1);
      assert.equal(pool.stats().size, 0);
    });

    it('still lends idle members while the factory fails', async () => {
      const pool = makePool({ max: 2 });
      const a = await pool.acquire();
      factory.failWith = new Error('down');
      await assert.rejects(pool.acquire(), ResourceUnavailableError);
      pool.release(a);
      const got = await pool.acquire();
      assert.equal(got, a);
      pool.release(got);
    });
  });

  describe('validation and lifetime', () => {
    it('validates on borrow: an invalid member is destroyed and another tried', async () => {
      const f = new ValidatingFactory();
      const pool = makePool({}, f);
      const a = await pool.acquire();
      pool.release(a);
      f.validity = (c) => c.id !== a.id;
      const b = await pool.acquire();
      assert.notEqual(b, a);
      assert.equal(a.open, false);
      pool.release(b);
    });

    it('treats a validate that throws or rejects as invalid', async () => {
      const f = new ValidatingFactory();
      const pool = makePool({}, f);
      const a = await pool.acquire();
      pool.release(a);
      f.validity = (c) => (c.id === a.id ? Promise.reject(new Error('ping failed')) : true);
      const b = await pool.acquire();
      assert.notEqual(b, a);
      assert.equal(a.open, false);
      pool.release(b);
      f.validity = (c) => {
        if (c.id === b.id) throw new Error('ping failed');
        return true;
      };
      const c = await pool.acquire();
      assert.notEqual(c, b);
      assert.equal(b.open, false);
      pool.release(c);
    });

    it('validates once per borrow, also when validate is asynchronous', async () => {
      const f = new ValidatingFactory();
      const pool = makePool({}, f);
      const a = await pool.acquire();
      pool.release(a);
      f.validity = async () => true;
      const before = f.validations;
      assert.equal(await pool.acquire(), a);
      assert.equal(f.validations, before + 1);
      pool.release(a);
    });

    it('gives back a member whose slow validation outlived the acquire timeout', async () => {
      const f = new ValidatingFactory();
      const pool = makePool({ acquireTimeout: 100 }, f);
      const a = await pool.acquire();
      pool.release(a);
      f.validity = () => new Promise((resolve) => setTimeout(() => resolve(true), 500));
      const late = track(pool.acquire());
      await clock.tickAsync(100);
      assert.ok(late.error instanceof PoolExhaustedError);
      await clock.tickAsync(400);
      await flush();
      assert.deepEqual([pool.stats().borrowed, pool.stats().available], [0, 1]);
      assert.equal(a.open, true);
    });

    it('treats new members that fail validation as a failing factory (no tight loop)', async () => {
      const f = new ValidatingFactory();
      const pool = makePool({ createBackoff: { initial: 100, max: 100 } }, f);
      f.validity = () => false;
      await assert.rejects(
        pool.acquire(),
        (err: unknown) =>
          err instanceof ResourceUnavailableError && /failed validation/.test(String(err.cause)),
      );
      await flush();
      assert.equal(f.created, 1);
      assert.equal(f.live.size, 0, 'the invalid member was destroyed');
      await clock.tickAsync(1000);
      assert.equal(f.created, 11);
      f.validity = () => true;
      await clock.tickAsync(100);
      const m = await pool.acquire();
      pool.release(m);
    });

    it('destroys a member past maxLifetime on release instead of reusing it', async () => {
      const pool = makePool({ maxLifetime: 1000 });
      const a = await pool.acquire();
      await clock.tickAsync(1000);
      pool.release(a);
      await flush();
      assert.equal(a.open, false);
      assert.equal(pool.stats().size, 0);
    });

    it('destroys a member past maxLifetime on borrow', async () => {
      const pool = makePool({ maxLifetime: 1000, evictionInterval: 60_000 });
      const a = await pool.acquire();
      pool.release(a);
      await clock.tickAsync(1000);
      const b = await pool.acquire();
      assert.notEqual(b, a);
      assert.equal(a.open, false);
      pool.release(b);
    });

    it('evicts idle members past maxLifetime, even at min, and replaces them', async () => {
      const pool = makePool({ min: 1, maxLifetime: 5000, evictionInterval: 1000 });
      pool.start();
      await flush();
      assert.equal(factory.created, 1);
      await clock.tickAsync(6000);
      await flush();
      assert.equal(factory.destroyed, 1);
      assert.equal(pool.stats().size, 1);
    });

    it('evicts idle members above min after idleTimeout', async () => {
      const pool = makePool({ min: 1, max: 3, idleTimeout: 3000, evictionInterval: 1000 });
      const members = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
      for (const m of members) pool.release(m);
      assert.equal(pool.stats().size, 3);
      await clock.tickAsync(2000);
      assert.equal(pool.stats().size, 3);
      await clock.tickAsync(2000);
      await flush();
      assert.equal(pool.stats().size, 1);
      assert.equal(factory.destroyed, 2);
      await clock.tickAsync(10_000);
      assert.equal(pool.stats().size, 1, 'min is never evicted for idleness');
    });
  });

  describe('lease tracking', () => {
    it('reports a member held longer than leaseWarning once, with where it was acquired', async () => {
      const pool = makePool({ leaseWarning: 1000 });
      const warnings: { heldMs: number; stack: string | undefined }[] = [];
      pool.onLeaseWarning((info) => warnings.push(info));
      const leaked = await pool.acquire();
      const fine = await pool.acquire();
      await clock.tickAsync(600);
      pool.release(fine);
      await clock.tickAsync(400);
      await clock.tickAsync(500);
      assert.equal(warnings.length, 1);
      assert.ok(warnings[0]!.heldMs >= 1000 && warnings[0]!.heldMs <= 1500);
      assert.match(warnings[0]!.stack ?? '', /pool\.test\.ts/);
      await clock.tickAsync(5000);
      assert.equal(warnings.length, 1, 'once per borrow');
      pool.release(leaked);
    });

    it('reports a borrow made with captureStack: false without a stack', async () => {
      const pool = makePool({ leaseWarning: 1000 });
      const warnings: { heldMs: number; stack: string | undefined }[] = [];
      pool.onLeaseWarning((info) => warnings.push(info));
      const held = await pool.acquire({ captureStack: false });
      await clock.tickAsync(1500);
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]!.stack, undefined);
      pool.release(held);
    });

    it('captures nothing and checks nothing when leaseWarning is 0', async () => {
      const pool = makePool({ leaseWarning: 0 });
      let warned = 0;
      pool.onLeaseWarning(() => warned++);
      const a = await pool.acquire();
      assert.equal(clock.countTimers(), 0);
      await clock.tickAsync(3_600_000);
      assert.equal(warned, 0);
      pool.release(a);
    });
  });

  describe('close', () => {
    it('rejects waiters and new acquires with PoolClosedError, destroys everything, is idempotent', async () => {
      const pool = makePool({ max: 1, min: 1, leaseWarning: 1000, idleTimeout: 1000 });
      const a = await pool.acquire();
      const waiting = track(pool.acquire());
      const reasons: AcquireErrorReason[] = [];
      pool.onAcquireError((reason) => reasons.push(reason));
      const closing = pool.close(5000);
      assert.equal(pool.close(), closing);
      await flush();
      assert.ok(waiting.error instanceof PoolClosedError);
      await assert.rejects(pool.acquire(), PoolClosedError);
      assert.deepEqual(reasons, ['closed', 'closed']);
      // Waits for the borrowed member within the grace period.
      let closed = false;
      void closing.then(() => (closed = true));
      await clock.tickAsync(1000);
      assert.equal(closed, false);
      pool.release(a);
      await clock.tickAsync(0);
      await closing;
      assert.equal(a.open, false);
      assert.equal(factory.live.size, 0);
      assert.deepEqual(pool.stats(), {
        size: 0,
        available: 0,
        borrowed: 0,
        pending: 0,
        creating: 0,
        min: 1,
        max: 1,
      });
      assert.equal(clock.countTimers(), 0);
    });

    it('destroys members still borrowed when the grace period ends', async () => {
      const pool = makePool();
      const a = await pool.acquire();
      const closing = pool.close(1000);
      await clock.tickAsync(1000);
      await closing;
      assert.equal(a.open, false);
      assert.equal(pool.stats().borrowed, 0);
      pool.release(a); // late release: ignored
    });

    it('stops the backoff of a failing factory', async () => {
      const pool = makePool({ min: 2 });
      factory.failWith = new Error('down');
      pool.start();
      await flush();
      const closing = pool.close();
      await clock.tickAsync(0);
      await closing;
      const attempts = factory.attempts;
      await clock.tickAsync(60_000);
      assert.equal(factory.attempts, attempts);
    });

    it('waits for an in-flight create and destroys what it made', async () => {
      const pool = makePool({ min: 1 });
      factory.gate = deferred();
      pool.start();
      await flush();
      const closing = pool.close();
      factory.gate.resolve();
      await clock.tickAsync(0);
      await closing;
      assert.equal(factory.created, 1);
      assert.equal(factory.live.size, 0);
    });

    it('rejects a bad graceMs', async () => {
      const pool = makePool();
      await assert.rejects(pool.close(-1), InvalidArgumentError);
    });
  });

  it('never exceeds max and returns to zero borrowed under random interleavings', async () => {
    const pool = makePool({ max: 3, maxWaiting: 5, acquireTimeout: 50 });
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const jobs: Promise<unknown>[] = [];
    let maxSeen = 0;
    for (let i = 0; i < 200; i++) {
      jobs.push(
        pool
          .use(async () => {
            maxSeen = Math.max(maxSeen, pool.stats().borrowed);
            await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 30)));
          })
          .catch((err: unknown) => {
            assert.ok(err instanceof PoolExhaustedError, String(err));
          }),
      );
      if (random() < 0.3) await clock.tickAsync(Math.floor(random() * 10));
    }
    await clock.runAllAsync();
    await Promise.all(jobs);
    assert.equal(maxSeen, 3);
    assert.ok(pool.stats().size <= 3);
    assert.equal(pool.stats().borrowed, 0);
  });
});
