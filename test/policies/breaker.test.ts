import assert from 'node:assert/strict';
import FakeTimers from '@sinonjs/fake-timers';
import { BreakerOpenError, InvalidArgumentError, isBreakerOpenError } from '../../lib/errors.js';
import { CircuitBreaker, circuitBreaker } from '../../lib/policies/breaker.js';
import type {
  BreakerPermit,
  BreakerStateChange,
  CircuitBreakerOptions,
} from '../../lib/policies/breaker.js';

interface ManualClock {
  t: number;
  now(): number;
}

function manualClock(t = 0): ManualClock {
  return {
    t,
    now() {
      return this.t;
    },
  };
}

function setup(options: CircuitBreakerOptions = {}) {
  const clock = manualClock(1_000_000);
  const breaker = new CircuitBreaker({ clock, ...options });
  const changes: [string, string, string][] = [];
  breaker.onStateChange((c) => changes.push([c.from, c.to, c.reason]));
  let rejects = 0;
  breaker.onReject(() => rejects++);
  /** Runs calls described by a string: F failure, S success, s slow success, x slow failure. */
  const run = (script: string, slowMs = 60_000) => {
    for (const ch of script) {
      const permit = breaker.tryAcquire();
      assert.ok(permit, `call '${ch}' of '${script}' was rejected`);
      if (ch === 's' || ch === 'x') clock.t += slowMs;
      if (ch === 'F' || ch === 'x') permit.failure();
      else permit.success();
    }
  };
  /** Fails calls until the breaker opens. */
  const open = () => {
    for (let i = 0; i < 1000 && breaker.state === 'closed'; i++) run('F');
    assert.equal(breaker.state, 'open');
  };
  return { clock, breaker, changes, run, open, rejects: () => rejects };
}

