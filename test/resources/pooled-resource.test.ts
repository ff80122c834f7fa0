import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import FakeTimers from '@sinonjs/fake-timers';
import { PooledResource } from '../../lib/resources/pooled-resource.js';
import type {
  Attempt,
  AttemptVerdict,
  CallOptions,
  PooledResourceOptions,
} from '../../lib/resources/pooled-resource.js';
import type { PoolFactory } from '../../lib/resources/pool.js';
import type { CallOutcome } from '../../lib/resources/types.js';
import {
  BreakerOpenError,
  InvalidArgumentError,
  PoolClosedError,
  PoolExhaustedError,
  ResourceUnavailableError,
  TimeoutError,
} from '../../lib/errors.js';
import { Deadline } from '../../lib/policies/timeout.js';
import { runWithDeadline } from '../../lib/policies/deadline-context.js';
import { deferred, track } from '../helpers/deferred.js';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

interface Conn {
  id: number;
  open: boolean;
}

class TestFactory implements PoolFactory<Conn> {
  created = 0;
  destroyed = 0;
  failWith: Error | undefined = undefined;
  async create(): Promise<Conn> {
    if (this.failWith !== undefined) throw this.failWith;
    return { id: ++this.created, open: true };
  }
  async destroy(conn: Conn): Promise<void> {
    conn.open = false;
    this.destroyed++;
  }
}

type Overrides = Partial<Omit<PooledResourceOptions, 'pool' | 'retry' | 'breaker'>> & {
  pool?: Partial<PooledResourceOptions['pool']>;
  retry?: Partial<PooledResourceOptions['retry']>;
  breaker?: Partial<PooledResourceOptions['breaker']>;
};

function options(o: Overrides = {}): PooledResourceOptions {
  return {
    name: 'upstream',
    kind: 'fake',
    critical: true,
    timeoutMs: 2000,
    // Half of the backoff ceiling: delays of 50, 100, 200 … ms.
    random: () => 0.5,
    ...o,
    pool: {
      min: 0,
      max: 2,
      acquireTimeout: 1000,
      maxWaiting: 10,
      idleTimeout: 0,
      maxLifetime: 0,
      leaseWarning: 0,
      evictionInterval: 1000,
      ...o.pool,
    },
    retry: {
      attempts: 3,
      backoff: { initial: 100, max: 1000, multiplier: 2 },
      budget: { ratio: 0.2, minPerSecond: 10, window: 10_000 },
      statuses: [502, 503, 504],
      nonIdempotent: false,
      ...o.retry,
    },
    breaker: {
      enabled: true,
      enforce: true,
      window: { type: 'count', size: 4 },
      minimumCalls: 4,
      failureRate: 50,
      slowCall: { duration: 60_000, rate: 100 },
      halfOpenAfter: 5000,
      halfOpenProbes: 1,
      openBackoff: { multiplier: 1, max: 5000 },
      failureStatuses: ['5xx'],
      ...o.breaker,
    },
  };
}

/** The smallest concrete kind: its "call" runs a function standing in for the upstream. */
class FakeResource extends PooledResource<Conn> {
  probes = 0;
  constructor(
    o: Overrides = {},
    readonly factory = new TestFactory(),
  ) {
    super(options(o), factory);
  }
  async probe(): Promise<void> {
    this.probes++;
  }
  call<R>(
    upstream: (conn: Conn, signal: AbortSignal) => Promise<R>,
    callOptions: Partial<CallOptions<R>> = {},
  ): Promise<R> {
    return this.execute(upstream, { idempotent: true, ...callOptions });
  }
  callWithAttempt<R, O extends CallOptions<R>>(
    upstream: (conn: Conn, attempt: Attempt<R>, options: O) => void,
    callOptions: O,
  ): Promise<R> {
    return this.executeWithAttempt(upstream, callOptions);
  }
  timeLeft(timeoutMs?: number): number {
    return this.effectiveTimeout(timeoutMs);
  }
}

