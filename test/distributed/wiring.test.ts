import assert from 'node:assert/strict';
import express from 'express';
import request from 'supertest';
import type { ResilienceConfigInput } from '../../lib/config/types.js';
import { MemoryStore, resilience, type ResilienceMiddleware } from '../../lib/index.js';
import { metricValue } from '../helpers/metrics.js';
import { redisCommand, startRedis, waitFor } from '../helpers/redis-server.js';
import type { RedisServer } from '../helpers/redis-server.js';

const CONNECTION_NAME = 'express-resilience:rate-limit';

function app(r: ResilienceMiddleware): express.Express {
  const a = express();
  a.use(r);
  a.use((_req, res) => {
    res.json({ ok: true });
  });
  return a;
}

/** The names of the clients connected to the server. */
async function clientNames(port: number): Promise<string[]> {
  const list = String(await redisCommand(port, ['CLIENT', 'LIST']));
  return [...list.matchAll(/ name=(\S*)/g)].map((m) => m[1]!);
}

describe('resilience() with rateLimit.store redis:<name>', () => {
  let server: RedisServer;
  let r: ResilienceMiddleware | undefined;

  function middleware(rateLimit: NonNullable<ResilienceConfigInput['middleware']>['defaults']) {
    r = resilience({
      middleware: {
        defaults: {
          breaker: { enabled: false },
          bulkhead: { enabled: false },
          ...rateLimit,
        },
        routes: [{ name: 'orders', match: 'GET /orders' }],
      },
      resources: { redis: { cache: { url: server.url } } },
      metrics: { defaultMetrics: false },
    });
    return r;
  }

  beforeEach(async () => {
    server = await startRedis();
  });
  afterEach(async () => {
    await r?.close({ grace: 0 });
    r = undefined;
    await server.close();
  });

  it('limits through Redis under its key prefix, and publishes the store metrics', async () => {
    const mw = middleware({
      rateLimit: {
        enabled: true,
        limit: 3,
        window: '1h',
        key: 'header:x-api-key',
        store: 'redis:cache',
        keyPrefix: 'myapp:',
      },
    });
    await mw.ready();
    const a = app(mw);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await request(a).get('/orders').set('x-api-key', 'abc');
      statuses.push(res.status);
      if (i === 0) assert.equal(res.headers['ratelimit'], '"orders";r=2;t=1200');
      // Denied by Redis, then by the block cache: t is Retry-After, one interval (20 min).
      if (i >= 3) {
        const retryAfter = Number(res.headers['retry-after']);
        assert.ok(retryAfter > 0 && retryAfter <= 1200, `Retry-After ${retryAfter}`);
        assert.equal(res.headers['ratelimit'], `"orders";r=0;t=${retryAfter}`);
      }
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    assert.equal(await redisCommand(server.port, ['EXISTS', 'myapp:orders:h:abc']), 1);

    const registry = mw.metrics.registry;
    const labels = { route: 'orders', store: 'redis:cache' };
    // The fifth was denied by the block cache, without a round trip.
    assert.equal(
      await metricValue(registry, 'resilience_rate_limit_store_duration_seconds_count', {
        ...labels,
        outcome: 'success',
      }),
      4,
    );
    assert.equal(
      await metricValue(registry, 'resilience_rate_limit_block_cache_hits_total', labels),
      1,
    );
    assert.equal(await metricValue(registry, 'resilience_rate_limit_store_up', labels), 1);
    assert.equal(await metricValue(registry, 'resilience_rate_limit_fallbacks_total', labels), 0);
    assert.equal(
      await metricValue(registry, 'resilience_rate_limit_decisions_total', {
        route: 'orders',
        result: 'limited',
      }),
      2,
    );
  });

  it("onStoreError 'deny': 429 with Retry-After = storeRetryInterval while Redis is down", async () => {
    const mw = middleware({
      rateLimit: {
        enabled: true,
        store: 'redis:cache',
        onStoreError: 'deny',
        storeRetryInterval: '3s',
      },
    });
    await mw.ready();
    await server.stop();
    const a = app(mw);
    for (let i = 0; i < 2; i++) {
      const res = await request(a).get('/orders');
      assert.equal(res.status, 429);
      assert.equal(res.headers['retry-after'], '3');
      assert.equal(res.body.code, 'ERR_RATE_LIMITED');
    }
    const registry = mw.metrics.registry;
    const labels = { route: 'orders', store: 'redis:cache' };
    assert.equal(
      await metricValue(registry, 'resilience_rate_limit_store_errors_total', labels),
      1,
    );
    assert.equal(
      await metricValue(registry, 'resilience_rate_limit_fallbacks_total', {
        ...labels,
        reason: 'error',
      }),
      1,
    );
    assert.equal(
      await metricValue(registry, 'resilience_rate_limit_fallbacks_total', {
        ...labels,
        reason: 'down',
      }),
      1,
    );
    assert.equal(await metricValue(registry, 'resilience_rate_limit_store_up', labels), 0);
  });

  it("onStoreError 'allow' lets requests through while Redis is down", async () => {
    const mw = middleware({
      rateLimit: { enabled: true, limit: 1, store: 'redis:cache', onStoreError: 'allow' },
    });
    await mw.ready();
    await server.stop();
    const a = app(mw);
    for (let i = 0; i < 3; i++) assert.equal((await request(a).get('/orders')).status, 200);
  });

  it('a hung Redis costs a decision the store timeout, then the local fallback decides', async () => {
    const mw = middleware({
      rateLimit: {
        enabled: true,
        limit: 1,
        window: '1h',
        store: 'redis:cache',
        expectedInstances: 1,
      },
    });
    await mw.ready();
    await redisCommand(server.port, ['CLIENT', 'PAUSE', 5000, 'WRITE']);
    try {
      const a = app(mw);
      // Answered long before Redis would have: the default 500 ms store timeout.
      const res = await request(a).get('/orders').timeout(2500);
      assert.equal(res.status, 200);
      assert.equal((await request(a).get('/orders').timeout(2500)).status, 429);
    } finally {
      await redisCommand(server.port, ['CLIENT', 'UNPAUSE']);
    }
    assert.equal(
      await metricValue(mw.metrics.registry, 'resilience_rate_limit_fallbacks_total', {
        route: 'orders',
        reason: 'timeout',
      }),
      2,
    );
  });

  it('ready() waits for the store connection; close() ends it', async () => {
    const mw = middleware({ rateLimit: { enabled: true, store: 'redis:cache' } });
    await mw.ready();
    // One store client for the resource, shared by the default route and "orders".
    assert.equal((await clientNames(server.port)).filter((n) => n === CONNECTION_NAME).length, 1);
    await mw.close({ grace: 0 });
    await waitFor(
      'the store connection to close',
      async () => !(await clientNames(server.port)).includes(CONNECTION_NAME),
    );
  });

  it('a createStore given in code gets the spec, the policy and the route name', async () => {
    const calls: [string, number, string][] = [];
    const created: MemoryStore[] = [];
    r = resilience(
      {
        middleware: {
          defaults: { rateLimit: { enabled: true, limit: 7, store: 'redis:cache' } },
          routes: [{ name: 'orders', match: 'GET /orders' }],
        },
        resources: { redis: { cache: { url: server.url } } },
        metrics: { defaultMetrics: false },
      },
      {
        createStore: (spec, policy, route) => {
          calls.push([spec, policy.limit, route]);
          const store = new MemoryStore();
          created.push(store);
          return store;
        },
      },
    );
    assert.deepEqual(calls, [
      ['redis:cache', 7, 'default'],
      ['redis:cache', 7, 'orders'],
    ]);
    await r.ready();
    assert.ok(!(await clientNames(server.port)).includes(CONNECTION_NAME));
    for (const store of created) store.close();
  });
});
