import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import {
  ENTRIES,
  startProcess,
  waitUntilReady,
  type RunningProcess,
} from '../../examples/launch.js';
import { eventually } from '../helpers/deferred.js';

const MINIMAL = fileURLToPath(new URL('../../examples/minimal/app.ts', import.meta.url));

// The examples as users run them (`npm start`, `npm run example:minimal`): real processes, then
// SIGTERM, after which each must exit on its own, cleanly.
describe('examples as processes', () => {
  const started: RunningProcess[] = [];

  after(async () => {
    await Promise.all(started.map((p) => p.stop(2000)));
  });

  it('runs the service on the fake upstream, and the minimal app; both shut down on SIGTERM', async () => {
    const [upstream, minimal] = await Promise.all([
      startProcess('fake-upstream', ENTRIES.upstream),
      startProcess('minimal', MINIMAL, { env: { PORT: '0' } }),
    ]);
    started.push(upstream, minimal);
    const service = await startProcess('resilient-service', ENTRIES.service, {
      env: {
        NODE_ENV: 'test',
        PORT: '0',
        RESILIENCE_HTTP_UPSTREAM_ORIGIN: upstream.url,
        RESILIENCE_HTTP_INVENTORY_ORIGIN: upstream.url,
        RESILIENCE_REDIS_CACHE_URL: undefined,
      },
    });
    started.push(service);
    await waitUntilReady(`${service.url}/readyz`, 10_000);
    const orders = await fetch(`${service.url}/api/orders?limit=2`);
    assert.equal(orders.status, 200);
    assert.equal(((await orders.json()) as { orders: unknown[] }).orders.length, 2);
    // The access log, on stdout: a JSON line per request.
    await eventually(
      () => /"method":"GET","path":"\/api\/orders","status":200/.test(service.output()),
      'an access-log line for GET /api/orders',
    );
    const state = await fetch(`${upstream.url}/__admin`);
    assert.ok(((await state.json()) as { requests: number }).requests >= 1);

    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await fetch(`${minimal.url}/hello`);
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    assert.equal(statuses[0], 200);
    assert.ok(statuses.includes(429), `the minimal app's rate limit: ${statuses.join(' ')}`);

    // The minimal app's grace is the default 10 s: it waits for the idle keep-alive connection
    // fetch left open until the client or the server's keepAliveTimeout closes it.
    await Promise.all([service.stop(5000), minimal.stop(15_000)]);
    await upstream.stop(5000);
    assert.equal(await service.exited, 0, service.output());
    assert.equal(await minimal.exited, 0, minimal.output());
    assert.equal(await upstream.exited, 0, upstream.output());
    assert.match(service.output(), /resilient-service: shut down/);
  });

  // `npm start` sets no RESILIENCE_REDIS_CACHE_URL: the service must then look for Redis where
  // config/redis-cache.yaml's resource connects by default (127.0.0.1:6379, where the test set-up
  // runs one), not decide "no Redis" without asking.
  it('uses the Redis cache on 127.0.0.1:6379 when RESILIENCE_REDIS_CACHE_URL is unset; "" turns it off', async () => {
    const env = {
      NODE_ENV: 'test',
      PORT: '0',
      // Nothing listens there: readiness does not matter to this test, the cache does.
      RESILIENCE_HTTP_UPSTREAM_ORIGIN: 'http://127.0.0.1:9',
      RESILIENCE_HTTP_INVENTORY_ORIGIN: 'http://127.0.0.1:9',
    };
    const [withDefault, without] = await Promise.all([
      startProcess('resilient-service', ENTRIES.service, {
        env: { ...env, RESILIENCE_REDIS_CACHE_URL: undefined },
      }),
      startProcess('resilient-service-no-cache', ENTRIES.service, {
        env: { ...env, RESILIENCE_REDIS_CACHE_URL: '' },
      }),
    ]);
    started.push(withDefault, without);
    assert.match(withDefault.output(), /listening on .*cache redis/, withDefault.output());
    assert.match(without.output(), /listening on .*cache disabled/, without.output());

    const key = `processes-test-${process.pid}`;
    const put = await fetch(`${withDefault.url}/api/cache/${key}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value: 'v1', ttl: 5 }),
    });
    assert.equal(put.status, 204, await put.text());
    const got = await fetch(`${withDefault.url}/api/cache/${key}`);
    assert.deepEqual(await got.json(), { key, value: 'v1' });
    const off = await fetch(`${without.url}/api/cache/${key}`);
    await off.arrayBuffer();
    assert.equal(off.status, 503);
    await Promise.all([withDefault.stop(5000), without.stop(5000)]);
  });

  it('reports a process that exits before it is ready, with its output', async () => {
    await assert.rejects(
      startProcess('bad-service', ENTRIES.service, {
        env: { PORT: 'not-a-port', NODE_ENV: 'test' },
      }),
      /bad-service exited \(\d+\) before it was ready/,
    );
  });
});