/** A fake upstream that records its calls and resolves, rejects or hangs as told. */
function upstream<R>(...script: ((signal: AbortSignal) => Promise<R>)[]) {
  const calls: { conn: Conn; signal: AbortSignal }[] = [];
  const fn = (conn: Conn, signal: AbortSignal): Promise<R> => {
    calls.push({ conn, signal });
    const step = script[Math.min(calls.length, script.length) - 1]!;
    return step(signal);
  };
  return Object.assign(fn, { calls });
}

const ok =
  <R>(value: R) =>
  async (): Promise<R> =>
    value;
const fail =
  (message = 'ECONNRESET') =>
  async (): Promise<never> => {
    throw new Error(message);
  };
/** Never answers; rejects with the abort reason, as undici does. */
const hang = () => (signal: AbortSignal) =>
  new Promise<never>((_, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });

describe('PooledResource', () => {
  let clock: InstalledClock;
  let resources: FakeResource[];
  let outcomes: CallOutcome[];
  let retries: [number, number][];
  let exhausted: number;

  function make(o: Overrides = {}, factory?: TestFactory): FakeResource {
    const r = new FakeResource(o, factory);
    resources.push(r);
    r.onCall((outcome) => outcomes.push(outcome));
    r.onRetry((attempt, delay) => retries.push([attempt, delay]));
    r.onBudgetExhausted(() => exhausted++);
    return r;
  }

  beforeEach(() => {
    clock = FakeTimers.install({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    resources = [];
    outcomes = [];
    retries = [];
    exhausted = 0;
  });

  afterEach(async () => {
    await clock.runAllAsync();
    for (const r of resources) {
      assert.equal(r.stats().borrowed, 0, `resource ${r.name} still has borrowed members`);
      const closing = r.close();
      await clock.runAllAsync();
      await closing;
    }
    assert.equal(clock.countTimers(), 0);
    clock.uninstall();
  });

  it('exposes name, kind, critical, a pool, a breaker and a budget; start() is idempotent', async () => {
    const r = make({ pool: { min: 1 } });
    assert.equal(r.name, 'upstream');
    assert.equal(r.kind, 'fake');
    assert.equal(r.critical, true);
    assert.ok(r.breaker);
    assert.ok(r.budget);
    await r.start();
    await r.start();
    await clock.tickAsync(0);
    assert.equal(r.factory.created, 1);
    assert.equal(r.stats().available, 1);
    assert.equal(r.pool.name, 'upstream');
  });

  it('rejects bad options with InvalidArgumentError naming the option', () => {
    assert.throws(() => new FakeResource({ timeoutMs: -1 }), /"timeoutMs"/);
    assert.throws(() => new FakeResource({ retry: { attempts: 0 } }), /"retry\.attempts"/);
    assert.throws(
      () => new FakeResource({ retry: { budget: { ratio: 2, minPerSecond: 0, window: 1000 } } }),
      /"ratio"/,
    );
    assert.throws(() => new FakeResource({ pool: { max: 0 } }), InvalidArgumentError);
    assert.throws(() => new FakeResource({ name: '' }), /"name"/);
  });

  describe('calls', () => {
    it('runs the call on a pooled member and gives it back', async () => {
      const r = make();
      const fn = upstream(ok('pong'));
      assert.equal(await r.call(fn), 'pong');
      assert.equal(await r.call(fn), 'pong');
      assert.equal(fn.calls[0]!.conn, fn.calls[1]!.conn);
      assert.equal(fn.calls[0]!.signal.aborted, false, 'never aborts on success');
      assert.deepEqual(outcomes, ['success', 'success']);
      assert.equal(r.stats().borrowed, 0);
      assert.equal(r.budget.stats().requests, 2);
    });

    it('destroys the member when isBroken says the error broke it', async () => {
      const r = make({ retry: { attempts: 1 } });
      const fn = upstream(fail('socket hang up'));
      await assert.rejects(r.call(fn, { isBroken: () => true }), /socket hang up/);
      await clock.tickAsync(0);
      assert.equal(fn.calls[0]!.conn.open, false);
      assert.equal(r.factory.destroyed, 1);
    });

    it('after close(), calls reject with PoolClosedError; close is idempotent', async () => {
      const r = make();
      const closing = r.close();
      assert.equal(r.close(), closing);
      await closing;
      await assert.rejects(r.call(upstream(ok(1))), PoolClosedError);
      assert.deepEqual(outcomes, ['rejected']);
    });
  });

  describe('retries', () => {
    it('retries a failed idempotent call with exponential backoff and full jitter', async () => {
      const r = make();
      const fn = upstream(fail(), fail(), ok('third time'));
      const call = track(r.call(fn));
      await clock.tickAsync(0);
      assert.equal(fn.calls.length, 1);
      await clock.tickAsync(49);
      assert.equal(fn.calls.length, 1);
      await clock.tickAsync(1);
      assert.equal(fn.calls.length, 2); // 0.5 × 100
      await clock.tickAsync(100);
      assert.equal(fn.calls.length, 3); // 0.5 × 200
      assert.equal(call.value, 'third time');
      assert.deepEqual(retries, [
        [2, 50],
        [3, 100],
      ]);
      assert.deepEqual(outcomes, ['success']);
      assert.equal(r.breaker!.stats().calls, 1, 'the breaker records the call once');
    });

    it('gives up after `attempts` with the last error, recording one failure', async () => {
      const r = make();
      const fn = upstream(fail('one'), fail('two'), fail('three'));
      const call = track(r.call(fn));
      await clock.runAllAsync();
      assert.match(String(call.error), /three/);
      assert.equal(fn.calls.length, 3);
      assert.deepEqual(outcomes, ['failure']);
      assert.deepEqual([r.breaker!.stats().calls, r.breaker!.stats().failures], [1, 1]);
    });

    it('never retries a non-idempotent call unless retry.nonIdempotent is set', async () => {
      const r = make();
      const fn = upstream<string>(fail(), ok('x'));
      await assert.rejects(r.call(fn, { idempotent: false }), /ECONNRESET/);
      assert.equal(fn.calls.length, 1);
      const optedIn = make({ retry: { nonIdempotent: true } });
      const fn2 = upstream<string>(fail(), ok('x'));
      const call = track(optedIn.call(fn2, { idempotent: false }));
      await clock.runAllAsync();
      assert.equal(call.value, 'x');
    });

    it('follows classify: failure is not retried, success counts for the breaker', async () => {
      const r = make();
      const notFound = new Error('404');
      const fn = upstream(async () => {
        throw notFound;
      });
      await assert.rejects(r.call(fn, { classify: () => 'success' }), notFound);
      assert.equal(fn.calls.length, 1);
      await assert.rejects(r.call(fn, { classify: () => 'failure' }), notFound);
      assert.equal(fn.calls.length, 2);
      assert.deepEqual(outcomes, ['success', 'failure']);
      assert.deepEqual([r.breaker!.stats().calls, r.breaker!.stats().failures], [2, 1]);
    });

    it('retries a result that classify marks retryable and honours retryAfterMs', async () => {
      const r = make();
      const fn = upstream(ok({ status: 503, retryAfter: 300 }), ok({ status: 200, retryAfter: 0 }));
      const classify = (
        outcome: { error: unknown } | { result: { status: number; retryAfter: number } },
      ): AttemptVerdict =>
        'result' in outcome && outcome.result.status === 503
          ? { retry: true, retryAfterMs: outcome.result.retryAfter, failure: true }
          : 'success';
      const call = track(r.call(fn, { classify }));
      await clock.tickAsync(299);
      assert.equal(fn.calls.length, 1);
      await clock.tickAsync(1);
      assert.equal(fn.calls.length, 2);
      assert.deepEqual(call.value, { status: 200, retryAfter: 0 });
      assert.deepEqual(retries, [[2, 300]]);
    });

    it('does not wait for a Retry-After beyond 10 × backoff.max: settles the result', async () => {
      const r = make();
      const fn = upstream(ok({ status: 503 }));
      const result = await r.call(fn, {
        classify: () => ({ retry: true, retryAfterMs: 60_000, failure: true }),
      });
      assert.deepEqual(result, { status: 503 });
      assert.equal(fn.calls.length, 1);
      assert.deepEqual(outcomes, ['failure']);
    });

    it('does not retry when the backoff would not leave time for the attempt', async () => {
      const r = make({ timeoutMs: 120 });
      const fn = upstream(async () => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        throw new Error('slow failure');
      });
      const call = track(r.call(fn));
      await clock.runAllAsync();
      assert.match(String(call.error), /slow failure/);
      assert.equal(fn.calls.length, 1, '20 ms left < 50 ms backoff');
    });

    it('stops retrying when the budget is spent: onBudgetExhausted, outcome budget-exhausted', async () => {
      // 0.1/s over 10 s: one retry in the window.
      const r = make({ retry: { budget: { ratio: 0, minPerSecond: 0.1, window: 10_000 } } });
      const first = track(r.call(upstream(fail(), ok('retried'))));
      await clock.runAllAsync();
      assert.equal(first.value, 'retried');
      const fn = upstream(fail('still down'), ok('never'));
      const second = track(r.call(fn));
      await clock.runAllAsync();
      assert.match(String(second.error), /still down/);
      assert.equal(fn.calls.length, 1);
      assert.equal(exhausted, 1);
      assert.deepEqual(outcomes, ['success', 'budget-exhausted']);
      // The window slides: a retry is allowed again 10 s later.
      await clock.tickAsync(10_000);
      const third = track(r.call(upstream(fail(), ok('again'))));
      await clock.runAllAsync();
      assert.equal(third.value, 'again');
    });

    it('does not retry pool errors: a failing factory fails fast with ResourceUnavailableError', async () => {
      const factory = new TestFactory();
      factory.failWith = new Error('ECONNREFUSED');
      const r = make({}, factory);
      const fn = upstream(ok('never'));
      await assert.rejects(
        r.call(fn),
        (err: unknown) => err instanceof ResourceUnavailableError && err.cause === factory.failWith,
      );
      assert.equal(fn.calls.length, 0);
      assert.deepEqual(retries, []);
      assert.deepEqual(outcomes, ['failure']);
      factory.failWith = undefined;
    });

    it('does not retry an exhausted pool and leaves the breaker out of it', async () => {
      const r = make({ pool: { max: 1, maxWaiting: 0 } });
      const gate = deferred<string>();
      const busy = r.call(upstream(() => gate.promise));
      await clock.tickAsync(0);
      await assert.rejects(r.call(upstream(ok('x'))), PoolExhaustedError);
      gate.resolve('done');
      assert.equal(await busy, 'done');
      assert.deepEqual(outcomes, ['rejected', 'success']);
      assert.deepEqual([r.breaker!.stats().calls, r.breaker!.stats().failures], [1, 0]);
    });
  });

  describe('breaker', () => {
    it('opens after failures, rejects without touching the upstream, and recovers', async () => {
      const r = make({ retry: { attempts: 1 } });
      for (let i = 0; i < 4; i++) await assert.rejects(r.call(upstream(fail())));
      assert.equal(r.breaker!.state, 'open');
      const fn = upstream(ok('up'));
      await assert.rejects(
        r.call(fn),
        (err: unknown) => err instanceof BreakerOpenError && err.retryAfterMs === 5000,
      );
      assert.equal(fn.calls.length, 0);
      assert.equal(outcomes.at(-1), 'breaker-open');
      await clock.tickAsync(5000);
      assert.equal(await r.call(fn), 'up');
      assert.equal(r.breaker!.state, 'closed');
    });

    it('with enforce false records outcomes but lets calls through', async () => {
      const r = make({ retry: { attempts: 1 }, breaker: { enforce: false } });
      for (let i = 0; i < 4; i++) await assert.rejects(r.call(upstream(fail())));
      assert.equal(r.breaker!.state, 'open');
      assert.equal(await r.call(upstream(ok('through'))), 'through');
    });

    it('is absent when disabled', async () => {
      const r = make({ retry: { attempts: 1 }, breaker: { enabled: false } });
      assert.equal(r.breaker, undefined);
      for (let i = 0; i < 10; i++) await assert.rejects(r.call(upstream(fail())));
      assert.equal(await r.call(upstream(ok(1))), 1);
    });
  });

  describe('calls given the attempt', () => {
    it('hands fn its attempt and the call options; fn ends it; retries like execute', async () => {
      const r = make();
      const seen: { attempt: Attempt<string>; tag: string }[] = [];
      const options = { idempotent: true, tag: 'mine' };
      const call = track(
        r.callWithAttempt<string, typeof options>((_conn, attempt, o) => {
          seen.push({ attempt, tag: o.tag });
          if (seen.length === 1) throw new Error('ECONNRESET');
          attempt.succeed('pong');
          attempt.fail(new Error('ignored: the attempt has ended'));
        }, options),
      );
      await clock.tickAsync(100);
      assert.equal(call.value, 'pong');
      assert.equal(seen.length, 2);
      assert.notEqual(seen[0]!.attempt, seen[1]!.attempt, 'one attempt object per attempt');
      assert.deepEqual(
        seen.map((s) => [s.tag, s.attempt.aborted]),
        [
          ['mine', false],
          ['mine', false],
        ],
      );
      assert.deepEqual(outcomes, ['success']);
      assert.equal(r.stats().borrowed, 0);
    });

    it('aborts the attempt with the call timeout, tells its listener, and takes the member back when fn fails', async () => {
      const r = make();
      let attempt: Attempt<never> | undefined;
      const heard: unknown[] = [];
      const call = track(
        r.callWithAttempt<never, CallOptions<never>>(
          (_conn, a) => {
            attempt = a;
            a.addEventListener('abort', {
              handleEvent: () => {
                heard.push(a.reason);
                a.fail(a.reason);
              },
            });
          },
          { idempotent: true },
        ),
      );
      await clock.tickAsync(1999);
      assert.equal(r.stats().borrowed, 1);
      await clock.tickAsync(1);
      assert.ok(call.error instanceof TimeoutError);
      assert.deepEqual(heard, [call.error]);
      assert.equal(attempt!.signal.reason, call.error, 'a signal read late is aborted too');
      assert.equal(r.stats().borrowed, 0);
      assert.deepEqual(outcomes, ['timeout']);
    });
  });

  describe('timeouts and deadlines', () => {
    it('times out the call, aborts the attempt signal and records a timeout', async () => {
      const r = make();
      const fn = upstream(hang());
      const call = track(r.call(fn));
      await clock.tickAsync(1999);
      assert.equal(call.settled, false);
      await clock.tickAsync(1);
      assert.ok(call.error instanceof TimeoutError);
      assert.equal(fn.calls.length, 1, 'no retry once the time is up');
      assert.equal(fn.calls[0]!.signal.aborted, true);
      assert.equal(fn.calls[0]!.signal.reason, call.error);
      assert.deepEqual(outcomes, ['timeout']);
      assert.deepEqual([r.breaker!.stats().calls, r.breaker!.stats().failures], [1, 1]);
    });

    it('the total timeout spans all attempts and waits', async () => {
      const r = make({ timeoutMs: 500 });
      const fn = upstream(async () => {
        await new Promise((resolve) => setTimeout(resolve, 200));
        throw new Error('boom');
      }, hang());
      const call = track(r.call(fn));
      await clock.tickAsync(499);
      assert.equal(fn.calls.length, 2);
      assert.equal(call.settled, false);
      await clock.tickAsync(1);
      assert.ok(call.error instanceof TimeoutError);
    });

    it('takes the smaller of its own timeout and the inbound deadline', async () => {
      const r = make();
      const fn = upstream(hang());
      const deadline = new Deadline({ timeoutMs: 300 });
      const call = track(runWithDeadline(deadline, () => r.call(fn)));
      assert.equal(
        runWithDeadline(deadline, () => r.timeLeft()),
        300,
      );
      assert.equal(
        runWithDeadline(deadline, () => r.timeLeft(100)),
        100,
      );
      assert.equal(
        runWithDeadline(deadline, () => r.timeLeft(5000)),
        300,
      );
      assert.equal(r.timeLeft(), 2000);
      assert.equal(r.timeLeft(5000), 5000, 'a per-call timeout may be longer than the default');
      await clock.tickAsync(300);
      assert.ok(call.error instanceof TimeoutError);
      assert.equal(fn.calls[0]!.signal.aborted, true);
      assert.deepEqual(outcomes, ['timeout']);
      deadline.clear();
    });

    it('with no time left fails at once without touching the pool or the breaker', async () => {
      const r = make();
      const deadline = new Deadline({ timeoutMs: 100 });
      await clock.tickAsync(100);
      const fn = upstream(ok('late'));
      await assert.rejects(
        runWithDeadline(deadline, () => r.call(fn)),
        TimeoutError,
      );
      await assert.rejects(r.call(fn, { timeoutMs: 0 }), TimeoutError);
      assert.equal(fn.calls.length, 0);
      assert.equal(r.factory.created, 0);
      assert.equal(r.breaker!.stats().calls, 0);
      assert.equal(r.budget.stats().requests, 0);
      assert.deepEqual(outcomes, ['timeout', 'timeout']);
    });

    it('aborts with the inbound request when the client disconnects', async () => {
      const r = make();
      const fn = upstream(hang());
      const deadline = new Deadline({ timeoutMs: 1000 });
      const call = track(runWithDeadline(deadline, () => r.call(fn)));
      await clock.tickAsync(10);
      const gone = new Error('client disconnected');
      deadline.abort(gone);
      await clock.tickAsync(0);
      assert.equal(call.error, gone);
      assert.equal(fn.calls[0]!.signal.reason, gone);
      assert.deepEqual(outcomes, ['rejected']);
      assert.equal(r.breaker!.stats().calls, 0, 'a disconnect says nothing about the upstream');
    });
  });

  describe('caller abort', () => {
    it('rejects with the reason, aborts the attempt and releases the breaker permit', async () => {
      const r = make();
      const controller = new AbortController();
      const fn = upstream(hang());
      const call = track(r.call(fn, { signal: controller.signal }));
      await clock.tickAsync(10);
      controller.abort(new Error('cancelled'));
      await clock.tickAsync(0);
      assert.match(String(call.error), /cancelled/);
      assert.equal(fn.calls[0]!.signal.aborted, true);
      assert.deepEqual(outcomes, ['rejected']);
      assert.equal(r.breaker!.stats().calls, 0);
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    });

    it('aborts the wait between attempts at once', async () => {
      const r = make({ retry: { backoff: { initial: 1000, max: 1000, multiplier: 2 } } });
      const controller = new AbortController();
      const fn = upstream(fail(), ok('never'));
      const call = track(r.call(fn, { signal: controller.signal }));
      await clock.tickAsync(100); // in the 500 ms backoff wait
      controller.abort(new Error('cancelled'));
      await clock.tickAsync(0);
      assert.match(String(call.error), /cancelled/);
      assert.equal(fn.calls.length, 1);
      assert.deepEqual(outcomes, ['rejected']);
    });

    it('rejects at once with an already aborted signal', async () => {
      const r = make();
      const fn = upstream(ok(1));
      await assert.rejects(
        r.call(fn, { signal: AbortSignal.abort(new Error('before')) }),
        /before/,
      );
      assert.equal(fn.calls.length, 0);
    });
  });
});