function acquired(breaker: CircuitBreaker): BreakerPermit {
  const permit = breaker.tryAcquire();
  assert.ok(permit, 'expected a permit');
  return permit;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('CircuitBreaker', () => {
  describe('closed', () => {
    it('does not open before minimumCalls, however bad the rate', () => {
      const { breaker, run } = setup({ window: { type: 'count', size: 10 }, minimumCalls: 4 });
      run('FFF');
      assert.equal(breaker.state, 'closed');
      assert.equal(breaker.stats().failureRate, 100);
      run('F');
      assert.equal(breaker.state, 'open');
    });

    it('opens exactly when the failure rate reaches the threshold', () => {
      const { breaker, run, changes } = setup({
        window: { type: 'count', size: 10 },
        minimumCalls: 4,
        failureRate: 50,
      });
      run('SSFS'); // 25%
      run('F'); // 2/5 = 40%
      assert.equal(breaker.state, 'closed');
      assert.equal(breaker.stats().failureRate, 40);
      run('F'); // 3/6 = 50%
      assert.equal(breaker.state, 'open');
      assert.deepEqual(changes, [['closed', 'open', 'failure-rate']]);
    });

    it('judges only the calls still in the count window', () => {
      const { breaker, run } = setup({ window: { type: 'count', size: 4 }, minimumCalls: 4 });
      run('FSSS'); // 25%
      run('F'); // evicts the first F: still 25%
      run('S'); // 25%
      assert.equal(breaker.state, 'closed');
      assert.deepEqual(
        { calls: breaker.stats().calls, failures: breaker.stats().failures },
        { calls: 4, failures: 1 },
      );
    });

    it('opens on the slow-call rate; a call is slow from slowCall.duration on', () => {
      const { breaker, clock, changes } = setup({
        window: { type: 'count', size: 10 },
        minimumCalls: 4,
        slowCall: { duration: 100, rate: 50 },
      });
      const callTaking = (ms: number) => {
        const permit = acquired(breaker);
        clock.t += ms;
        permit.success();
      };
      callTaking(99);
      callTaking(100);
      callTaking(0);
      assert.equal(breaker.stats().slowCalls, 1);
      assert.equal(breaker.state, 'closed'); // 3 calls < minimumCalls
      callTaking(150); // 2/4 slow
      assert.equal(breaker.state, 'open');
      assert.deepEqual(changes, [['closed', 'open', 'slow-call-rate']]);
    });

    it('counts a slow failure as both failed and slow', () => {
      const { breaker, run } = setup({ slowCall: { duration: 10, rate: 100 } });
      run('xS');
      const { calls, failures, slowCalls } = breaker.stats();
      assert.deepEqual({ calls, failures, slowCalls }, { calls: 2, failures: 1, slowCalls: 1 });
    });

    it('tracks no slow calls when slowCall.duration is Infinity', () => {
      const { breaker, run } = setup({
        minimumCalls: 2,
        slowCall: { duration: Infinity, rate: 1 },
      });
      run('ssss', 1e12);
      assert.equal(breaker.state, 'closed');
      assert.equal(breaker.stats().slowCalls, 0);
    });

    it('judges the last window.size seconds with a time window', () => {
      const { breaker, run, clock } = setup({
        window: { type: 'time', size: 10 },
        minimumCalls: 5,
      });
      run('FFFF');
      clock.t += 10_000; // those four failures fall out of the window
      run('F');
      assert.equal(breaker.state, 'closed');
      assert.equal(breaker.stats().calls, 1);
      run('FFF');
      clock.t += 9_000; // still inside
      run('F');
      assert.equal(breaker.state, 'open');
    });

    it('accepts minimumCalls above the size of a time window', () => {
      const { breaker, run } = setup({ window: { type: 'time', size: 1 }, minimumCalls: 3 });
      run('FF');
      assert.equal(breaker.state, 'closed');
      run('F');
      assert.equal(breaker.state, 'open');
    });
  });

  describe('consecutive window', () => {
    it('opens after size consecutive failures, ignoring minimumCalls', () => {
      const { breaker, run, changes } = setup({
        window: { type: 'consecutive', size: 3 },
        minimumCalls: 50,
        failureRate: 100,
      });
      run('FFSFF');
      assert.equal(breaker.state, 'closed');
      assert.equal(Math.round(breaker.stats().failureRate), 67); // the run of 2 out of 3
      run('F');
      assert.equal(breaker.state, 'open');
      assert.deepEqual(changes, [['closed', 'open', 'consecutive-failures']]);
    });

    it('opens after size consecutive slow calls', () => {
      const { breaker, run, changes } = setup({
        window: { type: 'consecutive', size: 3 },
        slowCall: { duration: 1000, rate: 100 },
      });
      run('ssSss');
      assert.equal(breaker.state, 'closed');
      run('s');
      assert.deepEqual(changes, [['closed', 'open', 'slow-call-rate']]);
    });
  });

  describe('open', () => {
    it('rejects with the time left until half-open', () => {
      const { breaker, clock, open, rejects } = setup({ halfOpenAfter: 10_000 });
      open();
      clock.t += 3000;
      assert.equal(breaker.retryAfterMs(), 7000);
      assert.equal(breaker.tryAcquire(), null);
      assert.throws(
        () => breaker.acquire(),
        (err: unknown) => {
          assert.ok(err instanceof BreakerOpenError);
          assert.ok(isBreakerOpenError(err));
          assert.equal(err.retryAfterMs, 7000);
          assert.equal(err.isolated, false);
          assert.equal(err.status, 503);
          return true;
        },
      );
      assert.equal(rejects(), 2);
      assert.equal(breaker.stats().retryAfterMs, 7000);
      assert.equal(breaker.stats().state, 'open');
    });

    it('moves to half-open lazily once halfOpenAfter has passed', () => {
      const { breaker, clock, open, changes } = setup({ halfOpenAfter: 10_000 });
      open();
      clock.t += 9999;
      assert.equal(breaker.state, 'open');
      assert.equal(breaker.retryAfterMs(), 1);
      clock.t += 1;
      assert.equal(breaker.retryAfterMs(), 0);
      assert.equal(breaker.state, 'half-open');
      assert.deepEqual(changes.at(-1), ['open', 'half-open', 'half-open-after']);
    });

    it('admits a probe on tryAcquire without a prior state read', () => {
      const { breaker, clock, open } = setup({ halfOpenAfter: 100 });
      open();
      clock.t += 100;
      const permit = breaker.tryAcquire();
      assert.ok(permit);
      assert.equal(breaker.state, 'half-open');
    });

    it('does not run execute() callbacks while open', async () => {
      const { breaker, open } = setup();
      open();
      let ran = false;
      await assert.rejects(
        breaker.execute(() => {
          ran = true;
        }),
        BreakerOpenError,
      );
      assert.equal(ran, false);
    });
  });

  describe('half-open', () => {
    function halfOpen(options: CircuitBreakerOptions = {}) {
      const ctx = setup({ halfOpenAfter: 1000, halfOpenProbes: 3, ...options });
      ctx.open();
      ctx.clock.t += ctx.breaker.retryAfterMs();
      assert.equal(ctx.breaker.state, 'half-open');
      return ctx;
    }

    it('admits at most halfOpenProbes probes at once', () => {
      const { breaker, rejects } = halfOpen();
      const probes = [acquired(breaker), acquired(breaker), acquired(breaker)];
      assert.equal(breaker.tryAcquire(), null);
      assert.equal(rejects(), 1);
      assert.throws(
        () => breaker.acquire(),
        (err: unknown) => err instanceof BreakerOpenError && err.retryAfterMs === 0,
      );
      probes[0]!.release(); // frees its slot
      const fourth = acquired(breaker);
      assert.equal(breaker.tryAcquire(), null);
      probes[1]!.success(); // a success does not admit a probe beyond halfOpenProbes
      assert.equal(breaker.tryAcquire(), null);
      assert.equal(breaker.state, 'half-open');
      probes[2]!.success();
      fourth.success();
      assert.equal(breaker.state, 'closed');
    });

    it('closes once halfOpenProbes probes have succeeded, with a clear window', () => {
      const { breaker, changes } = halfOpen();
      acquired(breaker).success();
      acquired(breaker).success();
      assert.equal(breaker.state, 'half-open');
      acquired(breaker).success();
      assert.equal(breaker.state, 'closed');
      assert.deepEqual(changes.at(-1), ['half-open', 'closed', 'probes-succeeded']);
      const { calls, failures, retryAfterMs } = breaker.stats();
      assert.deepEqual(
        { calls, failures, retryAfterMs },
        { calls: 0, failures: 0, retryAfterMs: 0 },
      );
    });

    it('does not count probe releases as successes', () => {
      const { breaker } = halfOpen({ halfOpenProbes: 1 });
      acquired(breaker).release();
      assert.equal(breaker.state, 'half-open');
      acquired(breaker).success();
      assert.equal(breaker.state, 'closed');
    });

    it('reopens on the first failed probe and ignores the other probes', () => {
      const { breaker, changes } = halfOpen();
      const [a, b, c] = [acquired(breaker), acquired(breaker), acquired(breaker)];
      a.success();
      b.failure();
      assert.equal(breaker.state, 'open');
      assert.deepEqual(changes.at(-1), ['half-open', 'open', 'probe-failed']);
      assert.equal(breaker.retryAfterMs(), 1000);
      c.success();
      assert.equal(breaker.state, 'open');
      assert.equal(changes.length, 3);
    });

    it('reopens on a slow probe', () => {
      const { breaker, clock, changes } = halfOpen({ slowCall: { duration: 500, rate: 100 } });
      const probe = acquired(breaker);
      clock.t += 500;
      probe.success();
      assert.deepEqual(changes.at(-1), ['half-open', 'open', 'probe-failed']);
    });

    it('grows the open period by openBackoff.multiplier up to max, and resets it on closing', () => {
      const { breaker, clock, open } = setup({
        halfOpenAfter: 10_000,
        halfOpenProbes: 1,
        openBackoff: { multiplier: 2, max: 35_000 },
      });
      open();
      const periods: number[] = [breaker.retryAfterMs()];
      for (let i = 0; i < 3; i++) {
        clock.t += breaker.retryAfterMs();
        acquired(breaker).failure();
        periods.push(breaker.retryAfterMs());
      }
      assert.deepEqual(periods, [10_000, 20_000, 35_000, 35_000]);
      clock.t += breaker.retryAfterMs();
      acquired(breaker).success();
      assert.equal(breaker.state, 'closed');
      open();
      assert.equal(breaker.retryAfterMs(), 10_000);
    });
  });

  describe('permits', () => {
    it('count only their first outcome', () => {
      const { breaker } = setup();
      const permit = acquired(breaker);
      permit.failure();
      permit.success();
      permit.failure();
      permit.release();
      const { calls, failures } = breaker.stats();
      assert.deepEqual({ calls, failures }, { calls: 1, failures: 1 });
    });

    it('release records nothing while closed', () => {
      const { breaker } = setup();
      acquired(breaker).release();
      assert.equal(breaker.stats().calls, 0);
    });

    it('ignores a slow call from before opening that ends while half-open', () => {
      const { breaker, clock, open } = setup({
        halfOpenAfter: 1000,
        halfOpenProbes: 2,
        slowCall: { duration: 100, rate: 100 },
      });
      const old = acquired(breaker);
      open();
      clock.t += 1000;
      assert.equal(breaker.state, 'half-open');
      old.success(); // slow, and from the closed generation
      old.failure();
      assert.equal(breaker.state, 'half-open');
      acquired(breaker).success();
      acquired(breaker).success(); // both slots were still free
      assert.equal(breaker.state, 'closed');
    });

    it('ignores a failure from before opening that ends while open', () => {
      const { breaker, clock, open, changes } = setup({ halfOpenAfter: 1000 });
      const old = acquired(breaker);
      open();
      clock.t += 400;
      old.failure();
      assert.equal(breaker.retryAfterMs(), 600);
      assert.equal(changes.length, 1);
    });

    it('ignores a probe from an earlier half-open period', () => {
      const { breaker, clock, open } = setup({ halfOpenAfter: 1000, halfOpenProbes: 2 });
      open();
      clock.t += 1000;
      const stale = acquired(breaker);
      acquired(breaker).failure();
      clock.t += 1000;
      assert.equal(breaker.state, 'half-open');
      stale.success(); // neither a success of this period nor a freed slot
      const a = acquired(breaker);
      acquired(breaker).success();
      assert.equal(breaker.tryAcquire(), null);
      assert.equal(breaker.state, 'half-open');
      a.success();
      assert.equal(breaker.state, 'closed');
    });

    it('ignores calls admitted before reset()', () => {
      const { breaker, run } = setup();
      run('FFF');
      const old = acquired(breaker);
      breaker.reset();
      old.failure();
      assert.equal(breaker.stats().calls, 0);
    });
  });

  describe('isolate and reset', () => {
    it('isolate() rejects every call until every handle is disposed', () => {
      const { breaker, run, changes, rejects } = setup({ halfOpenAfter: 5000 });
      run('FS');
      const old = acquired(breaker);
      const first = breaker.isolate();
      const second = breaker.isolate();
      assert.equal(breaker.state, 'isolated');
      assert.equal(breaker.tryAcquire(), null);
      assert.throws(
        () => breaker.acquire(),
        (err: unknown) =>
          err instanceof BreakerOpenError && err.isolated && err.retryAfterMs === 5000,
      );
      assert.equal(rejects(), 2);
      old.failure();
      first.dispose();
      first.dispose();
      assert.equal(breaker.state, 'isolated');
      breaker.reset(); // does not lift an isolation
      assert.equal(breaker.state, 'isolated');
      second.dispose();
      assert.equal(breaker.state, 'closed');
      assert.equal(breaker.stats().calls, 0);
      assert.deepEqual(changes, [
        ['closed', 'isolated', 'isolate'],
        ['isolated', 'closed', 'reset'],
      ]);
    });

    it('isolating an open breaker closes it once released', () => {
      const { breaker, open, clock } = setup({ halfOpenAfter: 1000 });
      open();
      const handle = breaker.isolate();
      clock.t += 5000;
      assert.equal(breaker.state, 'isolated');
      handle.dispose();
      assert.equal(breaker.state, 'closed');
    });

    it('reset() closes an open breaker, clears the window and the backoff', () => {
      const { breaker, clock, open, changes } = setup({
        halfOpenAfter: 1000,
        halfOpenProbes: 1,
        openBackoff: { multiplier: 3, max: 100_000 },
      });
      open();
      clock.t += 1000;
      acquired(breaker).failure();
      assert.equal(breaker.retryAfterMs(), 3000);
      breaker.reset();
      assert.equal(breaker.state, 'closed');
      assert.deepEqual(changes.at(-1), ['open', 'closed', 'reset']);
      assert.equal(breaker.stats().calls, 0);
      open();
      assert.equal(breaker.retryAfterMs(), 1000);
    });

    it('reset() of a closed breaker clears the window without an event', () => {
      const { breaker, run, changes } = setup();
      run('FFS');
      breaker.reset();
      assert.equal(breaker.stats().calls, 0);
      assert.deepEqual(changes, []);
    });
  });

  describe('events', () => {
    it('reports a full cycle with reasons', () => {
      const { breaker, clock, run, changes } = setup({
        minimumCalls: 2,
        halfOpenAfter: 100,
        halfOpenProbes: 1,
      });
      run('FF');
      clock.t += 100;
      acquired(breaker).failure();
      clock.t += 100;
      acquired(breaker).success();
      assert.deepEqual(changes, [
        ['closed', 'open', 'failure-rate'],
        ['open', 'half-open', 'half-open-after'],
        ['half-open', 'open', 'probe-failed'],
        ['open', 'half-open', 'half-open-after'],
        ['half-open', 'closed', 'probes-succeeded'],
      ]);
    });

    it('stops calling a disposed listener', () => {
      const { breaker, run } = setup({ minimumCalls: 1 });
      const seen: BreakerStateChange[] = [];
      const subscription = breaker.onStateChange((c) => seen.push(c));
      let rejected = 0;
      const rejectSubscription = breaker.onReject(() => rejected++);
      subscription.dispose();
      subscription.dispose();
      rejectSubscription.dispose();
      run('F');
      breaker.tryAcquire();
      assert.deepEqual(seen, []);
      assert.equal(rejected, 0);
    });

    it('survives listeners that throw, and warns once', async () => {
      const warnings: Error[] = [];
      const onWarning = (w: Error) => warnings.push(w);
      process.on('warning', onWarning);
      try {
        const { breaker, changes } = setup({ minimumCalls: 1 });
        breaker.onStateChange(() => {
          throw new Error('listener bug');
        });
        const after: string[] = [];
        breaker.onStateChange((c) => after.push(c.to));
        breaker.onReject(() => {
          throw new Error('reject listener bug');
        });
        acquired(breaker).failure();
        assert.equal(breaker.state, 'open');
        assert.deepEqual(after, ['open']);
        assert.equal(changes.length, 1);
        assert.equal(breaker.tryAcquire(), null);
        assert.throws(() => breaker.acquire(), BreakerOpenError);
        await new Promise((resolve) => setImmediate(resolve));
        const ours = warnings.filter(
          (w) => (w as Error & { code?: string }).code === 'RESILIENCE_LISTENER_ERROR',
        );
        assert.equal(ours.length, 1);
        assert.match(ours[0]!.message, /listener bug/);
      } finally {
        process.off('warning', onWarning);
      }
    });
  });

  describe('execute()', () => {
    class HttpError extends Error {
      constructor(readonly status: number) {
        super(`HTTP ${status}`);
      }
    }

    it('returns the result and records a success', async () => {
      const { breaker } = setup();
      assert.equal(await breaker.execute(() => 42), 42);
      assert.equal(await breaker.execute(async () => 'x'), 'x');
      const { calls, failures } = breaker.stats();
      assert.deepEqual({ calls, failures }, { calls: 2, failures: 0 });
    });

    it('counts only the rejections isFailure accepts as failures', async () => {
      const { breaker } = setup({
        isFailure: (err) => err instanceof HttpError && err.status >= 500,
      });
      for (let i = 0; i < 10; i++) {
        await assert.rejects(
          breaker.execute(() => Promise.reject(new HttpError(404))),
          HttpError,
        );
      }
      assert.equal(breaker.state, 'closed');
      assert.equal(breaker.stats().failures, 0);
      for (let i = 0; i < 9; i++) {
        await assert.rejects(
          breaker.execute(() => Promise.reject(new HttpError(503))),
          HttpError,
        );
      }
      assert.equal(breaker.state, 'closed'); // 19 calls < minimumCalls 20
      await assert.rejects(
        breaker.execute(() => {
          throw new HttpError(500); // synchronous throws count too
        }),
        HttpError,
      );
      assert.equal(breaker.state, 'open'); // 10 failures / 20 calls
    });

    it('counts a rejection as a failure when isFailure throws', async () => {
      const { breaker } = setup({
        isFailure: () => {
          throw new Error('classifier bug');
        },
      });
      await assert.rejects(
        breaker.execute(() => Promise.reject(new Error('boom'))),
        /boom/,
      );
      assert.equal(breaker.stats().failures, 1);
    });

    it('records a slow success by the time the promise settles', async () => {
      const { breaker, clock } = setup({ slowCall: { duration: 100, rate: 100 } });
      const d = deferred<string>();
      const result = breaker.execute(() => d.promise);
      clock.t += 100;
      d.resolve('late');
      assert.equal(await result, 'late');
      assert.equal(breaker.stats().slowCalls, 1);
    });
  });

  describe('options', () => {
    const cases: [string, unknown][] = [
      ['options', null],
      ['window', { window: 'count' }],
      ['window.type', { window: { type: 'sliding', size: 10 } }],
      ['window.size', { window: { type: 'count', size: 0 } }],
      ['window.size', { window: { type: 'time', size: 1.5 } }],
      ['window.size', { window: { type: 'consecutive', size: Number.NaN } }],
      ['window.size', { window: { type: 'count', size: '10' } }],
      ['minimumCalls', { minimumCalls: 0 }],
      ['minimumCalls', { minimumCalls: 2.5 }],
      ['minimumCalls', { window: { type: 'count', size: 10 }, minimumCalls: 11 }],
      ['failureRate', { failureRate: 0 }],
      ['failureRate', { failureRate: 101 }],
      ['failureRate', { failureRate: Number.NaN }],
      ['slowCall', { slowCall: 2000 }],
      ['slowCall.duration', { slowCall: { duration: 0, rate: 100 } }],
      ['slowCall.duration', { slowCall: { duration: Number.NaN, rate: 100 } }],
      ['slowCall.rate', { slowCall: { duration: 100, rate: 0.5 } }],
      ['slowCall.rate', { slowCall: { duration: 100, rate: 150 } }],
      ['halfOpenAfter', { halfOpenAfter: -1 }],
      ['halfOpenAfter', { halfOpenAfter: Infinity }],
      ['halfOpenProbes', { halfOpenProbes: 0 }],
      ['halfOpenProbes', { halfOpenProbes: 1.5 }],
      ['openBackoff', { openBackoff: 2 }],
      ['openBackoff.multiplier', { openBackoff: { multiplier: 0.5, max: 20_000 } }],
      ['openBackoff.multiplier', { openBackoff: { multiplier: Number.NaN, max: 20_000 } }],
      ['openBackoff.max', { halfOpenAfter: 10_000, openBackoff: { multiplier: 2, max: 5000 } }],
      ['openBackoff.max', { openBackoff: { multiplier: 2, max: Number.NaN } }],
      ['isFailure', { isFailure: 'yes' }],
      ['clock', { clock: {} }],
    ];
    for (const [option, value] of cases) {
      it(`rejects ${option} = ${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}`, () => {
        assert.throws(
          () => new CircuitBreaker(value as CircuitBreakerOptions),
          (err: unknown) => {
            assert.ok(err instanceof InvalidArgumentError);
            assert.ok(err.message.includes(`"${option}"`), err.message);
            return true;
          },
        );
      });
    }

    it('defaults minimumCalls to the size of a small count window', () => {
      const { breaker, run } = setup({ window: { type: 'count', size: 5 } });
      run('FFFF');
      assert.equal(breaker.state, 'closed');
      run('F');
      assert.equal(breaker.state, 'open');
    });

    it('starts closed with empty stats', () => {
      const breaker = circuitBreaker();
      assert.ok(breaker instanceof CircuitBreaker);
      assert.deepEqual(breaker.stats(), {
        state: 'closed',
        calls: 0,
        failures: 0,
        slowCalls: 0,
        failureRate: 0,
        slowCallRate: 0,
        retryAfterMs: 0,
      });
    });
  });

  describe('with the default clock', () => {
    let fake: ReturnType<typeof FakeTimers.install>;
    beforeEach(() => {
      fake = FakeTimers.install({ toFake: ['Date'], now: 0 });
    });
    afterEach(() => {
      fake.uninstall();
    });

    it('follows Date.now() from open to half-open', () => {
      const breaker = circuitBreaker({ minimumCalls: 1, halfOpenAfter: 10_000 });
      acquired(breaker).failure();
      fake.tick(4000);
      assert.equal(breaker.retryAfterMs(), 6000);
      fake.tick(6000);
      assert.equal(breaker.state, 'half-open');
    });
  });
});
