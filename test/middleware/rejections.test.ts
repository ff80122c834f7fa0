import assert from 'node:assert/strict';
import FakeTimers from '@sinonjs/fake-timers';
import request from 'supertest';
import { resilience, type ResilienceMiddleware } from '../../lib/index.js';
import { APP_KINDS, json, listen, makeApp } from '../helpers/apps.js';
import { deferred } from '../helpers/deferred.js';
import { metricValue } from '../helpers/metrics.js';

const PROBLEM = /^application\/problem\+json/;

for (const kind of APP_KINDS) {
  describe(`every rejection path on ${kind}`, () => {
    let r: ResilienceMiddleware | undefined;
    let clock: ReturnType<typeof FakeTimers.install> | undefined;

    afterEach(async () => {
      clock?.uninstall();
      clock = undefined;
      await r?.close();
      r = undefined;
    });

    it('answers 429 problem+json with Retry-After and the IETF RateLimit headers', async () => {
      r = resilience({
        middleware: {
          routes: [
            {
              name: 'limited',
              match: '/limited',
              rateLimit: { enabled: true, limit: 2, window: '1m' },
            },
          ],
        },
      });
      const app = makeApp(kind, r, { '/limited': (_req, res) => json(res, 200, { ok: true }) });

      const first = await request(app).get('/limited').expect(200);
      assert.equal(first.headers['ratelimit-policy'], '"limited";q=2;w=60');
      assert.match(first.headers['ratelimit'] as string, /^"limited";r=1;t=\d+$/);
      await request(app).get('/limited').expect(200);
      const res = await request(app).get('/limited').expect(429);

      assert.match(res.headers['content-type'] as string, PROBLEM);
      assert.ok(Number(res.headers['retry-after']) >= 1);
      assert.match(res.headers['ratelimit'] as string, /^"limited";r=0;t=\d+$/);
      assert.equal(res.body.type, 'urn:express-resilience:problem:rate-limited');
      assert.equal(res.body.status, 429);
      assert.equal(res.body.code, 'ERR_RATE_LIMITED');
      assert.equal(res.body.route, 'limited');
      assert.equal(res.body.title, 'Too Many Requests');
      assert.equal(res.body.retryAfter, Number(res.headers['retry-after']));
      assert.equal(
        await metricValue(r.metrics.registry, 'resilience_rejections_total', {
          route: 'limited',
          reason: 'rate_limited',
          mode: 'enforce',
        }),
        1,
      );
    });

    it('answers 503 problem+json with Retry-After while the breaker is open', async () => {
      r = resilience({
        middleware: {
          routes: [
            {
              name: 'flaky',
              match: '/flaky',
              breaker: {
                window: { type: 'count', size: 4 },
                minimumCalls: 4,
                failureRate: 50,
                halfOpenAfter: '30s',
              },
            },
          ],
        },
      });
      const app = makeApp(kind, r, { '/flaky': (_req, res) => json(res, 500, { boom: true }) });
      for (let i = 0; i < 4; i++) await request(app).get('/flaky').expect(500);

      const res = await request(app).get('/flaky').expect(503);
      assert.match(res.headers['content-type'] as string, PROBLEM);
      assert.equal(res.headers['retry-after'], '30');
      assert.equal(res.body.code, 'ERR_BREAKER_OPEN');
      assert.equal(res.body.type, 'urn:express-resilience:problem:breaker-open');
      assert.equal(res.body.retryAfter, 30);
      assert.equal(
        await metricValue(r.metrics.registry, 'resilience_breaker_state', {
          breaker: 'flaky',
          state: 'open',
        }),
        1,
      );
    });

    it('answers 503 problem+json when the bulkhead and its queue are full', async () => {
      r = resilience({
        middleware: {
          routes: [
            { name: 'narrow', match: '/narrow', bulkhead: { maxConcurrent: 1, maxQueue: 0 } },
          ],
        },
      });
      const entered = deferred();
      const gate = deferred();
      const app = makeApp(kind, r, {
        '/narrow': async (_req, res) => {
          entered.resolve();
          await gate.promise;
          json(res, 200, { ok: true });
        },
      });
      const server = await listen(app);
      try {
        const held = request(server.url).get('/narrow');
        const heldDone = held.then((res) => res.status);
        await entered.promise;
        const res = await request(server.url).get('/narrow').expect(503);
        assert.match(res.headers['content-type'] as string, PROBLEM);
        assert.equal(res.headers['retry-after'], '1');
        assert.equal(res.body.code, 'ERR_BULKHEAD_FULL');
        assert.equal(res.body.type, 'urn:express-resilience:problem:bulkhead-full');
        gate.resolve();
        assert.equal(await heldDone, 200);
      } finally {
        await server.close();
      }
    });

    it('answers 504 problem+json when the handler misses its deadline', async () => {
      clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      r = resilience({
        middleware: { routes: [{ name: 'slow', match: '/slow', timeout: { duration: '2s' } }] },
      });
      const entered = deferred();
      const app = makeApp(kind, r, {
        '/slow': () => {
          entered.resolve();
        },
      });
      const server = await listen(app);
      try {
        const pending = request(server.url).get('/slow');
        const done = pending.then((res) => res);
        await entered.promise;
        await clock.tickAsync(2000);
        const res = await done;
        assert.equal(res.status, 504);
        assert.match(res.headers['content-type'] as string, PROBLEM);
        assert.equal(res.body.code, 'ERR_TIMEOUT');
        assert.equal(res.body.type, 'urn:express-resilience:problem:timeout');
        assert.equal(res.body.route, 'slow');
      } finally {
        await server.close();
      }
    });
  });
}
