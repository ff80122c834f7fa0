import assert from 'node:assert/strict';
import FakeTimers from '@sinonjs/fake-timers';
import { InvalidArgumentError, PoolExhaustedError, isTimeoutError } from '../../lib/errors.js';
import type { HealthCheck, HealthCheckOptions } from '../../lib/health/check.js';
import { HealthMonitor } from '../../lib/health/monitor.js';
import type { HealthStatusChange } from '../../lib/health/monitor.js';
import { deferred } from '../helpers/deferred.js';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

const OPTIONS: HealthCheckOptions = {
  interval: 1000,
  timeout: 100,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  history: 5,
  degraded: { poolUtilisation: 90, errorRate: 50 },
};

/** A check whose next probe outcome the test decides. */
class ScriptedCheck implements HealthCheck {
  readonly kind = 'http';
  probes = 0;
  readonly signals: AbortSignal[] = [];
  /** What the next probes do; default: pass. */
  behaviour: (signal: AbortSignal) => Promise<void> = () => Promise.resolve();
  util: number | undefined;
  errors: number | undefined;

  constructor(
    readonly name = 'api',
    readonly critical = true,
  ) {}

  probe(signal: AbortSignal): Promise<void> {
    this.probes++;
    this.signals.push(signal);
    return this.behaviour(signal);
  }

  utilisation(): number {
    return this.util ?? 0;
  }

  errorRate(): number | undefined {
    return this.errors;
  }

  pass(): this {
    this.behaviour = () => Promise.resolve();
    return this;
  }

  fail(message = 'connection refused'): this {
    this.behaviour = () => Promise.reject(new Error(message));
    return this;
  }

  hang(): this {
    this.behaviour = () => new Promise<void>(() => undefined);
    return this;
  }
}

