import assert from 'node:assert/strict';
import { createBackend, validateOrder } from '../../examples/fake-upstream/backend.js';
import { duration } from '../../examples/fake-upstream/admin.js';
import { startUpstream, type Upstream } from '../../examples/fake-upstream/upstream.js';

describe('examples/fake-upstream', () => {
  let upstream: Upstream | undefined;

  afterEach(async () => {
    await upstream?.close();
    upstream = undefined;
  });

  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${upstream!.origin}${path}`, init);
    return { status: res.status, body: await res.text(), headers: res.headers };
  };
  const json = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${upstream!.origin}${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  describe('behaviours', () => {
    it('applies an error rate drawn from its random source', async () => {
      const draws = [0.1, 0.9, 0.4, 0.6];
      let i = 0;
      upstream = await startUpstream({
        random: () => draws[i++ % draws.length]!,
        behaviour: { errorRate: 0.5 },
      });
      const statuses = [];
      for (let n = 0; n < 4; n++) statuses.push((await get('/x')).status);
      assert.deepEqual(statuses, [503, 200, 503, 200]);
      upstream.setBehaviour({ errorRate: 1, errorStatus: 500 });
      const failed = await get('/x');
      assert.equal(failed.status, 500);
      assert.deepEqual(JSON.parse(failed.body), { error: 'injected failure', status: 500 });
    });

    it('applies a fault to a share of the requests only', async () => {
      const draws = [0.1, 0.9];
      let i = 0;
      upstream = await startUpstream({ random: () => draws[i++ % 2]! });
      upstream.setBehaviour('/r', { fault: 'reset', faultRate: 0.5 });
      await assert.rejects(get('/r'));
      assert.equal((await get('/r')).status, 200);
    });

    it('matches path prefixes ending in /*, the longest first, exact paths before any', async () => {
      upstream = await startUpstream();
      upstream.setBehaviour('/orders/*', { status: 501 });
      upstream.setBehaviour('/orders/special/*', { status: 502 });
      upstream.setBehaviour('/orders/7', { status: 503 });
      assert.equal((await get('/orders/1')).status, 501);
      assert.equal((await get('/orders/special/1')).status, 502);
      assert.equal((await get('/orders/7')).status, 503);
      assert.equal((await get('/orders')).status, 200);
      assert.deepEqual(Object.keys(upstream.behaviours()).sort(), [
        '*',
        '/orders/*',
        '/orders/7',
        '/orders/special/*',
      ]);
    });

    it('answers with the backend unless the behaviour fixes the response', async () => {
      upstream = await startUpstream({
        backend: (r) =>
          r.path === '/hello'
            ? { status: 201, body: { hi: true }, headers: { 'x-b': '1' } }
            : undefined,
      });
      const hello = await get('/hello');
      assert.equal(hello.status, 201);
      assert.deepEqual(JSON.parse(hello.body), { hi: true });
      assert.equal(hello.headers.get('x-b'), '1');
      assert.equal(JSON.parse((await get('/echo')).body).path, '/echo', 'no answer: the echo');
      upstream.setBehaviour('/hello', { status: 503 });
      assert.equal((await get('/hello')).status, 503);
    });

    it('rejects rates outside [0, 1]', async () => {
      upstream = await startUpstream();
      assert.throws(
        () => upstream!.setBehaviour({ errorRate: 2 }),
        /errorRate must be between 0 and 1/,
      );
    });

    it('keeps at most logLimit requests but counts them all', async () => {
      upstream = await startUpstream({ logLimit: 2 });
      for (let n = 0; n < 7; n++) await get(`/n${n}`);
      assert.equal(upstream.requests.count, 7);
      assert.ok(upstream.requests.log.length <= 4);
      assert.equal(upstream.requests.log.at(-1)!.path, '/n6');
    });
  });

  describe('schedules', () => {
    it('runs each step for its duration, then goes back to the ordinary behaviour', async () => {
      let now = 1_000;
      upstream = await startUpstream({ now: () => now });
      const info = upstream.schedule(
        [
          { duration: 10_000, behaviour: { status: 503 } },
          { duration: 5_000, behaviour: { status: 502 } },
        ],
        { path: '/q/*', startIn: 2_000 },
      );
      assert.deepEqual(
        {
          startsAt: info.startsAt,
          endsAt: info.endsAt,
          steps: info.steps.map((s) => [s.from, s.until]),
        },
        {
          startsAt: 3_000,
          endsAt: 18_000,
          steps: [
            [3_000, 13_000],
            [13_000, 18_000],
          ],
        },
      );
      const at = async (t: number, path = '/q/a') => {
        now = t;
        return (await get(path)).status;
      };
      assert.equal(await at(2_999), 200);
      assert.equal(await at(3_000), 503);
      assert.equal(await at(12_999), 503);
      assert.equal(await at(13_000), 502);
      assert.equal(await at(13_500, '/other'), 200, 'other paths are not scheduled');
      assert.deepEqual(
        upstream.schedules().map((s) => s.path),
        ['/q/*'],
      );
      assert.equal(await at(18_000), 200);
      assert.deepEqual(upstream.schedules(), []);
    });

    it('a default schedule covers every path, and wins over setBehaviour while it runs', async () => {
      let now = 0;
      upstream = await startUpstream({ now: () => now });
      upstream.setBehaviour('/a', { status: 418 });
      upstream.schedule([{ duration: 100, behaviour: { status: 500 } }]);
      assert.equal((await get('/a')).status, 500);
      assert.equal((await get('/b')).status, 500);
      now = 100;
      assert.equal((await get('/a')).status, 418);
      assert.equal((await get('/b')).status, 200);
    });

    it('refuses empty schedules and non-positive steps', async () => {
      upstream = await startUpstream();
      assert.throws(() => upstream!.schedule([]), /at least one step/);
      assert.throws(
        () => upstream!.schedule([{ duration: 0, behaviour: {} }]),
        /duration must be > 0/,
      );
    });
  });

  describe('admin API', () => {
    it('sets behaviours and schedules from JSON, with durations as strings', async () => {
      upstream = await startUpstream({ admin: '/__admin' });
      const set = await json('PUT', '/__admin/behaviour', {
        path: '/slow/*',
        behaviour: { latency: { min: '1ms', max: '2ms' }, errorRate: 0 },
      });
      assert.equal(set.status, 200);
      assert.deepEqual((set.body.behaviours as Record<string, unknown>)['/slow/*'], [
        { latency: { min: 1, max: 2 }, errorRate: 0 },
      ]);
      const scheduled = await json('POST', '/__admin/schedule', {
        path: '/x',
        startIn: '1s',
        steps: [{ duration: '10s', behaviour: { status: 503 } }],
      });
      assert.equal(scheduled.status, 200);
      assert.equal((scheduled.body.endsAt as number) - (scheduled.body.startsAt as number), 10_000);
      assert.equal(scheduled.body.path, '/x');
      const state = await json('GET', '/__admin');
      assert.equal((state.body.schedules as unknown[]).length, 1);
      assert.equal(state.body.requests, 0, 'admin calls are not logged');
      await get('/x');
      assert.equal((await json('POST', '/__admin/reset')).body.requests, 0);
      assert.deepEqual((await json('GET', '/__admin')).body.schedules, []);
    });

    it('answers 400 with the reason for bad input, and 404 for unknown endpoints', async () => {
      upstream = await startUpstream({ admin: '/__admin' });
      const cases: [string, string, unknown, RegExp][] = [
        ['PUT', '/__admin/behaviour', { behaviour: { fault: 'explode' } }, /fault must be one of/],
        ['PUT', '/__admin/behaviour', { behaviour: { nope: 1 } }, /unknown field "nope"/],
        ['PUT', '/__admin/behaviour', { path: 'x', behaviour: {} }, /path must start with/],
        ['PUT', '/__admin/behaviour', { behaviour: { errorRate: 3 } }, /errorRate must be between/],
        ['POST', '/__admin/schedule', { steps: 'x' }, /steps must be a list/],
        [
          'POST',
          '/__admin/schedule',
          { steps: [{ duration: '10 parsecs' }] },
          /must be a duration/,
        ],
      ];
      for (const [method, path, body, message] of cases) {
        const answer = await json(method, path, body);
        assert.equal(answer.status, 400, JSON.stringify(body));
        assert.match(String(answer.body.error), message);
      }
      const bad = await fetch(`${upstream.origin}/__admin/behaviour`, { method: 'PUT', body: '{' });
      assert.equal(bad.status, 400);
      await bad.arrayBuffer();
      assert.equal((await json('GET', '/__admin/nothing')).status, 404);
    });

    it('drops connections on request', async () => {
      upstream = await startUpstream({ admin: '/__admin' });
      assert.deepEqual((await json('POST', '/__admin/drop-connections')).body, { dropped: true });
    });

    it('parses durations', () => {
      assert.equal(duration(5, 'x'), 5);
      assert.equal(duration('250ms', 'x'), 250);
      assert.equal(duration('1.5s', 'x'), 1500);
      assert.equal(duration('2m', 'x'), 120_000);
      assert.equal(duration('40', 'x'), 40);
      assert.throws(() => duration(-1, 'x'), /x must be a duration/);
      assert.throws(() => duration('1h', 'x'), /x must be a duration/);
    });
  });

  describe('orders backend', () => {
    beforeEach(async () => {
      upstream = await startUpstream({ backend: createBackend({ seedOrders: 30, maxOrders: 40 }) });
    });

    it('lists the newest orders first, paginated and filtered', async () => {
      const page = await json('GET', '/orders?limit=5&offset=2');
      assert.equal(page.status, 200);
      assert.deepEqual(
        (page.body.orders as { id: number }[]).map((o) => o.id),
        [28, 27, 26, 25, 24],
      );
      assert.equal(page.body.total, 30);
      const mine = await json('GET', '/orders?customerId=customer-3&limit=100');
      const ids = (mine.body.orders as { id: number; customerId: string }[]).map((o) => o.id);
      assert.deepEqual(ids, [23, 13, 3]);
      assert.equal(mine.body.total, 3);
    });

    it('creates, serves and validates orders, and stays bounded', async () => {
      const created = await json('POST', '/orders', {
        customerId: 'c1',
        items: [
          { sku: 'apple', quantity: 2, price: 1.25 },
          { sku: 'bread', quantity: 1, price: 3 },
        ],
      });
      assert.equal(created.status, 201);
      assert.equal(created.body.total, 5.5);
      assert.equal(created.body.id, 31);
      assert.equal((await json('GET', '/orders/31')).body.customerId, 'c1');
      assert.equal((await json('GET', '/orders/999')).status, 404);
      assert.equal((await json('POST', '/orders', { customerId: 'c1', items: [] })).status, 400);
      for (let n = 0; n < 20; n++) {
        await json('POST', '/orders', {
          customerId: 'c',
          items: [{ sku: 's', quantity: 1, price: 1 }],
        });
      }
      const list = await json('GET', '/orders?limit=100');
      assert.ok((list.body.total as number) <= 44, `bounded: ${String(list.body.total)}`);
      assert.equal((await json('GET', '/orders/1')).status, 404, 'the oldest were dropped');
    });

    it('serves health, quotes and inventory, and 404 for anything else', async () => {
      assert.deepEqual((await json('GET', '/healthz')).body, { status: 'ok' });
      const quote = await json('GET', '/quotes/ACME');
      assert.equal(quote.body.symbol, 'ACME');
      assert.equal(typeof quote.body.price, 'number');
      assert.equal((await json('GET', '/inventory/apple')).body.sku, 'apple');
      assert.equal((await json('GET', '/nothing')).status, 404);
      assert.equal((await json('DELETE', '/orders')).status, 405);
    });

    it('validates order bodies with a reason', () => {
      assert.equal(
        validateOrder({ customerId: 'c', items: [{ sku: 'a', quantity: 1, price: 0 }] }),
        undefined,
      );
      assert.match(validateOrder(null)!, /object/);
      assert.match(validateOrder({ customerId: '', items: [] })!, /customerId/);
      assert.match(
        validateOrder({ customerId: 'c', items: [{ sku: 'a', quantity: 0, price: 1 }] })!,
        /quantity/,
      );
      assert.match(
        validateOrder({ customerId: 'c', items: [{ sku: 'a', quantity: 1, price: -1 }] })!,
        /price/,
      );
    });
  });
});
