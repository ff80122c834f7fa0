import assert from 'node:assert/strict';
import http from 'node:http';
import FakeTimers from '@sinonjs/fake-timers';
import express from 'express';
import request from 'supertest';
import {
  resilience,
  type ResilienceConfigInput,
  type ResilienceMiddleware,
} from '../../lib/index.js';
import { json, listen, makeApp } from '../helpers/apps.js';
import { deferred, eventually } from '../helpers/deferred.js';
import { metricValue, seriesCount } from '../helpers/metrics.js';

describe('resilience() pipeline', () => {
  let r: ResilienceMiddleware | undefined;
  let clock: ReturnType<typeof FakeTimers.install> | undefined;
  const servers: { close(): Promise<void> }[] = [];

  const create = (config: ResilienceConfigInput, options?: Parameters<typeof resilience>[1]) =>
    (r = resilience(config, options));
  const serve = async (handler: http.RequestListener) => {
    const s = await listen(handler);
    servers.push(s);
    return s;
  };
  const metric = (name: string, labels: Record<string, string>) =>
    metricValue(r!.metrics.registry, name, labels);

  afterEach(async () => {
    clock?.uninstall();
    clock = undefined;
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await r?.close();
    r = undefined;
  });

  describe('routing and req.resilience', () => {
    it('matches routes first-match-wins and labels metrics with the route name', async () => {
      create({
        middleware: {
          routes: [
            { name: 'order', match: 'GET /orders/:id' },
            { name: 'orders-any', match: '/orders/*' },
            { name: 'admin', match: ['POST', 'PUT'].join(',') + ' /admin' },
          ],
        },
      });
      const app = express();
      app.use(r!);
      app.all('/{*rest}', (req, res) => {
        res.json({ route: req.resilience?.route, remaining: req.resilience?.remaining() });
      });
      assert.equal((await request(app).get('/orders/42')).body.route, 'order');
      assert.equal((await request(app).delete('/orders/42')).body.route, 'orders-any');
      assert.equal((await request(app).get('/orders')).body.route, 'orders-any');
      assert.equal((await request(app).put('/admin')).body.route, 'admin');
      assert.equal((await request(app).get('/admin')).body.route, 'default');
      const { remaining } = (await request(app).get('/x')).body;
      assert.ok(remaining > 0 && remaining <= 5000);
      assert.equal(
        await metric('resilience_http_request_duration_seconds_count', {
          route: 'order',
          method: 'GET',
          status_class: '2xx',
        }),
        1,
      );
    });

    it('lets excluded paths bypass every policy and serves /metrics, /healthz and /readyz', async () => {
      create({
        middleware: {
          exclude: ['/static/*', '/ping'],
          defaults: { rateLimit: { enabled: true, limit: 1, window: '1m' } },
        },
      });
      const app = makeApp('express5', r!, {
        '/ping': (req, res) => json(res, 200, { policed: req.resilience !== undefined }),
        '/static/app.js': (req, res) => json(res, 200, { policed: req.resilience !== undefined }),
      });
      for (let i = 0; i < 3; i++) {
        assert.deepEqual((await request(app).get('/ping').expect(200)).body, { policed: false });
        await request(app).get('/static/app.js').expect(200);
      }
      const metrics = await request(app).get('/metrics').expect(200);
      assert.match(metrics.headers['content-type'] as string, /^text\/plain/);
      assert.match(metrics.text, /# TYPE resilience_rejections_total counter/);
      assert.deepEqual((await request(app).get('/healthz').expect(200)).body, { status: 'ok' });
      const ready = (await request(app).get('/readyz').expect(200)).body;
      assert.equal(ready.status, 'ready');
      assert.deepEqual(ready.checks, []);
    });

    it('does not create new metric series for a flood of distinct URLs', async () => {
      // Default process metrics grow series of their own (GC kinds) and are not under test.
      create({
        middleware: { routes: [{ name: 'item', match: 'GET /items/:id' }] },
        metrics: { defaultMetrics: false },
      });
      const app = makeApp('express5', r!, {
        '/items/:id': (_req, res) => json(res, 200, {}),
        '/other/:id': (_req, res) => json(res, 404, {}),
      });
      const server = await serve(app);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
      const get = (path: string) =>
        new Promise<void>((resolve, reject) => {
          http
            .get(server.url + path, { agent }, (res) => {
              res.resume();
              res.on('end', resolve);
            })
            .on('error', reject);
        });
      await get('/items/warm');
      await get('/other/warm');
      const before = await seriesCount(r!.metrics.registry);
      for (let batch = 0; batch < 100; batch++) {
        const calls: Promise<void>[] = [];
        for (let i = 0; i < 100; i++) {
          const n = batch * 100 + i;
          calls.push(get(n % 2 === 0 ? `/items/${n}` : `/other/${n}?q=${n}`));
        }
        await Promise.all(calls);
      }
      agent.destroy();
      assert.equal(await seriesCount(r!.metrics.registry), before);
      assert.equal(
        await metric('resilience_http_request_duration_seconds_count', { route: 'item' }),
        5001,
      );
    });
  });

  describe('timeout', () => {
    beforeEach(() => {
      clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    });

    it('sends one 504, swallows the late response and holds the slot until the handler ends', async () => {
      create({
        middleware: {
          routes: [
            {
              name: 'slow',
              match: '/slow',
              timeout: { duration: '1s' },
              bulkhead: { maxConcurrent: 5, maxQueue: 0 },
            },
          ],
        },
      });
      const entered = deferred();
      const gate = deferred();
      let handlerError: unknown;
      const app = express();
      app.use(r!);
      app.get('/slow', async (_req, res) => {
        entered.resolve();
        await gate.promise;
        try {
          res.status(200).set('x-late', '1').json({ late: true });
        } catch (err) {
          handlerError = err;
        }
      });
      const server = await serve(app as unknown as http.RequestListener);
      const pending = request(server.url)
        .get('/slow')
        .then((res) => res);
      await entered.promise;
      await clock!.tickAsync(1000);
      const res = await pending;
      assert.equal(res.status, 504);
      assert.equal(res.headers['x-late'], undefined);
      assert.equal(await metric('resilience_bulkhead_active', { route: 'slow' }), 1);

      gate.resolve();
      await eventually(
        async () => (await metric('resilience_bulkhead_active', { route: 'slow' })) === 0,
        'slot release',
      );
      assert.equal(handlerError, undefined, 'the late response must not throw');
      assert.equal(await metric('resilience_late_responses_total', { route: 'slow' }), 1);
      assert.equal(await metric('resilience_bulkhead_forced_releases_total', { route: 'slow' }), 0);
      assert.equal(
        await metric('resilience_rejections_total', { route: 'slow', reason: 'timeout' }),
        1,
      );
    });
  });
});
