import assert from 'node:assert/strict';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import FakeTimers from '@sinonjs/fake-timers';
import {
  Deadline,
  deadline,
  parseDeadlineHeader,
  withTimeout,
} from '../../lib/policies/timeout.js';
import type { TimeoutError } from '../../lib/errors.js';
import { InvalidArgumentError, isTimeoutError } from '../../lib/errors.js';
import { track } from '../helpers/deferred.js';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

v8.setFlagsFromString('--expose-gc');
/** A full collection: what the process could still reach is all that survives. */
const collectGarbage = runInNewContext('gc') as () => void;

function defer<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Counts AbortControllers created while `fn` runs. */
function countControllers(fn: () => void): number {
  const Original = globalThis.AbortController;
  let created = 0;
  globalThis.AbortController = class extends Original {
    constructor() {
      super();
      created++;
    }
  };
  try {
    fn();
  } finally {
    globalThis.AbortController = Original;
  }
  return created;
}

/**
 * A finished deadline leaves nothing running: at most the shared timer of its duration, which
 * fires once more within `timeoutMs`, finds nothing due and is not re-armed.
 */
async function assertTimersWindDown(clock: InstalledClock, timeoutMs: number): Promise<void> {
  assert.ok(clock.countTimers() <= 1, `${clock.countTimers()} timers pending`);
  await clock.tickAsync(timeoutMs);
  assert.equal(clock.countTimers(), 0, 'the shared timer stops once its list is empty');
}

