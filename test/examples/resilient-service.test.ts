import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBackend } from '../../examples/fake-upstream/backend.js';
import { startUpstream, type Upstream } from '../../examples/fake-upstream/upstream.js';
import { createService, type Service } from '../../examples/resilient-service/service.js';
import { redisAnswers } from '../../examples/resilient-service/redis-probe.js';
import { eventually } from '../helpers/deferred.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** The example service in this process, on a real socket, in front of the fake upstream. */
async function start(
  upstream: Upstream,
  extra: { cache?: boolean; env?: NodeJS.ProcessEnv; accessLog?: (line: string) => void } = {},
) {
  const service = createService({
    env: 'test',
    cache: extra.cache,
    accessLog: extra.accessLog,
    environment: {
      RESILIENCE_HTTP_UPSTREAM_ORIGIN: upstream.origin,
      RESILIENCE_HTTP_INVENTORY_ORIGIN: upstream.origin,
      ...extra.env,
    },
  });
  const server: Server = await new Promise((resolve) => {
    const s = service.app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await service.r.ready();
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    } catch {
      parsed = { text };
    }
    return { status: res.status, headers: res.headers, body: parsed };
  };
  const stop = async () => {
    try {
      // A call that timed out gives its member back as its connection closes: shortly after.
      for (const name of service.r.resources.names()) {
        const resource = service.r.resources.get(name)!;
        await eventually(() => resource.stats().borrowed === 0, `${name}: nothing borrowed`);
      }
    } finally {
      await service.r.close({ grace: 0 });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
  return { service, url, call, stop };
}

describe('examples/resilient-service', () => {
  let upstream: Upstream;
  /**
   * Requests the app's own traffic sent upstream: the health monitor probes the upstream's
   * /healthz every 200 ms in the test config, and one may land between two readings.
   */
  const appTraffic = (): number =>
    upstream.requests.log.filter((r) => r.path !== '/healthz').length;
  let app: Awaited<ReturnType<typeof start>>;
  let service: Service;

  beforeEach(async () => {
    upstream = await startUpstream({ backend: createBackend(), admin: '/__admin' });
    app = await start(upstream);
    service = app.service;
  });

  afterEach(async () => {
    try {
      await app.stop();
    } finally {
      await upstream.close();
    }
  });

  it('starts without Redis: cache disabled, ready, the cache routes answer 503', async () => {
    assert.equal(service.cache.enabled, false);
    assert.deepEqual(service.r.resources.names().sort(), ['inventory', 'upstream']);
    assert.equal((await app.call('GET', '/healthz')).status, 200);
    const ready = await app.call('GET', '/readyz');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    const index = await app.call('GET', '/');
    assert.equal(index.body.cache, 'disabled');
    const cached = await app.call('GET', '/api/cache/k');
    assert.equal(cached.status, 503);
    assert.equal(cached.body.code, 'ERR_CACHE_DISABLED');
    assert.equal((await app.call('PUT', '/api/cache/k', { value: 'v' })).status, 503);
  });

  it('writes one JSON access-log line per request: method, path without query, status, duration, route', async () => {
    const lines: string[] = [];
    const logged = await start(upstream, { accessLog: (line) => lines.push(line) });
    try {
      assert.equal((await logged.call('GET', '/api/orders?limit=2&token=secret')).status, 200);
      const bad = await logged.call('POST', '/api/orders', { customerId: '' });
      assert.equal(bad.status, 400);
      await eventually(() => lines.length === 2, 'two access-log lines');
      const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      for (const entry of entries) {
        assert.equal(typeof entry.time, 'string');
        assert.ok(typeof entry.durationMs === 'number' && entry.durationMs >= 0);
        assert.equal(entry.aborted, undefined);
      }
      assert.deepEqual(
        entries.map(({ method, path, status, route }) => ({ method, path, status, route })),
        [
          { method: 'GET', path: '/api/orders', status: 200, route: 'list-orders' },
          { method: 'POST', path: '/api/orders', status: 400, route: 'create-order' },
        ],
      );
    } finally {
      await logged.stop();
    }
  });

  it('lists, views and creates orders through the upstream resource', async () => {
    const list = await app.call('GET', '/api/orders?limit=3');
    assert.equal(list.status, 200);
    assert.equal((list.body.orders as unknown[]).length, 3);
    assert.equal(list.headers.get('x-cache'), 'off');
    assert.equal((await app.call('GET', '/api/orders/2')).body.id, 2);
    assert.equal((await app.call('GET', '/api/orders/99999')).status, 404);
    assert.equal((await app.call('GET', '/api/orders/abc')).status, 400);
    assert.equal((await app.call('GET', '/api/orders?limit=1000')).status, 400);
    const created = await app.call(
      'POST',
      '/api/orders',
      { customerId: 'c7', items: [{ sku: 'honey', quantity: 2, price: 4.5 }] },
      { 'x-client-id': 'test' },
    );
    assert.equal(created.status, 201);
    assert.equal(created.body.total, 9);
    assert.equal(created.headers.get('location'), `/api/orders/${String(created.body.id)}`);
    assert.equal(
      (await app.call('GET', `/api/orders/${String(created.body.id)}`)).body.customerId,
      'c7',
    );
    // Bad input never reaches the upstream.
    const before = appTraffic();
    assert.equal(
      (await app.call('POST', '/api/orders', { customerId: 'c7', items: [] })).status,
      400,
    );
    const badJson = await app.call('POST', '/api/orders', '{oops');
    assert.equal(badJson.status, 400);
    assert.equal(badJson.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.equal(appTraffic(), before);
  });

  it('rate-limits order creation per client (x-client-id), not the other clients', async () => {
    const order = { customerId: 'c1', items: [{ sku: 'eggs', quantity: 1, price: 2 }] };
    const greedy = await Promise.all(
      Array.from({ length: 12 }, () =>
        app.call('POST', '/api/orders', order, { 'x-client-id': 'greedy' }),
      ),
    );
    const limited = greedy.filter((a) => a.status === 429);
    assert.ok(
      greedy.filter((a) => a.status === 201).length >= 6,
      'limit + burst get through at once',
    );
    assert.ok(limited.length >= 1, 'the rest are limited');
    assert.equal(limited[0]!.body.code, 'ERR_RATE_LIMITED');
    assert.ok(Number(limited[0]!.headers.get('retry-after')) >= 1);
    assert.equal(
      (await app.call('POST', '/api/orders', order, { 'x-client-id': 'polite' })).status,
      201,
    );
  });

  it('opens the quotes breaker while the upstream fails: fast 503s instead of 502s', async () => {
    assert.equal((await app.call('GET', '/api/quotes/ACME')).status, 200);
    upstream.setBehaviour('/quotes/*', { status: 503 });
    const statuses: number[] = [];
    let open: Answer | undefined;
    for (let i = 0; i < 30 && open === undefined; i++) {
      const answer = await app.call('GET', '/api/quotes/ACME');
      statuses.push(answer.status);
      if (answer.body.code === 'ERR_BREAKER_OPEN') open = answer;
    }
    assert.ok(open !== undefined, `the breaker opened: ${statuses.join(' ')}`);
    assert.equal(open.status, 503);
    assert.ok(Number(open.headers.get('retry-after')) >= 1);
    assert.ok(
      statuses.slice(0, -1).every((s) => s === 502),
      'failures before it opened are 502s',
    );
    const calls = appTraffic();
    assert.equal((await app.call('GET', '/api/quotes/ACME')).status, 503);
    assert.equal(appTraffic(), calls, 'an open breaker does not call the upstream');
  });

  it('keeps the compute route to its bulkhead: the excess gets 503 ERR_BULKHEAD_FULL', async () => {
    const single = await app.call('GET', '/api/compute?cost=1000');
    assert.equal(single.status, 200);
    assert.match(String(single.body.digest), /^[0-9a-f]{64}$/);
    assert.equal((await app.call('GET', '/api/compute?cost=-1')).status, 400);
    // One slot, four places in the queue: of ten at once, at least five are turned away.
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => app.call('GET', '/api/compute?cost=200000')),
    );
    const rejected = answers.filter((a) => a.status === 503);
    assert.ok(rejected.length >= 5, `rejected ${rejected.length}`);
    assert.ok(rejected.every((a) => a.body.code === 'ERR_BULKHEAD_FULL'));
    assert.ok(answers.some((a) => a.status === 200));
  });

  it('sheds with 503 ERR_POOL_EXHAUSTED when the inventory pool runs dry', async () => {
    assert.equal((await app.call('GET', '/api/inventory/apple')).body.sku, 'apple');
    upstream.setBehaviour('/inventory/*', { latency: 300 });
    // Four members, eight waiting for at most 200 ms: of sixteen at once, most are refused.
    const answers = await Promise.all(
      Array.from({ length: 16 }, () => app.call('GET', '/api/inventory/apple')),
    );
    const refused = answers.filter((a) => a.status === 503);
    assert.ok(refused.length >= 4, `refused ${refused.length}`);
    assert.ok(
      refused.every((a) => a.body.code === 'ERR_POOL_EXHAUSTED'),
      JSON.stringify(refused[0]?.body),
    );
    assert.ok(answers.some((a) => a.status === 200));
    // The main pool did not notice.
    assert.equal((await app.call('GET', '/api/orders/1')).status, 200);
  });

  it('fails the flaky route on request, and its breaker opens', async () => {
    assert.equal((await app.call('GET', '/api/flaky?failRate=0')).status, 200);
    assert.equal((await app.call('GET', '/api/flaky?failRate=2')).status, 400);
    const statuses = new Set<number>();
    for (let i = 0; i < 15; i++)
      statuses.add((await app.call('GET', '/api/flaky?failRate=1')).status);
    assert.deepEqual([...statuses].sort(), [500, 503]);
  });

  it('serves the pool status, the admin router, metrics, and problem+json 404s', async () => {
    const pools = await app.call('GET', '/api/pools');
    const resources = pools.body.resources as {
      name: string;
      pool: { max: number };
      critical: boolean;
    }[];
    assert.deepEqual(
      resources.map((r) => [r.name, r.pool.max, r.critical]),
      [
        ['upstream', 32, true],
        ['inventory', 4, false],
      ],
    );
    const config = await app.call('GET', '/api/admin/config');
    assert.equal(config.status, 200);
    assert.ok('middleware' in config.body);
    const metrics = await fetch(`${app.url}/metrics`);
    const text = await metrics.text();
    assert.match(text, /resilience_http_request_duration_seconds_count\{route="pools"/);
    assert.match(text, /resilience_pool_max\{resource="inventory",kind="http"\} 4/);
    const missing = await app.call('GET', '/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.detail, 'no route for GET /nope');
  });

  it('times out a hanging upstream within the route deadline', async () => {
    upstream.setBehaviour('/orders/*', { fault: 'hang' });
    const started = Date.now();
    const answer = await app.call('GET', '/api/orders/1');
    assert.equal(answer.status, 504);
    assert.equal(answer.body.code, 'ERR_TIMEOUT');
    // The upstream resource's own timeout (1.5 s) is below the route's 2 s deadline.
    assert.ok(Date.now() - started < 2_000 + 500);
    upstream.dropConnections();
  });
});

describe('examples/resilient-service with Redis', () => {
  let redis: RedisServer;
  let upstream: Upstream;
  let app: Awaited<ReturnType<typeof start>> | undefined;

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.close();
  });
  beforeEach(async () => {
    upstream = await startUpstream({ backend: createBackend(), admin: '/__admin' });
  });
  afterEach(async () => {
    try {
      await app?.stop();
    } finally {
      app = undefined;
      await upstream.close();
    }
  });

  it('caches orders and serves the cache routes; a Redis outage costs hits, not answers', async () => {
    assert.equal(await redisAnswers(redis.url, 5000), true);
    const a = (app = await start(upstream, {
      cache: true,
      env: { RESILIENCE_REDIS_CACHE_URL: redis.url },
    }));
    assert.deepEqual(a.service.r.resources.names().sort(), ['cache', 'inventory', 'upstream']);
    assert.equal(a.service.r.config.resources.redis.cache!.url, redis.url);
    assert.equal(
      (await a.call('PUT', '/api/cache/greeting', { value: 'hello', ttl: 30 })).status,
      204,
    );
    assert.deepEqual((await a.call('GET', '/api/cache/greeting')).body, {
      key: 'greeting',
      value: 'hello',
    });
    assert.equal((await a.call('GET', '/api/cache/missing')).status, 404);
    assert.equal((await a.call('PUT', '/api/cache/x', { value: 1 })).status, 400);

    assert.equal((await a.call('GET', '/api/orders/5')).headers.get('x-cache'), 'miss');
    // The store happens after the answer: poll until it lands.
    let hit: Answer | undefined;
    for (let i = 0; i < 50 && hit?.headers.get('x-cache') !== 'hit'; i++)
      hit = await a.call('GET', '/api/orders/5');
    assert.equal(hit?.headers.get('x-cache'), 'hit');
    assert.equal(hit?.body.id, 5);

    await redis.stop();
    const answer = await a.call('GET', '/api/orders/6');
    assert.equal(answer.status, 200, 'served from the upstream');
    assert.ok(a.service.cache.errors >= 1);
    assert.equal((await a.call('GET', '/readyz')).status, 200, 'the cache is not critical');
  });

  it('does not treat an address without Redis as Redis', async () => {
    assert.equal(await redisAnswers(upstream.origin.replace('http', 'redis'), 5000), false);
    assert.equal(await redisAnswers('not a url'), false);
  });
});
