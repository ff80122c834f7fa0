import assert from 'node:assert/strict';
import http from 'node:http';
import FakeTimers from '@sinonjs/fake-timers';
import request from 'supertest';
import {
  currentDeadline,
  isBreakerOpenError,
  isBulkheadFullError,
  isTimeoutError,
  resilience,
  type ResilienceMiddleware,
} from '../../lib/index.js';
import { json, listen, makeApp } from '../helpers/apps.js';
import { deferred, eventually } from '../helpers/deferred.js';
import { metricValue } from '../helpers/metrics.js';

describe('r.wrap(name, fn)', () => {
  let r: ResilienceMiddleware | undefined;
  let clock: ReturnType<typeof FakeTimers.install> | undefined;

  const active = () =>
    metricValue(r!.metrics.registry, 'resilience_bulkhead_active', { route: 'call' });
  const forcedReleases = () =>
    metricValue(r!.metrics.registry, 'resilience_bulkhead_forced_releases_total', {
      route: 'call',
    });
  const rejections = (reason: string) =>
    metricValue(r!.metrics.registry, 'resilience_rejections_total', { route: 'call', reason });

  afterEach(async () => {
    clock?.uninstall();
    clock = undefined;
    await r?.close();
    r = undefined;
  });

  const create = (call: object) =>
    (r = resilience({ middleware: { policies: { call } }, metrics: { defaultMetrics: false } }));

  it('passes values, rejections and synchronous throws through, giving the slot back each time', async () => {
    create({ bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const call = r!.wrap('call', (x: number) => {
      if (x === 0) throw new Error('sync');
      if (x < 0) return Promise.reject(new Error('async'));
      return x > 10 ? Promise.resolve(x) : x;
    });
    assert.equal(await call(5), 5);
    assert.equal(await call(11), 11);
    await assert.rejects(call(0), /sync/);
    await assert.rejects(call(-1), /async/);
    assert.equal(await active(), 0);
    assert.equal(await call(1), 1, 'the single slot is free again');
  });

  it('rejects with BulkheadFullError when the slot and queue are taken, and queues otherwise', async () => {
    create({ bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
    const gate = deferred();
    const call = r!.wrap('call', async (wait: boolean) => {
      if (wait) await gate.promise;
      return 'ok';
    });
    const first = call(true);
    const queued = call(false);
    await assert.rejects(call(false), (err) => isBulkheadFullError(err));
    assert.equal(await rejections('bulkhead_full'), 1);
    gate.resolve();
    assert.deepEqual(await Promise.all([first, queued]), ['ok', 'ok']);
    assert.equal(await active(), 0);
  });

  it('times out at its deadline but holds the slot until fn settles, and ignores the late answer', async () => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    create({ timeout: { duration: '1s' }, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const late = deferred<string>();
    let running = 0;
    const call = r!.wrap('call', async () => {
      running++;
      try {
        return await late.promise;
      } finally {
        running--;
      }
    });
    const outcome = assert.rejects(call(), (err) => isTimeoutError(err) && err.status === 504);
    await clock.tickAsync(999);
    assert.equal(await active(), 1);
    await clock.tickAsync(1);
    await outcome;
    assert.equal(await rejections('timeout'), 1);
    // fn still runs: its slot is still taken, so a second call cannot run beside it.
    assert.equal(running, 1);
    assert.equal(await active(), 1);
    await assert.rejects(call(), (err) => isBulkheadFullError(err));
    late.resolve('too late');
    await clock.tickAsync(0);
    assert.equal(running, 0);
    assert.equal(await active(), 0);
    assert.equal(await forcedReleases(), 0);
  });

  it('force-releases the slot of an fn still running releaseGrace after its timeout, and counts it', async () => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    create({
      timeout: { duration: '1s' },
      bulkhead: { maxConcurrent: 1, maxQueue: 0, releaseGrace: '10s' },
    });
    const never = deferred<string>();
    const call = r!.wrap('call', () => never.promise);
    const outcome = assert.rejects(call(), (err) => isTimeoutError(err));
    await clock.tickAsync(1000);
    await outcome;
    await clock.tickAsync(9999);
    assert.equal(await active(), 1);
    assert.equal(await forcedReleases(), 0);
    await clock.tickAsync(1);
    assert.equal(await active(), 0);
    assert.equal(await forcedReleases(), 1);
    // Settling after all gives nothing back twice.
    never.resolve('at last');
    await clock.tickAsync(0);
    assert.equal(await active(), 0);
    assert.equal(clock.countTimers(), 0);
  });

  it('inside a request, is aborted with the request when the client goes away', async () => {
    r = resilience({
      middleware: {
        defaults: { timeout: { duration: '30s' } },
        policies: { call: { timeout: { duration: '10s' }, bulkhead: { maxConcurrent: 1 } } },
      },
      metrics: { defaultMetrics: false },
    });
    const entered = deferred<AbortSignal>();
    const outcome = deferred<unknown>();
    const call = r.wrap('call', () => {
      const signal = currentDeadline()!.signal;
      entered.resolve(signal);
      // Honours its signal, a moment later (as a real client library would).
      return new Promise((_resolve, reject) =>
        signal.addEventListener('abort', () => setImmediate(() => reject(signal.reason))),
      );
    });
    const server = await listen(
      makeApp('express5', r, {
        '/x': async (_req, res) => {
          await call().catch((err: unknown) => outcome.resolve(err));
          res.end();
        },
      }),
    );
    try {
      const req = http.get(`${server.url}/x`);
      req.on('error', () => undefined);
      const signal = await entered.promise;
      req.destroy();
      const err = await outcome.promise;
      assert.equal(signal.aborted, true);
      assert.equal((err as { code?: string }).code, 'ERR_CLIENT_DISCONNECTED');
      assert.equal(signal.reason, err);
      await eventually(async () => (await active()) === 0, 'the slot back once fn settled');
    } finally {
      await server.close();
    }
  });

  it('counts failures toward its breaker and is refused once it opens', async () => {
    create({ breaker: { window: { type: 'consecutive', size: 2 } } });
    const call = r!.wrap('call', async () => {
      throw new Error('down');
    });
    await assert.rejects(call(), /down/);
    await assert.rejects(call(), /down/);
    await assert.rejects(call(), (err) => isBreakerOpenError(err));
    assert.equal(await rejections('breaker_open'), 1);
  });

  it('inside a request, never outlives the request’s deadline', async () => {
    r = resilience({
      middleware: {
        defaults: { timeout: { duration: '200ms' } },
        policies: { call: { timeout: { duration: '10s' } } },
      },
      metrics: { defaultMetrics: false },
    });
    let remaining = Infinity;
    const call = r.wrap('call', async () => {
      remaining = currentDeadline()!.remaining();
      return 'ok';
    });
    const app = makeApp('express5', r, {
      '/x': async (_req, res) => json(res, 200, { value: await call() }),
    });
    const res = await request(app).get('/x');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(remaining <= 200, `the wrapped call had ${remaining} ms, more than the request`);
  });
});