describe('Deadline', () => {
  let clock: InstalledClock;

  beforeEach(() => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 1_000 });
  });

  afterEach(() => {
    clock.uninstall();
  });

  describe('options', () => {
    const bad: Array<[string, Record<string, unknown>, unknown]> = [
      ['timeoutMs', {}, undefined],
      ['timeoutMs', { timeoutMs: -1 }, -1],
      ['timeoutMs', { timeoutMs: Number.NaN }, Number.NaN],
      ['timeoutMs', { timeoutMs: Number.POSITIVE_INFINITY }, Number.POSITIVE_INFINITY],
      ['timeoutMs', { timeoutMs: 2 ** 31 }, 2 ** 31],
      ['timeoutMs', { timeoutMs: '100' }, '100'],
      ['status', { timeoutMs: 1, status: 99 }, 99],
      ['status', { timeoutMs: 1, status: 504.5 }, 504.5],
      ['status', { timeoutMs: 1, status: 600 }, 600],
      ['clock', { timeoutMs: 1, clock: {} }, '[object Object]'],
      ['clock', { timeoutMs: 1, clock: null }, null],
      ['onExpire', { timeoutMs: 1, onExpire: 'x' }, 'x'],
    ];
    for (const [name, options, value] of bad) {
      it(`rejects ${name} = ${String(value)}`, () => {
        assert.throws(
          () => new Deadline(options as never),
          (err: unknown) =>
            err instanceof InvalidArgumentError &&
            err.message.includes(name) &&
            err.message.includes(String(value)),
        );
        assert.equal(clock.countTimers(), 0);
      });
    }

    it('rejects a missing options object', () => {
      assert.throws(() => deadline(undefined as never), InvalidArgumentError);
    });
  });

  it('computes the absolute deadline and the time remaining', async () => {
    const d = deadline({ timeoutMs: 100 });
    assert.equal(d.deadline, 1_100);
    assert.equal(d.timeoutMs, 100);
    assert.equal(d.remaining(), 100);
    assert.equal(d.expired, false);
    await clock.tickAsync(40);
    assert.equal(d.remaining(), 60);
    await clock.tickAsync(100);
    assert.equal(d.remaining(), 0);
    assert.equal(d.expired, true);
  });

  it('reads time from an injected clock', () => {
    let now = 500;
    const d = deadline({ timeoutMs: 100, clock: { now: () => now } });
    assert.equal(d.deadline, 600);
    now = 550;
    assert.equal(d.remaining(), 50);
    assert.equal(d.expired, false);
    now = 700;
    assert.equal(d.remaining(), 0);
    assert.equal(d.expired, true);
    d.clear();
  });

  it('counts as expired once its timer fires, even if the injected clock lags', async () => {
    const d = deadline({ timeoutMs: 100, clock: { now: () => 0 } });
    assert.equal(d.remaining(), 100);
    await clock.tickAsync(100);
    assert.equal(d.remaining(), 0);
    assert.equal(d.expired, true);
  });

  it('starts one unref’d timer', () => {
    const timers: Array<{ hasRef(): boolean }> = [];
    const original = globalThis.setTimeout;
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
      const t = original(...args);
      timers.push(t as unknown as { hasRef(): boolean });
      return t;
    }) as typeof setTimeout;
    let d: Deadline;
    try {
      d = deadline({ timeoutMs: 100 });
    } finally {
      globalThis.setTimeout = original;
    }
    assert.equal(timers.length, 1);
    assert.equal(timers[0]!.hasRef(), false);
    d.clear();
  });

  it('on expiry calls onExpire once, then aborts the signal with the same TimeoutError', async () => {
    const calls: Array<{ error: TimeoutError; abortedDuringCall: boolean }> = [];
    const d = deadline({
      timeoutMs: 100,
      onExpire: (error) => calls.push({ error, abortedDuringCall: d.signal.aborted }),
    });
    const signal = d.signal;
    let abortReason: unknown;
    signal.addEventListener('abort', () => (abortReason = signal.reason));
    await clock.tickAsync(99);
    assert.equal(calls.length, 0);
    assert.equal(signal.aborted, false);
    await clock.tickAsync(1);
    assert.equal(calls.length, 1);
    const { error, abortedDuringCall } = calls[0]!;
    assert.equal(abortedDuringCall, false, 'onExpire runs before the signal aborts');
    assert.ok(isTimeoutError(error));
    assert.equal(error.status, 504);
    assert.equal(error.timeoutMs, 100);
    assert.equal(signal.aborted, true);
    assert.equal(abortReason, error);
    assert.equal(d.expired, true);
    assert.equal(d.remaining(), 0);
    // Ending it afterwards changes nothing.
    d.abort(new Error('late'));
    d.clear();
    assert.equal(signal.reason, error);
    await clock.tickAsync(1_000);
    assert.equal(calls.length, 1);
  });

  it('uses the configured status', async () => {
    let seen: TimeoutError | undefined;
    deadline({ timeoutMs: 10, status: 503, onExpire: (e) => (seen = e) });
    await clock.tickAsync(10);
    assert.equal(seen?.status, 503);
  });

  it('creates no AbortController unless the signal is read', async () => {
    let d!: Deadline;
    assert.equal(
      countControllers(() => {
        d = deadline({ timeoutMs: 10 });
      }),
      0,
    );
    await clock.tickAsync(10);
    assert.equal(d.expired, true);
    const created = countControllers(() => {
      assert.equal(d.signal, d.signal);
    });
    assert.equal(created, 1);
  });

  it('a signal first read after expiry is already aborted with the TimeoutError', async () => {
    let seen: TimeoutError | undefined;
    const d = deadline({ timeoutMs: 10, onExpire: (e) => (seen = e) });
    await clock.tickAsync(10);
    assert.equal(d.signal.aborted, true);
    assert.equal(d.signal.reason, seen);
  });

  it('clear() after expiry does not undo it', async () => {
    const d = deadline({ timeoutMs: 10, clock: { now: () => 0 } });
    await clock.tickAsync(10);
    d.clear();
    assert.equal(d.expired, true);
    assert.ok(isTimeoutError(d.signal.reason));
  });

  describe('abort', () => {
    it('aborts the signal with the reason, clears the timer, never calls onExpire', async () => {
      let expired = 0;
      const d = deadline({ timeoutMs: 100, onExpire: () => expired++ });
      const signal = d.signal;
      const reason = new Error('client closed');
      d.abort(reason);
      assert.equal(signal.aborted, true);
      assert.equal(signal.reason, reason);
      await assertTimersWindDown(clock, 100);
      d.abort(new Error('again'));
      assert.equal(signal.reason, reason, 'idempotent: the first reason stays');
      await clock.tickAsync(1_000);
      assert.equal(expired, 0);
    });

    it('defaults to an AbortError and applies to a signal read afterwards', () => {
      const d = deadline({ timeoutMs: 100 });
      assert.equal(
        countControllers(() => d.abort()),
        0,
      );
      assert.equal(d.signal.aborted, true);
      assert.equal((d.signal.reason as Error).name, 'AbortError');
    });
  });

  describe('deadlines of one duration', () => {
    it('share one timer, yet each expires exactly timeoutMs after it was created', async () => {
      const expiredAt: Record<string, number> = {};
      const make = (name: string) =>
        deadline({ timeoutMs: 100, onExpire: () => (expiredAt[name] = Date.now()) });
      make('a'); // t = 1000
      await clock.tickAsync(30);
      const b = make('b'); // t = 1030
      await clock.tickAsync(30);
      make('c'); // t = 1060
      assert.equal(clock.countTimers(), 1);
      b.clear();
      await clock.tickAsync(200);
      assert.deepEqual(expiredAt, { a: 1100, c: 1160 });
      assert.equal(clock.countTimers(), 0);
    });

    it('re-arm for the next deadline when the one the timer was armed for was cleared', async () => {
      let expiredAt = 0;
      const first = deadline({ timeoutMs: 100 });
      await clock.tickAsync(10);
      deadline({ timeoutMs: 100, onExpire: () => (expiredAt = Date.now()) }); // due at 1110
      first.clear();
      await clock.tickAsync(99);
      assert.equal(expiredAt, 0);
      await clock.tickAsync(1);
      assert.equal(expiredAt, 1110);
    });

    it('keep other durations on their own schedule', async () => {
      const order: string[] = [];
      deadline({ timeoutMs: 300, onExpire: () => order.push('300') });
      deadline({ timeoutMs: 100, onExpire: () => order.push('100') });
      deadline({ timeoutMs: 200, onExpire: () => order.push('200') });
      await clock.tickAsync(300);
      assert.deepEqual(order, ['100', '200', '300']);
    });

    it('still expire on their own timer when the clock is injected', async () => {
      let expired = false;
      deadline({ timeoutMs: 50, clock: { now: () => 0 }, onExpire: () => (expired = true) });
      deadline({ timeoutMs: 50 });
      assert.equal(clock.countTimers(), 2);
      await clock.tickAsync(50);
      assert.equal(expired, true);
    });
  });

  describe('clear', () => {
    it('clears the timer, never aborts, and makes later abort() a no-op', async () => {
      let expired = 0;
      const d = deadline({ timeoutMs: 100, onExpire: () => expired++ });
      const signal = d.signal;
      d.clear();
      d.clear();
      await assertTimersWindDown(clock, 100);
      await clock.tickAsync(1_000);
      assert.equal(expired, 0);
      assert.equal(signal.aborted, false);
      d.abort(new Error('client closed after the response'));
      assert.equal(signal.aborted, false);
      assert.equal(d.signal.aborted, false);
    });
  });
});

