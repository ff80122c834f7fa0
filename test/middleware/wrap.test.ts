import assert from 'node:assert/strict';
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
import { json, makeApp } from '../helpers/apps.js';
import { deferred } from '../helpers/deferred.js';
import { metricValue } from '../helpers/metrics.js';

describe('r.wrap(name, fn)', () => {
  let r: ResilienceMiddleware | undefined;
  let clock: ReturnType<typeof FakeTimers.install> | undefined;

  const active = () =>
    metricValue(r!.metrics.registry, 'resilience_bulkhead_active', { route: 'call' });
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

  it('times out at its deadline, frees the slot then, and ignores the late answer', async () => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    create({ timeout: { duration: '1s' }, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const late = deferred<string>();
    const call = r!.wrap('call', () => late.promise);
    const outcome = assert.rejects(call(), (err) => isTimeoutError(err) && err.status === 504);
    await clock.tickAsync(999);
    assert.equal(await active(), 1);
    await clock.tickAsync(1);
    await outcome;
    assert.equal(await active(), 0);
    assert.equal(await rejections('timeout'), 1);
    late.resolve('too late');
    await clock.tickAsync(0);
    assert.equal(await active(), 0);
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
