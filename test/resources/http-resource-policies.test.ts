import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import FakeTimers from '@sinonjs/fake-timers';
import express from 'express';
import { errors } from 'undici';
import {
  BreakerOpenError,
  PoolExhaustedError,
  ResourceUnavailableError,
  TimeoutError,
  UpstreamError,
} from '../../lib/errors.js';
import { resilience } from '../../lib/index.js';
import { runWithDeadline } from '../../lib/policies/deadline-context.js';
import { Deadline } from '../../lib/policies/timeout.js';
import { listen } from '../helpers/apps.js';
import { until } from '../helpers/deferred.js';
import { generateTls, writeTempPem } from '../helpers/tls.js';
import { closedPort, startBlackhole } from '../helpers/upstream.js';
import type { EchoBody, Upstream } from '../helpers/upstream.js';
import { HttpFixture } from './http-resource.fixture.js';

describe('HttpResource policies', () => {
  const fx = new HttpFixture();
  let upstream: Upstream;

  beforeEach(async () => {
    upstream = await fx.upstream();
  });
  afterEach(() => fx.teardown());

  describe('retry', () => {
    it('retries 503s with full-jitter exponential backoff from the injected random', async () => {
      upstream.setBehaviour('/flaky', { status: [503, 503, 200] });
      const { resource, seen } = fx.resource(
        upstream.origin,
        { retry: { attempts: 3, backoff: { initial: 10, max: 100, multiplier: 2 } } },
        { random: () => 0.5 },
      );
      const res = await resource.get('/flaky');
      assert.equal(res.statusCode, 200);
      assert.equal(upstream.requests.count, 3);
      // 0.5 × min(100, 10 × 2^(n-1)): 5 ms before attempt 2, 10 ms before attempt 3.
      assert.deepEqual(seen.retries, [
        { attempt: 2, delayMs: 5 },
        { attempt: 3, delayMs: 10 },
      ]);
      assert.deepEqual(seen.calls, ['success']);
    });

    it('stops after `attempts` and returns the last response', async () => {
      upstream.setBehaviour('/down', { status: 502 });
      const { resource, seen } = fx.resource(upstream.origin, { retry: { attempts: 3 } });
      assert.equal((await resource.get('/down')).statusCode, 502);
      assert.equal(upstream.requests.count, 3);
      assert.equal(seen.retries.length, 2);
      assert.deepEqual(seen.calls, ['failure']);
    });

    it('retries only the configured statuses', async () => {
      upstream.setBehaviour('/err', { status: [500, 200] });
      const { resource } = fx.resource(upstream.origin);
      assert.equal((await resource.get('/err')).statusCode, 500);
      upstream.setBehaviour('/err', { status: [500, 200] });
      const custom = fx.resource(upstream.origin, { retry: { statuses: [500] } }).resource;
      assert.equal((await custom.get('/err')).statusCode, 200);
      assert.equal(upstream.requests.count, 3);
    });

    it('does not retry POST or PATCH unless told the call is idempotent', async () => {
      const script = { status: [503, 200] };
      const { resource } = fx.resource(upstream.origin);
      upstream.setBehaviour('/pay', script);
      assert.equal((await resource.post('/pay', { amount: 1 })).statusCode, 503);
      upstream.setBehaviour('/pay', script);
      assert.equal((await resource.patch('/pay', {})).statusCode, 503);
      upstream.setBehaviour('/pay', script);
      const res = await resource.post('/pay', { amount: 1 }, { idempotent: true });
      assert.equal(res.statusCode, 200);
      upstream.setBehaviour('/pay', script);
      assert.equal((await resource.put('/pay', {})).statusCode, 200, 'PUT is idempotent');
      assert.equal(upstream.requests.count, 6);
    });

    it('retries POST when retry.nonIdempotent is configured', async () => {
      upstream.setBehaviour('/pay', { status: [503, 200] });
      const { resource } = fx.resource(upstream.origin, { retry: { nonIdempotent: true } });
      assert.equal((await resource.post('/pay', 'x')).statusCode, 200);
      assert.equal(upstream.requests.count, 2);
    });

    it('retries a connection reset on a new connection, replacing the broken member', async () => {
      upstream.setBehaviour('/reset', [{ fault: 'reset' }, {}]);
      const { resource } = fx.resource(upstream.origin, { pool: { max: 1 } });
      assert.equal((await resource.get('/reset')).statusCode, 200);
      assert.equal(upstream.requests.count, 2);
      assert.equal(upstream.connections, 2);
      assert.equal(resource.stats().size, 1);
    });

    it('throws UpstreamError with the transport error as cause once attempts run out', async () => {
      upstream.setBehaviour('/reset', { fault: 'reset-after-headers' });
      const { resource, seen } = fx.resource(upstream.origin, { retry: { attempts: 2 } });
      await assert.rejects(resource.get('/reset'), (err: unknown) => {
        assert.ok(err instanceof UpstreamError);
        assert.match(err.message, /HTTP resource "up": GET \/reset failed/);
        assert.ok(err.cause instanceof Error);
        return true;
      });
      assert.equal(upstream.requests.count, 2);
      assert.deepEqual(seen.calls, ['failure']);
    });

    it('counts a retry refused by the spent budget, and returns the response', async () => {
      upstream.setBehaviour('/down', { status: 503 });
      const { resource, seen } = fx.resource(upstream.origin, {
        retry: { attempts: 3, budget: { ratio: 0, minPerSecond: 0 } },
      });
      assert.equal((await resource.get('/down')).statusCode, 503);
      assert.equal(upstream.requests.count, 1);
      assert.equal(seen.budgetExhausted, 1);
      assert.deepEqual(seen.retries, []);
      assert.deepEqual(seen.calls, ['budget-exhausted']);
    });

    it('lets the budget grant minPerSecond × window retries, then refuses', async () => {
      upstream.setBehaviour('/down', { status: 503 });
      const { resource, seen } = fx.resource(upstream.origin, {
        retry: { attempts: 2, budget: { ratio: 0, minPerSecond: 1, window: 2000 } },
      });
      for (let i = 0; i < 3; i++) assert.equal((await resource.get('/down')).statusCode, 503);
      // Two retries granted (1/s over 2 s), the third call's refused.
      assert.equal(upstream.requests.count, 5);
      assert.equal(seen.budgetExhausted, 1);
    });

    describe('Retry-After', () => {
      let clock: ReturnType<typeof FakeTimers.install> | undefined;
      afterEach(() => {
        clock?.uninstall();
        clock = undefined;
      });

      it('waits as long as the upstream asks when that is longer than the backoff', async () => {
        clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] });
        upstream.setBehaviour('/busy', [{ status: 503, retryAfter: 1 }, { status: 200 }]);
        const { resource, seen } = fx.resource(
          upstream.origin,
          { retry: { backoff: { initial: 1, max: 500 } } },
          { random: () => 0 },
        );
        const call = resource.get('/busy');
        await until(() => seen.retries.length === 1, 'the retry to be scheduled');
        assert.deepEqual(seen.retries, [{ attempt: 2, delayMs: 1000 }]);
        await clock.tickAsync(999);
        assert.equal(upstream.requests.count, 1);
        await clock.tickAsync(1);
        assert.equal((await call).statusCode, 200);
        assert.equal(upstream.requests.count, 2);
      });

      it('does not wait for a Retry-After far beyond the backoff: returns the 503', async () => {
        upstream.setBehaviour('/busy', [{ status: 503, retryAfter: 120 }, { status: 200 }]);
        const { resource, seen } = fx.resource(upstream.origin, {
          retry: { backoff: { initial: 1, max: 100 } },
        });
        const res = await resource.get('/busy');
        assert.equal(res.statusCode, 503);
        assert.equal(res.headers['retry-after'], '120');
        assert.equal(upstream.requests.count, 1);
        assert.deepEqual(seen.retries, []);
      });
    });
  });

  describe('breaker', () => {
    let clock: ReturnType<typeof FakeTimers.install> | undefined;
    afterEach(() => {
      clock?.uninstall();
      clock = undefined;
    });

    it('opens on failures, rejects without touching the upstream, recovers after halfOpenAfter', async () => {
      clock = FakeTimers.install({ toFake: ['Date'] });
      upstream.setBehaviour('/x', { status: 500 });
      const { resource, seen } = fx.resource(upstream.origin, {
        retry: { attempts: 1 },
        breaker: {
          window: { type: 'consecutive', size: 2 },
          halfOpenAfter: 1000,
          halfOpenProbes: 1,
        },
      });
      assert.equal((await resource.get('/x')).statusCode, 500);
      assert.equal((await resource.get('/x')).statusCode, 500);
      await assert.rejects(resource.get('/x'), (err: unknown) => {
        assert.ok(err instanceof BreakerOpenError);
        assert.equal(err.retryAfterMs, 1000);
        return true;
      });
      assert.equal(upstream.requests.count, 2);
      assert.equal(resource.breaker?.state, 'open');

      // The health probe still reaches the upstream while the breaker is open.
      upstream.setBehaviour('/x', { status: 200 });
      await resource.probe(new AbortController().signal);

      clock.tick(999);
      await assert.rejects(resource.get('/x'), BreakerOpenError);
      clock.tick(1);
      assert.equal((await resource.get('/x')).statusCode, 200);
      assert.equal(resource.breaker?.state, 'closed');
      assert.equal((await resource.get('/x')).statusCode, 200);
      assert.deepEqual(seen.calls, [
        'failure',
        'failure',
        'breaker-open',
        'breaker-open',
        'success',
        'success',
      ]);
    });

    it('counts transport errors and timeouts as failures', async () => {
      upstream.setBehaviour('/hang', { fault: 'hang' });
      upstream.setBehaviour('/reset', { fault: 'reset' });
      const { resource } = fx.resource(upstream.origin, {
        retry: { attempts: 1 },
        timeouts: { headers: 30 },
        breaker: { window: { type: 'consecutive', size: 2 } },
      });
      await assert.rejects(resource.get('/hang'), TimeoutError);
      await assert.rejects(resource.get('/reset'), UpstreamError);
      await assert.rejects(resource.get('/'), BreakerOpenError);
    });
  });

  describe('pool', () => {
    it('fails at once with PoolExhaustedError when the wait queue is full', async () => {
      upstream.setBehaviour('/hang', { fault: 'hang' });
      const { resource, seen } = fx.resource(upstream.origin, {
        pool: { max: 1, maxWaiting: 0 },
      });
      const controller = new AbortController();
      const first = resource.get('/hang', { signal: controller.signal });
      await until(() => upstream.requests.count === 1, 'the first request');
      await assert.rejects(resource.get('/'), (err: unknown) => {
        assert.ok(err instanceof PoolExhaustedError);
        assert.equal(err.reason, 'queue-full');
        return true;
      });
      assert.equal(upstream.requests.count, 1);
      controller.abort(new Error('done'));
      await assert.rejects(first, /done/);
      assert.equal(seen.calls[0], 'rejected');
    });

    it('fails with PoolExhaustedError after acquireTimeout', async () => {
      upstream.setBehaviour('/hang', { fault: 'hang' });
      const { resource } = fx.resource(upstream.origin, {
        pool: { max: 1, acquireTimeout: 40 },
      });
      const controller = new AbortController();
      const first = resource.get('/hang', { signal: controller.signal });
      await until(() => upstream.requests.count === 1, 'the first request');
      await assert.rejects(resource.get('/'), (err: unknown) => {
        assert.ok(err instanceof PoolExhaustedError);
        assert.equal(err.reason, 'acquire-timeout');
        return true;
      });
      controller.abort(new Error('done'));
      await assert.rejects(first, /done/);
    });

    it('a failing factory (nothing listens) fails every waiting acquire at once', async function () {
      // With a 60 s acquireTimeout, only failing fast lets this finish before mocha's timeout.
      this.timeout(5000);
      const port = await closedPort();
      const { resource, seen } = fx.resource(`http://127.0.0.1:${port}`, {
        pool: { max: 1, acquireTimeout: 60_000 },
      });
      const calls = [resource.get('/a'), resource.get('/b'), resource.get('/c')];
      for (const call of calls) {
        await assert.rejects(call, (err: unknown) => {
          assert.ok(err instanceof ResourceUnavailableError);
          assert.equal((err.cause as { code?: string }).code, 'ECONNREFUSED');
          return true;
        });
      }
      assert.deepEqual(seen.calls, ['failure', 'failure', 'failure']);
      assert.equal(resource.stats().size, 0);
    });

    it('recovers on its own once the upstream listens again', async () => {
      const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] });
      fx.defer(() => clock.uninstall());
      const port = await closedPort();
      const { resource } = fx.resource(`http://127.0.0.1:${port}`);
      await assert.rejects(resource.get('/'), ResourceUnavailableError);
      const revived = await fx.upstream({ port });
      // The pool probes the factory again after its create backoff (100 ms at first).
      await clock.tickAsync(100);
      await until(() => resource.stats().available === 1, 'the probe to create a member');
      assert.equal((await resource.get('/')).statusCode, 200);
      assert.equal(revived.requests.count, 1);
    });

    it('a connect timeout while creating a member is a ResourceUnavailableError', async () => {
      const hole = await startBlackhole();
      fx.defer(() => hole.close());
      const { resource } = fx.resource(`https://127.0.0.1:${hole.port}`, {
        timeouts: { connect: 50 },
      });
      await assert.rejects(resource.get('/'), (err: unknown) => {
        assert.ok(err instanceof ResourceUnavailableError);
        assert.ok(err.cause instanceof errors.ConnectTimeoutError);
        assert.match(err.cause.message, /Connect timeout of 50 ms exceeded/);
        return true;
      });
    });

    it('warms pool.min connections on start', async () => {
      const { resource } = fx.resource(upstream.origin, { pool: { min: 2 } });
      await resource.start();
      await until(() => resource.stats().available === 2, 'two warm members');
      // The server may accept a connection a turn after the client saw it connect.
      await until(() => upstream.connections === 2, 'two connections accepted');
      assert.equal(upstream.requests.count, 0);
      await resource.get('/');
      assert.equal(upstream.connections, 2);
    });
  });

  describe('deadline propagation', () => {
    const header = 'x-request-timeout-ms';

    it('sends the inbound request’s remaining deadline upstream', async () => {
      const { resource } = fx.resource(upstream.origin, {
        deadlinePropagation: { enabled: true },
      });
      const deadline = new Deadline({ timeoutMs: 200 });
      const res = await runWithDeadline(deadline, () => resource.get('/echo'));
      deadline.clear();
      const sent = Number(res.json<EchoBody>().headers[header]);
      assert.ok(Number.isInteger(sent) && sent >= 0 && sent <= 200, `sent ${sent}`);
    });

    it('sends its own timeout when that is the smaller, and nothing when disabled', async () => {
      const { resource } = fx.resource(upstream.origin, {
        timeouts: { request: 100 },
        deadlinePropagation: { enabled: true, header: 'X-Budget' },
      });
      const deadline = new Deadline({ timeoutMs: 60_000 });
      const res = await runWithDeadline(deadline, () => resource.get('/echo'));
      deadline.clear();
      const sent = Number(res.json<EchoBody>().headers['x-budget']);
      assert.ok(sent >= 0 && sent <= 100, `sent ${sent}`);

      const quiet = fx.resource(upstream.origin).resource;
      assert.equal((await quiet.get('/echo')).json<EchoBody>().headers[header], undefined);
    });

    it('fails at once with TimeoutError when no time is left, without touching the network', async () => {
      const { resource, seen } = fx.resource(upstream.origin);
      const deadline = new Deadline({ timeoutMs: 0 });
      await assert.rejects(
        runWithDeadline(deadline, () => resource.get('/')),
        TimeoutError,
      );
      assert.equal(upstream.requests.count, 0);
      assert.equal(upstream.connections, 0);
      assert.equal(resource.stats().size, 0);
      assert.deepEqual(seen.calls, ['timeout']);
    });

    it('times out with the inbound deadline when it is shorter than its own', async () => {
      upstream.setBehaviour('/hang', { fault: 'hang' });
      const { resource } = fx.resource(upstream.origin, { timeouts: { request: 60_000 } });
      const deadline = new Deadline({ timeoutMs: 50 });
      await assert.rejects(
        runWithDeadline(deadline, () => resource.get('/hang')),
        TimeoutError,
      );
      assert.equal(upstream.requests.count, 1);
    });

    it('propagates from an Express 5 request through resilience()', async () => {
      const { resource } = fx.resource(upstream.origin, {
        deadlinePropagation: { enabled: true },
      });
      const r = resilience({ middleware: { defaults: { timeout: { duration: 500 } } } });
      fx.defer(() => r.close());
      const app = express();
      app.use(r);
      app.get('/proxy', async (_req: IncomingMessage, res: ServerResponse) => {
        const up = await resource.get('/echo');
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ sent: up.json<EchoBody>().headers[header] }));
      });
      const server = await listen(app as unknown as Parameters<typeof listen>[0]);
      fx.defer(() => server.close());
      const reply = await fetch(`${server.url}/proxy`);
      const { sent } = (await reply.json()) as { sent: string };
      assert.ok(Number(sent) > 0 && Number(sent) <= 500, `sent ${sent}`);
    });
  });

  describe('TLS', () => {
    it('talks to an upstream whose CA was generated in the test (PEM text or file)', async () => {
      const tls = generateTls();
      const secure = await fx.upstream({ tls: { cert: tls.cert, key: tls.key } });
      const { resource } = fx.resource(secure.origin, { tls: { ca: tls.ca } });
      assert.equal((await resource.get('/')).statusCode, 200);

      const file = writeTempPem('ca.pem', tls.ca);
      fx.defer(file.remove);
      const fromFile = fx.resource(secure.origin, { tls: { ca: file.path } }).resource;
      assert.equal((await fromFile.get('/')).statusCode, 200);
    });

    it('refuses an upstream it cannot verify, before sending anything', async () => {
      const tls = generateTls();
      const secure = await fx.upstream({ tls: { cert: tls.cert, key: tls.key } });
      const { resource } = fx.resource(secure.origin);
      await assert.rejects(resource.get('/'), (err: unknown) => {
        assert.ok(err instanceof ResourceUnavailableError);
        assert.equal((err.cause as { code?: string }).code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
        return true;
      });
      assert.equal(secure.requests.count, 0);
    });

    it('accepts it with rejectUnauthorized: false', async () => {
      const tls = generateTls();
      const secure = await fx.upstream({ tls: { cert: tls.cert, key: tls.key } });
      const { resource } = fx.resource(secure.origin, { tls: { rejectUnauthorized: false } });
      assert.equal((await resource.get('/')).statusCode, 200);
    });
  });
});