describe('withTimeout', () => {
  let clock: InstalledClock;

  beforeEach(() => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 1_000 });
  });

  afterEach(() => {
    clock.uninstall();
  });

  it('resolves with fn’s value, clears its timer and does not abort', async () => {
    let signal: AbortSignal | undefined;
    const result = await withTimeout(100, async (d) => {
      signal = d.signal;
      await clock.tickAsync(50);
      return 'done';
    });
    assert.equal(result, 'done');
    await assertTimersWindDown(clock, 100);
    assert.equal(signal?.aborted, false);
    await clock.tickAsync(1_000);
    assert.equal(signal?.aborted, false);
  });

  it('resolves with a synchronous value', async () => {
    assert.equal(await withTimeout(100, () => 7), 7);
    await assertTimersWindDown(clock, 100);
  });

  it('passes through fn’s rejection and synchronous throw, clearing the timer', async () => {
    await assert.rejects(
      withTimeout(100, () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    await assertTimersWindDown(clock, 100);
    await assert.rejects(
      withTimeout(100, () => {
        throw new Error('sync');
      }),
      /sync/,
    );
    await assertTimersWindDown(clock, 100);
  });

  it('rejects with TimeoutError after timeoutMs and aborts the signal with it', async () => {
    const work = defer<string>();
    let signal: AbortSignal | undefined;
    const outcome = track(
      withTimeout(
        100,
        (d) => {
          signal = d.signal;
          return work.promise;
        },
        { status: 503 },
      ),
    );
    await clock.tickAsync(99);
    assert.equal(outcome.settled, false);
    await clock.tickAsync(1);
    assert.ok(isTimeoutError(outcome.error));
    assert.equal(outcome.error.status, 503);
    assert.equal(outcome.error.timeoutMs, 100);
    assert.equal(signal?.reason, outcome.error);
    // A late answer is ignored.
    work.resolve('late');
    await clock.tickAsync(0);
    assert.equal(outcome.value, undefined);
    assert.equal(clock.countTimers(), 0);
  });

  it('rejects at once without calling fn when timeoutMs is 0', async () => {
    let called = false;
    await assert.rejects(
      withTimeout(0, () => (called = true)),
      (err) => isTimeoutError(err) && err.status === 504,
    );
    assert.equal(called, false);
    assert.equal(clock.countTimers(), 0);
  });

  it('is bounded by the parent deadline’s remaining time', async () => {
    const parent = deadline({ timeoutMs: 300 });
    await clock.tickAsync(200);
    const outcome = track(withTimeout(1_000, () => defer().promise, { parent }));
    await clock.tickAsync(99);
    assert.equal(outcome.settled, false);
    await clock.tickAsync(1);
    assert.ok(isTimeoutError(outcome.error));
    assert.equal(outcome.error.timeoutMs, 100);
    parent.clear();
  });

  it('keeps its own timeout when the parent has more time', async () => {
    const parent = deadline({ timeoutMs: 1_000 });
    const outcome = track(withTimeout(50, () => defer().promise, { parent }));
    await clock.tickAsync(50);
    assert.ok(isTimeoutError(outcome.error));
    assert.equal(outcome.error.timeoutMs, 50);
    parent.clear();
  });

  it('rejects at once without calling fn when the parent has no time left', async () => {
    const parent = deadline({ timeoutMs: 100 });
    await clock.tickAsync(100);
    let called = false;
    await assert.rejects(
      withTimeout(1_000, () => (called = true), { parent }),
      isTimeoutError,
    );
    assert.equal(called, false);
    assert.equal(clock.countTimers(), 0);
  });

  describe('under a parent that is aborted', () => {
    it('aborts its signal and rejects, both with the parent’s reason, and never times out', async () => {
      const parent = deadline({ timeoutMs: 1_000 });
      let signal: AbortSignal | undefined;
      const outcome = track(
        withTimeout(
          500,
          (d) => {
            signal = d.signal;
            return defer().promise;
          },
          { parent },
        ),
      );
      const reason = new Error('client gone');
      parent.abort(reason);
      assert.equal(signal?.aborted, true);
      assert.equal(signal?.reason, reason);
      await clock.tickAsync(0);
      assert.equal(outcome.error, reason);
      // Both lists' timers (the parent's duration and the call's) fire once more, find nothing.
      await clock.tickAsync(1_000);
      assert.equal(clock.countTimers(), 0);
      assert.equal(outcome.settleCount, 1);
    });

    it('aborts the calls nested under it too', async () => {
      const parent = deadline({ timeoutMs: 1_000 });
      let inner: AbortSignal | undefined;
      const outcome = track(
        withTimeout(
          500,
          (outer) =>
            withTimeout(
              200,
              (d) => {
                inner = d.signal;
                return defer().promise;
              },
              { parent: outer },
            ),
          { parent },
        ),
      );
      parent.abort('gone');
      assert.equal(inner?.reason, 'gone');
      await clock.tickAsync(0);
      assert.equal(outcome.error, 'gone');
    });

    it('rejects at once with the reason, without calling fn, when the parent was aborted before', async () => {
      const parent = deadline({ timeoutMs: 1_000 });
      parent.abort('gone');
      let called = false;
      await assert.rejects(
        withTimeout(100, () => (called = true), { parent }),
        (err) => err === 'gone',
      );
      assert.equal(called, false);
      await clock.tickAsync(1_000);
      assert.equal(clock.countTimers(), 0);
    });
  });

  it('keeps running on its own timer when the parent is cleared', async () => {
    const parent = deadline({ timeoutMs: 1_000 });
    let signal: AbortSignal | undefined;
    const outcome = track(
      withTimeout(
        100,
        (d) => {
          signal = d.signal;
          return defer().promise;
        },
        { parent },
      ),
    );
    parent.clear();
    await clock.tickAsync(99);
    assert.equal(outcome.settled, false);
    assert.equal(signal?.aborted, false);
    await clock.tickAsync(1);
    assert.ok(isTimeoutError(outcome.error));
  });

  it('leaves nothing on a long-lived parent once it settled', async () => {
    const parent = deadline({ timeoutMs: 60_000 });
    const children: WeakRef<Deadline>[] = [];
    const child = (fn: () => unknown) =>
      withTimeout(
        100,
        (d) => {
          children.push(new WeakRef(d));
          return fn();
        },
        { parent },
      );
    await child(() => 'sync');
    await child(() => Promise.resolve('async'));
    await assert.rejects(child(() => Promise.reject(new Error('boom'))));
    const late = track(child(() => defer().promise));
    await clock.tickAsync(100);
    assert.ok(isTimeoutError(late.error));
    // A WeakRef keeps its target alive until the current job ends.
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    assert.deepEqual(
      children.map((ref) => ref.deref() === undefined),
      [true, true, true, true],
      'the parent still references children that settled',
    );
    // ... and so does a parent that is later aborted: nothing of them runs again.
    parent.abort('late');
    parent.clear();
  });

  it('uses the injected clock for the deadline it passes to fn', async () => {
    const seen = await withTimeout(100, (d) => d.deadline, { clock: { now: () => 42 } });
    assert.equal(seen, 142);
  });

  it('rejects invalid arguments with InvalidArgumentError', async () => {
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['timeoutMs', () => withTimeout(-1, () => 1)],
      ['timeoutMs', () => withTimeout(Number.NaN, () => 1)],
      ['fn', () => withTimeout(10, 'nope' as never)],
      ['status', () => withTimeout(10, () => 1, { status: 1 })],
      ['clock', () => withTimeout(10, () => 1, { clock: {} as never })],
      ['parent', () => withTimeout(10, () => 1, { parent: { remaining: () => 5 } as never })],
    ];
    for (const [name, call] of cases) {
      await assert.rejects(
        call(),
        (err: unknown) => err instanceof InvalidArgumentError && err.message.includes(name),
        name,
      );
    }
    assert.equal(clock.countTimers(), 0);
  });
});

describe('parseDeadlineHeader', () => {
  const cap = 5_000;
  const cases: Array<[string | readonly string[] | undefined, number]> = [
    ['250', 250],
    ['0', 0],
    ['4999', 4_999],
    ['5000', 5_000],
    ['5001', cap],
    ['007', 7],
    ['99999999999999999999999999', cap],
    [undefined, cap],
    ['', cap],
    ['-5', cap],
    ['+5', cap],
    ['1.5', cap],
    ['1e3', cap],
    ['0x10', cap],
    [' 100', cap],
    ['100ms', cap],
    ['abc', cap],
    ['Infinity', cap],
    ['NaN', cap],
    [['300'], 300],
    [['300', '100'], cap],
    [[], cap],
  ];
  for (const [value, expected] of cases) {
    it(`${JSON.stringify(value)} -> ${expected}`, () => {
      assert.equal(parseDeadlineHeader(value, cap), expected);
    });
  }

  it('rejects an invalid cap', () => {
    assert.throws(() => parseDeadlineHeader('5', -1), InvalidArgumentError);
    assert.throws(() => parseDeadlineHeader('5', Number.NaN), /capMs/);
  });
});