describe('HealthMonitor', () => {
  let clock: InstalledClock;
  let monitor: HealthMonitor;

  beforeEach(() => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 1_000_000 });
    monitor = new HealthMonitor();
  });

  afterEach(() => {
    monitor.close();
    clock.uninstall();
  });

  async function probe(check: ScriptedCheck, times = 1): Promise<void> {
    for (let i = 0; i < times; i++) await monitor.checkNow(check.name);
  }

  describe('status rules', () => {
    it('starts unknown, and the first success makes it up', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, OPTIONS);
      assert.equal(check.probes, 0, 'nothing runs before start() or checkNow()');
      assert.deepEqual(
        { status: monitor.report('api').status, reason: monitor.report('api').reason },
        { status: 'unknown', reason: 'not checked yet' },
      );
      await probe(check);
      const report = monitor.report('api');
      assert.equal(report.status, 'up');
      assert.equal(report.reason, undefined);
      assert.ok(!('reason' in report), 'no reason key while up');
    });

    it('goes from unknown to down only after unhealthyThreshold failures', async () => {
      const check = new ScriptedCheck().fail('ECONNREFUSED 127.0.0.1:6379');
      monitor.add(check, OPTIONS);
      await probe(check, 2);
      assert.equal(monitor.report('api').status, 'unknown');
      assert.equal(monitor.report('api').reason, 'ECONNREFUSED 127.0.0.1:6379');
      await probe(check);
      assert.equal(monitor.report('api').status, 'down');
      assert.equal(monitor.report('api').reason, 'ECONNREFUSED 127.0.0.1:6379');
    });

    it('goes down from up after unhealthyThreshold consecutive failures; a success resets the count', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, OPTIONS);
      await probe(check);
      check.fail();
      await probe(check, 2);
      check.pass();
      await probe(check);
      check.fail();
      await probe(check, 2);
      assert.equal(monitor.report('api').status, 'up', 'never 3 failures in a row');
      assert.equal(monitor.report('api').details?.consecutiveFailures, 2);
      await probe(check);
      assert.equal(monitor.report('api').status, 'down');
    });

    it('comes back up after healthyThreshold consecutive successes; a failure resets the count', async () => {
      const check = new ScriptedCheck().fail();
      monitor.add(check, OPTIONS);
      await probe(check, 3);
      check.pass();
      await probe(check);
      assert.equal(monitor.report('api').status, 'down');
      assert.equal(monitor.report('api').reason, 'recovering: 1 of 2 checks passed');
      check.fail('still broken');
      await probe(check);
      check.pass();
      await probe(check);
      assert.equal(monitor.report('api').status, 'down');
      await probe(check);
      assert.equal(monitor.report('api').status, 'up');
    });

    it('with thresholds of 1, flips on every result', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, { ...OPTIONS, healthyThreshold: 1, unhealthyThreshold: 1 });
      await probe(check);
      assert.equal(monitor.report('api').status, 'up');
      check.fail();
      await probe(check);
      assert.equal(monitor.report('api').status, 'down');
      check.pass();
      await probe(check);
      assert.equal(monitor.report('api').status, 'up');
    });

    it('counts a probe that throws synchronously as a failure', async () => {
      const check = new ScriptedCheck();
      check.behaviour = () => {
        throw new TypeError('bad probe');
      };
      monitor.add(check, { ...OPTIONS, unhealthyThreshold: 1 });
      await probe(check);
      assert.equal(monitor.report('api').status, 'down');
      assert.equal(monitor.report('api').reason, 'bad probe');
    });

    it('records a probe turned away by an exhausted pool as skipped: the last status and streaks stand (regression)', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, { ...OPTIONS, unhealthyThreshold: 1 });
      const exhausted = (reason: 'queue-full' | 'acquire-timeout') => () =>
        Promise.reject(
          new PoolExhaustedError('Pool "api" is exhausted', { resource: 'api', reason }),
        );
      check.behaviour = exhausted('queue-full');
      await probe(check);
      assert.equal(monitor.report('api').status, 'unknown', 'a skipped probe is no verdict');
      check.pass();
      await probe(check);
      check.behaviour = exhausted('acquire-timeout');
      await probe(check, 3);
      const report = monitor.report('api');
      assert.equal(report.status, 'up');
      assert.equal(report.details?.consecutiveFailures, 0);
      assert.equal(report.details?.consecutiveSuccesses, 1);
      assert.equal(report.history.length, 5);
      assert.deepEqual(
        report.history.map((r) => [r.ok, r.skipped === true]),
        [
          [false, true],
          [true, false],
          [false, true],
          [false, true],
          [false, true],
        ],
      );
      assert.match(report.history[4]!.error!, /exhausted/);
      // A real failure still counts at once.
      check.fail();
      await probe(check);
      assert.equal(monitor.report('api').status, 'down');
    });
  });

  describe('degraded', () => {
    it('is reported while up and the pool runs above the utilisation threshold, judged when read', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, OPTIONS);
      await probe(check);
      check.util = 0.9;
      assert.equal(monitor.report('api').status, 'up', 'at the threshold is not above it');
      check.util = 0.95;
      const report = monitor.report('api');
      assert.equal(report.status, 'degraded');
      assert.equal(report.reason, 'pool utilisation 95% above 90%');
      assert.equal(report.details?.poolUtilisation, 95);
      check.util = 0.5;
      assert.equal(monitor.report('api').status, 'up', 'recovers without a probe');
    });

    it('is reported while up and the error rate passes its threshold', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, OPTIONS);
      await probe(check);
      check.errors = undefined;
      assert.equal(monitor.report('api').status, 'up', 'no verdict without enough calls');
      check.errors = 0.5;
      assert.equal(monitor.report('api').status, 'up');
      check.errors = 0.6;
      assert.equal(monitor.report('api').status, 'degraded');
      assert.equal(monitor.report('api').reason, 'error rate 60% above 50%');
      check.util = 1;
      assert.equal(
        monitor.report('api').reason,
        'pool utilisation 100% above 90%; error rate 60% above 50%',
      );
    });

    it('is judged at each probe too', async () => {
      const check = new ScriptedCheck();
      const changes: HealthStatusChange[] = [];
      monitor.onStatusChange((change) => changes.push(change));
      monitor.add(check, OPTIONS);
      check.util = 0.99;
      await probe(check);
      assert.deepEqual(changes, [{ name: 'api', from: 'unknown', to: 'degraded' }]);
    });

    it('never hides down or unknown', async () => {
      const check = new ScriptedCheck().fail();
      check.util = 1;
      check.errors = 1;
      monitor.add(check, OPTIONS);
      assert.equal(monitor.report('api').status, 'unknown');
      await probe(check, 3);
      assert.equal(monitor.report('api').status, 'down');
    });

    it('ignores signals that throw or are not numbers', async () => {
      const check = new ScriptedCheck();
      check.utilisation = () => {
        throw new Error('pool gone');
      };
      check.errorRate = () => Number.NaN;
      monitor.add(check, OPTIONS);
      await probe(check);
      assert.equal(monitor.report('api').status, 'up');
    });
  });

  describe('history', () => {
    it('keeps the last `history` results, oldest first, with time, latency and error', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, OPTIONS);
      for (let i = 0; i < 7; i++) {
        const gate = deferred();
        check.behaviour = () => gate.promise;
        const done = monitor.checkNow('api');
        await clock.tickAsync(10 + i);
        if (i % 2 === 0) gate.resolve();
        else gate.reject(new Error(`failure ${i}`));
        await done;
        await clock.tickAsync(1000);
      }
      const { history } = monitor.report('api');
      assert.equal(history.length, 5);
      assert.deepEqual(
        history.map((r) => [r.ok, r.latencyMs, r.error]),
        [
          [true, 12, undefined],
          [false, 13, 'failure 3'],
          [true, 14, undefined],
          [false, 15, 'failure 5'],
          [true, 16, undefined],
        ],
      );
      for (let i = 1; i < history.length; i++) assert.ok(history[i]!.at > history[i - 1]!.at);
      assert.equal(history[4]!.at, Date.now() - 1000);
      assert.ok(!('error' in history[0]!), 'successes carry no error key');
    });

    it('never holds credentials from URLs in error messages', async () => {
      const check = new ScriptedCheck().fail(
        'connect to redis://app:hunter2@cache.internal:6379 failed',
      );
      monitor.add(check, OPTIONS);
      await probe(check);
      const report = monitor.report('api');
      assert.equal(
        report.history[0]?.error,
        'connect to redis://app:***@cache.internal:6379 failed',
      );
      assert.ok(!JSON.stringify(report).includes('hunter2'));
    });

    it('is a copy: callers cannot change it', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, OPTIONS);
      await probe(check);
      const history = monitor.report('api').history as unknown[];
      history.pop();
      assert.equal(monitor.report('api').history.length, 1);
    });
  });

  describe('probe timeout', () => {
    it('aborts the signal and counts as a failure with "timed out after Nms"', async () => {
      const check = new ScriptedCheck().hang();
      monitor.add(check, { ...OPTIONS, unhealthyThreshold: 1 });
      const done = monitor.checkNow('api');
      await clock.tickAsync(99);
      assert.equal(check.signals[0]?.aborted, false);
      await clock.tickAsync(1);
      await done;
      const signal = check.signals[0]!;
      assert.equal(signal.aborted, true);
      assert.ok(isTimeoutError(signal.reason));
      const report = monitor.report('api');
      assert.equal(report.status, 'down');
      assert.equal(report.reason, 'timed out after 100ms');
      assert.deepEqual(
        report.history.map((r) => [r.ok, r.latencyMs, r.error]),
        [[false, 100, 'timed out after 100ms']],
      );
    });

    it('drops the late outcome of a probe that ignored its signal', async () => {
      const check = new ScriptedCheck();
      const late = deferred();
      check.behaviour = () => late.promise;
      monitor.add(check, OPTIONS);
      const done = monitor.checkNow('api');
      await clock.tickAsync(100);
      await done;
      late.resolve();
      await clock.tickAsync(0);
      assert.equal(monitor.report('api').history.length, 1);
      assert.equal(monitor.report('api').status, 'unknown');
    });

    it('does not abort a probe that succeeds', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, OPTIONS);
      await probe(check);
      await clock.tickAsync(1000);
      assert.equal(check.signals[0]?.aborted, false);
    });
  });

  describe('background schedule', () => {
    it('probes every check at start, then `interval` after each probe ends', async () => {
      const a = new ScriptedCheck('a');
      const b = new ScriptedCheck('b');
      monitor.add(a, OPTIONS);
      monitor.add(b, { ...OPTIONS, interval: 300 });
      monitor.start();
      assert.deepEqual([a.probes, b.probes], [1, 1]);
      await clock.tickAsync(299);
      assert.deepEqual([a.probes, b.probes], [1, 1]);
      await clock.tickAsync(1);
      assert.deepEqual([a.probes, b.probes], [1, 2]);
      await clock.tickAsync(700);
      assert.deepEqual([a.probes, b.probes], [2, 4]);
      monitor.start();
      assert.deepEqual([a.probes, b.probes], [2, 4], 'start() is idempotent');
    });

    it('never overlaps a slow probe with the next one', async () => {
      const check = new ScriptedCheck();
      const slow = deferred();
      check.behaviour = () => slow.promise;
      monitor.add(check, { ...OPTIONS, interval: 100, timeout: 10_000 });
      monitor.start();
      await clock.tickAsync(5000);
      assert.equal(check.probes, 1, 'still waiting for the first probe');
      const joined = monitor.checkNow('api');
      assert.equal(check.probes, 1, 'checkNow joins the running probe');
      check.pass();
      slow.resolve();
      await joined;
      assert.equal(check.probes, 1);
      await clock.tickAsync(99);
      assert.equal(check.probes, 1);
      await clock.tickAsync(1);
      assert.equal(check.probes, 2);
    });

    it('reschedules after checkNow, so a manual probe is not followed by an immediate one', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, OPTIONS);
      monitor.start();
      await clock.tickAsync(900);
      await monitor.checkNow();
      assert.equal(check.probes, 2);
      await clock.tickAsync(999);
      assert.equal(check.probes, 2);
      await clock.tickAsync(1);
      assert.equal(check.probes, 3);
    });

    it('holds one timer per check at any time: the probe timeout or the interval', async () => {
      const a = new ScriptedCheck('a');
      const b = new ScriptedCheck('b').hang();
      monitor.add(a, OPTIONS);
      monitor.add(b, OPTIONS);
      monitor.start();
      for (const step of [0, 0, 50, 50, 900, 100, 1000, 5000]) {
        await clock.tickAsync(step);
        assert.equal(clock.countTimers(), 2, `after ${Date.now() - 1_000_000}ms`);
      }
      assert.ok(a.probes >= 5 && b.probes >= 5);
    });
  });

  describe('checks added from code', () => {
    it('probe at once when the monitor runs, and dispose() removes them', async () => {
      monitor.start();
      const check = new ScriptedCheck('queue');
      const handle = monitor.add(check, OPTIONS);
      assert.equal(check.probes, 1);
      await clock.tickAsync(0);
      assert.equal(monitor.report('queue').status, 'up');
      handle.dispose();
      handle.dispose();
      assert.deepEqual(monitor.reports(), []);
      assert.equal(clock.countTimers(), 0);
      await clock.tickAsync(5000);
      assert.equal(check.probes, 1);
      assert.throws(() => monitor.report('queue'), /no health check named "queue"/);
      monitor.add(new ScriptedCheck('queue'), OPTIONS);
      assert.equal(monitor.report('queue').status, 'unknown', 'the name is free again');
    });

    it('dispose() aborts a running probe and drops its outcome', async () => {
      const check = new ScriptedCheck().hang();
      const handle = monitor.add(check, OPTIONS);
      const done = monitor.checkNow('api');
      handle.dispose();
      await done;
      assert.equal(check.signals[0]?.aborted, true);
      assert.equal(clock.countTimers(), 0);
    });

    it('refuses a duplicate name', () => {
      monitor.add(new ScriptedCheck('db'), OPTIONS);
      assert.throws(
        () => monitor.add(new ScriptedCheck('db'), OPTIONS),
        (err: unknown) =>
          err instanceof InvalidArgumentError &&
          err.message === 'a health check named "db" is already registered',
      );
    });

    it('refuses malformed checks and options, naming the option and value', () => {
      const cases: [HealthCheck, HealthCheckOptions, RegExp][] = [
        [new ScriptedCheck(''), OPTIONS, /name must be a non-empty string/],
        [
          { name: 'x', kind: 'http', critical: 'yes', probe: () => Promise.resolve() } as never,
          OPTIONS,
          /health check "x": critical must be a boolean, got yes/,
        ],
        [
          { name: 'x', kind: 'http', critical: true } as never,
          OPTIONS,
          /health check "x": probe must be a function/,
        ],
        [new ScriptedCheck(), { ...OPTIONS, interval: 0 }, /"api": interval must be .* got 0/],
        [new ScriptedCheck(), { ...OPTIONS, timeout: Infinity }, /timeout must be .* got Infinity/],
        [
          new ScriptedCheck(),
          { ...OPTIONS, unhealthyThreshold: 1.5 },
          /unhealthyThreshold must be an integer in \[1, \d+\], got 1.5/,
        ],
        [
          new ScriptedCheck(),
          { ...OPTIONS, history: 101 },
          /history must be .*\[1, 100\], got 101/,
        ],
        [
          new ScriptedCheck(),
          { ...OPTIONS, degraded: { poolUtilisation: 120, errorRate: 50 } },
          /degraded.poolUtilisation must be a percent in \[0, 100\], got 120/,
        ],
      ];
      for (const [check, options, message] of cases) {
        assert.throws(
          () => monitor.add(check, options),
          (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message),
          String(message),
        );
      }
      assert.deepEqual(monitor.reports(), []);
    });

    it('take their details from the check', async () => {
      const check = Object.assign(new ScriptedCheck(), {
        details: () => ({ origin: 'http://payments:8080', size: 3 }),
      });
      monitor.add(check, OPTIONS);
      await probe(check);
      assert.deepEqual(monitor.report('api').details, {
        consecutiveSuccesses: 1,
        consecutiveFailures: 0,
        poolUtilisation: 0,
        origin: 'http://payments:8080',
        size: 3,
      });
    });
  });

  describe('onStatusChange', () => {
    it('announces every change once, the new status in place', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, { ...OPTIONS, unhealthyThreshold: 1, healthyThreshold: 1 });
      const seen: [HealthStatusChange, string][] = [];
      const handle = monitor.onStatusChange((change) =>
        seen.push([change, monitor.report(change.name).status]),
      );
      await probe(check);
      await probe(check);
      check.util = 1;
      monitor.report('api');
      monitor.reports();
      check.util = 0;
      check.fail();
      await probe(check);
      check.pass();
      await probe(check);
      handle.dispose();
      check.fail();
      await probe(check);
      assert.deepEqual(
        seen.map(([c, now]) => `${c.name}:${c.from}>${c.to}=${now}`),
        [
          'api:unknown>up=up',
          'api:up>degraded=degraded',
          'api:degraded>down=down',
          'api:down>up=up',
        ],
      );
    });

    it('survives a listener that throws, warning once', async () => {
      const warnings: string[] = [];
      const original = process.emitWarning;
      process.emitWarning = ((message: string) => {
        warnings.push(message);
      }) as typeof process.emitWarning;
      try {
        const check = new ScriptedCheck();
        monitor.add(check, { ...OPTIONS, unhealthyThreshold: 1 });
        const seen: string[] = [];
        monitor.onStatusChange(() => {
          throw new Error('listener bug');
        });
        monitor.onStatusChange((change) => seen.push(change.to));
        await probe(check);
        check.fail();
        await probe(check);
        assert.deepEqual(seen, ['up', 'down']);
        assert.equal(warnings.length, 1);
        assert.match(warnings[0]!, /listener bug/);
      } finally {
        process.emitWarning = original;
      }
    });
  });

  describe('readiness', () => {
    it('is ready with no checks, and not while shutting down', () => {
      assert.deepEqual(monitor.readiness({ shuttingDown: false }), {
        ready: true,
        status: 'up',
        checks: [],
      });
      assert.equal(monitor.readiness({ shuttingDown: true }).ready, false);
    });

    it('waits for every critical check to be known; non-critical ones never block', async () => {
      const db = new ScriptedCheck('db');
      const search = new ScriptedCheck('search', false).fail();
      monitor.add(db, OPTIONS);
      monitor.add(search, OPTIONS);
      let readiness = monitor.readiness({ shuttingDown: false });
      assert.equal(readiness.ready, false);
      assert.equal(readiness.status, 'unknown');
      assert.deepEqual(
        readiness.checks.map((c) => [c.name, c.status, c.critical]),
        [
          ['db', 'unknown', true],
          ['search', 'unknown', false],
        ],
      );
      await probe(db);
      assert.deepEqual(monitor.readiness({ shuttingDown: false }).ready, true);
      await probe(search, 3);
      readiness = monitor.readiness({ shuttingDown: false });
      assert.deepEqual([readiness.ready, readiness.status], [true, 'degraded']);
      assert.equal(monitor.readiness({ shuttingDown: true }).ready, false);
    });

    it('stays ready while a critical check is degraded, and fails when it is down', async () => {
      const db = new ScriptedCheck('db');
      monitor.add(db, { ...OPTIONS, unhealthyThreshold: 1 });
      await probe(db);
      db.util = 1;
      let readiness = monitor.readiness({ shuttingDown: false });
      assert.deepEqual([readiness.ready, readiness.status], [true, 'degraded']);
      db.fail();
      await probe(db);
      readiness = monitor.readiness({ shuttingDown: false });
      assert.deepEqual([readiness.ready, readiness.status], [false, 'down']);
    });
  });

  describe('close', () => {
    it('clears every timer, aborts running probes and is idempotent', async () => {
      const idle = new ScriptedCheck('idle');
      const busy = new ScriptedCheck('busy').hang();
      monitor.add(idle, OPTIONS);
      monitor.add(busy, OPTIONS);
      monitor.start();
      await clock.tickAsync(0);
      assert.ok(clock.countTimers() > 0);
      const pending = monitor.checkNow('busy');
      monitor.close();
      await pending;
      assert.equal(clock.countTimers(), 0);
      assert.equal(busy.signals[0]?.aborted, true);
      monitor.close();
      await clock.tickAsync(10_000);
      assert.deepEqual([idle.probes, busy.probes], [1, 1]);
    });

    it('keeps the last reports readable and refuses new work', async () => {
      const check = new ScriptedCheck();
      monitor.add(check, OPTIONS);
      await probe(check);
      monitor.close();
      assert.equal(monitor.report('api').status, 'up');
      await monitor.checkNow();
      assert.equal(check.probes, 1);
      monitor.start();
      assert.equal(clock.countTimers(), 0);
      assert.throws(() => monitor.add(new ScriptedCheck('late'), OPTIONS), /monitor is closed/);
    });
  });
});
