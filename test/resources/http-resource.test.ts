import assert from 'node:assert/strict';
import { Client } from 'undici';
import {
  InvalidArgumentError,
  PoolClosedError,
  ResponseTooLargeError,
  TimeoutError,
  UpstreamError,
  isConfigError,
} from '../../lib/errors.js';
import { exchange } from '../../lib/resources/http/exchange.js';
import { preciseConnector } from '../../lib/resources/http/client-factory.js';
import { HttpResource, createHttpResource } from '../../lib/resources/http-resource.js';
import { until } from '../helpers/deferred.js';
import type { EchoBody, Upstream } from '../helpers/upstream.js';
import { startBlackhole } from '../helpers/upstream.js';
import { HttpFixture, httpConfig } from './http-resource.fixture.js';

describe('HttpResource', () => {
  const fx = new HttpFixture();
  let upstream: Upstream;

  beforeEach(async () => {
    upstream = await fx.upstream();
  });
  afterEach(() => fx.teardown());

  describe('requests and responses', () => {
    it('returns status, headers and the whole body, with text() and json()', async () => {
      upstream.setBehaviour('/hello', { status: 201, headers: { 'x-up': 'yes' }, body: { a: 1 } });
      const { resource } = fx.resource(upstream.origin);
      const res = await resource.get('/hello');
      assert.equal(res.statusCode, 201);
      assert.equal(res.headers['x-up'], 'yes');
      assert.equal(res.headers['content-type'], 'application/json');
      assert.ok(Buffer.isBuffer(res.body));
      assert.equal(res.text(), '{"a":1}');
      assert.deepEqual(res.json(), { a: 1 });
    });

    it('encodes the query, merges default headers under per-call ones', async () => {
      const { resource } = fx.resource(upstream.origin, {
        headers: { Authorization: 'Bearer t', 'X-Client': 'pack', 'X-Drop': 'me' },
      });
      const res = await resource.request({
        path: '/search?fixed=1',
        query: { q: 'a b&c', tag: ['x', 2, true], skip: undefined },
        headers: { 'x-client': 'override', 'X-Drop': undefined, 'x-extra': ['1', '2'] },
      });
      const echo = res.json<EchoBody>();
      assert.equal(echo.method, 'GET');
      assert.equal(
        upstream.requests.log[0]!.url,
        '/search?fixed=1&q=a%20b%26c&tag=x&tag=2&tag=true',
      );
      assert.deepEqual(echo.query, { fixed: '1', q: 'a b&c', tag: ['x', '2', 'true'] });
      assert.equal(echo.headers.authorization, 'Bearer t');
      assert.equal(echo.headers['x-client'], 'override');
      assert.equal(echo.headers['x-drop'], undefined);
      assert.equal(echo.headers['x-extra'], '1, 2');
    });

    it('sends objects as JSON, strings and buffers as they are', async () => {
      const { resource } = fx.resource(upstream.origin);
      const json = (await resource.post('/o', { n: 1 })).json<EchoBody>();
      assert.equal(json.method, 'POST');
      assert.equal(json.body, '{"n":1}');
      assert.equal(json.headers['content-type'], 'application/json');

      const typed = await resource.put('/o', { n: 2 }, { headers: { 'Content-Type': 'text/x' } });
      assert.equal(typed.json<EchoBody>().headers['content-type'], 'text/x');

      const raw = await resource.patch('/o', Buffer.from('bytes'));
      assert.equal(raw.json<EchoBody>().body, 'bytes');
      assert.equal(raw.json<EchoBody>().method, 'PATCH');

      const del = await resource.delete('/o');
      assert.equal(del.json<EchoBody>().method, 'DELETE');
    });

    it('answers HEAD without a body, whatever length it announces', async () => {
      upstream.setBehaviour('/h', { bodySize: 4096 });
      const { resource } = fx.resource(upstream.origin, { maxResponseSize: 1024 });
      const res = await resource.head('/h');
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-length'], '4096');
      assert.equal(res.body.length, 0);
    });

    it('reads every body to its end, so one connection serves every call', async () => {
      upstream.setBehaviour('/big', { bodySize: 256 * 1024 });
      upstream.setBehaviour('/fail', { status: 500, body: 'broken' });
      const { resource } = fx.resource(upstream.origin, {
        pool: { max: 1 },
        retry: { attempts: 1 },
      });
      assert.equal((await resource.get('/big')).body.length, 256 * 1024);
      assert.equal((await resource.get('/fail')).statusCode, 500);
      assert.equal((await resource.post('/x', 'y')).statusCode, 200);
      assert.equal(upstream.requests.count, 3);
      assert.equal(upstream.connections, 1);
    });

    it('returns a final 5xx as a response rather than throwing it', async () => {
      upstream.setBehaviour('/down', { status: 503, body: 'maintenance' });
      const { resource, seen } = fx.resource(upstream.origin, { retry: { attempts: 1 } });
      const res = await resource.get('/down');
      assert.equal(res.statusCode, 503);
      assert.equal(res.text(), 'maintenance');
      assert.deepEqual(seen.calls, ['failure']);
    });

    it('counts a 4xx as a success for the breaker', async () => {
      upstream.setBehaviour('/missing', { status: 404 });
      const { resource, seen } = fx.resource(upstream.origin);
      assert.equal((await resource.get('/missing')).statusCode, 404);
      assert.deepEqual(seen.calls, ['success']);
    });

    it('refuses a malformed path or method without touching the network', async () => {
      const { resource } = fx.resource(upstream.origin);
      await assert.rejects(resource.get('relative'), InvalidArgumentError);
      await assert.rejects(resource.request({ path: '/', method: 'GE T' }), InvalidArgumentError);
      assert.equal(upstream.connections, 0);
    });

    it('rejects a header undici refuses as InvalidArgumentError, keeping the client', async () => {
      const { resource } = fx.resource(upstream.origin, { pool: { max: 1 } });
      await assert.rejects(
        resource.get('/', { headers: { 'x-bad': 'a\r\nb' } }),
        InvalidArgumentError,
      );
      assert.equal((await resource.get('/')).statusCode, 200);
      assert.equal(upstream.connections, 1);
    });
  });

  describe('maxResponseSize', () => {
    it('refuses a declared Content-Length over the limit and drops the connection', async () => {
      upstream.setBehaviour('/big', { bodySize: 2048 });
      const { resource } = fx.resource(upstream.origin, {
        maxResponseSize: 1024,
        pool: { max: 1 },
      });
      await assert.rejects(resource.get('/big'), (err: unknown) => {
        assert.ok(err instanceof ResponseTooLargeError);
        assert.match(err.message, /exceeds maxResponseSize 1024 \(GET \/big\)/);
        return true;
      });
      assert.equal(upstream.requests.count, 1, 'not retried');
      // The member was destroyed: the next call gets a fresh connection.
      assert.equal((await resource.get('/small')).statusCode, 200);
      assert.equal(upstream.connections, 2);
    });

    it('counts the bytes of a body of unknown length', async () => {
      upstream.setBehaviour('/stream', { bodySize: 4096, chunked: true });
      upstream.setBehaviour('/fits', { bodySize: 1024, chunked: true });
      const { resource } = fx.resource(upstream.origin, { maxResponseSize: 1024 });
      assert.equal((await resource.get('/fits')).body.length, 1024);
      await assert.rejects(resource.get('/stream'), ResponseTooLargeError);
    });
  });

  describe('timeouts', () => {
    it('headers timeout: no response head in time', async () => {
      upstream.setBehaviour('/hang', { fault: 'hang' });
      const { resource, seen } = fx.resource(upstream.origin, { timeouts: { headers: 50 } });
      await assert.rejects(resource.get('/hang'), (err: unknown) => {
        assert.ok(err instanceof TimeoutError);
        assert.match(err.message, /headers timeout of 50 ms exceeded \(GET \/hang\)/);
        assert.equal(err.timeoutMs, 50);
        return true;
      });
      assert.equal(upstream.requests.count, 1, 'a slow upstream is not retried');
      assert.equal(seen.calls.length, 1);
    });

    it('body timeout: the body stalls after the headers', async () => {
      upstream.setBehaviour('/stall', { bodyDelay: Infinity });
      const { resource } = fx.resource(upstream.origin, { timeouts: { body: 50 } });
      await assert.rejects(resource.get('/stall'), (err: unknown) => {
        assert.ok(err instanceof TimeoutError);
        assert.match(err.message, /body timeout of 50 ms exceeded \(GET \/stall\)/);
        return true;
      });
    });

    it('a slow body within the body timeout is fine', async () => {
      upstream.setBehaviour('/slow', { bodyDelay: 20, body: 'late' });
      const { resource } = fx.resource(upstream.origin, { timeouts: { body: 2000 } });
      assert.equal((await resource.get('/slow')).text(), 'late');
    });

    it('request timeout: the whole call, whatever phase it is in', async () => {
      upstream.setBehaviour('/slow', { latency: 5000 });
      const { resource } = fx.resource(upstream.origin, { timeouts: { request: 60 } });
      await assert.rejects(resource.get('/slow'), (err: unknown) => {
        assert.ok(err instanceof TimeoutError);
        assert.match(err.message, /resource "up" exceeded 60 ms/);
        assert.equal(err.timeoutMs, 60);
        return true;
      });
      assert.equal(upstream.requests.count, 1);
    });

    it('a per-call timeoutMs overrides timeouts.request', async () => {
      upstream.setBehaviour('/slow', { fault: 'hang' });
      const { resource } = fx.resource(upstream.origin);
      await assert.rejects(resource.get('/slow', { timeoutMs: 40 }), TimeoutError);
    });

    it('connect timeout: a reconnect whose TLS handshake never completes', async () => {
      // A member's first connection is made by the pool factory (see the pool tests below);
      // here the exchange itself dials, as it does after a connection was lost.
      const hole = await startBlackhole();
      fx.defer(() => hole.close());
      const client = new Client(`https://127.0.0.1:${hole.port}`, {
        connect: preciseConnector(50, {}),
      });
      fx.defer(() => client.destroy());
      const limits = { resource: 'up', headersMs: 1000, bodyMs: 1000, maxResponseSize: 0 };
      const request = { method: 'GET', path: '/', label: '/', headers: {}, body: null };
      await assert.rejects(exchange(client, request, limits), (err: unknown) => {
        assert.ok(err instanceof TimeoutError);
        assert.match(err.message, /connect timeout/);
        assert.equal((err.cause as { code?: string }).code, 'UND_ERR_CONNECT_TIMEOUT');
        return true;
      });
    });
  });

  describe('aborts', () => {
    it('rejects with the caller’s reason and cuts the connection', async () => {
      upstream.setBehaviour('/hang', { fault: 'hang' });
      const { resource } = fx.resource(upstream.origin);
      const controller = new AbortController();
      const call = resource.get('/hang', { signal: controller.signal });
      await until(() => upstream.requests.count === 1, 'the request to arrive');
      const reason = new Error('caller gave up');
      controller.abort(reason);
      await assert.rejects(call, (err) => err === reason);
    });
  });

  describe('probe', () => {
    it('resolves on 2xx and 3xx, rejects with UpstreamError otherwise', async () => {
      const { resource } = fx.resource(upstream.origin, {
        health: { path: '/healthz' },
        headers: { authorization: 'Bearer probe' },
      });
      await resource.probe(new AbortController().signal);
      assert.equal(upstream.requests.log[0]!.path, '/healthz');
      assert.equal(upstream.requests.log[0]!.headers.authorization, 'Bearer probe');
      upstream.setBehaviour('/healthz', { status: 302 });
      await resource.probe(new AbortController().signal);
      upstream.setBehaviour('/healthz', { status: 503 });
      await assert.rejects(resource.probe(new AbortController().signal), (err: unknown) => {
        assert.ok(err instanceof UpstreamError);
        assert.equal(err.statusCode, 503);
        assert.match(err.message, /health check GET \/healthz answered 503/);
        return true;
      });
    });

    it('times out after health.timeout', async () => {
      upstream.setBehaviour('/healthz', { fault: 'hang' });
      const { resource } = fx.resource(upstream.origin, { health: { timeout: 50 } });
      await assert.rejects(resource.probe(new AbortController().signal), (err: unknown) => {
        assert.ok(err instanceof TimeoutError);
        assert.match(err.message, /health check GET \/healthz timed out after 50 ms/);
        return true;
      });
    });
  });

  describe('construction and close', () => {
    it('fails at construction on an unreadable TLS file, naming resource and field', () => {
      assert.throws(
        () => new HttpResource(httpConfig(upstream.origin, { tls: { cert: '/nope/cert.pem' } })),
        (err: unknown) => isConfigError(err) && /resources\.http\.up\.tls\.cert/.test(err.message),
      );
    });

    it('createHttpResource builds one; calls after close reject with PoolClosedError', async () => {
      const resource = createHttpResource(httpConfig(upstream.origin));
      assert.equal(resource.kind, 'http');
      assert.equal(resource.name, 'up');
      assert.equal(resource.origin, upstream.origin);
      assert.equal((await resource.get('/')).statusCode, 200);
      await resource.close();
      await assert.rejects(resource.get('/'), PoolClosedError);
      assert.equal(resource.stats().size, 0);
    });
  });
});
