import assert from 'node:assert/strict';
import express from 'express';
import request from 'supertest';
import {
  InvalidArgumentError,
  ResourceUnavailableError,
  resilience,
  type ResilienceMiddleware,
} from '../../lib/index.js';
import { listen } from '../helpers/apps.js';
import { eventually } from '../helpers/deferred.js';
import { metricValue } from '../helpers/metrics.js';
import { startRedis } from '../helpers/redis-server.js';
import { closedPort, startUpstream, type Upstream } from '../helpers/upstream.js';

const TOKEN = 'a-long-enough-test-token';

describe('resources, health and metrics endpoints through the middleware', () => {
  let r: ResilienceMiddleware | undefined;
  let upstream: Upstream | undefined;

  afterEach(async () => {
    // Background health probes borrow members for a moment, so "nothing borrowed" is awaited;
    // and everything is closed whatever happens, so no monitor outlives its test.
    const closing = r;
    r = undefined;
    try {
      for (const name of closing?.resources.names() ?? []) {
        const resource = closing!.resources.get(name)!;
        await eventually(() => resource.stats().borrowed === 0, `${name}: nothing borrowed`);
      }
    } finally {
      await closing?.close({ grace: 0 });
      await upstream?.close();
      upstream = undefined;
    }
  });

  it('gives handlers the resources, with the inbound deadline sent upstream', async () => {
    upstream = await startUpstream();
    r = resilience({
      middleware: { routes: [{ name: 'proxy', match: 'GET /proxy', timeout: { duration: '2s' } }] },
      resources: {
        http: {
          catalog: {
            origin: upstream.origin,
            deadlinePropagation: { enabled: true, header: 'x-deadline-ms' },
            health: { interval: '1m' },
          },
        },
      },
    });
    const app = express();
    app.use(r);
    app.get('/proxy', async (req, res) => {
      const answer = await req
        .resilience!.resources.http('catalog')
        .request({ path: '/items', query: { q: 'x' } });
      res.json(answer.json());
    });
    const echo = (await request(app).get('/proxy').expect(200)).body;
    assert.equal(echo.path, '/items');
    const sent = Number(echo.headers['x-deadline-ms']);
    assert.ok(sent > 0 && sent <= 2000, `remaining deadline sent upstream: ${sent}`);
    assert.equal(
      await metricValue(r.metrics.registry, 'resilience_upstream_calls_total', {
        resource: 'catalog',
        outcome: 'success',
      }),
      1,
    );
    assert.throws(
      () => r!.resources.http('nope'),
      (err) => err instanceof InvalidArgumentError && /"catalog"/.test(err.message),
    );
    assert.throws(() => r!.resources.redis('catalog'), InvalidArgumentError);
  });

  it('fails readiness while a critical upstream is down, and recovers on its own', async () => {
    upstream = await startUpstream();
    upstream.setBehaviour('/healthz', { status: 503 });
    r = resilience({
      resources: {
        http: {
          payments: {
            origin: upstream.origin,
            health: { interval: '20ms', unhealthyThreshold: 1, healthyThreshold: 1 },
          },
          optional: {
            origin: `http://127.0.0.1:${await closedPort()}`,
            critical: false,
            health: { interval: '1m', unhealthyThreshold: 1 },
          },
        },
      },
    });
    await r.ready();
    const app = express();
    app.use(r);
    const down = await request(app).get('/readyz').expect(503);
    assert.equal(down.body.status, 'not-ready');
    const payments = down.body.checks.find((c: { name: string }) => c.name === 'payments');
    assert.equal(payments.status, 'down');
    assert.ok(payments.history.length >= 1);
    assert.equal(
      await metricValue(r.metrics.registry, 'resilience_resource_health', {
        resource: 'payments',
        status: 'down',
      }),
      1,
    );

    upstream.setBehaviour('/healthz', { status: 200 });
    await eventually(async () => (await request(app).get('/readyz')).status === 200, 'recovery');
    const up = await request(app).get('/readyz').expect(200);
    // A non-critical resource being down shows, but does not fail readiness.
    assert.equal(
      up.body.checks.find((c: { name: string }) => c.name === 'optional').status,
      'down',
    );
    await request(app).head('/readyz').expect(200);
  });

  it('turns /readyz 503 while Redis is down, fails calls fast, and recovers after a restart', async () => {
    const redis = await startRedis();
    try {
      r = resilience({
        resources: {
          redis: {
            cache: {
              url: redis.url,
              health: {
                interval: '20ms',
                timeout: '200ms',
                unhealthyThreshold: 1,
                healthyThreshold: 1,
              },
            },
          },
        },
      });
      await r.ready();
      const app = express();
      app.use(r);
      app.get('/get', async (req, res) => {
        try {
          res.json({ value: await req.resilience!.resources.redis('cache').command('GET', 'k') });
        } catch (err) {
          res.status(503).json({ code: (err as { code?: string }).code });
        }
      });
      await r.resources.redis('cache').command('SET', 'k', 'v');
      assert.deepEqual((await request(app).get('/get').expect(200)).body, { value: 'v' });
      await request(app).get('/readyz').expect(200);

      await redis.stop();
      await eventually(
        async () => (await request(app).get('/readyz')).status === 503,
        'readiness 503',
      );
      const failed = await request(app).get('/get').expect(503);
      assert.match(
        failed.body.code,
        /^ERR_(RESOURCE_UNAVAILABLE|TIMEOUT|BREAKER_OPEN|POOL_EXHAUSTED)$/,
      );

      await redis.restart();
      await eventually(
        async () => (await request(app).get('/readyz')).status === 200,
        'readiness back',
      );
      await eventually(async () => (await request(app).get('/get')).status === 200, 'calls back');
    } finally {
      await r?.close({ grace: 0 });
      r = undefined;
      await redis.close();
    }
  });

  it('hides health details unless enabled and authorised, and protects /metrics', async () => {
    r = resilience({
      health: { details: true, protect: { allowlist: [], token: TOKEN } },
      metrics: { protect: { allowlist: [], token: TOKEN } },
    });
    const app = express();
    app.use(r);
    const anonymous = await request(app).get('/readyz').expect(200);
    assert.deepEqual(anonymous.body, { status: 'ready' });
    const detailed = await request(app)
      .get('/readyz')
      .set('Authorization', `Bearer ${TOKEN}`)
      .expect(200);
    assert.ok(Array.isArray(detailed.body.checks));
    const denied = await request(app).get('/metrics').expect(401);
    assert.equal(denied.headers['www-authenticate'], 'Bearer');
    await request(app)
      .get('/metrics')
      .set('Authorization', 'Bearer wrong-token-of-some-length')
      .expect(401);
    await request(app).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
  });

  it('lets loopback scrape /metrics through an allowlist', async () => {
    r = resilience({ metrics: { protect: { allowlist: ['127.0.0.0/8', '::1'] } } });
    const app = express();
    app.use(r);
    const server = await listen(app as never);
    try {
      await request(server.url).get('/metrics').expect(200);
    } finally {
      await server.close();
    }
  });

  it('pools custom resources registered from code, with health and metrics', async () => {
    let created = 0;
    let destroyed = 0;
    r = resilience(
      {},
      {
        resources: {
          db: {
            kind: 'database',
            factory: {
              create: async () => ({
                id: ++created,
                query: async (sql: string) => `result of ${sql}`,
              }),
              destroy: async () => {
                destroyed++;
              },
            },
            pool: { min: 1, max: 2 },
            probe: async (member) => {
              await (member as { query(sql: string): Promise<string> }).query('SELECT 1');
            },
          },
        },
      },
    );
    await r.ready();
    const db = r.resources.custom<{ query(sql: string): Promise<string> }>('db');
    assert.equal(await db.use((conn) => conn.query('SELECT now()')), 'result of SELECT now()');
    assert.equal(r.resources.custom('db').kind, 'database');
    assert.equal(
      await metricValue(r.metrics.registry, 'resilience_pool_max', {
        resource: 'db',
        kind: 'database',
      }),
      2,
    );
    assert.equal(
      await metricValue(r.metrics.registry, 'resilience_resource_health', {
        resource: 'db',
        status: 'up',
      }),
      1,
    );
    await r.close({ grace: 0 });
    assert.equal(destroyed, created);
  });

  it('refuses to start when a resource cannot be built, naming it', () => {
    assert.throws(
      () =>
        resilience({
          resources: {
            http: {
              good: { origin: 'http://127.0.0.1:9' },
              bad: { origin: 'https://127.0.0.1:9', tls: { ca: '/nonexistent/ca.pem' } },
            },
          },
        }),
      (err) => err instanceof ResourceUnavailableError && /"bad"/.test(err.message),
    );
  });
});
