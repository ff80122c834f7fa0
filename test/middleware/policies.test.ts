import assert from 'node:assert/strict';
import http from 'node:http';
import FakeTimers from '@sinonjs/fake-timers';
import express from 'express';
import request from 'supertest';
import {
  ConfigError,
  InvalidArgumentError,
  isBreakerOpenError,
  isTimeoutError,
  resilience,
  type ResilienceConfigInput,
  type ResilienceMiddleware,
} from '../../lib/index.js';
import { json, listen, makeApp } from '../helpers/apps.js';
import { deferred, eventually, until, type Deferred } from '../helpers/deferred.js';
import { metricValue } from '../helpers/metrics.js';

describe('resilience() policies through Express 5', () => {
  let r: ResilienceMiddleware | undefined;
  let clock: ReturnType<typeof FakeTimers.install> | undefined;
  const servers: { close(): Promise<void> }[] = [];

  const create = (config: ResilienceConfigInput, options?: Parameters<typeof resilience>[1]) =>
    (r = resilience(config, options));
  const serve = async (handler: unknown) => {
    const s = await listen(handler as http.RequestListener);
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

  describe('timeout', () => {
    beforeEach(() => {
      clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    });

    it('force-releases the slot of a handler that never ends, after releaseGrace, and counts it', async () => {
      create({
        middleware: {
          routes: [
            {
              name: 'hang',
              match: '/hang',
              timeout: { duration: '1s' },
              bulkhead: { maxConcurrent: 1, maxQueue: 0, releaseGrace: '10s' },
            },
          ],
        },
      });
      const entered = deferred();
      const app = makeApp('express5', r!, { '/hang': () => entered.resolve() });
      const server = await serve(app);
      const pending = request(server.url)
        .get('/hang')
        .then((res) => res.status);
      await entered.promise;
      await clock!.tickAsync(1000);
      assert.equal(await pending, 504);
      // The handler still holds the only slot: the next request is turned away.
      assert.equal((await request(server.url).get('/hang')).status, 503);
      await clock!.tickAsync(10_000);
      assert.equal(await metric('resilience_bulkhead_forced_releases_total', { route: 'hang' }), 1);
      assert.equal(await metric('resilience_bulkhead_active', { route: 'hang' }), 0);
    });

    it('aborts req.resilience.signal with a TimeoutError on the deadline', async () => {
      create({ middleware: { defaults: { timeout: { duration: '500ms' } } } });
      const aborted = deferred<unknown>();
      const app = makeApp('express5', r!, {
        '/watch': (req) => {
          req.resilience!.signal.addEventListener('abort', () =>
            aborted.resolve(req.resilience!.signal.reason),
          );
        },
      });
      const server = await serve(app);
      const pending = request(server.url)
        .get('/watch')
        .then((res) => res.status);
      await until(() => clock!.countTimers() > 0, 'deadline timer');
      await clock!.tickAsync(500);
      assert.equal(await pending, 504);
      assert.ok(isTimeoutError(await aborted.promise));
    });

    it('aborts the signal when the client disconnects and releases the slot when the handler ends', async () => {
      create({ middleware: { defaults: { bulkhead: { maxConcurrent: 2 } } } });
      const entered = deferred<{ signal: AbortSignal; end(): void }>();
      const app = makeApp('express5', r!, {
        '/long': (req, res) =>
          entered.resolve({ signal: req.resilience!.signal, end: () => res.end('late') }),
      });
      const server = await serve(app);
      const req = http.get(`${server.url}/long`);
      req.on('error', () => undefined);
      const { signal, end } = await entered.promise;
      assert.equal(await metric('resilience_bulkhead_active', { route: 'default' }), 1);
      req.destroy();
      await until(() => signal.aborted, 'abort on disconnect');
      assert.equal((signal.reason as { code?: string }).code, 'ERR_CLIENT_DISCONNECTED');
      assert.equal(await metric('resilience_bulkhead_active', { route: 'default' }), 1);
      end();
      assert.equal(await metric('resilience_bulkhead_active', { route: 'default' }), 0);
    });

    it('honours an incoming deadline header, capped by the route timeout, and ignores garbage', async () => {
      create({
        middleware: {
          deadlineHeader: { enabled: true, name: 'x-request-timeout-ms' },
          defaults: { timeout: { duration: '2s' } },
        },
      });
      const app = makeApp('express5', r!, {
        '/d': (req, res) => json(res, 200, { remaining: req.resilience!.remaining() }),
      });
      const remaining = async (header?: string) => {
        const req = request(app).get('/d');
        if (header !== undefined) req.set('x-request-timeout-ms', header);
        return (await req).body.remaining as number;
      };
      assert.equal(await remaining('250'), 250);
      assert.equal(await remaining('999999'), 2000);
      assert.equal(await remaining('soon'), 2000);
      assert.equal(await remaining('-5'), 2000);
      assert.equal(await remaining(), 2000);
    });
  });

  describe('bulkhead', () => {
    it('never exceeds maxConcurrent under 200 concurrent requests, bounds its queue and returns every slot', async () => {
      create({
        middleware: {
          routes: [
            {
              name: 'pool',
              match: '/work',
              bulkhead: { maxConcurrent: 10, maxQueue: 40, queueTimeout: '1m' },
            },
          ],
        },
      });
      let inFlight = 0;
      let maxInFlight = 0;
      const waiting: Deferred<void>[] = [];
      const app = makeApp('express5', r!, {
        '/work': async (_req, res) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          const gate = deferred();
          waiting.push(gate);
          await gate.promise;
          inFlight--;
          json(res, 200, { ok: true });
        },
      });
      const server = await serve(app);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 300 });
      const statuses: number[] = [];
      const calls = Array.from(
        { length: 200 },
        () =>
          new Promise<void>((resolve, reject) => {
            http
              .get(`${server.url}/work`, { agent }, (res) => {
                res.resume();
                res.on('end', () => {
                  statuses.push(res.statusCode!);
                  resolve();
                });
              })
              .on('error', reject);
          }),
      );
      await until(() => statuses.length === 150, '150 rejections');
      assert.deepEqual(
        statuses.filter((s) => s !== 503),
        [],
      );
      assert.equal(await metric('resilience_bulkhead_queued', { route: 'pool' }), 40);
      assert.equal(await metric('resilience_bulkhead_active', { route: 'pool' }), 10);
      // Release handlers one at a time; a queued request takes each freed slot.
      let released = 0;
      while (released < 50) {
        await until(() => waiting.length > 0, 'a handler');
        waiting.shift()!.resolve();
        released++;
        assert.ok(inFlight <= 10);
      }
      await Promise.all(calls);
      agent.destroy();
      assert.equal(maxInFlight, 10);
      assert.equal(statuses.filter((s) => s === 200).length, 50);
      assert.equal(await metric('resilience_bulkhead_active', { route: 'pool' }), 0);
      assert.equal(await metric('resilience_bulkhead_queued', { route: 'pool' }), 0);
      assert.equal(
        await metric('resilience_rejections_total', { route: 'pool', reason: 'bulkhead_full' }),
        150,
      );
    });

    it('turns a queued request away with 503 when its queue wait expires', async () => {
      clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      create({
        middleware: {
          routes: [
            {
              name: 'q',
              match: '/q',
              bulkhead: { maxConcurrent: 1, maxQueue: 3, queueTimeout: '100ms' },
            },
          ],
        },
      });
      const gate = deferred();
      const entered = deferred();
      const app = makeApp('express5', r!, {
        '/q': async (_req, res) => {
          entered.resolve();
          await gate.promise;
          json(res, 200, {});
        },
      });
      const server = await serve(app);
      const first = request(server.url)
        .get('/q')
        .then((res) => res.status);
      await entered.promise;
      const queued = [1, 2, 3].map(() =>
        request(server.url)
          .get('/q')
          .then((res) => res),
      );
      await eventually(
        async () => (await metric('resilience_bulkhead_queued', { route: 'q' })) === 3,
      );
      await clock.tickAsync(100);
      for (const res of await Promise.all(queued)) {
        assert.equal(res.status, 503);
        assert.equal(res.body.code, 'ERR_BULKHEAD_FULL');
      }
      assert.equal(
        await metric('resilience_rejections_total', {
          route: 'q',
          reason: 'bulkhead_queue_timeout',
        }),
        3,
      );
      gate.resolve();
      assert.equal(await first, 200);
    });
  });

  describe('breaker', () => {
    it('opens on failures, half-opens after the wait, and closes after successful probes', async () => {
      clock = FakeTimers.install({ toFake: ['Date'] });
      create({
        middleware: {
          routes: [
            {
              name: 'b',
              match: '/b',
              breaker: {
                window: { type: 'count', size: 10 },
                minimumCalls: 5,
                failureRate: 50,
                halfOpenAfter: '5s',
                halfOpenProbes: 2,
              },
            },
          ],
        },
      });
      let status = 500;
      const app = makeApp('express5', r!, { '/b': (_req, res) => json(res, status, {}) });
      for (let i = 0; i < 4; i++) await request(app).get('/b').expect(500);
      await request(app).get('/b').expect(500); // fifth call: 100% failures over 5 calls
      const open = await request(app).get('/b').expect(503);
      assert.equal(open.headers['retry-after'], '5');
      clock.tick(2000);
      assert.equal((await request(app).get('/b').expect(503)).headers['retry-after'], '3');
      clock.tick(3000);
      status = 200;
      await request(app).get('/b').expect(200);
      await request(app).get('/b').expect(200);
      assert.equal(await metric('resilience_breaker_state', { breaker: 'b', state: 'closed' }), 1);
      assert.equal(
        await metric('resilience_breaker_transitions_total', {
          breaker: 'b',
          from: 'closed',
          to: 'open',
        }),
        1,
      );
      assert.equal(
        await metric('resilience_breaker_transitions_total', {
          breaker: 'b',
          from: 'half-open',
          to: 'closed',
        }),
        1,
      );
    });

    it('counts 4xx as success and configured statuses as failures', async () => {
      create({
        middleware: {
          defaults: {
            breaker: {
              window: { type: 'consecutive', size: 3 },
              failureStatuses: ['5xx', '429'],
            },
          },
          routes: [{ name: 's', match: 'GET /s' }],
        },
      });
      let status = 404;
      const app = makeApp('express5', r!, { '/s': (_req, res) => json(res, status, {}) });
      for (let i = 0; i < 5; i++) await request(app).get('/s').expect(404);
      status = 429;
      for (let i = 0; i < 3; i++) await request(app).get('/s').expect(429);
      await request(app).get('/s').expect(503);
    });
  });

  describe('shadow mode (enforce: false)', () => {
    it('rejects nothing and counts every would-be rejection', async () => {
      clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      create({
        middleware: {
          defaults: {
            rateLimit: { enabled: true, enforce: false, limit: 1, window: '1m' },
            breaker: { enforce: false, window: { type: 'consecutive', size: 1 } },
            bulkhead: { enforce: false, maxConcurrent: 1, maxQueue: 0 },
            timeout: { enforce: false, duration: '1s' },
          },
          // One route over every path: one breaker, bulkhead and quota for the three paths.
          routes: [{ name: 'all', match: '/*' }],
        },
      });
      const gate = deferred();
      const entered = deferred();
      const app = makeApp('express5', r!, {
        '/fail': (_req, res) => json(res, 500, {}),
        '/hold': async (_req, res) => {
          entered.resolve();
          await gate.promise;
          json(res, 200, {});
        },
        '/ok': (_req, res) => json(res, 200, {}),
      });
      const server = await serve(app);
      await request(server.url).get('/fail').expect(500); // opens the breaker (shadow)
      const held = request(server.url)
        .get('/hold')
        .then((res) => res.status);
      await entered.promise;
      await request(server.url).get('/ok').expect(200); // limited, open and full: all shadow
      await clock.tickAsync(1000);
      gate.resolve();
      assert.equal(await held, 200);

      const shadow = (reason: string) =>
        metric('resilience_rejections_total', { route: 'all', reason, mode: 'shadow' });
      assert.equal(await shadow('rate_limited'), 2);
      assert.equal(await shadow('breaker_open'), 2);
      assert.equal(await shadow('bulkhead_full'), 1);
      assert.equal(await shadow('timeout'), 1);
      assert.equal(await metric('resilience_rejections_total', { mode: 'enforce' }), 0);
      assert.equal(
        await metric('resilience_rate_limit_decisions_total', {
          route: 'all',
          result: 'shadow_limited',
        }),
        2,
      );
      // Allowed decisions are counted on the hot path and published when the registry is read.
      assert.equal(
        await metric('resilience_rate_limit_decisions_total', {
          route: 'all',
          result: 'allowed',
        }),
        1,
      );
      assert.match(
        await r!.metrics.registry.metrics(),
        /resilience_rate_limit_decisions_total\{route="all",result="allowed"\} 1\n/,
      );
    });
  });

  describe('rate-limit keys', () => {
    const limited = (extra: ResilienceConfigInput['middleware'] = {}): ResilienceConfigInput => ({
      middleware: { ...extra, defaults: { rateLimit: { enabled: true, limit: 1, window: '1m' } } },
    });

    it('ignores X-Forwarded-For unless trust proxy says otherwise', async () => {
      create(limited());
      const app = makeApp('express5', r!, { '/x': (_req, res) => json(res, 200, {}) });
      await request(app).get('/x').set('X-Forwarded-For', '203.0.113.1').expect(200);
      await request(app).get('/x').set('X-Forwarded-For', '203.0.113.2').expect(429);
    });

    it('keys by the forwarded client when the proxy is trusted, grouping IPv6 by /56', async () => {
      create(limited({ trustProxy: 'loopback' }));
      const app = makeApp('express5', r!, { '/x': (_req, res) => json(res, 200, {}) }, (a) =>
        a.set?.('trust proxy', 'loopback'),
      );
      const from = (ip: string) => request(app).get('/x').set('X-Forwarded-For', ip);
      await from('203.0.113.1').expect(200);
      await from('203.0.113.2').expect(200);
      await from('203.0.113.1').expect(429);
      await from('2001:db8:1:100::1').expect(200);
      await from('2001:db8:1:1ff::2').expect(429); // same /56
      await from('2001:db8:1:200::1').expect(200); // next /56
      await from('::ffff:203.0.113.2').expect(429); // IPv4-mapped = 203.0.113.2
    });

    it('keys by a header, falling back to the address, and by a key generator from code', async () => {
      create(
        {
          middleware: {
            routes: [
              {
                name: 'h',
                match: '/h',
                rateLimit: { enabled: true, limit: 1, window: '1m', key: 'header:x-api-key' },
              },
              {
                name: 'f',
                match: '/f',
                rateLimit: { enabled: true, limit: 1, window: '1m', key: 'fn:tenant' },
              },
            ],
          },
        },
        { keyGenerators: { tenant: async (req) => String(req.headers['x-tenant'] ?? 'none') } },
      );
      const app = makeApp('express5', r!, {
        '/h': (_req, res) => json(res, 200, {}),
        '/f': (_req, res) => json(res, 200, {}),
      });
      await request(app).get('/h').set('x-api-key', 'a').expect(200);
      await request(app).get('/h').set('x-api-key', 'b').expect(200);
      await request(app).get('/h').set('x-api-key', 'a').expect(429);
      await request(app).get('/h').expect(200);
      await request(app).get('/h').expect(429);
      await request(app).get('/f').set('x-tenant', 't1').expect(200);
      await request(app).get('/f').set('x-tenant', 't2').expect(200);
      await request(app).get('/f').set('x-tenant', 't1').expect(429);
    });

    it('never limits allowlisted clients', async () => {
      create({
        middleware: {
          defaults: {
            rateLimit: { enabled: true, limit: 1, window: '1m', allowlist: ['127.0.0.0/8'] },
          },
        },
      });
      const app = makeApp('express5', r!, { '/x': (_req, res) => json(res, 200, {}) });
      for (let i = 0; i < 3; i++) await request(app).get('/x').expect(200);
      assert.equal(
        await metric('resilience_rate_limit_decisions_total', { result: 'allowlisted' }),
        3,
      );
    });

    it('sends legacy X-RateLimit headers only when asked', async () => {
      create({
        middleware: {
          defaults: { rateLimit: { enabled: true, limit: 5, window: '1m', legacyHeaders: true } },
        },
      });
      const app = makeApp('express5', r!, { '/x': (_req, res) => json(res, 200, {}) });
      const res = await request(app).get('/x').expect(200);
      assert.equal(res.headers['x-ratelimit-limit'], '5');
      assert.equal(res.headers['x-ratelimit-remaining'], '4');
      assert.ok(Number(res.headers['x-ratelimit-reset']) > Date.now() / 1000);
    });
  });

  describe('hooks and handles', () => {
    it('lets onReject render rejections with the headers already set', async () => {
      create(
        { middleware: { defaults: { rateLimit: { enabled: true, limit: 1, window: '1m' } } } },
        {
          onReject: (err, _req, res) => {
            res.statusCode = err.status;
            res.setHeader('content-type', 'text/plain');
            res.end(`custom ${err.code}`);
          },
        },
      );
      const app = makeApp('express5', r!, { '/x': (_req, res) => json(res, 200, {}) });
      await request(app).get('/x').expect(200);
      const res = await request(app).get('/x').expect(429);
      assert.equal(res.text, 'custom ERR_RATE_LIMITED');
      assert.ok(res.headers['retry-after']);
      assert.ok(res.headers['ratelimit']);
    });

    it('applies a named policy set to a router with r.policy(name)', async () => {
      create({
        middleware: {
          policies: { billing: { rateLimit: { enabled: true, limit: 1, window: '1m' } } },
        },
      });
      const app = express();
      app.use(r!);
      const billing = express.Router();
      billing.use(r!.policy('billing'));
      billing.get('/invoice', (req, res) => {
        res.json({ route: req.resilience?.route });
      });
      app.use('/billing', billing);
      app.get('/free', (_req, res) => {
        res.json({});
      });
      assert.equal((await request(app).get('/billing/invoice').expect(200)).body.route, 'billing');
      await request(app).get('/billing/invoice').expect(429);
      await request(app).get('/free').expect(200);
      await request(app).get('/free').expect(200);
      assert.throws(() => r!.policy('nope'), InvalidArgumentError);
    });

    it('runs any async function under a named policy with wrap(name, fn)', async () => {
      clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      create({
        middleware: {
          policies: {
            upstream: {
              timeout: { duration: '1s' },
              breaker: { window: { type: 'consecutive', size: 2 } },
            },
          },
        },
      });
      const call = r!.wrap('upstream', async (x: number, gate?: Promise<void>) => {
        if (gate) await gate;
        if (x < 0) throw new Error('negative');
        return x * 2;
      });
      assert.equal(await call(21), 42);
      const hang = call(1, new Promise<void>(() => undefined));
      const expectation = assert.rejects(hang, (err) => isTimeoutError(err));
      await clock.tickAsync(1000);
      await expectation;
      await assert.rejects(call(-1), /negative/);
      await assert.rejects(call(1), (err) => isBreakerOpenError(err));
    });

    it('warns once when trustProxy disagrees with the app and when ip keys trust every proxy', async () => {
      const warnings: unknown[] = [];
      const logger = {
        warn: (obj: object) => warnings.push((obj as { code: string }).code),
        error: () => undefined,
      };
      create(
        {
          middleware: { trustProxy: true, defaults: { rateLimit: { enabled: true, limit: 100 } } },
        },
        { logger },
      );
      const app = makeApp('express5', r!, { '/x': (_req, res) => json(res, 200, {}) });
      await request(app).get('/x').expect(200);
      await request(app).get('/x').expect(200);
      assert.ok(warnings.includes('RESILIENCE_PERMISSIVE_TRUST_PROXY'));
      assert.equal(warnings.filter((c) => c === 'RESILIENCE_TRUST_PROXY_MISMATCH').length, 1);
    });
  });

  describe('start-up validation', () => {
    it('rejects invalid policies with a message naming the route and field', () => {
      assert.throws(
        () =>
          resilience({
            middleware: {
              routes: [
                {
                  name: 'bad',
                  match: 'GET /x',
                  breaker: { minimumCalls: 500, window: { type: 'count', size: 10 } },
                },
              ],
            },
          }),
        (err) => err instanceof ConfigError && /routes\[0\].*bad.*minimumCalls/.test(err.message),
      );
      assert.throws(
        () => resilience({ middleware: { defaults: { bulkhead: { maxConcurrent: 0 } } } }),
        (err) => err instanceof ConfigError && /maxConcurrent/.test(err.message),
      );
      assert.throws(
        () => resilience({ middleware: { defaults: { timeout: { duration: 'soon' } } } }),
        (err) => err instanceof ConfigError && /timeout\.duration/.test(err.message),
      );
    });

    it('rejects a key generator name that options do not provide', () => {
      assert.throws(
        () =>
          resilience({
            middleware: { defaults: { rateLimit: { enabled: true, key: 'fn:tenant' } } },
          }),
        (err) => err instanceof InvalidArgumentError && /keyGenerators\.tenant/.test(err.message),
      );
    });
  });
});
